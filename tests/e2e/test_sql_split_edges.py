"""tests/e2e/test_sql_split_edges.py -- CSV and JSON lines whose records
straddle the byte ranges the engine reads in parallel, checked against DuckDB
on the same files.

An object of a few MB is cut into ranges of 1 MiB (exec.c, cut_morsels: the
smallest range), so the fixtures place, at exact multiples of 1 MiB: a
line break inside a quoted field, a CRLF whose CR and LF fall on either side,
a record longer than a whole range (quoted, with line breaks and doubled
quotes inside), a record ending exactly at the edge, and for JSON lines a
backslash escape split across the edge and a line longer than a range. A
range read in pieces of 1 MiB from its first record (as the engine does,
scan_win.c) also meets a CRLF and an escape cut by such a piece.
Whatever reads those ranges (a mapping, or buffers of the same or other
sizes) must give DuckDB's rows.
"""
import random

import pytest

from duckdb_util import duckdb
from test_parquet_read import assert_rows, ok

MIB = 1 << 20


class Body:
    """Records appended as bytes, with filler records to land a given byte
    of the next record at an exact offset."""

    def __init__(self, head, filler):
        self.b = bytearray(head)
        self.filler = filler      # filler(i, width) -> bytes of one record
        self.i = 0

    def add(self, rec):
        self.b += rec
        self.i += 1

    def pad_to(self, target):
        """fillers until len == target exactly"""
        rnd = random.Random(len(self.b))
        while True:
            left = target - len(self.b)
            small = len(self.filler(self.i, 1))
            if left < small:
                raise AssertionError("cannot pad to %d" % target)
            w = rnd.randrange(1, 60)
            rec = self.filler(self.i, w)
            if left - len(rec) < small + 2:
                rec = self.filler(self.i, 1 + left - small)
                assert len(rec) == left
            self.add(rec)
            if len(self.b) == target:
                return

    def place(self, rec, at, offset):
        """rec's byte `at` lands on `offset`"""
        self.pad_to(offset - at)
        self.add(rec)


def csv_body():
    b = Body(b"id,txt,n\r\n",
             lambda i, w: b"%d,%s,%d\r\n" % (i, b"x" * w, i % 7))
    # 1 MiB: the line break inside quotes is the range's byte start-1
    rec = b'%d,"aa\r\nbb ""q"" \nxx",5\r\n' % 1000001
    b.place(rec, rec.index(b"\nxx"), MIB - 1)
    # 2 MiB: CR before the edge, LF after it
    rec = b"%d,crlf,6\r\n" % 1000002
    b.place(rec, len(rec) - 2, 2 * MIB - 1)
    # from before 3 MiB to past 4 MiB: one record longer than a range
    rnd = random.Random(3)
    parts = []
    for k in range(3000):
        parts.append("".join(rnd.choice("abcdefgh ,") for _ in range(rnd.randrange(300, 700))))
        parts.append(("\n", '""', "\r\n", ",")[k % 4])
    long_txt = "".join(parts).encode()
    assert MIB + 200000 < len(long_txt) < 1800000
    rec = b'%d,"%s",7\r\n' % (1000003, long_txt)
    b.place(rec, 0, 3 * MIB - 300000)
    first4 = len(b.b)   # the first record of the range at 4 MiB
    assert first4 > 4 * MIB
    # 5 MiB: a record ending exactly at the edge, the next starting on it
    rec = b"%d,edge,1\r\n" % 1000004
    b.place(rec, len(rec), 5 * MIB)
    b.add(b"%d,after,2\r\n" % 1000005)
    # 1 MiB after that range's first record: CR and LF on either side
    rec = b"%d,crlf2,3\r\n" % 1000006
    b.place(rec, len(rec) - 2, first4 + MIB - 1)
    for _ in range(500):
        b.add(b.filler(b.i, 10))
    return bytes(b.b)


def jsonl_body():
    b = Body(b"", lambda i, w: b'{"id":%d,"txt":"%s","n":%d}\n' % (i, b"y" * w, i % 7))
    # 1 MiB: a line ending exactly at the edge
    rec = b'{"id":1000001,"txt":"edge","n":1}\n'
    b.place(rec, len(rec), MIB)
    # 2 MiB: an escape's backslash before the edge, its letter after it
    rec = b'{"id":1000002,"txt":"a\\"b\\nc\\\\d\\u00e9","n":2}\n'
    b.place(rec, rec.index(b"\\n"), 2 * MIB - 1)
    # from before 3 MiB to past 4 MiB: one line longer than a range
    rnd = random.Random(4)
    parts = []
    for k in range(3000):
        parts.append("".join(rnd.choice("abcdefgh ,{}[]:") for _ in range(rnd.randrange(300, 700))))
        parts.append(("\\n", '\\"', "\\\\", "\\t")[k % 4])
    long_txt = "".join(parts).encode()
    rec = b'{"id":1000003,"n":3,"txt":"%s"}\n' % long_txt
    b.place(rec, 0, 3 * MIB - 300000)
    first4 = len(b.b)   # the first line of the range at 4 MiB
    assert first4 > 4 * MIB
    # 5 MiB: a line starting exactly on the edge, its key after a space
    rec = b'{ "id":1000004,"txt":"start","n":4}\n'
    b.place(rec, 0, 5 * MIB)
    # 1 MiB after that range's first line: an escape split again
    rec = b'{"id":1000005,"txt":"x\\ty","n":5}\n'
    b.place(rec, rec.index(b"\\t"), first4 + MIB - 1)
    for _ in range(500):
        b.add(b.filler(b.i, 10))
    return bytes(b.b)


@pytest.fixture(scope="module")
def lake(tarn, s3, tmp_path_factory):
    d = tmp_path_factory.mktemp("edges")
    bucket = "split-edges"
    s3.create_bucket(Bucket=bucket)
    for name, body in (("e.csv", csv_body()), ("e.jsonl", jsonl_body())):
        (d / name).write_bytes(body)
        s3.put_object(Bucket=bucket, Key=name, Body=body)
    return bucket, str(d)


QUERIES = [
    "SELECT count(*), sum(n), sum(length(txt)), min(id), max(id) FROM {t}",
    "SELECT id, length(txt), n FROM {t} WHERE id > 1000000 ORDER BY id",
    "SELECT id, txt FROM {t} WHERE id > 1000000 AND length(txt) < 100 ORDER BY id",
    "SELECT n, count(*), sum(length(txt)) FROM {t} GROUP BY n ORDER BY n",
    "SELECT count(*) FROM {t} WHERE txt LIKE '%q%' OR txt LIKE '%\"%'",
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_records_across_range_edges_match_duckdb(tarn, lake, fmt):
    bucket, d = lake
    duck_t = ("read_csv('e.csv', header=true, delim=',', quote='\"', escape='\"', "
              "max_line_size=4000000, "
              "columns={'id': 'BIGINT', 'txt': 'VARCHAR', 'n': 'BIGINT'})" if fmt == "csv"
              else "read_json('e.jsonl', format='newline_delimited', maximum_object_size="
                   "4000000, columns={'id': 'BIGINT', 'txt': 'VARCHAR', 'n': 'BIGINT'})")
    want = duckdb([q.format(t=duck_t) for q in QUERIES], cwd=d)
    assert want[0][0][0] is not None and int(want[0][0][0]) > 50000
    for q, w in zip(QUERIES, want):
        got = ok(tarn, q.format(t="'s3://%s/e.%s'" % (bucket, fmt)))
        assert_rows(got["rows"], w, (fmt, q))
