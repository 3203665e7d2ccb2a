"""tests/e2e/test_sql_catalog.py -- SQL over the table catalog, through a real
server: Athena's DDL (CREATE DATABASE, CREATE EXTERNAL TABLE, SHOW ...,
DESCRIBE, MSCK REPAIR TABLE, ALTER TABLE ADD/DROP PARTITION, DROP ...) POSTed
to /_tarn/sql, queries over catalog tables of CSV, JSON lines and Parquet with
their declared types (a column declared string stays string: '000042'),
partition pruning proven by bytes scanned, CREATE TABLE AS read back by
DuckDB, INSERT INTO, statement errors (with line and column, changing
nothing), and the same tables seen through the Glue API (boto3)."""
import json
import os
import time

import boto3
import pytest
from botocore.config import Config

from duckdb_util import duckdb

CSV = {
    "sales/year=2023/month=12/part-0.csv": "000042,10,north\n7,20,south\n",
    "sales/year=2024/month=01/part-0.csv": "1,5,north\n2,6,east\n",
    "sales/year=2024/month=01/part-1.csv": "8,1,west\n",
    "sales/year=2024/month=02/part-0.csv": "3,7,north\n",
}
HEADERED = "id,price,note\n000042,1.50,a\n0007,2.25,\\N\n0099,3.00\n"  # a short row: NULL
JSONL = ('{"id":"000042","n":1,"tags":["a","b"],"amt":"12.30","homeRegion":"eu"}\n'
         '{"id":"17","n":2,"tags":[],"amt":"0.05"}\n')


def sql(tarn, query, database=None, ok=True):
    path = "/_tarn/sql" + ("?database=%s" % database if database else "")
    r = tarn.request("POST", path, headers={"Accept": "application/json"},
                     body=query.encode(), timeout=120)
    doc = json.loads(r.text)
    if ok:
        assert r.status_code == 200 and "error" not in doc, doc
    return doc


def fails(tarn, query):
    doc = sql(tarn, query, ok=False)
    assert "error" in doc, doc
    return doc


def rows(tarn, query, **kw):
    return sql(tarn, query, **kw)["rows"]


def size(*keys):
    return sum(len(CSV[k].encode()) for k in keys)


@pytest.fixture(scope="module")
def lake(tarn, s3):
    b = "catalog-e2e"
    s3.create_bucket(Bucket=b)
    for key, body in CSV.items():
        s3.put_object(Bucket=b, Key=key, Body=body.encode())
    s3.put_object(Bucket=b, Key="headered/data.csv", Body=HEADERED.encode())
    s3.put_object(Bucket=b, Key="json/a.json", Body=JSONL.encode())
    sql(tarn, "CREATE DATABASE IF NOT EXISTS lake COMMENT 'the lake' "
              "LOCATION 's3://%s/warehouse/'" % b)
    return b


def test_databases(tarn, lake):
    assert ["lake"] in rows(tarn, "SHOW DATABASES")
    assert ["default"] in rows(tarn, "SHOW SCHEMAS")
    assert rows(tarn, "SHOW DATABASES LIKE 'la*'") == [["lake"]]
    sql(tarn, "CREATE SCHEMA scratch")
    doc = fails(tarn, "CREATE DATABASE scratch")
    assert "already exists" in doc["message"] and doc["line"] == 1 and doc["column"] == 17
    sql(tarn, "CREATE DATABASE IF NOT EXISTS scratch")
    sql(tarn, "DROP DATABASE scratch")
    assert ["scratch"] not in rows(tarn, "SHOW DATABASES")
    sql(tarn, "DROP DATABASE IF EXISTS scratch")
    assert "not found" in fails(tarn, "DROP DATABASE scratch")["message"].lower()


