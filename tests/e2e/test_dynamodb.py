"""tests/e2e/test_dynamodb.py -- DynamoDB through boto3 (client and resource
API with boto3.dynamodb.conditions) and Debian's awscli: tables, every
attribute type, exact numbers, condition and update expressions, ReturnValues,
Query and Scan with paging, secondary indexes, batches and transactions, and
AWS's error types for bad input (which changes nothing).
"""
import decimal
import json

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.config import Config
from botocore.exceptions import ClientError

from queue_util import client, unique
from tarnlib import REGION


@pytest.fixture(scope="module")
def ddb(tarn):
    return client(tarn, "dynamodb")


@pytest.fixture(scope="module")
def resource(tarn):
    return boto3.session.Session().resource(
        "dynamodb", endpoint_url=tarn.endpoint, region_name=REGION,
        aws_access_key_id=tarn.access_key, aws_secret_access_key=tarn.secret_key,
        config=Config(retries={"total_max_attempts": 1}))


def error(exc_info):
    e = exc_info.value.response["Error"]
    return e["Code"], e["Message"]


def make_table(ddb, hash_type="S", range_type=None, **kw):
    name = unique("t")
    attrs = [{"AttributeName": "pk", "AttributeType": hash_type}]
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    if range_type:
        attrs.append({"AttributeName": "sk", "AttributeType": range_type})
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
    attrs += kw.pop("extra_attrs", [])
    ddb.create_table(TableName=name, AttributeDefinitions=attrs, KeySchema=schema,
                     BillingMode="PAY_PER_REQUEST", **kw)
    return name


def test_table_lifecycle(ddb):
    name = make_table(ddb, "S", "N")
    d = ddb.describe_table(TableName=name)["Table"]
    assert d["TableStatus"] == "ACTIVE"
    assert d["TableArn"].endswith(":table/" + name)
    assert d["KeySchema"][1] == {"AttributeName": "sk", "KeyType": "RANGE"}
    assert d["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert name in ddb.list_tables()["TableNames"]
    with pytest.raises(ClientError) as ei:
        make_table_named(ddb, name)
    assert error(ei) == ("ResourceInUseException", "Table already exists: " + name)
    ddb.delete_table(TableName=name)
    with pytest.raises(ClientError) as ei:
        ddb.describe_table(TableName=name)
    assert error(ei)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "sk": {"N": "1"}})
    assert error(ei)[0] == "ResourceNotFoundException"


def make_table_named(ddb, name):
    ddb.create_table(TableName=name,
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     BillingMode="PAY_PER_REQUEST")


def test_account_answers(ddb):
    assert ddb.describe_limits()["TableMaxReadCapacityUnits"] == 40000
    assert ddb.describe_endpoints()["Endpoints"][0]["CachePeriodInMinutes"] == 1440
    name = make_table(ddb)
    r = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert r["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "a"}, {"Key": "env", "Value": "dev"}])
    ddb.untag_resource(ResourceArn=arn, TagKeys=["env"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
    with pytest.raises(ClientError) as ei:
        ddb.describe_continuous_backups(TableName="missing-table")
    assert error(ei)[0] == "ResourceNotFoundException"


def test_list_tables_pages(ddb):
    names = sorted(make_table(ddb) for _ in range(3))
    seen = []
    kw = {"Limit": 2}
    while True:
        r = ddb.list_tables(**kw)
        assert len(r["TableNames"]) <= 2
        seen += r["TableNames"]
        if "LastEvaluatedTableName" not in r:
            break
        kw["ExclusiveStartTableName"] = r["LastEvaluatedTableName"]
    assert set(names) <= set(seen)
    assert seen == sorted(seen)


def test_create_table_validation(ddb):
    with pytest.raises(ClientError) as ei:
        ddb.create_table(TableName=unique("bad"),
                         AttributeDefinitions=[{"AttributeName": "x", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         BillingMode="PAY_PER_REQUEST")
    code, msg = error(ei)
    assert code == "ValidationException"
    assert "Some index key attributes are not defined in AttributeDefinitions" in msg
    with pytest.raises(ClientError) as ei:
        ddb.create_table(TableName=unique("bad"),
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         BillingMode="PROVISIONED")
    assert "ReadCapacityUnits and WriteCapacityUnits must both be specified" in error(ei)[1]
    name = unique("prov")
    ddb.create_table(TableName=name,
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7})
    pt = ddb.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]
    assert (pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]) == (5, 7)


ALL_TYPES = {
    "pk": {"S": "types"},
    "s": {"S": "héllo"},
    "n": {"N": "12345678901234567890123456789012345678"},
    "b": {"B": b"\x00\x01\xff"},
    "t": {"BOOL": True},
    "z": {"NULL": True},
    "l": {"L": [{"S": "x"}, {"N": "1"}, {"L": []}]},
    "m": {"M": {"inner": {"M": {"deep": {"S": "yes"}}}}},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
}


def test_every_type_round_trips(ddb):
    name = make_table(ddb)
    ddb.put_item(TableName=name, Item=ALL_TYPES)
    got = ddb.get_item(TableName=name, Key={"pk": {"S": "types"}})["Item"]
    assert got["n"] == {"N": "12345678901234567890123456789012345678"}
    assert got["b"] == {"B": b"\x00\x01\xff"}
    assert sorted(got["ss"]["SS"]) == ["a", "b"]
    assert sorted(got["bs"]["BS"]) == [b"\x01", b"\x02"]
    assert got["m"] == ALL_TYPES["m"]
    assert got["l"] == ALL_TYPES["l"]
    assert got["z"] == {"NULL": True}
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "none"}})


