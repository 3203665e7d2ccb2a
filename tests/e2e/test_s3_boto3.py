"""tests/e2e/test_s3_boto3.py -- the S3 API through boto3, operation by
operation, checking what a boto3 user would check: bytes, ETags, headers,
listings, tags, checksums.

Each test gets its own bucket on the module's server (conftest.py).
"""
import concurrent.futures
import datetime
import gzip
import socket
from urllib.parse import unquote_plus

import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tarnlib import (MiB, body_for, checksum_b64, client_error, key_path, list_all_keys,
                     md5_etag, multipart_etag, parse_xml, sha256_file,
                     unique_bucket_name, write_random_file)

DAY = datetime.timedelta(days=1)


def raises_code(fn, code, status):
    with pytest.raises(ClientError) as e:
        fn()
    assert client_error(e.value) == (code, status), e.value.response
    return e.value.response


def status_of(fn):
    """HTTP status of a call that botocore turns into an error (304, 412)."""
    with pytest.raises(ClientError) as e:
        fn()
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"]


# ---------------------------------------------------------------- buckets

def test_bucket_lifecycle(s3, bucket_name):
    s3.create_bucket(Bucket=bucket_name)
    buckets = {b["Name"]: b for b in s3.list_buckets()["Buckets"]}
    assert bucket_name in buckets
    created = buckets[bucket_name]["CreationDate"]
    assert created.year >= 2024  # a real date, not the epoch
    s3.head_bucket(Bucket=bucket_name)
    assert s3.get_bucket_location(Bucket=bucket_name)["LocationConstraint"] in (None, "us-east-1")

    s3.delete_bucket(Bucket=bucket_name)
    assert bucket_name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert status_of(lambda: s3.head_bucket(Bucket=bucket_name)) == 404


def test_list_buckets_sorted(s3, bucket_name):
    names = [bucket_name + "-z", bucket_name + "-a", bucket_name + "-m"]
    for n in names:
        s3.create_bucket(Bucket=n)
    listed = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert listed == sorted(listed)
    assert set(names) <= set(listed)


def test_create_existing_bucket_keeps_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"still here")
    try:
        s3.create_bucket(Bucket=bucket)  # us-east-1 answers 200 to the owner, others 409
    except ClientError as e:
        assert client_error(e) == ("BucketAlreadyOwnedByYou", 409)
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"still here"


# ---------------------------------------------------------------- objects

def test_put_get_head_with_headers_and_metadata(s3, bucket):
    text = ("tarn says hello\n" * 500).encode()
    body = gzip.compress(text)
    put = s3.put_object(Bucket=bucket, Key="docs/hello.txt", Body=body,
                        ContentType="text/plain; charset=utf-8",
                        ContentEncoding="gzip",
                        ContentDisposition='attachment; filename="hello.txt"',
                        CacheControl="max-age=60",
                        Metadata={"color": "blue", "Mixed-Case": "Value With Spaces"})
    assert put["ETag"] == md5_etag(body)

    got = s3.get_object(Bucket=bucket, Key="docs/hello.txt")
    data = got["Body"].read()
    assert data == body and gzip.decompress(data) == text
    assert got["ContentLength"] == len(body)
    assert got["ETag"] == md5_etag(body)
    assert got["ContentType"] == "text/plain; charset=utf-8"
    assert got["ContentEncoding"] == "gzip"
    assert got["ContentDisposition"] == 'attachment; filename="hello.txt"'
    assert got["CacheControl"] == "max-age=60"
    assert got["Metadata"] == {"color": "blue", "mixed-case": "Value With Spaces"}
    assert got["AcceptRanges"] == "bytes"

    head = s3.head_object(Bucket=bucket, Key="docs/hello.txt")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == got["ETag"]
    assert head["LastModified"] == got["LastModified"]
    assert head["ContentType"] == "text/plain; charset=utf-8"
    assert head["Metadata"] == {"color": "blue", "mixed-case": "Value With Spaces"}

    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == \
        [("docs/hello.txt", len(body), md5_etag(body))]
    # the listing may carry milliseconds, the header has seconds
    assert listed[0]["LastModified"].replace(microsecond=0) == head["LastModified"]


