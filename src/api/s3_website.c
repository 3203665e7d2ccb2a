/* api/s3_website.c -- static websites from buckets: PutBucketWebsite,
 * GetBucketWebsite, DeleteBucketWebsite, and the website endpoint that
 * serves a bucket's objects to browsers.
 *
 * Why: S3 serves a bucket as a site (index documents, an error document,
 * redirects) on a separate endpoint that browsers reach without
 * signatures. tarn serves it on its own port where the Host header is
 * <bucket>.s3-website.localhost (also s3-website-<region> and
 * s3-website.<region>), and at /_tarn/sites/<bucket>/<key>.
 *
 * The endpoint, as S3's:
 *   - GET and HEAD only (405 otherwise); "" and "dir/" serve the index
 *     document; "dir" answers 302 to "dir/" when dir/<index> exists;
 *   - every read is anonymous: it needs the bucket policy to allow
 *     s3:GetObject to "*" (s3_policy.c), else 403;
 *   - RedirectAllRequestsTo answers 301 for every path; routing rules
 *     (KeyPrefixEquals, HttpErrorCodeReturnedEquals) redirect with their
 *     code (301 unless HttpRedirectCode); an object with
 *     x-amz-website-redirect-location answers 301 to it;
 *   - a 403 or 404 serves the error document with that status when there
 *     is one and it may be read, else S3's HTML error page;
 *   - objects go out through GetObject's path (s3_send_object): the same
 *     metadata headers, conditional requests and Range.
 *
 * Invariants:
 *   (1) The configuration is checked as S3 does (InvalidArgument,
 *       MalformedXML) before anything is stored, and stored in a
 *       canonical form in the bucket's record under "website", durably;
 *       GetBucketWebsite answers that form.
 *   (2) Routing rules: at most SITE_MAX_RULES; keys and host names bounded.
 *   (3) Website answers are HTML or the object: never S3's XML errors.
 *
 * Start reading at s3_put_bucket_website() and s3_site_serve().
 */
#include "api/s3_internal.h"

#include "base/xml.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WEBSITE_CONF "website"  /* the document's name in the bucket record */
#define SITE_MAX_RULES 50        /* S3's limit on routing rules */
#define SITE_MAX_HOST 255

typedef struct site_rule {
  const char *prefix;          /* Condition KeyPrefixEquals, or NULL */
  int on_error;                /* Condition HttpErrorCodeReturnedEquals, or 0 */
  const char *protocol;        /* Redirect: each NULL when absent */
  const char *host;
  const char *replace_prefix;
  const char *replace_key;
  int code;                    /* HttpRedirectCode, 0 when absent (301) */
} site_rule;

typedef struct site_conf {
  const char *index;           /* IndexDocument Suffix */
  const char *error_key;       /* ErrorDocument Key, or NULL */
  const char *all_host;        /* RedirectAllRequestsTo HostName, or NULL */
  const char *all_protocol;    /* its Protocol, or NULL */
  site_rule *rules;
  size_t nrules;
} site_conf;

/* ---- the configuration ---- */

static int invalid(err *e, const char *msg)
{
  return err_set(e, ERR_INVALID, "%s", msg);
}

static bool allowed_children(const xml_node *n, const char *const *names)
{
  for (const xml_node *k = n->child; k != NULL; k = k->next) {
    bool ok = false;
    for (size_t i = 0; names[i] != NULL && !ok; i++)
      ok = strcmp(k->name, names[i]) == 0;
    if (!ok)
      return false;
  }
  return true;
}

static int protocol_check(const char *p, err *e)
{
  if (p != NULL && strcmp(p, "http") != 0 && strcmp(p, "https") != 0)
    return invalid(e, "Invalid protocol, protocol can be http or https. If not defined the "
                      "protocol will be selected automatically.");
  return 0;
}

static int host_check(const char *h, err *e)
{
  if (h != NULL && (*h == '\0' || strlen(h) > SITE_MAX_HOST || strpbrk(h, " /\t\r\n") != NULL))
    return invalid(e, "The HostName is not well formed");
  return 0;
}

