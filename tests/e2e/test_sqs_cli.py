"""tests/e2e/test_sqs_cli.py -- `tarn queue` and `tarn topic`: the common
cases of queues and topics through tarn's own command line, checked with
boto3 (and the other way round).
"""
import json
import subprocess

import tarnlib
from queue_util import client, unique
from tarnlib import clean_env


def tarn_cli(srv, *args, input=None, ok=True):
    env = clean_env()
    env.update(TARN_ENDPOINT=srv.endpoint, TARN_ACCESS_KEY=srv.access_key,
               TARN_SECRET_KEY=srv.secret_key)
    r = subprocess.run([tarnlib.TARN_BIN] + list(args), env=env, input=input,
                       capture_output=True, text=True, timeout=120)
    if ok:
        assert r.returncode == 0, "tarn %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                               r.stderr)
    return r


def test_queue_commands(tarn):
    sqs = client(tarn, "sqs")
    name = unique("cliq")
    url = tarn_cli(tarn, "queue", "create", name, "--attr", "VisibilityTimeout=40").stdout.strip()
    assert url == "%s/000000000000/%s" % (tarn.endpoint, name)
    assert name in tarn_cli(tarn, "queue", "ls", name).stdout.split()
    mid = tarn_cli(tarn, "queue", "send", name, "hello cli", "--attr", "k=v").stdout.strip()
    tarn_cli(tarn, "queue", "send", name, "-", input="from stdin")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                              MessageAttributeNames=["All"], VisibilityTimeout=0)["Messages"]
    assert {m["MessageId"] for m in got} >= {mid}
    out = tarn_cli(tarn, "queue", "receive", name, "--json").stdout.splitlines()
    lines = [json.loads(x) for x in out]
    while len(lines) < 2:
        lines += [json.loads(x) for x in
                  tarn_cli(tarn, "queue", "receive", name, "--json").stdout.splitlines()]
    assert sorted(x["body"] for x in lines) == ["from stdin", "hello cli"]
    assert [x for x in lines if x["id"] == mid][0]["messageAttributes"]["k"]["StringValue"] == "v"
    # receive deleted them
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    stats = tarn_cli(tarn, "queue", "stats", name).stdout
    assert "VisibilityTimeout" in stats and "40" in stats
    sqs.send_message(QueueUrl=url, MessageBody="to purge")
    tarn_cli(tarn, "queue", "purge", name)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    tarn_cli(tarn, "queue", "rm", name)
    r = tarn_cli(tarn, "queue", "send", name, "x", ok=False)
    assert r.returncode == 1 and r.stderr.startswith("tarn queue: ")
    assert "does not exist" in r.stderr
    r = tarn_cli(tarn, "queue", "bogus", ok=False)
    assert r.returncode == 2


def test_topic_commands(tarn):
    sqs = client(tarn, "sqs")
    topic = unique("clit")
    qname = unique("clitq")
    url = sqs.create_queue(QueueName=qname)["QueueUrl"]
    arn = tarn_cli(tarn, "topic", "create", topic).stdout.strip()
    assert arn.endswith(":" + topic)
    assert topic in tarn_cli(tarn, "topic", "ls").stdout.split()
    sub = tarn_cli(tarn, "topic", "subscribe", topic, "sqs", qname, "--raw",
                   "--filter", json.dumps({"kind": ["a"]})).stdout.strip()
    assert sub.startswith(arn + ":")
    assert qname in tarn_cli(tarn, "topic", "subs", topic).stdout
    tarn_cli(tarn, "topic", "publish", topic, "filtered out", "--attr", "kind=b")
    tarn_cli(tarn, "topic", "publish", topic, "delivered", "--attr", "kind=a",
             "--subject", "s")
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    assert [m["Body"] for m in got] == ["delivered"]
    tarn_cli(tarn, "topic", "rm", topic)
    assert topic not in tarn_cli(tarn, "topic", "ls").stdout.split()
    r = tarn_cli(tarn, "topic", "publish", topic, "x", ok=False)
    assert r.returncode == 1 and "Topic does not exist" in r.stderr
