"""tests/e2e/test_kinesis_cli.py -- `tarn stream`: create a stream, put
lines from stdin, tail them, list and remove, checked with boto3 (and the
other way round).
"""
from queue_util import client, unique
from test_sqs_cli import tarn_cli


def test_stream_commands(tarn):
    kin = client(tarn, "kinesis")
    name = unique("clis")
    tarn_cli(tarn, "stream", "create", name, "--shards", "3")
    assert len(kin.describe_stream(StreamName=name)["StreamDescription"]["Shards"]) == 3
    assert name in tarn_cli(tarn, "stream", "ls").stdout.split()
    lines = ["line %d" % i for i in range(1200)]  # more than one PutRecords batch
    tarn_cli(tarn, "stream", "put", name, input="\n".join(lines) + "\n")
    kin.put_record(StreamName=name, Data=b"from boto3", PartitionKey="x")
    out = tarn_cli(tarn, "stream", "tail", name, "--from-start", "--once").stdout.splitlines()
    assert sorted(out) == sorted(lines + ["from boto3"])
    # one partition key keeps the lines in order in one shard
    name2 = unique("order")
    tarn_cli(tarn, "stream", "create", name2, "--shards", "2")
    tarn_cli(tarn, "stream", "put", name2, "--key", "k", input="a\nb\nc\n")
    assert tarn_cli(tarn, "stream", "tail", name2, "--from-start", "--once").stdout == "a\nb\nc\n"
    tarn_cli(tarn, "stream", "rm", name)
    assert name not in kin.list_streams()["StreamNames"]
    r = tarn_cli(tarn, "stream", "rm", name, ok=False)
    assert r.returncode == 1 and "not found" in r.stderr
    r = tarn_cli(tarn, "stream", "put", ok=False)
    assert r.returncode == 2
