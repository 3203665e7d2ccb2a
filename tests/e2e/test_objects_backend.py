"""tests/e2e/test_objects_backend.py -- object bytes in another S3 endpoint.

A backend tarn serves a bucket "blobs"; a front tarn runs with
TARN_OBJECTS=s3://blobs/front pointing at it. Clients speak only to the
front (boto3, awscli, SQL, S3 Select, notifications); the tests check what a
user of both would see: the bytes round-trip, and they are in the backend's
bucket under the prefix, not in the front's data directory. Objects of at
most 16 KiB stay inline in the front's index (as without a backend).

Start reading at test_put_get_range().
"""
import hashlib
import json
import os
import time

import boto3
import pytest
import requests
from botocore.config import Config

import tarnlib
from tarnlib import Tarn

BIG = 3 << 20


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    srv = Tarn(tmp_path_factory.mktemp("backend"), objects_backend=False).start()
    srv.client().create_bucket(Bucket="blobs")
    yield srv
    srv.stop_clean()


def front_env(backend, url="s3://blobs/front"):
    return {"TARN_OBJECTS": url, "TARN_OBJECTS_ENDPOINT": backend.endpoint,
            "TARN_OBJECTS_ACCESS_KEY": backend.access_key,
            "TARN_OBJECTS_SECRET_KEY": backend.secret_key}


@pytest.fixture(scope="module")
def front(tmp_path_factory, backend):
    env = front_env(backend)
    env["TARN_OBJECTS_DELETE_DELAY_SECONDS"] = "1"   # dropped bytes go after 1 s
    srv = Tarn(tmp_path_factory.mktemp("front"), env=env).start()
    yield srv
    srv.stop_clean()


@pytest.fixture(scope="module")
def s3(front):
    return front.client()


@pytest.fixture(scope="module")
def bs3(backend):
    return backend.client()


@pytest.fixture
def bucket(s3, request):
    name = tarnlib.unique_bucket_name(request.node.name)
    s3.create_bucket(Bucket=name)
    return name


def backend_objects(bs3):
    """{key: size} of the backend's objects under the front's prefix."""
    out = {}
    for page in bs3.get_paginator("list_objects_v2").paginate(Bucket="blobs", Prefix="front/"):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
    return out


def local_blobs(front):
    """Files in the front's blob directories."""
    found = []
    for root, _, files in os.walk(os.path.join(front.data, "blobs")):
        found += [os.path.join(root, f) for f in files]
    return found


