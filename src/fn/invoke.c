/* fn/invoke.c -- invocation: synchronous (RequestResponse), asynchronous
 * (Event, through a durable queue and a pool of workers) and DryRun.
 *
 * Why a queue in LMDB: Lambda answers an Event with 202 once it is queued,
 * and a queued event must run even if the server restarts in between.
 *
 * Invariants:
 *   (1) A sync invocation writes nothing durable and waits for nothing: its
 *       state is a heap invoc the scheduler ends (scheduler.c), its payload
 *       is the invoker's (copied only if the invoker goes away before the
 *       runtime took it), and its response is the buffer the runtime's
 *       request already made (moved, not copied). An Event's attempt is
 *       the same invocation with a worker waiting for its callback.
 *   (2) An Event is committed (q/SEQ, synced) before fn_invoke returns 0; it
 *       is deleted only after it ran to an end (response, or an error after
 *       its retries), or when its function is gone.
 *   (3) Throttled events wait and are tried again (not counted as attempts);
 *       function errors are retried MaximumRetryAttempts times (the policy
 *       hook's, else twice, as Lambda does), after delays that double from
 *       async_retry_ms; an event older than MaximumEventAgeInSeconds is not
 *       tried again.
 *   (4) The outcome hook hears of an Event's end before it leaves the
 *       queue (2), so a crash in between tells it again: destinations get
 *       each outcome at least once.
 *   (5) A failed attempt is counted in the queued record (its head's "a",
 *       and "n", when the retry is due) before the retry waits, so a
 *       restart goes on with the retries left, not with fresh ones; an
 *       attempt a crash cut short was not counted and runs again.
 *
 * With --metadata (fn_system.pg) the queue is PostgreSQL's table of
 * Events every node's workers claim from (pg_registry.c (4)); the same
 * attempt logic (event_attempt) and invariants (2)-(5) hold, a claim taking
 * the place of the in-memory item. An invocation of a function with a
 * reservation above 0 first claims one of its slots there (pg_slots.c), so
 * the reservation bounds the whole cluster; the others claim nothing.
 *
 * Start reading at fn_invoke().
 */
#include "fn/internal.h"

#include "base/hash.h"
#include "base/lmdb_env.h"
#include "base/mem.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_QUEUED 1000000
#define THROTTLE_RETRY_MS 500
#define DEFAULT_RETRIES 2
#define DEFAULT_MAX_AGE_S 21600
#define RETRY_MAX_MS (5 * 60 * 1000)
#define PG_POLL_MS 1000            /* an idle node's poller looks at the shared queue again
                                      after (an Event queued here wakes a worker at once) */
#define PG_SWEEP_MS (10 * 60 * 1000) /* and sweeps the shared code this often */

invoc *fn__invoc_new(void)
{
  invoc *inv = xcalloc(1, sizeof *inv);
  buf_init(&inv->response, FN_RESPONSE_MAX);
  uuid_v4(inv->id);
  inv->start_us = time_mono_us();
  return inv;
}

invoc *fn__invoc_free(invoc *inv)
{
  if (inv == NULL)
    return NULL;
  buf_release(&inv->response);
  free(inv->own_payload);
  free(inv->client_context);
  free(inv->invoked_arn);
  free(inv);
  return NULL;
}

static bool json_ok(const void *p, size_t n)
{
  if (n == 0)
    return true;
  json_error_t je;
  json_t *j = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (j == NULL)
    return false;
  json_decref(j);
  return true;
}

/* Admits one invocation (sync, or an Event's attempt): 0 when p->done will
 * be called. */
