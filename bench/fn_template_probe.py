#!/usr/bin/python3
"""bench/fn_template_probe.py -- what a per-function template would cost and
buy (issue 14), measured outside the server: a Python process that has
imported a handler, living in a sandbox of its own, whose forks are
instances with fresh namespaces.

Not the server's code path: a model of it, to decide whether the design
pays before it is built into src/sandbox. Needs root (it plays the server:
it makes the function's user namespace and writes its id maps).

The route (src/sandbox/zygote.c, "a per-function template"):
  F      a "function sandbox": user namespace U_F mapping one uid (993),
         mount/net/UTS/IPC namespaces, /tmp a tmpfs, no capability, and a
         seccomp filter with an instance's namespace, mount and ptrace rows
         but setns allowed. A second function F2 beside it.
  T      the template, in F: imports the handler module, runs the
         before-snapshot hooks, then waits for "fork" requests. At start it
         is handed F2's user namespace (as if an fd had leaked) and tries
         to join it, and tries unshare(CLONE_NEWUSER).
  X, X2  per instance, made ahead by the trusted side (here this script;
         in tarn the spawner, which never runs a function's code): X joins
         U_F (and F's network namespace), takes uid 993, makes a user
         namespace N nested in U_F (owned by uid 993, mapping only 993)
         and, owned by N, fresh mount/UTS/IPC/cgroup namespaces (and
         network, in the "own net ns" variant), a fresh /tmp tmpfs, the
         hostname; then a pid namespace whose pid 1 (X2) mounts its /proc,
         drops its capabilities, turns non-dumpable and stays as the
         reaper. X hands nsfs fds of all of them to T (nsfs fds, not a
         pidfd of X2: setns through a pidfd needs ptrace access to X2,
         which a non-dumpable X2 refuses, and must).
  C, G   per instance, on the path: C joins them (setns, user first: as
         N's owner in N's parent, the kernel gives it every capability in
         N) and G, its child, is pid 2 of the new pid namespace. Two
         variants: two os.fork()s (C and G each copy T's page tables) or
         a CLONE_VM|CLONE_VFORK C that clones G (bench/fn/template_fork.c,
         one copy). G drops every capability it holds in N, loads a
         filter that also denies setns, runs the after-restore hooks
         (random reseeded by the interpreter's fork hooks), handles one
         event, answers. In the first round G first tries, as code that
         skips the drop would, what its capabilities in N reach.

Printed: p50/p90 of a cold start through the template (request to
answer) per variant, of a bare fork of T (no namespace: the floor), of
`python3 -c pass` and of `python3` loading the runtime client's module,
importing the handler and answering (an exec'd start), interleaved in one
run; the trusted side's work ahead per instance; the steps of each path;
and the checks (distinct pid namespaces and /tmp, random values and uuids,
the hook run once in each, unshare refused, what the hostile tries got).

A second function's template imports nothing ahead and its bare forks
import the handler themselves (what the runtime zygote and its pool
leave to an instance): the difference is what a template saves.
PROBE_IMPORTS="boto3 ..." adds imports to the handler module.

Usage: sudo [PROBE_IMPORTS=...] bench/fn_template_probe.py [ROUNDS]   (default 30)
"""
import ctypes
import ctypes.util
import importlib.util
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
UID = 993
BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runtimes", "python", "bootstrap.py")

libc = ctypes.CDLL(None, use_errno=True)
libsc = ctypes.CDLL("libseccomp.so.2", use_errno=True)

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x2000000, 0x4000000, 0x8000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
NS_ALL = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | CLONE_NEWPID
MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x4000, 0x40000, 2, 4, 8
SYS_pidfd_open, SYS_capset = 434, 126
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECCOMP = 38, 24, 22
SCMP_ACT_ALLOW = 0x7fff0000


def check(rc, what):
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))
    return rc


def unshare(flags):
    check(libc.unshare(flags), "unshare %#x" % flags)


def mount(src, tgt, fs, flags, data=None):
    check(libc.mount(src and src.encode(), tgt.encode(), fs and fs.encode(), ctypes.c_ulong(flags),
                     data and data.encode()), "mount %s" % tgt)


def write(path, s):
    with open(path, "w") as f:
        f.write(s)


def drop_caps():
    for c in range(64):
        libc.prctl(PR_CAPBSET_DROP, c, 0, 0, 0)
    hdr = struct.pack("II", 0x20080522, 0)
    data = bytes(24)
    check(libc.syscall(SYS_capset, hdr, data), "capset")


