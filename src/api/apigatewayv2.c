/* api/apigatewayv2.c -- API Gateway's HTTP and WebSocket APIs on the wire:
 * the management API (apigatewayv2 REST-JSON, SigV4 scope "apigateway")
 * and the front door that serves invoke URLs and function URLs to anyone.
 *
 * Management (bodies and answers in apigatewayv2's camelCase members,
 * errors as {"message": ...} with x-amzn-ErrorType):
 *   POST /v2/apis                     CreateApi (201)      GET /v2/apis   GetApis
 *   GET|PATCH|DELETE /v2/apis/A       GetApi, UpdateApi, DeleteApi (204)
 *   POST|GET /v2/apis/A/routes        CreateRoute (201), GetRoutes
 *   GET|PATCH|DELETE /v2/apis/A/routes/R
 *   ... the same for /integrations/I, /stages/S, /deployments/D and
 *   /authorizers/Z
 *
 * The front door (service "execute-api", http_service.claim):
 *   /_tarn/apis/A/[STAGE/]PATH, or Host A.execute-api.localhost -> /PATH
 *   /_tarn/urls/U/PATH,          or Host U.lambda-url.localhost  -> /PATH
 * A request resolves to a route (gateway_resolve) in prepare, before its
 * body is read. An AWS_PROXY route's function gets the proxy event and the
 * answer is mapped back (gateway/proxy.c); a route with an authorizer
 * (JWT, CUSTOM) or an HTTP_PROXY integration runs as a door job on a
 * thread of its own (the authorizer, then the integration: JWKS fetches,
 * the authorizer function and the outbound HTTP call block). Errors are
 * API Gateway's: {"message":"Not Found"} 404, {"message":"Unauthorized"}
 * 401, {"message":"Forbidden"} 403, {"message":"Internal Server Error"}
 * 500 (function URLs and unreachable HTTP backends: 502),
 * {"message":"Service Unavailable"} 503 when a function integration times
 * out, {"message":"Gateway Timeout"} 504 when an HTTP one does.
 * On a WebSocket API the door takes upgrades ($connect decides, then the
 * socket goes to api/apigatewayv2_ws.c) and the @connections API.
 *
 * Invariants:
 *   (1) Anonymous access is deliberate and narrow: a request without a
 *       signature reaches a function or a backend only through a route
 *       whose authorizationType is NONE (or whose authorizer allows it) or
 *       a function URL whose AuthType is NONE; everything else answers
 *       401/403. Signed requests were verified by the server before
 *       prepare, and callers other than the administrator are asked IAM
 *       for execute-api:Invoke, execute-api:ManageConnections or
 *       lambda:InvokeFunctionUrl.
 *   (2) A request holds no pool thread while its function runs (as
 *       Lambda's Invoke, api/lambda.c (2)): handle parks it, fn calls
 *       invoke_done once under fn's lock, cleanup forgets the invocation
 *       under the same lock. The integration's time-out is fn's own
 *       deadline, capped by the integration's timeoutInMillis through the
 *       watchdog below.
 *   (3) A door job may touch its front and request until it clears busy
 *       (under a->mu); cleanup marks the front gone and waits for that, so
 *       a job never answers a request whose cleanup has run. At most
 *       DOOR_MAX_JOBS are queued or run at once (beyond: 429).
 *   (4) Jobs run on job threads that stay for WORKER_IDLE_MS after their
 *       last job (a request does not pay for a thread's start); a job is
 *       queued only when a worker is idle or a new one started, so it never
 *       waits behind another job.
 *
 * Start reading at front_prepare() and mgmt_handle().
 */
#include "api/apigatewayv2.h"
#include "api/apigatewayv2_ws.h"
#include "api/iam.h"
#include "api/lambda_json.h"

#include "base/mem.h"
#include "base/text.h"
#include "http/websocket.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MGMT_BODY_MAX (1u << 20)
#define DOOR_MAX_JOBS 256         /* requests in an authorizer or HTTP integration at once */
#define AUTHZ_CACHE_MAX 10000     /* cached REQUEST authorizer results */
#define WORKER_IDLE_MS 30000      /* a job thread with nothing to do this long ends */

typedef struct front front;

typedef struct apigw {
  http_service mgmt;     /* first: "apigateway" */
  http_service door;     /* "execute-api": invoke and function URLs */
  gateway *g;
  fn_system *fn;
  const netpolicy *egress;   /* HTTP_PROXY integrations and JWKS fetches (borrowed) */
  gateway_jwks *jwks;        /* JWT authorizers' keys */
  pthread_cond_t idle;       /* a job or a worker ended (cleanup waits for its front's) */
  int jobs;                  /* door jobs queued or running (under mu), at most DOOR_MAX_JOBS */
  front *queue;              /* jobs not taken yet, oldest first (under mu) */
  front *queue_tail;
  int queued;                /* jobs in queue */
  pthread_cond_t job_ready;  /* a job was queued, or the door stops */
  int workers;               /* job threads alive (under mu) */
  int idle_workers;          /* ... waiting for a job */
  json_t *authz_cache;       /* REQUEST authorizers' results: key -> {ok, authorizer, until} */
  ws_hub *hub;               /* WebSocket APIs' connections */
  /* the watchdog: parked invocations with a deadline shorter than fn's */
  pthread_mutex_t mu;
  pthread_cond_t wake;
  pthread_t thread;
  bool running;
  bool stopping;
  front *waiting;        /* parked requests, in no order */
  int64_t next_wake_ms;  /* when the watchdog wakes next (monotonic) */
} apigw;

/* ---- management ---- */

typedef struct mgmt_call {
  const char *api_id;
  enum gateway_kind kind;
  bool child;            /* the path names a child collection */
  const char *child_id;
  const char *route_id;  /* route responses: the route they belong to */
} mgmt_call;

/* The body of every error here: {"<key>": msg}. */
static void write_message(http_req *r, const char *key, const char *msg)
{
  json_t *j = json_pack("{s:s}", key, msg);
  char *text = json_dumps(j, JSON_COMPACT);
  buf_puts(&r->resp_body, text);
  free(text);
  json_decref(j);
}

static void mgmt_error(void *ctx, http_req *r, const err *e)
{
  int status = 500;
  const char *type = "InternalServerErrorException";
  switch (e->code) {
  case ERR_NOT_FOUND:
  case ERR_METHOD_NOT_ALLOWED:
    status = 404;
    type = "NotFoundException";
    break;
  case ERR_INVALID:
  case ERR_INVALID_REQUEST:
  case ERR_LIMIT_EXCEEDED:
  case ERR_ENTITY_TOO_LARGE:
  case ERR_INCOMPLETE_BODY:
    status = 400;
    type = "BadRequestException";
    break;
  case ERR_CONFLICT:
    status = 409;
    type = "ConflictException";
    break;
  case ERR_DENIED:
  case ERR_SIGNATURE:
  case ERR_UNKNOWN_ACCESS_KEY:
  case ERR_TIME_SKEWED:
  case ERR_EXPIRED:
  case ERR_AUTH_MALFORMED:
    status = 403;
    type = "AccessDeniedException";
    break;
  case ERR_THROTTLED:
    status = 429;
    type = "TooManyRequestsException";
    break;
  }
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "application/json");
  http_resp_header(r, "x-amzn-ErrorType", type);
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  write_message(r, "message", e->msg);
}

