"""tests/e2e/test_parquet_late.py -- the Parquet reader's shortcuts give the
answers DuckDB gives on the same files.

A top-N over Parquet (ORDER BY key LIMIT n) reads the key column first and
decodes the other columns only for the pages holding rows that can still
enter the result; grouping and filtering on dictionary-encoded columns work
on the dictionary. Both are checked here on files DuckDB wrote -- several row
groups, other columns with NULLs, long strings over many pages, dictionaries
that differ from row group to row group, a chunk that is dictionary-encoded
in one row group and PLAIN in another -- and on a file tarn wrote (pages of
20,000 rows with a page index).

Start reading at test_top_n_matches_duckdb().
"""
import pytest

from duckdb_util import duckdb
from test_parquet_read import assert_rows, ok, put_folder

N = 60000

TABLE = f"""CREATE TABLE t AS SELECT
  i::BIGINT AS id,
  ((i * 7919) % 100003)::BIGINT AS k,
  CASE WHEN i % 13 = 0 THEN NULL ELSE ((i * 104729) % 1000)::BIGINT END AS kn,
  ((i * 7919) % 100003) / 7.0 AS kd,
  (i % 97)::BIGINT AS tie,
  CASE WHEN i % 5 = 0 THEN NULL
       ELSE 'https://example.com/' || i || '/' || repeat(chr((97 + i % 26)::INTEGER), (150 + i % 50)::INTEGER) END AS url,
  CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 0.5)::DOUBLE END AS price,
  -- low cardinality, a different set of values in each row group
  'g' || ((i // 10000) * 3 + i % 4) AS grp,
  -- a dictionary in the first row groups, too many values for one later
  CASE WHEN i < 20000 THEN 'few' || (i % 3) ELSE 'many' || i END AS mixed,
  (2000 + i % 9)::BIGINT AS year
FROM range(0, {N}) r(i)"""

TOPN = [
    "SELECT url, k FROM {t} ORDER BY k DESC LIMIT 10",
    "SELECT url, k, price FROM {t} ORDER BY k LIMIT 7",
    "SELECT id, url, price FROM {t} ORDER BY k DESC LIMIT 5 OFFSET 20",
    "SELECT url, kn, id FROM {t} ORDER BY kn DESC NULLS FIRST, id LIMIT 30",
    "SELECT url, kn, id FROM {t} ORDER BY kn DESC, id LIMIT 30",
    "SELECT url, kn, id FROM {t} ORDER BY kn, id LIMIT 12",
    "SELECT url, kd FROM {t} ORDER BY kd DESC LIMIT 9",
    "SELECT url, tie, id FROM {t} ORDER BY tie DESC, id LIMIT 1000",
    "SELECT url, k FROM {t} WHERE price > 100 ORDER BY k DESC LIMIT 10",
    "SELECT url, k FROM {t} WHERE url LIKE '%/7%' ORDER BY k LIMIT 10",
    "SELECT length(url) AS n, k + 1 AS k1 FROM {t} ORDER BY k DESC LIMIT 4",
    "SELECT url, k FROM {t} ORDER BY k * -1 LIMIT 3",
    "SELECT id, url FROM {t} ORDER BY id DESC LIMIT 3",
    # the first rows of a row group: only the start of its pages is decoded
    "SELECT id, url, price, kd, mixed FROM {t} ORDER BY id LIMIT 4",
    "SELECT url, price, k FROM {t} WHERE id % 10240 < 3000 ORDER BY id DESC LIMIT 5",
    "SELECT mixed, grp, k FROM {t} ORDER BY k DESC LIMIT 6",
]

GROUPS = [
    "SELECT grp, count(*), sum(id), min(mixed) FROM {t} GROUP BY grp ORDER BY grp",
    "SELECT grp, year, count(*), sum(price) FROM {t} GROUP BY grp, year ORDER BY grp, year",
    "SELECT mixed, count(*) FROM {t} GROUP BY mixed ORDER BY 2 DESC, mixed LIMIT 20",
    "SELECT count(*), count(DISTINCT mixed), count(DISTINCT grp) FROM {t}",
    "SELECT count(*), sum(id) FROM {t} WHERE grp = 'g4'",
    "SELECT count(*), sum(id) FROM {t} WHERE grp IN ('g1', 'g17') OR grp > 'g2'",
    "SELECT count(*), sum(id) FROM {t} WHERE mixed = 'few1' OR mixed = 'many59999'",
    "SELECT count(*), sum(price) FROM {t} WHERE year = 2004",
    "SELECT count(*), max(url) FROM {t} WHERE url IS NULL OR price IS NULL",
]


@pytest.fixture(scope="module")
def lake(tarn, s3, tmp_path_factory):
    d = tmp_path_factory.mktemp("pqlate")
    duckdb([TABLE,
            "COPY t TO 'rg.parquet' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 10240)",
            "COPY t TO 'one.parquet' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)",
            "COPY t TO 'v2.parquet' (FORMAT parquet, PARQUET_VERSION V2, ROW_GROUP_SIZE 20480)"],
           cwd=str(d))
    b = "pq-late"
    put_folder(s3, b, str(d))
    # tarn's own writer: pages of 20,000 rows, a page index
    ok(tarn, f"COPY (SELECT * FROM 's3://{b}/rg.parquet' ORDER BY id) TO 's3://{b}/tw/' "
             f"(FORMAT parquet, COMPRESSION snappy)")
    return b, str(d)


FILES = ["rg.parquet", "one.parquet", "v2.parquet"]


def paths(b):
    return [(f, f"'s3://{b}/{f}'") for f in FILES] + [("tw", f"'s3://{b}/tw/*'")]


def test_top_n_matches_duckdb(tarn, lake):
    b, d = lake
    want = duckdb([q.format(t="'rg.parquet'") for q in TOPN], cwd=d)
    for f, path in paths(b):
        for q, w in zip(TOPN, want):
            got = ok(tarn, q.format(t=path))
            assert_rows(got["rows"], w, (f, q))


def test_group_and_filter_on_dictionaries_match_duckdb(tarn, lake):
    b, d = lake
    want = duckdb([q.format(t="'rg.parquet'") for q in GROUPS], cwd=d)
    for f, path in paths(b):
        for q, w in zip(GROUPS, want):
            got = ok(tarn, q.format(t=path))
            assert_rows(got["rows"], w, (f, q))


def test_top_n_reads_less(tarn, lake):
    """The same answer as a full sort, which reads every page."""
    b, _ = lake
    path = f"'s3://{b}/rg.parquet'"
    top = ok(tarn, f"SELECT url, k FROM {path} ORDER BY k DESC LIMIT 10")
    full = ok(tarn, f"SELECT url, k FROM {path} ORDER BY k DESC")
    assert top["rows"] == full["rows"][:10]
