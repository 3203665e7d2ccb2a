"""tests/e2e/test_dynamodb_crash.py -- DynamoDB durability under kill -9:
every write acknowledged (PutItem from many threads at once, sharing
commits; BatchWriteItem; a transaction; an UpdateItem counter) is there
after a restart, with its index entries.
"""
import threading

from queue_util import client, unique


def test_acknowledged_writes_survive_kill9(tarn_factory):
    srv = tarn_factory()
    ddb = client(srv, "dynamodb")
    name = unique("crash")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "g", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}])
    acked = set()
    lock = threading.Lock()

    def writer(t):
        for i in range(15):
            pk = "t%d-%d" % (t, i)
            ddb.put_item(TableName=name, Item={"pk": {"S": pk}, "g": {"S": "all"}})
            ddb.update_item(TableName=name, Key={"pk": {"S": "counter"}}, UpdateExpression="ADD n :one",
                            ExpressionAttributeValues={":one": {"N": "1"}})
            with lock:
                acked.add(pk)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {"pk": {"S": "b%d" % i}, "g": {"S": "all"}}}}
                                              for i in range(20)]})
    acked.update("b%d" % i for i in range(20))
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": name, "Item": {"pk": {"S": "tx"}, "g": {"S": "all"}}}}])
    acked.add("tx")
    srv.kill9()
    srv.start()
    ddb = client(srv, "dynamodb")
    got, kw = set(), {}
    while True:
        r = ddb.scan(TableName=name, **kw)
        got |= {i["pk"]["S"] for i in r["Items"]}
        if "LastEvaluatedKey" not in r:
            break
        kw = {"ExclusiveStartKey": r["LastEvaluatedKey"]}
    assert acked | {"counter"} == got
    n = ddb.get_item(TableName=name, Key={"pk": {"S": "counter"}})["Item"]["n"]["N"]
    assert n == "120"
    r = ddb.query(TableName=name, IndexName="byg", KeyConditionExpression="g = :g", Select="COUNT",
                  ExpressionAttributeValues={":g": {"S": "all"}})
    assert r["Count"] == len(acked)
