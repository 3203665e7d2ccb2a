#!/usr/bin/env bash
# bench/crawler_bench.sh -- Glue crawlers: how long after an upload its new
# partition is in the catalog with a crawler in CRAWL_EVENT_MODE (PutObject
# returned until GetPartitions shows it, p50/p99), and the time of a full
# crawl (StartCrawler until READY) over N partitions of small CSV objects.
# There is no Glue to run here: the figures are tarn's own.
# Client: Debian's boto3 (bench/crawler_load.py).
#
# Environment: TARN (build/tarn), BUILD (build), CRAWLER_N (100 uploads).
# Output: bench/out/crawler.txt.
set -euo pipefail
BENCH_NAME=crawler
source "$(dirname "$0")/lib.sh"

bench_tarn_start
ENDPOINT=http://127.0.0.1:$PORT AK=$AK SK=$SK N=${CRAWLER_N:-100} \
  /usr/bin/python3 bench/crawler_load.py | tee "$OUT/crawler.txt"
