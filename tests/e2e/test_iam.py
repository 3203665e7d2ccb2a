"""tests/e2e/test_iam.py -- access control: the IAM API (boto3's iam
client) and its enforcement on requests signed with an IAM user's keys or
a function's own keys (taken from inside the function, as it sees them).

Invariants:
  (1) The root key (the server's) is never limited; every other key is
      refused what no policy allows, with AWS's error shape per service.
  (2) A revoked key (deleted access key, deleted function, changed role)
      is refused on the very next request: 403 InvalidAccessKeyId.
"""
import json
import time
import types

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

import batch_util
import lambda_util as lu
import tarnlib

ACCOUNT = "000000000000"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})
CREDS_FN = ("import os\n"
            "def handler(event, context):\n"
            "    return {k: os.environ[k] for k in ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY')}\n")


def cfg():
    return Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60)


def client(tarn, service, ak=None, sk=None):
    return boto3.session.Session().client(
        service, endpoint_url=tarn.endpoint, region_name=tarnlib.REGION,
        aws_access_key_id=ak or tarn.access_key, aws_secret_access_key=sk or tarn.secret_key,
        config=cfg())


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def iam(tarn):
    return client(tarn, "iam")


@pytest.fixture(scope="module")
def lam(tarn):
    return lu.lambda_client(tarn)


def bucket_with(s3, hint, keys=()):
    b = tarnlib.unique_bucket_name(hint)
    s3.create_bucket(Bucket=b)
    for k in keys:
        s3.put_object(Bucket=b, Key=k, Body=b"data of " + k.encode())
    return b


def function_keys(lam, name, role):
    """Creates a function with role and returns the keys it holds."""
    lu.create(lam, name, lu.zip_files({"app.py": (CREDS_FN, 0o100644)}), handler="app.handler",
              runtime="python3.11", Role=role)
    resp, body = lu.invoke(lam, name)
    assert "FunctionError" not in resp, body
    return body["AWS_ACCESS_KEY_ID"], body["AWS_SECRET_ACCESS_KEY"]


def test_iam_crud_and_errors(iam):
    r = iam.create_role(RoleName="crud-role", AssumeRolePolicyDocument=TRUST,
                        Description="a role")["Role"]
    assert r["Arn"] == "arn:aws:iam::%s:role/crud-role" % ACCOUNT
    assert r["RoleId"].startswith("AROA")
    got = iam.get_role(RoleName="crud-role")["Role"]
    assert got["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == "sts:AssumeRole"
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="crud-role", AssumeRolePolicyDocument=TRUST)
    assert code(e) == "EntityAlreadyExists"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert "crud-role" in [x["RoleName"] for x in iam.list_roles()["Roles"]]

    with pytest.raises(ClientError) as e:
        iam.put_role_policy(RoleName="crud-role", PolicyName="bad",
                            PolicyDocument='{"Statement":{"Effect":"Allow","Resource":"*"}}')
    assert code(e) == "MalformedPolicyDocument"
    assert "Action" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        iam.put_role_policy(RoleName="crud-role", PolicyName="big",
                            PolicyDocument=policy({"Effect": "Allow", "Action": "s3:GetObject",
                                                   "Resource": "arn:aws:s3:::b/" + "x" * 11000}))
    assert code(e) == "LimitExceeded"
    doc = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    iam.put_role_policy(RoleName="crud-role", PolicyName="read", PolicyDocument=doc)
    assert iam.list_role_policies(RoleName="crud-role")["PolicyNames"] == ["read"]
    got = iam.get_role_policy(RoleName="crud-role", PolicyName="read")
    assert got["PolicyDocument"] == json.loads(doc)
    with pytest.raises(ClientError) as e:
        iam.delete_role(RoleName="crud-role")
    assert code(e) == "DeleteConflict"

    p = iam.create_policy(PolicyName="crud-managed", PolicyDocument=doc)["Policy"]
    assert p["Arn"] == "arn:aws:iam::%s:policy/crud-managed" % ACCOUNT
    iam.attach_role_policy(RoleName="crud-role", PolicyArn=p["Arn"])
    att = iam.list_attached_role_policies(RoleName="crud-role")["AttachedPolicies"]
    assert att == [{"PolicyName": "crud-managed", "PolicyArn": p["Arn"]}]
    assert iam.get_policy(PolicyArn=p["Arn"])["Policy"]["AttachmentCount"] == 1
    with pytest.raises(ClientError) as e:
        iam.delete_policy(PolicyArn=p["Arn"])
    assert code(e) == "DeleteConflict"
    iam.detach_role_policy(RoleName="crud-role", PolicyArn=p["Arn"])
    iam.delete_policy(PolicyArn=p["Arn"])
    with pytest.raises(ClientError) as e:
        iam.get_policy(PolicyArn=p["Arn"])
    assert code(e) == "NoSuchEntity"
    iam.delete_role_policy(RoleName="crud-role", PolicyName="read")
    iam.delete_role(RoleName="crud-role")
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName="crud-role")
    assert code(e) == "NoSuchEntity"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    iam.create_user(UserName="crud-user")
    k = iam.create_access_key(UserName="crud-user")["AccessKey"]
    assert k["SecretAccessKey"]
    meta = iam.list_access_keys(UserName="crud-user")["AccessKeyMetadata"]
    assert [m["AccessKeyId"] for m in meta] == [k["AccessKeyId"]]
    with pytest.raises(ClientError) as e:
        iam.delete_user(UserName="crud-user")
    assert code(e) == "DeleteConflict"
    iam.delete_access_key(UserName="crud-user", AccessKeyId=k["AccessKeyId"])
    iam.delete_user(UserName="crud-user")
    with pytest.raises(ClientError) as e:
        iam.get_user(UserName="crud-user")
    assert code(e) == "NoSuchEntity"


