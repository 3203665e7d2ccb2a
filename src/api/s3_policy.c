/* api/s3_policy.c -- bucket policies (PutBucketPolicy, GetBucketPolicy,
 * DeleteBucketPolicy) in the one form tarn acts on: letting anyone read.
 *
 * Why: a static website (s3_website.c) and a plain unsigned GET need a way
 * to say "these objects are public", and S3's way is a bucket policy such
 * as {"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
 * "Resource":"arn:aws:s3:::bucket/\*"}.
 *
 * The grammar kept: Version, Id, and Statement (an object or an array) of
 * Sid, Effect (Allow or Deny), Principal ("*" or {"AWS": "*"} / ["*"]),
 * Action (s3:... patterns, a string or an array) and Resource
 * (arn:aws:s3:::<this bucket>[/pattern], a string or an array). Anything
 * else (other principals, NotAction, Condition, ...) is refused with
 * MalformedPolicy naming it, so a stored policy always means what it says.
 *
 * Invariants:
 *   (1) Every principal is "*": an Allow grants to anonymous callers
 *       (unsigned requests and the website endpoint) and to the account's
 *       signed callers that their identity policies do not explicitly deny
 *       (S3's union within one account); a matching Deny refuses everyone,
 *       the root key included, but for the policy operations themselves
 *       (so that the owner can always repair a policy). s3.c decides.
 *   (2) A Deny statement that matches wins over every Allow.
 *   (3) The document is stored as sent (at most S3_MAX_POLICY bytes) in the
 *       bucket's record under "policy", durably; GetBucketPolicy answers it
 *       back unchanged.
 *   (4) The bucket's PublicAccessBlock (stored under "publicAccessBlock"
 *       as canonical XML) overrides policies as S3's does: with
 *       BlockPublicPolicy a policy that allows anything (every principal
 *       tarn accepts is "*", so every Allow is public) is refused with
 *       AccessDenied; with RestrictPublicBuckets no policy grants anything.
 *       BlockPublicAcls and IgnorePublicAcls are honoured by s3_acl.c.
 *
 * Start reading at s3_put_bucket_policy().
 */
#include "api/s3_internal.h"

#include "base/xml.h"
#include "iam/iam.h"

#include <jansson.h>
#include <string.h>
#include <strings.h>

#define S3_MAX_POLICY (20u << 10)  /* S3's limit on a bucket policy */
#define POLICY_CONF "policy"       /* the document's name in the bucket record */
#define PAB_CONF "publicAccessBlock"

static const char *const pab_flags[] = {"BlockPublicAcls", "IgnorePublicAcls",
                                        "BlockPublicPolicy", "RestrictPublicBuckets"};

bool s3_pab_on(s3_svc *s, http_req *req, const char *bucket, const char *flag)
{
  const char *text;
  err e;
  xml_node *root;
  if (store_bucket_conf_get(s->st, bucket, PAB_CONF, req->arena, &text, &e) != 0 ||
      text == NULL || xml_parse(text, strlen(text), req->arena, &root, &e) != 0)
    return false;
  const char *v = xml_child_text(root, flag);
  return v != NULL && strcmp(v, "true") == 0;
}

/* A stored policy with an Allow statement: public (invariant 4). */
static bool doc_public(json_t *doc)
{
  json_t *st = json_object_get(doc, "Statement");
  if (json_is_object(st)) {
    const char *eff = json_string_value(json_object_get(st, "Effect"));
    return eff != NULL && strcmp(eff, "Allow") == 0;
  }
  size_t i;
  json_t *x;
  json_array_foreach(st, i, x) {
    const char *eff = json_string_value(json_object_get(x, "Effect"));
    if (eff != NULL && strcmp(eff, "Allow") == 0)
      return true;
  }
  return false;
}

static int malformed(err *e, const char *msg)
{
  return err_set(e, ERR_MALFORMED_BUCKET_POLICY, "%s", msg);
}

/* A string or a non-empty array of strings, each passing ok(). */
static int strings_check(json_t *v, const char *bucket, bool (*ok)(const char *, const char *),
                         const char *what, err *e)
{
  if (json_is_string(v))
    return ok(json_string_value(v), bucket) ? 0 : malformed(e, what);
  if (!json_is_array(v) || json_array_size(v) == 0)
    return malformed(e, what);
  size_t i;
  json_t *x;
  json_array_foreach(v, i, x)
    if (!json_is_string(x) || !ok(json_string_value(x), bucket))
      return malformed(e, what);
  return 0;
}

static bool action_ok(const char *a, const char *bucket)
{
  (void)bucket;
  return strcmp(a, "*") == 0 || strncasecmp(a, "s3:", 3) == 0;
}

static bool resource_ok(const char *r, const char *bucket)
{
  static const char arn[] = "arn:aws:s3:::";
  if (strncmp(r, arn, sizeof arn - 1) != 0)
    return false;
  r += sizeof arn - 1;
  size_t n = strlen(bucket);
  return strncmp(r, bucket, n) == 0 && (r[n] == '\0' || r[n] == '/');
}

