/* batch/job.c -- the batch part's state and the job calls of the S3 Control
 * API: opening DATA/batch/meta, creating jobs (idempotent by client request
 * token), describing, listing, priority, status and tags.
 *
 * Why a part of its own beside flow: a Batch Operations job is a flat list
 * of up to BATCH_MAX_TASKS independent tasks with counts, not a state
 * machine with a history (flow's executions stop at 25,000 events). What
 * the two share is the durable step discipline: every change is a change
 * list of base/lmdb_env.h (the one flow commits its steps with), applied
 * in one nested transaction of a group commit before anything it causes is
 * visible.
 *
 * States of a job (AWS's):
 *   New -> Preparing -> Suspended (ConfirmationRequired, until
 *   UpdateJobStatus Ready) -> Ready -> Active -> Complete
 *   Failed: the manifest could not be read, the report not written, or
 *   more than half of the first BATCH_FAILURE_MIN tasks failed;
 *   Cancelled: asked for before the end (Cancelling while chunks still run).
 *
 * Invariants:
 *   (1) A job is in memory (batch_system.jobs) exactly while its committed
 *       status is not Complete, Failed or Cancelled.
 *   (2) A request that fails changes nothing: every check runs before the
 *       one commit that creates or changes the job.
 *
 * Start reading at batch_job_create().
 */
#include "batch/internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAP_SIZE ((size_t)8 << 30)

static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER; /* token check + commit */

/* ---- helpers ---- */

size_t batch__task_key(const char *id, char kind, uint64_t i, char *out)
{
  size_t n = strlen(id);
  if (n > 40)
    n = 40;
  memcpy(out, id, n);
  out[n] = kind;
  for (int b = 0; b < 8; b++)
    out[n + 1 + b] = (char)(i >> (56 - 8 * b));
  return n + 9;
}

int batch__commit(batch_system *s, lmdb_ops *ops, err *e)
{
  ops->what = "write the batch jobs";
  return lmdb_ops_commit(&s->committer, ops, e);
}

void batch__put_rec(batch_system *s, lmdb_ops *ops, const char *id, json_t *rec)
{
  char *v = json_dumps(rec, JSON_COMPACT);
  lmdb_ops_put_owned(ops, s->db_jobs, id, strlen(id), v, strlen(v));
}

