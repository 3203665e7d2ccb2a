#!/usr/bin/env bash
# bench/jsonata_bench.sh -- the JSONata evaluator of Step Functions states
# (src/flow/jsonata.c) against JSONata's reference implementation (npm
# jsonata 2.2.2 on Node.js, the implementation Step Functions names): the
# expressions of bench/jsonata/exprs.txt over a 100-item order
# (bench/jsonata/doc.json) as $states.input, evaluations per second of the
# expression parsed once, and parsed each time (as a state evaluates it).
# Each side's result is compared, so the run also says whether they agree.
#
# Environment: JSONATA_N (20000 evaluations per expression). Output:
# bench/out/jsonata.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/out
mkdir -p "$OUT"
N=${JSONATA_N:-20000}
say() { printf 'bench jsonata: %s\n' "$*" >&2; }

if [ ! -f bench/jsonata/node_modules/jsonata/package.json ]; then
  say "installing jsonata into bench/jsonata/node_modules"
  (cd bench/jsonata && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
base="src/base/arena.c src/base/buf.c src/base/err.c src/base/hash.c src/base/mem.c src/base/text.c"
cc -O2 -D_GNU_SOURCE -Isrc -pthread -o "$T/bench" bench/jsonata/bench.c src/flow/jsonata.c \
  $base -lcrypto -ljansson -lz -lm
say "tarn"
"$T/bench" "$N" bench/jsonata >"$T/tarn.txt"
say "jsonata-js"
node bench/jsonata/bench.js "$N" >"$T/js.txt"
/usr/bin/python3 - "$T/tarn.txt" "$T/js.txt" bench/jsonata/exprs.txt <<'PY' | tee "$OUT/jsonata.txt"
import json, sys
tarn = open(sys.argv[1]).read().splitlines()
js = open(sys.argv[2]).read().splitlines()
exprs = open(sys.argv[3]).read().splitlines()
print("%-4s %12s %12s %7s %12s %12s %7s  %s" % ("expr", "tarn eval/s", "js eval/s", "ratio",
      "tarn +parse", "js +parse", "ratio", "same result"))
for i, (t, j) in enumerate(zip(tarn, js)):
    tc, tf, tr = t.split(" ", 2)
    jc, jf, jr = j.split(" ", 2)
    same = tr == jr or (tr != "undefined" and jr != "undefined" and json.loads(tr) == json.loads(jr))
    print("%-4s %12s %12s %6.1fx %12s %12s %6.1fx  %s" % ("E%d" % (i + 1), tc, jc,
          float(tc) / max(float(jc), 1), tf, jf, float(tf) / max(float(jf), 1),
          "yes" if same else "NO: %s vs %s" % (tr[:60], jr[:60])))
for i, e in enumerate(exprs):
    print("E%d: %s" % (i + 1, e))
PY
