// tests/e2e/js-streams/streams_sdk.mjs -- Kinesis Data Streams and Firehose
// (AWS JSON 1.1) through the AWS SDK for JavaScript v3, run by
// tests/e2e/test_streams_js.py. Each step prints one JSON line for the test.
import {
  KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, ListShardsCommand,
  PutRecordCommand, PutRecordsCommand, GetShardIteratorCommand, GetRecordsCommand,
  DeleteStreamCommand,
} from "@aws-sdk/client-kinesis";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import {
  FirehoseClient, CreateDeliveryStreamCommand, DescribeDeliveryStreamCommand,
  PutRecordCommand as FhPutRecordCommand, PutRecordBatchCommand,
} from "@aws-sdk/client-firehose";

const config = {
  endpoint: process.env.TARN_ENDPOINT,
  region: "us-east-1",
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  },
  maxAttempts: 1,
};
// The Kinesis client talks HTTP/2 by default (for SubscribeToShard); tarn
// speaks HTTP/1.1, so the client is given the HTTP/1.1 handler, as the
// README says.
const kinesis = new KinesisClient({ ...config, requestHandler: new NodeHttpHandler() });
const firehose = new FirehoseClient(config);
const out = (o) => console.log(JSON.stringify(o));
const stream = process.env.TARN_STREAM;
const text = (b) => Buffer.from(b).toString("utf8");

// --- Kinesis ---
await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 2 }));
let status = "";
for (let i = 0; i < 100 && status !== "ACTIVE"; i++) {
  const d = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
  status = d.StreamDescriptionSummary.StreamStatus;
  if (status !== "ACTIVE") await new Promise((r) => setTimeout(r, 100));
}
out({ step: "create", status });
const one = await kinesis.send(new PutRecordCommand({
  StreamName: stream, PartitionKey: "pk-a", Data: new TextEncoder().encode("first \u2603"),
}));
out({ step: "put", shard: one.ShardId, seq: one.SequenceNumber });
const many = await kinesis.send(new PutRecordsCommand({
  StreamName: stream,
  Records: [0, 1, 2, 3, 4, 5].map((i) => ({
    PartitionKey: `pk-${i}`, Data: new Uint8Array([i, 0, 255, 10]),
  })),
}));
out({ step: "puts", failed: many.FailedRecordCount, n: many.Records.length,
      shards: [...new Set(many.Records.map((r) => r.ShardId))].sort() });
const shards = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
const got = [];
for (const s of shards.Shards) {
  const it = await kinesis.send(new GetShardIteratorCommand({
    StreamName: stream, ShardId: s.ShardId, ShardIteratorType: "TRIM_HORIZON",
  }));
  const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator }));
  for (const rec of r.Records) got.push({ pk: rec.PartitionKey, data: Array.from(rec.Data) });
}
got.sort((a, b) => (a.pk < b.pk ? -1 : 1));
out({ step: "get", shards: shards.Shards.length, records: got });
try {
  await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream + "-missing" }));
  out({ step: "missing", error: null });
} catch (e) {
  out({ step: "missing", error: e.name, status: e.$metadata.httpStatusCode });
}
await kinesis.send(new DeleteStreamCommand({ StreamName: stream }));

// --- Firehose ---
const ds = stream + "-fh";
await firehose.send(new CreateDeliveryStreamCommand({
  DeliveryStreamName: ds, DeliveryStreamType: "DirectPut",
  ExtendedS3DestinationConfiguration: {
    RoleARN: "arn:aws:iam::000000000000:role/firehose",
    BucketARN: "arn:aws:s3:::" + process.env.TARN_BUCKET, Prefix: "js/",
    BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 1 },
  },
}));
const d = await firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: ds }));
out({ step: "fh-create", status: d.DeliveryStreamDescription.DeliveryStreamStatus });
const r1 = await firehose.send(new FhPutRecordCommand({
  DeliveryStreamName: ds, Record: { Data: new TextEncoder().encode("one\n") },
}));
const rb = await firehose.send(new PutRecordBatchCommand({
  DeliveryStreamName: ds,
  Records: ["two\n", "three\n"].map((s) => ({ Data: new TextEncoder().encode(s) })),
}));
out({ step: "fh-put", id: typeof r1.RecordId, failed: rb.FailedPutCount,
      ids: rb.RequestResponses.filter((x) => x.RecordId).length });
try {
  await firehose.send(new PutRecordBatchCommand({ DeliveryStreamName: ds, Records: [] }));
  out({ step: "fh-empty", error: null });
} catch (e) {
  out({ step: "fh-empty", error: e.name, status: e.$metadata.httpStatusCode });
}
