/* batch/run.c -- the job runners: worker threads that prepare jobs, run
 * their tasks in chunks (LambdaInvoke, S3PutObjectTagging,
 * S3DeleteObjectTagging, S3PutObjectCopy through the store's and fn's C
 * APIs), commit each chunk's results, and end a job with its completion
 * report.
 *
 * Why chunks: a chunk of up to BATCH_CHUNK tasks (one for LambdaInvoke) is
 * the unit of durable progress. Its results are one change list in one group commit; only
 * after the commit are its tasks counted and marked done, so DescribeJob
 * never shows progress a crash could take back.
 *
 * Invariants:
 *   (1) A job's record is committed only under batch_system.mu (here and
 *       in job.c), so its committed status never goes back.
 *   (2) A task is handed out at most once per process run; after a restart
 *       only tasks without a committed result are handed out again.
 *   (3) The report is written through the store (ObjectCreated events
 *       fire) before the job's final status is committed; a crash in
 *       between writes it again on restart.
 *   (4) A job acts as its role (batch_options.authorize): before any task
 *       runs, the role may read the manifest and write the report
 *       (else the job fails AccessDenied, nothing changed); each task's
 *       operation is asked for before it touches anything (else the task
 *       fails AccessDenied).
 *
 * Start reading at worker().
 */
#include "batch/internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE_WAIT_MS 1000
#define RESULT_MAX 8192    /* bytes of a task's ResultMessage kept (a function's resultString) */

enum work_kind { W_NONE, W_PREPARE, W_CHUNK, W_FINISH };

typedef struct work {
  enum work_kind kind;
  job *j;
  char *id;                    /* the job's id (a copy) */
  json_t *op;                  /* the job's Operation (a reference) */
  char *role;                  /* the job's RoleArn (a copy), or NULL */
  uint64_t idx[BATCH_CHUNK];
  size_t n;
} work;

typedef struct result {
  bool ok;
  const char *code;            /* ErrorCode ("" when it succeeded) */
  int http;
  char *msg;                   /* ResultMessage, malloc'd */
} result;

static bool is(json_t *rec, const char *status)
{
  const char *st = batch__str(rec, "Status");
  return st != NULL && strcmp(st, status) == 0;
}

static bool too_many_failures(const job *j)
{
  uint64_t run = j->ok + j->failed;
  return run >= BATCH_FAILURE_MIN && j->failed * 2 > run;
}

static bool bit(const job *j, uint64_t i)
{
  return (j->done[i / 8] >> (i % 8)) & 1;
}

static void active_stop(job *j)
{
  if (j->active_since_ms == 0)
    return;
  double s = json_real_value(json_object_get(j->rec, "_active_s"));
  s += (double)(time_now_ms() - j->active_since_ms) / 1000.0;
  json_object_set_new(j->rec, "_active_s", json_real(s));
  j->active_since_ms = 0;
}

/* Commits j's record (s->mu held). */
static void rec_commit(batch_system *s, job *j)
{
  lmdb_ops ops = {0};
  batch__put_rec(s, &ops, j->id, j->rec);
  err e = {0};
  batch__commit(s, &ops, &e); /* a failure leaves the last committed state to resume from */
}

/* Removes an ended job from memory (s->mu held). */
static void job_drop(batch_system *s, job *j)
{
  for (job **p = &s->jobs; *p != NULL; p = &(*p)->next_job)
    if (*p == j) {
      *p = j->next_job;
      break;
    }
  batch__job_free(j);
}

/* ---- picking work (s->mu held) ---- */

static bool pick(batch_system *s, work *w)
{
  memset(w, 0, sizeof *w);
  job *best = NULL;
  for (job *j = s->jobs; j != NULL; j = j->next_job) {
    if (j->preparing || j->finishing)
      continue;
    if (is(j->rec, "New")) {
      w->kind = W_PREPARE;
      w->j = j;
      j->preparing = true;
      json_object_set_new(j->rec, "Status", json_string("Preparing"));
      rec_commit(s, j);
      return true;
    }
    bool running = is(j->rec, "Active") || is(j->rec, "Ready");
    if ((is(j->rec, "Cancelling") || (running && (j->next >= j->total || too_many_failures(j)))) &&
        j->inflight == 0) {
      w->kind = W_FINISH;
      w->j = j;
      j->finishing = true;
      return true;
    }
    if (!running || j->next >= j->total || too_many_failures(j))
      continue;
    if (j->inflight >= BATCH_LAMBDA_CONCURRENCY &&
        json_object_get(json_object_get(j->rec, "Operation"), "LambdaInvoke") != NULL)
      continue;
    long long p = json_integer_value(json_object_get(j->rec, "Priority"));
    if (best == NULL || p > json_integer_value(json_object_get(best->rec, "Priority")))
      best = j;
  }
  if (best == NULL)
    return false;
  job *j = best;
  if (is(j->rec, "Ready")) {
    json_object_set_new(j->rec, "Status", json_string("Active"));
    rec_commit(s, j);
  }
  if (j->active_since_ms == 0)
    j->active_since_ms = time_now_ms();
  /* a function runs far longer than a commit: each invocation's result is
     committed on its own, so a crash repeats at most the ones in flight */
  size_t size = json_object_get(json_object_get(j->rec, "Operation"), "LambdaInvoke") != NULL
                    ? 1
                    : BATCH_CHUNK;
  while (w->n < size && j->next < j->total) {
    uint64_t i = j->next++;
    if (!bit(j, i))
      w->idx[w->n++] = i;
  }
  if (w->n == 0)
    return pick(s, w); /* everything left was done already */
  w->kind = W_CHUNK;
  w->j = j;
  j->inflight++;
  return true;
}

