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
import json
import os
import struct
import time
import zlib

import boto3
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


def test_csv_without_header_and_ignored_header(s3, data):
    text, _, _ = select(s3, data, "people.csv", "SELECT s._1, s._3 FROM S3Object s",
                        csv_in("NONE"))
    assert text.splitlines() == ["name,city", "alice,Paris", "bob,\"Rome, Italy\"",
                                 "carol,Oslo", "dave,Lyon"]
    text, _, _ = select(s3, data, "people.csv",
                        "SELECT s._1 FROM S3Object s WHERE CAST(s._2 AS INT) > 30",
                        csv_in("IGNORE"))
    assert text.splitlines() == ["alice", "bob", "dave"]
    # an empty field is the empty string, not null (a missing one is null)
    s3.put_object(Bucket=data, Key="gaps.csv", Body=b"a,b\nx,\ny,2\n")
    text, _, _ = select(s3, data, "gaps.csv", "SELECT s.a, s.b FROM S3Object s WHERE s.b = ''",
                        csv_in(), {"JSON": {}})
    assert json.loads(text) == {"a": "x", "b": ""}
    # USE names columns by the header; quoted names too
    text, _, _ = select(s3, data, "people.csv",
                        'SELECT s."city" FROM S3Object s WHERE s.name = \'carol\'', csv_in())
    assert text == "Oslo\n"


def test_aggregates_cast_limit_functions(s3, data):
    text, _, _ = select(s3, data, "people.csv",
                        "SELECT count(*), sum(CAST(s.age AS INT)), min(s.name), "
                        "max(CAST(s.age AS INT)) FROM S3Object s", csv_in())
    assert text == "4,150,alice,50\n"
    text, _, _ = select(s3, data, "people.csv",
                        "SELECT avg(CAST(s.age AS DOUBLE)) FROM S3Object s", csv_in(),
                        {"JSON": {}})
    assert json.loads(text) == {"_1": 37.5}
    text, _, _ = select(s3, data, "people.csv",
                        "SELECT upper(s.name), char_length(s.city) FROM S3Object s LIMIT 2",
                        csv_in())
    assert text == "ALICE,5\nBOB,11\n"
    # S3 Select's date functions and spellings
    s3.put_object(Bucket=data, Key="dates.csv", Body=b"d\n2024-01-31T10:00:00\n")
    text, _, _ = select(s3, data, "dates.csv",
                        "SELECT DATE_ADD(day, 1, CAST(s.d AS TIMESTAMP)), "
                        "DATE_DIFF(hour, CAST(s.d AS TIMESTAMP), "
                        "CAST('2024-02-01T12:00:00' AS TIMESTAMP)), "
                        "EXTRACT(YEAR FROM CAST(s.d AS TIMESTAMP)), CHARACTER_LENGTH(s.d), "
                        "UTCNOW() > CAST(s.d AS TIMESTAMP) FROM S3Object s", csv_in())
    assert text == "2024-02-01 10:00:00,26,2024,19,true\n"


def test_custom_delimiters_quotes_comments(s3, data):
    body = ("# a comment row\r\n"
            "id;label\r\n"
            "1;'semi;colon'\r\n"
            "# another\r\n"
            "2;plain\r\n")
    s3.put_object(Bucket=data, Key="semi.txt", Body=body.encode())
    inp = csv_in("USE", FieldDelimiter=";", RecordDelimiter="\r\n", QuoteCharacter="'",
                 Comments="#")
    text, _, _ = select(s3, data, "semi.txt", "SELECT s.label, s.id FROM S3Object s", inp)
    assert text == "semi;colon,1\nplain,2\n"
    # output options: another delimiter, quotes always, another record delimiter
    out = {"CSV": {"QuoteFields": "ALWAYS", "FieldDelimiter": "|", "RecordDelimiter": ";",
                   "QuoteCharacter": "'"}}
    text, _, _ = select(s3, data, "semi.txt", "SELECT s.id, s.label FROM S3Object s", inp, out)
    assert text == "'1'|'semi;colon';'2'|'plain';"
    # an escape character other than the quote; tab-separated
    s3.put_object(Bucket=data, Key="esc.tsv", Body=b'k\tv\n1\t"say \\"hi\\""\n')
    text, _, _ = select(s3, data, "esc.tsv", "SELECT s.v FROM S3Object s",
                        csv_in("USE", FieldDelimiter="\t", QuoteEscapeCharacter="\\"))
    assert text == '"say ""hi"""\n'
    # a record delimiter of one other character
    s3.put_object(Bucket=data, Key="pipe.txt", Body=b"a,b~1,2~3,4")
    text, _, _ = select(s3, data, "pipe.txt", "SELECT s.b FROM S3Object s",
                        csv_in("USE", RecordDelimiter="~"))
    assert text == "2\n4\n"


