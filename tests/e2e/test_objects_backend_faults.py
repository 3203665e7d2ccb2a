"""tests/e2e/test_objects_backend_faults.py -- a backend that fails midway.

A front tarn keeps its object bytes in a backend tarn reached through a
relay (FaultyRelay) that can be told to misbehave on the connections it
accepts from then on: cut a GET's answer after some of its body, stall
after some of its body, or answer every request with a 500. The tests check
what a client of the front sees: a GET whose bytes cannot all come is an
aborted response (fewer bytes than its Content-Length, then the connection
closes; never other bytes presented as complete), a cut the backend
recovers from is invisible, the server keeps answering, and the server's
log never repeats a backend request's query string.

Start reading at test_cut_midway_aborts_the_response().
"""
import os
import socket
import threading
import time

import boto3  # noqa: F401  (the client the fixtures hand out)
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tarnlib import Tarn

SIZE = 24 << 20


class FaultyRelay:
    """A TCP relay to the backend. mode "pass" relays bytes as they come;
    on a connection accepted in another mode the first request is relayed
    and its answer is cut ("cut": the connection closes after `keep` body
    bytes), stalled ("stall": nothing more after `keep` body bytes, the
    connection held open), replaced ("error": a 500 with an S3 error body,
    the backend not asked) or left unanswered ("close": the connection
    closes after the request). `once`: back to "pass" after one fault."""

    def __init__(self, backend_port):
        self.backend_port = backend_port
        self.mode = "pass"
        self.keep = 1 << 20
        self.once = False
        self.faults = 0
        self.lock = threading.Lock()
        self.socks = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode, keep=1 << 20, once=False):
        """From now on, new connections behave per mode; the open ones go
        (the front reconnects on its next request)."""
        with self.lock:
            self.mode, self.keep, self.once = mode, keep, once
            old, self.socks = self.socks, []
        for s in old:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _track(self, *socks):
        with self.lock:
            self.socks.extend(socks)

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                mode = self.mode
                if mode != "pass" and self.once:
                    self.mode = "pass"
            threading.Thread(target=self._serve, args=(c, mode), daemon=True).start()

    def _serve(self, c, mode):
        if mode == "error":
            self._track(c)
            self._answer_500(c)
            return
        if mode == "close":
            self._read_head(c)
            c.close()
            return
        try:
            b = socket.create_connection(("127.0.0.1", self.backend_port))
        except OSError:
            c.close()
            return
        self._track(c, b)
        if mode == "pass":
            threading.Thread(target=self._pipe, args=(b, c), daemon=True).start()
            self._pipe(c, b)
            return
        try:
            head = self._read_head(c)
            if head is None:
                return
            b.sendall(head)              # a GET: no body follows
            answer = self._read_head(b)
            if answer is None:
                return
            length = 0
            for line in answer.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            c.sendall(answer)
            keep = min(self.keep, max(length - 1, 0))
            sent = 0
            while sent < keep:
                chunk = b.recv(min(65536, keep - sent))
                if not chunk:
                    break
                c.sendall(chunk)
                sent += len(chunk)
            with self.lock:
                self.faults += 1
            if mode == "cut":
                c.shutdown(socket.SHUT_RDWR)
                c.close()
                b.close()
            # "stall": both stay open, nothing more is relayed
        except OSError:
            pass

    def _answer_500(self, c):
        body = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError"
                b"</Code><Message>relay says no</Message></Error>")
        try:
            while self._read_head(c) is not None:
                c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml"
                          b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                          + body)
                with self.lock:
                    self.faults += 1
                break
        except OSError:
            pass
        c.close()

    @staticmethod
    def _read_head(s):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(1)             # byte by byte: nothing past the head is taken
            if not chunk:
                return None
            data += chunk
        return data

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.sock.close()
        self.set("pass")


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    srv = Tarn(tmp_path_factory.mktemp("backend"), objects_backend=False).start()
    srv.client().create_bucket(Bucket="blobs")
    yield srv
    srv.stop_clean()


@pytest.fixture(scope="module")
def relay(backend):
    r = FaultyRelay(backend.port)
    yield r
    r.close()


@pytest.fixture(scope="module")
def front(tmp_path_factory, backend, relay):
    env = {"TARN_OBJECTS": "s3://blobs/front",
           "TARN_OBJECTS_ENDPOINT": "http://127.0.0.1:%d" % relay.port,
           "TARN_OBJECTS_ACCESS_KEY": backend.access_key,
           "TARN_OBJECTS_SECRET_KEY": backend.secret_key,
           "TARN_OBJECTS_TIMEOUT_SECONDS": "3"}
    srv = Tarn(tmp_path_factory.mktemp("front"), env=env).start()
    srv.client().create_bucket(Bucket="data")
    yield srv
    srv.stop_clean()


@pytest.fixture(scope="module")
def data(front, relay):
    relay.set("pass")
    body = os.urandom(SIZE)
    front.client().put_object(Bucket="data", Key="big", Body=body)
    return body


