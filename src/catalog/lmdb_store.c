/* catalog/lmdb_store.c -- the catalog's spaces in DATA/catalog (LMDB): one
 * node's catalog, the default side (catalog/internal.h).
 *
 * Each space is a named database of one environment; a write is one change
 * of the group committer (base/lmdb_env.h), run inside its nested write
 * transaction, so a failing write leaves nothing behind and a returning one
 * is on disk (it survives kill -9). Reads are LMDB read transactions and
 * never wait for a commit.
 *
 * Invariant: a value handed out by get or scan points into the map and is
 * only read before the transaction's next call.
 */
#include "catalog/internal.h"

#include "base/lmdb_env.h"
#include "base/mem.h"

#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#define MAP_SIZE (8ull << 30)

static const char *const space_names[CS_COUNT] = {
    [CS_DATABASES] = "databases", [CS_TABLES] = "tables",   [CS_PARTITIONS] = "partitions",
    [CS_META] = "meta",           [CS_CRAWLERS] = "crawlers", [CS_STATS] = "stats",
    [CS_FUNCTIONS] = "functions"};

typedef struct lstore {
  MDB_env *env;
  MDB_dbi dbi[CS_COUNT];
  lmdb_committer committer;
} lstore;

typedef struct ltx {
  catalog_tx base;
  lstore *s;
  MDB_txn *txn;
} ltx;

static const catalog_side lmdb_side;

static int store_error(int rc, err *e)
{
  return lmdb_error(e, rc, "use the catalog");
}

static int l_get(catalog_tx *t, int space, const void *k, size_t kn, const unsigned char **v,
                 size_t *vn, err *e)
{
  ltx *x = (ltx *)t;
  MDB_val kv = {kn, (void *)k};
  MDB_val vv;
  int rc = mdb_get(x->txn, x->s->dbi[space], &kv, &vv);
  if (rc == MDB_NOTFOUND)
    return ERR_ENTITY_NOT_FOUND;
  if (rc != 0)
    return store_error(rc, e);
  *v = vv.mv_data;
  *vn = vv.mv_size;
  return 0;
}

static int l_put(catalog_tx *t, int space, const void *k, size_t kn, const void *v, size_t vn,
                 err *e)
{
  ltx *x = (ltx *)t;
  MDB_val kv = {kn, (void *)k};
  MDB_val vv = {vn, (void *)v};
  int rc = mdb_put(x->txn, x->s->dbi[space], &kv, &vv, 0);
  return rc != 0 ? store_error(rc, e) : 0;
}

static int l_del(catalog_tx *t, int space, const void *k, size_t kn, err *e)
{
  ltx *x = (ltx *)t;
  MDB_val kv = {kn, (void *)k};
  int rc = mdb_del(x->txn, x->s->dbi[space], &kv, NULL);
  if (rc == MDB_NOTFOUND)
    return ERR_ENTITY_NOT_FOUND;
  return rc != 0 ? store_error(rc, e) : 0;
}

static int l_drop_prefix(catalog_tx *t, int space, const void *prefix, size_t plen, err *e)
{
  ltx *x = (ltx *)t;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(x->txn, x->s->dbi[space], &cur);
  if (rc != 0)
    return store_error(rc, e);
  for (;;) {
    MDB_val k = {plen, (void *)prefix};
    MDB_val v;
    rc = mdb_cursor_get(cur, &k, &v, plen > 0 ? MDB_SET_RANGE : MDB_FIRST);
    if (rc != 0 || k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
      break;
    if ((rc = mdb_cursor_del(cur, 0)) != 0)
      break;
  }
  mdb_cursor_close(cur);
  return rc != 0 && rc != MDB_NOTFOUND ? store_error(rc, e) : 0;
}

static int l_count(catalog_tx *t, int space, uint64_t *n, err *e)
{
  ltx *x = (ltx *)t;
  MDB_stat st;
  int rc = mdb_stat(x->txn, x->s->dbi[space], &st);
  if (rc != 0)
    return store_error(rc, e);
  *n = st.ms_entries;
  return 0;
}

static int l_scan(catalog_tx *t, int space, const void *prefix, size_t plen, const void *from,
                  size_t fn, bool after, catalog_visit visit, void *ctx, err *e)
{
  ltx *x = (ltx *)t;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(x->txn, x->s->dbi[space], &cur);
  if (rc != 0)
    return store_error(rc, e);
  MDB_val k = {fn, (void *)from};
  MDB_val v;
  rc = mdb_cursor_get(cur, &k, &v, fn > 0 ? MDB_SET_RANGE : MDB_FIRST);
  if (rc == 0 && after && k.mv_size == fn && memcmp(k.mv_data, from, fn) == 0)
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  int vrc = 0;
  for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
      break;
    if ((vrc = visit(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size, e)) != 0)
      break;
  }
  mdb_cursor_close(cur);
  if (vrc < 0)
    return vrc;
  return rc != 0 && rc != MDB_NOTFOUND ? store_error(rc, e) : 0;
}

