"""A function template's forks (src/sandbox/template.c, shell.c): what a fork
holds, what kills it, what randomness it draws, Node.js forks, and that a
template goes with its function. test_lambda_template.py has the behaviour
a handler sees (module state, hooks, /tmp, exit status, updates).

A fork is told apart from an instance started the usual way by its pid:
pid 3 of its namespace (pid 2 is taken so that libraries that watch for a
new pid notice one), where any other instance's program is pid 2.
"""
import concurrent.futures
import os
import time

import pytest

import tarnlib
from lambda_util import create, invoke, lambda_client, log_tail, unique_name, zip_files

PY_PROBE = b'''
import ctypes, os, ssl, time, uuid
libc = ctypes.CDLL(None, use_errno=True)
TOKEN = uuid.uuid4().hex


def status():
    out = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb", "NoNewPrivs", "Seccomp",
                 "Seccomp_filters", "Uid"):
            out[k] = v.split()[0]
    return out


def refused(call):
    rc = call()
    return [rc, ctypes.get_errno()]


def handler(event, context):
    time.sleep(event.get("sleep", 0))
    fd = os.open("/proc/self/ns/user", os.O_RDONLY)
    try:
        setns = refused(lambda: libc.setns(fd, 0))
    finally:
        os.close(fd)
    return {"token": TOKEN, "pid": os.getpid(), "status": status(), "setns": setns,
            "unshare": refused(lambda: libc.unshare(0x20000)),
            "ssl": ssl.RAND_bytes(16).hex(), "uuid": uuid.uuid4().hex, "host": os.uname().nodename}
'''

NODE_PROBE = b'''
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const TOKEN = crypto.randomUUID();
exports.handler = async (event) => {
  await new Promise((r) => setTimeout(r, (event.sleep || 0) * 1000));
  if (event.exit !== undefined) process.exit(event.exit);
  return {
    token: TOKEN, pid: process.pid, uuid: crypto.randomUUID(), bytes: crypto.randomBytes(16).toString('hex'),
    random: Math.random(), procs: fs.readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p)).length,
    api: process.env.AWS_LAMBDA_RUNTIME_API, host: os.hostname(),
  };
};
'''


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = tarnlib.Tarn(tmp_path_factory.mktemp("tarn"),
                     env={"TARN_FN_TEMPLATES": "4", "TARN_FN_IDLE_SECONDS": "6"})
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def lam(srv):
    return lambda_client(srv)


def make(lam, hint, code, handler, runtime, **kw):
    name = unique_name(hint)
    files = {"index.js" if runtime.startswith("nodejs") else "probe.py": (code, 0o644),
             "name.txt": (name.encode(), 0o644)}
    create(lam, name, code=zip_files(files), handler=handler, runtime=runtime, **kw)
    return name


def burst(lam, name, n, sleep):
    """n invocations at once, each holding its instance for sleep s; each
    result's log tail is in its body's "log"."""
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        futs = [ex.submit(invoke, lam, name, {"sleep": sleep}, LogType="Tail") for _ in range(n)]
        out = [f.result() for f in futs]
    for resp, body in out:
        if isinstance(body, dict):
            body["log"] = log_tail(resp)
    return out


def forks(lam, name, n=3, timeout=90):
    """Bodies of new instances, at least two of them forks of the template
    (pid 3), from one burst; the first invocation is the function's first
    cold start (no template yet). Each burst is as wide as the instances
    seen so far (they are warm, and take their share) plus n, so that n
    are cold starts."""
    invoke(lam, name, {})
    seen = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = burst(lam, name, len(seen) + n, 1.2)
        for resp, body in out:
            assert "FunctionError" not in resp, body
        new = [b for _, b in out if b["host"] not in seen]
        seen.update(b["host"] for _, b in out)
        forked = [b for b in new if b["pid"] == 3]
        if len(forked) >= 2:
            return forked
        time.sleep(0.5)
    pytest.fail("no two forks of %s's template within %d s" % (name, timeout))


def test_a_fork_holds_no_privilege(lam):
    name = make(lam, "tmpl-priv", PY_PROBE, "probe.handler", "python3.11")
    for body in forks(lam, name):
        st = body["status"]
        for cap in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
            assert int(st[cap], 16) == 0, (cap, st)
        assert st["NoNewPrivs"] == "1", st
        assert st["Seccomp"] == "2", st
        # the template's filter (all but setns), and the instance's on top
        assert int(st["Seccomp_filters"]) >= 2, st
        assert st["Uid"] == "993", st
        assert body["setns"] == [-1, 1], body   # EPERM: the instance's filter
        assert body["unshare"] == [-1, 1], body


