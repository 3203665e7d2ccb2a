/* api/lambda.c -- Lambda's REST-JSON API over the function system.
 *
 * Why: the AWS CLI, boto3 and the other SDKs manage and invoke functions
 * through this API; shapes and field names follow botocore's lambda model
 * (2015-03-31), errors are answered as Lambda does: the status, an
 * x-amzn-ErrorType header and a body {"Type":"User","message":...}.
 *
 * Operations (path after the version prefix):
 *   POST   /2015-03-31/functions                           CreateFunction
 *   GET    /2015-03-31/functions/                          ListFunctions
 *   GET    /2015-03-31/functions/F                         GetFunction
 *   DELETE /2015-03-31/functions/F                         DeleteFunction
 *   GET    /2015-03-31/functions/F/configuration           GetFunctionConfiguration
 *   PUT    /2015-03-31/functions/F/configuration           UpdateFunctionConfiguration
 *   PUT    /2015-03-31/functions/F/code                    UpdateFunctionCode
 *   POST   /2015-03-31/functions/F/versions                PublishVersion
 *   GET    /2015-03-31/functions/F/versions                ListVersionsByFunction
 *   POST   /2015-03-31/functions/F/aliases                 CreateAlias
 *   GET    /2015-03-31/functions/F/aliases                 ListAliases
 *   GET|PUT|DELETE /2015-03-31/functions/F/aliases/A       GetAlias, UpdateAlias, DeleteAlias
 *   POST   /2015-03-31/functions/F/invocations             Invoke
 *   PUT|DELETE /2017-10-31/functions/F/concurrency         Put/DeleteFunctionConcurrency
 *   GET    /2019-09-30/functions/F/concurrency             GetFunctionConcurrency
 *   GET    /2015-03-31/functions/F/logs?bytes=N            tarn's own: the function's log
 * plus, answered by lambda_layers.c: layers and their versions
 * (/2018-10-31/layers...); and answered by lambda_events.c (routed in
 * lambda_prepare): event source
 * mappings (/2015-03-31/event-source-mappings...) and event invoke configs
 * (/2019-09-25/functions/F/event-invoke-config...); DeadLetterConfig of
 * Create/UpdateFunctionConfiguration is stored there too.
 * and one tarn extension of Invoke: with ?tarn-function-error=status a
 * function error is answered 502 instead of 200 (X-Amz-Function-Error is
 * still sent), for clients that see the status but not the headers (the
 * `tarn fn` CLI).
 *
 * Invariants:
 *   (1) Every request body has a limit set in prepare (Invoke: 6 MB,
 *       code: Lambda's 70167211-byte request, others: 1 MB) and input is
 *       checked before anything changes. SDKs do not send
 *       x-amz-content-sha256, so bodies are buffered before authentication
 *       up to the largest of these (unsigned_body_max).
 *   (2) A synchronous Invoke holds no thread while the function runs: its
 *       handler parks the request, and fn calls invoke_done once at the
 *       end (answer, error, time-out, stop), which fills the response and
 *       resumes it, under fn's lock. cleanup() forgets the invocation under
 *       that same lock, so after it returns fn never touches the request.
 *
 * Start reading at lambda_prepare() and the ops[] table.
 */
#include "api/iam.h"
#include "api/lambda.h"
#include "api/lambda_events.h"
#include "api/lambda_json.h"
#include "api/lambda_layers.h"
#include "api/lambda_urls.h"

#include "base/hash.h"
#include "base/mem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CODE_BODY_MAX 70167211u
#define SMALL_BODY_MAX (1u << 20)

typedef struct lambda {
  http_service svc; /* first: the service is the struct */
  fn_system *fn;
  store *st;
} lambda;

typedef struct call call;
typedef int (*op_fn)(lambda *l, http_req *r, call *c, err *e);

/* One operation: the route that reaches it, what IAM is asked, what runs it. */
typedef struct op_def {
  const char *method;
  const char *prefix;  /* version prefix */
  const char *suffix;  /* after functions/F: "", "/configuration", ... ("*" = alias);
                          NULL: the collection itself (/functions, /functions/) */
  const char *name;    /* the operation (r->op) */
  const char *action;  /* the IAM action when it is not lambda:NAME, or NULL */
  op_fn fn;
  size_t body_max;     /* 0: the server's default */
} op_def;

struct call {
  const op_def *op;          /* its entry of ops[] (or events_op) */
  const char *function;      /* as in the path */
  const char *alias;
  bool throttled_reserved;   /* an ERR_THROTTLED came from the reserved limit */
  /* a synchronous Invoke, parked (see (2)) */
  bool parked;               /* handle() parked the request */
  bool error_status;         /* ?tarn-function-error=status */
  http_req *req;             /* the parked request, for invoke_done */
  fn_invocation *running;    /* set by fn while it runs; under fn's lock */
};

static int route(http_req *r, err *e);
static const op_def layers_op;

/* Callers other than root (functions' derived keys, IAM users) are asked
 * about in api/iam.c: lambda:ACTION on the function's ARN (Invoke is
 * lambda:InvokeFunction). */
