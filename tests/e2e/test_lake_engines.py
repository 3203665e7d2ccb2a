"""tests/e2e/test_lake_engines.py -- tarn as the lake of Trino and Spark,
tested through the contract those engines depend on (they do not run on this
machine): the Glue Data Catalog calls their metastore clients make, replayed
with boto3 in their order and with their parameters, and a Parquet reader
that is not tarn's reading what tarn writes, over tarn's S3, as an engine's
reader does.

Replayed clients (their request shapes, not their code):
  - Trino's Hive connector with hive.metastore=glue: GetDatabases, GetDatabase,
    CreateDatabase, GetTables, GetTable, CreateTable (EXTERNAL_TABLE, Parquet
    SerDe), BatchCreatePartition in batches of 100, GetPartitions split in
    segments (hive.metastore.glue.partitions-segments) with an Expression and
    MaxResults paging, BatchGetPartition, UpdateTable (ALTER TABLE ADD COLUMN,
    ANALYZE's basic statistics), BatchUpdatePartition, Get/Update/Delete
    ColumnStatisticsFor{Table,Partition} in chunks of 100 / 25.
  - Iceberg's GlueCatalog (Trino's iceberg.catalog.type=glue, Spark's
    SparkCatalog with catalog-impl GlueCatalog): table_type=ICEBERG and
    metadata_location parameters, commits by UpdateTable at the VersionId read
    (ConcurrentModificationException for a stale one).
  - The AWS Glue Data Catalog client for the Hive metastore (Spark on EMR):
    the "default" database, GetUserDefinedFunctions at start, Spark's
    data-source table parameters (the schema split in parts), the Hive
    client's partition expressions.
  - User-defined functions: Trino's SQL routines (trino__NAME__SIGNATURE,
    listed by Pattern) and Spark's CREATE FUNCTION ... USING JAR.
The reader: hyparquet (tests/e2e/lake/read.mjs, node) fetches the footer by
suffix ranges (bytes=-8, then the footer) and the column chunks by ranges, of
Parquet written two ways: by tarn's SQL (CREATE TABLE AS, partitioned) and by
Firehose's record format conversion (nested columns typed by the Glue table).
Statistics and table versions are also checked across kill -9.
"""
import base64
import datetime
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

import tarnlib

LAKE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lake")
JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")

PARQUET_IN = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

COLUMNS = [
    {"Name": "order_id", "Type": "bigint"},
    {"Name": "code", "Type": "varchar(12)", "Comment": "kept as text: 000042"},
    {"Name": "amount", "Type": "decimal(10,2)"},
    {"Name": "placed", "Type": "timestamp"},
    {"Name": "lines", "Type": "array<struct<sku:string,qty:int,price:decimal(10,2)>>"},
    {"Name": "attrs", "Type": "map<string,int>"},
    {"Name": "note", "Type": "string", "Parameters": {"comment.lang": "pl"}},
]


@pytest.fixture(scope="module")
def glue(tarn):
    return tarn.service_client("glue")


@pytest.fixture(scope="module")
def glue_raw(tarn):
    """A client that sends what boto3 itself would refuse to."""
    return tarn.service_client("glue", parameter_validation=False)


def code_of(call, *args, **kw):
    with pytest.raises(ClientError) as ex:
        call(*args, **kw)
    return ex.value.response["Error"]["Code"]


def storage(location, columns=COLUMNS):
    """A StorageDescriptor as Trino's GlueInputConverter writes one for Parquet."""
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": PARQUET_IN,
        "OutputFormat": PARQUET_OUT,
        "Compressed": False,
        "NumberOfBuckets": 0,
        "SerdeInfo": {"Name": "orders", "SerializationLibrary": PARQUET_SERDE,
                      "Parameters": {"serialization.format": "1"}},
        "BucketColumns": [],
        "SortColumns": [],
        "Parameters": {},
        "StoredAsSubDirectories": False,
    }


def table_input(name, location, columns=COLUMNS, params=None):
    return {
        "Name": name,
        "Owner": "trino",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": params if params is not None else {
            "EXTERNAL": "TRUE", "trino_version": "450", "trino_query_id": "20240101_000000_1"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}, {"Name": "region", "Type": "string"}],
        "StorageDescriptor": storage(location, columns),
    }


def assert_kept(doc, given):
    """Every member given comes back exactly as given."""
    for k, v in given.items():
        if isinstance(v, dict) and k != "Parameters":
            assert_kept(doc[k], v)
        else:
            assert doc.get(k) == v, "%s: %r != %r" % (k, doc.get(k), v)


def all_pages(call, member, **kw):
    out = []
    token = None
    while True:
        page = call(**kw, **({"NextToken": token} if token else {}))
        out += page[member]
        token = page.get("NextToken")
        if not token:
            return out


def partition_input(location, dt, region, rows):
    return {
        "Values": [dt, region],
        "StorageDescriptor": storage("%sdt=%s/region=%s" % (location, dt, region)),
        "Parameters": {"numRows": str(rows), "totalSize": str(rows * 100), "numFiles": "1"},
    }


# ---- Trino's Hive connector ------------------------------------------------

