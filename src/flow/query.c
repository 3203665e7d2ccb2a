/* flow/query.c -- QueryLanguage "JSONata" states and workflow variables
 * (Assign) for both query languages.
 *
 * Why a file of its own: a JSONata state reads its input and shapes its
 * output with other fields (Arguments, Output, Assign, Condition, Items)
 * than a JSONPath state (InputPath, Parameters, ResultSelector, ResultPath,
 * OutputPath); step.c keeps the JSONPath ones and calls in here for the
 * rest, reusing its transitions, Task scheduling and Parallel/Map spawning.
 *
 * Variables: a run's own variables are in its committed record ("vars"),
 * so they are as durable as its position. A branch of a Parallel or an
 * iteration of a Map sees its ancestors' variables (they cannot change
 * while it runs: its parent waits) and assigns only its own.
 *
 * Invariants:
 *   (1) The expressions of an Assign all see the variables as they were
 *       when the state was entered, and Output does too; the new values
 *       are visible from the next state on.
 *   (2) A variable's value, an Assign and all of a run's variables have the
 *       sizes AWS states (query.h); past them the state fails with
 *       States.Runtime and no variable changes.
 *   (3) A JSONata expression that fails, or gives nothing (undefined) where
 *       a value is needed, fails the state with States.QueryEvaluationError.
 *
 * Start reading at flow__ja_enter().
 */
#include "flow/query.h"

#include "base/mem.h"
#include "base/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *flow__error_name(int rc)
{
  if (rc == FLOW_ERR_INTRINSIC)
    return "States.IntrinsicFailure";
  if (rc == FLOW_ERR_QUERY)
    return "States.QueryEvaluationError";
  return "States.Runtime";
}

/* ---- variables ---- */

/* The record of a live run in this step (its touch's copy when it has one). */
static json_t *rec_of(stepper *st, const char *id)
{
  for (size_t i = 0; i < st->nt; i++)
    if (strcmp(st->t[i]->id, id) == 0)
      return st->t[i]->rec;
  run *r = flow__run_find(st->x, id);
  return r != NULL ? r->rec : NULL;
}

json_t *flow__vars_visible(stepper *st, touch *t)
{
  json_t *chain[64];
  size_t n = 0;
  json_t *rec = t->rec;
  while (rec != NULL && n < 64) {
    chain[n++] = rec;
    const char *pid = flow__rec_str(rec, "parent");
    rec = pid != NULL ? rec_of(st, pid) : NULL;
  }
  json_t *vars = json_object();
  for (size_t i = n; i > 0; i--) {
    json_t *own = json_object_get(chain[i - 1], "vars");
    if (json_is_object(own))
      json_object_update(vars, own);
  }
  return vars;
}