def test_csv_table_declared_types_and_pruning(tarn, lake):
    sql(tarn, """CREATE EXTERNAL TABLE lake.sales (
                   id string COMMENT 'kept as written',
                   amt int,
                   region varchar(10))
                 PARTITIONED BY (year string, month string)
                 ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
                 STORED AS TEXTFILE
                 LOCATION 's3://%s/sales/'""" % lake)
    assert rows(tarn, "SHOW TABLES IN lake") == [["sales"]]
    assert rows(tarn, "SELECT count(*) FROM lake.sales") == [[0]]  # no partitions yet
    added = rows(tarn, "MSCK REPAIR TABLE lake.sales")
    assert len(added) == 3 and all("Added partition" in r[0] for r in added)
    assert rows(tarn, "SHOW PARTITIONS lake.sales") == [
        ["year=2023/month=12"], ["year=2024/month=01"], ["year=2024/month=02"]]
    assert rows(tarn, "MSCK REPAIR TABLE lake.sales") == []  # nothing new
    doc = sql(tarn, "SELECT * FROM sales ORDER BY amt", database="lake")
    assert [(c["name"], c["type"].lower()) for c in doc["columns"]] == [
        ("id", "varchar"), ("amt", "integer"), ("region", "varchar"),
        ("year", "varchar"), ("month", "varchar")]
    assert doc["rows"][0] == ["8", 1, "west", "2024", "01"]
    assert ["000042", 10, "north", "2023", "12"] in doc["rows"]
    assert doc["stats"]["bytes_scanned"] == size(*CSV)
    # a filter on partition keys reads only those partitions' objects
    doc = sql(tarn, "SELECT sum(amt), count(*) FROM lake.sales "
                    "WHERE year = '2024' AND month = '01'")
    assert doc["rows"] == [[12, 3]]
    assert doc["stats"]["objects_scanned"] == 2
    assert doc["stats"]["bytes_scanned"] == size("sales/year=2024/month=01/part-0.csv",
                                                 "sales/year=2024/month=01/part-1.csv")
    # joins and qualified names see the table too
    doc = sql(tarn, "SELECT s.id FROM lake.sales s JOIN lake.sales t ON s.id = t.id "
                    "WHERE s.year = '2023' AND t.year = '2023' ORDER BY 1")
    assert doc["rows"] == [["000042"], ["7"]]
    assert rows(tarn, "SELECT sales.region FROM lake.sales WHERE sales.id = '000042'") == [["north"]]


def test_describe_and_show_create(tarn, lake):
    d = rows(tarn, "DESCRIBE lake.sales")
    assert d[:3] == [["id", "string", "kept as written"], ["amt", "int", ""],
                     ["region", "varchar(10)", ""]]
    assert ["# Partition Information", "", ""] in d
    assert rows(tarn, "SHOW COLUMNS IN lake.sales") == [
        ["id"], ["amt"], ["region"], ["year"], ["month"]]
    text = "\n".join(r[0] for r in rows(tarn, "SHOW CREATE TABLE lake.sales"))
    assert "CREATE EXTERNAL TABLE `lake`.`sales`" in text
    assert "PARTITIONED BY" in text and "LOCATION\n  's3://%s/sales/'" % lake in text


def test_alter_partitions(tarn, lake, s3):
    s3.put_object(Bucket=lake, Key="elsewhere/p.csv", Body=b"99,100,far\n")
    sql(tarn, "ALTER TABLE lake.sales ADD PARTITION (year='2025', month='03') "
              "LOCATION 's3://%s/elsewhere/'" % lake)
    assert rows(tarn, "SELECT id, amt FROM lake.sales WHERE year = '2025'") == [["99", 100]]
    doc = fails(tarn, "ALTER TABLE lake.sales ADD PARTITION (year='2025', month='03')")
    assert "already exists" in doc["message"]
    sql(tarn, "ALTER TABLE lake.sales ADD IF NOT EXISTS PARTITION (year='2025', month='03')")
    # a missing key: an error, and nothing added
    doc = fails(tarn, "ALTER TABLE lake.sales ADD PARTITION (year='2026', month='01') "
                      "PARTITION (year='2027')")
    assert doc["line"] == 1 and doc["column"] == 64, doc
    assert ["year=2026/month=01"] not in rows(tarn, "SHOW PARTITIONS lake.sales")
    sql(tarn, "ALTER TABLE lake.sales DROP PARTITION (year='2025', month='03')")
    assert rows(tarn, "SELECT count(*) FROM lake.sales WHERE year = '2025'") == [[0]]
    fails(tarn, "ALTER TABLE lake.sales DROP PARTITION (year='2025', month='03')")
    sql(tarn, "ALTER TABLE lake.sales DROP IF EXISTS PARTITION (year='2025', month='03')")


