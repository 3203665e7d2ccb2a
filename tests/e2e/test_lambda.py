"""tests/e2e/test_lambda.py -- functions through the Lambda API, with boto3
and the AWS CLI: create (zip) and invoke Python, Node.js and bash
custom-runtime functions; sync, async and dry run; errors, time-outs and
out-of-memory; environment; warm reuse; versions and aliases; reserved
concurrency; a 10 MB zip; more waiting invocations than the HTTP edge has
threads; a function using tarn's S3 through boto3; logs.

Each module gets its own server (conftest's `tarn` fixture); each test makes
functions with unique names.
"""
import base64
import hashlib
import json
import random
import threading
import urllib.parse
import time

import pytest
from botocore.exceptions import ClientError

import lambda_util as lu
from lambda_util import create, invoke, log_tail, unique_name, zip_dir, zip_files
from tarnlib import client_error


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


@pytest.fixture
def fname(request):
    return unique_name(request.node.name)


def wait_for(fn, timeout=60.0, interval=0.1):
    """Polls fn until it returns a truthy value (for effects of Event
    invocations, which run later by design)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %.0f s" % timeout)
        time.sleep(interval)


# ---- create and invoke, each runtime ----

def test_python_create_and_invoke(lam, fname):
    cfg = create(lam, fname, "python")
    assert cfg["FunctionName"] == fname
    assert cfg["Runtime"] == "python3.11"
    assert cfg["Handler"] == "app.echo"
    assert cfg["Version"] == "$LATEST"
    assert cfg["State"] == "Active"
    assert cfg["FunctionArn"].endswith(":function:" + fname)
    resp, body = invoke(lam, fname, {"hello": "world"})
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert resp["ExecutedVersion"] == "$LATEST"
    assert body["event"] == {"hello": "world"}
    assert body["function_name"] == fname
    assert body["function_version"] == "$LATEST"
    assert body["memory"] == "128"
    assert body["log_group"] == "/aws/lambda/" + fname
    assert 0 < body["remaining_ms"] <= 3000
    assert body["arn"] == cfg["FunctionArn"]


def test_node_create_and_invoke(lam, fname):
    create(lam, fname, "node")
    resp, body = invoke(lam, fname, {"n": 1})
    assert resp["StatusCode"] == 200, body
    assert body["event"] == {"n": 1}
    assert body["functionName"] == fname
    assert body["memory"] == "128"
    assert 0 < body["remaining"] <= 3000
    resp, body = invoke(lam, fname, {"n": 2})
    assert body["initCount"] == 1 and body["invocations"] == 2


def test_node_callback_handler(lam, fname):
    create(lam, fname, "node", handler="index.callback")
    _, body = invoke(lam, fname, {"x": 5})
    assert body == {"via": "callback", "event": {"x": 5}}


def test_bash_custom_runtime(lam, fname):
    cfg = create(lam, fname, "bash")
    assert cfg["Runtime"] == "provided.al2023"
    resp, body = invoke(lam, fname, {"msg": "hi"})
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert body == "Echoing request: '{\"msg\": \"hi\"}'"
    resp, body = invoke(lam, fname, {"msg": "again"})
    assert body == "Echoing request: '{\"msg\": \"again\"}'"


def test_get_list_delete(lam, fname):
    create(lam, fname, "python", Description="a test", MemorySize=256, Timeout=7,
           Environment={"Variables": {"COLOR": "blue"}})
    got = lam.get_function(FunctionName=fname)
    c = got["Configuration"]
    assert c["Description"] == "a test"
    assert c["MemorySize"] == 256 and c["Timeout"] == 7
    assert c["Environment"]["Variables"] == {"COLOR": "blue"}
    assert c["CodeSha256"] and c["CodeSize"] > 0
    conf = lam.get_function_configuration(FunctionName=fname)
    assert conf["RevisionId"] == c["RevisionId"]
    names = []
    for page in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}):
        names += [f["FunctionName"] for f in page["Functions"]]
    assert fname in names
    assert len(names) == len(set(names))
    lam.delete_function(FunctionName=fname)
    with pytest.raises(ClientError) as ei:
        lam.get_function(FunctionName=fname)
    assert client_error(ei.value) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as ei:
        lam.invoke(FunctionName=fname, Payload=b"{}")
    assert client_error(ei.value) == ("ResourceNotFoundException", 404)


def test_create_twice_conflicts(lam, fname):
    create(lam, fname, "python")
    with pytest.raises(ClientError) as ei:
        create(lam, fname, "python")
    assert client_error(ei.value) == ("ResourceConflictException", 409)


@pytest.mark.parametrize("args,what", [
    (dict(MemorySize=20480), "MemorySize"),
    (dict(Timeout=901), "timeout"),
    (dict(Runtime="cobol85"), "runtime"),
    (dict(Environment={"Variables": {"AWS_REGION": "x"}}), "reserved"),
    (dict(Environment={"Variables": {"BIG": "x" * 5000}}), "4KB"),
])
def test_create_rejects_bad_settings(lam, fname, args, what):
    with pytest.raises(ClientError) as ei:
        create(lam, fname, "python", **args)
    assert client_error(ei.value) == ("InvalidParameterValueException", 400)
    assert what.lower() in str(ei.value).lower()
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=fname)


def test_create_rejects_bad_zip(lam, fname):
    with pytest.raises(ClientError) as ei:
        create(lam, fname, b"this is not a zip", runtime="python3.11", handler="app.echo")
    assert client_error(ei.value) == ("InvalidParameterValueException", 400)
    evil = zip_files({"../escape.py": ("x = 1", 0o100644)})
    with pytest.raises(ClientError) as ei:
        create(lam, fname, evil, runtime="python3.11", handler="escape.x")
    assert client_error(ei.value) == ("InvalidParameterValueException", 400)


def test_create_and_update_with_a_10mb_zip(lam, fname):
    # ~10 MB zipped, incompressible: ~13.4 MB of base64 in the JSON body,
    # which the SDK sends without x-amz-content-sha256 (buffered before
    # authentication, past the edge's default 8 MiB).
    size = 10 * 1024 * 1024
    data = random.Random("tarn-e2e-big-zip-1").randbytes(size)
    zipped = zip_dir("python", extra={"data.bin": (data, 0o100644)})
    assert len(zipped) > size
    cfg = create(lam, fname, zipped, runtime="python3.11", handler="app.file_sha256",
                 Timeout=30)
    assert cfg["CodeSize"] == len(zipped)
    assert cfg["CodeSha256"] == base64.b64encode(hashlib.sha256(zipped).digest()).decode()
    _, body = invoke(lam, fname, {"path": "data.bin"})
    assert body == {"size": size, "sha256": hashlib.sha256(data).hexdigest()}

    data2 = random.Random("tarn-e2e-big-zip-2").randbytes(size)
    zipped2 = zip_dir("python", extra={"data.bin": (data2, 0o100644)})
    cfg = lam.update_function_code(FunctionName=fname, ZipFile=zipped2)
    assert cfg["CodeSize"] == len(zipped2)
    _, body = invoke(lam, fname, {"path": "data.bin"})
    assert body == {"size": size, "sha256": hashlib.sha256(data2).hexdigest()}


def test_code_from_s3(tarn, lam, s3, bucket, fname):
    s3.put_object(Bucket=bucket, Key="code/fn.zip", Body=zip_dir("python"))
    create(lam, fname, "python", Code={"S3Bucket": bucket, "S3Key": "code/fn.zip"})
    _, body = invoke(lam, fname, {"from": "s3"})
    assert body["event"] == {"from": "s3"}
    with pytest.raises(ClientError) as ei:
        create(lam, unique_name("nokey"), "python",
               Code={"S3Bucket": bucket, "S3Key": "missing.zip"})
    assert client_error(ei.value) == ("InvalidParameterValueException", 400)


# ---- invocation types ----

def test_dry_run(lam, fname):
    create(lam, fname, "python")
    resp = lam.invoke(FunctionName=fname, InvocationType="DryRun", Payload=b"{}")
    assert resp["StatusCode"] == 204


def test_async_invoke_writes_object(tarn, lam, s3, bucket, fname):
    create(lam, fname, "python", handler="app.s3_put", Timeout=30)
    resp = lam.invoke(FunctionName=fname, InvocationType="Event",
                      Payload=json.dumps({"bucket": bucket, "key": "async/out.json"}).encode())
    assert resp["StatusCode"] == 202

    def landed():
        try:
            return s3.get_object(Bucket=bucket, Key="async/out.json")["Body"].read()
        except ClientError:
            return None
    data = wait_for(landed)
    assert json.loads(data)["key"] == "async/out.json"


def test_async_retries_function_errors(tarn, lam, s3, bucket, fname):
    create(lam, fname, "python", handler="app.s3_flaky", Timeout=30)
    event = {"bucket": bucket, "key": "flaky/done", "succeed_on": 2}
    resp = lam.invoke(FunctionName=fname, InvocationType="Event",
                      Payload=json.dumps(event).encode())
    assert resp["StatusCode"] == 202

    def done():
        try:
            return s3.get_object(Bucket=bucket, Key="flaky/done")["Body"].read()
        except ClientError:
            return None
    assert wait_for(done) == b"done"
    attempts = s3.get_object(Bucket=bucket, Key="flaky/done.attempts")["Body"].read()
    assert attempts == b"2"


def test_payload_limits(lam, fname):
    create(lam, fname, "python")
    big = json.dumps({"x": "a" * (256 * 1024)}).encode()
    with pytest.raises(ClientError) as ei:
        lam.invoke(FunctionName=fname, InvocationType="Event", Payload=big)
    assert client_error(ei.value)[1] == 413
    huge = json.dumps({"x": "a" * (6 * 1024 * 1024)}).encode()
    with pytest.raises(ClientError) as ei:
        lam.invoke(FunctionName=fname, Payload=huge)
    assert client_error(ei.value)[1] == 413
    # Just under the synchronous limit goes through.
    ok = json.dumps({"x": "a" * (1024 * 1024)}).encode()
    resp = lam.invoke(FunctionName=fname, Payload=ok)
    assert resp["StatusCode"] == 200
    assert json.loads(resp["Payload"].read())["event"]["x"] == "a" * (1024 * 1024)


def test_response_too_large(lam, fname):
    create(lam, fname, "python", handler="app.big_response", MemorySize=512, Timeout=30)
    resp, body = invoke(lam, fname)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge"


def test_invalid_json_payload(lam, fname):
    create(lam, fname, "python")
    with pytest.raises(ClientError) as ei:
        lam.invoke(FunctionName=fname, Payload=b"{not json")
    assert client_error(ei.value) == ("InvalidRequestContentException", 400)


# ---- errors ----

def test_unhandled_python_error(lam, fname):
    create(lam, fname, "python", handler="app.fail")
    resp, body = invoke(lam, fname, {"why": "testing"}, LogType="Tail")
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "something went wrong: testing"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]
    assert "[ERROR] ValueError: something went wrong: testing" in log_tail(resp)


def test_handled_error_is_a_response(lam, fname):
    create(lam, fname, "python", handler="app.handled")
    resp, body = invoke(lam, fname)
    assert "FunctionError" not in resp
    assert body == {"statusCode": 500, "errorMessage": "handled in the function"}


def test_unhandled_node_error(lam, fname):
    create(lam, fname, "node", handler="index.fail")
    resp, body = invoke(lam, fname, {"why": "bad"})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "TypeError"
    assert body["errorMessage"] == "node says no: bad"


def test_init_error(lam, fname):
    create(lam, fname, "python", handler="broken_init.handler")
    resp, body = invoke(lam, fname)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "cannot load the model" in body["errorMessage"]


def test_missing_handler(lam, fname):
    create(lam, fname, "python", handler="app.nope")
    resp, body = invoke(lam, fname)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.HandlerNotFound"


def test_runtime_exit(lam, fname):
    create(lam, fname, "python", handler="app.crash")
    resp, body = invoke(lam, fname)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in body["errorMessage"]
    # The next invocation gets a fresh instance and fails the same way.
    resp, body = invoke(lam, fname)
    assert body["errorType"] == "Runtime.ExitError"


def test_timeout(lam, fname):
    create(lam, fname, "python", handler="app.sleep", Timeout=1)
    t0 = time.monotonic()
    resp, body = invoke(lam, fname, {"seconds": 30}, LogType="Tail")
    assert time.monotonic() - t0 < 20
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert resp["ResponseMetadata"]["RequestId"] in body["errorMessage"]
    assert "Task timed out after 1.00 seconds" in log_tail(resp)
    # A timed-out instance is gone; the function still works.
    resp, body = invoke(lam, fname, {"seconds": 0})
    assert "FunctionError" not in resp and body == {"slept": 0}


def test_out_of_memory(lam, fname):
    create(lam, fname, "python", handler="app.oom", MemorySize=128, Timeout=60)
    resp, body = invoke(lam, fname)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.OutOfMemory"
    assert body["errorMessage"].endswith("Runtime exited with error: signal: killed")


# ---- environment, init, logs ----

def test_environment(lam, fname):
    create(lam, fname, "python", handler="app.env", MemorySize=256,
           Environment={"Variables": {"COLOR": "blue", "EMPTY": ""}})
    keys = ["COLOR", "EMPTY", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_LAMBDA_FUNCTION_VERSION", "AWS_REGION", "AWS_DEFAULT_REGION", "_HANDLER",
            "LAMBDA_TASK_ROOT", "AWS_LAMBDA_RUNTIME_API", "TZ", "AWS_LAMBDA_LOG_GROUP_NAME",
            "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL", "LAMBDA_RUNTIME_DIR"]
    _, env = invoke(lam, fname, {"keys": keys})
    assert env["COLOR"] == "blue" and env["EMPTY"] == ""
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == fname
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_REGION"] == "us-east-1" == env["AWS_DEFAULT_REGION"]
    assert env["_HANDLER"] == "app.env"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert env["TZ"] == ":UTC"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/" + fname
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    # An update changes what new instances see.
    lam.update_function_configuration(FunctionName=fname,
                                      Environment={"Variables": {"COLOR": "red"}})
    _, env = invoke(lam, fname, {"keys": ["COLOR", "EMPTY"]})
    assert env == {"COLOR": "red", "EMPTY": None}


def test_node_environment(lam, fname):
    create(lam, fname, "node", handler="index.env",
           Environment={"Variables": {"GREETING": "hello"}})
    _, env = invoke(lam, fname, {"keys": ["GREETING", "AWS_LAMBDA_FUNCTION_NAME"]})
    assert env == {"GREETING": "hello", "AWS_LAMBDA_FUNCTION_NAME": fname}


def test_init_runs_once_across_warm_invocations(lam, fname):
    create(lam, fname, "python")
    results = [invoke(lam, fname, {"i": i})[1] for i in range(5)]
    assert [r["init_count"] for r in results] == [1] * 5
    assert [r["invocations"] for r in results] == [1, 2, 3, 4, 5]
    assert len({r["pid"] for r in results}) == 1


def test_log_tail_has_start_end_report(lam, fname):
    create(lam, fname, "python")
    resp, body = invoke(lam, fname, {"first": True}, LogType="Tail")
    tail = log_tail(resp)
    rid = resp["ResponseMetadata"]["RequestId"]
    assert body["request_id"] == rid
    lines = tail.splitlines()
    assert lines[0] == "START RequestId: %s Version: $LATEST" % rid
    assert 'echo called with {"first": true}' in tail
    assert "END RequestId: %s" % rid in lines
    report = [l for l in lines if l.startswith("REPORT RequestId: " + rid)]
    assert len(report) == 1
    for field in ("Duration: ", "Billed Duration: ", "Memory Size: 128 MB",
                  "Max Memory Used: ", "Init Duration: "):
        assert field in report[0]
    # A warm invocation has no Init Duration.
    resp, _ = invoke(lam, fname, {}, LogType="Tail")
    assert "Init Duration" not in log_tail(resp)
    assert "REPORT RequestId" in log_tail(resp)


def test_function_logs_endpoint(tarn, lam, fname):
    create(lam, fname, "python")
    invoke(lam, fname, {"marker": "logged-here"})
    r = tarn.request("GET", "/2015-03-31/functions/%s/logs" % fname, host=None)
    # Unsigned for s3 scope by default; sign for lambda with botocore.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    import requests
    req = AWSRequest(method="GET", url=tarn.endpoint + "/2015-03-31/functions/%s/logs" % fname)
    SigV4Auth(tarn.credentials(), "lambda", "us-east-1").add_auth(req)
    r = requests.get(req.url, headers=dict(req.headers.items()), timeout=30)
    assert r.status_code == 200
    assert "logged-here" in r.text and "REPORT RequestId" in r.text


# ---- updates, versions, aliases ----

def test_update_code_recycles_instances(lam, fname):
    create(lam, fname, "python")
    _, before = invoke(lam, fname)
    v2 = zip_files({"app.py": ("def echo(e, c):\n    return {'v': 2}\n", 0o100644)})
    cfg = lam.update_function_code(FunctionName=fname, ZipFile=v2)
    assert cfg["CodeSha256"] != lam.get_function(FunctionName=fname)["Configuration"].get("x")
    _, after = invoke(lam, fname)
    assert after == {"v": 2}


def test_versions_and_aliases(lam, fname):
    create(lam, fname, "python", handler="app.env",
           Environment={"Variables": {"STAGE": "one"}})
    v1 = lam.publish_version(FunctionName=fname, Description="first")
    assert v1["Version"] == "1"
    assert v1["FunctionArn"].endswith(":%s:1" % fname)
    # Publishing again without a change returns the same version.
    assert lam.publish_version(FunctionName=fname)["Version"] == "1"
    lam.update_function_configuration(FunctionName=fname,
                                      Environment={"Variables": {"STAGE": "two"}})
    v2 = lam.publish_version(FunctionName=fname)
    assert v2["Version"] == "2"
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=fname)["Versions"]]
    assert versions == ["$LATEST", "1", "2"]

    alias = lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    assert alias["AliasArn"].endswith(":%s:live" % fname)
    resp, env = invoke(lam, fname, {"keys": ["STAGE", "AWS_LAMBDA_FUNCTION_VERSION"]},
                       Qualifier="live")
    assert env == {"STAGE": "one", "AWS_LAMBDA_FUNCTION_VERSION": "1"}
    assert resp["ExecutedVersion"] == "1"
    resp, env = invoke(lam, fname + ":2", {"keys": ["STAGE"]})
    assert env == {"STAGE": "two"} and resp["ExecutedVersion"] == "2"
    resp, env = invoke(lam, fname, {"keys": ["STAGE"]}, Qualifier="$LATEST")
    assert env == {"STAGE": "two"}

    lam.update_alias(FunctionName=fname, Name="live", FunctionVersion="2")
    assert lam.get_alias(FunctionName=fname, Name="live")["FunctionVersion"] == "2"
    _, env = invoke(lam, fname, {"keys": ["STAGE"]}, Qualifier="live")
    assert env == {"STAGE": "two"}
    assert [a["Name"] for a in lam.list_aliases(FunctionName=fname)["Aliases"]] == ["live"]

    with pytest.raises(ClientError) as ei:
        lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    assert client_error(ei.value) == ("ResourceConflictException", 409)
    with pytest.raises(ClientError) as ei:
        lam.delete_function(FunctionName=fname, Qualifier="2")
    assert client_error(ei.value) == ("ResourceConflictException", 409)
    with pytest.raises(ClientError) as ei:
        invoke(lam, fname, Qualifier="nosuch")
    assert client_error(ei.value) == ("ResourceNotFoundException", 404)

    lam.delete_alias(FunctionName=fname, Name="live")
    lam.delete_function(FunctionName=fname, Qualifier="1")
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=fname)["Versions"]]
    assert versions == ["$LATEST", "2"]


def test_revision_id_precondition(lam, fname):
    cfg = create(lam, fname, "python")
    with pytest.raises(ClientError) as ei:
        lam.update_function_configuration(FunctionName=fname, Timeout=5, RevisionId="stale")
    assert client_error(ei.value) == ("PreconditionFailedException", 412)
    out = lam.update_function_configuration(FunctionName=fname, Timeout=5,
                                            RevisionId=cfg["RevisionId"])
    assert out["Timeout"] == 5 and out["RevisionId"] != cfg["RevisionId"]


# ---- concurrency ----

def test_reserved_concurrency_throttles(lam, fname):
    create(lam, fname, "python", handler="app.sleep", Timeout=30)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=1)
    assert lam.get_function_concurrency(FunctionName=fname)["ReservedConcurrentExecutions"] == 1
    assert lam.get_function(FunctionName=fname)["Concurrency"]["ReservedConcurrentExecutions"] == 1
    results = {}

    def slow():
        # Retried until admitted: the probes below may hold the slot first.
        while True:
            try:
                results["slow"] = invoke(lam, fname, {"seconds": 3})
                return
            except ClientError as e:
                if client_error(e)[1] != 429:
                    raise

    t = threading.Thread(target=slow)
    t.start()
    # Wait until the slow invocation is admitted: a second one must be refused.
    deadline = time.monotonic() + 30
    throttled = None
    while time.monotonic() < deadline and t.is_alive():
        try:
            invoke(lam, fname, {"seconds": 0})
        except ClientError as e:
            throttled = e
            break
        time.sleep(0.05)
    t.join()
    assert throttled is not None, "no invocation was throttled"
    assert client_error(throttled) == ("TooManyRequestsException", 429)
    assert throttled.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert results["slow"][1] == {"slept": 3}

    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as ei:
        invoke(lam, fname, {"seconds": 0})
    assert client_error(ei.value) == ("TooManyRequestsException", 429)
    lam.delete_function_concurrency(FunctionName=fname)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=fname)
    _, body = invoke(lam, fname, {"seconds": 0})
    assert body == {"slept": 0}


def test_concurrent_invocations_use_separate_instances(lam, fname):
    create(lam, fname, "python", handler="app.sleep", Timeout=30)
    out = []

    def one():
        out.append(invoke(lam, fname, {"seconds": 1})[1])

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [{"slept": 1}] * 3


def test_waiting_invocations_hold_no_threads(tarn, s3, bucket, fname):
    # 64 synchronous invocations wait at once, twice the HTTP edge's 32
    # threads; while they all wait, an S3 request from another thread is
    # still answered. The functions wait for a release object (polled
    # through a presigned URL), so no invocation can end before the test
    # releases them, however slowly 64 sandboxes start.
    n = 64
    lam = lu.lambda_client(tarn, max_pool_connections=n + 8)
    create(lam, fname, "python", handler="app.wait_release", Timeout=60)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=n)
    url = urllib.parse.urlsplit(tarn.presign("GET", "/%s/release" % bucket, 300))
    event = {"path": url.path + "?" + url.query, "host": url.netloc, "timeout": 55}
    results = [None] * n

    def one(i):
        resp, body = invoke(lam, fname, event)
        results[i] = (resp["StatusCode"], resp.get("FunctionError"), body)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: lu.concurrent_executions(tarn) >= n, interval=0.05)
        answered = []
        t = threading.Thread(target=lambda: answered.append(s3.list_buckets()))
        t.start()
        t.join(timeout=20)
        assert answered, "an S3 request waited behind %d waiting invocations" % n
        assert results == [None] * n, "an invocation ended before the release"
    finally:
        s3.put_object(Bucket=bucket, Key="release", Body=b"go")
        for t in threads:
            t.join()
    assert results == [(200, None, {"released": "go"})] * n


# ---- tarn's own APIs from inside a function ----

def test_function_reads_and_writes_s3(lam, s3, bucket, fname):
    s3.put_object(Bucket=bucket, Key="in.txt", Body=b"hello from s3")
    create(lam, fname, "python", handler="app.s3", Timeout=30, MemorySize=256)
    resp, body = invoke(lam, fname, {"bucket": bucket, "src": "in.txt", "dst": "out.txt"})
    assert "FunctionError" not in resp, body
    assert body == {"copied": 13}
    assert s3.get_object(Bucket=bucket, Key="out.txt")["Body"].read() == b"HELLO FROM S3"


# ---- the AWS CLI ----

def test_aws_cli_create_invoke(tarn, tmp_path, fname):
    zpath = tmp_path / "fn.zip"
    zpath.write_bytes(zip_dir("python"))
    r = tarn.aws_ok("lambda", "create-function", "--function-name", fname,
                    "--runtime", "python3.12", "--handler", "app.echo",
                    "--role", "arn:aws:iam::000000000000:role/x",
                    "--zip-file", "fileb://%s" % zpath)
    assert json.loads(r.stdout)["FunctionName"] == fname
    out = tmp_path / "out.json"
    r = tarn.aws_ok("lambda", "invoke", "--function-name", fname,
                    "--cli-binary-format", "raw-in-base64-out",
                    "--payload", '{"cli": true}', "--log-type", "Tail", str(out))
    meta = json.loads(r.stdout)
    assert meta["StatusCode"] == 200
    assert "START RequestId" in base64.b64decode(meta["LogResult"]).decode()
    assert json.loads(out.read_text())["event"] == {"cli": True}
    r = tarn.aws_ok("lambda", "list-functions")
    assert fname in [f["FunctionName"] for f in json.loads(r.stdout)["Functions"]]
    tarn.aws_ok("lambda", "delete-function", "--function-name", fname)
