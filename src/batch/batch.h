/* batch/batch.h -- S3 Batch Operations (DESIGN.md §1): jobs that run one
 * operation over every object of a manifest, with progress counts and a
 * completion report.
 *
 * Layout of DATA/batch/:
 *   meta/   LMDB environment: jobs (their DescribeJob record), client
 *           request tokens, and per job its task list (one manifest row a
 *           task) and the result of every task that finished
 *
 * Records cross this header as jansson objects in the shapes of the S3
 * Control API (CreateJob's request, DescribeJob's Job, ListJobs' items,
 * tags as [{"Key","Value"}]): api/s3control.c only moves them between XML
 * and JSON. Scalars of a request arrive as strings (XML text); records go
 * out with numbers and booleans typed.
 *
 * Durability: jobs run on the durable step discipline of flow (DESIGN.md
 * §1): every change is a change list of base/lmdb_env.h committed by the
 * group committer before it is visible. A job moves in steps (prepared,
 * confirmed, each chunk of tasks finished, reported); a chunk's results are
 * committed together, so after kill -9 a job resumes with the tasks whose
 * results were committed skipped. A task that ran but whose chunk was not
 * committed runs again: at most BATCH_CHUNK tasks per worker for the S3
 * operations, BATCH_LAMBDA_CONCURRENCY invocations for LambdaInvoke. Operations
 * should be idempotent, as on AWS, which also retries tasks.
 *
 * Threads: every function is safe to call from many threads.
 */
#ifndef TARN_BATCH_BATCH_H
#define TARN_BATCH_BATCH_H

#include "base/err.h"
#include "fn/fn.h"

#include <jansson.h>
#include <stddef.h>

#define BATCH_REGION "us-east-1"
#define BATCH_MAX_TASKS 1000000u        /* tasks of one job */
#define BATCH_MAX_MANIFEST (64u << 20)  /* bytes of a manifest (or inventory data file, unpacked) */
#define BATCH_MAX_TAGS 50               /* job tags (AWS: 50) */
#define BATCH_MAX_LIST 1000             /* ListJobs maxResults */
#define BATCH_CHUNK 32                  /* tasks a worker runs between commits (S3 operations) */
#define BATCH_LAMBDA_CONCURRENCY 4     /* invocations in flight for one job */
#define BATCH_LAMBDA_TRIES 4            /* a TemporaryFailure is retried up to this many runs */
#define BATCH_FAILURE_MIN 1000          /* tasks run before the failure threshold applies */

typedef struct batch_system batch_system;
struct store;

typedef struct batch_options {
  const char *data_dir;   /* DATA: batch/ goes under it */
  fn_system *fn;          /* LambdaInvoke's functions; NULL: those tasks fail */
  struct store *st;       /* the objects the jobs work on */
  unsigned workers;       /* task threads; 0: 16 (they mostly wait for commits,
                             which they then share) */
  /* Decides whether a job, acting as its role (CreateJob's RoleArn), may
     do action on resource (an ARN) before each task's operation touches an
     object or calls a function: 0, or an error (ERR_DENIED, IAM's message)
     that fails the task with AccessDenied (HTTP 403) in the completion
     report; the job goes on. NULL: every operation is allowed. */
  int (*authorize)(void *ctx, const char *role_arn, const char *action, const char *resource,
                   err *e);
  void *authorize_ctx;
} batch_options;

/* Opens DATA/batch (creating it). Nothing runs until batch_system_start. */
int batch_system_open(const batch_options *o, batch_system **out, err *e);
/* Starts the workers and resumes every job left unfinished. */
int batch_system_start(batch_system *s, err *e);
/* Stops the workers; jobs stay committed where they are. Idempotent. */
void batch_system_stop(batch_system *s);
/* Accepts NULL; returns NULL. */
batch_system *batch_system_close(batch_system *s);

/* Creates a job from CreateJob's request (req: its members as JSON, see
 * above). A ClientRequestToken already used by account returns that job
 * when the request is the same, ERR_CONFLICT (IdempotencyException) when
 * it differs. out: {"JobId"}. Errors: ERR_INVALID with the field at fault,
 * ERR_NOT_IMPLEMENTED for operations tarn cannot run; nothing is created. */
int batch_job_create(batch_system *s, const char *account, json_t *req, json_t **out, err *e);
/* DescribeJob's Job. ERR_NOT_FOUND. */
int batch_job_get(batch_system *s, const char *account, const char *id, json_t **out, err *e);
/* ListJobs' items (JobListDescriptor) of account, after the token, at most
 * max, with a status in statuses (array of strings; NULL or empty: all).
 * *next (malloc'd) is the token for more, or NULL. */
int batch_job_list(batch_system *s, const char *account, json_t *statuses, const char *after,
                   size_t max, json_t **items, char **next, err *e);
/* Errors: ERR_NOT_FOUND, ERR_INVALID (priority outside 0..2147483647). */
int batch_job_priority(batch_system *s, const char *account, const char *id, long long priority,
                       err *e);
/* Confirms (requested "Ready": a Suspended job) or cancels ("Cancelled")
 * a job. out: {"JobId","Status","StatusUpdateReason"}. Errors:
 * ERR_NOT_FOUND, ERR_INVALID, ERR_CONFLICT (JobStatusException: the job's
 * status does not allow it). */
int batch_job_status(batch_system *s, const char *account, const char *id,
                     const char *requested, const char *reason, json_t **out, err *e);
/* A job's tags [{"Key","Value"}]; set replaces them (an empty array
 * removes them). Errors: ERR_NOT_FOUND, ERR_INVALID, ERR_LIMIT_EXCEEDED
 * (TooManyTagsException). */
int batch_job_tags_get(batch_system *s, const char *account, const char *id, json_t **tags,
                       err *e);
int batch_job_tags_set(batch_system *s, const char *account, const char *id, json_t *tags,
                       err *e);

#endif
