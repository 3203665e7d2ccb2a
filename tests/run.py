#!/usr/bin/env python3
"""tests/run.py -- runs every test of tarn and prints one total line.

Unit tests are the cmocka programs of the test build (their TAP output is
counted case by case); end-to-end tests are the pytest suite in tests/e2e,
run against the test build's `tarn` binary. A few S3 files run a second time
with their servers' object bytes in a backend tarn (TARN_E2E_OBJECTS=1,
tests/e2e/tarnlib.py); `--objects` runs every S3 file that way instead (`make
test-objects`). The last line printed is `N passed, M failed`; the exit status
is non-zero when anything failed.

The machine's cores are used by `--jobs` workers (default: TARN_TEST_JOBS, else
2): unit programs run side by side, and the end-to-end files are shared out
file by file to that many pytest-xdist workers (`--dist loadfile`: a file's
tests, and its module-scoped server, stay in one worker; tests/e2e/tarnlib.py
gives each worker its own ports). `--jobs 1` runs everything in one process,
one after the other.
"""
import argparse
import concurrent.futures
import glob
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_program(prog, env):
    r = subprocess.run([prog], env=env, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    ok = len(re.findall(r"^ok \d+", out, re.M))
    bad = len(re.findall(r"^not ok \d+", out, re.M))
    if r.returncode != 0 and bad == 0:
        bad = 1  # crashed or sanitizer report outside a case
    return ok, bad, out


def run_unit(build, jobs=1):
    passed = failed = 0
    programs = sorted(glob.glob(os.path.join(build, "tests", "unit", "*", "test_*")))
    programs = [p for p in programs if os.access(p, os.X_OK) and not p.endswith(".p")]
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP",
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    # every program runs in its own process; results are printed in order
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = [pool.submit(_run_program, prog, env) for prog in programs]
        for prog, fut in zip(programs, results):
            ok, bad, out = fut.result()
            passed += ok
            failed += bad
            status = "ok" if bad == 0 else "FAILED"
            print(f"unit {os.path.basename(prog)}: {ok} passed, {bad} failed [{status}]",
                  flush=True)
            if bad:
                sys.stdout.write(out[-6000:])
    return passed, failed


def have_xdist():
    return importlib.util.find_spec("xdist") is not None


# Run again over an object backend by `make test` (about a minute); `make
# test-objects` runs every tests/e2e/test_s3_*.py file that way.
OBJECTS_SUBSET = ["test_s3_boto3.py", "test_s3_versioning.py", "test_s3_versioning_crash.py",
                  "test_s3_select.py"]


def run_e2e(build, files=None, objects=False, jobs=1):
    binary = os.path.abspath(os.path.join(build, "tarn"))
    e2e = os.path.join(ROOT, "tests", "e2e")
    with tempfile.TemporaryDirectory() as tmp:
        junit = os.path.join(tmp, "junit.xml")
        env = dict(os.environ, TARN_BIN=binary,
                   ASAN_OPTIONS="detect_leaks=0:abort_on_error=0",
                   PATH="/usr/bin:/bin:" + os.environ.get("PATH", ""))
        if objects:
            env["TARN_E2E_OBJECTS"] = "1"
        targets = [os.path.join(e2e, f) for f in files] if files else [e2e]
        cmd = ["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--junitxml", junit]
        if jobs > 1:
            cmd += ["-n", str(jobs), "--dist", "loadfile"]
        cmd += targets
        r = subprocess.run(cmd, env=env, cwd=ROOT)
        if not os.path.exists(junit):
            return 0, 1
        root = ET.parse(junit).getroot()
        suites = [root] if root.tag == "testsuite" else list(root)
        tests = fails = skips = 0
        for s in suites:
            tests += int(s.get("tests", 0))
            fails += int(s.get("failures", 0)) + int(s.get("errors", 0))
            skips += int(s.get("skipped", 0))
        if r.returncode not in (0, 1) and fails == 0:
            fails = 1
        return tests - fails - skips, fails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-test")
    ap.add_argument("--unit-only", action="store_true")
    ap.add_argument("--e2e-only", action="store_true")
    ap.add_argument("--objects", action="store_true",
                    help="only the S3 end-to-end files, over an object backend")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("TARN_TEST_JOBS") or 2),
                    help="unit programs and pytest workers run at once (default 2)")
    args = ap.parse_args()
    jobs = max(1, args.jobs)
    e2e_jobs = jobs
    if jobs > 1 and not have_xdist():
        print("pytest-xdist is not installed (python3-pytest-xdist): end-to-end tests "
              "run in one process")
        e2e_jobs = 1
    passed = failed = 0
    if args.objects:
        files = sorted(os.path.basename(f)
                       for f in glob.glob(os.path.join(ROOT, "tests", "e2e", "test_s3_*.py")))
        passed, failed = run_e2e(args.build, files, objects=True, jobs=e2e_jobs)
        print(f"{passed} passed, {failed} failed (objects in a backend tarn)")
        return 1 if failed else 0
    if not args.e2e_only:
        p, f = run_unit(args.build, jobs)
        passed += p
        failed += f
    if not args.unit_only:
        p, f = run_e2e(args.build, jobs=e2e_jobs)
        passed += p
        failed += f
        p, f = run_e2e(args.build, OBJECTS_SUBSET, objects=True, jobs=e2e_jobs)
        print(f"over an object backend: {p} passed, {f} failed")
        passed += p
        failed += f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
