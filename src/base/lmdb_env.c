/* base/lmdb_env.c -- opening LMDB environments, mapping their errors, and the
 * group committer that every part with durable state shares.
 *
 * Why: a durable LMDB commit costs an fsync or two; with many writers,
 * paying them once per batch instead of once per request is the difference
 * between hundreds and thousands of writes a second. The store, the queues
 * and every later part need the same machinery with the same guarantees, so
 * it lives here once; a part adds its own steps through hooks (lmdb.h).
 *
 * Invariants:
 *   (1) Only the committer thread opens write transactions on its env.
 *   (2) Each change runs in a nested transaction of the batch's: a change
 *       that fails is rolled back alone and the others still commit.
 *   (3) batch_committed and batch_done run after the commit and before any
 *       waiting caller of the batch wakes; asynchronous changes complete
 *       between the two (a poll registers as a waiter before the wake-ups of
 *       its own batch run, so none is missed).
 *   (4) After lmdb_committer_stop began, no change is queued; the thread
 *       drains the queue and exits.
 *
 * States of a change: queued -> taken by the committer -> done (rc set).
 * The caller owns a synchronous change; the committer must not touch it
 * after done. An asynchronous change belongs to its complete callback.
 *
 * Start reading at committer_main().
 */
#include "base/lmdb_env.h"
#include "base/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- environments and errors ---- */

int lmdb_error(err *e, int mrc, const char *what)
{
  int code = ERR_IO;
  if (mrc == MDB_MAP_FULL || mrc == ENOSPC || mrc == EDQUOT)
    code = ERR_NO_SPACE;
  return err_set(e, code, "cannot %s: %s", what, mdb_strerror(mrc));
}

int lmdb_read_begin(MDB_env *env, MDB_txn **txn, err *e)
{
  int mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, txn);
  return mrc ? lmdb_error(e, mrc, "begin a read transaction") : 0;
}

int lmdb_env_open(MDB_env **out, const char *path, const lmdb_env_options *o, const char *what,
                  err *e)
{
  *out = NULL;
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    int saved = errno;
    return err_set(e, saved == ENOSPC ? ERR_NO_SPACE : ERR_IO,
                   "cannot create directory '%s' for %s: %s", path, what, strerror(saved));
  }
  MDB_env *env = NULL;
  int mrc = mdb_env_create(&env);
  if (mrc == 0 && o->map_size > 0)
    mrc = mdb_env_set_mapsize(env, o->map_size);
  if (mrc == 0 && o->max_dbs > 0)
    mrc = mdb_env_set_maxdbs(env, o->max_dbs);
  if (mrc == 0 && o->max_readers > 0)
    mrc = mdb_env_set_maxreaders(env, o->max_readers);
  if (mrc == 0)
    mrc = mdb_env_open(env, path, MDB_NOTLS, 0600);
  if (mrc != 0) {
    if (env != NULL)
      mdb_env_close(env);
    int code = lmdb_error(e, mrc, "open");
    return err_set(e, code, "cannot open %s '%s': %s", what, path, mdb_strerror(mrc));
  }
  int dead = 0;
  mdb_reader_check(env, &dead);
  *out = env;
  return 0;
}

/* ---- the group committer ---- */

static void enqueue_locked(lmdb_committer *c, lmdb_change *ch)
{
  ch->next = NULL;
  ch->done = false;
  if (c->queue_tail != NULL)
    c->queue_tail->next = ch;
  else
    c->queue = ch;
  c->queue_tail = ch;
  pthread_cond_signal(&c->work);
}

int lmdb_committer_run(lmdb_committer *c, lmdb_change *ch, err *e)
{
  ch->complete = NULL;
  pthread_mutex_lock(&c->mu);
  if (c->stopping || !c->running) {
    pthread_mutex_unlock(&c->mu);
    return err_set(e, ERR_UNAVAILABLE, "%s is stopping", c->name);
  }
  enqueue_locked(c, ch);
  while (!ch->done)
    pthread_cond_wait(&c->done, &c->mu);
  pthread_mutex_unlock(&c->mu);
  if (ch->rc != 0)
    return err_set(e, ch->rc, "%s", ch->e.msg);
  return 0;
}

