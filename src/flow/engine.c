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
 *   token     a Task waits for SendTaskSuccess/Failure with "token"
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
 * Start reading at step().
 */
#include "flow/internal.h"

#include "base/hash.h"
#include "base/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PURE_STEPS 1000  /* states one step may pass through before committing */

enum { EF_READY, EF_TIMER, EF_INVOKE, EF_TOKEN_ADD, EF_TOKEN_DEL, EF_DONE };

typedef struct touch {
  run *r;            /* NULL for a run made by this step */
  char *id;
  json_t *rec;       /* the new record, NULL when the run ends */
} touch;

typedef struct effect {
  int kind;
  char *id;          /* run id, or token */
  int64_t due;
} effect;

typedef struct stepper {
  flow_system *s;
  exec_rt *x;
  fchange ch;
  touch **t;         /* each touch stays where it is while more are added */
  size_t nt;
  effect *ef;
  size_t nef;
  json_t *info;      /* a copy of the execution record, when changed */
  bool finished;     /* the execution ended in this step */
} stepper;

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

static run *run_find(exec_rt *x, const char *id)
{
  for (run *r = x->runs; r != NULL; r = r->next)
    if (strcmp(r->id, id) == 0)
      return r;
  return NULL;
}

/* ---- steps: records, events, effects ---- */

static touch *touch_of(stepper *st, run *r)
{
  for (size_t i = 0; i < st->nt; i++)
    if (strcmp(st->t[i]->id, r->id) == 0)
      return st->t[i];
  st->t = xrealloc(st->t, (st->nt + 1) * sizeof *st->t);
  touch *t = xcalloc(1, sizeof *t);
  st->t[st->nt++] = t;
  t->r = r;
  t->id = xstrdup(r->id);
  t->rec = json_deep_copy(r->rec);
  return t;
}

static touch *touch_new(stepper *st, const char *id, json_t *rec)
{
  st->t = xrealloc(st->t, (st->nt + 1) * sizeof *st->t);
  touch *t = xcalloc(1, sizeof *t);
  st->t[st->nt++] = t;
  t->r = NULL;
  t->id = xstrdup(id);
  t->rec = rec;
  return t;
}

static void effect_add(stepper *st, int kind, const char *id, int64_t due)
{
  st->ef = xrealloc(st->ef, (st->nef + 1) * sizeof *st->ef);
  st->ef[st->nef++] = (effect){kind, xstrdup(id), due};
}

static json_t *info_of(stepper *st)
{
  if (st->info == NULL)
    st->info = json_deep_copy(st->x->info);
  return st->info;
}

static void emit(stepper *st, touch *t, const char *type, const char *key, json_t *details)
{
  uint64_t id = st->x->next_event++;
  json_t *ev = json_pack("{s:f, s:s, s:I, s:I}", "timestamp", flow__now_epoch(), "type", type,
                         "id", (json_int_t)id, "previousEventId",
                         t != NULL ? json_integer_value(json_object_get(t->rec, "prev")) : 0);
  if (key != NULL)
    json_object_set_new(ev, key, details != NULL ? details : json_object());
  else
    json_decref(details);
  if (t != NULL)
    json_object_set_new(t->rec, "prev", json_integer((json_int_t)id));
  char k[1200];
  size_t kl = flow__hist_key(st->x->arn, id, k, sizeof k);
  flow__change_put(&st->ch, st->s->db_hist, k, kl, ev);
  json_decref(ev);
}

static char *dump(json_t *v)
{
  char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  return d != NULL ? d : xstrdup("null");
}

static json_t *text_details(const char *name, const char *field, json_t *v)
{
  char *d = dump(v);
  json_t *o = json_pack("{s:s, s:s, s:{s:b}}", "name", name, field, d,
                        strcmp(field, "input") == 0 ? "inputDetails" : "outputDetails",
                        "truncated", 0);
  free(d);
  return o;
}

/* The States object a run works in. */
static json_t *scope_states(exec_rt *x, json_t *rec)
{
  json_t *cur = x->def;
  size_t i;
  json_t *k;
  json_array_foreach(json_object_get(rec, "scope"), i, k) {
    cur = json_is_string(k) ? json_object_get(cur, json_string_value(k))
                            : json_array_get(cur, (size_t)json_integer_value(k));
  }
  return json_object_get(cur, "States");
}

static const char *rec_str(json_t *rec, const char *k)
{
  return json_string_value(json_object_get(rec, k));
}

static void iso(int64_t ms, char out[25])
{
  time_format_iso8601_ms(ms, out);
}

static json_t *context(stepper *st, touch *t)
{
  json_t *info = st->x->info;
  char started[25], entered[25];
  iso((int64_t)(json_number_value(json_object_get(info, "startDate")) * 1000), started);
  iso(json_integer_value(json_object_get(t->rec, "entered")), entered);
  if (st->x->input == NULL)
    st->x->input = json_loads(rec_str(info, "input"), JSON_DECODE_ANY, NULL);
  json_t *input = st->x->input != NULL ? json_incref(st->x->input) : NULL;
  const char *marn = rec_str(info, "stateMachineArn");
  const char *mname = strrchr(marn, ':') ? strrchr(marn, ':') + 1 : marn;
  int retries = 0;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(t->rec, "retries"), i, c) {
    retries += (int)json_integer_value(c);
  }
  json_t *ctx = json_pack("{s:{s:s, s:o, s:s, s:s, s:s}, s:{s:s, s:s, s:i}, s:{s:s, s:s}}",
                          "Execution", "Id", st->x->arn, "Input", input ? input : json_object(),
                          "Name", rec_str(info, "name"), "RoleArn", rec_str(info, "_role"),
                          "StartTime", started, "State", "EnteredTime", entered, "Name",
                          rec_str(t->rec, "state"), "RetryCount", retries, "StateMachine", "Id",
                          marn, "Name", mname);
  if (rec_str(t->rec, "token") != NULL)
    json_object_set_new(ctx, "Task", json_pack("{s:s}", "Token", rec_str(t->rec, "token")));
  return ctx;
}

/* Deletes every map item and result under prefix (in the step's change). */
static void mapdata_drop(stepper *st, const char *prefix)
{
  json_t *keys, *vals;
  err e = {0};
  if (flow__scan(st->s, st->s->db_mapdata, prefix, &keys, &vals, &e) == 0) {
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
      flow__change_del(&st->ch, st->s->db_mapdata, json_string_value(k), json_string_length(k));
    }
  }
  json_decref(keys);
  json_decref(vals);
}

static void slot_put(stepper *st, const char *run_id, char kind, size_t slot, json_t *v)
{
  char key[1400];
  flow__slot_key(run_id, kind, slot, key, sizeof key);
  flow__change_put(&st->ch, st->s->db_mapdata, key, strlen(key), v);
}

/* ---- ending runs and executions ---- */

static void exec_end(stepper *st, touch *t, const char *status, json_t *output,
                     const char *error, const char *cause)
{
  json_t *info = info_of(st);
  json_object_set_new(info, "status", json_string(status));
  json_object_set_new(info, "stopDate", json_real(flow__now_epoch()));
  if (output != NULL) {
    char *d = dump(output);
    json_object_set_new(info, "output", json_string(d));
    json_object_set_new(info, "outputDetails", json_pack("{s:b}", "included", 1));
    json_t *det = json_pack("{s:s, s:{s:b}}", "output", d, "outputDetails", "truncated", 0);
    free(d);
    emit(st, t, "ExecutionSucceeded", "executionSucceededEventDetails", det);
  } else {
    if (error != NULL)
      json_object_set_new(info, "error", json_string(error));
    if (cause != NULL)
      json_object_set_new(info, "cause", json_string(cause));
    json_t *det = json_object();
    if (error != NULL)
      json_object_set_new(det, "error", json_string(error));
    if (cause != NULL)
      json_object_set_new(det, "cause", json_string(cause));
    bool aborted = strcmp(status, "ABORTED") == 0;
    bool timed_out = strcmp(status, "TIMED_OUT") == 0;
    emit(st, t, aborted ? "ExecutionAborted" : timed_out ? "ExecutionTimedOut" : "ExecutionFailed",
         aborted     ? "executionAbortedEventDetails"
         : timed_out ? "executionTimedOutEventDetails"
                     : "executionFailedEventDetails",
         det);
  }
  /* every run of the execution ends with it */
  char prefix[1200];
  snprintf(prefix, sizeof prefix, "%s#", st->x->arn);
  mapdata_drop(st, prefix);
  for (run *r = st->x->runs; r != NULL; r = r->next) {
    touch *rt = touch_of(st, r);
    if (rt->rec != NULL && rec_str(rt->rec, "token") != NULL)
      effect_add(st, EF_TOKEN_DEL, rec_str(rt->rec, "token"), 0);
    json_decref(rt->rec);
    rt->rec = NULL;
  }
  for (size_t i = 0; i < st->nt; i++) {
    json_decref(st->t[i]->rec);
    st->t[i]->rec = NULL;
  }
  st->finished = true;
  effect_add(st, EF_DONE, st->x->arn, 0);
}

