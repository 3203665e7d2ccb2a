/* flow/step.c -- what one step of a run does: the States Language's
 * states (Pass, Choice, Wait, Succeed, Fail, Task, Parallel, Map) applied to
 * a copy of the run's record, the history events they emit, Retry and
 * Catch, and the ends of runs and executions. engine.c commits what a step
 * built and applies its effects; nothing here writes or invokes anything.
 *
 * Invariants:
 *   (1) A step changes only the stepper: copies of records (touches), the
 *       change list (history events, map data) and the effects to apply
 *       after the commit.
 *   (2) A state's failure goes through fail_state: Retry first, then Catch,
 *       else the run fails (States.Runtime and States.DataLimitExceeded are
 *       never retried nor caught by States.ALL).
 *
 * Start reading at flow__step_once().
 */
#include "flow/internal.h"
#include "flow/query.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- steps: records, events, effects ---- */

touch *flow__touch_of(stepper *st, run *r)
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

touch *flow__touch_new(stepper *st, const char *id, json_t *rec)
{
  st->t = xrealloc(st->t, (st->nt + 1) * sizeof *st->t);
  touch *t = xcalloc(1, sizeof *t);
  st->t[st->nt++] = t;
  t->r = NULL;
  t->id = xstrdup(id);
  t->rec = rec;
  return t;
}

void flow__effect_add(stepper *st, int kind, const char *id, int64_t due)
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

void flow__emit(stepper *st, touch *t, const char *type, const char *key, json_t *details)
{
  if (t != NULL && json_is_true(json_object_get(t->rec, "quiet"))) {
    /* a distributed Map's iterations keep no events in the execution's
       history (on AWS they are child executions of their own) */
    json_decref(details);
    return;
  }
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

char *flow__dump(json_t *v)
{
  char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  return d != NULL ? d : xstrdup("null");
}

static json_t *text_details(const char *name, const char *field, json_t *v)
{
  char *d = flow__dump(v);
  json_t *o = json_pack("{s:s, s:s, s:{s:b}}", "name", name, field, d,
                        strcmp(field, "input") == 0 ? "inputDetails" : "outputDetails",
                        "truncated", 0);
  free(d);
  return o;
}

/* The States object a run works in. */
json_t *flow__scope_states(exec_rt *x, json_t *rec)
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

const char *flow__rec_str(json_t *rec, const char *k)
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
    st->x->input = json_loads(flow__rec_str(info, "input"), JSON_DECODE_ANY, NULL);
  json_t *input = st->x->input != NULL ? json_incref(st->x->input) : NULL;
  const char *marn = flow__rec_str(info, "stateMachineArn");
  const char *mname = strrchr(marn, ':') ? strrchr(marn, ':') + 1 : marn;
  int retries = 0;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(t->rec, "retries"), i, c) {
    retries += (int)json_integer_value(c);
  }
  json_t *ctx = json_pack("{s:{s:s, s:o, s:s, s:s, s:s}, s:{s:s, s:s, s:i}, s:{s:s, s:s}}",
                          "Execution", "Id", st->x->arn, "Input", input ? input : json_object(),
                          "Name", flow__rec_str(info, "name"), "RoleArn", flow__rec_str(info, "_role"),
                          "StartTime", started, "State", "EnteredTime", entered, "Name",
                          flow__rec_str(t->rec, "state"), "RetryCount", retries, "StateMachine", "Id",
                          marn, "Name", mname);
  if (flow__rec_str(t->rec, "token") != NULL)
    json_object_set_new(ctx, "Task", json_pack("{s:s}", "Token", flow__rec_str(t->rec, "token")));
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

