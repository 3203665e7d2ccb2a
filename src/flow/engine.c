/* flow/engine.c -- the durable step engine: executions move from state to
 * state in steps, each committed (run record, history events, execution
 * record, in one change) before anything it leads to happens.
 *
 * A run is one thread of control: the execution's root, or a branch of a
 * Parallel, or an iteration of a Map (children of the run whose state
 * spawned them). Its record, in the "runs" database, says where it is:
 *   {"exec", "scope" (the path from the definition to the States it runs
 *    in), "state", "phase", "input" (the state's raw input), "eff" (the
 *    effective input of a Task or Wait), "due", "retries" (one count per
 *    retrier), "token", "prev" (last event id), "entered", "parent",
 *    "slot", "children" (a Parallel or Map waiting for its runs)}
 *
 * Phases of a run:
 *   enter     at the start of "state" (nothing of it done yet)
 *   wait      in a Wait state until "due"
 *   task      a Task's function was invoked (or is about to be)
 *   token     a Task waits for SendTaskSuccess/Failure with "token" (an
 *             activity's Task: first for a worker, then "worker" names it)
 *   retry     a failed Task/Parallel/Map waits until "due" to run again
 *   children  a Parallel or Map waits for its branches or iterations
 *
 * Invariants:
 *   (1) A step works on copies of the records; the runs in memory change
 *       only after its change committed, then its effects (invoke, timer,
 *       wake a run, tell a StartSyncExecution waiter) happen, in that order.
 *   (2) A run's record says "task" before its function is invoked: after a
 *       crash such a run fails with States.TaskFailed (never invoked twice
 *       unless a Retry says so).
 *   (3) Steps of one execution are serialised by exec_rt.mu; the steps of
 *       different executions share group commits.
 *   (4) A run struct is freed only after fn_invoke_forget for its
 *       invocation, so the completion callback never sees it freed.
 *
 * What a step does to the records (the states, Retry, Catch, history
 * events) is step.c; this file commits it and applies its effects.
 *
 * Start reading at step().
 */
#include "flow/internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PURE_STEPS 1000  /* states one step may pass through before committing */

/* ---- the queues ---- */

static void exec_unref_locked(flow_system *s, exec_rt *x);

/* Appends q to the ready queue and wakes a worker (qmu held). */
static void ready_push_locked(flow_system *s, qitem *q)
{
  q->next = NULL;
  if (s->ready_tail != NULL)
    s->ready_tail->next = q;
  else
    s->ready = q;
  s->ready_tail = q;
  pthread_cond_signal(&s->qcond);
}

static void enqueue_locked(flow_system *s, exec_rt *x, const char *id, int64_t due, bool timer)
{
  qitem *q = xcalloc(1, sizeof *q);
  q->x = x;
  x->refs++;
  q->run_id = xstrdup(id);
  q->due = due;
  if (!timer) {
    ready_push_locked(s, q);
    return;
  }
  qitem **p = &s->timers;
  while (*p != NULL && (*p)->due <= due)
    p = &(*p)->next;
  q->next = *p;
  *p = q;
  if (s->timers == q)
    pthread_cond_signal(&s->tcond);
}

static void enqueue(flow_system *s, exec_rt *x, const char *id, int64_t due, bool timer)
{
  pthread_mutex_lock(&s->qmu);
  enqueue_locked(s, x, id, due, timer);
  pthread_mutex_unlock(&s->qmu);
}

static void run_free(run *r)
{
  json_decref(r->rec);
  free(r->id);
  free(r->payload);
  free(r->result);
  free(r->result_error);
  free(r->result_cause);
  free(r);
}

void flow__exec_free(exec_rt *x)
{
  while (x->runs != NULL) {
    run *r = x->runs;
    x->runs = r->next;
    run_free(r);
  }
  json_decref(x->def);
  json_decref(x->info);
  json_decref(x->input);
  pthread_mutex_destroy(&x->mu);
  free(x->arn);
  free(x);
}

static void exec_unref_locked(flow_system *s, exec_rt *x)
{
  if (--x->refs == 0)
    flow__exec_free(x);
}

static void exec_unref(flow_system *s, exec_rt *x)
{
  pthread_mutex_lock(&s->qmu);
  exec_unref_locked(s, x);
  pthread_mutex_unlock(&s->qmu);
}

/* A live execution by ARN, with a reference; NULL when not running. */
static exec_rt *exec_find(flow_system *s, const char *arn)
{
  pthread_mutex_lock(&s->mu);
  exec_rt *x = s->execs;
  while (x != NULL && strcmp(x->arn, arn) != 0)
    x = x->next;
  if (x != NULL) {
    pthread_mutex_lock(&s->qmu);
    x->refs++;
    pthread_mutex_unlock(&s->qmu);
  }
  pthread_mutex_unlock(&s->mu);
  return x;
}

