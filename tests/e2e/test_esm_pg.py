"""tests/e2e/test_esm_pg.py -- event source mappings and event invoke configs
shared by two tarn nodes over one PostgreSQL (`tarn server --metadata
postgres://...`, here TARN_METADATA): a mapping created on one node is
listed on the other and polled by both, each message processed exactly
once; a delete on one node stops the pollers of the other; an event invoke
config put on one node is read on the other; stream sources are refused.

The function writes one marker object per message (under a fresh name) in
the object store the nodes share, so the test counts runs; each node's
tarn_events_batches_total says that it took part.
"""
import json
import time

import botocore.exceptions
import pytest

import lambda_util as lu
import queue_util as qu
import test_fn_pg as fnpg  # its put() helper (a module: its tests are not collected here)
from pg_util import backend, pg, two_nodes  # noqa: F401 (fixtures)

HANDLER = r"""

def handler(event, context):
    for r in event["Records"]:
        put("esmpg-runs", "%s/%s" % (r["body"], uuid.uuid4().hex),
            context.aws_request_id.encode())
    time.sleep(0.5)  # a batch holds its slot a while: one node alone cannot drain the queue
    return {}
"""


@pytest.fixture(scope="module")
def nodes(pg, backend, tmp_path_factory):
    yield from two_nodes(pg, backend, tmp_path_factory, prefix="esmpg")


def runs(s3):
    """{message body: number of runs} from the marker objects."""
    return fnpg.runs(s3, "esmpg-runs")


def test_mapping_shared_by_two_nodes(nodes):
    a, b = nodes
    la, lb = lu.lambda_client(a), lu.lambda_client(b)
    sqs_a, sqs_b = qu.client(a, "sqs"), qu.client(b, "sqs")
    s3 = a.client()
    s3.create_bucket(Bucket="esmpg-runs")
    name = lu.unique_name("esm")
    la.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                       Role="arn:aws:iam::000000000000:role/lambda-role", Timeout=30,
                       Code={"ZipFile": lu.zip_files(
                           {"app.py": (fnpg.CODE % "esm" + HANDLER, 0o100644)})})
    url = sqs_a.create_queue(QueueName="esmpg-in",
                             Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    arn = sqs_a.get_queue_attributes(QueueUrl=url,
                                     AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    m = la.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1)
    uuid = m["UUID"]
    # at once on B: Get and List answer from the shared records
    listed = lb.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    assert [x["UUID"] for x in listed] == [uuid]
    got = lb.get_event_source_mapping(UUID=uuid)
    assert got["BatchSize"] == 1 and got["FunctionArn"] == m["FunctionArn"]
    # the same source and function again, on B: the conflict Lambda reports
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        lb.create_event_source_mapping(EventSourceArn=arn, FunctionName=name)
    assert ei.value.response["Error"]["Code"] == "ResourceConflictException"

    n = 40
    for i in range(0, n, 10):
        sqs_a.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(j), "MessageBody": "m%02d" % j} for j in range(i, i + 10)])
    fnpg.wait_for(lambda: sum(runs(s3).values()) >= n, timeout=180,
                  what="every message to be processed")
    fnpg.wait_for(lambda: sqs_a.get_queue_attributes(
        QueueUrl=url, AttributeNames=["All"])["Attributes"]
        ["ApproximateNumberOfMessagesNotVisible"] == "0", what="the batches to be deleted")
    done = runs(s3)
    assert done == {"m%02d" % i: 1 for i in range(n)}
    # both nodes took part: each counted batches of its own
    assert lu.metric(a, "tarn_events_batches_total") > 0
    assert lu.metric(b, "tarn_events_batches_total") > 0

    # an update on B (disable) reaches A; enabled again, both poll again
    lb.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert la.get_event_source_mapping(UUID=uuid)["State"] == "Disabled"
    lb.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert la.get_event_source_mapping(UUID=uuid)["State"] == "Enabled"

    # deleted on B: A stops too, new messages stay in the queue
    lb.delete_event_source_mapping(UUID=uuid)
    assert la.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"] == []
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        la.get_event_source_mapping(UUID=uuid)
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"
    sqs_b.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(j), "MessageBody": "late%d" % j} for j in range(5)])
    time.sleep(3)  # a poller still alive would take them within this
    attrs = sqs_b.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "5"
    assert not any(k.startswith("late") for k in runs(s3))


def test_event_invoke_config_shared(nodes):
    a, b = nodes
    la, lb = lu.lambda_client(a), lu.lambda_client(b)
    name = lu.unique_name("eic")
    lu.create(la, name)
    put = la.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1,
                                              MaximumEventAgeInSeconds=120)
    got = lb.get_function_event_invoke_config(FunctionName=name)
    assert got["MaximumRetryAttempts"] == 1 and got["MaximumEventAgeInSeconds"] == 120
    assert got["FunctionArn"] == put["FunctionArn"]
    lb.delete_function_event_invoke_config(FunctionName=name)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        la.get_function_event_invoke_config(FunctionName=name)
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_stream_sources_refused(nodes):
    a, _ = nodes
    la = lu.lambda_client(a)
    name = lu.unique_name("esmk")
    lu.create(la, name)
    kin = qu.client(a, "kinesis")
    kin.create_stream(StreamName="esmpg-stream", ShardCount=1)
    arn = kin.describe_stream_summary(StreamName="esmpg-stream")[
        "StreamDescriptionSummary"]["StreamARN"]
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        la.create_event_source_mapping(EventSourceArn=arn, FunctionName=name,
                                       StartingPosition="LATEST")
    assert ei.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "--metadata" in ei.value.response["Error"]["Message"]