def test_trino_schema_and_partitioned_parquet_table(glue):
    # the schema: CREATE SCHEMA hive.sales WITH (location = ...)
    assert code_of(glue.get_database, Name="sales") == "EntityNotFoundException"
    glue.create_database(DatabaseInput={
        "Name": "sales", "LocationUri": "s3://lake/warehouse/sales.db",
        "Parameters": {"trino_query_id": "q1"}})
    names = [d["Name"] for d in all_pages(glue.get_databases, "DatabaseList")]
    assert "sales" in names and "default" in names
    db = glue.get_database(Name="sales")["Database"]
    assert db["LocationUri"] == "s3://lake/warehouse/sales.db"
    assert db["Parameters"] == {"trino_query_id": "q1"}

    # the table: CREATE TABLE ... WITH (format='PARQUET', partitioned_by=...)
    assert code_of(glue.get_table, DatabaseName="sales", Name="orders") == \
        "EntityNotFoundException"
    given = table_input("orders", "s3://lake/warehouse/sales.db/orders")
    glue.create_table(DatabaseName="sales", TableInput=given)
    assert code_of(glue.create_table, DatabaseName="sales", TableInput=given) == \
        "AlreadyExistsException"
    t = glue.get_table(DatabaseName="sales", Name="orders")["Table"]
    assert_kept(t, given)
    assert t["DatabaseName"] == "sales" and t["StorageDescriptor"]["Columns"] == COLUMNS
    assert t["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert isinstance(t["CreateTime"], datetime.datetime)

    # SHOW TABLES pages through GetTables
    for i in range(5):
        glue.create_table(DatabaseName="sales",
                          TableInput=table_input("more_%d" % i, "s3://lake/m%d/" % i))
    listed = all_pages(glue.get_tables, "TableList", DatabaseName="sales", MaxResults=2)
    assert sorted(x["Name"] for x in listed) == ["more_%d" % i for i in range(5)] + ["orders"]
    assert [x["Name"] for x in glue.get_tables(DatabaseName="sales",
                                               Expression="more_[13]")["TableList"]] == \
        ["more_1", "more_3"]
    for i in range(5):
        glue.delete_table(DatabaseName="sales", Name="more_%d" % i)
    assert code_of(glue.get_tables, DatabaseName="nosuch") == "EntityNotFoundException"


def test_trino_partitions_added_in_batches_and_listed_in_segments(glue, glue_raw):
    loc = "s3://lake/warehouse/sales.db/parts/"
    glue.create_database(DatabaseInput={"Name": "segs"})
    glue.create_table(DatabaseName="segs", TableInput=table_input("t", loc))
    days = ["2024-%02d-%02d" % (1 + i // 28, 1 + i % 28) for i in range(84)]
    want = [[d, r] for d in days for r in ("eu", "us", "żółw")]     # 252 partitions
    inputs = [partition_input(loc, d, r, n) for n, (d, r) in enumerate(want)]
    for i in range(0, len(inputs), 100):                            # Trino's batch size
        assert glue.batch_create_partition(DatabaseName="segs", TableName="t",
                                           PartitionInputList=inputs[i:i + 100])["Errors"] == []
    again = glue.batch_create_partition(DatabaseName="segs", TableName="t",
                                        PartitionInputList=inputs[:2])["Errors"]
    assert [e["ErrorDetail"]["ErrorCode"] for e in again] == ["AlreadyExistsException"] * 2

    # hive.metastore.glue.partitions-segments=4: four listings in parallel, each paged
    segments = []
    for s in range(4):
        segments.append(all_pages(glue.get_partitions, "Partitions", DatabaseName="segs",
                                  TableName="t", MaxResults=37,
                                  Segment={"SegmentNumber": s, "TotalSegments": 4}))
    got = [p["Values"] for seg in segments for p in seg]
    assert sorted(got) == sorted(want) and len(got) == len(want)    # the union, no duplicates
    assert all(len(seg) > 20 for seg in segments)                   # spread over all four
    one = segments[0][0]
    n = want.index(one["Values"])
    assert_kept(one, inputs[n])
    assert one["DatabaseName"] == "segs" and one["TableName"] == "t"
    # the same split again gives the same segments (a stable assignment)
    again = all_pages(glue.get_partitions, "Partitions", DatabaseName="segs", TableName="t",
                      Segment={"SegmentNumber": 0, "TotalSegments": 4})
    assert [p["Values"] for p in again] == [p["Values"] for p in segments[0]]

    # a predicate pushed down as Trino's GlueExpressionUtil writes it, with segments
    expr = "((dt >= '2024-01-10' AND dt <= '2024-01-20')) AND ((region in ('eu', 'żółw')))"
    got = [p["Values"] for s in range(3) for p in all_pages(
        glue.get_partitions, "Partitions", DatabaseName="segs", TableName="t", Expression=expr,
        Segment={"SegmentNumber": s, "TotalSegments": 3}, ExcludeColumnSchema=True)]
    assert sorted(got) == sorted([d, r] for d in days[9:20] for r in ("eu", "żółw"))
    p = glue.get_partitions(DatabaseName="segs", TableName="t", Expression=expr,
                            ExcludeColumnSchema=True)["Partitions"][0]
    assert "Columns" not in p["StorageDescriptor"]
    # the Hive client's expressions (Spark on EMR): lower-case operators, NOT IN
    for expr, n in (("((dt = '2024-01-10') and (region = 'eu'))", 1),
                    ("((dt = '2024-01-10') and region NOT IN ('us', 'żółw'))", 1),
                    ("(dt between '2024-01-01' and '2024-01-03')", 9),
                    ("((dt like '2024-02-%') or (dt = '2024-03-01'))", (28 + 1) * 3)):
        got = all_pages(glue.get_partitions, "Partitions", DatabaseName="segs", TableName="t",
                        Expression=expr)
        assert len(got) == n, expr

    # bad segments: Glue's InvalidInputException, nothing listed
    for seg in ({"SegmentNumber": 4, "TotalSegments": 4},
                {"SegmentNumber": 0, "TotalSegments": 11},
                {"SegmentNumber": 0, "TotalSegments": 0}):
        assert code_of(glue_raw.get_partitions, DatabaseName="segs", TableName="t",
                       Segment=seg) == "InvalidInputException"
    assert code_of(glue.get_partitions, DatabaseName="segs", TableName="t",
                   Segment={"SegmentNumber": 0, "TotalSegments": 2},
                   NextToken="zz") == "InvalidInputException"

    # getPartitionsByNames: BatchGetPartition; a missing one is left out
    asked = [{"Values": v} for v in want[:5]] + [{"Values": ["1999-01-01", "eu"]}]
    r = glue.batch_get_partition(DatabaseName="segs", TableName="t", PartitionsToGet=asked)
    assert sorted(p["Values"] for p in r["Partitions"]) == sorted(want[:5])
    assert r["UnprocessedKeys"] == []
    assert glue.get_partition(DatabaseName="segs", TableName="t",
                              PartitionValues=want[7])["Partition"]["Values"] == want[7]


def stats(name, ctype, kind, data):
    return {"ColumnName": name, "ColumnType": ctype,
            "AnalyzedTime": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc),
            "StatisticsData": {"Type": kind, kind.capitalize() + "ColumnStatisticsData": data}}


def unscaled(n):
    return n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True)


def test_trino_schema_evolution_and_statistics(glue):
    loc = "s3://lake/warehouse/evo/"
    glue.create_database(DatabaseInput={"Name": "evo"})
    glue.create_table(DatabaseName="evo", TableInput=table_input("t", loc))
    glue.batch_create_partition(DatabaseName="evo", TableName="t", PartitionInputList=[
        partition_input(loc, "2024-01-01", "eu", 10), partition_input(loc, "2024-01-02", "eu", 20)])

    # ALTER TABLE ADD COLUMN: GetTable, then UpdateTable with the whole input
    t = glue.get_table(DatabaseName="evo", Name="t")["Table"]
    added = COLUMNS + [{"Name": "discount", "Type": "decimal(5,4)"}]
    evolved = table_input("t", loc, columns=added)
    glue.update_table(DatabaseName="evo", TableInput=evolved, SkipArchive=True)
    t2 = glue.get_table(DatabaseName="evo", Name="t")["Table"]
    assert t2["StorageDescriptor"]["Columns"] == added
    assert t2["CreateTime"] == t["CreateTime"] and t2["VersionId"] != t["VersionId"]
    # partitions keep the columns they were written with
    p = glue.get_partition(DatabaseName="evo", TableName="t",
                           PartitionValues=["2024-01-01", "eu"])["Partition"]
    assert p["StorageDescriptor"]["Columns"] == COLUMNS

    # ANALYZE: basic statistics in the parameters, column statistics in chunks
    params = dict(evolved["Parameters"], numRows="30", numFiles="2", totalSize="3000")
    glue.update_table(DatabaseName="evo", TableInput=table_input("t", loc, added, params))
    table_stats = [
        stats("order_id", "bigint", "LONG", {"MinimumValue": -5, "MaximumValue": 2 ** 62,
                                             "NumberOfNulls": 0, "NumberOfDistinctValues": 30}),
        stats("amount", "decimal(10,2)", "DECIMAL", {
            "MinimumValue": {"UnscaledValue": unscaled(-12345), "Scale": 2},
            "MaximumValue": {"UnscaledValue": unscaled(9999999999), "Scale": 2},
            "NumberOfNulls": 3, "NumberOfDistinctValues": 25}),
        stats("note", "string", "STRING", {"MaximumLength": 40, "AverageLength": 12.5,
                                           "NumberOfNulls": 1, "NumberOfDistinctValues": 20}),
        stats("placed", "timestamp", "DOUBLE", {"MinimumValue": -1.5, "MaximumValue": 1e300,
                                                "NumberOfNulls": 0,
                                                "NumberOfDistinctValues": 30}),
        stats("dt", "string", "STRING", {"MaximumLength": 10, "AverageLength": 10.0,
                                         "NumberOfNulls": 0, "NumberOfDistinctValues": 2}),
        stats("nosuch", "string", "STRING", {"MaximumLength": 1, "AverageLength": 1.0,
                                             "NumberOfNulls": 0, "NumberOfDistinctValues": 1}),
    ]
    r = glue.update_column_statistics_for_table(DatabaseName="evo", TableName="t",
                                                ColumnStatisticsList=table_stats)
    assert [(e["ColumnStatistics"]["ColumnName"], e["Error"]["ErrorCode"])
            for e in r["Errors"]] == [("nosuch", "EntityNotFoundException")]
    names = [c["Name"] for c in added] + ["dt", "region"]
    r = glue.get_column_statistics_for_table(DatabaseName="evo", TableName="t",
                                             ColumnNames=names)
    got = {s["ColumnName"]: s for s in r["ColumnStatisticsList"]}
    assert sorted(got) == ["amount", "dt", "note", "order_id", "placed"]
    for want in table_stats[:5]:
        assert got[want["ColumnName"]] == want
    dec = got["amount"]["StatisticsData"]["DecimalColumnStatisticsData"]
    assert int.from_bytes(dec["MinimumValue"]["UnscaledValue"], "big", signed=True) == -12345
    assert sorted(e["ColumnName"] for e in r["Errors"]) == sorted(
        set(names) - set(got))
    assert {e["Error"]["ErrorCode"] for e in r["Errors"]} == {"EntityNotFoundException"}

    # bad statistics: the whole call fails and writes nothing
    bad = stats("code", "varchar(12)", "STRING", {"MaximumLength": 3, "AverageLength": 1.0,
                                                  "NumberOfNulls": 0,
                                                  "NumberOfDistinctValues": 1})
    wrong = dict(bad, StatisticsData={"Type": "LONG", "StringColumnStatisticsData":
                                      bad["StatisticsData"]["StringColumnStatisticsData"]})
    assert code_of(glue.update_column_statistics_for_table, DatabaseName="evo", TableName="t",
                   ColumnStatisticsList=[bad, wrong]) == "InvalidInputException"
    assert code_of(glue.update_column_statistics_for_table, DatabaseName="evo", TableName="t",
                   ColumnStatisticsList=[bad] * 26) == "InvalidInputException"
    assert code_of(glue.get_column_statistics_for_table, DatabaseName="evo", TableName="t",
                   ColumnNames=["x%d" % i for i in range(101)]) == "InvalidInputException"
    r = glue.get_column_statistics_for_table(DatabaseName="evo", TableName="t",
                                             ColumnNames=["code"])
    assert r["ColumnStatisticsList"] == [] and len(r["Errors"]) == 1

    # statistics Trino drops: DeleteColumnStatisticsForTable
    glue.delete_column_statistics_for_table(DatabaseName="evo", TableName="t",
                                            ColumnName="placed")
    assert code_of(glue.delete_column_statistics_for_table, DatabaseName="evo",
                   TableName="t", ColumnName="placed") == "EntityNotFoundException"

    # a partition's: BatchUpdatePartition (basic) and its column statistics
    p1, p2 = ["2024-01-01", "eu"], ["2024-01-02", "eu"]
    upd = [{"PartitionValueList": v,
            "PartitionInput": dict(partition_input(loc, v[0], v[1], 0),
                                   Parameters={"numRows": n, "COLUMN_STATS_ACCURATE": "true"})}
           for v, n in ((p1, "11"), (p2, "22"))]
    upd.append({"PartitionValueList": ["1999-01-01", "eu"], "PartitionInput": upd[0]["PartitionInput"]})
    r = glue.batch_update_partition(DatabaseName="evo", TableName="t", Entries=upd)
    assert [(e["PartitionValueList"], e["ErrorDetail"]["ErrorCode"]) for e in r["Errors"]] == [
        (["1999-01-01", "eu"], "EntityNotFoundException")]
    assert glue.get_partition(DatabaseName="evo", TableName="t",
                              PartitionValues=p2)["Partition"]["Parameters"]["numRows"] == "22"
    assert code_of(glue.batch_update_partition, DatabaseName="evo", TableName="t",
                   Entries=upd * 34) in ("InvalidInputException", "ValidationException")
    part_stats = [stats("order_id", "bigint", "LONG", {"MinimumValue": 1, "MaximumValue": 11,
                                                       "NumberOfNulls": 0,
                                                       "NumberOfDistinctValues": 11}),
                  stats("placed", "timestamp", "DATE", {
                      "MinimumValue": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
                      "MaximumValue": datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc),
                      "NumberOfNulls": 0, "NumberOfDistinctValues": 2}),
                  stats("ok", "boolean", "BOOLEAN", {"NumberOfTrues": 1, "NumberOfFalses": 2,
                                                     "NumberOfNulls": 0})]
    r = glue.update_column_statistics_for_partition(DatabaseName="evo", TableName="t",
                                                    PartitionValues=p1,
                                                    ColumnStatisticsList=part_stats)
    assert [e["ColumnStatistics"]["ColumnName"] for e in r["Errors"]] == ["ok"]
    r = glue.get_column_statistics_for_partition(DatabaseName="evo", TableName="t",
                                                 PartitionValues=p1,
                                                 ColumnNames=["order_id", "placed", "note"])
    assert r["ColumnStatisticsList"] == part_stats[:2]
    assert [e["ColumnName"] for e in r["Errors"]] == ["note"]
    r = glue.get_column_statistics_for_partition(DatabaseName="evo", TableName="t",
                                                 PartitionValues=p2, ColumnNames=["order_id"])
    assert r["ColumnStatisticsList"] == []
    assert code_of(glue.get_column_statistics_for_partition, DatabaseName="evo", TableName="t",
                   PartitionValues=["2030-01-01", "eu"],
                   ColumnNames=["order_id"]) == "EntityNotFoundException"
    # statistics go with their partition, and with their table
    glue.delete_partition(DatabaseName="evo", TableName="t", PartitionValues=p1)
    glue.create_partition(DatabaseName="evo", TableName="t",
                          PartitionInput=partition_input(loc, p1[0], p1[1], 1))
    assert glue.get_column_statistics_for_partition(
        DatabaseName="evo", TableName="t", PartitionValues=p1,
        ColumnNames=["order_id"])["ColumnStatisticsList"] == []
    glue.delete_table(DatabaseName="evo", Name="t")
    assert code_of(glue.get_column_statistics_for_table, DatabaseName="evo", TableName="t",
                   ColumnNames=["order_id"]) == "EntityNotFoundException"
    glue.create_table(DatabaseName="evo", TableInput=table_input("t", loc))
    assert glue.get_column_statistics_for_table(
        DatabaseName="evo", TableName="t", ColumnNames=["order_id"])["ColumnStatisticsList"] == []