def wait_for(cond, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("not within %d s: %s" % (timeout, what))


def test_put_get_range(s3, bs3, front, bucket):
    before = backend_objects(bs3)
    data = os.urandom(BIG)
    s3.put_object(Bucket=bucket, Key="big.bin", Body=data)
    s3.put_object(Bucket=bucket, Key="small.txt", Body=b"000042")
    added = {k: v for k, v in backend_objects(bs3).items() if k not in before}
    assert list(added.values()) == [BIG]          # the big one only: the small is inline
    (name,) = added
    assert bs3.get_object(Bucket="blobs", Key=name)["Body"].read() == data
    assert local_blobs(front) == []
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data
    assert s3.get_object(Bucket=bucket, Key="small.txt")["Body"].read() == b"000042"
    for rng, want in [("bytes=0-0", data[:1]), ("bytes=1000-2000999", data[1000:2001000]),
                      ("bytes=-100", data[-100:]), ("bytes=%d-" % (BIG - 5), data[-5:])]:
        r = s3.get_object(Bucket=bucket, Key="big.bin", Range=rng)
        assert r["Body"].read() == want, rng
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ContentLength"] == BIG
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["big.bin", "small.txt"]


def test_overwrite_copy_delete(s3, bs3, bucket):
    before = set(backend_objects(bs3))
    a, b = os.urandom(1 << 20), os.urandom(1 << 20)
    s3.put_object(Bucket=bucket, Key="k", Body=a)
    s3.put_object(Bucket=bucket, Key="k", Body=b)     # the first one's bytes go
    # backend deletes are made after the commit, by a thread of their own
    added = lambda: len(set(backend_objects(bs3)) - before)
    wait_for(lambda: added() == 1, "the overwritten bytes deleted in the backend")
    s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k"})
    assert added() == 2
    s3.delete_object(Bucket=bucket, Key="k")
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b
    wait_for(lambda: added() == 1, "the deleted object's bytes deleted in the backend")
    s3.delete_object(Bucket=bucket, Key="c")
    wait_for(lambda: added() == 0, "the copy's bytes deleted in the backend")


def test_put_cut_midway_leaves_nothing(front, s3, bs3, bucket):
    """A PUT whose client goes away midway (its upload to the backend had
    begun as the bytes came) commits nothing and leaves nothing behind; a
    whole one of the same size is uploaded as it came and reads back."""
    import socket
    before = set(backend_objects(bs3))
    size = 16 << 20
    data = os.urandom(size)
    url, headers = front.prepare("PUT", "/%s/cut" % bucket, body=data,
                                 payload_hash="UNSIGNED-PAYLOAD")
    headers["Content-Length"] = str(size)
    headers.setdefault("Host", "%s:%d" % (front.host, front.port))
    with socket.create_connection((front.host, front.port)) as c:
        head = "PUT /%s/cut HTTP/1.1\r\n" % bucket + "".join(
            "%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
        c.sendall(head.encode() + data[:size // 2])
    with pytest.raises(Exception):
        s3.head_object(Bucket=bucket, Key="cut")
    wait_for(lambda: local_blobs(front) == [], "the staged half removed")
    wait_for(lambda: set(backend_objects(bs3)) == before, "nothing left in the backend")
    s3.put_object(Bucket=bucket, Key="whole", Body=data)
    assert s3.get_object(Bucket=bucket, Key="whole")["Body"].read() == data
    assert len(set(backend_objects(bs3)) - before) == 1


def test_multipart(s3, bs3, front, bucket):
    before = set(backend_objects(bs3))
    p1, p2 = os.urandom(5 << 20), os.urandom(1 << 20)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    r = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert r["ETag"].endswith('-2"')
    added = {k: v for k, v in backend_objects(bs3).items() if k not in before}
    assert list(added.values()) == [len(p1) + len(p2)]
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == p1 + p2
    r = s3.get_object(Bucket=bucket, Key="mp", Range="bytes=%d-%d" % (len(p1) - 10, len(p1) + 9))
    assert r["Body"].read() == (p1 + p2)[len(p1) - 10:len(p1) + 10]
    wait_for(lambda: local_blobs(front) == [], "the parts' local files removed")
    # a part copied from an object whose bytes are in the backend
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp2")["UploadId"]
    e = s3.upload_part_copy(Bucket=bucket, Key="mp2", UploadId=up, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "mp"},
                            CopySourceRange="bytes=0-%d" % (len(p1) - 1))["CopyPartResult"]["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp2", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e}]})
    assert s3.get_object(Bucket=bucket, Key="mp2")["Body"].read() == p1


def test_awscli_cp_large(front, bs3, bucket, tmp_path):
    # over 64 MiB: the front uploads it to the backend in parts as well
    size = 72 << 20
    src = tmp_path / "big.bin"
    tarnlib.write_random_file(str(src), size, seed=17)
    front.aws_ok("s3", "cp", str(src), "s3://%s/big.bin" % bucket)
    dst = tmp_path / "back.bin"
    front.aws_ok("s3", "cp", "s3://%s/big.bin" % bucket, str(dst))
    assert tarnlib.sha256_file(str(dst)) == tarnlib.sha256_file(str(src))
    (name,) = [k for k, v in backend_objects(bs3).items() if v == size]
    assert bs3.head_object(Bucket="blobs", Key=name)["ETag"].endswith('-2"')
    assert local_blobs(front) == []


