/* gateway/gateway.c -- HTTP APIs and function URLs, durable in DATA/gateway
 * (LMDB), served from memory.
 *
 * Why one document per API: an API and its routes, integrations and stages
 * change together (quick create makes four things in one call; a route
 * points at an integration), and the invoke path wants all of them at
 * once. So an API is one JSON document {api, routes{}, integrations{},
 * stages{}}; every write replaces it in one committer change.
 *
 * Layout (named databases):
 *   "apis"  API_ID -> {"api":{...},"routes":{ID:..},"integrations":{ID:..},"stages":{NAME:..},
 *                      "deployments":{ID:..},"authorizers":{ID:..}}
 *   "urls"  URL_ID -> a function URL configuration
 *
 * Invariants:
 *   (1) Memory mirrors LMDB: g->apis and g->urls hold every record; a write
 *       commits first and then swaps the new document in under the lock,
 *       so what readers see is always on disk.
 *   (2) A published document is never changed (writers copy, readers hold a
 *       reference), so readers need the lock only to take the reference.
 *   (3) Writers are serialised by write_mu: read, check, commit, swap is
 *       one step.
 *   (4) Every check runs before the commit: a failing call changes nothing.
 *
 * With --metadata (gateway_share) function URLs live in PostgreSQL instead,
 * shared by the nodes (pg_urls.c); HTTP APIs stay here.
 *
 * Start reading at gateway_open(), then put_api() (every API write).
 */
#include "gateway/internal.h"

#include "base/hash.h"
#include "base/lmdb_env.h"
#include "base/mem.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAP_SIZE (1ull << 30)

struct gateway {
  MDB_env *env;
  MDB_dbi apis_db;             /* "apis" */
  MDB_dbi urls_db;             /* "urls" */
  lmdb_committer committer;
  pthread_mutex_t write_mu;    /* one writer at a time (3) */
  pthread_rwlock_t lock;       /* guards the two objects below */
  json_t *apis;                /* API_ID -> API document (1) */
  json_t *urls;                /* URL_ID -> function URL configuration */
  pg_pool *pg;                 /* --metadata: function URLs in PostgreSQL (pg_urls.c) */
};

/* ---- the committer: one record put or deleted ---- */

typedef struct put_change {
  lmdb_change base;
  MDB_dbi dbi;
  const char *key;
  const char *text;            /* NULL deletes */
} put_change;

static int apply_put(void *ctx, lmdb_change *ch, MDB_txn *txn, arena *a, err *e)
{
  put_change *p = (put_change *)ch;
  MDB_val k = {strlen(p->key), (void *)p->key};
  int rc;
  if (p->text == NULL) {
    rc = mdb_del(txn, p->dbi, &k, NULL);
    if (rc == MDB_NOTFOUND)
      rc = 0;
  } else {
    MDB_val v = {strlen(p->text), (void *)p->text};
    rc = mdb_put(txn, p->dbi, &k, &v, 0);
  }
  return rc != 0 ? lmdb_error(e, rc, "write the gateway's definitions") : 0;
}

/* Writes doc (NULL: deletes) at key, durably, then publishes it in map. */
static int commit(gateway *g, MDB_dbi dbi, json_t *map, const char *key, json_t *doc, err *e)
{
  char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
  if (text != NULL && strlen(text) > GATEWAY_MAX_DOCUMENT) {
    free(text);
    return err_set(e, ERR_LIMIT_EXCEEDED, "the definition of '%s' is larger than %u bytes", key,
                   GATEWAY_MAX_DOCUMENT);
  }
  put_change p = {.base = {.apply = apply_put}, .dbi = dbi, .key = key, .text = text};
  int rc = lmdb_committer_run(&g->committer, &p.base, e);
  free(text);
  if (rc != 0)
    return rc;
  pthread_rwlock_wrlock(&g->lock);
  if (doc != NULL)
    json_object_set(map, key, doc);
  else
    json_object_del(map, key);
  pthread_rwlock_unlock(&g->lock);
  return 0;
}

/* A new reference to map[key], or NULL. */
static json_t *lookup(gateway *g, json_t *map, const char *key)
{
  pthread_rwlock_rdlock(&g->lock);
  json_t *d = json_incref(json_object_get(map, key));
  pthread_rwlock_unlock(&g->lock);
  return d;
}

/* ---- ids, times, members ---- */

/* n random lower-case letters and digits. */
static void random_id(char *out, size_t n)
{
  static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  uint8_t r[64];
  random_bytes(r, n);
  for (size_t i = 0; i < n; i++)
    out[i] = abc[r[i] % 36];
  out[n] = '\0';
}

void gateway__now_iso(char out[32])
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *str_member(const json_t *o, const char *name)
{
  return json_string_value(json_object_get(o, name));
}

/* Copies the members of in named in allowed (NULL-terminated) into doc,
 * checking their JSON types ('s' string, 'b' boolean, 'i' integer, 'o'
 * object, 'a' array: the first character of each spec). */
static int take_members(json_t *doc, const json_t *in, const char *const *allowed, err *e)
{
  if (in != NULL && !json_is_object(in))
    return err_set(e, ERR_INVALID, "the request body must be a JSON object");
  for (size_t i = 0; allowed[i] != NULL; i++) {
    const char *name = allowed[i] + 1;
    json_t *v = json_object_get(in, name);
    if (v == NULL || json_is_null(v))
      continue;
    bool ok = false;
    switch (allowed[i][0]) {
    case 's': ok = json_is_string(v); break;
    case 'b': ok = json_is_boolean(v); break;
    case 'i': ok = json_is_integer(v); break;
    case 'o': ok = json_is_object(v); break;
    case 'a': ok = json_is_array(v); break;
    }
    if (!ok)
      return err_set(e, ERR_INVALID, "Invalid type for '%s'", name);
    json_object_set(doc, name, v);
  }
  return 0;
}

static int check_length(const json_t *doc, const char *name, size_t max, bool required, err *e)
{
  const char *s = str_member(doc, name);
  if (s == NULL)
    return required ? err_set(e, ERR_INVALID, "%s is required", name) : 0;
  if ((required && *s == '\0') || strlen(s) > max)
    return err_set(e, ERR_INVALID, "%s must be 1 to %zu characters", name, max);
  return 0;
}

static int check_string_map(const json_t *doc, const char *name, err *e)
{
  json_t *m = json_object_get(doc, name);
  if (m == NULL)
    return 0;
  const char *k;
  json_t *v;
  json_object_foreach(m, k, v)
  {
    if (!json_is_string(v))
      return err_set(e, ERR_INVALID, "the values of %s must be strings ('%s')", name, k);
    if (strlen(k) > 128 || json_string_length(v) > 2048)
      return err_set(e, ERR_INVALID, "%s: '%s' is too long", name, k);
  }
  return 0;
}

