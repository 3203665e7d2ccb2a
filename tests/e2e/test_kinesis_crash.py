"""tests/e2e/test_kinesis_crash.py -- Kinesis durability under kill -9:
every record acknowledged by PutRecord or PutRecords (group commit) is
readable, with its sequence number, after a restart.
"""
from queue_util import client, unique
from test_firehose_crash import put_until_killed


def test_kinesis_acknowledged_records_survive_kill9(tarn_factory):
    srv = tarn_factory()
    kin = client(srv, "kinesis", connect_timeout=2, read_timeout=10)
    name = unique("crash")
    kin.create_stream(StreamName=name, ShardCount=2)

    def put(k, i):
        if i % 2:
            r = kin.put_record(StreamName=name, Data=b"t%d-%d" % (k, i), PartitionKey="k%d" % i)
            return {(r["SequenceNumber"], b"t%d-%d" % (k, i))}
        r = kin.put_records(StreamName=name, Records=[
            {"Data": b"t%d-%d-%d" % (k, i, j), "PartitionKey": "p%d" % j} for j in range(5)])
        return {(x["SequenceNumber"], b"t%d-%d-%d" % (k, i, j))
                for j, x in enumerate(r["Records"]) if "SequenceNumber" in x}

    acked = put_until_killed(srv, put)
    srv.start()
    kin = client(srv, "kinesis")
    got = set()
    for shard in ("shardId-000000000000", "shardId-000000000001"):
        it = kin.get_shard_iterator(StreamName=name, ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while True:
            r = kin.get_records(ShardIterator=it, Limit=10000)
            got.update((x["SequenceNumber"], x["Data"]) for x in r["Records"])
            it = r.get("NextShardIterator")
            if not r["Records"]:
                break
    assert acked <= got, "%d acknowledged records lost" % len(acked - got)
