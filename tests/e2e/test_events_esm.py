"""tests/e2e/test_events_esm.py -- a queue drives a function through an
event source mapping (the seed talk's slide 13, third pattern: "message
inserted into a queue, Lambda polls it, the function removes it"), with
boto3's Lambda and SQS clients and the AWS CLI.

Covered: the mapping's API (create, get, list, update, disable, delete,
conflicts and validation errors), batches of at most BatchSize in the SQS
event format, a batching window that gathers more than ten, pollers that
add concurrent batches while the backlog lasts (up to a limit), messages
deleted on success, ReportBatchItemFailures keeping only the failed ones,
and a poison message that fails until the queue's redrive policy moves it
to the dead-letter queue.

The function records every batch it gets as an object (batches/<request
id>), so the test sees exactly what Lambda would have passed.
"""
import json
import time

import pytest
from botocore.exceptions import ClientError

import lambda_util as lu
import tarnlib
from tarnlib import client_error
from test_events import aws_client, create_python, make_queue, receive_all, wait_for

BATCH_FN = '''
import json, os
import boto3

def handler(event, context):
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    records = event["Records"]
    s3.put_object(Bucket=os.environ["BUCKET"], Key="batches/" + context.aws_request_id,
                  Body=json.dumps(records).encode())
    if any(r["body"] == "poison" for r in records):
        raise ValueError("poison message")
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]}
                                  for r in records if r["body"].startswith("bad")]}
'''


@pytest.fixture(scope="module")
def sqs(tarn):
    return aws_client(tarn, "sqs")


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


@pytest.fixture
def name(request):
    return lu.unique_name(request.node.name)[:60]


def batches(s3, bucket):
    """Every batch the function got: lists of SQS records."""
    out = []
    for key in tarnlib.list_all_keys(s3, bucket, Prefix="batches/"):
        out.append(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    return out


def bodies_seen(s3, bucket):
    return [r["body"] for b in batches(s3, bucket) for r in b]


def queue_counts(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def send_all(sqs, url, bodies):
    for i in range(0, len(bodies), 10):
        chunk = bodies[i:i + 10]
        r = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(j), "MessageBody": b} for j, b in enumerate(chunk)])
        assert not r.get("Failed"), r


def batch_function(lam, name, bucket):
    return create_python(lam, name, BATCH_FN, Timeout=30,
                         Environment={"Variables": {"BUCKET": bucket}})


def test_mapping_api(lam, sqs, bucket, name):
    url, arn = make_queue(sqs, name)
    fn = batch_function(lam, name, bucket)
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=5,
                                        Enabled=False)
    assert m["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert m["State"] == "Creating"
    assert m["EventSourceArn"] == arn and m["FunctionArn"] == fn["FunctionArn"]
    assert m["BatchSize"] == 5 and m["MaximumBatchingWindowInSeconds"] == 0
    uuid = m["UUID"]
    got = lam.get_event_source_mapping(UUID=uuid)
    assert got["State"] == "Disabled" and got["BatchSize"] == 5
    assert got["LastModified"].year >= 2024

    with pytest.raises(ClientError) as ei:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name)
    assert client_error(ei.value) == ("ResourceConflictException", 409)
    with pytest.raises(ClientError) as ei:
        lam.create_event_source_mapping(EventSourceArn=arn + "-missing", FunctionName=name)
    assert client_error(ei.value) == ("InvalidParameterValueException", 400)
    with pytest.raises(ClientError) as ei:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name + "-missing")
    assert client_error(ei.value) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as ei:
        lam.update_event_source_mapping(UUID=uuid, BatchSize=50)
    assert client_error(ei.value) == ("InvalidParameterValueException", 400)
    assert "MaximumBatchingWindowInSeconds" in str(ei.value) or "batch window" in str(ei.value)
    with pytest.raises(ClientError) as ei:
        lam.get_event_source_mapping(UUID="00000000-0000-4000-8000-000000000000")
    assert client_error(ei.value) == ("ResourceNotFoundException", 404)

    listed = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    assert [x["UUID"] for x in listed] == [uuid]
    listed = lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    assert [x["UUID"] for x in listed] == [uuid]

    up = lam.update_event_source_mapping(UUID=uuid, BatchSize=100,
                                         MaximumBatchingWindowInSeconds=2,
                                         FunctionResponseTypes=["ReportBatchItemFailures"])
    assert up["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert up["State"] == "Updating" and up["BatchSize"] == 100
    assert up["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    up = lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert up["State"] == "Enabling"
    assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled"
    up = lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert up["State"] == "Disabling"

    gone = lam.delete_event_source_mapping(UUID=uuid)
    assert gone["State"] == "Deleting"
    with pytest.raises(ClientError) as ei:
        lam.get_event_source_mapping(UUID=uuid)
    assert client_error(ei.value) == ("ResourceNotFoundException", 404)
    assert lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"] == []


def test_queue_drives_function_in_batches(s3, lam, sqs, bucket, name):
    url, arn = make_queue(sqs, name)
    batch_function(lam, name, bucket)
    sent = ["message %02d" % i for i in range(25)]
    send_all(sqs, url, sent)
    sqs.send_message(QueueUrl=url, MessageBody="with attributes",
                     MessageAttributes={"color": {"DataType": "String", "StringValue": "blue"}})
    uuid = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name,
                                           BatchSize=10)["UUID"]
    wait_for(lambda: len(bodies_seen(s3, bucket)) >= 26, timeout=90)
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), timeout=60)
    got = batches(s3, bucket)
    assert all(1 <= len(b) <= 10 for b in got)
    assert sorted(bodies_seen(s3, bucket)) == sorted(sent + ["with attributes"])
    rec = [r for b in got for r in b if r["body"] == "with attributes"][0]
    assert rec["eventSource"] == "aws:sqs"
    assert rec["eventSourceARN"] == arn
    assert rec["awsRegion"] == "us-east-1"
    assert rec["messageId"] and rec["receiptHandle"] and rec["md5OfBody"]
    assert rec["attributes"]["ApproximateReceiveCount"] == "1"
    assert int(rec["attributes"]["SentTimestamp"]) > 0
    assert int(rec["attributes"]["ApproximateFirstReceiveTimestamp"]) > 0
    assert rec["attributes"]["SenderId"]
    assert rec["messageAttributes"]["color"]["stringValue"] == "blue"
    assert rec["messageAttributes"]["color"]["dataType"] == "String"
    m = lam.get_event_source_mapping(UUID=uuid)
    assert m["LastProcessingResult"] == "OK"
    lam.delete_event_source_mapping(UUID=uuid)


