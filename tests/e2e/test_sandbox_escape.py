"""tests/e2e/test_sandbox_escape.py -- a hostile Python function tries to get
out of its sandbox (issue 3, "Sandbox tests"; DESIGN.md §5), and every
attempt must fail, with the host unaffected.

The function (tests/e2e/functions/hostile/app.py) is created through the
Lambda API with boto3 and invoked synchronously; the attempt is named in the
event and the function reports what happened (errno names, what it read) as
its result. The tests judge the report and look at the host themselves:
listeners that must not be reached, processes that must not remain, a data
directory that must not grow.

Invariants:
  (1) One module-scoped function serves every attempt whose configuration
      is the default; the fork bomb, the memory hog and the /tmp filler get
      their own function because their memory, time-out or storage differ.
  (2) Waits on the host are polls with a deadline, never fixed sleeps.
  (3) A real escape found by a test is marked xfail(strict=True) with the
      evidence in its reason, never weakened.
"""
import json
import os
import select
import socket
import threading
import time

import pytest
import requests

import lambda_util as lu
import tarnlib
from lambda_util import create, invoke, unique_name

HANDLER = "app.handler"
RUNTIME = "python3.11"
# A root server maps each instance to a host uid of its own from here
# (src/sandbox/internal.h: SANDBOX_HOST_ID_BASE, SANDBOX_HOST_ID_SLOTS).
HOST_ID_BASE = 0x7A000000
HOST_ID_SLOTS = 65536
MAX_PROCS = 1024  # src/fn/scheduler.c: .max_procs of every instance
DENIED = {"EROFS", "EACCES", "EPERM"}


def make(lam, hint, **kw):
    name = unique_name("hostile-" + hint)
    create(lam, name, "hostile", handler=HANDLER, runtime=RUNTIME, **kw)
    return name


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


@pytest.fixture(scope="module")
def hostile(lam):
    """The function serving every attempt of default configuration."""
    return make(lam, "main", MemorySize=256, Timeout=30)


def attempt(lam, fname, what, **event):
    event["attempt"] = what
    resp, body = invoke(lam, fname, event)
    assert "FunctionError" not in resp, "attempt %s crashed: %r" % (what, body)
    return body


def healthy(tarn):
    r = requests.get(tarn.endpoint + "/_tarn/health", timeout=10)
    return r.status_code == 200


