/* api/lambda_events.c -- Lambda's event source mapping and event invoke
 * config operations, and DeadLetterConfig, in Lambda's REST-JSON.
 *
 * Operations:
 *   POST   /2015-03-31/event-source-mappings/             CreateEventSourceMapping (202)
 *   GET    /2015-03-31/event-source-mappings/             ListEventSourceMappings
 *   GET    /2015-03-31/event-source-mappings/UUID         GetEventSourceMapping
 *   PUT    /2015-03-31/event-source-mappings/UUID         UpdateEventSourceMapping (202)
 *   DELETE /2015-03-31/event-source-mappings/UUID         DeleteEventSourceMapping (202)
 *   PUT    /2019-09-25/functions/F/event-invoke-config    PutFunctionEventInvokeConfig
 *   POST   /2019-09-25/functions/F/event-invoke-config    UpdateFunctionEventInvokeConfig
 *   GET    /2019-09-25/functions/F/event-invoke-config    GetFunctionEventInvokeConfig
 *   DELETE /2019-09-25/functions/F/event-invoke-config    DeleteFunctionEventInvokeConfig (204)
 *   GET    /2019-09-25/functions/F/event-invoke-config/list  ListFunctionEventInvokeConfigs
 * Shapes and names follow botocore's lambda model; LastModified is epoch
 * seconds (a number) as Lambda sends it.
 *
 * Why apart from lambda.c: these are the events part's records, and
 * lambda.c belongs to the functions; it routes here with a three-line hook
 * (lambda_events.h).
 *
 * Invariants:
 *   (1) Input is checked completely before the events part is called.
 *   (2) Errors are returned, never written here: lambda.c's lambda_error
 *       writes every Lambda error the same way.
 *
 * Start reading at the ops[] table and lambda_events_handle().
 */
#include "api/lambda_events.h"

#include "api/lambda_json.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (1u << 20)
#define ESM_PREFIX "/2015-03-31/event-source-mappings"
#define EIC_PREFIX "/2019-09-25/functions/"
#define EIC_SUFFIX "/event-invoke-config"

static _Atomic(events_system *) attached;

void lambda_events_attach(events_system *ev)
{
  atomic_store(&attached, ev);
}

enum route {
  R_NONE,
  R_ESM_ROOT,      /* /event-source-mappings[/] */
  R_ESM_ONE,       /* /event-source-mappings/UUID */
  R_EIC,           /* /functions/F/event-invoke-config */
  R_EIC_LIST,      /* /functions/F/event-invoke-config/list */
};

/* Parses the path; *arg gets the UUID or the function name (arena). */
static enum route route_of(const http_req *r, const char **arg)
{
  const char *p = r->path;
  *arg = NULL;
  if (str_starts(p, ESM_PREFIX)) {
    const char *rest = p + strlen(ESM_PREFIX);
    if (*rest == '\0' || strcmp(rest, "/") == 0)
      return R_ESM_ROOT;
    if (rest[0] == '/' && strchr(rest + 1, '/') == NULL) {
      *arg = rest + 1;
      return R_ESM_ONE;
    }
    return R_NONE;
  }
  if (str_starts(p, EIC_PREFIX)) {
    const char *f = p + strlen(EIC_PREFIX);
    const char *slash = strchr(f, '/');
    if (slash == NULL || slash == f)
      return R_NONE;
    enum route rt = R_NONE;
    if (strcmp(slash, EIC_SUFFIX) == 0)
      rt = R_EIC;
    else if (strcmp(slash, EIC_SUFFIX "/list") == 0)
      rt = R_EIC_LIST;
    if (rt != R_NONE)
      *arg = arena_strndup(r->arena, f, (size_t)(slash - f));
    return rt;
  }
  return R_NONE;
}

bool lambda_events_route(const http_req *r)
{
  const char *arg;
  return route_of(r, &arg) != R_NONE;
}

/* ---- JSON ---- */

static double seconds(int64_t ms)
{
  return (double)ms / 1000.0;
}

/* ---- event source mappings ---- */

