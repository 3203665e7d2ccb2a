"""tests/e2e/test_states_crash.py -- Step Functions durability under kill -9:
an execution in a Wait state (alone and in Parallel branches) resumes after
a restart and completes once; a Task whose function was running when tarn
died fails with States.TaskFailed, and its Retry runs it again; an
athena:startQueryExecution.sync Task whose query was running fails with
States.TaskFailed and that query's execution (failed by the restart).
"""
import json
import time

import lambda_util
from queue_util import client, receive_all
from states_util import history, machine, sfn_client, unique, wait_done

SLEEPY = '''
import time
def handler(event, context):
    time.sleep(event.get("s", 3))
    return {"done": event.get("tag")}
'''


def wait_event(sfn, exec_arn, type, count=1, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        events = history(sfn, exec_arn)
        if sum(1 for e in events if e["type"] == type) >= count:
            return events
        assert time.monotonic() < deadline, "no %s in %s" % (type, [e["type"] for e in events])
        time.sleep(0.1)


def check_history(events):
    ids = [e["id"] for e in events]
    assert ids == list(range(1, len(ids) + 1)), ids


def test_wait_survives_kill9(tarn_factory):
    srv = tarn_factory()
    sfn = sfn_client(srv)
    arn = machine(sfn, {"StartAt": "Before", "States": {
        "Before": {"Type": "Pass", "Result": "b", "ResultPath": "$.before", "Next": "Nap"},
        "Nap": {"Type": "Wait", "Seconds": 3, "Next": "Both"},
        "Both": {"Type": "Parallel", "ResultPath": "$.par", "Next": "After", "Branches": [
            {"StartAt": "W1", "States": {"W1": {"Type": "Wait", "Seconds": 2, "End": True}}},
            {"StartAt": "W2", "States": {"W2": {"Type": "Wait", "Seconds": 2, "Next": "P2"},
                                         "P2": {"Type": "Pass", "Result": 2, "End": True}}}]},
        "After": {"Type": "Pass", "Result": "a", "ResultPath": "$.after", "End": True}}})
    ex = sfn.start_execution(stateMachineArn=arn, name=unique("crash"),
                             input=json.dumps({"k": 1}))["executionArn"]
    wait_event(sfn, ex, "WaitStateEntered")
    srv.kill9()
    srv.start()
    sfn = sfn_client(srv)
    # the branches' Waits: kill again while they wait
    wait_event(sfn, ex, "WaitStateEntered", count=3)
    srv.kill9()
    srv.start()
    sfn = sfn_client(srv)
    d = wait_done(sfn, ex, timeout=30)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == {"k": 1, "before": "b", "par": [{"k": 1, "before": "b"}, 2],
                                       "after": "a"}
    events = history(sfn, ex)
    check_history(events)
    types = [e["type"] for e in events]
    assert types.count("WaitStateExited") == 3
    assert types.count("ExecutionSucceeded") == 1 and types[-1] == "ExecutionSucceeded"


def test_task_in_flight_at_kill9(tarn_factory):
    srv = tarn_factory()
    sfn = sfn_client(srv)
    lam = lambda_util.lambda_client(srv)
    fn = lambda_util.create(lam, unique("sleepy"),
                            code=lambda_util.zip_files({"f.py": (SLEEPY, 0o100644)}),
                            runtime="python3.11", handler="f.handler", Timeout=30)["FunctionArn"]
    task = {"Type": "Task", "Resource": fn, "End": True}
    plain = machine(sfn, {"StartAt": "T", "States": {"T": dict(task)}})
    retried = machine(sfn, {"StartAt": "T", "States": {"T": dict(task, Retry=[
        {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}])}})
    a = sfn.start_execution(stateMachineArn=plain, input=json.dumps({"s": 3, "tag": "a"}))
    b = sfn.start_execution(stateMachineArn=retried, input=json.dumps({"s": 3, "tag": "b"}))
    for ex in (a["executionArn"], b["executionArn"]):
        wait_event(sfn, ex, "LambdaFunctionScheduled")
    srv.kill9()
    srv.start()
    sfn = sfn_client(srv)
    da = wait_done(sfn, a["executionArn"], timeout=60)
    assert da["status"] == "FAILED" and da["error"] == "States.TaskFailed", da
    # with the Retry: scheduled again, then done
    db = wait_done(sfn, b["executionArn"], timeout=60)
    assert db["status"] == "SUCCEEDED", db
    assert json.loads(db["output"]) == {"done": "b"}
    types = [e["type"] for e in history(sfn, b["executionArn"])]
    assert types.count("LambdaFunctionScheduled") == 2
    assert types.count("LambdaFunctionSucceeded") == 1
    check_history(history(sfn, b["executionArn"]))


def test_task_token_survives_kill9(tarn_factory):
    srv = tarn_factory()
    sfn = sfn_client(srv)
    sqs = client(srv, "sqs")
    url = sqs.create_queue(QueueName=unique("crashtok"))["QueueUrl"]
    arn = machine(sfn, {"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token"}},
        "ResultPath": "$.answer", "End": True}}})
    ex = sfn.start_execution(stateMachineArn=arn, input='{"q": 1}')["executionArn"]
    token = json.loads(receive_all(sqs, url, 1)[0]["Body"])["token"]
    srv.kill9()
    srv.start()
    sfn = sfn_client(srv)
    sfn.send_task_success(taskToken=token, output='{"a": 2}')
    d = wait_done(sfn, ex)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == {"q": 1, "answer": {"a": 2}}
    check_history(history(sfn, ex))


