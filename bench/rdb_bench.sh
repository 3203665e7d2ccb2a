#!/usr/bin/env bash
# bench/rdb_bench.sh -- serverless PostgreSQL (issue 16): the round trip of
# one primary-key SELECT through the RDS Data API (a SigV4-signed POST
# /Execute, one keep-alive connection, PostgreSQL reached by tarn through
# libpq on the cluster's Unix socket) beside the same statement sent by
# pgbench (libpq, extended protocol, as tarn sends it) straight to the same
# socket: the peer is PostgreSQL itself, so the difference is what the Data
# API costs. Then the resume time: the cluster auto-pauses (MinCapacity 0,
# SecondsUntilAutoPause 1) and the first statement after that is timed, end
# to end (tarn also reports it as tarn_rdb_last_resume_seconds in /_tarn/metrics).
#
# The two paths alternate RDB_ROUNDS (3) rounds of RDB_N (1000) statements;
# medians of the rounds' p50 and p99 are shown; RDB_RESUMES (5) resumes.
#
# Environment: TARN (build/tarn), BUILD (build). Output: bench/out/rdb.txt.
set -euo pipefail
BENCH_NAME=rdb
source "$(dirname "$0")/lib.sh"
[ -x "$TARN" ] || { say "no tarn binary at '$TARN' (set TARN)"; exit 1; }
command -v pgbench >/dev/null || { say "pgbench is missing (apt-get install postgresql)"; exit 1; }

bench_tarn_start

RDB_N=${RDB_N:-1000} RDB_ROUNDS=${RDB_ROUNDS:-3} RDB_RESUMES=${RDB_RESUMES:-5} \
  ENDPOINT="http://127.0.0.1:$PORT" DATA="$T/data" WORK="$T" \
  /usr/bin/python3 - <<'PY' | tee "$OUT/rdb.txt"
import http.client, json, os, statistics, subprocess, time, urllib.parse
import boto3, requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ep, data, work = os.environ["ENDPOINT"], os.environ["DATA"], os.environ["WORK"]
N, ROUNDS, RESUMES = (int(os.environ[k]) for k in ("RDB_N", "RDB_ROUNDS", "RDB_RESUMES"))
AK, SK = "benchaccesskey", "benchsecretkey0123456789"
for _ in range(600):
    try:
        if requests.get(ep + "/_tarn/health", timeout=2).status_code == 200:
            break
    except requests.RequestException:
        pass
    time.sleep(0.1)
kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id=AK,
          aws_secret_access_key=SK, config=Config(retries={"total_max_attempts": 1}))
rds = boto3.client("rds", **kw)
dapi = boto3.client("rds-data", **kw)
sm = boto3.client("secretsmanager", **kw)
PW = "benchpass123"
rds.create_db_cluster(DBClusterIdentifier="bench", Engine="aurora-postgresql",
                      MasterUsername="master", MasterUserPassword=PW, DatabaseName="app",
                      EnableHttpEndpoint=True,
                      ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 2})
arn = "arn:aws:rds:us-east-1:000000000000:cluster:bench"
secret = sm.create_secret(Name="bench", SecretString=json.dumps(
    {"username": "master", "password": PW}))["ARN"]
ex = lambda sql: dapi.execute_statement(resourceArn=arn, secretArn=secret, database="app", sql=sql)
ex("CREATE TABLE kv (id int PRIMARY KEY, v text)")
ex("INSERT INTO kv SELECT g, 'value ' || g FROM generate_series(1, 10000) g")

SQL = "SELECT v FROM kv WHERE id = 4242"
body = json.dumps({"resourceArn": arn, "secretArn": secret, "database": "app", "sql": SQL})
req = AWSRequest(method="POST", url=ep + "/Execute", data=body,
                 headers={"Content-Type": "application/json"})
SigV4Auth(Credentials(AK, SK), "rds-data", "us-east-1").add_auth(req)
headers = dict(req.headers.items())
host = urllib.parse.urlparse(ep)
conn = http.client.HTTPConnection(host.hostname, host.port)

def data_api(n):
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/Execute", body=body, headers=headers)
        r = conn.getresponse()
        out = r.read()
        lat.append((time.perf_counter() - t0) * 1e3)
        assert r.status == 200, out
    assert json.loads(out)["records"] == [[{"stringValue": "value 4242"}]]
    return lat

sock = os.path.join(data, "rdb", "bench", "sock")
with open(os.path.join(work, "q.sql"), "w") as f:
    f.write(SQL + ";\n")

def pgbench(n):
    logdir = os.path.join(work, "pglog")
    subprocess.run(["rm", "-rf", logdir]); os.mkdir(logdir)
    env = dict(os.environ, PGPASSWORD=PW)
    subprocess.run(["pgbench", "-n", "-h", sock, "-U", "master", "-M", "extended", "-t", str(n),
                    "-f", os.path.join(work, "q.sql"), "-l", "--log-prefix",
                    os.path.join(logdir, "log"), "app"], env=env, check=True,
                   capture_output=True, cwd=work)
    lat = []
    for name in os.listdir(logdir):
        for line in open(os.path.join(logdir, name)):
            lat.append(int(line.split()[2]) / 1e3)
    return lat

def pct(lat, p):
    s = sorted(lat)
    return s[min(len(s) - 1, int(len(s) * p))]

data_api(200); pgbench(200)  # warm both
rows = {"data-api": [], "libpq": []}
for _ in range(ROUNDS):
    rows["data-api"].append(data_api(N))
    rows["libpq"].append(pgbench(N))
print("statement: %s  (%d rounds of %d, medians of the rounds)" % (SQL, ROUNDS, N))
print("%-9s %9s %9s" % ("path", "p50 ms", "p99 ms"))
med = {}
for k in ("libpq", "data-api"):
    p50 = statistics.median(pct(l, 0.50) for l in rows[k])
    p99 = statistics.median(pct(l, 0.99) for l in rows[k])
    med[k] = (p50, p99)
    print("%-9s %9.3f %9.3f" % (k, p50, p99))
print("data-api overhead: p50 %+.3f ms, p99 %+.3f ms" % (med["data-api"][0] - med["libpq"][0],
                                                       med["data-api"][1] - med["libpq"][1]))

# resume from paused
conn.close()
def modify(request, **kw):
    request.data.update({"ServerlessV2ScalingConfiguration.SecondsUntilAutoPause": "1"})
rds.meta.events.register("before-sign.rds.ModifyDBCluster", modify)
rds.modify_db_cluster(DBClusterIdentifier="bench",
                      ServerlessV2ScalingConfiguration={"MinCapacity": 0, "MaxCapacity": 2})
pidfile = os.path.join(data, "rdb", "bench", "pg", "postmaster.pid")
first, inside = [], []
for _ in range(RESUMES):
    deadline = time.monotonic() + 120
    while os.path.exists(pidfile) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(pidfile), "the cluster did not pause"
    conn = http.client.HTTPConnection(host.hostname, host.port)
    conn.connect()
    t0 = time.perf_counter()
    conn.request("POST", "/Execute", body=body, headers=headers)
    r = conn.getresponse(); r.read()
    first.append((time.perf_counter() - t0) * 1e3)
    assert r.status == 200
    conn.close()
print("resume from paused: first statement %s ms (median %.0f ms)"
      % (" ".join("%.0f" % x for x in first), statistics.median(first)))
PY
say "done: bench/out/rdb.txt"
