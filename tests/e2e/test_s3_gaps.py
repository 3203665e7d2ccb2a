"""tests/e2e/test_s3_gaps.py -- corners of S3 access, encryption, object
lock and checksums: an identity policy's explicit Deny wins over a bucket
policy's Allow whatever the key's length; versioned tagging and ACLs are
authorised with S3's *Version* actions; what tarn writes itself (Firehose
deliveries, SQL CTAS and COPY, Athena results, Batch copies and reports,
Step Functions' s3:putObject)
follows the bucket's default encryption; object lock headers on
CreateMultipartUpload; SSE-C refused on plain HTTP from other machines;
checksums of CopyObject and UploadPartCopy; GetObjectLegalHold of a version
that never had a hold. boto3 throughout, with S3's error codes.
"""
import datetime
import json
import os
import stat

import pytest
from botocore.exceptions import ClientError

from queue_util import client, unique, wait_for
from tarnlib import list_all_keys


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


# ---- internal writers and the bucket's default encryption ----

def disk_holds(tarn, needle):
    """A file of the object store (its blobs and index) holding needle.
    (Firehose's own buffer of records not yet delivered is not the store.)"""
    for root, _dirs, files in os.walk(tarn.data):
        if os.path.relpath(root, tarn.data).split(os.sep)[0] not in ("blobs", "meta"):
            continue
        for name in files:
            path = os.path.join(root, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                with open(path, "rb") as f:
                    if needle in f.read():
                        return path
    return None


def sql(tarn, query):
    r = tarn.request("POST", "/_tarn/sql", headers={"Accept": "application/json"},
                     body=query.encode(), timeout=120)
    doc = json.loads(r.text)
    assert r.status_code == 200 and "error" not in doc, doc
    return doc


def default_aes256(s3, bucket):
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})


def test_firehose_delivery_honours_default_encryption(tarn, s3, bucket):
    default_aes256(s3, bucket)
    fh = client(tarn, "firehose", parameter_validation=False)
    name = unique("enc")
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration={
                                  "RoleARN": "arn:aws:iam::000000000000:role/firehose",
                                  "BucketARN": "arn:aws:s3:::" + bucket, "Prefix": "fh/",
                                  "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1}})
    recs = [{"Data": ('{"id": "%06d", "tag": "fh-plain-%d"}\n' % (i, i)).encode()}
            for i in range(200)]
    fh.put_record_batch(DeliveryStreamName=name, Records=recs)
    keys = wait_for(lambda: list_all_keys(s3, bucket, Prefix="fh/"), timeout=120,
                    what="the delivery")
    assert len(keys) == 1
    assert s3.head_object(Bucket=bucket, Key=keys[0])["ServerSideEncryption"] == "AES256"
    assert disk_holds(tarn, b"fh-plain-199") is None
    got = sql(tarn, "SELECT count(*) AS n, max(tag) AS m FROM read_json('s3://%s/%s')"
              % (bucket, keys[0]))["rows"]
    assert got == [[200, "fh-plain-99"]]


def test_ctas_and_copy_honour_default_encryption(tarn, s3, bucket):
    default_aes256(s3, bucket)
    src = "".join("%06d,ctas-plain-%d\n" % (i, i) for i in range(500))
    s3.put_object(Bucket=bucket, Key="in/data.csv", Body=("id,name\n" + src).encode())
    sql(tarn, "CREATE DATABASE IF NOT EXISTS encdb LOCATION 's3://%s/warehouse/'" % bucket)
    sql(tarn, "CREATE TABLE encdb.t WITH (format='JSON') AS SELECT id, name "
              "FROM read_csv('s3://%s/in/data.csv') WHERE id > '000100'" % bucket)
    keys = list_all_keys(s3, bucket, Prefix="warehouse/t/")
    assert len(keys) == 1
    assert s3.head_object(Bucket=bucket, Key=keys[0])["ServerSideEncryption"] == "AES256"
    assert disk_holds(tarn, b"ctas-plain-499") is None
    assert sql(tarn, "SELECT count(*), min(id), max(name) FROM encdb.t")["rows"] == [
        [399, "000101", "ctas-plain-499"]]
    # COPY ... TO as well
    sql(tarn, "COPY (SELECT id FROM encdb.t WHERE id = '000123') TO 's3://%s/out/one.csv' "
              "(FORMAT CSV, HEADER)" % bucket)
    assert s3.head_object(Bucket=bucket, Key="out/one.csv")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="out/one.csv")["Body"].read() == b"id\n000123\n"
    # Athena's results and their .metadata
    ath = tarn.service_client("athena")
    qid = ath.start_query_execution(
        QueryString="SELECT name FROM encdb.t WHERE id = '000321'",
        ResultConfiguration={"OutputLocation": "s3://%s/athena/" % bucket})["QueryExecutionId"]
    state = wait_for(lambda: ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"][
        "Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED") or None, timeout=120,
        what="the query")
    assert ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"][
        "State"] == "SUCCEEDED", state
    rows = ath.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    assert rows[1]["Data"][0]["VarCharValue"] == "ctas-plain-321"
    for k in ("athena/%s.csv" % qid, "athena/%s.csv.metadata" % qid):
        assert s3.head_object(Bucket=bucket, Key=k)["ServerSideEncryption"] == "AES256"