static bool star(json_t *v)
{
  if (json_is_string(v))
    return strcmp(json_string_value(v), "*") == 0;
  if (json_is_array(v) && json_array_size(v) == 1)
    return star(json_array_get(v, 0));
  return false;
}

static int principal_check(json_t *p, err *e)
{
  if (p == NULL)
    return malformed(e, "Missing required field Principal");
  if (star(p))
    return 0;
  if (json_is_object(p) && json_object_size(p) == 1 && star(json_object_get(p, "AWS")))
    return 0;
  return malformed(e, "Invalid principal in policy: tarn's bucket policies grant to "
                      "\"*\" (anonymous readers) only");
}

static int statement_check(json_t *st, const char *bucket, err *e)
{
  if (!json_is_object(st))
    return malformed(e, "Statement must be an object or an array of objects");
  const char *k;
  json_t *v;
  json_object_foreach(st, k, v) {
    if (strcmp(k, "Sid") != 0 && strcmp(k, "Effect") != 0 && strcmp(k, "Principal") != 0 &&
        strcmp(k, "Action") != 0 && strcmp(k, "Resource") != 0)
      return err_set(e, ERR_MALFORMED_BUCKET_POLICY, "Unknown or unsupported field %.64s", k);
  }
  json_t *effect = json_object_get(st, "Effect");
  if (effect == NULL)
    return malformed(e, "Missing required field Effect");
  if (!json_is_string(effect) || (strcmp(json_string_value(effect), "Allow") != 0 &&
                                  strcmp(json_string_value(effect), "Deny") != 0))
    return malformed(e, "Invalid effect: must be Allow or Deny");
  json_t *sid = json_object_get(st, "Sid");
  if (sid != NULL && !json_is_string(sid))
    return malformed(e, "Sid must be a string");
  int rc = principal_check(json_object_get(st, "Principal"), e);
  if (rc != 0)
    return rc;
  json_t *action = json_object_get(st, "Action");
  if (action == NULL)
    return malformed(e, "Missing required field Action");
  rc = strings_check(action, bucket, action_ok, "Policy has invalid action", e);
  if (rc != 0)
    return rc;
  json_t *res = json_object_get(st, "Resource");
  if (res == NULL)
    return malformed(e, "Missing required field Resource");
  return strings_check(res, bucket, resource_ok, "Policy has invalid resource", e);
}

static int policy_check(json_t *doc, const char *bucket, err *e)
{
  if (!json_is_object(doc))
    return malformed(e, "Policies must be valid JSON and the first byte must be '{'");
  const char *k;
  json_t *v;
  json_object_foreach(doc, k, v) {
    if (strcmp(k, "Version") != 0 && strcmp(k, "Id") != 0 && strcmp(k, "Statement") != 0)
      return err_set(e, ERR_MALFORMED_BUCKET_POLICY, "Unknown field %.64s", k);
  }
  json_t *ver = json_object_get(doc, "Version");
  if (ver != NULL && (!json_is_string(ver) ||
                      (strcmp(json_string_value(ver), "2012-10-17") != 0 &&
                       strcmp(json_string_value(ver), "2008-10-17") != 0)))
    return malformed(e, "The policy must contain a valid version string");
  json_t *st = json_object_get(doc, "Statement");
  if (st == NULL)
    return malformed(e, "Missing required field Statement");
  if (json_is_array(st)) {
    if (json_array_size(st) == 0)
      return malformed(e, "Could not parse the policy: Statement is empty!");
    size_t i;
    json_t *x;
    json_array_foreach(st, i, x) {
      int rc = statement_check(x, bucket, e);
      if (rc != 0)
        return rc;
    }
    return 0;
  }
  return statement_check(st, bucket, e);
}

