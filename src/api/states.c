/* api/states.c -- the Step Functions endpoint: AWS JSON 1.0
 * (X-Amz-Target: AWSStepFunctions.<Operation>) onto flow/flow.h.
 *
 * Operations: CreateStateMachine, DescribeStateMachine, UpdateStateMachine,
 * DeleteStateMachine, ListStateMachines, ValidateStateMachineDefinition,
 * StartExecution, StartSyncExecution (parks the request until the end),
 * DescribeExecution, DescribeStateMachineForExecution, StopExecution,
 * ListExecutions, GetExecutionHistory, SendTaskSuccess, SendTaskFailure,
 * SendTaskHeartbeat, TagResource, UntagResource, ListTagsForResource;
 * versions and aliases (PublishStateMachineVersion, ListStateMachineVersions,
 * DeleteStateMachineVersion, Create/Describe/Update/Delete/
 * ListStateMachineAliases); activities (Create/Describe/Delete/
 * ListActivities, GetActivityTask, which parks the request until a task
 * comes or 60 s pass).
 * Others answer UnknownOperationException.
 *
 * Errors: {"__type": "InvalidDefinition", "message": ...} with the status
 * Step Functions uses (400 for the client's errors).
 *
 * Invariants:
 *   (1) A parked StartSyncExecution is answered once: by sync_done while
 *       the request lives. cleanup first makes flow forget the waiter
 *       (after which sync_done is never called), then frees it.
 *   (2) sync_done runs on a step thread under the execution's lock and
 *       takes only s->mu; nothing here calls flow while holding s->mu.
 *   (3) Bodies are bounded: STATES_BODY_MAX bytes.
 *   (4) A parked GetActivityTask (actwait) is answered once, by
 *       activity_done under amu while the request lives. cleanup cancels
 *       the poll; when that fails, done has run (finished: cleanup frees
 *       the actwait) or is about to (it frees it, seeing req NULL).
 *
 * Start reading at states_handle() and the ops[] table.
 */
#include "api/states.h"

#include "api/iam.h"
#include "aws/errors.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATES_BODY_MAX ((size_t)FLOW_MAX_DEFINITION + (64u << 10))
#define STATES_ERR_OP (-1351)
#define STATES_ERR_VALIDATION (-1352)
#define STATES_PARKED 1

typedef struct states {
  http_service svc;
  flow_system *f;
  pthread_mutex_t mu;   /* guards every syncwait's req */
  pthread_mutex_t amu;  /* guards every actwait (never held calling into flow but to
                           start or cancel a poll, which take no execution lock) */
} states;

typedef struct syncwait {
  states *s;
  http_req *req;        /* NULL once answered */
  char *arn;
} syncwait;

/* A parked GetActivityTask. */
typedef struct actwait {
  states *s;
  http_req *req;        /* NULL once answered or gone */
  flow_activity_poll *poll;
  bool finished;        /* done ran: free it at cleanup */
} actwait;

typedef struct states_call {
  const char *action;
  json_t *in;
  syncwait *w;
  actwait *aw;
} states_call;