def test_statistics_and_versions_survive_kill9(tarn_factory):
    srv = tarn_factory()
    glue = srv.service_client("glue")
    loc = "s3://lake/crash/"
    glue.create_database(DatabaseInput={"Name": "crash"})
    glue.create_table(DatabaseName="crash", TableInput=table_input("t", loc))
    glue.batch_create_partition(DatabaseName="crash", TableName="t", PartitionInputList=[
        partition_input(loc, "2024-01-01", "eu", 1)])
    long_stats = stats("order_id", "bigint", "LONG", {"MinimumValue": 1, "MaximumValue": 9,
                                                      "NumberOfNulls": 0,
                                                      "NumberOfDistinctValues": 9})
    glue.update_column_statistics_for_table(DatabaseName="crash", TableName="t",
                                            ColumnStatisticsList=[long_stats])
    glue.update_column_statistics_for_partition(DatabaseName="crash", TableName="t",
                                                PartitionValues=["2024-01-01", "eu"],
                                                ColumnStatisticsList=[long_stats])
    version = glue.get_table(DatabaseName="crash", Name="t")["Table"]["VersionId"]
    glue.update_table(DatabaseName="crash", TableInput=table_input("t", loc), VersionId=version)
    srv.kill9()
    srv.start()
    glue = srv.service_client("glue")
    assert glue.get_column_statistics_for_table(
        DatabaseName="crash", TableName="t",
        ColumnNames=["order_id"])["ColumnStatisticsList"] == [long_stats]
    assert glue.get_column_statistics_for_partition(
        DatabaseName="crash", TableName="t", PartitionValues=["2024-01-01", "eu"],
        ColumnNames=["order_id"])["ColumnStatisticsList"] == [long_stats]
    assert code_of(glue.update_table, DatabaseName="crash", TableInput=table_input("t", loc),
                   VersionId=version) == "ConcurrentModificationException"


