"""tests/e2e/test_parquet_write.py -- COPY (SELECT ...) TO 's3://...' through a
real server: the Parquet files tarn writes are downloaded with boto3 and read
with DuckDB (the reference engine), compared with what tarn's own SELECT gives;
codecs, statistics, dictionaries and types are checked with DuckDB's
parquet_metadata() / parquet_schema(); Hive partitions, CSV / JSON output,
ObjectCreated events, and statements that must fail without leaving objects."""
import csv
import io
import json
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

import tarnlib
from duckdb_util import duckdb

N = 5000


def source_csv():
    out = io.StringIO()
    out.write("id,code,name,price,day,ts,flag,year\n")
    for i in range(N):
        name = "" if i % 11 == 5 else "name-%d" % (i % 40)
        price = "" if i % 13 == 7 else "%s" % (i * 0.25)
        out.write("%d,%06d,%s,%s,2024-%02d-%02d,2024-01-02 03:04:%02d,%s,%d\n"
                  % (i, i % 97, name, price, 1 + i % 12, 1 + i % 28, i % 60,
                     "true" if i % 3 == 0 else "false", 2020 + i % 4))
    return out.getvalue()


def tarn_sql(tarn, sql, fmt="csv"):
    env = tarnlib.clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_ACCESS_KEY=tarn.access_key,
               TARN_SECRET_KEY=tarn.secret_key)
    return subprocess.run([tarnlib.TARN_BIN, "sql", "--format", fmt, sql], env=env,
                          capture_output=True, text=True, timeout=120)


def failed(r):
    """The error text of a failed `tarn sql` (the JSON error or the stderr line)."""
    assert r.returncode != 0
    return r.stdout + r.stderr


def rows_of(r):
    assert r.returncode == 0, r.stdout + r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    return rows[0], [[None if v == "" else v for v in row] for row in rows[1:]]


# the query every test writes: codes stay text ('000042'), a decimal, NULLs
QUERY = ("SELECT id, CAST(code AS VARCHAR) AS code, name, price, "
         "CAST(price AS DECIMAL(12,2)) AS amount, day, ts, flag, CAST(year AS INTEGER) AS year "
         "FROM read_csv('s3://%s/src/data.csv', columns='id BIGINT, code VARCHAR, name VARCHAR, "
         "price DOUBLE, day DATE, ts TIMESTAMP, flag BOOLEAN, year BIGINT')")


@pytest.fixture(scope="module")
def data(tarn, s3):
    b = "pqw-src-%d" % int(time.time() * 1000 % 1e9)
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="src/data.csv", Body=source_csv().encode())
    head, rows = rows_of(tarn_sql(tarn, QUERY % b + " ORDER BY id"))
    return b, head, rows


def download(s3, bucket, prefix, tmp_path):
    keys = tarnlib.list_all_keys(s3, bucket, Prefix=prefix)
    for k in keys:
        p = tmp_path / k
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(s3.get_object(Bucket=bucket, Key=k)["Body"].read())
    return keys