# ---- object lock on multipart uploads ----

def test_multipart_upload_with_object_lock_headers(s3, bucket_name):
    s3.create_bucket(Bucket=bucket_name, ObjectLockEnabledForBucket=True)
    until = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).replace(
        microsecond=0)
    up = s3.create_multipart_upload(Bucket=bucket_name, Key="locked",
                                    ObjectLockMode="GOVERNANCE",
                                    ObjectLockRetainUntilDate=until,
                                    ObjectLockLegalHoldStatus="ON")
    part = s3.upload_part(Bucket=bucket_name, Key="locked", UploadId=up["UploadId"],
                          PartNumber=1, Body=b"p" * 1024)
    done = s3.complete_multipart_upload(
        Bucket=bucket_name, Key="locked", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    vid = done["VersionId"]
    h = s3.head_object(Bucket=bucket_name, Key="locked")
    assert (h["ObjectLockMode"], h["ObjectLockRetainUntilDate"], h["ObjectLockLegalHoldStatus"]) \
        == ("GOVERNANCE", until, "ON")
    assert "x-tarn-lock" not in str(h["ResponseMetadata"]["HTTPHeaders"])
    r = s3.get_object_retention(Bucket=bucket_name, Key="locked", VersionId=vid)["Retention"]
    assert (r["Mode"], r["RetainUntilDate"]) == ("GOVERNANCE", until)
    assert s3.get_object_legal_hold(Bucket=bucket_name, Key="locked")["LegalHold"]["Status"] == "ON"
    refused(lambda: s3.delete_object(Bucket=bucket_name, Key="locked", VersionId=vid),
            "AccessDenied", 403)
    # a legal hold alone; then the refusals of PutObject's
    up = s3.create_multipart_upload(Bucket=bucket_name, Key="held",
                                    ObjectLockLegalHoldStatus="ON")
    part = s3.upload_part(Bucket=bucket_name, Key="held", UploadId=up["UploadId"],
                          PartNumber=1, Body=b"h")
    s3.complete_multipart_upload(
        Bucket=bucket_name, Key="held", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    h = s3.head_object(Bucket=bucket_name, Key="held")
    assert h["ObjectLockLegalHoldStatus"] == "ON" and "ObjectLockMode" not in h
    refused(lambda: s3.create_multipart_upload(Bucket=bucket_name, Key="x",
                                               ObjectLockMode="GOVERNANCE"), "InvalidArgument", 400)
    past = until - datetime.timedelta(days=5)
    refused(lambda: s3.create_multipart_upload(Bucket=bucket_name, Key="x",
                                               ObjectLockMode="COMPLIANCE",
                                               ObjectLockRetainUntilDate=past),
            "InvalidArgument", 400)
    plain = bucket_name + "-plain"
    s3.create_bucket(Bucket=plain)
    refused(lambda: s3.create_multipart_upload(Bucket=plain, Key="x",
                                               ObjectLockLegalHoldStatus="ON"),
            "InvalidRequest", 400)
    assert s3.list_multipart_uploads(Bucket=bucket_name).get("Uploads", []) == []


# ---- SSE-C over plain HTTP ----

SSE_C_KEY = b"0123456789abcdef0123456789abcdef"
SSE_C = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=SSE_C_KEY.decode())
SSE_C_MSG = ("Requests specifying Server Side Encryption with Customer provided keys must be "
             "made over a secure connection.")


def https_proxy_header(s3):
    """What a TLS-terminating proxy in front of tarn adds."""
    def add(request, **_kw):
        request.headers["X-Forwarded-Proto"] = "https"
    s3.meta.events.register("before-sign.s3.*", add)


def refused_sse_c(call):
    with pytest.raises(ClientError) as ei:
        call()
    err = ei.value.response
    assert (err["Error"]["Code"], err["Error"]["Message"],
            err["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidRequest", SSE_C_MSG, 400)


def non_loopback_address():
    """This machine's address on a network interface, or None."""
    import socket
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") else addr


def test_sse_c_needs_a_secure_connection(tarn_factory, s3, bucket):
    # loopback (this module's server): accepted
    s3.put_object(Bucket=bucket, Key="c", Body=b"loop", **SSE_C)
    assert s3.get_object(Bucket=bucket, Key="c", **SSE_C)["Body"].read() == b"loop"
    # a server that refuses plain HTTP as S3 does
    srv = tarn_factory(env={"TARN_S3_SSE_C_HTTP": "refuse"})
    c = srv.client()
    c.create_bucket(Bucket="ssec")
    refused_sse_c(lambda: c.put_object(Bucket="ssec", Key="c", Body=b"x", **SSE_C))
    refused(lambda: c.head_object(Bucket="ssec", Key="c"), "404", 404)   # nothing written
    c.put_object(Bucket="ssec", Key="plain", Body=b"p")
    refused_sse_c(lambda: c.copy_object(Bucket="ssec", Key="c2", CopySource="ssec/plain", **SSE_C))
    # behind a TLS-terminating proxy
    p = srv.client()
    https_proxy_header(p)
    p.put_object(Bucket="ssec", Key="c", Body=b"proxied", **SSE_C)
    assert p.get_object(Bucket="ssec", Key="c", **SSE_C)["Body"].read() == b"proxied"
    refused_sse_c(lambda: c.get_object(Bucket="ssec", Key="c", **SSE_C))
    srv.stop_clean()
    # the default from another machine: refused (when this one has a network address)
    addr = non_loopback_address()
    if addr is None:
        return
    srv = tarn_factory(start=False)
    srv.host = "0.0.0.0"
    srv.start()
    r = srv.client(endpoint="http://%s:%d" % (addr, srv.port))
    r.create_bucket(Bucket="remote")
    refused_sse_c(lambda: r.put_object(Bucket="remote", Key="c", Body=b"x", **SSE_C))
    r.put_object(Bucket="remote", Key="s3", Body=b"x", ServerSideEncryption="AES256")


# ---- checksums of copies ----

def test_copy_checksums(s3, bucket):
    import base64
    import hashlib
    import zlib
    body = b"".join(b"copy-%06d\n" % i for i in range(560000))   # parts of 5 MiB and more
    crc32 = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    sha256 = base64.b64encode(hashlib.sha256(body).digest()).decode()
    s3.put_object(Bucket=bucket, Key="src", Body=body)
    r = s3.copy_object(Bucket=bucket, Key="plain", CopySource="%s/src" % bucket,
                       ChecksumAlgorithm="CRC32")
    assert r["CopyObjectResult"]["ChecksumCRC32"] == crc32
    h = s3.head_object(Bucket=bucket, Key="plain", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == crc32 and h["ResponseMetadata"]["HTTPHeaders"].get(
        "x-amz-checksum-type") == "FULL_OBJECT"
    # an encrypted copy, with new metadata: computed over the plaintext
    r = s3.copy_object(Bucket=bucket, Key="enc", CopySource="%s/plain" % bucket,
                       ChecksumAlgorithm="SHA256", ServerSideEncryption="AES256",
                       MetadataDirective="REPLACE", Metadata={"m": "1"})
    assert r["CopyObjectResult"]["ChecksumSHA256"] == sha256
    h = s3.head_object(Bucket=bucket, Key="enc", ChecksumMode="ENABLED")
    assert (h["ChecksumSHA256"], h["Metadata"], h["ServerSideEncryption"]) == (
        sha256, {"m": "1"}, "AES256")
    assert "ChecksumCRC32" not in h
    # without the header the source's checksum goes with the bytes
    s3.copy_object(Bucket=bucket, Key="again", CopySource="%s/plain" % bucket)
    assert s3.head_object(Bucket=bucket, Key="again", ChecksumMode="ENABLED")["ChecksumCRC32"] \
        == crc32
    refused(lambda: s3.copy_object(Bucket=bucket, Key="bad", CopySource="%s/src" % bucket,
                                   ChecksumAlgorithm="MD5"), "InvalidArgument", 400)
    # UploadPartCopy: the part's checksum, and the object's from the parts
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")
    half = 5 * 1024 * 1024
    parts = []
    raw = b""
    for n, rng in ((1, "bytes=0-%d" % (half - 1)), (2, "bytes=%d-%d" % (half, len(body) - 1))):
        r = s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=n,
                                CopySource="%s/enc" % bucket, CopySourceRange=rng)
        lo, hi = (0, half) if n == 1 else (half, len(body))
        want = base64.b64encode(zlib.crc32(body[lo:hi]).to_bytes(4, "big")).decode()
        assert r["CopyPartResult"]["ChecksumCRC32"] == want
        raw += base64.b64decode(want)
        parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"], "ChecksumCRC32": want})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": parts})
    # COMPOSITE: the CRC32 of the parts' CRC32s, "-2"
    assert done["ChecksumCRC32"] == "%s-2" % base64.b64encode(
        zlib.crc32(raw).to_bytes(4, "big")).decode()
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == body


