"""tests/e2e/test_sse.py -- server-side encryption: SSE-S3, SSE-C, default
bucket encryption, on single objects, ranges, multipart uploads, copies,
S3 Select and SQL, through boto3 and Debian's awscli.

Every test that stores an encrypted object also reads the data directory's
files (the blobs and the LMDB index) and checks that the plaintext is not
there: the bytes at rest are ciphertext.
"""
import base64
import hashlib
import os
import stat
import subprocess

import botocore.exceptions
import pytest

from tarnlib import clean_env, client_error, skip_with_objects_backend

MiB = 1024 * 1024


def marker_body(tag, size):
    """size bytes of text that repeat a marker no ciphertext contains."""
    unit = ("<<plaintext-%s-%%08d>>\n" % tag).encode()
    out = bytearray()
    i = 0
    while len(out) < size:
        out += unit % i
        i += 1
    return bytes(out[:size])


def disk_files(tarn):
    for root, _dirs, files in os.walk(tarn.data):
        for name in files:
            path = os.path.join(root, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                yield path


def assert_not_on_disk(tarn, needle):
    for path in disk_files(tarn):
        with open(path, "rb") as f:
            data = f.read()
        assert needle not in data, "plaintext found in %s" % path


def customer_key(seed):
    """A 256-bit key (ASCII, which boto3 takes as a str) and its base64 MD5."""
    key = hashlib.sha256(seed.encode()).hexdigest()[:32].encode()
    return key, base64.b64encode(hashlib.md5(key).digest()).decode()


def sse_c(key):
    return dict(SSECustomerAlgorithm="AES256", SSECustomerKey=key.decode())


# ---- SSE-S3 ----

def test_sse_s3_put_get_head_ranges(tarn, s3, bucket):
    body = marker_body("s3one", 300 * 1024 + 17)
    r = s3.put_object(Bucket=bucket, Key="a.txt", Body=body, ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256"
    assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()  # as S3: MD5 of the plaintext
    h = s3.head_object(Bucket=bucket, Key="a.txt")
    assert h["ServerSideEncryption"] == "AES256" and h["ContentLength"] == len(body)
    g = s3.get_object(Bucket=bucket, Key="a.txt")
    assert g["ServerSideEncryption"] == "AES256"
    assert g["Body"].read() == body
    # ranges inside one chunk, across chunk boundaries, at the end, suffixes
    for first, last in [(0, 0), (10, 99), (65530, 65545), (65536, 131071), (100000, 250000),
                        (len(body) - 5, len(body) - 1), (307000, len(body) + 1000)]:
        got = s3.get_object(Bucket=bucket, Key="a.txt", Range="bytes=%d-%d" % (first, last))
        assert got["Body"].read() == body[first:last + 1], (first, last)
    got = s3.get_object(Bucket=bucket, Key="a.txt", Range="bytes=-70000")
    assert got["Body"].read() == body[-70000:]
    assert_not_on_disk(tarn, b"plaintext-s3one")
    key_file = os.path.join(tarn.data, "sse-master.key")
    st = os.stat(key_file)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 32


def test_sse_s3_small_and_empty_objects(tarn, s3, bucket):
    small = marker_body("s3small", 100)
    s3.put_object(Bucket=bucket, Key="small", Body=small, ServerSideEncryption="AES256")
    s3.put_object(Bucket=bucket, Key="empty", Body=b"", ServerSideEncryption="AES256")
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == small
    g = s3.get_object(Bucket=bucket, Key="empty")
    assert g["Body"].read() == b"" and g["ServerSideEncryption"] == "AES256"
    assert_not_on_disk(tarn, b"plaintext-s3small")
    # a plain object stays readable and says nothing about encryption
    s3.put_object(Bucket=bucket, Key="plain", Body=b"hello")
    g = s3.get_object(Bucket=bucket, Key="plain")
    assert "ServerSideEncryption" not in g and g["Body"].read() == b"hello"


def test_sse_refusals(s3, bucket):
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms")
    assert client_error(ei.value)[0] == "NotImplemented"
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="DES")
    assert client_error(ei.value)[0] == "InvalidArgument"
    key, _ = customer_key("refusals")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="AES256",
                      **sse_c(key))
    assert client_error(ei.value)[0] == "InvalidArgument"
    # nothing was stored by any of them
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="k")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# ---- SSE-C ----

