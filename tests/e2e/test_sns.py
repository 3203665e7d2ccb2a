"""tests/e2e/test_sns.py -- SNS through boto3 (query protocol) and the AWS
CLI: topics, subscriptions, fan-out to queues with filter policies, raw
delivery, an HTTP subscriber in the test (SubscriptionConfirmation, then
notifications, retried after a failure), durable delivery across kill -9,
and the AWS error codes of bad input.
"""
import base64
import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from queue_util import Endpoint, client, queue_arn, receive_all, unique, wait_for
from tarnlib import client_error


@pytest.fixture(scope="module")
def sqs(tarn):
    return client(tarn, "sqs")


@pytest.fixture(scope="module")
def sns(tarn):
    return client(tarn, "sns")


def error_code(fn, *args, **kw):
    with pytest.raises(ClientError) as ei:
        fn(*args, **kw)
    return client_error(ei.value)


def new_queue(sqs, prefix="sub"):
    name = unique(prefix)
    return name, sqs.create_queue(QueueName=name)["QueueUrl"]


def test_topic_lifecycle(sns):
    name = unique("topic")
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "Sales"},
                           Tags=[{"Key": "team", "Value": "data"}])["TopicArn"]
    assert arn == "arn:aws:sns:us-east-1:000000000000:" + name
    assert sns.create_topic(Name=name)["TopicArn"] == arn  # idempotent
    assert arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["TopicArn"] == arn and attrs["DisplayName"] == "Sales"
    assert attrs["SubscriptionsConfirmed"] == "0" and "Policy" in attrs
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Orders")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Orders"
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "data"}]
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "test"}])
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "env", "Value": "test"}]
    sns.delete_topic(TopicArn=arn)
    assert arn not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert error_code(sns.get_topic_attributes, TopicArn=arn) == ("NotFound", 404)
    assert error_code(sns.publish, TopicArn=arn, Message="x") == ("NotFound", 404)


def test_fan_out_with_filter_policies(sqs, sns):
    arn = sns.create_topic(Name=unique("fan"))["TopicArn"]
    blue_name, blue = new_queue(sqs, "blue")
    red_name, red = new_queue(sqs, "red")
    all_name, everything = new_queue(sqs, "all")
    s_blue = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(blue_name),
                           Attributes={"FilterPolicy": json.dumps({"color": ["blue"]})})
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(red_name),
                  Attributes={"FilterPolicy": json.dumps(
                      {"color": ["red"], "size": [{"numeric": [">", 10]}]})})
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(all_name))
    subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert len(subs) == 3 and {s["Protocol"] for s in subs} == {"sqs"}
    a = sns.get_subscription_attributes(SubscriptionArn=s_blue["SubscriptionArn"])["Attributes"]
    assert json.loads(a["FilterPolicy"]) == {"color": ["blue"]}
    assert a["FilterPolicyScope"] == "MessageAttributes" and a["RawMessageDelivery"] == "false"

    first = sns.publish(TopicArn=arn, Message="a blue one", Subject="colors",
                        MessageAttributes={"color": {"DataType": "String",
                                                     "StringValue": "blue"},
                                           "size": {"DataType": "Number",
                                                    "StringValue": "20"}})
    sns.publish(TopicArn=arn, Message="a big red one",
                MessageAttributes={"color": {"DataType": "String", "StringValue": "red"},
                                   "size": {"DataType": "Number", "StringValue": "11"}})
    sns.publish(TopicArn=arn, Message="a small red one",
                MessageAttributes={"color": {"DataType": "String", "StringValue": "red"},
                                   "size": {"DataType": "Number", "StringValue": "5"}})

    env = json.loads(receive_all(sqs, blue, 1)[0]["Body"])
    assert env["Type"] == "Notification" and env["MessageId"] == first["MessageId"]
    assert env["TopicArn"] == arn and env["Subject"] == "colors"
    assert env["Message"] == "a blue one"
    assert env["MessageAttributes"]["color"] == {"Type": "String", "Value": "blue"}
    assert env["MessageAttributes"]["size"] == {"Type": "Number", "Value": "20"}
    for k in ("Timestamp", "SignatureVersion", "Signature", "SigningCertURL", "UnsubscribeURL"):
        assert env[k], k
    # the red queue got only the big red one: the small one and the blue one did not match
    reds = [json.loads(m["Body"])["Message"] for m in receive_all(sqs, red, 1)]
    assert reds == ["a big red one"]
    everything_msgs = receive_all(sqs, everything, 3)
    assert sorted(json.loads(m["Body"])["Message"] for m in everything_msgs) == sorted(
        ["a blue one", "a big red one", "a small red one"])
    # once everything else arrived, nothing more is on its way to the blue queue
    assert "Messages" not in sqs.receive_message(QueueUrl=blue, WaitTimeSeconds=1)
    assert "Messages" not in sqs.receive_message(QueueUrl=red, WaitTimeSeconds=1)


