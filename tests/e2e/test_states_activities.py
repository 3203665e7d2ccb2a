"""tests/e2e/test_states_activities.py -- Step Functions activities with
boto3's `stepfunctions` client and the AWS CLI: CreateActivity (with
tags), DescribeActivity, ListActivities, DeleteActivity; a Task on an activity ARN
waiting for a worker's GetActivityTask (a long poll that holds no server
thread: more workers wait than the server has threads), SendTaskSuccess,
SendTaskFailure and SendTaskHeartbeat with the task's token,
HeartbeatSeconds, a worker that went away before a task came (the task
waits for the next one), and a scheduled task handed out after kill -9.
"""
import json
import subprocess
import threading
import time

import pytest
from botocore.exceptions import ClientError

from states_util import history, machine, sfn_client, unique, wait_done


@pytest.fixture(scope="module")
def sfn(tarn):
    return sfn_client(tarn, max_pool_connections=64)


def code(exc):
    return exc.value.response["Error"]["Code"]


def activity_machine(sfn, act, **task):
    state = {"Type": "Task", "Resource": act, "Parameters": {"job.$": "$.job"}, "End": True}
    state.update(task)
    return machine(sfn, {"StartAt": "Work", "States": {"Work": state}})


def wait_event(sfn, exec_arn, type, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        events = history(sfn, exec_arn)
        if any(e["type"] == type for e in events):
            return events
        assert time.monotonic() < deadline, [e["type"] for e in events]
        time.sleep(0.1)


def test_activity_lifecycle_with_the_cli(tarn, sfn):
    name = unique("act")
    env = dict(AWS_ACCESS_KEY_ID=tarn.access_key, AWS_SECRET_ACCESS_KEY=tarn.secret_key,
               AWS_DEFAULT_REGION="us-east-1", PATH="/usr/bin:/bin", HOME="/tmp")

    def cli(*args):
        out = subprocess.run(["/usr/bin/aws", "--endpoint-url", tarn.endpoint, "stepfunctions",
                              *args], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    arn = cli("create-activity", "--name", name)["activityArn"]
    assert arn == "arn:aws:states:us-east-1:000000000000:activity:" + name
    # the same name again is the same activity
    assert sfn.create_activity(name=name)["activityArn"] == arn
    d = sfn.describe_activity(activityArn=arn)
    assert d["name"] == name and d["activityArn"] == arn and "creationDate" in d
    listed = cli("list-activities")["activities"]
    assert any(a["activityArn"] == arn and a["name"] == name for a in listed)
    other = sfn.create_activity(name=unique("act"), tags=[{"key": "team", "value": "img"}])[
        "activityArn"]
    assert sfn.list_tags_for_resource(resourceArn=other)["tags"] == [
        {"key": "team", "value": "img"}]
    sfn.tag_resource(resourceArn=other, tags=[{"key": "env", "value": "dev"}])
    sfn.untag_resource(resourceArn=other, tagKeys=["team"])
    assert sfn.list_tags_for_resource(resourceArn=other)["tags"] == [
        {"key": "env", "value": "dev"}]
    assert set(sfn.describe_activity(activityArn=other)) - {"ResponseMetadata"} == {
        "activityArn", "name", "creationDate"}
    with pytest.raises(ClientError) as exc:
        sfn.create_activity(name=unique("act"),
                            tags=[{"key": "k%d" % i, "value": "v"} for i in range(51)])
    assert code(exc) == "TooManyTags"
    page = sfn.list_activities(maxResults=1)
    assert len(page["activities"]) == 1 and "nextToken" in page
    cli("delete-activity", "--activity-arn", arn)
    with pytest.raises(ClientError) as exc:
        sfn.describe_activity(activityArn=arn)
    assert code(exc) == "ActivityDoesNotExist"
    with pytest.raises(ClientError) as exc:
        sfn.get_activity_task(activityArn=arn)
    assert code(exc) == "ActivityDoesNotExist"
    with pytest.raises(ClientError) as exc:
        sfn.describe_activity(activityArn="arn:aws:states:us-east-1:000000000000:nope")
    assert code(exc) == "InvalidArn"
    sfn.delete_activity(activityArn=other)


def test_workers_outnumber_server_threads(sfn):
    """40 parked GetActivityTask polls (the server has 32 threads) while
    other calls are answered; each worker gets one task, answers it, and
    every execution succeeds with its worker's output."""
    act = sfn.create_activity(name=unique("many"))["activityArn"]
    arn = activity_machine(sfn, act)
    n = 40
    got = []
    lock = threading.Lock()

    def worker(i):
        t = sfn.get_activity_task(activityArn=act, workerName="w%d" % i)
        with lock:
            got.append(t)
        if t.get("taskToken"):
            job = json.loads(t["input"])["job"]
            sfn.send_task_success(taskToken=t["taskToken"],
                                  output=json.dumps({"done": job, "by": i}))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    # the server still answers while every worker waits
    assert sfn.describe_activity(activityArn=act)["activityArn"] == act
    execs = [sfn.start_execution(stateMachineArn=arn, input=json.dumps({"job": j}))[
        "executionArn"] for j in range(n)]
    for t in threads:
        t.join(timeout=120)
    assert len(got) == n and all(t.get("taskToken") for t in got)
    jobs = set()
    for ex in execs:
        d = wait_done(sfn, ex)
        assert d["status"] == "SUCCEEDED", d
        jobs.add(json.loads(d["output"])["done"])
    assert jobs == set(range(n))
    types = [e["type"] for e in history(sfn, execs[0])]
    assert types[:6] == ["ExecutionStarted", "TaskStateEntered", "ActivityScheduled",
                         "ActivityStarted", "ActivitySucceeded", "TaskStateExited"]


def test_failure_heartbeat_and_timeout(sfn):
    act = sfn.create_activity(name=unique("hb"))["activityArn"]
    # a worker's failure goes to Catch
    arn = machine(sfn, {"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": act, "End": True,
                 "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.err", "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True}}})
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"a": 1}))["executionArn"]
    t = sfn.get_activity_task(activityArn=act, workerName="failer")
    assert json.loads(t["input"]) == {"a": 1}
    sfn.send_task_heartbeat(taskToken=t["taskToken"])
    sfn.send_task_failure(taskToken=t["taskToken"], error="Boom", cause="it broke")
    d = wait_done(sfn, ex)
    assert d["status"] == "SUCCEEDED"
    assert json.loads(d["output"])["err"] == {"Error": "Boom", "Cause": "it broke"}
    with pytest.raises(ClientError) as exc:
        sfn.send_task_success(taskToken=t["taskToken"], output="{}")
    assert code(exc) == "TaskDoesNotExist"
    # heartbeats keep a task alive past HeartbeatSeconds; silence ends it
    arn = activity_machine(sfn, act, HeartbeatSeconds=5)
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"job": 1}))["executionArn"]
    t = sfn.get_activity_task(activityArn=act)
    start = time.monotonic()
    while time.monotonic() - start < 7:
        sfn.send_task_heartbeat(taskToken=t["taskToken"])
        time.sleep(0.5)
    assert sfn.describe_execution(executionArn=ex)["status"] == "RUNNING"
    d = wait_done(sfn, ex)
    assert d["status"] == "FAILED" and d["error"] == "States.HeartbeatTimeout"
    assert any(e["type"] == "ActivityTimedOut" for e in history(sfn, ex))


