"""tests/e2e/test_fn_pg.py -- functions shared by two tarn nodes over one
PostgreSQL (`tarn server --metadata postgres://...`, here TARN_METADATA): a
function created on one node is invoked on the other right after, code
updated on one runs on the other, a delete on one is seen on the other;
Event invocations spread over both nodes each run exactly once; Events a
node had claimed when it was killed (kill -9) run once, on the other node,
after their lease. Layers and function URLs: test_fn_pg_share.py.

The function writes one marker object per run (under a fresh name), in the
object store the nodes share, so a test counts runs, not distinct keys.
"""
import json
import time

import botocore.exceptions
import pytest

import lambda_util as lu
from pg_util import backend, pg, two_nodes, wait_for  # noqa: F401 (fixtures)

CODE = r"""
import datetime, hashlib, hmac, os, time, urllib.request, uuid
VERSION = %r


def put(bucket, key, body):
    # one signed PutObject with the standard library (boto3 takes seconds to
    # import on a loaded machine, and every run here is a cold start)
    env = os.environ
    host = env["AWS_ENDPOINT_URL"].split("//", 1)[1]
    now = datetime.datetime.utcnow()
    amz, day = now.strftime("%%Y%%m%%dT%%H%%M%%SZ"), now.strftime("%%Y%%m%%d")
    digest = hashlib.sha256(body).hexdigest()
    path = "/%%s/%%s" %% (bucket, key)
    canon = "PUT\n%%s\n\nhost:%%s\nx-amz-content-sha256:%%s\nx-amz-date:%%s\n\n" \
        "host;x-amz-content-sha256;x-amz-date\n%%s" %% (path, host, digest, amz, digest)
    scope = "%%s/%%s/s3/aws4_request" %% (day, env["AWS_REGION"])
    sts = "AWS4-HMAC-SHA256\n%%s\n%%s\n%%s" %% (amz, scope,
                                            hashlib.sha256(canon.encode()).hexdigest())
    k = ("AWS4" + env["AWS_SECRET_ACCESS_KEY"]).encode()
    for part in (day, env["AWS_REGION"], "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    auth = "AWS4-HMAC-SHA256 Credential=%%s/%%s, SignedHeaders=host;x-amz-content-sha256;" \
        "x-amz-date, Signature=%%s" %% (env["AWS_ACCESS_KEY_ID"], scope, sig)
    req = urllib.request.Request(env["AWS_ENDPOINT_URL"] + path, data=body, method="PUT",
                                 headers={"x-amz-date": amz, "x-amz-content-sha256": digest,
                                          "Authorization": auth})
    urllib.request.urlopen(req, timeout=60).read()


def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if "bucket" in event:
        put(event["bucket"], "%%s/%%s" %% (event["key"], uuid.uuid4().hex),
            context.aws_request_id.encode())
    return {"version": VERSION}
"""


def code(version):
    return lu.zip_files({"app.py": (CODE % version, 0o100644)})


@pytest.fixture(scope="module")
def nodes(pg, backend, tmp_path_factory):
    """Two nodes over one PostgreSQL and one object backend; a short lease
    margin so that a killed node's Events are taken over within the test."""
    yield from two_nodes(pg, backend, tmp_path_factory, prefix="fnpg",
                         extra={"TARN_FN_EVENT_LEASE_SECONDS": "1"})


def create(lam, name, version="v1", **kw):
    return lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                               Role="arn:aws:iam::000000000000:role/lambda-role",
                               Code={"ZipFile": code(version)}, **kw)


def runs(s3, bucket):
    """{event key: number of runs} from the marker objects."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            k = o["Key"].split("/")[0]
            out[k] = out.get(k, 0) + 1
    return out


def test_function_lifecycle_across_nodes(nodes):
    a, b = nodes
    la, lb = lu.lambda_client(a), lu.lambda_client(b)
    name = lu.unique_name("shared-fn")
    cfg = create(la, name, Environment={"Variables": {"KEY": "000042"}})
    # at once on B: no wait for any propagation
    _, body = lu.invoke(lb, name)
    assert body == {"version": "v1"}
    got = lb.get_function(FunctionName=name)["Configuration"]
    assert got["CodeSha256"] == cfg["CodeSha256"]
    assert got["Environment"]["Variables"] == {"KEY": "000042"}
    assert name in [f["FunctionName"] for f in lb.list_functions()["Functions"]]

    # code updated on B runs on A (whose v1 instance is warm)
    _, body = lu.invoke(la, name)
    assert body == {"version": "v1"}
    new = lb.update_function_code(FunctionName=name, ZipFile=code("v2"))
    assert new["CodeSha256"] != cfg["CodeSha256"]
    _, body = lu.invoke(la, name)
    assert body == {"version": "v2"}
    assert la.get_function(FunctionName=name)["Configuration"]["CodeSha256"] == new["CodeSha256"]

    # versions and aliases made on A resolve on B
    v = la.publish_version(FunctionName=name)["Version"]
    la.create_alias(FunctionName=name, Name="live", FunctionVersion=v)
    _, body = lu.invoke(lb, name, Qualifier="live")
    assert body == {"version": "v2"}
    # a second create of the name, on the other node, conflicts
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        create(lb, name)
    assert ei.value.response["Error"]["Code"] == "ResourceConflictException"

    la.delete_function(FunctionName=name)
    for call in (lambda: lu.invoke(lb, name), lambda: lb.get_function(FunctionName=name)):
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            call()
        assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert name not in [f["FunctionName"] for f in lb.list_functions()["Functions"]]


def test_events_run_once_across_nodes(nodes, pg):
    a, b = nodes
    la, lb = lu.lambda_client(a), lu.lambda_client(b)
    s3 = a.client()
    s3.create_bucket(Bucket="fnpg-spread")
    name = lu.unique_name("spread")
    create(la, name, Timeout=30)
    n = 12
    for i in range(n):
        lam = la if i % 2 == 0 else lb
        r = lam.invoke(FunctionName=name, InvocationType="Event",
                       Payload=json.dumps({"bucket": "fnpg-spread", "key": "e%02d" % i}).encode())
        assert r["StatusCode"] == 202
    wait_for(lambda: pg.sql("SELECT count(*) FROM tarn_fn_events WHERE fn = '%s'" % name)
             .strip() == "0", what="the queued events to finish")
    assert runs(s3, "fnpg-spread") == {"e%02d" % i: 1 for i in range(n)}


def test_claimed_events_of_a_killed_node_run_once_elsewhere(nodes, pg):
    a, b = nodes
    la = lu.lambda_client(a)
    s3 = a.client()
    s3.create_bucket(Bucket="fnpg-kill")
    name = lu.unique_name("killed")
    create(la, name, Timeout=6)
    # only A runs: it claims every event, then dies while they sleep
    b.stop_clean()
    n = 4
    for i in range(n):
        la.invoke(FunctionName=name, InvocationType="Event",
                  Payload=json.dumps({"bucket": "fnpg-kill", "key": "k%d" % i,
                                      "sleep": 4}).encode())
    wait_for(lambda: pg.sql("SELECT count(*) FROM tarn_fn_events WHERE fn = '%s' AND owner IS "
                            "NOT NULL" % name).strip() == str(n), what="A to claim the events")
    assert runs(s3, "fnpg-kill") == {}
    a.kill9()
    b.start()
    wait_for(lambda: pg.sql("SELECT count(*) FROM tarn_fn_events WHERE fn = '%s'" % name)
             .strip() == "0", what="B to run the events after the lease")
    assert runs(b.client(), "fnpg-kill") == {"k%d" % i: 1 for i in range(n)}
    a.start()

