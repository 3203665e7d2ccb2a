/* kv/ttl.c -- time to live: a sweeper thread deletes the items whose TTL
 * attribute (a Number, seconds since the epoch) has passed.
 *
 * Why a sweeper: DynamoDB deletes expired items in the background, as the
 * service (stream records carry userIdentity type "Service"), not at read
 * time: an expired item stays readable until the sweeper removes it.
 *
 * Invariants:
 *   (1) A deletion goes through kv__item_write in a committer closure that
 *       re-reads the item and re-checks its expiry, so an item rewritten
 *       after the scan (with a later TTL) is never deleted.
 *   (2) Items whose TTL lies more than five years in the past are left
 *       alone, as DynamoDB does; so are non-Number TTL attributes.
 *   (3) One round deletes at most TTL_BATCH items per table.
 *   (4) The same thread trims stream records older than 24 hours (DynamoDB
 *       Streams' retention), oldest first, at most TTL_BATCH a round, and
 *       writes only when there is something to trim.
 *   (5) A round reads at most TTL_SCAN entries of a table and the next
 *       round goes on from there, so a large table costs a bounded read a
 *       second, and every item is looked at again within its table's
 *       size / TTL_SCAN seconds.
 *
 * Start reading at sweeper_main().
 */
#include "internal.h"

#include "base/mem.h"
#include "base/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TTL_INTERVAL_MS 1000
#define TTL_BATCH 500
#define TTL_SCAN 20000
#define FIVE_YEARS_S (5LL * 365 * 24 * 3600)
#define KV_STREAM_RETENTION_S (24LL * 3600)

/* Whether item has expired at now (seconds) under attribute attr. */
static bool expired(const json_t *item, const char *attr, int64_t now)
{
  const char *n = json_string_value(json_object_get(json_object_get(item, attr), "N"));
  if (n == NULL)
    return false;
  kv_num v, t;
  err e = {0};
  if (kv__num_parse(n, &v, &e) != 0)
    return false;
  char text[32];
  snprintf(text, sizeof text, "%lld", (long long)now);
  kv__num_parse(text, &t, &e);
  if (kv__num_cmp(&v, &t) >= 0)
    return false;
  snprintf(text, sizeof text, "%lld", (long long)(now - FIVE_YEARS_S));
  kv__num_parse(text, &t, &e);
  return kv__num_cmp(&v, &t) >= 0;
}

typedef struct sweep {
  const char *table;
  const char *attr;
  json_t *keys;   /* array of keys to delete */
  int64_t now;
} sweep;

static int sweep_apply(kv *k, void *arg, MDB_txn *txn, arena *a, err *e)
{
  sweep *s = arg;
  kv_table t;
  int rc = kv__table_open(k, txn, s->table, &t, e);
  if (rc != 0)
    return rc;
  size_t i;
  json_t *key;
  json_array_foreach(s->keys, i, key) {
    json_t *old = NULL;
    rc = kv__item_read(k, txn, &t, key, &old, e);
    if (rc == 0 && old != NULL && expired(old, s->attr, s->now)) /* (1) */
      rc = kv__item_write(k, txn, &t, old, NULL, true, e);
    json_decref(old);
    if (rc != 0)
      break;
  }
  kv__table_release(&t);
  return rc;
}

