/* queue/pg_store.c -- the queue store in PostgreSQL (`tarn server
 * --metadata postgres://...`): queues and their messages in tables shared
 * by every tarn node over the same database, so that two nodes serve the
 * same queues.
 *
 * Why: a queue served by several nodes must hand each message to one
 * receiver at a time whichever node it asks, and keep what any node
 * acknowledged. PostgreSQL already does both: row locks taken with
 * SKIP LOCKED make a receive exclusive without making receivers wait for
 * each other, and its commit is durable. The LMDB store (queues.c,
 * message.c) keeps the same contract on one node; validation, the queue
 * cache and the polls are shared (internal.h, queue_store).
 *
 * Tables (created by pg_pool_schema):
 *   tarn_queues          id, name, record (queues.c's JSON), version,
 *                        retention_ms
 *   tarn_queue_messages  (qid, seq) -> visible_at, received, recv_count,
 *                        token, ids, digests, body (queue__body_encode);
 *                        index (qid, visible_at, seq) for receives
 *   tarn_queue_dedup     (qid, dedup id) -> expiry, seq, message id (FIFO)
 * Notifications on channel tarn_queue: "w QID N" (N messages became
 * visible: wake N polls), "m NAME" (a queue's record changed) and
 * "t NAME" (a topic or its subscriptions changed: pg_topic.c).
 *
 * Invariants:
 *   (1) A receive selects visible rows FOR UPDATE SKIP LOCKED and moves
 *       their visible_at to the deadline in the same statement: two
 *       receivers, on any nodes, never get the same message before its
 *       deadline.
 *   (2) A receipt handle is (qid, seq, token); the token is new at every
 *       receive, so only the latest receiver's handle deletes or changes
 *       visibility, on whichever node it is used.
 *   (3) A send returns 0 only after its commit (synchronous_commit, the
 *       pool's default): an acknowledged message survives kill -9 of the
 *       node. A send does not lock its queue's row (concurrent senders
 *       would contend on it): a message committed by a send that raced a
 *       DeleteQueue is left without its queue, unseen, and the sweep
 *       removes it.
 *   (4) FIFO sends and receives of a queue hold its row FOR UPDATE: they
 *       are serialised across nodes, so a group's messages are numbered in
 *       commit order and one receive at a time decides which groups are
 *       free (none with a message in flight).
 *   (5) A notification is sent only once its news is committed, so a node
 *       that hears it can see the change. Wake-ups go through the notifier
 *       thread, which sends them in batches outside the senders'
 *       transactions: PostgreSQL serialises the commits of transactions
 *       that notify, which would cost every send a commit of its own.
 *   (6) The cache of queues (queues.c) changes under meta_mu; the listener
 *       takes it to reload a queue another node changed.
 *
 * Threads: the listener (one pooled connection held in LISTEN), the
 * notifier (sends wake-ups, invariant 5) and PG_POLL_WORKERS workers that
 * run the receives of long polls (poll.c hands them over through
 * queue_store.submit).
 *
 * Start reading at pg_send() and pg_receive().
 */
#include "internal.h"

