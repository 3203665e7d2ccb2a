"""tests/e2e/test_s3_acl.py -- S3 ACLs and object ownership: canned ACLs and
x-amz-grant-* headers on writes, Get/Put Bucket/Object Acl with
AccessControlPolicy grants, BucketOwnerEnforced (the default) refusing ACLs,
anonymous reads allowed by an AllUsers grant and refused by the bucket's
PublicAccessBlock or a bucket policy's Deny, and the canonical owner id in
every Owner element. boto3 and the AWS CLI, plain HTTP for anonymous calls.
"""
import json

import pytest
import requests
from botocore.exceptions import ClientError

from tarnlib import key_path, unique_bucket_name

OWNER_ID = "8b570c6ff1160fe5be8854a2f585a0e4520a04d5916ea69341729b77bb673746"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def status(exc_info):
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def refused(call, want, http=400):
    with pytest.raises(ClientError) as ei:
        call()
    assert (code(ei), status(ei)) == (want, http)


def anon(tarn, method, bucket, key=None, **kw):
    return requests.request(method, tarn.endpoint + key_path(bucket, key), timeout=60, **kw)


def grants(acl):
    out = set()
    for g in acl["Grants"]:
        who = g["Grantee"].get("URI") or g["Grantee"].get("ID")
        out.add((who, g["Permission"]))
    return out


@pytest.fixture
def acl_bucket(s3, request):
    """A bucket with ACLs enabled (ObjectOwnership ObjectWriter)."""
    name = unique_bucket_name(request.node.name)
    s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter")
    return name


def test_default_is_bucket_owner_enforced(tarn, s3, bucket):
    oc = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    assert oc["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert acl["Owner"]["ID"] == OWNER_ID
    assert grants(acl) == {(OWNER_ID, "FULL_CONTROL")}
    # the same id in every Owner element
    assert s3.list_buckets()["Owner"]["ID"] == OWNER_ID
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    s3.put_object(Bucket=bucket, Key="k2", Body=b"x", ACL="private")
    listed = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"]
    assert {o["Owner"]["ID"] for o in listed} == {OWNER_ID}
    assert grants(s3.get_object_acl(Bucket=bucket, Key="k")) == {(OWNER_ID, "FULL_CONTROL")}
    # every ACL that grants more is refused, and nothing changes
    refused(lambda: s3.put_object(Bucket=bucket, Key="p", Body=b"x", ACL="public-read"),
            "AccessControlListNotSupported")
    refused(lambda: s3.put_object(Bucket=bucket, Key="p", Body=b"x", GrantRead='uri="%s"' % ALL_USERS),
            "AccessControlListNotSupported")
    refused(lambda: s3.head_object(Bucket=bucket, Key="p"), "404", 404)
    refused(lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read"),
            "AccessControlListNotSupported")
    refused(lambda: s3.put_object_acl(Bucket=bucket, Key="k", ACL="public-read"),
            "AccessControlListNotSupported")
    refused(lambda: s3.create_multipart_upload(Bucket=bucket, Key="m", ACL="public-read"),
            "AccessControlListNotSupported")
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    assert anon(tarn, "GET", bucket, "k").status_code == 403
    name = unique_bucket_name("enforced-public")
    refused(lambda: s3.create_bucket(Bucket=name, ACL="public-read"),
            "InvalidBucketAclWithObjectOwnership")
    refused(lambda: s3.head_bucket(Bucket=name), "404", 404)


def test_public_read_object_and_public_access_block(tarn, s3, acl_bucket):
    b = acl_bucket
    s3.put_object(Bucket=b, Key="pub", Body=b"hello", ACL="public-read")
    s3.put_object(Bucket=b, Key="priv", Body=b"secret")
    assert grants(s3.get_object_acl(Bucket=b, Key="pub")) == {
        (OWNER_ID, "FULL_CONTROL"), (ALL_USERS, "READ")}
    r = anon(tarn, "GET", b, "pub")
    assert r.status_code == 200 and r.content == b"hello"
    assert "x-tarn-acl" not in r.headers
    assert anon(tarn, "HEAD", b, "pub").status_code == 200
    assert anon(tarn, "GET", b, "priv").status_code == 403
    assert anon(tarn, "GET", b).status_code == 403          # the bucket is private
    assert anon(tarn, "PUT", b, "new", data=b"x").status_code == 403
    assert anon(tarn, "GET", b, "pub", params={"acl": ""}).status_code == 403
    # IgnorePublicAcls: the grant stays but grants nothing
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
        "IgnorePublicAcls": True})
    assert anon(tarn, "GET", b, "pub").status_code == 403
    assert (ALL_USERS, "READ") in grants(s3.get_object_acl(Bucket=b, Key="pub"))
    # BlockPublicAcls: a public ACL cannot be set (anywhere), a private one can
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True})
    assert anon(tarn, "GET", b, "pub").status_code == 200
    refused(lambda: s3.put_object_acl(Bucket=b, Key="priv", ACL="public-read"), "AccessDenied", 403)
    refused(lambda: s3.put_object(Bucket=b, Key="n", Body=b"x", ACL="authenticated-read"),
            "AccessDenied", 403)
    refused(lambda: s3.put_bucket_acl(Bucket=b, ACL="public-read"), "AccessDenied", 403)
    s3.put_object_acl(Bucket=b, Key="pub", ACL="private")
    assert anon(tarn, "GET", b, "pub").status_code == 403
    s3.delete_public_access_block(Bucket=b)