static const struct {
  int code;
  int status;
  const char *type;
} codes[] = {
    {FLOW_ERR_NO_MACHINE, 400, "StateMachineDoesNotExist"},
    {FLOW_ERR_MACHINE_EXISTS, 400, "StateMachineAlreadyExists"},
    {FLOW_ERR_DEFINITION, 400, "InvalidDefinition"},
    {FLOW_ERR_ARN, 400, "InvalidArn"},
    {FLOW_ERR_NAME, 400, "InvalidName"},
    {FLOW_ERR_NO_EXECUTION, 400, "ExecutionDoesNotExist"},
    {FLOW_ERR_EXECUTION_EXISTS, 400, "ExecutionAlreadyExists"},
    {FLOW_ERR_INPUT, 400, "InvalidExecutionInput"},
    {FLOW_ERR_TOKEN, 400, "InvalidToken"},
    {FLOW_ERR_TASK_GONE, 400, "TaskDoesNotExist"},
    {FLOW_ERR_TYPE, 400, "StateMachineTypeNotSupported"},
    {FLOW_ERR_OUTPUT, 400, "InvalidOutput"},
    {FLOW_ERR_NOT_FOUND, 400, "ResourceNotFound"},
    {FLOW_ERR_CONFLICT, 400, "ConflictException"},
    {FLOW_ERR_QUOTA, 400, "ServiceQuotaExceededException"},
    {FLOW_ERR_NO_ACTIVITY, 400, "ActivityDoesNotExist"},
    {STATES_ERR_OP, 400, "UnknownOperationException"},
    {STATES_ERR_VALIDATION, 400, "ValidationException"},
    {ERR_INVALID, 400, "ValidationException"},
    {ERR_LIMIT_EXCEEDED, 400, "TooManyTags"},
    {ERR_MALFORMED_XML, 400, "SerializationException"},
    {ERR_SIGNATURE, 403, "InvalidSignatureException"},
    {ERR_EXPIRED, 403, "InvalidSignatureException"},
    {ERR_TIME_SKEWED, 403, "InvalidSignatureException"},
    {ERR_UNKNOWN_ACCESS_KEY, 403, "UnrecognizedClientException"},
    {ERR_DENIED, 400, "AccessDeniedException"},
    {ERR_AUTH_MALFORMED, 400, "IncompleteSignature"},
    {ERR_UNAVAILABLE, 503, "ServiceUnavailable"},
    {ERR_INVALID_REQUEST, 400, "ValidationException"},  /* a malformed request head */
};

static void write_error(http_req *r, const err *e)
{
  int status = 500;
  const char *type = "InternalFailure";
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    if (codes[i].code == e->code) {
      status = codes[i].status;
      type = codes[i].type;
    }
  }
  r->nresp_headers = 0;
  buf_reset(&r->resp_body);
  http_resp_status(r, status);
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  http_resp_header(r, "Content-Type", "application/x-amz-json-1.0");
  aws_error_json(&r->resp_body, type, e->msg[0] ? e->msg : type);
}

static void states_error(void *ctx, http_req *r, const err *e)
{
  write_error(r, e);
}

static void write_result(http_req *r, json_t *out)
{
  http_resp_status(r, 200);
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  http_resp_header(r, "Content-Type", "application/x-amz-json-1.0");
  char *text = json_dumps(out, JSON_COMPACT);
  buf_puts(&r->resp_body, text != NULL ? text : "{}");
  free(text);
  json_decref(out);
}

/* ---- input helpers ---- */

static const char *in_str(json_t *in, const char *key)
{
  return json_string_value(json_object_get(in, key));
}

static int need(json_t *in, const char *key, const char **out, err *e)
{
  *out = in_str(in, key);
  if (*out == NULL)
    return err_set(e, STATES_ERR_VALIDATION, "1 validation error detected: Value null at '%s' "
                   "failed to satisfy constraint: Member must not be null", key);
  return 0;
}

static size_t max_results(json_t *in, size_t dflt)
{
  json_int_t m = json_integer_value(json_object_get(in, "maxResults"));
  return m <= 0 ? dflt : m > 1000 ? 1000 : (size_t)m;
}

/* {key: items} and nextToken from a list call's result (items taken: a
 * failed call may have left an empty list). */
static int listed(int rc, const char *key, json_t *items, const char *next, json_t **out)
{
  if (rc != 0) {
    json_decref(items);
    return rc;
  }
  *out = json_pack("{s:o}", key, items);
  if (next != NULL)
    json_object_set_new(*out, "nextToken", json_string(next));
  return 0;
}

typedef int (*op_fn)(states *s, http_req *r, states_call *c, json_t *in, json_t **out, err *e);

/* ---- state machines ---- */

static int publish_maybe(states *s, json_t *in, const char *arn, json_t *out, err *e);

