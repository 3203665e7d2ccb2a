"""tests/e2e/test_s3_object_lock.py -- S3 object lock end to end with boto3
and Debian's AWS CLI: a bucket created with object lock (versioning on),
the default retention, retention and legal holds on versions, deletes of
locked versions refused with AccessDenied, the governance bypass (header
plus the s3:BypassGovernanceRetention permission, checked with the IAM
evaluator for a user), compliance retention that cannot be shortened, and
the error codes of every refusal.
"""
import datetime
import json

import pytest
from botocore.exceptions import ClientError

from test_events import aws_client


def code_of(exc):
    return exc.value.response["Error"]["Code"]


def status_of(exc):
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def later(days=0, seconds=0):
    return (datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(days=days, seconds=seconds))


@pytest.fixture
def locked(s3, bucket_name):
    s3.create_bucket(Bucket=bucket_name, ObjectLockEnabledForBucket=True)
    return bucket_name


def test_lock_configuration(s3, locked):
    bucket = locked[:50] + "-plain"
    s3.create_bucket(Bucket=bucket)
    assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    conf = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert conf == {"ObjectLockEnabled": "Enabled"}
    s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2}}})
    conf = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert conf["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 2}
    with pytest.raises(ClientError) as ei:
        s3.put_bucket_versioning(Bucket=locked, VersioningConfiguration={"Status": "Suspended"})
    assert code_of(ei) == "InvalidBucketState"
    # a plain bucket: no configuration; lock needs versioning first
    with pytest.raises(ClientError) as ei:
        s3.get_object_lock_configuration(Bucket=bucket)
    assert code_of(ei) == "ObjectLockConfigurationNotFoundError"
    with pytest.raises(ClientError) as ei:
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled"})
    assert code_of(ei) == "InvalidBucketState"
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=later(1))
    assert code_of(ei) == "InvalidRequest"
    with pytest.raises(ClientError) as ei:
        s3.put_object_retention(Bucket=bucket, Key="k", Retention={
            "Mode": "GOVERNANCE", "RetainUntilDate": later(1)})
    assert code_of(ei) == "InvalidRequest"
    with pytest.raises(ClientError) as ei:
        s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}}})
    assert code_of(ei) == "InvalidArgument"
    with pytest.raises(ClientError) as ei:
        s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}}})
    assert code_of(ei) == "MalformedXML"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled"})
    assert s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled"}


def test_default_retention_and_governance(s3, locked):
    s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    vid = s3.put_object(Bucket=locked, Key="g", Body=b"keep")["VersionId"]
    h = s3.head_object(Bucket=locked, Key="g")
    assert h["ObjectLockMode"] == "GOVERNANCE"
    assert later(0, 3600) < h["ObjectLockRetainUntilDate"] < later(1, 60)
    r = s3.get_object_retention(Bucket=locked, Key="g", VersionId=vid)["Retention"]
    assert r["Mode"] == "GOVERNANCE"
    with pytest.raises(ClientError) as ei:
        s3.delete_object(Bucket=locked, Key="g", VersionId=vid)
    assert code_of(ei) == "AccessDenied" and status_of(ei) == 403
    # a delete without a version id only adds a marker: allowed
    d = s3.delete_object(Bucket=locked, Key="g")
    assert d["DeleteMarker"] is True
    s3.delete_object(Bucket=locked, Key="g", VersionId=d["VersionId"])  # markers are not locked
    # shortening governance needs the bypass
    with pytest.raises(ClientError) as ei:
        s3.put_object_retention(Bucket=locked, Key="g", VersionId=vid, Retention={
            "Mode": "GOVERNANCE", "RetainUntilDate": later(0, 600)})
    assert code_of(ei) == "AccessDenied"
    s3.put_object_retention(Bucket=locked, Key="g", VersionId=vid, Retention={
        "Mode": "GOVERNANCE", "RetainUntilDate": later(2)})  # extending is fine
    until = s3.get_object_retention(Bucket=locked, Key="g", VersionId=vid)["Retention"][
        "RetainUntilDate"]
    with pytest.raises(ClientError) as ei:  # changing the mode is overriding it
        s3.put_object_retention(Bucket=locked, Key="g", VersionId=vid, Retention={
            "Mode": "COMPLIANCE", "RetainUntilDate": until})
    assert code_of(ei) == "AccessDenied"
    r = s3.delete_object(Bucket=locked, Key="g", VersionId=vid, BypassGovernanceRetention=True)
    assert r["VersionId"] == vid
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=locked, Key="g", VersionId=vid)
    assert status_of(ei) == 404


