# bench/lib.sh -- what every bench/*_bench.sh shares, sourced after
# `set -euo pipefail` with BENCH_NAME set: where things are, the benchmark
# credentials, a scratch directory, starting tarn (and peers) on free ports,
# and stopping all of it when the script exits.
#
# After sourcing:
#   ROOT, BUILD (absolute), TARN, OUT (created), AK, SK, say MESSAGE...
#   bench_tmp            makes the scratch directory T (removed at exit)
#   bench_free_port      prints a free TCP port on 127.0.0.1
#   bench_track PID      stops PID at exit (SIGTERM, then waits for it)
#   bench_wait_up URL    waits up to 10 s for URL to answer (any status)
#   bench_tarn_start [ARG...]
#                        starts `tarn server` on T/data and a free port with
#                        the benchmark credentials (ARG... added to its
#                        command line), waits for /_tarn/health; sets PORT,
#                        PID, ENDPOINT. Its log is T/tarn.log (appended
#                        to: a script may stop and start tarn again).
#   bench_tarn_stop      stops it (SIGTERM) and waits; PID is empty after.
#   bench_need_redis     installs Debian's redis-server when missing
#   bench_redis_start [ARG...]
#                        starts redis-server on a free port (ARG... added),
#                        waits for PING; sets RPORT. Its log is T/redis.log.
#   kv LINE KEY          the value of KEY=... in a load generator's line, or "-"
#   ratio A B            A/B with 2 decimals and an x, or "-"
#   median               the median of the numbers on stdin, or "-"
#
# Invariants:
#   (1) Everything started through bench_track or bench_tarn_start is
#       stopped, and T removed, however the script ends (exit, error, ^C).
#   (2) A script may add its own steps to the exit with bench_at_exit CMD;
#       they run before the processes are stopped.

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
TARN=${TARN:-$BUILD/tarn}
OUT=$ROOT/bench/out
AK=benchaccesskey
SK=benchsecretkey0123456789
mkdir -p "$OUT"

say() { printf 'bench %s: %s\n' "$BENCH_NAME" "$*" >&2; }

BENCH_PIDS=()
BENCH_EXIT=()
T=""

bench_at_exit() { BENCH_EXIT+=("$*"); }

bench_cleanup() {
  local c p
  for c in "${BENCH_EXIT[@]}"; do eval "$c" || true; done
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${BENCH_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -z "$T" ] || rm -rf "$T"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_tmp() { T=$(mktemp -d "/tmp/tarn-$BENCH_NAME-bench.XXXXXX"); }

bench_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bench_track() { BENCH_PIDS+=("$1"); }

bench_wait_up() {
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  say "nothing answers at $1"
  return 1
}

bench_tarn_start() {
  [ -x "$TARN" ] || { say "no tarn binary at '$TARN' (build it first, or set TARN)"; exit 1; }
  [ -n "$T" ] || bench_tmp
  PORT=$(bench_free_port)
  ENDPOINT=http://127.0.0.1:$PORT
  TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK "$TARN" server --data "$T/data" \
    --listen "127.0.0.1:$PORT" "$@" >>"$T/tarn.log" 2>&1 &
  PID=$!
  bench_track "$PID"
  for _ in $(seq 100); do
    curl -sf "$ENDPOINT/_tarn/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sf "$ENDPOINT/_tarn/health" >/dev/null 2>&1 ||
    { say "tarn does not answer on 127.0.0.1:$PORT"; tail -n 5 "$T/tarn.log" >&2; exit 1; }
  [ -n "${BENCH_QUIET:-}" ] || say "tarn on port $PORT, $("$TARN" version)"
}

# bench_node NAME PREFIX [ENV...]: a tarn node whose bytes are in the backend
# tarn on port $BPORT (bucket blobs, under PREFIX), data in $T/NAME, with
# ENV added; sets NODE_PORT. Call it in the script's shell, not a subshell:
# the node is tracked and stopped at exit.
bench_node() {
  local name=$1 prefix=$2 port
  shift 2
  port=$(bench_free_port)
  env "$@" TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK TARN_OBJECTS=s3://blobs/$prefix \
    TARN_OBJECTS_ENDPOINT=http://127.0.0.1:$BPORT TARN_OBJECTS_ACCESS_KEY=$AK \
    TARN_OBJECTS_SECRET_KEY=$SK "$TARN" server --data "$T/$name" --listen "127.0.0.1:$port" \
    >>"$T/$name.log" 2>&1 &
  bench_track $!
  bench_wait_up "http://127.0.0.1:$port/_tarn/health"
  NODE_PORT=$port
}

bench_tarn_stop() {
  [ -n "${PID:-}" ] || return 0
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  local p kept=()
  for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$PID" ] || kept+=("$p"); done
  BENCH_PIDS=("${kept[@]}")
  PID=""
}

# bench_pg_start: Debian's PostgreSQL 15 on a free port under $T/pg (as the
# postgres user when run as root: it refuses root), with a database `tarn`;
# sets PGURL. Stopped at exit with the rest.
bench_pg_start() {
  local bin=${PG_BIN:-/usr/lib/postgresql/15/bin} dir port user as=()
  [ -x "$bin/postgres" ] || { say "no PostgreSQL 15 at $bin (apt-get install postgresql)"; exit 1; }
  [ -n "$T" ] || bench_tmp
  dir=$T/pg
  mkdir -p "$dir"
  user=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir"
    chmod o+x "$T"
    as=(runuser -u postgres --)
    user=postgres
  fi
  "${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U "$user" -E UTF8 >"$dir/initdb.log" 2>&1 ||
    { say "initdb failed: $(tail -n 3 "$dir/initdb.log")"; exit 1; }
  port=$(bench_free_port)
  "${as[@]}" "$bin/postgres" -D "$dir/data" -p "$port" -h 127.0.0.1 -k "$dir" \
    -c fsync=on -c max_connections=200 >>"$dir/postgres.log" 2>&1 &
  bench_track $!
  for _ in $(seq 200); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    sleep 0.1
  done
  "${as[@]}" /usr/bin/psql -q -h 127.0.0.1 -p "$port" -U "$user" -d postgres \
    -c "CREATE DATABASE tarn" >/dev/null || { say "PostgreSQL did not start"; exit 1; }
  PGURL=postgresql://$user@127.0.0.1:$port/tarn
}

bench_need_redis() {
  command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null && return 0
  say "installing redis-server (Debian)"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
}

bench_redis_start() {
  [ -n "$T" ] || bench_tmp
  RPORT=$(bench_free_port)
  redis-server --port "$RPORT" --bind 127.0.0.1 --daemonize no --loglevel warning "$@" \
    >"$T/redis.log" 2>&1 &
  bench_track $!
  for _ in $(seq 100); do
    redis-cli -p "$RPORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  say "redis-server did not start"
  cat "$T/redis.log" >&2
  exit 1
}

kv() {
  local v
  v=$(printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p")
  printf '%s' "${v:--}"
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-";
                                   else printf "%.2fx", a / b }'
}

median() { sort -g | awk '{v[NR]=$1} END { if (NR) print v[int((NR+1)/2)]; else print "-" }'; }
