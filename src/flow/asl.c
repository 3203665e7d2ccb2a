/* flow/asl.c -- the definition check: a States Language document is read
 * and checked before it is stored, so the engine never meets a malformed
 * state (it still checks what only the data decides, at run time).
 *
 * What is checked, with the path of the problem in AWS's form
 * ("/States/Foo/Next"): JSON object; StartAt and States; every state's Type
 * and the fields its type allows; exactly one of Next and End where a
 * transition is needed; every Next, Default and Catch target exists in its
 * scope (a branch or an iterator is a scope of its own); every state is
 * reachable; Choice rules (one operator each, And/Or/Not nested); Wait
 * has one of Seconds/Timestamp/SecondsPath/TimestampPath; paths and
 * reference paths are in the subset of flow/path.c; "x.$" values are paths
 * or known intrinsic functions; Retry and Catch (ErrorEquals, States.ALL
 * alone and last, the numbers in range); Parallel Branches and Map
 * ItemProcessor / Iterator recursively. QueryLanguage (top level and per
 * state): a JSONata state has its own fields (Arguments, Output, Assign,
 * Condition, Items) and no JSONPath ones, and each "{% expr %}" in them
 * parses; Assign's variable names (flow/query.c).
 *
 * Messages: "Invalid State Machine Definition: 'CODE: what at /path'", the
 * codes AWS uses (SCHEMA_VALIDATION_FAILED, MISSING_TRANSITION_TARGET,
 * UNREACHABLE_STATE, ...).
 *
 * Start reading at flow_definition_check().
 */
#include "flow/internal.h"
#include "flow/query.h"

#include "base/text.h"

#include <stdio.h>
#include <string.h>

typedef struct checker {
  err *e;
  bool ja_top;         /* the top-level QueryLanguage is JSONata */
  bool ja;             /* the state being checked uses JSONata */
  int nstates;
  char path[1024];     /* where we are, "/States/A" */
} checker;

