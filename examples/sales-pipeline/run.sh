#!/bin/sh
# examples/sales-pipeline/run.sh -- the seed talk ("Big data and serverless",
# slides 13-17) in one command, on tarn, with nothing but the AWS CLI:
#
#   1. a bucket for the lake, a queue for results
#   2. a Python function (zip + aws lambda create-function)
#   3. the bucket's uploads under raw/ wired to it (bucket notifications)
#   4. sales CSV files uploaded under raw/
#   5. the function cleans each one into clean/ and posts a summary to the queue
#   6. what happened: the event log, the function's log, the objects, the messages
#   7. a slide-17 style query over the cleaned data with `tarn sql`
#
# Usage: run.sh            starts a tarn of its own (a free port, a temporary
#                          data directory) and stops it at the end
#        TARN_ENDPOINT=http://127.0.0.1:9000 run.sh
#                          uses a running tarn; credentials from TARN_ACCESS_KEY /
#                          TARN_SECRET_KEY (or AWS_ACCESS_KEY_ID / ...)
# Settings: TARN (the binary, default build/tarn), AWS (default /usr/bin/aws),
#           DEMO_BUCKET, DEMO_QUEUE, DEMO_FUNCTION (names to use).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARN=${TARN:-$ROOT/build/tarn}
AWS=${AWS:-/usr/bin/aws}
PY=/usr/bin/python3
BUCKET=${DEMO_BUCKET:-sales-lake}
QUEUE=${DEMO_QUEUE:-sales-cleaned}
FUNCTION=${DEMO_FUNCTION:-clean-sales}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tarn-demo.XXXXXX")
SERVER_PID=

cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { echo "run.sh: $*" >&2; exit 1; }

[ -x "$TARN" ] || fail "no tarn binary at '$TARN' (run make, or set TARN)"
[ -x "$AWS" ] || fail "no AWS CLI at '$AWS' (apt-get install awscli, or set AWS)"

if [ -z "${TARN_ENDPOINT:-}" ]; then
  port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  TARN_ENDPOINT=http://127.0.0.1:$port
  TARN_ACCESS_KEY=DEMOACCESSKEY0000000
  TARN_SECRET_KEY=demo/secret+key/0123456789abcdefghijkl
  export TARN_ACCESS_KEY TARN_SECRET_KEY
  step "starting tarn on $TARN_ENDPOINT (data in $WORK/data)"
  "$TARN" server --data "$WORK/data" --listen "127.0.0.1:$port" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  tries=0
  until curl -fsS "$TARN_ENDPOINT/_tarn/health" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ $tries -lt 200 ] || { cat "$WORK/server.log" >&2; fail "tarn did not start"; }
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; fail "tarn exited"; }
    sleep 0.1
  done
fi
export TARN_ENDPOINT
export TARN_ACCESS_KEY=${TARN_ACCESS_KEY:-${AWS_ACCESS_KEY_ID:-}}
export TARN_SECRET_KEY=${TARN_SECRET_KEY:-${AWS_SECRET_ACCESS_KEY:-}}
[ -n "$TARN_ACCESS_KEY" ] && [ -n "$TARN_SECRET_KEY" ] ||
  fail "set TARN_ACCESS_KEY and TARN_SECRET_KEY for $TARN_ENDPOINT (see: tarn env)"
export AWS_ACCESS_KEY_ID=$TARN_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$TARN_SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_PAGER= AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
aws() { "$AWS" --endpoint-url "$TARN_ENDPOINT" "$@"; }

step "1. a bucket for the lake and a queue for the results"
aws s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1 || aws s3 mb "s3://$BUCKET"
QUEUE_URL=$(aws sqs create-queue --queue-name "$QUEUE" --query QueueUrl --output text)
echo "queue: $QUEUE_URL"

step "2. deploy the Python function '$FUNCTION' (function/clean_sales.py)"
(cd "$HERE/function" && $PY -m zipfile -c "$WORK/function.zip" clean_sales.py)
if aws lambda get-function --function-name "$FUNCTION" >/dev/null 2>&1; then
  aws lambda update-function-code --function-name "$FUNCTION" \
    --zip-file "fileb://$WORK/function.zip" --query FunctionArn --output text
