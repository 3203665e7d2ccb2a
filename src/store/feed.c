/* store/feed.c -- the change feed and the buckets' notification
 * configurations (store.h, "notifications").
 *
 * Why: an S3 event must never be lost nor invented. Writing the feed entry
 * in the same LMDB transaction as the object change makes "the change
 * committed" and "its event is recorded" one fact; the events part
 * (events/dispatch.c) reads the feed, delivers, and trims what it
 * delivered, so a crash in between repeats a delivery but never skips one.
 *
 * Layout (two LMDB tables of the index, store.c):
 *   notify   bucket name -> configuration text (opaque here)
 *   feed     seq, 8 bytes big-endian -> entry (version byte, event byte,
 *            then varint-prefixed bucket, key, etag, request id,
 *            principal, source ip, and varints size, time)
 *   counters "feed_seq" -> the last seq handed out (8 bytes LE, index.c)
 *
 * Invariants:
 *   (1) An entry is written only inside the apply of the change it
 *       describes, and only when the bucket has a configuration in that
 *       same transaction.
 *   (2) Seqs come from the feed_seq counter, never from the table's last
 *       key, so trimming everything never lets a seq be reused.
 *   (3) Reading never holds a transaction across calls; trimming is a
 *       change like any other (commit.c).
 *
 * Start reading at store__feed_append().
 */
#include "store.h"

#include "codec.h"
#include "commit.h"
#include "index.h"
#include "pg_index.h"

#include <stdlib.h>
#include <string.h>

#define FEED_VERSION 1
#define FEED_SEQ_COUNTER "feed_seq"
#define FEED_READ_MAX 10000

static _Thread_local const store_origin *thread_origin;

void store_origin_set(const store_origin *o)
{
  thread_origin = o;
}

const store_origin *store__origin_current(void)
{
  return thread_origin;
}

const char *store_event_name(int event)
{
  static const char *const names[STORE_EVENT_MAX] = {
    [STORE_EVENT_PUT] = "ObjectCreated:Put",
    [STORE_EVENT_POST] = "ObjectCreated:Post",
    [STORE_EVENT_COPY] = "ObjectCreated:Copy",
    [STORE_EVENT_COMPLETE] = "ObjectCreated:CompleteMultipartUpload",
    [STORE_EVENT_DELETE] = "ObjectRemoved:Delete",
    [STORE_EVENT_DELETE_MARKER] = "ObjectRemoved:DeleteMarkerCreated",
    [STORE_EVENT_LIFECYCLE_DELETE] = "LifecycleExpiration:Delete",
    [STORE_EVENT_LIFECYCLE_MARKER] = "LifecycleExpiration:DeleteMarkerCreated",
  };
  if (event <= STORE_EVENT_NONE || event >= STORE_EVENT_MAX)
    return "";
  return names[event];
}

static void seq_key(uint64_t seq, uint8_t out[8])
{
  for (int i = 0; i < 8; i++)
    out[i] = (uint8_t)(seq >> (56 - 8 * i));
}

static uint64_t seq_of(const MDB_val *k)
{
  const uint8_t *p = k->mv_data;
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < k->mv_size; i++)
    v = v << 8 | p[i];
  return v;
}

void store__feed_encode(buf *b, const feed_note *n, const store_origin *o)
{
  int event = o != NULL && o->event > STORE_EVENT_NONE && o->event < STORE_EVENT_MAX
                  ? o->event
                  : n->event;
  if (event == STORE_EVENT_LIFECYCLE_DELETE && n->event == STORE_EVENT_DELETE_MARKER)
    event = STORE_EVENT_LIFECYCLE_MARKER;
  uint8_t head[2] = { FEED_VERSION, (uint8_t)event };
  store__put(b, head, sizeof head);
  store__put_str(b, n->bucket);
  store__put_str(b, n->key);
  store__put_str(b, n->etag);
  store__put_str(b, o != NULL ? o->request_id : NULL);
  store__put_str(b, o != NULL ? o->principal : NULL);
  store__put_str(b, o != NULL ? o->source_ip : NULL);
  store__put_var(b, n->size);
  store__put_var(b, (uint64_t)n->time_ms);
  if (n->version_id != NULL && n->version_id[0] != '\0')
    store__put_str(b, n->version_id);  /* optional tail: older entries end before it */
}

