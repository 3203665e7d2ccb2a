/* queue/poll.c -- long polling: receives that wait for messages without
 * holding a thread, and the timer that ends their waits.
 *
 * Why: ReceiveMessage may wait up to 20 s; with a fixed pool of request
 * threads, a thread per waiting receive would let a few clients stop the
 * server. A poll is instead an asynchronous change (commit.c): it runs on
 * the committer, and when it finds nothing it waits in a list until a send
 * (a note of its batch), the timer (a deadline reached in db_vis) or its own
 * deadline wakes it. With queues in PostgreSQL the store runs the change
 * (q->store->submit: on its own workers, txn NULL) and a send on any node
 * wakes the waiters through a notification (pg_store.c).
 *
 * States of a poll:
 *   QUEUED   its receive change is queued on the committer
 *   RUNNING  the committer is running its receive
 *   WAITING  in q->waiters, nothing found at tried_ms
 *   (done)   done() was called; the poll is freed after it returns
 * QUEUED -> RUNNING -> (done) | WAITING; WAITING -> QUEUED (woken) | (done)
 * (deadline, stop). A cancel in QUEUED or WAITING frees the poll and done is
 * never called; a cancel in RUNNING asks for an early, empty done.
 *
 * Invariants:
 *   (1) done is called exactly once per poll that was not cancelled, never
 *       under wmu (done takes the caller's locks; the caller cancels under
 *       them, and cancel takes wmu).
 *   (2) The timer wakes a waiting poll only for a db_vis entry that became
 *       visible after the poll last looked (tried_ms < visible_at <= now),
 *       so a FIFO group blocked behind an in-flight message cannot make it
 *       spin; the unblocking delete wakes it through its note instead.
 *
 * Start reading at queue_poll_start().
 */
#include "internal.h"

#include "base/mem.h"
#include "base/text.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMER_MAX_SLEEP_MS 1000
#define SWEEP_EVERY_MS 30000

enum pstate { P_QUEUED, P_RUNNING, P_WAITING };

struct queue_poll {
  qchange c;                /* first: the committer hands it back */
  qsnap s;
  queue_receive r;
  int64_t deadline_ms;      /* wall clock */
  int64_t tried_ms;         /* the receive's now, last time it found nothing */
  arena *arena;             /* the messages of the last receive */
  queue_message *msgs;
  size_t n;
  queue_poll_done done;
  void *ctx;
  enum pstate state;
  bool cancelled;           /* QUEUED and cancelled: the apply skips */
  bool cancel_asked;        /* cancelled while RUNNING: finish early */
  struct queue_poll *next;  /* q->waiters */
  struct queue_poll *prev;
};

static void unlink_waiter(queue_system *q, queue_poll *p)
{
  if (p->prev != NULL)
    p->prev->next = p->next;
  else
    q->waiters = p->next;
  if (p->next != NULL)
    p->next->prev = p->prev;
  p->next = p->prev = NULL;
}

static void poll_free(queue_poll *p)
{
  arena_free(p->arena);
  free(p);
}

/* Calls done and frees p (invariant 1: no lock held). */
static void finish(queue_poll *p, int rc, const err *e)
{
  err none = {0};
  if (rc != 0)
    p->done(p->ctx, rc, NULL, 0, e != NULL ? e : &none);
  else
    p->done(p->ctx, 0, p->msgs, p->n, &none);
  poll_free(p);
}

static int apply_poll(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  queue_poll *p = (queue_poll *)c;
  pthread_mutex_lock(&q->wmu);
  bool skip = p->cancelled;
  if (!skip)
    p->state = P_RUNNING;
  pthread_mutex_unlock(&q->wmu);
  if (skip)
    return 0;
  arena_free(p->arena);
  p->arena = arena_new();
  p->tried_ms = queue__now_ms();
  if (txn == NULL) /* a store without LMDB runs the change (q->store->submit) */
    return q->store->receive(q, &p->s, &p->r, p->arena, &p->msgs, &p->n, e);
  return queue__receive_apply(q, c, txn, &p->s, &p->r, p->tried_ms, p->arena, &p->msgs, &p->n,
                              e);
}

