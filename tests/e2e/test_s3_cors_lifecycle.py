"""tests/e2e/test_s3_cors_lifecycle.py -- CORS, lifecycle rules and
PublicAccessBlock end to end with boto3, `requests` (preflights and
anonymous reads, as a browser sends them) and Debian's AWS CLI.

The server runs with a lifecycle day of 2 seconds and a sweep every second
(TARN_LIFECYCLE_DAY_SECONDS, TARN_LIFECYCLE_SWEEP_SECONDS), so Days=1
expires an object about two seconds after it was written; tests wait for
the effect with generous deadlines, never fixed sleeps.
"""
import json
import time

import pytest
import requests
from botocore.exceptions import ClientError

import tarnlib
from tarnlib import Tarn, client_error
from test_events import aws_client, make_queue, receive_all, queue_rule

DAY = 2


@pytest.fixture(scope="module")
def tarn(tmp_path_factory):
    srv = Tarn(tmp_path_factory.mktemp("tarn"),
               env={"TARN_LIFECYCLE_DAY_SECONDS": str(DAY),
                    "TARN_LIFECYCLE_SWEEP_SECONDS": "1"}).start()
    yield srv
    srv.stop_clean()


def code_of(exc):
    return exc.value.response["Error"]["Code"]


def wait_for(cond, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return False
        raise


# ---- CORS ----

CORS = {"CORSRules": [
    {"ID": "app", "AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET", "PUT"],
     "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"],
     "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
]}


def test_cors_config_round_trip_and_errors(s3, bucket):
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_cors(Bucket=bucket)
    assert code_of(ei) == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=CORS)
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got[0] == CORS["CORSRules"][0]
    assert got[1] == CORS["CORSRules"][1]

    bad = [
        ({"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]},
         "InvalidRequest"),
        ({"CORSRules": [{"AllowedOrigins": ["https://*.*.com"], "AllowedMethods": ["GET"]}]},
         "InvalidRequest"),
        ({"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"],
                         "AllowedHeaders": ["x-*-*"]}]}, "InvalidRequest"),
        ({"CORSRules": [{"AllowedOrigins": [], "AllowedMethods": ["GET"]}]}, "MalformedXML"),
    ]
    for cfg, code in bad:
        with pytest.raises(ClientError) as ei:
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=cfg)
        assert code_of(ei) == code, cfg
    # nothing changed
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["ID"] == "app"
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_cors(Bucket=bucket)
    assert code_of(ei) == "NoSuchCORSConfiguration"


