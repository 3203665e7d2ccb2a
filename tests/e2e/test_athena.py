"""tests/e2e/test_athena.py -- the Athena API with boto3 and Debian's awscli:
queries over objects started, polled to a final state and read back page by
page with typed metadata; the result objects in the bucket (and their
ObjectCreated events); failing, stopped, queued and idempotent executions;
work groups; errors as Athena returns them; and the history across kill -9.

The module's server runs one query at a time (TARN_ATHENA_MAX_QUERIES=1), so
a second query while a long one runs is QUEUED.
"""
import csv
import io
import json
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tarnlib import REGION, Tarn, unique_bucket_name

FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
# 2,000 x 2,000 x 2,000 rows: minutes of work, so it is still running when stopped
LONG = ("SELECT count(*) AS n FROM 's3://{b}/n/' a CROSS JOIN 's3://{b}/n/' b "
        "CROSS JOIN 's3://{b}/n/' c WHERE a.x + b.x + c.x < 0")


def client(srv, service="athena", **config):
    cfg = dict(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60)
    cfg.update(config)
    return boto3.session.Session().client(
        service, endpoint_url=srv.endpoint, region_name=REGION,
        aws_access_key_id=srv.access_key, aws_secret_access_key=srv.secret_key,
        config=Config(**cfg))


def wait_state(ath, qid, states=FINAL, timeout=120.0):
    deadline = time.monotonic() + timeout
    while True:
        q = ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if q["Status"]["State"] in states:
            return q
        assert time.monotonic() < deadline, "query %s still %s" % (qid, q["Status"])
        time.sleep(0.05)


def error_of(exc):
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Tarn(tmp_path_factory.mktemp("tarn"), env={"TARN_ATHENA_MAX_QUERIES": "1"}).start()
    yield s
    s.stop_clean()


@pytest.fixture(scope="module")
def ath(srv):
    return client(srv)


@pytest.fixture(scope="module")
def s3(srv):
    return srv.client()


@pytest.fixture(scope="module")
def lake(s3):
    """A bucket with a small typed table, a 2,500-row one and the long query's input."""
    b = unique_bucket_name("athena")
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="sales/part-0.csv", Body=(
        "id,name,amount,day,flag\n"
        "1,alpha,10.5,2024-01-05,true\n"
        "2,\"b,\"\"quoted\"\"\",32.25,2024-02-10,false\n"
        "3,,7.0,2024-03-15,true\n").encode())
    s3.put_object(Bucket=b, Key="many/rows.csv",
                  Body=("v\n" + "".join("%d\n" % i for i in range(2500))).encode())
    s3.put_object(Bucket=b, Key="n/n.csv",
                  Body=("x\n" + "".join("%d\n" % i for i in range(2000))).encode())
    return b


def run(ath, sql, out, **kw):
    qid = ath.start_query_execution(QueryString=sql,
                                    ResultConfiguration={"OutputLocation": out}, **kw)
    return qid["QueryExecutionId"], wait_state(ath, qid["QueryExecutionId"])


