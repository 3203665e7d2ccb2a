"""tests/e2e/test_fn_pg_share.py -- what else two tarn nodes over one
PostgreSQL (`tarn server --metadata postgres://...`, here TARN_METADATA)
share about functions: Lambda layers (published on one node, read, listed,
permitted, deleted and stacked at /opt by a function on the other; version
numbers unique when both nodes publish at once), function URL
configurations (made on one node, served under the same id by the other,
deleted on one and served by neither), the sweep of code zips no function
or layer names any more, and an idle node's polling of the shared queue.
"""
import concurrent.futures
import json
import time

import pytest
import requests
from botocore.exceptions import ClientError

import lambda_util as lu
from pg_util import backend, pg, two_nodes  # noqa: F401 (fixtures)

ARN = "arn:aws:lambda:us-east-1:000000000000:layer:"

APP = r"""
import os, shared

def handler(event, context):
    return {"who": shared.WHO, "opt": sorted(os.listdir("/opt/python")), "event": event}
"""


def layer_zip(who):
    return lu.zip_files({"python/shared.py": ("WHO = %r\n" % who, 0o100644)})


def plain_zip(tag):
    return lu.zip_files({"app.py": ("def handler(event, context):\n    return {'tag': %r}\n"
                                    % tag, 0o100644)})


def app_zip(tag=""):
    return lu.zip_files({"app.py": (APP + "# %s\n" % tag, 0o100644)})


@pytest.fixture(scope="module")
def nodes(pg, backend, tmp_path_factory):
    """Two nodes; a short code grace so that the sweep is seen in a test."""
    yield from two_nodes(pg, backend, tmp_path_factory, prefix="fnshare",
                         extra={"TARN_FN_CODE_GRACE_SECONDS": "1"})


def create(lam, name, code, **kw):
    return lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                               Role="arn:aws:iam::000000000000:role/lambda-role",
                               Code={"ZipFile": code}, **kw)


def error(ei):
    return ei.value.response["Error"]["Code"]


def test_layer_published_on_a_runs_on_b(nodes):
    a, b = nodes
    la, lb = lu.lambda_client(a), lu.lambda_client(b)
    layer = lu.unique_name("shared-layer")
    pub = la.publish_layer_version(LayerName=layer, Content={"ZipFile": layer_zip("v1")},
                                   CompatibleRuntimes=["python3.11"], Description="000042")
    assert pub["Version"] == 1
    arn = pub["LayerVersionArn"]

    got = lb.get_layer_version(LayerName=layer, VersionNumber=1)
    assert got["LayerVersionArn"] == arn and got["Description"] == "000042"
    assert got["Content"]["CodeSha256"] == pub["Content"]["CodeSha256"]
    assert lb.get_layer_version_by_arn(Arn=arn)["Version"] == 1
    assert layer in [l["LayerName"] for l in lb.list_layers()["Layers"]]
    assert [v["Version"] for v in lb.list_layer_versions(LayerName=layer)["LayerVersions"]] == [1]

    # its policy, on either node
    add = la.add_layer_version_permission(LayerName=layer, VersionNumber=1, StatementId="all",
                                          Action="lambda:GetLayerVersion", Principal="*")
    pol = lb.get_layer_version_policy(LayerName=layer, VersionNumber=1)
    assert pol["RevisionId"] == add["RevisionId"]
    assert [s["Sid"] for s in json.loads(pol["Policy"])["Statement"]] == ["all"]
    lb.remove_layer_version_permission(LayerName=layer, VersionNumber=1, StatementId="all")
    with pytest.raises(ClientError) as ei:
        la.get_layer_version_policy(LayerName=layer, VersionNumber=1)
    assert error(ei) == "ResourceNotFoundException"

    # a function on B stacks it at /opt; A runs the same function
    name = lu.unique_name("layered")
    cfg = create(lb, name, app_zip(), Layers=[arn])
    assert [l["Arn"] for l in cfg["Layers"]] == [arn]
    _, body = lu.invoke(lb, name, {"k": "000042"})
    assert body == {"who": "v1", "opt": ["shared.py"], "event": {"k": "000042"}}
    _, body = lu.invoke(la, name)
    assert body["who"] == "v1"

    # a second version published on B, numbered after A's; A sees it
    pub2 = lb.publish_layer_version(LayerName=layer, Content={"ZipFile": layer_zip("v2")})
    assert pub2["Version"] == 2
    assert [v["Version"] for v in la.list_layer_versions(LayerName=layer)["LayerVersions"]] == \
        [2, 1]
    la.update_function_configuration(FunctionName=name, Layers=[pub2["LayerVersionArn"]])
    lb.get_waiter("function_updated_v2").wait(FunctionName=name)
    _, body = lu.invoke(lb, name)
    assert body["who"] == "v2"

    # deleted on B: gone on A, and the function keeps what it has
    lb.delete_layer_version(LayerName=layer, VersionNumber=2)
    with pytest.raises(ClientError) as ei:
        la.get_layer_version(LayerName=layer, VersionNumber=2)
    assert error(ei) == "ResourceNotFoundException"
    _, body = lu.invoke(la, name)
    assert body["who"] == "v2"
    with pytest.raises(ClientError) as ei:
        create(la, lu.unique_name("late"), app_zip(), Layers=[pub2["LayerVersionArn"]])
    assert error(ei) == "InvalidParameterValueException"
    # a deleted number is never given again
    assert la.publish_layer_version(LayerName=layer,
                                    Content={"ZipFile": layer_zip("v3")})["Version"] == 3


