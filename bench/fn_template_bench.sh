#!/usr/bin/env bash
# bench/fn_template_bench.sh -- per-function templates (issue 14): cold starts
# of one Python function when they are forks of a process that already
# imported its handler (TARN_FN_TEMPLATES=4) against cold starts that import
# it themselves (TARN_FN_TEMPLATES=0), both with the default instance pool,
# as paired runs on the same machine, with `python3 -c pass` as the floor.
#
# Two servers at once, both with TARN_TRACE_STARTS. On each, one function
# (python3.11, through the runtime zygote) whose module imports json, uuid,
# decimal, datetime and logging (and boto3 with BENCH_BOTO3=1). Its first
# invocation is its first cold start (no template yet); after
# $TMPL_SETTLE_S (1) s, $TMPL_COLD (20) rounds: each round makes one cold
# start on each server in turn, then runs `python3 -c pass` once. A cold
# start of the same function is forced as the tests do: every instance the
# function has is held busy ($TMPL_HOLD_S, 1.5 s, by invocations sent
# $TMPL_LEAD_S, 0.4 s, ahead), and the timed Invoke (boto3, no retries)
# finds none idle. An instance id drawn at its first invocation tells a cold
# start from a warm one (a warm one is not counted, and the round is
# retried); the module's TOKEN, shared by forks of one template, counts the
# cold starts that were forks. Prints p50/p90 of the timed Invoke for each
# server and for the floor (python3 -c pass; node -e 0 with
# BENCH_RUNTIME=node, whose handler requires crypto, util and url), the
# ratios, then both traces' phases
# (bench/fn_phases.py). The table also goes to bench/out/fn_template.txt.
#
# Usage: BUILD=build bench/fn_template_bench.sh   (TARN=build-test/tarn works too)
set -euo pipefail
BENCH_NAME=fn-template
source "$(dirname "$0")/lib.sh"

COLD=${TMPL_COLD:-20}
HOLD=${TMPL_HOLD_S:-1.5}
LEAD=${TMPL_LEAD_S:-0.4}
SETTLE=${TMPL_SETTLE_S:-1}
[ -x "$TARN" ] || { say "no tarn binary at '$TARN' (set TARN)"; exit 1; }
/usr/bin/python3 -c 'import boto3' 2>/dev/null || { say "needs python3-boto3"; exit 1; }
bench_tmp

declare -A PORTS
start() { # NAME TEMPLATES
  local port
  port=$(bench_free_port)
  TARN_FN_TEMPLATES=$2 TARN_TRACE_STARTS=$T/trace-$1 TARN_ACCESS_KEY=$AK TARN_SECRET_KEY=$SK \
    "$TARN" server --data "$T/data-$1" --listen "127.0.0.1:$port" >>"$T/tarn-$1.log" 2>&1 &
  bench_track $!
  bench_wait_up "http://127.0.0.1:$port/_tarn/health"
  PORTS[$1]=$port
}
start on 4
start off 0
say "$("$TARN" version), servers on ports ${PORTS[on]} (templates) and ${PORTS[off]} (none)"
say "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

AK=$AK SK=$SK COLD=$COLD HOLD=$HOLD LEAD=$LEAD SETTLE=$SETTLE BENCH_BOTO3=${BENCH_BOTO3:-0} \
  BENCH_RUNTIME=${BENCH_RUNTIME:-python} \
  /usr/bin/python3 - "${PORTS[on]}" "${PORTS[off]}" <<'PY' | tee "$OUT/fn_template.txt"
import io, json, os, statistics, subprocess, sys, threading, time, zipfile

import boto3
from botocore.config import Config

ON, OFF = sys.argv[1], sys.argv[2]
COLD, HOLD, LEAD = int(os.environ["COLD"]), float(os.environ["HOLD"]), float(os.environ["LEAD"])
NODE = os.environ["BENCH_RUNTIME"] == "node"
if NODE:
    RUNTIME, FILE, FLOOR = "nodejs20.x", "index.js", ["/usr/bin/node", "-e", "0"]
    HANDLER = """const crypto = require('crypto'); const util = require('util'); const url = require('url');
const TOKEN = crypto.randomUUID();
let iid;
exports.handler = async (event) => {
  if (!iid) iid = crypto.randomUUID();
  if (event.hold) await new Promise((r) => setTimeout(r, event.hold * 1000));
  return {iid, token: TOKEN};
};
"""
else:
    RUNTIME, FILE, FLOOR = "python3.11", "app.py", ["/usr/bin/python3", "-c", "pass"]
    HANDLER = """import datetime, decimal, json, logging, time, uuid
%s
TOKEN = uuid.uuid4().hex
_IID = []

def handler(event, context):
    if not _IID:
        _IID.append(uuid.uuid4().hex)
    if event.get("hold"):
        time.sleep(event["hold"])
    return {"iid": _IID[0], "token": TOKEN}
""" % ("import boto3" if os.environ["BENCH_BOTO3"] == "1" else "")
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    info = zipfile.ZipInfo(FILE, date_time=(2024, 1, 1, 0, 0, 0))
    info.external_attr = 0o100644 << 16
    z.writestr(info, HANDLER)