def test_batching_window_gathers_more_than_ten(s3, lam, sqs, bucket, name):
    url, arn = make_queue(sqs, name)
    batch_function(lam, name, bucket)
    sent = ["w%02d" % i for i in range(40)]
    send_all(sqs, url, sent)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=40,
                                    MaximumBatchingWindowInSeconds=3)
    wait_for(lambda: len(bodies_seen(s3, bucket)) >= 40, timeout=90)
    got = batches(s3, bucket)
    assert max(len(b) for b in got) > 10
    assert sorted(bodies_seen(s3, bucket)) == sorted(sent)


def test_report_batch_item_failures(s3, lam, sqs, bucket, name):
    dlq_url, dlq_arn = make_queue(sqs, name + "-dlq")
    # 10 s of visibility: the first batch's invocation (a cold start) ends
    # within it even on a loaded machine, so the good messages are deleted
    # before they could come back (with 1 s, a slow cold start let them be
    # received again); only the reported failure returns after it
    url, arn = make_queue(sqs, name, VisibilityTimeout=10, RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}))
    batch_function(lam, name, bucket)
    send_all(sqs, url, ["good-1", "bad-1", "good-2", "good-3"])
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
    dead = receive_all(sqs, dlq_url, 1, timeout=180)
    assert dead == ["bad-1"]
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), timeout=60)
    seen = bodies_seen(s3, bucket)
    # the good ones were deleted after their first batch: seen once each
    assert sorted(b for b in seen if b.startswith("good")) == ["good-1", "good-2", "good-3"]
    assert seen.count("bad-1") == 2


def test_poison_message_ends_in_the_dead_letter_queue(tarn, s3, lam, sqs, bucket, name):
    dlq_url, dlq_arn = make_queue(sqs, name + "-dlq")
    # 10 s of visibility: a fine message's invocation (a cold start when the
    # pollers scale out) finishes within it even on a loaded machine, so only
    # the poison returns (with 3 s, a fine message outlasted it three times
    # while other test files ran beside this one)
    url, arn = make_queue(sqs, name, VisibilityTimeout=10, RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}))
    batch_function(lam, name, bucket)
    # with the AWS CLI this time
    tarn.aws_ok("lambda", "create-event-source-mapping", "--function-name", name,
                "--event-source-arn", arn, "--batch-size", "1")
    for body in ("fine-1", "poison", "fine-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    dead = receive_all(sqs, dlq_url, 1, timeout=180)
    assert dead == ["poison"]
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), timeout=60)

    # every receive ran the function, the fine ones at least once; on a loaded
    # machine an invocation may outlast the visibility timeout and write its
    # record after the message moved on, so wait for the records
    def all_ran():
        seen = bodies_seen(s3, bucket)
        return seen.count("poison") >= 3 and seen.count("fine-1") >= 1 and \
            seen.count("fine-2") >= 1
    wait_for(all_ran, timeout=90)
    out = json.loads(tarn.aws_ok("lambda", "list-event-source-mappings",
                                 "--function-name", name).stdout)
    assert out["EventSourceMappings"][0]["EventSourceArn"] == arn


SLOW_FN = '''
import json, os, time
import boto3

def handler(event, context):
    start = time.time()
    time.sleep(0.5)
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    s3.put_object(Bucket=os.environ["BUCKET"], Key="spans/" + context.aws_request_id,
                  Body=json.dumps([start, time.time(), len(event["Records"])]).encode())
'''


def test_pollers_scale_with_the_backlog(s3, lam, sqs, bucket, name):
    url, arn = make_queue(sqs, name)
    create_python(lam, name, SLOW_FN, Timeout=30, Environment={"Variables": {"BUCKET": bucket}})
    send_all(sqs, url, ["job %02d" % i for i in range(30)])
    # (Debian's botocore predates ScalingConfig: the default limit, 5 pollers, applies)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1)
    wait_for(lambda: len(tarnlib.list_all_keys(s3, bucket, Prefix="spans/")) >= 30, timeout=120)
    spans = [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())
             for k in tarnlib.list_all_keys(s3, bucket, Prefix="spans/")]
    assert all(n == 1 for _, _, n in spans)
    # the most invocations running at one instant: more than one poller, at most five
    edges = sorted([(s, 1) for s, _, _ in spans] + [(e, -1) for _, e, _ in spans])
    running = peak = 0
    for _, d in edges:
        running += d
        peak = max(peak, running)
    assert 2 <= peak <= 5
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), timeout=60)