static void children_abort(stepper *st, const char *parent_id);

/* A child run ended: its result (or failure) goes to its parent. */
static void child_end(stepper *st, touch *t, json_t *output, const char *error,
                      const char *cause)
{
  const char *pid = rec_str(t->rec, "parent");
  run *pr = run_find(st->x, pid);
  size_t slot = (size_t)json_integer_value(json_object_get(t->rec, "slot"));
  json_t *rec = t->rec;
  t->rec = NULL;
  if (pr == NULL) {
    json_decref(rec);
    return;
  }
  touch *pt = touch_of(st, pr);
  json_t *ch = json_object_get(pt->rec, "children");
  bool is_map = json_is_true(json_object_get(ch, "map"));
  if (ch == NULL || pt->rec == NULL) {
    json_decref(rec);
    return;
  }
  const char *pstate = rec_str(pt->rec, "state");
  if (output != NULL) {
    slot_put(st, pt->id, 'r', slot, output);
    if (is_map)
      emit(st, pt, "MapIterationSucceeded", "mapIterationSucceededEventDetails",
           json_pack("{s:s, s:i}", "name", pstate, "index", (int)slot));
  } else if (json_object_get(ch, "tolerate") != NULL) {
    json_int_t fails = json_integer_value(json_object_get(ch, "failures")) + 1;
    json_object_set_new(ch, "failures", json_integer(fails));
    json_t *f = json_pack("{s:s, s:s, s:b}", "Error", error ? error : "", "Cause",
                          cause ? cause : "", "_failed", 1);
    slot_put(st, pt->id, 'r', slot, f);
    json_decref(f);
    if (fails > json_integer_value(json_object_get(ch, "tolerate")) &&
        json_object_get(ch, "failed") == NULL)
      json_object_set_new(ch, "failed",
                          json_pack("{s:s, s:s}", "Error", "States.ExceedToleratedFailureThreshold",
                                    "Cause", "The specified tolerated failure threshold was "
                                    "exceeded"));
    if (is_map)
      emit(st, pt, "MapIterationFailed", "mapIterationFailedEventDetails",
           json_pack("{s:s, s:i}", "name", pstate, "index", (int)slot));
  } else {
    if (json_object_get(ch, "failed") == NULL)
      json_object_set_new(ch, "failed", json_pack("{s:s, s:s}", "Error", error ? error : "",
                                                  "Cause", cause ? cause : ""));
    if (is_map)
      emit(st, pt, "MapIterationFailed", "mapIterationFailedEventDetails",
           json_pack("{s:s, s:i}", "name", pstate, "index", (int)slot));
  }
  json_int_t left = json_integer_value(json_object_get(ch, "left")) - 1;
  json_object_set_new(ch, "left", json_integer(left));
  /* a Map under MaxConcurrency starts its next iteration */
  size_t total = (size_t)json_integer_value(json_object_get(ch, "total"));
  size_t next = (size_t)json_integer_value(json_object_get(ch, "next"));
  bool go_on = json_object_get(ch, "failed") == NULL;
  json_t *item = NULL;
  char ikey[1400];
  if (go_on && is_map && next < total) {
    err ie = {0};
    flow__slot_key(pt->id, 'i', next, ikey, sizeof ikey);
    if (flow__get(st->s, st->s->db_mapdata, ikey, &item, &ie) != 0)
      item = NULL;
  }
  if (item != NULL) {
    flow__change_del(&st->ch, st->s->db_mapdata, ikey, strlen(ikey));
    char *cid = NULL;
    if (asprintf(&cid, "%s/%zu", pt->id, next) < 0)
      abort();
    json_t *c = json_deep_copy(rec);
    json_object_set_new(c, "input", item);
    json_object_set_new(c, "slot", json_integer((json_int_t)next));
    json_object_set(c, "state", json_object_get(ch, "start"));
    json_object_set_new(c, "phase", json_string("enter"));
    json_object_set_new(c, "retries", json_array());
    json_object_del(c, "token");
    json_object_del(c, "children");
    touch_new(st, cid, c);
    emit(st, pt, "MapIterationStarted", "mapIterationStartedEventDetails",
         json_pack("{s:s, s:i}", "name", pstate, "index", (int)next));
    effect_add(st, EF_READY, cid, 0);
    free(cid);
    json_object_set_new(ch, "next", json_integer((json_int_t)next + 1));
  }
  if (left <= 0 || !go_on)
    effect_add(st, EF_READY, pt->id, 0);
  json_decref(rec);
}

/* The run reached an end (output) or failed for good (error). */
static void run_end(stepper *st, touch *t, json_t *output, const char *error, const char *cause)
{
  if (rec_str(t->rec, "token") != NULL)
    effect_add(st, EF_TOKEN_DEL, rec_str(t->rec, "token"), 0);
  if (rec_str(t->rec, "parent") == NULL)
    exec_end(st, t, output != NULL ? "SUCCEEDED" : "FAILED", output, error, cause);
  else
    child_end(st, t, output, error, cause);
}

/* Deletes every descendant of parent_id (a failed Parallel or Map). */
static void children_abort(stepper *st, const char *parent_id)
{
  size_t pl = strlen(parent_id);
  for (run *r = st->x->runs; r != NULL; r = r->next) {
    if (strncmp(r->id, parent_id, pl) == 0 && r->id[pl] == '/') {
      touch *ct = touch_of(st, r);
      if (ct->rec != NULL && rec_str(ct->rec, "token") != NULL)
        effect_add(st, EF_TOKEN_DEL, rec_str(ct->rec, "token"), 0);
      json_decref(ct->rec);
      ct->rec = NULL;
    }
  }
}

/* ---- errors: Retry and Catch ---- */

static bool error_matches(json_t *names, const char *error)
{
  size_t i;
  json_t *n;
  json_array_foreach(names, i, n) {
    const char *s = json_string_value(n);
    if (s == NULL)
      continue;
    if (strcmp(s, error) == 0)
      return true;
    if (strcmp(s, "States.ALL") == 0 && strcmp(error, "States.Runtime") != 0 &&
        strcmp(error, "States.DataLimitExceeded") != 0)
      return true;
    if (strcmp(s, "States.TaskFailed") == 0 && !str_starts(error, "States.") &&
        strcmp(error, "States.Timeout") != 0)
      return true;
  }
  return false;
}

enum outcome { GO_ON, STOP };

static enum outcome transition(stepper *st, touch *t, json_t *state, json_t *output);