static int start_sync(fn_system *s, const char *name, const char *qualifier,
                      const fn_invoke_params *p, const char *request_id,
                      fn_invoke_result *res, err *e)
{
  invoc *inv = fn__invoc_new();
  if (request_id != NULL)
    snprintf(inv->id, sizeof inv->id, "%s", request_id);
  inv->payload = p->payload;
  inv->len = p->len;
  inv->want_tail = p->log_tail;
  inv->done = p->done;
  inv->done_ctx = p->done_ctx;
  if (p->client_context != NULL && *p->client_context) {
    size_t n = strlen(p->client_context);
    uint8_t *dec = xmalloc(n + 1);
    long m = base64_decode(p->client_context, n, dec, n);
    if (m < 0 || !json_ok(dec, (size_t)m)) {
      free(dec);
      fn__invoc_free(inv);
      return err_set(e, ERR_INVALID_REQUEST, "Client context must be a valid Base64-encoded JSON "
                                             "object.");
    }
    dec[m] = 0;
    inv->client_context = (char *)dec;
  }
  inv->invoked_arn = xasprintf("arn:aws:lambda:%s:%s:function:%s%s%s", FN_REGION, FN_ACCOUNT_ID,
                               name, qualifier ? ":" : "", qualifier ? qualifier : "");
  fn__registry_sync(s, name);
  if (s->pg != NULL) {
    /* a reservation is the cluster's: a slot in PostgreSQL (pg_slots.c) */
    pthread_mutex_lock(&s->lock);
    fn_entry *f = fn__registry_find(s, name);
    int reserved = f != NULL ? f->reserved : -1;
    pthread_mutex_unlock(&s->lock);
    int rc = reserved > 0 ? fn__slot_claim(s, name, reserved, inv->slot, e) : 0;
    if (rc != 0) {
      if (rc == 1) {
        pthread_mutex_lock(&s->lock);
        s->c.throttles++;
        pthread_mutex_unlock(&s->lock);
        res->throttled_reserved = true;
        rc = err_set(e, ERR_THROTTLED, "Rate Exceeded.");
      }
      fn__invoc_free(inv);
      return rc;
    }
  }
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, name);
  conf *c = NULL;
  const char *version = NULL;
  int rc = f ? fn__registry_resolve(f, qualifier, &c, &version, e)
             : err_set(e, ERR_NOT_FOUND, "Function not found: arn:aws:lambda:%s:%s:function:%s",
                       FN_REGION, FN_ACCOUNT_ID, name);
  if (rc == 0) {
    pool *pl = fn__sched_pool(s, f, version, c);
    inv->running = p->running;
    if (p->running != NULL)
      *p->running = inv;
    rc = fn__sched_run(s, f, pl, inv, e);
    /* 0: inv is the scheduler's (maybe already gone); else still ours. */
    if (rc != 0) {
      if (p->running != NULL)
        *p->running = NULL;
      res->throttled_reserved = inv->throttled_reserved;
    }
  }
  pthread_mutex_unlock(&s->lock);
  if (rc != 0) {
    if (inv->slot[0] != '\0')
      fn__slot_release(s, inv->slot);
    fn__invoc_free(inv);
  }
  return rc;
}

void fn_invoke_forget(fn_system *s, fn_invocation **running)
{
  pthread_mutex_lock(&s->lock);
  invoc *inv = *running;
  if (inv != NULL) {
    inv->done = NULL;
    inv->done_ctx = NULL;
    inv->running = NULL;
    if (!inv->handed && inv->len > 0) {
      /* The runtime has yet to read it, and the invoker's copy goes now. */
      inv->own_payload = xmalloc(inv->len);
      memcpy(inv->own_payload, inv->payload, inv->len);
      inv->payload = inv->own_payload;
    }
    *running = NULL;
  }
  pthread_mutex_unlock(&s->lock);
}

/* An Event's attempt: a worker waits for the callback. */
typedef struct waiter {
  pthread_cond_t cond;  /* signalled under s->lock when done is set */
  bool done;
  int rc;
  bool function_error;
  buf *response;        /* gets the answer (moved) */
  char version[64];     /* the version that ran */
} waiter;