def wait_until(fn, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def host_procs(with_parent=False):
    """{host pid: real uid} of every process on the host ({host pid: (real
    uid, parent pid)} with_parent)."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            uid = ppid = None
            with open("/proc/%s/status" % p) as f:
                for line in f:
                    if line.startswith("PPid:"):
                        ppid = int(line.split()[1])
                    elif line.startswith("Uid:"):
                        uid = int(line.split()[1])
                        break
        except OSError:
            continue
        if uid is not None:
            out[int(p)] = (uid, ppid) if with_parent else uid
    return out


def serves_no_invocation(pid):
    """True for the program of an instance started ahead and not yet
    claimed by any function (src/sandbox/pool.c), or of a function's
    template (src/sandbox/template.c), which its forks leave once they are
    made: its command line."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[0] in (b"tarn-pooled", b"tarn-template")
    except OSError:
        return False


def sandbox_pids(server):
    """Host pids of processes whose uid is a sandbox instance's, of the
    instances of `server` (its children, and theirs): not those of other
    servers running on the host at the same time, nor those of instances
    waiting in a pool (each instance has a host uid of its own: its init
    and program share it), which the pool refills at any time and which
    run nothing of a function, nor those of templates, which the server
    builds in the background after a function's first cold start."""
    procs = host_procs(with_parent=True)
    out = {}
    for p, (uid, _) in procs.items():
        if not HOST_ID_BASE <= uid < HOST_ID_BASE + HOST_ID_SLOTS:
            continue
        q = p
        for _ in range(64):
            q = procs.get(q, (None, None))[1]
            if q is None or q <= 1 or q == server.proc.pid:
                break
        if q == server.proc.pid:
            out[p] = uid
    pooled = {uid for p, uid in out.items() if serves_no_invocation(p)}
    return {p for p, uid in out.items() if uid not in pooled}


def needs_root_server():
    if os.geteuid() != 0:
        pytest.skip("instances get host uids of their own only under a root server")


def disk_bytes(path):
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for n in filenames + dirnames:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
            except OSError:
                pass
    return total


def host_ip():
    """The host's non-loopback IPv4 address, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))
        ip = s.getsockname()[0]
    except OSError:
        ip = None
    finally:
        s.close()
    return None if ip is None or ip.startswith("127.") else ip


# ---- processes ----

def test_host_processes_invisible(tarn, lam, hostile):
    server_pid, my_pid = tarn.proc.pid, os.getpid()
    r = attempt(lam, hostile, "processes", kill=[server_pid, my_pid])
    pids = r["pids"]
    # Only the instance's own: init (1) and the runtime with its helpers.
    assert 1 in pids and r["init_alive"]
    assert len(pids) <= 4, r["procs"]
    assert server_pid not in pids and my_pid not in pids, pids
    for pid, p in r["procs"].items():
        cmd = p["cmdline"].get("data", "")
        assert "pytest" not in cmd, (pid, cmd)
    assert r["kills"][str(server_pid)] == "ESRCH"
    assert r["kills"][str(my_pid)] == "ESRCH"
    assert tarn.running() and healthy(tarn)
    # init is not dumpable: its memory and environment are closed.
    assert not r["environ1"]["ok"] and not r["mem1"]["ok"]


def test_init_cmdline_does_not_leak_server_command_line(tarn, lam, hostile):
    r = attempt(lam, hostile, "processes", kill=[])
    cmd = r["cmdline1"].get("data", "")
    assert tarn.data not in cmd and "--data" not in cmd and "--listen" not in cmd, cmd
    for pid, p in r["procs"].items():
        text = p["cmdline"].get("data", "") + p["comm"].get("data", "")
        assert tarn.data not in text and tarn.workdir not in text, (pid, text)


# ---- files ----

def test_write_outside_tmp_refused(tarn, lam, hostile):
    token = unique_name("w")
    r = attempt(lam, hostile, "write_outside", token=token)
    tmp = "/tmp/tarn-ok-" + token
    assert r.pop(tmp) == "OK"
    for d in ["/var/task", "/", "/usr", "/etc", "/var/runtime", "/opt"]:
        path = os.path.join(d, "tarn-escape-" + token)
        assert r[path] in DENIED, (path, r[path])
        assert r[path + ".d"] in DENIED, (path, r[path + ".d"])
    leaked = {k: v for k, v in r.items() if v == "OK"}
    assert not leaked, leaked
    for existing in ["/var/task/app.py", "/etc/passwd", "/usr/bin/python3"]:
        assert r[existing] in DENIED, (existing, r[existing])
    # Nothing landed on the host: its system folders, its /tmp, the data dir.
    for d in ["/", "/usr", "/usr/lib", "/etc", "/opt", "/var", "/run", "/tmp"]:
        assert not os.path.lexists(os.path.join(d, "tarn-escape-" + token))
    assert not os.path.lexists("/tmp/tarn-ok-" + token)
    for dirpath, dirnames, filenames in os.walk(tarn.workdir):
        hits = [n for n in dirnames + filenames if token in n]
        assert not hits, (dirpath, hits)


def test_tmp_is_private_to_an_instance(lam, hostile):
    other = make(lam, "other")
    name = "marker-" + unique_name("tmp")
    r = attempt(lam, hostile, "tmp_put", name=name, content="secret of the first")
    assert name in r["listing"]
    r = attempt(lam, other, "tmp_list", name=name)
    assert name not in r["listing"] and not r["read"]["ok"], r
    assert not os.path.lexists(os.path.join("/tmp", name))


@pytest.fixture(scope="module")
def file_server(tmp_path_factory):
    """A server of its own whose credentials live in DATA/credentials (not
    in its environment), so there is a real secret file to go after; and
    the report of a function that went after it."""
    srv = tarnlib.Tarn(tmp_path_factory.mktemp("tarn"), env_credentials=False).start()
    try:
        cred_path = os.path.join(srv.data, "credentials")
        srv.access_key, srv.secret_key = tarnlib.read_credentials_file(cred_path)
        with open(cred_path) as f:
            secrets = [line.split("=", 1)[1].strip() for line in f if "=" in line]
        assert srv.secret_key in secrets
        lam2 = lu.lambda_client(srv)
        fname = make(lam2, "secrets")
        paths = [srv.data, cred_path, srv.workdir, os.path.dirname(srv.workdir),
                 os.path.join(srv.data, "sandbox"), os.path.join(srv.data, "run"),
                 srv.stderr_path]
        report = attempt(lam2, fname, "read_secrets", paths=paths)
        yield srv, paths, secrets, report
    finally:
        srv.stop_clean()


def test_server_data_and_home_unreadable(file_server):
    srv, paths, _, r = file_server
    for p in paths + ["/root", "/home", "/root/.aws/credentials", "/root/.ssh", "/etc/shadow",
                      "/proc/1/root", "/sys"]:
        got = r[p]
        assert not got["exists"] or (not got.get("ok", False) and "list" not in got), (p, got)
    # init is not dumpable: the server's environment copied into it stays closed.
    assert r["/proc/1/environ"] == {"exists": True, "ok": False, "error": "EACCES"}
    assert "tarn-init" in r["/proc/1/cmdline"]["data"]
    assert srv.data not in r["/proc/1/cmdline"]["data"]
    assert not any(k.startswith("TARN_") for k in r["environ"]), sorted(r["environ"])
    assert srv.running()


def test_server_secret_not_in_function_env(tarn, lam, hostile):
    # This server takes its secret from TARN_SECRET_KEY; an instance's init
    # is a copy of the server made at start, with that environment.
    r = attempt(lam, hostile, "read_secrets", paths=[tarn.data])
    assert not r[tarn.data]["exists"]
    assert not any(k.startswith("TARN_") for k in r["environ"]), sorted(r["environ"])
    assert "TARN_SECRET_KEY" not in r["/proc/self/environ"]["data"]
    assert r["/proc/1/environ"].get("ok") is False


def test_server_credentials_never_reach_function(file_server):
    _, _, secrets, r = file_server
    text = json.dumps(r)
    for secret in secrets:
        assert secret not in text


def test_function_credentials_cannot_manage_functions(tarn, lam, hostile):
    """A function's own key may invoke functions, never change them."""
    victim = make(lam, "victim")
    r = attempt(lam, hostile, "lambda_admin", victim=victim)
    assert r["key"] and r["key"] != tarn.access_key
    for op in ("list", "get", "update", "delete"):
        assert r[op] == "AccessDeniedException", (op, r)
    assert r["invoke"] == "OK 200", r
    conf = lam.get_function_configuration(FunctionName=victim)
    assert conf["Timeout"] != 9


# ---- network ----

def test_network_only_forwarded_ports(tarn, lam, hostile):
    ip = host_ip()
    listeners, udps = [], []
    tcp_targets, udp_targets = [], []
    for addr in ["127.0.0.1"] + ([ip] if ip else []):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((addr, 0))
        s.listen(8)
        s.setblocking(False)
        listeners.append(s)
        tcp_targets.append([addr, s.getsockname()[1]])
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((addr, 0))
        u.setblocking(False)
        udps.append(u)
        udp_targets.append([addr, u.getsockname()[1]])
    tcp_targets += [["127.0.0.1", tarn.port], ["8.8.8.8", 53], ["1.1.1.1", 443]]
    if ip:
        tcp_targets.append([ip, tarn.port])
    udp_targets += [["8.8.8.8", 53]]
    abstract = "tarn-e2e-" + unique_name("abs")
    a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    a.bind("\0" + abstract)
    a.listen(8)
    a.setblocking(False)
    listeners.append(a)
    try:
        r = attempt(lam, hostile, "connect",
                    tcp=tcp_targets + [["127.0.0.1", 9000], ["127.0.0.1", 9001]],
                    udp=udp_targets, abstract=[abstract],
                    dns=["example.com", "s3.amazonaws.com"])
        for host, port in tcp_targets:
            assert r["%s:%d" % (host, port)] in {"ECONNREFUSED", "ENETUNREACH",
                                                  "EHOSTUNREACH", "timeout"}, (host, port, r)
        assert r["@" + abstract] in {"ECONNREFUSED", "ENOENT"}, r
        assert r["127.0.0.1:9000"] == "OK" and r["127.0.0.1:9001"] == "OK", r
        for name, d in r["dns"].items():
            assert "error" in d, (name, d)
            assert d["seconds"] < 5, (name, d)
        assert r["udp 8.8.8.8:53"] in {"ENETUNREACH", "EHOSTUNREACH", "EPERM"}, r
        assert r["interfaces"] == ["lo"], r["interfaces"]
        assert r["routes"] == [], r["routes"]
        # Nothing reached the host's listeners.
        readable, _, _ = select.select(listeners + udps, [], [], 0.2)
        assert not readable, [s.getsockname() for s in readable]
    finally:
        for s in listeners + udps:
            s.close()


def test_platform_api_reachable(lam, hostile):
    r = attempt(lam, hostile, "s3_list")
    assert r["status"] == 200


# ---- kernel surfaces ----

def test_mount_unshare_setns_denied(lam, hostile):
    r = attempt(lam, hostile, "mounts")
    mountinfo = r.pop("mountinfo")
    for k in ["tmpfs", "bind", "remount_rw", "remount_task_rw", "proc", "unshare_user_ns",
              "unshare_user", "unshare_ns", "umount_tmp", "chroot"]:
        assert r[k] == "EPERM", (k, r[k])
    for k, v in r.items():
        if k.startswith("setns_"):
            assert v in {"EPERM", "open EACCES", "open EPERM"}, (k, v)
    assert not any(" /tmp/mnt " in line for line in mountinfo), mountinfo


def test_ptrace_denied(lam, hostile):
    r = attempt(lam, hostile, "ptrace")
    for k in ["child", "child_seize", "init", "init_seize", "vm_read_init", "vm_read_child"]:
        assert r[k] == "EPERM", (k, r)
    assert r["mem_init"] in DENIED, r


def test_no_capabilities(lam, hostile):
    r = attempt(lam, hostile, "caps")
    for k in ["CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"]:
        assert int(r[k], 16) == 0, (k, r[k])
    assert r["NoNewPrivs"] == "1"
    assert r["Seccomp"] == "2"
    # EINVAL: uid/gid 0 is not even mapped in the instance's user namespace.
    assert r["setuid"] in {"EPERM", "EINVAL"} and r["setgid"] in {"EPERM", "EINVAL"}, r
    assert r["setgroups"] == "EPERM", r
    assert r["uid"] != 0 and r["euid"] != 0 and r["gid"] != 0, r


def test_instance_host_uid_not_root(tarn, lam, hostile):
    needs_root_server()
    r = attempt(lam, hostile, "caps")
    ns = r["pidns"]
    mine = os.readlink("/proc/self/ns/pid")
    assert ns != mine

    def members():
        out = {}
        for p, uid in host_procs().items():
            try:
                if os.readlink("/proc/%d/ns/pid" % p) == ns:
                    out[p] = uid
            except OSError:
                pass
        return out
    # The instance stays warm after the invocation: its processes are there.
    procs = members()
    assert procs, "no host process in the instance's pid namespace %s" % ns
    assert tarn.proc.pid not in procs
    for p, uid in procs.items():
        assert uid != 0, (p, uid)
        assert HOST_ID_BASE <= uid < HOST_ID_BASE + HOST_ID_SLOTS, (p, uid)
    assert len(set(procs.values())) == 1


# ---- resource limits ----

def test_fork_bomb_contained(tarn, lam, hostile):
    needs_root_server()
    bomb = make(lam, "bomb", MemorySize=2048, Timeout=6)  # a loaded machine starts it slowly
    attempt(lam, hostile, "caps")  # the main instance is warm: part of "before"
    before = sandbox_pids(tarn)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], len(sandbox_pids(tarn) - before))
            time.sleep(0.02)
    t = threading.Thread(target=sample)
    t.start()
    try:
        resp, body = invoke(lam, bomb, {"attempt": "fork_bomb"}, LogType="Tail")
    finally:
        done.set()
        t.join()
    assert resp["FunctionError"] == "Unhandled", body
    # It did multiply, and never past the instance's limit (processes and
    # threads, init included). The function logs its first EAGAIN, but a
    # time-out may cut the log before it: not asserted.
    assert 10 <= peak[0] <= MAX_PROCS, peak[0]
    assert healthy(tarn)
    assert attempt(lam, hostile, "caps")["NoNewPrivs"] == "1"
    stray = wait_until(lambda: not (sandbox_pids(tarn) - before), timeout=30)
    assert stray, "processes of the fork bomb remain: %d" % len(sandbox_pids(tarn) - before)


