/* base/pg.c -- the PostgreSQL connection pool and transaction runner of
 * base/pg.h.
 *
 * Why: the parts whose metadata may live in PostgreSQL (queues, the object
 * index) need the same few things: a bounded set of connections shared by
 * the server's threads, idempotent schema creation safe against two nodes
 * starting together, one error mapping, and transactions retried on
 * serialization failures. They are here once.
 *
 * Invariants:
 *   (1) A connection is in the idle list or held by exactly one thread.
 *   (2) p->open counts idle plus held connections and never exceeds
 *       p->max; a thread that finds none idle and the pool full waits.
 *   (3) A connection released as broken, or found not CONNECTION_OK when
 *       taken, is closed and not reused.
 *   (4) pg_transaction retries only when COMMIT was not sent or the server
 *       answered it with a serialization failure: a connection lost while
 *       COMMIT was in flight is reported (ERR_UNAVAILABLE), never retried,
 *       since the commit may have happened.
 */
#include "base/pg.h"

#include "base/hash.h"
#include "base/mem.h"

#include <libpq-fe.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pg_pool {
  char *url;
  int max;
  int open;
  PGconn **idle;
  int nidle;
  pthread_mutex_t mu;
  pthread_cond_t freed;
};

static __thread bool last_retryable;

bool pg_last_retryable(void)
{
  return last_retryable;
}

static void quiet_notice(void *arg, const char *message)
{
  (void)arg;
  (void)message;
}

static PGconn *connect_one(const char *url, err *e)
{
  PGconn *c = PQconnectdb(url);
  if (c == NULL)
    mem_out_of_memory();
  if (PQstatus(c) != CONNECTION_OK) {
    err_set(e, ERR_UNAVAILABLE, "connect to the metadata database: %s", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  /* Notices (e.g. "relation already exists, skipping") are not errors. */
  PQsetNoticeProcessor(c, quiet_notice, NULL);
  return c;
}

int pg_pool_open(const char *url, int max_conns, pg_pool **out, err *e)
{
  *out = NULL;
  if (max_conns < 1)
    max_conns = 1;
  PGconn *first = connect_one(url, e);
  if (first == NULL)
    return e != NULL ? e->code : ERR_UNAVAILABLE;
  pg_pool *p = xcalloc(1, sizeof *p);
  p->url = xstrdup(url);
  p->max = max_conns;
  p->idle = xcalloc((size_t)max_conns, sizeof *p->idle);
  p->idle[p->nidle++] = first;
  p->open = 1;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->freed, NULL);
  *out = p;
  return 0;
}

void pg_pool_close(pg_pool *p)
{
  if (p == NULL)
    return;
  for (int i = 0; i < p->nidle; i++)
    PQfinish(p->idle[i]);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->freed);
  free(p->idle);
  free(p->url);
  free(p);
}

PGconn *pg_acquire(pg_pool *p, err *e)
{
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->nidle > 0) {
      PGconn *c = p->idle[--p->nidle];
      if (PQstatus(c) == CONNECTION_OK) {
        pthread_mutex_unlock(&p->mu);
        return c;
      }
      PQfinish(c); /* (3) */
      p->open--;
    }
    if (p->open < p->max)
      break;
    pthread_cond_wait(&p->freed, &p->mu); /* (2) */
  }
  p->open++;
  pthread_mutex_unlock(&p->mu);
  PGconn *c = connect_one(p->url, e);
  if (c == NULL) {
    pthread_mutex_lock(&p->mu);
    p->open--;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
    return NULL;
  }
  return c;
}

void pg_release(pg_pool *p, PGconn *c, bool broken)
{
  if (c == NULL)
    return;
  if (!broken && PQtransactionStatus(c) != PQTRANS_IDLE)
    broken = true; /* a transaction left open must not leak into another caller */
  pthread_mutex_lock(&p->mu);
  if (broken || PQstatus(c) != CONNECTION_OK) {
    PQfinish(c);
    p->open--;
  } else {
    p->idle[p->nidle++] = c;
  }
  pthread_cond_signal(&p->freed);
  pthread_mutex_unlock(&p->mu);
}

int pg_error(PGconn *c, const PGresult *r, const char *what, err *e)
{
  const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  if (msg == NULL)
    msg = PQerrorMessage(c);
  bool lost = PQstatus(c) != CONNECTION_OK || (state != NULL && strncmp(state, "08", 2) == 0) ||
              (state != NULL && strcmp(state, "57P01") == 0); /* admin shutdown */
  bool conflict = state != NULL && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0);
  last_retryable = lost || conflict;
  int code = ERR_INTERNAL;
  if (lost)
    code = ERR_UNAVAILABLE;
  else if (conflict || (state != NULL && strcmp(state, "23505") == 0))
    code = ERR_CONFLICT;
  if (state == NULL)
    return err_set(e, code, "%s: %s", what, msg);
  return err_set(e, code, "%s: %s (SQLSTATE %s)", what, msg, state);
}