def test_empty_object_and_default_content_type(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ContentLength"] == 0
    assert got["ETag"] == md5_etag(b"")
    assert got["ContentType"]  # S3 defaults to binary/octet-stream


def test_overwrite_replaces_bytes_and_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"version one", Metadata={"v": "1", "old": "x"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2", Metadata={"v": "2"}, ContentType="text/x-v2")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"v2"
    assert got["Metadata"] == {"v": "2"}
    assert got["ContentType"] == "text/x-v2"
    assert list_all_keys(s3, bucket) == ["k"]


def test_key_and_key_prefix_coexist(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"file a")
    s3.put_object(Bucket=bucket, Key="a/b", Body=b"file a/b")
    s3.put_object(Bucket=bucket, Key="a/b/c", Body=b"file a/b/c")
    for k in ("a", "a/b", "a/b/c"):
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == ("file " + k).encode()


def test_delete_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    r = s3.delete_object(Bucket=bucket, Key="gone")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    raises_code(lambda: s3.get_object(Bucket=bucket, Key="gone"), "NoSuchKey", 404)
    assert status_of(lambda: s3.head_object(Bucket=bucket, Key="gone")) == 404
    # deleting what is not there succeeds, as in S3
    r = s3.delete_object(Bucket=bucket, Key="gone")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert list_all_keys(s3, bucket) == []


def test_delete_objects(s3, bucket):
    keys = ["a", "b/c", "odd & <key>.txt", "ünï"]
    for k in keys + ["survivor"]:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": k} for k in keys + ["never-existed"]]})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(keys + ["never-existed"])
    assert not r.get("Errors")
    assert list_all_keys(s3, bucket) == ["survivor"]

    s3.put_object(Bucket=bucket, Key="q1", Body=b"1")
    s3.put_object(Bucket=bucket, Key="q2", Body=b"2")
    r = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": "q1"}, {"Key": "q2"}], "Quiet": True})
    assert not r.get("Deleted")
    assert not r.get("Errors")
    assert list_all_keys(s3, bucket) == ["survivor"]


# ---------------------------------------------------------------- copy

def test_copy_object_keeps_metadata_and_tags(s3, bucket):
    body = body_for("copy-src", 70000)
    s3.put_object(Bucket=bucket, Key="src/ä b.bin", Body=body, ContentType="application/x-src",
                  Metadata={"origin": "src"}, Tagging="team=data")
    r = s3.copy_object(Bucket=bucket, Key="dst/copy.bin",
                       CopySource={"Bucket": bucket, "Key": "src/ä b.bin"})
    assert r["CopyObjectResult"]["ETag"] == md5_etag(body)
    got = s3.get_object(Bucket=bucket, Key="dst/copy.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-src"
    assert got["Metadata"] == {"origin": "src"}
    assert got["ETag"] == md5_etag(body)
    tags = s3.get_object_tagging(Bucket=bucket, Key="dst/copy.bin")["TagSet"]
    assert tags == [{"Key": "team", "Value": "data"}]
    # the source is untouched
    assert s3.get_object(Bucket=bucket, Key="src/ä b.bin")["Body"].read() == body


def test_copy_object_replace_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", ContentType="text/plain",
                  Metadata={"a": "1", "b": "2"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"c": "3"},
                   ContentType="application/json")
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"payload"
    assert got["Metadata"] == {"c": "3"}
    assert got["ContentType"] == "application/json"

    # the usual way to change an object's metadata: copy onto itself with REPLACE
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"z": "26"}, ContentType="text/x-new")
    got = s3.get_object(Bucket=bucket, Key="src")
    assert got["Body"].read() == b"payload"
    assert got["Metadata"] == {"z": "26"}
    assert got["ContentType"] == "text/x-new"


def test_copy_object_across_buckets(s3, bucket, bucket_name):
    other = bucket_name + "-other"
    s3.create_bucket(Bucket=other)
    body = body_for("across", 1234)
    s3.put_object(Bucket=bucket, Key="x/y", Body=body)
    s3.copy_object(Bucket=other, Key="z", CopySource={"Bucket": bucket, "Key": "x/y"})
    assert s3.get_object(Bucket=other, Key="z")["Body"].read() == body
    # deleting the source leaves the copy whole
    s3.delete_object(Bucket=bucket, Key="x/y")
    assert s3.get_object(Bucket=other, Key="z")["Body"].read() == body
    raises_code(lambda: s3.copy_object(Bucket=other, Key="w",
                                       CopySource={"Bucket": bucket, "Key": "x/y"}),
                "NoSuchKey", 404)
    assert list_all_keys(s3, other) == ["z"]


