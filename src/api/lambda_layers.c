/* api/lambda_layers.c -- the Lambda operations of layers (2018-10-31),
 * answered from api/lambda.c's routes, over fn/'s fn_layer_*.
 *
 *   GET    /2018-10-31/layers                               ListLayers
 *   GET    /2018-10-31/layers?find=LayerVersion&Arn=ARN     GetLayerVersionByArn
 *   POST   /2018-10-31/layers/L/versions                    PublishLayerVersion
 *   GET    /2018-10-31/layers/L/versions                    ListLayerVersions
 *   GET    /2018-10-31/layers/L/versions/N                  GetLayerVersion
 *   DELETE /2018-10-31/layers/L/versions/N                  DeleteLayerVersion
 *   POST   /2018-10-31/layers/L/versions/N/policy           AddLayerVersionPermission
 *   GET    /2018-10-31/layers/L/versions/N/policy           GetLayerVersionPolicy
 *   DELETE /2018-10-31/layers/L/versions/N/policy/SID       RemoveLayerVersionPermission
 *
 * L is a layer name or its ARN (percent-decoded by the HTTP layer).
 * Shapes follow botocore's lambda model; errors go through lambda.c's
 * lambda_error like every other operation's.
 *
 * Invariants:
 *   (1) Every input is checked (by fn/) before anything changes; the body
 *       limit is set in lambda_layers_prepare (PublishLayerVersion takes a
 *       zip as large as CreateFunction does).
 *   (2) Content.Location is left out: tarn keeps a zip's files, not the
 *       zip (GetFunction's Code has no Location either).
 *
 * Start reading at the ops[] table and lambda_layers_handle().
 */
#include "api/lambda_layers.h"

#include "api/lambda_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "/2018-10-31/layers"
#define CODE_BODY_MAX 70167211u
#define SMALL_BODY_MAX (1u << 20)

enum route {
  R_NONE,
  R_ROOT,      /* /layers[/] */
  R_VERSIONS,  /* /layers/L/versions */
  R_VERSION,   /* /layers/L/versions/N */
  R_POLICY,    /* /layers/L/versions/N/policy */
  R_STATEMENT, /* /layers/L/versions/N/policy/SID */
};

typedef struct where {
  enum route route;
  char *layer;
  char *version;
  char *sid;
} where;

/* Splits the path; the layer name may be an ARN (it holds no '/'). */
static where route_of(const http_req *r)
{
  where w = {R_NONE, NULL, NULL, NULL};
  if (!str_starts(r->path, PREFIX))
    return w;
  const char *rest = r->path + strlen(PREFIX);
  if (strcmp(rest, "") == 0 || strcmp(rest, "/") == 0) {
    w.route = R_ROOT;
    return w;
  }
  if (rest[0] != '/')
    return w;
  char *parts[6];
  size_t n = 0;
  char *copy = arena_strdup(r->arena, rest + 1);
  for (char *p = copy; n < 6;) {
    parts[n++] = p;
    char *slash = strchr(p, '/');
    if (slash == NULL)
      break;
    *slash = '\0';
    p = slash + 1;
  }
  if (n < 2 || parts[0][0] == '\0' || strcmp(parts[1], "versions") != 0 ||
      (n >= 3 && parts[2][0] == '\0') || (n >= 4 && strcmp(parts[3], "policy") != 0) ||
      (n == 5 && parts[4][0] == '\0') || n > 5)
    return w;
  w.layer = parts[0];
  w.version = n >= 3 ? parts[2] : NULL;
  w.sid = n == 5 ? parts[4] : NULL;
  w.route = n == 2 ? R_VERSIONS : n == 3 ? R_VERSION : n == 4 ? R_POLICY : R_STATEMENT;
  return w;
}

bool lambda_layers_route(const http_req *r)
{
  return route_of(r).route != R_NONE;
}

/* ---- JSON ---- */

static json_t *strings(const char **v, size_t n)
{
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, json_string(v[i]));
  return arr;
}