def test_encrypted_object(s3, bs3, bucket):
    before = set(backend_objects(bs3))
    data = os.urandom(1 << 20)
    s3.put_object(Bucket=bucket, Key="sse", Body=data, ServerSideEncryption="AES256")
    (name,) = set(backend_objects(bs3)) - before
    stored = bs3.get_object(Bucket="blobs", Key=name)["Body"].read()
    assert len(stored) > len(data) and data[:4096] not in stored   # ciphertext
    r = s3.get_object(Bucket=bucket, Key="sse", Range="bytes=70000-80000")
    assert r["Body"].read() == data[70000:80001]
    assert s3.get_object(Bucket=bucket, Key="sse")["Body"].read() == data


def test_sql_and_select(front, s3, bucket):
    rows = "".join("%d,%d\n" % (i, i % 7) for i in range(50000))
    assert len(rows) > 16 << 10
    s3.put_object(Bucket=bucket, Key="t.csv", Body=("id,g\n" + rows).encode())
    r = front.request("POST", "/_tarn/sql", headers={"Accept": "application/json"},
                      body=("SELECT count(*), sum(id) FROM 's3://%s/t.csv'" % bucket).encode())
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[50000, sum(range(50000))]]
    out = s3.select_object_content(
        Bucket=bucket, Key="t.csv", Expression="SELECT count(*) FROM s3object s WHERE s.g = '3'",
        ExpressionType="SQL", InputSerialization={"CSV": {"FileHeaderInfo": "USE"}},
        OutputSerialization={"CSV": {}})
    got = b"".join(ev["Records"]["Payload"] for ev in out["Payload"] if "Records" in ev)
    assert got.decode().strip() == str(sum(1 for i in range(50000) if i % 7 == 3))


def test_events(front, s3, bucket):
    sqs = boto3.session.Session().client(
        "sqs", endpoint_url=front.endpoint, region_name=tarnlib.REGION,
        aws_access_key_id=front.access_key, aws_secret_access_key=front.secret_key,
        config=Config(retries={"max_attempts": 1}))
    url = sqs.create_queue(QueueName="objects-backend-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket=bucket, Key="ev.bin", Body=os.urandom(1 << 20))
    records = []
    deadline = time.monotonic() + 60
    while not records and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []):
            records += json.loads(m["Body"]).get("Records", [])
    assert [(r["s3"]["object"]["key"], r["s3"]["object"]["size"]) for r in records] == [
        ("ev.bin", 1 << 20)]


def test_kill9_keeps_acknowledged(front, s3, bucket):
    data = os.urandom(2 << 20)
    s3.put_object(Bucket=bucket, Key="durable", Body=data)
    front.kill9()
    front.start()
    assert front.client().get_object(Bucket=bucket, Key="durable")["Body"].read() == data


def test_data_directory_keeps_its_backend(tmp_path, backend, bs3):
    """A data directory that keeps its bytes in a backend refuses to start
    without it, or with another bucket or prefix (its index would name bytes
    that are not there): clearly, and without changing anything."""
    srv = Tarn(tmp_path, env=front_env(backend, "s3://blobs/kept/"))
    srv.start()
    data = os.urandom(1 << 20)
    srv.client().create_bucket(Bucket="data")
    srv.client().put_object(Bucket="data", Key="k", Body=data)
    srv.stop_clean()
    for env, want in [({}, "start with --objects s3://blobs/kept"),
                      (front_env(backend, "s3://blobs/other"), "not s3://blobs/other")]:
        srv.extra_env = env
        with pytest.raises(AssertionError) as ex:
            srv.start()
        assert want in str(ex.value)
    srv.extra_env = front_env(backend, "s3://blobs/kept")   # the same, written otherwise
    srv.start()
    try:
        assert srv.client().get_object(Bucket="data", Key="k")["Body"].read() == data
    finally:
        srv.stop_clean()