def test_task_skips_a_worker_that_went_away(tarn, sfn):
    act = sfn.create_activity(name=unique("gone"))["activityArn"]
    impatient = sfn_client(tarn, read_timeout=1)
    with pytest.raises(Exception):
        impatient.get_activity_task(activityArn=act, workerName="impatient")
    arn = activity_machine(sfn, act)
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"job": 7}))["executionArn"]
    t = sfn.get_activity_task(activityArn=act, workerName="patient")
    assert json.loads(t["input"]) == {"job": 7}
    sfn.send_task_success(taskToken=t["taskToken"], output="7")
    assert wait_done(sfn, ex)["status"] == "SUCCEEDED"
    started = [e for e in history(sfn, ex) if e["type"] == "ActivityStarted"]
    assert [e["activityStartedEventDetails"]["workerName"] for e in started] == ["patient"]


def test_scheduled_task_survives_kill9(tarn_factory):
    srv = tarn_factory()
    sfn = sfn_client(srv)
    act = sfn.create_activity(name=unique("crash"))["activityArn"]
    arn = activity_machine(sfn, act)
    waiting = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"job": "a"}))[
        "executionArn"]
    taken = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"job": "b"}))[
        "executionArn"]
    wait_event(sfn, waiting, "ActivityScheduled")
    wait_event(sfn, taken, "ActivityScheduled")
    first = sfn.get_activity_task(activityArn=act, workerName="before")
    srv.kill9()
    srv.start()
    sfn = sfn_client(srv)
    # the task no worker had is handed out again; the one taken is not
    second = sfn.get_activity_task(activityArn=act, workerName="after")
    assert second["taskToken"] != first["taskToken"]
    jobs = {json.loads(first["input"])["job"], json.loads(second["input"])["job"]}
    assert jobs == {"a", "b"}
    # both tokens still answer their tasks
    sfn.send_task_success(taskToken=first["taskToken"], output='"one"')
    sfn.send_task_success(taskToken=second["taskToken"], output='"two"')
    for ex in (waiting, taken):
        d = wait_done(sfn, ex)
        assert d["status"] == "SUCCEEDED", d
    assert len([e for e in history(sfn, waiting) if e["type"] == "ActivityStarted"]) == 1
