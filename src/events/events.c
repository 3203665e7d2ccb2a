/* events/events.c -- opening, starting, stopping and closing the events
 * part; its small LMDB environment; metrics; the lambda deliverer topics
 * use.
 *
 * Why an environment of its own (DATA/events/meta) rather than fn's or the
 * queue part's: mappings and invoke configs are this part's records, read
 * and written only here; borrowing another part's environment would tie
 * their files and their commit threads to ours. Bucket configurations are
 * the exception (they live in the store's index, store.h says why).
 *
 * States: open -> started (dispatcher, pollers, workers) -> stopping ->
 * stopped -> closed. Stop is idempotent; close stops first.
 *
 * With --metadata (o->metadata, base/pg.h) the same records live in the
 * PostgreSQL table tarn_events_meta instead, shared by every node: the three
 * events__meta_* functions below are the only place that knows which; a
 * write is one autocommitted statement, acknowledged once PostgreSQL
 * committed it. Mappings read from there are reconciled (mapping.c).
 *
 * Invariants:
 *   (1) Meta writes are one synced LMDB transaction each, under meta_mu
 *       (or one committed PostgreSQL statement each).
 *   (2) The dispatcher, pollers and workers are stopped before the queue
 *       and function systems are, so nothing of ours calls into them after.
 *
 * Start reading at events_system_start().
 */
#include "events/internal.h"

#include "base/lmdb_env.h"
#include "base/mem.h"
#include "base/pg.h"

#include <libpq-fe.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define META_MAP_SIZE (1ull << 30)

/* ---- the meta records in PostgreSQL (--metadata) ---- */

#define PG_SCHEMA                                                                  \
  "CREATE TABLE IF NOT EXISTS tarn_events_meta (key text COLLATE \"C\" PRIMARY KEY, " \
  "value text NOT NULL)"

