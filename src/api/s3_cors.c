/* api/s3_cors.c -- cross-origin resource sharing: PutBucketCors,
 * GetBucketCors, DeleteBucketCors, the preflight OPTIONS request and the
 * Access-Control-* headers on actual requests.
 *
 * Why: browsers (tarn's console, a web page uploading straight to a
 * bucket) only talk to another origin when the server says they may, and
 * S3 says it with the bucket's CORS rules.
 *
 * As S3:
 *   - a rule matches when one AllowedOrigin matches the Origin header
 *     (case-sensitively, with at most one '*' wildcard), the method is one
 *     of its AllowedMethods and, for a preflight, every header named in
 *     Access-Control-Request-Headers matches an AllowedHeader (case-
 *     insensitively, one '*' allowed); the first matching rule answers;
 *   - a preflight needs no signature; without CORS rules, or with none
 *     matching, it is refused with 403 AccessForbidden "CORSResponse: ...";
 *   - an actual request with an Origin that a rule matches gets
 *     Access-Control-Allow-Origin ("*" when the rule allows any origin),
 *     -Allow-Methods, -Expose-Headers, -Max-Age, -Allow-Credentials and
 *     Vary; a request no rule matches is answered without them.
 *
 * Invariants:
 *   (1) The configuration is checked before it is stored (MalformedXML,
 *       InvalidRequest) and stored as sent in the bucket's record under
 *       "cors", durably; GetBucketCors answers it back.
 *   (2) At most CORS_MAX_RULES rules; the document at most S3_XML_BODY_MAX.
 *
 * Start reading at s3_put_bucket_cors() and s3_cors_preflight().
 */
#include "api/s3_internal.h"

#include "base/xml.h"

#include <string.h>
#include <strings.h>

#define CORS_CONF "cors"       /* the document's name in the bucket record */
#define CORS_MAX_RULES 100     /* S3's limit */

static const char *const methods[] = {"GET", "PUT", "HEAD", "POST", "DELETE"};

static int malformed(err *e)
{
  return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                 "validate against our published schema");
}

static size_t stars(const char *s)
{
  size_t n = 0;
  for (; *s != '\0'; s++)
    n += *s == '*';
  return n;
}

static int rule_check(const xml_node *r, err *e)
{
  static const char *const known[] = {"ID", "AllowedMethod", "AllowedOrigin", "AllowedHeader",
                                      "ExposeHeader", "MaxAgeSeconds"};
  for (const xml_node *c = r->child; c != NULL; c = c->next) {
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0] && !ok; i++)
      ok = strcmp(c->name, known[i]) == 0;
    if (!ok)
      return malformed(e);
  }
  if (xml_child(r, "AllowedMethod") == NULL || xml_child(r, "AllowedOrigin") == NULL)
    return malformed(e);
  const char *id = xml_child_text(r, "ID");
  if (id != NULL && strlen(id) > 255)
    return err_set(e, ERR_INVALID, "ID length should not exceed allowed limit of 255");
  for (const xml_node *m = xml_child(r, "AllowedMethod"); m != NULL; m = xml_next_same(m)) {
    bool ok = false;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0] && !ok; i++)
      ok = strcmp(m->text, methods[i]) == 0;
    if (!ok)
      return err_set(e, ERR_INVALID_REQUEST, "Found unsupported HTTP method in CORS config. "
                     "Unsupported method is %.32s", m->text);
  }
  for (const xml_node *o = xml_child(r, "AllowedOrigin"); o != NULL; o = xml_next_same(o))
    if (stars(o->text) > 1)
      return err_set(e, ERR_INVALID_REQUEST, "AllowedOrigin \"%.256s\" can not have more than "
                     "one wildcard.", o->text);
  for (const xml_node *h = xml_child(r, "AllowedHeader"); h != NULL; h = xml_next_same(h))
    if (stars(h->text) > 1)
      return err_set(e, ERR_INVALID_REQUEST, "AllowedHeader \"%.256s\" can not have more than "
                     "one wildcard.", h->text);
  const char *age = xml_child_text(r, "MaxAgeSeconds");
  long v;
  if (age != NULL && !s3_parse_long(age, 0, 2147483647L, &v))
    return malformed(e);
  return 0;
}

int s3_put_bucket_cors(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  xml_node *root;
  int rc = s3_body_xml(req, "CORSConfiguration", &root, e);
  if (rc != 0)
    return rc;
  size_t n = 0;
  for (const xml_node *r = root->child; r != NULL; r = r->next) {
    if (strcmp(r->name, "CORSRule") != 0)
      return malformed(e);
    if ((rc = rule_check(r, e)) != 0)
      return rc;
    n++;
  }
  if (n == 0)
    return malformed(e);
  if (n > CORS_MAX_RULES)
    return err_set(e, ERR_INVALID_REQUEST, "The number of CORS rules should not exceed allowed "
                   "limit of %d rules.", CORS_MAX_RULES);
  const char *text = arena_strndup(req->arena, req->body.data, req->body.len);
  rc = store_bucket_conf_set(s->st, c->bucket, CORS_CONF, text, e);
  if (rc != 0)
    return rc;
  return 0;
}

int s3_get_bucket_cors(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *text;
  int rc = store_bucket_conf_get(s->st, c->bucket, CORS_CONF, req->arena, &text, e);
  if (rc != 0)
    return rc;
  if (text == NULL)
    return err_set(e, ERR_NO_SUCH_CORS, "The CORS configuration does not exist");
  http_resp_header(req, "Content-Type", "application/xml");
  if (buf_puts(&req->resp_body, text) != 0)
    return err_set(e, ERR_INTERNAL, "the configuration does not fit the answer");
  return 0;
}

