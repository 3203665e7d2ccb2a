/* events/invoke_config.c -- what happens to a function's asynchronous
 * invocations: its event invoke configurations (MaximumRetryAttempts,
 * MaximumEventAgeInSeconds, on-success and on-failure destinations, per
 * qualifier), its dead-letter target (DeadLetterConfig), and the delivery
 * of each outcome to them in Lambda's formats.
 *
 * Why here: fn runs the invocations and retries them (fn/invoke.c); which
 * queue, topic or function hears about the result is event wiring, and the
 * records delivered are payloads like the others in record.c.
 *
 * Records in the meta environment:
 *   c/NAME:QUALIFIER   {"retries":n,"age":s,"success":arn,"failure":arn,
 *                       "modified":ms}   (QUALIFIER "$LATEST" when none)
 *   d/NAME             the dead-letter target ARN
 *
 * Invariants:
 *   (1) Stored values passed the checks Lambda makes (ranges, ARN kinds).
 *   (2) An outcome is delivered after the invocation ended for good: on
 *       success once, on failure once after the last retry (or when the
 *       event got too old).
 *
 * Start reading at events_invoke_config_put().
 */
#include "events/internal.h"

#include "base/mem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESTINATION_ATTEMPTS 3

int events__function_resolve(events_system *ev, const char *function, const char *qualifier,
                             arena *a, const char **name, const char **qual, const char **arn,
                             err *e)
{
  if (ev->fn == NULL)
    return err_set(e, ERR_NOT_FOUND, "Function not found: %s (functions are disabled)",
                   function);
  int rc = fn_name_parse(function, qualifier, a, name, qual, e);
  if (rc != 0)
    return rc;
  fn_config cfg;
  rc = fn_function_get(ev->fn, *name, *qual, a, &cfg, e);
  if (rc != 0)
    return rc;
  *arn = *qual != NULL ? arena_sprintf(a, "arn:aws:lambda:%s:%s:function:%s:%s", EVENTS_REGION,
                                       EVENTS_ACCOUNT, *name, *qual)
                       : arena_sprintf(a, "arn:aws:lambda:%s:%s:function:%s", EVENTS_REGION,
                                       EVENTS_ACCOUNT, *name);
  return 0;
}

static const char *config_key(arena *a, const char *name, const char *qual)
{
  return arena_sprintf(a, "c/%s:%s", name, qual != NULL ? qual : "$LATEST");
}

static int check_destination(const char *arn, const char *which, err *e)
{
  if (arn == NULL || *arn == '\0')
    return 0;
  if (str_starts(arn, "arn:aws:sqs:") || str_starts(arn, "arn:aws:sns:") ||
      str_starts(arn, "arn:aws:lambda:"))
    return 0;
  return err_set(e, ERR_INVALID, "The provided destination config %s '%s' is invalid: tarn "
                                 "delivers to SQS queues, SNS topics and Lambda functions",
                 which, arn);
}

static int decode(const char *json, const char *function_arn, arena *a,
                  events_invoke_config *out, err *e)
{
  json_error_t je;
  json_t *o = json_loads(json, 0, &je);
  if (o == NULL)
    return err_set(e, ERR_INTERNAL, "corrupt event invoke configuration");
  memset(out, 0, sizeof *out);
  out->function_arn = function_arn;
  json_t *r = json_object_get(o, "retries");
  json_t *g = json_object_get(o, "age");
  out->max_retries = json_is_integer(r) ? (int)json_integer_value(r) : -1;
  out->max_age_s = json_is_integer(g) ? (int)json_integer_value(g) : -1;
  const char *s = json_string_value(json_object_get(o, "success"));
  const char *f = json_string_value(json_object_get(o, "failure"));
  out->on_success = s != NULL ? arena_strdup(a, s) : NULL;
  out->on_failure = f != NULL ? arena_strdup(a, f) : NULL;
  out->modified_ms = (int64_t)json_integer_value(json_object_get(o, "modified"));
  json_decref(o);
  return 0;
}

