/* gateway/gateway.h -- the front door for functions (API Gateway's HTTP
 * APIs and Lambda function URLs): their definitions, durable in
 * DATA/gateway (LMDB), route matching, and the proxy integration's event
 * and response shapes (payload formats 1.0 and 2.0). No HTTP here: the
 * wire shapes are api/apigatewayv2.c (management and invoke URLs) and
 * api/lambda_urls.c (function URL configurations).
 *
 * Documents. An API, its routes, integrations and stages are kept and
 * returned as apigatewayv2's JSON (its camelCase member names: apiId,
 * name, protocolType, routeKey, target, integrationType, integrationUri,
 * payloadFormatVersion, stageName, autoDeploy, stageVariables, ...), so
 * the wire edge answers with them unchanged. A function URL configuration
 * is Lambda's (FunctionArn, AuthType, Cors, InvokeMode, CreationTime,
 * LastModifiedTime) plus tarn's UrlId, FunctionName and Qualifier.
 *
 * Routes. A route key is "$default" or "METHOD /path" where METHOD is an
 * HTTP method or ANY and a path segment is a literal, {name} (one segment)
 * or, as the last one, {name+} (one or more). gateway_route_match picks as
 * API Gateway documents: a route without variables first, then the one
 * with variables whose literals come earliest (left to right), then the
 * greedy one with the longest literal prefix, a method over ANY, and
 * $default last.
 *
 * Errors (base/err.h): ERR_NOT_FOUND (no such API, route, integration,
 * stage, function URL), ERR_INVALID (bad input, the message says which
 * member), ERR_CONFLICT (a route key, stage or function URL that exists),
 * ERR_LIMIT_EXCEEDED (a quota below), ERR_IO / ERR_NO_SPACE (storage).
 *
 * Threads and durability: every call is safe from many threads; a write
 * returns after its LMDB commit (it survives kill -9) and changes nothing
 * when it fails. Readers never wait for a commit: documents are immutable
 * once published, and gateway_api_snapshot hands out a reference.
 * Ownership: every json_t ** result is a new reference (json_decref).
 */
#ifndef TARN_GATEWAY_GATEWAY_H
#define TARN_GATEWAY_GATEWAY_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/egress.h"
#include "base/err.h"
#include "base/pg.h"
#include "base/text.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GATEWAY_MAX_APIS 600             /* per account, as AWS's default quota */
#define GATEWAY_MAX_ROUTES 300           /* per API */
#define GATEWAY_MAX_INTEGRATIONS 300     /* per API */
#define GATEWAY_MAX_STAGES 10            /* per API */
#define GATEWAY_MAX_DEPLOYMENTS 100      /* per API (records: every change is live at once) */
#define GATEWAY_MAX_AUTHORIZERS 10       /* per API, as AWS's quota */
#define GATEWAY_MAX_URLS 10000           /* function URLs */
#define GATEWAY_MAX_DOCUMENT (256u << 10) /* one API with its children, as JSON */
#define GATEWAY_MAX_PAYLOAD (10u << 20)  /* an HTTP API request or response body (the
                                            function's 6 MB event limit comes first) */
#define GATEWAY_TIMEOUT_MS 30000         /* an integration's longest (and default) time-out */
#define GATEWAY_ACCOUNT_ID "000000000000"
#define GATEWAY_REGION "us-east-1"

typedef struct gateway gateway;

/* Opens DATA/gateway (creating it) and loads every definition. */
int gateway_open(const char *data_dir, gateway **out, err *e);
/* Accepts NULL; returns NULL. */
gateway *gateway_close(gateway *g);
/* With --metadata: function URL configurations live in pg (the pool
 * outlives g), shared by every node opened on it; this node's LMDB URLs
 * are left aside. HTTP APIs stay in DATA/gateway. */
int gateway_share(gateway *g, pg_pool *pg, err *e);

/* ---- HTTP APIs ---- */

/* The children of an API. */
enum gateway_kind {
  GATEWAY_ROUTE,
  GATEWAY_INTEGRATION,
  GATEWAY_STAGE,
  GATEWAY_DEPLOYMENT,
  GATEWAY_AUTHORIZER,
  GATEWAY_ROUTE_RESPONSE       /* WebSocket routes' responses; routeId names the route */
};

/* CreateApi: in holds CreateApi's members. With target (quick create) an
 * AWS_PROXY integration (format 2.0), the route (routeKey, else $default)
 * and the $default stage (autoDeploy) are made in the same commit. */
