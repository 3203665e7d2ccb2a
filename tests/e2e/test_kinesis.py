"""tests/e2e/test_kinesis.py -- Kinesis Data Streams with boto3 and the AWS
CLI: streams and shards, records hashed to shards by MD5 of the partition
key, per-shard increasing sequence numbers, every iterator type, resharding,
bad input answered with Kinesis's error shapes while nothing changes, and
iterators that expire (sealed, so their age cannot be forged).
"""
import base64
import hashlib
import json
import time

import pytest
import requests
from botocore.exceptions import ClientError

from queue_util import client, unique, within_ttl

MAX_HASH = 2 ** 128 - 1


@pytest.fixture(scope="module")
def kin(tarn):
    return client(tarn, "kinesis")


def shard_for(shards, key):
    h = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
    for s in shards:
        r = s["HashKeyRange"]
        if int(r["StartingHashKey"]) <= h <= int(r["EndingHashKey"]):
            return s["ShardId"]
    raise AssertionError("no shard holds %d" % h)


def read_all(kin, name, shard, kind="TRIM_HORIZON", **kw):
    it = kin.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType=kind,
                                **kw)["ShardIterator"]
    out = []
    for _ in range(20):
        r = kin.get_records(ShardIterator=it, Limit=1000)
        out.extend(r["Records"])
        it = r.get("NextShardIterator")
        if not r["Records"] or it is None:
            break
    return out


def test_stream_lifecycle_and_shards(kin):
    name = unique("life")
    kin.create_stream(StreamName=name, ShardCount=3)
    d = kin.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamStatus"] == "ACTIVE"
    assert d["StreamARN"].endswith(":stream/" + name)
    shards = d["Shards"]
    assert [s["ShardId"] for s in shards] == ["shardId-%012d" % i for i in range(3)]
    # the hash key space is split evenly, with no gap and no overlap
    assert int(shards[0]["HashKeyRange"]["StartingHashKey"]) == 0
    assert int(shards[-1]["HashKeyRange"]["EndingHashKey"]) == MAX_HASH
    for a, b in zip(shards, shards[1:]):
        assert int(a["HashKeyRange"]["EndingHashKey"]) + 1 == int(b["HashKeyRange"]["StartingHashKey"])
    summary = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3 and summary["RetentionPeriodHours"] == 24
    assert name in kin.list_streams()["StreamNames"]
    assert len(kin.list_shards(StreamName=name)["Shards"]) == 3
    with pytest.raises(ClientError) as ei:
        kin.create_stream(StreamName=name, ShardCount=1)
    assert ei.value.response["Error"]["Code"] == "ResourceInUseException"
    kin.delete_stream(StreamName=name)
    assert name not in kin.list_streams()["StreamNames"]
    with pytest.raises(ClientError) as ei:
        kin.describe_stream(StreamName=name)
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_put_hashes_by_md5_and_reads_in_order(kin):
    name = unique("put")
    kin.create_stream(StreamName=name, ShardCount=4)
    shards = kin.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    sent = {}
    for i in range(40):
        key = "user-%d" % i
        r = kin.put_record(StreamName=name, Data=b"rec-%d" % i, PartitionKey=key)
        assert r["ShardId"] == shard_for(shards, key)
        sent.setdefault(r["ShardId"], []).append((r["SequenceNumber"], b"rec-%d" % i, key))
    batch = kin.put_records(StreamName=name, Records=[
        {"Data": b"batch-%d" % i, "PartitionKey": "b%d" % i} for i in range(50)])
    assert batch["FailedRecordCount"] == 0 and len(batch["Records"]) == 50
    for i, res in enumerate(batch["Records"]):
        assert res["ShardId"] == shard_for(shards, "b%d" % i)
        sent.setdefault(res["ShardId"], []).append((res["SequenceNumber"], b"batch-%d" % i, "b%d" % i))
    total = 0
    for shard, recs in sent.items():
        got = read_all(kin, name, shard)
        assert [(g["SequenceNumber"], g["Data"], g["PartitionKey"]) for g in got] == recs
        seqs = [int(g["SequenceNumber"]) for g in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        total += len(got)
    assert total == 90
    # ExplicitHashKey picks the shard
    r = kin.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey=str(MAX_HASH))
    assert r["ShardId"] == "shardId-000000000003"


