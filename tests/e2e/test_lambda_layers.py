"""tests/e2e/test_lambda_layers.py -- Lambda layers: publishing, reading,
listing and deleting layer versions (boto3, and the AWS CLI's
publish-layer-version), their permissions, and functions that stack up to
five of them at /opt, read-only, on the paths Lambda's runtimes search.

Invariants:
  (1) A later layer's file hides an earlier one's; folders merge.
  (2) A function keeps a layer version it has after the version is deleted,
      and across a crash of the server (kill -9) and a restart.
  (3) Bad input (too many layers, unknown versions, two versions of one
      layer, hostile zips, too much code) is refused with Lambda's error
      and changes nothing.
  (4) A data library (Debian's NumPy and pandas, packed into a layer by the
      test) imports from /opt/python, not from the host.
"""
import base64
import hashlib
import json
import os
import zipfile

import pytest
from botocore.exceptions import ClientError

import lambda_util as lu
import tarnlib

ARN = "arn:aws:lambda:us-east-1:000000000000:layer:"
PY = 0o100644
EXE = 0o100755

READER = r'''
import errno, os, subprocess

def handler(event, context):
    import shared, sitepkg
    out = {"shared": shared.WHO, "site": sitepkg.WHERE}
    for k in ("PATH", "PYTHONPATH", "LD_LIBRARY_PATH"):
        out[k] = os.environ.get(k)
    out["tool"] = subprocess.run(["tool"], capture_output=True, text=True).stdout.strip()
    for f in ("a.txt", "b.txt", "both.txt"):
        p = "/opt/data/" + f
        out[f] = open(p).read() if os.path.exists(p) else None
    for p in ("/opt/data/new.txt", "/opt/new.txt", "/opt/python/shared.py"):
        try:
            open(p, "w").write("x")
            out[p] = "written"
        except OSError as e:
            out[p] = errno.errorcode[e.errno]
    return out
'''


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def message(exc_info):
    return exc_info.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


def publish(lam, name, files, **kw):
    return lam.publish_layer_version(LayerName=name, Content={"ZipFile": lu.zip_files(files)},
                                     **kw)


def layer_a_b(lam):
    a = publish(lam, lu.unique_name("layer-a"), {
        "python/shared.py": ("WHO = 'a'\n", PY),
        "python/lib/python3.11/site-packages/sitepkg.py": ("WHERE = 'site of a'\n", PY),
        "data/a.txt": ("only a", PY),
        "data/both.txt": ("from a", PY),
    })
    b = publish(lam, lu.unique_name("layer-b"), {
        "python/shared.py": ("WHO = 'b'\n", PY),
        "data/b.txt": ("only b", PY),
        "data/both.txt": ("from b", PY),
        "bin/tool": ("#!/bin/sh\necho tool of b\n", EXE),
    })
    return a, b