bool lmdb_committer_submit(lmdb_committer *c, lmdb_change *ch)
{
  pthread_mutex_lock(&c->mu);
  bool ok = !c->stopping && c->running;
  if (ok)
    enqueue_locked(c, ch);
  pthread_mutex_unlock(&c->mu);
  return ok;
}

void lmdb_committer_stats(lmdb_committer *c, uint64_t *changes, uint64_t *commits)
{
  pthread_mutex_lock(&c->mu);
  *changes = c->changes;
  *commits = c->commits;
  pthread_mutex_unlock(&c->mu);
}

/* Fails every change still without a result. */
static void fail_rest(lmdb_committer *c, lmdb_change *batch, int mrc, const char *what)
{
  for (lmdb_change *ch = batch; ch != NULL; ch = ch->next) {
    if (ch->rc != 0)
      continue;
    ch->rc = lmdb_error(&ch->e, mrc, what);
    if (c->hooks.change_failed != NULL)
      c->hooks.change_failed(c->hooks.ctx, ch);
  }
}

/* Applies a batch in one transaction. Returns how many changes committed;
 * *committed tells whether a transaction was committed. */
static size_t batch_run(lmdb_committer *c, lmdb_change *batch, bool *committed)
{
  *committed = false;
  for (lmdb_change *ch = batch; ch != NULL; ch = ch->next) {
    ch->rc = 0;
    err_clear(&ch->e);
  }
  if (c->hooks.batch_begin != NULL)
    c->hooks.batch_begin(c->hooks.ctx, batch);

  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(c->env, NULL, 0, &txn);
  if (mrc != 0) {
    fail_rest(c, batch, mrc, "begin a write transaction");
    return 0;
  }
  arena *a = arena_new();
  size_t ok = 0;
  for (lmdb_change *ch = batch; ch != NULL; ch = ch->next) {
    if (ch->rc != 0)
      continue;  /* failed in batch_begin */
    MDB_txn *child = NULL;
    mrc = mdb_txn_begin(c->env, txn, 0, &child);
    int rc;
    if (mrc != 0) {
      rc = lmdb_error(&ch->e, mrc, "begin a nested transaction");
    } else {
      rc = ch->apply(c->hooks.ctx, ch, child, a, &ch->e);
      if (rc == 0) {
        mrc = mdb_txn_commit(child);
        if (mrc != 0)
          rc = lmdb_error(&ch->e, mrc, "commit a nested transaction");
      } else {
        mdb_txn_abort(child);
      }
    }
    if (rc != 0) {
      ch->rc = rc;
      if (c->hooks.change_failed != NULL)
        c->hooks.change_failed(c->hooks.ctx, ch);
    } else {
      ok++;
    }
  }
  if (ok == 0) {
    mdb_txn_abort(txn);
  } else {
    mrc = mdb_txn_commit(txn);
    if (mrc != 0) {
      fail_rest(c, batch, mrc, "commit");
      ok = 0;
    } else {
      *committed = true;
    }
  }
  arena_free(a);
  return ok;
}

static void *committer_main(void *arg)
{
  lmdb_committer *c = arg;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (c->queue == NULL && !c->stopping)
      pthread_cond_wait(&c->work, &c->mu);
    if (c->queue == NULL)
      break;  /* stopping, and nothing left */
    lmdb_change *batch = c->queue;
    c->queue = NULL;
    c->queue_tail = NULL;
    pthread_mutex_unlock(&c->mu);

    bool committed = false;
    size_t ok = batch_run(c, batch, &committed);
    if (c->hooks.batch_committed != NULL)
      c->hooks.batch_committed(c->hooks.ctx, batch, committed);
    /* (3): asynchronous changes complete first */
    lmdb_change *waiting = NULL;
    for (lmdb_change *ch = batch, *next = NULL; ch != NULL; ch = next) {
      next = ch->next;
      if (ch->complete != NULL) {
        ch->complete(c->hooks.ctx, ch);
      } else {
        ch->next = waiting;
        waiting = ch;
      }
    }
    if (c->hooks.batch_done != NULL)
      c->hooks.batch_done(c->hooks.ctx);

    pthread_mutex_lock(&c->mu);
    c->changes += ok;
    c->commits += committed ? 1 : 0;
    for (lmdb_change *ch = waiting; ch != NULL; ch = ch->next)
      ch->done = true;  /* from here on ch belongs to its caller again */
    pthread_cond_broadcast(&c->done);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

int lmdb_committer_start(lmdb_committer *c, MDB_env *env, const lmdb_committer_hooks *hooks,
                         const char *name, err *e)
{
  memset(c, 0, sizeof *c);
  c->env = env;
  if (hooks != NULL)
    c->hooks = *hooks;
  c->name = name;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->work, NULL);
  pthread_cond_init(&c->done, NULL);
  int rc = pthread_create(&c->thread, NULL, committer_main, c);
  if (rc != 0) {
    pthread_cond_destroy(&c->work);
    pthread_cond_destroy(&c->done);
    pthread_mutex_destroy(&c->mu);
    c->name = NULL;
    return err_set(e, ERR_INTERNAL, "cannot start the committer of %s: %s", name, strerror(rc));
  }
  pthread_mutex_lock(&c->mu);
  c->running = true;
  pthread_mutex_unlock(&c->mu);
  return 0;
}

