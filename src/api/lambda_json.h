/* api/lambda_json.h -- the JSON of Lambda's REST-JSON operations, shared by
 * api/lambda.c (functions) and api/lambda_events.c (event wiring): the
 * request body as an object, typed member accessors that answer with
 * Lambda's own validation messages, and the JSON answer.
 */
#ifndef TARN_API_LAMBDA_JSON_H
#define TARN_API_LAMBDA_JSON_H

#include "base/err.h"
#include "fn/fn.h"
#include "http/http.h"
#include "store/store.h"

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

/* A FunctionCode (CreateFunction's Code, UpdateFunctionCode's body) or a
 * LayerVersionContentInput: ZipFile (base64) or S3Bucket/S3Key, validated
 * and extracted into the code store (fn_code_add). *given: one was there.
 * ImageUri is refused: tarn runs .zip file packages only. */
int lambda_json_code(fn_system *fn, store *st, json_t *o, http_req *r, fn_code *code,
                     bool *given, err *e);

/* Lambda's timestamps (LastModified, CreatedDate): 2024-01-02T03:04:05.678+0000. */
#define LAMBDA_JSON_TIME 64
void lambda_json_time(int64_t ms, char out[LAMBDA_JSON_TIME]);

/* Answers status with j (consumed) as the body. */
void lambda_json_send(http_req *r, int status, json_t *j);
/* Answers a page of a listing: 200 with {member: items, "NextMarker": next}
 * (items consumed; no NextMarker when next is NULL). */
void lambda_json_send_page(http_req *r, const char *member, json_t *items, const char *next);

#endif
