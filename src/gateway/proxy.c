/* gateway/proxy.c -- the AWS_PROXY integration's logic: which route a
 * request takes, the event its function receives (payload formats 1.0 and
 * 2.0, as API Gateway and function URLs send them) and how the function's
 * answer becomes the HTTP response.
 *
 * Why here and not in api/: these shapes are the contract between the
 * front door and a function, whatever carries the request; the wire edge
 * (api/apigatewayv2.c) only moves bytes.
 *
 * Invariants:
 *   (1) Route precedence is total and independent of creation order: an
 *       exact route, then variable routes (a literal beats a variable at
 *       the first segment where they differ), then greedy routes (longer
 *       literal prefix first), then $default; a method beats ANY at equal
 *       path rank.
 *   (2) The event carries the body byte-exact: as text when the content is
 *       text (and valid UTF-8), else base64 with isBase64Encoded true.
 *   (3) A function answer that is not a valid response shape maps to an
 *       error (API Gateway's 500), never to a half-built response.
 *
 * Start reading at gateway_resolve(), gateway_event_build(),
 * gateway_response_map().
 */
#include "gateway/internal.h"

#include "base/hash.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_SEGMENTS 64

/* ---- route keys ---- */

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH",
                                      "HEAD", "OPTIONS", "ANY", NULL};

/* A parsed route key: method, segments, greedy last. */
typedef struct route_key {
  char method[8];
  bool is_default;
  size_t n;                       /* segments */
  const char *seg[MAX_SEGMENTS];  /* into buf */
  size_t len[MAX_SEGMENTS];
  char kind[MAX_SEGMENTS];        /* 'L' literal, 'V' {x}, 'G' {x+} */
} route_key;

static int key_parse(const char *key, route_key *k, err *e)
{
  memset(k, 0, sizeof *k);
  if (strcmp(key, "$default") == 0) {
    k->is_default = true;
    return 0;
  }
  const char *sp = strchr(key, ' ');
  if (sp == NULL || sp - key >= (long)sizeof k->method || sp[1] != '/')
    return err_set(e, ERR_INVALID, "Invalid route key '%s': want $default or 'METHOD /path'", key);
  memcpy(k->method, key, (size_t)(sp - key));
  bool known = false;
  for (size_t i = 0; methods[i] != NULL; i++)
    known |= strcmp(methods[i], k->method) == 0;
  if (!known)
    return err_set(e, ERR_INVALID, "Invalid route key '%s': unknown method '%s'", key, k->method);
  const char *p = sp + 1;
  if (strcmp(p, "/") == 0)
    return 0;
  while (*p == '/') {
    p++;
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (k->n == MAX_SEGMENTS)
      return err_set(e, ERR_INVALID, "Invalid route key '%s': too many segments", key);
    if (n == 0)
      return err_set(e, ERR_INVALID, "Invalid route key '%s': empty path segment", key);
    char kind = 'L';
    if (p[0] == '{') {
      if (n < 3 || p[n - 1] != '}')
        return err_set(e, ERR_INVALID, "Invalid route key '%s': bad path variable", key);
      kind = p[n - 2] == '+' ? 'G' : 'V';
      if (kind == 'G' && (n < 4 || end != NULL))
        return err_set(e, ERR_INVALID,
                       "Invalid route key '%s': a greedy variable must be the last segment", key);
    } else if (memchr(p, '{', n) != NULL || memchr(p, '}', n) != NULL) {
      return err_set(e, ERR_INVALID, "Invalid route key '%s': a variable must be a whole segment",
                     key);
    }
    k->seg[k->n] = p;
    k->len[k->n] = n;
    k->kind[k->n] = kind;
    k->n++;
    p += n;
  }
  if (*p != '\0')
    return err_set(e, ERR_INVALID, "Invalid route key '%s'", key);
  return 0;
}

int gateway__route_key_check(const char *key, err *e)
{
  route_key k;
  if (strlen(key) > 1024)
    return err_set(e, ERR_INVALID, "Invalid route key: longer than 1024 characters");
  return key_parse(key, &k, e);
}

