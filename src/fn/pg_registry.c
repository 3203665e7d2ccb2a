/* fn/pg_registry.c -- the function registry, function code and queued
 * Events in PostgreSQL, shared by several tarn nodes (`tarn server
 * --metadata postgres://...`): the other side of registry.c's LMDB records
 * and invoke.c's LMDB queue.
 *
 * Why: a function created on one node must be invocable on every other, and
 * an Event queued on one node may run on any, once.
 *
 * Tables (created at open, pg_pool_schema):
 *   tarn_fn_registry  key -> value: registry.c's records, same keys and JSON
 *                     (f/NAME, v/NAME/%010u, a/NAME/ALIAS), plus the name of
 *                     the function a record belongs to
 *   tarn_fn_gen       function name -> generation, bumped by every change
 *                     to its records (kept after a delete)
 *   tarn_fn_code      CodeSha256 hex -> the zip; every node unpacks it into
 *                     its own DATA/fn/code/<hex> when it first needs it
 *   tarn_fn_events    queued Events: function, qualifier, request id, payload,
 *                     attempts, when due, and which node holds it until when
 *
 * Invariants:
 *   (1) A registry change (fn__txn_commit) is one PostgreSQL transaction:
 *       its records and the generations of the functions they belong to.
 *   (2) A node's memory of a function is as new as the generation it keeps
 *       (fn_entry.gen); the paths that look up one function compare it with
 *       tarn_fn_gen first (fn__registry_sync) and reload the function's
 *       records when it moved, so a function created, changed or deleted on
 *       another node is seen on the next call, never an older state.
 *   (3) A conf's code is unpacked locally before the conf is put in memory.
 *   (4) An Event is claimed (FOR UPDATE SKIP LOCKED) by one node, with a
 *       lease as long as its function's timeout plus the init timeout plus
 *       TARN_FN_EVENT_LEASE_SECONDS (default 60): the claiming node runs it,
 *       then deletes it or hands it back (a retry, a throttle). A node that
 *       died leaves claims another node takes over once their lease ran
 *       out. Times are the database's clock, so nodes' clocks do not matter.
 *   (5) A node's name derives from its host and data directory; at open it
 *       hands back what it had claimed before a restart.
 *   (6) A zip leaves tarn_fn_code only when no record names its hex (a
 *       function's or version's CodeHex, a Layers entry, a layer version)
 *       and it was put more than TARN_FN_CODE_GRACE_SECONDS (default an
 *       hour) ago, by the database's clock: a put
 *       for a create still in flight, even of a zip already there, makes it
 *       young again, so the record that will name it is written first.
 *   (7) Layers' records (l/NAME, l/NAME/%010u, as layers.c keeps them in
 *       LMDB) belong to the pseudo-function FN_PG_LAYERS, one generation
 *       for all layers. A version's number is taken from l/NAME's Next in
 *       the transaction that writes the version (the row's lock orders
 *       publishes), so two nodes publishing at once get two numbers, and a
 *       number is never given twice. A version's policy is replaced only
 *       if the version still has the PolicyRevision it was read with, so
 *       two nodes changing it at once lose no statement, and a version
 *       deleted meanwhile stays deleted.
 *
 * Start reading at fn__pg_open(), then fn__pg_commit() and fn__pg_sync().
 */
#include "fn/internal.h"
#include "fn/registry.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/pg.h"

