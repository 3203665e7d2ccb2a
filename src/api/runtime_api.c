/* api/runtime_api.c -- the Lambda Runtime API's HTTP side, served on tarn's
 * private runtime socket (one for all instances).
 *
 * Why: the runtime interface clients (tarn's, AWS's, any `provided`
 * bootstrap) speak this HTTP; what each call does is the scheduler's
 * (fn_runtime_* in fn/runtime.c). No AWS client calls it and it carries no
 * signature: the caller is the connecting process (req->peer_pid).
 *
 *   GET  /2018-06-01/runtime/invocation/next         parked until work
 *   POST /2018-06-01/runtime/invocation/{id}/response 202
 *   POST /2018-06-01/runtime/invocation/{id}/error    202
 *   POST /2018-06-01/runtime/init/error               202
 *
 * Invariants:
 *   (1) A response body over FN_RESPONSE_MAX is refused with 413 and fails
 *       its invocation at once.
 *   (2) Errors are the Runtime API's JSON: {"errorMessage","errorType"}.
 *   (3) GET next holds no thread while it waits: rt_next parks the request
 *       before asking fn, and next_done (under fn's lock) fills and resumes
 *       it; cleanup() forgets the wait under that same lock, so after it
 *       returns fn never touches the request.
 *
 * Start reading at the ops[] table and rt_prepare().
 */
#include "api/runtime_api.h"

#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

#define PREFIX "/2018-06-01/runtime/"
#define ERROR_BODY_MAX (1u << 20)
#define REQUEST_ID_MAX 64

enum rt_op { RT_NEXT = 1, RT_RESPONSE, RT_ERROR, RT_INIT_ERROR };

typedef struct rt_call {
  enum rt_op op;
  const char *id;  /* the invocation's request id, for response and error */
  bool parked;     /* GET next: parked, answered by next_done (3) */
  fn_runtime_wait *wait;
} rt_call;

static void answer_json(http_req *r, int status, const char *type, const char *msg)
{
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "application/json");
  buf_reset(&r->resp_body);
  if (type == NULL) {
    buf_printf(&r->resp_body, "{\"status\":\"%s\"}", msg);
    return;
  }
  buf_puts(&r->resp_body, "{\"errorMessage\":");
  buf_json_string(&r->resp_body, msg, strlen(msg));
  buf_printf(&r->resp_body, ",\"errorType\":\"%s\"}", type);
}

/* The Runtime API's answers to the scheduler's refusals. */
static void answer_error(http_req *r, const err *e)
{
  switch (e->code) {
  case ERR_DENIED:
    answer_json(r, 403, "Runtime.Unknown", e->msg);
    break;
  case ERR_INVALID:
    answer_json(r, 400, "InvalidRequestID", e->msg);
    break;
  default:
    answer_json(r, 500, "Runtime.Unknown", e->msg);
    break;
  }
}

/* The answer to a parked GET next (fn_runtime_next_done: under fn's lock). */
static void next_done(void *ctx, int rc, const fn_runtime_work *w, const err *e)
{
  http_req *r = ctx;
  if (rc != 0) {
    answer_error(r, e);
    http_req_resume(r);
    return;
  }
  http_resp_header(r, "Lambda-Runtime-Aws-Request-Id", w->request_id);
  http_resp_headerf(r, "Lambda-Runtime-Deadline-Ms", "%lld", (long long)w->deadline_ms);
  http_resp_header(r, "Lambda-Runtime-Invoked-Function-Arn", w->invoked_arn);
  http_resp_header(r, "Lambda-Runtime-Trace-Id", w->trace_id);
  if (w->client_context != NULL)
    http_resp_header(r, "Lambda-Runtime-Client-Context", w->client_context);
  http_resp_header(r, "Content-Type", "application/json");
  buf_reset(&r->resp_body);
  buf_append(&r->resp_body, w->payload, w->len);
  http_req_resume(r);
}

/* Parked before it asks: the answer may come before fn_runtime_next returns. */
static int rt_next(fn_system *fn, http_req *r, rt_call *c, err *e)
{
  c->parked = true;
  http_req_park(r);
  if (fn_runtime_next(fn, r->peer_pid, next_done, r, &c->wait, e) != 0) {
    answer_error(r, e);
    http_req_resume(r);
  }
  return 0;
}

/* invocation/{id}/response and invocation/{id}/error */
static int rt_result(fn_system *fn, http_req *r, rt_call *c, err *e)
{
  const char *type = http_req_header(r, "lambda-runtime-function-error-type");
  int rc = fn_runtime_result(fn, r->peer_pid, c->id, c->op == RT_ERROR, type, &r->body, e);
  if (rc == 0)
    answer_json(r, 202, NULL, "OK");
  return rc;
}