run *flow__run_find(exec_rt *x, const char *id)
{
  for (run *r = x->runs; r != NULL; r = r->next)
    if (strcmp(r->id, id) == 0)
      return r;
  return NULL;
}

/* ---- invocations ---- */

typedef struct invoke_ctx {
  flow_system *s;
  run *r;
} invoke_ctx;

static void task_done(void *ctx, int rc, fn_invoke_result *res, const err *e)
{
  invoke_ctx *ic = ctx;
  flow_system *s = ic->s;
  run *r = ic->r;
  pthread_mutex_lock(&s->qmu);
  r->has_result = true;
  r->result_rc = rc;
  r->inv = NULL;
  if (rc == 0) {
    r->fn_error = res->function_error != NULL;
    r->result = xstrndup(res->payload.data ? res->payload.data : "", res->payload.len);
    buf_release(&res->payload);
  } else {
    r->result = xstrdup(e != NULL ? e->msg : "the function could not be invoked");
  }
  enqueue_locked(s, r->x, r->id, 0, false);
  pthread_mutex_unlock(&s->qmu);
  free(ic);
}

/* Run r's Task ends now with a service's answer: result, or error and
   cause (taken); its next step is queued. Call with s->qmu held. */
static void task_answered_locked(flow_system *s, run *r, char *result, char *error, char *cause)
{
  r->has_result = true;
  r->result_rc = 0;
  r->fn_error = false;
  r->result = result;
  r->result_error = error;
  r->result_cause = cause;
  enqueue_locked(s, r->x, r->id, 0, false);
}

/* Starts the invocation of run r's Task (after its "task" record committed). */
static void invoke_start(flow_system *s, run *r)
{
  json_t *states = flow__scope_states(r->x, r->rec);
  json_t *state = json_object_get(states, flow__rec_str(r->rec, "state"));
  const char *res = flow__rec_str(state, "Resource");
  task_kind k = flow__kind_of(res);
  json_t *eff = json_object_get(r->rec, "eff");
  const char *fname = NULL;
  const char *qual = NULL;
  json_t *payload = eff;
  int rc = 0;
  err e = {0};
  if (k.plain) {
    fname = res;
  } else if (k.lambda) {
    fname = flow__rec_str(eff, "FunctionName");
    qual = flow__rec_str(eff, "Qualifier");
    payload = json_object_get(eff, "Payload");
    if (fname == NULL)
      rc = err_set(&e, FLOW_ERR_RUNTIME, "lambda:invoke needs a FunctionName parameter");
  }
  if (rc == 0 && (k.plain || k.lambda || flow__service_known(res))) {
    /* the execution acts as its machine's role (permission.c) */
    char *error = NULL, *cause = NULL;
    if (flow__task_authorize(s, flow__rec_str(r->x->info, "_role"), res,
                             k.plain ? NULL : eff, &error, &cause) != 0) {
      pthread_mutex_lock(&s->qmu);
      r->invoked = true;
      task_answered_locked(s, r, NULL, error, cause);
      pthread_mutex_unlock(&s->qmu);
      return;
    }
  }
  if (k.activity) {
    /* a worker takes it (activities.c); its token's answer ends the task */
    char *error = NULL, *cause = NULL;
    int arc = flow__activity_offer(s, r, res, &error, &cause);
    pthread_mutex_lock(&s->qmu);
    r->invoked = true;
    if (arc != 0)
      task_answered_locked(s, r, NULL, error, cause);
    pthread_mutex_unlock(&s->qmu);
    return;
  } else if (!k.plain && !k.lambda) {
    char *result, *error, *cause;
    json_t *params = json_incref(eff);
    if (k.sync) {
      json_decref(params);
      params = json_deep_copy(eff);
      json_object_set(params, "Name", json_object_get(r->rec, "child_name"));
      json_object_set_new(params, "_parent", json_pack("{s:s, s:s}", "exec", r->x->arn, "run",
                                                       r->id));
    }
    int src = flow__service_call(s, res, params, &result, &error, &cause);
    json_decref(params);
    pthread_mutex_lock(&s->qmu);
    if (src == 0 && (k.token || k.sync)) {
      /* sent: the token's answer ends the task */
      r->invoked = true;
      free(result);
    } else {
      task_answered_locked(s, r, result, error, cause);
    }
    pthread_mutex_unlock(&s->qmu);
    return;
  }
  pthread_mutex_lock(&s->qmu);
  free(r->payload);
  r->payload = payload != NULL ? flow__dump(payload) : xstrdup("{}");
  r->invoked = true;
  r->has_result = false;
  pthread_mutex_unlock(&s->qmu);
  if (rc == 0 && s->fn == NULL)
    rc = err_set(&e, ERR_UNAVAILABLE, "functions are disabled on this server");
  if (rc == 0) {
    arena *a = arena_new();
    fn_invoke_result out;
    if (k.token) {
      fn_invoke_params p = {.name = fname, .qualifier = qual, .type = FN_INVOKE_EVENT,
                            .payload = r->payload, .len = strlen(r->payload)};
      rc = fn_invoke(s->fn, &p, a, &out, &e);
      arena_free(a);
      if (rc == 0)
        return; /* the token's answer ends the task */
    } else {
      invoke_ctx *ic = xcalloc(1, sizeof *ic);
      ic->s = s;
      ic->r = r;
      fn_invoke_params p = {.name = fname, .qualifier = qual, .type = FN_INVOKE_SYNC,
                            .payload = r->payload, .len = strlen(r->payload),
                            .done = task_done, .done_ctx = ic, .running = &r->inv};
      rc = fn_invoke(s->fn, &p, a, &out, &e);
      arena_free(a);
      if (rc == 0)
        return;
      free(ic);
    }
  }
  pthread_mutex_lock(&s->qmu);
  r->has_result = true;
  r->result_rc = rc;
  r->result = xstrdup(e.msg);
  enqueue_locked(s, r->x, r->id, 0, false);
  pthread_mutex_unlock(&s->qmu);
}

