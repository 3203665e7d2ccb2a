"""tests/e2e/test_rds_resume.py -- resuming an auto-paused cluster.

A statement on a paused cluster parks its request (no HTTP thread is held
while PostgreSQL starts) and is answered once the cluster runs; when the
resume takes longer than TARN_RDB_RESUME_WAIT_SECONDS it gets
DatabaseResumingException (with 0: at once, as AWS does) and the resume goes
on; kill -9 of tarn in the middle of a resume leaves no PostgreSQL behind.
TARN_RDB_TEST_RESUME_DELAY_MS makes the resumes slow enough to watch.
boto3 rds-data, the AWS CLI, and /_tarn/metrics.
"""
import concurrent.futures
import os
import re
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import tarnlib
from test_rds_data import WAIT, clients, create, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/lib/postgresql/15/bin/postgres"),
                                reason="Debian's postgresql is not installed")

N = 40  # more than the HTTP server's 32 threads


def metric(srv, name, cluster):
    text = srv.request("GET", "/_tarn/metrics").text
    m = re.search(r'^%s\{cluster="%s"\} (\S+)$' % (name, cluster), text, re.M)
    return float(m.group(1)) if m else None


def paused_cluster(srv, name):
    rds, sm, data = clients(srv)
    arn, secret = create(rds, name, pause=1)

    def make_table():
        # on a loaded machine the cluster may pause (after 1 s) before this
        # statement: with no wait on resumes it is told so, and retries
        try:
            return data.execute_statement(resourceArn=arn, secretArn=secret, database="app",
                                          sql="CREATE TABLE k AS SELECT 7 AS v")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "DatabaseResumingException"
            return None
    wait_for("the table to be made", make_table)
    cap = lambda: rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]["Capacity"]
    wait_for("the cluster to pause", lambda: cap() == 0)
    return rds, sm, data, arn, secret


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    """A server whose resumes take 8 s (the last test kills it): long enough
    for N statements to arrive and park on a loaded machine."""
    srv = tarnlib.Tarn(tmp_path_factory.mktemp("tarn"),
                       env={"TARN_RDB_TEST_RESUME_DELAY_MS": "8000"}).start()
    yield srv
    if srv.running():
        srv.stop_clean()


def test_resume_parks_requests(slow):
    srv = slow
    rds, sm, data, arn, secret = paused_cluster(srv, "parked")
    # on a loaded machine the cluster may have paused and resumed once
    # already while it was being set up: count from here
    resumes = metric(srv, "tarn_rdb_resumes_total", "parked") or 0
    s = boto3.session.Session()
    many = s.client("rds-data", endpoint_url=srv.endpoint, region_name=tarnlib.REGION,
                    aws_access_key_id=srv.access_key, aws_secret_access_key=srv.secret_key,
                    config=Config(retries={"total_max_attempts": 1}, read_timeout=300,
                                  max_pool_connections=N + 4))
    one = lambda i: many.execute_statement(resourceArn=arn, secretArn=secret, database="app",
                                           sql="SELECT v + %d FROM k" % i)["records"]
    with concurrent.futures.ThreadPoolExecutor(N) as pool:
        futs = [pool.submit(one, i) for i in range(N)]
        # all N wait for the one resume, parked, while the server answers others
        wait_for("the statements to park", lambda: metric(srv, "tarn_rdb_waiting", "parked") == N)
        sm.list_secrets()
        assert metric(srv, "tarn_rdb_waiting", "parked") == N
        assert not any(f.done() for f in futs)
        for i, f in enumerate(futs):
            assert f.result(timeout=WAIT) == [[{"longValue": 7 + i}]]
    assert metric(srv, "tarn_rdb_waiting", "parked") == 0
    assert metric(srv, "tarn_rdb_resumes_total", "parked") == resumes + 1  # one for them all
    assert metric(srv, "tarn_rdb_last_resume_seconds", "parked") >= 8.0
    # (the AWS CLI through a resume: test_rds_data.py's test_auto_pause_and_resume)


def resuming_error(data, arn, secret):
    with pytest.raises(ClientError) as ei:
        data.execute_statement(resourceArn=arn, secretArn=secret, database="app",
                               sql="SELECT v FROM k")
    err = ei.value.response
    assert err["Error"]["Code"] == "DatabaseResumingException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "resuming" in err["Error"]["Message"]


def retry_until_answered(data, arn, secret):
    def attempt():
        try:
            return data.execute_statement(resourceArn=arn, secretArn=secret, database="app",
                                          sql="SELECT v FROM k")["records"]
        except ClientError as e:
            assert e.response["Error"]["Code"] == "DatabaseResumingException"
            return None
    assert wait_for("the resume to finish", attempt) == [[{"longValue": 7}]]


def test_resuming_exception_when_the_wait_runs_out(tarn_factory):
    srv = tarn_factory(env={"TARN_RDB_RESUME_WAIT_SECONDS": "1",
                            "TARN_RDB_TEST_RESUME_DELAY_MS": "3000"})
    rds, sm, data, arn, secret = paused_cluster(srv, "slow")
    t0 = time.monotonic()
    resuming_error(data, arn, secret)
    assert time.monotonic() - t0 >= 0.9  # it waited its second first
    retry_until_answered(data, arn, secret)  # the resume went on without it


def test_resuming_exception_at_once_as_aws(tarn_factory):
    srv = tarn_factory(env={"TARN_RDB_RESUME_WAIT_SECONDS": "0",
                            "TARN_RDB_TEST_RESUME_DELAY_MS": "3000"})
    rds, sm, data, arn, secret = paused_cluster(srv, "aws")
    resuming_error(data, arn, secret)
    # the AWS CLI is told the same while the resume goes on
    r = srv.aws("rds-data", "execute-statement", "--resource-arn", arn, "--secret-arn", secret,
                "--database", "app", "--sql", "SELECT 1", "--region", tarnlib.REGION)
    assert r.returncode != 0 and "DatabaseResumingException" in r.stderr
    retry_until_answered(data, arn, secret)


def test_kill9_during_resume(slow):  # last: it kills the server
    srv = slow
    rds, sm, data, arn, secret = paused_cluster(srv, "crash")
    pidfile = os.path.join(srv.data, "rdb", "crash", "pg", "postmaster.pid")
    pool = concurrent.futures.ThreadPoolExecutor(1)
    fut = pool.submit(lambda: data.execute_statement(resourceArn=arn, secretArn=secret,
                                                     database="app", sql="SELECT v FROM k"))
    wait_for("the resume to start PostgreSQL", lambda: os.path.exists(pidfile))
    pgpid = int(open(pidfile).read().split()[0])
    srv.kill9()
    with pytest.raises(Exception):
        fut.result(timeout=WAIT)
    pool.shutdown()

    def gone():
        try:
            return open("/proc/%d/stat" % pgpid).read().split()[2] == "Z"
        except OSError:
            return True
    wait_for("PostgreSQL to stop after tarn died", gone)
    srv.start()
    rds, sm, data = clients(srv)
    assert data.execute_statement(resourceArn=arn, secretArn=secret, database="app",
                                  sql="SELECT v FROM k")["records"] == [[{"longValue": 7}]]