static size_t size_of(json_t *v)
{
  return json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Sets the evaluated values (name -> value) as t's variables. */
static int vars_set(touch *t, json_t *values, err *e)
{
  size_t total = 0;
  const char *k;
  json_t *v;
  json_object_foreach(values, k, v) {
    size_t n = size_of(v);
    if (n > FLOW_MAX_VARIABLE)
      return err_set(e, FLOW_ERR_RUNTIME, "The value of the variable '%s' is larger than %u "
                     "bytes", k, FLOW_MAX_VARIABLE);
    total += n;
  }
  if (total > FLOW_MAX_ASSIGN)
    return err_set(e, FLOW_ERR_RUNTIME, "The values assigned by the state are larger than %u "
                   "bytes together", FLOW_MAX_ASSIGN);
  json_t *own = json_object_get(t->rec, "vars");
  json_t *next = json_is_object(own) ? json_copy(own) : json_object();
  json_object_update(next, values);
  if (size_of(next) > FLOW_MAX_VARIABLES) {
    json_decref(next);
    return err_set(e, FLOW_ERR_RUNTIME, "The variables of the execution would be larger than "
                   "%u bytes", FLOW_MAX_VARIABLES);
  }
  json_object_set_new(t->rec, "vars", next);
  return 0;
}

int flow__assign_path(stepper *st, touch *t, json_t *assign, json_t *doc, json_t *ctx, err *e)
{
  (void)st;
  if (assign == NULL)
    return 0;
  json_t *values = NULL;
  int rc = flow_template_eval(assign, doc, ctx, &values, e);
  if (rc == 0 && !json_is_object(values))
    rc = err_set(e, FLOW_ERR_RUNTIME, "Assign must be an object");
  if (rc == 0)
    rc = vars_set(t, values, e);
  json_decref(values);
  return rc;
}

/* ---- JSONata fields ---- */

/* The field whose expression failed last (the EvaluationFailed event's
 * location). */
static _Thread_local const char *failed_field;

/* History: AWS's EvaluationFailed event before a JSONata failure. */
static void eval_failed(stepper *st, touch *t, int rc, err *e)
{
  if (rc != FLOW_ERR_QUERY)
    return;
  json_t *d = json_pack("{s:s, s:s, s:s}", "state", flow__rec_str(t->rec, "state"), "error",
                        "States.QueryEvaluationError", "cause", e->msg);
  if (failed_field != NULL)
    json_object_set_new(d, "location", json_string(failed_field));
  flow__emit(st, t, "EvaluationFailed", "evaluationFailedEventDetails", d);
}

/* The variables a JSONata expression of the state sees: the run's, and
 * $states {input, context, result, errorOutput} (NULLs left out). */
static json_t *ja_vars(stepper *st, touch *t, json_t *input, json_t *ctx, json_t *result,
                       json_t *error_output)
{
  json_t *vars = flow__vars_visible(st, t);
  json_t *states = json_object();
  json_object_set(states, "input", input != NULL ? input : json_null());
  if (ctx != NULL)
    json_object_set(states, "context", ctx);
  if (result != NULL)
    json_object_set(states, "result", result);
  if (error_output != NULL)
    json_object_set(states, "errorOutput", error_output);
  json_object_set_new(vars, "states", states);
  return vars;
}

/* Evaluates a field's value: "{% expr %}" strings, recursively in objects
 * and arrays; other values are literal. */
static int ja_value(json_t *v, json_t *input, json_t *vars, const char *field, json_t **out,
                    err *e)
{
  *out = NULL;
  size_t len;
  const char *x = flow__jsonata_expr(v, &len);
  if (x != NULL) {
    failed_field = field;
    jsonata *j;
    err pe = {0};
    if (jsonata_parse(x, len, &j, &pe) != 0)
      return err_set(e, FLOW_ERR_QUERY, "The JSONata expression '%.*s' specified for the field "
                     "'%s' is not valid: %s", (int)(len < 200 ? len : 200), x, field, pe.msg);
    err ee = {0};
    int rc = jsonata_eval(j, input, vars, out, &ee);
    jsonata_free(j);
    if (rc != 0)
      return err_set(e, FLOW_ERR_QUERY, "An error occurred while evaluating the JSONata "
                     "expression '%.*s' specified for the field '%s': %s",
                     (int)(len < 200 ? len : 200), x, field, ee.msg);
    if (*out == NULL)
      return err_set(e, FLOW_ERR_QUERY, "The JSONata expression '%.*s' specified for the field "
                     "'%s' returned nothing (undefined).", (int)(len < 200 ? len : 200), x,
                     field);
    return 0;
  }
  if (json_is_array(v)) {
    json_t *a = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
      json_t *r;
      int rc = ja_value(item, input, vars, field, &r, e);
      if (rc != 0) {
        json_decref(a);
        return rc;
      }
      json_array_append_new(a, r);
    }
    *out = a;
    return 0;
  }
  if (json_is_object(v)) {
    json_t *o = json_object();
    const char *k;
    json_t *item;
    json_object_foreach(v, k, item) {
      json_t *r;
      int rc = ja_value(item, input, vars, field, &r, e);
      if (rc != 0) {
        json_decref(o);
        return rc;
      }
      json_object_set_new(o, k, r);
    }
    *out = o;
    return 0;
  }
  *out = json_incref(v);
  return 0;
}

/* Evaluates the Assign objects (NULLs skipped) and sets the variables
 * (invariant 1: vars is what the state saw on entry). */
static int ja_assign(touch *t, json_t *a1, json_t *a2, json_t *input, json_t *vars, err *e)
{
  json_t *values = json_object();
  json_t *list[2] = {a1, a2};
  for (int l = 0; l < 2; l++) {
    if (list[l] == NULL)
      continue;
    if (!json_is_object(list[l])) {
      json_decref(values);
      return err_set(e, FLOW_ERR_RUNTIME, "Assign must be an object");
    }
    const char *k;
    json_t *v;
    json_object_foreach(list[l], k, v) {
      json_t *r;
      int rc = ja_value(v, input, vars, "Assign", &r, e);
      if (rc != 0) {
        json_decref(values);
        return rc;
      }
      json_object_set_new(values, k, r);
    }
  }
  int rc = vars_set(t, values, e);
  json_decref(values);
  return rc;
}

