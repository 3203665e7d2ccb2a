"""tests/e2e/test_runtime_api_parked.py -- idle instances hold no thread of
the Runtime API's server: each idle instance's GET next is parked, answered
when an invocation is assigned, when the instance is killed or reaped, and
when the server stops.

The runtime socket's server runs a pool of 4 threads (RUNTIME_API_THREADS in
src/main.c); these tests keep more idle Python instances than that (real
sandboxes running tarn's Python runtime client) and check that invocations,
their responses and new instances are still served, that killing parked
instances releases their connections, that a server stopping with
parked instances exits cleanly with no leak (LeakSanitizer on), and that
callers that are no instance park too and are refused.
"""
import os
import signal
import socket
import threading
import urllib.parse

import pytest

import lambda_util as lu
from lambda_util import create, invoke, metric, unique_name
from queue_util import wait_for

IDLE = 10          # idle instances kept, over the runtime server's 4 threads
RUNTIME_THREADS = 4
WAIT = 120.0       # seconds: a generous bound on a loaded machine, not a speed check


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn, max_pool_connections=IDLE + 8)


def unix_connections(pid):
    """The server's open Unix-socket connections: those of the Runtime API
    (each instance's runtime) and of the platform socket; its TCP
    connections (this test's clients) are left out."""
    tcp = set()
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                next(f)
                tcp.update(line.split()[9] for line in f)
        except OSError:
            pass
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] not in tcp:
            n += 1
    return n


def descendants(pid):
    """Pids of the processes below pid (this test's own server only)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def runtime_clients(tarn):
    """The Python runtime clients of the server's instances."""
    out = []
    for p in descendants(tarn.proc.pid):
        try:
            with open("/proc/%d/cmdline" % p, "rb") as f:
                if b"bootstrap.py" in f.read():
                    out.append(p)
        except OSError:
            pass
    return out


def make_idle(tarn, lam, s3, bucket, name, n):
    """n instances of a new function, all idle (their GET next parked): n
    invocations wait together on a release object, so each has its own
    instance, then end."""
    create(lam, name, "python", handler="app.wait_release", Timeout=60)
    key = "release-" + name
    url = urllib.parse.urlsplit(tarn.presign("GET", "/%s/%s" % (bucket, key), 600))
    event = {"path": url.path + "?" + url.query, "host": url.netloc, "timeout": 55}
    results = [None] * n

    def one(i):
        resp, body = invoke(lam, name, event)
        results[i] = (resp["StatusCode"], resp.get("FunctionError"), body)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: lu.concurrent_executions(tarn) >= n, interval=0.05, timeout=WAIT)
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=b"go")
        for t in threads:
            t.join()
    assert results == [(200, None, {"released": "go"})] * n
    wait_for(lambda: metric(tarn, "tarn_fn_instances_idle") >= n, timeout=WAIT)
    return event


def test_idle_instances_hold_no_runtime_threads(tarn, lam, s3, bucket):
    name = unique_name("parked")
    event = make_idle(tarn, lam, s3, bucket, name, IDLE)
    assert IDLE > RUNTIME_THREADS
    # Every idle instance is waiting in GET next; each still gets its
    # invocation and its response (a POST on the same server) goes through.
    results = [None] * IDLE

    def one(i):
        resp, body = invoke(lam, name, event)
        results[i] = (resp["StatusCode"], body)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(IDLE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [(200, {"released": "go"})] * IDLE
    # A new function's instance starts and answers while they are all idle.
    other = unique_name("parked-echo")
    create(lam, other, "python")
    resp, body = invoke(lam, other, {"k": 1})
    assert resp["StatusCode"] == 200 and body["event"] == {"k": 1}
    lam.delete_function(FunctionName=other)
    lam.delete_function(FunctionName=name)
    wait_for(lambda: metric(tarn, "tarn_fn_instances") == 0, timeout=WAIT)


def test_killed_parked_instances_release_their_connections(tarn, lam, s3, bucket):
    pid = tarn.proc.pid
    wait_for(lambda: metric(tarn, "tarn_fn_instances") == 0, timeout=WAIT)
    before = unix_connections(pid)  # the listeners and the like
    name = unique_name("parked-kill")
    make_idle(tarn, lam, s3, bucket, name, IDLE)
    # each idle instance holds its connection, parked in GET next
    assert unix_connections(pid) >= before + IDLE
    # Kill half the runtime clients (their GET next parked), then delete the
    # function, which kills the rest: every connection goes, and so does
    # every instance.
    clients = runtime_clients(tarn)
    assert len(clients) >= IDLE, clients
    for p in clients[: IDLE // 2]:
        os.kill(p, signal.SIGKILL)
    wait_for(lambda: metric(tarn, "tarn_fn_instances") <= IDLE - IDLE // 2, timeout=WAIT)
    resp, body = invoke(lam, name, {"path": "/", "host": "x", "timeout": 0})
    assert resp["StatusCode"] == 200
    lam.delete_function(FunctionName=name)
    wait_for(lambda: metric(tarn, "tarn_fn_instances") == 0, timeout=WAIT)
    wait_for(lambda: unix_connections(pid) <= before, timeout=WAIT)


def test_stop_with_parked_instances_exits_clean(tarn_factory):
    srv = tarn_factory(env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0"})
    lam = lu.lambda_client(srv, max_pool_connections=IDLE + 8)
    s3 = srv.client()
    bucket = unique_name("stop").lower()
    s3.create_bucket(Bucket=bucket)
    make_idle(srv, lam, s3, bucket, unique_name("parked-stop"), RUNTIME_THREADS + 2)
    srv.stop_clean()


def test_unknown_callers_park_then_are_refused(tarn, lam):
    # GET next from a process that is no instance (this test) waits for its
    # pid to become an instance's, parked like the others, and is refused
    # with 403 after a few seconds; meanwhile more such callers than the
    # server has threads do not stop a function from being served.
    path = os.path.join(tarn.data, "run", "runtime.sock")
    n = RUNTIME_THREADS + 2
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    name = unique_name("parked-unknown")
    create(lam, name, "python")
    resp, body = invoke(lam, name, {"k": 2})
    assert resp["StatusCode"] == 200 and body["event"] == {"k": 2}
    for s in socks:
        s.settimeout(120)
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 403"), head[:200]
        s.close()
    lam.delete_function(FunctionName=name)