static int fail(checker *c, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(checker *c, const char *code, const char *field, const char *fmt, ...)
{
  char what[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  char where[1200];
  snprintf(where, sizeof where, "%s%s%s", c->path, field ? "/" : "", field ? field : "");
  return err_set(c->e, FLOW_ERR_DEFINITION,
                 "Invalid State Machine Definition: '%s: %s at %s'", code, what,
                 where[0] ? where : "/");
}

/* Appends /seg to the path; returns the old length to restore. */
static size_t enter(checker *c, const char *seg);

/* Appends /FIELD[i] (an element of an array field). */
static size_t enter_index(checker *c, const char *field, size_t i)
{
  char idx[96];
  snprintf(idx, sizeof idx, "%s[%zu]", field, i);
  return enter(c, idx);
}

static size_t enter(checker *c, const char *seg)
{
  size_t n = strlen(c->path);
  snprintf(c->path + n, sizeof c->path - n, "/%s", seg);
  return n;
}

static void leave(checker *c, size_t n)
{
  c->path[n] = '\0';
}

static bool in_list(const char *k, const char *const *list)
{
  for (size_t i = 0; list[i] != NULL; i++)
    if (strcmp(k, list[i]) == 0)
      return true;
  return false;
}

static const char *const common[] = {"Type", "Comment", NULL};
static const char *const f_pass[] = {"Next", "End", "InputPath", "OutputPath", "ResultPath",
                                     "Parameters", "Result", NULL};
static const char *const f_task[] = {"Next", "End", "InputPath", "OutputPath", "ResultPath",
                                     "Parameters", "ResultSelector", "Resource",
                                     "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds",
                                     "HeartbeatSecondsPath", "Retry", "Catch", "Credentials",
                                     NULL};
static const char *const f_choice[] = {"InputPath", "OutputPath", "Choices", "Default", NULL};
static const char *const f_wait[] = {"Next", "End", "InputPath", "OutputPath", "Seconds",
                                     "Timestamp", "SecondsPath", "TimestampPath", NULL};
static const char *const f_succeed[] = {"InputPath", "OutputPath", NULL};
static const char *const f_fail[] = {"Error", "Cause", "ErrorPath", "CausePath", NULL};
static const char *const f_parallel[] = {"Next", "End", "InputPath", "OutputPath",
                                         "ResultPath", "Parameters", "ResultSelector",
                                         "Branches", "Retry", "Catch", NULL};
static const char *const f_map[] = {"Next", "End", "InputPath", "OutputPath", "ResultPath",
                                    "Parameters", "ItemSelector", "ResultSelector", "Iterator",
                                    "ItemProcessor", "ItemsPath", "MaxConcurrency",
                                    "MaxConcurrencyPath", "ItemReader", "ItemBatcher",
                                    "ResultWriter", "ToleratedFailurePercentage",
                                    "ToleratedFailureCount", "ToleratedFailurePercentagePath",
                                    "ToleratedFailureCountPath", "Label", "Retry", "Catch",
                                    NULL};

static int check_template(checker *c, json_t *t, const char *field);

/* the fields of the same states in JSONata */
static const char *const j_pass[] = {"Next", "End", "Output", "Assign", NULL};
static const char *const j_task[] = {"Next", "End", "Output", "Assign", "Arguments", "Resource",
                                     "TimeoutSeconds", "HeartbeatSeconds", "Retry", "Catch",
                                     "Credentials", NULL};
static const char *const j_choice[] = {"Output", "Assign", "Choices", "Default", NULL};
static const char *const j_wait[] = {"Next", "End", "Output", "Assign", "Seconds", "Timestamp",
                                     NULL};
static const char *const j_succeed[] = {"Output", NULL};
static const char *const j_fail[] = {"Error", "Cause", NULL};
static const char *const j_parallel[] = {"Next", "End", "Output", "Assign", "Arguments",
                                         "Branches", "Retry", "Catch", NULL};
static const char *const j_map[] = {"Next", "End", "Output", "Assign", "Items", "ItemSelector",
                                    "Iterator", "ItemProcessor", "MaxConcurrency", "ItemReader",
                                    "ItemBatcher", "ResultWriter", "ToleratedFailurePercentage",
                                    "ToleratedFailureCount", "Label", "Retry", "Catch", NULL};

static const struct {
  const char *type;
  const char *const *fields;
  const char *const *jfields; /* with QueryLanguage JSONata */
  bool transition;   /* needs Next or End */
} kinds[] = {{"Pass", f_pass, j_pass, true},       {"Task", f_task, j_task, true},
             {"Choice", f_choice, j_choice, false},  {"Wait", f_wait, j_wait, true},
             {"Succeed", f_succeed, j_succeed, false}, {"Fail", f_fail, j_fail, false},
             {"Parallel", f_parallel, j_parallel, true}, {"Map", f_map, j_map, true}};

/* A JSONata field's value: every "{% expr %}" in it parses. */
static int check_jsonata(checker *c, json_t *v, const char *field)
{
  if (v == NULL)
    return 0;
  err pe = {0};
  if (flow__jsonata_check(v, &pe) != 0)
    return fail(c, "SCHEMA_VALIDATION_FAILED", field, "The value for the field '%s' must be a "
                "valid JSONata expression: %s", field, pe.msg);
  return 0;
}

/* Assign: variable names ("name.$" in JSONPath) and their values. */
static int check_assign(checker *c, json_t *a, bool ja)
{
  if (a == NULL)
    return 0;
  if (!json_is_object(a))
    return fail(c, "SCHEMA_VALIDATION_FAILED", "Assign", "The value for the field 'Assign' "
                "must be an object");
  const char *k;
  json_t *v;
  json_object_foreach(a, k, v) {
    size_t kl = strlen(k);
    if (!ja && kl > 2 && strcmp(k + kl - 2, ".$") == 0)
      kl -= 2;
    if (!flow__var_name_valid(k, kl) || (kl == 6 && strncmp(k, "states", 6) == 0))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "Assign", "The variable name '%.*s' is not "
                  "valid: it must start with a letter or '_', have only letters, digits and "
                  "'_', be at most %d characters long, and not be 'states'", (int)kl, k,
                  FLOW_MAX_VARIABLE_NAME);
  }
  return ja ? check_jsonata(c, a, "Assign") : check_template(c, a, "Assign");
}

static int check_machine(checker *c, json_t *m, bool top);

static int check_path(checker *c, json_t *st, const char *field, bool reference)
{
  json_t *v = json_object_get(st, field);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v) || !flow__path_valid(json_string_value(v), reference))
    return fail(c, "SCHEMA_VALIDATION_FAILED", field, "The value for the field '%s' must be a "
                "valid %s", field, reference ? "Reference Path" : "JSONPath");
  return 0;
}

