/* api/lambda_layers.h -- the Lambda operations of layers
 * (/2018-10-31/layers...), answered from api/lambda.c's routes over
 * fn/'s fn_layer_*.
 *
 * lambda.c's hook (as for lambda_events.h):
 *   route:    if (lambda_layers_route(r)) { c->op = &layers_op; return lambda_layers_prepare(r, e); }
 *   handle:   layers_op's handler calls lambda_layers_handle(fn, st, r, e)
 *   errors go through lambda.c's lambda_error as every other operation's.
 */
#ifndef TARN_API_LAMBDA_LAYERS_H
#define TARN_API_LAMBDA_LAYERS_H

#include "base/err.h"
#include "fn/fn.h"
#include "http/http.h"
#include "store/store.h"

#include <stdbool.h>

/* Is r's path one of these operations? */
bool lambda_layers_route(const http_req *r);
/* Names the operation (r->op) and sets the body limit; ERR_METHOD_NOT_ALLOWED
 * for a method the path does not take. */
int lambda_layers_prepare(http_req *r, err *e);
/* Runs it and writes the answer; an error is left for lambda_error. */
int lambda_layers_handle(fn_system *fn, store *st, http_req *r, err *e);
/* The ARN IAM is asked about: the layer (version) of the path (or of
 * GetLayerVersionByArn's Arn), or "*". IAM's action for GetLayerVersionByArn
 * is lambda:GetLayerVersion, as on AWS (lambda.c asks that one). */
const char *lambda_layers_resource(http_req *r);

#endif
