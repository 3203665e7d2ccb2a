// tests/e2e/js/s3_sse_c.mjs -- one SSE-C round trip through the AWS SDK for
// JavaScript v3: PutObject with a customer key (the SDK computes the key's
// MD5 itself), HeadObject and GetObject with it, GetObject without it
// refused.
//
// Run by tests/e2e/test_sse.py with TARN_ENDPOINT, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and TARN_BUCKET set; prints "ok" or exits 1.
import { createHash, randomBytes } from "node:crypto";

import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const client = new S3Client({
  endpoint: process.env.TARN_ENDPOINT,
  region: "us-east-1",
  forcePathStyle: true,
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  },
});
const Bucket = process.env.TARN_BUCKET;
const key = randomBytes(32);
const keyMd5 = createHash("md5").update(key).digest("base64");
const sse = { SSECustomerAlgorithm: "AES256", SSECustomerKey: key };
const body = Buffer.from("js sse-c plaintext marker ".repeat(5000));

await client.send(new CreateBucketCommand({ Bucket }));
const put = await client.send(new PutObjectCommand({ Bucket, Key: "js-c", Body: body, ...sse }));
check(put.SSECustomerKeyMD5 === keyMd5, `put key MD5 ${put.SSECustomerKeyMD5}`);
const head = await client.send(new HeadObjectCommand({ Bucket, Key: "js-c", ...sse }));
check(head.ContentLength === body.length, `head length ${head.ContentLength}`);
const got = await client.send(new GetObjectCommand({ Bucket, Key: "js-c", ...sse }));
const bytes = Buffer.from(await got.Body.transformToByteArray());
check(bytes.equals(body), "the bytes read back differ");
check(got.SSECustomerAlgorithm === "AES256", `get algorithm ${got.SSECustomerAlgorithm}`);
let refused = null;
try {
  await client.send(new GetObjectCommand({ Bucket, Key: "js-c" }));
} catch (e) {
  refused = e;
}
check(refused && refused.$metadata.httpStatusCode === 400, `get without key: ${refused}`);
console.log("ok");
