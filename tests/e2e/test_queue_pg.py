"""tests/e2e/test_queue_pg.py -- queues shared by two tarn nodes over one
PostgreSQL (`tarn server --metadata postgres://...`, here TARN_METADATA):
a queue created on one node is served by the other, a receive is exclusive
across nodes (four receivers, two per node, drain 500 messages: each is
received exactly once), a receipt handle of one node deletes on the other,
long polls on one node wake for sends on the other, acknowledged sends
survive kill -9 of the node that took them, a batch sent in one statement
round-trips its bodies and attributes exactly, FIFO groups keep their order
across nodes (topics over PostgreSQL: test_sns_pg.py).
"""
import threading
import time

import botocore.exceptions
import pytest

from pg_util import backend, pg, two_nodes  # noqa: F401 (fixtures)
from queue_util import client, md5_hex, md5_of_attributes, unique, wait_for


@pytest.fixture(scope="module")
def nodes(pg, backend, tmp_path_factory):
    """Two nodes over the same PostgreSQL (and object backend, which a node
    with --metadata needs), for the whole module; both must stop cleanly at
    the end (the kill -9 test restarts the one it kills)."""
    yield from two_nodes(pg, backend, tmp_path_factory)


def sqs_of(srv, **kw):
    return client(srv, "sqs", **kw)


