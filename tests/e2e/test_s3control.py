"""tests/e2e/test_s3control.py -- S3 Batch Operations with boto3's
`s3control` client: jobs over CSV manifests, an S3 Inventory manifest and a
generated manifest, with S3PutObjectTagging, S3DeleteObjectTagging,
S3PutObjectCopy and LambdaInvoke (schema 1.0 and 2.0, TemporaryFailure
retried, PermanentFailure reported); the completion report; confirmation,
priority, cancel, ListJobs, job tags, ClientRequestToken idempotency, and
errors in S3 Control's shape that change nothing; Debian's AWS CLI and
`tarn batch`. The kill -9 test is in
test_s3control_crash.py.
"""
import csv
import datetime
import gzip
import io
import json
import os
import subprocess
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import lambda_util
from batch_util import (ACCOUNT, NO_REPORT, ROLE, control_client, put_manifest, report,
                        wait_done, wait_status)
from test_sqs_cli import tarn_cli

TAGS = [{"Key": "project", "Value": "tarn"}, {"Key": "stage", "Value": "batch"}]


@pytest.fixture(scope="module")
def ctl(tarn):
    return control_client(tarn)


def new_bucket(s3, hint):
    name = "%s-%s" % (hint, uuid.uuid4().hex[:12])
    s3.create_bucket(Bucket=name)
    return name


def create(ctl, operation, manifest=None, rep=None, **kw):
    args = dict(AccountId=ACCOUNT, ConfirmationRequired=False, Operation=operation,
                Report=rep or NO_REPORT, ClientRequestToken=uuid.uuid4().hex, Priority=10,
                RoleArn=ROLE)
    if manifest is not None:
        args["Manifest"] = manifest
    args.update(kw)
    return ctl.create_job(**args)["JobId"]


def read_report(s3, bucket, prefix, job_id):
    """The report's manifest.json and its rows by task status."""
    base = "%s/job-%s" % (prefix, job_id)
    man = json.loads(s3.get_object(Bucket=bucket, Key=base + "/manifest.json")["Body"].read())
    assert man["Format"] == "Report_CSV_20180820"
    assert man["ReportSchema"] == ("Bucket, Key, VersionId, TaskStatus, ErrorCode, "
                                   "HTTPStatusCode, ResultMessage")
    rows = {}
    for r in man["Results"]:
        assert r["Bucket"] == bucket and r["Key"].startswith(base + "/results/")
        assert r["Key"].endswith(".csv")
        obj = s3.get_object(Bucket=bucket, Key=r["Key"])
        body = obj["Body"].read()
        assert obj["ETag"].strip('"') == r["MD5Checksum"]
        rows[r["TaskExecutionStatus"]] = list(csv.reader(io.StringIO(body.decode())))
    return rows


def test_tagging_job_with_report(s3, ctl):
    data = new_bucket(s3, "data")
    reports = new_bucket(s3, "reports")
    keys = ["plain.txt", "with space/a b.txt", "unicodé/ü.txt", "plus+sign.txt", "000042"]
    keys += ["many/%03d" % i for i in range(20)]
    for k in keys:
        s3.put_object(Bucket=data, Key=k, Body=k.encode())
    manifest = put_manifest(s3, reports, "manifest.csv",
                            [(data, k) for k in keys] + [(data, "missing/key")])
    job = create(ctl, {"S3PutObjectTagging": {"TagSet": TAGS}}, manifest,
                 report(reports, "reports/"))
    d = wait_done(ctl, job)
    assert d["Status"] == "Complete", d
    p = d["ProgressSummary"]
    assert (p["TotalNumberOfTasks"], p["NumberOfTasksSucceeded"],
            p["NumberOfTasksFailed"]) == (len(keys) + 1, len(keys), 1)
    assert d["JobArn"] == "arn:aws:s3:us-east-1:%s:job/%s" % (ACCOUNT, job)
    assert d["Operation"] == {"S3PutObjectTagging": {"TagSet": TAGS}}
    for k in keys:
        assert s3.get_object_tagging(Bucket=data, Key=k)["TagSet"] == TAGS
        assert s3.get_object(Bucket=data, Key=k)["Body"].read() == k.encode()
    rows = read_report(s3, reports, "reports", job)
    ok = rows["succeeded"]
    assert sorted(r[1] for r in ok) == sorted(
        __import__("urllib.parse").parse.quote(k) for k in keys)
    assert all(r[0] == data and r[3] == "succeeded" and r[5] == "200" for r in ok)
    (bad,) = rows["failed"]
    assert bad[:6] == [data, "missing/key", "", "failed", "NoSuchKey", "404"]


