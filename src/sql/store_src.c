/* sql/store_src.c -- the object store as the SQL engine's object source,
 * and sql_run(), the public entry over the store.
 *
 * Why a file of its own: everything else in src/sql reads objects through
 * sql_objsrc only, so tests and tools over a folder link without the store.
 *
 * Invariants:
 *   (1) A listing holds no store transaction between pages: each page is
 *       its own call, continued after the last key seen.
 *   (2) An opened object is a descriptor of its blob, so it reads the bytes
 *       its record described even if the key is overwritten meanwhile.
 */
#include "exec.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

static int store_list(void *ctx, const char *bucket, const char *prefix, objsrc_list_fn fn,
                      void *arg, err *e)
{
  store *s = ctx;
  char *after_copy = NULL;
  int rc = 0;
  for (;;) {
    arena *a = arena_new();
    store_list_params lp = {.prefix = prefix, .after = after_copy,
                            .max_keys = STORE_MAX_LIST_KEYS};
    store_list_result res;
    rc = store_object_list(s, bucket, &lp, a, &res, e);
    if (rc < 0) {
      arena_free(a);
      break;
    }
    for (size_t i = 0; i < res.nobjects && rc == 0; i++)
      rc = fn(arg, res.objects[i].key, res.objects[i].size);
    bool more = res.truncated && res.next_after != NULL && rc == 0;
    free(after_copy);
    after_copy = more ? strdup(res.next_after) : NULL;
    arena_free(a);
    if (!more)
      break;
  }
  free(after_copy);
  return rc;
}

static int store_open_obj(void *ctx, const char *bucket, const char *key, int *fd,
                          uint64_t *size, err *e)
{
  store *s = ctx;
  arena *a = arena_new();
  store_object o;
  int rc = store_object_get(s, bucket, key, a, &o, fd, e);
  if (rc == 0)
    *size = o.size;
  arena_free(a);
  return rc;
}

void sql_objsrc_store(sql_objsrc *out, store *st)
{
  out->ctx = st;
  out->list = store_list;
  out->open = store_open_obj;
}

int sql_run(store *st, const char *sql, const sql_options *opt, sql_sink *sink,
            sql_stats *stats, err *e)
{
  sql_objsrc src;
  sql_objsrc_store(&src, st);
  return sql_run_src(&src, sql, opt, sink, stats, e);
}