def test_unreachable_backend_refused_at_start(tmp_path, backend):
    env = front_env(backend)
    env["TARN_OBJECTS_ENDPOINT"] = "http://127.0.0.1:%d" % tarnlib.free_port()
    srv = Tarn(tmp_path, env=env)
    with pytest.raises(AssertionError) as ex:
        srv.start()
    assert "object backend" in str(ex.value)
    srv = Tarn(tmp_path / "nobucket", env=front_env(backend, "s3://no-such-bucket/x"))
    os.makedirs(srv.workdir, exist_ok=True)
    with pytest.raises(AssertionError) as ex:
        srv.start()
    assert "no bucket" in str(ex.value)


S3RVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                      "node_modules", ".bin", "s3rver")


def test_s3rver_backend(tmp_path):
    """An independent S3 implementation (s3rver, Node.js) as the backend."""
    if not os.access(S3RVER, os.X_OK):
        pytest.fail("s3rver is not installed in bench/node_modules: run scripts/install-deps.sh")
    import subprocess
    port = tarnlib.free_port()
    os.makedirs(tmp_path / "s3rver")
    env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
    proc = subprocess.Popen([S3RVER, "-d", str(tmp_path / "s3rver"), "-a", "127.0.0.1",
                             "-p", str(port), "--silent"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        peer = boto3.session.Session().client(
            "s3", endpoint_url="http://127.0.0.1:%d" % port, region_name="us-east-1",
            aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
            config=Config(s3={"addressing_style": "path"}))
        wait_for(lambda: _try(lambda: peer.create_bucket(Bucket="blobs")), "s3rver up")
        srv = Tarn(tmp_path / "front", env={
            "TARN_OBJECTS": "s3://blobs/front", "TARN_OBJECTS_ENDPOINT": "http://127.0.0.1:%d" % port,
            "TARN_OBJECTS_ACCESS_KEY": "S3RVER", "TARN_OBJECTS_SECRET_KEY": "S3RVER"})
        os.makedirs(srv.workdir, exist_ok=True)
        srv.start()
        try:
            s3 = srv.client()
            s3.create_bucket(Bucket="data")
            data = os.urandom(2 << 20)
            s3.put_object(Bucket="data", Key="a", Body=data)
            s3.copy_object(Bucket="data", Key="b", CopySource={"Bucket": "data", "Key": "a"})
            names = [o["Key"] for o in peer.list_objects_v2(Bucket="blobs").get("Contents", [])]
            assert len(names) == 2 and all(n.startswith("front/") for n in names)
            assert s3.get_object(Bucket="data", Key="b")["Body"].read() == data
            r = s3.get_object(Bucket="data", Key="a", Range="bytes=100-1048675")
            assert r["Body"].read() == data[100:1048676]
            s3.delete_object(Bucket="data", Key="a")
            s3.delete_object(Bucket="data", Key="b")
            wait_for(lambda: peer.list_objects_v2(Bucket="blobs").get("Contents", []) == [],
                     "the bytes deleted in s3rver")
            assert local_blobs(srv) == []
        finally:
            srv.stop_clean()
    finally:
        proc.terminate()
        proc.wait()


def _try(f):
    try:
        f()
        return True
    except Exception:
        return False


def backend_names(bs3, prefix):
    """{name: size} of the backend objects named PREFIX/<32 hex> (blobs)."""
    out = {}
    for page in bs3.get_paginator("list_objects_v2").paginate(Bucket="blobs", Prefix=prefix + "/"):
        for o in page.get("Contents", []):
            tail = o["Key"][len(prefix) + 1:]
            if len(tail) == 32 and all(c in "0123456789abcdef" for c in tail):
                out[o["Key"]] = o["Size"]
    return out


def test_orphans_swept_after_kill9(tmp_path, backend, bs3):
    """Bytes uploaded to the backend but never committed (tarn killed
    between the upload and the commit) are deleted by the orphan sweep,
    at start and then periodically; committed ones and foreign names stay."""
    env = front_env(backend, "s3://blobs/sweep")
    env.update(TARN_OBJECTS_ORPHAN_GRACE_SECONDS="1", TARN_OBJECTS_SWEEP_SECONDS="1")
    srv = Tarn(tmp_path, env=env).start()
    s3 = srv.client()
    s3.create_bucket(Bucket="data")
    kept = {}
    for i in range(3):
        kept["k%d" % i] = os.urandom((1 << 20) + i)
        s3.put_object(Bucket="data", Key="k%d" % i, Body=kept["k%d" % i])
    # an orphan as a crash leaves it, and a name that is not tarn's
    orphan = "sweep/" + os.urandom(16).hex()
    bs3.put_object(Bucket="blobs", Key=orphan, Body=b"x" * 1000)
    bs3.put_object(Bucket="blobs", Key="sweep/notes.txt", Body=b"keep me")
    # kill -9 while PUTs are in flight
    import threading
    stop = threading.Event()
    done = []

    def writer():
        c = srv.client()
        i = 0
        while not stop.is_set():
            try:
                c.put_object(Bucket="data", Key="w%d" % i, Body=os.urandom(1 << 20))
                done.append(i)
            except Exception:
                pass
            i += 1

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: len(done) >= 3, "some PUTs acknowledged")
    srv.kill9()
    stop.set()
    for t in threads:
        t.join()
    srv.start()
    try:
        s3 = srv.client()
        listed = {o["Key"]: o["Size"] for o in tarnlib.list_all_objects(s3, "data")}
        assert all(("w%d" % i) in listed for i in done)   # acknowledged: kept
        # every backend blob left is one a listed object references
        wait_for(lambda: len(backend_names(bs3, "sweep")) == len(listed),
                 "only referenced blobs left in the backend (%d listed)" % len(listed))
        assert orphan not in backend_names(bs3, "sweep")
        assert bs3.get_object(Bucket="blobs", Key="sweep/notes.txt")["Body"].read() == b"keep me"
        for k, v in kept.items():
            assert s3.get_object(Bucket="data", Key=k)["Body"].read() == v
        for k in listed:
            assert len(s3.get_object(Bucket="data", Key=k)["Body"].read()) == listed[k]
        # the periodic sweep (not only the one at start)
        orphan2 = "sweep/" + os.urandom(16).hex()
        bs3.put_object(Bucket="blobs", Key=orphan2, Body=b"y")
        wait_for(lambda: orphan2 not in backend_names(bs3, "sweep"), "a later orphan swept")
    finally:
        srv.stop_clean()


def test_get_racing_overwrite_and_delete(tmp_path, backend, bs3):
    """A GET that began on a version reads that version's bytes to the end,
    though the key is overwritten and then deleted meanwhile: the old bytes
    are deleted in the backend only once the reader is done."""
    env = front_env(backend, "s3://blobs/race")
    env.update(TARN_OBJECTS_DELETE_DELAY_SECONDS="1")
    srv = Tarn(tmp_path, env=env).start()
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="data")
        size = 24 << 20
        old = os.urandom(size)
        s3.put_object(Bucket="data", Key="k", Body=old)
        (old_name,) = backend_names(bs3, "race")
        body = s3.get_object(Bucket="data", Key="k")["Body"]
        head = body.read(1 << 20)
        new = os.urandom(size)
        s3.put_object(Bucket="data", Key="k", Body=new)
        (new_name,) = set(backend_names(bs3, "race")) - {old_name}
        s3.delete_object(Bucket="data", Key="k")
        # the newer bytes (no reader) go after the delay; the old ones stay
        wait_for(lambda: new_name not in backend_names(bs3, "race"),
                 "the unread dropped bytes deleted")
        assert old_name in backend_names(bs3, "race")
        rest = body.read()
        assert head + rest == old
        body.close()
        wait_for(lambda: backend_names(bs3, "race") == {}, "the old bytes deleted after the read")
    finally:
        srv.stop_clean()