/* Forgets run r's invocation (before r is freed: invariant 4). */
static void invoke_forget(flow_system *s, run *r)
{
  if (s->fn != NULL && r->inv != NULL)
    fn_invoke_forget(s->fn, &r->inv);
}

/* ---- committing a step ---- */

static void stepper_release(stepper *st)
{
  for (size_t i = 0; i < st->nt; i++) {
    free(st->t[i]->id);
    json_decref(st->t[i]->rec);
    free(st->t[i]);
  }
  free(st->t);
  for (size_t i = 0; i < st->nef; i++)
    free(st->ef[i].id);
  free(st->ef);
  json_decref(st->info);
  flow__change_release(&st->ch);
}

static void exec_unlist(flow_system *s, exec_rt *x)
{
  pthread_mutex_lock(&s->mu);
  for (exec_rt **p = &s->execs; *p != NULL; p = &(*p)->next) {
    if (*p == x) {
      *p = x->next;
      break;
    }
  }
  bool listed = x->listed;
  x->listed = false;
  pthread_mutex_unlock(&s->mu);
  if (listed)
    exec_unref(s, x);
}

/* Commits the step and, once committed, applies it (invariant 1). */
static int stepper_commit(stepper *st, err *e)
{
  flow_system *s = st->s;
  exec_rt *x = st->x;
  for (size_t i = 0; i < st->nt; i++) {
    touch *t = st->t[i];
    if (t->rec != NULL)
      flow__change_put(&st->ch, s->db_runs, t->id, strlen(t->id), t->rec);
    else
      flow__change_del(&st->ch, s->db_runs, t->id, strlen(t->id));
  }
  if (st->info != NULL)
    flow__change_put(&st->ch, s->db_execs, x->arn, strlen(x->arn), st->info);
  int rc = flow__commit(s, &st->ch, e);
  if (rc != 0)
    return rc;
  /* the runs in memory follow */
  for (size_t i = 0; i < st->nt; i++) {
    touch *t = st->t[i];
    run *r = t->r;
    if (r == NULL && t->rec != NULL) {
      r = xcalloc(1, sizeof *r);
      r->id = xstrdup(t->id);
      r->x = x;
      r->rec = t->rec;
      t->rec = NULL;
      r->next = x->runs;
      x->runs = r;
    } else if (r != NULL && t->rec == NULL) {
      invoke_forget(s, r);
      for (run **p = &x->runs; *p != NULL; p = &(*p)->next) {
        if (*p == r) {
          *p = r->next;
          break;
        }
      }
      pthread_mutex_lock(&s->qmu);
      run_free(r);
      pthread_mutex_unlock(&s->qmu);
    } else if (r != NULL) {
      json_decref(r->rec);
      r->rec = t->rec;
      t->rec = NULL;
    }
  }
  if (st->info != NULL) {
    json_decref(x->info);
    x->info = st->info;
    st->info = NULL;
  }
  for (size_t i = 0; i < st->nef; i++) {
    effect *f = &st->ef[i];
    switch (f->kind) {
    case EF_READY:
      if (!st->finished)
        enqueue(s, x, f->id, 0, false);
      break;
    case EF_TIMER:
      if (!st->finished)
        enqueue(s, x, f->id, f->due, true);
      break;
    case EF_INVOKE: {
      run *r = st->finished ? NULL : flow__run_find(x, f->id);
      if (r != NULL)
        invoke_start(s, r);
      break;
    }
    case EF_TOKEN_ADD: /* registered below, once the run is in memory */
      break;
    case EF_TOKEN_DEL:
      pthread_mutex_lock(&s->mu);
      json_object_del(s->tokens, f->id);
      pthread_mutex_unlock(&s->mu);
      break;
    case EF_DONE: {
      x->finished = true;
      json_t *parent = json_object_get(x->info, "_parent");
      exec_rt *px = parent != NULL ? exec_find(s, flow__rec_str(parent, "exec")) : NULL;
      if (px != NULL) {
        enqueue(s, px, flow__rec_str(parent, "run"), 0, false);
        exec_unref(s, px);
      }
      if (x->done != NULL) {
        json_t *pub = flow__public_copy(x->info);
        x->done(x->done_ctx, pub);
        json_decref(pub);
        x->done = NULL;
      }
      break;
    }
    }
  }
  /* tokens: every run waiting for one is findable by it */
  for (run *r = x->runs; r != NULL && !st->finished; r = r->next) {
    const char *tok = flow__rec_str(r->rec, "token");
    if (tok != NULL && strcmp(flow__rec_str(r->rec, "phase"), "token") == 0) {
      pthread_mutex_lock(&s->mu);
      if (json_object_get(s->tokens, tok) == NULL)
        json_object_set_new(s->tokens, tok, json_pack("[s, s]", x->arn, r->id));
      pthread_mutex_unlock(&s->mu);
    }
  }
  if (st->finished) {
    while (x->runs != NULL) {
      run *r = x->runs;
      x->runs = r->next;
      invoke_forget(s, r);
      pthread_mutex_lock(&s->qmu);
      run_free(r);
      pthread_mutex_unlock(&s->qmu);
    }
    exec_unlist(s, x);
  }
  return 0;
}

