"""tests/e2e/test_states_jsonata.py -- Step Functions with QueryLanguage
JSONata (Arguments, Output, Assign, Condition, Items, Fail's Error and
Cause as expressions, $states) and workflow variables in both query
languages, through boto3: a machine with Pass, Choice, Map, a lambda:invoke
Task and Fail; a JSONPath machine with Assign and "$name" paths; the
validation errors; variables surviving kill -9 in the middle of an
execution.
"""
import json
import time

import pytest
from botocore.exceptions import ClientError

import lambda_util
from states_util import history, machine, raw_call, run, sfn_client, unique, wait_done

CODE = '''
def double(event, context):
    return {"n": event["n"] * 2}
def fail(event, context):
    raise ValueError("boom %s" % event.get("n"))
'''


@pytest.fixture(scope="module")
def sfn(tarn):
    return sfn_client(tarn)


@pytest.fixture(scope="module")
def fns(tarn):
    lam = lambda_util.lambda_client(tarn)
    zipped = lambda_util.zip_files({"jt.py": (CODE, 0o100644)})
    arns = {}
    for h in ("double", "fail"):
        cfg = lambda_util.create(lam, unique("ja-" + h), code=zipped, runtime="python3.11",
                                 handler="jt." + h, Timeout=30)
        arns[h] = cfg["FunctionArn"]
    return arns


def test_pass_choice_map_with_variables(sfn):
    d = {"QueryLanguage": "JSONata", "StartAt": "Init", "States": {
        "Init": {"Type": "Pass", "Next": "Check",
                 "Assign": {"total": "{% $sum($states.input.items.price) %}",
                            "user": "{% $states.input.user %}"},
                 "Output": {"items": "{% $states.input.items %}", "n": 1}},
        "Check": {"Type": "Choice", "Default": "Each",
                  "Choices": [{"Condition": "{% $total > 100 %}", "Next": "Each",
                               "Assign": {"size": "big"}}],
                  "Assign": {"size": "small", "seen": "{% $total %}"}},
        "Each": {"Type": "Map", "Items": "{% $states.input.items %}", "Next": "Done",
                 "ItemSelector": {"name": "{% $states.context.Map.Item.Value.name %}",
                                  "idx": "{% $states.context.Map.Item.Index %}"},
                 "ItemProcessor": {"StartAt": "Up", "States": {"Up": {
                     "Type": "Pass", "End": True,
                     "Output": "{% $uppercase($states.input.name) & '#' & $states.input.idx"
                               " & '@' & $user %}"}}},
                 "Output": {"names": "{% $states.result %}", "total": "{% $total %}",
                            "size": "{% $size %}", "seen": "{% $seen %}",
                            "cheap": "{% $states.input.items[price < 50].name %}"}},
        "Done": {"Type": "Succeed"}}}
    inp = {"user": "ann", "items": [{"name": "a", "price": 70}, {"name": "b", "price": 40}]}
    desc, arn = run(sfn, d, inp)
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"names": ["A#0@ann", "B#1@ann"], "total": 110,
                                          "size": "big", "seen": 110, "cheap": "b"}
    types = [e["type"] for e in history(sfn, arn)]
    assert types.count("MapIterationSucceeded") == 2


def test_task_arguments_output_assign(sfn, fns):
    d = {"QueryLanguage": "JSONata", "StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "P",
              "Arguments": {"FunctionName": fns["double"],
                            "Payload": {"n": "{% $states.input.n + 1 %}"}},
              "TimeoutSeconds": "{% 10 + 20 %}",
              "Assign": {"doubled": "{% $states.result.Payload.n %}",
                         "before": "{% $states.input.n %}"},
              "Output": "{% $states.result.Payload %}"},
        "P": {"Type": "Pass", "End": True,
              "Output": {"out": "{% $states.input %}", "doubled": "{% $doubled %}",
                         "before": "{% $before %}",
                         "name": "{% $states.context.Execution.Name %}"}}}}
    arn = machine(sfn, d)
    name = unique("ex")
    ex = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps({"n": 4}))
    desc = wait_done(sfn, ex["executionArn"])
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"out": {"n": 10}, "doubled": 10, "before": 4,
                                          "name": name}
    ev = [e for e in history(sfn, ex["executionArn"]) if e["type"] == "TaskScheduled"][0]
    assert json.loads(ev["taskScheduledEventDetails"]["parameters"])["Payload"] == {"n": 5}


