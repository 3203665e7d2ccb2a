"""tests/e2e/test_states_cli.py -- `tarn flow`: create a machine from an ASL
file, validate, run (STANDARD waits for the end; EXPRESS runs synchronously),
start / status / history / stop, and the failures a user sees (a bad
definition with its path, a failed run's error, exit codes).
"""
import json

from states_util import sfn_client, unique
from test_sqs_cli import tarn_cli


DOUBLE = {"StartAt": "D", "States": {"D": {
    "Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, $.n)"}, "End": True}}}


def test_create_run_and_inspect(tarn, tmp_path):
    path = tmp_path / "double.asl.json"
    path.write_text(json.dumps(DOUBLE))
    name = unique("clim")
    arn = tarn_cli(tarn, "flow", "create", name, str(path)).stdout.strip()
    assert arn.endswith(":stateMachine:" + name)
    assert name in tarn_cli(tarn, "flow", "ls").stdout
    assert tarn_cli(tarn, "flow", "validate", str(path)).stdout.strip() == "ok"
    out = tarn_cli(tarn, "flow", "run", name, '{"n": 21}').stdout
    assert json.loads(out) == {"n": 42}
    # create again with a new definition: an update
    DOUBLE["States"]["D"]["Parameters"]["tag"] = "v2"
    path.write_text(json.dumps(DOUBLE))
    tarn_cli(tarn, "flow", "create", name, str(path))
    assert json.loads(tarn_cli(tarn, "flow", "run", name, "-", input='{"n": 1}').stdout) == \
        {"n": 2, "tag": "v2"}
    ex = tarn_cli(tarn, "flow", "start", name, '{"n": 2}').stdout.strip()
    sfn = sfn_client(tarn)
    assert sfn.describe_execution(executionArn=ex)["executionArn"] == ex
    hist = tarn_cli(tarn, "flow", "history", ex).stdout.splitlines()
    assert hist[0].split("\t")[1] == "ExecutionStarted"
    express = unique("clix")
    tarn_cli(tarn, "flow", "create", express, str(path), "--express")
    assert json.loads(tarn_cli(tarn, "flow", "run", express, '{"n": 5}').stdout)["n"] == 10
    tarn_cli(tarn, "flow", "rm", name)
    assert name not in tarn_cli(tarn, "flow", "ls").stdout


def test_failures(tarn, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}))
    r = tarn_cli(tarn, "flow", "create", unique("bad"), str(bad), ok=False)
    assert r.returncode == 1 and "/States/A/Next" in r.stderr
    r = tarn_cli(tarn, "flow", "validate", str(bad), ok=False)
    assert r.returncode == 1 and "MISSING_TRANSITION_TARGET" in r.stderr
    fails = tmp_path / "fail.json"
    fails.write_text(json.dumps({"StartAt": "F", "States": {"F": {
        "Type": "Fail", "Error": "Oops", "Cause": "on purpose"}}}))
    name = unique("clif")
    tarn_cli(tarn, "flow", "create", name, str(fails))
    r = tarn_cli(tarn, "flow", "run", name, ok=False)
    assert r.returncode == 1 and "FAILED" in r.stderr and "Oops" in r.stderr
    r = tarn_cli(tarn, "flow", "bogus", ok=False)
    assert r.returncode == 2
