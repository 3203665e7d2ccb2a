/* fn/runtime_api.c -- the Lambda Runtime API (2018-06-01) that instances
 * speak, served on tarn's private runtime socket (one for all instances).
 *
 * Why here and not in api/: this HTTP exists only for fn's own instances and
 * is the scheduler's other half (GET next is where an instance picks up its
 * invocation); no AWS client calls it.
 *
 *   GET  /2018-06-01/runtime/invocation/next         blocks until work
 *   POST /2018-06-01/runtime/invocation/{id}/response 202
 *   POST /2018-06-01/runtime/invocation/{id}/error    202
 *   POST /2018-06-01/runtime/init/error               202
 *
 * Invariants:
 *   (1) The caller is identified by the connecting process: the sandbox's
 *       init, whose host pid names the instance (req->peer_pid). A pid no
 *       instance has gets 403.
 *   (2) An instance's Runtime API call holds a reference on it (refs), so
 *       the monitor never frees an instance a handler is using.
 *   (3) An invocation is reached through in->inv under the lock only: once
 *       ended it is freed, so a handler that dropped the lock looks again.
 *   (4) This server runs a thread per connection: GET next waits in its
 *       handler (a long poll per instance), which parking would not help.
 */
#include "fn/internal.h"

#include "base/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX "/2018-06-01/runtime/"
#define ERROR_BODY_MAX (1u << 20)
#define REGISTER_WAIT_MS 5000

enum rt_op { RT_NEXT = 1, RT_RESPONSE, RT_ERROR, RT_INIT_ERROR };

typedef struct rt_call {
  enum rt_op op;
  const char *id;
} rt_call;

static void answer(http_req *r, int status, const char *type, const char *msg)
{
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "application/json");
  if (type == NULL)
    buf_printf(&r->resp_body, "{\"status\":\"%s\"}", msg);
  else
    buf_printf(&r->resp_body, "{\"errorMessage\":\"%s\",\"errorType\":\"%s\"}", msg, type);
}

