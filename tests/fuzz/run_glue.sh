#!/usr/bin/env bash
# tests/fuzz/run_glue.sh -- builds the catalog filter libFuzzer target
# (GetPartitions predicates, GetTables name patterns) with clang
# (ASan/UBSan) and runs it for a while, starting from the glue_*.expr
# seeds: `tests/fuzz/run_glue.sh [seconds]`. Not part of `make test` (meson
# test runs it briefly through fuzz_standalone.c).
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=build-fuzz
mkdir -p $out/corpus_glue_expr
base="src/base/arena.c src/base/buf.c src/base/err.c src/base/hash.c src/base/mem.c src/base/text.c"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc -pthread"
clang $flags -o $out/fuzz_glue_expr tests/fuzz/fuzz_glue_expr.c src/catalog/expr.c $base \
  -lcrypto -ljansson -lz -lpcre2-8
cp tests/fuzz/seeds/glue_*.expr $out/corpus_glue_expr/
echo "fuzz_glue_expr: ${secs}s"
$out/fuzz_glue_expr -max_total_time="$secs" -max_len=4096 $out/corpus_glue_expr \
  >$out/fuzz_glue_expr.log 2>&1 || { tail -40 $out/fuzz_glue_expr.log; exit 1; }
tail -1 $out/fuzz_glue_expr.log
