#!/usr/bin/env bash
# bench/stream_bench.sh -- streams (issue 11): durable records per second
# through Firehose PutRecordBatch and Kinesis PutRecords (batches of 500
# records of 1 KiB, the issue's load, from 1 and 8 clients), beside Redis XADD with
# appendonly yes / appendfsync always (each write fsync'd before the answer,
# pipelined 500 deep: the same durability contract, no SigV4, no JSON, no
# base64) run on this machine in this run.
#
# Clients: bench/stream/sload (C, one keep-alive connection per thread,
# JSON 1.1, SigV4 with tarn's own signer) for tarn; redis-benchmark
# (Debian's redis-tools) for Redis.
#
# Environment: TARN (build/tarn), BUILD (build), SLOAD (prebuilt program),
# STREAM_SECS (2) seconds per run, STREAM_ROUNDS (3) runs per configuration
# (the median is shown), REDIS_N (200000) XADDs per redis-benchmark row,
# STREAM_RECORD_BYTES (1024) bytes per record.
# Output: bench/out/stream.txt (the table), bench/out/stream-raw.txt (every
# client line).
set -euo pipefail
BENCH_NAME=stream
source "$(dirname "$0")/lib.sh"
SECS=${STREAM_SECS:-2}
ROUNDS=${STREAM_ROUNDS:-3}
REDIS_N=${REDIS_N:-200000}
SIZE=${STREAM_RECORD_BYTES:-1024}
BATCH=500
: >"$OUT/stream-raw.txt"

# --- programs -------------------------------------------------------------------
if [ -z "${SLOAD:-}" ]; then
  [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
  ninja -C "$BUILD" bench/stream/sload bench/queue/qload >"$OUT/stream-build.log" 2>&1 ||
    { say "cannot build bench/stream (see bench/out/stream-build.log)"; exit 1; }
fi
SLOAD=${SLOAD:-$BUILD/bench/stream/sload}
QLOAD=${QLOAD:-$BUILD/bench/queue/qload}
[ -x "$TARN" ] || { say "no tarn binary at '$TARN' (set TARN)"; exit 1; }
bench_need_redis

# --- servers --------------------------------------------------------------------
bench_tarn_start
mkdir -p "$T/redis"
bench_redis_start --save '' --appendonly yes --appendfsync always --dir "$T/redis"
export TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK

# --- tarn -------------------------------------------------------------------------
declare -A TR TP
FAILED=0
for mode in firehose kinesis; do
  for conns in 1 8; do
    say "tarn $mode: batches of $BATCH, $conns client(s), ${SECS} s, $ROUNDS rounds"
    rates=""
    p50s=""
    for _ in $(seq "$ROUNDS"); do
      if out=$("$SLOAD" --port "$PORT" --mode "$mode" --conns "$conns" --batch "$BATCH" \
          --size "$SIZE" --duration "$SECS" 2>"$T/err"); then :; else
        FAILED=1
        say "sload failed: $(head -c 300 "$T/err")"
      fi
      printf '%s\n' "$out" >>"$OUT/stream-raw.txt"
      rates+="$(kv "$out" rec_s)"$'\n'
      p50s+="$(kv "$out" p50_ms)"$'\n'
    done
    TR[$mode-$conns]=$(printf '%s' "$rates" | median)
    TP[$mode-$conns]=$(printf '%s' "$p50s" | median)
  done
done

# --- Redis (durable: appendfsync always) -----------------------------------------
declare -A RR
VAL=$(head -c "$SIZE" /dev/zero | tr '\0' x)
for conns in 1 8; do
  say "redis XADD, pipelined $BATCH deep, $conns client(s)"
  csv=$(redis-benchmark -p "$RPORT" -c "$conns" -n "$REDIS_N" -P "$BATCH" --csv \
        XADD bench '*' f "$VAL" 2>/dev/null | tail -n 1)
  printf '%s  # redis-benchmark -c %s -n %s -P %s XADD (appendfsync always)\n' \
    "$csv" "$conns" "$REDIS_N" "$BATCH" | sed 's/x\{20,\}/x.../g' >>"$OUT/stream-raw.txt"
  RR[$conns]=$(printf '%s' "$csv" | awk -F'","' '{ gsub(/"/, "", $2); print $2 + 0 }')
done

# --- table ------------------------------------------------------------------------
{
  printf 'streams: durable records/s, batches of %d records of %d bytes (median of %d runs of %s s)\n' \
    "$BATCH" "$SIZE" "$ROUNDS" "$SECS"
  printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-26s %6s %12s %12s %9s %10s\n' metric conns tarn redis ratio "tarn p50"
  for mode in firehose kinesis; do
    for conns in 1 8; do
      t=${TR[$mode-$conns]}
      r=${RR[$conns]:--}
      ratio=$(awk -v a="$t" -v b="$r" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-";
                                              else printf "%.2fx", a / b }')
      label=$([ "$mode" = firehose ] && echo "Firehose PutRecordBatch" || echo "Kinesis PutRecords")
      printf '%-26s %6s %12s %12s %9s %8s ms\n' "$label" "c$conns" "$t" "$r" "$ratio" "${TP[$mode-$conns]}"
    done
  done
  echo "redis: XADD with appendonly yes, appendfsync always, pipelined $BATCH deep (redis-benchmark)"
} | tee "$OUT/stream.txt"
exit $FAILED