static int op_create(states *s, http_req *r, states_call *c, json_t *in, json_t **out, err *e)
{
  flow_machine_params p = {.name = in_str(in, "name"), .definition = in_str(in, "definition"),
                           .role_arn = in_str(in, "roleArn"), .type = in_str(in, "type"),
                           .tags = json_object_get(in, "tags")};
  int rc;
  const char *x;
  if ((rc = need(in, "name", &x, e)) != 0 || (rc = need(in, "definition", &x, e)) != 0 ||
      (rc = need(in, "roleArn", &x, e)) != 0)
    return rc;
  json_t *m;
  if ((rc = flow_machine_create(s->f, &p, &m, e)) != 0)
    return rc;
  api_authz_warn_machine_role(p.name, p.role_arn);
  *out = json_pack("{s:O, s:O}", "stateMachineArn", json_object_get(m, "stateMachineArn"),
                   "creationDate", json_object_get(m, "creationDate"));
  json_decref(m);
  return publish_maybe(s, in, in_str(*out, "stateMachineArn"), *out, e);
}

/* publish: true in Create/UpdateStateMachine: the new revision becomes a
 * version, whose ARN joins the answer. */
static int publish_maybe(states *s, json_t *in, const char *arn, json_t *out, err *e)
{
  if (!json_is_true(json_object_get(in, "publish"))) {
    if (in_str(in, "versionDescription") != NULL)
      return err_set(e, STATES_ERR_VALIDATION, "Version description can only be set when "
                     "publish is true");
    return 0;
  }
  json_t *v;
  int rc = flow_version_publish(s->f, arn, NULL, in_str(in, "versionDescription"), &v, e);
  if (rc != 0)
    return rc;
  json_object_set(out, "stateMachineVersionArn", json_object_get(v, "stateMachineVersionArn"));
  json_decref(v);
  return 0;
}

static bool qualified(const char *arn, err *e)
{
  if (!flow_arn_qualified(arn))
    return false;
  err_set(e, STATES_ERR_VALIDATION, "The state machine ARN must not be qualified (a version or "
          "an alias): '%s'", arn);
  return true;
}

static int op_update(states *s, http_req *r, states_call *c, json_t *in, json_t **out, err *e)
{
  const char *arn;
  int rc = need(in, "stateMachineArn", &arn, e);
  if (rc != 0)
    return rc;
  if (qualified(arn, e))
    return e->code;
  const char *role = in_str(in, "roleArn");
  bool publish = json_is_true(json_object_get(in, "publish"));
  if (publish && in_str(in, "definition") == NULL && role == NULL) {
    /* only a new version of the current revision */
    json_t *m;
    if ((rc = flow_machine_get(s->f, arn, &m, e)) != 0)
      return rc;
    *out = json_pack("{s:O, s:O}", "updateDate",
                     json_object_get(m, "updateDate") ? json_object_get(m, "updateDate")
                                                      : json_object_get(m, "creationDate"),
                     "revisionId", json_object_get(m, "revisionId"));
    json_decref(m);
  } else if ((rc = flow_machine_update(s->f, arn, in_str(in, "definition"), role, out, e)) !=
             0) {
    return rc;
  }
  if (role != NULL)
    api_authz_warn_machine_role(arn, role);
  return publish_maybe(s, in, arn, *out, e);
}

static int op_delete(states *s, http_req *r, states_call *c, json_t *in, json_t **out, err *e)
{
  const char *arn;
  int rc = need(in, "stateMachineArn", &arn, e);
  if (rc == 0 && qualified(arn, e))
    return e->code;
  return rc != 0 ? rc : flow_machine_delete(s->f, arn, e);
}

static int op_list_machines(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                            err *e)
{
  json_t *items;
  const char *next;
  int rc = flow_machine_list(s->f, in_str(in, "nextToken"), max_results(in, 100), &items, &next,
                             e);
  return listed(rc, "stateMachines", items, next, out);
}

