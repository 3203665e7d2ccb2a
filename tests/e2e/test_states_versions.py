"""tests/e2e/test_states_versions.py -- state machine versions and aliases
through signed JSON 1.0 calls (RawSfn: Debian 12's boto3 and AWS CLI predate
versions): publishing (PublishStateMachineVersion,
CreateStateMachine and UpdateStateMachine with publish), listing, deleting,
aliases with one or two weighted versions, executions started from a
version or an alias ARN (DescribeExecution names them), the errors AWS
gives, and versions that survive kill -9.
"""
import json
import pytest
from botocore.exceptions import ClientError

from states_util import ROLE, RawSfn, unique, wait_done


@pytest.fixture(scope="module")
def sfn(tarn):
    return RawSfn(tarn)


def result(value):
    return {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": value, "End": True}}}


def code(exc):
    return exc.value.response["Error"]["Code"]


def run_output(sfn, arn):
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    d = wait_done(sfn, ex)
    assert d["status"] == "SUCCEEDED", d
    return json.loads(d["output"]), d


def test_publish_list_describe_delete(sfn):
    name = unique("ver")
    r = sfn.create_state_machine(name=name, definition=json.dumps(result(1)), roleArn=ROLE,
                                 publish=True, versionDescription="first")
    arn = r["stateMachineArn"]
    v1 = r["stateMachineVersionArn"]
    assert v1 == arn + ":1"
    # nothing changed: the same version again (AWS: idempotent)
    again = sfn.publish_state_machine_version(stateMachineArn=arn)
    assert again["stateMachineVersionArn"] == v1
    rev = sfn.describe_state_machine(stateMachineArn=arn)["revisionId"]
    u = sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(result(2)),
                                 publish=True, versionDescription="second")
    v2 = u["stateMachineVersionArn"]
    assert v2 == arn + ":2" and u["revisionId"] != rev
    # a stale revision id is a conflict
    with pytest.raises(ClientError) as exc:
        sfn.publish_state_machine_version(stateMachineArn=arn, revisionId=rev)
    assert code(exc) == "ConflictException"
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(result(3)))
    cur = sfn.describe_state_machine(stateMachineArn=arn)["revisionId"]
    v3 = sfn.publish_state_machine_version(stateMachineArn=arn, revisionId=cur,
                                           description="third")["stateMachineVersionArn"]
    assert v3 == arn + ":3"
    listed = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in listed] == [v3, v2, v1]
    page = sfn.list_state_machine_versions(stateMachineArn=arn, maxResults=2)
    assert len(page["stateMachineVersions"]) == 2 and "nextToken" in page
    rest = sfn.list_state_machine_versions(stateMachineArn=arn, nextToken=page["nextToken"])
    assert [v["stateMachineVersionArn"] for v in rest["stateMachineVersions"]] == [v1]
    # a version keeps its definition
    d = sfn.describe_state_machine(stateMachineArn=v1)
    assert d["stateMachineArn"] == v1 and json.loads(d["definition"]) == result(1)
    assert d["description"] == "first" and d["name"] == name
    assert run_output(sfn, v1)[0] == 1
    out, desc = run_output(sfn, v2)
    assert out == 2 and desc["stateMachineVersionArn"] == v2
    assert desc["stateMachineArn"] == arn and "stateMachineAliasArn" not in desc
    assert run_output(sfn, arn)[0] == 3
    sfn.delete_state_machine_version(stateMachineVersionArn=v2)
    sfn.delete_state_machine_version(stateMachineVersionArn=v2)  # gone: still fine
    with pytest.raises(ClientError) as exc:
        sfn.describe_state_machine(stateMachineArn=v2)
    assert code(exc) == "StateMachineDoesNotExist"
    with pytest.raises(ClientError) as exc:
        sfn.start_execution(stateMachineArn=v2)
    assert code(exc) == "ResourceNotFound"
    # numbers are not reused
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(result(4)),
                             publish=True)
    listed = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert listed[0]["stateMachineVersionArn"] == arn + ":4"
    # deleting the machine deletes its versions
    sfn.delete_state_machine(stateMachineArn=arn)
    with pytest.raises(ClientError) as exc:
        sfn.describe_state_machine(stateMachineArn=v1)
    assert code(exc) == "StateMachineDoesNotExist"


