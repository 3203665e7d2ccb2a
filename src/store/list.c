/* store/list.c -- listings of objects and of multipart uploads.
 *
 * Why: S3 listings are ordered range scans with prefixes, delimiters and
 * continuation; they must return keys in exact byte order although LMDB sees
 * long keys only through their truncated form (index.c).
 *
 * An iterator (iter) walks one bucket's entries of a table in exact byte
 * order of the logical key:
 *   - a short-form entry is delivered as LMDB has it;
 *   - a long-form entry starts a run: every following entry with the same
 *     truncated prefix (they are contiguous, index.c (1)) is collected and
 *     sorted by full key, then delivered from the run.
 * Unconsumed entries are always run[pos..nrun) followed by the cursor's
 * entry onward.
 *
 * Invariants:
 *   (1) Seeks only move forward: to the start, past `after`, or past a
 *       common prefix just emitted.
 *   (2) When a common prefix is emitted the iterator seeks to its successor
 *       instead of stepping over the keys under it.
 *   (3) A listing uses one read transaction and holds nothing across calls.
 *
 * Start reading at store_object_list().
 */
#include "store.h"

#include "base/mem.h"

#include "index.h"
#include "pg_index.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
  const uint8_t *lk;   /* logical key (in the transaction's pages) */
  size_t lkn;          /* its length */
  MDB_val k;           /* index key */
  MDB_val v;           /* record */
} entry;

typedef struct iter {
  MDB_cursor *cur;     /* over one table */
  const char *bucket;  /* entries outside it end the walk */
  size_t blen;         /* strlen(bucket) */
  size_t room;         /* logical bytes of a long key's truncated prefix */
  bool have;           /* the cursor is at an unconsumed entry of the bucket */
  MDB_val ck;          /* that entry's key */
  MDB_val cv;          /* and record */
  entry *run;          /* a sorted run of long-form entries (heap) */
  size_t nrun;         /* entries in run */
  size_t pos;          /* next unconsumed entry of run */
  size_t caprun;       /* entries allocated */
  int mrc;             /* first LMDB error, sticky */
  bool bad;            /* a record did not decode, sticky */
} iter;

static int lkcmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
  size_t n = an < bn ? an : bn;
  int c = n ? memcmp(a, b, n) : 0;
  if (c != 0)
    return c;
  return an < bn ? -1 : an > bn;
}

static int entry_cmp(const void *x, const void *y)
{
  const entry *a = x;
  const entry *b = y;
  return lkcmp(a->lk, a->lkn, b->lk, b->lkn);
}

static bool starts(const uint8_t *s, size_t n, const char *prefix, size_t pl)
{
  return n >= pl && memcmp(s, prefix, pl) == 0;
}

/* Records where a cursor operation left the cursor. */
static void place(iter *it, int mrc)
{
  it->have = false;
  if (mrc != 0) {
    if (mrc != MDB_NOTFOUND && it->mrc == 0)
      it->mrc = mrc;
    return;
  }
  const uint8_t *k = it->ck.mv_data;
  it->have = it->ck.mv_size > it->blen && memcmp(k, it->bucket, it->blen) == 0 &&
             k[it->blen] == '\0';
}

static void step(iter *it)
{
  place(it, mdb_cursor_get(it->cur, &it->ck, &it->cv, MDB_NEXT));
}

static bool entry_at_cursor(iter *it, entry *e)
{
  e->k = it->ck;
  e->v = it->cv;
  if (store__rec_lkey(&e->k, &e->v, &e->lk, &e->lkn) != 0) {
    it->bad = true;
    it->have = false;
    return false;
  }
  return true;
}

static void collect_run(iter *it)
{
  const uint8_t *t = it->ck.mv_data;  /* stays valid: read transaction */
  size_t tlen = it->blen + 1 + it->room;
  it->nrun = 0;
  it->pos = 0;
  do {
    if (it->nrun == it->caprun) {
      size_t cap = it->caprun ? it->caprun * 2 : 16;
      entry *p = xrealloc(it->run, cap * sizeof *p);
      it->run = p;
      it->caprun = cap;
    }
    if (!entry_at_cursor(it, &it->run[it->nrun]))
      return;
    it->nrun++;
    step(it);
  } while (it->have && store__ikey_is_long(&it->ck) && memcmp(it->ck.mv_data, t, tlen) == 0);
  qsort(it->run, it->nrun, sizeof *it->run, entry_cmp);
}

