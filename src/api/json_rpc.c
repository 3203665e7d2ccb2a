/* api/json_rpc.c -- the JSON 1.0/1.1 request cycle shared by the services
 * that speak only that protocol (see json_rpc.h).
 *
 * Invariants:
 *   (1) An operation runs only after its input parsed as a JSON object and
 *       the caller was authorized for PREFIX:Operation on its resource.
 *   (2) Every answer carries x-amzn-RequestId; errors carry __type and
 *       message, with the status of the service's code table, else of
 *       the shared one (unknown codes: 500 InternalFailure).
 *
 * Start reading at rpc_handle().
 */
#include "api/json_rpc.h"

#include "api/iam.h"
#include "aws/errors.h"
#include "aws/json_load.h"
#include "base/mem.h"
#include "base/text.h"
#include "stream/stream.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RPC_ERR_UNKNOWN_OP (-1390)
#define RPC_ERR_SERIALIZATION (-1391)
#define RPC_ERR_CBOR (-1392)

typedef struct rpc {
  http_service svc;
  const json_rpc_def *def;
  void *ctx;
} rpc;

typedef struct rpc_call {
  json_t *in;
} rpc_call;

static const json_rpc_code common[] = {
    {RPC_ERR_UNKNOWN_OP, 400, "UnknownOperationException"},
    {RPC_ERR_SERIALIZATION, 400, "SerializationException"},
    {RPC_ERR_CBOR, 400, "SerializationException"},
    {ERR_SIGNATURE, 403, "InvalidSignatureException"},
    {ERR_EXPIRED, 403, "InvalidSignatureException"},
    {ERR_TIME_SKEWED, 403, "InvalidSignatureException"},
    {ERR_UNKNOWN_ACCESS_KEY, 403, "UnrecognizedClientException"},
    {ERR_AUTH_MALFORMED, 400, "IncompleteSignature"},
    {ERR_DENIED, 400, "AccessDeniedException"},
    {ERR_ENTITY_TOO_LARGE, 413, "SerializationException"},
    {ERR_UNAVAILABLE, 503, "ServiceUnavailableException"},
    {ERR_INVALID_REQUEST, 400, "ValidationException"},  /* a malformed request head */
    /* the stream part's codes, the same in both services (each lists
     * only what it maps differently, e.g. STREAM_ERR_BUSY) */
    {STREAM_ERR_NOT_FOUND, 400, "ResourceNotFoundException"},
    {STREAM_ERR_IN_USE, 400, "ResourceInUseException"},
    {STREAM_ERR_INVALID, 400, "InvalidArgumentException"},
    {ERR_INVALID, 400, "InvalidArgumentException"},
    {STREAM_ERR_LIMIT, 400, "LimitExceededException"},
    {ERR_NO_SPACE, 503, "ServiceUnavailableException"},
};

static const json_rpc_code *code_of(const rpc *s, int code)
{
  static const json_rpc_code internal = {ERR_INTERNAL, 500, "InternalFailure"};
  for (size_t i = 0; i < s->def->ncodes; i++)
    if (s->def->codes[i].code == code)
      return &s->def->codes[i];
  for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
    if (common[i].code == code)
      return &common[i];
  return &internal;
}

static void write_error(rpc *s, http_req *r, const err *e)
{
  const json_rpc_code *c = code_of(s, e->code);
  r->nresp_headers = 0;
  buf_reset(&r->resp_body);
  http_resp_status(r, c->status);
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  http_resp_header(r, "Content-Type", s->def->content_type);
  http_resp_header(r, "x-amzn-ErrorType", c->type);
  const char *msg = e->msg[0] != '\0' ? e->msg : c->type;
  if (s->def->error_fields == NULL) {
    aws_error_json(&r->resp_body, c->type, msg);
    return;
  }
  json_t *body = json_pack("{s:s, s:s}", "__type", c->type, "message", msg);
  s->def->error_fields(e, body);
  char *text = json_dumps(body, JSON_COMPACT);
  buf_puts(&r->resp_body, text != NULL ? text : "{}");
  free(text);
  json_decref(body);
}

static void rpc_error(void *ctx, http_req *r, const err *e)
{
  write_error(ctx, r, e);
}

const char *json_rpc_str(json_t *in, const char *name)
{
  return json_string_value(json_object_get(in, name));
}