/* ---- normalising documents (create and update share them) ---- */

static const char *const api_members[] = {
    "sname", "sprotocolType", "sdescription", "sversion",
    "srouteSelectionExpression", "sapiKeySelectionExpression", "bdisableExecuteApiEndpoint",
    "ocorsConfiguration", "otags", "bdisableSchemaValidation", NULL};

static int api_normalize(json_t *api, err *e)
{
  int rc;
  if ((rc = check_length(api, "name", 128, true, e)) != 0 ||
      (rc = check_length(api, "description", 1024, false, e)) != 0 ||
      (rc = check_length(api, "version", 64, false, e)) != 0 ||
      (rc = check_string_map(api, "tags", e)) != 0)
    return rc;
  const char *proto = str_member(api, "protocolType");
  if (proto == NULL)
    return err_set(e, ERR_INVALID, "protocolType is required");
  if (strcmp(proto, "WEBSOCKET") == 0) {
    const char *rse = str_member(api, "routeSelectionExpression");
    if (rse == NULL)
      return err_set(e, ERR_INVALID, "routeSelectionExpression is required for WEBSOCKET APIs");
    if (!gateway_ws_expression_ok(rse))
      return err_set(e, ERR_INVALID,
                     "Invalid routeSelectionExpression '%s': want $request.body.MEMBER[.MEMBER...]",
                     rse);
  } else if (strcmp(proto, "HTTP") != 0) {
    return err_set(e, ERR_INVALID, "Invalid protocolType '%s': must be HTTP or WEBSOCKET", proto);
  }
  if (json_object_get(api, "routeSelectionExpression") == NULL)
    json_object_set_new(api, "routeSelectionExpression",
                        json_string("${request.method} ${request.path}"));
  if (json_object_get(api, "apiKeySelectionExpression") == NULL)
    json_object_set_new(api, "apiKeySelectionExpression",
                        json_string("$request.header.x-api-key"));
  if (json_object_get(api, "disableExecuteApiEndpoint") == NULL)
    json_object_set_new(api, "disableExecuteApiEndpoint", json_false());
  if (json_object_get(api, "tags") == NULL)
    json_object_set_new(api, "tags", json_object());
  return 0;
}

static const char *const route_members[] = {
    "srouteKey", "sauthorizationType", "starget", "bapiKeyRequired", "soperationName",
    "sauthorizerId", "aauthorizationScopes", "srouteResponseSelectionExpression", NULL};
static const char *const route_response_members[] = {
    "srouteId", "srouteResponseKey", "smodelSelectionExpression", "oresponseModels",
    "oresponseParameters", NULL};
static const char *const integration_members[] = {
    "sintegrationType", "sintegrationUri", "spayloadFormatVersion", "iintegrationTimeoutInMillis",
    "itimeoutInMillis", "sintegrationMethod", "sconnectionType", "sdescription",
    "scredentialsArn", "orequestParameters", NULL};
static const char *const authorizer_members[] = {
    "sname", "sauthorizerType", "sauthorizerUri", "aidentitySource", "ojwtConfiguration",
    "sauthorizerPayloadFormatVersion", "benableSimpleResponses", "iauthorizerResultTtlInSeconds",
    "sauthorizerCredentialsArn", "sidentityValidationExpression", NULL};
static const char *const stage_members[] = {
    "sstageName", "bautoDeploy", "ostageVariables", "sdescription", "odefaultRouteSettings",
    "orouteSettings", "otags", "sdeploymentId", NULL};

static int route_normalize(json_t *api_doc, json_t *r, const char *self_id, err *e)
{
  const char *key = str_member(r, "routeKey");
  if (key == NULL)
    return err_set(e, ERR_INVALID, "routeKey is required");
  bool ws = strcmp(str_member(json_object_get(api_doc, "api"), "protocolType"), "WEBSOCKET") == 0;
  if (ws) {
    size_t kl = strlen(key);
    if (kl == 0 || kl > 128)
      return err_set(e, ERR_INVALID, "Invalid route key '%s': 1 to 128 characters", key);
  } else if (gateway__route_key_check(key, e) != 0) {
    return e->code;
  }
  const char *auth = str_member(r, "authorizationType");
  if (auth == NULL)
    json_object_set_new(r, "authorizationType", json_string(auth = "NONE"));
  bool jwt = strcmp(auth, "JWT") == 0;
  bool custom = strcmp(auth, "CUSTOM") == 0;
  if (strcmp(auth, "NONE") != 0 && strcmp(auth, "AWS_IAM") != 0 && !jwt && !custom)
    return err_set(e, ERR_INVALID,
                   "Invalid authorizationType '%s': must be NONE, AWS_IAM, CUSTOM or JWT", auth);
  if (ws && jwt)
    return err_set(e, ERR_INVALID, "WEBSOCKET APIs take authorizationType NONE, AWS_IAM or "
                                   "CUSTOM (on $connect)");
  if (ws && strcmp(auth, "NONE") != 0 && strcmp(key, "$connect") != 0)
    return err_set(e, ERR_INVALID, "Only the $connect route may have authorizationType %s",
                   auth);
  const char *authorizer_id = str_member(r, "authorizerId");
  if (jwt || custom) {
    json_t *az = authorizer_id != NULL
                     ? json_object_get(json_object_get(api_doc, "authorizers"), authorizer_id)
                     : NULL;
    if (az == NULL)
      return err_set(e, ERR_INVALID, "Invalid authorizerId '%s' for authorizationType %s",
                     authorizer_id ? authorizer_id : "", auth);
    const char *type = str_member(az, "authorizerType");
    if ((jwt && strcmp(type, "JWT") != 0) || (custom && strcmp(type, "REQUEST") != 0))
      return err_set(e, ERR_INVALID, "authorizationType %s does not match authorizer %s (%s)",
                     auth, authorizer_id, type);
  } else if (authorizer_id != NULL && *authorizer_id != '\0') {
    return err_set(e, ERR_INVALID, "authorizerId is only allowed with JWT or CUSTOM");
  }
  json_t *scopes = json_object_get(r, "authorizationScopes");
  size_t si;
  json_t *sv;
  json_array_foreach(scopes, si, sv)
  {
    if (!json_is_string(sv) || json_string_length(sv) == 0 || json_string_length(sv) > 256)
      return err_set(e, ERR_INVALID, "authorizationScopes must be strings of 1 to 256 characters");
  }
  if (json_array_size(scopes) > 50)
    return err_set(e, ERR_INVALID, "at most 50 authorizationScopes");
  if (json_object_get(r, "apiKeyRequired") == NULL)
    json_object_set_new(r, "apiKeyRequired", json_false());
  const char *target = str_member(r, "target");
  if (target != NULL) {
    if (!str_starts(target, "integrations/") ||
        json_object_get(json_object_get(api_doc, "integrations"), target + 13) == NULL)
      return err_set(e, ERR_INVALID, "Invalid target '%s': no such integration", target);
  }
  const char *id;
  json_t *other;
  json_object_foreach(json_object_get(api_doc, "routes"), id, other)
  {
    if ((self_id == NULL || strcmp(id, self_id) != 0) &&
        strcmp(str_member(other, "routeKey"), key) == 0)
      return err_set(e, ERR_CONFLICT, "Route with key %s already exists for this API", key);
  }
  return 0;
}

