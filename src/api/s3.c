/* api/s3.c -- the S3 endpoint: addressing, routing, the request life cycle
 * and S3's error documents, plus the helpers the operation files share.
 *
 * Why: S3 clients (the AWS CLI, boto3, the SDKs, rclone, ...) speak REST-XML:
 * the operation is implied by (method, bucket?, key?, query flags, a few
 * headers). This file turns that into one row of a routing table, and the
 * row's handler (s3_bucket.c, s3_object.c, s3_list.c, s3_multipart.c) turns
 * it into calls on the store and an S3-shaped answer.
 *
 * Addressing:
 *   path style     /bucket/key            key = everything after "/bucket/"
 *   virtual host   Host: bucket.localhost[:port], path /key
 *   Only the ".localhost" suffix is recognised for virtual hosts for now;
 *   any other Host means path style. req->path is already percent-decoded,
 *   so a key may hold "//", spaces and any UTF-8.
 *
 * Life cycle of a request (http/http.h):
 *   prepare  parse the address, route to an operation (req->op gets its S3
 *            name), check the key, and for PutObject / UploadPart check the
 *            headers and the bucket or upload, then stream the body into a
 *            store writer through req->sink;
 *   handle   run the operation; a failure becomes an S3 error document;
 *   error    the server's failures (auth, body checks) and prepare's, also
 *            when prepare never ran (the address is parsed again);
 *   cleanup  free the writer: committed bytes are released, uncommitted
 *            ones unlinked.
 *
 * Invariants:
 *   (1) Bad input changes nothing: every check that can fail on the
 *       request's own content runs before the store is changed, and only
 *       handle commits (never a sink, which may see bytes of a body that
 *       later fails its checksum).
 *   (2) Every size a client controls is bounded: keys (1024 bytes), user
 *       metadata (2 KiB), tags (10 per object, 50 per bucket), XML bodies (1 MiB; DeleteObjects and
 *       CompleteMultipartUpload 2 MiB: 10,000 parts with checksums pass 1 MiB),
 *       one PUT (5 GiB), listings (1000 entries), answers (S3_MAX_RESPONSE).
 *   (3) Every request is authorized before it reaches an operation
 *       (authorize()): a bucket policy's Deny refuses everyone; signed
 *       callers need the root key, or their identity policies, or (short
 *       of an explicit Deny there) the bucket policy or an ACL's group
 *       grant; unsigned requests need the bucket policy (s3_policy.c) or an
 *       AllUsers grant of an ACL (s3_acl.c). Besides: the website endpoint
 *       (s3_website.c), which checks the policy on every read; CORS
 *       preflights (OPTIONS, s3_cors.c), which change nothing; and browser
 *       POST uploads (s3_post.c), which carry their own signature over a
 *       policy (or need a bucket policy that lets "*" PutObject).
 *   (4) HEAD answers and 304s carry no body, errors included.
 *
 * Bucket notifications (?notification) are in s3_notify.c, over the
 * events part; every object change carries its origin (request id, access
 * key) to the store's change feed through store_origin_set (s3_handle).
 *
 * Bucket policies (?policy, the anonymous-read grammar), ?policyStatus and
 * ?publicAccessBlock are in s3_policy.c; website configurations (?website)
 * and the website endpoint in s3_website.c; ?cors, preflights and the
 * Access-Control-* headers (added to every answer in s3_handle) in
 * s3_cors.c; ?lifecycle and x-amz-expiration in s3_lifecycle.c (the sweep:
 * store/lifecycle.c).
 *
 * Server-side encryption (SSE-S3, SSE-C, ?encryption) is in s3_sse.c (the
 * cipher: store/crypt.c).
 *
 * ACLs (?acl on buckets and objects, x-amz-acl and x-amz-grant-* on writes)
 * and ?ownershipControls are in s3_acl.c.
 *
 * Versioning (?versioning, ?versions, ?versionId) and object lock
 * (?object-lock, ?retention, ?legal-hold) are in s3_version.c, over
 * store/version.c.
 *
 * Not implemented (501 NotImplemented, naming the subresource): logging,
 * replication, and the rest of S3's subresources.
 *
 * Start reading at s3_prepare() and the routes[] table.
 */
#include "api/s3_internal.h"

#include "api/iam.h"
#include "api/s3control.h"
#include "aws/errors.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/xml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the operations ---- */