const char *batch__str(json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

const char *batch__bucket_of_arn(const char *arn, char *out, size_t cap)
{
  if (arn == NULL)
    return NULL;
  const char *p = str_starts(arn, "arn:aws:s3:::") ? arn + 13 : arn;
  size_t n = strlen(p);
  if (n == 0 || n >= cap || strchr(p, '/') != NULL || strchr(p, ':') != NULL)
    return NULL;
  memcpy(out, p, n + 1);
  return out;
}

void batch__set_time(json_t *rec, const char *k)
{
  char t[25];
  time_format_iso8601_ms(time_now_ms(), t);
  json_object_set_new(rec, k, json_string(t));
}

void batch__fail_rec(json_t *rec, const char *code, const char *reason)
{
  json_t *f = json_object_get(rec, "FailureReasons");
  if (!json_is_array(f)) {
    f = json_array();
    json_object_set_new(rec, "FailureReasons", f);
  }
  json_array_append_new(f, json_pack("{s:s, s:s}", "FailureCode", code, "FailureReason", reason));
  json_object_set_new(rec, "Status", json_string("Failed"));
  batch__set_time(rec, "TerminationDate");
}

static bool terminal(const char *status)
{
  return status != NULL && (strcmp(status, "Complete") == 0 || strcmp(status, "Failed") == 0 ||
                            strcmp(status, "Cancelled") == 0);
}

static int get_rec(batch_system *s, const char *id, json_t **out, err *e)
{
  *out = NULL;
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_val k = {strlen(id), (void *)id}, v;
  int mrc = mdb_get(txn, s->db_jobs, &k, &v);
  if (mrc == 0) {
    *out = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    rc = *out != NULL ? 0 : err_set(e, ERR_IO, "a batch job record is not JSON");
  } else {
    rc = mrc == MDB_NOTFOUND ? ERR_NOT_FOUND : lmdb_error(e, mrc, "read the batch jobs");
  }
  mdb_txn_abort(txn);
  return rc;
}

static job *live_find(batch_system *s, const char *id)
{
  for (job *j = s->jobs; j != NULL; j = j->next_job)
    if (strcmp(j->id, id) == 0)
      return j;
  return NULL;
}

/* The live ProgressSummary of j into its record (s->mu held). */
static void progress_fill(job *j)
{
  double active = json_real_value(json_object_get(j->rec, "_active_s"));
  if (j->active_since_ms != 0)
    active += (double)(time_now_ms() - j->active_since_ms) / 1000.0;
  json_object_set_new(
      j->rec, "ProgressSummary",
      json_pack("{s:I, s:I, s:I, s:{s:I}}", "TotalNumberOfTasks", (json_int_t)j->total,
                "NumberOfTasksSucceeded", (json_int_t)j->ok, "NumberOfTasksFailed",
                (json_int_t)j->failed, "Timers", "ElapsedTimeInActiveSeconds",
                (json_int_t)active));
}

/* The record of job id of account (a copy, "_" members included), live or
 * committed. */
static int job_load(batch_system *s, const char *account, const char *id, json_t **out, err *e)
{
  *out = NULL;
  pthread_mutex_lock(&s->mu);
  job *j = live_find(s, id);
  if (j != NULL) {
    progress_fill(j);
    *out = json_deep_copy(j->rec);
  }
  pthread_mutex_unlock(&s->mu);
  int rc = 0;
  if (*out == NULL)
    rc = get_rec(s, id, out, e);
  if (rc == ERR_NOT_FOUND || (rc == 0 && strcmp(str_or_empty(batch__str(*out, "_account")), account) != 0)) {
    json_decref(*out);
    *out = NULL;
    return err_set(e, ERR_NOT_FOUND, "the job '%.64s' does not exist", id);
  }
  return rc;
}

static json_t *public_copy(json_t *rec)
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

int batch_system_open(const batch_options *o, batch_system **out, err *e)
{
  *out = NULL;
  batch_system *s = xcalloc(1, sizeof *s);
  s->fn = o->fn;
  s->st = o->st;
  s->authorize = o->authorize;
  s->authorize_ctx = o->authorize_ctx;
  s->nworkers = o->workers ? o->workers : 16;
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cond, &ca);
  pthread_condattr_destroy(&ca);
  s->dir = xasprintf("%s/batch/meta", o->data_dir);
  char *parent = xasprintf("%s/batch", o->data_dir);
  mkdir(parent, 0700);
  free(parent);
  lmdb_env_options eo = {.map_size = MAP_SIZE, .max_dbs = 4};
  int rc = lmdb_env_open(&s->env, s->dir, &eo, "the batch jobs", e);
  if (rc == 0) {
    MDB_txn *txn;
    int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (mrc == 0)
      mrc = mdb_dbi_open(txn, "jobs", MDB_CREATE, &s->db_jobs);
    if (mrc == 0)
      mrc = mdb_dbi_open(txn, "tokens", MDB_CREATE, &s->db_tokens);
    if (mrc == 0)
      mrc = mdb_dbi_open(txn, "tasks", MDB_CREATE, &s->db_tasks);
    if (mrc == 0)
      mrc = mdb_txn_commit(txn);
    else
      mdb_txn_abort(txn);
    if (mrc != 0)
      rc = lmdb_error(e, mrc, "open the batch jobs");
  }
  if (rc == 0)
    rc = lmdb_committer_start(&s->committer, s->env, &(lmdb_committer_hooks){0},
                              "the batch jobs", e);
  if (rc != 0) {
    batch_system_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

/* Counts the committed results of j (its done bits and ok/failed). */
static int results_load(batch_system *s, job *j, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, s->db_tasks, &cur);
  char kb[64];
  size_t pl = batch__task_key(j->id, 'r', 0, kb) - 8;
  MDB_val k = {pl, kb}, v;
  for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != pl + 8 || memcmp(k.mv_data, kb, pl) != 0)
      break;
    uint64_t i = 0;
    for (int b = 0; b < 8; b++)
      i = i << 8 | ((const uint8_t *)k.mv_data)[pl + b];
    if (i >= j->total)
      continue;
    j->done[i / 8] |= (uint8_t)(1u << (i % 8));
    if (v.mv_size > 0 && ((const char *)v.mv_data)[0] == 's')
      j->ok++;
    else
      j->failed++;
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return 0;
}