/* ---- matching ---- */

typedef struct rank {
  int cls;                    /* 0 exact, 1 variables, 2 greedy, 3 $default */
  char pattern[MAX_SEGMENTS + 1]; /* 'L'/'V' per segment (cls 1) */
  size_t prefix;              /* literal segments before the greedy one (cls 2) */
  bool any;                   /* method ANY */
} rank;

/* Negative when a is the better route. */
static int rank_cmp(const rank *a, const rank *b)
{
  if (a->cls != b->cls)
    return a->cls - b->cls;
  if (a->cls == 1) {
    int c = strcmp(a->pattern, b->pattern); /* 'L' < 'V': literals first */
    if (c != 0)
      return c;
  }
  if (a->cls == 2 && a->prefix != b->prefix)
    return a->prefix > b->prefix ? -1 : 1;
  return (int)a->any - (int)b->any;
}

/* Splits path ("/a/b") into segments (pointers into path). */
static size_t split_path(const char *path, const char **seg, size_t *len)
{
  size_t n = 0;
  if (strcmp(path, "/") == 0 || *path == '\0')
    return 0;
  const char *p = path;
  while (*p == '/' && n < MAX_SEGMENTS) {
    p++;
    const char *end = strchr(p, '/');
    size_t l = end ? (size_t)(end - p) : strlen(p);
    seg[n] = p;
    len[n] = l;
    n++;
    p += l;
  }
  return *p == '\0' ? n : (size_t)-1;
}

static bool key_match(const route_key *k, const char *method, const char *path,
                      const char **seg, const size_t *len, size_t n, json_t *params, rank *r)
{
  memset(r, 0, sizeof *r);
  if (k->is_default) {
    r->cls = 3;
    return true;
  }
  r->any = strcmp(k->method, "ANY") == 0;
  if (!r->any && strcmp(k->method, method) != 0)
    return false;
  bool greedy = k->n > 0 && k->kind[k->n - 1] == 'G';
  if (greedy ? n < k->n : n != k->n)
    return false;
  bool vars = false;
  for (size_t i = 0; i < k->n; i++) {
    if (k->kind[i] == 'L') {
      if (len[i] != k->len[i] || memcmp(seg[i], k->seg[i], len[i]) != 0)
        return false;
    } else if (k->kind[i] == 'V' && len[i] == 0) {
      return false;
    }
    vars |= k->kind[i] != 'L';
    r->pattern[i] = k->kind[i] == 'L' ? 'L' : 'V';
  }
  r->cls = greedy ? 2 : vars ? 1 : 0;
  r->prefix = greedy ? k->n - 1 : 0;
  if (params != NULL) {
    json_object_clear(params);
    for (size_t i = 0; i < k->n; i++) {
      if (k->kind[i] == 'L')
        continue;
      size_t nl = k->len[i] - (k->kind[i] == 'G' ? 3 : 2);
      char name[256];
      snprintf(name, sizeof name, "%.*s", (int)nl, k->seg[i] + 1);
      if (k->kind[i] == 'G') /* the rest of the path, from this segment */
        json_object_set_new(params, name, json_string(seg[i]));
      else
        json_object_set_new(params, name, json_stringn(seg[i], len[i]));
    }
  }
  (void)path;
  return true;
}

int gateway_route_match(const char *const *keys, size_t nkeys, const char *method,
                        const char *path, json_t *params)
{
  const char *seg[MAX_SEGMENTS];
  size_t len[MAX_SEGMENTS];
  size_t n = split_path(path, seg, len);
  if (n == (size_t)-1)
    return -1;
  int best = -1;
  rank best_rank = {0};
  for (size_t i = 0; i < nkeys; i++) {
    route_key k;
    err ignored = {0};
    rank r;
    if (key_parse(keys[i], &k, &ignored) != 0 ||
        !key_match(&k, method, path, seg, len, n, NULL, &r))
      continue;
    if (best < 0 || rank_cmp(&r, &best_rank) < 0) {
      best = (int)i;
      best_rank = r;
    }
  }
  if (best >= 0 && params != NULL) {
    route_key k;
    err ignored = {0};
    rank r;
    key_parse(keys[best], &k, &ignored);
    key_match(&k, method, path, seg, len, n, params, &r);
  }
  return best;
}

