"""tests/e2e/test_lambda_ruby.py -- Ruby functions (ruby3.2/3.3/3.4, run on
the host's Ruby by tarn's client in runtimes/ruby) through the Lambda API
with boto3: invoke with Lambda's context object, class-method handlers,
errors as Function<Class> / Init<Class>, time-outs, the environment, warm
reuse, and gems and libraries from a layer on Lambda's paths.
"""
import base64
import json
import shutil
import time

import pytest
from botocore.exceptions import ClientError

import lambda_util as lu
from lambda_util import create, invoke, log_tail, unique_name, zip_dir, zip_files

pytestmark = pytest.mark.skipif(shutil.which("ruby") is None, reason="no ruby on this host")


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


@pytest.fixture
def fname(request):
    return unique_name(request.node.name)


def make(lam, name, handler="app.echo", runtime="ruby3.3", **kw):
    return create(lam, name, zip_dir("ruby"), handler=handler, runtime=runtime, **kw)


def test_invoke_with_context(lam, fname):
    cfg = make(lam, fname, Timeout=5)
    assert cfg["Runtime"] == "ruby3.3" and cfg["Handler"] == "app.echo"
    cc = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    before_ms = time.time() * 1000
    resp, body = invoke(lam, fname, {"hello": "world", "n": [1, 2.5, None]}, ClientContext=cc)
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    assert body["event"] == {"hello": "world", "n": [1, 2.5, None]}
    assert body["request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert body["function_name"] == fname
    assert body["function_version"] == "$LATEST"
    assert body["memory"] == "128"
    assert body["arn"] == cfg["FunctionArn"]
    assert 0 < body["remaining_ms"] <= 5000
    assert body["deadline_ms"] > before_ms
    assert body["log_group"] == "/aws/lambda/" + fname
    assert "[$LATEST]" in body["log_stream"]
    assert body["client_context"] == {"custom": {"k": "v"}}
    assert body["trace_id"].startswith("Root=1-")
    assert body["greeting"] == "hello, ruby"
    # Warm: the same instance, its top level ran once.
    _, again = invoke(lam, fname, {})
    assert again["init_count"] == 1 and again["invocations"] == 2


@pytest.mark.parametrize("runtime", ["ruby3.2", "ruby3.4"])
def test_lambda_ruby_names(lam, fname, runtime):
    make(lam, fname, runtime=runtime, handler="app.nothing")
    resp, body = invoke(lam, fname, {})
    assert "FunctionError" not in resp and body is None
    assert lam.get_function_configuration(FunctionName=fname)["Runtime"] == runtime


@pytest.mark.parametrize("runtime", ["ruby2.7", "ruby3.1", "ruby", "ruby3.x"])
def test_other_ruby_names_refused(lam, fname, runtime):
    with pytest.raises(ClientError) as ei:
        make(lam, fname, runtime=runtime)
    assert ei.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_class_method_handler(lam, fname):
    make(lam, fname, handler="app.Shop::Orders.count")
    resp, body = invoke(lam, fname, {"items": ["a", "b", "c"]})
    assert body == {"count": 3, "request_id": resp["ResponseMetadata"]["RequestId"]}


def test_unhandled_error(lam, fname):
    make(lam, fname, handler="app.fail")
    resp, body = invoke(lam, fname, {"why": "testing"}, LogType="Tail")
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function<ArgumentError>"
    assert body["errorMessage"] == "something went wrong: testing"
    assert any("app.rb" in line for line in body["stackTrace"])
    assert "Error raised from handler method" in log_tail(resp)
    # The instance survives its handler's error.
    lam.update_function_configuration(FunctionName=fname, Handler="app.echo")
    _, body = invoke(lam, fname, {"x": 1})
    assert body["event"] == {"x": 1}


def test_missing_method(lam, fname):
    make(lam, fname, handler="app.nope")
    resp, body = invoke(lam, fname)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function<NoMethodError>"
    assert "nope" in body["errorMessage"]


def test_init_error(lam, fname):
    make(lam, fname, handler="broken_init.handler")
    resp, body = invoke(lam, fname)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Init<IOError>"
    assert body["errorMessage"] == "cannot load the model"
    make(lam, fname + "-nofile", handler="missing.handler")
    resp, body = invoke(lam, fname + "-nofile")
    assert body["errorType"] == "Init<LoadError>"


def test_timeout(lam, fname):
    make(lam, fname, handler="app.sleep_for", Timeout=1)
    t0 = time.monotonic()
    resp, body = invoke(lam, fname, {"seconds": 30}, LogType="Tail")
    assert time.monotonic() - t0 < 20
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorMessage"].endswith("Task timed out after 1.00 seconds")
    resp, body = invoke(lam, fname, {"seconds": 0})
    assert "FunctionError" not in resp and body == {"slept": 0}


def test_environment(lam, fname):
    make(lam, fname, handler="app.env", MemorySize=256,
         Environment={"Variables": {"COLOR": "blue", "EMPTY": ""}})
    keys = ["COLOR", "EMPTY", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_LAMBDA_FUNCTION_VERSION", "AWS_REGION", "_HANDLER", "LAMBDA_TASK_ROOT",
            "AWS_LAMBDA_RUNTIME_API", "AWS_EXECUTION_ENV", "TZ", "GEM_PATH", "RUBYLIB",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"]
    _, env = invoke(lam, fname, {"keys": keys})
    assert env["COLOR"] == "blue" and env["EMPTY"] == ""
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == fname
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["_HANDLER"] == "app.env"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_ruby3.3"
    assert env["TZ"] == ":UTC"
    assert env["GEM_PATH"].split(":")[:2] == ["/var/task/vendor/bundle/ruby/3.3.0",
                                              "/opt/ruby/gems/3.3.0"]
    assert env["RUBYLIB"] == "/var/task:/opt/ruby/lib"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    # A variable of the function's own replaces tarn's.
    lam.update_function_configuration(FunctionName=fname,
                                      Environment={"Variables": {"RUBYLIB": "/var/task/x"}})
    _, env = invoke(lam, fname, {"keys": ["RUBYLIB", "COLOR"]})
    assert env == {"RUBYLIB": "/var/task/x", "COLOR": None}


GEMSPEC = """Gem::Specification.new do |s|
  s.name = "tarnfoo"
  s.version = "1.0.0"
  s.summary = "a gem in a layer"
  s.authors = ["tarn"]
  s.files = ["lib/tarnfoo.rb"]
  s.require_paths = ["lib"]
end
"""


def test_layer_gems_and_libraries(lam, fname):
    layer = zip_files({
        "ruby/lib/tarn_layer_lib.rb": ("module TarnLayerLib\nend\n", 0o100644),
        "ruby/gems/3.3.0/specifications/tarnfoo-1.0.0.gemspec": (GEMSPEC, 0o100644),
        "ruby/gems/3.3.0/gems/tarnfoo-1.0.0/lib/tarnfoo.rb":
            ("module Tarnfoo\n  VERSION = \"1.0.0\"\nend\n", 0o100644),
    })
    arn = lam.publish_layer_version(LayerName=fname, Content={"ZipFile": layer},
                                    CompatibleRuntimes=["ruby3.3"])["LayerVersionArn"]
    make(lam, fname, handler="app.layers", Layers=[arn])
    resp, body = invoke(lam, fname, {})
    assert "FunctionError" not in resp, body
    assert body["lib"] == "TarnLayerLib" and body["gem"] == "1.0.0"
