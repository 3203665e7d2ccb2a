// tests/e2e/js/s3_versions.mjs -- S3 versioning through the AWS SDK for
// JavaScript v3: enable versioning, write two versions, read each back by
// its version id, add a delete marker, list the versions.
//
// Run by tests/e2e/test_s3_versioning_clients.py with TARN_ENDPOINT,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and TARN_BUCKET in the
// environment. Prints one JSON line with what it saw; exits 1 with a message
// on the first failed check.
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set`);
  return v;
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const s3 = new S3Client({
  endpoint: env("TARN_ENDPOINT"),
  region: "us-east-1",
  forcePathStyle: true,
  maxAttempts: 1,
});
const Bucket = env("TARN_BUCKET");
const Key = "js/versioned.txt";

async function text(vid) {
  const r = await s3.send(new GetObjectCommand({ Bucket, Key, VersionId: vid }));
  return { body: await r.Body.transformToString(), vid: r.VersionId };
}

try {
  await s3.send(new CreateBucketCommand({ Bucket }));
  await s3.send(new PutBucketVersioningCommand({
    Bucket, VersioningConfiguration: { Status: "Enabled" } }));
  const st = await s3.send(new GetBucketVersioningCommand({ Bucket }));
  check(st.Status === "Enabled", `versioning status ${st.Status}`);
  const v1 = (await s3.send(new PutObjectCommand({ Bucket, Key, Body: "first" }))).VersionId;
  const v2 = (await s3.send(new PutObjectCommand({ Bucket, Key, Body: "second" }))).VersionId;
  check(v1 && v2 && v1 !== v2, `version ids ${v1} ${v2}`);
  const cur = await text(undefined);
  check(cur.body === "second" && cur.vid === v2, `current ${JSON.stringify(cur)}`);
  const old = await text(v1);
  check(old.body === "first" && old.vid === v1, `old ${JSON.stringify(old)}`);
  const del = await s3.send(new DeleteObjectCommand({ Bucket, Key }));
  check(del.DeleteMarker === true, `delete marker ${del.DeleteMarker}`);
  const l = await s3.send(new ListObjectVersionsCommand({ Bucket }));
  console.log(JSON.stringify({
    v1, v2, marker: del.VersionId,
    versions: (l.Versions || []).map((v) => [v.VersionId, v.IsLatest, v.Size]),
    markers: (l.DeleteMarkers || []).map((m) => [m.VersionId, m.IsLatest]),
  }));
} catch (e) {
  console.error(e.stack || String(e));
  process.exit(1);
}
