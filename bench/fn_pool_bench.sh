#!/usr/bin/env bash
# bench/fn_pool_bench.sh -- the instance pool (issue 14, src/sandbox/pool.c):
# Python and Node.js cold starts with and without instances started ahead,
# as paired runs on a loaded machine.
#
# Two servers at once, one with TARN_FN_POOL=0 (every cold start builds its
# sandbox, as before) and one with TARN_FN_POOL=$POOL_SIZE (2), both with
# TARN_TRACE_STARTS. Then $POOL_ROUNDS (20) rounds; each round makes one cold
# start per runtime on each server in turn (bench/fn/fnload cold --count 1:
# CreateFunction, then its first Invoke), with $POOL_GAP_S (0.3) s between
# rounds, in which the pool refills (a pool serves bursts up to its size;
# past that, cold starts build their sandbox as before). Prints per server
# and runtime the phases (bench/fn_phases.py; pooled starts are listed as
# RUNTIME/pool) and, at the end, the memory the idle pool holds: the sum of
# its instances' cgroups (what they wrote: their copies of the zygote's
# pages, the rehearsal's pre-faulted ones included) and of their processes'
# PSS (shared pages divided among their sharers).
#
# Usage: BUILD=build bench/fn_pool_bench.sh
set -euo pipefail
BENCH_NAME=fn-pool
source "$(dirname "$0")/lib.sh"

ROUNDS=${POOL_ROUNDS:-20}
SIZE=${POOL_SIZE:-2}
GAP=${POOL_GAP_S:-0.3}
FNLOAD=${FNLOAD:-$BUILD/bench/fn/fnload}
[ -x "$TARN" ] || { say "no tarn binary at '$TARN' (set TARN)"; exit 1; }
[ -x "$FNLOAD" ] || ninja -C "$BUILD" bench/fn/fnload >/dev/null
bench_tmp

declare -A PORTS SPIDS
start() { # NAME POOL
  local port
  port=$(bench_free_port)
  TARN_FN_POOL=$2 TARN_TRACE_STARTS=$T/trace-$1 TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK \
    "$TARN" server --data "$T/data-$1" --listen "127.0.0.1:$port" >>"$T/tarn-$1.log" 2>&1 &
  SPIDS[$1]=$!
  bench_track $!
  bench_wait_up "http://127.0.0.1:$port/_tarn/health"
  PORTS[$1]=$port
}
start off 0
start on "$SIZE"
export TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK

mkdir -p "$T/code"
/usr/bin/python3 - "$T/code" <<'PY'
import sys, zipfile
d = sys.argv[1]
with zipfile.ZipFile(d + "/python.zip", "w") as z:
    z.writestr("app.py", "def handler(event, context):\n    return {\"ok\": 1}\n")
with zipfile.ZipFile(d + "/node.zip", "w") as z:
    z.writestr("index.js", "exports.handler = async (event) => ({ ok: 1 });\n")
PY

say "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for srv in off on; do
    "$FNLOAD" cold --port "${PORTS[$srv]}" --zip "$T/code/python.zip" --runtime python3.11 \
      --handler app.handler --prefix "p$r" --count 1 >>"$T/fnload-$srv.txt"
    "$FNLOAD" cold --port "${PORTS[$srv]}" --zip "$T/code/node.zip" --runtime nodejs20.x \
      --handler index.handler --prefix "n$r" --count 1 >>"$T/fnload-$srv.txt"
  done
  sleep "$GAP"
done
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

for srv in off on; do
  echo "== TARN_FN_POOL=$([ $srv = on ] && echo "$SIZE" || echo 0)"
  /usr/bin/python3 "$ROOT/bench/fn_phases.py" "$T/trace-$srv"
done

# the idle pool's memory (server "on"): its instances' cgroups and PSS
sleep 2
pid=${SPIDS[on]}
/usr/bin/python3 - "$pid" <<'PY'
import glob, os, sys
pid = sys.argv[1]
dirs = [d for d in glob.glob("/sys/fs/cgroup/**/tarn/%s/pool-*" % pid, recursive=True)]
cg = {}
pss = {}
for d in dirs:
    name = os.path.basename(d)
    for f in ("memory.current", "memory.usage_in_bytes"):
        if not os.path.exists(os.path.join(d, f)):
            continue
        cg[name] = int(open(os.path.join(d, f)).read())
        for p in open(os.path.join(d, "cgroup.procs")).read().split():
            try:
                for line in open("/proc/%s/smaps_rollup" % p):
                    if line.startswith("Pss:"):
                        pss[name] = pss.get(name, 0) + int(line.split()[1]) * 1024
            except OSError:
                pass
for name in sorted(cg):
    print("idle %-22s cgroup %6.1f MB  pss %6.1f MB" % (name, cg[name] / 2**20, pss.get(name, 0) / 2**20))
print("idle pool total: %d instances, cgroups %.1f MB, pss %.1f MB" % (len(cg), sum(cg.values()) / 2**20, sum(pss.values()) / 2**20))
PY