# ---------------------------------------------------------------- ranges and conditions

@pytest.fixture
def hundred(s3, bucket):
    body = bytes(range(100))
    s3.put_object(Bucket=bucket, Key="hundred", Body=body)
    return bucket, body


@pytest.mark.parametrize("rng,start,end", [
    ("bytes=0-9", 0, 9),
    ("bytes=-5", 95, 99),
    ("bytes=10-", 10, 99),
    ("bytes=90-1000", 90, 99),
    ("bytes=42-42", 42, 42),
])
def test_ranged_get(s3, hundred, rng, start, end):
    bucket, body = hundred
    r = s3.get_object(Bucket=bucket, Key="hundred", Range=rng)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == body[start:end + 1]
    assert r["ContentRange"] == "bytes %d-%d/100" % (start, end)
    assert r["ContentLength"] == end - start + 1
    assert r["ETag"] == md5_etag(body)


@pytest.mark.parametrize("rng", ["bytes=100-", "bytes=200-300"])
def test_ranged_get_out_of_range(s3, hundred, rng):
    bucket, _ = hundred
    raises_code(lambda: s3.get_object(Bucket=bucket, Key="hundred", Range=rng),
                "InvalidRange", 416)


def test_conditional_get(s3, hundred):
    bucket, body = hundred
    head = s3.head_object(Bucket=bucket, Key="hundred")
    etag, lm = head["ETag"], head["LastModified"]

    def get(**kw):
        return s3.get_object(Bucket=bucket, Key="hundred", **kw)["Body"].read()

    assert get(IfMatch=etag) == body
    assert get(IfNoneMatch='"0123456789abcdef0123456789abcdef"') == body
    assert get(IfModifiedSince=lm - DAY) == body
    assert get(IfUnmodifiedSince=lm) == body
    assert get(IfUnmodifiedSince=lm + DAY) == body

    assert status_of(lambda: get(IfNoneMatch=etag)) == 304
    assert status_of(lambda: get(IfModifiedSince=lm)) == 304
    raises_code(lambda: get(IfMatch='"0123456789abcdef0123456789abcdef"'),
                "PreconditionFailed", 412)
    raises_code(lambda: get(IfUnmodifiedSince=lm - DAY), "PreconditionFailed", 412)

    # S3's documented combinations: If-Match true wins over a false
    # If-Unmodified-Since; a false If-None-Match with a true If-Modified-Since is 304
    assert get(IfMatch=etag, IfUnmodifiedSince=lm - DAY) == body
    assert status_of(lambda: get(IfNoneMatch=etag, IfModifiedSince=lm - DAY)) == 304

    # HEAD answers the same way, without a body
    assert status_of(lambda: s3.head_object(Bucket=bucket, Key="hundred", IfNoneMatch=etag)) == 304
    assert status_of(lambda: s3.head_object(Bucket=bucket, Key="hundred",
                                            IfMatch='"ffffffffffffffffffffffffffffffff"')) == 412


def test_response_header_overrides(s3, hundred):
    bucket, body = hundred
    r = s3.get_object(Bucket=bucket, Key="hundred",
                      ResponseContentType="application/x-override",
                      ResponseContentDisposition='attachment; filename="r.bin"',
                      ResponseCacheControl="no-cache",
                      ResponseContentEncoding="identity",
                      ResponseContentLanguage="de")
    assert r["Body"].read() == body
    assert r["ContentType"] == "application/x-override"
    assert r["ContentDisposition"] == 'attachment; filename="r.bin"'
    assert r["CacheControl"] == "no-cache"
    assert r["ContentEncoding"] == "identity"
    assert r["ContentLanguage"] == "de"
    # the stored object is unchanged
    head = s3.head_object(Bucket=bucket, Key="hundred")
    assert head["ContentType"] != "application/x-override"
    assert "ContentDisposition" not in head


# ---------------------------------------------------------------- listings

