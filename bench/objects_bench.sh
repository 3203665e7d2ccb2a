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
bench_track $!
bench_wait_up "http://127.0.0.1:$FPORT/_tarn/health"
"$S3LOAD" mb --port "$FPORT" --access-key $AK --secret-key $SK --bucket front >/dev/null

# one s3load run against a port: MiB/s
run() {
  local port=$1 line
  shift
  line=$("$S3LOAD" "$@" --port "$port" --access-key $AK --secret-key $SK --duration "$SECS")
  echo "$line port=$port $*" >>"$OUT/objects-raw.txt"
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
