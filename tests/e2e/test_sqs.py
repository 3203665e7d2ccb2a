"""tests/e2e/test_sqs.py -- SQS through boto3 (the query protocol of Debian's
botocore 1.29) and the AWS CLI: queues, attributes, messages and their MD5s,
long polling, visibility, redrive, FIFO, delays, batches, tags and the AWS
error codes of bad input.

No test asserts speed: waits are bounded polls (queue_util.wait_for).
"""
import base64
import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from queue_util import (client, md5_hex, md5_of_attributes, queue_arn, receive_all, unique,
                        wait_for)
from tarnlib import client_error


@pytest.fixture(scope="module")
def sqs(tarn):
    return client(tarn, "sqs")


def new_queue(sqs, prefix="q", **attrs):
    name = unique(prefix)
    if attrs.get("FifoQueue") == "true":
        name += ".fifo"
    url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    return name, url


def error_code(fn, *args, **kw):
    with pytest.raises(ClientError) as ei:
        fn(*args, **kw)
    return client_error(ei.value)


# ---- queues ----

def test_queue_lifecycle(tarn, sqs):
    name = unique("life")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"},
                           tags={"team": "data"})["QueueUrl"]
    assert url == "%s/000000000000/%s" % (tarn.endpoint, name)
    # idempotent with the same attributes, an error with others
    assert sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"] == url
    assert error_code(sqs.create_queue, QueueName=name,
                      Attributes={"VisibilityTimeout": "46"}) == ("QueueAlreadyExists", 400)
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix=name)["QueueUrls"]
    other = sqs.create_queue(QueueName=unique("other"))["QueueUrl"]
    listed = sqs.list_queues(QueueNamePrefix=name)["QueueUrls"]
    assert listed == [url] and other not in listed

    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "45"
    assert attrs["QueueArn"] == queue_arn(name)
    assert attrs["MaximumMessageSize"] == "262144"
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert attrs["DelaySeconds"] == "0"
    assert attrs["ReceiveMessageWaitTimeSeconds"] == "0"
    for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
              "ApproximateNumberOfMessagesDelayed"):
        assert attrs[k] == "0"
    assert abs(int(attrs["CreatedTimestamp"]) - time.time()) < 600
    only = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    assert only == {"QueueArn": queue_arn(name)}

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "3",
                                                       "MaximumMessageSize": "2048"})
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["DelaySeconds"] == "3" and attrs["MaximumMessageSize"] == "2048"

    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "data"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "test", "team": "lake"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "lake", "env": "test"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "test"}

    sqs.delete_queue(QueueUrl=url)
    assert error_code(sqs.get_queue_url, QueueName=name) == (
        "AWS.SimpleQueueService.NonExistentQueue", 400)
    assert error_code(sqs.send_message, QueueUrl=url, MessageBody="x")[0] == \
        "AWS.SimpleQueueService.NonExistentQueue"


def test_list_queues_pages(sqs):
    prefix = unique("page")
    names = sorted("%s-%d" % (prefix, i) for i in range(5))
    for n in names:
        sqs.create_queue(QueueName=n)
    seen = []
    kw = {"QueueNamePrefix": prefix, "MaxResults": 2}
    while True:
        r = sqs.list_queues(**kw)
        seen.extend(u.rsplit("/", 1)[1] for u in r.get("QueueUrls", []))
        if "NextToken" not in r:
            break
        kw["NextToken"] = r["NextToken"]
    assert seen == names


# ---- messages ----