static int lambda_prepare(void *ctx, http_req *r, err *e)
{
  int rc = route(r, e);
  if (rc != 0 || r->admin)
    return rc;
  call *c = r->svc;
  const char *action = c->op->action != NULL ? c->op->action
                                              : arena_sprintf(r->arena, "lambda:%s",
                                                              r->op ? r->op : "Unknown");
  if (r->op != NULL && strcmp(r->op, "GetLayerVersionByArn") == 0)
    action = "lambda:GetLayerVersion";
  const char *res = c->op == &layers_op ? lambda_layers_resource(r) : "*";
  const char *name;
  const char *qual;
  err ignored = {0};
  if (c->function != NULL &&
      fn_name_parse(c->function, NULL, r->arena, &name, &qual, &ignored) == 0)
    res = arena_sprintf(r->arena, "arn:aws:lambda:" API_REGION ":" API_ACCOUNT_ID
                                  ":function:%s", name);
  return api_authorize(r, action, res, e);
}

/* ---- errors ---- */

static void write_error(http_req *r, int status, const char *type, const char *msg,
                        const char *reason)
{
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "application/json");
  http_resp_header(r, "x-amzn-ErrorType", type);
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  json_t *j = json_pack("{s:s, s:s}", "Type", status >= 500 ? "Service" : "User",
                        strcmp(type, "ResourceNotFoundException") == 0 ||
                                strcmp(type, "ServiceException") == 0
                            ? "Message"
                            : "message",
                        msg);
  if (reason != NULL) {
    json_object_set_new(j, "Reason", json_string(reason));
    http_resp_header(r, "Retry-After", "1");
  }
  char *text = json_dumps(j, JSON_COMPACT);
  buf_puts(&r->resp_body, text);
  free(text);
  json_decref(j);
}

static void lambda_error(void *ctx, http_req *r, const err *e)
{
  int status = 500;
  const char *type = "ServiceException";
  const char *reason = NULL;
  switch (e->code) {
  case ERR_NOT_FOUND:
    status = 404;
    type = "ResourceNotFoundException";
    break;
  case ERR_INVALID:
  case ERR_NO_SUCH_BUCKET:
  case ERR_NO_SUCH_KEY:
    status = 400;
    type = "InvalidParameterValueException";
    break;
  case ERR_INVALID_REQUEST:
  case ERR_INCOMPLETE_BODY:
    status = 400;
    type = "InvalidRequestContentException";
    break;
  case ERR_CONFLICT:
    status = 409;
    type = "ResourceConflictException";
    break;
  case ERR_PRECONDITION:
    status = 412;
    type = "PreconditionFailedException";
    break;
  case ERR_ENTITY_TOO_LARGE:
    status = 413;
    type = "RequestEntityTooLargeException";
    break;
  case ERR_THROTTLED: {
    const call *c = r->svc;
    status = 429;
    type = "TooManyRequestsException";
    reason = c != NULL && c->throttled_reserved
                 ? "ReservedFunctionConcurrentInvocationLimitExceeded"
                 : "ConcurrentInvocationLimitExceeded";
    break;
  }
  case ERR_METHOD_NOT_ALLOWED:
    status = 404;
    type = "UnknownOperationException";
    break;
  case ERR_SIGNATURE:
  case ERR_TIME_SKEWED:
  case ERR_EXPIRED:
    status = 403;
    type = "InvalidSignatureException";
    break;
  case ERR_UNKNOWN_ACCESS_KEY:
    status = 403;
    type = "UnrecognizedClientException";
    break;
  case ERR_DENIED:
    status = 403;
    type = "AccessDeniedException";
    break;
  case ERR_AUTH_MALFORMED:
    status = 400;
    type = "IncompleteSignatureException";
    break;
  case ERR_UNAVAILABLE:
    status = 503;
    type = "ServiceException";
    break;
  default:
    break;
  }
  write_error(r, status, type, e->msg, reason);
}

/* ---- JSON helpers ---- */

/* An integer member within [lo, hi] as a uint32_t (0 when absent). */
static int get_u32(json_t *o, const char *key, long lo, long hi, uint32_t *out, err *e)
{
  bool has;
  long v;
  int rc = lambda_json_int(o, key, lo, hi, &has, &v, e);
  *out = (uint32_t)v;
  return rc;
}