def test_copy_job_replaces_metadata(s3, ctl):
    src = new_bucket(s3, "src")
    dst = new_bucket(s3, "dst")
    for i in range(4):
        s3.put_object(Bucket=src, Key="in/%d.csv" % i, Body=b"row,%d\n" % i,
                      ContentType="text/plain", Metadata={"old": "yes"},
                      Tagging="was=here")
    manifest = put_manifest(s3, src, "m.csv", [(src, "in/%d.csv" % i) for i in range(4)])
    job = create(ctl, {"S3PutObjectCopy": {
        "TargetResource": "arn:aws:s3:::" + dst, "TargetKeyPrefix": "copied/",
        "MetadataDirective": "REPLACE", "StorageClass": "STANDARD_IA",
        "NewObjectMetadata": {"ContentType": "text/csv", "UserMetadata": {"batch": "1"}},
        "NewObjectTagging": [{"Key": "copied", "Value": "true"}]}}, manifest)
    d = wait_done(ctl, job)
    assert d["Status"] == "Complete" and d["ProgressSummary"]["NumberOfTasksSucceeded"] == 4
    for i in range(4):
        o = s3.get_object(Bucket=dst, Key="copied/in/%d.csv" % i)
        assert o["Body"].read() == b"row,%d\n" % i
        assert o["ContentType"] == "text/csv" and o["Metadata"] == {"batch": "1"}
        assert s3.get_object_tagging(Bucket=dst, Key="copied/in/%d.csv" % i)["TagSet"] == [
            {"Key": "copied", "Value": "true"}]
        # the source is untouched
        assert s3.get_object(Bucket=src, Key="in/%d.csv" % i)["Metadata"] == {"old": "yes"}
    # COPY (the default) keeps metadata and tags
    job = create(ctl, {"S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::" + dst,
                                           "TargetKeyPrefix": "same/"}}, manifest)
    assert wait_done(ctl, job)["Status"] == "Complete"
    o = s3.get_object(Bucket=dst, Key="same/in/0.csv")
    assert o["Metadata"] == {"old": "yes"} and o["ContentType"] == "text/plain"
    assert s3.get_object_tagging(Bucket=dst, Key="same/in/0.csv")["TagSet"] == [
        {"Key": "was", "Value": "here"}]


GEN_XML = """<?xml version="1.0" encoding="UTF-8"?>
<CreateJobRequest xmlns="http://awss3control.amazonaws.com/doc/2018-08-20/">
<ConfirmationRequired>false</ConfirmationRequired>
<Operation><S3DeleteObjectTagging/></Operation>
<Report><Enabled>false</Enabled></Report>
<ClientRequestToken>%(token)s</ClientRequestToken>
<Priority>3</Priority>
<RoleArn>arn:aws:iam::000000000000:role/batch-operations</RoleArn>
<ManifestGenerator><S3JobManifestGenerator>
<SourceBucket>arn:aws:s3:::%(bucket)s</SourceBucket>
<Filter>
<KeyNameConstraint>
<MatchAnyPrefix><Prefix>logs/</Prefix></MatchAnyPrefix>
<MatchAnySuffix><Suffix>.log</Suffix></MatchAnySuffix>
</KeyNameConstraint>
<ObjectSizeGreaterThanBytes>100</ObjectSizeGreaterThanBytes>
</Filter>
<ManifestOutputLocation><Bucket>arn:aws:s3:::%(out)s</Bucket>
<ManifestPrefix>generated</ManifestPrefix>
<ManifestFormat>S3InventoryReport_CSV_20211130</ManifestFormat></ManifestOutputLocation>
<EnableManifestOutput>true</EnableManifestOutput>
</S3JobManifestGenerator></ManifestGenerator>
</CreateJobRequest>"""


