"""tests/e2e/test_apigw_ws.py -- WebSocket APIs: made with boto3's
apigatewayv2 client, used with Node's ws client (tests/e2e/ws/client.mjs)
and boto3's apigatewaymanagementapi client.

One function serves every route: $connect accepts (or rejects with 403
when the query says deny=1), $disconnect writes its event to a bucket, and
a message is answered through @connections with the function's own keys
(POST /@connections/{id}, SigV4 service execute-api). Checked: the route
selection ($request.body.action, else $default), the events' shape
(eventType, routeKey, connectionId, stage), a two-way route (route
response) answering with the function's body, fragmented messages, ping/pong,
GetConnection, PostToConnection and DeleteConnection from outside, 410 for
a gone connection, the 32 KB frame limit (close 1009), and that
$disconnect runs; a Lambda REQUEST authorizer on $connect (token in the
query string, IAM policy answer) whose context reaches later events; AWS_IAM
on $connect with a presigned URL.
"""
import base64
import json
import os
import queue
import subprocess
import threading
import time

import pytest

import lambda_util as lu

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "ws", "client.mjs")

HANDLER = r'''
import json, os
import boto3

def handler(event, context):
    rc = event["requestContext"]
    if rc["routeKey"] == "$connect":
        if (event.get("queryStringParameters") or {}).get("deny") == "1":
            return {"statusCode": 403}
        asked = (event.get("headers") or {}).get("sec-websocket-protocol")
        if asked:  # $connect picks the subprotocol
            return {"statusCode": 200,
                    "headers": {"Sec-WebSocket-Protocol": asked.split(",")[0].strip()}}
        return {"statusCode": 200}
    if rc["routeKey"] == "ping":  # a two-way route: the answer's body goes back
        return {"statusCode": 200, "body": "pong " + event["body"]}
    if rc["routeKey"] == "$disconnect":
        s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
        s3.put_object(Bucket=os.environ["BUCKET"], Key="disconnect/" + rc["connectionId"],
                      Body=json.dumps(event).encode())
        return {"statusCode": 200}
    endpoint = "%s/_tarn/apis/%s/%s" % (os.environ["AWS_ENDPOINT_URL"], rc["apiId"], rc["stage"])
    mgmt = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    reply = {"route": rc["routeKey"], "eventType": rc["eventType"], "body": event.get("body"),
             "stage": rc["stage"], "connectionId": rc["connectionId"],
             "domainName": rc["domainName"], "b64": event.get("isBase64Encoded"),
             "authorizer": rc.get("authorizer")}
    mgmt.post_to_connection(ConnectionId=rc["connectionId"], Data=json.dumps(reply).encode())
    return {"statusCode": 200}
'''


AUTHORIZER = r'''
def handler(event, context):
    token = (event.get("queryStringParameters") or {}).get("token")
    effect = "Allow" if token == "letmein" and event["type"] == "REQUEST" else "Deny"
    return {"principalId": "u-%s" % token,
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect,
                 "Resource": event["methodArn"]}]},
            "context": {"user": "u1", "route": event["requestContext"]["routeKey"]}}
'''


