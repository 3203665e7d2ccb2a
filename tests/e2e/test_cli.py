"""tests/e2e/test_cli.py -- the `tarn` command line around the server
(DESIGN.md §3): version, generated credentials, `tarn env`, the request log.
"""
import os
import re
import stat
import subprocess
import time

import tarnlib
from tarnlib import clean_env, read_credentials_file


def run_tarn(*args, env=None):
    return subprocess.run([tarnlib.TARN_BIN] + list(args), capture_output=True, text=True,
                          env=env or clean_env(), timeout=60, stdin=subprocess.DEVNULL)


def test_version():
    r = run_tarn("version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and "tarn" in lines[0].lower() and re.search(r"\d", lines[0]), r.stdout


def test_unknown_subcommand_fails():
    r = run_tarn("no-such-command")
    assert r.returncode != 0
    assert r.stderr.strip()


def test_generated_credentials_and_env(tarn_factory):
    srv = tarn_factory(env_credentials=False)
    path = os.path.join(srv.data, "credentials")
    assert os.path.isfile(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key, secret = read_credentials_file(path)
    assert len(key) >= 16 and len(secret) >= 30
    # the server said where they are
    with open(srv.stdout_path) as f1, open(srv.stderr_path) as f2:
        assert path in f1.read() + f2.read()

    # the generated keys work, and nothing else does
    srv.access_key, srv.secret_key = key, secret
    s3 = srv.client()
    s3.create_bucket(Bucket="made-with-generated-keys")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["made-with-generated-keys"]

    r = run_tarn("env", "--data", srv.data)
    assert r.returncode == 0, r.stderr
    exports = dict(re.findall(r"^export (AWS_[A-Z_]+)=['\"]?([^'\"\n]*)['\"]?$", r.stdout, re.M))
    assert exports["AWS_ACCESS_KEY_ID"] == key
    assert exports["AWS_SECRET_ACCESS_KEY"] == secret
    assert exports["AWS_DEFAULT_REGION"] == "us-east-1"
    assert re.match(r"^http://[^/]+:\d+$", exports["AWS_ENDPOINT_URL"]), exports

    # a restart reuses the file rather than making new keys
    srv.restart()
    assert read_credentials_file(path) == (key, secret)
    assert [b["Name"] for b in srv.client().list_buckets()["Buckets"]] == ["made-with-generated-keys"]


def test_request_log_one_line_per_request(tarn_factory):
    srv = tarn_factory()
    s3 = srv.client()
    s3.create_bucket(Bucket="logged")
    token = "log-token-%d" % os.getpid()
    s3.put_object(Bucket="logged", Key=token, Body=b"x")
    for _ in range(3):
        s3.get_object(Bucket="logged", Key=token)["Body"].read()
    # the log line may be written just after the answer: wait for it (bounded)
    deadline = time.monotonic() + 20
    while True:
        with open(srv.stderr_path, errors="replace") as f:
            lines = [line for line in f if token in line]
        if len(lines) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 4, lines
    assert sum("PUT" in line for line in lines) == 1
    assert sum("GET" in line for line in lines) == 3