SMALL_TREE = ["a", "a/b", "a/b/c", "a/d", "b", "c/x", "c/y", "d"]


@pytest.fixture
def tree(s3, bucket):
    for k in SMALL_TREE:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    return bucket


def test_list_v2_all_and_sizes(s3, tree):
    r = s3.list_objects_v2(Bucket=tree)
    assert [o["Key"] for o in r["Contents"]] == SMALL_TREE
    assert [o["Size"] for o in r["Contents"]] == [len(k) for k in SMALL_TREE]
    assert [o["ETag"] for o in r["Contents"]] == [md5_etag(k.encode()) for k in SMALL_TREE]
    assert r["KeyCount"] == len(SMALL_TREE)
    assert r["IsTruncated"] is False
    assert r["Name"] == tree


def test_list_v2_delimiter_and_prefix(s3, tree):
    r = s3.list_objects_v2(Bucket=tree, Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a", "b", "d"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "c/"]
    assert r["KeyCount"] == 5

    r = s3.list_objects_v2(Bucket=tree, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a/b", "a/d"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/b/"]
    assert r["Prefix"] == "a/"

    r = s3.list_objects_v2(Bucket=tree, Prefix="c")
    assert [o["Key"] for o in r["Contents"]] == ["c/x", "c/y"]
    assert "CommonPrefixes" not in r

    r = s3.list_objects_v2(Bucket=tree, Prefix="nothing-here")
    assert "Contents" not in r
    assert r["KeyCount"] == 0


def test_list_v2_start_after(s3, tree):
    r = s3.list_objects_v2(Bucket=tree, StartAfter="a/b")
    assert [o["Key"] for o in r["Contents"]] == ["a/b/c", "a/d", "b", "c/x", "c/y", "d"]
    r = s3.list_objects_v2(Bucket=tree, StartAfter="bb")
    assert [o["Key"] for o in r["Contents"]] == ["c/x", "c/y", "d"]


def test_list_v2_max_keys_counts_prefixes(s3, tree):
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=tree, Delimiter="/", PaginationConfig={"PageSize": 3}))
    got = [([o["Key"] for o in p.get("Contents", [])],
            [c["Prefix"] for c in p.get("CommonPrefixes", [])], p["IsTruncated"]) for p in pages]
    assert got == [(["a", "b"], ["a/"], True), (["d"], ["c/"], False)]


def test_list_v1(s3, tree):
    r = s3.list_objects(Bucket=tree)
    assert [o["Key"] for o in r["Contents"]] == SMALL_TREE
    assert r["IsTruncated"] is False

    r = s3.list_objects(Bucket=tree, Delimiter="/", MaxKeys=2)
    assert [o["Key"] for o in r["Contents"]] == ["a"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/"]
    assert r["IsTruncated"] is True
    assert r["NextMarker"] == "a/"
    r = s3.list_objects(Bucket=tree, Delimiter="/", Marker=r["NextMarker"])
    assert [o["Key"] for o in r["Contents"]] == ["b", "d"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["c/"]
    assert r["IsTruncated"] is False

    r = s3.list_objects(Bucket=tree, Marker="b", MaxKeys=2)
    assert [o["Key"] for o in r["Contents"]] == ["c/x", "c/y"]
    assert r["IsTruncated"] is True
    keys = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=tree,
                                                         PaginationConfig={"PageSize": 3}):
        keys += [o["Key"] for o in page["Contents"]]
    assert keys == SMALL_TREE


BIG_N = 1100


@pytest.fixture(scope="module")
def big_bucket(s3):
    """1,100 keys in 11 'folders', made by 16 concurrent writers."""
    name = unique_bucket_name("big")
    s3.create_bucket(Bucket=name)
    keys = ["page/%02d/%05d" % (i % 11, i) for i in range(BIG_N)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=name, Key=k, Body=k.encode()), keys))
    return name, sorted(keys)


def test_list_v2_paginate_default_pages(s3, big_bucket):
    name, keys = big_bucket
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=name))
    assert [len(p["Contents"]) for p in pages] == [1000, 100]
    assert [p["KeyCount"] for p in pages] == [1000, 100]
    assert pages[0]["IsTruncated"] is True and pages[0]["NextContinuationToken"]
    assert pages[1]["IsTruncated"] is False and "NextContinuationToken" not in pages[1]
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys
    assert all(o["Size"] == len(o["Key"]) for p in pages for o in p["Contents"])


