/* flow/internal.h -- what the files of the flow part share: the system, the
 * live executions and their runs, the change list committed per step.
 *
 * Lock order: exec_rt.mu, then flow_system.mu, then flow_system.qmu. The
 * fn part's completion callback takes only qmu (it runs under fn's lock).
 */
#ifndef TARN_FLOW_INTERNAL_H
#define TARN_FLOW_INTERNAL_H

#include "flow/flow.h"

#include "base/buf.h"
#include "athena/athena.h"
#include "base/lmdb_env.h"
#include "base/mem.h"
#include "kv/kv.h"
#include "queue/queue.h"
#include "stream/stream.h"
#include "store/store.h"

#include <pthread.h>

typedef struct exec_rt exec_rt;

/* One thread of control of an execution: the execution itself (its root
 * run) or one branch of a Parallel or iteration of a Map. Its committed
 * position is rec (also in the "runs" database under id). */
typedef struct run {
  char *id;                 /* EXEC_ARN "#" for the root; PARENT "/" SLOT for children */
  json_t *rec;              /* the committed record (see engine.c) */
  exec_rt *x;
  struct run *next;         /* in x->runs */
  /* the task in flight, guarded by flow_system.qmu */
  fn_invocation *inv;       /* fn's handle while the function runs */
  char *payload;            /* what the function was given (must outlive inv) */
  bool invoked;             /* started by this process (else lost in a crash) */
  bool has_result;          /* the task ended: result_* are set */
  bool fn_error;            /* the function failed (result is its error document) */
  int result_rc;            /* 0, or the error that prevented the invocation */
  char *result;             /* the answer (JSON text), malloc'd */
  char *result_error;       /* for a failure reported by SendTaskFailure */
  char *result_cause;
} run;

/* A live (running) execution. */
struct exec_rt {
  char *arn;
  pthread_mutex_t mu;       /* one step at a time for all its runs */
  int refs;                 /* queue entries and lookups holding it (flow_system.qmu) */
  json_t *def;              /* the definition it started with */
  json_t *info;             /* the execution record, as committed */
  json_t *input;            /* its input, parsed (for $$.Execution.Input), or NULL */
  uint64_t next_event;      /* the next history event id */
  run *runs;
  bool finished;            /* no more steps */
  bool listed;              /* in flow_system.execs */
  flow_exec_done done;      /* StartSyncExecution's waiter, or NULL */
  void *done_ctx;
  exec_rt *next;            /* in flow_system.execs */
};

typedef struct qitem {
  exec_rt *x;               /* holds a reference */
  char *run_id;
  int64_t due;              /* timers: wall clock ms */
  struct qitem *next;
} qitem;

struct flow_system {
  char *dir;
  MDB_env *env;
  MDB_dbi db_machines;      /* machine ARN -> record */
  MDB_dbi db_execs;         /* execution ARN -> record */
  MDB_dbi db_hist;          /* execution ARN \0 be64(id) -> event */
  MDB_dbi db_runs;          /* run id -> run record */
  MDB_dbi db_mapdata;       /* RUN!i/SLOT -> a Map item not started yet,
                               RUN!r/SLOT -> a branch's or iteration's result */
  MDB_dbi db_versions;      /* MACHINE_ARN "#" %010u -> version (versions.c) */
  MDB_dbi db_aliases;       /* alias ARN -> alias (versions.c) */
  MDB_dbi db_activities;    /* activity ARN -> activity (activities.c) */
  pthread_mutex_t vmu;      /* serialises version and alias writes */
  struct flow_acts *acts;   /* activity tasks and polls (activities.c) */
  lmdb_committer committer;
  fn_system *fn;
  queue_system *q;          /* may be NULL */
  store *st;                /* may be NULL */
  athena *athena;           /* may be NULL */
  kv *kv;                   /* may be NULL */
  stream_system *streams;   /* may be NULL */
  int (*authorize)(void *ctx, const char *role_arn, const char *action, const char *resource,
                   err *e);   /* may be NULL (permission.c) */
  void *authorize_ctx;
  pthread_mutex_t mu;       /* guards execs, tokens */
  exec_rt *execs;           /* live executions */
  json_t *tokens;           /* task token -> [exec ARN, run id] */
  pthread_mutex_t qmu;      /* guards the queues below */
  pthread_cond_t qcond;     /* workers wait: ready work or stop */
  pthread_cond_t tcond;     /* the timer waits: an earlier timer or stop */
  qitem *ready;             /* FIFO */
  qitem *ready_tail;
  qitem *timers;            /* sorted by due */
  bool stopping;
  bool started;
  unsigned nworkers;
  pthread_t *workers;
  pthread_t timer;
};

