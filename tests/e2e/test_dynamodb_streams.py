"""tests/e2e/test_dynamodb_streams.py -- DynamoDB Streams through boto3's
dynamodbstreams client: records for inserts, modifications and removals
with the view type's images, in order, with iterators that resume; time to
live (settings, and expired items deleted by the service with a stream
record that says so), and iterators that expire.
"""
import base64
import time

import pytest
from botocore.exceptions import ClientError

from queue_util import client, unique, within_ttl


@pytest.fixture(scope="module")
def ddb(tarn):
    return client(tarn, "dynamodb")


@pytest.fixture(scope="module")
def streams(tarn):
    return client(tarn, "dynamodbstreams")


def make_table(ddb, view):
    name = unique("s")
    d = ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view})["TableDescription"]
    return name, d["LatestStreamArn"]


def read_all(streams, arn, it_type="TRIM_HORIZON"):
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=it_type)["ShardIterator"]
    r = streams.get_records(ShardIterator=it)
    return r["Records"], r["NextShardIterator"]


def test_stream_records_with_images(ddb, streams):
    name, arn = make_table(ddb, "NEW_AND_OLD_IMAGES")
    assert any(s["StreamArn"] == arn for s in streams.list_streams(TableName=name)["Streams"])
    d = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert d["StreamStatus"] == "ENABLED" and d["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    ddb.update_item(TableName=name, Key={"pk": {"S": "a"}}, UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": {"N": "2"}})
    ddb.delete_item(TableName=name, Key={"pk": {"S": "a"}})
    # a failed condition writes no record
    with pytest.raises(ClientError):
        ddb.put_item(TableName=name, Item={"pk": {"S": "a"}}, ConditionExpression="attribute_exists(pk)")
    records, nxt = read_all(streams, arn)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert records[0]["dynamodb"]["NewImage"] == {"pk": {"S": "a"}, "v": {"N": "1"}}
    assert "OldImage" not in records[0]["dynamodb"]
    assert records[1]["dynamodb"]["OldImage"]["v"] == {"N": "1"}
    assert records[1]["dynamodb"]["NewImage"]["v"] == {"N": "2"}
    assert records[2]["dynamodb"]["Keys"] == {"pk": {"S": "a"}}
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert seqs == sorted(seqs)
    assert streams.get_records(ShardIterator=nxt)["Records"] == []
    ddb.put_item(TableName=name, Item={"pk": {"S": "b"}})
    more = streams.get_records(ShardIterator=nxt)["Records"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in more] == ["b"]


def test_keys_only_and_latest(ddb, streams):
    name, arn = make_table(ddb, "KEYS_ONLY")
    ddb.put_item(TableName=name, Item={"pk": {"S": "old"}, "x": {"S": "1"}})
    records, _ = read_all(streams, arn, "LATEST")
    assert records == []
    records, _ = read_all(streams, arn)
    assert records[0]["dynamodb"]["Keys"] == {"pk": {"S": "old"}}
    assert "NewImage" not in records[0]["dynamodb"]
    with pytest.raises(ClientError) as ei:
        streams.describe_stream(StreamArn=arn + "x")
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_update_table_enables_stream(ddb, streams):
    name = unique("s")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    ddb.put_item(TableName=name, Item={"pk": {"S": "before"}})
    d = ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": True,
                                                              "StreamViewType": "NEW_IMAGE"})
    arn = d["TableDescription"]["LatestStreamArn"]
    ddb.put_item(TableName=name, Item={"pk": {"S": "after"}})
    records, _ = read_all(streams, arn)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["after"]


def test_ttl_deletes_expired_items_as_the_service(ddb, streams):
    name, arn = make_table(ddb, "OLD_IMAGE")
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"
    r = ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    assert r["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": "exp"}
    d = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert d == {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}
    now = int(time.time())
    ddb.put_item(TableName=name, Item={"pk": {"S": "gone"}, "exp": {"N": str(now - 10)}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "future"}, "exp": {"N": str(now + 3600)}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "ancient"}, "exp": {"N": str(now - 6 * 365 * 86400)}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "text"}, "exp": {"S": "1"}})
    deadline = time.time() + 30
    while time.time() < deadline:
        if "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "gone"}}):
            break
        time.sleep(0.2)
    left = sorted(i["pk"]["S"] for i in ddb.scan(TableName=name)["Items"])
    assert left == ["ancient", "future", "text"]
    records, _ = read_all(streams, arn)
    removes = [r for r in records if r["eventName"] == "REMOVE"]
    assert len(removes) == 1
    assert removes[0]["userIdentity"] == {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
    assert removes[0]["dynamodb"]["OldImage"]["pk"] == {"S": "gone"}
    with pytest.raises(ClientError) as ei:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    assert ei.value.response["Error"]["Code"] == "ValidationException"


ITER_TTL_MS = 3000  # TARN_ITERATOR_TTL_MS for the expiry test (AWS: 900000)


def test_iterators_expire(tarn_factory):
    srv = tarn_factory(env={"TARN_ITERATOR_TTL_MS": str(ITER_TTL_MS)})
    d, s = client(srv, "dynamodb"), client(srv, "dynamodbstreams")
    name, arn = make_table(d, "KEYS_ONLY")
    shard = s.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    d.put_item(TableName=name, Item={"pk": {"S": "a"}})

    def fresh():
        it = s.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        return it, s.get_records(ShardIterator=it)

    old, r = within_ttl(fresh, ITER_TTL_MS)
    assert [x["dynamodb"]["Keys"]["pk"]["S"] for x in r["Records"]] == ["a"]
    nxt = r["NextShardIterator"]
    time.sleep(ITER_TTL_MS / 1000 + 1)  # let both iterators age past the TTL
    for it in (old, nxt):
        with pytest.raises(ClientError) as e:
            s.get_records(ShardIterator=it)
        assert e.value.response["Error"]["Code"] == "ExpiredIteratorException"
        msg = e.value.response["Error"]["Message"]
        assert msg.startswith("Iterator expired. The iterator was created at time ")
        assert msg.endswith("tolerated delay of %d milliseconds." % ITER_TTL_MS)

    def chain():
        it, r = fresh()
        d.put_item(TableName=name, Item={"pk": {"S": "b"}})
        return s.get_records(ShardIterator=r["NextShardIterator"])

    r2 = within_ttl(chain, ITER_TTL_MS)
    assert "b" in [x["dynamodb"]["Keys"]["pk"]["S"] for x in r2["Records"]]

    raw = bytearray(base64.b64decode(old))
    raw[-20] ^= 1  # inside the issue time: the seal no longer matches
    with pytest.raises(ClientError) as e:
        s.get_records(ShardIterator=base64.b64encode(bytes(raw)).decode())
    assert e.value.response["Error"]["Code"] == "ValidationException"