def test_json_lines_and_document(s3, data):
    lines = "\n".join(json.dumps(x) for x in [
        {"name": "alice", "age": 31, "addr": {"city": "Paris", "zip": "75001"}},
        {"name": "bob", "age": 42, "addr": {"city": "Rome", "zip": "00100"}},
        {"name": "carol", "age": 27, "addr": {"city": "Oslo", "zip": "0150"}},
    ]) + "\n"
    s3.put_object(Bucket=data, Key="people.json", Body=lines.encode())
    inp = {"JSON": {"Type": "LINES"}}
    text, _, _ = select(s3, data, "people.json",
                        "SELECT s.name, s.age FROM S3Object s WHERE s.age > 30", inp,
                        {"JSON": {}})
    assert [json.loads(x) for x in text.splitlines()] == [{"name": "alice", "age": 31},
                                                          {"name": "bob", "age": 42}]
    text, _, _ = select(s3, data, "people.json",
                        "SELECT s.addr.city FROM S3Object s WHERE s.addr.zip = '00100'", inp)
    assert text == "Rome\n"
    s3.put_object(Bucket=data, Key="arr.json", Body=b'{"id": 1, "tags": ["a", "b"]}\n'
                                                   b'{"id": 2, "tags": ["c"]}\n')
    text, _, _ = select(s3, data, "arr.json", "SELECT s.id, s.tags[1] FROM S3Object s", inp)
    assert text == "1,b\n2,\n"
    # a document: pretty-printed, one array of records; and JSON output with another delimiter
    doc = json.dumps([{"k": 1, "v": "x"}, {"k": 2, "v": "y, z"}], indent=2)
    s3.put_object(Bucket=data, Key="doc.json", Body=doc.encode())
    text, _, _ = select(s3, data, "doc.json", "SELECT s.v FROM S3Object[*] s WHERE s.k = 2",
                        {"JSON": {"Type": "DOCUMENT"}}, {"JSON": {"RecordDelimiter": ";"}})
    assert text == '{"v":"y, z"};'
    doc2 = '{\n  "a": 1,\n  "b": {"c": [1, 2]}\n}\n'
    s3.put_object(Bucket=data, Key="one.json", Body=doc2.encode())
    text, _, _ = select(s3, data, "one.json", "SELECT count(*) FROM S3Object s",
                        {"JSON": {"Type": "DOCUMENT"}})
    assert text == "1\n"


def test_parquet(s3, data, tmp_path):
    duckdb(["COPY (SELECT i AS id, 'n' || i AS name, i * 0.5 AS half FROM range(0, 1000) t(i)) "
            "TO 'p.parquet' (FORMAT parquet, ROW_GROUP_SIZE 100)"], cwd=tmp_path)
    s3.put_object(Bucket=data, Key="p.parquet", Body=(tmp_path / "p.parquet").read_bytes())
    text, stats, _ = select(s3, data, "p.parquet",
                            "SELECT s.name, s.half FROM S3Object s WHERE s.id BETWEEN 10 AND 12",
                            {"Parquet": {}})
    assert text == "n10,5.0\nn11,5.5\nn12,6.0\n"
    assert 0 < stats["BytesScanned"] <= (tmp_path / "p.parquet").stat().st_size
    text, _, _ = select(s3, data, "p.parquet", "SELECT count(*), sum(s.id) FROM S3Object s",
                        {"Parquet": {}})
    assert text == "1000,499500\n"