int flow__stepper_commit(stepper *st, err *e)
{
  return stepper_commit(st, e);
}

void flow__stepper_release(stepper *st)
{
  stepper_release(st);
}

exec_rt *flow__exec_find(flow_system *s, const char *arn)
{
  return exec_find(s, arn);
}

void flow__exec_unref(flow_system *s, exec_rt *x)
{
  exec_unref(s, x);
}

/* Runs run_id of x as far as it goes (x->mu held). */
static void step(flow_system *s, exec_rt *x, const char *run_id)
{
  if (x->finished)
    return;
  if (str_ends(run_id, "!timeout")) {
    int64_t deadline = json_integer_value(json_object_get(x->info, "_deadline"));
    if (time_now_ms() < deadline) {
      enqueue(s, x, run_id, deadline, true);
      return;
    }
    stepper ts = {.s = s, .x = x};
    flow__exec_end(&ts, NULL, "TIMED_OUT", NULL, "States.Timeout",
             "the execution ran longer than the machine's TimeoutSeconds");
    err te = {0};
    if (stepper_commit(&ts, &te) != 0)
      enqueue(s, x, run_id, time_now_ms() + 1000, true);
    stepper_release(&ts);
    return;
  }
  run *r = flow__run_find(x, run_id);
  if (r == NULL)
    return;
  stepper st = {.s = s, .x = x};
  touch *t = flow__touch_of(&st, r);
  for (int i = 0; i < MAX_PURE_STEPS; i++) {
    if (x->next_event > FLOW_MAX_HISTORY) {
      flow__exec_end(&st, t, "FAILED", NULL, "States.Runtime",
               "the execution history reached its limit of 25000 events");
      break;
    }
    enum outcome o = flow__step_once(&st, t, r);
    if (o == STOP || t->rec == NULL || st.finished)
      break;
    if (i + 1 == MAX_PURE_STEPS)
      flow__effect_add(&st, EF_READY, t->id, 0);
  }
  err e = {0};
  if (st.nt > 0 && stepper_commit(&st, &e) != 0) {
    /* not committed: nothing happened; try the step again in a second */
    enqueue(s, x, run_id, time_now_ms() + 1000, true);
  }
  stepper_release(&st);
}

/* ---- threads ---- */

static void *worker(void *arg)
{
  flow_system *s = arg;
  pthread_mutex_lock(&s->qmu);
  for (;;) {
    while (s->ready == NULL && !s->stopping)
      pthread_cond_wait(&s->qcond, &s->qmu);
    if (s->stopping)
      break;
    qitem *q = s->ready;
    s->ready = q->next;
    if (s->ready == NULL)
      s->ready_tail = NULL;
    pthread_mutex_unlock(&s->qmu);
    pthread_mutex_lock(&q->x->mu);
    step(s, q->x, q->run_id);
    pthread_mutex_unlock(&q->x->mu);
    pthread_mutex_lock(&s->qmu);
    exec_unref_locked(s, q->x);
    free(q->run_id);
    free(q);
  }
  pthread_mutex_unlock(&s->qmu);
  return NULL;
}