static int op_validate(states *s, http_req *r, states_call *c, json_t *in, json_t **out, err *e)
{
  const char *def;
  int rc = need(in, "definition", &def, e);
  if (rc != 0)
    return rc;
  err ve = {0};
  json_t *diags = json_array();
  if (flow_definition_check(def, strlen(def), NULL, &ve) != 0) {
    /* "Invalid State Machine Definition: 'CODE: message at /path'" */
    const char *q = strchr(ve.msg, '\'');
    char code[64] = "SCHEMA_VALIDATION_FAILED";
    const char *msg = ve.msg;
    const char *loc = "";
    char *body = q ? strndup(q + 1, strlen(q + 1) - (str_ends(q + 1, "'") ? 1 : 0)) : NULL;
    if (body != NULL) {
      char *colon = strstr(body, ": ");
      if (colon != NULL && (size_t)(colon - body) < sizeof code) {
        memcpy(code, body, (size_t)(colon - body));
        code[colon - body] = '\0';
        msg = colon + 2;
      }
      char *at = strstr(body, " at /");
      if (at != NULL) {
        *at = '\0';
        loc = at + 4;
      }
    }
    json_array_append_new(diags, json_pack("{s:s, s:s, s:s, s:s}", "severity", "ERROR", "code",
                                           code, "message", msg, "location", loc));
    free(body);
  }
  *out = json_pack("{s:s, s:o}", "result", json_array_size(diags) ? "FAIL" : "OK",
                   "diagnostics", diags);
  return 0;
}

/* ---- executions ---- */

static int op_start(states *s, http_req *r, states_call *c, json_t *in, json_t **out, err *e)
{
  const char *arn;
  int rc = need(in, "stateMachineArn", &arn, e);
  if (rc != 0)
    return rc;
  return flow_execution_start(s->f, arn, in_str(in, "name"), in_str(in, "input"), NULL, NULL,
                              out, e);
}

static json_t *sync_result(json_t *x)
{
  json_t *o = json_object();
  static const char *const keys[] = {"executionArn", "stateMachineArn", "name", "startDate",
                                     "stopDate", "status", "error", "cause", "input",
                                     "inputDetails", "output", "outputDetails", NULL};
  for (size_t i = 0; keys[i] != NULL; i++)
    if (json_object_get(x, keys[i]) != NULL)
      json_object_set(o, keys[i], json_object_get(x, keys[i]));
  json_object_set_new(o, "billingDetails", json_pack("{s:i, s:i}", "billedMemoryUsedInMB", 64,
                                                     "billedDurationInMilliseconds", 100));
  return o;
}

static void sync_done(void *ctx, json_t *exec)
{
  syncwait *w = ctx;
  pthread_mutex_lock(&w->s->mu);
  if (w->req != NULL) {
    if (exec != NULL) {
      write_result(w->req, sync_result(exec));
    } else {
      err e = {0};
      err_set(&e, ERR_UNAVAILABLE, "tarn is stopping; the execution goes on after it restarts");
      write_error(w->req, &e);
    }
    http_req_resume(w->req);
    w->req = NULL;
  }
  pthread_mutex_unlock(&w->s->mu);
}

static int op_start_sync(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                         err *e)
{
  const char *arn;
  int rc = need(in, "stateMachineArn", &arn, e);
  if (rc != 0)
    return rc;
  json_t *m;
  if ((rc = flow_machine_resolve(s->f, arn, &m, e)) != 0)
    return rc;
  bool express = strcmp(in_str(m, "type"), "EXPRESS") == 0;
  if (!express) {
    json_decref(m);
    return err_set(e, FLOW_ERR_TYPE, "This operation is not supported by this type of state "
                   "machine");
  }
  /* the execution's ARN is known before it starts: cleanup may run as soon
     as sync_done resumed the request (1) */
  char uuid[37];
  const char *name = in_str(in, "name");
  if (name == NULL) {
    uuid_v4(uuid);
    name = uuid;
  }
  syncwait *w = xcalloc(1, sizeof *w);
  w->s = s;
  w->req = r;
  w->arn = xasprintf("arn:aws:states:%s:%s:execution:%s:%s", FLOW_REGION, FLOW_ACCOUNT_ID,
               in_str(m, "name"), name);
  json_decref(m);
  c->w = w;
  http_req_park(r);
  json_t *started = NULL;
  rc = flow_execution_start(s->f, arn, name, in_str(in, "input"), sync_done, w, &started, e);
  if (rc == 0) {
    json_decref(started);
    return STATES_PARKED;
  }
  pthread_mutex_lock(&s->mu);
  w->req = NULL;
  pthread_mutex_unlock(&s->mu);
  write_error(r, e);
  http_req_resume(r);
  return STATES_PARKED;
}

