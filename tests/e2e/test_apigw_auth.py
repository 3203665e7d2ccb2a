"""tests/e2e/test_apigw_auth.py -- HTTP API authorizers, made with boto3's
apigatewayv2 client and called with plain HTTP:

- JWT: tokens signed (RS256, PyJWT) with a key whose JWKS a test HTTP
  server on loopback publishes (allowed through --allow-endpoint); a
  missing, forged, expired or wrong-audience token answers 401
  {"message":"Unauthorized"}, a token without the route's scope 403
  {"message":"Forbidden"}; a good one reaches the function with its claims
  in requestContext.authorizer.jwt; the keys are fetched once and cached.
- Lambda REQUEST authorizers: payload 2.0 simple responses (context in
  requestContext.authorizer.lambda, results cached for the TTL by
  identity), payload 1.0 IAM-policy responses (Allow or Deny on the
  methodArn), a missing identity source answers 401 without a call.
"""
import http.server
import json
import threading
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

import lambda_util as lu

ECHO = r'''
import json

def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps(event)}
'''

AUTHORIZER = r'''
import time

def handler(event, context):
    if event.get("version") == "1.0" or "methodArn" in event:
        token = (event.get("headers") or {}).get("x-token", "")
        effect = "Allow" if token == "allow" else "Deny"
        return {"principalId": "user-" + token,
                "policyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Action": "execute-api:Invoke", "Effect": effect,
                     "Resource": event["methodArn"]}]},
                "context": {"via": "policy"}}
    token = event["identitySource"][0]
    return {"isAuthorized": token.startswith("allow"),
            "context": {"user": token, "n": time.time_ns(), "route": event["routeArn"]}}
'''


def b64u_int(n):
    import base64
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Issuer(http.server.BaseHTTPRequestHandler):
    jwks = None
    base = None
    fetches = 0

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/.well-known/openid-configuration":
            out = {"issuer": Issuer.base, "jwks_uri": Issuer.base + "/keys"}
        elif self.path == "/keys":
            Issuer.fetches += 1
            out = Issuer.jwks
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def issuer(key):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Issuer)
    Issuer.base = "http://127.0.0.1:%d" % srv.server_address[1]
    pub = key.public_key().public_numbers()
    Issuer.jwks = {"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                             "n": b64u_int(pub.n), "e": b64u_int(pub.e)}]}
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield Issuer.base
    srv.shutdown()


@pytest.fixture(scope="module")
def gw(tarn):
    return tarn.service_client("apigatewayv2")


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


@pytest.fixture(scope="module")
def api(gw, lam, issuer):
    echo = lu.create(lam, lu.unique_name("gw-echo"), lu.zip_files({"e.py": (ECHO, 0o100644)}),
                     handler="e.handler", runtime="python3.11", Timeout=10)["FunctionArn"]
    authz = lu.create(lam, lu.unique_name("gw-authz"),
                      lu.zip_files({"a.py": (AUTHORIZER, 0o100644)}),
                      handler="a.handler", runtime="python3.11", Timeout=10)["FunctionArn"]
    api_id = gw.create_api(Name="guarded", ProtocolType="HTTP")["ApiId"]
    target = "integrations/" + gw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=echo,
        PayloadFormatVersion="2.0")["IntegrationId"]
    target1 = "integrations/" + gw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=echo,
        PayloadFormatVersion="1.0")["IntegrationId"]
    j = gw.create_authorizer(ApiId=api_id, Name="jwt", AuthorizerType="JWT",
                             IdentitySource=["$request.header.Authorization"],
                             JwtConfiguration={"Issuer": issuer, "Audience": ["my-app"]})
    simple = gw.create_authorizer(
        ApiId=api_id, Name="simple", AuthorizerType="REQUEST", AuthorizerUri=authz,
        AuthorizerPayloadFormatVersion="2.0", EnableSimpleResponses=True,
        IdentitySource=["$request.header.x-token"], AuthorizerResultTtlInSeconds=300)
    policy = gw.create_authorizer(
        ApiId=api_id, Name="policy", AuthorizerType="REQUEST", AuthorizerUri=authz,
        AuthorizerPayloadFormatVersion="1.0", IdentitySource=["$request.header.x-token"],
        AuthorizerResultTtlInSeconds=0)
    gw.create_route(ApiId=api_id, RouteKey="GET /jwt", Target=target,
                    AuthorizationType="JWT", AuthorizerId=j["AuthorizerId"])
    gw.create_route(ApiId=api_id, RouteKey="GET /scoped", Target=target,
                    AuthorizationType="JWT", AuthorizerId=j["AuthorizerId"],
                    AuthorizationScopes=["read:pets"])
    gw.create_route(ApiId=api_id, RouteKey="GET /lambda", Target=target,
                    AuthorizationType="CUSTOM", AuthorizerId=simple["AuthorizerId"])
    gw.create_route(ApiId=api_id, RouteKey="GET /policy", Target=target1,
                    AuthorizationType="CUSTOM", AuthorizerId=policy["AuthorizerId"])
    gw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    return {"id": api_id, "jwt": j["AuthorizerId"], "simple": simple["AuthorizerId"]}


