"""tests/e2e/test_s3_post.py -- browser uploads (POST Object with a POST
policy) and conditional writes (If-None-Match / If-Match), end to end.

The forms are made the way a web application makes them: boto3's
generate_presigned_post (policy, x-amz-* fields, signature), then posted
with `requests` as multipart/form-data, as a browser would. Every refusal
is checked for its S3 error code and for leaving no object behind.
"""
import base64
import hashlib
import json
import os
import urllib.parse

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

import lambda_util as lu
import tarnlib
from tarnlib import client_error, parse_xml, s3_error
from test_events import aws_client, make_queue, queue_rule, receive_all
from test_iam import ACCOUNT, TRUST, function_keys


@pytest.fixture(scope="module")
def s3(tarn):
    # generate_presigned_post signs with SigV4 only when told (else SigV2,
    # which tarn refuses as it does everywhere)
    return tarn.client(signature_version="s3v4")


@pytest.fixture
def b(s3, bucket_name):
    s3.create_bucket(Bucket=bucket_name)
    return bucket_name


def post(tarn, bucket, fields, content=b"hello", filename="hello.txt", file_ctype=None,
         url=None):
    files = {"file": (filename, content) if file_ctype is None else (filename, content, file_ctype)}
    return requests.post(url or "%s/%s" % (tarn.endpoint, bucket), data=fields, files=files,
                         timeout=300, allow_redirects=False)


def exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        assert client_error(e)[0] in ("404", "NoSuchKey")
        return False


def presigned(s3, bucket, key, fields=None, conditions=None, expires=300):
    return s3.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions,
                                      ExpiresIn=expires)


def test_post_default_204_and_metadata(tarn, s3, b):
    fields = {"Content-Type": "text/plain", "x-amz-meta-owner": "ann",
              "Cache-Control": "max-age=60"}
    conds = [{"Content-Type": "text/plain"}, {"x-amz-meta-owner": "ann"},
             ["starts-with", "$Cache-Control", ""]]
    p = presigned(s3, b, "docs/a.txt", fields, conds)
    r = post(tarn, b, p["fields"], b"hello world")
    assert r.status_code == 204, r.text
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(b"hello world").hexdigest()
    o = s3.get_object(Bucket=b, Key="docs/a.txt")
    assert o["Body"].read() == b"hello world"
    assert o["ContentType"] == "text/plain"
    assert o["Metadata"] == {"owner": "ann"}
    assert o["CacheControl"] == "max-age=60"


def test_post_event_is_object_created_post(tarn, s3, b):
    sqs = aws_client(tarn, "sqs")
    qurl, qarn = make_queue(sqs, b + "-q")
    s3.put_bucket_notification_configuration(Bucket=b, NotificationConfiguration={
        "QueueConfigurations": [queue_rule(qarn, ["s3:ObjectCreated:Post"])]})
    receive_all(sqs, qurl, 1)   # the s3:TestEvent
    s3.put_object(Bucket=b, Key="put.txt", Body=b"not this one")
    p = presigned(s3, b, "ev.txt")
    assert post(tarn, b, p["fields"], b"event").status_code == 204
    recs = [json.loads(x)["Records"][0] for x in receive_all(sqs, qurl, 1, timeout=60)]
    assert [(r["eventName"], r["s3"]["object"]["key"]) for r in recs] == [
        ("ObjectCreated:Post", "ev.txt")]
    assert recs[0]["userIdentity"]["principalId"] == "AWS:" + tarn.access_key


