"""tests/e2e/test_sql_types.py -- CSV and JSON lines type detection never
changes the data; upper/lower map Unicode case.

Objects put with boto3, queries POSTed to /_tarn/sql. Rules (see
fmt_guess_type in src/formats/column.h): a value whose meaning or text a
type would change stays VARCHAR. Where DuckDB's sniffer makes the same
choice, the test asks DuckDB (tests/e2e/duckdb_util.py) over the same bytes
and compares; where tarn is stricter than DuckDB the test says so.
"""
import json
import os

import pytest

import duckdb_util

IDS = "id,name\n000042,ann\n000007,bob\n120,cy\n"
ORDERS = "order_id,cust\n1,000042\n2,000042\n3,120\n"

# value -> (tarn's type, DuckDB's type); equal where tarn follows DuckDB
CASES = {
    "000042": ("varchar", "VARCHAR"),
    "00.5": ("varchar", "VARCHAR"),
    "+5": ("varchar", "VARCHAR"),
    "1,000": ("varchar", "VARCHAR"),
    "1.50": ("double", "DOUBLE"),
    "2024-01-05": ("date", "DATE"),
    "42": ("bigint", "BIGINT"),
    # stricter than DuckDB: it reads these as numbers or dates, changing them
    "-007": ("varchar", "BIGINT"),
    "1e3": ("varchar", "DOUBLE"),
    "0x1F": ("varchar", "BIGINT"),
    "  7": ("varchar", "BIGINT"),
    "99999999999999999999": ("varchar", "DOUBLE"),
    "2024-1-5": ("varchar", "DATE"),
}


def name_of(value):
    return "case-%s-%d" % ("".join(c if c.isalnum() else "_" for c in value),
                           sum(map(ord, value)) % 997)


@pytest.fixture(scope="module")
def lake(tarn, s3):
    b = "types-e2e"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="ids.csv", Body=IDS.encode())
    s3.put_object(Bucket=b, Key="orders.csv", Body=ORDERS.encode())
    for v in CASES:
        s3.put_object(Bucket=b, Key=name_of(v) + ".csv", Body=csv_of(v).encode())
    s3.put_object(Bucket=b, Key="ids.jsonl",
                  Body=b'{"id":"000042","n":99999999999999999999,"d":"2024-1-5","e":"2024-01-05"}\n')
    return b


def csv_of(value):
    field = '"%s"' % value if "," in value else value
    return "v\n%s\n%s\n" % (field, field)


def sql(tarn, query):
    r = tarn.request("POST", "/_tarn/sql", headers={"Accept": "application/json"},
                     body=query.encode(), timeout=60)
    doc = json.loads(r.text)
    assert r.status_code == 200, doc
    return doc


def test_leading_zero_ids_round_trip(tarn, lake):
    doc = sql(tarn, "SELECT * FROM 's3://%s/ids.csv' ORDER BY name" % lake)
    assert doc["columns"][0]["type"].lower() == "varchar"
    assert [r[0] for r in doc["rows"]] == ["000042", "000007", "120"]
    doc = sql(tarn, "SELECT name FROM 's3://%s/ids.csv' WHERE id = '000042'" % lake)
    assert doc["rows"] == [["ann"]]
    doc = sql(tarn, "SELECT o.order_id, i.id, i.name FROM 's3://%s/orders.csv' o "
                    "JOIN 's3://%s/ids.csv' i ON o.cust = i.id ORDER BY o.order_id" % (lake, lake))
    assert doc["rows"] == [[1, "000042", "ann"], [2, "000042", "ann"], [3, "120", "cy"]]
    # and in CSV output
    r = tarn.request("POST", "/_tarn/sql", headers={"Accept": "text/csv"},
                     body=("SELECT id FROM 's3://%s/ids.csv' WHERE name = 'bob'" % lake).encode())
    assert r.status_code == 200 and r.text.split() == ["id", "000007"]


@pytest.mark.parametrize("value", list(CASES))
def test_edge_case_types(tarn, lake, value, tmp_path):
    want_tarn, want_duckdb = CASES[value]
    doc = sql(tarn, "SELECT v, typeof(v) FROM 's3://%s/%s.csv' LIMIT 1" % (lake, name_of(value)))
    assert doc["rows"][0][1] == want_tarn
    if want_tarn == "varchar":
        assert doc["rows"][0][0] == value  # the text as written
    if want_tarn == want_duckdb.lower():
        (tmp_path / "x.csv").write_text(csv_of(value))
        got = duckdb_util.duckdb(["SELECT typeof(v) FROM read_csv('x.csv') LIMIT 1"],
                                 cwd=str(tmp_path))[0]
        assert got == [[want_duckdb]]


def test_json_lines_keep_text(tarn, lake):
    doc = sql(tarn, "SELECT id, n, d, e, typeof(n), typeof(d), typeof(e) "
                    "FROM 's3://%s/ids.jsonl'" % lake)
    assert doc["rows"] == [["000042", "99999999999999999999", "2024-1-5", "2024-01-05",
                            "varchar", "varchar", "date"]]


def test_a_later_row_with_leading_zeros_is_an_error_not_a_new_value(tarn, lake, s3):
    # the sample says BIGINT; a value further on that BIGINT would change is refused
    body = "id\n" + "".join("%d\n" % (i + 1) for i in range(200000)) + "000042\n"
    s3.put_object(Bucket=lake, Key="late/ids.csv", Body=body.encode())
    r = tarn.request("POST", "/_tarn/sql", headers={"Accept": "application/json"},
                     body=("SELECT max(id) FROM 's3://%s/late/ids.csv'" % lake).encode())
    doc = json.loads(r.text.strip().splitlines()[-1] if r.status_code == 200 else r.text)
    text = json.dumps(doc)
    assert "000042" in text and "BIGINT" in text.upper()
    # a declared type converts as asked
    doc = sql(tarn, "SELECT max(id), min(id) FROM read_csv('s3://%s/late/ids.csv', header=true, "
                    "columns='id BIGINT')" % lake)
    assert doc["rows"] == [[200000, 1]]


def test_upper_lower_unicode(tarn, lake):
    doc = sql(tarn, "SELECT upper('café'), lower('ÀÉÎ'), upper('ß'), lower('ΣΑΣ'), "
                    "upper('İstanbul'), lower('İ'), length(upper('ı'))")
    # simple case mappings, as Presto/Trino (Java's Character.toUpperCase per code point)
    assert doc["rows"] == [["CAFÉ", "àéî", "ß", "σασ", "İSTANBUL", "i", 1]]