int gateway_api_create(gateway *g, const json_t *in, json_t **out, err *e);
int gateway_api_get(gateway *g, const char *api_id, json_t **out, err *e);
/* Every API, ordered by id, as a JSON array. */
int gateway_api_list(gateway *g, json_t **out, err *e);
/* UpdateApi: the members present replace the stored ones. */
int gateway_api_update(gateway *g, const char *api_id, const json_t *in, json_t **out, err *e);
int gateway_api_delete(gateway *g, const char *api_id, err *e);

/* Create, get, list (JSON array), update and delete a route, integration,
 * stage or deployment (id: routeId, integrationId, stageName,
 * deploymentId). Changes are live at once, as with autoDeploy: a
 * deployment is only a record (and sets its stage's deploymentId). */
int gateway_child_create(gateway *g, enum gateway_kind k, const char *api_id, const json_t *in,
                         json_t **out, err *e);
int gateway_child_get(gateway *g, enum gateway_kind k, const char *api_id, const char *id,
                      json_t **out, err *e);
int gateway_child_list(gateway *g, enum gateway_kind k, const char *api_id, json_t **out,
                       err *e);
int gateway_child_update(gateway *g, enum gateway_kind k, const char *api_id, const char *id,
                         const json_t *in, json_t **out, err *e);
int gateway_child_delete(gateway *g, enum gateway_kind k, const char *api_id, const char *id,
                         err *e);

/* ---- serving a request ---- */

/* A request as the proxy integration sees it (strings borrowed). */
typedef struct gateway_request {
  const char *method;
  const char *path;            /* decoded, after the API's (and stage's) prefix, from "/" */
  const char *raw_query;       /* as sent, without '?', "" when none */
  const str_pair *query;       /* decoded, in order */
  size_t nquery;
  const str_pair *headers;     /* lower-case names, in order */
  size_t nheaders;
  const void *body;
  size_t body_len;
  const char *source_ip;
  const char *request_id;
  const char *domain;          /* the Host header, or "" */
  const char *access_key;      /* the SigV4 key that signed it, or NULL (anonymous) */
  const json_t *authorizer;    /* what an authorizer found (requestContext.authorizer), or NULL */
} gateway_request;

/* What a request resolved to (arena memory, or json held by snapshot). */
typedef struct gateway_target {
  json_t *snapshot;            /* the API document; release with json_decref */
  const char *api_id;
  const char *stage;           /* "$default" or a stage name */
  const char *route_key;       /* the matched route's key */
  const char *authorization;   /* "NONE", "AWS_IAM", "JWT" or "CUSTOM" */
  const json_t *authorizer;    /* JWT and CUSTOM: the authorizer (borrowed from snapshot) */
  const json_t *scopes;        /* the route's authorizationScopes, or NULL (borrowed) */
  const char *authorizer_function; /* REQUEST authorizers: the function to call */
  bool http_proxy;             /* an HTTP_PROXY integration (else AWS_PROXY) */
  const char *uri;             /* HTTP_PROXY: the integration's URL */
  const char *http_method;     /* HTTP_PROXY: integrationMethod (ANY: the request's) */
  const json_t *request_parameters; /* HTTP_PROXY: requestParameters, or NULL (borrowed) */
  const char *function;        /* AWS_PROXY: the integration's function (name or ARN) */
  const char *format;          /* "1.0" or "2.0" */
  int timeout_ms;              /* the integration's */
  json_t *path_params;         /* object, borrowed from nothing: a new reference */
  const json_t *stage_vars;    /* borrowed from snapshot, or NULL */
  const char *resource_path;   /* the route's path ("/items/{id}"), "$default" */
} gateway_target;

/* Resolves an invoke URL's path (after /_tarn/apis/<id> or on the API's
 * host) to a route: splits off the stage (none for $default), matches the
 * route and finds its integration. *path_out is the path after the stage.
 * ERR_NOT_FOUND (no API, stage or route: API Gateway's 404), ERR_INVALID
 * (a route without a usable integration: its 500). On success release
 * t->snapshot and t->path_params. */
int gateway_resolve(gateway *g, const char *api_id, const char *method, const char *path,
                    arena *a, gateway_target *t, const char **path_out, err *e);

/* The function an integration or authorizer URI names (arena): a function
 * ARN or name, or API Gateway's
 * arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations. */
const char *gateway_uri_function(const char *uri, arena *a);

