"""tests/e2e/test_s3_versioning.py -- S3 versioning end to end with boto3:
PutBucketVersioning / GetBucketVersioning, version ids on every write,
GET/HEAD/DELETE by version, delete markers, suspended versioning's null
versions, ListObjectVersions paging, copies from a version, DeleteObjects
with versions, and the error codes of every refusal.
"""
import pytest
import requests
from botocore.exceptions import ClientError


def code_of(exc):
    return exc.value.response["Error"]["Code"]


def status_of(exc):
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def enable(s3, bucket, status="Enabled"):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def body(s3, bucket, key, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def versions(s3, bucket, **kw):
    r = s3.list_object_versions(Bucket=bucket, **kw)
    return r.get("Versions", []), r.get("DeleteMarkers", []), r


def test_versioning_configuration(s3, bucket):
    r = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in r  # never set: an empty configuration
    enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    with pytest.raises(ClientError) as ei:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "On"})
    assert code_of(ei) == "MalformedXML"
    with pytest.raises(ClientError) as ei:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={
            "Status": "Enabled", "MFADelete": "Enabled"}, MFA="arn:mfa 123456")
    assert code_of(ei) == "NotImplemented"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_versioning(Bucket="no-such-bucket-v")
    assert code_of(ei) == "NoSuchBucket"


def test_unversioned_bucket_unchanged(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    assert "VersionId" not in r
    h = s3.head_object(Bucket=bucket, Key="k")
    assert "VersionId" not in h
    d = s3.delete_object(Bucket=bucket, Key="k")
    assert "VersionId" not in d and "DeleteMarker" not in d
    v, m, _ = versions(s3, bucket)
    assert v == [] and m == []


def test_versions_markers_and_reads(s3, bucket):
    s3.put_object(Bucket=bucket, Key="doc", Body=b"before")  # the null version
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"v1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"v2" * 10000)["VersionId"]
    assert v1 != v2 and len(v1) == 32
    assert body(s3, bucket, "doc") == b"v2" * 10000
    assert body(s3, bucket, "doc", VersionId=v1) == b"v1"
    assert body(s3, bucket, "doc", VersionId="null") == b"before"
    assert s3.head_object(Bucket=bucket, Key="doc")["VersionId"] == v2
    assert s3.head_object(Bucket=bucket, Key="doc", VersionId=v1)["ContentLength"] == 2

    # a delete without a version adds a marker; the key reads as missing
    d = s3.delete_object(Bucket=bucket, Key="doc")
    assert d["DeleteMarker"] is True
    marker = d["VersionId"]
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="doc")
    assert code_of(ei) == "NoSuchKey"
    hdrs = ei.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert hdrs["x-amz-delete-marker"] == "true"
    assert hdrs["x-amz-version-id"] == marker
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="doc", VersionId=marker)
    assert status_of(ei) == 405 and code_of(ei) == "MethodNotAllowed"
    assert "doc" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert body(s3, bucket, "doc", VersionId=v2) == b"v2" * 10000

    v, m, _ = versions(s3, bucket)
    assert [x["VersionId"] for x in v] == [v2, v1, "null"]
    assert [x["IsLatest"] for x in v] == [False, False, False]
    assert [(x["VersionId"], x["IsLatest"]) for x in m] == [(marker, True)]
    assert v[0]["Size"] == 20000 and v[1]["ETag"].strip('"')

    # removing the marker brings v2 back
    d = s3.delete_object(Bucket=bucket, Key="doc", VersionId=marker)
    assert d["DeleteMarker"] is True and d["VersionId"] == marker
    assert body(s3, bucket, "doc") == b"v2" * 10000
    # removing the current version makes v1 current
    d = s3.delete_object(Bucket=bucket, Key="doc", VersionId=v2)
    assert d["VersionId"] == v2 and "DeleteMarker" not in d
    assert body(s3, bucket, "doc") == b"v1"
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="doc", VersionId=v2)
    assert code_of(ei) == "NoSuchVersion"
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="doc", VersionId="not-a-version")
    assert code_of(ei) == "InvalidArgument"
    with pytest.raises(ClientError) as ei:
        s3.delete_object(Bucket=bucket, Key="doc", VersionId="not-a-version")
    assert code_of(ei) == "InvalidArgument"
    v, m, _ = versions(s3, bucket)
    assert [(x["VersionId"], x["IsLatest"]) for x in v] == [(v1, True), ("null", False)]
    assert m == []
    # a bucket with versions is not empty
    for x in v:
        s3.delete_object(Bucket=bucket, Key="doc", VersionId=x["VersionId"])
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="gone")
    with pytest.raises(ClientError) as ei:
        s3.delete_bucket(Bucket=bucket)
    assert code_of(ei) == "BucketNotEmpty"


