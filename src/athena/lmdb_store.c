/* athena/lmdb_store.c -- the athena part's records in DATA/athena/meta, an
 * LMDB environment of one node (the default side; pg_store.c is the shared
 * one).
 *
 * Databases:
 *   executions    id -> QueryExecution JSON ("_" members internal)
 *   by_workgroup  WORKGROUP \0 ~seq (8 bytes, big-endian) -> id, so that a
 *                 group's executions list newest first
 *   tokens        ClientRequestToken -> {"Id", "Hash"}
 *   workgroups    name -> WorkGroup JSON
 *
 * Invariants:
 *   (1) Every write is one change of the group committer (durable when it
 *       returns); StartQueryExecution's token check runs on the committer
 *       thread, inside the change that takes the token.
 *   (2) RUNNING is never written (athena.c (3)): after a crash an
 *       execution is final or QUEUED, and opening fails the QUEUED ones,
 *       one write transaction before the committer starts.
 *   (3) Work group read-modify-writes run under athena.wg_mu: this node is
 *       the only writer.
 */
#include "athena/internal.h"

#include "base/hash.h"
#include "base/lmdb_env.h"
#include "base/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAP_SIZE ((size_t)4 << 30)

typedef struct lstore {
  MDB_env *env;
  MDB_dbi db_execs;
  MDB_dbi db_bywg;
  MDB_dbi db_tokens;
  MDB_dbi db_wgs;
  lmdb_committer committer;
  bool committing;          /* the committer was started */
  uint64_t seq;             /* last execution sequence (committer thread) */
} lstore;

static lstore *L(athena *a)
{
  return a->impl;
}

static MDB_dbi dbi_of(lstore *s, int space)
{
  return space == AS_WGS ? s->db_wgs : s->db_execs;
}

/* ---- writes ---- */

typedef struct lput {
  MDB_dbi dbi;
  const char *key;
  char *text;              /* NULL: delete the key */
} lput;

typedef struct wchange {
  lmdb_change base;
  lput *puts;
  size_t n;
} wchange;

static int apply_puts(void *ctx, lmdb_change *base, MDB_txn *txn, arena *ar, err *e)
{
  wchange *c = (wchange *)base;
  for (size_t i = 0; i < c->n; i++) {
    MDB_val k = {strlen(c->puts[i].key), (void *)c->puts[i].key};
    int mrc;
    if (c->puts[i].text != NULL) {
      MDB_val v = {strlen(c->puts[i].text), c->puts[i].text};
      mrc = mdb_put(txn, c->puts[i].dbi, &k, &v, 0);
    } else {
      mrc = mdb_del(txn, c->puts[i].dbi, &k, NULL);
      if (mrc == MDB_NOTFOUND)
        mrc = 0;
    }
    if (mrc != 0)
      return lmdb_error(e, mrc, "write the query history");
  }
  return 0;
}

/* Writes one record (val NULL: deletes it) through the committer. */
static int put1(athena *a, MDB_dbi dbi, const char *key, json_t *val, err *e)
{
  lput p = {.dbi = dbi, .key = key, .text = val != NULL ? json_dumps(val, JSON_COMPACT) : NULL};
  wchange c = {.puts = &p, .n = 1};
  c.base.apply = apply_puts;
  int rc = lmdb_committer_run(&L(a)->committer, &c.base, e);
  free(p.text);
  return rc;
}