int store__feed_decode(const MDB_val *v, arena *a, store_change *ch)
{
  rec_dec d = store__dec_of(v);
  if (v->mv_size < 2 || d.p[0] != FEED_VERSION)
    return ERR_INTERNAL;
  ch->event = d.p[1];
  d.p += 2;
  ch->bucket = store__get_str(&d, a);
  ch->key = store__get_str(&d, a);
  ch->etag = store__get_str(&d, a);
  ch->request_id = store__get_str(&d, a);
  ch->principal = store__get_str(&d, a);
  ch->source_ip = store__get_str(&d, a);
  ch->size = store__get_var(&d);
  ch->time_ms = (int64_t)store__get_var(&d);
  ch->version_id = !d.bad && d.p < d.end ? store__get_str(&d, a) : "";
  return d.bad ? ERR_INTERNAL : 0;
}

/* ---- appending (inside a change) ---- */

int store__feed_append(change *c, MDB_txn *txn, const feed_note *n, err *e)
{
  store *s = c->s;
  MDB_val bk = { strlen(n->bucket), (void *)n->bucket };
  MDB_val cfg;
  int mrc = mdb_get(txn, s->db_notify, &bk, &cfg);
  if (mrc == MDB_NOTFOUND)
    return 0;  /* nobody listens to this bucket: invariant (1) */
  if (mrc != 0)
    return lmdb_error(e, mrc, "read a notification configuration");

  uint64_t last = 0;
  MDB_val ck = { sizeof FEED_SEQ_COUNTER - 1, (void *)FEED_SEQ_COUNTER };
  MDB_val cv;
  mrc = mdb_get(txn, s->db_counters, &ck, &cv);
  if (mrc == 0 && cv.mv_size == 8) {
    const uint8_t *p = cv.mv_data;
    for (int i = 7; i >= 0; i--)
      last = last << 8 | p[i];
  } else if (mrc != 0 && mrc != MDB_NOTFOUND) {
    return lmdb_error(e, mrc, "read the feed counter");
  }
  uint64_t seq = last + 1;
  uint8_t le[8];
  for (int i = 0; i < 8; i++)
    le[i] = (uint8_t)(seq >> (8 * i));
  cv.mv_size = sizeof le;
  cv.mv_data = le;
  mrc = mdb_put(txn, s->db_counters, &ck, &cv, 0);
  if (mrc != 0)
    return lmdb_error(e, mrc, "write the feed counter");

  buf b;
  buf_init(&b, 64 << 10);
  store__feed_encode(&b, n, c->origin);
  uint8_t kb[8];
  seq_key(seq, kb);
  MDB_val k = { sizeof kb, kb };
  MDB_val v = { b.len, b.data };
  mrc = mdb_put(txn, s->db_feed, &k, &v, MDB_APPEND);
  buf_release(&b);
  if (mrc != 0)
    return lmdb_error(e, mrc, "append to the change feed");
  c->fed = true;
  return 0;
}

/* ---- reading and trimming ---- */

int store_feed_read(store *s, uint64_t after, size_t max, arena *a, store_change **out,
                    size_t *n, err *e)
{
  *out = NULL;
  *n = 0;
  if (max == 0 || max > FEED_READ_MAX)
    max = FEED_READ_MAX;
  if (s->pg != NULL)
    return store__pg_feed_read(s, after, max, a, out, n, e);
  MDB_txn *txn = NULL;
  int rc = store__read_begin(s, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, s->db_feed, &cur);
  if (mrc != 0) {
    mdb_txn_abort(txn);
    return lmdb_error(e, mrc, "read the change feed");
  }
  size_t cap = 16;
  store_change *list = arena_alloc(a, cap * sizeof *list);
  size_t count = 0;
  uint8_t kb[8];
  seq_key(after + 1, kb);
  MDB_val k = { sizeof kb, kb };
  MDB_val v;
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0 && count < max;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (count == cap) {
      store_change *bigger = arena_alloc(a, 2 * cap * sizeof *bigger);
      memcpy(bigger, list, cap * sizeof *list);
      list = bigger;
      cap *= 2;
    }
    store_change *ch = &list[count];
    if (k.mv_size != 8 || store__feed_decode(&v, a, ch) != 0) {
      rc = store__corrupt(e, "change feed");
      break;
    }
    ch->seq = seq_of(&k);
    count++;
  }
  if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
    rc = lmdb_error(e, mrc, "read the change feed");
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (rc == 0) {
    *out = list;
    *n = count;
  }
  return rc;
}

