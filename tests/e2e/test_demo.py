"""tests/e2e/test_demo.py -- `make demo`'s script (examples/sales-pipeline/
run.sh) against the test server: it must run to its end with Debian's AWS
CLI, leave a cleaned copy of every sales file under clean/, one summary
message per file in the queue, and answer the slide-17 query with the
totals computed here from the sample data.
"""
import csv
import io
import os
import re
import subprocess

import tarnlib

ROOT = tarnlib.ROOT
SCRIPT = os.path.join(ROOT, "examples", "sales-pipeline", "run.sh")
DATA = os.path.join(ROOT, "examples", "sales-pipeline", "data")


def test_demo_script(tarn, s3, tmp_path):
    env = tarnlib.clean_env()
    env.update(TARN_ENDPOINT=tarn.endpoint, TARN_ACCESS_KEY=tarn.access_key,
               TARN_SECRET_KEY=tarn.secret_key, TARN=tarnlib.TARN_BIN,
               DEMO_BUCKET="demo-sales-lake", DEMO_QUEUE="demo-sales-cleaned",
               DEMO_FUNCTION="demo-clean-sales", TMPDIR=str(tmp_path))
    r = subprocess.run([SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "run.sh failed (%d)\n%s\n%s" % (r.returncode, r.stdout[-4000:],
                                                              r.stderr[-4000:])
    out = r.stdout
    files = sorted(os.listdir(DATA))

    # the cleaned copies, with the header the function writes
    keys = tarnlib.list_all_keys(s3, "demo-sales-lake", Prefix="clean/")
    assert keys == ["clean/" + f for f in files]
    rows = []
    for key in keys:
        text = s3.get_object(Bucket="demo-sales-lake", Key=key)["Body"].read().decode()
        table = list(csv.reader(io.StringIO(text)))
        assert table[0] == ["order_id", "custid", "year", "month", "gram", "count", "price"]
        rows.extend(table[1:])
    assert len(rows) == 14  # 3 of the 17 sample rows are not valid sales

    # what the script printed: events delivered, the function's log, the messages
    for f in files:
        assert re.search(r"demo-sales-lake/raw/%s .*-> function demo-clean-sales: delivered"
                         % re.escape(f), out), out
        assert "cleaned s3://demo-sales-lake/raw/%s -> clean/%s" % (f, f) in out
    messages = [l for l in out.splitlines() if l.startswith("message: ")]
    assert len(messages) == len(files)
    assert '"source": "raw/sales-2023-q4.csv", "cleaned": "clean/sales-2023-q4.csv", ' \
           '"rows": 5, "dropped": 2' in out

    # the slide-17 query: units bought by customer 157231, per year
    want = {}
    for row in rows:
        if row[1] == "157231":
            want[row[2]] = want.get(row[2], 0) + int(row[5])
    assert want == {"2023": 9, "2024": 17}
    got = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] == "157231":
            got[cells[1]] = int(cells[2])
    assert got == want, out[-2000:]
    assert "skipped" not in out
