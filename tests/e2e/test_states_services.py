"""tests/e2e/test_states_services.py -- Step Functions Task states that call
tarn's services directly: sqs:sendMessage (also with .waitForTaskToken: a
worker receives the token from the queue and answers), sns:publish to a
topic with a queue subscribed, S3 putObject / getObject (as s3: and
aws-sdk:s3:), states:startExecution and Athena (startQueryExecution with
.sync over a CSV object, getQueryResults); errors named SERVICE.CODE go
through Catch.
"""
import json

import pytest

from queue_util import client, receive_all
from states_util import history, machine, run, sfn_client, unique, wait_done


@pytest.fixture(scope="module")
def sfn(tarn):
    return sfn_client(tarn)


@pytest.fixture(scope="module")
def sqs(tarn):
    return client(tarn, "sqs")


def test_sqs_send_message(sfn, sqs):
    url = sqs.create_queue(QueueName=unique("sfq"))["QueueUrl"]
    d = {"StartAt": "Send", "States": {"Send": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
        "Parameters": {"QueueUrl": url, "MessageBody": {"order.$": "$.id"}},
        "ResultSelector": {"id.$": "$.MessageId"}, "End": True}}}
    desc, arn = run(sfn, d, {"id": 17})
    assert desc["status"] == "SUCCEEDED", desc
    sent_id = json.loads(desc["output"])["id"]
    got = receive_all(sqs, url, 1)
    assert got[0]["MessageId"] == sent_id and json.loads(got[0]["Body"]) == {"order": 17}
    types = [e["type"] for e in history(sfn, arn)]
    assert "TaskScheduled" in types and "TaskSucceeded" in types


def test_sqs_wait_for_task_token(sfn, sqs):
    url = sqs.create_queue(QueueName=unique("sftok"))["QueueUrl"]
    arn = machine(sfn, {"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": url,
                       "MessageBody": {"token.$": "$$.Task.Token", "job.$": "$.job"}},
        "End": True}}})
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"job": "j1"}))["executionArn"]
    msg = json.loads(receive_all(sqs, url, 1)[0]["Body"])
    assert msg["job"] == "j1"
    assert sfn.describe_execution(executionArn=ex)["status"] == "RUNNING"
    sfn.send_task_success(taskToken=msg["token"], output=json.dumps({"worked": "j1"}))
    d = wait_done(sfn, ex)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == {"worked": "j1"}


def test_sns_publish(sfn, sqs, tarn):
    sns = client(tarn, "sns")
    topic = sns.create_topic(Name=unique("sft"))["TopicArn"]
    url = sqs.create_queue(QueueName=unique("sfsub"))["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn,
                  Attributes={"RawMessageDelivery": "true"})
    d = {"StartAt": "Pub", "States": {"Pub": {
        "Type": "Task", "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {"TopicArn": topic, "Message.$": "$.text"}, "End": True}}}
    desc, _ = run(sfn, d, {"text": "hello topic"})
    assert desc["status"] == "SUCCEEDED", desc
    assert "MessageId" in json.loads(desc["output"])
    assert receive_all(sqs, url, 1)[0]["Body"] == "hello topic"


def test_s3_put_then_get(sfn, s3, bucket):
    d = {"StartAt": "Put", "States": {
        "Put": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
                "Parameters": {"Bucket": bucket, "Key": "out/result.json", "Body.$": "$.doc"},
                "ResultPath": "$.put", "Next": "Get"},
        "Get": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                "Parameters": {"Bucket": bucket, "Key": "out/result.json"},
                "ResultSelector": {"body.$": "States.StringToJson($.Body)",
                                   "len.$": "$.ContentLength"},
                "End": True}}}
    desc, _ = run(sfn, d, {"doc": {"rows": 3}})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"body": {"rows": 3}, "len": 10}
    assert json.loads(s3.get_object(Bucket=bucket, Key="out/result.json")["Body"].read()) == \
        {"rows": 3}


def test_s3_missing_key_is_caught(sfn, bucket):
    d = {"StartAt": "Get", "States": {
        "Get": {"Type": "Task", "Resource": "arn:aws:states:::s3:getObject",
                "Parameters": {"Bucket": bucket, "Key": "nope"},
                "Catch": [{"ErrorEquals": ["S3.NoSuchKey"], "Next": "Missing"}], "End": True},
        "Missing": {"Type": "Pass", "End": True}}}
    desc, _ = run(sfn, d)
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["Error"] == "S3.NoSuchKey"


