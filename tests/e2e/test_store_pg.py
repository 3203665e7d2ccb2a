"""tests/e2e/test_store_pg.py -- two tarn nodes sharing one object store:
the index in PostgreSQL (`--metadata`), the bytes in an object backend
(`--objects`, here a third tarn).

What a user of two nodes checks: a bucket or object made on one is listed,
read, copied, deleted and queried on the other; a multipart upload may send
its parts to either; a bucket notification is delivered once, not once per
node; acknowledged writes survive kill -9 of the node that took them;
lifecycle rules set on one node expire objects once, with one event;
and SSE-S3 objects written on one node read on the other (one master key).
Versioning and object lock across nodes: test_store_pg_versions.py.

Start reading at test_put_on_a_read_on_b().
"""
import json
import os
import time

import boto3
import pytest
from botocore.config import Config

import tarnlib
from pg_util import backend, node_env, pg  # noqa: F401 (fixtures)
from tarnlib import Tarn


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, pg, backend):
    # a lifecycle "day" of 2 s, swept every second (test_lifecycle_on_both)
    env = dict(node_env(pg, backend), TARN_LIFECYCLE_DAY_SECONDS="2",
               TARN_LIFECYCLE_SWEEP_SECONDS="1")
    a = Tarn(tmp_path_factory.mktemp("node-a"), env=env).start()
    b = Tarn(tmp_path_factory.mktemp("node-b"), env=env).start()
    yield a, b
    for n in (a, b):
        if n.running():
            n.stop_clean()


def keys(s3, bucket, **kw):
    out, prefixes, token = [], [], None
    while True:
        args = dict(Bucket=bucket, **kw)
        if token:
            args["ContinuationToken"] = token
        r = s3.list_objects_v2(**args)
        out += [o["Key"] for o in r.get("Contents", [])]
        prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        if not r["IsTruncated"]:
            return out, prefixes
        token = r["NextContinuationToken"]


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def test_put_on_a_read_on_b(nodes):
    a, b = nodes
    sa, sb = a.client(), b.client()
    sa.create_bucket(Bucket="shared")
    assert "shared" in [x["Name"] for x in sb.list_buckets()["Buckets"]]
    sb.head_bucket(Bucket="shared")

    small = b"000042,small\n"                  # inline in the index record
    big = os.urandom(3 << 20)                  # in the object backend
    sa.put_object(Bucket="shared", Key="dir/small.csv", Body=small,
                  Metadata={"color": "red"}, ContentType="text/csv")
    sa.put_object(Bucket="shared", Key="dir/big.bin", Body=big)
    for i in range(7):
        sa.put_object(Bucket="shared", Key="page/%02d" % i, Body=b"x" * i)

    got = sb.get_object(Bucket="shared", Key="dir/small.csv")
    assert got["Body"].read() == small
    assert got["Metadata"] == {"color": "red"} and got["ContentType"] == "text/csv"
    assert sb.get_object(Bucket="shared", Key="dir/big.bin")["Body"].read() == big
    rng = sb.get_object(Bucket="shared", Key="dir/big.bin", Range="bytes=1000-1999")
    assert rng["Body"].read() == big[1000:2000]
    assert sb.head_object(Bucket="shared", Key="dir/big.bin")["ContentLength"] == len(big)

    # listings on B: delimiter, prefix, paging (v2 and v1)
    assert keys(sb, "shared", Delimiter="/") == ([], ["dir/", "page/"])
    assert keys(sb, "shared", Prefix="dir/")[0] == ["dir/big.bin", "dir/small.csv"]
    assert keys(sb, "shared", Prefix="page/", MaxKeys=3)[0] == ["page/%02d" % i for i in range(7)]
    v1 = sb.list_objects(Bucket="shared", Prefix="page/", MaxKeys=4)
    assert [o["Key"] for o in v1["Contents"]] == ["page/%02d" % i for i in range(4)]
    assert v1["IsTruncated"]
    v1 = sb.list_objects(Bucket="shared", Prefix="page/", Marker="page/03")
    assert [o["Key"] for o in v1["Contents"]] == ["page/%02d" % i for i in range(4, 7)]

    # copy on B (a backend copy of the blob), read on A
    sb.copy_object(Bucket="shared", Key="copy.bin",
                   CopySource={"Bucket": "shared", "Key": "dir/big.bin"})
    assert sa.get_object(Bucket="shared", Key="copy.bin")["Body"].read() == big

    # delete on B, gone on A; the copy keeps its own bytes
    sb.delete_object(Bucket="shared", Key="dir/big.bin")
    with pytest.raises(sa.exceptions.ClientError) as ex:
        sa.get_object(Bucket="shared", Key="dir/big.bin")
    assert code(ex) == "NoSuchKey"
    assert sa.get_object(Bucket="shared", Key="copy.bin")["Body"].read() == big
    r = sb.delete_objects(Bucket="shared", Delete={
        "Objects": [{"Key": "page/%02d" % i} for i in range(7)]})
    assert len(r["Deleted"]) == 7
    assert keys(sa, "shared", Prefix="page/")[0] == []

    # a bucket is not deleted while it has objects, on either node
    with pytest.raises(sa.exceptions.ClientError) as ex:
        sb.delete_bucket(Bucket="shared")
    assert code(ex) == "BucketNotEmpty"


