"""tests/e2e/test_states_tasks.py -- Step Functions Task states that run
Lambda functions in tarn's sandboxes: a function ARN as Resource and the
lambda:invoke integration, ResultSelector/ResultPath over the result, Retry
with backoff then Catch, TimeoutSeconds, and the .waitForTaskToken round
trip with SendTaskSuccess / SendTaskFailure.
"""
import json

import pytest
from botocore.exceptions import ClientError

import lambda_util
from states_util import history, machine, run, sfn_client, unique, wait_done

CODE = '''
import json, time
def double(event, context):
    return {"n": event["n"] * 2}
def fail(event, context):
    raise ValueError("boom %s" % event.get("n"))
def sleep(event, context):
    time.sleep(event.get("s", 5))
    return {"slept": True}
def noop(event, context):
    return {}
def answer(event, context):
    # a worker that answers its own task token, with the function's keys
    import os, boto3
    sfn = boto3.client("stepfunctions", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    sfn.send_task_success(taskToken=event["token"],
                          output=json.dumps({"answered": event["n"] + 1}))
    return {}
'''


@pytest.fixture(scope="module")
def sfn(tarn):
    return sfn_client(tarn)


@pytest.fixture(scope="module")
def fns(tarn):
    lam = lambda_util.lambda_client(tarn)
    zipped = lambda_util.zip_files({"tasks.py": (CODE, 0o100644)})
    arns = {}
    for h in ("double", "fail", "sleep", "noop", "answer"):
        name = unique("sf-" + h)
        cfg = lambda_util.create(lam, name, code=zipped, runtime="python3.11",
                                 handler="tasks." + h, Timeout=30)
        arns[h] = cfg["FunctionArn"]
    return arns


def test_function_arn_as_resource(sfn, fns):
    d = {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": fns["double"], "InputPath": "$.in",
        "ResultSelector": {"doubled.$": "$.n"}, "ResultPath": "$.out", "End": True}}}
    desc, arn = run(sfn, d, {"in": {"n": 21}, "keep": 1})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"in": {"n": 21}, "keep": 1, "out": {"doubled": 42}}
    types = [e["type"] for e in history(sfn, arn)]
    assert types == ["ExecutionStarted", "TaskStateEntered", "LambdaFunctionScheduled",
                     "LambdaFunctionSucceeded", "TaskStateExited", "ExecutionSucceeded"]


def test_lambda_invoke_integration(sfn, fns):
    d = {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": fns["double"], "Payload": {"n.$": "$.n"}},
        "OutputPath": "$.Payload", "End": True}}}
    desc, arn = run(sfn, d, {"n": 5})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"n": 10}
    ev = [e for e in history(sfn, arn) if e["type"] == "TaskScheduled"][0]
    det = ev["taskScheduledEventDetails"]
    assert det["resourceType"] == "lambda" and det["resource"] == "invoke"
    assert json.loads(det["parameters"])["Payload"] == {"n": 5}


def test_retry_then_catch(sfn, fns):
    d = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": fns["fail"],
              "Retry": [{"ErrorEquals": ["ValueError"], "IntervalSeconds": 1,
                         "MaxAttempts": 2, "BackoffRate": 1.0}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                         "Next": "Handled"}],
              "End": True},
        "Handled": {"Type": "Pass", "End": True}}}
    desc, arn = run(sfn, d, {"n": 3})
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    assert out["n"] == 3 and out["error"]["Error"] == "ValueError"
    assert "boom 3" in out["error"]["Cause"]
    types = [e["type"] for e in history(sfn, arn)]
    # the first attempt and two retries
    assert types.count("LambdaFunctionScheduled") == 3
    assert types.count("LambdaFunctionFailed") == 3


def test_uncaught_failure_fails_execution(sfn, fns):
    d = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": fns["fail"],
                                          "End": True}}}
    desc, _ = run(sfn, d, {"n": 1})
    assert desc["status"] == "FAILED" and desc["error"] == "ValueError"
    assert "boom 1" in desc["cause"]


def test_missing_function(sfn):
    d = {"StartAt": "T", "States": {"T": {
        "Type": "Task",
        "Resource": "arn:aws:lambda:us-east-1:000000000000:function:" + unique("nofn"),
        "End": True}}}
    desc, _ = run(sfn, d)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "Lambda.ResourceNotFoundException"


def test_task_timeout(sfn, fns):
    d = {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": fns["sleep"], "TimeoutSeconds": 1,
        "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"}], "End": True},
        "TimedOut": {"Type": "Succeed"}}}
    desc, arn = run(sfn, d, {"s": 20}, timeout=30)
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["Error"] == "States.Timeout"
    assert "LambdaFunctionTimedOut" in [e["type"] for e in history(sfn, arn)]


def token_machine(sfn, fns):
    return machine(sfn, {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": fns["noop"],
                               "Payload": {"token.$": "$$.Task.Token", "q.$": "$.q"}},
                "ResultPath": "$.answer",
                "Catch": [{"ErrorEquals": ["Human.Rejected"], "ResultPath": "$.why",
                           "Next": "Rejected"}],
                "End": True},
        "Rejected": {"Type": "Fail", "Error": "Rejected"}}})


def wait_token(sfn, exec_arn):
    for _ in range(300):
        for e in history(sfn, exec_arn):
            if e["type"] == "TaskScheduled":
                return json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]["token"]
        import time
        time.sleep(0.1)
    raise AssertionError("no TaskScheduled event")


def test_task_token_round_trip(sfn, fns):
    arn = token_machine(sfn, fns)
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"q": "ok?"}))["executionArn"]
    token = wait_token(sfn, ex)
    assert sfn.describe_execution(executionArn=ex)["status"] == "RUNNING"
    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_success(taskToken=token, output=json.dumps({"yes": True}))
    d = wait_done(sfn, ex)
    assert d["status"] == "SUCCEEDED"
    assert json.loads(d["output"]) == {"q": "ok?", "answer": {"yes": True}}
    # the token is spent
    with pytest.raises(ClientError) as exc:
        sfn.send_task_success(taskToken=token, output="{}")
    assert exc.value.response["Error"]["Code"] == "TaskDoesNotExist"
    # SendTaskFailure goes through Catch
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"q": "no?"}))["executionArn"]
    token = wait_token(sfn, ex)
    sfn.send_task_failure(taskToken=token, error="Human.Rejected", cause="said no")
    d = wait_done(sfn, ex)
    assert d["status"] == "FAILED" and d["error"] == "Rejected"
    types = [e["type"] for e in history(sfn, ex)]
    assert "TaskFailed" in types


def test_bad_output_for_token(sfn):
    with pytest.raises(ClientError) as exc:
        sfn.send_task_success(taskToken="nope", output="{}")
    assert exc.value.response["Error"]["Code"] == "TaskDoesNotExist"


def test_function_answers_its_task_token(sfn, fns):
    d = {"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": fns["answer"],
                       "Payload": {"token.$": "$$.Task.Token", "n.$": "$.n"}},
        "TimeoutSeconds": 60, "End": True}}}
    desc, _ = run(sfn, d, {"n": 41}, timeout=70)
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"answered": 42}