def test_suspended_null_versions(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["VersionId"]
    enable(s3, bucket, "Suspended")
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"n1")
    assert r["VersionId"] == "null"
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"n2")  # replaces the null version
    assert r["VersionId"] == "null"
    v, m, _ = versions(s3, bucket)
    assert [(x["VersionId"], x["IsLatest"]) for x in v] == [("null", True), (v1, False)]
    assert body(s3, bucket, "k", VersionId="null") == b"n2"
    d = s3.delete_object(Bucket=bucket, Key="k")  # a null marker, replacing the null version
    assert d["DeleteMarker"] is True and d["VersionId"] == "null"
    v, m, _ = versions(s3, bucket)
    assert [x["VersionId"] for x in v] == [v1]
    assert [(x["VersionId"], x["IsLatest"]) for x in m] == [("null", True)]
    enable(s3, bucket)
    v3 = s3.put_object(Bucket=bucket, Key="k", Body=b"v3")["VersionId"]
    v, m, _ = versions(s3, bucket)
    assert [x["VersionId"] for x in v] == [v3, v1]
    assert [(x["VersionId"], x["IsLatest"]) for x in m] == [("null", False)]
    assert body(s3, bucket, "k") == b"v3"


def test_list_versions_paging_and_prefixes(s3, bucket):
    enable(s3, bucket)
    made = {}
    for key in ["a/1", "a/2", "b", "c/x/1"]:
        made[key] = [s3.put_object(Bucket=bucket, Key=key, Body=key.encode() * (i + 1))["VersionId"]
                     for i in range(3)]
    s3.delete_object(Bucket=bucket, Key="b")
    seen = []
    kw = {"MaxKeys": 2}
    pages = 0
    while True:
        r = s3.list_object_versions(Bucket=bucket, **kw)
        pages += 1
        entries = r.get("Versions", []) + r.get("DeleteMarkers", [])
        assert len(entries) <= 2
        seen += [(x["Key"], x["VersionId"]) for x in entries]
        if not r["IsTruncated"]:
            break
        kw = {"MaxKeys": 2, "KeyMarker": r["NextKeyMarker"],
              "VersionIdMarker": r["NextVersionIdMarker"]}
    assert pages == 7
    assert len(seen) == 13 and len(set(seen)) == 13
    assert [k for k, _ in seen] == sorted(k for k, _ in seen)
    assert [vid for k, vid in seen if k == "a/1"] == list(reversed(made["a/1"]))

    r = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "c/"]
    assert [x["Key"] for x in r["Versions"]] == ["b"] * 3
    assert [x["Key"] for x in r["DeleteMarkers"]] == ["b"]
    r = s3.list_object_versions(Bucket=bucket, Prefix="c/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["c/x/"]
    r = s3.list_object_versions(Bucket=bucket, Prefix="a/", KeyMarker="a/1")
    assert {x["Key"] for x in r["Versions"]} == {"a/2"}
    with pytest.raises(ClientError) as ei:
        s3.list_object_versions(Bucket=bucket, VersionIdMarker=made["b"][0])
    assert code_of(ei) == "InvalidArgument"


def test_copy_from_version_and_multipart(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"second")
    r = s3.copy_object(Bucket=bucket, Key="dst",
                       CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1})
    assert r["CopySourceVersionId"] == v1
    assert r["VersionId"] and r["VersionId"] != v1
    assert body(s3, bucket, "dst") == b"first"
    # restoring an old version: copy it onto its own key
    r = s3.copy_object(Bucket=bucket, Key="src",
                       CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1})
    assert body(s3, bucket, "src") == b"first"
    assert s3.head_object(Bucket=bucket, Key="src")["VersionId"] == r["VersionId"]
    m = s3.delete_object(Bucket=bucket, Key="src")["VersionId"]
    with pytest.raises(ClientError) as ei:
        s3.copy_object(Bucket=bucket, Key="dst2",
                       CopySource={"Bucket": bucket, "Key": "src", "VersionId": m})
    assert code_of(ei) == "InvalidRequest"
    with pytest.raises(ClientError) as ei:
        s3.copy_object(Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "src"})
    assert code_of(ei) == "NoSuchKey"

    up = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="big", UploadId=up, PartNumber=1, Body=b"p" * 100)
    r = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert len(r["VersionId"]) == 32
    assert s3.head_object(Bucket=bucket, Key="big")["VersionId"] == r["VersionId"]


