// tests/e2e/js/s3_crc64.mjs -- CRC64NVME checksums through the AWS SDK for
// JavaScript v3 (its own JS implementation of CRC-64/NVME): a PutObject and a
// multipart Upload asking for CRC64NVME, then GetObject with ChecksumMode
// ENABLED, which the SDK validates against the bytes it receives.
//
// Run by tests/e2e/test_s3_checksums.py with TARN_ENDPOINT, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and TARN_BUCKET set. Prints one JSON line per object
// ({"key", "crc64nvme", "type"}); exits 1 on the first failed check.
import {
  GetObjectCommand,
  HeadObjectCommand,
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

function bytes(size, seed) {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const client = new S3Client({
  endpoint: env("TARN_ENDPOINT"),
  region: "us-east-1",
  forcePathStyle: true,
});
const Bucket = env("TARN_BUCKET");

async function readBack(Key, want) {
  const got = await client.send(new GetObjectCommand({ Bucket, Key, ChecksumMode: "ENABLED" }));
  const body = Buffer.from(await got.Body.transformToByteArray());  // validated by the SDK
  check(body.equals(want), `${Key}: the bytes read back differ`);
  check(got.ChecksumCRC64NVME, `${Key}: GetObject answered no ChecksumCRC64NVME`);
  const head = await client.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: "ENABLED" }));
  check(head.ChecksumCRC64NVME === got.ChecksumCRC64NVME, `${Key}: HEAD and GET checksums differ`);
  console.log(JSON.stringify({ key: Key, crc64nvme: got.ChecksumCRC64NVME, type: got.ChecksumType }));
}

const small = bytes(100000, 7);
const put = await client.send(new PutObjectCommand({
  Bucket, Key: "crc/put.bin", Body: small, ChecksumAlgorithm: "CRC64NVME",
}));
check(put.ChecksumCRC64NVME, "PutObject answered no ChecksumCRC64NVME");
await readBack("crc/put.bin", small);

const big = bytes(10 * MiB + 12345, 11);
const up = new Upload({
  client,
  params: { Bucket, Key: "crc/upload.bin", Body: big, ChecksumAlgorithm: "CRC64NVME" },
  partSize: 5 * MiB,
  queueSize: 2,
});
const done = await up.done();
check(done.ChecksumCRC64NVME, "CompleteMultipartUpload answered no ChecksumCRC64NVME");
await readBack("crc/upload.bin", big);