def test_select_results_types_and_object(ath, s3, lake):
    out = "s3://%s/results/" % lake
    sql = ("SELECT id, name, amount, day, flag, CAST(amount AS DECIMAL(10,2)) AS price, "
           "CAST(day AS TIMESTAMP) AS ts, CAST(id AS INTEGER) AS small, "
           "CASE WHEN id = 3 THEN NULL ELSE name END AS maybe, '' AS empty "
           "FROM 's3://%s/sales/' ORDER BY id" % lake)
    qid, q = run(ath, sql, out, QueryExecutionContext={"Database": "default"})
    assert q["Status"]["State"] == "SUCCEEDED", q["Status"]
    assert q["Query"] == sql
    assert q["StatementType"] == "DML"
    assert q["WorkGroup"] == "primary"
    assert q["QueryExecutionContext"]["Database"] == "default"
    assert q["ResultConfiguration"]["OutputLocation"] == "%s%s.csv" % (out, qid)
    st = q["Statistics"]
    assert st["DataScannedInBytes"] > 0
    for k in ("EngineExecutionTimeInMillis", "TotalExecutionTimeInMillis",
              "QueryQueueTimeInMillis"):
        assert st[k] >= 0
    assert q["Status"]["CompletionDateTime"] >= q["Status"]["SubmissionDateTime"]

    # the result object, as Athena writes it
    body = s3.get_object(Bucket=lake, Key="results/%s.csv" % qid)["Body"].read().decode()
    lines = body.split("\n")
    assert lines[0] == '"id","name","amount","day","flag","price","ts","small","maybe","empty"'
    assert lines[1] == ('"1","alpha","10.5","2024-01-05","true","10.50","2024-01-05 00:00:00",'
                        '"1","alpha",""')
    assert lines[3].endswith(',"3",,""'), lines[3]   # NULL: empty and unquoted
    assert list(csv.reader(io.StringIO(body)))[2][1] == 'b,"quoted"'
    meta = json.loads(s3.get_object(Bucket=lake, Key="results/%s.csv.metadata" % qid)["Body"]
                      .read())
    assert meta["Rows"] == 3 and len(meta["ColumnInfo"]) == 10

    # GetQueryResults: the header row first, then the rows; typed metadata
    r = ath.get_query_results(QueryExecutionId=qid)
    rows = [[d.get("VarCharValue") for d in row["Data"]] for row in r["ResultSet"]["Rows"]]
    assert rows[0] == ["id", "name", "amount", "day", "flag", "price", "ts", "small", "maybe",
                       "empty"]
    assert rows[2] == ["2", 'b,"quoted"', "32.25", "2024-02-10", "false", "32.25",
                       "2024-02-10 00:00:00", "2", 'b,"quoted"', ""]
    assert rows[3][8] is None and r["ResultSet"]["Rows"][3]["Data"][8] == {}
    assert "NextToken" not in r
    info = {c["Name"]: c for c in r["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]}
    assert {n: c["Type"] for n, c in info.items()} == {
        "id": "bigint", "name": "varchar", "amount": "double", "day": "date",
        "flag": "boolean", "price": "decimal", "ts": "timestamp", "small": "integer",
        "maybe": "varchar", "empty": "varchar"}
    assert (info["price"]["Precision"], info["price"]["Scale"]) == (10, 2)
    assert info["name"]["Precision"] == 2147483647 and info["name"]["CaseSensitive"] is True
    assert info["id"]["Nullable"] == "UNKNOWN"

    rt = ath.get_query_runtime_statistics(QueryExecutionId=qid)["QueryRuntimeStatistics"]
    assert rt["Rows"]["OutputRows"] == 3
    assert rt["Rows"]["InputBytes"] == st["DataScannedInBytes"]
    assert rt["Timeline"]["TotalExecutionTimeInMillis"] == st["TotalExecutionTimeInMillis"]


def test_results_paging(ath, lake):
    qid, q = run(ath, "SELECT v FROM 's3://%s/many/' ORDER BY v" % lake,
                 "s3://%s/paged" % lake)
    assert q["Status"]["State"] == "SUCCEEDED"
    assert q["ResultConfiguration"]["OutputLocation"] == "s3://%s/paged/%s.csv" % (lake, qid)
    pages, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        r = ath.get_query_results(QueryExecutionId=qid, MaxResults=1000, **kw)
        pages.append([row["Data"][0]["VarCharValue"] for row in r["ResultSet"]["Rows"]])
        assert r["ResultSet"]["ResultSetMetadata"]["ColumnInfo"][0]["Type"] == "bigint"
        token = r.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [1000, 1000, 501]   # the header counts on page one
    flat = sum(pages, [])
    assert flat[0] == "v" and flat[1:] == [str(i) for i in range(2500)]
    # boto3's paginator walks the same pages
    got = []
    for page in ath.get_paginator("get_query_results").paginate(
            QueryExecutionId=qid, PaginationConfig={"PageSize": 700}):
        got += [row["Data"][0]["VarCharValue"] for row in page["ResultSet"]["Rows"]]
    assert got == flat
    with pytest.raises(ClientError) as e:
        ath.get_query_results(QueryExecutionId=qid, MaxResults=1001)
    with pytest.raises(ClientError) as e:
        ath.get_query_results(QueryExecutionId=qid, NextToken="bm90LWEtdG9rZW4=")
    assert error_of(e)[0] == "InvalidRequestException"


def test_large_rows_page_early(ath, lake):
    """A page holds at most 16 MiB of the result: large rows come in more pages."""
    qid, q = run(ath, "SELECT v, rpad('x', 1000000, 'y') AS big FROM 's3://%s/many/' "
                 "WHERE v < 40 ORDER BY v" % lake, "s3://%s/large/" % lake)
    assert q["Status"]["State"] == "SUCCEEDED", q["Status"]
    sizes, token, seen = [], None, []
    while True:
        kw = {"NextToken": token} if token else {}
        r = ath.get_query_results(QueryExecutionId=qid, **kw)
        rows = r["ResultSet"]["Rows"]
        sizes.append(len(rows))
        seen += [row["Data"][0]["VarCharValue"] for row in rows]
        assert all(len(row["Data"][1]["VarCharValue"]) == 1000000 for row in rows
                   if row["Data"][0]["VarCharValue"] != "v")
        token = r.get("NextToken")
        if not token:
            break
    assert len(sizes) > 1 and max(sizes) < 41
    assert seen == ["v"] + [str(i) for i in range(40)]


def test_failing_query(ath, s3, lake):
    qid, q = run(ath, "SELECT nosuch FROM 's3://%s/sales/'" % lake, "s3://%s/fail/" % lake)
    st = q["Status"]
    assert st["State"] == "FAILED"
    assert "nosuch" in st["StateChangeReason"] and "line 1" in st["StateChangeReason"]
    assert st["AthenaError"]["ErrorCategory"] == 2
    assert st["AthenaError"]["ErrorMessage"] == st["StateChangeReason"]
    with pytest.raises(ClientError) as e:
        ath.get_query_results(QueryExecutionId=qid)
    code, msg = error_of(e)
    assert code == "InvalidRequestException" and "FAILED" in msg
    assert "Contents" not in s3.list_objects_v2(Bucket=lake, Prefix="fail/")
    # an output bucket that does not exist fails the query, not the request
    qid, q = run(ath, "SELECT 1", "s3://no-such-bucket-%s/x/" % uuid.uuid4().hex[:8])
    assert q["Status"]["State"] == "FAILED"
    assert "output bucket" in q["Status"]["StateChangeReason"]


def test_stop_running_and_queued(ath, lake):
    out = "s3://%s/stop/" % lake
    long_id = ath.start_query_execution(QueryString=LONG.format(b=lake),
                                        ResultConfiguration={"OutputLocation": out})
    long_id = long_id["QueryExecutionId"]
    wait_state(ath, long_id, ("RUNNING",))
    # one query runs at a time on this server: the next one waits
    queued = ath.start_query_execution(QueryString="SELECT 42",
                                       ResultConfiguration={"OutputLocation": out})
    queued = queued["QueryExecutionId"]
    q = ath.get_query_execution(QueryExecutionId=queued)["QueryExecution"]
    assert q["Status"]["State"] == "QUEUED"
    ath.stop_query_execution(QueryExecutionId=queued)
    q = wait_state(ath, queued)
    assert q["Status"]["State"] == "CANCELLED"
    ath.stop_query_execution(QueryExecutionId=long_id)
    q = wait_state(ath, long_id)
    assert q["Status"]["State"] == "CANCELLED", q["Status"]
    assert q["Statistics"]["EngineExecutionTimeInMillis"] >= 0
    # stopping a finished query changes nothing
    ath.stop_query_execution(QueryExecutionId=long_id)
    assert wait_state(ath, long_id)["Status"]["State"] == "CANCELLED"
    # the pool is free again
    _, q = run(ath, "SELECT 1 AS one", out)
    assert q["Status"]["State"] == "SUCCEEDED"


def test_client_request_token(srv, ath, lake):
    out = {"OutputLocation": "s3://%s/idem/" % lake}
    token = uuid.uuid4().hex + "-token"
    a = ath.start_query_execution(QueryString="SELECT 7", ClientRequestToken=token,
                                  ResultConfiguration=out)["QueryExecutionId"]
    b = ath.start_query_execution(QueryString="SELECT 7", ClientRequestToken=token,
                                  ResultConfiguration=out)["QueryExecutionId"]
    assert a == b
    with pytest.raises(ClientError) as e:
        ath.start_query_execution(QueryString="SELECT 8", ClientRequestToken=token,
                                  ResultConfiguration=out)
    assert error_of(e)[0] == "InvalidRequestException"
    unchecked = client(srv, parameter_validation=False)
    with pytest.raises(ClientError) as e:   # AWS: 32 to 128 characters
        unchecked.start_query_execution(QueryString="SELECT 7", ClientRequestToken="short",
                                  ResultConfiguration=out)
    assert error_of(e)[0] == "InvalidRequestException"
    assert wait_state(ath, a)["Status"]["State"] == "SUCCEEDED"


def test_work_groups(ath, s3, lake):
    wg = "wg-" + uuid.uuid4().hex[:8]
    ath.create_work_group(Name=wg, Description="team", Configuration={
        "ResultConfiguration": {"OutputLocation": "s3://%s/wg/" % lake}})
    got = ath.get_work_group(WorkGroup=wg)["WorkGroup"]
    assert got["Name"] == wg and got["State"] == "ENABLED" and got["Description"] == "team"
    assert got["Configuration"]["ResultConfiguration"]["OutputLocation"] == "s3://%s/wg/" % lake
    names = [w["Name"] for w in ath.list_work_groups()["WorkGroups"]]
    assert "primary" in names and wg in names
    with pytest.raises(ClientError) as e:
        ath.create_work_group(Name=wg)
    assert error_of(e)[0] == "InvalidRequestException"

    # the work group's output location is the default (and enforced)
    qid = ath.start_query_execution(QueryString="SELECT 'x' AS c", WorkGroup=wg)
    qid = qid["QueryExecutionId"]
    q = wait_state(ath, qid)
    assert q["Status"]["State"] == "SUCCEEDED" and q["WorkGroup"] == wg
    assert q["ResultConfiguration"]["OutputLocation"] == "s3://%s/wg/%s.csv" % (lake, qid)
    s3.head_object(Bucket=lake, Key="wg/%s.csv.metadata" % qid)
    assert ath.list_query_executions(WorkGroup=wg)["QueryExecutionIds"] == [qid]
    assert qid not in ath.list_query_executions()["QueryExecutionIds"]
    batch = ath.batch_get_query_execution(QueryExecutionIds=[qid, "nope-" + qid])
    assert [x["QueryExecutionId"] for x in batch["QueryExecutions"]] == [qid]
    assert [x["QueryExecutionId"] for x in batch["UnprocessedQueryExecutionIds"]] == \
        ["nope-" + qid]

    # disabled: refused; enabled without a location: refused as Athena does
    ath.update_work_group(WorkGroup=wg, State="DISABLED")
    with pytest.raises(ClientError) as e:
        ath.start_query_execution(QueryString="SELECT 1", WorkGroup=wg)
    assert error_of(e)[0] == "InvalidRequestException" and "disabled" in error_of(e)[1]
    ath.update_work_group(WorkGroup=wg, State="ENABLED", ConfigurationUpdates={
        "ResultConfigurationUpdates": {"RemoveOutputLocation": True}})
    assert "OutputLocation" not in \
        ath.get_work_group(WorkGroup=wg)["WorkGroup"]["Configuration"]["ResultConfiguration"]
    with pytest.raises(ClientError) as e:
        ath.start_query_execution(QueryString="SELECT 1", WorkGroup=wg)
    assert "No output location provided" in error_of(e)[1]

    ath.delete_work_group(WorkGroup=wg)
    with pytest.raises(ClientError) as e:
        ath.get_work_group(WorkGroup=wg)
    assert error_of(e)[0] == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        ath.delete_work_group(WorkGroup="primary")
    assert error_of(e)[0] == "InvalidRequestException"


def test_bytes_scanned_cutoff(ath, s3, lake):
    """A work group's BytesScannedCutoffPerQuery cancels a query that scans more."""
    wg = "cut-" + uuid.uuid4().hex[:8]
    ath.create_work_group(Name=wg, Configuration={
        "ResultConfiguration": {"OutputLocation": "s3://%s/cut/" % lake},
        "BytesScannedCutoffPerQuery": 10000000})
    line = b"%08d,some padding to make the object large enough\n"
    s3.put_object(Bucket=lake, Key="big/big.csv",
                  Body=b"k,pad\n" + b"".join(line % i for i in range(200000)))
    qid = ath.start_query_execution(QueryString="SELECT count(*) FROM 's3://%s/big/'" % lake,
                                    WorkGroup=wg)["QueryExecutionId"]
    q = wait_state(ath, qid)
    assert q["Status"]["State"] == "CANCELLED", q["Status"]
    assert "BytesScannedCutoffPerQuery" in q["Status"]["StateChangeReason"]
    assert "Contents" not in s3.list_objects_v2(Bucket=lake, Prefix="cut/")
    # a small query in the same group runs
    qid = ath.start_query_execution(QueryString="SELECT count(*) FROM 's3://%s/sales/'" % lake,
                                    WorkGroup=wg)["QueryExecutionId"]
    assert wait_state(ath, qid)["Status"]["State"] == "SUCCEEDED"


def test_errors(ath):
    with pytest.raises(ClientError) as e:   # primary has no output location
        ath.start_query_execution(QueryString="SELECT 1")
    assert error_of(e) == ("InvalidRequestException",
                           "No output location provided. An output location is required either "
                           "through the Workgroup result configuration setting or as an API "
                           "input.")
    assert e.value.response.get("AthenaErrorCode") == "INVALID_INPUT"
    with pytest.raises(ClientError) as e:
        ath.get_query_execution(QueryExecutionId=str(uuid.uuid4()))
    assert error_of(e)[0] == "InvalidRequestException" and "was not found" in error_of(e)[1]
    with pytest.raises(ClientError) as e:
        ath.start_query_execution(QueryString="SELECT 1", WorkGroup="no-such-group",
                                  ResultConfiguration={"OutputLocation": "s3://b/x/"})
    assert error_of(e)[0] == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        ath.start_query_execution(QueryString="SELECT 1",
                                  ResultConfiguration={"OutputLocation": "/tmp/x"})
    assert error_of(e)[0] == "InvalidRequestException"


def test_result_objects_raise_events(srv, ath, s3, lake):
    sqs = client(srv, "sqs")
    url = sqs.create_queue(QueueName="athena-" + uuid.uuid4().hex[:8])["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    arn = arn["Attributes"]["QueueArn"]
    b = unique_bucket_name("athena-ev")
    s3.create_bucket(Bucket=b)
    s3.put_bucket_notification_configuration(Bucket=b, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    qid, q = run(ath, "SELECT 1 AS one", "s3://%s/out/" % b)
    assert q["Status"]["State"] == "SUCCEEDED"
    want = {"out/%s.csv" % qid, "out/%s.csv.metadata" % qid}
    keys, deadline = set(), time.monotonic() + 60
    while not want <= keys:
        assert time.monotonic() < deadline, keys
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=1).get("Messages", []):
            for rec in json.loads(m["Body"]).get("Records", []):
                assert rec["eventName"].startswith("ObjectCreated:")
                keys.add(rec["s3"]["object"]["key"])
    assert want <= keys


def test_output_location_needs_put_object(srv, lake):
    iam = client(srv, "iam")
    user = "athena-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "athena:*", "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:PutObject",
             "Resource": "arn:aws:s3:::%s/mine/*" % lake}]}))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    uath = boto3.session.Session().client(
        "athena", endpoint_url=srv.endpoint, region_name=REGION,
        aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"],
        config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        uath.start_query_execution(QueryString="SELECT 1",
                                   ResultConfiguration={"OutputLocation": "s3://%s/x/" % lake})
    assert error_of(e)[0] == "AccessDeniedException" and "s3:PutObject" in error_of(e)[1]
    qid = uath.start_query_execution(
        QueryString="SELECT 1",
        ResultConfiguration={"OutputLocation": "s3://%s/mine/" % lake})["QueryExecutionId"]
    assert wait_state(uath, qid)["Status"]["State"] == "SUCCEEDED"


def test_awscli(srv, lake):
    out = srv.aws("athena", "start-query-execution", "--query-string",
                  "SELECT name, amount FROM 's3://%s/sales/' WHERE id = 1" % lake,
                  "--result-configuration", "OutputLocation=s3://%s/cli/" % lake)
    assert out.returncode == 0, out.stderr
    qid = json.loads(out.stdout)["QueryExecutionId"]
    deadline = time.monotonic() + 120
    while True:
        r = srv.aws("athena", "get-query-execution", "--query-execution-id", qid)
        assert r.returncode == 0, r.stderr
        state = json.loads(r.stdout)["QueryExecution"]["Status"]["State"]
        if state in FINAL:
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state == "SUCCEEDED"
    r = srv.aws("athena", "get-query-results", "--query-execution-id", qid)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["ResultSet"]["Rows"]
    assert [[d["VarCharValue"] for d in row["Data"]] for row in rows] == \
        [["name", "amount"], ["alpha", "10.5"]]


def test_history_survives_kill9(tarn_factory):
    srv = tarn_factory(env={"TARN_ATHENA_MAX_QUERIES": "1"})
    ath, s3 = client(srv), srv.client()
    b = unique_bucket_name("athena-crash")
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="n/n.csv",
                  Body=("x\n" + "".join("%d\n" % i for i in range(2000))).encode())
    out = {"OutputLocation": "s3://%s/r/" % b}
    done, q = run(ath, "SELECT sum(x) AS s FROM 's3://%s/n/'" % b, out["OutputLocation"])
    assert q["Status"]["State"] == "SUCCEEDED"
    running = ath.start_query_execution(QueryString=LONG.format(b=b),
                                        ResultConfiguration=out)["QueryExecutionId"]
    wait_state(ath, running, ("RUNNING",))
    queued = ath.start_query_execution(QueryString="SELECT 2",
                                       ResultConfiguration=out)["QueryExecutionId"]
    srv.kill9()
    srv.start()
    ath = client(srv)
    for qid in (running, queued):
        q = ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        assert q["Status"]["State"] == "FAILED", q["Status"]
        assert "did not finish" in q["Status"]["StateChangeReason"]
        assert q["Status"]["AthenaError"]["Retryable"] is True
    q = ath.get_query_execution(QueryExecutionId=done)["QueryExecution"]
    assert q["Status"]["State"] == "SUCCEEDED"
    rows = ath.get_query_results(QueryExecutionId=done)["ResultSet"]["Rows"]
    assert rows[1]["Data"][0]["VarCharValue"] == str(sum(range(2000)))
    assert ath.list_query_executions()["QueryExecutionIds"] == [queued, running, done]
    # and the restarted server runs queries
    _, q = run(ath, "SELECT 3 AS three", out["OutputLocation"])
    assert q["Status"]["State"] == "SUCCEEDED"


