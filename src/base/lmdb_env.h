/* base/lmdb_env.h -- the one way tarn's parts keep state in LMDB: opening an
 * environment, mapping LMDB's return codes to ERR_* codes, and the group
 * committer.
 *
 * Every part that keeps metadata (store, queue, events, fn, ...) opens its
 * environment with lmdb_env_open() and reports LMDB failures with
 * lmdb_error(), so a full disk reads the same everywhere (ERR_NO_SPACE).
 *
 * The group committer: one thread per environment runs every write, many
 * changes to one write transaction and one sync. A change is a closure over
 * a nested transaction; the caller either waits for its result
 * (lmdb_committer_run) or hands it over with a completion callback
 * (lmdb_committer_submit). The part that owns the committer adds its own
 * steps around each batch through lmdb_committer_hooks (syncing directories
 * before the commit, unlinking files or waking pollers after it).
 *
 * Order of one batch, on the committer thread:
 *   1. hooks.batch_begin (may fail single changes by setting their rc)
 *   2. every change still without an error applies in a nested transaction;
 *      one that fails is rolled back alone (hooks.change_failed)
 *   3. the write transaction commits (one sync)
 *   4. hooks.batch_committed(committed)
 *   5. asynchronous changes complete (they own themselves from then on)
 *   6. hooks.batch_done
 *   7. waiting callers wake
 */
#ifndef TARN_BASE_LMDB_ENV_H
#define TARN_BASE_LMDB_ENV_H

#include "base/arena.h"
#include "base/err.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- environments and errors ---- */

typedef struct lmdb_env_options {
  size_t map_size;        /* bytes of address space (the largest the data may grow) */
  unsigned max_dbs;       /* named databases; 0 for only the unnamed one */
  unsigned max_readers;   /* concurrent read transactions; 0 for LMDB's default */
} lmdb_env_options;

/* Creates the directory path (mode 0700) when missing and opens the
 * environment in it (MDB_NOTLS: read transactions may move between threads),
 * clearing stale reader slots of dead processes. what names it in messages
 * ("the object index"). On failure *out is NULL. */
int lmdb_env_open(MDB_env **out, const char *path, const lmdb_env_options *o, const char *what,
                  err *e);

/* Sets e from an LMDB return code or errno value: a full map or disk is
 * ERR_NO_SPACE, everything else ERR_IO. Returns the code. Message:
 * "cannot WHAT: REASON". */
int lmdb_error(err *e, int mrc, const char *what);

/* Begins a read-only transaction. */
int lmdb_read_begin(MDB_env *env, MDB_txn **txn, err *e);

/* ---- the group committer ---- */

typedef struct lmdb_change lmdb_change;

struct lmdb_change {
  /* Runs on the committer thread in a nested transaction of the batch's;
     a is scratch memory released after the batch. ctx is the hooks' ctx. */
  int (*apply)(void *ctx, lmdb_change *c, MDB_txn *txn, arena *a, err *e);
  /* NULL: a caller waits in lmdb_committer_run. Else the change is
     asynchronous: complete runs on the committer thread once the batch is
     committed (rc set) and owns c from then on. */
  void (*complete)(void *ctx, lmdb_change *c);
  int rc;                 /* the result, set by the committer */
  err e;                  /* its message */
  bool done;              /* the committer finished with this change */
  lmdb_change *next;      /* queue link (the committer's) */
};

typedef struct lmdb_committer_hooks {
  void *ctx;  /* passed to every hook and every apply */
  void (*batch_begin)(void *ctx, lmdb_change *batch);
  void (*change_failed)(void *ctx, lmdb_change *c);
  void (*batch_committed)(void *ctx, lmdb_change *batch, bool committed);
  void (*batch_done)(void *ctx);
} lmdb_committer_hooks;  /* every hook may be NULL */

typedef struct lmdb_committer {
  MDB_env *env;                /* the environment written */
  lmdb_committer_hooks hooks;
  const char *name;            /* in messages: "the store", "the queue service" */
  pthread_mutex_t mu;          /* guards the fields below */
  pthread_cond_t work;         /* the thread waits: change queued, or stop */
  pthread_cond_t done;         /* callers wait: a batch finished */
  lmdb_change *queue;          /* changes waiting, FIFO */
  lmdb_change *queue_tail;     /* last of queue, NULL when empty */
  bool stopping;               /* no new changes */
  bool running;                /* the thread was started (join it) */
  pthread_t thread;
  uint64_t changes;            /* changes committed since start */
  uint64_t commits;            /* write transactions committed since start */
} lmdb_committer;

/* Starts the committer thread over env. name must outlive the committer. */
int lmdb_committer_start(lmdb_committer *c, MDB_env *env, const lmdb_committer_hooks *hooks,
                         const char *name, err *e);
/* Refuses new changes, runs those queued, joins the thread. Accepts a
 * committer that was never started (zeroed) or already stopped; later
 * calls to run or submit are refused. */
void lmdb_committer_stop(lmdb_committer *c);
/* Queues ch (complete == NULL) and waits for its result: 0, or its code with
 * its message in e. ERR_UNAVAILABLE once the committer is stopping. */
int lmdb_committer_run(lmdb_committer *c, lmdb_change *ch, err *e);
/* Queues an asynchronous change (complete != NULL); false when the
 * committer is stopping (then complete is never called). */
bool lmdb_committer_submit(lmdb_committer *c, lmdb_change *ch);
/* Counters since start. */
void lmdb_committer_stats(lmdb_committer *c, uint64_t *changes, uint64_t *commits);

/* ---- change lists ----
 * The common change: puts and deletes of whole values, collected by the
 * caller and applied in order in one nested transaction of a group commit,
 * so they land together or not at all. Used by the parts whose state is a
 * set of keyed records (flow's steps, batch jobs' task progress). */

typedef struct lmdb_op {
  MDB_dbi dbi;
  char *key;              /* malloc'd */
  size_t klen;
  char *val;              /* malloc'd; NULL: delete (a missing key is no error) */
  size_t vlen;
} lmdb_op;

typedef struct lmdb_ops {
  lmdb_change base;       /* first member: what the committer queues */
  lmdb_op *ops;
  size_t n;
  size_t cap;
  const char *what;       /* in messages: "write the workflow state" */
} lmdb_ops;

/* Adds a put of a copy of key and of val. */
void lmdb_ops_put(lmdb_ops *o, MDB_dbi dbi, const void *key, size_t klen, const void *val,
                  size_t vlen);
/* Adds a put that takes val (malloc'd, vlen bytes): the list frees it. */
void lmdb_ops_put_owned(lmdb_ops *o, MDB_dbi dbi, const void *key, size_t klen, char *val,
                        size_t vlen);
void lmdb_ops_del(lmdb_ops *o, MDB_dbi dbi, const void *key, size_t klen);
/* Frees the operations; the list is empty and reusable after. */
void lmdb_ops_release(lmdb_ops *o);
/* Commits the list through c and waits (lmdb_committer_run); the list is
 * released either way. */
int lmdb_ops_commit(lmdb_committer *c, lmdb_ops *o, err *e);

#endif
