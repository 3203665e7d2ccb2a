# tests/e2e/functions/python/app.py -- handlers the Lambda end-to-end tests
# call (one module, a handler per behaviour; the test picks it with Handler).
import json
import os
import time

# Module-level code runs once per instance (init): the counter shows reuse.
INIT_COUNT = 0
INIT_COUNT += 1
INVOCATIONS = 0


def echo(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    print("echo called with", json.dumps(event))
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "log_group": context.log_group_name,
        "init_count": INIT_COUNT,
        "invocations": INVOCATIONS,
        "pid": os.getpid(),
    }


def env(event, context):
    keys = event.get("keys") if isinstance(event, dict) else None
    if keys:
        return {k: os.environ.get(k) for k in keys}
    return dict(os.environ)


def fail(event, context):
    raise ValueError("something went wrong: %s" % event.get("why", "no reason"))


def handled(event, context):
    return {"statusCode": 500, "errorMessage": "handled in the function"}


def sleep(event, context):
    time.sleep(float(event.get("seconds", 10)))
    return {"slept": event.get("seconds")}


def wait_release(event, context):
    # Waits until the object behind a presigned GET exists (the test's
    # release signal), polling with the standard library only: sandboxes
    # start fast and a test can hold many of them waiting at once.
    import urllib.error
    import urllib.request
    url = os.environ["AWS_ENDPOINT_URL"] + event["path"]
    req = urllib.request.Request(url, headers={"Host": event["host"]})
    deadline = time.monotonic() + float(event.get("timeout", 50))
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return {"released": r.read().decode()}
        except urllib.error.HTTPError:
            time.sleep(0.5)
    return {"released": None}


def oom(event, context):
    chunks = []
    while True:
        chunks.append(bytearray(16 << 20))
        for i in range(0, len(chunks[-1]), 4096):
            chunks[-1][i] = 1


def crash(event, context):
    os._exit(3)


def s3(event, context):
    # boto3 from the host's /usr, reaching tarn through AWS_ENDPOINT_URL.
    import boto3
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    bucket = event["bucket"]
    body = client.get_object(Bucket=bucket, Key=event["src"])["Body"].read()
    client.put_object(Bucket=bucket, Key=event["dst"], Body=body.upper())
    return {"copied": len(body)}


def s3_put(event, context):
    import boto3
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    client.put_object(Bucket=event["bucket"], Key=event["key"],
                      Body=json.dumps(event).encode())
    return {"ok": True}


def s3_flaky(event, context):
    # Fails on its first attempts, then writes: shows Event retries.
    import boto3
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    marker = event["key"] + ".attempts"
    try:
        n = int(client.get_object(Bucket=event["bucket"], Key=marker)["Body"].read())
    except Exception:
        n = 0
    client.put_object(Bucket=event["bucket"], Key=marker, Body=str(n + 1).encode())
    if n + 1 < event.get("succeed_on", 2):
        raise RuntimeError("attempt %d fails" % (n + 1))
    client.put_object(Bucket=event["bucket"], Key=event["key"], Body=b"done")
    return {"attempts": n + 1}


def big_response(event, context):
    return "x" * (7 * 1024 * 1024)


def file_sha256(event, context):
    # A file of the code (/var/task), for the large-zip test.
    import hashlib
    path = os.path.join(os.environ["LAMBDA_TASK_ROOT"], event["path"])
    with open(path, "rb") as f:
        data = f.read()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