#include "base/buf.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <libpq-fe.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG_POLL_WORKERS 4
#define CHANNEL "tarn_queue"
#define LISTEN_TICK_MS 1000

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS tarn_queues ("
    " id bigserial PRIMARY KEY,"
    " name text NOT NULL UNIQUE,"
    " record text NOT NULL,"
    " version bigint NOT NULL DEFAULT 0,"
    " retention_ms bigint NOT NULL);"
    "CREATE SEQUENCE IF NOT EXISTS tarn_queue_seq;"
    "CREATE TABLE IF NOT EXISTS tarn_queue_messages ("
    " qid bigint NOT NULL,"
    " seq bigint NOT NULL,"
    " visible_at bigint NOT NULL,"
    " received boolean NOT NULL DEFAULT false,"
    " recv_count integer NOT NULL DEFAULT 0,"
    " sent_ms bigint NOT NULL,"
    " first_recv_ms bigint NOT NULL DEFAULT 0,"
    " token bigint NOT NULL DEFAULT 0,"
    " id text NOT NULL,"
    " sender text NOT NULL,"
    " grp text,"
    " dedup text,"
    " trace text,"
    " md5_body text NOT NULL,"
    " md5_attrs text NOT NULL,"
    " body bytea NOT NULL,"
    " PRIMARY KEY (qid, seq));"
    "CREATE INDEX IF NOT EXISTS tarn_queue_messages_visible"
    " ON tarn_queue_messages (qid, visible_at, seq);"
    "CREATE TABLE IF NOT EXISTS tarn_queue_dedup ("
    " qid bigint NOT NULL REFERENCES tarn_queues (id) ON DELETE CASCADE,"
    " dedup text NOT NULL,"
    " expires_ms bigint NOT NULL,"
    " seq bigint NOT NULL,"
    " message_id text NOT NULL,"
    " PRIMARY KEY (qid, dedup));";

struct qpg {
  pg_pool *pool;              /* not owned: the server's --metadata pool */
  pthread_mutex_t mu;         /* guards the fields below */
  pthread_cond_t cv;          /* workers wait for jobs */
  qchange **jobs;             /* polls' receives to run, oldest first */
  size_t njobs;
  size_t capjobs;
  bool stop;                  /* no new jobs; workers drain and leave */
  pthread_t workers[PG_POLL_WORKERS];
  size_t nworkers;
  pthread_t listener;
  bool listening;
  pthread_cond_t ncv;         /* the notifier waits for wake-ups to send */
  struct wake_note { uint64_t qid; uint64_t count; } *notes; /* to send */
  size_t nnotes;
  size_t capnotes;
  pthread_t notifier;
  bool notifying;
  int wake[2];                /* a pipe: stop wakes the listener */
};

/* ---- small helpers ---- */

static const char no_queue_msg[] = "The specified queue does not exist.";

static char *i64(arena *a, int64_t v)
{
  return arena_sprintf(a, "%" PRId64, v);
}

static const char *col_str(const PGresult *r, int row, int col, arena *a)
{
  return PQgetisnull(r, row, col) ? NULL : arena_strdup(a, PQgetvalue(r, row, col));
}

static mqueue *queue_from_row(const PGresult *r, int row, int name_col)
{
  const char *name = PQgetvalue(r, row, name_col);
  mqueue *m = queue__mq_from_record(name, strlen(name), PQgetvalue(r, row, 2),
                                    (size_t)PQgetlength(r, row, 2));
  if (m == NULL)
    return NULL;
  m->id = (uint64_t)(int64_t)pg_col_int(r, row, 0);
  m->version = (int64_t)pg_col_int(r, row, 1);
  return m;
}

/* The record as stored: the id is the row's (0 in the JSON). */
static char *record_of(const mqueue *m)
{
  mqueue t = *m;
  t.id = 0;
  return queue__mq_record(&t);
}

/* Queues a wake-up of count polls of queue qid on every node (invariant
 * 5: call after the commit). */
static void notify_wake(queue_system *q, uint64_t qid, uint64_t count)
{
  if (count == 0)
    return;
  qpg *g = q->pg;
  pthread_mutex_lock(&g->mu);
  size_t i = 0;
  while (i < g->nnotes && g->notes[i].qid != qid)
    i++;
  if (i < g->nnotes) {
    g->notes[i].count += count;
  } else {
    if (g->nnotes == g->capnotes) {
      g->capnotes = g->capnotes ? g->capnotes * 2 : 16;
      g->notes = xrealloc(g->notes, g->capnotes * sizeof *g->notes);
    }
    g->notes[g->nnotes++] = (struct wake_note){qid, count};
  }
  pthread_cond_signal(&g->ncv);
  pthread_mutex_unlock(&g->mu);
}

/* ---- queues (meta_mu held: invariant 6) ---- */

static int pg_refresh(queue_system *q, const char *name, err *e)
{
  PGresult *r = NULL;
  int rc;
  if (name != NULL) {
    const char *p[1] = {name};
    rc = pg_pool_exec(q->pg->pool,
                      "SELECT id, version, record, name FROM tarn_queues WHERE name = $1", 1, p,
                      NULL, NULL, &r, "read a queue", e);
    if (rc == 0) {
      mqueue *m = PQntuples(r) > 0 ? queue_from_row(r, 0, 3) : NULL;
      queue__cache_set(q, name, m);
    }
  } else {
    rc = pg_pool_exec(q->pg->pool, "SELECT id, version, record, name FROM tarn_queues", 0, NULL,
                      NULL, NULL, &r, "read the queues", e);
    if (rc == 0) {
      int n = PQntuples(r);
      mqueue **ms = xcalloc((size_t)n + 1, sizeof *ms);
      size_t k = 0;
      for (int i = 0; i < n; i++)
        if ((ms[k] = queue_from_row(r, i, 3)) != NULL)
          k++;
      queue__cache_replace(q, ms, k);
      free(ms);
    }
  }
  PQclear(r);
  return rc;
}

/* Writes m's record with sql ($1 the record, $2 the retention, then k1 and
 * k2, the row's key), which returns one number into *out; no row is
 * ERR_CONFLICT (`conflict` says why). */
static int put_record(queue_system *q, const mqueue *m, const char *sql, const char *k1,
                      const char *k2, const char *conflict, int64_t *out, err *e)
{
  arena *a = arena_new();
  char *rec = record_of(m);
  const char *p[4] = {rec, i64(a, (int64_t)m->retention * 1000), k1, k2};
  PGresult *r = NULL;
  int rc = pg_pool_exec(q->pg->pool, sql, k2 != NULL ? 4 : 3, p, NULL, NULL, &r, "write a queue",
                        e);
  if (rc == 0 && PQntuples(r) == 0)
    rc = err_set(e, ERR_CONFLICT, "queue '%s' was %s by another node", m->name, conflict);
  else if (rc == 0)
    *out = (int64_t)pg_col_int(r, 0, 0);
  PQclear(r);
  free(rec);
  arena_free(a);
  return rc;
}

static int pg_create(queue_system *q, mqueue *m, err *e)
{
  int64_t id = 0;
  int rc = put_record(q, m,
                      "WITH i AS (INSERT INTO tarn_queues (record, retention_ms, name)"
                      " VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING id, name)"
                      " SELECT id, pg_notify('" CHANNEL "', 'm ' || name) FROM i",
                      m->name, NULL, "created", &id, e);
  m->id = (uint64_t)id;
  m->version = 0;
  return rc;
}

static int pg_update(queue_system *q, const mqueue *old, mqueue *m, err *e)
{
  char id[24];
  char version[24];
  snprintf(id, sizeof id, "%" PRIu64, old->id);
  snprintf(version, sizeof version, "%" PRId64, old->version);
  return put_record(q, m,
                    "WITH u AS (UPDATE tarn_queues SET record = $1, retention_ms = $2,"
                    " version = version + 1 WHERE id = $3 AND version = $4"
                    " RETURNING version, name)"
                    " SELECT version, pg_notify('" CHANNEL "', 'm ' || name) FROM u",
                    id, version, "changed", &m->version, e);
}

static int pg_remove(queue_system *q, const mqueue *m, err *e)
{
  arena *a = arena_new();
  const char *p[1] = {i64(a, (int64_t)m->id)};
  int rc = pg_pool_exec(q->pg->pool,
                         "WITH d AS (DELETE FROM tarn_queues WHERE id = $1 RETURNING id, name),"
                         " m AS (DELETE FROM tarn_queue_messages WHERE qid IN (SELECT id FROM d))"
                         " SELECT pg_notify('" CHANNEL "', 'm ' || name),"
                         " pg_notify('" CHANNEL "', 'w ' || id || ' -1') FROM d",
                         1, p, NULL, NULL, NULL, "delete a queue", e);
  arena_free(a);
  return rc;
}

static int pg_purge(queue_system *q, const mqueue *m, err *e)
{
  arena *a = arena_new();
  const char *p[1] = {i64(a, (int64_t)m->id)};
  int rc = pg_pool_exec(q->pg->pool, "DELETE FROM tarn_queue_messages WHERE qid = $1", 1, p,
                        NULL, NULL, NULL, "purge a queue", e);
  arena_free(a);
  return rc;
}

/* ---- send ---- */

/* Inserts one message if its queue exists (invariant 3); 0 rows: it is
 * gone. Returns the seq and whether it is visible at once. */
static const char insert_sql[] =
    "INSERT INTO tarn_queue_messages (qid, seq, visible_at, sent_ms, id, sender, grp,"
    " dedup, trace, md5_body, md5_attrs, body)"
    " SELECT q.id, nextval('tarn_queue_seq'), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11"
    " FROM tarn_queues q WHERE q.id = $1"
    " RETURNING seq, visible_at <= sent_ms";

typedef struct send_ctx {
  queue_system *q;
  const qsnap *s;
  const queue_send *m;
  size_t n;
  queue_sent *out;
  err *errs;
  uint64_t visible;       /* messages visible at once: polls to wake */
} send_ctx;

/* A message row's digests (hex; md5a empty without attributes) and its
 * stored body, for m prepared as p. */
static MDB_val row_fields(const qprep *p, const queue_send *m, arena *a, char md5b[33],
                          char md5a[33])
{
  hex_encode(p->md5_body, 16, md5b);
  md5a[0] = '\0';
  if (p->has_attrs)
    hex_encode(p->md5_attrs, 16, md5a);
  return queue__body_encode(m->attrs, m->nattrs, m->body, m->body_len, a);
}

/* Sends m; *visible counts it when it is visible at once. */
static int send_one(PGconn *c, const qsnap *s, const queue_send *m, int64_t now, arena *a,
                    queue_sent *out, uint64_t *visible, err *e)
{
  qprep p;
  queue__send_prepare(s, m, a, &p);
  const char *qid = i64(a, (int64_t)s->id);
  if (s->fifo) {
    const char *dp[3] = {qid, p.dedup, i64(a, now)};
    PGresult *r = NULL;
    int rc = pg_exec(c, "SELECT seq, message_id FROM tarn_queue_dedup"
                     " WHERE qid = $1 AND dedup = $2 AND expires_ms > $3",
                     3, dp, &r, "read a deduplication id", e);
    if (rc != 0)
      return rc;
    if (PQntuples(r) > 0) { /* a duplicate: the first send's ids */
      queue__sent_fill(m, PQgetvalue(r, 0, 1), (uint64_t)(int64_t)pg_col_int(r, 0, 0), true, out);
      PQclear(r);
      return 0;
    }
    PQclear(r);
  }
  char md5b[33];
  char md5a[33];
  MDB_val body = row_fields(&p, m, a, md5b, md5a);
  const char *params[11] = {
      qid,
      i64(a, now + (int64_t)p.delay * 1000),
      i64(a, now),
      p.id,
      m->sender_id != NULL ? m->sender_id : QUEUE_ACCOUNT,
      s->fifo ? m->group_id : NULL,
      s->fifo ? p.dedup : NULL,
      m->trace_header,
      md5b,
      md5a,
      body.mv_data,
  };
  int lengths[11] = {0};
  int formats[11] = {0};
  lengths[10] = (int)body.mv_size;
  formats[10] = 1;
  PGresult *r = NULL;
  int rc = pg_exec_bin(c, insert_sql, 11, params, lengths, formats, &r, "send a message", e);
  if (rc != 0)
    return rc;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return err_set(e, QUEUE_ERR_NO_QUEUE, no_queue_msg);
  }
  uint64_t seq = (uint64_t)(int64_t)pg_col_int(r, 0, 0);
  if (PQgetvalue(r, 0, 1)[0] == 't')
    (*visible)++;
  PQclear(r);
  if (s->fifo) {
    const char *dp[5] = {qid, p.dedup, i64(a, now + QUEUE_DEDUP_WINDOW_MS), i64(a, (int64_t)seq),
                         p.id};
    rc = pg_exec(c, "INSERT INTO tarn_queue_dedup (qid, dedup, expires_ms, seq, message_id)"
                 " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (qid, dedup) DO UPDATE SET"
                 " expires_ms = EXCLUDED.expires_ms, seq = EXCLUDED.seq,"
                 " message_id = EXCLUDED.message_id",
                 5, dp, NULL, "write a deduplication id", e);
    if (rc != 0)
      return rc;
  }
  queue__sent_fill(m, p.id, seq, s->fifo, out);
  return 0;
}