def test_sse_c_round_trip_and_refusals(tarn, s3, bucket):
    key, key_md5 = customer_key("one")
    other, _ = customer_key("two")
    body = marker_body("ssec", 200 * 1024)
    r = s3.put_object(Bucket=bucket, Key="c.bin", Body=body, **sse_c(key))
    assert r["SSECustomerAlgorithm"] == "AES256" and r["SSECustomerKeyMD5"] == key_md5
    assert r["ETag"] != '"%s"' % hashlib.md5(body).hexdigest()  # as S3: not the MD5
    g = s3.get_object(Bucket=bucket, Key="c.bin", **sse_c(key))
    assert g["Body"].read() == body
    assert g["SSECustomerAlgorithm"] == "AES256" and g["SSECustomerKeyMD5"] == key_md5
    assert g["ETag"] == r["ETag"]
    got = s3.get_object(Bucket=bucket, Key="c.bin", Range="bytes=65000-140000", **sse_c(key))
    assert got["Body"].read() == body[65000:140001]
    h = s3.head_object(Bucket=bucket, Key="c.bin", **sse_c(key))
    assert h["ContentLength"] == len(body) and h["SSECustomerKeyMD5"] == key_md5

    # without the key: 400 InvalidRequest; with another key: 403
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="c.bin")
    assert client_error(ei.value)[0] == "InvalidRequest"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="c.bin", **sse_c(other))
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert client_error(ei.value)[0] == "AccessDenied"
    for kw in ({}, sse_c(other)):
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            s3.head_object(Bucket=bucket, Key="c.bin", **kw)
        assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)

    # a key whose MD5 does not match; an algorithm other than AES256
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.put_object(Bucket=bucket, Key="d", Body=b"x", SSECustomerAlgorithm="AES256",
                      SSECustomerKey=key.decode(), SSECustomerKeyMD5=base64.b64encode(b"0" * 16).decode())
    assert client_error(ei.value)[0] == "InvalidArgument"
    r = tarn.request("PUT", "/%s/d" % bucket, body=b"x", headers={
        "x-amz-server-side-encryption-customer-algorithm": "AES128",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
        "x-amz-server-side-encryption-customer-key-MD5": key_md5})
    assert r.status_code == 400 and b"InvalidEncryptionAlgorithmError" in r.content
    r = tarn.request("PUT", "/%s/d" % bucket, body=b"x", headers={
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(b"short").decode(),
        "x-amz-server-side-encryption-customer-key-MD5":
            base64.b64encode(hashlib.md5(b"short").digest()).decode()})
    assert r.status_code == 400 and b"InvalidArgument" in r.content
    # SSE-C headers on a plain object
    s3.put_object(Bucket=bucket, Key="plain", Body=b"p")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="plain", **sse_c(key))
    assert client_error(ei.value)[0] == "InvalidRequest"

    assert_not_on_disk(tarn, b"plaintext-ssec")
    assert_not_on_disk(tarn, key)                      # the key is never stored
    assert_not_on_disk(tarn, base64.b64encode(key))


# ---- default bucket encryption ----

