"""tests/e2e/test_fn_cli.py -- `tarn fn` (DESIGN.md §3, §5) as a user types
it against a real server: deploy a folder (create, then update), invoke it
(argument, stdin, a function error), ls, logs (and -f), rm; credentials from
--data; the one-line errors and exit codes.
"""
import json
import os
import queue
import shutil
import subprocess
import threading
import time

import pytest

import lambda_util as lu
import tarnlib
from tarnlib import clean_env

MAIN_PY = '''\
import os
import subprocess

from lib.greet import greet

print("init ran")


def handler(event, context):
    print("handling", event.get("name"))
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tool.sh")
    return {
        "greeting": greet(event.get("name", "world")),
        "exec": os.access(tool, os.X_OK),
        "tool": subprocess.run([tool], capture_output=True, text=True).stdout.strip(),
        "env": os.environ.get("GREETING_ENV"),
    }
'''


def fn_env(srv, **extra):
    env = clean_env()
    env["TARN_ENDPOINT"] = srv.endpoint
    env["TARN_ACCESS_KEY"] = srv.access_key
    env["TARN_SECRET_KEY"] = srv.secret_key
    env.update(extra)
    return env


def tarn_fn(srv, *args, input=None, env=None):
    return subprocess.run([tarnlib.TARN_BIN, "fn"] + list(args), capture_output=True,
                          text=True, env=env or fn_env(srv), timeout=120, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL)


def one_error_line(r):
    assert r.returncode != 0, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture
def app_dir(tmp_path):
    d = tmp_path / "hello"
    (d / "lib").mkdir(parents=True)
    (d / "main.py").write_text(MAIN_PY)
    (d / "lib" / "greet.py").write_text("def greet(name):\n    return 'hello, ' + name\n")
    tool = d / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool ran\n")
    tool.chmod(0o755)
    return d


@pytest.fixture
def name(request):
    return lu.unique_name(request.node.name)


def deploy(srv, name, folder, *extra):
    r = tarn_fn(srv, "deploy", name, str(folder), "--runtime", "python3.11",
                "--handler", "main.handler", *extra)
    assert r.returncode == 0, r.stderr
    return r


def ls_rows(srv):
    r = tarn_fn(srv, "ls")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["NAME", "RUNTIME"], r.stdout
    return {line.split()[0]: line.split() for line in lines[1:]}