static void *timer_main(void *arg)
{
  flow_system *s = arg;
  pthread_mutex_lock(&s->qmu);
  while (!s->stopping) {
    int64_t now = time_now_ms();
    while (s->timers != NULL && s->timers->due <= now) {
      qitem *q = s->timers;
      s->timers = q->next;
      ready_push_locked(s, q);
    }
    if (s->timers == NULL) {
      pthread_cond_wait(&s->tcond, &s->qmu);
    } else {
      int64_t due = s->timers->due;
      struct timespec ts = {.tv_sec = due / 1000, .tv_nsec = (due % 1000) * 1000000L};
      pthread_cond_timedwait(&s->tcond, &s->qmu, &ts);
    }
  }
  pthread_mutex_unlock(&s->qmu);
  return NULL;
}

static void threads_start(flow_system *s)
{
  s->workers = xcalloc(s->nworkers, sizeof *s->workers);
  for (unsigned i = 0; i < s->nworkers; i++)
    pthread_create(&s->workers[i], NULL, worker, s);
  pthread_create(&s->timer, NULL, timer_main, s);
  s->started = true;
}

void flow__queues_drain(flow_system *s)
{
  pthread_mutex_lock(&s->qmu);
  qitem *lists[] = {s->ready, s->timers};
  s->ready = s->ready_tail = s->timers = NULL;
  for (int l = 0; l < 2; l++) {
    while (lists[l] != NULL) {
      qitem *q = lists[l];
      lists[l] = q->next;
      exec_unref_locked(s, q->x);
      free(q->run_id);
      free(q);
    }
  }
  pthread_mutex_unlock(&s->qmu);
}

void flow__engine_stop(flow_system *s)
{
  pthread_mutex_lock(&s->qmu);
  bool started = s->started;
  s->stopping = true;
  s->started = false;
  pthread_cond_broadcast(&s->qcond);
  pthread_cond_broadcast(&s->tcond);
  pthread_mutex_unlock(&s->qmu);
  if (started) {
    for (unsigned i = 0; i < s->nworkers; i++)
      pthread_join(s->workers[i], NULL);
    pthread_join(s->timer, NULL);
  }
  flow__queues_drain(s);
  /* invocations still running are forgotten (a restart fails them), and
     StartSyncExecution waiters are told that tarn stops */
  pthread_mutex_lock(&s->mu);
  size_t n = 0;
  for (exec_rt *x = s->execs; x != NULL; x = x->next)
    n++;
  exec_rt **all = xcalloc(n + 1, sizeof *all);
  n = 0;
  pthread_mutex_lock(&s->qmu);
  for (exec_rt *x = s->execs; x != NULL; x = x->next) {
    x->refs++;
    all[n++] = x;
  }
  pthread_mutex_unlock(&s->qmu);
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < n; i++) {
    exec_rt *x = all[i];
    pthread_mutex_lock(&x->mu);
    for (run *r = x->runs; r != NULL; r = r->next)
      invoke_forget(s, r);
    if (x->done != NULL) {
      x->done(x->done_ctx, NULL);
      x->done = NULL;
    }
    pthread_mutex_unlock(&x->mu);
    exec_unref(s, x);
  }
  free(all);
}

/* ---- executions ---- */

static exec_rt *exec_new(const char *arn, json_t *info, json_t *def)
{
  exec_rt *x = xcalloc(1, sizeof *x);
  x->arn = xstrdup(arn);
  pthread_mutex_init(&x->mu, NULL);
  x->info = info;
  x->def = def;
  x->next_event = 1;
  x->refs = 1; /* the list's */
  x->listed = true;
  return x;
}

