#!/usr/bin/env bash
# tests/fuzz/run_jsonata.sh -- builds the JSONata libFuzzer target with
# clang (ASan/UBSan) and runs it for a while, starting from
# seeds/jsonata*: `tests/fuzz/run_jsonata.sh [seconds]`. Not part of `make
# test` (meson test runs it briefly through fuzz_standalone.c).
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=build-fuzz
mkdir -p $out $out/corpus_jsonata
base="src/base/arena.c src/base/buf.c src/base/err.c src/base/hash.c src/base/mem.c src/base/text.c"
flow="src/flow/asl.c src/flow/path.c src/flow/choice.c src/flow/jsonata.c src/flow/qlang.c"
clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc -pthread \
  -o $out/fuzz_jsonata tests/fuzz/fuzz_jsonata.c $base $flow -lcrypto -ljansson -lz -lm
cp tests/fuzz/seeds/jsonata* $out/corpus_jsonata/
echo "fuzz_jsonata: ${secs}s"
$out/fuzz_jsonata -max_total_time="$secs" -max_len=4096 -timeout=10 $out/corpus_jsonata \
  >$out/fuzz_jsonata.log 2>&1 || { tail -40 $out/fuzz_jsonata.log; exit 1; }
tail -1 $out/fuzz_jsonata.log
