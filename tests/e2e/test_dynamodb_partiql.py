"""tests/e2e/test_dynamodb_partiql.py -- PartiQL through boto3's
ExecuteStatement and BatchExecuteStatement: INSERT (duplicates refused),
SELECT with WHERE, projections, parameters and paging, UPDATE with SET
arithmetic and REMOVE, DELETE, and the errors AWS gives.
"""
import pytest
from botocore.exceptions import ClientError

from queue_util import client, unique


@pytest.fixture(scope="module")
def ddb(tarn):
    return client(tarn, "dynamodb")


@pytest.fixture(scope="module")
def table(ddb):
    name = unique("pq")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "N"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}])
    return name


def test_insert_select_update_delete(ddb, table):
    for i in range(5):
        ddb.execute_statement(Statement='INSERT INTO "%s" VALUE {\'pk\': \'a\', \'sk\': ?, \'n\': ?, '
                                        '\'tags\': <<\'x\', \'y\'>>, \'m\': {\'k\': [1, true, null]}}' % table,
                              Parameters=[{"N": str(i)}, {"N": str(i * 10)}])
    with pytest.raises(ClientError) as ei:
        ddb.execute_statement(Statement='INSERT INTO "%s" VALUE {\'pk\': \'a\', \'sk\': 1}' % table)
    assert ei.value.response["Error"]["Code"] == "DuplicateItemException"
    r = ddb.execute_statement(Statement='SELECT sk, n FROM "%s" WHERE pk = ? AND n >= 20' % table,
                              Parameters=[{"S": "a"}])
    assert sorted(int(i["sk"]["N"]) for i in r["Items"]) == [2, 3, 4]
    assert all(set(i) == {"sk", "n"} for i in r["Items"])
    r = ddb.execute_statement(Statement='SELECT * FROM "%s" WHERE sk IN [1, 3] AND m.k[0] = 1' % table)
    assert sorted(int(i["sk"]["N"]) for i in r["Items"]) == [1, 3]
    assert r["Items"][0]["tags"]["SS"] and r["Items"][0]["m"]["M"]["k"]["L"][1] == {"BOOL": True}
    got, kw = [], {}
    while True:
        r = ddb.execute_statement(Statement='SELECT sk FROM "%s"' % table, Limit=2, **kw)
        got += [int(i["sk"]["N"]) for i in r["Items"]]
        if "NextToken" not in r:
            break
        kw = {"NextToken": r["NextToken"]}
    assert sorted(got) == [0, 1, 2, 3, 4]
    ddb.execute_statement(Statement='UPDATE "%s" SET n = n + 5 SET note = \'hi\' REMOVE tags '
                                    'WHERE pk = \'a\' AND sk = 1' % table)
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"N": "1"}})["Item"]
    assert item["n"] == {"N": "15"} and item["note"] == {"S": "hi"} and "tags" not in item
    with pytest.raises(ClientError) as ei:
        ddb.execute_statement(Statement='UPDATE "%s" SET n = 1 WHERE pk = \'nope\' AND sk = 1' % table)
    assert ei.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    with pytest.raises(ClientError) as ei:
        ddb.execute_statement(Statement='UPDATE "%s" SET n = 1 WHERE pk = \'a\'' % table)
    assert "mandatory equality on all key attributes" in ei.value.response["Error"]["Message"]
    ddb.execute_statement(Statement='DELETE FROM "%s" WHERE pk = \'a\' AND sk = 0' % table)
    r = ddb.execute_statement(Statement='SELECT sk FROM "%s" WHERE pk = \'a\' AND n IS NOT MISSING' % table)
    assert sorted(int(i["sk"]["N"]) for i in r["Items"]) == [1, 2, 3, 4]
    r = ddb.execute_statement(Statement='SELECT sk FROM "%s" WHERE note IS MISSING AND begins_with(pk, \'a\')' % table)
    assert sorted(int(i["sk"]["N"]) for i in r["Items"]) == [2, 3, 4]


def test_batch_and_errors(ddb, table):
    r = ddb.batch_execute_statement(Statements=[
        {"Statement": 'INSERT INTO "%s" VALUE {\'pk\': \'b\', \'sk\': 1}' % table},
        {"Statement": 'INSERT INTO "%s" VALUE {\'pk\': \'b\', \'sk\': 1}' % table},
        {"Statement": 'SELECT * FROM "%s" WHERE pk = ? AND sk = ?' % table,
         "Parameters": [{"S": "b"}, {"N": "1"}]},
    ])["Responses"]
    assert "Error" not in r[0]
    assert r[1]["Error"]["Code"] == "DuplicateItem"
    assert r[2]["Item"] == {"pk": {"S": "b"}, "sk": {"N": "1"}}
    for stmt, params in [('SELEC * FROM "%s"' % table, None),
                         ('SELECT * FROM "%s" WHERE pk = ?' % table, None),
                         ('SELECT * FROM "%s" WHERE pk = \'b\'' % table, [{"S": "x"}])]:
        kw = {"Parameters": params} if params else {}
        with pytest.raises(ClientError) as ei:
            ddb.execute_statement(Statement=stmt, **kw)
        assert ei.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as ei:
        ddb.execute_statement(Statement='SELECT * FROM "missing-table"')
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"
