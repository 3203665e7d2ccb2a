/* athena/pg_store.c -- the athena part's records in PostgreSQL, so that
 * several tarn nodes (`tarn server --metadata postgres://...`) share one
 * query history and one set of work groups: a query started on node A is
 * read, listed, stopped and its results fetched on node B.
 *
 * Tables (created once by pg_pool_schema):
 *   tarn_athena_workgroups  name (bytewise order) -> WorkGroup JSON
 *   tarn_athena_executions  id -> QueryExecution JSON (rec), its work group,
 *                           seq (the order of ListQueryExecutions), state,
 *                           owner (the node running it), lease_ms (the
 *                           wall clock until which the owner holds it) and
 *                           cancel (a StopQueryExecution asked elsewhere)
 *   tarn_athena_tokens      ClientRequestToken -> id, hash of the request
 *
 * Invariants:
 *   (1) A query runs on the node that started it (its owner). Only the
 *       owner writes its record while it is QUEUED or RUNNING (start,
 *       running, watch, finish: each conditioned on owner and a live
 *       state), and RUNNING is written, so every node reads the state.
 *   (2) Another node's StopQueryExecution only sets cancel; the owner's
 *       watch (every ATHENA_POLL_MS) reads it and cancels the query, which
 *       then ends CANCELLED as a local stop does.
 *   (3) The owner renews the lease of its live executions every quarter
 *       of the lease (TARN_ATHENA_LEASE_SECONDS, default 60); a live row
 *       whose lease ran out is failed, with a StateChangeReason naming its
 *       node, by whichever node meets it first (a read of it, or any
 *       node's watch). The failing update locks the row and checks the
 *       lease again, so a renewal and a failure never both win; an owner
 *       that finds its row taken ends the query without writing.
 *   (4) A node restarted on the same data directory has the same name and
 *       fails its own live rows at open (they were running when it died).
 *   (5) A token is taken in the transaction that inserts its execution;
 *       two nodes starting with one token make one execution (the primary
 *       key of tarn_athena_tokens decides, the loser reads the winner's).
 *   (6) Work group creation counts and inserts under a transaction-scoped
 *       advisory lock (at most ATHENA_MAX_WORKGROUPS across nodes); an
 *       update reads the row FOR UPDATE, so two updates never lose one.
 */
#include "athena/internal.h"

#include "base/buf.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/pg.h"

