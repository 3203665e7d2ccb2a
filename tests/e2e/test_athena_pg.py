"""tests/e2e/test_athena_pg.py -- two tarn nodes sharing Athena's state in
PostgreSQL (`--metadata`): the query history, ClientRequestTokens and work
groups; the objects (and so the results) in one object backend.

What a user of two nodes checks: a query started on A is polled, listed,
paged and read back on B; a work group made on one node is the same on the
other; StopQueryExecution on B cancels a query running (or queued) on A;
and a query whose node was killed does not stay RUNNING: once its lease
ran out it is FAILED with a reason that says so, seen from the other node.

Each node runs one query at a time (TARN_ATHENA_MAX_QUERIES=1), so a second
query on A while a long one runs there is QUEUED; the lease is short
(TARN_ATHENA_LEASE_SECONDS=5) so that a dead node's query fails quickly.

Start reading at test_query_started_on_a_read_on_b().
"""
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from pg_util import backend, pg, two_nodes  # noqa: F401 (fixtures)
from tarnlib import unique_bucket_name
from test_athena import FINAL, LONG, wait_state

LEASE_S = 5


@pytest.fixture(scope="module")
def nodes(pg, backend, tmp_path_factory):
    yield from two_nodes(pg, backend, tmp_path_factory, prefix="athena",
                         extra={"TARN_ATHENA_MAX_QUERIES": "1",
                                "TARN_ATHENA_LEASE_SECONDS": str(LEASE_S)})


@pytest.fixture(scope="module")
def ath(nodes):
    a, b = nodes
    return a.service_client("athena"), b.service_client("athena")


@pytest.fixture(scope="module")
def lake(nodes):
    """A bucket (made on A, seen by both) with a small table and the long query's input."""
    s3 = nodes[0].client()
    b = unique_bucket_name("athpg")
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="sales/part-0.csv",
                  Body=b"id,name\n000042,alpha\n7,beta\n3,gamma\n")
    s3.put_object(Bucket=b, Key="n/n.csv",
                  Body=("x\n" + "".join("%d\n" % i for i in range(2000))).encode())
    return b


def start(ath, sql, out, **kw):
    return ath.start_query_execution(QueryString=sql, ResultConfiguration={"OutputLocation": out},
                                     **kw)["QueryExecutionId"]


def values(page):
    return [[c.get("VarCharValue") for c in r["Data"]] for r in page["ResultSet"]["Rows"]]


def test_query_started_on_a_read_on_b(ath, lake):
    aa, ab = ath
    out = "s3://%s/results/" % lake
    sql = "SELECT id, name FROM 's3://%s/sales/' ORDER BY name" % lake
    token = uuid.uuid4().hex
    qid = start(aa, sql, out, ClientRequestToken=token)
    q = wait_state(ab, qid)                          # polled on B
    assert q["Status"]["State"] == "SUCCEEDED", q["Status"]
    assert q["Query"] == sql and q["WorkGroup"] == "primary"
    assert q["ResultConfiguration"]["OutputLocation"] == "%s%s.csv" % (out, qid)
    assert q["Statistics"]["DataScannedInBytes"] > 0
    # results read on B, page by page (the NextToken of B works on A)
    p1 = ab.get_query_results(QueryExecutionId=qid, MaxResults=2)
    assert values(p1) == [["id", "name"], ["000042", "alpha"]]
    p2 = aa.get_query_results(QueryExecutionId=qid, NextToken=p1["NextToken"])
    assert values(p2) == [["7", "beta"], ["3", "gamma"]]
    stats = ab.get_query_runtime_statistics(QueryExecutionId=qid)["QueryRuntimeStatistics"]
    assert stats["Rows"]["OutputRows"] == 3
    got = ab.batch_get_query_execution(QueryExecutionIds=[qid])["QueryExecutions"]
    assert [x["QueryExecutionId"] for x in got] == [qid]
    # the same token on B answers A's execution
    assert start(ab, sql, out, ClientRequestToken=token) == qid
    with pytest.raises(ClientError) as ei:            # ... and only with the same request
        start(ab, "SELECT 1", out, ClientRequestToken=token)
    assert ei.value.response["Error"]["Code"] == "InvalidRequestException"

    # the history, newest first, paged across the nodes
    more = [start(ab if i % 2 else aa, "SELECT %d AS i" % i, out) for i in range(3)]
    for m in more:
        assert wait_state(aa, m)["Status"]["State"] == "SUCCEEDED"
    page = ab.list_query_executions(MaxResults=2)
    assert page["QueryExecutionIds"] == [more[2], more[1]]
    rest = aa.list_query_executions(MaxResults=50, NextToken=page["NextToken"])
    assert rest["QueryExecutionIds"][:2] == [more[0], qid]
    assert "NextToken" not in rest


