"""bench/athena_load.py -- the client of bench/athena_bench.sh: the round
trip of a small query through the Athena API (StartQueryExecution, then
GetQueryExecution polled without pause until SUCCEEDED, then the first page
of GetQueryResults) against the same query POSTed to /_tarn/sql (one
request, CSV back), N times each, interleaved; prints p50/p99 and the ratio.

Both clients are Python over keep-alive connections (boto3 for Athena,
requests signed by botocore's SigV4 for /_tarn/sql), so the difference is
the server's: the Athena path commits the execution (QUEUED, then its final
state) and writes two result objects durably before it answers SUCCEEDED.

A small S3 PutObject is timed in the same loop: one durable commit, the
unit the Athena path pays three of (the QUEUED record, overlapped with the
query; the two result objects, in one group commit; the final record).

Environment: ENDPOINT, AK, SK, N (200).
"""
import os
import statistics
import time
import uuid

import boto3
import botocore.auth
import botocore.credentials
import requests
from botocore.awsrequest import AWSRequest
from botocore.config import Config

N = int(os.environ.get("N", "200"))
EP, AK, SK = os.environ["ENDPOINT"], os.environ["AK"], os.environ["SK"]


def client(service):
    return boto3.session.Session().client(
        service, endpoint_url=EP, region_name="us-east-1", aws_access_key_id=AK,
        aws_secret_access_key=SK, config=Config(retries={"total_max_attempts": 1}))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    s3, ath = client("s3"), client("athena")
    bucket = "athena-bench-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="t/part-0.csv", Body=(
        "id,city,amount\n" + "".join("%d,c%d,%d.5\n" % (i, i % 7, i) for i in range(100))).encode())
    sql = ("SELECT city, count(*) AS n, sum(amount) AS total FROM 's3://%s/t/' "
           "GROUP BY city ORDER BY city" % bucket)
    out = {"OutputLocation": "s3://%s/results/" % bucket}
    creds = botocore.credentials.Credentials(AK, SK)
    server, polls = [], [0]
    http = requests.Session()

    def athena_once():
        t = time.perf_counter()
        qid = ath.start_query_execution(QueryString=sql, ResultConfiguration=out)
        qid = qid["QueryExecutionId"]
        while True:
            q = ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            polls[0] += 1
            st = q["Status"]
            if st["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
        assert st["State"] == "SUCCEEDED", st
        server.append(q["Statistics"]["TotalExecutionTimeInMillis"] / 1000.0)
        rows = ath.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
        assert len(rows) == 8, rows
        return time.perf_counter() - t

    def native_once():
        t = time.perf_counter()
        req = AWSRequest(method="POST", url=EP + "/_tarn/sql", data=sql.encode(),
                         headers={"Accept": "text/csv"})
        botocore.auth.SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
        r = http.post(EP + "/_tarn/sql", data=sql.encode(), headers=dict(req.headers))
        assert r.status_code == 200 and r.text.count("\n") == 8, r.text
        return time.perf_counter() - t

    def put_once():   # one durable commit of the store, for scale
        t = time.perf_counter()
        s3.put_object(Bucket=bucket, Key="put/x", Body=b"x" * 100)
        return time.perf_counter() - t

    for _ in range(10):   # warm up both paths
        athena_once()
        native_once()
    a, n, p = [], [], []
    del server[:]
    polls[0] = 0
    for _ in range(N):
        a.append(athena_once())
        n.append(native_once())
        p.append(put_once())
    ms = lambda x: x * 1000.0
    print("query: %s" % sql)
    print("%-44s %9s %9s %9s" % ("path (%d runs each, interleaved)" % N, "p50 ms", "p99 ms",
                                 "mean ms"))
    print("%-44s %9.2f %9.2f %9.2f" % ("Athena API: start, poll to SUCCEEDED, page 1",
                                       ms(pct(a, 50)), ms(pct(a, 99)), ms(statistics.mean(a))))
    print("%-44s %9.2f %9.2f %9.2f" % ("POST /_tarn/sql (CSV)", ms(pct(n, 50)), ms(pct(n, 99)),
                                       ms(statistics.mean(n))))
    print("%-44s %9.2f %9.2f %9.2f" % ("  of which in the server (TotalExecutionTime)",
                                       ms(pct(server, 50)), ms(pct(server, 99)),
                                       ms(statistics.mean(server))))
    print("%-44s %9.2f %9.2f %9.2f" % ("S3 PutObject of 100 bytes (one commit)", ms(pct(p, 50)),
                                       ms(pct(p, 99)), ms(statistics.mean(p))))
    print("GetQueryExecution polls per query: %.1f" % (polls[0] / float(N)))
    print("ratio Athena / native at p50: %.2f" % (pct(a, 50) / pct(n, 50)))


main()
