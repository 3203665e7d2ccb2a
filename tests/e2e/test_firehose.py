"""tests/e2e/test_firehose.py -- Firehose delivery streams with boto3:
records buffered by size and by time and written into a bucket under the
prefixes and names Firehose uses, GZIP, dynamic partitioning from record
fields, the Lambda processor's Ok / Dropped / ProcessingFailed, and bad
input answered with Firehose's error shapes while nothing changes.

No timing asserts: with SizeInMBs=1 and IntervalInSeconds=900, 1.1 MiB of
records produce an object at once (the test waits, bounded); a small put
with a 1-second interval is delivered later.
"""
import gzip
import io
import json
import re
import zipfile

import pytest
from botocore.exceptions import ClientError

import lambda_util as lu
from queue_util import client, unique
from tarnlib import list_all_keys
from test_events import create_python, wait_for

NAME_RE = r"%s-%d-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f-]{36}%s"


@pytest.fixture(scope="module")
def fh(tarn):
    # the Debian botocore still holds IntervalInSeconds to its old minimum
    # of 60; Firehose takes 0 to 900 today
    return client(tarn, "firehose", parameter_validation=False)


def create(fh, name, bucket, **dest):
    d = {"RoleARN": "arn:aws:iam::000000000000:role/firehose",
         "BucketARN": "arn:aws:s3:::" + bucket}
    d.update(dest)
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration=d)


def objects(s3, bucket, prefix=""):
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read()
            for k in list_all_keys(s3, bucket, Prefix=prefix)}


def test_lifecycle(fh, bucket):
    name = unique("life")
    create(fh, name, bucket, BufferingHints={"SizeInMBs": 2, "IntervalInSeconds": 120})
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["DeliveryStreamStatus"] == "ACTIVE" and d["VersionId"] == "1"
    dest = d["Destinations"][0]
    assert dest["ExtendedS3DestinationDescription"]["BufferingHints"] == {
        "SizeInMBs": 2, "IntervalInSeconds": 120}
    assert name in fh.list_delivery_streams(Limit=100)["DeliveryStreamNames"]
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                          DestinationId=dest["DestinationId"],
                          ExtendedS3DestinationUpdate={"Prefix": "new/"})
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["VersionId"] == "2"
    assert d["Destinations"][0]["ExtendedS3DestinationDescription"]["Prefix"] == "new/"
    with pytest.raises(ClientError) as ei:
        fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                              DestinationId=dest["DestinationId"],
                              ExtendedS3DestinationUpdate={"Prefix": "x/"})
    assert ei.value.response["Error"]["Code"] == "ConcurrentModificationException"
    with pytest.raises(ClientError) as ei:
        create(fh, name, bucket)
    assert ei.value.response["Error"]["Code"] == "ResourceInUseException"
    fh.delete_delivery_stream(DeliveryStreamName=name)
    assert name not in fh.list_delivery_streams(Limit=100)["DeliveryStreamNames"]
    with pytest.raises(ClientError) as ei:
        fh.put_record(DeliveryStreamName=name, Record={"Data": b"x"})
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_size_hint_delivers_at_once_and_keeps_the_rest(tarn, fh, s3, bucket):
    name = unique("size")
    create(fh, name, bucket, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 900})
    lines = [("%06d " % i).encode() + b"x" * 1016 + b"\n" for i in range(1127)]  # 1.1 MiB
    for i in range(0, len(lines), 250):
        r = fh.put_record_batch(DeliveryStreamName=name,
                                Records=[{"Data": d} for d in lines[i:i + 250]])
        assert r["FailedPutCount"] == 0
        assert all("RecordId" in x for x in r["RequestResponses"])
    got = wait_for(lambda: objects(s3, bucket), timeout=30)
    assert len(got) == 1
    metrics = tarn.request("GET", "/_tarn/metrics").text
    for series in ("tarn_firehose_records_total", "tarn_firehose_objects_total"):
        assert int(re.search(r"^%s (\d+)$" % series, metrics, re.M).group(1)) >= 1
    key, body = next(iter(got.items()))
    # default prefix YYYY/MM/dd/HH/ and Firehose's object name
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\d\d/" + NAME_RE % (name, 1, ""), key), key
    # the first 1 MiB of records, in order; the rest waits for its interval
    n = len(body) // 1024
    assert body == b"".join(lines[:n]) and 1 << 20 <= len(body) < (1 << 20) + 1024


