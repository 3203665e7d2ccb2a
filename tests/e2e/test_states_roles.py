"""tests/e2e/test_states_roles.py -- a state machine's executions act as its
role, as on AWS: a role tarn knows is enforced on every call a Task makes
(functions, optimized and SDK integrations), a refused call fails the Task
with SERVICE.AccessDeniedException and IAM's message and changes nothing; a
role tarn does not know gets the default data-plane access, or nothing
under strict IAM; and giving a role to a state machine or a function needs
iam:PassRole on it.
"""
import json

import pytest
from botocore.exceptions import ClientError

from queue_util import unique
from states_util import sfn_client, wait_done
from test_iam import client, code, policy


def make_role(iam, name, *statements):
    trust = policy({"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"},
                    "Action": "sts:AssumeRole"})
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy(*statements))
    return arn


def run_task(sfn, role, resource, params, name=None):
    d = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": resource,
                                          "Parameters": params, "End": True}}}
    arn = sfn.create_state_machine(name=name or unique("role"), definition=json.dumps(d),
                                   roleArn=role)["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    return wait_done(sfn, ex)


@pytest.fixture(scope="module")
def sfn(tarn):
    return sfn_client(tarn)


@pytest.fixture(scope="module")
def iam(tarn):
    return client(tarn, "iam")


def test_known_role_is_enforced(tarn, sfn, iam):
    sqs = client(tarn, "sqs")
    ok_q = sqs.create_queue(QueueName=unique("ok"))["QueueUrl"]
    other_q = sqs.create_queue(QueueName=unique("other"))["QueueUrl"]
    ok_arn = sqs.get_queue_attributes(QueueUrl=ok_q, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    role = make_role(iam, unique("sfn-sqs"),
                     {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": ok_arn})
    # allowed: the queue its policy names
    d = run_task(sfn, role, "arn:aws:states:::sqs:sendMessage",
                 {"QueueUrl": ok_q, "MessageBody": "hello"})
    assert d["status"] == "SUCCEEDED", d
    # refused: another queue, and nothing is sent
    d = run_task(sfn, role, "arn:aws:states:::sqs:sendMessage",
                 {"QueueUrl": other_q, "MessageBody": "nope"})
    assert d["status"] == "FAILED"
    assert d["error"] == "SQS.AccessDeniedException", d
    assert "is not authorized to perform: sqs:SendMessage" in d["cause"]
    assert "assumed-role/%s/" % role.split("/")[-1] in d["cause"]
    got = sqs.receive_message(QueueUrl=other_q, WaitTimeSeconds=0).get("Messages", [])
    assert got == []
    # the SDK form of a call the role does not allow: DynamoDB deleteItem
    ddb = client(tarn, "dynamodb")
    t = unique("t")
    ddb.create_table(TableName=t, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    ddb.put_item(TableName=t, Item={"pk": {"S": "keep"}})
    d = run_task(sfn, role, "arn:aws:states:::aws-sdk:dynamodb:deleteItem",
                 {"TableName": t, "Key": {"pk": {"S": "keep"}}})
    assert d["status"] == "FAILED"
    assert d["error"] == "DynamoDb.AccessDeniedException", d
    assert "dynamodb:DeleteItem" in d["cause"] and ":table/%s" % t in d["cause"]
    assert "Item" in ddb.get_item(TableName=t, Key={"pk": {"S": "keep"}})
    # an explicit Deny wins over an Allow
    deny = make_role(iam, unique("sfn-deny"),
                     {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                     {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": ok_arn})
    d = run_task(sfn, deny, "arn:aws:states:::sqs:sendMessage",
                 {"QueueUrl": ok_q, "MessageBody": "denied"})
    assert d["error"] == "SQS.AccessDeniedException"
    assert "explicit deny" in d["cause"]


def test_function_task_needs_invoke_permission(tarn, sfn, iam):
    role = make_role(iam, unique("sfn-none"),
                     {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})
    d = run_task(sfn, role, "arn:aws:states:::lambda:invoke",
                 {"FunctionName": "no-such-function-needed", "Payload": {}})
    assert d["status"] == "FAILED"
    assert d["error"] == "Lambda.AccessDeniedException", d
    assert "lambda:InvokeFunction" in d["cause"]
    assert ":function:no-such-function-needed" in d["cause"]


def test_unknown_role_default_and_strict(tarn_factory):
    made_up = "arn:aws:iam::000000000000:role/not-in-tarn"
    for strict in (False, True):
        srv = tarn_factory(env={"TARN_STRICT_IAM": "1"} if strict else {})
        sfn = sfn_client(srv)
        sqs = client(srv, "sqs")
        q = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
        d = run_task(sfn, made_up, "arn:aws:states:::sqs:sendMessage",
                     {"QueueUrl": q, "MessageBody": "m"})
        if strict:
            assert d["error"] == "SQS.AccessDeniedException", d
        else:
            assert d["status"] == "SUCCEEDED", d
        # never a control-plane call by default: deleting the queue
        d = run_task(sfn, made_up, "arn:aws:states:::aws-sdk:sqs:deleteQueue", {"QueueUrl": q})
        assert d["status"] == "FAILED"
        assert sqs.get_queue_url(QueueName=q.rsplit("/", 1)[1])["QueueUrl"] == q


def test_passing_a_role_needs_pass_role(tarn, iam):
    role = make_role(iam, unique("passed"))
    user = unique("dev")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=policy(
        {"Effect": "Allow", "Action": ["states:*", "lambda:*"], "Resource": "*"}))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    sfn = client(tarn, "stepfunctions", k["AccessKeyId"], k["SecretAccessKey"])
    d = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    name = unique("pass")
    with pytest.raises(ClientError) as ei:
        sfn.create_state_machine(name=name, definition=d, roleArn=role)
    assert code(ei) == "AccessDeniedException"
    assert "iam:PassRole" in str(ei.value)
    assert all(m["name"] != name for m in client(tarn, "stepfunctions")
               .list_state_machines()["stateMachines"])
    iam.put_user_policy(UserName=user, PolicyName="pass", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": role}))
    arn = sfn.create_state_machine(name=name, definition=d, roleArn=role)["stateMachineArn"]
    # another role in an update is refused again
    other = make_role(iam, unique("other"))
    with pytest.raises(ClientError) as ei:
        sfn.update_state_machine(stateMachineArn=arn, roleArn=other)
    assert code(ei) == "AccessDeniedException"
    # a function's role too
    lam = client(tarn, "lambda", k["AccessKeyId"], k["SecretAccessKey"])
    import lambda_util as lu
    zipped = lu.zip_files({"app.py": ("def handler(e, c):\n    return 1\n", 0o100644)})
    with pytest.raises(ClientError) as ei:
        lam.create_function(FunctionName=unique("f"), Runtime="python3.11", Role=other,
                            Handler="app.handler", Code={"ZipFile": zipped})
    assert code(ei) == "AccessDeniedException"
    assert "iam:PassRole" in str(ei.value)