static void waiter_done(void *ctx, int rc, fn_invoke_result *res, const err *e)
{
  waiter *w = ctx;
  w->rc = rc;
  w->function_error = rc == 0 && res->function_error != NULL;
  if (rc == 0) {
    buf_release(w->response);
    *w->response = res->payload;
    buf_init(&res->payload, 0);
    snprintf(w->version, sizeof w->version, "%s",
             res->executed_version ? res->executed_version : "$LATEST");
  }
  w->done = true;
  pthread_cond_signal(&w->cond);
}

/* Runs one attempt of an Event to its end. 0 (then *function_error says
 * how it went, response holds the answer and version what ran), or the
 * error of its admission or ERR_UNAVAILABLE. */
static int run_event(fn_system *s, const char *name, const char *qualifier, const void *payload,
                     size_t len, const char *id, bool *function_error, buf *response,
                     char version[64], err *e)
{
  waiter w = {.done = false, .response = response};
  pthread_cond_init(&w.cond, NULL);
  fn_invoke_params p = {.name = name, .qualifier = qualifier, .type = FN_INVOKE_SYNC,
                        .payload = payload, .len = len, .done = waiter_done, .done_ctx = &w};
  fn_invoke_result res = {0};
  int rc = start_sync(s, name, qualifier, &p, id, &res, e);
  if (rc == 0) {
    pthread_mutex_lock(&s->lock);
    while (!w.done)
      pthread_cond_wait(&w.cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    rc = w.rc;
    *function_error = w.function_error;
    memcpy(version, w.version, sizeof w.version);
  }
  pthread_cond_destroy(&w.cond);
  return rc;
}

void fn_async_hooks_set(fn_system *s, const fn_async_hooks *h)
{
  pthread_mutex_lock(&s->lock);
  if (h != NULL)
    s->hooks = *h;
  else
    memset(&s->hooks, 0, sizeof s->hooks);
  pthread_mutex_unlock(&s->lock);
}

/* The limits of name:qualifier, the hook's or Lambda's. */
static void async_policy(fn_system *s, const char *name, const char *qualifier, int *retries,
                         int *max_age_s)
{
  pthread_mutex_lock(&s->lock);
  fn_async_hooks h = s->hooks;
  pthread_mutex_unlock(&s->lock);
  fn_async_policy p = {-1, -1};
  if (h.policy != NULL)
    h.policy(h.ctx, name, qualifier, &p);
  *retries = p.max_retries >= 0 && p.max_retries <= 2 ? p.max_retries : DEFAULT_RETRIES;
  *max_age_s = p.max_age_s > 0 ? p.max_age_s : DEFAULT_MAX_AGE_S;
}

/* Tells the outcome hook how an Event ended (invariant (4)). */
static void async_outcome(fn_system *s, const char *name, const char *qualifier,
                          const char *id, const char *condition, int attempts,
                          const char *version, bool function_error, const buf *payload,
                          const buf *response)
{
  pthread_mutex_lock(&s->lock);
  fn_async_hooks h = s->hooks;
  pthread_mutex_unlock(&s->lock);
  if (h.outcome == NULL)
    return;
  char arn[320];
  snprintf(arn, sizeof arn, "arn:aws:lambda:%s:%s:function:%s:%s", FN_REGION, FN_ACCOUNT_ID,
           name, qualifier ? qualifier : "$LATEST");
  fn_async_outcome o = {
      .function = name,
      .qualifier = qualifier,
      .function_arn = arn,
      .request_id = id,
      .condition = condition,
      .attempts = attempts,
      .executed_version = version,
      .function_error = function_error ? "Unhandled" : NULL,
      .payload = payload->data ? payload->data : "",
      .len = payload->len,
      .response = response->data,
      .response_len = response->len,
      .time_ms = time_now_ms(),
  };
  h.outcome(h.ctx, &o);
}

/* ---- the queue ---- */

static void queue_push(fn_system *s, async_item *it)
{
  async_item **pp = &s->queue;
  while (*pp != NULL && (*pp)->not_before_ms <= it->not_before_ms)
    pp = &(*pp)->next;
  it->next = *pp;
  *pp = it;
  pthread_cond_signal(&s->queue_cond);
}

static void seq_key(uint64_t seq, char out[19])
{
  snprintf(out, 19, "q/%016llx", (unsigned long long)seq);
}

static int enqueue(fn_system *s, const char *name, const char *qualifier, const void *payload,
                   size_t len, const char *id, err *e)
{
  if (s->pg != NULL) {
    int rc = fn__pg_event_add(s, name, qualifier, id, payload, len, e);
    pthread_mutex_lock(&s->lock);
    if (rc == 0)
      s->c.async_queued++;
    pthread_cond_signal(&s->queue_cond); /* a worker here claims it first, likely */
    pthread_mutex_unlock(&s->lock);
    return rc;
  }
  pthread_mutex_lock(&s->lock);
  uint64_t queued = s->c.async_queued - s->c.async_done;
  uint64_t seq = s->next_seq++;
  pthread_mutex_unlock(&s->lock);
  if (queued >= MAX_QUEUED)
    return err_set(e, ERR_THROTTLED, "Rate Exceeded.");
  json_t *h = json_pack("{s:s, s:s?, s:s, s:I}", "f", name, "q", qualifier, "id", id, "t",
                        (json_int_t)time_now_ms());
  char *head = json_dumps(h, JSON_COMPACT);
  json_decref(h);
  if (head == NULL)
    mem_out_of_memory();
  size_t hlen = strlen(head);
  char key[19];
  seq_key(seq, key);
  MDB_val k = {18, key};
  MDB_val v = {hlen + 1 + len, NULL};
  MDB_txn *txn;
  pthread_mutex_lock(&s->write_lock);
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc == 0) {
    rc = mdb_put(txn, s->dbi, &k, &v, MDB_RESERVE);
    if (rc == 0) {
      memcpy(v.mv_data, head, hlen + 1);
      if (len)
        memcpy((char *)v.mv_data + hlen + 1, payload, len);
      rc = mdb_txn_commit(txn);
    } else {
      mdb_txn_abort(txn);
    }
  }
  pthread_mutex_unlock(&s->write_lock);
  free(head);
  if (rc != 0)
    return lmdb_error(e, rc, "queue the invocation");
  async_item *it = xcalloc(1, sizeof *it);
  it->seq = seq;
  pthread_mutex_lock(&s->lock);
  s->c.async_queued++;
  queue_push(s, it);
  pthread_mutex_unlock(&s->lock);
  return 0;
}