/* ---- resolving an invoke URL ---- */

/* The function named by an integration URI: a function ARN, or API
 * Gateway's arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations. */
const char *gateway_uri_function(const char *uri, arena *a)
{
  const char *f = strstr(uri, ":lambda:path/");
  if (f != NULL) {
    f = strstr(f, "/functions/");
    if (f != NULL) {
      f += strlen("/functions/");
      const char *end = strstr(f, "/invocations");
      return arena_strndup(a, f, end ? (size_t)(end - f) : strlen(f));
    }
  }
  return uri;
}

int gateway_resolve(gateway *g, const char *api_id, const char *method, const char *path,
                    arena *a, gateway_target *t, const char **path_out, err *e)
{
  memset(t, 0, sizeof *t);
  json_t *doc = gateway__api_snapshot(g, api_id);
  if (doc == NULL)
    return err_set(e, ERR_NOT_FOUND, "no API '%s'", api_id);
  t->snapshot = doc;
  t->api_id = arena_strdup(a, api_id);
  json_t *stages = json_object_get(doc, "stages");
  /* a named stage is the first segment; otherwise $default takes the path */
  const char *rest = path;
  json_t *stage = NULL;
  if (path[0] == '/' && path[1] != '\0') {
    const char *end = strchr(path + 1, '/');
    char *first = arena_strndup(a, path + 1, end ? (size_t)(end - path - 1) : strlen(path + 1));
    if (strcmp(first, "$default") != 0 && (stage = json_object_get(stages, first)) != NULL) {
      t->stage = first;
      rest = end ? end : "/";
    }
  }
  if (stage == NULL && (stage = json_object_get(stages, "$default")) != NULL)
    t->stage = "$default";
  if (stage == NULL) {
    json_decref(doc);
    t->snapshot = NULL;
    return err_set(e, ERR_NOT_FOUND, "no stage for '%s'", path);
  }
  if (*rest == '\0')
    rest = "/";
  *path_out = rest;
  t->stage_vars = json_object_get(stage, "stageVariables");
  json_t *routes = json_object_get(doc, "routes");
  size_t n = json_object_size(routes);
  const char **keys = arena_alloc(a, (n + 1) * sizeof *keys);
  json_t **docs = arena_alloc(a, (n + 1) * sizeof *docs);
  size_t i = 0;
  const char *rid;
  json_t *r;
  json_object_foreach(routes, rid, r)
  {
    keys[i] = json_string_value(json_object_get(r, "routeKey"));
    docs[i++] = r;
  }
  t->path_params = json_object();
  int best = gateway_route_match(keys, n, method, rest, t->path_params);
  if (best < 0)
    return err_set(e, ERR_NOT_FOUND, "no route for %s %s", method, rest);
  json_t *route = docs[best];
  t->route_key = keys[best];
  t->authorization = json_string_value(json_object_get(route, "authorizationType"));
  const char *sp = strchr(t->route_key, ' ');
  t->resource_path = sp ? sp + 1 : t->route_key;
  const char *target = json_string_value(json_object_get(route, "target"));
  if (target == NULL || !str_starts(target, "integrations/"))
    return err_set(e, ERR_NOT_FOUND, "route '%s' has no integration", t->route_key);
  json_t *integ = json_object_get(json_object_get(doc, "integrations"), target + 13);
  if (integ == NULL)
    return err_set(e, ERR_INVALID, "the integration of route '%s' is missing", t->route_key);
  const char *uri = json_string_value(json_object_get(integ, "integrationUri"));
  t->http_proxy = strcmp(json_string_value(json_object_get(integ, "integrationType")),
                         "HTTP_PROXY") == 0;
  if (t->http_proxy) {
    t->uri = uri;
    t->http_method = json_string_value(json_object_get(integ, "integrationMethod"));
    if (t->http_method == NULL || strcmp(t->http_method, "ANY") == 0)
      t->http_method = method;
    t->request_parameters = json_object_get(integ, "requestParameters");
  } else {
    t->function = gateway_uri_function(uri, a);
  }
  if (strcmp(t->authorization, "JWT") == 0 || strcmp(t->authorization, "CUSTOM") == 0) {
    const char *az = json_string_value(json_object_get(route, "authorizerId"));
    t->authorizer = az ? json_object_get(json_object_get(doc, "authorizers"), az) : NULL;
    if (t->authorizer == NULL)
      return err_set(e, ERR_INVALID, "the authorizer of route '%s' is missing", t->route_key);
    t->scopes = json_object_get(route, "authorizationScopes");
    const char *az_uri = json_string_value(json_object_get(t->authorizer, "authorizerUri"));
    if (az_uri != NULL)
      t->authorizer_function = gateway_uri_function(az_uri, a);
  }
  t->format = json_string_value(json_object_get(integ, "payloadFormatVersion"));
  json_int_t ms = json_integer_value(json_object_get(integ, "timeoutInMillis"));
  t->timeout_ms = ms > 0 && ms <= GATEWAY_TIMEOUT_MS ? (int)ms : GATEWAY_TIMEOUT_MS;
  return 0;
}

