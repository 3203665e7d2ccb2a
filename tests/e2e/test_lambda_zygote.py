"""tests/e2e/test_lambda_zygote.py -- Python and Node.js functions'
instances are forks of a pre-initialised runtime (src/sandbox/zygote.c,
src/fn/zygote.c): what a user would check of them.

Invariants:
  (1) An instance forked from the runtime's zygote is what an exec'd one
      was: the function's own environment, credentials, command line,
      files (/var/task), uid, no capabilities, the seccomp filter, a pid
      namespace of its own; nothing of another function's.
  (2) Two instances forked from one zygote (they share its str hash
      secret, which is how the test knows) get different random values,
      uuids and urandom bytes, and a fresh clock.
  (3) A hostile handler that changes module state at import (the runtime
      client's, the stdlib's, builtins) changes nothing for another
      function, nor for the next instance of its own.
  (4) A function whose environment changes the interpreter's start
      (PYTHONHASHSEED, NODE_OPTIONS here) is exec'd, and gets what it asked
      for.
  (5) A Node.js fork shows tarn's library mapped from a memfd (how the test
      knows it is one); it still optimises hot code, spawns processes and
      serves a second invocation, with Math.random, randomUUID and
      randomBytes of its own.
"""
import json
import threading
import time

import pytest

import lambda_util as lu

PROBE = r'''
import hashlib, os, random, sys, time, uuid

import app_state  # a module of the function's own code

def handler(event, context):
    if event.get("hold"):
        time.sleep(event["hold"])
    st = open("/proc/self/status").read()
    caps = [l.split()[1] for l in st.splitlines() if l.startswith("CapEff")][0]
    seccomp = [l.split()[1] for l in st.splitlines() if l.startswith("Seccomp:")][0]
    return {
        "name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "secret": os.environ.get("SECRET"),
        "key": os.environ.get("AWS_ACCESS_KEY_ID"),
        "files": sorted(os.listdir("/var/task")),
        "state": app_state.STATE,
        "hash": hash("tarn-zygote-probe"),
        "random": random.random(),
        "uuid1": str(uuid.uuid1()),
        "uuid4": str(uuid.uuid4()),
        "urandom": os.urandom(8).hex(),
        "time": time.time(),
        "pid": os.getpid(),
        "uid": os.getuid(),
        "caps": caps,
        "seccomp": seccomp,
        "argv": sys.argv,
        "cmdline": open("/proc/self/cmdline", "rb").read().decode().split("\0"),
        "init": open("/proc/1/cmdline", "rb").read().decode().split("\0")[0],
        "fds": sorted(os.readlink("/proc/self/fd/" + f).split(":")[0].split("[")[0]
                      for f in os.listdir("/proc/self/fd")[:-1]),
        "maps_host": [l for l in open("/proc/self/maps") if "/work/" in l or "/tmp/pytest" in l],
        "path": sys.path,
        "tz": time.tzname,
        "json_logs": sys.modules["__main__"]._JSON_LOGS,
        "snapstart": "snapshot_restore_py" in sys.modules,
    }
'''

HOSTILE = r'''
import builtins, json, os, random, sys

# was anything left by an earlier import, in this instance's process or files?
FRESH = not hasattr(builtins, "TARN_POISON") and not os.path.exists("/tmp/poison")
# at import: poison what another function would use, if it shared anything
random.seed(42)
json.dumps = lambda *a, **k: '"poisoned"'
builtins.TARN_POISON = True
os.environ["SECRET"] = "stolen"
main = sys.modules["__main__"]
main.to_json = lambda o: '"poisoned"'
main._USER_AGENT = "poisoned"
open("/tmp/poison", "w").write("x")

def handler(event, context):
    if event.get("hold"):
        import time
        time.sleep(event["hold"])
    return ("fresh=%s" % FRESH).encode()  # bytes go out raw: to_json is poisoned
'''


def probe_zip(state):
    return lu.zip_files({"app.py": (PROBE, 0o100644),
                         "app_state.py": ("STATE = %r\n" % state, 0o100644)})


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


def make(lam, hint, state, env=None, zipped=None):
    name = lu.unique_name(hint)
    kw = {"Environment": {"Variables": env}} if env else {}
    lu.create(lam, name, code=zipped or probe_zip(state), handler="app.handler",
              runtime="python3.11", **kw)
    return name


def call(lam, name, event=None):
    resp, body = lu.invoke(lam, name, event or {})
    assert "FunctionError" not in resp, body
    return body


def concurrent(lam, name, n, hold):
    """n instances of name at once (each invocation holds its instance)."""
    out = [None] * n

    def one(i):
        out[i] = call(lam, name, {"hold": hold})
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def test_instance_is_the_functions_own(lam):
    a = make(lam, "zyg-a", "A", {"SECRET": "alpha"})
    b = make(lam, "zyg-b", "B", {"SECRET": "beta"})
    ra, rb = call(lam, a), call(lam, b)
    # forked from the same zygote (same str hash secret) ...
    assert ra["hash"] == rb["hash"]
    # ... but each with its own environment, credentials and code
    assert (ra["name"], ra["secret"], ra["state"]) == (a, "alpha", "A")
    assert (rb["name"], rb["secret"], rb["state"]) == (b, "beta", "B")
    assert ra["key"] != rb["key"]
    assert ra["files"] == ["app.py", "app_state.py"]
    # what an exec'd python3 bootstrap.py is, in its own sandbox
    for r in (ra, rb):
        assert r["uid"] == 993 and r["caps"] == "0000000000000000" and r["seccomp"] == "2"
        assert r["argv"] == ["/var/runtime/python/bootstrap.py"]
        assert r["cmdline"][:2] == ["/usr/bin/python3", "/var/runtime/python/bootstrap.py"]
        assert r["init"] == "tarn-init"
        assert r["pid"] == 2
        # /dev/null, the log pipe twice, the Runtime API's socket
        assert r["fds"] == ["/dev/null", "pipe", "pipe", "socket"], r["fds"]
        assert r["maps_host"] == []
        assert r["path"][0] == "/var/task"
        assert r["tz"][0] == "UTC" and r["json_logs"] is False and r["snapstart"]


