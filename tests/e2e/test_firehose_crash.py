"""tests/e2e/test_firehose_crash.py -- Firehose durability under kill -9:
every record acknowledged by PutRecordBatch is in the delivered objects
after a restart (at least once), whether it was still in the buffer or
being delivered when the server died. put_until_killed is shared with
test_kinesis_crash.py.
"""
import threading

from botocore.exceptions import BotoCoreError, ClientError

from queue_util import client, unique
from tarnlib import list_all_keys
from test_events import wait_for


def put_until_killed(srv, put, nthreads=6):
    """Runs put(thread, i) from threads, kills the server with SIGKILL while
    they run, and returns the set of what put acknowledged."""
    acked = set()
    lock = threading.Lock()
    stop = threading.Event()

    def worker(k):
        i = 0
        while not stop.is_set() and i < 400:
            try:
                got = put(k, i)
            except (BotoCoreError, ClientError):
                return
            with lock:
                acked.update(got)
            i += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 300, timeout=60, interval=0.01)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    return acked


def test_firehose_acknowledged_records_are_delivered_after_kill9(tarn_factory):
    srv = tarn_factory()
    s3 = srv.client()
    fh = client(srv, "firehose", connect_timeout=2, read_timeout=10, parameter_validation=False)
    bucket = unique("crash").lower()
    s3.create_bucket(Bucket=bucket)
    name = unique("hose")
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::000000000000:role/firehose",
            "BucketARN": "arn:aws:s3:::" + bucket,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 2}})

    def put(k, i):
        recs = [b"r-%d-%d-%d-" % (k, i, j) + b"x" * 2000 + b"\n" for j in range(10)]
        r = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in recs])
        assert r["FailedPutCount"] == 0
        return {d.split(b"-x")[0] for d in recs}

    acked = put_until_killed(srv, put)
    srv.start()
    s3 = srv.client()

    def delivered():
        seen = set()
        for key in list_all_keys(s3, bucket):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            seen.update(line.split(b"-x")[0] for line in body.splitlines())
        return acked <= seen and seen

    seen = wait_for(delivered, timeout=60, interval=0.5)
    assert acked <= seen
