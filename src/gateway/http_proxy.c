/* gateway/http_proxy.c -- the HTTP_PROXY integration: the request an HTTP
 * API sends to its integration's URL, and the response it relays back.
 *
 * Why here: like the AWS_PROXY event, what reaches the backend (URL, path
 * variables, requestParameters, forwarded headers) is the contract of the
 * front door whatever carries it; api/apigatewayv2.c performs the call
 * through base/egress.h (the outbound address policy) off the server's
 * thread pool.
 *
 * The URL: the integration URI with {name} path variables (and
 * ${stageVariables.x}) filled in; on the $default route, or when the URI
 * names no variable and the route is greedy, the request's path is
 * appended to the URI's path. The query string goes as sent, unless a
 * requestParameters entry changes it.
 *
 * Invariants:
 *   (1) Hop-by-hop headers (Connection, Keep-Alive, Transfer-Encoding, TE,
 *       Upgrade, Proxy-*) and Host never cross in either direction; the
 *       caller's address is appended to X-Forwarded-For.
 *   (2) requestParameters apply in the order remove, overwrite, append,
 *       after the request's own headers and query are copied.
 *   (3) The body goes byte-exact both ways.
 *
 * Start reading at gateway_http_request().
 */
#include "gateway/internal.h"

#include "base/mem.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_OUT_HEADERS 256

static bool hop_by_hop(const char *name)
{
  static const char *const hop[] = {"connection", "keep-alive", "transfer-encoding", "te",
                                    "upgrade", "trailer", "host", "content-length", "expect",
                                    NULL};
  for (size_t i = 0; hop[i] != NULL; i++)
    if (strcasecmp(name, hop[i]) == 0)
      return true;
  return str_istarts(name, "proxy-");
}

static const char *find_pair(const str_pair *p, size_t n, const char *name, bool icase)
{
  for (size_t i = 0; i < n; i++)
    if (icase ? strcasecmp(p[i].name, name) == 0 : strcmp(p[i].name, name) == 0)
      return p[i].value;
  return NULL;
}

const char *gateway__request_value(const gateway_target *t, const gateway_request *q,
                                   const char *full_path, const char *v)
{
  if (str_starts(v, "$request.header."))
    return find_pair(q->headers, q->nheaders, v + 16, true);
  if (str_starts(v, "$request.querystring."))
    return find_pair(q->query, q->nquery, v + 21, false);
  if (str_starts(v, "$request.path."))
    return json_string_value(json_object_get(t->path_params, v + 14));
  if (strcmp(v, "$request.path") == 0)
    return full_path;
  if (str_starts(v, "$stageVariables."))
    return json_string_value(json_object_get(t->stage_vars, v + 16));
  if (strcmp(v, "$context.requestId") == 0)
    return q->request_id;
  if (strcmp(v, "$context.apiId") == 0)
    return t->api_id;
  if (strcmp(v, "$context.stage") == 0)
    return t->stage;
  if (strcmp(v, "$context.routeKey") == 0)
    return t->route_key;
  if (strcmp(v, "$context.httpMethod") == 0)
    return q->method;
  if (strcmp(v, "$context.identity.sourceIp") == 0)
    return q->source_ip;
  return NULL;
}

/* A requestParameters value: a static string or an expression. */
static const char *param_value(const gateway_target *t, const gateway_request *q,
                               const char *full_path, const char *v)
{
  return v[0] != '$' ? v : gateway__request_value(t, q, full_path, v);
}

/* A growable list of pairs in the arena. */
typedef struct pairs {
  str_pair *p;
  size_t n;
  size_t cap;
} pairs;

static void pairs_add(arena *a, pairs *l, const char *name, const char *value)
{
  if (l->n == l->cap) {
    size_t ncap = l->cap ? l->cap * 2 : 16;
    str_pair *np = arena_alloc(a, ncap * sizeof *np);
    if (l->n)
      memcpy(np, l->p, l->n * sizeof *np);
    l->p = np;
    l->cap = ncap;
  }
  l->p[l->n].name = name;
  l->p[l->n].value = value;
  l->n++;
}

static void pairs_remove(pairs *l, const char *name, bool icase)
{
  size_t j = 0;
  for (size_t i = 0; i < l->n; i++) {
    bool same = icase ? strcasecmp(l->p[i].name, name) == 0 : strcmp(l->p[i].name, name) == 0;
    if (!same)
      l->p[j++] = l->p[i];
  }
  l->n = j;
}

