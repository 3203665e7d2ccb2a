#!/usr/bin/env bash
# tests/fuzz/run.sh -- builds each libFuzzer target with clang (ASan/UBSan)
# and runs it for a while: `tests/fuzz/run.sh [seconds-per-target]`.
# Not part of `make test`; `make fuzz` calls it.
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=build-fuzz
mkdir -p $out
base="src/base/arena.c src/base/buf.c src/base/err.c src/base/hash.c src/base/mem.c src/base/text.c src/base/xml.c"
aws="src/aws/sigv4.c src/aws/chunked.c src/http/gate.c src/http/websocket.c"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc"
libs="-lcrypto -lexpat -lz"
for t in chunked xml sigv4 gate websocket; do
  clang $flags -o $out/fuzz_$t tests/fuzz/fuzz_$t.c $base $aws $libs
  mkdir -p $out/corpus_$t
  echo "fuzz_$t: ${secs}s"
  $out/fuzz_$t -max_total_time="$secs" -max_len=65536 $out/corpus_$t >$out/fuzz_$t.log 2>&1 \
    || { tail -40 $out/fuzz_$t.log; exit 1; }
  tail -1 $out/fuzz_$t.log
done
# the fast JSON loader against jansson (aws/json_load.c), differential
clang $flags -o $out/fuzz_json_load tests/fuzz/fuzz_json_load.c src/aws/json_load.c $base $libs \
  -ljansson -lcrypto
mkdir -p $out/corpus_json_load
cp tests/fuzz/seeds/json_load.json $out/corpus_json_load/
echo "fuzz_json_load: ${secs}s"
$out/fuzz_json_load -max_total_time="$secs" -max_len=4096 $out/corpus_json_load \
  >$out/fuzz_json_load.log 2>&1 || { tail -40 $out/fuzz_json_load.log; exit 1; }
tail -1 $out/fuzz_json_load.log
# browser POST forms and POST policies (api/s3_post_form.c, with jansson)
clang $flags -o $out/fuzz_s3_post tests/fuzz/fuzz_s3_post.c src/api/s3_post_form.c $base $libs \
  -ljansson
mkdir -p $out/corpus_s3_post
cp tests/fuzz/seeds/post_form.txt $out/corpus_s3_post/
echo "fuzz_s3_post: ${secs}s"
$out/fuzz_s3_post -max_total_time="$secs" -max_len=65536 $out/corpus_s3_post \
  >$out/fuzz_s3_post.log 2>&1 || { tail -40 $out/fuzz_s3_post.log; exit 1; }
tail -1 $out/fuzz_s3_post.log
# Firehose prefixes and the jq subset (stream/prefix.c, with jansson)
clang $flags -o $out/fuzz_prefix tests/fuzz/fuzz_prefix.c src/stream/prefix.c $base $libs -ljansson
mkdir -p $out/corpus_prefix
echo "fuzz_prefix: ${secs}s"
$out/fuzz_prefix -max_total_time="$secs" -max_len=4096 $out/corpus_prefix >$out/fuzz_prefix.log 2>&1 \
  || { tail -40 $out/fuzz_prefix.log; exit 1; }
tail -1 $out/fuzz_prefix.log
# Firehose record format conversion (stream/convert.c with the Parquet writer)
clang $flags -o $out/fuzz_convert tests/fuzz/fuzz_convert.c src/stream/convert.c \
  src/formats/parquet_write.c src/formats/codec.c src/formats/value.c $base $libs -ljansson \
  -lsnappy -lzstd -llz4 -lbrotlidec -lm
mkdir -p $out/corpus_convert
cp tests/fuzz/seeds/convert_*.bin $out/corpus_convert/
echo "fuzz_convert: ${secs}s"
$out/fuzz_convert -max_total_time="$secs" -max_len=65536 $out/corpus_convert \
  >$out/fuzz_convert.log 2>&1 || { tail -40 $out/fuzz_convert.log; exit 1; }
tail -1 $out/fuzz_convert.log
