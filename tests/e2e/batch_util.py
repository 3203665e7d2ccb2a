"""tests/e2e/batch_util.py -- what the S3 Batch Operations tests share: a
boto3 `s3control` client for a server, a CSV manifest writer, and waiting
for a job's status without fixed sleeps.

botocore builds S3 Control URLs as ACCOUNT.HOST (its endpoint rules put the
account id in front of the host even with inject_host_prefix=False), and
ACCOUNT.127.0.0.1 does not resolve: the client here takes the prefix off
again before signing, as the README tells users to do.
"""
import re
import time
import urllib.parse

import boto3
from botocore.config import Config

from tarnlib import REGION

ACCOUNT = "000000000000"
ROLE = "arn:aws:iam::000000000000:role/batch-operations"


def control_client(tarn, ak=None, sk=None):
    cfg = Config(inject_host_prefix=False, retries={"total_max_attempts": 1},
                 connect_timeout=10, read_timeout=120)
    ctl = boto3.session.Session().client(
        "s3control", endpoint_url=tarn.endpoint, region_name=REGION,
        aws_access_key_id=ak or tarn.access_key, aws_secret_access_key=sk or tarn.secret_key,
        config=cfg)

    def strip_account(request, **kw):
        request.url = re.sub(r"://[0-9]{12}\.", "://", request.url, count=1)

    ctl.meta.events.register("before-sign.s3-control", strip_account)
    return ctl


def put_manifest(s3, bucket, key, rows):
    """Writes a CSV manifest of (bucket, key) rows, keys URL-encoded as AWS
    documents; returns the Manifest member of CreateJob."""
    body = "".join("%s,%s\n" % (b, urllib.parse.quote(k)) for b, k in rows)
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body.encode())["ETag"]
    return {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {"ObjectArn": "arn:aws:s3:::%s/%s" % (bucket, key), "ETag": etag}}


def report(bucket, prefix="reports", scope="AllTasks"):
    return {"Bucket": "arn:aws:s3:::" + bucket, "Format": "Report_CSV_20180820",
            "Enabled": True, "Prefix": prefix, "ReportScope": scope}


NO_REPORT = {"Enabled": False}


def wait_status(ctl, job_id, statuses, timeout=120):
    """Polls DescribeJob until the job's status is one of statuses."""
    deadline = time.monotonic() + timeout
    while True:
        d = ctl.describe_job(AccountId=ACCOUNT, JobId=job_id)["Job"]
        if d["Status"] in statuses:
            return d
        assert time.monotonic() < deadline, "job %s still %s" % (job_id, d["Status"])
        time.sleep(0.2)


def wait_done(ctl, job_id, timeout=120):
    return wait_status(ctl, job_id, ("Complete", "Failed", "Cancelled"), timeout)
