/* queue/commit.c -- the queue service's changes on the shared group
 * committer (base/lmdb_env.c): one thread, one write transaction and one sync
 * for every change waiting, plus the notes that run after each batch.
 *
 * Why: SendMessage is acknowledged only once durable, and an fsync per
 * message would cap a queue at a few hundred messages a second. Concurrent
 * sends, receives and deletes share one commit instead (as store/commit.c).
 * Long polls use the same thread: a poll's receive is an asynchronous change,
 * so a wake-up costs no thread of its own.
 *
 * Invariants (those of base/lmdb_env.c, and):
 *   (3) A change's notes (wake-ups, outbox entries) take effect only if it
 *       committed, and before any caller of the batch is woken.
 *   (4) Asynchronous changes complete first, then notes run, then waiting
 *       callers wake: a poll that found nothing registers as a waiter before
 *       the wake-ups of sends in its own batch run, so none is missed.
 *
 * Start reading at queue__commit_run().
 */
#include "internal.h"

#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

/* The committer's view of a change: the queue's own apply and complete. */
static int apply_change(void *ctx, lmdb_change *base, MDB_txn *txn, arena *a, err *e)
{
  qchange *c = (qchange *)base;
  return c->apply(ctx, c, txn, a, e);
}

static void complete_change(void *ctx, lmdb_change *base)
{
  qchange *c = (qchange *)base;
  c->complete(ctx, c);
}

void queue__change_init(qchange *c, qchange_fn apply, void *arg)
{
  memset(c, 0, sizeof *c);
  c->base.apply = apply_change;
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
    qnote *p = xrealloc(c->notes, cap * sizeof *p);
    c->notes = p;
    c->capnotes = cap;
  }
  c->notes[c->nnotes++] = (qnote){kind, a, b};
  return 0;
}

int queue__commit_run(queue_system *q, qchange *c, err *e)
{
  c->complete = NULL;
  return lmdb_committer_run(&q->committer, &c->base, e);
}

bool queue__commit_submit(queue_system *q, qchange *c)
{
  c->base.complete = complete_change;
  return lmdb_committer_submit(&q->committer, &c->base);
}

static void batch_begin(void *ctx, lmdb_change *batch)
{
  for (lmdb_change *b = batch; b != NULL; b = b->next)
    ((qchange *)b)->nnotes = 0;
}

/* A change rolled back: its notes never take effect. */
static void change_failed(void *ctx, lmdb_change *b)
{
  ((qchange *)b)->nnotes = 0;
}

/* (3): gather the notes of what committed before anyone owns a change again */
static void batch_committed(void *ctx, lmdb_change *batch, bool committed)
{
  queue_system *q = ctx;
  q->nbatch_notes = 0;
  for (lmdb_change *b = batch; b != NULL; b = b->next) {
    qchange *c = (qchange *)b;
    if (committed && b->rc == 0 && c->nnotes > 0) {
      size_t need = q->nbatch_notes + c->nnotes;
      if (need > q->capbatch_notes) {
        q->capbatch_notes = need * 2;
        q->batch_notes = xrealloc(q->batch_notes, q->capbatch_notes * sizeof *q->batch_notes);
      }
      memcpy(q->batch_notes + q->nbatch_notes, c->notes, c->nnotes * sizeof *c->notes);
      q->nbatch_notes = need;
    }
    free(c->notes);
    c->notes = NULL;
    c->nnotes = 0;
    c->capnotes = 0;
  }
}

/* (4): after the asynchronous changes completed, before callers wake */
static void batch_done(void *ctx)
{
  queue_system *q = ctx;
  bool timer = false;
  for (size_t i = 0; i < q->nbatch_notes; i++) {
    qnote *n = &q->batch_notes[i];
    switch (n->kind) {
    case NOTE_WAKE:
      queue__polls_wake(q, n->a, n->b);
      timer = true;
      break;
    case NOTE_TIMER:
      timer = true;
      break;
    case NOTE_OUTBOX:
      queue__deliver_schedule(q, n->a, 0, 0);
      break;
    }
  }
  q->nbatch_notes = 0;
  if (timer)
    queue__timer_kick(q);
}

int queue__committer_start(queue_system *q, err *e)
{
  lmdb_committer_hooks hooks = {
    .ctx = q,
    .batch_begin = batch_begin,
    .change_failed = change_failed,
    .batch_committed = batch_committed,
    .batch_done = batch_done,
  };
  return lmdb_committer_start(&q->committer, q->env, &hooks, "the queue service", e);
}

void queue__committer_stop(queue_system *q)
{
  lmdb_committer_stop(&q->committer);
  free(q->batch_notes);
  q->batch_notes = NULL;
  q->capbatch_notes = 0;
}