def test_interval_delivers_later_with_prefix_and_gzip(fh, s3, bucket):
    name = unique("time")
    create(fh, name, bucket, BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 1},
           Prefix="logs/year=!{timestamp:yyyy}/day=!{timestamp:yyyy'-'MM'-'dd}/",
           ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
           CompressionFormat="GZIP")
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"a": 1}\n'})
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b'{"a": 2}\n'}])
    got = wait_for(lambda: objects(s3, bucket, "logs/"), timeout=30)
    assert len(got) == 1
    key, body = next(iter(got.items()))
    assert re.fullmatch(r"logs/year=\d{4}/day=\d{4}-\d\d-\d\d/" + NAME_RE % (name, 1, r"\.gz"),
                        key), key
    assert gzip.decompress(body) == b'{"a": 1}\n{"a": 2}\n'


def test_dynamic_partitioning_from_record_fields(fh, s3, bucket):
    name = unique("dyn")
    create(fh, name, bucket, BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 1},
           Prefix="by/customer=!{partitionKeyFromQuery:customer}/kind=!{partitionKeyFromQuery:kind}/",
           ErrorOutputPrefix="err/!{firehose:error-output-type}/",
           DynamicPartitioningConfiguration={"Enabled": True},
           ProcessingConfiguration={"Enabled": True, "Processors": [
               {"Type": "MetadataExtraction", "Parameters": [
                   {"ParameterName": "MetadataExtractionQuery",
                    "ParameterValue": "{customer: .customer, kind: .event.kind}"},
                   {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
               {"Type": "AppendDelimiterToRecord", "Parameters": []}]})
    recs = [{"customer": c, "event": {"kind": k}, "n": i}
            for i, (c, k) in enumerate([("a", "x"), ("b", "x"), ("a", "x"), ("a", "y")])]
    fh.put_record_batch(DeliveryStreamName=name,
                        Records=[{"Data": json.dumps(r).encode()} for r in recs] +
                        [{"Data": b"not json"}])
    got = wait_for(lambda: len(objects(s3, bucket)) >= 4 and objects(s3, bucket), timeout=30)
    parts = {}
    for k, v in got.items():
        if k.startswith("by/"):
            parts[k.rsplit("/", 1)[0]] = [json.loads(x)["n"] for x in v.decode().splitlines()]
    assert parts == {"by/customer=a/kind=x": [0, 2], "by/customer=b/kind=x": [1],
                     "by/customer=a/kind=y": [3]}
    errs = [v for k, v in got.items() if k.startswith("err/partitioning-failed/")]
    assert len(errs) == 1
    e = json.loads(errs[0])
    assert e["rawData"] == "bm90IGpzb24=" and e["errorCode"].startswith("DynamicPartitioning")


PROCESSOR = '''
import base64, json
def handler(event, context):
    out = []
    for r in event["records"]:
        data = base64.b64decode(r["data"])
        if data == b"drop":
            out.append({"recordId": r["recordId"], "result": "Dropped", "data": r["data"]})
        elif data == b"fail":
            out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
        else:
            up = data.upper() + b"\\n"
            out.append({"recordId": r["recordId"], "result": "Ok",
                        "data": base64.b64encode(up).decode(),
                        "metadata": {"partitionKeys": {"first": data[:1].decode()}}})
    assert event["deliveryStreamArn"].startswith("arn:aws:firehose:")
    return {"records": out}
'''


def test_lambda_processor(tarn, fh, s3, bucket):
    lam = lu.lambda_client(tarn)
    fname = unique("proc")
    arn = create_python(lam, fname, PROCESSOR)["FunctionArn"]
    name = unique("lam")
    create(fh, name, bucket, BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 1},
           Prefix="ok/!{partitionKeyFromLambda:first}/",
           ErrorOutputPrefix="bad/!{firehose:error-output-type}/",
           DynamicPartitioningConfiguration={"Enabled": True},
           ProcessingConfiguration={"Enabled": True, "Processors": [
               {"Type": "Lambda", "Parameters": [
                   {"ParameterName": "LambdaArn", "ParameterValue": arn}]}]},
           S3BackupMode="Enabled",
           S3BackupConfiguration={"RoleARN": "arn:aws:iam::000000000000:role/r",
                                  "BucketARN": "arn:aws:s3:::" + bucket, "Prefix": "source/"})
    fh.put_record_batch(DeliveryStreamName=name, Records=[
        {"Data": d} for d in (b"apple", b"drop", b"avocado", b"fail", b"banana")])
    got = wait_for(lambda: len(objects(s3, bucket)) >= 4 and objects(s3, bucket), timeout=90)
    # the source records, untransformed, in the backup (default time prefix after its own)
    backup = {k: v for k, v in got.items() if k.startswith("source/")}
    assert list(backup.values()) == [b"appledropavocadofailbanana"]
    assert re.fullmatch(r"source/\d{4}/\d\d/\d\d/\d\d/" + NAME_RE % (name, 1, ""),
                        next(iter(backup)))
    ok = {k.split("/")[1]: v for k, v in got.items() if k.startswith("ok/")}
    assert ok == {"a": b"APPLE\nAVOCADO\n", "b": b"BANANA\n"}
    bad = [v for k, v in got.items() if k.startswith("bad/processing-failed/")]
    assert len(bad) == 1
    e = json.loads(bad[0])
    assert e["rawData"] == "ZmFpbA==" and e["errorCode"] == "Lambda.ProcessingFailedStatus"
    assert e["lambdaArn"] == arn


def test_bad_input_changes_nothing(fh, bucket):
    name = unique("bad")
    for dest, word in [
        ({"BucketARN": "not-an-arn"}, "BucketARN"),
        ({"BucketARN": "arn:aws:s3:::" + bucket, "BufferingHints": {"SizeInMBs": 500,
                                                                  "IntervalInSeconds": 60}},
         "SizeInMBs"),
        ({"BucketARN": "arn:aws:s3:::" + bucket, "Prefix": "x/!{timestamp:yyyy}/"},
         "ErrorOutputPrefix"),
        ({"BucketARN": "arn:aws:s3:::" + bucket, "Prefix": "x/!{nope:1}/",
          "ErrorOutputPrefix": "e/"}, "namespace"),
        ({"BucketARN": "arn:aws:s3:::" + bucket, "DataFormatConversionConfiguration": {
            "Enabled": True}}, "InputFormatConfiguration must not be null"),
    ]:
        dest.setdefault("RoleARN", "arn:aws:iam::000000000000:role/r")
        with pytest.raises(ClientError) as ei:
            fh.create_delivery_stream(DeliveryStreamName=name,
                                      ExtendedS3DestinationConfiguration=dest)
        assert ei.value.response["Error"]["Code"] == "InvalidArgumentException"
        assert word in ei.value.response["Error"]["Message"]
    assert name not in fh.list_delivery_streams(Limit=100)["DeliveryStreamNames"]
    create(fh, name, bucket)
    with pytest.raises(ClientError) as ei:
        fh.put_record_batch(DeliveryStreamName=name,
                            Records=[{"Data": b"ok"}, {"Data": b"x" * 1024001}])
    assert ei.value.response["Error"]["Code"] == "InvalidArgumentException"


def test_full_buffer_pushes_back_and_loses_nothing(fh, s3, bucket_name):
    # the bucket does not exist yet: deliveries fail and records wait
    name = unique("full")
    create(fh, name, bucket_name, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 1})
    acked = []
    refused = None
    for b in range(8):
        recs = [b"%02d" % (b * 4 + j) + b"z" * 999998 for j in range(4)]
        try:
            fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in recs])
        except ClientError as e:
            refused = e.response
            break
        acked.extend(r[:2] for r in recs)
    assert refused is not None, "a buffer that cannot deliver took %d records" % len(acked)
    assert refused["Error"]["Code"] == "ServiceUnavailableException"
    assert refused["ResponseMetadata"]["HTTPStatusCode"] == 503
    s3.create_bucket(Bucket=bucket_name)

    def delivered():
        got = []
        for body in objects(s3, bucket_name).values():
            got.extend(body[i:i + 2] for i in range(0, len(body), 1000000))
        return sorted(got) == sorted(acked) and got

    wait_for(delivered, timeout=60, interval=0.5)
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"again"})