static void poll_complete(queue_system *q, qchange *c)
{
  queue_poll *p = (queue_poll *)c;
  pthread_mutex_lock(&q->wmu);
  if (p->cancelled) {
    pthread_mutex_unlock(&q->wmu);
    poll_free(p);
    return;
  }
  if (c->base.rc != 0) {
    pthread_mutex_unlock(&q->wmu);
    finish(p, c->base.rc, &c->base.e);
    return;
  }
  if (p->n > 0 || p->cancel_asked || q->polls_closed || queue__now_ms() >= p->deadline_ms) {
    pthread_mutex_unlock(&q->wmu);
    finish(p, 0, NULL);
    return;
  }
  p->state = P_WAITING;
  p->next = q->waiters;
  p->prev = NULL;
  if (q->waiters != NULL)
    q->waiters->prev = p;
  q->waiters = p;
  q->timer_kick = true;
  pthread_cond_signal(&q->timer_cv);
  pthread_mutex_unlock(&q->wmu);
}

/* Queues p's receive again (wmu not held). */
static void requeue(queue_system *q, queue_poll *p)
{
  p->c.complete = poll_complete;
  if (q->store->submit(q, &p->c))
    return;
  pthread_mutex_lock(&q->wmu);
  bool cancelled = p->cancelled;
  p->state = P_RUNNING;  /* from here a cancel returns false: done follows */
  pthread_mutex_unlock(&q->wmu);
  if (cancelled)
    poll_free(p);
  else
    finish(p, 0, NULL);
}

void queue__polls_wake(queue_system *q, uint64_t qid, uint64_t count)
{
  queue_poll *woken = NULL;
  pthread_mutex_lock(&q->wmu);
  for (queue_poll *p = q->waiters, *next = NULL; p != NULL && count > 0; p = next) {
    next = p->next;
    if (p->s.id != qid)
      continue;
    unlink_waiter(q, p);
    p->state = P_QUEUED;
    p->next = woken;
    woken = p;
    if (count != UINT64_MAX)
      count--;
  }
  pthread_mutex_unlock(&q->wmu);
  for (queue_poll *p = woken, *next = NULL; p != NULL; p = next) {
    next = p->next;
    p->next = NULL;
    requeue(q, p);
  }
}

void queue__timer_kick(queue_system *q)
{
  pthread_mutex_lock(&q->wmu);
  if (q->waiters != NULL) {
    q->timer_kick = true;
    pthread_cond_signal(&q->timer_cv);
  }
  pthread_mutex_unlock(&q->wmu);
}

typedef struct polls_call {
  qsnap s;
  queue_receive r;
  arena *a;
  queue_message *msgs;
  size_t n;
} polls_call;

static int apply_receive_now(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  polls_call *pc = c->arg;
  return queue__receive_apply(q, c, txn, &pc->s, &pc->r, queue__now_ms(), pc->a, &pc->msgs,
                              &pc->n, e);
}

int queue__lmdb_receive(queue_system *q, const qsnap *s, const queue_receive *r, arena *a,
                        queue_message **out, size_t *n, err *e)
{
  polls_call pc = {.s = *s, .r = *r, .a = a};
  qchange c;
  queue__change_init(&c, apply_receive_now, &pc);
  int rc = queue__commit_run(q, &c, e);
  *out = pc.msgs;
  *n = pc.n;
  return rc;
}

bool queue__lmdb_submit(queue_system *q, qchange *c)
{
  return queue__commit_submit(q, c);
}

static int wait_of(const qsnap *s, const queue_receive *r, err *e)
{
  int wait = r->wait_seconds >= 0 ? r->wait_seconds : (int)s->wait;
  if (wait > QUEUE_MAX_WAIT_SECONDS)
    return err_set(e, ERR_INVALID, "Value %d for parameter WaitTimeSeconds is invalid. Reason: "
                   "Must be >= 0 and <= 20, if provided.", wait);
  return wait;
}

static int check_receive(const queue_receive *r, err *e)
{
  if (r->max > QUEUE_MAX_BATCH)
    return err_set(e, ERR_INVALID, "Value %u for parameter MaxNumberOfMessages is invalid. "
                   "Reason: Must be between 1 and 10, if provided.", r->max);
  if (r->visibility_timeout > QUEUE_MAX_VISIBILITY)
    return err_set(e, ERR_INVALID, "Value %d for parameter VisibilityTimeout is invalid. "
                   "Reason: Must be between 0 and 43200, if provided.", r->visibility_timeout);
  return 0;
}