/* Splits /v2/apis[/A[/KIND[/ID]]] into c; names the operation. */
static int mgmt_prepare(void *ctx, http_req *r, err *e)
{
  mgmt_call *c = arena_alloc(r->arena, sizeof *c);
  memset(c, 0, sizeof *c);
  r->svc = c;
  const char *p = r->path;
  if (!str_starts(p, "/v2/apis"))
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "no operation %s %s", r->method, p);
  p += strlen("/v2/apis");
  if (*p == '/' && p[1] != '\0') {
    const char *s = p + 1;
    const char *end = strchr(s, '/');
    c->api_id = arena_strndup(r->arena, s, end ? (size_t)(end - s) : strlen(s));
    p = end ? end : "";
    if (*p == '/' && p[1] != '\0') {
      s = p + 1;
      end = strchr(s, '/');
      size_t n = end ? (size_t)(end - s) : strlen(s);
      if (n == 6 && strncmp(s, "routes", 6) == 0)
        c->kind = GATEWAY_ROUTE;
      else if (n == 12 && strncmp(s, "integrations", 12) == 0)
        c->kind = GATEWAY_INTEGRATION;
      else if (n == 6 && strncmp(s, "stages", 6) == 0)
        c->kind = GATEWAY_STAGE;
      else if (n == 11 && strncmp(s, "deployments", 11) == 0)
        c->kind = GATEWAY_DEPLOYMENT;
      else if (n == 11 && strncmp(s, "authorizers", 11) == 0)
        c->kind = GATEWAY_AUTHORIZER;
      else
        return err_set(e, ERR_METHOD_NOT_ALLOWED, "no operation %s %s", r->method, r->path);
      c->child = true;
      if (end != NULL && end[1] != '\0') {
        const char *slash = strchr(end + 1, '/');
        if (slash != NULL && c->kind == GATEWAY_ROUTE &&
            str_starts(slash, "/routeresponses") &&
            (slash[15] == '\0' || (slash[15] == '/' && slash[16] != '\0' &&
                                   strchr(slash + 16, '/') == NULL))) {
          /* /routes/R/routeresponses[/RR] */
          c->kind = GATEWAY_ROUTE_RESPONSE;
          c->route_id = arena_strndup(r->arena, end + 1, (size_t)(slash - end - 1));
          if (slash[15] == '/')
            c->child_id = arena_strdup(r->arena, slash + 16);
        } else if (slash != NULL) {
          return err_set(e, ERR_METHOD_NOT_ALLOWED, "no operation %s %s", r->method, r->path);
        } else {
          c->child_id = arena_strdup(r->arena, end + 1);
        }
      }
    }
  }
  static const char *const kinds[] = {"Route", "Integration", "Stage", "Deployment",
                                      "Authorizer", "RouteResponse"};
  const char *m = r->method;
  const char *what = c->child ? kinds[c->kind] : "Api";
  bool one = c->child ? c->child_id != NULL : c->api_id != NULL;
  const char *verb = NULL;
  if (strcmp(m, "POST") == 0 && !one)
    verb = "Create";
  else if (strcmp(m, "GET") == 0)
    verb = "Get";
  else if (strcmp(m, "PATCH") == 0 && one)
    verb = "Update";
  else if (strcmp(m, "DELETE") == 0 && one)
    verb = "Delete";
  if (verb == NULL)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "no operation %s %s", m, r->path);
  r->op = arena_sprintf(r->arena, "%s%s%s", verb, what,
                        strcmp(verb, "Get") == 0 && !one ? "s" : "");
  http_req_body_max(r, MGMT_BODY_MAX);
  if (r->admin)
    return 0;
  /* IAM names API Gateway's resources without the version: ...::/apis/ID/routes/R */
  const char *res = arena_sprintf(r->arena, "arn:aws:apigateway:%s::%s", GATEWAY_REGION,
                                  r->path + strlen("/v2"));
  return api_authorize(r, arena_sprintf(r->arena, "apigateway:%s", m), res, e);
}

/* An API document for the wire: apiEndpoint points at this server. */
static json_t *api_out(http_req *r, json_t *api)
{
  json_t *o = json_deep_copy(api);
  const char *host = http_req_header(r, "host");
  json_object_set_new(o, "apiEndpoint",
                      json_sprintf("http://%s/_tarn/apis/%s", host ? host : "127.0.0.1:9000",
                                   json_string_value(json_object_get(api, "apiId"))));
  json_decref(api);
  return o;
}

static void send_items(http_req *r, json_t *items, bool apis)
{
  if (apis) {
    size_t i;
    json_t *v;
    json_array_foreach(items, i, v) json_array_set_new(items, i, api_out(r, json_incref(v)));
  }
  lambda_json_send(r, 200, json_pack("{s:o}", "items", items));
}

/* Route responses live in the API's flat map with the route's id: the path
 * names the route; one of another route is not found. */
static int route_response_scope(apigw *a, mgmt_call *c, json_t **in, err *e)
{
  json_t *rt = NULL;
  int rc = gateway_child_get(a->g, GATEWAY_ROUTE, c->api_id, c->route_id, &rt, e);
  json_decref(rt);
  if (rc != 0)
    return rc;
  if (c->child_id != NULL) {
    json_t *rr = NULL;
    rc = gateway_child_get(a->g, GATEWAY_ROUTE_RESPONSE, c->api_id, c->child_id, &rr, e);
    const char *of = rc == 0 ? json_string_value(json_object_get(rr, "routeId")) : NULL;
    if (rc == 0 && (of == NULL || strcmp(of, c->route_id) != 0))
      rc = err_set(e, ERR_NOT_FOUND, "Invalid RouteResponse identifier specified %s",
                   c->child_id);
    json_decref(rr);
    if (rc != 0)
      return rc;
  }
  if (*in != NULL) {
    json_t *copy = json_deep_copy(*in);
    json_decref(*in);
    *in = copy;
    if (json_is_object(copy))
      json_object_set_new(copy, "routeId", json_string(c->route_id));
  }
  return 0;
}

