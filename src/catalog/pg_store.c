/* catalog/pg_store.c -- the catalog's spaces in PostgreSQL, so that several
 * tarn nodes (`tarn server --metadata postgres://...`) share one catalog: a
 * table created on one node is the table SQL, Athena and Glue see on every
 * node.
 *
 * Tables (created once by pg_pool_schema), one per space of
 * catalog/internal.h, each a map of byte keys to byte values holding
 * exactly the records of the LMDB side (store.c documents the layout):
 *   tarn_catalog_databases, tarn_catalog_tables, tarn_catalog_partitions,
 *   tarn_catalog_meta, tarn_catalog_crawlers, tarn_catalog_stats,
 *   tarn_catalog_functions    (k bytea PRIMARY KEY, v bytea NOT NULL)
 * bytea compares as memcmp, then the shorter first: LMDB's order, so
 * listings and their NextTokens are the same on both sides.
 *
 * Invariants:
 *   (1) A write is one transaction that first takes the catalog's write
 *       lock (a transaction-scoped advisory lock, LOCK_SQL), then reads and
 *       writes at READ COMMITTED: writers of every node run one after the
 *       other, each statement sees every earlier writer's commit, so the
 *       checks store.c makes (exists, quota, counters, next id) and its
 *       writes commit together as if alone, as on the LMDB side. No two
 *       catalog writes meet a serialization failure: concurrent Glue calls
 *       into one table (partitions from many clients, UpdateTable) all
 *       succeed; only UpdateTable with a stale VersionId gives
 *       ConcurrentModificationException, as on AWS. (SERIALIZABLE would
 *       fail one of two nodes' writes into one table, whose counter both
 *       update, and run it again until the retries ran out.) A lost
 *       connection before COMMIT runs the call again (pg_transaction); a
 *       writer idle for a minute inside its transaction (its node stopped
 *       or cut off) is ended by PostgreSQL, so the lock is never held for
 *       good by a node that went away.
 *   (1a) The writes of one node go one at a time (pstore.wmu), as the LMDB
 *       side's committer does, so a node holds at most one connection
 *       waiting for the lock.
 *   (2) After a statement fails, the transaction is aborted in PostgreSQL:
 *       later calls on it fail with the first error without running, and
 *       the write returns that error whatever the catalog's logic made of
 *       it (never COMMIT an aborted transaction, which would drop it
 *       silently), so a retryable failure is retried.
 *   (3) Reads run in one REPEATABLE READ READ ONLY transaction: one
 *       snapshot, as LMDB's read transactions.
 *   (4) Nothing is cached on a node across calls: every call reads the
 *       database, so nodes never disagree. Within one transaction, records
 *       read or written are kept (ptx's cache: a batch of 100 partitions
 *       reads its table and its counter once), and writes are sent once
 *       per key, before anything that reads ranges (scan, count,
 *       drop_prefix) and before COMMIT: what the transaction reads is
 *       always what it wrote.
 */
#include "catalog/internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/pg.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_BATCH 256
/* The catalog's write lock (1): the two-key advisory lock space, apart from
 * pg_pool_schema's one-key locks. */
#define LOCK_SQL "SELECT pg_advisory_xact_lock(hashtext('tarn_catalog'), 1)"
/* A writer that stops talking while it holds the lock (its node stopped or
 * cut off) is ended by PostgreSQL after this long, which frees the lock;
 * a write's statements follow each other without waits. */
#define IDLE_SQL "SET LOCAL idle_in_transaction_session_timeout = 60000"

#define CACHE_BUCKETS 256
#define CACHE_MAX 4096 /* entries; more: written out and forgotten */

static const char *const tables[CS_COUNT] = {
    [CS_DATABASES] = "tarn_catalog_databases", [CS_TABLES] = "tarn_catalog_tables",
    [CS_PARTITIONS] = "tarn_catalog_partitions", [CS_META] = "tarn_catalog_meta",
    [CS_CRAWLERS] = "tarn_catalog_crawlers",   [CS_STATS] = "tarn_catalog_stats",
    [CS_FUNCTIONS] = "tarn_catalog_functions"};

#define TABLE(n) "CREATE TABLE IF NOT EXISTS " n " (k bytea PRIMARY KEY, v bytea NOT NULL);"
static const char SCHEMA[] =
    TABLE("tarn_catalog_databases") TABLE("tarn_catalog_tables")
    TABLE("tarn_catalog_partitions") TABLE("tarn_catalog_meta")
    TABLE("tarn_catalog_crawlers") TABLE("tarn_catalog_stats") TABLE("tarn_catalog_functions");

