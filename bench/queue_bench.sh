#!/usr/bin/env bash
# bench/queue_bench.sh -- queues (issue 4): durable SQS messages per second
# (SendMessage, ReceiveMessage, DeleteMessage, one by one and in batches of
# 10, from 1 and 8 clients) beside Redis LPUSH/BRPOP run on this machine in
# this run (an in-memory ceiling: no disk, no SigV4, no visibility time-out),
# and the event latency from an S3 PUT to the start of a warm function.
# ElasticMQ's published ~2,600 messages/s (SQS REST) is printed as an
# anchor, not run.
#
# Clients: bench/queue/qload (C, one keep-alive connection per thread, SQS
# JSON protocol, SigV4 with tarn's own signer) for SQS; redis-benchmark
# (Debian's redis-tools) for Redis; bench/fn/fnload event for the latency
# (the function is bench/fn/bootstrap with handler "stamp": it writes its
# start time, wall clock, to its log, read back through tarn's logs API).
#
# QUEUE_MODE=nodes runs only the comparison of nodes instead: the same qload
# phases (8 clients, batches of 1 and 10) against one tarn on LMDB, one tarn
# over PostgreSQL (--metadata) and two tarn nodes over that same PostgreSQL
# (4 clients on each, qload --port2), with Debian's PostgreSQL 15 started
# here (fsync on). Output: bench/out/queue-nodes.txt.
# QUEUE_MODE=topics is the same comparison for SNS: the clients publish to a
# topic (qload --topic) to which the queue is subscribed, then receive and
# delete the copies. Output: bench/out/queue-topics.txt.
#
# Environment: TARN (build/tarn), BUILD (build), QLOAD / FNLOAD / BOOTSTRAP
# (prebuilt programs), QUEUE_SECS (2) seconds per phase, QUEUE_ROUNDS (3)
# runs of each configuration (the median is shown), QUEUE_EVENTS (200)
# PUTs for the latency, one every 10 ms; REDIS_N (40000) redis-benchmark
# requests per row. Output: bench/out/queue.txt (the table),
# bench/out/queue-raw.txt (every client line).
set -euo pipefail
BENCH_NAME=queue
source "$(dirname "$0")/lib.sh"
SECS=${QUEUE_SECS:-2}
ROUNDS=${QUEUE_ROUNDS:-3}
EVENTS=${QUEUE_EVENTS:-200}
REDIS_N=${REDIS_N:-40000}
SIZE=100
FAILED=0