def test_catch_output_and_fail_expressions(sfn, fns):
    d = {"QueryLanguage": "JSONata", "StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
              "Arguments": {"FunctionName": fns["fail"], "Payload": "{% $states.input %}"},
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F",
                         "Assign": {"err": "{% $states.errorOutput.Error %}"},
                         "Output": {"why": "{% $states.errorOutput.Error %}",
                                    "n": "{% $states.input.n %}",
                                    "st": "{% $states.context.State.Name %}"}}]},
        "F": {"Type": "Fail", "Error": "{% 'Custom.' & $err %}",
              "Cause": "{% 'n was ' & $string($states.input.n) & ', ' & $states.input.why & ' in '"
                       " & $states.input.st %}"}}}
    desc, _ = run(sfn, d, {"n": 3})
    assert desc["status"] == "FAILED", desc
    assert desc["error"] == "Custom.ValueError"
    assert desc["cause"] == "n was 3, ValueError in T"


def test_query_evaluation_error(sfn, tarn):
    d = {"QueryLanguage": "JSONata", "StartAt": "P", "States": {
        "P": {"Type": "Pass", "Output": "{% $states.input.a + 'x' %}", "End": True}}}
    desc, arn = run(sfn, d, {"a": 1})
    assert desc["status"] == "FAILED", desc
    assert desc["error"] == "States.QueryEvaluationError"
    assert "$states.input.a + 'x'" in desc["cause"]
    # this botocore predates evaluationFailedEventDetails: read the wire
    raw = raw_call(tarn, "GetExecutionHistory", {"executionArn": arn})["events"]
    ev = [e for e in raw if e["type"] == "EvaluationFailed"]
    assert len(ev) == 1, raw
    det = ev[0]["evaluationFailedEventDetails"]
    assert det["state"] == "P" and det["location"] == "Output"
    assert det["error"] == "States.QueryEvaluationError"
    # undefined where a value is needed, caught like any error
    d = {"QueryLanguage": "JSONata", "StartAt": "P", "States": {
        "P": {"Type": "Pass", "Output": "{% $states.input.nope %}", "End": True}}}
    desc, _ = run(sfn, d, {"a": 1})
    assert desc["error"] == "States.QueryEvaluationError"
    assert "undefined" in desc["cause"]


def bad_definition(sfn, d):
    with pytest.raises(ClientError) as ei:
        machine(sfn, d)
    assert ei.value.response["Error"]["Code"] == "InvalidDefinition"
    return ei.value.response["Error"]["Message"]


def test_validation(sfn):
    msg = bad_definition(sfn, {"QueryLanguage": "JSONata", "StartAt": "P", "States": {
        "P": {"Type": "Pass", "InputPath": "$.a", "End": True}}})
    assert "InputPath" in msg and "JSONata" in msg and "/States/P" in msg
    msg = bad_definition(sfn, {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Output": {"a": 1}, "End": True}}})
    assert "Output" in msg and "JSONPath" in msg
    msg = bad_definition(sfn, {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% 1 + %}", "End": True}}})
    assert "SCHEMA_VALIDATION_FAILED" in msg and "Output" in msg
    msg = bad_definition(sfn, {"QueryLanguage": "JSONata", "StartAt": "P", "States": {
        "P": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}}})
    assert "QueryLanguage" in msg
    msg = bad_definition(sfn, {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Assign": {"9bad": 1}, "End": True}}})
    assert "9bad" in msg
    msg = bad_definition(sfn, {"QueryLanguage": "JSONata", "StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsPresent": True,
                                             "Next": "E"}]},
        "E": {"Type": "Succeed"}}})
    assert "Variable" in msg
    # a JSONata state in a JSONPath machine is fine
    machine(sfn, {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% 1 %}", "End": True}}})


def test_jsonpath_assign(sfn):
    d = {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "C",
              "Assign": {"x.$": "$.a", "lit": {"k": [1, 2]}, "name.$": "$$.Execution.Name",
                         "sum.$": "States.MathAdd($.a, 1)"}},
        "C": {"Type": "Choice", "Default": "No",
              "Choices": [{"Variable": "$x", "NumericEquals": 5, "Next": "Par",
                           "Assign": {"chose": "yes"}}]},
        "No": {"Type": "Fail", "Error": "Wrong"},
        "Par": {"Type": "Parallel", "Next": "Out", "ResultPath": "$.par",
                "Assign": {"first.$": "$[0].outer"},
                "Branches": [{"StartAt": "B", "States": {"B": {
                    "Type": "Pass", "End": True, "Assign": {"x": "inner"},
                    "Parameters": {"outer.$": "$x", "k.$": "$lit.k[1]"}}}}]},
        "Out": {"Type": "Pass", "End": True,
                "Parameters": {"x.$": "$x", "lit.$": "$lit", "chose.$": "$chose",
                               "sum.$": "$sum", "first.$": "$first", "par.$": "$.par"}}}}
    desc, _ = run(sfn, d, {"a": 5})
    assert desc["status"] == "SUCCEEDED", desc
    # the branch's own x stays in the branch
    assert json.loads(desc["output"]) == {"x": 5, "lit": {"k": [1, 2]}, "chose": "yes",
                                          "sum": 6, "first": 5,
                                          "par": [{"outer": 5, "k": 2}]}
    # an unknown variable is a runtime error
    d = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True,
                                          "Parameters": {"v.$": "$nope"}}}}
    desc, _ = run(sfn, d, {})
    assert desc["status"] == "FAILED" and desc["error"] == "States.Runtime", desc