/* paths and rules (path.c, choice.c) */
bool flow__path_valid(const char *text, bool reference);
bool flow__intrinsic_valid(const char *expr);
bool flow__choice_operator(const char *op, int *type, int *rel, bool *path);
extern const char *const flow__choice_tests[];

/* ---- a step's writes (store.c) ---- */

/* A step's writes: base/lmdb_env.h's change list (puts of JSON records,
 * deletes), committed in one nested transaction of a group commit. */
typedef lmdb_ops fchange;

void flow__change_put(fchange *c, MDB_dbi dbi, const void *key, size_t klen, json_t *val);
void flow__change_del(fchange *c, MDB_dbi dbi, const void *key, size_t klen);
void flow__change_release(fchange *c);
int flow__commit(flow_system *s, fchange *c, err *e);
/* A record by key (a new reference), or FLOW_ERR_* / ERR_NOT_FOUND. */
int flow__get(flow_system *s, MDB_dbi dbi, const char *key, json_t **out, err *e);
/* RUN!KIND/SLOT (zero-padded, so slots sort). */
void flow__slot_key(const char *run_id, char kind, size_t slot, char *out, size_t cap);
/* Every key (as strings) and value under prefix, in key order. */
int flow__scan(flow_system *s, MDB_dbi dbi, const char *prefix, json_t **keys, json_t **vals,
               err *e);
/* A copy of a record without its internal ("_") members. */
json_t *flow__public_copy(json_t *rec);
/* The history key of an event. */
size_t flow__hist_key(const char *arn, uint64_t id, char *out, size_t cap);

double flow__now_epoch(void);

/* ---- DynamoDB, Kinesis, Firehose integrations (integrations_sdk.c) ---- */
bool flow__sdk_known(const char *resource);
int flow__sdk_call(flow_system *s, const char *resource, json_t *params, char **result,
                   char **error, char **cause);
/* An AWS SDK integration's error as AWS names it: "SQS.QueueDoesNotExist"
 * becomes "Sqs.QueueDoesNotExistException" for aws-sdk:sqs:... */
void flow__sdk_error_name(const char *resource, char **error);

/* ---- service integrations (service.c) ---- */
/* A Task's failure: *error and *cause (malloc'd copies); returns -1. */
int flow__task_fail(char **error, char **cause, const char *name, const char *msg);
/* A part's error e as SVC.CODE (S3.NoSuchBucket, SQS.QueueDoesNotExist). */
int flow__service_error(char **error, char **cause, const char *svc, const err *e);
bool flow__service_known(const char *resource);
/* Calls the service of a Task resource with params: 0 and *result (JSON
 * text), or -1 with *error and *cause (all malloc'd). */
/* Asks the authorizer whether the execution acting as role_arn may make
 * the call of a Task on resource with params: 0, or -1 with the Task's
 * error and cause (permission.c). */
int flow__task_authorize(flow_system *s, const char *role_arn, const char *resource,
                         json_t *params, char **error, char **cause);
int flow__service_call(flow_system *s, const char *resource, json_t *params, char **result,
                       char **error, char **cause);
/* athena:startQueryExecution.sync: the query id's state. 1 while it is
 * queued or running; 0 when it succeeded (*result: GetQueryExecution's
 * answer); -1 when it failed or was cancelled (*error States.TaskFailed,
 * *cause that answer), or cannot be read. All malloc'd. */
int flow__athena_poll(flow_system *s, const char *id, char **result, char **error,
                      char **cause);

/* Distributed Map: the items of an ItemReader (params: its evaluated
 * Parameters, Bucket and Key; ReaderConfig InputType JSON or CSV, MaxItems),
 * and the ResultWriter's files under Bucket/Prefix (manifest.json,
 * SUCCEEDED_0.json, FAILED_0.json); *out is the Map's result. 0, or -1 with
 * *error and *cause (malloc'd). */
int flow__items_read(flow_system *s, json_t *reader, json_t *params, json_t **items,
                     char **error, char **cause);
int flow__results_write(flow_system *s, json_t *params, const char *map_run, json_t *ok,
                        json_t *failed, json_t **out, char **error, char **cause);

/* ---- steps (step.c), committed by engine.c ---- */

enum { EF_READY, EF_TIMER, EF_INVOKE, EF_TOKEN_ADD, EF_TOKEN_DEL, EF_DONE };

