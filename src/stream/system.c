/* stream/system.c -- the stream part's life cycle: the LMDB environment
 * under DATA/stream/, its group committer, and the delivery thread.
 *
 * Why one committer: every put (Kinesis or Firehose) is acknowledged only
 * once committed, and concurrent puts share one commit and one sync, as
 * the queues' sends do (queue/commit.c).
 *
 * Invariants:
 *   (1) Every write goes through stream__commit (one writer thread).
 *   (2) The delivery thread is started after the tables are open and the
 *       delivery streams loaded, and stopped before the committer.
 *
 * Start reading at stream_system_open().
 */
#include "internal.h"

#include "base/mem.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAP_SIZE (64ull << 30) /* sparse: only pages in use take space */
#define MAX_READERS 1024

void stream__be64(uint8_t *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

uint64_t stream__rd64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

static int apply_change(void *ctx, lmdb_change *base, MDB_txn *txn, arena *a, err *e)
{
  schange *c = (schange *)base;
  return c->apply(ctx, c, txn, a, e);
}

int stream__commit(stream_system *s, schange_fn apply, void *arg, err *e)
{
  schange c;
  memset(&c, 0, sizeof c);
  c.base.apply = apply_change;
  c.apply = apply;
  c.arg = arg;
  return lmdb_committer_run(&s->committer, &c.base, e);
}

int stream__counter_next(stream_system *s, MDB_txn *txn, const char *name, uint64_t *out,
                         err *e)
{
  uint64_t v = stream__counter_get(s, txn, name) + 1;
  int rc = stream__counter_set(s, txn, name, v, e);
  if (rc == 0)
    *out = v;
  return rc;
}

bool stream__name_valid(const char *n, size_t max)
{
  size_t len = strlen(n);
  if (len == 0 || len > max)
    return false;
  for (const char *p = n; *p; p++)
    if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
        *p != '_' && *p != '.' && *p != '-')
      return false;
  return true;
}

uint64_t stream__counter_get(stream_system *s, MDB_txn *txn, const char *name)
{
  MDB_val k = {strlen(name), (void *)name};
  MDB_val d;
  if (mdb_get(txn, s->db_meta, &k, &d) == 0 && d.mv_size == 8)
    return stream__rd64(d.mv_data);
  return 0;
}

int stream__counter_set(stream_system *s, MDB_txn *txn, const char *name, uint64_t v, err *e)
{
  uint8_t b[8];
  stream__be64(b, v);
  MDB_val k = {strlen(name), (void *)name};
  MDB_val d = {8, b};
  int mrc = mdb_put(txn, s->db_meta, &k, &d, 0);
  return mrc != 0 ? lmdb_error(e, mrc, "update a counter") : 0;
}

int stream__json_get(MDB_txn *txn, MDB_dbi dbi, const char *name, json_t **out, err *e)
{
  *out = NULL;
  MDB_val k = {strlen(name), (void *)name};
  MDB_val d;
  int mrc = mdb_get(txn, dbi, &k, &d);
  if (mrc == MDB_NOTFOUND)
    return 1;
  if (mrc != 0)
    return lmdb_error(e, mrc, "read a stream");
  *out = json_loadb(d.mv_data, d.mv_size, 0, NULL);
  return *out != NULL ? 0 : err_set(e, ERR_INTERNAL, "stream '%s' has a damaged record", name);
}

int stream__json_put(MDB_txn *txn, MDB_dbi dbi, const char *name, json_t *rec, err *e)
{
  char *text = json_dumps(rec, JSON_COMPACT);
  MDB_val k = {strlen(name), (void *)name};
  MDB_val d = {strlen(text), text};
  int mrc = mdb_put(txn, dbi, &k, &d, 0);
  free(text);
  return mrc != 0 ? lmdb_error(e, mrc, "write a stream") : 0;
}

int stream__not_found(err *e, const char *kind, const char *name)
{
  return err_set(e, STREAM_ERR_NOT_FOUND, "%s %s under account 000000000000 not found.", kind,
                 name);
}

int stream__json_load(MDB_txn *txn, MDB_dbi dbi, const char *kind, const char *name,
                      json_t **out, err *e)
{
  int rc = stream__json_get(txn, dbi, name, out, e);
  return rc == 1 ? stream__not_found(e, kind, name) : rc;
}