/* A state failed with error: retry, catch, or the run fails. */
static enum outcome fail_state(stepper *st, touch *t, json_t *state, const char *error,
                               const char *cause)
{
  const char *type = rec_str(state, "Type");
  bool runtime = strcmp(error, "States.Runtime") == 0;
  json_t *retry = json_object_get(state, "Retry");
  json_t *counts = json_object_get(t->rec, "retries");
  if (!json_is_array(counts)) {
    counts = json_array();
    json_object_set_new(t->rec, "retries", counts);
  }
  size_t i;
  json_t *rt;
  json_array_foreach(retry, i, rt) {
    if (runtime || !error_matches(json_object_get(rt, "ErrorEquals"), error))
      continue;
    while (json_array_size(counts) <= i)
      json_array_append_new(counts, json_integer(0));
    json_int_t done = json_integer_value(json_array_get(counts, i));
    json_t *ma = json_object_get(rt, "MaxAttempts");
    json_int_t max = ma ? json_integer_value(ma) : 3;
    if (done >= max)
      break;
    json_t *iv = json_object_get(rt, "IntervalSeconds");
    json_t *br = json_object_get(rt, "BackoffRate");
    json_t *md = json_object_get(rt, "MaxDelaySeconds");
    double delay = (iv ? (double)json_integer_value(iv) : 1.0) *
                   pow(br ? json_number_value(br) : 2.0, (double)done);
    if (md != NULL && delay > (double)json_integer_value(md))
      delay = (double)json_integer_value(md);
    if (strcmp(rec_str(rt, "JitterStrategy") ? rec_str(rt, "JitterStrategy") : "NONE",
               "FULL") == 0) {
      uint32_t r;
      random_bytes(&r, sizeof r);
      delay = delay * ((double)r / 4294967296.0);
    }
    json_array_set_new(counts, i, json_integer(done + 1));
    int64_t due = time_now_ms() + (int64_t)(delay * 1000);
    json_object_set_new(t->rec, "phase", json_string("retry"));
    json_object_set_new(t->rec, "due", json_integer(due));
    effect_add(st, EF_TIMER, t->id, due);
    return STOP;
  }
  json_t *cat;
  json_array_foreach(json_object_get(state, "Catch"), i, cat) {
    if (runtime || !error_matches(json_object_get(cat, "ErrorEquals"), error))
      continue;
    json_t *errobj = json_pack("{s:s, s:s}", "Error", error, "Cause", cause ? cause : "");
    json_t *rp = json_object_get(cat, "ResultPath");
    json_t *out = NULL;
    err e = {0};
    int rc = 0;
    if (rp != NULL && json_is_null(rp))
      out = json_incref(json_object_get(t->rec, "input"));
    else
      rc = flow_path_set(json_object_get(t->rec, "input"), rp ? json_string_value(rp) : "$",
                         errobj, &out, &e);
    json_decref(errobj);
    if (rc != 0)
      break;
    char name[128];
    snprintf(name, sizeof name, "%sStateExited", type);
    emit(st, t, name, "stateExitedEventDetails", text_details(rec_str(t->rec, "state"),
                                                              "output", out));
    json_object_set_new(t->rec, "retries", json_array());
    json_object_set(t->rec, "next_override", json_object_get(cat, "Next"));
    enum outcome o = transition(st, t, state, out);
    json_decref(out);
    return o;
  }
  run_end(st, t, NULL, error, cause);
  return STOP;
}

/* ---- the states ---- */

static int input_path(json_t *state, json_t *input, json_t *ctx, json_t **out, err *e)
{
  json_t *ip = json_object_get(state, "InputPath");
  if (ip != NULL && json_is_null(ip)) {
    *out = json_object();
    return 0;
  }
  return flow_path_get(ip ? json_string_value(ip) : "$", input, ctx, out, e);
}

static int output_path(json_t *state, json_t *v, json_t *ctx, json_t **out, err *e)
{
  json_t *op = json_object_get(state, "OutputPath");
  if (op != NULL && json_is_null(op)) {
    *out = json_object();
    return 0;
  }
  return flow_path_get(op ? json_string_value(op) : "$", v, ctx, out, e);
}

/* result -> ResultSelector -> ResultPath (over raw) -> OutputPath */
static int shape_result(json_t *state, json_t *raw, json_t *result, json_t *ctx, json_t **out,
                        err *e)
{
  *out = NULL;
  json_t *sel = json_object_get(state, "ResultSelector");
  json_t *r = NULL;
  int rc;
  if (sel != NULL) {
    if ((rc = flow_template_eval(sel, result, ctx, &r, e)) != 0)
      return rc;
  } else {
    r = json_incref(result);
  }
  json_t *rp = json_object_get(state, "ResultPath");
  json_t *merged = NULL;
  if (rp != NULL && json_is_null(rp))
    merged = json_incref(raw);
  else
    rc = flow_path_set(raw, rp ? json_string_value(rp) : "$", r, &merged, e);
  json_decref(r);
  if (merged == NULL)
    return rc;
  rc = output_path(state, merged, ctx, out, e);
  json_decref(merged);
  return rc;
}

/* Leaves the current state with output: to Next, or the run ends. */
static enum outcome transition(stepper *st, touch *t, json_t *state, json_t *output)
{
  /* AWS's limit on a state's output, which also bounds what a loop of
     States.Array or JsonMerge can build */
  if (json_dumpb(output, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) > FLOW_MAX_PAYLOAD) {
    run_end(st, t, NULL, "States.DataLimitExceeded",
            "the state's output is larger than 262144 bytes");
    return STOP;
  }
  json_t *override = json_object_get(t->rec, "next_override");
  const char *next = override ? json_string_value(override) : rec_str(state, "Next");
  if (next == NULL) {
    json_object_del(t->rec, "next_override");
    run_end(st, t, output, NULL, NULL);
    return STOP;
  }
  json_object_set_new(t->rec, "state", json_string(next));
  json_object_set_new(t->rec, "phase", json_string("enter"));
  json_object_set(t->rec, "input", output);
  json_object_del(t->rec, "eff");
  json_object_del(t->rec, "due");
  json_object_del(t->rec, "hbdue");
  json_object_del(t->rec, "token");
  json_object_del(t->rec, "child");
  json_object_del(t->rec, "child_name");
  json_object_del(t->rec, "children");
  json_object_del(t->rec, "next_override");
  json_object_set_new(t->rec, "retries", json_array());
  return GO_ON;
}

static void exit_event(stepper *st, touch *t, const char *type, json_t *out)
{
  char name[128];
  snprintf(name, sizeof name, "%sStateExited", type);
  emit(st, t, name, "stateExitedEventDetails", text_details(rec_str(t->rec, "state"), "output",
                                                            out));
}

/* What kind of Task a resource is. */
typedef struct task_kind {
  bool plain;        /* a function ARN as Resource */
  bool token;        /* .waitForTaskToken */
  bool lambda;       /* lambda:invoke (or plain) */
  bool sync;         /* .sync, .sync:2: the task ends with the execution it starts */
  const char *short_name; /* "invoke", "invoke.waitForTaskToken" */
} task_kind;

static task_kind kind_of(const char *res)
{
  task_kind k = {0};
  if (str_starts(res, "arn:aws:lambda:")) {
    k.plain = true;
    k.lambda = true;
    k.short_name = res;
  } else if (str_starts(res, "arn:aws:states:::lambda:invoke")) {
    k.lambda = true;
    k.token = str_ends(res, ".waitForTaskToken");
    k.short_name = res + strlen("arn:aws:states:::lambda:");
  } else {
    k.token = str_ends(res, ".waitForTaskToken");
    k.sync = strstr(res, ".sync") != NULL;
    const char *p = str_starts(res, "arn:aws:states:::") ? res + strlen("arn:aws:states:::") : res;
    if (str_starts(p, "aws-sdk:"))
      p += strlen("aws-sdk:");
    const char *colon = strchr(p, ':');
    k.short_name = colon != NULL ? colon + 1 : p;
  }
  return k;
}

static const char *resource_type(const char *res)
{
  static _Thread_local char t[64];
  const char *p = res + strlen("arn:aws:states:::");
  if (!str_starts(res, "arn:aws:states:::"))
    return "lambda";
  if (str_starts(p, "aws-sdk:"))
    p += strlen("aws-sdk:");
  size_t n = strcspn(p, ":");
  snprintf(t, sizeof t, "%.*s", (int)(n < 60 ? n : 60), p);
  return t;
}

/* Sets the record's deadline key ("due", "hbdue") seconds from now, with
 * its timer; seconds NULL removes it. */
static void deadline_set(stepper *st, touch *t, const char *key, json_t *seconds)
{
  json_object_del(t->rec, key);
  if (seconds == NULL)
    return;
  int64_t due = time_now_ms() + json_integer_value(seconds) * 1000;
  json_object_set_new(t->rec, key, json_integer(due));
  effect_add(st, EF_TIMER, t->id, due);
}

