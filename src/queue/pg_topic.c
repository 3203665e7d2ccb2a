/* queue/pg_topic.c -- topics, subscriptions and the delivery outbox in
 * PostgreSQL (`tarn server --metadata postgres://...`), so that every node
 * over the same database serves the same topics and each delivery leaves
 * once, from one node.
 *
 * Why: a Subscribe answered by one node must be seen by a Publish on any
 * node right after, and a publish acknowledged by a node that then dies
 * must still reach its subscribers. The LMDB store (topic.c, publish.c,
 * deliver.c) keeps the same contract on one node; validation, the cache of
 * topics and subscriptions and the envelopes are shared (topic_store in
 * internal.h).
 *
 * Tables (created by pg_pool_schema):
 *   tarn_sns_topics   name -> version, record (topic.c's JSON)
 *   tarn_sns_subs     arn -> topic, protocol, endpoint, record; unique
 *                     (topic, protocol, endpoint); deleted with their topic
 *   tarn_sns_outbox   id -> subscription, due time, attempts, owner and
 *                     claim time, entry (deliver.c's JSON); deleted with
 *                     their subscription, in its transaction
 * Notifications on pg_store.c's channel: "t NAME" (topic NAME or one of its
 * subscriptions changed: reload it).
 *
 * Invariants:
 *   (1) Every change of a topic or of one of its subscriptions gives the
 *       topic's row a new version (one sequence for all topics, so a topic
 *       deleted and made again never repeats a version), in the change's
 *       transaction, which also notifies.
 *   (2) A publish builds its deliveries from the cache, then commits them in
 *       one transaction that first reads the topic's version FOR SHARE: if
 *       it is not the one the deliveries were built from, nothing is
 *       written and publish.c reloads and builds again. A change waits for
 *       the publishes that hold the row, and a publish that waited reads the
 *       new version: a subscription committed before a publish began is in
 *       its deliveries, on any node.
 *   (3) Copies for queues are written by the queue store (pg_store.c) in
 *       the publish's transaction: each subscribed queue gets each message
 *       once, visible on every node. Copies for standard queues go in one
 *       multi-row INSERT, the deliveries to the outbox in another; FIFO
 *       queues' copies one by one, in order, locked and deduplicated as a
 *       SendMessage is.
 *   (4) An outbox row is claimed by one worker (FOR UPDATE SKIP LOCKED,
 *       owner and claim time) and deleted by its owner once delivered; a
 *       claim older than the lease (TARN_SNS_LEASE_SECONDS, default 300)
 *       may be taken by any node: the deliveries of a node killed while it
 *       held them are made by another (at least once). A failed delivery
 *       goes back with a later due time and one more attempt.
 *   (5) The cache changes under meta_mu (as the queues' do); connections
 *       are taken under meta_mu only for reloads (pg_store.c's lock order).
 *
 * Start reading at pg_publish() and outbox_one().
 */
#include "internal.h"

#include "base/mem.h"
#include "base/text.h"

#include <libpq-fe.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHANNEL "tarn_queue"
#define LEASE_DEFAULT_S 300
#define OUTBOX_POLL_MS 1000
#define WAIT_RETRY_MS 1000
#define OUTBOX_ARRAY_MAX (1u << 30) /* a publish's deliveries: bounded by its entries */

static const char schema[] =
    "CREATE SEQUENCE IF NOT EXISTS tarn_sns_version;"
    "CREATE TABLE IF NOT EXISTS tarn_sns_topics ("
    " name text PRIMARY KEY,"
    " version bigint NOT NULL,"
    " record text NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tarn_sns_subs ("
    " arn text PRIMARY KEY,"
    " topic text NOT NULL REFERENCES tarn_sns_topics (name) ON DELETE CASCADE,"
    " protocol text NOT NULL,"
    " endpoint text NOT NULL,"
    " record text NOT NULL,"
    " UNIQUE (topic, protocol, endpoint));"
    "CREATE TABLE IF NOT EXISTS tarn_sns_outbox ("
    " id bigserial PRIMARY KEY,"
    " sub text NOT NULL,"
    " due_ms bigint NOT NULL,"
    " attempts integer NOT NULL DEFAULT 0,"
    " owner text,"
    " claimed_ms bigint NOT NULL DEFAULT 0,"
    " entry text NOT NULL);"
    "CREATE INDEX IF NOT EXISTS tarn_sns_outbox_due ON tarn_sns_outbox (due_ms);"
    "CREATE INDEX IF NOT EXISTS tarn_sns_outbox_sub ON tarn_sns_outbox (sub);";