/* ---- events ---- */

/* Is a body of this content type text (sent as is) rather than binary? */
static bool text_type(const char *ct)
{
  if (ct == NULL)
    return true;
  if (str_istarts(ct, "text/"))
    return true;
  const char *semi = strchr(ct, ';');
  size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
  char t[128];
  snprintf(t, sizeof t, "%.*s", (int)(n < sizeof t ? n : sizeof t - 1), ct);
  for (char *c = t; *c; c++)
    if (*c >= 'A' && *c <= 'Z')
      *c = (char)(*c - 'A' + 'a');
  return str_ends(t, "/json") || str_ends(t, "+json") || str_ends(t, "/xml") ||
         str_ends(t, "+xml") || strcmp(t, "application/javascript") == 0;
}

static const char *header(const gateway_request *q, const char *name)
{
  for (size_t i = 0; i < q->nheaders; i++)
    if (strcmp(q->headers[i].name, name) == 0)
      return q->headers[i].value;
  return NULL;
}

/* body and isBase64Encoded members into ev (body null when empty for 1.0). */
static void put_body(json_t *ev, const gateway_request *q, bool v1)
{
  bool b64 = false;
  if (q->body_len == 0) {
    if (v1)
      json_object_set_new(ev, "body", json_null());
  } else if (text_type(header(q, "content-type")) && utf8_valid(q->body, q->body_len) &&
             memchr(q->body, '\0', q->body_len) == NULL) {
    json_object_set_new(ev, "body", json_stringn(q->body, q->body_len));
  } else {
    char *s = xmalloc(base64_encoded_len(q->body_len));
    base64_encode(q->body, q->body_len, s);
    json_object_set_new(ev, "body", json_string(s));
    free(s);
    b64 = true;
  }
  json_object_set_new(ev, "isBase64Encoded", json_boolean(b64));
}

/* Appends value to obj[name], comma-joined (2.0) or as the array member. */
static void join(json_t *obj, const char *name, const char *value)
{
  json_t *old = json_object_get(obj, name);
  if (old == NULL) {
    json_object_set_new(obj, name, json_string(value));
    return;
  }
  json_object_set_new(obj, name, json_sprintf("%s,%s", json_string_value(old), value));
}

static void push(json_t *obj, const char *name, const char *value)
{
  json_t *arr = json_object_get(obj, name);
  if (arr == NULL)
    json_object_set_new(obj, name, arr = json_array());
  json_array_append_new(arr, json_string(value));
}

/* The headers API Gateway adds: X-Forwarded-For gets the caller's address
 * appended, X-Forwarded-Proto says how it came (mh: 1.0's multi-value
 * copy, or NULL). */
