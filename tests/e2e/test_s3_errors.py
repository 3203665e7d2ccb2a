"""tests/e2e/test_s3_errors.py -- bad requests: each must get S3's error
code and leave nothing behind (no object, no bucket, and an object that was
there before keeps its old bytes).

Requests the SDKs refuse to send are made raw: signed by botocore's SigV4
code (tarnlib.Tarn.request), or written to a socket by hand.
"""
import base64
import datetime
import hashlib
import socket

import pytest
import requests
from botocore.exceptions import ClientError

from tarnlib import (MiB, body_for, client_error, key_path, list_all_keys, md5_etag,
                     parse_xml, s3_error)


def raises_code(fn, code, status):
    with pytest.raises(ClientError) as e:
        fn()
    assert client_error(e.value) == (code, status), e.value.response
    return e.value.response


def assert_error(resp, code, status):
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    got, message = s3_error(resp)
    assert got == code, resp.text[:500]
    assert message, "error %s has no message" % code
    assert resp.headers.get("Content-Type", "").startswith(("application/xml", "text/xml"))


def assert_absent(s3, bucket, key):
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert key not in list_all_keys(s3, bucket)


def assert_unchanged(s3, bucket, key, body):
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == body
    assert got["ETag"] == md5_etag(body)


@pytest.fixture
def existing(s3, bucket):
    """A bucket with one object 'old' whose bytes later bad writes must not touch."""
    body = b"the old, good version"
    s3.put_object(Bucket=bucket, Key="old", Body=body)
    return bucket, body


def utcnow():
    return datetime.datetime.utcnow()


# ---------------------------------------------------------------- authentication

def test_wrong_secret(tarn, s3, existing):
    bucket, body = existing
    bad = tarn.client(secret_key=tarn.secret_key + "x")
    raises_code(lambda: bad.put_object(Bucket=bucket, Key="new", Body=b"x"),
                "SignatureDoesNotMatch", 403)
    raises_code(lambda: bad.put_object(Bucket=bucket, Key="old", Body=b"x"),
                "SignatureDoesNotMatch", 403)
    raises_code(lambda: bad.get_object(Bucket=bucket, Key="old"), "SignatureDoesNotMatch", 403)
    raises_code(lambda: bad.list_objects_v2(Bucket=bucket), "SignatureDoesNotMatch", 403)
    raises_code(lambda: bad.create_bucket(Bucket=bucket + "-never"), "SignatureDoesNotMatch", 403)
    assert_absent(s3, bucket, "new")
    assert_unchanged(s3, bucket, "old", body)
    assert bucket + "-never" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_unknown_access_key(tarn, s3, existing):
    bucket, body = existing
    bad = tarn.client(access_key="AKIAUNKNOWNKEY000000")
    raises_code(lambda: bad.put_object(Bucket=bucket, Key="new", Body=b"x"),
                "InvalidAccessKeyId", 403)
    raises_code(lambda: bad.list_buckets(), "InvalidAccessKeyId", 403)
    assert_absent(s3, bucket, "new")


