/* api/native.c -- the /_tarn/ endpoints: GET /_tarn/health (no signature)
 * and GET /_tarn/metrics (Prometheus text, signed like every other API).
 *
 * Why: operators and tests need liveness and numbers without an AWS API,
 * and SQL over the lake has no AWS wire format of its own here
 * (POST /_tarn/sql, in native_sql.c).
 *
 * Invariants:
 *   (1) Only /_tarn/health answers unsigned requests; the server enforces
 *       it by routing only that exact path here before authentication.
 *   (2) The server is attached after it started, while its threads may
 *       already answer /_tarn/metrics: the pointer is atomic, and metrics
 *       leave out the HTTP part until it is set.
 *
 * Start reading at endpoints[] and native_prepare().
 */
#include "api/native.h"

#include "base/mem.h"

#include "api/iam.h"
#include "api/native_events.h"
#include "api/native_sql.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct native {
  http_service svc;   /* first: the service is the struct */
  store *st;
  native_sql *sql;         /* POST /_tarn/sql */
  _Atomic(http_server *) srv; /* for request metrics; see (2) */
  const char *version;
  struct {
    void (*write)(void *ctx, buf *out);
    void *ctx;
  } providers[8];          /* other parts' metrics */
  size_t nproviders;
} native;

/* ---- endpoints ---- */

static int sql_prepare(native *n, http_req *r, err *e)
{
  return native_sql_prepare(n->sql, r, e);
}

static void sql_handle(native *n, http_req *r)
{
  native_sql_handle(n->sql, r);
}

static int events_prepare(native *n, http_req *r, err *e)
{
  return native_events_prepare(r, e);
}

static void events_handle(native *n, http_req *r)
{
  native_events_handle(r);
}

static void health_handle(native *n, http_req *r)
{
  http_resp_header(r, "Content-Type", "application/json");
  buf_printf(&r->resp_body, "{\"status\":\"ok\",\"version\":\"%s\"}\n", n->version);
}

static void metrics_handle(native *n, http_req *r)
{
  http_resp_header(r, "Content-Type", "text/plain; version=0.0.4");
  http_server *srv = atomic_load(&n->srv);
  if (srv != NULL)
    http_server_metrics(srv, &r->resp_body);
  store_stats s;
  store_stats_get(n->st, &s);
  buf_printf(&r->resp_body,
             "# HELP tarn_store_buckets Buckets.\n# TYPE tarn_store_buckets gauge\n"
             "tarn_store_buckets %llu\n"
             "# HELP tarn_store_objects Objects stored.\n# TYPE tarn_store_objects gauge\n"
             "tarn_store_objects %llu\n"
             "# HELP tarn_store_bytes Bytes of object data stored.\n"
             "# TYPE tarn_store_bytes gauge\ntarn_store_bytes %llu\n"
             "# HELP tarn_store_changes_total Changes committed to the index.\n"
             "# TYPE tarn_store_changes_total counter\ntarn_store_changes_total %llu\n"
             "# HELP tarn_store_commits_total Index transactions (changes share them).\n"
             "# TYPE tarn_store_commits_total counter\ntarn_store_commits_total %llu\n"
             "# HELP tarn_store_swept_blobs_total Unreferenced blob files removed.\n"
             "# TYPE tarn_store_swept_blobs_total counter\ntarn_store_swept_blobs_total %llu\n",
             (unsigned long long)s.buckets, (unsigned long long)s.objects,
             (unsigned long long)s.bytes, (unsigned long long)s.changes,
             (unsigned long long)s.commits, (unsigned long long)s.swept_blobs);
  for (size_t i = 0; i < n->nproviders; i++)
    n->providers[i].write(n->providers[i].ctx, &r->resp_body);
}

/* ---- dispatch ---- */

static const struct endpoint {
  const char *path;
  const char *op;       /* r->op */
  const char *action;   /* the IAM action asked for; NULL: none (health) */
  int (*prepare)(native *n, http_req *r, err *e);  /* NULL: GET (or HEAD) only */
  void (*handle)(native *n, http_req *r);
} endpoints[] = {
  {"/_tarn/sql", "Sql", "tarn:RunSql", sql_prepare, sql_handle},
  {"/_tarn/events", "Events", "tarn:ReadEvents", events_prepare, events_handle},
  {"/_tarn/health", "Health", NULL, NULL, health_handle},
  {"/_tarn/metrics", "Metrics", "tarn:ReadMetrics", NULL, metrics_handle},
};

static const struct endpoint *endpoint_of(const http_req *r)
{
  for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++)
    if (strcmp(r->raw_path, endpoints[i].path) == 0)
      return &endpoints[i];
  return NULL;
}

static int native_prepare(void *ctx, http_req *r, err *e)
{
  native *n = ctx;
  const struct endpoint *ep = endpoint_of(r);
  if (ep == NULL)
    return err_set(e, ERR_NOT_FOUND, "no endpoint '%s'", r->raw_path);
  r->op = ep->op;
  int rc = ep->action != NULL ? api_authorize(r, ep->action, "*", e) : 0;
  if (rc != 0)
    return rc;
  if (ep->prepare != NULL)
    return ep->prepare(n, r, e);
  if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "'%s' answers GET only", r->raw_path);
  return 0;
}

static void native_handle(void *ctx, http_req *r)
{
  const struct endpoint *ep = endpoint_of(r);
  if (ep != NULL)
    ep->handle(ctx, r);
}

static void native_cleanup(void *ctx, http_req *r)
{
  native *n = ctx;
  if (r->op != NULL && strcmp(r->op, "Sql") == 0)
    native_sql_cleanup(n->sql, r);
}

static void native_error(void *ctx, http_req *r, const err *e)
{
  http_resp_header(r, "Content-Type", "application/json");
  buf_printf(&r->resp_body, "{\"error\":\"%s\",\"message\":", err_aws_code(e->code));
  buf_json_string(&r->resp_body, e->msg, strlen(e->msg));
  buf_puts(&r->resp_body, "}\n");
}

http_service *native_service_new(store *st, const char *version)
{
  native *n = xcalloc(1, sizeof *n);
  n->st = st;
  n->sql = native_sql_new(st);
  n->version = version;
  n->svc.name = "native";
  n->svc.ctx = n;
  n->svc.prepare = native_prepare;
  n->svc.handle = native_handle;
  n->svc.error = native_error;
  n->svc.cleanup = native_cleanup;
  native_service_add_metrics(&n->svc, native_sql_metrics, n->sql);
  return &n->svc;
}

void native_service_set_catalog(http_service *svc, catalog *cat)
{
  native_sql_set_catalog(((native *)svc->ctx)->sql, cat);
}

void native_service_attach(http_service *svc, http_server *srv)
{
  atomic_store(&((native *)svc->ctx)->srv, srv);
}

void native_service_add_metrics(http_service *svc, void (*write)(void *ctx, buf *out), void *ctx)
{
  native *n = svc->ctx;
  if (n->nproviders < sizeof n->providers / sizeof n->providers[0]) {
    n->providers[n->nproviders].write = write;
    n->providers[n->nproviders].ctx = ctx;
    n->nproviders++;
  }
}

http_service *native_service_free(http_service *svc)
{
  if (svc != NULL) {
    native *n = svc->ctx;
    native_sql_free(n->sql);
    free(n);
  }
  return NULL;
}