def test_cors_preflight_and_actual(tarn, s3, bucket):
    url = "%s/%s/photo.jpg" % (tarn.endpoint, bucket)
    pre = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
           "Access-Control-Request-Headers": "content-type, x-amz-meta-color"}
    r = requests.options(url, headers=pre, timeout=60)
    assert r.status_code == 403
    assert b"CORS is not enabled" in r.content

    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=CORS)
    r = requests.options(url, headers=pre, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type, x-amz-meta-color"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag"
    assert "Origin" in r.headers["Vary"]

    # a header no rule allows, a method no rule allows, an origin no rule allows
    for h in ({**pre, "Access-Control-Request-Headers": "authorization-x"},
              {**pre, "Access-Control-Request-Method": "DELETE"},
              {"Origin": "https://evil.test", "Access-Control-Request-Method": "PUT"}):
        r = requests.options(url, headers=h, timeout=60)
        assert r.status_code == 403
        assert b"CORSResponse: This CORS request is not allowed" in r.content
        assert "Access-Control-Allow-Origin" not in r.headers
    # any origin may GET (the second rule)
    r = requests.options(url, headers={"Origin": "https://other.test",
                                       "Access-Control-Request-Method": "GET"}, timeout=60)
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"

    # actual requests: a signed GET with an Origin gets the headers
    s3.put_object(Bucket=bucket, Key="photo.jpg", Body=b"jpeg")
    s3.meta.events.register("before-sign.s3.GetObject",
                            lambda request, **kw: request.headers.__setitem__(
                                "Origin", "https://app.example.com"))
    try:
        got = s3.get_object(Bucket=bucket, Key="photo.jpg")
    finally:
        s3.meta.events.unregister("before-sign.s3.GetObject")
    h = got["ResponseMetadata"]["HTTPHeaders"]
    assert h["access-control-allow-origin"] == "https://app.example.com"
    assert h["access-control-allow-methods"] == "GET, PUT"
    assert h["access-control-expose-headers"] == "ETag"
    assert "origin" in h["vary"].lower()
    assert got["Body"].read() == b"jpeg"


def test_cors_awscli(tarn, s3, bucket):
    cfg = {"CORSRules": [{"AllowedOrigins": ["http://localhost:3000"],
                          "AllowedMethods": ["GET", "POST"], "MaxAgeSeconds": 60}]}
    tarn.aws_ok("s3api", "put-bucket-cors", "--bucket", bucket,
                "--cors-configuration", json.dumps(cfg))
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got == cfg["CORSRules"]


# ---- lifecycle ----

def test_lifecycle_config_round_trip_and_errors(s3, bucket):
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert code_of(ei) == "NoSuchLifecycleConfiguration"
    rules = [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
         "Expiration": {"Days": 30}},
        {"ID": "cold", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "raw/", "Tags": [{"Key": "tier", "Value": "cold"}],
                            "ObjectSizeGreaterThan": 10}},
         "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}],
         "NoncurrentVersionExpiration": {"NoncurrentDays": 7}},
        {"ID": "uploads", "Status": "Disabled", "Filter": {},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket,
                                          LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [r["ID"] for r in got] == ["logs", "cold", "uploads"]
    assert got[0]["Expiration"] == {"Days": 30}
    assert got[1]["Transitions"] == [{"Days": 30, "StorageClass": "GLACIER"}]

    def rule(**kw):
        r = {"ID": "x", "Status": "Enabled", "Filter": {"Prefix": ""}}
        r.update(kw)
        return {"Rules": [r]}

    bad = [
        (rule(), "InvalidRequest"),                                   # no action
        (rule(Expiration={"Days": 0}), "InvalidArgument"),
        (rule(Expiration={"Date": "2030-01-01T12:00:00Z"}), "InvalidArgument"),
        (rule(Status="On", Expiration={"Days": 1}), "MalformedXML"),
        (rule(Filter={"Tag": {"Key": "a", "Value": "b"}},
              AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1}), "InvalidRequest"),
        ({"Rules": [rule(Expiration={"Days": 1})["Rules"][0]] * 2}, "InvalidArgument"),
        (rule(Transitions=[{"Days": 5, "StorageClass": "STANDARD_IA"}]), "InvalidArgument"),
    ]
    for cfg, code in bad:
        with pytest.raises(ClientError) as ei:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=cfg)
        assert code_of(ei) == code, cfg
    assert len(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]) == 3

    # x-amz-expiration names the rule on PUT, GET and HEAD
    put = s3.put_object(Bucket=bucket, Key="logs/a.log", Body=b"x")
    assert put["Expiration"].startswith('expiry-date="') and 'rule-id="logs"' in put["Expiration"]
    assert 'rule-id="logs"' in s3.head_object(Bucket=bucket, Key="logs/a.log")["Expiration"]
    assert 'rule-id="logs"' in s3.get_object(Bucket=bucket, Key="logs/a.log")["Expiration"]
    copied = s3.copy_object(Bucket=bucket, Key="logs/b.log",
                            CopySource={"Bucket": bucket, "Key": "logs/a.log"})
    assert 'rule-id="logs"' in copied["Expiration"]
    s3.put_object(Bucket=bucket, Key="other/a", Body=b"x")
    assert "Expiration" not in s3.head_object(Bucket=bucket, Key="other/a")

    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert code_of(ei) == "NoSuchLifecycleConfiguration"