static int mgmt_run(apigw *a, http_req *r, mgmt_call *c, err *e)
{
  json_t *in = NULL;
  json_t *out = NULL;
  int rc = 0;
  const char verb = r->op[0]; /* C(reate), G(et), U(pdate), D(elete) */
  if ((verb == 'C' || verb == 'U') && (rc = lambda_json_body(r, &in, e)) != 0)
    return rc;
  if (!c->child) {
    switch (verb) {
    case 'C': rc = gateway_api_create(a->g, in, &out, e); break;
    case 'U': rc = gateway_api_update(a->g, c->api_id, in, &out, e); break;
    case 'D': rc = gateway_api_delete(a->g, c->api_id, e); break;
    default:
      rc = c->api_id ? gateway_api_get(a->g, c->api_id, &out, e) : gateway_api_list(a->g, &out, e);
    }
    if (rc == 0 && out != NULL && c->api_id == NULL && verb == 'G')
      send_items(r, out, true);
    else if (rc == 0 && out != NULL)
      lambda_json_send(r, verb == 'C' ? 201 : 200, api_out(r, out));
  } else {
    if (c->kind == GATEWAY_ROUTE_RESPONSE)
      rc = route_response_scope(a, c, &in, e);
    if (rc != 0) {
      json_decref(in);
      return rc;
    }
    switch (verb) {
    case 'C': rc = gateway_child_create(a->g, c->kind, c->api_id, in, &out, e); break;
    case 'U': rc = gateway_child_update(a->g, c->kind, c->api_id, c->child_id, in, &out, e); break;
    case 'D': rc = gateway_child_delete(a->g, c->kind, c->api_id, c->child_id, e); break;
    default:
      rc = c->child_id ? gateway_child_get(a->g, c->kind, c->api_id, c->child_id, &out, e)
                       : gateway_child_list(a->g, c->kind, c->api_id, &out, e);
    }
    if (rc == 0 && out != NULL && c->kind == GATEWAY_ROUTE_RESPONSE && c->child_id == NULL &&
        verb == 'G') { /* the route's own */
      size_t i = 0;
      while (i < json_array_size(out)) {
        const char *of = json_string_value(json_object_get(json_array_get(out, i), "routeId"));
        if (of != NULL && strcmp(of, c->route_id) == 0)
          i++;
        else
          json_array_remove(out, i);
      }
    }
    if (rc == 0 && out != NULL && c->child_id == NULL && verb == 'G')
      send_items(r, out, false);
    else if (rc == 0 && out != NULL)
      lambda_json_send(r, verb == 'C' ? 201 : 200, out);
  }
  if (rc == 0 && verb == 'D') {
    http_resp_status(r, 204);
    http_resp_header(r, "x-amzn-RequestId", r->request_id);
  }
  json_decref(in);
  return rc;
}

static void mgmt_handle(void *ctx, http_req *r)
{
  apigw *a = ctx;
  err e = {0};
  if (mgmt_run(a, r, r->svc, &e) != 0) {
    r->nresp_headers = 0;
    buf_reset(&r->resp_body);
    mgmt_error(a, r, &e);
  }
}

/* ---- the front door ---- */

struct front {
  http_req *req;
  bool url;                  /* a function URL (else an HTTP API) */
  const char *id;            /* API id or URL id */
  const char *path;          /* after the id (and stage) */
  const char *full_path;     /* what the event calls rawPath */
  gateway_target t;          /* HTTP APIs: the route (snapshot released in cleanup) */
  const char *function;
  const char *qualifier;
  const char *format;
  buf event;                 /* the payload handed to fn */
  json_t *cors;              /* the API's or URL's CORS configuration, or NULL */
  bool preflight;            /* an OPTIONS preflight answered from cors alone */
  /* parked (see (2)) */
  bool parked;
  bool answered;             /* invoke_done or the watchdog answered */
  bool watched;              /* put on the watchdog's list */
  bool handle_done;          /* front_handle returned from fn_invoke (under a->mu):
                                the watchdog leaves f alone before, so it never
                                races the invocation's admission */
  fn_invocation *running;    /* under fn's lock */
  /* a door job (authorizer, HTTP integration) runs for f on its own thread */
  bool busy;                 /* under a->mu: the job may still touch f and its request */
  bool gone;                 /* under a->mu: cleanup began; the job must not answer */
  json_t *authz;             /* what the authorizer found (requestContext.authorizer) */
  front *next_job;           /* in a->queue, under a->mu */
  const char *route_arn;     /* arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH */
  apigw *a;
  /* WebSocket APIs */
  bool ws;                   /* a WebSocket API: a connect or an @connections call */
  const char *ws_conn;       /* @connections/<id>: the id; NULL for a connect */
  const char *ws_function;   /* the $connect route's function, or NULL */
  gateway_ws_conn wsc;       /* the connection being opened */
  int64_t deadline_ms;       /* monotonic; the watchdog's */
  front *next;               /* in a->waiting, under a->mu */
};

/* "<id>.execute-api.localhost[:port]" -> id (arena), or NULL. */
static const char *host_id(http_req *r, const char *suffix)
{
  const char *h = http_req_header(r, "host");
  if (h == NULL)
    return NULL;
  const char *dot = strchr(h, '.');
  if (dot == NULL || dot == h)
    return NULL;
  size_t sl = strlen(suffix);
  if (strncmp(dot, suffix, sl) != 0 || (dot[sl] != '\0' && dot[sl] != ':'))
    return NULL;
  return arena_strndup(r->arena, h, (size_t)(dot - h));
}

static bool door_claim(void *ctx, const http_req *r)
{
  if (str_starts(r->raw_path, "/_tarn/apis/") || str_starts(r->raw_path, "/_tarn/urls/"))
    return true;
  const char *h = http_req_header(r, "host");
  return h != NULL && (strstr(h, ".execute-api.localhost") != NULL ||
                       strstr(h, ".lambda-url.localhost") != NULL);
}

static void door_error(void *ctx, http_req *r, const err *e)
{
  const front *f = r->svc;
  int status = 500;
  const char *msg = "Internal Server Error";
  switch (e->code) {
  case ERR_NOT_FOUND:
  case ERR_METHOD_NOT_ALLOWED:
    status = 404;
    msg = "Not Found";
    break;
  case ERR_DENIED:
    status = 403;
    msg = "Forbidden";
    break;
  case ERR_UNAUTHORIZED:
    status = 401;
    msg = "Unauthorized";
    break;
  case ERR_INVALID_REQUEST:
    status = 400;
    msg = "Bad Request";
    break;
  case ERR_SIGNATURE:
  case ERR_UNKNOWN_ACCESS_KEY:
  case ERR_TIME_SKEWED:
  case ERR_EXPIRED:
  case ERR_AUTH_MALFORMED:
    status = 403;
    msg = e->msg;
    break;
  case ERR_ENTITY_TOO_LARGE:
    status = 413;
    msg = "Request Entity Too Large";
    break;
  case ERR_THROTTLED:
    status = 429;
    msg = "Too Many Requests";
    break;
  case ERR_UNAVAILABLE:
  case ERR_REQUEST_TIMEOUT:
    status = 503;
    msg = "Service Unavailable";
    break;
  default:
    if (f != NULL && f->url)
      status = 502; /* function URLs answer a failed function with Bad Gateway */
  }
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "application/json");
  http_resp_header(r, "apigw-requestid", r->request_id);
  write_message(r, f != NULL && f->url ? "Message" : "message", msg);
}

/* A CORS preflight that the configuration answers (as API Gateway does,
 * with no route, integration or signature involved). */
