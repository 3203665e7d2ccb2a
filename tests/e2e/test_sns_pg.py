"""tests/e2e/test_sns_pg.py -- SNS topics shared by two tarn nodes over one
PostgreSQL (`tarn server --metadata postgres://...`, here TARN_METADATA): a
topic made on one node is published to on the other, a subscription or a
filter policy set on one node is applied by a publish on the other right
after the answer, each subscribed queue gets each message once whichever
node published it, a topic deleted on one node is gone for the other, an
HTTP subscription is confirmed on the node that did not send the
confirmation, FIFO topics deduplicate across nodes, and the deliveries a
node held when it was killed -9 are made by the other after their lease.
"""
import json
import threading

import botocore.exceptions
import pytest

from pg_util import backend, pg, two_nodes  # noqa: F401 (fixtures)
from queue_util import Endpoint, client, queue_arn, unique, wait_for

LEASE_SECONDS = 3


@pytest.fixture(scope="module")
def nodes(pg, backend, tmp_path_factory):
    """Two nodes over the same PostgreSQL and object backend; the kill -9
    test restarts the one it kills, so both stop cleanly at the end."""
    yield from two_nodes(pg, backend, tmp_path_factory, prefix="sns",
                         extra={"TARN_SNS_LEASE_SECONDS": str(LEASE_SECONDS)})


def sns_of(srv):
    return client(srv, "sns")


def sqs_of(srv):
    return client(srv, "sqs")


def drain(sqs, url, count, timeout=60.0, last=True):
    """Receives and deletes until count messages came; then (last) one more
    empty receive shows there is nothing left (no duplicate)."""
    got = []

    def more():
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                MessageAttributeNames=["All"])
        for m in r.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(got) >= count

    wait_for(more, timeout, interval=0, what="%d messages" % count)
    if last:
        assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    return got


def error_code(fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        fn(**kw)
    return ei.value.response["Error"]["Code"]


def test_publish_on_either_node_reaches_a_queue_once(nodes):
    a, b = nodes
    arn = sns_of(a).create_topic(Name=unique("shared"))["TopicArn"]
    # the topic made on A is known to B
    assert arn in [t["TopicArn"] for t in sns_of(b).list_topics()["Topics"]]
    qname = unique("fan")
    url = sqs_of(a).create_queue(QueueName=qname)["QueueUrl"]
    # subscribed on B, published on A right after B answered
    sub = sns_of(b).subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(qname),
                              Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
    sns_of(a).publish(TopicArn=arn, Message="first from A")
    assert [s["SubscriptionArn"] for s in
            sns_of(a).list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]] == [sub]

    sent = {"first from A"}
    lock = threading.Lock()

    def publisher(srv, tag):
        sns = sns_of(srv)
        for i in range(6):
            body = "%s-%d" % (tag, i)
            sns.publish(TopicArn=arn, Message=body,
                        MessageAttributes={"n": {"DataType": "Number", "StringValue": "000042"}})
            with lock:
                sent.add(body)

    threads = [threading.Thread(target=publisher, args=(srv, tag))
               for srv, tag in ((a, "a1"), (a, "a2"), (b, "b1"), (b, "b2"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # received from both nodes, each message exactly once
    half = len(sent) // 2
    got = drain(sqs_of(b), url, half, last=False)
    got += drain(sqs_of(a), url, len(sent) - len(got))
    bodies = [m["Body"] for m in got]
    assert sorted(bodies) == sorted(sent)
    assert all(m["MessageAttributes"]["n"]["StringValue"] == "000042"
               for m in got if m["Body"] != "first from A")


def test_filter_policy_set_on_one_node_applies_on_the_other(nodes):
    a, b = nodes
    arn = sns_of(a).create_topic(Name=unique("filter"))["TopicArn"]
    qname = unique("red")
    url = sqs_of(a).create_queue(QueueName=qname)["QueueUrl"]
    sub = sns_of(a).subscribe(TopicArn=arn, Protocol="sqs",
                              Endpoint=queue_arn(qname))["SubscriptionArn"]
    sns_of(a).publish(TopicArn=arn, Message="before")  # A's cache holds the subscription
    sns_of(b).set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy",
                                          AttributeValue=json.dumps({"color": ["red"]}))
    for color in ("blue", "red"):
        sns_of(a).publish(TopicArn=arn, Message=color, MessageAttributes={
            "color": {"DataType": "String", "StringValue": color}})
    got = drain(sqs_of(b), url, 2)
    assert sorted(json.loads(m["Body"])["Message"] for m in got) == ["before", "red"]
    attrs = sns_of(a).get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert json.loads(attrs["FilterPolicy"]) == {"color": ["red"]}
    # unsubscribed on A: a publish on B delivers nothing
    sns_of(a).unsubscribe(SubscriptionArn=sub)
    sns_of(b).publish(TopicArn=arn, Message="red", MessageAttributes={
        "color": {"DataType": "String", "StringValue": "red"}})
    assert "Messages" not in sqs_of(b).receive_message(QueueUrl=url, WaitTimeSeconds=1)


def test_topic_deleted_on_one_node_is_gone_on_the_other(nodes):
    a, b = nodes
    arn = sns_of(a).create_topic(Name=unique("gone"), Tags=[{"Key": "k", "Value": "v"}])[
        "TopicArn"]
    sns_of(a).publish(TopicArn=arn, Message="cached on A")
    assert sns_of(b).list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "k", "Value": "v"}]
    sns_of(b).set_topic_attributes(TopicArn=arn, AttributeName="DisplayName",
                                   AttributeValue="shown")
    assert sns_of(a).get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "shown"
    sns_of(b).delete_topic(TopicArn=arn)
    assert error_code(sns_of(a).publish, TopicArn=arn, Message="x") == "NotFound"
    assert arn not in [t["TopicArn"] for t in sns_of(a).list_topics()["Topics"]]
    # made again (on B): a new topic with no subscriptions
    assert sns_of(b).create_topic(Name=arn.rsplit(":", 1)[1])["TopicArn"] == arn
    sns_of(a).publish(TopicArn=arn, Message="nobody listens")
    assert sns_of(a).list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []


