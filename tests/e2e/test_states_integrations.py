"""tests/e2e/test_states_integrations.py -- Step Functions Task states on
tarn's DynamoDB, Kinesis, Firehose, SQS, SNS and S3, driven with boto3:
the optimized DynamoDB integrations (dynamodb:putItem, getItem,
updateItem, deleteItem) and the AWS SDK integrations (aws-sdk:dynamodb:*,
aws-sdk:sqs:sendMessage also with .waitForTaskToken, aws-sdk:sns:publish,
aws-sdk:s3:getObject|putObject|listObjectsV2|deleteObject,
aws-sdk:kinesis:putRecord, aws-sdk:firehose:putRecord), with
results in AWS's shapes and errors named as AWS names them, caught by Catch.
"""
import json

import pytest

from queue_util import client, receive_all
from states_util import history, machine, run, sfn_client, unique, wait_done

DDB = "arn:aws:states:::dynamodb:"
SDK = "arn:aws:states:::aws-sdk:"


@pytest.fixture(scope="module")
def sfn(tarn):
    return sfn_client(tarn)


@pytest.fixture(scope="module")
def ddb(tarn):
    return client(tarn, "dynamodb")


def table(ddb):
    name = unique("sftab")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    return name


def catch_all(state, result_path="$.err"):
    state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": result_path,
                       "Next": "Caught"}]
    return state


def test_dynamodb_optimized(sfn, ddb):
    t = table(ddb)
    d = {"StartAt": "Put", "States": {
        "Put": {"Type": "Task", "Resource": DDB + "putItem", "ResultPath": "$.put",
                "Parameters": {"TableName": t, "Item": {"pk": {"S.$": "$.id"},
                                                        "n": {"N": "1"},
                                                        "code": {"S": "000042"}}},
                "Next": "Update"},
        "Update": {"Type": "Task", "Resource": DDB + "updateItem", "ResultPath": "$.upd",
                   "Parameters": {"TableName": t, "Key": {"pk": {"S.$": "$.id"}},
                                  "UpdateExpression": "SET n = n + :one",
                                  "ExpressionAttributeValues": {":one": {"N": "41"}},
                                  "ReturnValues": "ALL_NEW"},
                   "Next": "Get"},
        "Get": {"Type": "Task", "Resource": DDB + "getItem", "ResultPath": "$.got",
                "Parameters": {"TableName": t, "Key": {"pk": {"S.$": "$.id"}}},
                "Next": "Again"},
        "Again": catch_all({"Type": "Task", "Resource": DDB + "putItem",
                            "Parameters": {"TableName": t, "Item": {"pk": {"S.$": "$.id"}},
                                           "ConditionExpression": "attribute_not_exists(pk)"},
                            "Next": "Caught"}),
        "Caught": {"Type": "Pass", "Next": "Delete"},
        "Delete": {"Type": "Task", "Resource": DDB + "deleteItem", "ResultPath": "$.del",
                   "Parameters": {"TableName": t, "Key": {"pk": {"S.$": "$.id"}},
                                  "ReturnValues": "ALL_OLD"},
                   "End": True}}}
    desc, arn = run(sfn, d, {"id": "k1"})
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    assert out["put"] == {}
    assert out["upd"]["Attributes"] == {"pk": {"S": "k1"}, "n": {"N": "42"},
                                        "code": {"S": "000042"}}
    assert out["got"]["Item"] == out["upd"]["Attributes"]
    assert out["err"]["Error"] == "DynamoDB.ConditionalCheckFailedException"
    assert out["del"]["Attributes"]["n"] == {"N": "42"}
    assert "Item" not in ddb.get_item(TableName=t, Key={"pk": {"S": "k1"}})
    scheduled = [e for e in history(sfn, arn) if e["type"] == "TaskScheduled"]
    assert scheduled[0]["taskScheduledEventDetails"]["resourceType"] == "dynamodb"
    assert scheduled[0]["taskScheduledEventDetails"]["resource"] == "putItem"