static char *i64(arena *a, int64_t v)
{
  return arena_sprintf(a, "%" PRId64, v);
}

/* ---- reloads (meta_mu held: invariant 5) ---- */

/* One row per topic: name, version, record, its subscriptions as a JSON
 * array of [arn, record]; one statement, so one snapshot. */
#define LOAD_SQL                                                                            \
  "SELECT t.name, t.version, t.record, (SELECT coalesce(json_agg(json_build_array(s.arn,"  \
  " s.record)), '[]')::text FROM tarn_sns_subs s WHERE s.topic = t.name)"                   \
  " FROM tarn_sns_topics t"

static int pg_refresh(queue_system *q, const char *name, err *e)
{
  PGresult *r = NULL;
  const char *p[1] = {name};
  int rc = pg_pool_exec(queue__pg_pool(q), name != NULL ? LOAD_SQL " WHERE t.name = $1" : LOAD_SQL,
                        name != NULL ? 1 : 0, name != NULL ? p : NULL, NULL, NULL, &r,
                        "read the topics", e);
  if (rc != 0)
    return rc;
  int n = PQntuples(r);
  mtopic **ts = xcalloc((size_t)n + 1, sizeof *ts);
  size_t nt = 0, ns = 0, caps = 16;
  msub **subs = xcalloc(caps, sizeof *subs);
  for (int i = 0; i < n; i++) {
    const char *tname = PQgetvalue(r, i, 0);
    mtopic *t = queue__topic_from_record(tname, strlen(tname), PQgetvalue(r, i, 2),
                                         (size_t)PQgetlength(r, i, 2));
    if (t == NULL)
      continue;
    t->version = (int64_t)pg_col_int(r, i, 1);
    ts[nt++] = t;
    json_t *arr = json_loads(PQgetvalue(r, i, 3), 0, NULL);
    size_t k;
    json_t *pair;
    json_array_foreach(arr, k, pair) {
      const char *arn = json_string_value(json_array_get(pair, 0));
      const char *rec = json_string_value(json_array_get(pair, 1));
      if (arn == NULL || rec == NULL)
        continue;
      msub *s = queue__sub_from_record(arn, strlen(arn), rec, strlen(rec));
      if (s == NULL)
        continue;
      if (ns == caps) {
        caps *= 2;
        subs = xrealloc(subs, caps * sizeof *subs);
      }
      subs[ns++] = s;
    }
    json_decref(arr);
  }
  PQclear(r);
  queue__topic_cache_set(q, name, ts, nt, subs, ns);
  free(ts);
  free(subs);
  return 0;
}

void queue__pg_topic_heard(queue_system *q, const char *name)
{
  err ignore = {0};
  pthread_mutex_lock(&q->meta_mu);
  pg_refresh(q, name, &ignore);
  pthread_mutex_unlock(&q->meta_mu);
}

/* ---- changes (invariant 1) ---- */

typedef struct change_ctx {
  const char *topic;
  const mtopic *t;
  const msub *s;
  bool create;
  bool remove;
  json_t *confirm;
} change_ctx;

/* Runs sql; no row changed is `none` (an error code set with `why`). */
static int exec_some(PGconn *c, const char *sql, int n, const char *const *p, int none,
                     const char *why, err *e)
{
  PGresult *r = NULL;
  int rc = pg_exec(c, sql, n, p, &r, why, e);
  if (rc == 0 && strcmp(PQcmdTuples(r), "0") == 0)
    rc = none == QUEUE_ERR_NO_TOPIC  ? err_set(e, none, "Topic does not exist")
         : none == QUEUE_ERR_NO_SUB ? err_set(e, none, "Subscription does not exist")
                                    : err_set(e, none, "%s: it exists already", why);
  PQclear(r);
  return rc;
}

