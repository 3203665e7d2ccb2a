"""tests/e2e/test_apigw.py -- HTTP APIs (apigatewayv2) and Lambda function
URLs: definitions made with boto3 and Debian's AWS CLI, then plain HTTP
(requests and curl, no signature) to the invoke URLs, checking the event
the function received (payload formats 2.0 and 1.0) and how its answer
became the response; path variables, greedy routes, $default, named stages
and stage variables, API Gateway's 404/500/503, and that anonymous callers
reach only routes and URLs whose authorization is NONE.

One module server; one function (it answers by the path it is called on).
"""
import base64
import json
import subprocess

import botocore.auth
import botocore.awsrequest
import boto3
import pytest
import requests
from botocore.exceptions import ClientError

import lambda_util as lu
import tarnlib

HANDLER = r'''
import base64, json, time

def handler(event, context):
    path = event.get("rawPath") or event.get("path") or ""
    if path.endswith("/fail"):
        raise RuntimeError("boom")
    if path.endswith("/plain"):
        return {"hello": "world", "n": 1}
    if path.endswith("/binary"):
        return {"statusCode": 201, "isBase64Encoded": True,
                "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode()}
    if path.endswith("/bad"):
        return {"statusCode": "nope", "body": 5}
    if path.endswith("/slow"):
        time.sleep(4)
    if event.get("version") == "1.0":
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "multiValueHeaders": {"x-multi": ["a", "b"]},
                "body": json.dumps(event)}
    return {"statusCode": 200,
            "headers": {"content-type": "application/json", "x-custom": "yes"},
            "cookies": ["k1=v1; Path=/", "k2=v2"],
            "body": json.dumps(event)}
'''


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


@pytest.fixture(scope="module")
def gw(tarn):
    return tarn.service_client("apigatewayv2")


@pytest.fixture(scope="module")
def fn_arn(lam):
    name = lu.unique_name("apigw-echo")
    zipped = lu.zip_files({"gw.py": (HANDLER, 0o100644)})
    cfg = lu.create(lam, name, zipped, handler="gw.handler", runtime="python3.11", Timeout=10)
    return cfg["FunctionArn"]


@pytest.fixture(scope="module")
def api(gw, fn_arn):
    """An HTTP API with a 2.0 integration, four routes and the $default stage."""
    a = gw.create_api(Name="items", ProtocolType="HTTP")
    api_id = a["ApiId"]
    integ = gw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                  IntegrationUri=fn_arn, PayloadFormatVersion="2.0")
    target = "integrations/" + integ["IntegrationId"]
    for key in ["GET /items/{id}", "GET /items/special", "ANY /files/{proxy+}", "$default"]:
        gw.create_route(ApiId=api_id, RouteKey=key, Target=target)
    gw.create_route(ApiId=api_id, RouteKey="GET /secure", Target=target,
                    AuthorizationType="AWS_IAM")
    gw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True,
                    StageVariables={"env": "test"})
    return a


def url(tarn, api_id, path):
    return "%s/_tarn/apis/%s%s" % (tarn.endpoint, api_id, path)


def test_management_shapes(gw, api, fn_arn):
    got = gw.get_api(ApiId=api["ApiId"])
    assert got["Name"] == "items" and got["ProtocolType"] == "HTTP"
    assert got["ApiEndpoint"].endswith("/_tarn/apis/" + api["ApiId"])
    assert api["ApiId"] in [x["ApiId"] for x in gw.get_apis()["Items"]]
    routes = gw.get_routes(ApiId=api["ApiId"])["Items"]
    assert sorted(r["RouteKey"] for r in routes) == sorted(
        ["GET /items/{id}", "GET /items/special", "ANY /files/{proxy+}", "$default",
         "GET /secure"])
    r0 = routes[0]
    assert gw.get_route(ApiId=api["ApiId"], RouteId=r0["RouteId"])["RouteKey"] == r0["RouteKey"]
    integ = gw.get_integrations(ApiId=api["ApiId"])["Items"][0]
    assert integ["IntegrationUri"] == fn_arn and integ["PayloadFormatVersion"] == "2.0"
    stage = gw.get_stage(ApiId=api["ApiId"], StageName="$default")
    assert stage["AutoDeploy"] is True and stage["StageVariables"] == {"env": "test"}
    # errors in API Gateway's shapes, and nothing changes
    with pytest.raises(ClientError) as ei:
        gw.get_api(ApiId="nosuchapi0")
    assert ei.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as ei:
        gw.create_route(ApiId=api["ApiId"], RouteKey="GET /items/{id}")
    assert ei.value.response["Error"]["Code"] == "ConflictException"
    with pytest.raises(ClientError) as ei:
        gw.create_route(ApiId=api["ApiId"], RouteKey="FETCH /x")
    assert ei.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(ClientError) as ei:
        gw.delete_integration(ApiId=api["ApiId"], IntegrationId=integ["IntegrationId"])
    assert ei.value.response["Error"]["Code"] == "ConflictException"
    assert len(gw.get_routes(ApiId=api["ApiId"])["Items"]) == 5
    upd = gw.update_api(ApiId=api["ApiId"], Description="the items API")
    assert upd["Description"] == "the items API" and upd["Name"] == "items"


