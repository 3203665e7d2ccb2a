"""tests/e2e/test_sqs_js.py -- SQS's JSON protocol through the AWS SDK for
JavaScript v3 (js-sqs/sqs_sdk.mjs, run with node): queues, messages with
attributes (the SDK checks the body MD5s; the attribute MD5s are checked
here), batches, visibility, attributes and the error names it raises.
"""
import json
import os
import subprocess

import pytest

from queue_util import md5_hex, md5_of_attributes, unique
from tarnlib import clean_env

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js-sqs")


@pytest.fixture(scope="module")
def node():
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", "client-sqs")):
        pytest.fail("the JavaScript SDK for SQS is not installed: run `npm install` in "
                    "tests/e2e/js-sqs (scripts/install-deps.sh does)")
    return "node"


def test_js_sdk_json_protocol(tarn, node):
    name = unique("js")
    env = clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_QUEUE=name,
               AWS_ACCESS_KEY_ID=tarn.access_key, AWS_SECRET_ACCESS_KEY=tarn.secret_key,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run([node, "sqs_sdk.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, "node sqs_sdk.mjs failed\nstdout:\n%s\nstderr:\n%s" % (
        r.stdout[-3000:], r.stderr[-3000:])
    steps = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            o = json.loads(line)
            steps[o["step"]] = o
    url = "%s/000000000000/%s" % (tarn.endpoint, name)
    assert steps["create"]["QueueUrl"] == url
    assert steps["url"]["QueueUrl"] == url
    attrs = {"color": {"DataType": "String", "StringValue": "blue"},
             "n": {"DataType": "Number", "StringValue": "7"},
             "bin": {"DataType": "Binary", "BinaryValue": bytes([0, 1, 254, 255])}}
    assert steps["send"]["MD5OfMessageBody"] == md5_hex("hello from js \u2603")
    assert steps["send"]["MD5OfMessageAttributes"] == md5_of_attributes(attrs)
    assert steps["batch"] == {"step": "batch", "ok": ["e1", "e2", "e3"], "failed": 0}
    rec = steps["receive"]
    assert rec["count"] == 4
    assert rec["bodies"] == sorted(["hello from js \u2603", "batch 1", "batch 2", "batch 3"])
    assert rec["attrs"] == {"color": "blue", "n": "7", "bin": [0, 1, 254, 255]}
    assert rec["MD5OfMessageAttributes"] == md5_of_attributes(attrs)
    assert rec["receiveCount"] == "1"
    assert steps["delete"] == {"step": "delete", "ok": 3, "failed": 0}
    assert steps["attributes"]["visible"] == "0" and steps["attributes"]["inflight"] == "0"
    assert steps["attributes"]["vt"] == "30"
    assert steps["list"]["urls"] == [url]
    assert steps["missing"]["error"] == "QueueDoesNotExist"
    assert steps["missing"]["status"] == 400
    assert steps["invalid"]["error"] is not None and steps["invalid"]["status"] == 400
    assert "done" in steps