def test_dynamodb_sdk(sfn, ddb):
    t = table(ddb)
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    d = {"StartAt": "Put", "States": {
        "Put": {"Type": "Task", "Resource": SDK + "dynamodb:putItem", "ResultPath": None,
                "Parameters": {"TableName": t, "Item": {"pk": {"S": "b"}, "v": {"N": "2"}}},
                "Next": "Query"},
        "Query": {"Type": "Task", "Resource": SDK + "dynamodb:query", "ResultPath": "$.q",
                  "Parameters": {"TableName": t, "KeyConditionExpression": "pk = :k",
                                 "ExpressionAttributeValues": {":k": {"S": "b"}}},
                  "Next": "Scan"},
        "Scan": {"Type": "Task", "Resource": SDK + "dynamodb:scan", "ResultPath": "$.s",
                 "ResultSelector": {"count.$": "$.Count"}, "Next": "Clash"},
        "Clash": catch_all({"Type": "Task", "Resource": SDK + "dynamodb:putItem",
                            "Parameters": {"TableName": t, "Item": {"pk": {"S": "a"}},
                                           "ConditionExpression": "attribute_not_exists(pk)"},
                            "Next": "Caught"}),
        "Caught": {"Type": "Pass", "Next": "Missing"},
        "Missing": catch_all({"Type": "Task", "Resource": SDK + "dynamodb:getItem",
                              "Parameters": {"TableName": "no-such-table",
                                             "Key": {"pk": {"S": "a"}}},
                              "End": True}, "$.missing")}}
    d["States"]["Scan"]["Parameters"] = {"TableName": t}
    d["States"]["Missing"]["Catch"][0]["Next"] = "Done"
    d["States"]["Done"] = {"Type": "Pass", "End": True}
    desc, _ = run(sfn, d)
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    assert out["q"]["Count"] == 1 and out["q"]["Items"] == [{"pk": {"S": "b"}, "v": {"N": "2"}}]
    assert out["s"] == {"count": 2}
    assert out["err"]["Error"] == "DynamoDb.ConditionalCheckFailedException"
    assert out["missing"]["Error"] == "DynamoDb.ResourceNotFoundException"
    assert ddb.get_item(TableName=t, Key={"pk": {"S": "b"}})["Item"]["v"] == {"N": "2"}


def test_queues_and_objects_sdk(sfn, tarn, bucket):
    sqs = client(tarn, "sqs")
    sns = client(tarn, "sns")
    url = sqs.create_queue(QueueName=unique("sdkq"))["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=unique("sdkt"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn,
                  Attributes={"RawMessageDelivery": "true"})
    d = {"StartAt": "Send", "States": {
        "Send": {"Type": "Task", "Resource": SDK + "sqs:sendMessage", "ResultPath": "$.sent",
                 "Parameters": {"QueueUrl": url, "MessageBody": "direct"}, "Next": "Publish"},
        "Publish": {"Type": "Task", "Resource": SDK + "sns:publish", "ResultPath": "$.pub",
                    "Parameters": {"TopicArn": topic, "Message": "fanned"}, "Next": "Put"},
        "Put": {"Type": "Task", "Resource": SDK + "s3:putObject", "ResultPath": "$.put",
                "Parameters": {"Bucket": bucket, "Key": "from-sfn.txt", "Body": "hello"},
                "Next": "NoQueue"},
        "NoQueue": catch_all({"Type": "Task", "Resource": SDK + "sqs:sendMessage",
                              "Parameters": {"QueueUrl": url + "-gone", "MessageBody": "x"},
                              "Next": "NoBucket"}, "$.noqueue"),
        "NoBucket": catch_all({"Type": "Task", "Resource": SDK + "s3:getObject",
                               "Parameters": {"Bucket": bucket, "Key": "absent"},
                               "Next": "Caught"}, "$.nokey"),
        "Caught": {"Type": "Pass", "End": True}}}
    d["States"]["NoQueue"]["Catch"][0]["Next"] = "NoBucket"
    desc, _ = run(sfn, d)
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    assert "MessageId" in out["sent"] and "MessageId" in out["pub"]
    assert out["put"]["ETag"].startswith('"')
    assert out["noqueue"]["Error"] == "Sqs.QueueDoesNotExistException"
    assert out["nokey"]["Error"] == "S3.NoSuchKeyException"
    bodies = sorted(m["Body"] for m in receive_all(sqs, url, 2))
    assert bodies == ["direct", "fanned"]
    s3 = client(tarn, "s3")
    assert s3.get_object(Bucket=bucket, Key="from-sfn.txt")["Body"].read() == b"hello"