static int l_read_begin(void *impl, catalog_tx **out, err *e)
{
  lstore *s = impl;
  ltx *x = xcalloc(1, sizeof *x);
  x->base.side = &lmdb_side;
  x->s = s;
  if (lmdb_read_begin(s->env, &x->txn, e) != 0) {
    free(x);
    return e->code;
  }
  *out = &x->base;
  return 0;
}

static void l_read_end(void *impl, catalog_tx *t)
{
  (void)impl;
  ltx *x = (ltx *)t;
  mdb_txn_abort(x->txn);
  free(x);
}

typedef struct lchange {
  lmdb_change base;
  int (*fn)(catalog_tx *tx, void *arg, err *e);
  void *arg;
} lchange;

static int apply(void *ctx, lmdb_change *ch, MDB_txn *txn, arena *a, err *e)
{
  (void)a;
  lchange *c = (lchange *)ch;
  ltx x = {.base = {.side = &lmdb_side}, .s = ctx, .txn = txn};
  return c->fn(&x.base, c->arg, e);
}

static int l_write(void *impl, int (*fn)(catalog_tx *tx, void *arg, err *e), void *arg, err *e)
{
  lstore *s = impl;
  lchange c = {.base = {.apply = apply}, .fn = fn, .arg = arg};
  return lmdb_committer_run(&s->committer, &c.base, e);
}

static void l_close(void *impl)
{
  lstore *s = impl;
  if (s == NULL)
    return;
  lmdb_committer_stop(&s->committer);
  mdb_env_close(s->env);
  free(s);
}

static const catalog_side lmdb_side = {
    .get = l_get, .put = l_put, .del = l_del, .drop_prefix = l_drop_prefix, .count = l_count,
    .scan = l_scan, .read_begin = l_read_begin, .read_end = l_read_end, .write = l_write,
    .close = l_close};

int catalog__lmdb_open(const char *data_dir, const catalog_side **side, void **impl, err *e)
{
  lstore *s = xcalloc(1, sizeof *s);
  char *path = xasprintf("%s/catalog", data_dir);
  lmdb_env_options opt = {.map_size = MAP_SIZE, .max_dbs = CS_COUNT};
  int rc = lmdb_env_open(&s->env, path, &opt, "the catalog", e);
  free(path);
  if (rc != 0) {
    free(s);
    return rc;
  }
  MDB_txn *txn;
  if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) == 0) {
    for (int i = 0; i < CS_COUNT && rc == 0; i++)
      rc = mdb_dbi_open(txn, space_names[i], MDB_CREATE, &s->dbi[i]);
    if (rc == 0)
      rc = mdb_txn_commit(txn);
    else
      mdb_txn_abort(txn);
  }
  if (rc != 0) {
    store_error(rc, e);
    mdb_env_close(s->env);
    free(s);
    return e->code;
  }
  lmdb_committer_hooks hooks = {.ctx = s};
  if ((rc = lmdb_committer_start(&s->committer, s->env, &hooks, "the catalog", e)) != 0) {
    mdb_env_close(s->env);
    free(s);
    return rc;
  }
  *side = &lmdb_side;
  *impl = s;
  return 0;
}