def test_memory_limit_kills_and_reports(tarn, lam, hostile):
    hog = make(lam, "oom", MemorySize=128, Timeout=30)
    resp, body = invoke(lam, hog, {"attempt": "oom", "mb": 512})
    assert resp["FunctionError"] == "Unhandled", body
    assert body["errorType"] == "Runtime.OutOfMemory", body
    assert body["errorMessage"].endswith("Runtime exited with error: signal: killed"), body
    assert healthy(tarn)
    assert attempt(lam, hostile, "caps")["NoNewPrivs"] == "1"
    # The function still works for allocations under its limit.
    resp, body = invoke(lam, hog, {"attempt": "oom", "mb": 32})
    assert "FunctionError" not in resp and body == {"allocated_mb": 32}, body


def test_fill_tmp_stops_at_its_size(tarn, lam):
    # /tmp is a tmpfs charged to the instance's memory: room for both.
    filler = make(lam, "fill", MemorySize=1024, Timeout=60, EphemeralStorage={"Size": 512})
    before = disk_bytes(tarn.data)
    r = attempt(lam, filler, "fill_tmp", max_mb=2048)
    assert r["error"] in {"ENOSPC", "EFBIG"}, r
    assert r["error"] == "ENOSPC", r
    assert r["written"] <= 512 * tarnlib.MiB + 16 * tarnlib.MiB, r
    assert r["written"] >= 400 * tarnlib.MiB, r
    assert r["tmp_size"] <= 512 * tarnlib.MiB, r
    grown = disk_bytes(tarn.data) - before
    assert grown < 64 * tarnlib.MiB, grown
    assert healthy(tarn)