/* The settings CreateFunction and UpdateFunctionConfiguration share. */
static int parse_settings(json_t *b, arena *a, fn_settings *set, err *e)
{
  int rc;
  memset(set, 0, sizeof *set);
  if ((rc = lambda_json_string(b, "Runtime", &set->runtime, e)) ||
      (rc = lambda_json_string(b, "Handler", &set->handler, e)) ||
      (rc = lambda_json_string(b, "Role", &set->role, e)) ||
      (rc = lambda_json_string(b, "Description", &set->description, e)) ||
      (rc = lambda_json_string(b, "RevisionId", &set->revision_id, e)) ||
      (rc = get_u32(b, "MemorySize", 128, 10240, &set->memory_mb, e)) ||
      (rc = get_u32(b, "Timeout", 1, 900, &set->timeout_s, e)))
    return rc;
  json_t *eph = json_object_get(b, "EphemeralStorage");
  if (eph != NULL && (rc = get_u32(eph, "Size", 512, 10240, &set->ephemeral_mb, e)))
    return rc;
  json_t *arch = json_object_get(b, "Architectures");
  if (arch != NULL) {
    if (!json_is_array(arch) || json_array_size(arch) != 1 ||
        !json_is_string(json_array_get(arch, 0)))
      return err_set(e, ERR_INVALID, "Architectures must hold exactly one of x86_64, arm64");
    set->architecture = json_string_value(json_array_get(arch, 0));
  }
  json_t *layers = json_object_get(b, "Layers");
  if (layers != NULL && !json_is_null(layers)) {
    if (!json_is_array(layers))
      return err_set(e, ERR_INVALID_REQUEST, "'Layers' must be a list of layer version ARNs");
    size_t n = json_array_size(layers);
    if (n > FN_MAX_FUNCTION_LAYERS)
      return err_set(e, ERR_INVALID, "Cannot reference more than %d layers.",
                     FN_MAX_FUNCTION_LAYERS);
    const char **arns = arena_alloc(a, (n + 1) * sizeof *arns);
    for (size_t i = 0; i < n; i++) {
      arns[i] = json_string_value(json_array_get(layers, i));
      if (arns[i] == NULL)
        return err_set(e, ERR_INVALID_REQUEST, "'Layers' must be a list of layer version ARNs");
    }
    set->set_layers = true;
    set->layers = arns;
    set->nlayers = n;
  }
  const char *pt = NULL;
  if ((rc = lambda_json_string(b, "PackageType", &pt, e)))
    return rc;
  if (pt != NULL && strcmp(pt, "Zip") != 0)
    return err_set(e, ERR_INVALID, "tarn runs .zip file packages only, not '%s'", pt);
  json_t *env = json_object_get(b, "Environment");
  if (env != NULL && !json_is_null(env)) {
    json_t *vars = json_object_get(env, "Variables");
    set->set_env = true;
    if (vars != NULL && !json_is_null(vars)) {
      if (!json_is_object(vars))
        return err_set(e, ERR_INVALID_REQUEST, "Environment.Variables must be an object");
      size_t n = json_object_size(vars);
      if (n > FN_MAX_ENV_BYTES / 2)
        return err_set(e, ERR_INVALID, "too many environment variables");
      str_pair *pairs = arena_alloc(a, (n + 1) * sizeof *pairs);
      size_t i = 0;
      const char *k;
      json_t *v;
      json_object_foreach(vars, k, v)
      {
        if (!json_is_string(v))
          return err_set(e, ERR_INVALID_REQUEST, "environment variable '%s' must be a string", k);
        pairs[i].name = arena_strdup(a, k);
        pairs[i].value = arena_strdup(a, json_string_value(v));
        i++;
      }
      set->env = pairs;
      set->nenv = n;
    }
  }
  return 0;
}

static json_t *config_json(const fn_config *c)
{
  char lm2[LAMBDA_JSON_TIME];
  lambda_json_time(c->last_modified_ms, lm2);
  json_t *j = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:s, s:s, s:s, s:{s:s}, s:s, s:s, s:s, s:s,"
      " s:[s], s:{s:I}, s:{s:s, s:s}, s:{s:s, s:s}}",
      "FunctionName", c->name, "FunctionArn", c->arn, "Runtime", c->runtime, "Role", c->role,
      "Handler", c->handler, "CodeSize", (json_int_t)c->code.zip_size, "Description",
      c->description, "Timeout", (json_int_t)c->timeout_s, "MemorySize",
      (json_int_t)c->memory_mb, "LastModified", lm2, "CodeSha256", c->code.sha256_b64, "Version",
      c->version, "TracingConfig", "Mode", "PassThrough", "RevisionId", c->revision_id, "State",
      "Active", "LastUpdateStatus", "Successful", "PackageType", "Zip", "Architectures",
      c->architecture[0] ? c->architecture : "x86_64", "EphemeralStorage", "Size",
      (json_int_t)c->ephemeral_mb, "SnapStart", "ApplyOn", "None", "OptimizationStatus", "Off",
      "LoggingConfig", "LogFormat", "Text", "LogGroup", "");
  char group[128];
  snprintf(group, sizeof group, "/aws/lambda/%s", c->name);
  json_object_set_new(json_object_get(j, "LoggingConfig"), "LogGroup", json_string(group));
  if (c->nenv > 0) {
    json_t *vars = json_object();
    for (size_t i = 0; i < c->nenv; i++)
      json_object_set_new(vars, c->env[i].name, json_string(c->env[i].value));
    json_object_set_new(j, "Environment", json_pack("{s:o}", "Variables", vars));
  }
  if (c->nlayers > 0) {
    json_t *layers = json_array();
    for (size_t i = 0; i < c->nlayers; i++)
      json_array_append_new(layers, json_pack("{s:s, s:I}", "Arn", c->layers[i].arn, "CodeSize",
                                              (json_int_t)c->layers[i].code_size));
    json_object_set_new(j, "Layers", layers);
  }
  lambda_events_dead_letter_out(c->name, j);
  return j;
}

