"""tests/e2e/test_count_distinct.py -- count(DISTINCT x) on CSV and JSON lines
over many distinct values (spread over both threads' tables, their partitions
and several table growths), with NULLs, checked against DuckDB on the same
files."""
import io
import json
import random

import pytest

from duckdb_util import duckdb
from test_parquet_read import assert_rows, ok

N = 300000


def rows():
    rnd = random.Random(9)
    for i in range(N):
        k = rnd.randrange(150000)
        yield {
            "id": i,
            "k": None if i % 23 == 0 else k,                 # ~150,000 distinct and NULLs
            "s": None if i % 31 == 1 else "v%05d" % (k % 40000),
            "g": i % 5,
            "d": None if i % 7 == 2 else (k % 997) / 4.0,
        }


@pytest.fixture(scope="module")
def lake(tarn, s3, tmp_path_factory):
    d = tmp_path_factory.mktemp("cd")
    csv_out = io.StringIO()
    csv_out.write("id,k,s,g,d\n")
    json_out = io.StringIO()
    for r in rows():
        csv_out.write(",".join("" if r[c] is None else str(r[c]) for c in ("id", "k", "s", "g", "d"))
                      + "\n")
        json_out.write(json.dumps(r) + "\n")
    b = "count-distinct"
    s3.create_bucket(Bucket=b)
    for name, body in (("t.csv", csv_out.getvalue()), ("t.jsonl", json_out.getvalue())):
        (d / name).write_text(body)
        s3.put_object(Bucket=b, Key=name, Body=body.encode())
    return b, str(d)


QUERIES = [
    "SELECT count(DISTINCT k) FROM {t}",
    "SELECT count(DISTINCT s), count(DISTINCT d) FROM {t}",
    "SELECT count(DISTINCT k), count(*), count(k) FROM {t} WHERE g <> 3",
    "SELECT g, count(DISTINCT k), count(DISTINCT s) FROM {t} GROUP BY g ORDER BY g",
    "SELECT count(DISTINCT k) FROM {t} WHERE k IS NULL",
    "SELECT count(*) FROM (SELECT DISTINCT k, s FROM {t}) x",
    # more groups than a thread's first table holds: groups flushed to the
    # partitions more than once, string min/max and DISTINCT sets moved along
    "SELECT count(*), sum(c), min(mn), max(mx), sum(dg) FROM (SELECT k, count(*) AS c, "
    "min(s) AS mn, max(s) AS mx, count(DISTINCT g) AS dg FROM {t} GROUP BY k) x",
    "SELECT count(*), sum(c), count(DISTINCT s) FROM (SELECT s, d, count(*) AS c FROM {t} "
    "GROUP BY s, d) x",
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_count_distinct_matches_duckdb(tarn, lake, fmt):
    b, d = lake
    duck_t = ("'t.csv'" if fmt == "csv"
              else "read_json_auto('t.jsonl', format='newline_delimited')")
    want = duckdb([q.format(t=duck_t) for q in QUERIES], cwd=d)
    for q, w in zip(QUERIES, want):
        got = ok(tarn, q.format(t="'s3://%s/t.%s'" % (b, fmt)))
        assert_rows(got["rows"], w, (fmt, q))


def test_long_and_mixed_keys_match_duckdb(tarn, s3, tmp_path):
    """count(DISTINCT) and GROUP BY over long string keys (past a thread's
    first table) and a column of mixed numbers and text, against DuckDB"""
    rnd = random.Random(5)
    lines = ["u,m,n"]
    for i in range(40000):
        u = "" if i % 101 == 0 else "%s-%d" % ("x" * rnd.randrange(200, 400), rnd.randrange(36000))
        m = ("%d" % (i % 70), "t%d" % (i % 50), "", "%d.5" % (i % 9))[i % 4]
        lines.append("%s,%s,%d" % (u, m, i % 3))
    body = "\n".join(lines) + "\n"
    (tmp_path / "l.csv").write_text(body)
    s3.create_bucket(Bucket="count-distinct-long")
    s3.put_object(Bucket="count-distinct-long", Key="l.csv", Body=body.encode())
    qs = [
        "SELECT count(DISTINCT u), count(DISTINCT m), count(DISTINCT length(u)) FROM {t}",
        "SELECT m, count(DISTINCT u), count(*) FROM {t} GROUP BY m ORDER BY m NULLS FIRST",
        "SELECT count(*), sum(c), max(length(u)) FROM (SELECT u, n, count(*) AS c FROM {t} "
        "GROUP BY u, n) x",
    ]
    want = duckdb([q.format(t="'l.csv'") for q in qs],
                  cwd=str(tmp_path))
    for q, w in zip(qs, want):
        got = ok(tarn, q.format(t="'s3://count-distinct-long/l.csv'"))
        assert_rows(got["rows"], w, q)