job *batch__job_new(json_t *rec)
{
  job *j = xcalloc(1, sizeof *j);
  j->id = xstrdup(batch__str(rec, "JobId"));
  j->rec = rec;
  json_t *total = json_object_get(rec, "_total");
  if (json_is_integer(total)) {
    j->total = (uint64_t)json_integer_value(total);
    j->done = xcalloc(j->total / 8 + 1, 1);
  }
  return j;
}

void batch__job_free(job *j)
{
  if (j == NULL)
    return;
  json_decref(j->rec);
  free(j->done);
  free(j->id);
  free(j);
}

/* Loads every unfinished job (batch_system_start). A job caught while
 * preparing starts its preparation again. */
static int jobs_resume(batch_system *s, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, s->db_jobs, &cur);
  MDB_val k, v;
  json_t *recs = json_array();
  for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (rec != NULL && !terminal(batch__str(rec, "Status")))
      json_array_append_new(recs, rec);
    else
      json_decref(rec);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  size_t i;
  json_t *rec;
  json_array_foreach(recs, i, rec) {
    const char *st = batch__str(rec, "Status");
    if (strcmp(st, "Preparing") == 0) {
      json_object_set_new(rec, "Status", json_string("New"));
      json_object_del(rec, "_total");
    }
    job *j = batch__job_new(json_incref(rec));
    if (j->done != NULL && (rc = results_load(s, j, e)) != 0) {
      batch__job_free(j);
      break;
    }
    j->next_job = s->jobs;
    s->jobs = j;
  }
  json_decref(recs);
  return rc;
}

int batch_system_start(batch_system *s, err *e)
{
  pthread_mutex_lock(&s->mu);
  bool again = s->started;
  s->started = true;
  pthread_mutex_unlock(&s->mu);
  if (again)
    return 0;
  int rc = jobs_resume(s, e);
  if (rc == 0)
    rc = batch__workers_start(s, e);
  return rc;
}

void batch_system_stop(batch_system *s)
{
  if (s != NULL)
    batch__workers_stop(s);
}

batch_system *batch_system_close(batch_system *s)
{
  if (s == NULL)
    return NULL;
  batch_system_stop(s);
  lmdb_committer_stop(&s->committer);
  while (s->jobs != NULL) {
    job *j = s->jobs;
    s->jobs = j->next_job;
    batch__job_free(j);
  }
  if (s->env != NULL)
    mdb_env_close(s->env);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cond);
  free(s->dir);
  free(s);
  return NULL;
}

/* ---- checks ---- */

static int tags_check(json_t *tags, err *e)
{
  if (tags == NULL)
    return 0;
  if (!json_is_array(tags))
    return err_set(e, ERR_INVALID, "Tags must be a list of tags");
  if (json_array_size(tags) > BATCH_MAX_TAGS)
    return err_set(e, ERR_LIMIT_EXCEEDED, "a job has at most %d tags", BATCH_MAX_TAGS);
  size_t i;
  json_t *t;
  json_array_foreach(tags, i, t) {
    const char *k = batch__str(t, "Key");
    const char *v = batch__str(t, "Value");
    if (k == NULL || k[0] == '\0' || strlen(k) > 128)
      return err_set(e, ERR_INVALID, "a tag key must have 1 to 128 characters");
    if (v == NULL)
      json_object_set_new(t, "Value", json_string(""));
    else if (strlen(v) > 256)
      return err_set(e, ERR_INVALID, "a tag value has at most 256 characters");
    for (size_t x = 0; x < i; x++)
      if (strcmp(batch__str(json_array_get(tags, x), "Key"), k) == 0)
        return err_set(e, ERR_INVALID, "the tag key '%.128s' is given twice", k);
  }
  return 0;
}