/* ---- preparing ---- */

/* Where job id's report goes in its bucket: PREFIX/job-ID (in a). */
static const char *report_base(json_t *rep, const char *id, arena *a)
{
  const char *prefix = batch__str(rep, "Prefix");
  size_t plen = prefix != NULL ? strlen(prefix) : 0;
  if (plen > 0 && prefix[plen - 1] == '/')
    plen--;
  return plen > 0 ? arena_sprintf(a, "%.*s/job-%s", (int)plen, prefix, id)
                  : arena_sprintf(a, "job-%s", id);
}

/* Whether the job's role may read its manifest (or list the bucket a
 * manifest is generated from) and write its report, asked before any task
 * runs: a job that could not report fails before it changes anything. */
static int role_check(batch_system *s, const char *id, json_t *rec, err *e)
{
  if (s->authorize == NULL)
    return 0;
  const char *role = batch__str(rec, "RoleArn");
  arena *a = arena_new();
  int rc = 0;
  const char *arn =
      batch__str(json_object_get(json_object_get(rec, "Manifest"), "Location"), "ObjectArn");
  json_t *gen = json_object_get(json_object_get(rec, "ManifestGenerator"),
                                "S3JobManifestGenerator");
  char b[80];
  const char *source = batch__bucket_of_arn(batch__str(gen, "SourceBucket"), b, sizeof b);
  if (arn != NULL)
    rc = s->authorize(s->authorize_ctx, role, "s3:GetObject", arn, e);
  else if (source != NULL)
    rc = s->authorize(s->authorize_ctx, role, "s3:ListBucket",
                      arena_sprintf(a, "arn:aws:s3:::%s", source), e);
  if (rc != 0) {
    err_set(e, rc, "Reading the manifest is forbidden: %.400s", arena_strdup(a, e->msg));
    arena_free(a);
    return rc;
  }
  json_t *rep = json_object_get(rec, "Report");
  const char *bucket = batch__bucket_of_arn(batch__str(rep, "Bucket"), b, sizeof b);
  if (json_is_true(json_object_get(rep, "Enabled")) && bucket != NULL) {
    const char *key = arena_sprintf(a, "arn:aws:s3:::%s/%s/manifest.json", bucket,
                                    report_base(rep, id, a));
    rc = s->authorize(s->authorize_ctx, role, "s3:PutObject", key, e);
    if (rc != 0)
      err_set(e, rc, "Writing the completion report is forbidden: %.400s",
              arena_strdup(a, e->msg));
  }
  arena_free(a);
  return rc;
}

static void prepare(batch_system *s, work *w)
{
  json_t *rec;
  pthread_mutex_lock(&s->mu);
  rec = json_deep_copy(w->j->rec);
  pthread_mutex_unlock(&s->mu);
  uint64_t total = 0;
  const char *fcode = NULL;
  err e = {0};
  json_t *desc = NULL;
  int rc = role_check(s, w->id, rec, &e);
  if (rc != 0)
    fcode = "AccessDenied";
  else
    rc = batch__manifest_load(s, w->id, rec, &total, &desc, &fcode, &e);
  json_decref(rec);
  pthread_mutex_lock(&s->mu);
  job *j = w->j;
  j->preparing = false;
  if (is(j->rec, "Cancelling")) {
    json_object_set_new(j->rec, "Status", json_string("Cancelled"));
    batch__set_time(j->rec, "TerminationDate");
  } else if (rc != 0) {
    if (rc == ERR_UNAVAILABLE && s->stopping) {
      pthread_mutex_unlock(&s->mu);
      return; /* prepared again after the restart */
    }
    batch__fail_rec(j->rec, fcode, e.msg);
  } else {
    json_object_set_new(j->rec, "_total", json_integer((json_int_t)total));
    if (desc != NULL)
      json_object_set(j->rec, "GeneratedManifestDescriptor", desc);
    j->total = total;
    free(j->done);
    j->done = xcalloc(total / 8 + 1, 1);
    j->next = j->ok = j->failed = 0;
    json_t *ps = json_object_get(j->rec, "ProgressSummary");
    json_object_set_new(ps, "TotalNumberOfTasks", json_integer((json_int_t)total));
    if (json_is_true(json_object_get(j->rec, "ConfirmationRequired"))) {
      json_object_set_new(j->rec, "Status", json_string("Suspended"));
      json_object_set_new(j->rec, "SuspendedCause", json_string("AWAITING_CONFIRMATION"));
      batch__set_time(j->rec, "SuspendedDate");
    } else {
      json_object_set_new(j->rec, "Status", json_string("Ready"));
    }
  }
  json_decref(desc);
  rec_commit(s, j);
  if (is(j->rec, "Cancelled") || is(j->rec, "Failed"))
    job_drop(s, j);
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->mu);
}

/* ---- the operations ---- */

