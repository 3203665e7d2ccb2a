/* api/lambda_urls.h -- Lambda's function URL operations, answered from
 * api/lambda.c's routes over gateway/gateway.h:
 *   POST|GET|PUT|DELETE /2021-10-31/functions/F/url[?Qualifier=A]
 *                       Create/Get/Update/DeleteFunctionUrlConfig
 *   GET /2021-10-31/functions/F/urls   ListFunctionUrlConfigs
 * The URLs themselves are served by api/apigatewayv2.c's front door.
 *
 * lambda.c's hook (two places, as lambda_events.h's):
 *   route:   if (lambda_urls_route(r)) { c->op = &urls_op; return lambda_urls_prepare(r, &c->function, e); }
 *   handle:  urls_op's handler calls lambda_urls_handle(l->fn, r, c->function, e)
 */
#ifndef TARN_API_LAMBDA_URLS_H
#define TARN_API_LAMBDA_URLS_H

#include "base/err.h"
#include "fn/fn.h"
#include "gateway/gateway.h"
#include "http/http.h"

#include <stdbool.h>

/* The gateway the configurations live in (borrowed; NULL detaches: the
 * operations then answer ServiceException "not running"). */
void lambda_urls_attach(gateway *g);

/* Is r's path one of these operations? */
bool lambda_urls_route(const http_req *r);
/* Names the operation (r->op) and the function of the path; sets the
 * body limit. ERR_METHOD_NOT_ALLOWED for a method the path does not take. */
int lambda_urls_prepare(http_req *r, const char **function, err *e);
/* Runs it and writes the answer; an error is left for lambda.c's lambda_error. */
int lambda_urls_handle(fn_system *fn, http_req *r, const char *function, err *e);

/* The function was deleted: its URLs go with it (as on AWS). */
void lambda_urls_function_deleted(const char *function);

#endif
