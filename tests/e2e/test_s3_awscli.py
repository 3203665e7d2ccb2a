"""tests/e2e/test_s3_awscli.py -- the S3 commands of the AWS CLI (Debian's
/usr/bin/aws), as a user types them, with the bytes checked on both sides.
"""
import json
import os
import re
import time
import urllib.request

from tarnlib import MiB, body_for, list_all_keys, md5_etag, multipart_etag, sha256_file, \
    write_random_file

LS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +(\d+) (.+)$")


def ls_files(stdout):
    """{name: size} of the object lines of `aws s3 ls`."""
    out = {}
    for line in stdout.splitlines():
        m = LS_LINE.match(line)
        if m:
            out[m.group(2)] = int(m.group(1))
    return out


def ls_prefixes(stdout):
    return [line.split("PRE ", 1)[1] for line in stdout.splitlines() if line.strip().startswith("PRE ")]


def make_tree(root, files):
    """Writes {relative path: bytes} under root, with modification times a
    minute in the past (the CLI's sync compares them with LastModified,
    which S3 lists at whole seconds or milliseconds)."""
    past = time.time() - 60
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.utime(p, (past, past))


def read_tree(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root).replace(os.sep, "/")] = f.read()
    return out


TREE = {
    "a.txt": b"file a\n",
    "empty.txt": b"",
    "sub/b.bin": body_for("tree-b", 300000),
    "sub/deeper/c with space.dat": body_for("tree-c", 4097),
    "sub/ünïcødé.txt": "héllo wörld\n".encode(),
}


def test_mb_ls_rb(tarn, bucket_name):
    r = tarn.aws_ok("s3", "mb", "s3://" + bucket_name)
    assert "make_bucket: " + bucket_name in r.stdout
    r = tarn.aws_ok("s3", "ls")
    assert bucket_name in [line.split()[-1] for line in r.stdout.splitlines()]

    r = tarn.aws_ok("s3", "rb", "s3://" + bucket_name)
    assert "remove_bucket: " + bucket_name in r.stdout
    r = tarn.aws_ok("s3", "ls")
    assert bucket_name not in [line.split()[-1] for line in r.stdout.splitlines() if line.strip()]

    r = tarn.aws("s3", "rb", "s3://" + bucket_name)
    assert r.returncode != 0
    assert "NoSuchBucket" in r.stderr


def test_cp_up_and_down(tarn, s3, bucket, tmp_path):
    data = body_for("cli-cp", 100000)
    src = tmp_path / "hello world.txt"
    src.write_bytes(data)
    r = tarn.aws_ok("s3", "cp", src, "s3://%s/dir/hello world.txt" % bucket)
    assert "upload:" in r.stdout
    got = s3.get_object(Bucket=bucket, Key="dir/hello world.txt")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/plain"  # the CLI guesses it from the name
    assert got["ETag"] == md5_etag(data)

    dst = tmp_path / "back.txt"
    r = tarn.aws_ok("s3", "cp", "s3://%s/dir/hello world.txt" % bucket, dst)
    assert "download:" in r.stdout
    assert dst.read_bytes() == data

    # streams: from stdin, to stdout
    tarn.aws_ok("s3", "cp", "-", "s3://%s/from-stdin" % bucket, input="streamed text\n")
    assert s3.get_object(Bucket=bucket, Key="from-stdin")["Body"].read() == b"streamed text\n"
    r = tarn.aws_ok("s3", "cp", "s3://%s/from-stdin" % bucket, "-")
    assert r.stdout == "streamed text\n"

    # copy inside the server
    tarn.aws_ok("s3", "cp", "s3://%s/dir/hello world.txt" % bucket, "s3://%s/copy.txt" % bucket)
    assert s3.get_object(Bucket=bucket, Key="copy.txt")["Body"].read() == data

    r = tarn.aws("s3", "cp", "s3://%s/no-such-key" % bucket, tmp_path / "x")
    assert r.returncode != 0
    assert "404" in r.stderr or "Not Found" in r.stderr or "NoSuchKey" in r.stderr
    assert not (tmp_path / "x").exists()