int pg_exec_bin(PGconn *c, const char *sql, int nparams, const char *const *params,
                const int *lengths, const int *formats, PGresult **out, const char *what,
                err *e)
{
  if (out != NULL)
    *out = NULL;
  last_retryable = false;
  PGresult *r = nparams > 0 || lengths != NULL
                    ? PQexecParams(c, sql, nparams, NULL, params, lengths, formats, 0)
                    : PQexec(c, sql);
  ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    int rc = pg_error(c, r, what, e);
    PQclear(r);
    return rc;
  }
  if (out != NULL)
    *out = r;
  else
    PQclear(r);
  return 0;
}

int pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
            PGresult **out, const char *what, err *e)
{
  return pg_exec_bin(c, sql, nparams, params, NULL, NULL, out, what, e);
}

int pg_pool_exec(pg_pool *p, const char *sql, int nparams, const char *const *params,
                 const int *lengths, const int *formats, PGresult **out, const char *what,
                 err *e)
{
  for (int attempt = 0;; attempt++) {
    PGconn *c = pg_acquire(p, e);
    if (c == NULL)
      return e != NULL && e->code != 0 ? e->code : ERR_UNAVAILABLE;
    int rc = pg_exec_bin(c, sql, nparams, params, lengths, formats, out, what, e);
    bool broken = PQstatus(c) != CONNECTION_OK;
    pg_release(p, c, broken);
    if (rc == 0 || !broken || attempt > 0)
      return rc;
  }
}

long long pg_lease_ms(const char *env_name, long long default_s)
{
  const char *v = getenv(env_name);
  long long s = v != NULL ? strtoll(v, NULL, 10) : 0;
  if (s <= 0 || s > 86400)
    s = default_s;
  return s * 1000;
}

long long pg_col_int(const PGresult *r, int row, int col)
{
  return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int pg_array_add(buf *b, const char *v)
{
  if (buf_puts(b, b->len == 0 ? "{" : ",") != 0)
    return -1;
  if (v == NULL)
    return buf_puts(b, "NULL");
  /* quoted, " and \ escaped: any text, even "NULL" or "", is itself */
  size_t n = strlen(v);
  char *out = buf_extend(b, 2 * n + 2);
  if (out == NULL)
    return -1;
  size_t k = 0;
  out[k++] = '"';
  for (size_t i = 0; i < n; i++) {
    if (v[i] == '"' || v[i] == '\\')
      out[k++] = '\\';
    out[k++] = v[i];
  }
  out[k++] = '"';
  b->len -= 2 * n + 2 - k;
  b->data[b->len] = '\0';
  return 0;
}

int pg_array_add_bytes(buf *b, const void *v, size_t n)
{
  if (buf_puts(b, b->len == 0 ? "{\"\\\\x" : ",\"\\\\x") != 0)
    return -1;
  char *out = buf_extend(b, 2 * n + 1);
  if (out == NULL)
    return -1;
  hex_encode(v, n, out);
  out[2 * n] = '"';
  return 0;
}

int pg_array_end(buf *b)
{
  return buf_puts(b, b->len == 0 ? "{}" : "}");
}

int pg_transaction(pg_pool *p, const char *isolation, pg_txn_fn fn, void *arg, err *e)
{
  char begin[80];
  snprintf(begin, sizeof begin, "BEGIN ISOLATION LEVEL %s",
           isolation != NULL ? isolation : "READ COMMITTED");
  int rc = ERR_UNAVAILABLE;
  for (int attempt = 0; attempt <= PG_RETRIES; attempt++) {
    err_clear(e);
    PGconn *c = pg_acquire(p, e);
    if (c == NULL)
      return e != NULL ? e->code : ERR_UNAVAILABLE;
    rc = pg_exec(c, begin, 0, NULL, NULL, "begin a transaction", e);
    if (rc == 0)
      rc = fn(c, arg, e);
    if (rc != 0) {
      bool retry = rc < 0 && pg_last_retryable();
      bool broken = PQstatus(c) != CONNECTION_OK;
      if (!broken) {
        PGresult *r = PQexec(c, "ROLLBACK");
        broken = r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK;
        PQclear(r);
      }
      pg_release(p, c, broken);
      if (retry)
        continue;
      return rc;
    }
    rc = pg_exec(c, "COMMIT", 0, NULL, NULL, "commit", e);
    bool lost = rc != 0 && PQstatus(c) != CONNECTION_OK;
    bool retry = rc != 0 && !lost && pg_last_retryable(); /* (4) */
    pg_release(p, c, rc != 0);
    if (rc == 0 || !retry)
      return rc;
  }
  return rc;
}

int pg_pool_schema(pg_pool *p, const char *name, const char *ddl, err *e)
{
  PGconn *c = pg_acquire(p, e);
  if (c == NULL)
    return e != NULL ? e->code : ERR_UNAVAILABLE;
  const char *params[1] = {name};
  int rc = pg_exec(c, "BEGIN", 0, NULL, NULL, "begin the schema", e);
  if (rc == 0)
    rc = pg_exec(c, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, params, NULL,
                 "lock the schema", e);
  if (rc == 0)
    rc = pg_exec(c, ddl, 0, NULL, NULL, "create the tables", e);
  if (rc == 0)
    rc = pg_exec(c, "COMMIT", 0, NULL, NULL, "commit the schema", e);
  else
    PQclear(PQexec(c, "ROLLBACK"));
  pg_release(p, c, rc != 0);
  return rc;
}