def test_start_execution_of_another_machine(sfn):
    child = machine(sfn, {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    d = {"StartAt": "Start", "States": {"Start": {
        "Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
        "Parameters": {"StateMachineArn": child, "Input": {"from.$": "$$.Execution.Id"}},
        "End": True}}}
    desc, parent = run(sfn, d)
    assert desc["status"] == "SUCCEEDED", desc
    child_arn = json.loads(desc["output"])["ExecutionArn"]
    cd = wait_done(sfn, child_arn)
    assert cd["status"] == "SUCCEEDED" and json.loads(cd["output"]) == {"from": parent}


def test_heartbeat_timeout(sfn, sqs):
    url = sqs.create_queue(QueueName=unique("sfhb"))["QueueUrl"]
    d = {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "HeartbeatSeconds": 1,
                "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "Late"}],
                "End": True},
        "Late": {"Type": "Pass", "End": True}}}
    desc, arn = run(sfn, d, timeout=20)
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["Error"] == "States.HeartbeatTimeout"
    assert "TaskTimedOut" in [e["type"] for e in history(sfn, arn)]
    token = json.loads(receive_all(sqs, url, 1)[0]["Body"])["token"]
    with pytest.raises(Exception) as exc:
        sfn.send_task_heartbeat(taskToken=token)
    assert exc.value.response["Error"]["Code"] == "TaskDoesNotExist"


def test_start_execution_sync(sfn):
    child = machine(sfn, {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 1, "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": True,
                                             "Next": "Yes"}], "Default": "No"},
        "Yes": {"Type": "Pass", "Parameters": {"got.$": "$.v"}, "End": True},
        "No": {"Type": "Fail", "Error": "Child.No", "Cause": "not ok"}}})
    d = {"StartAt": "Run", "States": {"Run": {
        "Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": child, "Input": {"ok.$": "$.ok", "v": 7}},
        "ResultSelector": {"out.$": "$.Output", "status.$": "$.Status"},
        "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Failed"}], "End": True},
        "Failed": {"Type": "Pass", "End": True}}}
    desc, _ = run(sfn, d, {"ok": True})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"out": {"got": 7}, "status": "SUCCEEDED"}
    desc, _ = run(sfn, d, {"ok": False})
    assert desc["status"] == "SUCCEEDED", desc
    caught = json.loads(desc["output"])
    assert caught["Error"] == "States.TaskFailed"
    assert json.loads(caught["Cause"])["Error"] == "Child.No"


def test_athena_query_sync(sfn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="athena-in/sales.csv",
                  Body=b"id,name,amount\n1,alpha,10.5\n2,beta,000042\n")
    d = {"StartAt": "Query", "States": {
        "Query": {"Type": "Task", "Resource": "arn:aws:states:::athena:startQueryExecution.sync",
                  "Parameters": {
                      "QueryString.$": "$.sql",
                      "ResultConfiguration": {"OutputLocation.$":
                                              "States.Format('s3://{}/athena-out/', $.bucket)"}},
                  "ResultPath": "$.query", "Next": "Results"},
        "Results": {"Type": "Task", "Resource": "arn:aws:states:::athena:getQueryResults",
                    "Parameters": {"QueryExecutionId.$": "$.query.QueryExecution.QueryExecutionId"},
                    "ResultSelector": {"rows.$": "$.ResultSet.Rows"},
                    "ResultPath": "$.results", "End": True}}}
    sql = "SELECT name, amount FROM 's3://%s/athena-in/' ORDER BY id" % bucket
    desc, arn = run(sfn, d, {"bucket": bucket, "sql": sql}, timeout=180)
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    qe = out["query"]["QueryExecution"]
    assert qe["Status"]["State"] == "SUCCEEDED"
    qid = qe["QueryExecutionId"]
    assert qe["ResultConfiguration"]["OutputLocation"] == "s3://%s/athena-out/%s.csv" % (bucket, qid)
    rows = [[c.get("VarCharValue") for c in r["Data"]] for r in out["results"]["rows"]]
    assert rows == [["name", "amount"], ["alpha", "10.5"], ["beta", "000042"]]
    body = s3.get_object(Bucket=bucket, Key="athena-out/%s.csv" % qid)["Body"].read()
    assert body == b'"name","amount"\n"alpha","10.5"\n"beta","000042"\n'
    done = [e for e in history(sfn, arn) if e["type"] == "TaskSucceeded"]
    assert done[0]["taskSucceededEventDetails"]["resource"] == "startQueryExecution.sync"