int flow__engine_resume(flow_system *s, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, s->db_execs, &cur);
  MDB_val k, v;
  for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    json_t *info = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (info == NULL || strcmp(flow__rec_str(info, "status"), "RUNNING") != 0) {
      json_decref(info);
      continue;
    }
    json_t *def = json_loads(flow__rec_str(info, "_def"), 0, NULL);
    if (def == NULL) {
      json_decref(info);
      continue;
    }
    exec_rt *x = exec_new(flow__rec_str(info, "executionArn"), info, def);
    /* the next event id follows the last one stored */
    MDB_cursor *hc;
    mdb_cursor_open(txn, s->db_hist, &hc);
    char key[1200];
    size_t kl = flow__hist_key(x->arn, UINT64_MAX, key, sizeof key);
    MDB_val hk = {kl, key}, hv;
    int hrc = mdb_cursor_get(hc, &hk, &hv, MDB_SET_RANGE);
    hrc = hrc == 0 ? mdb_cursor_get(hc, &hk, &hv, MDB_PREV) : mdb_cursor_get(hc, &hk, &hv, MDB_LAST);
    if (hrc == 0 && hk.mv_size == kl && memcmp(hk.mv_data, key, kl - 8) == 0) {
      uint64_t id = 0;
      for (int i = 0; i < 8; i++)
        id = (id << 8) | ((const uint8_t *)hk.mv_data)[kl - 8 + i];
      x->next_event = id + 1;
    }
    mdb_cursor_close(hc);
    x->next = s->execs;
    s->execs = x;
  }
  mdb_cursor_close(cur);
  mdb_cursor_open(txn, s->db_runs, &cur);
  for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    const char *arn = rec != NULL ? flow__rec_str(rec, "exec") : NULL;
    exec_rt *x = s->execs;
    while (x != NULL && arn != NULL && strcmp(x->arn, arn) != 0)
      x = x->next;
    if (x == NULL || arn == NULL) {
      json_decref(rec);
      continue;
    }
    run *r = xcalloc(1, sizeof *r);
    r->id = xstrndup(k.mv_data, k.mv_size);
    r->x = x;
    r->rec = rec;
    r->next = x->runs;
    x->runs = r;
    const char *tok = flow__rec_str(rec, "token");
    if (tok != NULL && strcmp(flow__rec_str(rec, "phase"), "token") == 0)
      json_object_set_new(s->tokens, tok, json_pack("[s, s]", x->arn, r->id));
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  pthread_mutex_lock(&s->qmu);
  for (exec_rt *x = s->execs; x != NULL; x = x->next) {
    json_t *deadline = json_object_get(x->info, "_deadline");
    if (deadline != NULL) {
      char *tid = xasprintf("%s!timeout", x->arn);
      enqueue_locked(s, x, tid, json_integer_value(deadline), true);
      free(tid);
    }
  }
  for (exec_rt *x = s->execs; x != NULL; x = x->next)
    for (run *r = x->runs; r != NULL; r = r->next)
      enqueue_locked(s, x, r->id, 0, false);
  pthread_mutex_unlock(&s->qmu);
  flow__activity_resume(s);
  threads_start(s);
  return 0;
}

int flow_execution_start(flow_system *s, const char *machine_arn, const char *name,
                         const char *input, flow_exec_done done, void *done_ctx, json_t **out,
                         err *e)
{
  return flow__execution_start(s, machine_arn, name, input, NULL, done, done_ctx, out, e);
}

