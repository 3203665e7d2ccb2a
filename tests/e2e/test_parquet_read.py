"""tests/e2e/test_parquet_read.py -- SQL over Parquet objects, end to end.

DuckDB (tests/e2e/duckdb_util.py) writes the fixtures -- one table of every
common type, in each codec, in data pages v1 and v2 (which bring the DELTA
encodings), with small row groups -- and computes the expected answer of
each query on the same files; the files are put with boto3 and the queries
POSTed to /_tarn/sql. Pruning is checked the way a user sees it: the bytes
scanned the endpoint reports. Damaged objects must give an error naming
the object, and the server must go on answering.

Start reading at test_codecs_and_encodings_match_duckdb().
"""
import math
import os
import re

import pytest
import requests

from duckdb_util import duckdb

N = 6000
CODECS = ["uncompressed", "snappy", "gzip", "zstd", "lz4", "brotli"]

# the table: every flat type the reader maps, NULLs, non-ASCII strings, nested fields
TABLE = f"""CREATE TABLE t AS SELECT
  i::BIGINT AS id,
  (i * 7 - 20000)::INTEGER AS i32,
  (i % 200)::SMALLINT AS small,
  (i % 250)::UTINYINT AS u8,
  (i * 700001)::UINTEGER AS u32,
  (i * 0.25 - 100)::DOUBLE AS d,
  (i * 0.5)::FLOAT AS f,
  CASE WHEN i % 11 = 0 THEN NULL ELSE 'näme-' || (i % 300) || repeat('x', i % 5) END AS s,
  (i % 3 = 0) AS flag,
  DATE '2020-02-27' + (i % 1000)::INT AS dt,
  TIMESTAMP '2023-12-31 23:00:00' + INTERVAL (i * 61) SECOND AS ts,
  (TIMESTAMP '2001-01-01 00:00:00.123' + INTERVAL (i) MINUTE)::TIMESTAMP_MS AS ts_ms,
  (TIMESTAMP '2001-01-01 00:00:00' + INTERVAL (i * 1001) MICROSECOND)::TIMESTAMP_NS AS ts_ns,
  (i / 100.0 - 7)::DECIMAL(10,2) AS dec,
  (i % 999 / 10.0)::DECIMAL(4,1) AS dec4,
  (i * 123456789.0 - 5)::DECIMAL(18,3) AS dec18,
  (i::HUGEINT * 1000000000000 + 7)::DECIMAL(30,2) AS dec30,
  CASE WHEN i % 13 = 0 THEN NULL ELSE [i, i + 1, NULL] END AS lst,
  {{'x': i, 'name': 'n' || (i % 7), 'tags': ['a', 'b']}} AS st,
  MAP {{'k': i % 5}} AS m
FROM range(0, {N}) r(i)"""

FLAT = "id, i32, small, u8, u32, d, f, s, flag, dt, ts, ts_ms, ts_ns, dec, dec4, dec18, dec30"


def sql(tarn, text, timeout=60):
    return tarn.request("POST", "/_tarn/sql", headers={"Accept": "application/json"},
                        body=text.encode("utf-8"), timeout=timeout)


def ok(tarn, text):
    r = sql(tarn, text)
    assert r.status_code == 200, (text, r.status_code, r.text[:800])
    return r.json()


def text_of(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def same(a, b):
    """tarn's JSON cell a against DuckDB's text b: numbers with a tolerance,
    everything else exactly."""
    a = text_of(a)
    if a is None or b is None:
        return a is None and b is None
    if a == b:
        return True
    if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+", a):
        return a.rstrip("0").rstrip(".") == b.rstrip("0").rstrip(".")
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)


def put_folder(s3, bucket, folder):
    """Creates the bucket and puts every file of the folder into it under
    its name."""
    s3.create_bucket(Bucket=bucket)
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as fh:
            s3.put_object(Bucket=bucket, Key=name, Body=fh.read())


def assert_rows(got, want, what):
    assert len(got) == len(want), (what, len(got), len(want))
    for g, w in zip(got, want):
        bad = [(k, x, y) for k, (x, y) in enumerate(zip(g, w)) if not same(x, y)]
        assert len(g) == len(w) and not bad, (what, bad, g, w)


