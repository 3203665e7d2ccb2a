"""tests/e2e/test_events_async.py -- what happens to asynchronous
invocations: event invoke configs (MaximumRetryAttempts,
MaximumEventAgeInSeconds, on-success and on-failure destinations to a
queue, a topic or a function, in Lambda's invocation-record format), the
DeadLetterConfig of a function, retries with backoff, an S3 notification
whose function keeps failing, and a topic that fans out to two queues and a
function (the seed talk's second pattern: "data published to a topic,
Lambda invoked").

The server runs with TARN_EVENT_RETRY_BASE_MS=50, so retries come after
50 ms, 100 ms, ... instead of Lambda's minutes. Every function invocation
records itself as an object attempts/<request id>/<n>, so the tests count
attempts exactly.
"""
import json
import time

import pytest
from botocore.exceptions import ClientError

import lambda_util as lu
import tarnlib
from tarnlib import Tarn, client_error
from test_events import (aws_client, create_python, make_queue, queue_rule, receive_all,
                         wait_for)

ATTEMPT_FN = '''
import json, os, uuid
import boto3

def handler(event, context):
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    s3.put_object(Bucket=os.environ["BUCKET"],
                  Key="attempts/%s/%s" % (context.aws_request_id, uuid.uuid4()),
                  Body=json.dumps(event).encode())
    if isinstance(event, dict) and (event.get("fail") or any(
            r.get("eventSource") == "aws:s3" for r in event.get("Records", []))):
        raise RuntimeError("failing on purpose")
    return {"ok": True, "got": event}
'''


@pytest.fixture(scope="module")
def tarn(tmp_path_factory):
    """This module's server, with fast retries (TARN_EVENT_RETRY_BASE_MS)."""
    original = tarnlib.clean_env

    def fast_env():
        env = original()
        env["TARN_EVENT_RETRY_BASE_MS"] = "50"
        return env

    tarnlib.clean_env = fast_env
    try:
        srv = Tarn(tmp_path_factory.mktemp("tarn")).start()
    finally:
        tarnlib.clean_env = original
    yield srv
    srv.stop_clean()


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
def name(request):
    return lu.unique_name(request.node.name)[:50]


def attempt_function(lam, name, bucket, **kw):
    return create_python(lam, name, ATTEMPT_FN, Timeout=30,
                         Environment={"Variables": {"BUCKET": bucket}}, **kw)


def attempts(s3, bucket):
    """{request id: number of invocations}"""
    out = {}
    for key in tarnlib.list_all_keys(s3, bucket, Prefix="attempts/"):
        rid = key.split("/")[1]
        out[rid] = out.get(rid, 0) + 1
    return out


def invoke_event(lam, name, event, **kw):
    r = lam.invoke(FunctionName=name, InvocationType="Event",
                   Payload=json.dumps(event).encode(), **kw)
    assert r["StatusCode"] == 202
    return r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_invoke_config_api(lam, sqs, bucket, name):
    _, qarn = make_queue(sqs, name)
    attempt_function(lam, name, bucket)
    with pytest.raises(ClientError) as ei:
        lam.get_function_event_invoke_config(FunctionName=name)
    assert client_error(ei.value) == ("ResourceNotFoundException", 404)
    put = lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1, MaximumEventAgeInSeconds=120,
        DestinationConfig={"OnFailure": {"Destination": qarn}})
    assert put["FunctionArn"].endswith(":function:%s:$LATEST" % name)
    assert put["MaximumRetryAttempts"] == 1 and put["MaximumEventAgeInSeconds"] == 120
    assert put["DestinationConfig"]["OnFailure"]["Destination"] == qarn
    got = lam.get_function_event_invoke_config(FunctionName=name)
    assert got["MaximumRetryAttempts"] == 1
    assert got["DestinationConfig"]["OnFailure"]["Destination"] == qarn
    assert got["LastModified"].year >= 2024
    # update merges, put replaces
    up = lam.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert up["MaximumRetryAttempts"] == 0 and up["MaximumEventAgeInSeconds"] == 120
    assert up["DestinationConfig"]["OnFailure"]["Destination"] == qarn
    put = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=2)
    assert "MaximumEventAgeInSeconds" not in put
    assert put["DestinationConfig"]["OnFailure"] == {}
    listed = lam.list_function_event_invoke_configs(FunctionName=name)
    assert [c["MaximumRetryAttempts"] for c in listed["FunctionEventInvokeConfigs"]] == [2]

    for bad in (dict(MaximumRetryAttempts=3), dict(MaximumEventAgeInSeconds=99999),
                dict(DestinationConfig={"OnSuccess": {"Destination": "arn:aws:s3:::bucket"}})):
        with pytest.raises(ClientError) as ei:
            lam.put_function_event_invoke_config(FunctionName=name, **bad)
        assert client_error(ei.value)[1] == 400
    with pytest.raises(ClientError) as ei:
        lam.put_function_event_invoke_config(FunctionName=name + "-missing",
                                             MaximumRetryAttempts=1)
    assert client_error(ei.value) == ("ResourceNotFoundException", 404)
    lam.delete_function_event_invoke_config(FunctionName=name)
    with pytest.raises(ClientError) as ei:
        lam.get_function_event_invoke_config(FunctionName=name)
    assert client_error(ei.value) == ("ResourceNotFoundException", 404)


