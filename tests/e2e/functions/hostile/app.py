# tests/e2e/functions/hostile/app.py -- a hostile function: each attempt
# tries to get out of its sandbox and reports, as its JSON result, what
# happened (errno names, what it could read). test_sandbox_escape.py picks
# the attempt with event["attempt"] and judges the report; this code only
# tries and tells, it never decides whether the sandbox held.
import ctypes
import ctypes.util
import errno
import os
import signal
import socket
import time

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_REMOUNT = 0x20
PTRACE_ATTACH = 16
PTRACE_SEIZE = 0x4206
MiB = 1 << 20


def ename(n):
    return errno.errorcode.get(n, str(n)) if n else "OK"


def oserr(e):
    return ename(e.errno) if isinstance(e, OSError) and e.errno else type(e).__name__


def call(fn, *args):
    """A libc call through ctypes: "OK" or the errno's name."""
    ctypes.set_errno(0)
    rc = fn(*args)
    return "OK" if rc >= 0 else ename(ctypes.get_errno())


def read(path, limit=65536):
    try:
        with open(path, "rb") as f:
            return {"ok": True, "data": f.read(limit).decode("utf-8", "replace")}
    except Exception as e:
        return {"ok": False, "error": oserr(e)}


# ---- attempts ----

def processes(event):
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    procs = {}
    for p in pids:
        procs[p] = {"comm": read("/proc/%d/comm" % p),
                    "cmdline": read("/proc/%d/cmdline" % p)}
    kills = {}
    for pid in event.get("kill", []):
        try:
            os.kill(pid, signal.SIGKILL)
            kills[pid] = "OK"
        except OSError as e:
            kills[pid] = oserr(e)
    try:
        os.kill(1, signal.SIGKILL)  # init ignores what its pid namespace sends it
        kills["1"] = "OK"
    except OSError as e:
        kills["1"] = oserr(e)
    time.sleep(0.05)
    return {"pids": pids, "procs": procs, "kills": kills, "self": os.getpid(),
            "init_alive": os.path.exists("/proc/1"),
            "environ1": read("/proc/1/environ"), "cmdline1": read("/proc/1/cmdline"),
            "mem1": read("/proc/1/mem", 16), "status1": read("/proc/1/status")}


def write_outside(event):
    out = {}
    for d in ["/var/task", "/", "/usr", "/usr/lib", "/etc", "/var/runtime", "/opt",
              "/var", "/dev", "/proc/sys/kernel", "/run"]:
        path = os.path.join(d, "tarn-escape-%s" % event.get("token", "x"))
        try:
            with open(path, "w") as f:
                f.write("escaped")
            out[path] = "OK"
        except Exception as e:
            out[path] = oserr(e)
        try:
            os.mkdir(path + ".d")
            out[path + ".d"] = "OK"
        except Exception as e:
            out[path + ".d"] = oserr(e)
    for existing in ["/var/task/app.py", "/etc/passwd", "/usr/bin/python3",
                     "/proc/sys/kernel/hostname"]:
        try:
            with open(existing, "a") as f:
                f.write("#")
            out[existing] = "OK"
        except Exception as e:
            out[existing] = oserr(e)
    tmp = "/tmp/tarn-ok-%s" % event.get("token", "x")
    try:
        with open(tmp, "w") as f:
            f.write("fine")
        out[tmp] = "OK"
    except Exception as e:
        out[tmp] = oserr(e)
    return out


def tmp_put(event):
    with open("/tmp/" + event["name"], "w") as f:
        f.write(event["content"])
    return {"listing": sorted(os.listdir("/tmp"))}


def tmp_list(event):
    return {"listing": sorted(os.listdir("/tmp")),
            "read": read("/tmp/" + event["name"])}


def read_secrets(event):
    out = {}
    paths = list(event.get("paths", [])) + [
        "/root", "/home", "/root/.aws/credentials", "/root/.ssh", "/etc/shadow",
        "/etc/passwd", "/proc/1/environ", "/proc/1/cmdline", "/proc/1/root",
        "/proc/self/environ", "/run/tarn", "/sys"]
    for p in paths:
        r = {"exists": os.path.lexists(p)}
        try:
            if os.path.isdir(p):
                r["list"] = sorted(os.listdir(p))
            else:
                r.update(read(p))
        except Exception as e:
            r["error"] = oserr(e)
        out[p] = r
    out["environ"] = dict(os.environ)
    return out


