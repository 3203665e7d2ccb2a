"""tests/e2e/test_scale_10k.py -- the workflows issue's scale cases over
10,000 objects: a distributed Map whose ItemReader lists the 10,000 keys
(a JSON manifest in the bucket) and whose child executions read each object
(s3:getObject), its results summarised by a ResultWriter; and an S3 Batch
Operations job tagging the same 10,000 objects with a completion report.
Both are checked object by object, not by counts alone. SCALE_N sets
another number of objects (for trying the tests quickly).
"""
import concurrent.futures
import csv
import io
import json
import uuid

import pytest

from batch_util import ACCOUNT, ROLE, control_client, put_manifest, report, wait_done
from states_util import history, sfn_client, wait_done as sfn_wait

N = int(__import__("os").environ.get("SCALE_N", "10000"))
TAGS = [{"Key": "scale", "Value": "10k"}]


@pytest.fixture(scope="module")
def objects(tarn):
    s3 = tarn.client()
    bucket = "scale-%s" % uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=bucket)
    keys = ["obj/%05d" % i for i in range(N)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys))
    return s3, bucket, keys


def test_distributed_map_over_10000_objects(tarn, objects):
    s3, bucket, keys = objects
    s3.put_object(Bucket=bucket, Key="lists/all.json",
                  Body=json.dumps([{"key": k} for k in keys]).encode())
    d = {"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": True, "MaxConcurrency": 50,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "ReaderConfig": {"InputType": "JSON"},
                       "Parameters": {"Bucket": bucket, "Key": "lists/all.json"}},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
            "StartAt": "Get", "States": {"Get": {
                "Type": "Task", "Resource": "arn:aws:states:::s3:getObject",
                "Parameters": {"Bucket": bucket, "Key.$": "$.key"},
                "ResultSelector": {"body.$": "$.Body"}, "End": True}}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                         "Parameters": {"Bucket": bucket, "Prefix": "runs"}}}}}
    sfn = sfn_client(tarn)
    arn = sfn.create_state_machine(name="scale-%s" % uuid.uuid4().hex[:8],
                                   definition=json.dumps(d),
                                   roleArn="arn:aws:iam::000000000000:role/scale")[
        "stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    desc = sfn_wait(sfn, ex, timeout=900)
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    # the iterations are child executions of their own, as on AWS: the
    # execution's history holds the Map, not 10,000 iterations
    types = [e["type"] for e in history(sfn, ex)]
    assert "MapIterationStarted" not in types and "TaskScheduled" not in types
    assert types.count("MapStateSucceeded") == 1 and len(types) < 50, types
    out = json.loads(desc["output"])
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=out["ResultWriterDetails"]["Key"])
                          ["Body"].read())
    for f in manifest["ResultFiles"].get("FAILED", []):
        body = s3.get_object(Bucket=bucket, Key=f["Key"])["Body"].read()
        assert body in (b"", b"[]"), body[:300]
    bodies = []
    for f in manifest["ResultFiles"]["SUCCEEDED"]:
        rows = json.loads(s3.get_object(Bucket=bucket, Key=f["Key"])["Body"].read())
        bodies += [json.loads(r["Output"])["body"] if isinstance(r["Output"], str)
                   else r["Output"]["body"] for r in rows]
    assert sorted(bodies) == keys


def test_batch_job_tags_10000_objects_with_a_report(tarn, objects):
    s3, bucket, keys = objects
    ctl = control_client(tarn)
    manifest = put_manifest(s3, bucket, "lists/manifest.csv", [(bucket, k) for k in keys])
    job = ctl.create_job(AccountId=ACCOUNT, ConfirmationRequired=False, Priority=10,
                         RoleArn=ROLE, ClientRequestToken=uuid.uuid4().hex,
                         Operation={"S3PutObjectTagging": {"TagSet": TAGS}},
                         Manifest=manifest, Report=report(bucket, "reports"))["JobId"]
    d = wait_done(ctl, job, timeout=900)
    assert d["Status"] == "Complete", d
    p = d["ProgressSummary"]
    assert (p["TotalNumberOfTasks"], p["NumberOfTasksSucceeded"],
            p["NumberOfTasksFailed"]) == (N, N, 0)
    base = "reports/job-%s" % job
    man = json.loads(s3.get_object(Bucket=bucket, Key=base + "/manifest.json")["Body"].read())
    done = []
    for r in man["Results"]:
        assert r["TaskExecutionStatus"] == "succeeded"
        body = s3.get_object(Bucket=bucket, Key=r["Key"])["Body"].read().decode()
        done += [row[1] for row in csv.reader(io.StringIO(body))]
    assert sorted(done) == keys
    for k in keys[::997]:
        assert s3.get_object_tagging(Bucket=bucket, Key=k)["TagSet"] == TAGS