/* Gives the run a task token, unless it has one; returns it. */
static const char *token_new(touch *t)
{
  if (rec_str(t->rec, "token") == NULL) {
    char tok[65];
    uint8_t raw[32];
    random_bytes(raw, sizeof raw);
    hex_encode(raw, sizeof raw, tok);
    tok[64] = '\0';
    json_object_set_new(t->rec, "token", json_string(tok));
  }
  return rec_str(t->rec, "token");
}

/* Schedules the Task's invocation (eff is in the record). */
static enum outcome task_schedule(stepper *st, touch *t, json_t *state)
{
  const char *res = rec_str(state, "Resource");
  task_kind k = kind_of(res);
  json_t *eff = json_object_get(t->rec, "eff");
  if (k.token)
    token_new(t);
  if (k.sync && rec_str(t->rec, "child") == NULL) {
    /* the child's ARN is known (and committed) before it starts */
    char uuid[37];
    const char *cname = rec_str(eff, "Name");
    if (cname == NULL) {
      uuid_v4(uuid);
      cname = uuid;
    }
    const char *marn = rec_str(eff, "StateMachineArn");
    const char *mname = marn != NULL && strrchr(marn, ':') ? strrchr(marn, ':') + 1 : "";
    char *child = NULL;
    if (asprintf(&child, "arn:aws:states:%s:%s:execution:%s:%s", FLOW_REGION, FLOW_ACCOUNT_ID,
                 mname, cname) < 0)
      abort();
    json_object_set_new(t->rec, "child", json_string(child));
    json_object_set_new(t->rec, "child_name", json_string(cname));
    free(child);
  }
  char *params = dump(eff);
  if (k.plain) {
    emit(st, t, "LambdaFunctionScheduled", "lambdaFunctionScheduledEventDetails",
         json_pack("{s:s, s:s, s:{s:b}}", "resource", res, "input", params, "inputDetails",
                   "truncated", 0));
  } else {
    emit(st, t, "TaskScheduled", "taskScheduledEventDetails",
         json_pack("{s:s, s:s, s:s, s:s}", "resourceType", resource_type(res), "resource",
                   k.short_name, "region", FLOW_REGION, "parameters", params));
  }
  free(params);
  json_object_set_new(t->rec, "phase", json_string(k.token ? "token" : "task"));
  deadline_set(st, t, "due", json_object_get(state, "TimeoutSeconds"));
  deadline_set(st, t, "hbdue", json_object_get(state, "HeartbeatSeconds"));
  if (k.token)
    effect_add(st, EF_TOKEN_ADD, rec_str(t->rec, "token"), 0);
  effect_add(st, EF_INVOKE, t->id, 0);
  return STOP;
}

/* The Task ended: success (output JSON text) or failure. */
static enum outcome task_finish(stepper *st, touch *t, json_t *state, json_t *ctx,
                                const char *output, const char *error, const char *cause)
{
  const char *res = rec_str(state, "Resource");
  task_kind k = kind_of(res);
  if (error != NULL) {
    bool timed_out = strcmp(error, "States.Timeout") == 0 ||
                     strcmp(error, "States.HeartbeatTimeout") == 0;
    if (k.plain)
      emit(st, t, timed_out ? "LambdaFunctionTimedOut" : "LambdaFunctionFailed",
           timed_out ? "lambdaFunctionTimedOutEventDetails" : "lambdaFunctionFailedEventDetails",
           json_pack("{s:s, s:s}", "error", error, "cause", cause ? cause : ""));
    else
      emit(st, t, timed_out ? "TaskTimedOut" : "TaskFailed",
           timed_out ? "taskTimedOutEventDetails" : "taskFailedEventDetails",
           json_pack("{s:s, s:s, s:s, s:s}", "resourceType", resource_type(res), "resource",
                     k.short_name, "error", error, "cause", cause ? cause : ""));
    json_object_del(t->rec, "token");
    return fail_state(st, t, state, error, cause);
  }
  json_t *result = json_loads(output != NULL && *output ? output : "null", JSON_DECODE_ANY, NULL);
  if (result == NULL)
    result = json_string(output);
  if (strlen(output != NULL ? output : "") > FLOW_MAX_PAYLOAD) {
    json_decref(result);
    return task_finish(st, t, state, ctx, NULL, "States.DataLimitExceeded",
                       "the task's result is larger than 262144 bytes");
  }
  if (k.lambda && !k.plain && !k.token) {
    json_t *wrapped = json_pack("{s:s, s:o, s:i, s:{}}", "ExecutedVersion", "$LATEST",
                                "Payload", result, "StatusCode", 200, "SdkHttpMetadata");
    result = wrapped;
  }
  char *d = dump(result);
  if (k.plain)
    emit(st, t, "LambdaFunctionSucceeded", "lambdaFunctionSucceededEventDetails",
         json_pack("{s:s, s:{s:b}}", "output", d, "outputDetails", "truncated", 0));
  else
    emit(st, t, "TaskSucceeded", "taskSucceededEventDetails",
         json_pack("{s:s, s:s, s:s, s:{s:b}}", "resourceType", resource_type(res), "resource",
                   k.short_name, "output", d, "outputDetails", "truncated", 0));
  free(d);
  json_t *out;
  err e = {0};
  int rc = shape_result(state, json_object_get(t->rec, "input"), result, ctx, &out, &e);
  json_decref(result);
  if (rc != 0)
    return fail_state(st, t, state, rc == FLOW_ERR_INTRINSIC ? "States.IntrinsicFailure"
                                                             : "States.Runtime", e.msg);
  exit_event(st, t, "Task", out);
  enum outcome o = transition(st, t, state, out);
  json_decref(out);
  return o;
}