static int check_template(checker *c, json_t *t, const char *field)
{
  if (json_is_array(t)) {
    size_t i;
    json_t *v;
    json_array_foreach(t, i, v) {
      int rc = check_template(c, v, field);
      if (rc != 0)
        return rc;
    }
    return 0;
  }
  if (!json_is_object(t))
    return 0;
  const char *k;
  json_t *v;
  json_object_foreach(t, k, v) {
    size_t kl = strlen(k);
    if (kl > 2 && strcmp(k + kl - 2, ".$") == 0) {
      const char *s = json_string_value(v);
      bool ok = s != NULL && (s[0] == '$' ? flow__path_valid(s, false) : flow__intrinsic_valid(s));
      if (!ok) {
        size_t n = enter(c, field);
        int rc = fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The value for the field '%s' must "
                      "be a valid JSONPath or a valid intrinsic function call", k);
        leave(c, n);
        return rc;
      }
    } else {
      int rc = check_template(c, v, field);
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

static int check_rule(checker *c, json_t *r, bool top, json_t *states)
{
  if (!json_is_object(r))
    return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "A Choice rule must be an object");
  if (top) {
    const char *next = json_string_value(json_object_get(r, "Next"));
    if (next == NULL)
      return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The field 'Next' is required but "
                  "was missing");
    if (json_object_get(states, next) == NULL)
      return fail(c, "MISSING_TRANSITION_TARGET", "Next", "Missing 'Next' target: %s", next);
  } else if (json_object_get(r, "Next") != NULL) {
    return fail(c, "SCHEMA_VALIDATION_FAILED", "Next", "Nested Choice rules cannot have 'Next'");
  }
  const char *k;
  json_t *v;
  int ops = 0;
  json_object_foreach(r, k, v) {
    if (strcmp(k, "Next") == 0 || strcmp(k, "Comment") == 0 || strcmp(k, "Variable") == 0 ||
        (top && strcmp(k, "Assign") == 0))
      continue;
    ops++;
    int t, rel;
    bool path;
    if (strcmp(k, "And") == 0 || strcmp(k, "Or") == 0) {
      if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(c, "SCHEMA_VALIDATION_FAILED", k, "'%s' must be a non-empty array", k);
      size_t i;
      json_t *x;
      json_array_foreach(v, i, x) {
        size_t n = enter_index(c, k, i);
        int rc = check_rule(c, x, false, states);
        leave(c, n);
        if (rc != 0)
          return rc;
      }
    } else if (strcmp(k, "Not") == 0) {
      size_t n = enter(c, k);
      int rc = check_rule(c, v, false, states);
      leave(c, n);
      if (rc != 0)
        return rc;
    } else if (flow__choice_operator(k, &t, &rel, &path)) {
      bool ok = path ? json_is_string(v) && flow__path_valid(json_string_value(v), false)
                     : t == 0 || t == 3 ? json_is_string(v)
                     : t == 1           ? json_is_number(v)
                                        : json_is_boolean(v);
      if (!ok)
        return fail(c, "SCHEMA_VALIDATION_FAILED", k, "The value of '%s' has the wrong type", k);
    } else if (in_list(k, flow__choice_tests)) {
      bool ok = strcmp(k, "StringMatches") == 0 ? json_is_string(v) : json_is_boolean(v);
      if (!ok)
        return fail(c, "SCHEMA_VALIDATION_FAILED", k, "The value of '%s' has the wrong type", k);
    } else {
      return fail(c, "SCHEMA_VALIDATION_FAILED", k, "The field '%s' is not supported by Step "
                  "Functions", k);
    }
  }
  if (ops != 1)
    return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "A Choice rule must have exactly one "
                "comparison operator or And, Or, Not");
  bool combinator = json_object_get(r, "And") || json_object_get(r, "Or") ||
                    json_object_get(r, "Not");
  json_t *var = json_object_get(r, "Variable");
  if (!combinator && (!json_is_string(var) || !flow__path_valid(json_string_value(var), false)))
    return fail(c, "SCHEMA_VALIDATION_FAILED", "Variable", "The field 'Variable' must be a "
                "valid JSONPath");
  return 0;
}

/* A JSONata Choice rule: Condition and Next (Assign, Output). */
static int check_ja_rule(checker *c, json_t *r, json_t *states)
{
  if (!json_is_object(r))
    return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "A Choice rule must be an object");
  const char *k;
  json_t *v;
  json_object_foreach(r, k, v) {
    if (strcmp(k, "Condition") != 0 && strcmp(k, "Next") != 0 && strcmp(k, "Comment") != 0 &&
        strcmp(k, "Assign") != 0 && strcmp(k, "Output") != 0)
      return fail(c, "SCHEMA_VALIDATION_FAILED", k, "The field '%s' is not supported for "
                  "states with QueryLanguage JSONata", k);
  }
  const char *next = json_string_value(json_object_get(r, "Next"));
  if (next == NULL)
    return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The field 'Next' is required but was "
                "missing");
  if (json_object_get(states, next) == NULL)
    return fail(c, "MISSING_TRANSITION_TARGET", "Next", "Missing 'Next' target: %s", next);
  json_t *cond = json_object_get(r, "Condition");
  if (!json_is_string(cond) && !json_is_boolean(cond))
    return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The field 'Condition' is required and "
                "must be a JSONata expression or a boolean");
  int rc;
  if ((rc = check_jsonata(c, cond, "Condition")) != 0 ||
      (rc = check_jsonata(c, json_object_get(r, "Output"), "Output")) != 0 ||
      (rc = check_assign(c, json_object_get(r, "Assign"), true)) != 0)
    return rc;
  return 0;
}

