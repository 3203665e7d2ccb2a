/* api/apigatewayv2_ws.h -- the live connections of WebSocket APIs: one
 * thread with epoll owns every upgraded socket (no HTTP pool thread waits
 * on an idle connection), reads RFC 6455 frames (http/websocket.h), routes
 * each message to its route's function (gateway_ws_select) and writes what
 * the @connections API posts. The front door (api/apigatewayv2.c) runs
 * $connect and hands the accepted socket over.
 *
 * Limits (as API Gateway): a frame's payload GATEWAY_WS_MAX_FRAME (32 KB),
 * a message GATEWAY_WS_MAX_MESSAGE (128 KB), idle GATEWAY_WS_IDLE_MS (10
 * min), a connection's life GATEWAY_WS_MAX_AGE_MS (2 h); at most
 * WS_HUB_MAX_CONNECTIONS open at once (beyond: $connect answers 429).
 */
#ifndef TARN_API_APIGATEWAYV2_WS_H
#define TARN_API_APIGATEWAYV2_WS_H

#include "fn/fn.h"
#include "gateway/gateway.h"
#include "http/http.h"

#define WS_HUB_MAX_CONNECTIONS 2048
#define WS_HUB_MAX_PENDING_OUT (1u << 20) /* bytes queued for one client */

typedef struct ws_hub ws_hub;

/* Starts the connections' thread. Never fails (out-of-memory aborts);
 * g and fn are borrowed. */
ws_hub *ws_hub_new(gateway *g, fn_system *fn);
/* After the HTTP servers stopped (they closed every socket). Accepts
 * NULL; returns NULL. */
ws_hub *ws_hub_free(ws_hub *h);

/* A connection $connect accepted: c's strings and the upgrade request's
 * headers (for the DISCONNECT event) are copied. The result is the ctx of
 * http_resp_upgrade(r, ws_hub_upgraded, ctx); a connection whose 101 never
 * goes out is forgotten after a while. NULL when the hub is full. */
void *ws_hub_expect(ws_hub *h, const gateway_ws_conn *c, const str_pair *headers,
                    size_t nheaders);
/* The http_upgrade_fn: the socket joins the hub. */
void ws_hub_upgraded(void *ctx, http_upgrade *u, int fd, const char *extra, size_t n);

/* @connections: queue data as one message to connection id of api_id
 * (text when it is UTF-8, else binary), describe it (connectedAt,
 * identity, lastActiveAt: the wire's names), or close it. ERR_NOT_FOUND: no such
 * connection (API Gateway's 410 GoneException); ERR_LIMIT_EXCEEDED: the
 * client reads too slowly. */
int ws_hub_post(ws_hub *h, const char *api_id, const char *id, const void *data, size_t n,
                err *e);
int ws_hub_describe(ws_hub *h, const char *api_id, const char *id, json_t **out, err *e);
int ws_hub_disconnect(ws_hub *h, const char *api_id, const char *id, err *e);

/* A new connection id (16 characters, NUL). */
void ws_hub_new_id(char out[17]);

#endif
