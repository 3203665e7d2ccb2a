#!/usr/bin/env bash
# bench/sql_bench.sh -- SQL (issue 5): tarn's SQL engine against DuckDB on
# the same files, with the same thread count, in the same run: per query the
# seconds of each and their ratio, the geometric mean of the ratios per
# format, and the peak memory of both.
#
# Data: the seed talk's sales shape (custid, year, gram, count, price, ts,
# url), generated once by bench/sql/gen.c into bench/out/sql/ (sales.csv
# ~1.06 GB, sales.jsonl ~1.4 GB, grams.csv) and reused. Each run puts them
# into a fresh tarn server (bucket "lake"), restarts it so its memory
# high-water mark counts queries only, then, query by query, times tarn
# (POST /_tarn/sql through curl, CSV out, curl's time_total: the request's
# wall time without curl's start) and DuckDB (a long-lived node process,
# bench/sql/duckdb_times.mjs, timed around runAndReadAll) on the local
# files. Each format gets its own tarn process and its own node process;
# peak memory is each process's VmHWM at the end.
#
# Environment: TARN (build/tarn), BUILD (build), SQLGEN (a prebuilt
# generator), SQL_ROWS_CSV (13000000), SQL_ROWS_JSON (10000000), SQL_RUNS
# (2: the best of N runs of each query on each engine), SQL_FORMATS
# ("csv jsonl parquet"). Output: bench/out/sql.txt (the table),
# bench/out/sql-raw.txt (times, row counts and first rows of both).
#
# Parquet: sales.parquet is the CSV table written once by DuckDB's own writer
# (COPY ... (FORMAT parquet, COMPRESSION snappy): its default row groups of
# 122,880 rows, dictionaries where it chooses them). For it the table also
# gives the bytes tarn scanned for a one-column query (sum(price)) against
# the object's size.
set -euo pipefail
BENCH_NAME=sql
source "$(dirname "$0")/lib.sh"
ROWS_CSV=${SQL_ROWS_CSV:-13000000}
ROWS_JSON=${SQL_ROWS_JSON:-10000000}
RUNS=${SQL_RUNS:-2}
FORMATS=${SQL_FORMATS:-"csv jsonl parquet"}
THREADS=$(nproc)   # tarn's engine uses every core; DuckDB is given as many
DATA=$OUT/sql
mkdir -p "$DATA"
: >"$OUT/sql-raw.txt"