ATTRS = {
    "color": {"DataType": "String", "StringValue": "blue"},
    "count": {"DataType": "Number", "StringValue": "42"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
    "unicode": {"DataType": "String.custom", "StringValue": "h\u00e9llo \u2603"},
    "prefix.one": {"DataType": "String", "StringValue": "1"},
}


def test_send_receive_md5(sqs):
    _, url = new_queue(sqs)
    body = "caf\u00e9 & <xml> \"quotes\" \u2603"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=ATTRS)
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS)
    msgs = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                               AttributeNames=["All"])["Messages"]
    assert len(msgs) == 1
    m = msgs[0]
    assert m["Body"] == body and m["MessageId"] == sent["MessageId"]
    assert m["MD5OfBody"] == md5_hex(body)
    assert m["MessageAttributes"] == ATTRS
    assert m["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS)
    a = m["Attributes"]
    assert a["ApproximateReceiveCount"] == "1"
    assert a["SenderId"] == "000000000000"
    assert abs(int(a["SentTimestamp"]) / 1000 - time.time()) < 600
    assert int(a["ApproximateFirstReceiveTimestamp"]) >= int(a["SentTimestamp"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_attribute_name_selection(sqs):
    _, url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="sel", MessageAttributes=ATTRS)
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["prefix.*", "color"],
                            AttributeNames=["SentTimestamp"], VisibilityTimeout=0)["Messages"][0]
    want = {k: ATTRS[k] for k in ("prefix.one", "color")}
    assert m["MessageAttributes"] == want
    # the digest covers what was returned, as the SDKs that check it expect
    assert m["MD5OfMessageAttributes"] == md5_of_attributes(want)
    assert set(m["Attributes"]) == {"SentTimestamp"}
    m = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert "MessageAttributes" not in m and "Attributes" not in m


def test_long_poll_returns_message_sent_mid_wait(sqs):
    _, url = new_queue(sqs)
    result = {}

    def receive():
        result["r"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)

    t = threading.Thread(target=receive)
    t.start()
    time.sleep(0.5)  # lets the receive start waiting; correctness does not depend on it
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    t.join(30)
    assert not t.is_alive()
    assert [m["Body"] for m in result["r"]["Messages"]] == ["wake up"]


def test_long_poll_many_waiters(sqs):
    """More waiting receives than the server has threads: none holds one."""
    _, url = new_queue(sqs)
    many = client_for_waiters = sqs
    results = []
    lock = threading.Lock()

    def receive():
        r = many.receive_message(QueueUrl=url, WaitTimeSeconds=20)
        with lock:
            results.extend(m["Body"] for m in r.get("Messages", []))

    threads = [threading.Thread(target=receive) for _ in range(30)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    # the server still answers other requests while 30 receives wait
    assert client_for_waiters.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    for i in range(30):
        sqs.send_message(QueueUrl=url, MessageBody="m%d" % i)
    for t in threads:
        t.join(40)
    left = receive_all(sqs, url, 30 - len(results), timeout=30) if len(results) < 30 else []
    assert sorted(results + [m["Body"] for m in left]) == sorted("m%d" % i for i in range(30))


def test_long_poll_empty_queue_returns_nothing(sqs):
    _, url = new_queue(sqs, ReceiveMessageWaitTimeSeconds="1")
    r = sqs.receive_message(QueueUrl=url)  # the queue's wait of 1 s applies
    assert "Messages" not in r


def test_visibility_timeout_expiry(sqs):
    _, url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="again")
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)

    def back():
        r = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"],
                                WaitTimeSeconds=1)
        return r.get("Messages")

    again = wait_for(back, what="the message to come back")[0]
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["ReceiptHandle"] != first["ReceiptHandle"]


def test_change_visibility(sqs):
    _, url = new_queue(sqs)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "a"},
                                                  {"Id": "b", "MessageBody": "b"}])
    msgs = receive_all(sqs, url, 2, VisibilityTimeout=300)
    h = {m["Body"]: m["ReceiptHandle"] for m in msgs}
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=h["a"], VisibilityTimeout=0)
    m = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert m["Body"] == "a"
    r = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "1", "ReceiptHandle": h["b"], "VisibilityTimeout": 0},
        {"Id": "2", "ReceiptHandle": "not-a-handle", "VisibilityTimeout": 0}])
    assert [e["Id"] for e in r["Successful"]] == ["1"]
    assert [(e["Id"], e["Code"], e["SenderFault"]) for e in r["Failed"]] == [
        ("2", "ReceiptHandleIsInvalid", True)]
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "b"
    # the stale handle of "a" (received again since) cannot change it
    code = error_code(sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=h["a"],
                      VisibilityTimeout=10)
    assert code == ("InvalidParameterValue", 400)


