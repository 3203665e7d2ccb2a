"""tests/e2e/test_rds_data.py -- serverless PostgreSQL behind the RDS Data API.

boto3's rds, secretsmanager and rds-data clients (and the AWS CLI) against a
real tarn running real PostgreSQL clusters: create a cluster, typed
parameters and results, JSON records, batches, transactions, SQL errors,
auto-pause and resume, durability across a restart and kill -9, delete.
"""
import base64
import json
import os
import subprocess
import time
import urllib.parse

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import tarnlib

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/lib/postgresql/15/bin/postgres"),
                                reason="Debian's postgresql is not installed")

WAIT = 120  # seconds: generous, the machine is loaded


def clients(srv):
    cfg = Config(retries={"total_max_attempts": 1}, read_timeout=180, connect_timeout=10)
    kw = dict(endpoint_url=srv.endpoint, region_name=tarnlib.REGION,
              aws_access_key_id=srv.access_key, aws_secret_access_key=srv.secret_key,
              config=cfg)
    s = boto3.session.Session()
    return s.client("rds", **kw), s.client("secretsmanager", **kw), s.client("rds-data", **kw)


def create(rds, name, pause=300, min_cap=0.0):
    # Debian 12's botocore predates ManageMasterUserPassword and
    # SecondsUntilAutoPause: they are added to the signed form as newer SDKs send them.
    extra = {"ManageMasterUserPassword": "true",
             "ServerlessV2ScalingConfiguration.SecondsUntilAutoPause": str(pause)}

    def add(request, **kw):
        if isinstance(request.data, dict):
            request.data.update(extra)
        else:
            body = request.data.decode() if isinstance(request.data, bytes) else request.data
            request.data = body + "&" + urllib.parse.urlencode(extra)

    rds.meta.events.register("before-sign.rds.CreateDBCluster", add)
    try:
        c = rds.create_db_cluster(
            DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername="master",
            DatabaseName="app", EnableHttpEndpoint=True,
            ServerlessV2ScalingConfiguration={"MinCapacity": min_cap, "MaxCapacity": 4})
    finally:
        rds.meta.events.unregister("before-sign.rds.CreateDBCluster", add)
    c = c["DBCluster"]
    return c["DBClusterArn"], manage_secret(rds, name)


def manage_secret(rds, name):
    """The managed secret's ARN (MasterUserSecret is newer than Debian's
    botocore too: read it from DescribeDBClusters' XML)."""
    out = {}

    def grab(http_response, parsed, **kw):
        body = http_response.content.decode()
        a = body.index("<SecretArn>") + len("<SecretArn>")
        out["arn"] = body[a:body.index("</SecretArn>")]

    rds.meta.events.register("after-call.rds.DescribeDBClusters", grab)
    try:
        rds.describe_db_clusters(DBClusterIdentifier=name)
    finally:
        rds.meta.events.unregister("after-call.rds.DescribeDBClusters", grab)
    return out["arn"]


