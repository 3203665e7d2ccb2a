/* athena/athena.c -- query executions: the queue and the bounded pool of
 * threads that runs them, over the records of a side (internal.h: LMDB, or
 * PostgreSQL shared by several nodes); see athena.h for the states.
 *
 * Why: Athena's API is asynchronous (start, poll, read the results), so a
 * query must outlive the request that started it, its history must survive
 * a restart, and a burst of queries must wait in line instead of starving
 * the machine.
 *
 * Invariants:
 *   (1) An execution is acknowledged (its id returned) only after its
 *       QUEUED record, its work group index entry and its token are
 *       committed together. The query may start while that commit is on
 *       its way (the engine's time overlaps the sync), but nothing of it
 *       is written before the commit is done (ajob.acked: its result
 *       objects and final record wait), and a job whose commit failed or
 *       found its token taken is dropped without a trace.
 *   (1a) Tokens: a token already committed answers its execution at once
 *       (no commit); a token whose execution is being committed by another
 *       request waits for that commit; the commit checks the token again
 *       (on the committer thread, or in the PostgreSQL transaction), so two
 *       requests with one token always make one execution.
 *   (2) A final state is visible only once committed: the job stays in
 *       `active` (answering lookups with its in-memory state) until its
 *       final record is durable, and the result objects are committed
 *       before that record.
 *   (3) On LMDB RUNNING is never written: after a crash an execution is
 *       final or QUEUED, and athena_open fails the QUEUED ones (never
 *       stuck).
 *   (4) At most `workers` queries run; the rest wait in FIFO order, at most
 *       max_queued of them (then TooManyRequestsException).
 *   (5) Lock order: wg_mu, then mu; no lock is held across a commit or
 *       a query.
 *   (6) On a shared side a query runs where it was started: its thread
 *       writes RUNNING once its QUEUED record is committed (side.running),
 *       the watch thread (watch_main) renews its lease and record every
 *       quarter lease and cancels here what a StopQueryExecution on another
 *       node marked; another node's execution is read from the side with
 *       its times brought to now (load_exec), and stopped by marking it
 *       (side.stop_remote). pg_store.c keeps the lease's rules.
 *
 * Start reading at athena_query_start(), then worker_main().
 */
#include "athena/internal.h"

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/text.h"
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TIME_LIMIT_DEFAULT_S 1800u   /* Athena's default DML timeout: 30 minutes */
#define ENGINE_VERSION "Athena engine version 3"

/* ---- small helpers ---- */

int64_t athena__now_ms(void)
{
  return time_now_ms();
}

json_t *athena__time(int64_t ms)
{
  return json_real((double)ms / 1000.0);
}

int athena__invalid(err *e, const char *member, const char *constraint)
{
  return err_set(e, ERR_INVALID, "1 validation error detected: Value at '%s' failed to satisfy "
                 "constraint: %s", member, constraint);
}

int athena__token_mismatch(err *e)
{
  return err_set(e, ERR_INVALID, "the ClientRequestToken was used before with other "
                 "parameters (QueryString, WorkGroup, QueryExecutionContext or "
                 "ResultConfiguration): idempotent parameters do not match");
}

int athena__max_results(json_t *in, json_int_t min, json_int_t max, json_int_t *out, err *e)
{
  json_t *mr = json_object_get(in, "MaxResults");
  *out = max;
  if (mr == NULL || json_is_null(mr))
    return 0;
  if (!json_is_integer(mr) || json_integer_value(mr) < min || json_integer_value(mr) > max) {
    char c[80];
    snprintf(c, sizeof c, "Member must have value between %lld and %lld", (long long)min,
             (long long)max);
    return athena__invalid(e, "maxResults", c);
  }
  if (json_integer_value(mr) > 0) /* ListQueryExecutions takes 0 for the default */
    *out = json_integer_value(mr);
  return 0;
}

/* A copy of rec without its "_" members. */
static json_t *public_copy(json_t *rec)
{
  json_t *o = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(rec, k, v) {
    if (k[0] != '_')
      json_object_set(o, k, v);
  }
  return o;
}

/* ---- the records (the side's) ---- */

int athena__get(athena *a, int space, const char *key, json_t **out, err *e)
{
  return a->side->get(a, space, key, out, e);
}

static const char *rec_state(json_t *rec)
{
  return json_string_value(json_object_get(json_object_get(rec, "Status"), "State"));
}

static void set_error(json_t *status, int category, int type, bool retryable, const char *msg)
{
  json_object_set_new(status, "AthenaError",
                      json_pack("{s:i, s:i, s:b, s:s}", "ErrorCategory", category, "ErrorType",
                                type, "Retryable", retryable, "ErrorMessage", msg));
}

void athena__fail_rec(json_t *rec, const char *msg, int64_t now)
{
  json_t *status = json_object_get(rec, "Status");
  json_object_set_new(status, "State", json_string("FAILED"));
  json_object_set_new(status, "StateChangeReason", json_string(msg));
  json_object_set_new(status, "CompletionDateTime", athena__time(now));
  set_error(status, 1, 100, true, msg);
  json_t *stats = json_object_get(rec, "Statistics");
  int64_t submit = json_integer_value(json_object_get(rec, "_submit_ms"));
  if (stats != NULL)
    json_object_set_new(stats, "TotalExecutionTimeInMillis", json_integer(now - submit));
}

/* ---- opening ---- */

