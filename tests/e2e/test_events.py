"""tests/e2e/test_events.py -- bucket notifications end to end, with boto3
and Debian's AWS CLI: configurations (round trip, S3's validation errors,
malformed XML), S3 -> SQS with the exact record fields and S3's key
encoding, the s3:TestEvent message, event-type and prefix/suffix filters
(Put, Copy, CompleteMultipartUpload, Delete), S3 -> SNS -> SQS, S3 -> a
Python function that writes a derived object, and `tarn events`.

The first pattern of the seed talk (slide 13): "file put into bucket,
Lambda invoked". Each test makes its own bucket, queues and functions;
deliveries happen after the PUT returns, so tests wait for them (with
generous deadlines, never fixed sleeps).

The helpers below (no test_ prefix) are shared with the other
test_events_*.py modules.
"""
import hashlib
import json
import os
import subprocess
import time
import urllib.parse

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import lambda_util as lu
import tarnlib
from tarnlib import client_error

MiB = 1024 * 1024

# ---- helpers ----


def aws_client(tarn, service, **config):
    cfg = dict(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=120,
               max_pool_connections=32)
    cfg.update(config)
    return boto3.session.Session().client(
        service, endpoint_url=tarn.endpoint, region_name=tarnlib.REGION,
        aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key,
        config=Config(**cfg))


def make_queue(sqs, name, **attrs):
    """Creates a queue; returns (url, arn)."""
    url = sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attrs.items()})[
        "QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    return url, arn


def receive_all(sqs, url, want, timeout=60.0, delete=True, settle=0.0):
    """Receives until `want` messages came (or the deadline), deleting them;
    returns their bodies in arrival order. With settle > 0, keeps listening
    that long after `want` arrived (to see that nothing more comes)."""
    bodies = []
    deadline = time.monotonic() + timeout
    settle_until = None
    while time.monotonic() < deadline:
        if len(bodies) >= want:
            if settle <= 0:
                break
            if settle_until is None:
                settle_until = time.monotonic() + settle
            elif time.monotonic() >= settle_until:
                break
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                AttributeNames=["All"], MessageAttributeNames=["All"])
        msgs = r.get("Messages", [])
        for m in msgs:
            bodies.append(m["Body"])
        if delete and msgs:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
    return bodies


def s3_records(bodies):
    """The S3 event records in message bodies, test events left out."""
    out = []
    for b in bodies:
        doc = json.loads(b)
        if doc.get("Event") == "s3:TestEvent":
            continue
        out.extend(doc["Records"])
    return out


def wait_for(fn, timeout=60.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %.0f s" % timeout)
        time.sleep(interval)


def queue_rule(arn, events, prefix=None, suffix=None, id=None):
    rule = {"QueueArn": arn, "Events": list(events)}
    if id:
        rule["Id"] = id
    filt = [{"Name": n, "Value": v} for n, v in (("prefix", prefix), ("suffix", suffix)) if v]
    if filt:
        rule["Filter"] = {"Key": {"FilterRules": filt}}
    return rule


def object_exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError:
        return False


WRITER_FN = '''
import json, os, urllib.parse
import boto3

def handler(event, context):
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    for r in event["Records"]:
        bucket = r["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(r["s3"]["object"]["key"])
        s3.put_object(Bucket=bucket, Key="out/" + key + ".json", Body=json.dumps(r).encode())
    return {"records": len(event["Records"])}
'''


def python_zip(source, module="app"):
    return lu.zip_files({module + ".py": (source, 0o100644)})


def create_python(lam, name, source, handler="app.handler", **kw):
    return lu.create(lam, name, python_zip(source), handler=handler, runtime="python3.11", **kw)


# ---- fixtures ----


@pytest.fixture(scope="module")
def sqs(tarn):
    return aws_client(tarn, "sqs")


@pytest.fixture(scope="module")
def sns(tarn):
    return aws_client(tarn, "sns")


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


@pytest.fixture
def qname(request):
    return lu.unique_name(request.node.name)[:70]


# ---- configurations ----


def test_config_round_trip(s3, sqs, sns, lam, bucket, qname):
    _, qarn = make_queue(sqs, qname)
    tarn_topic = sns.create_topic(Name=qname + "-t")["TopicArn"]
    fname = lu.unique_name("notify-target")
    fn = create_python(lam, fname, WRITER_FN)
    cfg = {
        "QueueConfigurations": [queue_rule(qarn, ["s3:ObjectCreated:*"], prefix="raw/",
                                           suffix=".csv", id="to-queue")],
        "TopicConfigurations": [{"Id": "to-topic", "TopicArn": tarn_topic,
                                 "Events": ["s3:ObjectRemoved:*"]}],
        "LambdaFunctionConfigurations": [{"Id": "to-fn", "LambdaFunctionArn": fn["FunctionArn"],
                                          "Events": ["s3:ObjectCreated:Put"],
                                          "Filter": {"Key": {"FilterRules": [
                                              {"Name": "prefix", "Value": "in/"}]}}}],
    }
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=cfg)
    got = s3.get_bucket_notification_configuration(Bucket=bucket)
    q = got["QueueConfigurations"]
    assert q == [{"Id": "to-queue", "QueueArn": qarn, "Events": ["s3:ObjectCreated:*"],
                  "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "raw/"},
                                                     {"Name": "Suffix", "Value": ".csv"}]}}}]
    assert got["TopicConfigurations"] == [{"Id": "to-topic", "TopicArn": tarn_topic,
                                           "Events": ["s3:ObjectRemoved:*"]}]
    f = got["LambdaFunctionConfigurations"]
    assert len(f) == 1 and f[0]["LambdaFunctionArn"] == fn["FunctionArn"]
    assert f[0]["Filter"]["Key"]["FilterRules"] == [{"Name": "Prefix", "Value": "in/"}]

    # a rule without an Id gets one
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [queue_rule(qarn, ["s3:ObjectCreated:Put"])]})
    got = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert got["QueueConfigurations"][0]["Id"]

    # an empty configuration removes it
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    got = s3.get_bucket_notification_configuration(Bucket=bucket)
    for k in ("QueueConfigurations", "TopicConfigurations", "LambdaFunctionConfigurations"):
        assert k not in got