static int pg_meta_write(events_system *ev, const char *key, const char *value, err *e)
{
  const char *params[2] = { key, value };
  if (value == NULL)
    return pg_pool_exec(ev->pg, "DELETE FROM tarn_events_meta WHERE key = $1", 1, params, NULL,
                        NULL, NULL, "delete an events record", e);
  return pg_pool_exec(ev->pg, "INSERT INTO tarn_events_meta (key, value) VALUES ($1, $2) "
                              "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                      2, params, NULL, NULL, NULL, "write an events record", e);
}

static int pg_meta_get(events_system *ev, const char *key, arena *a, const char **value, err *e)
{
  const char *params[1] = { key };
  PGresult *r = NULL;
  int rc = pg_pool_exec(ev->pg, "SELECT value FROM tarn_events_meta WHERE key = $1", 1, params,
                        NULL, NULL, &r, "read an events record", e);
  if (rc != 0)
    return rc;
  if (PQntuples(r) > 0)
    *value = arena_strdup(a, PQgetvalue(r, 0, 0));
  PQclear(r);
  return 0;
}

static int pg_meta_scan(events_system *ev, const char *prefix, arena *a, str_pair **out,
                        size_t *n, err *e)
{
  const char *params[1] = { prefix };
  PGresult *r = NULL;
  int rc = pg_pool_exec(ev->pg, "SELECT key, value FROM tarn_events_meta WHERE key >= $1 AND "
                                "left(key, length($1)) = $1 ORDER BY key",
                        1, params, NULL, NULL, &r, "read the events records", e);
  if (rc != 0)
    return rc;
  size_t count = (size_t)PQntuples(r);
  str_pair *list = arena_alloc(a, (count + 1) * sizeof *list);
  for (size_t i = 0; i < count; i++) {
    list[i].name = arena_strdup(a, PQgetvalue(r, (int)i, 0));
    list[i].value = arena_strdup(a, PQgetvalue(r, (int)i, 1));
  }
  PQclear(r);
  *out = list;
  *n = count;
  return 0;
}

/* ---- the meta environment ---- */

int events__meta_write(events_system *ev, const char *key, const char *value, err *e)
{
  if (ev->pg != NULL)
    return pg_meta_write(ev, key, value, e);
  MDB_val k = { strlen(key), (void *)key };
  pthread_mutex_lock(&ev->meta_mu);
  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(ev->env, NULL, 0, &txn);
  if (mrc == 0) {
    if (value != NULL) {
      MDB_val v = { strlen(value), (void *)value };
      mrc = mdb_put(txn, ev->db, &k, &v, 0);
    } else {
      mrc = mdb_del(txn, ev->db, &k, NULL);
      if (mrc == MDB_NOTFOUND)
        mrc = 0;
    }
    if (mrc == 0)
      mrc = mdb_txn_commit(txn);
    else
      mdb_txn_abort(txn);
  }
  pthread_mutex_unlock(&ev->meta_mu);
  return mrc ? lmdb_error(e, mrc, "write the events metadata") : 0;
}

int events__meta_get(events_system *ev, const char *key, arena *a, const char **value, err *e)
{
  *value = NULL;
  if (ev->pg != NULL)
    return pg_meta_get(ev, key, a, value, e);
  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(ev->env, NULL, MDB_RDONLY, &txn);
  if (mrc != 0)
    return lmdb_error(e, mrc, "read the events metadata");
  MDB_val k = { strlen(key), (void *)key };
  MDB_val v;
  mrc = mdb_get(txn, ev->db, &k, &v);
  if (mrc == 0)
    *value = arena_strndup(a, v.mv_data, v.mv_size);
  mdb_txn_abort(txn);
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    return lmdb_error(e, mrc, "read the events metadata");
  return 0;
}

int events__meta_scan(events_system *ev, const char *prefix, arena *a, str_pair **out,
                      size_t *n, err *e)
{
  *out = NULL;
  *n = 0;
  if (ev->pg != NULL)
    return pg_meta_scan(ev, prefix, a, out, n, e);
  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(ev->env, NULL, MDB_RDONLY, &txn);
  if (mrc != 0)
    return lmdb_error(e, mrc, "read the events metadata");
  MDB_cursor *cur = NULL;
  mrc = mdb_cursor_open(txn, ev->db, &cur);
  if (mrc != 0) {
    mdb_txn_abort(txn);
    return lmdb_error(e, mrc, "read the events metadata");
  }
  size_t pl = strlen(prefix);
  size_t cap = 16;
  size_t count = 0;
  str_pair *list = arena_alloc(a, cap * sizeof *list);
  MDB_val k = { pl, (void *)prefix };
  MDB_val v;
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0)
      break;
    if (count == cap) {
      str_pair *bigger = arena_alloc(a, 2 * cap * sizeof *bigger);
      memcpy(bigger, list, cap * sizeof *list);
      list = bigger;
      cap *= 2;
    }
    list[count].name = arena_strndup(a, k.mv_data, k.mv_size);
    list[count].value = arena_strndup(a, v.mv_data, v.mv_size);
    count++;
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    return lmdb_error(e, mrc, "read the events metadata");
  *out = list;
  *n = count;
  return 0;
}

int64_t events__retry_delay(const events_system *ev, unsigned attempt)
{
  int64_t d = ev->retry_base_ms;
  for (unsigned i = 1; i < attempt && d < EVENTS_RETRY_MAX_MS; i++)
    d *= 2;
  return d < EVENTS_RETRY_MAX_MS ? d : EVENTS_RETRY_MAX_MS;
}

/* ---- lifecycle ---- */

static int make_dir(const char *path, err *e)
{
  if (mkdir(path, 0700) == 0 || errno == EEXIST)
    return 0;
  int saved = errno;
  return err_set(e, err_from_errno(saved), "cannot create directory '%s': %s", path,
                 strerror(saved));
}

static int open_meta(events_system *ev, err *e)
{
  char path[EVENTS_DIR_MAX + 32];
  snprintf(path, sizeof path, "%s/meta", ev->dir);
  int rc = make_dir(ev->dir, e);
  if (rc != 0)
    return rc;
  lmdb_env_options o = { .map_size = META_MAP_SIZE, .max_dbs = 4 };
  rc = lmdb_env_open(&ev->env, path, &o, "the event log", e);
  if (rc != 0)
    return rc;
  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(ev->env, NULL, 0, &txn);
  if (mrc == 0)
    mrc = mdb_dbi_open(txn, "events", MDB_CREATE, &ev->db);
  if (mrc == 0)
    mrc = mdb_txn_commit(txn);
  else if (txn != NULL)
    mdb_txn_abort(txn);
  return mrc ? lmdb_error(e, mrc, "open the events tables") : 0;
}