/* "true"/"false" (or a JSON boolean) into *out; false when absent. */
static int bool_field(json_t *o, const char *k, bool *out, err *e)
{
  json_t *v = json_object_get(o, k);
  *out = false;
  if (v == NULL || json_is_false(v))
    return 0;
  if (json_is_true(v)) {
    *out = true;
    return 0;
  }
  const char *t = json_string_value(v);
  if (t != NULL && (strcmp(t, "true") == 0 || strcmp(t, "false") == 0)) {
    *out = t[0] == 't';
    return 0;
  }
  return err_set(e, ERR_INVALID, "%s must be true or false", k);
}

static int priority_parse(json_t *v, long long *out, err *e)
{
  const char *t = json_string_value(v);
  if (json_is_integer(v)) {
    *out = json_integer_value(v);
  } else if (t != NULL) {
    char *end;
    *out = strtoll(t, &end, 10);
    if (end == t || *end != '\0')
      return err_set(e, ERR_INVALID, "Priority must be an integer");
  } else {
    return err_set(e, ERR_INVALID, "Priority is required");
  }
  if (*out < 0 || *out > 2147483647LL)
    return err_set(e, ERR_INVALID, "Priority must be between 0 and 2147483647");
  return 0;
}

static int report_check(batch_system *s, json_t *rep, err *e)
{
  if (!json_is_object(rep))
    return err_set(e, ERR_INVALID, "Report is required");
  bool enabled;
  int rc = bool_field(rep, "Enabled", &enabled, e);
  if (rc != 0)
    return rc;
  json_object_set_new(rep, "Enabled", json_boolean(enabled));
  if (!enabled)
    return 0;
  const char *fmt = batch__str(rep, "Format");
  if (fmt == NULL || strcmp(fmt, "Report_CSV_20180820") != 0)
    return err_set(e, ERR_INVALID, "Report Format must be Report_CSV_20180820");
  const char *scope = batch__str(rep, "ReportScope");
  if (scope != NULL && strcmp(scope, "AllTasks") != 0 && strcmp(scope, "FailedTasksOnly") != 0)
    return err_set(e, ERR_INVALID, "ReportScope must be AllTasks or FailedTasksOnly");
  const char *prefix = batch__str(rep, "Prefix");
  if (prefix != NULL && strlen(prefix) > 512)
    return err_set(e, ERR_INVALID, "the report Prefix has at most 512 characters");
  char b[80];
  const char *bucket = batch__bucket_of_arn(batch__str(rep, "Bucket"), b, sizeof b);
  if (bucket == NULL)
    return err_set(e, ERR_INVALID, "the report Bucket must be a bucket ARN (arn:aws:s3:::NAME)");
  arena *a = arena_new();
  store_bucket sb;
  rc = store_bucket_get(s->st, bucket, a, &sb, e);
  arena_free(a);
  if (rc != 0)
    return err_set(e, ERR_INVALID, "the report bucket '%s' does not exist", bucket);
  return 0;
}

/* A fingerprint of the request (for ClientRequestToken idempotency). */
static void request_hash(json_t *req, char out[65])
{
  char *t = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
  uint8_t h[SHA256_LEN];
  sha256(t, strlen(t), h);
  hex_encode(h, sizeof h, out);
  free(t);
}

/* ---- the calls ---- */