def test_gzip_and_bzip2(s3, data):
    s3.put_object(Bucket=data, Key="people.csv.gz", Body=gzip.compress(PEOPLE.encode()))
    s3.put_object(Bucket=data, Key="people.bz", Body=bz2.compress(PEOPLE.encode()))
    # comment rows: the bytes are decompressed and cut, not read in place
    s3.put_object(Bucket=data, Key="commented.gz",
                  Body=gzip.compress(("#x\n" + PEOPLE).encode()))
    text, _, _ = select(s3, data, "commented.gz", "SELECT count(*) FROM S3Object s",
                        {"CSV": {"FileHeaderInfo": "USE"}, "CompressionType": "GZIP"})
    assert text == "4\n"
    for key, comp in (("people.csv.gz", "GZIP"), ("people.bz", "BZIP2")):
        inp = {"CSV": {"FileHeaderInfo": "USE"}, "CompressionType": comp}
        text, stats, _ = select(s3, data, key, "SELECT s.name FROM S3Object s LIMIT 1", inp)
        assert text == "alice\n"
        assert stats["BytesProcessed"] == len(PEOPLE)
        assert stats["BytesScanned"] == s3.head_object(Bucket=data, Key=key)["ContentLength"]
    # the wrong compression for the bytes: S3's error, before any record
    with pytest.raises(ClientError) as ei:
        select(s3, data, "people.csv", "SELECT * FROM S3Object",
               {"CSV": {}, "CompressionType": "GZIP"})
    assert code_of(ei.value) == "InvalidCompressionFormat"


def test_scan_range(s3, data):
    body = "".join("%d,row%d\n" % (i, i) for i in range(100))
    s3.put_object(Bucket=data, Key="rows.csv", Body=body.encode())
    # records whose first byte lies in [Start, End]
    start = body.index("10,row10")
    end = body.index("20,row20")
    text, stats, _ = select(s3, data, "rows.csv", "SELECT s._1 FROM S3Object s", csv_in("NONE"),
                            ScanRange={"Start": start + 1, "End": end})
    assert text.split() == [str(i) for i in range(11, 21)]
    # ranges that split the file cover each record exactly once
    seen = []
    step = 97
    for lo in range(0, len(body), step):
        t, _, _ = select(s3, data, "rows.csv", "SELECT s._1 FROM S3Object s", csv_in("NONE"),
                         ScanRange={"Start": lo, "End": lo + step - 1})
        seen += t.split()
    assert seen == [str(i) for i in range(100)]
    # End alone: the last End bytes
    t, _, _ = select(s3, data, "rows.csv", "SELECT s._2 FROM S3Object s", csv_in("NONE"),
                     ScanRange={"End": len("99,row99\n")})
    assert t == "row99\n"


def test_progress_events(s3, data):
    _, _, kinds = select(s3, data, "people.csv", "SELECT * FROM S3Object", csv_in(),
                         RequestProgress={"Enabled": True})
    assert "Progress" in kinds and kinds[-2:] == ["Stats", "End"]


def test_long_scan_keeps_the_stream_alive(s3, data):
    # a scan that sends nothing for a while: Cont events keep the connection busy
    body = "".join("%d,name%d,%d\n" % (i, i, i * 7) for i in range(600000)).encode()
    s3.put_object(Bucket=data, Key="long.csv", Body=body)
    # what reading the object's bytes costs here (over an object backend,
    # on a loaded machine, seconds): not part of the scan's own time below
    t0 = time.monotonic()
    assert len(s3.get_object(Bucket=data, Key="long.csv")["Body"].read()) == len(body)
    fetch = time.monotonic() - t0
    t0 = time.monotonic()
    text, stats, kinds = select(s3, data, "long.csv",
                                "SELECT count(*) FROM S3Object s WHERE s._2 LIKE '%zzz%'",
                                csv_in("NONE"))
    took = time.monotonic() - t0
    assert text == "0\n"
    assert stats["BytesScanned"] == len(body)
    assert kinds[-3:] == ["Records", "Stats", "End"]
    if took - fetch > 2.0:  # progress ticks come every ~0.5 s of the query
        assert "Cont" in kinds, (took, fetch, kinds)