void flow__exec_end(stepper *st, touch *t, const char *status, json_t *output,
                     const char *error, const char *cause)
{
  json_t *info = info_of(st);
  json_object_set_new(info, "status", json_string(status));
  json_object_set_new(info, "stopDate", json_real(flow__now_epoch()));
  if (output != NULL) {
    char *d = flow__dump(output);
    json_object_set_new(info, "output", json_string(d));
    json_object_set_new(info, "outputDetails", json_pack("{s:b}", "included", 1));
    json_t *det = json_pack("{s:s, s:{s:b}}", "output", d, "outputDetails", "truncated", 0);
    free(d);
    flow__emit(st, t, "ExecutionSucceeded", "executionSucceededEventDetails", det);
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
    flow__emit(st, t, aborted ? "ExecutionAborted" : timed_out ? "ExecutionTimedOut" : "ExecutionFailed",
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
    touch *rt = flow__touch_of(st, r);
    if (rt->rec != NULL && flow__rec_str(rt->rec, "token") != NULL)
      flow__effect_add(st, EF_TOKEN_DEL, flow__rec_str(rt->rec, "token"), 0);
    json_decref(rt->rec);
    rt->rec = NULL;
  }
  for (size_t i = 0; i < st->nt; i++) {
    json_decref(st->t[i]->rec);
    st->t[i]->rec = NULL;
  }
  st->finished = true;
  flow__effect_add(st, EF_DONE, st->x->arn, 0);
}

static void children_abort(stepper *st, const char *parent_id);

/* A child run ended: its result (or failure) goes to its parent. */
static void child_end(stepper *st, touch *t, json_t *output, const char *error,
                      const char *cause)
{
  const char *pid = flow__rec_str(t->rec, "parent");
  run *pr = flow__run_find(st->x, pid);
  size_t slot = (size_t)json_integer_value(json_object_get(t->rec, "slot"));
  json_t *rec = t->rec;
  t->rec = NULL;
  if (pr == NULL) {
    json_decref(rec);
    return;
  }
  touch *pt = flow__touch_of(st, pr);
  json_t *ch = json_object_get(pt->rec, "children");
  bool is_map = json_is_true(json_object_get(ch, "map"));
  bool dist = json_is_true(json_object_get(ch, "dist"));
  if (ch == NULL || pt->rec == NULL) {
    json_decref(rec);
    return;
  }
  const char *pstate = flow__rec_str(pt->rec, "state");
  if (output != NULL) {
    slot_put(st, pt->id, 'r', slot, output);
    if (is_map && !dist)
      flow__emit(st, pt, "MapIterationSucceeded", "mapIterationSucceededEventDetails",
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
    if (is_map && !dist)
      flow__emit(st, pt, "MapIterationFailed", "mapIterationFailedEventDetails",
           json_pack("{s:s, s:i}", "name", pstate, "index", (int)slot));
  } else {
    if (json_object_get(ch, "failed") == NULL)
      json_object_set_new(ch, "failed", json_pack("{s:s, s:s}", "Error", error ? error : "",
                                                  "Cause", cause ? cause : ""));
    if (is_map && !dist)
      flow__emit(st, pt, "MapIterationFailed", "mapIterationFailedEventDetails",
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
    char *cid = xasprintf("%s/%zu", pt->id, next);
    json_t *c = json_deep_copy(rec);
    json_object_set_new(c, "input", item);
    json_object_set_new(c, "slot", json_integer((json_int_t)next));
    json_object_set(c, "state", json_object_get(ch, "start"));
    json_object_set_new(c, "phase", json_string("enter"));
    json_object_set_new(c, "retries", json_array());
    json_object_del(c, "token");
    json_object_del(c, "children");
    json_object_del(c, "vars"); /* an iteration's variables are its own */
    json_object_del(c, "ql");
    flow__touch_new(st, cid, c);
    if (!dist)
      flow__emit(st, pt, "MapIterationStarted", "mapIterationStartedEventDetails",
                 json_pack("{s:s, s:i}", "name", pstate, "index", (int)next));
    flow__effect_add(st, EF_READY, cid, 0);
    free(cid);
    json_object_set_new(ch, "next", json_integer((json_int_t)next + 1));
  }
  if (left <= 0 || !go_on)
    flow__effect_add(st, EF_READY, pt->id, 0);
  json_decref(rec);
}

/* The run reached an end (output) or failed for good (error). */
static void run_end(stepper *st, touch *t, json_t *output, const char *error, const char *cause)
{
  if (flow__rec_str(t->rec, "token") != NULL)
    flow__effect_add(st, EF_TOKEN_DEL, flow__rec_str(t->rec, "token"), 0);
  if (flow__rec_str(t->rec, "parent") == NULL)
    flow__exec_end(st, t, output != NULL ? "SUCCEEDED" : "FAILED", output, error, cause);
  else
    child_end(st, t, output, error, cause);
}

/* Deletes every descendant of parent_id (a failed Parallel or Map). */
static void children_abort(stepper *st, const char *parent_id)
{
  size_t pl = strlen(parent_id);
  for (run *r = st->x->runs; r != NULL; r = r->next) {
    if (strncmp(r->id, parent_id, pl) == 0 && r->id[pl] == '/') {
      touch *ct = flow__touch_of(st, r);
      if (ct->rec != NULL && flow__rec_str(ct->rec, "token") != NULL)
        flow__effect_add(st, EF_TOKEN_DEL, flow__rec_str(ct->rec, "token"), 0);
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


static enum outcome transition(stepper *st, touch *t, json_t *state, json_t *output);

/* A state failed with error: retry, catch, or the run fails. */
static enum outcome fail_state(stepper *st, touch *t, json_t *state, const char *error,
                               const char *cause)
{
  const char *type = flow__rec_str(state, "Type");
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
    if (strcmp(flow__rec_str(rt, "JitterStrategy") ? flow__rec_str(rt, "JitterStrategy") : "NONE",
               "FULL") == 0) {
      uint32_t r;
      random_bytes(&r, sizeof r);
      delay = delay * ((double)r / 4294967296.0);
    }
    json_array_set_new(counts, i, json_integer(done + 1));
    int64_t due = time_now_ms() + (int64_t)(delay * 1000);
    json_object_set_new(t->rec, "phase", json_string("retry"));
    json_object_set_new(t->rec, "due", json_integer(due));
    flow__effect_add(st, EF_TIMER, t->id, due);
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
    int rc = flow__catch_shape(st, t, state, cat, errobj, &out, &e);
    if (rc < 0) {
      json_decref(errobj);
      run_end(st, t, NULL, flow__error_name(rc), e.msg);
      return STOP;
    } else if (rc == 1)
      rc = 0;
    else if (rp != NULL && json_is_null(rp))
      out = json_incref(json_object_get(t->rec, "input"));
    else
      rc = flow_path_set(json_object_get(t->rec, "input"), rp ? json_string_value(rp) : "$",
                         errobj, &out, &e);
    json_decref(errobj);
    if (rc != 0)
      break;
    char name[128];
    snprintf(name, sizeof name, "%sStateExited", type);
    flow__emit(st, t, name, "stateExitedEventDetails", text_details(flow__rec_str(t->rec, "state"),
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
static int shape_result(stepper *st, touch *t, json_t *state, json_t *raw, json_t *result,
                        json_t *ctx, json_t **out, err *e)
{
  *out = NULL;
  if (flow__ql_jsonata(st->x->def, state))
    return flow__result_shape(st, t, state, raw, result, ctx, out, e);
  json_t *sel = json_object_get(state, "ResultSelector");
  json_t *r = NULL;
  int rc;
  if (sel != NULL) {
    if ((rc = flow_template_eval(sel, result, ctx, &r, e)) != 0)
      return rc;
  } else {
    r = json_incref(result);
  }
  if ((rc = flow__result_shape(st, t, state, raw, r, ctx, out, e)) != 0) {
    json_decref(r);
    return rc;
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
  const char *next = override ? json_string_value(override) : flow__rec_str(state, "Next");
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
  json_object_del(t->rec, "worker");
  json_object_del(t->rec, "child");
  json_object_del(t->rec, "child_name");
  json_object_del(t->rec, "qid");
  json_object_del(t->rec, "qsince");
  json_object_del(t->rec, "children");
  json_object_del(t->rec, "next_override");
  json_object_del(t->rec, "ql");
  json_object_set_new(t->rec, "retries", json_array());
  return GO_ON;
}

static void exit_event(stepper *st, touch *t, const char *type, json_t *out)
{
  char name[128];
  snprintf(name, sizeof name, "%sStateExited", type);
  flow__emit(st, t, name, "stateExitedEventDetails", text_details(flow__rec_str(t->rec, "state"), "output",
                                                            out));
}


task_kind flow__kind_of(const char *res)
{
  task_kind k = {0};
  if (str_starts(res, "arn:aws:lambda:")) {
    k.plain = true;
    k.lambda = true;
    k.short_name = res;
  } else if (flow__activity_arn(res)) {
    k.activity = true;
    k.token = true;
    k.short_name = res;
  } else if (str_starts(res, "arn:aws:states:::lambda:invoke")) {
    k.lambda = true;
    k.token = str_ends(res, ".waitForTaskToken");
    k.short_name = res + strlen("arn:aws:states:::lambda:");
  } else {
    k.token = str_ends(res, ".waitForTaskToken");
    k.sync = strstr(res, ".sync") != NULL;
    k.query = k.sync && strstr(res, ":athena:") != NULL;
    if (k.query)
      k.sync = false; /* a request-response start, then polled (query_outcome) */
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
void flow__deadline_set(stepper *st, touch *t, const char *key, json_t *seconds)
{
  json_object_del(t->rec, key);
  if (seconds == NULL)
    return;
  int64_t due = time_now_ms() + json_integer_value(seconds) * 1000;
  json_object_set_new(t->rec, key, json_integer(due));
  flow__effect_add(st, EF_TIMER, t->id, due);
}

/* Gives the run a task token, unless it has one; returns it. */
static const char *token_new(touch *t)
{
  if (flow__rec_str(t->rec, "token") == NULL) {
    char tok[65];
    uint8_t raw[32];
    random_bytes(raw, sizeof raw);
    hex_encode(raw, sizeof raw, tok);
    tok[64] = '\0';
    json_object_set_new(t->rec, "token", json_string(tok));
  }
  return flow__rec_str(t->rec, "token");
}

/* Schedules the Task's invocation (eff is in the record). */
static enum outcome task_schedule(stepper *st, touch *t, json_t *state)
{
  const char *res = flow__rec_str(state, "Resource");
  task_kind k = flow__kind_of(res);
  json_t *eff = json_object_get(t->rec, "eff");
  if (k.token)
    token_new(t);
  json_object_del(t->rec, "worker"); /* a retry's activity task is a new one */
  json_object_del(t->rec, "qid"); /* a retry's query is a new one */
  json_object_del(t->rec, "qsince");
  if (k.sync && flow__rec_str(t->rec, "child") == NULL) {
    /* the child's ARN is known (and committed) before it starts */
    char uuid[37];
    const char *cname = flow__rec_str(eff, "Name");
    if (cname == NULL) {
      uuid_v4(uuid);
      cname = uuid;
    }
    const char *marn = flow__rec_str(eff, "StateMachineArn");
    const char *mname = marn != NULL && strrchr(marn, ':') ? strrchr(marn, ':') + 1 : "";
    char *child = xasprintf("arn:aws:states:%s:%s:execution:%s:%s", FLOW_REGION, FLOW_ACCOUNT_ID,
                 mname, cname);
    json_object_set_new(t->rec, "child", json_string(child));
    json_object_set_new(t->rec, "child_name", json_string(cname));
    free(child);
  }
  char *params = flow__dump(eff);
  if (k.activity) {
    json_t *d = json_pack("{s:s, s:s, s:{s:b}}", "resource", res, "input", params,
                          "inputDetails", "truncated", 0);
    if (json_object_get(state, "TimeoutSeconds") != NULL)
      json_object_set(d, "timeoutInSeconds", json_object_get(state, "TimeoutSeconds"));
    if (json_object_get(state, "HeartbeatSeconds") != NULL)
      json_object_set(d, "heartbeatInSeconds", json_object_get(state, "HeartbeatSeconds"));
    flow__emit(st, t, "ActivityScheduled", "activityScheduledEventDetails", d);
  } else if (k.plain) {
    flow__emit(st, t, "LambdaFunctionScheduled", "lambdaFunctionScheduledEventDetails",
         json_pack("{s:s, s:s, s:{s:b}}", "resource", res, "input", params, "inputDetails",
                   "truncated", 0));
  } else {
    flow__emit(st, t, "TaskScheduled", "taskScheduledEventDetails",
         json_pack("{s:s, s:s, s:s, s:s}", "resourceType", resource_type(res), "resource",
                   k.short_name, "region", FLOW_REGION, "parameters", params));
  }
  free(params);
  json_object_set_new(t->rec, "phase", json_string(k.token ? "token" : "task"));
  flow__deadline_set(st, t, "due", flow__task_seconds(t, state, "TimeoutSeconds"));
  flow__deadline_set(st, t, "hbdue", flow__task_seconds(t, state, "HeartbeatSeconds"));
  if (k.token)
    flow__effect_add(st, EF_TOKEN_ADD, flow__rec_str(t->rec, "token"), 0);
  flow__effect_add(st, EF_INVOKE, t->id, 0);
  return STOP;
}

/* The Task ended: success (output JSON text) or failure. */
static enum outcome task_finish(stepper *st, touch *t, json_t *state, json_t *ctx,
                                const char *output, const char *error, const char *cause)
{
  const char *res = flow__rec_str(state, "Resource");
  task_kind k = flow__kind_of(res);
  if (error != NULL) {
    bool timed_out = strcmp(error, "States.Timeout") == 0 ||
                     strcmp(error, "States.HeartbeatTimeout") == 0;
    if (k.activity)
      flow__emit(st, t, timed_out ? "ActivityTimedOut" : "ActivityFailed",
           timed_out ? "activityTimedOutEventDetails" : "activityFailedEventDetails",
           json_pack("{s:s, s:s}", "error", error, "cause", cause ? cause : ""));
    else if (k.plain)
      flow__emit(st, t, timed_out ? "LambdaFunctionTimedOut" : "LambdaFunctionFailed",
           timed_out ? "lambdaFunctionTimedOutEventDetails" : "lambdaFunctionFailedEventDetails",
           json_pack("{s:s, s:s}", "error", error, "cause", cause ? cause : ""));
    else
      flow__emit(st, t, timed_out ? "TaskTimedOut" : "TaskFailed",
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
  char *d = flow__dump(result);
  if (k.activity)
    flow__emit(st, t, "ActivitySucceeded", "activitySucceededEventDetails",
         json_pack("{s:s, s:{s:b}}", "output", d, "outputDetails", "truncated", 0));
  else if (k.plain)
    flow__emit(st, t, "LambdaFunctionSucceeded", "lambdaFunctionSucceededEventDetails",
         json_pack("{s:s, s:{s:b}}", "output", d, "outputDetails", "truncated", 0));
  else
    flow__emit(st, t, "TaskSucceeded", "taskSucceededEventDetails",
         json_pack("{s:s, s:s, s:s, s:{s:b}}", "resourceType", resource_type(res), "resource",
                   k.short_name, "output", d, "outputDetails", "truncated", 0));
  free(d);
  json_t *out;
  err e = {0};
  int rc = shape_result(st, t, state, json_object_get(t->rec, "input"), result, ctx, &out, &e);
  json_decref(result);
  if (rc != 0)
    return fail_state(st, t, state, flow__error_name(rc), e.msg);
  exit_event(st, t, "Task", out);
  enum outcome o = transition(st, t, state, out);
  json_decref(out);
  return o;
}

/* Starts a Parallel's branches or a Map's iterations. */
static enum outcome spawn(stepper *st, touch *t, json_t *state, json_t *ctx, json_t *eff,
                          err *e)
{
  const char *type = flow__rec_str(state, "Type");
  bool is_map = strcmp(type, "Map") == 0;
  const char *sname = flow__rec_str(t->rec, "state");
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
        if (flow__ql_jsonata(st->x->def, state))
          rc = flow__ja_item(st, t, sel, it, i, ctx, &in, e);
        else
          rc = flow_template_eval(sel, eff, ctx, &in, e);
        json_object_del(ctx, "Map");
        if (rc != 0) {
          json_decref(items);
          json_decref(inputs);
          json_decref(scopes);
          json_decref(base);
          return fail_state(st, t, state, flow__error_name(rc), e->msg);
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
    start = flow__rec_str(json_object_get(state, field), "StartAt");
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
  flow__emit(st, t, is_map ? "MapStateStarted" : "ParallelStateStarted",
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
    const char *mode = flow__rec_str(json_object_get(json_object_get(state, "ItemProcessor"),
                                               "ProcessorConfig"), "Mode");
    if (mode != NULL && strcmp(mode, "DISTRIBUTED") == 0)
      json_object_set_new(ch, "dist", json_true());
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
                                : flow__rec_str(json_array_get(json_object_get(state, "Branches"), i),
                                          "StartAt");
    char *cid = xasprintf("%s/%zu", t->id, i);
    json_t *c = json_pack("{s:s, s:o, s:s, s:s, s:O, s:s, s:I, s:[], s:I, s:I}", "exec",
                          st->x->arn, "scope", scope, "state", cstart, "phase", "enter", "input",
                          json_array_get(inputs, i), "parent", t->id, "slot", (json_int_t)i,
                          "retries", "prev", json_integer_value(json_object_get(t->rec, "prev")),
                          "entered", (json_int_t)time_now_ms());
    /* runs inside a distributed Map's iterations keep no history */
    if (json_is_true(json_object_get(ch, "dist")) ||
        json_is_true(json_object_get(t->rec, "quiet")))
      json_object_set_new(c, "quiet", json_true());
    flow__touch_new(st, cid, c);
    if (is_map && !json_is_true(json_object_get(ch, "dist")))
      flow__emit(st, t, "MapIterationStarted", "mapIterationStartedEventDetails",
           json_pack("{s:s, s:i}", "name", sname, "index", (int)i));
    flow__effect_add(st, EF_READY, cid, 0);
    free(cid);
  }
  json_decref(base);
  json_decref(scopes);
  json_decref(inputs);
  json_object_set_new(t->rec, "children", ch);
  json_object_set(t->rec, "eff", eff);
  json_object_set_new(t->rec, "phase", json_string("children"));
  if (n == 0)
    flow__effect_add(st, EF_READY, t->id, 0);
  return STOP;
}

/* Enters the run's current state and goes as far as it can without an
 * effect. */
static enum outcome enter_state(stepper *st, touch *t, json_t *state, json_t *ctx)
{
  const char *type = flow__rec_str(state, "Type");
  const char *name = flow__rec_str(t->rec, "state");
  json_t *input = json_object_get(t->rec, "input");
  char ev[128];
  snprintf(ev, sizeof ev, "%sStateEntered", type);
  json_object_set_new(t->rec, "entered", json_integer(time_now_ms()));
  flow__emit(st, t, ev, "stateEnteredEventDetails", text_details(name, "input", input));
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
    if (rc == 0)
      rc = flow__assign_path(st, t, json_object_get(state, "Assign"), r, ctx, &e);
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
        next = flow__rec_str(rule, "Next");
        rc = flow__assign_path(st, t, json_object_get(rule, "Assign"), eff, ctx, &e);
        break;
      }
    }
    if (rc == 0)
      rc = flow__assign_path(st, t, json_object_get(state, "Assign"), eff, ctx, &e);
    if (rc == 0 && next == NULL)
      next = flow__rec_str(state, "Default");
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
    const char *error = flow__rec_str(state, "Error");
    const char *cause = flow__rec_str(state, "Cause");
    json_t *ev_err = NULL, *ev_cause = NULL;
    if (flow__rec_str(state, "ErrorPath") != NULL &&
        flow_path_get(flow__rec_str(state, "ErrorPath"), input, ctx, &ev_err, &e) == 0)
      error = json_string_value(ev_err);
    if (flow__rec_str(state, "CausePath") != NULL &&
        flow_path_get(flow__rec_str(state, "CausePath"), input, ctx, &ev_cause, &e) == 0)
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
    } else if (flow__rec_str(state, "Timestamp") != NULL) {
      time_parse_iso8601(flow__rec_str(state, "Timestamp"), &due);
    } else if (flow__rec_str(state, "SecondsPath") != NULL) {
      if ((rc = flow_path_get(flow__rec_str(state, "SecondsPath"), eff, ctx, &v, &e)) == 0 &&
          (!json_is_number(v) || json_number_value(v) < 0))
        rc = err_set(&e, FLOW_ERR_RUNTIME, "The SecondsPath parameter does not reference a "
                     "valid non-negative integer value");
      if (rc == 0)
        due += (int64_t)(json_number_value(v) * 1000);
    } else {
      int64_t ms = 0;
      if ((rc = flow_path_get(flow__rec_str(state, "TimestampPath"), eff, ctx, &v, &e)) == 0 &&
          (!json_is_string(v) || !time_parse_iso8601(json_string_value(v), &ms)))
        rc = err_set(&e, FLOW_ERR_RUNTIME, "The TimestampPath parameter does not reference a "
                     "valid ISO-8601 extended offset date-time format string");
      due = ms;
    }
    json_decref(v);
    if (rc == 0)
      rc = flow__assign_path(st, t, json_object_get(state, "Assign"), eff, ctx, &e);
    if (rc == 0) {
      json_object_set_new(t->rec, "phase", json_string("wait"));
      json_object_set_new(t->rec, "due", json_integer(due));
      json_object_set(t->rec, "eff", eff);
      flow__effect_add(st, EF_TIMER, t->id, due);
      json_decref(eff);
      return STOP;
    }
  } else if (rc == 0 && strcmp(type, "Task") == 0) {
    json_t *params = json_object_get(state, "Parameters");
    json_t *p = NULL;
    if (params != NULL) {
      /* the token must be in the context before Parameters read it */
      if (str_ends(flow__rec_str(state, "Resource"), ".waitForTaskToken"))
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
  const char *type = flow__rec_str(state, "Type");
  bool is_map = strcmp(type, "Map") == 0;
  json_t *failed = json_object_get(ch, "failed");
  if (failed != NULL) {
    children_abort(st, t->id);
    char prefix[1400];
    snprintf(prefix, sizeof prefix, "%s!", t->id);
    mapdata_drop(st, prefix);
    flow__emit(st, t, is_map ? "MapStateFailed" : "ParallelStateFailed", NULL, NULL);
    char *error = xstrdup(flow__rec_str(failed, "Error"));
    char *cause = xstrdup(flow__rec_str(failed, "Cause"));
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
      char *map_run = xasprintf("arn:aws:states:%s:%s:mapRun:%s/%s", FLOW_REGION, FLOW_ACCOUNT_ID,
                   strstr(st->x->arn, ":execution:") + strlen(":execution:"),
                   flow__rec_str(t->rec, "state"));
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
  flow__emit(st, t, is_map ? "MapStateSucceeded" : "ParallelStateSucceeded", NULL, NULL);
  json_t *out;
  err e = {0};
  int rc = shape_result(st, t, state, json_object_get(t->rec, "input"), results, ctx, &out, &e);
  json_decref(results);
  if (rc != 0)
    return fail_state(st, t, state, flow__error_name(rc), e.msg);
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

/* Re-arms the Task's deadlines (after a restart too). */
static void deadlines_rearm(stepper *st, touch *t)
{
  const char *keys[] = {"due", "hbdue"};
  for (int i = 0; i < 2; i++)
    if (json_object_get(t->rec, keys[i]) != NULL)
      flow__effect_add(st, EF_TIMER, t->id, json_integer_value(json_object_get(t->rec, keys[i])));
}

/* A .sync Task: the execution it started (rec "child"). True when that
 * decides the step: it ended (*o from task_finish) or still runs (*o STOP,
 * deadlines re-armed); false when it was never started (lost in a crash). */
static bool child_outcome(stepper *st, touch *t, json_t *state, json_t *ctx, enum outcome *o)
{
  json_t *child = NULL;
  err e = {0};
  if (flow__get(st->s, st->s->db_execs, flow__rec_str(t->rec, "child"), &child, &e) != 0)
    return false;
  const char *status = flow__rec_str(child, "status");
  if (strcmp(status, "RUNNING") == 0) {
    json_decref(child);
    deadlines_rearm(st, t);
    *o = STOP;
    return true;
  }
  bool v2 = str_ends(flow__rec_str(state, "Resource"), ".sync:2");
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
  char *text = flow__dump(d);
  json_decref(d);
  if (strcmp(status, "SUCCEEDED") == 0)
    *o = task_finish(st, t, state, ctx, text, NULL, NULL);
  else
    *o = task_finish(st, t, state, ctx, NULL, "States.TaskFailed", text);
  free(text);
  json_decref(child);
  return true;
}

/* athena:startQueryExecution.sync: the query (rec "qid") is polled on a
 * timer, every 100 ms for its first 2 s, then every 500 ms. */
static void query_poll_later(stepper *st, touch *t)
{
  int64_t now = time_now_ms();
  json_t *since = json_object_get(t->rec, "qsince");
  int64_t age = since != NULL ? now - json_integer_value(since) : 0;
  flow__effect_add(st, EF_TIMER, t->id, now + (age < 2000 ? 100 : 500));
  deadlines_rearm(st, t);
}

/* The query the Task started: it ended (task_finish) or still runs (STOP). */
static enum outcome query_outcome(stepper *st, touch *t, json_t *state, json_t *ctx)
{
  char *result, *error, *cause;
  int rc = flow__athena_poll(st->s, flow__rec_str(t->rec, "qid"), &result, &error, &cause);
  enum outcome o = STOP;
  if (rc > 0)
    query_poll_later(st, t);
  else
    o = task_finish(st, t, state, ctx, result, error, cause);
  free(result);
  free(error);
  free(cause);
  return o;
}

/* One step of run r: see the top of the file. */
enum outcome flow__step_once(stepper *st, touch *t, run *r)
{
  json_t *states = flow__scope_states(st->x, t->rec);
  json_t *state = json_object_get(states, flow__rec_str(t->rec, "state"));
  if (state == NULL) {
    run_end(st, t, NULL, "States.Runtime", "the state is not in the definition");
    return STOP;
  }
  const char *phase = flow__rec_str(t->rec, "phase");
  json_t *ctx = context(st, t);
  json_t *vars_before = flow__vars_now;
  flow__vars_now = flow__vars_visible(st, t);
  enum outcome o = STOP;
  int64_t now = time_now_ms();
  json_t *due = json_object_get(t->rec, "due");
  bool past_due = due != NULL && now >= json_integer_value(due);
  if (strcmp(phase, "enter") == 0) {
    o = flow__ql_jsonata(st->x->def, state) ? flow__ja_enter(st, t, state, ctx)
                                             : enter_state(st, t, state, ctx);
  } else if (strcmp(phase, "wait") == 0) {
    if (!past_due) {
      flow__effect_add(st, EF_TIMER, t->id, json_integer_value(due));
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
      flow__effect_add(st, EF_TIMER, t->id, json_integer_value(due));
    } else if (strcmp(flow__rec_str(state, "Type"), "Task") == 0) {
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
    } else if (k.has && !token && flow__kind_of(flow__rec_str(state, "Resource")).query) {
      /* the query started: its id is committed with this step, then polled */
      json_t *started = json_loads(k.result ? k.result : "", 0, NULL);
      const char *qid = json_string_value(json_object_get(started, "QueryExecutionId"));
      if (qid == NULL) {
        o = task_finish(st, t, state, ctx, NULL, "States.Runtime",
                        "the query's start gave no QueryExecutionId");
      } else {
        json_object_set_new(t->rec, "qid", json_string(qid));
        json_object_set_new(t->rec, "qsince", json_integer(now));
        const char *res = flow__rec_str(state, "Resource");
        flow__emit(st, t, "TaskSubmitted", "taskSubmittedEventDetails",
                   json_pack("{s:s, s:s, s:s, s:{s:b}}", "resourceType", resource_type(res),
                             "resource", flow__kind_of(res).short_name, "output", k.result,
                             "outputDetails", "truncated", 0));
        query_poll_later(st, t);
      }
      json_decref(started);
    } else if (k.has && !token) {
      o = task_finish(st, t, state, ctx, k.result, NULL, NULL);
    } else if (k.has && token && k.result != NULL) {
      o = task_finish(st, t, state, ctx, k.result, NULL, NULL);
    } else if (!past_due && flow__rec_str(t->rec, "child") != NULL &&
               child_outcome(st, t, state, ctx, &o)) {
      /* the execution it started ended (o), or still runs (o STOP) */
    } else if (!past_due && flow__rec_str(t->rec, "qid") != NULL) {
      o = query_outcome(st, t, state, ctx);
    } else if (past_due) {
      if (flow__rec_str(t->rec, "qid") != NULL && st->s->athena != NULL) {
        err e = {0}; /* the query the Task waited for is stopped with it */
        (void)athena_query_stop(st->s->athena, flow__rec_str(t->rec, "qid"), &e);
      }
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
      deadlines_rearm(st, t);
    }
    free(k.result);
    free(k.error);
    free(k.cause);
  } else if (strcmp(phase, "children") == 0) {
    o = children_done(st, t, state, ctx);
  }
  json_decref(flow__vars_now);
  flow__vars_now = vars_before;
  json_decref(ctx);
  return o;
}

/* ---- for query.c (JSONata states) ---- */

enum outcome flow__transition(stepper *st, touch *t, json_t *state, json_t *output)
{
  return transition(st, t, state, output);
}

enum outcome flow__fail_state(stepper *st, touch *t, json_t *state, const char *error,
                              const char *cause)
{
  return fail_state(st, t, state, error, cause);
}

void flow__run_end(stepper *st, touch *t, json_t *output, const char *error, const char *cause)
{
  run_end(st, t, output, error, cause);
}

void flow__exit_event(stepper *st, touch *t, const char *type, json_t *out)
{
  exit_event(st, t, type, out);
}

enum outcome flow__task_schedule(stepper *st, touch *t, json_t *state)
{
  return task_schedule(st, t, state);
}

enum outcome flow__spawn(stepper *st, touch *t, json_t *state, json_t *ctx, json_t *eff, err *e)
{
  return spawn(st, t, state, ctx, eff, e);
}

const char *flow__token_new(touch *t)
{
  return token_new(t);
}

json_t *flow__context(stepper *st, touch *t)
{
  return context(st, t);
}

