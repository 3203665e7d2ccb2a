"""tests/e2e/test_states.py -- Step Functions with boto3's `stepfunctions`
client: state machines (create, describe, update, list, delete, tags,
validation with AWS's InvalidDefinition and the path of the problem) and
executions of every state type without functions (Pass, Choice, Wait,
Succeed, Fail, Parallel, Map), the data paths and intrinsic functions,
GetExecutionHistory's events, StopExecution and StartSyncExecution.
Tasks (functions, retry, catch, task tokens) are in test_states_tasks.py.
"""
import json

import pytest
from botocore.exceptions import ClientError

from states_util import (ROLE, history, machine, raw_call, run, sfn_client, unique,
                         wait_done)


@pytest.fixture(scope="module")
def sfn(tarn):
    return sfn_client(tarn)


PASS = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"x": 1}, "End": True}}}


def err_code(exc):
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_machine_lifecycle(sfn):
    name = unique("life")
    arn = sfn.create_state_machine(name=name, definition=json.dumps(PASS), roleArn=ROLE,
                                   tags=[{"key": "team", "value": "data"}])["stateMachineArn"]
    assert arn == "arn:aws:states:us-east-1:000000000000:stateMachine:" + name
    d = sfn.describe_state_machine(stateMachineArn=arn)
    assert d["name"] == name and d["type"] == "STANDARD" and d["status"] == "ACTIVE"
    assert json.loads(d["definition"]) == PASS and d["roleArn"] == ROLE
    assert any(m["stateMachineArn"] == arn for m in sfn.list_state_machines()["stateMachines"])
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "team", "value": "data"}]
    sfn.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "test"}])
    sfn.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "env", "value": "test"}]
    new = {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}}
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(new))
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == new
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine(name=name, definition=json.dumps(PASS), roleArn=ROLE)
    assert err_code(exc)[0] == "StateMachineAlreadyExists"
    sfn.delete_state_machine(stateMachineArn=arn)
    with pytest.raises(ClientError) as exc:
        sfn.describe_state_machine(stateMachineArn=arn)
    assert err_code(exc)[0] == "StateMachineDoesNotExist"


@pytest.mark.parametrize("definition,where", [
    ({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nope"}}}, "/States/A/Next"),
    ({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}, "/States/A"),
    ({"StartAt": "A", "States": {"A": {"Type": "Bogus", "End": True}}}, "/States/A/Type"),
    ({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True},
                                 "B": {"Type": "Succeed"}}}, "/States/B"),
    ({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [
        {"Variable": "$.x", "NumericEquals": "one", "Next": "C"}]}}},
     "/States/C/Choices[0]/NumericEquals"),
    ({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "X", "States": {"X": {"Type": "Wait", "End": True}}}]}}},
     "/States/P/Branches[0]/States/X"),
    ({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True,
                                       "Parameters": {"v.$": "not a path"}}}},
     "/States/A/Parameters"),
])
def test_invalid_definition_names_the_path(tarn, sfn, definition, where):
    name = unique("bad")
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
    code, msg = err_code(exc)
    assert code == "InvalidDefinition"
    assert msg.startswith("Invalid State Machine Definition: ")
    assert (" at %s'" % where) in msg, msg
    # nothing was created
    arns = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    assert name not in arns
    v = raw_call(tarn, "ValidateStateMachineDefinition", {"definition": json.dumps(definition)})
    assert v["result"] == "FAIL" and v["diagnostics"][0]["location"] == where
    v = raw_call(tarn, "ValidateStateMachineDefinition", {"definition": json.dumps(PASS)})
    assert v == {"result": "OK", "diagnostics": []}


def test_not_json_definition(sfn):
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine(name=unique("nj"), definition="{nope", roleArn=ROLE)
    assert err_code(exc)[0] == "InvalidDefinition"