/* requestParameters of an HTTP_PROXY integration: "ACTION:WHERE" ->
 * value, ACTION append, overwrite or remove, WHERE header.NAME,
 * querystring.NAME or path (overwrite only). */
static int request_parameters_check(const json_t *in, err *e)
{
  json_t *m = json_object_get(in, "requestParameters");
  if (m == NULL)
    return 0;
  if (json_object_size(m) > 50)
    return err_set(e, ERR_INVALID, "at most 50 requestParameters");
  const char *k;
  json_t *v;
  json_object_foreach(m, k, v)
  {
    if (!json_is_string(v) || json_string_length(v) > 512)
      return err_set(e, ERR_INVALID, "requestParameters: the value of '%s' must be a string", k);
    const char *colon = strchr(k, ':');
    bool ok = colon != NULL;
    if (ok) {
      size_t an = (size_t)(colon - k);
      const char *w = colon + 1;
      bool act = (an == 6 && strncmp(k, "append", 6) == 0) ||
                 (an == 9 && strncmp(k, "overwrite", 9) == 0) ||
                 (an == 6 && strncmp(k, "remove", 6) == 0);
      bool where = (str_starts(w, "header.") && w[7] != '\0') ||
                   (str_starts(w, "querystring.") && w[12] != '\0') ||
                   (strcmp(w, "path") == 0 && an == 9);
      ok = act && where;
    }
    if (!ok)
      return err_set(e, ERR_INVALID,
                     "Invalid mapping expression specified: '%s' (want append, overwrite or "
                     "remove:header.NAME, :querystring.NAME, or overwrite:path)", k);
  }
  return 0;
}

static int integration_normalize(json_t *in, err *e)
{
  const char *type = str_member(in, "integrationType");
  if (type == NULL)
    return err_set(e, ERR_INVALID, "integrationType is required");
  bool http = strcmp(type, "HTTP_PROXY") == 0;
  if (strcmp(type, "AWS_PROXY") != 0 && !http)
    return err_set(e, ERR_INVALID,
                   "integrationType '%s' is not supported by tarn (AWS_PROXY to a function, "
                   "HTTP_PROXY to a URL)", type);
  const char *uri = str_member(in, "integrationUri");
  if (uri == NULL || *uri == '\0')
    return err_set(e, ERR_INVALID, "integrationUri is required for %s integrations", type);
  if (strlen(uri) > 2048)
    return err_set(e, ERR_INVALID, "integrationUri is too long");
  const char *fmt = str_member(in, "payloadFormatVersion");
  if (fmt == NULL)
    json_object_set_new(in, "payloadFormatVersion", json_string(fmt = http ? "1.0" : "2.0"));
  if (strcmp(fmt, "1.0") != 0 && strcmp(fmt, "2.0") != 0)
    return err_set(e, ERR_INVALID, "Invalid payloadFormatVersion '%s': must be 1.0 or 2.0", fmt);
  if (http) {
    if (!str_istarts(uri, "http://") && !str_istarts(uri, "https://"))
      return err_set(e, ERR_INVALID, "Invalid integrationUri '%s': an HTTP_PROXY integration "
                                     "needs an http:// or https:// URL", uri);
    if (strcmp(fmt, "1.0") != 0)
      return err_set(e, ERR_INVALID, "HTTP_PROXY integrations support payloadFormatVersion 1.0");
    const char *m = str_member(in, "integrationMethod");
    if (m == NULL)
      return err_set(e, ERR_INVALID, "integrationMethod is required for HTTP_PROXY integrations");
    static const char *const ok[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
                                     "ANY", NULL};
    bool known = false;
    for (size_t i = 0; ok[i] != NULL; i++)
      known |= strcmp(ok[i], m) == 0;
    if (!known)
      return err_set(e, ERR_INVALID, "Invalid integrationMethod '%s'", m);
  } else if (json_object_get(in, "requestParameters") != NULL) {
    return err_set(e, ERR_INVALID, "requestParameters are for HTTP_PROXY integrations");
  }
  int rc = request_parameters_check(in, e);
  if (rc != 0)
    return rc;
  json_t *t = json_object_get(in, "timeoutInMillis");
  if (t == NULL) {
    json_object_set_new(in, "timeoutInMillis", json_integer(GATEWAY_TIMEOUT_MS));
  } else if (json_integer_value(t) < 50 || json_integer_value(t) > GATEWAY_TIMEOUT_MS) {
    return err_set(e, ERR_INVALID, "timeoutInMillis must be between 50 and %d",
                   GATEWAY_TIMEOUT_MS);
  }
  if (json_object_get(in, "integrationMethod") == NULL)
    json_object_set_new(in, "integrationMethod", json_string("POST"));
  if (json_object_get(in, "connectionType") == NULL)
    json_object_set_new(in, "connectionType", json_string("INTERNET"));
  return 0;
}

/* An authorizer: JWT (issuer and audiences of tokens, keys from the
 * issuer's JWKS) or REQUEST (a function that answers allow or deny). */
