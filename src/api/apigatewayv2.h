/* api/apigatewayv2.h -- API Gateway's HTTP APIs on the wire: the
 * apigatewayv2 management API (SigV4 scope "apigateway") and the public
 * front door ("execute-api") that serves invoke URLs
 * (/_tarn/apis/<id>/..., Host <id>.execute-api.localhost) and function
 * URLs (/_tarn/urls/<id>/..., Host <id>.lambda-url.localhost) by invoking
 * functions through fn. State and the proxy shapes are gateway/gateway.h.
 */
#ifndef TARN_API_APIGATEWAYV2_H
#define TARN_API_APIGATEWAYV2_H

#include "fn/fn.h"
#include "gateway/gateway.h"
#include "http/http.h"

typedef struct apigw apigw;

/* Over g and fn (borrowed: both outlive it); egress (borrowed) is the
 * outbound policy of HTTP_PROXY integrations and JWT authorizers' key
 * fetches. Starts the integration time-out watchdog. Never fails
 * (out-of-memory aborts). */
apigw *apigw_new(gateway *g, fn_system *fn, const netpolicy *egress);
/* The two services to hand the HTTP server. */
http_service *apigw_management(apigw *a);
http_service *apigw_front_door(apigw *a);
/* Call after the servers using it have stopped. Accepts NULL; returns NULL. */
apigw *apigw_free(apigw *a);

#endif