static json_t *mapping_json(const events_mapping *m)
{
  json_t *types = json_array();
  if (m->report_failures)
    json_array_append_new(types, json_string("ReportBatchItemFailures"));
  json_t *o = json_pack(
      "{s:s, s:i, s:i, s:s, s:s, s:f, s:s, s:s, s:s, s:o}", "UUID", m->uuid, "BatchSize",
      (int)m->batch_size, "MaximumBatchingWindowInSeconds", (int)m->window_s, "EventSourceArn",
      m->source_arn, "FunctionArn", m->function_arn, "LastModified", seconds(m->modified_ms),
      "LastProcessingResult", m->last_result, "State", m->state, "StateTransitionReason",
      "USER_INITIATED", "FunctionResponseTypes", types);
  char arn[128];
  snprintf(arn, sizeof arn, "arn:aws:lambda:%s:%s:event-source-mapping:%s", EVENTS_REGION,
           EVENTS_ACCOUNT, m->uuid);
  json_object_set_new(o, "EventSourceMappingArn", json_string(arn));
  if (m->max_concurrency != 0)
    json_object_set_new(o, "ScalingConfig",
                        json_pack("{s:i}", "MaximumConcurrency", (int)m->max_concurrency));
  if (m->starting_position != NULL)
    json_object_update_new(o, json_pack("{s:s, s:b, s:i, s:i, s:i}", "StartingPosition",
                                        m->starting_position, "BisectBatchOnFunctionError",
                                        m->bisect, "MaximumRetryAttempts", m->max_retries,
                                        "ParallelizationFactor", 1,
                                        "MaximumRecordAgeInSeconds", -1));
  return o;
}

/* The members Create and Update share. */
static int mapping_params(json_t *b, events_mapping_params *p, err *e)
{
  int rc;
  bool has;
  long v;
  if ((rc = lambda_json_string(b, "FunctionName", &p->function, e)) != 0)
    return rc;
  if ((rc = lambda_json_int(b, "BatchSize", 1, EVENTS_MAX_BATCH, &has, &v, e)) != 0)
    return rc;
  p->has_batch_size = has;
  p->batch_size = (uint32_t)v;
  if ((rc = lambda_json_int(b, "MaximumBatchingWindowInSeconds", 0, EVENTS_MAX_WINDOW, &has, &v,
                            e)) != 0)
    return rc;
  p->has_window = has;
  p->window_s = (uint32_t)v;
  json_t *en = json_object_get(b, "Enabled");
  if (en != NULL && !json_is_null(en)) {
    if (!json_is_boolean(en))
      return err_set(e, ERR_INVALID_REQUEST, "'Enabled' must be a boolean");
    p->has_enabled = true;
    p->enabled = json_is_true(en);
  }
  json_t *types = json_object_get(b, "FunctionResponseTypes");
  if (types != NULL && !json_is_null(types)) {
    if (!json_is_array(types))
      return err_set(e, ERR_INVALID_REQUEST, "'FunctionResponseTypes' must be a list");
    p->has_response_types = true;
    for (size_t i = 0; i < json_array_size(types); i++) {
      const char *t = json_string_value(json_array_get(types, i));
      if (t == NULL || strcmp(t, "ReportBatchItemFailures") != 0)
        return err_set(e, ERR_INVALID, "1 validation error detected: Value at "
                                       "'functionResponseTypes' failed to satisfy constraint: "
                                       "Member must satisfy enum value set: "
                                       "[ReportBatchItemFailures]");
      p->report_failures = true;
    }
  }
  json_t *sc = json_object_get(b, "ScalingConfig");
  if (sc != NULL && !json_is_null(sc)) {
    if ((rc = lambda_json_int(sc, "MaximumConcurrency", 2, EVENTS_MAX_CONCURRENCY, &has, &v,
                              e)) != 0)
      return rc;
    p->has_concurrency = true;
    p->max_concurrency = has ? (uint32_t)v : 0;
  }
  /* Kinesis sources (events/mapping.c refuses them for queues) */
  if ((rc = lambda_json_string(b, "StartingPosition", &p->starting_position, e)) != 0)
    return rc;
  json_t *ts = json_object_get(b, "StartingPositionTimestamp");
  if (json_is_number(ts))
    p->starting_timestamp_ms = (int64_t)(json_number_value(ts) * 1000.0);
  json_t *bisect = json_object_get(b, "BisectBatchOnFunctionError");
  if (bisect != NULL && !json_is_null(bisect)) {
    if (!json_is_boolean(bisect))
      return err_set(e, ERR_INVALID_REQUEST, "'BisectBatchOnFunctionError' must be a boolean");
    p->has_bisect = true;
    p->bisect = json_is_true(bisect);
  }
  if ((rc = lambda_json_int(b, "MaximumRetryAttempts", -1, 10000, &has, &v, e)) != 0)
    return rc;
  p->has_retries = has;
  p->max_retries = (int)v;
  json_t *fc = json_object_get(b, "FilterCriteria");
  json_t *filters = json_object_get(fc, "Filters");
  if (json_array_size(filters) > 0)
    return err_set(e, ERR_INVALID, "tarn does not support FilterCriteria on event source "
                                   "mappings yet");
  return 0;
}