def connect(event):
    res = {}
    for host, port in event.get("tcp", []):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        t0 = time.monotonic()
        try:
            s.connect((host, port))
            s.sendall(b"escaped\n")
            res["%s:%d" % (host, port)] = "OK"
        except Exception as e:
            res["%s:%d" % (host, port)] = oserr(e)
        res["%s:%d:seconds" % (host, port)] = round(time.monotonic() - t0, 3)
        s.close()
    for name in event.get("abstract", []):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect("\0" + name)
            res["@" + name] = "OK"
        except Exception as e:
            res["@" + name] = oserr(e)
        s.close()
    for host, port in event.get("udp", []):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for _ in range(3):
                s.sendto(b"escaped\n", (host, port))
            res["udp %s:%d" % (host, port)] = "OK"
        except Exception as e:
            res["udp %s:%d" % (host, port)] = oserr(e)
        s.close()
    dns = {}
    for name in event.get("dns", []):
        t0 = time.monotonic()
        try:
            dns[name] = {"result": sorted({a[4][0] for a in socket.getaddrinfo(name, 443)})}
        except Exception as e:
            dns[name] = {"error": type(e).__name__ + ": " + str(e)}
        dns[name]["seconds"] = round(time.monotonic() - t0, 3)
    res["dns"] = dns
    try:
        with open("/proc/net/route") as f:
            res["routes"] = f.read().splitlines()[1:]
    except OSError as e:
        res["routes"] = oserr(e)
    res["interfaces"] = sorted(n for _, n in socket.if_nameindex())
    return res


def s3_list(event):
    import boto3
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    r = client.list_buckets()
    return {"status": r["ResponseMetadata"]["HTTPStatusCode"],
            "buckets": [b["Name"] for b in r.get("Buckets", [])]}


def lambda_admin(event):
    """Tries the Lambda control plane with the function's own credentials:
    list, reconfigure and delete another function; then invokes it."""
    import boto3
    import botocore.exceptions
    client = boto3.client("lambda", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    res = {"key": os.environ.get("AWS_ACCESS_KEY_ID", "")}
    victim = event["victim"]
    tries = {
        "list": lambda: client.list_functions(),
        "get": lambda: client.get_function(FunctionName=victim),
        "update": lambda: client.update_function_configuration(FunctionName=victim,
                                                                Timeout=9),
        "delete": lambda: client.delete_function(FunctionName=victim),
        "invoke": lambda: client.invoke(FunctionName=victim, Payload=b'{"attempt":"caps"}'),
    }
    for name, fn in tries.items():
        try:
            r = fn()
            res[name] = "OK %d" % r["ResponseMetadata"]["HTTPStatusCode"]
        except botocore.exceptions.ClientError as e:
            res[name] = e.response["Error"]["Code"]
    return res


def mounts(event):
    os.makedirs("/tmp/mnt", exist_ok=True)
    mount = libc.mount
    mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                      ctypes.c_void_p]
    res = {
        "tmpfs": call(mount, b"tmpfs", b"/tmp/mnt", b"tmpfs", 0, None),
        "bind": call(mount, b"/", b"/tmp/mnt", None, MS_BIND | MS_REC, None),
        "remount_rw": call(mount, None, b"/", None, MS_REMOUNT | MS_BIND, None),
        "remount_task_rw": call(mount, None, b"/var/task", None, MS_REMOUNT | MS_BIND, None),
        "proc": call(mount, b"proc", b"/tmp/mnt", b"proc", 0, None),
        "unshare_user_ns": call(libc.unshare, CLONE_NEWUSER | CLONE_NEWNS),
        "unshare_user": call(libc.unshare, CLONE_NEWUSER),
        "unshare_ns": call(libc.unshare, CLONE_NEWNS),
        "umount_tmp": call(libc.umount2, b"/tmp", 2),
        "chroot": call(libc.chroot, b"/tmp"),
    }
    for ns in ["mnt", "net", "user", "pid"]:
        for who in ["self", "1"]:
            key = "setns_%s_%s" % (who, ns)
            try:
                fd = os.open("/proc/%s/ns/%s" % (who, ns), os.O_RDONLY)
            except OSError as e:
                res[key] = "open " + oserr(e)
                continue
            res[key] = call(libc.setns, fd, 0)
            os.close(fd)
    res["mountinfo"] = read("/proc/self/mountinfo")["data"].splitlines()
    return res


def ptrace(event):
    ptrace = libc.ptrace
    ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    ptrace.restype = ctypes.c_long
    pid = os.fork()
    if pid == 0:
        try:
            time.sleep(30)
        finally:
            os._exit(0)
    try:
        res = {"child": call(ptrace, PTRACE_ATTACH, pid, None, None),
               "child_seize": call(ptrace, PTRACE_SEIZE, pid, None, None),
               "init": call(ptrace, PTRACE_ATTACH, 1, None, None),
               "init_seize": call(ptrace, PTRACE_SEIZE, 1, None, None)}
        iov = (ctypes.c_char * 16)()
        iovec = (ctypes.c_void_p * 2)(ctypes.cast(iov, ctypes.c_void_p), 16)
        res["vm_read_init"] = call(libc.process_vm_readv, 1, iovec, 1, iovec, 1, 0)
        res["vm_read_child"] = call(libc.process_vm_readv, pid, iovec, 1, iovec, 1, 0)
        res["mem_init"] = read("/proc/1/mem", 16).get("error", "OK")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return res