void lmdb_committer_stop(lmdb_committer *c)
{
  if (c->name == NULL)
    return;  /* never started */
  pthread_mutex_lock(&c->mu);
  bool running = c->running;
  c->stopping = true;
  pthread_cond_broadcast(&c->work);
  pthread_mutex_unlock(&c->mu);
  if (running)
    pthread_join(c->thread, NULL);
  pthread_mutex_lock(&c->mu);
  c->running = false;
  pthread_mutex_unlock(&c->mu);
  /* mu and the conditions stay valid: late callers are refused, not crashed */
}

/* ---- change lists ---- */

static lmdb_op *ops_add(lmdb_ops *o, MDB_dbi dbi, const void *key, size_t klen)
{
  if (o->n == o->cap) {
    o->cap = o->cap ? o->cap * 2 : 8;
    o->ops = xrealloc(o->ops, o->cap * sizeof *o->ops);
  }
  lmdb_op *op = &o->ops[o->n++];
  memset(op, 0, sizeof *op);
  op->dbi = dbi;
  op->key = xmalloc(klen ? klen : 1);
  memcpy(op->key, key, klen);
  op->klen = klen;
  return op;
}

void lmdb_ops_put(lmdb_ops *o, MDB_dbi dbi, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
  lmdb_op *op = ops_add(o, dbi, key, klen);
  op->val = xmalloc(vlen ? vlen : 1);
  memcpy(op->val, val, vlen);
  op->vlen = vlen;
}

void lmdb_ops_put_owned(lmdb_ops *o, MDB_dbi dbi, const void *key, size_t klen, char *val,
                        size_t vlen)
{
  lmdb_op *op = ops_add(o, dbi, key, klen);
  op->val = val;
  op->vlen = vlen;
}

void lmdb_ops_del(lmdb_ops *o, MDB_dbi dbi, const void *key, size_t klen)
{
  ops_add(o, dbi, key, klen);
}

void lmdb_ops_release(lmdb_ops *o)
{
  for (size_t i = 0; i < o->n; i++) {
    free(o->ops[i].key);
    free(o->ops[i].val);
  }
  free(o->ops);
  o->ops = NULL;
  o->n = o->cap = 0;
}

static int ops_apply(void *ctx, lmdb_change *base, MDB_txn *txn, arena *a, err *e)
{
  (void)ctx;
  (void)a;
  lmdb_ops *o = (lmdb_ops *)base;
  for (size_t i = 0; i < o->n; i++) {
    lmdb_op *op = &o->ops[i];
    MDB_val k = {op->klen, op->key};
    int mrc;
    if (op->val != NULL) {
      MDB_val v = {op->vlen, op->val};
      mrc = mdb_put(txn, op->dbi, &k, &v, 0);
    } else {
      mrc = mdb_del(txn, op->dbi, &k, NULL);
      if (mrc == MDB_NOTFOUND)
        mrc = 0;
    }
    if (mrc != 0)
      return lmdb_error(e, mrc, o->what != NULL ? o->what : "write the state");
  }
  return 0;
}

int lmdb_ops_commit(lmdb_committer *c, lmdb_ops *o, err *e)
{
  o->base.apply = ops_apply;
  o->base.complete = NULL;
  int rc = lmdb_committer_run(c, &o->base, e);
  lmdb_ops_release(o);
  return rc;
}
