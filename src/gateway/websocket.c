/* gateway/websocket.c -- WebSocket APIs' logic: which stage a connection
 * opens on, which route a message takes (the API's
 * routeSelectionExpression over the message's JSON body, then $default),
 * and the events the routes' functions receive (eventType CONNECT,
 * MESSAGE, DISCONNECT, as API Gateway sends them). No sockets here: the
 * connections live in api/apigatewayv2_ws.c.
 *
 * Invariants:
 *   (1) A WebSocket API is reached only on a named stage (the first path
 *       segment), or on $default when it has one.
 *   (2) A message that is not JSON, or whose selected value is missing or
 *       not a string, or names no route, takes $default (when it exists).
 *
 * Start reading at gateway_ws_select().
 */
#include "gateway/internal.h"

#include "base/hash.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "$request.body.a.b" or "${request.body.a.b}" -> "a.b" (arena), or NULL. */
static const char *expression_path(const char *expr, arena *a)
{
  if (str_starts(expr, "$request.body.") && expr[14] != '\0')
    return arena_strdup(a, expr + 14);
  size_t n = strlen(expr);
  if (str_starts(expr, "${request.body.") && n > 16 && expr[n - 1] == '}')
    return arena_strndup(a, expr + 15, n - 16);
  return NULL;
}

bool gateway_ws_expression_ok(const char *expr)
{
  arena *a = arena_new();
  const char *p = expression_path(expr, a);
  bool ok = p != NULL && strlen(p) <= 256 && strstr(p, "..") == NULL && p[0] != '.' &&
            p[strlen(p) - 1] != '.';
  arena_free(a);
  return ok;
}

bool gateway_api_is_websocket(const json_t *doc)
{
  const char *p = json_string_value(json_object_get(json_object_get(doc, "api"), "protocolType"));
  return p != NULL && strcmp(p, "WEBSOCKET") == 0;
}

json_t *gateway_api_snapshot(gateway *g, const char *api_id)
{
  return gateway__api_snapshot(g, api_id);
}

int gateway_ws_stage(const json_t *doc, const char *path, arena *a, const char **stage,
                     const char **rest, err *e)
{
  json_t *stages = json_object_get(doc, "stages");
  *rest = path;
  if (path[0] == '/' && path[1] != '\0') {
    const char *end = strchr(path + 1, '/');
    char *first = arena_strndup(a, path + 1, end ? (size_t)(end - path - 1) : strlen(path + 1));
    if (strcmp(first, "$default") != 0 && json_object_get(stages, first) != NULL) {
      *stage = first;
      *rest = end ? end : "/";
      return 0;
    }
  }
  if (json_object_get(stages, "$default") != NULL) {
    *stage = "$default";
    return 0;
  }
  return err_set(e, ERR_NOT_FOUND, "no stage for '%s'", path);
}

const char *gateway_ws_route(const json_t *doc, const char *key, arena *a,
                             const char **authorization)
{
  const char *rid;
  json_t *r;
  json_object_foreach(json_object_get(doc, "routes"), rid, r)
  {
    const char *k = json_string_value(json_object_get(r, "routeKey"));
    if (k == NULL || strcmp(k, key) != 0)
      continue;
    if (authorization != NULL)
      *authorization = json_string_value(json_object_get(r, "authorizationType"));
    const char *target = json_string_value(json_object_get(r, "target"));
    if (target == NULL || !str_starts(target, "integrations/"))
      return "";
    json_t *integ = json_object_get(json_object_get(doc, "integrations"), target + 13);
    const char *uri = json_string_value(json_object_get(integ, "integrationUri"));
    if (uri == NULL)
      return "";
    return gateway_uri_function(uri, a);
  }
  return NULL;
}

bool gateway_ws_two_way(const json_t *doc, const char *key)
{
  const char *rid;
  json_t *r;
  json_object_foreach(json_object_get(doc, "routes"), rid, r)
  {
    const char *k = json_string_value(json_object_get(r, "routeKey"));
    if (k == NULL || strcmp(k, key) != 0 ||
        json_string_value(json_object_get(r, "routeResponseSelectionExpression")) == NULL)
      continue;
    const char *id;
    json_t *rr;
    json_object_foreach(json_object_get(doc, "routeResponses"), id, rr)
    {
      const char *of = json_string_value(json_object_get(rr, "routeId"));
      if (of != NULL && strcmp(of, rid) == 0)
        return true;
    }
  }
  return false;
}

