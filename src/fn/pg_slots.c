/* fn/pg_slots.c -- reserved concurrency as a limit of the whole cluster
 * (`tarn server --metadata postgres://...`): each running invocation of a
 * function with reserved concurrency holds a slot row in PostgreSQL.
 *
 * Why: every node admits invocations on its own (scheduler.c), so a
 * function's reservation of N would let each node run N; the slots make
 * it N across the nodes that share the metadata database.
 *
 * Table (created at open, pg_pool_schema):
 *   tarn_fn_slots  token (a fresh UUID per claim) -> function, owner node,
 *                  lease_until (the database's clock, ms)
 *
 * Invariants:
 *   (1) A claim inserts its row only when fewer than the reservation of
 *       the function's rows are live (lease not over), under a transaction
 *       advisory lock named by the function: two nodes claiming at once
 *       are ordered, and never together exceed the reservation.
 *   (2) A node renews the leases of the rows it owns every third of the
 *       lease (TARN_FN_SLOT_LEASE_SECONDS, default 30) while it holds any;
 *       a node that died stops renewing, and its rows stop counting once
 *       their lease ran out (and are deleted by the next claim). At open a
 *       node deletes the rows it owned before a restart.
 *   (3) A row is deleted when its invocation ends: at once (before the
 *       invoker hears the answer) on the runtime's response path
 *       (runtime.c), else (time-out, crash, stop: under fn_system.lock) by
 *       the slot thread, woken for it. A delete that failed is tried again
 *       on the thread's next round, so a renewal never keeps an ended
 *       invocation's row alive for long.
 *   (4) Only functions with a reservation above 0 claim (invoke.c): the
 *       others pay no round trip; a reservation of 0 refuses locally.
 *
 * Start reading at fn__slot_claim().
 */
#include "fn/internal.h"

#include "base/buf.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/pg.h"

