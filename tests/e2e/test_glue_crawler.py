"""tests/e2e/test_glue_crawler.py -- Glue crawlers through boto3: a bucket
of CSV (with a header, Hive partitions, a type widening across files), JSON
lines and Parquet (written by DuckDB) folders is crawled into tables whose
columns, types, parameters and partitions are checked with get_table and
get_partitions, then a crawled table is queried with SQL (/_tarn/sql) and
compared with DuckDB reading the same objects; recrawls (new partitions,
vanished tables deprecated or deleted, UpdateBehavior LOG), StopCrawler,
the crawler's errors (unknown, already exists, running, a failing crawl),
its state across kill -9, and CRAWL_EVENT_MODE (uploads reach the catalog
through the bucket's change feed, without StartCrawler)."""
import json
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from duckdb_util import duckdb

BUCKET = "crawl-e2e"
SALES = {
    # the header row names the columns; qty is an int in 2023, a decimal in
    # 2024 (the table's type widens to double); code keeps its zeros
    "lake/sales/year=2023/month=12/part-0.csv":
        "code,qty,region\n000042,10,north\n0007,20,south\n",
    "lake/sales/year=2024/month=01/part-0.csv": "code,qty,region\n000043,5.5,north\n",
    "lake/sales/year=2024/month=01/_SUCCESS": "x",
}
EVENTS = {
    "lake/events/2024/01/a.json":
        '{"id":1,"kind":"click","score":0.5}\n{"id":2,"kind":"view","score":1}\n',
    "lake/events/2024/02/b.json": '{"id":3,"kind":"click","score":2.25,"extra":"x"}\n',
}


def glue_client(tarn):
    return boto3.client("glue", endpoint_url=tarn.endpoint, region_name="us-east-1",
                        aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key,
                        config=Config(retries={"max_attempts": 1}))


def sql(tarn, query):
    r = tarn.request("POST", "/_tarn/sql", headers={"Accept": "application/json"},
                     body=query.encode(), timeout=120)
    doc = json.loads(r.text)
    assert r.status_code == 200 and "error" not in doc, doc
    return doc["rows"]


def wait_ready(glue, name, timeout=180):
    deadline = time.time() + timeout
    while True:
        c = glue.get_crawler(Name=name)["Crawler"]
        if c["State"] == "READY" and "LastCrawl" in c:
            return c
        assert time.time() < deadline, c
        time.sleep(0.2)


@pytest.fixture(scope="module")
def lake(tarn, s3, tmp_path_factory):
    s3.create_bucket(Bucket=BUCKET)
    for k, v in {**SALES, **EVENTS}.items():
        s3.put_object(Bucket=BUCKET, Key=k, Body=v.encode())
    d = tmp_path_factory.mktemp("pq")
    duckdb(["COPY (SELECT i::INTEGER AS id, 'n' || i AS name, i * 1.5 AS amount "
            "FROM range(5) t(i)) TO 'm.parquet' (FORMAT parquet)"], cwd=d)
    s3.put_object(Bucket=BUCKET, Key="lake/metrics/m.parquet", Body=(d / "m.parquet").read_bytes())
    s3.put_object(Bucket=BUCKET, Key="lake/tmp/skip.csv", Body=b"a,b\n1,2\n")
    glue = glue_client(tarn)
    glue.create_database(DatabaseInput={"Name": "crawled"})
    glue.create_crawler(Name="lake", Role="arn:aws:iam::000000000000:role/glue",
                        DatabaseName="crawled", TablePrefix="raw_",
                        Targets={"S3Targets": [{"Path": "s3://%s/lake/" % BUCKET,
                                                "Exclusions": ["tmp/**"]}]},
                        SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE",
                                            "DeleteBehavior": "DEPRECATE_IN_DATABASE"},
                        Configuration=json.dumps({"Version": 1.0}))
    glue.start_crawler(Name="lake")
    c = wait_ready(glue, "lake")
    assert c["LastCrawl"]["Status"] == "SUCCEEDED", c
    return glue


def columns(t):
    return [(c["Name"], c["Type"]) for c in t["StorageDescriptor"]["Columns"]]


def test_csv_table(lake):
    t = lake.get_table(DatabaseName="crawled", Name="raw_sales")["Table"]
    assert columns(t) == [("code", "string"), ("qty", "double"), ("region", "string")]
    assert [(k["Name"], k["Type"]) for k in t["PartitionKeys"]] == [("year", "string"),
                                                                    ("month", "string")]
    p = t["Parameters"]
    assert p["classification"] == "csv" and p["compressionType"] == "none"
    assert p["skip.header.line.count"] == "1" and p["UPDATED_BY_CRAWLER"] == "lake"
    assert p["objectCount"] == "2" and p["recordCount"] == "3"
    assert t["StorageDescriptor"]["Location"] == "s3://%s/lake/sales/" % BUCKET
    parts = lake.get_partitions(DatabaseName="crawled", TableName="raw_sales")["Partitions"]
    assert sorted(x["Values"] for x in parts) == [["2023", "12"], ["2024", "01"]]
    assert {x["StorageDescriptor"]["Location"] for x in parts} == {
        "s3://%s/lake/sales/year=2023/month=12/" % BUCKET,
        "s3://%s/lake/sales/year=2024/month=01/" % BUCKET}