# ---- socket families and host paths in /proc ----

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_exotic_socket_families_denied(lam, hostile):
    r = attempt(lam, hostile, "families")
    for fam in ["AF_VSOCK", "AF_PACKET", "AF_ALG", "AF_KEY", "AF_BLUETOOTH", "AF_XDP"]:
        for kind in ["stream", "dgram", "raw", "seqpacket", "socketpair"]:
            assert r["%s/%s" % (fam, kind)] in {"EAFNOSUPPORT", "EPERM"}, (fam, kind, r)
    # what functions need still works
    for ok in ["AF_UNIX/stream", "AF_UNIX/dgram", "AF_UNIX/socketpair", "AF_INET/stream",
               "AF_INET/dgram", "AF_INET6/stream", "AF_NETLINK/raw"]:
        assert r[ok] == "OK", (ok, r)


def host_paths(tarn):
    """Host paths that must never show inside an instance."""
    return [tarn.data, tarn.workdir, "/tmp/pytest", REPO]


def test_proc_net_unix_names_no_host_path(tarn, lam, hostile):
    r = attempt(lam, hostile, "proc_views")
    text = r["/proc/net/unix"]
    assert text.startswith("Num"), text  # readable: the check below means something
    # the Runtime API connection of init is there, under its bare name
    assert "runtime.sock" in text, text
    for p in host_paths(tarn):
        assert p not in text, (p, text)
    for p in ["/proc/self/cgroup", "/proc/1/cmdline", "/proc/self/cmdline", "/proc/self/environ"]:
        for h in host_paths(tarn):
            assert h not in r[p], (p, h, r[p])