# --- programs -------------------------------------------------------------------
if [ -z "${QLOAD:-}" ] || [ -z "${FNLOAD:-}" ] || [ -z "${BOOTSTRAP:-}" ]; then
  [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
  ninja -C "$BUILD" bench/queue/qload bench/fn/fnload bench/fn/bootstrap \
    >"$OUT/queue-build.log" 2>&1 ||
    { say "cannot build bench/queue (see bench/out/queue-build.log)"; exit 1; }
fi
QLOAD=${QLOAD:-$BUILD/bench/queue/qload}
FNLOAD=${FNLOAD:-$BUILD/bench/fn/fnload}
BOOTSTRAP=${BOOTSTRAP:-$BUILD/bench/fn/bootstrap}
[ -x "$TARN" ] || { say "no tarn binary at '$TARN' (set TARN)"; exit 1; }

# --- QUEUE_MODE=nodes: one node (LMDB), one and two nodes over PostgreSQL ------------
if [ "${QUEUE_MODE:-}" = nodes ] || [ "${QUEUE_MODE:-}" = topics ]; then
  MODE=$QUEUE_MODE
  TOPIC_ARGS=()
  FIRST_OP=send
  bench_tmp
  export TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK
  bench_pg_start                    # sets PGURL
  # --metadata needs an object backend: a tarn of its own, bucket blobs
  bench_tarn_start
  BACKEND=$ENDPOINT
  AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=us-east-1 \
    /usr/bin/aws --endpoint-url "$BACKEND" s3api create-bucket --bucket blobs >/dev/null ||
    { say "cannot create the backend's bucket"; exit 1; }

  # node_start DIR [ARG...]: a tarn on a free port; sets NODE_PORT (not in a
  # subshell: the node must be tracked by this shell to be stopped at exit)
  node_start() {
    local dir=$1 port
    shift
    port=$(bench_free_port)
    "$TARN" server --data "$T/$dir" --listen "127.0.0.1:$port" "$@" >>"$T/$dir.log" 2>&1 &
    bench_track $!
    for _ in $(seq 200); do
      curl -sf "http://127.0.0.1:$port/_tarn/health" >/dev/null 2>&1 && break
      sleep 0.1
    done
    curl -sf "http://127.0.0.1:$port/_tarn/health" >/dev/null 2>&1 ||
      { say "tarn ($dir) does not answer: $(tail -n 3 "$T/$dir.log")"; exit 1; }
    NODE_PORT=$port
  }
  SHARED=(--metadata "$PGURL" --objects s3://blobs/queues --objects-endpoint "$BACKEND"
          --objects-access-key "$AK" --objects-secret-key "$SK")
  node_start lmdb
  LMDB_PORT=$NODE_PORT
  node_start pg1 "${SHARED[@]}"
  PG1_PORT=$NODE_PORT
  node_start pg2 "${SHARED[@]}"
  PG2_PORT=$NODE_PORT
  say "tarn LMDB on $LMDB_PORT; tarn over PostgreSQL on $PG1_PORT and $PG2_PORT"
  CONNS=8
  declare -A NODES
  : >"$OUT/queue-$MODE-raw.txt"
  for batch in 1 10; do
    for cfg in lmdb pg1 pg2; do
      case $cfg in
        lmdb) args=(--port "$LMDB_PORT") ;;
        pg1) args=(--port "$PG1_PORT") ;;
        pg2) args=(--port "$PG1_PORT" --port2 "$PG2_PORT") ;;
      esac
      say "$cfg: batch $batch, $CONNS clients, $ROUNDS rounds of ${SECS} s per phase"
      declare -A got=()
      for r in $(seq "$ROUNDS"); do
        [ "$MODE" = topics ] && TOPIC_ARGS=(--topic "topic-$cfg-b$batch-r$r") && FIRST_OP=publish
        if out=$("$QLOAD" "${args[@]}" --queue "$MODE-$cfg-b$batch-r$r" --conns "$CONNS" \
            --batch "$batch" --duration "$SECS" --size "$SIZE" "${TOPIC_ARGS[@]}" \
            2>"$T/err"); then :; else
          FAILED=1
          say "qload failed: $(head -c 300 "$T/err")"
        fi
        printf '%s  # %s\n' "$out" "$cfg" >>"$OUT/queue-$MODE-raw.txt"
        while read -r line; do
          [ -n "$line" ] && got[$(kv "$line" op)]+="$(kv "$line" msgs_s)"$'\n'
        done <<<"$out"
      done
      for op in $FIRST_OP receive delete; do
        NODES[$op-$batch-$cfg]=$(printf '%s' "${got[$op]:-}" | grep -v '^-*$' | median)
      done
      unset got
    done
  done
  {
    [ "$MODE" = topics ] && echo "SNS publish to a topic with one SQS subscription (raw), then receive and delete its copies."
    echo "Queues on one and two nodes: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
    echo "Messages of $SIZE bytes per second, $CONNS clients (bench/queue/qload; with two nodes"
    echo "4 clients on each), the median of $ROUNDS runs of ${SECS} s per phase. LMDB: one tarn"
    echo "on its data directory. PostgreSQL: tarn --metadata over one PostgreSQL 15 (fsync on) on"
    echo "this machine; 2 nodes = two tarn processes over it. All processes share the machine's cores."
    echo
    printf '%-8s %5s  %10s  %12s  %12s  %9s  %s\n' op batch "LMDB 1" "PG 1 node" "PG 2 nodes" \
      "2 vs 1" aim
    for batch in 1 10; do
      for op in $FIRST_OP receive delete; do
        a=${NODES[$op-$batch-lmdb]:--} b=${NODES[$op-$batch-pg1]:--} c=${NODES[$op-$batch-pg2]:--}
        printf '%-8s %5s  %10s  %12s  %12s  %9s  %s\n' "$op" "$batch" "$a" "$b" "$c" \
          "$(ratio "$c" "$b")" ">= 1.6x"
      done
    done
  } | tee "$OUT/queue-$MODE.txt"
  exit $FAILED