static int authorizer_normalize(json_t *doc, json_t *a, err *e)
{
  int rc = check_length(a, "name", 128, true, e);
  if (rc != 0)
    return rc;
  const char *type = str_member(a, "authorizerType");
  if (type == NULL)
    return err_set(e, ERR_INVALID, "authorizerType is required");
  json_t *ids = json_object_get(a, "identitySource");
  size_t i;
  json_t *v;
  json_array_foreach(ids, i, v)
  {
    const char *s = json_string_value(v);
    if (s != NULL && str_starts(s, "route.request.")) /* WebSocket APIs' spelling */
      s += 6;
    if (s == NULL || (!str_starts(s, "$request.header.") && !str_starts(s, "$request.querystring.") &&
                      !str_starts(s, "request.header.") && !str_starts(s, "request.querystring.") &&
                      !str_starts(s, "$context.") && !str_starts(s, "$stageVariables.") &&
                      !str_starts(s, "context.") && !str_starts(s, "stageVariables.")))
      return err_set(e, ERR_INVALID, "Invalid identitySource '%s'", s ? s : "");
  }
  if (json_array_size(ids) > 10)
    return err_set(e, ERR_INVALID, "at most 10 identitySource expressions");
  if (strcmp(type, "JWT") == 0) {
    json_t *jc = json_object_get(a, "jwtConfiguration");
    const char *iss = str_member(jc, "issuer");
    if (iss == NULL || (!str_istarts(iss, "https://") && !str_istarts(iss, "http://")))
      return err_set(e, ERR_INVALID, "jwtConfiguration.issuer must be an http(s) URL");
    json_t *aud = json_object_get(jc, "audience");
    if (aud != NULL && !json_is_array(aud))
      return err_set(e, ERR_INVALID, "jwtConfiguration.audience must be a list");
    if (json_array_size(ids) != 1)
      return err_set(e, ERR_INVALID, "a JWT authorizer takes exactly one identitySource");
    json_object_del(a, "authorizerUri");
  } else if (strcmp(type, "REQUEST") == 0) {
    if (str_member(a, "authorizerUri") == NULL)
      return err_set(e, ERR_INVALID, "authorizerUri is required for REQUEST authorizers");
    bool ws = strcmp(str_member(json_object_get(doc, "api"), "protocolType"), "WEBSOCKET") == 0;
    if (ws && str_member(a, "authorizerPayloadFormatVersion") == NULL) /* IAM policies only */
      json_object_set_new(a, "authorizerPayloadFormatVersion", json_string("1.0"));
    const char *fmt = str_member(a, "authorizerPayloadFormatVersion");
    if (fmt == NULL)
      return err_set(e, ERR_INVALID,
                     "authorizerPayloadFormatVersion is required for REQUEST authorizers");
    if (strcmp(fmt, "1.0") != 0 && strcmp(fmt, "2.0") != 0)
      return err_set(e, ERR_INVALID, "authorizerPayloadFormatVersion must be 1.0 or 2.0");
    if (json_is_true(json_object_get(a, "enableSimpleResponses")) && strcmp(fmt, "2.0") != 0)
      return err_set(e, ERR_INVALID, "enableSimpleResponses needs payload format 2.0");
    json_t *ttl = json_object_get(a, "authorizerResultTtlInSeconds");
    if (ttl == NULL)
      json_object_set_new(a, "authorizerResultTtlInSeconds", json_integer(0));
    else if (json_integer_value(ttl) < 0 || json_integer_value(ttl) > 3600)
      return err_set(e, ERR_INVALID, "authorizerResultTtlInSeconds must be 0 to 3600");
    if (json_integer_value(json_object_get(a, "authorizerResultTtlInSeconds")) > 0 &&
        json_array_size(ids) == 0)
      return err_set(e, ERR_INVALID, "caching an authorizer's result needs an identitySource");
    if (json_object_get(a, "enableSimpleResponses") == NULL)
      json_object_set_new(a, "enableSimpleResponses", json_false());
    json_object_del(a, "jwtConfiguration");
  } else {
    return err_set(e, ERR_INVALID, "Invalid authorizerType '%s': must be JWT or REQUEST", type);
  }
  if (json_object_get(a, "identitySource") == NULL)
    json_object_set_new(a, "identitySource", json_array());
  return 0;
}

static int stage_normalize(json_t *s, err *e)
{
  const char *name = str_member(s, "stageName");
  if (name == NULL)
    return err_set(e, ERR_INVALID, "stageName is required");
  if (strcmp(name, "$default") != 0) {
    size_t n = strlen(name);
    if (n == 0 || n > 128 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != n)
      return err_set(e, ERR_INVALID,
                     "Stage name '%s' must be $default or 1 to 128 letters, digits, - and _", name);
  }
  int rc = check_string_map(s, "stageVariables", e);
  if (rc != 0)
    return rc;
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(s, "stageVariables"), k, v)
  {
    size_t n = strlen(k);
    if (n == 0 || strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != n)
      return err_set(e, ERR_INVALID, "Stage variable name '%s' must be letters, digits and _", k);
  }
  if (json_object_get(s, "autoDeploy") == NULL)
    json_object_set_new(s, "autoDeploy", json_false());
  if (json_object_get(s, "stageVariables") == NULL)
    json_object_set_new(s, "stageVariables", json_object());
  if (json_object_get(s, "defaultRouteSettings") == NULL)
    json_object_set_new(s, "defaultRouteSettings", json_object());
  if (json_object_get(s, "routeSettings") == NULL)
    json_object_set_new(s, "routeSettings", json_object());
  if (json_object_get(s, "tags") == NULL)
    json_object_set_new(s, "tags", json_object());
  return 0;
}

/* ---- APIs ---- */

static int no_api(const char *id, err *e)
{
  return err_set(e, ERR_NOT_FOUND, "Invalid API identifier specified %s:%s", GATEWAY_ACCOUNT_ID,
                 id);
}

/* A writable deep copy of the stored API document (write_mu held). */
static int api_copy(gateway *g, const char *api_id, json_t **out, err *e)
{
  json_t *d = lookup(g, g->apis, api_id);
  if (d == NULL)
    return no_api(api_id, e);
  *out = json_deep_copy(d);
  json_decref(d);
  return 0;
}