def filter_bpf(deny_setns):
    """A representative instance filter (src/sandbox/seccomp.c's namespace,
    mount and ptrace rows), compiled to BPF bytes."""
    libsc.seccomp_init.restype = ctypes.c_void_p
    ctx = ctypes.c_void_p(libsc.seccomp_init(SCMP_ACT_ALLOW))
    eperm = 0x00050000 | 1
    enosys = 0x00050000 | 38
    names = ["unshare", "mount", "umount2", "pivot_root", "chroot", "ptrace", "fsopen", "fsmount",
             "move_mount", "open_tree", "keyctl", "bpf", "sethostname"]
    if deny_setns:
        names.append("setns")
    for n in names:
        nr = libsc.seccomp_syscall_resolve_name(n.encode())
        check(libsc.seccomp_rule_add(ctx, eperm, nr, 0), n)
    nr = libsc.seccomp_syscall_resolve_name(b"clone3")
    check(libsc.seccomp_rule_add(ctx, enosys, nr, 0), "clone3")
    nr = libsc.seccomp_syscall_resolve_name(b"clone")

    class Arg(ctypes.Structure):
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]
    SCMP_CMP_MASKED_EQ = 7
    for bit in (CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP):
        check(libsc.seccomp_rule_add(ctx, eperm, nr, 1, Arg(0, SCMP_CMP_MASKED_EQ, bit, bit)), "clone")
    r, w = os.pipe()
    check(libsc.seccomp_export_bpf(ctx, w), "export")
    os.close(w)
    out = b""
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        out += b
    os.close(r)
    libsc.seccomp_release(ctx)
    return out


def load_bpf(prog):
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = struct.pack("HxxxxxxQ", len(prog) // 8, ctypes.addressof(buf))
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    check(libc.prctl(PR_SET_SECCOMP, 2, ctypes.c_char_p(fprog), 0, 0), "seccomp")


def send_fds(sock, fds, msg=b"x"):
    sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("%di" % len(fds), *fds))]
                 if fds else [])


