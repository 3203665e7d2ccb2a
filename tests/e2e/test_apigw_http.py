"""tests/e2e/test_apigw_http.py -- HTTP_PROXY integrations of HTTP APIs:
a route forwards the request (method, path variables, query, headers,
body) to a URL and relays the answer (status, headers, body) byte-exact;
requestParameters change headers, query and path on the way; the
integration's time-out answers 504; the outbound address policy refuses a
backend the server does not allow (loopback 127.0.0.2 is not in the test
server's --allow-endpoint list) before any byte reaches it.

The backend is a Python HTTP server on loopback (127.0.0.1 is allowed).
"""
import http.server
import json
import threading

import pytest
import requests


class Backend(http.server.BaseHTTPRequestHandler):
    seen = []

    def log_message(self, *a):
        pass

    def _any(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        Backend.seen.append({"method": self.command, "path": self.path,
                             "headers": {k.lower(): v for k, v in self.headers.items()},
                             "body": body})
        if self.path.startswith("/slow"):
            import time
            time.sleep(3)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        out = bytes(range(256)) if self.path.startswith("/bin") else json.dumps(
            {"method": self.command, "path": self.path}).encode()
        self.send_response(207)
        self.send_header("Content-Type", "application/octet-stream" if self.path.startswith("/bin")
                         else "application/json")
        self.send_header("X-Backend", "yes")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any


def serve(host):
    srv = http.server.ThreadingHTTPServer((host, 0), Backend)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def backend():
    srv = serve("127.0.0.1")
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()


@pytest.fixture(scope="module")
def gw(tarn):
    return tarn.service_client("apigatewayv2")


def route(gw, api_id, key, uri, method="ANY", **kw):
    integ = gw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY",
                                  IntegrationUri=uri, IntegrationMethod=method,
                                  PayloadFormatVersion="1.0", **kw)
    gw.create_route(ApiId=api_id, RouteKey=key, Target="integrations/" + integ["IntegrationId"])
    return integ


@pytest.fixture(scope="module")
def api(gw, backend):
    api_id = gw.create_api(Name="proxied", ProtocolType="HTTP")["ApiId"]
    route(gw, api_id, "ANY /pets/{proxy+}", backend + "/store/{proxy}")
    route(gw, api_id, "POST /params", backend + "/orig", method="POST",
          RequestParameters={"append:header.x-added": "static",
                             "overwrite:header.x-from-query": "$request.querystring.q",
                             "remove:header.x-drop": "''",
                             "overwrite:querystring.extra": "$context.requestId",
                             "overwrite:path": "/rewritten"})
    route(gw, api_id, "GET /slow", backend + "/slow", method="GET", TimeoutInMillis=500)
    route(gw, api_id, "GET /redirect", backend + "/redirect", method="GET")
    route(gw, api_id, "$default", backend, method="ANY")
    gw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    return api_id


def url(tarn, api_id, path):
    return "%s/_tarn/apis/%s%s" % (tarn.endpoint, api_id, path)


def test_management_shape(gw, api, backend):
    items = gw.get_integrations(ApiId=api)["Items"]
    greedy = [i for i in items if i["IntegrationUri"].endswith("{proxy}")][0]
    assert greedy["IntegrationType"] == "HTTP_PROXY"
    assert greedy["IntegrationMethod"] == "ANY"
    assert greedy["PayloadFormatVersion"] == "1.0"
    with pytest.raises(gw.exceptions.BadRequestException):
        gw.create_integration(ApiId=api, IntegrationType="HTTP_PROXY",
                              IntegrationUri="ftp://example.com/", IntegrationMethod="GET",
                              PayloadFormatVersion="1.0")
    with pytest.raises(gw.exceptions.BadRequestException):
        gw.create_integration(ApiId=api, IntegrationType="HTTP_PROXY", IntegrationUri=backend,
                              IntegrationMethod="GET", PayloadFormatVersion="1.0",
                              RequestParameters={"rewrite:header.x": "y"})


def test_forward_and_relay(tarn, api):
    Backend.seen.clear()
    body = bytes(range(256)) * 4
    r = requests.put(url(tarn, api, "/pets/dogs/rex?color=brown&n=000042"), data=body,
                     headers={"content-type": "application/octet-stream", "x-trace": "t1",
                              "authorization": "Bearer abc"}, timeout=60)
    assert r.status_code == 207, r.text
    assert r.headers["x-backend"] == "yes"
    assert r.json() == {"method": "PUT", "path": "/store/dogs/rex?color=brown&n=000042"}
    seen = Backend.seen[-1]
    assert seen["body"] == body
    assert seen["headers"]["x-trace"] == "t1"
    assert seen["headers"]["authorization"] == "Bearer abc"
    assert "127.0.0.1" in seen["headers"]["x-forwarded-for"]
    # binary answers come back byte-exact; $default appends the path
    r = requests.get(url(tarn, api, "/bin/x"), timeout=60)
    assert r.status_code == 207 and r.content == bytes(range(256))
    assert Backend.seen[-1]["path"] == "/bin/x"


def test_request_parameters(tarn, api):
    Backend.seen.clear()
    r = requests.post(url(tarn, api, "/params?q=fromq"), data=b"{}",
                      headers={"x-drop": "secret", "content-type": "application/json"},
                      timeout=60)
    assert r.status_code == 207, r.text
    seen = Backend.seen[-1]
    assert seen["path"].startswith("/rewritten?"), seen["path"]
    assert "q=fromq" in seen["path"] and "extra=" in seen["path"]
    assert seen["headers"]["x-added"] == "static"
    assert seen["headers"]["x-from-query"] == "fromq"
    assert "x-drop" not in seen["headers"]


def test_timeout_is_504_and_redirects_are_relayed(tarn, api):
    r = requests.get(url(tarn, api, "/slow"), timeout=60)
    assert r.status_code == 504
    assert r.json() == {"message": "Gateway Timeout"}
    r = requests.get(url(tarn, api, "/redirect"), allow_redirects=False, timeout=60)
    assert r.status_code == 302  # relayed as it came, never followed
    assert r.headers["location"] == "http://127.0.0.1:1/elsewhere"


def test_policy_refuses_an_address_not_allowed(tarn, gw):
    hidden = serve("127.0.0.2")  # loopback, but not in --allow-endpoint
    try:
        before = len(Backend.seen)
        api_id = gw.create_api(Name="hidden", ProtocolType="HTTP")["ApiId"]
        route(gw, api_id, "$default", "http://127.0.0.2:%d/" % hidden.server_address[1])
        gw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
        r = requests.get(url(tarn, api_id, "/anything"), timeout=60)
        assert r.status_code == 502
        assert r.json() == {"message": "Internal Server Error"}
        assert len(Backend.seen) == before  # nothing reached the backend
        # an unreachable (closed) port answers the same way
        api2 = gw.create_api(Name="closed", ProtocolType="HTTP")["ApiId"]
        route(gw, api2, "$default", "http://127.0.0.1:1/")
        gw.create_stage(ApiId=api2, StageName="$default", AutoDeploy=True)
        r = requests.get(url(tarn, api2, "/x"), timeout=60)
        assert r.status_code == 502
    finally:
        hidden.shutdown()
