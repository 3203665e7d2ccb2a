/* api/native_sql.c -- POST /_tarn/sql: one SQL statement in, its result
 * streamed out as CSV, JSON lines or JSON (DESIGN.md §2).
 *
 * Why: the SQL engine (sql/) knows nothing of HTTP; this file runs a query
 * on a thread of its own and turns the rows it produces into a streamed
 * response, so a large result never sits in memory and a client that goes
 * away cancels its query.
 *
 * A query job moves through:
 *   PARKED    the request is parked while the engine plans and starts;
 *   STREAMING the engine announced its columns: the response (200) is
 *             resumed as a stream and the job never touches the request
 *             again, only the stream;
 *   DONE      the engine finished; stats go out as trailers (and, in JSON,
 *             in the final object). An error before STREAMING is a normal
 *             JSON error response with its status, line and column.
 *
 * Invariants:
 *   (1) The job touches the request only under job->lock while job->req is
 *       set; cleanup() clears it (the client is gone) and cancels the query.
 *   (2) The job is freed by whichever of the thread and cleanup() ends last.
 *   (3) native_sql_stop() cancels every running query and waits for them,
 *       so the store is never closed under a query.
 */
#include "api/native_sql.h"

#include "base/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQL_TEXT_MAX (1u << 20)
#define SQL_TIME_LIMIT_MS (30u * 60 * 1000)

enum sql_format { FORMAT_CSV, FORMAT_JSONL, FORMAT_JSON };

typedef struct sql_job {
  pthread_mutex_t lock;
  http_req *req;            /* until STREAMING or cleanup; then NULL */
  native_sql *owner;
  store *st;
  char *text;               /* the statement (heap) */
  enum sql_format format;
  atomic_bool cancel;
  http_stream *stream;      /* once STREAMING */
  const sql_column *cols;   /* valid during the query */
  size_t ncols;
  uint64_t rows_sent;
  buf line;                 /* formatting scratch */
  int refs;
  struct sql_job *next;     /* owner's list of running jobs */
} sql_job;

struct native_sql {
  store *st;
  pthread_mutex_t lock;
  pthread_cond_t idle;
  sql_job *running;
  int nrunning;
};

native_sql *native_sql_new(store *st)
{
  native_sql *n = calloc(1, sizeof *n);
  if (n == NULL)
    abort();
  n->st = st;
  pthread_mutex_init(&n->lock, NULL);
  pthread_cond_init(&n->idle, NULL);
  return n;
}

void native_sql_stop(native_sql *n)
{
  if (n == NULL)
    return;
  pthread_mutex_lock(&n->lock);
  for (sql_job *j = n->running; j != NULL; j = j->next)
    atomic_store(&j->cancel, true);
  while (n->nrunning > 0)
    pthread_cond_wait(&n->idle, &n->lock);
  pthread_mutex_unlock(&n->lock);
}

native_sql *native_sql_free(native_sql *n)
{
  if (n == NULL)
    return NULL;
  native_sql_stop(n);
  pthread_mutex_destroy(&n->lock);
  pthread_cond_destroy(&n->idle);
  free(n);
  return NULL;
}

static void job_unref(sql_job *j)
{
  pthread_mutex_lock(&j->lock);
  int left = --j->refs;
  pthread_mutex_unlock(&j->lock);
  if (left > 0)
    return;
  free(j->text);
  buf_release(&j->line);
  pthread_mutex_destroy(&j->lock);
  free(j);
}

static void csv_name(buf *b, const char *s)
{
  if (strpbrk(s, ",\"\r\n") == NULL && *s != '\0') {
    buf_puts(b, s);
    return;
  }
  buf_puts(b, "\"");
  for (const char *c = s; *c; c++) {
    if (*c == '"')
      buf_puts(b, "\"\"");
    else
      buf_append(b, c, 1);
  }
  buf_puts(b, "\"");
}

