"""tests/e2e/test_parquet_dict.py -- grouping and filtering on dictionary
codes give the answers DuckDB gives on the same files.

A Parquet column whose data pages all use the chunk's dictionary is kept as
codes: a pushed filter on it is judged once per dictionary entry (and once
for NULL), and GROUP BY on such columns finds a row's group by its codes.
Checked here against DuckDB on files DuckDB wrote: group keys with NULLs
(string and integer, one key and two, a row group where a key is all NULL),
dictionaries that differ from row group to row group, key sets too large for
the code map (the ordinary path), filters that match no dictionary entry,
only NULL, or every entry, LIKE / NOT LIKE / ILIKE on dictionary strings,
expressions over the keys (which are not grouped by code), joins whose
probe key is such a column (hashed once per dictionary entry), and LIKE
'%lit%' over long strings without a dictionary (its own substring search).

Start reading at test_groups_on_codes_match_duckdb().
"""
import pytest

from duckdb_util import duckdb
from test_parquet_read import assert_rows, ok, put_folder

N = 50000

TABLE = f"""CREATE TABLE t AS SELECT
  i::BIGINT AS id,
  -- strings with NULLs; in rows 20000-29999 (row groups of 10000) all NULL
  CASE WHEN i % 11 = 3 OR (i >= 20000 AND i < 30000) THEN NULL
       ELSE 'name_' || chr((97 + (i * 7) % 26)::INTEGER) || (i % 5) END AS s,
  -- integers with NULLs
  CASE WHEN i % 17 = 0 THEN NULL ELSE (1990 + i % 23)::BIGINT END AS y,
  -- a different set of values in each row group
  'g' || ((i // 10000) * 5 + i % 6) AS grp,
  -- two keys whose code product passes the map's size (300 x 120)
  'w' || (i % 300) AS wide,
  (i % 120)::BIGINT AS wide2,
  ((i % 1000) * 0.25)::DOUBLE AS price,
  -- long strings, nearly all distinct (PLAIN): LIKE '%lit%' without a dictionary
  CASE WHEN i % 19 = 0 THEN NULL
       ELSE 'https://example.com/' || i || '/' || repeat(chr((97 + i % 26)::INTEGER), (i % 40)::INTEGER)
            || CASE WHEN i % 7 = 0 THEN '/checkout' ELSE '' END END AS url
FROM range(0, {N}) r(i)"""

