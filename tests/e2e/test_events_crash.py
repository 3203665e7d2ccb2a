"""tests/e2e/test_events_crash.py -- at least once across a crash: objects
are uploaded from several threads while the server is killed with SIGKILL
(its event dispatcher mid-stream); after a restart on the same data
directory, every upload that was acknowledged has its S3 event in the
queue (duplicates allowed, nothing missing), and the queue's own messages
are all still there.

Why it holds: the store writes the feed entry in the object change's own
LMDB commit, and the dispatcher trims an entry only after the queue
committed the message (DESIGN.md §6).
"""
import json
import threading
import time
import urllib.parse

from test_events import aws_client, make_queue, queue_rule

WRITERS = 8
ENOUGH = 200          # acknowledged uploads before the kill


def test_acknowledged_uploads_are_delivered_after_kill9(tarn_factory):
    srv = tarn_factory()
    s3 = srv.client(max_pool_connections=WRITERS + 2)
    sqs = aws_client(srv, "sqs")
    bucket = "crash-events"
    s3.create_bucket(Bucket=bucket)
    url, arn = make_queue(sqs, "crash-events")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [queue_rule(arn, ["s3:ObjectCreated:*"])]})
    # a plain message too: the queue's own durability
    sqs.send_message(QueueUrl=url, MessageBody="sent before the crash")

    acknowledged = set()
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w):
        j = 0
        while not stop.is_set():
            key = "w%d/obj %05d.bin" % (w, j)
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=b"x" * (j % 100))
            except Exception:
                return  # the server is gone: this one was not acknowledged
            with lock:
                acknowledged.add(key)
            j += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with lock:
            if len(acknowledged) >= ENOUGH:
                break
        time.sleep(0.01)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    with lock:
        want = set(acknowledged)
    assert len(want) >= ENOUGH

    srv.start()
    sqs = aws_client(srv, "sqs")
    seen = set()
    plain = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (want <= seen and plain >= 1):
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        msgs = r.get("Messages", [])
        for m in msgs:
            if m["Body"] == "sent before the crash":
                plain += 1
                continue
            doc = json.loads(m["Body"])
            for rec in doc.get("Records", []):
                seen.add(urllib.parse.unquote_plus(rec["s3"]["object"]["key"]))
        if msgs:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
    missing = sorted(want - seen)
    assert not missing, "%d acknowledged uploads have no event, e.g. %s" % (
        len(missing), missing[:5])
    assert plain >= 1
    # every event is of an object that exists (none invented)
    s3 = srv.client()
    for key in list(seen)[:50]:
        s3.head_object(Bucket=bucket, Key=key)
