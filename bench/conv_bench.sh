#!/usr/bin/env bash
# bench/conv_bench.sh -- Firehose's record format conversion (issue 11):
# JSON records to one Parquet file (snappy), tarn's converter
# (bench/stream/convload: stream__conv_write, one thread, as one delivery
# runs) beside DuckDB converting the same records from NDJSON with the same
# column types (COPY (SELECT * FROM read_json(..., columns = {...})) TO
# ... (FORMAT parquet); DuckDB's node API from tests/e2e/duckdb, 2 threads).
#
# Environment: BUILD (build), CONV_RECORDS (300000), CONV_ROUNDS (3) runs of
# each (the median is shown). Output: bench/out/conv.txt.
set -euo pipefail
BENCH_NAME=conv
source "$(dirname "$0")/lib.sh"
N=${CONV_RECORDS:-300000}
ROUNDS=${CONV_ROUNDS:-3}
bench_tmp
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD" bench/stream/convload >"$OUT/conv-build.log" 2>&1 ||
  { echo "bench conv: cannot build convload (see bench/out/conv-build.log)" >&2; exit 1; }

tarn_secs=()
for r in $(seq "$ROUNDS"); do
  line=$("$BUILD/bench/stream/convload" "$N" "$T/in.ndjson")
  tarn_secs+=("$(echo "$line" | sed 's/.* seconds \([0-9.]*\) .*/\1/')")
  mib=$(echo "$line" | sed 's/input_mib \([0-9.]*\) .*/\1/')
done
cols="{'id': 'VARCHAR', 'customer': 'VARCHAR', 'qty': 'INTEGER', 'seq': 'BIGINT',
  'price': 'DECIMAL(12,2)', 'score': 'DOUBLE', 'paid': 'BOOLEAN', 'ts': 'TIMESTAMP',
  'tags': 'VARCHAR[]', 'note': 'VARCHAR'}"
duck_secs=()
for r in $(seq "$ROUNDS"); do
  sql="COPY (SELECT * FROM read_json('$T/in.ndjson', format = 'newline_delimited', columns = $cols)) TO '$T/duck.parquet' (FORMAT parquet, COMPRESSION snappy)"
  t0=$(date +%s.%N)
  printf '%s' "$(python3 -c 'import json,sys; print(json.dumps([sys.argv[1]]))' "$sql")" |
    node tests/e2e/duckdb/run.mjs >"$T/duck.out"
  t1=$(date +%s.%N)
  grep -q '"results"' "$T/duck.out" || { cat "$T/duck.out" >&2; exit 1; }
  duck_secs+=("$(echo "$t1 - $t0" | bc -l)")
done
t=$(printf '%s\n' "${tarn_secs[@]}" | median)
d=$(printf '%s\n' "${duck_secs[@]}" | median)
{
  printf '%-28s %10s %12s %12s\n' engine seconds "MiB/s" "records/s"
  printf '%-28s %10.3f %12.1f %12.0f\n' "tarn (1 thread)" "$t" "$(echo "$mib / $t" | bc -l)" "$(echo "$N / $t" | bc -l)"
  printf '%-28s %10.3f %12.1f %12.0f\n' "DuckDB (2 threads, +start)" "$d" "$(echo "$mib / $d" | bc -l)" "$(echo "$N / $d" | bc -l)"
  printf '%s records, %s MiB of JSON, median of %s runs\n' "$N" "$mib" "$ROUNDS"
} | tee "$OUT/conv.txt"