static bool is_preflight(http_req *r, front *f)
{
  f->preflight = f->cors != NULL && strcmp(r->method, "OPTIONS") == 0 &&
                 http_req_header(r, "origin") != NULL &&
                 http_req_header(r, "access-control-request-method") != NULL;
  if (f->preflight)
    r->op = "Preflight";
  return f->preflight;
}

/* Adds the CORS headers of f's configuration to r's response. */
static void add_cors(http_req *r, front *f, bool preflight)
{
  str_pair *h = NULL;
  size_t n = 0;
  gateway_cors_headers(f->cors, http_req_header(r, "origin"), preflight, r->arena, &h, &n);
  for (size_t i = 0; i < n; i++)
    http_resp_header(r, h[i].name, h[i].value);
}

/* The synchronous invocation of function with f's event, answered to done. */
static fn_invoke_params front_params(front *f, const char *function, fn_invoke_done done)
{
  return (fn_invoke_params){
      .name = function,
      .type = FN_INVOKE_SYNC,
      .payload = f->event.data,
      .len = f->event.len,
      .done = done,
      .done_ctx = f,
      .running = &f->running,
  };
}

/* ---- WebSocket APIs: connect and @connections ---- */

static void request_view(front *f, gateway_request *q);
static void start_job(apigw *a, front *f);

/* A request to a WebSocket API (doc: its document, kept in f->t.snapshot):
 * an upgrade on a stage, or the @connections API (SigV4, IAM action
 * execute-api:ManageConnections). */
static int ws_prepare(apigw *a, http_req *r, front *f, json_t *doc, const char *path, err *e)
{
  f->ws = true;
  f->t.snapshot = doc;
  const char *stage;
  const char *rest;
  int rc = gateway_ws_stage(doc, path, r->arena, &stage, &rest, e);
  if (rc != 0)
    return rc;
  f->t.stage = stage;
  f->full_path = path;
  if (str_starts(rest, "/@connections/") && rest[14] != '\0' && strchr(rest + 14, '/') == NULL) {
    f->ws_conn = rest + 14;
    const char *m = r->method;
    r->op = strcmp(m, "POST") == 0     ? "PostToConnection"
            : strcmp(m, "GET") == 0    ? "GetConnection"
            : strcmp(m, "DELETE") == 0 ? "DeleteConnection"
                                       : NULL;
    if (r->op == NULL)
      return err_set(e, ERR_NOT_FOUND, "no operation %s on @connections", m);
    http_req_body_max(r, GATEWAY_WS_MAX_MESSAGE);
    if (!r->authenticated)
      return err_set(e, ERR_DENIED, "the @connections API needs a signed request");
    if (r->admin)
      return 0;
    return api_authorize(r, "execute-api:ManageConnections",
                         arena_sprintf(r->arena, "arn:aws:execute-api:%s:%s:%s/%s/%s/@connections/%s",
                                       GATEWAY_REGION, GATEWAY_ACCOUNT_ID, f->id, stage, m,
                                       f->ws_conn),
                         e);
  }
  r->op = "Connect";
  const char *upgrade = http_req_header(r, "upgrade");
  const char *key = http_req_header(r, "sec-websocket-key");
  const char *version = http_req_header(r, "sec-websocket-version");
  if (strcmp(r->method, "GET") != 0 || upgrade == NULL || strcasecmp(upgrade, "websocket") != 0 ||
      key == NULL || version == NULL || strcmp(version, "13") != 0)
    return err_set(e, ERR_INVALID_REQUEST, "a WebSocket API takes WebSocket (RFC 6455) upgrades");
  const char *auth = NULL;
  f->ws_function = gateway_ws_route(doc, "$connect", r->arena, &auth);
  if (f->ws_function != NULL && *f->ws_function == '\0')
    return err_set(e, ERR_INTERNAL, "the $connect route has no integration");
  if (auth != NULL && strcmp(auth, "CUSTOM") == 0) {
    /* the authorizer decides, in a door job (see ws_handle) */
    f->t.authorizer = gateway_ws_authorizer(doc, "$connect");
    const char *uri = json_string_value(json_object_get(f->t.authorizer, "authorizerUri"));
    if (uri == NULL)
      return err_set(e, ERR_INTERNAL, "the $connect route's authorizer is missing");
    f->t.authorizer_function = gateway_uri_function(uri, r->arena);
    f->t.route_key = "$connect";
    f->t.format = "1.0";
    f->t.api_id = f->id;
    f->t.stage_vars = json_object_get(json_object_get(json_object_get(doc, "stages"), stage),
                                      "stageVariables");
    f->route_arn = arena_sprintf(r->arena, "arn:aws:execute-api:%s:%s:%s/%s/$connect",
                                 GATEWAY_REGION, GATEWAY_ACCOUNT_ID, f->id, stage);
    return 0;
  }
  if (auth != NULL && strcmp(auth, "AWS_IAM") == 0) {
    if (!r->authenticated)
      return err_set(e, ERR_DENIED, "a signed request is required");
    if (!r->admin)
      return api_authorize(r, "execute-api:Invoke",
                           arena_sprintf(r->arena, "arn:aws:execute-api:%s:%s:%s/%s/$connect",
                                         GATEWAY_REGION, GATEWAY_ACCOUNT_ID, f->id, stage),
                           e);
  }
  return 0;
}

/* The 101 that hands the socket to the hub (or 429 when it is full);
 * protocol: the subprotocol $connect chose (Sec-WebSocket-Protocol), or
 * NULL. */
static void ws_accept(apigw *a, front *f, const char *protocol)
{
  http_req *r = f->req;
  void *pending = ws_hub_expect(a->hub, &f->wsc, r->headers, r->nheaders);
  if (pending == NULL) {
    err e = {0};
    err_set(&e, ERR_THROTTLED, "too many WebSocket connections");
    door_error(a, r, &e);
    return;
  }
  char accept[29];
  ws_accept_key(http_req_header(r, "sec-websocket-key"), accept);
  http_resp_header(r, "Upgrade", "websocket");
  http_resp_header(r, "Connection", "Upgrade");
  http_resp_header(r, "Sec-WebSocket-Accept", accept);
  if (protocol != NULL)
    http_resp_header(r, "Sec-WebSocket-Protocol", protocol);
  http_resp_header(r, "apigw-requestid", r->request_id);
  http_resp_upgrade(r, ws_hub_upgraded, pending);
}

/* $connect's answer (under fn's lock): a 2xx statusCode (or none) accepts,
 * anything else rejects the connection with that status. */
