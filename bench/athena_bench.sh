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
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
TARN=${TARN:-$BUILD/tarn}
OUT=$ROOT/bench/out
mkdir -p "$OUT"
AK=benchaccesskey
SK=benchsecretkey0123456789

say() { printf 'bench athena: %s\n' "$*" >&2; }

[ -x "$TARN" ] || { say "no tarn binary at $TARN (build it first)"; exit 1; }
DIR=$(mktemp -d)
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK "$TARN" server --data "$DIR/data" \
  --listen "127.0.0.1:$PORT" >"$DIR/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/_tarn/health" >/dev/null && break
  sleep 0.1
done
say "tarn on port $PORT, $("$TARN" version)"
ENDPOINT=http://127.0.0.1:$PORT AK=$AK SK=$SK N=${ATHENA_N:-200} \
  /usr/bin/python3 bench/athena_load.py | tee "$OUT/athena.txt"