def test_delete_batch_and_stale_handles(sqs):
    _, url = new_queue(sqs)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m%d" % i}
                                                  for i in range(3)])
    msgs = receive_all(sqs, url, 3)
    r = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "x%d" % i, "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)] +
        [{"Id": "bad", "ReceiptHandle": "garbage"}])
    assert sorted(e["Id"] for e in r["Successful"]) == ["x0", "x1", "x2"]
    assert [(e["Id"], e["Code"]) for e in r["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    # deleting a deleted message again is accepted, as SQS does
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msgs[0]["ReceiptHandle"])
    assert error_code(sqs.delete_message, QueueUrl=url, ReceiptHandle="garbage") == (
        "ReceiptHandleIsInvalid", 404)


def test_redrive_to_dead_letter_queue(sqs):
    dlq_name, dlq = new_queue(sqs, "dlq")
    policy = json.dumps({"deadLetterTargetArn": queue_arn(dlq_name), "maxReceiveCount": 2})
    src_name, src = new_queue(sqs, "src", RedrivePolicy=policy)
    got = json.loads(sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])
                     ["Attributes"]["RedrivePolicy"])
    assert got == {"deadLetterTargetArn": queue_arn(dlq_name), "maxReceiveCount": 2}
    sent = sqs.send_message(QueueUrl=src, MessageBody="poison")
    for i in range(2):
        m = sqs.receive_message(QueueUrl=src, VisibilityTimeout=0,
                                AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
        assert m["Attributes"]["ApproximateReceiveCount"] == str(i + 1)
    assert "Messages" not in sqs.receive_message(QueueUrl=src)  # the third receive moves it
    m = sqs.receive_message(QueueUrl=dlq)["Messages"][0]
    assert m["Body"] == "poison" and m["MessageId"] == sent["MessageId"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [src]
    # a redrive policy must name an existing queue
    assert error_code(sqs.set_queue_attributes, QueueUrl=src, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": queue_arn("missing-dlq"),
                                     "maxReceiveCount": 1})})[0] == "InvalidParameterValue"


def test_fifo_order_groups_and_dedup(sqs):
    _, url = new_queue(sqs, "fifo", FifoQueue="true")
    seqs = []
    for i in range(3):
        for g in ("A", "B"):
            r = sqs.send_message(QueueUrl=url, MessageBody="%s%d" % (g, i), MessageGroupId=g,
                                 MessageDeduplicationId="%s-%d" % (g, i))
            seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    dup = sqs.send_message(QueueUrl=url, MessageBody="A0 again", MessageGroupId="A",
                           MessageDeduplicationId="A-0")
    assert int(dup["SequenceNumber"]) == seqs[0]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["FifoQueue"] == "true" and attrs["ApproximateNumberOfMessages"] == "6"

    # group A in flight blocks A; B still flows, each group in order
    a0 = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                             AttributeNames=["All"])["Messages"][0]
    assert a0["Body"] == "A0"
    assert a0["Attributes"]["MessageGroupId"] == "A"
    assert a0["Attributes"]["MessageDeduplicationId"] == "A-0"
    assert int(a0["Attributes"]["SequenceNumber"]) == seqs[0]
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in rest] == ["B0", "B1", "B2"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=a0["ReceiptHandle"])
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            ["Messages"]] == ["A1", "A2"]

    # content-based deduplication
    _, cbd = new_queue(sqs, "cbd", FifoQueue="true", ContentBasedDeduplication="true")
    r1 = sqs.send_message(QueueUrl=cbd, MessageBody="same", MessageGroupId="g")
    r2 = sqs.send_message(QueueUrl=cbd, MessageBody="same", MessageGroupId="g")
    assert r1["MessageId"] == r2["MessageId"]
    assert len(receive_all(sqs, cbd, 1)) == 1
    # FIFO rules
    assert error_code(sqs.send_message, QueueUrl=url, MessageBody="x")[0] == "MissingParameter"
    assert error_code(sqs.send_message, QueueUrl=url, MessageBody="x", MessageGroupId="g")[0] \
        == "InvalidParameterValue"
    assert error_code(sqs.create_queue, QueueName=unique("nofifo") + ".fifo")[0] == \
        "InvalidParameterValue"


def test_delay_per_message_and_queue(sqs):
    _, url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    got = wait_for(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"),
                   what="the delayed message")
    assert got[0]["Body"] == "later"

    _, q2 = new_queue(sqs, DelaySeconds="1")
    sqs.send_message(QueueUrl=q2, MessageBody="queue delay")
    a = sqs.get_queue_attributes(QueueUrl=q2, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert a["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert wait_for(lambda: sqs.receive_message(QueueUrl=q2, WaitTimeSeconds=1).get("Messages"),
                    what="the queue-delayed message")[0]["Body"] == "queue delay"


def test_purge(sqs):
    _, url = new_queue(sqs)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(i)}
                                                  for i in range(10)])
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    sqs.send_message(QueueUrl=url, MessageBody="after purge")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "after purge"


