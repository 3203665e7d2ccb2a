"""tests/e2e/test_parquet_pageindex.py -- page indexes (ColumnIndex /
OffsetIndex): tarn's writer emits them after the last row group, DuckDB still
reads what tarn wrote (and gives the same answers), and tarn's reader skips
the pages whose min/max cannot match a filter, reading only the page ranges
it needs -- proven by the bytes scanned the endpoint reports."""
import io
import json
import subprocess

import pytest

import tarnlib
from duckdb_util import duckdb
from test_parquet_read import assert_rows, ok

N = 100000          # one row group; the writer cuts pages every 20,000 rows


def source_csv():
    out = io.StringIO()
    out.write("id,grp,name,late,price\n")
    for i in range(N):
        late = "" if i < 40000 else str(i % 1000)        # two pages of NULLs only
        price = "" if i % 17 == 3 else "%d.25" % (i % 500)
        out.write("%d,%d,n%d,%s,%s\n" % (i, i % 7, i % 100, late, price))
    return out.getvalue()


@pytest.fixture(scope="module")
def lake(tarn, s3, tmp_path_factory):
    d = tmp_path_factory.mktemp("pqi")
    b = "pq-pageindex"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="src/data.csv", Body=source_csv().encode())
    q = ("COPY (SELECT * FROM read_csv('s3://%s/src/data.csv', columns='id BIGINT, grp BIGINT, "
         "name VARCHAR, late BIGINT, price DOUBLE') ORDER BY id) TO 's3://%s/t/' "
         "(FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 1000000)" % (b, b))
    ok(tarn, q)
    keys = tarnlib.list_all_keys(s3, b, Prefix="t/")
    assert len(keys) == 1, keys
    body = s3.get_object(Bucket=b, Key=keys[0])["Body"].read()
    (d / "t.parquet").write_bytes(body)
    return b, str(d), "'s3://%s/%s'" % (b, keys[0]), len(body)


def test_duckdb_reads_what_tarn_wrote_with_a_page_index(tarn, lake):
    b, d, path, size = lake
    meta = duckdb(["SELECT count(*), min(num_values), sum(num_values) FROM "
                   "parquet_metadata('t.parquet')",
                   "SELECT count(*), sum(id), sum(price), count(late), count(DISTINCT name) "
                   "FROM 't.parquet'"], cwd=d)
    assert meta[0][0][0] == "5"          # one row group, five columns
    got = ok(tarn, f"SELECT count(*), sum(id), sum(price), count(late), "
                   f"count(DISTINCT name) FROM {path}")
    assert_rows(got["rows"], meta[1], "whole file")


QUERIES = [
    "WHERE id BETWEEN 41000 AND 42000",
    "WHERE id >= 99990",
    "WHERE id < 5 OR id > 99995",                     # not a conjunction: no pruning
    "WHERE id >= 20000 AND id < 20001",               # on a page boundary
    "WHERE id > 30000 AND grp = 3 AND id <= 30100",
    "WHERE late IS NULL AND id > 39990",
    "WHERE late > 990",                               # the NULL pages are skipped
    "WHERE name = 'n42' AND id < 100",
    "WHERE id > 200000",
]


def test_filtered_results_match_duckdb(tarn, lake):
    b, d, path, size = lake
    sel = "count(*), sum(id), sum(price), min(name), max(late), count(late)"
    stmts = []
    for where in QUERIES:
        stmts.append(f"SELECT {sel} FROM 't.parquet' {where}")
        stmts.append(f"SELECT id, name, late, price FROM 't.parquet' {where} ORDER BY id LIMIT 50")
    want = duckdb(stmts, cwd=d)
    for k, where in enumerate(QUERIES):
        got = ok(tarn, f"SELECT {sel} FROM {path} {where}")
        assert_rows(got["rows"], want[2 * k], where)
        rows = ok(tarn, f"SELECT id, name, late, price FROM {path} {where} ORDER BY id LIMIT 50")
        assert_rows(rows["rows"], want[2 * k + 1], where)


def test_pages_outside_the_filter_are_not_read(tarn, lake):
    b, d, path, size = lake
    scanned = lambda q: ok(tarn, q)["stats"]["bytes_scanned"]   # noqa: E731
    cols = "sum(price), min(name), max(late)"
    every = scanned(f"SELECT {cols} FROM {path} WHERE id >= 0")
    one_page = scanned(f"SELECT {cols} FROM {path} WHERE id BETWEEN 41000 AND 42000")
    none = scanned(f"SELECT {cols} FROM {path} WHERE id > 200000")
    # statistics of the row group already rule the last one out: only the footer
    assert none < 4096, none
    # five pages per column: one of them (and the dictionary pages, the index)
    assert every <= size
    assert one_page < every / 3, (one_page, every)
    # NULL-only pages of `late` (rows 0..39999): no comparison on it is true there, so
    # the other columns' pages of those rows are not read either (an OR prunes nothing)
    late = scanned(f"SELECT sum(price) FROM {path} WHERE late > 990")
    late_all = scanned(f"SELECT sum(price) FROM {path} WHERE late IS NULL OR late > 990")
    assert late < late_all * 0.8, (late, late_all)
    # a filter on a column in no order prunes nothing, and still answers right
    grp = scanned(f"SELECT {cols} FROM {path} WHERE grp = 3")
    grp_all = scanned(f"SELECT {cols} FROM {path} WHERE grp >= 0")
    assert grp >= grp_all * 0.95, (grp, grp_all)
