#!/usr/bin/env bash
# install-deps.sh -- install what building and testing tarn needs, from Debian's
# packages (and the npm registry for the JavaScript SDK and console tests). Only what is
# missing is installed, so a second run costs a few pkg-config calls.
set -eu

need=()
pc() { pkg-config --exists "$1" 2>/dev/null || need+=("$2"); }
cmd() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
py() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1 || need+=("$2"); }

cmd pkg-config pkg-config
cmd cc gcc
cmd meson meson
cmd ninja ninja-build
pc libmicrohttpd libmicrohttpd-dev
pc lmdb liblmdb-dev
pc libcrypto libssl-dev
pc jansson libjansson-dev
pc expat libexpat1-dev
pc zlib zlib1g-dev
pc cmocka libcmocka-dev
pc libseccomp libseccomp-dev
pc libzstd libzstd-dev
pc snappy libsnappy-dev
pc liblz4 liblz4-dev
pc libbrotlidec libbrotli-dev
pc libpcre2-8 libpcre2-dev
pc libzip libzip-dev
pc libcurl libcurl4-openssl-dev
pc libpq libpq-dev                 # the Data API talks to PostgreSQL through libpq
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql)   # RDS clusters (PostgreSQL 15)
[ -f /usr/include/bzlib.h ] || need+=(libbz2-dev)   # no pkg-config file in Debian 12
cmd sqlite3 sqlite3
cmd zstd zstd
cmd zip zip
[ -x /usr/bin/aws ] || need+=(awscli)
[ -x /usr/bin/python3 ] || need+=(python3)
py pytest python3-pytest
py xdist python3-pytest-xdist   # tests/run.py shares the end-to-end files out to 2 workers
py boto3 python3-boto3
py requests python3-requests
py numpy python3-numpy          # packed into a layer by tests/e2e/test_lambda_layers.py
py pandas python3-pandas
py jwt python3-jwt              # signs tokens for tests/e2e/test_apigw_auth.py
py cryptography python3-cryptography
cmd node nodejs
cmd ruby ruby                   # the ruby3.x function runtimes (runtimes/ruby)
cmd javac openjdk-17-jdk-headless   # java17/java21 functions; builds runtimes/java's client
cmd npm npm
cmd curl curl
[ -x /usr/bin/chromium ] || need+=(chromium)   # the web console's browser tests (headless)

if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The JavaScript SDKs for the end-to-end tests live in tests/e2e/js*/node_modules,
# the console test's browser driver (playwright-core) in tests/e2e/console,
# an independent Parquet reader (hyparquet) in tests/e2e/lake, and s3rver (bench/), which
# the object backend's test also uses as an independent backend.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${TARN_SKIP_NPM:-}" != 1 ]; then
  for dir in "$here"/tests/e2e/js "$here"/tests/e2e/js-sqs "$here"/tests/e2e/js-dynamodb \
             "$here"/tests/e2e/js-streams "$here"/tests/e2e/duckdb "$here"/tests/e2e/console \
             "$here"/tests/e2e/ws "$here"/tests/e2e/lake "$here"/bench; do
    if [ -f "$dir/package.json" ] && [ ! -f "$dir/node_modules/.package-lock.json" ]; then
      echo "install-deps: npm install in ${dir#$here/}"
      (cd "$dir" && npm ci --no-audit --no-fund --silent >/dev/null 2>&1 \
         || npm install --no-audit --no-fund --silent >/dev/null)
    fi
  done
fi
exit 0