def test_generated_manifest_delete_tagging(tarn, s3, ctl):
    b = new_bucket(s3, "gen")
    sizes = {"logs/a.log": 10, "logs/b.log": 500, "logs/c.txt": 500, "other/d.log": 500}
    for k, n in sizes.items():
        s3.put_object(Bucket=b, Key=k, Body=b"x" * n, Tagging="t=1")
    out = new_bucket(s3, "genout")
    # KeyNameConstraint and the size filters are newer than Debian's botocore:
    # the request as a newer SDK sends it
    r = tarn.request("POST", "/v20180820/jobs", headers={"x-amz-account-id": ACCOUNT},
                     body=(GEN_XML % {"token": uuid.uuid4().hex, "bucket": b,
                                      "out": out}).encode())
    assert r.status_code == 200, r.content
    job = r.content.split(b"<JobId>")[1].split(b"</JobId>")[0].decode()
    d = wait_done(ctl, job)
    assert d["Status"] == "Complete" and d["ProgressSummary"]["TotalNumberOfTasks"] == 1, d
    for k in sizes:
        want = [] if k == "logs/b.log" else [{"Key": "t", "Value": "1"}]
        assert s3.get_object_tagging(Bucket=b, Key=k)["TagSet"] == want, k
    # the generated manifest, written out in the S3 Inventory shape
    gen = d["GeneratedManifestDescriptor"]
    assert gen["Format"] == "S3InventoryReport_CSV_20211130"
    mkey = "generated/job-%s/manifest.json" % job
    assert gen["Location"]["ObjectArn"] == "arn:aws:s3:::%s/%s" % (out, mkey)
    man = json.loads(s3.get_object(Bucket=out, Key=mkey)["Body"].read())
    assert man["fileSchema"] == "Bucket, Key" and len(man["files"]) == 1
    rows = s3.get_object(Bucket=out, Key=man["files"][0]["key"])["Body"].read().decode()
    assert rows == '"%s","logs/b.log"\n' % b
    # creation time filters, through boto3
    job = create(ctl, {"S3PutObjectTagging": {"TagSet": TAGS[:1]}}, ManifestGenerator={
        "S3JobManifestGenerator": {
            "SourceBucket": "arn:aws:s3:::" + b, "EnableManifestOutput": False,
            "Filter": {"CreatedAfter": datetime.datetime(2001, 1, 1),
                       "CreatedBefore": datetime.datetime(2999, 1, 1)}}})
    d = wait_done(ctl, job)
    assert d["Status"] == "Complete" and d["ProgressSummary"]["NumberOfTasksSucceeded"] == 4, d
    job = create(ctl, {"S3DeleteObjectTagging": {}}, ManifestGenerator={
        "S3JobManifestGenerator": {
            "SourceBucket": "arn:aws:s3:::" + b, "EnableManifestOutput": False,
            "Filter": {"CreatedBefore": datetime.datetime(2001, 1, 1)}}})
    d = wait_done(ctl, job)
    assert d["Status"] == "Complete" and d["ProgressSummary"]["TotalNumberOfTasks"] == 0, d
    assert s3.get_object_tagging(Bucket=b, Key="logs/b.log")["TagSet"] == TAGS[:1]


def test_inventory_manifest(s3, ctl):
    b = new_bucket(s3, "inv")
    keys = ["x/1", "x/2 two", "x/3"]
    for k in keys:
        s3.put_object(Bucket=b, Key=k, Body=b"1")
    data = "".join('"%s","%s","1","2024-01-01T00:00:00.000Z"\n' % (b, k.replace(" ", "%20"))
                   for k in keys)
    s3.put_object(Bucket=b, Key="inventory/data/part-0.csv.gz", Body=gzip.compress(data.encode()))
    man = {"sourceBucket": b, "destinationBucket": "arn:aws:s3:::" + b, "version": "2016-11-30",
           "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size, LastModifiedDate",
           "files": [{"key": "inventory/data/part-0.csv.gz", "size": 1, "MD5checksum": "x"}]}
    etag = s3.put_object(Bucket=b, Key="inventory/manifest.json",
                         Body=json.dumps(man).encode())["ETag"]
    job = create(ctl, {"S3PutObjectTagging": {"TagSet": TAGS[:1]}}, {
        "Spec": {"Format": "S3InventoryReport_CSV_20161130"},
        "Location": {"ObjectArn": "arn:aws:s3:::%s/inventory/manifest.json" % b, "ETag": etag}})
    d = wait_done(ctl, job)
    assert d["Status"] == "Complete" and d["ProgressSummary"]["NumberOfTasksSucceeded"] == 3, d
    for k in keys:
        assert s3.get_object_tagging(Bucket=b, Key=k)["TagSet"] == TAGS[:1]


