/* api/native_sql.c -- POST /_tarn/sql: one SQL statement in, its result
 * streamed out as CSV, JSON lines or JSON (DESIGN.md §2).
 *
 * Why: the SQL engine (sql/) knows nothing of HTTP; this file runs a query
 * on a thread of its own and turns the rows it produces into a streamed
 * response, so a large result never sits in memory and a client that goes
 * away cancels its query.
 *
 * Limits (no query may take the server down), each overridable by an
 * environment variable read at start:
 *   - at most 2 x cores queries run at once (TARN_SQL_MAX_QUERIES); up to
 *     SQL_QUEUE_DEFAULT more wait in order (TARN_SQL_QUEUE); past that a
 *     query is refused at once: 429 TooManyRequestsException;
 *   - a query runs for at most 10 minutes (TARN_SQL_TIMEOUT_SECONDS);
 *   - a query holds at most half of RAM shared by the running queries,
 *     i.e. RAM / (2 x max queries) each (TARN_SQL_MEMORY_MB);
 *   - a value is at most SQL_VALUE_MAX (32 MiB; the engine checks it).
 * A client that goes away cancels its query: the watcher thread looks at
 * every waiting or running query's connection every WATCH_MS (a query that
 * sends nothing for minutes, e.g. a count over a cross join, never learns
 * it from a failed write).
 *
 * A query job moves through:
 *   QUEUED    parked, waiting for a free slot (only when max are running);
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
 *       Likewise job->stream is cleared under job->lock before it is ended,
 *       so the watcher may look at either under that lock.
 *   (2) The job is freed by whichever of the thread and cleanup() ends last.
 *   (3) native_sql_stop() cancels every running and queued query and waits
 *       for them, so the store is never closed under a query.
 *   (4) nrunning threads exist; each, after its job, takes the oldest
 *       queued job before it ends, so a queued job never waits for nobody.
 *   (5) Lock order: native_sql.lock, then job->lock, then the server's.
 */
#include "api/native_sql.h"

#include "api/iam.h"

#include "base/log.h"
#include "base/mem.h"
#include "base/text.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SQL_TEXT_MAX (1u << 20)
#define SQL_TIMEOUT_DEFAULT_S 600u   /* 10 minutes */
#define SQL_QUEUE_DEFAULT 64u
#define WATCH_MS 200

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
  atomic_bool client_gone;  /* the watcher saw the connection close */
  struct sql_job *next;     /* owner's list of running jobs, or the queue */
  char request_id[17];      /* the request's, for the events of objects COPY writes */
  char *principal;          /* the caller's access key (heap), or NULL */
  char *database;           /* ?database=: the default database (heap), or NULL */
} sql_job;

struct native_sql {
  store *st;
  catalog *cat;             /* the table catalog, or NULL (set before serving) */
  pthread_mutex_t lock;
  pthread_cond_t idle;      /* nrunning dropped to 0 */
  pthread_cond_t wake;      /* the watcher's sleep; signalled to stop it */
  sql_job *running;
  int nrunning;
  sql_job *queue_head;      /* waiting jobs, oldest first */
  sql_job *queue_tail;
  int nqueued;
  bool quit;                /* the watcher ends */
  pthread_t watcher;
  bool watching;            /* the watcher thread was started */
  /* limits (see the top of the file) */
  int max_running;
  int max_queued;
  uint64_t time_limit_ms;
  uint64_t memory_limit;
  /* metrics, under lock */
  uint64_t started;         /* queries that began to run */
  uint64_t rejected;        /* refused: the queue was full */
  uint64_t cancelled;       /* ended because their client went away */
  uint64_t timed_out;       /* ended by the time limit */
  uint64_t failed;          /* ended with any other error */
};

static void *watch_main(void *arg);

void native_sql_set_catalog(native_sql *n, catalog *cat)
{
  n->cat = cat;
}

native_sql *native_sql_new(store *st)
{
  native_sql *n = xcalloc(1, sizeof *n);
  n->st = st;
  pthread_mutex_init(&n->lock, NULL);
  pthread_cond_init(&n->idle, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&n->wake, &ca);
  pthread_condattr_destroy(&ca);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1)
    cores = 1;
  n->max_running = (int)env_u64("TARN_SQL_MAX_QUERIES", (uint64_t)(2 * cores));
  if (n->max_running > 4096)
    n->max_running = 4096;
  n->max_queued = (int)env_u64("TARN_SQL_QUEUE", SQL_QUEUE_DEFAULT);
  if (n->max_queued > 65536)
    n->max_queued = 65536;
  n->time_limit_ms = env_u64("TARN_SQL_TIMEOUT_SECONDS", SQL_TIMEOUT_DEFAULT_S) * 1000;
  long pages = sysconf(_SC_PHYS_PAGES);
  long psize = sysconf(_SC_PAGESIZE);
  uint64_t ram = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 4ull << 30;
  uint64_t share = ram / 2 / (uint64_t)n->max_running;
  if (share < (256ull << 20))
    share = 256ull << 20;
  n->memory_limit = env_u64("TARN_SQL_MEMORY_MB", share >> 20) << 20;
  n->watching = pthread_create(&n->watcher, NULL, watch_main, n) == 0;
  return n;
}