static const s3_op op_list_buckets = {"ListBuckets", NULL, s3_list_buckets, 0};
static const s3_op op_create_bucket = {"CreateBucket", NULL, s3_create_bucket, 0};
static const s3_op op_delete_bucket = {"DeleteBucket", NULL, s3_delete_bucket, 0};
static const s3_op op_head_bucket = {"HeadBucket", NULL, s3_head_bucket, 0};
static const s3_op op_get_bucket_location = {"GetBucketLocation", NULL, s3_get_bucket_location, 0};
static const s3_op op_get_bucket_acl = {"GetBucketAcl", NULL, s3_get_acl, 0};
static const s3_op op_get_notification = {"GetBucketNotificationConfiguration", NULL, s3_get_notification, 0};
static const s3_op op_put_notification = {"PutBucketNotificationConfiguration", NULL, s3_put_notification, 0};
static const s3_op op_get_bucket_tagging = {"GetBucketTagging", NULL, s3_get_bucket_tagging, 0};
static const s3_op op_put_bucket_tagging = {"PutBucketTagging", NULL, s3_put_bucket_tagging, 0};
static const s3_op op_delete_bucket_tagging = {"DeleteBucketTagging", NULL, s3_delete_bucket_tagging, 0};
static const s3_op op_list_objects = {"ListObjects", NULL, s3_list_objects, 0};
static const s3_op op_list_objects_v2 = {"ListObjectsV2", NULL, s3_list_objects_v2, 0};
static const s3_op op_list_uploads = {"ListMultipartUploads", NULL, s3_list_uploads, 0};
static const s3_op op_delete_objects = {"DeleteObjects", NULL, s3_delete_objects, S3_DELETE_BODY_MAX};
static const s3_op op_post_object = {"PostObject", s3_post_object_prepare, s3_post_object, 0};
static const s3_op op_put_object = {"PutObject", s3_put_object_prepare, s3_put_object, 0};
static const s3_op op_copy_object = {"CopyObject", NULL, s3_copy_object, 0};
static const s3_op op_get_object = {"GetObject", NULL, s3_get_object, 0};
static const s3_op op_head_object = {"HeadObject", NULL, s3_head_object, 0};
static const s3_op op_delete_object = {"DeleteObject", NULL, s3_delete_object, 0};
static const s3_op op_get_object_acl = {"GetObjectAcl", NULL, s3_get_acl, 0};
static const s3_op op_get_tagging = {"GetObjectTagging", NULL, s3_get_object_tagging, 0};
static const s3_op op_put_tagging = {"PutObjectTagging", NULL, s3_put_object_tagging, 0};
static const s3_op op_delete_tagging = {"DeleteObjectTagging", NULL, s3_delete_object_tagging, 0};
static const s3_op op_create_upload = {"CreateMultipartUpload", NULL, s3_create_upload, 0};
static const s3_op op_upload_part = {"UploadPart", s3_upload_part_prepare, s3_upload_part, 0};
static const s3_op op_upload_part_copy = {"UploadPartCopy", NULL, s3_upload_part_copy, 0};
static const s3_op op_complete_upload = {"CompleteMultipartUpload", NULL, s3_complete_upload, S3_COMPLETE_BODY_MAX};
static const s3_op op_abort_upload = {"AbortMultipartUpload", NULL, s3_abort_upload, 0};
static const s3_op op_list_parts = {"ListParts", NULL, s3_list_parts, 0};
static const s3_op op_select = {"SelectObjectContent", NULL, s3_select_object, 0};
static const s3_op op_get_website = {"GetBucketWebsite", NULL, s3_get_bucket_website, 0};
static const s3_op op_put_website = {"PutBucketWebsite", NULL, s3_put_bucket_website, 0};
static const s3_op op_delete_website = {"DeleteBucketWebsite", NULL, s3_delete_bucket_website, 0};
static const s3_op op_get_policy = {"GetBucketPolicy", NULL, s3_get_bucket_policy, 0};
static const s3_op op_put_policy = {"PutBucketPolicy", NULL, s3_put_bucket_policy, 0};
static const s3_op op_delete_policy = {"DeleteBucketPolicy", NULL, s3_delete_bucket_policy, 0};
static const s3_op op_site = {"WebsiteGet", NULL, s3_site_serve, 0};
static const s3_op op_get_cors = {"GetBucketCors", NULL, s3_get_bucket_cors, 0};
static const s3_op op_put_cors = {"PutBucketCors", NULL, s3_put_bucket_cors, 0};
static const s3_op op_delete_cors = {"DeleteBucketCors", NULL, s3_delete_bucket_cors, 0};
static const s3_op op_preflight = {"PreflightRequest", NULL, s3_cors_preflight, 0};
static const s3_op op_get_lifecycle = {"GetBucketLifecycleConfiguration", NULL, s3_get_bucket_lifecycle, 0};
static const s3_op op_put_lifecycle = {"PutBucketLifecycleConfiguration", NULL, s3_put_bucket_lifecycle, 0};
static const s3_op op_delete_lifecycle = {"DeleteBucketLifecycle", NULL, s3_delete_bucket_lifecycle, 0};
static const s3_op op_get_encryption = {"GetBucketEncryption", NULL, s3_get_bucket_encryption, 0};
static const s3_op op_put_encryption = {"PutBucketEncryption", NULL, s3_put_bucket_encryption, 0};
static const s3_op op_delete_encryption = {"DeleteBucketEncryption", NULL, s3_delete_bucket_encryption, 0};
static const s3_op op_get_pab = {"GetPublicAccessBlock", NULL, s3_get_public_access_block, 0};
static const s3_op op_put_pab = {"PutPublicAccessBlock", NULL, s3_put_public_access_block, 0};
static const s3_op op_delete_pab = {"DeletePublicAccessBlock", NULL, s3_delete_public_access_block, 0};
static const s3_op op_get_policy_status = {"GetBucketPolicyStatus", NULL, s3_get_policy_status, 0};
static const s3_op op_get_attributes = {"GetObjectAttributes", NULL, s3_get_object_attributes, 0};
static const s3_op op_put_bucket_acl = {"PutBucketAcl", NULL, s3_put_acl, 0};
static const s3_op op_put_object_acl = {"PutObjectAcl", NULL, s3_put_acl, 0};
static const s3_op op_get_ownership = {"GetBucketOwnershipControls", NULL, s3_get_ownership, 0};
static const s3_op op_put_ownership = {"PutBucketOwnershipControls", NULL, s3_put_ownership, 0};
static const s3_op op_delete_ownership = {"DeleteBucketOwnershipControls", NULL, s3_delete_ownership, 0};
static const s3_op op_get_versioning = {"GetBucketVersioning", NULL, s3_get_bucket_versioning, 0};
static const s3_op op_put_versioning = {"PutBucketVersioning", NULL, s3_put_bucket_versioning, 0};
static const s3_op op_list_versions = {"ListObjectVersions", NULL, s3_list_object_versions, 0};
static const s3_op op_get_lock_config = {"GetObjectLockConfiguration", NULL, s3_get_object_lock_config, 0};
static const s3_op op_put_lock_config = {"PutObjectLockConfiguration", NULL, s3_put_object_lock_config, 0};
static const s3_op op_get_retention = {"GetObjectRetention", NULL, s3_get_object_retention, 0};
static const s3_op op_put_retention = {"PutObjectRetention", NULL, s3_put_object_retention, 0};
static const s3_op op_get_legal_hold = {"GetObjectLegalHold", NULL, s3_get_object_legal_hold, 0};
static const s3_op op_put_legal_hold = {"PutObjectLegalHold", NULL, s3_put_object_legal_hold, 0};

/* ---- routing ---- */

enum level { AT_SERVICE, AT_BUCKET, AT_OBJECT };

typedef struct route {
  const char *method;
  enum level level;
  const char *param;   /* a query parameter that must be present ("name" or "name=value"), or NULL */
  const char *param2;  /* a second one, or NULL */
  const char *header;  /* a header that must be present, or NULL */
  const s3_op *op;
} route;

/* First match wins: within a (method, level) the rows with parameters come
 * before the plain one. */