static int code_parse(const char *t, long min, long max, int *out)
{
  long v;
  if (t == NULL)
    return 0;
  if (!s3_parse_long(t, min, max, &v))
    return -1;
  *out = (int)v;
  return 0;
}

static int rule_parse(const xml_node *n, site_rule *r, err *e)
{
  static const char *const top[] = {"Condition", "Redirect", NULL};
  static const char *const cond[] = {"KeyPrefixEquals", "HttpErrorCodeReturnedEquals", NULL};
  static const char *const redir[] = {"Protocol", "HostName", "ReplaceKeyPrefixWith",
                                      "ReplaceKeyWith", "HttpRedirectCode", NULL};
  memset(r, 0, sizeof *r);
  if (!allowed_children(n, top))
    return err_set(e, ERR_MALFORMED_XML, "a RoutingRule holds only Condition and Redirect");
  const xml_node *c = xml_child(n, "Condition");
  if (c != NULL) {
    if (!allowed_children(c, cond))
      return err_set(e, ERR_MALFORMED_XML, "unknown element in a RoutingRule's Condition");
    r->prefix = xml_child_text(c, "KeyPrefixEquals");
    const char *code = xml_child_text(c, "HttpErrorCodeReturnedEquals");
    if (r->prefix == NULL && code == NULL)
      return invalid(e, "Condition cannot be empty. To redirect all requests without a "
                        "condition, the condition element shouldn't be present.");
    if (r->prefix != NULL && strlen(r->prefix) > STORE_MAX_KEY)
      return invalid(e, "KeyPrefixEquals is too long");
    if (code_parse(code, 400, 599, &r->on_error) != 0)
      return err_set(e, ERR_INVALID, "The provided HTTP error code (%.16s) is not valid. Valid "
                     "codes are 4XX or 5XX.", code);
  }
  const xml_node *d = xml_child(n, "Redirect");
  if (d == NULL)
    return invalid(e, "A RoutingRule must contain a Redirect");
  if (!allowed_children(d, redir))
    return err_set(e, ERR_MALFORMED_XML, "unknown element in a RoutingRule's Redirect");
  r->protocol = xml_child_text(d, "Protocol");
  r->host = xml_child_text(d, "HostName");
  r->replace_prefix = xml_child_text(d, "ReplaceKeyPrefixWith");
  r->replace_key = xml_child_text(d, "ReplaceKeyWith");
  const char *code = xml_child_text(d, "HttpRedirectCode");
  if (r->protocol == NULL && r->host == NULL && r->replace_prefix == NULL &&
      r->replace_key == NULL && code == NULL)
    return invalid(e, "Redirect must contain at least one of the following: Protocol, "
                      "HostName, ReplaceKeyPrefixWith, ReplaceKeyWith or HttpRedirectCode");
  if (r->replace_prefix != NULL && r->replace_key != NULL)
    return invalid(e, "You can only define ReplaceKeyPrefix or ReplaceKey but not both.");
  if ((r->replace_prefix != NULL && strlen(r->replace_prefix) > STORE_MAX_KEY) ||
      (r->replace_key != NULL && strlen(r->replace_key) > STORE_MAX_KEY))
    return invalid(e, "The replacement key is too long");
  int rc = protocol_check(r->protocol, e);
  if (rc == 0)
    rc = host_check(r->host, e);
  if (rc != 0)
    return rc;
  if (code_parse(code, 301, 399, &r->code) != 0)
    return err_set(e, ERR_INVALID, "The provided HTTP redirect code (%.16s) is not valid. Valid "
                   "codes are 3XX except 300.", code);
  return 0;
}