class Client:
    """A ws client in a node process; events() read with a deadline."""

    def __init__(self, url, headers=None, protocols=None):
        self.p = subprocess.Popen(["node", CLIENT, url, json.dumps(headers or {}),
                                   json.dumps(protocols or [])],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.q = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.q.put(json.loads(line))
        self.q.put({"event": "exit"})

    def send(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()

    def next(self, timeout=90):
        return self.q.get(timeout=timeout)

    def expect(self, kind, timeout=90):
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next(max(1, deadline - time.monotonic()))
            if ev["event"] == kind:
                return ev
            assert ev["event"] not in ("close", "exit", "rejected", "error"), ev

    def stop(self):
        try:
            self.p.kill()
        except OSError:
            pass
        self.p.wait()


@pytest.fixture(scope="module")
def gw(tarn):
    return tarn.service_client("apigatewayv2")


@pytest.fixture(scope="module")
def api(tarn, gw, s3):
    bucket = "ws-disconnects"
    s3.create_bucket(Bucket=bucket)
    lam = lu.lambda_client(tarn)
    fn = lu.create(lam, lu.unique_name("ws-fn"), lu.zip_files({"w.py": (HANDLER, 0o100644)}),
                   handler="w.handler", runtime="python3.11", Timeout=30,
                   Environment={"Variables": {"BUCKET": bucket}})["FunctionArn"]
    api_id = gw.create_api(Name="chat", ProtocolType="WEBSOCKET",
                           RouteSelectionExpression="$request.body.action")["ApiId"]
    integ = gw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=fn)
    target = "integrations/" + integ["IntegrationId"]
    for key in ["$connect", "$disconnect", "$default", "echo"]:
        gw.create_route(ApiId=api_id, RouteKey=key, Target=target)
    ping = gw.create_route(ApiId=api_id, RouteKey="ping", Target=target,
                           RouteResponseSelectionExpression="$default")
    gw.create_route_response(ApiId=api_id, RouteId=ping["RouteId"], RouteResponseKey="$default")
    gw.create_stage(ApiId=api_id, StageName="dev")
    return {"id": api_id, "bucket": bucket, "fn": fn, "lam": lam}


def ws_url(tarn, api_id, query=""):
    return "ws://127.0.0.1:%d/_tarn/apis/%s/dev%s" % (tarn.port, api_id, query)


def mgmt_client(tarn, api_id):
    return tarn.service_client("apigatewaymanagementapi",
                               endpoint="%s/_tarn/apis/%s/dev" % (tarn.endpoint, api_id))


def test_management(gw, api):
    got = gw.get_api(ApiId=api["id"])
    assert got["ProtocolType"] == "WEBSOCKET"
    assert got["RouteSelectionExpression"] == "$request.body.action"
    routes = gw.get_routes(ApiId=api["id"])["Items"]
    assert sorted(r["RouteKey"] for r in routes) == ["$connect", "$default", "$disconnect",
                                                      "echo", "ping"]
    ping = [r for r in routes if r["RouteKey"] == "ping"][0]
    assert ping["RouteResponseSelectionExpression"] == "$default"
    rrs = gw.get_route_responses(ApiId=api["id"], RouteId=ping["RouteId"])["Items"]
    assert [rr["RouteResponseKey"] for rr in rrs] == ["$default"]
    got = gw.get_route_response(ApiId=api["id"], RouteId=ping["RouteId"],
                                RouteResponseId=rrs[0]["RouteResponseId"])
    assert got["RouteResponseKey"] == "$default"
    other = [r for r in routes if r["RouteKey"] == "echo"][0]
    assert gw.get_route_responses(ApiId=api["id"], RouteId=other["RouteId"])["Items"] == []
    with pytest.raises(gw.exceptions.NotFoundException):
        gw.get_route_response(ApiId=api["id"], RouteId=other["RouteId"],
                              RouteResponseId=rrs[0]["RouteResponseId"])
    with pytest.raises(gw.exceptions.BadRequestException):
        gw.create_api(Name="bad", ProtocolType="WEBSOCKET", RouteSelectionExpression="action")


def test_messages_routes_and_connections(tarn, api, s3):
    c = Client(ws_url(tarn, api["id"]))
    try:
        c.expect("open")
        c.send(op="send", data=json.dumps({"action": "echo", "n": "000042"}))
        m = json.loads(c.expect("message")["data"])
        assert m["route"] == "echo" and m["eventType"] == "MESSAGE" and m["stage"] == "dev"
        assert json.loads(m["body"]) == {"action": "echo", "n": "000042"}
        conn_id = m["connectionId"]
        c.send(op="send", data="not json at all")
        m = json.loads(c.expect("message")["data"])
        assert m["route"] == "$default" and m["body"] == "not json at all"
        # a binary message reaches $default in base64, byte-exact
        raw = bytes(range(256))
        c.send(op="send", data=base64.b64encode(raw).decode(), binary=True)
        m = json.loads(c.expect("message")["data"])
        assert m["route"] == "$default" and m["b64"] is True
        assert base64.b64decode(m["body"]) == raw
        # a message in three fragments is one message
        c.send(op="fragments", parts=['{"action":', '"echo", "part', 's": 3}'])
        m = json.loads(c.expect("message")["data"])
        assert m["route"] == "echo" and json.loads(m["body"])["parts"] == 3
        # a two-way route answers the client with the function's body
        c.send(op="send", data='{"action": "ping"}')
        assert c.expect("message")["data"] == 'pong {"action": "ping"}'
        c.send(op="ping", data="hi")
        assert c.expect("pong")["data"] == "hi"
        # the management API from outside (the administrator's keys)
        mgmt = mgmt_client(tarn, api["id"])
        info = mgmt.get_connection(ConnectionId=conn_id)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        assert info["ConnectedAt"] <= info["LastActiveAt"]
        mgmt.post_to_connection(ConnectionId=conn_id, Data=b"from outside")
        assert c.expect("message")["data"] == "from outside"
        mgmt.delete_connection(ConnectionId=conn_id)
        assert c.expect("close")["code"] == 1000
        with pytest.raises(mgmt.exceptions.GoneException):
            mgmt.post_to_connection(ConnectionId=conn_id, Data=b"too late")
        # $disconnect ran with the DISCONNECT event
        key = "disconnect/" + conn_id
        deadline = time.monotonic() + 90
        while True:
            try:
                ev = json.loads(s3.get_object(Bucket=api["bucket"], Key=key)["Body"].read())
                break
            except s3.exceptions.NoSuchKey:
                assert time.monotonic() < deadline, "no $disconnect"
                time.sleep(0.2)
        assert ev["requestContext"]["eventType"] == "DISCONNECT"
        assert ev["requestContext"]["routeKey"] == "$disconnect"
        assert ev["requestContext"]["connectionId"] == conn_id
    finally:
        c.stop()


def test_connect_subprotocol(tarn, api):
    c = Client(ws_url(tarn, api["id"]), protocols=["chat.v2", "chat.v1"])
    try:
        assert c.expect("open") == {"event": "open", "protocol": "chat.v2"}
    finally:
        c.stop()


def test_connect_rejected(tarn, api):
    c = Client(ws_url(tarn, api["id"], "?deny=1"))
    try:
        assert c.next() == {"event": "rejected", "status": 403}
    finally:
        c.stop()


def test_frame_limit_and_unsigned_management(tarn, api):
    import requests
    c = Client(ws_url(tarn, api["id"]))
    try:
        c.expect("open")
        c.send(op="send", data="x" * (40 << 10))  # over 32 KB in one frame
        assert c.expect("close")["code"] == 1009
    finally:
        c.stop()
    r = requests.post("%s/_tarn/apis/%s/dev/@connections/abc" % (tarn.endpoint, api["id"]),
                      data=b"x", timeout=60)
    assert r.status_code == 403


def test_connect_authorizer(tarn, gw, api):
    authz = lu.create(api["lam"], lu.unique_name("ws-authz"),
                      lu.zip_files({"a.py": (AUTHORIZER, 0o100644)}),
                      handler="a.handler", runtime="python3.11", Timeout=30)["FunctionArn"]
    api_id = gw.create_api(Name="guarded", ProtocolType="WEBSOCKET",
                           RouteSelectionExpression="$request.body.action")["ApiId"]
    az = gw.create_authorizer(ApiId=api_id, Name="token", AuthorizerType="REQUEST",
                              AuthorizerUri=authz,
                              IdentitySource=["route.request.querystring.token"])
    target = "integrations/" + gw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=api["fn"])["IntegrationId"]
    gw.create_route(ApiId=api_id, RouteKey="$connect", Target=target,
                    AuthorizationType="CUSTOM", AuthorizerId=az["AuthorizerId"])
    gw.create_route(ApiId=api_id, RouteKey="$default", Target=target)
    gw.create_stage(ApiId=api_id, StageName="dev")
    for query, status in [("", 401), ("?token=bad", 403)]:
        c = Client(ws_url(tarn, api_id, query))
        try:
            assert c.next() == {"event": "rejected", "status": status}
        finally:
            c.stop()
    # by host name this time: Host <api-id>.execute-api.localhost
    c = Client("ws://127.0.0.1:%d/dev?token=letmein" % tarn.port,
               {"Host": "%s.execute-api.localhost:%d" % (api_id, tarn.port)})
    try:
        c.expect("open")
        c.send(op="send", data="hello")
        m = json.loads(c.expect("message")["data"])
        assert m["route"] == "$default"
        assert m["authorizer"] == {"user": "u1", "route": "$connect",
                                   "principalId": "u-letmein"}
        assert m["domainName"] == "%s.execute-api.localhost:%d" % (api_id, tarn.port)
    finally:
        c.stop()