int athena_open(const athena_options *o, athena **out, err *e)
{
  *out = NULL;
  athena *a = xcalloc(1, sizeof *a);
  a->st = o->st;
  a->catalog = o->catalog;
  a->authorize = o->authorize;
  a->authorize_ctx = o->authorize_ctx;
  pthread_mutex_init(&a->mu, NULL);
  pthread_mutex_init(&a->wg_mu, NULL);
  pthread_cond_init(&a->work, NULL);
  pthread_cond_init(&a->acked, NULL);
  pthread_cond_init(&a->wake, NULL);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1)
    cores = 1;
  a->workers = o->workers > 0 ? o->workers
                              : (int)env_u64("TARN_ATHENA_MAX_QUERIES", (uint64_t)cores);
  if (a->workers > 256)
    a->workers = 256;
  a->max_queued = o->max_queued > 0 ? o->max_queued
                                    : (int)env_u64("TARN_ATHENA_QUEUE", ATHENA_QUEUE_DEFAULT);
  if (a->max_queued > 100000)
    a->max_queued = 100000;
  a->time_limit_ms = o->time_limit_ms ? o->time_limit_ms
                                      : env_u64("TARN_SQL_TIMEOUT_SECONDS",
                                                TIME_LIMIT_DEFAULT_S) * 1000;
  a->memory_limit = o->memory_limit;
  if (a->memory_limit == 0 && getenv("TARN_SQL_MEMORY_MB") != NULL)
    a->memory_limit = env_u64("TARN_SQL_MEMORY_MB", 256) << 20;
  a->node = o->node != NULL ? xstrdup(o->node) : NULL;
  int rc = o->metadata != NULL ? athena__pg_open(a, o->metadata, e)
                               : athena__lmdb_open(a, o->data_dir, e);
  if (rc != 0 || (rc = athena__workgroup_init(a, e)) != 0) {
    athena_close(a);
    return rc;
  }
  *out = a;
  return 0;
}

static void *worker_main(void *arg);
static void *watch_main(void *arg);

int athena_start(athena *a, err *e)
{
  if (a->side->watch != NULL && !a->watching) {
    if (pthread_create(&a->watcher, NULL, watch_main, a) != 0)
      return err_set(e, ERR_UNAVAILABLE, "cannot start the query watch thread");
    a->watching = true;
  }
  a->threads = xcalloc((size_t)a->workers, sizeof *a->threads);
  for (int i = 0; i < a->workers; i++) {
    if (pthread_create(&a->threads[i], NULL, worker_main, a) != 0) {
      if (a->nthreads == 0)
        return err_set(e, ERR_UNAVAILABLE, "cannot start a query thread");
      break;
    }
    a->nthreads++;
  }
  return 0;
}

void athena_stop(athena *a)
{
  if (a == NULL)
    return;
  pthread_mutex_lock(&a->mu);
  a->stopping = true;
  for (ajob *j = a->active; j != NULL; j = j->next)
    atomic_store(&j->cancel, true);
  pthread_cond_broadcast(&a->work);
  pthread_cond_broadcast(&a->wake);
  pthread_mutex_unlock(&a->mu);
  for (int i = 0; i < a->nthreads; i++)
    pthread_join(a->threads[i], NULL);
  a->nthreads = 0;
  if (a->watching)
    pthread_join(a->watcher, NULL);
  a->watching = false;
}

static void job_free(ajob *j)
{
  json_decref(j->rec);
  free(j->sql);
  free(j->out_bucket);
  free(j->out_key);
  free(j->database);
  free(j->catalog);
  free(j->principal);
  free(j->token);
  free(j);
}

athena *athena_close(athena *a)
{
  if (a == NULL)
    return NULL;
  athena_stop(a);
  if (a->side != NULL)
    a->side->close(a);
  while (a->active != NULL) { /* left QUEUED (or RUNNING) in the database (3) */
    ajob *j = a->active;
    a->active = j->next;
    job_free(j);
  }
  free(a->threads);
  free(a->node);
  pthread_mutex_destroy(&a->mu);
  pthread_mutex_destroy(&a->wg_mu);
  pthread_cond_destroy(&a->work);
  pthread_cond_destroy(&a->acked);
  pthread_cond_destroy(&a->wake);
  free(a);
  return NULL;
}

void athena_metrics(void *ctx, buf *out)
{
  athena *a = ctx;
  pthread_mutex_lock(&a->mu);
  buf_printf(out,
             "# HELP tarn_athena_queries_running Athena query executions running now.\n"
             "# TYPE tarn_athena_queries_running gauge\ntarn_athena_queries_running %d\n"
             "# HELP tarn_athena_queries_queued Athena query executions waiting for a thread.\n"
             "# TYPE tarn_athena_queries_queued gauge\ntarn_athena_queries_queued %d\n"
             "# HELP tarn_athena_queries_total Athena query executions ended, by state.\n"
             "# TYPE tarn_athena_queries_total counter\n"
             "tarn_athena_queries_total{state=\"SUCCEEDED\"} %llu\n"
             "tarn_athena_queries_total{state=\"FAILED\"} %llu\n"
             "tarn_athena_queries_total{state=\"CANCELLED\"} %llu\n",
             a->nrunning, a->nqueued, (unsigned long long)a->n_succeeded,
             (unsigned long long)a->n_failed, (unsigned long long)a->n_cancelled);
  pthread_mutex_unlock(&a->mu);
}

/* ---- starting ---- */

/* DML / DDL / UTILITY and the substatement, from the first keyword. */
static void statement_type(const char *sql, const char **type, const char **sub)
{
  const char *p = sql;
  for (;;) {
    while (isspace((unsigned char)*p) || *p == '(')
      p++;
    if (p[0] == '-' && p[1] == '-') {
      p = strchr(p, '\n');
      if (p == NULL)
        p = "";
    } else if (p[0] == '/' && p[1] == '*') {
      const char *end = strstr(p + 2, "*/");
      p = end != NULL ? end + 2 : "";
    } else {
      break;
    }
  }
  char word[16] = "";
  size_t n = 0;
  while (n + 1 < sizeof word && isalpha((unsigned char)p[n])) {
    word[n] = (char)toupper((unsigned char)p[n]);
    n++;
  }
  word[n] = '\0';
  static const struct { const char *word, *type, *sub; } kinds[] = {
      {"SELECT", "DML", "SELECT"},   {"WITH", "DML", "SELECT"},
      {"VALUES", "DML", "SELECT"},   {"TABLE", "DML", "SELECT"},
      {"INSERT", "DML", "INSERT"},   {"COPY", "DML", "UNLOAD"},
      {"UNLOAD", "DML", "UNLOAD"},   {"UPDATE", "DML", "UPDATE"},
      {"DELETE", "DML", "DELETE"},   {"MERGE", "DML", "MERGE"},
      {"CREATE", "DDL", "CREATE"},   {"DROP", "DDL", "DROP"},
      {"ALTER", "DDL", "ALTER"},     {"MSCK", "DDL", "MSCK_REPAIR_TABLE"},
      {"SHOW", "UTILITY", "SHOW"},   {"DESCRIBE", "UTILITY", "DESCRIBE"},
      {"DESC", "UTILITY", "DESCRIBE"}, {"EXPLAIN", "UTILITY", "EXPLAIN"},
  };
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    if (strcmp(word, kinds[i].word) == 0) {
      *type = kinds[i].type;
      *sub = kinds[i].sub;
      return;
    }
  }
  *type = "DML";
  *sub = "SELECT";
}