def test_bucket_encryption_configuration(tarn, s3, bucket):
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.get_bucket_encryption(Bucket=bucket)
    assert client_error(ei.value)[0] == "ServerSideEncryptionConfigurationNotFoundError"
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                   "BucketKeyEnabled": True}]})
    got = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert got["Rules"] == [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                             "BucketKeyEnabled": True}]
    body = marker_body("default", 70000)
    r = s3.put_object(Bucket=bucket, Key="d.txt", Body=body)
    assert r["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="d.txt")["Body"].read() == body
    assert_not_on_disk(tarn, b"plaintext-default")
    # an SSE-C request still wins over the default
    key, key_md5 = customer_key("default")
    r = s3.put_object(Bucket=bucket, Key="c.txt", Body=b"x" * 10, **sse_c(key))
    assert r["SSECustomerKeyMD5"] == key_md5 and "ServerSideEncryption" not in r

    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    assert client_error(ei.value)[0] == "NotImplemented"
    s3.delete_bucket_encryption(Bucket=bucket)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.get_bucket_encryption(Bucket=bucket)
    assert client_error(ei.value)[0] == "ServerSideEncryptionConfigurationNotFoundError"
    r = s3.put_object(Bucket=bucket, Key="after.txt", Body=b"plain again")
    assert "ServerSideEncryption" not in r
    # the object written under the default stays encrypted and readable
    assert s3.get_object(Bucket=bucket, Key="d.txt")["ServerSideEncryption"] == "AES256"


# ---- multipart ----

def _parts(tag):
    return [marker_body(tag + "p1", 5 * MiB + 3), marker_body(tag + "p2", 5 * MiB),
            marker_body(tag + "p3", 123457)]


def test_multipart_sse_s3(tarn, s3, bucket):
    parts = _parts("mps3")
    up = s3.create_multipart_upload(Bucket=bucket, Key="big", ServerSideEncryption="AES256")
    assert up["ServerSideEncryption"] == "AES256"
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="big", UploadId=up["UploadId"], PartNumber=i, Body=p)
        assert r["ServerSideEncryption"] == "AES256"
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    r = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": done})
    assert r["ServerSideEncryption"] == "AES256"
    whole = b"".join(parts)
    g = s3.get_object(Bucket=bucket, Key="big")
    assert g["ServerSideEncryption"] == "AES256" and g["Body"].read() == whole
    edge = len(parts[0])
    for first, last in [(edge - 10, edge + 10), (edge - 70000, edge + 200000),
                        (len(whole) - 100, len(whole) - 1), (0, 3 * 65536)]:
        got = s3.get_object(Bucket=bucket, Key="big", Range="bytes=%d-%d" % (first, last))
        assert got["Body"].read() == whole[first:last + 1], (first, last)
    got = s3.get_object(Bucket=bucket, Key="big", PartNumber=2)
    assert got["Body"].read() == parts[1]
    assert_not_on_disk(tarn, b"plaintext-mps3p1")
    assert_not_on_disk(tarn, b"plaintext-mps3p3")