static void forwarded(json_t *h, json_t *mh, const gateway_request *q)
{
  const char *xff = json_string_value(json_object_get(h, "x-forwarded-for"));
  json_t *v = xff != NULL ? json_sprintf("%s, %s", xff, q->source_ip) : json_string(q->source_ip);
  json_object_set_new(h, "x-forwarded-for", v);
  if (mh != NULL)
    json_object_set_new(mh, "x-forwarded-for", json_pack("[O]", v));
  if (json_object_get(h, "x-forwarded-proto") == NULL) {
    json_object_set_new(h, "x-forwarded-proto", json_string("http"));
    if (mh != NULL)
      json_object_set_new(mh, "x-forwarded-proto", json_pack("[s]", "http"));
  }
}

static void request_times(char clf[40], int64_t *epoch_ms)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  *epoch_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  strftime(clf, 40, "%d/%b/%Y:%H:%M:%S +0000", &tm);
}

static json_t *or_null(json_t *o)
{
  if (o != NULL && json_object_size(o) > 0)
    return o;
  json_decref(o);
  return json_null();
}

static void build_v2(const gateway_target *t, const char *url_id, const gateway_request *q,
                     const char *full_path, json_t *ev)
{
  json_object_set_new(ev, "version", json_string("2.0"));
  json_object_set_new(ev, "routeKey", json_string(t ? t->route_key : "$default"));
  json_object_set_new(ev, "rawPath", json_string(full_path));
  json_object_set_new(ev, "rawQueryString", json_string(q->raw_query));
  json_t *headers = json_object();
  json_t *cookies = json_array();
  for (size_t i = 0; i < q->nheaders; i++) {
    if (strcmp(q->headers[i].name, "cookie") == 0) {
      const char *c = q->headers[i].value;
      while (*c) {
        while (*c == ' ')
          c++;
        const char *end = strchr(c, ';');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n > 0)
          json_array_append_new(cookies, json_stringn(c, n));
        c += n;
        if (*c == ';')
          c++;
      }
      continue;
    }
    join(headers, q->headers[i].name, q->headers[i].value);
  }
  forwarded(headers, NULL, q);
  if (json_array_size(cookies) > 0)
    json_object_set_new(ev, "cookies", cookies);
  else
    json_decref(cookies);
  json_object_set_new(ev, "headers", headers);
  if (q->nquery > 0) {
    json_t *qs = json_object();
    for (size_t i = 0; i < q->nquery; i++)
      join(qs, q->query[i].name, q->query[i].value);
    json_object_set_new(ev, "queryStringParameters", qs);
  }
  char clf[40];
  int64_t epoch;
  request_times(clf, &epoch);
  const char *id = t ? t->api_id : url_id;
  const char *ua = header(q, "user-agent");
  json_t *ctx = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, "
                          "s:s, s:I}",
                          "accountId", t ? GATEWAY_ACCOUNT_ID : "anonymous", "apiId", id,
                          "domainName", *q->domain ? q->domain : id, "domainPrefix", id,
                          "http", "method", q->method, "path", full_path, "protocol", "HTTP/1.1",
                          "sourceIp", q->source_ip, "userAgent", ua ? ua : "",
                          "requestId", q->request_id, "routeKey",
                          t ? t->route_key : "$default", "stage", t ? t->stage : "$default",
                          "time", clf, "timeEpoch", (json_int_t)epoch);
  if (q->authorizer != NULL)
    json_object_set(ctx, "authorizer", (json_t *)q->authorizer);
  else if (q->access_key != NULL)
    json_object_set_new(ctx, "authorizer",
                        json_pack("{s:{s:s, s:s, s:s, s:s, s:s}}", "iam", "accessKey",
                                  q->access_key, "accountId", GATEWAY_ACCOUNT_ID, "callerId",
                                  q->access_key, "userArn",
                                  "arn:aws:iam::" GATEWAY_ACCOUNT_ID ":root", "userId",
                                  q->access_key));
  json_object_set_new(ev, "requestContext", ctx);
  put_body(ev, q, false);
  if (t != NULL && json_object_size(t->path_params) > 0)
    json_object_set(ev, "pathParameters", t->path_params);
  if (t != NULL && t->stage_vars != NULL && json_object_size(t->stage_vars) > 0)
    json_object_set(ev, "stageVariables", (json_t *)t->stage_vars);
}

