"""tests/e2e/test_crash.py -- kill -9 in the middle of writes (DESIGN.md §4):
after a restart on the same data directory every acknowledged write is there,
byte for byte, every acknowledged delete stays done, and nothing half-written
is visible.

Writers PUT new objects (0 to 2 MiB, content derived from the key), overwrite
one 'hot' key with numbered versions, and delete some of their earlier
objects, logging each operation and whether it was acknowledged. The server
is killed once enough writes were acknowledged -- an event, not a delay --
while the writers keep going, so requests are in flight at the kill. Each
writer runs its operations one after another, so only its last operation can
be unacknowledged: that one may or may not have happened, but if it did it
happened whole.
"""
import os
import random
import stat
import threading

import pytest
from botocore.exceptions import ClientError

from tarnlib import MiB, body_for, list_all_objects, md5_etag

HANG_GUARD = 300  # seconds; only reached when something hangs


def size_for(key):
    r = random.Random("size:" + key)
    if r.random() < 0.3:
        return r.choice([0, 1, 4096, 65536, 1 * MiB, 2 * MiB])
    return r.randint(0, 2 * MiB)


def hot_body(key, version):
    name = "%s#v%d" % (key, version)
    return body_for(name, size_for(name))


class Writer(threading.Thread):
    def __init__(self, client, bucket, wid, on_ack, killed):
        super().__init__(name="writer-%d" % wid, daemon=True)
        self.s3 = client
        self.bucket = bucket
        self.prefix = "w%d/" % wid
        self.hot = self.prefix + "hot"
        self.on_ack = on_ack
        self.killed = killed
        self.log = []           # [{"op", "key", "version", "acked"}] in order
        self.error = None       # an exception before the kill: a server bug
        self.after_kill = None  # the exception that ended the writer after the kill

    def run(self):
        i = 0
        hot_version = 0
        while True:
            i += 1
            if i % 5 == 0:
                hot_version += 1
                entry = {"op": "put", "key": self.hot, "version": hot_version}
                body = hot_body(self.hot, hot_version)
                meta = {"version": str(hot_version)}
            elif i % 7 == 0 and self._deletable():
                entry = {"op": "delete", "key": self._deletable(), "version": None}
            else:
                key = "%sobj-%05d" % (self.prefix, i)
                entry = {"op": "put", "key": key, "version": None}
                body = body_for(key, size_for(key))
                meta = {}
            entry["acked"] = False
            self.log.append(entry)
            try:
                if entry["op"] == "put":
                    r = self.s3.put_object(Bucket=self.bucket, Key=entry["key"], Body=body,
                                           Metadata=meta)
                    if r["ETag"] != md5_etag(body):
                        raise AssertionError("PUT %s answered ETag %s, want %s"
                                             % (entry["key"], r["ETag"], md5_etag(body)))
                else:
                    self.s3.delete_object(Bucket=self.bucket, Key=entry["key"])
            except Exception as e:  # noqa: BLE001 -- the kill makes any error possible
                if self.killed.is_set():
                    self.after_kill = e
                else:
                    self.error = e
                return
            entry["acked"] = True
            self.on_ack()

    def _deletable(self):
        """The most recent acknowledged new object not already deleted."""
        deleted = {e["key"] for e in self.log if e["op"] == "delete"}
        for e in reversed(self.log):
            if e["op"] == "put" and e["acked"] and e["version"] is None and e["key"] not in deleted:
                return e["key"]
        return None


def expected_states(writer):
    """{key: [acceptable states]}; a state is None (absent) or (body key,
    version) naming the exact bytes."""
    states = {}
    for e in writer.log:
        key = e["key"]
        if e["op"] == "put":
            new = (key, e["version"])
        else:
            new = None
        if e["acked"]:
            states[key] = [new]
        else:  # only the last entry: before or after it
            states[key] = states.get(key, [None]) + [new]
    return states


def bytes_of(state):
    key, version = state
    return body_for(key, size_for(key)) if version is None else hot_body(key, version)