def test_work_groups_shared(ath, lake):
    aa, ab = ath
    out = "s3://%s/wg/" % lake
    aa.create_work_group(Name="analysts", Description="from A",
                         Configuration={"ResultConfiguration": {"OutputLocation": out}})
    wg = ab.get_work_group(WorkGroup="analysts")["WorkGroup"]
    assert wg["Description"] == "from A"
    assert wg["Configuration"]["ResultConfiguration"]["OutputLocation"] == out
    names = [w["Name"] for w in ab.list_work_groups()["WorkGroups"]]
    assert names == sorted(names) and {"analysts", "primary"} <= set(names)
    with pytest.raises(ClientError) as ei:              # taken on A, taken on B
        ab.create_work_group(Name="analysts")
    assert ei.value.response["Error"]["Code"] == "InvalidRequestException"

    ab.update_work_group(WorkGroup="analysts", Description="from B")
    assert aa.get_work_group(WorkGroup="analysts")["WorkGroup"]["Description"] == "from B"
    # a query in the group on B goes to the group's location; A lists it in the group
    qid = ab.start_query_execution(QueryString="SELECT 'x' AS x",
                                   WorkGroup="analysts")["QueryExecutionId"]
    q = wait_state(aa, qid)
    assert q["Status"]["State"] == "SUCCEEDED", q["Status"]
    assert q["ResultConfiguration"]["OutputLocation"].startswith(out)
    assert aa.list_query_executions(WorkGroup="analysts")["QueryExecutionIds"] == [qid]
    ab.update_work_group(WorkGroup="analysts", State="DISABLED")
    with pytest.raises(ClientError):
        aa.start_query_execution(QueryString="SELECT 1", WorkGroup="analysts")

    ab.delete_work_group(WorkGroup="analysts")
    with pytest.raises(ClientError) as ei:
        aa.get_work_group(WorkGroup="analysts")
    assert ei.value.response["Error"]["Code"] == "InvalidRequestException"


def test_same_token_and_work_group_on_both_nodes_at_once(ath, lake):
    out = "s3://%s/race/" % lake
    for round_ in range(3):
        token = uuid.uuid4().hex
        name = "race-%d" % round_
        got = [None] * 4
        def go(i):
            cl = ath[i % 2]
            try:
                if i < 2:
                    got[i] = start(cl, "SELECT %d AS r" % round_, out, ClientRequestToken=token)
                else:
                    cl.create_work_group(Name=name)
                    got[i] = "made"
            except ClientError as exc:
                got[i] = exc.response["Error"]["Code"]
        threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got[0] == got[1] and len(got[0]) == 36, got   # one execution for the token
        assert sorted(got[2:]) == ["InvalidRequestException", "made"], got
        assert wait_state(ath[1], got[0])["Status"]["State"] == "SUCCEEDED"
        ath[0].delete_work_group(WorkGroup=name)


def test_stop_on_b_cancels_on_a(ath, lake):
    aa, ab = ath
    out = "s3://%s/stop/" % lake
    long_id = start(aa, LONG.format(b=lake), out)
    q = wait_state(ab, long_id, ("RUNNING",))        # B sees it RUNNING
    assert q["Status"]["State"] == "RUNNING"
    # ... and still RUNNING well past its lease: A renews it
    until = time.monotonic() + 1.5 * LEASE_S
    while time.monotonic() < until:
        q = ab.get_query_execution(QueryExecutionId=long_id)["QueryExecution"]
        assert q["Status"]["State"] == "RUNNING", q["Status"]
        time.sleep(0.5)
    assert q["Statistics"]["EngineExecutionTimeInMillis"] >= 1.5 * LEASE_S * 1000 - 1000
    queued = start(aa, "SELECT 42", out)              # A runs one at a time: it waits
    assert ab.get_query_execution(QueryExecutionId=queued)["QueryExecution"]["Status"][
        "State"] == "QUEUED"

    ab.stop_query_execution(QueryExecutionId=queued)
    q = wait_state(ab, queued)
    assert q["Status"]["State"] == "CANCELLED", q["Status"]
    ab.stop_query_execution(QueryExecutionId=long_id)
    q = wait_state(aa, long_id)
    assert q["Status"]["State"] == "CANCELLED", q["Status"]
    assert "StopQueryExecution" in q["Status"]["StateChangeReason"]
    assert wait_state(ab, long_id)["Status"]["State"] == "CANCELLED"
    # A's pool is free again
    qid = start(aa, "SELECT 1 AS one", out)
    assert wait_state(ab, qid)["Status"]["State"] == "SUCCEEDED"


def test_query_of_a_killed_node_fails_after_its_lease(nodes, ath, lake):
    a, _ = nodes
    aa, ab = ath
    out = "s3://%s/killed/" % lake
    qid = start(aa, LONG.format(b=lake), out)
    wait_state(ab, qid, ("RUNNING",))
    a.kill9()
    killed_at = time.monotonic()
    q = wait_state(ab, qid, FINAL, timeout=LEASE_S * 10 + 60)
    assert time.monotonic() - killed_at >= LEASE_S / 2   # not before the lease could end
    assert q["Status"]["State"] == "FAILED", q["Status"]
    reason = q["Status"]["StateChangeReason"]
    assert "lease" in reason and "run it again" in reason, reason
    assert q["Status"]["AthenaError"]["Retryable"] is True
    # B lists it as it is, and A, back on its directory, agrees
    assert qid in ab.list_query_executions()["QueryExecutionIds"]
    a.start()
    aa = a.service_client("athena")
    assert aa.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"][
        "State"] == "FAILED"
    qid2 = start(aa, "SELECT 2 AS two", out)
    assert wait_state(ab, qid2)["Status"]["State"] == "SUCCEEDED"