/* Starts a Parallel's branches or a Map's iterations. */
static enum outcome spawn(stepper *st, touch *t, json_t *state, json_t *ctx, json_t *eff,
                          err *e)
{
  const char *type = rec_str(state, "Type");
  bool is_map = strcmp(type, "Map") == 0;
  const char *sname = rec_str(t->rec, "state");
  json_t *inputs = json_array();
  json_t *scopes = json_array();
  json_t *base = json_deep_copy(json_object_get(t->rec, "scope"));
  json_array_append_new(base, json_string("States"));
  json_array_append_new(base, json_string(sname));
  size_t max_run = 0;
  const char *start = NULL;
  if (is_map) {
    json_t *ip = json_object_get(state, "ItemsPath");
    json_t *reader = json_object_get(state, "ItemReader");
    json_t *items = NULL;
    int rc;
    if (reader != NULL) {
      json_t *rp = NULL;
      json_t *tmpl = json_object_get(reader, "Parameters");
      rc = tmpl != NULL ? flow_template_eval(tmpl, eff, ctx, &rp, e) : 0;
      char *error = NULL, *cause = NULL;
      if (rc == 0 && flow__items_read(st->s, reader, rp, &items, &error, &cause) != 0) {
        json_decref(rp);
        json_decref(inputs);
        json_decref(scopes);
        json_decref(base);
        enum outcome o = fail_state(st, t, state, error, cause);
        free(error);
        free(cause);
        return o;
      }
      json_decref(rp);
    } else {
      rc = flow_path_get(ip ? json_string_value(ip) : "$", eff, ctx, &items, e);
    }
    if (rc == 0 && !json_is_array(items)) {
      rc = err_set(e, FLOW_ERR_RUNTIME, "Map: the ItemsPath '%s' does not select an array",
                   ip ? json_string_value(ip) : "$");
    } else if (rc == 0 && json_array_size(items) > FLOW_MAX_MAP_ITEMS) {
      rc = err_set(e, FLOW_ERR_RUNTIME, "Map: more than %u items", FLOW_MAX_MAP_ITEMS);
    }
    if (rc != 0) {
      json_decref(items);
      json_decref(inputs);
      json_decref(scopes);
      json_decref(base);
      return fail_state(st, t, state, "States.Runtime", e->msg);
    }
    json_t *sel = json_object_get(state, "ItemSelector");
    if (sel == NULL)
      sel = json_object_get(state, "Parameters");
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
      json_t *in = NULL;
      if (sel != NULL) {
        json_object_set_new(ctx, "Map", json_pack("{s:{s:i, s:O}}", "Item", "Index", (int)i,
                                                  "Value", it));
        rc = flow_template_eval(sel, eff, ctx, &in, e);
        json_object_del(ctx, "Map");
        if (rc != 0) {
          json_decref(items);
          json_decref(inputs);
          json_decref(scopes);
          json_decref(base);
          return fail_state(st, t, state, "States.Runtime", e->msg);
        }
      } else {
        in = json_incref(it);
      }
      json_array_append_new(inputs, in);
    }
    json_decref(items);
    json_t *batcher = json_object_get(state, "ItemBatcher");
    if (batcher != NULL) {
      /* {"BatchInput": ..., "Items": [...]} per MaxItemsPerBatch items */
      json_t *mi = json_object_get(batcher, "MaxItemsPerBatch");
      size_t per = json_is_integer(mi) && json_integer_value(mi) > 0
                       ? (size_t)json_integer_value(mi) : json_array_size(inputs) + 1;
      json_t *bin = NULL;
      if (json_object_get(batcher, "BatchInput") != NULL &&
          flow_template_eval(json_object_get(batcher, "BatchInput"), eff, ctx, &bin, e) != 0) {
        json_decref(inputs);
        json_decref(scopes);
        json_decref(base);
        return fail_state(st, t, state, "States.Runtime", e->msg);
      }
      json_t *batches = json_array();
      json_t *cur = NULL;
      json_array_foreach(inputs, i, it) {
        if (i % per == 0) {
          cur = json_array();
          json_t *b = json_pack("{s:o}", "Items", cur);
          if (bin != NULL)
            json_object_set(b, "BatchInput", bin);
          json_array_append_new(batches, b);
        }
        json_array_append(cur, it);
      }
      json_decref(bin);
      json_decref(inputs);
      inputs = batches;
    }
    const char *field = json_object_get(state, "ItemProcessor") ? "ItemProcessor" : "Iterator";
    json_array_append_new(base, json_string(field));
    start = rec_str(json_object_get(state, field), "StartAt");
    json_t *mc = json_object_get(state, "MaxConcurrency");
    max_run = mc && json_integer_value(mc) > 0 ? (size_t)json_integer_value(mc) : 0;
  } else {
    json_array_append_new(base, json_string("Branches"));
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(state, "Branches"), i, b) {
      json_array_append(inputs, eff);
    }
  }
  size_t n = json_array_size(inputs);
  json_t *ch = json_pack("{s:b, s:I, s:I}", "map", is_map, "left", (json_int_t)n, "total",
                         (json_int_t)n);
  emit(st, t, is_map ? "MapStateStarted" : "ParallelStateStarted",
       is_map ? "mapStateStartedEventDetails" : NULL,
       is_map ? json_pack("{s:i}", "length", (int)n) : NULL);
  size_t first = max_run > 0 && max_run < n ? max_run : n;
  if (is_map) {
    /* the items not started yet wait in mapdata, one key each */
    for (size_t i = first; i < n; i++)
      slot_put(st, t->id, 'i', i, json_array_get(inputs, i));
    json_object_set_new(ch, "next", json_integer((json_int_t)first));
    json_object_set_new(ch, "start", json_string(start));
    /* tolerated failures: distributed Maps and those that name a threshold */
    json_t *tc = json_object_get(state, "ToleratedFailureCount");
    json_t *tp = json_object_get(state, "ToleratedFailurePercentage");
    const char *mode = rec_str(json_object_get(json_object_get(state, "ItemProcessor"),
                                               "ProcessorConfig"), "Mode");
    if (tc != NULL || tp != NULL || (mode != NULL && strcmp(mode, "DISTRIBUTED") == 0)) {
      json_int_t tol = tc != NULL ? json_integer_value(tc) : (json_int_t)n;
      if (tp != NULL) {
        json_int_t byp = (json_int_t)(json_number_value(tp) * (double)n / 100.0);
        tol = byp < tol ? byp : tol;
      }
      if (tc == NULL && tp == NULL)
        tol = 0;
      json_object_set_new(ch, "tolerate", json_integer(tol));
      json_object_set_new(ch, "failures", json_integer(0));
    }
  }
  for (size_t i = 0; i < first; i++) {
    json_t *scope = json_deep_copy(base);
    if (!is_map)
      json_array_append_new(scope, json_integer((json_int_t)i));
    const char *cstart = is_map ? start
                                : rec_str(json_array_get(json_object_get(state, "Branches"), i),
                                          "StartAt");
    char *cid = NULL;
    if (asprintf(&cid, "%s/%zu", t->id, i) < 0)
      abort();
    json_t *c = json_pack("{s:s, s:o, s:s, s:s, s:O, s:s, s:I, s:[], s:I, s:I}", "exec",
                          st->x->arn, "scope", scope, "state", cstart, "phase", "enter", "input",
                          json_array_get(inputs, i), "parent", t->id, "slot", (json_int_t)i,
                          "retries", "prev", json_integer_value(json_object_get(t->rec, "prev")),
                          "entered", (json_int_t)time_now_ms());
    touch_new(st, cid, c);
    if (is_map)
      emit(st, t, "MapIterationStarted", "mapIterationStartedEventDetails",
           json_pack("{s:s, s:i}", "name", sname, "index", (int)i));
    effect_add(st, EF_READY, cid, 0);
    free(cid);
  }
  json_decref(base);
  json_decref(scopes);
  json_decref(inputs);
  json_object_set_new(t->rec, "children", ch);
  json_object_set(t->rec, "eff", eff);
  json_object_set_new(t->rec, "phase", json_string("children"));
  if (n == 0)
    effect_add(st, EF_READY, t->id, 0);
  return STOP;
}

/* Enters the run's current state and goes as far as it can without an
 * effect. */