def test_list_v2_paginate_max_keys_100(s3, big_bucket):
    name, keys = big_bucket
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=name, PaginationConfig={"PageSize": 100}))
    assert [len(p["Contents"]) for p in pages] == [100] * 11
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys
    assert [p["MaxKeys"] for p in pages] == [100] * 11


def test_list_v2_max_keys_capped_at_1000(s3, big_bucket):
    name, keys = big_bucket
    r = s3.list_objects_v2(Bucket=name, MaxKeys=5000)
    assert len(r["Contents"]) == 1000
    assert r["IsTruncated"] is True
    r2 = s3.list_objects_v2(Bucket=name, ContinuationToken=r["NextContinuationToken"])
    assert [o["Key"] for o in r2["Contents"]] == keys[1000:]


def test_list_v2_big_start_after_and_prefixes(s3, big_bucket):
    name, keys = big_bucket
    assert list_all_keys(s3, name, StartAfter=keys[549]) == keys[550:]
    r = s3.list_objects_v2(Bucket=name, Prefix="page/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["page/%02d/" % i for i in range(11)]
    assert "Contents" not in r
    assert list_all_keys(s3, name, Prefix="page/07/") == [k for k in keys if k.startswith("page/07/")]


def test_list_v1_paginate_big(s3, big_bucket):
    name, keys = big_bucket
    pages = list(s3.get_paginator("list_objects").paginate(
        Bucket=name, PaginationConfig={"PageSize": 250}))
    assert [len(p["Contents"]) for p in pages] == [250, 250, 250, 250, 100]
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys


ODD_KEYS = [
    "sp ace.txt", "plus+sign", "per%cent", "per%25cent", "amp&er=sand?q#frag",
    "uni/çødé-日本語", "emoji-😀", "tab\there", "quote\"s'", "lt<gt>", "tilde~star*",
    "colon:semi;", "back\\slash", "double//slash", "trailing/", "/leading",
]


def test_odd_keys_round_trip(s3, bucket):
    for k in ODD_KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    # boto3 asks for encoding-type=url and decodes the keys itself
    assert list_all_keys(s3, bucket) == sorted(ODD_KEYS, key=lambda k: k.encode())
    for k in ODD_KEYS:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode(), k
        assert s3.head_object(Bucket=bucket, Key=k)["ContentLength"] == len(k.encode())
    r = s3.list_objects_v2(Bucket=bucket, Prefix="uni/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["uni/çødé-日本語"]


def test_list_encoding_type_url_raw(tarn, s3, bucket):
    for k in ODD_KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    for query in ([("list-type", "2"), ("encoding-type", "url")],
                  [("encoding-type", "url")]):
        r = tarn.request("GET", key_path(bucket), query=query)
        assert r.status_code == 200, r.text
        root = parse_xml(r.content)
        assert root.findtext("EncodingType") == "url"
        raw = [c.findtext("Key") for c in root.findall("Contents")]
        assert [unquote_plus(k) for k in raw] == sorted(ODD_KEYS, key=lambda k: k.encode())
        assert not any(c in k for k in raw for c in " \t<>\"")  # really encoded

    r = tarn.request("GET", key_path(bucket), query=[
        ("list-type", "2"), ("encoding-type", "url"), ("delimiter", "/"), ("prefix", "uni/")])
    root = parse_xml(r.content)
    assert unquote_plus(root.findtext("Prefix")) == "uni/"
    assert [unquote_plus(c.findtext("Key")) for c in root.findall("Contents")] == ["uni/çødé-日本語"]


@pytest.mark.parametrize("key", [
    "k" * 1024,
    "é" * 512,                 # 1,024 bytes of 2-byte characters
    "😀" * 256,                 # 1,024 bytes of 4-byte characters
    "日本語/ファイル 名.txt",
    "d/" * 511 + "xy",         # 1,024 bytes, 511 levels deep
])
def test_long_and_unicode_keys(s3, bucket, key):
    assert len(key.encode()) <= 1024
    body = body_for(key, 333)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == 333
    assert list_all_keys(s3, bucket) == [key]
    s3.copy_object(Bucket=bucket, Key=key[:-1] + "Z", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key=key[:-1] + "Z")["Body"].read() == body
    s3.delete_object(Bucket=bucket, Key=key)
    assert list_all_keys(s3, bucket) == [key[:-1] + "Z"]


# ---------------------------------------------------------------- multipart

def test_multipart_manual(s3, bucket):
    key = "mp/joined.bin"
    parts = [body_for("p1", 5 * MiB), body_for("p2", 5 * MiB + 17), body_for("p3", 123457)]
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-joined",
                                    Metadata={"stage": "raw"}, Tagging="kind=mp")
    uid = up["UploadId"]
    assert up["Bucket"] == bucket and up["Key"] == key and uid

    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [(key, uid)]

    # a part uploaded again replaces the earlier one; parts may arrive in any order
    s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=b"wrong bytes")
    etags = {}
    for n in (3, 1, 2):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=parts[n - 1])
        assert r["ETag"] == md5_etag(parts[n - 1])
        etags[n] = r["ETag"]

    lp = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in lp["Parts"]] == \
        [(n, len(parts[n - 1]), etags[n]) for n in (1, 2, 3)]
    lp = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid, MaxParts=2)
    assert [p["PartNumber"] for p in lp["Parts"]] == [1, 2]
    assert lp["IsTruncated"] is True and lp["NextPartNumberMarker"] == 2
    lp = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid, PartNumberMarker=2)
    assert [p["PartNumber"] for p in lp["Parts"]] == [3]

    # not visible before completion
    assert list_all_keys(s3, bucket) == []

    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]})
    assert done["ETag"] == multipart_etag(parts)
    assert done["Key"] == key and done["Bucket"] == bucket

    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"".join(parts)
    assert got["ETag"] == multipart_etag(parts)
    assert got["ContentLength"] == sum(map(len, parts))
    assert got["ContentType"] == "application/x-joined"
    assert got["Metadata"] == {"stage": "raw"}
    assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [{"Key": "kind", "Value": "mp"}]
    # a range across the part boundary
    r = s3.get_object(Bucket=bucket, Key=key, Range="bytes=%d-%d" % (5 * MiB - 3, 5 * MiB + 2))
    assert r["Body"].read() == b"".join(parts)[5 * MiB - 3:5 * MiB + 3]

    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    raises_code(lambda: s3.list_parts(Bucket=bucket, Key=key, UploadId=uid), "NoSuchUpload", 404)