/* Matches method and path against route keys (an array of strings):
 * the index of the winner, or -1; fills params (an object) with the path
 * variables. Exposed for tests. */
int gateway_route_match(const char *const *keys, size_t n, const char *method, const char *path,
                        json_t *params);

/* Builds the event of payload format "1.0" or "2.0" for req routed to t
 * (t NULL: a function URL, id its url id) into out (JSON text);
 * ERR_ENTITY_TOO_LARGE when it does not fit out's limit. */
int gateway_event_build(const gateway_target *t, const char *url_id, const gateway_request *req,
                        const char *full_path, buf *out, err *e);

/* An HTTP response built from a function's answer. */
typedef struct gateway_response {
  int status;
  str_pair *headers;           /* arena memory, Set-Cookie repeated */
  size_t nheaders;
  buf body;                    /* the caller releases it */
} gateway_response;

/* Maps a function's answer (payload format "1.0" or "2.0") to a response;
 * ERR_INVALID when it is not a valid answer (API Gateway then answers 500). */
int gateway_response_map(const char *format, const void *payload, size_t len, arena *a,
                         gateway_response *out, err *e);

/* ---- HTTP_PROXY integrations (gateway/http_proxy.c) ---- */

/* The request the HTTP_PROXY integration of t sends for req (full_path:
 * the request's path after the stage): URL with path variables filled,
 * headers and query after requestParameters, the body as is, t's time-out.
 * Arena memory; ERR_INVALID when the result is over its limits. */
int gateway_http_request(const gateway_target *t, const gateway_request *req,
                         const char *full_path, arena *a, egress_request *out, err *e);
/* The response relayed from in (its body moved into out, hop-by-hop
 * headers dropped). */
void gateway_http_response(egress_response *in, arena *a, gateway_response *out);

/* ---- authorizers (gateway/authorizer.c) ---- */

/* The JWKS cache of JWT authorizers: keys fetched through policy
 * (borrowed), shared by every API. Safe from many threads. */
typedef struct gateway_jwks gateway_jwks;
gateway_jwks *gateway_jwks_new(const netpolicy *policy);
/* Accepts NULL; returns NULL. */
gateway_jwks *gateway_jwks_free(gateway_jwks *k);

/* Checks token (the identity source's value, "Bearer " allowed) under
 * the JWT authorizer az and the route's scopes (NULL: none); may fetch the
 * issuer's keys (blocking, at most a few seconds). 0 with *authorizer the
 * requestContext.authorizer of format ("2.0": {"jwt":{claims,scopes}},
 * "1.0": {claims,scopes}), a new reference; ERR_UNAUTHORIZED (401) for a
 * missing or invalid token, ERR_DENIED (403) when no scope matches. */
int gateway_jwt_check(gateway_jwks *k, const json_t *az, const char *token,
                      const json_t *route_scopes, const char *format, json_t **authorizer,
                      err *e);

/* The values of t->authorizer's identitySource expressions for req (a new
 * array); ERR_UNAUTHORIZED when one is missing or empty (API Gateway then
 * answers 401 without calling the authorizer). */
int gateway_identity(const gateway_target *t, const gateway_request *req, json_t **values,
                     err *e);

/* The event of a REQUEST authorizer (its authorizerPayloadFormatVersion:
 * the proxy event without the body, plus type, routeArn or methodArn and
 * identitySource) into out. */
int gateway_authorizer_event(const gateway_target *t, const gateway_request *req,
                             const char *full_path, const char *route_arn,
                             const json_t *identity, buf *out, err *e);

/* Reads a REQUEST authorizer's answer: a simple response
 * {"isAuthorized":..,"context":{..}} when az enables them, else an IAM
 * policy {"principalId","policyDocument","context"} evaluated for
 * execute-api:Invoke on route_arn. *authorizer (when allowed) is the
 * requestContext.authorizer of format. ERR_INTERNAL when the answer is
 * malformed (API Gateway's 500). */
int gateway_authorizer_answer(const json_t *az, const char *payload, size_t len,
                              const char *route_arn, const char *format, bool *allowed,
                              json_t **authorizer, err *e);

/* ---- WebSocket APIs (gateway/websocket.c) ---- */

#define GATEWAY_WS_MAX_FRAME (32u << 10)     /* a frame's payload, as API Gateway */
#define GATEWAY_WS_MAX_MESSAGE (128u << 10)  /* a message, and an @connections POST */
#define GATEWAY_WS_IDLE_MS (10 * 60 * 1000)  /* a connection with no traffic is closed */
#define GATEWAY_WS_MAX_AGE_MS (2 * 3600 * 1000) /* every connection is closed after 2 h */

