"""tests/e2e/pg_util.py -- a real PostgreSQL server (Debian's, version 15)
started by a test, for tarn nodes whose metadata lives in PostgreSQL
(`tarn server --metadata postgres://...`).

Why: the PostgreSQL backend is tested against the database users run, not
a stand-in. PostgreSQL refuses to run as root, so when the tests run as
root, initdb and postgres run as the `postgres` user over a directory given
to it.

Invariants:
  (1) Everything the server writes is under the directory it is given.
  (2) It listens on 127.0.0.1 on a free port, with trust authentication for
      the local user only (the tests' machine is the only client).
"""
import os
import pwd
import shutil
import subprocess
import time

import pytest

from tarnlib import Tarn, free_port

BINDIR = "/usr/lib/postgresql/15/bin"


def _demote(uid, gid):
    def run():
        os.setgid(gid)
        os.setuid(uid)
    return run


class Postgres:
    """One PostgreSQL server with one database, `tarn`."""

    def __init__(self, workdir):
        self.dir = os.path.join(str(workdir), "pg")
        self.port = free_port()
        self.proc = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.user, self.uid, self.gid = "postgres", pw.pw_uid, pw.pw_gid
        else:
            self.user, self.uid, self.gid = pwd.getpwuid(os.geteuid()).pw_name, None, None
        self.url = "postgresql://%s@127.0.0.1:%d/tarn" % (self.user, self.port)

    def _run(self, argv, **kw):
        pre = _demote(self.uid, self.gid) if self.uid is not None else None
        return subprocess.run(argv, preexec_fn=pre, capture_output=True, text=True, **kw)

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        if self.uid is not None:
            os.chown(self.dir, self.uid, self.gid)
            # the path down to it must be searchable by that user
            d = os.path.dirname(self.dir)
            while d not in ("/", ""):
                st = os.stat(d)
                if not st.st_mode & 0o001:
                    os.chmod(d, st.st_mode | 0o001)
                d = os.path.dirname(d)
        data = os.path.join(self.dir, "data")
        if not os.path.exists(data):
            r = self._run([BINDIR + "/initdb", "-D", data, "-A", "trust", "-U", self.user,
                           "--no-sync", "-E", "UTF8"])
            assert r.returncode == 0, r.stderr
        pre = _demote(self.uid, self.gid) if self.uid is not None else None
        log = open(os.path.join(self.dir, "postgres.log"), "ab")
        self.proc = subprocess.Popen(
            [BINDIR + "/postgres", "-D", data, "-p", str(self.port), "-h", "127.0.0.1",
             "-k", self.dir, "-c", "max_connections=200", "-c", "fsync=on"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=pre)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = self._run([BINDIR + "/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)])
            if r.returncode == 0:
                break
            assert self.proc.poll() is None, self.log()
            time.sleep(0.1)
        else:
            raise AssertionError("postgres not ready\n" + self.log())
        r = self._run([shutil.which("psql") or "/usr/bin/psql", "-h", "127.0.0.1", "-p",
                       str(self.port), "-U", self.user, "-d", "postgres", "-c",
                       "CREATE DATABASE tarn"])
        assert r.returncode == 0 or "already exists" in r.stderr, r.stderr
        return self

    def sql(self, text):
        """Runs text with psql; returns its unaligned, tuples-only output."""
        r = self._run(["/usr/bin/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                       self.user, "-d", "tarn", "-At", "-c", text])
        assert r.returncode == 0, r.stderr
        return r.stdout

    def log(self):
        try:
            with open(os.path.join(self.dir, "postgres.log"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ---- a cluster's shared parts, for the tests of several nodes ----

@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    """One PostgreSQL for the module's nodes."""
    db = Postgres(tmp_path_factory.mktemp("pg")).start()
    yield db
    db.stop()


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """A third tarn holding the nodes' object bytes (bucket `blobs`)."""
    srv = Tarn(tmp_path_factory.mktemp("backend")).start()
    srv.client().create_bucket(Bucket="blobs")
    yield srv
    srv.stop_clean()


def two_nodes(pg, backend, tmp_path_factory, prefix="shared", extra=None):
    """Two nodes over pg's metadata and backend's bytes, started; a
    generator for a module fixture (`yield from`): at the end, each node
    still running must stop cleanly (a test that kills one restarts it)."""
    env = node_env(pg, backend, prefix)
    env.update(extra or {})
    made = [Tarn(tmp_path_factory.mktemp("node"), env=env) for _ in range(2)]
    for srv in made:
        srv.start()
    yield made
    for srv in made:
        if srv.running():
            srv.stop_clean()


def node_env(pg, backend, prefix="shared"):
    """The environment of a node over pg's metadata and backend's bytes."""
    return {"TARN_METADATA": pg.url, "TARN_OBJECTS": "s3://blobs/" + prefix,
            "TARN_OBJECTS_ENDPOINT": backend.endpoint,
            "TARN_OBJECTS_ACCESS_KEY": backend.access_key,
            "TARN_OBJECTS_SECRET_KEY": backend.secret_key}


def wait_for(cond, timeout=120, what="condition"):
    """cond()'s first true value, polled every 0.2 s for up to timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)