def test_legal_hold_of_a_version_that_never_had_one(s3, bucket_name):
    """As S3: 404 NoSuchObjectLockConfiguration until a hold is placed;
    after ON then OFF, OFF."""
    s3.create_bucket(Bucket=bucket_name, ObjectLockEnabledForBucket=True)
    vid = s3.put_object(Bucket=bucket_name, Key="k", Body=b"x")["VersionId"]
    refused(lambda: s3.get_object_legal_hold(Bucket=bucket_name, Key="k"),
            "NoSuchObjectLockConfiguration", 404)
    refused(lambda: s3.get_object_legal_hold(Bucket=bucket_name, Key="k", VersionId=vid),
            "NoSuchObjectLockConfiguration", 404)
    s3.put_object_legal_hold(Bucket=bucket_name, Key="k", LegalHold={"Status": "ON"})
    assert s3.get_object_legal_hold(Bucket=bucket_name, Key="k")["LegalHold"]["Status"] == "ON"
    s3.put_object_legal_hold(Bucket=bucket_name, Key="k", LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=bucket_name, Key="k")["LegalHold"]["Status"] == "OFF"
    # the older version keeps its answer once a newer one exists
    s3.put_object(Bucket=bucket_name, Key="k", Body=b"y")
    got = s3.get_object_legal_hold(Bucket=bucket_name, Key="k", VersionId=vid)
    assert got["LegalHold"]["Status"] == "OFF"
    refused(lambda: s3.get_object_legal_hold(Bucket=bucket_name, Key="k"),
            "NoSuchObjectLockConfiguration", 404)
    # a bucket without object lock
    plain = bucket_name + "-p"
    s3.create_bucket(Bucket=plain)
    s3.put_object(Bucket=plain, Key="k", Body=b"x")
    refused(lambda: s3.get_object_legal_hold(Bucket=plain, Key="k"), "InvalidRequest", 400)


