#!/usr/bin/env bash
# bench/run.sh -- `make bench`: tarn's S3 throughput and small-object rates as
# ratios against peers run on this machine, in this run (DESIGN.md §9); then
# the sections of bench/fn_bench.sh (functions), bench/queue_bench.sh
# (queues, event latency), bench/sql_bench.sh (SQL against DuckDB) and
# bench/flow_bench.sh (workflow transitions), bench/kv_bench.sh (DynamoDB
# against moto), bench/athena_bench.sh (Athena API round trip against /_tarn/sql), each with the same tarn binary and build folder. BENCH_ONLY
# picks sections: BENCH_ONLY=s3,fn,queue,sql,stream,conv,flow,kv,athena,apigw,apigw_http,crawler,rdb,sse,objects,store_pg (the default) or any
# part of it; bench/apigw_bench.sh times the HTTP API front door against Invoke,
# bench/apigw_http_bench.sh an HTTP_PROXY route against nginx's proxy_pass,
# bench/sse_bench.sh encrypted (SSE-S3) against plain PUT and GET, bench/objects_bench.sh
# PUT and GET through a tarn whose object bytes live in another tarn against that one directly,
# bench/store_pg_bench.sh a node whose object index is in PostgreSQL against one with LMDB.
#
# Peers: nginx serving the same bytes as static files (GET only: the ceiling
# for an HTTP server here) and s3rver (an S3 server in Node.js). Each server
# gets a free port on 127.0.0.1 and a temporary directory; everything started
# here is stopped on exit. Each measurement runs for tarn and then its peers
# back to back, with the same client (bench/s3load, one keep-alive connection
# per thread) and the same payload.
#
# Environment: BUILD (build), BENCH_SECS (1) seconds per run, BENCH_ROUNDS
# (5) runs per server and metric (the median is shown),
# BENCH_CONNS ("1 8") the connection counts; S3LOAD and TARN, prebuilt
# binaries to use instead of building them. The table also goes to
# bench/out/results.txt, every s3load line to bench/out/raw.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
SECS=${BENCH_SECS:-1}
ROUNDS=${BENCH_ROUNDS:-5}
CONNS=${BENCH_CONNS:-"1 8"}
AK=benchaccesskey
SK=benchsecretkey0123456789
OUT=$ROOT/bench/out
mkdir -p "$OUT"
: > "$OUT/raw.txt"

say() { printf 'bench: %s\n' "$*" >&2; }

ONLY=",${BENCH_ONLY:-s3,fn,queue,sql,stream,conv,flow,kv,athena,apigw,apigw_http,crawler,rdb,sse,objects,store_pg},"
want() { [[ $ONLY == *",$1,"* ]]; }
# The sections after S3, each a script of its own that starts its own
# servers; 1 when one of them failed.
others() {
  local s rc=0
  for s in fn queue sql stream conv flow kv athena apigw apigw_http crawler rdb sse objects store_pg; do
    want "$s" || continue
    echo
    TARN=$TARN BUILD=$BUILD "bench/${s}_bench.sh" || { say "the $s section failed"; rc=1; }
  done
  return $rc
}

# --- what is missing ----------------------------------------------------------
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || [ ! -x /usr/sbin/nginx ] || NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ] && want s3; then
  say "installing nginx"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null
  NGINX=/usr/sbin/nginx