/* Applies the requestParameters of one action ("remove", "overwrite",
 * "append") to headers, query and path (2). */
static void apply_params(const gateway_target *t, const gateway_request *q, const char *full_path,
                         const char *action, arena *a, pairs *h, pairs *qs, bool *qs_changed,
                         const char **path)
{
  const char *k;
  json_t *v;
  size_t an = strlen(action);
  json_object_foreach((json_t *)t->request_parameters, k, v)
  {
    if (strncmp(k, action, an) != 0 || k[an] != ':')
      continue;
    const char *where = k + an + 1;
    const char *value = param_value(t, q, full_path, json_string_value(v));
    bool header = str_starts(where, "header.");
    const char *name = header ? where + 7 : str_starts(where, "querystring.") ? where + 12 : NULL;
    if (strcmp(where, "path") == 0) {
      if (value != NULL)
        *path = value;
      continue;
    }
    if (name == NULL)
      continue;
    pairs *l = header ? h : qs;
    if (!header)
      *qs_changed = true;
    if (action[0] == 'r' || action[0] == 'o')
      pairs_remove(l, name, header);
    if (action[0] != 'r' && value != NULL)
      pairs_add(a, l, arena_strdup(a, name), value);
  }
}

/* The URI with {var} and ${stageVariables.x} filled in; *had_vars when a
 * path variable was named. */
static char *fill_uri(const gateway_target *t, const char *uri, arena *a, bool *had_vars)
{
  buf b;
  buf_init(&b, 16384);
  *had_vars = false;
  for (const char *p = uri; *p;) {
    bool stage = p[0] == '$' && p[1] == '{';
    if (p[0] == '{' || stage) {
      const char *open = stage ? p + 1 : p;
      const char *close = strchr(open, '}');
      if (close != NULL) {
        char *name = arena_strndup(a, open + 1, (size_t)(close - open - 1));
        const char *val = NULL;
        bool greedy = false;
        if (stage && str_starts(name, "stageVariables.")) {
          val = json_string_value(json_object_get(t->stage_vars, name + 15));
        } else if (!stage) {
          size_t nl = strlen(name);
          if (nl > 0 && name[nl - 1] == '+') {
            name[nl - 1] = '\0';
            greedy = true;
          }
          val = json_string_value(json_object_get(t->path_params, name));
          if (val == NULL) { /* {proxy} names the greedy {proxy+} as well */
            const char *pk;
            json_t *pv;
            json_object_foreach(t->path_params, pk, pv)
            {
              size_t pl = strlen(pk);
              if (pl == nl + 1 && pk[nl] == '+' && strncmp(pk, name, nl) == 0)
                val = json_string_value(pv);
            }
          }
          *had_vars = true;
          greedy = greedy || (val != NULL && strchr(val, '/') != NULL);
        }
        if (val != NULL)
          buf_puts(&b, uri_encode(a, val, strlen(val), greedy));
        p = close + 1;
        continue;
      }
    }
    buf_append(&b, p, 1);
    p++;
  }
  char *out = arena_strndup(a, b.data ? b.data : "", b.len);
  buf_release(&b);
  return out;
}

/* Splits url into the part before its path, its path and its query. */
static void split_url(const char *url, arena *a, const char **base, const char **path,
                      const char **query)
{
  const char *s = strstr(url, "://");
  s = s ? s + 3 : url;
  const char *slash = strpbrk(s, "/?#");
  const char *end = url + strlen(url);
  const char *hash = strchr(url, '#');
  if (hash != NULL)
    end = hash;
  if (slash == NULL || slash >= end) {
    *base = arena_strndup(a, url, (size_t)(end - url));
    *path = "";
    *query = NULL;
    return;
  }
  *base = arena_strndup(a, url, (size_t)(slash - url));
  const char *qm = memchr(slash, '?', (size_t)(end - slash));
  const char *pend = qm ? qm : end;
  *path = arena_strndup(a, slash, (size_t)(pend - slash));
  *query = qm ? arena_strndup(a, qm + 1, (size_t)(end - qm - 1)) : NULL;
}