/* QUEUE_ERR_NO_QUEUE when s's row is gone (deleted since s was read);
 * lock: holds the row FOR UPDATE for the transaction (FIFO, invariant 4). */
static int queue_row(PGconn *c, const qsnap *s, bool lock, arena *a, err *e)
{
  const char *p[1] = {i64(a, (int64_t)s->id)};
  PGresult *r = NULL;
  int rc = pg_exec(c, lock ? "SELECT 1 FROM tarn_queues WHERE id = $1 FOR UPDATE"
                           : "SELECT 1 FROM tarn_queues WHERE id = $1",
                   1, p, &r, lock ? "lock a FIFO queue" : "read a queue", e);
  if (rc == 0 && PQntuples(r) == 0)
    rc = err_set(e, QUEUE_ERR_NO_QUEUE, no_queue_msg);
  PQclear(r);
  return rc;
}

static int fifo_lock(PGconn *c, const qsnap *s, arena *a, err *e)
{
  return queue_row(c, s, true, a, e);
}

static int send_txn(PGconn *c, void *arg, err *e)
{
  send_ctx *sc = arg;
  arena *a = arena_new();
  int64_t now = queue__now_ms();
  int rc = sc->s->fifo ? fifo_lock(c, sc->s, a, e) : 0;
  sc->visible = 0; /* counted again if the transaction runs again */
  for (size_t i = 0; rc == 0 && i < sc->n; i++)
    if (sc->errs[i].code == 0)
      rc = send_one(c, sc->s, &sc->m[i], now, a, &sc->out[i], &sc->visible, e);
  arena_free(a);
  return rc;
}

/* ---- for pg_topic.c: a publish's copies in its own transaction ---- */

pg_pool *queue__pg_pool(queue_system *q)
{
  return q->pg->pool;
}

int queue__pg_send_on(PGconn *c, const qsnap *s, const queue_send *m, int64_t now, arena *a,
                      uint64_t *visible, err *e)
{
  queue_sent out;
  int rc = s->fifo ? fifo_lock(c, s, a, e) : 0;
  return rc != 0 ? rc : send_one(c, s, m, now, a, &out, visible, e);
}

#define PG_COPY_ROWS 1000
#define PG_COPY_BYTES (32u << 20)
#define PG_COPY_ARRAY_MAX (256u << 20) /* bounded by the rows and bytes above */

/* The rows of many messages (a publish's copies, a standard queue's
 * batch), one array per column ($1, $3..$10) and their bodies one after
 * the other ($11, sliced by offset and length). */
static const char insert_many_sql[] =
    "INSERT INTO tarn_queue_messages (qid, seq, visible_at, sent_ms, id, sender, trace,"
    " md5_body, md5_attrs, body)"
    " SELECT x.qid, nextval('tarn_queue_seq'), x.vis, $2, x.id, x.sender, x.trace, x.mb, x.ma,"
    " substring($11::bytea FROM x.off + 1 FOR x.len)"
    " FROM unnest($1::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],"
    " $8::text[], $9::int[], $10::int[]) WITH ORDINALITY"
    " AS x(qid, vis, id, sender, trace, mb, ma, off, len, ord)"
    " WHERE EXISTS (SELECT 1 FROM tarn_queues q WHERE q.id = x.qid)"
    " ORDER BY x.ord"
    " RETURNING qid, visible_at <= sent_ms";

enum { C_QID, C_VIS, C_ID, C_SENDER, C_TRACE, C_MD5B, C_MD5A, C_OFF, C_LEN, C_COLS };

/* The bytes a message takes in a multi-row INSERT's body parameter. */
static size_t copy_bytes(const queue_send *m)
{
  return m->body_len + queue__attrs_size(m->attrs, m->nattrs);
}

/* Inserts copies [0, n) (their bodies fit PG_COPY_BYTES) in one statement;
 * ids (NULL: not wanted) receives each copy's message id, *rows (NULL: not
 * wanted) how many were inserted (a copy for a deleted queue is not). */