int batch_job_create(batch_system *s, const char *account, json_t *req, json_t **out, err *e)
{
  *out = NULL;
  json_t *r = json_deep_copy(req);
  char fp[65];
  request_hash(r, fp);
  const char *token = batch__str(r, "ClientRequestToken");
  int rc = 0;
  if (token == NULL || token[0] == '\0' || strlen(token) > 64)
    rc = err_set(e, ERR_INVALID, "ClientRequestToken must have 1 to 64 characters");
  const char *desc = batch__str(r, "Description");
  if (rc == 0 && desc != NULL && strlen(desc) > 256)
    rc = err_set(e, ERR_INVALID, "Description has at most 256 characters");
  const char *role = batch__str(r, "RoleArn");
  if (rc == 0 && (role == NULL || !str_starts(role, "arn:aws:iam::")))
    rc = err_set(e, ERR_INVALID, "RoleArn must be an IAM role ARN");
  bool confirm = false;
  long long prio = 0;
  if (rc == 0)
    rc = bool_field(r, "ConfirmationRequired", &confirm, e);
  if (rc == 0)
    rc = priority_parse(json_object_get(r, "Priority"), &prio, e);
  if (rc == 0)
    rc = batch__operation_check(s, json_object_get(r, "Operation"), e);
  if (rc == 0)
    rc = report_check(s, json_object_get(r, "Report"), e);
  if (rc == 0)
    rc = batch__manifest_check(s, r, e);
  if (rc == 0)
    rc = tags_check(json_object_get(r, "Tags"), e);
  if (rc != 0) {
    json_decref(r);
    return rc;
  }
  size_t al = strlen(account), tl = strlen(token);
  char tkey[160];
  memcpy(tkey, account, al);
  tkey[al] = '\0';
  memcpy(tkey + al + 1, token, tl);
  pthread_mutex_lock(&create_mu);
  /* the token: the same request gets the same job */
  MDB_txn *txn;
  rc = lmdb_read_begin(s->env, &txn, e);
  char known[64] = "";
  if (rc == 0) {
    MDB_val k = {al + 1 + tl, tkey}, v;
    if (mdb_get(txn, s->db_tokens, &k, &v) == 0 && v.mv_size < sizeof known)
      memcpy(known, v.mv_data, v.mv_size), known[v.mv_size] = '\0';
    mdb_txn_abort(txn);
  }
  if (rc == 0 && known[0] != '\0') {
    json_t *old = NULL;
    rc = get_rec(s, known, &old, e);
    if (rc == 0) {
      if (strcmp(str_or_empty(batch__str(old, "_request")), fp) == 0)
        *out = json_pack("{s:s}", "JobId", known);
      else
        rc = err_set(e, ERR_CONFLICT,
                     "the ClientRequestToken '%.64s' was used by another CreateJob request",
                     token);
    }
    json_decref(old);
    pthread_mutex_unlock(&create_mu);
    json_decref(r);
    return rc;
  }
  char id[37];
  uuid_v4(id);
  json_t *rec = json_object();
  json_object_set_new(rec, "JobId", json_string(id));
  json_object_set_new(rec, "ConfirmationRequired", json_boolean(confirm));
  if (desc != NULL)
    json_object_set(rec, "Description", json_object_get(r, "Description"));
  char arn[160];
  snprintf(arn, sizeof arn, "arn:aws:s3:%s:%s:job/%s", BATCH_REGION, account, id);
  json_object_set_new(rec, "JobArn", json_string(arn));
  json_object_set_new(rec, "Status", json_string("New"));
  const char *members[] = {"Manifest", "Operation", "Report", "ManifestGenerator"};
  for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
    if (json_object_get(r, members[i]) != NULL)
      json_object_set(rec, members[i], json_object_get(r, members[i]));
  json_object_set_new(rec, "Priority", json_integer(prio));
  json_object_set_new(rec, "ProgressSummary",
                      json_pack("{s:i, s:i, s:i, s:{s:i}}", "TotalNumberOfTasks", 0,
                                "NumberOfTasksSucceeded", 0, "NumberOfTasksFailed", 0, "Timers",
                                "ElapsedTimeInActiveSeconds", 0));
  batch__set_time(rec, "CreationTime");
  json_object_set_new(rec, "RoleArn", json_string(role));
  json_object_set_new(rec, "_account", json_string(account));
  json_object_set_new(rec, "_request", json_string(fp));
  json_object_set_new(rec, "_active_s", json_real(0));
  json_t *tags = json_object_get(r, "Tags");
  json_object_set(rec, "_tags", tags != NULL ? tags : json_array());
  lmdb_ops ops = {0};
  batch__put_rec(s, &ops, id, rec);
  lmdb_ops_put(&ops, s->db_tokens, tkey, al + 1 + tl, id, strlen(id));
  rc = batch__commit(s, &ops, e);
  pthread_mutex_unlock(&create_mu);
  json_decref(r);
  if (rc != 0) {
    json_decref(rec);
    return rc;
  }
  job *j = batch__job_new(rec);
  pthread_mutex_lock(&s->mu);
  j->next_job = s->jobs;
  s->jobs = j;
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->mu);
  *out = json_pack("{s:s}", "JobId", id);
  return 0;
}