static void res_set(result *r, bool ok, const char *code, int http, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void res_set(result *r, bool ok, const char *code, int http, const char *fmt, ...)
{
  r->ok = ok;
  r->code = code;
  r->http = http;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&r->msg, fmt, ap) < 0)
    mem_out_of_memory();
  va_end(ap);
}

static void res_err(result *r, int rc, const err *e)
{
  res_set(r, false, err_aws_code(rc), err_http_status(rc), "%s", e->msg);
}

/* Whether the job's role may do action on resource; when not, r is the
 * task's failure as S3 reports it (AccessDenied, 403, IAM's message). */
static bool allowed(batch_system *s, const char *role, const char *action, const char *resource,
                    result *r)
{
  if (s->authorize == NULL)
    return true;
  err e = {0};
  if (s->authorize(s->authorize_ctx, role, action, resource, &e) == 0)
    return true;
  res_set(r, false, "AccessDenied", 403, "%s", e.msg[0] ? e.msg : "Access Denied");
  return false;
}

/* "arn:aws:s3:::bucket/key" in a. */
static const char *object_arn(const char *bucket, const char *key, arena *a)
{
  return arena_sprintf(a, "arn:aws:s3:::%s/%s", bucket, key);
}

/* tags [{Key, Value}] as str_pairs in a. */
static str_pair *pairs_of(json_t *tags, arena *a, size_t *n)
{
  *n = json_array_size(tags);
  str_pair *p = arena_alloc(a, (*n ? *n : 1) * sizeof *p);
  for (size_t i = 0; i < *n; i++) {
    json_t *t = json_array_get(tags, i);
    p[i].name = arena_strdup(a, str_or_empty(batch__str(t, "Key")));
    p[i].value = arena_strdup(a, str_or_empty(batch__str(t, "Value")));
  }
  return p;
}

static bool stopping(batch_system *s)
{
  pthread_mutex_lock(&s->mu);
  bool st = s->stopping;
  pthread_mutex_unlock(&s->mu);
  return st;
}

static bool stopping_ctx(void *ctx)
{
  return stopping(ctx);
}

/* LambdaInvoke: the Batch Operations event (schema 1.0 or 2.0), the
 * function's resultCode honoured (TemporaryFailure retried). Returns
 * ERR_UNAVAILABLE when stopping cut it short (no result then). */
static int op_lambda(batch_system *s, const char *jid, const char *role, json_t *op,
                     uint64_t idx, json_t *row, result *r)
{
  const char *fname = batch__str(op, "FunctionArn");
  if (!allowed(s, role, "lambda:InvokeFunction", fname, r))
    return 0;
  const char *ver = batch__str(op, "InvocationSchemaVersion");
  bool v2 = ver != NULL && strcmp(ver, "2.0") == 0;
  const char *bucket = json_string_value(json_array_get(row, 0));
  const char *vid = json_string_value(json_array_get(row, 2));
  const char *enc = json_string_value(json_array_get(row, 3));
  char task_id[96];
  snprintf(task_id, sizeof task_id, "%s-%llu", jid, (unsigned long long)idx);
  json_t *vj = vid[0] != '\0' ? json_string(vid) : json_null();
  json_t *task;
  json_t *jobj = json_pack("{s:s}", "id", jid);
  if (v2) {
    json_t *ua = json_object_get(op, "UserArguments");
    json_object_set(jobj, "userArguments", json_is_object(ua) ? ua : json_object());
    if (!json_is_object(ua))
      json_object_set_new(jobj, "userArguments", json_object());
    task = json_pack("{s:s, s:s, s:s, s:o}", "taskId", task_id, "s3Bucket", bucket, "s3Key", enc,
                     "s3VersionId", vj);
  } else {
    char arn[128];
    snprintf(arn, sizeof arn, "arn:aws:s3:::%s", bucket);
    task = json_pack("{s:s, s:s, s:o, s:s}", "taskId", task_id, "s3Key", enc, "s3VersionId", vj,
                     "s3BucketArn", arn);
  }
  char inv_id[37];
  uuid_v4(inv_id);
  json_t *ev = json_pack("{s:s, s:s, s:o, s:[o]}", "invocationSchemaVersion", v2 ? "2.0" : "1.0",
                         "invocationId", inv_id, "job", jobj, "tasks", task);
  char *payload = json_dumps(ev, JSON_COMPACT);
  json_decref(ev);
  int rc = 0;
  for (unsigned attempt = 1;; attempt++) {
    fn_answer w = {0};
    err e = {0};
    rc = s->fn != NULL ? fn_invoke_wait(s->fn, fname, NULL, payload, stopping_ctx, s, &w, &e)
                       : err_set(&e, ERR_UNAVAILABLE, "functions are not running");
    if (rc == ERR_UNAVAILABLE && stopping(s)) {
      buf_release(&w.payload);
      break;
    }
    if (rc != 0) {
      if (rc == ERR_THROTTLED && attempt < BATCH_LAMBDA_TRIES) {
        struct timespec ts = {0, 200000000L * attempt};
        nanosleep(&ts, NULL);
        continue;
      }
      res_err(r, rc, &e);
      rc = 0;
      break;
    }
    json_t *ans = json_loadb(w.payload.data ? w.payload.data : "", w.payload.len, 0, NULL);
    buf_release(&w.payload);
    if (w.function_error) {
      const char *m = batch__str(ans, "errorMessage");
      res_set(r, false, "PermanentFailure", 200, "Lambda returned function error: %s",
              m != NULL ? m : "unhandled");
      json_decref(ans);
      break;
    }
    const char *code = NULL, *str = NULL;
    json_t *results = json_object_get(ans, "results");
    size_t i;
    json_t *it;
    json_array_foreach(results, i, it) {
      const char *tid = batch__str(it, "taskId");
      if (tid == NULL || strcmp(tid, task_id) == 0 || json_array_size(results) == 1) {
        code = batch__str(it, "resultCode");
        str = batch__str(it, "resultString");
        break;
      }
    }
    if (code == NULL)
      code = batch__str(ans, "treatMissingKeysAs");
    if (code == NULL)
      code = "PermanentFailure";
    if (strcmp(code, "Succeeded") == 0) {
      res_set(r, true, "", 200, "%s", str != NULL ? str : "");
    } else if (strcmp(code, "TemporaryFailure") == 0 && attempt < BATCH_LAMBDA_TRIES) {
      json_decref(ans);
      struct timespec ts = {0, 100000000L * attempt};
      nanosleep(&ts, NULL);
      continue;
    } else if (strcmp(code, "TemporaryFailure") == 0 || strcmp(code, "PermanentFailure") == 0) {
      /* r->code must outlive ans: a static name */
      res_set(r, false, code[0] == 'T' ? "TemporaryFailure" : "PermanentFailure", 200, "%s",
              str != NULL ? str : "");
    } else {
      res_set(r, false, "PermanentFailure", 200, "the function returned the resultCode '%.64s'",
              code);
    }
    json_decref(ans);
    break;
  }
  free(payload);
  return rc;
}