/* A new reference to the stored document of api_id, or NULL. */
json_t *gateway_api_snapshot(gateway *g, const char *api_id);
/* Is doc (an API document) a WebSocket API? */
bool gateway_api_is_websocket(const json_t *doc);
/* Is expr a routeSelectionExpression tarn evaluates ($request.body.PATH)? */
bool gateway_ws_expression_ok(const char *expr);
/* The stage a WebSocket path opens on (the first segment when it names a
 * stage, else $default) and the path after it; ERR_NOT_FOUND. */
int gateway_ws_stage(const json_t *doc, const char *path, arena *a, const char **stage,
                     const char **rest, err *e);
/* The function of doc's route key (arena), "" when it has no usable
 * integration, NULL when there is no such route; *authorization (when not
 * NULL) its authorizationType. */
const char *gateway_ws_route(const json_t *doc, const char *key, arena *a,
                             const char **authorization);
/* Does doc's route key answer the client (a two-way route: a
 * routeResponseSelectionExpression and a route response)? */
bool gateway_ws_two_way(const json_t *doc, const char *key);
/* The authorizer of doc's route key (borrowed from doc), or NULL. */
const json_t *gateway_ws_authorizer(const json_t *doc, const char *key);
/* The route key a message takes (the routeSelectionExpression's value
 * when a route has it, else $default), or NULL when none matches. */
const char *gateway_ws_select(const json_t *doc, const void *msg, size_t len, bool binary,
                              arena *a);

/* What a WebSocket event says about its connection (strings borrowed). */
typedef struct gateway_ws_conn {
  const char *api_id;
  const char *stage;
  const char *connection_id;
  const char *domain;          /* what the function's @connections endpoint is built from */
  const char *source_ip;
  const char *user_agent;
  int64_t connected_at_ms;
  const json_t *authorizer;    /* what $connect's authorizer found, or NULL */
} gateway_ws_conn;

/* The event of eventType CONNECT (q: the upgrade request's headers and
 * query), MESSAGE (body, binary) or DISCONNECT (q: the connect request's
 * headers, close_code and reason), as API Gateway sends it. A new
 * reference. */
json_t *gateway_ws_event(const gateway_ws_conn *c, const char *event_type, const char *route_key,
                         const char *request_id, const gateway_request *q, const void *body,
                         size_t len, bool binary, int close_code, const char *reason);

/* ---- CORS ---- */

/* The CORS configuration of an API (corsConfiguration) or function URL
 * (Cors), or NULL when it has none: a new reference. */
json_t *gateway_api_cors(gateway *g, const char *api_id);

/* The CORS headers for a request from origin (NULL: not a CORS request,
 * nothing added) under cors (either member spelling: allowOrigins or
 * AllowOrigins, ...): Access-Control-Allow-Origin when the origin is
 * allowed, plus, for a preflight, -Allow-Methods, -Allow-Headers and
 * -Max-Age, else -Expose-Headers; -Allow-Credentials when set. Appends to
 * *h (arena memory). */
void gateway_cors_headers(const json_t *cors, const char *origin, bool preflight, arena *a,
                          str_pair **h, size_t *n);

/* ---- function URLs ---- */

/* CreateFunctionUrlConfig: function is the function's name, qualifier NULL
 * or an alias; function_arn its ARN (qualified when qualifier is set). in
 * holds AuthType, Cors, InvokeMode. */
int gateway_url_create(gateway *g, const char *function, const char *qualifier,
                       const char *function_arn, const json_t *in, json_t **out, err *e);
int gateway_url_get(gateway *g, const char *function, const char *qualifier, json_t **out,
                    err *e);
int gateway_url_update(gateway *g, const char *function, const char *qualifier, const json_t *in,
                       json_t **out, err *e);
int gateway_url_delete(gateway *g, const char *function, const char *qualifier, err *e);
/* Removes every URL of function (it was deleted), one commit each. */
int gateway_url_delete_all(gateway *g, const char *function, err *e);
/* Every URL of function (any qualifier), as a JSON array. */
int gateway_url_list(gateway *g, const char *function, json_t **out, err *e);
/* The configuration of url id (ERR_NOT_FOUND when none). */
int gateway_url_by_id(gateway *g, const char *url_id, json_t **out, err *e);

#endif