ZIP = buf.getvalue()


class Server:
    def __init__(self, label, port):
        self.label = label
        self.lam = boto3.session.Session().client(
            "lambda", endpoint_url="http://127.0.0.1:%s" % port, region_name="us-east-1",
            aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
            config=Config(retries={"total_max_attempts": 1}, read_timeout=120,
                          max_pool_connections=COLD + 16))
        self.name = "tmplbench-%d" % os.getpid()
        self.lam.create_function(FunctionName=self.name, Runtime=RUNTIME,
                                 Handler=FILE.split(".")[0] + ".handler", Timeout=60, Code={"ZipFile": ZIP},
                                 Role="arn:aws:iam::000000000000:role/bench")
        self.tokens = {}   # instance id -> its module's TOKEN
        self.ms = []       # timed cold starts
        self.cold_tokens = []
        self.warm_retries = 0

    def invoke(self, event):
        t = time.perf_counter()
        r = self.lam.invoke(FunctionName=self.name, Payload=json.dumps(event).encode())
        body = json.loads(r["Payload"].read())
        ms = (time.perf_counter() - t) * 1000
        if "FunctionError" in r:
            sys.exit("%s: invocation failed: %s" % (self.label, body))
        self.tokens.setdefault(body["iid"], body["token"])
        return ms, body

    def first(self):
        ms, _ = self.invoke({})
        self.first_ms = ms

    def cold(self):
        """Holds every instance busy, then times one Invoke: a cold start."""
        while True:
            held = [threading.Thread(target=self.invoke, args=({"hold": HOLD},))
                    for _ in range(len(self.tokens))]
            for t in held:
                t.start()
            time.sleep(LEAD)
            known = set(self.tokens)
            ms, body = self.invoke({})
            for t in held:
                t.join()
            if body["iid"] not in known:
                self.ms.append(ms)
                self.cold_tokens.append(body["token"])
                return
            self.warm_retries += 1   # a holder was late: not a cold start

    def forks(self):
        count = {}
        for tok in self.tokens.values():
            count[tok] = count.get(tok, 0) + 1
        return sum(1 for tok in self.cold_tokens if count[tok] > 1)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


on, off = Server("TARN_FN_TEMPLATES=4", ON), Server("TARN_FN_TEMPLATES=0", OFF)
on.first()
off.first()
time.sleep(float(os.environ["SETTLE"]))
floor = []
env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}   # as a function's, not the caller's
for i in range(COLD):
    for s in ((on, off) if i % 2 == 0 else (off, on)):
        s.cold()
    t = time.perf_counter()
    subprocess.run(FLOOR, env=env, check=True)
    floor.append((time.perf_counter() - t) * 1000)

if NODE:
    what = "Node.js function (nodejs20.x, requires crypto util url)"
else:
    what = "Python function (python3.11, imports json uuid decimal datetime logging%s)" % (
        " boto3" if os.environ["BENCH_BOTO3"] == "1" else "")
print("cold starts of one %s, %d per server, interleaved; load %s" % (
    what, COLD, open("/proc/loadavg").read().split()[0]))
print("%-22s %9s %9s" % ("", "p50 ms", "p90 ms"))
for s in (on, off):
    print("%-22s %9.1f %9.1f   first cold start %.1f ms; %d of %d timed starts were forks of a "
          "template%s" % (s.label, statistics.median(s.ms), pct(s.ms, 0.9), s.first_ms,
                          s.forks(), len(s.ms),
                          ", %d warm retries" % s.warm_retries if s.warm_retries else ""))
FLOOR_NAME = " ".join(FLOOR).replace("/usr/bin/", "")
print("%-22s %9.1f %9.1f" % (FLOOR_NAME, statistics.median(floor), pct(floor, 0.9)))
r = lambda a, b: "%.2fx" % (a / b) if b else "-"
print("ratios (p50, p90): templates / none %s %s; templates / floor %s %s; "
      "none / floor %s %s" % (
          r(statistics.median(on.ms), statistics.median(off.ms)), r(pct(on.ms, .9), pct(off.ms, .9)),
          r(statistics.median(on.ms), statistics.median(floor)), r(pct(on.ms, .9), pct(floor, .9)),
          r(statistics.median(off.ms), statistics.median(floor)), r(pct(off.ms, .9), pct(floor, .9))))
PY
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

for srv in on off; do
  echo "== phases, TARN_FN_TEMPLATES=$([ $srv = on ] && echo 4 || echo 0)"
  [ -s "$T/trace-$srv" ] && /usr/bin/python3 "$ROOT/bench/fn_phases.py" "$T/trace-$srv" ||
    echo "(no trace)"
done