def test_multipart_abort(s3, bucket):
    key = "mp/aborted"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    uid2 = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    assert uid != uid2
    s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=b"x" * 1000)
    r = s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in uploads] == [uid2]
    raises_code(lambda: s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=2,
                                       Body=b"y"), "NoSuchUpload", 404)
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid2)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert list_all_keys(s3, bucket) == []
    # with its uploads gone, the bucket can go
    s3.delete_bucket(Bucket=bucket)


def test_list_multipart_uploads_prefix(s3, bucket):
    a = s3.create_multipart_upload(Bucket=bucket, Key="logs/a")["UploadId"]
    b = s3.create_multipart_upload(Bucket=bucket, Key="logs/b")["UploadId"]
    s3.create_multipart_upload(Bucket=bucket, Key="other/c")
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="logs/")
    assert [(u["Key"], u["UploadId"]) for u in r["Uploads"]] == [("logs/a", a), ("logs/b", b)]
    r = s3.list_multipart_uploads(Bucket=bucket)
    assert [u["Key"] for u in r["Uploads"]] == ["logs/a", "logs/b", "other/c"]


def test_upload_part_copy(s3, bucket):
    src = body_for("upc-src", 11 * MiB + 100)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    tail = b"tail bytes"
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    p1 = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "src"},
                             CopySourceRange="bytes=0-%d" % (5 * MiB - 1))
    p2 = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "src"},
                             CopySourceRange="bytes=%d-%d" % (5 * MiB, len(src) - 1))
    p3 = s3.upload_part(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=3, Body=tail)
    pieces = [src[:5 * MiB], src[5 * MiB:], tail]
    assert p1["CopyPartResult"]["ETag"] == md5_etag(pieces[0])
    assert p2["CopyPartResult"]["ETag"] == md5_etag(pieces[1])
    done = s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
                  {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]},
                  {"PartNumber": 3, "ETag": p3["ETag"]}]})
    assert done["ETag"] == multipart_etag(pieces)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == src + tail