/* One record as the transaction knows it (4). */
typedef struct centry {
  struct centry *next; /* in its bucket */
  int space;
  unsigned char *k;
  size_t kn;
  unsigned char *v;
  size_t vn;
  bool present; /* false: known to be absent */
  bool dirty;   /* a put not sent yet */
} centry;

typedef struct ptx {
  catalog_tx base;
  PGconn *conn;
  int failed;     /* the first failure's code; later calls return it (2) */
  err first;      /* its message */
  centry *cache[CACHE_BUCKETS];
  size_t cached;
} ptx;

static const catalog_side pg_side;

typedef struct pstore {
  pg_pool *pool;        /* the server's */
  pthread_mutex_t wmu;  /* one write at a time on this node (1a) */
} pstore;

/* Runs sql with binary parameters (text ones when text) and binary results. */
static int run_params(ptx *x, const char *sql, int n, const void *const *vals,
                      const size_t *lens, bool text, PGresult **out, const char *what, err *e)
{
  if (out != NULL)
    *out = NULL;
  if (x->failed != 0) {
    *e = x->first;
    return x->failed;
  }
  const char *params[4];
  int lengths[4];
  int formats[4];
  for (int i = 0; i < n; i++) {
    params[i] = vals[i];
    lengths[i] = (int)lens[i];
    formats[i] = text ? 0 : 1;
  }
  PGresult *r = PQexecParams(x->conn, sql, n, NULL, params, lengths, formats, 1);
  ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    int rc = pg_error(x->conn, r, what, e);
    PQclear(r);
    x->failed = rc;
    x->first = *e;
    return rc;
  }
  if (out != NULL)
    *out = r;
  else
    PQclear(r);
  return 0;
}

static int run(ptx *x, const char *sql, int n, const void *const *vals, const size_t *lens,
               PGresult **out, const char *what, err *e)
{
  return run_params(x, sql, n, vals, lens, false, out, what, e);
}

/* Runs "HEAD FROM <the space's table> WHERE k = K". */
static int run_key(ptx *x, const char *head, int space, const void *k, size_t kn, PGresult **out,
                   const char *what, err *e)
{
  char sql[128];
  snprintf(sql, sizeof sql, "%s FROM %s WHERE k = $1", head, tables[space]);
  const void *vals[1] = {kn > 0 ? k : ""};
  size_t lens[1] = {kn};
  return run(x, sql, 1, vals, lens, out, what, e);
}

/* ---- the transaction's cache (4) ---- */

static unsigned cache_slot(int space, const void *k, size_t kn)
{
  uint64_t h = 1469598103934665603ull ^ (unsigned)space;
  for (size_t i = 0; i < kn; i++) {
    h ^= ((const unsigned char *)k)[i];
    h *= 1099511628211ull;
  }
  return (unsigned)(h % CACHE_BUCKETS);
}

static centry *cache_find(ptx *x, int space, const void *k, size_t kn)
{
  for (centry *c = x->cache[cache_slot(space, k, kn)]; c != NULL; c = c->next)
    if (c->space == space && c->kn == kn && memcmp(c->k, k, kn) == 0)
      return c;
  return NULL;
}

static void cache_clear(ptx *x)
{
  for (int i = 0; i < CACHE_BUCKETS; i++) {
    while (x->cache[i] != NULL) {
      centry *c = x->cache[i];
      x->cache[i] = c->next;
      free(c->k);
      free(c->v);
      free(c);
    }
  }
  x->cached = 0;
}

static int p_put_now(ptx *x, int space, const void *k, size_t kn, const void *v, size_t vn,
                     err *e);

#define FLUSH_BYTES (8u << 20) /* of array text in one statement */