static int rt_init_error(fn_system *fn, http_req *r, rt_call *c, err *e)
{
  const char *type = http_req_header(r, "lambda-runtime-function-error-type");
  int rc = fn_runtime_init_error(fn, r->peer_pid, type, r->body.data, r->body.len, e);
  if (rc == 0)
    answer_json(r, 202, NULL, "OK");
  return rc;
}

/* ---- dispatch ---- */

typedef int (*rt_fn)(fn_system *fn, http_req *r, rt_call *c, err *e);

/* In the order of enum rt_op: ops[op - 1] is op's entry. */
static const struct rt_op_def {
  enum rt_op op;
  const char *method;
  const char *name;
  size_t body_max;   /* 0: the server's default */
  rt_fn fn;
} ops[] = {
  {RT_NEXT, "GET", "RuntimeNext", 0, rt_next},
  {RT_RESPONSE, "POST", "RuntimeResponse", FN_RESPONSE_MAX, rt_result},
  {RT_ERROR, "POST", "RuntimeError", ERROR_BODY_MAX, rt_result},
  {RT_INIT_ERROR, "POST", "RuntimeInitError", ERROR_BODY_MAX, rt_init_error},
};

/* The operation of r's path (and the invocation's id), or 0. */
static enum rt_op path_op(http_req *r, const char **id)
{
  const char *p = r->path;
  *id = NULL;
  if (!str_starts(p, PREFIX))
    return 0;
  p += strlen(PREFIX);
  if (strcmp(p, "invocation/next") == 0)
    return RT_NEXT;
  if (strcmp(p, "init/error") == 0)
    return RT_INIT_ERROR;
  if (!str_starts(p, "invocation/"))
    return 0;
  p += strlen("invocation/");
  const char *slash = strchr(p, '/');
  if (slash == NULL || slash == p || slash - p >= REQUEST_ID_MAX)
    return 0;
  enum rt_op op = strcmp(slash, "/response") == 0 ? RT_RESPONSE
                  : strcmp(slash, "/error") == 0  ? RT_ERROR
                                                  : 0;
  if (op != 0)
    *id = arena_strndup(r->arena, p, (size_t)(slash - p));
  return op;
}

static int rt_prepare(void *ctx, http_req *r, err *e)
{
  rt_call *c = arena_alloc(r->arena, sizeof *c);
  memset(c, 0, sizeof *c);
  r->svc = c;
  if (!str_starts(r->path, PREFIX))
    return err_set(e, ERR_NOT_FOUND, "no such path '%s'", r->path);
  enum rt_op op = path_op(r, &c->id);
  if (op != RT_NEXT && strcmp(r->method, "POST") != 0)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "'%s' answers POST", r->path);
  if (op == 0)
    return err_set(e, ERR_NOT_FOUND, "no such path '%s'", r->path);
  const struct rt_op_def *d = &ops[op - 1];
  c->op = op;
  r->op = d->name;
  if (strcmp(r->method, d->method) != 0)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "invocation/next answers GET");
  if (d->body_max)
    http_req_body_max(r, d->body_max);
  return 0;
}

static void rt_handle(void *ctx, http_req *r)
{
  rt_call *c = r->svc;
  err e;
  int rc = ops[c->op - 1].fn(ctx, r, c, &e);
  if (rc != 0)
    answer_error(r, &e);
}

static void rt_error(void *ctx, http_req *r, const err *e)
{
  rt_call *c = r->svc;
  if (c != NULL && c->op == RT_RESPONSE && e->code == ERR_ENTITY_TOO_LARGE)
    fn_runtime_response_too_large(ctx, r->peer_pid, c->id);  /* (1) */
  int status = e->code == ERR_ENTITY_TOO_LARGE ? 413 : err_http_status(e->code);
  answer_json(r, status,
              e->code == ERR_ENTITY_TOO_LARGE ? "RequestEntityTooLarge" : "InvalidRequest",
              e->msg);
}

/* Forgets a parked GET next whose client went away or whose server stops. */
static void rt_cleanup(void *ctx, http_req *r)
{
  rt_call *c = r->svc;
  if (c != NULL && c->parked)
    fn_runtime_next_forget(ctx, &c->wait);
}

http_service *runtime_api_service_new(fn_system *fn)
{
  http_service *svc = xcalloc(1, sizeof *svc);
  *svc = (http_service){
      .name = "lambda-runtime",
      .ctx = fn,
      .prepare = rt_prepare,
      .handle = rt_handle,
      .error = rt_error,
      .cleanup = rt_cleanup,
  };
  return svc;
}

http_service *runtime_api_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
