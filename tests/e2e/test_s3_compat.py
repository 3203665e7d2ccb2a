"""tests/e2e/test_s3_compat.py -- S3 answers as S3 answers them, in the
corners clients meet: a retried CompleteMultipartUpload, DeleteBucket with
uploads in progress, GetObject/HeadObject ?partNumber, bucket tagging,
CreateBucket of an owned bucket, empty metadata values, Content-Encoding,
expired signatures, ListObjectsV2 parameters and x-amz-tagging order.

Each test drives the server with boto3 or with raw HTTP signed by
botocore's SigV4 signer (tarnlib.Tarn.request).
"""
import datetime
import gzip
import os
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from tarnlib import client_error, key_path, parse_xml, s3_error

MIB = 1024 * 1024


def upload_parts(s3, bucket, key, bodies):
    """Creates an upload of bodies (one per part, numbered from 1); returns
    (upload id, [{"PartNumber", "ETag"}])."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for n, body in enumerate(bodies, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=body)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    return uid, parts


# ---- multipart: retried complete, repeated parts ----

def test_complete_retried_after_success_answers_same_etag(s3, bucket):
    p1 = os.urandom(5 * MIB)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="big", UploadId=uid, PartNumber=2, Body=b"first try")
    r1 = s3.upload_part(Bucket=bucket, Key="big", UploadId=uid, PartNumber=1, Body=p1)
    r2 = s3.upload_part(Bucket=bucket, Key="big", UploadId=uid, PartNumber=2, Body=b"the tail")
    parts = [{"PartNumber": 1, "ETag": r1["ETag"]}, {"PartNumber": 2, "ETag": r2["ETag"]}]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=uid,
                                        MultipartUpload={"Parts": parts})
    again = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=uid,
                                         MultipartUpload={"Parts": parts})
    assert again["ETag"] == done["ETag"]
    assert done["ETag"].endswith('-2"')
    body = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
    assert body == p1 + b"the tail"  # the part uploaded twice: the last upload

    # once the object is overwritten, the upload is really gone
    s3.put_object(Bucket=bucket, Key="big", Body=b"new")
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=uid,
                                     MultipartUpload={"Parts": parts})
    assert client_error(ei.value) == ("NoSuchUpload", 404)


def test_complete_of_another_upload_is_still_no_such_upload(s3, bucket):
    uid, parts = upload_parts(s3, bucket, "k", [b"only part"])
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid,
                                 MultipartUpload={"Parts": parts})
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId="0" * 32,
                                     MultipartUpload={"Parts": parts})
    assert client_error(ei.value) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket=bucket, Key="other", UploadId=uid,
                                     MultipartUpload={"Parts": parts})
    assert client_error(ei.value) == ("NoSuchUpload", 404)


def test_delete_bucket_aborts_incomplete_uploads(tarn, s3, bucket):
    upload_parts(s3, bucket, "pending", [b"x" * 1000, b"y" * 1000])
    s3.create_multipart_upload(Bucket=bucket, Key="empty-upload")
    blobs = os.path.join(tarn.data, "blobs")

    def count():
        return sum(len(files) for _, _, files in os.walk(blobs))

    before = count()
    assert before >= 2
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as ei:
        s3.head_bucket(Bucket=bucket)
    assert client_error(ei.value)[1] == 404
    assert count() == before - 2  # the parts' files were collected
    # a new bucket of the same name starts without the old uploads
    s3.create_bucket(Bucket=bucket)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_delete_bucket_with_objects_is_still_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    with pytest.raises(ClientError) as ei:
        s3.delete_bucket(Bucket=bucket)
    assert client_error(ei.value) == ("BucketNotEmpty", 409)


# ---- ?partNumber ----

def test_get_and_head_part_of_multipart_object(tarn, s3, bucket):
    p1 = os.urandom(5 * MIB)
    p2 = os.urandom(5 * MIB + 7)
    p3 = b"last bytes"
    uid, parts = upload_parts(s3, bucket, "mp", [p1, p2, p3])
    etag = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                        MultipartUpload={"Parts": parts})["ETag"]
    whole = p1 + p2 + p3
    offset = 0
    for n, p in enumerate([p1, p2, p3], 1):
        r = s3.get_object(Bucket=bucket, Key="mp", PartNumber=n)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert r["Body"].read() == p
        assert r["PartsCount"] == 3
        assert r["ContentLength"] == len(p)
        assert r["ContentRange"] == "bytes %d-%d/%d" % (offset, offset + len(p) - 1, len(whole))
        assert r["ETag"] == etag
        h = s3.head_object(Bucket=bucket, Key="mp", PartNumber=n)
        assert h["ContentLength"] == len(p)
        assert h["PartsCount"] == 3
        offset += len(p)
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=4)
    assert client_error(ei.value) == ("InvalidPartNumber", 416)
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="mp", PartNumber=4)
    assert client_error(ei.value)[1] == 416
    r = tarn.request("GET", key_path(bucket, "mp"), query={"partNumber": "0"})
    assert r.status_code == 400
    assert s3_error(r)[0] == "InvalidArgument"
    # a plain GET is unchanged: the whole object, no parts count
    r = s3.get_object(Bucket=bucket, Key="mp")
    assert r["Body"].read() == whole
    assert "PartsCount" not in r


def test_part_number_of_single_part_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="small", Body=b"0123456789")
    r = s3.get_object(Bucket=bucket, Key="small", PartNumber=1)
    assert r["Body"].read() == b"0123456789"
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["ContentRange"] == "bytes 0-9/10"
    assert "PartsCount" not in r
    h = s3.head_object(Bucket=bucket, Key="small", PartNumber=1)
    assert h["ContentLength"] == 10
    # past part 1 of an object not uploaded in parts: 400 InvalidPart
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="small", PartNumber=2)
    assert client_error(ei.value) == ("InvalidPart", 400)
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="small", PartNumber=2)
    assert client_error(ei.value)[1] == 400


# ---- bucket tagging ----

def test_bucket_tagging_round_trip(s3, bucket):
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_tagging(Bucket=bucket)
    assert client_error(ei.value) == ("NoSuchTagSet", 404)
    tags = [{"Key": "team", "Value": "data"}, {"Key": "cost-center", "Value": ""},
            {"Key": "b", "Value": "2"}]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tags
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags[:1]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tags[:1]
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_tagging(Bucket=bucket)
    assert client_error(ei.value) == ("NoSuchTagSet", 404)
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_tagging(Bucket=bucket + "-missing")
    assert client_error(ei.value) == ("NoSuchBucket", 404)


@pytest.mark.parametrize("tags", [
    [{"Key": "k%d" % i, "Value": "v"} for i in range(51)],
    [{"Key": "k" * 129, "Value": "v"}],
    [{"Key": "k", "Value": "v" * 257}],
    [{"Key": "same", "Value": "1"}, {"Key": "same", "Value": "2"}],
    [{"Key": "aws:reserved", "Value": "v"}],
], ids=["51-tags", "long-key", "long-value", "duplicate", "aws-prefix"])
def test_bucket_tagging_validation(s3, bucket, tags):
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "keep", "Value": "me"}]})
    with pytest.raises(ClientError) as ei:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    assert client_error(ei.value) == ("InvalidTag", 400)
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "keep", "Value": "me"}]


def test_bucket_tagging_limits_accepted(s3, bucket):
    tags = [{"Key": "k%02d" % i, "Value": "v"} for i in range(50)]
    tags[0] = {"Key": "é" * 128, "Value": "ü" * 256}
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tags


# ---- CreateBucket of an owned bucket ----

def test_create_owned_bucket_in_us_east_1(tarn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    r = s3.create_bucket(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    r = tarn.request("PUT", key_path(bucket))
    assert r.status_code == 200
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"
    with pytest.raises(ClientError) as ei:
        s3.create_bucket(Bucket=bucket,
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert client_error(ei.value) == ("BucketAlreadyOwnedByYou", 409)


# ---- metadata and Content-Encoding ----

def test_empty_user_metadata_value_boto3(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v", Metadata={"x": "", "y": "set"})
    h = s3.head_object(Bucket=bucket, Key="k")
    assert h["Metadata"] == {"x": "", "y": "set"}
    g = s3.get_object(Bucket=bucket, Key="k")
    assert g["Metadata"] == {"x": "", "y": "set"}


def test_empty_user_metadata_value_raw(tarn, bucket):
    r = tarn.request("PUT", key_path(bucket, "raw"), body=b"v",
                     headers={"x-amz-meta-x": "", "x-amz-meta-y": "1"})
    assert r.status_code == 200, r.text
    r = tarn.request("HEAD", key_path(bucket, "raw"))
    assert r.status_code == 200
    assert r.headers.get("x-amz-meta-x") == ""
    assert r.headers.get("x-amz-meta-y") == "1"
    r = tarn.request("GET", key_path(bucket, "raw"))
    assert "x-amz-meta-x" in r.headers
    assert r.headers["x-amz-meta-x"] == ""


@pytest.mark.parametrize("given,want", [
    ("aws-chunked,gzip", "gzip"),
    ("gzip", "gzip"),
    ("gzip, br", "gzip, br"),
    ("aws-chunked", None),
])
def test_content_encoding_returned_as_given(tarn, s3, bucket, given, want):
    body = gzip.compress(b"payload")
    r = tarn.request("PUT", key_path(bucket, "enc"), body=body,
                     headers={"Content-Encoding": given})
    assert r.status_code == 200, r.text
    h = s3.head_object(Bucket=bucket, Key="enc")
    assert h.get("ContentEncoding") == want
    g = s3.get_object(Bucket=bucket, Key="enc")
    assert g.get("ContentEncoding") == want
    assert g["Body"].read() == body  # stored as sent, never decoded
    r = tarn.request("HEAD", key_path(bucket, "enc"))
    assert r.headers.get("Content-Encoding") == want


def test_content_encoding_boto3(s3, bucket):
    body = gzip.compress(b"payload")
    s3.put_object(Bucket=bucket, Key="gz", Body=body, ContentEncoding="gzip")
    assert s3.head_object(Bucket=bucket, Key="gz")["ContentEncoding"] == "gzip"


# ---- expired signatures ----

def test_expired_presigned_url_is_access_denied(tarn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    import requests
    when = datetime.datetime.utcnow() - datetime.timedelta(minutes=10)
    url = tarn.presign("GET", key_path(bucket, "k"), expires=60, when=when)
    r = requests.get(url, timeout=30)
    assert r.status_code == 403
    code, msg = s3_error(r)
    assert code == "AccessDenied"
    assert "expired" in msg.lower()


def test_skewed_header_signature_is_403(tarn, s3, bucket):
    when = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
    r = tarn.request("GET", key_path(bucket), when=when)
    assert r.status_code == 403
    assert s3_error(r)[0] == "RequestTimeTooSkewed"


# ---- listings ----

def test_list_v2_empty_continuation_token_is_none(tarn, s3, bucket):
    for k in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    r = s3.list_objects_v2(Bucket=bucket, ContinuationToken="")
    assert [o["Key"] for o in r["Contents"]] == ["a", "b"]
    r = tarn.request("GET", key_path(bucket), query=[("list-type", "2"),
                                                       ("continuation-token", "")])
    assert r.status_code == 200, r.text
    assert [c.findtext("Key") for c in parse_xml(r.content).findall("Contents")] == ["a", "b"]


def test_list_fields_decoded_unless_url_encoding_asked(tarn, s3, bucket):
    keys = ["dir one/a+b.txt", "dir one/sub dir/c", "dir one/é"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    q = [("list-type", "2"), ("prefix", "dir one/"), ("delimiter", "/"),
         ("start-after", "dir one/a b")]
    root = parse_xml(tarn.request("GET", key_path(bucket), query=q).content)
    assert root.findtext("Prefix") == "dir one/"
    assert root.findtext("Delimiter") == "/"
    assert root.findtext("StartAfter") == "dir one/a b"
    assert [c.findtext("Key") for c in root.findall("Contents")] == [
        "dir one/a+b.txt", "dir one/é"]
    assert [p.findtext("Prefix") for p in root.findall("CommonPrefixes")] == [
        "dir one/sub dir/"]
    root = parse_xml(tarn.request("GET", key_path(bucket),
                                  query=q + [("encoding-type", "url")]).content)
    assert root.findtext("EncodingType") == "url"
    assert root.findtext("Prefix") == quote("dir one/", safe="/")
    assert root.findtext("StartAfter") == quote("dir one/a b", safe="/")
    assert [c.findtext("Key") for c in root.findall("Contents")] == [
        quote("dir one/a+b.txt", safe="/"), quote("dir one/é", safe="/")]
    assert [p.findtext("Prefix") for p in root.findall("CommonPrefixes")] == [
        quote("dir one/sub dir/", safe="/")]
    # ListObjects (v1) and ListMultipartUploads answer their fields the same way
    q1 = [("prefix", "dir one/"), ("delimiter", "/"), ("marker", "dir one/a b")]
    root = parse_xml(tarn.request("GET", key_path(bucket), query=q1).content)
    assert root.findtext("Prefix") == "dir one/"
    assert root.findtext("Marker") == "dir one/a b"
    root = parse_xml(tarn.request("GET", key_path(bucket),
                                  query=q1 + [("encoding-type", "url")]).content)
    assert root.findtext("Prefix") == quote("dir one/", safe="/")
    assert root.findtext("Marker") == quote("dir one/a b", safe="/")
    s3.create_multipart_upload(Bucket=bucket, Key="dir one/up load")
    qu = [("uploads", ""), ("prefix", "dir one/")]
    root = parse_xml(tarn.request("GET", key_path(bucket), query=qu).content)
    assert root.findtext("Prefix") == "dir one/"
    assert [u.findtext("Key") for u in root.findall("Upload")] == ["dir one/up load"]
    root = parse_xml(tarn.request("GET", key_path(bucket),
                                  query=qu + [("encoding-type", "url")]).content)
    assert root.findtext("Prefix") == quote("dir one/", safe="/")
    assert [u.findtext("Key") for u in root.findall("Upload")] == [
        quote("dir one/up load", safe="/")]
    # boto3 asks for url encoding and decodes: the user sees the keys
    r = s3.list_objects_v2(Bucket=bucket, Prefix="dir one/", Delimiter="/")
    assert r["Prefix"] == "dir one/"
    assert [o["Key"] for o in r["Contents"]] == ["dir one/a+b.txt", "dir one/é"]


# ---- x-amz-tagging ----

def test_put_object_tagging_header_keeps_order_and_empty_values(tarn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"v", Tagging="foo=bar&bar=")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [
        {"Key": "foo", "Value": "bar"}, {"Key": "bar", "Value": ""}]
    r = tarn.request("PUT", key_path(bucket, "raw"), body=b"v",
                     headers={"x-amz-tagging": "z=1&a=&m=x%20y"})
    assert r.status_code == 200, r.text
    assert s3.get_object_tagging(Bucket=bucket, Key="raw")["TagSet"] == [
        {"Key": "z", "Value": "1"}, {"Key": "a", "Value": ""}, {"Key": "m", "Value": "x y"}]
