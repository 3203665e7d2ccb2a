"""tests/e2e/test_s3_checksums.py -- CRC64NVME checksums (full-object and,
for multipart uploads, combined from the parts) against hand-computed values
with boto3, refusals with their S3 error codes, and the JavaScript SDK
computing and validating CRC64NVME itself (js/s3_crc64.mjs).
"""
import base64
import hashlib
import json
import os
import subprocess
import zlib

import pytest

from tarnlib import clean_env, key_path, parse_xml, s3_error

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
MiB = 1024 * 1024


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x9A6C9329AC4BC9B5 if c & 1 else c >> 1
        t.append(c)
    return t


TABLE = _table()


def crc64nvme(data, crc=0):
    """CRC-64/NVME bit by bit from the table, continuing from crc."""
    t = TABLE
    c = crc ^ 0xFFFFFFFFFFFFFFFF
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFFFFFFFFFF


def b64_64(v):
    return base64.b64encode(v.to_bytes(8, "big")).decode()


def b64_32(v):
    return base64.b64encode(v.to_bytes(4, "big")).decode()


def test_check_value():
    assert crc64nvme(b"123456789") == 0xAE8B14860A799888


def code(r):
    return s3_error(r)[0]


def put(tarn, bucket, key, body, headers):
    return tarn.request("PUT", key_path(bucket, key), headers=headers, body=body)


def test_put_get_crc64nvme(tarn, s3, bucket):
    """Debian's botocore predates CRC64NVME: the headers are sent by hand."""
    body = b"123456789"
    want = b64_64(0xAE8B14860A799888)
    r = put(tarn, bucket, "nine", body, {"x-amz-checksum-crc64nvme": want})
    assert r.status_code == 200, r.text
    assert r.headers["x-amz-checksum-crc64nvme"] == want
    g = tarn.request("GET", key_path(bucket, "nine"), headers={"x-amz-checksum-mode": "ENABLED"})
    assert g.content == body
    assert g.headers["x-amz-checksum-crc64nvme"] == want
    assert g.headers["x-amz-checksum-type"] == "FULL_OBJECT"
    h = tarn.request("HEAD", key_path(bucket, "nine"), headers={"x-amz-checksum-mode": "ENABLED"})
    assert h.headers["x-amz-checksum-crc64nvme"] == want
    # not asked for: not answered; a range has no checksum of its own
    assert "x-amz-checksum-crc64nvme" not in tarn.request("HEAD", key_path(bucket, "nine")).headers
    g = tarn.request("GET", key_path(bucket, "nine"),
                     headers={"x-amz-checksum-mode": "ENABLED", "Range": "bytes=0-3"})
    assert g.status_code == 206 and "x-amz-checksum-crc64nvme" not in g.headers


def test_wrong_crc64nvme_stores_nothing(tarn, s3, bucket):
    r = put(tarn, bucket, "bad", b"123456789",
            {"x-amz-checksum-crc64nvme": b64_64(0xAE8B14860A799889)})
    assert r.status_code == 400 and code(r) == "BadDigest"
    r = put(tarn, bucket, "bad", b"123456789", {"x-amz-checksum-crc64nvme": "AAAA"})
    assert r.status_code == 400 and code(r) == "InvalidRequest"
    assert tarn.request("HEAD", key_path(bucket, "bad")).status_code == 404


def create(tarn, bucket, key, **headers):
    r = tarn.request("POST", key_path(bucket, key), query=[("uploads", None)],
                     headers={k.replace("_", "-"): v for k, v in headers.items()})
    return r


def upload(tarn, bucket, key, parts, **headers):
    r = create(tarn, bucket, key, **headers)
    assert r.status_code == 200, r.text
    uid = parse_xml(r.content).findtext("UploadId")
    done = []
    for i, (data, hdrs) in enumerate(parts, 1):
        p = tarn.request("PUT", key_path(bucket, key),
                         query=[("partNumber", str(i)), ("uploadId", uid)], headers=hdrs,
                         body=data)
        assert p.status_code == 200, p.text
        x = "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>" % (i, p.headers["ETag"])
        for h, v in hdrs.items():
            x += "<Checksum%s>%s</Checksum%s>" % (h[15:].upper(), v, h[15:].upper())
        done.append(x + "</Part>")
    return r, uid, "<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join(done)


def complete(tarn, bucket, key, uid, doc, headers=None):
    return tarn.request("POST", key_path(bucket, key), query=[("uploadId", uid)],
                        headers=headers, body=doc.encode())