int gateway_api_create(gateway *g, const json_t *in, json_t **out, err *e)
{
  json_t *api = json_object();
  int rc = take_members(api, in, api_members, e);
  if (rc == 0)
    rc = api_normalize(api, e);
  const char *target = str_member(in, "target");
  const char *route_key = str_member(in, "routeKey");
  if (rc == 0 && route_key != NULL && target == NULL)
    rc = err_set(e, ERR_INVALID, "routeKey is only allowed with target (quick create)");
  if (rc == 0 && target != NULL && strcmp(str_member(api, "protocolType"), "HTTP") != 0)
    rc = err_set(e, ERR_INVALID, "quick create (target) is for HTTP APIs");
  if (rc != 0) {
    json_decref(api);
    return rc;
  }
  char id[11];
  char now[32];
  random_id(id, 10);
  gateway__now_iso(now);
  json_object_set_new(api, "apiId", json_string(id));
  json_object_set_new(api, "createdDate", json_string(now));
  json_t *doc = json_pack("{s:o, s:{}, s:{}, s:{}, s:{}}", "api", api, "routes", "integrations",
                          "stages", "deployments");
  if (target != NULL) {
    char iid[8];
    char rid[8];
    random_id(iid, 7);
    random_id(rid, 7);
    json_t *integ = json_pack("{s:s, s:s, s:s, s:s}", "integrationId", iid, "integrationType",
                              "AWS_PROXY", "integrationUri", target, "payloadFormatVersion", "2.0");
    rc = integration_normalize(integ, e);
    json_object_set_new(json_object_get(doc, "integrations"), iid, integ);
    json_t *route = json_pack("{s:s, s:s, s:s}", "routeId", rid, "routeKey",
                              route_key ? route_key : "$default", "target", "");
    json_object_set_new(route, "target", json_sprintf("integrations/%s", iid));
    if (rc == 0)
      rc = route_normalize(doc, route, rid, e);
    json_object_set_new(json_object_get(doc, "routes"), rid, route);
    json_t *stage = json_pack("{s:s, s:b, s:s, s:s}", "stageName", "$default", "autoDeploy", 1,
                              "createdDate", now, "lastUpdatedDate", now);
    if (rc == 0)
      rc = stage_normalize(stage, e);
    json_object_set_new(json_object_get(doc, "stages"), "$default", stage);
  }
  pthread_mutex_lock(&g->write_mu);
  if (rc == 0 && json_object_size(g->apis) >= GATEWAY_MAX_APIS)
    rc = err_set(e, ERR_LIMIT_EXCEEDED, "at most %d APIs", GATEWAY_MAX_APIS);
  if (rc == 0)
    rc = commit(g, g->apis_db, g->apis, id, doc, e);
  pthread_mutex_unlock(&g->write_mu);
  if (rc == 0)
    *out = json_incref(json_object_get(doc, "api"));
  json_decref(doc);
  return rc;
}

int gateway_api_get(gateway *g, const char *api_id, json_t **out, err *e)
{
  json_t *d = lookup(g, g->apis, api_id);
  if (d == NULL)
    return no_api(api_id, e);
  *out = json_incref(json_object_get(d, "api"));
  json_decref(d);
  return 0;
}

int gateway_api_list(gateway *g, json_t **out, err *e)
{
  *out = json_array();
  pthread_rwlock_rdlock(&g->lock);
  const char *k;
  json_t *v;
  json_object_foreach(g->apis, k, v) json_array_append(*out, json_object_get(v, "api"));
  pthread_rwlock_unlock(&g->lock);
  return 0;
}

int gateway_api_update(gateway *g, const char *api_id, const json_t *in, json_t **out, err *e)
{
  pthread_mutex_lock(&g->write_mu);
  json_t *doc = NULL;
  int rc = api_copy(g, api_id, &doc, e);
  if (rc == 0) {
    json_t *api = json_object_get(doc, "api");
    rc = take_members(api, in, api_members, e);
    if (rc == 0)
      rc = api_normalize(api, e);
    if (rc == 0)
      rc = commit(g, g->apis_db, g->apis, api_id, doc, e);
    if (rc == 0)
      *out = json_incref(api);
  }
  pthread_mutex_unlock(&g->write_mu);
  json_decref(doc);
  return rc;
}

int gateway_api_delete(gateway *g, const char *api_id, err *e)
{
  pthread_mutex_lock(&g->write_mu);
  json_t *d = lookup(g, g->apis, api_id);
  int rc = d == NULL ? no_api(api_id, e) : commit(g, g->apis_db, g->apis, api_id, NULL, e);
  pthread_mutex_unlock(&g->write_mu);
  json_decref(d);
  return rc;
}

/* ---- routes, integrations, stages ---- */

/* What tells the kinds of children apart. */
typedef struct kind_def {
  const char *map;               /* member of the API document */
  const char *id_member;         /* the child's id member */
  const char *label;             /* in messages */
  const char *const *members;    /* what create and update take */
  size_t max;                    /* per API */
} kind_def;

static const char *const deployment_members[] = {"sdescription", "sstageName", NULL};

static const kind_def kinds[] = {
    [GATEWAY_ROUTE] = {"routes", "routeId", "Route", route_members, GATEWAY_MAX_ROUTES},
    [GATEWAY_INTEGRATION] = {"integrations", "integrationId", "Integration", integration_members,
                             GATEWAY_MAX_INTEGRATIONS},
    [GATEWAY_STAGE] = {"stages", "stageName", "Stage", stage_members, GATEWAY_MAX_STAGES},
    [GATEWAY_DEPLOYMENT] = {"deployments", "deploymentId", "Deployment", deployment_members,
                            GATEWAY_MAX_DEPLOYMENTS},
    [GATEWAY_AUTHORIZER] = {"authorizers", "authorizerId", "Authorizer", authorizer_members,
                            GATEWAY_MAX_AUTHORIZERS},
    [GATEWAY_ROUTE_RESPONSE] = {"routeResponses", "routeResponseId", "RouteResponse",
                                route_response_members, GATEWAY_MAX_ROUTES},
};

static const char *kind_map(enum gateway_kind k)
{
  return kinds[k].map;
}

static int no_child(enum gateway_kind k, const char *id, err *e)
{
  return err_set(e, ERR_NOT_FOUND, "Invalid %s identifier specified %s", kinds[k].label, id);
}

/* A deployment is a record: every change is live at once (there is no
 * undeployed state), so it names the stage it was made for. */
static int deployment_normalize(json_t *doc, json_t *d, const char *id, err *e)
{
  const char *stage = str_member(d, "stageName");
  if (stage != NULL) {
    json_t *s = json_object_get(json_object_get(doc, "stages"), stage);
    if (s == NULL)
      return err_set(e, ERR_NOT_FOUND, "Invalid Stage identifier specified %s", stage);
    json_object_set_new(s, "deploymentId", json_string(id));
  }
  json_object_del(d, "stageName");
  json_object_set_new(d, "deploymentStatus", json_string("DEPLOYED"));
  if (json_object_get(d, "autoDeployed") == NULL)
    json_object_set_new(d, "autoDeployed", json_false());
  return check_length(d, "description", 1024, false, e);
}