static int bump_and_notify(PGconn *c, const char *topic, err *e)
{
  const char *p[1] = {topic};
  int rc = exec_some(c, "UPDATE tarn_sns_topics SET version = nextval('tarn_sns_version')"
                     " WHERE name = $1", 1, p, QUEUE_ERR_NO_TOPIC, "change a topic", e);
  if (rc == 0)
    rc = pg_exec(c, "SELECT pg_notify('" CHANNEL "', 't ' || $1)", 1, p, NULL, "notify", e);
  return rc;
}

/* n outbox rows (a publish's deliveries, a confirmation) in one INSERT. */
static int outbox_insert_many(PGconn *c, const char *const *subs, json_t *const *entries,
                              size_t n, arena *a, err *e)
{
  buf s, t;
  buf_init(&s, OUTBOX_ARRAY_MAX);
  buf_init(&t, OUTBOX_ARRAY_MAX);
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    char *text = json_dumps(entries[i], JSON_COMPACT);
    if (text == NULL)
      mem_out_of_memory();
    bad |= pg_array_add(&s, subs[i]);
    bad |= pg_array_add(&t, text);
    free(text);
  }
  bad |= pg_array_end(&s);
  bad |= pg_array_end(&t);
  int rc;
  if (bad != 0) {
    rc = err_set(e, ERR_INTERNAL, "a publish's deliveries do not fit one statement");
  } else {
    const char *p[3] = {s.data, i64(a, queue__now_ms()), t.data};
    rc = pg_exec(c, "INSERT INTO tarn_sns_outbox (sub, due_ms, entry) SELECT x.sub, $2, x.entry"
                 " FROM unnest($1::text[], $3::text[]) WITH ORDINALITY AS x(sub, entry, ord)"
                 " ORDER BY x.ord", 3, p, NULL, "write deliveries", e);
  }
  buf_release(&s);
  buf_release(&t);
  return rc;
}

static int topic_txn(PGconn *c, void *arg, err *e)
{
  change_ctx *x = arg;
  const char *p[2] = {x->topic, NULL};
  int rc;
  if (x->remove) { /* its subscriptions (ON DELETE CASCADE) and their deliveries */
    rc = pg_exec(c, "DELETE FROM tarn_sns_outbox WHERE sub IN (SELECT arn FROM tarn_sns_subs"
                 " WHERE topic = $1)", 1, p, NULL, "delete a topic's deliveries", e);
    if (rc == 0)
      rc = pg_exec(c, "DELETE FROM tarn_sns_topics WHERE name = $1", 1, p, NULL,
                   "delete a topic", e);
    if (rc == 0)
      rc = pg_exec(c, "SELECT pg_notify('" CHANNEL "', 't ' || $1)", 1, p, NULL, "notify", e);
    return rc;
  }
  char *rec = queue__topic_record(x->t);
  p[1] = rec;
  if (x->create)
    rc = exec_some(c, "INSERT INTO tarn_sns_topics (name, version, record) VALUES"
                   " ($1, nextval('tarn_sns_version'), $2) ON CONFLICT (name) DO NOTHING",
                   2, p, ERR_CONFLICT, "create a topic", e);
  else
    rc = exec_some(c, "UPDATE tarn_sns_topics SET record = $2 WHERE name = $1", 2, p,
                   QUEUE_ERR_NO_TOPIC, "change a topic", e);
  free(rec);
  return rc != 0 ? rc : bump_and_notify(c, x->topic, e);
}