/* Checks a <WebsiteConfiguration> (invariant (1)); strings stay in the tree. */
static int site_parse(const xml_node *root, arena *a, site_conf *w, err *e)
{
  static const char *const top[] = {"IndexDocument", "ErrorDocument", "RedirectAllRequestsTo",
                                    "RoutingRules", NULL};
  memset(w, 0, sizeof *w);
  if (!allowed_children(root, top))
    return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                   "validate against our published schema");
  const xml_node *all = xml_child(root, "RedirectAllRequestsTo");
  if (all != NULL) {
    if (xml_child(root, "IndexDocument") != NULL || xml_child(root, "ErrorDocument") != NULL ||
        xml_child(root, "RoutingRules") != NULL)
      return invalid(e, "RedirectAllRequestsTo cannot be provided in conjunction with other "
                        "Routing Rules.");
    w->all_host = xml_child_text(all, "HostName");
    w->all_protocol = xml_child_text(all, "Protocol");
    if (w->all_host == NULL)
      return invalid(e, "RedirectAllRequestsTo must contain a HostName");
    int rc = protocol_check(w->all_protocol, e);
    return rc != 0 ? rc : host_check(w->all_host, e);
  }
  const xml_node *idx = xml_child(root, "IndexDocument");
  if (idx == NULL)
    return invalid(e, "A value for IndexDocument Suffix must be provided if "
                      "RedirectAllRequestsTo is empty");
  w->index = xml_child_text(idx, "Suffix");
  if (w->index == NULL || *w->index == '\0' || strchr(w->index, '/') != NULL ||
      strlen(w->index) > STORE_MAX_KEY)
    return invalid(e, "The IndexDocument Suffix is not well formed");
  const xml_node *ed = xml_child(root, "ErrorDocument");
  if (ed != NULL) {
    w->error_key = xml_child_text(ed, "Key");
    if (w->error_key == NULL || *w->error_key == '\0' || strlen(w->error_key) > STORE_MAX_KEY)
      return invalid(e, "The ErrorDocument Key is not well formed");
  }
  const xml_node *rules = xml_child(root, "RoutingRules");
  if (rules != NULL) {
    size_t n = 0;
    for (const xml_node *r = rules->child; r != NULL; r = r->next) {
      if (strcmp(r->name, "RoutingRule") != 0)
        return err_set(e, ERR_MALFORMED_XML, "RoutingRules holds only RoutingRule elements");
      n++;
    }
    if (n > SITE_MAX_RULES)
      return err_set(e, ERR_INVALID, "at most %d RoutingRules are allowed", SITE_MAX_RULES);
    w->rules = arena_alloc(a, (n + 1) * sizeof *w->rules);
    for (const xml_node *r = rules->child; r != NULL; r = r->next) {
      int rc = rule_parse(r, &w->rules[w->nrules], e);
      if (rc != 0)
        return rc;
      w->nrules++;
    }
  }
  return 0;
}

static void elem(buf *b, const char *name, const char *text)
{
  if (text != NULL)
    buf_xml_elem(b, name, text);
}

/* The canonical form (the elements inside <WebsiteConfiguration>). */
static void site_write(buf *b, const site_conf *w)
{
  if (w->all_host != NULL) {
    buf_puts(b, "<RedirectAllRequestsTo>");
    elem(b, "HostName", w->all_host);
    elem(b, "Protocol", w->all_protocol);
    buf_puts(b, "</RedirectAllRequestsTo>");
    return;
  }
  buf_puts(b, "<IndexDocument>");
  elem(b, "Suffix", w->index);
  buf_puts(b, "</IndexDocument>");
  if (w->error_key != NULL) {
    buf_puts(b, "<ErrorDocument>");
    elem(b, "Key", w->error_key);
    buf_puts(b, "</ErrorDocument>");
  }
  if (w->nrules == 0)
    return;
  buf_puts(b, "<RoutingRules>");
  for (size_t i = 0; i < w->nrules; i++) {
    const site_rule *r = &w->rules[i];
    buf_puts(b, "<RoutingRule>");
    if (r->prefix != NULL || r->on_error != 0) {
      buf_puts(b, "<Condition>");
      if (r->on_error != 0)
        buf_printf(b, "<HttpErrorCodeReturnedEquals>%d</HttpErrorCodeReturnedEquals>",
                   r->on_error);
      elem(b, "KeyPrefixEquals", r->prefix);
      buf_puts(b, "</Condition>");
    }
    buf_puts(b, "<Redirect>");
    elem(b, "HostName", r->host);
    if (r->code != 0)
      buf_printf(b, "<HttpRedirectCode>%d</HttpRedirectCode>", r->code);
    elem(b, "Protocol", r->protocol);
    elem(b, "ReplaceKeyPrefixWith", r->replace_prefix);
    elem(b, "ReplaceKeyWith", r->replace_key);
    buf_puts(b, "</Redirect></RoutingRule>");
  }
  buf_puts(b, "</RoutingRules>");
}