static int rt_prepare(void *ctx, http_req *r, err *e)
{
  rt_call *c = arena_alloc(r->arena, sizeof *c);
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
    if (slash != NULL && slash > p && slash - p < 64) {
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

/* The instance of the calling process, with a reference (lock held). */
static instance *caller(fn_system *s, http_req *r)
{
  int64_t until = time_mono_us() + REGISTER_WAIT_MS * 1000;
  instance *in;
  /* A runtime may call before sandbox_start returned to the scheduler. */
  while ((in = sched_by_pid(s, r->peer_pid)) == NULL && !s->stopping) {
    if (time_mono_us() >= until)
      return NULL;
    struct timespec ts = {(time_t)(until / 1000000), (long)(until % 1000000) * 1000};
    pthread_cond_timedwait(&s->registered, &s->lock, &ts);
  }
  if (in != NULL)
    in->refs++;
  return in;
}

static void trace_id(char out[80])
{
  uint8_t b[20];
  char hex[41];
  for (size_t i = 0; i < sizeof b; i++)
    b[i] = (uint8_t)rand();
  hex_encode(b, sizeof b, hex);
  snprintf(out, 80, "Root=1-%08llx-%.24s;Parent=%.16s;Sampled=0",
           (unsigned long long)time(NULL), hex, hex + 24);
}

static void rt_next(fn_system *s, http_req *r)
{
  pthread_mutex_lock(&s->lock);
  instance *in = caller(s, r);
  if (in == NULL) {
    pthread_mutex_unlock(&s->lock);
    answer(r, 403, "Runtime.Unknown", "not an instance of tarn");
    return;
  }
  if (in->state == INST_STARTING) {
    in->init_ms = (double)(time_mono_us() - in->started_us) / 1000.0;
    in->cold_pending = true;
    metrics_init_duration(s, in->init_ms);
    if (in->inv != NULL) {
      in->state = INST_BUSY;
    } else {
      in->state = INST_BUSY; /* sched_release puts it on the idle stack */
      sched_release(s, in);
    }
  }
  while (in->state != INST_DEAD && !s->stopping && (in->inv == NULL || in->inv->handed))
    pthread_cond_wait(&in->cond, &s->lock);
  if (in->state == INST_DEAD || s->stopping) {
    instance_unref(s, in);
    pthread_mutex_unlock(&s->lock);
    answer(r, 500, "Runtime.Unknown", "the instance is stopping");
    return;
  }
  invoc *inv = in->inv;
  inv->handed = true;
  inv->handed_us = time_mono_us();
  inv->deadline_wall_ms = time_now_ms() + (int64_t)inv->conf->cfg.timeout_s * 1000;
  sched_timer_set(s, inv, inv->handed_us + (int64_t)inv->conf->cfg.timeout_s * 1000000);
  if (in->cold_pending) {
    inv->cold = true;
    inv->init_ms = in->init_ms;
    in->cold_pending = false;
  }
  pthread_mutex_lock(&in->log_lock);
  in->log_inv = inv;
  logs_printf(s, in->pool->fn, inv, "START RequestId: %s Version: %s\n", inv->id,
              inv->conf->cfg.version);
  pthread_mutex_unlock(&in->log_lock);
  /* Copied under the lock: the invocation is freed once it ends. */
  http_resp_header(r, "Lambda-Runtime-Aws-Request-Id", inv->id);
  http_resp_headerf(r, "Lambda-Runtime-Deadline-Ms", "%lld", (long long)inv->deadline_wall_ms);
  http_resp_header(r, "Lambda-Runtime-Invoked-Function-Arn", inv->invoked_arn);
  char trace[80];
  trace_id(trace);
  http_resp_header(r, "Lambda-Runtime-Trace-Id", trace);
  if (inv->client_context != NULL)
    http_resp_header(r, "Lambda-Runtime-Client-Context", inv->client_context);
  http_resp_header(r, "Content-Type", "application/json");
  buf_append(&r->resp_body, inv->payload, inv->len);
  instance_unref(s, in);
  pthread_mutex_unlock(&s->lock);
}

static void rt_result(fn_system *s, http_req *r, const rt_call *c)
{
  pthread_mutex_lock(&s->lock);
  instance *in = caller(s, r);
  if (in == NULL) {
    pthread_mutex_unlock(&s->lock);
    answer(r, 403, "Runtime.Unknown", "not an instance of tarn");
    return;
  }
  invoc *inv = in->inv;
  if (inv == NULL || !inv->handed || strcmp(inv->id, c->id) != 0) {
    instance_unref(s, in);
    pthread_mutex_unlock(&s->lock);
    answer(r, 400, "InvalidRequestID", "Invalid request ID");
    return;
  }
  pthread_mutex_unlock(&s->lock);
  /* What the function printed before answering belongs before END. */
  sched_drain_log(s, in);
  pthread_mutex_lock(&s->lock);
  inv = in->inv; /* it may have ended (time-out) while the lock was dropped */
  if (inv != NULL && inv->handed && strcmp(inv->id, c->id) == 0) {
    buf_release(&inv->response);
    inv->response = r->body;
    inv->response.max = FN_RESPONSE_MAX;
    buf_init(&r->body, 0);
    const char *type = NULL;
    if (c->op == RT_ERROR) {
      type = http_req_header(r, "lambda-runtime-function-error-type");
      if (inv->response.len == 0)
        buf_printf(&inv->response, "{\"errorMessage\":\"Unknown application error occurred\","
                                   "\"errorType\":\"%s\"}", type ? type : "Unhandled");
    }
    sched_complete(s, in, inv, c->op == RT_ERROR ? INV_ERROR : INV_OK, NULL);
    sched_release(s, in);
  }
  instance_unref(s, in);
  pthread_mutex_unlock(&s->lock);
  answer(r, 202, NULL, "OK");
}

static void rt_init_error(fn_system *s, http_req *r)
{
  pthread_mutex_lock(&s->lock);
  instance *in = caller(s, r);
  if (in == NULL) {
    pthread_mutex_unlock(&s->lock);
    answer(r, 403, "Runtime.Unknown", "not an instance of tarn");
    return;
  }
  free(in->init_error);
  in->init_error = strndup(r->body.data ? r->body.data : "", r->body.len);
  const char *type = http_req_header(r, "lambda-runtime-function-error-type");
  free(in->init_error_type);
  in->init_error_type = type ? strdup(type) : NULL;
  if (in->init_error == NULL || (type != NULL && in->init_error_type == NULL))
    abort();
  if (in->init_error[0] == '\0') {
    free(in->init_error);
    in->init_error = strdup("{\"errorMessage\":\"Runtime failed to initialize\","
                            "\"errorType\":\"Runtime.Unknown\"}");
  }
  if (in->inv != NULL) {
    pthread_mutex_unlock(&s->lock);
    sched_drain_log(s, in);
    pthread_mutex_lock(&s->lock);
    invoc *inv = in->inv; /* looked up again: see (3) */
    if (inv != NULL) {
      buf_reset(&inv->response);
      buf_puts(&inv->response, in->init_error);
      sched_complete(s, in, inv, INV_FAILED, "error");
    }
  }
  in->inv = NULL;
  sched_kill(s, in);
  instance_unref(s, in);
  pthread_mutex_unlock(&s->lock);
  answer(r, 202, NULL, "OK");
}

static void rt_handle(void *ctx, http_req *r)
{
  fn_system *s = ctx;
  rt_call *c = r->svc;
  switch (c->op) {
  case RT_NEXT:
    rt_next(s, r);
    break;
  case RT_RESPONSE:
  case RT_ERROR:
    rt_result(s, r, c);
    break;
  case RT_INIT_ERROR:
    rt_init_error(s, r);
    break;
  }
}

/* A response over Lambda's limit fails its invocation at once (the runtime
 * gets 413 and would otherwise leave the invoker waiting for the time-out). */
static void fail_oversized(fn_system *s, http_req *r, const rt_call *c)
{
  pthread_mutex_lock(&s->lock);
  instance *in = sched_by_pid(s, r->peer_pid);
  invoc *inv = in != NULL ? in->inv : NULL;
  if (inv != NULL && inv->handed && strcmp(inv->id, c->id) == 0) {
    buf_reset(&inv->response);
    buf_printf(&inv->response,
               "{\"errorMessage\":\"Response payload size exceeded maximum allowed payload size "
               "(%u bytes).\",\"errorType\":\"Function.ResponseSizeTooLarge\"}",
               FN_MAX_SYNC_PAYLOAD);
    sched_complete(s, in, inv, INV_FAILED, NULL);
    sched_release(s, in);
  }
  pthread_mutex_unlock(&s->lock);
}

static void rt_error(void *ctx, http_req *r, const err *e)
{
  rt_call *c = r->svc;
  if (c != NULL && c->op == RT_RESPONSE && e->code == ERR_ENTITY_TOO_LARGE)
    fail_oversized(ctx, r, c);
  int status = err_http_status(e->code);
  if (e->code == ERR_ENTITY_TOO_LARGE)
    status = 413;
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "application/json");
  buf_puts(&r->resp_body, "{\"errorMessage\":");
  buf_json_string(&r->resp_body, e->msg, strlen(e->msg));
  buf_printf(&r->resp_body, ",\"errorType\":\"%s\"}",
             e->code == ERR_ENTITY_TOO_LARGE ? "RequestEntityTooLarge" : "InvalidRequest");
}

void runtime_service_init(fn_system *s)
{
  s->runtime_svc = (http_service){
      .name = "lambda-runtime",
      .ctx = s,
      .prepare = rt_prepare,
      .handle = rt_handle,
      .error = rt_error,
      .cleanup = NULL,
  };
}

http_service *fn_runtime_service(fn_system *s)
{
  return &s->runtime_svc;
}
