"""tests/e2e/test_lambda_java.py -- Java functions (java17/java21, run on the
host's JDK 17 by tarn's client in runtimes/java) through the Lambda API with
boto3: a RequestHandler with Lambda's Context, classes decoded from and
encoded to JSON, a stream handler, `Class::method` handlers, errors, init
errors, time-outs and the environment.

The functions are compiled here with the host's javac against the shape of
aws-lambda-java-core's interfaces (functions/java/core, carried in the zip's
lib/ as a jar, as a function's build would ship the library).
"""
import base64
import io
import json
import os
import shutil
import subprocess
import zipfile

import pytest
from botocore.exceptions import ClientError

import lambda_util as lu
from lambda_util import create, invoke, log_tail, unique_name

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="no JDK on this host")

SRC = os.path.join(lu.FUNCTIONS, "java")


def _javac(out, sources, classpath=None):
    cmd = ["javac", "-nowarn", "--release", "17", "-d", out]
    if classpath:
        cmd += ["-cp", classpath]
    subprocess.run(cmd + sources, check=True, timeout=300)


def _zip_dir(root, z, prefix=""):
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            path = os.path.join(dirpath, f)
            z.write(path, prefix + os.path.relpath(path, root))


@pytest.fixture(scope="module")
def code(tmp_path_factory):
    """The functions' zip: their classes at the top, the interfaces in lib/."""
    tmp = tmp_path_factory.mktemp("java")
    core, classes = str(tmp / "core"), str(tmp / "classes")
    walk = lambda d: [os.path.join(p, f) for p, _, fs in os.walk(d) for f in fs
                      if f.endswith(".java")]
    _javac(core, walk(os.path.join(SRC, "core")))
    _javac(classes, walk(os.path.join(SRC, "src")), classpath=core)
    jar = io.BytesIO()
    with zipfile.ZipFile(jar, "w") as z:
        _zip_dir(core, z)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        _zip_dir(classes, z)
        z.writestr("lib/aws-lambda-java-core.jar", jar.getvalue())
    return out.getvalue()


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


@pytest.fixture
def fname(request):
    return unique_name(request.node.name)


def make(lam, code, name, handler="example.Echo::handleRequest", runtime="java17", **kw):
    kw.setdefault("MemorySize", 512)
    kw.setdefault("Timeout", 30)
    return create(lam, name, code, handler=handler, runtime=runtime, **kw)


def test_request_handler_with_context(lam, code, fname):
    cfg = make(lam, code, fname)
    cc = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    resp, body = invoke(lam, fname, {"hello": "world", "n": [1, 2.5, None], "big": 2 ** 62},
                        ClientContext=cc, LogType="Tail")
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, body
    assert body["event"] == {"hello": "world", "n": [1, 2.5, None], "big": 2 ** 62}
    assert body["request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert body["function_name"] == fname
    assert body["function_version"] == "$LATEST"
    assert body["memory"] == 512
    assert body["arn"] == cfg["FunctionArn"]
    assert 0 < body["remaining_ms"] <= 30000
    assert body["log_group"] == "/aws/lambda/" + fname
    assert "[$LATEST]" in body["log_stream"]
    assert body["custom"] == {"k": "v"}
    assert "echo called" in log_tail(resp)
    # Warm: one instance of the handler class, made once.
    _, again = invoke(lam, fname, {})
    assert again["inits"] == 1 and again["invocations"] == 2


def test_java21_name_and_class_only_handler(lam, code, fname):
    make(lam, code, fname, runtime="java21", handler="example.Echo")
    resp, body = invoke(lam, fname, {"x": 1})
    assert "FunctionError" not in resp and body["event"] == {"x": 1}
    for bad in ("java8", "java11.x", "java"):
        with pytest.raises(ClientError) as ei:
            make(lam, code, fname + "-" + bad.replace(".", ""), runtime=bad)
        assert ei.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_classes_in_and_out(lam, code, fname):
    make(lam, code, fname, handler="example.Orders")
    order = {"id": "o-1", "items": [{"sku": "a", "quantity": 2, "price": 30.5},
                                    {"sku": "b", "quantity": 1, "price": 50}]}
    resp, body = invoke(lam, fname, order)
    assert body == {"orderId": "o-1", "total": 111.0, "large": True}


def test_stream_handler(lam, code, fname):
    make(lam, code, fname, handler="example.Upper::handleRequest")
    resp = lam.invoke(FunctionName=fname, Payload=b'"quiet please"')
    assert resp["Payload"].read() == b'"QUIET PLEASE"'


def test_unhandled_error(lam, code, fname):
    make(lam, code, fname, handler="example.Echo::fail")
    resp, body = invoke(lam, fname, {"why": "testing"})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "java.lang.IllegalStateException"
    assert body["errorMessage"] == "something went wrong: testing"
    assert body["stackTrace"][0].startswith("example.Echo.fail(Echo.java:")


def test_init_errors(lam, code, fname):
    make(lam, code, fname, handler="example.BrokenInit::handleRequest")
    resp, body = invoke(lam, fname, {})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "java.lang.IllegalStateException"
    assert body["errorMessage"] == "cannot load the model"
    make(lam, code, fname + "-nc", handler="example.Missing::handleRequest")
    _, body = invoke(lam, fname + "-nc", {})
    assert body["errorType"] == "java.lang.ClassNotFoundException"
    make(lam, code, fname + "-nm", handler="example.Echo::nope")
    _, body = invoke(lam, fname + "-nm", {})
    assert body["errorType"] == "java.lang.NoSuchMethodException"


def test_timeout(lam, code, fname):
    make(lam, code, fname, handler="example.Echo::sleep", Timeout=2)
    resp, body = invoke(lam, fname, {"seconds": 60})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorMessage"].endswith("Task timed out after 2.00 seconds")
    resp, body = invoke(lam, fname, {"seconds": 0})
    assert "FunctionError" not in resp and body == "slept"


def test_environment(lam, code, fname):
    make(lam, code, fname, handler="example.Echo::env",
         Environment={"Variables": {"COLOR": "blue"}})
    keys = ["COLOR", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_EXECUTION_ENV", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_RUNTIME_API",
            "AWS_REGION", "TZ"]
    _, env = invoke(lam, fname, {"keys": keys})
    assert env == {"COLOR": "blue", "AWS_LAMBDA_FUNCTION_NAME": fname,
                   "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
                   "AWS_EXECUTION_ENV": "AWS_Lambda_java17", "_HANDLER": "example.Echo::env",
                   "LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
                   "AWS_REGION": "us-east-1", "TZ": ":UTC"}
