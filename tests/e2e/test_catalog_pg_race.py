"""tests/e2e/test_catalog_pg_race.py -- many writers into one table of a
Glue catalog that two tarn nodes share in PostgreSQL (`--metadata`).

What a user of two nodes checks, as Firehose, crawlers and ETL jobs write
into one table from several places at once: 8 clients over 2 nodes
creating 200 partitions (BatchCreatePartition and CreatePartition) all
succeed, and GetPartitions lists each of them once on both nodes;
UpdateTable calls at once all succeed, and the only failure is AWS's
ConcurrentModificationException for a VersionId that is no longer the
table's (of writers holding the same VersionId, exactly one wins), and
PostgreSQL logs no serialization failure (no writer had to run again); an
upload on one node reaches an event-mode crawler's table (the change feed
is shared).

Start reading at test_partitions_from_eight_clients_on_two_nodes().
"""
import os
import threading
import time

import pytest
from botocore.exceptions import ClientError

from pg_util import backend, pg, two_nodes  # noqa: F401 (fixtures)
from test_catalog_pg import csv_table

CLIENTS = 8
PARTITIONS = 200


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, pg, backend):
    yield from two_nodes(pg, backend, tmp_path_factory, "race")


def run_all(fns):
    """Runs every fn in a thread of its own, started together; their
    results (an exception is a result)."""
    out = [None] * len(fns)
    go = threading.Barrier(len(fns))

    def one(i):
        go.wait()
        try:
            out[i] = fns[i]()
        except Exception as exc:  # noqa: BLE001 (reported by the caller)
            out[i] = exc
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def clients(nodes):
    """CLIENTS Glue clients, alternately on each node."""
    return [nodes[i % 2].service_client("glue") for i in range(CLIENTS)]


def partition(table, v):
    sd = dict(table["StorageDescriptor"])
    sd["Location"] = table["StorageDescriptor"]["Location"] + "dt=%s/" % v
    return {"Values": [v], "StorageDescriptor": sd}


def all_partitions(g, db, table):
    values = []
    for page in g.get_paginator("get_partitions").paginate(DatabaseName=db, TableName=table):
        values.extend(p["Values"][0] for p in page["Partitions"])
    return values


def test_partitions_from_eight_clients_on_two_nodes(nodes):
    a = nodes[0].service_client("glue")
    a.create_database(DatabaseInput={"Name": "race"})
    tin = csv_table("events", "s3://lake/events/", [("id", "string")], keys=["dt"])
    a.create_table(DatabaseName="race", TableInput=tin)
    values = ["%06d" % i for i in range(PARTITIONS)]
    per = PARTITIONS // CLIENTS

    def writer(g, mine, batched):
        def go():
            if batched:  # as Firehose and crawlers do
                for i in range(0, len(mine), 5):
                    r = g.batch_create_partition(
                        DatabaseName="race", TableName="events",
                        PartitionInputList=[partition(tin, v) for v in mine[i:i + 5]])
                    assert r.get("Errors", []) == []
            else:  # as an ETL job adding its output does
                for v in mine:
                    g.create_partition(DatabaseName="race", TableName="events",
                                       PartitionInput=partition(tin, v))
            return len(mine)
        return go
    gs = clients(nodes)
    t0 = time.time()
    results = run_all([writer(gs[i], values[i * per:(i + 1) * per], i % 4 < 2)
                       for i in range(CLIENTS)])
    print("%d partitions from %d clients on 2 nodes: %.2f s"
          % (PARTITIONS, CLIENTS, time.time() - t0))
    assert results == [per] * CLIENTS
    for g in (a, nodes[1].service_client("glue")):
        listed = all_partitions(g, "race", "events")
        assert sorted(listed) == values  # each once, 000042 as written
    # the same values again: each one is taken, whichever node asks
    with pytest.raises(ClientError) as exc:
        gs[1].create_partition(DatabaseName="race", TableName="events",
                               PartitionInput=partition(tin, "000042"))
    assert exc.value.response["Error"]["Code"] == "AlreadyExistsException"