def test_pass_paths_and_intrinsics(sfn):
    d = {"StartAt": "Shape", "States": {
        "Shape": {"Type": "Pass", "InputPath": "$.order",
                  "Parameters": {"id.$": "$.id", "greeting.$": "States.Format('hi {} #{}', $.who, $.id)",
                                 "items.$": "States.ArrayLength($.items)",
                                 "blob.$": "States.JsonToString($.items)",
                                 "back.$": "States.StringToJson('{\"a\":1}')",
                                 "exec.$": "$$.Execution.Name",
                                 "parts.$": "States.ArrayPartition($.items, 2)",
                                 "has.$": "States.ArrayContains($.items, 3)",
                                 "sum.$": "States.MathAdd($.id, 5)",
                                 "hash.$": "States.Hash('abc', 'SHA-256')",
                                 "split.$": "States.StringSplit('a,b,c', ',')",
                                 "b64.$": "States.Base64Encode('hello')",
                                 "const": "kept"},
                  "ResultPath": "$.shaped", "Next": "Out"},
        "Out": {"Type": "Pass", "OutputPath": "$.shaped", "End": True}}}
    name_in = {"order": {"id": 7, "who": "ann", "items": [1, 2, 3]}}
    desc, arn = run(sfn, d, name_in)
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    assert out["id"] == 7 and out["greeting"] == "hi ann #7"
    assert out["items"] == 3 and json.loads(out["blob"]) == [1, 2, 3]
    assert out["back"] == {"a": 1} and out["const"] == "kept"
    assert out["exec"] == arn.rsplit(":", 1)[1]
    assert out["parts"] == [[1, 2], [3]] and out["has"] is True and out["sum"] == 12
    assert out["hash"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert out["split"] == ["a", "b", "c"] and out["b64"] == "aGVsbG8="


CHOICE = {"StartAt": "C", "States": {
    "C": {"Type": "Choice", "Choices": [
        {"And": [{"Variable": "$.n", "IsPresent": True},
                 {"Variable": "$.n", "NumericGreaterThanEquals": 10}], "Next": "Big"},
        {"Variable": "$.name", "StringMatches": "log-*.csv", "Next": "Log"},
        {"Not": {"Variable": "$.flag", "BooleanEquals": False}, "Next": "Flag"},
        {"Variable": "$.when", "TimestampLessThan": "2020-01-01T00:00:00Z", "Next": "Old"},
        {"Variable": "$.a", "StringEqualsPath": "$.b", "Next": "Same"},
    ], "Default": "Other"},
    "Big": {"Type": "Pass", "Result": "big", "End": True},
    "Log": {"Type": "Pass", "Result": "log", "End": True},
    "Flag": {"Type": "Pass", "Result": "flag", "End": True},
    "Old": {"Type": "Pass", "Result": "old", "End": True},
    "Same": {"Type": "Pass", "Result": "same", "End": True},
    "Other": {"Type": "Pass", "Result": "other", "End": True}}}


def test_choice_operators(sfn):
    arn = machine(sfn, CHOICE)
    base = {"name": "x", "flag": False, "when": "2024-01-01T00:00:00Z", "a": "x", "b": "y"}
    cases = [({"n": 12}, "big"), ({"n": 3, "name": "log-1.csv"}, "log"),
             ({"flag": True}, "flag"), ({"when": "2019-05-01T10:00:00Z"}, "old"),
             ({"b": "x"}, "same"), ({}, "other")]
    runs = [(sfn.start_execution(stateMachineArn=arn,
                                 input=json.dumps(dict(base, **i)))["executionArn"], want)
            for i, want in cases]
    # a comparison on a missing Variable is a runtime error (AWS), not "no match"
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"flag": False}))
    d = wait_done(sfn, ex["executionArn"])
    assert d["status"] == "FAILED" and d["error"] == "States.Runtime"
    for ex, want in runs:
        d = wait_done(sfn, ex)
        assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == want, (d, want)