fi
if [ ! -x bench/node_modules/.bin/s3rver ] && want s3; then
  say "installing s3rver into bench/node_modules"
  (cd bench && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# --- build --------------------------------------------------------------------
[ -n "${S3LOAD:-}" ] && [ -n "${TARN:-}" ] || [ -f "$BUILD/build.ninja" ] ||
  meson setup "$BUILD" --buildtype=release >/dev/null
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
if [ -z "${S3LOAD:-}" ] && want s3; then
  ninja -C "$BUILD" bench/s3load >/dev/null
  S3LOAD=$BUILD/bench/s3load
fi
TARN_OK=1
if [ -z "${TARN:-}" ]; then
  TARN=$BUILD/tarn
  ninja -C "$BUILD" tarn src/sandbox/libtarn-zygote.so >"$OUT/build.log" 2>&1 ||
    { say "tarn does not build (see bench/out/build.log); peers only"; TARN_OK=0; }
fi
if ! want s3; then
  [ $TARN_OK = 1 ] || exit 1
  others
  exit
fi

# --- servers ------------------------------------------------------------------
T=$(mktemp -d /tmp/tarn-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Retries a command for up to 10 s; 0 when it succeeded once.
retry() {
  local i
  for i in $(seq 100); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

TP=$("$S3LOAD" freeport)
mkdir -p "$T/tarn"
if [ $TARN_OK = 1 ]; then
  TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK "$TARN" server --data "$T/tarn" \
    --listen "127.0.0.1:$TP" >"$T/tarn.log" 2>&1 &
  PIDS+=($!)
fi
if [ $TARN_OK = 1 ] && ! retry "$S3LOAD" get --no-sign --port "$TP" --path /_tarn/health --count 1 ||
   ! retry "$S3LOAD" mb --port "$TP" --access-key $AK --secret-key $SK; then
  say "tarn does not answer on 127.0.0.1:$TP (health or PUT bucket); peers only"
  tail -n 5 "$T/tarn.log" >&2 || true
  TARN_OK=0
fi

SP=$("$S3LOAD" freeport)
mkdir -p "$T/s3rver"
# s3rver's ListObjectsV2 makes continuation tokens with single DES, which
# OpenSSL 3 keeps in its legacy provider.
NODE_OPTIONS=--openssl-legacy-provider bench/node_modules/.bin/s3rver -d "$T/s3rver" -a 127.0.0.1 -p "$SP" --silent \
  >"$T/s3rver.log" 2>&1 &
PIDS+=($!)
retry "$S3LOAD" mb --port "$SP" --access-key S3RVER --secret-key S3RVER ||
  { say "s3rver did not start"; cat "$T/s3rver.log" >&2; exit 1; }

NP=$("$S3LOAD" freeport)
mkdir -p "$T/nginx/www/bench/bench" "$T/nginx/logs"
user=""
[ "$(id -u)" != 0 ] || user="user root;"
cat >"$T/nginx/nginx.conf" <<EOF
$user
worker_processes auto;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  default_type application/octet-stream;
  client_body_temp_path $T/nginx/body;
  proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fastcgi;
  uwsgi_temp_path $T/nginx/uwsgi;
  scgi_temp_path $T/nginx/scgi;
  server {
    listen 127.0.0.1:$NP;
    root $T/nginx/www;
  }
}
EOF
"$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx/logs/error.log" \
  >"$T/nginx/out.log" 2>&1 &
PIDS+=($!)

# --- running s3load -----------------------------------------------------------
# load SERVER OP ARGS...: runs s3load against SERVER (tarn|s3rver|nginx) and
# prints its result line ("" when it failed; the error goes to raw.txt).
load() {
  local srv=$1
  shift
  local port auth=()
  case $srv in
    tarn) port=$TP; auth=(--access-key $AK --secret-key $SK) ;;
    s3rver) port=$SP; auth=(--access-key S3RVER --secret-key S3RVER) ;;
    nginx) port=$NP; auth=(--no-sign) ;;
  esac
  local line rc=0
  line=$("$S3LOAD" "$@" --port "$port" "${auth[@]}" 2>"$T/err") || rc=$?
  printf '%-6s %s %s\n' "$srv" "$line" "$(head -c 300 "$T/err" | tr '\n' ' ')" >>"$OUT/raw.txt"
  if [ $rc != 0 ]; then
    say "$srv: s3load $*: $(head -c 300 "$T/err" | tr '\n' ' ')"
    return 0
  fi
  printf '%s\n' "$line"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# Seeds the objects the GET, HEAD and LIST measurements read, on one server.
seed() {
  local srv=$1
  load "$srv" put --size 1M --conns 8 --count 4 --key-prefix bench/g1m- >/dev/null
  load "$srv" put --size 64M --count 1 --key bench/g64m >/dev/null
  load "$srv" put --size 4K --conns 8 --count 100 --key-prefix bench/g4k- >/dev/null
  load "$srv" put --size 4K --conns 8 --count 125 --key-prefix list/k- >/dev/null
}

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
say "seeding objects"
[ $TARN_OK = 0 ] || seed tarn
seed s3rver
w=$T/nginx/www/bench
"$S3LOAD" payload --size 1M >"$T/p1m"
"$S3LOAD" payload --size 4K >"$T/p4k"
"$S3LOAD" payload --size 64M >"$w/bench/g64m"
for t in 0 1 2 3 4 5 6 7; do
  for i in 0 1 2 3; do cp "$T/p1m" "$w/bench/g1m-$t-$i"; done
  for i in $(seq 0 99); do cp "$T/p4k" "$w/bench/g4k-$t-$i"; done
done
retry "$S3LOAD" get --port "$NP" --no-sign --key bench/g4k-0-0 --count 1 ||
  { say "nginx did not start"; cat "$T/nginx/logs/error.log" >&2; exit 1; }
# Each server must serve the bytes it was given.
[ $TARN_OK = 0 ] || load tarn get --size 64M --key bench/g64m --count 1 --verify >/dev/null
load s3rver get --size 1M --key bench/g1m-0-0 --count 1 --verify >/dev/null
load nginx get --size 64M --key bench/g64m --count 1 --verify >/dev/null