@pytest.fixture(scope="module")
def lake(tarn, s3, tmp_path_factory):
    """Writes the fixtures with DuckDB, puts them in a bucket; returns
    (bucket, folder)."""
    d = tmp_path_factory.mktemp("pq")
    stmts = ["SET TimeZone = 'UTC'", TABLE]
    for c in CODECS:
        stmts.append(f"COPY t TO 'c_{c}.parquet' (FORMAT parquet, COMPRESSION {c}, "
                     "ROW_GROUP_SIZE 2048)")
    stmts.append("COPY t TO 'v2.parquet' (FORMAT parquet, PARQUET_VERSION V2, "
                 "COMPRESSION zstd, ROW_GROUP_SIZE 2048)")
    # sorted row groups for pruning (DuckDB cuts them at multiples of 2048 rows: 2048 +
    # 952 rows per file), two files under a folder tree
    stmts.append("COPY (SELECT * FROM t WHERE id < 3000) TO 'p1.parquet' "
                 "(FORMAT parquet, ROW_GROUP_SIZE 2048)")
    stmts.append("COPY (SELECT * FROM t WHERE id >= 3000) TO 'p2.parquet' "
                 "(FORMAT parquet, ROW_GROUP_SIZE 2048)")
    stmts.append("COPY (SELECT id, s, ts::TIMESTAMPTZ AS tz FROM t) TO 'tz.parquet' "
                 "(FORMAT parquet)")
    # files of one table that differ: columns in another order, one missing, one more,
    # and one with another type
    stmts.append("COPY (SELECT id, s, d FROM t WHERE id < 10) TO 'evo_a.parquet' (FORMAT parquet)")
    stmts.append("COPY (SELECT d, 'extra' AS x, id FROM t WHERE id >= 10 AND id < 15) "
                 "TO 'evo_b.parquet' (FORMAT parquet)")
    stmts.append("COPY (SELECT id::VARCHAR AS id FROM t WHERE id < 3) TO 'evo_c.parquet' "
                 "(FORMAT parquet)")
    duckdb(stmts, cwd=str(d))
    b = "pq-read"
    s3.create_bucket(Bucket=b)
    for name in sorted(os.listdir(d)):
        key = {"p1.parquet": "parts/year=2024/a.parquet",
               "p2.parquet": "parts/year=2025/deep/b.parquet",
               "evo_a.parquet": "evo/a.parquet", "evo_b.parquet": "evo/b.parquet",
               "evo_c.parquet": "evo_bad/c.parquet"}.get(name, name)
        with open(os.path.join(d, name), "rb") as fh:
            s3.put_object(Bucket=b, Key=key, Body=fh.read())
    # the same bytes without the .parquet name: found by the PAR1 magic
    with open(os.path.join(d, "c_snappy.parquet"), "rb") as fh:
        s3.put_object(Bucket=b, Key="noext/data", Body=fh.read())
    return b, str(d)


def test_codecs_and_encodings_match_duckdb(tarn, lake):
    b, d = lake
    q = f"SELECT {FLAT} FROM {{t}} WHERE id % 97 = 5 OR id < 3 ORDER BY id"
    agg = ("SELECT count(*), count(s), sum(id), sum(i32), sum(d), sum(dec), min(s), max(s), "
           "min(ts), max(ts_ns), count_if(flag), sum(u32), max(dt) FROM {t}")
    files = [f"c_{c}.parquet" for c in CODECS] + ["v2.parquet"]
    stmts = ["SET TimeZone = 'UTC'"]
    for f in files:
        stmts.append(q.format(t=f"'{f}'"))
        stmts.append(agg.format(t=f"'{f}'"))
    want = duckdb(stmts, cwd=d)[1:]
    for k, f in enumerate(files):
        path = f"'s3://{b}/{f}'"
        got = ok(tarn, q.format(t=path))
        assert [c["name"] for c in got["columns"]] == FLAT.split(", ")
        assert_rows(got["rows"], want[2 * k], f)
        assert_rows(ok(tarn, agg.format(t=path))["rows"], want[2 * k + 1], f + " aggregates")


def test_types_as_the_engine_sees_them(tarn, lake):
    b, _ = lake
    got = ok(tarn, f"SELECT typeof(id), typeof(i32), typeof(d), typeof(s), typeof(flag), "
                   f"typeof(dt), typeof(ts), typeof(ts_ns), typeof(dec), typeof(dec30), "
                   f"typeof(lst) FROM 's3://{b}/c_snappy.parquet' LIMIT 1")
    assert got["rows"][0] == ["bigint", "bigint", "double", "varchar", "boolean", "date",
                              "timestamp", "timestamp", "decimal(10,2)", "varchar", "varchar"]
    # DECIMAL arithmetic stays exact; a 30-digit decimal is its exact text
    got = ok(tarn, f"SELECT dec * 2, dec30 FROM 's3://{b}/c_zstd.parquet' WHERE id = 5999")
    assert got["rows"][0][1] == "5999000000000007.00"
    assert text_of(got["rows"][0][0]) in ("105.98", "105.980")