/* The stored form back into a site_conf (in a). */
static int site_load(arena *a, const char *inner, site_conf *w, err *e)
{
  const char *doc = arena_sprintf(a, "<WebsiteConfiguration>%s</WebsiteConfiguration>", inner);
  xml_node *root;
  int rc = xml_parse(doc, strlen(doc), a, &root, e);
  if (rc == 0)
    rc = site_parse(root, a, w, e);
  if (rc != 0)
    return err_set(e, ERR_INTERNAL, "the stored website configuration does not parse");
  return 0;
}

int s3_put_bucket_website(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  xml_node *root;
  int rc = s3_body_xml(req, "WebsiteConfiguration", &root, e);
  if (rc != 0)
    return rc;
  site_conf w;
  rc = site_parse(root, req->arena, &w, e);
  if (rc != 0)
    return rc;
  buf b;
  buf_init(&b, STORE_MAX_BUCKET_CONF);
  site_write(&b, &w);
  if (buf_append(&b, "", 1) != 0) {
    buf_release(&b);
    return err_set(e, ERR_INVALID, "the website configuration is larger than %d bytes",
                   STORE_MAX_BUCKET_CONF);
  }
  rc = store_bucket_conf_set(s->st, c->bucket, WEBSITE_CONF, b.data, e);
  buf_release(&b);
  return rc;
}

int s3_get_bucket_website(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *inner;
  int rc = store_bucket_conf_get(s->st, c->bucket, WEBSITE_CONF, req->arena, &inner, e);
  if (rc != 0)
    return rc;
  if (inner == NULL)
    return err_set(e, ERR_NO_SUCH_WEBSITE,
                   "The specified bucket does not have a website configuration");
  s3_xml x;
  s3_xml_open(&x, req, "WebsiteConfiguration");
  if (x.rc == 0)
    x.rc = buf_puts(x.b, inner);
  s3_xml_close(&x, "WebsiteConfiguration");
  return s3_xml_done(&x, e);
}

