/* queue/deliver.c -- the outbox and its workers: deliveries of
 * notifications to functions (through the registered callback) and to
 * HTTP/HTTPS endpoints (POST through base/egress.h), with retries and backoff.
 *
 * Why an outbox: a publish is acknowledged once committed; what leaves the
 * process (a function call, an HTTP POST) cannot be in that commit, so the
 * commit records the delivery in db_outbox and a worker performs it, then
 * deletes the entry. A crash in between repeats the delivery: at least once.
 *
 * Invariants:
 *   (1) An entry is removed from db_outbox only after its delivery
 *       succeeded, its subscription is gone, or it failed max_attempts times.
 *   (2) Each entry is in the schedule at most once, or held by one worker.
 *   (3) The schedule is memory only: at start every entry in db_outbox is
 *       due at once; attempts count from zero again after a restart.
 *   (4) Retries wait retry_base_ms, doubling, at most 60 s; lambda
 *       deliveries wait without counting until a deliverer is registered.
 *   (5) An HTTP delivery goes through base/egress.h: it connects only to
 *       an address the egress policy allows (base/netpolicy.h), judged on
 *       the resolved address at connect time, so a name that resolves (or
 *       rebinds) to loopback or a private range is refused like an
 *       unreachable endpoint: retries and giving up apply. Redirects are
 *       not followed (Amazon SNS treats a 3xx as a failed delivery), and
 *       no proxy is used. Subscribe refuses literal addresses early
 *       (queue__endpoint_check).
 *
 * With --metadata the outbox is a PostgreSQL table and the workers run
 * pg_topic.c's loop (claims with a lease); queue__deliver_entry() performs
 * a delivery for both.
 *
 * Start reading at worker_main().
 */
#include "internal.h"

#include "base/egress.h"
#include "base/mem.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MAX_MS 60000
#define HTTP_TIMEOUT_MS 15000
#define HTTP_CONNECT_TIMEOUT_MS 5000

struct dentry {
  uint64_t key;
  int64_t due_ms;       /* wall clock */
  uint32_t attempts;    /* failed so far */
  dentry *next;
};

int queue__outbox_put(queue_system *q, qchange *c, MDB_txn *txn, json_t *entry, err *e)
{
  uint64_t key = queue__counter_next(q, txn, "outbox", &q->next_outbox, e);
  if (key == 0)
    return e->code;
  char *text = json_dumps(entry, JSON_COMPACT);
  if (text == NULL)
    mem_out_of_memory();
  uint8_t kb[8];
  queue__be64_put(kb, key);
  MDB_val k = {8, kb};
  MDB_val v = {strlen(text), text};
  int mrc = mdb_put(txn, q->db_outbox, &k, &v, 0);
  free(text);
  if (mrc != 0)
    return lmdb_error(e, mrc, "write a delivery");
  queue__note(c, NOTE_OUTBOX, key, 0);
  return 0;
}

void queue__deliver_schedule(queue_system *q, uint64_t key, int64_t due_ms, uint32_t attempts)
{
  dentry *d = xcalloc(1, sizeof *d);
  d->key = key;
  d->due_ms = due_ms;
  d->attempts = attempts;
  pthread_mutex_lock(&q->dmu);
  dentry **pp = &q->due;
  for (dentry *x = q->due; x != NULL; x = x->next)
    if (x->key == key) {  /* invariant 2 */
      pthread_mutex_unlock(&q->dmu);
      free(d);
      return;
    }
  while (*pp != NULL && (*pp)->due_ms <= due_ms)
    pp = &(*pp)->next;
  d->next = *pp;
  *pp = d;
  pthread_cond_signal(&q->dcv);
  pthread_mutex_unlock(&q->dmu);
}

int queue__deliver_load(queue_system *q, err *e)
{
  if (q->pg != NULL)
    return 0; /* the workers claim from the shared outbox (pg_topic.c) */
  MDB_txn *txn = NULL;
  int rc = queue__read_begin(q, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, q->db_outbox, &cur);
  if (mrc != 0) {
    mdb_txn_abort(txn);
    return lmdb_error(e, mrc, "read the outbox");
  }
  MDB_val k, v;
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    if (k.mv_size == 8)
      queue__deliver_schedule(q, queue__be64_get(k.mv_data), 0, 0);
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return 0;
}

void queue_set_lambda_deliverer(queue_system *q, queue_lambda_deliver_fn fn, void *ctx)
{
  pthread_mutex_lock(&q->dmu);
  q->lambda_fn = fn;
  q->lambda_ctx = ctx;
  pthread_cond_broadcast(&q->dcv);
  pthread_mutex_unlock(&q->dmu);
}