def test_multipart_full_object_crc64nvme(tarn, s3, bucket):
    a = os.urandom(5 * MiB)
    b = os.urandom(4321)
    crc_a = crc64nvme(a)
    whole = b64_64(crc64nvme(b, crc_a))  # byte by byte over a then b
    r, uid, doc = upload(tarn, bucket, "mp",
                         [(a, {"x-amz-checksum-crc64nvme": b64_64(crc_a)}),
                          (b, {"x-amz-checksum-crc64nvme": b64_64(crc64nvme(b))})],
                         x_amz_checksum_algorithm="CRC64NVME")
    assert r.headers["x-amz-checksum-algorithm"] == "CRC64NVME"
    assert r.headers["x-amz-checksum-type"] == "FULL_OBJECT"
    lp = parse_xml(tarn.request("GET", key_path(bucket, "mp"), query=[("uploadId", uid)]).content)
    assert lp.findtext("ChecksumAlgorithm") == "CRC64NVME"
    assert lp.findtext("ChecksumType") == "FULL_OBJECT"
    assert [p.findtext("ChecksumCRC64NVME") for p in lp.iter("Part")] == [
        b64_64(crc_a), b64_64(crc64nvme(b))]
    # a whole-object checksum that is not the object's: BadDigest, nothing made
    c = complete(tarn, bucket, "mp", uid, doc, {"x-amz-checksum-crc64nvme": b64_64(crc_a)})
    assert c.status_code == 400 and code(c) == "BadDigest"
    assert tarn.request("HEAD", key_path(bucket, "mp")).status_code == 404
    c = complete(tarn, bucket, "mp", uid, doc, {"x-amz-checksum-crc64nvme": whole})
    assert c.status_code == 200, c.text
    x = parse_xml(c.content)
    assert x.findtext("ChecksumCRC64NVME") == whole
    assert x.findtext("ChecksumType") == "FULL_OBJECT"
    g = tarn.request("GET", key_path(bucket, "mp"), headers={"x-amz-checksum-mode": "ENABLED"})
    assert g.headers["x-amz-checksum-crc64nvme"] == whole
    assert g.headers["x-amz-checksum-type"] == "FULL_OBJECT"
    assert g.content == a + b
    assert "x-tarn-checksum" not in g.headers