FUNCTION = '''
import json, os, time, urllib.parse
import boto3
s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))

def handler(event, context):
    task = event["tasks"][0]
    key = urllib.parse.unquote(task["s3Key"])
    bucket = task.get("s3Bucket") or task["s3BucketArn"].split(":::")[1]
    job = event["job"]
    code = "Succeeded"
    result = json.dumps({"schema": event["invocationSchemaVersion"], "key": key,
                         "args": job.get("userArguments"), "fields": sorted(task),
                         "job": job["id"]})
    if key.startswith("slow/"):
        time.sleep(0.5)  # a job still running when it is cancelled
    if "bad" in key:
        code, result = "PermanentFailure", "refused, as asked: " + key
    elif "flaky" in key:
        marker = "markers/" + key
        try:
            s3.head_object(Bucket=bucket, Key=marker)
        except Exception:
            s3.put_object(Bucket=bucket, Key=marker, Body=b"1")
            code, result = "TemporaryFailure", "try again"
    return {"invocationSchemaVersion": event["invocationSchemaVersion"],
            "treatMissingKeysAs": "PermanentFailure", "invocationId": event["invocationId"],
            "results": [{"taskId": task["taskId"], "resultCode": code, "resultString": result}]}
'''


@pytest.fixture(scope="module")
def function(tarn):
    lam = lambda_util.lambda_client(tarn)
    return lambda_util.create(lam, lambda_util.unique_name("batch-fn"),
                              code=lambda_util.zip_files({"f.py": (FUNCTION, 0o100644)}),
                              runtime="python3.11", handler="f.handler",
                              Timeout=60)["FunctionArn"]


