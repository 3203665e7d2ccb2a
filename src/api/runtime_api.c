/* api/runtime_api.c -- the Lambda Runtime API's HTTP side, served on tarn's
 * private runtime socket (one for all instances).
 *
 * Why: the runtime interface clients (tarn's, AWS's, any `provided`
 * bootstrap) speak this HTTP; what each call does is the scheduler's
 * (fn_runtime_* in fn/runtime.c). No AWS client calls it and it carries no
 * signature: the caller is the connecting process (req->peer_pid).
 *
 *   GET  /2018-06-01/runtime/invocation/next         blocks until work
 *   POST /2018-06-01/runtime/invocation/{id}/response 202
 *   POST /2018-06-01/runtime/invocation/{id}/error    202
 *   POST /2018-06-01/runtime/init/error               202
 *
 * Invariants:
 *   (1) A response body over FN_RESPONSE_MAX is refused with 413 and fails
 *       its invocation at once.
 *   (2) Errors are the Runtime API's JSON: {"errorMessage","errorType"}.
 *
 * Start reading at rt_prepare().
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

static int rt_prepare(void *ctx, http_req *r, err *e)
{
  rt_call *c = arena_alloc(r->arena, sizeof *c);
  memset(c, 0, sizeof *c);
  r->svc = c;
  const char *p = r->path;
  if (!str_starts(p, PREFIX))
    return err_set(e, ERR_NOT_FOUND, "no such path '%s'", p);
  p += strlen(PREFIX);
  if (strcmp(p, "invocation/next") == 0) {
    c->op = RT_NEXT;
    r->op = "RuntimeNext";
    if (strcmp(r->method, "GET") != 0)
      return err_set(e, ERR_METHOD_NOT_ALLOWED, "invocation/next answers GET");
    return 0;
  }
  if (strcmp(r->method, "POST") != 0)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "'%s' answers POST", r->path);
  if (strcmp(p, "init/error") == 0) {
    c->op = RT_INIT_ERROR;
    r->op = "RuntimeInitError";
    http_req_body_max(r, ERROR_BODY_MAX);
    return 0;
  }
  if (str_starts(p, "invocation/")) {
    p += strlen("invocation/");
    const char *slash = strchr(p, '/');
    if (slash != NULL && slash > p && slash - p < REQUEST_ID_MAX) {
      c->id = arena_strndup(r->arena, p, (size_t)(slash - p));
      if (strcmp(slash, "/response") == 0) {
        c->op = RT_RESPONSE;
        r->op = "RuntimeResponse";
        http_req_body_max(r, FN_RESPONSE_MAX);
        return 0;
      }
      if (strcmp(slash, "/error") == 0) {
        c->op = RT_ERROR;
        r->op = "RuntimeError";
        http_req_body_max(r, ERROR_BODY_MAX);
        return 0;
      }
    }
  }
  return err_set(e, ERR_NOT_FOUND, "no such path '%s'", r->path);
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

static void rt_next(fn_system *fn, http_req *r)
{
  fn_runtime_work w;
  err e;
  if (fn_runtime_next(fn, r->peer_pid, r->arena, &w, &r->resp_body, &e) != 0) {
    answer_error(r, &e);
    return;
  }
  http_resp_header(r, "Lambda-Runtime-Aws-Request-Id", w.request_id);
  http_resp_headerf(r, "Lambda-Runtime-Deadline-Ms", "%lld", (long long)w.deadline_ms);
  http_resp_header(r, "Lambda-Runtime-Invoked-Function-Arn", w.invoked_arn);
  http_resp_header(r, "Lambda-Runtime-Trace-Id", w.trace_id);
  if (w.client_context != NULL)
    http_resp_header(r, "Lambda-Runtime-Client-Context", w.client_context);
  http_resp_header(r, "Content-Type", "application/json");
}

static void rt_handle(void *ctx, http_req *r)
{
  fn_system *fn = ctx;
  rt_call *c = r->svc;
  const char *type = http_req_header(r, "lambda-runtime-function-error-type");
  err e;
  int rc = 0;
  switch (c->op) {
  case RT_NEXT:
    rt_next(fn, r);
    return;
  case RT_RESPONSE:
  case RT_ERROR:
    rc = fn_runtime_result(fn, r->peer_pid, c->id, c->op == RT_ERROR, type, &r->body, &e);
    break;
  case RT_INIT_ERROR:
    rc = fn_runtime_init_error(fn, r->peer_pid, type, r->body.data, r->body.len, &e);
    break;
  }
  if (rc != 0)
    answer_error(r, &e);
  else
    answer_json(r, 202, NULL, "OK");
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

http_service *runtime_api_service_new(fn_system *fn)
{
  http_service *svc = xcalloc(1, sizeof *svc);
  *svc = (http_service){
      .name = "lambda-runtime",
      .ctx = fn,
      .prepare = rt_prepare,
      .handle = rt_handle,
      .error = rt_error,
      .cleanup = NULL,
  };
  return svc;
}

http_service *runtime_api_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