def test_publish_get_list_delete(lam, s3, bucket):
    name = lu.unique_name("lay")
    z1 = lu.zip_files({"python/m.py": ("X = 1\n", PY)})
    v1 = lam.publish_layer_version(LayerName=name, Content={"ZipFile": z1}, Description="one",
                                   CompatibleRuntimes=["python3.11", "python3.12"],
                                   CompatibleArchitectures=["x86_64"], LicenseInfo="MIT")
    assert v1["Version"] == 1
    assert v1["LayerArn"] == ARN + name
    assert v1["LayerVersionArn"] == ARN + name + ":1"
    assert v1["Content"]["CodeSize"] == len(z1)
    assert v1["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(z1).digest()).decode()
    assert v1["CompatibleRuntimes"] == ["python3.11", "python3.12"]
    assert v1["LicenseInfo"] == "MIT" and v1["Description"] == "one"
    # version 2 from an object
    z2 = lu.zip_files({"nodejs/node_modules/m/index.js": ("module.exports = 2;\n", PY)})
    s3.put_object(Bucket=bucket, Key="layers/two.zip", Body=z2)
    v2 = lam.publish_layer_version(LayerName=ARN + name,
                                   Content={"S3Bucket": bucket, "S3Key": "layers/two.zip"},
                                   CompatibleRuntimes=["nodejs20.x"])
    assert v2["Version"] == 2 and v2["Content"]["CodeSize"] == len(z2)

    got = lam.get_layer_version(LayerName=name, VersionNumber=1)
    assert got["Description"] == "one" and got["CompatibleArchitectures"] == ["x86_64"]
    assert got["Content"]["CodeSha256"] == v1["Content"]["CodeSha256"]
    assert lam.get_layer_version_by_arn(Arn=v2["LayerVersionArn"])["Version"] == 2
    assert [v["Version"] for v in lam.list_layer_versions(LayerName=name)["LayerVersions"]] == [2, 1]
    assert [v["Version"] for v in lam.list_layer_versions(
        LayerName=name, CompatibleRuntime="python3.11")["LayerVersions"]] == [1]

    def listed(**kw):
        out, marker = {}, None
        while True:
            page = lam.list_layers(MaxItems=2, **({"Marker": marker} if marker else {}), **kw)
            assert len(page["Layers"]) <= 2
            for l in page["Layers"]:
                out[l["LayerName"]] = l
            marker = page.get("NextMarker")
            if not marker:
                return out

    other = lu.unique_name("lay-other")
    publish(lam, other, {"x": ("x", PY)}, CompatibleRuntimes=["nodejs20.x"])
    every = listed()
    assert every[name]["LatestMatchingVersion"]["Version"] == 2
    assert every[name]["LayerArn"] == ARN + name and other in every
    py = listed(CompatibleRuntime="python3.11")
    assert py[name]["LatestMatchingVersion"]["Version"] == 1 and other not in py

    # permissions are accepted and kept
    st = lam.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="all",
                                          Action="lambda:GetLayerVersion", Principal="*")
    assert json.loads(st["Statement"])["Principal"] == "*"
    st2 = lam.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="acct",
                                           Action="lambda:GetLayerVersion",
                                           Principal="210987654321", RevisionId=st["RevisionId"])
    pol = lam.get_layer_version_policy(LayerName=name, VersionNumber=1)
    doc = json.loads(pol["Policy"])
    assert [s["Sid"] for s in doc["Statement"]] == ["all", "acct"]
    assert doc["Statement"][1]["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
    assert doc["Statement"][0]["Resource"] == ARN + name + ":1"
    assert pol["RevisionId"] == st2["RevisionId"]
    with pytest.raises(ClientError) as e:
        lam.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="all",
                                         Action="lambda:GetLayerVersion", Principal="*")
    assert code(e) == "ResourceConflictException"
    with pytest.raises(ClientError) as e:
        lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="all",
                                            RevisionId=st["RevisionId"])
    assert code(e) == "PreconditionFailedException"
    lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="all")
    lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="acct")
    with pytest.raises(ClientError) as e:
        lam.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert code(e) == "ResourceNotFoundException"

    # deleting: gone, again is no error, numbers are not reused
    lam.delete_layer_version(LayerName=name, VersionNumber=1)
    lam.delete_layer_version(LayerName=name, VersionNumber=1)
    with pytest.raises(ClientError) as e:
        lam.get_layer_version(LayerName=name, VersionNumber=1)
    assert code(e) == "ResourceNotFoundException"
    lam.delete_layer_version(LayerName=name, VersionNumber=2)
    assert lam.list_layer_versions(LayerName=name)["LayerVersions"] == []
    assert name not in listed()
    assert publish(lam, name, {"x": ("x", PY)})["Version"] == 3


def test_bad_layers_are_refused(lam):
    name = lu.unique_name("lay-bad")
    for files in ({"../escape.py": ("x", PY)},
                  {"python/link": ("../../../etc/passwd", 0o120777)},
                  {"python/abs": ("/etc/passwd", 0o120777)}):
        with pytest.raises(ClientError) as e:
            publish(lam, name, files)
        assert code(e) == "InvalidParameterValueException", files
    with pytest.raises(ClientError) as e:
        lam.publish_layer_version(LayerName=name, Content={"ZipFile": b"not a zip"})
    assert code(e) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        publish(lam, name, {"x": ("x", PY)}, CompatibleArchitectures=["sparc"])
    assert code(e) in ("InvalidParameterValueException", "ValidationException")
    for bad in ("bad name", "a/b"):
        with pytest.raises(ClientError):
            publish(lam, bad, {"x": ("x", PY)})
    assert lam.list_layer_versions(LayerName=name)["LayerVersions"] == []
    with pytest.raises(ClientError) as e:
        lam.get_layer_version(LayerName=lu.unique_name("never"), VersionNumber=1)
    assert code(e) == "ResourceNotFoundException"