static int op_machine_for_exec(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                               err *e)
{
  const char *arn;
  json_t *x;
  int rc = need(in, "executionArn", &arn, e);
  if (rc != 0 || (rc = flow_execution_get(s->f, arn, &x, e)) != 0)
    return rc;
  const char *m = in_str(x, "stateMachineVersionArn");
  rc = flow_machine_get(s->f, m != NULL ? m : in_str(x, "stateMachineArn"), out, e);
  json_decref(x);
  return rc;
}

static int op_stop(states *s, http_req *r, states_call *c, json_t *in, json_t **out, err *e)
{
  const char *arn;
  int rc = need(in, "executionArn", &arn, e);
  return rc != 0 ? rc
                 : flow_execution_stop(s->f, arn, in_str(in, "error"), in_str(in, "cause"), out,
                                       e);
}

static int op_list_execs(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                         err *e)
{
  const char *arn;
  int rc = need(in, "stateMachineArn", &arn, e);
  if (rc != 0)
    return rc;
  json_t *items;
  const char *next;
  rc = flow_execution_list(s->f, arn, in_str(in, "statusFilter"), in_str(in, "nextToken"),
                           max_results(in, 100), &items, &next, e);
  return listed(rc, "executions", items, next, out);
}

static int op_history(states *s, http_req *r, states_call *c, json_t *in, json_t **out, err *e)
{
  const char *arn;
  int rc = need(in, "executionArn", &arn, e);
  if (rc != 0)
    return rc;
  json_t *events;
  const char *next;
  rc = flow_execution_history(s->f, arn, json_is_true(json_object_get(in, "reverseOrder")),
                              in_str(in, "nextToken"), max_results(in, 100), &events, &next, e);
  return listed(rc, "events", events, next, out);
}

/* ---- task tokens ---- */

static int op_task_success(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                           err *e)
{
  const char *tok, *output;
  int rc;
  if ((rc = need(in, "taskToken", &tok, e)) != 0 || (rc = need(in, "output", &output, e)) != 0)
    return rc;
  return flow_task_success(s->f, tok, output, e);
}

static int op_task_failure(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                           err *e)
{
  const char *tok;
  int rc = need(in, "taskToken", &tok, e);
  return rc != 0 ? rc
                 : flow_task_failure(s->f, tok, in_str(in, "error"), in_str(in, "cause"), e);
}

static int op_task_heartbeat(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                             err *e)
{
  const char *tok;
  int rc = need(in, "taskToken", &tok, e);
  return rc != 0 ? rc : flow_task_heartbeat(s->f, tok, e);
}

/* ---- versions and aliases ---- */

static int op_publish(states *s, http_req *r, states_call *c, json_t *in, json_t **out, err *e)
{
  const char *arn;
  int rc = need(in, "stateMachineArn", &arn, e);
  return rc != 0 ? rc
                 : flow_version_publish(s->f, arn, in_str(in, "revisionId"),
                                        in_str(in, "description"), out, e);
}

static int op_list_versions(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                            err *e)
{
  const char *arn, *next;
  json_t *items;
  int rc = need(in, "stateMachineArn", &arn, e);
  if (rc != 0)
    return rc;
  rc = flow_version_list(s->f, arn, in_str(in, "nextToken"), max_results(in, 100), &items, &next,
                         e);
  return listed(rc, "stateMachineVersions", items, next, out);
}

static int op_create_alias(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                           err *e)
{
  const char *name;
  int rc = need(in, "name", &name, e);
  if (rc != 0)
    return rc;
  json_t *routing = json_object_get(in, "routingConfiguration");
  if (routing == NULL)
    return err_set(e, STATES_ERR_VALIDATION, "1 validation error detected: Value null at "
                   "'routingConfiguration' failed to satisfy constraint: Member must not be "
                   "null");
  return flow_alias_create(s->f, name, in_str(in, "description"), routing, out, e);
}

