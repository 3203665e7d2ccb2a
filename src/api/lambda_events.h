/* api/lambda_events.h -- the Lambda operations of event wiring, answered
 * from api/lambda.c's routes: event source mappings
 * (/2015-03-31/event-source-mappings...) and event invoke configs
 * (/2019-09-25/functions/F/event-invoke-config...), over events/events.h;
 * plus the DeadLetterConfig of CreateFunction / UpdateFunctionConfiguration
 * / GetFunctionConfiguration.
 *
 * lambda.c's hook (three places):
 *   route:    if (lambda_events_route(r)) { c->op = &events_op; return lambda_events_prepare(r, e); }
 *   handle:   events_op's handler, op_events, calls lambda_events_handle(r, e)
 *   errors go through lambda.c's lambda_error as every other operation's.
 */
#ifndef TARN_API_LAMBDA_EVENTS_H
#define TARN_API_LAMBDA_EVENTS_H

#include "base/err.h"
#include "events/events.h"
#include "http/http.h"

#include <jansson.h>
#include <stdbool.h>

/* The events part these operations use (borrowed; NULL detaches). Until
 * one is attached they answer ServiceException "not running". */
void lambda_events_attach(events_system *ev);

/* Is r's path one of these operations? */
bool lambda_events_route(const http_req *r);
/* Names the operation (r->op) and sets the body limit; ERR_METHOD_NOT_ALLOWED
 * for a method the path does not take. */
int lambda_events_prepare(http_req *r, err *e);
/* Runs it and writes the answer; an error is left for lambda_error. */
int lambda_events_handle(http_req *r, err *e);

/* DeadLetterConfig: reads {"DeadLetterConfig":{"TargetArn":...}} from a
 * CreateFunction / UpdateFunctionConfiguration body (nothing when absent):
 * with save false only checks it (call before the change), with save
 * true stores it (after); adds the member to a configuration answer when
 * the function has one. */
int lambda_events_dead_letter_in(const char *function, json_t *body, bool save, err *e);
void lambda_events_dead_letter_out(const char *function, json_t *config);

#endif