@pytest.mark.parametrize("expr,inp,code", [
    ("SELECT s.name FROM S3Object s GROUP BY s.name", csv_in(), "UnsupportedSqlOperation"),
    ("SELECT s.name FROM S3Object s ORDER BY s.name", csv_in(), "UnsupportedSqlOperation"),
    ("SELECT a.name FROM S3Object a JOIN S3Object b ON a.name = b.name", csv_in(),
     "UnsupportedSqlOperation"),
    ("SELECT s._9 FROM S3Object s", csv_in("NONE"), "InvalidColumnIndex"),
    ("SELECT s.nope FROM S3Object s", csv_in(), "MissingHeaders"),
    ("SELECT s.name FROM S3Object s WHERE", csv_in(), "ParseUnexpectedToken"),
    ("SELECT 1", csv_in(), "ParseSelectMissingFrom"),
    ("SELECT * FROM 's3://select-data/people.csv'", csv_in(), "InvalidTableAlias"),
    ("SELECT CAST(s.name AS INT) FROM S3Object s", csv_in(), "CastFailed"),
])
def test_errors_before_the_stream(s3, data, expr, inp, code):
    with pytest.raises(ClientError) as ei:
        select(s3, data, "people.csv", expr, inp)
    assert code_of(ei.value) == code, ei.value.response["Error"]
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_request_errors(s3, data):
    with pytest.raises(ClientError) as ei:
        s3.select_object_content(Bucket=data, Key="people.csv", Expression="SELECT 1",
                                 ExpressionType="XQUERY", InputSerialization=csv_in(),
                                 OutputSerialization={"CSV": {}})
    assert code_of(ei.value) == "InvalidExpressionType"
    with pytest.raises(ClientError) as ei:
        select(s3, data, "no-such.csv", "SELECT * FROM S3Object", csv_in())
    assert code_of(ei.value) == "NoSuchKey"
    with pytest.raises(ClientError) as ei:
        select(s3, data, "people.csv", "SELECT * FROM S3Object", csv_in("MAYBE"))
    assert code_of(ei.value) == "InvalidFileHeaderInfo"
    with pytest.raises(ClientError) as ei:
        select(s3, data, "people.csv", "SELECT * FROM S3Object s WHERE s.name = '%s'"
               % ("x" * (256 * 1024)), csv_in())
    assert code_of(ei.value) == "ExpressionTooLong"
    with pytest.raises(ClientError) as ei:
        select(s3, data, "people.csv", "SELECT * FROM S3Object", {"JSON": {"Type": "LINES"},
                                                                  "CompressionType": "GZIP"},
               ScanRange={"Start": 1})
    assert code_of(ei.value) == "UnsupportedScanRangeInput"
    s3.put_object(Bucket=data, Key="wide.csv", Body=b"a,b\n1," + b"x" * (1 << 20) + b"\n")
    with pytest.raises(ClientError) as ei:
        select(s3, data, "wide.csv", "SELECT s._1 FROM S3Object s", csv_in("NONE"))
    assert code_of(ei.value) == "OverMaxRecordSize"
    # nothing changed: the object reads as before
    assert s3.get_object(Bucket=data, Key="people.csv")["Body"].read() == PEOPLE.encode()


def test_error_after_the_stream_started(s3, data):
    # many good rows, then one that cannot be cast: records arrive, then an error event
    body = "".join("%d\n" % i for i in range(300000)) + "oops\n"
    s3.put_object(Bucket=data, Key="late.csv", Body=body.encode())
    r = s3.select_object_content(Bucket=data, Key="late.csv",
                                 Expression="SELECT CAST(s._1 AS INT) FROM S3Object s",
                                 ExpressionType="SQL", InputSerialization=csv_in("NONE"),
                                 OutputSerialization={"CSV": {}})
    got = 0
    with pytest.raises(EventStreamError) as ei:
        for ev in r["Payload"]:
            if "Records" in ev:
                got += len(ev["Records"]["Payload"])
    assert code_of(ei.value) == "CastFailed"
    assert got > 0


