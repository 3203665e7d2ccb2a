"""tests/e2e/test_s3_gaps.py -- corners of S3 access and encryption: an
identity policy's explicit Deny wins over a bucket policy's Allow whatever
the key's length; versioned tagging and ACLs are authorised with S3's
*Version* actions; internal writers (Firehose, SQL CTAS) honour a bucket's
default encryption. boto3 throughout.
"""
import json

import pytest
from botocore.exceptions import ClientError

from tarnlib import unique_bucket_name


def refused(call, want, http):
    with pytest.raises(ClientError) as ei:
        call()
    err = ei.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (want, http)


def user(tarn, name, statements):
    iam = tarn.service_client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return tarn.client(k["AccessKeyId"], k["SecretAccessKey"])


def test_explicit_deny_wins_for_a_long_key(tarn, s3, bucket):
    """A 1,000-byte key: the identity policy's Deny still beats the bucket
    policy's Allow."""
    short, long_key = "k", "d/" + "x" * 998
    assert len(long_key) == 1000
    for k in (short, long_key):
        s3.put_object(Bucket=bucket, Key=k, Body=b"secret")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::%s/*" % bucket}]}))
    us3 = user(tarn, "long-denied", [{"Effect": "Deny", "Action": "s3:GetObject",
                                      "Resource": "arn:aws:s3:::%s/d/*" % bucket}])
    # the bucket policy grants what the identity policy does not mention
    assert us3.get_object(Bucket=bucket, Key=short)["Body"].read() == b"secret"
    refused(lambda: us3.get_object(Bucket=bucket, Key=long_key), "AccessDenied", 403)
    refused(lambda: us3.head_object(Bucket=bucket, Key=long_key), "403", 403)


def test_versioned_tagging_needs_the_version_actions(tarn, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    vid = s3.put_object(Bucket=bucket, Key="t", Body=b"v1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="t", Body=b"v2")
    res = "arn:aws:s3:::%s/*" % bucket
    tags = {"TagSet": [{"Key": "a", "Value": "1"}]}
    plain = user(tarn, "tag-plain", [{"Effect": "Allow", "Action": [
        "s3:PutObjectTagging", "s3:GetObjectTagging", "s3:DeleteObjectTagging",
        "s3:GetObjectAcl"], "Resource": res}])
    # the current version: the plain actions are enough
    plain.put_object_tagging(Bucket=bucket, Key="t", Tagging=tags)
    assert plain.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == tags["TagSet"]
    plain.delete_object_tagging(Bucket=bucket, Key="t")
    # a named version: refused, and nothing changes
    refused(lambda: plain.put_object_tagging(Bucket=bucket, Key="t", VersionId=vid, Tagging=tags),
            "AccessDenied", 403)
    assert s3.get_object_tagging(Bucket=bucket, Key="t", VersionId=vid)["TagSet"] == []
    refused(lambda: plain.get_object_tagging(Bucket=bucket, Key="t", VersionId=vid),
            "AccessDenied", 403)
    refused(lambda: plain.delete_object_tagging(Bucket=bucket, Key="t", VersionId=vid),
            "AccessDenied", 403)
    refused(lambda: plain.get_object_acl(Bucket=bucket, Key="t", VersionId=vid),
            "AccessDenied", 403)
    versioned = user(tarn, "tag-version", [{"Effect": "Allow", "Action": [
        "s3:PutObjectVersionTagging", "s3:GetObjectVersionTagging",
        "s3:DeleteObjectVersionTagging", "s3:GetObjectVersionAcl"], "Resource": res}])
    versioned.put_object_tagging(Bucket=bucket, Key="t", VersionId=vid, Tagging=tags)
    got = versioned.get_object_tagging(Bucket=bucket, Key="t", VersionId=vid)
    assert (got["TagSet"], got["VersionId"]) == (tags["TagSet"], vid)
    versioned.delete_object_tagging(Bucket=bucket, Key="t", VersionId=vid)
    assert s3.get_object_tagging(Bucket=bucket, Key="t", VersionId=vid)["TagSet"] == []
    versioned.get_object_acl(Bucket=bucket, Key="t", VersionId=vid)
    refused(lambda: versioned.get_object_tagging(Bucket=bucket, Key="t"), "AccessDenied", 403)