def test_forks_get_fresh_randomness(lam):
    name = make(lam, "zyg-rand", "R")
    rs = concurrent(lam, name, 3, 1.0)
    assert len({r["hash"] for r in rs}) == 1  # one zygote ...
    for field in ("random", "uuid1", "uuid4", "urandom"):
        assert len({r[field] for r in rs}) == 3, field  # ... three different streams
    now = time.time()
    for r in rs:
        assert abs(r["time"] - now) < 120


def test_hostile_import_changes_nothing_elsewhere(lam):
    bad = make(lam, "zyg-bad", None, zipped=lu.zip_files({"app.py": (HOSTILE, 0o100644)}))
    assert call(lam, bad) == "fresh=True"
    good = make(lam, "zyg-good", "G", {"SECRET": "gamma"})
    r = call(lam, good)
    assert r["secret"] == "gamma" and r["state"] == "G"
    assert isinstance(r["random"], float)
    # a second instance of the hostile function starts clean as well
    out = [None, None]

    def one(i):
        out[i] = call(lam, bad, {"hold": 1})
    ts = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == ["fresh=True"] * 2


def test_start_changing_environment_is_execd(lam):
    name = make(lam, "zyg-seed", "S", {"PYTHONHASHSEED": "7"})
    other = make(lam, "zyg-other", "O")
    r = call(lam, name)
    assert r["hash"] != call(lam, other)["hash"]
    assert r["hash"] == call(lam, make(lam, "zyg-seed2", "S", {"PYTHONHASHSEED": "7"}))["hash"]


NODE_PROBE = r'''
const fs = require('fs');
const crypto = require('crypto');
const state = require('./state.js');
exports.handler = async (event) => {
  if (event.hold) await new Promise((r) => setTimeout(r, event.hold * 1000));
  const st = fs.readFileSync('/proc/self/status', 'utf8');
  const field = (k) => st.split('\n').find((l) => l.startsWith(k)).split(/\s+/)[1];
  // a hot loop: V8 must still optimise and finish it in a fork
  let x = 0;
  for (let i = 0; i < 2e6; i++) x += i % 7;
  const child = require('child_process').execFileSync('/bin/echo', ['spawned']).toString().trim();
  return {
    name: process.env.AWS_LAMBDA_FUNCTION_NAME,
    secret: process.env.SECRET,
    key: process.env.AWS_ACCESS_KEY_ID,
    state: state.STATE,
    random: Math.random(),
    uuid: crypto.randomUUID(),
    bytes: crypto.randomBytes(8).toString('hex'),
    pid: process.pid,
    uid: process.getuid(),
    caps: field('CapEff:'),
    seccomp: field('Seccomp:'),
    argv: process.argv,
    cmdline: fs.readFileSync('/proc/self/cmdline', 'utf8').split('\0'),
    forked: fs.readFileSync('/proc/self/maps', 'utf8').includes('memfd:tarn-zygote'),
    hostPaths: fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('/work/')),
    loop: x,
    child,
  };
};
'''


def node_zip(state):
    return lu.zip_files({"index.js": (NODE_PROBE, 0o100644),
                         "state.js": ("exports.STATE = %r;\n" % state, 0o100644)})


def make_node(lam, hint, state, env=None):
    name = lu.unique_name(hint)
    kw = {"Environment": {"Variables": env}} if env else {}
    lu.create(lam, name, code=node_zip(state), handler="index.handler",
              runtime="nodejs20.x", **kw)
    return name


def test_node_instances_are_forks_of_their_own(lam):
    a = make_node(lam, "zyg-node-a", "A", {"SECRET": "alpha"})
    b = make_node(lam, "zyg-node-b", "B", {"SECRET": "beta"})
    ra, rb = call(lam, a), call(lam, b)
    assert ra["forked"] and rb["forked"]
    assert (ra["name"], ra["secret"], ra["state"]) == (a, "alpha", "A")
    assert (rb["name"], rb["secret"], rb["state"]) == (b, "beta", "B")
    assert ra["key"] != rb["key"]
    for r in (ra, rb):
        assert r["uid"] == 993 and r["caps"] == "0000000000000000" and r["seccomp"] == "2"
        assert r["argv"][1:] == ["/var/runtime/node/bootstrap.js"]
        assert r["cmdline"][:2] == ["/usr/bin/node", "/var/runtime/node/bootstrap.js"]
        assert r["pid"] == 2 and r["hostPaths"] == [] and r["child"] == "spawned"
        assert r["loop"] == sum(i % 7 for i in range(2000000))
    assert ra["random"] != rb["random"] and ra["uuid"] != rb["uuid"]
    assert ra["bytes"] != rb["bytes"]
    # a second invocation on the same (warm) instance works too
    assert call(lam, a)["secret"] == "alpha"


def test_node_forks_get_fresh_randomness(lam):
    name = make_node(lam, "zyg-node-rand", "R")
    out = [None] * 3

    def one(i):
        out[i] = call(lam, name, {"hold": 1})
    ts = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(r["forked"] for r in out)
    for field in ("random", "uuid", "bytes"):
        assert len({r[field] for r in out}) == 3, field


def test_node_start_changing_environment_is_execd(lam):
    name = make_node(lam, "zyg-node-opts", "O", {"NODE_OPTIONS": "--max-old-space-size=100"})
    r = call(lam, name)
    assert not r["forked"] and r["state"] == "O"