def test_queue_created_on_one_node_is_served_by_the_other(nodes):
    a, b = nodes
    qa, qb = sqs_of(a), sqs_of(b)
    name = unique("shared")
    url_a = qa.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    url_b = qb.get_queue_url(QueueName=name)["QueueUrl"]
    assert url_b.endswith("/" + name)
    assert name in [u.rsplit("/", 1)[1] for u in qb.list_queues(QueueNamePrefix="shared").get(
        "QueueUrls", [])]
    assert qb.get_queue_attributes(QueueUrl=url_b, AttributeNames=["VisibilityTimeout"])[
        "Attributes"]["VisibilityTimeout"] == "45"
    # an attribute set on B is what A reports
    qb.set_queue_attributes(QueueUrl=url_b, Attributes={"VisibilityTimeout": "7"})
    assert qa.get_queue_attributes(QueueUrl=url_a, AttributeNames=["VisibilityTimeout"])[
        "Attributes"]["VisibilityTimeout"] == "7"

    qa.send_message(QueueUrl=url_a, MessageBody="from A",
                    MessageAttributes={"k": {"DataType": "String", "StringValue": "000042"}})
    got = qb.receive_message(QueueUrl=url_b, WaitTimeSeconds=5, MessageAttributeNames=["All"],
                             AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in got] == ["from A"]
    assert got[0]["MessageAttributes"]["k"]["StringValue"] == "000042"
    assert got[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    # in flight on B: A sees nothing; the handle from B deletes on A
    assert "Messages" not in qa.receive_message(QueueUrl=url_a, WaitTimeSeconds=0)
    qa.delete_message(QueueUrl=url_a, ReceiptHandle=got[0]["ReceiptHandle"])
    attrs = qb.get_queue_attributes(QueueUrl=url_b, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"

    # ChangeMessageVisibility across nodes: 0 on A makes B's message visible
    qb.send_message(QueueUrl=url_b, MessageBody="again")
    m = qa.receive_message(QueueUrl=url_a, WaitTimeSeconds=5)["Messages"][0]
    qb.change_message_visibility(QueueUrl=url_b, ReceiptHandle=m["ReceiptHandle"],
                                 VisibilityTimeout=0)
    m2 = qb.receive_message(QueueUrl=url_b, WaitTimeSeconds=5)["Messages"][0]
    assert m2["MessageId"] == m["MessageId"]
    # the first handle is stale now: its delete is accepted and does nothing
    qa.delete_message(QueueUrl=url_a, ReceiptHandle=m["ReceiptHandle"])
    r = qa.delete_message_batch(QueueUrl=url_a, Entries=[
        {"Id": "1", "ReceiptHandle": m2["ReceiptHandle"]}])
    assert [e["Id"] for e in r["Successful"]] == ["1"]
    assert "Messages" not in qa.receive_message(QueueUrl=url_a, WaitTimeSeconds=0)

    # tags set on B are A's; a purge on B empties the queue for A
    qb.tag_queue(QueueUrl=url_b, Tags={"team": "000042"})
    assert qa.list_queue_tags(QueueUrl=url_a)["Tags"] == {"team": "000042"}
    qa.send_message_batch(QueueUrl=url_a, Entries=[
        {"Id": str(i), "MessageBody": "p%d" % i} for i in range(3)])
    qb.purge_queue(QueueUrl=url_b)
    assert qa.get_queue_attributes(QueueUrl=url_a, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"

    # a queue deleted on A is gone on B (once B heard of it: SQS too says a
    # deletion may take a while to be seen everywhere)
    qa.delete_queue(QueueUrl=url_a)

    def gone():
        try:
            qb.get_queue_url(QueueName=name)
            return False
        except botocore.exceptions.ClientError as e:
            assert "NonExistentQueue" in str(e) or "QueueDoesNotExist" in str(e)
            return True

    wait_for(gone, 30, what="the deletion to reach node B")
    assert name not in str(qb.list_queues(QueueNamePrefix="shared"))


def test_concurrent_receivers_on_two_nodes_get_each_message_once(nodes):
    a, b = nodes
    qa = sqs_of(a)
    url = qa.create_queue(QueueName=unique("drain"),
                          Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    total = 500
    for k in range(0, total, 10):
        r = qa.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": "m%03d" % (k + i)} for i in range(10)])
        assert len(r["Successful"]) == 10
    seen = []
    lock = threading.Lock()
    errors = []

    def receiver(srv):
        sqs = sqs_of(srv)
        try:
            empty = 0
            while empty < 3:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=1).get("Messages", [])
                if not got:
                    with lock:
                        if len(seen) >= total:
                            empty += 1
                    continue
                with lock:
                    seen.extend(m["Body"] for m in got)
                sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(got)])
        except Exception as e:  # reported below, not lost in the thread
            errors.append(repr(e))

    threads = [threading.Thread(target=receiver, args=(srv,)) for srv in (a, a, b, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(seen) == total, "received %d, want %d" % (len(seen), total)
    assert sorted(seen) == ["m%03d" % i for i in range(total)]


# bodies and attribute values that a careless array or SQL literal would
# change: quotes, backslashes, braces, commas, the text NULL, unicode
TRICKY = ['say "hi"', "back\\slash \\\" end", "{a,b}", "NULL", "",
          "caf\u00e9 \u65e5\u672c \U0001F600", "{\"NULL\"}", "tab\tand\nnewline",
          "'single' & <xml>", "000042"]


def test_standard_batch_round_trips_exactly_once_across_nodes(nodes):
    a, b = nodes
    qa, qb = sqs_of(a), sqs_of(b)
    url = qa.create_queue(QueueName=unique("batch"),
                          Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    entries = []
    for i, t in enumerate(TRICKY):
        attrs = {"s": {"DataType": "String", "StringValue": t or "NULL"},
                 "n": {"DataType": "Number", "StringValue": "000042"},
                 "b": {"DataType": "Binary",
                       "BinaryValue": ("%d\\\"{}" % i).encode() + b"\x00\xff"},
                 "q.k_-": {"DataType": "String.x-y_z", "StringValue": "\\\"}"}}
        entries.append({"Id": "e%d" % i, "MessageBody": "%d|%s" % (i, t),
                        "MessageAttributes": attrs})
    entries[3]["MessageSystemAttributes"] = {"AWSTraceHeader": {
        "DataType": "String",
        "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
                       "Sampled=1"}}
    r = qa.send_message_batch(QueueUrl=url, Entries=entries)
    assert not r.get("Failed"), r
    sent = {e["Id"]: e for e in r["Successful"]}
    assert sorted(sent) == sorted(e["Id"] for e in entries)
    want = {}
    for e in entries:
        s = sent[e["Id"]]
        assert s["MD5OfMessageBody"] == md5_hex(e["MessageBody"])
        assert s["MD5OfMessageAttributes"] == md5_of_attributes(e["MessageAttributes"])
        want[s["MessageId"]] = e
    assert len(want) == 10  # ten distinct ids

    # received across A and B, each exactly once, unchanged
    got = {}
    for k in range(40):
        if len(got) == len(want):
            break
        sqs = (qa, qb)[k % 2]
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, WaitTimeSeconds=1,
                                     MessageAttributeNames=["All"],
                                     AttributeNames=["All"]).get("Messages", []):
            assert m["MessageId"] not in got, "received twice: %r" % m
            got[m["MessageId"]] = m
    assert sorted(got) == sorted(want)
    for mid, m in got.items():
        e = want[mid]
        assert m["Body"] == e["MessageBody"]
        assert m["MD5OfBody"] == md5_hex(e["MessageBody"])
        assert m["MessageAttributes"] == e["MessageAttributes"]
        assert m["MD5OfMessageAttributes"] == md5_of_attributes(e["MessageAttributes"])
        if "MessageSystemAttributes" in e:
            assert m["Attributes"]["AWSTraceHeader"] == \
                e["MessageSystemAttributes"]["AWSTraceHeader"]["StringValue"]
        else:
            assert "AWSTraceHeader" not in m["Attributes"]
    for sqs in (qa, qb):
        assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)

    # a batch with an invalid entry: the others are sent, that one alone fails
    r = qb.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok1", "MessageBody": "NULL"},
        {"Id": "bad", "MessageBody": "x", "DelaySeconds": 901},
        {"Id": "ok2", "MessageBody": "{\\}"}])
    assert sorted(e["Id"] for e in r["Successful"]) == ["ok1", "ok2"]
    assert [e["Id"] for e in r["Failed"]] == ["bad"]
    bodies = []
    for k in range(40):
        if len(bodies) == 2:
            break
        bodies += [m["Body"] for m in (qa, qb)[k % 2].receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])]
    assert sorted(bodies) == ["NULL", "{\\}"]