def test_function_stacks_layers_in_order(lam):
    a, b = layer_a_b(lam)
    name = lu.unique_name("with-layers")
    zipped = lu.zip_files({"app.py": (READER, PY)})
    cfg = lu.create(lam, name, zipped, handler="app.handler", runtime="python3.11",
                    Layers=[a["LayerVersionArn"], b["LayerVersionArn"]])
    assert cfg["Layers"] == [{"Arn": a["LayerVersionArn"], "CodeSize": a["Content"]["CodeSize"]},
                             {"Arn": b["LayerVersionArn"], "CodeSize": b["Content"]["CodeSize"]}]
    got = lam.get_function_configuration(FunctionName=name)
    assert [l["Arn"] for l in got["Layers"]] == [a["LayerVersionArn"], b["LayerVersionArn"]]
    resp, out = lu.invoke(lam, name)
    assert "FunctionError" not in resp, out
    assert out["shared"] == "b" and out["both.txt"] == "from b"
    assert out["a.txt"] == "only a" and out["b.txt"] == "only b"
    assert out["site"] == "site of a"
    assert out["tool"] == "tool of b"
    assert out["PATH"].split(":")[-1] == "/opt/bin"
    assert "/opt/lib" in out["LD_LIBRARY_PATH"].split(":")
    assert out["PYTHONPATH"].split(":") == ["/opt/python/lib/python3.11/site-packages",
                                             "/opt/python"]
    for p in ("/opt/data/new.txt", "/opt/new.txt", "/opt/python/shared.py"):
        assert out[p] == "EROFS", (p, out[p])
    # the other order: a's files win
    lam.update_function_configuration(FunctionName=name,
                                       Layers=[b["LayerVersionArn"], a["LayerVersionArn"]])
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    resp, out = lu.invoke(lam, name)
    assert out["shared"] == "a" and out["both.txt"] == "from a" and out["tool"] == "tool of b"
    # no layers: an empty /opt
    lam.update_function_configuration(FunctionName=name, Layers=[])
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert "Layers" not in lam.get_function_configuration(FunctionName=name)
    resp, out = lu.invoke(lam, name)
    assert resp.get("FunctionError") == "Unhandled" and "shared" in json.dumps(out)
    lam.delete_function(FunctionName=name)


def test_node_function_finds_layer_modules(lam):
    layer = publish(lam, lu.unique_name("layer-node"), {
        "nodejs/node_modules/greet/index.js": ("module.exports = (n) => 'hello ' + n;\n", PY),
        "nodejs/node20/node_modules/ver/index.js": ("module.exports = 'node20 only';\n", PY),
    })
    name = lu.unique_name("node-layers")
    src = ("exports.handler = async (e) => ({greet: require('greet')(e.who), "
           "ver: require('ver'), path: process.env.NODE_PATH});\n")
    lu.create(lam, name, lu.zip_files({"index.js": (src, PY)}), handler="index.handler",
              runtime="nodejs20.x", Layers=[layer["LayerVersionArn"]])
    resp, out = lu.invoke(lam, name, {"who": "layers"})
    assert "FunctionError" not in resp, out
    assert out["greet"] == "hello layers" and out["ver"] == "node20 only"
    assert out["path"].split(":")[:2] == ["/opt/nodejs/node20/node_modules",
                                          "/opt/nodejs/node_modules"]
    lam.delete_function(FunctionName=name)


