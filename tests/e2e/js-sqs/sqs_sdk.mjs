// tests/e2e/js-sqs/sqs_sdk.mjs -- SQS's JSON protocol (AWS JSON 1.0,
// X-Amz-Target: AmazonSQS.*) through the AWS SDK for JavaScript v3, run by
// tests/e2e/test_sqs_js.py. The SDK checks MD5OfBody / MD5OfMessageBody of
// what it sends and receives; each step prints one JSON line for the test.
import {
  SQSClient, CreateQueueCommand, GetQueueUrlCommand, SendMessageCommand,
  SendMessageBatchCommand, ReceiveMessageCommand, DeleteMessageCommand,
  DeleteMessageBatchCommand, GetQueueAttributesCommand, ChangeMessageVisibilityCommand,
  ListQueuesCommand, DeleteQueueCommand,
} from "@aws-sdk/client-sqs";

const client = new SQSClient({
  endpoint: process.env.TARN_ENDPOINT,
  region: "us-east-1",
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  },
  maxAttempts: 1,
});
const out = (o) => console.log(JSON.stringify(o));
const name = process.env.TARN_QUEUE;

const { QueueUrl } = await client.send(new CreateQueueCommand({
  QueueName: name, Attributes: { VisibilityTimeout: "30" }, tags: { via: "js" },
}));
out({ step: "create", QueueUrl });
const got = await client.send(new GetQueueUrlCommand({ QueueName: name }));
out({ step: "url", QueueUrl: got.QueueUrl });

const sent = await client.send(new SendMessageCommand({
  QueueUrl, MessageBody: "hello from js \u2603",
  MessageAttributes: {
    color: { DataType: "String", StringValue: "blue" },
    n: { DataType: "Number", StringValue: "7" },
    bin: { DataType: "Binary", BinaryValue: new Uint8Array([0, 1, 254, 255]) },
  },
}));
out({ step: "send", MessageId: sent.MessageId, MD5OfMessageBody: sent.MD5OfMessageBody,
      MD5OfMessageAttributes: sent.MD5OfMessageAttributes });

const batch = await client.send(new SendMessageBatchCommand({
  QueueUrl, Entries: [1, 2, 3].map((i) => ({ Id: `e${i}`, MessageBody: `batch ${i}` })),
}));
out({ step: "batch", ok: batch.Successful.map((e) => e.Id).sort(),
      failed: (batch.Failed || []).length });

const received = [];
for (let i = 0; i < 20 && received.length < 4; i++) {
  const r = await client.send(new ReceiveMessageCommand({
    QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
    MessageAttributeNames: ["All"], AttributeNames: ["All"],
  }));
  received.push(...(r.Messages || []));
}
const first = received.find((m) => m.MessageId === sent.MessageId);
out({ step: "receive", count: received.length, bodies: received.map((m) => m.Body).sort(),
      attrs: {
        color: first.MessageAttributes.color.StringValue,
        n: first.MessageAttributes.n.StringValue,
        bin: Array.from(first.MessageAttributes.bin.BinaryValue),
      },
      MD5OfMessageAttributes: first.MD5OfMessageAttributes,
      receiveCount: first.Attributes.ApproximateReceiveCount });

await client.send(new ChangeMessageVisibilityCommand({
  QueueUrl, ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 60 }));
await client.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: first.ReceiptHandle }));
const del = await client.send(new DeleteMessageBatchCommand({
  QueueUrl, Entries: received.filter((m) => m !== first)
    .map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })),
}));
out({ step: "delete", ok: del.Successful.length, failed: (del.Failed || []).length });

const attrs = await client.send(new GetQueueAttributesCommand({
  QueueUrl, AttributeNames: ["All"] }));
out({ step: "attributes", visible: attrs.Attributes.ApproximateNumberOfMessages,
      inflight: attrs.Attributes.ApproximateNumberOfMessagesNotVisible,
      vt: attrs.Attributes.VisibilityTimeout });

const listed = await client.send(new ListQueuesCommand({ QueueNamePrefix: name }));
out({ step: "list", urls: listed.QueueUrls });

try {
  await client.send(new GetQueueUrlCommand({ QueueName: name + "-missing" }));
  out({ step: "missing", error: null });
} catch (e) {
  out({ step: "missing", error: e.name, status: e.$metadata.httpStatusCode });
}
try {
  await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 11 }));
  out({ step: "invalid", error: null });
} catch (e) {
  out({ step: "invalid", error: e.name, status: e.$metadata.httpStatusCode });
}
await client.send(new DeleteQueueCommand({ QueueUrl }));
out({ step: "done" });