#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEASE_MARGIN_DEFAULT_S 60
#define CODE_GRACE_DEFAULT_S 3600 /* a zip this young is never swept (6) */
#define NOW_MS FN_PG_NOW_MS

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS tarn_fn_registry ("
    "  key text COLLATE \"C\" PRIMARY KEY,"
    "  fn text COLLATE \"C\" NOT NULL,"
    "  value text NOT NULL);"
    "CREATE INDEX IF NOT EXISTS tarn_fn_registry_fn ON tarn_fn_registry (fn);"
    "CREATE TABLE IF NOT EXISTS tarn_fn_gen ("
    "  name text COLLATE \"C\" PRIMARY KEY,"
    "  gen bigint NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tarn_fn_code ("
    "  hex text PRIMARY KEY,"
    "  zip bytea NOT NULL);"
    "ALTER TABLE tarn_fn_code ADD COLUMN IF NOT EXISTS added_ms bigint NOT NULL DEFAULT 0;"
    "CREATE TABLE IF NOT EXISTS tarn_fn_events ("
    "  seq bigserial PRIMARY KEY,"
    "  fn text NOT NULL,"
    "  qualifier text,"
    "  id text NOT NULL,"
    "  queued_ms bigint NOT NULL,"
    "  attempts int NOT NULL DEFAULT 0,"
    "  due_ms bigint NOT NULL,"
    "  owner text,"
    "  lease_until bigint NOT NULL DEFAULT 0,"
    "  payload bytea NOT NULL);"
    "CREATE INDEX IF NOT EXISTS tarn_fn_events_due ON tarn_fn_events (due_ms, seq);";

static int exec(fn_system *s, const char *sql, int n, const char *const *params,
                PGresult **out, const char *what, err *e)
{
  return pg_pool_exec(s->pg, sql, n, params, NULL, NULL, out, what, e);
}

int fn__pg_open(fn_system *s, err *e)
{
  int rc = pg_pool_schema(s->pg, "tarn_fn", SCHEMA, e);
  if (rc != 0)
    return rc;
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  char *id = xasprintf("fn:%s:%s", host, s->data_dir);
  uint8_t d[SHA256_LEN];
  sha256(id, strlen(id), d);
  free(id);
  hex_encode(d, 16, s->node);
  /* invariant (5) */
  const char *p[] = {s->node};
  return exec(s, "UPDATE tarn_fn_events SET owner = NULL, lease_until = 0 WHERE owner = $1", 1,
              p, NULL, "hand back the queued invocations", e);
}

/* ---- registry records (invariant (1)) ---- */

/* The function a key's record belongs to ("" for none; FN_PG_LAYERS for
 * layers' records), into out. */
static void key_function(const char *key, char out[KEY_MAX])
{
  out[0] = '\0';
  if (key[0] == 'l' && key[1] == '/') {
    snprintf(out, KEY_MAX, "%s", FN_PG_LAYERS);
    return;
  }
  if ((key[0] == 'f' || key[0] == 'v' || key[0] == 'a') && key[1] == '/') {
    snprintf(out, KEY_MAX, "%s", key + 2);
    if (key[0] != 'f') {
      char *slash = strchr(out, '/');
      if (slash != NULL)
        *slash = '\0';
    }
  }
}

/* Moves name's generation on (invariant (1)), in the change's transaction. */
static int gen_bump(PGconn *c, const char *name, err *e)
{
  const char *p[] = {name};
  return pg_exec(c, "INSERT INTO tarn_fn_gen (name, gen) VALUES ($1, 1) ON CONFLICT (name) "
                    "DO UPDATE SET gen = tarn_fn_gen.gen + 1",
                 1, p, NULL, "write the function registry", e);
}

static int txn_commit(PGconn *c, void *arg, err *e)
{
  json_t *ops = arg;
  json_t *names = json_object();
  size_t i;
  json_t *op;
  int rc = 0;
  json_array_foreach(ops, i, op)
  {
    const char *kind = json_string_value(json_array_get(op, 0));
    const char *key = json_string_value(json_array_get(op, 1));
    char name[KEY_MAX];
    key_function(key, name);
    if (name[0])
      json_object_set_new(names, name, json_true());
    if (kind[0] == 'p' || kind[0] == 'n') {
      char *text = json_dumps(json_array_get(op, 2), JSON_COMPACT);
      if (text == NULL)
        mem_out_of_memory();
      const char *p[] = {key, name, text};
      rc = pg_exec(c, kind[0] == 'p'
                          ? "INSERT INTO tarn_fn_registry (key, fn, value) VALUES ($1, $2, $3) "
                            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                          : "INSERT INTO tarn_fn_registry (key, fn, value) VALUES ($1, $2, $3)",
                   3, p, NULL, "write the function registry", e);
      free(text);
    } else if (kind[0] == 'd') {
      const char *p[] = {key};
      rc = pg_exec(c, "DELETE FROM tarn_fn_registry WHERE key = $1", 1, p, NULL,
                   "write the function registry", e);
    } else {
      const char *p[] = {key, name};
      rc = pg_exec(c, "DELETE FROM tarn_fn_registry WHERE fn = $2 AND starts_with(key, $1)", 2,
                   p, NULL, "write the function registry", e);
    }
    if (rc != 0)
      break;
  }
  const char *name;
  json_t *v;
  json_object_foreach(names, name, v)
  {
    if (rc != 0)
      break;
    rc = gen_bump(c, name, e);
  }
  json_decref(names);
  return rc;
}

int fn__pg_commit(fn_system *s, json_t *ops, err *e)
{
  return pg_transaction(s->pg, NULL, txn_commit, ops, e);
}

json_t *fn__pg_get(fn_system *s, const char *key)
{
  const char *p[] = {key};
  PGresult *r = NULL;
  err e = {0};
  if (exec(s, "SELECT value FROM tarn_fn_registry WHERE key = $1", 1, p, &r,
           "read the function registry", &e) != 0)
    return NULL;
  json_t *j = PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
  PQclear(r);
  return j;
}

/* ---- a function's records (invariant (2)) ---- */

int fn__pg_sync(fn_system *s, const char *name, int64_t have, fn_records *out, err *e)
{
  char gen[24];
  snprintf(gen, sizeof gen, "%lld", (long long)have);
  const char *p[] = {name, gen};
  PGresult *r = NULL;
  int rc = exec(s, "SELECT g.gen, r.key, r.value FROM tarn_fn_gen g LEFT JOIN tarn_fn_registry r "
                   "ON r.fn = g.name WHERE g.name = $1 AND g.gen <> $2 ORDER BY r.key",
                2, p, &r, "read the function registry", e);
  if (rc != 0)
    return rc;
  memset(out, 0, sizeof *out);
  int n = PQntuples(r);
  if (n == 0) {
    PQclear(r);
    return 1; /* unchanged, or never created */
  }
  out->gen = pg_col_int(r, 0, 0);
  out->records = json_array();
  for (int i = 0; i < n; i++) {
    if (PQgetisnull(r, i, 1))
      continue;
    json_t *j = json_loads(PQgetvalue(r, i, 2), 0, NULL);
    if (j != NULL)
      json_array_append_new(out->records, json_pack("[s, o]", PQgetvalue(r, i, 1), j));
  }
  PQclear(r);
  return 0;
}

int fn__pg_generations(fn_system *s, json_t **out, err *e)
{
  PGresult *r = NULL;
  int rc = exec(s, "SELECT name, gen FROM tarn_fn_gen", 0, NULL, &r,
                "read the function registry", e);
  if (rc != 0)
    return rc;
  *out = json_object();
  for (int i = 0; i < PQntuples(r); i++)
    json_object_set_new(*out, PQgetvalue(r, i, 0), json_integer(pg_col_int(r, i, 1)));
  PQclear(r);
  return 0;
}

/* ---- code (invariant (3)) ---- */

int fn__pg_code_put(fn_system *s, const char *hex, const void *zip, size_t len, err *e)
{
  const char *p[] = {hex, zip};
  int lengths[] = {0, (int)len};
  int formats[] = {0, 1};
  /* invariant (6): a zip put again (a new function with known code) is
     as young as a new one */
  return pg_pool_exec(s->pg, "INSERT INTO tarn_fn_code (hex, zip, added_ms) VALUES ($1, $2, "
                             NOW_MS ") ON CONFLICT (hex) DO UPDATE SET added_ms = " NOW_MS,
                      2, p, lengths, formats, NULL, "store the function's code", e);
}

int fn__pg_code_get(fn_system *s, const char *hex, buf *out, err *e)
{
  const char *p[] = {hex};
  PGresult *r = NULL;
  int rc = exec(s, "SELECT zip FROM tarn_fn_code WHERE hex = $1", 1, p, &r,
                "read the function's code", e);
  if (rc != 0)
    return rc;
  if (PQntuples(r) != 1) {
    PQclear(r);
    return err_set(e, ERR_NOT_FOUND, "the code '%s' is not in the metadata database", hex);
  }
  size_t n = 0;
  unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 0), &n);
  PQclear(r);
  if (raw == NULL)
    mem_out_of_memory();
  rc = buf_append(out, raw, n) == 0 ? 0
                                    : err_set(e, ERR_INTERNAL, "the code '%s' is too large", hex);
  PQfreemem(raw);
  return rc;
}