static void op_copy(batch_system *s, const char *role, json_t *op, json_t *row, arena *a,
                    result *r)
{
  const char *bucket = json_string_value(json_array_get(row, 0));
  const char *key = json_string_value(json_array_get(row, 1));
  char db[80];
  const char *dst = batch__bucket_of_arn(batch__str(op, "TargetResource"), db, sizeof db);
  const char *prefix = batch__str(op, "TargetKeyPrefix");
  const char *dkey = prefix != NULL ? arena_sprintf(a, "%s%s", prefix, key) : key;
  const char *dir = batch__str(op, "MetadataDirective");
  str_pair *meta = NULL;
  size_t nmeta = 0;
  if (dir != NULL && strcmp(dir, "REPLACE") == 0) {
    json_t *m = json_object_get(op, "NewObjectMetadata");
    static const char *const fields[][2] = {
        {"CacheControl", "cache-control"},     {"ContentDisposition", "content-disposition"},
        {"ContentEncoding", "content-encoding"}, {"ContentLanguage", "content-language"},
        {"ContentType", "content-type"}};
    json_t *um = json_object_get(m, "UserMetadata");
    meta = arena_alloc(a, (5 + json_object_size(um) + 1) * sizeof *meta);
    for (size_t i = 0; i < 5; i++)
      if (batch__str(m, fields[i][0]) != NULL)
        meta[nmeta++] = (str_pair){fields[i][1], batch__str(m, fields[i][0])};
    const char *k;
    json_t *v;
    json_object_foreach(um, k, v) {
      meta[nmeta++] = (str_pair){arena_sprintf(a, "x-amz-meta-%s", k),
                                 str_or_empty(json_string_value(v))};
    }
  }
  json_t *nt = json_object_get(op, "NewObjectTagging");
  size_t ntags = 0;
  str_pair *tags = json_array_size(nt) > 0 ? pairs_of(nt, a, &ntags) : NULL;
  if (!allowed(s, role, "s3:GetObject", object_arn(bucket, key, a), r) ||
      !allowed(s, role, "s3:PutObject", object_arn(dst, dkey, a), r) ||
      (tags != NULL && !allowed(s, role, "s3:PutObjectTagging", object_arn(dst, dkey, a), r)))
    return;
  err e = {0};
  store_object out;
  int rc = store_object_copy(s->st, bucket, key, dst, dkey, meta, meta != NULL ? nmeta : 0, tags,
                             ntags, a, &out, &e);
  if (rc != 0)
    res_err(r, rc, &e);
  else
    res_set(r, true, "", 200, "%s", "");
}

