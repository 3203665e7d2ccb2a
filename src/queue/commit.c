/* queue/commit.c -- the group committer: one thread, one write transaction
 * and one sync for every change waiting.
 *
 * Why: SendMessage is acknowledged only once durable, and an fsync per
 * message would cap a queue at a few hundred messages a second. Concurrent
 * sends, receives and deletes share one commit instead (as store/commit.c).
 * Long polls use the same thread: a poll's receive is an asynchronous change,
 * so a wake-up costs no thread of its own.
 *
 * Invariants:
 *   (1) Only the committer thread opens write transactions.
 *   (2) Each change runs in a nested transaction of the batch's: a change
 *       that fails is rolled back alone and the others still commit.
 *   (3) A change's notes (wake-ups, outbox entries) take effect only if it
 *       committed, and before any caller of the batch is woken.
 *   (4) Asynchronous changes complete first, then notes run, then waiting
 *       callers wake: a poll that found nothing registers as a waiter before
 *       the wake-ups of sends in its own batch run, so none is missed.
 *   (5) After stop, no change is queued; the thread drains the queue and
 *       exits.
 *
 * Start reading at committer_main().
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void queue__change_init(qchange *c, qchange_fn apply, void *arg)
{
  memset(c, 0, sizeof *c);
  c->apply = apply;
  c->arg = arg;
}

int queue__note(qchange *c, enum qnote_kind kind, uint64_t a, uint64_t b)
{
  for (size_t i = 0; i < c->nnotes; i++) {
    qnote *n = &c->notes[i];
    if (n->kind == kind && kind == NOTE_WAKE && n->a == a) {
      n->b = (n->b == UINT64_MAX || b == UINT64_MAX) ? UINT64_MAX : n->b + b;
      return 0;
    }
    if (n->kind == kind && kind == NOTE_TIMER)
      return 0;
  }
  if (c->nnotes == c->capnotes) {
    size_t cap = c->capnotes ? c->capnotes * 2 : 4;
    qnote *p = realloc(c->notes, cap * sizeof *p);
    if (p == NULL)
      abort();
    c->notes = p;
    c->capnotes = cap;
  }
  c->notes[c->nnotes++] = (qnote){kind, a, b};
  return 0;
}

static void enqueue_locked(queue_system *q, qchange *c)
{
  c->next = NULL;
  c->done = false;
  if (q->cq_tail != NULL)
    q->cq_tail->next = c;
  else
    q->cq = c;
  q->cq_tail = c;
  pthread_cond_signal(&q->cwork);
}

int queue__commit_run(queue_system *q, qchange *c, err *e)
{
  pthread_mutex_lock(&q->cmu);
  if (q->cstopping || !q->committer_running) {
    pthread_mutex_unlock(&q->cmu);
    return err_set(e, ERR_UNAVAILABLE, "the queue service is stopping");
  }
  c->complete = NULL;
  enqueue_locked(q, c);
  while (!c->done)
    pthread_cond_wait(&q->cdone, &q->cmu);
  pthread_mutex_unlock(&q->cmu);
  if (c->rc != 0)
    return err_set(e, c->rc, "%s", c->e.msg);
  return 0;
}

bool queue__commit_submit(queue_system *q, qchange *c)
{
  pthread_mutex_lock(&q->cmu);
  bool ok = !q->cstopping && q->committer_running;
  if (ok)
    enqueue_locked(q, c);
  pthread_mutex_unlock(&q->cmu);
  return ok;
}

static void fail_all(qchange *batch, int mrc, const char *what)
{
  for (qchange *c = batch; c != NULL; c = c->next) {
    if (c->rc == 0)
      c->rc = queue__lmdb_error(&c->e, mrc, what);
    c->nnotes = 0;
  }
}

/* Applies a batch in one transaction; returns whether it committed. */
static bool batch_run(queue_system *q, qchange *batch)
{
  for (qchange *c = batch; c != NULL; c = c->next) {
    c->rc = 0;
    err_clear(&c->e);
    c->nnotes = 0;
  }
  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(q->env, NULL, 0, &txn);
  if (mrc != 0) {
    fail_all(batch, mrc, "begin a write transaction");
    return false;
  }
  arena *a = arena_new();
  size_t ok = 0;
  for (qchange *c = batch; c != NULL; c = c->next) {
    MDB_txn *child = NULL;
    mrc = mdb_txn_begin(q->env, txn, 0, &child);
    if (mrc != 0) {
      c->rc = queue__lmdb_error(&c->e, mrc, "begin a nested transaction");
      continue;
    }
    int rc = c->apply(q, c, child, a, &c->e);
    if (rc == 0) {
      mrc = mdb_txn_commit(child);
      if (mrc != 0)
        rc = queue__lmdb_error(&c->e, mrc, "commit a nested transaction");
    } else {
      mdb_txn_abort(child);
    }
    if (rc != 0) {
      c->rc = rc;
      c->nnotes = 0;
    } else {
      ok++;
    }
  }
  bool committed = false;
  if (ok == 0) {
    mdb_txn_abort(txn);
  } else {
    mrc = mdb_txn_commit(txn);
    if (mrc != 0)
      fail_all(batch, mrc, "commit");
    else
      committed = true;
  }
  arena_free(a);
  return committed;
}