/* fn's hooks (fn.h "asynchronous outcomes"): limits and outcomes. */
static void hook_policy(void *ctx, const char *function, const char *qualifier,
                        fn_async_policy *out)
{
  events__async_policy(ctx, function, qualifier, &out->max_retries, &out->max_age_s);
}

static void hook_outcome(void *ctx, const fn_async_outcome *o)
{
  events_outcome x = {
    .function_arn = o->function_arn,
    .request_id = o->request_id,
    .condition = o->condition,
    .attempts = o->attempts,
    .status = 200,
    .executed_version = o->executed_version,
    .function_error = o->function_error,
    .payload = o->payload,
    .payload_len = o->len,
    .response = o->response,
    .response_len = o->response_len,
    .time_ms = o->time_ms,
  };
  events__async_outcome(ctx, o->function, o->qualifier, &x);
}

int events_system_open(const events_options *o, events_system **out, err *e)
{
  *out = NULL;
  if (o->data_dir == NULL || strlen(o->data_dir) > EVENTS_DIR_MAX || o->st == NULL)
    return err_set(e, ERR_INVALID, "events: no usable data directory or store");
  events_system *ev = xcalloc(1, sizeof *ev);
  ev->dir = xasprintf("%s/events", o->data_dir);
  ev->st = o->st;
  ev->q = o->q;
  ev->fn = o->fn;
  ev->streams = o->streams;
  ev->kv = o->kv;
  ev->pg = o->metadata;
  ev->retry_base_ms = o->retry_base_ms;
  if (ev->retry_base_ms == 0) {
    const char *v = getenv("TARN_EVENT_RETRY_BASE_MS");
    ev->retry_base_ms = v != NULL ? (uint32_t)strtoul(v, NULL, 10) : 0;
  }
  if (ev->retry_base_ms == 0)
    ev->retry_base_ms = 1000;
  ev->nworkers = o->workers != 0 ? o->workers : 16;
  pthread_mutex_init(&ev->meta_mu, NULL);
  pthread_mutex_init(&ev->mu, NULL);
  pthread_mutex_init(&ev->map_mu, NULL);
  pthread_mutex_init(&ev->wmu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ev->wake, &ca);
  pthread_cond_init(&ev->map_cond, &ca);
  pthread_cond_init(&ev->stream_cond, &ca);
  pthread_cond_init(&ev->sync_cond, &ca);
  pthread_mutex_init(&ev->sync_mu, NULL);
  pthread_cond_init(&ev->map_idle, &ca);
  pthread_cond_init(&ev->wcond, &ca);
  pthread_condattr_destroy(&ca);
  int rc = ev->pg != NULL ? pg_pool_schema(ev->pg, "tarn_events", PG_SCHEMA, e)
                          : open_meta(ev, e);
  if (rc == 0)
    rc = events__mappings_load(ev, e);
  if (rc != 0) {
    events_system_close(ev);
    return rc;
  }
  if (ev->fn != NULL) {
    /* before fn_system_start: Events left by a previous run are covered */
    fn_async_hooks h = { hook_policy, hook_outcome, ev };
    fn_async_hooks_set(ev->fn, &h);
  }
  *out = ev;
  return 0;
}

/* Topics' `lambda` subscriptions: an asynchronous invocation. */
static int deliver_lambda(void *ctx, const char *function_arn, const char *event, size_t len,
                          err *e)
{
  events_system *ev = ctx;
  if (ev->fn == NULL)
    return err_set(e, ERR_UNAVAILABLE, "functions are not running");
  arena *a = arena_new();
  fn_invoke_params p = { .name = function_arn, .type = FN_INVOKE_EVENT, .payload = event,
                         .len = len };
  fn_invoke_result res;
  int rc = fn_invoke(ev->fn, &p, a, &res, e);
  if (rc == 0)
    buf_release(&res.payload);
  arena_free(a);
  return rc;
}