#include <libpq-fe.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEASE_DEFAULT_S 60
#define LIVE "state IN ('QUEUED', 'RUNNING')"

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS tarn_athena_workgroups ("
    "  name text COLLATE \"C\" PRIMARY KEY,"
    "  rec text NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tarn_athena_executions ("
    "  id text PRIMARY KEY,"
    "  seq bigserial NOT NULL,"
    "  workgroup text COLLATE \"C\" NOT NULL,"
    "  state text NOT NULL,"
    "  owner text,"
    "  lease_ms bigint NOT NULL DEFAULT 0,"
    "  cancel boolean NOT NULL DEFAULT false,"
    "  rec text NOT NULL);"
    "CREATE INDEX IF NOT EXISTS tarn_athena_executions_wg"
    "  ON tarn_athena_executions (workgroup, seq);"
    "CREATE INDEX IF NOT EXISTS tarn_athena_executions_live"
    "  ON tarn_athena_executions (owner) WHERE " LIVE ";"
    "CREATE TABLE IF NOT EXISTS tarn_athena_tokens ("
    "  token text PRIMARY KEY,"
    "  id text NOT NULL,"
    "  hash text NOT NULL);";

typedef struct pstore {
  pg_pool *pool;           /* the server's */
  char *owner;             /* this node's name (4) */
  int64_t lease_ms;
} pstore;

static pstore *P(athena *a)
{
  return a->impl;
}

static void i64s(char out[24], int64_t v)
{
  snprintf(out, 24, "%" PRId64, v);
}

static bool no_rows(PGresult *r)
{
  return strcmp(PQcmdTuples(r), "0") == 0;
}

/* ---- failing what a dead node left (3), (4) ---- */

typedef struct fail_args {
  pstore *s;
  const char *id;          /* one execution (when its lease ran out), or NULL */
  bool mine;               /* this node's live rows, whatever their lease (4) */
  int failed;
} fail_args;

static int fail_txn(PGconn *c, void *arg, err *e)
{
  fail_args *f = arg;
  f->failed = 0;
  int64_t now = athena__now_ms();
  char nows[24];
  i64s(nows, now);
  const char *p[2] = {nows, f->id};
  const char *sql;
  if (f->mine) {
    p[0] = f->s->owner;
    sql = "SELECT id, rec, owner FROM tarn_athena_executions WHERE " LIVE " AND owner = $1 "
          "FOR UPDATE SKIP LOCKED";
  } else if (f->id != NULL) {
    sql = "SELECT id, rec, owner FROM tarn_athena_executions WHERE " LIVE " AND lease_ms < $1 "
          "AND id = $2 FOR UPDATE";
  } else {
    sql = "SELECT id, rec, owner FROM tarn_athena_executions WHERE " LIVE " AND lease_ms < $1 "
          "LIMIT 100 FOR UPDATE SKIP LOCKED";
  }
  PGresult *r;
  int rc = pg_exec(c, sql, f->id != NULL && !f->mine ? 2 : 1, p, &r, "read the query history",
                   e);
  if (rc != 0)
    return rc;
  for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
    json_t *rec = json_loads(PQgetvalue(r, i, 1), 0, NULL);
    if (rec == NULL)
      continue;
    char msg[600];
    if (f->mine)
      snprintf(msg, sizeof msg, "the query did not finish: tarn stopped while it was queued or "
               "running (a crash or a restart); run it again");
    else
      snprintf(msg, sizeof msg, "the query did not finish: the node running it (%.400s) "
               "stopped renewing its lease of %lld s (it crashed or lost the metadata "
               "database); run it again", PQgetvalue(r, i, 2),
               (long long)(f->s->lease_ms / 1000));
    athena__fail_rec(rec, msg, now);
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    const char *u[2] = {PQgetvalue(r, i, 0), text};
    rc = pg_exec(c, "UPDATE tarn_athena_executions SET state = 'FAILED', rec = $2 "
                 "WHERE id = $1", 2, u, NULL, "fail a query", e);
    free(text);
    f->failed++;
  }
  PQclear(r);
  return rc;
}

static int fail_rows(pstore *s, const char *id, bool mine, int *n, err *e)
{
  fail_args f = {.s = s, .id = id, .mine = mine};
  int rc = pg_transaction(s->pool, NULL, fail_txn, &f, e);
  if (n != NULL)
    *n = f.failed;
  return rc;
}

/* ---- records ---- */

static int p_get(athena *a, int space, const char *key, json_t **out, err *e)
{
  *out = NULL;
  pstore *s = P(a);
  const char *p[1] = {key};
  for (int attempt = 0;; attempt++) {
    PGresult *r;
    int rc = pg_pool_exec(s->pool,
                          space == AS_WGS
                              ? "SELECT rec FROM tarn_athena_workgroups WHERE name = $1"
                              : "SELECT rec, state, lease_ms FROM tarn_athena_executions "
                                "WHERE id = $1",
                          1, p, NULL, NULL, &r, "read the query history", e);
    if (rc != 0)
      return rc;
    if (PQntuples(r) == 0) {
      PQclear(r);
      return err_set(e, ERR_NOT_FOUND, "no record '%s'", key);
    }
    bool expired = false;
    if (space == AS_EXECS && attempt == 0) {
      const char *st = PQgetvalue(r, 0, 1);
      expired = (strcmp(st, "QUEUED") == 0 || strcmp(st, "RUNNING") == 0) &&
                pg_col_int(r, 0, 2) < athena__now_ms();
    }
    if (expired) { /* (3): failed first, then read again */
      PQclear(r);
      if ((rc = fail_rows(s, key, false, NULL, e)) != 0)
        return rc;
      continue;
    }
    *out = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    return *out != NULL ? 0 : err_set(e, ERR_IO, "a query history record is not JSON");
  }
}