/* A LayerVersionsListItem; with content, GetLayerVersion's answer. */
static json_t *version_json(const fn_layer_version *v, bool content)
{
  char created[LAMBDA_JSON_TIME];
  lambda_json_time(v->created_ms, created);
  json_t *j = json_pack("{s:s, s:I, s:s, s:s, s:o, s:o}", "LayerVersionArn", v->arn, "Version",
                        (json_int_t)v->version, "Description", v->description, "CreatedDate",
                        created, "CompatibleRuntimes", strings(v->runtimes, v->nruntimes),
                        "CompatibleArchitectures",
                        strings(v->architectures, v->narchitectures));
  if (v->license != NULL)
    json_object_set_new(j, "LicenseInfo", json_string(v->license));
  if (content) {
    json_object_set_new(j, "LayerArn", json_string(v->layer_arn));
    json_object_set_new(j, "Content", json_pack("{s:s, s:I}", "CodeSha256", v->code.sha256_b64,
                                                "CodeSize", (json_int_t)v->code.zip_size));
  }
  return j;
}

/* A version number of the path: 1.. (as Lambda's long). */
static int version_of(const char *text, uint32_t *out, err *e)
{
  char *end;
  unsigned long long v = text ? strtoull(text, &end, 10) : 0;
  if (text == NULL || *text == '\0' || *end != '\0' || text[0] == '-' || v > UINT32_MAX)
    return err_set(e, ERR_INVALID_REQUEST, "invalid layer version '%s'", text ? text : "");
  if (v < 1)
    return err_set(e, ERR_INVALID, "Layer Version Cannot be less than 1");
  *out = (uint32_t)v;
  return 0;
}

static size_t max_items(http_req *r, err *e, int *rc)
{
  const char *m = http_req_param(r, "MaxItems");
  if (m == NULL)
    return 50;
  long n = strtol(m, NULL, 10);
  if (n < 1 || n > 50)
    *rc = err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'maxItems' failed "
                                  "to satisfy constraint: Member must have value less than or "
                                  "equal to 50",
                  m);
  return (size_t)n;
}

/* A list member of strings; NULL entries end up as validation errors in fn/. */
static int string_list(json_t *b, const char *key, arena *a, const char ***out, size_t *n,
                       err *e)
{
  json_t *v = json_object_get(b, key);
  *out = NULL;
  *n = 0;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_array(v) || json_array_size(v) > 64)
    return err_set(e, ERR_INVALID_REQUEST, "'%s' must be a list of strings", key);
  *n = json_array_size(v);
  *out = arena_alloc(a, (*n + 1) * sizeof **out);
  for (size_t i = 0; i < *n; i++) {
    (*out)[i] = json_string_value(json_array_get(v, i));
    if ((*out)[i] == NULL)
      return err_set(e, ERR_INVALID_REQUEST, "'%s' must be a list of strings", key);
  }
  return 0;
}

/* ---- operations ---- */

static int publish(fn_system *fn, store *st, http_req *r, const where *w, err *e)
{
  json_t *b;
  int rc = lambda_json_body(r, &b, e);
  if (rc)
    return rc;
  fn_layer_settings set = {0};
  const char **runtimes = NULL;
  const char **archs = NULL;
  json_t *content = json_object_get(b, "Content");
  if ((rc = lambda_json_string(b, "Description", &set.description, e)) == 0 &&
      (rc = lambda_json_string(b, "LicenseInfo", &set.license, e)) == 0 &&
      (rc = string_list(b, "CompatibleRuntimes", r->arena, &runtimes, &set.nruntimes, e)) == 0 &&
      (rc = string_list(b, "CompatibleArchitectures", r->arena, &archs, &set.narchitectures,
                        e)) == 0 &&
      !json_is_object(content))
    rc = err_set(e, ERR_INVALID, "1 validation error detected: Value null at 'content' failed to "
                                 "satisfy constraint: Member must not be null");
  set.runtimes = runtimes;
  set.architectures = archs;
  fn_code code;
  bool given = false;
  if (rc == 0)
    rc = lambda_json_code(fn, st, content, r, &code, &given, e);
  if (rc == 0 && !given)
    rc = err_set(e, ERR_INVALID, "Please provide a source for layer content.");
  fn_layer_version v;
  if (rc == 0)
    rc = fn_layer_publish(fn, w->layer, &set, &code, r->arena, &v, e);
  json_decref(b);
  if (rc == 0)
    lambda_json_send(r, 201, version_json(&v, true));
  return rc;
}

