/* flow/store.c -- the flow part's state in LMDB: opening DATA/flow/meta,
 * the change list every write commits through the shared group committer,
 * and the records read by the API (machines, executions, history).
 *
 * Why JSON records: the shapes stored are the API's (DescribeStateMachine,
 * DescribeExecution, history events), so a read is a lookup, and members
 * whose names start with "_" are internal (stripped before they leave).
 *
 * Invariants:
 *   (1) Every write is a change list applied in one nested transaction of
 *       a group commit: a step's run record, its history events and its
 *       execution record land together or not at all.
 *   (2) History keys are ARN \0 big-endian id, so one execution's events
 *       are one ordered range.
 *
 * Start reading at flow_system_open().
 */
#include "flow/internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/time.h>

#define MAP_SIZE ((size_t)8 << 30)

double flow__now_epoch(void)
{
  return (double)time_now_ms() / 1000.0;
}

/* ---- changes ---- */

void flow__change_put(fchange *c, MDB_dbi dbi, const void *key, size_t klen, json_t *val)
{
  char *v = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
  lmdb_ops_put_owned(c, dbi, key, klen, v, strlen(v));
}

void flow__change_del(fchange *c, MDB_dbi dbi, const void *key, size_t klen)
{
  lmdb_ops_del(c, dbi, key, klen);
}

void flow__change_release(fchange *c)
{
  lmdb_ops_release(c);
}

int flow__commit(flow_system *s, fchange *c, err *e)
{
  c->what = "write the workflow state";
  return lmdb_ops_commit(&s->committer, c, e);
}

int flow__get(flow_system *s, MDB_dbi dbi, const char *key, json_t **out, err *e)
{
  *out = NULL;
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_val k = {strlen(key), (void *)key}, v;
  int mrc = mdb_get(txn, dbi, &k, &v);
  if (mrc == 0) {
    *out = json_loadb(v.mv_data, v.mv_size, JSON_DECODE_ANY, NULL);
    rc = *out != NULL ? 0 : err_set(e, ERR_IO, "a workflow record is not JSON");
  } else {
    rc = mrc == MDB_NOTFOUND ? ERR_NOT_FOUND : lmdb_error(e, mrc, "read the workflow state");
  }
  mdb_txn_abort(txn);
  return rc;
}

void flow__slot_key(const char *run_id, char kind, size_t slot, char *out, size_t cap)
{
  snprintf(out, cap, "%s!%c/%08zu", run_id, kind, slot);
}

int flow__scan(flow_system *s, MDB_dbi dbi, const char *prefix, json_t **keys, json_t **vals,
               err *e)
{
  *keys = json_array();
  *vals = json_array();
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, dbi, &cur);
  size_t pl = strlen(prefix);
  MDB_val k = {pl, (void *)prefix}, v;
  for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0)
      break;
    json_t *val = json_loadb(v.mv_data, v.mv_size, JSON_DECODE_ANY, NULL);
    json_array_append_new(*keys, json_stringn(k.mv_data, k.mv_size));
    json_array_append_new(*vals, val != NULL ? val : json_null());
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return 0;
}

size_t flow__hist_key(const char *arn, uint64_t id, char *out, size_t cap)
{
  size_t n = strlen(arn);
  if (n + 9 > cap)
    n = cap - 9;
  memcpy(out, arn, n);
  out[n] = '\0';
  for (int i = 0; i < 8; i++)
    out[n + 1 + i] = (char)(id >> (56 - 8 * i));
  return n + 9;
}

json_t *flow__public_copy(json_t *rec)
{
  json_t *o = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(rec, k, v) {
    if (k[0] != '_')
      json_object_set(o, k, v);
  }
  return o;
}

/* ---- the system ---- */