def test_multipart_crc32_types(tarn, s3, bucket):
    a = os.urandom(5 * MiB)
    b = os.urandom(1000)
    parts = [(a, {"x-amz-checksum-crc32": b64_32(zlib.crc32(a))}),
             (b, {"x-amz-checksum-crc32": b64_32(zlib.crc32(b))})]
    # FULL_OBJECT: the CRC32 of the whole object
    _, uid, doc = upload(tarn, bucket, "full32", parts, x_amz_checksum_algorithm="CRC32",
                         x_amz_checksum_type="FULL_OBJECT")
    x = parse_xml(complete(tarn, bucket, "full32", uid, doc).content)
    assert x.findtext("ChecksumCRC32") == b64_32(zlib.crc32(a + b))
    assert x.findtext("ChecksumType") == "FULL_OBJECT"
    # COMPOSITE (the default for CRC32): CRC32 of the part CRCs, "-2"; boto3 reads it
    _, uid, doc = upload(tarn, bucket, "comp32", parts, x_amz_checksum_algorithm="CRC32")
    x = parse_xml(complete(tarn, bucket, "comp32", uid, doc).content)
    inner = zlib.crc32(a).to_bytes(4, "big") + zlib.crc32(b).to_bytes(4, "big")
    assert x.findtext("ChecksumCRC32") == b64_32(zlib.crc32(inner)) + "-2"
    assert x.findtext("ChecksumType") == "COMPOSITE"
    h = s3.head_object(Bucket=bucket, Key="comp32", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == b64_32(zlib.crc32(inner)) + "-2"
    assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"] == "COMPOSITE"


def test_multipart_refusals(tarn, s3, bucket):
    for algo, typ in (("CRC64NVME", "COMPOSITE"), ("SHA256", "FULL_OBJECT"), (None, "COMPOSITE")):
        h = {"x_amz_checksum_type": typ}
        if algo:
            h["x_amz_checksum_algorithm"] = algo
        r = create(tarn, bucket, "x", **h)
        assert r.status_code == 400 and code(r) == "InvalidRequest", (algo, typ)
    r = create(tarn, bucket, "x", x_amz_checksum_algorithm="MD5")
    assert r.status_code == 400 and code(r) == "InvalidArgument"
    # parts without the checksum the upload asked for
    a = os.urandom(5 * MiB)
    _, uid, doc = upload(tarn, bucket, "x", [(a, {}), (b"tail", {})],
                         x_amz_checksum_algorithm="CRC64NVME")
    c = complete(tarn, bucket, "x", uid, doc)
    assert c.status_code == 400 and code(c) == "InvalidRequest"
    # a wrong part checksum: BadDigest
    p = tarn.request("PUT", key_path(bucket, "x"), query=[("partNumber", "3"), ("uploadId", uid)],
                     headers={"x-amz-checksum-crc64nvme": b64_64(crc64nvme(b"abd"))}, body=b"abc")
    assert p.status_code == 400 and code(p) == "BadDigest"


@pytest.fixture(scope="module")
def node():
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", "client-s3")):
        pytest.fail("the JavaScript SDK is not installed: run `npm install` in tests/e2e/js "
                    "(scripts/install-deps.sh does)")
    return "node"


def test_js_sdk_crc64nvme(tarn, s3, bucket, node):
    env = clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_BUCKET=bucket,
               AWS_ACCESS_KEY_ID=tarn.access_key, AWS_SECRET_ACCESS_KEY=tarn.secret_key,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run([node, "s3_crc64.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, "node s3_crc64.mjs failed\nstdout:\n%s\nstderr:\n%s" % (
        r.stdout[-3000:], r.stderr[-3000:])
    seen = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            w = json.loads(line)
            seen[w["key"]] = w
    assert set(seen) == {"crc/put.bin", "crc/upload.bin"}
    for key, w in seen.items():
        g = tarn.request("GET", key_path(bucket, key), headers={"x-amz-checksum-mode": "ENABLED"})
        assert g.headers["x-amz-checksum-crc64nvme"] == w["crc64nvme"], key
        assert w["type"] == "FULL_OBJECT"
        if key == "crc/put.bin":  # small enough to compute here too
            assert b64_64(crc64nvme(g.content)) == w["crc64nvme"]


def test_get_object_attributes(tarn, s3, bucket):
    """GetObjectAttributes answers the checksum, parts and size kept with an
    object (boto3 knows the call, though not CRC64NVME's element)."""
    a = os.urandom(5 * MiB)
    b = b"tail"
    parts = [(a, {"x-amz-checksum-crc32": b64_32(zlib.crc32(a))}),
             (b, {"x-amz-checksum-crc32": b64_32(zlib.crc32(b))})]
    _, uid, doc = upload(tarn, bucket, "attrs", parts, x_amz_checksum_algorithm="CRC32",
                         x_amz_checksum_type="FULL_OBJECT")
    c = complete(tarn, bucket, "attrs", uid, doc)
    assert c.status_code == 200, c.text
    r = s3.get_object_attributes(Bucket=bucket, Key="attrs", ObjectAttributes=[
        "ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"])
    assert r["ETag"] == parse_xml(c.content).findtext("ETag").strip('"')
    assert r["Checksum"]["ChecksumCRC32"] == b64_32(zlib.crc32(a + b))
    assert r["ObjectSize"] == len(a) + len(b)
    assert r["StorageClass"] == "STANDARD"
    assert r["ObjectParts"]["TotalPartsCount"] == 2
    assert [p["Size"] for p in r["ObjectParts"]["Parts"]] == [len(a), len(b)]
    r = s3.get_object_attributes(Bucket=bucket, Key="attrs", ObjectAttributes=["ObjectParts"],
                                 MaxParts=1)
    assert r["ObjectParts"]["IsTruncated"] is True
    assert [p["PartNumber"] for p in r["ObjectParts"]["Parts"]] == [1]
    r = tarn.request("GET", key_path(bucket, "attrs"), query=[("attributes", None)],
                     headers={"x-amz-object-attributes": "Colour"})
    assert r.status_code == 400 and code(r) == "InvalidArgument"
    r = tarn.request("GET", key_path(bucket, "nine-missing"), query=[("attributes", None)],
                     headers={"x-amz-object-attributes": "ETag"})
    assert r.status_code == 404 and code(r) == "NoSuchKey"
    # CRC64NVME, read from the XML by hand
    put(tarn, bucket, "nine", b"123456789",
        {"x-amz-checksum-crc64nvme": b64_64(0xAE8B14860A799888)})
    r = tarn.request("GET", key_path(bucket, "nine"), query=[("attributes", None)],
                     headers={"x-amz-object-attributes": "Checksum,ObjectSize"})
    x = parse_xml(r.content)
    assert x.findtext("Checksum/ChecksumCRC64NVME") == b64_64(0xAE8B14860A799888)
    assert x.findtext("Checksum/ChecksumType") == "FULL_OBJECT"
    assert x.findtext("ObjectSize") == "9"