def test_a_forks_report_says_it_restored(lam):
    """As SnapStart's: a fork's first invocation reports a Restore Duration,
    an instance started the usual way an Init Duration."""
    name = make(lam, "tmpl-report", PY_PROBE, "probe.handler", "python3.11")
    resp, _ = invoke(lam, name, {}, LogType="Tail")
    assert "Init Duration: " in log_tail(resp)
    for body in forks(lam, name):
        report = [ln for ln in body["log"].splitlines() if ln.startswith("REPORT ")]
        assert len(report) == 1 and "Restore Duration: " in report[0], body["log"]
        assert "Init Duration" not in report[0]


def test_forks_draw_their_own_randomness(lam):
    name = make(lam, "tmpl-rand", PY_PROBE, "probe.handler", "python3.11")
    bodies = forks(lam, name, n=4)
    assert len({b["token"] for b in bodies}) == 1, bodies   # one template
    for key in ("ssl", "uuid"):
        values = [b[key] for b in bodies]
        assert len(set(values)) == len(values), (key, values)


def test_a_forks_time_out_kills_it_and_the_next_start_forks_again(lam):
    name = make(lam, "tmpl-timeout", PY_PROBE, "probe.handler", "python3.11", Timeout=2)
    token = forks(lam, name)[0]["token"]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(invoke, lam, name, {"sleep": 10}) for _ in range(4)]
        out = [f.result() for f in futs]
    for resp, body in out:
        assert resp.get("FunctionError") == "Unhandled", body
        assert "Task timed out after 2" in body["errorMessage"], body
    resp, body = invoke(lam, name, {})
    assert "FunctionError" not in resp, body
    bodies = forks(lam, name)
    assert {b["token"] for b in bodies} == {token}, bodies


def test_node_forks(lam):
    name = make(lam, "tmpl-node", NODE_PROBE, "index.handler", "nodejs20.x")
    bodies = forks(lam, name, n=4)
    assert len({b["token"] for b in bodies}) == 1, bodies
    for key in ("uuid", "bytes", "random", "api"):
        values = [b[key] for b in bodies]
        assert len(set(values)) == len(values), (key, values)
    for b in bodies:
        assert b["procs"] <= 2, b   # its pid 1 and itself
    # a fork's exit status is the instance's
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        futs = [ex.submit(invoke, lam, name, {"sleep": 0.8, "exit": 4}) for _ in range(3)]
        out = [f.result() for f in futs]
    for resp, body in out:
        assert resp.get("FunctionError") == "Unhandled", body
        assert "Runtime exited with error: exit status 4" in body["errorMessage"], body


def programs_of(name):
    """Host pids of the processes that run function name's code (its
    name.txt at their /var/task), and which of them is a template: its
    program is pid 2 of its namespace, calls itself tarn-template, and its
    forks' waiters are its children."""
    running, templates = [], []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/root/var/task/name.txt" % p) as f:
                if f.read() != name:
                    continue
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read()
            if b"/var/runtime/" not in cmd and not cmd.startswith(b"tarn-template\0"):
                continue
            with open("/proc/%s/status" % p) as f:
                nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")][0]
            children = []
            for tid in os.listdir("/proc/%s/task" % p):
                with open("/proc/%s/task/%s/children" % (p, tid)) as f:
                    children += f.read().split()
        except (OSError, IndexError):
            continue
        running.append(int(p))
        if nspid[-1] == "2" and children and cmd.startswith(b"tarn-template\0"):
            templates.append(int(p))
    return running, templates


def test_a_template_ends_with_its_function(lam):
    name = make(lam, "tmpl-delete", PY_PROBE, "probe.handler", "python3.11")
    forks(lam, name)
    running, templates = programs_of(name)
    assert len(templates) == 1, (running, templates)
    lam.delete_function(FunctionName=name)
    deadline = time.monotonic() + 30
    while programs_of(name)[0] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert programs_of(name) == ([], []), "a deleted function's processes still run"


def test_an_idle_template_ends(lam):
    name = make(lam, "tmpl-idle", PY_PROBE, "probe.handler", "python3.11")
    forks(lam, name)
    assert len(programs_of(name)[1]) == 1
    # TARN_FN_IDLE_SECONDS=6: the idle instances, then the template, end
    deadline = time.monotonic() + 30
    while programs_of(name)[0] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert programs_of(name) == ([], []), "an idle function's template still runs"
    # and the next cold starts build it again
    assert len({b["token"] for b in forks(lam, name)}) == 1