int flow_system_open(const flow_options *o, flow_system **out, err *e)
{
  *out = NULL;
  flow_system *s = xcalloc(1, sizeof *s);
  s->fn = o->fn;
  s->q = o->q;
  s->st = o->st;
  s->athena = o->athena;
  s->kv = o->kv;
  s->streams = o->streams;
  s->authorize = o->authorize;
  s->authorize_ctx = o->authorize_ctx;
  s->nworkers = o->workers ? o->workers : 4;
  s->tokens = json_object();
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->vmu, NULL);
  pthread_mutex_init(&s->qmu, NULL);
  pthread_cond_init(&s->qcond, NULL);
  pthread_cond_init(&s->tcond, NULL);
  char path[4096];
  int rc;
  snprintf(path, sizeof path, "%s/flow", o->data_dir);
  s->dir = xstrdup(path);
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    rc = err_set(e, err_from_errno(errno), "cannot create directory '%s': %s", path,
                 strerror(errno));
    flow_system_close(s);
    return rc;
  }
  snprintf(path, sizeof path, "%s/flow/meta", o->data_dir);
  lmdb_env_options eo = {.map_size = MAP_SIZE, .max_dbs = 16};
  rc = lmdb_env_open(&s->env, path, &eo, "the workflow database", e);
  if (rc != 0) {
    flow_system_close(s);
    return rc;
  }
  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
  const char *names[] = {"machines", "execs", "history", "runs", "mapdata", "versions",
                         "aliases", "activities"};
  MDB_dbi *dbis[] = {&s->db_machines, &s->db_execs, &s->db_hist, &s->db_runs, &s->db_mapdata,
                     &s->db_versions, &s->db_aliases, &s->db_activities};
  for (size_t i = 0; i < sizeof names / sizeof names[0] && mrc == 0; i++)
    mrc = mdb_dbi_open(txn, names[i], MDB_CREATE, dbis[i]);
  if (mrc == 0)
    mrc = mdb_txn_commit(txn);
  else if (txn != NULL)
    mdb_txn_abort(txn);
  if (mrc != 0) {
    lmdb_error(e, mrc, "open the workflow database");
    flow_system_close(s);
    return e->code;
  }
  if (flow__acts_open(s) != 0) {
    err_set(e, ERR_INTERNAL, "cannot start the activity dispatcher");
    flow_system_close(s);
    return e->code;
  }
  lmdb_committer_hooks hooks = {.ctx = s};
  if ((rc = lmdb_committer_start(&s->committer, s->env, &hooks, "the workflow service", e)) != 0) {
    flow_system_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

int flow_system_start(flow_system *s, err *e)
{
  return flow__engine_resume(s, e);
}

void flow_system_stop(flow_system *s)
{
  if (s != NULL) {
    flow__engine_stop(s);
    flow__acts_stop(s);
  }
}

flow_system *flow_system_close(flow_system *s)
{
  if (s == NULL)
    return NULL;
  flow__engine_stop(s);
  flow__acts_close(s);
  lmdb_committer_stop(&s->committer);
  flow__queues_drain(s); /* what arrived after the stop */
  while (s->execs != NULL) {
    exec_rt *x = s->execs;
    s->execs = x->next;
    flow__exec_free(x);
  }
  if (s->env != NULL)
    mdb_env_close(s->env);
  json_decref(s->tokens);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->vmu);
  pthread_mutex_destroy(&s->qmu);
  pthread_cond_destroy(&s->qcond);
  pthread_cond_destroy(&s->tcond);
  free(s->workers);
  free(s->dir);
  free(s);
  return NULL;
}

/* ---- state machines ---- */

static bool name_ok(const char *n)
{
  size_t len = n != NULL ? strlen(n) : 0;
  if (len < 1 || len > FLOW_MAX_NAME)
    return false;
  for (const char *c = n; *c; c++)
    if (strchr(" <>{}[]?*\"#%\\^|~`$&,;:/", *c) != NULL || (unsigned char)*c < 0x20)
      return false;
  return true;
}

bool flow__name_ok(const char *n);
bool flow__name_ok(const char *n)
{
  return name_ok(n);
}