/* s3://bucket/prefix -> bucket and "prefix/" (a slash added when missing). */
static int parse_location(const char *loc, char **bucket, char **prefix, err *e)
{
  if (!str_starts(loc, "s3://"))
    return err_set(e, ERR_INVALID, "the output location '%s' is not an s3:// location", loc);
  const char *b = loc + 5;
  const char *slash = strchr(b, '/');
  size_t blen = slash != NULL ? (size_t)(slash - b) : strlen(b);
  if (blen == 0 || blen > 63)
    return err_set(e, ERR_INVALID, "the output location '%s' names no bucket", loc);
  *bucket = xstrndup(b, blen);
  const char *rest = slash != NULL ? slash + 1 : "";
  size_t rlen = strlen(rest);
  *prefix = xmalloc(rlen + 2);
  memcpy(*prefix, rest, rlen);
  if (rlen > 0 && rest[rlen - 1] != '/')
    (*prefix)[rlen++] = '/';
  (*prefix)[rlen] = '\0';
  return 0;
}

/* Takes the job into active and the queue, and wakes a thread. */
static void enqueue(athena *a, ajob *j)
{
  pthread_mutex_lock(&a->mu);
  j->next = a->active;
  a->active = j;
  if (a->qtail != NULL)
    a->qtail->qnext = j;
  else
    a->qhead = j;
  a->qtail = j;
  a->nqueued++;
  pthread_cond_signal(&a->work);
  pthread_mutex_unlock(&a->mu);
}

/* Called under mu: takes a queued job out of the queue; false when it
 * was not there. */
static bool unqueue(athena *a, ajob *j)
{
  for (ajob **pp = &a->qhead; *pp != NULL; pp = &(*pp)->qnext) {
    if (*pp == j) {
      *pp = j->qnext;
      if (a->qtail == j) {
        a->qtail = NULL;
        for (ajob *q = a->qhead; q != NULL; q = q->qnext)
          a->qtail = q;
      }
      a->nqueued--;
      return true;
    }
  }
  return false;
}

/* Called under mu: forgets a job. */
static void unlink_active(athena *a, ajob *j)
{
  for (ajob **pp = &a->active; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == j) {
      *pp = j->next;
      return;
    }
  }
}

/* Queues j unless its token has an execution (1a): 1 and found filled
 * when one is committed, 0 when j was queued, or an error. */
static int claim_token(athena *a, ajob *j, const char *hash, char found[37], err *e)
{
  for (;;) {
    int rc = a->side->token_lookup(a, j->token, hash, found, e);
    if (rc != 0)
      return rc;
    pthread_mutex_lock(&a->mu);
    ajob *other = NULL;
    for (ajob *q = a->active; q != NULL && other == NULL; q = q->next)
      if (q->acked == 0 && q->token != NULL && strcmp(q->token, j->token) == 0)
        other = q;
    if (other == NULL) {
      pthread_mutex_unlock(&a->mu);
      enqueue(a, j);
      return 0;
    }
    /* other may be freed once acked: look again after any wake-up */
    pthread_cond_wait(&a->acked, &a->mu);
    pthread_mutex_unlock(&a->mu);
  }
}

static const char *object_str(json_t *o, const char *a, const char *b)
{
  return json_string_value(json_object_get(json_object_get(o, a), b));
}

static int check_len(json_t *in, const char *name, size_t min, size_t max, bool required,
                     const char **out, err *e)
{
  json_t *v = json_object_get(in, name);
  *out = NULL;
  if (v == NULL || json_is_null(v)) {
    if (required)
      return athena__invalid(e, name, "Member must not be null");
    return 0;
  }
  if (!json_is_string(v))
    return athena__invalid(e, name, "Member must be a string");
  size_t n = json_string_length(v);
  if (n < min || n > max) {
    char c[96];
    snprintf(c, sizeof c, "Member must have length between %zu and %zu", min, max);
    return athena__invalid(e, name, c);
  }
  *out = json_string_value(v);
  return 0;
}