def test_numbers_are_exact_decimals(ddb):
    name = make_table(ddb)
    ddb.put_item(TableName=name, Item={"pk": {"S": "n"}, "v": {"N": "0.1"},
                                       "w": {"N": "1.500"}, "big": {"N": "1E+100"}})
    r = ddb.update_item(TableName=name, Key={"pk": {"S": "n"}},
                        UpdateExpression="SET v = v + :x", ExpressionAttributeValues={
                            ":x": {"N": "0.2"}}, ReturnValues="ALL_NEW")["Attributes"]
    assert r["v"] == {"N": "0.3"}          # not 0.30000000000000004
    assert r["w"] == {"N": "1.5"}
    r = ddb.update_item(TableName=name, Key={"pk": {"S": "n"}},
                        UpdateExpression="ADD c :big",
                        ExpressionAttributeValues={":big": {"N": "99999999999999999999999999999999999999"}},
                        ReturnValues="UPDATED_NEW")["Attributes"]
    assert r == {"c": {"N": "99999999999999999999999999999999999999"}}
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "x"}, "v": {"N": "1.23456789012345678901234567890123456789"}})
    assert error(ei) == ("ValidationException",
                         "Attempting to store more than 38 significant digits in a Number")
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "x"}, "v": {"N": "abc"}})
    assert error(ei)[0] == "ValidationException"
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "x"}, "v": {"N": "1E+126"}})
    assert "Number overflow" in error(ei)[1]
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "x"}})


def test_condition_expressions(ddb):
    name = make_table(ddb)
    item = {"pk": {"S": "c"}, "n": {"N": "5"}, "s": {"S": "hello world"},
            "tags": {"SS": ["red", "blue"]}, "l": {"L": [{"S": "a"}]}, "m": {"M": {"k": {"N": "1"}}}}
    ddb.put_item(TableName=name, Item=item)
    ok = [
        ("attribute_exists(n)", {}),
        ("attribute_not_exists(nope)", {}),
        ("attribute_type(n, :t)", {":t": {"S": "N"}}),
        ("begins_with(s, :p)", {":p": {"S": "hello"}}),
        ("contains(s, :p)", {":p": {"S": "o w"}}),
        ("contains(tags, :p)", {":p": {"S": "red"}}),
        ("contains(l, :p)", {":p": {"S": "a"}}),
        ("size(s) = :p", {":p": {"N": "11"}}),
        ("size(tags) < :p", {":p": {"N": "3"}}),
        ("n BETWEEN :a AND :b", {":a": {"N": "1"}, ":b": {"N": "5"}}),
        ("n IN (:a, :b)", {":a": {"N": "4"}, ":b": {"N": "5"}}),
        ("n <> :a AND (n >= :b OR n < :a)", {":a": {"N": "4"}, ":b": {"N": "5"}}),
        ("NOT n > :a", {":a": {"N": "5"}}),
        ("m.k = :a", {":a": {"N": "1"}}),
        ("#l[0] = :a", {":a": {"S": "a"}}),
    ]
    for expr, values in ok:
        kw = {"ExpressionAttributeValues": values} if values else {}
        if "#l" in expr:
            kw["ExpressionAttributeNames"] = {"#l": "l"}
        ddb.put_item(TableName=name, Item=item, ConditionExpression=expr, **kw)
    failing = [("attribute_not_exists(n)", {}), ("n > :a", {":a": {"N": "5"}}),
               ("begins_with(s, :p)", {":p": {"S": "world"}}), ("n = :a", {":a": {"S": "5"}})]
    for expr, values in failing:
        kw = {"ExpressionAttributeValues": values} if values else {}
        with pytest.raises(ClientError) as ei:
            ddb.put_item(TableName=name, Item={"pk": {"S": "c"}, "changed": {"BOOL": True}},
                         ConditionExpression=expr, **kw)
        assert error(ei) == ("ConditionalCheckFailedException", "The conditional request failed")
    assert "changed" not in ddb.get_item(TableName=name, Key={"pk": {"S": "c"}})["Item"]