def test_copy_parquet_each_codec_reads_back_in_duckdb(tarn, s3, data, tmp_path):
    b, head, want = data
    assert want[42][1] == "000042"
    for codec in ("snappy", "zstd", "gzip", "none"):
        r = tarn_sql(tarn, "COPY (%s) TO 's3://%s/out-%s/' (FORMAT parquet, COMPRESSION %s, "
                           "ROW_GROUP_SIZE 2000)" % (QUERY % b, b, codec, codec))
        h, res = rows_of(r)
        assert h == ["rows"] and res == [[str(N)]]
        keys = download(s3, b, "out-%s/" % codec, tmp_path)
        assert keys == ["out-%s/data_0.parquet" % codec]
        f = keys[0]
        got, meta, schema, groups = duckdb([
            "SELECT * REPLACE (price::VARCHAR AS price) FROM '%s' ORDER BY id" % f,
            "SELECT path_in_schema, compression, encodings, stats_min_value, stats_max_value, "
            "stats_null_count FROM parquet_metadata('%s') WHERE row_group_id = 0" % f,
            "SELECT name, type, converted_type FROM parquet_schema('%s')" % f,
            "SELECT count(DISTINCT row_group_id), sum(DISTINCT row_group_num_rows) "
            "FROM parquet_metadata('%s')" % f], cwd=tmp_path)
        assert got == want
        assert groups == [["3", str(N)]] or groups[0][0] == "3"   # 2000 + 2000 + 1000
        by = {m[0]: m for m in meta}
        assert {m[1] for m in meta} == {"UNCOMPRESSED" if codec == "none" else codec.upper()}
        assert by["id"][3:6] == ["0", "1999", "0"]
        assert by["code"][3:5] == ["000000", "000096"]
        assert "RLE_DICTIONARY" in by["code"][2] and "RLE_DICTIONARY" not in by["id"][2]
        nulls_name = sum(1 for i in range(2000) if i % 11 == 5)
        assert by["name"][5] == str(nulls_name)
        assert by["day"][3:5] == ["2024-01-01", "2024-12-28"]
        types = {s[0]: (s[1], s[2]) for s in schema}
        assert types["id"] == ("INT64", None)
        assert types["code"] == ("BYTE_ARRAY", "UTF8")
        assert types["price"] == ("DOUBLE", None)
        assert types["amount"] == ("INT64", "DECIMAL")
        assert types["day"] == ("INT32", "DATE")
        assert types["ts"] == ("INT64", "TIMESTAMP_MICROS")
        assert types["flag"] == ("BOOLEAN", None)
        assert types["year"] == ("INT32", "INT_32")


def test_copy_partitioned_hive_prefixes(tarn, s3, data, tmp_path):
    b, head, want = data
    r = tarn_sql(tarn, "COPY (%s) TO 's3://%s/part' (FORMAT parquet, COMPRESSION zstd, "
                       "PARTITION_BY (year))" % (QUERY % b, b))
    assert rows_of(r)[1] == [[str(N)]]
    keys = download(s3, b, "part/", tmp_path)
    assert keys == ["part/year=%d/data_0.parquet" % y for y in (2020, 2021, 2022, 2023)]
    got, cols = duckdb([
        "SELECT * EXCLUDE (year) REPLACE (price::VARCHAR AS price), year::INTEGER FROM read_parquet('part/*/*.parquet', "
        "hive_partitioning = true) ORDER BY id",
        "SELECT name FROM parquet_schema('part/year=2021/data_0.parquet')"], cwd=tmp_path)
    assert got == want
    assert [c[0] for c in cols] == ["schema", "id", "code", "name", "price", "amount", "day",
                                    "ts", "flag"]   # the partition column is in the key only


def test_copy_partition_values_are_escaped_and_null_is_default(tarn, s3, bucket, tmp_path):
    r = tarn_sql(tarn, "COPY (SELECT * FROM (VALUES (1, 'a/b=c'), (2, NULL), (3, 'x y')) "
                       "AS t(n, \"k/=\")) TO 's3://%s/esc/' (PARTITION_BY \"k/=\")" % bucket)
    assert rows_of(r)[1] == [["3"]]
    keys = tarnlib.list_all_keys(s3, bucket, Prefix="esc/")
    assert keys == ["esc/k%2F%3D=__HIVE_DEFAULT_PARTITION__/data_0.parquet",
                    "esc/k%2F%3D=a%2Fb%3Dc/data_0.parquet", "esc/k%2F%3D=x y/data_0.parquet"]
    # the same as CSV, read back by tarn through the Hive folders: the values as written
    r = tarn_sql(tarn, "COPY (SELECT * FROM (VALUES (1, 'a/b=c'), (2, NULL), (3, 'x y')) "
                       "AS t(n, k)) TO 's3://%s/esc-csv/' (FORMAT csv, PARTITION_BY k)" % bucket)
    assert rows_of(r)[1] == [["3"]]
    h, back = rows_of(tarn_sql(tarn, "SELECT n, k FROM 's3://%s/esc-csv/**/*.csv' ORDER BY n"
                                     % bucket))
    assert back == [["1", "a/b=c"], ["2", None], ["3", "x y"]]


