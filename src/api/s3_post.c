/* api/s3_post.c -- POST Object: browser-based uploads with a POST policy
 * (S3's "Browser-Based Uploads Using POST (AWS Signature Version 4)").
 *
 * Why: a web page lets its users upload straight to a bucket with a form a
 * server signed in advance (boto3's generate_presigned_post), without
 * handing out keys. The form's fields say what may be uploaded; the
 * signature is HMAC-SHA256 of the base64 policy under the SigV4 signing
 * key of the credential's scope.
 *
 * The request is unsigned by headers (s3.c lets it through to here). In
 * prepare the form parser (s3_post_form.c) becomes the body's sink. When
 * the file part begins (file_begin) every field has arrived: the key
 * (${filename} expanded), the signature, the policy (expiration,
 * conditions, every field covered) and IAM (s3:PutObject on the object, as
 * the credential's principal) are checked, then a store writer opened; the
 * file's bytes stream into it (never whole in memory) and handle commits
 * the object as PutObject does (metadata, Content-Type, tags, events).
 *
 * Invariants:
 *   (1) No byte is stored before the form is authenticated and authorized,
 *       and nothing is committed before the whole body arrived and the
 *       content-length-range held: a refused upload leaves no object.
 *   (2) A form without x-amz-signature is anonymous: allowed only when the
 *       bucket policy lets "*" s3:PutObject the key (or the request was
 *       signed by header, then IAM decides as for PutObject).
 *
 * Start reading at s3_post_object_prepare().
 */
#include "api/s3_internal.h"
#include "api/s3_post_form.h"

#include "api/iam.h"
#include "base/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POST_POLICY_MAX S3_POST_FIELDS_MAX  /* the base64 policy is one of the fields */

typedef struct s3_post {
  s3_svc *s;
  http_req *req;
  s3_call *c;
  s3_form *form;
  uint64_t len_min;       /* content-length-range */
  uint64_t len_max;
  const char *status;     /* success_action_status, or NULL */
  const char *redirect;   /* success_action_redirect / redirect, or NULL */
  uint64_t body_bytes;    /* received so far, at most POST_BODY_MAX */
} s3_post;

/* x-amz-credential: AKID/yyyymmdd/region/s3/aws4_request. Fills the
 * request's auth as a verified header signature would. */