def test_unsigned_requests(tarn, s3, existing):
    bucket, body = existing
    base = tarn.endpoint + key_path(bucket)
    assert_error(requests.get(base + "/old", timeout=30), "AccessDenied", 403)
    assert_error(requests.get(base, timeout=30), "AccessDenied", 403)
    assert_error(requests.put(base + "/new", data=b"anonymous", timeout=30), "AccessDenied", 403)
    assert_error(requests.put(base + "/old", data=b"anonymous", timeout=30), "AccessDenied", 403)
    assert_error(requests.delete(base + "/old", timeout=30), "AccessDenied", 403)
    assert_error(requests.put(tarn.endpoint + "/" + bucket + "-anon", timeout=30),
                 "AccessDenied", 403)
    assert_absent(s3, bucket, "new")
    assert_unchanged(s3, bucket, "old", body)
    assert bucket + "-anon" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_malformed_authorization_header(tarn, s3, existing):
    bucket, _ = existing
    r = requests.put(tarn.endpoint + key_path(bucket, "new"), data=b"x", timeout=30, headers={
        "Authorization": "AWS4-HMAC-SHA256 Credential=garbage, SignedHeaders=host, Signature=00",
        "X-Amz-Date": utcnow().strftime("%Y%m%dT%H%M%SZ"),
        "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert_error(r, "AuthorizationHeaderMalformed", 400)
    assert_absent(s3, bucket, "new")


def test_expired_presigned_url(tarn, s3, existing):
    bucket, body = existing
    two_hours_ago = utcnow() - datetime.timedelta(hours=2)
    url = tarn.presign("GET", key_path(bucket, "old"), expires=60, when=two_hours_ago)
    assert_error(requests.get(url, timeout=30), "AccessDenied", 403)
    url = tarn.presign("PUT", key_path(bucket, "new"), expires=60, when=two_hours_ago)
    assert_error(requests.put(url, data=b"late", timeout=30), "AccessDenied", 403)
    url = tarn.presign("PUT", key_path(bucket, "old"), expires=60, when=two_hours_ago)
    assert_error(requests.put(url, data=b"late", timeout=30), "AccessDenied", 403)
    assert_absent(s3, bucket, "new")
    assert_unchanged(s3, bucket, "old", body)
    # the same URL signed now works: the refusal was the expiry
    url = tarn.presign("GET", key_path(bucket, "old"), expires=60)
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == body


def test_tampered_presigned_url(tarn, s3, existing):
    bucket, body = existing
    url = tarn.presign("PUT", key_path(bucket, "old"), expires=300)
    sig = url.rsplit("X-Amz-Signature=", 1)[1]
    bad = url[:-len(sig)] + ("0" if sig[0] != "0" else "1") + sig[1:]
    assert_error(requests.put(bad, data=b"forged", timeout=30), "SignatureDoesNotMatch", 403)
    assert_unchanged(s3, bucket, "old", body)


@pytest.mark.parametrize("offset_hours", [-1, 1])
def test_request_time_too_skewed(tarn, s3, existing, offset_hours):
    bucket, body = existing
    when = utcnow() + datetime.timedelta(hours=offset_hours)
    r = tarn.request("PUT", key_path(bucket, "new"), body=b"skewed", when=when)
    assert_error(r, "RequestTimeTooSkewed", 403)
    r = tarn.request("PUT", key_path(bucket, "old"), body=b"skewed", when=when)
    assert_error(r, "RequestTimeTooSkewed", 403)
    assert_absent(s3, bucket, "new")
    assert_unchanged(s3, bucket, "old", body)
    # signed now, the same request passes
    r = tarn.request("PUT", key_path(bucket, "new"), body=b"on time")
    assert r.status_code == 200, r.text


def test_metrics_need_a_valid_signature(tarn):
    r = tarn.request("GET", "/_tarn/metrics", secret_key=tarn.secret_key + "x")
    assert r.status_code == 403


# ---------------------------------------------------------------- names and sizes

BAD_BUCKET_NAMES = [
    "ab",                   # too short
    "a" * 64,               # too long
    "UpperCase",
    "under_score",
    "-leading-dash",
    "trailing-dash-",
    "double..dot",
    ".leading-dot",
    "192.168.5.4",          # an IP address
    "xn--punycode",
    "name-s3alias",
]


@pytest.mark.parametrize("name", BAD_BUCKET_NAMES)
def test_invalid_bucket_name(s3, name):
    raises_code(lambda: s3.create_bucket(Bucket=name), "InvalidBucketName", 400)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_key_too_long(s3, existing):
    bucket, _ = existing
    for key in ("k" * 1025, "é" * 512 + "x", "😀" * 256 + "x"):
        raises_code(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), "KeyTooLongError", 400)
        raises_code(lambda: s3.create_multipart_upload(Bucket=bucket, Key=key),
                    "KeyTooLongError", 400)
        raises_code(lambda: s3.copy_object(Bucket=bucket, Key=key,
                                           CopySource={"Bucket": bucket, "Key": "old"}),
                    "KeyTooLongError", 400)
    assert list_all_keys(s3, bucket) == ["old"]
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_metadata_too_large(s3, existing):
    bucket, body = existing
    raises_code(lambda: s3.put_object(Bucket=bucket, Key="new", Body=b"x",
                                      Metadata={"big": "m" * 9000}), "MetadataTooLarge", 400)
    raises_code(lambda: s3.put_object(Bucket=bucket, Key="old", Body=b"x",
                                      Metadata={"big": "m" * 9000}), "MetadataTooLarge", 400)
    assert_absent(s3, bucket, "new")
    assert_unchanged(s3, bucket, "old", body)


def test_invalid_tag(s3, existing):
    bucket, body = existing
    raises_code(lambda: s3.put_object(Bucket=bucket, Key="new", Body=b"x",
                                      Tagging="%s=v" % ("k" * 129)), "InvalidTag", 400)
    assert_absent(s3, bucket, "new")
    raises_code(lambda: s3.put_object_tagging(Bucket=bucket, Key="old", Tagging={
        "TagSet": [{"Key": "k" * 129, "Value": "v"}]}), "InvalidTag", 400)
    assert s3.get_object_tagging(Bucket=bucket, Key="old")["TagSet"] == []


def raw_http(tarn, head, body=b"", shutdown=True, timeout=60):
    """Writes head + body to a fresh connection, optionally closes the write
    side, and returns everything the server sends until it closes (b"" when
    it closes without answering)."""
    with socket.create_connection((tarn.host, tarn.port), timeout=timeout) as s:
        s.sendall(head + body)
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if not shutdown and b"\r\n\r\n" in out:
                # a complete error answer; do not wait for the body we never send
                hdr, _, rest = out.partition(b"\r\n\r\n")
                length = [int(l.split(b":", 1)[1]) for l in hdr.split(b"\r\n")
                          if l.lower().startswith(b"content-length:")]
                if length and len(rest) >= length[0]:
                    break
        return out


def request_head(method, path, headers):
    lines = ["%s %s HTTP/1.1" % (method, path)]
    lines += ["%s: %s" % (k, v) for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of_raw(answer):
    if not answer:
        return None
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("key", ["new", "old"])
def test_body_shorter_than_content_length(tarn, s3, existing, key):
    bucket, body = existing
    path = key_path(bucket, key)
    _, headers = tarn.prepare("PUT", path, payload_hash="UNSIGNED-PAYLOAD",
                              headers={"Content-Length": "1000", "Content-Type": "text/plain"})
    headers["Host"] = "%s:%d" % (tarn.host, tarn.port)
    answer = raw_http(tarn, request_head("PUT", path, headers), b"0123456789")
    status = status_of_raw(answer)
    assert status is None or status >= 400, answer[:500]
    if key == "new":
        assert_absent(s3, bucket, "new")
    else:
        assert_unchanged(s3, bucket, "old", body)
    assert list_all_keys(s3, bucket) == ["old"]


def test_entity_too_large_refused_before_the_body(tarn, s3, existing):
    bucket, _ = existing
    path = key_path(bucket, "huge")
    size = 6 * 1024 * MiB  # over S3's 5 GiB for one PUT
    _, headers = tarn.prepare("PUT", path, payload_hash="UNSIGNED-PAYLOAD",
                              headers={"Content-Length": str(size), "Expect": "100-continue"})
    headers["Host"] = "%s:%d" % (tarn.host, tarn.port)
    answer = raw_http(tarn, request_head("PUT", path, headers), shutdown=False, timeout=30)
    assert status_of_raw(answer) == 400, answer[:500]
    assert b"<Code>EntityTooLarge</Code>" in answer
    assert_absent(s3, bucket, "huge")


def test_content_sha256_mismatch(tarn, s3, existing):
    bucket, body = existing
    wrong = hashlib.sha256(b"some other body").hexdigest()
    for key in ("new", "old"):
        r = tarn.request("PUT", key_path(bucket, key), body=b"the real body", payload_hash=wrong)
        assert_error(r, "XAmzContentSHA256Mismatch", 400)
    assert_absent(s3, bucket, "new")
    assert_unchanged(s3, bucket, "old", body)


@pytest.mark.parametrize("field,value", [
    ("ChecksumCRC32", "AAAAAA=="),
    ("ChecksumCRC32C", "AAAAAA=="),
    ("ChecksumSHA1", base64.b64encode(hashlib.sha1(b"other").digest()).decode()),
    ("ChecksumSHA256", base64.b64encode(hashlib.sha256(b"other").digest()).decode()),
])
def test_checksum_mismatch(s3, existing, field, value):
    bucket, body = existing
    for key in ("new", "old"):
        raises_code(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"payload",
                                          **{field: value}), "BadDigest", 400)
    assert_absent(s3, bucket, "new")
    assert_unchanged(s3, bucket, "old", body)


def test_content_md5(s3, existing):
    bucket, body = existing
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    for key in ("new", "old"):
        raises_code(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"payload",
                                          ContentMD5=wrong), "BadDigest", 400)
        raises_code(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"payload",
                                          ContentMD5="not-an-md5"), "InvalidDigest", 400)
    assert_absent(s3, bucket, "new")
    assert_unchanged(s3, bucket, "old", body)
    right = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    s3.put_object(Bucket=bucket, Key="new", Body=b"payload", ContentMD5=right)
    assert_unchanged(s3, bucket, "new", b"payload")