static json_t *alias_json(const fn_alias *al)
{
  return json_pack("{s:s, s:s, s:s, s:s, s:s}", "AliasArn", al->arn, "Name", al->name,
                   "FunctionVersion", al->function_version, "Description", al->description,
                   "RevisionId", al->revision_id);
}

/* The function name of the path, and a qualifier from ?Qualifier= or the ARN. */
static int target(http_req *r, const call *c, const char **name, const char **qual, err *e)
{
  return fn_name_parse(c->function, http_req_param(r, "Qualifier"), r->arena, name, qual, e);
}

static size_t max_items(http_req *r)
{
  const char *m = http_req_param(r, "MaxItems");
  long n = m ? strtol(m, NULL, 10) : 50;
  return n < 1 ? 1 : n > 10000 ? 10000 : (size_t)n;
}

/* ---- operations ---- */

static int op_create(lambda *l, http_req *r, call *c, err *e)
{
  json_t *b;
  int rc = lambda_json_body(r, &b, e);
  if (rc)
    return rc;
  const char *name = NULL;
  fn_settings set;
  fn_code code;
  bool given = false;
  bool publish = false;
  fn_config out;
  if ((rc = lambda_json_string(b, "FunctionName", &name, e)) == 0 && name == NULL)
    rc = err_set(e, ERR_INVALID, "FunctionName is required");
  if (rc == 0)
    rc = parse_settings(b, r->arena, &set, e);
  if (rc == 0)
    rc = api_authorize_pass_role(r, set.role, e);
  if (rc == 0)
    rc = lambda_json_bool(b, "Publish", &publish, e);
  const char *fname = NULL;
  const char *q = NULL;
  if (rc == 0)
    rc = fn_name_parse(name, NULL, r->arena, &fname, &q, e);
  if (rc == 0 && q != NULL)
    rc = err_set(e, ERR_INVALID, "FunctionName must not have a qualifier");
  json_t *jc = json_object_get(b, "Code");
  if (rc == 0 && !json_is_object(jc))
    rc = err_set(e, ERR_INVALID, "Code is required");
  if (rc == 0)
    rc = lambda_json_code(l->fn, l->st, jc, r, &code, &given, e);
  if (rc == 0 && !given)
    rc = err_set(e, ERR_INVALID, "Please provide a source for function code.");
  if (rc == 0)
    rc = lambda_events_dead_letter_in(fname, b, false, e);
  if (rc == 0)
    rc = fn_function_create(l->fn, fname, &set, &code, publish, r->arena, &out, e);
  if (rc == 0)
    api_authz_warn_role(fname, out.role);
  if (rc == 0)
    rc = lambda_events_dead_letter_in(fname, b, true, e);
  json_decref(b);
  if (rc == 0)
    lambda_json_send(r, 201, config_json(&out));
  return rc;
}

static int op_list(lambda *l, http_req *r, call *c, err *e)
{
  const char *fv = http_req_param(r, "FunctionVersion");
  if (fv != NULL && strcmp(fv, "ALL") != 0)
    return err_set(e, ERR_INVALID, "FunctionVersion must be ALL");
  fn_config *list;
  size_t n;
  const char *next;
  int rc = fn_function_list(l->fn, http_req_param(r, "Marker"), max_items(r), fv != NULL,
                            r->arena, &list, &n, &next, e);
  if (rc)
    return rc;
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, config_json(&list[i]));
  lambda_json_send_page(r, "Functions", arr, next);
  return 0;
}

static int get_function(lambda *l, http_req *r, const call *c, bool config_only, err *e)
{
  const char *name;
  const char *q;
  fn_config cfg;
  int rc = target(r, c, &name, &q, e);
  if (rc == 0)
    rc = fn_function_get(l->fn, name, q, r->arena, &cfg, e);
  if (rc)
    return rc;
  json_t *conf = config_json(&cfg);
  if (config_only) {
    lambda_json_send(r, 200, conf);
    return 0;
  }
  json_t *j = json_pack("{s:o, s:{s:s}, s:{}}", "Configuration", conf, "Code", "RepositoryType",
                        "S3", "Tags");
  if (cfg.reserved_concurrency >= 0)
    json_object_set_new(j, "Concurrency", json_pack("{s:i}", "ReservedConcurrentExecutions",
                                                    cfg.reserved_concurrency));
  lambda_json_send(r, 200, j);
  return 0;
}

static int op_get(lambda *l, http_req *r, call *c, err *e)
{
  return get_function(l, r, c, false, e);
}

static int op_get_config(lambda *l, http_req *r, call *c, err *e)
{
  return get_function(l, r, c, true, e);
}