const json_t *gateway_ws_authorizer(const json_t *doc, const char *key)
{
  const char *rid;
  json_t *r;
  json_object_foreach(json_object_get(doc, "routes"), rid, r)
  {
    const char *k = json_string_value(json_object_get(r, "routeKey"));
    const char *az = json_string_value(json_object_get(r, "authorizerId"));
    if (k != NULL && strcmp(k, key) == 0 && az != NULL)
      return json_object_get(json_object_get(doc, "authorizers"), az);
  }
  return NULL;
}

const char *gateway_ws_select(const json_t *doc, const void *msg, size_t len, bool binary,
                              arena *a)
{
  const char *expr =
      json_string_value(json_object_get(json_object_get(doc, "api"), "routeSelectionExpression"));
  const char *path = expr ? expression_path(expr, a) : NULL;
  const char *key = NULL;
  json_t *j = !binary && path != NULL ? json_loadb(msg, len, 0, NULL) : NULL;
  if (json_is_object(j)) {
    json_t *v = j;
    char *segs = arena_strdup(a, path);
    for (char *tok = strtok(segs, "."); tok != NULL && v != NULL; tok = strtok(NULL, "."))
      v = json_object_get(v, tok);
    if (json_is_string(v) && gateway_ws_route(doc, json_string_value(v), a, NULL) != NULL &&
        json_string_value(v)[0] != '$')
      key = arena_strdup(a, json_string_value(v));
  }
  json_decref(j);
  if (key == NULL && gateway_ws_route(doc, "$default", a, NULL) != NULL)
    key = "$default";
  return key;
}

json_t *gateway_ws_event(const gateway_ws_conn *c, const char *event_type, const char *route_key,
                         const char *request_id, const gateway_request *q, const void *body,
                         size_t len, bool binary, int close_code, const char *reason)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char clf[40];
  strftime(clf, sizeof clf, "%d/%b/%Y:%H:%M:%S +0000", &tm);
  json_t *ctx = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:{s:s, s:s}, s:s, s:s, s:s, s:s}", "routeKey",
      route_key, "eventType", event_type, "extendedRequestId", request_id, "requestTime", clf,
      "messageDirection", "IN", "stage", c->stage, "connectedAt", (json_int_t)c->connected_at_ms,
      "requestTimeEpoch", (json_int_t)now, "identity", "sourceIp", c->source_ip, "userAgent",
      c->user_agent ? c->user_agent : "", "requestId", request_id, "domainName", c->domain,
      "connectionId", c->connection_id, "apiId", c->api_id);
  json_t *ev = json_object();
  if (c->authorizer != NULL)
    json_object_set(ctx, "authorizer", (json_t *)c->authorizer);
  if (strcmp(event_type, "MESSAGE") == 0)
    json_object_set_new(ctx, "messageId", json_string(request_id));
  if (strcmp(event_type, "DISCONNECT") == 0) {
    json_object_set_new(ctx, "disconnectStatusCode", json_integer(close_code));
    json_object_set_new(ctx, "disconnectReason", json_string(reason ? reason : ""));
  }
  if (q != NULL) {
    json_t *h = json_object();
    json_t *mh = json_object();
    for (size_t i = 0; i < q->nheaders; i++) {
      /* API Gateway's events spell header names as the client sent them;
         tarn has them lower-case */
      json_object_set_new(h, q->headers[i].name, json_string(q->headers[i].value));
      json_t *arr = json_object_get(mh, q->headers[i].name);
      if (arr == NULL)
        json_object_set_new(mh, q->headers[i].name, arr = json_array());
      json_array_append_new(arr, json_string(q->headers[i].value));
    }
    json_object_set_new(ev, "headers", h);
    json_object_set_new(ev, "multiValueHeaders", mh);
    if (q->nquery > 0) {
      json_t *qs = json_object();
      json_t *mqs = json_object();
      for (size_t i = 0; i < q->nquery; i++) {
        json_object_set_new(qs, q->query[i].name, json_string(q->query[i].value));
        json_t *arr = json_object_get(mqs, q->query[i].name);
        if (arr == NULL)
          json_object_set_new(mqs, q->query[i].name, arr = json_array());
        json_array_append_new(arr, json_string(q->query[i].value));
      }
      json_object_set_new(ev, "queryStringParameters", qs);
      json_object_set_new(ev, "multiValueQueryStringParameters", mqs);
    }
  }
  json_object_set_new(ev, "requestContext", ctx);
  if (body != NULL) {
    if (binary) {
      char *s = xmalloc(base64_encoded_len(len));
      base64_encode(body, len, s);
      json_object_set_new(ev, "body", json_string(s));
      free(s);
    } else {
      json_object_set_new(ev, "body", json_stringn(body, len));
    }
  }
  json_object_set_new(ev, "isBase64Encoded", json_boolean(binary && body != NULL));
  return ev;
}