/* The next entry, without consuming it. */
static bool peek(iter *it, entry *e)
{
  if (it->bad)
    return false;
  if (it->pos < it->nrun) {
    *e = it->run[it->pos];
    return true;
  }
  if (!it->have)
    return false;
  if (!store__ikey_is_long(&it->ck))
    return entry_at_cursor(it, e);
  collect_run(it);
  if (it->pos >= it->nrun)
    return false;
  *e = it->run[it->pos];
  return true;
}

/* Consumes the entry peek() returned. */
static void consume(iter *it)
{
  if (it->pos < it->nrun) {
    it->pos++;
    return;
  }
  it->nrun = 0;
  it->pos = 0;
  step(it);
}

/* Positions before the first entry > x (>= x when incl). */
static void seek(iter *it, const uint8_t *x, size_t xn, bool incl)
{
  if (xn > it->room && it->nrun > 0 &&
      memcmp((const uint8_t *)it->run[0].k.mv_data + it->blen + 1, x, it->room) == 0) {
    /* inside the current run: the cursor is already past it */
    size_t lo = 0;
    size_t hi = it->nrun;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      int c = lkcmp(it->run[mid].lk, it->run[mid].lkn, x, xn);
      if (c < 0 || (c == 0 && !incl))
        lo = mid + 1;
      else
        hi = mid;
    }
    it->pos = lo;
    return;
  }
  it->nrun = 0;
  it->pos = 0;
  ikey k;
  store__ikey_seek(&k, it->bucket, x, xn);
  it->ck = store__ikey_val(&k);
  place(it, mdb_cursor_get(it->cur, &it->ck, &it->cv, MDB_SET_RANGE));
  entry e;
  while (peek(it, &e)) {
    int c = lkcmp(e.lk, e.lkn, x, xn);
    if (c > 0 || (c == 0 && incl))
      break;
    consume(it);
  }
}

static void iter_init(iter *it, MDB_cursor *cur, const char *bucket)
{
  memset(it, 0, sizeof *it);
  it->cur = cur;
  it->bucket = bucket;
  it->blen = strlen(bucket);
  it->room = store__ikey_room(it->blen);
}

static void iter_release(iter *it)
{
  free(it->run);
  it->run = NULL;
}

static int iter_error(iter *it, err *e)
{
  if (it->mrc != 0)
    return lmdb_error(e, it->mrc, "read the index");
  if (it->bad)
    return store__corrupt(e, "index");
  return 0;
}

/* The smallest string greater than every string starting with p[0..n):
 * drop trailing 0xff bytes and increment the last. Returns its length,
 * 0 when there is none (everything from here on starts with p). */
static size_t successor(uint8_t *p, size_t n)
{
  while (n > 0 && p[n - 1] == 0xff)
    n--;
  if (n > 0)
    p[n - 1]++;
  return n;
}

/* Seeks past every key starting with p[0..n); false when nothing can follow. */
static bool skip_prefix(iter *it, arena *a, const uint8_t *p, size_t n)
{
  uint8_t *succ = arena_memdup(a, p, n);
  size_t sn = successor(succ, n);
  if (sn == 0)
    return false;
  seek(it, succ, sn, true);
  return true;
}

/* Where the first delimiter after the prefix ends, or 0 when none. */
static size_t rollup_len(const uint8_t *lk, size_t lkn, size_t pl, const char *d, size_t dl)
{
  if (dl == 0 || lkn < pl)
    return 0;
  const uint8_t *hit = memmem(lk + pl, lkn - pl, d, dl);
  return hit != NULL ? (size_t)(hit - lk) + dl : 0;
}

static int open_cursor(store *s, MDB_txn *txn, MDB_dbi db, MDB_cursor **cur, err *e)
{
  int mrc = mdb_cursor_open(txn, db, cur);
  return mrc ? lmdb_error(e, mrc, "open a cursor") : 0;
}

/* store_object_list on the PostgreSQL index: batches of rows in key order
 * (the table's collation is bytewise), refetched past each common prefix
 * (invariant (2), with the prefix's keys filtered out by the database). */