def test_fifo_topic_across_nodes(nodes):
    a, b = nodes
    arn = sns_of(a).create_topic(Name=unique("order") + ".fifo", Attributes={
        "FifoTopic": "true"})["TopicArn"]
    qname = unique("order") + ".fifo"
    url = sqs_of(a).create_queue(QueueName=qname, Attributes={"FifoQueue": "true"})["QueueUrl"]
    sns_of(b).subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(qname),
                        Attributes={"RawMessageDelivery": "true"})
    for i in range(6):
        srv = a if i % 2 == 0 else b
        sns_of(srv).publish(TopicArn=arn, Message="m%d" % i, MessageGroupId="g",
                            MessageDeduplicationId="d%d" % i)
    # a duplicate id, on the other node, within the window: dropped
    sns_of(b).publish(TopicArn=arn, Message="again", MessageGroupId="g",
                      MessageDeduplicationId="d0")
    got = []
    sqs = sqs_of(b)

    def more():
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in r.get("Messages", []):
            got.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(got) >= 6

    wait_for(more, 60, interval=0, what="6 FIFO messages")
    assert got == ["m%d" % i for i in range(6)]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)


def test_http_subscription_confirmed_on_the_other_node(nodes):
    a, b = nodes
    ep = Endpoint().start()
    try:
        arn = sns_of(a).create_topic(Name=unique("web"))["TopicArn"]
        sns_of(a).subscribe(TopicArn=arn, Protocol="http", Endpoint=ep.url)
        headers, conf = ep.next(timeout=60)
        assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
        r = sns_of(b).confirm_subscription(TopicArn=arn, Token=conf["Token"])
        sub = r["SubscriptionArn"]
        assert sub.startswith(arn + ":")
        subs = sns_of(a).list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        assert [s["SubscriptionArn"] for s in subs] == [sub]
        pub = sns_of(a).publish(TopicArn=arn, Message="to the web")
        while True:  # at least once: a slow delivery may be redone after its lease
            headers, note = ep.next(timeout=60)
            if note.get("Type") == "Notification":
                break
        assert note["MessageId"] == pub["MessageId"] and note["Message"] == "to the web"
        assert headers["x-amz-sns-subscription-arn"] == sub
    finally:
        ep.stop()