def test_header_serde_and_json(tarn, lake):
    sql(tarn, """CREATE EXTERNAL TABLE lake.headered (id string, price decimal(10,2), note string)
                 ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
                 LOCATION 's3://%s/headered/'
                 TBLPROPERTIES ('skip.header.line.count'='1')""" % lake)
    doc = sql(tarn, "SELECT id, price, note FROM lake.headered ORDER BY id")
    assert [c["type"].lower() for c in doc["columns"]] == ["varchar", "decimal", "varchar"]
    assert doc["rows"] == [["000042", 1.5, "a"], ["0007", 2.25, None], ["0099", 3.0, None]]
    assert rows(tarn, "SELECT sum(price) FROM lake.headered") == [[6.75]]
    sql(tarn, """CREATE EXTERNAL TABLE lake.events (id string, n bigint, tags array<string>,
                   amt decimal(10,2), homeregion string)
                 ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
                 LOCATION 's3://%s/json/'""" % lake)
    doc = sql(tarn, "SELECT id, n, tags, amt, homeregion FROM lake.events ORDER BY n")
    # keys match the declared (lower-case) names ignoring case, as Hive's SerDes do
    assert doc["rows"] == [["000042", 1, '["a","b"]', 12.3, "eu"], ["17", 2, "[]", 0.05, None]]
    assert rows(tarn, "SELECT json_extract_scalar(tags, '$[1]') FROM lake.events WHERE n = 1") \
        == [["b"]]


def test_ctas_parquet_read_by_duckdb(tarn, lake, s3, tmp_path):
    doc = sql(tarn, "CREATE TABLE lake.sales_pq WITH (format='PARQUET', "
                    "external_location='s3://%s/pq/sales/', partitioned_by=ARRAY['year'], "
                    "write_compression='SNAPPY') AS "
                    "SELECT id, amt, region, year FROM lake.sales" % lake)
    assert doc["rows"] == [[6]]
    assert rows(tarn, "SHOW PARTITIONS lake.sales_pq") == [["year=2023"], ["year=2024"]]
    d = rows(tarn, "DESCRIBE lake.sales_pq")
    assert d[:4] == [["id", "string", ""], ["amt", "int", ""], ["region", "string", ""],
                     ["year", "string", ""]]
    # read back through the catalog, pruned by partition
    doc = sql(tarn, "SELECT id, amt FROM lake.sales_pq WHERE year = '2023' ORDER BY amt")
    assert doc["rows"] == [["000042", 10], ["7", 20]]
    assert doc["stats"]["objects_scanned"] == 1
    # DuckDB reads the files
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=lake, Prefix="pq/sales/")["Contents"]]
    assert all(k.endswith(".parquet") for k in keys) and len(keys) == 2
    for k in keys:
        path = tmp_path / k.replace("/", "_")
        path.write_bytes(s3.get_object(Bucket=lake, Key=k)["Body"].read())
    got = duckdb(["SELECT id, amt FROM read_parquet('%s/*.parquet') ORDER BY amt" % tmp_path])
    assert got[-1] == [["8", "1"], ["1", "5"], ["2", "6"], ["3", "7"], ["000042", "10"],
                       ["7", "20"]]
    # Athena's rules: the location must be empty, partition columns last, no second table
    doc = fails(tarn, "CREATE TABLE lake.again WITH (external_location='s3://%s/pq/sales/') "
                      "AS SELECT 1 AS x" % lake)
    assert "must be empty" in doc["message"]
    doc = fails(tarn, "CREATE TABLE lake.bad WITH (external_location='s3://%s/pq/bad/', "
                      "partitioned_by=ARRAY['year']) AS SELECT year, id FROM lake.sales" % lake)
    assert "last" in doc["message"]
    doc = fails(tarn, "CREATE TABLE lake.sales_pq AS SELECT 1 AS x")
    assert "already exists" in doc["message"] and doc["column"] == 14
    assert s3.list_objects_v2(Bucket=lake, Prefix="pq/bad/")["KeyCount"] == 0
    assert ["bad"] not in rows(tarn, "SHOW TABLES IN lake")
    # without external_location: below the database's location
    sql(tarn, "CREATE TABLE lake.small AS SELECT 'x' AS a, 1 AS b")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=lake, Prefix="warehouse/small/")["Contents"]]
    assert len(keys) == 1
    assert rows(tarn, "SELECT a, b FROM lake.small") == [["x", 1]]


