#!/usr/bin/env bash
# bench/store_pg_bench.sh -- what the shared index costs: PUT, GET and LIST
# rates of a node whose object index is in PostgreSQL (tarn server
# --metadata, store/pg_index.c) against a node whose index is LMDB, both
# with their bytes in the same backend tarn (--objects), and two PostgreSQL
# nodes loaded at once against one. Same client (bench/s3load), same run,
# alternating.
#
# Environment: TARN (build/tarn), BUILD (build), S3LOAD (BUILD/bench/s3load),
# PG_BIN (/usr/lib/postgresql/15/bin), SPG_SECS (4) seconds per run,
# SPG_ROUNDS (3) runs per cell (the median is shown), SPG_CONNS (4),
# SPG_OPS ("put 1K,put 1M,get 1K,list") the rows, SPG_VERSIONING (unset:
# off; Enabled) the versioning of the buckets measured (set with the AWS CLI).
# Output: bench/out/store_pg.txt, bench/out/store_pg-raw.txt.
set -euo pipefail
BENCH_NAME=store_pg
source "$(dirname "$0")/lib.sh"
SECS=${SPG_SECS:-4}
ROUNDS=${SPG_ROUNDS:-3}
CONNS=${SPG_CONNS:-4}
if [ -z "${S3LOAD:-}" ]; then
  ninja -C "$BUILD" bench/s3load >/dev/null
  S3LOAD=$BUILD/bench/s3load
fi
: >"$OUT/store_pg-raw.txt"
bench_tmp

bench_pg_start                    # sets PGURL

bench_tarn_start                  # the backend
BPORT=$PORT
"$S3LOAD" mb --port "$BPORT" --access-key $AK --secret-key $SK --bucket blobs >/dev/null

bench_node lmdb shared
LPORT=$NODE_PORT
bench_node pg-a shared TARN_METADATA="$PGURL"
APORT=$NODE_PORT
bench_node pg-b shared TARN_METADATA="$PGURL"
BPORT2=$NODE_PORT
"$S3LOAD" mb --port "$LPORT" --access-key $AK --secret-key $SK --bucket local >/dev/null
"$S3LOAD" mb --port "$APORT" --access-key $AK --secret-key $SK --bucket shared >/dev/null
if [ -n "${SPG_VERSIONING:-}" ]; then
  for p in "$LPORT:local" "$APORT:shared"; do
    AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=us-east-1 \
      /usr/bin/aws --endpoint-url "http://127.0.0.1:${p%%:*}" s3api put-bucket-versioning \
      --bucket "${p#*:}" --versioning-configuration "Status=$SPG_VERSIONING"
  done
fi
for p in "$LPORT:local" "$APORT:shared"; do   # every key a GET or LIST asks for exists
  "$S3LOAD" put --port "${p%%:*}" --access-key $AK --secret-key $SK --bucket "${p#*:}" \
    --size 1K --conns "$CONNS" --count 50 --key-prefix "list/o" >/dev/null
done

# one s3load run: requests per second
run() {
  local port=$1 line
  shift
  line=$("$S3LOAD" "$@" --port "$port" --access-key $AK --secret-key $SK --duration "$SECS")
  echo "$line port=$port $*" >>"$OUT/store_pg-raw.txt"
  kv "$line" ops_s
}

# two runs at once, one per PostgreSQL node: the sum of their rates
run2() {
  local a b
  run "$APORT" "$@" >"$T/r2a" &
  local pa=$!
  run "$BPORT2" "$@" >"$T/r2b"
  wait $pa
  a=$(cat "$T/r2a")
  b=$(cat "$T/r2b")
  awk -v a="$a" -v b="$b" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.0f\n", a + b }'
}

{
  printf '%-24s %12s %12s %8s %14s %8s\n' metric "LMDB req/s" "PG req/s" "ratio" "2 PG nodes" "vs 1"
  IFS=, read -r -a ops <<<"${SPG_OPS:-put 1K,put 1M,get 1K,list}"
  for op in "${ops[@]}"; do
    set -- $op
    args=("$1" --conns "$CONNS")
    case $1 in
      put) args+=(--size "$2" --keys 64 --key-prefix "p$2-") ;;
      get) args+=(--size 1K --keys 50 --key-prefix "list/o") ;;
      list) args+=(--prefix list/ --max-keys 100) ;;
    esac
    l=(); p=(); two=()
    for _ in $(seq "$ROUNDS"); do
      l+=("$(run "$LPORT" "${args[@]}" --bucket local)")
      p+=("$(run "$APORT" "${args[@]}" --bucket shared)")
      two+=("$(run2 "${args[@]}" --bucket shared)")
    done
    lm=$(printf '%s\n' "${l[@]}" | median)
    pm=$(printf '%s\n' "${p[@]}" | median)
    tm=$(printf '%s\n' "${two[@]}" | median)
    printf '%-24s %12s %12s %8s %14s %8s\n' "$op c=$CONNS" "$lm" "$pm" "$(ratio "$pm" "$lm")" \
      "$tm" "$(ratio "$tm" "$pm")"
  done
} | tee "$OUT/store_pg.txt"