def test_json_table_with_plain_folders(lake):
    t = lake.get_table(DatabaseName="crawled", Name="raw_events")["Table"]
    assert columns(t) == [("id", "bigint"), ("kind", "string"), ("score", "double"),
                          ("extra", "string")]
    assert [k["Name"] for k in t["PartitionKeys"]] == ["partition_0", "partition_1"]
    assert t["Parameters"]["classification"] == "json"
    parts = lake.get_partitions(DatabaseName="crawled", TableName="raw_events")["Partitions"]
    assert sorted(x["Values"] for x in parts) == [["2024", "01"], ["2024", "02"]]


def test_parquet_table(lake):
    t = lake.get_table(DatabaseName="crawled", Name="raw_metrics")["Table"]
    types = dict(columns(t))
    assert types["id"] == "int" and types["name"] == "string"
    assert types["amount"].startswith("decimal") or types["amount"] == "double"
    assert t["Parameters"]["classification"] == "parquet"
    assert t["Parameters"]["recordCount"] == "5"
    assert t["PartitionKeys"] == []


def test_excluded_and_hidden_objects_are_left_out(lake):
    names = [t["Name"] for t in lake.get_tables(DatabaseName="crawled")["TableList"]]
    assert sorted(names) == ["raw_events", "raw_metrics", "raw_sales"]


def test_sql_over_crawled_tables(tarn, lake, tmp_path):
    got = sql(tarn, "SELECT code, qty, region, year FROM crawled.raw_sales ORDER BY code")
    assert got == [["000042", 10.0, "north", "2023"], ["000043", 5.5, "north", "2024"],
                   ["0007", 20.0, "south", "2023"]]
    for k, v in SALES.items():
        if k.endswith(".csv"):
            (tmp_path / k.replace("/", "_")).write_text(v)
    ref = duckdb(["SELECT sum(qty) FROM read_csv('*.csv', header=true, "
                  "columns={'code':'VARCHAR','qty':'DOUBLE','region':'VARCHAR'})"],
                 cwd=tmp_path)[-1]
    assert sql(tarn, "SELECT sum(qty) FROM crawled.raw_sales") == [[float(ref[0][0])]]
    assert sql(tarn, "SELECT sum(id) FROM crawled.raw_metrics") == [[10]]


def test_recrawl_adds_partitions_and_deprecates_vanished(tarn, s3, lake):
    s3.put_object(Bucket=BUCKET, Key="lake/sales/year=2024/month=02/part-0.csv",
                  Body=b"code,qty,region\n9,1,east\n")
    for k in EVENTS:
        s3.delete_object(Bucket=BUCKET, Key=k)
    lake.start_crawler(Name="lake")
    c = wait_ready(lake, "lake")
    assert c["LastCrawl"]["Status"] == "SUCCEEDED", c
    parts = lake.get_partitions(DatabaseName="crawled", TableName="raw_sales")["Partitions"]
    assert ["2024", "02"] in [x["Values"] for x in parts]
    ev = lake.get_table(DatabaseName="crawled", Name="raw_events")["Table"]
    assert "DEPRECATED_BY_CRAWLER" in ev["Parameters"]
    m = lake.get_crawler_metrics(CrawlerNameList=["lake"])["CrawlerMetricsList"][0]
    assert m["CrawlerName"] == "lake" and m["TablesUpdated"] >= 1


