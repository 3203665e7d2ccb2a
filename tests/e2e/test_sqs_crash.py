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