static int list_pg(store *s, const char *bucket, const char *prefix, const char *delim,
                   const char *after, size_t max, arena *a, store_list_result *out, err *e)
{
  size_t pl = strlen(prefix);
  size_t dl = strlen(delim);
  int rc = store__pg_bucket_read(s, bucket, a, NULL, e);
  if (rc != 0 || max == 0)
    return rc;
  const char *from = NULL;   /* keys after this one */
  const char *skip = NULL;   /* and not under this common prefix */
  if (after != NULL && after[0] != '\0' && strcmp(after, prefix) >= 0) {
    size_t an = strlen(after);
    from = after;
    if (starts((const uint8_t *)after, an, prefix, pl) &&
        rollup_len((const uint8_t *)after, an, pl, delim, dl) == an)
      skip = after;
  }
  size_t count = 0;
  const char *last = NULL;
  for (;;) {
    pg_row *rows = NULL;
    size_t n = 0;
    size_t want = max - count + 1;
    rc = store__pg_object_scan(s, bucket, prefix, from, skip, want, a, &rows, &n, e);
    if (rc != 0)
      return rc;
    bool refetch = false;
    for (size_t i = 0; i < n && !refetch; i++) {
      if (count == max) {
        out->truncated = true;
        break;
      }
      const uint8_t *lk = (const uint8_t *)rows[i].key;
      size_t lkn = strlen(rows[i].key);
      size_t cpn = rollup_len(lk, lkn, pl, delim, dl);
      from = rows[i].key;
      count++;
      if (cpn > 0) {
        const char *cp = arena_strndup(a, rows[i].key, cpn);
        out->prefixes[out->nprefixes++] = cp;
        last = cp;
        skip = cp;
        refetch = true;
        continue;
      }
      ikey k;
      store__ikey_make(&k, bucket, lk, lkn);
      MDB_val kv = store__ikey_val(&k);
      obj_rec r;
      if (store__obj_rec_decode(&kv, &rows[i].rec, a, &r) != 0)
        return store__corrupt(e, "object");
      store_object *o = &out->objects[out->nobjects++];
      store__obj_out(a, bucket, &r, o);
      last = o->key;
    }
    if (out->truncated || (!refetch && n < want))
      break;
  }
  if (out->truncated)
    out->next_after = last;
  return 0;
}

int store_object_list(store *s, const char *bucket, const store_list_params *p,
                      arena *a, store_list_result *out, err *e)
{
  memset(out, 0, sizeof *out);
  int rc = store__check_bucket_arg(bucket, e);
  if (rc != 0)
    return rc;
  const char *prefix = p->prefix != NULL ? p->prefix : "";
  const char *delim = p->delimiter != NULL ? p->delimiter : "";
  size_t pl = strlen(prefix);
  size_t dl = strlen(delim);
  size_t max = p->max_keys < STORE_MAX_LIST_KEYS ? p->max_keys : STORE_MAX_LIST_KEYS;
  if (s->pg != NULL) {
    out->objects = arena_alloc(a, (max + 1) * sizeof *out->objects);
    out->prefixes = arena_alloc(a, (max + 1) * sizeof *out->prefixes);
    rc = list_pg(s, bucket, prefix, delim, p->after, max, a, out, e);
    if (rc != 0)
      memset(out, 0, sizeof *out);
    return rc;
  }
  MDB_txn *txn = NULL;
  rc = store__read_begin(s, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur = NULL;
  rc = store__bucket_check(s, txn, bucket, e);
  if (rc == 0)
    rc = open_cursor(s, txn, s->db_objects, &cur, e);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc;
  }
  out->objects = arena_alloc(a, (max + 1) * sizeof *out->objects);
  out->prefixes = arena_alloc(a, (max + 1) * sizeof *out->prefixes);

  iter it;
  iter_init(&it, cur, bucket);
  bool more = max > 0;
  const char *after = p->after;
  if (!more) {
    /* max_keys 0: nothing to return, and not truncated */
  } else if (after != NULL && after[0] != '\0' && strcmp(after, prefix) >= 0) {
    const uint8_t *ab = (const uint8_t *)after;
    size_t an = strlen(after);
    if (starts(ab, an, prefix, pl) && rollup_len(ab, an, pl, delim, dl) == an)
      more = skip_prefix(&it, a, ab, an);  /* a common prefix: skip its keys */
    else
      seek(&it, ab, an, false);
  } else {
    seek(&it, (const uint8_t *)prefix, pl, true);
  }

  size_t count = 0;
  const char *last = NULL;
  entry en;
  while (more && peek(&it, &en)) {
    if (!starts(en.lk, en.lkn, prefix, pl))
      break;
    if (count == max) {
      out->truncated = true;
      break;
    }
    size_t cpn = rollup_len(en.lk, en.lkn, pl, delim, dl);
    if (cpn > 0) {
      const char *cp = arena_strndup(a, (const char *)en.lk, cpn);
      out->prefixes[out->nprefixes++] = cp;
      last = cp;
      count++;
      more = skip_prefix(&it, a, en.lk, cpn);
      continue;
    }
    obj_rec r;
    if (store__obj_rec_decode(&en.k, &en.v, a, &r) != 0) {
      it.bad = true;
      break;
    }
    store_object *o = &out->objects[out->nobjects++];
    store__obj_out(a, bucket, &r, o);
    last = o->key;
    count++;
    consume(&it);
  }
  rc = iter_error(&it, e);
  if (out->truncated)
    out->next_after = last;
  iter_release(&it);
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (rc != 0)
    memset(out, 0, sizeof *out);
  return rc;
}