def test_cp_recursive(tarn, s3, bucket, tmp_path):
    src = tmp_path / "src"
    make_tree(src, TREE)
    r = tarn.aws_ok("s3", "cp", "--recursive", src, "s3://%s/tree/" % bucket)
    assert r.stdout.count("upload:") == len(TREE)
    assert list_all_keys(s3, bucket) == sorted("tree/" + k for k in TREE)
    for rel, data in TREE.items():
        assert s3.get_object(Bucket=bucket, Key="tree/" + rel)["Body"].read() == data

    dst = tmp_path / "dst"
    r = tarn.aws_ok("s3", "cp", "--recursive", "s3://%s/tree/" % bucket, dst)
    assert r.stdout.count("download:") == len(TREE)
    assert read_tree(dst) == TREE


def test_sync_up_and_down(tarn, s3, bucket, tmp_path):
    src = tmp_path / "src"
    make_tree(src, TREE)
    r = tarn.aws_ok("s3", "sync", src, "s3://%s/sync" % bucket)
    assert r.stdout.count("upload:") == len(TREE)
    assert list_all_keys(s3, bucket) == sorted("sync/" + k for k in TREE)

    # nothing changed: nothing copied
    r = tarn.aws_ok("s3", "sync", src, "s3://%s/sync" % bucket)
    assert "upload:" not in r.stdout, r.stdout

    # one file grows, one is new, one goes away
    changed = dict(TREE)
    changed["a.txt"] = b"file a, longer now\n"
    changed["new/file.txt"] = b"new"
    del changed["empty.txt"]
    os.remove(src / "empty.txt")
    make_tree(src, {"a.txt": changed["a.txt"], "new/file.txt": b"new"})
    r = tarn.aws_ok("s3", "sync", "--delete", src, "s3://%s/sync" % bucket)
    uploads = sorted(line.split(" to ")[-1] for line in r.stdout.splitlines() if "upload:" in line)
    assert uploads == ["s3://%s/sync/a.txt" % bucket, "s3://%s/sync/new/file.txt" % bucket]
    assert "delete: s3://%s/sync/empty.txt" % bucket in r.stdout
    assert list_all_keys(s3, bucket) == sorted("sync/" + k for k in changed)
    assert s3.get_object(Bucket=bucket, Key="sync/a.txt")["Body"].read() == changed["a.txt"]

    dst = tmp_path / "dst"
    r = tarn.aws_ok("s3", "sync", "s3://%s/sync" % bucket, dst)
    assert r.stdout.count("download:") == len(changed)
    assert read_tree(dst) == changed
    r = tarn.aws_ok("s3", "sync", "s3://%s/sync" % bucket, dst)
    assert "download:" not in r.stdout, r.stdout


def test_ls(tarn, s3, bucket):
    for k, v in {"top.txt": b"12345", "dir/one": b"1", "dir/two": b"22", "dir/sub/three": b"333",
                 "other/x": b"x"}.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    r = tarn.aws_ok("s3", "ls", "s3://%s/" % bucket)
    assert ls_prefixes(r.stdout) == ["dir/", "other/"]
    assert ls_files(r.stdout) == {"top.txt": 5}

    r = tarn.aws_ok("s3", "ls", "s3://%s/dir/" % bucket)
    assert ls_prefixes(r.stdout) == ["sub/"]
    assert ls_files(r.stdout) == {"one": 1, "two": 2}

    r = tarn.aws_ok("s3", "ls", "--recursive", "s3://%s" % bucket)
    assert ls_files(r.stdout) == {"top.txt": 5, "dir/one": 1, "dir/two": 2, "dir/sub/three": 3,
                                  "other/x": 1}
    assert [LS_LINE.match(l).group(2) for l in r.stdout.splitlines()] == \
        ["dir/one", "dir/sub/three", "dir/two", "other/x", "top.txt"]