fi
bench_need_redis

# --- servers --------------------------------------------------------------------
: >"$OUT/queue-raw.txt"
bench_tarn_start
bench_redis_start --save '' --appendonly no
export TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK

# --- SQS on tarn ------------------------------------------------------------------
# Each configuration runs ROUNDS times on a new queue; per phase the table
# shows the round with the median rate (this machine's speed drifts).
declare -A SQS
for batch in 1 10; do
  for conns in 1 8; do
    say "tarn SQS: batch $batch, $conns client(s), send / receive / delete, ${SECS} s each, $ROUNDS rounds"
    declare -A lines=()
    for r in $(seq "$ROUNDS"); do
      if out=$("$QLOAD" --port "$PORT" --queue "bench-b$batch-c$conns-r$r" --conns "$conns" \
          --batch "$batch" --duration "$SECS" --size "$SIZE" 2>"$T/err"); then :; else
        FAILED=1
        say "qload failed: $(head -c 300 "$T/err")"
      fi
      printf '%s\n' "$out" >>"$OUT/queue-raw.txt"
      while read -r line; do
        [ -n "$line" ] && lines[$(kv "$line" op)]+="$line"$'\n'
      done <<<"$out"
    done
    for op in send receive delete; do
      SQS[$op-$batch-$conns]=$(printf '%s' "${lines[$op]:-}" |
        awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^msgs_s=/) print substr($i, 8), $0 }' |
        sort -g | awk '{ v[NR] = $0 } END { if (NR) { sub(/^[^ ]* /, "", v[int((NR + 1) / 2)]);
                                                     print v[int((NR + 1) / 2)] } }')
    done
    unset lines
  done
done

# --- Redis ------------------------------------------------------------------------
declare -A RED
MSG=$(head -c "$SIZE" /dev/zero | tr '\0' x)
MSG10=()
for _ in $(seq 10); do MSG10+=("$MSG"); done
redis_run() { # redis_run KEY CONNS COMMAND...: requests/s and p50 ms into RED[KEY]
  local key=$1 conns=$2 csv
  shift 2
  csv=$(redis-benchmark -p "$RPORT" -c "$conns" -n "$REDIS_N" --csv "$@" 2>/dev/null | tail -n 1)
  printf '%s  # redis-benchmark -c %s -n %s %s\n' "$csv" "$conns" "$REDIS_N" "$1" |
    sed 's/x\{20,\}/x.../g' >>"$OUT/queue-raw.txt"
  RED[$key]=$(printf '%s\n' "$csv" | awk -F'","' '{ gsub(/"/, "", $2); gsub(/"/, "", $5); print $2, $5 }')
}
for conns in 1 8; do
  say "redis: LPUSH / BRPOP (1 message), LPUSH / BLMPOP COUNT 10 (10), $conns client(s)"
  redis-cli -p "$RPORT" del bq >/dev/null
  redis_run "send-1-$conns" "$conns" LPUSH bq "$MSG"
  redis_run "receive-1-$conns" "$conns" BRPOP bq 1
  redis_run "send-10-$conns" "$conns" LPUSH bq "${MSG10[@]}"
  redis_run "receive-10-$conns" "$conns" BLMPOP 1 1 bq RIGHT COUNT 10
done

