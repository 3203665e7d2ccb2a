"""tests/e2e/test_firehose_parquet.py -- Firehose record format conversion
with boto3: a Glue table made with glue.create_table gives the columns,
JSON records put with put_record_batch come out as one Parquet object per
buffer (read back with DuckDB, values compared exactly: "000042" stays a
string, decimals keep their digits), records that do not convert land
under format-conversion-failed/ in Firehose's error record shape, a
missing table sends every record there, and bad configurations get
Firehose's errors while nothing is created.

No timing asserts: streams use a 1-second interval and the test waits,
bounded, for the objects to appear.
"""
import base64
import json
import re

import pytest
from botocore.exceptions import ClientError

from duckdb_util import duckdb
from queue_util import client, unique
from tarnlib import list_all_keys
from test_events import wait_for

ROLE = "arn:aws:iam::000000000000:role/firehose"
NAME_RE = r"%s-1-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f-]{36}%s"

COLUMNS = [
    {"Name": "id", "Type": "string"},
    {"Name": "qty", "Type": "int"},
    {"Name": "big", "Type": "bigint"},
    {"Name": "small", "Type": "smallint"},
    {"Name": "tiny", "Type": "tinyint"},
    {"Name": "price", "Type": "decimal(12,3)"},
    {"Name": "ratio", "Type": "double"},
    {"Name": "f", "Type": "float"},
    {"Name": "ok", "Type": "boolean"},
    {"Name": "day", "Type": "date"},
    {"Name": "ts", "Type": "timestamp"},
    {"Name": "tags", "Type": "array<string>"},
    {"Name": "attrs", "Type": "struct<color:string,size:int>"},
    {"Name": "amount", "Type": "decimal(30,5)"},
    {"Name": "lines", "Type": "array<struct<sku:string,n:int,opts:map<string,string>>>"},
]


@pytest.fixture(scope="module")
def fh(tarn):
    # the Debian botocore still holds IntervalInSeconds to its old minimum
    # of 60; Firehose takes 0 to 900 today
    return client(tarn, "firehose", parameter_validation=False)


@pytest.fixture(scope="module")
def glue(tarn):
    return client(tarn, "glue")