static int op_delete(lambda *l, http_req *r, call *c, err *e)
{
  const char *name;
  const char *q;
  int rc = target(r, c, &name, &q, e);
  if (rc == 0)
    rc = fn_function_delete(l->fn, name, q, e);
  if (rc == 0 && q == NULL)
    lambda_urls_function_deleted(name);
  if (rc == 0)
    http_resp_status(r, 204);
  return rc;
}

static int op_update_config(lambda *l, http_req *r, call *c, err *e)
{
  json_t *b;
  int rc = lambda_json_body(r, &b, e);
  if (rc)
    return rc;
  const char *name;
  const char *q;
  fn_settings set;
  fn_config out;
  rc = target(r, c, &name, &q, e);
  if (rc == 0)
    rc = parse_settings(b, r->arena, &set, e);
  if (rc == 0)
    rc = api_authorize_pass_role(r, set.role, e);
  if (rc == 0)
    rc = lambda_events_dead_letter_in(name, b, false, e);
  if (rc == 0)
    rc = fn_function_update_config(l->fn, name, &set, r->arena, &out, e);
  if (rc == 0)
    rc = lambda_events_dead_letter_in(name, b, true, e);
  json_decref(b);
  if (rc == 0)
    lambda_json_send(r, 200, config_json(&out));
  return rc;
}

static int op_update_code(lambda *l, http_req *r, call *c, err *e)
{
  json_t *b;
  int rc = lambda_json_body(r, &b, e);
  if (rc)
    return rc;
  const char *name;
  const char *q;
  fn_code code;
  bool given = false;
  bool publish = false;
  bool dry = false;
  const char *rev = NULL;
  fn_config out;
  rc = target(r, c, &name, &q, e);
  if (rc == 0)
    rc = lambda_json_bool(b, "Publish", &publish, e);
  if (rc == 0)
    rc = lambda_json_bool(b, "DryRun", &dry, e);
  if (rc == 0)
    rc = lambda_json_string(b, "RevisionId", &rev, e);
  if (rc == 0)
    rc = fn_function_get(l->fn, name, NULL, r->arena, &out, e);
  if (rc == 0)
    rc = lambda_json_code(l->fn, l->st, b, r, &code, &given, e);
  if (rc == 0 && !given)
    rc = err_set(e, ERR_INVALID, "Please provide a source for function code.");
  if (rc == 0 && !dry)
    rc = fn_function_update_code(l->fn, name, &code, rev, publish, r->arena, &out, e);
  json_decref(b);
  if (rc == 0)
    lambda_json_send(r, 200, config_json(&out));
  return rc;
}

static int op_publish(lambda *l, http_req *r, call *c, err *e)
{
  json_t *b;
  int rc = lambda_json_body(r, &b, e);
  if (rc)
    return rc;
  const char *name;
  const char *q;
  const char *sha = NULL;
  const char *desc = NULL;
  const char *rev = NULL;
  fn_config out;
  rc = target(r, c, &name, &q, e);
  if (rc == 0 && ((rc = lambda_json_string(b, "CodeSha256", &sha, e)) == 0) &&
      (rc = lambda_json_string(b, "Description", &desc, e)) == 0 &&
      (rc = lambda_json_string(b, "RevisionId", &rev, e)) == 0)
    rc = fn_version_publish(l->fn, name, sha, desc, rev, r->arena, &out, e);
  json_decref(b);
  if (rc == 0)
    lambda_json_send(r, 201, config_json(&out));
  return rc;
}

static int op_list_versions(lambda *l, http_req *r, call *c, err *e)
{
  const char *name;
  const char *q;
  fn_config *list;
  size_t n;
  const char *next;
  int rc = target(r, c, &name, &q, e);
  if (rc == 0)
    rc = fn_version_list(l->fn, name, http_req_param(r, "Marker"), max_items(r), r->arena, &list,
                         &n, &next, e);
  if (rc)
    return rc;
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, config_json(&list[i]));
  lambda_json_send_page(r, "Versions", arr, next);
  return 0;
}

static int op_alias_get(lambda *l, http_req *r, call *c, err *e)
{
  const char *name;
  const char *q;
  fn_alias al;
  int rc = target(r, c, &name, &q, e);
  if (rc == 0)
    rc = fn_alias_get(l->fn, name, c->alias, r->arena, &al, e);
  if (rc == 0)
    lambda_json_send(r, 200, alias_json(&al));
  return rc;
}

static int op_alias_delete(lambda *l, http_req *r, call *c, err *e)
{
  const char *name;
  const char *q;
  int rc = target(r, c, &name, &q, e);
  if (rc == 0)
    rc = fn_alias_delete(l->fn, name, c->alias, e);
  if (rc == 0)
    http_resp_status(r, 204);
  return rc;
}

static int op_alias_list(lambda *l, http_req *r, call *c, err *e)
{
  const char *name;
  const char *q;
  int rc = target(r, c, &name, &q, e);
  if (rc)
    return rc;
  fn_alias *list;
  size_t n;
  const char *next;
  rc = fn_alias_list(l->fn, name, http_req_param(r, "FunctionVersion"),
                     http_req_param(r, "Marker"), max_items(r), r->arena, &list, &n, &next, e);
  if (rc)
    return rc;
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, alias_json(&list[i]));
  lambda_json_send_page(r, "Aliases", arr, next);
  return 0;
}