typedef struct start_args {
  pstore *s;
  const char *id, *wg, *token, *hash, *text;
  char *found;
} start_args;

static int start_txn(PGconn *c, void *arg, err *e)
{
  start_args *t = arg;
  t->found[0] = '\0';
  PGresult *r;
  int rc;
  if (t->token != NULL) { /* (5) */
    const char *p[3] = {t->token, t->id, t->hash};
    if ((rc = pg_exec(c, "INSERT INTO tarn_athena_tokens (token, id, hash) VALUES ($1, $2, $3) "
                      "ON CONFLICT (token) DO NOTHING", 3, p, &r, "write the query tokens",
                      e)) != 0)
      return rc;
    bool taken = no_rows(r);
    PQclear(r);
    if (taken) {
      if ((rc = pg_exec(c, "SELECT id, hash FROM tarn_athena_tokens WHERE token = $1", 1, p, &r,
                        "read the query tokens", e)) != 0)
        return rc;
      if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 1), t->hash) == 0) {
        snprintf(t->found, 37, "%s", PQgetvalue(r, 0, 0));
        rc = 1; /* nothing to commit */
      } else {
        rc = athena__token_mismatch(e);
      }
      PQclear(r);
      return rc;
    }
  }
  char lease[24];
  i64s(lease, athena__now_ms() + t->s->lease_ms);
  const char *p[5] = {t->id, t->wg, t->s->owner, lease, t->text};
  return pg_exec(c, "INSERT INTO tarn_athena_executions (id, workgroup, state, owner, lease_ms, "
                 "rec) VALUES ($1, $2, 'QUEUED', $3, $4, $5)", 5, p, NULL,
                 "write the query history", e);
}

static int p_start(athena *a, json_t *rec, const char *id, const char *wg, const char *token,
                   const char *hash, char found[37], err *e)
{
  char *text = json_dumps(rec, JSON_COMPACT);
  start_args t = {.s = P(a), .id = id, .wg = wg, .token = token, .hash = hash, .text = text,
                  .found = found};
  int rc = pg_transaction(P(a)->pool, NULL, start_txn, &t, e);
  free(text);
  return rc == 1 ? 0 : rc;
}

static int p_token_lookup(athena *a, const char *token, const char *hash, char found[37], err *e)
{
  const char *p[1] = {token};
  PGresult *r;
  int rc = pg_pool_exec(P(a)->pool, "SELECT id, hash FROM tarn_athena_tokens WHERE token = $1",
                        1, p, NULL, NULL, &r, "read the query tokens", e);
  if (rc != 0)
    return rc;
  if (PQntuples(r) == 1) {
    if (strcmp(PQgetvalue(r, 0, 1), hash) == 0) {
      snprintf(found, 37, "%s", PQgetvalue(r, 0, 0));
      rc = 1;
    } else {
      rc = athena__token_mismatch(e);
    }
  }
  PQclear(r);
  return rc;
}

/* The NextToken of ListQueryExecutions: the complement of the next seq in
 * 16 hex digits, as the LMDB side's key suffix. */
