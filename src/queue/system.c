/* queue/system.c -- the queue part's life cycle: the LMDB environment at
 * DATA/queue/meta, the caches loaded from it, and the threads (committer,
 * timer, delivery workers); the choice of the queue store (LMDB, or
 * PostgreSQL with queue_options.metadata).
 *
 * Invariants:
 *   (1) The environment is opened without MDB_NOSYNC: a commit is on disk
 *       when mdb_txn_commit returns (acknowledged sends survive kill -9).
 *   (2) The committer and the timer run from open to close, so the part is
 *       usable right after open; the delivery workers start with start(),
 *       once the server's endpoint (for the URLs in notifications) is known.
 *   (3) Nothing is recovered at open: visibility deadlines are wall-clock
 *       times in the records, so a message in flight at a crash simply
 *       becomes visible when its deadline passes; the outbox is re-read.
 *
 * Start reading at queue_system_open().
 */
#include "internal.h"

#include "base/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAP_SIZE (64ull << 30)  /* sparse: only pages in use take space */
#define MAX_READERS 1024

const queue_store queue__lmdb_store = {
    .refresh = NULL, /* this node's cache is the truth */
    .create = queue__lmdb_create,
    .update = queue__lmdb_update,
    .remove = queue__lmdb_remove,
    .purge = queue__lmdb_purge,
    .send = queue__lmdb_send,
    .receive = queue__lmdb_receive,
    .handles = queue__lmdb_handles,
    .release = queue__lmdb_release,
    .counts = queue__lmdb_counts,
    .submit = queue__lmdb_submit,
    .next_visible = queue__lmdb_next_visible,
    .sweep = queue__lmdb_sweep,
};

int queue__read_begin(queue_system *q, MDB_txn **txn, err *e)
{
  return lmdb_read_begin(q->env, txn, e);
}

uint64_t queue__counter_next(queue_system *q, MDB_txn *txn, const char *name, uint64_t *cache,
                             err *e)
{
  uint64_t v = ++*cache;
  uint8_t b[8];
  queue__be64_put(b, v);
  MDB_val k = {strlen(name), (void *)name};
  MDB_val d = {8, b};
  int mrc = mdb_put(txn, q->db_meta, &k, &d, 0);
  if (mrc != 0) {
    lmdb_error(e, mrc, "update a counter");
    return 0;
  }
  return v;
}

static uint64_t counter_load(queue_system *q, MDB_txn *txn, const char *name)
{
  MDB_val k = {strlen(name), (void *)name};
  MDB_val d;
  if (mdb_get(txn, q->db_meta, &k, &d) != 0 || d.mv_size != 8)
    return 0;
  return queue__be64_get(d.mv_data);
}

static int make_dir(const char *path, err *e)
{
  if (mkdir(path, 0700) != 0 && errno != EEXIST)
    return err_set(e, err_from_errno(errno), "cannot create directory '%s': %s", path,
                   strerror(errno));
  return 0;
}

