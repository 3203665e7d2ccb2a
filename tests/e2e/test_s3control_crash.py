"""tests/e2e/test_s3control_crash.py -- S3 Batch Operations under kill -9: a
LambdaInvoke job whose function leaves one object per invocation is killed
midway; after the restart it completes, every task ran, and no task whose
result was committed ran again (only the invocations in flight at the kill,
at most BATCH_LAMBDA_CONCURRENCY, may repeat: batch/batch.h).
"""
import time
import uuid

import lambda_util
from batch_util import ACCOUNT, ROLE, control_client, put_manifest, report, wait_done

COUNTER = '''
import os, time, urllib.parse, uuid
import boto3
s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))

def handler(event, context):
    task = event["tasks"][0]
    key = urllib.parse.unquote(task["s3Key"])
    bucket = task["s3BucketArn"].split(":::")[1]
    s3.put_object(Bucket=bucket, Key="seen/%s/%s" % (key, uuid.uuid4().hex), Body=b"1")
    time.sleep(0.2)
    return {"invocationSchemaVersion": "1.0", "treatMissingKeysAs": "PermanentFailure",
            "invocationId": event["invocationId"],
            "results": [{"taskId": task["taskId"], "resultCode": "Succeeded",
                         "resultString": key}]}
'''

TASKS = 40
IN_FLIGHT = 4  # BATCH_LAMBDA_CONCURRENCY


def seen(s3, bucket):
    counts = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="seen/"):
        for o in page.get("Contents", []):
            k = o["Key"][len("seen/"):].rsplit("/", 1)[0]
            counts[k] = counts.get(k, 0) + 1
    return counts


def test_job_resumes_after_kill9_without_redoing_tasks(tarn_factory):
    srv = tarn_factory()
    s3 = srv.client()
    ctl = control_client(srv)
    lam = lambda_util.lambda_client(srv)
    fn = lambda_util.create(lam, lambda_util.unique_name("counter"),
                            code=lambda_util.zip_files({"f.py": (COUNTER, 0o100644)}),
                            runtime="python3.11", handler="f.handler",
                            Timeout=60)["FunctionArn"]
    b = "crash-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=b)
    keys = ["item/%03d" % i for i in range(TASKS)]
    manifest = put_manifest(s3, b, "m.csv", [(b, k) for k in keys])
    job = ctl.create_job(AccountId=ACCOUNT, ConfirmationRequired=False,
                         Operation={"LambdaInvoke": {"FunctionArn": fn}},
                         Report=report(b, "rep"), ClientRequestToken=uuid.uuid4().hex,
                         Manifest=manifest, Priority=1, RoleArn=ROLE)["JobId"]
    deadline = time.monotonic() + 240
    while True:
        p = ctl.describe_job(AccountId=ACCOUNT, JobId=job)["Job"]["ProgressSummary"]
        done_before = p.get("NumberOfTasksSucceeded", 0)
        if done_before >= 8:
            break
        assert time.monotonic() < deadline, "the job made no progress: %s" % p
        time.sleep(0.1)
    assert done_before < TASKS
    srv.kill9()
    srv.start()
    s3 = srv.client()
    ctl = control_client(srv)
    d = wait_done(ctl, job, timeout=300)
    assert d["Status"] == "Complete", d
    p = d["ProgressSummary"]
    assert (p["TotalNumberOfTasks"], p["NumberOfTasksSucceeded"], p["NumberOfTasksFailed"]) == (
        TASKS, TASKS, 0)
    counts = seen(s3, b)
    assert sorted(counts) == keys  # every task ran
    repeated = {k: n for k, n in counts.items() if n > 1}
    # only invocations in flight at the kill may have run twice
    assert sum(counts.values()) - TASKS <= IN_FLIGHT, repeated
    assert len(repeated) <= IN_FLIGHT, repeated
    # the report has every task once
    base = "rep/job-%s" % job
    man = s3.get_object(Bucket=b, Key=base + "/manifest.json")["Body"].read().decode()
    assert '"succeeded"' in man and '"failed"' not in man
    listed = s3.list_objects_v2(Bucket=b, Prefix=base + "/results/")["Contents"]
    (res,) = listed
    rows = s3.get_object(Bucket=b, Key=res["Key"])["Body"].read().decode().splitlines()
    assert sorted(r.split(",")[1] for r in rows) == keys
