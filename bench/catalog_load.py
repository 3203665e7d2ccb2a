"""bench/catalog_load.py -- Glue catalog calls per second against one node
(boto3, THREADS threads for SECS seconds each): GetTable, GetPartitions
(a page of 100 of a table's 1,000 partitions), CreateTable (new names),
BatchCreatePartition (100 new partitions a call). Prints one line per call:
`NAME calls_s=N`.

Usage: catalog_load.py ENDPOINT ACCESS_KEY SECRET_KEY [SECS] [THREADS]
"""
import sys
import threading
import time

import boto3
from botocore.config import Config

EP, AK, SK = sys.argv[1:4]
SECS = float(sys.argv[4]) if len(sys.argv) > 4 else 4
THREADS = int(sys.argv[5]) if len(sys.argv) > 5 else 4


def client():
    return boto3.session.Session().client(
        "glue", endpoint_url=EP, region_name="us-east-1", aws_access_key_id=AK,
        aws_secret_access_key=SK, config=Config(retries={"total_max_attempts": 1},
                                                max_pool_connections=THREADS))


def table(name, keys=()):
    return {"Name": name, "PartitionKeys": [{"Name": k, "Type": "string"} for k in keys],
            "StorageDescriptor": {"Columns": [{"Name": "x", "Type": "string"}],
                                  "Location": "s3://b/%s/" % name}}


def setup(g):
    g.create_database(DatabaseInput={"Name": "bench"})
    g.create_table(DatabaseName="bench", TableInput=table("parted", ("k",)))
    for i in range(0, 1000, 100):
        g.batch_create_partition(DatabaseName="bench", TableName="parted", PartitionInputList=[
            {"Values": ["%04d" % j]} for j in range(i, i + 100)])
    g.create_table(DatabaseName="bench", TableInput=table("fill", ("k",)))


def rate(name, call):
    """Calls per second of THREADS threads, each with its client made
    before the clock starts (a boto3 client takes a while to make)."""
    count = [0] * THREADS
    clients = [client() for _ in range(THREADS)]
    go = threading.Barrier(THREADS + 1)
    stop = [0.0]

    def work(t):
        go.wait()
        n = 0
        while time.monotonic() < stop[0]:
            call(clients[t], t, n)
            n += 1
        count[t] = n

    ths = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in ths:
        th.start()
    start = time.monotonic()
    stop[0] = start + SECS
    go.wait()
    for th in ths:
        th.join()
    print("%s calls_s=%.1f" % (name, sum(count) / (time.monotonic() - start)), flush=True)


g = client()
setup(g)
rate("get_table", lambda g, t, n: g.get_table(DatabaseName="bench", Name="parted"))
rate("get_partitions", lambda g, t, n: g.get_partitions(
    DatabaseName="bench", TableName="parted", MaxResults=100,
    Expression="k >= '%04d'" % (n * 37 % 900)))
rate("create_table", lambda g, t, n: g.create_table(
    DatabaseName="bench", TableInput=table("t%d_%d" % (t, n))))
rate("batch_create_partition", lambda g, t, n: g.batch_create_partition(
    DatabaseName="bench", TableName="fill", PartitionInputList=[
        {"Values": ["%d-%d-%03d" % (t, n, j)]} for j in range(100)]))