/* Runs one task; ERR_UNAVAILABLE: cut short by stop (no result). */
static int task_run(batch_system *s, const char *jid, const char *role, json_t *ops,
                    uint64_t idx, json_t *row, result *r)
{
  const char *name = "";
  json_t *op = NULL;
  json_object_foreach(ops, name, op) {
    break;
  }
  const char *bucket = json_string_value(json_array_get(row, 0));
  const char *key = json_string_value(json_array_get(row, 1));
  const char *vid = json_string_value(json_array_get(row, 2));
  if (bucket == NULL || key == NULL) {
    res_set(r, false, "InternalError", 500, "%s", "the task's manifest row is damaged");
    return 0;
  }
  if (strcmp(name, "LambdaInvoke") == 0)
    return op_lambda(s, jid, role, op, idx, row, r);
  if (vid != NULL && vid[0] != '\0' && strcmp(vid, "null") != 0) {
    res_set(r, false, "NoSuchVersion", 404, "tarn keeps no object versions: '%s' is not one",
            vid);
    return 0;
  }
  arena *a = arena_new();
  err e = {0};
  int rc = 0;
  if (strcmp(name, "S3PutObjectTagging") == 0 || strcmp(name, "S3DeleteObjectTagging") == 0) {
    size_t n = 0;
    str_pair *tags = name[2] == 'P' ? pairs_of(json_object_get(op, "TagSet"), a, &n) : NULL;
    const char *action = name[2] == 'P' ? "s3:PutObjectTagging" : "s3:DeleteObjectTagging";
    if (allowed(s, role, action, object_arn(bucket, key, a), r)) {
      rc = store_object_tags_set(s->st, bucket, key, tags, n, &e);
      if (rc != 0)
        res_err(r, rc, &e);
      else
        res_set(r, true, "", 200, "%s", "");
    }
  } else if (strcmp(name, "S3PutObjectCopy") == 0) {
    op_copy(s, role, op, row, a, r);
  } else {
    res_set(r, false, "NotImplemented", 501, "tarn cannot run %s", name);
  }
  arena_free(a);
  return 0;
}

/* Object tags as S3 takes them: at most STORE_MAX_TAGS, keys of 1 to 128
 * characters, values of at most 256, no key twice. */
static int tagset_check(json_t *tags, err *e)
{
  if (tags != NULL && !json_is_array(tags))
    return err_set(e, ERR_INVALID, "a tag set must be a list of tags");
  if (json_array_size(tags) > STORE_MAX_TAGS)
    return err_set(e, ERR_INVALID, "an object has at most %d tags", STORE_MAX_TAGS);
  size_t i;
  json_t *t;
  json_array_foreach(tags, i, t) {
    const char *k = batch__str(t, "Key");
    const char *v = batch__str(t, "Value");
    if (k == NULL || k[0] == '\0' || utf8_chars(k) > 128)
      return err_set(e, ERR_INVALID, "an object tag key must have 1 to 128 characters");
    if (v != NULL && utf8_chars(v) > 256)
      return err_set(e, ERR_INVALID, "an object tag value has at most 256 characters");
    for (size_t x = 0; x < i; x++)
      if (strcmp(str_or_empty(batch__str(json_array_get(tags, x), "Key")), k) == 0)
        return err_set(e, ERR_INVALID, "the object tag key '%.128s' is given twice", k);
  }
  return 0;
}

int batch__operation_check(batch_system *s, json_t *op, err *e)
{
  if (!json_is_object(op) || json_object_size(op) != 1)
    return err_set(e, ERR_INVALID, "Operation must name exactly one operation");
  const char *name = "";
  json_t *v = NULL;
  json_object_foreach(op, name, v) {
    break;
  }
  if (strcmp(name, "LambdaInvoke") == 0) {
    const char *f = batch__str(v, "FunctionArn");
    const char *ver = batch__str(v, "InvocationSchemaVersion");
    if (f == NULL || !str_starts(f, "arn:aws:lambda:"))
      return err_set(e, ERR_INVALID, "LambdaInvoke needs a FunctionArn");
    if (ver != NULL && strcmp(ver, "1.0") != 0 && strcmp(ver, "2.0") != 0)
      return err_set(e, ERR_INVALID, "InvocationSchemaVersion must be 1.0 or 2.0");
    json_t *ua = json_object_get(v, "UserArguments");
    if (ua != NULL && (ver == NULL || strcmp(ver, "2.0") != 0))
      return err_set(e, ERR_INVALID, "UserArguments need InvocationSchemaVersion 2.0");
    if (json_object_size(ua) > 10)
      return err_set(e, ERR_INVALID, "UserArguments has at most 10 entries");
    return 0;
  }
  if (strcmp(name, "S3PutObjectTagging") == 0) {
    json_t *ts = json_object_get(v, "TagSet");
    if (!json_is_array(ts) && !(json_is_string(ts) && json_string_length(ts) == 0))
      return err_set(e, ERR_INVALID, "S3PutObjectTagging needs a TagSet");
    if (!json_is_array(ts))
      json_object_set_new(v, "TagSet", json_array());
    return tagset_check(json_object_get(v, "TagSet"), e);
  }
  if (strcmp(name, "S3DeleteObjectTagging") == 0)
    return 0;
  if (strcmp(name, "S3PutObjectCopy") == 0) {
    char b[80];
    const char *dst = batch__bucket_of_arn(batch__str(v, "TargetResource"), b, sizeof b);
    if (dst == NULL)
      return err_set(e, ERR_INVALID, "S3PutObjectCopy needs a TargetResource bucket ARN");
    arena *a = arena_new();
    store_bucket sb;
    err ignore = {0};
    int rc = store_bucket_get(s->st, dst, a, &sb, &ignore);
    arena_free(a);
    if (rc != 0)
      return err_set(e, ERR_INVALID, "the target bucket '%s' does not exist", dst);
    const char *md = batch__str(v, "MetadataDirective");
    if (md != NULL && strcmp(md, "COPY") != 0 && strcmp(md, "REPLACE") != 0)
      return err_set(e, ERR_INVALID, "MetadataDirective must be COPY or REPLACE");
    const char *sc = batch__str(v, "StorageClass");
    static const char *const classes[] = {"STANDARD", "STANDARD_IA", "ONEZONE_IA", "GLACIER",
                                          "INTELLIGENT_TIERING", "DEEP_ARCHIVE", "GLACIER_IR"};
    bool ok = sc == NULL;
    for (size_t i = 0; !ok && i < sizeof classes / sizeof classes[0]; i++)
      ok = strcmp(sc, classes[i]) == 0;
    if (!ok)
      return err_set(e, ERR_INVALID, "the storage class '%.64s' is not valid", sc);
    if (json_object_get(v, "AccessControlGrants") != NULL)
      return err_set(e, ERR_NOT_IMPLEMENTED, "tarn keeps no object ACLs: AccessControlGrants "
                                             "cannot be applied");
    const char *acl = batch__str(v, "CannedAccessControlList");
    if (acl != NULL && strcmp(acl, "private") != 0 && strcmp(acl, "bucket-owner-full-control") != 0)
      return err_set(e, ERR_NOT_IMPLEMENTED, "tarn keeps no object ACLs: only the private "
                                             "canned ACL can be applied");
    const char *pre = batch__str(v, "TargetKeyPrefix");
    if (pre != NULL && strlen(pre) > 1024)
      return err_set(e, ERR_INVALID, "TargetKeyPrefix has at most 1024 characters");
    json_t *nt = json_object_get(v, "NewObjectTagging");
    if (json_is_string(nt) && json_string_length(nt) == 0)
      json_object_del(v, "NewObjectTagging");
    return tagset_check(json_object_get(v, "NewObjectTagging"), e);
  }
  if (strcmp(name, "S3PutObjectAcl") == 0)
    return err_set(e, ERR_NOT_IMPLEMENTED, "S3PutObjectAcl (replace access control list) is not "
                                           "available: tarn's store keeps no object ACLs");
  if (strcmp(name, "S3InitiateRestoreObject") == 0)
    return err_set(e, ERR_NOT_IMPLEMENTED, "S3InitiateRestoreObject is not available: tarn has no "
                                           "archive storage classes, every object is readable");
  return err_set(e, ERR_NOT_IMPLEMENTED, "the operation %s is not supported by tarn", name);
}

