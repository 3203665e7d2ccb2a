"""tests/e2e/test_s3_select.py -- S3 Select (SelectObjectContent) end to end.

boto3's select_object_content reads the AWS event stream and checks every
message's prelude and message CRC32s, so a framing mistake fails here.
Objects are put with boto3 (Parquet written by DuckDB); answers are what a
user reads: the Records, the Stats, the errors' codes. One case runs
Debian's awscli (`aws s3api select-object-content ... out.csv`).

Start reading at test_csv_with_header().
"""
import bz2
import gzip
import io
import json
import os

import pytest
from botocore.exceptions import ClientError, EventStreamError

from duckdb_util import duckdb

PEOPLE = ("name,age,city\n"
          "alice,31,Paris\n"
          "bob,000042,\"Rome, Italy\"\n"
          "carol,27,\"Oslo\"\n"
          "dave,50,Lyon\n")


def select(s3, bucket, key, expr, inp, out=None, **kw):
    """Runs SelectObjectContent; returns (records as text, stats, events)."""
    r = s3.select_object_content(Bucket=bucket, Key=key, Expression=expr,
                                 ExpressionType="SQL", InputSerialization=inp,
                                 OutputSerialization=out or {"CSV": {}}, **kw)
    records, stats, kinds = [], None, []
    for ev in r["Payload"]:
        kinds.append(next(iter(ev)))
        if "Records" in ev:
            records.append(ev["Records"]["Payload"])
        if "Stats" in ev:
            stats = ev["Stats"]["Details"]
    return b"".join(records).decode("utf-8"), stats, kinds


def csv_in(header="USE", **kw):
    d = {"FileHeaderInfo": header}
    d.update(kw)
    return {"CSV": d, "CompressionType": "NONE"}


def code_of(exc):
    return exc.response["Error"]["Code"]


@pytest.fixture(scope="module")
def data(s3):
    b = "select-data"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="people.csv", Body=PEOPLE.encode())
    return b


def test_csv_with_header(s3, data):
    text, stats, kinds = select(s3, data, "people.csv",
                                "SELECT s.name, s.age FROM S3Object s WHERE s.city = 'Lyon'",
                                csv_in())
    assert text == "dave,50\n"
    assert kinds[-2:] == ["Stats", "End"]
    assert stats["BytesScanned"] == len(PEOPLE)
    assert stats["BytesProcessed"] == len(PEOPLE)
    assert stats["BytesReturned"] == len("dave,50\n")
    # every value as written: 000042 stays 000042; a quoted delimiter is quoted again
    text, _, _ = select(s3, data, "people.csv", "SELECT * FROM S3Object", csv_in())
    assert text == ("alice,31,Paris\nbob,000042,\"Rome, Italy\"\ncarol,27,Oslo\n"
                    "dave,50,Lyon\n")