static int op_update_alias(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                           err *e)
{
  const char *arn;
  int rc = need(in, "stateMachineAliasArn", &arn, e);
  return rc != 0 ? rc
                 : flow_alias_update(s->f, arn, in_str(in, "description"),
                                     json_object_get(in, "routingConfiguration"), out, e);
}

static int op_list_aliases(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                           err *e)
{
  const char *arn, *next;
  json_t *items;
  int rc = need(in, "stateMachineArn", &arn, e);
  if (rc != 0)
    return rc;
  rc = flow_alias_list(s->f, arn, in_str(in, "nextToken"), max_results(in, 100), &items, &next,
                       e);
  return listed(rc, "stateMachineAliases", items, next, out);
}

/* ---- activities ---- */

#define ACTIVITY_WAIT_MS 60000  /* GetActivityTask's long poll (AWS: 60 s) */

static int op_create_activity(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                              err *e)
{
  const char *name;
  int rc = need(in, "name", &name, e);
  return rc != 0 ? rc : flow_activity_create(s->f, name, json_object_get(in, "tags"), out, e);
}

static int op_list_activities(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                              err *e)
{
  const char *next;
  json_t *items;
  int rc = flow_activity_list(s->f, in_str(in, "nextToken"), max_results(in, 100), &items,
                              &next, e);
  return listed(rc, "activities", items, next, out);
}

/* Answers a parked GetActivityTask, on flow's dispatcher thread. */
static void activity_done(void *ctx, json_t *task)
{
  actwait *w = ctx;
  states *s = w->s;
  pthread_mutex_lock(&s->amu);
  w->finished = true;
  bool gone = w->req == NULL; /* cleanup ran: the actwait is ours (4) */
  if (!gone) {
    write_result(w->req, task != NULL ? json_incref(task) : json_object());
    http_req_resume(w->req);
    w->req = NULL;
  }
  pthread_mutex_unlock(&s->amu);
  if (gone)
    free(w);
}

/* flow asks before it hands a task to a parked GetActivityTask. */
static bool activity_gone(void *ctx)
{
  actwait *w = ctx;
  pthread_mutex_lock(&w->s->amu);
  bool gone = w->req == NULL || http_req_client_gone(w->req);
  pthread_mutex_unlock(&w->s->amu);
  return gone;
}

static int op_get_activity_task(states *s, http_req *r, states_call *c, json_t *in,
                                json_t **out, err *e)
{
  const char *arn;
  int rc = need(in, "activityArn", &arn, e);
  if (rc != 0)
    return rc;
  const char *worker = in_str(in, "workerName");
  if (worker != NULL && strlen(worker) > 80)
    return err_set(e, STATES_ERR_VALIDATION, "1 validation error detected: Value at "
                   "'workerName' failed to satisfy constraint: Member must have length less "
                   "than or equal to 80");
  actwait *w = xcalloc(1, sizeof *w);
  w->s = s;
  w->req = r;
  pthread_mutex_lock(&s->amu);
  rc = flow_activity_poll_start(s->f, arn, worker, ACTIVITY_WAIT_MS, activity_done,
                                activity_gone, w, &w->poll, e);
  if (rc != 0) {
    pthread_mutex_unlock(&s->amu);
    free(w);
    return rc;
  }
  c->aw = w;
  http_req_park(r);
  pthread_mutex_unlock(&s->amu);
  return STATES_PARKED;
}

/* ---- tags ---- */

static int op_tag(states *s, http_req *r, states_call *c, json_t *in, json_t **out, err *e)
{
  const char *arn;
  int rc = need(in, "resourceArn", &arn, e);
  json_t *tags = NULL;
  if (rc == 0)
    rc = flow_machine_tag(s->f, arn, json_is_array(json_object_get(in, "tags"))
                                         ? json_object_get(in, "tags") : json_array(),
                          NULL, &tags, e);
  json_decref(tags);
  return rc;
}

