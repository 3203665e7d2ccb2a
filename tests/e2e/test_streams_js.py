"""tests/e2e/test_streams_js.py -- Kinesis Data Streams and Firehose through
the AWS SDK for JavaScript v3 (js-streams/streams_sdk.mjs, run with node):
a stream of two shards, records put one by one and in a batch (binary data
kept byte for byte, hashed to both shards), read back from every shard, the
error names the SDK raises; a delivery stream whose records arrive in the
bucket in order.
"""
import json
import os
import subprocess

import pytest

from queue_util import unique
from tarnlib import clean_env, list_all_keys
from test_events import wait_for

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js-streams")


@pytest.fixture(scope="module")
def node():
    for pkg in ("client-kinesis", "client-firehose"):
        if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", pkg)):
            pytest.fail("the JavaScript SDK for Kinesis and Firehose is not installed: run "
                        "`npm install` in tests/e2e/js-streams (scripts/install-deps.sh does)")
    return "node"


def test_js_sdk_kinesis_and_firehose(tarn, node):
    name = unique("js")
    bucket = unique("js-streams")
    s3 = tarn.client()
    s3.create_bucket(Bucket=bucket)
    env = clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_STREAM=name, TARN_BUCKET=bucket,
               AWS_ACCESS_KEY_ID=tarn.access_key, AWS_SECRET_ACCESS_KEY=tarn.secret_key,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run([node, "streams_sdk.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, "node streams_sdk.mjs failed\nstdout:\n%s\nstderr:\n%s" % (
        r.stdout[-3000:], r.stderr[-3000:])
    steps = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            o = json.loads(line)
            steps[o["step"]] = o
    assert steps["create"]["status"] == "ACTIVE"
    assert steps["put"]["shard"].startswith("shardId-")
    assert steps["puts"]["failed"] == 0 and steps["puts"]["n"] == 6
    got = steps["get"]
    assert got["shards"] == 2
    want = [{"pk": "pk-%d" % i, "data": [i, 0, 255, 10]} for i in range(6)] + \
        [{"pk": "pk-a", "data": list("first \u2603".encode())}]
    assert got["records"] == want
    assert steps["missing"] == {"step": "missing", "error": "ResourceNotFoundException",
                                "status": 400}
    assert steps["fh-create"]["status"] == "ACTIVE"
    assert steps["fh-put"] == {"step": "fh-put", "id": "string", "failed": 0, "ids": 2}
    assert steps["fh-empty"]["error"] == "InvalidArgumentException"

    def delivered():
        keys = list_all_keys(s3, bucket, Prefix="js/")
        body = b"".join(s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in sorted(keys))
        return body if body.count(b"\n") >= 3 else None
    assert wait_for(delivered, timeout=120) == b"one\ntwo\nthree\n"
