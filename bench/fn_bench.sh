#!/usr/bin/env bash
# bench/fn_bench.sh -- functions (issue 3): cold starts, warm invocations,
# invocations per second and new sandboxes per second through tarn's Lambda
# API, each beside a floor measured on this machine in this run
# (DESIGN.md §9), and beside published anchors (printed, not run).
#
# The client is bench/fn/fnload (C, one keep-alive connection per thread,
# SigV4 with tarn's own signer); the `provided` function is bench/fn/bootstrap
# (C, static, the Runtime API over a raw socket); Python and Node.js functions
# are one-line handlers on tarn's runtimes/. Floors: the same bootstrap
# fork+exec'd with no isolation against a Runtime API served by fnload (fork
# to its answer), `python3 -c pass`, `node -e 0` (fork+exec+wait).
#
# Environment: TARN (build/tarn), BUILD (build: where bench/fn is built),
# FNLOAD / BOOTSTRAP (prebuilt programs), FN_SECS (3) seconds per warm
# measurement, FN_COLD_N (100) provided functions for the cold start (Python
# and Node.js get a third and a fifth of that), FN_SANDBOXES (200) functions
# for new sandboxes per second, FN_SANDBOX_UNIT=1 also runs the sandbox unit
# test's SANDBOX_BENCH=1 mode (about 15 s). Output: bench/out/fn.txt (the
# table), bench/out/fn-raw.txt (every fnload line).
set -euo pipefail
BENCH_NAME=fn
source "$(dirname "$0")/lib.sh"
SECS=${FN_SECS:-3}
COLD_N=${FN_COLD_N:-100}
SANDBOXES=${FN_SANDBOXES:-200}
: >"$OUT/fn-raw.txt"

# --- programs -------------------------------------------------------------------
if [ -z "${FNLOAD:-}" ] || [ -z "${BOOTSTRAP:-}" ]; then
  [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
  ninja -C "$BUILD" bench/fn/fnload bench/fn/bootstrap >"$OUT/fn-build.log" 2>&1 ||
    { say "cannot build bench/fn (see bench/out/fn-build.log)"; exit 1; }
fi
FNLOAD=${FNLOAD:-$BUILD/bench/fn/fnload}
BOOTSTRAP=${BOOTSTRAP:-$BUILD/bench/fn/bootstrap}
[ -x "$TARN" ] || { say "no tarn binary at '$TARN' (set TARN)"; exit 1; }
PY=/usr/bin/python3   # what python3.x functions run (registry.c), not a pyenv shim
NODE=/usr/bin/node

# --- server ---------------------------------------------------------------------
bench_tarn_start
if grep -q "functions disabled" "$T/tarn.log"; then
  say "functions are disabled on this machine (no user namespaces?): skipped"
  grep "functions disabled" "$T/tarn.log" >&2
  exit 0
fi
export TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK

# --- code -----------------------------------------------------------------------
mkdir -p "$T/code"
"$PY" - "$T/code" "$BOOTSTRAP" <<'EOF'
import sys, zipfile
d, boot = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(d + "/provided.zip", "w", zipfile.ZIP_DEFLATED) as z:
    i = zipfile.ZipInfo("bootstrap")
    i.external_attr = 0o100755 << 16
    i.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(i, open(boot, "rb").read())
with zipfile.ZipFile(d + "/python.zip", "w") as z:
    z.writestr("app.py", "def handler(event, context):\n    return {\"ok\": 1}\n")
with zipfile.ZipFile(d + "/node.zip", "w") as z:
    z.writestr("index.js", "exports.handler = async (event) => ({ ok: 1 });\n")
EOF
ZIP_KB=$(( $(stat -c %s "$T/code/provided.zip") / 1024 ))

# Runs fnload, keeps its line in fn-raw.txt and in $LINE; "" on failure.
LINE=""
run() {
  local out
  if out=$("$FNLOAD" "$@" 2>"$T/err"); then LINE=$out; else
    LINE=""
    say "fnload $1 failed: $(head -c 300 "$T/err")"
  fi
  printf '%s  # fnload %s\n' "${out:-error}" "$*" >>"$OUT/fn-raw.txt"
}

# --- measurements -----------------------------------------------------------------
PY_N=$(( COLD_N / 3 > 5 ? COLD_N / 3 : 5 ))
NODE_N=$(( COLD_N / 5 > 5 ? COLD_N / 5 : 5 ))
say "floors: the bootstrap without isolation, python3 -c pass, node -e 0"
run floor-rt --bootstrap "$BOOTSTRAP" --count 200; F_RT=$LINE
run spawn --count "$PY_N" -- "$PY" -c pass; F_PY=$LINE
run spawn --count "$NODE_N" -- "$NODE" -e 0; F_NODE=$LINE

say "cold starts: CreateFunction, then the first Invoke ($COLD_N provided, $PY_N python3.11, $NODE_N nodejs20.x)"
run cold --port "$PORT" --zip "$T/code/provided.zip" --runtime provided --handler echo \
  --prefix cold-c --count "$COLD_N"; C_C=$LINE
run cold --port "$PORT" --zip "$T/code/python.zip" --runtime python3.11 --handler app.handler \
  --prefix cold-p --count "$PY_N"; C_PY=$LINE
run cold --port "$PORT" --zip "$T/code/node.zip" --runtime nodejs20.x --handler index.handler \
  --prefix cold-n --count "$NODE_N"; C_NODE=$LINE

say "warm invocations: ${SECS} s each"
for rt in provided python3.11 nodejs20.x; do
  case $rt in
    provided) zip=provided.zip h=echo ;;
    python*) zip=python.zip h=app.handler ;;
    *) zip=node.zip h=index.handler ;;
  esac
  run create --port "$PORT" --zip "$T/code/$zip" --runtime "$rt" --handler "$h" --function "warm-${rt%%.*}"