class StalledBackend:
    """An S3 endpoint that answers HEAD (tarn's start-up check) and then
    never answers anything else: it reads the request and stalls."""

    def __init__(self):
        import socket
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        data = b""
        try:
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(65536)
                    if not chunk:
                        c.close()
                        return
                    data += chunk
                head, data = data.split(b"\r\n\r\n", 1)
                if head.startswith(b"HEAD "):
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    continue
                self.held.append(c)       # stalls: never read nor answered again
                return
        except OSError:
            pass

    def close(self):
        self.closed = True
        self.sock.close()
        for c in self.held:
            c.close()


def test_stalled_backend_bounded(tmp_path, backend):
    """A backend that stops answering holds at most TARN_OBJECTS_MAX_CALLS
    server threads, each until the timeout: those calls fail with 503
    ServiceUnavailable, calls beyond the bound at once with 503 SlowDown, and
    the server keeps answering everything that needs no backend."""
    import threading
    stalled = StalledBackend()
    env = front_env(backend)
    env.update(TARN_OBJECTS_ENDPOINT="http://127.0.0.1:%d" % stalled.port,
               TARN_OBJECTS_TIMEOUT_SECONDS="15", TARN_OBJECTS_MAX_CALLS="2")
    srv = Tarn(tmp_path, env=env).start()
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="data")
        codes = []
        started = time.monotonic()

        def put(i):
            c = srv.client()
            try:
                c.put_object(Bucket="data", Key="big%d" % i, Body=os.urandom(1 << 20))
                codes.append(("ok", 200))
            except Exception as ex:
                r = ex.response
                codes.append((r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]))

        threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        # while the backend stalls, what needs no backend still works
        wait_for(lambda: sum(1 for c in codes if c[0] == "SlowDown") >= 1,
                 "calls beyond the bound refused with SlowDown")
        s3.put_object(Bucket="data", Key="small", Body=b"000042")  # inline: no backend
        assert s3.get_object(Bucket="data", Key="small")["Body"].read() == b"000042"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"]] == ["small"]
        for t in threads:
            t.join()
        assert all(status == 503 for _, status in codes), codes
        assert {code for code, _ in codes} <= {"SlowDown", "ServiceUnavailable"}, codes
        assert ("ServiceUnavailable", 503) in codes   # the calls that waited, timed out
        assert time.monotonic() - started < 240
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"]] == ["small"]
    finally:
        srv.stop_clean()
        stalled.close()


