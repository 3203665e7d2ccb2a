"""tests/e2e/test_store_pg_versions.py -- bucket versioning and object lock on
two tarn nodes whose index is in PostgreSQL (`--metadata`), the bytes in an
object backend (a third tarn).

What a user of two nodes checks: versioning enabled on one node applies on
the other; versions put on one are listed (newest first, IsLatest, paging
with KeyMarker/VersionIdMarker), read by versionId and deleted on the other;
a delete adds a delete marker, after which a plain GET is a 404 that says
so; deleting the marker brings the object back; suspended versioning
overwrites the null version; an object lock retention or legal hold placed
on one node refuses the delete of that version on the other; concurrent
PUTs on both nodes make one version each; a multipart upload completed in a
versioned bucket is a version; events carry version ids, delivered once;
NoncurrentVersionExpiration removes old versions once.

Start reading at test_versions_across_nodes().
"""
import datetime
import json
import threading
import time

import pytest

from pg_util import backend, pg, two_nodes  # noqa: F401 (fixtures)
from test_store_pg import sqs_of


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, pg, backend):
    # a lifecycle "day" of 2 s, swept every second (test_multipart_lifecycle_events)
    yield from two_nodes(pg, backend, tmp_path_factory, prefix="versions",
                         extra={"TARN_LIFECYCLE_DAY_SECONDS": "2",
                                "TARN_LIFECYCLE_SWEEP_SECONDS": "1"})


def wait_for(cond, what, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.3)
    raise AssertionError("timed out waiting for " + what)


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def versioned(s3, bucket):
    """A new bucket with versioning enabled."""
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def test_versions_across_nodes(nodes):
    a, b = nodes
    sa, sb = a.client(), b.client()
    versioned(sa, "ver")
    assert sb.get_bucket_versioning(Bucket="ver")["Status"] == "Enabled"

    ids = []
    for i in range(3):
        r = sb.put_object(Bucket="ver", Key="doc", Body=b"v%d" % i)
        ids.append(r["VersionId"])
    assert len(set(ids)) == 3 and "null" not in ids

    lv = sa.list_object_versions(Bucket="ver")
    got = [(v["Key"], v["VersionId"], v["IsLatest"]) for v in lv["Versions"]]
    assert got == [("doc", ids[2], True), ("doc", ids[1], False), ("doc", ids[0], False)]
    assert "DeleteMarkers" not in lv

    # paging one version at a time gives the same order
    seen, km, vm = [], None, None
    while True:
        kw = dict(Bucket="ver", MaxKeys=1)
        if km is not None:
            kw.update(KeyMarker=km, VersionIdMarker=vm)
        page = sa.list_object_versions(**kw)
        seen += [v["VersionId"] for v in page.get("Versions", [])]
        if not page["IsTruncated"]:
            break
        km, vm = page["NextKeyMarker"], page["NextVersionIdMarker"]
    assert seen == [ids[2], ids[1], ids[0]]

    for i, vid in enumerate(ids):
        r = sa.get_object(Bucket="ver", Key="doc", VersionId=vid)
        assert r["Body"].read() == b"v%d" % i
        assert r["VersionId"] == vid
    assert sa.get_object(Bucket="ver", Key="doc")["Body"].read() == b"v2"

    # a delete on A puts a marker on top; B sees the key gone, with the marker named
    d = sa.delete_object(Bucket="ver", Key="doc")
    assert d["DeleteMarker"] is True
    marker = d["VersionId"]
    with pytest.raises(sb.exceptions.ClientError) as ex:
        sb.get_object(Bucket="ver", Key="doc")
    assert code(ex) in ("NoSuchKey", "404")
    headers = ex.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-amz-delete-marker") == "true"
    assert headers.get("x-amz-version-id") == marker
    lv = sb.list_object_versions(Bucket="ver")
    assert [(m["VersionId"], m["IsLatest"]) for m in lv["DeleteMarkers"]] == [(marker, True)]
    assert [v["IsLatest"] for v in lv["Versions"]] == [False, False, False]
    assert "Contents" not in sb.list_objects_v2(Bucket="ver")

    # deleting one old version for good on B; then the marker: v2 is back
    r = sb.delete_object(Bucket="ver", Key="doc", VersionId=ids[0])
    assert r["VersionId"] == ids[0]
    with pytest.raises(sa.exceptions.ClientError) as ex:
        sa.get_object(Bucket="ver", Key="doc", VersionId=ids[0])
    assert code(ex) == "NoSuchVersion"
    sb.delete_object(Bucket="ver", Key="doc", VersionId=marker)
    assert sa.get_object(Bucket="ver", Key="doc")["Body"].read() == b"v2"
    lv = sa.list_object_versions(Bucket="ver")
    assert [(v["VersionId"], v["IsLatest"]) for v in lv["Versions"]] == \
        [(ids[2], True), (ids[1], False)]
    assert [o["Key"] for o in sa.list_objects_v2(Bucket="ver")["Contents"]] == ["doc"]

    # a bucket with versions left is not empty
    with pytest.raises(sa.exceptions.ClientError) as ex:
        sa.delete_bucket(Bucket="ver")
    assert code(ex) == "BucketNotEmpty"


