/* api/dynamodb.c -- the DynamoDB endpoint (and DynamoDB Streams'): AWS
 * JSON 1.0 requests onto the kv part.
 *
 * Why so thin: the kv part takes and returns DynamoDB's own JSON shapes
 * (kv/kv.h), so this file only checks the transport (target, body, JSON),
 * authorizes the caller (dynamodb:ACTION on the table's ARN) and writes
 * results and errors in DynamoDB's form: {"__type":
 * "com.amazonaws.dynamodb.v20120810#ValidationException", "message": ...}
 * plus the error's extra fields (Item, CancellationReasons).
 *
 * Invariants:
 *   (1) Bodies are bounded (DDB_BODY_MAX); a body that is not a JSON object
 *       is a SerializationException and reaches no operation.
 *   (2) r->op is one of the kv part's static operation names (metrics have
 *       a fixed label set).
 *
 * Start reading at ddb_handle().
 */
#include "api/dynamodb.h"

#include "api/iam.h"
#include "aws/errors.h"
#include "aws/json_load.h"
#include "base/mem.h"
#include "base/text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DDB_BODY_MAX (16u << 20)
#define DDB_PREFIX "DynamoDB_20120810."
#define STREAMS_PREFIX "DynamoDBStreams_20120810."
#define DDB_ERR_UNKNOWN_OP (-1399)

typedef struct ddb {
  http_service svc;
  kv *k;
} ddb;

typedef struct ddb_code {
  int code;
  int status;
  const char *type;
} ddb_code;

static const ddb_code codes[] = {
    {KV_ERR_VALIDATION, 400, "ValidationException"},
    {KV_ERR_NO_TABLE, 400, "ResourceNotFoundException"},
    {KV_ERR_IN_USE, 400, "ResourceInUseException"},
    {KV_ERR_CONDITION, 400, "ConditionalCheckFailedException"},
    {KV_ERR_TX_CANCELED, 400, "TransactionCanceledException"},
    {KV_ERR_IDEMPOTENT, 400, "IdempotentParameterMismatchException"},
    {KV_ERR_LIMIT, 400, "LimitExceededException"},
    {KV_ERR_SERIALIZATION, 400, "SerializationException"},
    {KV_ERR_NO_STREAM, 400, "ResourceNotFoundException"},
    {KV_ERR_TRIMMED, 400, "ExpiredIteratorException"},
    {KV_ERR_DUPLICATE, 400, "DuplicateItemException"},
    {DDB_ERR_UNKNOWN_OP, 400, "UnknownOperationException"},
    {ERR_ENTITY_TOO_LARGE, 413, "RequestEntityTooLarge"},
    {ERR_DENIED, 400, "AccessDeniedException"},
    {ERR_SIGNATURE, 400, "InvalidSignatureException"},
    {ERR_EXPIRED, 400, "ExpiredTokenException"},
    {ERR_TIME_SKEWED, 400, "InvalidSignatureException"},
    {ERR_UNKNOWN_ACCESS_KEY, 400, "UnrecognizedClientException"},
    {ERR_AUTH_MALFORMED, 400, "IncompleteSignatureException"},
    {ERR_UNAVAILABLE, 503, "ServiceUnavailable"},
    {ERR_INVALID_REQUEST, 400, "ValidationException"},  /* a malformed request head */
    {ERR_NO_SPACE, 500, "InternalServerError"},
};

static const ddb_code *code_of(int code)
{
  static const ddb_code internal = {ERR_INTERNAL, 500, "InternalServerError"};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (codes[i].code == code)
      return &codes[i];
  return &internal;
}

static void write_error(http_req *r, const err *e, json_t *extra)
{
  const ddb_code *c = code_of(e->code);
  r->nresp_headers = 0;
  buf_reset(&r->resp_body);
  http_resp_status(r, c->status);
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  http_resp_header(r, "Content-Type", "application/x-amz-json-1.0");
  const char *type = arena_sprintf(r->arena, "com.amazonaws.dynamodb.v20120810#%s", c->type);
  const char *msg = e->msg[0] != '\0' ? e->msg : c->type;
  if (extra == NULL || json_object_size(extra) == 0) {
    aws_error_json(&r->resp_body, type, msg);
    return;
  }
  json_t *body = json_deep_copy(extra);
  json_object_set_new(body, "__type", json_string(type));
  json_object_set_new(body, "message", json_string(msg));
  char *text = json_dumps(body, JSON_COMPACT);
  buf_puts(&r->resp_body, text);
  free(text);
  json_decref(body);
}

static void ddb_error(void *ctx, http_req *r, const err *e)
{
  write_error(r, e, NULL);
}

static int ddb_prepare(void *ctx, http_req *r, err *e)
{
  http_req_body_max(r, DDB_BODY_MAX);
  if (!r->authenticated)
    return err_set(e, ERR_DENIED, "anonymous access is not allowed: sign the request with SigV4");
  return 0;
}

static const char *table_arn(http_req *r, const char *table)
{
  return arena_sprintf(r->arena, "arn:aws:dynamodb:" API_REGION ":" API_ACCOUNT_ID ":table/%s",
                       table);
}

/* The tables a batch (RequestItems' keys) or a transaction (each item's
 * TableName) names, for IAM: a new array in r's arena, NULL when none. */