done
run warm --port "$PORT" --function warm-provided --conns 1 --duration "$SECS"; W_C1=$LINE
run warm --port "$PORT" --function warm-provided --conns 8 --duration "$SECS"; W_C8=$LINE
run warm --port "$PORT" --function warm-python3 --conns 1 --duration "$SECS"; W_PY=$LINE
run warm --port "$PORT" --function warm-nodejs20 --conns 1 --duration "$SECS"; W_NODE=$LINE

say "new sandboxes: $SANDBOXES provided functions, each invoked once by 8 clients"
run sandboxes --port "$PORT" --zip "$T/code/provided.zip" --prefix sbx --count "$SANDBOXES" \
  --conns 8; S_C8=$LINE
UNIT=""
if [ "${FN_SANDBOX_UNIT:-0}" = 1 ]; then
  ninja -C "$BUILD" tests/unit/sandbox/test_sandbox >/dev/null 2>&1 &&
    UNIT=$(SANDBOX_BENCH=1 "$BUILD/tests/unit/sandbox/test_sandbox" 2>&1 | tee -a "$OUT/fn-raw.txt") ||
    say "the sandbox unit test's bench mode failed"
fi

# --- table ------------------------------------------------------------------------
{
  echo "Functions (issue 3): $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
  echo "Times in ms (lower is better); ratio = tarn p50 / floor p50 (the floor is what the"
  echo "same work costs with no sandbox: above 1x is tarn's overhead, below 1x is tarn"
  echo "beating a bare start). Client: bench/fn/fnload (C, keep-alive, SigV4)."
  echo
  printf '%-36s %9s %9s  %-28s %9s %9s %8s  %s\n' metric "tarn p50" "tarn p99" floor \
    "flr p50" "flr p99" ratio aim
  row() { # name line floor-name floor-line aim [p50-key p99-key]
    local p50 p99 f50 f99
    p50=$(kv "$2" "${6:-cold_p50_ms}"); p99=$(kv "$2" "${7:-cold_p99_ms}")
    f50=$(kv "$4" p50_ms); f99=$(kv "$4" p99_ms)
    [ -n "$4" ] || { f50=-; f99=-; }
    printf '%-36s %9s %9s  %-28s %9s %9s %8s  %s\n' "$1" "$p50" "$p99" "$3" "$f50" "$f99" \
      "$(ratio "$p50" "$f50")" "$5"
  }
  row "cold start provided (1st Invoke)" "$C_C" "fork+exec bootstrap+1 event" "$F_RT" "p50 <= 5 ms"
  row "cold start python3.11" "$C_PY" "python3 -c pass" "$F_PY" "< floor"
  row "cold start nodejs20.x" "$C_NODE" "node -e 0" "$F_NODE" "< floor"
  row "CreateFunction provided (${ZIP_KB} KB zip)" "$C_C" "" "" "" create_p50_ms create_p99_ms
  row "CreateFunction + 1st Invoke provided" "$C_C" "" "" "" total_p50_ms total_p99_ms
  row "CreateFunction python3.11" "$C_PY" "" "" "" create_p50_ms create_p99_ms
  row "CreateFunction nodejs20.x" "$C_NODE" "" "" "" create_p50_ms create_p99_ms
  row "warm Invoke provided, 1 client" "$W_C1" "" "" "p50 < 0.5 ms" p50_ms p99_ms
  row "warm Invoke provided, 8 clients" "$W_C8" "" "" "" p50_ms p99_ms
  row "warm Invoke python3.11, 1 client" "$W_PY" "" "" "" p50_ms p99_ms
  row "warm Invoke nodejs20.x, 1 client" "$W_NODE" "" "" "" p50_ms p99_ms
  echo
  printf '%-36s %9s  %s\n' "rate (higher is better)" "tarn" "aim / anchor"
  printf '%-36s %9s  %s\n' "invocations/s, provided, 1 client" "$(kv "$W_C1" ops_s)" ""
  printf '%-36s %9s  %s\n' "invocations/s, provided, 8 clients" "$(kv "$W_C8" ops_s)" ""
  printf '%-36s %9s  %s\n' "new sandboxes/s (cold Invokes, c8)" "$(kv "$S_C8" ops_s)" \
    "aim > 300; Firecracker ~5 microVMs/core/s = ~$(( 5 * $(nproc) ))/s here: $(ratio "$(kv "$S_C8" ops_s)" $(( 5 * $(nproc) )))"
  if [ -n "$UNIT" ]; then
    echo
    echo "sandbox unit test, SANDBOX_BENCH=1 (sandbox_start of /bin/true, no Lambda API):"
    printf '%s\n' "$UNIT" | sed 's/^/  /'
  fi
  echo
  c50=$(kv "$C_C" cold_p50_ms)
  echo "anchors (published, not measured here): Firecracker boots a microVM to init in ~125 ms"
  echo "($(ratio 125 "$c50") tarn's provided cold p50); AWS Lambda cold starts ~100-200 ms"
  echo "($(ratio 100 "$c50")-$(ratio 200 "$c50") tarn's provided cold p50)."
} | tee "$OUT/fn.txt"
grep -q '  # fnload.*' "$OUT/fn-raw.txt" && ! grep -q '^error' "$OUT/fn-raw.txt"
