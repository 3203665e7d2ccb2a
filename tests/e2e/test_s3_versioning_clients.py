"""tests/e2e/test_s3_versioning_clients.py -- S3 versioning with Debian's
AWS CLI (s3api) and the AWS SDK for JavaScript v3 (js/s3_versions.mjs),
read back with boto3: the clients agree on version ids and contents. Also
ACLs, object ownership and object lock through the JavaScript SDK
(js/s3_acl_lock.mjs).
"""
import json
import os
import subprocess
import urllib.request

import pytest

from tarnlib import clean_env

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")


def test_awscli_versioning(tarn, s3, bucket, tmp_path):
    tarn.aws_ok("s3api", "put-bucket-versioning", "--bucket", bucket,
                "--versioning-configuration", "Status=Enabled")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    src = tmp_path / "f"
    vids = []
    for text in ("one", "two"):
        src.write_text(text)
        r = tarn.aws_ok("s3api", "put-object", "--bucket", bucket, "--key", "cli/k",
                        "--body", str(src))
        vids.append(json.loads(r.stdout)["VersionId"])
    out = tmp_path / "out"
    r = tarn.aws_ok("s3api", "get-object", "--bucket", bucket, "--key", "cli/k",
                    "--version-id", vids[0], str(out))
    assert out.read_text() == "one" and json.loads(r.stdout)["VersionId"] == vids[0]
    r = tarn.aws_ok("s3api", "delete-object", "--bucket", bucket, "--key", "cli/k")
    marker = json.loads(r.stdout)
    assert marker["DeleteMarker"] is True
    r = tarn.aws_ok("s3api", "list-object-versions", "--bucket", bucket)
    doc = json.loads(r.stdout)
    assert [v["VersionId"] for v in doc["Versions"]] == list(reversed(vids))
    assert [(m["VersionId"], m["IsLatest"]) for m in doc["DeleteMarkers"]] == [
        (marker["VersionId"], True)]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="cli/")
    r = tarn.aws_ok("s3api", "delete-object", "--bucket", bucket, "--key", "cli/k",
                    "--version-id", marker["VersionId"])
    assert s3.get_object(Bucket=bucket, Key="cli/k")["Body"].read() == b"two"


def test_js_sdk_versioning(tarn, s3, bucket_name):
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", "client-s3")):
        pytest.fail("the JavaScript SDK is not installed: run `npm install` in tests/e2e/js "
                    "(scripts/install-deps.sh does)")
    env = clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_BUCKET=bucket_name,
               AWS_ACCESS_KEY_ID=tarn.access_key, AWS_SECRET_ACCESS_KEY=tarn.secret_key,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run(["node", "s3_versions.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, "node s3_versions.mjs failed\nstdout:\n%s\nstderr:\n%s" % (
        r.stdout[-3000:], r.stderr[-3000:])
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["versions"] == [[got["v2"], False, 6], [got["v1"], False, 5]]
    assert got["markers"] == [[got["marker"], True]]
    b = s3.get_object(Bucket=bucket_name, Key="js/versioned.txt", VersionId=got["v1"])
    assert b["Body"].read() == b"first"


def test_js_sdk_acl_and_object_lock(tarn, s3, bucket_name):
    """ACLs, ownership and object lock through the JavaScript SDK v3."""
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", "client-s3")):
        pytest.fail("the JavaScript SDK is not installed: run `npm install` in tests/e2e/js "
                    "(scripts/install-deps.sh does)")
    env = clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_BUCKET=bucket_name,
               AWS_ACCESS_KEY_ID=tarn.access_key, AWS_SECRET_ACCESS_KEY=tarn.secret_key,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run(["node", "s3_acl_lock.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, "node s3_acl_lock.mjs failed\nstdout:\n%s\nstderr:\n%s" % (
        r.stdout[-3000:], r.stderr[-3000:])
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert ["http://acs.amazonaws.com/groups/global/AllUsers", "READ"] in got["grants"]
    assert got["enforcedRefusal"] == "AccessControlListNotSupported"
    assert got["mode"] == "GOVERNANCE"
    assert got["deleteRefusal"] == "AccessDenied"
    assert got["hold"] == "ON"
    assert got["heldRefusal"] == "AccessDenied"
    # the version is gone once the hold is off and the bypass is sent
    versions = s3.list_object_versions(Bucket=bucket_name + "-lock").get("Versions", [])
    assert [v["VersionId"] for v in versions if v["Key"] == "k"] == []
    # anyone may read the public-read object, without signing
    with urllib.request.urlopen("%s/%s-acl/pub.txt" % (tarn.endpoint, bucket_name)) as resp:
        assert resp.read() == b"hi"
