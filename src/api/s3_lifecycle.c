/* api/s3_lifecycle.c -- PutBucketLifecycleConfiguration,
 * GetBucketLifecycleConfiguration, DeleteBucketLifecycle, and the
 * x-amz-expiration header of objects a rule will expire.
 *
 * Why: the rules' grammar, their checks and the sweep that applies them
 * belong to the store (store/lifecycle.c); this file is their wire shape.
 *
 * Invariants:
 *   (1) A configuration is checked (store_lifecycle_parse: MalformedXML,
 *       InvalidArgument, InvalidRequest) before it is stored, as sent, in
 *       the bucket's record under "lifecycle", durably; the GET answers it
 *       back.
 *   (2) x-amz-expiration names the rule that expires the object first:
 *       expiry-date="<RFC 1123>", rule-id="<id>"; CreateMultipartUpload
 *       answers x-amz-abort-date and x-amz-abort-rule-id likewise.
 *
 * Start reading at s3_put_bucket_lifecycle().
 */
#include "api/s3_internal.h"

#include <string.h>

#define LIFECYCLE_CONF "lifecycle"  /* the document's name in the bucket record */

int s3_put_bucket_lifecycle(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  if (req->body.len == 0 || req->body.data == NULL)
    return err_set(e, ERR_MALFORMED_XML, "the request body must be an XML "
                   "<LifecycleConfiguration> document");
  store_lifecycle lc;
  int rc = store_lifecycle_parse(req->body.data, req->body.len, req->arena, &lc, e);
  if (rc != 0)
    return rc;
  const char *text = arena_strndup(req->arena, req->body.data, req->body.len);
  return store_bucket_conf_set(s->st, c->bucket, LIFECYCLE_CONF, text, e);
}

int s3_get_bucket_lifecycle(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *text;
  int rc = store_bucket_conf_get(s->st, c->bucket, LIFECYCLE_CONF, req->arena, &text, e);
  if (rc != 0)
    return rc;
  if (text == NULL)
    return err_set(e, ERR_NO_SUCH_LIFECYCLE, "The lifecycle configuration does not exist");
  http_resp_header(req, "Content-Type", "application/xml");
  if (buf_puts(&req->resp_body, text) != 0)
    return err_set(e, ERR_INTERNAL, "the configuration does not fit the answer");
  return 0;
}

int s3_delete_bucket_lifecycle(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = store_bucket_conf_set(s->st, c->bucket, LIFECYCLE_CONF, NULL, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}

/* The bucket's rules, or false when it has none (or they do not parse). */
static bool rules_of(s3_svc *s, http_req *req, const char *bucket, store_lifecycle *lc)
{
  const char *text;
  err e;
  return store_bucket_conf_get(s->st, bucket, LIFECYCLE_CONF, req->arena, &text, &e) == 0 &&
         text != NULL && store_lifecycle_parse(text, strlen(text), req->arena, lc, &e) == 0;
}

static const char *http_date(int64_t ms)
{
  static _Thread_local char date[30];
  time_format_rfc1123((time_t)(ms / 1000), date);
  return date;
}

void s3_expiration_header(s3_svc *s, http_req *req, const store_object *o)
{
  store_lifecycle lc;
  int64_t when;
  const char *id;
  if (!rules_of(s, req, o->bucket, &lc) || !store_lifecycle_expiry(&lc, o, &when, &id))
    return;
  http_resp_header(req, "x-amz-expiration",
                   arena_sprintf(req->arena, "expiry-date=\"%s\", rule-id=\"%s\"",
                                 http_date(when), id));
}

void s3_abort_date_header(s3_svc *s, http_req *req, const char *bucket, const char *key)
{
  store_lifecycle lc;
  int64_t when;
  const char *id;
  if (!rules_of(s, req, bucket, &lc) ||
      !store_lifecycle_abort_date(&lc, key, time_now_ms(), &when, &id))
    return;
  http_resp_header(req, "x-amz-abort-date", http_date(when));
  http_resp_header(req, "x-amz-abort-rule-id", id);
}