def test_connect_with_iam(tarn, gw, api):
    """$connect with AWS_IAM: an unsigned upgrade is refused, a presigned
    URL (SigV4 in the query, service execute-api) opens."""
    import botocore.auth
    import botocore.credentials
    from botocore.awsrequest import AWSRequest
    api_id = gw.create_api(Name="iam", ProtocolType="WEBSOCKET",
                           RouteSelectionExpression="$request.body.action")["ApiId"]
    target = "integrations/" + gw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=api["fn"])["IntegrationId"]
    gw.create_route(ApiId=api_id, RouteKey="$connect", Target=target,
                    AuthorizationType="AWS_IAM")
    gw.create_route(ApiId=api_id, RouteKey="$default", Target=target)
    gw.create_stage(ApiId=api_id, StageName="dev")
    c = Client(ws_url(tarn, api_id))
    try:
        assert c.next() == {"event": "rejected", "status": 403}
    finally:
        c.stop()
    req = AWSRequest(method="GET", url="http://127.0.0.1:%d/_tarn/apis/%s/dev" % (tarn.port, api_id))
    creds = botocore.credentials.Credentials(tarn.access_key, tarn.secret_key)
    botocore.auth.SigV4QueryAuth(creds, "execute-api", "us-east-1", expires=300).add_auth(req)
    c = Client("ws" + req.url[4:])
    try:
        c.expect("open")
        c.send(op="send", data="signed")
        assert json.loads(c.expect("message")["data"])["body"] == "signed"
    finally:
        c.stop()