static int l_get(athena *a, int space, const char *key, json_t **out, err *e)
{
  *out = NULL;
  MDB_txn *txn;
  int rc = lmdb_read_begin(L(a)->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_val k = {strlen(key), (void *)key}, v;
  int mrc = mdb_get(txn, dbi_of(L(a), space), &k, &v);
  if (mrc == 0) {
    *out = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    rc = *out != NULL ? 0 : err_set(e, ERR_IO, "a query history record is not JSON");
  } else {
    rc = mrc == MDB_NOTFOUND ? err_set(e, ERR_NOT_FOUND, "no record '%s'", key)
                             : lmdb_error(e, mrc, "read the query history");
  }
  mdb_txn_abort(txn);
  return rc;
}

static size_t wg_key(const char *wg, uint64_t seq, char *out, size_t cap)
{
  size_t n = strlen(wg);
  if (n + 9 > cap)
    n = cap - 9;
  memcpy(out, wg, n);
  out[n] = '\0';
  uint64_t inv = UINT64_MAX - seq; /* newest first */
  for (int i = 0; i < 8; i++)
    out[n + 1 + i] = (char)(inv >> (56 - 8 * i));
  return n + 9;
}

/* ---- tokens and starting ---- */

/* A token's record ({"Id", "Hash"}) against the request's hash: 1 and
 * found filled when they match, else ERR_INVALID. */
static int token_match(const MDB_val *v, const char *hash, char found[37], err *e)
{
  json_t *t = json_loadb(v->mv_data, v->mv_size, 0, NULL);
  const char *id = json_string_value(json_object_get(t, "Id"));
  const char *thash = json_string_value(json_object_get(t, "Hash"));
  int rc = 1;
  if (id == NULL || thash == NULL || strcmp(thash, hash) != 0)
    rc = athena__token_mismatch(e);
  else
    snprintf(found, 37, "%s", id);
  json_decref(t);
  return rc;
}

static int l_token_lookup(athena *a, const char *token, const char *hash, char found[37], err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(L(a)->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_val k = {strlen(token), (void *)token}, v;
  int mrc = mdb_get(txn, L(a)->db_tokens, &k, &v);
  if (mrc == 0)
    rc = token_match(&v, hash, found, e);
  else if (mrc != MDB_NOTFOUND)
    rc = lmdb_error(e, mrc, "read the query tokens");
  mdb_txn_abort(txn);
  return rc;
}

/* The start change: checks the token inside the commit (1). */
typedef struct start_change {
  lmdb_change base;
  lstore *s;
  json_t *rec;
  const char *id;
  const char *wg;
  const char *token;        /* or NULL */
  const char *hash;         /* of the idempotent parameters */
  char *found;              /* an earlier execution of the token */
} start_change;

static int apply_start(void *ctx, lmdb_change *base, MDB_txn *txn, arena *ar, err *e)
{
  start_change *c = (start_change *)base;
  int mrc;
  if (c->token != NULL) {
    MDB_val tk = {strlen(c->token), (void *)c->token}, tv;
    mrc = mdb_get(txn, c->s->db_tokens, &tk, &tv);
    if (mrc == 0) {
      int rc = token_match(&tv, c->hash, c->found, e);
      return rc < 0 ? rc : 0;
    }
    if (mrc != MDB_NOTFOUND)
      return lmdb_error(e, mrc, "read the query tokens");
    json_t *t = json_pack("{s:s, s:s}", "Id", c->id, "Hash", c->hash);
    char *text = json_dumps(t, JSON_COMPACT);
    json_decref(t);
    MDB_val v = {strlen(text), text};
    mrc = mdb_put(txn, c->s->db_tokens, &tk, &v, 0);
    free(text);
    if (mrc != 0)
      return lmdb_error(e, mrc, "write the query tokens");
  }
  uint64_t seq = ++c->s->seq;
  char key[160];
  size_t klen = wg_key(c->wg, seq, key, sizeof key);
  MDB_val k = {klen, key}, v = {strlen(c->id), (void *)c->id};
  if ((mrc = mdb_put(txn, c->s->db_bywg, &k, &v, 0)) != 0)
    return lmdb_error(e, mrc, "write the query history");
  char *text = json_dumps(c->rec, JSON_COMPACT);
  MDB_val ik = {strlen(c->id), (void *)c->id}, iv = {strlen(text), text};
  mrc = mdb_put(txn, c->s->db_execs, &ik, &iv, 0);
  free(text);
  return mrc != 0 ? lmdb_error(e, mrc, "write the query history") : 0;
}

static int l_start(athena *a, json_t *rec, const char *id, const char *wg, const char *token,
                   const char *hash, char found[37], err *e)
{
  found[0] = '\0';
  start_change c = {.s = L(a), .rec = rec, .id = id, .wg = wg, .token = token, .hash = hash,
                    .found = found};
  c.base.apply = apply_start;
  return lmdb_committer_run(&L(a)->committer, &c.base, e);
}

static int l_list(athena *a, const char *wgname, const char *token, json_int_t max,
                  json_t **out, char next[17], err *e)
{
  char key[160];
  size_t plen = wg_key(wgname, 0, key, sizeof key) - 8; /* WORKGROUP \0 */
  size_t klen = plen;
  next[0] = '\0';
  if (token != NULL) {
    if (strlen(token) != 16 || !hex_decode(token, 16, (uint8_t *)key + plen, 8))
      return err_set(e, ERR_INVALID, "the NextToken is not valid");
    klen = plen + 8;
  }
  MDB_txn *txn;
  int rc;
  if ((rc = lmdb_read_begin(L(a)->env, &txn, e)) != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, L(a)->db_bywg, &cur);
  MDB_val k = {klen, key}, v;
  json_t *ids = json_array();
  for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != plen + 8 || memcmp(k.mv_data, key, plen) != 0)
      break;
    if ((json_int_t)json_array_size(ids) == max) {
      hex_encode((const uint8_t *)k.mv_data + plen, 8, next);
      break;
    }
    json_array_append_new(ids, json_stringn(v.mv_data, v.mv_size));
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  *out = ids;
  return 0;
}

static int l_finish(athena *a, const char *id, json_t *rec, err *e)
{
  return put1(a, L(a)->db_execs, id, rec, e);
}

/* ---- work groups (3) ---- */

static int l_wg_create(athena *a, const char *name, json_t *rec, size_t max, err *e)
{
  pthread_mutex_lock(&a->wg_mu);
  json_t *old;
  int rc = l_get(a, AS_WGS, name, &old, e);
  if (rc == 0) {
    json_decref(old);
    rc = err_set(e, ERR_INVALID, "WorkGroup is already created");
  } else if (rc == ERR_NOT_FOUND) {
    err_clear(e);
    MDB_txn *txn;
    if ((rc = lmdb_read_begin(L(a)->env, &txn, e)) == 0) {
      MDB_stat st;
      mdb_stat(txn, L(a)->db_wgs, &st);
      mdb_txn_abort(txn);
      if (st.ms_entries >= max)
        rc = err_set(e, ERR_INVALID, "too many work groups (at most %zu)", max);
    }
    if (rc == 0)
      rc = put1(a, L(a)->db_wgs, name, rec, e);
  }
  pthread_mutex_unlock(&a->wg_mu);
  return rc;
}

static int l_wg_update(athena *a, const char *name, int (*fn)(json_t *wg, void *arg, err *e),
                       void *arg, err *e)
{
  pthread_mutex_lock(&a->wg_mu);
  json_t *wg;
  int rc = l_get(a, AS_WGS, name, &wg, e);
  if (rc == 0)
    rc = fn(wg, arg, e);
  if (rc == 0)
    rc = put1(a, L(a)->db_wgs, name, wg, e);
  json_decref(wg);
  pthread_mutex_unlock(&a->wg_mu);
  return rc;
}

static int l_wg_delete(athena *a, const char *name, err *e)
{
  pthread_mutex_lock(&a->wg_mu);
  json_t *wg;
  int rc = l_get(a, AS_WGS, name, &wg, e);
  if (rc == 0) {
    json_decref(wg);
    rc = put1(a, L(a)->db_wgs, name, NULL, e);
  }
  pthread_mutex_unlock(&a->wg_mu);
  return rc;
}

static int l_wg_list(athena *a, const char *token, json_int_t max, json_t **out, char **next,
                     err *e)
{
  *next = NULL;
  MDB_txn *txn;
  int rc = lmdb_read_begin(L(a)->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, L(a)->db_wgs, &cur);
  MDB_val k = {token ? strlen(token) : 0, (void *)token}, v;
  json_t *list = json_array();
  for (int mrc = mdb_cursor_get(cur, &k, &v, token ? MDB_SET_RANGE : MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if ((json_int_t)json_array_size(list) == max) {
      *next = xstrndup(k.mv_data, k.mv_size);
      break;
    }
    json_t *wg = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (wg != NULL)
      json_array_append_new(list, wg);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  *out = list;
  return 0;
}

/* ---- opening, recovery (2) ---- */

static int recover(lstore *s, err *e)
{
  MDB_txn *txn;
  int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open the query history");
  MDB_cursor *cur;
  mdb_cursor_open(txn, s->db_execs, &cur);
  MDB_val k, v;
  json_t *fix = json_array();
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (rec == NULL)
      continue;
    const char *st = json_string_value(json_object_get(json_object_get(rec, "Status"), "State"));
    if (st != NULL && (strcmp(st, "QUEUED") == 0 || strcmp(st, "RUNNING") == 0))
      json_array_append(fix, rec);
    json_decref(rec);
  }
  mdb_cursor_close(cur);
  /* the highest sequence: the index keys end in its complement */
  mdb_cursor_open(txn, s->db_bywg, &cur);
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size < 9)
      continue;
    uint64_t inv = 0;
    for (int i = 0; i < 8; i++)
      inv = inv << 8 | ((const uint8_t *)k.mv_data)[k.mv_size - 8 + (size_t)i];
    if (UINT64_MAX - inv > s->seq)
      s->seq = UINT64_MAX - inv;
  }
  mdb_cursor_close(cur);
  int64_t now = athena__now_ms();
  size_t i;
  json_t *rec;
  mrc = 0;
  json_array_foreach(fix, i, rec) {
    athena__fail_rec(rec, "the query did not finish: tarn stopped while it was queued or "
                     "running (a crash or a restart); run it again", now);
    const char *id = json_string_value(json_object_get(rec, "QueryExecutionId"));
    char *text = json_dumps(rec, JSON_COMPACT);
    MDB_val rk = {strlen(id), (void *)id}, rv = {strlen(text), text};
    if (mrc == 0)
      mrc = mdb_put(txn, s->db_execs, &rk, &rv, 0);
    free(text);
  }
  json_decref(fix);
  if (mrc == 0)
    mrc = mdb_txn_commit(txn);
  else
    mdb_txn_abort(txn);
  return mrc != 0 ? lmdb_error(e, mrc, "recover the query history") : 0;
}

