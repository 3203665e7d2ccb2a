#!/usr/bin/env bash
# bench/objects_bench.sh -- what the object backend costs: PUT and GET
# throughput through a front tarn whose object bytes live in a backend tarn
# (tarn server --objects s3://blobs/front, store/remote.c) against the same
# backend spoken to directly, in the same run, alternating, with the same
# client (bench/s3load, one keep-alive connection per client).
#
# Environment: TARN (build/tarn), BUILD (build), S3LOAD (BUILD/bench/s3load),
# OBJ_SIZES ("64M 1M") object sizes, OBJ_CONNS ("1 4") connection counts,
# OBJ_SECS (4) seconds per run, OBJ_ROUNDS (3) runs per cell (the median is
# shown). Output: bench/out/objects.txt (the table), bench/out/objects-raw.txt.
# With OBJ_CPU=1, where the CPU goes as well: CPU seconds per GiB moved of
# the backend, the front and the client (s3load) in each run, medians, in
# bench/out/objects-cpu.txt (the direct runs: the front's column is ~0).
set -euo pipefail
BENCH_NAME=objects
source "$(dirname "$0")/lib.sh"
SIZES=${OBJ_SIZES:-64M 1M}
CONNS=${OBJ_CONNS:-1 4}
SECS=${OBJ_SECS:-4}
ROUNDS=${OBJ_ROUNDS:-3}
if [ -z "${S3LOAD:-}" ]; then
  ninja -C "$BUILD" bench/s3load >/dev/null
  S3LOAD=$BUILD/bench/s3load
fi
: >"$OUT/objects-raw.txt"

bench_tarn_start                  # the backend
BPORT=$PORT
"$S3LOAD" mb --port "$BPORT" --access-key $AK --secret-key $SK --bucket blobs >/dev/null
"$S3LOAD" mb --port "$BPORT" --access-key $AK --secret-key $SK --bucket direct >/dev/null
FPORT=$(bench_free_port)          # the front
TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK TARN_OBJECTS=s3://blobs/front \
  TARN_OBJECTS_ENDPOINT=http://127.0.0.1:$BPORT TARN_OBJECTS_ACCESS_KEY=$AK \
  TARN_OBJECTS_SECRET_KEY=$SK "$TARN" server --data "$T/front" --listen "127.0.0.1:$FPORT" \
  >>"$T/front.log" 2>&1 &
FPID=$!
bench_track $FPID
BPID=$PID
bench_wait_up "http://127.0.0.1:$FPORT/_tarn/health"
"$S3LOAD" mb --port "$FPORT" --access-key $AK --secret-key $SK --bucket front >/dev/null

CPU=${OBJ_CPU:-0}
TCK=$(getconf CLK_TCK)
: >"$OUT/objects-cpu-raw.txt"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# one s3load run against a port: MiB/s (with OBJ_CPU=1, a line of CPU
# seconds per GiB in objects-cpu-raw.txt)
run() {
  local port=$1 line b0 f0 b1 f1 cl
  shift
  b0=$(cpu_ticks $BPID); f0=$(cpu_ticks $FPID)
  line=$( { /usr/bin/time -f "client_cpu=%U+%S" "$S3LOAD" "$@" --port "$port" \
            --access-key $AK --secret-key $SK --duration "$SECS"; } 2>&1 | tr '\n' ' ')
  b1=$(cpu_ticks $BPID); f1=$(cpu_ticks $FPID)
  echo "$line port=$port $*" >>"$OUT/objects-raw.txt"
  if [ "$CPU" = 1 ]; then
    cl=$(kv "$line" client_cpu)
    awk -v ops="$(kv "$line" ops)" -v size="$size" -v b=$((b1 - b0)) -v f=$((f1 - f0)) \
        -v cl="$cl" -v tck="$TCK" -v cell="$op $size c=$c port=$port" 'BEGIN {
      m = size + 0; if (size ~ /M$/) m = m / 1024; else if (size ~ /K$/) m = m / 1048576
      split(cl, u, "+"); gib = ops * m
      if (gib > 0) printf "%s backend=%.2f front=%.2f client=%.2f\n", cell, b / tck / gib,
                          f / tck / gib, (u[1] + u[2]) / gib }' >>"$OUT/objects-cpu-raw.txt"
  fi
  kv "$line" mib_s
}

maxc=$(printf '%s\n' $CONNS | sort -g | tail -1)
for size in $SIZES; do   # every key a GET may ask for exists before the first run
  "$S3LOAD" put --port "$BPORT" --access-key $AK --secret-key $SK --bucket direct --size "$size" \
    --conns "$maxc" --keys 4 --count 4 --key-prefix "o$size-" >/dev/null
  "$S3LOAD" put --port "$FPORT" --access-key $AK --secret-key $SK --bucket front --size "$size" \
    --conns "$maxc" --keys 4 --count 4 --key-prefix "o$size-" >/dev/null
done

{
  printf '%-18s %14s %14s %8s\n' metric "direct MiB/s" "via front" "ratio"
  for size in $SIZES; do
    for c in $CONNS; do
      for op in put get; do
        d=(); f=()
        for _ in $(seq "$ROUNDS"); do   # alternate, so load drifts hit both alike
          args=("$op" --size "$size" --conns "$c" --keys 4 --key-prefix "o$size-")
          [ "$op" = get ] && args+=(--verify)
          d+=("$(run "$BPORT" "${args[@]}" --bucket direct)")
          f+=("$(run "$FPORT" "${args[@]}" --bucket front)")
        done
        dm=$(printf '%s\n' "${d[@]}" | median)
        fm=$(printf '%s\n' "${f[@]}" | median)
        printf '%-18s %14s %14s %8s\n' "$op $size c=$c" "$dm" "$fm" "$(ratio "$fm" "$dm")"
      done
    done
  done
} | tee "$OUT/objects.txt"

if [ "$CPU" = 1 ]; then   # medians of the CPU seconds per GiB
  {
    printf '%-18s %-6s %8s %8s %8s\n' "CPU s/GiB" path backend front client
    for size in $SIZES; do
      for c in $CONNS; do
        for op in put get; do
          for p in "$BPORT direct" "$FPORT front"; do
            set -- $p
            col() { grep "^$op $size c=$c port=$1 " "$OUT/objects-cpu-raw.txt" |
                      sed -n "s/.* $2=\([0-9.]*\).*/\1/p" | median; }
            printf '%-18s %-6s %8s %8s %8s\n' "$op $size c=$c" "$2" "$(col $1 backend)" \
              "$(col $1 front)" "$(col $1 client)"
          done
        done
      done
    done
  } | tee "$OUT/objects-cpu.txt"
fi