def test_config_validation(tarn, s3, sqs, lam, bucket, qname):
    _, qarn = make_queue(sqs, qname)
    good = {"QueueConfigurations": [queue_rule(qarn, ["s3:ObjectCreated:*"], id="keep")]}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=good)

    def refused(cfg, code="InvalidArgument"):
        with pytest.raises(ClientError) as ei:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=cfg)
        assert client_error(ei.value) == (code, 400)
        return ei.value.response["Error"]["Message"]

    missing = qarn.rsplit(":", 1)[0] + ":no-such-queue-" + qname
    msg = refused({"QueueConfigurations": [queue_rule(missing, ["s3:ObjectCreated:*"])]})
    assert "Unable to validate the following destination configurations" in msg
    fn_arn = "arn:aws:lambda:us-east-1:000000000000:function:no-such-function"
    msg = refused({"LambdaFunctionConfigurations": [
        {"LambdaFunctionArn": fn_arn, "Events": ["s3:ObjectCreated:*"]}]})
    assert "Unable to validate the following destination configurations" in msg
    msg = refused({"TopicConfigurations": [
        {"TopicArn": "arn:aws:sns:us-east-1:000000000000:nope", "Events": ["s3:ObjectCreated:*"]}]})
    assert "Unable to validate" in msg
    msg = refused({"QueueConfigurations": [
        queue_rule(qarn, ["s3:ObjectCreated:*"], prefix="raw/", id="a"),
        queue_rule(qarn, ["s3:ObjectCreated:Put"], prefix="raw/2024/", id="b")]})
    assert msg.startswith("Configurations overlap")
    msg = refused({"QueueConfigurations": [queue_rule(qarn, ["s3:ObjectCreated:Sometimes"])]})
    assert "not supported" in msg
    refused({"QueueConfigurations": [{"QueueArn": qarn, "Events": ["s3:ObjectCreated:*"],
                                      "Filter": {"Key": {"FilterRules": [
                                          {"Name": "middle", "Value": "x"}]}}}]})
    # nothing changed
    got = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert [c["Id"] for c in got["QueueConfigurations"]] == ["keep"]

    # disjoint filters with the same event are fine
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [
            queue_rule(qarn, ["s3:ObjectCreated:*"], prefix="raw/", id="a"),
            queue_rule(qarn, ["s3:ObjectCreated:*"], prefix="clean/", id="b")]})

    with pytest.raises(ClientError) as ei:
        s3.get_bucket_notification_configuration(Bucket=bucket + "-missing")
    assert client_error(ei.value) == ("NoSuchBucket", 404)