static const char *content_type(enum sql_format f)
{
  switch (f) {
  case FORMAT_CSV: return "text/csv; charset=utf-8";
  case FORMAT_JSONL: return "application/x-ndjson";
  case FORMAT_JSON: return "application/json";
  }
  return "application/octet-stream";
}

/* The engine announced the result's columns: the response starts. */
static int on_columns(void *ctx, const sql_column *cols, size_t ncols, err *e)
{
  sql_job *j = ctx;
  j->cols = cols;
  j->ncols = ncols;
  buf_reset(&j->line);
  if (j->format == FORMAT_CSV) {
    for (size_t i = 0; i < ncols; i++) {
      if (i > 0)
        buf_puts(&j->line, ",");
      csv_name(&j->line, cols[i].name);
    }
    buf_puts(&j->line, "\r\n");
  } else if (j->format == FORMAT_JSON) {
    buf_puts(&j->line, "{\"columns\":[");
    for (size_t i = 0; i < ncols; i++) {
      buf_puts(&j->line, i ? ",{\"name\":" : "{\"name\":");
      buf_json_string(&j->line, cols[i].name, strlen(cols[i].name));
      buf_printf(&j->line, ",\"type\":\"%s\"}", sql_type_name(cols[i].type));
    }
    buf_puts(&j->line, "],\"rows\":[");
  }
  pthread_mutex_lock(&j->lock);
  http_req *r = j->req;
  if (r == NULL) {
    pthread_mutex_unlock(&j->lock);
    return err_set(e, ERR_REQUEST_TIMEOUT, "query cancelled");
  }
  http_resp_status(r, 200);
  http_resp_header(r, "Content-Type", content_type(j->format));
  http_resp_header(r, "Trailer", "x-tarn-rows, x-tarn-bytes-scanned, x-tarn-objects-scanned, "
                                 "x-tarn-elapsed-ms, x-tarn-cost-usd, x-tarn-error");
  j->stream = http_resp_stream(r);
  j->req = NULL; /* from here on only the stream */
  http_req_resume(r);
  pthread_mutex_unlock(&j->lock);
  if (http_stream_write(j->stream, j->line.data, j->line.len) != 0)
    return err_set(e, ERR_REQUEST_TIMEOUT, "query cancelled");
  return 0;
}

static int on_rows(void *ctx, const sql_batch *b, err *e)
{
  sql_job *j = ctx;
  size_t nrows = sql_batch_rows(b);
  buf_reset(&j->line);
  for (size_t row = 0; row < nrows; row++) {
    if (j->format == FORMAT_CSV) {
      for (size_t c = 0; c < j->ncols; c++) {
        if (c > 0)
          buf_puts(&j->line, ",");
        sql_cell_csv(b, c, row, &j->line);
      }
      buf_puts(&j->line, "\r\n");
    } else if (j->format == FORMAT_JSONL) {
      for (size_t c = 0; c < j->ncols; c++) {
        buf_puts(&j->line, c ? "," : "{");
        buf_json_string(&j->line, j->cols[c].name, strlen(j->cols[c].name));
        buf_puts(&j->line, ":");
        sql_cell_json(b, c, row, &j->line);
      }
      buf_puts(&j->line, j->ncols ? "}\n" : "{}\n");
    } else {
      buf_puts(&j->line, j->rows_sent + row > 0 ? ",[" : "[");
      for (size_t c = 0; c < j->ncols; c++) {
        if (c > 0)
          buf_puts(&j->line, ",");
        sql_cell_json(b, c, row, &j->line);
      }
      buf_puts(&j->line, "]");
    }
    if (j->line.len >= 256 * 1024) {
      if (http_stream_write(j->stream, j->line.data, j->line.len) != 0)
        return err_set(e, ERR_REQUEST_TIMEOUT, "query cancelled");
      buf_reset(&j->line);
    }
  }
  j->rows_sent += nrows;
  if (j->line.len > 0 && http_stream_write(j->stream, j->line.data, j->line.len) != 0)
    return err_set(e, ERR_REQUEST_TIMEOUT, "query cancelled");
  return 0;
}