# --- event latency ----------------------------------------------------------------
say "event latency: $EVENTS PUTs, one every 10 ms, to a warm function"
EV=""
if grep -q "functions disabled" "$T/tarn.log"; then
  say "functions are disabled on this machine: no event latency"
else
  mkdir -p "$T/code"
  /usr/bin/python3 - "$T/code/provided.zip" "$BOOTSTRAP" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    i = zipfile.ZipInfo("bootstrap")
    i.external_attr = 0o100755 << 16
    i.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(i, open(sys.argv[2], "rb").read())
EOF
  if EV=$("$FNLOAD" event --port "$PORT" --zip "$T/code/provided.zip" --handler stamp \
      --function stamp --prefix events --count "$EVENTS" --duration 10 2>"$T/err"); then :; else
    FAILED=1
    say "fnload event failed: $(head -c 300 "$T/err")"
  fi
  printf '%s\n' "$EV" >>"$OUT/queue-raw.txt"
fi

# --- table ------------------------------------------------------------------------
{
  echo "Queues (issue 4): $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
  echo "Messages of $SIZE bytes per second (higher is better). tarn: SQS JSON protocol over"
  echo "HTTP, durable (a message is on disk before its 200), client bench/queue/qload (C,"
  echo "keep-alive, SigV4). Redis: in memory, no persistence, redis-benchmark; receive ="
  echo "BRPOP (batch: BLMPOP COUNT 10), which also removes, so it has no delete row."
  echo "ratio = tarn / Redis; ElasticMQ = tarn / 2,600 msgs/s (published, not run)."
  echo "tarn: the median of $ROUNDS runs of ${SECS} s per phase; p50/p99: latency of one request."
  echo
  printf '%-8s %5s %5s  %11s %8s %8s  %11s %8s  %8s  %9s  %s\n' op batch conns "tarn msg/s" \
    "p50 ms" "p99 ms" "redis msg/s" "p50 ms" ratio ElasticMQ aim
  for batch in 1 10; do
    for conns in 1 8; do
      for op in send receive delete; do
        l=${SQS[$op-$batch-$conns]:-}
        m=$(kv "$l" msgs_s)
        r=${RED[$op-$batch-$conns]:-}
        rm=- rp=-
        if [ -n "$r" ]; then
          rm=$(awk -v a="${r% *}" -v b="$batch" 'BEGIN { printf "%.1f", a * b }')
          rp=${r#* }
        fi
        aim=""
        [ "$batch" = 10 ] && [ "$op" = send ] && aim=">= 20,000 durable"
        printf '%-8s %5s %5s  %11s %8s %8s  %11s %8s  %8s  %9s  %s\n' "$op" "$batch" "$conns" \
          "$m" "$(kv "$l" p50_ms)" "$(kv "$l" p99_ms)" "$rm" "$rp" "$(ratio "$m" "$rm")" \
          "$(ratio "$m" 2600)" "$aim"
      done
    done
  done
  echo
  echo "Event latency, S3 PUT -> the function's start (bucket notification to a warm"
  echo "provided function; $(kv "$EV" seen)/$(kv "$EV" n) events seen; ms, lower is better):"
  printf '  %-44s %8s %8s  %s\n' "" p50 p99 aim
  printf '  %-44s %8s %8s  %s\n' "PUT sent -> function start" "$(kv "$EV" put_to_fn_p50_ms)" \
    "$(kv "$EV" put_to_fn_p99_ms)" "p50 < 5 ms"
  printf '  %-44s %8s %8s\n' "PUT acknowledged (200) -> function start" \
    "$(kv "$EV" ack_to_fn_p50_ms)" "$(kv "$EV" ack_to_fn_p99_ms)"
  printf '  %-44s %8s %8s\n' "the PUT itself (durable, fsync)" "$(kv "$EV" put_p50_ms)" \
    "$(kv "$EV" put_p99_ms)"
} | tee "$OUT/queue.txt"
exit $FAILED