static enum outcome enter_state(stepper *st, touch *t, json_t *state, json_t *ctx)
{
  const char *type = rec_str(state, "Type");
  const char *name = rec_str(t->rec, "state");
  json_t *input = json_object_get(t->rec, "input");
  char ev[128];
  snprintf(ev, sizeof ev, "%sStateEntered", type);
  json_object_set_new(t->rec, "entered", json_integer(time_now_ms()));
  emit(st, t, ev, "stateEnteredEventDetails", text_details(name, "input", input));
  err e = {0};
  json_t *eff = NULL;
  int rc = input_path(state, input, ctx, &eff, &e);
  json_t *out = NULL;
  if (rc == 0 && strcmp(type, "Pass") == 0) {
    json_t *result = json_object_get(state, "Result");
    json_t *params = json_object_get(state, "Parameters");
    json_t *r = NULL;
    if (result != NULL)
      r = json_incref(result);
    else if (params != NULL)
      rc = flow_template_eval(params, eff, ctx, &r, &e);
    else
      r = json_incref(eff);
    if (rc == 0) {
      json_t *rp = json_object_get(state, "ResultPath");
      json_t *merged = NULL;
      if (rp != NULL && json_is_null(rp))
        merged = json_incref(input);
      else
        rc = flow_path_set(input, rp ? json_string_value(rp) : "$", r, &merged, &e);
      if (rc == 0)
        rc = output_path(state, merged, ctx, &out, &e);
      json_decref(merged);
    }
    json_decref(r);
    if (rc == 0) {
      exit_event(st, t, type, out);
      enum outcome o = transition(st, t, state, out);
      json_decref(out);
      json_decref(eff);
      return o;
    }
  } else if (rc == 0 && strcmp(type, "Choice") == 0) {
    const char *next = NULL;
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(state, "Choices"), i, rule) {
      bool m = false;
      if ((rc = flow_choice_eval(rule, eff, ctx, &m, &e)) != 0)
        break;
      if (m) {
        next = rec_str(rule, "Next");
        break;
      }
    }
    if (rc == 0 && next == NULL)
      next = rec_str(state, "Default");
    if (rc == 0 && next == NULL) {
      json_decref(eff);
      run_end(st, t, NULL, "States.NoChoiceMatched",
              "No Choice Rules matched and no Default was specified");
      return STOP;
    }
    if (rc == 0 && (rc = output_path(state, eff, ctx, &out, &e)) == 0) {
      exit_event(st, t, type, out);
      json_object_set_new(t->rec, "next_override", json_string(next));
      enum outcome o = transition(st, t, state, out);
      json_decref(out);
      json_decref(eff);
      return o;
    }
  } else if (rc == 0 && strcmp(type, "Succeed") == 0) {
    if ((rc = output_path(state, eff, ctx, &out, &e)) == 0) {
      exit_event(st, t, type, out);
      run_end(st, t, out, NULL, NULL);
      json_decref(out);
      json_decref(eff);
      return STOP;
    }
  } else if (rc == 0 && strcmp(type, "Fail") == 0) {
    const char *error = rec_str(state, "Error");
    const char *cause = rec_str(state, "Cause");
    json_t *ev_err = NULL, *ev_cause = NULL;
    if (rec_str(state, "ErrorPath") != NULL &&
        flow_path_get(rec_str(state, "ErrorPath"), input, ctx, &ev_err, &e) == 0)
      error = json_string_value(ev_err);
    if (rec_str(state, "CausePath") != NULL &&
        flow_path_get(rec_str(state, "CausePath"), input, ctx, &ev_cause, &e) == 0)
      cause = json_string_value(ev_cause);
    run_end(st, t, NULL, error, cause);
    json_decref(ev_err);
    json_decref(ev_cause);
    json_decref(eff);
    return STOP;
  } else if (rc == 0 && strcmp(type, "Wait") == 0) {
    int64_t due = time_now_ms();
    json_t *v = NULL;
    if (json_object_get(state, "Seconds") != NULL) {
      due += json_integer_value(json_object_get(state, "Seconds")) * 1000;
    } else if (rec_str(state, "Timestamp") != NULL) {
      time_parse_iso8601(rec_str(state, "Timestamp"), &due);
    } else if (rec_str(state, "SecondsPath") != NULL) {
      if ((rc = flow_path_get(rec_str(state, "SecondsPath"), eff, ctx, &v, &e)) == 0 &&
          (!json_is_number(v) || json_number_value(v) < 0))
        rc = err_set(&e, FLOW_ERR_RUNTIME, "The SecondsPath parameter does not reference a "
                     "valid non-negative integer value");
      if (rc == 0)
        due += (int64_t)(json_number_value(v) * 1000);
    } else {
      int64_t ms = 0;
      if ((rc = flow_path_get(rec_str(state, "TimestampPath"), eff, ctx, &v, &e)) == 0 &&
          (!json_is_string(v) || !time_parse_iso8601(json_string_value(v), &ms)))
        rc = err_set(&e, FLOW_ERR_RUNTIME, "The TimestampPath parameter does not reference a "
                     "valid ISO-8601 extended offset date-time format string");
      due = ms;
    }
    json_decref(v);
    if (rc == 0) {
      json_object_set_new(t->rec, "phase", json_string("wait"));
      json_object_set_new(t->rec, "due", json_integer(due));
      json_object_set(t->rec, "eff", eff);
      effect_add(st, EF_TIMER, t->id, due);
      json_decref(eff);
      return STOP;
    }
  } else if (rc == 0 && strcmp(type, "Task") == 0) {
    json_t *params = json_object_get(state, "Parameters");
    json_t *p = NULL;
    if (params != NULL) {
      /* the token must be in the context before Parameters read it */
      if (str_ends(rec_str(state, "Resource"), ".waitForTaskToken"))
        json_object_set_new(ctx, "Task", json_pack("{s:s}", "Token", token_new(t)));
      rc = flow_template_eval(params, eff, ctx, &p, &e);
    } else {
      p = json_incref(eff);
    }
    if (rc == 0) {
      json_object_set_new(t->rec, "eff", p);
      json_decref(eff);
      return task_schedule(st, t, state);
    }
  } else if (rc == 0) { /* Parallel, Map */
    json_t *params = json_object_get(state, "Parameters");
    json_t *p = NULL;
    if (params != NULL && strcmp(type, "Parallel") == 0)
      rc = flow_template_eval(params, eff, ctx, &p, &e);
    else
      p = json_incref(eff);
    if (rc == 0) {
      enum outcome o = spawn(st, t, state, ctx, p, &e);
      json_decref(p);
      json_decref(eff);
      return o;
    }
  }
  json_decref(eff);
  return fail_state(st, t, state, e.code == FLOW_ERR_INTRINSIC ? "States.IntrinsicFailure"
                                                                : "States.Runtime", e.msg);
}

/* A Parallel or Map whose runs all ended (or one failed). */
static enum outcome children_done(stepper *st, touch *t, json_t *state, json_t *ctx)
{
  json_t *ch = json_object_get(t->rec, "children");
  const char *type = rec_str(state, "Type");
  bool is_map = strcmp(type, "Map") == 0;
  json_t *failed = json_object_get(ch, "failed");
  if (failed != NULL) {
    children_abort(st, t->id);
    char prefix[1400];
    snprintf(prefix, sizeof prefix, "%s!", t->id);
    mapdata_drop(st, prefix);
    emit(st, t, is_map ? "MapStateFailed" : "ParallelStateFailed", NULL, NULL);
    char *error = xstrdup(rec_str(failed, "Error"));
    char *cause = xstrdup(rec_str(failed, "Cause"));
    json_object_del(t->rec, "children");
    enum outcome o = fail_state(st, t, state, error, cause);
    free(error);
    free(cause);
    return o;
  }
  if (json_integer_value(json_object_get(ch, "left")) > 0)
    return STOP;
  /* the results, from mapdata (then dropped with the step) */
  size_t total = (size_t)json_integer_value(json_object_get(ch, "total"));
  json_t *results = json_array();
  for (size_t i = 0; i < total; i++)
    json_array_append_new(results, json_null());
  char prefix[1400];
  snprintf(prefix, sizeof prefix, "%s!", t->id);
  json_t *keys, *vals;
  err se = {0};
  if (flow__scan(st->s, st->s->db_mapdata, prefix, &keys, &vals, &se) == 0) {
    size_t ki;
    json_t *k;
    json_array_foreach(keys, ki, k) {
      const char *ks = json_string_value(k) + strlen(prefix);
      size_t slot = (size_t)strtoull(ks + 2, NULL, 10);
      if (ks[0] == 'r' && slot < total)
        json_array_set(results, slot, json_array_get(vals, ki));
      flow__change_del(&st->ch, st->s->db_mapdata, json_string_value(k), json_string_length(k));
    }
  }
  json_decref(keys);
  json_decref(vals);
  json_t *writer = json_object_get(state, "ResultWriter");
  if (is_map && (writer != NULL || json_object_get(ch, "tolerate") != NULL)) {
    json_t *ok = json_array();
    json_t *failed_items = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r) {
      if (json_is_true(json_object_get(r, "_failed"))) {
        json_t *f = json_deep_copy(r);
        json_object_del(f, "_failed");
        json_array_append_new(failed_items, f);
        json_array_set_new(results, i, json_pack("{s:O, s:O}", "Error", json_object_get(f, "Error"),
                                                 "Cause", json_object_get(f, "Cause")));
      } else {
        json_array_append_new(ok, json_pack("{s:O}", "Output", r));
      }
    }
    if (writer != NULL) {
      json_t *wp = NULL;
      err we = {0};
      char *error = NULL, *cause = NULL;
      char *map_run = NULL;
      if (asprintf(&map_run, "arn:aws:states:%s:%s:mapRun:%s/%s", FLOW_REGION, FLOW_ACCOUNT_ID,
                   strstr(st->x->arn, ":execution:") + strlen(":execution:"),
                   rec_str(t->rec, "state")) < 0)
        abort();
      int wrc = flow_template_eval(json_object_get(writer, "Parameters"),
                                   json_object_get(t->rec, "eff"), ctx, &wp, &we);
      json_t *wout = NULL;
      if (wrc == 0 &&
          flow__results_write(st->s, wp, map_run, ok, failed_items, &wout, &error, &cause) != 0)
        wrc = -1;
      json_decref(wp);
      free(map_run);
      json_decref(ok);
      json_decref(failed_items);
      json_decref(results);
      if (wrc != 0) {
        enum outcome fo = fail_state(st, t, state, error ? error : "States.ResultWriterFailed",
                                     cause ? cause : we.msg);
        free(error);
        free(cause);
        return fo;
      }
      results = wout;
    } else {
      json_decref(ok);
      json_decref(failed_items);
    }
  }
  emit(st, t, is_map ? "MapStateSucceeded" : "ParallelStateSucceeded", NULL, NULL);
  json_t *out;
  err e = {0};
  int rc = shape_result(state, json_object_get(t->rec, "input"), results, ctx, &out, &e);
  json_decref(results);
  if (rc != 0)
    return fail_state(st, t, state, "States.Runtime", e.msg);
  exit_event(st, t, type, out);
  enum outcome o = transition(st, t, state, out);
  json_decref(out);
  return o;
}