static int machine_of(flow_system *s, const char *arn, json_t **out, err *e)
{
  if (arn == NULL || !str_starts(arn, "arn:aws:states:") || strlen(arn) > FLOW_MAX_ARN)
    return err_set(e, FLOW_ERR_ARN, "Invalid Arn: 'Resource type not valid in this context: "
                   "%.300s'", arn ? arn : "");
  int rc = flow__get(s, s->db_machines, arn, out, e);
  if (rc == ERR_NOT_FOUND)
    return err_set(e, FLOW_ERR_NO_MACHINE, "State Machine Does Not Exist: '%s'", arn);
  return rc;
}

static void revision(char out[37])
{
  uuid_v4(out);
}

int flow_machine_create(flow_system *s, const flow_machine_params *p, json_t **out, err *e)
{
  *out = NULL;
  if (!name_ok(p->name))
    return err_set(e, FLOW_ERR_NAME, "Invalid Name: '%s'", p->name ? p->name : "");
  const char *type = p->type ? p->type : "STANDARD";
  if (strcmp(type, "STANDARD") != 0 && strcmp(type, "EXPRESS") != 0)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'type' failed "
                   "to satisfy constraint: Member must satisfy enum value set: [STANDARD, "
                   "EXPRESS]", type);
  if (p->definition == NULL)
    return err_set(e, FLOW_ERR_DEFINITION, "Invalid State Machine Definition: the definition "
                   "is missing");
  if (p->role_arn == NULL || !str_starts(p->role_arn, "arn:"))
    return err_set(e, FLOW_ERR_ARN, "Invalid Arn: 'Resource type not valid in this context: "
                   "%s'", p->role_arn ? p->role_arn : "");
  int rc = flow_definition_check(p->definition, strlen(p->definition), NULL, e);
  if (rc != 0)
    return rc;
  char *arn = xasprintf("arn:aws:states:%s:%s:stateMachine:%s", FLOW_REGION, FLOW_ACCOUNT_ID,
               p->name);
  json_t *old = NULL;
  rc = flow__get(s, s->db_machines, arn, &old, e);
  if (rc == 0) {
    /* AWS: the same name with the same definition and role is idempotent */
    bool same = strcmp(json_string_value(json_object_get(old, "definition")), p->definition) == 0 &&
                strcmp(json_string_value(json_object_get(old, "roleArn")), p->role_arn) == 0 &&
                strcmp(json_string_value(json_object_get(old, "type")), type) == 0;
    free(arn);
    if (same) {
      *out = old;
      return 0;
    }
    json_decref(old);
    return err_set(e, FLOW_ERR_MACHINE_EXISTS, "State Machine Already Exists: '%s'",
                   p->name);
  }
  if (rc != ERR_NOT_FOUND) {
    free(arn);
    return rc;
  }
  char rev[37];
  revision(rev);
  json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:{s:s, s:b}, s:{s:b}}",
                          "stateMachineArn", arn, "name", p->name, "status", "ACTIVE",
                          "definition", p->definition, "roleArn", p->role_arn, "type", type,
                          "creationDate", flow__now_epoch(), "revisionId", rev,
                          "loggingConfiguration", "level", "OFF", "includeExecutionData", 0,
                          "tracingConfiguration", "enabled", 0);
  json_object_set_new(rec, "_tags", json_is_array(p->tags) ? json_incref(p->tags) : json_array());
  fchange c = {0};
  flow__change_put(&c, s->db_machines, arn, strlen(arn), rec);
  rc = flow__commit(s, &c, e);
  free(arn);
  if (rc != 0) {
    json_decref(rec);
    return rc;
  }
  *out = rec;
  return 0;
}

int flow_machine_get(flow_system *s, const char *arn, json_t **out, err *e)
{
  if (flow_arn_qualified(arn))
    return flow__version_get(s, arn, out, e);
  json_t *rec;
  int rc = machine_of(s, arn, &rec, e);
  if (rc != 0) {
    *out = NULL;
    return rc;
  }
  *out = flow__public_copy(rec);
  json_decref(rec);
  return 0;
}

