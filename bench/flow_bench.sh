#!/usr/bin/env bash
# bench/flow_bench.sh -- workflows (issue 12): state transitions per second
# of an EXPRESS machine run with StartSyncExecution and of a STANDARD
# machine (every step committed to disk), both a loop of Choice and Pass
# states, from 1 and 8 concurrent executions.
#
# No peer is run: there is no Step Functions engine packaged for Debian
# (Step Functions Local is a Java download), so the table gives tarn's own
# rates and the STANDARD/EXPRESS ratio (the cost of durability: in tarn both
# kinds commit each step; a STANDARD execution is polled to its end).
#
# A transition is one state entered; a machine of LOOPS iterations enters
# 2 * LOOPS + 1 states. Client: Debian's boto3 (bench/flow_load.py).
#
# Environment: TARN (build/tarn), BUILD (build), FLOW_LOOPS (2000),
# FLOW_ROUNDS (3, the median is shown). Output: bench/out/flow.txt.
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

say() { printf 'bench flow: %s\n' "$*" >&2; }

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
ENDPOINT=http://127.0.0.1:$PORT AK=$AK SK=$SK LOOPS=${FLOW_LOOPS:-2000} \
  ROUNDS=${FLOW_ROUNDS:-3} /usr/bin/python3 bench/flow_load.py | tee "$OUT/flow.txt"