int s3_put_bucket_policy(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  if (req->body.len > S3_MAX_POLICY)
    return err_set(e, ERR_INVALID_REQUEST, "Policies must be less than %u bytes",
                   S3_MAX_POLICY);
  if (req->body.len == 0 || req->body.data == NULL)
    return malformed(e, "Policies must be valid JSON and the first byte must be '{'");
  if (memchr(req->body.data, '\0', req->body.len) != NULL)
    return malformed(e, "Policies must be valid JSON");
  char *text = arena_strndup(req->arena, req->body.data, req->body.len);
  json_error_t jerr;
  json_t *doc = json_loadb(text, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
  if (doc == NULL)
    return malformed(e, "Policies must be valid JSON and the first byte must be '{'");
  int rc = policy_check(doc, c->bucket, e);
  if (rc == 0 && doc_public(doc) && s3_pab_on(s, req, c->bucket, "BlockPublicPolicy"))
    rc = err_set(e, ERR_DENIED, "Access Denied: the bucket's PublicAccessBlock "
                 "(BlockPublicPolicy) refuses public policies");
  json_decref(doc);
  if (rc == 0)
    rc = store_bucket_conf_set(s->st, c->bucket, POLICY_CONF, text, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}

int s3_get_bucket_policy(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *text;
  int rc = store_bucket_conf_get(s->st, c->bucket, POLICY_CONF, req->arena, &text, e);
  if (rc != 0)
    return rc;
  if (text == NULL)
    return err_set(e, ERR_NO_SUCH_BUCKET_POLICY, "The bucket policy does not exist");
  http_resp_header(req, "Content-Type", "application/json");
  if (buf_puts(&req->resp_body, text) != 0)
    return err_set(e, ERR_INTERNAL, "the policy does not fit the answer");
  return 0;
}

int s3_delete_bucket_policy(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = store_bucket_conf_set(s->st, c->bucket, POLICY_CONF, NULL, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}

/* ---- deciding ---- */

static bool any_match(json_t *v, const char *s, bool nocase)
{
  if (json_is_string(v))
    return iam_wildcard_match(json_string_value(v), s, nocase);
  size_t i;
  json_t *x;
  json_array_foreach(v, i, x)
    if (json_is_string(x) && iam_wildcard_match(json_string_value(x), s, nocase))
      return true;
  return false;
}

enum s3_policy_decision s3_policy_decide(s3_svc *s, http_req *req, const char *bucket,
                                         const char *action, const char *resource)
{
  const char *text;
  err e;
  if (bucket == NULL ||
      store_bucket_conf_get(s->st, bucket, POLICY_CONF, req->arena, &text, &e) != 0 ||
      text == NULL)
    return S3_POLICY_NONE;
  json_t *doc = json_loads(text, 0, NULL);
  if (doc == NULL)
    return S3_POLICY_NONE;
  json_t *st = json_object_get(doc, "Statement");
  json_t *one = json_array();
  if (json_is_object(st)) {
    json_array_append(one, st);
    st = one;
  }
  bool allow = false;
  bool deny = false;
  size_t i;
  json_t *x;
  json_array_foreach(st, i, x) {
    if (!any_match(json_object_get(x, "Action"), action, true) ||
        !any_match(json_object_get(x, "Resource"), resource, false))
      continue;
    const char *effect = json_string_value(json_object_get(x, "Effect"));
    if (effect != NULL && strcmp(effect, "Deny") == 0)
      deny = true;
    else
      allow = true;
  }
  json_decref(one);
  json_decref(doc);
  return deny ? S3_POLICY_DENY : allow ? S3_POLICY_ALLOW : S3_POLICY_NONE;
}

bool s3_policy_public(s3_svc *s, http_req *req, const char *bucket, const char *action,
                      const char *resource)
{
  return s3_policy_decide(s, req, bucket, action, resource) == S3_POLICY_ALLOW &&
         !s3_pab_on(s, req, bucket, "RestrictPublicBuckets");
}

/* ---- PublicAccessBlock and the policy status ---- */

int s3_put_public_access_block(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  xml_node *root;
  int rc = s3_body_xml(req, "PublicAccessBlockConfiguration", &root, e);
  if (rc != 0)
    return rc;
  bool on[4] = {false, false, false, false};
  for (const xml_node *k = root->child; k != NULL; k = k->next) {
    size_t i = 0;
    while (i < 4 && strcmp(k->name, pab_flags[i]) != 0)
      i++;
    if (i == 4 || (strcmp(k->text, "true") != 0 && strcmp(k->text, "false") != 0))
      return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did "
                     "not validate against our published schema");
    on[i] = strcmp(k->text, "true") == 0;
  }
  const char *text = "<PublicAccessBlockConfiguration xmlns=\"" S3_XMLNS "\">";
  for (size_t i = 0; i < 4; i++)
    text = arena_sprintf(req->arena, "%s<%s>%s</%s>", text, pab_flags[i],
                         on[i] ? "true" : "false", pab_flags[i]);
  text = arena_sprintf(req->arena, "%s</PublicAccessBlockConfiguration>", text);
  return store_bucket_conf_set(s->st, c->bucket, PAB_CONF, text, e);
}

int s3_get_public_access_block(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *text;
  int rc = store_bucket_conf_get(s->st, c->bucket, PAB_CONF, req->arena, &text, e);
  if (rc != 0)
    return rc;
  if (text == NULL)
    return err_set(e, ERR_NO_SUCH_PUBLIC_ACCESS_BLOCK, "The public access block configuration "
                   "was not found");
  http_resp_header(req, "Content-Type", "application/xml");
  if (buf_puts(&req->resp_body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n") != 0 ||
      buf_puts(&req->resp_body, text) != 0)
    return err_set(e, ERR_INTERNAL, "the configuration does not fit the answer");
  return 0;
}

int s3_delete_public_access_block(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = store_bucket_conf_set(s->st, c->bucket, PAB_CONF, NULL, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}

int s3_get_policy_status(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *text;
  int rc = store_bucket_conf_get(s->st, c->bucket, POLICY_CONF, req->arena, &text, e);
  if (rc != 0)
    return rc;
  if (text == NULL)
    return err_set(e, ERR_NO_SUCH_BUCKET_POLICY, "The bucket policy does not exist");
  json_t *doc = json_loads(text, 0, NULL);
  bool pub = doc != NULL && doc_public(doc);
  json_decref(doc);
  s3_xml x;
  s3_xml_open(&x, req, "PolicyStatus");
  s3_xml_bool(&x, "IsPublic", pub);
  s3_xml_close(&x, "PolicyStatus");
  return s3_xml_done(&x, e);
}