static int p_list(athena *a, const char *wg, const char *token, json_int_t max, json_t **out,
                  char next[17], err *e)
{
  next[0] = '\0';
  uint64_t from = (uint64_t)INT64_MAX;
  if (token != NULL) {
    uint8_t b[8];
    if (strlen(token) != 16 || !hex_decode(token, 16, b, 8))
      return err_set(e, ERR_INVALID, "the NextToken is not valid");
    uint64_t inv = 0;
    for (int i = 0; i < 8; i++)
      inv = inv << 8 | b[i];
    from = UINT64_MAX - inv;
    if (from > (uint64_t)INT64_MAX)
      return err_set(e, ERR_INVALID, "the NextToken is not valid");
  }
  char froms[24], lim[24];
  i64s(froms, (int64_t)from);
  i64s(lim, (int64_t)max + 1);
  const char *p[3] = {wg, froms, lim};
  PGresult *r;
  int rc = pg_pool_exec(P(a)->pool, "SELECT id, seq FROM tarn_athena_executions "
                        "WHERE workgroup = $1 AND seq <= $2 ORDER BY seq DESC LIMIT $3",
                        3, p, NULL, NULL, &r, "read the query history", e);
  if (rc != 0)
    return rc;
  json_t *ids = json_array();
  for (int i = 0; i < PQntuples(r); i++) {
    if ((json_int_t)i == max) {
      uint64_t inv = UINT64_MAX - (uint64_t)pg_col_int(r, i, 1);
      uint8_t b[8];
      for (int k = 0; k < 8; k++)
        b[k] = (uint8_t)(inv >> (56 - 8 * k));
      hex_encode(b, 8, next);
      break;
    }
    json_array_append_new(ids, json_string(PQgetvalue(r, i, 0)));
  }
  PQclear(r);
  *out = ids;
  return 0;
}

static int p_running(athena *a, const char *id, json_t *rec, err *e)
{
  pstore *s = P(a);
  char *text = json_dumps(rec, JSON_COMPACT);
  char lease[24];
  i64s(lease, athena__now_ms() + s->lease_ms);
  const char *p[4] = {id, s->owner, lease, text};
  PGresult *r;
  int rc = pg_pool_exec(s->pool, "UPDATE tarn_athena_executions SET state = 'RUNNING', "
                        "lease_ms = $3, rec = $4 WHERE id = $1 AND owner = $2 AND " LIVE,
                        4, p, NULL, NULL, &r, "write the query history", e);
  free(text);
  if (rc != 0)
    return rc;
  rc = no_rows(r) ? 1 : 0;
  PQclear(r);
  return rc;
}

static int p_finish(athena *a, const char *id, json_t *rec, err *e)
{
  pstore *s = P(a);
  char *text = json_dumps(rec, JSON_COMPACT);
  const char *state = json_string_value(json_object_get(json_object_get(rec, "Status"), "State"));
  const char *p[4] = {id, s->owner, state != NULL ? state : "FAILED", text};
  /* no row: another node failed it meanwhile (3), its record stands */
  int rc = pg_pool_exec(s->pool, "UPDATE tarn_athena_executions SET state = $3, rec = $4 "
                        "WHERE id = $1 AND owner = $2 AND " LIVE, 4, p, NULL, NULL, NULL,
                        "write the query history", e);
  free(text);
  return rc;
}

static int p_stop_remote(athena *a, const char *id, err *e)
{
  const char *p[1] = {id};
  return pg_pool_exec(P(a)->pool, "UPDATE tarn_athena_executions SET cancel = true "
                      "WHERE id = $1 AND " LIVE, 1, p, NULL, NULL, NULL,
                      "ask for the query's stop", e);
}

/* Appends s (NULL: SQL NULL) as an element of a text[] literal (the '{'
 * before the first). */
static void array_put(buf *b, const char *s)
{
  buf_append(b, b->len > 0 ? "," : "{", 1);
  if (s == NULL) {
    buf_append(b, "NULL", 4);
    return;
  }
  buf_append(b, "\"", 1);
  for (const char *q = s; *q; q++) {
    if (*q == '"' || *q == '\\')
      buf_append(b, "\\", 1);
    buf_append(b, q, 1);
  }
  buf_append(b, "\"", 1);
}