def test_long_poll_on_one_node_wakes_for_a_send_on_the_other(nodes):
    a, b = nodes
    qa, qb = sqs_of(a), sqs_of(b)
    url = qa.create_queue(QueueName=unique("wake"))["QueueUrl"]
    result = {}

    def poll():
        t0 = time.monotonic()
        r = qb.receive_message(QueueUrl=url, WaitTimeSeconds=20)
        result["took"] = time.monotonic() - t0
        result["msgs"] = r.get("Messages", [])

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(1.0)  # let the poll park on B (nothing to receive yet)
    qa.send_message(QueueUrl=url, MessageBody="wake up")
    t.join(timeout=60)
    assert [m["Body"] for m in result["msgs"]] == ["wake up"]
    # woken by the notification, not by the end of its 20 s wait
    assert result["took"] < 15, result


def test_long_poll_on_a_queue_deleted_meanwhile_says_it_is_gone(nodes):
    """A long poll whose queue is deleted (on its own node or the other)
    ends with QueueDoesNotExist, as SQS answers (and tarn on LMDB), not
    with an empty result at the end of its wait."""
    a, b = nodes
    qa = sqs_of(a)
    url = qa.create_queue(QueueName=unique("gone"))["QueueUrl"]
    results = {}

    def poll(key, srv):
        t0 = time.monotonic()
        try:
            r = sqs_of(srv).receive_message(QueueUrl=url, WaitTimeSeconds=20)
            results[key] = ("answered", r.get("Messages", []))
        except botocore.exceptions.ClientError as e:
            results[key] = ("error", e.response["Error"]["Code"])
        results[key + " took"] = time.monotonic() - t0

    threads = [threading.Thread(target=poll, args=(k, srv)) for k, srv in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    # give the polls a moment to park; not a synchronization: a poll that
    # starts after the deletion gets the same answer
    time.sleep(1.0)
    qa.delete_queue(QueueUrl=url)
    for t in threads:
        t.join(timeout=90)
    for k in ("a", "b"):
        assert results[k][0] == "error", results
        assert results[k][1] in ("AWS.SimpleQueueService.NonExistentQueue",
                                 "QueueDoesNotExist"), results
        # woken by the deletion, not by the end of its 20 s wait
        assert results[k + " took"] < 15, results


def test_acknowledged_sends_survive_kill9_of_the_node(nodes):
    a, b = nodes
    qa = sqs_of(a)
    url = qa.create_queue(QueueName=unique("crash"))["QueueUrl"]
    acked = set()
    lock = threading.Lock()

    def sender(k):
        sqs = sqs_of(a)
        for i in range(10):
            body = "t%d-m%d" % (k, i)
            sqs.send_message(QueueUrl=url, MessageBody=body)
            with lock:
                acked.add(body)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a.kill9()
    qb = sqs_of(b)
    got = []

    def more():
        r = qb.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                               VisibilityTimeout=300)
        got.extend(m["Body"] for m in r.get("Messages", []))
        return len(got) >= len(acked)

    wait_for(more, 60, interval=0, what="%d messages" % len(acked))
    assert sorted(got) == sorted(acked)
    # the node comes back on its data directory and serves the queue again
    a.start()
    assert sqs_of(a).get_queue_url(QueueName=url.rsplit("/", 1)[1])["QueueUrl"] == url