def data_bytes(root):
    """Bytes of the distinct files under root, LMDB's *.mdb files aside."""
    seen = set()
    total = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            if n.endswith(".mdb"):
                continue
            st = os.lstat(os.path.join(dirpath, n))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def run_crash(tarn, writers_n, kill_after):
    s3 = tarn.client(connect_timeout=5, read_timeout=60)
    bucket = "crash-%d" % writers_n
    s3.create_bucket(Bucket=bucket)

    lock = threading.Lock()
    acked = [0]
    enough = threading.Event()
    killed = threading.Event()

    def on_ack():
        with lock:
            acked[0] += 1
            if acked[0] >= kill_after:
                enough.set()

    writers = [Writer(tarn.client(connect_timeout=5, read_timeout=60), bucket, w, on_ack, killed)
               for w in range(writers_n)]
    for w in writers:
        w.start()
    for _ in range(HANG_GUARD * 10):
        if enough.wait(0.1) or not any(w.is_alive() for w in writers):
            break
    errors = ["%s: %r" % (w.name, w.error) for w in writers if w.error]
    assert not errors, "writes failed before the kill:\n" + "\n".join(errors)
    assert enough.is_set(), "writers did not reach %d acknowledged writes" % kill_after

    killed.set()
    tarn.kill9()
    for w in writers:
        w.join(HANG_GUARD)
        assert not w.is_alive(), "%s still running after the kill" % w.name
    errors = ["%s: %r" % (w.name, w.error) for w in writers if w.error]
    assert not errors, "writes failed before the kill:\n" + "\n".join(errors)

    tarn.start()  # same data directory, same port
    s3 = tarn.client()

    listed = {o["Key"]: o for o in list_all_objects(s3, bucket)}
    problems = []
    for w in writers:
        for key, states in expected_states(w).items():
            obj = listed.pop(key, None)
            if obj is None:
                if None not in states:
                    problems.append("%s: acknowledged but missing after the crash" % key)
                continue
            got = s3.get_object(Bucket=bucket, Key=key)
            data = got["Body"].read()
            match = [st for st in states if st is not None and bytes_of(st) == data]
            if not match:
                problems.append("%s: %d bytes after the crash match no acceptable version "
                                "(acceptable: %s)" % (key, len(data), states))
                continue
            if obj["Size"] != len(data) or got["ContentLength"] != len(data):
                problems.append("%s: listed size %d, length %d, body %d"
                                % (key, obj["Size"], got["ContentLength"], len(data)))
            if got["ETag"] != md5_etag(data):
                problems.append("%s: ETag %s does not match the bytes" % (key, got["ETag"]))
            version = match[0][1]
            if version is not None and got["Metadata"].get("version") != str(version):
                problems.append("%s: metadata version %r with the bytes of version %d"
                                % (key, got["Metadata"].get("version"), version))
    for key in listed:
        problems.append("%s: listed after the crash but never written" % key)
    assert not problems, "\n".join(problems)

    # the start-up sweep gave back the space of overwritten, deleted and
    # half-written objects: what is on disk besides the index is about
    # what is live (1 MiB of slack for small files of the server's own)
    live = sum(o["Size"] for o in list_all_objects(s3, bucket))
    on_disk = data_bytes(tarn.data)
    assert on_disk <= live + 1 * MiB, \
        "%d bytes in %s besides the index for %d live bytes" % (on_disk, tarn.data, live)

    # the restarted server takes writes again
    s3.put_object(Bucket=bucket, Key="after-restart", Body=b"alive")
    assert s3.get_object(Bucket=bucket, Key="after-restart")["Body"].read() == b"alive"
    return sum(len(w.log) for w in writers)


def test_kill9_single_writer(tarn_factory):
    tarn = tarn_factory()
    run_crash(tarn, writers_n=1, kill_after=30)


def test_kill9_concurrent_writers(tarn_factory):
    tarn = tarn_factory()
    run_crash(tarn, writers_n=4, kill_after=60)


def test_kill9_twice_then_clean_stop(tarn_factory):
    """Two crashes in a row, then a clean restart: the directory stays usable."""
    tarn = tarn_factory()
    run_crash(tarn, writers_n=2, kill_after=20)
    tarn.kill9()
    tarn.start()
    s3 = tarn.client()
    assert s3.get_object(Bucket="crash-2", Key="after-restart")["Body"].read() == b"alive"
    tarn.restart()  # SIGTERM (exit 0 asserted), start again
    assert s3.get_object(Bucket="crash-2", Key="after-restart")["Body"].read() == b"alive"
    with pytest.raises(ClientError):
        s3.head_object(Bucket="crash-2", Key="never-written")