/* ---- a chunk ---- */

/* Cuts s to at most max bytes, on a character boundary. */
static void trim_utf8(char *s, size_t max)
{
  if (s == NULL || strlen(s) <= max)
    return;
  size_t n = max;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
    n--;
  s[n] = '\0';
}

static void chunk(batch_system *s, work *w)
{
  result res[BATCH_CHUNK];
  bool have[BATCH_CHUNK];
  memset(res, 0, sizeof res);
  memset(have, 0, sizeof have);
  json_t *rows[BATCH_CHUNK] = {0};
  err e = {0};
  MDB_txn *txn;
  if (lmdb_read_begin(s->env, &txn, &e) == 0) {
    for (size_t i = 0; i < w->n; i++) {
      char k[64];
      size_t kl = batch__task_key(w->id, 't', w->idx[i], k);
      MDB_val kv = {kl, k}, v;
      if (mdb_get(txn, s->db_tasks, &kv, &v) == 0)
        rows[i] = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    }
    mdb_txn_abort(txn);
  }
  for (size_t i = 0; i < w->n; i++) {
    if (stopping(s))
      break;
    if (task_run(s, w->id, w->role, w->op, w->idx[i], rows[i], &res[i]) == 0)
      have[i] = true;
  }
  lmdb_ops ops = {0};
  uint64_t ok = 0, failed = 0;
  for (size_t i = 0; i < w->n; i++) {
    if (!have[i])
      continue;
    trim_utf8(res[i].msg, RESULT_MAX);
    json_t *v = json_pack("[s, i, s]", res[i].code, res[i].http, res[i].msg ? res[i].msg : "");
    if (v == NULL) /* a message that is not UTF-8 */
      v = json_pack("[s, i, s]", res[i].code, res[i].http, "");
    char *t = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    size_t tl = strlen(t);
    char *val = xmalloc(tl + 2);
    val[0] = res[i].ok ? 's' : 'f';
    memcpy(val + 1, t, tl + 1);
    free(t);
    char k[64];
    size_t kl = batch__task_key(w->id, 'r', w->idx[i], k);
    lmdb_ops_put_owned(&ops, s->db_tasks, k, kl, val, tl + 1);
    res[i].ok ? ok++ : failed++;
  }
  int rc = ops.n > 0 ? batch__commit(s, &ops, &e) : 0;
  lmdb_ops_release(&ops);
  pthread_mutex_lock(&s->mu);
  job *j = w->j;
  j->inflight--;
  for (size_t i = 0; i < w->n; i++) {
    if (have[i] && rc == 0) {
      j->done[w->idx[i] / 8] |= (uint8_t)(1u << (w->idx[i] % 8));
    } else if (w->idx[i] < j->next) {
      j->next = w->idx[i]; /* not committed: hand it out again */
    }
  }
  if (rc == 0) {
    j->ok += ok;
    j->failed += failed;
  }
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < w->n; i++) {
    free(res[i].msg);
    json_decref(rows[i]);
  }
}

/* ---- the report and the end ---- */