/* Takes a finished task's result off the run (qmu). */
typedef struct taken {
  bool has;
  bool invoked;
  int rc;
  bool fn_error;
  char *result;
  char *error;
  char *cause;
} taken;

static taken take_result(flow_system *s, run *r)
{
  taken k = {0};
  if (r == NULL)
    return k;
  pthread_mutex_lock(&s->qmu);
  k.has = r->has_result;
  k.invoked = r->invoked;
  if (k.has) {
    k.rc = r->result_rc;
    k.fn_error = r->fn_error;
    k.result = r->result;
    k.error = r->result_error;
    k.cause = r->result_cause;
    r->result = r->result_error = r->result_cause = NULL;
    r->has_result = false;
    r->invoked = false;
  }
  pthread_mutex_unlock(&s->qmu);
  return k;
}

static void lambda_error(const taken *k, char **error, char **cause)
{
  if (k->rc != 0) {
    const char *name = k->rc == ERR_NOT_FOUND     ? "Lambda.ResourceNotFoundException"
                       : k->rc == ERR_THROTTLED   ? "Lambda.TooManyRequestsException"
                       : k->rc == ERR_INVALID     ? "Lambda.InvalidRequestContentException"
                       : k->rc == FLOW_ERR_RUNTIME ? "States.Runtime"
                                                   : "Lambda.ServiceException";
    *error = xstrdup(name);
    *cause = xstrdup(k->result ? k->result : "the function could not be invoked");
    return;
  }
  json_t *doc = json_loads(k->result ? k->result : "", 0, NULL);
  const char *type = json_string_value(json_object_get(doc, "errorType"));
  *error = xstrdup(type ? type : "Lambda.Unknown");
  *cause = xstrdup(k->result ? k->result : "");
  json_decref(doc);
}

/* A .sync Task: the execution it started (rec "child"). True when that
 * decides the step: it ended (*o from task_finish) or still runs (*o STOP,
 * deadlines re-armed); false when it was never started (lost in a crash). */
static bool child_outcome(stepper *st, touch *t, json_t *state, json_t *ctx, enum outcome *o)
{
  json_t *child = NULL;
  err e = {0};
  if (flow__get(st->s, st->s->db_execs, rec_str(t->rec, "child"), &child, &e) != 0)
    return false;
  const char *status = rec_str(child, "status");
  if (strcmp(status, "RUNNING") == 0) {
    json_decref(child);
    const char *keys[] = {"due", "hbdue"};
    for (int i = 0; i < 2; i++)
      if (json_object_get(t->rec, keys[i]) != NULL)
        effect_add(st, EF_TIMER, t->id, json_integer_value(json_object_get(t->rec, keys[i])));
    *o = STOP;
    return true;
  }
  bool v2 = str_ends(rec_str(state, "Resource"), ".sync:2");
  json_t *d = json_object();
  static const char *const keys[] = {"executionArn", "stateMachineArn", "name", "status",
                                     "startDate", "stopDate", "input", "output", "error",
                                     "cause", NULL};
  for (size_t i = 0; keys[i] != NULL; i++) {
    json_t *v = json_object_get(child, keys[i]);
    if (v == NULL)
      continue;
    char key[32];
    snprintf(key, sizeof key, "%c%s", keys[i][0] - 'a' + 'A', keys[i] + 1);
    if (v2 && (strcmp(keys[i], "input") == 0 || strcmp(keys[i], "output") == 0)) {
      json_t *parsed = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
      json_object_set_new(d, key, parsed != NULL ? parsed : json_incref(v));
    } else {
      json_object_set(d, key, v);
    }
  }
  char *text = dump(d);
  json_decref(d);
  if (strcmp(status, "SUCCEEDED") == 0)
    *o = task_finish(st, t, state, ctx, text, NULL, NULL);
  else
    *o = task_finish(st, t, state, ctx, NULL, "States.TaskFailed", text);
  free(text);
  json_decref(child);
  return true;
}