def test_athena_query_failures_are_caught(sfn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="athena-in/t.csv", Body=b"id\n1\n")
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Caught"}]
    d = {"StartAt": "Query", "States": {
        "Query": {"Type": "Task", "Resource": "arn:aws:states:::athena:startQueryExecution.sync",
                  "Parameters": {"QueryString.$": "$.sql", "ResultConfiguration": {
                      "OutputLocation": "s3://%s/athena-fail/" % bucket}},
                  "Catch": catch, "End": True},
        "Caught": {"Type": "Pass", "End": True}}}
    # the query runs and fails: the task fails with the query execution as cause
    sql = "SELECT nosuch FROM 's3://%s/athena-in/'" % bucket
    desc, _ = run(sfn, d, {"sql": sql}, timeout=180)
    assert desc["status"] == "SUCCEEDED", desc
    err = json.loads(desc["output"])["err"]
    assert err["Error"] == "States.TaskFailed"
    status = json.loads(err["Cause"])["QueryExecution"]["Status"]
    assert status["State"] == "FAILED" and "nosuch" in status["StateChangeReason"]
    # the query cannot start: Athena's own error
    desc, _ = run(sfn, d, {"sql": ""}, timeout=180)
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["err"]["Error"] == "Athena.InvalidRequestException"
    # request-response: the id at once
    rr = {"StartAt": "Q", "States": {"Q": {
        "Type": "Task", "Resource": "arn:aws:states:::athena:startQueryExecution",
        "Parameters": {"QueryString": "SELECT 1", "ResultConfiguration": {
            "OutputLocation": "s3://%s/athena-rr/" % bucket}}, "End": True}}}
    desc, _ = run(sfn, rr, timeout=180)
    assert desc["status"] == "SUCCEEDED", desc
    assert len(json.loads(desc["output"])["QueryExecutionId"]) == 36


def dist_map(bucket, key, tolerated, writer=True, batch=None):
    m = {"Type": "Map", "End": True, "MaxConcurrency": 3,
         "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                        "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                        "Parameters": {"Bucket": bucket, "Key.$": "$.key"}},
         "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                           "StartAt": "Check", "States": {
                               "Check": {"Type": "Choice", "Choices": [
                                   {"Variable": "$.qty", "StringEquals": "bad", "Next": "Bad"}],
                                   "Default": "Ok"},
                               "Ok": {"Type": "Pass", "Parameters": {"sku.$": "$.sku"},
                                      "End": True},
                               "Bad": {"Type": "Fail", "Error": "Row.Bad", "Cause": "bad qty"}}},
         "ToleratedFailureCount": tolerated}
    if writer:
        m["ResultWriter"] = {"Resource": "arn:aws:states:::s3:putObject",
                             "Parameters": {"Bucket": bucket, "Prefix": "runs"}}
    if batch:
        m["ItemBatcher"] = {"MaxItemsPerBatch": batch, "BatchInput": {"from.$": "$.key"}}
        m["ItemProcessor"]["States"] = {"B": {"Type": "Pass", "End": True}}
        m["ItemProcessor"]["StartAt"] = "B"
    return {"StartAt": "M", "States": {"M": m}}


def test_distributed_map_over_csv(sfn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="in/orders.csv",
                  Body=b"sku,qty\na1,1\nb2,bad\n\"c,3\",3\nd4,4\n")
    desc, arn = run(sfn, dist_map(bucket, "in/orders.csv", 1), {"key": "in/orders.csv"})
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    key = out["ResultWriterDetails"]["Key"]
    assert out["ResultWriterDetails"]["Bucket"] == bucket and key.startswith("runs/")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    ok_key = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
    failed_key = manifest["ResultFiles"]["FAILED"][0]["Key"]
    ok = json.loads(s3.get_object(Bucket=bucket, Key=ok_key)["Body"].read())
    assert sorted(r["Output"]["sku"] for r in ok) == ["a1", "c,3", "d4"]
    failed = json.loads(s3.get_object(Bucket=bucket, Key=failed_key)["Body"].read())
    assert [f["Error"] for f in failed] == ["Row.Bad"]
    # two bad rows, one tolerated: the Map fails
    s3.put_object(Bucket=bucket, Key="in/worse.csv", Body=b"sku,qty\na,bad\nb,bad\nc,1\n")
    desc, _ = run(sfn, dist_map(bucket, "in/worse.csv", 1, writer=False), {"key": "in/worse.csv"})
    assert desc["status"] == "FAILED"
    assert desc["error"] == "States.ExceedToleratedFailureThreshold"


def test_distributed_map_batches(sfn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="in/five.csv", Body=b"sku,qty\n1,1\n2,2\n3,3\n4,4\n5,5\n")
    desc, _ = run(sfn, dist_map(bucket, "in/five.csv", 0, writer=False, batch=2),
                  {"key": "in/five.csv"})
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    assert [len(b["Items"]) for b in out] == [2, 2, 1]
    assert out[0] == {"BatchInput": {"from": "in/five.csv"},
                      "Items": [{"sku": "1", "qty": "1"}, {"sku": "2", "qty": "2"}]}