static void csv_field(buf *b, const char *s)
{
  if (strpbrk(s, ",\"\r\n") == NULL) {
    buf_puts(b, s);
    return;
  }
  buf_append(b, "\"", 1);
  for (const char *p = s; *p != '\0'; p++) {
    if (*p == '"')
      buf_append(b, "\"", 1);
    buf_append(b, p, 1);
  }
  buf_append(b, "\"", 1);
}

typedef struct report_file {
  store_writer *w;
  uint64_t rows;
  const char *status;          /* "succeeded" / "failed" */
} report_file;

static int put_text(batch_system *s, store_writer *w, const char *bucket, const char *key,
                    const char *type, char md5hex[33], err *e)
{
  uint8_t d[16];
  store_writer_md5(w, d);
  hex_encode(d, 16, md5hex);
  str_pair meta[1] = {{"content-type", type}};
  arena *a = arena_new();
  int rc = store_object_commit(w, bucket, key, md5hex, meta, 1, NULL, 0, a, NULL, e);
  arena_free(a);
  return rc;
}

/* Writes the completion report of job id (rec: its record) through the
 * store: PREFIX/job-ID/results/NAME.csv (one file per task status) and
 * PREFIX/job-ID/manifest.json. */
static int report_write(batch_system *s, const char *id, json_t *rec, uint64_t total, err *e)
{
  json_t *rep = json_object_get(rec, "Report");
  if (!json_is_true(json_object_get(rep, "Enabled")))
    return 0;
  char bb[80];
  const char *bucket = batch__bucket_of_arn(batch__str(rep, "Bucket"), bb, sizeof bb);
  const char *scope = batch__str(rep, "ReportScope");
  bool failed_only = scope != NULL && strcmp(scope, "FailedTasksOnly") == 0;
  arena *a = arena_new();
  const char *base = report_base(rep, id, a);
  report_file files[2] = {{NULL, 0, "succeeded"}, {NULL, 0, "failed"}};
  int rc = 0;
  for (int f = failed_only ? 1 : 0; f < 2 && rc == 0; f++) {
    rc = store_writer_new(s->st, &files[f].w, e);
    if (rc == 0)
      rc = store_writer_encrypt_default(s->st, files[f].w, bucket, NULL, e);
  }
  MDB_txn *txn = NULL;
  if (rc == 0)
    rc = lmdb_read_begin(s->env, &txn, e);
  buf line;
  buf_init(&line, 1u << 20);
  for (uint64_t i = 0; rc == 0 && i < total; i++) {
    char k[64];
    size_t kl = batch__task_key(id, 'r', i, k);
    MDB_val kv = {kl, k}, v;
    if (mdb_get(txn, s->db_tasks, &kv, &v) != 0 || v.mv_size < 2)
      continue; /* never ran (cancelled, or the job failed) */
    int f = ((const char *)v.mv_data)[0] == 's' ? 0 : 1;
    if (files[f].w == NULL)
      continue;
    json_t *r = json_loadb((const char *)v.mv_data + 1, v.mv_size - 1, 0, NULL);
    kl = batch__task_key(id, 't', i, k);
    kv = (MDB_val){kl, k};
    json_t *row = mdb_get(txn, s->db_tasks, &kv, &v) == 0
                      ? json_loadb(v.mv_data, v.mv_size, 0, NULL)
                      : NULL;
    buf_reset(&line);
    csv_field(&line, str_or_empty(json_string_value(json_array_get(row, 0))));
    buf_append(&line, ",", 1);
    csv_field(&line, str_or_empty(json_string_value(json_array_get(row, 3))));
    buf_append(&line, ",", 1);
    csv_field(&line, str_or_empty(json_string_value(json_array_get(row, 2))));
    buf_printf(&line, ",%s,", files[f].status);
    csv_field(&line, str_or_empty(json_string_value(json_array_get(r, 0))));
    buf_printf(&line, ",%d,", (int)json_integer_value(json_array_get(r, 1)));
    csv_field(&line, str_or_empty(json_string_value(json_array_get(r, 2))));
    buf_append(&line, "\n", 1);
    json_decref(r);
    json_decref(row);
    rc = store_writer_write(files[f].w, line.data, line.len, e);
    files[f].rows++;
  }
  buf_release(&line);
  if (txn != NULL)
    mdb_txn_abort(txn);
  json_t *results = json_array();
  for (int f = 0; f < 2 && rc == 0; f++) {
    if (files[f].w == NULL || files[f].rows == 0)
      continue;
    uint8_t h[SHA256_LEN];
    const char *seed = arena_sprintf(a, "%s/%s", id, files[f].status);
    sha256(seed, strlen(seed), h);
    char name[65];
    hex_encode(h, sizeof h, name);
    name[40] = '\0';
    const char *key = arena_sprintf(a, "%s/results/%s.csv", base, name);
    char md5hex[33];
    rc = put_text(s, files[f].w, bucket, key, "text/csv", md5hex, e);
    json_array_append_new(results,
                          json_pack("{s:s, s:s, s:s, s:s}", "TaskExecutionStatus",
                                    files[f].status, "Bucket", bucket, "MD5Checksum", md5hex,
                                    "Key", key));
  }
  for (int f = 0; f < 2; f++)
    store_writer_free(files[f].w);
  if (rc == 0) {
    char when[25];
    time_format_iso8601_ms(time_now_ms(), when);
    json_t *m = json_pack("{s:s, s:s, s:o, s:s}", "Format", "Report_CSV_20180820",
                          "ReportCreationDate", when, "Results", results, "ReportSchema",
                          "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, "
                          "ResultMessage");
    char *text = json_dumps(m, JSON_INDENT(4));
    json_decref(m);
    store_writer *w = NULL;
    rc = store_writer_new(s->st, &w, e);
    if (rc == 0)
      rc = store_writer_encrypt_default(s->st, w, bucket, NULL, e);
    if (rc == 0)
      rc = store_writer_write(w, text, strlen(text), e);
    char md5hex[33];
    if (rc == 0)
      rc = put_text(s, w, bucket, arena_sprintf(a, "%s/manifest.json", base), "application/json",
                    md5hex, e);
    store_writer_free(w);
    free(text);
  } else {
    json_decref(results);
  }
  arena_free(a);
  return rc;
}

