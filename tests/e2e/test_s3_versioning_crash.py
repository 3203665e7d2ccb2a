"""tests/e2e/test_s3_versioning_crash.py -- kill -9 during versioned
overwrites and deletes: after a restart on the same data directory every
acknowledged version is listed and reads back byte for byte by its version
id, every acknowledged delete marker is there (and is a marker, with no
bytes), each key's versions are in the order they were written, and the
current version is the last acknowledged write (or the one in flight).

Writers overwrite two keys each in a versioned bucket (inline and blob
sizes) and now and then delete one (a delete marker), logging each answer's
version id. The server is killed once enough writes were acknowledged (an
event, not a delay) while the writers keep going.
"""
import random
import threading
import xml.etree.ElementTree as ET

from tarnlib import MiB, body_for

HANG_GUARD = 300


def size_for(name):
    r = random.Random("vsize:" + name)
    return r.choice([0, 3, 4096, 20000, 300000, 1 * MiB])


def vbody(key, n):
    name = "%s#%d" % (key, n)
    return body_for(name, size_for(name))


class Writer(threading.Thread):
    def __init__(self, client, bucket, wid, on_ack, killed):
        super().__init__(name="vwriter-%d" % wid, daemon=True)
        self.s3 = client
        self.bucket = bucket
        self.keys = ["w%d/a" % wid, "w%d/b" % wid]
        self.on_ack = on_ack
        self.killed = killed
        self.log = []  # {"op", "key", "n", "vid" (None until acknowledged)}
        self.error = None

    def run(self):
        i = 0
        while True:
            i += 1
            key = self.keys[i % 2]
            op = "delete" if i % 4 == 0 else "put"
            entry = {"op": op, "key": key, "n": i, "vid": None}
            self.log.append(entry)
            try:
                if op == "put":
                    r = self.s3.put_object(Bucket=self.bucket, Key=key, Body=vbody(key, i))
                else:
                    r = self.s3.delete_object(Bucket=self.bucket, Key=key)
                    if r.get("DeleteMarker") is not True:
                        raise AssertionError("DELETE %s made no marker: %r" % (key, r))
            except Exception as e:  # noqa: BLE001 -- the kill makes any error possible
                if not self.killed.is_set():
                    self.error = e
                return
            entry["vid"] = r["VersionId"]
            self.on_ack()


def test_kill9_versioned_overwrites_and_deletes(tarn_factory):
    tarn = tarn_factory()
    s3 = tarn.client(connect_timeout=5, read_timeout=60)
    bucket = "vcrash"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    lock = threading.Lock()
    acked = [0]
    enough = threading.Event()
    killed = threading.Event()

    def on_ack():
        with lock:
            acked[0] += 1
            if acked[0] >= 60:
                enough.set()

    writers = [Writer(tarn.client(connect_timeout=5, read_timeout=60), bucket, w, on_ack, killed)
               for w in range(3)]
    for w in writers:
        w.start()
    for _ in range(HANG_GUARD * 10):
        if enough.wait(0.1) or not any(w.is_alive() for w in writers):
            break
    assert not [w.error for w in writers if w.error], [repr(w.error) for w in writers]
    assert enough.is_set()
    killed.set()
    tarn.kill9()
    for w in writers:
        w.join(HANG_GUARD)
        assert not w.is_alive()
    assert not [w.error for w in writers if w.error], [repr(w.error) for w in writers]

    tarn.start()
    s3 = tarn.client()
    listed = {}  # key -> [(vid, is_marker, is_latest)] in the listing's order: newest first
    raw = []
    s3.meta.events.register("after-call.s3.ListObjectVersions",
                            lambda http_response, **kw: raw.append(http_response.content))
    for _ in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        pass
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    for page in raw:  # boto3 splits Versions from DeleteMarkers: read the XML's order
        for el in ET.fromstring(page):
            if el.tag in (ns + "Version", ns + "DeleteMarker"):
                listed.setdefault(el.find(ns + "Key").text, []).append(
                    (el.find(ns + "VersionId").text, el.tag == ns + "DeleteMarker",
                     el.find(ns + "IsLatest").text == "true", None))

    problems = []
    for w in writers:
        for key in w.keys:
            ops = [e for e in w.log if e["key"] == key]
            have = listed.pop(key, [])  # as listed: newest first
            acked_ops = [e for e in ops if e["vid"] is not None]
            pending = [e for e in ops if e["vid"] is None]  # at most the writer's last op
            ids = [vid for vid, _, _, _ in have]
            for e in acked_ops:
                if e["vid"] not in ids:
                    problems.append("%s: acknowledged %s %s lost" % (key, e["op"], e["vid"]))
            extra = [x for x in have if x[0] not in {e["vid"] for e in acked_ops}]
            if len(extra) > len(pending):
                problems.append("%s: versions nobody wrote: %r" % (key, extra))
            # each acknowledged version reads back whole, markers are markers
            for e in acked_ops:
                got = [x for x in have if x[0] == e["vid"]]
                if not got:
                    continue
                if got[0][1] != (e["op"] == "delete"):
                    problems.append("%s: version %s marker=%s for a %s"
                                    % (key, e["vid"], got[0][1], e["op"]))
                elif e["op"] == "put":
                    data = s3.get_object(Bucket=bucket, Key=key, VersionId=e["vid"])["Body"].read()
                    if data != vbody(key, e["n"]):
                        problems.append("%s: version %s has other bytes" % (key, e["vid"]))
            # written order: the acknowledged ids appear newest first
            order = [vid for vid in ids if vid in {e["vid"] for e in acked_ops}]
            want = [e["vid"] for e in reversed(acked_ops)]
            if order != want:
                problems.append("%s: version order %r, want %r" % (key, order, want))
            # the current version is the newest one
            latest = [x for x in have if x[2]]
            if have and (len(latest) != 1 or latest[0][0] != ids[0]):
                problems.append("%s: IsLatest on %r, newest is %s" % (key, latest, ids[0]))
            if have and not have[0][1]:
                cur = s3.head_object(Bucket=bucket, Key=key)
                if cur["VersionId"] != ids[0]:
                    problems.append("%s: current %s, newest %s" % (key, cur["VersionId"], ids[0]))
    for key in listed:
        problems.append("%s: listed but never written" % key)
    assert not problems, "\n".join(problems)

    r = s3.put_object(Bucket=bucket, Key="after", Body=b"alive")
    assert s3.get_object(Bucket=bucket, Key="after", VersionId=r["VersionId"])["Body"].read() \
        == b"alive"