void native_sql_stop(native_sql *n)
{
  if (n == NULL)
    return;
  pthread_mutex_lock(&n->lock);
  for (sql_job *j = n->running; j != NULL; j = j->next)
    atomic_store(&j->cancel, true);
  for (sql_job *j = n->queue_head; j != NULL; j = j->next)
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
  if (n->watching) {
    pthread_mutex_lock(&n->lock);
    n->quit = true;
    pthread_cond_signal(&n->wake);
    pthread_mutex_unlock(&n->lock);
    pthread_join(n->watcher, NULL);
  }
  pthread_mutex_destroy(&n->lock);
  pthread_cond_destroy(&n->idle);
  pthread_cond_destroy(&n->wake);
  free(n);
  return NULL;
}

void native_sql_metrics(void *ctx, buf *out)
{
  native_sql *n = ctx;
  pthread_mutex_lock(&n->lock);
  buf_printf(out,
             "# HELP tarn_sql_queries_running SQL queries running now.\n"
             "# TYPE tarn_sql_queries_running gauge\ntarn_sql_queries_running %d\n"
             "# HELP tarn_sql_queries_queued SQL queries waiting for a free slot.\n"
             "# TYPE tarn_sql_queries_queued gauge\ntarn_sql_queries_queued %d\n"
             "# HELP tarn_sql_queries_total SQL queries that began to run.\n"
             "# TYPE tarn_sql_queries_total counter\ntarn_sql_queries_total %llu\n"
             "# HELP tarn_sql_queries_rejected_total SQL queries refused: queue full.\n"
             "# TYPE tarn_sql_queries_rejected_total counter\n"
             "tarn_sql_queries_rejected_total %llu\n"
             "# HELP tarn_sql_queries_cancelled_total SQL queries cancelled: client gone.\n"
             "# TYPE tarn_sql_queries_cancelled_total counter\n"
             "tarn_sql_queries_cancelled_total %llu\n"
             "# HELP tarn_sql_queries_timed_out_total SQL queries past their time limit.\n"
             "# TYPE tarn_sql_queries_timed_out_total counter\n"
             "tarn_sql_queries_timed_out_total %llu\n"
             "# HELP tarn_sql_queries_failed_total SQL queries ended by another error.\n"
             "# TYPE tarn_sql_queries_failed_total counter\n"
             "tarn_sql_queries_failed_total %llu\n",
             n->nrunning, n->nqueued, (unsigned long long)n->started,
             (unsigned long long)n->rejected, (unsigned long long)n->cancelled,
             (unsigned long long)n->timed_out, (unsigned long long)n->failed);
  pthread_mutex_unlock(&n->lock);
}

/* Called under job->lock: has the job's client closed its connection? */
static bool job_client_gone(sql_job *j)
{
  if (j->req != NULL)
    return http_req_client_gone(j->req);
  if (j->stream != NULL)
    return http_stream_client_gone(j->stream);
  return false;
}

static void watch_list(sql_job *j)
{
  for (; j != NULL; j = j->next) {
    if (atomic_load(&j->cancel))
      continue;
    pthread_mutex_lock(&j->lock);
    bool gone = job_client_gone(j);
    pthread_mutex_unlock(&j->lock);
    if (gone) {
      atomic_store(&j->client_gone, true);
      atomic_store(&j->cancel, true);
    }
  }
}

/* The watcher: every WATCH_MS, cancels the queries whose clients left. */
static void *watch_main(void *arg)
{
  native_sql *n = arg;
  pthread_mutex_lock(&n->lock);
  while (!n->quit) {
    struct timespec ts = time_deadline(CLOCK_MONOTONIC, WATCH_MS);
    pthread_cond_timedwait(&n->wake, &n->lock, &ts);
    if (n->quit)
      break;
    watch_list(n->running);
    watch_list(n->queue_head);
  }
  pthread_mutex_unlock(&n->lock);
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
  free(j->principal);
  free(j->database);
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
  pthread_mutex_lock(&j->lock);
  http_stream *stream = j->stream;
  j->stream = NULL; /* see (1) */
  pthread_mutex_unlock(&j->lock);
  http_stream_end(stream, trailers, rc != 0 ? 6 : 5);
}

/* sql_options.access: tarn:RunSql runs a query, the objects it reads and
 * writes are the caller's S3 permissions' (root: everything). */
static int job_access(void *ctx, const char *action, const char *resource, err *e)
{
  sql_job *j = ctx;
  return api_authorize_later(NULL, j->principal, action, resource, e);
}

