/* batch/internal.h -- what the files of the batch part share: the system,
 * the live jobs, the keys of the task database.
 *
 * Lock order: batch_system.mu only (it guards every live job); no store,
 * fn or commit call is made while holding it, except the job record
 * snapshot taken for a commit.
 */
#ifndef TARN_BATCH_INTERNAL_H
#define TARN_BATCH_INTERNAL_H

#include "batch/batch.h"

#include "base/lmdb_env.h"
#include "store/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* A job not yet ended, in memory. Its record (rec) is the DescribeJob
 * shape plus internal "_" members, as last committed or about to be. */
typedef struct job {
  char *id;
  json_t *rec;              /* owned */
  uint64_t total;           /* tasks in the manifest (after preparation) */
  uint8_t *done;            /* bit per task: its result is committed */
  uint64_t next;            /* lowest index maybe not handed out yet */
  uint64_t ok, failed;      /* counts of committed results */
  unsigned inflight;        /* chunks being run */
  bool preparing;           /* a worker reads the manifest */
  bool finishing;           /* a worker writes the report and the end */
  int64_t active_since_ms;  /* when it became Active in this process, or 0 */
  struct job *next_job;
} job;

struct batch_system {
  char *dir;
  MDB_env *env;
  MDB_dbi db_jobs;          /* job id -> record (JSON) */
  MDB_dbi db_tokens;        /* account \0 ClientRequestToken -> job id */
  MDB_dbi db_tasks;         /* id 't' be64(i) -> task; id 'r' be64(i) -> result */
  lmdb_committer committer;
  fn_system *fn;
  store *st;
  int (*authorize)(void *ctx, const char *role_arn, const char *action, const char *resource,
                   err *e);         /* batch_options.authorize, or NULL */
  void *authorize_ctx;
  pthread_mutex_t mu;       /* guards jobs and the flags below */
  pthread_cond_t cond;      /* workers wait: work or stop */
  job *jobs;                /* live jobs */
  bool stopping;
  bool started;
  unsigned nworkers;
  pthread_t *workers;
};

static inline const char *str_or_empty(const char *s)
{
  return s != NULL ? s : "";
}

/* A live job over rec (taken); batch__job_free frees it (not listed). */
job *batch__job_new(json_t *rec);
void batch__job_free(job *j);

/* Key of task (kind 't') or result ('r') i of job id: out needs 64 bytes. */
size_t batch__task_key(const char *id, char kind, uint64_t i, char *out);
/* Commits ops (released either way). */
int batch__commit(batch_system *s, lmdb_ops *ops, err *e);
/* Adds a put of rec (its JSON text) under the job's id. */
void batch__put_rec(batch_system *s, lmdb_ops *ops, const char *id, json_t *rec);
/* A member's string, or NULL. */
const char *batch__str(json_t *o, const char *k);
/* "bucket" of "arn:aws:s3:::bucket" (or of a bare name), in buf; NULL when
 * it is not one. */
const char *batch__bucket_of_arn(const char *arn, char *out, size_t cap);
/* Adds or replaces FailureReasons and Status Failed. */
void batch__fail_rec(json_t *rec, const char *code, const char *reason);
void batch__set_time(json_t *rec, const char *k);

/* ---- manifests (manifest.c) ---- */

/* Reads the job's manifest (or generates it) and commits its tasks;
 * *total gets their count, *desc (or NULL) the GeneratedManifestDescriptor
 * of a generated manifest written out. Errors: a failure reason in e (the
 * job fails with code *fcode). */
int batch__manifest_load(batch_system *s, const char *id, json_t *rec, uint64_t *total,
                         json_t **desc, const char **fcode, err *e);
/* Checks a CreateJob's Manifest / ManifestGenerator before anything is
 * created. */
int batch__manifest_check(batch_system *s, json_t *req, err *e);

/* ---- running (run.c) ---- */

int batch__workers_start(batch_system *s, err *e);
void batch__workers_stop(batch_system *s);
/* Checks a CreateJob's Operation. */
int batch__operation_check(batch_system *s, json_t *op, err *e);

#endif