def test_upload_download_file_64mib(s3, bucket, tmp_path):
    src = tmp_path / "src.bin"
    size = 64 * MiB
    digest = write_random_file(src, size, "sixty-four")
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)
    s3.upload_file(str(src), bucket, "big/64.bin", Config=cfg)

    chunks = []
    with open(src, "rb") as f:
        for chunk in iter(lambda: f.read(8 * MiB), b""):
            chunks.append(chunk)
    head = s3.head_object(Bucket=bucket, Key="big/64.bin")
    assert head["ContentLength"] == size
    assert head["ETag"] == multipart_etag(chunks)
    del chunks

    dst = tmp_path / "dst.bin"
    s3.download_file(bucket, "big/64.bin", str(dst), Config=cfg)
    assert dst.stat().st_size == size
    assert sha256_file(dst) == digest


# ---------------------------------------------------------------- tagging

def tagdict(tagset):
    return {t["Key"]: t["Value"] for t in tagset}


def test_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"tagged", Tagging="project=tarn&tier=gold")
    assert tagdict(s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]) == \
        {"project": "tarn", "tier": "gold"}
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 2

    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [
        {"Key": "a b", "Value": "c=d+e/f:g@h"}, {"Key": "ключ", "Value": "значение"}]})
    assert tagdict(s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]) == \
        {"a b": "c=d+e/f:g@h", "ключ": "значение"}

    r = s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    assert s3.get_object(Bucket=bucket, Key="t")["Body"].read() == b"tagged"
    raises_code(lambda: s3.get_object_tagging(Bucket=bucket, Key="missing"), "NoSuchKey", 404)


# ---------------------------------------------------------------- checksums

@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_checksum_stored_and_returned(s3, bucket, algorithm):
    data = body_for(algorithm, 40000 if algorithm == "CRC32C" else 300000)
    value = checksum_b64(algorithm, data)
    field = "Checksum" + algorithm
    if algorithm == "CRC32C":
        # botocore needs awscrt to compute CRC32C: send the header ourselves
        put = s3.put_object(Bucket=bucket, Key="c", Body=data, ChecksumCRC32C=value)
    else:
        put = s3.put_object(Bucket=bucket, Key="c", Body=data, ChecksumAlgorithm=algorithm)
    assert put.get(field) == value

    head = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert head.get(field) == value
    got = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert got.get(field) == value
    assert got["Body"].read() == data  # botocore checks the body against it


# ---------------------------------------------------------------- virtual-host style