def test_config_file(tmp_path, backend, bs3):
    """`tarn server --config FILE` takes the same settings as the flags;
    flags given as well win; a misspelt setting is refused."""
    conf = tmp_path / "tarn.conf"
    conf.write_text(
        "# object bytes in the backend tarn\n"
        "[objects]\n"
        "objects = s3://blobs/conf\n"
        "objects_endpoint = %s\n"
        "objects-access-key = %s\n"
        "objects-secret-key = \"%s\"\n"
        "objects-timeout = 20\n"
        "listen = 127.0.0.1:1\n"     # the --listen flag wins
        "metadata = lmdb\n" % (backend.endpoint, backend.access_key, backend.secret_key))
    srv = Tarn(tmp_path / "a")
    os.makedirs(srv.workdir)
    srv.extra_args = ["--config", str(conf)]
    srv.start()
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="data")
        data = os.urandom(1 << 20)
        s3.put_object(Bucket="data", Key="k", Body=data)
        assert list(backend_names(bs3, "conf").values()) == [len(data)]
        assert s3.get_object(Bucket="data", Key="k")["Body"].read() == data
    finally:
        srv.stop_clean()
    for line, want in [("objects_endpont = http://x\n", "unknown setting 'objects-endpont'"),
                       ("metadata = mysql://database/tarn\n", "wants lmdb or a postgres:// URL"),
                       ("objects-timeout = soon\n", "positive whole number")]:
        bad = tmp_path / "bad.conf"
        bad.write_text(line)
        srv = Tarn(tmp_path / ("b%d" % len(line)))
        os.makedirs(srv.workdir)
        srv.extra_args = ["--config", str(bad)]
        with pytest.raises(AssertionError) as ex:
            srv.start()
        assert want in str(ex.value)