static int p_watch(athena *a, bool local, json_t *recs, json_t **cancel, json_t **lost, err *e)
{
  pstore *s = P(a);
  *cancel = json_array();
  *lost = json_array();
  int64_t now = athena__now_ms();
  int rc = 0;
  PGresult *r;
  if (local) { /* (2): stops asked elsewhere */
    const char *p[1] = {s->owner};
    rc = pg_pool_exec(s->pool, "SELECT id FROM tarn_athena_executions WHERE owner = $1 AND "
                      LIVE " AND cancel", 1, p, NULL, NULL, &r, "read the query history", e);
    if (rc != 0)
      return rc;
    for (int i = 0; i < PQntuples(r); i++)
      json_array_append_new(*cancel, json_string(PQgetvalue(r, i, 0)));
    PQclear(r);
  }
  if (recs == NULL)
    return 0;
  if (json_object_size(recs) > 0) { /* (3): renew, with running records as of now */
    buf ids, texts;
    buf_init(&ids, SIZE_MAX);
    buf_init(&texts, SIZE_MAX);
    const char *id;
    json_t *rec;
    json_object_foreach(recs, id, rec) {
      char *text = json_is_null(rec) ? NULL : json_dumps(rec, JSON_COMPACT);
      array_put(&ids, id);
      array_put(&texts, text);
      free(text);
    }
    buf_append(&ids, "}", 1);
    buf_append(&texts, "}", 1);
    char lease[24];
    i64s(lease, now + s->lease_ms);
    const char *p[4] = {s->owner, lease, ids.data, texts.data};
    rc = pg_pool_exec(s->pool, "UPDATE tarn_athena_executions t SET lease_ms = $2, "
                      "rec = COALESCE(u.rec, t.rec) "
                      "FROM unnest($3::text[], $4::text[]) AS u(id, rec) "
                      "WHERE t.id = u.id AND t.owner = $1 AND t." LIVE " RETURNING t.id",
                      4, p, NULL, NULL, &r, "renew the queries' lease", e);
    buf_release(&ids);
    buf_release(&texts);
    if (rc != 0)
      return rc;
    json_t *kept = json_object();
    for (int i = 0; i < PQntuples(r); i++)
      json_object_set_new(kept, PQgetvalue(r, i, 0), json_true());
    PQclear(r);
    json_object_foreach(recs, id, rec) {
      if (json_object_get(kept, id) == NULL)
        json_array_append_new(*lost, json_string(id));
    }
    json_decref(kept);
  }
  return fail_rows(s, NULL, false, NULL, e); /* other nodes' expired rows */
}

/* ---- work groups (6) ---- */

typedef struct wg_args {
  const char *name;
  const char *text;
  size_t max;
  int (*fn)(json_t *wg, void *arg, err *e);
  void *arg;
} wg_args;

static int wg_create_txn(PGconn *c, void *arg, err *e)
{
  wg_args *w = arg;
  PGresult *r;
  int rc = pg_exec(c, "SELECT pg_advisory_xact_lock(hashtext('tarn_athena_workgroups'))", 0, NULL,
                   NULL, "lock the work groups", e);
  if (rc == 0)
    rc = pg_exec(c, "SELECT count(*) FROM tarn_athena_workgroups", 0, NULL, &r,
                 "count the work groups", e);
  if (rc != 0)
    return rc;
  long long n = pg_col_int(r, 0, 0);
  PQclear(r);
  const char *p[2] = {w->name, w->text};
  if ((rc = pg_exec(c, "INSERT INTO tarn_athena_workgroups (name, rec) VALUES ($1, $2) "
                    "ON CONFLICT (name) DO NOTHING", 2, p, &r, "write the work group", e)) != 0)
    return rc;
  bool taken = no_rows(r);
  PQclear(r);
  if (taken)
    return err_set(e, ERR_INVALID, "WorkGroup is already created");
  if ((size_t)n >= w->max)
    return err_set(e, ERR_INVALID, "too many work groups (at most %zu)", w->max);
  return 0;
}

static int p_wg_create(athena *a, const char *name, json_t *rec, size_t max, err *e)
{
  char *text = json_dumps(rec, JSON_COMPACT);
  wg_args w = {.name = name, .text = text, .max = max};
  int rc = pg_transaction(P(a)->pool, NULL, wg_create_txn, &w, e);
  free(text);
  return rc;
}