static int esm_create(events_system *ev, http_req *r, const char *arg, err *e)
{
  json_t *b = NULL;
  int rc = lambda_json_body(r, &b, e);
  if (rc != 0)
    return rc;
  events_mapping_params p = {0};
  rc = mapping_params(b, &p, e);
  if (rc == 0)
    rc = lambda_json_string(b, "EventSourceArn", &p.source_arn, e);
  if (rc == 0 && p.source_arn == NULL)
    rc = err_set(e, ERR_INVALID, "EventSourceArn is required");
  if (rc == 0 && p.function == NULL)
    rc = err_set(e, ERR_INVALID, "FunctionName is required");
  events_mapping m;
  if (rc == 0)
    rc = events_mapping_create(ev, &p, r->arena, &m, e);
  if (rc == 0)
    lambda_json_send(r, 202, mapping_json(&m));
  json_decref(b);
  return rc;
}

static int esm_list(events_system *ev, http_req *r, const char *arg, err *e)
{
  const char *mi = http_req_param(r, "MaxItems");
  long max = mi != NULL ? strtol(mi, NULL, 10) : 100;
  if (max < 1 || max > 10000)
    return err_set(e, ERR_INVALID, "MaxItems must be between 1 and 10000");
  events_mapping *list = NULL;
  size_t n = 0;
  const char *next = NULL;
  int rc = events_mapping_list(ev, http_req_param(r, "EventSourceArn"),
                               http_req_param(r, "FunctionName"), http_req_param(r, "Marker"),
                               (size_t)max, r->arena, &list, &n, &next, e);
  if (rc != 0)
    return rc;
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, mapping_json(&list[i]));
  lambda_json_send_page(r, "EventSourceMappings", arr, next);
  return 0;
}

static int esm_get(events_system *ev, http_req *r, const char *uuid, err *e)
{
  events_mapping m;
  int rc = events_mapping_get(ev, uuid, r->arena, &m, e);
  if (rc == 0)
    lambda_json_send(r, 200, mapping_json(&m));
  return rc;
}

static int esm_delete(events_system *ev, http_req *r, const char *uuid, err *e)
{
  events_mapping m;
  int rc = events_mapping_delete(ev, uuid, r->arena, &m, e);
  if (rc == 0)
    lambda_json_send(r, 202, mapping_json(&m));
  return rc;
}

static int esm_update(events_system *ev, http_req *r, const char *uuid, err *e)
{
  json_t *b = NULL;
  int rc = lambda_json_body(r, &b, e);
  if (rc != 0)
    return rc;
  events_mapping_params p = {0};
  events_mapping m;
  rc = mapping_params(b, &p, e);
  if (rc == 0)
    rc = events_mapping_update(ev, uuid, &p, r->arena, &m, e);
  json_decref(b);
  if (rc == 0)
    lambda_json_send(r, 202, mapping_json(&m));
  return rc;
}