static int verify_signature(s3_post *p, const char *policy64, err *e)
{
  const s3_form *f = p->form;
  const char *alg = s3_form_field(f, "x-amz-algorithm");
  const char *cred = s3_form_field(f, "x-amz-credential");
  const char *date = s3_form_field(f, "x-amz-date");
  const char *sig = s3_form_field(f, "x-amz-signature");
  if (alg == NULL || strcmp(alg, "AWS4-HMAC-SHA256") != 0)
    return err_set(e, ERR_INVALID, "Only 'AWS4-HMAC-SHA256' is supported for x-amz-algorithm "
                   "(got '%.64s')", alg != NULL ? alg : "");
  if (cred == NULL)
    return err_set(e, ERR_INVALID, "Bucket POST must contain a field named 'x-amz-credential'.  If it "
                   "is specified, please check the order of the fields.");
  if (date == NULL)
    return err_set(e, ERR_INVALID, "Bucket POST must contain a field named 'x-amz-date'.  If it is "
                   "specified, please check the order of the fields.");
  char ak[129];
  char day[9];
  char region[64];
  char svc[32];
  const char *parts[5];
  size_t lens[5];
  size_t np = 0;
  for (const char *q = cred; np < 5;) {
    const char *slash = strchr(q, '/');
    parts[np] = q;
    lens[np] = slash != NULL ? (size_t)(slash - q) : strlen(q);
    np++;
    if (slash == NULL)
      break;
    q = slash + 1;
  }
  if (np != 5 || strchr(parts[4], '/') != NULL || lens[0] == 0 || lens[0] >= sizeof ak ||
      lens[1] != 8 || lens[2] == 0 || lens[2] >= sizeof region || lens[3] >= sizeof svc ||
      strncmp(parts[3], "s3", lens[3]) != 0 || lens[3] != 2 || strcmp(parts[4], "aws4_request") != 0)
    return err_set(e, ERR_INVALID, "Invalid 'x-amz-credential' value: '%.160s'", cred);
  memcpy(ak, parts[0], lens[0]);
  ak[lens[0]] = '\0';
  memcpy(day, parts[1], 8);
  day[8] = '\0';
  memcpy(region, parts[2], lens[2]);
  region[lens[2]] = '\0';
  memcpy(svc, parts[3], lens[3]);
  svc[lens[3]] = '\0';
  time_t t;
  if (!time_parse_iso8601_basic(date, &t) || strncmp(date, day, 8) != 0)
    return err_set(e, ERR_INVALID, "Invalid 'x-amz-date' value: '%.32s' (the credential's date is '%s')",
                   date, day);
  const char *secret = p->s->secret_lookup != NULL ? p->s->secret_lookup(p->s->secret_ctx, ak) : NULL;
  if (secret == NULL)
    return err_set(e, ERR_UNKNOWN_ACCESS_KEY,
                   "The AWS Access Key Id you provided does not exist in our records.");
  uint8_t key[SHA256_LEN];
  sigv4_signing_key(secret, day, region, svc, key);
  uint8_t mac[SHA256_LEN];
  hmac_sha256(key, sizeof key, policy64, strlen(policy64), mac);
  char hex[2 * SHA256_LEN + 1];
  hex_encode(mac, SHA256_LEN, hex);
  if (strlen(sig) != 2 * SHA256_LEN || !mem_equal_ct(hex, sig, 2 * SHA256_LEN))
    return err_set(e, ERR_SIGNATURE, "The request signature we calculated does not match the "
                   "signature you provided. Check your key and signing method.");
  http_req *r = p->req;
  memset(&r->auth, 0, sizeof r->auth);
  snprintf(r->auth.access_key, sizeof r->auth.access_key, "%s", ak);
  snprintf(r->auth.date, sizeof r->auth.date, "%s", day);
  snprintf(r->auth.region, sizeof r->auth.region, "%s", region);
  snprintf(r->auth.service, sizeof r->auth.service, "%s", svc);
  snprintf(r->auth.amz_date, sizeof r->auth.amz_date, "%s", date);
  snprintf(r->auth.signature, sizeof r->auth.signature, "%s", hex);
  memcpy(r->auth.signing_key, key, sizeof key);
  r->authenticated = true;
  r->admin = p->s->admin_key == NULL || strcmp(ak, p->s->admin_key) == 0;
  return 0;
}