def test_public_bucket_acls(tarn, s3, acl_bucket):
    b = acl_bucket
    s3.put_object(Bucket=b, Key="a", Body=b"x")
    s3.put_bucket_acl(Bucket=b, ACL="public-read-write")
    assert grants(s3.get_bucket_acl(Bucket=b)) == {
        (OWNER_ID, "FULL_CONTROL"), (ALL_USERS, "READ"), (ALL_USERS, "WRITE")}
    r = anon(tarn, "GET", b, params={"list-type": "2"})
    assert r.status_code == 200 and b"<Key>a</Key>" in r.content
    assert anon(tarn, "PUT", b, "anon", data=b"from anyone").status_code == 200
    assert s3.get_object(Bucket=b, Key="anon")["Body"].read() == b"from anyone"
    assert anon(tarn, "GET", b, "anon").status_code == 403   # objects keep their own ACL
    s3.put_bucket_acl(Bucket=b, ACL="log-delivery-write")
    assert anon(tarn, "GET", b).status_code == 403
    # BucketOwnerEnforced is refused while the bucket's ACL grants others
    refused(lambda: s3.put_bucket_ownership_controls(Bucket=b, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
        "InvalidBucketAclWithObjectOwnership")
    s3.put_bucket_acl(Bucket=b, ACL="private")
    s3.put_bucket_ownership_controls(Bucket=b, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    s3.delete_bucket_ownership_controls(Bucket=b)
    refused(lambda: s3.get_bucket_ownership_controls(Bucket=b),
            "OwnershipControlsNotFoundError", 404)
    s3.put_bucket_acl(Bucket=b, ACL="public-read")   # no controls: ACLs are on
    assert anon(tarn, "GET", b).status_code == 200


def test_access_control_policy_grants(tarn, s3, acl_bucket):
    b = acl_bucket
    s3.put_object(Bucket=b, Key="k", Body=b"data")
    owner = {"ID": OWNER_ID}
    policy = {"Owner": owner, "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": OWNER_ID}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
        {"Grantee": {"Type": "Group", "URI": AUTH_USERS}, "Permission": "READ_ACP"}]}
    s3.put_object_acl(Bucket=b, Key="k", AccessControlPolicy=policy)
    got = s3.get_object_acl(Bucket=b, Key="k")
    assert got["Owner"]["ID"] == OWNER_ID
    assert grants(got) == {(OWNER_ID, "FULL_CONTROL"), (ALL_USERS, "READ"),
                           (AUTH_USERS, "READ_ACP")}
    assert anon(tarn, "GET", b, "k").content == b"data"
    # the refusals, each changing nothing
    bad = [
        ({"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "a@example.com"},
          "Permission": "READ"}, "UnresolvableGrantByEmailAddress"),
        ({"Grantee": {"Type": "CanonicalUser", "ID": "1" * 64}, "Permission": "READ"},
         "InvalidArgument"),
        ({"Grantee": {"Type": "Group", "URI": "http://example.com/group"}, "Permission": "READ"},
         "InvalidArgument"),
        ({"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "EVERYTHING"},
         "MalformedACLError"),
    ]
    for g, want in bad:
        refused(lambda: s3.put_object_acl(Bucket=b, Key="k", AccessControlPolicy={
            "Owner": owner, "Grants": [g]}), want)
    refused(lambda: s3.put_object_acl(Bucket=b, Key="k", ACL="public-read",
                                      GrantRead='uri="%s"' % ALL_USERS), "InvalidRequest")
    refused(lambda: s3.put_object_acl(Bucket=b, Key="k", ACL="world-readable"), "InvalidArgument")
    refused(lambda: s3.put_object_acl(Bucket=b, Key="k", GrantRead='emailAddress="a@b.c"'),
            "UnresolvableGrantByEmailAddress")
    refused(lambda: s3.put_object_acl(Bucket=b, Key="missing", ACL="private"), "NoSuchKey", 404)
    assert grants(s3.get_object_acl(Bucket=b, Key="k")) == {
        (OWNER_ID, "FULL_CONTROL"), (ALL_USERS, "READ"), (AUTH_USERS, "READ_ACP")}
    # grant headers on writes, a multipart upload, a copy (never the source's ACL)
    s3.put_object(Bucket=b, Key="g", Body=b"g", GrantRead='uri="%s"' % ALL_USERS,
                  GrantFullControl='id="%s"' % OWNER_ID)
    assert anon(tarn, "GET", b, "g").content == b"g"
    up = s3.create_multipart_upload(Bucket=b, Key="mp", ACL="public-read")
    p = s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"mp")
    s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
    assert anon(tarn, "GET", b, "mp").content == b"mp"
    s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "k"})
    assert anon(tarn, "GET", b, "copy").status_code == 403
    s3.copy_object(Bucket=b, Key="copy2", CopySource={"Bucket": b, "Key": "k"},
                   ACL="public-read")
    assert anon(tarn, "GET", b, "copy2").content == b"data"
    # ACLs leave the object's bytes, ETag and metadata alone
    h1 = s3.head_object(Bucket=b, Key="g")
    s3.put_object_acl(Bucket=b, Key="g", ACL="private")
    h2 = s3.head_object(Bucket=b, Key="g")
    assert (h1["ETag"], h1["LastModified"], h1["ContentLength"]) == (
        h2["ETag"], h2["LastModified"], h2["ContentLength"])
    assert anon(tarn, "GET", b, "g").status_code == 403