/* Output (default: dflt) and Assign of a state or rule. */
static int ja_shape(touch *t, json_t *output, json_t *assign, json_t *assign2, json_t *dflt,
                    json_t *input, json_t *vars, json_t **out, err *e)
{
  *out = NULL;
  int rc = 0;
  if (output != NULL)
    rc = ja_value(output, input, vars, "Output", out, e);
  else
    *out = json_incref(dflt);
  if (rc == 0)
    rc = ja_assign(t, assign, assign2, input, vars, e);
  if (rc != 0) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

int flow__result_shape(stepper *st, touch *t, json_t *state, json_t *input, json_t *result,
                       json_t *ctx, json_t **out, err *e)
{
  if (!flow__ql_jsonata(st->x->def, state))
    return flow__assign_path(st, t, json_object_get(state, "Assign"), result, ctx, e);
  json_t *vars = ja_vars(st, t, input, ctx, result, NULL);
  int rc = ja_shape(t, json_object_get(state, "Output"), json_object_get(state, "Assign"), NULL,
                    result, input, vars, out, e);
  json_decref(vars);
  eval_failed(st, t, rc, e);
  return rc;
}

int flow__catch_shape(stepper *st, touch *t, json_t *state, json_t *catcher, json_t *errobj,
                      json_t **out, err *e)
{
  *out = NULL;
  json_t *input = json_object_get(t->rec, "input");
  if (!flow__ql_jsonata(st->x->def, state))
    return flow__assign_path(st, t, json_object_get(catcher, "Assign"), errobj, NULL, e);
  json_t *ctx = flow__context(st, t);
  json_t *vars = ja_vars(st, t, input, ctx, NULL, errobj);
  json_decref(ctx);
  int rc = ja_shape(t, json_object_get(catcher, "Output"), json_object_get(catcher, "Assign"),
                    NULL, errobj, input, vars, out, e);
  json_decref(vars);
  eval_failed(st, t, rc, e);
  return rc != 0 ? rc : 1;
}

int flow__ja_item(stepper *st, touch *t, json_t *sel, json_t *item, size_t i, json_t *ctx,
                  json_t **out, err *e)
{
  json_t *input = json_object_get(t->rec, "input");
  json_t *c = json_deep_copy(ctx);
  json_object_set_new(c, "Map", json_pack("{s:{s:i, s:O}}", "Item", "Index", (int)i, "Value",
                                          item));
  json_t *vars = ja_vars(st, t, input, c, NULL, NULL);
  int rc = ja_value(sel, input, vars, "ItemSelector", out, e);
  json_decref(vars);
  json_decref(c);
  eval_failed(st, t, rc, e);
  return rc;
}

json_t *flow__task_seconds(touch *t, json_t *state, const char *key)
{
  json_t *v = json_object_get(json_object_get(t->rec, "ql"), key);
  if (v != NULL)
    return v;
  v = json_object_get(state, key);
  return json_is_integer(v) ? v : NULL;
}

/* A whole number of seconds from a JSONata field (literal or expression). */
static int ja_seconds(json_t *state, const char *field, long long min, json_t *input,
                      json_t *vars, json_t **out, err *e)
{
  *out = NULL;
  json_t *f = json_object_get(state, field);
  if (f == NULL)
    return 0;
  json_t *v;
  int rc = ja_value(f, input, vars, field, &v, e);
  if (rc != 0)
    return rc;
  double d = json_is_number(v) ? json_number_value(v) : -1;
  if (!json_is_number(v) || d != floor(d) || d < (double)min || d > 99999999) {
    json_decref(v);
    return err_set(e, FLOW_ERR_QUERY, "The value of the field '%s' must be an integer of at "
                   "least %lld", field, min);
  }
  *out = json_integer((json_int_t)d);
  json_decref(v);
  return 0;
}

static enum outcome ja_fail(stepper *st, touch *t, json_t *state, int rc, err *e)
{
  eval_failed(st, t, rc, e);
  return flow__fail_state(st, t, state, flow__error_name(rc), e->msg);
}

/* Choice: the first rule whose Condition is true. */
static enum outcome ja_choice(stepper *st, touch *t, json_t *state, json_t *input, json_t *vars)
{
  err e = {0};
  size_t i;
  json_t *rule;
  json_t *hit = NULL;
  json_array_foreach(json_object_get(state, "Choices"), i, rule) {
    json_t *cond;
    int rc = ja_value(json_object_get(rule, "Condition"), input, vars, "Condition", &cond, &e);
    if (rc == 0 && !json_is_boolean(cond))
      rc = err_set(&e, FLOW_ERR_QUERY, "The Condition of Choices[%zu] must evaluate to a "
                   "boolean, not %s", i, cond == NULL ? "undefined" : "another value");
    bool yes = json_is_true(cond);
    json_decref(cond);
    if (rc != 0)
      return ja_fail(st, t, state, rc, &e);
    if (yes) {
      hit = rule;
      break;
    }
  }
  const char *next = hit != NULL ? flow__rec_str(hit, "Next") : flow__rec_str(state, "Default");
  if (next == NULL) {
    flow__run_end(st, t, NULL, "States.NoChoiceMatched",
                  "No Choice Rules matched and no Default was specified");
    return STOP;
  }
  json_t *output = hit != NULL && json_object_get(hit, "Output") != NULL
                       ? json_object_get(hit, "Output")
                       : json_object_get(state, "Output");
  json_t *out;
  int rc = ja_shape(t, output, json_object_get(state, "Assign"),
                    hit != NULL ? json_object_get(hit, "Assign") : NULL, input, input, vars, &out,
                    &e);
  if (rc != 0)
    return ja_fail(st, t, state, rc, &e);
  flow__exit_event(st, t, "Choice", out);
  json_object_set_new(t->rec, "next_override", json_string(next));
  enum outcome o = flow__transition(st, t, state, out);
  json_decref(out);
  return o;
}

static enum outcome ja_wait(stepper *st, touch *t, json_t *state, json_t *input, json_t *vars)
{
  err e = {0};
  int64_t due = time_now_ms();
  int rc = 0;
  if (json_object_get(state, "Seconds") != NULL) {
    json_t *s;
    rc = ja_seconds(state, "Seconds", 0, input, vars, &s, &e);
    if (rc == 0)
      due += json_integer_value(s) * 1000;
    json_decref(s);
  } else {
    json_t *ts;
    rc = ja_value(json_object_get(state, "Timestamp"), input, vars, "Timestamp", &ts, &e);
    int64_t ms = 0;
    if (rc == 0 && (!json_is_string(ts) || !time_parse_iso8601(json_string_value(ts), &ms)))
      rc = err_set(&e, FLOW_ERR_QUERY, "The value of the field 'Timestamp' must be an "
                   "ISO-8601 extended offset date-time format string");
    due = ms;
    json_decref(ts);
  }
  json_t *out = NULL;
  if (rc == 0)
    rc = ja_shape(t, json_object_get(state, "Output"), json_object_get(state, "Assign"), NULL,
                  input, input, vars, &out, &e);
  if (rc != 0)
    return ja_fail(st, t, state, rc, &e);
  /* the output is made now; the exit (step.c, phase "wait") passes it on */
  json_object_set_new(t->rec, "phase", json_string("wait"));
  json_object_set_new(t->rec, "due", json_integer(due));
  json_object_set_new(t->rec, "eff", out);
  flow__effect_add(st, EF_TIMER, t->id, due);
  return STOP;
}

enum outcome flow__ja_enter(stepper *st, touch *t, json_t *state, json_t *ctx)
{
  const char *type = flow__rec_str(state, "Type");
  json_t *input = json_object_get(t->rec, "input");
  char ev[128];
  snprintf(ev, sizeof ev, "%sStateEntered", type);
  json_object_set_new(t->rec, "entered", json_integer(time_now_ms()));
  char *in = flow__dump(input);
  flow__emit(st, t, ev, "stateEnteredEventDetails",
             json_pack("{s:s, s:s, s:{s:b}}", "name", flow__rec_str(t->rec, "state"), "input",
                       in, "inputDetails", "truncated", 0));
  free(in);
  bool is_task = strcmp(type, "Task") == 0;
  if (is_task && str_ends(flow__rec_str(state, "Resource"), ".waitForTaskToken"))
    json_object_set_new(ctx, "Task", json_pack("{s:s}", "Token", flow__token_new(t)));
  json_t *vars = ja_vars(st, t, input, ctx, NULL, NULL);
  enum outcome o = STOP;
  err e = {0};
  int rc = 0;
  json_t *out = NULL;
  if (strcmp(type, "Pass") == 0) {
    rc = ja_shape(t, json_object_get(state, "Output"), json_object_get(state, "Assign"), NULL,
                  input, input, vars, &out, &e);
    if (rc == 0) {
      flow__exit_event(st, t, type, out);
      o = flow__transition(st, t, state, out);
    }
  } else if (strcmp(type, "Succeed") == 0) {
    rc = ja_shape(t, json_object_get(state, "Output"), NULL, NULL, input, input, vars, &out, &e);
    if (rc == 0) {
      flow__exit_event(st, t, type, out);
      flow__run_end(st, t, out, NULL, NULL);
    }
  } else if (strcmp(type, "Fail") == 0) {
    json_t *error = NULL, *cause = NULL;
    if (json_object_get(state, "Error") != NULL)
      rc = ja_value(json_object_get(state, "Error"), input, vars, "Error", &error, &e);
    if (rc == 0 && json_object_get(state, "Cause") != NULL)
      rc = ja_value(json_object_get(state, "Cause"), input, vars, "Cause", &cause, &e);
    if (rc == 0 && ((error != NULL && !json_is_string(error)) ||
                    (cause != NULL && !json_is_string(cause))))
      rc = err_set(&e, FLOW_ERR_QUERY, "The fields 'Error' and 'Cause' must evaluate to "
                   "strings");
    if (rc == 0)
      flow__run_end(st, t, NULL, json_string_value(error), json_string_value(cause));
    json_decref(error);
    json_decref(cause);
  } else if (strcmp(type, "Choice") == 0) {
    o = ja_choice(st, t, state, input, vars);
  } else if (strcmp(type, "Wait") == 0) {
    o = ja_wait(st, t, state, input, vars);
  } else if (is_task) {
    json_t *args = NULL, *ts = NULL, *hb = NULL;
    json_t *a = json_object_get(state, "Arguments");
    rc = a != NULL ? ja_value(a, input, vars, "Arguments", &args, &e)
                   : (args = json_incref(input), 0);
    if (rc == 0)
      rc = ja_seconds(state, "TimeoutSeconds", 1, input, vars, &ts, &e);
    if (rc == 0)
      rc = ja_seconds(state, "HeartbeatSeconds", 1, input, vars, &hb, &e);
    if (rc == 0 && ts != NULL && hb != NULL &&
        json_integer_value(hb) >= json_integer_value(ts))
      rc = err_set(&e, FLOW_ERR_QUERY, "HeartbeatSeconds must be smaller than "
                   "TimeoutSeconds");
    if (rc == 0) {
      json_t *ql = json_object();
      if (ts != NULL)
        json_object_set(ql, "TimeoutSeconds", ts);
      if (hb != NULL)
        json_object_set(ql, "HeartbeatSeconds", hb);
      json_object_set_new(t->rec, "ql", ql);
      json_object_set(t->rec, "eff", args);
      o = flow__task_schedule(st, t, state);
    }
    json_decref(args);
    json_decref(ts);
    json_decref(hb);
  } else if (strcmp(type, "Parallel") == 0 || strcmp(type, "Map") == 0) {
    bool map = type[0] == 'M';
    json_t *f = json_object_get(state, map ? "Items" : "Arguments");
    json_t *eff = NULL;
    rc = f != NULL ? ja_value(f, input, vars, map ? "Items" : "Arguments", &eff, &e)
                   : (eff = json_incref(input), 0);
    if (rc == 0 && map && !json_is_array(eff) && json_object_get(state, "ItemReader") == NULL)
      rc = err_set(&e, FLOW_ERR_QUERY, "The field 'Items' must evaluate to an array");
    if (rc == 0)
      o = flow__spawn(st, t, state, ctx, eff, &e);
    json_decref(eff);
  }
  json_decref(out);
  json_decref(vars);
  if (rc != 0)
    return ja_fail(st, t, state, rc, &e);
  return o;
}