void fn__pg_code_sweep(fn_system *s)
{
  char grace[24];
  snprintf(grace, sizeof grace, "%lld",
           pg_lease_ms("TARN_FN_CODE_GRACE_SECONDS", CODE_GRACE_DEFAULT_S));
  const char *p[] = {grace};
  err e = {0};
  /* invariant (6); a failure leaves the zips for the next sweep */
  /* every 64-hex run of every record counts as named: CodeHex wherever it
     sits (a conf, its Layers, a layer version), in one pass over them */
  exec(s, "WITH named AS (SELECT DISTINCT m[1] AS hex FROM tarn_fn_registry r, "
          "regexp_matches(r.value, '([0-9a-f]{64})', 'g') AS m) "
          "DELETE FROM tarn_fn_code c WHERE c.added_ms < " NOW_MS " - $1::bigint AND NOT EXISTS "
          "(SELECT 1 FROM named n WHERE n.hex = c.hex)",
       1, p, NULL, "sweep the functions' code", &e);
}

/* ---- layers (invariant (7)) ---- */

typedef struct publish_arg {
  const char *name;
  json_t *rec;
  uint32_t number;            /* out */
} publish_arg;

static int txn_publish(PGconn *c, void *arg, err *e)
{
  publish_arg *a = arg;
  char head[KEY_MAX];
  snprintf(head, sizeof head, "l/%s", a->name);
  const char *p[] = {head, FN_PG_LAYERS};
  PGresult *r = NULL;
  int rc = pg_exec(c, "INSERT INTO tarn_fn_registry (key, fn, value) VALUES ($1, $2, "
                      "'{\"Next\":2}') ON CONFLICT (key) DO UPDATE SET value = json_build_object("
                      "'Next', (tarn_fn_registry.value::json->>'Next')::bigint + 1)::text "
                      "RETURNING (value::json->>'Next')::bigint - 1",
                   2, p, &r, "number the layer version", e);
  if (rc != 0)
    return rc;
  a->number = PQntuples(r) == 1 ? (uint32_t)pg_col_int(r, 0, 0) : 0;
  PQclear(r);
  if (a->number == 0)
    return err_set(e, ERR_INTERNAL, "the layer '%s' has no version number", a->name);
  char key[KEY_MAX];
  snprintf(key, sizeof key, "l/%s/%010u", a->name, a->number);
  char *text = json_dumps(a->rec, JSON_COMPACT);
  if (text == NULL)
    mem_out_of_memory();
  const char *pv[] = {key, FN_PG_LAYERS, text};
  rc = pg_exec(c, "INSERT INTO tarn_fn_registry (key, fn, value) VALUES ($1, $2, $3)", 3, pv,
               NULL, "write the layer version", e);
  free(text);
  return rc == 0 ? gen_bump(c, FN_PG_LAYERS, e) : rc;
}