/* CreateAlias (create) and UpdateAlias read the same body. */
static int alias_put(lambda *l, http_req *r, const call *c, bool create, err *e)
{
  const char *name;
  const char *q;
  int rc = target(r, c, &name, &q, e);
  if (rc)
    return rc;
  fn_alias al;
  json_t *b;
  if ((rc = lambda_json_body(r, &b, e)) != 0)
    return rc;
  const char *aname = NULL;
  const char *version = NULL;
  const char *desc = NULL;
  const char *rev = NULL;
  if ((rc = lambda_json_string(b, "Name", &aname, e)) == 0 &&
      (rc = lambda_json_string(b, "FunctionVersion", &version, e)) == 0 &&
      (rc = lambda_json_string(b, "Description", &desc, e)) == 0 &&
      (rc = lambda_json_string(b, "RevisionId", &rev, e)) == 0) {
    json_t *routing = json_object_get(b, "RoutingConfig");
    if (routing != NULL && json_object_size(json_object_get(routing, "AdditionalVersionWeights")))
      rc = err_set(e, ERR_INVALID, "tarn does not support weighted aliases yet");
  }
  if (rc == 0 && create)
    rc = fn_alias_create(l->fn, name, aname, version, desc, r->arena, &al, e);
  else if (rc == 0)
    rc = fn_alias_update(l->fn, name, c->alias, version, desc, rev, r->arena, &al, e);
  json_decref(b);
  if (rc == 0)
    lambda_json_send(r, create ? 201 : 200, alias_json(&al));
  return rc;
}

static int op_alias_create(lambda *l, http_req *r, call *c, err *e)
{
  return alias_put(l, r, c, true, e);
}

static int op_alias_update(lambda *l, http_req *r, call *c, err *e)
{
  return alias_put(l, r, c, false, e);
}

static int op_concurrency_get(lambda *l, http_req *r, call *c, err *e)
{
  const char *name;
  const char *q;
  int reserved;
  int rc = target(r, c, &name, &q, e);
  if (rc == 0)
    rc = fn_concurrency_get(l->fn, name, &reserved, e);
  if (rc)
    return rc;
  lambda_json_send(r, 200,
                   reserved >= 0 ? json_pack("{s:i}", "ReservedConcurrentExecutions", reserved)
                                 : json_object());
  return 0;
}

static int op_concurrency_delete(lambda *l, http_req *r, call *c, err *e)
{
  const char *name;
  const char *q;
  int rc = target(r, c, &name, &q, e);
  if (rc == 0)
    rc = fn_concurrency_put(l->fn, name, -1, e);
  if (rc == 0)
    http_resp_status(r, 204);
  return rc;
}

static int op_concurrency_put(lambda *l, http_req *r, call *c, err *e)
{
  const char *name;
  const char *q;
  int rc = target(r, c, &name, &q, e);
  if (rc)
    return rc;
  json_t *b;
  if ((rc = lambda_json_body(r, &b, e)) != 0)
    return rc;
  json_t *v = json_object_get(b, "ReservedConcurrentExecutions");
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
    rc = err_set(e, ERR_INVALID, "ReservedConcurrentExecutions must be an integer of at least 0");
  int n = rc == 0 ? (int)json_integer_value(v) : 0;
  json_decref(b);
  if (rc == 0)
    rc = fn_concurrency_put(l->fn, name, n, e);
  if (rc == 0)
    lambda_json_send(r, 200, json_pack("{s:i}", "ReservedConcurrentExecutions", n));
  return rc;
}

/* Writes an invocation's result as Invoke's response. */
static void invoke_answer(http_req *r, const call *c, fn_invoke_result *res)
{
  int status = res->status;
  if (res->function_error != NULL && c->error_status)
    status = 502;
  http_resp_status(r, status);
  http_resp_header(r, "x-amzn-RequestId", res->request_id ? res->request_id : r->request_id);
  if (res->executed_version != NULL && res->status == 200)
    http_resp_header(r, "X-Amz-Executed-Version", res->executed_version);
  if (res->function_error != NULL)
    http_resp_header(r, "X-Amz-Function-Error", res->function_error);
  if (res->log_tail_b64 != NULL)
    http_resp_header(r, "X-Amz-Log-Result", res->log_tail_b64);
  if (res->status == 200) {
    http_resp_header(r, "Content-Type", "application/json");
    buf_release(&r->resp_body);
    r->resp_body = res->payload;
    buf_init(&res->payload, 0);
    if (r->resp_body.max < r->resp_body.len)
      r->resp_body.max = r->resp_body.len;
  } else {
    buf_release(&res->payload);
  }
}

/* The end of a synchronous Invoke (fn_invoke_done: under fn's lock, and
 * before cleanup() for the request, see (2)). */
