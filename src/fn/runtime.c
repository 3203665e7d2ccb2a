/* fn/runtime.c -- the instance side of the Lambda Runtime API (2018-06-01):
 * what GET next, POST response / error and POST init/error do to the
 * scheduler. The HTTP side is api/runtime_api.c.
 *
 * Why here: this is the scheduler's other half (GET next is where an
 * instance picks up its invocation); it needs the scheduler's lock and
 * state, and no wire format.
 *
 * Invariants:
 *   (1) The caller is identified by the connecting process: the sandbox's
 *       init, whose host pid names the instance. A pid no instance has gets
 *       ERR_DENIED.
 *   (2) An instance's Runtime API call holds a reference on it (refs), so
 *       the monitor never frees an instance a handler is using.
 *   (3) An invocation is reached through in->inv under the lock only: once
 *       ended it is freed, so a handler that dropped the lock looks again.
 *   (4) A GET next waits without a thread: fn_runtime_next parks a waiter
 *       on its instance (in->waiter, at most one; a newer GET next answers
 *       the older) and returns. fn__runtime_wake, called under the lock
 *       wherever an instance gets an invocation or stops, answers it: the
 *       runtime socket's server parks the request meanwhile (http.h), so a
 *       small pool of threads serves any number of idle instances.
 *   (5) A waiter holds a reference on its instance until it is answered or
 *       forgotten (fn_runtime_next_forget, from the request's cleanup);
 *       either way exactly once, under the lock, and then it is freed.
 *   (6) A runtime may call GET next before sandbox_start returned its pid to
 *       the scheduler: that waiter parks on s->unregistered (no instance
 *       yet) until fn__runtime_registered attaches it, or the reaper's
 *       fn__runtime_expire refuses it REGISTER_WAIT_MS later (a process that
 *       is no instance), or the stop does. The other calls come after
 *       GET next (response, error) or rarely race the registration (init
 *       error): caller() waits for it in its thread, up to REGISTER_WAIT_MS.
 */
#include "fn/internal.h"

#include "base/hash.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REGISTER_WAIT_MS 5000

/* The instance of the calling process, with a reference (lock held). */
static instance *caller(fn_system *s, int peer_pid)
{
  int64_t until = time_mono_us() + REGISTER_WAIT_MS * 1000;
  instance *in;
  /* A runtime may call before sandbox_start returned to the scheduler. */
  while ((in = fn__sched_by_pid(s, peer_pid)) == NULL && !s->stopping) {
    if (time_mono_us() >= until)
      return NULL;
    struct timespec ts = {(time_t)(until / 1000000), (long)(until % 1000000) * 1000};
    pthread_cond_timedwait(&s->registered, &s->lock, &ts);
  }
  if (in != NULL)
    in->refs++;
  return in;
}