# ---------------------------------------------------------------- XML bodies

def md5_header(body):
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
            "Content-Type": "application/xml"}


@pytest.mark.parametrize("xml", [
    b"<Delete><Object><Key>old</Key></Object>",
    b"this is not xml",
    b"<Delete><Object><Key>old</Key></Object></Delete><Extra/>",
])
def test_delete_objects_malformed_xml(tarn, s3, existing, xml):
    bucket, body = existing
    r = tarn.request("POST", key_path(bucket), query=[("delete", None)], body=xml,
                     headers=md5_header(xml))
    assert_error(r, "MalformedXML", 400)
    assert_unchanged(s3, bucket, "old", body)


@pytest.fixture
def upload(s3, bucket):
    """An upload of bucket/'mp' with two uploaded parts: 5 MiB and 10 bytes."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    p1 = body_for("e1", 5 * MiB)
    p2 = b"0123456789"
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    return bucket, uid, [(1, e1), (2, e2)], p1 + p2


def complete(s3, bucket, uid, parts, key="mp"):
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})


def assert_upload_intact(s3, bucket, uid, nparts=2):
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [p["PartNumber"] for p in parts] == list(range(1, nparts + 1))
    assert_absent(s3, bucket, "mp")


@pytest.mark.parametrize("xml", [
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
    b"not xml",
    b"<CompleteMultipartUpload></CompleteMultipartUpload>",
])
def test_complete_malformed_xml(tarn, s3, upload, xml):
    bucket, uid, parts, whole = upload
    r = tarn.request("POST", key_path(bucket, "mp"), query=[("uploadId", uid)], body=xml,
                     headers={"Content-Type": "application/xml"})
    assert_error(r, "MalformedXML", 400)
    assert_upload_intact(s3, bucket, uid)
    # the upload can still be completed
    done = complete(s3, bucket, uid, parts)
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == whole
    assert done["ETag"] == s3.head_object(Bucket=bucket, Key="mp")["ETag"]


def test_complete_entity_too_small(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=b"a" * 1024)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=b"b" * 1024)["ETag"]
    raises_code(lambda: complete(s3, bucket, uid, [(1, e1), (2, e2)]), "EntityTooSmall", 400)
    assert_upload_intact(s3, bucket, uid)
    # a single small part is a valid upload
    complete(s3, bucket, uid, [(1, e1)])
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"a" * 1024


def test_complete_invalid_part(s3, upload):
    bucket, uid, parts, whole = upload
    (n1, e1), (n2, e2) = parts
    raises_code(lambda: complete(s3, bucket, uid, [(n1, e1), (n2, '"%s"' % ("0" * 32))]),
                "InvalidPart", 400)
    raises_code(lambda: complete(s3, bucket, uid, [(n1, e1), (3, e2)]), "InvalidPart", 400)
    # a third part as large as the first, so no order is also too small
    e3 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=3,
                        Body=body_for("e3", 5 * MiB))["ETag"]
    raises_code(lambda: complete(s3, bucket, uid, [(3, e3), (n1, e1)]), "InvalidPartOrder", 400)
    assert_upload_intact(s3, bucket, uid, nparts=3)
    complete(s3, bucket, uid, parts)
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == whole


def test_no_such_upload(s3, bucket):
    bogus = "bm90LWFuLXVwbG9hZC1pZA"
    raises_code(lambda: s3.upload_part(Bucket=bucket, Key="k", UploadId=bogus, PartNumber=1,
                                       Body=b"x"), "NoSuchUpload", 404)
    raises_code(lambda: s3.list_parts(Bucket=bucket, Key="k", UploadId=bogus), "NoSuchUpload", 404)
    raises_code(lambda: complete(s3, bucket, bogus, [(1, '"%s"' % ("0" * 32))], key="k"),
                "NoSuchUpload", 404)
    raises_code(lambda: s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=bogus),
                "NoSuchUpload", 404)
    # an upload id is bound to its key
    uid = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    raises_code(lambda: s3.upload_part(Bucket=bucket, Key="other", UploadId=uid, PartNumber=1,
                                       Body=b"x"), "NoSuchUpload", 404)
    assert list_all_keys(s3, bucket) == []


# ---------------------------------------------------------------- missing things

def test_bucket_not_empty(s3, existing):
    bucket, body = existing
    raises_code(lambda: s3.delete_bucket(Bucket=bucket), "BucketNotEmpty", 409)
    assert_unchanged(s3, bucket, "old", body)
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.delete_object(Bucket=bucket, Key="old")
    s3.delete_bucket(Bucket=bucket)


def test_no_such_bucket(s3, bucket_name, bucket):
    missing = bucket_name + "-missing"
    for call in (
        lambda: s3.get_object(Bucket=missing, Key="k"),
        lambda: s3.put_object(Bucket=missing, Key="k", Body=b"x"),
        lambda: s3.list_objects_v2(Bucket=missing),
        lambda: s3.list_objects(Bucket=missing),
        lambda: s3.delete_bucket(Bucket=missing),
        lambda: s3.delete_object(Bucket=missing, Key="k"),
        lambda: s3.create_multipart_upload(Bucket=missing, Key="k"),
        lambda: s3.list_multipart_uploads(Bucket=missing),
        lambda: s3.get_bucket_location(Bucket=missing),
        lambda: s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": missing, "Key": "k"}),
        lambda: s3.delete_objects(Bucket=missing, Delete={"Objects": [{"Key": "k"}]}),
    ):
        raises_code(call, "NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=missing)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert missing not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert list_all_keys(s3, bucket) == []


def test_no_such_key(tarn, s3, bucket):
    raises_code(lambda: s3.get_object(Bucket=bucket, Key="nope"), "NoSuchKey", 404)
    raises_code(lambda: s3.get_object(Bucket=bucket, Key="nope", Range="bytes=0-1"), "NoSuchKey", 404)
    raises_code(lambda: s3.get_object_tagging(Bucket=bucket, Key="nope"), "NoSuchKey", 404)
    raises_code(lambda: s3.put_object_tagging(Bucket=bucket, Key="nope", Tagging={
        "TagSet": [{"Key": "a", "Value": "b"}]}), "NoSuchKey", 404)
    raises_code(lambda: s3.copy_object(Bucket=bucket, Key="copy",
                                       CopySource={"Bucket": bucket, "Key": "nope"}), "NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nope")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # the XML error names the key
    r = tarn.request("GET", key_path(bucket, "nope/é"))
    assert_error(r, "NoSuchKey", 404)
    assert parse_xml(r.content).findtext("Key") == "nope/é"
    assert list_all_keys(s3, bucket) == []