static void stats_json(buf *b, const sql_stats *s)
{
  buf_printf(b,
             "{\"rows\":%llu,\"bytes_scanned\":%llu,\"objects_scanned\":%llu,"
             "\"elapsed_ms\":%llu,\"cost_usd\":%.8f}",
             (unsigned long long)s->rows, (unsigned long long)s->bytes_scanned,
             (unsigned long long)s->objects_scanned, (unsigned long long)s->elapsed_ms,
             s->cost_usd);
}

/* The engine failed before any row: a normal error response. */
static void answer_error(sql_job *j, int rc, const err *e, const sql_stats *s)
{
  pthread_mutex_lock(&j->lock);
  http_req *r = j->req;
  if (r != NULL) {
    j->req = NULL;
    http_resp_status(r, err_http_status(rc));
    http_resp_header(r, "Content-Type", "application/json");
    buf_printf(&r->resp_body, "{\"error\":\"%s\",\"message\":", err_aws_code(rc));
    buf_json_string(&r->resp_body, e->msg, strlen(e->msg));
    buf_printf(&r->resp_body, ",\"line\":%d,\"column\":%d,\"stats\":", s->error_line,
               s->error_column);
    stats_json(&r->resp_body, s);
    buf_puts(&r->resp_body, "}\n");
    http_req_resume(r);
  }
  pthread_mutex_unlock(&j->lock);
}

/* The engine ended after the stream started: close it with the stats. */
static void end_stream(sql_job *j, int rc, const err *e, const sql_stats *s)
{
  buf_reset(&j->line);
  if (j->format == FORMAT_JSON) {
    buf_puts(&j->line, "],\"stats\":");
    stats_json(&j->line, s);
    if (rc != 0) {
      buf_printf(&j->line, ",\"error\":{\"error\":\"%s\",\"message\":", err_aws_code(rc));
      buf_json_string(&j->line, e->msg, strlen(e->msg));
      buf_puts(&j->line, "}");
    }
    buf_puts(&j->line, "}\n");
    http_stream_write(j->stream, j->line.data, j->line.len);
  }
  char rows[32], bytes[32], objects[32], ms[32], cost[32];
  snprintf(rows, sizeof rows, "%llu", (unsigned long long)s->rows);
  snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)s->bytes_scanned);
  snprintf(objects, sizeof objects, "%llu", (unsigned long long)s->objects_scanned);
  snprintf(ms, sizeof ms, "%llu", (unsigned long long)s->elapsed_ms);
  snprintf(cost, sizeof cost, "%.8f", s->cost_usd);
  str_pair trailers[6] = {{"x-tarn-rows", rows},       {"x-tarn-bytes-scanned", bytes},
                          {"x-tarn-objects-scanned", objects}, {"x-tarn-elapsed-ms", ms},
                          {"x-tarn-cost-usd", cost},   {"x-tarn-error", e->msg}};
  http_stream_end(j->stream, trailers, rc != 0 ? 6 : 5);
  j->stream = NULL;
}

static void *run_job(void *arg)
{
  sql_job *j = arg;
  native_sql *n = j->owner;
  sql_options opt = {.time_limit_ms = SQL_TIME_LIMIT_MS, .cancel = &j->cancel};
  sql_sink sink = {.ctx = j, .columns = on_columns, .rows = on_rows};
  sql_stats stats;
  memset(&stats, 0, sizeof stats);
  err e = {0};
  int rc = sql_run(j->st, j->text, &opt, &sink, &stats, &e);
  if (j->stream != NULL)
    end_stream(j, rc, &e, &stats);
  else
    answer_error(j, rc ? rc : ERR_INTERNAL, rc ? &e : &(err){ERR_INTERNAL, "no result"}, &stats);
  if (rc != 0 && rc != ERR_INVALID && rc != ERR_REQUEST_TIMEOUT && rc != ERR_NO_SUCH_BUCKET)
    log_warn("sql: %s", e.msg);
  pthread_mutex_lock(&n->lock);
  for (sql_job **pp = &n->running; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == j) {
      *pp = j->next;
      break;
    }
  }
  if (--n->nrunning == 0)
    pthread_cond_broadcast(&n->idle);
  pthread_mutex_unlock(&n->lock);
  job_unref(j);
  return NULL;
}