static int child_normalize(json_t *doc, enum gateway_kind k, json_t *c, const char *id, err *e)
{
  switch (k) {
  case GATEWAY_ROUTE:
    return route_normalize(doc, c, id, e);
  case GATEWAY_INTEGRATION: {
    /* integrationTimeoutInMillis is the wire's name in some SDKs' models */
    json_t *t = json_object_get(c, "integrationTimeoutInMillis");
    if (t != NULL) {
      json_object_set(c, "timeoutInMillis", t);
      json_object_del(c, "integrationTimeoutInMillis");
    }
    return integration_normalize(c, e);
  }
  case GATEWAY_STAGE:
    return stage_normalize(c, e);
  case GATEWAY_DEPLOYMENT:
    return deployment_normalize(doc, c, id, e);
  case GATEWAY_AUTHORIZER:
    return authorizer_normalize(doc, c, e);
  case GATEWAY_ROUTE_RESPONSE: {
    const char *rid = str_member(c, "routeId");
    if (rid == NULL || json_object_get(json_object_get(doc, "routes"), rid) == NULL)
      return err_set(e, ERR_NOT_FOUND, "Invalid Route identifier specified %s", rid ? rid : "");
    if (strcmp(str_member(json_object_get(doc, "api"), "protocolType"), "WEBSOCKET") != 0)
      return err_set(e, ERR_INVALID, "route responses are for WEBSOCKET APIs");
    return check_length(c, "routeResponseKey", 128, true, e);
  }
  }
  return 0;
}

static const char *const *kind_members(enum gateway_kind k)
{
  return kinds[k].members;
}

int gateway_child_create(gateway *g, enum gateway_kind k, const char *api_id, const json_t *in,
                         json_t **out, err *e)
{
  pthread_mutex_lock(&g->write_mu);
  json_t *doc = NULL;
  json_t *c = json_object();
  int rc = api_copy(g, api_id, &doc, e);
  if (rc == 0)
    rc = take_members(c, in, kind_members(k), e);
  char id[130];
  char now[32];
  gateway__now_iso(now);
  if (rc == 0) {
    if (k == GATEWAY_STAGE) {
      const char *name = str_member(c, "stageName");
      snprintf(id, sizeof id, "%s", name ? name : "");
      json_object_set_new(c, "createdDate", json_string(now));
      json_object_set_new(c, "lastUpdatedDate", json_string(now));
    } else {
      random_id(id, k == GATEWAY_DEPLOYMENT ? 6 : 7);
      json_object_set_new(c, kinds[k].id_member, json_string(id));
      if (k == GATEWAY_DEPLOYMENT)
        json_object_set_new(c, "createdDate", json_string(now));
    }
    rc = child_normalize(doc, k, c, id, e);
  }
  json_t *map = rc == 0 ? json_object_get(doc, kind_map(k)) : NULL;
  if (rc == 0 && map == NULL)
    json_object_set_new(doc, kind_map(k), map = json_object());
  size_t max = kinds[k].max;
  if (rc == 0 && json_object_size(map) >= max)
    rc = err_set(e, ERR_LIMIT_EXCEEDED, "at most %zu %s per API", max, kind_map(k));
  if (rc == 0 && k == GATEWAY_STAGE && json_object_get(map, id) != NULL)
    rc = err_set(e, ERR_CONFLICT, "Stage %s already exists", id);
  if (rc == 0) {
    json_object_set(map, id, c);
    rc = commit(g, g->apis_db, g->apis, api_id, doc, e);
  }
  pthread_mutex_unlock(&g->write_mu);
  if (rc == 0)
    *out = json_incref(c);
  json_decref(c);
  json_decref(doc);
  return rc;
}

int gateway_child_get(gateway *g, enum gateway_kind k, const char *api_id, const char *id,
                      json_t **out, err *e)
{
  json_t *d = lookup(g, g->apis, api_id);
  if (d == NULL)
    return no_api(api_id, e);
  json_t *c = json_object_get(json_object_get(d, kind_map(k)), id);
  int rc = c == NULL ? no_child(k, id, e) : 0;
  if (rc == 0)
    *out = json_incref(c);
  json_decref(d);
  return rc;
}

int gateway_child_list(gateway *g, enum gateway_kind k, const char *api_id, json_t **out,
                       err *e)
{
  json_t *d = lookup(g, g->apis, api_id);
  if (d == NULL)
    return no_api(api_id, e);
  *out = json_array();
  const char *id;
  json_t *c;
  json_object_foreach(json_object_get(d, kind_map(k)), id, c) json_array_append(*out, c);
  json_decref(d);
  return 0;
}

int gateway_child_update(gateway *g, enum gateway_kind k, const char *api_id, const char *id,
                         const json_t *in, json_t **out, err *e)
{
  pthread_mutex_lock(&g->write_mu);
  json_t *doc = NULL;
  int rc = api_copy(g, api_id, &doc, e);
  json_t *c = rc == 0 ? json_object_get(json_object_get(doc, kind_map(k)), id) : NULL;
  if (rc == 0 && c == NULL)
    rc = no_child(k, id, e);
  if (rc == 0 && k == GATEWAY_STAGE && json_object_get(in, "stageName") != NULL &&
      !json_equal(json_object_get(in, "stageName"), json_object_get(c, "stageName")))
    rc = err_set(e, ERR_INVALID, "a stage cannot be renamed");
  if (rc == 0)
    rc = take_members(c, in, kind_members(k), e);
  if (rc == 0)
    rc = child_normalize(doc, k, c, id, e);
  if (rc == 0 && k == GATEWAY_STAGE) {
    char now[32];
    gateway__now_iso(now);
    json_object_set_new(c, "lastUpdatedDate", json_string(now));
  }
  if (rc == 0)
    rc = commit(g, g->apis_db, g->apis, api_id, doc, e);
  if (rc == 0)
    *out = json_incref(c);
  pthread_mutex_unlock(&g->write_mu);
  json_decref(doc);
  return rc;
}

int gateway_child_delete(gateway *g, enum gateway_kind k, const char *api_id, const char *id,
                         err *e)
{
  pthread_mutex_lock(&g->write_mu);
  json_t *doc = NULL;
  int rc = api_copy(g, api_id, &doc, e);
  json_t *map = rc == 0 ? json_object_get(doc, kind_map(k)) : NULL;
  if (rc == 0 && json_object_get(map, id) == NULL)
    rc = no_child(k, id, e);
  if (rc == 0 && (k == GATEWAY_INTEGRATION || k == GATEWAY_AUTHORIZER)) {
    const char *rid;
    json_t *r;
    json_object_foreach(json_object_get(doc, "routes"), rid, r)
    {
      const char *t = str_member(r, "target");
      const char *az = str_member(r, "authorizerId");
      if (k == GATEWAY_INTEGRATION && t != NULL && str_starts(t, "integrations/") &&
          strcmp(t + 13, id) == 0) {
        rc = err_set(e, ERR_CONFLICT, "Integration %s is the target of route %s", id, rid);
        break;
      }
      if (k == GATEWAY_AUTHORIZER && az != NULL && strcmp(az, id) == 0) {
        rc = err_set(e, ERR_CONFLICT, "Authorizer %s is used by route %s", id, rid);
        break;
      }
    }
  }
  if (rc == 0) {
    json_object_del(map, id);
    if (k == GATEWAY_ROUTE) { /* its route responses go with it */
      json_t *rrs = json_object_get(doc, "routeResponses");
      const char *rr_id;
      json_t *rr;
      void *tmp;
      json_object_foreach_safe(rrs, tmp, rr_id, rr)
      {
        const char *of = str_member(rr, "routeId");
        if (of != NULL && strcmp(of, id) == 0)
          json_object_del(rrs, rr_id);
      }
    }
    rc = commit(g, g->apis_db, g->apis, api_id, doc, e);
  }
  pthread_mutex_unlock(&g->write_mu);
  json_decref(doc);
  return rc;
}