def test_kinesis_stream_as_source(tarn, fh, s3, bucket):
    kin = client(tarn, "kinesis")
    stream = unique("src")
    kin.create_stream(StreamName=stream, ShardCount=2)
    arn = kin.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    kin.put_record(StreamName=stream, Data=b"before\n", PartitionKey="p")
    name = unique("fromkin")
    fh.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn,
                                          "RoleARN": "arn:aws:iam::000000000000:role/r"},
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": "arn:aws:s3:::" + bucket,
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1}})
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert d["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == arn
    kin.put_records(StreamName=stream, Records=[
        {"Data": b"rec-%d\n" % i, "PartitionKey": "k%d" % i} for i in range(20)])

    def delivered():
        lines = []
        for body in objects(s3, bucket).values():
            lines.extend(body.splitlines())
        return len(lines) >= 20 and lines

    lines = wait_for(delivered, timeout=30)
    # from LATEST at creation, each record once
    assert sorted(lines) == sorted(b"rec-%d" % i for i in range(20))
    with pytest.raises(ClientError) as ei:
        fh.put_record(DeliveryStreamName=name, Record={"Data": b"x"})
    assert ei.value.response["Error"]["Code"] == "InvalidArgumentException"


# ---- an independent Snappy decoder (Debian has no python3-snappy) ----

def snappy_block(b):
    i = n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            break
    out = bytearray()
    while i < len(b):
        tag = b[i]
        i += 1
        kind = tag & 3
        if kind == 0:
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(b[i:i + nb], "little")
                i += nb
            ln += 1
            out += b[i:i + ln]
            i += ln
            continue
        if kind == 1:
            ln, off = ((tag >> 2) & 7) + 4, ((tag >> 5) << 8) | b[i]
            i += 1
        elif kind == 2:
            ln, off = (tag >> 2) + 1, int.from_bytes(b[i:i + 2], "little")
            i += 2
        else:
            ln, off = (tag >> 2) + 1, int.from_bytes(b[i:i + 4], "little")
            i += 4
        for _ in range(ln):
            out.append(out[-off])
    assert len(out) == n
    return bytes(out)


def snappy_framed(b):
    from tarnlib import crc32c
    assert b[:10] == b"\xff\x06\x00\x00sNaPpY"
    i, out = 10, b""
    while i < len(b):
        kind, ln = b[i], int.from_bytes(b[i + 1:i + 4], "little")
        chunk = b[i + 4:i + 4 + ln]
        i += 4 + ln
        data = snappy_block(chunk[4:]) if kind == 0 else chunk[4:]
        crc = crc32c(data)
        assert int.from_bytes(chunk[:4], "little") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
        out += data
    return out


def unzip_one(b):
    with zipfile.ZipFile(io.BytesIO(b)) as z:
        names = z.namelist()
        assert len(names) == 1
        return z.read(names[0])


def hadoop_snappy(b):
    i, out = 0, b""
    while i < len(b):
        raw, clen = int.from_bytes(b[i:i + 4], "big"), int.from_bytes(b[i + 4:i + 8], "big")
        block = snappy_block(b[i + 8:i + 8 + clen])
        assert len(block) == raw
        out += block
        i += 8 + clen
    return out


@pytest.mark.parametrize("fmt,ext,decode", [
    ("ZIP", ".zip", unzip_one),
    ("Snappy", ".snappy", snappy_framed),
    ("HADOOP_SNAPPY", ".snappy", hadoop_snappy),
])
def test_compression_formats(fh, s3, bucket, fmt, ext, decode):
    name = unique(fmt.lower().replace("_", "-"))
    create(fh, name, bucket, BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 1},
           CompressionFormat=fmt)
    data = [(b"line %d " % i) * 50 + b"\n" for i in range(400)]  # ~140 KiB: several blocks
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in data])
    got = wait_for(lambda: objects(s3, bucket), timeout=30)
    (key, body), = got.items()
    assert key.endswith(ext)
    assert decode(body) == b"".join(data)


def test_update_destination_takes_effect(fh, s3, bucket):
    name = unique("upd")
    create(fh, name, bucket, BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 1},
           Prefix="v1/")
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"one\n"})
    wait_for(lambda: objects(s3, bucket, "v1/"), timeout=30)
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                          DestinationId="destinationId-000000000001",
                          ExtendedS3DestinationUpdate={"Prefix": "v2/", "CompressionFormat": "GZIP"})
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"two\n"})
    got = wait_for(lambda: objects(s3, bucket, "v2/"), timeout=30)
    (key, body), = got.items()
    assert gzip.decompress(body) == b"two\n"
    assert re.fullmatch(r"v2/\d{4}/\d\d/\d\d/\d\d/" + NAME_RE % (name, 2, r"\.gz"), key), key