static int sub_txn(PGconn *c, void *arg, err *e)
{
  change_ctx *x = arg;
  int rc = bump_and_notify(c, x->topic, e); /* locks the topic's row first */
  if (rc != 0)
    return rc;
  const msub *s = x->s;
  if (x->remove) { /* its pending deliveries go with it */
    const char *p[1] = {s->arn};
    rc = pg_exec(c, "DELETE FROM tarn_sns_outbox WHERE sub = $1", 1, p, NULL,
                 "delete a subscription's deliveries", e);
    return rc != 0 ? rc : pg_exec(c, "DELETE FROM tarn_sns_subs WHERE arn = $1", 1, p, NULL,
                                  "delete a subscription", e);
  }
  char *rec = queue__sub_record(s);
  if (x->create) {
    const char *p[5] = {s->arn, s->topic, s->protocol, s->endpoint, rec};
    rc = exec_some(c, "INSERT INTO tarn_sns_subs (arn, topic, protocol, endpoint, record)"
                   " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING", 5, p, ERR_CONFLICT,
                   "create a subscription", e);
  } else {
    const char *p[2] = {s->arn, rec};
    rc = exec_some(c, "UPDATE tarn_sns_subs SET record = $2 WHERE arn = $1", 2, p,
                   QUEUE_ERR_NO_SUB, "change a subscription", e);
  }
  free(rec);
  if (rc == 0 && x->confirm != NULL) {
    arena *a = arena_new();
    const char *sub = s->arn;
    rc = outbox_insert_many(c, &sub, &x->confirm, 1, a, e);
    arena_free(a);
  }
  return rc;
}

static int pg_topic_put(queue_system *q, const mtopic *t, bool create, err *e)
{
  change_ctx x = {.topic = t->name, .t = t, .create = create};
  return pg_transaction(queue__pg_pool(q), NULL, topic_txn, &x, e);
}

static int pg_topic_delete(queue_system *q, const char *name, char *const *subs, size_t nsubs,
                           err *e)
{
  (void)subs; /* deleted with the topic's row (ON DELETE CASCADE) */
  (void)nsubs;
  change_ctx x = {.topic = name, .remove = true};
  return pg_transaction(queue__pg_pool(q), NULL, topic_txn, &x, e);
}

static int pg_sub_put(queue_system *q, const msub *s, bool create, json_t *confirm, err *e)
{
  change_ctx x = {.topic = s->topic, .s = s, .create = create, .confirm = confirm};
  int rc = pg_transaction(queue__pg_pool(q), NULL, sub_txn, &x, e);
  if (rc == 0 && confirm != NULL)
    queue__deliver_kick(q);
  return rc;
}

static int pg_sub_delete(queue_system *q, const msub *s, err *e)
{
  change_ctx x = {.topic = s->topic, .s = s, .remove = true};
  return pg_transaction(queue__pg_pool(q), NULL, sub_txn, &x, e);
}

/* ---- publish (invariants 2 and 3) ---- */

typedef struct wake {
  uint64_t qid;
  uint64_t count;
} wake;

typedef struct pub_ctx {
  pub_arg *arg;
  qsnap *snaps;             /* per target, in order; resolved before the transaction */
  bool *have;
  size_t ntargets;          /* of all entries */
  wake *wakes;              /* polls to wake after the commit */
  size_t nwakes;
  bool outbox;              /* deliveries were added: kick the workers */
} pub_ctx;

static void wake_add(pub_ctx *x, uint64_t qid, uint64_t count)
{
  if (count == 0)
    return;
  for (size_t i = 0; i < x->nwakes; i++)
    if (x->wakes[i].qid == qid) {
      x->wakes[i].count += count;
      return;
    }
  x->wakes[x->nwakes++] = (wake){qid, count};
}

static void wake_one(void *ctx, uint64_t qid)
{
  wake_add(ctx, qid, 1);
}

