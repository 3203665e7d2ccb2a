"""tests/e2e/test_lambda_correctness.py -- promises about a function's
credentials and its asynchronous retries that hold while it runs and
across a crash.

Invariants:
  (1) A function's derived keys stop working on the very next request once
      the function is deleted, or its role changes, even for an invocation
      still running with them: the function sees InvalidAccessKeyId, and so
      does anyone holding the keys it printed.
  (2) Removing a permission from the function's role refuses the next
      request of a running invocation (AccessDenied), without a restart.
  (3) The attempts an Event has used survive kill -9: after a restart it
      gets the retries it had left, not fresh ones.
"""
import base64
import json
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import lambda_util as lu
import tarnlib

ACCOUNT = "000000000000"
PY = 0o100644

LOOP_FN = r'''
import os, time
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

def handler(event, context):
    print("KEYS %s %s" % (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]))
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                      config=Config(retries={"total_max_attempts": 1}))
    deadline = time.time() + 240
    i = 0
    while time.time() < deadline:
        try:
            s3.put_object(Bucket=event["bucket"], Key="%s/%d" % (event["prefix"], i), Body=b"x")
        except ClientError as e:
            return {"puts": i, "error": e.response["Error"]["Code"]}
        i += 1
        time.sleep(0.05)
    return {"puts": i, "error": None}
'''

RETRY_FN = r'''
import os, time
import boto3

def handler(event, context):
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    prefix = "attempts/%s/" % context.aws_request_id
    n = s3.list_objects_v2(Bucket=event["bucket"], Prefix=prefix).get("KeyCount", 0)
    s3.put_object(Bucket=event["bucket"], Key=prefix + str(n), Body=b"")
    if n == 1:
        time.sleep(240)  # the second attempt: cut short by the test's kill -9
    raise RuntimeError("failing on purpose (%d)" % n)
'''


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def client(tarn, service):
    return boto3.session.Session().client(
        service, endpoint_url=tarn.endpoint, region_name=tarnlib.REGION,
        aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=300))


def wait_for(what, check, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


class Running:
    """A synchronous invocation of LOOP_FN in a thread of its own."""

    def __init__(self, lam, name, bucket, prefix):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(lam, name, bucket, prefix))
        self.thread.start()

    def _run(self, lam, name, bucket, prefix):
        resp = lam.invoke(FunctionName=name, LogType="Tail",
                          Payload=json.dumps({"bucket": bucket, "prefix": prefix}).encode())
        self.result = (resp, json.loads(resp["Payload"].read()))

    def join(self):
        self.thread.join(timeout=300)
        assert self.result is not None, "the invocation did not end"
        return self.result


def printed_keys(resp):
    tail = base64.b64decode(resp["LogResult"]).decode()
    line = [l for l in tail.splitlines() if l.startswith("KEYS ")][0]
    return line.split()[1:3]


def started(s3, bucket, prefix):
    return lambda: s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("KeyCount", 0)


def loop_function(lam, name, **kw):
    lu.create(lam, name, lu.zip_files({"app.py": (LOOP_FN, PY)}), handler="app.handler",
              runtime="python3.11", Timeout=300, **kw)


def test_deleted_function_keys_stop_at_once(tarn, s3, bucket):
    lam = lu.lambda_client(tarn)
    name = lu.unique_name("keys-delete")
    loop_function(lam, name)
    run = Running(lam, name, bucket, "del")
    wait_for("the function's first write", started(s3, bucket, "del"))
    lam.delete_function(FunctionName=name)
    resp, out = run.join()
    assert out["error"] == "InvalidAccessKeyId", out
    assert out["puts"] >= 1
    ak, sk = printed_keys(resp)
    with pytest.raises(ClientError) as e:
        tarn.client(ak, sk).put_object(Bucket=bucket, Key="after", Body=b"x")
    assert code(e) == "InvalidAccessKeyId"
    with pytest.raises(ClientError) as e:
        tarn.client(ak, sk).list_objects_v2(Bucket=bucket)
    assert code(e) == "InvalidAccessKeyId"


