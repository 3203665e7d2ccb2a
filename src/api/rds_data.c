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
 * Resumes: a statement on an auto-paused cluster holds no HTTP thread
 * while PostgreSQL starts. handle() parks the request and asks
 * rdb_when_ready(); rdb calls on_ready() from its own thread once the
 * cluster runs (the statement then runs there) or the wait ran out
 * (DatabaseResumingException).
 *
 * Invariants:
 *   (1) A parked request's response is written and resumed under its
 *       pending's lock, only while cleanup() has not run; cleanup() marks
 *       it gone under that lock, so after cleanup() nothing touches it.
 *   (2) A pending is freed by whichever of rdb's call and the request's
 *       cleanup() lets go last (refs).
 *
 * Start reading at data_handle().
 */
#include "api/rds_data.h"

#include "api/iam.h"
#include "aws/errors.h"
#include "base/mem.h"

#include <pthread.h>
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

/* A request parked on a resume. */
typedef struct pending {
  pthread_mutex_t mu;
  int refs;            /* the request's and rdb's: (2) */
  bool gone;           /* cleanup() ran: (1) */
  http_req *req;
  rdb *r;
  const char *op;      /* static */
  json_t *in;
} pending;

static void pending_unref(pending *p)
{
  pthread_mutex_lock(&p->mu);
  bool last = --p->refs == 0;
  pthread_mutex_unlock(&p->mu);
  if (last) {
    json_decref(p->in);
    pthread_mutex_destroy(&p->mu);
    free(p);
  }
}

/* Runs one operation on rdb. */
static int run_op(rdb *db, const char *op, json_t *in, json_t **out, err *e)
{
  if (op[0] == 'E')
    return rdb_execute(db, in, out, e);
  if (op[0] == 'B' && op[1] == 'a')
    return rdb_batch_execute(db, in, out, e);
  if (op[0] == 'B')
    return rdb_tx_begin(db, in, out, e);
  return rdb_tx_end(db, in, op[0] == 'C', out, e);
}

static void write_answer(http_req *r, int rc, json_t *out, const err *e)
{
  if (rc != 0) {
    write_error(r, e);
    return;
  }
  http_resp_status(r, 200);
  http_resp_header(r, "Content-Type", "application/json");
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  char *text = json_dumps(out, JSON_COMPACT);
  buf_puts(&r->resp_body, text);
  free(text);
}

/* rdb's call for a parked request: from rdb's threads. */
static void on_ready(void *ctx, int rc, const err *e)
{
  pending *p = ctx;
  json_t *out = NULL;
  err e2 = {0};
  if (rc == 0)
    rc = run_op(p->r, p->op, p->in, &out, &e2);
  else
    e2 = *e;
  pthread_mutex_lock(&p->mu);
  if (!p->gone) { /* (1) */
    write_answer(p->req, rc, out, &e2);
    http_req_resume(p->req);
  }
  pthread_mutex_unlock(&p->mu);
  json_decref(out);
  pending_unref(p);
}

static void data_cleanup(void *ctx, http_req *r)
{
  pending *p = r->svc;
  if (p == NULL)
    return;
  r->svc = NULL;
  pthread_mutex_lock(&p->mu);
  p->gone = true;
  pthread_mutex_unlock(&p->mu);
  pending_unref(p);
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
  const char *arn = in != NULL ? json_string_value(json_object_get(in, "resourceArn")) : NULL;
  /* Commit and Rollback need no resume (an open transaction keeps it running) */
  if (rc == 0 && op[0] != 'C' && op[0] != 'R' && rdb_paused(s->r, arn)) {
    /* parked before rdb may call on_ready (from any thread, at once) */
    pending *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->refs = 2;
    p->req = r;
    p->r = s->r;
    p->op = op;
    p->in = json_incref(in);
    r->svc = p;
    http_req_park(r);
    rc = rdb_when_ready(s->r, arn, on_ready, p, &e);
    if (rc == RDB_WAITING) {
      json_decref(in);
      return; /* the request is on_ready's now */
    }
    pending_unref(p); /* rdb's reference: never called */
    if (rc == 0)
      rc = run_op(s->r, op, in, &out, &e);
    write_answer(r, rc, out, &e);
    http_req_resume(r); /* parked, but answered here */
    json_decref(out);
    json_decref(in);
    return;
  }
  if (rc == 0)
    rc = run_op(s->r, op, in, &out, &e);
  write_answer(r, rc, out, &e);
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
      .cleanup = data_cleanup,
      .unsigned_body_max = DATA_BODY_MAX,
  };
  return &s->svc;
}

http_service *rds_data_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
