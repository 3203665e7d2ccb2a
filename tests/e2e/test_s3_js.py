"""tests/e2e/test_s3_js.py -- tarn through the AWS SDK for JavaScript v3
(js/s3_sdk.mjs, run with node), then the objects it wrote read back with
boto3: two different clients must agree on every byte.
"""
import hashlib
import json
import os
import subprocess

import pytest

from tarnlib import clean_env

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")


@pytest.fixture(scope="module")
def node():
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", "client-s3")):
        pytest.fail("the JavaScript SDK is not installed: run `npm install` in tests/e2e/js "
                    "(scripts/install-deps.sh does)")
    return "node"


def test_js_sdk(tarn, s3, bucket_name, node):
    env = clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_BUCKET=bucket_name,
               AWS_ACCESS_KEY_ID=tarn.access_key, AWS_SECRET_ACCESS_KEY=tarn.secret_key,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run([node, "s3_sdk.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, "node s3_sdk.mjs failed\nstdout:\n%s\nstderr:\n%s" % (
        r.stdout[-3000:], r.stderr[-3000:])
    written = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [w["key"] for w in written] == ["js/buffer.bin", "js/stream.bin", "js/upload.bin"]
    for w in written:
        got = s3.get_object(Bucket=bucket_name, Key=w["key"])
        data = got["Body"].read()
        assert len(data) == w["size"] and got["ContentLength"] == w["size"]
        assert hashlib.sha256(data).hexdigest() == w["sha256"], w["key"]