static void invoke_done(void *ctx, int rc, fn_invoke_result *res, const err *e)
{
  call *c = ctx;
  http_req *r = c->req;
  if (rc != 0)
    lambda_error(NULL, r, e);
  else
    invoke_answer(r, c, res);
  http_req_resume(r);
}

/* A synchronous Invoke returns 0 with the request parked: from then on it
 * is invoke_done's, and nothing here may touch it. */
static int op_invoke(lambda *l, http_req *r, call *c, err *e)
{
  const char *type = http_req_header(r, "x-amz-invocation-type");
  const char *log = http_req_header(r, "x-amz-log-type");
  const char *fe = http_req_param(r, "tarn-function-error");
  fn_invoke_params p = {
      .name = c->function,
      .qualifier = http_req_param(r, "Qualifier"),
      .type = FN_INVOKE_SYNC,
      .payload = r->body.data ? r->body.data : "",
      .len = r->body.len,
      .log_tail = log != NULL && strcmp(log, "Tail") == 0,
      .client_context = http_req_header(r, "x-amz-client-context"),
  };
  if (type == NULL || strcmp(type, "RequestResponse") == 0)
    p.type = FN_INVOKE_SYNC;
  else if (strcmp(type, "Event") == 0)
    p.type = FN_INVOKE_EVENT;
  else if (strcmp(type, "DryRun") == 0)
    p.type = FN_INVOKE_DRYRUN;
  else
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'invocationType' "
                                   "failed to satisfy constraint: Member must satisfy enum value "
                                   "set: [Event, RequestResponse, DryRun]", type);
  if (log != NULL && strcmp(log, "Tail") != 0 && strcmp(log, "None") != 0)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'logType' failed "
                                   "to satisfy constraint: Member must satisfy enum value set: "
                                   "[None, Tail]", log);
  if (fe != NULL && strcmp(fe, "status") != 0)
    return err_set(e, ERR_INVALID, "tarn-function-error must be 'status'");
  c->error_status = fe != NULL;
  if (p.type != FN_INVOKE_SYNC)
    p.log_tail = false;
  if (p.client_context != NULL && strlen(p.client_context) > 3583)
    return err_set(e, ERR_INVALID, "Client context must be at most 3583 bytes of base64");
  if (p.type == FN_INVOKE_SYNC) {
    /* Parked before it starts: the end may come before fn_invoke returns. */
    c->req = r;
    c->parked = true;
    p.done = invoke_done;
    p.done_ctx = c;
    p.running = &c->running;
    http_req_park(r);
  }
  fn_invoke_result res;
  int rc = fn_invoke(l->fn, &p, r->arena, &res, e);
  if (rc != 0) {
    c->throttled_reserved = res.throttled_reserved;
    return rc; /* not started: lambda_handle answers (and resumes) */
  }
  if (p.type == FN_INVOKE_SYNC)
    return 0;
  invoke_answer(r, c, &res);
  return 0;
}

static int op_logs(lambda *l, http_req *r, call *c, err *e)
{
  const char *name;
  const char *q;
  int rc = target(r, c, &name, &q, e);
  if (rc)
    return rc;
  const char *bytes = http_req_param(r, "bytes");
  long max = bytes ? strtol(bytes, NULL, 10) : 65536;
  if (max < 1 || max > (1 << 20))
    max = 1 << 20;
  if ((rc = fn_logs_read(l->fn, name, (size_t)max, &r->resp_body, e)) == 0)
    http_resp_header(r, "Content-Type", "text/plain; charset=utf-8");
  return rc;
}

/* Event source mappings and event invoke configs: lambda_events.c names
 * them (r->op) and runs them. */
static int op_events(lambda *l, http_req *r, call *c, err *e)
{
  return lambda_events_handle(r, e);
}

/* Layers: lambda_layers.c names them (r->op) and runs them. */
static int op_layers(lambda *l, http_req *r, call *c, err *e)
{
  return lambda_layers_handle(l->fn, l->st, r, e);
}

/* Function URL configurations: lambda_urls.c runs them. */
static int op_urls(lambda *l, http_req *r, call *c, err *e)
{
  return lambda_urls_handle(l->fn, r, c->function, e);
}

/* ---- dispatch ---- */

static const op_def events_op = {.fn = op_events};
static const op_def layers_op = {.fn = op_layers};
static const op_def urls_op = {.fn = op_urls};