@pytest.mark.parametrize("fmt", ["TEXTFILE", "JSON"])
def test_ctas_text_formats(tarn, lake, s3, fmt):
    name = "lake.ctas_%s" % fmt.lower()
    sql(tarn, "CREATE TABLE %s WITH (format='%s', field_delimiter='|') AS "
              "SELECT id, CAST(amt AS DECIMAL(8,2)) AS amt, 'a|b' AS s, month FROM lake.sales "
              "WHERE year = '2023'" % (name, fmt) if fmt == "TEXTFILE" else
              "CREATE TABLE %s WITH (format='%s') AS SELECT id, CAST(amt AS DECIMAL(8,2)) AS amt, "
              "'a|b' AS s, month FROM lake.sales WHERE year = '2023'" % (name, fmt))
    doc = sql(tarn, "SELECT * FROM %s ORDER BY amt" % name)
    assert [(c["name"], c["type"].lower()) for c in doc["columns"]] == [
        ("id", "varchar"), ("amt", "decimal"), ("s", "varchar"), ("month", "varchar")]
    assert doc["rows"] == [["000042", 10.0, "a|b", "12"], ["7", 20.0, "a|b", "12"]]
    keys = [o["Key"] for o in s3.list_objects_v2(
        Bucket=lake, Prefix="warehouse/ctas_%s/" % fmt.lower())["Contents"]]
    assert len(keys) == 1 and keys[0].endswith(".csv" if fmt == "TEXTFILE" else ".json")


def test_many_partitions(tarn, lake, s3):
    # 12 partitions: read with one listing of the table's folder, plus one elsewhere
    doc = sql(tarn, "CREATE TABLE lake.many WITH (format='JSON', partitioned_by=ARRAY['k']) AS "
                    "SELECT n, CAST(n % 12 AS VARCHAR) AS k FROM (VALUES 0,1,2,3,4,5,6,7,8,9,10,"
                    "11,12,13,14,15,16,17,18,19,20,21,22,23) AS t(n)")
    assert doc["rows"] == [[24]]
    s3.put_object(Bucket=lake, Key="far/x.json", Body=b'{"n": 100}\n')
    sql(tarn, "ALTER TABLE lake.many ADD PARTITION (k='far') LOCATION 's3://%s/far/'" % lake)
    # an object below the table's folder that no partition names is not read
    s3.put_object(Bucket=lake, Key="warehouse/many/k=stray/x.json", Body=b'{"n": 1000}\n')
    doc = sql(tarn, "SELECT count(*), sum(n) FROM lake.many")
    assert doc["rows"] == [[25, 376]]
    assert doc["stats"]["objects_scanned"] == 13
    doc = sql(tarn, "SELECT sum(n) FROM lake.many WHERE k IN ('1', '2', '3', '4', '5', '6', "
                    "'7', '8', 'far')")
    assert doc["rows"] == [[2 * sum(range(1, 9)) + 8 * 12 + 100]]
    assert doc["stats"]["objects_scanned"] == 9


def test_parquet_table_declared_over_files(tarn, lake):
    # a table declared over the files CTAS wrote: columns matched by name, a
    # wider integer kept, another type cast, a column the files lack is NULL
    sql(tarn, """CREATE EXTERNAL TABLE lake.pq2 (ID string, amt bigint, price double, gone int)
                 PARTITIONED BY (year int)
                 STORED AS PARQUET LOCATION 's3://%s/pq/sales/'""" % lake)
    assert len(rows(tarn, "MSCK REPAIR TABLE lake.pq2")) == 2
    doc = sql(tarn, "SELECT id, amt, gone, year FROM lake.pq2 WHERE year = 2023 ORDER BY amt")
    assert [c["type"].lower() for c in doc["columns"]] == ["varchar", "bigint", "integer", "integer"]
    assert doc["rows"] == [["000042", 10, None, 2023], ["7", 20, None, 2023]]
    assert doc["stats"]["objects_scanned"] == 1
    sql(tarn, "DROP TABLE lake.pq2")