static int check_errors(checker *c, json_t *list, const char *field, json_t *states)
{
  if (list == NULL)
    return 0;
  if (!json_is_array(list))
    return fail(c, "SCHEMA_VALIDATION_FAILED", field, "'%s' must be an array", field);
  size_t i;
  json_t *x;
  json_array_foreach(list, i, x) {
    size_t n = enter_index(c, field, i);
    int rc = 0;
    json_t *eq = json_object_get(x, "ErrorEquals");
    if (!json_is_array(eq) || json_array_size(eq) == 0) {
      rc = fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The field 'ErrorEquals' is required and "
                "must be a non-empty array");
    } else {
      size_t j;
      json_t *name;
      json_array_foreach(eq, j, name) {
        if (rc == 0 && !json_is_string(name))
          rc = fail(c, "SCHEMA_VALIDATION_FAILED", "ErrorEquals", "error names are strings");
        else if (rc == 0 && strcmp(json_string_value(name), "States.ALL") == 0 &&
                 (json_array_size(eq) != 1 || i + 1 != json_array_size(list)))
          rc = fail(c, "SCHEMA_VALIDATION_FAILED", "ErrorEquals", "States.ALL must appear "
                    "alone in the last %s", strcmp(field, "Retry") == 0 ? "retrier" : "catcher");
      }
    }
    if (rc == 0 && strcmp(field, "Catch") == 0) {
      const char *next = json_string_value(json_object_get(x, "Next"));
      if (next == NULL)
        rc = fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The field 'Next' is required but was "
                  "missing");
      else if (json_object_get(states, next) == NULL)
        rc = fail(c, "MISSING_TRANSITION_TARGET", "Next", "Missing 'Next' target: %s", next);
      else if (c->ja && json_object_get(x, "ResultPath") != NULL)
        rc = fail(c, "SCHEMA_VALIDATION_FAILED", "ResultPath", "The field 'ResultPath' is not "
                  "supported for states with QueryLanguage JSONata");
      else if (!c->ja && json_object_get(x, "Output") != NULL)
        rc = fail(c, "SCHEMA_VALIDATION_FAILED", "Output", "The field 'Output' is not "
                  "supported for states with QueryLanguage JSONPath");
      else if ((rc = check_assign(c, json_object_get(x, "Assign"), c->ja)) == 0 &&
               (rc = check_jsonata(c, json_object_get(x, "Output"), "Output")) == 0)
        rc = check_path(c, x, "ResultPath", true);
    } else if (rc == 0) {
      json_t *ma = json_object_get(x, "MaxAttempts");
      json_t *is = json_object_get(x, "IntervalSeconds");
      json_t *br = json_object_get(x, "BackoffRate");
      json_t *md = json_object_get(x, "MaxDelaySeconds");
      json_t *js = json_object_get(x, "JitterStrategy");
      if (ma && (!json_is_integer(ma) || json_integer_value(ma) < 0 ||
                 json_integer_value(ma) > 99999999))
        rc = fail(c, "SCHEMA_VALIDATION_FAILED", "MaxAttempts", "MaxAttempts must be a "
                  "non-negative integer");
      else if (is && (!json_is_integer(is) || json_integer_value(is) < 1 ||
                      json_integer_value(is) > 99999999))
        rc = fail(c, "SCHEMA_VALIDATION_FAILED", "IntervalSeconds", "IntervalSeconds must be "
                  "a positive integer");
      else if (br && (!json_is_number(br) || json_number_value(br) < 1.0))
        rc = fail(c, "SCHEMA_VALIDATION_FAILED", "BackoffRate", "BackoffRate must be a number "
                  "of at least 1.0");
      else if (md && (!json_is_integer(md) || json_integer_value(md) < 1))
        rc = fail(c, "SCHEMA_VALIDATION_FAILED", "MaxDelaySeconds", "MaxDelaySeconds must be "
                  "a positive integer");
      else if (js && (!json_is_string(js) || (strcmp(json_string_value(js), "FULL") != 0 &&
                                              strcmp(json_string_value(js), "NONE") != 0)))
        rc = fail(c, "SCHEMA_VALIDATION_FAILED", "JitterStrategy", "JitterStrategy must be "
                  "FULL or NONE");
    }
    leave(c, n);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int check_state(checker *c, const char *name, json_t *st, json_t *states)
{
  if (!json_is_object(st))
    return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "A state must be an object");
  if (strlen(name) > 80)
    return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "State names are at most 80 characters");
  const char *type = json_string_value(json_object_get(st, "Type"));
  if (type == NULL)
    return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The field 'Type' is required but was "
                "missing");
  size_t kind = sizeof kinds / sizeof kinds[0];
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcmp(kinds[i].type, type) == 0)
      kind = i;
  if (kind == sizeof kinds / sizeof kinds[0])
    return fail(c, "SCHEMA_VALIDATION_FAILED", "Type", "The value for the field 'Type' must be "
                "one of [Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map]");
  const char *k;
  json_t *v;
  json_t *ql = json_object_get(st, "QueryLanguage");
  const char *qls = json_string_value(ql);
  if (ql != NULL && (qls == NULL || (strcmp(qls, "JSONPath") != 0 && strcmp(qls, "JSONata") != 0)))
    return fail(c, "SCHEMA_VALIDATION_FAILED", "QueryLanguage", "The value for the field "
                "'QueryLanguage' must be one of [JSONPath, JSONata]");
  bool ja = qls != NULL ? strcmp(qls, "JSONata") == 0 : c->ja_top;
  if (c->ja_top && !ja)
    return fail(c, "SCHEMA_VALIDATION_FAILED", "QueryLanguage", "A state cannot use JSONPath "
                "when the state machine's QueryLanguage is JSONata");
  c->ja = ja;
  bool assigns = kinds[kind].fields != f_succeed && kinds[kind].fields != f_fail;
  json_object_foreach(st, k, v) {
    const char *const *own = ja ? kinds[kind].jfields : kinds[kind].fields;
    const char *const *other = ja ? kinds[kind].fields : kinds[kind].jfields;
    if (strcmp(k, "QueryLanguage") == 0 || in_list(k, common) || in_list(k, own) ||
        (assigns && strcmp(k, "Assign") == 0))
      continue;
    if (in_list(k, other))
      return fail(c, "SCHEMA_VALIDATION_FAILED", k, "The field '%s' is not supported for "
                  "states with QueryLanguage %s", k, ja ? "JSONata" : "JSONPath");
    return fail(c, "SCHEMA_VALIDATION_FAILED", k, "Field '%s' is not supported", k);
  }
  if (kinds[kind].transition) {
    json_t *next = json_object_get(st, "Next");
    json_t *end = json_object_get(st, "End");
    if ((next != NULL) == (end != NULL && json_is_true(end)))
      return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "Exactly one of 'Next' or 'End' must be "
                  "set");
    if (next != NULL && !json_is_string(next))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "Next", "'Next' must be a string");
    if (next != NULL && json_object_get(states, json_string_value(next)) == NULL)
      return fail(c, "MISSING_TRANSITION_TARGET", "Next", "Missing 'Next' target: %s",
                  json_string_value(next));
  }
  int rc;
  if ((rc = check_path(c, st, "InputPath", false)) != 0 ||
      (rc = check_path(c, st, "OutputPath", false)) != 0 ||
      (rc = check_path(c, st, "ResultPath", true)) != 0 ||
      (rc = check_path(c, st, "ItemsPath", false)) != 0 ||
      (rc = check_template(c, json_object_get(st, "Parameters"), "Parameters")) != 0 ||
      (rc = ja ? check_jsonata(c, json_object_get(st, "ItemSelector"), "ItemSelector")
               : check_template(c, json_object_get(st, "ItemSelector"), "ItemSelector")) != 0 ||
      (rc = check_assign(c, json_object_get(st, "Assign"), ja)) != 0 ||
      (rc = check_jsonata(c, json_object_get(st, "Arguments"), "Arguments")) != 0 ||
      (rc = check_jsonata(c, json_object_get(st, "Output"), "Output")) != 0 ||
      (rc = check_jsonata(c, json_object_get(st, "Items"), "Items")) != 0 ||
      (ja && (rc = check_jsonata(c, json_object_get(st, "Error"), "Error")) != 0) ||
      (ja && (rc = check_jsonata(c, json_object_get(st, "Cause"), "Cause")) != 0) ||
      (rc = check_template(c, json_object_get(st, "ResultSelector"), "ResultSelector")) != 0 ||
      (rc = check_errors(c, json_object_get(st, "Retry"), "Retry", states)) != 0 ||
      (rc = check_errors(c, json_object_get(st, "Catch"), "Catch", states)) != 0)
    return rc;
  if (strcmp(type, "Task") == 0) {
    if (!json_is_string(json_object_get(st, "Resource")))
      return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The field 'Resource' is required but "
                  "was missing");
    const char *res = json_string_value(json_object_get(st, "Resource"));
    if (!str_starts(res, "arn:"))
      return fail(c, "INVALID_RESOURCE", "Resource", "The resource provided %s is not "
                  "recognized. The value is not a valid resource ARN, or the resource is not "
                  "available in this region.", res);
    json_t *ts = json_object_get(st, "TimeoutSeconds");
    json_t *hb = json_object_get(st, "HeartbeatSeconds");
    if (ja && json_is_string(ts) && (rc = check_jsonata(c, ts, "TimeoutSeconds")) != 0)
      return rc;
    if (ja && json_is_string(hb) && (rc = check_jsonata(c, hb, "HeartbeatSeconds")) != 0)
      return rc;
    if (ts && !(ja && json_is_string(ts)) && (!json_is_integer(ts) || json_integer_value(ts) < 1))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "TimeoutSeconds", "TimeoutSeconds must be a "
                  "positive integer");
    if (hb && !(ja && json_is_string(hb)) && (!json_is_integer(hb) || json_integer_value(hb) < 1))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "HeartbeatSeconds", "HeartbeatSeconds must "
                  "be a positive integer");
    if (json_is_integer(ts) && json_is_integer(hb) &&
        json_integer_value(hb) >= json_integer_value(ts))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "HeartbeatSeconds", "HeartbeatSeconds must "
                  "be smaller than TimeoutSeconds");
  } else if (strcmp(type, "Choice") == 0) {
    json_t *choices = json_object_get(st, "Choices");
    if (!json_is_array(choices) || json_array_size(choices) == 0)
      return fail(c, "SCHEMA_VALIDATION_FAILED", "Choices", "The field 'Choices' is required "
                  "and must be a non-empty array");
    size_t i;
    json_t *r;
    json_array_foreach(choices, i, r) {
      size_t n = enter_index(c, "Choices", i);
      rc = ja ? check_ja_rule(c, r, states) : check_rule(c, r, true, states);
      if (rc == 0 && !ja)
        rc = check_assign(c, json_object_get(r, "Assign"), false);
      leave(c, n);
      if (rc != 0)
        return rc;
    }
    json_t *def = json_object_get(st, "Default");
    if (def != NULL && (!json_is_string(def) ||
                        json_object_get(states, json_string_value(def)) == NULL))
      return fail(c, "MISSING_TRANSITION_TARGET", "Default", "Missing 'Default' target: %s",
                  json_is_string(def) ? json_string_value(def) : "?");
  } else if (strcmp(type, "Wait") == 0) {
    int n = (json_object_get(st, "Seconds") != NULL) +
            (json_object_get(st, "Timestamp") != NULL) +
            (json_object_get(st, "SecondsPath") != NULL) +
            (json_object_get(st, "TimestampPath") != NULL);
    if (n != 1)
      return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "A Wait state must have exactly one of "
                  "'Seconds', 'Timestamp', 'SecondsPath' or 'TimestampPath'");
    json_t *s = json_object_get(st, "Seconds");
    json_t *t = json_object_get(st, "Timestamp");
    if (ja && json_is_string(s))
      return check_jsonata(c, s, "Seconds");
    if (ja && json_is_string(t) && strncmp(json_string_value(t), "{%", 2) == 0)
      return check_jsonata(c, t, "Timestamp");
    if (s && (!json_is_integer(s) || json_integer_value(s) < 0))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "Seconds", "'Seconds' must be a non-negative "
                  "integer");
    int64_t ms;
    if (t && (!json_is_string(t) || !time_parse_iso8601(json_string_value(t), &ms)))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "Timestamp", "'Timestamp' must be an RFC3339 "
                  "timestamp");
    if ((rc = check_path(c, st, "SecondsPath", false)) != 0 ||
        (rc = check_path(c, st, "TimestampPath", false)) != 0)
      return rc;
  } else if (strcmp(type, "Parallel") == 0) {
    json_t *br = json_object_get(st, "Branches");
    if (!json_is_array(br) || json_array_size(br) == 0)
      return fail(c, "SCHEMA_VALIDATION_FAILED", "Branches", "The field 'Branches' is required "
                  "and must be a non-empty array");
    if (json_array_size(br) > FLOW_MAX_BRANCHES)
      return fail(c, "SCHEMA_VALIDATION_FAILED", "Branches", "at most %d branches",
                  FLOW_MAX_BRANCHES);
    size_t i;
    json_t *b;
    json_array_foreach(br, i, b) {
      size_t n = enter_index(c, "Branches", i);
      rc = check_machine(c, b, false);
      leave(c, n);
      if (rc != 0)
        return rc;
    }
  } else if (strcmp(type, "Map") == 0) {
    const char *field = json_object_get(st, "ItemProcessor") ? "ItemProcessor" : "Iterator";
    json_t *proc = json_object_get(st, field);
    if (proc == NULL)
      return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The field 'ItemProcessor' is required "
                  "but was missing");
    json_t *pc = json_object_get(proc, "ProcessorConfig");
    const char *mode = json_string_value(json_object_get(pc, "Mode"));
    if (mode != NULL && strcmp(mode, "INLINE") != 0 && strcmp(mode, "DISTRIBUTED") != 0)
      return fail(c, "SCHEMA_VALIDATION_FAILED", "ItemProcessor/ProcessorConfig/Mode",
                  "The value for the field 'Mode' must be INLINE or DISTRIBUTED");
    json_t *ir = json_object_get(st, "ItemReader");
    const char *irr = json_string_value(json_object_get(ir, "Resource"));
    if (ir != NULL && (irr == NULL || !str_ends(irr, "s3:getObject")))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "ItemReader/Resource", "the ItemReader "
                  "resource must be arn:aws:states:::s3:getObject (listObjectsV2 is not "
                  "supported)");
    json_t *rw = json_object_get(st, "ResultWriter");
    const char *rwr = json_string_value(json_object_get(rw, "Resource"));
    if (rw != NULL && (rwr == NULL || !str_ends(rwr, "s3:putObject")))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "ResultWriter/Resource", "the ResultWriter "
                  "resource must be arn:aws:states:::s3:putObject");
    json_t *tp = json_object_get(st, "ToleratedFailurePercentage");
    if (tp && (!json_is_number(tp) || json_number_value(tp) < 0 || json_number_value(tp) > 100))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "ToleratedFailurePercentage",
                  "'ToleratedFailurePercentage' must be a number from 0 to 100");
    json_t *tcn = json_object_get(st, "ToleratedFailureCount");
    if (tcn && (!json_is_integer(tcn) || json_integer_value(tcn) < 0))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "ToleratedFailureCount",
                  "'ToleratedFailureCount' must be a non-negative integer");
    json_t *mc = json_object_get(st, "MaxConcurrency");
    if (mc && (!json_is_integer(mc) || json_integer_value(mc) < 0))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "MaxConcurrency", "'MaxConcurrency' must be "
                  "a non-negative integer");
    size_t n = enter(c, field);
    json_t *copy = json_copy(proc);
    json_object_del(copy, "ProcessorConfig");
    rc = check_machine(c, copy, false);
    json_decref(copy);
    leave(c, n);
    if (rc != 0)
      return rc;
  } else if (strcmp(type, "Fail") == 0) {
    if ((rc = check_path(c, st, "ErrorPath", false)) != 0 ||
        (rc = check_path(c, st, "CausePath", false)) != 0)
      return rc;
  } else if (strcmp(type, "Pass") == 0 && json_object_get(st, "Result") != NULL &&
             json_object_get(st, "Parameters") != NULL) {
    /* allowed by AWS: Result wins */
  }
  return 0;
}