# ---- Iceberg's GlueCatalog ---------------------------------------------------

def iceberg_input(name, metadata, previous=None, columns=None):
    params = {"table_type": "ICEBERG", "metadata_location": metadata}
    if previous:
        params["previous_metadata_location"] = previous
    cols = columns or [
        {"Name": "id", "Type": "bigint",
         "Parameters": {"iceberg.field.id": "1", "iceberg.field.optional": "false",
                        "iceberg.field.current": "true"}},
        {"Name": "amount", "Type": "decimal(10,2)",
         "Parameters": {"iceberg.field.id": "2", "iceberg.field.optional": "true",
                        "iceberg.field.current": "true"}}]
    return {"Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": params,
            "StorageDescriptor": {"Location": "s3://lake/ice/%s" % name, "Columns": cols}}


def test_iceberg_commits_by_version(glue):
    glue.create_database(DatabaseInput={"Name": "ice", "LocationUri": "s3://lake/ice"})
    m0 = "s3://lake/ice/events/metadata/00000-6f1c.metadata.json"
    glue.create_table(DatabaseName="ice", TableInput=iceberg_input("events", m0))
    t = glue.get_table(DatabaseName="ice", Name="events")["Table"]
    assert t["Parameters"] == {"table_type": "ICEBERG", "metadata_location": m0}
    assert t["StorageDescriptor"]["Columns"][0]["Parameters"]["iceberg.field.id"] == "1"

    # a commit: read the table, check metadata_location, update at its version
    m1 = "s3://lake/ice/events/metadata/00001-a2b3.metadata.json"
    v0 = t["VersionId"]
    glue.update_table(DatabaseName="ice", TableInput=iceberg_input("events", m1, m0),
                      VersionId=v0, SkipArchive=True)
    # a second writer that read the same version loses: nothing changes
    m1b = "s3://lake/ice/events/metadata/00001-ffff.metadata.json"
    assert code_of(glue.update_table, DatabaseName="ice",
                   TableInput=iceberg_input("events", m1b, m0),
                   VersionId=v0) == "ConcurrentModificationException"
    t = glue.get_table(DatabaseName="ice", Name="events")["Table"]
    assert t["Parameters"]["metadata_location"] == m1
    assert t["Parameters"]["previous_metadata_location"] == m0
    glue.update_table(DatabaseName="ice", TableInput=iceberg_input(
        "events", m1b.replace("00001", "00002"), m1), VersionId=t["VersionId"])
    # a table Iceberg lists (listTables filters on table_type)
    tables = glue.get_tables(DatabaseName="ice")["TableList"]
    assert [x["Parameters"]["table_type"] for x in tables] == ["ICEBERG"]
    # renameTable: CreateTable under the new name, DeleteTable of the old
    t = glue.get_table(DatabaseName="ice", Name="events")["Table"]
    renamed = iceberg_input("events2", t["Parameters"]["metadata_location"],
                            columns=t["StorageDescriptor"]["Columns"])
    glue.create_table(DatabaseName="ice", TableInput=renamed)
    glue.delete_table(DatabaseName="ice", Name="events")
    assert [x["Name"] for x in glue.get_tables(DatabaseName="ice")["TableList"]] == ["events2"]