static int insert_copies(PGconn *c, const pg_copy *copies, size_t n, int64_t now, arena *a,
                         const char **ids, size_t *rows,
                         void (*visible)(void *ctx, uint64_t qid), void *ctx, err *e)
{
  buf cols[C_COLS];
  buf bodies;
  for (int k = 0; k < C_COLS; k++)
    buf_init(&cols[k], PG_COPY_ARRAY_MAX);
  buf_init(&bodies, PG_COPY_ARRAY_MAX);
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    const qsnap *s = copies[i].s;
    const queue_send *m = &copies[i].m;
    qprep p;
    queue__send_prepare(s, m, a, &p);
    char md5b[33];
    char md5a[33];
    MDB_val body = row_fields(&p, m, a, md5b, md5a);
    if (ids != NULL)
      ids[i] = arena_strdup(a, p.id);
    bad |= pg_array_add(&cols[C_QID], i64(a, (int64_t)s->id));
    bad |= pg_array_add(&cols[C_VIS], i64(a, now + (int64_t)p.delay * 1000));
    bad |= pg_array_add(&cols[C_ID], p.id);
    bad |= pg_array_add(&cols[C_SENDER], m->sender_id != NULL ? m->sender_id : QUEUE_ACCOUNT);
    bad |= pg_array_add(&cols[C_TRACE], m->trace_header);
    bad |= pg_array_add(&cols[C_MD5B], md5b);
    bad |= pg_array_add(&cols[C_MD5A], md5a);
    bad |= pg_array_add(&cols[C_OFF], i64(a, (int64_t)bodies.len));
    bad |= pg_array_add(&cols[C_LEN], i64(a, (int64_t)body.mv_size));
    bad |= buf_append(&bodies, body.mv_data, body.mv_size);
  }
  for (int k = 0; k < C_COLS; k++)
    bad |= pg_array_end(&cols[k]);
  int rc;
  if (bad != 0) {
    rc = err_set(e, ERR_INTERNAL, "the messages do not fit one statement");
  } else {
    const char *params[11] = {cols[C_QID].data,  i64(a, now),         cols[C_VIS].data,
                              cols[C_ID].data,   cols[C_SENDER].data, cols[C_TRACE].data,
                              cols[C_MD5B].data, cols[C_MD5A].data,   cols[C_OFF].data,
                              cols[C_LEN].data,  bodies.data != NULL ? bodies.data : ""};
    int lengths[11] = {0};
    int formats[11] = {0};
    lengths[10] = (int)bodies.len;
    formats[10] = 1;
    PGresult *r = NULL;
    rc = pg_exec_bin(c, insert_many_sql, 11, params, lengths, formats, &r, "send messages", e);
    if (rc == 0 && rows != NULL)
      *rows = (size_t)PQntuples(r);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
      if (PQgetvalue(r, i, 1)[0] == 't')
        visible(ctx, (uint64_t)(int64_t)pg_col_int(r, i, 0));
    PQclear(r);
  }
  for (int k = 0; k < C_COLS; k++)
    buf_release(&cols[k]);
  buf_release(&bodies);
  return rc;
}

int queue__pg_send_many(PGconn *c, const pg_copy *copies, size_t n, int64_t now, arena *a,
                        void (*visible)(void *ctx, uint64_t qid), void *ctx, err *e)
{
  size_t i = 0;
  while (i < n) {
    size_t j = i, bytes = 0;
    do { /* at least one: a copy alone is within the queue's size limit */
      bytes += copy_bytes(&copies[j].m);
      j++;
    } while (j < n && j - i < PG_COPY_ROWS && bytes + copy_bytes(&copies[j].m) <= PG_COPY_BYTES);
    int rc = insert_copies(c, copies + i, j - i, now, a, NULL, NULL, visible, ctx, e);
    if (rc != 0)
      return rc;
    i = j;
  }
  return 0;
}

void queue__pg_wake(queue_system *q, uint64_t qid, uint64_t count)
{
  notify_wake(q, qid, count);
}

/* ---- a standard queue's batch: one multi-row INSERT ---- */

static size_t batch_bytes(const queue_send *m, size_t n)
{
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++)
    bytes += copy_bytes(&m[i]);
  return bytes;
}

static void count_visible(void *ctx, uint64_t qid)
{
  (void)qid;
  (*(uint64_t *)ctx)++;
}

/* Sends the valid entries of a standard queue's batch (errs[i] clear) in
 * one statement, which commits alone (invariant 3): one round trip, all
 * of them or (their queue gone) none. FIFO batches go through send_txn:
 * their deduplication and order need the queue's row lock. */
static int send_batch(queue_system *q, const qsnap *s, const queue_send *m, size_t n,
                      queue_sent *out, err *errs, err *e)
{
  arena *a = arena_new();
  pg_copy *copies = arena_alloc(a, n * sizeof *copies);
  size_t *at = arena_alloc(a, n * sizeof *at);
  const char **ids = arena_alloc(a, n * sizeof *ids);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (errs[i].code == 0) {
      copies[k] = (pg_copy){.s = s, .m = m[i]};
      at[k++] = i;
    }
  int rc = 0;
  uint64_t visible = 0;
  if (k > 0) {
    PGconn *c = pg_acquire(q->pg->pool, e);
    if (c == NULL) {
      arena_free(a);
      return e->code;
    }
    size_t rows = 0;
    rc = insert_copies(c, copies, k, queue__now_ms(), a, ids, &rows, count_visible, &visible, e);
    pg_release(q->pg->pool, c, rc != 0 && PQstatus(c) != CONNECTION_OK);
    if (rc == 0 && rows != k)
      rc = err_set(e, QUEUE_ERR_NO_QUEUE, no_queue_msg);
  }
  for (size_t j = 0; rc == 0 && j < k; j++)
    queue__sent_fill(&m[at[j]], ids[j], 0, false, &out[at[j]]);
  arena_free(a);
  if (rc == 0)
    notify_wake(q, s->id, visible);
  return rc;
}

static int pg_send(queue_system *q, const qsnap *s, const queue_send *m, size_t n,
                   queue_sent *out, err *errs, err *e)
{
  send_ctx sc = {q, s, m, n, out, errs, 0};
  if (n > 1 && !s->fifo && n <= PG_COPY_ROWS && batch_bytes(m, n) <= PG_COPY_BYTES)
    return send_batch(q, s, m, n, out, errs, e);
  if (n == 1 && !s->fifo) { /* one statement commits alone: one round trip */
    PGconn *c = pg_acquire(q->pg->pool, e);
    if (c == NULL)
      return e->code;
    arena *a = arena_new();
    int rc = send_one(c, s, m, queue__now_ms(), a, out, &sc.visible, e);
    arena_free(a);
    pg_release(q->pg->pool, c, rc != 0 && PQstatus(c) != CONNECTION_OK);
    if (rc == 0)
      notify_wake(q, s->id, sc.visible);
    return rc;
  }
  int rc = pg_transaction(q->pg->pool, NULL, send_txn, &sc, e);
  if (rc == 0)
    notify_wake(q, s->id, sc.visible);
  return rc;
}