def test_config_malformed_xml_and_skip_validation(tarn, s3, bucket):
    path = tarnlib.key_path(bucket)
    r = tarn.request("PUT", path, query=[("notification", None)], body=b"<NotificationConfigur")
    assert r.status_code == 400
    assert tarnlib.s3_error(r)[0] == "MalformedXML"
    r = tarn.request("PUT", path, query=[("notification", None)],
                     body=b"<NotificationConfiguration><QueueConfiguration><Event>"
                          b"s3:ObjectCreated:*</Event></QueueConfiguration>"
                          b"</NotificationConfiguration>")
    assert r.status_code == 400
    assert tarnlib.s3_error(r)[0] == "MalformedXML"
    doc = ("<NotificationConfiguration><QueueConfiguration><Id>later</Id>"
           "<Queue>arn:aws:sqs:us-east-1:000000000000:created-later</Queue>"
           "<Event>s3:ObjectCreated:*</Event></QueueConfiguration>"
           "</NotificationConfiguration>").encode()
    r = tarn.request("PUT", path, query=[("notification", None)], body=doc)
    assert r.status_code == 400 and tarnlib.s3_error(r)[0] == "InvalidArgument"
    r = tarn.request("PUT", path, query=[("notification", None)], body=doc,
                     headers={"x-amz-skip-destination-validation": "true"})
    assert r.status_code == 200, r.text
    got = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert got["QueueConfigurations"][0]["Id"] == "later"
    # deleting the bucket forgets its configuration
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)


def test_config_with_the_aws_cli(tarn, sqs, bucket, qname, tmp_path):
    url, qarn = make_queue(sqs, qname)
    cfg = {"QueueConfigurations": [{"Id": "cli", "QueueArn": qarn,
                                    "Events": ["s3:ObjectCreated:*"]}]}
    (tmp_path / "n.json").write_text(json.dumps(cfg))
    tarn.aws_ok("s3api", "put-bucket-notification-configuration", "--bucket", bucket,
                "--notification-configuration", "file://%s" % (tmp_path / "n.json"))
    out = json.loads(tarn.aws_ok("s3api", "get-bucket-notification-configuration",
                                 "--bucket", bucket).stdout)
    assert out["QueueConfigurations"][0]["QueueArn"] == qarn
    (tmp_path / "f.txt").write_text("from the cli\n")
    tarn.aws_ok("s3", "cp", str(tmp_path / "f.txt"), "s3://%s/cli/f.txt" % bucket)
    recs = s3_records(receive_all(sqs, url, 2))
    assert [r["s3"]["object"]["key"] for r in recs] == ["cli/f.txt"]
    r = tarn.aws("s3api", "put-bucket-notification-configuration", "--bucket", bucket,
                 "--notification-configuration",
                 json.dumps({"QueueConfigurations": [{"QueueArn": qarn + "-nope",
                                                      "Events": ["s3:ObjectCreated:*"]}]}))
    assert r.returncode != 0 and "InvalidArgument" in r.stderr


# ---- S3 -> SQS ----