typedef struct touch {
  run *r;            /* NULL for a run made by this step */
  char *id;
  json_t *rec;       /* the new record, NULL when the run ends */
} touch;

typedef struct effect {
  int kind;
  char *id;          /* run id, or token */
  int64_t due;
} effect;

typedef struct stepper {
  flow_system *s;
  exec_rt *x;
  fchange ch;
  touch **t;         /* each touch stays where it is while more are added */
  size_t nt;
  effect *ef;
  size_t nef;
  json_t *info;      /* a copy of the execution record, when changed */
  bool finished;     /* the execution ended in this step */
} stepper;

enum outcome { GO_ON, STOP };

/* What kind of Task a resource is. */
typedef struct task_kind {
  bool plain;        /* a function ARN as Resource */
  bool token;        /* .waitForTaskToken */
  bool lambda;       /* lambda:invoke (or plain) */
  bool sync;         /* .sync, .sync:2: the task ends with the execution it starts */
  bool query;        /* athena:startQueryExecution.sync: ... with the query it starts */
  bool activity;     /* an activity ARN: waits for a worker (GetActivityTask) */
  const char *short_name; /* "invoke", "invoke.waitForTaskToken" */
} task_kind;

/* The run's record copy in this step (made on first use). */
touch *flow__touch_of(stepper *st, run *r);
/* A run this step makes (rec taken). */
touch *flow__touch_new(stepper *st, const char *id, json_t *rec);
void flow__effect_add(stepper *st, int kind, const char *id, int64_t due);
/* Appends a history event (details taken; key NULL for none). */
void flow__emit(stepper *st, touch *t, const char *type, const char *key, json_t *details);
/* Compact JSON text, malloc'd. */
char *flow__dump(json_t *v);
const char *flow__rec_str(json_t *rec, const char *k);
/* The States object a run's record works in. */
json_t *flow__scope_states(exec_rt *x, json_t *rec);
/* Ends the execution (status SUCCEEDED with output, else error/cause);
 * every run goes. t may be NULL. */
void flow__exec_end(stepper *st, touch *t, const char *status, json_t *output,
                    const char *error, const char *cause);
/* One step of run r (its touch t): GO_ON when it can go on in memory. */
enum outcome flow__step_once(stepper *st, touch *t, run *r);
task_kind flow__kind_of(const char *res);
/* Sets the deadline key ("due", "hbdue") seconds from now, with a timer. */
void flow__deadline_set(stepper *st, touch *t, const char *key, json_t *seconds);
/* A live run by id (x->mu held). */
run *flow__run_find(exec_rt *x, const char *id);

/* ---- versions and aliases (versions.c) ---- */

/* DescribeStateMachine's shape for a version ARN. */
int flow__version_get(flow_system *s, const char *arn, json_t **out, err *e);
/* Adds the deletes of a machine's versions and aliases to c. */
void flow__versions_drop(flow_system *s, const char *machine_arn, fchange *c);

/* ---- activities (activities.c) ---- */

int flow__acts_open(flow_system *s);
void flow__acts_stop(flow_system *s);
void flow__acts_close(flow_system *s);
bool flow__activity_arn(const char *res);
/* Run r's Task (its "token" record committed) waits for a worker of the
 * activity res: 0, or -1 with *error and *cause (malloc'd). */
int flow__activity_offer(flow_system *s, run *r, const char *res, char **error, char **cause);
/* After a restart: offers again every run waiting for an activity worker
 * that no worker took before the crash. */
void flow__activity_resume(flow_system *s);

/* ---- the engine (engine.c) ---- */
/* Commits a step made outside engine.c (x->mu held) and applies it. */
int flow__stepper_commit(stepper *st, err *e);
void flow__stepper_release(stepper *st);
/* A live execution by ARN with a reference (flow__exec_unref), or NULL. */
exec_rt *flow__exec_find(flow_system *s, const char *arn);
void flow__exec_unref(flow_system *s, exec_rt *x);
int flow__engine_resume(flow_system *s, err *e);
/* flow_execution_start, for a .sync Task: parent {"exec", "run"} is told
 * (its run stepped) when the execution ends. */
int flow__execution_start(flow_system *s, const char *machine_arn, const char *name,
                          const char *input, json_t *parent, flow_exec_done done,
                          void *done_ctx, json_t **out, err *e);
/* Frees a live execution and its runs (no invocation may be running). */
void flow__exec_free(exec_rt *x);
void flow__engine_stop(flow_system *s);
/* Drops every queued step and timer (the runs stay committed). */
void flow__queues_drain(flow_system *s);

#endif
