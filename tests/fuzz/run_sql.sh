#!/usr/bin/env bash
# tests/fuzz/run_sql.sh -- builds the SQL, SQL functions, CSV, JSON and S3 Select libFuzzer targets
# (and the Parquet reader) with clang (ASan/UBSan) and runs each for a while, starting from seeds/:
# `tests/fuzz/run_sql.sh [seconds-per-target]`. Not part of `make test`
# (meson test runs the same targets briefly through fuzz_standalone.c).
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=build-fuzz
mkdir -p $out
base="src/base/arena.c src/base/buf.c src/base/err.c src/base/hash.c src/base/mem.c src/base/text.c src/base/log.c
      src/base/lmdb_env.c"
formats="src/formats/value.c src/formats/csv.c src/formats/jsonl.c src/formats/codec.c
         src/formats/parquet.c src/formats/parquet_page.c src/formats/parquet_write.c"
sql="src/sql/lex.c src/sql/parse.c src/sql/bind.c src/sql/expr.c src/sql/value.c src/sql/func.c
     src/sql/exec.c src/sql/agg.c src/sql/sort.c src/sql/table.c src/sql/sql.c
     src/sql/casemap.c src/sql/scan_parquet.c src/sql/copy.c
     src/sql/bind_expr.c src/sql/bind_from.c src/sql/bind_select.c src/sql/rewrite.c
     src/sql/func_names.c src/sql/object_src.c src/sql/parse_ddl.c src/sql/ddl.c
     src/catalog/accessors.c src/catalog/expr.c src/catalog/input.c src/catalog/store.c"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc -pthread"
libs="-lcrypto -lexpat -lz -lzstd -lbz2 -lsnappy -llz4 -lbrotlidec -lpcre2-8 -ljansson -llmdb -lm"
for t in sql csv json sql_funcs; do
  clang $flags -o $out/fuzz_$t tests/fuzz/fuzz_$t.c $base $formats $sql $libs
  mkdir -p $out/corpus_$t
  cp tests/fuzz/seeds/* $out/corpus_$t/ 2>/dev/null || true
  echo "fuzz_$t: ${secs}s"
  $out/fuzz_$t -max_total_time="$secs" -max_len=4096 $out/corpus_$t >$out/fuzz_$t.log 2>&1 \
    || { tail -40 $out/fuzz_$t.log; exit 1; }
  tail -1 $out/fuzz_$t.log
done

# the Parquet reader: footer and page decoders over whole objects
clang $flags -o $out/fuzz_parquet tests/fuzz/fuzz_parquet.c $base \
  src/formats/value.c src/formats/codec.c src/formats/parquet.c src/formats/parquet_page.c \
  $libs -lsnappy -llz4 -lbrotlidec
mkdir -p $out/corpus_parquet
cp tests/fuzz/seeds/*.parquet $out/corpus_parquet/
echo "fuzz_parquet: ${secs}s"
$out/fuzz_parquet -max_total_time="$secs" -max_len=16384 $out/corpus_parquet >$out/fuzz_parquet.log 2>&1 \
  || { tail -40 $out/fuzz_parquet.log; exit 1; }
tail -1 $out/fuzz_parquet.log

# S3 Select's statement check and input cuts (api/s3_select_input.c)
clang $flags -o $out/fuzz_s3_select tests/fuzz/fuzz_s3_select.c src/api/s3_select_input.c $base $libs
mkdir -p $out/corpus_s3_select
cp tests/fuzz/seeds/select*.txt $out/corpus_s3_select/
echo "fuzz_s3_select: ${secs}s"
$out/fuzz_s3_select -max_total_time="$secs" -max_len=65536 $out/corpus_s3_select >$out/fuzz_s3_select.log 2>&1 \
  || { tail -40 $out/fuzz_s3_select.log; exit 1; }
tail -1 $out/fuzz_s3_select.log
