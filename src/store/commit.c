/* store/commit.c -- the store's changes on the shared group committer
 * (base/lmdb_env.c): one thread, one write transaction and one sync for every
 * change waiting, plus the store's own steps around each batch.
 *
 * Why: a durable LMDB commit costs an fsync or two; with many writers, paying
 * them once per batch instead of once per request is the difference between
 * hundreds and thousands of writes a second. The batching is shared with the
 * other parts; what is the store's is blobs and the change feed.
 *
 * Invariants (those of base/lmdb_env.c, and):
 *   (3) A change's new blob is in a directory fsync'd before the commit;
 *       the blob itself was fsync'd by the caller (blob.c (3)). A change
 *       without a blob (an inline object, a delete) syncs no directory:
 *       the batch's LMDB commit is its only sync.
 *   (4) De-referenced blobs are unlinked only after the commit succeeded,
 *       and before the callers are woken (so a caller that returns sees
 *       them gone).
 *   (5) After store_close set `stopping`, no change is queued; the thread
 *       drains the queue and exits.
 *   (6) The feed watcher (store_feed_watch) is told after a committed batch
 *       in which a change appended to the change feed, before the callers
 *       are woken: whoever saw the write acknowledged can count on the
 *       watcher having been told.
 *
 * Start reading at store__commit_run().
 */
#include "commit.h"

#include "base/mem.h"

#include "blob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The committer's view of a change: the store's own apply. */
static int apply_change(void *ctx, lmdb_change *base, MDB_txn *txn, arena *a, err *e)
{
  change *c = (change *)base;
  return c->apply(c, txn, a, e);
}

void store__change_init(change *c, store *s, change_fn apply, void *arg, const blob_id *sync)
{
  memset(c, 0, sizeof *c);
  c->s = s;
  c->apply = apply;
  c->arg = arg;
  c->sync = sync;
  c->base.apply = apply_change;
  c->origin = store__origin_current();
}

int store__change_ref_blob(change *c, MDB_txn *txn, const blob_id *id, char kind, err *e)
{
  MDB_val k = { sizeof id->b, (void *)id->b };
  MDB_val v = { 1, &kind };
  int mrc = mdb_put(txn, c->s->db_blobs, &k, &v, 0);
  return mrc ? lmdb_error(e, mrc, "reference a blob") : 0;
}

int store__change_drop_blob(change *c, MDB_txn *txn, const blob_id *id, err *e)
{
  MDB_val k = { sizeof id->b, (void *)id->b };
  int mrc = mdb_del(txn, c->s->db_blobs, &k, NULL);
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    return lmdb_error(e, mrc, "drop a blob reference");
  if (c->ndead == c->capdead) {
    size_t cap = c->capdead ? c->capdead * 2 : 4;
    blob_id *p = xrealloc(c->dead, cap * sizeof *p);
    c->dead = p;
    c->capdead = cap;
  }
  c->dead[c->ndead++] = *id;
  return 0;
}

int store__commit_run(store *s, change *c, err *e)
{
  return lmdb_committer_run(&s->committer, &c->base, e);
}

static int fsync_dir(const char *path)
{
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  int rc = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return rc;
}

/* Before the batch's transaction: invariant (3), the new blobs' directories
 * are synced once each; a change whose directory fails to sync fails. */
static void batch_begin(void *ctx, lmdb_change *batch)
{
  store *s = ctx;
  bool dirs[256] = { false };
  for (lmdb_change *b = batch; b != NULL; b = b->next) {
    change *c = (change *)b;
    c->ndead = 0;
    c->fed = false;
    if (c->sync != NULL)
      dirs[c->sync->b[0]] = true;
  }
  for (unsigned i = 0; i < 256; i++) {
    if (!dirs[i])
      continue;
    char path[BLOB_PATH_MAX];
    store__blob_dir_path(s, i, path);
    int rc = fsync_dir(path);
    if (rc == 0)
      continue;
    for (lmdb_change *b = batch; b != NULL; b = b->next) {
      change *c = (change *)b;
      if (c->sync != NULL && c->sync->b[0] == i && b->rc == 0)
        b->rc = err_set(&b->e, err_from_errno(rc), "cannot sync directory '%s': %s", path,
                        strerror(rc));
    }
  }
}

/* A change rolled back: the blobs it dropped stay referenced. */
static void change_failed(void *ctx, lmdb_change *b)
{
  ((change *)b)->ndead = 0;
}

/* After the commit: invariant (4), then (6). */
static void batch_committed(void *ctx, lmdb_change *batch, bool committed)
{
  store *s = ctx;
  bool fed = false;
  for (lmdb_change *b = batch; b != NULL; b = b->next) {
    change *c = (change *)b;
    for (size_t i = 0; committed && b->rc == 0 && i < c->ndead; i++)
      store__blob_unlink(s, &c->dead[i]);
    fed = fed || (committed && b->rc == 0 && c->fed);
    free(c->dead);
    c->dead = NULL;
    c->ndead = 0;
    c->capdead = 0;
  }
  if (!fed)
    return;
  pthread_mutex_lock(&s->mu);
  if (s->feed_watch != NULL)
    s->feed_watch(s->feed_ctx);  /* it only signals */
  pthread_mutex_unlock(&s->mu);
}

int store__committer_start(store *s, err *e)
{
  lmdb_committer_hooks hooks = {
    .ctx = s,
    .batch_begin = batch_begin,
    .change_failed = change_failed,
    .batch_committed = batch_committed,
  };
  return lmdb_committer_start(&s->committer, s->env, &hooks, "the store", e);
}

void store__committer_stop(store *s)
{
  lmdb_committer_stop(&s->committer);
}