/* Invariant (5): rewrites the head of q/SEQ with the attempts made and the
 * wall-clock time the retry is due; the payload stays as it is. A failure
 * leaves the old count: the event is retried more, never lost. */
static void queue_count_attempt(fn_system *s, uint64_t seq, int attempts, int64_t due_ms)
{
  char key[19];
  seq_key(seq, key);
  MDB_val k = {18, key};
  MDB_val v;
  MDB_txn *txn;
  pthread_mutex_lock(&s->write_lock);
  if (mdb_txn_begin(s->env, NULL, 0, &txn) != 0) {
    pthread_mutex_unlock(&s->write_lock);
    return;
  }
  int rc = mdb_get(txn, s->dbi, &k, &v);
  const char *nul = rc == 0 ? memchr(v.mv_data, '\0', v.mv_size) : NULL;
  json_t *h = nul ? json_loads(v.mv_data, 0, NULL) : NULL;
  if (h == NULL) {
    mdb_txn_abort(txn);
    pthread_mutex_unlock(&s->write_lock);
    return;
  }
  size_t off = (size_t)(nul - (const char *)v.mv_data) + 1;
  size_t plen = v.mv_size - off;
  char *payload = xmalloc(plen + 1);
  memcpy(payload, (const char *)v.mv_data + off, plen);
  json_object_set_new(h, "a", json_integer(attempts));
  json_object_set_new(h, "n", json_integer((json_int_t)due_ms));
  char *head = json_dumps(h, JSON_COMPACT);
  json_decref(h);
  if (head == NULL)
    mem_out_of_memory();
  size_t hlen = strlen(head);
  MDB_val nv = {hlen + 1 + plen, NULL};
  rc = mdb_put(txn, s->dbi, &k, &nv, MDB_RESERVE);
  if (rc == 0) {
    memcpy(nv.mv_data, head, hlen + 1);
    memcpy((char *)nv.mv_data + hlen + 1, payload, plen);
    mdb_txn_commit(txn);
  } else {
    mdb_txn_abort(txn);
  }
  pthread_mutex_unlock(&s->write_lock);
  free(head);
  free(payload);
}