int s3_delete_bucket_cors(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = store_bucket_conf_set(s->st, c->bucket, CORS_CONF, NULL, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}

/* ---- matching ---- */

/* pattern with at most one '*' against s. */
static bool star_match(const char *pattern, const char *s, bool nocase)
{
  const char *star = strchr(pattern, '*');
  size_t sl = strlen(s);
  if (star == NULL)
    return nocase ? strcasecmp(pattern, s) == 0 : strcmp(pattern, s) == 0;
  size_t pre = (size_t)(star - pattern);
  size_t post = strlen(star + 1);
  if (sl < pre + post)
    return false;
  int (*cmp)(const char *, const char *, size_t) = nocase ? strncasecmp : strncmp;
  return cmp(pattern, s, pre) == 0 && cmp(star + 1, s + sl - post, post) == 0;
}

static bool any_child(const xml_node *r, const char *name, const char *value, bool nocase)
{
  for (const xml_node *x = xml_child(r, name); x != NULL; x = xml_next_same(x))
    if (star_match(x->text, value, nocase))
      return true;
  return false;
}

/* Every comma-separated header of list matches an AllowedHeader. */
static bool headers_allowed(arena *a, const xml_node *r, const char *list)
{
  if (list == NULL)
    return true;
  char *copy = arena_strdup(a, list);
  char *save = NULL;
  for (char *h = strtok_r(copy, ",", &save); h != NULL; h = strtok_r(NULL, ",", &save)) {
    while (*h == ' ' || *h == '\t')
      h++;
    size_t n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
      h[--n] = '\0';
    if (n > 0 && !any_child(r, "AllowedHeader", h, true))
      return false;
  }
  return true;
}

/* The bucket's first rule matching; *configured tells whether it has any. */
static const xml_node *cors_match(s3_svc *s, http_req *req, const char *bucket,
                                  const char *origin, const char *method, const char *headers,
                                  bool *configured)
{
  *configured = false;
  const char *text;
  err e;
  if (store_bucket_conf_get(s->st, bucket, CORS_CONF, req->arena, &text, &e) != 0 ||
      text == NULL)
    return NULL;
  xml_node *root;
  if (xml_parse(text, strlen(text), req->arena, &root, &e) != 0)
    return NULL;
  *configured = true;
  for (const xml_node *r = xml_child(root, "CORSRule"); r != NULL; r = xml_next_same(r)) {
    if (!any_child(r, "AllowedOrigin", origin, false))
      continue;
    bool ok = false;
    for (const xml_node *m = xml_child(r, "AllowedMethod"); m != NULL && !ok;
         m = xml_next_same(m))
      ok = strcmp(m->text, method) == 0;
    if (ok && headers_allowed(req->arena, r, headers))
      return r;
  }
  return NULL;
}

static const char *joined(arena *a, const xml_node *r, const char *name)
{
  const char *out = NULL;
  for (const xml_node *x = xml_child(r, name); x != NULL; x = xml_next_same(x))
    out = out == NULL ? x->text : arena_sprintf(a, "%s, %s", out, x->text);
  return out;
}

/* The headers of a matching rule, common to preflights and actual requests. */
static void rule_headers(http_req *req, const xml_node *r, const char *origin)
{
  bool any = false;
  for (const xml_node *o = xml_child(r, "AllowedOrigin"); o != NULL; o = xml_next_same(o))
    any = any || strcmp(o->text, "*") == 0;
  http_resp_header(req, "Access-Control-Allow-Origin", any ? "*" : origin);
  http_resp_header(req, "Access-Control-Allow-Methods", joined(req->arena, r, "AllowedMethod"));
  const char *expose = joined(req->arena, r, "ExposeHeader");
  if (expose != NULL)
    http_resp_header(req, "Access-Control-Expose-Headers", expose);
  const char *age = xml_child_text(r, "MaxAgeSeconds");
  if (age != NULL)
    http_resp_header(req, "Access-Control-Max-Age", age);
  if (!any)
    http_resp_header(req, "Access-Control-Allow-Credentials", "true");
  http_resp_header(req, "Vary",
                   "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
}

int s3_cors_preflight(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *origin = http_req_header(req, "origin");
  const char *method = http_req_header(req, "access-control-request-method");
  const char *headers = http_req_header(req, "access-control-request-headers");
  if (origin == NULL)
    return err_set(e, ERR_INVALID_REQUEST, "Insufficient information. Origin request header "
                   "needed.");
  if (method == NULL)
    return err_set(e, ERR_INVALID_REQUEST, "Invalid Access-Control-Request-Method: null");
  bool configured;
  const xml_node *r = cors_match(s, req, c->bucket, origin, method, headers, &configured);
  if (!configured)
    return err_set(e, ERR_CORS_FORBIDDEN, "CORSResponse: CORS is not enabled for this bucket.");
  if (r == NULL)
    return err_set(e, ERR_CORS_FORBIDDEN, "CORSResponse: This CORS request is not allowed. "
                   "This is usually because the evalution of Origin, request method / "
                   "Access-Control-Request-Method or Access-Control-Request-Headers are not "
                   "whitelisted by the resource's CORS spec.");
  rule_headers(req, r, origin);
  if (headers != NULL)
    http_resp_header(req, "Access-Control-Allow-Headers", headers);
  http_resp_status(req, 200);
  return 0;
}

void s3_cors_actual(s3_svc *s, http_req *req, s3_call *c)
{
  const char *origin = http_req_header(req, "origin");
  if (origin == NULL || c->bucket == NULL)
    return;
  bool configured;
  const xml_node *r = cors_match(s, req, c->bucket, origin, req->method, NULL, &configured);
  if (r != NULL)
    rule_headers(req, r, origin);
}
