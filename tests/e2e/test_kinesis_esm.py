"""tests/e2e/test_kinesis_esm.py -- event source mappings from Kinesis
streams to functions (boto3): batches in Lambda's Kinesis event format,
each shard in order and each record once, StartingPosition LATEST,
BisectBatchOnFunctionError with MaximumRetryAttempts, and
ReportBatchItemFailures moving the checkpoint to the first failed record.
"""
import json

import pytest
from botocore.exceptions import ClientError

import lambda_util as lu
from queue_util import client, unique
from test_events import create_python, wait_for

FN = '''
import base64, json, os
import boto3

def handler(event, context):
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    bucket = os.environ["BUCKET"]
    recs = [(r["kinesis"]["sequenceNumber"], base64.b64decode(r["kinesis"]["data"]).decode(),
             r["eventID"].split(":")[0], r["eventSource"], r["eventSourceARN"])
            for r in event["Records"]]
    if any(d == "poison" for _, d, _, _, _ in recs):
        raise ValueError("poison")
    failed = []
    for seq, d, _, _, _ in recs:
        if d.startswith("bad"):
            try:
                s3.head_object(Bucket=bucket, Key="seen/" + seq)
            except Exception:
                s3.put_object(Bucket=bucket, Key="seen/" + seq, Body=b"")
                failed.append({"itemIdentifier": seq})
                break
    ok = recs if not failed else recs[:[r[0] for r in recs].index(failed[0]["itemIdentifier"])]
    if ok:  # keyed by the first sequence number: listings come in delivery order per shard
        key = "ok/%s-%s" % (ok[0][2], ok[0][0])
        try:
            s3.head_object(Bucket=bucket, Key=key)
            key += "-again-" + context.aws_request_id  # a repeat must show
        except Exception:
            pass
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(ok).encode())
    return {"batchItemFailures": failed}
'''


@pytest.fixture(scope="module")
def kin(tarn):
    return client(tarn, "kinesis")


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


def processed(s3, bucket):
    out = []
    for key in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="ok/").get("Contents", [])]:
        out.extend(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    return out


def make(kin, lam, bucket, shards, **mapping):
    stream = unique("esm")
    kin.create_stream(StreamName=stream, ShardCount=shards)
    arn = kin.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    fname = unique("kfn")
    create_python(lam, fname, FN, Timeout=30, Environment={"Variables": {"BUCKET": bucket}})
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fname, **mapping)
    return stream, arn, m


def test_batches_in_order_each_record_once(kin, lam, s3, bucket):
    stream = unique("esm")
    kin.create_stream(StreamName=stream, ShardCount=2)
    kin.put_record(StreamName=stream, Data=b"before", PartitionKey="p")  # LATEST skips it
    arn = kin.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    fname = unique("kfn")
    create_python(lam, fname, FN, Timeout=30, Environment={"Variables": {"BUCKET": bucket}})
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fname,
                                        StartingPosition="LATEST", BatchSize=7)
    assert m["StartingPosition"] == "LATEST" and m["BatchSize"] == 7
    sent = {}
    for i in range(30):
        r = kin.put_record(StreamName=stream, Data=b"r%d" % i, PartitionKey="k%d" % (i % 5))
        sent["r%d" % i] = (r["ShardId"], r["SequenceNumber"])
    got = wait_for(lambda: len(processed(s3, bucket)) >= 30 and processed(s3, bucket), timeout=90,
                   interval=0.5)
    assert sorted(d for _, d, _, _, _ in got) == sorted(sent)
    assert {src for _, _, _, src, _ in got} == {"aws:kinesis"}
    assert {a for _, _, _, _, a in got} == {arn}
    for shard in {s for s, _ in sent.values()}:
        seqs = [int(seq) for seq, _, sh, _, _ in got if sh == shard]
        assert seqs == sorted(seqs)
    assert lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"][0][
        "UUID"] == m["UUID"]
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_bisect_retries_and_item_failures(kin, lam, s3, bucket):
    stream, arn, m = make(kin, lam, bucket, 1, StartingPosition="TRIM_HORIZON", BatchSize=10,
                          BisectBatchOnFunctionError=True, MaximumRetryAttempts=2,
                          FunctionResponseTypes=["ReportBatchItemFailures"])
    assert m["BisectBatchOnFunctionError"] is True and m["MaximumRetryAttempts"] == 2
    kin.put_records(StreamName=stream, Records=[
        {"Data": d.encode(), "PartitionKey": "p"}
        for d in ("a", "b", "poison", "c", "bad-1", "d")])
    want = ["a", "b", "c", "bad-1", "d"]  # poison skipped after its retries

    def done():
        got = [d for _, d, _, _, _ in processed(s3, bucket)]
        return "d" in got and got

    got = wait_for(done, timeout=120, interval=0.5)
    # each record processed once, in order; bad-1 only on its second delivery
    assert got == want
    seqs = [int(s) for s, _, _, _, _ in processed(s3, bucket)]
    assert len(seqs) == len(set(seqs)) == 5
    state = lam.get_event_source_mapping(UUID=m["UUID"])
    assert state["State"] in ("Enabled", "Creating")


def test_kinesis_mapping_bad_input(kin, lam, bucket):
    stream = unique("esmbad")
    kin.create_stream(StreamName=stream, ShardCount=1)
    arn = kin.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    fname = unique("kfn")
    create_python(lam, fname, FN, Environment={"Variables": {"BUCKET": bucket}})
    with pytest.raises(ClientError) as ei:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fname)
    assert "startingPosition" in ei.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        lam.create_event_source_mapping(EventSourceArn=arn + "-nope", FunctionName=fname,
                                        StartingPosition="LATEST")
    assert lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"] == []