def test_fifo_order_and_groups_across_nodes(nodes):
    a, b = nodes
    qa, qb = sqs_of(a), sqs_of(b)
    url = qa.create_queue(QueueName=unique("order") + ".fifo",
                          Attributes={"FifoQueue": "true",
                                      "ContentBasedDeduplication": "true"})["QueueUrl"]
    for i in range(6):
        (qa if i % 2 == 0 else qb).send_message(QueueUrl=url, MessageBody="g1-%d" % i,
                                                MessageGroupId="g1")
    # a duplicate within the window, sent on the other node, is the first send
    first = qa.send_message(QueueUrl=url, MessageBody="dup", MessageGroupId="g2")
    again = qb.send_message(QueueUrl=url, MessageBody="dup", MessageGroupId="g2")
    assert again["MessageId"] == first["MessageId"]

    got = qb.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]
    g1 = [m for m in got if m["Body"].startswith("g1")]
    assert [m["Body"] for m in g1] == ["g1-0", "g1-1", "g1-2"][:len(g1)]
    # g1 is in flight on B: A gets only other groups until B deletes
    other = qa.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert all(not m["Body"].startswith("g1") for m in other)
    assert [m["Body"] for m in other if m["Body"] == "dup"] in (["dup"], [])
    qb.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    rest = []
    while len(rest) < 6 - len(g1):
        r = qa.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
        ms = [m for m in r.get("Messages", []) if m["Body"].startswith("g1")]
        assert ms, "the group stayed blocked"
        rest.extend(m["Body"] for m in ms)
        qa.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(r["Messages"])])
    assert [m["Body"] for m in g1] + rest == ["g1-%d" % i for i in range(6)]


def test_dead_letter_redrive_across_nodes(nodes):
    a, b = nodes
    qa, qb = sqs_of(a), sqs_of(b)
    dlq = qa.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = qa.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    src = qb.create_queue(QueueName=unique("src"), Attributes={
        "RedrivePolicy": '{"deadLetterTargetArn":"%s","maxReceiveCount":"2"}' % dlq_arn})[
        "QueueUrl"]
    qa.send_message(QueueUrl=src, MessageBody="poison")
    for srv in (qa, qb):
        m = srv.receive_message(QueueUrl=src, WaitTimeSeconds=5, VisibilityTimeout=0)
        assert [x["Body"] for x in m["Messages"]] == ["poison"]
    # the third receive moves it to the dead-letter queue instead
    assert "Messages" not in qa.receive_message(QueueUrl=src, WaitTimeSeconds=0)
    got = qb.receive_message(QueueUrl=dlq, WaitTimeSeconds=5)["Messages"]
    assert [x["Body"] for x in got] == ["poison"]