static void dequeue_done(fn_system *s, uint64_t seq)
{
  char key[19];
  seq_key(seq, key);
  MDB_val k = {18, key};
  MDB_txn *txn;
  pthread_mutex_lock(&s->write_lock);
  if (mdb_txn_begin(s->env, NULL, 0, &txn) == 0) {
    mdb_del(txn, s->dbi, &k, NULL);
    if (mdb_txn_commit(txn) != 0) {
      /* it runs again after a restart: at least once */
    }
  }
  pthread_mutex_unlock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  s->c.async_done++;
  pthread_mutex_unlock(&s->lock);
}

/* Reads a queued event: name, qualifier, id and payload (heap copies),
 * and when it was queued (wall clock; 0 for events of older versions). */
static bool queue_read(fn_system *s, uint64_t seq, char **name, char **qualifier, char **id,
                       buf *payload, int64_t *queued_ms)
{
  char key[19];
  seq_key(seq, key);
  MDB_val k = {18, key};
  MDB_val v;
  MDB_txn *txn;
  if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
    return false;
  bool ok = false;
  if (mdb_get(txn, s->dbi, &k, &v) == 0) {
    const char *p = v.mv_data;
    const char *nul = memchr(p, '\0', v.mv_size);
    if (nul != NULL) {
      json_t *h = json_loads(p, 0, NULL);
      const char *f = json_string_value(json_object_get(h, "f"));
      const char *q = json_string_value(json_object_get(h, "q"));
      const char *i = json_string_value(json_object_get(h, "id"));
      if (f != NULL && i != NULL) {
        *name = xstrdup(f);
        *qualifier = q ? xstrdup(q) : NULL;
        *id = xstrdup(i);
        *queued_ms = (int64_t)json_integer_value(json_object_get(h, "t"));
        size_t off = (size_t)(nul - p) + 1;
        buf_append(payload, p + off, v.mv_size - off);
        ok = true;
      }
      json_decref(h);
    }
  }
  mdb_txn_abort(txn);
  return ok;
}

/* How an attempt of an Event ended, for its queue. */
enum attempt_end {
  ATTEMPT_DONE,    /* ran to an end (the outcome hook heard): dequeue */
  ATTEMPT_RETRY,   /* a function error with retries left: counted, due after delay */
  ATTEMPT_WAIT     /* throttled or stopping: not counted, due after delay */
};

/* Runs one attempt of a queued Event (invariant (3)); *attempts counts
 * those made, before and now. */