static void build_v1(const gateway_target *t, const gateway_request *q, const char *full_path,
                     json_t *ev)
{
  json_object_set_new(ev, "version", json_string("1.0"));
  json_object_set_new(ev, "resource", json_string(t->resource_path));
  json_object_set_new(ev, "path", json_string(full_path));
  json_object_set_new(ev, "httpMethod", json_string(q->method));
  json_t *h = json_object();
  json_t *mh = json_object();
  for (size_t i = 0; i < q->nheaders; i++) {
    json_object_set_new(h, q->headers[i].name, json_string(q->headers[i].value));
    push(mh, q->headers[i].name, q->headers[i].value);
  }
  forwarded(h, mh, q);
  json_object_set_new(ev, "headers", h);
  json_object_set_new(ev, "multiValueHeaders", mh);
  json_t *qs = json_object();
  json_t *mqs = json_object();
  for (size_t i = 0; i < q->nquery; i++) {
    json_object_set_new(qs, q->query[i].name, json_string(q->query[i].value));
    push(mqs, q->query[i].name, q->query[i].value);
  }
  json_object_set_new(ev, "queryStringParameters", or_null(qs));
  json_object_set_new(ev, "multiValueQueryStringParameters", or_null(mqs));
  char clf[40];
  int64_t epoch;
  request_times(clf, &epoch);
  const char *ua = header(q, "user-agent");
  json_t *identity = json_pack("{s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:s, s:n, s:s, "
                               "s:n}",
                               "accessKey", "accountId", "caller", "cognitoAuthenticationProvider",
                               "cognitoAuthenticationType", "cognitoIdentityId",
                               "cognitoIdentityPoolId", "principalOrgId", "user", "sourceIp",
                               q->source_ip, "userArn", "userAgent", ua ? ua : "", "clientCert");
  if (q->access_key != NULL) {
    json_object_set_new(identity, "accessKey", json_string(q->access_key));
    json_object_set_new(identity, "accountId", json_string(GATEWAY_ACCOUNT_ID));
    json_object_set_new(identity, "caller", json_string(q->access_key));
    json_object_set_new(identity, "user", json_string(q->access_key));
    json_object_set_new(identity, "userArn",
                        json_string("arn:aws:iam::" GATEWAY_ACCOUNT_ID ":root"));
  }
  json_t *ctx = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:I, s:s, "
                          "s:s, s:s}",
                          "accountId", GATEWAY_ACCOUNT_ID, "apiId", t->api_id, "domainName",
                          *q->domain ? q->domain : t->api_id, "domainPrefix", t->api_id,
                          "extendedRequestId", q->request_id, "httpMethod", q->method,
                          "identity", identity, "path", full_path, "protocol", "HTTP/1.1",
                          "requestId", q->request_id, "requestTime", clf, "requestTimeEpoch",
                          (json_int_t)epoch, "resourceId", t->route_key, "resourcePath",
                          t->resource_path, "stage", t->stage);
  if (q->authorizer != NULL)
    json_object_set(ctx, "authorizer", (json_t *)q->authorizer);
  json_object_set_new(ev, "requestContext", ctx);
  json_object_set_new(ev, "pathParameters", or_null(json_deep_copy(t->path_params)));
  json_object_set_new(ev, "stageVariables",
                      or_null(t->stage_vars ? json_deep_copy(t->stage_vars) : NULL));
  put_body(ev, q, true);
}

json_t *gateway__event_json(const gateway_target *t, const char *format, const char *url_id,
                            const gateway_request *q, const char *full_path)
{
  json_t *ev = json_object();
  if (t != NULL && strcmp(format, "1.0") == 0)
    build_v1(t, q, full_path, ev);
  else
    build_v2(t, url_id, q, full_path, ev);
  return ev;
}