/* ---- receive ---- */

/* What both receives set on the rows they take ($2 now, $4 the deadline),
 * and return. */
#define TAKE_SET                                                                           \
  " visible_at = $4, received = true, recv_count = m.recv_count + 1,"                     \
  " first_recv_ms = CASE WHEN m.first_recv_ms = 0 THEN $2 ELSE m.first_recv_ms END,"       \
  " token = 1 + floor(random() * 4503599627370495)::bigint"
#define TAKE_RETURNING                                                                     \
  " RETURNING m.seq, m.token, m.recv_count, m.sent_ms, m.first_recv_ms, m.id, m.sender,"   \
  " m.grp, m.dedup, m.trace, m.md5_body, m.md5_attrs, m.body"

/* Standard queues: $1 qid, $2 now, $3 max, $4 deadline, $5 retention
 * cutoff, $6 the receive count from which messages go to the DLQ. */
static const char take_standard_sql[] =
    "WITH c AS (SELECT seq FROM tarn_queue_messages WHERE qid = $1 AND visible_at <= $2"
    " AND sent_ms > $5 AND recv_count < $6 ORDER BY visible_at, seq LIMIT $3"
    " FOR UPDATE SKIP LOCKED)"
    " UPDATE tarn_queue_messages m SET" TAKE_SET
    " FROM c WHERE m.qid = $1 AND m.seq = c.seq" TAKE_RETURNING;

/* FIFO queues (the queue's row locked: invariant 4): the first messages in
 * seq order of groups with nothing in flight or delayed. */
static const char take_fifo_sql[] =
    "WITH c AS (SELECT seq FROM (SELECT seq, sent_ms, recv_count, bool_or(visible_at > $2)"
    " OVER (PARTITION BY grp ORDER BY seq) AS blocked FROM tarn_queue_messages"
    " WHERE qid = $1) x WHERE NOT blocked AND sent_ms > $5 AND recv_count < $6"
    " ORDER BY seq LIMIT $3)"
    " UPDATE tarn_queue_messages m SET" TAKE_SET
    " FROM c WHERE m.qid = $1 AND m.seq = c.seq" TAKE_RETURNING;

/* Moves visible messages received maxReceiveCount times to the DLQ:
 * $1 qid, $2 now, $3 count, $4 DLQ id, $5 whether the DLQ is FIFO. */
static const char redrive_sql[] =
    "WITH c AS (SELECT seq FROM tarn_queue_messages WHERE qid = $1 AND visible_at <= $2"
    " AND recv_count >= $3 ORDER BY visible_at, seq LIMIT 10 FOR UPDATE SKIP LOCKED),"
    " d AS (SELECT id FROM tarn_queues WHERE id = $4)"
    " UPDATE tarn_queue_messages m SET qid = d.id, seq = nextval('tarn_queue_seq'),"
    " visible_at = $2, received = false, recv_count = 0, first_recv_ms = 0, token = 0,"
    " grp = CASE WHEN $5 THEN m.grp END, dedup = CASE WHEN $5 THEN m.dedup END"
    " FROM c, d WHERE m.qid = $1 AND m.seq = c.seq";

typedef struct recv_ctx {
  queue_system *q;
  const qsnap *s;
  const qsnap *dlq;         /* the dead-letter queue, or NULL */
  const queue_receive *r;
  arena *oa;
  queue_message *msgs;
  size_t n;
  uint64_t redriven;        /* messages moved to the DLQ: its polls to wake */
} recv_ctx;

static int seq_cmp(const void *x, const void *y)
{
  const queue_message *a = x;
  const queue_message *b = y;
  return strcmp(a->sequence_number, b->sequence_number);
}

static int take_rows(recv_ctx *rc, const PGresult *r, err *e)
{
  int n = PQntuples(r);
  rc->msgs = arena_alloc(rc->oa, ((size_t)n + 1) * sizeof *rc->msgs);
  for (int i = 0; i < n; i++) {
    queue_message *out = &rc->msgs[i];
    memset(out, 0, sizeof *out);
    size_t blen = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 12), &blen);
    if (raw == NULL)
      mem_out_of_memory();
    MDB_val v = {blen, raw};
    int drc = queue__body_decode(&v, rc->oa, &out->attrs, &out->nattrs, &out->body,
                                 &out->body_len, e);
    PQfreemem(raw);
    if (drc != 0)
      return drc;
    uint64_t seq = (uint64_t)(int64_t)pg_col_int(r, i, 0);
    out->receipt_handle = queue__handle_make(rc->oa, rc->s->id, seq, (uint64_t)pg_col_int(r, i, 1));
    out->receive_count = (uint32_t)pg_col_int(r, i, 2);
    out->sent_ms = (int64_t)pg_col_int(r, i, 3);
    out->first_receive_ms = (int64_t)pg_col_int(r, i, 4);
    out->message_id = col_str(r, i, 5, rc->oa);
    out->sender_id = col_str(r, i, 6, rc->oa);
    out->trace_header = col_str(r, i, 9, rc->oa);
    snprintf(out->md5_body, sizeof out->md5_body, "%s", PQgetvalue(r, i, 10));
    snprintf(out->md5_attrs, sizeof out->md5_attrs, "%s", PQgetvalue(r, i, 11));
    if (rc->s->fifo) {
      out->group_id = col_str(r, i, 7, rc->oa);
      out->dedup_id = col_str(r, i, 8, rc->oa);
      char sn[24];
      queue__seqnum(seq, sn);
      out->sequence_number = arena_strdup(rc->oa, sn);
    }
  }
  if (rc->s->fifo && n > 1) /* 20-digit numbers: text order is seq order */
    qsort(rc->msgs, (size_t)n, sizeof *rc->msgs, seq_cmp);
  rc->n = (size_t)n;
  return 0;
}