def recv_fds(sock):
    msg, anc, _, _ = sock.recvmsg(256, socket.CMSG_SPACE(4 * 16))
    data = anc[0][2] if anc else b""
    return msg, list(struct.unpack("%di" % (len(data) // 4), data[:len(data) // 4 * 4]))


HANDLER = r'''
import json, random, uuid, decimal, datetime, hashlib, base64, logging
%s
from snapshot_restore_py import register_after_restore
STATE = {"restored": 0}
@register_after_restore
def _restored():
    STATE["restored"] += 1
def handler(event, context):
    import ctypes
    unshare = "allowed" if ctypes.CDLL(None).unshare(0x20000) == 0 else "refused"
    tmp = sorted(__import__("os").listdir("/tmp"))
    procs = sorted(int(d) for d in __import__("os").listdir("/proc") if d.isdigit())
    open("/tmp/mine", "w").write("x")
    return {"pid": __import__("os").getpid(), "pidns": __import__("os").readlink("/proc/self/ns/pid"),
            "rand": random.random(), "uuid": str(uuid.uuid4()), "restored": STATE["restored"], "procs": procs,
            "tmp_before": tmp, "unshare": unshare, "hostname": __import__("socket").gethostname()}
'''


def template_main(ctl, code_dir, lib, lazy):
    """T: in F's namespaces, no capability, template filter; imports the
    handler, then forks an instance per request."""
    os.setresgid(UID, UID, UID)
    os.setresuid(UID, UID, UID)
    drop_caps()                           # uid 0 was never ours here: the kernel keeps them
    load_bpf(filter_bpf(deny_setns=False))
    inst_filter = filter_bpf(deny_setns=True)
    tf = ctypes.PyDLL(lib)                # the GIL stays held across the call
    tf.tmpl_fork.restype = ctypes.c_long
    hostile = {}
    msg, others = recv_fds(ctl)           # another function's user namespace, as if leaked
    for other in others:
        rc = libc.setns(other, CLONE_NEWUSER)
        hostile["template: setns into another function's user ns"] = (
            "allowed" if rc == 0 else "refused: " + os.strerror(ctypes.get_errno()))
        os.close(other)
    rc = libc.unshare(CLONE_NEWUSER)
    hostile["template: unshare(CLONE_NEWUSER)"] = "allowed" if rc == 0 else "refused"
    sys.path.insert(0, code_dir)
    # the runtime client's snapshot_restore_py (runtimes/python/bootstrap.py)
    spec = importlib.util.spec_from_file_location("tarn_bootstrap", BOOTSTRAP)
    boot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(boot)
    hooks = sys.modules["snapshot_restore_py"] = boot._snapshot_restore_module()
    app = None
    if not lazy:
        import app                        # the handler's import, once
        for f, a, k in hooks.get_before_snapshot():
            f(*a, **k)
    ctl.send(json.dumps(hostile).encode())
    while True:
        msg, nsfds = recv_fds(ctl)
        if not msg:
            os._exit(0)
        t0, mode, probe = msg.split()
        probe = probe == b"1"
        marks = [time.perf_counter()]
        if mode == b"vfork":              # one copy of the memory (bench/fn/template_fork.c)
            arr = (ctypes.c_int * len(nsfds))(*nsfds)
            ctypes.pythonapi.PyOS_BeforeFork()
            c = tf.tmpl_fork(arr, len(nsfds))
            if c != 0:
                ctypes.pythonapi.PyOS_AfterFork_Parent()
                if c < 0:
                    ctl.send(json.dumps({"error": os.strerror(-c)}).encode())
            else:
                ctypes.pythonapi.PyOS_AfterFork_Child()
                marks.append(time.perf_counter())
                instance(ctl, app, inst_filter, nsfds, marks, t0, probe)
        else:                             # two os.fork()s
            c = os.fork()
            if c == 0:
                marks.append(time.perf_counter())
                if nsfds:
                    try:
                        for fd in nsfds:  # the user namespace first: the others are N's
                            check(libc.setns(fd, 0), "setns")
                    except OSError as e:
                        ctl.send(json.dumps({"error": str(e)}).encode())
                        os._exit(1)
                    marks.append(time.perf_counter())
                    if os.fork() != 0:    # G: the first child in X2's pid namespace but X2
                        os._exit(0)
                    marks.append(time.perf_counter())
                instance(ctl, app, inst_filter, nsfds, marks, t0, probe)
        for fd in nsfds:
            os.close(fd)
        if c > 0:
            os.waitpid(c, 0)


def instance(ctl, app, inst_filter, nsfds, marks, t0, probe):
    """G: what code that skips the drop would hold in N, then the drop, the
    after-restore hooks, the event, the answer."""
    exposure = {}
    if probe:
        try:
            socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
            exposure["raw socket (CAP_NET_RAW in N)"] = "allowed"
        except OSError:
            exposure["raw socket (CAP_NET_RAW in N)"] = "refused"
        try:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.setsockopt(socket.SOL_SOCKET, 36, 1)    # SO_MARK: CAP_NET_ADMIN over the net ns
            exposure["SO_MARK (CAP_NET_ADMIN over the net ns)"] = "allowed"
        except OSError:
            exposure["SO_MARK (CAP_NET_ADMIN over the net ns)"] = "refused"
        finally:
            u.close()
        exposure["sethostname in N"] = "allowed" if libc.sethostname(b"x", 1) == 0 else "refused"
        try:
            os.close(os.open("/proc/1/mem", os.O_RDWR))    # the instance's pid 1 (X2)
            exposure["open pid 1's memory (caps in N)"] = "allowed"
        except OSError as e:
            exposure["open pid 1's memory (caps in N)"] = "refused: " + e.strerror
    if nsfds:
        drop_caps()
        load_bpf(inst_filter)
        marks.append(time.perf_counter())
        for fd in nsfds:
            os.close(fd)
    if app is None:
        import app                        # a runtime-only template: the import is the instance's
    else:
        for f, a, k in sys.modules["snapshot_restore_py"].get_after_restore():
            f(*a, **k)
    out = app.handler({"t0": t0.decode()}, None)
    marks.append(time.perf_counter())
    out["marks"] = [(b - a) * 1000 for a, b in zip(marks, marks[1:])]
    out["exposure"] = exposure
    ctl.send(json.dumps(out).encode())
    os._exit(0)


def make_function(code_dir, lib, other=None, lazy=False):
    """F: a child in a new user namespace (map 993 -> 993) and fresh
    mount/net/UTS/IPC namespaces with /tmp a tmpfs; returns (pid, ctl)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        a.close()
        os.close(w)
        unshare(CLONE_NEWUSER)
        b.send(b"unshared")
        os.read(r, 1)                     # maps written
        unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
        template_main(b, code_dir, lib, lazy)
    b.close()
    os.close(r)
    assert a.recv(64) == b"unshared"
    write("/proc/%d/uid_map" % pid, "%d %d 1\n" % (UID, UID))
    write("/proc/%d/setgroups" % pid, "deny")
    write("/proc/%d/gid_map" % pid, "%d %d 1\n" % (UID, UID))
    os.write(w, b"g")
    os.close(w)
    if other is not None:
        send_fds(a, [os.open("/proc/%d/ns/user" % other, os.O_RDONLY)])
    else:
        a.sendmsg([b"none"])
    hostile = json.loads(a.recv(4096))
    return pid, a, hostile


def prepare_namespaces(fpid, n, own_net):
    """X/X2, ahead: the instance's namespaces, nested in F's user namespace;
    returns fds of them (user first; pid_for_children last: X2, pid 1, is
    in it), the socket that keeps X2 and the ms spent."""
    t = time.perf_counter()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    x = os.fork()
    if x == 0:
        a.close()
        try:
            ufd = os.open("/proc/%d/ns/user" % fpid, os.O_RDONLY)
            nfd = os.open("/proc/%d/ns/net" % fpid, os.O_RDONLY)
            check(libc.setns(ufd, CLONE_NEWUSER), "setns user")
            check(libc.setns(nfd, CLONE_NEWNET), "setns net")   # F's: kept when not own_net
            os.setresgid(UID, UID, UID)
            os.setresuid(UID, UID, UID)
            libc.prctl(4, 1, 0, 0, 0)     # PR_SET_DUMPABLE: the uid change cleared it; /proc/self/*_map need it
            unshare(CLONE_NEWUSER)        # N: owned by 993, nested in U_F
            write("/proc/self/uid_map", "%d %d 1\n" % (UID, UID))
            write("/proc/self/setgroups", "deny")
            write("/proc/self/gid_map", "%d %d 1\n" % (UID, UID))
            unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP
                    | (CLONE_NEWNET if own_net else 0))
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
            socket.sethostname("inst-%d" % n)
            unshare(CLONE_NEWPID)
            # opened before X2 mounts its /proc over the one X reads them from;
            # pid_for_children has no namespace behind it before X2 exists
            names = ["user", "mnt", "uts", "ipc", "cgroup"] + (["net"] if own_net else [])
            fds = [os.open("/proc/self/ns/" + k, os.O_RDONLY) for k in names]
            gr, gw = os.pipe()
            x2 = os.fork()
            if x2 == 0:                   # pid 1 of the instance
                os.close(gw)
                os.read(gr, 1)
                mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                drop_caps()
                libc.prctl(4, 0, 0, 0, 0)  # not dumpable: caps in N give no way into its memory
                b.send(b"up")
                b.recv(1)                 # the instance is over: its pid ns goes with pid 1
                os._exit(0)
            fds.append(os.open("/proc/self/ns/pid_for_children", os.O_RDONLY))
            os.write(gw, b"g")
            send_fds(b, fds, b"fds")
            os._exit(0)
        except Exception as e:
            b.send(("error " + str(e)).encode())
            os._exit(1)
    b.close()
    nsfds, up = None, False
    while nsfds is None or not up:
        m, fds = recv_fds(a)
        if not m or m.startswith(b"error"):
            raise RuntimeError(m.decode())
        if m == b"up":
            up = True
        else:
            nsfds = fds
    os.waitpid(x, 0)
    return nsfds, a, (time.perf_counter() - t) * 1000


def cold(ctl, nsfds, mode, probe=False):
    t = time.perf_counter()
    send_fds(ctl, nsfds, b"%f %s %d" % (t, mode, probe))
    out = json.loads(ctl.recv(65536))
    return (time.perf_counter() - t) * 1000, out


def p(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    if os.geteuid() != 0:
        sys.exit("needs root: it plays the server (user namespaces, id maps)")
    code = tempfile.mkdtemp(prefix="tmpl-", dir="/var/tmp")   # /tmp is hidden in F
    os.chmod(code, 0o755)
    with open(os.path.join(code, "app.py"), "w") as f:
        f.write(HANDLER % "".join("import %s\n" % m for m in os.environ.get("PROBE_IMPORTS", "").split()))
    os.chmod(os.path.join(code, "app.py"), 0o644)
    lib = os.path.join(code, "template_fork.so")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", lib,
                    os.path.join(os.path.dirname(os.path.abspath(__file__)), "fn", "template_fork.c")],
                   check=True)
    # another function, for the template to try to reach; it imports nothing
    # ahead, as the runtime zygote and its pool do
    f2pid, f2ctl, _ = make_function(code, lib, lazy=True)
    fpid, ctl, hostile = make_function(code, lib, other=f2pid)
    variants = [("own net ns, two forks", True, b"py"), ("own net ns, vfork+fork", True, b"vfork"),
                ("F's net ns, vfork+fork", False, b"vfork")]
    res = {}
    marks = {}
    outs = []
    exposure = {}
    n = 0
    for i in range(ROUNDS):
        for name, own, mode in variants:
            n += 1
            nsfds, keep, ms = prepare_namespaces(fpid, n, own)
            res.setdefault("ahead (X, X2), " + name.split(",")[0], []).append(ms)
            dt, out = cold(ctl, nsfds, mode, probe=(i == 0))
            if "error" in out:
                sys.exit("template fork failed (%s): %s" % (name, out["error"]))
            res.setdefault("template, " + name, []).append(dt)
            marks.setdefault(name, []).append(out["marks"])
            outs.append(out)
            if out["exposure"]:
                exposure[name.split(",")[0]] = out["exposure"]
            for fd in nsfds:
                os.close(fd)
            keep.close()                  # X2 ends when G has and this is gone
        dt, out = cold(ctl, [], b"py")
        res.setdefault("bare fork of the template (no namespace)", []).append(dt)
        marks.setdefault("bare fork", []).append(out["marks"])
        dt, out = cold(f2ctl, [], b"py")
        res.setdefault("bare fork, no import ahead (the pool's way)", []).append(dt)
        marks.setdefault("bare fork, import in the instance", []).append(out["marks"])
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        res.setdefault("python3 -c pass", []).append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sys, importlib.util as u; "   # as the runtime client would
                        "s = u.spec_from_file_location('b', %r); b = u.module_from_spec(s); s.loader.exec_module(b); "
                        "sys.modules['snapshot_restore_py'] = b._snapshot_restore_module(); "
                        "sys.path.insert(0, %r); import app; app.handler({}, None)" % (BOOTSTRAP, code)],
                       check=True, stdout=subprocess.DEVNULL,
                       cwd=tempfile.gettempdir())
        res.setdefault("python3 exec'd, import, handle", []).append((time.perf_counter() - t) * 1000)
    ctl.close()
    os.waitpid(fpid, 0)
    f2ctl.close()
    os.waitpid(f2pid, 0)
    shutil.rmtree(code)
    print("load %s, %d rounds, kernel %s" % (open("/proc/loadavg").read().split()[0], ROUNDS, os.uname().release))
    for k, xs in res.items():
        print("%-46s p50 %7.2f ms  p90 %7.2f ms" % (k, statistics.median(xs), p(xs, 0.9)))
    steps = {"two forks": ["T's fork (C runs)", "setns", "C's fork (G runs)", "caps dropped, filter loaded",
                           "hooks, handler"],
             "vfork": ["vfork, setns, clone (G runs)", "caps dropped, filter loaded", "hooks, handler"],
             "bare": ["fork", "hooks, handler"]}
    for name, ms in marks.items():
        key = "two forks" if "two" in name else "vfork" if "vfork" in name else "bare"
        print("  " + name + ": " + ", ".join("%s %.2f" % (st, statistics.median(m[j] for m in ms))
                                            for j, st in enumerate(steps[key])) + " (p50, ms)")
    ns = [o for o in outs if "exposure" in o and o["pid"] == 2]
    print("checks: %d of %d instances in a pid namespace of their own (pid 2, /proc shows %s), "
          "/tmp empty in each: %s, "
          "distinct random: %s, distinct uuid: %s, after_restore ran once in each: %s, unshare in G: %s, "
          "hostnames distinct: %s" % (
              len(ns), len(outs), sorted({tuple(o["procs"]) for o in ns}),
              all(o["tmp_before"] == [] for o in outs), len({o["rand"] for o in outs}) == len(outs),
              len({o["uuid"] for o in outs}) == len(outs), all(o["restored"] == 1 for o in outs),
              sorted({o["unshare"] for o in outs}), len({o["hostname"] for o in outs}) == len(outs)))
    for k, v in hostile.items():
        print("hostile: %-50s %s" % (k, v))
    for net, d in exposure.items():
        for k, v in d.items():
            print("hostile, %s, before G's drop: %-34s %s" % (net, k, v))


if __name__ == "__main__":
    main()