# --- programs and peer ------------------------------------------------------------
if [ -z "${SQLGEN:-}" ]; then
  [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
  ninja -C "$BUILD" bench/sql/sqlgen >"$OUT/sql-build.log" 2>&1 ||
    { say "cannot build bench/sql (see bench/out/sql-build.log)"; exit 1; }
  SQLGEN=$BUILD/bench/sql/sqlgen
fi
[ -x "$TARN" ] || { say "no tarn binary at '$TARN' (set TARN)"; exit 1; }
if [ ! -f bench/sql/node_modules/@duckdb/node-api/package.json ]; then
  say "installing @duckdb/node-api into bench/sql/node_modules"
  (cd bench/sql && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# --- data (once) ------------------------------------------------------------------
stamp="$ROWS_CSV $ROWS_JSON $(sha256sum bench/sql/gen.c | cut -c1-16)"
if [ "$(cat "$DATA/stamp" 2>/dev/null)" != "$stamp" ]; then
  say "generating $ROWS_CSV CSV rows and $ROWS_JSON JSON lines into bench/out/sql/ (once)"
  rm -f "$DATA/stamp"
  "$SQLGEN" "$ROWS_CSV" >"$DATA/sales.csv"
  "$SQLGEN" "$ROWS_JSON" json >"$DATA/sales.jsonl"
  printf 'gram,label\nalpha,A\nbeta,B\ngamma,C\ndelta,D\nepsilon,E\nzeta,Z\neta,H\ntheta,T\n' \
    >"$DATA/grams.csv"
  rm -f "$DATA/sales.parquet"
  printf '%s\n' "$stamp" >"$DATA/stamp"
fi
if [[ " $FORMATS " == *" parquet "* ]] && [ ! -s "$DATA/sales.parquet" ]; then
  say "writing sales.parquet from sales.csv with DuckDB (snappy, once)"
  r=$(cd bench/sql && printf '%s\n' "COPY (SELECT * FROM '$DATA/sales.csv') TO '$DATA/sales.parquet.tmp' (FORMAT parquet, COMPRESSION snappy)" |
      node duckdb_times.mjs "$THREADS")
  r=${r%%$'\n'*}
  case $r in error*) say "DuckDB could not write sales.parquet: $r"; exit 1 ;; esac
  mv "$DATA/sales.parquet.tmp" "$DATA/sales.parquet"
fi

# --- tarn -------------------------------------------------------------------------
bench_tmp
DUCK_PID=""
bench_at_exit '[ -z "$DUCK_PID" ] || kill "$DUCK_PID" 2>/dev/null'
BENCH_QUIET=1
SIGN=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
# /_tarn/sql wants the body's SHA-256 signed (UNSIGNED-PAYLOAD is S3's only): curl
# computes it when no x-amz-content-sha256 header is given
SIGNQ=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK")
s3_put() { # s3_put FILE KEY
  local code
  code=$(curl -sS -o "$T/put.out" -w '%{http_code}' "${SIGN[@]}" -T "$1" \
    "http://127.0.0.1:$PORT/lake/$2")
  [ "$code" = 200 ] || { say "PUT lake/$2: $code $(head -c 300 "$T/put.out")"; exit 1; }
}

bench_tarn_start
say "putting the data into tarn (bucket lake)"
curl -sSf -o /dev/null "${SIGN[@]}" -X PUT "http://127.0.0.1:$PORT/lake"
s3_put "$DATA/grams.csv" grams.csv
for fmt in $FORMATS; do s3_put "$DATA/sales.$fmt" "sales.$fmt"; done
bench_tarn_stop

# CPU seconds the tarn server has used so far (all its threads, those that
# ended too): its process CPU clock (clock_getcpuclockid: the clock id of
# process PID is (~PID << 3) | 2), read to the nanosecond. /proc/PID/stat
# counts whole clock ticks (10 ms), coarser than a short query; DuckDB's side
# (process.cpuUsage) counts microseconds.
tarn_cpu() {
  /usr/bin/python3 -c 'import sys, time; print("%.4f" % time.clock_gettime((~int(sys.argv[1]) << 3) | 2))' "$PID" 2>/dev/null ||
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.4f", ($14 + $15) / hz }' "/proc/$PID/stat"
}

# Runs one statement on tarn: prints "seconds rows cpu first-row" or "error ...";
# cpu is the server's user + system seconds over the request (all its threads).
tarn_query() {
  local code secs rows c0 c1
  c0=$(tarn_cpu)
  secs=$(curl -sS -o "$T/q.out" -D "$T/q.head" -w '%{time_total}' "${SIGNQ[@]}" \
    -H "Accept: text/csv" --data-binary "$1" "http://127.0.0.1:$PORT/_tarn/sql") ||
    { echo "error curl failed"; return; }
  code=$(head -n 1 "$T/q.head" | cut -d' ' -f2)
  if [ "$code" != 200 ] || grep -qi '^x-tarn-error: *[^[:space:]]' "$T/q.head"; then
    echo "error $code $(head -c 300 "$T/q.out" | tr '\n' ' ') $(grep -i '^x-tarn-error' "$T/q.head" | tr -d '\r')"
    return
  fi
  rows=$(( $(wc -l <"$T/q.out") - 1 ))
  c1=$(tarn_cpu)
  echo "$secs $rows $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.4f", b - a }') $(sed -n 2p "$T/q.out")"
}