def test_concurrent_publishes_get_distinct_numbers(nodes):
    a, b = nodes
    clients = [lu.lambda_client(a), lu.lambda_client(b)]
    layer = lu.unique_name("race-layer")
    n = 8

    def publish(i):
        lam = clients[i % 2]
        return lam.publish_layer_version(LayerName=layer,
                                         Content={"ZipFile": layer_zip("r%d" % i)})["Version"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        numbers = list(ex.map(publish, range(n)))
    assert sorted(numbers) == list(range(1, n + 1))
    listed = clients[1].list_layer_versions(LayerName=layer)["LayerVersions"]
    assert sorted(v["Version"] for v in listed) == list(range(1, n + 1))

    # statements added at once on both nodes: each is kept or refused, never lost
    def permit(i):
        try:
            clients[i % 2].add_layer_version_permission(
                LayerName=layer, VersionNumber=1, StatementId="s%d" % i,
                Action="lambda:GetLayerVersion", Principal="*")
            return "s%d" % i
        except ClientError as e:
            assert e.response["Error"]["Code"] == "PreconditionFailedException", e.response
            return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        added = {sid for sid in ex.map(permit, range(n)) if sid}
    assert added
    pol = clients[0].get_layer_version_policy(LayerName=layer, VersionNumber=1)
    assert {st["Sid"] for st in json.loads(pol["Policy"])["Statement"]} == added


def url_id(fu):
    return fu.rstrip("/").rsplit("/", 1)[1]


def test_function_url_made_on_a_is_served_by_b(nodes):
    a, b = nodes
    la, lb = lu.lambda_client(a), lu.lambda_client(b)
    layer = lu.unique_name("url-layer")
    arn = la.publish_layer_version(LayerName=layer,
                                   Content={"ZipFile": layer_zip("url")})["LayerVersionArn"]
    name = lu.unique_name("with-url")
    create(la, name, app_zip("url"), Layers=[arn])
    made = la.create_function_url_config(FunctionName=name, AuthType="NONE",
                                         Cors={"AllowOrigins": ["*"]})
    uid = url_id(made["FunctionUrl"])
    assert made["FunctionUrl"].startswith(a.endpoint + "/_tarn/urls/")

    got = lb.get_function_url_config(FunctionName=name)
    assert got["FunctionUrl"] == "%s/_tarn/urls/%s/" % (b.endpoint, uid)
    assert got["Cors"] == {"AllowOrigins": ["*"]} and got["AuthType"] == "NONE"
    assert [url_id(c["FunctionUrl"]) for c in
            lb.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]] == [uid]
    with pytest.raises(ClientError) as ei:
        lb.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert error(ei) == "ResourceConflictException"

    # B serves it, by path and by host name
    r = requests.post(got["FunctionUrl"] + "x/y?q=1", data="000042", timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["who"] == "url"
    assert out["event"]["rawPath"] == "/x/y" and out["event"]["body"] == "000042"
    assert out["event"]["requestContext"]["apiId"] == uid
    r = requests.get(b.endpoint + "/via-host",
                     headers={"Host": "%s.lambda-url.localhost:%d" % (uid, b.port)}, timeout=60)
    assert r.status_code == 200 and r.json()["event"]["rawPath"] == "/via-host"

    # updated on B, seen by A; deleted on B, served by neither
    lb.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    assert la.get_function_url_config(FunctionName=name)["AuthType"] == "AWS_IAM"
    assert requests.get(made["FunctionUrl"] + "x", timeout=60).status_code == 403
    lb.delete_function_url_config(FunctionName=name)
    for node in (a, b):
        assert requests.get("%s/_tarn/urls/%s/x" % (node.endpoint, uid),
                            timeout=60).status_code == 404
    with pytest.raises(ClientError) as ei:
        la.get_function_url_config(FunctionName=name)
    assert error(ei) == "ResourceNotFoundException"

    # a URL made on B goes when the function is deleted on A
    fu = lb.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    assert requests.get(fu, timeout=60).status_code == 200
    la.delete_function(FunctionName=name)
    assert requests.get(fu, timeout=60).status_code == 404


def test_unused_code_is_swept(nodes, pg):
    a, b = nodes
    la = lu.lambda_client(a)
    kept, gone = lu.unique_name("kept"), lu.unique_name("gone")
    sha_kept = create(la, kept, plain_zip(kept))["CodeSha256"]
    sha_gone = create(la, gone, plain_zip(gone))["CodeSha256"]
    layer = lu.unique_name("swept-layer")
    lsha = la.publish_layer_version(LayerName=layer, Content={"ZipFile": layer_zip(layer)})[
        "Content"]["CodeSha256"]

    def hexes():
        import base64
        rows = pg.sql("SELECT hex FROM tarn_fn_code").split()
        return {base64.b64encode(bytes.fromhex(h)).decode() for h in rows}

    assert {sha_kept, sha_gone, lsha} <= hexes()
    la.delete_function(FunctionName=gone)
    time.sleep(1.5)  # past the grace the nodes were given (1 s), by the database's clock
    b.stop_clean()
    b.start()  # a node sweeps at start (and every 10 minutes while idle)
    have = hexes()
    assert sha_gone not in have
    assert sha_kept in have and lsha in have  # a function's, a layer version's
    la.delete_layer_version(LayerName=layer, VersionNumber=1)
    time.sleep(1.5)
    b.stop_clean()
    b.start()
    assert lsha not in hexes()
    _, body = lu.invoke(lu.lambda_client(b), kept)  # unpacked again from the kept zip
    assert body == {"tag": kept}


def test_idle_nodes_poll_the_queue_rarely(nodes, pg):
    def scans():
        out = pg.sql("SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM "
                     "pg_stat_user_tables WHERE relname = 'tarn_fn_events'")
        return int(out.strip())

    before = scans()
    start = time.monotonic()
    time.sleep(10)
    per_second = (scans() - before) / (time.monotonic() - start)
    # one poller per node, once a second (a claim scans the table about
    # three times): about 6 a second; every worker of both nodes polling
    # (eight each) would be near 50
    assert per_second < 16, per_second