/* Sends the puts of space not sent yet, many in one statement. */
static int flush_space(ptx *x, int space, err *e)
{
  for (;;) {
    size_t kt = 2, vt = 2, n = 0;
    centry *one = NULL;
    for (int i = 0; i < CACHE_BUCKETS; i++)
      for (centry *c = x->cache[i]; c != NULL; c = c->next)
        if (c->dirty && c->space == space && (n == 0 || kt + vt < FLUSH_BYTES)) {
          kt += 2 * c->kn + 6;
          vt += 2 * c->vn + 6;
          n++;
          one = c;
        }
    if (n == 0)
      return 0;
    int rc;
    if (n == 1) {
      rc = p_put_now(x, space, one->k, one->kn, one->v, one->vn, e);
      if (rc == 0)
        one->dirty = false;
      if (rc != 0)
        return rc;
      continue;
    }
    buf ka, va;
    buf_init(&ka, kt + 1);
    buf_init(&va, vt + 1);
    size_t sent = 0;
    for (int i = 0; i < CACHE_BUCKETS; i++)
      for (centry *c = x->cache[i]; c != NULL && sent < n; c = c->next)
        if (c->dirty && c->space == space) {
          pg_array_add_bytes(&ka, c->k, c->kn);
          pg_array_add_bytes(&va, c->v, c->vn);
          c->dirty = false; /* a failure fails the transaction (2) */
          sent++;
        }
    pg_array_end(&ka);
    pg_array_end(&va);
    char sql[200];
    snprintf(sql, sizeof sql,
             "INSERT INTO %s (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) "
             "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", tables[space]);
    const void *vals[2] = {ka.data, va.data};
    size_t lens[2] = {ka.len, va.len};
    rc = run_params(x, sql, 2, vals, lens, true, NULL, "write the catalog", e);
    buf_release(&ka);
    buf_release(&va);
    if (rc != 0)
      return rc;
  }
}

/* Sends every put not sent yet. */
static int cache_flush(ptx *x, err *e)
{
  for (int s = 0; s < CS_COUNT; s++) {
    int rc = flush_space(x, s, e);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Records what k is now (v NULL: absent). */
static int cache_set(ptx *x, int space, const void *k, size_t kn, const void *v, size_t vn,
                     bool dirty, err *e)
{
  centry *c = cache_find(x, space, k, kn);
  if (c == NULL) {
    if (x->cached >= CACHE_MAX) {
      int rc = cache_flush(x, e);
      if (rc != 0)
        return rc;
      cache_clear(x);
    }
    c = xcalloc(1, sizeof *c);
    c->space = space;
    c->k = xmalloc(kn > 0 ? kn : 1);
    memcpy(c->k, k, kn);
    c->kn = kn;
    unsigned slot = cache_slot(space, k, kn);
    c->next = x->cache[slot];
    x->cache[slot] = c;
    x->cached++;
  }
  free(c->v);
  c->v = NULL;
  c->vn = 0;
  c->present = v != NULL;
  if (v != NULL) {
    c->v = xmalloc(vn > 0 ? vn : 1);
    memcpy(c->v, v, vn);
    c->vn = vn;
  }
  c->dirty = dirty;
  return 0;
}

/* Forgets the records of space whose keys start with prefix (sent). */
static void cache_forget(ptx *x, int space, const void *prefix, size_t plen)
{
  for (int i = 0; i < CACHE_BUCKETS; i++) {
    centry **pp = &x->cache[i];
    while (*pp != NULL) {
      centry *c = *pp;
      if (c->space == space && c->kn >= plen && memcmp(c->k, prefix, plen) == 0) {
        *pp = c->next;
        free(c->k);
        free(c->v);
        free(c);
        x->cached--;
      } else {
        pp = &c->next;
      }
    }
  }
}

static int p_get(catalog_tx *t, int space, const void *k, size_t kn, const unsigned char **v,
                 size_t *vn, err *e)
{
  ptx *x = (ptx *)t;
  centry *c = cache_find(x, space, k, kn);
  if (c == NULL) {
    PGresult *r;
    int rc = run_key(x, "SELECT v", space, k, kn, &r, "read the catalog", e);
    if (rc != 0)
      return rc;
    if (PQntuples(r) == 0)
      rc = cache_set(x, space, k, kn, NULL, 0, false, e);
    else
      rc = cache_set(x, space, k, kn, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), false,
                     e);
    PQclear(r);
    if (rc != 0)
      return rc;
    c = cache_find(x, space, k, kn);
  }
  if (!c->present)
    return ERR_ENTITY_NOT_FOUND;
  *v = c->v;
  *vn = c->vn;
  return 0;
}

static int p_put(catalog_tx *t, int space, const void *k, size_t kn, const void *v, size_t vn,
                 err *e)
{
  ptx *x = (ptx *)t;
  if (x->failed != 0) {
    *e = x->first;
    return x->failed;
  }
  return cache_set(x, space, k, kn, v != NULL ? v : "", vn, true, e);
}

static int p_put_now(ptx *x, int space, const void *k, size_t kn, const void *v, size_t vn,
                     err *e)
{
  char sql[160];
  snprintf(sql, sizeof sql,
           "INSERT INTO %s (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
           tables[space]);
  const void *vals[2] = {kn > 0 ? k : "", vn > 0 ? v : ""};
  size_t lens[2] = {kn, vn};
  return run(x, sql, 2, vals, lens, NULL, "write the catalog", e);
}

static int p_del(catalog_tx *t, int space, const void *k, size_t kn, err *e)
{
  ptx *x = (ptx *)t;
  centry *c = cache_find(x, space, k, kn);
  if (c != NULL && !c->present)
    return x->failed != 0 ? (*e = x->first, x->failed) : ERR_ENTITY_NOT_FOUND;
  PGresult *r;
  int rc = run_key(x, "DELETE", space, k, kn, &r, "write the catalog", e);
  if (rc != 0)
    return rc;
  /* present in the cache (maybe a put not sent yet): it was there */
  bool gone = c == NULL && strcmp(PQcmdTuples(r), "0") == 0;
  PQclear(r);
  if ((rc = cache_set(x, space, k, kn, NULL, 0, false, e)) != 0)
    return rc;
  return gone ? ERR_ENTITY_NOT_FOUND : 0;
}

/* The least key above every key starting with prefix: prefix with its
 * trailing 0xff bytes dropped and its last byte grown; 0 when none is
 * (every key is below no bound). */
static size_t upper_of(const unsigned char *prefix, size_t plen, unsigned char *out)
{
  while (plen > 0 && prefix[plen - 1] == 0xff)
    plen--;
  if (plen == 0)
    return 0;
  memcpy(out, prefix, plen);
  out[plen - 1]++;
  return plen;
}

static int p_drop_prefix(catalog_tx *t, int space, const void *prefix, size_t plen, err *e)
{
  ptx *x = (ptx *)t;
  int rc = cache_flush(x, e);
  if (rc != 0)
    return rc;
  cache_forget(x, space, prefix, plen);
  unsigned char up[512];
  size_t un = plen <= sizeof up ? upper_of(prefix, plen, up) : 0;
  char sql[160];
  const void *vals[2] = {plen > 0 ? prefix : "", up};
  size_t lens[2] = {plen, un};
  if (un > 0)
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE k >= $1 AND k < $2", tables[space]);
  else
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE k >= $1 AND substring(k from 1 for %zu) = $1",
             tables[space], plen);
  return run(x, sql, un > 0 ? 2 : 1, vals, lens, NULL, "write the catalog", e);
}

