// tests/e2e/js/s3_acl_lock.mjs -- ACLs, object ownership and object lock
// through the AWS SDK for JavaScript v3: an ACL on an object of a bucket
// that allows them, the refusal under BucketOwnerEnforced, a bucket made
// with object lock, its default retention, a delete refused and then
// allowed with the governance bypass, a legal hold.
//
// Run by tests/e2e/test_s3_versioning_clients.py with TARN_ENDPOINT,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and TARN_BUCKET in the
// environment. Prints one JSON line with what it saw; exits 1 with a message
// on the first failed check.
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectAclCommand,
  GetObjectLegalHoldCommand,
  GetObjectRetentionCommand,
  PutBucketAclCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectLockConfigurationCommand,
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

async function refused(promise) {
  try {
    await promise;
  } catch (e) {
    return e.name;
  }
  return "";
}

const s3 = new S3Client({
  endpoint: env("TARN_ENDPOINT"),
  region: "us-east-1",
  forcePathStyle: true,
  maxAttempts: 1,
});
const base = env("TARN_BUCKET");
const aclBucket = `${base}-acl`;
const enforced = `${base}-enforced`;
const locked = `${base}-lock`;

try {
  // ACLs: allowed once the bucket's ownership is not BucketOwnerEnforced
  await s3.send(new CreateBucketCommand({ Bucket: aclBucket, ObjectOwnership: "ObjectWriter" }));
  await s3.send(new PutObjectCommand({ Bucket: aclBucket, Key: "pub.txt", Body: "hi",
                                       ACL: "public-read" }));
  const acl = await s3.send(new GetObjectAclCommand({ Bucket: aclBucket, Key: "pub.txt" }));
  const grants = (acl.Grants || []).map((g) => [g.Grantee.URI || g.Grantee.ID, g.Permission]);
  await s3.send(new CreateBucketCommand({ Bucket: enforced }));
  const enforcedRefusal = await refused(s3.send(new PutBucketAclCommand({
    Bucket: enforced, ACL: "public-read" })));

  // object lock
  await s3.send(new CreateBucketCommand({ Bucket: locked, ObjectLockEnabledForBucket: true }));
  await s3.send(new PutObjectLockConfigurationCommand({
    Bucket: locked,
    ObjectLockConfiguration: {
      ObjectLockEnabled: "Enabled",
      Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 1 } },
    },
  }));
  const put = await s3.send(new PutObjectCommand({ Bucket: locked, Key: "k", Body: "kept" }));
  check(put.VersionId, "a version id on PUT in a lock bucket");
  const ret = await s3.send(new GetObjectRetentionCommand({
    Bucket: locked, Key: "k", VersionId: put.VersionId }));
  const deleteRefusal = await refused(s3.send(new DeleteObjectCommand({
    Bucket: locked, Key: "k", VersionId: put.VersionId })));
  await s3.send(new PutObjectLegalHoldCommand({
    Bucket: locked, Key: "k", VersionId: put.VersionId, LegalHold: { Status: "ON" } }));
  const hold = await s3.send(new GetObjectLegalHoldCommand({
    Bucket: locked, Key: "k", VersionId: put.VersionId }));
  const heldRefusal = await refused(s3.send(new DeleteObjectCommand({
    Bucket: locked, Key: "k", VersionId: put.VersionId, BypassGovernanceRetention: true })));
  await s3.send(new PutObjectLegalHoldCommand({
    Bucket: locked, Key: "k", VersionId: put.VersionId, LegalHold: { Status: "OFF" } }));
  await s3.send(new DeleteObjectCommand({
    Bucket: locked, Key: "k", VersionId: put.VersionId, BypassGovernanceRetention: true }));
  console.log(JSON.stringify({
    grants, enforcedRefusal, mode: ret.Retention.Mode,
    until: ret.Retention.RetainUntilDate.toISOString(), deleteRefusal,
    hold: hold.LegalHold.Status, heldRefusal, version: put.VersionId,
  }));
} catch (e) {
  console.error(e.stack || String(e));
  process.exit(1);
}