static const char **batch_tables(http_req *r, json_t *in, size_t *n)
{
  *n = 0;
  json_t *req = json_object_get(in, "RequestItems");
  json_t *items = json_object_get(in, "TransactItems");
  size_t max = json_is_object(req) ? json_object_size(req)
                                   : json_is_array(items) ? json_array_size(items) : 0;
  if (max == 0 || max > 100)  /* past the operations' own limits: they refuse it */
    return NULL;
  const char **out = arena_alloc(r->arena, max * sizeof *out);
  if (json_is_object(req)) {
    const char *name;
    json_t *v;
    json_object_foreach(req, name, v) out[(*n)++] = name;
    return out;
  }
  for (size_t i = 0; i < max; i++) {
    const char *key;
    json_t *item = json_array_get(items, i), *v;
    json_object_foreach(item, key, v) {
      const char *t = json_string_value(json_object_get(v, "TableName"));
      if (t != NULL && *n < max)
        out[(*n)++] = t;
    }
  }
  return out;
}

/* PartiQL is authorized as DynamoDB authorizes it: by the statement's kind
 * (dynamodb:PartiQLSelect, ...Insert, ...Update, ...Delete) on the table it
 * names (on the index, for a SELECT from one); each statement of a batch. A
 * statement that cannot be read that far needs the action on every table
 * ("*"): the operation refuses it anyway, and nothing runs unauthorized. */
static int authorize_statement(http_req *r, const char *stmt, err *e)
{
  const char *action = NULL;
  char *table = NULL, *index = NULL;
  int rc;
  if (kv_statement_target(stmt, &action, &table, &index) != 0) {
    rc = api_authorize(r, action != NULL ? action : "dynamodb:PartiQLSelect", "*", e);
  } else {
    const char *arn = table_arn(r, table);
    if (index != NULL)
      arn = arena_sprintf(r->arena, "%s/index/%s", arn, index);
    rc = api_authorize(r, action, arn, e);
  }
  free(table);
  free(index);
  return rc;
}

static int authorize_statements(http_req *r, const char *op, json_t *in, err *e)
{
  if (strcmp(op, "ExecuteStatement") == 0)
    return authorize_statement(r, json_string_value(json_object_get(in, "Statement")), e);
  json_t *stmts = json_object_get(in, "Statements");
  size_t i;
  json_t *s;
  if (!json_is_array(stmts) || json_array_size(stmts) > 25)
    return 0; /* the operation refuses it before running anything */
  json_array_foreach(stmts, i, s) {
    int rc = authorize_statement(r, json_string_value(json_object_get(s, "Statement")), e);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static void ddb_handle(void *ctx, http_req *r)
{
  ddb *d = ctx;
  err e = {0};
  const char *target = http_req_header(r, "x-amz-target");
  bool streams = target != NULL && str_starts(target, STREAMS_PREFIX);
  const char *name = NULL;
  if (target != NULL && str_starts(target, DDB_PREFIX))
    name = target + strlen(DDB_PREFIX);
  else if (streams)
    name = target + strlen(STREAMS_PREFIX);
  const char *canon = NULL;
  kv_op_fn fn = name != NULL ? kv_op_find(name, streams, &canon) : NULL;
  if (fn == NULL) {
    err_set(&e, DDB_ERR_UNKNOWN_OP, "%s", "");
    write_error(r, &e, NULL);
    return;
  }
  r->op = canon;
  err pe = {0};
  json_t *in = r->body.len == 0 ? json_object() : aws_json_load(r->body.data, r->body.len, &pe);
  int rc = 0;
  if (!json_is_object(in))
    rc = err_set(&e, KV_ERR_SERIALIZATION, "Start of structure or map found where not expected");
  if (rc == 0)
    rc = kv_legacy_rewrite(in, &e);
  if (rc == 0 && !r->admin && (strcmp(canon, "ExecuteStatement") == 0 ||
                                strcmp(canon, "BatchExecuteStatement") == 0)) {
    rc = authorize_statements(r, canon, in, &e);
  } else if (rc == 0 && !r->admin) {
    char action[64];
    snprintf(action, sizeof action, "dynamodb:%s", canon);
    const char *table = kv_op_table(canon, in);
    size_t ntables = 0;
    const char **tables = strcmp(table, "*") == 0 ? batch_tables(r, in, &ntables) : NULL;
    if (ntables > 0) { /* a batch or a transaction: the action on each table it names */
      for (size_t i = 0; i < ntables && rc == 0; i++)
        rc = api_authorize(r, action, table_arn(r, tables[i]), &e);
    } else {
      rc = api_authorize(r, action, strcmp(table, "*") == 0 ? "*" : table_arn(r, table), &e);
    }
  }
  json_t *out = NULL;
  if (rc == 0)
    rc = fn(d->k, in, &out, &e);
  json_decref(in);
  if (rc != 0) {
    write_error(r, &e, out);
    json_decref(out);
    return;
  }
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  http_resp_header(r, "Content-Type", "application/x-amz-json-1.0");
  char *text = json_dumps(out, JSON_COMPACT);
  json_decref(out);
  if (text == NULL || buf_puts(&r->resp_body, text) != 0) {
    err_set(&e, ERR_INTERNAL, "the response is too large to send");
    write_error(r, &e, NULL);
  }
  free(text);
}

http_service *dynamodb_service_new(kv *k)
{
  ddb *d = xcalloc(1, sizeof *d);
  d->k = k;
  d->svc = (http_service){
      .name = "dynamodb",
      .ctx = d,
      .prepare = ddb_prepare,
      .handle = ddb_handle,
      .error = ddb_error,
      .unsigned_body_max = DDB_BODY_MAX,
  };
  return &d->svc;
}

http_service *dynamodb_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