def test_jsonata_map_scope(sfn):
    # iterations see outer variables; what they assign stays theirs (one
    # at a time: an iteration does not see the one before it either)
    d = {"QueryLanguage": "JSONata", "StartAt": "Init", "States": {
        "Init": {"Type": "Pass", "Assign": {"k": 10}, "Next": "M"},
        "M": {"Type": "Map", "Items": "{% [1..3] %}", "Next": "After", "MaxConcurrency": 1,
              "ItemProcessor": {"StartAt": "S", "States": {
                  "S": {"Type": "Pass", "Assign": {"k": "{% $k + $states.input %}"},
                        "Next": "T"},
                  "T": {"Type": "Pass", "Output": "{% $k %}", "End": True}}}},
        "After": {"Type": "Pass", "Output": {"r": "{% $states.input %}", "k": "{% $k %}"},
                  "End": True}}}
    desc, _ = run(sfn, d, {})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"r": [11, 12, 13], "k": 10}


def test_variable_size_limit(sfn):
    d = {"QueryLanguage": "JSONata", "StartAt": "P", "States": {
        "P": {"Type": "Pass", "End": True,
              "Assign": {"big": "{% $join($map([1..30000], function($i) { 'xxxxxxxxxx' })) %}"}}}}
    desc, _ = run(sfn, d, {})
    assert desc["status"] == "FAILED", desc
    assert desc["error"] == "States.Runtime" and "big" in desc["cause"]


def test_variables_survive_kill9(tarn_factory):
    srv = tarn_factory()
    sfn = sfn_client(srv)
    # a JSONPath machine whose states choose JSONata one by one
    ja = {"QueryLanguage": "JSONata"}
    arn = machine(sfn, {"StartAt": "Keep", "States": {
        "Keep": {**ja, "Type": "Pass", "Next": "Nap",
                 "Assign": {"secret": "{% $states.input.s %}", "at": "{% $states.input.n * 2 %}"},
                 "Output": {}},
        "Nap": {**ja, "Type": "Wait", "Seconds": "{% 1 + 2 %}", "Next": "Path"},
        "Path": {"Type": "Pass", "Next": "Show", "Parameters": {"s.$": "$secret"}},
        "Show": {**ja, "Type": "Pass", "End": True,
                 "Output": {"secret": "{% $secret %}", "at": "{% $at %}",
                            "via": "{% $states.input.s %}"}}}})
    ex = sfn.start_execution(stateMachineArn=arn, name=unique("crash"),
                             input=json.dumps({"s": "kept", "n": 21}))["executionArn"]
    deadline = time.monotonic() + 30
    while True:
        events = history(sfn, ex)
        if "WaitStateEntered" in [e["type"] for e in events]:
            break
        assert time.monotonic() < deadline, [(e["type"], e.get("executionFailedEventDetails")) for e in events]
        time.sleep(0.1)
    srv.kill9()
    srv.start()
    sfn = sfn_client(srv)
    d = wait_done(sfn, ex, timeout=60)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == {"secret": "kept", "at": 42, "via": "kept"}