def test_catalog_tables_through_athena(ath, s3, lake, srv):
    # DDL through StartQueryExecution registers a table in the catalog;
    # QueryExecutionContext.Database picks the database unqualified names
    # resolve in; Glue sees the same table.
    out = "s3://%s/results/" % lake
    db = "ath_%s" % uuid.uuid4().hex[:8]
    _, q = run(ath, "CREATE DATABASE %s" % db, out)
    assert q["Status"]["State"] == "SUCCEEDED", q["Status"]
    _, q = run(ath, "CREATE EXTERNAL TABLE sales (id string, name string, amount double, "
                    "day date, flag boolean) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
                    "LOCATION 's3://%s/sales/' TBLPROPERTIES ('skip.header.line.count'='1')"
               % lake, out, QueryExecutionContext={"Database": db})
    assert q["Status"]["State"] == "SUCCEEDED", q["Status"]
    glue = client(srv, "glue")
    cols = glue.get_table(DatabaseName=db, Name="sales")["Table"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in cols] == ["id", "name", "amount", "day", "flag"]
    qid, q = run(ath, "SELECT id, amount FROM sales WHERE flag ORDER BY id", out,
                 QueryExecutionContext={"Database": db})
    assert q["Status"]["State"] == "SUCCEEDED", q["Status"]
    res = ath.get_query_results(QueryExecutionId=qid)["ResultSet"]
    types = [c["Type"] for c in res["ResultSetMetadata"]["ColumnInfo"]]
    assert types == ["varchar", "double"]
    rows = [[d.get("VarCharValue") for d in r["Data"]] for r in res["Rows"]]
    assert rows == [["id", "amount"], ["1", "10.5"], ["3", "7.0"]]
    # without the context, the name resolves in "default", where it is not
    _, q = run(ath, "SELECT id FROM sales", out)
    assert q["Status"]["State"] == "FAILED"
    assert "sales" in q["Status"]["StateChangeReason"]