int flow_machine_update(flow_system *s, const char *arn, const char *definition,
                        const char *role_arn, json_t **out, err *e)
{
  *out = NULL;
  if (definition == NULL && role_arn == NULL)
    return err_set(e, ERR_INVALID, "Either the definition or the roleArn must be specified");
  json_t *rec;
  int rc = machine_of(s, arn, &rec, e);
  if (rc != 0)
    return rc;
  if (definition != NULL &&
      (rc = flow_definition_check(definition, strlen(definition), NULL, e)) != 0) {
    json_decref(rec);
    return rc;
  }
  if (definition != NULL)
    json_object_set_new(rec, "definition", json_string(definition));
  if (role_arn != NULL)
    json_object_set_new(rec, "roleArn", json_string(role_arn));
  char rev[37];
  revision(rev);
  double now = flow__now_epoch();
  json_object_set_new(rec, "revisionId", json_string(rev));
  json_object_set_new(rec, "updateDate", json_real(now));
  fchange c = {0};
  flow__change_put(&c, s->db_machines, arn, strlen(arn), rec);
  rc = flow__commit(s, &c, e);
  json_decref(rec);
  if (rc == 0)
    *out = json_pack("{s:f, s:s}", "updateDate", now, "revisionId", rev);
  return rc;
}

int flow_machine_delete(flow_system *s, const char *arn, err *e)
{
  json_t *rec;
  int rc = machine_of(s, arn, &rec, e);
  if (rc == FLOW_ERR_NO_MACHINE)
    return 0; /* AWS: deleting what is gone succeeds */
  if (rc != 0)
    return rc;
  json_decref(rec);
  fchange c = {0};
  flow__change_del(&c, s->db_machines, arn, strlen(arn));
  flow__versions_drop(s, arn, &c);
  return flow__commit(s, &c, e);
}

int flow_machine_list(flow_system *s, const char *after, size_t max, json_t **items,
                      const char **next, err *e)
{
  *items = json_array();
  *next = NULL;
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, s->db_machines, &cur);
  MDB_val k = {0, NULL}, v;
  int op = MDB_FIRST;
  if (after != NULL && *after) {
    k.mv_data = (void *)after;
    k.mv_size = strlen(after);
    op = MDB_SET_RANGE;
  }
  for (int mrc = mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (after != NULL && k.mv_size == strlen(after) && memcmp(k.mv_data, after, k.mv_size) == 0)
      continue;
    if (json_array_size(*items) == max) {
      static _Thread_local char token[1024];
      size_t n = k.mv_size < sizeof token - 1 ? k.mv_size : sizeof token - 1;
      /* the token is the last returned key */
      json_t *last = json_array_get(*items, max - 1);
      snprintf(token, sizeof token, "%s",
               json_string_value(json_object_get(last, "stateMachineArn")));
      (void)n;
      *next = token;
      break;
    }
    json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (rec == NULL)
      continue;
    json_array_append_new(*items, json_pack("{s:O, s:O, s:O, s:O}", "stateMachineArn",
                                            json_object_get(rec, "stateMachineArn"), "name",
                                            json_object_get(rec, "name"), "type",
                                            json_object_get(rec, "type"), "creationDate",
                                            json_object_get(rec, "creationDate")));
    json_decref(rec);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return 0;
}

