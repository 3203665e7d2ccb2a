"""tests/e2e/test_console.py -- the web console at /_tarn/console/ in a real
headless Chromium (Debian's /usr/bin/chromium driven by playwright-core from
tests/e2e/console/console.mjs).

What a user would check: the page loads without a signature, a wrong secret
is refused (the API answers 403 and the page says so), and once signed in the
page uploads a file and lists it, runs SQL over it (rows, chart, bytes
scanned and cost), invokes a function (result and START/END/REPORT lines),
deploys a function from a .zip and updates its code (then its cold starts
and duration percentiles), sends and receives a queue message (the depth
chart), adds a bucket event rule sending uploads to a queue (the queue gets
the event, and the live event panel shows it), and runs a statement on an
RDS cluster, all through signed AWS API calls. boto3 prepares what the page works on and
reads back what it wrote.
"""
import datetime
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import warnings
from unittest import mock
from urllib.parse import parse_qsl, quote, urlsplit

import botocore.auth
import botocore.credentials
import botocore.exceptions
import pytest
import requests
from botocore.awsrequest import AWSRequest

import lambda_util
import queue_util
import tarnlib
from tarnlib import clean_env

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER_DIR = os.path.join(HERE, "console")
CHROMIUM = "/usr/bin/chromium"
POSTGRES = "/usr/lib/postgresql/15/bin/postgres"
BIG = 9 * tarnlib.MiB + 5  # past the page's 8 MiB part size: a multipart upload
RDS_SETUP_BUDGET = 45  # seconds the cluster may take to be created beside the rest


@pytest.fixture(scope="module")
def driver():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed (scripts/install-deps.sh installs it)")
    if not os.path.isdir(os.path.join(DRIVER_DIR, "node_modules", "playwright-core")):
        pytest.fail("playwright-core is not installed: run `npm install` in tests/e2e/console "
                    "(scripts/install-deps.sh does)")
    return DRIVER_DIR


