"""tests/e2e/test_job_roles.py -- S3 Batch Operations jobs, Firehose delivery
streams and Glue crawlers act as the role they are given, as on AWS (and as
a state machine does, test_states_roles.py): a role tarn knows is enforced
on every object they touch, and what it does not allow is refused and
changes nothing (a job's task fails AccessDenied in its completion report, a
delivery writes nothing and keeps its records until the role allows it, a
crawl leaves the path out and ends FAILED with the refusal); a role tarn
does not know gets the default data-plane access, or nothing under strict
IAM; and giving a role needs iam:PassRole on it.
"""
import csv
import io
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import queue_util
from batch_util import ACCOUNT, control_client, put_manifest, report, wait_done
from lambda_util import metric
from tarnlib import list_all_keys
from test_glue_crawler import glue_client, wait_ready
from test_iam import client, code, policy


def make_role(iam, service, *statements):
    name = "%s-%s" % (service.split(".")[0], uuid.uuid4().hex[:8])
    trust = policy({"Effect": "Allow", "Principal": {"Service": service},
                    "Action": "sts:AssumeRole"})
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy(*statements))
    return arn


def new_bucket(s3, hint):
    name = "%s-%s" % (hint, uuid.uuid4().hex[:12])
    s3.create_bucket(Bucket=name)
    return name


def wait_for(fn, what, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.2)


@pytest.fixture(scope="module")
def iam(tarn):
    return client(tarn, "iam")


@pytest.fixture(scope="module")
def ctl(tarn):
    return control_client(tarn)


@pytest.fixture(scope="module")
def fh(tarn):
    # the Debian botocore still holds IntervalInSeconds to a minimum of 60
    return queue_util.client(tarn, "firehose", parameter_validation=False)


def run_job(ctl, role, operation, manifest, rep):
    job = ctl.create_job(AccountId=ACCOUNT, ConfirmationRequired=False, Operation=operation,
                         Report=rep, ClientRequestToken=uuid.uuid4().hex, Priority=10,
                         RoleArn=role, Manifest=manifest)["JobId"]
    return job, wait_done(ctl, job)


def report_rows(s3, bucket, prefix, job):
    base = "%s/job-%s" % (prefix, job)
    man = json.loads(s3.get_object(Bucket=bucket, Key=base + "/manifest.json")["Body"].read())
    rows = {}
    for r in man["Results"]:
        body = s3.get_object(Bucket=bucket, Key=r["Key"])["Body"].read().decode()
        rows[r["TaskExecutionStatus"]] = list(csv.reader(io.StringIO(body)))
    return rows


# ---- S3 Batch Operations ----