def test_raw_delivery_and_body_filter(sqs, sns):
    arn = sns.create_topic(Name=unique("raw"))["TopicArn"]
    raw_name, raw = new_queue(sqs, "raw")
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(raw_name),
                        Attributes={"RawMessageDelivery": "true"},
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
    body_name, body_q = new_queue(sqs, "body")
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(body_name), Attributes={
        "FilterPolicyScope": "MessageBody",
        "FilterPolicy": json.dumps({"order": {"total": [{"numeric": [">=", 100]}]}})})
    sns.publish(TopicArn=arn, Message=json.dumps({"order": {"total": 150}}),
                MessageAttributes={"k": {"DataType": "String", "StringValue": "v"},
                                   "b": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}})
    sns.publish(TopicArn=arn, Message=json.dumps({"order": {"total": 5}}))
    raws = receive_all(sqs, raw, 2, MessageAttributeNames=["All"])
    by_body = {m["Body"]: m for m in raws}
    big = by_body[json.dumps({"order": {"total": 150}})]
    assert big["MessageAttributes"]["k"] == {"DataType": "String", "StringValue": "v"}
    assert big["MessageAttributes"]["b"] == {"DataType": "Binary", "BinaryValue": b"\x01\x02"}
    got = receive_all(sqs, body_q, 1)
    assert json.loads(json.loads(got[0]["Body"])["Message"]) == {"order": {"total": 150}}
    assert "Messages" not in sqs.receive_message(QueueUrl=body_q, WaitTimeSeconds=1)
    # switching raw delivery off gives envelopes again
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery",
                                    AttributeValue="false")
    sns.publish(TopicArn=arn, Message="wrapped")
    assert json.loads(receive_all(sqs, raw, 1)[0]["Body"])["Message"] == "wrapped"


def test_publish_batch_and_structure(sqs, sns):
    arn = sns.create_topic(Name=unique("batch"))["TopicArn"]
    name, url = new_queue(sqs)
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(name),
                  Attributes={"RawMessageDelivery": "true"})
    r = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "one", "Message": "first"},
        {"Id": "two", "Message": "second",
         "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "2"}}},
        {"Id": "bad", "Message": ""}])
    assert sorted(e["Id"] for e in r["Successful"]) == ["one", "two"]
    assert [(e["Id"], e["Code"]) for e in r["Failed"]] == [("bad", "InvalidParameter")]
    sns.publish(TopicArn=arn, MessageStructure="json",
                Message=json.dumps({"default": "plain", "sqs": "for queues"}))
    bodies = sorted(m["Body"] for m in receive_all(sqs, url, 3))
    assert bodies == ["first", "for queues", "second"]
    assert error_code(sns.publish, TopicArn=arn, MessageStructure="json",
                      Message=json.dumps({"sqs": "no default"}))[0] == "InvalidParameter"


def test_http_subscriber(tarn, sns):
    ep = Endpoint().start()
    try:
        arn = sns.create_topic(Name=unique("http"))["TopicArn"]
        r = sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=ep.url)
        assert r["SubscriptionArn"] == "pending confirmation"
        headers, conf = ep.next()
        assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
        assert headers["x-amz-sns-topic-arn"] == arn
        assert conf["Type"] == "SubscriptionConfirmation" and conf["TopicArn"] == arn
        assert conf["Token"] and conf["SubscribeURL"].startswith(tarn.endpoint)
        subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        assert [s["SubscriptionArn"] for s in subs] == ["PendingConfirmation"]
        # visiting the SubscribeURL (a presigned link to tarn) confirms
        with urllib.request.urlopen(conf["SubscribeURL"], timeout=30) as resp:
            page = resp.read().decode()
        assert "ConfirmSubscriptionResponse" in page
        subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        sub_arn = subs[0]["SubscriptionArn"]
        assert sub_arn.startswith(arn + ":")
        attrs = sns.get_subscription_attributes(SubscriptionArn=sub_arn)["Attributes"]
        assert attrs["PendingConfirmation"] == "false"

        ep.fail_next = 1  # the first attempt fails: delivery retries with backoff
        pub = sns.publish(TopicArn=arn, Message="to the web", Subject="hi",
                          MessageAttributes={"a": {"DataType": "String", "StringValue": "b"}})
        headers, note = ep.next()
        assert ep.failed == 1
        assert headers["x-amz-sns-message-type"] == "Notification"
        assert headers["x-amz-sns-message-id"] == pub["MessageId"]
        assert headers["x-amz-sns-subscription-arn"] == sub_arn
        assert note["Type"] == "Notification" and note["Message"] == "to the web"
        assert note["MessageId"] == pub["MessageId"] and note["Subject"] == "hi"
        assert note["MessageAttributes"] == {"a": {"Type": "String", "Value": "b"}}
        assert note["UnsubscribeURL"].startswith(tarn.endpoint)

        # ConfirmSubscription through the API: a wrong token is refused
        assert error_code(sns.confirm_subscription, TopicArn=arn, Token="nope")[0] == \
            "InvalidParameter"
        # the UnsubscribeURL unsubscribes
        with urllib.request.urlopen(note["UnsubscribeURL"], timeout=30) as resp:
            assert "UnsubscribeResponse" in resp.read().decode()
        assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    finally:
        ep.stop()