/* ---- one delivery ---- */

static int apply_outbox_del(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  uint8_t kb[8];
  queue__be64_put(kb, *(uint64_t *)c->arg);
  MDB_val k = {8, kb};
  int mrc = mdb_del(txn, q->db_outbox, &k, NULL);
  return mrc && mrc != MDB_NOTFOUND ? lmdb_error(e, mrc, "delete a delivery") : 0;
}

int queue__endpoint_check(queue_system *q, const char *url, err *e)
{
  return egress_url_check(q->egress, url, e);
}

static int http_post(const netpolicy *policy, const char *url, const char *type, const char *message_id,
                     const char *topic, const char *sub, bool raw, const char *body, err *e)
{
  str_pair h[6];
  size_t n = 0;
  h[n++] = (str_pair){"Content-Type", "text/plain; charset=UTF-8"};
  h[n++] = (str_pair){"x-amz-sns-message-type", type};
  h[n++] = (str_pair){"x-amz-sns-message-id", message_id};
  h[n++] = (str_pair){"x-amz-sns-topic-arn", topic};
  if (strcmp(type, "Notification") == 0)
    h[n++] = (str_pair){"x-amz-sns-subscription-arn", sub};
  if (raw)
    h[n++] = (str_pair){"x-amz-sns-rawdelivery", "true"};
  egress_request rq = {
      .method = "POST",
      .url = url,
      .headers = h,
      .nheaders = n,
      .body = body,
      .body_len = strlen(body),
      .user_agent = "Amazon Simple Notification Service Agent",
      .timeout_ms = HTTP_TIMEOUT_MS,
      .connect_timeout_ms = HTTP_CONNECT_TIMEOUT_MS,
  };
  arena *a = arena_new();
  egress_response res;
  int rc = egress_fetch(policy, &rq, a, &res, e);
  if (rc == 0) {
    buf_release(&res.body);
    if (res.status < 200 || res.status > 299)
      rc = err_set(e, ERR_UNAVAILABLE, "'%s' answered %ld", url, res.status);
  }
  arena_free(a);
  return rc;
}

/* Whether the subscription still exists, in the database (the cache is
 * updated only after the commit that scheduled this delivery). */
static bool sub_exists(queue_system *q, MDB_txn *txn, const char *arn)
{
  MDB_val k = {strlen(arn), (void *)arn};
  MDB_val v;
  return mdb_get(txn, q->db_subs, &k, &v) == 0;
}

enum queue_outcome queue__deliver_entry(queue_system *q, json_t *j, bool exists)
{
  err e = {0};
  const char *sub = json_string_value(json_object_get(j, "sub"));
  const char *protocol = json_string_value(json_object_get(j, "protocol"));
  const char *endpoint = json_string_value(json_object_get(j, "endpoint"));
  const char *type = json_string_value(json_object_get(j, "type"));
  const char *id = json_string_value(json_object_get(j, "message_id"));
  const char *topic = json_string_value(json_object_get(j, "topic"));
  const char *body = json_string_value(json_object_get(j, "body"));
  bool raw = json_is_true(json_object_get(j, "raw"));
  enum queue_outcome out = QUEUE_DONE;
  if (sub == NULL || protocol == NULL || endpoint == NULL || body == NULL || type == NULL ||
      !exists) {
    out = QUEUE_DONE;
  } else if (strcmp(protocol, "lambda") == 0) {
    pthread_mutex_lock(&q->dmu);
    queue_lambda_deliver_fn fn = q->lambda_fn;
    void *ctx = q->lambda_ctx;
    pthread_mutex_unlock(&q->dmu);
    if (fn == NULL)
      out = QUEUE_WAIT;
    else
      out = fn(ctx, endpoint, body, strlen(body), &e) == 0 ? QUEUE_DONE : QUEUE_RETRY;
  } else {
    out = http_post(q->egress, endpoint, type, id ? id : "", topic ? topic : "", sub, raw, body,
                    &e) == 0
              ? QUEUE_DONE
              : QUEUE_RETRY;
    if (out == QUEUE_RETRY && q->delivery_failed != NULL)
      q->delivery_failed(sub, e.msg);
  }
  return out;
}

int64_t queue__retry_delay(queue_system *q, uint32_t attempts)
{
  int64_t delay = q->retry_base_ms;
  for (uint32_t i = 0; i < attempts && delay < RETRY_MAX_MS; i++)
    delay *= 2;
  return delay > RETRY_MAX_MS ? RETRY_MAX_MS : delay;
}