class HoldingEndpoint(Endpoint):
    """An endpoint that, while holding, keeps each POST open until released
    and then closes it without an answer (a failed delivery); afterwards it
    answers 200 and records the message ids."""

    def __init__(self):
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()
        self.held = 0
        self.delivered = set()
        self.lock = threading.Lock()

    def on_post(self, handler, body):
        raw = body.decode()
        note = json.loads(raw)
        if self.holding.is_set():
            with self.lock:
                self.held += 1
            self.release.wait(120)
            handler.close_connection = True
            return
        if note.get("Type") == "SubscriptionConfirmation":
            self.posts.put(({k.lower(): v for k, v in handler.headers.items()}, raw))
        with self.lock:
            self.delivered.add(note.get("MessageId"))
        self.answer(handler, 200)


def test_deliveries_held_by_a_killed_node_are_made_by_the_other(nodes, pg):
    a, b = nodes
    ep = HoldingEndpoint().start()
    try:
        arn = sns_of(a).create_topic(Name=unique("crash"))["TopicArn"]
        qname = unique("crash")
        url = sqs_of(b).create_queue(QueueName=qname)["QueueUrl"]
        sns_of(b).subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(qname),
                            Attributes={"RawMessageDelivery": "true"})
        sns_of(b).subscribe(TopicArn=arn, Protocol="http", Endpoint=ep.url)
        _, conf = ep.next(timeout=60)
        sns_of(a).confirm_subscription(TopicArn=arn, Token=conf["Token"])
        ep.holding.set()
        ids = set()
        for i in range(5):
            ids.add(sns_of(a).publish(TopicArn=arn, Message="m%d" % i)["MessageId"])
        # A (which the publishes kick) or B has claimed each delivery: all held
        wait_for(lambda: ep.held >= len(ids), 60, what="5 deliveries in flight")
        # some of them claimed by A (a claim's owner ends with its process id)
        held_by_a = int(pg.sql("SELECT count(*) FROM tarn_sns_outbox WHERE owner LIKE '%%-%d'"
                               % a.proc.pid).strip())
        assert held_by_a > 0
        a.kill9()
        ep.holding.clear()
        ep.release.set()  # what was held fails; the node alive tries again
        wait_for(lambda: ids <= ep.delivered, 60,
                 what="every notification delivered (lease %d s)" % LEASE_SECONDS)
        got = drain(sqs_of(b), url, len(ids))
        assert sorted(m["Body"] for m in got) == ["m%d" % i for i in range(5)]
    finally:
        ep.release.set()
        ep.stop()
        if not a.running():
            a.start()


def confirmed_http(arn, ep, on, confirm_on):
    """Subscribes ep to topic arn through node `on`, confirms it through
    `confirm_on`; returns the subscription's ARN."""
    sns_of(on).subscribe(TopicArn=arn, Protocol="http", Endpoint=ep.url)
    _, conf = ep.next(timeout=60)
    return sns_of(confirm_on).confirm_subscription(TopicArn=arn, Token=conf["Token"])[
        "SubscriptionArn"]