def test_insert_into(tarn, lake):
    doc = sql(tarn, "INSERT INTO lake.sales_pq SELECT '000099', 30, 'east', '2025'")
    assert doc["rows"] == [[1]]
    assert ["year=2025"] in rows(tarn, "SHOW PARTITIONS lake.sales_pq")
    assert rows(tarn, "SELECT id, amt FROM lake.sales_pq WHERE year = '2025'") == [["000099", 30]]
    sql(tarn, "INSERT INTO lake.sales_pq SELECT id, amt, region, year FROM lake.sales "
              "WHERE year = '2023'")
    assert rows(tarn, "SELECT count(*) FROM lake.sales_pq WHERE year = '2023'") == [[4]]
    # a column list: the others are NULL
    sql(tarn, "INSERT INTO lake.sales_pq (year, id, amt) SELECT '2026', '5', 2")
    assert rows(tarn, "SELECT id, amt, region FROM lake.sales_pq WHERE year = '2026'") == [
        ["5", 2, None]]
    doc = fails(tarn, "INSERT INTO lake.sales_pq (nope) SELECT 1")
    assert "no column 'nope'" in doc["message"]
    # into a CSV table: the text stays as written
    sql(tarn, "INSERT INTO lake.sales VALUES ('000100', 1, 'x', '2030', '01')")
    assert rows(tarn, "SELECT id FROM lake.sales WHERE year = '2030'") == [["000100"]]
    doc = fails(tarn, "INSERT INTO lake.sales_pq SELECT 1, 2")
    assert "columns" in doc["message"]
    doc = fails(tarn, "INSERT INTO lake.nosuch SELECT 1")
    assert "does not exist" in doc["message"] and doc["column"] == 13


def test_errors_change_nothing(tarn, lake):
    doc = fails(tarn, "CREATE EXTERNAL TABLE lake.t1 (a string, b blob) LOCATION 's3://%s/x/'"
                % lake)
    assert "unknown type 'blob'" in doc["message"] and doc["line"] == 1 and doc["column"] == 42
    doc = fails(tarn, "CREATE EXTERNAL TABLE lake.t1 (a string)")
    assert "LOCATION" in doc["message"]
    doc = fails(tarn, "CREATE EXTERNAL TABLE nodb.t1 (a string) LOCATION 's3://%s/x/'" % lake)
    assert doc["line"] == 1
    doc = fails(tarn, "SELECT * FROM lake.nosuch")
    assert "does not exist" in doc["message"] and doc["column"] == 15
    doc = fails(tarn, "DROP TABLE lake.nosuch")
    assert "not found" in doc["message"].lower()
    sql(tarn, "DROP TABLE IF EXISTS lake.nosuch")
    doc = fails(tarn, "SHOW PARTITIONS lake.headered")
    assert "not partitioned" in doc["message"]
    doc = fails(tarn, "DROP DATABASE lake")
    assert "not empty" in doc["message"]
    assert ["t1"] not in rows(tarn, "SHOW TABLES IN lake")
    # a quoted path still reads objects directly
    assert rows(tarn, "SELECT count(*) FROM read_csv('s3://%s/sales/year=202[34]/**/*.csv', "
                      "header=false)" % lake) == [[6]]


def test_glue_sees_sql_tables(tarn, lake):
    glue = boto3.client("glue", endpoint_url=tarn.endpoint, region_name="us-east-1",
                        aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key,
                        config=Config(retries={"max_attempts": 1}))
    try:
        t = glue.get_table(DatabaseName="lake", Name="sales")["Table"]
    except Exception as ex:  # the Glue API is not served by this build
        pytest.skip("no Glue API: %s" % ex)
    assert t["StorageDescriptor"]["Location"] == "s3://%s/sales/" % lake
    assert [k["Name"] for k in t["PartitionKeys"]] == ["year", "month"]
    glue.create_table(DatabaseName="lake", TableInput={
        "Name": "from_glue",
        "PartitionKeys": [],
        "Parameters": {"classification": "csv"},
        "StorageDescriptor": {
            # fewer columns than the file has: the others are ignored, as Hive does
            "Columns": [{"Name": "id", "Type": "string"}, {"Name": "p", "Type": "string"}],
            "Location": "s3://%s/headered/" % lake,
            "SerdeInfo": {"SerializationLibrary":
                          "org.apache.hadoop.hive.serde2.OpenCSVSerde",
                          "Parameters": {"separatorChar": ","}},
        }})
    assert ["from_glue"] in rows(tarn, "SHOW TABLES IN lake")
    assert rows(tarn, "SELECT id, p FROM lake.from_glue WHERE id <> 'id' ORDER BY id") == [
        ["000042", "1.50"], ["0007", "2.25"], ["0099", "3.00"]]