int athena_query_start(athena *a, json_t *in, const char *principal, char id_out[37], err *e)
{
  const char *sql, *token, *wgname, *db = NULL, *cat = NULL, *loc = NULL;
  int rc;
  if ((rc = check_len(in, "QueryString", 1, ATHENA_MAX_QUERY, true, &sql, e)) != 0 ||
      (rc = check_len(in, "ClientRequestToken", 32, 128, false, &token, e)) != 0 ||
      (rc = check_len(in, "WorkGroup", 1, 128, false, &wgname, e)) != 0)
    return rc;
  json_t *ctx = json_object_get(in, "QueryExecutionContext");
  json_t *rescfg = json_object_get(in, "ResultConfiguration");
  if ((ctx != NULL && !json_is_object(ctx)) || (rescfg != NULL && !json_is_object(rescfg)))
    return athena__invalid(e, ctx != NULL && !json_is_object(ctx) ? "QueryExecutionContext"
                                                                   : "ResultConfiguration",
                           "Member must be an object");
  if ((ctx != NULL && ((rc = check_len(ctx, "Database", 1, 255, false, &db, e)) != 0 ||
                       (rc = check_len(ctx, "Catalog", 1, 256, false, &cat, e)) != 0)) ||
      (rescfg != NULL && (rc = check_len(rescfg, "OutputLocation", 1, 1024, false, &loc, e)) != 0))
    return rc;
  if (wgname == NULL)
    wgname = "primary";
  json_t *wg;
  if ((rc = athena__workgroup_load(a, wgname, &wg, e)) != 0)
    return rc;
  const char *state = json_string_value(json_object_get(wg, "State"));
  json_t *wgcfg = json_object_get(wg, "Configuration");
  const char *wgloc = object_str(wgcfg, "ResultConfiguration", "OutputLocation");
  bool enforce = json_is_true(json_object_get(wgcfg, "EnforceWorkGroupConfiguration"));
  if (state != NULL && strcmp(state, "DISABLED") == 0) {
    rc = err_set(e, ERR_INVALID, "WorkGroup %s is disabled.", wgname);
    json_decref(wg);
    return rc;
  }
  if (wgloc != NULL && (loc == NULL || enforce))
    loc = wgloc;
  if (loc == NULL) {
    json_decref(wg);
    return err_set(e, ERR_INVALID, "No output location provided. An output location is "
                   "required either through the Workgroup result configuration setting or as "
                   "an API input.");
  }
  char *bucket = NULL, *prefix = NULL;
  if ((rc = parse_location(loc, &bucket, &prefix, e)) != 0) {
    json_decref(wg);
    return rc;
  }
  /* the idempotent parameters */
  uint8_t digest[SHA256_LEN];
  char hash[2 * SHA256_LEN + 1];
  json_t *params = json_pack("[s, s, s, s, s]", sql, wgname, db ? db : "", cat ? cat : "", loc);
  char *ptext = json_dumps(params, JSON_COMPACT);
  sha256(ptext, strlen(ptext), digest);
  hex_encode(digest, sizeof digest, hash);
  free(ptext);
  json_decref(params);

  ajob *j = xcalloc(1, sizeof *j);
  uuid_v4(j->id);
  json_int_t cutoff = json_integer_value(json_object_get(wgcfg, "BytesScannedCutoffPerQuery"));
  j->cutoff = cutoff > 0 ? (uint64_t)cutoff : 0;
  j->sql = xstrdup(sql);
  j->out_bucket = bucket;
  j->out_key = xmalloc(strlen(prefix) + 48);
  sprintf(j->out_key, "%s%s.csv", prefix, j->id);
  free(prefix);
  j->database = xstrdup(db ? db : "");
  j->catalog = xstrdup(cat ? cat : "");
  j->principal = principal != NULL ? xstrdup(principal) : NULL;
  j->submit_ms = athena__now_ms();
  const char *stype, *sub;
  statement_type(sql, &stype, &sub);
  char *outloc = xmalloc(strlen(bucket) + strlen(j->out_key) + 8);
  sprintf(outloc, "s3://%s/%s", bucket, j->out_key);
  json_t *qctx = json_object();
  if (db != NULL)
    json_object_set_new(qctx, "Database", json_string(db));
  json_object_set_new(qctx, "Catalog", json_string(cat ? cat : "AwsDataCatalog"));
  j->rec = json_pack(
      "{s:s, s:s, s:s, s:s, s:{s:s}, s:o, s:{s:s, s:o}, s:{s:i, s:i, s:i, s:i}, s:s, "
      "s:{s:s, s:s}, s:I, s:s*}",
      "QueryExecutionId", j->id, "Query", sql, "StatementType", stype, "SubstatementType", sub,
      "ResultConfiguration", "OutputLocation", outloc, "QueryExecutionContext", qctx, "Status",
      "State", "QUEUED", "SubmissionDateTime", athena__time(j->submit_ms), "Statistics",
      "EngineExecutionTimeInMillis", 0, "DataScannedInBytes", 0, "TotalExecutionTimeInMillis",
      0, "QueryQueueTimeInMillis", 0, "WorkGroup", wgname, "EngineVersion",
      "SelectedEngineVersion", "AUTO", "EffectiveEngineVersion", ENGINE_VERSION, "_submit_ms",
      (json_int_t)j->submit_ms, "_principal", principal);
  free(outloc);
  json_decref(wg);

  /* (4): refuse before committing anything */
  pthread_mutex_lock(&a->mu);
  bool full = a->nqueued >= a->max_queued;
  bool stopping = a->stopping;
  pthread_mutex_unlock(&a->mu);
  if (full || stopping) {
    job_free(j);
    if (stopping)
      return err_set(e, ERR_UNAVAILABLE, "the server is stopping");
    return err_set(e, ERR_THROTTLED, "too many queries waiting (%d); try again later",
                   a->max_queued);
  }
  memcpy(id_out, j->id, 37);
  /* The record to commit is copied before the job is queued: once queued, its runner may change
     j->rec (the state becomes RUNNING) while this thread would be reading it. */
  json_t *queued_rec = json_deep_copy(j->rec);
  if (queued_rec == NULL)
    mem_out_of_memory();
  if (token != NULL) {
    char found[37];
    j->token = xstrdup(token);
    rc = claim_token(a, j, hash, found, e);
    if (rc != 0) { /* an execution of the token, or an error: j never ran */
      if (rc == 1)
        memcpy(id_out, found, 37);
      json_decref(queued_rec);
      job_free(j);
      return rc == 1 ? 0 : rc;
    }
  } else {
    enqueue(a, j); /* the query may start at once (1) */
  }
  char taken[37];
  rc = a->side->start(a, queued_rec, j->id, wgname, token, hash, taken, e);
  json_decref(queued_rec);
  bool ok = rc == 0 && taken[0] == '\0';
  if (rc == 0 && !ok) /* the token was taken meanwhile (1a) */
    memcpy(id_out, taken, 37);
  pthread_mutex_lock(&a->mu);
  j->acked = ok ? 1 : -1;
  bool drop = false;
  if (!ok && !j->running && unqueue(a, j)) { /* still queued: take it out */
    unlink_active(a, j);
    drop = true;
  } else if (!ok) { /* running (or being stopped): its thread drops it */
    atomic_store(&j->cancel, true); /* its thread drops it */
  }
  pthread_cond_broadcast(&a->acked);
  pthread_mutex_unlock(&a->mu);
  if (drop)
    job_free(j);
  return rc;
}