def test_multipart_across_nodes(nodes):
    a, b = nodes
    sa, sb = a.client(), b.client()
    sa.create_bucket(Bucket="mpu")
    up = sa.create_multipart_upload(Bucket="mpu", Key="whole.bin")["UploadId"]
    assert [u["UploadId"] for u in sb.list_multipart_uploads(Bucket="mpu")["Uploads"]] == [up]
    p1, p2 = os.urandom(5 << 20), os.urandom(1 << 20)
    e1 = sa.upload_part(Bucket="mpu", Key="whole.bin", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = sb.upload_part(Bucket="mpu", Key="whole.bin", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    assert [p["PartNumber"] for p in sb.list_parts(Bucket="mpu", Key="whole.bin",
                                                   UploadId=up)["Parts"]] == [1, 2]
    sa.complete_multipart_upload(Bucket="mpu", Key="whole.bin", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    got = sb.get_object(Bucket="mpu", Key="whole.bin")
    assert got["ETag"].endswith('-2"')
    assert got["Body"].read() == p1 + p2
    assert sb.list_multipart_uploads(Bucket="mpu").get("Uploads", []) == []

    # abort on B of an upload made on A
    up = sa.create_multipart_upload(Bucket="mpu", Key="gone.bin")["UploadId"]
    sa.upload_part(Bucket="mpu", Key="gone.bin", UploadId=up, PartNumber=1, Body=b"x")
    sb.abort_multipart_upload(Bucket="mpu", Key="gone.bin", UploadId=up)
    with pytest.raises(sa.exceptions.ClientError) as ex:
        sa.list_parts(Bucket="mpu", Key="gone.bin", UploadId=up)
    assert code(ex) == "NoSuchUpload"

    # an emptied bucket deleted on B is gone on A
    sa.delete_object(Bucket="mpu", Key="whole.bin")
    sb.delete_bucket(Bucket="mpu")
    with pytest.raises(sa.exceptions.ClientError) as ex:
        sa.head_bucket(Bucket="mpu")
    assert ex.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def sqs_of(node):
    return boto3.session.Session().client(
        "sqs", endpoint_url=node.endpoint, region_name=tarnlib.REGION,
        aws_access_key_id=node.access_key, aws_secret_access_key=node.secret_key,
        config=Config(retries={"max_attempts": 1}))


def test_notification_delivered_once(nodes):
    """Both nodes run a feed consumer over the one feed; the queue (made on
    each node under the same name) gets each event once in all."""
    a, b = nodes
    sa, sb = a.client(), b.client()
    sa.create_bucket(Bucket="evented")
    queues = []
    for n in (a, b):
        sqs = sqs_of(n)
        url = sqs.create_queue(QueueName="store-pg-events")["QueueUrl"]
        queues.append((sqs, url))
    arn = queues[0][0].get_queue_attributes(QueueUrl=queues[0][1], AttributeNames=[
        "QueueArn"])["Attributes"]["QueueArn"]
    sa.put_bucket_notification_configuration(Bucket="evented", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    assert sb.get_bucket_notification_configuration(Bucket="evented")[
        "QueueConfigurations"][0]["QueueArn"] == arn
    want = ["ev-%d" % i for i in range(6)]
    for i, k in enumerate(want):
        (sa if i % 2 == 0 else sb).put_object(Bucket="evented", Key=k, Body=b"e")

    seen = []
    deadline = time.monotonic() + 120
    while len(seen) < len(want) and time.monotonic() < deadline:
        for sqs, url in queues:
            for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1,
                                         MaxNumberOfMessages=10).get("Messages", []):
                seen += [r["s3"]["object"]["key"] for r in json.loads(m["Body"]).get("Records", [])]
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(seen) == want
    # and none a second time, on either node
    for sqs, url in queues:
        extra = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", [])
        assert extra == []


def test_sql_on_b_reads_csv_from_a(nodes):
    a, b = nodes
    sa, sb = a.client(), b.client()
    sa.create_bucket(Bucket="lake")
    rows = "".join("%06d,%d\n" % (i, i % 5) for i in range(2000))
    sa.put_object(Bucket="lake", Key="t/data.csv", Body=("id,g\n" + rows).encode())
    r = b.request("POST", "/_tarn/sql", headers={"Accept": "text/csv"},
                  body=b"SELECT count(*) AS n, min(id) AS lo FROM read_csv('s3://lake/t/*.csv') "
                       b"WHERE g = 3")
    assert r.status_code == 200, r.text
    assert r.text.splitlines()[1:] == ["400,000003"]
    out = sb.select_object_content(
        Bucket="lake", Key="t/data.csv", ExpressionType="SQL",
        Expression="SELECT count(*) FROM s3object s WHERE s.g = '4'",
        InputSerialization={"CSV": {"FileHeaderInfo": "USE"}}, OutputSerialization={"CSV": {}})
    got = b"".join(ev["Records"]["Payload"] for ev in out["Payload"] if "Records" in ev)
    assert got.decode().strip() == "400"


def test_sse_s3_across_nodes(nodes, backend):
    """Both nodes seal and open data keys with one master key, kept in the
    metadata database: an object encrypted on A reads on B, and the backend
    holds no plaintext."""
    a, b = nodes
    sa, sb = a.client(), b.client()
    sa.create_bucket(Bucket="secret")
    body = b"000042,top secret row\n" * 5000
    r = sa.put_object(Bucket="secret", Key="one.csv", Body=body, ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256"
    got = sb.get_object(Bucket="secret", Key="one.csv")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == body
    # default encryption set on B applies to a PUT on A
    sb.put_bucket_encryption(Bucket="secret", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    sa.put_object(Bucket="secret", Key="two.csv", Body=body)
    assert sb.head_object(Bucket="secret", Key="two.csv")["ServerSideEncryption"] == "AES256"
    assert sb.get_object(Bucket="secret", Key="two.csv", Range="bytes=70000-70099")[
        "Body"].read() == body[70000:70100]
    # the backend's copies of the bytes are ciphertext
    blobs = backend.client()
    found = 0
    for page in blobs.get_paginator("list_objects_v2").paginate(Bucket="blobs"):
        for o in page.get("Contents", []):
            try:
                data = blobs.get_object(Bucket="blobs", Key=o["Key"])["Body"].read()
            except blobs.exceptions.NoSuchKey:
                continue  # a staging blob removed between the listing and this read
            assert b"top secret row" not in data
            found += 1
    assert found > 0


def test_lifecycle_on_both(nodes):
    """A rule set on A expires on both nodes' sweeps; each expiry is one
    delete with one event, not one per node."""
    a, b = nodes
    sa, sb = a.client(), b.client()
    sa.create_bucket(Bucket="aging")
    sqs = sqs_of(a)
    url = sqs.create_queue(QueueName="aging-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sb.put_bucket_notification_configuration(Bucket="aging", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:LifecycleExpiration:*"]}]})
    sb.put_bucket_lifecycle_configuration(Bucket="aging", LifecycleConfiguration={
        "Rules": [{"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
                   "Expiration": {"Days": 1}}]})
    assert sa.get_bucket_lifecycle_configuration(Bucket="aging")["Rules"][0]["ID"] == "tmp"
    for i in range(5):
        sa.put_object(Bucket="aging", Key="tmp/%d" % i, Body=b"x")
        sb.put_object(Bucket="aging", Key="keep/%d" % i, Body=b"y")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        left, _ = keys(sb, "aging", Prefix="tmp/")
        if not left:
            break
        time.sleep(0.5)
    assert keys(sa, "aging", Prefix="tmp/")[0] == []
    assert keys(sa, "aging", Prefix="keep/")[0] == ["keep/%d" % i for i in range(5)]
    # one ObjectRemoved event per expired key
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 5 and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=1).get("Messages", []):
            for rec in json.loads(m["Body"]).get("Records", []):
                seen.append((rec["eventName"], rec["s3"]["object"]["key"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    more = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=3)
    for m in more.get("Messages", []):
        for rec in json.loads(m["Body"]).get("Records", []):
            seen.append((rec["eventName"], rec["s3"]["object"]["key"]))
    assert sorted(seen) == [("LifecycleExpiration:Delete", "tmp/%d" % i) for i in range(5)]


def test_kill9_of_a_loses_nothing(nodes):
    a, b = nodes
    sa, sb = a.client(), b.client()
    sa.create_bucket(Bucket="durable")
    bodies = {"k%03d" % i: os.urandom(100 if i % 2 else 40000) for i in range(20)}
    for k, v in bodies.items():
        sa.put_object(Bucket="durable", Key=k, Body=v)
    a.kill9()
    assert keys(sb, "durable")[0] == sorted(bodies)
    for k, v in bodies.items():
        assert sb.get_object(Bucket="durable", Key=k)["Body"].read() == v
    a.start()
    assert a.client().head_object(Bucket="durable", Key="k019")["ContentLength"] == 100