static void run_one(sql_job *j)
{
  native_sql *n = j->owner;
  sql_options opt = {.time_limit_ms = n->time_limit_ms,
                     .memory_limit = n->memory_limit,
                     .cancel = &j->cancel,
                     .catalog = n->cat,
                     .database = j->database,
                     .access = job_access,
                     .access_ctx = j};
  sql_sink sink = {.ctx = j, .columns = on_columns, .rows = on_rows};
  sql_stats stats;
  memset(&stats, 0, sizeof stats);
  err e = {0};
  /* objects written by COPY carry the request in their ObjectCreated events */
  store_origin origin = {.request_id = j->request_id, .principal = j->principal};
  store_origin_set(&origin);
  int rc = sql_run(j->st, j->text, &opt, &sink, &stats, &e);
  store_origin_set(NULL);
  bool gone = atomic_load(&j->client_gone);
  if (gone && rc == ERR_REQUEST_TIMEOUT)
    err_set(&e, rc, "query cancelled: the client went away");
  if (j->stream != NULL)
    end_stream(j, rc, &e, &stats);
  else
    answer_error(j, rc ? rc : ERR_INTERNAL, rc ? &e : &(err){ERR_INTERNAL, "no result"}, &stats);
  if (rc == ERR_REQUEST_TIMEOUT && (gone || strcmp(e.msg, "query cancelled") == 0))
    log_info("sql: query cancelled after %llu ms (%s)", (unsigned long long)stats.elapsed_ms,
             gone ? "the client went away" : "the server is stopping");
  else if (rc == ERR_REQUEST_TIMEOUT)
    log_info("sql: %s", e.msg);
  else if (rc != 0 && rc != ERR_INVALID && rc != ERR_NO_SUCH_BUCKET)
    log_warn("sql: %s", e.msg);
  pthread_mutex_lock(&n->lock);
  if (rc == ERR_REQUEST_TIMEOUT && gone)
    n->cancelled++;
  else if (rc == ERR_REQUEST_TIMEOUT && strstr(e.msg, "time limit") != NULL)
    n->timed_out++;
  else if (rc != 0)
    n->failed++;
  pthread_mutex_unlock(&n->lock);
}

/* A query thread: runs its job, then the queued ones, oldest first (4). */
static void *run_job(void *arg)
{
  sql_job *j = arg;
  native_sql *n = j->owner;
  while (j != NULL) {
    run_one(j);
    pthread_mutex_lock(&n->lock);
    for (sql_job **pp = &n->running; *pp != NULL; pp = &(*pp)->next) {
      if (*pp == j) {
        *pp = j->next;
        break;
      }
    }
    sql_job *next = n->queue_head;
    if (next != NULL) {
      n->queue_head = next->next;
      if (n->queue_head == NULL)
        n->queue_tail = NULL;
      n->nqueued--;
      next->next = n->running;
      n->running = next;
      n->started++;
    } else if (--n->nrunning == 0) {
      pthread_cond_broadcast(&n->idle);
    }
    pthread_mutex_unlock(&n->lock);
    job_unref(j);
    j = next;
  }
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
  pthread_mutex_lock(&n->lock);
  bool run_now = n->nrunning < n->max_running;
  if (!run_now && n->nqueued >= n->max_queued) {
    int running = n->nrunning;
    int queued = n->nqueued;
    n->rejected++;
    pthread_mutex_unlock(&n->lock);
    http_resp_status(r, err_http_status(ERR_THROTTLED));
    http_resp_header(r, "Content-Type", "application/json");
    http_resp_header(r, "Retry-After", "1");
    buf_printf(&r->resp_body,
               "{\"error\":\"%s\",\"message\":\"too many SQL queries: %d running and %d "
               "waiting, the server's limits (TARN_SQL_MAX_QUERIES, TARN_SQL_QUEUE); try again "
               "later\",\"line\":0,\"column\":0}\n",
               err_aws_code(ERR_THROTTLED), running, queued);
    return;
  }
  sql_job *j = xcalloc(1, sizeof *j);
  pthread_mutex_init(&j->lock, NULL);
  j->req = r;
  j->owner = n;
  j->st = n->st;
  j->text = xstrndup(r->body.data, r->body.len);
  snprintf(j->request_id, sizeof j->request_id, "%s", r->request_id);
  j->principal = r->authenticated ? xstrdup(r->auth.access_key) : NULL;
  const char *db = http_req_param(r, "database");
  j->database = db != NULL && db[0] != 0 ? xstrdup(db) : NULL;
  j->format = format;
  buf_init(&j->line, 64u << 20);
  j->refs = 2; /* the thread's and the request's */
  r->svc = j;
  http_req_park(r);
  if (!run_now) { /* a running thread takes it (4) */
    if (n->queue_tail != NULL)
      n->queue_tail->next = j;
    else
      n->queue_head = j;
    n->queue_tail = j;
    n->nqueued++;
    pthread_mutex_unlock(&n->lock);
    return;
  }
  j->next = n->running;
  n->running = j;
  n->nrunning++;
  n->started++;
  pthread_mutex_unlock(&n->lock);
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
    if (--n->nrunning == 0)
      pthread_cond_broadcast(&n->idle);
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