/* ---- event invoke configs ---- */

static json_t *destination(const char *arn)
{
  return arn != NULL ? json_pack("{s:s}", "Destination", arn) : json_object();
}

static json_t *invoke_config_json(const events_invoke_config *c)
{
  json_t *o = json_pack("{s:f, s:s, s:{s:o, s:o}}", "LastModified", seconds(c->modified_ms),
                        "FunctionArn", c->function_arn, "DestinationConfig", "OnSuccess",
                        destination(c->on_success), "OnFailure", destination(c->on_failure));
  if (c->max_retries >= 0)
    json_object_set_new(o, "MaximumRetryAttempts", json_integer(c->max_retries));
  if (c->max_age_s >= 0)
    json_object_set_new(o, "MaximumEventAgeInSeconds", json_integer(c->max_age_s));
  return o;
}

static int destination_in(json_t *dc, const char *which, const char **out, err *e)
{
  *out = NULL;
  json_t *d = json_object_get(dc, which);
  if (d == NULL || json_is_null(d))
    return 0;
  const char *arn = NULL;
  int rc = lambda_json_string(d, "Destination", &arn, e);
  if (rc == 0)
    *out = arn != NULL ? arn : "";
  return rc;
}

static int eic_get(events_system *ev, http_req *r, const char *function, err *e)
{
  events_invoke_config out;
  int rc = events_invoke_config_get(ev, function, http_req_param(r, "Qualifier"), r->arena,
                                    &out, e);
  if (rc == 0)
    lambda_json_send(r, 200, invoke_config_json(&out));
  return rc;
}

static int eic_delete(events_system *ev, http_req *r, const char *function, err *e)
{
  int rc = events_invoke_config_delete(ev, function, http_req_param(r, "Qualifier"), e);
  if (rc == 0) {
    http_resp_status(r, 204);
    http_resp_header(r, "x-amzn-RequestId", r->request_id);
  }
  return rc;
}

/* Put replaces the configuration; update (merge) changes only what the
 * body names. */
static int eic_write(events_system *ev, http_req *r, const char *function, bool merge, err *e)
{
  const char *qualifier = http_req_param(r, "Qualifier");
  events_invoke_config out;
  json_t *b = NULL;
  int rc = lambda_json_body(r, &b, e);
  if (rc != 0)
    return rc;
  events_invoke_config c = {.max_retries = -1, .max_age_s = -1};
  bool has;
  long v;
  rc = lambda_json_int(b, "MaximumRetryAttempts", 0, 2, &has, &v, e);
  if (rc == 0 && has)
    c.max_retries = (int)v;
  if (rc == 0)
    rc = lambda_json_int(b, "MaximumEventAgeInSeconds", 60, 21600, &has, &v, e);
  if (rc == 0 && has)
    c.max_age_s = (int)v;
  json_t *dc = json_object_get(b, "DestinationConfig");
  if (rc == 0 && dc != NULL && !json_is_null(dc)) {
    rc = destination_in(dc, "OnSuccess", &c.on_success, e);
    if (rc == 0)
      rc = destination_in(dc, "OnFailure", &c.on_failure, e);
  }
  if (rc == 0)
    rc = events_invoke_config_put(ev, function, qualifier, &c, merge, r->arena, &out, e);
  if (rc == 0)
    lambda_json_send(r, 200, invoke_config_json(&out));
  json_decref(b);
  return rc;
}

static int eic_put(events_system *ev, http_req *r, const char *function, err *e)
{
  return eic_write(ev, r, function, false, e);
}

static int eic_update(events_system *ev, http_req *r, const char *function, err *e)
{
  return eic_write(ev, r, function, true, e);
}

static int eic_list(events_system *ev, http_req *r, const char *function, err *e)
{
  events_invoke_config *list = NULL;
  size_t n = 0;
  int rc = events_invoke_config_list(ev, function, r->arena, &list, &n, e);
  if (rc != 0)
    return rc;
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, invoke_config_json(&list[i]));
  lambda_json_send(r, 200, json_pack("{s:o}", "FunctionEventInvokeConfigs", arr));
  return 0;
}

