"""tests/e2e/test_sqs_crash.py -- SQS durability under kill -9: every message
acknowledged by SendMessage (single, batched, concurrent) is there after a
restart, and messages received but not deleted come back once their
visibility timeout has passed, also across the restart.
"""
import threading

from queue_util import client, receive_all, unique, wait_for


def test_acknowledged_messages_survive_kill9(tarn_factory):
    srv = tarn_factory()
    sqs = client(srv, "sqs")
    url = sqs.create_queue(QueueName=unique("crash"))["QueueUrl"]
    acked = set()
    lock = threading.Lock()

    def sender(k):
        for i in range(10):
            body = "t%d-m%d" % (k, i)
            sqs.send_message(QueueUrl=url, MessageBody=body)
            with lock:
                acked.add(body)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    r = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": "batch-%d" % i} for i in range(10)])
    assert len(r["Successful"]) == 10
    acked.update("batch-%d" % i for i in range(10))
    srv.kill9()
    srv.start()
    sqs = client(srv, "sqs")
    got = receive_all(sqs, url, len(acked), VisibilityTimeout=300)
    assert sorted(m["Body"] for m in got) == sorted(acked)


def test_in_flight_messages_come_back_after_kill9(tarn_factory):
    srv = tarn_factory()
    sqs = client(srv, "sqs")
    url = sqs.create_queue(QueueName=unique("inflight"))["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": "m%d" % i} for i in range(5)])
    first = receive_all(sqs, url, 5, VisibilityTimeout=2)
    ids = sorted(m["MessageId"] for m in first)
    srv.kill9()
    srv.start()
    sqs = client(srv, "sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert int(attrs["ApproximateNumberOfMessages"]) + \
        int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 5
    again = receive_all(sqs, url, 5, AttributeNames=["ApproximateReceiveCount"])
    assert sorted(m["MessageId"] for m in again) == ids
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in again} == {"2"}
    # and they can be deleted with the new handles
    for m in again:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    wait_for(lambda: sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        ["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0", what="deletes")


def test_stop_while_parked_polls_are_being_answered(tarn_factory):
    """SIGTERM arrives while long polls are parked and sends keep waking
    them: the stop and the queue service both want to answer a parked
    receive. Each must be answered once, by one of them (a message or a
    503), the server must exit 0 (the sanitizers of the test build turn a
    write to a freed connection into a crash), and every acknowledged send
    is there after the restart."""
    from botocore.exceptions import ClientError
    from botocore.parsers import ResponseParserError

    srv = tarn_factory()
    sqs = client(srv, "sqs")
    url = sqs.create_queue(QueueName=unique("stop-race"),
                           Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    acked = set()
    answers = {"messages": 0, "503": 0, "other": []}
    lock = threading.Lock()
    stopping = threading.Event()

    def receiver():
        rc = client(srv, "sqs")
        while not stopping.is_set():
            try:
                r = rc.receive_message(QueueUrl=url, WaitTimeSeconds=20,
                                       MaxNumberOfMessages=1)
                with lock:
                    answers["messages"] += len(r.get("Messages", []))
            except ClientError as e:
                with lock:
                    if e.response["ResponseMetadata"]["HTTPStatusCode"] == 503:
                        answers["503"] += 1
                    else:
                        answers["other"].append(repr(e))
                return
            except ResponseParserError as e:  # a torn or doubled answer
                with lock:
                    answers["other"].append(repr(e))
                return
            except Exception:  # refused or cut: the stop has begun
                return

    def sender(k):
        sc = client(srv, "sqs")
        i = 0
        while not stopping.is_set():
            body = "s%d-%d" % (k, i)
            try:
                sc.send_message(QueueUrl=url, MessageBody=body)
            except Exception:
                return  # refused or cut by the stop: not acknowledged
            with lock:
                acked.add(body)
            i += 1

    receivers = [threading.Thread(target=receiver) for _ in range(12)]
    senders = [threading.Thread(target=sender, args=(k,)) for k in range(3)]
    for t in receivers + senders:
        t.start()
    # the stop comes while polls are being woken by sends
    wait_for(lambda: answers["messages"] >= 20, timeout=120, what="polls answered by sends")
    rc = srv.stop()
    stopping.set()
    for t in receivers + senders:
        t.join(60)
        assert not t.is_alive(), "a client is still waiting after the stop"
    assert rc == 0, "tarn exited with %r while answering parked polls\n%s" % (rc, srv.logs())
    assert answers["other"] == [], answers["other"]

    srv.start()
    sqs = client(srv, "sqs")
    seen = set()

    def all_back():
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                VisibilityTimeout=300)
        seen.update(m["Body"] for m in r.get("Messages", []))
        return acked <= seen

    wait_for(all_back, timeout=120, interval=0, what="every acknowledged send")