int gateway_event_build(const gateway_target *t, const char *url_id, const gateway_request *q,
                        const char *full_path, buf *out, err *e)
{
  json_t *ev = gateway__event_json(t, t != NULL ? t->format : "2.0", url_id, q, full_path);
  char *s = json_dumps(ev, JSON_COMPACT);
  int rc = buf_puts(out, s);
  free(s);
  json_decref(ev);
  if (rc != 0)
    return err_set(e, ERR_ENTITY_TOO_LARGE, "the event is larger than %zu bytes", out->max);
  return 0;
}

/* ---- responses ---- */

static void add_header(arena *a, gateway_response *o, size_t *cap, const char *name,
                       const char *value)
{
  if (o->nheaders == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    str_pair *h = arena_alloc(a, ncap * sizeof *h);
    if (o->nheaders)
      memcpy(h, o->headers, o->nheaders * sizeof *h);
    o->headers = h;
    *cap = ncap;
  }
  o->headers[o->nheaders].name = arena_strdup(a, name);
  o->headers[o->nheaders].value = arena_strdup(a, value);
  o->nheaders++;
}

/* A header value as text: strings as they are, numbers and booleans printed. */
static const char *scalar_text(arena *a, const json_t *v)
{
  if (json_is_string(v))
    return json_string_value(v);
  if (json_is_integer(v))
    return arena_sprintf(a, "%lld", (long long)json_integer_value(v));
  if (json_is_real(v))
    return arena_sprintf(a, "%g", json_real_value(v));
  if (json_is_boolean(v))
    return json_is_true(v) ? "true" : "false";
  return NULL;
}

int gateway_response_map(const char *format, const void *payload, size_t len, arena *a,
                         gateway_response *out, err *e)
{
  memset(out, 0, sizeof *out);
  buf_init(&out->body, GATEWAY_MAX_PAYLOAD);
  size_t cap = 0;
  bool v2 = strcmp(format, "2.0") == 0;
  json_error_t je;
  json_t *j = json_loadb(payload, len, JSON_DECODE_ANY, &je);
  if (j == NULL)
    return err_set(e, ERR_INVALID, "the function's answer is not JSON: %s", je.text);
  json_t *sc = json_is_object(j) ? json_object_get(j, "statusCode") : NULL;
  if (sc == NULL) {
    json_decref(j);
    if (!v2)
      return err_set(e, ERR_INVALID, "the function's answer has no statusCode");
    /* 2.0: a JSON value without statusCode is the body of a 200 */
    out->status = 200;
    add_header(a, out, &cap, "Content-Type", "application/json");
    buf_append(&out->body, payload, len);
    return 0;
  }
  int rc = 0;
  long status = json_is_integer(sc) ? (long)json_integer_value(sc)
                : json_is_string(sc) ? strtol(json_string_value(sc), NULL, 10)
                                     : 0;
  if (status < 100 || status > 599)
    rc = err_set(e, ERR_INVALID, "the function's answer has an invalid statusCode");
  out->status = (int)status;
  const char *name;
  json_t *v;
  json_object_foreach(json_object_get(j, "headers"), name, v)
  {
    const char *s = scalar_text(a, v);
    if (s != NULL)
      add_header(a, out, &cap, name, s);
  }
  json_object_foreach(json_object_get(j, "multiValueHeaders"), name, v)
  {
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
      const char *s = scalar_text(a, item);
      if (s != NULL)
        add_header(a, out, &cap, name, s);
    }
  }
  if (v2) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(j, "cookies"), i, c)
    {
      if (json_is_string(c))
        add_header(a, out, &cap, "Set-Cookie", json_string_value(c));
    }
  }
  json_t *body = json_object_get(j, "body");
  bool b64 = json_is_true(json_object_get(j, "isBase64Encoded"));
  if (rc == 0 && body != NULL && !json_is_null(body)) {
    if (!json_is_string(body)) {
      if (!v2) {
        rc = err_set(e, ERR_INVALID, "the function's body is not a string");
      } else {
        char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        buf_puts(&out->body, s);
        free(s);
      }
    } else if (b64) {
      const char *s = json_string_value(body);
      size_t n = json_string_length(body);
      uint8_t *bytes = xmalloc(n / 4 * 3 + 3);
      long got = base64_decode(s, n, bytes, n / 4 * 3 + 3);
      if (got < 0)
        rc = err_set(e, ERR_INVALID, "the function's body is not valid base64");
      else
        buf_append(&out->body, bytes, (size_t)got);
      free(bytes);
    } else {
      buf_append(&out->body, json_string_value(body), json_string_length(body));
    }
  }
  json_decref(j);
  if (rc != 0)
    buf_release(&out->body);
  return rc;
}