int queue_poll_start(queue_system *q, const char *ref, const queue_receive *r, arena *a,
                     queue_message **out, size_t *n, queue_poll_done done, void *ctx,
                     queue_poll **poll, err *e)
{
  *poll = NULL;
  *out = NULL;
  *n = 0;
  int rc = check_receive(r, e);
  if (rc != 0)
    return rc;
  qsnap s;
  if ((rc = queue__snap(q, ref, &s, e)) != 0)
    return rc;
  int wait = wait_of(&s, r, e);
  if (wait < 0)
    return wait;
  if (wait == 0)
    return q->store->receive(q, &s, r, a, out, n, e);
  queue_poll *p = xcalloc(1, sizeof *p);
  p->s = s;
  p->r = *r;
  p->deadline_ms = queue__now_ms() + (int64_t)wait * 1000;
  p->done = done;
  p->ctx = ctx;
  p->state = P_QUEUED;
  queue__change_init(&p->c, apply_poll, NULL);
  p->c.complete = poll_complete;
  pthread_mutex_lock(&q->wmu);
  bool closed = q->polls_closed;
  pthread_mutex_unlock(&q->wmu);
  if (closed || !q->store->submit(q, &p->c)) {
    poll_free(p);
    return err_set(e, ERR_UNAVAILABLE, "the queue service is stopping");
  }
  *poll = p;
  return 0;
}

bool queue_poll_cancel(queue_system *q, queue_poll *p)
{
  pthread_mutex_lock(&q->wmu);
  bool cancelled = false;
  switch (p->state) {
  case P_WAITING:
    unlink_waiter(q, p);
    cancelled = true;
    break;
  case P_QUEUED:
    p->cancelled = true;  /* the committer frees it */
    pthread_mutex_unlock(&q->wmu);
    return true;
  case P_RUNNING:
    p->cancel_asked = true;
    break;
  }
  pthread_mutex_unlock(&q->wmu);
  if (cancelled)
    poll_free(p);
  return cancelled;
}

void queue__polls_close(queue_system *q)
{
  pthread_mutex_lock(&q->wmu);
  q->polls_closed = true;
  queue_poll *all = q->waiters;
  q->waiters = NULL;
  for (queue_poll *p = all; p != NULL; p = p->next)
    p->state = P_RUNNING;  /* finishing: a cancel now returns false */
  pthread_mutex_unlock(&q->wmu);
  for (queue_poll *p = all, *next = NULL; p != NULL; p = next) {
    next = p->next;
    finish(p, 0, NULL);
  }
}

/* ---- the blocking receive, for pollers on their own threads ---- */

typedef struct blocking {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  int rc;
  err e;
  arena *a;
  queue_message *msgs;
  size_t n;
} blocking;

static const char *dup_or_null(arena *a, const char *s)
{
  return s != NULL ? arena_strdup(a, s) : NULL;
}

