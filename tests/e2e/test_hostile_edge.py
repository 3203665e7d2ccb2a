"""tests/e2e/test_hostile_edge.py -- the edge answers every request, in the
service's format, whatever a client sends.

Each test drives the real server with what a hostile or broken client sends
(raw sockets for what no SDK would write), then checks that the answer is
one HTTP response in the AWS error shape of the service addressed, that the
server still answers others, and that nothing changed.

Limits exercised (src/http/gate.h): request line and headers within 10 s,
request target up to 8 KiB (longer: 414), at most 1,000 query parameters
and 200 header lines (more: 400), Content-Length digits only.
"""
import json
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
import requests
from botocore.auth import HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

import tarnlib
from tarnlib import client_error, parse_xml, s3_error

HEAD_SECONDS = 10  # GATE_HEAD_SECONDS


def raw(tarn, data, timeout=10):
    """Sends data on a new connection; returns everything the server sends
    until it closes (or the timeout)."""
    s = socket.create_connection((tarn.host, tarn.port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def parse_response(data):
    """(status, headers (lower-case names), body) of exactly one response."""
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, "no complete response: %r" % data[:300]
    lines = head.decode("latin1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0])
    assert m, "bad status line: %r" % lines[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert b"HTTP/1." not in body, "more than one response: %r" % data[:600]
    if "content-length" in headers:
        assert len(body) == int(headers["content-length"]), data[:600]
    return int(m.group(1)), headers, body


def assert_s3_error(data, status, code):
    got_status, headers, body = parse_response(data)
    assert got_status == status, data[:600]
    assert headers.get("content-type", "").startswith("application/xml"), data[:600]
    root = parse_xml(body)
    assert root.tag == "Error" and root.findtext("Code") == code, body[:600]
    assert root.findtext("Message")
    assert root.findtext("RequestId") == headers["x-amz-request-id"]


def assert_alive(tarn, s3):
    r = requests.get(tarn.endpoint + "/_tarn/health", timeout=10)
    assert r.status_code == 200
    return {b["Name"] for b in s3.list_buckets()["Buckets"]}


# ---- 1. slow clients do not starve the others ----

def test_slow_headers_do_not_starve_other_clients(tarn, s3, bucket):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2020 + 256
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, want))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    s3.put_object(Bucket=bucket, Key="k", Body=b"still here")
    slow = []
    sel = selectors.DefaultSelector()
    started = time.monotonic()
    try:
        # kept-alive connections: one good request, then a slow head
        for _ in range(20):
            s = socket.create_connection((tarn.host, tarn.port), timeout=10)
            s.sendall(b"GET /_tarn/health HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while not re.search(rb"\r\n\r\n.*\n$", got, re.S):  # health's JSON ends with \n
                chunk = s.recv(4096)
                assert chunk, "health closed the connection: %r" % got
                got += chunk
            assert parse_response(got)[0] == 200
            s.sendall(b"GET /%s/k HTTP/1.1\r\nHost: x\r\n" % bucket.encode())
            s.setblocking(False)
            slow.append(s)
        # new connections that never finish their head
        for _ in range(2000):
            s = socket.create_connection((tarn.host, tarn.port), timeout=10)
            s.sendall(b"GET /%s/k HTTP/1.1\r\nHost: x\r\n" % bucket.encode())
            s.setblocking(False)
            slow.append(s)
        # while they trickle a header line every 2 s, a normal client is served
        for s in slow:
            sel.register(s, selectors.EVENT_READ)
        open_ = set(slow)
        closed = set()
        answers = []
        served = 0
        last_trickle = 0.0
        deadline = started + HEAD_SECONDS + 25
        while open_ and time.monotonic() < deadline:
            now = time.monotonic()
            if now - last_trickle >= 2:
                last_trickle = now
                for s in list(open_):
                    try:
                        s.send(b"X-Slow: 1\r\n")
                    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                        pass
                if served < 5:
                    got = s3.get_object(Bucket=bucket, Key="k")["Body"].read()
                    assert got == b"still here"
                    served += 1
            for key, _ in sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    chunk = s.recv(65536)
                except (BlockingIOError, ConnectionResetError):
                    chunk = b""
                if chunk:
                    answers.append(chunk)
                    continue
                sel.unregister(s)
                open_.discard(s)
                closed.add(s)
        assert served >= 3, "the normal client was served only %d times" % served
        assert not open_, ("%d of 2020 slow connections still open %.0f s after they started "
                           "sending headers" % (len(open_), time.monotonic() - started))
        assert answers, "the slow connections were closed without an answer"
        assert_s3_error(answers[0], 400, "RequestTimeout")
    finally:
        for s in slow:
            s.close()
        sel.close()
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"still here"
    assert_alive(tarn, s3)


def local_address():
    """A non-loopback IPv4 address of this machine, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def test_connections_per_address_are_limited(tarn_factory):
    addr = local_address()
    if addr is None:
        pytest.skip("no non-loopback IPv4 address to connect from")
    srv = tarn_factory(start=False)
    srv.host = addr
    srv.endpoint = "http://%s:%d" % (addr, srv.port)
    srv.start()
    held = []
    try:
        for _ in range(256):  # GATE_MAX_PER_ADDRESS, each still sending its head
            s = socket.create_connection((addr, srv.port), timeout=10)
            s.sendall(b"GET /_tarn/health HTTP/1.1\r\n")
            held.append(s)
        status, headers, body = parse_response(
            raw(srv, b"GET /_tarn/health HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert status == 503, body[:300]
        assert parse_xml(body).findtext("Code") == "SlowDown"
        for s in held[:10]:
            s.close()
        # closed connections stop counting at once, not at their head deadline
        deadline = time.monotonic() + HEAD_SECONDS / 2
        while True:
            got = raw(srv, b"GET /_tarn/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if parse_response(got)[0] == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert parse_response(got)[0] == 200, got[:300]
    finally:
        for s in held:
            s.close()
    srv.stop_clean()


# ---- 2. metric labels ----

LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"'
                  r'(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*)?\})? [-+0-9.eEInfa]+$')


def metric_series(tarn):
    r = tarn.request("GET", "/_tarn/metrics")
    assert r.status_code == 200, r.text[:300]
    series = []
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        assert LINE.match(line), "not Prometheus text format: %r" % line
        series.append(line.rsplit(" ", 1)[0])
    return series


def test_unsigned_scopes_create_no_metric_series(tarn, s3):
    before_buckets = assert_alive(tarn, s3)

    def junk(i):
        scope = ['ev"il}x', "svc%d" % i, "a\\b", "zz%d" % i][i % 4]
        return (b"GET /x HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 "
                b"Credential=AK/20240101/us-east-1/" + scope.encode() +
                b"/aws4_request, SignedHeaders=host, Signature=00\r\nConnection: close\r\n\r\n")

    for i in range(20):
        assert parse_response(raw(tarn, junk(i)))[0] in (400, 403)
    first = set(metric_series(tarn))
    for i in range(20, 120):
        assert parse_response(raw(tarn, junk(i)))[0] in (400, 403)
    second = set(metric_series(tarn))
    new = {s for s in second - first if "_tarn" not in s and "Metrics" not in s}
    assert not new, "unsigned requests made new series: %s" % sorted(new)[:10]
    services = set(re.findall(r'service="([^"]*)"', "\n".join(second)))
    assert not any("evil" in s or "ev\\" in s or s.startswith(("svc", "zz")) for s in services), services
    assert "other" in services
    assert assert_alive(tarn, s3) == before_buckets


# ---- 3. malformed heads ----

def test_malformed_heads_get_one_s3_answer(tarn, s3, bucket_name):
    before = assert_alive(tarn, s3)
    cases = [
        (b"PUT /%s HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n" % bucket_name.encode(),
         400, "InvalidArgument"),
        (b"\x01\x02garbage\r\n\r\n", 400, "InvalidRequest"),
        (b"HELLO WORLD\r\n\r\n", 400, "InvalidRequest"),
        (b"GET /%s?" % bucket_name.encode() + b"&".join([b"a"] * 3000) +
         b" HTTP/1.1\r\nHost: x\r\n\r\n", 400, "InvalidArgument"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "RequestURITooLong"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n",
         400, "RequestHeaderSectionTooLarge"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-H: 1\r\n" * 300 + b"\r\n",
         400, "RequestHeaderSectionTooLarge"),
        (b"PUT /%s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
         % bucket_name.encode(), 400, "InvalidArgument"),
    ]
    for data, status, code in cases:
        got = raw(tarn, data)
        assert got.count(b"HTTP/1.1 ") == 1, got[:600]
        assert_s3_error(got, status, code)
    # 1,000 parameters are still served
    ok = tarn.request("GET", "/", query=[("p%d" % i, "1") for i in range(999)])
    assert ok.status_code == 200, ok.text[:300]
    assert assert_alive(tarn, s3) == before
    assert bucket_name not in before


def test_unsigned_lambda_and_sqs_get_their_error_shape(tarn, s3):
    before = assert_alive(tarn, s3)
    # Lambda (REST-JSON): the error type in x-amzn-ErrorType, a JSON body
    for data, status in [
        (b"GET /2015-03-31/functions/ HTTP/1.1\r\nHost: x\r\n\r\n", 403),
        (b"POST /2015-03-31/functions/f/invocations HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: -1\r\n\r\n", 400),
    ]:
        got_status, headers, body = parse_response(raw(tarn, data))
        assert got_status == status, body[:300]
        assert headers["content-type"] == "application/json"
        assert headers.get("x-amzn-errortype")
        assert "message" in {k.lower() for k in json.loads(body)}
    # SQS (JSON protocol): __type
    got_status, headers, body = parse_response(raw(
        tarn, b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSQS.ListQueues\r\n"
              b"Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}"))
    assert got_status == 403
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert json.loads(body)["__type"].startswith("com.amazonaws.sqs#")
    got_status, headers, body = parse_response(raw(
        tarn, b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSQS.ListQueues\r\n"
              b"Content-Type: application/x-amz-json-1.0\r\n" + b"X-A: b\r\n" * 250 + b"\r\n"))
    assert got_status == 400
    assert json.loads(body)["__type"].startswith("com.amazonaws.sqs#")
    # SQS and SNS (query protocol): an XML ErrorResponse, not S3's Error
    for path in (b"/", b"/000000000000/orders"):
        got_status, headers, body = parse_response(raw(
            tarn, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 17\r\n\r\nAction=ListQueues"))
        assert got_status == 403
        root = parse_xml(body)
        assert root.tag == "ErrorResponse" and root.find("Error/Code") is not None, body
    assert assert_alive(tarn, s3) == before


@pytest.mark.parametrize("target,version", [
    ("Kinesis_20131202.ListStreams", "1.1"), ("Firehose_20150804.ListDeliveryStreams", "1.1"),
    ("AWSStepFunctions.ListStateMachines", "1.0"), ("DynamoDB_20120810.ListTables", "1.0"),
    ("DynamoDBStreams_20120810.ListStreams", "1.0"), ("AWSGlue.GetDatabases", "1.1"),
    ("AmazonAthena.ListWorkGroups", "1.1"), ("secretsmanager.ListSecrets", "1.1"),
])
def test_json_services_answer_unsigned_and_malformed_in_json(tarn, target, version):
    """The JSON 1.x services get their own error shape (JSON, __type) for an
    unsigned request and for the heads the edge refuses, never S3's XML."""
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: %s\r\n"
            b"Content-Type: application/x-amz-json-%s\r\n" % (target.encode(), version.encode()))
    for data, status in ((head + b"Content-Length: 2\r\n\r\n{}", (400, 403)),
                         (head + b"Content-Length: -1\r\n\r\n", (400,)),
                         (head + b"X-A: b\r\n" * 250 + b"\r\n", (400,))):
        got = raw(tarn, data)
        assert got.count(b"HTTP/1.1 ") == 1, got[:300]
        got_status, headers, body = parse_response(got)
        assert got_status in status, body[:300]
        assert headers["content-type"] == "application/x-amz-json-%s" % version, body[:300]
        assert json.loads(body)["__type"], body


def test_rest_json_services_answer_unsigned_in_json(tarn):
    for data in (b"GET /v2/apis HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"POST /Execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 2\r\n\r\n{}"):
        got_status, headers, body = parse_response(raw(tarn, data))
        assert got_status == 403, body[:300]
        assert headers["content-type"] == "application/json", body[:300]
        assert "message" in json.loads(body)


# ---- 4. storage classes and reserved bucket names ----

def test_invalid_storage_class_is_refused(tarn, s3, bucket):
    def refused(fn, **kw):
        with pytest.raises(ClientError) as e:
            fn(**kw)
        assert client_error(e.value) == ("InvalidStorageClass", 400), e.value.response

    refused(s3.put_object, Bucket=bucket, Key="a", Body=b"x", StorageClass="SUPER_CHEAP")
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    refused(s3.copy_object, Bucket=bucket, Key="b", CopySource={"Bucket": bucket, "Key": "src"},
            StorageClass="standard")
    refused(s3.create_multipart_upload, Bucket=bucket, Key="c", StorageClass="COLD")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["src"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # S3's own classes are accepted
    s3.put_object(Bucket=bucket, Key="ia", Body=b"x", StorageClass="STANDARD_IA")
    s3.put_object(Bucket=bucket, Key="ir", Body=b"x", StorageClass="GLACIER_IR")


@pytest.mark.parametrize("name", ["sthree-data", "xn--data", "amzn-s3-demo-data",
                                  "data-s3alias", "data--ol-s3", "data--x-s3", "data.mrap",
                                  "data--table-s3"])
def test_reserved_bucket_names_are_refused(tarn, s3, name):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert client_error(e.value) == ("InvalidBucketName", 400)
    assert name not in assert_alive(tarn, s3)


# ---- 5. signature version 2 ----

def test_sigv2_is_refused_with_the_way_out(tarn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    # header form
    r = requests.put("%s/%s/k" % (tarn.endpoint, bucket), data=b"new", timeout=10,
                     headers={"Authorization": "AWS %s:c2lnbmF0dXJl" % tarn.access_key,
                              "Date": "Sun, 06 Dec 2026 00:00:00 GMT"})
    code, message = s3_error(r)
    assert (r.status_code, code) == (400, "InvalidRequest")
    assert "signature_version s3v4" in message and "AWS4-HMAC-SHA256" in message
    # presigned query form, signed by botocore's SigV2 code
    req = AWSRequest(method="GET", url="%s/%s/k" % (tarn.endpoint, bucket))
    HmacV1QueryAuth(tarn.credentials(), expires=3600).add_auth(req)
    assert "AWSAccessKeyId=" in req.url and "Signature=" in req.url
    r = requests.get(req.url, timeout=10)
    code, message = s3_error(r)
    assert (r.status_code, code) == (400, "InvalidRequest")
    assert "signature_version s3v4" in message
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"old"


def test_readme_presign_line_works_with_the_installed_cli(tarn, s3, tmp_path):
    """README: curl -s "$(aws $E s3 presign s3://sales/raw/2024/day1.csv --expires-in 3600)" """
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    bucket = tarnlib.unique_bucket_name("sales")
    s3.create_bucket(Bucket=bucket)
    body = b"day,amount\n2024-01-01,10\n2024-01-02,32\n"
    s3.put_object(Bucket=bucket, Key="raw/2024/day1.csv", Body=body)
    env = tarn.aws_env()
    env["AWS_ENDPOINT_URL"] = tarn.endpoint
    env["E"] = "--endpoint-url=" + tarn.endpoint
    env["PATH"] = "/usr/bin:" + env.get("PATH", "")
    line = 'curl -s "$(aws $E s3 presign s3://%s/raw/2024/day1.csv --expires-in 3600)"' % bucket
    r = subprocess.run(["bash", "-c", line], env=env, capture_output=True, timeout=60,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == body, r.stdout[:500]


@pytest.mark.parametrize("argv,ns,code", [
    (["iam", "list-users"], "https://iam.amazonaws.com/doc/2010-05-08/",
     "MissingAuthenticationToken"),
    (["iam", "list-roles"], "https://iam.amazonaws.com/doc/2010-05-08/",
     "MissingAuthenticationToken"),
    (["rds", "describe-db-clusters"], "http://rds.amazonaws.com/doc/2014-10-31/",
     "MissingAuthenticationToken"),
    (["sns", "list-topics"], "http://sns.amazonaws.com/doc/2010-03-31/", "AuthorizationError"),
    (["sqs", "list-queues"], "http://queue.amazonaws.com/doc/2012-11-05/", "AccessDenied"),
])
def test_query_services_answer_unsigned_in_their_own_shape(tarn, argv, ns, code):
    """The query-protocol services share POST / and a form body: an unsigned
    request is refused in the error shape of the service its body's Version
    names (IAM's namespace for IAM), as the AWS CLI shows it; IAM and RDS
    name the missing signature MissingAuthenticationToken (HTTP 403), as AWS."""
    r = tarn.aws("--no-sign-request", "--debug", *argv, timeout=120)
    assert r.returncode != 0
    bodies = re.findall(r"Response body:\s*\n?b'(<\?xml[^']*)'", r.stderr)
    assert bodies, r.stderr[-3000:]
    root = ET.fromstring(bodies[-1])
    assert root.tag == "{%s}ErrorResponse" % ns, bodies[-1]
    assert root.find("{%s}Error/{%s}Code" % (ns, ns)).text == code, bodies[-1]
    assert re.search(r'"POST / HTTP/1\.1" 403 ', r.stderr), r.stderr[-3000:]
    if code == "MissingAuthenticationToken":
        message = root.find("{%s}Error/{%s}Message" % (ns, ns)).text
        assert message == "Request is missing Authentication Token", bodies[-1]
    # the refusal changed nothing: a signed request still answers
    tarn.aws_ok(*argv)
