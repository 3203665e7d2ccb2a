/* api/s3_bucket.c -- S3's bucket operations: ListBuckets, CreateBucket,
 * DeleteBucket, HeadBucket, GetBucketLocation and bucket tagging (ACLs and
 * object ownership: s3_acl.c).
 *
 * Invariants:
 *   (1) tarn has one region, us-east-1: GetBucketLocation answers an empty
 *       LocationConstraint and any LocationConstraint at creation is
 *       accepted (the data is local anyway).
 *   (2) Every bucket belongs to the one owner, the account (S3_OWNER_ID).
 *   (3) Creating a bucket that exists answers 200 when no region or
 *       us-east-1 is asked (S3's legacy us-east-1 behaviour), and 409
 *       BucketAlreadyOwnedByYou with any other LocationConstraint.
 *   (4) Bucket tags (at most 50) live in the bucket's record; a bucket
 *       without tags answers GetBucketTagging with 404 NoSuchTagSet.
 *
 * Start reading at s3_create_bucket().
 */
#include "api/s3_internal.h"

#include "base/xml.h"

#include <string.h>

#define MAX_BUCKETS_PAGE 10000

int s3_list_buckets(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *prefix = http_req_param(req, "prefix");
  const char *token = http_req_param(req, "continuation-token");
  const char *mb = http_req_param(req, "max-buckets");
  long max = MAX_BUCKETS_PAGE;
  if (mb != NULL && !s3_parse_long(mb, 1, MAX_BUCKETS_PAGE, &max))
    return err_set(e, ERR_INVALID, "max-buckets must be an integer between 1 and %d", MAX_BUCKETS_PAGE);
  const char *after = NULL;
  if (token != NULL && *token != '\0') {
    int rc = s3_token_decode(req, token, &after, e);
    if (rc != 0)
      return rc;
  }
  store_bucket *b = NULL;
  size_t n = 0;
  int rc = store_bucket_list(s->st, req->arena, &b, &n, e);
  if (rc != 0)
    return rc;

  s3_xml x;
  s3_xml_open(&x, req, "ListAllMyBucketsResult");
  s3_xml_owner(&x, "Owner");
  s3_xml_start(&x, "Buckets");
  long shown = 0;
  const char *last = NULL;
  bool truncated = false;
  for (size_t i = 0; i < n; i++) {
    if (prefix != NULL && !str_starts(b[i].name, prefix))
      continue;
    if (after != NULL && strcmp(b[i].name, after) <= 0)
      continue;
    if (shown == max) {
      truncated = true;
      break;
    }
    s3_xml_start(&x, "Bucket");
    s3_xml_text(&x, "Name", b[i].name);
    s3_xml_time(&x, "CreationDate", b[i].created_ms);
    s3_xml_end(&x, "Bucket");
    last = b[i].name;
    shown++;
  }
  s3_xml_end(&x, "Buckets");
  if (truncated)
    s3_xml_text(&x, "ContinuationToken", s3_token_encode(req->arena, last));
  if (prefix != NULL)
    s3_xml_text(&x, "Prefix", prefix);
  s3_xml_close(&x, "ListAllMyBucketsResult");
  return s3_xml_done(&x, e);
}

int s3_create_bucket(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  if (!store_bucket_name_valid(c->bucket))
    return err_set(e, ERR_INVALID_BUCKET_NAME, "the specified bucket is not valid: '%s'", c->bucket);
  const char *where = NULL;
  if (req->body.len > 0) {
    xml_node *root;
    int rc = s3_body_xml(req, "CreateBucketConfiguration", &root, e);
    if (rc != 0)
      return rc;
    where = xml_child_text(root, "LocationConstraint");
  }
  str_pair conf[4];  /* created in the bucket's own commit */
  size_t nconf = s3_bucket_lock_conf(req, conf);  /* object lock: s3_version.c */
  int rc = s3_acl_bucket_conf(s, req, c, conf, &nconf, e);  /* ownership, ACL: s3_acl.c */
  if (rc != 0)
    return rc;
  rc = store_bucket_create_conf(s->st, c->bucket, conf, nconf, e);
  if (rc == ERR_BUCKET_EXISTS && (where == NULL || *where == '\0' ||
                                  strcmp(where, S3_REGION) == 0)) {
    err_clear(e);  /* invariant (3): an existing bucket keeps its settings */
    rc = 0;
  }
  if (rc != 0)
    return rc;
  http_resp_headerf(req, "Location", "/%s", c->bucket);
  return 0;
}

int s3_delete_bucket(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = store_bucket_delete(s->st, c->bucket, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}

int s3_head_bucket(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  store_bucket b;
  int rc = store_bucket_get(s->st, c->bucket, req->arena, &b, e);
  if (rc != 0)
    return rc;
  http_resp_header(req, "x-amz-bucket-region", S3_REGION);
  return 0;
}

int s3_get_bucket_location(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  store_bucket b;
  int rc = store_bucket_get(s->st, c->bucket, req->arena, &b, e);
  if (rc != 0)
    return rc;
  s3_xml x;
  s3_xml_open(&x, req, "LocationConstraint");  /* empty: us-east-1 */
  s3_xml_close(&x, "LocationConstraint");
  return s3_xml_done(&x, e);
}

/* ---- bucket tagging ---- */

int s3_get_bucket_tagging(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  str_pair *tags = NULL;
  size_t n = 0;
  int rc = store_bucket_tags_get(s->st, c->bucket, req->arena, &tags, &n, e);
  if (rc != 0)
    return rc;
  if (n == 0)
    return err_set(e, ERR_NO_SUCH_TAG_SET, "the TagSet does not exist");
  return s3_tagging_write(req, tags, n, e);
}

int s3_put_bucket_tagging(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  str_pair *tags;
  size_t n;
  int rc = s3_tagging_parse(req, STORE_MAX_BUCKET_TAGS, "bucket", &tags, &n, e);
  if (rc == 0)
    rc = store_bucket_tags_set(s->st, c->bucket, tags, n, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}

int s3_delete_bucket_tagging(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = store_bucket_tags_set(s->st, c->bucket, NULL, 0, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}