LAMBDA2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<CreateJobRequest xmlns="http://awss3control.amazonaws.com/doc/2018-08-20/">
<ConfirmationRequired>false</ConfirmationRequired>
<Operation><LambdaInvoke><FunctionArn>%(fn)s</FunctionArn>
<InvocationSchemaVersion>2.0</InvocationSchemaVersion>
<UserArguments><entry><key>mode</key><value>test</value></entry>
<entry><key>n</key><value>2</value></entry></UserArguments></LambdaInvoke></Operation>
<Report><Bucket>arn:aws:s3:::%(bucket)s</Bucket><Format>Report_CSV_20180820</Format>
<Enabled>true</Enabled><Prefix>r</Prefix><ReportScope>AllTasks</ReportScope></Report>
<ClientRequestToken>%(token)s</ClientRequestToken>
<Manifest><Spec><Format>S3BatchOperations_CSV_20180820</Format>
<Fields><member>Bucket</member><member>Key</member></Fields></Spec>
<Location><ObjectArn>%(arn)s</ObjectArn><ETag>%(etag)s</ETag></Location></Manifest>
<Priority>10</Priority>
<RoleArn>arn:aws:iam::000000000000:role/batch-operations</RoleArn>
</CreateJobRequest>"""


def test_lambda_invoke_schema_2(tarn, s3, ctl, function):
    b = new_bucket(s3, "lam")
    keys = ["ok/one", "ok/two, with comma", "flaky/three", "bad/four"]
    manifest = put_manifest(s3, b, "m.csv", [(b, k) for k in keys])
    # InvocationSchemaVersion and UserArguments are newer than Debian's
    # botocore: the request as a newer SDK sends it
    body = LAMBDA2_XML % {"fn": function, "bucket": b, "token": uuid.uuid4().hex,
                          "arn": manifest["Location"]["ObjectArn"],
                          "etag": manifest["Location"]["ETag"].replace('"', "&quot;")}
    r = tarn.request("POST", "/v20180820/jobs", headers={"x-amz-account-id": ACCOUNT},
                     body=body.encode())
    assert r.status_code == 200, r.content
    job = r.content.split(b"<JobId>")[1].split(b"</JobId>")[0].decode()
    d = wait_done(ctl, job, timeout=240)
    assert d["Status"] == "Complete", d
    p = d["ProgressSummary"]
    assert (p["NumberOfTasksSucceeded"], p["NumberOfTasksFailed"]) == (3, 1)
    rows = read_report(s3, b, "r", job)
    ok = {r[1]: r for r in rows["succeeded"]}
    assert set(ok) == {"ok/one", "ok/two%2C%20with%20comma", "flaky/three"}
    msg = json.loads(ok["ok/two%2C%20with%20comma"][6])
    assert msg == {"schema": "2.0", "key": "ok/two, with comma",
                   "args": {"mode": "test", "n": "2"}, "job": job,
                   "fields": ["s3Bucket", "s3Key", "s3VersionId", "taskId"]}
    # the TemporaryFailure was retried (its marker is there) and then succeeded
    assert s3.get_object(Bucket=b, Key="markers/flaky/three")["Body"].read() == b"1"
    (bad,) = rows["failed"]
    assert bad[3:] == ["failed", "PermanentFailure", "200", "refused, as asked: bad/four"]


def test_lambda_invoke_schema_1_failed_only_report(s3, ctl, function):
    b = new_bucket(s3, "lam1")
    manifest = put_manifest(s3, b, "m.csv", [(b, "fine"), (b, "bad")])
    job = create(ctl, {"LambdaInvoke": {"FunctionArn": function}}, manifest,
                 report(b, "only-failed", "FailedTasksOnly"))
    d = wait_done(ctl, job, timeout=240)
    assert d["Status"] == "Complete"
    rows = read_report(s3, b, "only-failed", job)
    assert list(rows) == ["failed"] and [r[1] for r in rows["failed"]] == ["bad"]
    # the 1.0 event: s3BucketArn, no userArguments
    job = create(ctl, {"LambdaInvoke": {"FunctionArn": function}}, manifest, report(b, "all"))
    wait_done(ctl, job, timeout=240)
    rows = read_report(s3, b, "all", job)
    (fine,) = rows["succeeded"]
    assert json.loads(fine[6])["fields"] == ["s3BucketArn", "s3Key", "s3VersionId", "taskId"]


def test_cancel_an_active_job(s3, ctl, function):
    b = new_bucket(s3, "cancel")
    keys = ["slow/%02d" % i for i in range(60)]
    manifest = put_manifest(s3, b, "m.csv", [(b, k) for k in keys])
    job = create(ctl, {"LambdaInvoke": {"FunctionArn": function}}, manifest, report(b, "r"))
    wait_status(ctl, job, ("Active",), timeout=240)
    r = ctl.update_job_status(AccountId=ACCOUNT, JobId=job, RequestedJobStatus="Cancelled")
    assert r["Status"] in ("Cancelling", "Cancelled")
    d = wait_done(ctl, job, timeout=240)
    assert d["Status"] == "Cancelled", d
    p = d["ProgressSummary"]
    ran = p["NumberOfTasksSucceeded"] + p["NumberOfTasksFailed"]
    assert p["TotalNumberOfTasks"] == 60 and ran < 60
    # the report lists the tasks that ran
    rows = read_report(s3, b, "r", job)
    assert len(rows.get("succeeded", [])) == p["NumberOfTasksSucceeded"]


def test_confirmation_priority_and_cancel(s3, ctl):
    b = new_bucket(s3, "conf")
    s3.put_object(Bucket=b, Key="k", Body=b"1")
    manifest = put_manifest(s3, b, "m.csv", [(b, "k")])
    job = create(ctl, {"S3PutObjectTagging": {"TagSet": TAGS}}, manifest,
                 ConfirmationRequired=True, Description="needs a yes")
    d = wait_status(ctl, job, ("Suspended",))
    assert d["ConfirmationRequired"] is True and d["Description"] == "needs a yes"
    assert d["ProgressSummary"]["TotalNumberOfTasks"] == 1
    assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == []
    r = ctl.update_job_priority(AccountId=ACCOUNT, JobId=job, Priority=99)
    assert (r["JobId"], r["Priority"]) == (job, 99)
    assert ctl.describe_job(AccountId=ACCOUNT, JobId=job)["Job"]["Priority"] == 99
    r = ctl.update_job_status(AccountId=ACCOUNT, JobId=job, RequestedJobStatus="Ready",
                              StatusUpdateReason="looks right")
    assert r["JobId"] == job and r["Status"] in ("Ready", "Active", "Complete")
    d = wait_done(ctl, job)
    assert d["Status"] == "Complete" and d["StatusUpdateReason"] == "looks right"
    assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == TAGS
    # a confirmed job cannot be confirmed or cancelled again
    with pytest.raises(ClientError) as exc:
        ctl.update_job_status(AccountId=ACCOUNT, JobId=job, RequestedJobStatus="Cancelled")
    assert exc.value.response["Error"]["Code"] == "JobStatusException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409

    other = create(ctl, {"S3DeleteObjectTagging": {}}, manifest, ConfirmationRequired=True)
    wait_status(ctl, other, ("Suspended",))
    r = ctl.update_job_status(AccountId=ACCOUNT, JobId=other, RequestedJobStatus="Cancelled",
                              StatusUpdateReason="changed my mind")
    assert r["Status"] == "Cancelled"
    d = ctl.describe_job(AccountId=ACCOUNT, JobId=other)["Job"]
    assert d["Status"] == "Cancelled" and "TerminationDate" in d
    assert d["ProgressSummary"]["NumberOfTasksSucceeded"] == 0
    assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == TAGS  # never ran
    with pytest.raises(ClientError) as exc:
        ctl.update_job_status(AccountId=ACCOUNT, JobId=other, RequestedJobStatus="Ready")
    assert exc.value.response["Error"]["Code"] == "JobStatusException"


def test_list_jobs_and_job_tags(s3, ctl):
    b = new_bucket(s3, "list")
    s3.put_object(Bucket=b, Key="k", Body=b"1")
    manifest = put_manifest(s3, b, "m.csv", [(b, "k")])
    ids = [create(ctl, {"S3DeleteObjectTagging": {}}, manifest, ConfirmationRequired=True,
                  Tags=[{"Key": "n", "Value": str(i)}]) for i in range(3)]
    for j in ids:
        wait_status(ctl, j, ("Suspended",))
    seen = []
    kw = {}
    while True:
        r = ctl.list_jobs(AccountId=ACCOUNT, JobStatuses=["Suspended"], MaxResults=2, **kw)
        assert len(r["Jobs"]) <= 2
        seen += r["Jobs"]
        if "NextToken" not in r:
            break
        kw["NextToken"] = r["NextToken"]
    mine = [j for j in seen if j["JobId"] in ids]
    assert len(mine) == 3
    assert all(j["Status"] == "Suspended" and j["Operation"] == "S3DeleteObjectTagging"
               and j["ProgressSummary"]["TotalNumberOfTasks"] == 1 for j in mine)
    complete = ctl.list_jobs(AccountId=ACCOUNT, JobStatuses=["Complete"])["Jobs"]
    assert not any(j["JobId"] in ids for j in complete)

    j = ids[0]
    assert ctl.get_job_tagging(AccountId=ACCOUNT, JobId=j)["Tags"] == [{"Key": "n", "Value": "0"}]
    ctl.put_job_tagging(AccountId=ACCOUNT, JobId=j, Tags=[{"Key": "a", "Value": "1"},
                                                           {"Key": "b", "Value": ""}])
    assert ctl.get_job_tagging(AccountId=ACCOUNT, JobId=j)["Tags"] == [
        {"Key": "a", "Value": "1"}, {"Key": "b", "Value": ""}]
    with pytest.raises(ClientError) as exc:
        ctl.put_job_tagging(AccountId=ACCOUNT, JobId=j,
                            Tags=[{"Key": "k%d" % i, "Value": "v"} for i in range(51)])
    assert exc.value.response["Error"]["Code"] == "TooManyTagsException"
    assert len(ctl.get_job_tagging(AccountId=ACCOUNT, JobId=j)["Tags"]) == 2
    ctl.delete_job_tagging(AccountId=ACCOUNT, JobId=j)
    assert ctl.get_job_tagging(AccountId=ACCOUNT, JobId=j)["Tags"] == []
    for j in ids:
        ctl.update_job_status(AccountId=ACCOUNT, JobId=j, RequestedJobStatus="Cancelled")


def all_jobs(ctl):
    jobs, kw = [], {}
    while True:
        r = ctl.list_jobs(AccountId=ACCOUNT, **kw)
        jobs += r["Jobs"]
        if "NextToken" not in r:
            return jobs
        kw["NextToken"] = r["NextToken"]


def test_client_request_token_idempotency(s3, ctl):
    b = new_bucket(s3, "idem")
    s3.put_object(Bucket=b, Key="k", Body=b"1")
    manifest = put_manifest(s3, b, "m.csv", [(b, "k")])
    args = dict(AccountId=ACCOUNT, ConfirmationRequired=True,
                Operation={"S3PutObjectTagging": {"TagSet": TAGS}}, Report=NO_REPORT,
                ClientRequestToken="token-" + uuid.uuid4().hex, Manifest=manifest, Priority=5,
                RoleArn=ROLE)
    first = ctl.create_job(**args)["JobId"]
    before = len(all_jobs(ctl))
    assert ctl.create_job(**args)["JobId"] == first
    with pytest.raises(ClientError) as exc:
        ctl.create_job(**dict(args, Priority=6))
    assert exc.value.response["Error"]["Code"] == "IdempotencyException"
    assert len(all_jobs(ctl)) == before
    ctl.update_job_status(AccountId=ACCOUNT, JobId=first, RequestedJobStatus="Cancelled")


@pytest.mark.parametrize("change,message", [
    ({"Operation": {"S3InitiateRestoreObject": {"ExpirationInDays": 1}}}, "archive"),
    ({"Operation": {"S3PutObjectAcl": {"AccessControlPolicy": {"CannedAccessControlList":
                                                                "private"}}}}, "ACL"),
    ({"RoleArn": "not-a-role-arn-at-all"}, "RoleArn"),
    ({"Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "k" * 129, "Value": "v"}]}}},
     "tag key"),
    ({"Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Key"]},
                   "Location": {"ObjectArn": "arn:aws:s3:::b/m.csv", "ETag": "x"}}}, "Fields"),
    ({"Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820",
                            "Fields": ["Bucket", "Key"]},
                   "Location": {"ObjectArn": "not-an-arn", "ETag": "x"}}}, "ObjectArn"),
    ({"Report": {"Bucket": "arn:aws:s3:::no-such-bucket-here", "Format": "Report_CSV_20180820",
                 "Enabled": True, "ReportScope": "AllTasks"}}, "does not exist"),
    ({"Operation": {"S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::no-such-bucket-here"}}},
     "does not exist"),
    ({"Operation": {"LambdaInvoke": {"FunctionArn": "not-a-function"}}}, "FunctionArn"),
])
def test_bad_create_job_changes_nothing(s3, ctl, change, message):
    b = new_bucket(s3, "bad")
    manifest = put_manifest(s3, b, "m.csv", [(b, "k")])
    args = dict(AccountId=ACCOUNT, ConfirmationRequired=False,
                Operation={"S3PutObjectTagging": {"TagSet": TAGS}}, Report=NO_REPORT,
                ClientRequestToken=uuid.uuid4().hex, Manifest=manifest, Priority=1, RoleArn=ROLE)
    args.update(change)
    before = len(all_jobs(ctl))
    with pytest.raises(ClientError) as exc:
        ctl.create_job(**args)
    err = exc.value.response
    assert err["Error"]["Code"] == "BadRequestException", err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert message in err["Error"]["Message"]
    assert len(all_jobs(ctl)) == before


def test_errors_have_the_s3control_shape(tarn, ctl):
    with pytest.raises(ClientError) as exc:
        ctl.describe_job(AccountId=ACCOUNT, JobId="00000000-0000-0000-0000-000000000000")
    assert exc.value.response["Error"]["Code"] == "NotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as exc:
        ctl.update_job_priority(AccountId=ACCOUNT, JobId="00000000-0000-0000-0000-000000000000",
                                Priority=3)
    assert exc.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as exc:
        ctl.list_jobs(AccountId=ACCOUNT, NextToken="garbage")
    assert exc.value.response["Error"]["Code"] == "InvalidNextTokenException"
    # another account sees none of these jobs
    assert ctl.list_jobs(AccountId="111111111111")["Jobs"] == []
    # the raw document: S3's REST-XML error with a RequestId
    r = tarn.request("GET", "/v20180820/jobs/nope-nope",
                            headers={"x-amz-account-id": ACCOUNT})
    assert r.status_code == 404
    assert b"<Code>NotFoundException</Code>" in r.content and b"<RequestId>" in r.content
    r = tarn.request("GET", "/v20180820/jobs")
    assert r.status_code == 400 and b"x-amz-account-id" in r.content


def test_manifest_etag_mismatch_fails_the_job(s3, ctl):
    b = new_bucket(s3, "etag")
    s3.put_object(Bucket=b, Key="k", Body=b"1")
    manifest = put_manifest(s3, b, "m.csv", [(b, "k")])
    manifest["Location"]["ETag"] = '"0123456789abcdef0123456789abcdef"'
    job = create(ctl, {"S3PutObjectTagging": {"TagSet": TAGS}}, manifest)
    d = wait_done(ctl, job)
    assert d["Status"] == "Failed"
    assert d["FailureReasons"][0]["FailureCode"] == "ManifestETagMismatch"
    assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == []


def test_aws_cli(tarn, s3):
    """Debian's AWS CLI with --endpoint-url http://localhost:PORT: it sends
    to ACCOUNT.localhost, which resolves where *.localhost does (README)."""
    b = new_bucket(s3, "cli")
    s3.put_object(Bucket=b, Key="k", Body=b"1")
    manifest = put_manifest(s3, b, "m.csv", [(b, "k")])
    env = tarn.aws_env()
    env["PYTHONPATH"] = os.path.join(os.path.dirname(__file__), "localhost_resolver")
    ep = "http://localhost:%d" % tarn.port

    def aws(*args):
        r = subprocess.run(["/usr/bin/aws", "--endpoint-url", ep, "s3control"] + list(args) +
                           ["--account-id", ACCOUNT], env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout) if r.stdout.strip() else None

    job = aws("create-job", "--no-confirmation-required", "--priority", "4",
              "--role-arn", ROLE, "--client-request-token", uuid.uuid4().hex,
              "--operation", json.dumps({"S3PutObjectTagging": {"TagSet": TAGS}}),
              "--manifest", json.dumps(manifest), "--report", '{"Enabled": false}')["JobId"]
    deadline = time.monotonic() + 120
    while aws("describe-job", "--job-id", job)["Job"]["Status"] != "Complete":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert any(j["JobId"] == job for j in aws("list-jobs", "--job-statuses", "Complete")["Jobs"])
    assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == TAGS


def test_tarn_batch_cli(tarn, s3):
    b = new_bucket(s3, "tcli")
    for k in ("in/a", "in/b", "out/c"):
        s3.put_object(Bucket=b, Key=k, Body=b"1")
    job = tarn_cli(tarn, "batch", "tag", b + "/in/", "team=data", "tier=hot").stdout.strip()
    deadline = time.monotonic() + 120
    while "status     Complete" not in tarn_cli(tarn, "batch", "show", job).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    out = tarn_cli(tarn, "batch", "show", job).stdout
    assert "operation  S3PutObjectTagging" in out and "2 total, 2 succeeded, 0 failed" in out
    assert any(line.startswith(job) and "Complete" in line and "2/2" in line
               for line in tarn_cli(tarn, "batch", "ls").stdout.splitlines())
    assert s3.get_object_tagging(Bucket=b, Key="in/a")["TagSet"] == [
        {"Key": "team", "Value": "data"}, {"Key": "tier", "Value": "hot"}]
    assert s3.get_object_tagging(Bucket=b, Key="out/c")["TagSet"] == []
    r = tarn_cli(tarn, "batch", "cancel", job, ok=False)
    assert r.returncode == 1 and "tarn batch: UpdateJobStatus failed:" in r.stderr
    r = tarn_cli(tarn, "batch", "show", "no-such-job", ok=False)
    assert r.returncode == 1 and "does not exist" in r.stderr
    assert tarn_cli(tarn, "batch", "bogus", ok=False).returncode == 2