static enum attempt_end event_attempt(fn_system *s, const char *name, const char *qualifier,
                                      const char *id, const buf *payload, int64_t queued_ms,
                                      int *attempts, int64_t *delay)
{
  int retries = DEFAULT_RETRIES;
  int max_age_s = DEFAULT_MAX_AGE_S;
  async_policy(s, name, qualifier, &retries, &max_age_s);
  buf response;
  buf_init(&response, 0);
  char version[64] = "";
  enum attempt_end end = ATTEMPT_DONE;
  *delay = 0;
  if (queued_ms > 0 && time_now_ms() - queued_ms > (int64_t)max_age_s * 1000) {
    /* too old to try again: invariant (3) */
    async_outcome(s, name, qualifier, id, "EventAgeExceeded", *attempts, NULL, *attempts > 0,
                  payload, &response);
  } else {
    err e = {0};
    bool function_error = false;
    int rc = run_event(s, name, qualifier, payload->data ? payload->data : "", payload->len, id,
                       &function_error, &response, version, &e);
    if (rc == ERR_THROTTLED) {
      end = ATTEMPT_WAIT;
      *delay = THROTTLE_RETRY_MS;
    } else if (rc == ERR_UNAVAILABLE) {
      end = ATTEMPT_WAIT; /* stopping: it stays queued and runs after a restart */
    } else if (rc == 0) {
      (*attempts)++;
      if (function_error && *attempts <= retries) {
        end = ATTEMPT_RETRY;
        *delay = (int64_t)s->async_retry_ms << (*attempts - 1);
        if (*delay > RETRY_MAX_MS)
          *delay = RETRY_MAX_MS;
      } else {
        async_outcome(s, name, qualifier, id, function_error ? "RetriesExhausted" : "Success",
                      *attempts, version, function_error, payload, &response);
      }
    }
  }
  buf_release(&response);
  return end;
}

/* A worker of the shared queue (pg_registry.c (4)): claims one due Event
 * at a time. While the queue is empty one worker of the node (the poller,
 * s->pg_poller) looks again every PG_POLL_MS, and sweeps unused code every
 * PG_SWEEP_MS; the others sleep until an Event is queued here or a worker
 * claimed one (which wakes one more, so a backlog from another node draws
 * every worker in). An idle node asks PostgreSQL once per PG_POLL_MS. */
static void *worker_pg(fn_system *s)
{
  bool poller = false;
  for (;;) {
    pthread_mutex_lock(&s->lock);
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->lock);
    if (stopping)
      return NULL;
    fn_event ev = {0};
    buf_init(&ev.payload, FN_MAX_ASYNC_PAYLOAD + 1);
    err e = {0};
    int rc = fn__pg_event_claim(s, &ev, &e);
    if (rc != 0) {
      buf_release(&ev.payload);
      bool sweep = false;
      pthread_mutex_lock(&s->lock);
      if (!s->pg_poller) {
        s->pg_poller = true;
        poller = true;
      }
      if (poller && time_mono_ms() >= s->pg_swept_ms + PG_SWEEP_MS) {
        s->pg_swept_ms = time_mono_ms();
        sweep = true;
      }
      if (s->stopping || sweep) {
        /* no wait */
      } else if (poller) {
        int64_t at = time_mono_ms() + PG_POLL_MS;
        struct timespec ts = {(time_t)(at / 1000), (long)(at % 1000) * 1000000};
        pthread_cond_timedwait(&s->queue_cond, &s->lock, &ts);
      } else {
        pthread_cond_wait(&s->queue_cond, &s->lock);
      }
      pthread_mutex_unlock(&s->lock);
      if (sweep)
        fn__pg_code_sweep(s);
      continue;
    }
    pthread_mutex_lock(&s->lock);
    if (poller) {
      s->pg_poller = false;
      poller = false;
    }
    pthread_cond_signal(&s->queue_cond); /* there may be more: one more worker looks */
    pthread_mutex_unlock(&s->lock);
    int64_t delay = 0;
    int attempts = ev.attempts;
    enum attempt_end end = event_attempt(s, ev.name, ev.qualifier, ev.id, &ev.payload,
                                         ev.queued_ms, &attempts, &delay);
    if (end == ATTEMPT_DONE) {
      fn__pg_event_done(s, ev.seq);
      pthread_mutex_lock(&s->lock);
      s->c.async_done++;
      pthread_mutex_unlock(&s->lock);
    } else {
      fn__pg_event_release(s, ev.seq, attempts, delay);
    }
    free(ev.name);
    free(ev.qualifier);
    free(ev.id);
    buf_release(&ev.payload);
  }
}

