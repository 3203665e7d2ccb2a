"""tests/e2e/tarnlib.py -- what every end-to-end test shares: a real `tarn server`
on a free port with its own data directory, and the clients that talk to it.

Why: the end-to-end tests drive tarn with the clients users run (the AWS CLI,
boto3, the JavaScript SDK), so a server is started exactly as a user starts
it and stopped the way a service manager stops it (SIGTERM, exit code 0).

Invariants:
  (1) Nothing outside the temporary directory a test gets is written.
  (2) The server's stdout and stderr go to files (never to a pipe that could
      fill up and block it), so a failure can show them.
  (3) Raw requests are signed by botocore's SigV4 code, never by our own, so
      a bug shared by the server and the test cannot cancel out.

With TARN_E2E_OBJECTS=1 in the environment, every server a test starts
keeps its object bytes in another tarn (`--objects`): one backend tarn per
test run, a prefix of its bucket per server (objects_backend_env()). The
tests run unchanged; a test of something that cannot hold with a backend
says so with `skip_with_objects_backend`.

Start reading at Tarn.start().
"""
import atexit
import configparser
import datetime
import hashlib
import itertools
import os
import random
import re
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from urllib.parse import quote

import boto3
import botocore.auth
import botocore.credentials
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARN_BIN = os.environ.get("TARN_BIN") or os.path.join(ROOT, "build-test", "tarn")
AWS_BIN = "/usr/bin/aws"  # Debian's awscli; another `aws` may come first on PATH
REGION = "us-east-1"

# Fixed test credentials. The secret has '/' and '+' like real AWS secrets.
ACCESS_KEY = "TARNE2ETESTACCESSKEY"
SECRET_KEY = "tarn/e2e+TestSecretKey0123456789abcdefXYZ"

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

MiB = 1024 * 1024

_live = []  # servers started and not yet stopped, for failure reports
_names = itertools.count(1)

OBJECTS_BACKEND = os.environ.get("TARN_E2E_OBJECTS") == "1"
_backend = None           # the backend tarn of this run, once started
_prefixes = itertools.count(1)


def skip_with_objects_backend(why):
    """Marks a test that cannot hold when object bytes live in a backend."""
    return pytest.mark.skipif(OBJECTS_BACKEND, reason="objects in a backend: " + why)


def objects_backend():
    """The backend tarn shared by every server of this run (started once,
    stopped at exit), with its bucket "blobs"."""
    global _backend
    if _backend is None:
        import tempfile
        srv = Tarn(tempfile.mkdtemp(prefix="tarn-objects-backend-"), objects_backend=False)
        srv.start()
        srv.client().create_bucket(Bucket="blobs")
        _backend = srv

        def close():
            srv.stop()
            import shutil
            shutil.rmtree(srv.workdir, ignore_errors=True)
        atexit.register(close)
    return _backend


def objects_backend_env(prefix):
    """What a server needs to keep its bytes under blobs/PREFIX of the backend."""
    b = objects_backend()
    return {"TARN_OBJECTS": "s3://blobs/" + prefix, "TARN_OBJECTS_ENDPOINT": b.endpoint,
            "TARN_OBJECTS_ACCESS_KEY": b.access_key, "TARN_OBJECTS_SECRET_KEY": b.secret_key}


# When the suite runs in several pytest-xdist workers (tests/run.py), a port
# one worker was given and has not bound yet (or a stopped server's port,
# kept for its restart) must not be handed to another worker: each worker
# takes only the ports of its own residue class.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
_WORKER_INDEX = int(_WORKER[2:]) if _WORKER.startswith("gw") and _WORKER[2:].isdigit() else 0
_given = set()