def test_aliases_route_by_weight(sfn):
    name = unique("alias")
    arn = sfn.create_state_machine(name=name, definition=json.dumps(result("one")),
                                   roleArn=ROLE, publish=True)["stateMachineArn"]
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(result("two")),
                             publish=True)
    v1, v2 = arn + ":1", arn + ":2"
    routing = [{"stateMachineVersionArn": v1, "weight": 100}]
    a = sfn.create_state_machine_alias(name="prod", description="live",
                                       routingConfiguration=routing)
    alias = a["stateMachineAliasArn"]
    assert alias == arn + ":prod"
    # the same again is idempotent; a different one conflicts
    assert sfn.create_state_machine_alias(
        name="prod", description="live", routingConfiguration=routing)[
            "stateMachineAliasArn"] == alias
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine_alias(name="prod", routingConfiguration=[
            {"stateMachineVersionArn": v2, "weight": 100}])
    assert code(exc) == "ConflictException"
    d = sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    assert d["name"] == "prod" and d["description"] == "live"
    assert d["routingConfiguration"] == routing
    out, desc = run_output(sfn, alias)
    assert out == "one"
    assert desc["stateMachineAliasArn"] == alias and desc["stateMachineVersionArn"] == v1
    started = sfn.get_execution_history(executionArn=desc["executionArn"])["events"][0]
    assert started["executionStartedEventDetails"]["stateMachineAliasArn"] == alias
    assert started["executionStartedEventDetails"]["stateMachineVersionArn"] == v1
    # the definition it ran is the version's
    ran = sfn.describe_state_machine_for_execution(executionArn=desc["executionArn"])
    assert json.loads(ran["definition"]) == result("one")
    # a version an alias routes to cannot be deleted
    with pytest.raises(ClientError) as exc:
        sfn.delete_state_machine_version(stateMachineVersionArn=v1)
    assert code(exc) == "ConflictException"
    # two versions by weight: both are picked over enough starts
    sfn.update_state_machine_alias(stateMachineAliasArn=alias, routingConfiguration=[
        {"stateMachineVersionArn": v1, "weight": 50},
        {"stateMachineVersionArn": v2, "weight": 50}])
    seen = set()
    execs = [sfn.start_execution(stateMachineArn=alias)["executionArn"] for _ in range(40)]
    for ex in execs:
        seen.add(sfn.describe_execution(executionArn=ex)["stateMachineVersionArn"])
    assert seen == {v1, v2}
    assert "updateDate" in sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    # ListExecutions of an alias: the executions it started, with their versions
    listed = sfn.list_executions(stateMachineArn=alias)["executions"]
    assert {x["executionArn"] for x in listed} == set(execs) | {desc["executionArn"]}
    assert all(x["stateMachineAliasArn"] == alias for x in listed)
    by_v1 = sfn.list_executions(stateMachineArn=v1)["executions"]
    assert by_v1 and all(x["stateMachineVersionArn"] == v1 for x in by_v1)
    listed = sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"]
    assert [x["stateMachineAliasArn"] for x in listed] == [alias]
    sfn.update_state_machine_alias(stateMachineAliasArn=alias, routingConfiguration=[
        {"stateMachineVersionArn": v2, "weight": 100}])
    sfn.delete_state_machine_version(stateMachineVersionArn=v1)
    # StartSyncExecution takes an alias too (an EXPRESS machine)
    ename = unique("expr")
    earn = sfn.create_state_machine(name=ename, definition=json.dumps(result("fast")),
                                    roleArn=ROLE, type="EXPRESS",
                                    publish=True)["stateMachineArn"]
    ealias = sfn.create_state_machine_alias(name="live", routingConfiguration=[
        {"stateMachineVersionArn": earn + ":1", "weight": 100}])["stateMachineAliasArn"]
    sync = sfn.start_sync_execution(stateMachineArn=ealias)
    assert sync["status"] == "SUCCEEDED" and json.loads(sync["output"]) == "fast"
    sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
    sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
    with pytest.raises(ClientError) as exc:
        sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    assert code(exc) == "ResourceNotFound"