static void blocking_done(void *ctx, int rc, queue_message *msgs, size_t n, const err *e)
{
  blocking *b = ctx;
  pthread_mutex_lock(&b->mu);
  b->rc = rc;
  if (rc != 0)
    b->e = *e;
  b->msgs = n ? arena_alloc(b->a, n * sizeof *b->msgs) : NULL;
  for (size_t i = 0; i < n; i++) {
    queue_message *d = &b->msgs[i];
    const queue_message *m = &msgs[i];
    *d = *m;
    d->message_id = dup_or_null(b->a, m->message_id);
    d->receipt_handle = dup_or_null(b->a, m->receipt_handle);
    d->body = arena_memdup(b->a, m->body, m->body_len + 1);
    d->trace_header = dup_or_null(b->a, m->trace_header);
    d->sender_id = dup_or_null(b->a, m->sender_id);
    d->group_id = dup_or_null(b->a, m->group_id);
    d->dedup_id = dup_or_null(b->a, m->dedup_id);
    d->sequence_number = dup_or_null(b->a, m->sequence_number);
    d->attrs = m->nattrs ? arena_alloc(b->a, m->nattrs * sizeof *d->attrs) : NULL;
    for (size_t k = 0; k < m->nattrs; k++) {
      d->attrs[k] = m->attrs[k];
      d->attrs[k].name = dup_or_null(b->a, m->attrs[k].name);
      d->attrs[k].type = dup_or_null(b->a, m->attrs[k].type);
      d->attrs[k].value = dup_or_null(b->a, m->attrs[k].value);
      if (m->attrs[k].bin != NULL)
        d->attrs[k].bin = arena_memdup(b->a, m->attrs[k].bin, m->attrs[k].bin_len + 1);
    }
  }
  b->n = n;
  b->done = true;
  pthread_cond_signal(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

int queue_message_receive(queue_system *q, const char *ref, const queue_receive *r, arena *a,
                          queue_message **out, size_t *n, err *e)
{
  blocking b = {.a = a};
  pthread_mutex_init(&b.mu, NULL);
  pthread_cond_init(&b.cv, NULL);
  queue_poll *p = NULL;
  int rc = queue_poll_start(q, ref, r, a, out, n, blocking_done, &b, &p, e);
  if (rc == 0 && p != NULL) {
    pthread_mutex_lock(&b.mu);
    while (!b.done)
      pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);
    rc = b.rc;
    if (rc != 0)
      *e = b.e;
    *out = b.msgs;
    *n = b.n;
  }
  pthread_cond_destroy(&b.cv);
  pthread_mutex_destroy(&b.mu);
  return rc;
}

/* ---- the timer ---- */

typedef struct wview {
  queue_poll *p;
  uint64_t qid;
  int64_t tried;
} wview;

void *queue__timer_main(void *arg)
{
  queue_system *q = arg;
  int64_t next_sweep = time_mono_ms() + SWEEP_EVERY_MS;
  pthread_mutex_lock(&q->wmu);
  while (!q->timer_stop) {
    int64_t now = queue__now_ms();
    int64_t wake_at = now + TIMER_MAX_SLEEP_MS;
    /* deadlines */
    queue_poll *expired = NULL;
    size_t nw = 0;
    for (queue_poll *p = q->waiters, *next = NULL; p != NULL; p = next) {
      next = p->next;
      if (p->deadline_ms <= now) {
        unlink_waiter(q, p);
        p->state = P_RUNNING;  /* finishing: a cancel now returns false */
        p->next = expired;
        expired = p;
      } else {
        nw++;
        if (p->deadline_ms < wake_at)
          wake_at = p->deadline_ms;
      }
    }
    wview *views = nw ? xmalloc(nw * sizeof *views) : NULL;
    size_t k = 0;
    for (queue_poll *p = q->waiters; p != NULL && k < nw; p = p->next)
      views[k++] = (wview){p, p->s.id, p->tried_ms};
    q->timer_kick = false;
    pthread_mutex_unlock(&q->wmu);

    for (queue_poll *p = expired, *next = NULL; p != NULL; p = next) {
      next = p->next;
      finish(p, 0, NULL);
    }
    /* visibility: which waiters have something new to look at (invariant 2) */
    uint64_t *wake_q = nw ? xcalloc(nw, sizeof *wake_q) : NULL;
    size_t nwake = 0;
    for (size_t i = 0; i < nw; i++) {
      bool asked = false; /* the same question as an earlier waiter's */
      for (size_t j = 0; j < i && !asked; j++)
        asked = views[j].qid == views[i].qid && views[j].tried == views[i].tried;
      if (!asked) {
        int64_t at = q->store->next_visible(q, views[i].qid, views[i].tried);
        if (at <= now) {
          bool seen = false;
          for (size_t j = 0; j < nwake && !seen; j++)
            seen = wake_q[j] == views[i].qid;
          if (!seen)
            wake_q[nwake++] = views[i].qid;
        } else if (at < wake_at) {
          wake_at = at;
        }
      }
    }
    free(views);
    for (size_t i = 0; i < nwake; i++)
      queue__polls_wake(q, wake_q[i], UINT64_MAX);
    free(wake_q);

    if (time_mono_ms() >= next_sweep) {
      q->store->sweep(q);
      next_sweep = time_mono_ms() + SWEEP_EVERY_MS;
    }

    pthread_mutex_lock(&q->wmu);
    if (q->timer_stop)
      break;
    if (nwake > 0 || q->timer_kick)
      continue;
    int64_t sleep_ms = wake_at - queue__now_ms();
    if (sleep_ms <= 0)
      continue;
    if (sleep_ms > TIMER_MAX_SLEEP_MS)
      sleep_ms = TIMER_MAX_SLEEP_MS;
    struct timespec ts = time_deadline(CLOCK_MONOTONIC, sleep_ms);
    pthread_cond_timedwait(&q->timer_cv, &q->wmu, &ts);
  }
  pthread_mutex_unlock(&q->wmu);
  return NULL;
}
