#!/usr/bin/env bash
# bench/sse_bench.sh -- what server-side encryption costs on large objects:
# PUT and GET throughput of one tarn into a plain bucket and into a bucket
# whose default encryption is SSE-S3 (chunked AES-256-GCM, store/crypt.c),
# in the same run, alternating, with the same client (bench/s3load, one
# keep-alive connection per client).
#
# Environment: TARN (build/tarn), BUILD (build), S3LOAD (BUILD/bench/s3load),
# SSE_SIZES ("64M 1M") object sizes, SSE_CONNS ("1 4") connection counts,
# SSE_SECS (4) seconds per run, SSE_ROUNDS (3) runs per cell (the median is
# shown). Output: bench/out/sse.txt (the table), bench/out/sse-raw.txt.
set -euo pipefail
BENCH_NAME=sse
source "$(dirname "$0")/lib.sh"
SIZES=${SSE_SIZES:-64M 1M}
CONNS=${SSE_CONNS:-1 4}
SECS=${SSE_SECS:-4}
ROUNDS=${SSE_ROUNDS:-3}
if [ -z "${S3LOAD:-}" ]; then
  ninja -C "$BUILD" bench/s3load >/dev/null
  S3LOAD=$BUILD/bench/s3load
fi
: >"$OUT/sse-raw.txt"

bench_tarn_start
"$S3LOAD" mb --port "$PORT" --access-key $AK --secret-key $SK --bucket plain >/dev/null
"$S3LOAD" mb --port "$PORT" --access-key $AK --secret-key $SK --bucket sealed >/dev/null
AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=us-east-1 \
  /usr/bin/aws --endpoint-url "$ENDPOINT" s3api put-bucket-encryption --bucket sealed \
  --server-side-encryption-configuration \
  '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'

# one s3load run: MiB/s
run() {
  local line
  line=$("$S3LOAD" "$@" --port "$PORT" --access-key $AK --secret-key $SK --duration "$SECS")
  echo "$line $*" >>"$OUT/sse-raw.txt"
  kv "$line" mib_s
}

# every key a GET may ask for exists before the first run
maxc=$(printf '%s\n' $CONNS | sort -g | tail -1)
for size in $SIZES; do
  for b in plain sealed; do
    "$S3LOAD" put --port "$PORT" --access-key $AK --secret-key $SK --bucket "$b" --size "$size" \
      --conns "$maxc" --keys 4 --count 4 --key-prefix "o$size-" >/dev/null
  done
done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

{
  printf '%-18s %12s %12s %8s\n' metric "plain MiB/s" "SSE MiB/s" "SSE/plain"
  for size in $SIZES; do
    for c in $CONNS; do
      for op in put get; do
        p=(); s=()
        for _ in $(seq "$ROUNDS"); do   # alternate, so load drifts hit both alike
          for b in plain sealed; do
            args=("$op" --bucket "$b" --size "$size" --conns "$c" --keys 4
                  --key-prefix "o$size-")
            [ "$op" = get ] && args+=(--verify)
            v=$(run "${args[@]}")
            if [ $b = plain ]; then p+=("$v"); else s+=("$v"); fi
          done
        done
        pm=$(printf '%s\n' "${p[@]}" | median)
        sm=$(printf '%s\n' "${s[@]}" | median)
        printf '%-18s %12s %12s %8s\n' "$op $size c=$c" "$pm" "$sm" "$(ratio "$sm" "$pm")"
      done
    done
  done
} | tee "$OUT/sse.txt"