def test_post_filename_and_201_200(tarn, s3, b):
    p = presigned(s3, b, "up/${filename}", {"success_action_status": "201"},
                  [{"success_action_status": "201"}])
    r = post(tarn, b, p["fields"], b"one", filename="photo 1.jpg")
    assert r.status_code == 201, r.text
    x = parse_xml(r.content)
    assert x.tag == "PostResponse"
    assert x.findtext("Bucket") == b
    assert x.findtext("Key") == "up/photo 1.jpg"
    assert x.findtext("ETag") == '"%s"' % hashlib.md5(b"one").hexdigest()
    assert x.findtext("Location").endswith("/%s/up/photo%%201.jpg" % b)
    assert s3.get_object(Bucket=b, Key="up/photo 1.jpg")["Body"].read() == b"one"
    # no Content-Type field: S3's default
    assert s3.head_object(Bucket=b, Key="up/photo 1.jpg")["ContentType"] == "binary/octet-stream"

    p = presigned(s3, b, "two", {"success_action_status": "200"}, [{"success_action_status": "200"}])
    r = post(tarn, b, p["fields"], b"two")
    assert r.status_code == 200 and r.content == b""


def test_post_redirect_303(tarn, s3, b):
    target = "https://example.com/done?x=1"
    p = presigned(s3, b, "r.txt", {"success_action_redirect": target},
                  [{"success_action_redirect": target}])
    r = post(tarn, b, p["fields"], b"redir")
    assert r.status_code == 303, r.text
    loc = urllib.parse.urlparse(r.headers["Location"])
    q = urllib.parse.parse_qs(loc.query)
    assert loc.netloc == "example.com" and q["x"] == ["1"]
    assert q["bucket"] == [b] and q["key"] == ["r.txt"]
    assert q["etag"] == ['"%s"' % hashlib.md5(b"redir").hexdigest()]
    assert exists(s3, b, "r.txt")