int flow_machine_tag(flow_system *s, const char *arn, json_t *tags, json_t *remove_keys,
                     json_t **out, err *e)
{
  *out = NULL;
  json_t *rec;
  /* activities have tags too */
  MDB_dbi dbi = flow__activity_arn(arn) ? s->db_activities : s->db_machines;
  int rc = flow__activity_arn(arn) ? flow_activity_get(s, arn, &rec, e)
                                   : machine_of(s, arn, &rec, e);
  if (rc != 0)
    return rc;
  json_t *cur = json_object_get(rec, "_tags");
  if (!json_is_array(cur)) {
    cur = json_array();
    json_object_set_new(rec, "_tags", cur);
  }
  if (tags == NULL && remove_keys == NULL) {
    *out = json_incref(cur);
    json_decref(rec);
    return 0;
  }
  size_t i;
  json_t *t;
  json_array_foreach(tags, i, t) {
    const char *key = json_string_value(json_object_get(t, "key"));
    if (key == NULL) {
      json_decref(rec);
      return err_set(e, ERR_INVALID, "a tag has no key");
    }
    for (size_t j = 0; j < json_array_size(cur); j++)
      if (strcmp(json_string_value(json_object_get(json_array_get(cur, j), "key")), key) == 0)
        json_array_remove(cur, j--);
    json_array_append(cur, t);
  }
  json_array_foreach(remove_keys, i, t) {
    for (size_t j = 0; j < json_array_size(cur); j++)
      if (json_equal(json_object_get(json_array_get(cur, j), "key"), t))
        json_array_remove(cur, j--);
  }
  if (json_array_size(cur) > 50) {
    json_decref(rec);
    return err_set(e, ERR_LIMIT_EXCEEDED, "too many tags: at most 50");
  }
  fchange c = {0};
  flow__change_put(&c, dbi, arn, strlen(arn), rec);
  rc = flow__commit(s, &c, e);
  json_decref(rec);
  return rc;
}

/* ---- executions ---- */

static int exec_arn_check(const char *arn, err *e)
{
  if (arn == NULL || !str_starts(arn, "arn:aws:states:") || strstr(arn, ":execution:") == NULL ||
      strlen(arn) > FLOW_MAX_ARN)
    return err_set(e, FLOW_ERR_ARN, "Invalid Arn: 'Resource type not valid in this context: "
                   "%s'", arn ? arn : "");
  return 0;
}

int flow_execution_get(flow_system *s, const char *arn, json_t **out, err *e)
{
  *out = NULL;
  int rc = exec_arn_check(arn, e);
  if (rc != 0)
    return rc;
  json_t *rec;
  rc = flow__get(s, s->db_execs, arn, &rec, e);
  if (rc == ERR_NOT_FOUND)
    return err_set(e, FLOW_ERR_NO_EXECUTION, "Execution Does Not Exist: '%s'", arn);
  if (rc != 0)
    return rc;
  *out = flow__public_copy(rec);
  json_decref(rec);
  return 0;
}

static int cmp_start_desc(const void *a, const void *b)
{
  double x = json_number_value(json_object_get(*(json_t *const *)a, "startDate"));
  double y = json_number_value(json_object_get(*(json_t *const *)b, "startDate"));
  return x < y ? 1 : x > y ? -1 : 0;
}