static int upload_list_pg(store *s, const char *bucket, const char *prefix,
                          const char *key_marker, const char *upload_id_marker, size_t max,
                          arena *a, store_upload **out, size_t *n, bool *truncated, err *e)
{
  int rc = store__pg_bucket_read(s, bucket, a, NULL, e);
  pg_row *rows = NULL;
  size_t count = 0;
  if (rc == 0 && max > 0)
    rc = store__pg_upload_scan(s, bucket, prefix, key_marker, upload_id_marker, max + 1, a,
                               &rows, &count, e);
  if (rc != 0)
    return rc;
  *truncated = count > max;
  if (count > max)
    count = max;
  store_upload *list = arena_alloc(a, (count + 1) * sizeof *list);
  for (size_t i = 0; i < count; i++) {
    size_t kn = strlen(rows[i].key);
    uint8_t *lk = arena_alloc(a, kn + 1 + 32);
    memcpy(lk, rows[i].key, kn);
    lk[kn] = '\0';
    memcpy(lk + kn + 1, rows[i].id, 32);
    ikey k;
    store__ikey_make(&k, bucket, lk, kn + 1 + 32);
    MDB_val kv = store__ikey_val(&k);
    upload_rec r;
    if (store__upload_rec_decode(&kv, &rows[i].rec, a, &r) != 0) {
      *truncated = false;
      return store__corrupt(e, "upload");
    }
    store__upload_out(a, bucket, &r, &list[i]);
  }
  *out = list;
  *n = count;
  return 0;
}

int store_upload_list(store *s, const char *bucket, const char *prefix,
                      const char *key_marker, const char *upload_id_marker, size_t max,
                      arena *a, store_upload **out, size_t *n, bool *truncated, err *e)
{
  *out = NULL;
  *n = 0;
  *truncated = false;
  int rc = store__check_bucket_arg(bucket, e);
  if (rc != 0)
    return rc;
  if (prefix == NULL)
    prefix = "";
  size_t pl = strlen(prefix);
  if (max > STORE_MAX_LIST_KEYS)
    max = STORE_MAX_LIST_KEYS;
  if (s->pg != NULL)
    return upload_list_pg(s, bucket, prefix, key_marker, upload_id_marker, max, a, out, n,
                          truncated, e);
  MDB_txn *txn = NULL;
  rc = store__read_begin(s, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur = NULL;
  rc = store__bucket_check(s, txn, bucket, e);
  if (rc == 0)
    rc = open_cursor(s, txn, s->db_uploads, &cur, e);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc;
  }
  store_upload *list = arena_alloc(a, (max + 1) * sizeof *list);

  iter it;
  iter_init(&it, cur, bucket);
  /* logical keys are key "\0" id: after (marker, id) is past marker "\0" id;
   * after a marker alone is from marker "\1" on (keys hold no NUL) */
  uint8_t *x = NULL;
  size_t xn = 0;
  bool incl = true;
  if (key_marker != NULL && key_marker[0] != '\0') {
    size_t kn = strlen(key_marker);
    bool with_id = upload_id_marker != NULL && upload_id_marker[0] != '\0';
    size_t idn = with_id ? strlen(upload_id_marker) : 0;
    x = arena_alloc(a, kn + 1 + idn + 1);
    memcpy(x, key_marker, kn);
    x[kn] = with_id ? '\0' : '\1';
    if (with_id)
      memcpy(x + kn + 1, upload_id_marker, idn);
    xn = kn + 1 + idn;
    incl = !with_id;
  }
  if (x != NULL && lkcmp(x, xn, (const uint8_t *)prefix, pl) >= 0)
    seek(&it, x, xn, incl);
  else
    seek(&it, (const uint8_t *)prefix, pl, true);

  size_t count = 0;
  entry en;
  while (max > 0 && peek(&it, &en)) {
    if (!starts(en.lk, en.lkn, prefix, pl))
      break;
    if (count == max) {
      *truncated = true;
      break;
    }
    upload_rec r;
    if (store__upload_rec_decode(&en.k, &en.v, a, &r) != 0) {
      it.bad = true;
      break;
    }
    store__upload_out(a, bucket, &r, &list[count++]);
    consume(&it);
  }
  rc = iter_error(&it, e);
  iter_release(&it);
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (rc == 0) {
    *out = list;
    *n = count;
  } else {
    *truncated = false;
  }
  return rc;
}