static const route routes[] = {
  {"GET",    AT_SERVICE, NULL,          NULL,       NULL,                &op_list_buckets},

  {"GET",    AT_BUCKET,  "location",    NULL,       NULL,                &op_get_bucket_location},
  {"GET",    AT_BUCKET,  "acl",         NULL,       NULL,                &op_get_bucket_acl},
  {"GET",    AT_BUCKET,  "notification", NULL,      NULL,                &op_get_notification},
  {"GET",    AT_BUCKET,  "tagging",     NULL,       NULL,                &op_get_bucket_tagging},
  {"GET",    AT_BUCKET,  "website",     NULL,       NULL,                &op_get_website},
  {"GET",    AT_BUCKET,  "policy",      NULL,       NULL,                &op_get_policy},
  {"GET",    AT_BUCKET,  "cors",        NULL,       NULL,                &op_get_cors},
  {"GET",    AT_BUCKET,  "lifecycle",   NULL,       NULL,                &op_get_lifecycle},
  {"GET",    AT_BUCKET,  "encryption",  NULL,       NULL,                &op_get_encryption},
  {"GET",    AT_BUCKET,  "publicAccessBlock", NULL, NULL,                &op_get_pab},
  {"GET",    AT_BUCKET,  "policyStatus", NULL,      NULL,                &op_get_policy_status},
  {"GET",    AT_BUCKET,  "ownershipControls", NULL, NULL,                &op_get_ownership},
  {"GET",    AT_BUCKET,  "uploads",     NULL,       NULL,                &op_list_uploads},
  {"GET",    AT_BUCKET,  "versioning",  NULL,       NULL,                &op_get_versioning},
  {"GET",    AT_BUCKET,  "versions",    NULL,       NULL,                &op_list_versions},
  {"GET",    AT_BUCKET,  "object-lock", NULL,       NULL,                &op_get_lock_config},
  {"GET",    AT_BUCKET,  "list-type=2", NULL,       NULL,                &op_list_objects_v2},
  {"GET",    AT_BUCKET,  NULL,          NULL,       NULL,                &op_list_objects},
  {"HEAD",   AT_BUCKET,  NULL,          NULL,       NULL,                &op_head_bucket},
  {"PUT",    AT_BUCKET,  "notification", NULL,      NULL,                &op_put_notification},
  {"PUT",    AT_BUCKET,  "tagging",     NULL,       NULL,                &op_put_bucket_tagging},
  {"PUT",    AT_BUCKET,  "website",     NULL,       NULL,                &op_put_website},
  {"PUT",    AT_BUCKET,  "policy",      NULL,       NULL,                &op_put_policy},
  {"PUT",    AT_BUCKET,  "cors",        NULL,       NULL,                &op_put_cors},
  {"PUT",    AT_BUCKET,  "lifecycle",   NULL,       NULL,                &op_put_lifecycle},
  {"PUT",    AT_BUCKET,  "encryption",  NULL,       NULL,                &op_put_encryption},
  {"PUT",    AT_BUCKET,  "publicAccessBlock", NULL, NULL,                &op_put_pab},
  {"PUT",    AT_BUCKET,  "acl",         NULL,       NULL,                &op_put_bucket_acl},
  {"PUT",    AT_BUCKET,  "ownershipControls", NULL, NULL,                &op_put_ownership},
  {"PUT",    AT_BUCKET,  "versioning",  NULL,       NULL,                &op_put_versioning},
  {"PUT",    AT_BUCKET,  "object-lock", NULL,       NULL,                &op_put_lock_config},
  {"PUT",    AT_BUCKET,  NULL,          NULL,       NULL,                &op_create_bucket},
  {"DELETE", AT_BUCKET,  "tagging",     NULL,       NULL,                &op_delete_bucket_tagging},
  {"DELETE", AT_BUCKET,  "website",     NULL,       NULL,                &op_delete_website},
  {"DELETE", AT_BUCKET,  "policy",      NULL,       NULL,                &op_delete_policy},
  {"DELETE", AT_BUCKET,  "cors",        NULL,       NULL,                &op_delete_cors},
  {"DELETE", AT_BUCKET,  "lifecycle",   NULL,       NULL,                &op_delete_lifecycle},
  {"DELETE", AT_BUCKET,  "encryption",  NULL,       NULL,                &op_delete_encryption},
  {"DELETE", AT_BUCKET,  "publicAccessBlock", NULL, NULL,                &op_delete_pab},
  {"DELETE", AT_BUCKET,  "ownershipControls", NULL, NULL,                &op_delete_ownership},
  {"OPTIONS", AT_BUCKET, NULL,          NULL,       NULL,                &op_preflight},
  {"OPTIONS", AT_OBJECT, NULL,          NULL,       NULL,                &op_preflight},
  {"DELETE", AT_BUCKET,  NULL,          NULL,       NULL,                &op_delete_bucket},
  {"POST",   AT_BUCKET,  "delete",      NULL,       NULL,                &op_delete_objects},
  {"POST",   AT_BUCKET,  NULL,          NULL,       NULL,                &op_post_object},

  {"GET",    AT_OBJECT,  "uploadId",    NULL,       NULL,                &op_list_parts},
  {"GET",    AT_OBJECT,  "tagging",     NULL,       NULL,                &op_get_tagging},
  {"GET",    AT_OBJECT,  "acl",         NULL,       NULL,                &op_get_object_acl},
  {"GET",    AT_OBJECT,  "attributes",  NULL,       NULL,                &op_get_attributes},
  {"GET",    AT_OBJECT,  "retention",   NULL,       NULL,                &op_get_retention},
  {"GET",    AT_OBJECT,  "legal-hold",  NULL,       NULL,                &op_get_legal_hold},
  {"GET",    AT_OBJECT,  "partNumber",  NULL,       NULL,                &op_get_object},
  {"GET",    AT_OBJECT,  NULL,          NULL,       NULL,                &op_get_object},
  {"HEAD",   AT_OBJECT,  "partNumber",  NULL,       NULL,                &op_head_object},
  {"HEAD",   AT_OBJECT,  NULL,          NULL,       NULL,                &op_head_object},
  {"PUT",    AT_OBJECT,  "partNumber",  "uploadId", "x-amz-copy-source", &op_upload_part_copy},
  {"PUT",    AT_OBJECT,  "partNumber",  "uploadId", NULL,                &op_upload_part},
  {"PUT",    AT_OBJECT,  "tagging",     NULL,       NULL,                &op_put_tagging},
  {"PUT",    AT_OBJECT,  "acl",         NULL,       NULL,                &op_put_object_acl},
  {"PUT",    AT_OBJECT,  "retention",   NULL,       NULL,                &op_put_retention},
  {"PUT",    AT_OBJECT,  "legal-hold",  NULL,       NULL,                &op_put_legal_hold},
  {"PUT",    AT_OBJECT,  NULL,          NULL,       "x-amz-copy-source", &op_copy_object},
  {"PUT",    AT_OBJECT,  NULL,          NULL,       NULL,                &op_put_object},
  {"DELETE", AT_OBJECT,  "uploadId",    NULL,       NULL,                &op_abort_upload},
  {"DELETE", AT_OBJECT,  "tagging",     NULL,       NULL,                &op_delete_tagging},
  {"DELETE", AT_OBJECT,  NULL,          NULL,       NULL,                &op_delete_object},
  {"POST",   AT_OBJECT,  "uploads",     NULL,       NULL,                &op_create_upload},
  {"POST",   AT_OBJECT,  "uploadId",    NULL,       NULL,                &op_complete_upload},
  {"POST",   AT_OBJECT,  "select",      NULL,       NULL,                &op_select},
};

/* Query parameters that name an S3 subresource. A request that carries one
 * but matched only a plain row asks for something tarn does not do. */
static const char *const subresources[] = {
  "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption",
  "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location",
  "logging", "metrics", "notification", "object-lock", "ownershipControls",
  "partNumber", "policy", "policyStatus", "publicAccessBlock", "replication",
  "requestPayment", "restore", "retention", "select", "tagging", "torrent",
  "uploadId", "uploads", "versioning", "versions", "website",
};

static bool param_present(const http_req *req, const char *spec)
{
  const char *eq = strchr(spec, '=');
  if (eq == NULL)
    return http_req_has_param(req, spec);
  char name[64];
  size_t n = (size_t)(eq - spec);
  if (n >= sizeof name)
    return false;
  memcpy(name, spec, n);
  name[n] = '\0';
  const char *v = http_req_param(req, name);
  return v != NULL && strcmp(v, eq + 1) == 0;
}

static const char *unsupported_subresource(const http_req *req)
{
  for (size_t i = 0; i < sizeof subresources / sizeof subresources[0]; i++)
    if (http_req_has_param(req, subresources[i]))
      return subresources[i];
  return NULL;
}

static int route_request(http_req *req, s3_call *c, err *e)
{
  enum level level = c->bucket == NULL ? AT_SERVICE : c->key == NULL ? AT_BUCKET : AT_OBJECT;
  static const char *const where[] = {"the service", "a bucket", "an object"};
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    const route *r = &routes[i];
    if (r->level != level || strcmp(r->method, req->method) != 0)
      continue;
    if (r->param != NULL && !param_present(req, r->param))
      continue;
    if (r->param2 != NULL && !param_present(req, r->param2))
      continue;
    if (r->header != NULL && http_req_header(req, r->header) == NULL)
      continue;
    c->op = r->op;
    if (r->param == NULL) {
      const char *sub = unsupported_subresource(req);
      if (sub != NULL)
        return err_set(e, ERR_NOT_IMPLEMENTED, "'%s ?%s' on %s is not implemented by tarn",
                       req->method, sub, where[level]);
    }
    if (r->op->handle == NULL)
      return err_set(e, ERR_NOT_IMPLEMENTED, "%s is not implemented by tarn", r->op->name);
    return 0;
  }
  const char *sub = unsupported_subresource(req);
  if (sub != NULL)
    return err_set(e, ERR_NOT_IMPLEMENTED, "'%s ?%s' on %s is not implemented by tarn",
                   req->method, sub, where[level]);
  return err_set(e, ERR_METHOD_NOT_ALLOWED,
                 "the method '%s' is not allowed against %s", req->method, where[level]);
}

/* ---- addressing ---- */