static int publish_txn(PGconn *c, void *arg, err *e)
{
  pub_ctx *x = arg;
  pub_arg *pa = x->arg;
  x->nwakes = 0; /* counted again if the transaction runs again */
  x->outbox = false;
  const char *p[1] = {pa->topic};
  PGresult *r = NULL;
  int rc = pg_exec(c, "SELECT version FROM tarn_sns_topics WHERE name = $1 FOR SHARE", 1, p, &r,
                   "read a topic", e);
  if (rc != 0)
    return rc;
  bool found = PQntuples(r) > 0;
  int64_t version = found ? (int64_t)pg_col_int(r, 0, 0) : 0;
  PQclear(r);
  if (!found)
    return err_set(e, QUEUE_ERR_NO_TOPIC, "Topic does not exist");
  if (version != pa->version)
    return 1; /* invariant 2: build again */
  arena *a = arena_new();
  int64_t now = queue__now_ms();
  /* copies for standard queues and deliveries each in one statement
     (invariant 3); FIFO queues' copies one by one, in order, as a
     SendMessage locks and deduplicates them */
  size_t ncopies = 0, nout = 0, cap = x->ntargets + 1;
  pg_copy *copies = arena_alloc(a, cap * sizeof *copies);
  const char **subs = arena_alloc(a, cap * sizeof *subs);
  json_t **entries = arena_alloc(a, cap * sizeof *entries);
  size_t k = 0;
  for (size_t i = 0; rc == 0 && i < pa->n; i++) {
    pub_entry *pe = &pa->entries[i];
    for (size_t j = 0; rc == 0 && j < pe->ntargets; j++, k++) {
      if (pe->e->code != 0)
        continue;
      pub_target *tg = &pe->targets[j];
      if (!tg->sqs) {
        subs[nout] = tg->sub;
        entries[nout++] = tg->entry;
        continue;
      }
      queue_send m = tg->send;
      if (!x->have[k] || !queue__publish_fits(&x->snaps[k], &m))
        continue;
      if (!x->snaps[k].fifo) {
        copies[ncopies++] = (pg_copy){&x->snaps[k], m};
        continue;
      }
      uint64_t visible = 0;
      rc = queue__pg_send_on(c, &x->snaps[k], &m, now, a, &visible, e);
      if (rc == QUEUE_ERR_NO_QUEUE) { /* deleted meanwhile: its copy is lost, as in SNS */
        err_clear(e);
        rc = 0;
      }
      wake_add(x, x->snaps[k].id, visible);
    }
  }
  if (rc == 0 && ncopies > 0)
    rc = queue__pg_send_many(c, copies, ncopies, now, a, wake_one, x, e);
  if (rc == 0 && nout > 0) {
    rc = outbox_insert_many(c, subs, entries, nout, a, e);
    x->outbox = true;
  }
  arena_free(a);
  return rc;
}

static int pg_publish(queue_system *q, pub_arg *arg, err *e)
{
  size_t n = 0;
  for (size_t i = 0; i < arg->n; i++)
    n += arg->entries[i].ntargets;
  pub_ctx x = {.arg = arg, .ntargets = n};
  x.snaps = xcalloc(n + 1, sizeof *x.snaps);
  x.have = xcalloc(n + 1, sizeof *x.have);
  x.wakes = xcalloc(n + 1, sizeof *x.wakes);
  /* before a connection is held: finding a queue may reload the cache
     under meta_mu (invariant 5) */
  size_t k = 0;
  for (size_t i = 0; i < arg->n; i++)
    for (size_t j = 0; j < arg->entries[i].ntargets; j++, k++) {
      pub_target *tg = &arg->entries[i].targets[j];
      err ignore = {0};
      x.have[k] = tg->sqs && arg->entries[i].e->code == 0 &&
                  queue__snap_name(q, tg->queue, &x.snaps[k], &ignore) == 0;
    }
  int rc = pg_transaction(queue__pg_pool(q), NULL, publish_txn, &x, e);
  if (rc == 0) {
    for (size_t i = 0; i < x.nwakes; i++)
      queue__pg_wake(q, x.wakes[i].qid, x.wakes[i].count);
    if (x.outbox)
      queue__deliver_kick(q);
  }
  free(x.snaps);
  free(x.have);
  free(x.wakes);
  return rc;
}

/* ---- the outbox workers (invariant 4) ---- */

static char owner_id[40];
static pthread_once_t owner_once = PTHREAD_ONCE_INIT;

static void owner_init(void)
{
  snprintf(owner_id, sizeof owner_id, "%016" PRIx64 "-%d", queue__rand64(), (int)getpid());
}

static int64_t lease_ms(void)
{
  return (int64_t)pg_lease_ms("TARN_SNS_LEASE_SECONDS", LEASE_DEFAULT_S);
}

static const char claim_sql[] =
    "UPDATE tarn_sns_outbox SET owner = $1, claimed_ms = $2 WHERE id = (SELECT id FROM"
    " tarn_sns_outbox WHERE due_ms <= $2 AND (owner IS NULL OR claimed_ms < $3)"
    " ORDER BY due_ms LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING id, attempts, entry,"
    " EXISTS (SELECT 1 FROM tarn_sns_subs s WHERE s.arn = tarn_sns_outbox.sub)";