json_t *gateway_api_cors(gateway *g, const char *api_id)
{
  json_t *d = lookup(g, g->apis, api_id);
  json_t *c = json_incref(json_object_get(json_object_get(d, "api"), "corsConfiguration"));
  json_decref(d);
  return c;
}

json_t *gateway__api_snapshot(gateway *g, const char *api_id)
{
  return lookup(g, g->apis, api_id);
}

/* ---- function URLs ---- */

/* The URL of function:qualifier (a borrowed pointer into g->urls, lock held),
 * and its id. */
static json_t *url_find(gateway *g, const char *function, const char *qualifier,
                        const char **id_out)
{
  const char *id;
  json_t *u;
  json_object_foreach(g->urls, id, u)
  {
    const char *q = str_member(u, "Qualifier");
    if (strcmp(str_member(u, "FunctionName"), function) == 0 &&
        ((q == NULL && qualifier == NULL) ||
         (q != NULL && qualifier != NULL && strcmp(q, qualifier) == 0))) {
      if (id_out != NULL)
        *id_out = id;
      return u;
    }
  }
  return NULL;
}

static json_t *url_lookup(gateway *g, const char *function, const char *qualifier, char *id_out)
{
  pthread_rwlock_rdlock(&g->lock);
  const char *id = NULL;
  json_t *u = json_incref(url_find(g, function, qualifier, &id));
  if (u != NULL && id_out != NULL)
    snprintf(id_out, 64, "%s", id);
  pthread_rwlock_unlock(&g->lock);
  return u;
}

static int no_url(const char *function, err *e)
{
  return err_set(e, ERR_NOT_FOUND, "The resource you requested does not exist. (function '%s')",
                 function);
}

static int url_exists(const char *function_arn, err *e)
{
  return err_set(e, ERR_CONFLICT, "Failed to create function url config for [functionArn = %s]. "
                                  "Error message:  FunctionUrlConfig exists for this Lambda function",
                 function_arn);
}

static int url_normalize(json_t *u, const json_t *in, err *e)
{
  static const char *const members[] = {"sAuthType", "oCors", "sInvokeMode", NULL};
  int rc = take_members(u, in, members, e);
  if (rc != 0)
    return rc;
  const char *auth = str_member(u, "AuthType");
  if (auth == NULL)
    return err_set(e, ERR_INVALID, "AuthType is required");
  if (strcmp(auth, "NONE") != 0 && strcmp(auth, "AWS_IAM") != 0)
    return err_set(e, ERR_INVALID,
                   "1 validation error detected: Value '%s' at 'authType' failed to satisfy "
                   "constraint: Member must satisfy enum value set: [NONE, AWS_IAM]", auth);
  const char *mode = str_member(u, "InvokeMode");
  if (mode == NULL)
    json_object_set_new(u, "InvokeMode", json_string("BUFFERED"));
  else if (strcmp(mode, "BUFFERED") != 0 && strcmp(mode, "RESPONSE_STREAM") != 0)
    return err_set(e, ERR_INVALID, "InvokeMode must be BUFFERED or RESPONSE_STREAM");
  return 0;
}

int gateway_url_create(gateway *g, const char *function, const char *qualifier,
                       const char *function_arn, const json_t *in, json_t **out, err *e)
{
  json_t *u = json_object();
  int rc = url_normalize(u, in, e);
  char id[33];
  char now[32];
  random_id(id, 32);
  gateway__now_iso(now);
  json_object_set_new(u, "UrlId", json_string(id));
  json_object_set_new(u, "FunctionName", json_string(function));
  json_object_set_new(u, "Qualifier", qualifier ? json_string(qualifier) : json_null());
  json_object_set_new(u, "FunctionArn", json_string(function_arn));
  json_object_set_new(u, "CreationTime", json_string(now));
  json_object_set_new(u, "LastModifiedTime", json_string(now));
  if (g->pg != NULL) {
    if (rc == 0 && (rc = gateway__pg_url_insert(g->pg, u, e)) == ERR_CONFLICT)
      rc = url_exists(function_arn, e);
    if (rc == 0)
      *out = json_incref(u);
    json_decref(u);
    return rc;
  }
  pthread_mutex_lock(&g->write_mu);
  json_t *old = rc == 0 ? url_lookup(g, function, qualifier, NULL) : NULL;
  if (old != NULL)
    rc = url_exists(function_arn, e);
  if (rc == 0 && json_object_size(g->urls) >= GATEWAY_MAX_URLS)
    rc = err_set(e, ERR_LIMIT_EXCEEDED, "at most %d function URLs", GATEWAY_MAX_URLS);
  if (rc == 0)
    rc = commit(g, g->urls_db, g->urls, id, u, e);
  pthread_mutex_unlock(&g->write_mu);
  json_decref(old);
  if (rc == 0)
    *out = json_incref(u);
  json_decref(u);
  return rc;
}

int gateway_url_get(gateway *g, const char *function, const char *qualifier, json_t **out,
                    err *e)
{
  json_t *u = NULL;
  if (g->pg != NULL) {
    int rc = gateway__pg_url_find(g->pg, function, qualifier, &u, e);
    if (rc != 0)
      return rc;
  } else {
    u = url_lookup(g, function, qualifier, NULL);
  }
  if (u == NULL)
    return no_url(function, e);
  *out = u;
  return 0;
}