static const char *qualified_arn(arena *a, const char *name, const char *qual)
{
  return arena_sprintf(a, "arn:aws:lambda:%s:%s:function:%s:%s", EVENTS_REGION, EVENTS_ACCOUNT,
                       name, qual != NULL ? qual : "$LATEST");
}

int events_invoke_config_put(events_system *ev, const char *function, const char *qualifier,
                             const events_invoke_config *c, bool merge, arena *a,
                             events_invoke_config *out, err *e)
{
  const char *name = NULL;
  const char *qual = NULL;
  const char *arn = NULL;
  int rc = events__function_resolve(ev, function, qualifier, a, &name, &qual, &arn, e);
  if (rc != 0)
    return rc;
  if (c->max_retries != -1 && (c->max_retries < 0 || c->max_retries > 2))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%d' at "
                                   "'maximumRetryAttempts' failed to satisfy constraint: Member "
                                   "must have value less than or equal to 2", c->max_retries);
  if (c->max_age_s != -1 && (c->max_age_s < 60 || c->max_age_s > 21600))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%d' at "
                                   "'maximumEventAgeInSeconds' failed to satisfy constraint: "
                                   "Member must have value between 60 and 21600", c->max_age_s);
  if ((rc = check_destination(c->on_success, "OnSuccess", e)) != 0 ||
      (rc = check_destination(c->on_failure, "OnFailure", e)) != 0)
    return rc;
  const char *key = config_key(a, name, qual);
  events_invoke_config cur = { .max_retries = -1, .max_age_s = -1 };
  if (merge) {
    const char *json = NULL;
    rc = events__meta_get(ev, key, a, &json, e);
    if (rc != 0)
      return rc;
    if (json == NULL)
      return err_set(e, ERR_NOT_FOUND, "The function %s doesn't have an EventInvokeConfig",
                     qualified_arn(a, name, qual));
    rc = decode(json, NULL, a, &cur, e);
    if (rc != 0)
      return rc;
  }
  if (!merge || c->max_retries != -1)
    cur.max_retries = c->max_retries;
  if (!merge || c->max_age_s != -1)
    cur.max_age_s = c->max_age_s;
  if (!merge || c->on_success != NULL)
    cur.on_success = c->on_success != NULL && *c->on_success ? c->on_success : NULL;
  if (!merge || c->on_failure != NULL)
    cur.on_failure = c->on_failure != NULL && *c->on_failure ? c->on_failure : NULL;
  cur.modified_ms = time_now_ms();
  json_t *o = json_pack("{s:I}", "modified", (json_int_t)cur.modified_ms);
  if (cur.max_retries != -1)
    json_object_set_new(o, "retries", json_integer(cur.max_retries));
  if (cur.max_age_s != -1)
    json_object_set_new(o, "age", json_integer(cur.max_age_s));
  if (cur.on_success != NULL)
    json_object_set_new(o, "success", json_string(cur.on_success));
  if (cur.on_failure != NULL)
    json_object_set_new(o, "failure", json_string(cur.on_failure));
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (text == NULL)
    mem_out_of_memory();
  rc = events__meta_write(ev, key, text, e);
  free(text);
  if (rc != 0)
    return rc;
  *out = cur;
  out->function_arn = qualified_arn(a, name, qual);
  return 0;
}

int events_invoke_config_get(events_system *ev, const char *function, const char *qualifier,
                             arena *a, events_invoke_config *out, err *e)
{
  const char *name = NULL;
  const char *qual = NULL;
  const char *arn = NULL;
  int rc = events__function_resolve(ev, function, qualifier, a, &name, &qual, &arn, e);
  if (rc != 0)
    return rc;
  const char *json = NULL;
  rc = events__meta_get(ev, config_key(a, name, qual), a, &json, e);
  if (rc != 0)
    return rc;
  if (json == NULL)
    return err_set(e, ERR_NOT_FOUND, "The function %s doesn't have an EventInvokeConfig",
                   qualified_arn(a, name, qual));
  return decode(json, qualified_arn(a, name, qual), a, out, e);
}