# ---- Spark with the Glue Data Catalog client for the Hive metastore --------

def test_spark_hive_client(glue):
    # at start: the default database and the functions
    assert glue.get_database(Name="default")["Database"]["Name"] == "default"
    assert glue.get_user_defined_functions(DatabaseName="default",
                                           Pattern=".*")["UserDefinedFunctions"] == []
    assert glue.get_user_defined_functions(Pattern="trino__.*")["UserDefinedFunctions"] == []
    assert code_of(glue.get_user_defined_function, DatabaseName="default",
                   FunctionName="my_udf") == "EntityNotFoundException"
    assert code_of(glue.get_user_defined_functions, DatabaseName="nosuch",
                   Pattern=".*") == "EntityNotFoundException"
    # saveAsTable(format="parquet"): the data source schema in parameters, in parts
    schema = json.dumps({"type": "struct", "fields": [
        {"name": "id", "type": "long", "nullable": True, "metadata": {}},
        {"name": "amount", "type": "decimal(10,2)", "nullable": True, "metadata": {}},
        {"name": "tags", "type": {"type": "map", "keyType": "string", "valueType": "integer",
                                  "valueContainsNull": True}, "nullable": True,
         "metadata": {"comment": "ünïcode " * 600}}]})
    parts = [schema[i:i + 4000] for i in range(0, len(schema), 4000)]
    params = {"spark.sql.sources.provider": "parquet",
              "spark.sql.sources.schema.numParts": str(len(parts)),
              "spark.sql.create.version": "3.5.1", "EXTERNAL": "TRUE"}
    params.update({"spark.sql.sources.schema.part.%d" % i: p for i, p in enumerate(parts)})
    sd = storage("s3a://lake/spark/events", [{"Name": "col", "Type": "array<string>",
                                              "Comment": "from deserializer"}])
    sd["SerdeInfo"]["Parameters"] = {"path": "s3a://lake/spark/events",
                                     "serialization.format": "1"}
    given = {"Name": "events", "TableType": "EXTERNAL_TABLE", "Parameters": params,
             "PartitionKeys": [], "StorageDescriptor": sd, "Owner": "hadoop",
             "LastAccessTime": datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc),
             "Retention": 0}
    glue.create_table(DatabaseName="default", TableInput=given)
    t = glue.get_table(DatabaseName="default", Name="events")["Table"]
    assert_kept(t, {k: v for k, v in given.items() if k != "LastAccessTime"})
    assert "".join(t["Parameters"]["spark.sql.sources.schema.part.%d" % i]
                   for i in range(len(parts))) == schema


