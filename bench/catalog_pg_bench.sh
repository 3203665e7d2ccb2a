#!/usr/bin/env bash
# bench/catalog_pg_bench.sh -- what the shared catalog costs: Glue calls per
# second (bench/catalog_load.py, boto3) on a node whose catalog is in
# PostgreSQL (--metadata, catalog/pg_store.c) against a node whose catalog
# is LMDB (catalog/lmdb_store.c), both over one backend tarn for objects.
# There is no other Glue catalog that runs here to compare with.
#
# Environment: TARN (build/tarn), PG_BIN (/usr/lib/postgresql/15/bin),
# CAT_SECS (4) seconds per call, CAT_THREADS (4).
# Output: bench/out/catalog_pg.txt.
set -euo pipefail
BENCH_NAME=catalog_pg
source "$(dirname "$0")/lib.sh"
SECS=${CAT_SECS:-4}
THREADS=${CAT_THREADS:-4}
bench_tmp
bench_pg_start                    # sets PGURL
bench_tarn_start                  # the backend
BPORT=$PORT
python3 - "$BPORT" "$AK" "$SK" <<'PY'
import sys, boto3
boto3.client("s3", endpoint_url="http://127.0.0.1:%s" % sys.argv[1], region_name="us-east-1",
             aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3]
             ).create_bucket(Bucket="blobs")
PY

bench_node lmdb lmdb
LPORT=$NODE_PORT
bench_node pg pg TARN_METADATA="$PGURL"
PPORT=$NODE_PORT

load() { python3 "$(dirname "$0")/catalog_load.py" "http://127.0.0.1:$1" "$AK" "$SK" "$SECS" "$THREADS"; }
load "$LPORT" >"$T/lmdb.txt"
load "$PPORT" >"$T/pg.txt"
{
  printf '%-26s %12s %12s %8s\n' call "LMDB calls/s" "PG calls/s" ratio
  while read -r name l; do
    p=$(awk -v n="$name" '$1 == n { print $2 }' "$T/pg.txt")
    l=${l#calls_s=}
    p=${p#calls_s=}
    printf '%-26s %12s %12s %8s\n' "$name t=$THREADS" "$l" "$p" "$(ratio "$p" "$l")"
  done <"$T/lmdb.txt"
} | tee "$OUT/catalog_pg.txt"