static int op_untag(states *s, http_req *r, states_call *c, json_t *in, json_t **out, err *e)
{
  const char *arn;
  int rc = need(in, "resourceArn", &arn, e);
  json_t *tags = NULL;
  json_t *keys = json_object_get(in, "tagKeys");
  if (rc == 0)
    rc = flow_machine_tag(s->f, arn, NULL, json_is_array(keys) ? keys : json_array(), &tags, e);
  json_decref(tags);
  return rc;
}

static int op_list_tags(states *s, http_req *r, states_call *c, json_t *in, json_t **out,
                        err *e)
{
  const char *arn;
  int rc = need(in, "resourceArn", &arn, e);
  json_t *tags = NULL;
  if (rc == 0 && (rc = flow_machine_tag(s->f, arn, NULL, NULL, &tags, e)) == 0)
    *out = json_pack("{s:o}", "tags", tags);
  return rc;
}

static const struct {
  const char *name;
  op_fn fn;
  const char *arn_field;  /* the member naming the resource authorized, or NULL (*) */
  /* instead of fn: a call on the required arn_field alone */
  int (*get)(flow_system *f, const char *arn, json_t **out, err *e);
  int (*del)(flow_system *f, const char *arn, err *e);
} ops[] = {
    {"CreateStateMachine", op_create, NULL, NULL, NULL},
    {"DescribeStateMachine", NULL, "stateMachineArn", flow_machine_get, NULL},
    {"UpdateStateMachine", op_update, "stateMachineArn", NULL, NULL},
    {"DeleteStateMachine", op_delete, "stateMachineArn", NULL, NULL},
    {"ListStateMachines", op_list_machines, NULL, NULL, NULL},
    {"ValidateStateMachineDefinition", op_validate, NULL, NULL, NULL},
    {"StartExecution", op_start, "stateMachineArn", NULL, NULL},
    {"StartSyncExecution", op_start_sync, "stateMachineArn", NULL, NULL},
    {"DescribeExecution", NULL, "executionArn", flow_execution_get, NULL},
    {"DescribeStateMachineForExecution", op_machine_for_exec, "executionArn", NULL, NULL},
    {"StopExecution", op_stop, "executionArn", NULL, NULL},
    {"ListExecutions", op_list_execs, "stateMachineArn", NULL, NULL},
    {"GetExecutionHistory", op_history, "executionArn", NULL, NULL},
    {"SendTaskSuccess", op_task_success, NULL, NULL, NULL},
    {"SendTaskFailure", op_task_failure, NULL, NULL, NULL},
    {"SendTaskHeartbeat", op_task_heartbeat, NULL, NULL, NULL},
    {"TagResource", op_tag, "resourceArn", NULL, NULL},
    {"UntagResource", op_untag, "resourceArn", NULL, NULL},
    {"ListTagsForResource", op_list_tags, "resourceArn", NULL, NULL},
    {"PublishStateMachineVersion", op_publish, "stateMachineArn", NULL, NULL},
    {"ListStateMachineVersions", op_list_versions, "stateMachineArn", NULL, NULL},
    {"DeleteStateMachineVersion", NULL, "stateMachineVersionArn", NULL, flow_version_delete},
    {"CreateStateMachineAlias", op_create_alias, NULL, NULL, NULL},
    {"DescribeStateMachineAlias", NULL, "stateMachineAliasArn", flow_alias_get, NULL},
    {"UpdateStateMachineAlias", op_update_alias, "stateMachineAliasArn", NULL, NULL},
    {"DeleteStateMachineAlias", NULL, "stateMachineAliasArn", NULL, flow_alias_delete},
    {"ListStateMachineAliases", op_list_aliases, "stateMachineArn", NULL, NULL},
    {"CreateActivity", op_create_activity, NULL, NULL, NULL},
    {"DescribeActivity", NULL, "activityArn", flow_activity_describe, NULL},
    {"DeleteActivity", NULL, "activityArn", NULL, flow_activity_delete},
    {"ListActivities", op_list_activities, NULL, NULL, NULL},
    {"GetActivityTask", op_get_activity_task, "activityArn", NULL, NULL},
};