static const op_def ops[] = {
    {"POST", "/2015-03-31", NULL, "CreateFunction", NULL, op_create, CODE_BODY_MAX},
    {"GET", "/2015-03-31", NULL, "ListFunctions", NULL, op_list, 0},
    {"GET", "/2015-03-31", "", "GetFunction", NULL, op_get, 0},
    {"DELETE", "/2015-03-31", "", "DeleteFunction", NULL, op_delete, 0},
    {"GET", "/2015-03-31", "/configuration", "GetFunctionConfiguration", NULL, op_get_config, 0},
    {"PUT", "/2015-03-31", "/configuration", "UpdateFunctionConfiguration", NULL,
     op_update_config, SMALL_BODY_MAX},
    {"PUT", "/2015-03-31", "/code", "UpdateFunctionCode", NULL, op_update_code, CODE_BODY_MAX},
    {"POST", "/2015-03-31", "/versions", "PublishVersion", NULL, op_publish, SMALL_BODY_MAX},
    {"GET", "/2015-03-31", "/versions", "ListVersionsByFunction", NULL, op_list_versions, 0},
    {"POST", "/2015-03-31", "/aliases", "CreateAlias", NULL, op_alias_create, SMALL_BODY_MAX},
    {"GET", "/2015-03-31", "/aliases", "ListAliases", NULL, op_alias_list, 0},
    {"GET", "/2015-03-31", "*", "GetAlias", NULL, op_alias_get, 0},
    {"PUT", "/2015-03-31", "*", "UpdateAlias", NULL, op_alias_update, SMALL_BODY_MAX},
    {"DELETE", "/2015-03-31", "*", "DeleteAlias", NULL, op_alias_delete, 0},
    {"POST", "/2015-03-31", "/invocations", "Invoke", "lambda:InvokeFunction", op_invoke,
     FN_MAX_SYNC_PAYLOAD},
    {"PUT", "/2017-10-31", "/concurrency", "PutFunctionConcurrency", NULL, op_concurrency_put,
     SMALL_BODY_MAX},
    {"DELETE", "/2017-10-31", "/concurrency", "DeleteFunctionConcurrency", NULL,
     op_concurrency_delete, 0},
    {"GET", "/2019-09-30", "/concurrency", "GetFunctionConcurrency", NULL, op_concurrency_get, 0},
    {"GET", "/2015-03-31", "/logs", "GetFunctionLogs", NULL, op_logs, 0},
};

/* Finds r's entry of ops[] (and the function and alias of its path). */
static int route(http_req *r, err *e)
{
  call *c = arena_alloc(r->arena, sizeof *c);
  r->svc = c;
  if (lambda_events_route(r)) {
    c->op = &events_op;
    return lambda_events_prepare(r, e);
  }
  if (lambda_layers_route(r)) {
    c->op = &layers_op;
    return lambda_layers_prepare(r, e);
  }
  if (lambda_urls_route(r)) {
    c->op = &urls_op;
    return lambda_urls_prepare(r, &c->function, e);
  }
  const char *path = r->path;
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    const op_def *o = &ops[i];
    size_t plen = strlen(o->prefix);
    if (strncmp(path, o->prefix, plen) != 0 || !str_starts(path + plen, "/functions"))
      continue;
    if (strcmp(r->method, o->method) != 0)
      continue;
    const char *rest = path + plen + strlen("/functions");
    if (o->suffix == NULL) {
      if (strcmp(rest, "") != 0 && strcmp(rest, "/") != 0)
        continue;
    } else {
      if (rest[0] != '/')
        continue;
      const char *f = rest + 1;
      const char *slash = strchr(f, '/');
      rest = slash ? slash : "";
      size_t flen = slash ? (size_t)(slash - f) : strlen(f);
      if (flen == 0)
        continue;
      if (strcmp(o->suffix, "*") == 0) {
        if (!str_starts(rest, "/aliases/") || rest[9] == '\0' || strchr(rest + 9, '/') != NULL)
          continue;
        c->alias = arena_strdup(r->arena, rest + 9);
      } else if (strcmp(rest, o->suffix) != 0) {
        continue;
      }
      c->function = arena_strndup(r->arena, f, flen);
    }
    c->op = o;
    r->op = o->name;
    if (o->body_max)
      http_req_body_max(r, o->body_max);
    return 0;
  }
  return err_set(e, ERR_METHOD_NOT_ALLOWED, "no operation %s %s", r->method, path);
}

static void lambda_handle(void *ctx, http_req *r)
{
  lambda *l = ctx;
  call *c = r->svc;
  err e = {0};
  int rc = c->op != NULL ? c->op->fn(l, r, c, &e) : 0;
  if (rc != 0) {
    r->nresp_headers = 0;
    buf_reset(&r->resp_body);
    lambda_error(l, r, &e);
    if (c->parked)
      http_req_resume(r); /* parked, but the invocation never started */
  }
}

/* Forgets a parked invocation's request: under fn's lock, so invoke_done
 * either ran before or never will (see (2)). */
static void lambda_cleanup(void *ctx, http_req *r)
{
  lambda *l = ctx;
  call *c = r->svc;
  if (c != NULL && c->parked)
    fn_invoke_forget(l->fn, &c->running);
}

http_service *lambda_service_new(fn_system *fn, store *st)
{
  lambda *l = xcalloc(1, sizeof *l);
  l->fn = fn;
  l->st = st;
  l->svc = (http_service){
      .name = "lambda",
      .ctx = l,
      .prepare = lambda_prepare,
      .handle = lambda_handle,
      .error = lambda_error,
      .cleanup = lambda_cleanup,
      .unsigned_body_max = CODE_BODY_MAX,
  };
  return &l->svc;
}

http_service *lambda_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