/* ---- dispatch ---- */

typedef int (*op_fn)(events_system *ev, http_req *r, const char *arg, err *e);

static const struct op {
  enum route route;
  const char *method;
  const char *name;
  op_fn fn;  /* arg: the mapping's UUID or the function's name */
} ops[] = {
  {R_ESM_ROOT, "POST", "CreateEventSourceMapping", esm_create},
  {R_ESM_ROOT, "GET", "ListEventSourceMappings", esm_list},
  {R_ESM_ONE, "GET", "GetEventSourceMapping", esm_get},
  {R_ESM_ONE, "PUT", "UpdateEventSourceMapping", esm_update},
  {R_ESM_ONE, "DELETE", "DeleteEventSourceMapping", esm_delete},
  {R_EIC, "PUT", "PutFunctionEventInvokeConfig", eic_put},
  {R_EIC, "POST", "UpdateFunctionEventInvokeConfig", eic_update},
  {R_EIC, "GET", "GetFunctionEventInvokeConfig", eic_get},
  {R_EIC, "DELETE", "DeleteFunctionEventInvokeConfig", eic_delete},
  {R_EIC_LIST, "GET", "ListFunctionEventInvokeConfigs", eic_list},
};

/* r's entry of ops[] (and its path's argument), or NULL. */
static const struct op *op_of(http_req *r, const char **arg)
{
  enum route rt = route_of(r, arg);
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (ops[i].route == rt && strcmp(ops[i].method, r->method) == 0)
      return &ops[i];
  return NULL;
}

int lambda_events_prepare(http_req *r, err *e)
{
  const char *arg;
  const struct op *op = op_of(r, &arg);
  if (op == NULL)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "no operation %s %s", r->method, r->path);
  r->op = op->name;
  http_req_body_max(r, BODY_MAX);
  return 0;
}

int lambda_events_handle(http_req *r, err *e)
{
  events_system *ev = atomic_load(&attached);
  if (ev == NULL)
    return err_set(e, ERR_UNAVAILABLE, "event wiring is not running");
  const char *arg;
  const struct op *op = op_of(r, &arg);
  if (op == NULL)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "no operation %s %s", r->method, r->path);
  return op->fn(ev, r, arg, e);
}

/* ---- DeadLetterConfig ---- */

int lambda_events_dead_letter_in(const char *function, json_t *body, bool save, err *e)
{
  json_t *dlc = json_object_get(body, "DeadLetterConfig");
  if (dlc == NULL || json_is_null(dlc))
    return 0;
  if (!json_is_object(dlc))
    return err_set(e, ERR_INVALID_REQUEST, "'DeadLetterConfig' must be an object");
  const char *arn = NULL;
  int rc = lambda_json_string(dlc, "TargetArn", &arn, e);
  if (rc != 0)
    return rc;
  if (arn != NULL && *arn != '\0' && !str_starts(arn, "arn:aws:sqs:") &&
      !str_starts(arn, "arn:aws:sns:"))
    return err_set(e, ERR_INVALID, "The provided target ARN '%s' is invalid: a dead-letter "
                                   "target is an SQS queue or an SNS topic", arn);
  if (!save)
    return 0;
  events_system *ev = atomic_load(&attached);
  if (ev == NULL)
    return err_set(e, ERR_UNAVAILABLE, "event wiring is not running");
  return events_dead_letter_set(ev, function, arn, e);
}

void lambda_events_dead_letter_out(const char *function, json_t *config)
{
  events_system *ev = atomic_load(&attached);
  if (ev == NULL)
    return;
  arena *a = arena_new();
  const char *arn = NULL;
  err e = {0};
  if (events_dead_letter_get(ev, function, a, &arn, &e) == 0 && arn != NULL)
    json_object_set_new(config, "DeadLetterConfig", json_pack("{s:s}", "TargetArn", arn));
  arena_free(a);
}