def test_function_layer_errors(lam, tmp_path):
    a, b = layer_a_b(lam)
    a2 = lam.publish_layer_version(LayerName=a["LayerArn"], Content={"ZipFile": lu.zip_files(
        {"x": ("x", PY)})})
    zipped = lu.zip_files({"app.py": (READER, PY)})
    name = lu.unique_name("layer-errors")

    def refused(layers, want):
        with pytest.raises(ClientError) as e:
            lu.create(lam, name, zipped, handler="app.handler", runtime="python3.11",
                      Layers=layers)
        assert code(e) == "InvalidParameterValueException", message(e)
        assert want in message(e), message(e)

    refused([a["LayerVersionArn"]] * 6, "Cannot reference more than 5 layers.")
    missing = ARN + lu.unique_name("none") + ":1"
    refused([missing], "Layer version %s does not exist." % missing)
    refused([a["LayerVersionArn"], a2["LayerVersionArn"]],
            "Two different versions of the same layer are not allowed")
    refused(["arn:aws:lambda:eu-west-1:123456789012:layer:x:1"], "does not exist")
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name)
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=name, PackageType="Image", Role="arn:aws:iam::000000000000:role/r",
                            Code={"ImageUri": "example.com/img:latest"})
    assert code(e) == "InvalidParameterValueException"
    # code and layers together over 250 MB unzipped (zeros zip small)
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("data/zeros", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(200):
                f.write(chunk)
    heavy = lam.publish_layer_version(LayerName=lu.unique_name("heavy"),
                                      Content={"ZipFile": big.read_bytes()})
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("app.py", READER)
        with z.open("zeros", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(60):
                f.write(chunk)
    with pytest.raises(ClientError) as e:
        lu.create(lam, name, big.read_bytes(), handler="app.handler", runtime="python3.11",
                  Layers=[heavy["LayerVersionArn"]])
    assert code(e) == "InvalidParameterValueException"
    assert "Function code combined with layers exceeds the maximum allowed size of 262144000 " \
           "bytes" in message(e)
    # the same function without that layer is fine, and cannot take it later
    lu.create(lam, name, big.read_bytes(), handler="app.handler", runtime="python3.11")
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName=name, Layers=[heavy["LayerVersionArn"]])
    assert "exceeds the maximum allowed size" in message(e)
    assert "Layers" not in lam.get_function_configuration(FunctionName=name)
    lam.delete_function(FunctionName=name)


def test_awscli_publish_layer_version(tarn, lam, tmp_path):
    path = tmp_path / "layer.zip"
    path.write_bytes(lu.zip_files({"python/cli_mod.py": ("V = 'cli'\n", PY)}))
    name = lu.unique_name("cli-layer")
    r = tarn.aws_ok("lambda", "publish-layer-version", "--layer-name", name,
                    "--zip-file", "fileb://%s" % path, "--compatible-runtimes", "python3.11",
                    "--description", "from the cli", "--output", "json")
    out = json.loads(r.stdout)
    assert out["Version"] == 1 and out["LayerVersionArn"] == ARN + name + ":1"
    assert out["Content"]["CodeSize"] == path.stat().st_size
    r = tarn.aws_ok("lambda", "list-layer-versions", "--layer-name", name, "--output", "json")
    assert [v["Description"] for v in json.loads(r.stdout)["LayerVersions"]] == ["from the cli"]


def test_deleted_layer_version_survives_kill9(tarn_factory):
    srv = tarn_factory()
    lam = lu.lambda_client(srv)
    a, b = layer_a_b(lam)
    name = lu.unique_name("keeps-layer")
    lu.create(lam, name, lu.zip_files({"app.py": (READER, PY)}), handler="app.handler",
              runtime="python3.11", Layers=[a["LayerVersionArn"], b["LayerVersionArn"]])
    lam.delete_layer_version(LayerName=b["LayerArn"], VersionNumber=1)
    with pytest.raises(ClientError):
        lam.get_layer_version_by_arn(Arn=b["LayerVersionArn"])
    # a new instance of the function still has it (the configuration changed: cold start)
    lam.update_function_configuration(FunctionName=name, MemorySize=256)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    resp, out = lu.invoke(lam, name)
    assert out["shared"] == "b" and out["tool"] == "tool of b", out
    srv.kill9()
    srv.start()
    lam = lu.lambda_client(srv)
    cfg = lam.get_function_configuration(FunctionName=name)
    assert [l["Arn"] for l in cfg["Layers"]] == [a["LayerVersionArn"], b["LayerVersionArn"]]
    resp, out = lu.invoke(lam, name)
    assert out["shared"] == "b" and out["both.txt"] == "from b", out
    assert lam.get_layer_version(LayerName=a["LayerArn"], VersionNumber=1)["Version"] == 1
    assert publish(lam, b["LayerArn"], {"x": ("x", PY)})["Version"] == 2
    # a function cannot take the deleted version anew
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName=name, Layers=[b["LayerVersionArn"]])
    assert "does not exist" in message(e)


DATA_FN = r'''
def handler(event, context):
    import numpy, pandas
    a = numpy.arange(1, 101, dtype=numpy.int64)
    df = pandas.DataFrame({"g": ["x", "y"] * 50, "v": a})
    sums = df.groupby("g")["v"].sum().to_dict()
    return {"numpy": numpy.__file__, "pandas": pandas.__file__, "total": int(a.sum()),
            "dot": float(numpy.dot(a, a)), "sums": {k: int(v) for k, v in sums.items()}}
'''


def test_numpy_and_pandas_from_a_layer(lam, s3, bucket, tmp_path):
    dist = "/usr/lib/python3/dist-packages"
    if not os.path.isdir(os.path.join(dist, "pandas")):
        pytest.fail("Debian's python3-pandas is missing: run scripts/install-deps.sh")
    path = tmp_path / "data-libs.zip"
    lu.zip_tree(path, [(os.path.join(dist, m), "python/" + m)
                       for m in ("numpy", "pandas", "pytz", "dateutil", "six.py")])
    s3.upload_file(str(path), bucket, "layers/data-libs.zip")
    layer = lam.publish_layer_version(LayerName=lu.unique_name("data-libs"),
                                      Content={"S3Bucket": bucket,
                                               "S3Key": "layers/data-libs.zip"},
                                      CompatibleRuntimes=["python3.11"])
    assert layer["Content"]["CodeSize"] == path.stat().st_size
    name = lu.unique_name("data-fn")
    lu.create(lam, name, lu.zip_files({"app.py": (DATA_FN, PY)}), handler="app.handler",
              runtime="python3.11", Timeout=300, MemorySize=1024,
              Layers=[layer["LayerVersionArn"]])
    resp, out = lu.invoke(lam, name)
    assert "FunctionError" not in resp, out
    assert out["numpy"] == "/opt/python/numpy/__init__.py"
    assert out["pandas"] == "/opt/python/pandas/__init__.py"
    assert out["total"] == 5050 and out["dot"] == 338350.0
    assert out["sums"] == {"x": 2500, "y": 2550}
    lam.delete_function(FunctionName=name)
