"""tests/e2e/duckdb_util.py -- DuckDB as the tests' reference engine.

DuckDB (its Node.js API, installed in tests/e2e/duckdb by
scripts/install-deps.sh) writes Parquet fixtures the way a user's tools
would, and reads back what tarn wrote, so results are checked against an
independent implementation rather than hard-coded answers.

    rows = duckdb(["COPY (SELECT 1 AS a) TO 'x.parquet' (FORMAT parquet)",
                   "SELECT * FROM 'x.parquet'"], cwd=tmp_path)[-1]

Each statement's rows come back as lists of text values (NULL as None).
"""
import json
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DUCKDB_DIR = os.path.join(HERE, "duckdb")


def available():
    return os.path.isdir(os.path.join(DUCKDB_DIR, "node_modules", "@duckdb", "node-api"))


def duckdb(statements, cwd=None, timeout=120):
    """Runs the statements in one in-memory DuckDB; returns each one's rows."""
    if not available():
        pytest.fail("DuckDB for the tests is not installed: run scripts/install-deps.sh "
                    "(npm install in tests/e2e/duckdb)")
    r = subprocess.run(["node", os.path.join(DUCKDB_DIR, "run.mjs")],
                       input=json.dumps(list(statements)), capture_output=True, text=True,
                       cwd=cwd, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("duckdb failed: %s" % r.stderr[-2000:])
    out = json.loads(r.stdout)
    if "error" in out:
        raise RuntimeError("duckdb statement %d failed: %s" % (out["index"], out["error"]))
    return out["results"]