/* The policy's base64 text, decoded, checked against the fields. */
static int check_policy(s3_post *p, const char *policy64, const str_pair *fields, size_t n, err *e)
{
  http_req *r = p->req;
  size_t len = strlen(policy64);
  if (len > POST_POLICY_MAX)
    return err_set(e, ERR_INVALID_POLICY_DOCUMENT, "Invalid Policy: the policy is too large");
  uint8_t *doc = arena_alloc(r->arena, len + 1);
  long dn = base64_decode(policy64, len, doc, len);
  if (dn <= 0)
    return err_set(e, ERR_INVALID_POLICY_DOCUMENT, "Invalid Policy: Invalid Base64 Encoding.");
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return s3_post_policy_check(r->arena, (const char *)doc, (size_t)dn, fields, n, p->c->bucket,
                              (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, &p->len_min,
                              &p->len_max, e);
}

/* The file part begins: every field is there. Checks it all, then opens
 * the writer (invariant 1). */
static int file_begin(void *ctx, const char *filename, err *e)
{
  s3_post *p = ctx;
  http_req *r = p->req;
  s3_call *c = p->c;
  int rc;
  size_t n;
  const str_pair *fields0 = s3_form_fields(p->form, &n);
  /* a copy whose key field carries the expanded key */
  str_pair *fields = arena_alloc(r->arena, (n + 1) * sizeof *fields);
  if (n > 0)
    memcpy(fields, fields0, n * sizeof *fields);
  const char *key = NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(fields[i].name, "key") == 0 && key == NULL) {
      const char *raw = fields[i].value;
      const char *at = strstr(raw, "${filename}");
      key = at == NULL ? raw
                       : arena_sprintf(r->arena, "%.*s%s%s", (int)(at - raw), raw, filename,
                                       at + 11);
      fields[i].value = key;
    }
  if (key == NULL)
    return err_set(e, ERR_INVALID, "Bucket POST must contain a field named 'key'.  If it is "
                   "specified, please check the order of the fields.");
  if (key[0] == '\0')
    return err_set(e, ERR_INVALID, "User key must have a length greater than 0.");
  if ((rc = s3_key_check(key, e)) != 0)
    return rc;
  c->key = key;

  const char *policy64 = s3_form_field(p->form, "policy");
  const char *sig = s3_form_field(p->form, "x-amz-signature");
  if (s3_form_field(p->form, "awsaccesskeyid") != NULL || s3_form_field(p->form, "signature") != NULL)
    return err_set(e, ERR_INVALID_REQUEST, "the authorization mechanism you have provided "
                   "(signature version 2) is not supported, please use AWS4-HMAC-SHA256 (boto3: "
                   "Config(signature_version='s3v4'))");
  if (sig != NULL) {
    if (policy64 == NULL)
      return err_set(e, ERR_INVALID, "Bucket POST must contain a field named 'policy'.  If it is "
                     "specified, please check the order of the fields.");
    if ((rc = verify_signature(p, policy64, e)) != 0)
      return rc;
  } else if (policy64 != NULL) {
    return err_set(e, ERR_INVALID, "Bucket POST must contain a field named 'x-amz-signature'.  If "
                   "it is specified, please check the order of the fields.");
  }
  if (policy64 != NULL && (rc = check_policy(p, policy64, fields, n, e)) != 0)
    return rc;

  const char *arn = arena_sprintf(r->arena, "arn:aws:s3:::%s/%s", c->bucket, key);
  if ((rc = s3_access(p->s, r, c->bucket, key, "s3:PutObject", arn, false, e)) != 0)
    return r->authenticated ? rc : err_set(e, ERR_DENIED, "Access Denied");

  /* what PutObject takes from headers, from the fields */
  if ((rc = s3_meta_from_pairs(r->arena, fields, n, &c->meta, &c->nmeta, e)) != 0)
    return rc;
  const char *tagging = s3_form_field(p->form, "tagging");
  if (tagging != NULL &&
      (rc = s3_tagging_parse_text(r->arena, tagging, strlen(tagging), STORE_MAX_TAGS, "object",
                                  &c->tags, &c->ntags, e)) != 0)
    return rc;
  if ((rc = s3_storage_class_check(s3_form_field(p->form, "x-amz-storage-class"), e)) != 0)
    return rc;
  const char *acl = s3_form_field(p->form, "acl");
  if (acl != NULL) {  /* checked as x-amz-acl is (s3_acl.c) */
    const char *text;
    if ((rc = s3_acl_canned_for_write(p->s, r, c->bucket, acl, &text, e)) != 0)
      return rc;
    if (text != NULL)
      s3_acl_meta_add(r, text, &c->meta, &c->nmeta);
  }
  p->status = s3_form_field(p->form, "success_action_status");
  p->redirect = s3_form_field(p->form, "success_action_redirect");
  if (p->redirect == NULL)
    p->redirect = s3_form_field(p->form, "redirect");
  store_bucket b;
  if ((rc = store_bucket_get(p->s->st, c->bucket, r->arena, &b, e)) != 0)
    return rc;
  const char *sse = s3_form_field(p->form, "x-amz-server-side-encryption");
  if ((rc = s3_sse_target_value(p->s, r, c->bucket, sse, &c->sse, e)) != 0 ||
      (rc = store_writer_new(p->s->st, &c->writer, e)) != 0)
    return rc;
  s3_sse_key none = { .given = false };
  return s3_sse_writer(p->s, r, c->writer, c->sse, &none, e);
}

static int too_large(uint64_t max, err *e)
{
  return err_set(e, ERR_ENTITY_TOO_LARGE, "Your proposed upload exceeds the maximum allowed size "
                 "(%llu bytes)", (unsigned long long)max);
}

static int file_data(void *ctx, const void *d, size_t n, err *e)
{
  s3_post *p = ctx;
  uint64_t max = p->len_max < S3_MAX_PUT_SIZE ? p->len_max : S3_MAX_PUT_SIZE;
  if (n > max - store_writer_size(p->c->writer))
    return too_large(max, e);
  return store_writer_write(p->c->writer, d, n, e);
}

/* The whole body: the file, the fields before it and some room for what
 * follows it (read and ignored, but not without end). */