@pytest.fixture(scope="module")
def table(glue):
    db = unique("db").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": db})
    glue.create_table(DatabaseName=db, TableInput={
        "Name": "orders",
        "StorageDescriptor": {
            "Columns": COLUMNS,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary":
                          "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}},
    })
    return db, "orders"


def conversion(db, tbl, deserializer=None, serializer=None):
    return {
        "Enabled": True,
        "InputFormatConfiguration": {"Deserializer": deserializer or {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": serializer or {"ParquetSerDe": {}}},
        "SchemaConfiguration": {"DatabaseName": db, "TableName": tbl, "RoleARN": ROLE,
                                "Region": "us-east-1"},
    }


def create(fh, name, bucket, **dest):
    d = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::" + bucket,
         "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1}}
    d.update(dest)
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration=d)


def objects(s3, bucket, prefix=""):
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read()
            for k in list_all_keys(s3, bucket, Prefix=prefix)}


def error_lines(body):
    return [json.loads(line) for line in body.decode().splitlines()]


GOOD = [
    {"id": "000042", "qty": 7, "big": 9007199254740993, "small": -32768, "tiny": 127,
     "price": "12.345", "ratio": 0.1, "f": 1.5, "ok": True, "day": "2024-03-05",
     "ts": "2024-03-05T07:08:09.123456Z", "tags": ["a", "b"],
     "attrs": {"color": "red", "size": 3}, "ignored": "x",
     "amount": "1234567890123456789012345.67891",
     "lines": [{"sku": "000042", "n": 2, "opts": {"gift": "yes"}}, {"SKU": "x", "n": "3"}, None]},
    {"ID": "7", "Qty": "8", "price": 99999.5, "ok": "false", "ts": 1709622489,
     "day": "2024-2-29", "amount": -0.5, "tags": [], "lines": []},
    {"id": None, "ts": "2024-03-05 07:08:09.5", "price": -0.001},
]
BAD = [
    b'{"id": "broken", ',                    # not JSON
    b'{"id": "q", "qty": "many"}',            # not an int
    b'{"id": "t", "tiny": 128}',              # out of range for tinyint
    b'[{"id": "array"}]',                     # not an object
    b'{"id": "l", "lines": [{"n": "two"}]}',  # a nested part not an int
    b'{"id": "m", "tags": "a,b"}',            # not an array
]


def test_json_records_become_parquet_and_failures_go_to_the_error_prefix(
        tarn, fh, s3, bucket, table, tmp_path):
    name = unique("pq")
    db, tbl = table
    create(fh, name, bucket, Prefix="orders/", ErrorOutputPrefix="errors/",
           DataFormatConversionConfiguration=conversion(db, tbl))
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    got = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert got["DataFormatConversionConfiguration"]["SchemaConfiguration"]["TableName"] == tbl
    records = [json.dumps(r).encode() for r in GOOD] + BAD
    r = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": x} for x in records])
    assert r["FailedPutCount"] == 0

    data = wait_for(lambda: objects(s3, bucket, "orders/"), timeout=120)
    assert len(data) == 1
    key, body = next(iter(data.items()))
    assert re.fullmatch(r"orders/\d{4}/\d\d/\d\d/\d\d/" + NAME_RE % (name, r"\.parquet"), key), key
    assert body[:4] == b"PAR1" and body[-4:] == b"PAR1"
    (tmp_path / "out.parquet").write_bytes(body)
    rows = duckdb([
        "SELECT " + ", ".join("CAST(%s AS VARCHAR)" % c["Name"] for c in COLUMNS) +
        " FROM 'out.parquet' ORDER BY ts",
        "SELECT lines[1].sku, lines[1].opts['gift'], lines[2].n + 1, len(lines), len(tags) "
        "FROM 'out.parquet' ORDER BY ts",
        "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM 'out.parquet')",
    ], cwd=tmp_path)
    assert rows[0] == [
        ["7", "8", None, None, None, "99999.500", None, None, "false", "2024-02-29",
         "2024-03-05 07:08:09", "[]", None, "-0.50000", "[]"],
        ["000042", "7", "9007199254740993", "-32768", "127", "12.345", "0.1", "1.5", "true",
         "2024-03-05", "2024-03-05 07:08:09.123456", "[a, b]",
         "{'color': red, 'size': 3}", "1234567890123456789012345.67891",
         "[{'sku': 000042, 'n': 2, 'opts': {gift=yes}}, {'sku': x, 'n': 3, 'opts': NULL}, NULL]"],
        [None, None, None, None, None, "-0.001", None, None, None, None,
         "2024-03-05 07:08:09.5", None, None, None, None],
    ]
    # nested columns are Parquet LIST, MAP and STRUCT: DuckDB reaches into them
    assert rows[1] == [[None, None, None, "0", "0"],
                       ["000042", "yes", "4", "3", "2"],
                       [None, None, None, None, None]]
    assert dict(rows[2]) == {
        "id": "VARCHAR", "qty": "INTEGER", "big": "BIGINT", "small": "SMALLINT",
        "tiny": "TINYINT", "price": "DECIMAL(12,3)", "ratio": "DOUBLE", "f": "FLOAT",
        "ok": "BOOLEAN", "day": "DATE", "ts": "TIMESTAMP", "tags": "VARCHAR[]",
        "attrs": "STRUCT(color VARCHAR, size INTEGER)", "amount": "DECIMAL(30,5)",
        "lines": "STRUCT(sku VARCHAR, n INTEGER, opts MAP(VARCHAR, VARCHAR))[]"}
    # and tarn's SQL reads them back as JSON text that json_extract takes apart
    key_url = "s3://%s/%s" % (bucket, key)
    r = tarn.request("POST", "/_tarn/sql", headers={"Accept": "application/json"},
                     body=("SELECT json_extract(lines, '$[0].opts.gift') AS g, attrs, tags "
                           "FROM read_parquet('%s') WHERE id = '000042'" % key_url).encode())
    assert r.status_code == 200, r.text
    got = r.json()
    cells = got["rows"][0] if "rows" in got else got[0]
    assert cells == ['"yes"', '{"color":"red","size":3}', '["a","b"]']

    errs = wait_for(lambda: objects(s3, bucket, "errors/"), timeout=120)
    assert len(errs) == 1
    ekey, ebody = next(iter(errs.items()))
    assert re.fullmatch(r"errors/format-conversion-failed/\d{4}/\d\d/\d\d/\d\d/" +
                        NAME_RE % (name, ""), ekey), ekey
    lines = error_lines(ebody)
    assert sorted(base64.b64decode(x["rawData"]) for x in lines) == sorted(BAD)
    codes = {base64.b64decode(x["rawData"]): x["lastErrorCode"] for x in lines}
    assert codes[BAD[0]] == "DataFormatConversion.ParseError"
    assert codes[BAD[1]] == "DataFormatConversion.MalformedData"
    assert codes[BAD[2]] == "DataFormatConversion.MalformedData"
    assert codes[BAD[3]] == "DataFormatConversion.MalformedData"
    assert codes[BAD[4]] == "DataFormatConversion.MalformedData"
    assert "lines[].n" in [x["lastErrorMessage"] for x in lines
                           if base64.b64decode(x["rawData"]) == BAD[4]][0]
    assert codes[BAD[5]] == "DataFormatConversion.MalformedData"
    for x in lines:
        assert x["attemptsMade"] >= 1 and x["lastErrorMessage"]
        assert x["arrivalTimestamp"] <= x["attemptEndingTimestamp"]
        assert x["dataCatalogTable"]["databaseName"] == db
        assert x["dataCatalogTable"]["tableName"] == tbl


def test_hive_serde_timestamp_formats_and_gzip(fh, s3, bucket, table, tmp_path):
    name = unique("hive")
    db, tbl = table
    create(fh, name, bucket, Prefix="h/", ErrorOutputPrefix="herr/",
           DataFormatConversionConfiguration=conversion(
               db, tbl, {"HiveJsonSerDe": {"TimestampFormats": ["dd/MM/yyyy HH:mm:ss", "millis"]}},
               {"ParquetSerDe": {"Compression": "GZIP", "EnableDictionaryCompression": False}}))
    fh.put_record_batch(DeliveryStreamName=name, Records=[
        {"Data": b'{"id": "a", "ts": "05/03/2024 07:08:09"}'},
        {"Data": b'{"id": "b", "ts": 1709622489123}{"id": "c", "ts": "2024-03-05 07:08:10"}'},
    ])
    data = wait_for(lambda: objects(s3, bucket, "h/"), timeout=120)
    key, body = next(iter(data.items()))
    assert key.endswith(".parquet")
    (tmp_path / "h.parquet").write_bytes(body)
    rows = duckdb(["SELECT id, CAST(ts AS VARCHAR) FROM 'h.parquet' ORDER BY id",
                   "SELECT DISTINCT compression FROM parquet_metadata('h.parquet') "
                   "WHERE path_in_schema = 'id'"], cwd=tmp_path)
    assert rows[0] == [["a", "2024-03-05 07:08:09"], ["b", "2024-03-05 07:08:09.123"],
                       ["c", "2024-03-05 07:08:10"]]
    assert rows[1] == [["GZIP"]]
    assert objects(s3, bucket, "herr/") == {}


def test_missing_table_sends_the_records_to_the_error_output(fh, s3, bucket, table):
    name = unique("notab")
    db, _ = table
    create(fh, name, bucket, Prefix="m/", ErrorOutputPrefix="merr/",
           DataFormatConversionConfiguration=conversion(db, "no_such_table"))
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"id": "kept"}'})
    errs = wait_for(lambda: objects(s3, bucket, "merr/"), timeout=120)
    (ekey, ebody), = errs.items()
    assert ekey.startswith("merr/format-conversion-failed/")
    (line,) = error_lines(ebody)
    assert base64.b64decode(line["rawData"]) == b'{"id": "kept"}'
    assert line["lastErrorCode"] == "DataFormatConversion.EntityNotFound"
    assert objects(s3, bucket, "m/") == {}