def test_static_files(tarn):
    """The files are served unsigned, with a strict policy; nothing else is."""
    r = requests.get(tarn.endpoint + "/_tarn/console", allow_redirects=False, timeout=30)
    assert r.status_code == 301 and r.headers["Location"] == "/_tarn/console/"
    r = requests.get(tarn.endpoint + "/_tarn/console/", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "<title>tarn console</title>" in r.text
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    for name, kind in (("app.js", "text/javascript"), ("sigv4.js", "text/javascript"),
                       ("style.css", "text/css")):
        r = requests.get(tarn.endpoint + "/_tarn/console/" + name, timeout=30)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(kind)
        with open(os.path.join(tarnlib.ROOT, "src", "console", name), "rb") as f:
            assert r.content == f.read()
        h = requests.head(tarn.endpoint + "/_tarn/console/" + name, timeout=30)
        assert h.status_code == 200 and h.headers["Content-Length"] == str(len(r.content))
    for bad in ("nope.js", "%2e%2e/meson.build", "..%2fmain.c", "x/app.js"):
        assert requests.get(tarn.endpoint + "/_tarn/console/" + bad, timeout=30).status_code == 404
    r = requests.put(tarn.endpoint + "/_tarn/console/app.js", data=b"x", timeout=30)
    assert r.status_code == 405
    # the data the page shows still needs a signature
    assert requests.get(tarn.endpoint + "/", timeout=30).status_code == 403


SIGN_CASES = [
    ("GET", "s3", "/", [], {}, ""),
    ("GET", "s3", "/b%C3%A9/a%20b/%2Bc~d", [["list-type", "2"], ["prefix", "x/y z+\u00e9"],
                                           ["delimiter", "/"]], {}, ""),
    ("PUT", "s3", "/b/k", [["tagging", ""]], {}, "<Tagging><TagSet/></Tagging>"),
    ("POST", "lambda", "/2015-03-31/functions/f-1/invocations", [],
     {"X-Amz-Log-Type": "Tail", "X-Amz-Invocation-Type": "RequestResponse"}, '{"a": "\u00e9"}'),
    ("POST", "sqs", "/", [], {"X-Amz-Target": "AmazonSQS.ListQueues"}, "{}"),
    ("POST", "rds-data", "/Execute", [], {}, '{"sql": "SELECT 1"}'),
]

PRESIGN_CASES = [
    ("/b/k.csv", []),
    ("/b/dir/na%20me%2B.csv", [["response-content-disposition",
                               "attachment; filename*=UTF-8''na%20me%2B.csv"]]),
]


@pytest.mark.parametrize("no_subtle", ["0", "1"], ids=["subtle", "pure-js"])
def test_sigv4_matches_botocore(driver, no_subtle):
    """The page's signatures equal botocore's for the same requests (with
    SubtleCrypto, and with the pure-JS fallback used on plain-http hosts)."""
    when = datetime.datetime(2026, 3, 4, 5, 6, 7)
    host = "127.0.0.1:9000"
    env = clean_env()
    env["NO_SUBTLE"] = no_subtle
    payload = {"accessKey": tarnlib.ACCESS_KEY, "secretKey": tarnlib.SECRET_KEY,
               "region": tarnlib.REGION, "host": host, "date": when.isoformat() + "Z",
               "requests": [dict(method=m, service=svc, path=p, query=q, headers=h, body=b)
                            for m, svc, p, q, h, b in SIGN_CASES],
               "presign": [dict(path=p, query=q, expires=300) for p, q in PRESIGN_CASES]}
    r = subprocess.run(["node", "sigv4_check.mjs"], cwd=driver, env=env, input=json.dumps(payload),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout)
    presigned = got[len(SIGN_CASES):]
    creds = botocore.credentials.Credentials(tarnlib.ACCESS_KEY, tarnlib.SECRET_KEY)
    for (method, svc, path, query, headers, body), js in zip(SIGN_CASES, got):
        url = "http://%s%s%s" % (host, path, "?" + js["query"] if js["query"] else "")
        req = AWSRequest(method, url, data=body.encode(), headers=dict(headers))
        req.headers["x-amz-content-sha256"] = hashlib.sha256(body.encode()).hexdigest()
        auth = (botocore.auth.S3SigV4Auth if svc == "s3" else botocore.auth.SigV4Auth)(
            creds, svc, tarnlib.REGION)
        with mock.patch("botocore.auth.datetime") as d:
            d.datetime.utcnow.return_value = when
            d.datetime.now.return_value = when
            auth.add_auth(req)
        assert js["authorization"] == req.headers["Authorization"], (method, svc, path)
    # download links: botocore's presigned URL for the same object and time
    for (path, query), js in zip(PRESIGN_CASES, presigned):
        qs = "&".join("%s=%s" % (quote(n, safe="-_.~"), quote(v, safe="-_.~")) for n, v in query)
        req = AWSRequest("GET", "http://%s%s%s" % (host, path, "?" + qs if qs else ""))
        with mock.patch("botocore.auth.datetime") as d:
            d.datetime.utcnow.return_value = when
            d.datetime.now.return_value = when
            botocore.auth.S3SigV4QueryAuth(creds, "s3", tarnlib.REGION, expires=300).add_auth(req)
        want = dict(parse_qsl(urlsplit(req.url).query, keep_blank_values=True))
        mine = dict(parse_qsl(urlsplit(js["url"]).query, keep_blank_values=True))
        assert mine == want and len(mine["X-Amz-Signature"]) == 64, path


def make_cluster(srv, out):
    import test_rds_data
    try:
        rds_client, _, _ = test_rds_data.clients(srv)
        out["arn"], out["secret"] = test_rds_data.create(rds_client, "console")
    except Exception as e:  # reported as the reason the step is skipped
        out["error"] = repr(e)


def test_console_in_chromium(tarn, s3, driver, bucket_name):
    # the RDS cluster is created beside the other set-up (initdb takes a while)
    t0 = time.monotonic()
    cluster = {}
    maker = None
    if os.path.exists(POSTGRES):
        maker = threading.Thread(target=make_cluster, args=(tarn, cluster), daemon=True)
        maker.start()
    s3.create_bucket(Bucket=bucket_name)
    s3.put_object(Bucket=bucket_name, Key="tables/cities/part-0.csv",
                  Body=b"city,amount\nRennes,7\nBrest,9\n")
    lam = lambda_util.lambda_client(tarn)
    fn = lambda_util.unique_name("console-echo")
    lambda_util.create(lam, fn, code="python")
    sqs = queue_util.client(tarn, "sqs")
    queue = "console-q"
    queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    # a topic whose deliveries the page's publish reaches the queue through
    sns = queue_util.client(tarn, "sns")
    topic = sns.create_topic(Name="console-t")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"})

    rds = None
    skipped = None
    if maker is None:
        skipped = "Debian's postgresql is not installed"
    else:
        maker.join(RDS_SETUP_BUDGET)
        if maker.is_alive():
            skipped = "the RDS cluster took over %d s to create" % RDS_SETUP_BUDGET
        elif "error" in cluster:
            skipped = "the RDS cluster could not be created: " + cluster["error"]
        else:
            rds = {"arn": cluster["arn"], "secret": cluster["secret"]}
    if skipped:
        print("RDS step skipped: " + skipped)

    events_queue = "console-events-q"
    events_url = sqs.create_queue(QueueName=events_queue)["QueueUrl"]
    deploy = {"name": lambda_util.unique_name("console-deployed")}
    for v in (1, 2):
        path = os.path.join(tarn.workdir, "deploy-v%d.zip" % v)
        with open(path, "wb") as f:
            f.write(lambda_util.zip_files({"lambda_function.py": (
                "def handler(event, context):\n"
                "    return {'version': %d, 'answer': event['n'] + 1}\n" % v, 0o644)}))
        deploy["v%d" % v] = path

    print("set-up %.1f s" % (time.monotonic() - t0))
    shots = tempfile.mkdtemp(prefix="tarn-console-shots-")
    big = (bytes(range(251)) * (BIG // 251 + 1))[:BIG]
    big_file = os.path.join(tarn.workdir, "big.bin")
    with open(big_file, "wb") as f:
        f.write(big)
    env = clean_env()
    env["CONSOLE_TEST"] = json.dumps({
        "url": tarn.endpoint + "/_tarn/console/", "accessKey": tarn.access_key,
        "secretKey": tarn.secret_key, "bucket": bucket_name, "function": fn, "queue": queue,
        "topic": topic, "eventsQueue": events_queue, "deploy": deploy,
        "rds": rds, "shots": shots, "bigSize": BIG, "bigFile": big_file,
        "every": os.environ.get("CONSOLE_SCREENSHOTS") == "1"})
    r = subprocess.run(["node", "console.mjs"], cwd=driver, env=env, capture_output=True,
                       text=True, timeout=300)
    print(r.stdout)
    if os.environ.get("CONSOLE_SCREENSHOTS") == "1":
        print("screenshots of every step in " + shots)
    assert r.returncode == 0, "the console test failed (screenshots in %s)\nstdout:\n%s\nstderr:\n%s" % (
        shots, r.stdout[-4000:], r.stderr[-3000:])

    # what the page wrote, read back by another client
    got = s3.get_object(Bucket=bucket_name, Key="big.bin")
    assert got["Body"].read() == big
    assert got["ETag"].endswith('-2"')  # two parts
    with pytest.raises(botocore.exceptions.ClientError) as ei:  # deleted in the page
        s3.head_object(Bucket=bucket_name, Key="sales.csv")
    assert tarnlib.client_error(ei.value)[1] == 404
    # the message the page published to the topic reached the queue
    bodies = []

    def published():
        r = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies.extend(m["Body"] for m in r.get("Messages", []))
        return "to the topic" in bodies

    queue_util.wait_for(published, timeout=60, interval=0, what="the published message")
    env_vars = lam.get_function_configuration(FunctionName=fn)["Environment"]["Variables"]
    assert env_vars == {"GREETING": "hello from the console", "MODE": "test"}
    # the function's own numbers the page charted
    text = tarn.request("GET", "/_tarn/metrics").text
    assert 'tarn_fn_function_invocations_total{function="%s"} 1\n' % fn in text
    assert 'tarn_fn_function_errors_total{function="%s"} 0\n' % fn in text
    assert 'tarn_fn_function_duration_seconds_count{function="%s"} 1\n' % fn in text
    assert 'tarn_fn_function_duration_seconds_bucket{function="%s",le="+Inf"} 1\n' % fn in text
    # the function the page deployed, then updated
    got = lam.get_function_configuration(FunctionName=deploy["name"])
    assert got["Runtime"] == "python3.11" and got["Handler"] == "lambda_function.handler"
    _, body = lambda_util.invoke(lam, deploy["name"], {"n": 1})
    assert body == {"version": 2, "answer": 2}
    m = re.search(r'tarn_fn_function_cold_starts_total\{function="%s"\} (\d+)\n' % deploy["name"], text)
    assert m and int(m.group(1)) >= 1
    # the event rule the page wrote, and the event it sent to the queue
    conf = s3.get_bucket_notification_configuration(Bucket=bucket_name)
    rules = conf.get("QueueConfigurations", [])
    assert len(rules) == 1 and not conf.get("LambdaFunctionConfigurations")
    assert rules[0]["Events"] == ["s3:ObjectCreated:*"]
    assert rules[0]["Filter"]["Key"]["FilterRules"] == [{"Name": "Prefix", "Value": "events"}] or \
        rules[0]["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "events"}]
    records = []

    def notified():
        r = sqs.receive_message(QueueUrl=events_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for msg in r.get("Messages", []):
            records.extend(json.loads(msg["Body"]).get("Records", []))
        return any(x["s3"]["object"]["key"] == "events.csv" for x in records)

    queue_util.wait_for(notified, timeout=60, interval=0, what="the upload's event in the queue")
    rec = [x for x in records if x["s3"]["object"]["key"] == "events.csv"][0]
    assert rec["eventName"].startswith("ObjectCreated:") and rec["s3"]["bucket"]["name"] == bucket_name
    if skipped:
        warnings.warn("the console's RDS step was skipped: " + skipped)
