#!/usr/bin/env bash
# tests/fuzz/run_kv.sh -- builds the DynamoDB expression libFuzzer target
# with clang (ASan/UBSan) and runs it for a while, starting from the
# ddb_*.expr seeds: `tests/fuzz/run_kv.sh [seconds]`. Not part of
# `make test` (meson test runs it briefly through fuzz_standalone.c).
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=build-fuzz
mkdir -p $out/corpus_ddb_expr
base="src/base/arena.c src/base/buf.c src/base/err.c src/base/hash.c src/base/mem.c src/base/text.c
      src/base/lmdb_env.c src/base/log.c"
kv="src/kv/num.c src/kv/value.c src/kv/expr.c src/kv/system.c src/kv/table.c src/kv/item.c
    src/kv/query.c src/kv/batch.c src/kv/stream.c src/kv/ttl.c src/kv/partiql.c src/kv/legacy.c"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc -pthread"
clang $flags -o $out/fuzz_ddb_expr tests/fuzz/fuzz_ddb_expr.c $base $kv -lcrypto -ljansson -llmdb -lz
cp tests/fuzz/seeds/ddb_*.expr $out/corpus_ddb_expr/
echo "fuzz_ddb_expr: ${secs}s"
$out/fuzz_ddb_expr -max_total_time="$secs" -max_len=4096 $out/corpus_ddb_expr \
  >$out/fuzz_ddb_expr.log 2>&1 || { tail -40 $out/fuzz_ddb_expr.log; exit 1; }
tail -1 $out/fuzz_ddb_expr.log