/* Claims and performs one due delivery; false when there was none. */
static bool outbox_one(queue_system *q)
{
  pg_pool *pool = queue__pg_pool(q);
  arena *a = arena_new();
  int64_t now = queue__now_ms();
  const char *p[3] = {owner_id, i64(a, now), i64(a, now - lease_ms())};
  PGresult *r = NULL;
  err e = {0};
  if (pg_pool_exec(pool, claim_sql, 3, p, NULL, NULL, &r, "claim a delivery", &e) != 0 ||
      PQntuples(r) == 0) {
    PQclear(r);
    arena_free(a);
    return false;
  }
  const char *id = arena_strdup(a, PQgetvalue(r, 0, 0));
  uint32_t attempts = (uint32_t)pg_col_int(r, 0, 1);
  json_t *j = json_loads(PQgetvalue(r, 0, 2), 0, NULL);
  bool exists = PQgetvalue(r, 0, 3)[0] == 't';
  PQclear(r);
  /* a damaged entry is dropped */
  enum queue_outcome out = j != NULL ? queue__deliver_entry(q, j, exists) : QUEUE_DONE;
  json_decref(j);
  if (out == QUEUE_RETRY && attempts + 1 >= q->max_attempts)
    out = QUEUE_DONE; /* given up */
  now = queue__now_ms();
  const char *f[3] = {id, owner_id, NULL};
  if (out == QUEUE_DONE) {
    pg_pool_exec(pool, "DELETE FROM tarn_sns_outbox WHERE id = $1 AND owner = $2", 2, f, NULL,
                 NULL, NULL, "delete a delivery", &e);
  } else {
    int64_t due = now + (out == QUEUE_RETRY ? queue__retry_delay(q, attempts) : WAIT_RETRY_MS);
    f[2] = i64(a, due);
    pg_pool_exec(pool, out == QUEUE_RETRY
                           ? "UPDATE tarn_sns_outbox SET owner = NULL, due_ms = $3,"
                             " attempts = attempts + 1 WHERE id = $1 AND owner = $2"
                           : "UPDATE tarn_sns_outbox SET owner = NULL, due_ms = $3"
                             " WHERE id = $1 AND owner = $2",
                 3, f, NULL, NULL, NULL, "put back a delivery", &e);
  }
  /* a failed statement leaves the claim to expire: the lease redoes it */
  arena_free(a);
  return true;
}

void *queue__pg_outbox_main(void *arg)
{
  queue_system *q = arg;
  pthread_once(&owner_once, owner_init);
  pthread_mutex_lock(&q->dmu);
  while (!q->dstop) {
    uint64_t seen = q->dkick;
    pthread_mutex_unlock(&q->dmu);
    bool worked = outbox_one(q);
    pthread_mutex_lock(&q->dmu);
    if (!worked && !q->dstop && q->dkick == seen) { /* other nodes' work: polled */
      struct timespec ts = time_deadline(CLOCK_MONOTONIC, OUTBOX_POLL_MS);
      pthread_cond_timedwait(&q->dcv, &q->dmu, &ts);
    }
  }
  pthread_mutex_unlock(&q->dmu);
  return NULL;
}

/* ---- life cycle ---- */

int queue__pg_topics_open(queue_system *q, err *e)
{
  int rc = pg_pool_schema(queue__pg_pool(q), "tarn_sns", schema, e);
  if (rc != 0)
    return err_wrap(e, "create the topic tables");
  pthread_mutex_lock(&q->meta_mu);
  rc = pg_refresh(q, NULL, e);
  pthread_mutex_unlock(&q->meta_mu);
  return rc != 0 ? err_wrap(e, "load the topics") : 0;
}

const topic_store queue__pg_topics = {
    .refresh = pg_refresh,
    .topic_put = pg_topic_put,
    .topic_delete = pg_topic_delete,
    .sub_put = pg_sub_put,
    .sub_delete = pg_sub_delete,
    .publish = pg_publish,
};
