/* fn/wait.c -- a synchronous invocation waited for on the calling thread,
 * for the parts that run functions from their own worker threads (event
 * source mappings, Firehose processors, batch jobs).
 *
 * Why: fn_invoke never blocks (an HTTP handler parks instead), but a worker
 * thread has nothing else to do than wait; it must still notice when tarn
 * stops, so it wakes every FN_WAIT_CHECK_MS to ask its part.
 *
 * Invariants:
 *   (1) The waiter lives on the caller's stack: once stop says yes the
 *       invocation is forgotten (fn_invoke_forget), after which its done
 *       callback is never called, so nothing touches the waiter later.
 *   (2) out->payload is always initialised (empty on an error), so the
 *       caller releases it whatever the result.
 */
#include "fn/fn.h"
#include "base/text.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define FN_WAIT_CHECK_MS 200

typedef struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  bool done;
  int rc;
  err e;
  fn_answer *out;
  fn_invocation *running;
} waiter;

static void wait_done(void *ctx, int rc, fn_invoke_result *res, const err *e)
{
  waiter *w = ctx;
  pthread_mutex_lock(&w->mu);
  w->rc = rc;
  if (rc == 0) {
    w->out->function_error = res->function_error != NULL;
    w->out->payload = res->payload;
    buf_init(&res->payload, 0);
  } else if (e != NULL) {
    w->e = *e;
  }
  w->done = true;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->mu);
}

int fn_invoke_wait(fn_system *s, const char *name, const char *qualifier, const char *payload,
                   bool (*stop)(void *ctx), void *stop_ctx, fn_answer *out, err *e)
{
  memset(out, 0, sizeof *out);
  buf_init(&out->payload, 0);
  waiter w;
  memset(&w, 0, sizeof w);
  w.out = out;
  pthread_mutex_init(&w.mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w.cond, &ca);
  pthread_condattr_destroy(&ca);
  fn_invoke_params p = {.name = name, .qualifier = qualifier, .type = FN_INVOKE_SYNC,
                        .payload = payload, .len = strlen(payload), .done = wait_done,
                        .done_ctx = &w, .running = &w.running};
  arena *a = arena_new();
  fn_invoke_result res;
  memset(&res, 0, sizeof res);
  int rc = fn_invoke(s, &p, a, &res, e);
  arena_free(a);
  while (rc == 0) {
    pthread_mutex_lock(&w.mu);
    if (!w.done) {
      struct timespec ts = time_deadline(CLOCK_MONOTONIC, FN_WAIT_CHECK_MS);
      pthread_cond_timedwait(&w.cond, &w.mu, &ts);
    }
    bool done = w.done;
    pthread_mutex_unlock(&w.mu);
    if (!done && stop(stop_ctx)) {
      fn_invoke_forget(s, &w.running); /* (1) */
      pthread_mutex_lock(&w.mu);
      done = w.done;
      pthread_mutex_unlock(&w.mu);
      if (!done) {
        rc = err_set(e, ERR_UNAVAILABLE, "tarn is stopping");
        break;
      }
    }
    if (done) {
      rc = w.rc;
      if (rc != 0)
        err_set(e, rc, "%s", w.e.msg);
      break;
    }
  }
  pthread_cond_destroy(&w.cond);
  pthread_mutex_destroy(&w.mu);
  return rc;
}