int stream__json_edit(stream_system *s, MDB_txn *txn, MDB_dbi dbi, const char *kind,
                      const char *name, stream_edit_fn edit, void *arg, err *e)
{
  json_t *rec;
  int rc = stream__json_load(txn, dbi, kind, name, &rec, e);
  if (rc != 0)
    return rc;
  if ((rc = edit(s, txn, rec, arg, e)) == 0)
    rc = stream__json_put(txn, dbi, name, rec, e);
  json_decref(rec);
  return rc;
}

int stream__drop(MDB_txn *txn, MDB_dbi names, MDB_dbi records, const char *name, err *e)
{
  json_t *rec;
  int rc = stream__json_get(txn, names, name, &rec, e);
  if (rc != 0)
    return rc;
  uint8_t prefix[8];
  stream__be64(prefix, (uint64_t)json_integer_value(json_object_get(rec, "id")));
  json_decref(rec);
  MDB_val k = {strlen(name), (void *)name};
  int mrc = mdb_del(txn, names, &k, NULL);
  if (mrc != 0)
    return lmdb_error(e, mrc, "delete a stream");
  return stream__range_delete(txn, records, prefix, 8, UINT64_MAX, NULL, e);
}

int stream__scan(stream_system *s, MDB_dbi dbi, const char *start, size_t max,
                 void (*fn)(void *ctx, const char *name, json_t *rec), void *ctx, bool *more,
                 err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  int mrc = mdb_cursor_open(txn, dbi, &cur);
  if (mrc != 0) {
    mdb_txn_abort(txn);
    return lmdb_error(e, mrc, "open a cursor");
  }
  MDB_val k = {start != NULL ? strlen(start) : 0, (void *)start};
  MDB_val d;
  mrc = mdb_cursor_get(cur, &k, &d, start != NULL ? MDB_SET_RANGE : MDB_FIRST);
  if (mrc == 0 && start != NULL && k.mv_size == strlen(start) &&
      memcmp(k.mv_data, start, k.mv_size) == 0)
    mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
  *more = false;
  for (size_t n = 0; mrc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
    if (n == max) {
      *more = true;
      break;
    }
    char name[STREAM_MAX_NAME + 1];
    size_t len = k.mv_size < sizeof name - 1 ? k.mv_size : sizeof name - 1;
    memcpy(name, k.mv_data, len);
    name[len] = '\0';
    json_t *rec = json_loadb(d.mv_data, d.mv_size, 0, NULL);
    if (rec != NULL) {
      fn(ctx, name, rec);
      json_decref(rec);
      n++;
    }
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return 0;
}

int stream__range_delete(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t plen,
                         uint64_t upto, int64_t *next_ts, err *e)
{
  MDB_cursor *cur;
  int mrc = mdb_cursor_open(txn, dbi, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  if (next_ts != NULL)
    *next_ts = 0;
  MDB_val k = {plen, (void *)prefix};
  MDB_val v;
  mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (mrc == 0 && k.mv_size >= plen + 8 && memcmp(k.mv_data, prefix, plen) == 0) {
    if (stream__rd64((const uint8_t *)k.mv_data + k.mv_size - 8) > upto) {
      if (next_ts != NULL && v.mv_size >= 8)
        *next_ts = (int64_t)stream__rd64(v.mv_data);
      break;
    }
    if ((mrc = mdb_cursor_del(cur, 0)) != 0)
      break;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
  }
  mdb_cursor_close(cur);
  if (mrc != 0 && mrc != MDB_NOTFOUND && mrc != EINVAL)
    return lmdb_error(e, mrc, "delete records");
  return 0;
}

int stream_system_open(const stream_options *o, stream_system **out, err *e)
{
  *out = NULL;
  stream_system *s = xcalloc(1, sizeof *s);
  s->st = o->st;
  s->fn = o->fn;
  s->schema_lookup = o->schema_lookup;
  s->schema_ctx = o->schema_ctx;
  s->authorize = o->authorize;
  s->authorize_ctx = o->authorize_ctx;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->wake, NULL);
  pthread_cond_init(&s->drained, NULL);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/stream", o->data_dir);
  lmdb_env_options eo = {.map_size = MAP_SIZE, .max_dbs = 8, .max_readers = MAX_READERS};
  int rc = lmdb_env_open(&s->env, path, &eo, "the stream database", e);
  if (rc != 0)
    goto fail;
  MDB_txn *txn;
  int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
  struct {
    const char *name;
    MDB_dbi *dbi;
  } dbs[] = {{"meta", &s->db_meta}, {"kstreams", &s->db_kstreams},
             {"krecords", &s->db_krecords}, {"dstreams", &s->db_dstreams},
             {"dbuf", &s->db_dbuf}};
  for (size_t i = 0; mrc == 0 && i < sizeof dbs / sizeof dbs[0]; i++)
    mrc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
  if (mrc == 0)
    mrc = mdb_txn_commit(txn);
  else
    mdb_txn_abort(txn);
  if (mrc != 0) {
    rc = lmdb_error(e, mrc, "open the stream tables");
    goto fail;
  }
  lmdb_committer_hooks hooks = {.ctx = s};
  if ((rc = lmdb_committer_start(&s->committer, s->env, &hooks, "the stream service", e)) != 0)
    goto fail;
  if ((rc = stream__dstreams_load(s, e)) != 0)
    goto fail;
  *out = s;
  return 0;
fail:
  stream_system_close(s);
  return rc;
}

int stream_system_start(stream_system *s, err *e)
{
  pthread_mutex_lock(&s->mu);
  bool again = s->running;
  s->running = true;
  pthread_mutex_unlock(&s->mu);
  if (again)
    return 0;
  if (pthread_create(&s->thread, NULL, stream__deliver_main, s) != 0) {
    s->running = false;
    return err_set(e, ERR_INTERNAL, "cannot start the delivery thread");
  }
  return 0;
}

void stream_system_stop(stream_system *s)
{
  if (s == NULL)
    return;
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  bool join = s->running;
  s->running = false;
  pthread_cond_broadcast(&s->wake);
  pthread_cond_broadcast(&s->drained);
  pthread_mutex_unlock(&s->mu);
  if (join)
    pthread_join(s->thread, NULL);
}

void stream_metrics(stream_system *s, buf *out)
{
  pthread_mutex_lock(&s->mu);
  unsigned long long kin = s->kinesis_records, fh = s->firehose_records, obj = s->objects;
  unsigned long long failed = s->delivery_failures, buffered = 0;
  for (dstream *d = s->dstreams; d != NULL; d = d->next)
    buffered += d->bytes > 0 ? (unsigned long long)d->bytes : 0;
  pthread_mutex_unlock(&s->mu);
  buf_printf(out,
             "# HELP tarn_kinesis_records_total Kinesis records put (acknowledged).\n"
             "# TYPE tarn_kinesis_records_total counter\ntarn_kinesis_records_total %llu\n"
             "# HELP tarn_firehose_records_total Firehose records buffered (acknowledged).\n"
             "# TYPE tarn_firehose_records_total counter\ntarn_firehose_records_total %llu\n"
             "# HELP tarn_firehose_objects_total Objects Firehose delivered.\n"
             "# TYPE tarn_firehose_objects_total counter\ntarn_firehose_objects_total %llu\n"
             "# HELP tarn_firehose_delivery_failures_total Deliveries that failed (retried).\n"
             "# TYPE tarn_firehose_delivery_failures_total counter\n"
             "tarn_firehose_delivery_failures_total %llu\n"
             "# HELP tarn_firehose_buffered_bytes Bytes waiting in Firehose buffers.\n"
             "# TYPE tarn_firehose_buffered_bytes gauge\ntarn_firehose_buffered_bytes %llu\n",
             kin, fh, obj, failed, buffered);
}

stream_system *stream_system_close(stream_system *s)
{
  if (s == NULL)
    return NULL;
  stream_system_stop(s);
  lmdb_committer_stop(&s->committer);
  stream__dstreams_free(s);
  if (s->env != NULL)
    mdb_env_close(s->env);
  pthread_cond_destroy(&s->wake);
  pthread_cond_destroy(&s->drained);
  pthread_mutex_destroy(&s->mu);
  free(s);
  return NULL;
}