QUERIES = [
    # grouping on codes: NULL keys form one group
    "SELECT s, count(*), sum(id), sum(price) FROM {t} GROUP BY s ORDER BY s NULLS FIRST",
    "SELECT y, count(*), min(id), max(s) FROM {t} GROUP BY y ORDER BY y NULLS FIRST",
    "SELECT s, y, count(*), sum(id) FROM {t} GROUP BY s, y ORDER BY s NULLS FIRST, y NULLS FIRST",
    "SELECT grp, s, count(*) FROM {t} GROUP BY grp, s ORDER BY grp, s NULLS FIRST",
    "SELECT y, grp, s, count(*), avg(price) FROM {t} GROUP BY 1, 2, 3 "
    "ORDER BY 1 NULLS FIRST, 2, 3 NULLS FIRST",
    "SELECT wide, wide2, count(*) FROM {t} GROUP BY wide, wide2 ORDER BY 3 DESC, 1, 2 LIMIT 20",
    "SELECT count(*) FROM (SELECT wide, wide2 FROM {t} GROUP BY wide, wide2)",
    "SELECT count(DISTINCT s), count(DISTINCT y), count(DISTINCT grp) FROM {t}",
    "SELECT upper(s) AS u, count(*) FROM {t} GROUP BY upper(s) ORDER BY u NULLS FIRST",
    "SELECT y + 1 AS y1, count(*) FROM {t} GROUP BY y + 1 ORDER BY y1 NULLS FIRST",
    # grouping after a filter (rows selected)
    "SELECT s, count(*) FROM {t} WHERE id % 3 = 0 GROUP BY s ORDER BY s NULLS FIRST",
    "SELECT grp, y, sum(id) FROM {t} WHERE y > 2000 GROUP BY grp, y ORDER BY grp, y",
    # filters on codes
    "SELECT count(*), sum(id) FROM {t} WHERE s = 'name_a0'",
    "SELECT count(*), sum(id) FROM {t} WHERE s = 'nothing like it'",
    "SELECT id, price FROM {t} WHERE s = 'nothing like it'",
    "SELECT id, s FROM {t} WHERE grp = 'g99' ORDER BY id",
    "SELECT count(*), sum(price) FROM {t} WHERE y = 2005",
    "SELECT count(*) FROM {t} WHERE y <> 2005",
    "SELECT count(*), sum(id) FROM {t} WHERE s IS NULL",
    "SELECT count(*), sum(id) FROM {t} WHERE s IS NOT NULL",
    "SELECT count(*) FROM {t} WHERE coalesce(s, 'none') = 'none'",
    "SELECT count(*) FROM {t} WHERE y IS NULL OR y < 1995",
    "SELECT count(*), sum(id) FROM {t} WHERE grp IN ('g1', 'g7', 'g23')",
    "SELECT count(*) FROM {t} WHERE s > 'name_m'",
    # LIKE on dictionary strings
    "SELECT count(*), sum(id) FROM {t} WHERE s LIKE '%e_b%'",
    "SELECT count(*) FROM {t} WHERE s NOT LIKE 'name_a%'",
    "SELECT count(*) FROM {t} WHERE s LIKE '%zzz%'",
    "SELECT count(*) FROM {t} WHERE s ILIKE 'NAME_C%'",
    "SELECT s, count(*) FROM {t} WHERE s LIKE '%3' GROUP BY s ORDER BY s",
    "SELECT y, count(*) FROM {t} WHERE s LIKE 'name_b%' AND y >= 2000 GROUP BY y ORDER BY y",
    # LIKE '%lit%' over long strings: literals of 1, 2, 3 and more bytes, found at the
    # start, the end, across 16-byte blocks, and nowhere
    "SELECT count(*) FROM {t} WHERE url LIKE '%checkout%'",
    "SELECT count(*) FROM {t} WHERE url LIKE '%/checkout'",
    "SELECT count(*) FROM {t} WHERE url LIKE '%q%'",
    "SELECT count(*) FROM {t} WHERE url LIKE '%zz%'",
    "SELECT count(*) FROM {t} WHERE url LIKE '%https%'",
    "SELECT count(*) FROM {t} WHERE url LIKE '%com/4%'",
    "SELECT count(*) FROM {t} WHERE url LIKE '%7/hhhhhhhhhhhhhhhhh%'",
    "SELECT count(*) FROM {t} WHERE url LIKE '%example.com/49999/%'",
    "SELECT count(*) FROM {t} WHERE url NOT LIKE '%t/%'",
    "SELECT count(*) FROM {t} WHERE url LIKE '%not there at all%'",
    # joins on a dictionary-coded key (NULL keys never match)
    "SELECT a.s, count(*), sum(b.n) FROM {t} a JOIN (SELECT s, count(*) AS n FROM {t} "
    "WHERE id < 300 GROUP BY s) b ON a.s = b.s GROUP BY a.s ORDER BY a.s NULLS FIRST",
    "SELECT count(*) FROM {t} a LEFT JOIN (SELECT DISTINCT y FROM {t} WHERE y < 2000) b "
    "ON a.y = b.y WHERE b.y IS NULL",
]


@pytest.fixture(scope="module")
def lake(tarn, s3, tmp_path_factory):
    d = tmp_path_factory.mktemp("pqdict")
    duckdb([TABLE,
            "COPY t TO 'rg.parquet' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 10000)",
            "COPY t TO 'v2.parquet' (FORMAT parquet, PARQUET_VERSION V2, ROW_GROUP_SIZE 20000)"],
           cwd=str(d))
    b = "pq-dict"
    put_folder(s3, b, str(d))
    return b, str(d)


def test_groups_on_codes_match_duckdb(tarn, lake):
    b, d = lake
    want = duckdb([q.format(t="'rg.parquet'") for q in QUERIES], cwd=d)
    for f in ("rg.parquet", "v2.parquet"):
        for q, w in zip(QUERIES, want):
            got = ok(tarn, q.format(t=f"'s3://{b}/{f}'"))
            assert_rows(got["rows"], w, (f, q))


def test_dictionary_columns_are_dictionary_encoded(lake):
    """The fixture exercises the code paths: DuckDB wrote the keys with
    dictionaries (else the checks above would test the ordinary path)."""
    _, d = lake
    rows = duckdb(["SELECT path_in_schema, bool_and(encodings LIKE '%DICTIONARY%') "
                   "FROM parquet_metadata('rg.parquet') GROUP BY 1 ORDER BY 1"], cwd=d)[0]
    enc = {r[0]: r[1] for r in rows}
    for c in ("s", "y", "grp", "wide", "wide2"):
        assert enc[c] in (True, "true", "True"), (c, enc)