/* The bucket named by a virtual host ("bucket.localhost[:port]"), or NULL. */
static const char *vhost_bucket(const http_req *req)
{
  const char *host = http_req_header(req, "host");
  if (host == NULL || host[0] == '[')
    return NULL;
  size_t n = strcspn(host, ":");
  static const char suffix[] = ".localhost";
  size_t sl = sizeof suffix - 1;
  if (n <= sl || strncasecmp(host + n - sl, suffix, sl) != 0)
    return NULL;
  size_t label = n - sl;
  char *b = arena_strndup(req->arena, host, label);
  for (char *p = b; *p != '\0'; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  return b;
}

/* Splits the request into bucket and key (either may come out NULL). */
static int address_parse(http_req *req, const char **bucket, const char **key, err *e)
{
  *bucket = NULL;
  *key = NULL;
  const char *path = req->path;
  if (path == NULL || path[0] != '/')
    return err_set(e, ERR_INVALID_REQUEST, "the request path must start with '/'");
  const char *vb = vhost_bucket(req);
  if (vb != NULL) {
    *bucket = vb;
    if (path[1] != '\0')
      *key = path + 1;
    return 0;
  }
  const char *p = path + 1;
  if (*p == '\0')
    return 0;
  const char *slash = strchr(p, '/');
  if (slash == NULL) {
    *bucket = p;
    return 0;
  }
  *bucket = arena_strndup(req->arena, p, (size_t)(slash - p));
  if (slash[1] != '\0')
    *key = slash + 1;
  return 0;
}

/* A NUL in a key cannot survive req->path's C string: look for it in the
 * raw path instead. */
static bool raw_path_has_nul(const http_req *req)
{
  return req->raw_path != NULL && strcasestr(req->raw_path, "%00") != NULL;
}

int s3_key_check(const char *key, err *e)
{
  size_t n = strlen(key);
  if (n > STORE_MAX_KEY)
    return err_set(e, ERR_KEY_TOO_LONG, "your key is too long: %zu bytes, at most %d allowed",
                   n, STORE_MAX_KEY);
  if (!utf8_valid(key, n))
    return err_set(e, ERR_INVALID, "object key is not valid UTF-8");
  return 0;
}

/* ---- access control ---- */

/* The IAM action of each operation (S3's own mapping). */
static const struct {
  const s3_op *op;
  const char *action;
} iam_actions[] = {
    {&op_list_buckets, "s3:ListAllMyBuckets"},       {&op_create_bucket, "s3:CreateBucket"},
    {&op_delete_bucket, "s3:DeleteBucket"},          {&op_head_bucket, "s3:ListBucket"},
    {&op_get_bucket_location, "s3:GetBucketLocation"}, {&op_get_bucket_acl, "s3:GetBucketAcl"},
    {&op_get_notification, "s3:GetBucketNotification"},
    {&op_put_notification, "s3:PutBucketNotification"},
    {&op_list_objects, "s3:ListBucket"},             {&op_list_objects_v2, "s3:ListBucket"},
    {&op_list_uploads, "s3:ListBucketMultipartUploads"},
    {&op_delete_objects, "s3:DeleteObject"},         {&op_post_object, "s3:PutObject"},
    {&op_put_object, "s3:PutObject"},                {&op_copy_object, "s3:PutObject"},
    {&op_get_object, "s3:GetObject"},                {&op_head_object, "s3:GetObject"},
    {&op_delete_object, "s3:DeleteObject"},          {&op_get_object_acl, "s3:GetObjectAcl"},
    {&op_get_tagging, "s3:GetObjectTagging"},        {&op_put_tagging, "s3:PutObjectTagging"},
    {&op_delete_tagging, "s3:DeleteObjectTagging"},  {&op_create_upload, "s3:PutObject"},
    {&op_upload_part, "s3:PutObject"},               {&op_upload_part_copy, "s3:PutObject"},
    {&op_complete_upload, "s3:PutObject"},           {&op_abort_upload, "s3:AbortMultipartUpload"},
    {&op_list_parts, "s3:ListMultipartUploadParts"},
    {&op_select, "s3:GetObject"},
    {&op_get_website, "s3:GetBucketWebsite"},        {&op_put_website, "s3:PutBucketWebsite"},
    {&op_delete_website, "s3:DeleteBucketWebsite"},  {&op_get_policy, "s3:GetBucketPolicy"},
    {&op_put_policy, "s3:PutBucketPolicy"},          {&op_delete_policy, "s3:DeleteBucketPolicy"},
    {&op_get_cors, "s3:GetBucketCORS"},              {&op_put_cors, "s3:PutBucketCORS"},
    {&op_delete_cors, "s3:PutBucketCORS"},
    {&op_get_lifecycle, "s3:GetLifecycleConfiguration"},
    {&op_put_lifecycle, "s3:PutLifecycleConfiguration"},
    {&op_delete_lifecycle, "s3:PutLifecycleConfiguration"},
    {&op_get_encryption, "s3:GetEncryptionConfiguration"},
    {&op_put_encryption, "s3:PutEncryptionConfiguration"},
    {&op_delete_encryption, "s3:PutEncryptionConfiguration"},
    {&op_get_pab, "s3:GetBucketPublicAccessBlock"}, {&op_put_pab, "s3:PutBucketPublicAccessBlock"},
    {&op_delete_pab, "s3:PutBucketPublicAccessBlock"},
    {&op_get_policy_status, "s3:GetBucketPolicyStatus"},
    {&op_get_attributes, "s3:GetObjectAttributes"},
    {&op_put_bucket_acl, "s3:PutBucketAcl"},        {&op_put_object_acl, "s3:PutObjectAcl"},
    {&op_get_ownership, "s3:GetBucketOwnershipControls"},
    {&op_put_ownership, "s3:PutBucketOwnershipControls"},
    {&op_delete_ownership, "s3:PutBucketOwnershipControls"},
    {&op_get_versioning, "s3:GetBucketVersioning"}, {&op_put_versioning, "s3:PutBucketVersioning"},
    {&op_list_versions, "s3:ListBucketVersions"},
    {&op_get_lock_config, "s3:GetBucketObjectLockConfiguration"},
    {&op_put_lock_config, "s3:PutBucketObjectLockConfiguration"},
    {&op_get_retention, "s3:GetObjectRetention"},    {&op_put_retention, "s3:PutObjectRetention"},
    {&op_get_legal_hold, "s3:GetObjectLegalHold"},   {&op_put_legal_hold, "s3:PutObjectLegalHold"},
};

/* The IAM action of c and the ARN it acts on. DeleteObjects and PostObject
 * name their keys in the body: they act on every key of the bucket
 * (bucket/\*). */
static void action_of(http_req *req, const s3_call *c, const char **action, const char **res)
{
  *action = "s3:*";
  for (size_t i = 0; i < sizeof iam_actions / sizeof iam_actions[0]; i++)
    if (iam_actions[i].op == c->op)
      *action = iam_actions[i].action;
  /* a version is read or removed for good with its own actions (as S3) */
  if (http_req_param(req, "versionId") != NULL) {
    if (c->op == &op_get_object || c->op == &op_head_object)
      *action = "s3:GetObjectVersion";
    else if (c->op == &op_delete_object)
      *action = "s3:DeleteObjectVersion";
    else if (c->op == &op_get_tagging)
      *action = "s3:GetObjectVersionTagging";
    else if (c->op == &op_put_tagging)
      *action = "s3:PutObjectVersionTagging";
    else if (c->op == &op_delete_tagging)
      *action = "s3:DeleteObjectVersionTagging";
    else if (c->op == &op_get_object_acl)
      *action = "s3:GetObjectVersionAcl";
    else if (c->op == &op_put_object_acl)
      *action = "s3:PutObjectVersionAcl";
    else if (c->op == &op_get_attributes)
      *action = "s3:GetObjectVersionAttributes";
  }
  *res = "*";
  if (c->op == &op_delete_objects || c->op == &op_post_object)
    *res = arena_sprintf(req->arena, "arn:aws:s3:::%s/*", c->bucket);
  else if (c->key != NULL)
    *res = arena_sprintf(req->arena, "arn:aws:s3:::%s/%s", c->bucket, c->key);
  else if (c->bucket != NULL)
    *res = arena_sprintf(req->arena, "arn:aws:s3:::%s", c->bucket);
}

/* Whether the caller may run c, as S3 decides within one account
 * (invariant 3): a matching Deny in the bucket policy refuses everyone
 * (but the policy operations, so that a bad policy can be repaired);
 * the root key may do the rest; another signed caller needs its identity
 * policies (api/iam.c) to allow, or, when they do not explicitly deny, the
 * bucket policy or a group grant of an ACL (s3_acl.c); an unsigned one the
 * bucket policy (unless RestrictPublicBuckets) or an AllUsers grant.
 * CopyObject and UploadPartCopy also need s3:GetObject on their source. */
int s3_access(s3_svc *s, http_req *req, const char *bucket, const char *key, const char *action,
              const char *res, bool policy_op, err *e)
{
  enum s3_policy_decision pd = s3_policy_decide(s, req, bucket, action, res);
  if (pd == S3_POLICY_DENY && !policy_op)
    return err_set(e, ERR_DENIED, "Access Denied: %s on %s is denied by the bucket policy",
                   action, res);
  int rc;
  if (!req->authenticated) {
    if ((pd != S3_POLICY_ALLOW || s3_pab_on(s, req, bucket, "RestrictPublicBuckets")) &&
        !s3_acl_allows(s, req, bucket, key, action, true))
      return err_set(e, ERR_DENIED, "Access Denied: anonymous access needs a bucket policy or "
                     "an ACL that allows it (or sign the request with SigV4)");
  } else if (!req->admin && (rc = api_authorize(req, action, res, e)) != 0) {
    if (rc != ERR_DENIED || api_denied_explicitly(e) ||
        (pd != S3_POLICY_ALLOW && !s3_acl_allows(s, req, bucket, key, action, false)))
      return rc;
    err_clear(e);
  }
  return 0;
}

static int authorize(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *action;
  const char *res;
  action_of(req, c, &action, &res);
  bool policy_op = c->op == &op_get_policy || c->op == &op_put_policy ||
                   c->op == &op_delete_policy;
  int rc = s3_access(s, req, c->bucket, c->key, action, res, policy_op, e);
  if (rc != 0)
    return rc;
  const char *src = http_req_header(req, "x-amz-copy-source");
  if (req->authenticated && !req->admin && src != NULL &&
      (c->op == &op_copy_object || c->op == &op_upload_part_copy)) {
    size_t n;
    char *path = percent_decode(req->arena, src, strlen(src), &n);
    if (path == NULL)
      return 0; /* the copy itself refuses it */
    if (path[0] == '/')
      path++;
    char *q = strstr(path, "?versionId=");
    if (q != NULL)
      *q = '\0';
    rc = api_authorize(req, "s3:GetObject", arena_sprintf(req->arena, "arn:aws:s3:::%s", path), e);
  }
  return rc;
}

/* Requests that need no signature of the usual kind (invariant 3). */
static bool unsigned_ok(const http_req *req, const s3_call *c)
{
  return c->op == &op_preflight ||  /* CORS preflights are never signed */
         (c->op == &op_post_object && !req->authenticated);  /* the form's own signature (s3_post.c) */
}

/* x-amz-storage-class, when sent, must name one of S3's classes; tarn keeps
 * every object in one class, and reports it as STANDARD. */
static int storage_class_check(const http_req *req, err *e)
{
  return s3_storage_class_check(http_req_header(req, "x-amz-storage-class"), e);
}

int s3_storage_class_check(const char *v, err *e)
{
  static const char *const classes[] = {
      "STANDARD",     "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
      "INTELLIGENT_TIERING", "GLACIER",     "DEEP_ARCHIVE", "OUTPOSTS",
      "GLACIER_IR",   "SNOW",               "EXPRESS_ONEZONE"};
  if (v == NULL)
    return 0;
  for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
    if (strcmp(v, classes[i]) == 0)
      return 0;
  return err_set(e, ERR_INVALID_STORAGE_CLASS, "the storage class you specified is not valid: '%.64s'",
                 v);
}

/* ---- the request life cycle ---- */

/* S3 Control (Batch Operations jobs) shares the "s3" scope: its paths go
 * to api/s3control.c. A bucket named v20180820 is reachable only by virtual
 * host. */
static http_service *control_of(s3_svc *s, const http_req *req)
{
  return s->control != NULL && s3control_path(req) ? s->control : NULL;
}

static int s3_prepare(void *ctx, http_req *req, err *e)
{
  s3_svc *s = ctx;
  http_service *ctl = control_of(s, req);
  if (ctl != NULL)
    return ctl->prepare(ctl->ctx, req, e);
  s3_call *c = arena_alloc(req->arena, sizeof *c);
  req->svc = c;
  if (s3_site_address(req, c)) {  /* the website endpoint: anonymous, s3_website.c */
    c->op = &op_site;
    req->op = op_site.name;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
      return err_set(e, ERR_METHOD_NOT_ALLOWED, "The specified method is not allowed against "
                     "this resource.");
    if (raw_path_has_nul(req))
      return err_set(e, ERR_INVALID, "object key must not contain NUL characters");
    return 0;
  }
  int rc = address_parse(req, &c->bucket, &c->key, e);
  if (rc != 0)
    return rc;
  rc = route_request(req, c, e);
  req->op = c->op != NULL ? c->op->name : "Unsupported";
  if (!req->authenticated && rc != 0) {  /* no details for anyone unknown */
    err_clear(e);
    return err_set(e, ERR_DENIED, "Access Denied: anonymous access needs a bucket policy or an "
                   "ACL that allows it (or sign the request with SigV4)");
  }
  if (rc != 0)
    return rc;
  if (!unsigned_ok(req, c) && (rc = authorize(s, req, c, e)) != 0)
    return rc;
  if ((c->op == &op_put_object || c->op == &op_copy_object || c->op == &op_create_upload) &&
      (rc = storage_class_check(req, e)) != 0)
    return rc;
  if (c->key != NULL) {
    if (raw_path_has_nul(req))
      return err_set(e, ERR_INVALID, "object key must not contain NUL characters");
    rc = s3_key_check(c->key, e);
    if (rc != 0)
      return rc;
  }
  /* a complete's x-amz-checksum-* is the whole object's (s3_multipart.c) */
  req->checksum_not_body = c->op == &op_complete_upload;
  http_req_body_max(req, c->op->body_max != 0 ? c->op->body_max : S3_XML_BODY_MAX);
  if (c->op->prepare != NULL && (rc = c->op->prepare(s, req, c, e)) != 0)
    return rc;
  if (c->op == &op_put_object) {  /* x-amz-acl, x-amz-grant-* (s3_acl.c) */
    const char *acl;
    if ((rc = s3_acl_for_write(s, req, c->bucket, &acl, e)) != 0)
      return rc;
    if (acl != NULL)
      s3_acl_meta_add(req, acl, &c->meta, &c->nmeta);
  }
  return 0;
}

void s3_error_doc(http_req *req, const char *bucket, const char *key, const char *upload_id,
                  int status, const char *code, const char *msg)
{
  http_resp_status(req, status);
  buf_reset(&req->resp_body);
  if (strcmp(req->method, "HEAD") == 0 || status == 304)
    return;
  http_resp_header(req, "Content-Type", "application/xml");
  str_pair extra[3];
  size_t nextra = 0;
  if (key != NULL)
    extra[nextra++] = (str_pair){"Key", key};
  if (bucket != NULL)
    extra[nextra++] = (str_pair){"BucketName", bucket};
  if (upload_id != NULL)
    extra[nextra++] = (str_pair){"UploadId", upload_id};
  aws_error_rest_xml(&req->resp_body, code, msg, extra, nextra, req->request_id);
}

static void write_error(http_req *req, const char *bucket, const char *key,
                        const char *upload_id, const err *e)
{
  int code = e != NULL && e->code != 0 ? e->code : ERR_INTERNAL;
  int status = err_http_status(code);
  const char *msg = e != NULL && e->msg[0] != '\0' ? e->msg : err_aws_code(code);
  if (status >= 500 && code != ERR_NOT_IMPLEMENTED)
    msg = "we encountered an internal error, please try again";
  s3_error_doc(req, bucket, key, code == ERR_NO_SUCH_UPLOAD ? upload_id : NULL, status,
               err_aws_code(code), msg);
}

static void s3_error(void *ctx, http_req *req, const err *e)
{
  http_service *ctl = control_of(ctx, req);
  if (ctl != NULL) {
    ctl->error(ctl->ctx, req, e);
    return;
  }
  s3_call *c = req->svc;
  if (c != NULL && c->site_path != NULL) {
    s3_site_error_page(req, c, e);
    return;
  }
  if (c != NULL) {
    write_error(req, c->bucket, c->key, c->upload_id, e);
    if (c->op == &op_post_object)  /* a page's script reads why its upload was refused */
      s3_cors_actual(ctx, req, c);
    return;
  }
  const char *bucket = NULL;
  const char *key = NULL;
  if (address_parse(req, &bucket, &key, NULL) != 0 ||
      (key != NULL && !utf8_valid(key, strlen(key))))
    key = NULL;
  if (bucket != NULL && !utf8_valid(bucket, strlen(bucket)))
    bucket = NULL;
  write_error(req, bucket, key, NULL, e);
}

static void s3_handle(void *ctx, http_req *req)
{
  http_service *ctl = control_of(ctx, req);
  if (ctl != NULL) {
    ctl->handle(ctl->ctx, req);
    return;
  }
  s3_svc *s = ctx;
  s3_call *c = req->svc;
  err e;
  err_clear(&e);
  store_origin origin = {.request_id = req->request_id,
                         .principal = req->authenticated ? req->auth.access_key : NULL,
                         .event = c->op == &op_post_object ? STORE_EVENT_POST : 0};
  store_origin_set(&origin);  /* the change feed records who changed what */
  int rc = c->op->handle(s, req, c, &e);
  store_origin_set(NULL);
  if (c->op != &op_preflight && c->site_path == NULL)
    s3_cors_actual(s, req, c);
  if (rc != 0) {
    if (e.code == 0)
      err_set(&e, rc, "%s failed", c->op->name);
    if (c->site_path != NULL)
      s3_site_error_page(req, c, &e);
    else
      write_error(req, c->bucket, c->key, c->upload_id, &e);
  }
}

static void s3_cleanup(void *ctx, http_req *req)
{
  http_service *ctl = control_of(ctx, req);
  if (ctl != NULL) {
    ctl->cleanup(ctl->ctx, req);
    return;
  }
  s3_call *c = req->svc;
  if (c == NULL)
    return;
  c->writer = store_writer_free(c->writer);
  s3_post_cleanup(c);
  s3_select_cleanup(c);
}

http_service *s3_service_new(store *st)
{
  s3_svc *s = xcalloc(1, sizeof *s);
  s->st = st;
  s->select = s3_select_pool_new();
  s->base.name = "s3";
  s->base.ctx = s;
  s->base.prepare = s3_prepare;
  s->base.handle = s3_handle;
  s->base.error = s3_error;
  s->base.cleanup = s3_cleanup;
  return &s->base;
}

void s3_service_set_events(http_service *svc, struct events_system *ev)
{
  ((s3_svc *)svc->ctx)->ev = ev;
}

void s3_service_set_keys(http_service *svc, sigv4_secret_fn lookup, void *ctx,
                         const char *admin_access_key)
{
  s3_svc *s = svc->ctx;
  s->secret_lookup = lookup;
  s->secret_ctx = ctx;
  s->admin_key = admin_access_key;
}

void s3_service_set_control(http_service *svc, http_service *control)
{
  ((s3_svc *)svc->ctx)->control = control;
}

http_service *s3_service_free(http_service *svc)
{
  if (svc != NULL) {
    s3_svc *s = svc->ctx;
    s->select = s3_select_pool_free(s->select);
    free(s);
  }
  return NULL;
}

/* ---- XML answers ---- */

void s3_xml_open(s3_xml *x, http_req *req, const char *root)
{
  x->b = &req->resp_body;
  x->rc = 0;
  if (x->b->max < S3_MAX_RESPONSE)
    x->b->max = S3_MAX_RESPONSE;
  http_resp_header(req, "Content-Type", "application/xml");
  x->rc = buf_printf(x->b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%s xmlns=\"%s\">",
                     root, S3_XMLNS);
}

void s3_xml_close(s3_xml *x, const char *root)
{
  s3_xml_end(x, root);
}

void s3_xml_start(s3_xml *x, const char *name)
{
  if (x->rc == 0)
    x->rc = buf_printf(x->b, "<%s>", name);
}

void s3_xml_end(s3_xml *x, const char *name)
{
  if (x->rc == 0)
    x->rc = buf_printf(x->b, "</%s>", name);
}

void s3_xml_text(s3_xml *x, const char *name, const char *text)
{
  if (x->rc == 0)
    x->rc = buf_xml_elem(x->b, name, text != NULL ? text : "");
}

void s3_xml_textf(s3_xml *x, const char *name, const char *fmt, ...)
{
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  s3_xml_text(x, name, tmp);
}

void s3_xml_bool(s3_xml *x, const char *name, bool v)
{
  s3_xml_text(x, name, v ? "true" : "false");
}

void s3_xml_time(s3_xml *x, const char *name, int64_t ms)
{
  char t[25];
  time_format_iso8601_ms(ms, t);
  s3_xml_text(x, name, t);
}

void s3_xml_etag(s3_xml *x, const char *name, const char *etag)
{
  if (x->rc != 0)
    return;
  x->rc = buf_printf(x->b, "<%s>&quot;", name);
  if (x->rc == 0)
    x->rc = buf_xml_escape(x->b, etag, strlen(etag));
  if (x->rc == 0)
    x->rc = buf_printf(x->b, "&quot;</%s>", name);
}

void s3_xml_owner(s3_xml *x, const char *name)
{
  s3_xml_start(x, name);
  s3_xml_text(x, "ID", S3_OWNER_ID);
  s3_xml_text(x, "DisplayName", S3_OWNER);
  s3_xml_end(x, name);
}

int s3_xml_done(s3_xml *x, err *e)
{
  if (x->rc == 0)
    return 0;
  buf_reset(x->b);
  return err_set(e, ERR_INTERNAL, "the answer is larger than %u bytes", S3_MAX_RESPONSE);
}

int s3_body_xml(http_req *req, const char *root, xml_node **out, err *e)
{
  if (req->body.len == 0 || req->body.data == NULL)
    return err_set(e, ERR_MALFORMED_XML, "the request body must be an XML <%s> document", root);
  int rc = xml_parse(req->body.data, req->body.len, req->arena, out, e);
  if (rc != 0) {
    e->code = ERR_MALFORMED_XML;
    return err_wrap(e, "the XML you provided was not well-formed");
  }
  if (strcmp((*out)->name, root) != 0)
    return err_set(e, ERR_MALFORMED_XML, "expected the XML root element '%s', got '%s'",
                   root, (*out)->name);
  return 0;
}

/* ---- small helpers ---- */

const char *s3_quote_etag(arena *a, const char *etag)
{
  return arena_sprintf(a, "\"%s\"", etag);
}

const char *s3_unquote_etag(arena *a, const char *etag)
{
  const char *p = etag;
  while (*p == ' ' || *p == '\t')
    p++;
  if (p[0] == 'W' && p[1] == '/')
    p += 2;
  size_t n = strlen(p);
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
    n--;
  if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
    p++;
    n -= 2;
  }
  return arena_strndup(a, p, n);
}

