/* gateway/internal.h -- what gateway.c (state) and proxy.c (routes,
 * events, responses) share; private to src/gateway. */
#ifndef TARN_GATEWAY_INTERNAL_H
#define TARN_GATEWAY_INTERNAL_H

#include "gateway/gateway.h"

/* ISO 8601 in UTC, whole seconds: 2024-01-02T03:04:05Z. */
void gateway__now_iso(char out[32]);
/* Checks a route key's syntax (ERR_INVALID with the reason). */
int gateway__route_key_check(const char *key, err *e);
/* A new reference to the stored document of api_id, or NULL. */
json_t *gateway__api_snapshot(gateway *g, const char *api_id);

/* The proxy event of format "1.0" or "2.0" as JSON (a new reference). */
json_t *gateway__event_json(const gateway_target *t, const char *format, const char *url_id,
                            const gateway_request *q, const char *full_path);

/* The value of a mapping expression over q routed to t ($request.header.X
 * (any case), $request.querystring.X, $request.path.X, $request.path (=
 * full_path), $stageVariables.X, $context.requestId|apiId|stage|routeKey|
 * httpMethod|identity.sourceIp), or NULL when it has none. Shared by
 * requestParameters and authorizers' identity sources. */
const char *gateway__request_value(const gateway_target *t, const gateway_request *q,
                                   const char *full_path, const char *expr);

/* pg_urls.c: function URLs in PostgreSQL (gateway_share). find and by_id
 * set *out NULL when there is none; update and a single delete return 1
 * when there was none. */
int gateway__pg_urls_open(pg_pool *pg, err *e);
int gateway__pg_url_insert(pg_pool *pg, const json_t *u, err *e);
int gateway__pg_url_find(pg_pool *pg, const char *function, const char *qualifier, json_t **out,
                         err *e);
int gateway__pg_url_by_id(pg_pool *pg, const char *id, json_t **out, err *e);
int gateway__pg_url_list(pg_pool *pg, const char *function, json_t **out, err *e);
int gateway__pg_url_update(pg_pool *pg, const json_t *u, err *e);
int gateway__pg_url_delete(pg_pool *pg, const char *function, const char *qualifier, bool all,
                           err *e);

#endif