def test_nested_fields_are_json(tarn, lake):
    b, d = lake
    want = duckdb([f"SELECT id, to_json(lst)::VARCHAR, to_json(st)::VARCHAR, "
                   f"to_json(m)::VARCHAR, st.name FROM 'v2.parquet' WHERE id IN (0, 1, 26, 5999) "
                   f"ORDER BY id"], cwd=d)[0]
    for f in ("v2.parquet", "c_gzip.parquet"):
        got = ok(tarn, f"SELECT id, lst, st, m, json_extract_scalar(st, '$.name') "
                       f"FROM 's3://{b}/{f}' WHERE id IN (0, 1, 26, 5999) ORDER BY id")
        assert_rows(got["rows"], want, f)


def test_glob_read_parquet_and_magic(tarn, lake):
    b, d = lake
    want = duckdb(["SELECT count(*), sum(id), min(id), max(id) FROM 'c_snappy.parquet'"],
                  cwd=d)[0]
    got = ok(tarn, f"SELECT count(*), sum(id), min(id), max(id) "
                   f"FROM read_parquet('s3://{b}/parts/**/*.parquet')")
    assert_rows(got["rows"], want, "glob")
    got = ok(tarn, f"SELECT count(*), sum(id), min(id), max(id) FROM 's3://{b}/noext/data'")
    assert_rows(got["rows"], want, "magic")
    # a zoned timestamp is its UTC instant
    got = ok(tarn, f"SELECT count(*) FROM 's3://{b}/tz.parquet' a JOIN 's3://{b}/c_snappy.parquet'"
                   f" b USING (id) WHERE a.tz = b.ts")
    assert got["rows"] == [[N]]


def test_files_of_one_table_may_differ(tarn, s3, lake):
    b, d = lake
    got = ok(tarn, f"SELECT id, s, d FROM 's3://{b}/evo/*.parquet' WHERE id IN (3, 11) "
                   f"ORDER BY id")
    want = duckdb(["SELECT id, s, d FROM 'evo_a.parquet' WHERE id = 3"], cwd=d)[0]
    assert_rows(got["rows"][:1], want, "evo a")
    assert got["rows"][1][0] == 11 and got["rows"][1][1] is None
    assert got["columns"][2]["name"] == "d"
    s3.copy_object(Bucket=b, Key="evo_bad/a.parquet", CopySource={"Bucket": b, "Key": "evo/a.parquet"})
    r = sql(tarn, f"SELECT count(*) FROM 's3://{b}/evo_bad/*.parquet' WHERE id > 0")
    assert r.status_code == 400, r.text[:300]
    assert "evo_bad/c.parquet" in r.json()["message"] and "'id'" in r.json()["message"]


