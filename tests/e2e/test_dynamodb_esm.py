"""tests/e2e/test_dynamodb_esm.py -- a DynamoDB stream drives a function
through an event source mapping: the function gets Lambda's DynamoDB event
(records in order, with eventSourceARN and the view's images) and writes
what it saw into a second table through the DynamoDB API (its default role
allows the data-plane actions); a batch that fails is retried from the
same record; LATEST skips what came before the mapping.
"""
import pytest
from botocore.exceptions import ClientError

import lambda_util as lu
from queue_util import client, unique
from test_events import create_python, wait_for

SINK_FN = '''
import os
import boto3

def handler(event, context):
    ddb = boto3.client("dynamodb", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    sink = os.environ["SINK"]
    for r in event["Records"]:
        key = r["dynamodb"]["Keys"]["pk"]["S"]
        if key == "fail-once":
            try:
                ddb.put_item(TableName=sink, Item={"seq": {"S": "failed-marker"}},
                             ConditionExpression="attribute_not_exists(seq)")
                raise RuntimeError("first delivery fails")
            except ddb.exceptions.ConditionalCheckFailedException:
                pass
        item = {"seq": {"S": r["dynamodb"]["SequenceNumber"]}, "key": {"S": key},
                "event": {"S": r["eventName"]}, "src": {"S": r["eventSourceARN"]}}
        if "NewImage" in r["dynamodb"]:
            item["v"] = r["dynamodb"]["NewImage"].get("v", {"S": "-"})
        ddb.put_item(TableName=sink, Item=item)
    return {"n": len(event["Records"])}
'''


@pytest.fixture(scope="module")
def ddb(tarn):
    return client(tarn, "dynamodb")


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


def table(ddb, key, stream=None):
    name = unique("esm")
    kw = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": stream}} if stream else {}
    d = ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": key, "KeyType": "HASH"}], **kw)
    return name, d["TableDescription"].get("LatestStreamArn")


def sink_items(ddb, sink):
    items = ddb.scan(TableName=sink)["Items"]
    return sorted((i for i in items if i["seq"]["S"] != "failed-marker"), key=lambda i: i["seq"]["S"])


def test_stream_drives_function(ddb, lam):
    src, arn = table(ddb, "pk", "NEW_AND_OLD_IMAGES")
    sink, _ = table(ddb, "seq")
    fname = lu.unique_name("ddbesm")[:60]
    create_python(lam, fname, SINK_FN, Timeout=30, Environment={"Variables": {"SINK": sink}})
    ddb.put_item(TableName=src, Item={"pk": {"S": "a"}, "v": {"S": "1"}})
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fname, BatchSize=2,
                                        StartingPosition="TRIM_HORIZON")
    assert m["EventSourceArn"] == arn
    ddb.update_item(TableName=src, Key={"pk": {"S": "a"}}, UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": {"S": "2"}})
    ddb.put_item(TableName=src, Item={"pk": {"S": "fail-once"}})
    ddb.delete_item(TableName=src, Key={"pk": {"S": "a"}})
    got = wait_for(lambda: len(sink_items(ddb, sink)) == 4 and sink_items(ddb, sink), timeout=90)
    assert [(i["key"]["S"], i["event"]["S"]) for i in got] == [
        ("a", "INSERT"), ("a", "MODIFY"), ("fail-once", "INSERT"), ("a", "REMOVE")]
    assert [i["v"]["S"] for i in got[:2]] == ["1", "2"]
    assert all(i["src"]["S"] == arn for i in got)
    # the failed batch was retried from its first record
    assert "Item" in ddb.get_item(TableName=sink, Key={"seq": {"S": "failed-marker"}})
    # the mapping records the last batch's result after the function has
    # written its items: wait for it rather than read it at once
    assert wait_for(lambda: lam.get_event_source_mapping(UUID=m["UUID"])[
        "LastProcessingResult"] == "OK", timeout=60)
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_latest_and_validation(ddb, lam):
    src, arn = table(ddb, "pk", "KEYS_ONLY")
    sink, _ = table(ddb, "seq")
    fname = lu.unique_name("ddblatest")[:60]
    create_python(lam, fname, SINK_FN, Timeout=30, Environment={"Variables": {"SINK": sink}})
    ddb.put_item(TableName=src, Item={"pk": {"S": "before"}})
    with pytest.raises(ClientError) as ei:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fname)
    assert ei.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as ei:
        lam.create_event_source_mapping(EventSourceArn=arn + "x", FunctionName=fname,
                                        StartingPosition="LATEST")
    assert ei.value.response["Error"]["Code"] == "InvalidParameterValueException"
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fname,
                                        StartingPosition="LATEST")
    ddb.put_item(TableName=src, Item={"pk": {"S": "after"}})
    got = wait_for(lambda: sink_items(ddb, sink), timeout=90)
    assert [i["key"]["S"] for i in got] == ["after"]
    lam.delete_event_source_mapping(UUID=m["UUID"])
