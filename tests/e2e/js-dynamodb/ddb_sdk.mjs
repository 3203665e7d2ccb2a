// tests/e2e/js-dynamodb/ddb_sdk.mjs -- DynamoDB through the AWS SDK for
// JavaScript v3 and its DocumentClient (@aws-sdk/lib-dynamodb): prints one
// JSON line per step for tests/e2e/test_dynamodb_js.py to check.
import { DynamoDBClient, CreateTableCommand, DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import {
  DynamoDBDocumentClient, PutCommand, GetCommand, UpdateCommand, QueryCommand, ScanCommand,
  DeleteCommand, BatchWriteCommand, BatchGetCommand, TransactWriteCommand,
} from "@aws-sdk/lib-dynamodb";

const table = process.env.TARN_TABLE;
const client = new DynamoDBClient({
  endpoint: process.env.TARN_ENDPOINT, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
});
const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
const out = (step, o) => console.log(JSON.stringify({ step, ...o }));

await client.send(new CreateTableCommand({
  TableName: table, BillingMode: "PAY_PER_REQUEST",
  AttributeDefinitions: [{ AttributeName: "user", AttributeType: "S" }, { AttributeName: "ts", AttributeType: "N" }],
  KeySchema: [{ AttributeName: "user", KeyType: "HASH" }, { AttributeName: "ts", KeyType: "RANGE" }],
}));
const d = await client.send(new DescribeTableCommand({ TableName: table }));
out("create", { status: d.Table.TableStatus });

await doc.send(new PutCommand({ TableName: table, Item: {
  user: "ann", ts: 1, price: 9.99, tags: new Set(["a", "b"]), nested: { list: [1, "two", null, true] },
} }));
const g = await doc.send(new GetCommand({ TableName: table, Key: { user: "ann", ts: 1 } }));
out("get", { price: g.Item.price, tags: [...g.Item.tags].sort(), nested: g.Item.nested });

const u = await doc.send(new UpdateCommand({
  TableName: table, Key: { user: "ann", ts: 1 },
  UpdateExpression: "SET price = price + :p, #c = if_not_exists(#c, :zero) + :one",
  ExpressionAttributeNames: { "#c": "count" },
  ExpressionAttributeValues: { ":p": 0.01, ":zero": 0, ":one": 1 }, ReturnValues: "ALL_NEW",
}));
out("update", { price: u.Attributes.price, count: u.Attributes.count });

try {
  await doc.send(new PutCommand({ TableName: table, Item: { user: "ann", ts: 1 },
    ConditionExpression: "attribute_not_exists(#u)", ExpressionAttributeNames: { "#u": "user" } }));
  out("condition", { error: null });
} catch (e) {
  out("condition", { error: e.name });
}

await doc.send(new BatchWriteCommand({ RequestItems: { [table]: [2, 3, 4, 5].map((ts) => ({
  PutRequest: { Item: { user: "ann", ts, even: ts % 2 === 0 } } })) } }));
const q = await doc.send(new QueryCommand({
  TableName: table, KeyConditionExpression: "#u = :u AND ts BETWEEN :a AND :b",
  FilterExpression: "even = :t", ExpressionAttributeNames: { "#u": "user" },
  ExpressionAttributeValues: { ":u": "ann", ":a": 2, ":b": 5, ":t": true }, ScanIndexForward: false,
}));
out("query", { ts: q.Items.map((i) => i.ts), count: q.Count, scanned: q.ScannedCount });

const bg = await doc.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: [{ user: "ann", ts: 2 }, { user: "ann", ts: 9 }] } } }));
out("batchget", { n: bg.Responses[table].length });

try {
  await doc.send(new TransactWriteCommand({ TransactItems: [
    { Put: { TableName: table, Item: { user: "bob", ts: 1 } } },
    { ConditionCheck: { TableName: table, Key: { user: "ann", ts: 1 }, ConditionExpression: "price > :x",
      ExpressionAttributeValues: { ":x": 100 } } },
  ] }));
  out("transact", { error: null });
} catch (e) {
  out("transact", { error: e.name, reasons: (e.CancellationReasons || []).map((r) => r.Code) });
}

let items = [];
let start;
do {
  const s = await doc.send(new ScanCommand({ TableName: table, Limit: 2, ExclusiveStartKey: start }));
  items = items.concat(s.Items);
  start = s.LastEvaluatedKey;
} while (start);
out("scan", { n: items.length });

await doc.send(new DeleteCommand({ TableName: table, Key: { user: "ann", ts: 5 } }));
const gone = await doc.send(new GetCommand({ TableName: table, Key: { user: "ann", ts: 5 } }));
out("delete", { item: gone.Item ?? null });