int fn__pg_layer_publish(fn_system *s, const char *name, json_t *rec, uint32_t *number, err *e)
{
  publish_arg a = {.name = name, .rec = rec};
  int rc = pg_transaction(s->pg, NULL, txn_publish, &a, e);
  *number = a.number;
  return rc;
}

typedef struct replace_arg {
  const char *key;
  const char *text;
  const char *revision;       /* the PolicyRevision it must still have, or NULL for none */
} replace_arg;

static int txn_replace(PGconn *c, void *arg, err *e)
{
  replace_arg *a = arg;
  const char *p[] = {a->key, a->text, a->revision};
  PGresult *r = NULL;
  int rc = pg_exec(c, "UPDATE tarn_fn_registry SET value = $2 WHERE key = $1 AND "
                      "(value::json->>'PolicyRevision') IS NOT DISTINCT FROM $3",
                   3, p, &r, "write the layer version", e);
  if (rc != 0)
    return rc;
  bool done = atoi(PQcmdTuples(r)) == 1;
  PQclear(r);
  if (!done)
    return 1; /* rolled back: changed or deleted meanwhile */
  return gen_bump(c, FN_PG_LAYERS, e);
}

int fn__pg_layer_replace(fn_system *s, const char *key, json_t *rec, const char *revision,
                         err *e)
{
  char *text = json_dumps(rec, JSON_COMPACT);
  if (text == NULL)
    mem_out_of_memory();
  replace_arg a = {.key = key, .text = text, .revision = revision};
  int rc = pg_transaction(s->pg, NULL, txn_replace, &a, e);
  free(text);
  return rc;
}

