"""tests/e2e/test_s3_versioning_lifecycle.py -- what versions do to the
rest of tarn: event records carry the version id (and a delete marker is
ObjectRemoved:DeleteMarkerCreated), SQL reads current versions only, and
lifecycle rules act on versions (NoncurrentVersionExpiration with
NewerNoncurrentVersions, ExpiredObjectDeleteMarker, Expiration adding a
delete marker).

The server runs with a lifecycle day of 2 seconds and a sweep every second
(TARN_LIFECYCLE_DAY_SECONDS, TARN_LIFECYCLE_SWEEP_SECONDS); tests wait for
effects with generous deadlines, never fixed sleeps.
"""
import json
import time

import pytest

from tarnlib import Tarn
from test_events import aws_client, make_queue, receive_all, queue_rule

DAY = 2


@pytest.fixture(scope="module")
def tarn(tmp_path_factory):
    srv = Tarn(tmp_path_factory.mktemp("tarn"),
               env={"TARN_LIFECYCLE_DAY_SECONDS": str(DAY),
                    "TARN_LIFECYCLE_SWEEP_SECONDS": "1"}).start()
    yield srv
    srv.stop_clean()


def wait_for(cond, timeout=90.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def enable(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def ids(s3, bucket, key=None):
    r = s3.list_object_versions(Bucket=bucket, **({"Prefix": key} if key else {}))
    return ([v["VersionId"] for v in r.get("Versions", [])],
            [m["VersionId"] for m in r.get("DeleteMarkers", [])])


def test_events_carry_version_ids(tarn, s3, bucket):
    sqs = aws_client(tarn, "sqs")
    qurl, qarn = make_queue(sqs, bucket + "-q")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [queue_rule(qarn, ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"])]})
    receive_all(sqs, qurl, 1)  # the s3:TestEvent
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="e", Body=b"1")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="e")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="e", VersionId=v1)
    recs = [json.loads(b)["Records"][0] for b in receive_all(sqs, qurl, 3, timeout=60)]
    got = sorted((r["eventName"], r["s3"]["object"].get("versionId")) for r in recs)
    assert got == sorted([("ObjectCreated:Put", v1),
                          ("ObjectRemoved:DeleteMarkerCreated", marker),
                          ("ObjectRemoved:Delete", v1)])


def test_sql_reads_current_versions_only(tarn, s3, bucket):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="t/a.csv", Body=b"n\n1\n")
    s3.put_object(Bucket=bucket, Key="t/a.csv", Body=b"n\n2\n")
    s3.put_object(Bucket=bucket, Key="t/b.csv", Body=b"n\n10\n")
    s3.delete_object(Bucket=bucket, Key="t/b.csv")
    r = tarn.request("POST", "/_tarn/sql", headers={"Accept": "application/json"},
                     body=("SELECT sum(n) AS s, count(*) AS c FROM 's3://%s/t/*.csv'"
                           % bucket).encode(), timeout=120)
    doc = json.loads(r.text)
    assert r.status_code == 200, doc
    assert doc["rows"] == [{"s": 2, "c": 1}] or doc["rows"] == [[2, 1]], doc


def test_lifecycle_noncurrent_versions_and_markers(tarn, s3, bucket):
    enable(s3, bucket)
    vs = [s3.put_object(Bucket=bucket, Key="n/k", Body=b"v%d" % i)["VersionId"] for i in range(4)]
    lone = s3.put_object(Bucket=bucket, Key="m/k", Body=b"x")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="m/k")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="m/k", VersionId=lone)  # the marker is alone now
    kept_marker = s3.delete_object(Bucket=bucket, Key="m/other")["VersionId"]  # alone, no rule
    s3.put_object(Bucket=bucket, Key="x/cur", Body=b"c")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "nc", "Status": "Enabled", "Filter": {"Prefix": "n/"},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
        {"ID": "dm", "Status": "Enabled", "Filter": {"Prefix": "m/k"},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
        {"ID": "cur", "Status": "Enabled", "Filter": {"Prefix": "x/"},
         "Expiration": {"Days": 1}},
    ]})
    # n/k keeps its current version and one newer noncurrent one
    wait_for(lambda: ids(s3, bucket, "n/")[0] == [vs[3], vs[2]], what="noncurrent expiration")
    wait_for(lambda: ids(s3, bucket, "m/k")[1] == [], what="expired delete marker")
    assert ids(s3, bucket, "m/other")[1] == [kept_marker]
    assert marker not in ids(s3, bucket)[1]
    # Expiration of a current version in a versioned bucket adds a delete marker
    wait_for(lambda: len(ids(s3, bucket, "x/")[1]) == 1, what="current expiration")
    v, m = ids(s3, bucket, "x/")
    assert len(v) == 1 and len(m) == 1
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="x/")