def test_post_tagging_and_fields_after_file_ignored(tarn, s3, b):
    tagging = ("<Tagging><TagSet><Tag><Key>team</Key><Value>web</Value></Tag>"
               "</TagSet></Tagging>")
    p = presigned(s3, b, "t.bin", {"tagging": tagging}, [{"tagging": tagging}])
    # fields after the file are ignored as S3 does: build the body by hand
    boundary = "----tarnpostboundary"
    parts = []
    for k, v in p["fields"].items():
        parts.append('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                     % (boundary, k, v))
    body = "".join(parts).encode()
    body += ('--%s\r\nContent-Disposition: form-data; name="file"; filename="t.bin"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n" % boundary).encode()
    body += b"\r\n--bin\x00ary\r\n"
    body += ('\r\n--%s\r\nContent-Disposition: form-data; name="x-amz-meta-late"\r\n\r\nv\r\n'
             "--%s--\r\n" % (boundary, boundary)).encode()
    r = requests.post("%s/%s" % (tarn.endpoint, b), data=body, timeout=60,
                      headers={"Content-Type": "multipart/form-data; boundary=%s" % boundary})
    assert r.status_code == 204, r.text
    o = s3.get_object(Bucket=b, Key="t.bin")
    assert o["Body"].read() == b"\r\n--bin\x00ary\r\n"
    assert o["Metadata"] == {}
    tags = s3.get_object_tagging(Bucket=b, Key="t.bin")["TagSet"]
    assert tags == [{"Key": "team", "Value": "web"}]


def refused(tarn, s3, b, key, r, code, status, msg=None):
    assert r.status_code == status, r.text
    c, m = s3_error(r)
    assert c == code, (c, m)
    if msg is not None:
        assert msg in m, m
    assert not exists(s3, b, key)


def test_post_refusals(tarn, s3, b):
    # expired
    p = presigned(s3, b, "k1", expires=-10)
    refused(tarn, s3, b, "k1", post(tarn, b, p["fields"]), "AccessDenied", 403,
            "Invalid according to Policy: Policy expired.")
    # bad signature (a policy changed after signing)
    p = presigned(s3, b, "k2")
    f = dict(p["fields"])
    doc = json.loads(base64.b64decode(f["policy"]))
    doc["conditions"].append(["starts-with", "$key", ""])
    f["policy"] = base64.b64encode(json.dumps(doc).encode()).decode()
    refused(tarn, s3, b, "k2", post(tarn, b, f), "SignatureDoesNotMatch", 403)
    # a wrong secret
    other = tarn.client(secret_key="not-the-secret", signature_version="s3v4")
    p = presigned(other, b, "k2b")
    refused(tarn, s3, b, "k2b", post(tarn, b, p["fields"]), "SignatureDoesNotMatch", 403)
    # an unknown access key
    other = tarn.client(access_key="AKIANOTAKEY000000000", secret_key="x",
                        signature_version="s3v4")
    p = presigned(other, b, "k2c")
    refused(tarn, s3, b, "k2c", post(tarn, b, p["fields"]), "InvalidAccessKeyId", 403)
    # a condition that fails
    p = presigned(s3, b, "k3", {"Content-Type": "image/png"},
                  [["starts-with", "$Content-Type", "image/"]])
    f = dict(p["fields"], **{"Content-Type": "text/html"})
    refused(tarn, s3, b, "k3", post(tarn, b, f), "AccessDenied", 403,
            "Invalid according to Policy: Policy Condition failed")
    # the key differs from the signed one
    p = presigned(s3, b, "k4")
    f = dict(p["fields"], key="k4-other")
    refused(tarn, s3, b, "k4-other", post(tarn, b, f), "AccessDenied", 403,
            "Policy Condition failed")
    # a field no condition covers
    p = presigned(s3, b, "k5")
    f = dict(p["fields"], **{"x-amz-meta-sneaky": "1"})
    refused(tarn, s3, b, "k5", post(tarn, b, f), "AccessDenied", 403,
            "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky")
    # a field sent twice (the policy saw the first value)
    p = presigned(s3, b, "k5b", {"x-amz-meta-a": "ok"}, [{"x-amz-meta-a": "ok"}])
    f = list(p["fields"].items()) + [("X-Amz-Meta-A", "evil")]
    r = requests.post("%s/%s" % (tarn.endpoint, b), data=f, files={"file": ("f", b"x")},
                      timeout=60)
    refused(tarn, s3, b, "k5b", r, "InvalidArgument", 400, "appears more than once")
    # too large / too small
    p = presigned(s3, b, "k6", conditions=[["content-length-range", 10, 20]])
    refused(tarn, s3, b, "k6", post(tarn, b, p["fields"], b"x" * 21), "EntityTooLarge", 400)
    refused(tarn, s3, b, "k6", post(tarn, b, p["fields"], b"x" * 9), "EntityTooSmall", 400)
    r = post(tarn, b, p["fields"], b"x" * 15)
    assert r.status_code == 204, r.text
    # no key field
    p = presigned(s3, b, "k7")
    f = dict(p["fields"])
    del f["key"]
    r = post(tarn, b, f)
    assert r.status_code == 400
    c, m = s3_error(r)
    assert c == "InvalidArgument" and "must contain a field named 'key'" in m
    # SigV2 forms (boto3's default without signature_version) are refused
    v2 = tarn.client().generate_presigned_post(b, "k7b")
    assert "signature" in v2["fields"]
    r = post(tarn, b, v2["fields"])
    assert r.status_code == 400 and s3_error(r)[0] == "InvalidRequest", r.text
    assert not exists(s3, b, "k7b")
    assert not exists(s3, b, "k7")
    # no file
    p = presigned(s3, b, "k8")
    r = requests.post("%s/%s" % (tarn.endpoint, b), files={k: (None, v) for k, v in
                                                           p["fields"].items()}, timeout=60)
    assert r.status_code == 400 and s3_error(r)[0] == "InvalidArgument", r.text
    assert not exists(s3, b, "k8")
    # not a form at all
    r = requests.post("%s/%s" % (tarn.endpoint, b), data=b"nope", timeout=60,
                      headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and s3_error(r)[0] == "MalformedPOSTRequest", r.text
    # a form cut short in the file
    boundary = "xyz"
    body = ('--xyz\r\nContent-Disposition: form-data; name="key"\r\n\r\nk9\r\n'
            '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc')
    r = requests.post("%s/%s" % (tarn.endpoint, b), data=body, timeout=60,
                      headers={"Content-Type": "multipart/form-data; boundary=%s" % boundary})
    assert r.status_code in (400, 403), r.text
    assert not exists(s3, b, "k9")
    # no such bucket
    r = post(tarn, b + "-none", presigned(s3, b + "-none", "k")["fields"])
    assert r.status_code == 404 and s3_error(r)[0] == "NoSuchBucket"


def test_post_anonymous_needs_policy(tarn, s3, b):
    r = post(tarn, b, {"key": "anon.txt"})
    refused(tarn, s3, b, "anon.txt", r, "AccessDenied", 403)
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::%s/drop/*" % b}]}))
    r = post(tarn, b, {"key": "drop/anon.txt"}, b"anon")
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=b, Key="drop/anon.txt")["Body"].read() == b"anon"
    refused(tarn, s3, b, "elsewhere.txt", post(tarn, b, {"key": "elsewhere.txt"}),
            "AccessDenied", 403)


def test_post_iam_user_without_put_refused(tarn, s3, b):
    iam = boto3.session.Session().client(
        "iam", endpoint_url=tarn.endpoint, region_name=tarnlib.REGION,
        aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key,
        config=Config(retries={"total_max_attempts": 1}))
    iam.create_user(UserName="poster")
    iam.put_user_policy(UserName="poster", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::%s/ok/*" % b}]}))
    k = iam.create_access_key(UserName="poster")["AccessKey"]
    us3 = tarn.client(k["AccessKeyId"], k["SecretAccessKey"], signature_version="s3v4")
    r = post(tarn, b, presigned(us3, b, "ok/a")["fields"], b"user")
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=b, Key="ok/a")["Body"].read() == b"user"
    r = post(tarn, b, presigned(us3, b, "no/a")["fields"])
    refused(tarn, s3, b, "no/a", r, "AccessDenied", 403, "is not authorized to perform: s3:PutObject")


def test_post_function_keys_follow_its_role(tarn, s3, b):
    iam = boto3.session.Session().client(
        "iam", endpoint_url=tarn.endpoint, region_name=tarnlib.REGION,
        aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key,
        config=Config(retries={"total_max_attempts": 1}))
    iam.create_role(RoleName="post-reader", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="post-reader", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % b}]}))
    name = lu.unique_name("post-fn")
    ak, sk = function_keys(lu.lambda_client(tarn), name,
                           "arn:aws:iam::%s:role/post-reader" % ACCOUNT)
    fs3 = tarn.client(ak, sk, signature_version="s3v4")
    r = post(tarn, b, presigned(fs3, b, "fn/a")["fields"])
    refused(tarn, s3, b, "fn/a", r, "AccessDenied", 403,
            "assumed-role/post-reader/%s is not authorized to perform: s3:PutObject" % name)


def test_post_large_streamed_and_virtual_host(tarn, s3, b, tmp_path):
    size = 20 << 20
    path = tmp_path / "big.bin"
    tarnlib.write_random_file(str(path), size, 7)
    with open(path, "rb") as fh:
        want = hashlib.md5(fh.read()).hexdigest()
    p = presigned(s3, b, "big.bin", conditions=[["content-length-range", 1, size]])
    with open(path, "rb") as fh:
        r = requests.post("%s/%s" % (tarn.endpoint, b), data=p["fields"],
                          files={"file": ("big.bin", fh)}, timeout=600)
    assert r.status_code == 204, r.text
    h = s3.head_object(Bucket=b, Key="big.bin")
    assert h["ContentLength"] == size and h["ETag"] == '"%s"' % want
    # one byte over the range: refused after streaming, nothing stored
    p = presigned(s3, b, "big2.bin", conditions=[["content-length-range", 1, size - 1]])
    with open(path, "rb") as fh:
        try:
            r = requests.post("%s/%s" % (tarn.endpoint, b), data=p["fields"],
                              files={"file": ("big.bin", fh)}, timeout=600)
            assert r.status_code == 400 and s3_error(r)[0] == "EntityTooLarge", r.text
        except requests.ConnectionError:
            pass  # the server may answer and close before the client finished sending
    assert not exists(s3, b, "big2.bin")
    # virtual-host addressing: Host bucket.localhost
    p = presigned(s3, b, "vh.txt")
    r = requests.post(tarn.endpoint + "/", data=p["fields"], files={"file": ("f", b"vh")},
                      headers={"Host": "%s.localhost:%d" % (b, tarn.port)}, timeout=60)
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=b, Key="vh.txt")["Body"].read() == b"vh"


def test_post_cors_preflight(tarn, s3, b):
    s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": ["https://app.example"], "AllowedMethods": ["POST"],
        "AllowedHeaders": ["*"]}]})
    r = requests.options("%s/%s" % (tarn.endpoint, b), timeout=60, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    p = presigned(s3, b, "c.txt")
    r = requests.post("%s/%s" % (tarn.endpoint, b), data=p["fields"],
                      files={"file": ("c", b"cors")}, headers={"Origin": "https://app.example"},
                      timeout=60)
    assert r.status_code == 204, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    # a refusal too, so the page can read why
    f = dict(p["fields"], key="c2.txt")
    r = requests.post("%s/%s" % (tarn.endpoint, b), data=f,
                      files={"file": ("c", b"cors")}, headers={"Origin": "https://app.example"},
                      timeout=60)
    assert r.status_code == 403, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"


# ---- conditional writes ----
# Debian's botocore predates the IfNoneMatch / IfMatch parameters: the
# headers go out on raw requests signed by botocore (tarnlib), as current
# SDKs send them.

def put(tarn, b, key, body, **headers):
    return tarn.request("PUT", "/%s/%s" % (b, key), body=body, headers=headers)


def error_code(r):
    return s3_error(r)[0]


def test_put_if_none_match(tarn, s3, b):
    r = put(tarn, b, "c", b"1", **{"If-None-Match": "*"})
    assert r.status_code == 200, r.text
    r = put(tarn, b, "c", b"2", **{"If-None-Match": "*"})
    assert r.status_code == 412 and error_code(r) == "PreconditionFailed", r.text
    assert s3.get_object(Bucket=b, Key="c")["Body"].read() == b"1"
    r = put(tarn, b, "c", b"2", **{"If-None-Match": '"abc"'})
    assert r.status_code == 501, r.text


def test_put_if_none_match_races(tarn, s3, b):
    # many writers, one key: exactly one If-None-Match: * create wins
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda i: put(tarn, b, "race", b"w%d" % i, **{"If-None-Match": "*"}),
                         range(16)))
    codes = sorted(r.status_code for r in rs)
    assert codes.count(200) == 1 and codes.count(412) == 15, codes
    winner = [i for i, r in enumerate(rs) if r.status_code == 200][0]
    assert s3.get_object(Bucket=b, Key="race")["Body"].read() == b"w%d" % winner


def test_put_if_match(tarn, s3, b):
    etag = s3.put_object(Bucket=b, Key="m", Body=b"1")["ETag"]
    r = put(tarn, b, "m", b"2", **{"If-Match": etag})
    assert r.status_code == 200, r.text
    etag2 = r.headers["ETag"]
    r = put(tarn, b, "m", b"3", **{"If-Match": etag})
    assert r.status_code == 412 and error_code(r) == "PreconditionFailed", r.text
    assert s3.get_object(Bucket=b, Key="m")["Body"].read() == b"2"
    r = put(tarn, b, "absent", b"3", **{"If-Match": etag2})
    assert r.status_code == 404 and error_code(r) == "NoSuchKey", r.text
    assert not exists(s3, b, "absent")


def complete(tarn, b, key, upload, parts, **headers):
    xml = "<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join(
        "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % (p["PartNumber"], p["ETag"])
        for p in parts["Parts"])
    return tarn.request("POST", "/%s/%s" % (b, key), query={"uploadId": upload},
                        body=xml.encode(), headers=headers)


def mpu(s3, b, key, data):
    u = s3.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
    et = s3.upload_part(Bucket=b, Key=key, UploadId=u, PartNumber=1, Body=data)["ETag"]
    return u, {"Parts": [{"PartNumber": 1, "ETag": et}]}


def test_complete_multipart_conditions(tarn, s3, b):
    u, parts = mpu(s3, b, "mp", b"first")
    r = complete(tarn, b, "mp", u, parts, **{"If-None-Match": "*"})
    assert r.status_code == 200, r.text
    etag = s3.head_object(Bucket=b, Key="mp")["ETag"]
    u, parts = mpu(s3, b, "mp", b"second")
    r = complete(tarn, b, "mp", u, parts, **{"If-None-Match": "*"})
    assert r.status_code == 412 and error_code(r) == "PreconditionFailed", r.text
    r = complete(tarn, b, "mp", u, parts, **{"If-Match": '"0123456789abcdef0123456789abcdef-1"'})
    assert r.status_code == 412 and error_code(r) == "PreconditionFailed", r.text
    assert s3.get_object(Bucket=b, Key="mp")["Body"].read() == b"first"
    r = complete(tarn, b, "mp", u, parts, **{"If-Match": etag})
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=b, Key="mp")["Body"].read() == b"second"


def test_delete_if_match(tarn, s3, b):
    etag = s3.put_object(Bucket=b, Key="d", Body=b"1")["ETag"]
    r = tarn.request("DELETE", "/%s/d" % b,
                     headers={"If-Match": '"0123456789abcdef0123456789abcdef"'})
    assert r.status_code == 412 and error_code(r) == "PreconditionFailed", r.text
    assert exists(s3, b, "d")
    r = tarn.request("DELETE", "/%s/d" % b, headers={"If-Match": etag})
    assert r.status_code == 204, r.text
    assert not exists(s3, b, "d")


def test_put_if_match_object_deleted_meanwhile(tarn, s3, b):
    """If-Match held when the request began, the object was deleted while its
    body was on the way: 409 ConditionalRequestConflict, as S3 answers."""
    import socket
    etag = s3.put_object(Bucket=b, Key="gone", Body=b"1")["ETag"]
    body = b"new bytes"
    url, headers = tarn.prepare("PUT", "/%s/gone" % b, body=body, payload_hash="UNSIGNED-PAYLOAD",
                                headers={"If-Match": etag, "Expect": "100-continue",
                                         "Content-Length": str(len(body)),
                                         "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    sock = socket.create_connection((tarn.host, tarn.port), timeout=60)
    try:
        head = "PUT /%s/gone HTTP/1.1\r\n" % b + "".join(
            "%s: %s\r\n" % (k, v) for k, v in headers.items())
        if "host" not in {k.lower() for k in headers}:
            head += "Host: %s:%d\r\n" % (tarn.host, tarn.port)
        sock.sendall((head + "\r\n").encode())
        got = b""
        while b"\r\n\r\n" not in got:   # the server read the head and checked If-Match
            chunk = sock.recv(4096)
            assert chunk, got
            got += chunk
        assert got.startswith(b"HTTP/1.1 100"), got
        s3.delete_object(Bucket=b, Key="gone")
        sock.sendall(body)
        resp = b""
        while b"</Error>" not in resp:
            chunk = sock.recv(4096)
            if not chunk:
                break
            resp += chunk
    finally:
        sock.close()
    assert resp.startswith(b"HTTP/1.1 409"), resp
    assert b"<Code>ConditionalRequestConflict</Code>" in resp
    assert not exists(s3, b, "gone")