static void *worker_main(void *arg)
{
  fn_system *s = arg;
  if (s->pg != NULL)
    return worker_pg(s);
  for (;;) {
    pthread_mutex_lock(&s->lock);
    async_item *it = NULL;
    while (!s->stopping) {
      if (s->queue != NULL && s->queue->not_before_ms <= time_mono_ms()) {
        it = s->queue;
        s->queue = it->next;
        break;
      }
      if (s->queue != NULL) {
        int64_t at = s->queue->not_before_ms;
        struct timespec ts = {(time_t)(at / 1000), (long)(at % 1000) * 1000000};
        pthread_cond_timedwait(&s->queue_cond, &s->lock, &ts);
      } else {
        pthread_cond_wait(&s->queue_cond, &s->lock);
      }
    }
    pthread_mutex_unlock(&s->lock);
    if (it == NULL)
      return NULL;

    char *name = NULL;
    char *qualifier = NULL;
    char *id = NULL;
    int64_t queued_ms = 0;
    buf payload;
    buf_init(&payload, FN_MAX_ASYNC_PAYLOAD + 1);
    if (!queue_read(s, it->seq, &name, &qualifier, &id, &payload, &queued_ms)) {
      dequeue_done(s, it->seq);
      free(it);
      buf_release(&payload);
      continue;
    }
    int64_t delay = 0;
    enum attempt_end end = event_attempt(s, name, qualifier, id, &payload, queued_ms,
                                         &it->attempts, &delay);
    if (end == ATTEMPT_RETRY)
      queue_count_attempt(s, it->seq, it->attempts, time_now_ms() + delay);
    free(name);
    free(qualifier);
    free(id);
    buf_release(&payload);
    if (end != ATTEMPT_DONE) {
      pthread_mutex_lock(&s->lock);
      if (s->stopping) {
        free(it);
      } else {
        it->not_before_ms = time_mono_ms() + delay;
        queue_push(s, it);
      }
      pthread_mutex_unlock(&s->lock);
      continue;
    }
    dequeue_done(s, it->seq);
    free(it);
  }
}

int fn__async_open(fn_system *s, err *e)
{
  if (s->pg != NULL)
    return 0; /* the queue is shared (pg_registry.c) */
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc)
    return lmdb_error(e, rc, "read the invocation queue");
  MDB_cursor *cur;
  if ((rc = mdb_cursor_open(txn, s->dbi, &cur)) != 0) {
    mdb_txn_abort(txn);
    return lmdb_error(e, rc, "read the invocation queue");
  }
  MDB_val k = {2, "q/"};
  MDB_val v;
  s->next_seq = 1;
  /* Due now, in seq order (appended), then those waiting for a retry
   * (few, kept sorted by due time): the queue is by due time. */
  async_item *ready = NULL;
  async_item **ready_tail = &ready;
  async_item *waiting = NULL;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 18 || memcmp(k.mv_data, "q/", 2) != 0)
      break;
    char hex[17];
    memcpy(hex, (char *)k.mv_data + 2, 16);
    hex[16] = '\0';
    async_item *it = xcalloc(1, sizeof *it);
    it->seq = strtoull(hex, NULL, 16);
    /* invariant (5): attempts made before the restart, and when the next is due */
    const char *nul = memchr(v.mv_data, '\0', v.mv_size);
    json_t *h = nul ? json_loads(v.mv_data, 0, NULL) : NULL;
    it->attempts = (int)json_integer_value(json_object_get(h, "a"));
    int64_t wait = json_integer_value(json_object_get(h, "n")) - time_now_ms();
    if (wait > RETRY_MAX_MS)
      wait = RETRY_MAX_MS;
    it->not_before_ms = wait > 0 ? time_mono_ms() + wait : 0;
    json_decref(h);
    if (it->not_before_ms == 0) {
      *ready_tail = it;
      ready_tail = &it->next;
    } else {
      async_item **pp = &waiting;
      while (*pp != NULL && (*pp)->not_before_ms <= it->not_before_ms)
        pp = &(*pp)->next;
      it->next = *pp;
      *pp = it;
    }
    if (it->seq >= s->next_seq)
      s->next_seq = it->seq + 1;
    s->c.async_queued++;
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  *ready_tail = waiting;
  s->queue = ready;
  return 0;
}