static void *committer_main(void *arg)
{
  queue_system *q = arg;
  qnote *notes = NULL;
  size_t capnotes = 0;
  pthread_mutex_lock(&q->cmu);
  for (;;) {
    while (q->cq == NULL && !q->cstopping)
      pthread_cond_wait(&q->cwork, &q->cmu);
    if (q->cq == NULL)
      break;
    qchange *batch = q->cq;
    q->cq = NULL;
    q->cq_tail = NULL;
    pthread_mutex_unlock(&q->cmu);

    bool committed = batch_run(q, batch);

    /* (3): gather the notes of what committed before anyone owns a change again */
    size_t nnotes = 0;
    for (qchange *c = batch; c != NULL; c = c->next) {
      if (committed && c->rc == 0) {
        if (nnotes + c->nnotes > capnotes) {
          capnotes = (nnotes + c->nnotes) * 2;
          notes = realloc(notes, capnotes * sizeof *notes);
          if (notes == NULL)
            abort();
        }
        if (c->nnotes > 0)
          memcpy(notes + nnotes, c->notes, c->nnotes * sizeof *notes);
        nnotes += c->nnotes;
      }
      free(c->notes);
      c->notes = NULL;
      c->nnotes = 0;
      c->capnotes = 0;
    }
    /* (4): asynchronous changes complete first */
    qchange *sync_list = NULL;
    for (qchange *c = batch, *next = NULL; c != NULL; c = next) {
      next = c->next;
      if (c->complete != NULL) {
        c->complete(q, c);
      } else {
        c->next = sync_list;
        sync_list = c;
      }
    }
    bool timer = false;
    for (size_t i = 0; i < nnotes; i++) {
      switch (notes[i].kind) {
      case NOTE_WAKE:
        queue__polls_wake(q, notes[i].a, notes[i].b);
        timer = true;
        break;
      case NOTE_TIMER:
        timer = true;
        break;
      case NOTE_OUTBOX:
        queue__deliver_schedule(q, notes[i].a, 0, 0);
        break;
      }
    }
    if (timer)
      queue__timer_kick(q);

    pthread_mutex_lock(&q->cmu);
    for (qchange *c = sync_list; c != NULL; c = c->next)
      c->done = true;  /* from here on c belongs to its caller again */
    pthread_cond_broadcast(&q->cdone);
  }
  pthread_mutex_unlock(&q->cmu);
  free(notes);
  return NULL;
}

int queue__committer_start(queue_system *q, err *e)
{
  int rc = pthread_create(&q->committer, NULL, committer_main, q);
  if (rc != 0)
    return err_set(e, ERR_INTERNAL, "cannot start the queue committer: %s", strerror(rc));
  pthread_mutex_lock(&q->cmu);
  q->committer_running = true;
  pthread_mutex_unlock(&q->cmu);
  return 0;
}

void queue__committer_stop(queue_system *q)
{
  pthread_mutex_lock(&q->cmu);
  bool running = q->committer_running;
  q->cstopping = true;
  pthread_cond_broadcast(&q->cwork);
  pthread_mutex_unlock(&q->cmu);
  if (running)
    pthread_join(q->committer, NULL);
  pthread_mutex_lock(&q->cmu);
  q->committer_running = false;
  pthread_mutex_unlock(&q->cmu);
}
