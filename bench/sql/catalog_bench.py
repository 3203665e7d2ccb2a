#!/usr/bin/env python3
"""bench/sql/catalog_bench.py -- what a catalog table costs a query, against
the same objects named by path: a table of 288 Hive partitions (24 years x 12
months, 100 CSV rows each) registered with CREATE EXTERNAL TABLE + MSCK
REPAIR TABLE; each query POSTed to /_tarn/sql (SigV4, one connection), p50
and p99 of the round trip, bytes scanned.

    python3 bench/sql/catalog_bench.py build/tarn
"""
import os
import subprocess
import sys
import tempfile
import time

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

PORT = 47991


def main():
    tarn = sys.argv[1] if len(sys.argv) > 1 else "build/tarn"
    work = tempfile.mkdtemp(prefix="tarn-catalog-bench-")
    ep = "http://127.0.0.1:%d" % PORT
    srv = subprocess.Popen([tarn, "server", "--data", work + "/d", "--listen",
                            "127.0.0.1:%d" % PORT], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if requests.get(ep + "/_tarn/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        creds = dict(l.strip().split("=", 1) for l in open(work + "/d/credentials") if "=" in l)
        creds = {k.strip(): v.strip() for k, v in creds.items()}
        ak, sk = creds["aws_access_key_id"], creds["aws_secret_access_key"]
        s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                          aws_access_key_id=ak, aws_secret_access_key=sk)
        s3.create_bucket(Bucket="bench")
        body = b"".join(b"%d,%d,x\n" % (i, i) for i in range(100))
        for y in range(2000, 2024):
            for m in range(1, 13):
                s3.put_object(Bucket="bench", Key="t/year=%d/month=%02d/a.csv" % (y, m), Body=body)
        sess = requests.Session()

        def q(sql):
            req = AWSRequest(method="POST", url=ep + "/_tarn/sql", data=sql.encode(),
                             headers={"Accept": "application/json"})
            SigV4Auth(Credentials(ak, sk), "s3", "us-east-1").add_auth(req)
            d = sess.post(ep + "/_tarn/sql", data=sql.encode(), headers=dict(req.headers)).json()
            assert "error" not in d, d
            return d

        q("CREATE EXTERNAL TABLE t (id string, n int, s string) PARTITIONED BY (year string, "
          "month string) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://bench/t/'")
        q("MSCK REPAIR TABLE t")

        def bench(name, sql, n):
            ts = []
            for _ in range(n):
                t0 = time.perf_counter()
                d = q(sql)
                ts.append((time.perf_counter() - t0) * 1000)
            ts.sort()
            print("%-28s p50 %6.2f ms  p99 %6.2f ms  bytes scanned %d"
                  % (name, ts[len(ts) // 2], ts[max(0, int(len(ts) * 0.99) - 1)],
                     d["stats"]["bytes_scanned"]))

        bench("path, one partition", "SELECT count(*) FROM 's3://bench/t/**/*.csv' "
              "WHERE year = 2010 AND month = '05'", 200)
        bench("table, one partition", "SELECT count(*) FROM t WHERE year = '2010' "
              "AND month = '05'", 200)
        bench("path, all 288", "SELECT count(*) FROM 's3://bench/t/**/*.csv'", 50)
        bench("table, all 288", "SELECT count(*) FROM t", 50)
    finally:
        srv.terminate()
        srv.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