def test_batch_copy_and_report_honour_default_encryption(tarn, s3, bucket):
    import uuid
    from batch_util import ACCOUNT, ROLE, control_client, put_manifest, report, wait_done
    src = bucket + "-src"
    s3.create_bucket(Bucket=src)
    for i in range(3):
        s3.put_object(Bucket=src, Key="in/%d" % i, Body=b"batch-plain-%d" % i)
    default_aes256(s3, bucket)
    ctl = control_client(tarn)
    job = ctl.create_job(
        AccountId=ACCOUNT, ConfirmationRequired=False, Priority=10, RoleArn=ROLE,
        ClientRequestToken=uuid.uuid4().hex,
        Operation={"S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::" + bucket}},
        Manifest=put_manifest(s3, src, "m.csv", [(src, "in/%d" % i) for i in range(3)]),
        Report=report(bucket))["JobId"]
    d = wait_done(ctl, job)
    assert d["Status"] == "Complete" and d["ProgressSummary"]["NumberOfTasksSucceeded"] == 3
    for i in range(3):
        o = s3.get_object(Bucket=bucket, Key="in/%d" % i)
        assert (o["Body"].read(), o["ServerSideEncryption"]) == (b"batch-plain-%d" % i, "AES256")
    # the source stays as it was
    assert "ServerSideEncryption" not in s3.head_object(Bucket=src, Key="in/0")
    reports = list_all_keys(s3, bucket, Prefix="reports/")
    assert reports and all(
        s3.head_object(Bucket=bucket, Key=k)["ServerSideEncryption"] == "AES256" for k in reports)


def test_step_functions_put_object_honours_default_encryption(tarn, s3, bucket):
    from states_util import run, sfn_client
    default_aes256(s3, bucket)
    d = {"StartAt": "Put", "States": {"Put": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
        "Parameters": {"Bucket": bucket, "Key": "sfn/out.json", "Body.$": "$.doc"},
        "End": True}}}
    desc, _ = run(sfn_client(tarn), d, {"doc": {"tag": "sfn-plain-text"}})
    assert desc["status"] == "SUCCEEDED", desc
    o = s3.get_object(Bucket=bucket, Key="sfn/out.json")
    assert o["ServerSideEncryption"] == "AES256"
    assert json.loads(o["Body"].read()) == {"tag": "sfn-plain-text"}
