/* api/lambda_json.h -- the JSON of Lambda's REST-JSON operations, shared by
 * api/lambda.c (functions) and api/lambda_events.c (event wiring): the
 * request body as an object, typed member accessors that answer with
 * Lambda's own validation messages, and the JSON answer.
 */
#ifndef TARN_API_LAMBDA_JSON_H
#define TARN_API_LAMBDA_JSON_H

#include "base/err.h"
#include "http/http.h"

#include <jansson.h>
#include <stdbool.h>

/* The body as a JSON object (an empty body is {}); the caller owns *out.
 * ERR_INVALID_REQUEST when it is not a JSON object. */
int lambda_json_body(http_req *r, json_t **out, err *e);

/* Member accessors: an absent or null member leaves the zero value (NULL,
 * 0, false) and is no error; a member of another type is
 * ERR_INVALID_REQUEST, an integer outside [lo, hi] ERR_INVALID. */
int lambda_json_string(json_t *o, const char *key, const char **out, err *e);
/* *has tells whether the member was there. */
int lambda_json_int(json_t *o, const char *key, long lo, long hi, bool *has, long *out,
                    err *e);
int lambda_json_bool(json_t *o, const char *key, bool *out, err *e);

/* Answers status with j (consumed) as the body. */
void lambda_json_send(http_req *r, int status, json_t *j);
/* Answers a page of a listing: 200 with {member: items, "NextMarker": next}
 * (items consumed; no NextMarker when next is NULL). */
void lambda_json_send_page(http_req *r, const char *member, json_t *items, const char *next);

#endif