def test_errors(lake):
    with pytest.raises(ClientError) as ex:
        lake.get_crawler(Name="nope")
    assert ex.value.response["Error"]["Code"] == "EntityNotFoundException"
    with pytest.raises(ClientError) as ex:
        lake.start_crawler(Name="nope")
    assert ex.value.response["Error"]["Code"] == "EntityNotFoundException"
    with pytest.raises(ClientError) as ex:
        lake.create_crawler(Name="lake", Role="r", Targets={"S3Targets": [{"Path": "s3://x/"}]})
    assert ex.value.response["Error"]["Code"] == "AlreadyExistsException"
    with pytest.raises(ClientError) as ex:
        lake.create_crawler(Name="bad", Role="r", Targets={"S3Targets": [{"Path": "/tmp"}]})
    assert ex.value.response["Error"]["Code"] == "InvalidInputException"
    with pytest.raises(ClientError) as ex:
        lake.stop_crawler(Name="lake")
    assert ex.value.response["Error"]["Code"] == "CrawlerNotRunningException"
    assert "bad" not in lake.list_crawlers()["CrawlerNames"]
    # a crawl that cannot write its tables ends FAILED with the reason
    lake.create_crawler(Name="nodb", Role="r", DatabaseName="missing",
                        Targets={"S3Targets": [{"Path": "s3://%s/lake/" % BUCKET}]})
    lake.start_crawler(Name="nodb")
    c = wait_ready(lake, "nodb")
    assert c["LastCrawl"]["Status"] == "FAILED" and "missing" in c["LastCrawl"]["ErrorMessage"]
    names = [x["Name"] for x in lake.get_crawlers()["Crawlers"]]
    assert "nodb" in names and "lake" in names
    lake.delete_crawler(Name="nodb")
    with pytest.raises(ClientError) as ex:
        lake.delete_crawler(Name="nodb")
    assert ex.value.response["Error"]["Code"] == "EntityNotFoundException"


def test_running_crawler_refuses_start_update_delete(tarn, s3, lake):
    # many objects so that the crawl is still running when asked again
    s3.create_bucket(Bucket="crawl-many")
    for i in range(300):
        s3.put_object(Bucket="crawl-many", Key="t/k=%03d/x.csv" % i, Body=b"a,b\n1,2\n")
    lake.create_crawler(Name="many", Role="r", DatabaseName="crawled",
                        Targets={"S3Targets": [{"Path": "s3://crawl-many/t/"}]})
    lake.start_crawler(Name="many")
    try:
        lake.start_crawler(Name="many")
        refused = None
    except ClientError as ex:
        refused = ex.response["Error"]["Code"]
    c = lake.get_crawler(Name="many")["Crawler"]
    if refused is None:  # the first crawl had already ended: it ran twice
        assert c["State"] in ("RUNNING", "READY")
    else:
        assert refused == "CrawlerRunningException"
    if lake.get_crawler(Name="many")["Crawler"]["State"] == "RUNNING":
        with pytest.raises(ClientError) as ex:
            lake.delete_crawler(Name="many")
        assert ex.value.response["Error"]["Code"] in ("CrawlerRunningException",)
    c = wait_ready(lake, "many")
    assert c["LastCrawl"]["Status"] in ("SUCCEEDED", "CANCELLED")
    t = lake.get_table(DatabaseName="crawled", Name="t")["Table"]
    assert [k["Name"] for k in t["PartitionKeys"]] == ["k"]
    assert len(lake.get_partitions(DatabaseName="crawled", TableName="t")["Partitions"]) == 300
    # StopCrawler: the crawl ends CANCELLED, unless it was over already
    lake.start_crawler(Name="many")
    try:
        lake.stop_crawler(Name="many")
        stopped = True
    except ClientError as ex:
        assert ex.response["Error"]["Code"] == "CrawlerNotRunningException"
        stopped = False
    c = wait_ready(lake, "many")
    assert c["LastCrawl"]["Status"] == ("CANCELLED" if stopped else "SUCCEEDED"), c
    lake.update_crawler(Name="many", TablePrefix="m_")
    assert lake.get_crawler(Name="many")["Crawler"]["TablePrefix"] == "m_"
    lake.delete_crawler(Name="many")
    assert "many" not in lake.list_crawlers()["CrawlerNames"]


def test_crawler_survives_kill9(tarn_factory):
    srv = tarn_factory()
    s3 = srv.client()
    s3.create_bucket(Bucket="crawl-k9")
    for i in range(200):
        s3.put_object(Bucket="crawl-k9", Key="d/p=%03d/x.csv" % i, Body=b"a\n1\n")
    glue = glue_client(srv)
    glue.create_crawler(Name="k9", Role="r", DatabaseName="default",
                        Targets={"S3Targets": [{"Path": "s3://crawl-k9/d/"}]})
    glue.start_crawler(Name="k9")
    srv.kill9()
    srv.start()
    glue = glue_client(srv)
    c = glue.get_crawler(Name="k9")["Crawler"]
    assert c["State"] == "READY"
    # either it finished before the kill, or it comes back FAILED
    assert c.get("LastCrawl", {}).get("Status") in ("SUCCEEDED", "FAILED"), c
    assert c["Targets"]["S3Targets"][0]["Path"] == "s3://crawl-k9/d/"