int flow__execution_start(flow_system *s, const char *machine_arn, const char *name,
                          const char *input, json_t *parent, flow_exec_done done,
                          void *done_ctx, json_t **out, err *e)
{
  *out = NULL;
  char uuid[37];
  if (name == NULL) {
    uuid_v4(uuid);
    name = uuid;
  }
  bool flow__name_ok(const char *n);
  if (!flow__name_ok(name))
    return err_set(e, FLOW_ERR_NAME, "Invalid Name: '%s'", name);
  if (input == NULL)
    input = "{}";
  if (strlen(input) > FLOW_MAX_PAYLOAD)
    return err_set(e, FLOW_ERR_INPUT, "Invalid execution input: the input is larger than %u "
                   "bytes", FLOW_MAX_PAYLOAD);
  json_t *in = json_loads(input, JSON_DECODE_ANY, NULL);
  if (in == NULL)
    return err_set(e, FLOW_ERR_INPUT, "Invalid State Machine Execution Input: 'Unexpected "
                   "character: the input is not JSON'");
  json_t *m;
  int rc = flow_machine_resolve(s, machine_arn, &m, e);
  if (rc != 0) {
    json_decref(in);
    return rc;
  }
  json_t *def = json_loads(flow__rec_str(m, "definition"), 0, NULL);
  char *arn = xasprintf("arn:aws:states:%s:%s:execution:%s:%s", FLOW_REGION, FLOW_ACCOUNT_ID,
               flow__rec_str(m, "name"), name);
  json_t *old;
  rc = flow__get(s, s->db_execs, arn, &old, e);
  if (rc == 0) {
    /* AWS: the same name and input while running is idempotent */
    bool same = done == NULL && strcmp(flow__rec_str(old, "status"), "RUNNING") == 0 &&
                strcmp(flow__rec_str(old, "input"), input) == 0;
    if (same)
      *out = json_pack("{s:s, s:O}", "executionArn", arn, "startDate",
                       json_object_get(old, "startDate"));
    else
      rc = err_set(e, FLOW_ERR_EXECUTION_EXISTS, "Execution Already Exists: '%s'", arn);
    json_decref(old);
    json_decref(m);
    json_decref(def);
    json_decref(in);
    free(arn);
    return same ? 0 : rc;
  }
  if (rc != ERR_NOT_FOUND) {
    json_decref(m);
    json_decref(def);
    json_decref(in);
    free(arn);
    return rc;
  }
  double now = flow__now_epoch();
  char *in_text = flow__dump(in);
  json_t *info = json_pack("{s:s, s:s, s:s, s:s, s:f, s:s, s:{s:b}, s:s, s:s, s:s}",
                           "executionArn", arn, "stateMachineArn", flow__rec_str(m, "stateMachineArn"), "name", name,
                           "status", "RUNNING", "startDate", now, "input", input,
                           "inputDetails", "included", 1, "_def", flow__rec_str(m, "definition"),
                           "_role", flow__rec_str(m, "roleArn"), "_type", flow__rec_str(m, "type"));
  if (parent != NULL)
    json_object_set(info, "_parent", parent);
  static const char *const quals[] = {"stateMachineVersionArn", "stateMachineAliasArn"};
  for (size_t i = 0; i < 2; i++)
    if (json_object_get(m, quals[i]) != NULL)
      json_object_set(info, quals[i], json_object_get(m, quals[i]));
  free(in_text);
  json_t *mts = json_object_get(def, "TimeoutSeconds");
  if (json_is_integer(mts))
    json_object_set_new(info, "_deadline",
                        json_integer(time_now_ms() + json_integer_value(mts) * 1000));
  exec_rt *x = exec_new(arn, info, def);
  x->done = done;
  x->done_ctx = done_ctx;
  x->refs++; /* ours, until the end of this call */
  pthread_mutex_lock(&x->mu);
  stepper st = {.s = s, .x = x};
  char *rid = xasprintf("%s#", arn);
  json_t *rec = json_pack("{s:s, s:[], s:s, s:s, s:o, s:[], s:I, s:I}", "exec", arn, "scope",
                          "state", flow__rec_str(def, "StartAt"), "phase", "enter", "input", in,
                          "retries", "prev", (json_int_t)0, "entered",
                          (json_int_t)time_now_ms());
  touch *t = flow__touch_new(&st, rid, rec);
  st.info = json_deep_copy(info);
  char *dumped = flow__dump(json_object_get(rec, "input"));
  json_t *started = json_pack("{s:s, s:{s:b}, s:s}", "input", dumped, "inputDetails",
                              "truncated", 0, "roleArn", flow__rec_str(m, "roleArn"));
  for (size_t i = 0; i < 2; i++)
    if (json_object_get(m, quals[i]) != NULL)
      json_object_set(started, quals[i], json_object_get(m, quals[i]));
  flow__emit(&st, t, "ExecutionStarted", "executionStartedEventDetails", started);
  free(dumped);
  flow__effect_add(&st, EF_READY, rid, 0);
  if (json_object_get(info, "_deadline") != NULL) {
    char *tid = xasprintf("%s!timeout", arn);
    flow__effect_add(&st, EF_TIMER, tid, json_integer_value(json_object_get(info, "_deadline")));
    free(tid);
  }
  pthread_mutex_lock(&s->mu);
  x->next = s->execs;
  s->execs = x;
  pthread_mutex_unlock(&s->mu);
  rc = stepper_commit(&st, e);
  stepper_release(&st);
  pthread_mutex_unlock(&x->mu);
  if (rc != 0) {
    x->done = NULL;
    exec_unlist(s, x);
  } else {
    *out = json_pack("{s:s, s:f}", "executionArn", arn, "startDate", now);
  }
  exec_unref(s, x);
  free(rid);
  free(arn);
  json_decref(m);
  return rc;
}

void flow_execution_forget(flow_system *s, const char *exec_arn, void *done_ctx)
{
  exec_rt *x = exec_find(s, exec_arn);
  if (x == NULL)
    return;
  pthread_mutex_lock(&x->mu);
  if (x->done_ctx == done_ctx)
    x->done = NULL;
  pthread_mutex_unlock(&x->mu);
  exec_unref(s, x);
}

