"""tests/e2e/test_fn_pg_concurrency.py -- reserved concurrency as a limit of
the cluster when two tarn nodes share one PostgreSQL (`tarn server
--metadata postgres://...`, here TARN_METADATA): a function with reserved
concurrency 2 runs 2 invocations at once across both nodes, the others are
throttled (TooManyRequestsException, Reason
ReservedFunctionConcurrentInvocationLimitExceeded); the slots a node held
when it was killed (kill -9) come back after their lease; a function
without a reservation runs 4 at once across the nodes.

Who runs at once is counted from the handler's side, with no timing
assumption: each run writes a marker object (in the object store the nodes
share) and then waits until the test writes a `go` object.
"""
import json
import threading
import time

import botocore.exceptions
import pytest

import lambda_util as lu
from pg_util import backend, pg, two_nodes, wait_for  # noqa: F401 (fixtures)

CODE = r"""
import datetime, hashlib, hmac, os, time, urllib.error, urllib.request


def call(method, bucket, key, body=b""):
    # one signed S3 request with the standard library
    env = os.environ
    host = env["AWS_ENDPOINT_URL"].split("//", 1)[1]
    now = datetime.datetime.utcnow()
    amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    digest = hashlib.sha256(body).hexdigest()
    path = "/%s/%s" % (bucket, key)
    canon = "%s\n%s\n\nhost:%s\nx-amz-content-sha256:%s\nx-amz-date:%s\n\n" \
        "host;x-amz-content-sha256;x-amz-date\n%s" % (method, path, host, digest, amz, digest)
    scope = "%s/%s/s3/aws4_request" % (day, env["AWS_REGION"])
    sts = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (amz, scope,
                                            hashlib.sha256(canon.encode()).hexdigest())
    k = ("AWS4" + env["AWS_SECRET_ACCESS_KEY"]).encode()
    for part in (day, env["AWS_REGION"], "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    auth = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=host;x-amz-content-sha256;" \
        "x-amz-date, Signature=%s" % (env["AWS_ACCESS_KEY_ID"], scope, sig)
    req = urllib.request.Request(env["AWS_ENDPOINT_URL"] + path,
                                 data=body if method == "PUT" else None, method=method,
                                 headers={"x-amz-date": amz, "x-amz-content-sha256": digest,
                                          "Authorization": auth})
    return urllib.request.urlopen(req, timeout=60).read()


def handler(event, context):
    bucket = event["bucket"]
    call("PUT", bucket, "started/" + context.aws_request_id, b"x")
    deadline = time.time() + 50
    while time.time() < deadline:
        try:
            call("GET", bucket, event["go"])
            return {"ran": True}
        except urllib.error.HTTPError:
            time.sleep(0.2)
    return {"ran": False}
"""


@pytest.fixture(scope="module")
def nodes(pg, backend, tmp_path_factory):
    """Two nodes over one PostgreSQL; a short slot lease so that a killed
    node's slots come back within the test."""
    yield from two_nodes(pg, backend, tmp_path_factory, prefix="fnpgconc",
                         extra={"TARN_FN_SLOT_LEASE_SECONDS": "3"})


def create(lam, name):
    return lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                               Role="arn:aws:iam::000000000000:role/lambda-role",
                               Code={"ZipFile": lu.zip_files({"app.py": (CODE, 0o100644)})},
                               Timeout=60)


def started(s3, bucket):
    got = s3.list_objects_v2(Bucket=bucket, Prefix="started/")
    return len(got.get("Contents", []))


def invoke_all(clients, name, payload):
    """Starts one synchronous Invoke per client at once, on threads; returns
    the threads and the list their outcomes land in ("ok" or the error's
    (Code, Reason))."""
    out = []
    gate = threading.Barrier(len(clients))

    def one(lam):
        gate.wait()
        try:
            r = lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
            body = json.loads(r["Payload"].read())
            out.append("ok" if body == {"ran": True} and "FunctionError" not in r else body)
        except botocore.exceptions.ClientError as e:
            out.append((e.response["Error"]["Code"], e.response.get("Reason")))
        except Exception as e:  # the node was killed under it
            out.append(type(e).__name__)

    threads = [threading.Thread(target=one, args=(lam,)) for lam in clients]
    for t in threads:
        t.start()
    return threads, out