/* ---- running ---- */

/* The one place that turns an execution into the engine's options: the
 * catalog and the default database (QueryExecutionContext) plug in here. */
/* sql_options.access: the caller's permissions on what its query reads and
 * writes (athena_options.authorize), asked for by the job's principal. */
typedef struct job_caller {
  athena *a;
  const char *principal;
} job_caller;

static int job_access(void *ctx, const char *action, const char *resource, err *e)
{
  job_caller *c = ctx;
  return c->a->authorize(c->a->authorize_ctx, c->principal, action, resource, e);
}

static void query_options(athena *a, ajob *j, job_caller *caller, sql_options *opt)
{
  memset(opt, 0, sizeof *opt);
  if (a->authorize != NULL && j->principal != NULL) {
    *caller = (job_caller){.a = a, .principal = j->principal};
    opt->access = job_access;
    opt->access_ctx = caller;
  }
  opt->time_limit_ms = a->time_limit_ms;
  opt->memory_limit = a->memory_limit;
  opt->cancel = &j->cancel;
  opt->catalog = a->catalog;
  opt->database = j->database[0] != '\0' ? j->database : NULL;
}

static void on_progress(void *ctx, const sql_stats *s)
{
  ajob *j = ctx;
  atomic_store(&j->scanned, s->bytes_scanned);
  if (j->cutoff != 0 && s->bytes_scanned > j->cutoff) {
    atomic_store(&j->over_cutoff, true);
    atomic_store(&j->cancel, true);
  }
}

/* Called under mu: the live statistics of a job. */
static void live_stats(ajob *j, json_t *rec, int64_t now)
{
  json_t *st = json_object_get(rec, "Statistics");
  int64_t queue = (j->running ? j->start_ms : now) - j->submit_ms;
  json_object_set_new(st, "QueryQueueTimeInMillis", json_integer(queue));
  json_object_set_new(st, "EngineExecutionTimeInMillis",
                      json_integer(j->running ? now - j->start_ms : 0));
  json_object_set_new(st, "TotalExecutionTimeInMillis", json_integer(now - j->submit_ms));
  json_object_set_new(st, "DataScannedInBytes",
                      json_integer((json_int_t)atomic_load(&j->scanned)));
}

/* AthenaError's ErrorCategory (1 system, 2 user) and ErrorType (the
 * catalog of Athena's error types) of an engine error. */
static void classify(int rc, int *category, int *type, bool *retryable)
{
  *retryable = false;
  switch (rc) {
  case ERR_INVALID: *category = 2; *type = 1000; break;         /* user error */
  case ERR_NO_SUCH_BUCKET: *category = 2; *type = 1000; break;
  case ERR_DENIED: *category = 2; *type = 1000; break;           /* no permission */
  case ERR_UNKNOWN_ACCESS_KEY: *category = 2; *type = 1000; break;
  case ERR_NOT_IMPLEMENTED: *category = 2; *type = 1000; break;
  case ERR_ENTITY_TOO_LARGE: *category = 1; *type = 0; break;   /* exhausted resources */
  case ERR_REQUEST_TIMEOUT: *category = 2; *type = 206; break;  /* timed out */
  default: *category = 1; *type = 100; *retryable = true; break; /* internal */
  }
}

/* Waits until j's QUEUED record is committed: false when it never will be
 * (the job is then dropped, nothing of it written). */
static bool wait_acked(athena *a, ajob *j)
{
  pthread_mutex_lock(&a->mu);
  while (j->acked == 0)
    pthread_cond_wait(&a->acked, &a->mu);
  bool ok = j->acked > 0;
  pthread_mutex_unlock(&a->mu);
  return ok;
}

/* Runs one job; returns its final record (a new reference), or NULL when
 * the server is stopping (the job then stays QUEUED in the database) or
 * the job is dropped (*drop: its QUEUED record was never committed). */