def wait_for(fn, timeout=120):
    deadline = time.time() + timeout
    while True:
        try:
            got = fn()
            if got:
                return got
        except ClientError as ex:
            if ex.response["Error"]["Code"] != "EntityNotFoundException":
                raise
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_event_mode_follows_uploads(tarn, s3, lake):
    """CRAWL_EVENT_MODE: the bucket's notifications (to an SQS queue, as Glue
    asks for) feed the crawler inside tarn: new tables, partitions and
    columns appear without StartCrawler and without listing."""
    sqs = boto3.client("sqs", endpoint_url=tarn.endpoint, region_name="us-east-1",
                       aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key)
    q = sqs.create_queue(QueueName="crawl-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=q,
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket="crawl-live")
    s3.put_bucket_notification_configuration(Bucket="crawl-live", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    lake.create_crawler(Name="live", Role="r", DatabaseName="crawled",
                        Targets={"S3Targets": [{"Path": "s3://crawl-live/ev/",
                                                "EventQueueArn": arn}]},
                        RecrawlPolicy={"RecrawlBehavior": "CRAWL_EVENT_MODE"})
    assert lake.get_crawler(Name="live")["Crawler"]["RecrawlPolicy"] == {
        "RecrawlBehavior": "CRAWL_EVENT_MODE"}
    t0 = time.time()
    s3.put_object(Bucket="crawl-live", Key="ev/clicks/dt=2024-01-01/a.csv",
                  Body=b"id,n\n000042,1\n")
    t = wait_for(lambda: lake.get_table(DatabaseName="crawled", Name="clicks")["Table"])
    first = time.time() - t0
    assert columns(t) == [("id", "string"), ("n", "bigint")]
    assert [k["Name"] for k in t["PartitionKeys"]] == ["dt"]
    s3.put_object(Bucket="crawl-live", Key="ev/clicks/dt=2024-01-02/b.csv",
                  Body=b"id,n,note\n7,2.5,x\n")

    def widened():
        t = lake.get_table(DatabaseName="crawled", Name="clicks")["Table"]
        parts = lake.get_partitions(DatabaseName="crawled", TableName="clicks")["Partitions"]
        if len(parts) == 2 and len(t["StorageDescriptor"]["Columns"]) == 3:
            return t
    t = wait_for(widened)
    assert columns(t) == [("id", "string"), ("n", "double"), ("note", "string")]
    assert t["Parameters"]["objectCount"] == "2"
    assert sql(tarn, "SELECT id, n, dt FROM crawled.clicks ORDER BY dt") == [
        ["000042", 1.0, "2024-01-01"], ["7", 2.5, "2024-01-02"]]
    print("event mode: first table %.3f s after the upload" % first)


def test_schema_change_policy_log_and_delete(tarn, s3, lake):
    s3.create_bucket(Bucket="crawl-policy")
    s3.put_object(Bucket="crawl-policy", Key="p/a/x.csv", Body=b"u,v\n1,2\n")
    lake.create_database(DatabaseInput={"Name": "policy"})
    lake.create_crawler(Name="policy", Role="r", DatabaseName="policy",
                        Targets={"S3Targets": [{"Path": "s3://crawl-policy/p"}]},
                        SchemaChangePolicy={"UpdateBehavior": "LOG",
                                            "DeleteBehavior": "DELETE_FROM_DATABASE"})
    lake.start_crawler(Name="policy")
    assert wait_ready(lake, "policy")["LastCrawl"]["Status"] == "SUCCEEDED"
    assert columns(lake.get_table(DatabaseName="policy", Name="a")["Table"]) == [
        ("u", "bigint"), ("v", "bigint")]
    # LOG: a new column does not change the table
    s3.put_object(Bucket="crawl-policy", Key="p/a/y.csv", Body=b"u,v,w\n1,2,x\n")
    s3.put_object(Bucket="crawl-policy", Key="p/b/x.csv", Body=b"k\nz\n")
    lake.start_crawler(Name="policy")
    assert wait_ready(lake, "policy")["LastCrawl"]["Status"] == "SUCCEEDED"
    assert columns(lake.get_table(DatabaseName="policy", Name="a")["Table"]) == [
        ("u", "bigint"), ("v", "bigint")]
    assert columns(lake.get_table(DatabaseName="policy", Name="b")["Table"]) == [("k", "string")]
    # DELETE_FROM_DATABASE: a's objects are gone, so is the table
    s3.delete_object(Bucket="crawl-policy", Key="p/a/x.csv")
    s3.delete_object(Bucket="crawl-policy", Key="p/a/y.csv")
    lake.start_crawler(Name="policy")
    c = wait_ready(lake, "policy")
    assert c["LastCrawl"]["Status"] == "SUCCEEDED"
    names = [t["Name"] for t in lake.get_tables(DatabaseName="policy")["TableList"]]
    assert names == ["b"]
    m = lake.get_crawler_metrics(CrawlerNameList=["policy"])["CrawlerMetricsList"][0]
    assert m["TablesDeleted"] == 1