def test_suspended_null_version(nodes):
    a, b = nodes
    sa, sb = a.client(), b.client()
    versioned(sa, "susp")
    kept = sa.put_object(Bucket="susp", Key="k", Body=b"kept")["VersionId"]
    sb.put_bucket_versioning(Bucket="susp", VersioningConfiguration={"Status": "Suspended"})
    r = sa.put_object(Bucket="susp", Key="k", Body=b"first null")
    assert r.get("VersionId", "null") == "null"
    sb.put_object(Bucket="susp", Key="k", Body=b"second null")  # replaces the null version
    lv = sa.list_object_versions(Bucket="susp")
    assert [(v["VersionId"], v["IsLatest"]) for v in lv["Versions"]] == \
        [("null", True), (kept, False)]
    assert sb.get_object(Bucket="susp", Key="k", VersionId="null")["Body"].read() == \
        b"second null"
    assert sb.get_object(Bucket="susp", Key="k", VersionId=kept)["Body"].read() == b"kept"
    # a delete while suspended: a null delete marker replaces the null version
    d = sb.delete_object(Bucket="susp", Key="k")
    assert d["DeleteMarker"] is True and d["VersionId"] == "null"
    lv = sa.list_object_versions(Bucket="susp")
    assert [(m["VersionId"], m["IsLatest"]) for m in lv["DeleteMarkers"]] == [("null", True)]
    assert [v["VersionId"] for v in lv["Versions"]] == [kept]


