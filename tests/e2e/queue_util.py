"""tests/e2e/queue_util.py -- what the SQS and SNS end-to-end tests share:
boto3 clients for a server, an independent implementation of SQS's
MD5OfMessageAttributes, polling without fixed sleeps, and a small HTTP
endpoint that records what SNS posts to it.

Why independent digests: the Debian botocore (1.29) no longer checks the
MD5s of SQS answers, so the tests compute them from the bytes AWS specifies
and compare.
"""
import hashlib
import http.server
import json
import queue
import struct
import threading
import time
import uuid

import boto3
from botocore.config import Config

from tarnlib import REGION, free_port

ACCOUNT = "000000000000"


def client(tarn, service, **config):
    cfg = dict(retries={"total_max_attempts": 1}, max_pool_connections=32,
               connect_timeout=10, read_timeout=60)
    cfg.update(config)
    return boto3.session.Session().client(
        service, endpoint_url=tarn.endpoint, region_name=REGION,
        aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key,
        config=Config(**cfg))


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def queue_arn(name):
    return "arn:aws:sqs:%s:%s:%s" % (REGION, ACCOUNT, name)


def md5_hex(data):
    if isinstance(data, str):
        data = data.encode()
    return hashlib.md5(data).hexdigest()


def md5_of_attributes(attrs):
    """SQS's MD5OfMessageAttributes of a boto3 MessageAttributes dict: names
    sorted, each as 4-byte big-endian length + bytes of the name, the same
    for the type, a transport byte (1 string/number, 2 binary), then the
    length-prefixed value."""
    h = hashlib.md5()

    def put(b):
        h.update(struct.pack(">I", len(b)))
        h.update(b)

    for name in sorted(attrs, key=lambda n: n.encode()):
        a = attrs[name]
        put(name.encode())
        put(a["DataType"].encode())
        if "BinaryValue" in a:
            h.update(b"\x02")
            v = a["BinaryValue"]
            put(v if isinstance(v, bytes) else v.encode())
        else:
            h.update(b"\x01")
            put(a["StringValue"].encode())
    return h.hexdigest()


def wait_for(fn, timeout=30.0, interval=0.05, what="condition"):
    """Calls fn until it returns something truthy; returns that. Fails after
    timeout seconds (a generous bound, not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


def receive_all(sqs, url, count, timeout=30.0, **kw):
    """Receives (without deleting) until count messages came back."""
    got = []

    def more():
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kw)
        got.extend(r.get("Messages", []))
        return len(got) >= count

    wait_for(more, timeout, interval=0, what="%d messages" % count)
    return got


class Endpoint:
    """An HTTP server in the test that records every POST (headers, body)
    in a queue; fail_next makes it answer 500 to that many POSTs first."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d/sns" % self.port
        self.posts = queue.Queue()
        self.fail_next = 0
        self.failed = 0
        self._srv = None
        self._thread = None

    def start(self):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                owner.on_post(self, self.rfile.read(n))

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)
        self._thread.start()
        return self

    def on_post(self, handler, body):
        """Answers one POST (handler: its BaseHTTPRequestHandler)."""
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failed += 1
            self.answer(handler, 500)
            return
        self.posts.put(({k.lower(): v for k, v in handler.headers.items()}, body.decode()))
        self.answer(handler, 200)

    @staticmethod
    def answer(handler, status):
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def stop(self):
        if self._srv is not None:
            self._srv.shutdown()
            self._srv.server_close()
            self._srv = None

    def next(self, timeout=30.0):
        """(headers, parsed JSON or raw text) of the next POST."""
        headers, body = self.posts.get(timeout=timeout)
        try:
            return headers, json.loads(body)
        except ValueError:
            return headers, body


def within_ttl(step, ttl_ms):
    """Runs step (issue a shard iterator and use it) until one run finishes,
    as the client sees it, inside ttl_ms: a loaded machine may stall a run
    past a short TARN_ITERATOR_TTL_MS, and then only may it expire."""
    from botocore.exceptions import ClientError
    for _ in range(5):
        t0 = time.monotonic()
        try:
            return step()
        except ClientError as e:
            if (e.response["Error"]["Code"] != "ExpiredIteratorException"
                    or time.monotonic() - t0 <= ttl_ms / 1000):
                raise
    raise AssertionError("no run finished within the iterator TTL")
