"""tests/e2e/states_util.py -- what the Step Functions end-to-end tests
share: a boto3 `stepfunctions` client for a server, a helper that creates a
state machine from a Python dict, and waiting for an execution to end
without fixed sleeps.
"""
import json
import time
import uuid

import boto3
import botocore.auth
import botocore.awsrequest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tarnlib import REGION

ROLE = "arn:aws:iam::000000000000:role/states-role"


def sfn_client(tarn, **config):
    # inject_host_prefix: StartSyncExecution's "sync-" host prefix would
    # otherwise be put in front of 127.0.0.1
    cfg = dict(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=120,
               inject_host_prefix=False)
    cfg.update(config)
    return boto3.session.Session().client(
        "stepfunctions", endpoint_url=tarn.endpoint, region_name=REGION,
        aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key,
        config=Config(**cfg))


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def machine(sfn, definition, type="STANDARD", name=None):
    """Creates a state machine; returns its ARN."""
    r = sfn.create_state_machine(name=name or unique("sm"), definition=json.dumps(definition),
                                 roleArn=ROLE, type=type)
    return r["stateMachineArn"]


def wait_done(sfn, arn, timeout=60):
    """Polls DescribeExecution until the execution is no longer RUNNING."""
    deadline = time.monotonic() + timeout
    while True:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        assert time.monotonic() < deadline, "execution %s still running" % arn
        time.sleep(0.1)


def run(sfn, definition, input=None, timeout=60):
    """Creates a machine, runs it to its end; returns (description, arn)."""
    arn = machine(sfn, definition)
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps(input or {}))
    return wait_done(sfn, ex["executionArn"], timeout), ex["executionArn"]


def history(sfn, exec_arn):
    events = []
    kw = {}
    while True:
        r = sfn.get_execution_history(executionArn=exec_arn, maxResults=100, **kw)
        events += r["events"]
        if "nextToken" not in r:
            return events
        kw["nextToken"] = r["nextToken"]


def raw_call(tarn, operation, body):
    """A signed JSON 1.0 call for operations this botocore does not know
    (ValidateStateMachineDefinition); returns the decoded answer."""
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=tarn.endpoint + "/", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/x-amz-json-1.0",
                 "X-Amz-Target": "AWSStepFunctions." + operation})
    botocore.auth.SigV4Auth(tarn.credentials(), "states", REGION).add_auth(req)
    r = requests.post(req.url, data=req.body, headers=dict(req.headers.items()), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


class RawSfn:
    """A `stepfunctions` client for the operations and members this
    botocore (Debian 12's) does not know (versions, aliases, the version
    and alias ARNs of DescribeExecution): sfn.publish_state_machine_version(
    stateMachineArn=...) is a signed JSON 1.0 call whose AWS errors raise
    botocore's ClientError as boto3's would."""

    def __init__(self, tarn):
        self.tarn = tarn

    def __getattr__(self, name):
        op = "".join(p.capitalize() for p in name.split("_"))

        def call(**body):
            req = botocore.awsrequest.AWSRequest(
                method="POST", url=self.tarn.endpoint + "/", data=json.dumps(body).encode(),
                headers={"Content-Type": "application/x-amz-json-1.0",
                         "X-Amz-Target": "AWSStepFunctions." + op})
            botocore.auth.SigV4Auth(self.tarn.credentials(), "states", REGION).add_auth(req)
            r = requests.post(req.url, data=req.body, headers=dict(req.headers.items()),
                              timeout=90)
            doc = r.json() if r.content else {}
            if r.status_code != 200:
                raise ClientError({"Error": {"Code": doc.get("__type", "").split("#")[-1],
                                             "Message": doc.get("message", "")},
                                   "ResponseMetadata": {"HTTPStatusCode": r.status_code}}, op)
            return doc
        return call
