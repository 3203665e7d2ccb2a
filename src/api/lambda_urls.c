/* api/lambda_urls.c -- Lambda's function URL configurations on the wire
 * (see lambda_urls.h for the routes).
 *
 * Why apart from lambda.c: the configurations live in the gateway part,
 * next to the HTTP APIs whose front door serves them; lambda.c only
 * routes here.
 *
 * Invariants:
 *   (1) A configuration is made only for a function (and alias) that
 *       exists; its FunctionUrl points at this server, as the client
 *       reached it (the Host header): http://HOST/_tarn/urls/URL_ID/.
 *   (2) Input is checked before anything changes (gateway_url_*).
 *
 * Start reading at the ops[] table and lambda_urls_handle().
 */
#include "api/lambda_urls.h"
#include "api/lambda_json.h"

#include <jansson.h>
#include <stdatomic.h>
#include <string.h>

#define PREFIX "/2021-10-31/functions/"
#define URL_BODY_MAX (64u << 10)

static _Atomic(gateway *) attached;

void lambda_urls_attach(gateway *g)
{
  atomic_store(&attached, g);
}

/* The function part of the path and what follows it ("/url", "/urls"). */
static bool split(const char *path, const char **f, size_t *flen, const char **rest)
{
  if (!str_starts(path, PREFIX))
    return false;
  *f = path + strlen(PREFIX);
  const char *slash = strchr(*f, '/');
  if (slash == NULL || slash == *f)
    return false;
  *flen = (size_t)(slash - *f);
  *rest = slash;
  return strcmp(slash, "/url") == 0 || strcmp(slash, "/urls") == 0;
}

bool lambda_urls_route(const http_req *r)
{
  const char *f;
  size_t n;
  const char *rest;
  return split(r->path, &f, &n, &rest);
}

/* A stored configuration as the wire shows it (u consumed). */
static json_t *url_out(http_req *r, json_t *u, bool created)
{
  const char *host = http_req_header(r, "host");
  json_t *o = json_pack("{s:s, s:O, s:O, s:O, s:O}", "FunctionUrl", "", "FunctionArn",
                        json_object_get(u, "FunctionArn"), "AuthType",
                        json_object_get(u, "AuthType"), "CreationTime",
                        json_object_get(u, "CreationTime"), "InvokeMode",
                        json_object_get(u, "InvokeMode"));
  json_object_set_new(o, "FunctionUrl",
                      json_sprintf("http://%s/_tarn/urls/%s/", host ? host : "127.0.0.1:9000",
                                   json_string_value(json_object_get(u, "UrlId"))));
  if (json_object_get(u, "Cors") != NULL)
    json_object_set(o, "Cors", json_object_get(u, "Cors"));
  if (!created)
    json_object_set(o, "LastModifiedTime", json_object_get(u, "LastModifiedTime"));
  json_decref(u);
  return o;
}

/* ---- operations ---- */

static int url_list(gateway *g, http_req *r, const char *name, const char *qual, err *e)
{
  json_t *out = NULL;
  int rc = gateway_url_list(g, name, &out, e);
  if (rc != 0)
    return rc;
  size_t i;
  json_t *u;
  json_array_foreach(out, i, u) json_array_set_new(out, i, url_out(r, json_incref(u), false));
  lambda_json_send(r, 200, json_pack("{s:o}", "FunctionUrlConfigs", out));
  return 0;
}

static int url_delete(gateway *g, http_req *r, const char *name, const char *qual, err *e)
{
  int rc = gateway_url_delete(g, name, qual, e);
  if (rc == 0) {
    http_resp_status(r, 204);
    http_resp_header(r, "x-amzn-RequestId", r->request_id);
  }
  return rc;
}

static int url_get(gateway *g, http_req *r, const char *name, const char *qual, err *e)
{
  json_t *out = NULL;
  int rc = gateway_url_get(g, name, qual, &out, e);
  if (rc == 0)
    lambda_json_send(r, 200, url_out(r, out, false));
  return rc;
}

static int url_create(gateway *g, http_req *r, const char *name, const char *qual, err *e)
{
  json_t *in = NULL;
  json_t *out = NULL;
  int rc = lambda_json_body(r, &in, e);
  if (rc != 0)
    return rc;
  const char *arn = arena_sprintf(r->arena, "arn:aws:lambda:%s:%s:function:%s%s%s", FN_REGION,
                                  FN_ACCOUNT_ID, name, qual ? ":" : "", qual ? qual : "");
  rc = gateway_url_create(g, name, qual, arn, in, &out, e);
  json_decref(in);
  if (rc == 0)
    lambda_json_send(r, 201, url_out(r, out, true));
  return rc;
}

static int url_update(gateway *g, http_req *r, const char *name, const char *qual, err *e)
{
  json_t *in = NULL;
  json_t *out = NULL;
  int rc = lambda_json_body(r, &in, e);
  if (rc != 0)
    return rc;
  rc = gateway_url_update(g, name, qual, in, &out, e);
  json_decref(in);
  if (rc == 0)
    lambda_json_send(r, 200, url_out(r, out, false));
  return rc;
}

/* ---- dispatch ---- */

typedef int (*op_fn)(gateway *g, http_req *r, const char *name, const char *qual, err *e);

static const struct op {
  const char *rest;    /* after functions/F */
  const char *method;
  const char *name;
  op_fn fn;
} ops[] = {
  {"/urls", "GET", "ListFunctionUrlConfigs", url_list},
  {"/url", "POST", "CreateFunctionUrlConfig", url_create},
  {"/url", "GET", "GetFunctionUrlConfig", url_get},
  {"/url", "PUT", "UpdateFunctionUrlConfig", url_update},
  {"/url", "DELETE", "DeleteFunctionUrlConfig", url_delete},
};

/* r's entry of ops[] (and the function's part of the path), or NULL. */
static const struct op *op_of(const http_req *r, const char **f, size_t *flen)
{
  const char *rest = "";
  *f = "";
  *flen = 0;
  if (!split(r->path, f, flen, &rest))
    return NULL;
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(ops[i].rest, rest) == 0 && strcmp(ops[i].method, r->method) == 0)
      return &ops[i];
  return NULL;
}

int lambda_urls_prepare(http_req *r, const char **function, err *e)
{
  const char *f;
  size_t n;
  const struct op *op = op_of(r, &f, &n);
  *function = arena_strndup(r->arena, f, n);
  if (op == NULL)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "no operation %s %s", r->method, r->path);
  r->op = op->name;
  http_req_body_max(r, URL_BODY_MAX);
  return 0;
}

int lambda_urls_handle(fn_system *fn, http_req *r, const char *function, err *e)
{
  gateway *g = atomic_load(&attached);
  if (g == NULL)
    return err_set(e, ERR_UNAVAILABLE, "function URLs are not running");
  const char *f;
  size_t n;
  const struct op *op = op_of(r, &f, &n);
  if (op == NULL)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "no operation %s %s", r->method, r->path);
  const char *name;
  const char *qual;
  int rc = fn_name_parse(function, http_req_param(r, "Qualifier"), r->arena, &name, &qual, e);
  if (rc != 0)
    return rc;
  fn_config cfg;
  if ((rc = fn_function_get(fn, name, qual, r->arena, &cfg, e)) != 0)
    return rc;
  return op->fn(g, r, name, qual, e);
}

void lambda_urls_function_deleted(const char *function)
{
  gateway *g = atomic_load(&attached);
  err e = {0};
  if (g != NULL)
    gateway_url_delete_all(g, function, &e); /* a failure leaves URLs that answer 502 */
}