def test_user_policies_enforced(tarn, s3, iam):
    b = bucket_with(s3, "iam-user", ["pub/a", "pub/secret", "priv/x"])
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/pub/*" % b},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::%s/pub/secret*" % b},
        {"Effect": "Allow", "NotAction": ["s3:*", "iam:*"], "Resource": "*"}))
    k = iam.create_access_key(UserName="reader")["AccessKey"]
    us3 = tarn.client(k["AccessKeyId"], k["SecretAccessKey"])
    assert us3.get_object(Bucket=b, Key="pub/a")["Body"].read() == b"data of pub/a"
    for call in (lambda: us3.get_object(Bucket=b, Key="priv/x"),
                 lambda: us3.put_object(Bucket=b, Key="pub/new", Body=b"x"),
                 lambda: us3.get_object(Bucket=b, Key="pub/secret"),
                 lambda: us3.list_objects_v2(Bucket=b)):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "AccessDenied"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as e:
        us3.get_object(Bucket=b, Key="priv/x")
    assert e.value.response["Error"]["Message"] == (
        "User: arn:aws:iam::%s:user/reader is not authorized to perform: s3:GetObject on "
        "resource: arn:aws:s3:::%s/priv/x" % (ACCOUNT, b))
    # NotAction: everything but S3 and IAM
    usqs = client(tarn, "sqs", k["AccessKeyId"], k["SecretAccessKey"])
    usqs.list_queues()
    uiam = client(tarn, "iam", k["AccessKeyId"], k["SecretAccessKey"])
    with pytest.raises(ClientError) as e:
        uiam.list_roles()
    assert code(e) == "AccessDenied"
    # aws:SourceIp: this test connects from 127.0.0.1
    iam.put_user_policy(UserName="reader", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}))
    with pytest.raises(ClientError) as e:
        us3.get_object(Bucket=b, Key="pub/a")
    assert code(e) == "AccessDenied"
    iam.put_user_policy(UserName="reader", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "127.0.0.0/8"]}}}))
    assert us3.get_object(Bucket=b, Key="priv/x")["Body"].read() == b"data of priv/x"
    # deleting the key revokes it at once
    iam.delete_access_key(UserName="reader", AccessKeyId=k["AccessKeyId"])
    with pytest.raises(ClientError) as e:
        us3.get_object(Bucket=b, Key="priv/x")
    assert code(e) == "InvalidAccessKeyId"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def native_status(tarn, method, path, ak, sk, body=b""):
    return tarn.request(method, path, body=body, access_key=ak, secret_key=sk).status_code


def test_function_role_scopes_its_keys(tarn, s3, iam, lam):
    mine = bucket_with(s3, "iam-mine", ["in/k"])
    other = bucket_with(s3, "iam-other", ["k"])
    sqs = client(tarn, "sqs")
    q = sqs.create_queue(QueueName=lu.unique_name("iam-q"))["QueueUrl"]
    iam.create_role(RoleName="only-mine", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="only-mine", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
         "Resource": ["arn:aws:s3:::%s" % mine, "arn:aws:s3:::%s/*" % mine]}))
    name = lu.unique_name("iam-scoped")
    ak, sk = function_keys(lam, name, "arn:aws:iam::%s:role/only-mine" % ACCOUNT)
    assert ak != tarn.access_key
    fs3 = tarn.client(ak, sk)
    assert [o["Key"] for o in fs3.list_objects_v2(Bucket=mine)["Contents"]] == ["in/k"]
    fs3.put_object(Bucket=mine, Key="out/k", Body=b"x")
    with pytest.raises(ClientError) as e:
        fs3.list_objects_v2(Bucket=other)
    assert code(e) == "AccessDenied"
    assert e.value.response["Error"]["Message"].startswith(
        "User: arn:aws:sts::%s:assumed-role/only-mine/%s is not authorized to perform: "
        "s3:ListBucket on resource: arn:aws:s3:::%s" % (ACCOUNT, name, other))
    with pytest.raises(ClientError) as e:
        fs3.list_buckets()
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        fs3.put_bucket_notification_configuration(Bucket=mine, NotificationConfiguration={})
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        fs3.delete_bucket(Bucket=other)
    assert code(e) == "AccessDenied"
    fsqs = client(tarn, "sqs", ak, sk)
    with pytest.raises(ClientError) as e:
        fsqs.delete_queue(QueueUrl=q)
    assert "AccessDenied" in code(e)
    assert sqs.get_queue_url(QueueName=q.rsplit("/", 1)[1])["QueueUrl"]
    for method, path, body in (("GET", "/_tarn/metrics", b""), ("GET", "/_tarn/events", b""),
                               ("POST", "/_tarn/sql", b"SELECT 1")):
        assert native_status(tarn, method, path, ak, sk, body) == 403, path
    assert native_status(tarn, "GET", "/_tarn/metrics", tarn.access_key, tarn.secret_key) == 200
    # a policy action of its own opens a native endpoint
    iam.put_role_policy(RoleName="only-mine", PolicyName="metrics", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "tarn:ReadMetrics", "Resource": "*"}))
    assert native_status(tarn, "GET", "/_tarn/metrics", ak, sk) == 200
    # deleting the function revokes its keys at once
    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as e:
        fs3.get_object(Bucket=mine, Key="in/k")
    assert code(e) == "InvalidAccessKeyId"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_role_change_revokes_old_keys(tarn, s3, iam, lam):
    b = bucket_with(s3, "iam-change", ["k"])
    name = lu.unique_name("iam-change")
    ak, sk = function_keys(lam, name, "arn:aws:iam::%s:role/not-in-tarn" % ACCOUNT)
    fs3 = tarn.client(ak, sk)
    fs3.get_object(Bucket=b, Key="k")
    lam.update_function_configuration(FunctionName=name,
                                      Role="arn:aws:iam::%s:role/another" % ACCOUNT)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    with pytest.raises(ClientError) as e:
        fs3.get_object(Bucket=b, Key="k")
    assert code(e) == "InvalidAccessKeyId"
    ak2, sk2 = lu.invoke(lam, name)[1].values()
    assert ak2 != ak
    assert tarn.client(ak2, sk2).get_object(Bucket=b, Key="k")["Body"].read() == b"data of k"
    lam.delete_function(FunctionName=name)


def test_unknown_role_gets_data_plane_only(tarn, s3, lam):
    b = bucket_with(s3, "iam-default", ["k"])
    sqs = client(tarn, "sqs")
    q = sqs.create_queue(QueueName=lu.unique_name("iam-dq"))["QueueUrl"]
    name = lu.unique_name("iam-default")
    ak, sk = function_keys(lam, name, "arn:aws:iam::%s:role/lambda-role" % ACCOUNT)
    fs3 = tarn.client(ak, sk)
    assert b in [x["Name"] for x in fs3.list_buckets()["Buckets"]]
    fs3.put_object(Bucket=b, Key="new", Body=b"x")
    assert fs3.get_object(Bucket=b, Key="new")["Body"].read() == b"x"
    fs3.delete_object(Bucket=b, Key="new")
    fsqs = client(tarn, "sqs", ak, sk)
    fsqs.send_message(QueueUrl=q, MessageBody="hi")
    assert fsqs.receive_message(QueueUrl=q, WaitTimeSeconds=1)["Messages"][0]["Body"] == "hi"
    for call in (lambda: fs3.create_bucket(Bucket=tarnlib.unique_bucket_name("iam-no")),
                 lambda: fs3.delete_bucket(Bucket=b),
                 lambda: fs3.put_bucket_notification_configuration(
                     Bucket=b, NotificationConfiguration={}),
                 lambda: fsqs.delete_queue(QueueUrl=q),
                 lambda: client(tarn, "iam", ak, sk).list_roles(),
                 lambda: client(tarn, "lambda", ak, sk).list_functions()):
        with pytest.raises(ClientError) as e:
            call()
        assert "AccessDenied" in code(e)
    assert native_status(tarn, "GET", "/_tarn/metrics", ak, sk) == 403
    assert requests.get(tarn.endpoint + "/_tarn/health", timeout=10).status_code == 200
    lam.delete_function(FunctionName=name)


def athena_run(ath, sql, output):
    qid = ath.start_query_execution(
        QueryString=sql, ResultConfiguration={"OutputLocation": output})["QueryExecutionId"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        st = ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if st["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return st
        time.sleep(0.1)
    raise AssertionError("query %s did not finish" % qid)


def test_sql_reaches_only_objects_the_caller_may(tarn, s3, iam):
    """Athena and /_tarn/sql read and write objects with their caller's S3
    permissions: athena:* and glue:* do not open every bucket."""
    victim = bucket_with(s3, "iam-victim", ["t/a.csv"])
    s3.put_object(Bucket=victim, Key="t/a.csv", Body=b"a,b\n1,secret\n")
    mine = bucket_with(s3, "iam-analyst", [])
    iam.create_user(UserName="analyst")
    iam.put_user_policy(UserName="analyst", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["athena:*", "glue:*", "tarn:RunSql"], "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::%s" % mine, "arn:aws:s3:::%s/*" % mine]}))
    k = iam.create_access_key(UserName="analyst")["AccessKey"]
    ak, sk = k["AccessKeyId"], k["SecretAccessKey"]
    ath = client(tarn, "athena", ak, sk)
    out = "s3://%s/out/" % mine
    for sql in ("SELECT * FROM 's3://%s/t/a.csv'" % victim,
                "CREATE TABLE stolen WITH (external_location='s3://%s/evil/', format='PARQUET') "
                "AS SELECT 1 AS x" % victim):
        st = athena_run(ath, sql, out)
        assert st["State"] == "FAILED", sql
        assert "not authorized to perform: s3:ListBucket on resource: arn:aws:s3:::%s" % victim \
            in st["StateChangeReason"], st
    st = athena_run(ath, "CREATE EXTERNAL TABLE v (a string, b string) ROW FORMAT DELIMITED "
                         "FIELDS TERMINATED BY ',' LOCATION 's3://%s/t/'" % victim, out)
    assert st["State"] == "SUCCEEDED", st   # the catalog is glue's: allowed
    st = athena_run(ath, "SELECT * FROM v", out)
    assert st["State"] == "FAILED" and "s3:ListBucket" in st["StateChangeReason"], st
    r = tarn.request("POST", "/_tarn/sql", body=("SELECT * FROM 's3://%s/t/a.csv'" % victim).encode(),
                     access_key=ak, secret_key=sk)
    assert "secret" not in r.text and "not authorized" in r.text, (r.status_code, r.text)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=victim)["Contents"]] == ["t/a.csv"]
    # the caller's own bucket is readable, and root reads everything
    s3.put_object(Bucket=mine, Key="t/m.csv", Body=b"a,b\n2,mine\n")
    assert athena_run(ath, "SELECT * FROM 's3://%s/t/m.csv'" % mine, out)["State"] == "SUCCEEDED"
    root = client(tarn, "athena")
    assert athena_run(root, "SELECT * FROM v", out)["State"] == "SUCCEEDED"
    iam.delete_access_key(UserName="analyst", AccessKeyId=ak)


def test_passing_a_role_needs_iam_pass_role(tarn, s3, iam):
    """Keys that may create a function, state machine, delivery stream,
    crawler or batch job may not hand it a role they were not allowed to
    pass (iam:PassRole): else they would act through it with its rights."""
    b = bucket_with(s3, "iam-pass", [])
    iam.create_role(RoleName="powerful", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="powerful", PolicyName="all", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "*", "Resource": "*"}))
    role = "arn:aws:iam::%s:role/powerful" % ACCOUNT
    iam.create_user(UserName="deployer")
    iam.put_user_policy(UserName="deployer", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["lambda:*", "states:*", "firehose:*", "glue:*",
                                       "s3:CreateJob", "s3:GetObject", "s3:PutObject"],
         "Resource": "*"}))
    k = iam.create_access_key(UserName="deployer")["AccessKey"]
    ak, sk = k["AccessKeyId"], k["SecretAccessKey"]
    ul = client(tarn, "lambda", ak, sk)
    fname = lu.unique_name("iam-pass")
    manifest = batch_util.put_manifest(s3, b, "manifest.csv", [(b, "x")])
    ctl = batch_util.control_client(types.SimpleNamespace(
        endpoint=tarn.endpoint, access_key=ak, secret_key=sk))
    attempts = {
        "lambda": lambda: lu.create(ul, fname, lu.zip_files({"app.py": (CREDS_FN, 0o100644)}),
                                    handler="app.handler", runtime="python3.11", Role=role),
        "states": lambda: client(tarn, "stepfunctions", ak, sk).create_state_machine(
            name="iam-pass", roleArn=role, definition=json.dumps(
                {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})),
        "firehose": lambda: client(tarn, "firehose", ak, sk).create_delivery_stream(
            DeliveryStreamName="iam-pass", ExtendedS3DestinationConfiguration={
                "RoleARN": role, "BucketARN": "arn:aws:s3:::" + b}),
        "glue": lambda: client(tarn, "glue", ak, sk).create_crawler(
            Name="iam-pass", Role="powerful", Targets={"S3Targets": [{"Path": "s3://%s/" % b}]}),
        "s3control": lambda: ctl.create_job(
            AccountId=ACCOUNT, ConfirmationRequired=True, Priority=1, RoleArn=role,
            Operation={"S3PutObjectTagging": {"TagSet": [{"Key": "k", "Value": "v"}]}},
            Manifest=manifest, Report=batch_util.NO_REPORT, ClientRequestToken="iam-pass"),
    }
    for service, attempt in attempts.items():
        with pytest.raises(ClientError) as e:
            attempt()
        assert "AccessDenied" in code(e), (service, e.value.response)
        assert "iam:PassRole on resource: %s" % role in \
            e.value.response["Error"]["Message"], service
    # nothing was made
    root_lam = lu.lambda_client(tarn)
    assert fname not in [f["FunctionName"] for f in root_lam.list_functions()["Functions"]]
    assert "iam-pass" not in [m["name"] for m in
                              client(tarn, "stepfunctions").list_state_machines()["stateMachines"]]
    assert "iam-pass" not in client(tarn, "firehose").list_delivery_streams()["DeliveryStreamNames"]
    assert "iam-pass" not in client(tarn, "glue").list_crawlers()["CrawlerNames"]
    # allowed to pass it: the function is made
    iam.put_user_policy(UserName="deployer", PolicyName="pass", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": role}))
    attempts["lambda"]()
    root_lam.delete_function(FunctionName=fname)


def test_managed_policy_not_resource_and_conditions_enforced(tarn, s3, iam):
    """A customer managed policy attached to a user counts; NotResource and
    StringLike on s3:prefix decide as in AWS."""
    b = bucket_with(s3, "iam-lang", ["home/ann/a", "home/bob/b", "shared/s"])
    iam.create_user(UserName="ann")
    pol = iam.create_policy(PolicyName="ann-home", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::%s" % b,
         "Condition": {"StringLike": {"s3:prefix": ["home/ann/*", "shared/*"]}}},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % b},
        {"Effect": "Deny", "Action": "s3:GetObject",
         "NotResource": ["arn:aws:s3:::%s/home/ann/*" % b, "arn:aws:s3:::%s/shared/*" % b]}))
    iam.attach_user_policy(UserName="ann", PolicyArn=pol["Policy"]["Arn"])
    k = iam.create_access_key(UserName="ann")["AccessKey"]
    us3 = tarn.client(k["AccessKeyId"], k["SecretAccessKey"])
    assert [o["Key"] for o in us3.list_objects_v2(Bucket=b, Prefix="home/ann/")["Contents"]] \
        == ["home/ann/a"]
    assert us3.get_object(Bucket=b, Key="shared/s")["Body"].read() == b"data of shared/s"
    for call in (lambda: us3.list_objects_v2(Bucket=b, Prefix="home/bob/"),
                 lambda: us3.list_objects_v2(Bucket=b),
                 lambda: us3.get_object(Bucket=b, Key="home/bob/b")):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "AccessDenied"
    # detaching it takes the rights away at once
    iam.detach_user_policy(UserName="ann", PolicyArn=pol["Policy"]["Arn"])
    with pytest.raises(ClientError) as e:
        us3.get_object(Bucket=b, Key="shared/s")
    assert code(e) == "AccessDenied"


def test_strict_iam_gives_unknown_roles_nothing(tarn_factory):
    srv = tarn_factory(env={"TARN_STRICT_IAM": "1"})
    s3 = srv.client()
    b = bucket_with(s3, "iam-strict", ["k"])
    lam = lu.lambda_client(srv)
    name = lu.unique_name("iam-strict")
    role = "arn:aws:iam::%s:role/not-in-tarn" % ACCOUNT
    ak, sk = function_keys(lam, name, role)
    assert "not-in-tarn" in srv.logs(200) and "no access (strict IAM)" in srv.logs(200)
    fs3 = srv.client(ak, sk)
    for call in (lambda: fs3.get_object(Bucket=b, Key="k"),
                 lambda: fs3.put_object(Bucket=b, Key="new", Body=b"x"),
                 lambda: fs3.list_buckets()):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "AccessDenied"
    # a role tarn knows is enforced as written
    iam = client(srv, "iam")
    iam.create_role(RoleName="reader", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="reader", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % b}))
    lam.update_function_configuration(FunctionName=name,
                                      Role="arn:aws:iam::%s:role/reader" % ACCOUNT)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    ak2, sk2 = lu.invoke(lam, name)[1].values()
    assert srv.client(ak2, sk2).get_object(Bucket=b, Key="k")["Body"].read() == b"data of k"
    assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 1


def test_code_from_s3_needs_the_callers_read(tarn, s3, iam):
    """CreateFunction, UpdateFunctionCode and PublishLayerVersion read their
    S3 object with the caller's rights: lambda:* does not read others'
    buckets (a layer's download URL would hand the object out)."""
    zipped = lu.zip_files({"app.py": (CREDS_FN, 0o100644)})
    victim = bucket_with(s3, "iam-code", [])
    s3.put_object(Bucket=victim, Key="private.zip", Body=zipped)
    iam.create_user(UserName="coder")
    iam.put_user_policy(UserName="coder", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["lambda:*", "iam:PassRole"], "Resource": "*"}))
    k = iam.create_access_key(UserName="coder")["AccessKey"]
    ul = client(tarn, "lambda", k["AccessKeyId"], k["SecretAccessKey"])
    name = lu.unique_name("iam-code")
    src = {"S3Bucket": victim, "S3Key": "private.zip"}
    attempts = (
        lambda: ul.publish_layer_version(LayerName=name, Content=src),
        lambda: ul.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                                   Role="arn:aws:iam::%s:role/r" % ACCOUNT, Code=src),
    )
    for attempt in attempts:
        with pytest.raises(ClientError) as e:
            attempt()
        assert "AccessDenied" in code(e), e.value.response
        assert "s3:GetObject on resource: arn:aws:s3:::%s/private.zip" % victim in \
            e.value.response["Error"]["Message"]
    ul.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                       Role="arn:aws:iam::%s:role/r" % ACCOUNT, Code={"ZipFile": zipped})
    with pytest.raises(ClientError) as e:
        ul.update_function_code(FunctionName=name, **src)
    assert "AccessDenied" in code(e)
    assert ul.list_layer_versions(LayerName=name)["LayerVersions"] == []
    # allowed to read it: the layer is published
    iam.put_user_policy(UserName="coder", PolicyName="read", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::%s/*" % victim}))
    assert ul.publish_layer_version(LayerName=name, Content=src)["Version"] == 1
    lu.lambda_client(tarn).delete_function(FunctionName=name)


def test_dynamodb_batches_are_authorized_per_table(tarn, iam):
    ddb = client(tarn, "dynamodb")
    for t in ("iam-mine", "iam-theirs"):
        ddb.create_table(TableName=t, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
    iam.create_user(UserName="tables")
    iam.put_user_policy(UserName="tables", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "dynamodb:*",
         "Resource": "arn:aws:dynamodb:us-east-1:%s:table/iam-mine" % ACCOUNT}))
    k = iam.create_access_key(UserName="tables")["AccessKey"]
    u = client(tarn, "dynamodb", k["AccessKeyId"], k["SecretAccessKey"])
    put = lambda t, v: {"PutRequest": {"Item": {"k": {"S": v}}}}
    u.batch_write_item(RequestItems={"iam-mine": [put("iam-mine", "a")]})
    u.transact_write_items(TransactItems=[{"Put": {"TableName": "iam-mine",
                                                   "Item": {"k": {"S": "b"}}}}])
    got = u.batch_get_item(RequestItems={"iam-mine": {"Keys": [{"k": {"S": "a"}}]}})
    assert got["Responses"]["iam-mine"] == [{"k": {"S": "a"}}]
    for call in (lambda: u.batch_write_item(RequestItems={"iam-mine": [put("iam-mine", "c")],
                                                          "iam-theirs": [put("iam-theirs", "c")]}),
                 lambda: u.transact_write_items(TransactItems=[
                     {"Put": {"TableName": "iam-mine", "Item": {"k": {"S": "c"}}}},
                     {"Put": {"TableName": "iam-theirs", "Item": {"k": {"S": "c"}}}}]),
                 lambda: u.batch_get_item(RequestItems={"iam-theirs": {"Keys": [{"k": {"S": "a"}}]}})):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "AccessDeniedException"
        assert "table/iam-theirs" in e.value.response["Error"]["Message"]
    assert ddb.scan(TableName="iam-theirs")["Count"] == 0
    assert ddb.scan(TableName="iam-mine")["Count"] == 2


def test_partiql_is_decided_by_statement_kind_and_table(tarn, iam):
    ddb = client(tarn, "dynamodb")
    for t in ("pq-mine", "pq-theirs"):
        ddb.create_table(TableName=t, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        ddb.put_item(TableName=t, Item={"k": {"S": "seed"}})
    iam.create_user(UserName="partiql")
    iam.put_user_policy(UserName="partiql", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["dynamodb:PartiQLSelect", "dynamodb:PartiQLInsert"],
         "Resource": "arn:aws:dynamodb:us-east-1:%s:table/pq-mine" % ACCOUNT}))
    k = iam.create_access_key(UserName="partiql")["AccessKey"]
    u = client(tarn, "dynamodb", k["AccessKeyId"], k["SecretAccessKey"])
    got = u.execute_statement(Statement='SELECT * FROM "pq-mine"')
    assert got["Items"] == [{"k": {"S": "seed"}}]
    u.execute_statement(Statement="INSERT INTO \"pq-mine\" VALUE {'k': 'new'}")
    denied = [
        ('SELECT * FROM "pq-theirs"', "table/pq-theirs"),
        ("INSERT INTO \"pq-theirs\" VALUE {'k': 'x'}", "table/pq-theirs"),
        ("DELETE FROM \"pq-mine\" WHERE k = 'seed'", "PartiQLDelete"),
        ("UPDATE \"pq-mine\" SET v = 1 WHERE k = 'seed'", "PartiQLUpdate"),
    ]
    for stmt, why in denied:
        with pytest.raises(ClientError) as e:
            u.execute_statement(Statement=stmt)
        assert code(e) == "AccessDeniedException", stmt
        assert why in e.value.response["Error"]["Message"], stmt
    # a batch is decided statement by statement: one denied statement refuses it all
    with pytest.raises(ClientError) as e:
        u.batch_execute_statement(Statements=[
            {"Statement": "INSERT INTO \"pq-mine\" VALUE {'k': 'b1'}"},
            {"Statement": "INSERT INTO \"pq-theirs\" VALUE {'k': 'b1'}"}])
    assert code(e) == "AccessDeniedException"
    assert sorted(i["k"]["S"] for i in ddb.scan(TableName="pq-mine")["Items"]) == ["new", "seed"]
    assert ddb.scan(TableName="pq-theirs")["Items"] == [{"k": {"S": "seed"}}]


def test_secret_named_by_name_is_decided_on_its_arn(tarn, iam):
    sm = client(tarn, "secretsmanager")
    mine = sm.create_secret(Name="iam-mine", SecretString="m")["ARN"]
    sm.create_secret(Name="iam-theirs", SecretString="t")
    iam.create_user(UserName="secrets")
    iam.put_user_policy(UserName="secrets", PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": mine}))
    k = iam.create_access_key(UserName="secrets")["AccessKey"]
    u = client(tarn, "secretsmanager", k["AccessKeyId"], k["SecretAccessKey"])
    assert u.get_secret_value(SecretId="iam-mine")["SecretString"] == "m"
    assert u.get_secret_value(SecretId=mine)["SecretString"] == "m"
    with pytest.raises(ClientError) as e:
        u.get_secret_value(SecretId="iam-theirs")
    assert code(e) == "AccessDeniedException"


NO_POLICY_CALLS = [
    ("kinesis", "create_stream", {"StreamName": "np", "ShardCount": 1}),
    ("firehose", "list_delivery_streams", {}),
    ("stepfunctions", "list_state_machines", {}),
    ("dynamodb", "list_tables", {}),
    ("dynamodbstreams", "list_streams", {}),
    ("glue", "create_database", {"DatabaseInput": {"Name": "np"}}),
    ("athena", "list_work_groups", {}),
    ("apigatewayv2", "create_api", {"Name": "np", "ProtocolType": "HTTP"}),
    ("lambda", "list_layers", {}),
    ("lambda", "list_function_url_configs", {"FunctionName": "np"}),
    ("lambda", "list_event_source_mappings", {}),
    ("rds", "describe_db_clusters", {}),
    ("secretsmanager", "list_secrets", {}),
    ("s3", "get_bucket_website", {"Bucket": "np-bucket"}),
    ("s3", "get_bucket_lifecycle_configuration", {"Bucket": "np-bucket"}),
    ("s3", "get_bucket_cors", {"Bucket": "np-bucket"}),
    ("s3", "put_bucket_policy", {"Bucket": "np-bucket", "Policy": "{}"}),
    ("iam", "list_roles", {}),
]


@pytest.fixture(scope="module")
def no_policy_keys(iam):
    iam.create_user(UserName="nobody")
    k = iam.create_access_key(UserName="nobody")["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


@pytest.mark.parametrize("service,op,kw", NO_POLICY_CALLS,
                         ids=["%s.%s" % (c[0], c[1]) for c in NO_POLICY_CALLS])
def test_user_without_policy_is_denied_by_every_service(tarn, no_policy_keys, service, op, kw):
    c = client(tarn, service, *no_policy_keys)
    with pytest.raises(ClientError) as e:
        getattr(c, op)(**kw)
    assert code(e) in ("AccessDenied", "AccessDeniedException"), e.value.response
    assert "user/nobody is not authorized to perform" in e.value.response["Error"]["Message"]


class _Unsigned(botocore.auth.SigV4Auth):
    def payload(self, request):
        return "UNSIGNED-PAYLOAD"


def raw(tarn, service, method, path, body, headers):
    headers = dict(headers, **{"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    req = botocore.awsrequest.AWSRequest(method=method, url=tarn.endpoint + path, data=body,
                                         headers=headers)
    _Unsigned(botocore.credentials.Credentials(tarn.access_key, tarn.secret_key), service,
              tarnlib.REGION).add_auth(req)
    return requests.request(method, tarn.endpoint + path, data=body,
                            headers=dict(req.headers.items()), timeout=30)


def json_target(target, version="1.1"):
    return {"Content-Type": "application/x-amz-json-%s" % version, "X-Amz-Target": target}


@pytest.mark.parametrize("service,method,path,body,headers", [
    ("sns", "POST", "/", b"Action=CreateTopic&Name=replayed",
     {"Content-Type": "application/x-www-form-urlencoded"}),
    ("lambda", "POST", "/2015-03-31/functions/replayed/invocations", b"{}", {}),
    ("kinesis", "POST", "/", b'{"StreamName":"replayed","ShardCount":1}',
     json_target("Kinesis_20131202.CreateStream")),
    ("firehose", "POST", "/", b'{"DeliveryStreamName":"replayed"}',
     json_target("Firehose_20150804.CreateDeliveryStream")),
    ("states", "POST", "/", b'{"name":"replayed"}',
     json_target("AWSStepFunctions.CreateStateMachine", "1.0")),
    ("dynamodb", "POST", "/", b'{"TableName":"replayed"}',
     json_target("DynamoDB_20120810.CreateTable", "1.0")),
    ("glue", "POST", "/", b'{"DatabaseInput":{"Name":"replayed"}}',
     json_target("AWSGlue.CreateDatabase")),
    ("athena", "POST", "/", b'{"QueryString":"SELECT 1"}',
     json_target("AmazonAthena.StartQueryExecution")),
    ("secretsmanager", "POST", "/", b'{"Name":"replayed","SecretString":"x"}',
     json_target("secretsmanager.CreateSecret")),
    ("rds-data", "POST", "/Execute", b'{"sql":"SELECT 1"}', {"Content-Type": "application/json"}),
    ("apigateway", "POST", "/v2/apis", b'{"Name":"replayed","ProtocolType":"HTTP"}',
     {"Content-Type": "application/json"}),
    ("s3", "POST", "/_tarn/sql", b"SELECT 1", {}),
])
def test_unsigned_payload_refused_outside_s3(tarn, service, method, path, body, headers):
    r = raw(tarn, service, method, path, body, headers)
    assert r.status_code in (400, 403), (service, r.status_code, r.text)
    assert "UNSIGNED-PAYLOAD" in r.text, (service, r.text)


def test_unsigned_payload_only_for_s3(tarn):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = raw(tarn, "sqs", "POST", "/", b"Action=CreateQueue&QueueName=replayed", form)
    assert r.status_code == 403, r.text
    assert "UNSIGNED-PAYLOAD" in r.text
    assert "replayed" not in [u.rsplit("/", 1)[1]
                              for u in client(tarn, "sqs").list_queues().get("QueueUrls", [])]
    r = raw(tarn, "lambda", "GET", "/2015-03-31/functions/", b"", {})
    assert r.status_code == 403, r.text
    r = raw(tarn, "sns", "POST", "/", b"Action=ListTopics", form)
    assert r.status_code == 403, r.text
    # S3 takes it, as AWS does
    r = raw(tarn, "s3", "GET", "/", b"", {})
    assert r.status_code == 200, r.text
