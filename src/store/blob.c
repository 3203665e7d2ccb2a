/* store/blob.c -- blob files: their names, the writer, the in-flight set.
 *
 * Why: object bytes live in files named by the store, never by user keys, and
 * are never rewritten in place, so a reader holding a descriptor always sees
 * the bytes its record described.
 *
 * Invariants:
 *   (1) A blob is added to the in-flight set before its file exists and
 *       removed only after the commit that references it returned, or after
 *       its file was unlinked. The sweep never removes a blob in flight.
 *   (2) The writer writes to the final name (O_EXCL); until a commit
 *       references the blob the file is garbage, removed by
 *       store_writer_free (or, after a crash, by the start-up sweep).
 *   (3) A blob is fsync'd (writer_finish) before a change referencing it is
 *       queued; the committer fsyncs its directory before the LMDB commit.
 *   (4) Blobs are immutable once finished: copies are hard links.
 *   (5) A writer holds its first STORE_INLINE_MAX bytes in memory (head)
 *       and creates its blob only when a write would go past them, or when
 *       a part is committed (writer_finish(need_blob)); the head is then
 *       written to the file first. So an object that stays small never has
 *       a file, and no file is ever created and then left for the sweep
 *       because its object turned out small.
 *   (6) An encrypting writer (store_writer_encrypt, crypt.c) creates its
 *       blob at once and never holds bytes in head: size and md5 count the
 *       plaintext, the file holds the segment (header, chunks and tags),
 *       the last partial chunk written by writer_finish.
 *   (7) With an object backend (remote.c), an object's blob is staged: not
 *       fsync'd, since the backend's answer to its upload is its durability
 *       point and the file is removed before the commit. A writer told
 *       its size (store_writer_expect) uploads the file while it grows
 *       (remote.c (9)); one never committed gives that upload up.
 *
 * Start reading at store_writer_new().
 */
#include "blob.h"

#include "crypt.h"
#include "remote.h"

#include "base/hash.h"
#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void store__blob_dir_path(const store *s, unsigned xx, char out[BLOB_PATH_MAX])
{
  snprintf(out, BLOB_PATH_MAX, "%s/blobs/%02x", s->dir, xx & 0xffu);
}

void store__blob_path(const store *s, const blob_id *id, char out[BLOB_PATH_MAX])
{
  char hex[33];
  hex_encode(id->b, sizeof id->b, hex);
  snprintf(out, BLOB_PATH_MAX, "%s/blobs/%.2s/%s", s->dir, hex, hex);
}

int store__blob_unlink(const store *s, const blob_id *id)
{
  char path[BLOB_PATH_MAX];
  store__blob_path(s, id, path);
  if (unlink(path) == 0)
    return 0;
  int saved = errno;
  if (saved != ENOENT || s->remote == NULL)
    return -saved;
  store__remote_delete_later((store *)s, id);  /* no local file: remote.c (2), (5) */
  return 0;
}

/* ---- the in-flight set ---- */

int store__blob_id_cmp(const void *a, const void *b)
{
  return memcmp(a, b, sizeof(blob_id));
}

void store__fly_add(store *s, const blob_id *id)
{
  pthread_mutex_lock(&s->fly_mu);
  if (s->nfly == s->capfly) {
    size_t cap = s->capfly ? s->capfly * 2 : 64;
    blob_id *p = xrealloc(s->fly, cap * sizeof *p);
    s->fly = p;
    s->capfly = cap;
  }
  s->fly[s->nfly++] = *id;
  pthread_mutex_unlock(&s->fly_mu);
}

void store__fly_del(store *s, const blob_id *id)
{
  pthread_mutex_lock(&s->fly_mu);
  for (size_t i = 0; i < s->nfly; i++) {
    if (store__blob_id_cmp(&s->fly[i], id) == 0) {
      s->fly[i] = s->fly[--s->nfly];
      break;
    }
  }
  pthread_mutex_unlock(&s->fly_mu);
}

blob_id *store__fly_snapshot(store *s, size_t *n)
{
  pthread_mutex_lock(&s->fly_mu);
  blob_id *p = xmalloc((s->nfly + 1) * sizeof *p);
  if (s->nfly > 0)
    memcpy(p, s->fly, s->nfly * sizeof *p);
  *n = s->nfly;
  pthread_mutex_unlock(&s->fly_mu);
  qsort(p, *n, sizeof *p, store__blob_id_cmp);
  return p;
}

/* ---- the writer ---- */

int store_writer_new(store *s, store_writer **out, err *e)
{
  (void)e;  /* nothing can fail before the first byte past the head */
  store_writer *w = xcalloc(1, sizeof *w);
  w->s = s;
  w->fd = -1;
  w->md5 = EVP_MD_CTX_new();
  if (w->md5 == NULL || EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1)
    abort();
  *out = w;
  return 0;
}