def test_s3_to_sqs_records(tarn, s3, sqs, bucket, qname):
    url, qarn = make_queue(sqs, qname)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [queue_rule(qarn, ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                                           id="sales-rule")]})
    # S3 sends a test message when the configuration is put
    first = receive_all(sqs, url, 1)
    test = json.loads(first[0])
    assert test["Service"] == "Amazon S3" and test["Event"] == "s3:TestEvent"
    assert test["Bucket"] == bucket and test["Time"].endswith("Z")
    assert "RequestId" in test and "HostId" in test

    key = "raw/2024/sales q1 (final)+v2=ok.csv"
    body = b"region,amount\nnorth,10\n"
    before = time.time()
    put = s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object(Bucket=bucket, Key="second.csv", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="second.csv")
    recs = s3_records(receive_all(sqs, url, 3))
    assert [r["eventName"] for r in recs] == ["ObjectCreated:Put", "ObjectCreated:Put",
                                              "ObjectRemoved:Delete"]
    r = recs[0]
    assert r["eventVersion"] == "2.1"
    assert r["eventSource"] == "aws:s3"
    assert r["awsRegion"] == "us-east-1"
    t = time.mktime(time.strptime(r["eventTime"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert before - 5 <= t <= time.time() + 5
    assert r["eventTime"].endswith("Z") and len(r["eventTime"]) == 24
    assert r["userIdentity"]["principalId"]
    assert r["requestParameters"]["sourceIPAddress"]
    assert r["responseElements"]["x-amz-request-id"] == \
        put["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert r["responseElements"]["x-amz-id-2"]
    s = r["s3"]
    assert s["s3SchemaVersion"] == "1.0"
    assert s["configurationId"] == "sales-rule"
    assert s["bucket"]["name"] == bucket
    assert s["bucket"]["arn"] == "arn:aws:s3:::" + bucket
    assert s["bucket"]["ownerIdentity"]["principalId"]
    o = s["object"]
    # S3 writes keys form-URL-encoded: '+' for a space
    assert o["key"] == "raw/2024/sales+q1+%28final%29%2Bv2%3Dok.csv"
    assert urllib.parse.unquote_plus(o["key"]) == key
    assert o["size"] == len(body)
    assert o["eTag"] == hashlib.md5(body).hexdigest()
    assert recs[1]["s3"]["object"]["sequencer"] > o["sequencer"]
    removed = recs[2]["s3"]["object"]
    assert removed["key"] == "second.csv" and "size" not in removed and "eTag" not in removed
    assert removed["sequencer"] > recs[1]["s3"]["object"]["sequencer"]


def test_event_type_filters(s3, sqs, bucket, qname):
    urls = {}
    rules = []
    for kind, events in (("put", ["s3:ObjectCreated:Put"]), ("copy", ["s3:ObjectCreated:Copy"]),
                         ("mpu", ["s3:ObjectCreated:CompleteMultipartUpload"]),
                         ("del", ["s3:ObjectRemoved:Delete"])):
        url, arn = make_queue(sqs, "%s-%s" % (qname[:60], kind))
        urls[kind] = url
        rules.append(queue_rule(arn, events, id=kind))
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": rules})
    for url in urls.values():
        receive_all(sqs, url, 1)  # the test events

    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    s3.copy_object(Bucket=bucket, Key="b", CopySource={"Bucket": bucket, "Key": "a"})
    up = s3.create_multipart_upload(Bucket=bucket, Key="c")
    part = s3.upload_part(Bucket=bucket, Key="c", UploadId=up["UploadId"], PartNumber=1,
                          Body=b"only part")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="c", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    s3.delete_object(Bucket=bucket, Key="a")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b"}, {"Key": "c"}]})
    s3.delete_object(Bucket=bucket, Key="never-existed")

    got = {k: s3_records(receive_all(sqs, u, want, settle=1.0))
           for k, u, want in (("put", urls["put"], 1), ("copy", urls["copy"], 1),
                              ("mpu", urls["mpu"], 1), ("del", urls["del"], 3))}
    assert [(r["eventName"], r["s3"]["object"]["key"]) for r in got["put"]] == [
        ("ObjectCreated:Put", "a")]
    assert [(r["eventName"], r["s3"]["object"]["key"]) for r in got["copy"]] == [
        ("ObjectCreated:Copy", "b")]
    assert [(r["eventName"], r["s3"]["object"]["key"]) for r in got["mpu"]] == [
        ("ObjectCreated:CompleteMultipartUpload", "c")]
    assert got["mpu"][0]["s3"]["object"]["eTag"] == done["ETag"].strip('"')
    assert got["mpu"][0]["s3"]["object"]["size"] == len(b"only part")
    assert sorted((r["eventName"], r["s3"]["object"]["key"]) for r in got["del"]) == [
        ("ObjectRemoved:Delete", "a"), ("ObjectRemoved:Delete", "b"),
        ("ObjectRemoved:Delete", "c")]


def test_copy_rewritten_by_encryption_is_a_copy_event(s3, sqs, bucket, qname):
    """A copy into a bucket whose default encryption is SSE-S3 rewrites the bytes
    under a key of its own; S3 still calls it a copy."""
    src = bucket + "-src"
    s3.create_bucket(Bucket=src)
    s3.put_object(Bucket=src, Key="plain", Body=b"plain bytes")
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    url, arn = make_queue(sqs, qname[:70] + "-enc")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [queue_rule(arn, ["s3:ObjectCreated:*"])]})
    receive_all(sqs, url, 1)  # the test event
    got = s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": src, "Key": "plain"})
    assert got["ServerSideEncryption"] == "AES256"
    records = s3_records(receive_all(sqs, url, 1, settle=1.0))
    assert [(r["eventName"], r["s3"]["object"]["key"]) for r in records] == [
        ("ObjectCreated:Copy", "copied")]
    assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == b"plain bytes"


def test_prefix_and_suffix_filters(s3, sqs, bucket, qname):
    url, arn = make_queue(sqs, qname)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [queue_rule(arn, ["s3:ObjectCreated:*"], prefix="in/",
                                           suffix=".csv")]})
    receive_all(sqs, url, 1)
    for key in ("in/a.csv", "in/a.json", "out/a.csv", "in/deeper/b.csv", "IN/c.csv", "in/.csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    keys = [r["s3"]["object"]["key"] for r in s3_records(receive_all(sqs, url, 3, settle=1.0))]
    assert keys == ["in/a.csv", "in/deeper/b.csv", "in/.csv"]


# ---- S3 -> SNS -> SQS ----


def test_s3_to_sns_to_sqs(s3, sqs, sns, bucket, qname):
    topic = sns.create_topic(Name=qname + "-topic")["TopicArn"]
    urls = []
    for i in range(2):
        url, arn = make_queue(sqs, "%s-%d" % (qname[:60], i))
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        urls.append(url)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "TopicConfigurations": [{"Id": "fan-out", "TopicArn": topic,
                                 "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket=bucket, Key="reports/q1 summary.txt", Body=b"hello")
    for url in urls:
        bodies = receive_all(sqs, url, 2)
        envelopes = [json.loads(b) for b in bodies]
        assert all(e["Type"] == "Notification" and e["TopicArn"] == topic for e in envelopes)
        assert all(e["Subject"] == "Amazon S3 Notification" for e in envelopes)
        inner = [json.loads(e["Message"]) for e in envelopes]
        assert inner[0]["Event"] == "s3:TestEvent"
        rec = inner[1]["Records"][0]
        assert rec["eventName"] == "ObjectCreated:Put"
        assert rec["s3"]["configurationId"] == "fan-out"
        assert rec["s3"]["object"]["key"] == "reports/q1+summary.txt"


# ---- S3 -> function ----


def test_s3_to_lambda_writes_derived_object(s3, lam, bucket):
    fname = lu.unique_name("s3-trigger")
    fn = create_python(lam, fname, WRITER_FN, Timeout=30)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"Id": "derive", "LambdaFunctionArn": fn["FunctionArn"],
                                          "Events": ["s3:ObjectCreated:*"],
                                          "Filter": {"Key": {"FilterRules": [
                                              {"Name": "prefix", "Value": "in/"}]}}}]})
    s3.put_object(Bucket=bucket, Key="in/hello world.txt", Body=b"hi there")
    wait_for(lambda: object_exists(s3, bucket, "out/in/hello world.txt.json"), timeout=90)
    rec = json.loads(s3.get_object(Bucket=bucket, Key="out/in/hello world.txt.json")["Body"]
                     .read())
    assert rec["eventName"] == "ObjectCreated:Put"
    assert rec["eventSource"] == "aws:s3"
    assert rec["s3"]["configurationId"] == "derive"
    assert rec["s3"]["object"]["key"] == "in/hello+world.txt"
    assert rec["s3"]["object"]["size"] == 8
    # the function's own write under out/ does not trigger it again
    time.sleep(1)
    keys = tarnlib.list_all_keys(s3, bucket)
    assert keys == ["in/hello world.txt", "out/in/hello world.txt.json"]