def test_bad_configurations_are_refused_and_nothing_is_created(fh, bucket, table):
    db, tbl = table
    cases = [
        ({"CompressionFormat": "GZIP"}, "InvalidArgumentException",
         "compression format must be set to UNCOMPRESSED"),
        ({"BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}},
         "InvalidArgumentException",
         "BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled."),
        ({"DataFormatConversionConfiguration": conversion(
            db, tbl, serializer={"OrcSerDe": {}})}, "InvalidArgumentException",
         "OrcSerDe is not supported"),
        ({"DataFormatConversionConfiguration": {
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}}}},
         "InvalidArgumentException", "OutputFormatConfiguration must not be null"),
        ({"DataFormatConversionConfiguration": conversion(
            db, tbl, serializer={"ParquetSerDe": {"BlockSizeBytes": 1024}})},
         "ValidationException",
         "Value at 'extendedS3DestinationConfiguration.dataFormatConversionConfiguration."
         "outputFormatConfiguration.serializer.parquetSerDe.blockSizeBytes' failed to satisfy "
         "constraint: Member must have value greater than or equal to 67108864"),
    ]
    for extra, code, text in cases:
        name = unique("bad")
        dest = {"DataFormatConversionConfiguration": conversion(db, tbl)}
        dest.update(extra)
        with pytest.raises(ClientError) as ei:
            create(fh, name, bucket, **dest)
        assert ei.value.response["Error"]["Code"] == code, extra
        assert text in ei.value.response["Error"]["Message"], ei.value.response["Error"]
        assert name not in fh.list_delivery_streams(Limit=100)["DeliveryStreamNames"]

    # defaults of a converting stream: 128 MiB buffers
    name = unique("dflt")
    fh.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::" + bucket,
            "DataFormatConversionConfiguration": conversion(db, tbl)})
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    hints = d["Destinations"][0]["ExtendedS3DestinationDescription"]["BufferingHints"]
    assert hints == {"SizeInMBs": 128, "IntervalInSeconds": 300}