def raw(tarn, op, body):
    """A signed DynamoDB call with a body the installed botocore may not
    model; returns (status, parsed JSON)."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import requests
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=tarn.endpoint + "/", data=json.dumps(body),
        headers={"X-Amz-Target": "DynamoDB_20120810." + op,
                 "Content-Type": "application/x-amz-json-1.0"})
    creds = botocore.credentials.Credentials(tarn.access_key, tarn.secret_key)
    botocore.auth.SigV4Auth(creds, "dynamodb", REGION).add_auth(req)
    p = req.prepare()
    r = requests.post(p.url, data=p.body, headers=dict(p.headers), timeout=30)
    return r.status_code, r.json()


def test_condition_failure_returns_item_when_asked(tarn, ddb):
    name = make_table(ddb)
    ddb.put_item(TableName=name, Item={"pk": {"S": "k"}, "v": {"N": "1"}})
    status, body = raw(tarn, "PutItem", {
        "TableName": name, "Item": {"pk": {"S": "k"}}, "ConditionExpression": "attribute_not_exists(pk)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})
    assert status == 400
    assert body["__type"].endswith("#ConditionalCheckFailedException")
    assert body["Item"] == {"pk": {"S": "k"}, "v": {"N": "1"}}
    status, body = raw(tarn, "PutItem", {"TableName": name, "Item": {"pk": {"S": "k"}},
                                         "ConditionExpression": "attribute_not_exists(pk)"})
    assert status == 400 and "Item" not in body


def test_update_expressions(ddb):
    name = make_table(ddb)
    key = {"pk": {"S": "u"}}
    ddb.put_item(TableName=name, Item={"pk": {"S": "u"}, "n": {"N": "10"}, "l": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}]},
                                       "s": {"SS": ["a", "b", "c"]}, "m": {"M": {"x": {"S": "1"}}}, "gone": {"S": "x"}})
    r = ddb.update_item(
        TableName=name, Key=key,
        UpdateExpression="SET n = n - :one, l = list_append(l, :more), m.y = :y, "
                         "fresh = if_not_exists(fresh, :zero), #c = :c REMOVE gone "
                         "ADD cnt :one, s2 :d2 DELETE s :d1",
        ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={":one": {"N": "1"}, ":more": {"L": [{"N": "4"}]}, ":y": {"S": "2"},
                                   ":zero": {"N": "0"}, ":c": {"N": "7"}, ":d1": {"SS": ["a"]},
                                   ":d2": {"SS": ["z"]}},
        ReturnValues="ALL_NEW")
    got = r["Attributes"]
    assert got["n"] == {"N": "9"}
    assert got["l"] == {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}, {"N": "4"}]}
    assert sorted(got["s"]["SS"]) == ["b", "c"] and got["s2"] == {"SS": ["z"]}
    got2 = ddb.update_item(TableName=name, Key=key, UpdateExpression="REMOVE l[0], l[2]",
                           ReturnValues="UPDATED_NEW")["Attributes"]
    assert got2 == {"l": {"L": [{"N": "2"}, {"N": "4"}]}}
    assert got["m"] == {"M": {"x": {"S": "1"}, "y": {"S": "2"}}}
    assert got["fresh"] == {"N": "0"} and got["count"] == {"N": "7"} and got["cnt"] == {"N": "1"}
    assert "gone" not in got


def test_update_return_values_and_errors(ddb):
    name = make_table(ddb)
    key = {"pk": {"S": "r"}}
    r = ddb.update_item(TableName=name, Key=key, UpdateExpression="SET a = :a",
                        ExpressionAttributeValues={":a": {"S": "1"}}, ReturnValues="ALL_OLD")
    assert "Attributes" not in r  # the item was created
    r = ddb.update_item(TableName=name, Key=key, UpdateExpression="SET a = :a, b = :a",
                        ExpressionAttributeValues={":a": {"S": "2"}}, ReturnValues="UPDATED_OLD")
    assert r["Attributes"] == {"a": {"S": "1"}}
    cases = [
        ("SET pk = :a", {":a": {"S": "x"}}, "Cannot update attribute pk. This attribute is part of the key"),
        ("SET a = :a, a = :a", {":a": {"S": "x"}}, "Two document paths overlap"),
        ("SET a = :b", {":a": {"S": "x"}}, "An expression attribute value used in expression is not defined"),
        ("SET a = :a", {":a": {"S": "x"}, ":z": {"S": "y"}}, "Value provided in ExpressionAttributeValues unused"),
        ("SET a = a + :a", {":a": {"N": "1"}}, "An operand in the update expression has an incorrect data type"),
        ("SET nope.x = :a", {":a": {"N": "1"}}, "The document path provided in the update expression is invalid for update"),
        ("SET a = :a SET b = :a", {":a": {"N": "1"}}, 'The "SET" section can only be used once'),
        ("SET a :a", {":a": {"N": "1"}}, "Syntax error"),
    ]
    for expr, values, msg in cases:
        with pytest.raises(ClientError) as ei:
            ddb.update_item(TableName=name, Key=key, UpdateExpression=expr, ExpressionAttributeValues=values)
        code, text = error(ei)
        assert code == "ValidationException" and msg in text, (expr, text)
    assert ddb.get_item(TableName=name, Key=key)["Item"] == {"pk": {"S": "r"}, "a": {"S": "2"}, "b": {"S": "2"}}


def test_delete_item_and_key_validation(ddb):
    name = make_table(ddb, "S", "N")
    ddb.put_item(TableName=name, Item={"pk": {"S": "d"}, "sk": {"N": "1"}, "v": {"S": "x"}})
    r = ddb.delete_item(TableName=name, Key={"pk": {"S": "d"}, "sk": {"N": "1"}}, ReturnValues="ALL_OLD")
    assert r["Attributes"]["v"] == {"S": "x"}
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "d"}, "sk": {"N": "1"}})
    with pytest.raises(ClientError) as ei:
        ddb.get_item(TableName=name, Key={"pk": {"S": "d"}})
    assert error(ei) == ("ValidationException", "The provided key element does not match the schema")
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "d"}})
    assert error(ei) == ("ValidationException",
                         "One or more parameter values were invalid: Missing the key sk in the item")
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "d"}, "sk": {"S": "1"}})
    assert "Type mismatch for key sk expected: N actual: S" in error(ei)[1]
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "d"}, "sk": {"N": "1"}, "big": {"S": "x" * 410000}})
    assert error(ei) == ("ValidationException", "Item size has exceeded the maximum allowed size")
    assert ddb.scan(TableName=name)["Count"] == 0


def test_query_orders_numbers_by_value(ddb):
    name = make_table(ddb, "S", "N")
    values = ["-100", "-1.5", "-1", "0", "0.001", "1", "2", "10", "100", "1E+20"]
    for v in reversed(values):
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": v}, "odd": {"BOOL": v.endswith("1")}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "other"}, "sk": {"N": "5"}})
    r = ddb.query(TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    assert [i["sk"]["N"] for i in r["Items"]] == ["-100", "-1.5", "-1", "0", "0.001", "1", "2", "10", "100",
                                                   "100000000000000000000"]
    r = ddb.query(TableName=name, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                  ExpressionAttributeValues={":p": {"S": "p"}, ":a": {"N": "-1"}, ":b": {"N": "2"}},
                  ScanIndexForward=False)
    assert [i["sk"]["N"] for i in r["Items"]] == ["2", "1", "0.001", "0", "-1"]
    r = ddb.query(TableName=name, KeyConditionExpression="pk = :p AND sk > :a",
                  FilterExpression="odd = :t",
                  ExpressionAttributeValues={":p": {"S": "p"}, ":a": {"N": "0"}, ":t": {"BOOL": True}})
    assert [i["sk"]["N"] for i in r["Items"]] == ["0.001", "1"]
    assert r["ScannedCount"] == 6
    r = ddb.query(TableName=name, KeyConditionExpression="pk = :p", Select="COUNT",
                  ExpressionAttributeValues={":p": {"S": "p"}})
    assert r["Count"] == 10 and "Items" not in r


def test_query_strings_by_bytes_and_paging(ddb):
    name = make_table(ddb, "S", "S")
    keys = ["a", "a\u00e9", "ab", "b", "B", "a/b", "z" * 300, "z" * 299]
    for k in keys:
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"S": k}})
    expected = sorted(keys, key=lambda s: s.encode())
    got, kw, pages = [], {}, 0
    while True:
        r = ddb.query(TableName=name, KeyConditionExpression="pk = :p", Limit=3,
                      ExpressionAttributeValues={":p": {"S": "p"}}, **kw)
        got += [i["sk"]["S"] for i in r["Items"]]
        pages += 1
        if "LastEvaluatedKey" not in r:
            break
        kw = {"ExclusiveStartKey": r["LastEvaluatedKey"]}
    assert got == expected and pages >= 3
    r = ddb.query(TableName=name, KeyConditionExpression="pk = :p AND begins_with(sk, :b)",
                  ExpressionAttributeValues={":p": {"S": "p"}, ":b": {"S": "a"}},
                  ProjectionExpression="sk")
    assert [i for i in r["Items"]] == [{"sk": {"S": k}} for k in expected if k.startswith("a")]
    with pytest.raises(ClientError) as ei:
        ddb.query(TableName=name, KeyConditionExpression="pk = :p", ExclusiveStartKey={
            "pk": {"S": "other"}, "sk": {"S": "a"}}, ExpressionAttributeValues={":p": {"S": "p"}})
    assert error(ei) == ("ValidationException", "The provided starting key is outside query boundaries "
                                                "based on provided conditions")
    with pytest.raises(ClientError) as ei:
        ddb.query(TableName=name, KeyConditionExpression="sk = :p",
                  ExpressionAttributeValues={":p": {"S": "p"}})
    assert error(ei) == ("ValidationException", "Query condition missed key schema element: pk")


def test_scan_paging_and_segments(ddb):
    name = make_table(ddb, "N")
    for i in range(30):
        ddb.put_item(TableName=name, Item={"pk": {"N": str(i)}, "even": {"BOOL": i % 2 == 0}})
    got, kw = [], {}
    while True:
        r = ddb.scan(TableName=name, Limit=7, **kw)
        got += [int(i["pk"]["N"]) for i in r["Items"]]
        if "LastEvaluatedKey" not in r:
            break
        kw = {"ExclusiveStartKey": r["LastEvaluatedKey"]}
    assert sorted(got) == list(range(30))
    segs = []
    for s in range(3):
        segs.append({int(i["pk"]["N"]) for i in ddb.scan(TableName=name, Segment=s, TotalSegments=3)["Items"]})
    assert set().union(*segs) == set(range(30))
    assert sum(len(s) for s in segs) == 30
    r = ddb.scan(TableName=name, FilterExpression="even = :t", ExpressionAttributeValues={":t": {"BOOL": True}})
    assert r["Count"] == 15 and r["ScannedCount"] == 30
    with pytest.raises(ClientError) as ei:
        ddb.scan(TableName=name, Segment=3, TotalSegments=3)
    assert error(ei)[0] == "ValidationException"


def test_secondary_indexes(ddb):
    name = make_table(
        ddb, "S", "N",
        extra_attrs=[{"AttributeName": "g", "AttributeType": "S"}, {"AttributeName": "l", "AttributeType": "N"}],
        GlobalSecondaryIndexes=[{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        LocalSecondaryIndexes=[{"IndexName": "byl", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                                 {"AttributeName": "l", "KeyType": "RANGE"}],
                                "Projection": {"ProjectionType": "ALL"}}])
    for i in range(5):
        item = {"pk": {"S": "p"}, "sk": {"N": str(i)}, "l": {"N": str(10 - i)}, "data": {"S": "d%d" % i}}
        if i % 2 == 0:
            item["g"] = {"S": "even"}
        ddb.put_item(TableName=name, Item=item)
    r = ddb.query(TableName=name, IndexName="byg", KeyConditionExpression="g = :g",
                  ExpressionAttributeValues={":g": {"S": "even"}})
    assert sorted(int(i["sk"]["N"]) for i in r["Items"]) == [0, 2, 4]
    assert all("data" not in i for i in r["Items"])  # KEYS_ONLY
    # moving an item out of the sparse index, in the same write
    ddb.update_item(TableName=name, Key={"pk": {"S": "p"}, "sk": {"N": "2"}}, UpdateExpression="REMOVE g")
    r = ddb.query(TableName=name, IndexName="byg", KeyConditionExpression="g = :g",
                  ExpressionAttributeValues={":g": {"S": "even"}})
    assert sorted(int(i["sk"]["N"]) for i in r["Items"]) == [0, 4]
    r = ddb.query(TableName=name, IndexName="byl", KeyConditionExpression="pk = :p AND l < :x",
                  ExpressionAttributeValues={":p": {"S": "p"}, ":x": {"N": "9"}})
    assert [i["l"]["N"] for i in r["Items"]] == ["6", "7", "8"]
    d = ddb.describe_table(TableName=name)["Table"]
    assert d["GlobalSecondaryIndexes"][0]["ItemCount"] == 2
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": "9"}, "g": {"N": "1"}})
    assert "Type mismatch for Index Key g Expected: S Actual: N IndexName: byg" in error(ei)[1]
    # a new GSI is filled at once
    ddb.update_table(TableName=name, AttributeDefinitions=[{"AttributeName": "data", "AttributeType": "S"}],
                     GlobalSecondaryIndexUpdates=[{"Create": {
                         "IndexName": "bydata", "KeySchema": [{"AttributeName": "data", "KeyType": "HASH"}],
                         "Projection": {"ProjectionType": "ALL"}}}])
    r = ddb.query(TableName=name, IndexName="bydata", KeyConditionExpression="#d = :d",
                  ExpressionAttributeNames={"#d": "data"}, ExpressionAttributeValues={":d": {"S": "d3"}})
    assert [i["sk"]["N"] for i in r["Items"]] == ["3"]
    ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "bydata"}}])
    with pytest.raises(ClientError) as ei:
        ddb.query(TableName=name, IndexName="bydata", KeyConditionExpression="#d = :d",
                  ExpressionAttributeNames={"#d": "data"}, ExpressionAttributeValues={":d": {"S": "d3"}})
    assert error(ei)[0] == "ValidationException"


def test_batches(ddb):
    name = make_table(ddb)
    ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {"pk": {"S": str(i)}}}} for i in range(25)]})
    r = ddb.batch_get_item(RequestItems={name: {"Keys": [{"pk": {"S": str(i)}} for i in range(0, 30, 3)]}})
    assert sorted(int(i["pk"]["S"]) for i in r["Responses"][name]) == list(range(0, 25, 3))
    assert r["UnprocessedKeys"] == {}
    r = ddb.batch_write_item(RequestItems={name: [{"DeleteRequest": {"Key": {"pk": {"S": str(i)}}}} for i in range(10)]})
    assert r["UnprocessedItems"] == {}
    assert ddb.scan(TableName=name, Select="COUNT")["Count"] == 15
    with pytest.raises(ClientError) as ei:
        ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {"pk": {"S": "x%d" % i}}}} for i in range(26)]})
    assert error(ei) == ("ValidationException", "Too many items requested for the BatchWriteItem call")
    with pytest.raises(ClientError) as ei:
        ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {"pk": {"S": "dup"}}}}] * 2})
    assert error(ei) == ("ValidationException", "Provided list of item keys contains duplicates")
    assert ddb.scan(TableName=name, Select="COUNT")["Count"] == 15


def test_batch_get_past_16_mb_leaves_unprocessed_keys(ddb):
    name = make_table(ddb)
    big = "x" * 390000
    keys = [{"pk": {"S": "big%02d" % i}} for i in range(45)]
    for i in range(0, 45, 15):
        ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": dict(k, v={"S": big})}}
                                                  for k in keys[i:i + 15]]})
    r = ddb.batch_get_item(RequestItems={name: {"Keys": keys, "ProjectionExpression": "pk, v"}})
    got = {i["pk"]["S"] for i in r["Responses"][name]}
    rest = r["UnprocessedKeys"][name]["Keys"]
    assert 30 <= len(got) < 45 and len(got) + len(rest) == 45
    r = ddb.batch_get_item(RequestItems=r["UnprocessedKeys"])
    got |= {i["pk"]["S"] for i in r["Responses"][name]}
    assert got == {k["pk"]["S"] for k in keys} and r["UnprocessedKeys"] == {}


def test_transactions(ddb):
    name = make_table(ddb)
    ddb.put_item(TableName=name, Item={"pk": {"S": "acct1"}, "bal": {"N": "100"}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "acct2"}, "bal": {"N": "0"}})

    def transfer(amount, token=None):
        kw = {"ClientRequestToken": token} if token else {}
        return ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": name, "Key": {"pk": {"S": "acct1"}}, "UpdateExpression": "SET bal = bal - :a",
                        "ConditionExpression": "bal >= :a", "ExpressionAttributeValues": {":a": {"N": str(amount)}}}},
            {"Update": {"TableName": name, "Key": {"pk": {"S": "acct2"}}, "UpdateExpression": "SET bal = bal + :a",
                        "ExpressionAttributeValues": {":a": {"N": str(amount)}}}},
        ], **kw)

    transfer(60, token="tok-1")
    transfer(60, token="tok-1")  # the same request again: applied once
    with pytest.raises(ClientError) as ei:
        transfer(60)
    code, msg = error(ei)
    assert code == "TransactionCanceledException"
    assert "[ConditionalCheckFailed, None]" in msg
    assert [r["Code"] for r in ei.value.response["CancellationReasons"]] == ["ConditionalCheckFailed", "None"]
    with pytest.raises(ClientError) as ei:
        transfer(1, token="tok-1")
    assert error(ei)[0] == "IdempotentParameterMismatchException"
    r = ddb.transact_get_items(TransactItems=[{"Get": {"TableName": name, "Key": {"pk": {"S": k}}}}
                                              for k in ("acct1", "acct2", "none")])
    assert [x.get("Item", {}).get("bal") for x in r["Responses"]] == [{"N": "40"}, {"N": "60"}, None]
    with pytest.raises(ClientError) as ei:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": name, "Item": {"pk": {"S": "acct1"}}}},
            {"Delete": {"TableName": name, "Key": {"pk": {"S": "acct1"}}}}])
    assert "multiple operations on one item" in error(ei)[1]


def test_resource_api_with_conditions(resource):
    name = unique("res")
    table = resource.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "user", "AttributeType": "S"},
                              {"AttributeName": "ts", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "user", "KeyType": "HASH"}, {"AttributeName": "ts", "KeyType": "RANGE"}])
    table.wait_until_exists()
    with table.batch_writer() as bw:
        for i in range(12):
            bw.put_item(Item={"user": "ann", "ts": i, "price": decimal.Decimal("9.99") * i, "name": "n%d" % i})
    r = table.query(KeyConditionExpression=Key("user").eq("ann") & Key("ts").between(3, 6),
                    FilterExpression=Attr("price").gt(decimal.Decimal("40")))
    assert [int(i["ts"]) for i in r["Items"]] == [5, 6]
    assert r["Items"][0]["price"] == decimal.Decimal("49.95")
    table.update_item(Key={"user": "ann", "ts": 1}, UpdateExpression="SET #n = :n",
                      ConditionExpression=Attr("name").begins_with("n1"),
                      ExpressionAttributeNames={"#n": "name"}, ExpressionAttributeValues={":n": "renamed"})
    assert table.get_item(Key={"user": "ann", "ts": 1})["Item"]["name"] == "renamed"
    r = table.scan(FilterExpression=Attr("name").contains("1") & Attr("ts").lt(12))
    assert sorted(int(i["ts"]) for i in r["Items"]) == [10, 11]  # ts 1 was renamed
    table.delete()


def test_awscli(tarn, ddb):
    name = make_table(ddb)
    tarn.aws_ok("dynamodb", "put-item", "--table-name", name, "--item",
                json.dumps({"pk": {"S": "cli"}, "n": {"N": "42"}}))
    out = tarn.aws_ok("dynamodb", "get-item", "--table-name", name, "--key",
                      json.dumps({"pk": {"S": "cli"}}))
    assert json.loads(out.stdout)["Item"]["n"] == {"N": "42"}
    r = tarn.aws("dynamodb", "describe-table", "--table-name", "missing-table")
    assert r.returncode != 0 and "ResourceNotFoundException" in r.stderr


def test_bad_requests(tarn, ddb):
    import requests
    name = make_table(ddb)
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "x": {"S": "1", "N": "1"}})
    assert "more than one datatypes" in error(ei)[1]
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": ""}})
    assert "cannot contain an empty string value" in error(ei)[1]
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "s": {"SS": []}})
    assert error(ei)[0] == "ValidationException"
    with pytest.raises(ClientError) as ei:
        ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}, ProjectionExpression="a,,b")
    assert "Syntax error" in error(ei)[1]
    assert ddb.scan(TableName=name)["Count"] == 0
    # an unsigned request and an unknown operation
    r = requests.post(tarn.endpoint, data="{}", timeout=10,
                      headers={"X-Amz-Target": "DynamoDB_20120810.ListTables",
                               "Content-Type": "application/x-amz-json-1.0"})
    assert r.status_code in (400, 403)


def test_query_validation(ddb):
    name = make_table(
        ddb, "S", "N", extra_attrs=[{"AttributeName": "g", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}])
    with pytest.raises(ClientError) as ei:
        ddb.query(TableName=name, IndexName="byg", ConsistentRead=True, KeyConditionExpression="g = :g",
                  ExpressionAttributeValues={":g": {"S": "x"}})
    assert error(ei) == ("ValidationException", "Consistent reads are not supported on global secondary indexes")
    with pytest.raises(ClientError) as ei:
        ddb.query(TableName=name, KeyConditionExpression="pk = :p", FilterExpression="sk > :n",
                  ExpressionAttributeValues={":p": {"S": "x"}, ":n": {"N": "1"}})
    assert error(ei) == ("ValidationException",
                         "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk")
    with pytest.raises(ClientError) as ei:
        ddb.query(TableName=name, KeyConditionExpression="pk = :p AND sk BETWEEN :b AND :a",
                  ExpressionAttributeValues={":p": {"S": "x"}, ":a": {"N": "1"}, ":b": {"N": "2"}})
    assert "BETWEEN" in error(ei)[1]
    with pytest.raises(ClientError) as ei:
        ddb.query(TableName=name, IndexName="nope", KeyConditionExpression="pk = :p",
                  ExpressionAttributeValues={":p": {"S": "x"}})
    assert error(ei)[0] == "ValidationException"


def test_legacy_parameters(ddb):
    name = make_table(ddb, "S", "N")
    for i in range(4):
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": str(i)}, "v": {"S": "v%d" % i}},
                     Expected={"pk": {"Exists": False}})
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": "0"}}, Expected={"pk": {"Exists": False}})
    assert error(ei)[0] == "ConditionalCheckFailedException"
    r = ddb.query(TableName=name, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
        "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "3"}]}},
        QueryFilter={"v": {"ComparisonOperator": "NE", "AttributeValueList": [{"S": "v2"}]}},
        AttributesToGet=["sk"])
    assert r["Items"] == [{"sk": {"N": "1"}}, {"sk": {"N": "3"}}]
    ddb.update_item(TableName=name, Key={"pk": {"S": "p"}, "sk": {"N": "1"}},
                    AttributeUpdates={"v": {"Action": "DELETE"}, "n": {"Action": "ADD", "Value": {"N": "2"}}},
                    Expected={"v": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "v"}]}})
    assert ddb.get_item(TableName=name, Key={"pk": {"S": "p"}, "sk": {"N": "1"}})["Item"] == {
        "pk": {"S": "p"}, "sk": {"N": "1"}, "n": {"N": "2"}}
    r = ddb.scan(TableName=name, ScanFilter={"v": {"ComparisonOperator": "IN",
                                                  "AttributeValueList": [{"S": "v0"}, {"S": "v3"}]}},
                 ConditionalOperator="OR")
    assert sorted(i["sk"]["N"] for i in r["Items"]) == ["0", "3"]
    with pytest.raises(ClientError) as ei:
        ddb.scan(TableName=name, ScanFilter={"v": {"ComparisonOperator": "NOT_NULL"}}, FilterExpression="attribute_exists(v)")
    assert "Can not use both expression and non-expression parameters" in error(ei)[1]


def test_reserved_words_need_placeholders(ddb, resource):
    # DynamoDB refuses its 573 reserved words as bare attribute names in
    # every kind of expression (any case, nested too); #placeholders work.
    name = make_table(ddb, "S", "S")
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "sk": {"S": "1"},
                                       "status": {"S": "new"}, "m": {"M": {"Name": {"S": "x"}}}})
    key = {"pk": {"S": "a"}, "sk": {"S": "1"}}
    cases = [
        ("UpdateExpression", lambda: ddb.update_item(
            TableName=name, Key=key, UpdateExpression="SET status = :s",
            ExpressionAttributeValues={":s": {"S": "done"}}), "status"),
        ("ConditionExpression", lambda: ddb.delete_item(
            TableName=name, Key=key, ConditionExpression="attribute_exists(m.Name)"), "Name"),
        ("ProjectionExpression", lambda: ddb.get_item(
            TableName=name, Key=key, ProjectionExpression="pk, STATUS"), "STATUS"),
        ("FilterExpression", lambda: ddb.scan(
            TableName=name, FilterExpression="size(#m.data) > :n",
            ExpressionAttributeNames={"#m": "m"},
            ExpressionAttributeValues={":n": {"N": "0"}}), "data"),
        ("KeyConditionExpression", lambda: ddb.query(
            TableName=name, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
            FilterExpression="year = :p",
            ExpressionAttributeValues={":p": {"S": "a"}, ":a": {"S": "0"}, ":b": {"S": "9"}}),
         "year"),
    ]
    for what, call, word in cases:
        with pytest.raises(ClientError) as ei:
            call()
        code, msg = error(ei)
        assert code == "ValidationException", (what, msg)
        assert "Attribute name is a reserved keyword; reserved keyword: %s" % word in msg, msg
    # nothing changed
    item = ddb.get_item(TableName=name, Key=key)["Item"]
    assert item["status"] == {"S": "new"}
    # the same operations with placeholders work
    ddb.update_item(TableName=name, Key=key, UpdateExpression="SET #s = :s",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":s": {"S": "done"}})
    got = ddb.get_item(TableName=name, Key=key, ProjectionExpression="#s, m.#n",
                       ExpressionAttributeNames={"#s": "status", "#n": "Name"})["Item"]
    assert got == {"status": {"S": "done"}, "m": {"M": {"Name": {"S": "x"}}}}
    # words that are not reserved stay usable bare
    ddb.update_item(TableName=name, Key=key, UpdateExpression="SET statuses = :s, pk2 = :s",
                    ExpressionAttributeValues={":s": {"S": "ok"}})
    # boto3's resource API writes placeholders for every name, so reserved
    # names work through it
    t = resource.Table(name)
    t.update_item(Key={"pk": "a", "sk": "1"}, UpdateExpression="SET #d = :d",
                  ExpressionAttributeNames={"#d": "data"}, ExpressionAttributeValues={":d": 1})
    from boto3.dynamodb.conditions import Attr as A
    assert t.scan(FilterExpression=A("status").eq("done"))["Count"] == 1


def test_return_consumed_capacity(ddb):
    # DynamoDB's unit rules: writes ceil(KB), reads ceil(4 KB) halved when
    # eventually consistent, transactions twice, indexes charged apart.
    name = make_table(ddb, "S", extra_attrs=[{"AttributeName": "g", "AttributeType": "S"}],
                      GlobalSecondaryIndexes=[{
                          "IndexName": "by_g", "Projection": {"ProjectionType": "KEYS_ONLY"},
                          "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}])
    big = "x" * 1500  # 1 + 1500 bytes: 2 write units, 1 read unit
    r = ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "d": {"S": big}},
                     ReturnConsumedCapacity="TOTAL")
    assert r["ConsumedCapacity"]["TableName"] == name
    assert r["ConsumedCapacity"]["CapacityUnits"] == 2.0
    r = ddb.put_item(TableName=name, Item={"pk": {"S": "b"}, "g": {"S": "k"}},
                     ReturnConsumedCapacity="INDEXES")
    c = r["ConsumedCapacity"]
    assert c["CapacityUnits"] == 2.0
    assert c["Table"]["CapacityUnits"] == 1.0
    assert c["GlobalSecondaryIndexes"]["by_g"]["CapacityUnits"] == 1.0
    r = ddb.put_item(TableName=name, Item={"pk": {"S": "c"}})  # NONE by default
    assert "ConsumedCapacity" not in r
    r = ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}, ReturnConsumedCapacity="TOTAL")
    assert r["ConsumedCapacity"]["CapacityUnits"] == 0.5
    r = ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}, ConsistentRead=True,
                     ReturnConsumedCapacity="TOTAL")
    assert r["ConsumedCapacity"]["CapacityUnits"] == 1.0
    for i in range(3):
        ddb.put_item(TableName=name, Item={"pk": {"S": "s%d" % i}, "d": {"S": "y" * 2047}})
    r = ddb.scan(TableName=name, ReturnConsumedCapacity="TOTAL")
    # a (1503) + b + c (small) + 3 x 2050 bytes: ceil(7.6 KB / 4 KB) = 2, halved
    assert r["ConsumedCapacity"]["CapacityUnits"] == 1.0
    r = ddb.query(TableName=name, IndexName="by_g", KeyConditionExpression="g = :g",
                  ExpressionAttributeValues={":g": {"S": "k"}}, ReturnConsumedCapacity="INDEXES")
    assert r["Count"] == 1
    assert r["ConsumedCapacity"]["GlobalSecondaryIndexes"]["by_g"]["CapacityUnits"] == 0.5
    assert r["ConsumedCapacity"]["Table"]["CapacityUnits"] == 0.0
    other = make_table(ddb, "S")
    r = ddb.batch_write_item(RequestItems={
        name: [{"PutRequest": {"Item": {"pk": {"S": "w1"}}}},
               {"DeleteRequest": {"Key": {"pk": {"S": "a"}}}}],
        other: [{"PutRequest": {"Item": {"pk": {"S": "w2"}}}}]},
        ReturnConsumedCapacity="TOTAL")
    got = {c["TableName"]: c["CapacityUnits"] for c in r["ConsumedCapacity"]}
    assert got == {name: 3.0, other: 1.0}  # the delete of a 1.5 KB item costs 2
    r = ddb.batch_get_item(RequestItems={name: {"Keys": [{"pk": {"S": "b"}}, {"pk": {"S": "c"}}]}},
                           ReturnConsumedCapacity="TOTAL")
    assert r["ConsumedCapacity"] == [{"TableName": name, "CapacityUnits": 1.0,
                                      "ReadCapacityUnits": 1.0}]
    r = ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": other, "Item": {"pk": {"S": "t"}}}}],
        ReturnConsumedCapacity="TOTAL")
    assert r["ConsumedCapacity"][0]["CapacityUnits"] == 2.0
    r = ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": other, "Key": {"pk": {"S": "t"}}}}], ReturnConsumedCapacity="TOTAL")
    assert r["ConsumedCapacity"][0]["CapacityUnits"] == 2.0
    with pytest.raises(ClientError) as ei:
        ddb.put_item(TableName=name, Item={"pk": {"S": "bad"}}, ReturnConsumedCapacity="ALL")
    code, msg = error(ei)
    assert code == "ValidationException" and "returnConsumedCapacity" in msg
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "bad"}})


def test_transaction_limits_and_validation_reasons(ddb):
    name = make_table(ddb, "S")
    # 11 items of ~390 KB: past the 4 MB aggregate, refused whole
    big = "z" * (390 * 1024)
    items = [{"Put": {"TableName": name, "Item": {"pk": {"S": "k%d" % i}, "d": {"S": big}}}}
             for i in range(11)]
    with pytest.raises(ClientError) as ei:
        ddb.transact_write_items(TransactItems=items)
    code, msg = error(ei)
    assert code == "ValidationException" and "4 MB" in msg, msg
    count = lambda: sum(p["Count"] for p in ddb.get_paginator("scan").paginate(
        TableName=name, Select="COUNT"))
    assert count() == 0
    # ten of them fit (3.9 MB)
    ddb.transact_write_items(TransactItems=items[:10])
    assert count() == 10
    # an update that grows an item past 400 KB cancels the transaction with
    # a ValidationError reason in its place, and nothing is written
    with pytest.raises(ClientError) as ei:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": name, "Item": {"pk": {"S": "new"}}}},
            {"Update": {"TableName": name, "Key": {"pk": {"S": "k0"}},
                        "UpdateExpression": "SET e = :e",
                        "ExpressionAttributeValues": {":e": {"S": "y" * (20 * 1024)}}}}])
    assert ei.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = ei.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ValidationError"]
    assert "Item size" in reasons[1]["Message"]
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "new"}})