def free_port():
    """A free TCP port on 127.0.0.1, never one this process gave out before
    (a server keeps its port across restarts) nor one of another worker."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        # the kernel prefers odd ports for bind(0): the class is port // 2
        if port not in _given and (port // 2) % _WORKERS == _WORKER_INDEX % _WORKERS:
            _given.add(port)
            return port
    raise AssertionError("no free port of worker %s found" % (_WORKER or "main"))


def clean_env():
    """The environment without anything that could point a client or the
    server elsewhere (AWS_PROFILE, AWS_ENDPOINT_URL, TARN_* ...)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and not k.startswith("TARN_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
    return env


def tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def body_for(key, size):
    """Deterministic content derived from the key: any reader can check it."""
    return random.Random("tarn-e2e:" + key).randbytes(size)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_random_file(path, size, seed):
    rnd = random.Random(seed)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            chunk = rnd.randbytes(n)
            h.update(chunk)
            f.write(chunk)
            left -= n
    return h.hexdigest()


def multipart_etag(parts):
    """AWS's ETag of a multipart object: md5 of the concatenated binary md5s
    of the parts, then '-' and the number of parts (with quotes)."""
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return '"%s-%d"' % (hashlib.md5(digests).hexdigest(), len(parts))


def md5_etag(data):
    return '"%s"' % hashlib.md5(data).hexdigest()


class _FixedTime:
    """botocore signs with utcnow(); these signers sign at a chosen instant
    (for the skew and expiry tests) and optionally with a chosen payload
    hash (UNSIGNED-PAYLOAD, or a wrong one)."""

    def __init__(self, credentials, when=None, payload_hash=None, **kw):
        super().__init__(credentials, "s3", REGION, **kw)
        self._when = when
        self._payload_hash = payload_hash

    def payload(self, request):
        if self._payload_hash is not None:
            return self._payload_hash
        return super().payload(request)

    def add_auth(self, request):
        when = self._when or datetime.datetime.utcnow()
        request.context["timestamp"] = when.strftime(botocore.auth.SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical)
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)


class HeaderSigner(_FixedTime, botocore.auth.S3SigV4Auth):
    pass


class QuerySigner(_FixedTime, botocore.auth.S3SigV4QueryAuth):
    pass


def encode_query(query):
    """[(name, value)] -> query string the way the SDKs encode it; a value
    of None is a bare flag ('?uploads')."""
    if not query:
        return ""
    if isinstance(query, dict):
        query = list(query.items())
    out = []
    for k, v in query:
        if v is None:
            out.append(quote(k, safe="-_.~"))
        else:
            out.append("%s=%s" % (quote(k, safe="-_.~"), quote(str(v), safe="-_.~")))
    return "&".join(out)


def key_path(bucket, key=None):
    """Path-style path of a bucket or object, percent-encoded as SDKs do."""
    p = "/" + bucket
    if key is not None:
        p += "/" + quote(key, safe="/~")
    return p