def test_delete_objects_with_versions(s3, bucket):
    enable(s3, bucket)
    va = s3.put_object(Bucket=bucket, Key="a", Body=b"a")["VersionId"]
    vb = s3.put_object(Bucket=bucket, Key="b", Body=b"b")["VersionId"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "VersionId": va}, {"Key": "b"}, {"Key": "c", "VersionId": "bogus"}]})
    deleted = {d["Key"]: d for d in r["Deleted"]}
    assert deleted["a"]["VersionId"] == va and "DeleteMarker" not in deleted["a"]
    assert deleted["b"]["DeleteMarker"] is True and deleted["b"]["DeleteMarkerVersionId"]
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("c", "InvalidArgument")]
    v, m, _ = versions(s3, bucket)
    assert [x["VersionId"] for x in v] == [vb]
    assert [x["Key"] for x in m] == ["b"]


def test_presigned_get_of_a_version(tarn, s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="p", Body=b"one")["VersionId"]
    s3.put_object(Bucket=bucket, Key="p", Body=b"two")
    url = tarn.client(signature_version="s3v4").generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p",
                                                          "VersionId": v1})
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == b"one"
    assert r.headers["x-amz-version-id"] == v1


def test_tagging_and_part_copy_by_version(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="t", Body=b"a" * 100, Tagging="gen=1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="t", Body=b"b" * 100, Tagging="gen=2")["VersionId"]
    r = s3.get_object_tagging(Bucket=bucket, Key="t", VersionId=v1)
    assert r["VersionId"] == v1 and r["TagSet"] == [{"Key": "gen", "Value": "1"}]
    r = s3.put_object_tagging(Bucket=bucket, Key="t", VersionId=v1,
                              Tagging={"TagSet": [{"Key": "gen", "Value": "old"}]})
    assert r["VersionId"] == v1
    assert s3.get_object_tagging(Bucket=bucket, Key="t", VersionId=v1)["TagSet"] == [
        {"Key": "gen", "Value": "old"}]
    r = s3.get_object_tagging(Bucket=bucket, Key="t")
    assert r["VersionId"] == v2 and r["TagSet"] == [{"Key": "gen", "Value": "2"}]
    with pytest.raises(ClientError) as ei:
        s3.get_object_tagging(Bucket=bucket, Key="t", VersionId="0" * 15 + "1" + "0" * 16)
    assert code_of(ei) == "NoSuchVersion"

    up = s3.create_multipart_upload(Bucket=bucket, Key="joined")["UploadId"]
    r = s3.upload_part_copy(Bucket=bucket, Key="joined", UploadId=up, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "t", "VersionId": v1})
    assert r["CopySourceVersionId"] == v1
    s3.complete_multipart_upload(Bucket=bucket, Key="joined", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
    assert body(s3, bucket, "joined") == b"a" * 100
    with pytest.raises(ClientError) as ei:
        s3.create_multipart_upload(Bucket=bucket, Key="locked", ObjectLockLegalHoldStatus="ON")
    assert code_of(ei) == "InvalidRequest"   # a bucket without object lock, as PutObject