def wait_for(what, fn, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture(scope="module")
def env(tarn):
    rds, sm, data = clients(tarn)
    arn, secret = create(rds, "main")
    ex = lambda sql, **kw: data.execute_statement(resourceArn=arn, secretArn=secret,
                                                  database="app", sql=sql, **kw)
    return dict(srv=tarn, rds=rds, sm=sm, data=data, arn=arn, secret=secret, ex=ex)


def test_cluster_and_secret(env):
    rds, sm = env["rds"], env["sm"]
    c = rds.describe_db_clusters(DBClusterIdentifier="main")["DBClusters"][0]
    assert c["Engine"] == "aurora-postgresql"
    assert c["Status"] == "available"
    assert c["HttpEndpointEnabled"] is True
    assert c["ServerlessV2ScalingConfiguration"]["MinCapacity"] == 0
    value = json.loads(sm.get_secret_value(SecretId=env["secret"])["SecretString"])
    meta = os.path.join(env["srv"].data, "rdb", "meta")
    for name in os.listdir(meta):  # the secrets live here: private files
        assert os.stat(os.path.join(meta, name)).st_mode & 0o077 == 0
    assert value["username"] == "master" and len(value["password"]) >= 8
    with pytest.raises(ClientError) as ei:
        create(rds, "main")
    assert ei.value.response["Error"]["Code"] == "DBClusterAlreadyExistsFault"
    with pytest.raises(ClientError) as ei:
        rds.describe_db_clusters(DBClusterIdentifier="nope")
    assert ei.value.response["Error"]["Code"] == "DBClusterNotFoundFault"
    with pytest.raises(ClientError) as ei:
        rds.create_db_cluster(DBClusterIdentifier="x1", Engine="mysql",
                              MasterUsername="m", MasterUserPassword="secret123")
    assert ei.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as ei:  # DATA/rdb/meta holds the state
        rds.create_db_cluster(DBClusterIdentifier="Meta", Engine="aurora-postgresql",
                              MasterUsername="m", MasterUserPassword="secret123")
    assert ei.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert os.stat(os.path.join(env["srv"].data, "rdb", "meta")).st_uid == os.getuid()
    # a user's own secret works too; a wrong password is refused by PostgreSQL
    mine = sm.create_secret(Name="app-creds", SecretString=json.dumps(value))["ARN"]
    assert any(s["ARN"] == mine for s in sm.list_secrets()["SecretList"])
    r = env["data"].execute_statement(resourceArn=env["arn"], secretArn=mine, sql="SELECT 1")
    assert r["records"] == [[{"longValue": 1}]]
    bad = sm.create_secret(Name="bad-creds", SecretString=json.dumps(
        {"username": "master", "password": "wrong-password"}))["ARN"]
    with pytest.raises(ClientError) as ei:
        env["data"].execute_statement(resourceArn=env["arn"], secretArn=bad, sql="SELECT 1")
    assert ei.value.response["Error"]["Code"] == "BadRequestException"
    assert "password authentication failed" in ei.value.response["Error"]["Message"]
    sm.delete_secret(SecretId=bad, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as ei:
        sm.get_secret_value(SecretId=bad)
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_types_and_parameters(env):
    ex = env["ex"]
    ex("CREATE TABLE t (id bigint PRIMARY KEY, name text, score double precision, ok boolean,"
       " raw bytea, born date, at timestamp, amount numeric(10,2), u uuid, doc jsonb,"
       " code text)")
    r = ex("INSERT INTO t VALUES (:id, :name, :score, :ok, :raw, :born, :at, :amount, :u,"
           " :doc, :code)", parameters=[
               {"name": "id", "value": {"longValue": 1}},
               {"name": "name", "value": {"stringValue": "it's ok"}},
               {"name": "score", "value": {"doubleValue": 2.5}},
               {"name": "ok", "value": {"booleanValue": True}},
               {"name": "raw", "value": {"blobValue": b"\x00\x01\xff"}},
               {"name": "born", "value": {"stringValue": "2020-02-29"}, "typeHint": "DATE"},
               {"name": "at", "value": {"stringValue": "2024-01-02 03:04:05"},
                "typeHint": "TIMESTAMP"},
               {"name": "amount", "value": {"stringValue": "12.34"}, "typeHint": "DECIMAL"},
               {"name": "u", "value": {"stringValue": "6f1c2a8e-2b4e-4d4c-9a55-0c0a3c9d1e11"},
                "typeHint": "UUID"},
               {"name": "doc", "value": {"stringValue": '{"a": [1, 2]}'}, "typeHint": "JSON"},
               {"name": "code", "value": {"stringValue": "000042"}},
           ])
    assert r["numberOfRecordsUpdated"] == 1
    ex("INSERT INTO t (id, name) VALUES (2, NULL)")
    r = ex("SELECT id, name, score, ok, raw, born, at, amount, u, doc, code FROM t ORDER BY id",
           includeResultMetadata=True)
    row = r["records"][0]
    assert row[0] == {"longValue": 1}
    assert row[1] == {"stringValue": "it's ok"}
    assert row[2] == {"doubleValue": 2.5}
    assert row[3] == {"booleanValue": True}
    assert row[4] == {"blobValue": b"\x00\x01\xff"}
    assert row[5] == {"stringValue": "2020-02-29"}
    assert row[6] == {"stringValue": "2024-01-02 03:04:05"}
    assert row[7] == {"stringValue": "12.34"}
    assert row[8] == {"stringValue": "6f1c2a8e-2b4e-4d4c-9a55-0c0a3c9d1e11"}
    assert json.loads(row[9]["stringValue"]) == {"a": [1, 2]}
    assert row[10] == {"stringValue": "000042"}
    assert r["records"][1][1] == {"isNull": True}
    names = [c["name"] for c in r["columnMetadata"]]
    assert names[:3] == ["id", "name", "score"]
    assert r["columnMetadata"][0]["typeName"] == "int8"
    # JSON records
    r = ex("SELECT id, name, ok FROM t WHERE id = :id", formatRecordsAs="JSON",
           parameters=[{"name": "id", "value": {"longValue": 1}}])
    assert json.loads(r["formattedRecords"]) == [{"id": 1, "name": "it's ok", "ok": True}]
    assert "records" not in r
    # arrays
    r = ex("SELECT ARRAY[1,2,3] AS a, ARRAY['x','y z'] AS b, ARRAY[[1,2],[3,4]] AS c")
    a, b, c = r["records"][0]
    assert a == {"arrayValue": {"longValues": [1, 2, 3]}}
    assert b == {"arrayValue": {"stringValues": ["x", "y z"]}}
    assert c == {"arrayValue": {"arrayValues": [{"longValues": [1, 2]}, {"longValues": [3, 4]}]}}
    r = ex("SELECT ARRAY[1.5, 2]::float8[] AS f, ARRAY[true, false] AS g,"
           " ARRAY['2024-01-02'::date] AS h, ARRAY[1, NULL] AS d", includeResultMetadata=True)
    f, g, h, d = r["records"][0]
    assert f == {"arrayValue": {"doubleValues": [1.5, 2.0]}}
    assert g == {"arrayValue": {"booleanValues": [True, False]}}
    assert h == {"arrayValue": {"stringValues": ["2024-01-02"]}}
    assert d == {"stringValue": "{1,NULL}"}  # a Field's list cannot hold null
    assert [c["typeName"] for c in r["columnMetadata"]] == ["_float8", "_bool", "_date", "_int4"]
    assert r["columnMetadata"][0]["type"] == 2003  # java.sql.Types.ARRAY
    # formatRecordsAs JSON: plain JSON arrays, nulls included
    r = ex("SELECT ARRAY[1, NULL] AS d, ARRAY[['a','b'],['c','d']] AS e", formatRecordsAs="JSON")
    assert json.loads(r["formattedRecords"]) == [{"d": [1, None], "e": [["a", "b"], ["c", "d"]]}]
    # a literal ':x' and a '::' cast are not parameters
    r = ex("SELECT ':x' AS s, 5::text AS n")
    assert r["records"] == [[{"stringValue": ":x"}, {"stringValue": "5"}]]


def test_array_parameters(env):
    # arrayValue parameters (AWS's Data API refuses them; tarn sends them as
    # PostgreSQL arrays, typed by their member or typeHint)
    ex = env["ex"]
    ex("CREATE TABLE arr (id int PRIMARY KEY, tags text[], nums bigint[], w float8[],"
       " flags bool[], days date[], at timestamp[], t time[], amounts numeric[], ids uuid[],"
       " docs json[], grid int[][])")
    arr = lambda member, values, hint=None: dict(
        {"value": {"arrayValue": {member: values}}}, **({"typeHint": hint} if hint else {}))
    params = {
        "tags": arr("stringValues", ["a", 'q"u\\o', "y z", "000042"]),
        "nums": arr("longValues", [1, -2, 9007199254740993]),
        "w": arr("doubleValues", [1.5, -0.25]),
        "flags": arr("booleanValues", [True, False]),
        "days": arr("stringValues", ["2020-02-29"], "DATE"),
        "at": arr("stringValues", ["2024-01-02 03:04:05"], "TIMESTAMP"),
        "t": arr("stringValues", ["12:34:56"], "TIME"),
        "amounts": arr("stringValues", ["12.34", "0.10"], "DECIMAL"),
        "ids": arr("stringValues", ["6f1c2a8e-2b4e-4d4c-9a55-0c0a3c9d1e11"], "UUID"),
        "docs": arr("stringValues", ['{"a": 1}'], "JSON"),
        "grid": {"value": {"arrayValue": {"arrayValues": [{"longValues": [1, 2]},
                                                          {"longValues": [3, 4]}]}}},
    }
    plist = [dict(p, name=n) for n, p in params.items()]
    plist.append({"name": "id", "value": {"longValue": 1}})
    cols = ", ".join(params)
    ex("INSERT INTO arr (id, %s) VALUES (:id, %s)" % (cols, ", ".join(":" + n for n in params)),
       parameters=plist)
    row = ex("SELECT %s FROM arr" % cols)["records"][0]
    got = dict(zip(params, row))
    assert got["tags"] == {"arrayValue": {"stringValues": ["a", 'q"u\\o', "y z", "000042"]}}
    assert got["nums"] == {"arrayValue": {"longValues": [1, -2, 9007199254740993]}}
    assert got["w"] == {"arrayValue": {"doubleValues": [1.5, -0.25]}}
    assert got["flags"] == {"arrayValue": {"booleanValues": [True, False]}}
    assert got["days"] == {"arrayValue": {"stringValues": ["2020-02-29"]}}
    assert got["at"] == {"arrayValue": {"stringValues": ["2024-01-02 03:04:05"]}}
    assert got["t"] == {"arrayValue": {"stringValues": ["12:34:56"]}}
    assert got["amounts"] == {"arrayValue": {"stringValues": ["12.34", "0.10"]}}
    assert got["ids"] == {"arrayValue": {"stringValues": ["6f1c2a8e-2b4e-4d4c-9a55-0c0a3c9d1e11"]}}
    assert got["docs"] == {"arrayValue": {"stringValues": ['{"a": 1}']}}
    assert got["grid"] == {"arrayValue": {"arrayValues": [{"longValues": [1, 2]},
                                                          {"longValues": [3, 4]}]}}
    # = ANY(:ids) with a list
    r = ex("SELECT count(*) FROM arr WHERE id = ANY(:ids)",
           parameters=[{"name": "ids", "value": {"arrayValue": {"longValues": [1, 5]}}}])
    assert r["records"] == [[{"longValue": 1}]]
    # mixed member types are refused and change nothing
    with pytest.raises(ClientError) as ei:
        ex("INSERT INTO arr (id, grid) VALUES (2, :g)", parameters=[{"name": "g", "value": {
            "arrayValue": {"arrayValues": [{"longValues": [1]}, {"stringValues": ["x"]}]}}}])
    assert ei.value.response["Error"]["Code"] == "BadRequestException"
    assert ex("SELECT count(*) FROM arr")["records"] == [[{"longValue": 1}]]
    # the AWS CLI sends them too
    r = env["srv"].aws_ok(
        "rds-data", "execute-statement", "--resource-arn", env["arn"], "--secret-arn",
        env["secret"], "--database", "app", "--sql", "SELECT cardinality(:a) AS n",
        "--parameters", '[{"name":"a","value":{"arrayValue":{"stringValues":["x","y"]}}}]',
        "--region", tarnlib.REGION)
    assert json.loads(r.stdout)["records"] == [[{"longValue": 2}]]


def test_connection_pool(env):
    data, arn, secret, ex = env["data"], env["arn"], env["secret"], env["ex"]
    pid = lambda **kw: data.execute_statement(
        resourceArn=arn, secretArn=secret, sql="SELECT pg_backend_pid()",
        **dict({"database": "app"}, **kw))["records"][0][0]["longValue"]
    # sequential statements reuse one connection (one backend)
    pids = {pid() for _ in range(20)}
    assert len(pids) == 1
    r = env["srv"].aws_ok("rds-data", "execute-statement", "--resource-arn", arn, "--secret-arn",
                          secret, "--database", "app", "--sql", "SELECT pg_backend_pid()",
                          "--region", tarnlib.REGION)  # the AWS CLI's statement too
    assert {json.loads(r.stdout)["records"][0][0]["longValue"]} == pids
    # a pool per database: another database gets its own, reused too
    other = {pid(database="postgres") for _ in range(5)}
    assert len(other) == 1 and other != pids
    # a transaction pins its connection; statements outside it take another
    tx = data.begin_transaction(resourceArn=arn, secretArn=secret,
                                database="app")["transactionId"]
    in_tx = {pid(transactionId=tx) for _ in range(5)}
    assert len(in_tx) == 1
    assert pid() not in in_tx
    data.rollback_transaction(resourceArn=arn, secretArn=secret, transactionId=tx)
    # the backends tarn keeps stay bounded (8 idle per cluster)
    for _ in range(10):
        pid()
    n = ex("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tarn-data-api'")
    assert 1 <= n["records"][0][0]["longValue"] <= 9


def test_sql_error_changes_nothing(env):
    ex = env["ex"]
    ex("CREATE TABLE e (id int PRIMARY KEY)")
    ex("INSERT INTO e VALUES (1)")
    with pytest.raises(ClientError) as ei:
        ex("INSERT INTO e VALUES (2), (1)")
    err = ei.value.response["Error"]
    assert err["Code"] == "BadRequestException"
    assert "duplicate key value violates unique constraint" in err["Message"]
    with pytest.raises(ClientError) as ei:
        ex("SELECT * FROM no_such_table")
    assert 'relation "no_such_table" does not exist' in ei.value.response["Error"]["Message"]
    assert ex("SELECT count(*) FROM e")["records"] == [[{"longValue": 1}]]


def test_batch_and_transactions(env):
    ex, data, arn, secret = env["ex"], env["data"], env["arn"], env["secret"]
    ex("CREATE TABLE b (id int PRIMARY KEY, v text)")
    r = data.batch_execute_statement(
        resourceArn=arn, secretArn=secret, database="app", sql="INSERT INTO b VALUES (:id, :v)",
        parameterSets=[[{"name": "id", "value": {"longValue": i}},
                        {"name": "v", "value": {"stringValue": "v%d" % i}}] for i in range(5)])
    assert len(r["updateResults"]) == 5
    # a failing set rolls the whole batch back
    with pytest.raises(ClientError):
        data.batch_execute_statement(
            resourceArn=arn, secretArn=secret, database="app", sql="INSERT INTO b VALUES (:id)",
            parameterSets=[[{"name": "id", "value": {"longValue": 10}}],
                           [{"name": "id", "value": {"longValue": 1}}]])
    assert ex("SELECT count(*) FROM b")["records"] == [[{"longValue": 5}]]
    # committed
    tx = data.begin_transaction(resourceArn=arn, secretArn=secret, database="app")["transactionId"]
    ex("INSERT INTO b VALUES (100, 'tx')", transactionId=tx)
    assert ex("SELECT count(*) FROM b WHERE id = 100")["records"] == [[{"longValue": 0}]]
    r = data.commit_transaction(resourceArn=arn, secretArn=secret, transactionId=tx)
    assert r["transactionStatus"] == "Transaction Committed"
    assert ex("SELECT v FROM b WHERE id = 100")["records"] == [[{"stringValue": "tx"}]]
    # rolled back
    tx = data.begin_transaction(resourceArn=arn, secretArn=secret, database="app")["transactionId"]
    ex("DELETE FROM b", transactionId=tx)
    r = data.rollback_transaction(resourceArn=arn, secretArn=secret, transactionId=tx)
    assert r["transactionStatus"] == "Rollback Complete"
    assert ex("SELECT count(*) FROM b")["records"] == [[{"longValue": 6}]]
    with pytest.raises(ClientError) as ei:
        data.commit_transaction(resourceArn=arn, secretArn=secret, transactionId=tx)
    assert ei.value.response["Error"]["Code"] == "BadRequestException"


def test_result_limit(env):
    with pytest.raises(ClientError) as ei:
        env["ex"]("SELECT repeat('x', 1000) FROM generate_series(1, 2000)")
    assert "response size limit" in ei.value.response["Error"]["Message"]


def test_huge_result_is_never_held(env):
    """Fifty million rows (gigabytes if buffered) end as the size error as
    soon as the first megabyte is read: the statement is cancelled, the
    server's memory stays small and the connection serves the next one."""
    srv = env["srv"]

    def rss_kb():
        with open("/proc/%d/status" % srv.proc.pid) as f:
            return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])

    before = rss_kb()
    for sql in ("SELECT generate_series(1, 50000000)",
                "SELECT 1; SELECT repeat('x', 100000000)"):
        with pytest.raises(ClientError) as ei:
            env["ex"](sql)
        assert "response size limit" in ei.value.response["Error"]["Message"], sql
    assert rss_kb() - before < 512 * 1024, (before, rss_kb())
    got = env["ex"]("SELECT 1 AS one; SELECT 'two' AS two", includeResultMetadata=True)
    assert got["records"] == [[{"stringValue": "two"}]]
    assert got["columnMetadata"][0]["name"] == "two"
    assert env["ex"]("SELECT n FROM generate_series(1, 3) n")["records"] == [
        [{"longValue": 1}], [{"longValue": 2}], [{"longValue": 3}]]