def test_lifecycle_expires_by_prefix_and_tag_with_events(tarn, s3, bucket):
    sqs = aws_client(tarn, "sqs")
    qurl, qarn = make_queue(sqs, bucket + "-q")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [queue_rule(qarn, ["s3:LifecycleExpiration:*"])]})
    receive_all(sqs, qurl, 1)   # the s3:TestEvent
    for k in ("tmp/a", "tmp/b", "keep/a"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"data")
    s3.put_object(Bucket=bucket, Key="keep/tagged", Body=b"data", Tagging="state=done")
    s3.put_object(Bucket=bucket, Key="keep/other-tag", Body=b"data", Tagging="state=open")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
         "Expiration": {"Days": 1}},
        {"ID": "done", "Status": "Enabled",
         "Filter": {"Tag": {"Key": "state", "Value": "done"}}, "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/a"},
         "Expiration": {"Days": 1}},
    ]})
    gone = ("tmp/a", "tmp/b", "keep/tagged")
    wait_for(lambda: not any(exists(s3, bucket, k) for k in gone), what="expiration")
    for k in ("keep/a", "keep/other-tag"):
        assert exists(s3, bucket, k)
    bodies = receive_all(sqs, qurl, 3, timeout=60)
    recs = [json.loads(b)["Records"][0] for b in bodies]
    assert sorted(r["s3"]["object"]["key"] for r in recs) == sorted(gone)
    assert {r["eventName"] for r in recs} == {"LifecycleExpiration:Delete"}
    assert {r["userIdentity"]["principalId"] for r in recs} == {"s3.amazonaws.com"}
    assert {r["requestParameters"]["sourceIPAddress"] for r in recs} == {"s3.amazonaws.com"}


def test_lifecycle_aborts_stale_uploads(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "abort", "Status": "Enabled", "Filter": {"Prefix": "big/"},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
    created = s3.create_multipart_upload(Bucket=bucket, Key="big/file")
    assert created["AbortRuleId"] == "abort" and "AbortDate" in created
    up = created["UploadId"]
    s3.upload_part(Bucket=bucket, Key="big/file", UploadId=up, PartNumber=1, Body=b"p" * 100)
    created = s3.create_multipart_upload(Bucket=bucket, Key="small/file")
    assert "AbortRuleId" not in created
    other = created["UploadId"]

    def uploads():
        return {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}
    wait_for(lambda: up not in uploads(), what="the abort")
    assert other in uploads()
    with pytest.raises(ClientError) as ei:
        s3.list_parts(Bucket=bucket, Key="big/file", UploadId=up)
    assert code_of(ei) == "NoSuchUpload"


# ---- PublicAccessBlock and policy status ----

def public_policy(bucket):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::%s/*" % bucket}]})


def test_public_access_block(tarn, s3, bucket):
    with pytest.raises(ClientError) as ei:
        s3.get_public_access_block(Bucket=bucket)
    assert code_of(ei) == "NoSuchPublicAccessBlockConfiguration"
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_policy_status(Bucket=bucket)
    assert code_of(ei) == "NoSuchBucketPolicy"

    s3.put_object(Bucket=bucket, Key="pub.txt", Body=b"hello")
    url = "%s/%s/pub.txt" % (tarn.endpoint, bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    assert requests.get(url, timeout=60).content == b"hello"

    cfg = {"BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
           "RestrictPublicBuckets": True}
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=cfg)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == cfg
    # RestrictPublicBuckets: the public policy no longer grants anonymous reads
    assert requests.get(url, timeout=60).status_code == 403
    # BlockPublicPolicy: a public policy is refused, and the old one stays
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError) as ei:
        s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))
    assert code_of(ei) == "AccessDenied"
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_policy(Bucket=bucket)
    assert code_of(ei) == "NoSuchBucketPolicy"

    s3.delete_public_access_block(Bucket=bucket)
    with pytest.raises(ClientError) as ei:
        s3.get_public_access_block(Bucket=bucket)
    assert code_of(ei) == "NoSuchPublicAccessBlockConfiguration"
    s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))
    assert requests.get(url, timeout=60).content == b"hello"