static int not_an_instance(err *e)
{
  return err_set(e, ERR_DENIED, "not an instance of tarn");
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

struct fn_runtime_wait {
  instance *in;                /* with a reference (5); NULL while unregistered (6) */
  int pid;                     /* the caller's */
  int64_t until_us;            /* unregistered: refused after (6) */
  fn_runtime_wait *next;       /* on s->unregistered */
  fn_runtime_next_done done;
  void *ctx;
  fn_runtime_wait **handle;    /* the caller's, cleared before done */
};

/* Hands in's invocation over (lock held): from here on its runtime has it
 * and its time-out counts. w's strings point into inv and trace. */
static void hand_over(fn_system *s, instance *in, fn_runtime_work *w, char trace[80])
{
  invoc *inv = in->inv;
  inv->handed = true;
  inv->handed_us = time_mono_us();
  inv->deadline_wall_ms = time_now_ms() + (int64_t)inv->conf->cfg.timeout_s * 1000;
  fn__sched_timer_set(s, inv, inv->handed_us + (int64_t)inv->conf->cfg.timeout_s * 1000000);
  if (in->cold_pending) {
    inv->cold = true;
    inv->init_ms = in->init_ms;
    in->cold_pending = false;
  }
  pthread_mutex_lock(&in->log_lock);
  in->log_inv = inv;
  fn__logs_printf(s, in->pool->fn, inv, "START RequestId: %s Version: %s\n", inv->id,
              inv->conf->cfg.version);
  pthread_mutex_unlock(&in->log_lock);
  trace_id(trace);
  *w = (fn_runtime_work){
      .request_id = inv->id,
      .deadline_ms = inv->deadline_wall_ms,
      .invoked_arn = inv->invoked_arn,
      .trace_id = trace,
      .client_context = inv->client_context,
      .payload = inv->payload,
      .len = inv->len,
  };
}

/* Unhooks w from its instance, or from s->unregistered (lock held); the
 * caller then answers or drops it and calls waiter_free. */
static void waiter_take(fn_system *s, fn_runtime_wait *w)
{
  if (w->in != NULL) {
    w->in->waiter = NULL;
  } else {
    fn_runtime_wait **pp = &s->unregistered;
    while (*pp != w)
      pp = &(*pp)->next;
    *pp = w->next;
  }
  *w->handle = NULL;
}

static void waiter_free(fn_system *s, fn_runtime_wait *w)
{
  if (w->in != NULL)
    fn__instance_unref(s, w->in);
  free(w);
}

static void waiter_refuse(fn_system *s, fn_runtime_wait *w, int code, const char *why)
{
  waiter_take(s, w);
  err e;
  w->done(w->ctx, err_set(&e, code, "%s", why), NULL, &e);
  waiter_free(s, w);
}

void fn__runtime_wake(fn_system *s, instance *in)
{
  fn_runtime_wait *w = in->waiter;
  if (w == NULL)
    return;
  if (in->state == INST_DEAD || s->stopping) {
    waiter_refuse(s, w, ERR_UNAVAILABLE, "the instance is stopping");
    return;
  }
  if (in->inv == NULL || in->inv->handed)
    return;
  fn_runtime_work work;
  char trace[80];
  hand_over(s, in, &work, trace);
  waiter_take(s, w);
  w->done(w->ctx, 0, &work, NULL);
  waiter_free(s, w);
}

/* Makes w in's GET next (lock held): its first ends init. */
static void attach(fn_system *s, fn_runtime_wait *w, instance *in)
{
  in->refs++;
  w->in = in;
  if (in->state == INST_STARTING) {
    in->next_us = time_mono_us();
    in->init_ms = (double)(time_mono_us() - in->started_us) / 1000.0;
    in->cold_pending = true;
    fn__metrics_init_duration(s, in->init_ms);
    in->state = INST_BUSY;
    if (in->inv == NULL)
      fn__sched_release(s, in); /* onto the idle stack */
  }
  if (in->waiter != NULL) /* (4): the older one's connection is gone */
    waiter_refuse(s, in->waiter, ERR_UNAVAILABLE,
                  "another GET next of this instance took its place");
  in->waiter = w;
  fn__runtime_wake(s, in); /* work may be there already */
}

void fn__runtime_registered(fn_system *s, instance *in)
{
  for (fn_runtime_wait *w = s->unregistered, *next; w != NULL; w = next) {
    next = w->next;
    if (w->pid == in->pid) {
      waiter_take(s, w);
      *w->handle = w; /* still parked, now on its instance */
      attach(s, w, in);
    }
  }
}

void fn__runtime_expire(fn_system *s, int64_t now_us)
{
  for (fn_runtime_wait *w = s->unregistered, *next; w != NULL; w = next) {
    next = w->next;
    if (s->stopping)
      waiter_refuse(s, w, ERR_UNAVAILABLE, "tarn is stopping");
    else if (w->until_us <= now_us)
      waiter_refuse(s, w, ERR_DENIED, "not an instance of tarn");
  }
}

int fn_runtime_next(fn_system *s, int peer_pid, fn_runtime_next_done done, void *ctx,
                    fn_runtime_wait **wait, err *e)
{
  pthread_mutex_lock(&s->lock);
  instance *in = fn__sched_by_pid(s, peer_pid);
  if (in == NULL && s->stopping) {
    pthread_mutex_unlock(&s->lock);
    return not_an_instance(e);
  }
  fn_runtime_wait *w = xcalloc(1, sizeof *w);
  *w = (fn_runtime_wait){.pid = peer_pid, .done = done, .ctx = ctx, .handle = wait};
  *wait = w;
  if (in == NULL) { /* (6) */
    w->until_us = time_mono_us() + REGISTER_WAIT_MS * 1000;
    w->next = s->unregistered;
    s->unregistered = w;
  } else {
    attach(s, w, in);
  }
  pthread_mutex_unlock(&s->lock);
  return 0;
}

void fn_runtime_next_forget(fn_system *s, fn_runtime_wait **wait)
{
  pthread_mutex_lock(&s->lock);
  fn_runtime_wait *w = *wait;
  if (w != NULL) {
    waiter_take(s, w);
    waiter_free(s, w);
  }
  pthread_mutex_unlock(&s->lock);
}

int fn_runtime_result(fn_system *s, int peer_pid, const char *request_id, bool failed,
                      const char *error_type, buf *body, err *e)
{
  pthread_mutex_lock(&s->lock);
  instance *in = caller(s, peer_pid);
  if (in == NULL) {
    pthread_mutex_unlock(&s->lock);
    return not_an_instance(e);
  }
  invoc *inv = in->inv;
  if (inv == NULL || !inv->handed || strcmp(inv->id, request_id) != 0) {
    fn__instance_unref(s, in);
    pthread_mutex_unlock(&s->lock);
    return err_set(e, ERR_INVALID, "Invalid request ID");
  }
  char slot[37];
  memcpy(slot, inv->slot, sizeof slot); /* freed before the invoker hears (pg_slots.c (3)) */
  inv->slot[0] = '\0';
  pthread_mutex_unlock(&s->lock);
  /* What the function printed before answering belongs before END. */
  fn__sched_drain_log(s, in);
  if (slot[0] != '\0')
    fn__slot_release(s, slot);
  pthread_mutex_lock(&s->lock);
  inv = in->inv; /* it may have ended (time-out) while the lock was dropped */
  if (inv != NULL && inv->handed && strcmp(inv->id, request_id) == 0) {
    buf_release(&inv->response);
    inv->response = *body;
    inv->response.max = FN_RESPONSE_MAX;
    buf_init(body, 0);
    if (failed && inv->response.len == 0)
      buf_printf(&inv->response, "{\"errorMessage\":\"Unknown application error occurred\","
                                 "\"errorType\":\"%s\"}", error_type ? error_type : "Unhandled");
    fn__sched_complete(s, in, inv, failed ? INV_ERROR : INV_OK, NULL);
    fn__sched_release(s, in);
  }
  fn__instance_unref(s, in);
  pthread_mutex_unlock(&s->lock);
  return 0;
}

int fn_runtime_init_error(fn_system *s, int peer_pid, const char *error_type, const char *body,
                          size_t len, err *e)
{
  pthread_mutex_lock(&s->lock);
  instance *in = caller(s, peer_pid);
  if (in == NULL) {
    pthread_mutex_unlock(&s->lock);
    return not_an_instance(e);
  }
  free(in->init_error);
  in->init_error = xstrndup(body ? body : "", len);
  free(in->init_error_type);
  in->init_error_type = error_type ? xstrdup(error_type) : NULL;
  if (in->init_error[0] == '\0') {
    free(in->init_error);
    in->init_error = xstrdup("{\"errorMessage\":\"Runtime failed to initialize\","
                            "\"errorType\":\"Runtime.Unknown\"}");
  }
  if (in->inv != NULL) {
    pthread_mutex_unlock(&s->lock);
    fn__sched_drain_log(s, in);
    pthread_mutex_lock(&s->lock);
    invoc *inv = in->inv; /* looked up again: see (3) */
    if (inv != NULL) {
      buf_reset(&inv->response);
      buf_puts(&inv->response, in->init_error);
      fn__sched_complete(s, in, inv, INV_FAILED, "error");
    }
  }
  in->inv = NULL;
  fn__sched_kill(s, in);
  fn__instance_unref(s, in);
  pthread_mutex_unlock(&s->lock);
  return 0;
}

void fn_runtime_response_too_large(fn_system *s, int peer_pid, const char *request_id)
{
  pthread_mutex_lock(&s->lock);
  instance *in = fn__sched_by_pid(s, peer_pid);
  invoc *inv = in != NULL ? in->inv : NULL;
  if (inv != NULL && inv->handed && strcmp(inv->id, request_id) == 0) {
    buf_reset(&inv->response);
    buf_printf(&inv->response,
               "{\"errorMessage\":\"Response payload size exceeded maximum allowed payload size "
               "(%u bytes).\",\"errorType\":\"Function.ResponseSizeTooLarge\"}",
               FN_MAX_SYNC_PAYLOAD);
    fn__sched_complete(s, in, inv, INV_FAILED, NULL);
    fn__sched_release(s, in);
  }
  pthread_mutex_unlock(&s->lock);
}
