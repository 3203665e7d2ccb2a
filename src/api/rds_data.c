/* api/rds_data.c -- the RDS Data API endpoint: REST-JSON (POST /Execute,
 * /BatchExecute, /BeginTransaction, /CommitTransaction,
 * /RollbackTransaction, JSON bodies) onto rdb's statements.
 *
 * Errors: the X-Amzn-ErrorType header and {"__type", "message"}:
 * BadRequestException (400, PostgreSQL's message for SQL errors),
 * DatabaseResumingException (400), ForbiddenException (403),
 * NotFoundException (404), InternalServerErrorException (500),
 * ServiceUnavailableError (503).
 *
 * Start reading at data_handle().
 */
#include "api/rds_data.h"

#include "api/iam.h"
#include "aws/errors.h"
#include "base/mem.h"

#include <string.h>

#define DATA_BODY_MAX (4u << 20)
#define DATA_ERR_ROUTE (-1611)

typedef struct data_svc {
  http_service svc;
  rdb *r;
} data_svc;

static void write_error(http_req *r, const err *e)
{
  int status = 400;
  const char *type;
  switch (e->code) {
  case ERR_DB_RESUMING: type = "DatabaseResumingException"; break;
  case ERR_NOT_FOUND: status = 404; type = "NotFoundException"; break;
  case DATA_ERR_ROUTE: status = 404; type = "UnknownOperationException"; break;
  case ERR_DENIED:
  case ERR_SIGNATURE:
  case ERR_EXPIRED:
  case ERR_TIME_SKEWED:
  case ERR_UNKNOWN_ACCESS_KEY: status = 403; type = "ForbiddenException"; break;
  case ERR_UNAVAILABLE: status = 503; type = "ServiceUnavailableError"; break;
  case ERR_INTERNAL:
  case ERR_IO:
  case ERR_NO_SPACE: status = 500; type = "InternalServerErrorException"; break;
  default: type = "BadRequestException"; break;
  }
  r->nresp_headers = 0;
  buf_reset(&r->resp_body);
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "application/json");
  http_resp_header(r, "X-Amzn-ErrorType", type);
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  aws_error_json(&r->resp_body, type, e->msg[0] != '\0' ? e->msg : type);
}

static void data_error(void *ctx, http_req *r, const err *e)
{
  write_error(r, e);
}

static int data_prepare(void *ctx, http_req *r, err *e)
{
  http_req_body_max(r, DATA_BODY_MAX);
  if (!r->authenticated)
    return err_set(e, ERR_DENIED, "anonymous access is not allowed: sign the request with SigV4");
  return 0;
}

static void data_handle(void *ctx, http_req *r)
{
  data_svc *s = ctx;
  err e = {0};
  int rc = 0;
  json_t *in = NULL;
  json_t *out = NULL;
  static const struct {
    const char *path;
    const char *op;
  } routes[] = {
      {"/Execute", "ExecuteStatement"},
      {"/BatchExecute", "BatchExecuteStatement"},
      {"/BeginTransaction", "BeginTransaction"},
      {"/CommitTransaction", "CommitTransaction"},
      {"/RollbackTransaction", "RollbackTransaction"},
  };
  const char *op = NULL;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
    if (strcmp(r->path, routes[i].path) == 0)
      op = routes[i].op;
  if (op == NULL || strcmp(r->method, "POST") != 0)
    rc = err_set(&e, DATA_ERR_ROUTE, "no Data API operation at %s %s", r->method, r->path);
  if (rc == 0) {
    r->op = op;
    json_error_t je;
    in = json_loadb(r->body.data != NULL ? r->body.data : "{}",
                    r->body.len > 0 ? r->body.len : 2, 0, &je);
    if (!json_is_object(in))
      rc = err_set(&e, ERR_INVALID, "the request body is not a JSON object");
  }
  if (rc == 0) {
    const char *arn = json_string_value(json_object_get(in, "resourceArn"));
    rc = api_authorize(r, arena_sprintf(r->arena, "rds-data:%s", op), arn != NULL ? arn : "*",
                       &e);
    /* the Data API reads the secret for its caller, as AWS's does: only
       one the caller may read itself */
    const char *secret = json_string_value(json_object_get(in, "secretArn"));
    if (rc == 0 && secret != NULL)
      rc = api_authorize_implied(r, "secretsmanager:GetSecretValue", secret, &e);
  }
  if (rc == 0) {
    if (op[0] == 'E')
      rc = rdb_execute(s->r, in, &out, &e);
    else if (op[0] == 'B' && op[1] == 'a')
      rc = rdb_batch_execute(s->r, in, &out, &e);
    else if (op[0] == 'B')
      rc = rdb_tx_begin(s->r, in, &out, &e);
    else
      rc = rdb_tx_end(s->r, in, op[0] == 'C', &out, &e);
  }
  if (rc != 0) {
    write_error(r, &e);
  } else {
    http_resp_status(r, 200);
    http_resp_header(r, "Content-Type", "application/json");
    http_resp_header(r, "x-amzn-RequestId", r->request_id);
    char *text = json_dumps(out, JSON_COMPACT);
    buf_puts(&r->resp_body, text);
    free(text);
  }
  json_decref(out);
  json_decref(in);
}

http_service *rds_data_service_new(rdb *r)
{
  data_svc *s = xcalloc(1, sizeof *s);
  s->r = r;
  s->svc = (http_service){
      .name = "rds-data",
      .ctx = s,
      .prepare = data_prepare,
      .handle = data_handle,
      .error = data_error,
      .unsigned_body_max = DATA_BODY_MAX,
  };
  return &s->svc;
}

http_service *rds_data_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