class Tarn:
    """One `tarn server` process on a data directory."""

    def __init__(self, workdir, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                 env_credentials=True, allow_endpoints="127.0.0.1,localhost", env=None,
                 objects_backend=None):
        self.workdir = str(workdir)
        self.data = os.path.join(self.workdir, "data")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.endpoint = "http://%s:%d" % (self.host, self.port)
        self.access_key = access_key
        self.secret_key = secret_key
        self.env_credentials = env_credentials
        # TARN_ALLOW_ENDPOINTS: tests' HTTP endpoints listen on loopback;
        # None starts a server with the default (strict) egress policy.
        self.allow_endpoints = allow_endpoints
        self.extra_env = dict(env or {})   # e.g. TARN_SQL_* limits
        # TARN_E2E_OBJECTS=1: bytes in the run's backend tarn, under a prefix
        # of this server's own (kept across restarts); None follows the
        # environment, False never (the backend itself)
        if objects_backend is None:
            objects_backend = OBJECTS_BACKEND and "TARN_OBJECTS" not in self.extra_env
        self.objects_prefix = ("f%d-%d" % (os.getpid(), next(_prefixes))
                               if objects_backend else None)
        self.extra_args = []               # more `tarn server` arguments
        self.proc = None
        self.starts = 0
        self.stdout_path = None
        self.stderr_path = None

    # ---- process lifecycle ----

    def start(self):
        assert not self.running(), "server already running"
        self.starts += 1
        self.stdout_path = os.path.join(self.workdir, "server-%d.out" % self.starts)
        self.stderr_path = os.path.join(self.workdir, "server-%d.err" % self.starts)
        env = clean_env()
        if self.env_credentials:
            env["TARN_ACCESS_KEY"] = self.access_key
            env["TARN_SECRET_KEY"] = self.secret_key
        if self.allow_endpoints:
            env["TARN_ALLOW_ENDPOINTS"] = self.allow_endpoints
        if self.objects_prefix is not None:
            env.update(objects_backend_env(self.objects_prefix))
        env.update(self.extra_env)
        cmd = [TARN_BIN, "server", "--data", self.data,
               "--listen", "%s:%d" % (self.host, self.port)] + list(self.extra_args)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir)
        _live.append(self)
        self.wait_ready()
        return self

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self._forget()
                raise AssertionError("tarn server exited with %d before it was ready\n%s"
                                     % (rc, self.logs()))
            try:
                r = requests.get(self.endpoint + "/_tarn/health", timeout=2)
                if r.status_code == 200:
                    return
                last = "health answered %d: %s" % (r.status_code, r.text[:200])
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill9()
        raise AssertionError("tarn server not ready after %.0f s (%s)\n%s"
                             % (READY_TIMEOUT, last, self.logs()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._forget()
                raise AssertionError("tarn server did not stop within %.0f s of SIGTERM\n%s"
                                     % (STOP_TIMEOUT, self.logs()))
        rc = self.proc.returncode
        self._forget()
        return rc

    def stop_clean(self):
        rc = self.stop()
        assert rc == 0, "tarn server exited with %r on SIGTERM (want 0)\n%s" % (rc, self.logs())

    def kill9(self):
        """SIGKILL: the crash the data directory must survive."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self._forget()

    def restart(self):
        """Clean stop (asserting exit 0) if running, then start again on the
        same data directory and port."""
        if self.running():
            self.stop_clean()
        return self.start()

    def _forget(self):
        if self in _live:
            _live.remove(self)

    def logs(self, lines=60):
        out = []
        for name, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            if path:
                out.append("---- tarn %s (%s), last %d lines ----\n%s"
                           % (name, path, lines, tail(path, lines)))
        return "\n".join(out)

    # ---- clients ----

    def client(self, access_key=None, secret_key=None, addressing_style="path",
               endpoint=None, **config):
        cfg = dict(s3={"addressing_style": addressing_style},
                   retries={"total_max_attempts": 1},
                   max_pool_connections=32,
                   connect_timeout=10, read_timeout=120)
        cfg.update(config)
        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint or self.endpoint, region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(**cfg))

    def service_client(self, service, endpoint=None, **config):
        """A boto3 client of any service with the server's keys, no retries."""
        cfg = dict(retries={"total_max_attempts": 1}, read_timeout=120)
        cfg.update(config)
        return boto3.session.Session().client(
            service, endpoint_url=endpoint or self.endpoint, region_name=REGION,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(**cfg))

    def aws_env(self):
        env = clean_env()
        env.update(AWS_ACCESS_KEY_ID=self.access_key,
                   AWS_SECRET_ACCESS_KEY=self.secret_key,
                   AWS_DEFAULT_REGION=REGION,
                   AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   AWS_EC2_METADATA_DISABLED="true",
                   AWS_PAGER="",
                   AWS_RETRY_MODE="standard",
                   AWS_MAX_ATTEMPTS="1")
        return env

    def aws(self, *args, input=None, cwd=None, timeout=600):
        """Runs /usr/bin/aws against this server; returns the CompletedProcess
        (text mode)."""
        cmd = [AWS_BIN, "--endpoint-url", self.endpoint] + [str(a) for a in args]
        return subprocess.run(cmd, env=self.aws_env(), input=input, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout)

    def aws_ok(self, *args, **kw):
        r = self.aws(*args, **kw)
        assert r.returncode == 0, "aws %s failed (%d)\nstdout: %s\nstderr: %s" % (
            " ".join(map(str, args)), r.returncode, r.stdout[-3000:], r.stderr[-3000:])
        return r

    def credentials(self, access_key=None, secret_key=None):
        return botocore.credentials.Credentials(access_key or self.access_key,
                                                secret_key or self.secret_key)

    def request(self, method, path, query=None, headers=None, body=b"", host=None,
                when=None, payload_hash=None, access_key=None, secret_key=None,
                sign=True, timeout=120):
        """A raw request, SigV4-signed by botocore (unless sign=False), sent
        with requests. path is already percent-encoded; host (optional) is
        the Host header to sign and send instead of 127.0.0.1:PORT."""
        url, headers = self.prepare(method, path, query=query, headers=headers, body=body,
                                    host=host, when=when, payload_hash=payload_hash,
                                    access_key=access_key, secret_key=secret_key, sign=sign)
        return requests.request(method, url, headers=headers, data=body,
                                timeout=timeout, allow_redirects=False)

    def prepare(self, method, path, query=None, headers=None, body=b"", host=None,
                when=None, payload_hash=None, access_key=None, secret_key=None,
                sign=True):
        """Returns (url to send to, headers) of a signed request."""
        qs = encode_query(query)
        netloc = host or "%s:%d" % (self.host, self.port)
        signed_url = "http://%s%s%s" % (netloc, path, "?" + qs if qs else "")
        headers = dict(headers or {})
        if sign:
            req = AWSRequest(method=method, url=signed_url, headers=headers, data=body)
            HeaderSigner(self.credentials(access_key, secret_key), when=when,
                         payload_hash=payload_hash).add_auth(req)
            headers = dict(req.headers.items())
        send_url = "%s%s%s" % (self.endpoint, path, "?" + qs if qs else "")
        if host:
            headers["Host"] = host
        return send_url, headers

    def presign(self, method, path, expires, when=None, query=None, host=None):
        """A presigned URL signed at `when` (default now) by botocore."""
        qs = encode_query(query)
        netloc = host or "%s:%d" % (self.host, self.port)
        url = "http://%s%s%s" % (netloc, path, "?" + qs if qs else "")
        req = AWSRequest(method=method, url=url, headers={})
        QuerySigner(self.credentials(), when=when, expires=expires).add_auth(req)
        return req.url


def parse_xml(text):
    """ElementTree root of an S3 XML document with the namespace removed."""
    root = ET.fromstring(text)
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]
    return root


def s3_error(resp):
    """(code, message) of an S3 XML error response."""
    assert resp.content, "error response %d has no body" % resp.status_code
    root = parse_xml(resp.content)
    assert root.tag == "Error", "not an S3 error document: %r" % resp.content[:300]
    return root.findtext("Code"), root.findtext("Message")


def client_error(exc):
    """(code, http status) of a botocore ClientError."""
    r = exc.response
    return r.get("Error", {}).get("Code"), r["ResponseMetadata"]["HTTPStatusCode"]


def list_all_keys(s3, bucket, **kw):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kw):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def list_all_objects(s3, bucket, **kw):
    objs = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kw):
        objs.extend(page.get("Contents", []))
    return objs


def read_credentials_file(path):
    cp = configparser.ConfigParser()
    with open(path) as f:
        cp.read_file(f)
    return cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]


def unique_bucket_name(hint):
    """A valid bucket name, unique in this test run, that says which test
    made it."""
    slug = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[:40].strip("-") or "b"
    return "%s-%d" % (slug, next(_names))


def live_servers():
    return list(_live)


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = _CRC32C
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def checksum_b64(algorithm, data):
    """The x-amz-checksum-* value of data for algorithm CRC32, CRC32C, SHA1
    or SHA256: base64 of the big-endian CRC or of the digest."""
    import base64
    import zlib
    a = algorithm.upper()
    if a == "CRC32":
        raw = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
    elif a == "CRC32C":
        raw = crc32c(data).to_bytes(4, "big")
    elif a == "SHA1":
        raw = hashlib.sha1(data).digest()
    elif a == "SHA256":
        raw = hashlib.sha256(data).digest()
    else:
        raise ValueError(algorithm)
    return base64.b64encode(raw).decode()
