#!/usr/bin/env bash
# bench/crawler_bench.sh -- Glue crawlers: how long after an upload its new
# partition is in the catalog with a crawler in CRAWL_EVENT_MODE (PutObject
# returned until GetPartitions shows it, p50/p99), and the time of a full
# crawl (StartCrawler until READY) over N partitions of small CSV objects.
# There is no Glue to run here: the figures are tarn's own.
# Client: Debian's boto3 (bench/crawler_load.py).
#
# Environment: TARN (build/tarn), BUILD (build), CRAWLER_N (100 uploads).
# Output: bench/out/crawler.txt.
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

say() { printf 'bench crawler: %s\n' "$*" >&2; }

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
ENDPOINT=http://127.0.0.1:$PORT AK=$AK SK=$SK N=${CRAWLER_N:-100} \
  /usr/bin/python3 bench/crawler_load.py | tee "$OUT/crawler.txt"
