#!/usr/bin/env bash
# tests/fuzz/run_asl.sh -- builds the States Language libFuzzer target with
# clang (ASan/UBSan) and runs it for a while, starting from seeds/asl*:
# `tests/fuzz/run_asl.sh [seconds]`. Not part of `make test` (meson test
# runs it briefly through fuzz_standalone.c).
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=build-fuzz
mkdir -p $out $out/corpus_asl
base="src/base/arena.c src/base/buf.c src/base/err.c src/base/hash.c src/base/mem.c src/base/text.c"
flow="src/flow/asl.c src/flow/path.c src/flow/choice.c src/flow/jsonata.c src/flow/qlang.c"
clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc -pthread \
  -o $out/fuzz_asl tests/fuzz/fuzz_asl.c $base $flow -lcrypto -ljansson -lz -lm
cp tests/fuzz/seeds/asl* $out/corpus_asl/
echo "fuzz_asl: ${secs}s"
$out/fuzz_asl -max_total_time="$secs" -max_len=8192 $out/corpus_asl >$out/fuzz_asl.log 2>&1 \
  || { tail -40 $out/fuzz_asl.log; exit 1; }
tail -1 $out/fuzz_asl.log