def fork_bomb(event):
    me = os.getpid()
    first_error = None
    forks = 0
    try:
        while True:
            try:
                if os.fork() == 0:
                    forks = 0
                    continue
                forks += 1
            except OSError as e:
                if os.getpid() == me and first_error is None:
                    first_error = oserr(e)
                    os.write(2, ("fork bomb: fork failed with %s after %d forks\n"
                                 % (first_error, forks)).encode())
            except Exception:
                pass
    finally:
        if os.getpid() != me:
            os._exit(0)


def oom(event):
    chunks = []
    for _ in range(int(event.get("mb", 512)) // 16):
        b = bytearray(16 * MiB)
        for i in range(0, len(b), 4096):
            b[i] = 1
        chunks.append(b)
    return {"allocated_mb": 16 * len(chunks)}


def fill_tmp(event):
    buf = b"\xa5" * MiB
    written = 0
    error = None
    files = []
    try:
        while written < int(event.get("max_mb", 2048)) * MiB:
            path = "/tmp/fill-%d" % len(files)
            files.append(path)
            with open(path, "wb", buffering=0) as f:
                for _ in range(64):
                    n = f.write(buf)
                    written += n
                    if n != len(buf):
                        raise OSError(errno.ENOSPC, "short write")
    except OSError as e:
        error = oserr(e)
    st = os.statvfs("/tmp")
    for p in files:
        try:
            os.unlink(p)
        except OSError:
            pass
    return {"written": written, "error": error,
            "tmp_size": st.f_blocks * st.f_frsize}


def caps(event):
    status = {}
    for line in read("/proc/self/status")["data"].splitlines():
        k, _, v = line.partition(":")
        status[k] = v.strip()
    res = {k: status.get(k) for k in ["CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb",
                                      "NoNewPrivs", "Seccomp", "Uid", "Gid"]}
    for name, fn in [("setuid", os.setuid), ("setgid", os.setgid)]:
        try:
            fn(0)
            res[name] = "OK"
        except OSError as e:
            res[name] = oserr(e)
    try:
        os.setgroups([0])
        res["setgroups"] = "OK"
    except OSError as e:
        res["setgroups"] = oserr(e)
    res["uid"], res["euid"], res["gid"] = os.getuid(), os.geteuid(), os.getgid()
    res["uid_map"] = read("/proc/self/uid_map").get("data")
    res["pidns"] = os.readlink("/proc/self/ns/pid")
    res["pid"] = os.getpid()
    return res


# Socket families a function has no use for (seccomp.c): each must fail.
FAMILIES = {"AF_VSOCK": 40, "AF_PACKET": 17, "AF_ALG": 38, "AF_KEY": 15,
            "AF_BLUETOOTH": 31, "AF_APPLETALK": 5, "AF_X25": 9, "AF_CAN": 29,
            "AF_TIPC": 30, "AF_RDS": 21, "AF_XDP": 44, "AF_NETLINK": 16,
            "AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10}


def families(event):
    res = {}
    for name, fam in FAMILIES.items():
        for kind, stype in [("stream", socket.SOCK_STREAM), ("dgram", socket.SOCK_DGRAM),
                            ("raw", socket.SOCK_RAW), ("seqpacket", socket.SOCK_SEQPACKET)]:
            fd = libc.socket(fam, stype, 0)
            err = ctypes.get_errno()
            res["%s/%s" % (name, kind)] = "OK" if fd >= 0 else ename(err)
            if fd >= 0:
                os.close(fd)
        sv = (ctypes.c_int * 2)()
        ctypes.set_errno(0)
        rc = libc.socketpair(fam, socket.SOCK_STREAM, 0, sv)
        res["%s/socketpair" % name] = "OK" if rc == 0 else ename(ctypes.get_errno())
        if rc == 0:
            os.close(sv[0])
            os.close(sv[1])
    return res


def proc_views(event):
    """What the instance's /proc tells about the host."""
    out = {}
    for p in ["/proc/net/unix", "/proc/self/mountinfo", "/proc/self/mounts",
              "/proc/self/cgroup", "/proc/self/environ", "/proc/self/cmdline",
              "/proc/1/cmdline", "/proc/1/environ", "/proc/1/mountinfo",
              "/proc/net/tcp", "/proc/net/tcp6", "/proc/self/maps"]:
        r = read(p, 1 << 20)
        out[p] = r.get("data") if r["ok"] else "error " + r["error"]
    out["/run/tarn"] = sorted(os.listdir("/run/tarn")) if os.path.isdir("/run/tarn") else None
    return out


ATTEMPTS = {f.__name__: f for f in [processes, write_outside, tmp_put, tmp_list,
                                     read_secrets, connect, s3_list, lambda_admin, mounts, ptrace,
                                     fork_bomb, oom, fill_tmp, caps, families,
                                     proc_views]}


def handler(event, context):
    return ATTEMPTS[event["attempt"]](event)
