#!/usr/bin/env bash
# bench/flow_bench.sh -- workflows (issue 12): state transitions per second
# of an EXPRESS machine run with StartSyncExecution and of a STANDARD
# machine (every step committed to disk), both a loop of Choice and Pass
# states, from 1 and 8 concurrent executions.
#
# No peer is run: there is no Step Functions engine packaged for Debian
# (Step Functions Local is a Java download), so the table gives tarn's own
# rates and the STANDARD/EXPRESS ratio (the cost of durability: in tarn both
# kinds commit each step; a STANDARD execution is polled to its end).
#
# A transition is one state entered; a machine of LOOPS iterations enters
# 2 * LOOPS + 1 states. Client: Debian's boto3 (bench/flow_load.py).
#
# Environment: TARN (build/tarn), BUILD (build), FLOW_LOOPS (2000),
# FLOW_ROUNDS (3, the median is shown). Output: bench/out/flow.txt.
set -euo pipefail
BENCH_NAME=flow
source "$(dirname "$0")/lib.sh"

bench_tarn_start
ENDPOINT=http://127.0.0.1:$PORT AK=$AK SK=$SK LOOPS=${FLOW_LOOPS:-2000} \
  ROUNDS=${FLOW_ROUNDS:-3} /usr/bin/python3 bench/flow_load.py | tee "$OUT/flow.txt"