def test_s3_list_and_delete_sdk(sfn, tarn, bucket):
    s3 = client(tarn, "s3")
    for k in ["in/a.csv", "in/b.csv", "in/sub/c.csv", "other.txt"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"000042")
    d = {"StartAt": "List", "States": {
        "List": {"Type": "Task", "Resource": SDK + "s3:listObjectsV2", "ResultPath": "$.page",
                 "Parameters": {"Bucket": bucket, "Prefix": "in/", "Delimiter": "/",
                                "MaxKeys": 1},
                 "Next": "Rest"},
        "Rest": {"Type": "Task", "Resource": SDK + "s3:listObjectsV2", "ResultPath": "$.rest",
                 "Parameters": {"Bucket": bucket, "Prefix": "in/", "Delimiter": "/",
                                "ContinuationToken.$": "$.page.NextContinuationToken"},
                 "Next": "Delete"},
        "Delete": {"Type": "Task", "Resource": SDK + "s3:deleteObject", "ResultPath": "$.del",
                   "Parameters": {"Bucket": bucket, "Key": "other.txt"}, "Next": "NoBucket"},
        "NoBucket": catch_all({"Type": "Task", "Resource": SDK + "s3:listObjectsV2",
                               "Parameters": {"Bucket": bucket + "-none"},
                               "Next": "Caught"}),
        "Caught": {"Type": "Pass", "End": True}}}
    desc, _ = run(sfn, d)
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    page, rest = out["page"], out["rest"]
    assert page["IsTruncated"] is True and page["KeyCount"] == 1
    assert [c["Key"] for c in page["Contents"]] == ["in/a.csv"]
    assert page["Contents"][0]["Size"] == 6 and page["Contents"][0]["ETag"].startswith('"')
    assert [c["Key"] for c in rest["Contents"]] == ["in/b.csv"]
    assert rest["CommonPrefixes"] == [{"Prefix": "in/sub/"}] and rest["IsTruncated"] is False
    assert out["del"] == {}
    assert out["err"]["Error"] == "S3.NoSuchBucketException"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert "other.txt" not in keys and "in/a.csv" in keys


def test_sdk_wait_for_task_token(sfn, tarn):
    sqs = client(tarn, "sqs")
    url = sqs.create_queue(QueueName=unique("sdktok"))["QueueUrl"]
    arn = machine(sfn, {"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": SDK + "sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token"}},
        "End": True}}})
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    token = json.loads(receive_all(sqs, url, 1)[0]["Body"])["token"]
    sfn.send_task_success(taskToken=token, output='{"ok": true}')
    d = wait_done(sfn, ex)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == {"ok": True}


def test_kinesis_and_firehose_put_record(sfn, tarn, bucket):
    kin = client(tarn, "kinesis")
    fh = client(tarn, "firehose", parameter_validation=False)
    stream = unique("sfkin")
    kin.create_stream(StreamName=stream, ShardCount=1)
    delivery = unique("sffh")
    fh.create_delivery_stream(DeliveryStreamName=delivery, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration={
                                  "RoleARN": "arn:aws:iam::000000000000:role/firehose",
                                  "BucketARN": "arn:aws:s3:::" + bucket})
    d = {"StartAt": "Kin", "States": {
        "Kin": {"Type": "Task", "Resource": SDK + "kinesis:putRecord", "ResultPath": "$.kin",
                "Parameters": {"StreamName": stream, "PartitionKey": "p", "Data.$": "$.msg"},
                "Next": "Fh"},
        "Fh": {"Type": "Task", "Resource": SDK + "firehose:putRecord", "ResultPath": "$.fh",
               "Parameters": {"DeliveryStreamName": delivery, "Record": {"Data.$": "$.msg"}},
               "Next": "Gone"},
        "Gone": catch_all({"Type": "Task", "Resource": SDK + "kinesis:putRecord",
                           "Parameters": {"StreamName": stream + "-x", "PartitionKey": "p",
                                          "Data": "x"},
                           "Next": "Caught"}),
        "Caught": {"Type": "Pass", "End": True}}}
    desc, _ = run(sfn, d, {"msg": "record one"})
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    assert out["kin"]["ShardId"] == "shardId-000000000000" and out["kin"]["SequenceNumber"]
    assert out["fh"]["RecordId"] and out["fh"]["Encrypted"] is False
    assert out["err"]["Error"] == "Kinesis.ResourceNotFoundException"
    it = kin.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000000",
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    recs = kin.get_records(ShardIterator=it)["Records"]
    assert [r["Data"] for r in recs] == [b"record one"]
    assert recs[0]["SequenceNumber"] == out["kin"]["SequenceNumber"]


def test_unknown_sdk_action_fails_the_task(sfn):
    desc, _ = run(sfn, {"StartAt": "X", "States": {"X": {
        "Type": "Task", "Resource": SDK + "dynamodb:noSuchAction", "End": True}}})
    assert desc["status"] == "FAILED" and desc["error"] == "States.Runtime"
