/* store/commit.c -- the group committer: one thread, one write transaction
 * and one sync for every change waiting.
 *
 * Why: a durable LMDB commit costs an fsync or two; with many writers, paying
 * them once per batch instead of once per request is the difference between
 * hundreds and thousands of writes a second.
 *
 * Invariants:
 *   (1) Only the committer thread opens write transactions.
 *   (2) Each change runs in a nested transaction of the batch's: a change
 *       that fails is rolled back alone and the others still commit.
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
 * States of a change: queued -> taken by the committer -> done (rc set).
 * The caller owns the change; the committer must not touch it after done.
 *
 * Start reading at committer_main().
 */
#include "commit.h"

#include "blob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void store__change_init(change *c, store *s, change_fn apply, void *arg, const blob_id *sync)
{
  memset(c, 0, sizeof *c);
  c->s = s;
  c->apply = apply;
  c->arg = arg;
  c->sync = sync;
  c->origin = store__origin_current();
}

int store__change_ref_blob(change *c, MDB_txn *txn, const blob_id *id, char kind, err *e)
{
  MDB_val k = { sizeof id->b, (void *)id->b };
  MDB_val v = { 1, &kind };
  int mrc = mdb_put(txn, c->s->db_blobs, &k, &v, 0);
  return mrc ? store__lmdb_error(e, mrc, "reference a blob") : 0;
}

int store__change_drop_blob(change *c, MDB_txn *txn, const blob_id *id, err *e)
{
  MDB_val k = { sizeof id->b, (void *)id->b };
  int mrc = mdb_del(txn, c->s->db_blobs, &k, NULL);
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    return store__lmdb_error(e, mrc, "drop a blob reference");
  if (c->ndead == c->capdead) {
    size_t cap = c->capdead ? c->capdead * 2 : 4;
    blob_id *p = realloc(c->dead, cap * sizeof *p);
    if (p == NULL)
      abort();
    c->dead = p;
    c->capdead = cap;
  }
  c->dead[c->ndead++] = *id;
  return 0;
}

int store__commit_run(store *s, change *c, err *e)
{
  pthread_mutex_lock(&s->mu);
  if (s->stopping) {
    pthread_mutex_unlock(&s->mu);
    return err_set(e, ERR_UNAVAILABLE, "the store is closing");
  }
  c->next = NULL;
  c->done = false;
  if (s->queue_tail != NULL)
    s->queue_tail->next = c;
  else
    s->queue = c;
  s->queue_tail = c;
  pthread_cond_signal(&s->work);
  while (!c->done)
    pthread_cond_wait(&s->done, &s->mu);
  pthread_mutex_unlock(&s->mu);
  if (c->rc != 0)
    return err_set(e, c->rc, "%s", c->e.msg);
  return 0;
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

/* Fails every change still without a result. */
static void fail_rest(change *batch, int mrc, const char *what)
{
  for (change *c = batch; c != NULL; c = c->next) {
    if (c->rc == 0)
      c->rc = store__lmdb_error(&c->e, mrc, what);
    c->ndead = 0;
  }
}

/* Applies a batch in one transaction. Returns how many changes committed;
 * *committed tells whether a transaction was committed. */
static size_t batch_run(store *s, change *batch, bool *committed)
{
  *committed = false;
  bool dirs[256] = { false };
  for (change *c = batch; c != NULL; c = c->next) {
    c->rc = 0;
    err_clear(&c->e);
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
    for (change *c = batch; c != NULL; c = c->next)
      if (c->sync != NULL && c->sync->b[0] == i && c->rc == 0)
        c->rc = err_set(&c->e, err_from_errno(rc), "cannot sync directory '%s': %s", path,
                        strerror(rc));
  }

  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (mrc != 0) {
    fail_rest(batch, mrc, "begin a write transaction");
    return 0;
  }
  arena *a = arena_new();
  size_t ok = 0;
  for (change *c = batch; c != NULL; c = c->next) {
    if (c->rc != 0)
      continue;
    MDB_txn *child = NULL;
    mrc = mdb_txn_begin(s->env, txn, 0, &child);
    if (mrc != 0) {
      c->rc = store__lmdb_error(&c->e, mrc, "begin a nested transaction");
      continue;
    }
    int rc = c->apply(c, child, a, &c->e);
    if (rc == 0) {
      mrc = mdb_txn_commit(child);
      if (mrc != 0)
        rc = store__lmdb_error(&c->e, mrc, "commit a nested transaction");
    } else {
      mdb_txn_abort(child);
    }
    if (rc != 0) {
      c->rc = rc;
      c->ndead = 0;
    } else {
      ok++;
    }
  }
  if (ok == 0) {
    mdb_txn_abort(txn);
  } else {
    mrc = mdb_txn_commit(txn);
    if (mrc != 0) {
      fail_rest(batch, mrc, "commit");
      ok = 0;
    } else {
      *committed = true;
    }
  }
  arena_free(a);

  for (change *c = batch; c != NULL; c = c->next)
    for (size_t i = 0; c->rc == 0 && i < c->ndead; i++)
      store__blob_unlink(s, &c->dead[i]);
  return ok;
}

static void *committer_main(void *arg)
{
  store *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (s->queue == NULL && !s->stopping)
      pthread_cond_wait(&s->work, &s->mu);
    if (s->queue == NULL)
      break;  /* stopping, and nothing left */
    change *batch = s->queue;
    s->queue = NULL;
    s->queue_tail = NULL;
    pthread_mutex_unlock(&s->mu);

    bool committed = false;
    size_t ok = batch_run(s, batch, &committed);
    bool fed = false;
    for (change *c = batch; committed && c != NULL; c = c->next)
      fed = fed || (c->rc == 0 && c->fed);

    pthread_mutex_lock(&s->mu);
    if (fed && s->feed_watch != NULL)
      s->feed_watch(s->feed_ctx);  /* invariant (6); it only signals */
    s->changes += ok;
    s->commits += committed ? 1 : 0;
    for (change *c = batch, *next = NULL; c != NULL; c = next) {
      next = c->next;
      free(c->dead);
      c->dead = NULL;
      c->ndead = 0;
      c->done = true;  /* from here on c belongs to its caller again */
    }
    pthread_cond_broadcast(&s->done);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int store__committer_start(store *s, err *e)
{
  int rc = pthread_create(&s->committer, NULL, committer_main, s);
  if (rc != 0)
    return err_set(e, ERR_INTERNAL, "cannot start the committer thread: %s", strerror(rc));
  s->committer_running = true;
  return 0;
}
