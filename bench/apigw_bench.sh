#!/usr/bin/env bash
# bench/apigw_bench.sh -- the front door (issue 15): requests per second and
# p99 latency through an HTTP API route (anonymous GET, payload format 2.0,
# the proxy event built and the answer mapped) to a warm function, beside
# the same function through Lambda's Invoke (SigV4-signed POST) in the same
# run, with 1 and 8 clients. The difference per request is what the gateway
# adds (route match, event, response mapping) minus what SigV4 costs Invoke.
#
# Client: bench/fn/fnload warm (C, one keep-alive connection per client);
# --url sends the unsigned GET. Function: bench/fn/bootstrap (`provided`,
# answers {"ok":1}, which format 2.0 maps to a 200 application/json body).
# The two paths alternate, APIGW_ROUNDS (3) rounds of APIGW_SECS (2) seconds
# each, medians shown.
#
# Environment: TARN (build/tarn), BUILD (build). Output: bench/out/apigw.txt,
# every fnload line in bench/out/apigw-raw.txt.
set -euo pipefail
BENCH_NAME=apigw
source "$(dirname "$0")/lib.sh"
SECS=${APIGW_SECS:-2}
ROUNDS=${APIGW_ROUNDS:-3}
: >"$OUT/apigw-raw.txt"

[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD" bench/fn/fnload bench/fn/bootstrap >"$OUT/apigw-build.log" 2>&1 ||
  { say "cannot build bench/fn (see bench/out/apigw-build.log)"; exit 1; }
FNLOAD=$BUILD/bench/fn/fnload
BOOTSTRAP=$BUILD/bench/fn/bootstrap
[ -x "$TARN" ] || { say "no tarn binary at '$TARN' (set TARN)"; exit 1; }

bench_tarn_start
if grep -q "functions disabled" "$T/tarn.log"; then
  say "functions are disabled on this machine: skipped"
  exit 0
fi
export TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK

/usr/bin/python3 - "$T" "$BOOTSTRAP" <<'PY'
import sys, zipfile
d, boot = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(d + "/provided.zip", "w", zipfile.ZIP_DEFLATED) as z:
    i = zipfile.ZipInfo("bootstrap")
    i.external_attr = 0o100755 << 16
    z.writestr(i, open(boot, "rb").read())
PY
"$FNLOAD" create --port "$PORT" --zip "$T/provided.zip" --runtime provided --handler echo \
  --function gw-target >>"$OUT/apigw-raw.txt"
ARN="arn:aws:lambda:us-east-1:000000000000:function:gw-target"
API=$(AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=us-east-1 \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  /usr/bin/aws --endpoint-url "http://127.0.0.1:$PORT" apigatewayv2 create-api --name bench \
  --protocol-type HTTP --target "$ARN" --route-key 'GET /items/{id}' \
  --query ApiId --output text)
ROUTE="/_tarn/apis/$API/items/42"
curl -sf "http://127.0.0.1:$PORT$ROUTE" | grep -q '"ok"' ||
  { say "the route does not answer"; tail -n 5 "$T/tarn.log" >&2; exit 1; }

LINE=""
run() {
  local out
  if out=$("$FNLOAD" "$@" 2>"$T/err"); then LINE=$out; else
    LINE=""; say "fnload failed: $(head -c 300 "$T/err")"
  fi
  printf '%s  # fnload %s\n' "${out:-error}" "$*" >>"$OUT/apigw-raw.txt"
}
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

declare -A OPS P99 P50
for conns in 1 8; do
  for mode in invoke route; do : >"$T/$mode-$conns.ops"; : >"$T/$mode-$conns.p99"; : >"$T/$mode-$conns.p50"; done
  for _ in $(seq "$ROUNDS"); do
    for mode in invoke route; do
      if [ $mode = route ]; then
        run warm --port "$PORT" --function gw-target --url "$ROUTE" --conns "$conns" --duration "$SECS"
      else
        run warm --port "$PORT" --function gw-target --conns "$conns" --duration "$SECS"
      fi
      kv "$LINE" ops_s >>"$T/$mode-$conns.ops"
      kv "$LINE" p99_ms >>"$T/$mode-$conns.p99"
      kv "$LINE" p50_ms >>"$T/$mode-$conns.p50"
    done
  done
  for mode in invoke route; do
    OPS[$mode-$conns]=$(median <"$T/$mode-$conns.ops")
    P99[$mode-$conns]=$(median <"$T/$mode-$conns.p99")
    P50[$mode-$conns]=$(median <"$T/$mode-$conns.p50")
  done
done

{
  printf 'front door: HTTP API route (anonymous GET, format 2.0) vs Lambda Invoke (SigV4), same warm function\n'
  printf '%-8s %-7s %12s %10s %10s %14s\n' clients path req_s p50_ms p99_ms route/invoke
  for conns in 1 8; do
    for mode in invoke route; do
      r=$(awk -v a="${OPS[route-$conns]}" -v b="${OPS[invoke-$conns]}" \
        'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2fx", a / b }')
      [ $mode = invoke ] && r=""
      printf '%-8s %-7s %12s %10s %10s %14s\n' "$conns" "$mode" "${OPS[$mode-$conns]}" \
        "${P50[$mode-$conns]}" "${P99[$mode-$conns]}" "$r"
    done
  done
  awk -v a="${P50[route-1]}" -v b="${P50[invoke-1]}" \
    'BEGIN { printf "p50 difference at 1 client (route - invoke): %.1f us\n", (a - b) * 1000 }'
} | tee "$OUT/apigw.txt"
