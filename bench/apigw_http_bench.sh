#!/usr/bin/env bash
# bench/apigw_http_bench.sh -- HTTP_PROXY integrations: requests per second
# and latency of a GET through an HTTP API route whose integration is an
# HTTP URL, beside the same backend through nginx's proxy_pass (the peer)
# and the backend reached directly, in the same run, with 1 and 8 clients.
#
# Backend: the server's own /_tarn/health (a small JSON answer, no disk),
# allowed to the integration with --allow-endpoint 127.0.0.1:PORT. Client:
# bench/fn/fnload warm --url (C, one keep-alive connection per client).
# What tarn adds per request: the route, a thread off the HTTP pool and a
# new outbound connection (libcurl, through the address policy); nginx
# keeps its upstream connections alive.
#
# Environment: TARN (build/tarn), BUILD (build), APIGW_SECS (2),
# APIGW_ROUNDS (3). Output: bench/out/apigw-http.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
TARN=${TARN:-$BUILD/tarn}
SECS=${APIGW_SECS:-2}
ROUNDS=${APIGW_ROUNDS:-3}
OUT=$ROOT/bench/out
AK=benchaccesskey
SK=benchsecretkey0123456789
mkdir -p "$OUT"
say() { printf 'bench apigw-http: %s\n' "$*" >&2; }

[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD" bench/fn/fnload >"$OUT/apigw-http-build.log" 2>&1 ||
  { say "cannot build bench/fn (see bench/out/apigw-http-build.log)"; exit 1; }
FNLOAD=$BUILD/bench/fn/fnload
[ -x "$TARN" ] || { say "no tarn binary at '$TARN' (set TARN)"; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { say "nginx is not installed: skipped"; exit 0; }

T=$(mktemp -d /tmp/tarn-apigw-http-bench.XXXXXX)
PID=""
NPID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [ -n "$NPID" ]; then kill "$NPID" 2>/dev/null || true; fi
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$("$FNLOAD" freeport)
NPORT=$("$FNLOAD" freeport)
TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK "$TARN" server --data "$T/data" \
  --listen "127.0.0.1:$PORT" --allow-endpoint "127.0.0.1:$PORT" >"$T/tarn.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/_tarn/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/_tarn/health" >/dev/null ||
  { say "tarn does not answer on 127.0.0.1:$PORT"; tail -n 5 "$T/tarn.log" >&2; exit 1; }

mkdir -p "$T/nginx"
cat >"$T/nginx/nginx.conf" <<NG
worker_processes 2;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $T/nginx; proxy_temp_path $T/nginx; fastcgi_temp_path $T/nginx;
  uwsgi_temp_path $T/nginx; scgi_temp_path $T/nginx;
  upstream tarn { server 127.0.0.1:$PORT; keepalive 16; }
  server {
    listen 127.0.0.1:$NPORT;
    location /health {
      proxy_pass http://tarn/_tarn/health;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NG
"$NGINX" -c "$T/nginx/nginx.conf" -g 'daemon off;' 2>"$T/nginx/stderr" &
NPID=$!
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$NPORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done

export TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=us-east-1 \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
AWS="/usr/bin/aws --endpoint-url http://127.0.0.1:$PORT"
API=$($AWS apigatewayv2 create-api --name bench --protocol-type HTTP --query ApiId --output text)
INT=$($AWS apigatewayv2 create-integration --api-id "$API" --integration-type HTTP_PROXY \
  --integration-method GET --integration-uri "http://127.0.0.1:$PORT/_tarn/health" \
  --payload-format-version 1.0 --query IntegrationId --output text)
$AWS apigatewayv2 create-route --api-id "$API" --route-key 'GET /health' \
  --target "integrations/$INT" >/dev/null
$AWS apigatewayv2 create-stage --api-id "$API" --stage-name '$default' >/dev/null
ROUTE="/_tarn/apis/$API/health"
curl -sf "http://127.0.0.1:$PORT$ROUTE" | grep -q '"ok"' ||
  { say "the route does not answer"; tail -n 5 "$T/tarn.log" >&2; exit 1; }

LINE=""
run() {
  if ! LINE=$("$FNLOAD" "$@" 2>"$T/err"); then LINE=""; say "fnload failed: $(head -c 300 "$T/err")"; fi
}
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
median() { sort -g | awk '{v[NR]=$1} END { if (NR) print v[int((NR+1)/2)]; else print "-" }'; }

declare -A OPS P50 P99
MODES="direct nginx tarn"
for conns in 1 8; do
  for m in $MODES; do : >"$T/$m-$conns.ops"; : >"$T/$m-$conns.p50"; : >"$T/$m-$conns.p99"; done
  for _ in $(seq "$ROUNDS"); do
    for m in $MODES; do
      case $m in
        direct) run warm --port "$PORT" --function x --url /_tarn/health --conns "$conns" --duration "$SECS" ;;
        nginx) run warm --port "$NPORT" --function x --url /health --conns "$conns" --duration "$SECS" ;;
        tarn) run warm --port "$PORT" --function x --url "$ROUTE" --conns "$conns" --duration "$SECS" ;;
      esac
      kv "$LINE" ops_s >>"$T/$m-$conns.ops"
      kv "$LINE" p50_ms >>"$T/$m-$conns.p50"
      kv "$LINE" p99_ms >>"$T/$m-$conns.p99"
    done
  done
  for m in $MODES; do
    OPS[$m-$conns]=$(median <"$T/$m-$conns.ops")
    P50[$m-$conns]=$(median <"$T/$m-$conns.p50")
    P99[$m-$conns]=$(median <"$T/$m-$conns.p99")
  done
done

{
  printf 'HTTP_PROXY route vs nginx proxy_pass vs the backend directly (GET /_tarn/health)\n'
  printf '%-8s %-7s %10s %10s %10s %12s\n' clients path req_s p50_ms p99_ms tarn/nginx
  for conns in 1 8; do
    for m in $MODES; do
      r=""
      [ $m = tarn ] && r=$(awk -v a="${OPS[tarn-$conns]}" -v b="${OPS[nginx-$conns]}" \
        'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2fx", a / b }')
      printf '%-8s %-7s %10s %10s %10s %12s\n' "$conns" "$m" "${OPS[$m-$conns]}" \
        "${P50[$m-$conns]}" "${P99[$m-$conns]}" "$r"
    done
  done
} | tee "$OUT/apigw-http.txt"