def test_secret_needs_the_callers_read(env):
    """The Data API reads the secret it is given for its caller: rds-data:*
    alone does not let a user borrow a secret (a stronger database user)."""
    srv = env["srv"]
    kw = dict(endpoint_url=srv.endpoint, region_name=tarnlib.REGION,
              config=Config(retries={"total_max_attempts": 1}))
    iam = boto3.session.Session().client("iam", aws_access_key_id=srv.access_key,
                                         aws_secret_access_key=srv.secret_key, **kw)
    iam.create_user(UserName="data-user")
    iam.put_user_policy(UserName="data-user", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "rds-data:*", "Resource": env["arn"]}]}))
    k = iam.create_access_key(UserName="data-user")["AccessKey"]
    data = boto3.session.Session().client("rds-data", aws_access_key_id=k["AccessKeyId"],
                                          aws_secret_access_key=k["SecretAccessKey"], **kw)
    ex = lambda: data.execute_statement(resourceArn=env["arn"], secretArn=env["secret"],
                                        database="app", sql="SELECT 1")
    with pytest.raises(ClientError) as ei:
        ex()
    assert ei.value.response["Error"]["Code"] == "ForbiddenException"
    assert "secretsmanager:GetSecretValue on resource: %s" % env["secret"] in \
        ei.value.response["Error"]["Message"]
    iam.put_user_policy(UserName="data-user", PolicyName="secret", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": env["secret"]}]}))
    assert ex()["records"] == [[{"longValue": 1}]]


def test_aws_cli(env):
    srv = env["srv"]
    r = srv.aws_ok("rds-data", "execute-statement", "--resource-arn", env["arn"],
                   "--secret-arn", env["secret"], "--database", "app",
                   "--sql", "SELECT 41 + 1 AS answer", "--region", tarnlib.REGION)
    assert json.loads(r.stdout)["records"] == [[{"longValue": 42}]]


def pg_running(srv, name):
    return os.path.exists(os.path.join(srv.data, "rdb", name, "pg", "postmaster.pid"))


def test_auto_pause_and_resume(env):
    rds, data, sm = env["rds"], env["data"], env["sm"]
    arn, secret = create(rds, "sleepy", pause=1)
    ex = lambda sql: data.execute_statement(resourceArn=arn, secretArn=secret, database="app",
                                            sql=sql)
    ex("CREATE TABLE k (v int)")
    ex("INSERT INTO k VALUES (7)")
    cap = lambda: rds.describe_db_clusters(DBClusterIdentifier="sleepy")["DBClusters"][0]["Capacity"]
    wait_for("the cluster to pause", lambda: cap() == 0)
    assert not pg_running(env["srv"], "sleepy")
    # the AWS CLI resumes it: its statement waits (TARN_RDB_RESUME_WAIT_SECONDS)
    r = env["srv"].aws_ok("rds-data", "execute-statement", "--resource-arn", arn,
                          "--secret-arn", secret, "--database", "app", "--sql", "SELECT v FROM k",
                          "--region", tarnlib.REGION)
    assert json.loads(r.stdout)["records"] == [[{"longValue": 7}]]
    # (it may have paused again already: its pause comes after 1 idle second)
    # stop / start
    rds.stop_db_cluster(DBClusterIdentifier="sleepy")
    assert rds.describe_db_clusters(DBClusterIdentifier="sleepy")["DBClusters"][0]["Status"] == "stopped"
    with pytest.raises(ClientError):
        ex("SELECT 1")
    rds.start_db_cluster(DBClusterIdentifier="sleepy")
    assert ex("SELECT v FROM k")["records"] == [[{"longValue": 7}]]
    # delete removes the directory and the managed secret
    rds.delete_db_cluster(DBClusterIdentifier="sleepy", SkipFinalSnapshot=True)
    assert not os.path.exists(os.path.join(env["srv"].data, "rdb", "sleepy"))
    with pytest.raises(ClientError) as ei:
        sm.get_secret_value(SecretId=secret)
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as ei:
        rds.describe_db_clusters(DBClusterIdentifier="sleepy")
    assert ei.value.response["Error"]["Code"] == "DBClusterNotFoundFault"


def test_restart_and_kill9(tarn_factory):
    srv = tarn_factory()
    rds, _, data = clients(srv)
    arn, secret = create(rds, "durable", min_cap=0.5)
    ex = lambda sql: data.execute_statement(resourceArn=arn, secretArn=secret, database="app",
                                            sql=sql)
    ex("CREATE TABLE d (v int)")
    ex("INSERT INTO d VALUES (1)")
    srv.restart()  # clean stop: PostgreSQL stopped with it
    rds, _, data = clients(srv)
    assert ex("SELECT count(*) FROM d")["records"] == [[{"longValue": 1}]]
    ex("INSERT INTO d VALUES (2)")
    pidfile = os.path.join(srv.data, "rdb", "durable", "pg", "postmaster.pid")
    pgpid = int(open(pidfile).read().split()[0])
    srv.kill9()
    # PostgreSQL follows tarn down (no orphan)
    wait_for("PostgreSQL to stop after tarn died",
             lambda: not os.path.exists("/proc/%d" % pgpid) or
             open("/proc/%d/stat" % pgpid).read().split()[2] == "Z")
    srv.start()
    rds, _, data = clients(srv)
    assert ex("SELECT count(*) FROM d")["records"] == [[{"longValue": 2}]]


def test_idle_transaction_expires(tarn_factory):
    # AWS rolls back a transaction after 3 idle minutes; this server says 2 s
    srv = tarn_factory(env={"TARN_RDB_TX_IDLE_SECONDS": "2"})
    rds, _, data = clients(srv)
    arn, secret = create(rds, "expiry", pause=1)
    ex = lambda sql, **kw: data.execute_statement(resourceArn=arn, secretArn=secret,
                                                  database="app", sql=sql, **kw)
    ex("CREATE TABLE x (v int)")
    tx = data.begin_transaction(resourceArn=arn, secretArn=secret)["transactionId"]
    ex("INSERT INTO x VALUES (1)", transactionId=tx)

    # watched from outside the transaction (a call in it would keep it alive)
    idle = lambda: ex("SELECT count(*) FROM pg_stat_activity WHERE state = "
                      "'idle in transaction'")["records"][0][0]["longValue"]
    assert idle() == 1
    wait_for("the transaction to expire", lambda: idle() == 0)
    with pytest.raises(ClientError) as ei:
        data.commit_transaction(resourceArn=arn, secretArn=secret, transactionId=tx)
    assert "is not found" in ei.value.response["Error"]["Message"]
    assert ex("SELECT count(*) FROM x")["records"] == [[{"longValue": 0}]]
    # with nothing open the cluster still pauses
    cap = lambda: rds.describe_db_clusters(DBClusterIdentifier="expiry")["DBClusters"][0]["Capacity"]
    wait_for("the cluster to pause", lambda: cap() == 0)