# ---- tarn events ----


def test_tarn_events_shows_changes_and_deliveries(tarn, s3, sqs, bucket, qname):
    url, arn = make_queue(sqs, qname)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [queue_rule(arn, ["s3:ObjectCreated:*"], prefix="watched/")]})
    s3.put_object(Bucket=bucket, Key="watched/w.csv", Body=b"1,2\n")
    s3.put_object(Bucket=bucket, Key="ignored/x", Body=b"x")
    receive_all(sqs, url, 2)
    env = tarnlib.clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_ACCESS_KEY=tarn.access_key,
               TARN_SECRET_KEY=tarn.secret_key)

    def lines():
        r = subprocess.run([tarnlib.TARN_BIN, "events", "--once", "--json"], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def ours():
        got = [l for l in lines() if l.get("bucket") == bucket and l["type"] == "s3"]
        return got if len(got) >= 2 else None

    got = wait_for(ours)
    watched = [l for l in got if l["key"] == "watched/w.csv"][0]
    assert watched["event"] == "ObjectCreated:Put" and watched["size"] == 4
    assert watched["deliveries"][0]["arn"] == arn
    assert watched["deliveries"][0]["result"] == "delivered"
    ignored = [l for l in got if l["key"] == "ignored/x"][0]
    assert ignored["deliveries"] == []
    human = subprocess.run([tarnlib.TARN_BIN, "events", "--once"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert human.returncode == 0
    assert "%s/watched/w.csv (4 B)  -> queue %s: delivered" % (bucket, qname) in human.stdout

    # follow: a line written after the watcher started arrives on the stream
    p = subprocess.Popen([tarnlib.TARN_BIN, "events", "--json"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        s3.put_object(Bucket=bucket, Key="watched/live.csv", Body=b"live")
        deadline = time.monotonic() + 30
        seen = False
        while time.monotonic() < deadline and not seen:
            line = p.stdout.readline()
            seen = '"watched/live.csv"' in line
        assert seen
    finally:
        p.terminate()
        p.wait(timeout=10)
