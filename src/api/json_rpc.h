/* api/json_rpc.h -- the AWS JSON 1.0/1.1 protocol's request cycle, written
 * once for the services that speak only it (Kinesis, Firehose, Athena): POST with
 * X-Amz-Target: PREFIX.Operation and a JSON object body, answered with a
 * JSON object or {"__type", "message"} and the service's status.
 *
 * A service gives a table of operations, a table of the error codes it
 * maps apart from the shared ones (protocol, auth and the stream part's
 * codes common to both services; its own table wins), the
 * IAM prefix of its actions and a function naming the resource of a
 * request (for api_authorize); the helper parses, routes, authorizes,
 * calls and answers. The CBOR form some SDKs send gets a clear error that
 * names the setting that turns it off.
 */
#ifndef TARN_API_JSON_RPC_H
#define TARN_API_JSON_RPC_H

#include "http/http.h"

#include <jansson.h>

/* One operation: fills *out (a new reference) or returns an error. */
typedef int (*json_rpc_fn)(void *ctx, http_req *r, json_t *in, json_t **out, err *e);

typedef struct json_rpc_op {
  const char *name;          /* "PutRecord" */
  json_rpc_fn fn;
} json_rpc_op;

typedef struct json_rpc_code {
  int code;                  /* an ERR_* or the part's own code */
  int status;                /* HTTP status */
  const char *type;          /* __type: "ResourceNotFoundException" */
} json_rpc_code;

typedef struct json_rpc_def {
  const char *service;       /* SigV4 scope name: "kinesis" */
  const char *target_prefix; /* "Kinesis_20131202." */
  const char *content_type;  /* "application/x-amz-json-1.1" */
  const json_rpc_op *ops;
  size_t nops;
  const json_rpc_code *codes;
  size_t ncodes;
  size_t body_max;           /* bytes of request body */
  /* the ARN an operation acts on, for IAM ("*" when none); in r's arena */
  const char *(*resource)(http_req *r, const char *op, json_t *in);
  /* optional: the roles an operation hands to tarn to act as (their
     number, at most 4, in out); the caller must be allowed iam:PassRole on
     each */
  size_t (*passed_roles)(const char *op, json_t *in, const char *out[4]);
  /* optional: members the service adds to an error body besides __type
     and message (Athena's AthenaErrorCode); body is the object written */
  void (*error_fields)(const err *e, json_t *body);
} json_rpc_def;

/* A service for def (borrowed, static) over ctx. Never fails. */
http_service *json_rpc_service_new(const json_rpc_def *def, void *ctx);
/* Accepts NULL; returns NULL. */
http_service *json_rpc_service_free(http_service *svc);
/* The ctx given to json_rpc_service_new (NULL for NULL). */
void *json_rpc_service_ctx(http_service *svc);

/* Input helpers: a string member, or NULL; an integer member within
 * [min, max] (ERR_INVALID otherwise; *present false when absent). */
const char *json_rpc_str(json_t *in, const char *name);
int json_rpc_int(json_t *in, const char *name, long min, long max, long *out, bool *present,
                 err *e);

#endif