static int receive_on(PGconn *c, recv_ctx *rc, err *e)
{
  const qsnap *s = rc->s;
  arena *a = arena_new();
  int64_t now = queue__now_ms();
  uint32_t max = rc->r->max == 0 ? 1 : rc->r->max;
  if (max > QUEUE_MAX_BATCH)
    max = QUEUE_MAX_BATCH;
  int64_t vt = rc->r->visibility_timeout >= 0 ? rc->r->visibility_timeout : (int64_t)s->visibility;
  int64_t dlq_count = INT32_MAX;
  int err_rc = 0;
  if (rc->dlq != NULL) {
    dlq_count = s->max_receive;
    const char *p[5] = {i64(a, (int64_t)s->id), i64(a, now), i64(a, dlq_count),
                        i64(a, (int64_t)rc->dlq->id), rc->dlq->fifo ? "true" : "false"};
    PGresult *moved = NULL;
    err_rc = pg_exec(c, redrive_sql, 5, p, &moved, "move messages to the dead-letter queue", e);
    if (err_rc == 0)
      rc->redriven += strtoull(PQcmdTuples(moved), NULL, 10);
    PQclear(moved);
  }
  int64_t cutoff = s->retention > 0 ? now - (int64_t)s->retention * 1000 : INT64_MIN;
  const char *p[6] = {i64(a, (int64_t)s->id), i64(a, now), i64(a, max), i64(a, now + vt * 1000),
                      i64(a, cutoff), i64(a, dlq_count)};
  PGresult *r = NULL;
  if (err_rc == 0)
    err_rc = pg_exec(c, s->fifo ? take_fifo_sql : take_standard_sql, 6, p, &r,
                     "receive messages", e);
  if (err_rc == 0)
    err_rc = take_rows(rc, r, e);
  PQclear(r);
  /* nothing taken: a queue deleted meanwhile (a long poll woken by its
     deletion) is answered as gone, as on LMDB; FIFO: fifo_lock found its row */
  if (err_rc == 0 && rc->n == 0 && !s->fifo)
    err_rc = queue_row(c, s, false, a, e);
  arena_free(a);
  return err_rc;
}

/* The plan of a receive must walk the (qid, visible_at, seq) index in order
 * and stop after the first free rows: with statistics that lag a busy
 * queue, the planner prefers reading every visible message of the queue
 * and sorting them (a bitmap scan), which makes each receive cost the
 * queue's length. */
static const char receive_plan_sql[] =
    "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off";

static int receive_txn(PGconn *c, void *arg, err *e)
{
  recv_ctx *rc = arg;
  rc->redriven = 0; /* counted again if the transaction runs again */
  int r = pg_exec(c, receive_plan_sql, 0, NULL, NULL, "plan a receive", e);
  if (r == 0 && rc->s->fifo) {
    arena *a = arena_new();
    r = fifo_lock(c, rc->s, a, e);
    arena_free(a);
  }
  return r != 0 ? r : receive_on(c, rc, e);
}

static int pg_receive(queue_system *q, const qsnap *s, const queue_receive *r, arena *a,
                      queue_message **out, size_t *n, err *e)
{
  recv_ctx rc = {.q = q, .s = s, .r = r, .oa = a};
  *out = NULL;
  *n = 0;
  /* before a connection is held: finding the DLQ may reload the cache,
     under meta_mu, which the listener holds while it waits for one */
  qsnap dlq;
  err ignore = {0};
  if (s->max_receive > 0 && s->dlq_name[0] != '\0' &&
      queue__snap_name(q, s->dlq_name, &dlq, &ignore) == 0 && dlq.id != s->id)
    rc.dlq = &dlq;
  int res = pg_transaction(q->pg->pool, NULL, receive_txn, &rc, e);
  if (res == 0) {
    *out = rc.msgs;
    *n = rc.n;
  }
  if (rc.dlq != NULL) /* a wake-up for moves a failed FIFO receive undid is harmless */
    notify_wake(q, rc.dlq->id, rc.redriven);
  return res;
}

/* ---- delete and visibility ---- */

typedef struct handles_ctx {
  const qsnap *s;
  const char *const *handles;
  const uint32_t *seconds;  /* NULL: delete */
  size_t n;
  err *errs;
  uint64_t wake;            /* polls to wake after the commit */
} handles_ctx;

static int handle_one(PGconn *c, handles_ctx *hc, size_t i, int64_t now, arena *a, err *e)
{
  err *ee = &hc->errs[i];
  uint64_t qid, seq, token;
  const char *h = hc->handles[i];
  if (!queue__handle_parse(h, &qid, &seq, &token) || qid != hc->s->id) {
    err_set(ee, QUEUE_ERR_RECEIPT, "The input receipt handle \"%s\" is not a valid receipt "
            "handle.", h != NULL ? h : "");
    return 0;
  }
  const char *key[3] = {i64(a, (int64_t)qid), i64(a, (int64_t)seq), i64(a, (int64_t)token)};
  PGresult *r = NULL;
  int rc;
  if (hc->seconds == NULL) {
    /* a gone message or a stale handle is accepted, as SQS does; a FIFO
       delete may free its group: wake a poll */
    rc = pg_exec(c, "DELETE FROM tarn_queue_messages WHERE qid = $1 AND seq = $2 AND"
                 " token = $3 AND received", 3, key, &r, "delete a message", e);
    if (rc == 0 && hc->s->fifo)
      hc->wake += strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return rc;
  }
  rc = pg_exec(c, "SELECT visible_at FROM tarn_queue_messages WHERE qid = $1 AND seq = $2"
               " AND token = $3 AND received FOR UPDATE", 3, key, &r,
               "read a message", e);
  if (rc != 0)
    return rc;
  bool found = PQntuples(r) > 0;
  int64_t at = found ? (int64_t)pg_col_int(r, 0, 0) : 0;
  PQclear(r);
  if (!found) {
    err_set(ee, ERR_INVALID, "Value %s for parameter ReceiptHandle is invalid. Reason: Message "
            "does not exist or is not available for visibility timeout change.", h);
    return 0;
  }
  if (at <= now) {
    err_set(ee, QUEUE_ERR_NOT_INFLIGHT, "Message does not exist or is not available for "
            "visibility timeout change.");
    return 0;
  }
  uint32_t secs = hc->seconds[i];
  const char *p[3] = {key[0], key[1], i64(a, now + (int64_t)secs * 1000)};
  rc = pg_exec(c, "UPDATE tarn_queue_messages SET visible_at = $3 WHERE qid = $1 AND seq = $2",
               3, p, NULL, "change a message's visibility", e);
  if (rc == 0 && secs == 0)
    hc->wake++;
  return rc;
}

static int handles_txn(PGconn *c, void *arg, err *e)
{
  handles_ctx *hc = arg;
  arena *a = arena_new();
  int64_t now = queue__now_ms();
  int rc = 0;
  hc->wake = 0; /* counted again if the transaction runs again */
  for (size_t i = 0; rc == 0 && i < hc->n; i++) {
    if (hc->errs[i].code == 0)
      rc = handle_one(c, hc, i, now, a, e);
  }
  arena_free(a);
  return rc;
}