/* Deletes a finished job's task rows and results (its report holds them). */
static void tasks_drop(batch_system *s, const char *id, uint64_t total)
{
  lmdb_ops ops = {0};
  err e = {0};
  for (uint64_t i = 0; i < total; i++) {
    char k[64];
    size_t kl = batch__task_key(id, 't', i, k);
    lmdb_ops_del(&ops, s->db_tasks, k, kl);
    kl = batch__task_key(id, 'r', i, k);
    lmdb_ops_del(&ops, s->db_tasks, k, kl);
    if (ops.n >= 2000 && batch__commit(s, &ops, &e) != 0)
      return;
  }
  if (ops.n > 0)
    batch__commit(s, &ops, &e);
}

static void finish(batch_system *s, work *w)
{
  pthread_mutex_lock(&s->mu);
  json_t *rec = json_deep_copy(w->j->rec);
  uint64_t total = w->j->total;
  bool failing = too_many_failures(w->j);
  pthread_mutex_unlock(&s->mu);
  err e = {0};
  int rc = report_write(s, w->id, rec, total, &e);
  json_decref(rec);
  pthread_mutex_lock(&s->mu);
  job *j = w->j;
  j->finishing = false;
  if (rc != 0 && s->stopping) {
    pthread_mutex_unlock(&s->mu);
    return;
  }
  active_stop(j);
  json_t *keep = json_object_get(j->rec, "_active_s");
  double active = json_real_value(keep);
  json_object_set_new(
      j->rec, "ProgressSummary",
      json_pack("{s:I, s:I, s:I, s:{s:I}}", "TotalNumberOfTasks", (json_int_t)j->total,
                "NumberOfTasksSucceeded", (json_int_t)j->ok, "NumberOfTasksFailed",
                (json_int_t)j->failed, "Timers", "ElapsedTimeInActiveSeconds", (json_int_t)active));
  if (rc != 0) {
    batch__fail_rec(j->rec, "ReportWriteFailed", e.msg);
  } else if (is(j->rec, "Cancelling")) {
    json_object_set_new(j->rec, "Status", json_string("Cancelled"));
    batch__set_time(j->rec, "TerminationDate");
  } else if (failing) {
    batch__fail_rec(j->rec, "TaskFailureThresholdExceeded",
                    "more than half of the tasks failed: the job stopped running tasks");
  } else {
    json_object_set_new(j->rec, "Status", json_string("Complete"));
    batch__set_time(j->rec, "TerminationDate");
  }
  rec_commit(s, j);
  job_drop(s, j);
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->mu);
  tasks_drop(s, w->id, total);
}

/* ---- the workers ---- */

static void *worker(void *arg)
{
  batch_system *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    work w;
    if (!pick(s, &w)) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_sec += IDLE_WAIT_MS / 1000;
      pthread_cond_timedwait(&s->cond, &s->mu, &ts);
      continue;
    }
    w.id = xstrdup(w.j->id);
    w.op = json_incref(json_object_get(w.j->rec, "Operation"));
    const char *role = batch__str(w.j->rec, "RoleArn");
    w.role = role != NULL ? xstrdup(role) : NULL;
    pthread_mutex_unlock(&s->mu);
    if (w.kind == W_PREPARE)
      prepare(s, &w);
    else if (w.kind == W_CHUNK)
      chunk(s, &w);
    else
      finish(s, &w);
    free(w.id);
    free(w.role);
    json_decref(w.op);
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int batch__workers_start(batch_system *s, err *e)
{
  s->workers = xcalloc(s->nworkers, sizeof *s->workers);
  for (unsigned i = 0; i < s->nworkers; i++) {
    if (pthread_create(&s->workers[i], NULL, worker, s) != 0) {
      s->nworkers = i;
      return err_set(e, ERR_INTERNAL, "cannot start the batch workers");
    }
  }
  return 0;
}

void batch__workers_stop(batch_system *s)
{
  pthread_mutex_lock(&s->mu);
  bool was = s->stopping;
  s->stopping = true;
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->mu);
  if (was || s->workers == NULL)
    return;
  for (unsigned i = 0; i < s->nworkers; i++)
    pthread_join(s->workers[i], NULL);
  free(s->workers);
  s->workers = NULL;
}
