"""tests/e2e/lambda_util.py -- what the Lambda end-to-end tests share: zips
of the sample functions in tests/e2e/functions/, a boto3 Lambda client for a
tarn server, and a helper that creates a function and removes it after.

Invariants:
  (1) Zips are built in memory with each file's mode in its external
      attributes, as `zip` on Linux writes them (bootstrap keeps its exec bit).
  (2) Every function a test creates has a name unique in the run.
"""
import base64
import io
import itertools
import json
import os
import stat
import struct
import zipfile

import boto3
from botocore.config import Config

import tarnlib

HERE = os.path.dirname(os.path.abspath(__file__))
FUNCTIONS = os.path.join(HERE, "functions")
_names = itertools.count(1)


def zip_files(files):
    """files: {name: (bytes or str, mode)} -> zip bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (data, mode) in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.create_system = 3  # unix: the mode is in external_attr
            info.external_attr = (mode & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            if isinstance(data, str):
                data = data.encode()
            z.writestr(info, data)
    return out.getvalue()


def zip_tree(out, sources):
    """Writes to the file out a zip of host folders and files: sources is
    [(host path, path in the zip)]. Each entry keeps its mode and its
    modification time to the second (the extended timestamp field `zip`
    writes), so cached bytecode next to Python sources stays valid."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for src, dst in sources:
            walk = [(os.path.dirname(src), [], [os.path.basename(src)])] \
                if os.path.isfile(src) else os.walk(src)
            for dirpath, _, filenames in walk:
                for fn in sorted(filenames):
                    path = os.path.join(dirpath, fn)
                    if os.path.islink(path) or not os.path.isfile(path):
                        continue
                    st = os.stat(path)
                    rel = os.path.relpath(path, src) if os.path.isdir(src) else ""
                    info = zipfile.ZipInfo(os.path.join(dst, rel) if rel else dst,
                                           date_time=(2024, 1, 1, 0, 0, 0))
                    info.create_system = 3
                    info.external_attr = (stat.S_IMODE(st.st_mode) | stat.S_IFREG) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.extra = struct.pack("<HHBl", 0x5455, 5, 1, int(st.st_mtime))
                    with open(path, "rb") as f:
                        z.writestr(info, f.read())


def zip_dir(name, extra=None):
    """Zips tests/e2e/functions/<name> (files at the top of the zip)."""
    root = os.path.join(FUNCTIONS, name)
    files = {}
    for dirpath, _, filenames in os.walk(root):
        for fn in filenames:
            path = os.path.join(dirpath, fn)
            rel = os.path.relpath(path, root)
            mode = stat.S_IMODE(os.stat(path).st_mode) | stat.S_IFREG
            if fn == "bootstrap":
                mode |= 0o755
            with open(path, "rb") as f:
                files[rel] = (f.read(), mode)
    files.update(extra or {})
    return zip_files(files)


def lambda_client(tarn, **config):
    cfg = dict(retries={"total_max_attempts": 1}, connect_timeout=10,
               read_timeout=300, max_pool_connections=32)
    cfg.update(config)
    return boto3.session.Session().client(
        "lambda", endpoint_url=tarn.endpoint, region_name=tarnlib.REGION,
        aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key,
        config=Config(**cfg))


def unique_name(hint):
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in hint)[:40]
    return "%s-%d" % (slug, next(_names))


RUNTIMES = {
    "python": ("python3.11", "app.echo"),
    "node": ("nodejs20.x", "index.handler"),
    "bash": ("provided.al2023", "function.handler"),
}


def create(lam, name, code="python", handler=None, runtime=None, **kw):
    """Creates a function from a sample folder (or zip bytes) and returns
    its configuration."""
    rt, h = RUNTIMES.get(code, (None, None)) if isinstance(code, str) else (None, None)
    zipped = zip_dir(code) if isinstance(code, str) else code
    args = dict(FunctionName=name, Runtime=runtime or rt, Handler=handler or h,
                Role="arn:aws:iam::000000000000:role/lambda-role",
                Code={"ZipFile": zipped})
    args.update(kw)
    return lam.create_function(**args)


def invoke(lam, name, event=None, **kw):
    """Invokes synchronously; returns (response, decoded payload or raw text)."""
    payload = json.dumps(event if event is not None else {}).encode()
    resp = lam.invoke(FunctionName=name, Payload=payload, **kw)
    raw = resp["Payload"].read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw.decode("utf-8", "replace")
    return resp, body


def log_tail(resp):
    return base64.b64decode(resp.get("LogResult", "")).decode("utf-8", "replace")


def metric(tarn, name):
    """A metric without labels, from the server's /_tarn/metrics."""
    r = tarn.request("GET", "/_tarn/metrics")
    assert r.status_code == 200, r.text
    for line in r.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /_tarn/metrics" % name)


def concurrent_executions(tarn):
    """Invocations running now, from the server's metrics."""
    return metric(tarn, "tarn_fn_concurrent_executions")