def test_on_failure_destination_after_retries(s3, lam, sqs, bucket, name):
    url, qarn = make_queue(sqs, name)
    fn = attempt_function(lam, name, bucket)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": qarn}})
    event = {"fail": True, "order": 17}
    rid = invoke_event(lam, name, event)
    rec = json.loads(receive_all(sqs, url, 1, timeout=90)[0])
    assert rec["version"] == "1.0"
    assert rec["timestamp"].endswith("Z")
    ctx = rec["requestContext"]
    assert ctx["requestId"] == rid
    assert ctx["functionArn"] == fn["FunctionArn"] + ":$LATEST"
    assert ctx["condition"] == "RetriesExhausted"
    assert ctx["approximateInvokeCount"] == 2
    assert rec["requestPayload"] == event
    assert rec["responseContext"]["statusCode"] == 200
    assert rec["responseContext"]["executedVersion"] == "$LATEST"
    assert rec["responseContext"]["functionError"] == "Unhandled"
    assert "failing on purpose" in rec["responsePayload"]["errorMessage"]
    assert attempts(s3, bucket) == {rid: 2}


def test_max_retry_attempts_zero(s3, lam, sqs, bucket, name):
    url, qarn = make_queue(sqs, name)
    attempt_function(lam, name, bucket)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": qarn}})
    rid = invoke_event(lam, name, {"fail": True})
    rec = json.loads(receive_all(sqs, url, 1, timeout=90)[0])
    assert rec["requestContext"]["approximateInvokeCount"] == 1
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    time.sleep(0.5)  # a retry would come after 50 ms
    assert attempts(s3, bucket) == {rid: 1}


def test_default_retries_back_off(s3, lam, bucket, name):
    attempt_function(lam, name, bucket)
    rid = invoke_event(lam, name, {"fail": True})
    wait_for(lambda: attempts(s3, bucket).get(rid) == 3, timeout=90)
    keys = tarnlib.list_all_objects(s3, bucket, Prefix="attempts/")
    times = sorted(o["LastModified"] for o in keys)
    assert len(times) == 3
    time.sleep(0.5)
    assert attempts(s3, bucket) == {rid: 3}