int queue_system_open(const queue_options *o, queue_system **out, err *e)
{
  *out = NULL;
  if (o->data_dir == NULL || strlen(o->data_dir) > QUEUE_DIR_MAX)
    return err_set(e, ERR_INVALID, "data directory path is too long");
  queue_system *q = xcalloc(1, sizeof *q);
  char path[QUEUE_DIR_MAX + 32];
  snprintf(path, sizeof path, "%s/queue", o->data_dir);
  q->dir = queue__strdup(path);
  q->access_key = queue__strdup(o->access_key);
  q->secret_key = queue__strdup(o->secret_key);
  pthread_mutex_init(&q->emu, NULL);
  snprintf(q->endpoint, sizeof q->endpoint, "http://127.0.0.1:9000");
  q->workers = o->delivery_workers ? o->delivery_workers : 4;
  q->retry_base_ms = o->retry_base_ms ? o->retry_base_ms : 1000;
  q->max_attempts = o->max_attempts ? o->max_attempts : 50;
  q->egress = o->egress;
  q->delivery_failed = o->delivery_failed;
  q->store = &queue__lmdb_store;
  q->tstore = &queue__lmdb_topics;
  pthread_mutex_init(&q->meta_mu, NULL);
  pthread_rwlock_init(&q->mu, NULL);
  pthread_mutex_init(&q->wmu, NULL);
  pthread_mutex_init(&q->dmu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&q->timer_cv, &ca);
  pthread_cond_init(&q->dcv, &ca);
  pthread_condattr_destroy(&ca);

  int rc = make_dir(q->dir, e);
  snprintf(path, sizeof path, "%s/queue/meta", o->data_dir);
  lmdb_env_options eo = {.map_size = MAP_SIZE, .max_dbs = 12, .max_readers = MAX_READERS};
  if (rc == 0)
    rc = lmdb_env_open(&q->env, path, &eo, "the queue database", e);
  if (rc != 0) {
    queue_system_close(q);
    return rc;
  }
  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(q->env, NULL, 0, &txn);
  struct {
    const char *name;
    MDB_dbi *dbi;
  } dbs[] = {
      {"queues", &q->db_queues}, {"qids", &q->db_qids},     {"msgs", &q->db_msgs},
      {"bodies", &q->db_bodies}, {"vis", &q->db_vis},       {"dedup", &q->db_dedup},
      {"topics", &q->db_topics}, {"subs", &q->db_subs},     {"outbox", &q->db_outbox},
      {"meta", &q->db_meta},
  };
  for (size_t i = 0; mrc == 0 && i < sizeof dbs / sizeof dbs[0]; i++)
    mrc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
  if (mrc == 0) {
    q->next_seq = counter_load(q, txn, "seq");
    q->next_qid = counter_load(q, txn, "qid");
    q->next_outbox = counter_load(q, txn, "outbox");
    rc = queue__queues_load(q, txn, e);
    if (rc == 0)
      rc = queue__topics_load(q, txn, e);
    if (rc != 0) {
      mdb_txn_abort(txn);
      queue_system_close(q);
      return rc;
    }
    mrc = mdb_txn_commit(txn);
  } else {
    mdb_txn_abort(txn);
  }
  if (mrc != 0) {
    rc = lmdb_error(e, mrc, "open the queue tables");
    queue_system_close(q);
    return rc;
  }
  if ((rc = queue__committer_start(q, e)) != 0) {
    queue_system_close(q);
    return rc;
  }
  if (o->metadata != NULL) {
    q->store = &queue__pg_store;
    queue__queues_free(q); /* the LMDB queues stay there, unused */
    q->tstore = &queue__pg_topics;
    queue__topics_free(q); /* so do the LMDB topics */
    if ((rc = queue__pg_open(q, o->metadata, e)) != 0 || (rc = queue__pg_topics_open(q, e)) != 0) {
      queue_system_close(q);
      return rc;
    }
  }
  int prc = pthread_create(&q->timer, NULL, queue__timer_main, q);
  if (prc != 0) {
    queue_system_close(q);
    return err_set(e, ERR_INTERNAL, "cannot start the queue timer: %s", strerror(prc));
  }
  q->timer_running = true;
  *out = q;
  return 0;
}

int queue_system_start(queue_system *q, const char *endpoint, err *e)
{
  if (endpoint != NULL) {
    pthread_mutex_lock(&q->emu);
    snprintf(q->endpoint, sizeof q->endpoint, "%s", endpoint);
    size_t n = strlen(q->endpoint);
    while (n > 0 && q->endpoint[n - 1] == '/')
      q->endpoint[--n] = '\0';
    pthread_mutex_unlock(&q->emu);
  }
  int rc = queue__deliver_load(q, e);
  if (rc == 0)
    rc = queue__deliver_start(q, e);
  return rc;
}

void queue_system_stop(queue_system *q)
{
  if (q == NULL)
    return;
  queue__polls_close(q);
  queue__deliver_stop(q);
  queue__pg_stop(q);
}

queue_system *queue_system_close(queue_system *q)
{
  if (q == NULL)
    return NULL;
  queue_system_stop(q);
  if (q->timer_running) {
    pthread_mutex_lock(&q->wmu);
    q->timer_stop = true;
    pthread_cond_broadcast(&q->timer_cv);
    pthread_mutex_unlock(&q->wmu);
    pthread_join(q->timer, NULL);
    q->timer_running = false;
  }
  queue__committer_stop(q);
  queue__deliver_stop(q);  /* what the last batches scheduled */
  queue__pg_close(q);
  queue__queues_free(q);
  queue__topics_free(q);
  if (q->env != NULL)
    mdb_env_close(q->env);
  pthread_mutex_destroy(&q->meta_mu);
  pthread_rwlock_destroy(&q->mu);
  pthread_mutex_destroy(&q->wmu);
  pthread_cond_destroy(&q->timer_cv);
  pthread_mutex_destroy(&q->dmu);
  pthread_cond_destroy(&q->dcv);
  free(q->dthreads);
  free(q->dir);
  free(q->access_key);
  free(q->secret_key);
  pthread_mutex_destroy(&q->emu);
  free(q);
  return NULL;
}
