"""tests/e2e/test_catalog_pg.py -- two tarn nodes sharing one Glue catalog:
its databases, tables, partitions, functions, statistics and crawlers in
PostgreSQL (`--metadata`), the objects in one object backend (`--objects`).

What a user of two nodes checks: a database or table made on one node is
read, listed and queried (Athena) on the other; partitions batch-created on
one page the same on the other; a database deleted on one is gone, with its
tables, on the other; a name taken on one node is taken on both, even
when both create it at once; a crawl runs on the one node that claimed it,
and a crawl whose node never came back ends (FAILED) once its lease ran out.

Start reading at test_database_and_table_across_nodes().
"""
import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from pg_util import backend, node_env, pg  # noqa: F401 (fixtures)
from tarnlib import Tarn
from test_athena import wait_state
from test_glue_crawler import wait_ready


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, pg, backend):
    env = node_env(pg, backend, "cat")
    env["TARN_CRAWLER_LEASE_SECONDS"] = "4"  # renewed every second while a crawl runs
    a = Tarn(tmp_path_factory.mktemp("node-a"), env=env).start()
    b = Tarn(tmp_path_factory.mktemp("node-b"), env=env).start()
    yield a, b
    for n in (a, b):
        if n.running():
            n.stop_clean()


@pytest.fixture(scope="module")
def glue(nodes):
    a, b = nodes
    return a.service_client("glue"), b.service_client("glue")


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def csv_table(name, location, columns, keys=()):
    return {"Name": name, "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": k, "Type": "string"} for k in keys],
            "StorageDescriptor": {
                "Columns": [{"Name": c, "Type": t} for c, t in columns],
                "Location": location,
                "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "OutputFormat":
                    "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "SerdeInfo": {"SerializationLibrary":
                              "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                              "Parameters": {"field.delim": ","}}}}


def test_database_and_table_across_nodes(glue):
    ga, gb = glue
    ga.create_database(DatabaseInput={"Name": "Sales_DB", "Description": "from A"})
    d = gb.get_database(Name="sales_db")["Database"]
    assert d["Name"] == "sales_db" and d["Description"] == "from A"
    assert "sales_db" in [x["Name"] for x in gb.get_databases()["DatabaseList"]]

    ga.create_table(DatabaseName="sales_db",
                    TableInput=csv_table("Clicks", "s3://nowhere/clicks/",
                                         [("id", "string"), ("n", "bigint")]))
    t = gb.get_table(DatabaseName="SALES_DB", Name="CLICKS")["Table"]
    assert t["Name"] == "clicks" and t["DatabaseName"] == "sales_db"
    assert [c["Name"] for c in t["StorageDescriptor"]["Columns"]] == ["id", "n"]
    assert [x["Name"] for x in gb.get_tables(DatabaseName="sales_db")["TableList"]] == ["clicks"]

    # a name taken on A is taken on B (folded the same way)
    with pytest.raises(ClientError) as ei:
        gb.create_database(DatabaseInput={"Name": "SALES_db"})
    assert code(ei) == "AlreadyExistsException"
    with pytest.raises(ClientError) as ei:
        gb.create_table(DatabaseName="sales_db", TableInput=csv_table("clicks", "s3://x/", []))
    assert code(ei) == "AlreadyExistsException"

    # an update on B is what A reads, with its version grown
    ti = csv_table("clicks", "s3://nowhere/clicks2/", [("id", "string")])
    gb.update_table(DatabaseName="sales_db", TableInput=ti)
    t2 = ga.get_table(DatabaseName="sales_db", Name="clicks")["Table"]
    assert t2["StorageDescriptor"]["Location"] == "s3://nowhere/clicks2/"
    assert int(t2["VersionId"]) == int(t["VersionId"]) + 1
    # an optimistic update at the old version fails on either node
    with pytest.raises(ClientError) as ei:
        ga.update_table(DatabaseName="sales_db", TableInput=ti, VersionId=t["VersionId"])
    assert code(ei) == "ConcurrentModificationException"

    # functions and crawler definitions are shared too
    ga.create_user_defined_function(DatabaseName="sales_db", FunctionInput={
        "FunctionName": "f1", "ClassName": "com.example.F", "OwnerName": "me",
        "OwnerType": "USER"})
    assert gb.get_user_defined_function(DatabaseName="sales_db",
                                        FunctionName="f1")["UserDefinedFunction"][
        "ClassName"] == "com.example.F"
    ga.create_crawler(Name="c-shared", Role="service-role", DatabaseName="sales_db",
                      Targets={"S3Targets": [{"Path": "s3://nowhere/"}]})
    assert gb.get_crawler(Name="c-shared")["Crawler"]["State"] == "READY"
    gb.delete_crawler(Name="c-shared")
    with pytest.raises(ClientError) as ei:
        ga.get_crawler(Name="c-shared")
    assert code(ei) == "EntityNotFoundException"


def test_athena_on_b_over_a_table_of_a(nodes, glue):
    a, b = nodes
    ga, _ = glue
    sa = a.client()
    sa.create_bucket(Bucket="lake")
    sa.put_object(Bucket="lake", Key="orders/part-0.csv",
                  Body=b"000042,alpha,10.5\n7,beta,2.25\n")
    ga.create_database(DatabaseInput={"Name": "shop"})
    ga.create_table(DatabaseName="shop", TableInput=csv_table(
        "orders", "s3://lake/orders/", [("code", "string"), ("name", "string"),
                                        ("amount", "double")]))

    ath = b.service_client("athena")
    qid = ath.start_query_execution(
        QueryString="SELECT code, name, amount FROM orders ORDER BY name",
        QueryExecutionContext={"Database": "shop"},
        ResultConfiguration={"OutputLocation": "s3://lake/results/"})["QueryExecutionId"]
    q = wait_state(ath, qid)
    assert q["Status"]["State"] == "SUCCEEDED", q["Status"]
    rows = ath.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    values = [[c.get("VarCharValue") for c in r["Data"]] for r in rows]
    assert values == [["code", "name", "amount"], ["000042", "alpha", "10.5"],
                      ["7", "beta", "2.25"]]


def test_partitions_batch_created_on_b_paged_on_a(glue):
    ga, gb = glue
    ga.create_database(DatabaseInput={"Name": "logs"})
    ga.create_table(DatabaseName="logs", TableInput=csv_table(
        "events", "s3://nowhere/events/", [("msg", "string")], keys=("year", "day")))
    values = [["2024", "%03d" % d] for d in range(120)]

    def part(v):
        return {"Values": v, "StorageDescriptor": {
            "Location": "s3://nowhere/events/year=%s/day=%s/" % tuple(v)}}

    r = gb.batch_create_partition(DatabaseName="logs", TableName="events",
                                  PartitionInputList=[part(v) for v in values[:100]])
    assert r.get("Errors", []) == []
    # one new, one existing, one with the wrong number of values: per-entry errors
    r = gb.batch_create_partition(DatabaseName="logs", TableName="events",
                                  PartitionInputList=[part(values[100]), part(values[0]),
                                                      {"Values": ["2024"]}])
    errs = {tuple(x["PartitionValues"]): x["ErrorDetail"]["ErrorCode"] for x in r["Errors"]}
    assert errs == {("2024", "000"): "AlreadyExistsException",
                    ("2024",): "InvalidInputException"}
    ga.batch_create_partition(DatabaseName="logs", TableName="events",
                              PartitionInputList=[part(v) for v in values[101:]])

    def pages(g, **kw):
        got, token, n = [], None, 0
        while True:
            args = dict(DatabaseName="logs", TableName="events", MaxResults=33, **kw)
            if token:
                args["NextToken"] = token
            r = g.get_partitions(**args)
            got += [p["Values"] for p in r["Partitions"]]
            n += 1
            token = r.get("NextToken")
            if not token:
                return got, n

    on_a, n = pages(ga)
    assert on_a == values and n >= 4          # in values order, 33 a page
    assert pages(gb) == (on_a, n)             # the same pages on both nodes
    # a token of one node continues on the other
    first = ga.get_partitions(DatabaseName="logs", TableName="events", MaxResults=50)
    rest = gb.get_partitions(DatabaseName="logs", TableName="events",
                             NextToken=first["NextToken"])
    assert [p["Values"] for p in first["Partitions"] + rest["Partitions"]] == values
    sel, _ = pages(ga, Expression="day >= '110'")
    assert sel == values[110:]

    gb.batch_delete_partition(DatabaseName="logs", TableName="events",
                              PartitionsToDelete=[{"Values": v} for v in values[:20]])
    with pytest.raises(ClientError) as ei:
        ga.get_partition(DatabaseName="logs", TableName="events", PartitionValues=values[0])
    assert code(ei) == "EntityNotFoundException"
    assert pages(ga)[0] == values[20:]


def test_delete_database_on_a_is_gone_on_b(glue):
    ga, gb = glue
    ga.create_database(DatabaseInput={"Name": "tmpdb"})
    ga.create_table(DatabaseName="tmpdb", TableInput=csv_table(
        "t", "s3://nowhere/t/", [("x", "string")], keys=("k",)))
    ga.create_partition(DatabaseName="tmpdb", TableName="t",
                        PartitionInput={"Values": ["1"]})
    gb.get_partition(DatabaseName="tmpdb", TableName="t", PartitionValues=["1"])

    ga.delete_database(Name="tmpdb")
    for call in (lambda: gb.get_database(Name="tmpdb"),
                 lambda: gb.get_table(DatabaseName="tmpdb", Name="t"),
                 lambda: gb.get_partitions(DatabaseName="tmpdb", TableName="t")):
        with pytest.raises(ClientError) as ei:
            call()
        assert code(ei) == "EntityNotFoundException"
    # made again on B, it is empty: its tables and partitions went with it
    gb.create_database(DatabaseInput={"Name": "tmpdb"})
    assert ga.get_tables(DatabaseName="tmpdb")["TableList"] == []
    ga.create_table(DatabaseName="tmpdb", TableInput=csv_table(
        "t", "s3://nowhere/t/", [("x", "string")], keys=("k",)))
    assert gb.get_partitions(DatabaseName="tmpdb", TableName="t")["Partitions"] == []


def test_same_names_created_on_both_nodes_at_once(glue):
    ga, gb = glue
    ga.create_database(DatabaseInput={"Name": "race"})
    names = ["t%02d" % i for i in range(12)]
    results = {"ok": 0, "exists": 0, "other": []}
    lock = threading.Lock()

    def create(g):
        for n in names:
            try:
                g.create_table(DatabaseName="race",
                               TableInput=csv_table(n, "s3://nowhere/%s/" % n, [("x", "string")]))
                kind = "ok"
            except ClientError as e:
                kind = "exists" if e.response["Error"]["Code"] == "AlreadyExistsException" \
                    else None
                if kind is None:
                    with lock:
                        results["other"].append(e.response["Error"])
                    continue
            with lock:
                results[kind] += 1

    threads = [threading.Thread(target=create, args=(g,)) for g in (ga, gb)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["other"] == []
    assert results["ok"] == len(names) and results["exists"] == len(names)
    listed = []
    token = None
    while True:
        args = {"DatabaseName": "race", "MaxResults": 5}
        if token:
            args["NextToken"] = token
        r = gb.get_tables(**args)
        listed += [t["Name"] for t in r["TableList"]]
        token = r.get("NextToken")
        if not token:
            break
    assert listed == names


def claim_elsewhere(pg, name, lease_ms):
    """Marks crawler name RUNNING by a node that is not running here, its
    lease ending at lease_ms (epoch ms)."""
    patch = json.dumps({"State": "RUNNING", "_node": "elsewhere:/srv/n3", "_lease_ms": lease_ms})
    pg.sql("UPDATE tarn_catalog_crawlers SET v = convert_to((convert_from(v, 'UTF8')::jsonb "
           "|| '%s'::jsonb)::text, 'UTF8') WHERE k = '%s'::bytea" % (patch, name))


def test_crawl_claimed_by_one_node(nodes, glue, pg):
    a, b = nodes
    ga, gb = glue
    sa = a.client()
    sa.create_bucket(Bucket="crawled")
    for y in ("2023", "2024"):
        sa.put_object(Bucket="crawled", Key="visits/year=%s/part-0.csv" % y,
                      Body=b"page,hits\nhome,000042\nabout,7\n")
    ga.create_database(DatabaseInput={"Name": "crawl"})
    ga.create_crawler(Name="visits", Role="arn:aws:iam::000000000000:role/glue",
                      DatabaseName="crawl",
                      Targets={"S3Targets": [{"Path": "s3://crawled/visits/"}]})
    ga.start_crawler(Name="visits")
    c = wait_ready(gb, "visits")                  # its state, seen from B
    assert c["LastCrawl"]["Status"] == "SUCCEEDED", c["LastCrawl"]
    assert not any(k.startswith("_") for k in c)  # the claiming node is not shown
    t = gb.get_table(DatabaseName="crawl", Name="visits")["Table"]
    assert [k["Name"] for k in t["PartitionKeys"]] == ["year"]
    parts = gb.get_partitions(DatabaseName="crawl", TableName="visits")["Partitions"]
    assert sorted(p["Values"] for p in parts) == [["2023"], ["2024"]]

    # a crawl another node claimed (and still runs, as far as B knows: its lease holds)
    claim_elsewhere(pg, "visits", lease_ms=int(time.time() * 1000) + 3600 * 1000)
    with pytest.raises(ClientError) as ei:
        gb.start_crawler(Name="visits")
    assert code(ei) == "CrawlerRunningException"
    b.restart()                                   # not B's crawl: B leaves it alone
    gb = b.service_client("glue")
    assert gb.get_crawler(Name="visits")["Crawler"]["State"] == "RUNNING"
    gb.stop_crawler(Name="visits")                # asks the running node to stop
    assert ga.get_crawler(Name="visits")["Crawler"]["State"] == "STOPPING"
    with pytest.raises(ClientError) as ei:
        ga.stop_crawler(Name="visits")
    assert code(ei) == "CrawlerStoppingException"


def test_crawl_of_a_node_that_never_returns_ends_with_its_lease(nodes, glue, pg):
    a, b = nodes
    ga, gb = glue
    ga.create_database(DatabaseInput={"Name": "orphans"})
    ga.create_crawler(Name="orphan", Role="arn:aws:iam::000000000000:role/glue",
                      DatabaseName="orphans",
                      Targets={"S3Targets": [{"Path": "s3://crawled/visits/"}]})
    # claimed by a node that died: its lease ended a minute ago
    claim_elsewhere(pg, "orphan", lease_ms=int(time.time() * 1000) - 60 * 1000)
    c = gb.get_crawler(Name="orphan")["Crawler"]     # the first reader ends it
    assert c["State"] == "READY", c
    assert c["LastCrawl"]["Status"] == "FAILED"
    assert "elsewhere:/srv/n3" in c["LastCrawl"]["ErrorMessage"]
    assert "lease" in c["LastCrawl"]["ErrorMessage"]
    assert not any(k.startswith("_") for k in c)
    assert ga.get_crawler(Name="orphan")["Crawler"]["State"] == "READY"
    # listed the same way, and it can run again, here
    listed = {x["Name"]: x for x in gb.get_crawlers()["Crawlers"]}
    assert listed["orphan"]["State"] == "READY"
    ga.start_crawler(Name="orphan")
    c = wait_ready(gb, "orphan")
    assert c["LastCrawl"]["Status"] == "SUCCEEDED", c["LastCrawl"]
