/* store/commit.h -- changes and the group committer. Private to src/store/.
 *
 * A change is a closure over a write transaction. Callers fill one (on their
 * stack), hand it to store__commit_run() and get its own result back once the batch
 * it was applied in is durable. The batching itself is base/lmdb_env.h's group
 * committer; this adds the store's steps around each batch.
 */
#ifndef TARN_STORE_COMMIT_H
#define TARN_STORE_COMMIT_H

#include "internal.h"

#include "base/arena.h"
#include "base/lmdb_env.h"

typedef int (*change_fn)(change *c, MDB_txn *txn, arena *a, err *e);

struct change {
  lmdb_change base;        /* first: the committer's part (rc, e, queue link) */
  store *s;                /* the store */
  change_fn apply;         /* runs on the committer thread, in a nested txn;
                              a is scratch memory released after the batch */
  void *arg;               /* the caller's context for apply */
  const blob_id *sync;     /* a new blob whose directory the commit fsyncs;
                              NULL for none (inline objects, deletes) */
  const store_origin *origin; /* the caller thread's origin (store_origin_set), or NULL */
  bool fed;                /* apply appended to the change feed */
  blob_id *dead;           /* blobs this change de-referenced (heap) */
  size_t ndead;            /* entries in dead */
  size_t capdead;          /* entries allocated */
};

/* A change ready for commit_run. */
void store__change_init(change *c, store *s, change_fn apply, void *arg, const blob_id *sync);

/* Inside apply: records that the index references blob id (kind 'o' for an
 * object, 'p' for a part). */
int store__change_ref_blob(change *c, MDB_txn *txn, const blob_id *id, char kind, err *e);
/* Inside apply: drops the index's reference to id; the file is unlinked
 * after the commit, and only if this change commits. */
int store__change_drop_blob(change *c, MDB_txn *txn, const blob_id *id, err *e);

/* Queues c, waits until it was committed (or failed) and returns its
 * result, its message in e. ERR_UNAVAILABLE once store_close began. */
int store__commit_run(store *s, change *c, err *e);

/* Starts and stops the store's committer (base/lmdb_env.h) with the store's
 * hooks: directories synced before a batch, dropped blobs unlinked and the
 * feed watcher told after it. */
int store__committer_start(store *s, err *e);
void store__committer_stop(store *s);

#endif