static json_t *run_job(athena *a, ajob *j, bool *drop)
{
  *drop = false;
  if (a->side->running != NULL) { /* shared: the others see it RUNNING (6) */
    if (!wait_acked(a, j)) {
      *drop = true;
      return NULL;
    }
    pthread_mutex_lock(&a->mu);
    json_t *now_rec = json_deep_copy(j->rec);
    pthread_mutex_unlock(&a->mu);
    err re = {0};
    int rrc = a->side->running(a, j->id, now_rec, &re);
    json_decref(now_rec);
    if (rrc == 1) { /* failed meanwhile by another node (its lease ran out) */
      *drop = true;
      return NULL;
    }
    if (rrc != 0)
      log_warn("athena: query %s: %s", j->id, re.msg);
  }
  sql_options opt;
  job_caller caller;
  query_options(a, j, &caller, &opt);
  opt.progress = on_progress;
  opt.progress_ctx = j;
  sql_stats stats;
  memset(&stats, 0, sizeof stats);
  err e = {0};
  result_writer rw;
  int rc = athena__result_init(&rw, a->st, j->out_bucket, &e);
  arena *ar = arena_new();
  store_bucket b;
  if (rc == 0 && store_bucket_get(a->st, j->out_bucket, ar, &b, &e) != 0)
    rc = err_set(&e, ERR_NO_SUCH_BUCKET, "Unable to verify/create output bucket %s",
                 j->out_bucket);
  arena_free(ar);
  store_origin origin = {.request_id = j->id, .principal = j->principal};
  store_origin_set(&origin);
  int64_t engine_start = athena__now_ms();
  if (rc == 0) {
    sql_sink sink = athena__result_sink(&rw);
    rc = sql_run(a->st, j->sql, &opt, &sink, &stats, &e);
  }
  int64_t engine_end = athena__now_ms();
  bool over = atomic_load(&j->over_cutoff) || (j->cutoff != 0 && stats.bytes_scanned > j->cutoff);
  if (over) /* the work group's limit: no results */
    rc = err_set(&e, ERR_REQUEST_TIMEOUT, "Query cancelled: it scanned %llu bytes, more than "
                 "the work group's BytesScannedCutoffPerQuery of %llu bytes",
                 (unsigned long long)stats.bytes_scanned, (unsigned long long)j->cutoff);
  if (!wait_acked(a, j)) { /* (1): nothing of it is written */
    store_origin_set(NULL);
    athena__result_release(&rw);
    *drop = true;
    return NULL;
  }
  if (rc == 0)
    rc = athena__result_commit(&rw, j->out_bucket, j->out_key, stats.bytes_scanned, &e);
  store_origin_set(NULL);
  uint64_t out_rows = rw.rows, out_bytes = rw.bytes;
  athena__result_release(&rw);

  pthread_mutex_lock(&a->mu);
  bool stop_asked = j->stop_asked;
  bool stopping = a->stopping;
  json_t *rec = json_deep_copy(j->rec);
  pthread_mutex_unlock(&a->mu);
  if (rc == ERR_REQUEST_TIMEOUT && stopping && !stop_asked && !over) {
    json_decref(rec);
    return NULL;
  }
  int64_t now = athena__now_ms();
  json_t *status = json_object_get(rec, "Status");
  if (rc == 0) {
    json_object_set_new(status, "State", json_string("SUCCEEDED"));
  } else if (rc == ERR_REQUEST_TIMEOUT && (stop_asked || over)) {
    json_object_set_new(status, "State", json_string("CANCELLED"));
    json_object_set_new(status, "StateChangeReason",
                        json_string(over ? e.msg : "Query cancelled by StopQueryExecution"));
  } else {
    int category, type;
    bool retryable;
    classify(rc, &category, &type, &retryable);
    if (rc == ERR_REQUEST_TIMEOUT && strstr(e.msg, "cancel") == NULL)
      err_wrap(&e, "Query exhausted resources: it ran past the time limit of %llu s",
               (unsigned long long)(a->time_limit_ms / 1000));
    json_object_set_new(status, "State", json_string("FAILED"));
    json_object_set_new(status, "StateChangeReason", json_string(e.msg));
    set_error(status, category, type, retryable, e.msg);
  }
  json_object_set_new(status, "CompletionDateTime", athena__time(now));
  json_t *st = json_object_get(rec, "Statistics");
  json_object_set_new(st, "EngineExecutionTimeInMillis", json_integer(engine_end - engine_start));
  json_object_set_new(st, "DataScannedInBytes", json_integer((json_int_t)stats.bytes_scanned));
  json_object_set_new(st, "TotalExecutionTimeInMillis", json_integer(now - j->submit_ms));
  json_object_set_new(st, "QueryQueueTimeInMillis", json_integer(j->start_ms - j->submit_ms));
  json_object_set_new(st, "ServicePreProcessingTimeInMillis",
                      json_integer(engine_start - j->start_ms));
  json_object_set_new(st, "QueryPlanningTimeInMillis", json_integer(0));
  json_object_set_new(st, "ServiceProcessingTimeInMillis", json_integer(now - engine_end));
  json_object_set_new(st, "ResultReuseInformation", json_pack("{s:b}", "ReusedPreviousResult", 0));
  json_object_set_new(rec, "_rows", json_integer((json_int_t)(rc == 0 ? out_rows : stats.rows)));
  json_object_set_new(rec, "_output_bytes", json_integer((json_int_t)(rc == 0 ? out_bytes : 0)));
  json_object_set_new(rec, "_objects", json_integer((json_int_t)stats.objects_scanned));
  return rec;
}

/* Commits a job's final record, then forgets the job (2). */
static void finish_job(athena *a, ajob *j, json_t *rec)
{
  err e = {0};
  if (!wait_acked(a, j)) { /* never acknowledged: nothing of it is written (1) */
    pthread_mutex_lock(&a->mu);
    unlink_active(a, j);
    pthread_mutex_unlock(&a->mu);
    json_decref(rec);
    job_free(j);
    return;
  }
  int rc = a->side->finish(a, j->id, rec, &e);
  const char *state = rec_state(rec);
  pthread_mutex_lock(&a->mu);
  if (rc != 0) {
    /* never stuck: it stays in memory as FAILED, which is also what the
       next open makes of its QUEUED record */
    char msg[ERR_MSG_MAX + 64];
    snprintf(msg, sizeof msg, "the query's final state could not be recorded: %s", e.msg);
    json_t *status = json_object_get(rec, "Status");
    json_object_set_new(status, "State", json_string("FAILED"));
    json_object_set_new(status, "StateChangeReason", json_string(msg));
    set_error(status, 1, 100, true, msg);
    json_decref(j->rec);
    j->rec = rec;
    j->unrecorded = true;
    a->n_failed++;
    pthread_mutex_unlock(&a->mu);
    return;
  }
  if (strcmp(state, "SUCCEEDED") == 0)
    a->n_succeeded++;
  else if (strcmp(state, "CANCELLED") == 0)
    a->n_cancelled++;
  else
    a->n_failed++;
  unlink_active(a, j);
  pthread_mutex_unlock(&a->mu);
  json_decref(rec);
  job_free(j);
}

