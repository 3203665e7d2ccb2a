#!/usr/bin/env bash
# bench/kv_bench.sh -- key-value tables (issue 13): DynamoDB PutItem, GetItem
# and Query operations per second, tarn beside moto's DynamoDB server run on
# this machine in this run (in memory: no disk, no fsync, so a ceiling for
# the protocol work, not a durability peer).
#
# Client: bench/kv/kvload.py (Debian's boto3, KV_PROCS processes, one
# keep-alive connection each), the same for both servers, one after the
# other for each metric; the client's own cost (SigV4 and JSON in Python)
# bounds both, so the ratio says more than the figures.
#
# Environment: TARN (build/tarn), BUILD (build), KV_SECS (3) seconds per
# run, KV_ROUNDS (3) runs per server and metric (the median is shown),
# KV_PROCS (4) client processes, MOTO (moto_server: pip's moto). Output:
# bench/out/kv.txt (the table), bench/out/kv-raw.txt (every client line).
set -euo pipefail
BENCH_NAME=kv
source "$(dirname "$0")/lib.sh"
SECS=${KV_SECS:-3}
ROUNDS=${KV_ROUNDS:-3}
PROCS=${KV_PROCS:-4}
MOTO=${MOTO:-$(command -v moto_server || true)}
export AK SK
: >"$OUT/kv-raw.txt"

[ -n "$MOTO" ] || { say "no moto_server (pip install 'moto[server]', or set MOTO)"; exit 1; }

bench_tarn_start
TPORT=$PORT
MPORT=$(bench_free_port)
"$MOTO" -H 127.0.0.1 -p "$MPORT" >"$T/moto.log" 2>&1 &
bench_track $!
bench_wait_up "http://127.0.0.1:$MPORT/" || exit 1

make_table() {
  AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=us-east-1 \
    aws --endpoint-url "$1" dynamodb create-table --table-name bench \
    --billing-mode PAY_PER_REQUEST \
    --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=N \
    --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE >/dev/null
}
make_table "http://127.0.0.1:$TPORT"
make_table "http://127.0.0.1:$MPORT"

# median ops/s of ROUNDS runs: run SERVER OP
run() {
  local url=$1 op=$2 vals=() line
  for _ in $(seq "$ROUNDS"); do
    line=$(/usr/bin/python3 bench/kv/kvload.py "$url" bench "$op" "$PROCS" "$SECS")
    echo "$url $line" >>"$OUT/kv-raw.txt"
    vals+=("$(echo "$line" | /usr/bin/python3 -c 'import json,sys; o=json.load(sys.stdin); print(o["ops"]/o["secs"])')")
  done
  printf '%s\n' "${vals[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

{
  printf '%-10s %10s %10s %8s\n' metric "tarn op/s" "moto op/s" ratio
  for op in put get query; do
    t=$(run "http://127.0.0.1:$TPORT" $op)
    m=$(run "http://127.0.0.1:$MPORT" $op)
    awk -v op="$op" -v t="$t" -v m="$m" 'BEGIN { printf "%-10s %10.0f %10.0f %7.2fx\n", op, t, m, (m > 0 ? t / m : 0) }'
  done
} | tee "$OUT/kv.txt"
