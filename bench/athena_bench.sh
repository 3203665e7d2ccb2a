#!/usr/bin/env bash
# bench/athena_bench.sh -- the Athena API (issue 10): round trip of a small
# query (StartQueryExecution until SUCCEEDED, plus the first page of
# GetQueryResults), p50/p99, against the same query through POST /_tarn/sql
# in the same run on the same server (there is no Athena peer to run here;
# /_tarn/sql is the engine without the API's durability and result objects).
# Client: Debian's boto3 (bench/athena_load.py).
#
# Environment: TARN (build/tarn), BUILD (build), ATHENA_N (200 runs of each).
# Output: bench/out/athena.txt.
set -euo pipefail
BENCH_NAME=athena
source "$(dirname "$0")/lib.sh"

bench_tarn_start
ENDPOINT=http://127.0.0.1:$PORT AK=$AK SK=$SK N=${ATHENA_N:-200} \
  /usr/bin/python3 bench/athena_load.py | tee "$OUT/athena.txt"
