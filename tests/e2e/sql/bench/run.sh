#!/usr/bin/env bash
# tests/e2e/sql/bench/run.sh -- the SQL engine against DuckDB on the same
# files, same thread count, in the same run: prints per query the seconds of
# each and their ratio, then the geometric mean of the ratios.
#
#   run.sh SQL_DRIVER DATA_DIR [THREADS]
#
# DATA_DIR/lake/sales.csv and sales.jsonl are generated when missing (about
# 1 GB each, the seed talk's sales shape). Needs node with @duckdb/node-api
# installed in DUCKDB_DIR (default /tmp/duck): npm install @duckdb/node-api
set -eu
driver=$(realpath "$1")
data=$(realpath "$2")
threads=${3:-$(nproc)}
duck=${DUCKDB_DIR:-/tmp/duck}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$data/lake"
if [ ! -f "$data/lake/sales.csv" ]; then
  gcc -O2 -o "$data/gen" "$here/gen.c"
  "$data/gen" 13000000 > "$data/lake/sales.csv"
  "$data/gen" 10000000 json > "$data/lake/sales.jsonl"
  printf 'gram,label\nalpha,A\nbeta,B\ngamma,C\ndelta,D\nepsilon,E\nzeta,Z\neta,H\ntheta,T\n' > "$data/lake/grams.csv"
fi
# name|query with $T for the table ($G: the small grams table)
queries=(
  "count|SELECT count(*) FROM \$T"
  "filtered_sum|SELECT sum(count), avg(price) FROM \$T WHERE year = 2015"
  "group_low|SELECT gram, year, sum(count) FROM \$T GROUP BY gram, year"
  "group_high|SELECT custid, sum(price) AS s FROM \$T GROUP BY custid ORDER BY s DESC LIMIT 3"
  "count_distinct|SELECT count(DISTINCT custid) FROM \$T"
  "like|SELECT count(*) FROM \$T WHERE url LIKE '%checkout%'"
  "order_limit|SELECT url, ts FROM \$T ORDER BY ts DESC LIMIT 10"
  "join|SELECT g.label, sum(s.count) FROM \$T s JOIN \$G g ON s.gram = g.gram GROUP BY g.label"
)
geo=0; n=0
for fmt in csv jsonl; do
  tarn_t="'s3://lake/sales.$fmt'"; duck_t="'$data/lake/sales.$fmt'"
  [ $fmt = jsonl ] && duck_t="read_json_auto('$data/lake/sales.jsonl', format='newline_delimited')"
  json="["; sep=""
  for e in "${queries[@]}"; do
    q=${e#*|}; q=${q//\$G/\'$data/lake/grams.csv\'}; q=${q//\$T/$duck_t}
    json="$json$sep$(printf '%s' "$q" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"; sep=","
  done
  echo "$json]" > "$data/q.json"
  cp "$here/duckdb_times.mjs" "$duck/"
  mapfile -t dtimes < <(cd "$duck" && node duckdb_times.mjs "$threads" "$data/q.json" | cut -d' ' -f1)
  i=0
  for e in "${queries[@]}"; do
    name=${e%%|*}; q=${e#*|}; q=${q//\$G/\'s3://lake/grams.csv\'}; q=${q//\$T/$tarn_t}
    s=$(date +%s.%N); "$driver" -t "$threads" "$data" "$q" > /dev/null 2>&1; t=$(echo "$(date +%s.%N) - $s" | bc)
    d=${dtimes[$i]}; r=$(echo "scale=3; $t / $d" | bc)
    printf '%-6s %-15s tarn %6.3f s  duckdb %6.3f s  ratio %s\n' $fmt $name $t $d $r
    geo=$(echo "$geo + l($r)" | bc -l); n=$((n + 1)); i=$((i + 1))
  done
done
echo "geometric mean tarn/duckdb: $(echo "scale=3; e($geo / $n)" | bc -l)"