static void *worker_main(void *arg)
{
  athena *a = arg;
  pthread_mutex_lock(&a->mu);
  for (;;) {
    while (!a->stopping && a->qhead == NULL)
      pthread_cond_wait(&a->work, &a->mu);
    if (a->stopping)
      break;
    ajob *j = a->qhead;
    a->qhead = j->qnext;
    if (a->qhead == NULL)
      a->qtail = NULL;
    j->qnext = NULL;
    a->nqueued--;
    a->nrunning++;
    j->running = true;
    j->start_ms = athena__now_ms();
    json_object_set_new(json_object_get(j->rec, "Status"), "State", json_string("RUNNING"));
    json_object_set_new(j->rec, "_start_ms", json_integer(j->start_ms));
    pthread_mutex_unlock(&a->mu);
    bool drop;
    json_t *rec = run_job(a, j, &drop);
    if (rec != NULL) {
      finish_job(a, j, rec);
    } else if (drop) {
      pthread_mutex_lock(&a->mu);
      unlink_active(a, j);
      pthread_mutex_unlock(&a->mu);
      job_free(j);
    }
    pthread_mutex_lock(&a->mu);
    a->nrunning--;
  }
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

/* ---- reading and stopping ---- */

static ajob *find_active(athena *a, const char *id)
{
  for (ajob *j = a->active; j != NULL; j = j->next)
    if (strcmp(j->id, id) == 0)
      return j;
  return NULL;
}

/* The record of id, live or committed (a new reference, "_" kept). */
static int load_exec(athena *a, const char *id, json_t **out, err *e)
{
  if (id == NULL || *id == '\0' || strlen(id) > 128)
    return athena__invalid(e, "QueryExecutionId", "Member must have length between 1 and 128");
  pthread_mutex_lock(&a->mu);
  ajob *j = find_active(a, id);
  if (j != NULL) {
    *out = json_deep_copy(j->rec);
    if (!j->unrecorded)
      live_stats(j, *out, athena__now_ms());
  }
  pthread_mutex_unlock(&a->mu);
  if (j != NULL)
    return 0;
  int rc = athena__get(a, AS_EXECS, id, out, e);
  if (rc == ERR_NOT_FOUND)
    return err_set(e, ERR_NOT_FOUND, "QueryExecution %s was not found", id);
  const char *state = rc == 0 ? rec_state(*out) : NULL;
  if (state != NULL && (strcmp(state, "QUEUED") == 0 || strcmp(state, "RUNNING") == 0)) {
    /* another node's (6): its times as of now, its bytes as of its last watch */
    int64_t now = athena__now_ms();
    int64_t submit = json_integer_value(json_object_get(*out, "_submit_ms"));
    int64_t start = json_integer_value(json_object_get(*out, "_start_ms"));
    bool running = strcmp(state, "RUNNING") == 0 && start > 0;
    json_t *st = json_object_get(*out, "Statistics");
    if (submit > 0 && st != NULL) {
      json_object_set_new(st, "QueryQueueTimeInMillis",
                          json_integer((running ? start : now) - submit));
      json_object_set_new(st, "EngineExecutionTimeInMillis",
                          json_integer(running ? now - start : 0));
      json_object_set_new(st, "TotalExecutionTimeInMillis", json_integer(now - submit));
    }
  }
  return rc;
}

int athena_query_get(athena *a, const char *id, json_t **out, err *e)
{
  json_t *rec;
  int rc = load_exec(a, id, &rec, e);
  if (rc != 0)
    return rc;
  *out = public_copy(rec);
  json_decref(rec);
  return 0;
}

/* Stops a job of this node (StopQueryExecution here or, shared, on
 * another node): false when id is not one. */
static bool stop_local(athena *a, const char *id)
{
  pthread_mutex_lock(&a->mu);
  ajob *j = find_active(a, id);
  bool was_queued = false;
  if (j != NULL && !j->stop_asked) {
    j->stop_asked = true;
    if (j->running) {
      atomic_store(&j->cancel, true);
    } else {
      unqueue(a, j);
      was_queued = true;
    }
  }
  json_t *final = NULL;
  if (was_queued) {
    final = json_deep_copy(j->rec);
    int64_t now = athena__now_ms();
    live_stats(j, final, now);
    json_t *status = json_object_get(final, "Status");
    json_object_set_new(status, "State", json_string("CANCELLED"));
    json_object_set_new(status, "StateChangeReason",
                        json_string("Query cancelled by StopQueryExecution before it ran"));
    json_object_set_new(status, "CompletionDateTime", athena__time(now));
  }
  pthread_mutex_unlock(&a->mu);
  if (final != NULL)
    finish_job(a, j, final);
  return j != NULL;
}

int athena_query_stop(athena *a, const char *id, err *e)
{
  json_t *rec;
  int rc = load_exec(a, id, &rec, e); /* checks the id exists */
  if (rc != 0)
    return rc;
  const char *state = rec_state(rec);
  bool live = state != NULL && (strcmp(state, "QUEUED") == 0 || strcmp(state, "RUNNING") == 0);
  json_decref(rec);
  if (!stop_local(a, id) && live && a->side->stop_remote != NULL)
    rc = a->side->stop_remote(a, id, e); /* its node reads it within ATHENA_POLL_MS (6) */
  return rc;
}

/* Shared sides (6): every ATHENA_POLL_MS the side is asked what was
 * stopped elsewhere, and every renew_ms this node's executions' leases
 * (and running ones' records) go to it; what was stopped elsewhere, or is
 * no longer this node's, is cancelled here. */
static void *watch_main(void *arg)
{
  athena *a = arg;
  bool failing = false;
  int64_t renewed = 0;
  pthread_mutex_lock(&a->mu);
  while (!a->stopping) {
    int64_t now = athena__now_ms();
    bool local = false;
    json_t *recs = NULL;
    if (now - renewed >= a->renew_ms) { /* the records only then: queued ones stay */
      recs = json_object();
      renewed = now;
    }
    for (ajob *j = a->active; j != NULL; j = j->next) {
      if (j->acked <= 0 || j->unrecorded)
        continue;
      local = true;
      if (recs == NULL)
        break;
      json_t *rec = json_null();
      if (j->running) {
        rec = json_deep_copy(j->rec);
        live_stats(j, rec, now);
      }
      json_object_set_new(recs, j->id, rec);
    }
    pthread_mutex_unlock(&a->mu);
    json_t *cancel = NULL, *lost = NULL;
    err e = {0};
    bool ok = a->side->watch(a, local, recs, &cancel, &lost, &e) == 0;
    if (!ok && !failing) /* said once per outage */
      log_warn("athena: cannot renew the queries' leases or read their stops: %s", e.msg);
    else if (ok && failing)
      log_info("athena: the queries' leases are renewed again");
    failing = !ok;
    json_decref(recs);
    size_t i;
    json_t *v;
    json_array_foreach(cancel, i, v)
      stop_local(a, json_string_value(v));
    pthread_mutex_lock(&a->mu);
    json_array_foreach(lost, i, v) { /* failed by another node: ends, nothing written */
      ajob *j = find_active(a, json_string_value(v));
      if (j != NULL)
        atomic_store(&j->cancel, true);
    }
    json_decref(cancel);
    json_decref(lost);
    if (a->stopping)
      break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ATHENA_POLL_MS * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&a->wake, &a->mu, &ts);
  }
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

int athena_query_runtime(athena *a, const char *id, json_t **out, err *e)
{
  json_t *rec;
  int rc = load_exec(a, id, &rec, e);
  if (rc != 0)
    return rc;
  json_t *st = json_object_get(rec, "Statistics");
  json_t *timeline = json_object();
  const char *names[] = {"QueryQueueTimeInMillis", "ServicePreProcessingTimeInMillis",
                         "QueryPlanningTimeInMillis", "EngineExecutionTimeInMillis",
                         "ServiceProcessingTimeInMillis", "TotalExecutionTimeInMillis"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    json_object_set_new(timeline, names[i],
                        json_integer(json_integer_value(json_object_get(st, names[i]))));
  json_t *rows = json_pack("{s:I, s:I, s:I}", "InputBytes",
                           json_integer_value(json_object_get(st, "DataScannedInBytes")),
                           "OutputBytes", json_integer_value(json_object_get(rec, "_output_bytes")),
                           "OutputRows", json_integer_value(json_object_get(rec, "_rows")));
  *out = json_pack("{s:{s:o, s:o}}", "QueryRuntimeStatistics", "Timeline", timeline, "Rows", rows);
  json_decref(rec);
  return 0;
}

int athena_query_list(athena *a, json_t *in, json_t **out, err *e)
{
  const char *wgname, *token;
  int rc;
  if ((rc = check_len(in, "WorkGroup", 1, 128, false, &wgname, e)) != 0 ||
      (rc = check_len(in, "NextToken", 1, 1024, false, &token, e)) != 0)
    return rc;
  json_int_t max;
  if ((rc = athena__max_results(in, 0, ATHENA_MAX_LIST, &max, e)) != 0)
    return rc;
  if (wgname == NULL)
    wgname = "primary";
  json_t *wg;
  if ((rc = athena__workgroup_load(a, wgname, &wg, e)) != 0)
    return rc;
  json_decref(wg);
  json_t *ids;
  char next[17];
  if ((rc = a->side->list(a, wgname, token, max, &ids, next, e)) != 0)
    return rc;
  *out = json_pack("{s:o}", "QueryExecutionIds", ids);
  if (next[0] != '\0')
    json_object_set_new(*out, "NextToken", json_string(next));
  return 0;
}

/* NextToken of GetQueryResults: the id and the byte offset, base64. */
static json_t *page_token(const char *id, uint64_t offset)
{
  char plain[64], b64[128];
  int n = snprintf(plain, sizeof plain, "%s:%llu", id, (unsigned long long)offset);
  base64_encode((const uint8_t *)plain, (size_t)n, b64);
  return json_string(b64);
}

static int page_offset(const char *id, const char *token, uint64_t *offset, err *e)
{
  uint8_t plain[96];
  long n = base64_decode(token, strlen(token), plain, sizeof plain - 1);
  size_t idlen = strlen(id);
  if (n < 0 || (size_t)n <= idlen + 1 || memcmp(plain, id, idlen) != 0 || plain[idlen] != ':')
    return err_set(e, ERR_INVALID, "the NextToken does not belong to QueryExecution %s", id);
  plain[n] = '\0';
  char *end;
  errno = 0;
  unsigned long long x = strtoull((char *)plain + idlen + 1, &end, 10);
  if (errno != 0 || *end != '\0')
    return err_set(e, ERR_INVALID, "the NextToken is not valid");
  *offset = x;
  return 0;
}

int athena_query_results(athena *a, json_t *in, json_t **out, err *e)
{
  const char *id, *token;
  int rc;
  if ((rc = check_len(in, "QueryExecutionId", 1, 128, true, &id, e)) != 0 ||
      (rc = check_len(in, "NextToken", 1, 1024, false, &token, e)) != 0)
    return rc;
  json_int_t max;
  if ((rc = athena__max_results(in, 1, ATHENA_MAX_RESULTS, &max, e)) != 0)
    return rc;
  json_t *rec;
  if ((rc = load_exec(a, id, &rec, e)) != 0)
    return rc;
  const char *state = rec_state(rec);
  if (strcmp(state, "QUEUED") == 0 || strcmp(state, "RUNNING") == 0)
    rc = err_set(e, ERR_INVALID, "Query has not yet finished. Current state: %s", state);
  else if (strcmp(state, "SUCCEEDED") != 0)
    rc = err_set(e, ERR_INVALID, "Query did not finish successfully. Final query state: %s",
                 state);
  uint64_t offset = 0;
  if (rc == 0 && token != NULL)
    rc = page_offset(id, token, &offset, e);
  char *bucket = NULL, *key = NULL;
  const char *loc = object_str(rec, "ResultConfiguration", "OutputLocation");
  if (rc == 0 && (loc == NULL || parse_location(loc, &bucket, &key, e) != 0))
    rc = err_set(e, ERR_INTERNAL, "QueryExecution %s has no result location", id);
  if (rc == 0) {
    size_t klen = strlen(key);
    if (klen > 0 && key[klen - 1] == '/')
      key[klen - 1] = '\0'; /* parse_location added it */
  }
  json_t *rs = NULL;
  uint64_t next = 0;
  if (rc == 0)
    rc = athena__result_page(a->st, bucket, key, offset, (size_t)max, &rs, &next, e);
  free(bucket);
  free(key);
  json_decref(rec);
  if (rc != 0)
    return rc;
  *out = json_pack("{s:i, s:o}", "UpdateCount", 0, "ResultSet", rs);
  if (next != 0)
    json_object_set_new(*out, "NextToken", page_token(id, next));
  return 0;
}