int batch_job_get(batch_system *s, const char *account, const char *id, json_t **out, err *e)
{
  json_t *rec;
  int rc = job_load(s, account, id, &rec, e);
  if (rc != 0)
    return rc;
  *out = public_copy(rec);
  json_decref(rec);
  return 0;
}

static bool status_wanted(json_t *statuses, const char *st)
{
  if (json_array_size(statuses) == 0)
    return true;
  size_t i;
  json_t *v;
  json_array_foreach(statuses, i, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), st) == 0)
      return true;
  }
  return false;
}

int batch_job_list(batch_system *s, const char *account, json_t *statuses, const char *after,
                   size_t max, json_t **items, char **next, err *e)
{
  *items = json_array();
  *next = NULL;
  json_t *ids = json_array();
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, s->db_jobs, &cur);
  MDB_val k = {after != NULL ? strlen(after) : 0, (void *)after}, v;
  int mrc = after != NULL ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                          : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (after != NULL && k.mv_size == strlen(after) && memcmp(k.mv_data, after, k.mv_size) == 0)
      continue;
    json_array_append_new(ids, json_stringn(k.mv_data, k.mv_size));
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  size_t i;
  json_t *idv;
  json_array_foreach(ids, i, idv) {
    json_t *rec;
    err ignore = {0};
    if (job_load(s, account, json_string_value(idv), &rec, &ignore) != 0)
      continue;
    if (status_wanted(statuses, batch__str(rec, "Status"))) {
      if (json_array_size(*items) == max) {
        json_decref(rec);
        *next = xstrdup(json_string_value(json_object_get(json_array_get(*items, max - 1),
                                                          "JobId")));
        break;
      }
      json_t *d = json_object();
      const char *keep[] = {"JobId", "Description", "Priority", "Status", "CreationTime",
                            "TerminationDate", "ProgressSummary"};
      for (size_t x = 0; x < sizeof keep / sizeof keep[0]; x++)
        if (json_object_get(rec, keep[x]) != NULL)
          json_object_set(d, keep[x], json_object_get(rec, keep[x]));
      const char *opname = "";
      json_t *opv;
      json_object_foreach(json_object_get(rec, "Operation"), opname, opv) {
        break;
      }
      json_object_set_new(d, "Operation", json_string(opname != NULL ? opname : ""));
      json_array_append_new(*items, d);
    }
    json_decref(rec);
  }
  json_decref(ids);
  return 0;
}

/* Changes job id's record with fn (under s->mu for a live job) and commits
 * it. fn returns 0 or an error (then nothing changes). */
typedef int (*rec_edit)(batch_system *s, job *j, json_t *rec, void *arg, err *e);