int events_invoke_config_delete(events_system *ev, const char *function, const char *qualifier,
                                err *e)
{
  arena *a = arena_new();
  events_invoke_config cur;
  int rc = events_invoke_config_get(ev, function, qualifier, a, &cur, e);
  const char *name = NULL;
  const char *qual = NULL;
  if (rc == 0)
    rc = fn_name_parse(function, qualifier, a, &name, &qual, e);
  if (rc == 0)
    rc = events__meta_write(ev, config_key(a, name, qual), NULL, e);
  arena_free(a);
  return rc;
}

int events_invoke_config_list(events_system *ev, const char *function, arena *a,
                              events_invoke_config **out, size_t *n, err *e)
{
  *out = NULL;
  *n = 0;
  const char *name = NULL;
  const char *qual = NULL;
  const char *arn = NULL;
  int rc = events__function_resolve(ev, function, NULL, a, &name, &qual, &arn, e);
  if (rc != 0)
    return rc;
  str_pair *rows = NULL;
  size_t nrows = 0;
  rc = events__meta_scan(ev, arena_sprintf(a, "c/%s:", name), a, &rows, &nrows, e);
  if (rc != 0)
    return rc;
  events_invoke_config *list = arena_alloc(a, (nrows + 1) * sizeof *list);
  size_t prefix = strlen(name) + 3;
  for (size_t i = 0; i < nrows; i++) {
    rc = decode(rows[i].value, qualified_arn(a, name, rows[i].name + prefix), a, &list[i], e);
    if (rc != 0)
      return rc;
  }
  *out = list;
  *n = nrows;
  return 0;
}

/* ---- dead-letter targets ---- */

int events_dead_letter_set(events_system *ev, const char *function, const char *target_arn,
                           err *e)
{
  arena *a = arena_new();
  const char *name = NULL;
  const char *qual = NULL;
  int rc = fn_name_parse(function, NULL, a, &name, &qual, e);
  if (rc == 0 && target_arn != NULL && *target_arn != '\0' &&
      !str_starts(target_arn, "arn:aws:sqs:") && !str_starts(target_arn, "arn:aws:sns:"))
    rc = err_set(e, ERR_INVALID, "The provided target ARN '%s' is invalid: a dead-letter "
                                 "target is an SQS queue or an SNS topic", target_arn);
  if (rc == 0)
    rc = events__meta_write(ev, arena_sprintf(a, "d/%s", name),
                            target_arn != NULL && *target_arn ? target_arn : NULL, e);
  arena_free(a);
  return rc;
}

int events_dead_letter_get(events_system *ev, const char *function, arena *a,
                           const char **target_arn, err *e)
{
  *target_arn = NULL;
  const char *name = NULL;
  const char *qual = NULL;
  int rc = fn_name_parse(function, NULL, a, &name, &qual, e);
  if (rc == 0)
    rc = events__meta_get(ev, arena_sprintf(a, "d/%s", name), a, target_arn, e);
  return rc;
}

/* ---- outcomes ---- */

/* Delivers msg to arn, retrying a few times; records the result. */
static const char *deliver_retrying(events_system *ev, const char *arn, const char *subject,
                                    const char *msg, arena *a)
{
  for (unsigned attempt = 1;; attempt++) {
    err e = { 0 };
    bool gone = false;
    int rc = events__deliver(ev, arn, subject, msg, &gone, &e);
    if (rc == 0)
      return "delivered";
    if (gone || attempt == DESTINATION_ATTEMPTS)
      return arena_sprintf(a, "dropped: %s", e.msg);
    struct timespec ts = { (time_t)(events__retry_delay(ev, attempt) / 1000),
                           (long)(events__retry_delay(ev, attempt) % 1000) * 1000000 };
    nanosleep(&ts, NULL);
  }
}