bool s3_parse_long(const char *s, long min, long max, long *out)
{
  if (s == NULL || *s == '\0')
    return false;
  bool neg = false;
  if (*s == '-') {
    neg = true;
    s++;
  }
  if (*s == '\0' || strlen(s) > 18)
    return false;
  long v = 0;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9')
      return false;
    v = v * 10 + (*s - '0');
  }
  if (neg)
    v = -v;
  if (v < min || v > max)
    return false;
  *out = v;
  return true;
}

int s3_encoding_type(http_req *req, err *e)
{
  const char *v = http_req_param(req, "encoding-type");
  if (v == NULL)
    return 0;
  if (str_ieq(v, "url"))
    return 1;
  return err_set(e, ERR_INVALID, "invalid encoding method '%s' specified in request", v);
}

const char *s3_list_enc(http_req *req, bool url, const char *s)
{
  if (!url || s == NULL)
    return s;
  return uri_encode(req->arena, s, strlen(s), true);
}

bool s3_meta_internal(const char *name)
{
  return str_starts(name, "x-tarn-");
}

const char *s3_checksum_xml_name(const char *suffix)
{
  static const char *const names[][2] = {
    {"crc32", "ChecksumCRC32"},   {"crc32c", "ChecksumCRC32C"},
    {"sha1", "ChecksumSHA1"},     {"sha256", "ChecksumSHA256"},
    {"crc64nvme", "ChecksumCRC64NVME"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(names[i][0], suffix) == 0)
      return names[i][1];
  return NULL;
}

/* ---- metadata ---- */

static const char *const system_meta[] = {
  "content-type", "content-encoding", "content-disposition",
  "cache-control", "content-language", "expires", "x-amz-website-redirect-location",
};

static bool is_system_meta(const char *name)
{
  for (size_t i = 0; i < sizeof system_meta / sizeof system_meta[0]; i++)
    if (strcmp(system_meta[i], name) == 0)
      return true;
  return false;
}

/* Content-Encoding without the aws-chunked token (the transfer framing,
 * which S3 does not store); NULL when nothing else is left. A value
 * without the token is kept exactly as given. */
static const char *strip_aws_chunked(arena *a, const char *v)
{
  if (strcasestr(v, "aws-chunked") == NULL)
    return v;
  buf out;
  buf_init(&out, strlen(v) + 1);
  const char *p = v;
  while (*p != '\0') {
    size_t n = strcspn(p, ",");
    const char *t = p;
    size_t tn = n;
    while (tn > 0 && (*t == ' ' || *t == '\t')) {
      t++;
      tn--;
    }
    while (tn > 0 && (t[tn - 1] == ' ' || t[tn - 1] == '\t'))
      tn--;
    if (tn > 0 && !(tn == 11 && strncasecmp(t, "aws-chunked", 11) == 0)) {
      if (out.len > 0)
        (void)buf_puts(&out, ",");
      (void)buf_append(&out, t, tn);
    }
    p += n;
    if (*p == ',')
      p++;
  }
  const char *r = out.len > 0 ? arena_strndup(a, out.data, out.len) : NULL;
  buf_release(&out);
  return r;
}

int s3_meta_from_headers(http_req *req, str_pair **out, size_t *n, err *e)
{
  return s3_meta_from_pairs(req->arena, req->headers, req->nheaders, out, n, e);
}

int s3_meta_from_pairs(arena *a, const str_pair *pairs, size_t npairs, str_pair **out, size_t *n,
                       err *e)
{
  str_pair *m = arena_alloc(a, (npairs + 1) * sizeof *m);
  size_t k = 0;
  size_t user_bytes = 0;
  size_t total = 0;
  bool have_type = false;
  for (size_t i = 0; i < npairs; i++) {
    const char *name = pairs[i].name;
    const char *value = pairs[i].value;
    bool user = str_starts(name, "x-amz-meta-");
    if (!user && !is_system_meta(name))
      continue;
    if (user && name[11] == '\0')
      continue;
    if (strcmp(name, "content-encoding") == 0) {
      value = strip_aws_chunked(a, value);
      if (value == NULL)
        continue;
    }
    if (strcmp(name, "content-type") == 0)
      have_type = true;
    if (strcmp(name, "x-amz-website-redirect-location") == 0 && !str_starts(value, "/") &&
        !str_starts(value, "http://") && !str_starts(value, "https://"))
      return err_set(e, ERR_INVALID_REDIRECT, "the website redirect location must have a prefix "
                     "of 'http://' or 'https://' or '/'");
    if (user)
      user_bytes += strlen(name) - 11 + strlen(value);
    total += strlen(name) + strlen(value);
    size_t j = 0;
    while (j < k && strcmp(m[j].name, name) != 0)
      j++;
    if (j < k) {  /* a repeated header: S3 joins the values with commas */
      m[j].value = arena_sprintf(a, "%s,%s", m[j].value, value);
      continue;
    }
    m[k].name = name;
    m[k].value = value;
    k++;
  }
  if (user_bytes > S3_MAX_USER_META)
    return err_set(e, ERR_METADATA_TOO_LARGE,
                   "your metadata headers exceed the maximum allowed metadata size: "
                   "%zu bytes of x-amz-meta-*, at most %d", user_bytes, S3_MAX_USER_META);
  /* leave room in the store's limit for checksums added later */
  if (total > STORE_MAX_META_BYTES - 1024)
    return err_set(e, ERR_METADATA_TOO_LARGE,
                   "your metadata headers exceed the maximum allowed metadata size: %zu bytes, at most %d",
                   total, STORE_MAX_META_BYTES - 1024);
  if (!have_type) {
    m[k].name = "content-type";
    m[k].value = "binary/octet-stream";
    k++;
  }
  *out = m;
  *n = k;
  return 0;
}

/* ---- tags ---- */

int s3_tags_check(const str_pair *tags, size_t n, err *e)
{
  if (n > STORE_MAX_TAGS)
    return err_set(e, ERR_INVALID_TAG, "object tags cannot be greater than %d", STORE_MAX_TAGS);
  return s3_tagset_check(tags, n, e);
}

int s3_tagset_check(const str_pair *tags, size_t n, err *e)
{
  for (size_t i = 0; i < n; i++) {
    const char *k = tags[i].name;
    const char *v = tags[i].value;
    if (!utf8_valid(k, strlen(k)) || !utf8_valid(v, strlen(v)))
      return err_set(e, ERR_INVALID_TAG, "tags must be valid UTF-8");
    size_t kc = utf8_chars(k);
    if (kc == 0 || kc > S3_MAX_TAG_KEY)
      return err_set(e, ERR_INVALID_TAG, "the TagKey you have provided is invalid: "
                     "1 to %d characters allowed", S3_MAX_TAG_KEY);
    if (utf8_chars(v) > S3_MAX_TAG_VALUE)
      return err_set(e, ERR_INVALID_TAG, "the TagValue you have provided is invalid: "
                     "at most %d characters allowed", S3_MAX_TAG_VALUE);
    if (str_istarts(k, "aws:"))
      return err_set(e, ERR_INVALID_TAG, "your TagKey cannot be prefixed with 'aws:'");
    for (size_t j = 0; j < i; j++)
      if (strcmp(tags[j].name, k) == 0)
        return err_set(e, ERR_INVALID_TAG, "cannot provide multiple tags with the same key '%s'", k);
  }
  return 0;
}

int s3_tagging_write(http_req *req, const str_pair *tags, size_t n, err *e)
{
  s3_xml x;
  s3_xml_open(&x, req, "Tagging");
  s3_xml_start(&x, "TagSet");
  for (size_t i = 0; i < n; i++) {
    s3_xml_start(&x, "Tag");
    s3_xml_text(&x, "Key", tags[i].name);
    s3_xml_text(&x, "Value", tags[i].value);
    s3_xml_end(&x, "Tag");
  }
  s3_xml_end(&x, "TagSet");
  s3_xml_close(&x, "Tagging");
  return s3_xml_done(&x, e);
}

static int tagging_from_xml(arena *a, xml_node *root, size_t max, const char *what, str_pair **out,
                            size_t *n, err *e);

int s3_tagging_parse(http_req *req, size_t max, const char *what, str_pair **out, size_t *n,
                     err *e)
{
  *out = NULL;
  *n = 0;
  xml_node *root;
  int rc = s3_body_xml(req, "Tagging", &root, e);
  if (rc != 0)
    return rc;
  return tagging_from_xml(req->arena, root, max, what, out, n, e);
}

int s3_tagging_parse_text(arena *a, const char *text, size_t len, size_t max, const char *what,
                          str_pair **out, size_t *n, err *e)
{
  *out = NULL;
  *n = 0;
  xml_node *root;
  if (len == 0 || xml_parse(text, len, a, &root, e) != 0) {
    err_clear(e);
    return err_set(e, ERR_MALFORMED_XML, "the XML you provided was not well-formed");
  }
  if (strcmp(root->name, "Tagging") != 0)
    return err_set(e, ERR_MALFORMED_XML, "expected the XML root element 'Tagging', got '%s'",
                   root->name);
  return tagging_from_xml(a, root, max, what, out, n, e);
}

static int tagging_from_xml(arena *a, xml_node *root, size_t max, const char *what, str_pair **out,
                            size_t *n, err *e)
{
  int rc;
  xml_node *set = xml_child(root, "TagSet");
  if (set == NULL)
    return err_set(e, ERR_MALFORMED_XML, "<Tagging> must hold a <TagSet>");
  size_t count = 0;
  for (xml_node *t = xml_child(set, "Tag"); t != NULL; t = xml_next_same(t))
    count++;
  if (count > max)
    return err_set(e, ERR_INVALID_TAG, "%s tags cannot be greater than %zu", what, max);
  str_pair *tags = arena_alloc(a, (count + 1) * sizeof *tags);
  size_t k = 0;
  for (xml_node *t = xml_child(set, "Tag"); t != NULL; t = xml_next_same(t)) {
    xml_node *kn = xml_child(t, "Key");
    xml_node *vn = xml_child(t, "Value");
    if (kn == NULL || vn == NULL)
      return err_set(e, ERR_MALFORMED_XML, "every <Tag> must have a <Key> and a <Value>");
    if (strlen(kn->text) != kn->text_len || strlen(vn->text) != vn->text_len)
      return err_set(e, ERR_INVALID_TAG, "tags must not contain NUL characters");
    tags[k].name = kn->text;
    tags[k].value = vn->text;
    k++;
  }
  rc = s3_tagset_check(tags, k, e);
  if (rc != 0)
    return rc;
  *out = tags;
  *n = k;
  return 0;
}

/* One component of a URL query: '+' is a space, then percent-decoding. */
static const char *query_decode(arena *a, const char *s, size_t n)
{
  char *t = arena_strndup(a, s, n);
  for (char *p = t; *p != '\0'; p++)
    if (*p == '+')
      *p = ' ';
  size_t len = 0;
  char *d = percent_decode(a, t, n, &len);
  if (d == NULL || strlen(d) != len)
    return NULL;
  return d;
}

int s3_tags_from_header(http_req *req, str_pair **out, size_t *n, err *e)
{
  *out = NULL;
  *n = 0;
  const char *h = http_req_header(req, "x-amz-tagging");
  if (h == NULL || *h == '\0')
    return 0;
  size_t cap = 1;
  for (const char *p = h; *p != '\0'; p++)
    if (*p == '&')
      cap++;
  if (cap > 4 * STORE_MAX_TAGS)
    return err_set(e, ERR_INVALID_TAG, "object tags cannot be greater than %d", STORE_MAX_TAGS);
  str_pair *t = arena_alloc(req->arena, cap * sizeof *t);
  size_t k = 0;
  const char *p = h;
  while (*p != '\0') {
    size_t len = strcspn(p, "&");
    if (len > 0) {
      const char *eq = memchr(p, '=', len);
      size_t kl = eq != NULL ? (size_t)(eq - p) : len;
      t[k].name = query_decode(req->arena, p, kl);
      t[k].value = eq != NULL ? query_decode(req->arena, eq + 1, len - kl - 1) : "";
      if (t[k].name == NULL || t[k].value == NULL)
        return err_set(e, ERR_INVALID_TAG, "the x-amz-tagging header is not a valid URL query");
      k++;
    }
    p += len;
    if (*p == '&')
      p++;
  }
  int rc = s3_tags_check(t, k, e);
  if (rc != 0)
    return rc;
  *out = t;
  *n = k;
  return 0;
}

/* ---- conditions ---- */

/* True when the comma-separated entity-tag list names etag (or is "*"). */
static bool etag_list_match(arena *a, const char *list, const char *etag)
{
  const char *p = list;
  while (*p != '\0') {
    size_t n = strcspn(p, ",");
    const char *t = s3_unquote_etag(a, arena_strndup(a, p, n));
    if (strcmp(t, "*") == 0 || strcmp(t, etag) == 0)
      return true;
    p += n;
    if (*p == ',')
      p++;
  }
  return false;
}

static const char *cond_header(http_req *req, const char *prefix, const char *what)
{
  char name[64];
  snprintf(name, sizeof name, "%s%s", prefix, what);
  return http_req_header(req, name);
}

int s3_conditions(http_req *req, const char *prefix, const store_object *o, err *e)
{
  bool copy = strcmp(prefix, "if-") != 0;
  const char *subject = copy ? "copy source" : "object";
  time_t mtime = (time_t)(o->mtime_ms / 1000);
  time_t t;
  const char *im = cond_header(req, prefix, "match");
  const char *inm = cond_header(req, prefix, "none-match");
  const char *ims = cond_header(req, prefix, "modified-since");
  const char *ius = cond_header(req, prefix, "unmodified-since");
  if (im != NULL) {
    if (!etag_list_match(req->arena, im, o->etag))
      return err_set(e, ERR_PRECONDITION, "at least one of the pre-conditions you specified did not hold: "
                     "%s etag does not match If-Match", subject);
  } else if (ius != NULL && time_parse_http(ius, &t) && mtime > t) {
    return err_set(e, ERR_PRECONDITION, "at least one of the pre-conditions you specified did not hold: "
                   "%s modified since If-Unmodified-Since", subject);
  }
  int fail = copy ? ERR_PRECONDITION : ERR_NOT_MODIFIED;
  if (inm != NULL) {
    if (etag_list_match(req->arena, inm, o->etag))
      return err_set(e, fail, "%s etag matches If-None-Match", subject);
  } else if (ims != NULL && time_parse_http(ims, &t) && mtime <= t) {
    return err_set(e, fail, "%s not modified since If-Modified-Since", subject);
  }
  return 0;
}

/* ---- copies and streamed bodies ---- */

int s3_copy_source(http_req *req, const char **bucket, const char **key, err *e)
{
  const char *h = http_req_header(req, "x-amz-copy-source");
  if (h == NULL || *h == '\0')
    return err_set(e, ERR_INVALID, "the x-amz-copy-source header is missing");
  size_t n = strcspn(h, "?");
  size_t len = 0;
  const char *d = percent_decode(req->arena, h, n, &len);
  if (d == NULL || strlen(d) != len)
    return err_set(e, ERR_INVALID, "invalid copy source encoding '%s'", h);
  if (*d == '/')
    d++;
  const char *slash = strchr(d, '/');
  if (slash == NULL || slash == d || slash[1] == '\0')
    return err_set(e, ERR_INVALID, "copy source '%s' must name a bucket and a key", h);
  *bucket = arena_strndup(req->arena, d, (size_t)(slash - d));
  *key = slash + 1;
  return s3_key_check(*key, e);
}

static int sink_write(void *ctx, const void *p, size_t n, err *e)
{
  s3_call *c = ctx;
  if (n > c->max_size - store_writer_size(c->writer))
    return err_set(e, ERR_ENTITY_TOO_LARGE,
                   "your proposed upload exceeds the maximum allowed size of %llu bytes",
                   (unsigned long long)c->max_size);
  return store_writer_write(c->writer, p, n, e);
}

int s3_stream_begin(s3_svc *s, http_req *req, s3_call *c, uint64_t max, err *e)
{
  int64_t declared = req->content_length;
  const char *dl = http_req_header(req, "x-amz-decoded-content-length");
  long v;
  if (dl != NULL) {
    if (!s3_parse_long(dl, 0, (long)(STORE_MAX_OBJECT_SIZE), &v))
      return err_set(e, ERR_INVALID, "invalid x-amz-decoded-content-length '%s'", dl);
    declared = v;
  }
  if (declared > 0 && (uint64_t)declared > max)
    return err_set(e, ERR_ENTITY_TOO_LARGE,
                   "your proposed upload exceeds the maximum allowed size of %llu bytes",
                   (unsigned long long)max);
  int rc = store_writer_new(s->st, &c->writer, e);
  if (rc != 0)
    return rc;
  c->max_size = max;
  c->declared = declared;
  req->sink.write = sink_write;
  req->sink.ctx = c;
  return 0;
}

const char *s3_writer_etag(http_req *req, const s3_call *c)
{
  uint8_t d[MD5_LEN];
  char *hex = arena_alloc(req->arena, 2 * MD5_LEN + 1);
  store_writer_etag_md5(c->writer, d);
  hex_encode(d, MD5_LEN, hex);
  return hex;
}

/* ---- continuation tokens ---- */

const char *s3_token_encode(arena *a, const char *s)
{
  size_t n = strlen(s);
  char *out = arena_alloc(a, base64_encoded_len(n));
  base64_encode((const uint8_t *)s, n, out);
  return out;
}

int s3_token_decode(http_req *req, const char *token, const char **out, err *e)
{
  size_t n = strlen(token);
  uint8_t *d = arena_alloc(req->arena, n + 1);
  long len = base64_decode(token, n, d, n);
  if (len <= 0 || memchr(d, '\0', (size_t)len) != NULL || !utf8_valid((const char *)d, (size_t)len))
    return err_set(e, ERR_INVALID, "the continuation token provided is incorrect");
  d[len] = '\0';
  *out = (const char *)d;
  return 0;
}