static int job_edit(batch_system *s, const char *account, const char *id, rec_edit fn, void *arg,
                    err *e)
{
  json_t *rec;
  int rc = job_load(s, account, id, &rec, e);
  if (rc != 0)
    return rc;
  json_decref(rec);
  pthread_mutex_lock(&s->mu);
  job *j = live_find(s, id);
  if (j != NULL) {
    json_t *copy = json_deep_copy(j->rec);
    rc = fn(s, j, copy, arg, e);
    if (rc == 0) {
      json_decref(j->rec);
      j->rec = copy;
      lmdb_ops ops = {0};
      batch__put_rec(s, &ops, id, copy);
      /* committed under mu: no other change of this record can pass it */
      rc = batch__commit(s, &ops, e);
      pthread_cond_broadcast(&s->cond);
    } else {
      json_decref(copy);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
  }
  pthread_mutex_unlock(&s->mu);
  /* an ended job: only its priority and tags change */
  pthread_mutex_lock(&create_mu);
  rc = get_rec(s, id, &rec, e);
  if (rc == 0)
    rc = fn(s, NULL, rec, arg, e);
  if (rc == 0) {
    lmdb_ops ops = {0};
    batch__put_rec(s, &ops, id, rec);
    rc = batch__commit(s, &ops, e);
  }
  pthread_mutex_unlock(&create_mu);
  json_decref(rec);
  return rc;
}

static int set_priority(batch_system *s, job *j, json_t *rec, void *arg, err *e)
{
  json_object_set_new(rec, "Priority", json_integer(*(long long *)arg));
  return 0;
}

int batch_job_priority(batch_system *s, const char *account, const char *id, long long priority,
                       err *e)
{
  if (priority < 0 || priority > 2147483647LL)
    return err_set(e, ERR_INVALID, "priority must be between 0 and 2147483647");
  return job_edit(s, account, id, set_priority, &priority, e);
}

typedef struct status_req {
  const char *requested;
  const char *reason;
} status_req;

static int set_status(batch_system *s, job *j, json_t *rec, void *arg, err *e)
{
  status_req *q = arg;
  const char *st = batch__str(rec, "Status");
  if (j == NULL || terminal(st))
    return err_set(e, ERR_CONFLICT, "the job is %s: its status cannot change", st);
  if (strcmp(q->requested, "Ready") == 0) {
    if (strcmp(st, "Suspended") != 0)
      return err_set(e, ERR_CONFLICT, "only a Suspended job can be set Ready; this job is %s",
                     st);
    json_object_set_new(rec, "Status", json_string("Ready"));
    json_object_del(rec, "SuspendedCause");
  } else {
    if (strcmp(st, "Cancelling") == 0)
      return err_set(e, ERR_CONFLICT, "the job is already Cancelling");
    /* an Active job, chunks still running, or a preparation or report
       under way: a worker moves the job on to Cancelled (writing the
       report of the tasks that ran) */
    bool busy = j->inflight > 0 || j->preparing || j->finishing || strcmp(st, "Active") == 0;
    json_object_set_new(rec, "Status", json_string(busy ? "Cancelling" : "Cancelled"));
    if (!busy)
      batch__set_time(rec, "TerminationDate");
  }
  if (q->reason != NULL)
    json_object_set_new(rec, "StatusUpdateReason", json_string(q->reason));
  return 0;
}

int batch_job_status(batch_system *s, const char *account, const char *id,
                     const char *requested, const char *reason, json_t **out, err *e)
{
  *out = NULL;
  if (requested == NULL ||
      (strcmp(requested, "Ready") != 0 && strcmp(requested, "Cancelled") != 0))
    return err_set(e, ERR_INVALID, "requestedJobStatus must be Ready or Cancelled");
  if (reason != NULL && strlen(reason) > 256)
    return err_set(e, ERR_INVALID, "statusUpdateReason has at most 256 characters");
  status_req q = {requested, reason};
  int rc = job_edit(s, account, id, set_status, &q, e);
  if (rc != 0)
    return rc;
  json_t *rec;
  rc = job_load(s, account, id, &rec, e);
  if (rc != 0)
    return rc;
  *out = json_pack("{s:s, s:s}", "JobId", id, "Status", batch__str(rec, "Status"));
  if (batch__str(rec, "StatusUpdateReason") != NULL)
    json_object_set(*out, "StatusUpdateReason", json_object_get(rec, "StatusUpdateReason"));
  json_decref(rec);
  /* a job cancelled outright leaves memory (invariant 1) */
  pthread_mutex_lock(&s->mu);
  for (job **p = &s->jobs; *p != NULL; p = &(*p)->next_job) {
    job *j = *p;
    if (strcmp(j->id, id) == 0 && terminal(batch__str(j->rec, "Status"))) {
      *p = j->next_job;
      batch__job_free(j);
      break;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return 0;
}

int batch_job_tags_get(batch_system *s, const char *account, const char *id, json_t **tags,
                       err *e)
{
  json_t *rec;
  int rc = job_load(s, account, id, &rec, e);
  if (rc != 0)
    return rc;
  *tags = json_incref(json_object_get(rec, "_tags"));
  if (*tags == NULL)
    *tags = json_array();
  json_decref(rec);
  return 0;
}

static int set_tags(batch_system *s, job *j, json_t *rec, void *arg, err *e)
{
  json_object_set(rec, "_tags", arg);
  return 0;
}

int batch_job_tags_set(batch_system *s, const char *account, const char *id, json_t *tags,
                       err *e)
{
  int rc = tags_check(tags, e);
  if (rc != 0)
    return rc;
  return job_edit(s, account, id, set_tags, tags, e);
}