def test_batch_job_acts_as_its_role(s3, ctl, iam):
    data = new_bucket(s3, "data")
    out = new_bucket(s3, "out")
    reports = new_bucket(s3, "reports")
    for k in ("ok/a", "ok/b", "no/c"):
        s3.put_object(Bucket=data, Key=k, Body=k.encode())
    role = make_role(iam, "batchoperations.s3.amazonaws.com",
                     {"Effect": "Allow", "Action": ["s3:PutObjectTagging", "s3:GetObject"],
                      "Resource": "arn:aws:s3:::%s/ok/*" % data},
                     {"Effect": "Allow", "Action": "s3:PutObject",
                      "Resource": "arn:aws:s3:::%s/copied/*" % out},
                     {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                      "Resource": "arn:aws:s3:::%s/*" % reports})
    manifest = put_manifest(s3, reports, "m.csv", [(data, "ok/a"), (data, "ok/b"),
                                                   (data, "no/c")])
    tags = [{"Key": "k", "Value": "v"}]
    job, d = run_job(ctl, role, {"S3PutObjectTagging": {"TagSet": tags}}, manifest,
                     report(reports, "tag"))
    assert d["Status"] == "Complete", d
    p = d["ProgressSummary"]
    assert (p["NumberOfTasksSucceeded"], p["NumberOfTasksFailed"]) == (2, 1)
    assert s3.get_object_tagging(Bucket=data, Key="ok/a")["TagSet"] == tags
    assert s3.get_object_tagging(Bucket=data, Key="no/c")["TagSet"] == []
    (bad,) = report_rows(s3, reports, "tag", job)["failed"]
    assert bad[:6] == [data, "no/c", "", "failed", "AccessDenied", "403"]
    assert "s3:PutObjectTagging" in bad[6] and "assumed-role/%s/" % role.split("/")[-1] in bad[6]
    # a copy: the source must be readable and the target writable as the role
    target = {"TargetResource": "arn:aws:s3:::" + out, "TargetKeyPrefix": "copied/"}
    job, d = run_job(ctl, role, {"S3PutObjectCopy": target}, manifest, report(reports, "cp"))
    assert d["Status"] == "Complete", d
    assert sorted(list_all_keys(s3, out)) == ["copied/ok/a", "copied/ok/b"]
    (bad,) = report_rows(s3, reports, "cp", job)["failed"]
    assert bad[4:6] == ["AccessDenied", "403"] and "s3:GetObject" in bad[6]
    # the role may read ok/ but not write outside copied/: refused, nothing written
    target["TargetKeyPrefix"] = "elsewhere/"
    job, d = run_job(ctl, role, {"S3PutObjectCopy": target},
                     put_manifest(s3, reports, "m2.csv", [(data, "ok/a")]), report(reports, "cp2"))
    assert d["ProgressSummary"]["NumberOfTasksFailed"] == 1, d
    (bad,) = report_rows(s3, reports, "cp2", job)["failed"]
    assert "s3:PutObject on resource: arn:aws:s3:::%s/elsewhere/ok/a" % out in bad[6]
    assert sorted(list_all_keys(s3, out)) == ["copied/ok/a", "copied/ok/b"]
    # a function the role may not invoke is never invoked
    job, d = run_job(ctl, role, {"LambdaInvoke": {
        "FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:not-allowed"}},
        manifest, report(reports, "fn"))
    assert d["ProgressSummary"]["NumberOfTasksFailed"] == 3, d
    rows = report_rows(s3, reports, "fn", job)["failed"]
    assert all(r[4] == "AccessDenied" and "lambda:InvokeFunction" in r[6] for r in rows)
    # a job whose report the role may not write fails before any task runs
    job, d = run_job(ctl, role, {"S3PutObjectTagging": {"TagSet": [{"Key": "x", "Value": "y"}]}},
                     manifest, report(out, "reports"))
    assert d["Status"] == "Failed", d
    (why,) = d["FailureReasons"]
    assert why["FailureCode"] == "AccessDenied", why
    assert "s3:PutObject" in why["FailureReason"] and "report" in why["FailureReason"]
    assert s3.get_object_tagging(Bucket=data, Key="ok/a")["TagSet"] == tags
    assert sorted(list_all_keys(s3, out)) == ["copied/ok/a", "copied/ok/b"]


# ---- Firehose ----

def create_stream(fh, name, bucket, role, prefix, interval=0, **more):
    d = {"RoleARN": role, "BucketARN": "arn:aws:s3:::" + bucket, "Prefix": prefix,
         "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval}}
    d.update(more)
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration=d)