def test_acknowledged_records_are_in_the_parquet_after_kill9(tarn_factory, tmp_path):
    from test_firehose_crash import put_until_killed
    srv = tarn_factory()
    s3 = srv.client()
    fh = client(srv, "firehose", connect_timeout=2, read_timeout=10, parameter_validation=False)
    glue = client(srv, "glue")
    glue.create_database(DatabaseInput={"Name": "crash"})
    glue.create_table(DatabaseName="crash", TableInput={
        "Name": "t", "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "string"},
                                                       {"Name": "pad", "Type": "string"}]}})
    bucket = unique("pqcrash").lower()
    s3.create_bucket(Bucket=bucket)
    name = unique("hose")
    create(fh, name, bucket, Prefix="p/", ErrorOutputPrefix="e/",
           DataFormatConversionConfiguration=conversion("crash", "t"))

    def put(k, i):
        ids = ["r-%d-%d-%d" % (k, i, j) for j in range(10)]
        recs = [json.dumps({"id": x, "pad": "x" * 500}).encode() for x in ids]
        r = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in recs])
        assert r["FailedPutCount"] == 0
        return set(ids)

    acked = put_until_killed(srv, put)
    srv.start()
    s3 = srv.client()

    def delivered():
        keys = list_all_keys(s3, bucket, Prefix="p/")
        for n, key in enumerate(keys):
            path = tmp_path / ("%d.parquet" % n)
            if not path.exists():
                path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if not keys:
            return False
        seen = {row[0] for row in duckdb(["SELECT id FROM '*.parquet'"], cwd=tmp_path)[0]}
        return acked <= seen and seen

    seen = wait_for(delivered, timeout=120, interval=1)
    assert acked <= seen
    assert list_all_keys(s3, bucket, Prefix="e/") == []


def test_update_destination_checks_the_merged_configuration(fh, bucket, table):
    db, tbl = table
    name = unique("upd")
    fh.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::" + bucket,
            "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}})
    with pytest.raises(ClientError) as ei:
        fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                              DestinationId="destinationId-000000000001",
                              ExtendedS3DestinationUpdate={
                                  "DataFormatConversionConfiguration": conversion(db, tbl)})
    assert ei.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert "SizeInMBs must be at least 64" in ei.value.response["Error"]["Message"]
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["VersionId"] == "1"
    assert "DataFormatConversionConfiguration" not in \
        d["Destinations"][0]["ExtendedS3DestinationDescription"]
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                          DestinationId="destinationId-000000000001",
                          ExtendedS3DestinationUpdate={
                              "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
                              "DataFormatConversionConfiguration": conversion(db, tbl)})
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["VersionId"] == "2"
    got = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert got["DataFormatConversionConfiguration"]["SchemaConfiguration"]["DatabaseName"] == db


def test_parquet_serde_settings_apply(fh, s3, bucket, table, tmp_path):
    # WriterVersion V2 (DATA_PAGE_V2 pages), EnableDictionaryCompression
    # false and a 64 KiB PageSizeBytes: DuckDB reads every value back, and
    # no column chunk has a dictionary page
    name = unique("v2")
    db, tbl = table
    create(fh, name, bucket, Prefix="v2/", ErrorOutputPrefix="v2err/",
           DataFormatConversionConfiguration=conversion(
               db, tbl, None, {"ParquetSerDe": {"WriterVersion": "V2",
                                                "EnableDictionaryCompression": False,
                                                "PageSizeBytes": 65536}}))
    sent = []
    for b in range(4):
        recs = [{"id": "%06d" % (b * 500 + i), "qty": i % 3, "tags": ["t%d" % (i % 4)] * (i % 3),
                 "lines": [{"sku": "s" * 100, "n": i}]} for i in range(500)]
        sent += recs
        r = fh.put_record_batch(DeliveryStreamName=name,
                                Records=[{"Data": json.dumps(x).encode()} for x in recs])
        assert r["FailedPutCount"] == 0
    data = wait_for(lambda: objects(s3, bucket, "v2/"), timeout=120)
    body = b"".join(data[k] for k in sorted(data))
    assert len(data) == 1, sorted(data)
    (tmp_path / "v2.parquet").write_bytes(body)
    rows = duckdb([
        "SELECT id, qty, len(tags), lines[1].n, length(lines[1].sku) FROM 'v2.parquet' ORDER BY id",
        "SELECT count(*) FROM parquet_metadata('v2.parquet') "
        "WHERE dictionary_page_offset IS NOT NULL",
    ], cwd=tmp_path)
    assert rows[0] == [[x["id"], str(x["qty"]), str(len(x["tags"])),
                        str(x["lines"][0]["n"]), "100"] for x in sent]
    assert rows[1] == [["0"]]
    assert objects(s3, bucket, "v2err/") == {}