int fn__async_start(fn_system *s, err *e)
{
  s->workers = xcalloc(s->async_workers, sizeof *s->workers);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 512 << 10);
  for (uint32_t i = 0; i < s->async_workers; i++) {
    if (pthread_create(&s->workers[i], &at, worker_main, s) != 0) {
      pthread_attr_destroy(&at);
      return err_set(e, ERR_INTERNAL, "cannot start the invocation workers");
    }
    s->nworkers++;
  }
  pthread_attr_destroy(&at);
  return 0;
}

void fn__async_stop(fn_system *s)
{
  pthread_mutex_lock(&s->lock);
  pthread_cond_broadcast(&s->queue_cond);
  pthread_mutex_unlock(&s->lock);
  for (uint32_t i = 0; i < s->nworkers; i++)
    pthread_join(s->workers[i], NULL);
  s->nworkers = 0;
  free(s->workers);
  s->workers = NULL;
  for (async_item *it = s->queue, *next; it != NULL; it = next) {
    next = it->next;
    free(it);
  }
  s->queue = NULL;
}

/* ---- the entry point ---- */

int fn_invoke(fn_system *s, const fn_invoke_params *p, arena *a, fn_invoke_result *res, err *e)
{
  memset(res, 0, sizeof *res);
  const char *name;
  const char *qualifier;
  int rc = fn_name_parse(p->name, p->qualifier, a, &name, &qualifier, e);
  if (rc)
    return rc;
  if (p->type == FN_INVOKE_EVENT && p->len > FN_MAX_ASYNC_PAYLOAD)
    return err_set(e, ERR_ENTITY_TOO_LARGE, "%zu byte payload is too large for the Event "
                                            "invocation type (limit %u bytes)",
                   p->len, FN_MAX_ASYNC_PAYLOAD);
  if (p->len > FN_MAX_SYNC_PAYLOAD)
    return err_set(e, ERR_ENTITY_TOO_LARGE, "Request must be smaller than %u bytes for the "
                                            "InvokeFunction operation", FN_MAX_SYNC_PAYLOAD);
  if (!json_ok(p->payload, p->len))
    return err_set(e, ERR_INVALID_REQUEST, "Could not parse request body into json: Could not "
                                           "parse payload into json");
  if (p->type == FN_INVOKE_SYNC)
    return start_sync(s, name, qualifier, p, NULL, res, e);

  fn__registry_sync(s, name);
  pthread_mutex_lock(&s->lock);
  bool stopping = s->stopping;
  fn_entry *f = fn__registry_find(s, name);
  conf *c = NULL;
  const char *version = NULL;
  rc = f ? fn__registry_resolve(f, qualifier, &c, &version, e)
         : err_set(e, ERR_NOT_FOUND, "Function not found: arn:aws:lambda:%s:%s:function:%s",
                   FN_REGION, FN_ACCOUNT_ID, name);
  if (rc == 0)
    res->executed_version = arena_strdup(a, version);
  pthread_mutex_unlock(&s->lock);
  if (rc)
    return rc;
  if (stopping)
    return err_set(e, ERR_UNAVAILABLE, "tarn is stopping");
  char id[37];
  uuid_v4(id);
  res->request_id = arena_strdup(a, id);
  buf_init(&res->payload, 0);
  if (p->type == FN_INVOKE_DRYRUN) {
    res->status = 204;
    return 0;
  }
  rc = enqueue(s, name, qualifier, p->payload, p->len, id, e);
  if (rc == 0)
    res->status = 202;
  return rc;
}