static enum sql_format pick_format(const http_req *r, err *e, int *rc)
{
  const char *f = http_req_param(r, "format");
  *rc = 0;
  if (f != NULL) {
    if (strcmp(f, "csv") == 0)
      return FORMAT_CSV;
    if (strcmp(f, "jsonl") == 0 || strcmp(f, "ndjson") == 0)
      return FORMAT_JSONL;
    if (strcmp(f, "json") == 0)
      return FORMAT_JSON;
    *rc = err_set(e, ERR_INVALID, "unknown format '%s' (csv, jsonl or json)", f);
    return FORMAT_JSON;
  }
  const char *accept = http_req_header(r, "accept");
  if (accept != NULL && strstr(accept, "text/csv") != NULL)
    return FORMAT_CSV;
  if (accept != NULL &&
      (strstr(accept, "ndjson") != NULL || strstr(accept, "jsonl") != NULL ||
       strstr(accept, "json-lines") != NULL))
    return FORMAT_JSONL;
  return FORMAT_JSON;
}

int native_sql_prepare(native_sql *n, http_req *r, err *e)
{
  if (strcmp(r->method, "POST") != 0)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "'/_tarn/sql' answers POST only");
  http_req_body_max(r, SQL_TEXT_MAX);
  int rc;
  pick_format(r, e, &rc);
  return rc;
}

void native_sql_handle(native_sql *n, http_req *r)
{
  err e = {0};
  int rc;
  enum sql_format format = pick_format(r, &e, &rc);
  if (r->body.len == 0) {
    http_resp_status(r, 400);
    http_resp_header(r, "Content-Type", "application/json");
    buf_puts(&r->resp_body, "{\"error\":\"InvalidArgument\",\"message\":\"the request body must "
                            "hold one SQL statement\",\"line\":0,\"column\":0}\n");
    return;
  }
  sql_job *j = calloc(1, sizeof *j);
  if (j == NULL)
    abort();
  pthread_mutex_init(&j->lock, NULL);
  j->req = r;
  j->owner = n;
  j->st = n->st;
  j->text = strndup(r->body.data, r->body.len);
  j->format = format;
  buf_init(&j->line, 64u << 20);
  j->refs = 2; /* the thread's and the request's */
  r->svc = j;
  pthread_mutex_lock(&n->lock);
  j->next = n->running;
  n->running = j;
  n->nrunning++;
  pthread_mutex_unlock(&n->lock);
  http_req_park(r);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, run_job, j) != 0) {
    err_set(&e, ERR_UNAVAILABLE, "cannot start a query thread");
    sql_stats none;
    memset(&none, 0, sizeof none);
    answer_error(j, ERR_UNAVAILABLE, &e, &none);
    pthread_mutex_lock(&n->lock);
    for (sql_job **pp = &n->running; *pp != NULL; pp = &(*pp)->next) {
      if (*pp == j) {
        *pp = j->next;
        break;
      }
    }
    n->nrunning--;
    pthread_mutex_unlock(&n->lock);
    job_unref(j);
  }
  pthread_attr_destroy(&attr);
}

void native_sql_cleanup(native_sql *n, http_req *r)
{
  sql_job *j = r->svc;
  if (j == NULL)
    return;
  r->svc = NULL;
  pthread_mutex_lock(&j->lock);
  if (j->req != NULL) { /* gone before the result started */
    j->req = NULL;
    atomic_store(&j->cancel, true);
  }
  pthread_mutex_unlock(&j->lock);
  job_unref(j);
}