#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_LEASE_DEFAULT_S 30
#define NOW_MS FN_PG_NOW_MS

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS tarn_fn_slots ("
    "  token text PRIMARY KEY,"
    "  fn text COLLATE \"C\" NOT NULL,"
    "  owner text NOT NULL,"
    "  lease_until bigint NOT NULL);"
    "CREATE INDEX IF NOT EXISTS tarn_fn_slots_fn ON tarn_fn_slots (fn);"
    "CREATE INDEX IF NOT EXISTS tarn_fn_slots_owner ON tarn_fn_slots (owner);";

struct slot_token {
  char token[37];
  slot_token *next;
};

int fn__slots_open(fn_system *s, err *e)
{
  int rc = pg_pool_schema(s->pg, "tarn_fn_slots", SCHEMA, e);
  if (rc != 0)
    return rc;
  const char *p[] = {s->node};
  /* invariant (2): what this node ran before a restart ended */
  return pg_pool_exec(s->pg, "DELETE FROM tarn_fn_slots WHERE owner = $1", 1, p, NULL, NULL,
                      NULL, "hand back the concurrency slots", e);
}

typedef struct claim_arg {
  fn_system *s;
  const char *name;
  const char *token;
  int reserved;
} claim_arg;

static int txn_claim(PGconn *c, void *arg, err *e)
{
  claim_arg *a = arg;
  char lease[24];
  char limit[24];
  snprintf(lease, sizeof lease, "%lld",
           pg_lease_ms("TARN_FN_SLOT_LEASE_SECONDS", SLOT_LEASE_DEFAULT_S));
  snprintf(limit, sizeof limit, "%d", a->reserved);
  const char *pl[] = {a->name};
  /* invariant (1) */
  int rc = pg_exec(c, "SELECT pg_advisory_xact_lock(hashtextextended('tarn_fn_slots/' || $1, 0))",
                   1, pl, NULL, "claim a concurrency slot", e);
  if (rc != 0)
    return rc;
  const char *p[] = {a->name, a->token, a->s->node, limit, lease};
  PGresult *r = NULL;
  rc = pg_exec(c, "WITH gone AS (DELETE FROM tarn_fn_slots WHERE fn = $1 AND lease_until < "
                  NOW_MS ") INSERT INTO tarn_fn_slots (token, fn, owner, lease_until) "
                  "SELECT $2, $1, $3, " NOW_MS " + $5::bigint WHERE (SELECT count(*) FROM "
                  "tarn_fn_slots WHERE fn = $1 AND lease_until >= " NOW_MS ") < $4::bigint",
               5, p, &r, "claim a concurrency slot", e);
  if (rc != 0)
    return rc;
  bool claimed = atoi(PQcmdTuples(r)) == 1;
  PQclear(r);
  return claimed ? 0 : 1;
}

int fn__slot_claim(fn_system *s, const char *name, int reserved, char token[37], err *e)
{
  uuid_v4(token);
  claim_arg a = {.s = s, .name = name, .token = token, .reserved = reserved};
  int rc = pg_transaction(s->pg, NULL, txn_claim, &a, e);
  if (rc == 0) {
    pthread_mutex_lock(&s->lock);
    s->slots_held++;
    pthread_mutex_unlock(&s->lock);
  } else {
    token[0] = '\0';
  }
  return rc;
}

/* Deletes the rows of a list of tokens: 0, or an error. */
static int delete_tokens(fn_system *s, const slot_token *list)
{
  buf arr;
  buf_init(&arr, SIZE_MAX / 2); /* 37 bytes a slot held */
  buf_puts(&arr, "{");
  for (const slot_token *t = list; t != NULL; t = t->next)
    buf_printf(&arr, "%s%s", t == list ? "" : ",", t->token);
  buf_puts(&arr, "}");
  const char *p[] = {arr.data, s->node};
  err e = {0};
  int rc = pg_pool_exec(s->pg, "DELETE FROM tarn_fn_slots WHERE token = ANY($1::text[]) AND "
                               "owner = $2",
                        2, p, NULL, NULL, NULL, "free concurrency slots", &e);
  buf_release(&arr);
  return rc;
}

void fn__slot_release_later(fn_system *s, char token[37])
{
  slot_token *t = xcalloc(1, sizeof *t);
  memcpy(t->token, token, 37);
  token[0] = '\0';
  t->next = s->slot_release;
  s->slot_release = t;
  pthread_cond_signal(&s->slot_cond);
}

void fn__slot_release(fn_system *s, char token[37])
{
  slot_token t = {.next = NULL};
  memcpy(t.token, token, 37);
  token[0] = '\0';
  if (delete_tokens(s, &t) == 0) {
    pthread_mutex_lock(&s->lock);
    s->slots_held--;
    pthread_mutex_unlock(&s->lock);
  } else {
    pthread_mutex_lock(&s->lock);
    fn__slot_release_later(s, t.token); /* invariant (3): tried again */
    pthread_mutex_unlock(&s->lock);
  }
}

/* The slot thread: deletes the rows of ended invocations, renews the
 * leases of the node's rows (invariant (2)). */
static void free_tokens(slot_token *list)
{
  for (slot_token *t = list, *next; t != NULL; t = next) {
    next = t->next;
    free(t);
  }
}

static uint32_t count_tokens(const slot_token *list)
{
  uint32_t n = 0;
  for (const slot_token *t = list; t != NULL; t = t->next)
    n++;
  return n;
}

static void *slot_main(void *arg)
{
  fn_system *s = arg;
  long long lease = pg_lease_ms("TARN_FN_SLOT_LEASE_SECONDS", SLOT_LEASE_DEFAULT_S);
  int64_t every = lease / 3 > 0 ? lease / 3 : 1;
  int64_t renewed = time_mono_ms();
  slot_token *retry = NULL; /* deletes that failed: tried again at the next renewal */
  pthread_mutex_lock(&s->lock);
  for (;;) {
    while (s->slot_release == NULL && !s->slot_stop && time_mono_ms() < renewed + every) {
      int64_t at = renewed + every;
      struct timespec ts = {(time_t)(at / 1000), (long)(at % 1000) * 1000000};
      pthread_cond_timedwait(&s->slot_cond, &s->lock, &ts);
    }
    slot_token *list = s->slot_release;
    s->slot_release = NULL;
    bool stop = s->slot_stop;
    bool due = time_mono_ms() >= renewed + every;
    pthread_mutex_unlock(&s->lock);
    if (due && retry != NULL) {
      slot_token *tail = retry;
      while (tail->next != NULL)
        tail = tail->next;
      tail->next = list;
      list = retry;
      retry = NULL;
    }
    uint32_t freed = 0;
    if (list != NULL) {
      if (delete_tokens(s, list) == 0) {
        freed = count_tokens(list);
        free_tokens(list);
      } else {
        slot_token *tail = list;
        while (tail->next != NULL)
          tail = tail->next;
        tail->next = retry;
        retry = list;
      }
    }
    pthread_mutex_lock(&s->lock);
    s->slots_held -= freed;
    if (stop)
      break;
    if (due) {
      renewed = time_mono_ms();
      if (s->slots_held > count_tokens(retry)) {
        pthread_mutex_unlock(&s->lock);
        char ms[24];
        snprintf(ms, sizeof ms, "%lld", lease);
        const char *p[] = {s->node, ms};
        err e = {0};
        /* a failure: the next round renews (the lease is three rounds) */
        pg_pool_exec(s->pg, "UPDATE tarn_fn_slots SET lease_until = " NOW_MS " + $2::bigint "
                            "WHERE owner = $1",
                     2, p, NULL, NULL, NULL, "renew concurrency slots", &e);
        pthread_mutex_lock(&s->lock);
      }
    }
  }
  pthread_mutex_unlock(&s->lock);
  free_tokens(retry); /* their leases run out */
  return NULL;
}

int fn__slots_start(fn_system *s, err *e)
{
  if (pthread_create(&s->slot_thread, NULL, slot_main, s) != 0)
    return err_set(e, ERR_INTERNAL, "cannot start the concurrency slot thread");
  s->slot_on = true;
  return 0;
}

void fn__slots_stop(fn_system *s)
{
  if (!s->slot_on)
    return;
  pthread_mutex_lock(&s->lock);
  s->slot_stop = true;
  pthread_cond_signal(&s->slot_cond);
  pthread_mutex_unlock(&s->lock);
  pthread_join(s->slot_thread, NULL);
  s->slot_on = false;
  free_tokens(s->slot_release);
  s->slot_release = NULL;
}