typedef struct trim_arg {
  uint64_t upto;
} trim_arg;

static int apply_trim(change *c, MDB_txn *txn, arena *a, err *e)
{
  trim_arg *t = c->arg;
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, c->s->db_feed, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  MDB_val k;
  MDB_val v;
  int rc = 0;
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) {
    if (seq_of(&k) > t->upto)
      break;
    mrc = mdb_cursor_del(cur, 0);
    if (mrc != 0)
      break;
  }
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    rc = lmdb_error(e, mrc, "trim the change feed");
  mdb_cursor_close(cur);
  return rc;
}

int store_feed_trim(store *s, uint64_t upto, err *e)
{
  if (s->pg != NULL)
    return store__pg_feed_trim(s, upto, e);
  trim_arg t = { upto };
  change c;
  store__change_init(&c, s, apply_trim, &t, NULL);
  return store__commit_run(s, &c, e);
}

uint64_t store_feed_backlog(store *s)
{
  if (s->pg != NULL)
    return store__pg_feed_backlog(s);
  MDB_txn *txn = NULL;
  uint64_t n = 0;
  if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
    MDB_stat st;
    if (mdb_stat(txn, s->db_feed, &st) == 0)
      n = st.ms_entries;
    mdb_txn_abort(txn);
  }
  return n;
}

void store_feed_watch(store *s, void (*fn)(void *ctx), void *ctx)
{
  pthread_mutex_lock(&s->mu);
  s->feed_watch = fn;
  s->feed_ctx = ctx;
  pthread_mutex_unlock(&s->mu);
}

/* ---- configurations ---- */

typedef struct notify_arg {
  const char *bucket;
  const char *config;  /* NULL: remove */
} notify_arg;

static int apply_notify(change *c, MDB_txn *txn, arena *a, err *e)
{
  notify_arg *x = c->arg;
  int rc = store__bucket_check(c->s, txn, x->bucket, e);
  if (rc != 0)
    return rc;
  if (x->config == NULL)
    return store__notify_drop(c->s, txn, x->bucket, e);
  MDB_val k = { strlen(x->bucket), (void *)x->bucket };
  MDB_val v = { strlen(x->config), (void *)x->config };
  int mrc = mdb_put(txn, c->s->db_notify, &k, &v, 0);
  return mrc ? lmdb_error(e, mrc, "write a notification configuration") : 0;
}

int store__notify_drop(store *s, MDB_txn *txn, const char *bucket, err *e)
{
  MDB_val k = { strlen(bucket), (void *)bucket };
  int mrc = mdb_del(txn, s->db_notify, &k, NULL);
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    return lmdb_error(e, mrc, "remove a notification configuration");
  return 0;
}

int store_bucket_notification_set(store *s, const char *bucket, const char *config, err *e)
{
  int rc = store__check_bucket_arg(bucket, e);
  if (rc != 0)
    return rc;
  if (config != NULL && config[0] == '\0')
    config = NULL;
  if (config != NULL && strlen(config) > STORE_MAX_NOTIFICATION)
    return err_set(e, ERR_INVALID, "the notification configuration is larger than %u bytes",
                   STORE_MAX_NOTIFICATION);
  if (s->pg != NULL)
    return store__pg_notify_set(s, bucket, config, e);
  notify_arg x = { bucket, config };
  change c;
  store__change_init(&c, s, apply_notify, &x, NULL);
  return store__commit_run(s, &c, e);
}

int store_bucket_notification_get(store *s, const char *bucket, arena *a, const char **config,
                                  err *e)
{
  *config = NULL;
  if (s->pg != NULL)
    return store__pg_notify_get(s, bucket, a, config, e);
  MDB_txn *txn;
  int rc = store__bucket_read_begin(s, bucket, &txn, NULL, e);
  if (rc != 0)
    return rc;
  MDB_val k = { strlen(bucket), (void *)bucket };
  MDB_val v;
  int mrc = mdb_get(txn, s->db_notify, &k, &v);
  if (mrc == 0)
    *config = arena_strndup(a, v.mv_data, v.mv_size);
  else if (mrc != MDB_NOTFOUND)
    rc = lmdb_error(e, mrc, "read a notification configuration");
  mdb_txn_abort(txn);
  return rc;
}