def test_deploy_invoke_ls_logs_rm(tarn, app_dir, name):
    r = deploy(tarn, name, app_dir, "--memory", "256", "--timeout", "10",
               "--env", "GREETING_ENV=from-cli")
    assert r.stdout.startswith("created '%s'" % name), r.stdout

    r = tarn_fn(tarn, "invoke", name, '{"name": "tarn"}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"greeting": "hello, tarn", "exec": True,
                                    "tool": "tool ran", "env": "from-cli"}

    r = tarn_fn(tarn, "invoke", name, "-", input='{"name": "stdin"}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["greeting"] == "hello, stdin"

    r = tarn_fn(tarn, "invoke", name)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["greeting"] == "hello, world"

    # A function error: non-zero, one line on stderr, nothing on stdout.
    r = tarn_fn(tarn, "invoke", name, '{"fail": true}')
    line = one_error_line(r)
    assert r.stdout == ""
    assert name in line and "RuntimeError" in line and "asked to fail" in line

    row = ls_rows(tarn)[name]
    assert row[1:6] == ["python3.11", "256", "MB", "10", "s"], row

    r = tarn_fn(tarn, "logs", name)
    assert r.returncode == 0, r.stderr
    for want in ("init ran", "START RequestId", "handling tarn", "END RequestId",
                 "REPORT RequestId", "Billed Duration", "asked to fail"):
        assert want in r.stdout, (want, r.stdout[-2000:])

    # Deploying again updates the code and the configuration; the
    # variables stay when no --env is given.
    (app_dir / "lib" / "greet.py").write_text("def greet(name):\n    return 'hi, ' + name\n")
    r = deploy(tarn, name, app_dir, "--timeout", "20")
    assert r.stdout.startswith("updated '%s'" % name), r.stdout
    r = tarn_fn(tarn, "invoke", name, '{"name": "again"}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"greeting": "hi, again", "exec": True,
                                    "tool": "tool ran", "env": "from-cli"}
    assert ls_rows(tarn)[name][4] == "20"

    r = tarn_fn(tarn, "rm", name)
    assert r.returncode == 0, r.stderr
    assert name not in ls_rows(tarn)
    line = one_error_line(tarn_fn(tarn, "invoke", name))
    assert "not found" in line.lower() and name in line


def test_deploy_custom_runtime_keeps_exec_bit(tarn, tmp_path, name):
    folder = tmp_path / "bash"
    shutil.copytree(os.path.join(lu.FUNCTIONS, "bash"), folder)
    os.chmod(folder / "bootstrap", 0o755)
    r = tarn_fn(tarn, "deploy", name, str(folder), "--runtime", "provided.al2023",
                "--handler", "function.handler")
    assert r.returncode == 0, r.stderr
    r = tarn_fn(tarn, "invoke", name, '{"from": "cli"}')
    assert r.returncode == 0, r.stderr
    assert "Echoing request" in r.stdout and '"from": "cli"' in r.stdout
    assert tarn_fn(tarn, "rm", name).returncode == 0


def test_logs_follow(tarn, app_dir, name):
    deploy(tarn, name, app_dir)
    p = subprocess.Popen([tarnlib.TARN_BIN, "fn", "logs", name, "-f"], env=fn_env(tarn),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in p.stdout], daemon=True).start()
    try:
        time.sleep(0.5)  # it has read the (empty) log once
        r = tarn_fn(tarn, "invoke", name, '{"name": "followed"}')
        assert r.returncode == 0, r.stderr
        seen = []
        deadline = time.monotonic() + 30
        while not any(x.startswith("REPORT RequestId") for x in seen):
            assert time.monotonic() < deadline, "no REPORT line followed: %r" % seen
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                assert p.poll() is None, p.stderr.read()
        assert any("handling followed" in x for x in seen), seen
    finally:
        p.terminate()
        p.wait(timeout=10)
    assert tarn_fn(tarn, "rm", name).returncode == 0


def test_credentials_from_data_dir(tarn_factory, app_dir, name):
    srv = tarn_factory(env_credentials=False)
    env = clean_env()
    env["TARN_ENDPOINT"] = srv.endpoint
    r = tarn_fn(srv, "--data", srv.data, "deploy", name, str(app_dir), "--runtime",
                "python3.11", "--handler", "main.handler", env=env)
    assert r.returncode == 0, r.stderr
    r = tarn_fn(srv, "ls", "--data", srv.data, env=env)
    assert r.returncode == 0, r.stderr
    assert name in r.stdout
    # Without them: one clear line.
    line = one_error_line(tarn_fn(srv, "ls", "--data", str(app_dir), env=env))
    assert "credentials" in line


def test_errors_are_one_line(tarn, tmp_path, name):
    line = one_error_line(tarn_fn(tarn, "deploy", name, str(tmp_path / "missing"),
                                  "--runtime", "python3.11", "--handler", "main.handler"))
    assert "missing" in line and "not a folder" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_error_line(tarn_fn(tarn, "deploy", name, str(empty), "--runtime",
                                  "python3.11", "--handler", "main.handler"))
    assert "empty" in line
    line = one_error_line(tarn_fn(tarn, "logs", name))
    assert "not found" in line.lower()
    line = one_error_line(tarn_fn(tarn, "rm", name))
    assert "not found" in line.lower()
    r = tarn_fn(tarn, "ls", env=fn_env(tarn, TARN_ENDPOINT="http://127.0.0.1:1"))
    assert "cannot reach tarn" in one_error_line(r)
    # Bad usage: exit 2 and the usage.
    r = tarn_fn(tarn, "deploy", name)
    assert r.returncode == 2 and "usage: tarn fn" in r.stderr
    r = tarn_fn(tarn, "frobnicate")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