int flow_execution_stop(flow_system *s, const char *arn, const char *error, const char *cause,
                        json_t **out, err *e)
{
  *out = NULL;
  json_t *info;
  int rc = flow_execution_get(s, arn, &info, e);
  if (rc != 0)
    return rc;
  bool running = strcmp(flow__rec_str(info, "status"), "RUNNING") == 0;
  json_decref(info);
  exec_rt *x = running ? exec_find(s, arn) : NULL;
  if (x == NULL)
    return err_set(e, FLOW_ERR_NO_EXECUTION, "Execution Does Not Exist: '%s' is not running",
                   arn);
  pthread_mutex_lock(&x->mu);
  if (x->finished) {
    rc = err_set(e, FLOW_ERR_NO_EXECUTION, "Execution Does Not Exist: '%s' is not running",
                 arn);
  } else {
    stepper st = {.s = s, .x = x};
    flow__exec_end(&st, NULL, "ABORTED", NULL, error, cause);
    rc = stepper_commit(&st, e);
    stepper_release(&st);
    if (rc == 0)
      *out = json_pack("{s:O}", "stopDate", json_object_get(x->info, "stopDate"));
  }
  pthread_mutex_unlock(&x->mu);
  exec_unref(s, x);
  return rc;
}

/* ---- task tokens ---- */

static int token_answer(flow_system *s, const char *token, const char *output, const char *error,
                        const char *cause, err *e)
{
  if (token == NULL || strlen(token) < 1 || strlen(token) > 1024)
    return err_set(e, FLOW_ERR_TOKEN, "Invalid Token: 'the task token is malformed'");
  pthread_mutex_lock(&s->mu);
  json_t *where = json_object_get(s->tokens, token);
  char *arn = where ? xstrdup(json_string_value(json_array_get(where, 0))) : NULL;
  char *rid = where ? xstrdup(json_string_value(json_array_get(where, 1))) : NULL;
  pthread_mutex_unlock(&s->mu);
  if (arn == NULL)
    return err_set(e, FLOW_ERR_TASK_GONE, "Task Timed Out: 'Provided task does not exist "
                   "anymore'");
  exec_rt *x = exec_find(s, arn);
  int rc = 0;
  if (x == NULL) {
    rc = err_set(e, FLOW_ERR_TASK_GONE, "Task Timed Out: 'Provided task does not exist "
                 "anymore'");
  } else {
    pthread_mutex_lock(&x->mu);
    run *r = flow__run_find(x, rid);
    if (r == NULL || x->finished || strcmp(flow__rec_str(r->rec, "phase"), "token") != 0 ||
        flow__rec_str(r->rec, "token") == NULL || strcmp(flow__rec_str(r->rec, "token"), token) != 0) {
      rc = err_set(e, FLOW_ERR_TASK_GONE, "Task Timed Out: 'Provided task does not exist "
                   "anymore'");
    } else if (output == NULL && error == NULL && cause == NULL) {
      /* SendTaskHeartbeat: HeartbeatSeconds start again, durably */
      json_t *st_def = json_object_get(flow__scope_states(x, r->rec), flow__rec_str(r->rec, "state"));
      json_t *hb = json_object_get(st_def, "HeartbeatSeconds");
      if (hb != NULL) {
        stepper hs = {.s = s, .x = x};
        flow__deadline_set(&hs, flow__touch_of(&hs, r), "hbdue", hb);
        rc = stepper_commit(&hs, e);
        stepper_release(&hs);
      }
    } else {
      pthread_mutex_lock(&s->qmu);
      r->has_result = true;
      r->result_rc = 0;
      r->fn_error = false;
      free(r->result);
      r->result = output ? xstrdup(output) : NULL;
      r->result_error = output ? NULL : xstrdup(error ? error : "");
      r->result_cause = output ? NULL : xstrdup(cause ? cause : "");
      pthread_mutex_unlock(&s->qmu);
      /* the answer is durable once this step committed */
      step(s, x, rid);
      if (r == flow__run_find(x, rid) && r->has_result)
        rc = err_set(e, ERR_UNAVAILABLE, "the task's answer could not be recorded");
    }
    pthread_mutex_unlock(&x->mu);
    exec_unref(s, x);
  }
  free(arn);
  free(rid);
  return rc;
}

int flow_task_success(flow_system *s, const char *token, const char *output, err *e)
{
  if (output == NULL)
    output = "null";
  json_t *v = json_loads(output, JSON_DECODE_ANY, NULL);
  if (v == NULL)
    return err_set(e, FLOW_ERR_OUTPUT, "Invalid Output: 'the output is not JSON'");
  json_decref(v);
  if (strlen(output) > FLOW_MAX_PAYLOAD)
    return err_set(e, FLOW_ERR_OUTPUT, "Invalid Output: larger than %u bytes", FLOW_MAX_PAYLOAD);
  return token_answer(s, token, output, NULL, NULL, e);
}

int flow_task_failure(flow_system *s, const char *token, const char *error, const char *cause,
                      err *e)
{
  return token_answer(s, token, NULL, error ? error : "", cause ? cause : "", e);
}

int flow_task_heartbeat(flow_system *s, const char *token, err *e)
{
  return token_answer(s, token, NULL, NULL, NULL, e);
}
