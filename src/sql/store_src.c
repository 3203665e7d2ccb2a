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
 *       its record described even if the key is overwritten meanwhile. An
 *       inline object (store.h: no blob, at most STORE_INLINE_MAX bytes)
 *       becomes a memfd holding a copy of its bytes.
 */
#include "exec.h"
#include "base/mem.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
    after_copy = more ? xstrdup(res.next_after) : NULL;
    arena_free(a);
    if (!more)
      break;
  }
  free(after_copy);
  return rc;
}

/* A memfd with an inline object's bytes, at offset 0 (invariant (2)). */
static int inline_fd(const store_object *o, int *fd, err *e)
{
  *fd = memfd_create("tarn-inline", MFD_CLOEXEC);
  if (*fd < 0 || (o->size > 0 && write(*fd, o->data, (size_t)o->size) != (ssize_t)o->size) ||
      lseek(*fd, 0, SEEK_SET) != 0) {
    int saved = errno;
    if (*fd >= 0)
      close(*fd);
    *fd = -1;
    return err_set(e, err_from_errno(saved), "cannot read key '%s' in bucket '%s': %s", o->key,
                   o->bucket, strerror(saved));
  }
  return 0;
}

static int store_open_obj(void *ctx, const char *bucket, const char *key, int *fd,
                          uint64_t *size, err *e)
{
  store *s = ctx;
  arena *a = arena_new();
  store_object o;
  int rc = store_object_get(s, bucket, key, a, &o, fd, e);
  if (rc == 0)
    rc = store_object_plain_fd(&o, fd, e);  /* encrypted: its plaintext */
  if (rc != 0 && *fd >= 0) {
    close(*fd);
    *fd = -1;
  }
  if (rc == 0 && *fd < 0)
    rc = inline_fd(&o, fd, e);
  if (rc == 0)
    *size = o.size;
  arena_free(a);
  return rc;
}

/* ---- writing (COPY ... TO): a store_writer per object ---- */

/* Encrypted as the bucket's default says, like a PUT without SSE headers. */
static int store_put_new(void *ctx, const char *bucket, void **w, err *e)
{
  store_writer *sw = NULL;
  int rc = store_writer_new(ctx, &sw, e);
  if (rc == 0 && (rc = store_writer_encrypt_default(ctx, sw, bucket, NULL, e)) != 0)
    sw = store_writer_free(sw);
  *w = sw;
  return rc;
}

static int store_put_write(void *w, const void *p, size_t n, err *e)
{
  return store_writer_write(w, p, n, e);
}

/* Commits as a PUT would (ETag = MD5 of the bytes), so the bucket's
 * ObjectCreated:Put notifications fire. */
static int store_put_commit(void *ctx, void *w, const char *bucket, const char *key, err *e)
{
  (void)ctx;
  uint8_t md5[16];
  store_writer_md5(w, md5);
  char etag[33];
  for (int i = 0; i < 16; i++) {
    etag[2 * i] = "0123456789abcdef"[md5[i] >> 4];
    etag[2 * i + 1] = "0123456789abcdef"[md5[i] & 15];
  }
  etag[32] = 0;
  str_pair meta = {"content-type", "application/octet-stream"};
  arena *a = arena_new();
  int rc = store_object_commit(w, bucket, key, etag, &meta, 1, NULL, 0, a, NULL, e);
  arena_free(a);
  store_writer_free(w);
  return rc;
}

static void store_put_abort(void *w)
{
  store_writer_free(w);
}

void sql__objsrc_store(sql_objsrc *out, store *st)
{
  out->ctx = st;
  out->list = store_list;
  out->open = store_open_obj;
  out->put_new = store_put_new;
  out->put_write = store_put_write;
  out->put_commit = store_put_commit;
  out->put_abort = store_put_abort;
}

/* ---- the caller's permissions (sql_options.access) in front of the store ---- */

typedef struct checked_src {
  store *st;
  const sql_options *opt;
} checked_src;

static int check(const checked_src *c, const char *action, const char *bucket, const char *key,
                 err *e)
{
  char res[2 * STORE_MAX_KEY];
  if (key != NULL)
    snprintf(res, sizeof res, "arn:aws:s3:::%s/%s", bucket, key);
  else
    snprintf(res, sizeof res, "arn:aws:s3:::%s", bucket);
  return c->opt->access(c->opt->access_ctx, action, res, e);
}

static int checked_list(void *ctx, const char *bucket, const char *prefix, objsrc_list_fn fn,
                        void *arg, err *e)
{
  checked_src *c = ctx;
  int rc = check(c, "s3:ListBucket", bucket, NULL, e);
  return rc != 0 ? rc : store_list(c->st, bucket, prefix, fn, arg, e);
}

static int checked_open(void *ctx, const char *bucket, const char *key, int *fd, uint64_t *size,
                        err *e)
{
  checked_src *c = ctx;
  int rc = check(c, "s3:GetObject", bucket, key, e);
  return rc != 0 ? rc : store_open_obj(c->st, bucket, key, fd, size, e);
}

static int checked_put_new(void *ctx, const char *bucket, void **w, err *e)
{
  return store_put_new(((checked_src *)ctx)->st, bucket, w, e);
}

static int checked_put_commit(void *ctx, void *w, const char *bucket, const char *key, err *e)
{
  checked_src *c = ctx;
  int rc = check(c, "s3:PutObject", bucket, key, e);
  if (rc != 0) {
    store_put_abort(w);
    return rc;
  }
  return store_put_commit(c->st, w, bucket, key, e);
}

int sql_run(store *st, const char *sql, const sql_options *opt, sql_sink *sink,
            sql_stats *stats, err *e)
{
  sql_objsrc src;
  sql__objsrc_store(&src, st);
  checked_src c = {.st = st, .opt = opt};
  if (opt != NULL && opt->access != NULL) {
    src.ctx = &c;
    src.list = checked_list;
    src.open = checked_open;
    src.put_new = checked_put_new;
    src.put_commit = checked_put_commit;
  }
  return sql__run_src(&src, sql, opt, sink, stats, e);
}