int gateway_http_request(const gateway_target *t, const gateway_request *q, const char *full_path,
                         arena *a, egress_request *out, err *e)
{
  memset(out, 0, sizeof *out);
  bool had_vars = false;
  char *url = fill_uri(t, t->uri, a, &had_vars);
  const char *base;
  const char *upath;
  const char *uquery;
  split_url(url, a, &base, &upath, &uquery);
  const char *path = upath;
  bool is_default = strcmp(t->route_key, "$default") == 0;
  if (is_default && !had_vars) {
    size_t ul = strlen(upath);
    const char *rp = uri_encode(a, q->path, strlen(q->path), true);
    path = arena_sprintf(a, "%.*s%s", (int)(ul > 0 && upath[ul - 1] == '/' ? ul - 1 : ul), upath,
                         rp);
  }
  pairs h = {0};
  pairs qs = {0};
  for (size_t i = 0; i < q->nheaders; i++)
    if (!hop_by_hop(q->headers[i].name) && strcmp(q->headers[i].name, "x-forwarded-for") != 0)
      pairs_add(a, &h, q->headers[i].name, q->headers[i].value);
  const char *xff = find_pair(q->headers, q->nheaders, "x-forwarded-for", false);
  pairs_add(a, &h, "x-forwarded-for",
            xff ? arena_sprintf(a, "%s, %s", xff, q->source_ip) : q->source_ip);
  if (find_pair(q->headers, q->nheaders, "x-forwarded-proto", false) == NULL)
    pairs_add(a, &h, "x-forwarded-proto", "http");
  for (size_t i = 0; i < q->nquery; i++)
    pairs_add(a, &qs, q->query[i].name, q->query[i].value);
  bool qs_changed = false;
  if (t->request_parameters != NULL) {
    static const char *const order[] = {"remove", "overwrite", "append"};
    for (size_t i = 0; i < 3; i++)
      apply_params(t, q, full_path, order[i], a, &h, &qs, &qs_changed, &path);
  }
  if (*path == '\0')
    path = "/";
  else if (*path != '/')
    path = arena_sprintf(a, "/%s", path);
  /* the query: the URI's own, then the request's (as sent, or rebuilt) */
  buf b;
  buf_init(&b, 65536);
  if (uquery != NULL && *uquery)
    buf_puts(&b, uquery);
  if (qs_changed) {
    for (size_t i = 0; i < qs.n; i++) {
      if (b.len)
        buf_puts(&b, "&");
      buf_puts(&b, uri_encode(a, qs.p[i].name, strlen(qs.p[i].name), false));
      buf_puts(&b, "=");
      buf_puts(&b, uri_encode(a, qs.p[i].value, strlen(qs.p[i].value), false));
    }
  } else if (q->raw_query != NULL && *q->raw_query) {
    if (b.len)
      buf_puts(&b, "&");
    buf_puts(&b, q->raw_query);
  }
  out->url = b.len ? arena_sprintf(a, "%s%s?%.*s", base, path, (int)b.len, b.data)
                   : arena_sprintf(a, "%s%s", base, path);
  buf_release(&b);
  if (strlen(out->url) > 16384)
    return err_set(e, ERR_INVALID, "the integration's URL is longer than 16384 bytes");
  if (h.n > MAX_OUT_HEADERS)
    return err_set(e, ERR_INVALID, "more than %d headers for the integration", MAX_OUT_HEADERS);
  out->method = t->http_method;
  out->headers = h.p;
  out->nheaders = h.n;
  bool bodiless = strcmp(out->method, "GET") == 0 || strcmp(out->method, "HEAD") == 0;
  if (!bodiless || q->body_len > 0) {
    out->body = q->body;
    out->body_len = q->body_len;
  }
  out->timeout_ms = t->timeout_ms;
  out->max_response = GATEWAY_MAX_PAYLOAD;
  return 0;
}

void gateway_http_response(egress_response *in, arena *a, gateway_response *out)
{
  memset(out, 0, sizeof *out);
  out->status = (int)in->status;
  out->headers = arena_alloc(a, (in->nheaders + 1) * sizeof *out->headers);
  for (size_t i = 0; i < in->nheaders; i++) {
    if (hop_by_hop(in->headers[i].name))
      continue;
    out->headers[out->nheaders++] = in->headers[i];
  }
  out->body = in->body; /* moved (3) */
  memset(&in->body, 0, sizeof in->body);
}