def test_update_table_at_once(nodes):
    gs = clients(nodes)
    a = gs[0]
    a.create_database(DatabaseInput={"Name": "upd"})
    a.create_table(DatabaseName="upd",
                   TableInput=csv_table("t", "s3://lake/t/", [("c0", "string")]))
    v0 = int(a.get_table(DatabaseName="upd", Name="t")["Table"]["VersionId"])
    rounds = 4

    # without VersionId: last writer wins, every call succeeds
    def updater(g, i):
        def go():
            for r in range(rounds):
                col = "w%d_%d" % (i, r)
                g.update_table(DatabaseName="upd", TableInput=csv_table(
                    "t", "s3://lake/t/", [("c0", "string"), (col, "bigint")]))
            return "ok"
        return go
    assert run_all([updater(gs[i], i) for i in range(CLIENTS)]) == ["ok"] * CLIENTS
    t = gs[1].get_table(DatabaseName="upd", Name="t")["Table"]
    assert int(t["VersionId"]) == v0 + CLIENTS * rounds
    assert len(t["StorageDescriptor"]["Columns"]) == 2

    # with the VersionId all of them read: one wins, the others get AWS's error
    seen = t["VersionId"]

    def optimist(g, i):
        def go():
            try:
                g.update_table(DatabaseName="upd", VersionId=seen, TableInput=csv_table(
                    "t", "s3://lake/t/", [("c0", "string"), ("o%d" % i, "bigint")]))
                return i
            except ClientError as exc:
                return exc.response["Error"]["Code"]
        return go
    out = run_all([optimist(gs[i], i) for i in range(CLIENTS)])
    winners = [r for r in out if isinstance(r, int)]
    assert len(winners) == 1, out
    assert sorted(r for r in out if not isinstance(r, int)) == \
        ["ConcurrentModificationException"] * (CLIENTS - 1)
    t = gs[3].get_table(DatabaseName="upd", Name="t")["Table"]
    assert int(t["VersionId"]) == int(seen) + 1
    assert t["StorageDescriptor"]["Columns"][1]["Name"] == "o%d" % winners[0]


def serialization_failures(pg):
    """How many serialization failures PostgreSQL logged (what an operator
    watching its log sees of writers that had to run again). The catalog's
    writes were the only ones above READ COMMITTED, where none can occur."""
    with open(os.path.join(pg.dir, "postgres.log"), errors="replace") as f:
        return f.read().count("could not serialize access")


def wait_for(fn, timeout=120):
    deadline = time.time() + timeout
    while True:
        try:
            r = fn()
            if r:
                return r
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "EntityNotFoundException":
                raise
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def test_event_mode_crawler_sees_an_upload_on_the_other_node(nodes):
    a, b = nodes
    ga = a.service_client("glue")
    sqs = a.service_client("sqs")
    q = sqs.create_queue(QueueName="race-crawl")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=q,
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3a = a.client()
    s3a.create_bucket(Bucket="race-live")
    s3a.put_bucket_notification_configuration(Bucket="race-live", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    ga.create_database(DatabaseInput={"Name": "racecrawl"})
    ga.create_crawler(Name="race-live", Role="r", DatabaseName="racecrawl",
                      Targets={"S3Targets": [{"Path": "s3://race-live/ev/",
                                              "EventQueueArn": arn}]},
                      RecrawlPolicy={"RecrawlBehavior": "CRAWL_EVENT_MODE"})
    b.client().put_object(Bucket="race-live", Key="ev/clicks/dt=2024-01-01/a.csv",
                          Body=b"id,n\n000042,1\n")
    t = wait_for(lambda: ga.get_table(DatabaseName="racecrawl", Name="clicks")["Table"])
    assert [k["Name"] for k in t["PartitionKeys"]] == ["dt"]
    assert wait_for(lambda: all_partitions(ga, "racecrawl", "clicks")) == ["2024-01-01"]


def test_no_writer_ran_again(pg):
    """Of the writes of this file, none failed to serialize (and ran again): the
    catalog's writers wait for each other instead."""
    assert serialization_failures(pg) == 0