def test_delivery_stream_writes_as_its_role(tarn, s3, fh, iam):
    bucket = new_bucket(s3, "fh")
    role = make_role(iam, "firehose.amazonaws.com",
                     {"Effect": "Allow", "Action": "s3:PutObject",
                      "Resource": "arn:aws:s3:::%s/ok/*" % bucket})
    ok, no = "ok-" + uuid.uuid4().hex[:8], "no-" + uuid.uuid4().hex[:8]
    create_stream(fh, ok, bucket, role, "ok/")
    create_stream(fh, no, bucket, role, "no/")
    failures = metric(tarn, "tarn_firehose_delivery_failures_total")
    fh.put_record(DeliveryStreamName=ok, Record={"Data": b"allowed\n"})
    fh.put_record(DeliveryStreamName=no, Record={"Data": b"kept\n"})
    keys = wait_for(lambda: list_all_keys(s3, bucket, Prefix="ok/"), "the allowed delivery")
    assert s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read() == b"allowed\n"
    # the refused delivery fails (and is retried), writing nothing
    wait_for(lambda: metric(tarn, "tarn_firehose_delivery_failures_total") > failures,
             "the refused delivery")
    assert list_all_keys(s3, bucket, Prefix="no/") == []
    # its records were kept: once the role allows the prefix, they arrive
    iam.put_role_policy(RoleName=role.split("/")[-1], PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::%s/*" % bucket}))
    keys = wait_for(lambda: list_all_keys(s3, bucket, Prefix="no/"), "the retried delivery")
    assert b"".join(s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys) == b"kept\n"


def test_error_output_is_written_as_the_role_too(tarn, s3, fh, iam):
    bucket = new_bucket(s3, "fherr")
    role = make_role(iam, "firehose.amazonaws.com",
                     {"Effect": "Allow", "Action": "s3:PutObject",
                      "Resource": "arn:aws:s3:::%s/ok/*" % bucket})
    name = "err-" + uuid.uuid4().hex[:8]
    create_stream(fh, name, bucket, role, "ok/k=!{partitionKeyFromQuery:k}/",
                  ErrorOutputPrefix="err/!{firehose:error-output-type}/",
                  DynamicPartitioningConfiguration={"Enabled": True},
                  ProcessingConfiguration={"Enabled": True, "Processors": [
                      {"Type": "MetadataExtraction", "Parameters": [
                          {"ParameterName": "MetadataExtractionQuery",
                           "ParameterValue": "{k: .k}"},
                          {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]})
    failures = metric(tarn, "tarn_firehose_delivery_failures_total")
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b'{"k": "a"}'},
                                                          {"Data": b"not json"}])
    # the failed record's error output is refused: the delivery writes nothing at all
    wait_for(lambda: metric(tarn, "tarn_firehose_delivery_failures_total") > failures,
             "the refused delivery")
    assert list_all_keys(s3, bucket) == []
    iam.put_role_policy(RoleName=role.split("/")[-1], PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:PutObject",
         "Resource": ["arn:aws:s3:::%s/ok/*" % bucket, "arn:aws:s3:::%s/err/*" % bucket]}))
    keys = wait_for(lambda: len(list_all_keys(s3, bucket)) >= 2 and list_all_keys(s3, bucket),
                    "the retried delivery")
    assert len(keys) == 2
    assert [k for k in keys if k.startswith("ok/k=a/")] and \
        [k for k in keys if k.startswith("err/partitioning-failed/")], keys


# ---- Glue crawlers ----

def test_crawler_reads_as_its_role(s3, iam, tarn):
    lake = new_bucket(s3, "lake")
    other = new_bucket(s3, "other")
    s3.put_object(Bucket=lake, Key="ok/sales/a.csv", Body=b"id,qty\n1,10\n2,20\n")
    s3.put_object(Bucket=lake, Key="ok/stock/s.csv", Body=b"id,n\n1,5\n")
    s3.put_object(Bucket=lake, Key="no/secret/b.csv", Body=b"id,pin\n1,1234\n")
    s3.put_object(Bucket=other, Key="x/hidden/c.csv", Body=b"id,v\n1,2\n")
    db = "roles_" + uuid.uuid4().hex[:8]
    role = make_role(iam, "glue.amazonaws.com",
                     {"Effect": "Allow", "Action": "s3:ListBucket",
                      "Resource": "arn:aws:s3:::" + lake},
                     {"Effect": "Allow", "Action": "s3:GetObject",
                      "Resource": "arn:aws:s3:::%s/ok/*" % lake},
                     {"Effect": "Allow", "Action": "glue:*",
                      "Resource": "arn:aws:glue:us-east-1:000000000000:table/%s/sales" % db})
    glue = glue_client(tarn)
    glue.create_database(DatabaseInput={"Name": db})
    name = "c-" + uuid.uuid4().hex[:8]
    glue.create_crawler(Name=name, Role=role.split("/")[-1], DatabaseName=db, Targets={
        "S3Targets": [{"Path": "s3://%s/ok/" % lake}, {"Path": "s3://%s/no/" % lake},
                      {"Path": "s3://%s/x/" % other}]})
    glue.start_crawler(Name=name)
    c = wait_ready(glue, name)
    assert c["LastCrawl"]["Status"] == "FAILED", c
    msg = c["LastCrawl"]["ErrorMessage"]
    # refused: listing the other bucket, reading no/secret/b.csv, creating the table stock
    assert "refused 3 times" in msg and "s3:GetObject" in msg and "no/secret/b.csv" in msg, msg
    tables = {t["Name"] for t in glue.get_tables(DatabaseName=db)["TableList"]}
    assert tables == {"sales"}


# ---- a role tarn does not know ----

def test_unknown_role_default_and_strict(tarn_factory):
    made_up = "arn:aws:iam::000000000000:role/not-in-tarn"
    for strict in (False, True):
        srv = tarn_factory(env={"TARN_STRICT_IAM": "1"} if strict else {})
        s3 = srv.client()
        data = new_bucket(s3, "data")
        s3.put_object(Bucket=data, Key="a.csv", Body=b"id\n1\n")
        # a job
        ctl = control_client(srv)
        job, d = run_job(ctl, made_up, {"S3PutObjectTagging": {"TagSet": [
            {"Key": "k", "Value": "v"}]}}, put_manifest(s3, data, "m/m.csv", [(data, "a.csv")]),
            {"Enabled": False})
        if strict:  # it may not even read its manifest
            assert d["Status"] == "Failed", d
            assert d["FailureReasons"][0]["FailureCode"] == "AccessDenied", d
            assert s3.get_object_tagging(Bucket=data, Key="a.csv")["TagSet"] == []
        else:
            assert d["Status"] == "Complete", d
            assert d["ProgressSummary"]["NumberOfTasksSucceeded"] == 1, d
        # a crawler
        glue = glue_client(srv)
        glue.create_crawler(Name="c", Role=made_up, DatabaseName="default",
                            Targets={"S3Targets": [{"Path": "s3://%s/" % data,
                                                    "Exclusions": ["m/**"]}]})
        glue.start_crawler(Name="c")
        c = wait_ready(glue, "c")
        assert c["LastCrawl"]["Status"] == ("FAILED" if strict else "SUCCEEDED"), c
        # a delivery stream
        fh = queue_util.client(srv, "firehose", parameter_validation=False)
        failures = metric(srv, "tarn_firehose_delivery_failures_total")
        create_stream(fh, "s", data, made_up, "fh/")
        fh.put_record(DeliveryStreamName="s", Record={"Data": b"x"})
        if strict:
            wait_for(lambda: metric(srv, "tarn_firehose_delivery_failures_total") > failures,
                     "the refused delivery")
            assert list_all_keys(s3, data, Prefix="fh/") == []
        else:
            wait_for(lambda: list_all_keys(s3, data, Prefix="fh/"), "the delivery")


# ---- giving a role ----

def test_giving_a_role_needs_pass_role(tarn, s3, iam, ctl, fh):
    role = make_role(iam, "glue.amazonaws.com")
    bucket = new_bucket(s3, "pass")
    user = "dev-" + uuid.uuid4().hex[:8]
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["s3:*", "firehose:*", "glue:*"], "Resource": "*"}))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    dev_glue = client(tarn, "glue", k["AccessKeyId"], k["SecretAccessKey"])
    dev_fh = client(tarn, "firehose", k["AccessKeyId"], k["SecretAccessKey"])
    manifest = put_manifest(s3, bucket, "m.csv", [(bucket, "m.csv")])
    dev_ctl = control_client(tarn, k["AccessKeyId"], k["SecretAccessKey"])
    with pytest.raises(ClientError) as ei:
        run_job(dev_ctl, role, {"S3DeleteObjectTagging": {}}, manifest, {"Enabled": False})
    assert code(ei) == "AccessDenied" and "iam:PassRole" in str(ei.value)
    with pytest.raises(ClientError) as ei:
        dev_glue.create_crawler(Name="nope", Role=role, DatabaseName="default",
                                Targets={"S3Targets": [{"Path": "s3://%s/" % bucket}]})
    assert code(ei) == "AccessDeniedException" and "iam:PassRole" in str(ei.value)
    with pytest.raises(ClientError) as ei:
        create_stream(dev_fh, "nope", bucket, role, "p/", interval=60)
    assert "iam:PassRole" in str(ei.value)
    assert "nope" not in fh.list_delivery_streams()["DeliveryStreamNames"]
    with pytest.raises(ClientError):
        client(tarn, "glue").get_crawler(Name="nope")
    iam.put_user_policy(UserName=user, PolicyName="pass", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": role}))
    dev_glue.create_crawler(Name="yes-" + uuid.uuid4().hex[:6], Role=role, DatabaseName="default",
                            Targets={"S3Targets": [{"Path": "s3://%s/" % bucket}]})