static void ws_connect_done(void *ctx, int rc, fn_invoke_result *res, const err *e)
{
  front *f = ctx;
  http_req *r = f->req;
  if (rc != 0) {
    door_error(NULL, r, e);
  } else if (res->function_error != NULL) {
    err fe = {0};
    err_set(&fe, ERR_INTERNAL, "$connect failed");
    door_error(NULL, r, &fe);
  } else {
    json_t *j = json_loadb(res->payload.data ? res->payload.data : "", res->payload.len,
                           JSON_DECODE_ANY, NULL);
    json_t *sc = json_is_object(j) ? json_object_get(j, "statusCode") : NULL;
    long status = json_is_integer(sc) ? (long)json_integer_value(sc)
                  : json_is_string(sc) ? strtol(json_string_value(sc), NULL, 10)
                                       : 200;
    if (status >= 200 && status <= 299) {
      const char *protocol = NULL;
      const char *name;
      json_t *v;
      json_object_foreach(json_object_get(j, "headers"), name, v)
      {
        if (strcasecmp(name, "sec-websocket-protocol") == 0 && json_is_string(v))
          protocol = json_string_value(v);
      }
      ws_accept(f->a, f, protocol);
    } else {
      http_resp_status(r, status >= 100 && status <= 599 ? (int)status : 500);
      http_resp_header(r, "apigw-requestid", r->request_id);
      const char *body = json_string_value(json_object_get(j, "body"));
      if (body != NULL)
        buf_puts(&r->resp_body, body);
    }
    json_decref(j);
  }
  if (res != NULL)
    buf_release(&res->payload);
  f->answered = true;
  http_req_resume(r);
}

/* The @connections API's answers and errors (apigatewaymanagementapi's shapes). */
static void ws_manage(apigw *a, http_req *r, front *f)
{
  err e = {0};
  int rc = 0;
  json_t *out = NULL;
  if (r->method[0] == 'P')
    rc = ws_hub_post(a->hub, f->id, f->ws_conn, r->body.data ? r->body.data : "", r->body.len,
                     &e);
  else if (r->method[0] == 'G')
    rc = ws_hub_describe(a->hub, f->id, f->ws_conn, &out, &e);
  else
    rc = ws_hub_disconnect(a->hub, f->id, f->ws_conn, &e);
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  if (rc == 0) {
    if (out != NULL)
      lambda_json_send(r, 200, out);
    else
      http_resp_status(r, r->method[0] == 'D' ? 204 : 200);
    return;
  }
  int status = 500;
  const char *type = "InternalServerErrorException";
  if (rc == ERR_NOT_FOUND) {
    status = 410;
    type = "GoneException";
  } else if (rc == ERR_ENTITY_TOO_LARGE) {
    status = 413;
    type = "PayloadTooLargeException";
  } else if (rc == ERR_LIMIT_EXCEEDED) {
    status = 429;
    type = "LimitExceededException";
  }
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "application/json");
  http_resp_header(r, "x-amzn-ErrorType", type);
  write_message(r, "message", e.msg);
}

/* A connect (r parked, authorized): $connect's function decides, or it is
 * accepted. */
static void ws_connect(apigw *a, front *f)
{
  http_req *r = f->req;
  f->wsc.authorizer = f->authz;
  if (f->ws_function == NULL) {
    ws_accept(a, f, NULL);
    f->answered = true;
    http_req_resume(r);
    return;
  }
  gateway_request q;
  request_view(f, &q);
  json_t *ev = gateway_ws_event(&f->wsc, "CONNECT", "$connect", r->request_id, &q, NULL, 0,
                                false, 0, NULL);
  char *text = json_dumps(ev, JSON_COMPACT);
  json_decref(ev);
  buf_puts(&f->event, text);
  free(text);
  fn_invoke_params p = front_params(f, f->ws_function, ws_connect_done);
  fn_invoke_result res;
  err e = {0};
  if (fn_invoke(a->fn, &p, r->arena, &res, &e) != 0) {
    if (e.code == ERR_NOT_FOUND || e.code == ERR_INVALID)
      e.code = ERR_INTERNAL;
    door_error(a, r, &e);
    f->answered = true;
    http_req_resume(r);
  }
}

/* A connect: the authorizer (a door job) and $connect's function decide. */
static void ws_handle(apigw *a, http_req *r, front *f)
{
  if (f->ws_conn != NULL) {
    ws_manage(a, r, f);
    return;
  }
  char *id = arena_alloc(r->arena, 17);
  ws_hub_new_id(id);
  const char *host = http_req_header(r, "host");
  const char *ua = http_req_header(r, "user-agent");
  bool on_host = host != NULL && host_id(r, ".execute-api.localhost") != NULL;
  f->wsc = (gateway_ws_conn){
      .api_id = f->id,
      .stage = f->t.stage,
      .connection_id = id,
      /* https://{domainName}/{stage} is the @connections endpoint on AWS;
         here http://{domainName}/{stage} */
      .domain = on_host ? host
                        : arena_sprintf(r->arena, "%s/_tarn/apis/%s", host ? host : "127.0.0.1",
                                        f->id),
      .source_ip = r->peer_addr && *r->peer_addr ? r->peer_addr : "127.0.0.1",
      .user_agent = ua ? ua : "",
      .connected_at_ms = time_now_ms(),
  };
  f->parked = true;
  http_req_park(r);
  if (f->t.authorizer != NULL) {
    start_job(a, f);
    return;
  }
  ws_connect(a, f);
}

/* Finds what r asks for and checks that the caller may ask (1). */
static int front_prepare(void *ctx, http_req *r, err *e)
{
  apigw *a = ctx;
  front *f = arena_alloc(r->arena, sizeof *f);
  memset(f, 0, sizeof *f);
  f->req = r;
  f->a = a;
  buf_init(&f->event, 2 * FN_MAX_SYNC_PAYLOAD); /* fn refuses over 6 MB: 413 */
  r->svc = f;
  const char *path = r->path;
  const char *id = NULL;
  bool on_path = str_starts(path, "/_tarn/apis/") || str_starts(path, "/_tarn/urls/");
  if (on_path) {
    f->url = str_starts(path, "/_tarn/urls/");
    const char *s = path + strlen("/_tarn/apis/");
    const char *end = strchr(s, '/');
    id = arena_strndup(r->arena, s, end ? (size_t)(end - s) : strlen(s));
    path = end ? end : "/";
  } else if ((id = host_id(r, ".execute-api.localhost")) == NULL) {
    f->url = true;
    id = host_id(r, ".lambda-url.localhost");
  }
  if (id == NULL || *id == '\0')
    return err_set(e, ERR_NOT_FOUND, "no API or function URL named by '%s'", r->path);
  f->id = id;
  r->op = f->url ? "InvokeFunctionUrl" : "Invoke";
  http_req_body_max(r, f->url ? FN_MAX_SYNC_PAYLOAD : GATEWAY_MAX_PAYLOAD);
  const char *auth;
  const char *action;
  const char *resource;
  if (f->url) {
    json_t *u = NULL;
    int rc = gateway_url_by_id(a->g, id, &u, e);
    if (rc != 0)
      return rc;
    auth = arena_strdup(r->arena, json_string_value(json_object_get(u, "AuthType")));
    f->function = arena_strdup(r->arena, json_string_value(json_object_get(u, "FunctionName")));
    const char *q = json_string_value(json_object_get(u, "Qualifier"));
    f->qualifier = q ? arena_strdup(r->arena, q) : NULL;
    resource = arena_strdup(r->arena, json_string_value(json_object_get(u, "FunctionArn")));
    f->cors = json_incref(json_object_get(u, "Cors"));
    json_decref(u);
    if (is_preflight(r, f))
      return 0;
    f->format = "2.0";
    f->path = path;
    f->full_path = path;
    action = "lambda:InvokeFunctionUrl";
  } else {
    json_t *doc = gateway_api_snapshot(a->g, id);
    if (doc != NULL && gateway_api_is_websocket(doc))
      return ws_prepare(a, r, f, doc, path, e);
    json_decref(doc);
    f->cors = gateway_api_cors(a->g, id);
    if (is_preflight(r, f))
      return 0;
    int rc = gateway_resolve(a->g, id, r->method, path, r->arena, &f->t, &f->path, e);
    if (rc != 0)
      return rc;
    auth = f->t.authorization;
    f->function = f->t.function;
    f->format = f->t.format;
    f->full_path = path;
    resource = arena_sprintf(r->arena, "arn:aws:execute-api:%s:%s:%s/%s/%s%s", GATEWAY_REGION,
                             GATEWAY_ACCOUNT_ID, id, f->t.stage, r->method, f->path);
    f->route_arn = resource;
    action = "execute-api:Invoke";
    if (strcmp(auth, "JWT") == 0 || strcmp(auth, "CUSTOM") == 0)
      return 0; /* the authorizer decides, in handle */
  }
  if (auth == NULL || strcmp(auth, "NONE") != 0) {
    if (!r->authenticated)
      return err_set(e, ERR_DENIED, "a signed request is required");
    if (!r->admin)
      return api_authorize(r, action, resource, e);
  }
  return 0;
}