def test_mountinfo_shows_no_host_socket(tarn, lam, hostile):
    r = attempt(lam, hostile, "proc_views")
    text = r["/proc/self/mountinfo"]
    assert " /var/task " in text, text
    assert "runtime.sock" not in text and "platform.sock" not in text, text
    assert "/run/" not in text, text
    assert r["/run/tarn"] is None


def test_mountinfo_names_no_host_path(tarn, lam, hostile):
    """The mount table inside names no host folder: the code and the
    runtimes are overlays, not binds of DATA/fn/code/<sha> and runtimes/
    (whose mountinfo root field would be their host path)."""
    r = attempt(lam, hostile, "proc_views")
    binary = os.path.dirname(os.path.realpath(tarnlib.TARN_BIN))
    runtimes = os.path.realpath(os.path.join(binary, "..", "runtimes"))
    hidden = host_paths(tarn) + [binary, runtimes, "/work"]
    for key in ["/proc/self/mountinfo", "/proc/self/mounts", "/proc/1/mountinfo"]:
        text = r[key]
        # readable, with the mounts that used to show host paths
        assert " /var/task " in text and " /var/runtime " in text, (key, text)
        for p in hidden:
            assert p not in text, (key, p, text)
    assert "/usr/" in r["/proc/self/maps"], r["/proc/self/maps"]  # readable
    for p in hidden:
        assert p not in r["/proc/self/maps"], (p, r["/proc/self/maps"])
