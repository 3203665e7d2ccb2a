// tests/e2e/js/s3_sdk.mjs -- tarn through the AWS SDK for JavaScript v3, with
// its defaults (CRC32 request checksums; streaming bodies sent as aws-chunked
// with STREAMING-UNSIGNED-PAYLOAD-TRAILER and a checksum trailer).
//
// Run by tests/e2e/test_s3_js.py with TARN_ENDPOINT, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and TARN_BUCKET in the environment. Prints one JSON
// line per object it wrote ({"key", "size", "sha256"}) so the Python side can
// read them back with another client; exits 1 with a message on the first
// failed check.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";

import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

const MiB = 1024 * 1024;

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set`);
  return v;
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// Deterministic bytes: a xorshift stream seeded from the name.
function bytesFor(name, size) {
  let x = 2166136261;
  for (const c of Buffer.from(name)) x = Math.imul(x ^ c, 16777619) >>> 0;
  if (x === 0) x = 1;
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

function crc32b64(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((c ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const md5 = (buf) => createHash("md5").update(buf).digest("hex");

let bucket;
let client;
const sent = []; // the headers each request really went out with (after signing)
const lastSent = (command) => sent.filter((s) => s.command === command).at(-1).headers;

function connect() {
  bucket = env("TARN_BUCKET");
  client = new S3Client({
    endpoint: env("TARN_ENDPOINT"),
    region: "us-east-1",
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: {
      accessKeyId: env("AWS_ACCESS_KEY_ID"),
      secretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
    },
  });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push({ command: context.commandName, headers: { ...args.request.headers } });
      return next(args);
    },
    { step: "deserialize", name: "recordSentHeaders" },
  );
}

function report(key, body) {
  console.log(JSON.stringify({ key, size: body.length, sha256: sha256(body) }));
}

async function readAll(key, extra = {}) {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...extra }));
  return { r, body: Buffer.from(await r.Body.transformToByteArray()) };
}

async function main() {
  connect();
  await client.send(new CreateBucketCommand({ Bucket: bucket }));

  // 1. a Buffer body: the checksum goes in an x-amz-checksum-crc32 header
  const small = bytesFor("js-small", 100_000);
  const put1 = await client.send(new PutObjectCommand({
    Bucket: bucket, Key: "js/buffer.bin", Body: small,
    ContentType: "application/x-js", Metadata: { sdk: "js-v3" },
  }));
  check(put1.ETag === `"${md5(small)}"`, `buffer PutObject ETag ${put1.ETag}`);
  check(lastSent("PutObjectCommand")["x-amz-checksum-crc32"] === crc32b64(small),
    "the SDK sent a CRC32 header");
  report("js/buffer.bin", small);

  // 2. a stream body: aws-chunked, STREAMING-UNSIGNED-PAYLOAD-TRAILER, CRC32 trailer
  const streamed = bytesFor("js-stream", 3 * MiB + 7);
  const put2 = await client.send(new PutObjectCommand({
    Bucket: bucket, Key: "js/stream.bin",
    Body: Readable.from([streamed.subarray(0, MiB), streamed.subarray(MiB)]),
    ContentLength: streamed.length,
  }));
  const h2 = lastSent("PutObjectCommand");
  check(h2["x-amz-content-sha256"] === "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    `stream PutObject sent x-amz-content-sha256 ${h2["x-amz-content-sha256"]}`);
  check(h2["x-amz-trailer"] === "x-amz-checksum-crc32", `x-amz-trailer ${h2["x-amz-trailer"]}`);
  check(put2.ETag === `"${md5(streamed)}"`, `stream PutObject ETag ${put2.ETag}`);
  check(put2.ChecksumCRC32 === crc32b64(streamed), `stream PutObject ChecksumCRC32 ${put2.ChecksumCRC32}`);
  report("js/stream.bin", streamed);

  // 3. read both back, byte for byte
  for (const [key, want] of [["js/buffer.bin", small], ["js/stream.bin", streamed]]) {
    const { r, body } = await readAll(key, { ChecksumMode: "ENABLED" });
    check(Buffer.compare(body, want) === 0, `GetObject ${key} bytes`);
    check(r.ContentLength === want.length, `GetObject ${key} ContentLength ${r.ContentLength}`);
    check(r.ChecksumCRC32 === crc32b64(want), `GetObject ${key} ChecksumCRC32 ${r.ChecksumCRC32}`);
  }
  const { r: g1 } = await readAll("js/buffer.bin");
  check(g1.ContentType === "application/x-js", `ContentType ${g1.ContentType}`);
  check(g1.Metadata?.sdk === "js-v3", `Metadata ${JSON.stringify(g1.Metadata)}`);

  // 4. HeadObject with ChecksumMode ENABLED
  const head = await client.send(new HeadObjectCommand({
    Bucket: bucket, Key: "js/stream.bin", ChecksumMode: "ENABLED",
  }));
  check(head.ContentLength === streamed.length, `HeadObject ContentLength ${head.ContentLength}`);
  check(head.ChecksumCRC32 === crc32b64(streamed), `HeadObject ChecksumCRC32 ${head.ChecksumCRC32}`);
  check(head.ETag === `"${md5(streamed)}"`, `HeadObject ETag ${head.ETag}`);

  // 5. multipart through lib-storage: 12 MiB in 5 MiB parts (5 + 5 + 2)
  const big = bytesFor("js-upload", 12 * MiB);
  const upload = new Upload({
    client,
    params: { Bucket: bucket, Key: "js/upload.bin", Body: big, ContentType: "application/x-big" },
    partSize: 5 * MiB,
    queueSize: 3,
  });
  const done = await upload.done();
  const partMd5s = [0, 1, 2].map((i) =>
    createHash("md5").update(big.subarray(i * 5 * MiB, Math.min((i + 1) * 5 * MiB, big.length))).digest());
  const wantEtag = `"${createHash("md5").update(Buffer.concat(partMd5s)).digest("hex")}-3"`;
  check(done.ETag === wantEtag, `Upload ETag ${done.ETag}, want ${wantEtag}`);
  const { r: g3, body: back } = await readAll("js/upload.bin");
  check(Buffer.compare(back, big) === 0, "multipart object bytes");
  check(g3.ETag === wantEtag, `multipart GetObject ETag ${g3.ETag}`);
  check(g3.ContentType === "application/x-big", `multipart ContentType ${g3.ContentType}`);
  report("js/upload.bin", big);

  // 6. the listing shows the three objects with their sizes
  const list = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "js/" }));
  const got = (list.Contents ?? []).map((o) => `${o.Key}:${o.Size}`).join(",");
  const want = `js/buffer.bin:${small.length},js/stream.bin:${streamed.length},js/upload.bin:${big.length}`;
  check(got === want, `ListObjectsV2 ${got}`);
}

if (process.argv.includes("--self-check")) {
  // Loads the SDK and checks the helpers without a server.
  check(crc32b64(Buffer.from("123456789")) === Buffer.from("cbf43926", "hex").toString("base64"),
    "crc32 of 123456789");
  check(bytesFor("x", 4).length === 4, "bytesFor");
  console.log("self-check ok");
} else {
  main().catch((e) => {
    console.error(`s3_sdk.mjs: ${e.name}: ${e.message}`);
    if (e.$metadata) console.error(JSON.stringify(e.$metadata));
    process.exit(1);
  });
}
