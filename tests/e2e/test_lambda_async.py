"""tests/e2e/test_lambda_async.py -- Event invocations are durable: once
Invoke answered 202, the event runs even if the server is killed (kill -9)
before it could, and restarted.

The function's reserved concurrency is 0 while the events are queued, so
they wait (throttled, retried) until the restarted server lets them run.

Stopping the server also answers the synchronous invocations still waiting:
with an error from the function system, before the HTTP edge gives up.
"""
import json
import threading
import time

from botocore.exceptions import ClientError

import lambda_util as lu


def test_events_survive_kill_and_restart(tarn_factory):
    srv = tarn_factory()
    lam = lu.lambda_client(srv)
    s3 = srv.client()
    s3.create_bucket(Bucket="async-restart")
    name = lu.unique_name("durable")
    lu.create(lam, name, "python", handler="app.s3_put", Timeout=30)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    for i in range(3):
        resp = lam.invoke(FunctionName=name, InvocationType="Event",
                          Payload=json.dumps({"bucket": "async-restart",
                                              "key": "ev-%d" % i}).encode())
        assert resp["StatusCode"] == 202
    time.sleep(0.5)
    assert s3.list_objects_v2(Bucket="async-restart").get("KeyCount", 0) == 0
    srv.kill9()
    srv.start()
    lam = lu.lambda_client(srv)
    s3 = srv.client()
    lam.delete_function_concurrency(FunctionName=name)
    deadline = time.monotonic() + 60
    keys = []
    while time.monotonic() < deadline:
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="async-restart").get("Contents", []))
        if len(keys) == 3:
            break
        time.sleep(0.2)
    assert keys == ["ev-0", "ev-1", "ev-2"]


def test_registry_survives_restart(tarn_factory):
    srv = tarn_factory()
    lam = lu.lambda_client(srv)
    name = lu.unique_name("persist")
    lu.create(lam, name, "python", Environment={"Variables": {"KEY": "v"}})
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    srv.restart()
    lam = lu.lambda_client(srv)
    cfg = lam.get_function(FunctionName=name)
    assert cfg["Configuration"]["Environment"]["Variables"] == {"KEY": "v"}
    assert cfg["Concurrency"]["ReservedConcurrentExecutions"] == 5
    assert lam.get_alias(FunctionName=name, Name="prod")["FunctionVersion"] == "1"
    resp, body = lu.invoke(lam, name, {"after": "restart"}, Qualifier="prod")
    assert resp["ExecutedVersion"] == "1"
    assert body["event"] == {"after": "restart"}
    lam.delete_function(FunctionName=name)
    srv.restart()
    lam = lu.lambda_client(srv)
    try:
        lam.get_function(FunctionName=name)
        raise AssertionError("deleted function came back")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ResourceNotFoundException"


def test_stop_answers_waiting_invocations(tarn_factory):
    srv = tarn_factory()
    lam = lu.lambda_client(srv)
    name = lu.unique_name("stop-waiting")
    lu.create(lam, name, "python", handler="app.sleep", Timeout=120)
    out = {}

    def call():
        try:
            out["answer"] = lu.invoke(lam, name, {"seconds": 100})
        except ClientError as e:
            out["error"] = e

    t = threading.Thread(target=call)
    t.start()
    deadline = time.monotonic() + 60
    while lu.concurrent_executions(srv) < 1:
        assert time.monotonic() < deadline, "the invocation never started"
        time.sleep(0.05)
    assert srv.stop() == 0
    t.join(60)
    assert "error" in out, out
    err = out["error"].response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert err["Error"]["Code"] == "ServiceException"
    assert "stopping" in err["Error"]["Message"]