static int list(fn_system *fn, store *st, http_req *r, const where *w, err *e)
{
  int rc = 0;
  size_t max = max_items(r, e, &rc);
  if (rc != 0)
    return rc;
  fn_layer_version *vs;
  size_t n;
  const char *next;
  rc = fn_layer_list(fn, w->layer, http_req_param(r, "CompatibleRuntime"),
                     http_req_param(r, "CompatibleArchitecture"), http_req_param(r, "Marker"),
                     max, r->arena, &vs, &n, &next, e);
  if (rc != 0)
    return rc;
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *item = version_json(&vs[i], false);
    if (w->layer == NULL)
      item = json_pack("{s:s, s:s, s:o}", "LayerName", vs[i].name, "LayerArn", vs[i].layer_arn,
                       "LatestMatchingVersion", item);
    json_array_append_new(arr, item);
  }
  lambda_json_send_page(r, w->layer == NULL ? "Layers" : "LayerVersions", arr, next);
  return 0;
}

static int get(fn_system *fn, store *st, http_req *r, const where *w, err *e)
{
  fn_layer_version v;
  int rc;
  if (w->route == R_ROOT) {
    rc = fn_layer_get_arn(fn, http_req_param(r, "Arn"), r->arena, &v, e);
  } else {
    uint32_t number = 0;
    rc = version_of(w->version, &number, e);
    if (rc == 0)
      rc = fn_layer_get(fn, w->layer, number, r->arena, &v, e);
  }
  if (rc == 0)
    lambda_json_send(r, 200, version_json(&v, true));
  return rc;
}

static int delete_version(fn_system *fn, store *st, http_req *r, const where *w, err *e)
{
  uint32_t number = 0;
  int rc = version_of(w->version, &number, e);
  if (rc == 0)
    rc = fn_layer_delete(fn, w->layer, number, e);
  if (rc == 0)
    http_resp_status(r, 204);
  return rc;
}

static int permission_add(fn_system *fn, store *st, http_req *r, const where *w, err *e)
{
  uint32_t number = 0;
  int rc = version_of(w->version, &number, e);
  if (rc)
    return rc;
  json_t *b;
  if ((rc = lambda_json_body(r, &b, e)) != 0)
    return rc;
  const char *sid = NULL;
  const char *action = NULL;
  const char *principal = NULL;
  const char *org = NULL;
  const char *statement = NULL;
  const char *revision = NULL;
  if ((rc = lambda_json_string(b, "StatementId", &sid, e)) == 0 &&
      (rc = lambda_json_string(b, "Action", &action, e)) == 0 &&
      (rc = lambda_json_string(b, "Principal", &principal, e)) == 0 &&
      (rc = lambda_json_string(b, "OrganizationId", &org, e)) == 0)
    rc = fn_layer_permission_add(fn, w->layer, number, sid, action, principal, org,
                                 http_req_param(r, "RevisionId"), r->arena, &statement,
                                 &revision, e);
  json_decref(b);
  if (rc == 0)
    lambda_json_send(r, 201,
                     json_pack("{s:s, s:s}", "Statement", statement, "RevisionId", revision));
  return rc;
}