def test_object_lock_across_nodes(nodes):
    a, b = nodes
    sa, sb = a.client(), b.client()
    sa.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    assert sb.get_bucket_versioning(Bucket="locked")["Status"] == "Enabled"
    assert sb.get_object_lock_configuration(Bucket="locked")[
        "ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"

    held = sa.put_object(Bucket="locked", Key="held", Body=b"h")["VersionId"]
    kept = sa.put_object(Bucket="locked", Key="kept", Body=b"k")["VersionId"]
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    sb.put_object_legal_hold(Bucket="locked", Key="held", VersionId=held,
                             LegalHold={"Status": "ON"})
    sb.put_object_retention(Bucket="locked", Key="kept", VersionId=kept,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
    assert sa.get_object_legal_hold(Bucket="locked", Key="held",
                                    VersionId=held)["LegalHold"]["Status"] == "ON"
    ret = sa.get_object_retention(Bucket="locked", Key="kept", VersionId=kept)["Retention"]
    assert ret["Mode"] == "GOVERNANCE"

    for key, vid in (("held", held), ("kept", kept)):
        with pytest.raises(sa.exceptions.ClientError) as ex:
            sa.delete_object(Bucket="locked", Key=key, VersionId=vid)
        assert code(ex) == "AccessDenied"
        assert sb.get_object(Bucket="locked", Key=key, VersionId=vid)["Body"].read()

    # governance gives way to the bypass header; the legal hold to being lifted
    sa.delete_object(Bucket="locked", Key="kept", VersionId=kept, BypassGovernanceRetention=True)
    sb.put_object_legal_hold(Bucket="locked", Key="held", VersionId=held,
                             LegalHold={"Status": "OFF"})
    sa.delete_object(Bucket="locked", Key="held", VersionId=held)
    assert "Versions" not in sb.list_object_versions(Bucket="locked")

    # the bucket's default retention applies to a version put on the other node
    sa.put_object_lock_configuration(Bucket="locked", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    vid = sb.put_object(Bucket="locked", Key="dflt", Body=b"d")["VersionId"]
    assert sa.head_object(Bucket="locked", Key="dflt",
                          VersionId=vid)["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(sa.exceptions.ClientError) as ex:
        sa.delete_object(Bucket="locked", Key="dflt", VersionId=vid)
    assert code(ex) == "AccessDenied"


def test_concurrent_versions_and_copy(nodes):
    a, b = nodes
    sa, sb = a.client(), b.client()
    versioned(sa, "race")
    made = []

    def writer(s, tag):
        for i in range(8):
            r = s.put_object(Bucket="race", Key="hot", Body=b"%s-%d" % (tag, i))
            made.append(r["VersionId"])

    threads = [threading.Thread(target=writer, args=(s, t)) for s, t in ((sa, b"a"), (sb, b"b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lv = sb.list_object_versions(Bucket="race")["Versions"]
    assert sorted(v["VersionId"] for v in lv) == sorted(made) and len(set(made)) == 16
    assert [v["IsLatest"] for v in lv] == [True] + [False] * 15
    latest = sa.get_object(Bucket="race", Key="hot")
    assert latest["VersionId"] == lv[0]["VersionId"]

    # a copy of an older version, made on the other node, is a new latest version
    old = lv[-1]["VersionId"]
    body = sb.get_object(Bucket="race", Key="hot", VersionId=old)["Body"].read()
    r = sb.copy_object(Bucket="race", Key="hot",
                       CopySource={"Bucket": "race", "Key": "hot", "VersionId": old})
    assert r["CopySourceVersionId"] == old and r["VersionId"] != old
    assert sa.get_object(Bucket="race", Key="hot")["Body"].read() == body
    assert len(sa.list_object_versions(Bucket="race")["Versions"]) == 17


def test_multipart_lifecycle_events(nodes):
    a, b = nodes
    sa, sb = a.client(), b.client()
    versioned(sa, "mpv")
    queues = []
    for n in (a, b):
        sqs = sqs_of(n)
        queues.append((sqs, sqs.create_queue(QueueName="pg-versions-events")["QueueUrl"]))
    arn = queues[0][0].get_queue_attributes(QueueUrl=queues[0][1], AttributeNames=[
        "QueueArn"])["Attributes"]["QueueArn"]
    sb.put_bucket_notification_configuration(Bucket="mpv", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*",
                                                             "s3:ObjectRemoved:*"]}]})

    first = sa.put_object(Bucket="mpv", Key="big", Body=b"small first")["VersionId"]
    up = sa.create_multipart_upload(Bucket="mpv", Key="big")["UploadId"]
    part = b"p" * (5 << 20)
    e1 = sb.upload_part(Bucket="mpv", Key="big", UploadId=up, PartNumber=1, Body=part)["ETag"]
    e2 = sa.upload_part(Bucket="mpv", Key="big", UploadId=up, PartNumber=2, Body=b"end")["ETag"]
    done = sb.complete_multipart_upload(Bucket="mpv", Key="big", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    second = done["VersionId"]
    assert second not in (None, "null", first)
    assert sa.head_object(Bucket="mpv", Key="big")["ContentLength"] == len(part) + 3
    marker = sa.delete_object(Bucket="mpv", Key="big")["VersionId"]

    want = sorted([("ObjectCreated:Put", first), ("ObjectCreated:CompleteMultipartUpload", second),
                   ("ObjectRemoved:DeleteMarkerCreated", marker)])
    seen = []

    def drain():
        for sqs, url in queues:
            for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1,
                                         MaxNumberOfMessages=10).get("Messages", []):
                seen.extend((r["eventName"], r["s3"]["object"].get("versionId"))
                            for r in json.loads(m["Body"]).get("Records", []))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(seen) >= len(want)

    wait_for(drain, "the three events", timeout=120)
    drain()
    assert sorted(seen) == want

    # both versions are noncurrent now (a marker is on top): a day later they go, once each
    sb.put_bucket_lifecycle_configuration(Bucket="mpv", LifecycleConfiguration={
        "Rules": [{"ID": "old", "Status": "Enabled", "Filter": {"Prefix": ""},
                   "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
    wait_for(lambda: "Versions" not in sa.list_object_versions(Bucket="mpv"),
             "the noncurrent versions to expire")
    lv = sb.list_object_versions(Bucket="mpv")
    assert [m["VersionId"] for m in lv["DeleteMarkers"]] == [marker]