def test_functions_as_trino_and_spark_keep_them(glue, glue_raw):
    glue.create_database(DatabaseInput={"Name": "fns"})
    # Trino's SQL routines (CREATE FUNCTION in a Hive schema): the routine in
    # FILE resource URIs, named trino__NAME__SIGNATURE
    body = base64.b64encode(json.dumps({"sql": "RETURN x * 2", "note": "żółw"}).encode()).decode()
    chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)] + ["x" * 1024]
    trino_fn = {"FunctionName": "trino__double_it__7f3a", "ClassName": "TrinoFunction",
                "OwnerName": "alice", "OwnerType": "USER",
                "ResourceUris": [{"ResourceType": "FILE", "Uri": c} for c in chunks]}
    glue.create_user_defined_function(DatabaseName="fns", FunctionInput=trino_fn)
    assert code_of(glue.create_user_defined_function, DatabaseName="fns",
                   FunctionInput=trino_fn) == "AlreadyExistsException"
    # Spark's CREATE FUNCTION ... USING JAR
    spark_fn = {"FunctionName": "toUpper", "ClassName": "com.example.ToUpper",
                "OwnerName": "hadoop", "OwnerType": "USER",
                "ResourceUris": [{"ResourceType": "JAR", "Uri": "s3a://lake/jars/udf.jar"}]}
    glue.create_user_defined_function(DatabaseName="fns", FunctionInput=spark_fn)
    got = glue.get_user_defined_function(DatabaseName="fns",
                                         FunctionName="trino__double_it__7f3a")
    f = got["UserDefinedFunction"]
    assert_kept(f, trino_fn)
    assert f["DatabaseName"] == "fns" and isinstance(f["CreateTime"], datetime.datetime)
    # names are kept exactly: Spark's camel case is its own name
    assert glue.get_user_defined_function(
        DatabaseName="fns", FunctionName="toUpper")["UserDefinedFunction"]["ClassName"] == \
        "com.example.ToUpper"
    # Trino's listings: every routine, then one name (quoted as Java's Pattern.quote does)
    listed = all_pages(glue.get_user_defined_functions, "UserDefinedFunctions",
                       DatabaseName="fns", Pattern="trino__.*", MaxResults=100)
    assert [x["FunctionName"] for x in listed] == ["trino__double_it__7f3a"]
    listed = glue.get_user_defined_functions(DatabaseName="fns",
                                             Pattern="trino__\\Qdouble_it\\E__.*")
    assert [x["FunctionName"] for x in listed["UserDefinedFunctions"]] == [
        "trino__double_it__7f3a"]
    # Spark's listing of all functions, every database, paged
    names = [x["FunctionName"] for x in all_pages(
        glue.get_user_defined_functions, "UserDefinedFunctions", Pattern=".*", MaxResults=1)]
    assert names == ["toUpper", "trino__double_it__7f3a"]
    # CREATE OR REPLACE: UpdateUserDefinedFunction; CreateTime stays
    before = glue.get_user_defined_function(DatabaseName="fns", FunctionName="toUpper")
    glue.update_user_defined_function(DatabaseName="fns", FunctionName="toUpper",
                                      FunctionInput=dict(spark_fn, ClassName="com.example.V2"))
    g = glue.get_user_defined_function(DatabaseName="fns", FunctionName="toUpper")
    assert g["UserDefinedFunction"]["ClassName"] == "com.example.V2"
    assert g["UserDefinedFunction"]["CreateTime"] == \
        before["UserDefinedFunction"]["CreateTime"]
    # a rename onto a taken name is refused
    assert code_of(glue.update_user_defined_function, DatabaseName="fns",
                   FunctionName="toUpper",
                   FunctionInput=dict(spark_fn, FunctionName="trino__double_it__7f3a")) == \
        "AlreadyExistsException"
    # bad input: Glue's errors, nothing changes
    for bad in (dict(spark_fn, FunctionName="f2", OwnerType="NOBODY"),
                dict(spark_fn, FunctionName="f2",
                     ResourceUris=[{"ResourceType": "ZIP", "Uri": "s3://x"}]),
                dict(spark_fn, FunctionName="f2",
                     ResourceUris=[{"ResourceType": "FILE", "Uri": "u" * 1025}]),
                dict(spark_fn, FunctionName="f" * 256)):
        assert code_of(glue_raw.create_user_defined_function, DatabaseName="fns",
                       FunctionInput=bad) == "InvalidInputException"
    assert code_of(glue.create_user_defined_function, DatabaseName="nosuch",
                   FunctionInput=spark_fn) == "EntityNotFoundException"
    assert code_of(glue.get_user_defined_functions, DatabaseName="nosuch",
                   Pattern=".*") == "EntityNotFoundException"
    assert code_of(glue.get_user_defined_functions, DatabaseName="fns",
                   Pattern="(") == "InvalidInputException"
    assert code_of(glue.get_user_defined_function, DatabaseName="fns",
                   FunctionName="f2") == "EntityNotFoundException"
    # DROP FUNCTION, and a database's functions go with it
    glue.delete_user_defined_function(DatabaseName="fns", FunctionName="toUpper")
    assert code_of(glue.delete_user_defined_function, DatabaseName="fns",
                   FunctionName="toUpper") == "EntityNotFoundException"
    glue.delete_database(Name="fns")
    glue.create_database(DatabaseInput={"Name": "fns"})
    assert glue.get_user_defined_functions(DatabaseName="fns",
                                           Pattern=".*")["UserDefinedFunctions"] == []