static int policy_get(fn_system *fn, store *st, http_req *r, const where *w, err *e)
{
  uint32_t number = 0;
  const char *policy = NULL;
  const char *revision = NULL;
  int rc = version_of(w->version, &number, e);
  if (rc == 0)
    rc = fn_layer_policy_get(fn, w->layer, number, r->arena, &policy, &revision, e);
  if (rc == 0)
    lambda_json_send(r, 200, json_pack("{s:s, s:s}", "Policy", policy, "RevisionId", revision));
  return rc;
}

static int permission_remove(fn_system *fn, store *st, http_req *r, const where *w, err *e)
{
  uint32_t number = 0;
  int rc = version_of(w->version, &number, e);
  if (rc == 0)
    rc = fn_layer_permission_remove(fn, w->layer, number, w->sid,
                                    http_req_param(r, "RevisionId"), e);
  if (rc == 0)
    http_resp_status(r, 204);
  return rc;
}

/* ---- dispatch ---- */

typedef int (*op_fn)(fn_system *fn, store *st, http_req *r, const where *w, err *e);

static const struct op {
  enum route route;
  const char *method;
  bool by_arn;       /* ?find=LayerVersion */
  const char *name;
  size_t body_max;   /* 0: SMALL_BODY_MAX */
  op_fn fn;
} ops[] = {
  {R_ROOT, "GET", false, "ListLayers", 0, list},
  {R_ROOT, "GET", true, "GetLayerVersionByArn", 0, get},
  {R_VERSIONS, "POST", false, "PublishLayerVersion", CODE_BODY_MAX, publish},
  {R_VERSIONS, "GET", false, "ListLayerVersions", 0, list},
  {R_VERSION, "GET", false, "GetLayerVersion", 0, get},
  {R_VERSION, "DELETE", false, "DeleteLayerVersion", 0, delete_version},
  {R_POLICY, "POST", false, "AddLayerVersionPermission", SMALL_BODY_MAX, permission_add},
  {R_POLICY, "GET", false, "GetLayerVersionPolicy", 0, policy_get},
  {R_STATEMENT, "DELETE", false, "RemoveLayerVersionPermission", 0, permission_remove},
};

/* r's entry of ops[], or NULL. */
static const struct op *op_of(http_req *r, const where *w)
{
  const char *find = w->route == R_ROOT ? http_req_param(r, "find") : NULL;
  bool by_arn = find != NULL && strcmp(find, "LayerVersion") == 0;
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (ops[i].route == w->route && ops[i].by_arn == by_arn &&
        strcmp(ops[i].method, r->method) == 0)
      return &ops[i];
  return NULL;
}

int lambda_layers_prepare(http_req *r, err *e)
{
  where w = route_of(r);
  const struct op *op = op_of(r, &w);
  if (op == NULL)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "no operation %s %s", r->method, r->path);
  r->op = op->name;
  http_req_body_max(r, op->body_max ? op->body_max : SMALL_BODY_MAX);
  return 0;
}

int lambda_layers_handle(fn_system *fn, store *st, http_req *r, err *e)
{
  where w = route_of(r);
  const struct op *op = op_of(r, &w);
  if (op == NULL)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "no operation %s %s", r->method, r->path);
  return op->fn(fn, st, r, &w, e);
}

const char *lambda_layers_resource(http_req *r)
{
  where w = route_of(r);
  const char *arn = http_req_param(r, "Arn");
  if (w.route == R_ROOT && r->op != NULL && strcmp(r->op, "GetLayerVersionByArn") == 0 && arn)
    return arn;
  if (w.layer == NULL)
    return "*";
  const char *name = w.layer;
  const char *colon = strrchr(name, ':');
  if (str_starts(name, "arn:") && colon != NULL)
    name = colon + 1;
  if (w.version != NULL)
    return arena_sprintf(r->arena, "arn:aws:lambda:" FN_REGION ":" FN_ACCOUNT_ID ":layer:%s:%s",
                         name, w.version);
  return arena_sprintf(r->arena, "arn:aws:lambda:" FN_REGION ":" FN_ACCOUNT_ID ":layer:%s", name);
}
