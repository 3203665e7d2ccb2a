"""tests/e2e/test_hostile_ssrf.py -- a caller must not make tarn connect, on
its behalf, to what only the server can reach (loopback services, the cloud
metadata endpoint, the private network): the egress policy of
src/base/netpolicy.h, applied to SNS HTTP/HTTPS subscriptions.

The server of this module runs WITHOUT an allowance (no TARN_ALLOW_ENDPOINTS,
no --allow-endpoint). A raw TCP listener on loopback stands for the service
the caller wants to reach; whether it was ever connected to is what a user
would check.

Invariants:
  (1) Waits are polls with a deadline (the server's log line that says the
      delivery was refused), never fixed sleeps.
  (2) Every negative check has a positive control: with the host allowed,
      the same listener does receive the delivery.
"""
import os
import socket
import subprocess
import time

import pytest
import requests
from botocore.exceptions import ClientError

import tarnlib
from queue_util import client, unique


class Listener:
    """A TCP listener on 127.0.0.1 that records who connected."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self, timeout=0.0):
        """Connections accepted so far, waiting up to timeout for the first."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn, _ = self.sock.accept()
                got.append(conn)
                continue
            except BlockingIOError:
                pass
            if got or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        for c in got:
            c.close()
        return len(got)

    def close(self):
        self.sock.close()


def error(fn, **kw):
    """(code, HTTP status, message) of a call that must fail."""
    with pytest.raises(ClientError) as ei:
        fn(**kw)
    r = ei.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def wait_for_log(srv, needle, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in srv.logs(400):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A server with the default egress policy: nothing private allowed."""
    srv = tarnlib.Tarn(tmp_path_factory.mktemp("ssrf"), allow_endpoints=None).start()
    yield srv
    srv.stop_clean()


@pytest.fixture(scope="module")
def sns(strict):
    return client(strict, "sns")


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def test_subscribe_to_private_literals_refused(strict, sns, listener):
    arn = sns.create_topic(Name=unique("ssrf"))["TopicArn"]
    p = listener.port
    refused = [
        "http://127.0.0.1:%d/" % p,
        "http://[::1]:%d/" % p,
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "https://192.168.1.1/hook",
        "http://100.64.0.1/",
        "http://0.0.0.0:%d/" % p,
        "http://2130706433:%d/" % p,  # 127.0.0.1 as one number
        "http://127.1:%d/" % p,
        "http://[::ffff:127.0.0.1]:%d/" % p,
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://user@127.0.0.1:%d/" % p,
        "http://127.0.0.1:%d/" % strict.port,  # the server itself
    ]
    for url in refused:
        proto = url.split(":")[0]
        code, status, msg = error(sns.subscribe, TopicArn=arn, Protocol=proto, Endpoint=url)
        assert (code, status) == ("InvalidParameter", 400), url
        # the message names the policy and how an operator allows a host
        assert "--allow-endpoint" in msg, (url, msg)
    msg = error(sns.subscribe, TopicArn=arn, Protocol="http", Endpoint=refused[0])[2]
    assert "loopback" in msg, msg
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    assert listener.connections() == 0


def test_name_resolving_to_loopback_never_contacted(strict, sns, listener):
    arn = sns.create_topic(Name=unique("rebind"))["TopicArn"]
    url = "http://localhost:%d/ssrf" % listener.port
    # a name passes Subscribe (it is judged once resolved, at connect time)
    r = sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=url)
    assert r["SubscriptionArn"] == "pending confirmation"
    sns.publish(TopicArn=arn, Message="to loopback")
    # the confirmation attempt is refused, and the server says why
    assert wait_for_log(strict, "is a loopback address"), strict.logs(40)
    assert "localhost:%d" % listener.port in strict.logs(400)
    assert listener.connections(timeout=0.5) == 0
    r = requests.get(strict.endpoint + "/_tarn/health", timeout=10)
    assert r.status_code == 200 and strict.running()


def test_allowed_host_is_delivered(tarn_factory, listener):
    """The positive control of the test above: the same listener, allowed."""
    srv = tarn_factory(allow_endpoints="localhost:%d" % listener.port)
    sns = client(srv, "sns")
    arn = sns.create_topic(Name=unique("allowed"))["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://localhost:%d/" % listener.port)
    assert listener.connections(timeout=30) >= 1
    # an allowance names a host: other loopback ports stay refused
    code = error(sns.subscribe, TopicArn=arn, Protocol="http",
                 Endpoint="http://127.0.0.1:%d/" % listener.port)[0]
    assert code == "InvalidParameter"


def test_bad_allowance_refused_at_start(tmp_path):
    env = tarnlib.clean_env()
    for bad in ["host:99999", "[::1", "a b/c"]:
        p = subprocess.run([tarnlib.TARN_BIN, "server", "--data", str(tmp_path / "d"),
                            "--listen", "127.0.0.1:%d" % tarnlib.free_port(),
                            "--allow-endpoint", bad],
                           env=env, capture_output=True, timeout=30, text=True)
        assert p.returncode == 2, (bad, p.stderr)
        assert "--allow-endpoint" in p.stderr, p.stderr
    env["TARN_ALLOW_ENDPOINTS"] = "ok.test,:80"
    p = subprocess.run([tarnlib.TARN_BIN, "server", "--data", str(tmp_path / "d")],
                       env=env, capture_output=True, timeout=30, text=True)
    assert p.returncode == 2 and "TARN_ALLOW_ENDPOINTS" in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "d")


def test_redirects_are_not_followed(tarn_factory, listener):
    """An allowed endpoint that answers with a redirect to a refused address
    does not make tarn connect there."""
    import http.server
    import threading
    hits = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hits.append(self.headers.get("x-amz-sns-message-type"))
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:%d/stolen" % listener.port)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        port = httpd.server_address[1]
        srv = tarn_factory(allow_endpoints="localhost:%d" % port)
        sns = client(srv, "sns")
        arn = sns.create_topic(Name=unique("redirect"))["TopicArn"]
        sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://localhost:%d/" % port)
        deadline = time.monotonic() + 30
        while not hits and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hits, "the allowed endpoint was never contacted"
        # a second delivery reaches the endpoint after the first was answered
        sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://localhost:%d/2" % port)
        deadline = time.monotonic() + 30
        while len(hits) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(hits) >= 2
        assert listener.connections(timeout=0.5) == 0
        assert requests.get(srv.endpoint + "/_tarn/health", timeout=10).status_code == 200
    finally:
        httpd.shutdown()
        httpd.server_close()
