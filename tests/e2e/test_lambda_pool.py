"""tests/e2e/test_lambda_pool.py -- Python and Node.js cold starts claim an
instance started ahead from their runtime's pool (src/sandbox/pool.c): what
a user would check of such an instance.

A pooled instance's hostname is its pool id ("pool-python-N"), which is how
a handler (and this test) knows it was claimed from the pool; a fresh one's
is its own instance id.

Invariants:
  (1) A pooled instance is isolated as a fresh one: its own code only at
      /var/task, its own environment and credentials, uid 993, no
      capabilities, the seccomp filter, the function's /tmp size and file
      size limit, its memory limit.
  (2) One instance, one function: a hostile function's leftovers (files in
      /tmp, module state, processes) never reach another function's
      instance, and two functions never get the same instance.
  (3) The pool refills in the background: cold starts keep finding pooled
      instances after the first ones were taken.
"""
import concurrent.futures
import time

import pytest

import lambda_util as lu

PROBE = r'''
import builtins, os, resource, socket, subprocess, sys

FRESH = not hasattr(builtins, "TARN_POISON")

def handler(event, context):
    st = open("/proc/self/status").read()
    field = lambda name: [l.split()[1] for l in st.splitlines() if l.startswith(name)][0]
    out = {
        "host": socket.gethostname(),
        "fresh": FRESH,
        "poisoned": hasattr(builtins, "TARN_POISON"),
        "secret": os.environ.get("SECRET"),
        "name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "key": os.environ.get("AWS_ACCESS_KEY_ID"),
        "files": sorted(os.listdir("/var/task")),
        "cwd": os.getcwd(),
        "tmp": sorted(os.listdir("/tmp")),
        "procs": sorted(p for p in os.listdir("/proc") if p.isdigit()),
        "uid": os.getuid(),
        "caps": field("CapEff"),
        "seccomp": field("Seccomp:"),
        "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[0],
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "tmp_size": os.statvfs("/tmp").f_blocks * os.statvfs("/tmp").f_frsize,
        "argv": sys.argv,
    }
    if event.get("poison"):
        builtins.TARN_POISON = True
        open("/tmp/poison", "w").write("left by " + out["name"])
        subprocess.Popen(["/bin/sleep", "300"], start_new_session=True)
    if event.get("alloc_mb"):
        b = bytearray(event["alloc_mb"] << 20)
        for i in range(0, len(b), 4096):
            b[i] = 1
        out["allocated"] = len(b)
    return out
'''

NODE = r'''
const fs = require('fs');
const os = require('os');
exports.handler = async () => ({
  host: os.hostname(),
  secret: process.env.SECRET,
  files: fs.readdirSync('/var/task').sort(),
  tmp: fs.readdirSync('/tmp'),
  uid: process.getuid(),
});
'''


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tarnlib import Tarn
    s = Tarn(tmp_path_factory.mktemp("tarn"), env={"TARN_FN_POOL": "2"})
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def lam(srv):
    return lu.lambda_client(srv, read_timeout=120)


def make(lam, hint, secret, files=None, runtime="python3.11", code=PROBE, **kw):
    name = lu.unique_name(hint)
    main = ("index.js", code) if runtime.startswith("nodejs") else ("probe.py", code)
    zf = {main[0]: (main[1], 0o644)}
    zf.update({k: (v, 0o644) for k, v in (files or {}).items()})
    lu.create(lam, name, code=lu.zip_files(zf), runtime=runtime,
              handler="index.handler" if runtime.startswith("nodejs") else "probe.handler",
              Environment={"Variables": {"SECRET": secret}}, Timeout=60, **kw)
    return name


def pooled_start(lam, hint, secret, event=None, files=None, deadline_s=90, **kw):
    """Creates functions until one's cold start was a pooled instance (the
    pool fills in the background from the runtime's first cold start on);
    returns (name, body) of that one. Functions whose start was not pooled
    are checked too: the same isolation holds for them."""
    end = time.monotonic() + deadline_s
    while True:
        name = make(lam, hint, secret, files=files, **kw)
        resp, body = lu.invoke(lam, name, event or {})
        assert resp.get("FunctionError") is None, body
        if body["host"].startswith("pool-"):
            return name, body
        assert time.monotonic() < end, "no cold start found a pooled instance"
        time.sleep(0.2)  # the pool's refill is in another thread: let it run


def test_pooled_instance_isolated_as_fresh(lam):  # (1)
    name, b = pooled_start(lam, "pool-a", "secret-a", files={"a_only.txt": "a"},
                           MemorySize=256, EphemeralStorage={"Size": 600})
    assert b["secret"] == "secret-a" and b["name"] == name
    assert b["key"], "credentials of the function's role"
    assert b["files"] == ["a_only.txt", "probe.py"]
    assert b["cwd"] == "/var/task"
    assert b["uid"] == 993 and b["caps"] == "0000000000000000" and b["seccomp"] == "2"
    assert b["fsize"] == 600 << 20 and b["nofile"] == 1024
    assert 590 << 20 <= b["tmp_size"] <= 610 << 20
    assert b["procs"] == ["1", str(b["procs"][-1])] or len(b["procs"]) <= 3
    assert b["argv"] == ["/var/runtime/python/bootstrap.py"]
    # its memory limit is the function's (256 MB), not the pool's (128 MB)
    resp, body = lu.invoke(lam, name, {"alloc_mb": 180})
    assert resp.get("FunctionError") is None, body
    assert body["allocated"] == 180 << 20


def test_hostile_function_leaves_nothing_for_the_next(lam):  # (2)
    hostile, hb = pooled_start(lam, "pool-hostile", "h-secret", {"poison": True},
                               files={"hostile_only.txt": "x"})
    assert hb["fresh"]
    # the hostile instance itself keeps its state (it is warm) ...
    resp, again = lu.invoke(lam, hostile, {})
    assert again["host"] == hb["host"] and again["poisoned"] and "poison" in again["tmp"]
    # ... and another function's pooled instance sees none of it
    victim, vb = pooled_start(lam, "pool-victim", "v-secret")
    assert vb["host"] != hb["host"]
    assert vb["fresh"] and not vb["poisoned"] and vb["tmp"] == [] and vb["secret"] == "v-secret"
    assert vb["files"] == ["probe.py"]
    assert len(vb["procs"]) <= 3, vb["procs"]  # no sleep left behind


def test_two_functions_never_share_an_instance(lam):  # (2)
    names = [make(lam, "pool-par", "s%d" % i) for i in range(4)]

    def run(name):
        return lu.invoke(lam, name, {})[1]

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        first = list(ex.map(run, names))
    hosts = [b["host"] for b in first]
    assert len(set(hosts)) == len(hosts), hosts
    for i, b in enumerate(first):
        assert b["secret"] == "s%d" % i and b["name"] == names[i]
    # a warm invoke stays on its own function's instance
    for i, name in enumerate(names):
        b = run(name)
        assert b["host"] == hosts[i] and b["secret"] == "s%d" % i


def test_pool_refills(lam):  # (3)
    seen = set()
    for i in range(3):
        _, b = pooled_start(lam, "pool-refill", "r%d" % i)
        assert b["host"] not in seen
        seen.add(b["host"])


def test_node_pooled(lam):  # (1) for Node.js
    name, b = pooled_start(lam, "pool-node", "n-secret", runtime="nodejs20.x", code=NODE,
                           files={"n_only.txt": "n"})
    assert b["secret"] == "n-secret" and b["uid"] == 993
    assert b["files"] == ["index.js", "n_only.txt"] and b["tmp"] == []