static int states_prepare(void *ctx, http_req *r, err *e)
{
  states_call *c = arena_alloc(r->arena, sizeof *c);
  memset(c, 0, sizeof *c);
  r->svc = c;
  http_req_body_max(r, STATES_BODY_MAX);
  if (!r->authenticated)
    return err_set(e, ERR_DENIED, "anonymous access is not allowed: sign the request with "
                   "SigV4");
  return 0;
}

static void states_handle(void *ctx, http_req *r)
{
  states *s = ctx;
  states_call *c = r->svc;
  err e = {0};
  int rc = 0;
  const char *target = http_req_header(r, "x-amz-target");
  if (target == NULL || !str_starts(target, "AWSStepFunctions."))
    rc = err_set(&e, STATES_ERR_OP, "the X-Amz-Target header must name an AWSStepFunctions "
                 "operation");
  size_t op = sizeof ops / sizeof ops[0];
  if (rc == 0) {
    c->action = target + strlen("AWSStepFunctions.");
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
      if (strcmp(ops[i].name, c->action) == 0)
        op = i;
    if (op == sizeof ops / sizeof ops[0])
      rc = err_set(&e, STATES_ERR_OP, "The operation %.100s is not supported", c->action);
    else
      r->op = ops[op].name;
  }
  if (rc == 0) {
    json_error_t je;
    c->in = r->body.len == 0 ? json_object() : json_loadb(r->body.data, r->body.len, 0, &je);
    if (!json_is_object(c->in))
      rc = err_set(&e, ERR_MALFORMED_XML, "the request body is not a JSON object");
  }
  if (rc == 0 && !r->admin) {
    char action[96];
    snprintf(action, sizeof action, "states:%s", ops[op].name);
    const char *res = ops[op].arn_field ? in_str(c->in, ops[op].arn_field) : NULL;
    rc = api_authorize(r, action, res != NULL ? res : "*", &e);
    if (rc == 0)
      rc = api_authorize_pass_role(r, in_str(c->in, "roleArn"), &e);
  }
  json_t *out = NULL;
  const char *arn;
  if (rc == 0 && ops[op].fn != NULL)
    rc = ops[op].fn(s, r, c, c->in, &out, &e);
  else if (rc == 0 && (rc = need(c->in, ops[op].arn_field, &arn, &e)) == 0)
    rc = ops[op].get != NULL ? ops[op].get(s->f, arn, &out, &e) : ops[op].del(s->f, arn, &e);
  if (rc == STATES_PARKED)
    return;
  if (rc != 0) {
    json_decref(out);
    write_error(r, &e);
    return;
  }
  write_result(r, out != NULL ? out : json_object());
}

static void states_cleanup(void *ctx, http_req *r)
{
  states *s = ctx;
  states_call *c = r->svc;
  if (c == NULL)
    return;
  if (c->w != NULL) {
    syncwait *w = c->w;
    if (w->arn != NULL)
      flow_execution_forget(s->f, w->arn, w); /* (1): sync_done is not called after this */
    pthread_mutex_lock(&s->mu);
    w->req = NULL;
    pthread_mutex_unlock(&s->mu);
    free(w->arn);
    free(w);
    c->w = NULL;
  }
  if (c->aw != NULL) {
    actwait *w = c->aw;
    pthread_mutex_lock(&s->amu);
    w->req = NULL;
    bool free_it = w->finished || flow_activity_poll_cancel(s->f, w->poll);
    pthread_mutex_unlock(&s->amu);
    if (free_it)
      free(w);
    c->aw = NULL;
  }
  json_decref(c->in);
  c->in = NULL;
}

http_service *states_service_new(flow_system *f)
{
  states *s = xcalloc(1, sizeof *s);
  s->f = f;
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->amu, NULL);
  s->svc = (http_service){
      .name = "states",
      .ctx = s,
      .prepare = states_prepare,
      .handle = states_handle,
      .error = states_error,
      .cleanup = states_cleanup,
      .unsigned_body_max = STATES_BODY_MAX,
  };
  return &s->svc;
}

http_service *states_service_free(http_service *svc)
{
  if (svc != NULL) {
    states *s = (states *)svc;
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->amu);
    free(s);
  }
  return NULL;
}