static int pg_handles(queue_system *q, const qsnap *s, const char *const *handles,
                      const uint32_t *seconds, size_t n, err *errs, err *e)
{
  handles_ctx hc = {s, handles, seconds, n, errs, 0};
  int rc;
  if (n == 1 && seconds == NULL) { /* one DELETE commits alone */
    PGconn *c = pg_acquire(q->pg->pool, e);
    if (c == NULL)
      return e->code;
    rc = handles_txn(c, &hc, e);
    pg_release(q->pg->pool, c, rc != 0 && PQstatus(c) != CONNECTION_OK);
  } else {
    rc = pg_transaction(q->pg->pool, NULL, handles_txn, &hc, e);
  }
  if (rc == 0)
    notify_wake(q, s->id, hc.wake);
  return rc;
}

static void pg_release_msgs(queue_system *q, const qsnap *s, const queue_message *msgs, size_t n)
{
  const char **handles = xcalloc(n, sizeof *handles);
  uint32_t *zeros = xcalloc(n, sizeof *zeros);
  err *errs = xcalloc(n, sizeof *errs);
  for (size_t i = 0; i < n; i++)
    handles[i] = msgs[i].receipt_handle;
  err ignore = {0};
  pg_handles(q, s, handles, zeros, n, errs, &ignore);
  free(errs);
  free(zeros);
  free(handles);
}

/* ---- counts, the timer's questions, the sweep ---- */

static int pg_counts(queue_system *q, const qsnap *s, uint64_t *visible, uint64_t *inflight,
                     uint64_t *delayed, err *e)
{
  arena *a = arena_new();
  const char *p[2] = {i64(a, (int64_t)s->id), i64(a, queue__now_ms())};
  PGresult *r = NULL;
  int rc = pg_pool_exec(q->pg->pool,
                         "SELECT count(*) FILTER (WHERE visible_at <= $2),"
                         " count(*) FILTER (WHERE visible_at > $2 AND received),"
                         " count(*) FILTER (WHERE visible_at > $2 AND NOT received)"
                         " FROM tarn_queue_messages WHERE qid = $1",
                         2, p, NULL, NULL, &r, "count messages", e);
  if (rc == 0) {
    *visible = (uint64_t)(int64_t)pg_col_int(r, 0, 0);
    *inflight = (uint64_t)(int64_t)pg_col_int(r, 0, 1);
    *delayed = (uint64_t)(int64_t)pg_col_int(r, 0, 2);
  }
  PQclear(r);
  arena_free(a);
  return rc;
}

static int64_t pg_next_visible(queue_system *q, uint64_t qid, int64_t after)
{
  arena *a = arena_new();
  const char *p[2] = {i64(a, (int64_t)qid), i64(a, after)};
  PGresult *r = NULL;
  err ignore = {0};
  int64_t at = INT64_MAX;
  if (pg_pool_exec(q->pg->pool, "SELECT min(visible_at) FROM tarn_queue_messages WHERE qid = $1 AND"
                   " visible_at > $2", 2, p, NULL, NULL, &r, "read the next deadline",
                   &ignore) == 0 &&
      !PQgetisnull(r, 0, 0))
    at = (int64_t)pg_col_int(r, 0, 0);
  PQclear(r);
  arena_free(a);
  return at;
}

static void pg_sweep(queue_system *q)
{
  arena *a = arena_new();
  const char *p[1] = {i64(a, queue__now_ms())};
  err ignore = {0};
  pg_pool *pool = q->pg->pool;
  /* every node sweeps; the statements are idempotent */
  pg_pool_exec(pool, "DELETE FROM tarn_queue_messages m USING tarn_queues t WHERE m.qid = t.id"
               " AND m.sent_ms <= $1 - t.retention_ms", 1, p, NULL, NULL, NULL,
               "remove expired messages", &ignore);
  pg_pool_exec(pool, "DELETE FROM tarn_queue_dedup WHERE expires_ms < $1", 1, p, NULL, NULL, NULL,
               "remove expired deduplication ids", &ignore);
  pg_pool_exec(pool, "DELETE FROM tarn_queue_messages m WHERE NOT EXISTS"
               " (SELECT 1 FROM tarn_queues t WHERE t.id = m.qid)", 0, NULL, NULL, NULL, NULL,
               "remove messages of deleted queues", &ignore); /* invariant 3 */
  arena_free(a);
}

/* ---- the poll workers ---- */

static bool pg_submit(queue_system *q, qchange *c)
{
  qpg *g = q->pg;
  pthread_mutex_lock(&g->mu);
  if (g->stop) {
    pthread_mutex_unlock(&g->mu);
    return false;
  }
  if (g->njobs == g->capjobs) {
    g->capjobs = g->capjobs ? g->capjobs * 2 : 64;
    g->jobs = xrealloc(g->jobs, g->capjobs * sizeof *g->jobs);
  }
  g->jobs[g->njobs++] = c;
  pthread_cond_signal(&g->cv);
  pthread_mutex_unlock(&g->mu);
  return true;
}

static void *worker_main(void *arg)
{
  queue_system *q = arg;
  qpg *g = q->pg;
  pthread_mutex_lock(&g->mu);
  for (;;) {
    while (g->njobs == 0 && !g->stop)
      pthread_cond_wait(&g->cv, &g->mu);
    if (g->njobs == 0) /* stopping and drained */
      break;
    qchange *c = g->jobs[0];
    memmove(g->jobs, g->jobs + 1, (g->njobs - 1) * sizeof *g->jobs);
    g->njobs--;
    pthread_mutex_unlock(&g->mu);
    err_clear(&c->base.e);
    c->base.rc = c->apply(q, c, NULL, NULL, &c->base.e); /* txn NULL: poll.c asks the store */
    c->complete(q, c);
    pthread_mutex_lock(&g->mu);
  }
  pthread_mutex_unlock(&g->mu);
  return NULL;
}

/* ---- the notifier (invariant 5) ---- */

static void *notifier_main(void *arg)
{
  queue_system *q = arg;
  qpg *g = q->pg;
  buf b;
  buf_init(&b, 16u << 20); /* bounded by the number of queues */
  pthread_mutex_lock(&g->mu);
  for (;;) {
    while (g->nnotes == 0 && !g->stop)
      pthread_cond_wait(&g->ncv, &g->mu);
    if (g->nnotes == 0) /* stopping and drained */
      break;
    /* one statement for everything pending: {"w QID N",...} */
    buf_reset(&b);
    buf_puts(&b, "{");
    for (size_t i = 0; i < g->nnotes; i++)
      buf_printf(&b, "%s\"w %" PRIu64 " %" PRIu64 "\"", i ? "," : "", g->notes[i].qid,
                 g->notes[i].count);
    buf_puts(&b, "}");
    g->nnotes = 0;
    pthread_mutex_unlock(&g->mu);
    const char *p[1] = {b.data};
    err ignore = {0};
    /* a lost notification costs only time: the timer's checks still wake polls */
    pg_pool_exec(q->pg->pool, "SELECT pg_notify('" CHANNEL "', x) FROM unnest($1::text[]) AS x",
                 1, p, NULL, NULL, NULL, "notify", &ignore);
    pthread_mutex_lock(&g->mu);
  }
  pthread_mutex_unlock(&g->mu);
  buf_release(&b);
  return NULL;
}