int flow_execution_list(flow_system *s, const char *machine_arn, const char *status,
                        const char *after, size_t max, json_t **items, const char **next,
                        err *e)
{
  *items = json_array();
  *next = NULL;
  json_t *m;
  /* a version or alias ARN: the executions it started */
  const char *qual_key = NULL;
  char base[512];
  if (flow_arn_qualified(machine_arn)) {
    const char *q = strrchr(machine_arn, ':') + 1;
    qual_key = strspn(q, "0123456789") == strlen(q) ? "stateMachineVersionArn"
                                                    : "stateMachineAliasArn";
    snprintf(base, sizeof base, "%.*s", (int)(q - 1 - machine_arn), machine_arn);
  }
  int rc = machine_of(s, qual_key != NULL ? base : machine_arn, &m, e);
  if (rc != 0)
    return rc;
  const char *name = json_string_value(json_object_get(m, "name"));
  char prefix[512];
  snprintf(prefix, sizeof prefix, "arn:aws:states:%s:%s:execution:%s:", FLOW_REGION,
           FLOW_ACCOUNT_ID, name);
  json_decref(m);
  MDB_txn *txn;
  if ((rc = lmdb_read_begin(s->env, &txn, e)) != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, s->db_execs, &cur);
  MDB_val k = {strlen(prefix), prefix}, v;
  size_t cap = 0, n = 0;
  json_t **all = NULL;
  for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size < strlen(prefix) || memcmp(k.mv_data, prefix, strlen(prefix)) != 0)
      break;
    json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (rec == NULL)
      continue;
    const char *qual = qual_key != NULL ? json_string_value(json_object_get(rec, qual_key)) : NULL;
    if ((status != NULL && strcmp(json_string_value(json_object_get(rec, "status")), status) != 0) ||
        (qual_key != NULL && (qual == NULL || strcmp(qual, machine_arn) != 0))) {
      json_decref(rec);
      continue;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      all = xrealloc(all, cap * sizeof *all);
    }
    all[n++] = rec;
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (n > 1)
    qsort(all, n, sizeof *all, cmp_start_desc);
  bool skipping = after != NULL && *after;
  for (size_t i = 0; i < n; i++) {
    const char *arn = json_string_value(json_object_get(all[i], "executionArn"));
    if (skipping) {
      if (strcmp(arn, after) == 0)
        skipping = false;
    } else if (json_array_size(*items) < max) {
      json_t *o = json_pack("{s:O, s:O, s:O, s:O, s:O}", "executionArn",
                            json_object_get(all[i], "executionArn"), "stateMachineArn",
                            json_object_get(all[i], "stateMachineArn"), "name",
                            json_object_get(all[i], "name"), "status",
                            json_object_get(all[i], "status"), "startDate",
                            json_object_get(all[i], "startDate"));
      static const char *const extra[] = {"stopDate", "stateMachineVersionArn",
                                          "stateMachineAliasArn"};
      for (size_t x = 0; x < sizeof extra / sizeof extra[0]; x++)
        if (json_object_get(all[i], extra[x]))
          json_object_set(o, extra[x], json_object_get(all[i], extra[x]));
      json_array_append_new(*items, o);
      if (json_array_size(*items) == max && i + 1 < n) {
        static _Thread_local char token[1024];
        snprintf(token, sizeof token, "%s", arn);
        *next = token;
      }
    }
    json_decref(all[i]);
  }
  free(all);
  return 0;
}

int flow_execution_history(flow_system *s, const char *arn, bool reverse, const char *after,
                           size_t max, json_t **events, const char **next, err *e)
{
  *events = json_array();
  *next = NULL;
  json_t *x;
  int rc = flow_execution_get(s, arn, &x, e);
  if (rc != 0)
    return rc;
  json_decref(x);
  uint64_t from = after != NULL && *after ? strtoull(after, NULL, 10) : 0;
  MDB_txn *txn;
  if ((rc = lmdb_read_begin(s->env, &txn, e)) != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, s->db_hist, &cur);
  char key[1200];
  size_t klen = flow__hist_key(arn, 0, key, sizeof key);
  size_t plen = klen - 8;
  json_t *all = json_array();
  MDB_val k = {klen, key}, v;
  for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != klen || memcmp(k.mv_data, key, plen) != 0)
      break;
    json_t *ev = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (ev != NULL)
      json_array_append_new(all, ev);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  size_t n = json_array_size(all);
  for (size_t i = 0; i < n; i++) {
    json_t *ev = json_array_get(all, reverse ? n - 1 - i : i);
    uint64_t id = (uint64_t)json_integer_value(json_object_get(ev, "id"));
    if (from != 0 && (reverse ? id >= from : id <= from))
      continue;
    if (json_array_size(*events) == max) {
      static _Thread_local char token[32];
      json_t *last = json_array_get(*events, max - 1);
      snprintf(token, sizeof token, "%lld",
               (long long)json_integer_value(json_object_get(last, "id")));
      *next = token;
      break;
    }
    json_array_append(*events, ev);
  }
  json_decref(all);
  return 0;
}