def test_awscli(tarn, s3, data, tmp_path):
    out = tmp_path / "out.csv"
    r = tarn.aws("s3api", "select-object-content", "--bucket", data, "--key", "people.csv",
                 "--expression", "SELECT s.name, s.city FROM S3Object s WHERE s.age = '000042'",
                 "--expression-type", "SQL",
                 "--input-serialization", '{"CSV": {"FileHeaderInfo": "USE"}}',
                 "--output-serialization", '{"CSV": {}}', str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text() == "bob,\"Rome, Italy\"\n"


def test_iam_needs_get_object(tarn, s3, data):
    iam = boto3.client("iam", endpoint_url=tarn.endpoint, region_name="us-east-1",
                       aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key)
    iam.create_user(UserName="selector")
    iam.put_user_policy(UserName="selector", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::%s/people.csv" % data}]}))
    k = iam.create_access_key(UserName="selector")["AccessKey"]
    us3 = tarn.client(k["AccessKeyId"], k["SecretAccessKey"])
    text, _, _ = select(us3, data, "people.csv", "SELECT count(*) FROM S3Object", csv_in())
    assert text == "4\n"
    with pytest.raises(ClientError) as ei:
        select(us3, data, "semi.txt", "SELECT count(*) FROM S3Object", csv_in())
    assert code_of(ei.value) == "AccessDenied"


def test_hostile_inputs_leave_the_server_answering(s3, data):
    cases = [
        ("bad.json", b'{"a": [1, 2}', {"JSON": {"Type": "DOCUMENT"}}, "JSONParsingError"),
        ("open.json", b'{"a": "never closed', {"JSON": {"Type": "DOCUMENT"}},
         "JSONParsingError"),
        ("deep.json", b"[" * 100000 + b"]" * 100000, {"JSON": {"Type": "DOCUMENT"}}, None),
        ("junk.gz", os.urandom(4096), {"CSV": {}, "CompressionType": "GZIP"},
         "InvalidCompressionFormat"),
        ("junk.bz2", b"BZh9" + os.urandom(4096), {"CSV": {}, "CompressionType": "BZIP2"},
         "InvalidCompressionFormat"),
        ("lines.json", b'{"a": 1}\n{"a": \n', {"JSON": {"Type": "LINES"}}, "JSONParsingError"),
    ]
    for key, body, inp, code in cases:
        s3.put_object(Bucket=data, Key=key, Body=body)
        try:
            select(s3, data, key, "SELECT * FROM S3Object s", inp)
        except (ClientError, EventStreamError) as exc:
            if code is not None:
                assert code_of(exc) == code, (key, exc.response["Error"])
            assert "(object)" not in exc.response["Error"]["Message"]
        else:
            assert code is None, key
    for expr in ("SELECT 'unclosed FROM S3Object", "SELECT s.\"x FROM S3Object s",
                 "SELECT " + "(" * 5000 + "1" + ")" * 5000 + " FROM S3Object",
                 "SELECT s.a[99999999999999999999] FROM S3Object s"):
        with pytest.raises(ClientError):
            select(s3, data, "people.json", expr, {"JSON": {"Type": "LINES"}})
    text, _, _ = select(s3, data, "people.csv", "SELECT count(*) FROM S3Object", csv_in())
    assert text == "4\n"


def test_missing_parameters_raw(tarn, data):
    # what boto3 checks before sending: a request without them, as another client may send it
    def post(xml):
        return tarn.request("POST", "/%s/people.csv" % data,
                            query=[("select", None), ("select-type", "2")], body=xml.encode())
    r = post('<SelectObjectContentRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
             "<ExpressionType>SQL</ExpressionType><InputSerialization><CSV/>"
             "</InputSerialization><OutputSerialization><CSV/></OutputSerialization>"
             "</SelectObjectContentRequest>")
    assert r.status_code == 400
    assert "<Code>MissingRequiredParameter</Code>" in r.text
    r = post("<SelectObjectContentRequest><Expression>SELECT * FROM S3Object</Expression>"
             "<ExpressionType>SQL</ExpressionType><InputSerialization><CSV/><JSON>"
             "<Type>LINES</Type></JSON></InputSerialization><OutputSerialization><CSV/>"
             "</OutputSerialization></SelectObjectContentRequest>")
    assert r.status_code == 400
    assert "<Code>ObjectSerializationConflict</Code>" in r.text
    r = post("<NotSelect/>")
    assert r.status_code == 400 and "<Code>MalformedXML</Code>" in r.text
    # a good one, read as raw bytes: event stream messages, the content type
    r = post("<SelectObjectContentRequest><Expression>SELECT count(*) FROM S3Object"
             "</Expression><ExpressionType>SQL</ExpressionType><InputSerialization><CSV>"
             "<FileHeaderInfo>USE</FileHeaderInfo></CSV></InputSerialization>"
             "<OutputSerialization><CSV/></OutputSerialization></SelectObjectContentRequest>")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/vnd.amazon.eventstream"
    assert [h[":event-type"] for h, _ in messages(r.content)] == ["Records", "Stats", "End"]


def messages(raw):
    """Splits an event stream, checking both CRCs of each message."""
    out = []
    while raw:
        total, hlen = struct.unpack(">II", raw[:8])
        assert struct.unpack(">I", raw[8:12])[0] == zlib.crc32(raw[:8])
        assert struct.unpack(">I", raw[total - 4:total])[0] == zlib.crc32(raw[:total - 4])
        h, i = {}, 12
        while i < 12 + hlen:
            n = raw[i]
            name = raw[i + 1:i + 1 + n].decode()
            assert raw[i + 1 + n] == 7  # string
            vlen = struct.unpack(">H", raw[i + 2 + n:i + 4 + n])[0]
            h[name] = raw[i + 4 + n:i + 4 + n + vlen].decode()
            i += 4 + n + vlen
        out.append((h, raw[12 + hlen:total - 4]))
        raw = raw[total:]
    return out