static void sweep_round(kv *k)
{
  int64_t now = time_now_ms() / 1000;
  MDB_txn *txn;
  err e = {0};
  if (lmdb_read_begin(k->env, &txn, &e) != 0)
    return;
  json_t *work = json_array(); /* [{table, attr, keys}] */
  MDB_cursor *cur;
  mdb_cursor_open(txn, k->tables, &cur);
  MDB_val key, val;
  for (int mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
    json_t *d = json_loadb(val.mv_data, val.mv_size, 0, NULL);
    json_t *ttl = json_object_get(d, "TarnTtl");
    if (json_is_true(json_object_get(ttl, "Enabled"))) {
      kv_table t;
      kv__table_from_desc(d, &t, &e);
      const char *attr = kv__in_str(ttl, "AttributeName");
      json_t *keys = json_array();
      buf pre;
      buf_init(&pre, 16);
      kv__prefix(&t, 0, &pre);
      MDB_cursor *ic;
      mdb_cursor_open(txn, k->items, &ic);
      /* (5): resume where the last round stopped in this table */
      json_t *resume = json_object_get(k->ttl_resume, t.name);
      MDB_val ik = {pre.len, pre.data}, iv;
      if (resume != NULL)
        ik = (MDB_val){json_string_length(resume), (void *)json_string_value(resume)};
      int r = mdb_cursor_get(ic, &ik, &iv, MDB_SET_RANGE);
      size_t scanned = 0;
      while (r == 0 && ik.mv_size >= 5 && memcmp(ik.mv_data, pre.data, 5) == 0 &&
             json_array_size(keys) < TTL_BATCH && scanned++ < TTL_SCAN) {
        json_t *item = kv__item_decode(iv.mv_data, iv.mv_size);
        if (item != NULL && expired(item, attr, now))
          json_array_append_new(keys, kv__item_key(&t, NULL, item));
        json_decref(item);
        r = mdb_cursor_get(ic, &ik, &iv, MDB_NEXT);
      }
      bool more = r == 0 && ik.mv_size >= 5 && memcmp(ik.mv_data, pre.data, 5) == 0;
      if (more)
        json_object_set_new(k->ttl_resume, t.name, json_stringn(ik.mv_data, ik.mv_size));
      else
        json_object_del(k->ttl_resume, t.name);
      mdb_cursor_close(ic);
      buf_release(&pre);
      if (json_array_size(keys) > 0)
        json_array_append_new(work, json_pack("{sOssso}", "table", json_object_get(d, "TableName"),
                                              "attr", attr, "keys", keys));
      else
        json_decref(keys);
      kv__table_release(&t);
    }
    json_decref(d);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  size_t i;
  json_t *w;
  json_array_foreach(work, i, w) {
    sweep s = {kv__in_str(w, "table"), kv__in_str(w, "attr"), json_object_get(w, "keys"), now};
    err we = {0};
    kv__write(k, sweep_apply, &s, &we); /* a table deleted meanwhile: nothing to do */
  }
  json_decref(work);
}

/* (4): records are in sequence order, so their times only grow. Deletes
 * (or, with del false, counts) the records older than horizon. */
static size_t trim(kv *k, MDB_txn *txn, int64_t horizon, bool del, err *e)
{
  MDB_cursor *cur;
  int mrc = mdb_cursor_open(txn, k->streams, &cur);
  if (mrc != 0) {
    lmdb_error(e, mrc, "trim the streams");
    return 0;
  }
  MDB_val key, val;
  size_t n = 0;
  mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
  uint8_t skip_table[4] = {0};
  bool skipping = false;
  while (mrc == 0 && n < TTL_BATCH) {
    if (skipping && key.mv_size >= 4 && memcmp(key.mv_data, skip_table, 4) == 0) {
      mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
      continue;
    }
    skipping = false;
    json_t *r = json_loadb(val.mv_data, val.mv_size, 0, NULL);
    json_int_t when = json_integer_value(json_object_get(json_object_get(r, "dynamodb"),
                                                         "ApproximateCreationDateTime"));
    json_decref(r);
    if (when < horizon) {
      if (del) {
        mrc = mdb_cursor_del(cur, 0);
        if (mrc == 0)
          mrc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT);
      } else {
        mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
      }
      n++;
    } else {
      /* this table's later records are newer: go on with the next table */
      memcpy(skip_table, key.mv_data, 4);
      skipping = true;
      mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
  }
  mdb_cursor_close(cur);
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    lmdb_error(e, mrc, "trim the streams");
  return n;
}

static int trim_apply(kv *k, void *arg, MDB_txn *txn, arena *a, err *e)
{
  trim(k, txn, *(int64_t *)arg, true, e);
  return e->code;
}

static void trim_round(kv *k)
{
  int64_t horizon = time_now_ms() / 1000 - KV_STREAM_RETENTION_S;
  MDB_txn *txn;
  err e = {0};
  if (lmdb_read_begin(k->env, &txn, &e) != 0)
    return;
  size_t old = trim(k, txn, horizon, false, &e);
  mdb_txn_abort(txn);
  if (old > 0)
    kv__write(k, trim_apply, &horizon, &e); /* a failure waits for the next round */
}

static void *sweeper_main(void *arg)
{
  kv *k = arg;
  pthread_mutex_lock(&k->ttl_mu);
  while (!k->ttl_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)(TTL_INTERVAL_MS % 1000) * 1000000L;
    ts.tv_sec += TTL_INTERVAL_MS / 1000 + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&k->ttl_cv, &k->ttl_mu, &ts);
    if (k->ttl_stop)
      break;
    pthread_mutex_unlock(&k->ttl_mu);
    sweep_round(k);
    trim_round(k);
    pthread_mutex_lock(&k->ttl_mu);
  }
  pthread_mutex_unlock(&k->ttl_mu);
  return NULL;
}

int kv__ttl_start(kv *k, err *e)
{
  pthread_mutex_init(&k->ttl_mu, NULL);
  pthread_cond_init(&k->ttl_cv, NULL);
  k->ttl_resume = json_object();
  int rc = pthread_create(&k->ttl_thread, NULL, sweeper_main, k);
  if (rc != 0)
    return err_set(e, ERR_INTERNAL, "cannot start the time-to-live sweeper: %s", strerror(rc));
  k->ttl_running = true;
  return 0;
}

void kv__ttl_stop(kv *k)
{
  if (!k->ttl_running) {
    json_decref(k->ttl_resume);
    k->ttl_resume = NULL;
    return;
  }
  pthread_mutex_lock(&k->ttl_mu);
  k->ttl_stop = true;
  pthread_cond_signal(&k->ttl_cv);
  pthread_mutex_unlock(&k->ttl_mu);
  pthread_join(k->ttl_thread, NULL);
  k->ttl_running = false;
  pthread_mutex_destroy(&k->ttl_mu);
  pthread_cond_destroy(&k->ttl_cv);
  json_decref(k->ttl_resume);
  k->ttl_resume = NULL;
}