def test_multipart_sse_c_and_upload_part_copy(tarn, s3, bucket):
    key, key_md5 = customer_key("mp")
    other, _ = customer_key("mp-other")
    parts = _parts("mpc")
    up = s3.create_multipart_upload(Bucket=bucket, Key="big", **sse_c(key))
    uid = up["UploadId"]
    assert up["SSECustomerKeyMD5"] == key_md5
    # a part without the key, or with another key, is refused
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.upload_part(Bucket=bucket, Key="big", UploadId=uid, PartNumber=1, Body=parts[0])
    assert client_error(ei.value)[0] == "InvalidRequest"
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.upload_part(Bucket=bucket, Key="big", UploadId=uid, PartNumber=1, Body=parts[0],
                       **sse_c(other))
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    done = []
    for i, p in enumerate(parts[:2], 1):
        r = s3.upload_part(Bucket=bucket, Key="big", UploadId=uid, PartNumber=i, Body=p,
                           **sse_c(key))
        assert r["SSECustomerKeyMD5"] == key_md5
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    # part 3 copied from an SSE-S3 object
    s3.put_object(Bucket=bucket, Key="src3", Body=parts[2], ServerSideEncryption="AES256")
    r = s3.upload_part_copy(Bucket=bucket, Key="big", UploadId=uid, PartNumber=3,
                            CopySource={"Bucket": bucket, "Key": "src3"}, **sse_c(key))
    done.append({"PartNumber": 3, "ETag": r["CopyPartResult"]["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=uid,
                                 MultipartUpload={"Parts": done})
    whole = b"".join(parts)
    with pytest.raises(botocore.exceptions.ClientError):
        s3.get_object(Bucket=bucket, Key="big")
    g = s3.get_object(Bucket=bucket, Key="big", **sse_c(key))
    assert g["Body"].read() == whole
    edge = len(parts[0]) + len(parts[1])
    got = s3.get_object(Bucket=bucket, Key="big", Range="bytes=%d-%d" % (edge - 5, edge + 5),
                        **sse_c(key))
    assert got["Body"].read() == whole[edge - 5:edge + 6]
    assert_not_on_disk(tarn, b"plaintext-mpcp1")
    assert_not_on_disk(tarn, b"plaintext-mpcp3")


# ---- copies ----

def test_copy_object_reencrypts(tarn, s3, bucket):
    key, key_md5 = customer_key("copy")
    body = marker_body("copyplain", 150000)
    s3.put_object(Bucket=bucket, Key="plain", Body=body)
    # plain -> SSE-S3
    r = s3.copy_object(Bucket=bucket, Key="s3", CopySource={"Bucket": bucket, "Key": "plain"},
                       ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256"
    assert r["CopyObjectResult"]["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    # SSE-S3 -> SSE-C
    r = s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "s3"},
                       **sse_c(key))
    assert r["SSECustomerKeyMD5"] == key_md5
    assert s3.get_object(Bucket=bucket, Key="c", **sse_c(key))["Body"].read() == body
    # SSE-C -> plain needs the source's key
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.copy_object(Bucket=bucket, Key="back", CopySource={"Bucket": bucket, "Key": "c"})
    assert client_error(ei.value)[0] == "InvalidRequest"
    r = s3.copy_object(Bucket=bucket, Key="back", CopySource={"Bucket": bucket, "Key": "c"},
                       CopySourceSSECustomerAlgorithm="AES256",
                       CopySourceSSECustomerKey=key.decode())
    assert "ServerSideEncryption" not in r
    g = s3.get_object(Bucket=bucket, Key="back")
    assert "ServerSideEncryption" not in g and g["Body"].read() == body
    # in place: encrypt an existing plain object without changing its metadata
    s3.put_object(Bucket=bucket, Key="inplace", Body=marker_body("inplace", 5000),
                  Metadata={"color": "blue"})
    s3.copy_object(Bucket=bucket, Key="inplace", CopySource={"Bucket": bucket, "Key": "inplace"},
                   ServerSideEncryption="AES256")
    h = s3.head_object(Bucket=bucket, Key="inplace")
    assert h["ServerSideEncryption"] == "AES256" and h["Metadata"] == {"color": "blue"}
    assert s3.get_object(Bucket=bucket, Key="inplace")["Body"].read() == marker_body("inplace",
                                                                                      5000)


# ---- readers inside tarn: S3 Select and SQL ----

def test_select_and_sql_read_encrypted_objects(tarn, s3, bucket):
    rows = "id,name,qty\n" + "".join("%06d,item-%d,%d\n" % (i, i, i % 7) for i in range(20000))
    s3.put_object(Bucket=bucket, Key="t/data.csv", Body=rows.encode(),
                  ServerSideEncryption="AES256")
    r = s3.select_object_content(
        Bucket=bucket, Key="t/data.csv", ExpressionType="SQL",
        Expression="SELECT s.id FROM S3Object s WHERE s.qty = '3' LIMIT 2",
        InputSerialization={"CSV": {"FileHeaderInfo": "USE"}},
        OutputSerialization={"CSV": {}})
    out = b"".join(ev["Records"]["Payload"] for ev in r["Payload"] if "Records" in ev)
    assert out.decode().split() == ["000003", "000010"]
    q = tarn.request("POST", "/_tarn/sql", headers={"Accept": "text/csv"},
                     body=("SELECT count(*) AS n, max(id) AS m FROM read_csv('s3://%s/t/data.csv')"
                           % bucket).encode())
    assert q.status_code == 200, q.text
    assert q.text.split() == ["n,m", "20000,019999"]
    assert_not_on_disk(tarn, b"item-19999")

    # an SSE-C object: Select with the key reads it, SQL cannot
    key, _ = customer_key("select")
    s3.put_object(Bucket=bucket, Key="c/data.csv", Body=rows.encode(), **sse_c(key))
    r = s3.select_object_content(
        Bucket=bucket, Key="c/data.csv", ExpressionType="SQL",
        Expression="SELECT count(*) FROM S3Object s",
        InputSerialization={"CSV": {"FileHeaderInfo": "USE"}},
        OutputSerialization={"CSV": {}}, **sse_c(key))
    out = b"".join(ev["Records"]["Payload"] for ev in r["Payload"] if "Records" in ev)
    assert out.decode().strip() == "20000"
    q = tarn.request("POST", "/_tarn/sql", headers={"Accept": "text/csv"},
                     body=("SELECT count(*) FROM read_csv('s3://%s/c/data.csv')"
                           % bucket).encode())
    assert q.status_code >= 400 and "Encryption" in q.text


# ---- awscli ----

def test_awscli_sse_and_sse_c(tarn, s3, bucket, tmp_path):
    src = tmp_path / "up.bin"
    src.write_bytes(marker_body("cli", 9 * MiB))  # multipart in the CLI (8 MiB threshold)
    tarn.aws_ok("s3", "cp", str(src), "s3://%s/cli/s3.bin" % bucket, "--sse", "AES256")
    assert s3.head_object(Bucket=bucket, Key="cli/s3.bin")["ServerSideEncryption"] == "AES256"
    keyfile = tmp_path / "key.bin"
    key, key_md5 = customer_key("cli")
    keyfile.write_bytes(key)
    tarn.aws_ok("s3", "cp", str(src), "s3://%s/cli/c.bin" % bucket, "--sse-c", "AES256",
                "--sse-c-key", "fileb://%s" % keyfile)
    h = s3.head_object(Bucket=bucket, Key="cli/c.bin", **sse_c(key))
    assert h["SSECustomerKeyMD5"] == key_md5 and h["ContentLength"] == 9 * MiB
    for name, extra in (("s3.bin", []),
                        ("c.bin", ["--sse-c", "AES256", "--sse-c-key", "fileb://%s" % keyfile])):
        dst = tmp_path / ("down-" + name)
        tarn.aws_ok("s3", "cp", "s3://%s/cli/%s" % (bucket, name), str(dst), *extra)
        assert dst.read_bytes() == src.read_bytes()
    assert_not_on_disk(tarn, b"plaintext-cli")


# ---- durability ----

def test_kill9_after_encrypted_put(tarn_factory):
    # this server encrypts every bucket without a configuration, as AWS does
    srv = tarn_factory(env={"TARN_S3_DEFAULT_SSE": "AES256"})
    s3 = srv.client()
    s3.create_bucket(Bucket="crash-sse")
    got = s3.get_bucket_encryption(Bucket="crash-sse")["ServerSideEncryptionConfiguration"]
    assert got["Rules"][0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    bodies = {"default": marker_body("crashdefault", 30000)}
    r = s3.put_object(Bucket="crash-sse", Key="default", Body=bodies["default"])
    assert r["ServerSideEncryption"] == "AES256"
    key, _ = customer_key("crash")
    for i in range(6):
        bodies["s3-%d" % i] = marker_body("crash%d" % i, 40000 + i * 70000)
        s3.put_object(Bucket="crash-sse", Key="s3-%d" % i, Body=bodies["s3-%d" % i],
                      ServerSideEncryption="AES256")
    bodies["c"] = marker_body("crashc", 100000)
    s3.put_object(Bucket="crash-sse", Key="c", Body=bodies["c"], **sse_c(key))
    srv.kill9()
    srv.start()
    s3 = srv.client()
    for k, body in bodies.items():
        kw = sse_c(key) if k == "c" else {}
        assert s3.get_object(Bucket="crash-sse", Key=k, **kw)["Body"].read() == body, k
    for tag in ("crashdefault", "crash0", "crash5", "crashc"):
        assert_not_on_disk(srv, ("plaintext-%s-" % tag).encode())
    srv.stop_clean()


# ---- the JavaScript SDK ----

def test_js_sdk_sse_c_round_trip(tarn, bucket_name):
    js_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
    if not os.path.isdir(os.path.join(js_dir, "node_modules", "@aws-sdk", "client-s3")):
        pytest.fail("the JavaScript SDK is not installed: run `npm install` in tests/e2e/js")
    env = clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_BUCKET=bucket_name,
               AWS_ACCESS_KEY_ID=tarn.access_key, AWS_SECRET_ACCESS_KEY=tarn.secret_key,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run(["node", "s3_sse_c.mjs"], cwd=js_dir, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", "stdout:\n%s\nstderr:\n%s" % (
        r.stdout[-3000:], r.stderr[-3000:])
    assert_not_on_disk(tarn, b"js sse-c plaintext marker")


# ---- integrity ----

@skip_with_objects_backend("the test edits the local blob files, which a backend has instead")
def test_tampered_blob_is_refused(tarn, s3, bucket):
    body = marker_body("tamper", 3 * 65536)
    s3.put_object(Bucket=bucket, Key="t", Body=body, ServerSideEncryption="AES256")
    before = set(p for p in disk_files(tarn) if "/blobs/" in p)
    # the blob that holds it: the newest of the right size
    want = 16 + len(body) + 3 * 16
    blobs = [p for p in before if os.path.getsize(p) == want]
    assert blobs, "no blob of %d bytes" % want
    path = max(blobs, key=os.path.getmtime)
    with open(path, "r+b") as f:
        f.seek(16 + 65536 + 16 + 100)   # inside the second chunk
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 1]))
    # the first chunk still reads; the second fails its tag: a 500, no byte of it sent
    got = s3.get_object(Bucket=bucket, Key="t", Range="bytes=0-99")
    assert got["Body"].read() == body[:100]
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="t", Range="bytes=65536-65636")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    # a read that starts before it is cut short when it reaches it
    with pytest.raises(Exception):
        s3.get_object(Bucket=bucket, Key="t")["Body"].read()