def test_copy_csv_and_json_lines(tarn, s3, data, tmp_path):
    b, head, want = data
    r = tarn_sql(tarn, "COPY (%s ORDER BY id) TO 's3://%s/csv/' (FORMAT csv, COMPRESSION gzip)"
                 % (QUERY % b, b))
    assert rows_of(r)[1] == [[str(N)]]
    r = tarn_sql(tarn, "COPY (%s ORDER BY id) TO 's3://%s/js/all.json' (FORMAT json)"
                 % (QUERY % b, b))
    assert rows_of(r)[1] == [[str(N)]]
    keys = download(s3, b, "csv/", tmp_path) + download(s3, b, "js/", tmp_path)
    assert keys == ["csv/data_0.csv.gz", "js/all.json"]
    # tarn reads its own output back the same
    h, again = rows_of(tarn_sql(tarn, "SELECT * FROM read_csv('s3://%s/csv/data_0.csv.gz', "
                                      "columns='id BIGINT, code VARCHAR, name VARCHAR, price "
                                      "DOUBLE, amount VARCHAR, day DATE, ts TIMESTAMP, "
                                      "flag BOOLEAN, year INTEGER') ORDER BY id" % b))
    assert h == head and again == want
    first = json.loads((tmp_path / "js/all.json").read_text().splitlines()[0])
    assert first == {"id": 0, "code": "000000", "name": "name-0", "price": 0.0,
                     "amount": 0.00, "day": "2024-01-01", "ts": "2024-01-02 03:04:00",
                     "flag": True, "year": 2020}
    lines = (tmp_path / "js/all.json").read_text().splitlines()
    assert len(lines) == N and json.loads(lines[5])["name"] is None
    # partitioned CSV: tarn reads its own Hive folders back as columns
    r = tarn_sql(tarn, "COPY (%s) TO 's3://%s/pcsv/' (FORMAT csv, PARTITION_BY (year))"
                 % (QUERY % b, b))
    assert rows_of(r)[1] == [[str(N)]]
    h, per_year = rows_of(tarn_sql(tarn, "SELECT year, count(*), sum(id) FROM "
                                         "'s3://%s/pcsv/**/*.csv' GROUP BY year ORDER BY year" % b))
    assert per_year == [[str(y), str(N // 4), str(sum(range(y - 2020, N, 4)))]
                        for y in (2020, 2021, 2022, 2023)]


def test_each_object_raises_object_created(tarn, s3, bucket, tmp_path):
    sqs = boto3.client("sqs", endpoint_url=tarn.endpoint, region_name="us-east-1",
                       aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key,
                       config=Config(retries={"max_attempts": 1}))
    url = sqs.create_queue(QueueName="pqw-" + bucket)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    r = tarn_sql(tarn, "COPY (SELECT * FROM (VALUES (1, 2020), (2, 2021)) AS t(n, y)) "
                       "TO 's3://%s/ev/' (PARTITION_BY (y))" % bucket)
    assert rows_of(r)[1] == [["2"]]
    seen, principals, rids = set(), set(), set()
    deadline = time.monotonic() + 30
    while len(seen) < 2 and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=2).get("Messages", []):
            for rec in json.loads(m["Body"]).get("Records", []):
                seen.add((rec["eventName"], rec["s3"]["object"]["key"]))
                principals.add(rec["userIdentity"]["principalId"])
                rids.add(rec["responseElements"]["x-amz-request-id"])
    # keys form-URL-encoded in the records, as S3 writes them
    assert seen == {("ObjectCreated:Put", "ev/y%3D2020/data_0.parquet"),
                    ("ObjectCreated:Put", "ev/y%3D2021/data_0.parquet")}
    # who wrote them: the caller of the statement, one request
    assert principals == {"AWS:" + tarn.access_key} and len(rids) == 1
    assert rids != {"0000000000000000"}


def test_errors_change_nothing(tarn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src/bad.csv", Body=b"a,b\n1,x\n2,y\n3,zz\n")
    src = "SELECT a, CAST(b AS BIGINT) AS n FROM 's3://%s/src/bad.csv'" % bucket
    # a value that fails half-way: no object appears
    r = tarn_sql(tarn, "COPY (%s) TO 's3://%s/fail/'" % (src, bucket))
    assert "cannot cast" in failed(r)
    assert tarnlib.list_all_keys(s3, bucket, Prefix="fail/") == []
    # unknown option and codec: the line and column of the option
    r = tarn_sql(tarn, "COPY (SELECT 1 AS a) TO 's3://%s/x/' (FORMAT parquet,\n  SPEED 3)" % bucket)
    assert "unknown COPY option 'speed'" in failed(r)
    assert "line 2, column 3" in failed(r)
    r = tarn_sql(tarn, "COPY (SELECT 1 AS a) TO 's3://%s/x/' (COMPRESSION lzo)" % bucket)
    assert "unknown COMPRESSION 'lzo'" in failed(r)
    r = tarn_sql(tarn, "COPY (SELECT 1 AS a) TO 's3://%s/x/' (PARTITION_BY (b))" % bucket)
    assert "PARTITION_BY column 'b' is not in the query" in failed(r)
    r = tarn_sql(tarn, "COPY (SELECT 1 AS a, 2 AS \"A\") TO 's3://%s/x/'" % bucket)
    assert "'A' appears twice" in failed(r)
    r = tarn_sql(tarn, "COPY (SELECT INTERVAL '1' DAY AS i) TO 's3://%s/x/'" % bucket)
    assert "cannot write column 'i' of type" in failed(r)
    r = tarn_sql(tarn, "COPY (SELECT 1 AS a) TO 's3://no-such-bucket-pqw/x/'")
    assert "no-such-bucket-pqw" in failed(r)
    assert tarnlib.list_all_keys(s3, bucket, Prefix="x/") == []
    # a folder that already holds objects is refused unless told
    r = tarn_sql(tarn, "COPY (SELECT 1 AS a) TO 's3://%s/src/'" % bucket)
    assert "already holds objects" in failed(r)
    assert tarnlib.list_all_keys(s3, bucket, Prefix="src/") == ["src/bad.csv"]
    r = tarn_sql(tarn, "COPY (SELECT 1 AS a) TO 's3://%s/src/' (APPEND)" % bucket)
    assert rows_of(r)[1] == [["1"]]
    keys = tarnlib.list_all_keys(s3, bucket, Prefix="src/")
    assert len(keys) == 2 and keys[1].startswith("src/data_") and keys[1].endswith(".parquet")


def test_too_many_partitions_is_refused(tarn, s3, data):
    b, head, want = data
    r = tarn_sql(tarn, "COPY (%s) TO 's3://%s/many/' (PARTITION_BY (id))" % (QUERY % b, b))
    assert "more than 1000 partitions" in failed(r)
    assert tarnlib.list_all_keys(s3, b, Prefix="many/") == []
    r = tarn_sql(tarn, "COPY (SELECT *, id %% 1000 AS p FROM (%s)) TO 's3://%s/tiny/' "
                       "(PARTITION_BY (p), FILE_SIZE_BYTES 1)" % (QUERY % b, b))
    assert "more than 2000 objects" in failed(r)
    assert tarnlib.list_all_keys(s3, b, Prefix="tiny/") == []


def test_file_size_bound_starts_new_objects(tarn, s3, data, tmp_path):
    b, head, want = data
    r = tarn_sql(tarn, "COPY (%s) TO 's3://%s/split/' (ROW_GROUP_SIZE 500, "
                       "FILE_SIZE_BYTES 20000)" % (QUERY % b, b))
    assert rows_of(r)[1] == [[str(N)]]
    keys = download(s3, b, "split/", tmp_path)
    assert len(keys) > 2
    got = duckdb(["SELECT * REPLACE (price::VARCHAR AS price) FROM 'split/*.parquet' ORDER BY id"], cwd=tmp_path)[0]
    assert got == want


def test_ctas_and_insert_errors_write_nothing(tarn, s3, bucket):
    ctas = ("CREATE TABLE sales WITH (format = 'PARQUET', write_compression = 'ZSTD', "
            "external_location = 's3://%s/t/', partitioned_by = ARRAY['y']) "
            "AS SELECT * FROM (VALUES (1, 2020)) AS t(n, y)" % bucket)
    msg = failed(tarn_sql(tarn, ctas.replace("partitioned_by", "bucketed_by")))
    assert "unsupported table property 'bucketed_by'" in msg
    msg = failed(tarn_sql(tarn, ctas.replace("ARRAY['y']", "ARRAY['z']")))
    assert "PARTITION_BY column 'z' is not in the query" in msg
    msg = failed(tarn_sql(tarn, "INSERT INTO sales SELECT 1, 2020"))
    assert "table 'default.sales' does not exist" in msg
    assert tarnlib.list_all_keys(s3, bucket, Prefix="t/") == []
    # the catalog registers the table (tests/e2e/test_sql_catalog.py has more)
    assert rows_of(tarn_sql(tarn, ctas))[1] == [["1"]]
    assert rows_of(tarn_sql(tarn, "SELECT n, y FROM sales"))[1] == [["1", "2020"]]
    assert rows_of(tarn_sql(tarn, "DROP TABLE sales"))[1] == []


def test_edge_values_round_trip(tarn, s3, bucket, tmp_path):
    long = "\U0001F422" * 80    # 320 bytes, the largest value
    q = ("SELECT * FROM (VALUES "
         "(1, CAST(NULL AS VARCHAR), '', -9223372036854775807, CAST('NaN' AS DOUBLE), "
         "DATE '1969-12-31', TIMESTAMP '1900-01-01 00:00:00.000001', CAST(-1.5 AS DECIMAL(5,2))), "
         "(2, CAST(NULL AS VARCHAR), 'żółw 🐢', 9223372036854775807, CAST('-Infinity' AS DOUBLE), "
         "DATE '2262-04-11', TIMESTAMP '2262-04-11 23:47:16', CAST(999.99 AS DECIMAL(5,2))), "
         "(3, CAST(NULL AS VARCHAR), '%s', 0, -0.5, DATE '0001-01-01', "
         "TIMESTAMP '1970-01-01 00:00:00', CAST(0 AS DECIMAL(5,2)))"
         ") AS t(n, allnull, s, big, d, day, ts, dec)" % long)
    r = tarn_sql(tarn, "COPY (%s) TO 's3://%s/edge.parquet'" % (q, bucket))
    assert rows_of(r)[1] == [["3"]]
    assert download(s3, bucket, "edge.parquet", tmp_path) == ["edge.parquet"]
    got, meta = duckdb([
        "SELECT n, allnull, s, big, d::VARCHAR, day, ts, dec FROM 'edge.parquet' ORDER BY n",
        "SELECT path_in_schema, stats_min_value, stats_max_value, stats_null_count "
        "FROM parquet_metadata('edge.parquet')"], cwd=tmp_path)
    assert got == [
        ["1", None, "", "-9223372036854775807", "nan", "1969-12-31", "1900-01-01 00:00:00.000001",
         "-1.50"],
        ["2", None, "żółw 🐢", "9223372036854775807", "-inf", "2262-04-11",
         "2262-04-11 23:47:16", "999.99"],
        ["3", None, long, "0", "-0.5", "0001-01-01", "1970-01-01 00:00:00", "0.00"]]
    by = {m[0]: m[1:] for m in meta}
    assert by["allnull"] == [None, None, "3"]
    assert by["s"] == [None, None, "0"]          # the max is 320 bytes: no string statistics
    assert by["big"] == ["-9223372036854775807", "9223372036854775807", "0"]
    assert by["d"] == [None, None, "0"]           # a NaN: no bounds to prune on
    assert by["n"] == ["1", "3", "0"]


def test_wide_dictionaries_and_long_runs(tarn, s3, data, tmp_path):
    """Dictionary indices of 10 bits, one-value chunks, boolean and NULL runs."""
    b, head, want = data
    q = ("SELECT id, id %% 1000 AS k, 'v' || CAST(id %% 1000 AS VARCHAR) AS ks, id < 2500 AS lo, "
         "'same' AS one, CASE WHEN id >= 4000 THEN id END AS late FROM (%s)" % (QUERY % b))
    r = tarn_sql(tarn, "COPY (%s) TO 's3://%s/wide.parquet' (COMPRESSION zstd)" % (q, b))
    assert rows_of(r)[1] == [[str(N)]]
    download(s3, b, "wide.parquet", tmp_path)
    got, meta = duckdb([
        "SELECT count(*), sum(k), count(DISTINCT ks), sum(CAST(substr(ks, 2) AS BIGINT)), "
        "sum(lo::INT), count(one), min(one), count(late), sum(late), "
        "bool_and(ks = 'v' || k::VARCHAR) FROM 'wide.parquet'",
        "SELECT path_in_schema, encodings FROM parquet_metadata('wide.parquet')"], cwd=tmp_path)
    s = sum(i % 1000 for i in range(N))
    assert got == [[str(N), str(s), "1000", str(s), "2500", str(N), "same", "1000",
                    str(sum(range(4000, N))), "true"]]
    enc = {m[0]: m[1] for m in meta}
    assert "RLE_DICTIONARY" in enc["k"] and "RLE_DICTIONARY" in enc["ks"]
    assert "RLE_DICTIONARY" in enc["one"]


def test_partitioned_copy_stays_within_a_small_memory_budget(tarn_factory, tmp_path):
    """30 MB of rows into 10 partitions under a 16 MiB query budget: the open
    row groups are written out early instead of failing or growing."""
    srv = tarn_factory(env={"TARN_SQL_MEMORY_MB": "16"})
    s3 = srv.client()
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="n.csv",
                  Body=("n\n" + "".join("%d\n" % i for i in range(5000))).encode())
    q = ("SELECT a.n AS id, b.n AS p, rpad(CAST(a.n AS VARCHAR), 300, 'y') AS s "
         "FROM 's3://lake/n.csv' a CROSS JOIN 's3://lake/n.csv' b WHERE b.n < 20")
    r = tarn_sql(srv, "COPY (%s) TO 's3://lake/big/' (COMPRESSION zstd, PARTITION_BY (p))" % q)
    assert rows_of(r)[1] == [["100000"]]
    keys = download(s3, "lake", "big/", tmp_path)
    assert len(keys) == 20
    got, groups = duckdb([
        "SELECT count(*), count(DISTINCT s), sum(id) FROM 'big/*/*.parquet'",
        "SELECT count(DISTINCT (file_name, row_group_id)) FROM parquet_metadata('big/*/*.parquet')"],
        cwd=tmp_path)
    assert got == [["100000", "5000", str(20 * sum(range(5000)))]]
    # 1.5 MB per partition fits one row group; past half the budget they were cut early
    assert int(groups[0][0]) > 20


def test_many_columns_and_row_groups(tarn, s3, data, tmp_path):
    """Footer lists past 14 entries (the compact protocol's long list header)."""
    b, head, want = data
    cols = ", ".join("id + %d AS c%d" % (k, k) for k in range(20))
    r = tarn_sql(tarn, "COPY (SELECT %s FROM (%s)) TO 's3://%s/many-cols.parquet' "
                       "(ROW_GROUP_SIZE 100)" % (cols, QUERY % b, b))
    assert rows_of(r)[1] == [[str(N)]]
    download(s3, b, "many-cols.parquet", tmp_path)
    got, groups = duckdb([
        "SELECT count(*), sum(c0), sum(c19) FROM 'many-cols.parquet'",
        "SELECT count(DISTINCT row_group_id), count(DISTINCT path_in_schema) "
        "FROM parquet_metadata('many-cols.parquet')"], cwd=tmp_path)
    s = sum(range(N))
    assert got == [[str(N), str(s), str(s + 19 * N)]]
    assert groups == [["50", "20"]]