/* Targets a state may go to, for the reachability walk. */
static void targets(json_t *st, const char **out, size_t *n, size_t cap)
{
  const char *t = json_string_value(json_object_get(st, "Next"));
  if (t != NULL && *n < cap)
    out[(*n)++] = t;
  t = json_string_value(json_object_get(st, "Default"));
  if (t != NULL && *n < cap)
    out[(*n)++] = t;
  json_t *list[] = {json_object_get(st, "Choices"), json_object_get(st, "Catch")};
  for (size_t l = 0; l < 2; l++) {
    size_t i;
    json_t *x;
    json_array_foreach(list[l], i, x) {
      t = json_string_value(json_object_get(x, "Next"));
      if (t != NULL && *n < cap)
        out[(*n)++] = t;
    }
  }
}

static int check_machine(checker *c, json_t *m, bool top)
{
  if (!json_is_object(m))
    return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The definition must be a JSON object");
  const char *k;
  json_t *v;
  json_object_foreach(m, k, v) {
    if (strcmp(k, "StartAt") != 0 && strcmp(k, "States") != 0 && strcmp(k, "Comment") != 0 &&
        !(top && (strcmp(k, "Version") == 0 || strcmp(k, "TimeoutSeconds") == 0 ||
                  strcmp(k, "QueryLanguage") == 0)))
      return fail(c, "SCHEMA_VALIDATION_FAILED", k, "Field '%s' is not supported", k);
  }
  if (top) {
    json_t *ql = json_object_get(m, "QueryLanguage");
    const char *qls = json_string_value(ql);
    if (ql != NULL && (qls == NULL || (strcmp(qls, "JSONPath") != 0 &&
                                       strcmp(qls, "JSONata") != 0)))
      return fail(c, "SCHEMA_VALIDATION_FAILED", "QueryLanguage", "The value for the field "
                  "'QueryLanguage' must be one of [JSONPath, JSONata]");
    c->ja_top = qls != NULL && strcmp(qls, "JSONata") == 0;
  }
  json_t *states = json_object_get(m, "States");
  const char *start = json_string_value(json_object_get(m, "StartAt"));
  if (start == NULL)
    return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The field 'StartAt' is required but was "
                "missing");
  if (!json_is_object(states) || json_object_size(states) == 0)
    return fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "The field 'States' is required and must "
                "be a non-empty object");
  if (json_object_get(states, start) == NULL)
    return fail(c, "MISSING_TRANSITION_TARGET", "StartAt", "Missing 'Next' target: %s", start);
  json_t *ts = json_object_get(m, "TimeoutSeconds");
  if (ts && (!json_is_integer(ts) || json_integer_value(ts) < 1))
    return fail(c, "SCHEMA_VALIDATION_FAILED", "TimeoutSeconds", "TimeoutSeconds must be a "
                "positive integer");
  size_t base = enter(c, "States");
  json_object_foreach(states, k, v) {
    if (++c->nstates > FLOW_MAX_STATES) {
      int rc = fail(c, "SCHEMA_VALIDATION_FAILED", NULL, "more than %d states",
                    FLOW_MAX_STATES);
      leave(c, base);
      return rc;
    }
    size_t n = enter(c, k);
    int rc = check_state(c, k, v, states);
    leave(c, n);
    if (rc != 0) {
      leave(c, base);
      return rc;
    }
  }
  /* reachability: every state can be reached from StartAt */
  json_t *seen = json_object();
  const char **stack = xmalloc((json_object_size(states) * 4 + 8) * sizeof *stack);
  size_t sp = 0;
  stack[sp++] = start;
  json_object_set_new(seen, start, json_true());
  while (sp > 0) {
    const char *name = stack[--sp];
    const char *next[512];
    size_t nn = 0;
    targets(json_object_get(states, name), next, &nn, 512);
    for (size_t i = 0; i < nn; i++) {
      if (json_object_get(seen, next[i]) == NULL) {
        json_object_set_new(seen, next[i], json_true());
        stack[sp++] = next[i];
      }
    }
  }
  free(stack);
  int rc = 0;
  json_object_foreach(states, k, v) {
    if (json_object_get(seen, k) == NULL) {
      size_t n = enter(c, k);
      rc = fail(c, "UNREACHABLE_STATE", NULL, "State '%s' is not reachable", k);
      leave(c, n);
      break;
    }
  }
  json_decref(seen);
  leave(c, base);
  return rc;
}

int flow_definition_check(const char *text, size_t len, json_t **out, err *e)
{
  if (out != NULL)
    *out = NULL;
  if (len > FLOW_MAX_DEFINITION)
    return err_set(e, FLOW_ERR_DEFINITION, "Invalid State Machine Definition: "
                   "'SCHEMA_VALIDATION_FAILED: the definition is larger than %u bytes'",
                   FLOW_MAX_DEFINITION);
  json_error_t je;
  json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (doc == NULL)
    return err_set(e, FLOW_ERR_DEFINITION, "Invalid State Machine Definition: "
                   "'INVALID_JSON_DESCRIPTION: %s at line %d, column %d'", je.text, je.line,
                   je.column);
  checker c = {.e = e};
  int rc = check_machine(&c, doc, true);
  if (rc != 0 || out == NULL)
    json_decref(doc);
  else
    *out = doc;
  return rc;
}