static void l_close(athena *a)
{
  lstore *s = L(a);
  if (s == NULL)
    return;
  if (s->committing)
    lmdb_committer_stop(&s->committer);
  if (s->env != NULL)
    mdb_env_close(s->env);
  free(s);
  a->impl = NULL;
}

static const athena_side lmdb_side = {
    .get = l_get, .start = l_start, .token_lookup = l_token_lookup, .list = l_list,
    .finish = l_finish, .wg_create = l_wg_create, .wg_update = l_wg_update,
    .wg_delete = l_wg_delete, .wg_list = l_wg_list, .close = l_close, .shared = false};

int athena__lmdb_open(athena *a, const char *data_dir, err *e)
{
  lstore *s = xcalloc(1, sizeof *s);
  a->side = &lmdb_side;
  a->impl = s;
  char path[4096];
  snprintf(path, sizeof path, "%s/athena", data_dir);
  if (mkdir(path, 0700) != 0 && errno != EEXIST)
    return err_set(e, err_from_errno(errno), "cannot create directory '%s': %s", path,
                   strerror(errno));
  snprintf(path, sizeof path, "%s/athena/meta", data_dir);
  lmdb_env_options eo = {.map_size = MAP_SIZE, .max_dbs = 8};
  int rc;
  if ((rc = lmdb_env_open(&s->env, path, &eo, "the query history", e)) != 0)
    return rc;
  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
  const char *names[] = {"executions", "by_workgroup", "tokens", "workgroups"};
  MDB_dbi *dbis[] = {&s->db_execs, &s->db_bywg, &s->db_tokens, &s->db_wgs};
  for (size_t i = 0; i < 4 && mrc == 0; i++)
    mrc = mdb_dbi_open(txn, names[i], MDB_CREATE, dbis[i]);
  if (mrc == 0)
    mrc = mdb_txn_commit(txn);
  else if (txn != NULL)
    mdb_txn_abort(txn);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open the query history");
  if ((rc = recover(s, e)) != 0)
    return rc;
  lmdb_committer_hooks hooks = {.ctx = a};
  if ((rc = lmdb_committer_start(&s->committer, s->env, &hooks, "the query history", e)) != 0)
    return rc;
  s->committing = true;
  return 0;
}