def test_role_change_stops_a_running_invocation(tarn, s3, bucket):
    lam = lu.lambda_client(tarn)
    name = lu.unique_name("keys-role")
    loop_function(lam, name, Role="arn:aws:iam::%s:role/first" % ACCOUNT)
    run = Running(lam, name, bucket, "role")
    wait_for("the function's first write", started(s3, bucket, "role"))
    lam.update_function_configuration(FunctionName=name,
                                      Role="arn:aws:iam::%s:role/second" % ACCOUNT)
    resp, out = run.join()
    assert out["error"] == "InvalidAccessKeyId", out
    ak, sk = printed_keys(resp)
    with pytest.raises(ClientError) as e:
        tarn.client(ak, sk).put_object(Bucket=bucket, Key="after", Body=b"x")
    assert code(e) == "InvalidAccessKeyId"
    lam.delete_function(FunctionName=name)


def test_removed_permission_stops_a_running_invocation(tarn, s3, bucket):
    iam = client(tarn, "iam")
    role = lu.unique_name("writer")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName=role, PolicyName="write", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
            "Resource": "arn:aws:s3:::%s/*" % bucket}]}))
    iam.put_role_policy(RoleName=role, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::%s" % bucket}]}))
    lam = lu.lambda_client(tarn)
    name = lu.unique_name("keys-policy")
    loop_function(lam, name, Role="arn:aws:iam::%s:role/%s" % (ACCOUNT, role))
    run = Running(lam, name, bucket, "pol")
    wait_for("the function's first write", started(s3, bucket, "pol"))
    iam.delete_role_policy(RoleName=role, PolicyName="write")
    resp, out = run.join()
    assert out["error"] == "AccessDenied", out
    ak, sk = printed_keys(resp)
    fs3 = tarn.client(ak, sk)
    with pytest.raises(ClientError) as e:
        fs3.put_object(Bucket=bucket, Key="after", Body=b"x")
    assert code(e) == "AccessDenied"
    assert fs3.list_objects_v2(Bucket=bucket, Prefix="pol/")["KeyCount"] == out["puts"]
    lam.delete_function(FunctionName=name)


def test_retry_count_survives_kill9(tarn_factory):
    srv = tarn_factory(env={"TARN_EVENT_RETRY_BASE_MS": "50"})
    lam = lu.lambda_client(srv)
    s3 = srv.client()
    sqs = client(srv, "sqs")
    bucket = tarnlib.unique_bucket_name("retry-kill")
    s3.create_bucket(Bucket=bucket)
    qurl = sqs.create_queue(QueueName=lu.unique_name("failed"))["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=qurl, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    name = lu.unique_name("retry-kill")
    lu.create(lam, name, lu.zip_files({"app.py": (RETRY_FN, PY)}), handler="app.handler",
              runtime="python3.11", Timeout=300)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=2,
                                         DestinationConfig={"OnFailure": {"Destination": qarn}})
    r = lam.invoke(FunctionName=name, InvocationType="Event",
                   Payload=json.dumps({"bucket": bucket}).encode())
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    prefix = "attempts/%s/" % rid

    def attempts():
        return s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0)

    # the first attempt failed; the second one runs (and hangs): crash now
    wait_for("the second attempt", lambda: attempts() >= 2)
    srv.kill9()
    srv.start()
    s3 = srv.client()
    sqs = client(srv, "sqs")

    def failure():
        got = sqs.receive_message(QueueUrl=qurl, WaitTimeSeconds=1).get("Messages", [])
        return got[0] if got else None

    msg = json.loads(wait_for("the on-failure record", failure)["Body"])
    assert msg["requestContext"]["condition"] == "RetriesExhausted", msg
    assert msg["requestContext"]["requestId"] == rid
    # 1 failed + 1 cut short by the crash (run again) + the 1 retry left = 4
    # runs; fresh retries after the restart would have made 5
    assert attempts() == 4
    assert msg["requestContext"]["approximateInvokeCount"] == 3