/* Writes out (an integration's answer, its body moved) as r's response. */
static void send_response(http_req *r, front *f, gateway_response *out)
{
  http_resp_status(r, out->status);
  for (size_t i = 0; i < out->nheaders; i++)
    http_resp_header(r, out->headers[i].name, out->headers[i].value);
  http_resp_header(r, "apigw-requestid", r->request_id);
  add_cors(r, f, false);
  buf_release(&r->resp_body);
  r->resp_body = out->body;
}

/* Fills the response from the function's answer. */
static void front_answer(front *f, fn_invoke_result *res)
{
  http_req *r = f->req;
  err e = {0};
  if (res->function_error != NULL) {
    err_set(&e, ERR_INTERNAL, "the function failed");
    door_error(NULL, r, &e);
    return;
  }
  gateway_response out;
  if (gateway_response_map(f->format, res->payload.data ? res->payload.data : "",
                           res->payload.len, r->arena, &out, &e) != 0) {
    door_error(NULL, r, &e);
    return;
  }
  send_response(r, f, &out);
}

/* Takes f off the watchdog's list; true when it was there. */
static bool unwatch(apigw *a, front *f)
{
  pthread_mutex_lock(&a->mu);
  bool found = false;
  for (front **pp = &a->waiting; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == f) {
      *pp = f->next;
      found = true;
      break;
    }
  }
  pthread_mutex_unlock(&a->mu);
  return found;
}

/* Drops whatever a response holds so far. */
static void r_reset(http_req *r)
{
  r->nresp_headers = 0;
  buf_reset(&r->resp_body);
}

/* The end of the invocation (under fn's lock, before cleanup). */
static void invoke_done(void *ctx, int rc, fn_invoke_result *res, const err *e)
{
  front *f = ctx;
  http_req *r = f->req;
  if (rc != 0)
    door_error(NULL, r, e);
  else
    front_answer(f, res);
  if (res != NULL)
    buf_release(&res->payload);
  f->answered = true;
  http_req_resume(r);
}

/* The request as the proxy shapes see it. */
static void request_view(front *f, gateway_request *q)
{
  http_req *r = f->req;
  const char *host = http_req_header(r, "host");
  *q = (gateway_request){
      .method = r->method,
      .path = f->path,
      .raw_query = r->raw_query ? r->raw_query : "",
      .query = r->query,
      .nquery = r->nquery,
      .headers = r->headers,
      .nheaders = r->nheaders,
      .body = r->body.data ? r->body.data : "",
      .body_len = r->body.len,
      .source_ip = r->peer_addr && *r->peer_addr ? r->peer_addr : "127.0.0.1",
      .request_id = r->request_id,
      .domain = host ? host : "",
      .access_key = r->authenticated ? r->auth.access_key : NULL,
      .authorizer = f->authz,
  };
}

/* Hands the event of q to the function (r is parked): invoke_done or the
 * watchdog answers, or this does when the invocation cannot start. */
static void start_invoke(apigw *a, front *f, const gateway_request *q)
{
  http_req *r = f->req;
  err e = {0};
  if (gateway_event_build(f->url ? NULL : &f->t, f->id, q, f->full_path, &f->event, &e) != 0) {
    door_error(a, r, &e);
    f->answered = true;
    http_req_resume(r);
    return;
  }
  fn_invoke_params p = front_params(f, f->function, invoke_done);
  p.qualifier = f->qualifier;
  if (!f->url) {
    f->deadline_ms = time_mono_ms() + f->t.timeout_ms;
    f->watched = true;
    pthread_mutex_lock(&a->mu);
    f->next = a->waiting;
    a->waiting = f;
    if (f->deadline_ms < a->next_wake_ms) /* rare: a short time-out */
      pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->mu);
  }
  fn_invoke_result res;
  if (fn_invoke(a->fn, &p, r->arena, &res, &e) != 0) {
    if (f->watched)
      unwatch(a, f);
    /* not started: answer here (a missing function is the integration's fault) */
    if (e.code == ERR_NOT_FOUND || e.code == ERR_INVALID)
      e.code = ERR_INTERNAL;
    door_error(a, r, &e);
    f->answered = true;
    http_req_resume(r);
    return;
  }
  /* r is not freed before this returns (the server suspends a parked
     request only after handle, and cleanup waits for a job), so f is
     still valid here */
  if (f->watched) {
    pthread_mutex_lock(&a->mu);
    f->handle_done = true;
    pthread_mutex_unlock(&a->mu);
  }
}

/* ---- door jobs: authorizers and HTTP integrations, off the pool ---- */

/* An error answer from a job, with API Gateway's status and message. */
static void job_message(http_req *r, int status, const char *msg)
{
  r_reset(r);
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "application/json");
  http_resp_header(r, "apigw-requestid", r->request_id);
  write_message(r, "message", msg);
}

static bool door_stopping(void *ctx)
{
  apigw *a = ctx;
  return __atomic_load_n(&a->stopping, __ATOMIC_RELAXED);
}