def test_on_success_destinations(s3, lam, sqs, sns, bucket, name):
    # to a topic (fanned out to a queue) and, for another function, to a function
    url, qarn = make_queue(sqs, name)
    topic = sns.create_topic(Name=name + "-t")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn,
                  Attributes={"RawMessageDelivery": "true"})
    attempt_function(lam, name, bucket)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": topic}})
    rid = invoke_event(lam, name, {"hello": "world"})
    rec = json.loads(receive_all(sqs, url, 1, timeout=90)[0])
    assert rec["requestContext"]["requestId"] == rid
    assert rec["requestContext"]["condition"] == "Success"
    assert rec["requestContext"]["approximateInvokeCount"] == 1
    assert rec["requestPayload"] == {"hello": "world"}
    assert rec["responsePayload"] == {"ok": True, "got": {"hello": "world"}}
    assert "functionError" not in rec["responseContext"]

    second = name + "-next"
    attempt_function(lam, second, bucket)
    lam.put_function_event_invoke_config(
        FunctionName=name,
        DestinationConfig={"OnSuccess": {
            "Destination": "arn:aws:lambda:us-east-1:000000000000:function:" + second}})
    rid2 = invoke_event(lam, name, {"chain": 1})

    def chained():
        for key in tarnlib.list_all_keys(s3, bucket, Prefix="attempts/"):
            body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            if isinstance(body, dict) and body.get("requestContext", {}).get("requestId") == rid2:
                return body
        return None

    got = wait_for(chained, timeout=90)
    assert got["requestContext"]["condition"] == "Success"
    assert got["requestPayload"] == {"chain": 1}


def test_dead_letter_config(lam, sqs, bucket, name):
    url, qarn = make_queue(sqs, name)
    fn = attempt_function(lam, name, bucket, DeadLetterConfig={"TargetArn": qarn})
    assert fn["DeadLetterConfig"] == {"TargetArn": qarn}
    assert lam.get_function_configuration(FunctionName=name)["DeadLetterConfig"] == {
        "TargetArn": qarn}
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    rid = invoke_event(lam, name, {"fail": True, "n": 1})
    r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20, MessageAttributeNames=["All"])
    deadline = time.monotonic() + 60
    while not r.get("Messages") and time.monotonic() < deadline:
        r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MessageAttributeNames=["All"])
    m = r["Messages"][0]
    assert json.loads(m["Body"]) == {"fail": True, "n": 1}
    attrs = m["MessageAttributes"]
    assert attrs["RequestID"]["StringValue"] == rid
    assert attrs["ErrorCode"]["DataType"] == "Number"
    assert attrs["ErrorMessage"]["StringValue"]
    with pytest.raises(ClientError) as ei:
        lam.update_function_configuration(FunctionName=name,
                                          DeadLetterConfig={"TargetArn": "arn:aws:s3:::nope"})
    assert client_error(ei.value)[1] == 400


def test_s3_notification_to_a_failing_function(s3, lam, sqs, bucket, name):
    url, qarn = make_queue(sqs, name)
    fn = attempt_function(lam, name, bucket)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": qarn}})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn["FunctionArn"],
                                          "Events": ["s3:ObjectCreated:*"],
                                          "Filter": {"Key": {"FilterRules": [
                                              {"Name": "prefix", "Value": "incoming/"}]}}}]})
    s3.put_object(Bucket=bucket, Key="incoming/bad.csv", Body=b"oops")
    rec = json.loads(receive_all(sqs, url, 1, timeout=90)[0])
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["requestContext"]["approximateInvokeCount"] == 3
    s3rec = rec["requestPayload"]["Records"][0]
    assert s3rec["eventName"] == "ObjectCreated:Put"
    assert s3rec["s3"]["object"]["key"] == "incoming/bad.csv"
    assert list(attempts(s3, bucket).values()) == [3]


def test_topic_fans_out_to_queues_and_a_function(s3, lam, sqs, sns, bucket, name):
    topic = sns.create_topic(Name=name + "-fan")["TopicArn"]
    urls = []
    for i in range(2):
        url, qarn = make_queue(sqs, "%s-%d" % (name, i))
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
        urls.append(url)
    fn = attempt_function(lam, name, bucket)
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn["FunctionArn"])
    sns.publish(TopicArn=topic, Message="new sales figures", Subject="sales")
    for url in urls:
        env = json.loads(receive_all(sqs, url, 1, timeout=60)[0])
        assert env["Message"] == "new sales figures" and env["Subject"] == "sales"

    def delivered():
        for key in tarnlib.list_all_keys(s3, bucket, Prefix="attempts/"):
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return None

    event = wait_for(delivered, timeout=90)
    rec = event["Records"][0]
    assert rec["EventSource"] == "aws:sns"
    assert rec["Sns"]["Message"] == "new sales figures"
    assert rec["Sns"]["TopicArn"] == topic