THROTTLED = ("TooManyRequestsException", "ReservedFunctionConcurrentInvocationLimitExceeded")


def slots(pg, name):
    return int(pg.sql("SELECT count(*) FROM tarn_fn_slots WHERE fn = '%s'" % name).strip())


def test_reserved_concurrency_is_the_clusters(nodes, pg):
    a, b = nodes
    la, lb = lu.lambda_client(a), lu.lambda_client(b)
    s3 = a.client()
    bucket = "fnpgconc-reserved"
    s3.create_bucket(Bucket=bucket)
    name = lu.unique_name("reserved")
    create(la, name)
    la.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    assert lb.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 2
    clients = [lu.lambda_client(n) for n in (a, b, a, b, a, b)]
    threads, out = invoke_all(clients, name, {"bucket": bucket, "go": "go"})
    # four are refused at once; two run and wait for the go
    wait_for(lambda: out.count(THROTTLED) == 4, what="four throttles")
    wait_for(lambda: started(s3, bucket) == 2, what="two runs to start")
    assert slots(pg, name) == 2
    s3.put_object(Bucket=bucket, Key="go", Body=b"")
    for t in threads:
        t.join(timeout=180)
    assert sorted(out, key=str) == sorted(["ok"] * 2 + [THROTTLED] * 4, key=str)
    assert started(s3, bucket) == 2
    wait_for(lambda: slots(pg, name) == 0, what="the slots to be freed")
    # freed: the next invocation runs, on either node
    _, body = lu.invoke(lb, name, {"bucket": bucket, "go": "go"})
    assert body == {"ran": True}

    # reserved concurrency 0 refuses everything, on both nodes
    la.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    for lam in (la, lb):
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            lam.invoke(FunctionName=name, Payload=b"{}")
        assert (ei.value.response["Error"]["Code"], ei.value.response.get("Reason")) == THROTTLED


def test_a_killed_nodes_slots_come_back_after_the_lease(nodes, pg):
    a, b = nodes
    la, lb = lu.lambda_client(a), lu.lambda_client(b)
    s3 = a.client()
    bucket = "fnpgconc-kill"
    s3.create_bucket(Bucket=bucket)
    name = lu.unique_name("killed")
    create(la, name)
    la.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    # A runs two (never told to go on); B is refused while they hold the slots
    threads, out = invoke_all([lu.lambda_client(a), lu.lambda_client(a)], name,
                              {"bucket": bucket, "go": "never"})
    wait_for(lambda: started(s3, bucket) == 2, what="two runs on A")
    assert slots(pg, name) == 2
    s3.put_object(Bucket=bucket, Key="go", Body=b"")
    payload = json.dumps({"bucket": bucket, "go": "go"}).encode()
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        lb.invoke(FunctionName=name, Payload=payload)
    assert (ei.value.response["Error"]["Code"], ei.value.response.get("Reason")) == THROTTLED
    a.kill9()
    for t in threads:
        t.join(timeout=60)

    def runs_on_b():
        try:
            _, body = lu.invoke(lb, name, json.loads(payload))
            return body == {"ran": True}
        except botocore.exceptions.ClientError as e:
            assert (e.response["Error"]["Code"], e.response.get("Reason")) == THROTTLED
            return False
    wait_for(runs_on_b, what="B to run once A's leases ran out")
    a.start()
    # A restarted: it kept none of the slots it had before
    wait_for(lambda: slots(pg, name) == 0, what="the slots to be freed")


def test_no_reservation_runs_four_at_once_across_nodes(nodes):
    a, b = nodes
    s3 = a.client()
    bucket = "fnpgconc-free"
    s3.create_bucket(Bucket=bucket)
    name = lu.unique_name("free")
    create(lu.lambda_client(a), name)
    threads, out = invoke_all([lu.lambda_client(n) for n in (a, b, a, b)], name,
                              {"bucket": bucket, "go": "go"})
    # all four started before any was told to go on: four at once
    wait_for(lambda: started(s3, bucket) == 4, what="four runs at once")
    s3.put_object(Bucket=bucket, Key="go", Body=b"")
    for t in threads:
        t.join(timeout=180)
    assert out == ["ok"] * 4
