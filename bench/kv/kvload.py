"""bench/kv/kvload.py -- a DynamoDB load generator for bench/kv_bench.sh:
PROCS processes, each with its own boto3 client (one keep-alive
connection), run one operation as fast as they can for SECS seconds and
print one JSON line: {"op", "ops", "secs", "p99_ms"}.

  kvload.py ENDPOINT TABLE OP PROCS SECS     OP: put | get | query

Items are ~100 bytes under partition keys p0..p99 with numeric sort keys;
get and query read what a put phase wrote (query: one partition, Limit 10).
"""
import json
import multiprocessing as mp
import os
import sys
import time

import boto3
from botocore.config import Config


def worker(endpoint, table, op, secs, wid, q):
    c = boto3.session.Session().client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=os.environ.get("AK", "benchaccesskey"),
        aws_secret_access_key=os.environ.get("SK", "benchsecretkey0123456789"),
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=1))
    n, lat = 0, []
    end = time.monotonic() + secs
    while True:
        t0 = time.monotonic()
        if t0 >= end:
            break
        pk = "p%d" % ((wid * 7919 + n) % 100)
        sk = str((wid * 100000 + n) % 1000)
        if op == "put":
            c.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"N": sk},
                                              "payload": {"S": "x" * 80}})
        elif op == "get":
            c.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"N": sk}})
        else:
            c.query(TableName=table, KeyConditionExpression="pk = :p", Limit=10,
                    ExpressionAttributeValues={":p": {"S": pk}})
        lat.append(time.monotonic() - t0)
        n += 1
    q.put((n, lat))


def main():
    endpoint, table, op, procs, secs = sys.argv[1:6]
    procs, secs = int(procs), float(secs)
    q = mp.Queue()
    ps = [mp.Process(target=worker, args=(endpoint, table, op, secs, i, q)) for i in range(procs)]
    for p in ps:
        p.start()
    total, lat = 0, []
    for _ in ps:
        n, l = q.get()
        total += n
        lat += l
    for p in ps:
        p.join()
    lat.sort()
    p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else 0
    print(json.dumps({"op": op, "ops": total, "secs": secs, "p99_ms": round(p99, 3)}))


if __name__ == "__main__":
    main()