def test_deployments_are_records(gw, api):
    d = gw.create_deployment(ApiId=api["ApiId"], StageName="$default", Description="first")
    assert d["DeploymentStatus"] == "DEPLOYED" and d["Description"] == "first"
    assert d["DeploymentId"] in [x["DeploymentId"] for x in
                                 gw.get_deployments(ApiId=api["ApiId"])["Items"]]
    assert gw.get_stage(ApiId=api["ApiId"], StageName="$default")["DeploymentId"] == \
        d["DeploymentId"]
    with pytest.raises(ClientError) as ei:
        gw.create_deployment(ApiId=api["ApiId"], StageName="nostage")
    assert ei.value.response["Error"]["Code"] == "NotFoundException"


def test_event_v2_path_parameters_query_headers_cookies(tarn, api):
    r = requests.get(url(tarn, api["ApiId"], "/items/42?x=1&x=2&y=three"),
                     headers={"X-Custom-In": "a", "Cookie": "c1=v1; c2=v2",
                              "User-Agent": "apigw-test"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["x-custom"] == "yes"
    assert r.headers["content-type"] == "application/json"
    assert r.raw.headers.getlist("Set-Cookie") == ["k1=v1; Path=/", "k2=v2"]
    ev = r.json()
    assert ev["version"] == "2.0"
    assert ev["routeKey"] == "GET /items/{id}"
    assert ev["rawPath"] == "/items/42"
    assert ev["rawQueryString"] == "x=1&x=2&y=three"
    assert ev["queryStringParameters"] == {"x": "1,2", "y": "three"}
    assert ev["pathParameters"] == {"id": "42"}
    assert ev["stageVariables"] == {"env": "test"}
    assert ev["cookies"] == ["c1=v1", "c2=v2"]
    assert ev["headers"]["x-custom-in"] == "a"
    assert ev["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert ev["headers"]["x-forwarded-proto"] == "http"
    assert "cookie" not in ev["headers"]
    ctx = ev["requestContext"]
    assert ctx["apiId"] == api["ApiId"] and ctx["stage"] == "$default"
    assert ctx["http"]["method"] == "GET" and ctx["http"]["path"] == "/items/42"
    assert ctx["http"]["sourceIp"] == "127.0.0.1"
    assert ctx["http"]["userAgent"] == "apigw-test"
    assert ctx["requestId"] and ctx["time"] and ctx["timeEpoch"] > 1600000000000
    assert ev["isBase64Encoded"] is False and "body" not in ev


def test_exact_route_beats_variable_and_host_routing_with_curl(tarn, api):
    host = "%s.execute-api.localhost:%d" % (api["ApiId"], tarn.port)
    out = subprocess.run(["curl", "-s", "-H", "Host: " + host,
                          tarn.endpoint + "/items/special"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    ev = json.loads(out)
    assert ev["routeKey"] == "GET /items/special"
    assert "pathParameters" not in ev
    assert ev["requestContext"]["domainName"] == host


def test_greedy_route_binary_body(tarn, api):
    body = bytes(range(256)) * 4
    r = requests.post(url(tarn, api["ApiId"], "/files/a/b/c.bin"), data=body,
                      headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["routeKey"] == "ANY /files/{proxy+}"
    assert ev["pathParameters"] == {"proxy": "a/b/c.bin"}
    assert ev["isBase64Encoded"] is True
    assert base64.b64decode(ev["body"]) == body
    r = requests.put(url(tarn, api["ApiId"], "/files/x"), data="text body",
                     headers={"Content-Type": "text/plain"}, timeout=60)
    ev = r.json()
    assert ev["body"] == "text body" and ev["isBase64Encoded"] is False
    assert ev["requestContext"]["http"]["method"] == "PUT"


def test_default_route_plain_json_and_binary_answer(tarn, api):
    r = requests.get(url(tarn, api["ApiId"], "/nothing/here"), timeout=60)
    assert r.json()["routeKey"] == "$default"
    r = requests.get(url(tarn, api["ApiId"], "/plain"), timeout=60)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"hello": "world", "n": 1}
    r = requests.get(url(tarn, api["ApiId"], "/binary"), timeout=60)
    assert r.status_code == 201
    assert r.content == bytes(range(256))
    assert r.headers["content-type"] == "application/octet-stream"


def test_errors_404_500(tarn, api, gw, fn_arn):
    r = requests.get(url(tarn, api["ApiId"], "/fail"), timeout=60)
    assert r.status_code == 500 and r.json() == {"message": "Internal Server Error"}
    r = requests.get(url(tarn, api["ApiId"], "/bad"), timeout=60)
    assert r.status_code == 500 and r.json() == {"message": "Internal Server Error"}
    r = requests.get(url(tarn, "nosuchapi1", "/items/1"), timeout=60)
    assert r.status_code == 404 and r.json() == {"message": "Not Found"}
    # an API without $default: an unmatched path is API Gateway's 404
    a = gw.create_api(Name="narrow", ProtocolType="HTTP")
    i = gw.create_integration(ApiId=a["ApiId"], IntegrationType="AWS_PROXY",
                              IntegrationUri=fn_arn, PayloadFormatVersion="2.0")
    gw.create_route(ApiId=a["ApiId"], RouteKey="POST /only",
                    Target="integrations/" + i["IntegrationId"])
    gw.create_stage(ApiId=a["ApiId"], StageName="$default", AutoDeploy=True)
    r = requests.get(url(tarn, a["ApiId"], "/only"), timeout=60)
    assert r.status_code == 404 and r.json() == {"message": "Not Found"}
    assert requests.post(url(tarn, a["ApiId"], "/only"), timeout=60).status_code == 200
    gw.delete_api(ApiId=a["ApiId"])
    r = requests.post(url(tarn, a["ApiId"], "/only"), timeout=60)
    assert r.status_code == 404


def test_integration_timeout_is_503(tarn, gw, fn_arn):
    a = gw.create_api(Name="slow", ProtocolType="HTTP")
    i = gw.create_integration(ApiId=a["ApiId"], IntegrationType="AWS_PROXY",
                              IntegrationUri=fn_arn, PayloadFormatVersion="2.0",
                              TimeoutInMillis=1000)
    gw.create_route(ApiId=a["ApiId"], RouteKey="$default",
                    Target="integrations/" + i["IntegrationId"])
    gw.create_stage(ApiId=a["ApiId"], StageName="$default")
    r = requests.get(url(tarn, a["ApiId"], "/slow"), timeout=60)
    assert r.status_code == 503 and r.json() == {"message": "Service Unavailable"}


def test_iam_route_refuses_anonymous_and_takes_sigv4(tarn, api):
    u = url(tarn, api["ApiId"], "/secure")
    r = requests.get(u, timeout=60)
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    req = botocore.awsrequest.AWSRequest(method="GET", url=u)
    botocore.auth.SigV4Auth(tarn.credentials(), "execute-api", tarnlib.REGION).add_auth(req)
    r = requests.get(u, headers=dict(req.headers), timeout=60)
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["routeKey"] == "GET /secure"
    assert ev["requestContext"]["authorizer"]["iam"]["accessKey"] == tarn.access_key
    # a wrong secret is refused too
    req = botocore.awsrequest.AWSRequest(method="GET", url=u)
    botocore.auth.SigV4Auth(tarn.credentials(secret_key="wrong"), "execute-api",
                            tarnlib.REGION).add_auth(req)
    assert requests.get(u, headers=dict(req.headers), timeout=60).status_code == 403


def test_iam_route_asks_iam_for_other_callers(tarn, api):
    iam = boto3.session.Session().client(
        "iam", endpoint_url=tarn.endpoint, region_name=tarnlib.REGION,
        aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key)
    iam.create_user(UserName="apigw-caller")
    k = iam.create_access_key(UserName="apigw-caller")["AccessKey"]
    creds = tarn.credentials(k["AccessKeyId"], k["SecretAccessKey"])
    u = url(tarn, api["ApiId"], "/secure")

    def signed_get():
        req = botocore.awsrequest.AWSRequest(method="GET", url=u)
        botocore.auth.SigV4Auth(creds, "execute-api", tarnlib.REGION).add_auth(req)
        return requests.get(u, headers=dict(req.headers), timeout=60)

    r = signed_get()
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    arn = "arn:aws:execute-api:%s:000000000000:%s/*/GET/secure" % (tarnlib.REGION, api["ApiId"])
    iam.put_user_policy(UserName="apigw-caller", PolicyName="invoke", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": arn}]}))
    r = signed_get()
    assert r.status_code == 200, r.text
    assert r.json()["requestContext"]["authorizer"]["iam"]["accessKey"] == k["AccessKeyId"]


def test_named_stage_and_payload_format_1(tarn, gw, fn_arn):
    a = gw.create_api(Name="v1", ProtocolType="HTTP")
    i = gw.create_integration(ApiId=a["ApiId"], IntegrationType="AWS_PROXY",
                              IntegrationUri=fn_arn, PayloadFormatVersion="1.0")
    gw.create_route(ApiId=a["ApiId"], RouteKey="POST /orders/{oid}",
                    Target="integrations/" + i["IntegrationId"])
    gw.create_stage(ApiId=a["ApiId"], StageName="prod", StageVariables={"tier": "gold"})
    r = requests.post(url(tarn, a["ApiId"], "/prod/orders/9?q=1&q=2"), json={"n": 1},
                      headers={"X-Dup": "one"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.raw.headers.getlist("x-multi") == ["a", "b"]
    ev = r.json()
    assert ev["version"] == "1.0"
    assert ev["httpMethod"] == "POST"
    assert ev["resource"] == "/orders/{oid}"
    assert ev["path"] == "/prod/orders/9"
    assert ev["pathParameters"] == {"oid": "9"}
    assert ev["stageVariables"] == {"tier": "gold"}
    assert ev["queryStringParameters"] == {"q": "2"}
    assert ev["multiValueQueryStringParameters"] == {"q": ["1", "2"]}
    assert ev["headers"]["x-dup"] == "one"
    assert ev["multiValueHeaders"]["x-dup"] == ["one"]
    assert json.loads(ev["body"]) == {"n": 1} and ev["isBase64Encoded"] is False
    assert ev["requestContext"]["stage"] == "prod"
    assert ev["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    # without the stage segment there is no $default stage: 404
    assert requests.post(url(tarn, a["ApiId"], "/orders/9"), timeout=60).status_code == 404
    gw.update_stage(ApiId=a["ApiId"], StageName="prod", StageVariables={"tier": "silver"})
    r = requests.post(url(tarn, a["ApiId"], "/prod/orders/9"), timeout=60)
    assert r.json()["stageVariables"] == {"tier": "silver"}


def test_awscli_quick_create(tarn, fn_arn):
    out = tarn.aws_ok("apigatewayv2", "create-api", "--name", "x", "--protocol-type", "HTTP",
                      "--target", fn_arn, "--output", "json")
    a = json.loads(out.stdout)
    r = requests.get(a["ApiEndpoint"] + "/anything?z=1", timeout=60)
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["routeKey"] == "$default" and ev["rawPath"] == "/anything"
    assert ev["queryStringParameters"] == {"z": "1"}


def test_function_urls(tarn, lam, fn_arn):
    name = fn_arn.rsplit(":", 1)[1]
    cfg = lam.create_function_url_config(FunctionName=name, AuthType="NONE",
                                         Cors={"AllowOrigins": ["*"]})
    fu = cfg["FunctionUrl"]
    assert fu.startswith(tarn.endpoint + "/_tarn/urls/") and fu.endswith("/")
    assert cfg["AuthType"] == "NONE" and cfg["FunctionArn"] == fn_arn
    with pytest.raises(ClientError) as ei:
        lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert ei.value.response["Error"]["Code"] == "ResourceConflictException"
    got = lam.get_function_url_config(FunctionName=name)
    assert got["FunctionUrl"] == fu and got["Cors"] == {"AllowOrigins": ["*"]}
    assert [c["FunctionUrl"] for c in
            lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]] == [fu]
    r = requests.post(fu + "hello/world?a=b", data="hi", headers={"Content-Type": "text/plain"},
                      timeout=60)
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["version"] == "2.0" and ev["routeKey"] == "$default"
    assert ev["rawPath"] == "/hello/world" and ev["rawQueryString"] == "a=b"
    assert ev["body"] == "hi" and ev["requestContext"]["http"]["method"] == "POST"
    url_id = fu.rstrip("/").rsplit("/", 1)[1]
    assert ev["requestContext"]["apiId"] == url_id
    host = "%s.lambda-url.localhost:%d" % (url_id, tarn.port)
    out = subprocess.run(["curl", "-s", "-H", "Host: " + host, tarn.endpoint + "/via-host"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out)["rawPath"] == "/via-host"
    # AWS_IAM: anonymous refused, signed accepted
    upd = lam.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    assert upd["AuthType"] == "AWS_IAM" and upd["FunctionUrl"] == fu
    assert requests.get(fu + "x", timeout=60).status_code == 403
    req = botocore.awsrequest.AWSRequest(method="GET", url=fu + "x")
    botocore.auth.SigV4Auth(tarn.credentials(), "lambda", tarnlib.REGION).add_auth(req)
    assert requests.get(fu + "x", headers=dict(req.headers), timeout=60).status_code == 200
    lam.delete_function_url_config(FunctionName=name)
    assert requests.get(fu + "x", timeout=60).status_code == 404
    with pytest.raises(ClientError) as ei:
        lam.get_function_url_config(FunctionName=name)
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_cors_preflight_and_response_headers(tarn, gw, api):
    gw.update_api(ApiId=api["ApiId"], CorsConfiguration={
        "AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"],
        "AllowHeaders": ["content-type"], "ExposeHeaders": ["x-custom"], "MaxAge": 300})
    u = url(tarn, api["ApiId"], "/items/1")
    r = requests.options(u, headers={"Origin": "https://app.example",
                                     "Access-Control-Request-Method": "GET"}, timeout=60)
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-allow-methods"] == "GET, POST"
    assert r.headers["access-control-max-age"] == "300"
    r = requests.get(u, headers={"Origin": "https://app.example"}, timeout=60)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-expose-headers"] == "x-custom"
    r = requests.get(u, headers={"Origin": "https://evil.example"}, timeout=60)
    assert "access-control-allow-origin" not in r.headers


def test_deleting_a_function_deletes_its_url(tarn, lam):
    name = lu.unique_name("apigw-gone")
    lu.create(lam, name, lu.zip_files({"gw.py": (HANDLER, 0o100644)}), handler="gw.handler",
              runtime="python3.11")
    fu = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    assert requests.get(fu, timeout=60).status_code == 200
    lam.delete_function(FunctionName=name)
    assert requests.get(fu, timeout=60).status_code == 404
    lu.create(lam, name, lu.zip_files({"gw.py": (HANDLER, 0o100644)}), handler="gw.handler",
              runtime="python3.11")
    fu2 = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    assert fu2 != fu and requests.get(fu2, timeout=60).status_code == 200


def test_anonymous_reaches_nothing_else(tarn, api):
    """No signature: the management API and other services stay closed;
    odd invoke paths are 404s; an oversized body is refused and the server
    goes on."""
    r = requests.get(tarn.endpoint + "/v2/apis", timeout=60)
    assert r.status_code == 403
    r = requests.post(tarn.endpoint + "/v2/apis", json={"name": "x", "protocolType": "HTTP"},
                      timeout=60)
    assert r.status_code == 403
    for path in ["/_tarn/apis/", "/_tarn/apis//items/1", "/_tarn/urls/nosuchurl/",
                 "/_tarn/urls/"]:
        r = requests.get(tarn.endpoint + path, timeout=60)
        assert r.status_code == 404, (path, r.status_code, r.text)
    r = requests.get(tarn.endpoint + "/_tarn/metrics",
                     headers={"Host": "%s.execute-api.localhost" % api["ApiId"]}, timeout=60)
    assert r.status_code == 200 and "tarn_requests_total" not in r.text  # the API's $default
    r = requests.post(url(tarn, api["ApiId"], "/files/big"), data=b"x" * (11 << 20),
                      headers={"Content-Type": "application/octet-stream"}, timeout=120)
    assert r.status_code == 413
    assert requests.get(url(tarn, api["ApiId"], "/items/1"), timeout=60).status_code == 200


def test_definitions_survive_kill9(tarn, gw, api):
    """Last in the module: an acknowledged definition survives kill -9."""
    s = gw.create_stage(ApiId=api["ApiId"], StageName="after", StageVariables={"k": "v"})
    assert s["StageName"] == "after"
    tarn.kill9()
    tarn.start()
    assert gw.get_stage(ApiId=api["ApiId"], StageName="after")["StageVariables"] == {"k": "v"}
    r = requests.get(url(tarn, api["ApiId"], "/after/items/5"), timeout=120)
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["requestContext"]["stage"] == "after" and ev["pathParameters"] == {"id": "5"}