def test_no_choice_matched_and_fail_state(sfn):
    d = {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [
        {"Variable": "$.x", "NumericEquals": 1, "Next": "F"}]},
        "F": {"Type": "Fail", "Error": "Custom.Bad", "Cause": "x was 1"}}}
    desc, _ = run(sfn, d, {"x": 2})
    assert desc["status"] == "FAILED" and desc["error"] == "States.NoChoiceMatched"
    desc, arn = run(sfn, d, {"x": 1})
    assert desc["status"] == "FAILED"
    assert desc["error"] == "Custom.Bad" and desc["cause"] == "x was 1"
    types = [e["type"] for e in history(sfn, arn)]
    assert types == ["ExecutionStarted", "ChoiceStateEntered", "ChoiceStateExited",
                     "FailStateEntered", "ExecutionFailed"]


def test_history_events(sfn):
    d = {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 0, "Next": "S"},
        "S": {"Type": "Succeed"}}}
    desc, arn = run(sfn, d, {"in": True})
    assert desc["status"] == "SUCCEEDED" and json.loads(desc["output"]) == {"in": True, "a": 1}
    events = history(sfn, arn)
    assert [e["type"] for e in events] == [
        "ExecutionStarted", "PassStateEntered", "PassStateExited", "WaitStateEntered",
        "WaitStateExited", "SucceedStateEntered", "SucceedStateExited", "ExecutionSucceeded"]
    assert [e["id"] for e in events] == list(range(1, 9))
    assert json.loads(events[0]["executionStartedEventDetails"]["input"]) == {"in": True}
    assert events[1]["stateEnteredEventDetails"]["name"] == "A"
    assert json.loads(events[2]["stateExitedEventDetails"]["output"]) == {"in": True, "a": 1}
    assert json.loads(events[-1]["executionSucceededEventDetails"]["output"]) == {"in": True, "a": 1}
    rev = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=3)
    assert [e["id"] for e in rev["events"]] == [8, 7, 6] and "nextToken" in rev
    more = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=3,
                                     nextToken=rev["nextToken"])
    assert [e["id"] for e in more["events"]] == [5, 4, 3]


def test_parallel_and_map(sfn):
    d = {"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Next": "M", "ResultPath": "$.par", "Branches": [
            {"StartAt": "B1", "States": {"B1": {"Type": "Pass", "Result": "one", "End": True}}},
            {"StartAt": "B2", "States": {"B2": {"Type": "Pass", "InputPath": "$.items",
                                                "End": True}}}]},
        "M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
              "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
              "ItemProcessor": {"StartAt": "Dbl", "States": {
                  "Dbl": {"Type": "Choice", "Choices": [
                      {"Variable": "$.v", "NumericGreaterThan": 2, "Next": "Big"}],
                      "Default": "Small"},
                  "Big": {"Type": "Pass", "Parameters": {"big.$": "$.v"}, "End": True},
                  "Small": {"Type": "Pass", "Parameters": {"small.$": "$.i"}, "End": True}}},
              "ResultPath": "$.map", "End": True}}}
    desc, arn = run(sfn, d, {"items": [1, 2, 3, 4, 5]})
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    assert out["par"] == ["one", [1, 2, 3, 4, 5]]
    assert out["map"] == [{"small": 0}, {"small": 1}, {"big": 3}, {"big": 4}, {"big": 5}]
    types = [e["type"] for e in history(sfn, arn)]
    assert types.count("MapIterationStarted") == 5 and types.count("MapIterationSucceeded") == 5
    assert "ParallelStateSucceeded" in types and "MapStateSucceeded" in types


def test_parallel_branch_failure_is_caught(sfn):
    d = {"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}},
            {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Branch.Broke"}}}],
            "Catch": [{"ErrorEquals": ["Branch.Broke"], "ResultPath": "$.err", "Next": "Done"}]},
        "Done": {"Type": "Pass", "End": True}}}
    # "End" and a Catch to Done: Done is reachable through the catcher
    d["States"]["P"].pop("End")
    d["States"]["P"]["Next"] = "Done"
    desc, _ = run(sfn, d, {"k": 1}, timeout=20)
    assert desc["status"] == "SUCCEEDED"
    assert json.loads(desc["output"]) == {"k": 1, "err": {"Error": "Branch.Broke", "Cause": ""}}