static int write_all(int fd, const void *p, size_t n, err *e)
{
  const char *c = p;
  while (n > 0) {
    ssize_t r = write(fd, c, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int saved = errno;
      return err_set(e, err_from_errno(saved), "cannot write blob: %s", strerror(saved));
    }
    c += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Creates the writer's blob (in flight first, invariant (1)) and moves the
 * bytes held in head into it (invariant (5)). */
static int blob_create(store_writer *w, err *e)
{
  char path[BLOB_PATH_MAX];
  for (int attempt = 0; w->fd < 0; attempt++) {
    random_bytes(w->id.b, sizeof w->id.b);
    store__fly_add(w->s, &w->id);
    store__blob_path(w->s, &w->id, path);
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd >= 0)
      break;
    int saved = errno;
    store__fly_del(w->s, &w->id);
    if (saved != EEXIST || attempt == 3)
      return err_set(e, err_from_errno(saved), "cannot create blob '%s': %s", path,
                     strerror(saved));
  }
  w->has_blob = true;
  int rc = write_all(w->fd, w->head, (size_t)w->size, e);
  if (rc == 0 && w->s->remote != NULL && w->expect > 0 && w->crypt == NULL) {
    w->tail = store__remote_tail_start(w->s, &w->id, w->expect);  /* remote.c (9) */
    if (w->tail != NULL)
      store__remote_tail_grow(w->tail, w->size);
  }
  return rc;
}

void store_writer_expect(store_writer *w, uint64_t size)
{
  if (w->crypt == NULL && !w->has_blob)
    w->expect = size;
}

/* crypt_emit_fn: ciphertext to the writer's blob. */
static int emit_blob(void *ctx, const void *p, size_t n, err *e)
{
  store_writer *w = ctx;
  return write_all(w->fd, p, n, e);
}

int store_writer_encrypt(store_writer *w, const char *sealed, const uint8_t *customer_key,
                         err *e)
{
  if (w->consumed || w->size > 0 || w->crypt != NULL)
    return err_set(e, ERR_INVALID, "a writer is encrypted before its first byte");
  struct store_crypt k;
  int rc = store__crypt_open(w->s, sealed, customer_key, &k, e);
  if (rc != 0)
    return rc;
  rc = blob_create(w, e);  /* crypt.c (3): never inline */
  if (rc != 0) {
    memset(&k, 0, sizeof k);
    return rc;
  }
  w->crypt = store__crypt_wr_new(&k);
  memset(&k, 0, sizeof k);
  w->sealed = xstrdup(sealed);
  return store__crypt_wr_head(w->crypt, emit_blob, w, e);
}

void store_writer_etag_md5(const store_writer *w, uint8_t out[16])
{
  uint8_t md5[16];
  store_writer_md5(w, md5);
  store__crypt_etag(w->crypt, md5, out);
}

int store_writer_write(store_writer *w, const void *p, size_t n, err *e)
{
  if (w->consumed)
    return err_set(e, ERR_INVALID, "writer already committed");
  if (n > STORE_MAX_OBJECT_SIZE - w->size)
    return err_set(e, ERR_ENTITY_TOO_LARGE, "object larger than the maximum of %llu bytes",
                   (unsigned long long)STORE_MAX_OBJECT_SIZE);
  int rc = 0;
  if (w->crypt != NULL) {
    rc = store__crypt_wr_feed(w->crypt, p, n, emit_blob, w, e);
    if (rc != 0)
      return rc;
  } else if (!w->has_blob && n <= STORE_INLINE_MAX - w->size) {
    if (n > 0)
      memcpy(w->head + w->size, p, n);
  } else {
    if (!w->has_blob)
      rc = blob_create(w, e);
    if (rc == 0)
      rc = write_all(w->fd, p, n, e);
    if (rc != 0)
      return rc;
    if (w->tail != NULL)
      store__remote_tail_grow(w->tail, w->size + n);
  }
  if (n > 0 && EVP_DigestUpdate(w->md5, p, n) != 1)
    abort();
  w->size += n;
  return 0;
}

uint64_t store_writer_size(const store_writer *w)
{
  return w->size;
}

void store_writer_md5(const store_writer *w, uint8_t out[16])
{
  EVP_MD_CTX *copy = EVP_MD_CTX_new();
  unsigned len = 0;
  if (copy == NULL || EVP_MD_CTX_copy_ex(copy, w->md5) != 1 ||
      EVP_DigestFinal_ex(copy, out, &len) != 1)
    abort();
  EVP_MD_CTX_free(copy);
}

int store__writer_finish(store_writer *w, bool need_blob, err *e)
{
  if (w->consumed)
    return err_set(e, ERR_INVALID, "writer already committed");
  w->consumed = true;
  int rc = 0;
  if (need_blob && !w->has_blob)
    rc = blob_create(w, e);
  if (!w->has_blob)
    return rc;
  if (rc == 0 && w->crypt != NULL)
    rc = store__crypt_wr_end(w->crypt, emit_blob, w, e);
  if (rc == 0 && !w->staged && fsync(w->fd) != 0) {
    int saved = errno;
    rc = err_set(e, err_from_errno(saved), "cannot sync blob: %s", strerror(saved));
  }
  if (close(w->fd) != 0 && rc == 0) {
    int saved = errno;
    rc = err_set(e, err_from_errno(saved), "cannot close blob: %s", strerror(saved));
  }
  w->fd = -1;
  return rc;
}

store_writer *store_writer_free(store_writer *w)
{
  if (w == NULL)
    return NULL;
  if (w->fd >= 0)
    close(w->fd);
  if (w->tail != NULL) {  /* never committed: remote.c (9) */
    err ignored;
    err_clear(&ignored);
    store__remote_tail_end(w->tail, false, &ignored);
  }
  if (w->has_blob) {
    if (!w->committed)
      store__blob_unlink(w->s, &w->id);
    store__fly_del(w->s, &w->id);
  }
  EVP_MD_CTX_free(w->md5);
  store__crypt_wr_free(w->crypt);
  free(w->sealed);
  free(w);
  return NULL;
}