int s3_delete_bucket_website(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = store_bucket_conf_set(s->st, c->bucket, WEBSITE_CONF, NULL, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}

/* ---- the endpoint: addressing ---- */

bool s3_site_address(http_req *req, s3_call *c)
{
  static const char sites[] = "/_tarn/sites/";
  if (req->raw_path != NULL && strncmp(req->raw_path, sites, sizeof sites - 1) == 0 &&
      req->path != NULL && strncmp(req->path, sites, sizeof sites - 1) == 0) {
    const char *b = req->path + sizeof sites - 1;
    size_t n = strcspn(b, "/");
    c->bucket = arena_strndup(req->arena, b, n);
    c->site_path = b + n;
    c->site_base = arena_sprintf(req->arena, "/_tarn/sites/%s", c->bucket);
    return true;
  }
  const char *host = http_req_header(req, "host");
  if (host == NULL || host[0] == '[')
    return false;
  size_t n = strcspn(host, ":");
  static const char local[] = ".localhost";
  size_t ll = sizeof local - 1;
  if (n <= ll || strncasecmp(host + n - ll, local, ll) != 0)
    return false;
  char *name = arena_strndup(req->arena, host, n - ll);
  for (char *p = name; *p != '\0'; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  /* <bucket>.s3-website, <bucket>.s3-website-<region>, <bucket>.s3-website.<region> */
  char *at = NULL;
  for (char *p = strstr(name, ".s3-website"); p != NULL; p = strstr(p + 1, ".s3-website"))
    at = p;
  if (at == NULL || at == name)
    return false;
  const char *tail = at + strlen(".s3-website");
  if (*tail != '\0' && ((*tail != '-' && *tail != '.') || tail[1] == '\0' ||
                        strchr(tail + 1, '.') != NULL))
    return false;
  *at = '\0';
  c->bucket = name;
  c->site_path = req->path != NULL ? req->path : "/";
  c->site_base = "";
  return true;
}

/* ---- the endpoint: answers ---- */

static const char *reason(int status)
{
  switch (status) {
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 412: return "Precondition Failed";
  case 416: return "Requested Range Not Satisfiable";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  default: return status >= 500 ? "Internal Server Error" : "Error";
  }
}

void s3_site_error_page(http_req *req, s3_call *c, const err *e)
{
  int code = e != NULL && e->code != 0 ? e->code : ERR_INTERNAL;
  int status = err_http_status(code);
  const char *msg = e != NULL && e->msg[0] != '\0' ? e->msg : err_aws_code(code);
  if (code == ERR_NO_SUCH_KEY)
    msg = "The specified key does not exist.";
  else if (code == ERR_DENIED)
    msg = "Access Denied";
  else if (code == ERR_NO_SUCH_BUCKET)
    msg = "The specified bucket does not exist";
  else if (status >= 500 && code != ERR_NOT_IMPLEMENTED)
    msg = "We encountered an internal error. Please try again.";
  http_resp_status(req, status);
  buf_reset(&req->resp_body);
  if (strcmp(req->method, "HEAD") == 0 || status == 304)
    return;
  http_resp_header(req, "Content-Type", "text/html; charset=utf-8");
  buf *b = &req->resp_body;
  buf_printf(b, "<html>\n<head><title>%d %s</title></head>\n<body>\n<h1>%d %s</h1>\n<ul>\n",
             status, reason(status), status, reason(status));
  buf_printf(b, "<li>Code: %s</li>\n<li>Message: ", err_aws_code(code));
  buf_xml_escape(b, msg, strlen(msg));
  buf_puts(b, "</li>\n");
  if (c != NULL && c->bucket != NULL &&
      (code == ERR_NO_SUCH_BUCKET || code == ERR_NO_SUCH_WEBSITE)) {
    buf_puts(b, "<li>BucketName: ");
    buf_xml_escape(b, c->bucket, strlen(c->bucket));
    buf_puts(b, "</li>\n");
  }
  if (c != NULL && c->key != NULL && code == ERR_NO_SUCH_KEY) {
    buf_puts(b, "<li>Key: ");
    buf_xml_escape(b, c->key, strlen(c->key));
    buf_puts(b, "</li>\n");
  }
  buf_printf(b, "<li>RequestId: %s</li>\n<li>HostId: %s</li>\n</ul>\n<hr/>\n</body>\n</html>\n",
             req->request_id, req->request_id);
}

static int redirect(http_req *req, int status, const char *location)
{
  http_resp_status(req, status);
  http_resp_header(req, "Location", location);
  http_resp_header(req, "Content-Length", "0");
  buf_reset(&req->resp_body);
  return 0;
}

static const char *host_of(const http_req *req)
{
  const char *h = http_req_header(req, "host");
  return h != NULL ? h : "localhost";
}

static const char *key_url(http_req *req, const char *key)
{
  return uri_encode(req->arena, key, strlen(key), true);
}

/* The first rule whose condition holds for the asked key and, when
 * status is not 0, that error status (rules without an error condition
 * apply before the object is looked at, with status 0). */
static const site_rule *rule_for(const site_conf *w, const char *key, int status)
{
  for (size_t i = 0; i < w->nrules; i++) {
    const site_rule *r = &w->rules[i];
    if (r->on_error != status)
      continue;
    if (r->prefix != NULL && !str_starts(key, r->prefix))
      continue;
    return r;
  }
  return NULL;
}

static int rule_redirect(http_req *req, s3_call *c, const site_rule *r, const char *key)
{
  const char *to = key;
  if (r->replace_key != NULL)
    to = r->replace_key;
  else if (r->replace_prefix != NULL)
    to = arena_sprintf(req->arena, "%s%s", r->replace_prefix,
                       key + (r->prefix != NULL ? strlen(r->prefix) : 0));
  const char *proto = r->protocol != NULL ? r->protocol : "http";
  const char *loc = r->host != NULL
      ? arena_sprintf(req->arena, "%s://%s/%s", proto, r->host, key_url(req, to))
      : arena_sprintf(req->arena, "%s://%s%s/%s", proto, host_of(req), c->site_base,
                      key_url(req, to));
  return redirect(req, r->code != 0 ? r->code : 301, loc);
}

static bool readable(s3_svc *s, http_req *req, const char *bucket, const char *key)
{
  return s3_policy_public(s, req, bucket, "s3:GetObject",
                          arena_sprintf(req->arena, "arn:aws:s3:::%s/%s", bucket, key));
}

/* A 403 or 404 for the asked key: a routing rule on that code, else the
 * error document with the status, else the HTML page (returned as rc). */
static int site_fail(s3_svc *s, http_req *req, s3_call *c, const site_conf *w, const char *asked,
                     int code, err *e)
{
  int status = err_http_status(code);
  const site_rule *r = rule_for(w, asked, status);
  if (r != NULL)
    return rule_redirect(req, c, r, asked);
  if (w->error_key != NULL && readable(s, req, c->bucket, w->error_key)) {
    err ignored;
    if (s3_send_object(s, req, c->bucket, w->error_key, true, &ignored) == 0) {
      http_resp_status(req, status);
      return 0;
    }
  }
  return err_set(e, code, code == ERR_DENIED ? "Access Denied" : "The specified key does not exist.");
}

static const char *meta_value(const store_object *o, const char *name)
{
  for (size_t i = 0; i < o->nmeta; i++)
    if (strcmp(o->meta[i].name, name) == 0)
      return o->meta[i].value;
  return NULL;
}

static bool exists(s3_svc *s, http_req *req, const char *bucket, const char *key)
{
  store_object o;
  err e;
  return store_object_get(s->st, bucket, key, req->arena, &o, NULL, &e) == 0;
}

int s3_site_serve(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *inner;
  int rc = store_bucket_conf_get(s->st, c->bucket, WEBSITE_CONF, req->arena, &inner, e);
  if (rc != 0)
    return rc;
  if (inner == NULL)
    return err_set(e, ERR_NO_SUCH_WEBSITE,
                   "The specified bucket does not have a website configuration");
  site_conf w;
  rc = site_load(req->arena, inner, &w, e);
  if (rc != 0)
    return rc;
  if (w.all_host != NULL) {
    const char *path = *c->site_path != '\0' ? c->site_path : "/";
    return redirect(req, 301, arena_sprintf(req->arena, "%s://%s%s",
                                            w.all_protocol != NULL ? w.all_protocol : "http",
                                            w.all_host, uri_encode(req->arena, path,
                                                                   strlen(path), true)));
  }
  if (*c->site_path == '\0')  /* /_tarn/sites/<bucket>: the site's root is <bucket>/ */
    return redirect(req, 302, arena_sprintf(req->arena, "%s/", c->site_base));
  const char *asked = c->site_path + 1;
  rc = s3_key_check(asked, e);
  if (rc != 0)
    return rc;
  const site_rule *r = rule_for(&w, asked, 0);
  if (r != NULL)
    return rule_redirect(req, c, r, asked);
  size_t n = strlen(asked);
  bool dir = n == 0 || asked[n - 1] == '/';
  const char *key = dir ? arena_sprintf(req->arena, "%s%s", asked, w.index) : asked;
  c->key = key;
  if (!readable(s, req, c->bucket, key))
    return site_fail(s, req, c, &w, asked, ERR_DENIED, e);
  store_object o;
  rc = store_object_get(s->st, c->bucket, key, req->arena, &o, NULL, e);
  if (rc == ERR_NO_SUCH_KEY) {
    err_clear(e);
    const char *index = arena_sprintf(req->arena, "%s/%s", asked, w.index);
    if (!dir && readable(s, req, c->bucket, index) && exists(s, req, c->bucket, index))
      return redirect(req, 302, arena_sprintf(req->arena, "%s/%s/", c->site_base,
                                              key_url(req, asked)));
    return site_fail(s, req, c, &w, asked, ERR_NO_SUCH_KEY, e);
  }
  if (rc != 0)
    return rc;
  const char *to = meta_value(&o, "x-amz-website-redirect-location");
  if (to != NULL)
    return redirect(req, 301, to[0] == '/' ? arena_sprintf(req->arena, "%s%s", c->site_base, to)
                                           : to);
  return s3_send_object(s, req, c->bucket, key, false, e);
}