/* ---- the listener ---- */

static void heard(queue_system *q, const char *payload)
{
  if (payload[0] == 'w' && payload[1] == ' ') {
    char *end = NULL;
    uint64_t qid = strtoull(payload + 2, &end, 10);
    long long count = end != NULL ? strtoll(end, NULL, 10) : 1;
    queue__polls_wake(q, qid, count < 0 ? UINT64_MAX : (uint64_t)count);
  } else if (payload[0] == 'm' && payload[1] == ' ') {
    err ignore = {0};
    pthread_mutex_lock(&q->meta_mu); /* invariant 6 */
    pg_refresh(q, payload + 2, &ignore);
    pthread_mutex_unlock(&q->meta_mu);
  } else if (payload[0] == 't' && payload[1] == ' ') {
    queue__pg_topic_heard(q, payload + 2); /* a topic or its subscriptions */
  }
}

/* Everything missed while not listening: reload the queues, wake every
 * poll to look again. */
static void resync(queue_system *q)
{
  err ignore = {0};
  pthread_mutex_lock(&q->meta_mu);
  pg_refresh(q, NULL, &ignore);
  pthread_mutex_unlock(&q->meta_mu);
  queue__pg_topic_heard(q, NULL);
  pthread_rwlock_rdlock(&q->mu);
  size_t n = q->nqueues;
  uint64_t *ids = xcalloc(n + 1, sizeof *ids);
  for (size_t i = 0; i < n; i++)
    ids[i] = q->queues[i]->id;
  pthread_rwlock_unlock(&q->mu);
  for (size_t i = 0; i < n; i++)
    queue__polls_wake(q, ids[i], UINT64_MAX);
  free(ids);
}

static void *listener_main(void *arg)
{
  queue_system *q = arg;
  qpg *g = q->pg;
  PGconn *c = NULL;
  for (;;) {
    pthread_mutex_lock(&g->mu);
    bool stop = g->stop;
    pthread_mutex_unlock(&g->mu);
    if (stop)
      break;
    if (c == NULL) {
      err e = {0};
      c = pg_acquire(g->pool, &e);
      if (c != NULL && pg_exec(c, "LISTEN " CHANNEL, 0, NULL, NULL, "listen", &e) != 0) {
        pg_release(g->pool, c, true);
        c = NULL;
      }
      if (c == NULL) {
        struct pollfd pf = {.fd = g->wake[0], .events = POLLIN};
        poll(&pf, 1, LISTEN_TICK_MS);
        continue;
      }
      resync(q);
    }
    struct pollfd pf[2] = {{.fd = PQsocket(c), .events = POLLIN},
                           {.fd = g->wake[0], .events = POLLIN}};
    int pr = poll(pf, 2, LISTEN_TICK_MS);
    if (pr < 0 && errno != EINTR)
      break;
    if (pr > 0 && (pf[0].revents & (POLLIN | POLLERR | POLLHUP))) {
      if (!PQconsumeInput(c)) {
        pg_release(g->pool, c, true);
        c = NULL;
        continue;
      }
      PGnotify *n;
      while ((n = PQnotifies(c)) != NULL) {
        heard(q, n->extra);
        PQfreemem(n);
      }
    }
  }
  if (c != NULL) {
    PQclear(PQexec(c, "UNLISTEN *"));
    pg_release(g->pool, c, false);
  }
  return NULL;
}

/* ---- life cycle ---- */

int queue__pg_open(queue_system *q, pg_pool *pool, err *e)
{
  int rc = pg_pool_schema(pool, "tarn_queue", schema, e);
  if (rc != 0)
    return err_wrap(e, "create the queue tables");
  qpg *g = xcalloc(1, sizeof *g);
  g->pool = pool;
  g->wake[0] = g->wake[1] = -1;
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  pthread_cond_init(&g->ncv, NULL);
  q->pg = g;
  if (pipe(g->wake) != 0)
    return err_set(e, ERR_INTERNAL, "cannot create a pipe: %s", strerror(errno));
  pthread_mutex_lock(&q->meta_mu);
  rc = pg_refresh(q, NULL, e);
  pthread_mutex_unlock(&q->meta_mu);
  if (rc != 0)
    return err_wrap(e, "load the queues");
  for (; g->nworkers < PG_POLL_WORKERS; g->nworkers++) {
    int prc = pthread_create(&g->workers[g->nworkers], NULL, worker_main, q);
    if (prc != 0)
      return err_set(e, ERR_INTERNAL, "cannot start a queue poll worker: %s", strerror(prc));
  }
  int prc = pthread_create(&g->notifier, NULL, notifier_main, q);
  if (prc != 0)
    return err_set(e, ERR_INTERNAL, "cannot start the queue notifier: %s", strerror(prc));
  g->notifying = true;
  prc = pthread_create(&g->listener, NULL, listener_main, q);
  if (prc != 0)
    return err_set(e, ERR_INTERNAL, "cannot start the queue listener: %s", strerror(prc));
  g->listening = true;
  return 0;
}

void queue__pg_stop(queue_system *q)
{
  qpg *g = q->pg;
  if (g == NULL)
    return;
  pthread_mutex_lock(&g->mu);
  g->stop = true;
  pthread_cond_broadcast(&g->cv);
  pthread_cond_signal(&g->ncv);
  pthread_mutex_unlock(&g->mu);
  if (g->wake[1] >= 0) {
    ssize_t w = write(g->wake[1], "x", 1);
    (void)w;
  }
  if (g->listening) {
    pthread_join(g->listener, NULL);
    g->listening = false;
  }
  for (size_t i = 0; i < g->nworkers; i++)
    pthread_join(g->workers[i], NULL);
  g->nworkers = 0;
  if (g->notifying) {
    pthread_join(g->notifier, NULL);
    g->notifying = false;
  }
}

void queue__pg_close(queue_system *q)
{
  qpg *g = q->pg;
  if (g == NULL)
    return;
  queue__pg_stop(q);
  if (g->wake[0] >= 0)
    close(g->wake[0]);
  if (g->wake[1] >= 0)
    close(g->wake[1]);
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cv);
  pthread_cond_destroy(&g->ncv);
  free(g->notes);
  free(g->jobs);
  free(g);
  q->pg = NULL;
}

const queue_store queue__pg_store = {
    .refresh = pg_refresh,
    .create = pg_create,
    .update = pg_update,
    .remove = pg_remove,
    .purge = pg_purge,
    .send = pg_send,
    .receive = pg_receive,
    .handles = pg_handles,
    .release = pg_release_msgs,
    .counts = pg_counts,
    .submit = pg_submit,
    .next_visible = pg_next_visible,
    .sweep = pg_sweep,
};