static int wg_update_txn(PGconn *c, void *arg, err *e)
{
  wg_args *w = arg;
  const char *p[2] = {w->name, NULL};
  PGresult *r;
  int rc = pg_exec(c, "SELECT rec FROM tarn_athena_workgroups WHERE name = $1 FOR UPDATE", 1, p,
                   &r, "read the work group", e);
  if (rc != 0)
    return rc;
  json_t *wg = PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
  PQclear(r);
  if (wg == NULL)
    return err_set(e, ERR_NOT_FOUND, "no work group '%s'", w->name);
  rc = w->fn(wg, w->arg, e);
  char *text = rc == 0 ? json_dumps(wg, JSON_COMPACT) : NULL;
  json_decref(wg);
  if (rc != 0)
    return rc;
  p[1] = text;
  rc = pg_exec(c, "UPDATE tarn_athena_workgroups SET rec = $2 WHERE name = $1", 2, p, NULL,
               "write the work group", e);
  free(text);
  return rc;
}

static int p_wg_update(athena *a, const char *name, int (*fn)(json_t *wg, void *arg, err *e),
                       void *arg, err *e)
{
  wg_args w = {.name = name, .fn = fn, .arg = arg};
  return pg_transaction(P(a)->pool, NULL, wg_update_txn, &w, e);
}

static int p_wg_delete(athena *a, const char *name, err *e)
{
  const char *p[1] = {name};
  PGresult *r;
  int rc = pg_pool_exec(P(a)->pool, "DELETE FROM tarn_athena_workgroups WHERE name = $1", 1, p,
                        NULL, NULL, &r, "delete the work group", e);
  if (rc != 0)
    return rc;
  if (no_rows(r))
    rc = err_set(e, ERR_NOT_FOUND, "no work group '%s'", name);
  PQclear(r);
  return rc;
}

static int p_wg_list(athena *a, const char *token, json_int_t max, json_t **out, char **next,
                     err *e)
{
  *next = NULL;
  char lim[24];
  i64s(lim, (int64_t)max + 1);
  const char *p[2] = {token != NULL ? token : "", lim};
  PGresult *r;
  int rc = pg_pool_exec(P(a)->pool, "SELECT name, rec FROM tarn_athena_workgroups "
                        "WHERE name >= $1 ORDER BY name LIMIT $2", 2, p, NULL, NULL, &r,
                        "list the work groups", e);
  if (rc != 0)
    return rc;
  json_t *list = json_array();
  for (int i = 0; i < PQntuples(r); i++) {
    if ((json_int_t)i == max) {
      *next = xstrdup(PQgetvalue(r, i, 0));
      break;
    }
    json_t *wg = json_loads(PQgetvalue(r, i, 1), 0, NULL);
    if (wg != NULL)
      json_array_append_new(list, wg);
  }
  PQclear(r);
  *out = list;
  return 0;
}

static void p_close(athena *a)
{
  pstore *s = P(a);
  if (s == NULL)
    return;
  free(s->owner);
  free(s);
  a->impl = NULL;
}

static const athena_side pg_side = {
    .get = p_get, .start = p_start, .token_lookup = p_token_lookup, .list = p_list,
    .finish = p_finish, .wg_create = p_wg_create, .wg_update = p_wg_update,
    .wg_delete = p_wg_delete, .wg_list = p_wg_list, .running = p_running,
    .stop_remote = p_stop_remote, .watch = p_watch, .close = p_close, .shared = true};

int athena__pg_open(athena *a, struct pg_pool *pool, err *e)
{
  pstore *s = xcalloc(1, sizeof *s);
  a->side = &pg_side;
  a->impl = s;
  s->pool = pool;
  s->lease_ms = (int64_t)pg_lease_ms("TARN_ATHENA_LEASE_SECONDS", LEASE_DEFAULT_S);
  a->renew_ms = s->lease_ms / 4; /* (3) */
  if (a->node != NULL) {
    s->owner = xstrdup(a->node);
  } else {
    char id[37];
    uuid_v4(id);
    s->owner = xstrdup(id);
  }
  int rc = pg_pool_schema(pool, "tarn_athena", SCHEMA, e);
  if (rc == 0)
    rc = fail_rows(s, NULL, true, NULL, e); /* (4) */
  return rc;
}