def test_iterator_types(kin):
    name = unique("iter")
    kin.create_stream(StreamName=name, ShardCount=1)
    shard = "shardId-000000000000"
    seqs = [kin.put_record(StreamName=name, Data=b"a%d" % i, PartitionKey="p")["SequenceNumber"]
            for i in range(5)]
    at = read_all(kin, name, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2])
    assert [r["Data"] for r in at] == [b"a2", b"a3", b"a4"]
    after = read_all(kin, name, shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2])
    assert [r["Data"] for r in after] == [b"a3", b"a4"]
    latest = kin.get_shard_iterator(StreamName=name, ShardId=shard,
                                    ShardIteratorType="LATEST")["ShardIterator"]
    assert kin.get_records(ShardIterator=latest)["Records"] == []
    kin.put_record(StreamName=name, Data=b"new", PartitionKey="p")
    r = kin.get_records(ShardIterator=latest)
    assert [x["Data"] for x in r["Records"]] == [b"new"]
    assert r["MillisBehindLatest"] == 0
    # AT_TIMESTAMP: the first record at or after the time
    first_ts = at[0]["ApproximateArrivalTimestamp"]
    ts = read_all(kin, name, shard, "AT_TIMESTAMP", Timestamp=first_ts)
    assert [x["Data"] for x in ts][-1] == b"new"
    future = read_all(kin, name, shard, "AT_TIMESTAMP", Timestamp=time.time() + 3600)
    assert future == []
    # Limit pages through a shard
    it = kin.get_shard_iterator(StreamName=name, ShardId=shard,
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    r = kin.get_records(ShardIterator=it, Limit=2)
    assert [x["Data"] for x in r["Records"]] == [b"a0", b"a1"]
    r = kin.get_records(ShardIterator=r["NextShardIterator"], Limit=2)
    assert [x["Data"] for x in r["Records"]] == [b"a2", b"a3"]


def test_on_demand_retention_and_resharding(kin):
    name = unique("mode")
    kin.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    s = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"]["StreamMode"] == "ON_DEMAND" and s["OpenShardCount"] >= 1
    kin.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    assert kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
        "RetentionPeriodHours"] == 48
    with pytest.raises(ClientError) as ei:
        kin.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=72)
    assert ei.value.response["Error"]["Code"] == "InvalidArgumentException"

    name = unique("reshard")
    kin.create_stream(StreamName=name, ShardCount=1)
    before = kin.put_record(StreamName=name, Data=b"old", PartitionKey="p")
    r = kin.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    assert r["CurrentShardCount"] == 1 and r["TargetShardCount"] == 2
    shards = kin.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    assert len(shards) == 3
    assert "EndingSequenceNumber" in shards[0]["SequenceNumberRange"]
    assert {s.get("ParentShardId") for s in shards[1:]} == {"shardId-000000000000"}
    after = kin.put_record(StreamName=name, Data=b"new", PartitionKey="p")
    assert after["ShardId"] in ("shardId-000000000001", "shardId-000000000002")
    # the closed parent still reads, then ends with its children
    it = kin.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    r = kin.get_records(ShardIterator=it)
    assert [x["SequenceNumber"] for x in r["Records"]] == [before["SequenceNumber"]]
    r = kin.get_records(ShardIterator=r["NextShardIterator"])
    assert r["Records"] == [] and r.get("NextShardIterator") is None
    assert {c["ShardId"] for c in r["ChildShards"]} == {"shardId-000000000001", "shardId-000000000002"}
    open_only = kin.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert len(open_only) == 2