def test_virtual_host_raw_requests(tarn, s3, bucket):
    host = "%s.localhost:%d" % (bucket, tarn.port)
    r = tarn.request("PUT", "/vh/key.txt", host=host, body=b"virtual bytes",
                     headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == md5_etag(b"virtual bytes")
    got = s3.get_object(Bucket=bucket, Key="vh/key.txt")
    assert got["Body"].read() == b"virtual bytes"
    assert got["ContentType"] == "text/plain"

    r = tarn.request("GET", "/vh/key.txt", host=host)
    assert r.status_code == 200 and r.content == b"virtual bytes"
    r = tarn.request("HEAD", "/", host=host)
    assert r.status_code == 200
    r = tarn.request("GET", "/", query=[("list-type", "2")], host=host)
    assert r.status_code == 200, r.text
    root = parse_xml(r.content)
    assert root.findtext("Name") == bucket
    assert [c.findtext("Key") for c in root.findall("Contents")] == ["vh/key.txt"]
    r = tarn.request("DELETE", "/vh/key.txt", host=host)
    assert r.status_code == 204
    assert list_all_keys(s3, bucket) == []


@pytest.fixture
def localhost_subdomains(monkeypatch):
    """*.localhost resolves to 127.0.0.1 for this test (as systemd-resolved
    does), so boto3 can use virtual-host addressing."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kw):
        if isinstance(host, str) and (host == "localhost" or host.endswith(".localhost")):
            host = "127.0.0.1"
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_virtual_host_boto3(tarn, s3, bucket, localhost_subdomains):
    vs3 = tarn.client(addressing_style="virtual", endpoint="http://localhost:%d" % tarn.port)
    urls = []
    vs3.meta.events.register("before-send.s3", lambda request, **kw: urls.append(request.url))
    vs3.put_object(Bucket=bucket, Key="v/1", Body=b"one", Metadata={"via": "virtual"})
    assert urls[-1].startswith("http://%s.localhost:%d/" % (bucket, tarn.port))
    assert vs3.get_object(Bucket=bucket, Key="v/1")["Body"].read() == b"one"
    vs3.copy_object(Bucket=bucket, Key="v/2", CopySource={"Bucket": bucket, "Key": "v/1"})
    assert [o["Key"] for o in vs3.list_objects_v2(Bucket=bucket)["Contents"]] == ["v/1", "v/2"]
    vs3.head_bucket(Bucket=bucket)
    # the same objects through path style
    got = s3.get_object(Bucket=bucket, Key="v/2")
    assert got["Body"].read() == b"one" and got["Metadata"] == {"via": "virtual"}


# ---------------------------------------------------------------- presigned URLs

def test_presigned_get_and_put(tarn, s3, bucket):
    body = body_for("presigned", 5000)
    s3 = tarn.client(signature_version="s3v4")  # boto3 1.26 presigns with SigV2 by default
    s3.put_object(Bucket=bucket, Key="pre/sign é.bin", Body=body)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/sign é.bin"},
                                    ExpiresIn=300)
    r = requests.get(url, timeout=60)
    assert r.status_code == 200 and r.content == body
    assert r.headers["ETag"] == md5_etag(body)

    url = s3.generate_presigned_url("get_object", ExpiresIn=300, Params={
        "Bucket": bucket, "Key": "pre/sign é.bin",
        "ResponseContentDisposition": 'attachment; filename="x.bin"'})
    r = requests.get(url, timeout=60)
    assert r.status_code == 200 and r.content == body
    assert r.headers["Content-Disposition"] == 'attachment; filename="x.bin"'

    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre/up"},
                                    ExpiresIn=300)
    up = body_for("presigned-put", 70000)
    r = requests.put(url, data=up, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == md5_etag(up)
    assert s3.get_object(Bucket=bucket, Key="pre/up")["Body"].read() == up

    # the signature covers the key: the same query on another key is refused
    other = url.replace("/pre/up?", "/pre/other?")
    r = requests.put(other, data=b"sneaky", timeout=60)
    assert r.status_code == 403
    assert sorted(list_all_keys(s3, bucket)) == ["pre/sign é.bin", "pre/up"]


# ---------------------------------------------------------------- native endpoints

def test_health_is_open_json(tarn):
    r = requests.get(tarn.endpoint + "/_tarn/health", timeout=10)
    assert r.status_code == 200
    assert isinstance(r.json(), dict)


def parse_prometheus(text):
    """({family: type}, [(sample name, value)]) of Prometheus text format."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ.strip()
        elif line.strip() and not line.startswith("#"):
            if "}" in line:
                name = line.split("{", 1)[0]
                rest = line[line.rindex("}") + 1:].split()
            else:
                name, *rest = line.split()
            samples.append((name.strip(), float(rest[0])))
    return types, samples


def request_count(tarn):
    """The server's count of requests served: the sum over the samples of
    its request counter (a counter family named *request*, not of bytes or
    durations)."""
    r = tarn.request("GET", "/_tarn/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    types, samples = parse_prometheus(r.text)
    families = [n for n, t in types.items() if t == "counter" and "request" in n
                and not any(w in n for w in ("byte", "second", "duration", "size", "error"))]
    assert families, "no request counter in /_tarn/metrics:\n" + r.text[:2000]
    sums = {}
    for fam in families:
        names = {fam, fam + "_total"}
        sums[fam] = sum(v for n, v in samples if n in names)
    return max(sums.values())


def test_metrics_count_requests(tarn, s3, bucket):
    before = request_count(tarn)
    for i in range(7):
        s3.put_object(Bucket=bucket, Key="m%d" % i, Body=b"x")
    after = request_count(tarn)
    assert after >= before + 7
    r = requests.get(tarn.endpoint + "/_tarn/metrics", timeout=10)
    assert r.status_code == 403