def test_http_delivery_survives_kill9(tarn_factory):
    srv = tarn_factory()
    sns = client(srv, "sns")
    ep = Endpoint().start()
    arn = sns.create_topic(Name=unique("durable"))["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=ep.url)
    _, conf = ep.next()
    sns.confirm_subscription(TopicArn=arn, Token=conf["Token"])
    ep.stop()  # the endpoint is down: deliveries fail and wait in the outbox
    pub = sns.publish(TopicArn=arn, Message="must arrive")
    srv.kill9()
    ep = Endpoint(port=ep.port).start()
    try:
        srv.start()
        headers, note = ep.next(timeout=60)
        assert note["MessageId"] == pub["MessageId"] and note["Message"] == "must arrive"
    finally:
        ep.stop()


def test_subscription_management(sqs, sns):
    arn = sns.create_topic(Name=unique("subs"))["TopicArn"]
    name, _ = new_queue(sqs)
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(name))["SubscriptionArn"]
    # the same endpoint again is the same subscription
    assert sns.subscribe(TopicArn=arn, Protocol="sqs",
                         Endpoint=queue_arn(name))["SubscriptionArn"] == sub
    lam = sns.subscribe(TopicArn=arn, Protocol="lambda",
                        Endpoint="arn:aws:lambda:us-east-1:000000000000:function:f")
    assert lam["SubscriptionArn"].startswith(arn + ":")
    mine = [s for s in sns.list_subscriptions()["Subscriptions"] if s["TopicArn"] == arn]
    assert sorted(s["Protocol"] for s in mine) == ["lambda", "sqs"]
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy",
                                    AttributeValue=json.dumps({"k": [{"prefix": "a"}]}))
    assert error_code(sns.set_subscription_attributes, SubscriptionArn=sub,
                      AttributeName="FilterPolicy",
                      AttributeValue=json.dumps({"k": [{"prefx": "a"}]}))[0] == "InvalidParameter"
    assert error_code(sns.set_subscription_attributes, SubscriptionArn=sub,
                      AttributeName="FilterPolicy", AttributeValue="{not json")[0] == \
        "InvalidParameter"
    assert error_code(sns.set_subscription_attributes, SubscriptionArn=sub,
                      AttributeName="Bogus", AttributeValue="1")[0] == "InvalidParameter"
    sns.unsubscribe(SubscriptionArn=sub)
    assert error_code(sns.get_subscription_attributes, SubscriptionArn=sub) == ("NotFound", 404)
    assert error_code(sns.subscribe, TopicArn=arn + "-missing", Protocol="sqs",
                      Endpoint=queue_arn(name)) == ("NotFound", 404)
    assert error_code(sns.subscribe, TopicArn=arn, Protocol="carrier-pigeon",
                      Endpoint="x")[0] == "InvalidParameter"
    # deleting the topic deletes its subscriptions
    sns.delete_topic(TopicArn=arn)
    assert [s for s in sns.list_subscriptions()["Subscriptions"] if s["TopicArn"] == arn] == []


def test_bad_publish(sns):
    arn = sns.create_topic(Name=unique("bad"))["TopicArn"]
    assert error_code(sns.publish, TopicArn=arn, Message="")[0] == "InvalidParameter"
    assert error_code(sns.publish, TopicArn=arn, Message="x" * 262145)[0] == "InvalidParameter"
    assert error_code(sns.publish, TopicArn=arn, Message="x", MessageAttributes={
        "n": {"DataType": "Number", "StringValue": "abc"}})[0] == "InvalidParameter"
    assert error_code(sns.publish, TopicArn="not-an-arn", Message="x")[0] == "InvalidParameter"
    assert error_code(sns.create_topic, Name="bad name!")[0] == "InvalidParameter"


def test_aws_cli(tarn, sqs):
    name = unique("clitopic")
    arn = json.loads(tarn.aws_ok("sns", "create-topic", "--name", name).stdout)["TopicArn"]
    qname, url = new_queue(sqs, "cliq")
    tarn.aws_ok("sns", "subscribe", "--topic-arn", arn, "--protocol", "sqs",
                "--notification-endpoint", queue_arn(qname),
                "--attributes", "RawMessageDelivery=true")
    out = json.loads(tarn.aws_ok("sns", "publish", "--topic-arn", arn, "--message",
                                 "from the cli").stdout)
    assert out["MessageId"]
    assert receive_all(sqs, url, 1)[0]["Body"] == "from the cli"
    r = tarn.aws("sns", "get-topic-attributes", "--topic-arn", arn + "-nope")
    assert r.returncode != 0 and "NotFound" in r.stderr