def test_bad_input_changes_nothing(kin, tarn):
    name = unique("bad")
    kin.create_stream(StreamName=name, ShardCount=1)
    for kw, code in [
        (dict(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k" * 257}]),
         "InvalidArgumentException"),
        (dict(StreamName=name, Records=[{"Data": b"x" * (1 << 20), "PartitionKey": "k"}]),
         "InvalidArgumentException"),
        (dict(StreamName=name, Records=[{"Data": b"ok", "PartitionKey": "k"},
                                        {"Data": b"x", "PartitionKey": "k",
                                         "ExplicitHashKey": str(2 ** 128)}]),
         "InvalidArgumentException"),
        (dict(StreamName=unique("nope"), Records=[{"Data": b"x", "PartitionKey": "k"}]),
         "ResourceNotFoundException"),
    ]:
        with pytest.raises(ClientError) as ei:
            kin.put_records(**kw)
        assert ei.value.response["Error"]["Code"] == code
    assert read_all(kin, name, "shardId-000000000000") == []
    with pytest.raises(ClientError) as ei:
        kin.get_records(ShardIterator="bm90IGFuIGl0ZXJhdG9y")
    assert ei.value.response["Error"]["Code"] == "InvalidArgumentException"
    with pytest.raises(ClientError) as ei:
        kin.get_shard_iterator(StreamName=name, ShardId="shardId-000000000009",
                               ShardIteratorType="LATEST")
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as ei:
        kin.create_stream(StreamName="bad name!", ShardCount=1)
    assert ei.value.response["Error"]["Code"] == "InvalidArgumentException"


def test_cbor_gets_a_clear_error(tarn):
    # a CBOR request (what the Java SDK sends by default) is refused with a
    # message that names the setting that turns CBOR off
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    req = AWSRequest(method="POST", url=tarn.endpoint + "/", data=b"\xa0",
                     headers={"X-Amz-Target": "Kinesis_20131202.ListStreams",
                              "Content-Type": "application/x-amz-cbor-1.1"})
    SigV4Auth(tarn.credentials(), "kinesis", "us-east-1").add_auth(req)
    r = requests.post(req.url, data=req.body, headers=dict(req.headers), timeout=10)
    assert r.status_code == 400
    assert "AWS_CBOR_DISABLE" in r.json()["message"]


def test_aws_cli(tarn, kin):
    # one AWS CLI call (each costs seconds to start): its base64 blob lands
    name = unique("cli")
    kin.create_stream(StreamName=name, ShardCount=2)
    out = json.loads(tarn.aws_ok("kinesis", "put-record", "--stream-name", name,
                                 "--partition-key", "k", "--data", "aGVsbG8=").stdout)
    got = read_all(kin, name, out["ShardId"])
    assert [(r["SequenceNumber"], r["Data"]) for r in got] == [(out["SequenceNumber"], b"hello")]


def test_split_and_merge(kin):
    name = unique("split")
    kin.create_stream(StreamName=name, ShardCount=1)
    half = 2 ** 127
    kin.split_shard(StreamName=name, ShardToSplit="shardId-000000000000",
                    NewStartingHashKey=str(half))
    shards = kin.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    assert [s["ShardId"] for s in shards] == ["shardId-%012d" % i for i in range(3)]
    assert "EndingSequenceNumber" in shards[0]["SequenceNumberRange"]
    assert [(s["HashKeyRange"]["StartingHashKey"], s["HashKeyRange"]["EndingHashKey"],
             s["ParentShardId"]) for s in shards[1:]] == [
        ("0", str(half - 1), "shardId-000000000000"),
        (str(half), str(MAX_HASH), "shardId-000000000000")]
    low = kin.put_record(StreamName=name, Data=b"l", PartitionKey="k", ExplicitHashKey="5")
    high = kin.put_record(StreamName=name, Data=b"h", PartitionKey="k", ExplicitHashKey=str(half))
    assert (low["ShardId"], high["ShardId"]) == ("shardId-000000000001", "shardId-000000000002")
    kin.merge_shards(StreamName=name, ShardToMerge="shardId-000000000001",
                     AdjacentShardToMerge="shardId-000000000002")
    merged = kin.describe_stream(StreamName=name)["StreamDescription"]["Shards"][3]
    assert merged["ParentShardId"] == "shardId-000000000001"
    assert merged["AdjacentParentShardId"] == "shardId-000000000002"
    assert (merged["HashKeyRange"]["StartingHashKey"], merged["HashKeyRange"]["EndingHashKey"]) \
        == ("0", str(MAX_HASH))
    assert kin.put_record(StreamName=name, Data=b"m", PartitionKey="k")["ShardId"] == \
        "shardId-000000000003"
    for kw in (dict(ShardToSplit="shardId-000000000003", NewStartingHashKey="0"),
               dict(ShardToSplit="shardId-000000000000", NewStartingHashKey="7")):
        with pytest.raises(ClientError) as ei:
            kin.split_shard(StreamName=name, **kw)
        assert ei.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert len(kin.describe_stream(StreamName=name)["StreamDescription"]["Shards"]) == 4


ITER_TTL_MS = 3000  # TARN_ITERATOR_TTL_MS for the expiry test (AWS: 300000)


def _code(err):
    return err.value.response["Error"]["Code"]


def test_iterators_expire(tarn_factory):
    srv = tarn_factory(env={"TARN_ITERATOR_TTL_MS": str(ITER_TTL_MS)})
    k = client(srv, "kinesis")
    name = unique("exp")
    k.create_stream(StreamName=name, ShardCount=1)
    shard = k.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    k.put_record(StreamName=name, Data=b"one", PartitionKey="p")

    def fresh():
        it = k.get_shard_iterator(StreamName=name, ShardId=shard,
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        return it, k.get_records(ShardIterator=it)

    old, r = within_ttl(fresh, ITER_TTL_MS)
    assert [x["Data"] for x in r["Records"]] == [b"one"]
    nxt = r["NextShardIterator"]
    time.sleep(ITER_TTL_MS / 1000 + 1)  # let both iterators age past the TTL
    for it in (old, nxt):
        with pytest.raises(ClientError) as e:
            k.get_records(ShardIterator=it)
        assert _code(e) == "ExpiredIteratorException"
        msg = e.value.response["Error"]["Message"]
        assert msg.startswith("Iterator expired. The iterator was created at time ")
        assert msg.endswith("which is further in the future than the tolerated delay of "
                            "%d milliseconds." % ITER_TTL_MS)

    # a NextShardIterator is fresh again: it reads the next record
    def chain():
        it, r = fresh()
        k.put_record(StreamName=name, Data=b"two", PartitionKey="p")
        r2 = k.get_records(ShardIterator=r["NextShardIterator"])
        return r2

    r2 = within_ttl(chain, ITER_TTL_MS)
    assert b"two" in [x["Data"] for x in r2["Records"]]

    # the issue time cannot be forged: a changed iterator is invalid, not young
    raw = bytearray(base64.b64decode(old))
    raw[-20] ^= 1
    with pytest.raises(ClientError) as e:
        k.get_records(ShardIterator=base64.b64encode(bytes(raw)).decode())
    assert _code(e) == "InvalidArgumentException"


def test_iterators_outlive_a_restart(tarn_factory):
    # An iterator is valid for its time to live, across a server restart
    # (its key derives from the server's secret), as a client expects.
    srv = tarn_factory()
    k = client(srv, "kinesis")
    name = unique("rst")
    k.create_stream(StreamName=name, ShardCount=1)
    shard = k.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    k.put_record(StreamName=name, Data=b"kept", PartitionKey="p")
    it = k.get_shard_iterator(StreamName=name, ShardId=shard,
                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    srv.kill9()
    srv.start()
    k = client(srv, "kinesis")
    assert [x["Data"] for x in k.get_records(ShardIterator=it)["Records"]] == [b"kept"]