/* A REQUEST authorizer: identity, cache, the function, its answer. */
static int authorize_request(apigw *a, front *f, const gateway_request *q, err *e)
{
  const gateway_target *t = &f->t;
  json_t *ids = NULL;
  int rc = gateway_identity(t, q, &ids, e);
  if (rc != 0)
    return rc;
  const json_t *az = t->authorizer;
  json_int_t ttl = json_integer_value(json_object_get(az, "authorizerResultTtlInSeconds"));
  bool simple = json_is_true(json_object_get(az, "enableSimpleResponses"));
  char *key = NULL;
  if (ttl > 0) {
    char *vals = json_dumps(ids, JSON_COMPACT);
    key = xasprintf("%s\n%s\n%s\n%s", f->id,
                    json_string_value(json_object_get(az, "authorizerId")), vals,
                    simple ? "" : f->route_arn);
    free(vals);
    pthread_mutex_lock(&a->mu);
    json_t *hit = json_object_get(a->authz_cache, key);
    bool fresh = hit != NULL &&
                 json_integer_value(json_object_get(hit, "until")) > time_mono_ms();
    if (fresh) {
      bool ok = json_is_true(json_object_get(hit, "ok"));
      f->authz = json_incref(json_object_get(hit, "authorizer"));
      pthread_mutex_unlock(&a->mu);
      free(key);
      json_decref(ids);
      return ok ? 0 : err_set(e, ERR_DENIED, "the authorizer denied the request (cached)");
    }
    pthread_mutex_unlock(&a->mu);
  }
  buf ev;
  buf_init(&ev, FN_MAX_SYNC_PAYLOAD);
  if (f->ws) { /* the CONNECT event, plus what an authorizer gets */
    json_t *j = gateway_ws_event(&f->wsc, "CONNECT", "$connect", q->request_id, q, NULL, 0,
                                 false, 0, NULL);
    json_object_set_new(j, "type", json_string("REQUEST"));
    json_object_set_new(j, "methodArn", json_string(f->route_arn));
    char *text = json_dumps(j, JSON_COMPACT);
    rc = buf_puts(&ev, text) != 0 ? err_set(e, ERR_ENTITY_TOO_LARGE, "the event is too large")
                                   : 0;
    free(text);
    json_decref(j);
  } else {
    rc = gateway_authorizer_event(t, q, f->full_path, f->route_arn, ids, &ev, e);
  }
  json_decref(ids);
  fn_answer ans;
  memset(&ans, 0, sizeof ans);
  if (rc == 0) {
    char *payload = xstrndup(ev.data ? ev.data : "", ev.len);
    rc = fn_invoke_wait(a->fn, t->authorizer_function, NULL, payload, door_stopping, a, &ans, e);
    free(payload);
  }
  buf_release(&ev);
  if (rc == 0 && ans.function_error)
    rc = err_set(e, ERR_INTERNAL, "the authorizer function failed");
  bool ok = false;
  if (rc == 0) {
    const char *fmt = t->format;
    rc = gateway_authorizer_answer(az, ans.payload.data ? ans.payload.data : "",
                                   ans.payload.len, f->route_arn, fmt, &ok, &f->authz, e);
  }
  buf_release(&ans.payload);
  if (rc != 0) {
    free(key);
    if (e->code != ERR_UNAUTHORIZED && e->code != ERR_DENIED)
      e->code = ERR_INTERNAL;
    return rc;
  }
  if (key != NULL) {
    pthread_mutex_lock(&a->mu);
    if (json_object_size(a->authz_cache) >= AUTHZ_CACHE_MAX)
      json_object_clear(a->authz_cache);
    json_object_set_new(a->authz_cache, key,
                        json_pack("{s:b, s:O?, s:I}", "ok", ok, "authorizer", f->authz, "until",
                                  (json_int_t)(time_mono_ms() + ttl * 1000)));
    pthread_mutex_unlock(&a->mu);
    free(key);
  }
  return ok ? 0 : err_set(e, ERR_DENIED, "the authorizer denied the request");
}

static int authorize(apigw *a, front *f, const gateway_request *q, err *e)
{
  const json_t *az = f->t.authorizer;
  const char *type = json_string_value(json_object_get(az, "authorizerType"));
  if (strcmp(type, "JWT") != 0)
    return authorize_request(a, f, q, e);
  json_t *ids = NULL;
  int rc = gateway_identity(&f->t, q, &ids, e);
  if (rc == 0)
    rc = gateway_jwt_check(a->jwks, az, json_string_value(json_array_get(ids, 0)), f->t.scopes,
                           f->t.format, &f->authz, e);
  json_decref(ids);
  return rc;
}

/* The HTTP_PROXY integration: the call, then the response relayed. */
static void http_integration(apigw *a, front *f, const gateway_request *q)
{
  http_req *r = f->req;
  err e = {0};
  egress_request rq;
  egress_response res;
  memset(&res, 0, sizeof res);
  int rc = gateway_http_request(&f->t, q, f->full_path, r->arena, &rq, &e);
  if (rc == 0)
    rc = egress_fetch(a->egress, &rq, r->arena, &res, &e);
  pthread_mutex_lock(&a->mu);
  if (!f->gone) {
    if (rc == 0) {
      gateway_response out;
      gateway_http_response(&res, r->arena, &out);
      r_reset(r);
      send_response(r, f, &out);
    } else if (e.code == ERR_REQUEST_TIMEOUT) {
      job_message(r, 504, "Gateway Timeout");
    } else if (e.code == ERR_ENTITY_TOO_LARGE) {
      job_message(r, 502, "Bad Gateway");
    } else {
      job_message(r, e.code == ERR_INVALID ? 500 : 502, "Internal Server Error");
    }
    f->answered = true;
    http_req_resume(r);
  }
  pthread_mutex_unlock(&a->mu);
  buf_release(&res.body);
}

/* One door job: the authorizer, then the integration (4). */
static void run_job(apigw *a, front *f)
{
  http_req *r = f->req;
  pthread_mutex_lock(&a->mu);
  bool left = f->gone; /* cleaned up while queued */
  pthread_mutex_unlock(&a->mu);
  if (left)
    return;
  gateway_request q;
  request_view(f, &q);
  err e = {0};
  int rc = f->t.authorizer != NULL ? authorize(a, f, &q, &e) : 0;
  q.authorizer = f->authz;
  pthread_mutex_lock(&a->mu);
  bool gone = f->gone;
  if (rc != 0 && !gone) {
    r_reset(r);
    door_error(a, r, &e);
    f->answered = true;
    http_req_resume(r);
  }
  pthread_mutex_unlock(&a->mu);
  if (rc == 0 && !gone) {
    if (f->ws)
      ws_connect(a, f);
    else if (f->t.http_proxy)
      http_integration(a, f, &q);
    else
      start_invoke(a, f, &q);
  }
}

/* A job thread: takes queued jobs; ends after WORKER_IDLE_MS without one,
 * or when the door stops. */