# --- queries ----------------------------------------------------------------------
# name|query, with $T for the table and $G for the small grams table; the last
# one writes the whole table as Parquet (tarn: through the store, encoded on
# one thread; DuckDB: a local file)
QUERIES=(
  "count|SELECT count(*) FROM \$T"
  "filtered_sum|SELECT sum(count), avg(price) FROM \$T WHERE year = 2015"
  "group_low|SELECT gram, year, sum(count) FROM \$T GROUP BY gram, year"
  "group_high|SELECT custid, sum(price) AS s FROM \$T GROUP BY custid ORDER BY s DESC LIMIT 3"
  "count_distinct|SELECT count(DISTINCT custid) FROM \$T"
  "like|SELECT count(*) FROM \$T WHERE url LIKE '%checkout%'"
  "order_limit|SELECT url, ts FROM \$T ORDER BY ts DESC LIMIT 10"
  "join|SELECT g.label, sum(s.count) FROM \$T s JOIN \$G g ON s.gram = g.gram GROUP BY g.label"
  "copy_parquet|COPY (SELECT * FROM \$T) TO \$W"
)
# $W: where copy_parquet writes (one snappy Parquet object / file each)

# Samples PID's resident memory every 0.1 s until it exits or is killed:
# the largest RssAnon and RssFile (kB) seen, into FILE. VmHWM counts the
# pages of mapped files too; this tells heap from page cache.
sample_mem() { # sample_mem PID FILE
  local anon=0 filek=0 k v
  while [ -r "/proc/$1/status" ]; do
    while read -r k v _; do
      case $k in
        RssAnon:) [ "$v" -le "$anon" ] || anon=$v ;;
        RssFile:) [ "$v" -le "$filek" ] || filek=$v ;;
      esac
    done <"/proc/$1/status" 2>/dev/null || break
    echo "$anon $filek" >"$2.tmp" && mv "$2.tmp" "$2"
    sleep 0.1
  done
}

best() { # best A B: the smaller time (or the one that is not an error)
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "error") print b; else if (b == "error") print a;
                                   else print (a + 0 < b + 0 ? a : b) }'
}