/* ---- CORS ---- */

/* cors[lower] or cors[Upper]: API Gateway spells the members camelCase,
 * function URLs PascalCase. */
static const json_t *cors_member(const json_t *cors, const char *camel)
{
  const json_t *v = json_object_get(cors, camel);
  if (v != NULL)
    return v;
  char pascal[64];
  snprintf(pascal, sizeof pascal, "%s", camel);
  pascal[0] = (char)(pascal[0] - 'a' + 'A');
  return json_object_get(cors, pascal);
}

/* The array's strings joined with ", " (arena), or NULL when empty. */
static const char *cors_list(const json_t *arr, arena *a)
{
  size_t i;
  const json_t *v;
  char *out = NULL;
  json_array_foreach(arr, i, v)
  {
    if (!json_is_string(v))
      continue;
    out = out == NULL ? arena_strdup(a, json_string_value(v))
                      : arena_sprintf(a, "%s, %s", out, json_string_value(v));
  }
  return out;
}

static void push_header(arena *a, str_pair **h, size_t *n, const char *name, const char *value)
{
  str_pair *nh = arena_alloc(a, (*n + 1) * sizeof *nh);
  if (*n > 0)
    memcpy(nh, *h, *n * sizeof *nh);
  nh[*n].name = name;
  nh[*n].value = value;
  *h = nh;
  (*n)++;
}

void gateway_cors_headers(const json_t *cors, const char *origin, bool preflight, arena *a,
                          str_pair **h, size_t *n)
{
  if (cors == NULL || origin == NULL)
    return;
  const json_t *origins = cors_member(cors, "allowOrigins");
  const char *allow = NULL;
  size_t i;
  const json_t *v;
  json_array_foreach(origins, i, v)
  {
    const char *o = json_string_value(v);
    if (o != NULL && strcmp(o, "*") == 0 && allow == NULL)
      allow = "*";
    else if (o != NULL && strcasecmp(o, origin) == 0)
      allow = arena_strdup(a, origin);
  }
  if (allow == NULL)
    return;
  push_header(a, h, n, "Access-Control-Allow-Origin", allow);
  if (json_is_true(cors_member(cors, "allowCredentials")))
    push_header(a, h, n, "Access-Control-Allow-Credentials", "true");
  if (!preflight) {
    const char *expose = cors_list(cors_member(cors, "exposeHeaders"), a);
    if (expose != NULL)
      push_header(a, h, n, "Access-Control-Expose-Headers", expose);
    return;
  }
  const char *methods_allowed = cors_list(cors_member(cors, "allowMethods"), a);
  if (methods_allowed != NULL)
    push_header(a, h, n, "Access-Control-Allow-Methods", methods_allowed);
  const char *headers_allowed = cors_list(cors_member(cors, "allowHeaders"), a);
  if (headers_allowed != NULL)
    push_header(a, h, n, "Access-Control-Allow-Headers", headers_allowed);
  const json_t *age = cors_member(cors, "maxAge");
  if (json_is_integer(age))
    push_header(a, h, n, "Access-Control-Max-Age",
                arena_sprintf(a, "%lld", (long long)json_integer_value(age)));
}
