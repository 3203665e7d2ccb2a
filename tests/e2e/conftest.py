"""tests/e2e/conftest.py -- pytest fixtures of the end-to-end suite.

Each test module gets its own `tarn server` (module scope, for speed) on a
free port with a temporary data directory, started with fixed test
credentials; tests get unique bucket names so they never see each other's
objects. At teardown the server is stopped with SIGTERM and must exit 0: a
clean shutdown is part of the contract. Tests that kill or restart servers
(the crash test) make their own through `tarn_factory`.

The server binary is $TARN_BIN (default: build-test/tarn of this repo).
"""
import os

import pytest

import tarnlib
from tarnlib import Tarn, unique_bucket_name


def pytest_report_header(config):
    return "tarn binary: %s" % tarnlib.TARN_BIN


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in tarnlib.live_servers():
            rep.sections.append(("tarn server on port %d" % srv.port, srv.logs(40)))


# The files that take longest, run first when tests/run.py shares the files
# out to several workers (pytest-xdist, --dist loadfile hands them out in
# this order), so that no worker is left running a long one at the end. The
# order of the tests inside a file, and of every other file, is unchanged.
SLOW_FILES_FIRST = [
    "test_scale_10k.py", "test_demo.py", "test_count_distinct.py", "test_events_esm.py",
    "test_athena.py", "test_sandbox_escape.py", "test_lambda_java.py", "test_crash.py",
    "test_iam.py", "test_dynamodb.py", "test_hostile_sql.py", "test_console.py",
    "test_lake_engines.py", "test_events.py", "test_events_async.py", "test_fn_cli.py",
    "test_firehose.py", "test_hostile_edge.py", "test_s3_boto3.py", "test_lambda.py",
    "test_lambda_layers.py", "test_rds_data.py", "test_states_tasks.py", "test_sqs.py",
]


def pytest_collection_modifyitems(session, config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.fspath)), len(rank)))


def _start(workdir, **kw):
    if not os.access(tarnlib.TARN_BIN, os.X_OK):
        pytest.fail("tarn binary not found at %s (set TARN_BIN)" % tarnlib.TARN_BIN)
    return Tarn(workdir, **kw).start()


@pytest.fixture(scope="module")
def tarn(tmp_path_factory):
    """A running server for the whole module."""
    srv = _start(tmp_path_factory.mktemp("tarn"))
    yield srv
    srv.stop_clean()


@pytest.fixture(scope="module")
def s3(tarn):
    return tarn.client()


@pytest.fixture
def bucket_name(request):
    """A fresh, valid, not yet created bucket name."""
    return unique_bucket_name(request.node.name)


@pytest.fixture
def bucket(s3, bucket_name):
    """A new empty bucket, created with boto3."""
    s3.create_bucket(Bucket=bucket_name)
    return bucket_name


@pytest.fixture
def tarn_factory(tmp_path_factory):
    """Makes servers of the test's own (for restarts, kill -9, credentials);
    any still running at the end must stop cleanly."""
    made = []

    def make(start=True, **kw):
        workdir = tmp_path_factory.mktemp("tarn")
        srv = Tarn(workdir, **kw)
        made.append(srv)
        if start:
            if not os.access(tarnlib.TARN_BIN, os.X_OK):
                pytest.fail("tarn binary not found at %s (set TARN_BIN)" % tarnlib.TARN_BIN)
            srv.start()
        return srv

    yield make
    errors = []
    for srv in made:
        if srv.running():
            rc = srv.stop()
            if rc != 0:
                errors.append("server on port %d exited with %r on SIGTERM\n%s"
                              % (srv.port, rc, srv.logs()))
    assert not errors, "\n".join(errors)