else
  aws lambda create-function --function-name "$FUNCTION" --runtime python3.11 \
    --handler clean_sales.handler --role arn:aws:iam::000000000000:role/sales-pipeline \
    --zip-file "fileb://$WORK/function.zip" --timeout 30 \
    --environment "Variables={QUEUE_NAME=$QUEUE}" --query FunctionArn --output text
fi
FUNCTION_ARN=$(aws lambda get-function --function-name "$FUNCTION" \
  --query Configuration.FunctionArn --output text)

step "3. wire uploads under raw/*.csv to the function (put-bucket-notification-configuration)"
cat >"$WORK/notification.json" <<EOF
{"LambdaFunctionConfigurations": [{
   "Id": "clean-raw-sales",
   "LambdaFunctionArn": "$FUNCTION_ARN",
   "Events": ["s3:ObjectCreated:*"],
   "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "raw/"},
                                      {"Name": "suffix", "Value": ".csv"}]}}}]}
EOF
aws s3api put-bucket-notification-configuration --bucket "$BUCKET" \
  --notification-configuration "file://$WORK/notification.json"
aws s3api get-bucket-notification-configuration --bucket "$BUCKET" \
  --query 'LambdaFunctionConfigurations[].[Id, Events[0], Filter.Key.FilterRules[0].Value, Filter.Key.FilterRules[1].Value]' \
  --output text

step "4. upload the sales files under raw/"
aws s3 cp "$HERE/data/" "s3://$BUCKET/raw/" --recursive --no-progress
FILES=$(ls "$HERE/data" | wc -l)

step "5. the function cleans each file into clean/ (waiting for $FILES objects)"
tries=0
while :; do
  n=$(aws s3api list-objects-v2 --bucket "$BUCKET" --prefix clean/ \
    --query 'length(Contents || `[]`)' --output text)
  [ "$n" -ge "$FILES" ] 2>/dev/null && break
  tries=$((tries + 1))
  [ $tries -lt 240 ] || fail "only $n of $FILES files were cleaned after 2 minutes"
  sleep 0.5
done
echo "$n cleaned files"

step "6a. what happened: the event log (tarn events --once)"
"$TARN" events --once | grep -F "$BUCKET/" || true

step "6b. the function's log (tarn fn logs $FUNCTION)"
"$TARN" fn logs "$FUNCTION" | grep -E "^(START|END|REPORT)|cleaned " | tail -n 12

step "6c. the objects (aws s3 ls --recursive)"
aws s3 ls "s3://$BUCKET/" --recursive
first=$(ls "$HERE/data" | head -n 1)
echo "--- s3://$BUCKET/clean/$first"
aws s3 cp "s3://$BUCKET/clean/$first" -

step "6d. the messages in the queue '$QUEUE'"
seen=0
tries=0
while [ $seen -lt "$FILES" ] && [ $tries -lt 20 ]; do
  bodies=$(aws sqs receive-message --queue-url "$QUEUE_URL" --max-number-of-messages 10 \
    --wait-time-seconds 1 --visibility-timeout 60 --query 'Messages[].Body' --output text)
  if [ -n "$bodies" ] && [ "$bodies" != "None" ]; then
    printf '%s\n' "$bodies" | tr '\t' '\n' | sed 's/^/message: /'
    seen=$((seen + $(printf '%s\n' "$bodies" | tr '\t' '\n' | grep -c .)))
  fi
  tries=$((tries + 1))
done

step "7. the slide-17 query, over the cleaned files (tarn sql)"
SQL="SELECT custid, year, sum(count) AS count FROM 's3://$BUCKET/clean/*.csv' WHERE custid = 157231 GROUP BY custid, year ORDER BY year ASC"
echo "$SQL"
if ! "$TARN" sql "$SQL" 2>"$WORK/sql.err"; then
  echo "step 7 skipped: tarn sql failed: $(head -n 1 "$WORK/sql.err")"
else
  cat "$WORK/sql.err"
fi

step "done: s3://$BUCKET (raw/ and clean/), queue $QUEUE, function $FUNCTION"