/* The dead-letter message: the event, with Lambda's three attributes. */
static const char *deliver_dead_letter(events_system *ev, const char *arn,
                                       const events_outcome *o, arena *a)
{
  if (ev->q == NULL)
    return "dropped: queues are not running";
  const char *msg = o->function_error != NULL ? o->function_error : "EventAgeExceeded";
  queue_attr attrs[3] = {
    { .name = "RequestID", .type = "String", .value = o->request_id },
    { .name = "ErrorCode", .type = "Number", .value = arena_sprintf(a, "%d", o->status ? o->status : 200) },
    { .name = "ErrorMessage", .type = "String", .value = msg },
  };
  err e = { 0 };
  int rc;
  if (str_starts(arn, "arn:aws:sqs:")) {
    queue_send m = { .body = o->payload != NULL ? o->payload : "{}",
                     .body_len = o->payload != NULL ? o->payload_len : 2, .attrs = attrs,
                     .nattrs = 3, .delay_seconds = -1 };
    queue_sent sent;
    rc = queue_message_send(ev->q, arn, &m, &sent, &e);
  } else {
    queue_publish p = { .message = o->payload != NULL ? o->payload : "{}",
                        .len = o->payload != NULL ? o->payload_len : 2, .attrs = attrs,
                        .nattrs = 3 };
    char id[QUEUE_ID_MAX];
    char seq[24];
    rc = queue_topic_publish(ev->q, arn, &p, id, seq, &e);
  }
  return rc == 0 ? "delivered" : arena_sprintf(a, "dropped: %s", e.msg);
}

/* What fn asks before retrying: the limits of the invoked qualifier. */
void events__async_policy(events_system *ev, const char *name, const char *qualifier,
                          int *max_retries, int *max_age_s)
{
  *max_retries = -1;
  *max_age_s = -1;
  arena *a = arena_new();
  const char *json = NULL;
  err e = { 0 };
  events_invoke_config c;
  if (events__meta_get(ev, config_key(a, name, qualifier), a, &json, &e) == 0 && json != NULL &&
      decode(json, NULL, a, &c, &e) == 0) {
    *max_retries = c.max_retries;
    *max_age_s = c.max_age_s;
  }
  arena_free(a);
}

void events__async_outcome(events_system *ev, const char *name, const char *qualifier,
                           const events_outcome *o)
{
  arena *a = arena_new();
  const char *json = NULL;
  err e = { 0 };
  events_invoke_config c = { .max_retries = -1, .max_age_s = -1 };
  if (events__meta_get(ev, config_key(a, name, qualifier), a, &json, &e) == 0 && json != NULL)
    decode(json, NULL, a, &c, &e);
  bool ok = strcmp(o->condition, "Success") == 0;
  const char *dest = ok ? c.on_success : c.on_failure;
  const char *dlq = NULL;
  if (!ok)
    events__meta_get(ev, arena_sprintf(a, "d/%s", name), a, &dlq, &e);
  if (dest == NULL && dlq == NULL && ok) {
    arena_free(a);
    return;  /* nothing to tell anyone; successes are not logged */
  }
  char when[25];
  time_format_iso8601_ms(o->time_ms, when);
  json_t *line = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "type", "async", "time", when,
                           "function", o->function_arn, "requestId", o->request_id, "condition",
                           o->condition, "attempts", o->attempts);
  if (dest != NULL) {
    const char *rec = events__invocation_record(a, o);
    const char *result = deliver_retrying(ev, dest, "Lambda invocation record", rec, a);
    json_object_set_new(line, ok ? "onSuccess" : "onFailure",
                        json_pack("{s:s, s:s}", "arn", dest, "result", result));
  }
  if (dlq != NULL) {
    const char *result = deliver_dead_letter(ev, dlq, o, a);
    json_object_set_new(line, "deadLetter", json_pack("{s:s, s:s}", "arn", dlq, "result", result));
  }
  char *text = json_dumps(line, JSON_COMPACT);
  if (text != NULL)
    events__watch_add(ev, text);
  free(text);
  json_decref(line);
  arena_free(a);
}