# ---- a third-party Parquet reader over tarn's S3 ------------------------------

ROWS = [
    # id, code, amount, placed, note, ok, region
    (1, "000042", "12345678.90", "2024-03-01 12:34:56.789", "Zürich", True, "eu"),
    (2, "7", "-0.05", "1999-12-31 23:59:59", None, False, "eu"),
    (3, "0099", None, None, "żółw 🐢 東京", None, "us"),
    (4, "", "0.00", "2024-02-29 00:00:00.000001", "", True, "us"),
]


def micros(ts):
    d = datetime.datetime.fromisoformat(ts).replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp()) * 1000000 + d.microsecond


def sql(tarn, query):
    r = tarn.request("POST", "/_tarn/sql", headers={"Accept": "application/json"},
                     body=query.encode(), timeout=300)
    doc = json.loads(r.text)
    assert r.status_code == 200 and "error" not in doc, doc
    return doc


def read_with_hyparquet(tarn, bucket, keys):
    if not os.path.isdir(os.path.join(LAKE_DIR, "node_modules", "hyparquet")):
        pytest.fail("hyparquet is not installed: run `npm install` in tests/e2e/lake "
                    "(scripts/install-deps.sh does)")
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", "client-s3")):
        pytest.fail("the JavaScript SDK is not installed in tests/e2e/js")
    env = tarnlib.clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_BUCKET=bucket, TARN_KEYS=json.dumps(keys),
               AWS_ACCESS_KEY_ID=tarn.access_key, AWS_SECRET_ACCESS_KEY=tarn.secret_key,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run(["node", "read.mjs"], cwd=LAKE_DIR, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, "node read.mjs failed\nstdout:\n%s\nstderr:\n%s" % (
        r.stdout[-3000:], r.stderr[-3000:])
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def test_parquet_written_by_tarn_read_by_another_reader(tarn, s3, glue, bucket):
    values = ", ".join(
        "(%d, '%s', %s, %s, %s, %s, '%s')" % (
            i, code, "CAST('%s' AS DECIMAL(10,2))" % amt if amt else "CAST(NULL AS DECIMAL(10,2))",
            "TIMESTAMP '%s'" % ts if ts else "CAST(NULL AS TIMESTAMP)",
            "'%s'" % note if note is not None else "CAST(NULL AS VARCHAR)",
            {True: "true", False: "false", None: "CAST(NULL AS BOOLEAN)"}[ok], region)
        for i, code, amt, ts, note, ok, region in ROWS)
    sql(tarn, "CREATE DATABASE IF NOT EXISTS shop")
    doc = sql(tarn, "CREATE TABLE shop.orders WITH (format = 'PARQUET', "
                    "write_compression = 'SNAPPY', external_location = 's3://%s/lake/orders/', "
                    "partitioned_by = ARRAY['region']) AS SELECT CAST(id AS BIGINT) AS id, "
                    "code, amount, placed, note, ok, region FROM (VALUES %s) "
                    "AS t(id, code, amount, placed, note, ok, region)" % (bucket, values))
    assert doc["rows"] == [[len(ROWS)]]

    # what an engine does: the table and its partitions from Glue ...
    t = glue.get_table(DatabaseName="shop", Name="orders")["Table"]
    assert t["TableType"] == "EXTERNAL_TABLE"      # Trino: an external table, never dropped data
    sd = t["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert sd["InputFormat"] == PARQUET_IN and sd["OutputFormat"] == PARQUET_OUT
    assert sd["Location"] == "s3://%s/lake/orders/" % bucket
    assert [(c["Name"], c["Type"]) for c in t["PartitionKeys"]] == [("region", "string")]
    types = {c["Name"]: c["Type"] for c in sd["Columns"]}
    assert types["amount"] == "decimal(10,2)" and types["placed"] == "timestamp"
    assert types["id"] == "bigint" and types["ok"] == "boolean"
    parts = all_pages(glue.get_partitions, "Partitions", DatabaseName="shop", TableName="orders",
                      Segment={"SegmentNumber": 0, "TotalSegments": 1})
    assert sorted(p["Values"] for p in parts) == [["eu"], ["us"]]
    # ... then the objects under each partition's location, read by hyparquet
    keys = {}
    for p in parts:
        loc = p["StorageDescriptor"]["Location"]
        prefix = loc.split("/", 3)[3].rstrip("/") + "/"
        listed = tarnlib.list_all_keys(s3, bucket, Prefix=prefix)
        assert listed and all(k.endswith(".parquet") for k in listed)
        keys.update({k: p["Values"][0] for k in listed})
    files = read_with_hyparquet(tarn, bucket, sorted(keys))

    got = []
    for f in files:
        assert f["magic"] == "PAR1"
        first, second = f["ranges"][:2]
        assert first["range"] == "bytes=-8" and first["status"] == 206 and first["length"] == 8
        assert first["contentRange"] == "bytes %d-%d/%d" % (f["size"] - 8, f["size"] - 1,
                                                              f["size"])
        assert second["length"] == f["footerLength"] + 8 and second["status"] == 206
        assert all(r["status"] == 206 for r in f["ranges"])
        schema = {c["name"]: c for c in f["schema"]}
        assert "region" not in schema                       # Hive-style: in the path
        assert schema["amount"]["converted"] == "DECIMAL"
        assert (schema["amount"]["precision"], schema["amount"]["scale"]) == (10, 2)
        placed = schema["placed"]["logical"]
        assert placed["type"] == "TIMESTAMP" and placed["unit"] == "MICROS"
        assert schema["id"]["type"] == "INT64" and schema["ok"]["type"] == "BOOLEAN"
        assert schema["note"]["type"] == "BYTE_ARRAY"
        assert f["numRows"] == len(f["rows"])
        for row in f["rows"]:
            ts = row["placed"]
            got.append((int(row["id"]), row["code"], row["amount"],
                        None if ts is None else int(ts.split(":")[-1]), row["note"],
                        row["ok"], keys[f["key"]]))
    want = [(i, code, amt, micros(ts) if ts else None, note, ok, region)
            for i, code, amt, ts, note, ok, region in ROWS]
    assert sorted(got, key=lambda r: r[0]) == want


FIREHOSE_RECORDS = [
    {"order_id": 1, "code": "000042", "amount": "1234.50", "placed": "2024-01-01T10:00:00.25Z",
     "lines": [{"sku": "żółw-1", "qty": 2, "price": "9.99"}, {"sku": "b", "qty": None,
                                                               "price": "0.01"}],
     "attrs": {"gift": 1, "東京": 2}, "note": "ok"},
    {"order_id": 2, "code": "7", "amount": None, "placed": None, "lines": [], "attrs": {},
     "note": None},
]


def test_firehose_parquet_in_a_glue_partition_read_by_another_reader(tarn, s3, glue, bucket):
    """The write path of streaming ingest: Firehose converts JSON to Parquet by
    the Glue table's columns (nested ones too); the partition is registered as
    an engine's partition sync would, and read back by hyparquet."""
    from test_events import wait_for
    fh = tarn.service_client("firehose", parameter_validation=False)
    loc = "s3://%s/lake/stream/" % bucket
    glue.create_database(DatabaseInput={"Name": "stream"})
    glue.create_table(DatabaseName="stream", TableInput=table_input("orders", loc))
    prefix = "lake/stream/dt=2024-01-01/region=eu/"
    fh.create_delivery_stream(
        DeliveryStreamName="lake-orders", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::000000000000:role/firehose",
            "BucketARN": "arn:aws:s3:::" + bucket, "Prefix": prefix,
            "ErrorOutputPrefix": "lake/errors/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
            "DataFormatConversionConfiguration": {
                "Enabled": True,
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {
                    "Compression": "SNAPPY"}}},
                "SchemaConfiguration": {"DatabaseName": "stream", "TableName": "orders",
                                        "RoleARN": "arn:aws:iam::000000000000:role/firehose",
                                        "Region": "us-east-1"}}})
    r = fh.put_record_batch(DeliveryStreamName="lake-orders", Records=[
        {"Data": json.dumps(x).encode()} for x in FIREHOSE_RECORDS])
    assert r["FailedPutCount"] == 0
    keys = wait_for(lambda: tarnlib.list_all_keys(s3, bucket, Prefix=prefix), timeout=180)
    assert tarnlib.list_all_keys(s3, bucket, Prefix="lake/errors/") == []
    glue.batch_create_partition(DatabaseName="stream", TableName="orders", PartitionInputList=[
        partition_input(loc, "2024-01-01", "eu", len(FIREHOSE_RECORDS))])
    p = glue.get_partitions(DatabaseName="stream", TableName="orders",
                            Expression="(dt = '2024-01-01')")["Partitions"]
    assert [x["StorageDescriptor"]["Location"] for x in p] == [loc + prefix[len("lake/stream/"):].rstrip("/")]

    files = read_with_hyparquet(tarn, bucket, keys)
    rows = sorted((row for f in files for row in f["rows"]), key=lambda r: int(r["order_id"]))
    schema = {c["name"]: c for c in files[0]["schema"]}
    assert schema["attrs"]["converted"] in ("MAP", "MAP_KEY_VALUE")
    assert schema["lines"]["converted"] == "LIST"
    first, second = rows
    assert (first["code"], first["amount"], first["note"]) == ("000042", "1234.50", "ok")
    assert int(first["placed"].split(":")[-1]) == micros("2024-01-01 10:00:00.250000")
    assert [(x["sku"], x["qty"], round(x["price"], 2)) for x in first["lines"]] == [
        ("żółw-1", 2, 9.99), ("b", None, 0.01)]
    assert first["attrs"] == {"gift": 1, "東京": 2}
    assert (second["code"], second["amount"], second["placed"], second["note"]) == (
        "7", None, None, None)
    assert second["lines"] == [] and second["attrs"] in ({}, None)
