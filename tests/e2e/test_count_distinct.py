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