static int p_count(catalog_tx *t, int space, uint64_t *n, err *e)
{
  ptx *x = (ptx *)t;
  int rc = cache_flush(x, e);
  if (rc != 0)
    return rc;
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*)::int8 FROM %s", tables[space]);
  PGresult *r;
  rc = run(x, sql, 0, NULL, NULL, &r, "read the catalog", e);
  if (rc != 0)
    return rc;
  uint64_t v = 0;
  if (PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 8) {
    const unsigned char *b = (const unsigned char *)PQgetvalue(r, 0, 0);
    for (int i = 0; i < 8; i++)
      v = v << 8 | b[i];
  }
  PQclear(r);
  *n = v;
  return 0;
}

static int p_scan(catalog_tx *t, int space, const void *prefix, size_t plen, const void *from,
                  size_t fn, bool after, catalog_visit visit, void *ctx, err *e)
{
  ptx *x = (ptx *)t;
  int rc = cache_flush(x, e);
  if (rc != 0)
    return rc;
  unsigned char up[512];
  size_t un = plen <= sizeof up ? upper_of(prefix, plen, up) : 0;
  unsigned char *cur = xmalloc(fn > 0 ? fn : 1);
  memcpy(cur, from, fn);
  size_t cn = fn;
  bool excl = after;
  for (;;) {
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT k, v FROM %s WHERE k %s $1%s ORDER BY k LIMIT %d",
             tables[space], excl ? ">" : ">=", un > 0 ? " AND k < $2" : "", SCAN_BATCH);
    const void *vals[2] = {cn > 0 ? (const void *)cur : "", up};
    size_t lens[2] = {cn, un};
    PGresult *r;
    if ((rc = run(x, sql, un > 0 ? 2 : 1, vals, lens, &r, "read the catalog", e)) != 0)
      break;
    int rows = PQntuples(r);
    int stop = 0;
    for (int i = 0; i < rows && stop == 0; i++) {
      const unsigned char *k = (const unsigned char *)PQgetvalue(r, i, 0);
      size_t kn = (size_t)PQgetlength(r, i, 0);
      if (kn < plen || memcmp(k, prefix, plen) != 0) {
        stop = 1;
        break;
      }
      stop = visit(ctx, k, kn, (const unsigned char *)PQgetvalue(r, i, 1),
                   (size_t)PQgetlength(r, i, 1), e);
      if (stop == 0 && i == rows - 1) {
        cur = xrealloc(cur, kn > 0 ? kn : 1);
        memcpy(cur, k, kn);
        cn = kn;
      }
    }
    PQclear(r);
    if (stop < 0)
      rc = stop;
    if (stop != 0 || rows < SCAN_BATCH)
      break;
    excl = true;
  }
  free(cur);
  return rc;
}