def test_compliance_cannot_be_shortened(s3, locked):
    vid = s3.put_object(Bucket=locked, Key="c", Body=b"law", ObjectLockMode="COMPLIANCE",
                        ObjectLockRetainUntilDate=later(1))["VersionId"]
    for ret in ({"Mode": "COMPLIANCE", "RetainUntilDate": later(0, 600)},
                {"Mode": "GOVERNANCE", "RetainUntilDate": later(3)}):
        with pytest.raises(ClientError) as ei:
            s3.put_object_retention(Bucket=locked, Key="c", VersionId=vid, Retention=ret,
                                    BypassGovernanceRetention=True)
        assert code_of(ei) == "AccessDenied"
    with pytest.raises(ClientError) as ei:
        s3.delete_object(Bucket=locked, Key="c", VersionId=vid, BypassGovernanceRetention=True)
    assert code_of(ei) == "AccessDenied"
    r = s3.delete_objects(Bucket=locked, BypassGovernanceRetention=True, Delete={
        "Objects": [{"Key": "c", "VersionId": vid}]})
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("c", "AccessDenied")]
    s3.put_object_retention(Bucket=locked, Key="c", VersionId=vid, Retention={
        "Mode": "COMPLIANCE", "RetainUntilDate": later(2)})
    assert s3.get_object(Bucket=locked, Key="c", VersionId=vid)["Body"].read() == b"law"
    # bad retention documents and headers
    with pytest.raises(ClientError) as ei:
        s3.put_object_retention(Bucket=locked, Key="c", Retention={
            "Mode": "COMPLIANCE", "RetainUntilDate": later(-1)})
    assert code_of(ei) == "InvalidArgument"
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=locked, Key="c2", Body=b"x", ObjectLockMode="COMPLIANCE")
    assert code_of(ei) == "InvalidArgument"
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=locked, Key="c2", Body=b"x", ObjectLockMode="FOREVER",
                      ObjectLockRetainUntilDate=later(1))
    assert code_of(ei) == "InvalidArgument"
    with pytest.raises(ClientError) as ei:
        s3.get_object_retention(Bucket=locked, Key="c", VersionId="0" * 15 + "1" + "0" * 16)
    assert code_of(ei) == "NoSuchVersion"


def test_legal_hold(s3, locked):
    vid = s3.put_object(Bucket=locked, Key="h", Body=b"x",
                        ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=locked, Key="h")["LegalHold"]["Status"] == "ON"
    assert s3.head_object(Bucket=locked, Key="h")["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(ClientError) as ei:
        s3.get_object_retention(Bucket=locked, Key="h")
    assert code_of(ei) == "NoSuchObjectLockConfiguration"
    with pytest.raises(ClientError) as ei:
        s3.delete_object(Bucket=locked, Key="h", VersionId=vid, BypassGovernanceRetention=True)
    assert code_of(ei) == "AccessDenied"
    s3.put_object_legal_hold(Bucket=locked, Key="h", VersionId=vid, LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=locked, Key="h")["LegalHold"]["Status"] == "OFF"
    s3.delete_object(Bucket=locked, Key="h", VersionId=vid)
    with pytest.raises(ClientError) as ei:
        s3.put_object_legal_hold(Bucket=locked, Key="h", LegalHold={"Status": "MAYBE"})
    assert code_of(ei) == "MalformedXML"
    with pytest.raises(ClientError) as ei:
        s3.put_object_legal_hold(Bucket=locked, Key="nothing", LegalHold={"Status": "ON"})
    assert code_of(ei) == "NoSuchKey"


def test_bypass_needs_the_permission(tarn, s3, locked):
    iam = aws_client(tarn, "iam")
    vid = s3.put_object(Bucket=locked, Key="u", Body=b"x", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=later(1))["VersionId"]
    user = "lock-" + locked[:40]
    iam.create_user(UserName=user)
    allow = ["s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion",
             "s3:PutObjectRetention"]
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": allow, "Resource": "arn:aws:s3:::%s/*" % locked}]}))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    us3 = tarn.client(k["AccessKeyId"], k["SecretAccessKey"])
    assert us3.get_object(Bucket=locked, Key="u")["Body"].read() == b"x"
    with pytest.raises(ClientError) as ei:  # a version by id needs s3:GetObjectVersion
        us3.get_object(Bucket=locked, Key="u", VersionId=vid)
    assert code_of(ei) == "AccessDenied"
    with pytest.raises(ClientError) as ei:
        us3.delete_object(Bucket=locked, Key="u", VersionId=vid, BypassGovernanceRetention=True)
    assert code_of(ei) == "AccessDenied"
    assert "s3:BypassGovernanceRetention" in ei.value.response["Error"]["Message"]
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": allow + ["s3:BypassGovernanceRetention"],
             "Resource": "arn:aws:s3:::%s/*" % locked}]}))
    us3.delete_object(Bucket=locked, Key="u", VersionId=vid, BypassGovernanceRetention=True)
    assert "Versions" not in s3.list_object_versions(Bucket=locked, Prefix="u")


def test_awscli_object_lock(tarn, s3, bucket_name):
    out = tarn.aws("s3api", "create-bucket", "--bucket", bucket_name,
                   "--object-lock-enabled-for-bucket")
    assert out.returncode == 0, out.stderr
    r = tarn.aws("s3api", "put-object-lock-configuration", "--bucket", bucket_name,
                 "--object-lock-configuration",
                 '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":'
                 '{"Mode":"COMPLIANCE","Days":1}}}')
    assert r.returncode == 0, r.stderr
    s3.put_object(Bucket=bucket_name, Key="k", Body=b"x")
    r = tarn.aws("s3api", "get-object-retention", "--bucket", bucket_name, "--key", "k")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Retention"]["Mode"] == "COMPLIANCE"
    vid = s3.head_object(Bucket=bucket_name, Key="k")["VersionId"]
    r = tarn.aws("s3api", "delete-object", "--bucket", bucket_name, "--key", "k",
                 "--version-id", vid)
    assert r.returncode != 0 and "AccessDenied" in r.stderr