#define POST_BODY_MAX (S3_MAX_PUT_SIZE + 2 * S3_POST_FIELDS_MAX + (64u << 10))

static int sink_write(void *ctx, const void *d, size_t n, err *e)
{
  s3_post *p = ctx;
  p->body_bytes += n;
  if (p->body_bytes > POST_BODY_MAX)
    return too_large(POST_BODY_MAX, e);
  return s3_form_feed(p->form, d, n, e);
}

int s3_post_object_prepare(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  store_bucket b;
  int rc = store_bucket_get(s->st, c->bucket, req->arena, &b, e);
  if (rc != 0)
    return rc;
  s3_post *p = arena_alloc(req->arena, sizeof *p);
  memset(p, 0, sizeof *p);
  p->s = s;
  p->req = req;
  p->c = c;
  p->len_max = UINT64_MAX;
  if (req->content_length > 0 && (uint64_t)req->content_length > POST_BODY_MAX)
    return too_large(POST_BODY_MAX, e);
  s3_form_cb cb = {.file_begin = file_begin, .file_data = file_data, .ctx = p};
  if ((rc = s3_form_new(req->arena, http_req_header(req, "content-type"), &cb, &p->form, e)) != 0)
    return rc;
  c->post = p;
  req->sink.write = sink_write;
  req->sink.ctx = p;
  return 0;
}

void s3_post_cleanup(s3_call *c)
{
  if (c->post != NULL) {
    c->post->form = s3_form_free(c->post->form);
    c->post = NULL;
  }
}

/* A redirect S3 follows: an absolute http(s) URL. */
static bool redirect_ok(const char *u)
{
  return u != NULL && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) &&
         strpbrk(u, "\r\n") == NULL;
}

int s3_post_object(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  s3_post *p = c->post;
  int rc = s3_form_finish(p->form, e);
  if (rc != 0)
    return rc;
  uint64_t size = store_writer_size(c->writer);
  if (size < p->len_min)
    return err_set(e, ERR_ENTITY_TOO_SMALL, "Your proposed upload is smaller than the minimum "
                   "allowed size (%llu bytes)", (unsigned long long)p->len_min);
  if (size > p->len_max)
    return too_large(p->len_max, e);
  const char *etag = s3_writer_etag(req, c);
  store_object o;
  if ((rc = store_object_commit(c->writer, c->bucket, c->key, etag, c->meta, c->nmeta, c->tags,
                                c->ntags, req->arena, &o, e)) != 0)
    return rc;
  const char *qetag = s3_quote_etag(req->arena, etag);
  const char *host = http_req_header(req, "host");
  const char *ekey = uri_encode(req->arena, c->key, strlen(c->key), true);
  const char *location = arena_sprintf(req->arena, "http://%s/%s/%s", host != NULL ? host : "localhost",
                                       c->bucket, ekey);
  http_resp_header(req, "ETag", qetag);
  s3_sse_answer(req, c->sse, NULL);
  s3_expiration_header(s, req, &o);
  if (o.version_id != NULL)
    http_resp_header(req, "x-amz-version-id", o.version_id);
  if (redirect_ok(p->redirect)) {
    const char *u = p->redirect;
    const char *sep = strchr(u, '?') != NULL ? "&" : "?";
    http_resp_status(req, 303);
    http_resp_header(req, "Location",
                     arena_sprintf(req->arena, "%s%sbucket=%s&key=%s&etag=%s", u, sep,
                                   uri_encode(req->arena, c->bucket, strlen(c->bucket), false),
                                   uri_encode(req->arena, c->key, strlen(c->key), false),
                                   uri_encode(req->arena, qetag, strlen(qetag), false)));
    return 0;
  }
  http_resp_header(req, "Location", location);
  const char *st = p->status;
  if (st != NULL && strcmp(st, "201") == 0) {
    http_resp_status(req, 201);
    s3_xml x;
    s3_xml_open(&x, req, "PostResponse");
    s3_xml_text(&x, "Location", location);
    s3_xml_text(&x, "Bucket", c->bucket);
    s3_xml_text(&x, "Key", c->key);
    s3_xml_etag(&x, "ETag", etag);
    s3_xml_close(&x, "PostResponse");
    return s3_xml_done(&x, e);
  }
  http_resp_status(req, st != NULL && strcmp(st, "200") == 0 ? 200 : 204);
  return 0;
}