# --- measurements -------------------------------------------------------------
# This machine's speed drifts from second to second (it is shared), so each
# metric runs in ROUNDS short rounds, tarn then its peers in odd rounds and
# the other way round in even ones, and the table shows each server's
# median. Dirty pages are written back (sync) before every run, so one run's
# writes do not slow the next one's fsyncs.
ROWS=()
median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
# measure NAME UNIT AIM PEERS -- S3LOAD-ARGS: one metric, tarn and each peer.
measure() {
  local name=$1 unit=$2 aim=$3 peers=$4
  shift 5
  local key=ops_s
  [ "$unit" != MiB/s ] || key=mib_s
  local servers=$peers reversed="" r s line order
  [ $TARN_OK = 0 ] || servers="tarn $peers"
  for s in $servers; do reversed="$s $reversed"; done
  declare -A val=() p99=()
  for r in $(seq "$ROUNDS"); do
    order=$servers
    [ $((r % 2)) = 1 ] || order=$reversed
    for s in $order; do
      sync
      line=$(load "$s" "$@")
      val[$s]+="$(field $key "$line") "
      p99[$s]+="$(field p99_ms "$line") "
    done
  done
  local tv="-" tp="-"
  if [ $TARN_OK = 1 ]; then
    tv=$(median <<<"${val[tarn]}")
    tp=$(median <<<"${p99[tarn]}")
    [ -n "$tv" ] || tv=error
  fi
  local p
  for p in $peers; do
    local pv pp ratio="-" a="-"
    pv=$(median <<<"${val[$p]}")
    pp=$(median <<<"${p99[$p]}")
    [ -n "$pv" ] || pv=error
    if [[ $tv =~ ^[0-9.]+$ && $pv =~ ^[0-9.]+$ ]]; then
      ratio=$(awk -v a="$tv" -v b="$pv" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
    fi
    [ "$p" != nginx ] || a=">= 0.8x"
    [ "$p" != s3rver ] || [ "$aim" != ops ] || a=">= 10x"
    ROWS+=("$(printf '%-22s %-6s %10s %-7s %10s %8s %8s %9s %9s' \
      "$name" "$unit" "$tv" "$p" "$pv" "$ratio" "$a" "${tp:--}" "${pp:--}")")
    printf '%s\n' "${ROWS[-1]}" >&2
  done
}

say "measuring: $ROUNDS rounds of ${SECS}s per server and metric"
for c in $CONNS; do
  d=(--duration "$SECS" --conns "$c")
  measure "PUT 1 MiB      c$c" MiB/s none s3rver -- put --size 1M --keys 4 --key-prefix bench/p1m- "${d[@]}"
  measure "PUT 64 MiB     c$c" MiB/s none s3rver -- put --size 64M --keys 1 --key-prefix bench/p64m- "${d[@]}"
  measure "GET 1 MiB      c$c" MiB/s none "nginx s3rver" -- get --size 1M --keys 4 --key-prefix bench/g1m- "${d[@]}"
  measure "GET 64 MiB     c$c" MiB/s none "nginx s3rver" -- get --size 64M --key bench/g64m "${d[@]}"
  measure "PUT 4 KiB      c$c" ops/s ops s3rver -- put --size 4K --key-prefix bench/p4k- "${d[@]}"
  measure "GET 4 KiB      c$c" ops/s ops "nginx s3rver" -- get --size 4K --keys 100 --key-prefix bench/g4k- "${d[@]}"
  measure "HEAD 4 KiB     c$c" ops/s ops s3rver -- head --keys 100 --key-prefix bench/g4k- "${d[@]}"
  measure "LIST 100 of 1k c$c" ops/s ops s3rver -- list --prefix list/ --max-keys 100 "${d[@]}"
done

# --- the table ----------------------------------------------------------------
{
  echo "tarn bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
    "$(uname -sr), median of $ROUNDS runs of ${SECS}s"
  echo "load average (1 min) at the start $LOAD_START, at the end $(cut -d' ' -f1 /proc/loadavg)" \
    "(above ~1, something else was running: figures are less reliable)"
  [ $TARN_OK = 1 ] || echo "tarn did not answer: peer figures only"
  printf '%-22s %-6s %10s %-7s %10s %8s %8s %9s %9s\n' \
    metric unit tarn peer "peer val" ratio aim "tarn p99" "peer p99"
  printf '%s\n' "${ROWS[@]}"
  echo "ratio = tarn / peer (higher is better); p99 latency in ms; cN = N connections"
} | tee "$OUT/results.txt"

# --- the other sections ---------------------------------------------------------
cleanup   # the S3 servers stop before the next section starts its own
PIDS=()
[ $TARN_OK = 1 ] || { say "no tarn binary: the fn, queue and sql sections are skipped"; exit 0; }
others