/* ---- queued Events (invariant (4)) ---- */

static long long lease_margin_ms(void)
{
  const char *v = getenv("TARN_FN_EVENT_LEASE_SECONDS");
  long long sec = v != NULL ? strtoll(v, NULL, 10) : 0;
  if (sec <= 0 || sec > 86400)
    sec = LEASE_MARGIN_DEFAULT_S;
  return sec * 1000;
}

int fn__pg_event_add(fn_system *s, const char *name, const char *qualifier, const char *id,
                     const void *payload, size_t len, err *e)
{
  char now[24];
  snprintf(now, sizeof now, "%lld", (long long)time_now_ms());
  const char *p[] = {name, qualifier, id, now, len ? payload : ""};
  int lengths[] = {0, 0, 0, 0, (int)len};
  int formats[] = {0, 0, 0, 0, 1};
  return pg_pool_exec(s->pg, "INSERT INTO tarn_fn_events (fn, qualifier, id, queued_ms, due_ms, "
                             "payload) VALUES ($1, $2, $3, $4, " NOW_MS ", $5)",
                      5, p, lengths, formats, NULL, "queue the invocation", e);
}

int fn__pg_event_claim(fn_system *s, fn_event *out, err *e)
{
  char margin[24];
  snprintf(margin, sizeof margin, "%lld", lease_margin_ms() + FN_INIT_TIMEOUT_MS);
  const char *p[] = {s->node, margin};
  PGresult *r = NULL;
  int rc = exec(s,
                "UPDATE tarn_fn_events e SET owner = $1, lease_until = " NOW_MS " + $2::bigint + "
                "1000 * COALESCE((SELECT max((g.value::json->>'Timeout')::bigint) FROM "
                "tarn_fn_registry g WHERE g.fn = e.fn), 900) "
                "WHERE seq = (SELECT seq FROM tarn_fn_events WHERE due_ms <= " NOW_MS
                " AND (owner IS NULL OR lease_until < " NOW_MS ") ORDER BY due_ms, seq LIMIT 1 "
                "FOR UPDATE SKIP LOCKED) "
                "RETURNING seq, fn, qualifier, id, queued_ms, attempts, payload",
                2, p, &r, "claim a queued invocation", e);
  if (rc != 0)
    return rc;
  if (PQntuples(r) != 1) {
    PQclear(r);
    return 1;
  }
  out->seq = pg_col_int(r, 0, 0);
  out->name = xstrdup(PQgetvalue(r, 0, 1));
  out->qualifier = PQgetisnull(r, 0, 2) ? NULL : xstrdup(PQgetvalue(r, 0, 2));
  out->id = xstrdup(PQgetvalue(r, 0, 3));
  out->queued_ms = pg_col_int(r, 0, 4);
  out->attempts = (int)pg_col_int(r, 0, 5);
  size_t n = 0;
  unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 6), &n);
  PQclear(r);
  if (raw == NULL)
    mem_out_of_memory();
  buf_append(&out->payload, raw, n);
  PQfreemem(raw);
  return 0;
}

void fn__pg_event_release(fn_system *s, int64_t seq, int attempts, int64_t delay_ms)
{
  char sq[24];
  char at[24];
  char dl[24];
  snprintf(sq, sizeof sq, "%lld", (long long)seq);
  snprintf(at, sizeof at, "%d", attempts);
  snprintf(dl, sizeof dl, "%lld", (long long)delay_ms);
  const char *p[] = {sq, s->node, at, dl};
  err e = {0};
  /* a failure leaves the claim: another node runs it after the lease */
  exec(s, "UPDATE tarn_fn_events SET owner = NULL, lease_until = 0, attempts = $3, "
          "due_ms = " NOW_MS " + $4::bigint WHERE seq = $1 AND owner = $2",
       4, p, NULL, "hand back a queued invocation", &e);
}

void fn__pg_event_done(fn_system *s, int64_t seq)
{
  char sq[24];
  snprintf(sq, sizeof sq, "%lld", (long long)seq);
  const char *p[] = {sq, s->node};
  err e = {0};
  /* a failure leaves it claimed: it runs again after the lease (at least once) */
  exec(s, "DELETE FROM tarn_fn_events WHERE seq = $1 AND owner = $2", 2, p, NULL,
       "finish a queued invocation", &e);
}
