#!/usr/bin/env python3
"""bench/post_bench.py -- browser POST uploads (POST Object with a SigV4 POST
policy, made by boto3's generate_presigned_post) against tarn and s3rver,
with PutObject of the same size on tarn for reference.

Usage: bench/post_bench.py [--build build] [--rounds 5]
(release build; s3rver from bench/node_modules, installed by `npm ci` in bench/).
Each round posts the body once per size over one connection; the median
MiB/s of the rounds is printed, with the load average around the run.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
import requests
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("server at %s did not start" % url)


def client(endpoint, ak, sk):
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ak,
        aws_secret_access_key=sk,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def measure(fn, size, rounds):
    rates = []
    for _ in range(rounds):
        t0 = time.monotonic()
        fn()
        rates.append(size / (1 << 20) / (time.monotonic() - t0))
    return statistics.median(rates)


def post_fn(session, s3, bucket, key, body):
    p = s3.generate_presigned_post(bucket, key, ExpiresIn=3600)

    def run():
        r = session.post(p["url"], data=p["fields"], files={"file": ("f", body)}, timeout=600)
        assert r.status_code in (200, 204), (r.status_code, r.text[:300])
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tarn-post-bench-")
    procs = []
    try:
        tp = free_port()
        env = dict(os.environ, TARN_ACCESS_KEY="BENCHKEY", TARN_SECRET_KEY="BENCHSECRET")
        procs.append(subprocess.Popen(
            [os.path.join(ROOT, args.build, "tarn"), "server", "--data", tmp + "/tarn",
             "--listen", "127.0.0.1:%d" % tp], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        sp = free_port()
        os.makedirs(tmp + "/s3rver")
        procs.append(subprocess.Popen(
            [os.path.join(ROOT, "bench/node_modules/.bin/s3rver"), "-d", tmp + "/s3rver",
             "-a", "127.0.0.1", "-p", str(sp), "--silent"],
            env=dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        tarn_url = "http://127.0.0.1:%d" % tp
        s3rver_url = "http://127.0.0.1:%d" % sp
        wait_up(tarn_url + "/_tarn/health")
        wait_up(s3rver_url)
        ts3 = client(tarn_url, "BENCHKEY", "BENCHSECRET")
        ss3 = client(s3rver_url, "S3RVER", "S3RVER")
        for c in (ts3, ss3):
            c.create_bucket(Bucket="bench")
        load0 = os.getloadavg()[0]
        print("POST Object bench, %s UTC, median of %d rounds, one connection" % (
            time.strftime("%Y-%m-%d %H:%M", time.gmtime()), args.rounds))
        print("%-14s %10s %10s %10s %8s" % ("size", "tarn POST", "s3rver POST", "tarn PUT",
                                            "ratio"))
        for size in (1 << 20, 64 << 20):
            body = os.urandom(size)
            with requests.Session() as ts, requests.Session() as ss:
                t = measure(post_fn(ts, ts3, "bench", "p%d" % size, body), size, args.rounds)
                s = measure(post_fn(ss, ss3, "bench", "p%d" % size, body), size, args.rounds)
            put = measure(lambda: ts3.put_object(Bucket="bench", Key="u%d" % size, Body=body),
                          size, args.rounds)
            print("%-14s %10.1f %10.1f %10.1f %7.2fx" % ("%d MiB" % (size >> 20), t, s, put,
                                                          t / s))
        print("MiB/s; ratio = tarn POST / s3rver POST; load average %.2f at the start, %.2f "
              "at the end" % (load0, os.getloadavg()[0]))
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