int gateway_url_update(gateway *g, const char *function, const char *qualifier, const json_t *in,
                       json_t **out, err *e)
{
  pthread_mutex_lock(&g->write_mu);
  char id[64];
  json_t *old = NULL;
  int rc = 0;
  if (g->pg != NULL)
    rc = gateway__pg_url_find(g->pg, function, qualifier, &old, e);
  else
    old = url_lookup(g, function, qualifier, id);
  if (rc == 0 && old == NULL)
    rc = no_url(function, e);
  json_t *u = old != NULL ? json_deep_copy(old) : NULL;
  if (rc == 0)
    rc = url_normalize(u, in, e);
  if (rc == 0) {
    char now[32];
    gateway__now_iso(now);
    json_object_set_new(u, "LastModifiedTime", json_string(now));
    if (g->pg == NULL)
      rc = commit(g, g->urls_db, g->urls, id, u, e);
    else if ((rc = gateway__pg_url_update(g->pg, u, e)) == 1)
      rc = no_url(function, e); /* deleted on another node meanwhile */
  }
  pthread_mutex_unlock(&g->write_mu);
  json_decref(old);
  if (rc == 0)
    *out = json_incref(u);
  json_decref(u);
  return rc;
}

int gateway_url_delete(gateway *g, const char *function, const char *qualifier, err *e)
{
  if (g->pg != NULL) {
    int rc = gateway__pg_url_delete(g->pg, function, qualifier, false, e);
    return rc == 1 ? no_url(function, e) : rc;
  }
  pthread_mutex_lock(&g->write_mu);
  char id[64];
  json_t *old = url_lookup(g, function, qualifier, id);
  int rc = old == NULL ? no_url(function, e) : commit(g, g->urls_db, g->urls, id, NULL, e);
  pthread_mutex_unlock(&g->write_mu);
  json_decref(old);
  return rc;
}

int gateway_url_delete_all(gateway *g, const char *function, err *e)
{
  if (g->pg != NULL)
    return gateway__pg_url_delete(g->pg, function, NULL, true, e);
  json_t *all = NULL;
  gateway_url_list(g, function, &all, e);
  int rc = 0;
  pthread_mutex_lock(&g->write_mu);
  size_t i;
  json_t *u;
  json_array_foreach(all, i, u)
  {
    if (rc == 0)
      rc = commit(g, g->urls_db, g->urls, str_member(u, "UrlId"), NULL, e);
  }
  pthread_mutex_unlock(&g->write_mu);
  json_decref(all);
  return rc;
}

int gateway_url_list(gateway *g, const char *function, json_t **out, err *e)
{
  if (g->pg != NULL)
    return gateway__pg_url_list(g->pg, function, out, e);
  *out = json_array();
  pthread_rwlock_rdlock(&g->lock);
  const char *id;
  json_t *u;
  json_object_foreach(g->urls, id, u)
  {
    if (strcmp(str_member(u, "FunctionName"), function) == 0)
      json_array_append(*out, u);
  }
  pthread_rwlock_unlock(&g->lock);
  return 0;
}

int gateway_url_by_id(gateway *g, const char *url_id, json_t **out, err *e)
{
  json_t *u = NULL;
  if (g->pg != NULL) {
    int rc = gateway__pg_url_by_id(g->pg, url_id, &u, e);
    if (rc != 0)
      return rc;
  } else {
    u = lookup(g, g->urls, url_id);
  }
  if (u == NULL)
    return err_set(e, ERR_NOT_FOUND, "no function URL '%s'", url_id);
  *out = u;
  return 0;
}

/* ---- open and close ---- */

static int load(MDB_txn *txn, MDB_dbi dbi, json_t *map, err *e)
{
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, dbi, &cur);
  if (rc != 0)
    return lmdb_error(e, rc, "read the gateway's definitions");
  MDB_val k;
  MDB_val v;
  int op = MDB_FIRST;
  while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
    op = MDB_NEXT;
    json_error_t je;
    json_t *doc = json_loadb(v.mv_data, v.mv_size, 0, &je);
    char *key = xstrndup(k.mv_data, k.mv_size);
    if (doc == NULL) {
      err_set(e, ERR_INTERNAL, "the gateway's record '%s' is damaged: %s", key, je.text);
      free(key);
      mdb_cursor_close(cur);
      return e->code;
    }
    json_object_set_new(map, key, doc);
    free(key);
  }
  mdb_cursor_close(cur);
  return rc == MDB_NOTFOUND ? 0 : lmdb_error(e, rc, "read the gateway's definitions");
}

int gateway_open(const char *data_dir, gateway **out, err *e)
{
  *out = NULL;
  gateway *g = xcalloc(1, sizeof *g);
  pthread_mutex_init(&g->write_mu, NULL);
  pthread_rwlock_init(&g->lock, NULL);
  g->apis = json_object();
  g->urls = json_object();
  char *path = xasprintf("%s/gateway", data_dir);
  lmdb_env_options opt = {.map_size = MAP_SIZE, .max_dbs = 2};
  int rc = lmdb_env_open(&g->env, path, &opt, "the gateway's definitions", e);
  free(path);
  if (rc != 0) {
    gateway_close(g);
    return rc;
  }
  MDB_txn *txn;
  if ((rc = mdb_txn_begin(g->env, NULL, 0, &txn)) == 0) {
    if ((rc = mdb_dbi_open(txn, "apis", MDB_CREATE, &g->apis_db)) == 0 &&
        (rc = mdb_dbi_open(txn, "urls", MDB_CREATE, &g->urls_db)) == 0)
      rc = mdb_txn_commit(txn);
    else
      mdb_txn_abort(txn);
  }
  if (rc != 0) {
    lmdb_error(e, rc, "open the gateway's definitions");
    gateway_close(g);
    return e->code;
  }
  if ((rc = lmdb_read_begin(g->env, &txn, e)) == 0) {
    rc = load(txn, g->apis_db, g->apis, e);
    if (rc == 0)
      rc = load(txn, g->urls_db, g->urls, e);
    mdb_txn_abort(txn);
  }
  lmdb_committer_hooks hooks = {.ctx = g};
  if (rc == 0)
    rc = lmdb_committer_start(&g->committer, g->env, &hooks, "the gateway", e);
  if (rc != 0) {
    gateway_close(g);
    return rc;
  }
  *out = g;
  return 0;
}

int gateway_share(gateway *g, pg_pool *pg, err *e)
{
  int rc = gateway__pg_urls_open(pg, e);
  if (rc == 0)
    g->pg = pg;
  return rc;
}

gateway *gateway_close(gateway *g)
{
  if (g == NULL)
    return NULL;
  lmdb_committer_stop(&g->committer);
  if (g->env != NULL)
    mdb_env_close(g->env);
  json_decref(g->apis);
  json_decref(g->urls);
  pthread_rwlock_destroy(&g->lock);
  pthread_mutex_destroy(&g->write_mu);
  free(g);
  return NULL;
}