def test_projection_and_pruning_by_bytes_scanned(tarn, lake):
    b, d = lake
    size = os.path.getsize(os.path.join(d, "c_uncompressed.parquet"))
    path = f"'s3://{b}/c_uncompressed.parquet'"
    one = ok(tarn, f"SELECT sum(id) FROM {path}")["stats"]["bytes_scanned"]
    two = ok(tarn, f"SELECT sum(id), max(s) FROM {path}")["stats"]["bytes_scanned"]
    every = ok(tarn, f"SELECT * FROM {path}")["stats"]["bytes_scanned"]
    assert one < two < every <= size
    assert one < size / 8   # one column of 20, and the footer
    # row groups of 2048 rows (0-2047, 2048-4095, 4096-5999): id >= 4500 reads the last
    lo = ok(tarn, f"SELECT count(*), sum(d) FROM {path} WHERE id >= 0")
    hi = ok(tarn, f"SELECT count(*), sum(d) FROM {path} WHERE id >= 4500")
    nothing = ok(tarn, f"SELECT count(*), sum(d) FROM {path} WHERE id > 100000")
    want = duckdb(["SELECT count(*), sum(d) FROM 'c_snappy.parquet' WHERE id >= 4500"], cwd=d)[0]
    assert_rows(hi["rows"], want, "pruned")
    assert lo["rows"][0][0] == N and nothing["rows"] == [[0, None]]
    footer = nothing["stats"]["bytes_scanned"]
    a, b2 = lo["stats"]["bytes_scanned"] - footer, hi["stats"]["bytes_scanned"] - footer
    assert 0 < b2 < a / 2.5, (a, b2, footer)
    # no statistics for unsigned columns: the filter column is read in every group, the
    # other columns only in the group where a row passes
    every = ok(tarn, f"SELECT * FROM {path} WHERE u32 >= 0")
    one_row = ok(tarn, f"SELECT id, s FROM {path} WHERE u32 = {5000 * 700001}")
    one_all = ok(tarn, f"SELECT * FROM {path} WHERE u32 = {5000 * 700001}")
    assert one_row["rows"] == [[5000, "näme-200"]]
    assert len(every["rows"]) == N and len(one_all["rows"]) == 1
    assert one_all["stats"]["bytes_scanned"] < every["stats"]["bytes_scanned"] / 2
    # a value inside the min/max of every group but in no dictionary: only the
    # dictionary pages are read; filters true on NULL still see the NULLs
    miss = ok(tarn, f"SELECT count(*), max(id) FROM {path} WHERE s = 'näme-1'")
    hit = ok(tarn, f"SELECT count(*), max(id) FROM {path} WHERE s = 'näme-1x'")
    nul = ok(tarn, f"SELECT count(*) FROM {path} WHERE coalesce(s, 'q') = 'q'")
    want = duckdb(["SELECT count(*), max(id) FROM 'c_snappy.parquet' WHERE s = 'näme-1x'",
                   "SELECT count(*) FROM 'c_snappy.parquet' WHERE s IS NULL"], cwd=d)
    assert miss["rows"] == [[0, None]]
    assert_rows(hit["rows"], want[0], "dictionary hit")
    assert_rows(nul["rows"], want[1], "NULLs")
    assert miss["stats"]["bytes_scanned"] < hit["stats"]["bytes_scanned"] / 3
    # two files (DuckDB made one group each): the first is skipped
    glob = f"read_parquet('s3://{b}/parts/**/*.parquet')"
    full = ok(tarn, f"SELECT count(*), sum(d) FROM {glob} WHERE id >= 0")
    some = ok(tarn, f"SELECT count(*), sum(d) FROM {glob} WHERE id >= 5500")
    want = duckdb(["SELECT count(*), sum(d) FROM 'c_snappy.parquet' WHERE id >= 5500"], cwd=d)[0]
    assert_rows(some["rows"], want, "pruned glob")
    none = ok(tarn, f"SELECT count(*), sum(d) FROM {glob} WHERE id > 100000")
    footers = none["stats"]["bytes_scanned"]
    fs, ss = full["stats"]["bytes_scanned"] - footers, some["stats"]["bytes_scanned"] - footers
    assert 0 < ss < fs * 0.6, (ss, fs, footers)
    assert ok(tarn, f"SELECT count(*) FROM {glob} WHERE id = 10")["rows"] == [[1]]


def test_damaged_objects_give_clear_errors(tarn, s3, lake):
    b, d = lake
    with open(os.path.join(d, "c_snappy.parquet"), "rb") as fh:
        good = fh.read()
    cases = {
        "bad/truncated.parquet": (good[: len(good) // 2], "does not end with the magic"),
        "bad/footer.parquet": (good[:-8] + (len(good) * 2).to_bytes(4, "little") + b"PAR1",
                               "footer of"),
        "bad/random.parquet": (bytes((i * 7919 + 13) % 256 for i in range(5000)),
                               "not a Parquet file"),
        "bad/garbled.parquet": (good[:-400] + bytes(392) + good[-8:], "corrupt Parquet"),
        "bad/tiny.parquet": (b"PAR1", "not a Parquet file"),
    }
    for key, (body, what) in cases.items():
        s3.put_object(Bucket=b, Key=key, Body=body)
        r = sql(tarn, f"SELECT count(*), max(s) FROM 's3://{b}/{key}'")
        assert r.status_code == 400, (key, r.status_code, r.text[:300])
        msg = r.json()["message"]
        assert key in msg and what in msg, (key, msg)
    # damaged pages in the middle: an error naming the object, not a crash
    mid = bytearray(good)
    for k in range(1000, len(good) - 3000, 97):
        mid[k] ^= 0x5A
    s3.put_object(Bucket=b, Key="bad/pages.parquet", Body=bytes(mid))
    r = sql(tarn, f"SELECT * FROM 's3://{b}/bad/pages.parquet'")
    assert r.status_code in (200, 400), r.text[:300]
    if r.status_code == 400:
        assert "bad/pages.parquet" in r.json()["message"]
    health = requests.get(tarn.endpoint + "/_tarn/health", timeout=10)
    assert health.status_code == 200
    assert ok(tarn, f"SELECT count(*) FROM 's3://{b}/c_zstd.parquet'")["rows"] == [[N]]