int json_rpc_int(json_t *in, const char *name, long min, long max, long *out, bool *present,
                 err *e)
{
  json_t *v = json_object_get(in, name);
  *present = v != NULL && !json_is_null(v);
  if (!*present)
    return 0;
  if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value at '%s' failed to "
                   "satisfy constraint: Member must be a number from %ld to %ld", name, min,
                   max);
  *out = (long)json_integer_value(v);
  return 0;
}

static int rpc_prepare(void *ctx, http_req *r, err *e)
{
  rpc *s = ctx;
  rpc_call *c = arena_alloc(r->arena, sizeof *c);
  memset(c, 0, sizeof *c);
  r->svc = c;
  http_req_body_max(r, s->def->body_max);
  if (!r->authenticated)
    return err_set(e, ERR_DENIED, "anonymous access is not allowed: sign the request with "
                   "SigV4");
  return 0;
}

static void rpc_handle(void *ctx, http_req *r)
{
  rpc *s = ctx;
  rpc_call *c = r->svc;
  err e = {0};
  int rc = 0;
  const char *target = http_req_header(r, "x-amz-target");
  const char *ctype = http_req_header(r, "content-type");
  const json_rpc_op *op = NULL;
  if (ctype != NULL && strstr(ctype, "cbor") != NULL)
    rc = err_set(&e, RPC_ERR_CBOR, "tarn does not speak CBOR: send JSON (%s); for the AWS "
                 "Java SDK set AWS_CBOR_DISABLE=true (or -Dcom.amazonaws.sdk.disableCbor), "
                 "for the Kinesis Client Library and the AWS CLI v1 / boto3 nothing is needed",
                 s->def->content_type);
  else if (target == NULL || !str_starts(target, s->def->target_prefix))
    rc = err_set(&e, RPC_ERR_UNKNOWN_OP, "the request has no X-Amz-Target %s<Operation>",
                 s->def->target_prefix);
  if (rc == 0) {
    const char *name = target + strlen(s->def->target_prefix);
    for (size_t i = 0; i < s->def->nops && op == NULL; i++)
      if (strcmp(s->def->ops[i].name, name) == 0)
        op = &s->def->ops[i];
    if (op == NULL)
      rc = err_set(&e, RPC_ERR_UNKNOWN_OP, "operation '%s' is not supported", name);
    else
      r->op = op->name;
  }
  if (rc == 0) {
    err pe = {0};
    c->in = r->body.len == 0 ? json_object() : aws_json_load(r->body.data, r->body.len, &pe);
    if (!json_is_object(c->in))
      rc = err_set(&e, RPC_ERR_SERIALIZATION, "the request body is not a JSON object");
  }
  if (rc == 0 && !r->admin) {
    char action[96];
    snprintf(action, sizeof action, "%s:%s", s->def->service, op->name);
    rc = api_authorize(r, action, s->def->resource(r, op->name, c->in), &e);
    const char *roles[4];
    size_t nroles = rc == 0 && s->def->passed_roles != NULL
                        ? s->def->passed_roles(op->name, c->in, roles) : 0;
    for (size_t i = 0; i < nroles && rc == 0; i++)
      rc = api_authorize_pass_role(r, roles[i], &e);
  }
  json_t *out = NULL;
  if (rc == 0)
    rc = op->fn(s->ctx, r, c->in, &out, &e);
  if (rc != 0) {
    json_decref(out);
    write_error(s, r, &e);
    return;
  }
  http_resp_status(r, 200);
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  http_resp_header(r, "Content-Type", s->def->content_type);
  char *text = out != NULL ? json_dumps(out, JSON_COMPACT) : NULL;
  buf_puts(&r->resp_body, text != NULL ? text : "{}");
  free(text);
  json_decref(out);
}

static void rpc_cleanup(void *ctx, http_req *r)
{
  rpc_call *c = r->svc;
  if (c != NULL) {
    json_decref(c->in);
    c->in = NULL;
  }
}

http_service *json_rpc_service_new(const json_rpc_def *def, void *ctx)
{
  rpc *s = xcalloc(1, sizeof *s);
  s->def = def;
  s->ctx = ctx;
  s->svc = (http_service){
      .name = def->service,
      .ctx = s,
      .prepare = rpc_prepare,
      .handle = rpc_handle,
      .error = rpc_error,
      .cleanup = rpc_cleanup,
      .unsigned_body_max = def->body_max,
  };
  return &s->svc;
}

void *json_rpc_service_ctx(http_service *svc)
{
  return svc != NULL ? ((rpc *)svc)->ctx : NULL;
}

http_service *json_rpc_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