/* One step of run r: see the top of the file. */
static enum outcome step_once(stepper *st, touch *t, run *r)
{
  json_t *states = scope_states(st->x, t->rec);
  json_t *state = json_object_get(states, rec_str(t->rec, "state"));
  if (state == NULL) {
    run_end(st, t, NULL, "States.Runtime", "the state is not in the definition");
    return STOP;
  }
  const char *phase = rec_str(t->rec, "phase");
  json_t *ctx = context(st, t);
  enum outcome o = STOP;
  int64_t now = time_now_ms();
  json_t *due = json_object_get(t->rec, "due");
  bool past_due = due != NULL && now >= json_integer_value(due);
  if (strcmp(phase, "enter") == 0) {
    o = enter_state(st, t, state, ctx);
  } else if (strcmp(phase, "wait") == 0) {
    if (!past_due) {
      effect_add(st, EF_TIMER, t->id, json_integer_value(due));
    } else {
      json_t *out;
      err e = {0};
      if (output_path(state, json_object_get(t->rec, "eff"), ctx, &out, &e) != 0) {
        o = fail_state(st, t, state, "States.Runtime", e.msg);
      } else {
        exit_event(st, t, "Wait", out);
        o = transition(st, t, state, out);
        json_decref(out);
      }
    }
  } else if (strcmp(phase, "retry") == 0) {
    if (!past_due) {
      effect_add(st, EF_TIMER, t->id, json_integer_value(due));
    } else if (strcmp(rec_str(state, "Type"), "Task") == 0) {
      o = task_schedule(st, t, state);
    } else {
      json_object_set_new(t->rec, "phase", json_string("enter"));
      o = GO_ON;
    }
  } else if (strcmp(phase, "task") == 0 || strcmp(phase, "token") == 0) {
    taken k = take_result(st->s, r);
    bool token = strcmp(phase, "token") == 0;
    if (k.has && (k.rc != 0 || k.fn_error)) {
      char *error, *cause;
      lambda_error(&k, &error, &cause);
      o = task_finish(st, t, state, ctx, NULL, error, cause);
      free(error);
      free(cause);
    } else if (k.has && k.error != NULL) {
      o = task_finish(st, t, state, ctx, NULL, k.error, k.cause);
    } else if (k.has && !token) {
      o = task_finish(st, t, state, ctx, k.result, NULL, NULL);
    } else if (k.has && token && k.result != NULL) {
      o = task_finish(st, t, state, ctx, k.result, NULL, NULL);
    } else if (!past_due && rec_str(t->rec, "child") != NULL &&
               child_outcome(st, t, state, ctx, &o)) {
      /* the execution it started ended (o), or still runs (o STOP) */
    } else if (past_due) {
      o = task_finish(st, t, state, ctx, NULL, "States.Timeout", "the task timed out");
    } else if (json_object_get(t->rec, "hbdue") != NULL &&
               now >= json_integer_value(json_object_get(t->rec, "hbdue"))) {
      o = task_finish(st, t, state, ctx, NULL, "States.HeartbeatTimeout",
                      "no heartbeat arrived within HeartbeatSeconds");
    } else if (!token && !k.invoked && !k.has && (r == NULL || r->inv == NULL)) {
      o = task_finish(st, t, state, ctx, NULL, "States.TaskFailed",
                      "the task was in flight when tarn stopped; its outcome is unknown");
    } else {
      /* nothing ended: the deadlines still stand (after a restart too) */
      const char *keys[] = {"due", "hbdue"};
      for (int i = 0; i < 2; i++)
        if (json_object_get(t->rec, keys[i]) != NULL)
          effect_add(st, EF_TIMER, t->id, json_integer_value(json_object_get(t->rec, keys[i])));
    }
    free(k.result);
    free(k.error);
    free(k.cause);
  } else if (strcmp(phase, "children") == 0) {
    o = children_done(st, t, state, ctx);
  }
  json_decref(ctx);
  return o;
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

/* Starts the invocation of run r's Task (after its "task" record committed). */
static void invoke_start(flow_system *s, run *r)
{
  json_t *states = scope_states(r->x, r->rec);
  json_t *state = json_object_get(states, rec_str(r->rec, "state"));
  const char *res = rec_str(state, "Resource");
  task_kind k = kind_of(res);
  json_t *eff = json_object_get(r->rec, "eff");
  const char *fname = NULL;
  const char *qual = NULL;
  json_t *payload = eff;
  int rc = 0;
  err e = {0};
  if (k.plain) {
    fname = res;
  } else if (k.lambda) {
    fname = rec_str(eff, "FunctionName");
    qual = rec_str(eff, "Qualifier");
    payload = json_object_get(eff, "Payload");
    if (fname == NULL)
      rc = err_set(&e, FLOW_ERR_RUNTIME, "lambda:invoke needs a FunctionName parameter");
  } else {
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
      r->has_result = true;
      r->result_rc = 0;
      r->fn_error = false;
      r->result = result;
      r->result_error = error;
      r->result_cause = cause;
      enqueue_locked(s, r->x, r->id, 0, false);
    }
    pthread_mutex_unlock(&s->qmu);
    return;
  }
  pthread_mutex_lock(&s->qmu);
  free(r->payload);
  r->payload = payload != NULL ? dump(payload) : xstrdup("{}");
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
      run *r = st->finished ? NULL : run_find(x, f->id);
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
      exec_rt *px = parent != NULL ? exec_find(s, rec_str(parent, "exec")) : NULL;
      if (px != NULL) {
        enqueue(s, px, rec_str(parent, "run"), 0, false);
        exec_unref(s, px);
      }
      if (x->done != NULL) {
        json_t *pub = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(x->info, k, v) {
          if (k[0] != '_')
            json_object_set(pub, k, v);
        }
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
    const char *tok = rec_str(r->rec, "token");
    if (tok != NULL && strcmp(rec_str(r->rec, "phase"), "token") == 0) {
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
    exec_end(&ts, NULL, "TIMED_OUT", NULL, "States.Timeout",
             "the execution ran longer than the machine's TimeoutSeconds");
    err te = {0};
    if (stepper_commit(&ts, &te) != 0)
      enqueue(s, x, run_id, time_now_ms() + 1000, true);
    stepper_release(&ts);
    return;
  }
  run *r = run_find(x, run_id);
  if (r == NULL)
    return;
  stepper st = {.s = s, .x = x};
  touch *t = touch_of(&st, r);
  for (int i = 0; i < MAX_PURE_STEPS; i++) {
    if (x->next_event > FLOW_MAX_HISTORY) {
      exec_end(&st, t, "FAILED", NULL, "States.Runtime",
               "the execution history reached its limit of 25000 events");
      break;
    }
    enum outcome o = step_once(&st, t, r);
    if (o == STOP || t->rec == NULL || st.finished)
      break;
    if (i + 1 == MAX_PURE_STEPS)
      effect_add(&st, EF_READY, t->id, 0);
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
    if (info == NULL || strcmp(rec_str(info, "status"), "RUNNING") != 0) {
      json_decref(info);
      continue;
    }
    json_t *def = json_loads(rec_str(info, "_def"), 0, NULL);
    if (def == NULL) {
      json_decref(info);
      continue;
    }
    exec_rt *x = exec_new(rec_str(info, "executionArn"), info, def);
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
    const char *arn = rec != NULL ? rec_str(rec, "exec") : NULL;
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
    const char *tok = rec_str(rec, "token");
    if (tok != NULL && strcmp(rec_str(rec, "phase"), "token") == 0)
      json_object_set_new(s->tokens, tok, json_pack("[s, s]", x->arn, r->id));
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  pthread_mutex_lock(&s->qmu);
  for (exec_rt *x = s->execs; x != NULL; x = x->next) {
    json_t *deadline = json_object_get(x->info, "_deadline");
    if (deadline != NULL) {
      char *tid = NULL;
      if (asprintf(&tid, "%s!timeout", x->arn) < 0)
        abort();
      enqueue_locked(s, x, tid, json_integer_value(deadline), true);
      free(tid);
    }
  }
  for (exec_rt *x = s->execs; x != NULL; x = x->next)
    for (run *r = x->runs; r != NULL; r = r->next)
      enqueue_locked(s, x, r->id, 0, false);
  pthread_mutex_unlock(&s->qmu);
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
  int rc = flow_machine_get(s, machine_arn, &m, e);
  if (rc != 0) {
    json_decref(in);
    return rc;
  }
  json_t *def = json_loads(rec_str(m, "definition"), 0, NULL);
  char *arn = NULL;
  if (asprintf(&arn, "arn:aws:states:%s:%s:execution:%s:%s", FLOW_REGION, FLOW_ACCOUNT_ID,
               rec_str(m, "name"), name) < 0)
    abort();
  json_t *old;
  rc = flow__get(s, s->db_execs, arn, &old, e);
  if (rc == 0) {
    /* AWS: the same name and input while running is idempotent */
    bool same = done == NULL && strcmp(rec_str(old, "status"), "RUNNING") == 0 &&
                strcmp(rec_str(old, "input"), input) == 0;
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
  char *in_text = dump(in);
  json_t *info = json_pack("{s:s, s:s, s:s, s:s, s:f, s:s, s:{s:b}, s:s, s:s, s:s}",
                           "executionArn", arn, "stateMachineArn", machine_arn, "name", name,
                           "status", "RUNNING", "startDate", now, "input", input,
                           "inputDetails", "included", 1, "_def", rec_str(m, "definition"),
                           "_role", rec_str(m, "roleArn"), "_type", rec_str(m, "type"));
  if (parent != NULL)
    json_object_set(info, "_parent", parent);
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
  char *rid = NULL;
  if (asprintf(&rid, "%s#", arn) < 0)
    abort();
  json_t *rec = json_pack("{s:s, s:[], s:s, s:s, s:o, s:[], s:I, s:I}", "exec", arn, "scope",
                          "state", rec_str(def, "StartAt"), "phase", "enter", "input", in,
                          "retries", "prev", (json_int_t)0, "entered",
                          (json_int_t)time_now_ms());
  touch *t = touch_new(&st, rid, rec);
  st.info = json_deep_copy(info);
  char *dumped = dump(json_object_get(rec, "input"));
  emit(&st, t, "ExecutionStarted", "executionStartedEventDetails",
       json_pack("{s:s, s:{s:b}, s:s}", "input", dumped, "inputDetails", "truncated", 0,
                 "roleArn", rec_str(m, "roleArn")));
  free(dumped);
  effect_add(&st, EF_READY, rid, 0);
  if (json_object_get(info, "_deadline") != NULL) {
    char *tid = NULL;
    if (asprintf(&tid, "%s!timeout", arn) < 0)
      abort();
    effect_add(&st, EF_TIMER, tid, json_integer_value(json_object_get(info, "_deadline")));
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
  bool running = strcmp(rec_str(info, "status"), "RUNNING") == 0;
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
    exec_end(&st, NULL, "ABORTED", NULL, error, cause);
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
    run *r = run_find(x, rid);
    if (r == NULL || x->finished || strcmp(rec_str(r->rec, "phase"), "token") != 0 ||
        rec_str(r->rec, "token") == NULL || strcmp(rec_str(r->rec, "token"), token) != 0) {
      rc = err_set(e, FLOW_ERR_TASK_GONE, "Task Timed Out: 'Provided task does not exist "
                   "anymore'");
    } else if (output == NULL && error == NULL && cause == NULL) {
      /* SendTaskHeartbeat: HeartbeatSeconds start again, durably */
      json_t *st_def = json_object_get(scope_states(x, r->rec), rec_str(r->rec, "state"));
      json_t *hb = json_object_get(st_def, "HeartbeatSeconds");
      if (hb != NULL) {
        stepper hs = {.s = s, .x = x};
        deadline_set(&hs, touch_of(&hs, r), "hbdue", hb);
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
      if (r == run_find(x, rid) && r->has_result)
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