def url(tarn, api_id, path):
    return "%s/_tarn/apis/%s%s" % (tarn.endpoint, api_id, path)


def token(key, issuer, **over):
    now = int(time.time())
    claims = {"iss": issuer, "sub": "user1", "aud": "my-app", "iat": now, "exp": now + 600}
    claims.update(over)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def test_authorizer_management(gw, api, issuer):
    got = gw.get_authorizer(ApiId=api["id"], AuthorizerId=api["jwt"])
    assert got["AuthorizerType"] == "JWT"
    assert got["JwtConfiguration"] == {"Issuer": issuer, "Audience": ["my-app"]}
    names = sorted(a["Name"] for a in gw.get_authorizers(ApiId=api["id"])["Items"])
    assert names == ["jwt", "policy", "simple"]
    up = gw.update_authorizer(ApiId=api["id"], AuthorizerId=api["simple"], Name="simple2")
    assert up["Name"] == "simple2" and up["EnableSimpleResponses"] is True
    with pytest.raises(gw.exceptions.ConflictException):  # a route uses it
        gw.delete_authorizer(ApiId=api["id"], AuthorizerId=api["jwt"])
    extra = gw.create_authorizer(ApiId=api["id"], Name="spare", AuthorizerType="JWT",
                                 IdentitySource=["$request.header.Authorization"],
                                 JwtConfiguration={"Issuer": issuer, "Audience": ["x"]})
    gw.delete_authorizer(ApiId=api["id"], AuthorizerId=extra["AuthorizerId"])
    with pytest.raises(gw.exceptions.NotFoundException):
        gw.get_authorizer(ApiId=api["id"], AuthorizerId=extra["AuthorizerId"])
    with pytest.raises(gw.exceptions.BadRequestException):
        gw.create_route(ApiId=api["id"], RouteKey="GET /nope", AuthorizationType="JWT",
                        AuthorizerId="missing")


def test_jwt(tarn, api, key, issuer):
    u = url(tarn, api["id"], "/jwt")
    r = requests.get(u, timeout=60)
    assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}
    good = token(key, issuer, scope="read:pets write:pets")
    r = requests.get(u, headers={"Authorization": "Bearer " + good}, timeout=60)
    assert r.status_code == 200, r.text
    auth = r.json()["requestContext"]["authorizer"]["jwt"]
    assert auth["claims"]["sub"] == "user1" and auth["claims"]["aud"] == "my-app"
    assert auth["scopes"] == ["read:pets", "write:pets"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in [token(other, issuer),                      # forged
                token(key, issuer, exp=int(time.time()) - 10),  # expired
                token(key, issuer, aud="someone-else"),    # audience
                token(key, "http://elsewhere.example"),    # issuer
                "not-a-token"]:
        r = requests.get(u, headers={"Authorization": bad}, timeout=60)
        assert r.status_code == 401, (bad, r.text)
    assert Issuer.fetches == 1  # the keys are cached


def test_jwt_scopes(tarn, api, key, issuer):
    u = url(tarn, api["id"], "/scoped")
    r = requests.get(u, headers={"Authorization": token(key, issuer, scope="write:pets")},
                     timeout=60)
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    r = requests.get(u, headers={"Authorization": token(key, issuer, scp=["read:pets"])},
                     timeout=60)
    assert r.status_code == 200, r.text


def test_lambda_simple_responses_and_cache(tarn, api):
    u = url(tarn, api["id"], "/lambda")
    r = requests.get(u, timeout=60)
    assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}
    r = requests.get(u, headers={"x-token": "deny-me"}, timeout=60)
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    r1 = requests.get(u, headers={"x-token": "allow-1"}, timeout=60)
    assert r1.status_code == 200, r1.text
    ctx = r1.json()["requestContext"]["authorizer"]["lambda"]
    assert ctx["user"] == "allow-1"
    assert ctx["route"].endswith("/$default/GET/lambda")
    r2 = requests.get(u, headers={"x-token": "allow-1"}, timeout=60)
    assert r2.json()["requestContext"]["authorizer"]["lambda"]["n"] == ctx["n"]  # cached
    r3 = requests.get(u, headers={"x-token": "allow-2"}, timeout=60)
    assert r3.json()["requestContext"]["authorizer"]["lambda"]["n"] != ctx["n"]


def test_lambda_policy_responses(tarn, api):
    u = url(tarn, api["id"], "/policy")
    r = requests.get(u, headers={"x-token": "allow"}, timeout=60)
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["version"] == "1.0"
    assert ev["requestContext"]["authorizer"]["via"] == "policy"
    assert ev["requestContext"]["authorizer"]["principalId"] == "user-allow"
    r = requests.get(u, headers={"x-token": "nope"}, timeout=60)
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