static void tx_init(ptx *x, PGconn *c)
{
  memset(x, 0, sizeof *x);
  x->base.side = &pg_side;
  x->conn = c;
}

static int p_read_begin(void *impl, catalog_tx **out, err *e)
{
  pg_pool *pool = ((pstore *)impl)->pool;
  PGconn *c = pg_acquire(pool, e);
  if (c == NULL)
    return e->code != 0 ? e->code : ERR_UNAVAILABLE;
  if (pg_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL,
              "begin a read of the catalog", e) != 0) {
    pg_release(pool, c, PQstatus(c) != CONNECTION_OK);
    return e->code;
  }
  ptx *x = xmalloc(sizeof *x);
  tx_init(x, c);
  *out = &x->base;
  return 0;
}

static void p_read_end(void *impl, catalog_tx *t)
{
  ptx *x = (ptx *)t;
  cache_clear(x);
  PGresult *r = PQexec(x->conn, "ROLLBACK");
  bool broken = r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK;
  PQclear(r);
  pg_release(((pstore *)impl)->pool, x->conn, broken);
  free(x);
}

typedef struct pwrite {
  int (*fn)(catalog_tx *tx, void *arg, err *e);
  void *arg;
} pwrite;

static int write_txn(PGconn *c, void *arg, err *e)
{
  pwrite *w = arg;
  if (pg_exec(c, IDLE_SQL, 0, NULL, NULL, "lock the catalog", e) != 0 ||
      pg_exec(c, LOCK_SQL, 0, NULL, NULL, "lock the catalog", e) != 0)
    return e->code;
  ptx x;
  tx_init(&x, c);
  int rc = w->fn(&x.base, w->arg, e);
  if (rc == 0)
    rc = cache_flush(&x, e);
  cache_clear(&x);
  if (x.failed != 0) { /* (2) */
    *e = x.first;
    return x.failed;
  }
  return rc;
}

static int p_write(void *impl, int (*fn)(catalog_tx *tx, void *arg, err *e), void *arg, err *e)
{
  pstore *s = impl;
  pwrite w = {.fn = fn, .arg = arg};
  pthread_mutex_lock(&s->wmu);
  int rc = pg_transaction(s->pool, NULL, write_txn, &w, e);
  pthread_mutex_unlock(&s->wmu);
  return rc;
}

static void p_close(void *impl)
{
  pstore *s = impl;
  pthread_mutex_destroy(&s->wmu);
  free(s);
}

static const catalog_side pg_side = {
    .get = p_get, .put = p_put, .del = p_del, .drop_prefix = p_drop_prefix, .count = p_count,
    .scan = p_scan, .read_begin = p_read_begin, .read_end = p_read_end, .write = p_write,
    .close = p_close, .shared = true};

int catalog__pg_open(struct pg_pool *pool, const catalog_side **side, void **impl, err *e)
{
  if (pg_pool_schema(pool, "tarn_catalog", SCHEMA, e) != 0)
    return e->code;
  pstore *s = xcalloc(1, sizeof *s);
  s->pool = pool;
  pthread_mutex_init(&s->wmu, NULL);
  *side = &pg_side;
  *impl = s;
  return 0;
}