def test_rm_and_rb_force(tarn, s3, bucket, tmp_path):
    src = tmp_path / "src"
    make_tree(src, TREE)
    tarn.aws_ok("s3", "cp", "--recursive", src, "s3://%s/t/" % bucket)
    s3.put_object(Bucket=bucket, Key="keep", Body=b"k")

    r = tarn.aws_ok("s3", "rm", "s3://%s/t/a.txt" % bucket)
    assert "delete: s3://%s/t/a.txt" % bucket in r.stdout
    assert "t/a.txt" not in list_all_keys(s3, bucket)

    r = tarn.aws_ok("s3", "rm", "--recursive", "s3://%s/t/" % bucket)
    assert r.stdout.count("delete:") == len(TREE) - 1
    assert list_all_keys(s3, bucket) == ["keep"]

    r = tarn.aws("s3", "rb", "s3://%s" % bucket)
    assert r.returncode != 0 and "BucketNotEmpty" in r.stderr
    tarn.aws_ok("s3", "rb", "--force", "s3://%s" % bucket)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_presign(tarn, s3, bucket):
    data = body_for("cli-presign", 12345)
    s3.put_object(Bucket=bucket, Key="shared/report.bin", Body=data)
    r = tarn.aws_ok("s3", "presign", "s3://%s/shared/report.bin" % bucket, "--expires-in", "300")
    url = r.stdout.strip()
    assert url.startswith(tarn.endpoint + "/") and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=60) as resp:
        assert resp.status == 200
        assert resp.read() == data


def test_s3api_object_calls(tarn, s3, bucket, tmp_path):
    body = tmp_path / "meta.json"
    body.write_bytes(b'{"hello": "tarn"}\n')
    r = tarn.aws_ok("s3api", "put-object", "--bucket", bucket, "--key", "docs/meta.json",
                    "--body", body, "--content-type", "application/json",
                    "--metadata", "color=blue,size=large", "--tagging", "team=data&tier=gold")
    assert json.loads(r.stdout)["ETag"] == md5_etag(body.read_bytes())

    head = json.loads(tarn.aws_ok("s3api", "head-object", "--bucket", bucket,
                                  "--key", "docs/meta.json").stdout)
    assert head["ContentLength"] == body.stat().st_size
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"color": "blue", "size": "large"}
    assert head["ETag"] == md5_etag(body.read_bytes())

    tags = json.loads(tarn.aws_ok("s3api", "get-object-tagging", "--bucket", bucket,
                                  "--key", "docs/meta.json").stdout)["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "data", "tier": "gold"}

    for k in ("docs/a.txt", "docs/sub/b.txt", "img/c.png", "root.txt"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    out = json.loads(tarn.aws_ok("s3api", "list-objects-v2", "--bucket", bucket,
                                 "--delimiter", "/").stdout)
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["docs/", "img/"]
    assert [o["Key"] for o in out["Contents"]] == ["root.txt"]
    out = json.loads(tarn.aws_ok("s3api", "list-objects-v2", "--bucket", bucket,
                                 "--prefix", "docs/", "--delimiter", "/").stdout)
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["docs/sub/"]
    assert [(o["Key"], o["Size"]) for o in out["Contents"]] == \
        [("docs/a.txt", 10), ("docs/meta.json", body.stat().st_size)]

    part = tmp_path / "part"
    out = json.loads(tarn.aws_ok("s3api", "get-object", "--bucket", bucket, "--key", "docs/meta.json",
                                 "--range", "bytes=2-6", part).stdout)
    assert part.read_bytes() == b"hello"
    assert out["ContentRange"] == "bytes 2-6/%d" % body.stat().st_size

    r = tarn.aws("s3api", "head-object", "--bucket", bucket, "--key", "nope")
    assert r.returncode != 0 and "404" in r.stderr


def test_large_file_multipart(tarn, s3, bucket, tmp_path):
    size = 20 * MiB + 12345
    src = tmp_path / "big.bin"
    digest = write_random_file(src, size, "cli-20mib")
    tarn.aws_ok("s3", "cp", src, "s3://%s/big.bin" % bucket)

    chunks = []
    with open(src, "rb") as f:
        for chunk in iter(lambda: f.read(8 * MiB), b""):
            chunks.append(chunk)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == size
    assert head["ETag"] == multipart_etag(chunks)  # the CLI uploads 8 MiB parts
    del chunks

    dst = tmp_path / "back.bin"
    tarn.aws_ok("s3", "cp", "s3://%s/big.bin" % bucket, dst)
    assert sha256_file(dst) == digest
