"""tests/e2e/test_glue_crash.py -- the catalog under kill -9: what Glue
acknowledged (databases, tables, partitions created or deleted) is there
after a restart, also when the kill lands while partitions are being
created from several threads.
"""
from queue_util import client
from test_firehose_crash import put_until_killed
from test_glue import CSV_SD, part, table_input


def test_catalog_survives_kill9(tarn_factory):
    srv = tarn_factory()
    g = client(srv, "glue")
    g.create_database(DatabaseInput={"Name": "crash"})
    g.create_table(DatabaseName="crash", TableInput=table_input("t"))
    g.batch_create_partition(DatabaseName="crash", TableName="t",
                             PartitionInputList=[part(2024, "%02d" % m) for m in range(1, 13)])
    g.delete_partition(DatabaseName="crash", TableName="t", PartitionValues=["2024", "12"])
    srv.kill9()
    srv.start()
    g = client(srv, "glue")
    assert g.get_table(DatabaseName="crash", Name="t")["Table"]["StorageDescriptor"][
        "Columns"] == CSV_SD["Columns"]
    got = [p["Values"][1] for p in
           g.get_partitions(DatabaseName="crash", TableName="t")["Partitions"]]
    assert got == ["%02d" % m for m in range(1, 12)]


def test_acknowledged_partitions_survive_kill9(tarn_factory):
    srv = tarn_factory()
    g = client(srv, "glue", connect_timeout=2, read_timeout=10)
    g.create_database(DatabaseInput={"Name": "crash2"})
    g.create_table(DatabaseName="crash2", TableInput=table_input("t"))

    def put(k, i):
        if i % 2:
            g.create_partition(DatabaseName="crash2", TableName="t",
                               PartitionInput=part(k, "s%d" % i))
            return {(str(k), "s%d" % i)}
        r = g.batch_create_partition(DatabaseName="crash2", TableName="t", PartitionInputList=[
            part(k, "b%d-%d" % (i, j)) for j in range(3)])
        assert r["Errors"] == []
        return {(str(k), "b%d-%d" % (i, j)) for j in range(3)}

    acked = put_until_killed(srv, put)
    srv.start()
    g = client(srv, "glue")
    got = set()
    for p in g.get_paginator("get_partitions").paginate(DatabaseName="crash2", TableName="t"):
        got.update(tuple(x["Values"]) for x in p["Partitions"])
    assert acked <= got, "%d acknowledged partitions lost" % len(acked - got)