def test_publish_batch_to_many_queues_each_copy_once(nodes):
    """A PublishBatch to a topic with several queue subscriptions (raw and
    enveloped) and an HTTP one: every queue gets every entry once, bodies
    and attributes exactly as published (quotes, backslashes, braces, the
    text NULL), and a subscribed queue deleted meanwhile loses only its own
    copies."""
    a, b = nodes
    arn = sns_of(a).create_topic(Name=unique("wide"))["TopicArn"]
    urls = {}
    for i in range(4):
        qname = unique("wide%d" % i)
        urls[qname] = sqs_of(a).create_queue(QueueName=qname)["QueueUrl"]
        sns_of(b).subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(qname),
                            Attributes={"RawMessageDelivery": "true" if i % 2 else "false"})
    gone = unique("wide-gone")
    gone_url = sqs_of(a).create_queue(QueueName=gone)["QueueUrl"]
    sns_of(b).subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(gone))
    sqs_of(a).delete_queue(QueueUrl=gone_url)
    ep = Endpoint().start()
    try:
        confirmed_http(arn, ep, a, b)
        bodies = ['NULL', 'not empty', '{"a": "b\\"c"}', 'back\\slash', 'comma, and } brace',
                  '"quoted"', 'tab\there', 'ünï', 'x' * 2000, 'last']
        entries = [{"Id": "e%d" % i, "Message": body,
                    "MessageAttributes": {"k": {"DataType": "String",
                                                "StringValue": 'v"%d\\' % i}}}
                   for i, body in enumerate(bodies)]
        r = sns_of(a).publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
        assert len(r["Successful"]) == 10 and not r.get("Failed"), r
        ids = {s["Id"]: s["MessageId"] for s in r["Successful"]}
        by_body = {body: ids["e%d" % i] for i, body in enumerate(bodies)}
        want = {ids["e%d" % i]: (body, 'v"%d\\' % i) for i, body in enumerate(bodies)}
        for n, url in enumerate(urls.values()):
            got = drain(sqs_of(b if n % 2 else a), url, 10)
            if n % 2:  # raw: the message and its attributes as published
                seen = {by_body[m["Body"]]: (m["Body"], m["MessageAttributes"]["k"]["StringValue"])
                        for m in got}
            else:  # the SNS envelope
                envs = [json.loads(m["Body"]) for m in got]
                seen = {e["MessageId"]: (e["Message"], e["MessageAttributes"]["k"]["Value"])
                        for e in envs}
            assert len(got) == 10 and seen == want, url
        notes = {}
        while len(notes) < 10:
            _, note = ep.next(timeout=60)
            if note.get("Type") == "Notification":
                notes[note["MessageId"]] = note["Message"]
        assert notes == {ids["e%d" % i]: body for i, body in enumerate(bodies)}
    finally:
        ep.stop()


def test_unsubscribe_removes_the_pending_deliveries(nodes, pg):
    """Deliveries waiting for a retry go with their subscription (deleted
    on the other node), not when a worker next claims them."""
    a, b = nodes
    ep = Endpoint().start()
    try:
        arn = sns_of(a).create_topic(Name=unique("unsub"))["TopicArn"]
        sub = confirmed_http(arn, ep, a, a)
        ep.fail_next = 10 ** 6  # every delivery fails and waits for a later retry
        for i in range(3):
            sns_of(a).publish(TopicArn=arn, Message="m%d" % i)

        def pending():
            return int(pg.sql("SELECT count(*) FROM tarn_sns_outbox WHERE sub = '%s'"
                              " AND attempts >= 2" % sub).strip())
        # each tried twice: the next try is seconds away
        wait_for(lambda: pending() == 3, 90, what="3 deliveries waiting for a retry")
        sns_of(b).unsubscribe(SubscriptionArn=sub)
        assert pg.sql("SELECT count(*) FROM tarn_sns_outbox WHERE sub = '%s'" % sub).strip() \
            == "0"
        # a topic deleted with a subscription's pending deliveries takes them too
        sns_of(a).subscribe(TopicArn=arn, Protocol="http", Endpoint=ep.url)
        sub2 = pg.sql("SELECT arn FROM tarn_sns_subs WHERE topic = '%s'"
                      % arn.split(":")[-1]).strip()
        assert sub2.startswith(arn + ":")
        wait_for(lambda: int(pg.sql("SELECT count(*) FROM tarn_sns_outbox WHERE sub = '%s'"
                                    " AND attempts >= 1" % sub2).strip()) == 1,
                 90, what="the confirmation waiting for a retry")
        sns_of(b).delete_topic(TopicArn=arn)
        assert pg.sql("SELECT count(*) FROM tarn_sns_outbox WHERE sub = '%s'" % sub2).strip() \
            == "0"
    finally:
        ep.stop()