void queue__deliver_kick(queue_system *q)
{
  pthread_mutex_lock(&q->dmu);
  q->dkick++;
  pthread_cond_broadcast(&q->dcv);
  pthread_mutex_unlock(&q->dmu);
}

static enum queue_outcome deliver(queue_system *q, dentry *d)
{
  MDB_txn *txn = NULL;
  err e = {0};
  if (queue__read_begin(q, &txn, &e) != 0)
    return QUEUE_RETRY;
  uint8_t kb[8];
  queue__be64_put(kb, d->key);
  MDB_val k = {8, kb};
  MDB_val v;
  int mrc = mdb_get(txn, q->db_outbox, &k, &v);
  json_t *j = mrc == 0 ? json_loadb(v.mv_data, v.mv_size, 0, NULL) : NULL;
  const char *sub = json_string_value(json_object_get(j, "sub"));
  bool exists = sub != NULL && sub_exists(q, txn, sub);
  mdb_txn_abort(txn);
  if (mrc == MDB_NOTFOUND)
    return QUEUE_DONE;
  if (j == NULL)
    return mrc == 0 ? QUEUE_DONE : QUEUE_RETRY;  /* a damaged entry is dropped */
  enum queue_outcome out = queue__deliver_entry(q, j, exists);
  json_decref(j);
  return out;
}

static void *worker_main(void *arg)
{
  queue_system *q = arg;
  pthread_mutex_lock(&q->dmu);
  for (;;) {
    while (!q->dstop && (q->due == NULL || q->due->due_ms > queue__now_ms())) {
      int64_t wait = q->due == NULL ? 1000 : q->due->due_ms - queue__now_ms();
      if (wait > 1000)
        wait = 1000;
      if (wait < 1)
        wait = 1;
      struct timespec ts = time_deadline(CLOCK_MONOTONIC, wait);
      pthread_cond_timedwait(&q->dcv, &q->dmu, &ts);
    }
    if (q->dstop)
      break;
    dentry *d = q->due;
    q->due = d->next;
    pthread_mutex_unlock(&q->dmu);

    enum queue_outcome out = deliver(q, d);
    if (out == QUEUE_RETRY && d->attempts + 1 >= q->max_attempts)
      out = QUEUE_DONE;  /* invariant 1: given up */
    if (out == QUEUE_DONE) {
      qchange c;
      uint64_t key = d->key;
      queue__change_init(&c, apply_outbox_del, &key);
      err e = {0};
      if (queue__commit_run(q, &c, &e) != 0)
        out = QUEUE_RETRY;
    }
    if (out == QUEUE_RETRY) {
      queue__deliver_schedule(q, d->key, queue__now_ms() + queue__retry_delay(q, d->attempts),
                              d->attempts + 1);
    } else if (out == QUEUE_WAIT) {
      queue__deliver_schedule(q, d->key, queue__now_ms() + 1000, d->attempts);
    }
    free(d);
    pthread_mutex_lock(&q->dmu);
  }
  pthread_mutex_unlock(&q->dmu);
  return NULL;
}

int queue__deliver_start(queue_system *q, err *e)
{
  if (q->ndthreads > 0)
    return 0;
  egress_init();
  q->dthreads = xcalloc(q->workers, sizeof *q->dthreads);
  pthread_mutex_lock(&q->dmu);
  q->dstop = false;
  pthread_mutex_unlock(&q->dmu);
  for (uint32_t i = 0; i < q->workers; i++) {
    int rc = pthread_create(&q->dthreads[i], NULL,
                            q->pg != NULL ? queue__pg_outbox_main : worker_main, q);
    if (rc != 0) {
      queue__deliver_stop(q);
      return err_set(e, ERR_INTERNAL, "cannot start a delivery worker: %s", strerror(rc));
    }
    q->ndthreads++;
  }
  return 0;
}

void queue__deliver_stop(queue_system *q)
{
  pthread_mutex_lock(&q->dmu);
  q->dstop = true;
  pthread_cond_broadcast(&q->dcv);
  pthread_mutex_unlock(&q->dmu);
  for (size_t i = 0; i < q->ndthreads; i++)
    pthread_join(q->dthreads[i], NULL);
  q->ndthreads = 0;
  pthread_mutex_lock(&q->dmu);
  while (q->due != NULL) {
    dentry *d = q->due;
    q->due = d->next;
    free(d);
  }
  pthread_mutex_unlock(&q->dmu);
}