def raw_get(front, key, rng=None):
    """GET through a plain socket: (status, Content-Length, body bytes
    received until the server closed or ended the body)."""
    headers = {"Range": rng} if rng else {}
    _, hdrs = front.prepare("GET", "/data/" + key, headers=headers)
    hdrs.setdefault("Host", "%s:%d" % (front.host, front.port))
    with socket.create_connection((front.host, front.port), timeout=120) as c:
        c.sendall(("GET /data/%s HTTP/1.1\r\n" % key + "".join(
            "%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            assert chunk, "no answer head"
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(v) for k, v in (x.split(":", 1) for x in lines[1:])
                      if k.strip().lower() == "content-length")
        while len(body) < length:
            chunk = c.recv(1 << 20)
            if not chunk:
                break
            body += chunk
        return status, length, body


def still_serves(front, data):
    """The server answers, and a GET with a healthy backend is whole."""
    s3 = front.client()
    assert s3.get_object(Bucket="data", Key="big", Range="bytes=0-99")["Body"].read() == data[:100]
    assert s3.get_object(Bucket="data", Key="big")["Body"].read() == data


def test_cut_midway_aborts_the_response(front, relay, data):
    """Every answer of the backend cut after 1 MiB: the client gets a 200
    whose body stops short of its Content-Length, its bytes the object's
    first ones; boto3 reports the read as incomplete."""
    relay.set("cut", keep=1 << 20)
    status, length, body = raw_get(front, "big")
    assert status == 200 and length == SIZE
    assert 0 < len(body) < SIZE
    assert body == data[:len(body)]
    status, length, body = raw_get(front, "big", "bytes=1000-5000999")
    assert status == 206 and length == 5000000
    assert len(body) < length and body == data[1000:1000 + len(body)]
    with pytest.raises((BotoCoreError, ClientError)):
        front.client().get_object(Bucket="data", Key="big")["Body"].read()
    relay.set("pass")
    still_serves(front, data)
    # the log says why, and how many bytes went out before
    with open(front.stderr_path, errors="replace") as f:
        log = f.read()
    assert "response body cut short after" in log
    assert "out=%d " % SIZE in log                     # the whole GETs
    assert any(("GET /data/big" in line and " 200 " in line and "out=%d " % SIZE not in line)
               for line in log.splitlines())          # the cut ones


def test_cut_once_is_recovered(front, relay, data):
    """One cut answer, the backend fine after: the client gets every byte."""
    relay.set("cut", keep=3 << 20, once=True)
    before = relay.faults
    assert front.client().get_object(Bucket="data", Key="big")["Body"].read() == data
    assert relay.faults == before + 1
    relay.set("pass")


def test_stall_midway_aborts_the_response(front, relay, data):
    """The backend stops sending after 2 MiB and holds its connections: the
    response is aborted once the front's stall limit (3 s) passes, not held
    for ever, and never completed with other bytes."""
    relay.set("stall", keep=2 << 20)
    started = time.monotonic()
    status, length, body = raw_get(front, "big")
    assert status == 200 and length == SIZE
    assert 0 < len(body) < SIZE and body == data[:len(body)]
    assert time.monotonic() - started < 100
    relay.set("pass")
    still_serves(front, data)


def test_put_over_dropped_and_failing_connections(front, relay):
    """PUTs (sent from the staged file as it grows, or once staged) after
    the backend dropped every kept connection go over new ones; a PUT the
    backend refuses is a 503 and stores nothing."""
    s3 = front.client()
    for size in (1 << 20, 6 << 20):
        relay.set("pass")                 # drops the connections kept open
        body = os.urandom(size)
        s3.put_object(Bucket="data", Key="p%d" % size, Body=body)
        assert s3.get_object(Bucket="data", Key="p%d" % size)["Body"].read() == body
    relay.set("error")
    with pytest.raises(ClientError) as ex:
        s3.put_object(Bucket="data", Key="refused", Body=os.urandom(6 << 20))
    assert ex.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    relay.set("pass")
    with pytest.raises(ClientError):
        s3.head_object(Bucket="data", Key="refused")


def test_backend_errors_keep_query_strings_out_of_the_log(tmp_path, backend, relay):
    """Backend calls with a query string (the orphan sweep's ListObjectsV2)
    that fail, with an answer or with no answer at all: the log says which
    call failed and how, without the query string (in a presigned URL it
    would carry credentials)."""
    relay.set("pass")                     # the start's HEAD of the bucket
    env = {"TARN_OBJECTS": "s3://blobs/faults",
           "TARN_OBJECTS_ENDPOINT": "http://127.0.0.1:%d" % relay.port,
           "TARN_OBJECTS_ACCESS_KEY": backend.access_key,
           "TARN_OBJECTS_SECRET_KEY": backend.secret_key,
           "TARN_OBJECTS_SWEEP_SECONDS": "1"}
    srv = Tarn(tmp_path, env=env).start()

    def log():
        with open(srv.stderr_path, errors="replace") as f:
            err = f.read()
        with open(srv.stdout_path, errors="replace") as f:
            return err + f.read()

    def wait_log(what):
        deadline = time.monotonic() + 60
        while what not in log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert what in log(), log()[-2000:]

    try:
        relay.set("error")
        wait_log("answered 500")
        relay.set("close")
        wait_log("cannot reach")
    finally:
        relay.set("pass")
        srv.stop_clean()
    text = log()
    assert "/blobs" in text                # the call is named
    assert "list-type" not in text and "prefix=" not in text, text[-2000:]
