"""tests/e2e/test_sql_cli.py -- `tarn sql` against a real server: the three
output formats, the statistics line, statements from stdin, and errors that
name the line and column with a non-zero exit."""
import csv
import io
import json
import os
import subprocess

import tarnlib

SALES = ("custid,year,gram,count,price\n"
         "1,2020,cheese,3,1.5\n"
         "2,2021,bread,4,2.5\n"
         "1,2021,\"jam, plum\",,3.0\n")


def tarn_sql(tarn, *args, stdin=None):
    env = tarnlib.clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_ACCESS_KEY=tarn.access_key,
               TARN_SECRET_KEY=tarn.secret_key)
    return subprocess.run([tarnlib.TARN_BIN, "sql"] + list(args), env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def put_sales(s3, bucket):
    s3.put_object(Bucket=bucket, Key="raw/a.csv", Body=SALES.encode())


def test_csv_output_is_rfc4180_with_header(tarn, s3, bucket):
    put_sales(s3, bucket)
    r = tarn_sql(tarn, "--format", "csv",
                 "SELECT custid, gram, count FROM 's3://%s/raw/*.csv' ORDER BY price" % bucket)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows == [["custid", "gram", "count"], ["1", "cheese", "3"], ["2", "bread", "4"],
                    ["1", "jam, plum", ""]]
    assert '"jam, plum"' in r.stdout          # quoted because it holds the delimiter
    assert "3 rows" in r.stderr and "scanned" in r.stderr and "$" in r.stderr


def test_table_output_aligns_and_shows_null(tarn, s3, bucket):
    put_sales(s3, bucket)
    r = tarn_sql(tarn, "SELECT custid, sum(count) AS n FROM 's3://%s/raw/*.csv' "
                       "GROUP BY custid ORDER BY custid" % bucket)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].split("|")[1].strip() == "custid"
    assert [l.split("|")[2].strip() for l in lines[3:5]] == ["3", "4"]
    assert len({len(l) for l in lines}) == 1    # every line the same width
    r = tarn_sql(tarn, "SELECT count FROM 's3://%s/raw/*.csv' WHERE gram = 'jam, plum'" % bucket)
    assert "NULL" in r.stdout


def test_json_output_and_stdin(tarn, s3, bucket):
    put_sales(s3, bucket)
    r = tarn_sql(tarn, "--format", "json", "-",
                 stdin="SELECT year, count(*) AS c FROM 's3://%s/raw/*.csv' GROUP BY year "
                       "ORDER BY year" % bucket)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [c["name"] for c in doc["columns"]] == ["year", "c"]
    assert doc["rows"] == [[2020, 1], [2021, 2]]
    assert doc["stats"]["rows"] == 2 and doc["stats"]["bytes_scanned"] == len(SALES)


def test_errors_name_line_and_column(tarn, s3, bucket):
    put_sales(s3, bucket)
    r = tarn_sql(tarn, "SELECT custd\nFROM 's3://%s/raw/*.csv'" % bucket)
    assert r.returncode != 0
    assert "custd" in r.stderr and "custid" in r.stderr and "line 1" in r.stderr
    assert r.stdout == ""
    r = tarn_sql(tarn, "SELECT custid, year FROM 's3://%s/raw/*.csv' GROUP BY custid" % bucket)
    assert r.returncode != 0 and "GROUP BY" in r.stderr


def test_wrong_credentials_fail_cleanly(tarn):
    env = tarnlib.clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_ACCESS_KEY=tarn.access_key,
               TARN_SECRET_KEY="not-the-secret")
    r = subprocess.run([tarnlib.TARN_BIN, "sql", "SELECT 1"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0
    assert "SignatureDoesNotMatch" in r.stderr or "signature" in r.stderr.lower()


def test_no_server_is_one_clear_line():
    env = tarnlib.clean_env()
    env.update(TARN_ENDPOINT="http://127.0.0.1:%d" % tarnlib.free_port(), TARN_ACCESS_KEY="a",
               TARN_SECRET_KEY="b")
    r = subprocess.run([tarnlib.TARN_BIN, "sql", "SELECT 1"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0
    assert r.stderr.startswith("tarn sql: cannot reach tarn")
    assert len(r.stderr.strip().splitlines()) == 1