static void *job_worker(void *arg)
{
  apigw *a = arg;
  pthread_mutex_lock(&a->mu);
  for (;;) {
    if (a->queue == NULL) {
      if (a->stopping)
        break;
      a->idle_workers++;
      struct timespec until = time_deadline(CLOCK_MONOTONIC, WORKER_IDLE_MS);
      int w = pthread_cond_timedwait(&a->job_ready, &a->mu, &until);
      a->idle_workers--;
      if (w != 0 && a->queue == NULL)
        break; /* idle long enough */
      continue;
    }
    front *f = a->queue;
    a->queue = f->next_job;
    if (a->queue == NULL)
      a->queue_tail = NULL;
    a->queued--;
    pthread_mutex_unlock(&a->mu);
    run_job(a, f);
    pthread_mutex_lock(&a->mu);
    f->busy = false;
    a->jobs--;
    pthread_cond_broadcast(&a->idle);
  }
  a->workers--;
  pthread_cond_broadcast(&a->idle);
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

/* Queues run_job for f (r parked): an idle worker takes it, or a new one
 * starts (up to DOOR_MAX_JOBS). */
static void start_job(apigw *a, front *f)
{
  http_req *r = f->req;
  pthread_mutex_lock(&a->mu);
  bool room = a->jobs < DOOR_MAX_JOBS && !a->stopping;
  if (room && a->queued >= a->idle_workers) { /* no idle worker left for it (4) */
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, job_worker, a) == 0)
      a->workers++;
    else if (a->workers == 0)
      room = false;
    pthread_attr_destroy(&attr);
  }
  if (room) {
    a->jobs++;
    f->busy = true;
    f->next_job = NULL;
    if (a->queue_tail != NULL)
      a->queue_tail->next_job = f;
    else
      a->queue = f;
    a->queue_tail = f;
    a->queued++;
    pthread_cond_signal(&a->job_ready);
  }
  pthread_mutex_unlock(&a->mu);
  if (!room) {
    err e = {0};
    err_set(&e, ERR_THROTTLED, "too many requests wait for authorizers or integrations");
    door_error(a, r, &e);
    f->answered = true;
    http_req_resume(r);
  }
}

static void front_handle(void *ctx, http_req *r)
{
  apigw *a = ctx;
  front *f = r->svc;
  if (f->preflight) {
    http_resp_status(r, 204);
    http_resp_header(r, "apigw-requestid", r->request_id);
    add_cors(r, f, true);
    return;
  }
  if (f->ws) {
    ws_handle(a, r, f);
    return;
  }
  f->parked = true;
  http_req_park(r);
  if (!f->url && (f->t.authorizer != NULL || f->t.http_proxy)) {
    start_job(a, f);
    return;
  }
  gateway_request q;
  request_view(f, &q);
  start_invoke(a, f, &q);
}

static void front_cleanup(void *ctx, http_req *r)
{
  apigw *a = ctx;
  front *f = r->svc;
  if (f == NULL)
    return;
  pthread_mutex_lock(&a->mu);
  f->gone = true;
  while (f->busy)
    pthread_cond_wait(&a->idle, &a->mu);
  pthread_mutex_unlock(&a->mu);
  json_decref(f->authz);
  if (f->parked) {
    unwatch(a, f);
    fn_invoke_forget(a->fn, &f->running);
  }
  json_decref(f->t.snapshot);
  json_decref(f->t.path_params);
  json_decref(f->cors);
  buf_release(&f->event);
}

/* The watchdog: answers 503 for invocations past their integration's
 * time-out (the function runs on to its own deadline, as on AWS). */
static void *watchdog(void *arg)
{
  apigw *a = arg;
  pthread_mutex_lock(&a->mu);
  while (!a->stopping) {
    int64_t now = time_mono_ms();
    int64_t next = now + 1000;
    for (front **pp = &a->waiting; *pp != NULL;) {
      front *f = *pp;
      if (!f->handle_done || f->deadline_ms > now) {
        if (f->deadline_ms < next)
          next = f->deadline_ms;
        pp = &f->next;
        continue;
      }
      *pp = f->next;
      /* a->mu is held throughout, so cleanup (which unwatches under it)
         waits for this; forget takes fn's lock: afterwards invoke_done
         never runs for f, or it ran already and set answered */
      fn_invoke_forget(a->fn, &f->running);
      if (!f->answered) {
        err e = {0};
        err_set(&e, ERR_REQUEST_TIMEOUT, "the integration timed out");
        f->answered = true;
        r_reset(f->req);
        door_error(a, f->req, &e);
        http_req_resume(f->req);
      }
    }
    a->next_wake_ms = next;
    int64_t wait = next - now;
    struct timespec ts = time_deadline(CLOCK_MONOTONIC, wait);
    pthread_cond_timedwait(&a->wake, &a->mu, &ts);
  }
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

/* ---- the services ---- */

apigw *apigw_new(gateway *g, fn_system *fn, const netpolicy *egress)
{
  apigw *a = xcalloc(1, sizeof *a);
  a->g = g;
  a->fn = fn;
  a->egress = egress;
  a->jwks = gateway_jwks_new(egress);
  a->authz_cache = json_object();
  a->hub = ws_hub_new(g, fn);
  pthread_cond_init(&a->idle, NULL);
  pthread_condattr_t wa;
  pthread_condattr_init(&wa);
  pthread_condattr_setclock(&wa, CLOCK_MONOTONIC);
  pthread_cond_init(&a->job_ready, &wa);
  pthread_condattr_destroy(&wa);
  pthread_mutex_init(&a->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&a->wake, &ca);
  pthread_condattr_destroy(&ca);
  a->mgmt = (http_service){
      .name = "apigateway",
      .ctx = a,
      .prepare = mgmt_prepare,
      .handle = mgmt_handle,
      .error = mgmt_error,
      .unsigned_body_max = MGMT_BODY_MAX,
  };
  a->door = (http_service){
      .name = "execute-api",
      .ctx = a,
      .prepare = front_prepare,
      .handle = front_handle,
      .error = door_error,
      .cleanup = front_cleanup,
      .unsigned_body_max = GATEWAY_MAX_PAYLOAD,
      .claim = door_claim,
  };
  a->running = pthread_create(&a->thread, NULL, watchdog, a) == 0;
  return a;
}

http_service *apigw_management(apigw *a)
{
  return &a->mgmt;
}

http_service *apigw_front_door(apigw *a)
{
  return &a->door;
}

apigw *apigw_free(apigw *a)
{
  if (a == NULL)
    return NULL;
  pthread_mutex_lock(&a->mu);
  a->stopping = true;
  pthread_cond_signal(&a->wake);
  pthread_mutex_unlock(&a->mu);
  if (a->running)
    pthread_join(a->thread, NULL);
  pthread_mutex_lock(&a->mu);
  pthread_cond_broadcast(&a->job_ready);
  while (a->jobs > 0 || a->workers > 0) /* jobs end within their time-outs */
    pthread_cond_wait(&a->idle, &a->mu);
  pthread_mutex_unlock(&a->mu);
  pthread_cond_destroy(&a->idle);
  pthread_cond_destroy(&a->job_ready);
  a->jwks = gateway_jwks_free(a->jwks);
  a->hub = ws_hub_free(a->hub);
  json_decref(a->authz_cache);
  pthread_cond_destroy(&a->wake);
  pthread_mutex_destroy(&a->mu);
  free(a);
  return NULL;
}
