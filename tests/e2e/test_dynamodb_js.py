"""tests/e2e/test_dynamodb_js.py -- DynamoDB through the AWS SDK for
JavaScript v3 and its DocumentClient (js-dynamodb/ddb_sdk.mjs, run with
node): native JavaScript values marshalled to typed attributes and back
(numbers exact, sets, nested maps and lists), updates, conditions and the
error names the SDK raises, batches, a cancelled transaction's reasons,
queries and paged scans.
"""
import json
import os
import subprocess

import pytest

from queue_util import unique
from tarnlib import clean_env

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js-dynamodb")


@pytest.fixture(scope="module")
def node():
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", "lib-dynamodb")):
        pytest.fail("the JavaScript SDK for DynamoDB is not installed: run `npm install` in "
                    "tests/e2e/js-dynamodb (scripts/install-deps.sh does)")
    return "node"


def test_js_document_client(tarn, node):
    env = clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_TABLE=unique("js"),
               AWS_ACCESS_KEY_ID=tarn.access_key, AWS_SECRET_ACCESS_KEY=tarn.secret_key,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run([node, "ddb_sdk.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, "node ddb_sdk.mjs failed\nstdout:\n%s\nstderr:\n%s" % (
        r.stdout[-3000:], r.stderr[-3000:])
    steps = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            o = json.loads(line)
            steps[o.pop("step")] = o
    assert steps["create"] == {"status": "ACTIVE"}
    assert steps["get"] == {"price": 9.99, "tags": ["a", "b"], "nested": {"list": [1, "two", None, True]}}
    assert steps["update"] == {"price": 10, "count": 1}
    assert steps["condition"] == {"error": "ConditionalCheckFailedException"}
    assert steps["query"] == {"ts": [4, 2], "count": 2, "scanned": 4}
    assert steps["batchget"] == {"n": 1}
    assert steps["transact"] == {"error": "TransactionCanceledException", "reasons": ["None", "ConditionalCheckFailed"]}
    assert steps["scan"] == {"n": 5}
    assert steps["delete"] == {"item": None}