def test_alias_and_version_errors(sfn):
    arn = sfn.create_state_machine(name=unique("bad"), definition=json.dumps(result(0)),
                                   roleArn=ROLE, publish=True)["stateMachineArn"]
    v1 = arn + ":1"
    bad = [
        [{"stateMachineVersionArn": v1, "weight": 60}],                # weights must add to 100
        [{"stateMachineVersionArn": v1, "weight": 50},
         {"stateMachineVersionArn": v1, "weight": 50}],               # distinct versions
        [{"stateMachineVersionArn": arn, "weight": 100}],              # not a version ARN
        [],                                                            # at least one
    ]
    for routing in bad:
        with pytest.raises(ClientError) as exc:
            sfn.create_state_machine_alias(name="x", routingConfiguration=routing)
        assert code(exc) == "ValidationException", routing
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine_alias(name="x", routingConfiguration=[
            {"stateMachineVersionArn": arn + ":9", "weight": 100}])
    assert code(exc) == "ResourceNotFound"
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine_alias(name="123", routingConfiguration=[
            {"stateMachineVersionArn": v1, "weight": 100}])
    assert code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        sfn.update_state_machine(stateMachineArn=v1, definition=json.dumps(result(5)))
    assert code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        sfn.start_execution(stateMachineArn=arn + ":nope")
    assert code(exc) == "ResourceNotFound"
    with pytest.raises(ClientError) as exc:
        sfn.publish_state_machine_version(stateMachineArn=arn + "-missing")
    assert code(exc) == "StateMachineDoesNotExist"
    # ARNs longer than AWS allows are InvalidArn, whatever they name
    long = arn + ":" + "x" * 300
    for call, key in [(sfn.describe_state_machine_alias, "stateMachineAliasArn"),
                      (sfn.delete_state_machine_version, "stateMachineVersionArn"),
                      (sfn.describe_state_machine, "stateMachineArn"),
                      (sfn.list_state_machine_versions, "stateMachineArn"),
                      (sfn.start_execution, "stateMachineArn"),
                      (sfn.describe_activity, "activityArn"),
                      (sfn.describe_execution, "executionArn")]:
        with pytest.raises(ClientError) as exc:
            call(**{key: long})
        assert code(exc) == "InvalidArn", call
    # nothing of the failures was kept
    assert sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"] == []


def test_versions_survive_kill9(tarn_factory):
    srv = tarn_factory()
    sfn = RawSfn(srv)
    name = unique("crash")
    arn = sfn.create_state_machine(name=name, definition=json.dumps(result("v1")),
                                   roleArn=ROLE)["stateMachineArn"]
    v1 = sfn.publish_state_machine_version(stateMachineArn=arn, description="kept")[
        "stateMachineVersionArn"]
    assert v1 == arn + ":1"
    alias = sfn.create_state_machine_alias(name="stable", routingConfiguration=[
        {"stateMachineVersionArn": v1, "weight": 100}])["stateMachineAliasArn"]
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(result("v2")))
    srv.kill9()
    srv.start()
    assert sfn.describe_state_machine(stateMachineArn=v1)["description"] == "kept"
    assert run_output(sfn, alias)[0] == "v1"
    assert run_output(sfn, arn)[0] == "v2"
    v2 = sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"]
    assert v2 == arn + ":2"