def test_send_batch(sqs):
    _, url = new_queue(sqs)
    entries = [{"Id": "e%d" % i, "MessageBody": "body %d" % i,
                "MessageAttributes": {"n": {"DataType": "Number", "StringValue": str(i)}}}
               for i in range(9)]
    entries.append({"Id": "bad", "MessageBody": "x",
                    "MessageAttributes": {"n": {"DataType": "Nonsense", "StringValue": "1"}}})
    r = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    ok = {e["Id"]: e for e in r["Successful"]}
    assert sorted(ok) == sorted("e%d" % i for i in range(9))
    for i in range(9):
        e = ok["e%d" % i]
        assert e["MD5OfMessageBody"] == md5_hex("body %d" % i)
        assert e["MD5OfMessageAttributes"] == md5_of_attributes(entries[i]["MessageAttributes"])
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in r["Failed"]] == [
        ("bad", "InvalidParameterValue", True)]
    assert sorted(m["Body"] for m in receive_all(sqs, url, 9)) == sorted(
        "body %d" % i for i in range(9))


def test_batch_errors(sqs):
    _, url = new_queue(sqs)
    assert error_code(sqs.send_message_batch, QueueUrl=url, Entries=[])[0] == \
        "AWS.SimpleQueueService.EmptyBatchRequest"
    eleven = [{"Id": str(i), "MessageBody": "x"} for i in range(11)]
    assert error_code(sqs.send_message_batch, QueueUrl=url, Entries=eleven)[0] == \
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    same = [{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}]
    assert error_code(sqs.send_message_batch, QueueUrl=url, Entries=same)[0] == \
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    assert error_code(sqs.delete_message_batch, QueueUrl=url,
                      Entries=[{"Id": "bad id!", "ReceiptHandle": "x"}])[0] == \
        "AWS.SimpleQueueService.InvalidBatchEntryId"
    big = [{"Id": str(i), "MessageBody": "x" * 100000} for i in range(3)]
    assert error_code(sqs.send_message_batch, QueueUrl=url, Entries=big)[0] == \
        "AWS.SimpleQueueService.BatchRequestTooLong"
    # nothing was sent by any of them
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert a["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_bad_input(sqs):
    name, url = new_queue(sqs)
    missing = url.rsplit("/", 1)[0] + "/no-such-queue"
    for fn, kw in ((sqs.send_message, {"QueueUrl": missing, "MessageBody": "x"}),
                   (sqs.receive_message, {"QueueUrl": missing}),
                   (sqs.purge_queue, {"QueueUrl": missing}),
                   (sqs.get_queue_attributes, {"QueueUrl": missing}),
                   (sqs.delete_queue, {"QueueUrl": missing})):
        assert error_code(fn, **kw) == ("AWS.SimpleQueueService.NonExistentQueue", 400)
    # size limit: 256 KiB passes, one byte more does not
    ok = sqs.send_message(QueueUrl=url, MessageBody="x" * 262144)
    assert ok["MD5OfMessageBody"] == md5_hex("x" * 262144)
    assert error_code(sqs.send_message, QueueUrl=url, MessageBody="x" * 262145) == (
        "InvalidParameterValue", 400)
    assert error_code(sqs.send_message, QueueUrl=url, MessageBody="bad \x01 char")[0] == \
        "InvalidMessageContents"
    assert error_code(sqs.send_message, QueueUrl=url, MessageBody="x", MessageAttributes={
        "a": {"DataType": "Number", "StringValue": "not a number"}})[0] == "InvalidParameterValue"
    assert error_code(sqs.send_message, QueueUrl=url, MessageBody="x", MessageAttributes={
        "AWS.reserved": {"DataType": "String", "StringValue": "v"}})[0] == "InvalidParameterValue"
    assert error_code(sqs.send_message, QueueUrl=url, MessageBody="x", DelaySeconds=901)[0] == \
        "InvalidParameterValue"
    assert error_code(sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=11)[0] == \
        "InvalidParameterValue"
    assert error_code(sqs.receive_message, QueueUrl=url, WaitTimeSeconds=21)[0] == \
        "InvalidParameterValue"
    assert error_code(sqs.create_queue, QueueName=unique("x"),
                      Attributes={"NoSuchAttribute": "1"})[0] == "InvalidAttributeName"
    assert error_code(sqs.create_queue, QueueName=unique("x"),
                      Attributes={"VisibilityTimeout": "99999"})[0] == "InvalidParameterValue"
    assert error_code(sqs.create_queue, QueueName="bad name!")[0] == "InvalidParameterValue"
    assert error_code(sqs.get_queue_attributes, QueueUrl=url,
                      AttributeNames=["Bogus"])[0] == "InvalidAttributeName"
    # nothing of that changed the queue: only the one good message is there
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert a["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_post_to_queue_url(tarn, sqs):
    """The query protocol may post to the queue's URL instead of '/'."""
    import botocore.auth
    import requests
    from botocore.awsrequest import AWSRequest
    _, url = new_queue(sqs)
    body = "Action=SendMessage&MessageBody=from+the+path&Version=2012-11-05"
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    botocore.auth.SigV4Auth(tarn.credentials(), "sqs", "us-east-1").add_auth(req)
    r = requests.post(url, data=body, headers=dict(req.headers.items()), timeout=30)
    assert r.status_code == 200, r.text
    assert b"<SendMessageResponse" in r.content and b"<MD5OfMessageBody>" in r.content
    m = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert m[0]["Body"] == "from the path"


def test_aws_cli(tarn):
    name = unique("cli")
    url = json.loads(tarn.aws_ok("sqs", "create-queue", "--queue-name", name).stdout)["QueueUrl"]
    sent = json.loads(tarn.aws_ok(
        "sqs", "send-message", "--queue-url", url, "--message-body", "from the cli",
        "--message-attributes", json.dumps({"k": {"DataType": "String", "StringValue": "v"}})
    ).stdout)
    assert sent["MD5OfMessageBody"] == md5_hex("from the cli")
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(
        {"k": {"DataType": "String", "StringValue": "v"}})
    got = json.loads(tarn.aws_ok("sqs", "receive-message", "--queue-url", url,
                                 "--message-attribute-names", "All",
                                 "--wait-time-seconds", "1").stdout)
    m = got["Messages"][0]
    assert m["Body"] == "from the cli" and m["MessageAttributes"]["k"]["StringValue"] == "v"
    tarn.aws_ok("sqs", "delete-message", "--queue-url", url, "--receipt-handle",
                m["ReceiptHandle"])
    attrs = json.loads(tarn.aws_ok("sqs", "get-queue-attributes", "--queue-url", url,
                                   "--attribute-names", "All").stdout)["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    r = tarn.aws("sqs", "get-queue-url", "--queue-name", "no-such-queue-" + name)
    assert r.returncode != 0 and "NonExistentQueue" in r.stderr
    tarn.aws_ok("sqs", "delete-queue", "--queue-url", url)



def test_long_poll_of_gone_client_leaves_message_visible(tarn, sqs):
    """A long poll whose client closed the connection must not take a
    message that arrives afterwards: the next receiver gets it at once."""
    import socket
    from urllib.parse import urlencode

    import botocore.auth
    import botocore.credentials
    from botocore.awsrequest import AWSRequest

    _, url = new_queue(sqs, VisibilityTimeout="60")
    body = urlencode({"Action": "ReceiveMessage", "Version": "2012-11-05", "QueueUrl": url,
                      "WaitTimeSeconds": "20"})
    req = AWSRequest(method="POST", url=tarn.endpoint + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    creds = botocore.credentials.Credentials(tarn.access_key, tarn.secret_key)
    botocore.auth.SigV4Auth(creds, "sqs", "us-east-1").add_auth(req)
    head = "POST / HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\n" % (
        tarn.host, tarn.port, len(body))
    head += "".join("%s: %s\r\n" % (k, v) for k, v in req.headers.items()
                    if k.lower() not in ("host", "content-length"))
    sock = socket.create_connection((tarn.host, tarn.port), timeout=10)
    sock.sendall((head + "\r\n" + body).encode())
    time.sleep(0.5)  # lets the receive park; the outcome must not depend on it
    sock.close()
    time.sleep(0.2)
    sqs.send_message(QueueUrl=url, MessageBody="for the next one")
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
    assert [m["Body"] for m in got.get("Messages", [])] == ["for the next one"]