def test_sync_child_execution_survives_kill9(tarn_factory):
    srv = tarn_factory()
    sfn = sfn_client(srv)
    child = machine(sfn, {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 2, "Next": "P"},
        "P": {"Type": "Pass", "Result": "child done", "End": True}}})
    parent = machine(sfn, {"StartAt": "Run", "States": {"Run": {
        "Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": child, "Name": "the-child"},
        "OutputPath": "$.Output", "End": True}}})
    ex = sfn.start_execution(stateMachineArn=parent, input="{}")["executionArn"]
    child_ex = child.replace(":stateMachine:", ":execution:") + ":the-child"
    for _ in range(300):
        try:
            wait_event(sfn, child_ex, "WaitStateEntered")
            break
        except Exception:
            time.sleep(0.1)
    srv.kill9()
    srv.start()
    sfn = sfn_client(srv)
    d = wait_done(sfn, ex, timeout=30)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == "child done"
    assert wait_done(sfn, child_ex)["status"] == "SUCCEEDED"


def test_map_iterations_survive_kill9(tarn_factory):
    srv = tarn_factory()
    sfn = sfn_client(srv)
    arn = machine(sfn, {"StartAt": "M", "States": {"M": {
        "Type": "Map", "MaxConcurrency": 1, "End": True,
        "ItemProcessor": {"StartAt": "W", "States": {
            "W": {"Type": "Wait", "Seconds": 1, "Next": "P"},
            "P": {"Type": "Pass", "Parameters": {"v.$": "$"}, "End": True}}}}}})
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps([1, 2, 3, 4]))["executionArn"]
    wait_event(sfn, ex, "MapIterationSucceeded")
    srv.kill9()
    srv.start()
    sfn = sfn_client(srv)
    d = wait_done(sfn, ex, timeout=30)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == [{"v": 1}, {"v": 2}, {"v": 3}, {"v": 4}]
    types = [e["type"] for e in history(sfn, ex)]
    assert types.count("MapIterationStarted") == 4 and types.count("MapIterationSucceeded") == 4


def test_athena_sync_query_at_kill9(tarn_factory):
    srv = tarn_factory()
    sfn = sfn_client(srv)
    s3 = srv.client()
    b = unique("athcrash")
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="n/x.csv", Body=("x\n" + "".join(
        "%d\n" % i for i in range(2000))).encode())
    # 2,000 x 2,000 x 2,000 rows: minutes of work, still running at the kill
    sql = ("SELECT count(*) AS n FROM 's3://{b}/n/' a CROSS JOIN 's3://{b}/n/' b "
           "CROSS JOIN 's3://{b}/n/' c WHERE a.x + b.x + c.x < 0").format(b=b)
    arn = machine(sfn, {"StartAt": "Q", "States": {
        "Q": {"Type": "Task", "Resource": "arn:aws:states:::athena:startQueryExecution.sync",
              "Parameters": {"QueryString": sql,
                             "ResultConfiguration": {"OutputLocation": "s3://%s/out/" % b}},
              "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}],
              "End": True},
        "Caught": {"Type": "Pass", "End": True}}})
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    events = wait_event(sfn, ex, "TaskSubmitted", timeout=60)
    sub = [e for e in events if e["type"] == "TaskSubmitted"][0]["taskSubmittedEventDetails"]
    qid = json.loads(sub["output"])["QueryExecutionId"]
    srv.kill9()
    srv.start()
    sfn = sfn_client(srv)
    d = wait_done(sfn, ex, timeout=120)
    assert d["status"] == "SUCCEEDED", d
    caught = json.loads(d["output"])
    assert caught["Error"] == "States.TaskFailed"
    q = json.loads(caught["Cause"])["QueryExecution"]
    assert q["QueryExecutionId"] == qid and q["Status"]["State"] == "FAILED"
    check_history(history(sfn, ex))