declare -A TT DT TR DR TC DC HWM_T HWM_D MEM_T MEM_D SCANNED
for fmt in $FORMATS; do
  tarn_t="'s3://lake/sales.$fmt'"
  duck_t="'$DATA/sales.$fmt'"
  [ "$fmt" = jsonl ] && duck_t="read_json_auto('$DATA/sales.jsonl', format='newline_delimited')"
  say "$fmt: ${#QUERIES[@]} queries, $RUNS run(s) each, tarn then DuckDB, $THREADS threads"
  # Both engines read from the page cache: tarn its blobs, DuckDB the files.
  find "$T/data" "$DATA/sales.$fmt" -type f -exec cat {} + >/dev/null 2>&1 || true
  bench_tarn_start
  coproc DUCK { cd bench/sql && exec node duckdb_times.mjs "$THREADS"; }
  echo "0 0" >"$T/mem.tarn"
  echo "0 0" >"$T/mem.duck"
  sample_mem "$PID" "$T/mem.tarn" &
  SAMPLE_T=$!
  sample_mem "$DUCK_PID" "$T/mem.duck" &
  SAMPLE_D=$!
  for e in "${QUERIES[@]}"; do
    name=${e%%|*}
    q=${e#*|}
    tq=${q//\$G/\'s3://lake/grams.csv\'}
    tq=${tq//\$T/$tarn_t}
    dq=${q//\$G/\'$DATA/grams.csv\'}
    dq=${dq//\$T/$duck_t}
    tq=${tq//\$W/"'s3://lake/copy-$fmt/' (FORMAT parquet, COMPRESSION snappy, OVERWRITE_OR_IGNORE)"}
    dq=${dq//\$W/"'$T/copy-$fmt.parquet' (FORMAT parquet, COMPRESSION snappy)"}
    tt=error dt=error tc=error dc=error
    for _ in $(seq "$RUNS"); do
      t=$(tarn_query "$tq")
      printf 'tarn   %-5s %-15s %s\n' "$fmt" "$name" "$t" >>"$OUT/sql-raw.txt"
      tt=$(best "$tt" "${t%% *}")
      TR[$fmt-$name]=$(echo "$t" | cut -d' ' -f2)
      [ "${t%% *}" = error ] || tc=$(best "$tc" "$(echo "$t" | cut -d' ' -f3)")
      printf '%s\n' "$dq" >&"${DUCK[1]}"
      read -r d <&"${DUCK[0]}"
      printf 'duckdb %-5s %-15s %s\n' "$fmt" "$name" "$d" >>"$OUT/sql-raw.txt"
      dt=$(best "$dt" "${d%% *}")
      DR[$fmt-$name]=$(echo "$d" | cut -d' ' -f2)
      [ "${d%% *}" = error ] || dc=$(best "$dc" "$(echo "$d" | cut -d' ' -f3)")
    done
    TT[$fmt-$name]=$tt
    DT[$fmt-$name]=$dt
    TC[$fmt-$name]=$tc
    DC[$fmt-$name]=$dc
  done
  if [ "$fmt" = parquet ]; then
    # bytes scanned for a one-column query (x-tarn-bytes-scanned, a trailer)
    t=$(tarn_query "SELECT sum(price) FROM $tarn_t")
    printf 'tarn   %-5s %-15s %s\n' "$fmt" "one_column" "$t" >>"$OUT/sql-raw.txt"
    SCANNED[$fmt]=$(grep -i '^x-tarn-bytes-scanned:' "$T/q.head" | tr -dc '0-9')
  fi
  HWM_T[$fmt]=$(awk '/VmHWM/ { print $2 }' "/proc/$PID/status")
  kill "$SAMPLE_T" "$SAMPLE_D" 2>/dev/null || true
  wait "$SAMPLE_T" "$SAMPLE_D" 2>/dev/null || true
  MEM_T[$fmt]=$(cat "$T/mem.tarn")
  MEM_D[$fmt]=$(cat "$T/mem.duck")
  eval "exec ${DUCK[1]}>&-"   # end of input: the node process prints its VmHWM
  read -r h <&"${DUCK[0]}" || h="hwm_kb 0"
  HWM_D[$fmt]=${h#hwm_kb }
  wait "$DUCK_PID" 2>/dev/null || true
  DUCK_PID=""
  bench_tarn_stop
done

# --- table ------------------------------------------------------------------------
FAILED=0
{
  echo "SQL (issue 5): $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
  echo "Seconds per query (lower is better), best of $RUNS; both engines with $THREADS threads,"
  echo "data in the page cache. tarn: POST /_tarn/sql, CSV out (curl time_total); DuckDB"
  echo "$(node -p "require('./bench/sql/node_modules/@duckdb/node-api/package.json').version" 2>/dev/null)" \
    "(@duckdb/node-api) on the same local files. ratio = tarn / DuckDB (below 1: tarn"
  echo "faster). Peak memory: VmHWM of the tarn server and of the node process (it counts"
  echo "mapped file pages too); then the largest RssAnon (heap) and RssFile seen, every 0.1 s."
  echo "cpu: user + system seconds of each process over the query (best of $RUNS), which a"
  echo "loaded machine disturbs less than wall time; cpu ratio = tarn / DuckDB."
  for fmt in $FORMATS; do
    size=$(stat -L -c %s "$DATA/sales.$fmt")
    echo
    printf '%-6s %-15s %9s %9s %8s %8s %8s %8s  %s\n' "$fmt" query "tarn s" "duckdb s" ratio \
      "tarn cpu" "duck cpu" "cpu rat" note
    logsum=0 n=0 clogsum=0 cn=0
    for e in "${QUERIES[@]}"; do
      name=${e%%|*}
      t=${TT[$fmt-$name]} d=${DT[$fmt-$name]} note=""
      r=$(awk -v a="$t" -v b="$d" 'BEGIN { if (a == "error" || b == "error" || b + 0 == 0) print "-";
                                             else printf "%.3f", a / b }')
      if [ "$r" = - ]; then
        note="failed (see bench/out/sql-raw.txt)"
        FAILED=1
      else
        logsum=$(awk -v s="$logsum" -v r="$r" 'BEGIN { printf "%.9f", s + log(r) }')
        n=$((n + 1))
        [ "${TR[$fmt-$name]}" = "${DR[$fmt-$name]}" ] ||
          note="row counts differ: tarn ${TR[$fmt-$name]}, DuckDB ${DR[$fmt-$name]}"
        awk -v r="$r" 'BEGIN { exit !(r > 1) }' && note="${note:+$note; }slower than DuckDB"
      fi
      tc=${TC[$fmt-$name]} dc=${DC[$fmt-$name]}
      # (at least 0.1 ms: the figures are printed to the 0.1 ms)
      cr=$(awk -v a="$tc" -v b="$dc" '
             BEGIN { if (a == "error" || b == "error" || b + 0 == 0) { print "-"; exit }
                     if (a + 0 < 0.0001) a = 0.0001; printf "%.3f", a / b }')
      if [ "$cr" != - ]; then
        clogsum=$(awk -v s="$clogsum" -v r="$cr" 'BEGIN { printf "%.9f", s + log(r) }')
        cn=$((cn + 1))
      fi
      printf '%-6s %-15s %9.3f %9.3f %8s %8.4f %8.4f %8s  %s\n' "" "$name" "${t/error/0}" \
        "${d/error/0}" "$r" "${tc/error/0}" "${dc/error/0}" "$cr" "$note"
    done
    geo=$(awk -v s="$logsum" -v n="$n" 'BEGIN { if (n == 0) print "-"; else printf "%.3f", exp(s / n) }')
    aim="aim <= 0.5, no query > 1"
    [ "$fmt" = parquet ] && aim="aim <= 0.8, no query > 1.5"
    cgeo=$(awk -v s="$clogsum" -v n="$cn" 'BEGIN { if (n == 0) print "-"; else printf "%.3f", exp(s / n) }')
    printf '%-6s %-15s %9s %9s %8s %8s %8s %8s  %s\n' "" "geomean" "" "" "$geo" "" "" "$cgeo" "$aim"
    printf '%-6s %-15s %9s %9s %8s  %s\n' "" "VmHWM MB" \
      "$(( ${HWM_T[$fmt]:-0} / 1024 ))" "$(( ${HWM_D[$fmt]:-0} / 1024 ))" \
      "$(awk -v a="${HWM_T[$fmt]:-0}" -v b="${HWM_D[$fmt]:-0}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')" \
      "$(( size / 1000000 )) MB of $fmt"
    read -r ta tf <<<"${MEM_T[$fmt]:-0 0}"
    read -r da df <<<"${MEM_D[$fmt]:-0 0}"
    printf '%-6s %-15s %9s %9s %8s\n' "" "  RssAnon MB" "$((ta / 1024))" "$((da / 1024))" \
      "$(awk -v a="$ta" -v b="$da" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')"
    printf '%-6s %-15s %9s %9s\n' "" "  RssFile MB" "$((tf / 1024))" "$((df / 1024))"
    if [ -n "${SCANNED[$fmt]:-}" ]; then
      printf '%-6s %-15s %s of %s bytes (%s) for SELECT sum(price)\n' "" "scanned" \
        "${SCANNED[$fmt]}" "$size" \
        "$(awk -v a="${SCANNED[$fmt]}" -v b="$size" 'BEGIN { printf "%.3f", a / b }')"
    fi
  done
} | tee "$OUT/sql.txt"
exit $FAILED