int events_system_start(events_system *ev, err *e)
{
  pthread_mutex_lock(&ev->mu);
  bool again = ev->started;
  ev->started = true;
  pthread_mutex_unlock(&ev->mu);
  if (again)
    return 0;
  if (ev->q != NULL && ev->fn != NULL)
    queue_set_lambda_deliverer(ev->q, deliver_lambda, ev);
  int rc = events__dispatcher_start(ev, e);
  if (rc == 0)
    rc = events__mappings_start(ev, e);
  return rc;
}

void events_system_stop(events_system *ev)
{
  if (ev == NULL)
    return;
  if (ev->q != NULL && ev->fn != NULL && ev->started)
    queue_set_lambda_deliverer(ev->q, NULL, NULL);  /* they wait in the outbox */
  events__dispatcher_stop(ev);
  events__mappings_stop(ev);
  events__watch_stop(ev);
}

events_system *events_system_close(events_system *ev)
{
  if (ev == NULL)
    return NULL;
  events_system_stop(ev);
  if (ev->fn != NULL)
    fn_async_hooks_set(ev->fn, NULL);
  events__mappings_free(ev);
  events__watch_free(ev);
  if (ev->env != NULL)
    mdb_env_close(ev->env);
  pthread_mutex_destroy(&ev->meta_mu);
  pthread_mutex_destroy(&ev->mu);
  pthread_mutex_destroy(&ev->map_mu);
  pthread_mutex_destroy(&ev->wmu);
  pthread_cond_destroy(&ev->wake);
  pthread_cond_destroy(&ev->map_cond);
  pthread_cond_destroy(&ev->stream_cond);
  pthread_cond_destroy(&ev->sync_cond);
  pthread_mutex_destroy(&ev->sync_mu);
  pthread_cond_destroy(&ev->map_idle);
  pthread_cond_destroy(&ev->wcond);
  free(ev->dir);
  free(ev);
  return NULL;
}

void events_metrics(events_system *ev, buf *out)
{
  pthread_mutex_lock(&ev->mu);
  unsigned long long delivered = ev->delivered;
  unsigned long long dropped = ev->dropped;
  unsigned long long retried = ev->retried;
  pthread_mutex_unlock(&ev->mu);
  pthread_mutex_lock(&ev->map_mu);
  unsigned long long batches = ev->batches;
  unsigned long long failures = ev->batch_failures;
  unsigned long long deleted = ev->messages_deleted;
  unsigned long long slots = ev->nslots;
  pthread_mutex_unlock(&ev->map_mu);
  buf_printf(out,
             "# HELP tarn_events_delivered_total Event deliveries accepted by their target.\n"
             "# TYPE tarn_events_delivered_total counter\ntarn_events_delivered_total %llu\n"
             "# HELP tarn_events_dropped_total Event deliveries given up: no such target.\n"
             "# TYPE tarn_events_dropped_total counter\ntarn_events_dropped_total %llu\n"
             "# HELP tarn_events_retries_total Event deliveries that failed and were retried.\n"
             "# TYPE tarn_events_retries_total counter\ntarn_events_retries_total %llu\n"
             "# HELP tarn_events_pending Changes in the feed not yet delivered.\n"
             "# TYPE tarn_events_pending gauge\ntarn_events_pending %llu\n"
             "# HELP tarn_events_batches_total Event source mapping batches invoked.\n"
             "# TYPE tarn_events_batches_total counter\ntarn_events_batches_total %llu\n"
             "# HELP tarn_events_batch_failures_total Batches that failed.\n"
             "# TYPE tarn_events_batch_failures_total counter\n"
             "tarn_events_batch_failures_total %llu\n"
             "# HELP tarn_events_messages_deleted_total Messages deleted after their batch.\n"
             "# TYPE tarn_events_messages_deleted_total counter\n"
             "tarn_events_messages_deleted_total %llu\n"
             "# HELP tarn_events_pollers Event source mapping pollers alive.\n"
             "# TYPE tarn_events_pollers gauge\ntarn_events_pollers %llu\n",
             delivered, dropped, retried, (unsigned long long)store_feed_backlog(ev->st),
             batches, failures, deleted, slots);
}