def test_stop_execution_and_list(sfn):
    arn = machine(sfn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600,
                                                         "End": True}}})
    ex = sfn.start_execution(stateMachineArn=arn, name="stop-me")["executionArn"]
    assert ex.endswith(":execution:%s:stop-me" % arn.rsplit(":", 1)[1])
    running = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
    assert [e["executionArn"] for e in running] == [ex]
    sfn.stop_execution(executionArn=ex, error="Op.Cancel", cause="not needed")
    d = sfn.describe_execution(executionArn=ex)
    assert d["status"] == "ABORTED" and d["error"] == "Op.Cancel"
    assert history(sfn, ex)[-1]["type"] == "ExecutionAborted"
    assert sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"] == []
    with pytest.raises(ClientError) as exc:
        sfn.start_execution(stateMachineArn=arn, name="stop-me")
    assert err_code(exc)[0] == "ExecutionAlreadyExists"
    with pytest.raises(ClientError) as exc:
        sfn.start_execution(stateMachineArn=arn, input="{not json")
    assert err_code(exc)[0] == "InvalidExecutionInput"
    with pytest.raises(ClientError) as exc:
        sfn.describe_execution(executionArn=ex + "-nope")
    assert err_code(exc)[0] == "ExecutionDoesNotExist"


def test_start_sync_execution_express(sfn):
    arn = machine(sfn, {"StartAt": "A", "States": {"A": {"Type": "Pass",
                                                         "Parameters": {"got.$": "$.v"},
                                                         "End": True}}}, type="EXPRESS")
    r = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"v": 42}))
    assert r["status"] == "SUCCEEDED" and json.loads(r["output"]) == {"got": 42}
    fail = machine(sfn, {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E",
                                                          "Cause": "c"}}}, type="EXPRESS")
    r = sfn.start_sync_execution(stateMachineArn=fail)
    assert r["status"] == "FAILED" and r["error"] == "E" and r["cause"] == "c"
    std = machine(sfn, PASS)
    with pytest.raises(ClientError) as exc:
        sfn.start_sync_execution(stateMachineArn=std)
    assert err_code(exc)[0] == "StateMachineTypeNotSupported"


def test_runtime_error_fails_execution(sfn):
    d = {"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$.missing",
                                          "End": True}}}
    desc, _ = run(sfn, d, {"x": 1})
    assert desc["status"] == "FAILED" and desc["error"] == "States.Runtime"
    assert "$.missing" in desc["cause"]


def test_awscli_create_and_start(tarn, tmp_path):
    path = tmp_path / "def.json"
    path.write_text(json.dumps(PASS))
    name = unique("cli")
    out = tarn.aws_ok("stepfunctions", "create-state-machine", "--name", name,
                      "--definition", "file://%s" % path, "--role-arn", ROLE).stdout
    arn = json.loads(out)["stateMachineArn"]
    sfn = sfn_client(tarn)
    assert sfn.describe_state_machine(stateMachineArn=arn)["name"] == name
    ex = sfn.start_execution(stateMachineArn=arn, input='{"a": 1}')["executionArn"]
    d = wait_done(sfn, ex)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == {"x": 1}


def test_execution_timeout(sfn):
    d = {"TimeoutSeconds": 1, "StartAt": "W",
         "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}
    desc, arn = run(sfn, d, timeout=20)
    assert desc["status"] == "TIMED_OUT" and desc["error"] == "States.Timeout"
    assert history(sfn, arn)[-1]["type"] == "ExecutionTimedOut"


def test_output_limit(sfn):
    # each pass doubles the data: the 256 KiB limit stops it
    d = {"StartAt": "Grow", "States": {
        "Grow": {"Type": "Pass", "Parameters": {"v.$": "States.Array($.v, $.v)"},
                 "Next": "Grow"}}}
    desc, _ = run(sfn, d, {"v": "x" * 100}, timeout=30)
    assert desc["status"] == "FAILED" and desc["error"] == "States.DataLimitExceeded"