def test_policy_deny_wins_and_policy_status(tarn, s3, acl_bucket):
    b = acl_bucket
    s3.put_object(Bucket=b, Key="pub/a", Body=b"a", ACL="public-read")
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::%s/pub/*" % b}]}))
    assert s3.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is False
    assert anon(tarn, "GET", b, "pub/a").status_code == 403
    refused(lambda: s3.get_object(Bucket=b, Key="pub/a"), "AccessDenied", 403)
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
         "Resource": "arn:aws:s3:::%s" % b}]}))
    assert s3.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is True
    assert anon(tarn, "GET", b).status_code == 200
    assert anon(tarn, "GET", b, "pub/a").status_code == 200
    s3.delete_bucket_policy(Bucket=b)
    assert anon(tarn, "GET", b).status_code == 403


def test_iam_user_and_acl_grants(tarn, s3, acl_bucket):
    """A signed IAM user without an S3 policy reads what an ACL grants its
    group; its own explicit Deny still wins."""
    iam = tarn.service_client("iam")
    b = acl_bucket
    s3.put_object(Bucket=b, Key="auth", Body=b"auth", ACL="authenticated-read")
    s3.put_object(Bucket=b, Key="none", Body=b"none")
    iam.create_user(UserName="acl-reader")
    k = iam.create_access_key(UserName="acl-reader")["AccessKey"]
    us3 = tarn.client(k["AccessKeyId"], k["SecretAccessKey"])
    assert us3.get_object(Bucket=b, Key="auth")["Body"].read() == b"auth"
    assert anon(tarn, "GET", b, "auth").status_code == 403   # not signed: not authenticated
    refused(lambda: us3.get_object(Bucket=b, Key="none"), "AccessDenied", 403)
    iam.put_user_policy(UserName="acl-reader", PolicyName="deny", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]}))
    refused(lambda: us3.get_object(Bucket=b, Key="auth"), "AccessDenied", 403)


def test_awscli_acls(tarn, s3, request):
    b = unique_bucket_name(request.node.name)
    tarn.aws_ok("s3api", "create-bucket", "--bucket", b, "--object-ownership", "ObjectWriter")
    out = json.loads(tarn.aws_ok("s3api", "get-bucket-ownership-controls", "--bucket", b).stdout)
    assert out["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "ObjectWriter"
    s3.put_object(Bucket=b, Key="f", Body=b"cli")
    tarn.aws_ok("s3api", "put-object-acl", "--bucket", b, "--key", "f", "--acl", "public-read")
    out = json.loads(tarn.aws_ok("s3api", "get-object-acl", "--bucket", b, "--key", "f").stdout)
    assert {g["Grantee"].get("URI") for g in out["Grants"]} >= {ALL_USERS}
    assert anon(tarn, "GET", b, "f").content == b"cli"
    r = tarn.aws("s3api", "put-bucket-acl", "--bucket", b, "--grant-read",
                 "emailaddress=a@example.com")
    assert r.returncode != 0 and "UnresolvableGrantByEmailAddress" in r.stderr
    tarn.aws_ok("s3", "cp", "-", "s3://%s/up" % b, "--acl", "public-read", input="via cp")
    assert anon(tarn, "GET", b, "up").content == b"via cp"
