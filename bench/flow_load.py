"""bench/flow_load.py -- the client of bench/flow_bench.sh: creates an
EXPRESS and a STANDARD machine that loop LOOPS times through a Choice and a
Pass state, runs them from 1 and 8 threads at once, and prints transitions
per second (the median of ROUNDS runs).

Environment: ENDPOINT, AK, SK, LOOPS, ROUNDS.
"""
import concurrent.futures
import json
import os
import statistics
import time
import uuid

import boto3
from botocore.config import Config

LOOPS = int(os.environ.get("LOOPS", "2000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))


def client():
    return boto3.session.Session().client(
        "stepfunctions", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
        aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
        config=Config(inject_host_prefix=False, read_timeout=600, max_pool_connections=16,
                      retries={"total_max_attempts": 1}))


DEFINITION = {"StartAt": "Check", "States": {
    "Check": {"Type": "Choice", "Choices": [
        {"Variable": "$.i", "NumericGreaterThanEquals": LOOPS, "Next": "Done"}],
        "Default": "Step"},
    "Step": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "Check"},
    "Done": {"Type": "Succeed"}}}
TRANSITIONS = 2 * LOOPS + 2


def run_one(sfn, arn, express):
    if express:
        r = sfn.start_sync_execution(stateMachineArn=arn, input='{"i": 0}')
        assert r["status"] == "SUCCEEDED", r
        return
    ex = sfn.start_execution(stateMachineArn=arn, input='{"i": 0}')["executionArn"]
    while True:
        d = sfn.describe_execution(executionArn=ex)
        if d["status"] != "RUNNING":
            assert d["status"] == "SUCCEEDED", d
            return
        time.sleep(0.01)


def rate(arn, express, threads):
    clients = [client() for _ in range(threads)]
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda c: run_one(c, arn, express), clients))
    return threads * TRANSITIONS / (time.monotonic() - start)


def main():
    sfn = client()
    arns = {}
    for kind in ("EXPRESS", "STANDARD"):
        arns[kind] = sfn.create_state_machine(
            name="bench-%s-%s" % (kind.lower(), uuid.uuid4().hex[:6]),
            definition=json.dumps(DEFINITION), roleArn="arn:aws:iam::000000000000:role/bench",
            type=kind)["stateMachineArn"]
    print("%-10s %-4s %14s %10s" % ("machine", "conc", "transitions/s", "vs EXPRESS"))
    for threads in (1, 8):
        got = {}
        for kind in ("EXPRESS", "STANDARD"):
            got[kind] = statistics.median(rate(arns[kind], kind == "EXPRESS", threads)
                                          for _ in range(ROUNDS))
            print("%-10s c%-3d %14.0f %9.2fx" % (kind, threads, got[kind],
                                                 got[kind] / got["EXPRESS"]))
    print("a transition = one state entered; %d per execution (LOOPS=%d)"
          % (TRANSITIONS, LOOPS))


if __name__ == "__main__":
    main()
