/* flow/flow.h -- workflows (DESIGN.md §1: Step Functions): state machines
 * written in the Amazon States Language, their executions, run by a durable
 * step engine, and each execution's history.
 *
 * Layout of DATA/flow/:
 *   meta/   LMDB environment: machines, executions, history events, the
 *           live "runs" (the committed position of every running execution
 *           and of every branch of its Parallel and Map states), versions,
 *           aliases and activities
 *
 * Records cross this header as jansson objects in the shapes of the Step
 * Functions API (DescribeStateMachine, DescribeExecution, history events):
 * those shapes are what this part stores, so api/states.c only moves them
 * to and from the wire.
 *
 * Durability: a call that changes state returns 0 once the change is
 * committed (group commit). An execution moves in steps; each step is
 * committed, with its history events, before anything it does is visible
 * (a function invoked, a Wait timed, a result reported). After a crash,
 * flow_system_start resumes every running execution from its last step: a
 * Wait keeps its deadline, a Task that was in flight fails with
 * States.TaskFailed (so a Retry decides whether it runs again; it is never
 * run to completion twice otherwise). An athena:startQueryExecution.sync
 * Task keeps its query's id in its committed record and goes on polling it;
 * Athena fails the queries a crash cut short, so that Task fails with
 * States.TaskFailed and the query's execution as Cause.
 *
 * Threads: every function is safe to call from many threads.
 */
#ifndef TARN_FLOW_FLOW_H
#define TARN_FLOW_FLOW_H

#include "base/err.h"
#include "fn/fn.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLOW_ACCOUNT_ID "000000000000"
#define FLOW_REGION "us-east-1"
#define FLOW_MAX_DEFINITION (1u << 20)   /* bytes of a definition (AWS: 1 MB) */
#define FLOW_MAX_PAYLOAD 262144u         /* an input, output or task result (AWS: 256 KiB) */
#define FLOW_MAX_NAME 80
#define FLOW_MAX_ARN 256                 /* characters of an ARN a client gives (AWS's limit) */
#define FLOW_MAX_STATES 10000            /* states in one definition, all levels */
#define FLOW_MAX_HISTORY 25000           /* events of one execution (AWS's quota) */
#define FLOW_MAX_BRANCHES 1000           /* Parallel branches or inline Map items */
#define FLOW_MAX_MACHINES 10000
#define FLOW_MAX_MAP_ITEMS 40000         /* items of one Map (inline or read from S3) */
#define FLOW_MAX_ITEM_READER (64u << 20) /* bytes of an ItemReader's object */

/* Errors of this part (api/states.c names them for the wire). */
#define FLOW_ERR_NO_MACHINE (-1301)       /* StateMachineDoesNotExist */
#define FLOW_ERR_MACHINE_EXISTS (-1302)   /* StateMachineAlreadyExists */
#define FLOW_ERR_DEFINITION (-1303)       /* InvalidDefinition */
#define FLOW_ERR_ARN (-1304)              /* InvalidArn */
#define FLOW_ERR_NAME (-1305)             /* InvalidName */
#define FLOW_ERR_NO_EXECUTION (-1306)     /* ExecutionDoesNotExist */
#define FLOW_ERR_EXECUTION_EXISTS (-1307) /* ExecutionAlreadyExists */
#define FLOW_ERR_INPUT (-1308)            /* InvalidExecutionInput */
#define FLOW_ERR_TOKEN (-1309)            /* InvalidToken */
#define FLOW_ERR_TASK_GONE (-1310)        /* TaskDoesNotExist */
#define FLOW_ERR_TYPE (-1311)             /* StateMachineTypeNotSupported */
#define FLOW_ERR_OUTPUT (-1312)           /* InvalidOutput */
#define FLOW_ERR_RUNTIME (-1313)          /* inside an execution: States.Runtime */
#define FLOW_ERR_INTRINSIC (-1314)        /* inside an execution: States.IntrinsicFailure */
#define FLOW_ERR_NOT_FOUND (-1320)        /* ResourceNotFound (a version, an alias) */
#define FLOW_ERR_CONFLICT (-1321)         /* ConflictException */
#define FLOW_ERR_QUOTA (-1322)            /* ServiceQuotaExceededException */
#define FLOW_ERR_NO_ACTIVITY (-1323)      /* ActivityDoesNotExist */

typedef struct flow_system flow_system;

struct queue_system;
struct store;
struct athena;
struct kv;
struct stream_system;

typedef struct flow_options {
  const char *data_dir;   /* DATA: flow/ goes under it */
  fn_system *fn;          /* Task states invoke functions here; NULL: they fail */
  struct queue_system *q; /* sqs:sendMessage, sns:publish; NULL: they fail */
  struct store *st;       /* s3:getObject, s3:putObject; NULL: they fail */
  struct athena *athena;  /* athena:startQueryExecution and friends; NULL: they fail */
  struct kv *kv;          /* dynamodb:..., aws-sdk:dynamodb:...; NULL: they fail */
  struct stream_system *streams; /* aws-sdk:kinesis:putRecord, aws-sdk:firehose:putRecord */
  unsigned workers;       /* step threads; 0: 4 */
  /* Decides whether an execution, acting as its machine's role, may do
     action on resource (an ARN) before a Task calls a function or a
     service: 0, or an error (ERR_DENIED, IAM's message) that fails the Task
     with SERVICE.AccessDeniedException. NULL: every call is allowed. */
  int (*authorize)(void *ctx, const char *role_arn, const char *action, const char *resource,
                   err *e);
  void *authorize_ctx;
} flow_options;

/* Opens DATA/flow (creating it). Nothing runs until flow_system_start. */
int flow_system_open(const flow_options *o, flow_system **out, err *e);
/* Starts the step threads and the timer, and resumes every execution left
 * running by a previous run of tarn. */
int flow_system_start(flow_system *s, err *e);
/* Stops the threads; running executions stay committed where they are.
 * Idempotent. */
void flow_system_stop(flow_system *s);
/* Accepts NULL; returns NULL. */
flow_system *flow_system_close(flow_system *s);

/* ---- definitions (flow/asl.c) ---- */

/* Checks a definition (JSON text of len bytes) against the States Language:
 * FLOW_ERR_DEFINITION with AWS's wording and the path of the first problem
 * ("... at /States/Foo/Next"). On success *out (when not NULL) is the parsed
 * definition (the caller's reference). */
int flow_definition_check(const char *text, size_t len, json_t **out, err *e);

/* ---- state machines ---- */

typedef struct flow_machine_params {
  const char *name;
  const char *definition;
  const char *role_arn;
  const char *type;          /* "STANDARD" (NULL) or "EXPRESS" */
  json_t *tags;              /* [{"key","value"}], or NULL */
} flow_machine_params;

/* out: DescribeStateMachine's shape (the caller's reference). */
int flow_machine_create(flow_system *s, const flow_machine_params *p, json_t **out, err *e);
int flow_machine_get(flow_system *s, const char *arn, json_t **out, err *e);
/* NULL definition or role keeps them; out: {"updateDate","revisionId"}. */
int flow_machine_update(flow_system *s, const char *arn, const char *definition,
                        const char *role_arn, json_t **out, err *e);
int flow_machine_delete(flow_system *s, const char *arn, err *e);
/* ListStateMachines' items after the token, at most max. */
int flow_machine_list(flow_system *s, const char *after, size_t max, json_t **items,
                      const char **next, err *e);
/* Tags of a machine or an activity: add/replace, remove by key, list. */
int flow_machine_tag(flow_system *s, const char *arn, json_t *tags, json_t *remove_keys,
                     json_t **out, err *e);

/* ---- versions and aliases (flow/versions.c) ----
 * A version is an immutable copy of a machine's definition and role,
 * "MACHINE_ARN:N"; an alias "MACHINE_ARN:NAME" routes starts to one or two
 * versions by weight. flow_machine_get takes a version ARN too, and
 * flow_execution_start both (the execution records stateMachineVersionArn
 * and stateMachineAliasArn). Deleting a machine deletes them. */

/* True for a version or alias ARN ("...:stateMachine:NAME:QUALIFIER"). */
bool flow_arn_qualified(const char *arn);
/* What a start with arn runs: DescribeStateMachine's shape with the base
 * machine's ARN as stateMachineArn, plus stateMachineVersionArn (a version,
 * or an alias's pick by weight) and stateMachineAliasArn when qualified. */
int flow_machine_resolve(flow_system *s, const char *arn, json_t **out, err *e);
/* PublishStateMachineVersion: out {"stateMachineVersionArn",
 * "creationDate"}; the version of the current revision when there is one
 * already. revision_id (NULL: any) must be the current one
 * (FLOW_ERR_CONFLICT otherwise). */
int flow_version_publish(flow_system *s, const char *machine_arn, const char *revision_id,
                         const char *description, json_t **out, err *e);
/* Newest first: [{"stateMachineVersionArn", "creationDate"}]. */
int flow_version_list(flow_system *s, const char *machine_arn, const char *after, size_t max,
                      json_t **items, const char **next, err *e);
/* FLOW_ERR_CONFLICT while an alias routes to it; gone already: 0. */
int flow_version_delete(flow_system *s, const char *version_arn, err *e);
/* routing: [{"stateMachineVersionArn", "weight"}], 1 or 2 versions of one
 * machine, weights adding up to 100. out {"stateMachineAliasArn",
 * "creationDate"}; the same alias again is idempotent. */
int flow_alias_create(flow_system *s, const char *name, const char *description,
                      json_t *routing, json_t **out, err *e);
/* DescribeStateMachineAlias's shape. */
int flow_alias_get(flow_system *s, const char *arn, json_t **out, err *e);
/* NULL keeps a member; out {"updateDate"}. */
int flow_alias_update(flow_system *s, const char *arn, const char *description, json_t *routing,
                      json_t **out, err *e);
int flow_alias_delete(flow_system *s, const char *arn, err *e);
/* [{"stateMachineAliasArn", "creationDate"}]. */
int flow_alias_list(flow_system *s, const char *machine_arn, const char *after, size_t max,
                    json_t **items, const char **next, err *e);

/* ---- activities (flow/activities.c) ----
 * A Task whose Resource is an activity ARN waits until a worker takes it
 * with GetActivityTask, then for SendTaskSuccess/Failure with its token
 * (HeartbeatSeconds and TimeoutSeconds hold as for .waitForTaskToken). A
 * task handed to a worker is recorded (ActivityStarted) before the worker
 * gets it, so after a crash it is handed to nobody else; one not yet
 * handed out is offered again. */

/* out: {"activityArn", "creationDate"}; the same name again is idempotent.
 * tags: [{"key", "value"}] or NULL. */
int flow_activity_create(flow_system *s, const char *name, json_t *tags, json_t **out, err *e);
/* The activity's record (with internal members), or FLOW_ERR_NO_ACTIVITY. */
int flow_activity_get(flow_system *s, const char *arn, json_t **out, err *e);
/* DescribeActivity: {"activityArn", "name", "creationDate"}. */
int flow_activity_describe(flow_system *s, const char *arn, json_t **out, err *e);
int flow_activity_delete(flow_system *s, const char *arn, err *e);
int flow_activity_list(flow_system *s, const char *after, size_t max, json_t **items,
                       const char **next, err *e);

typedef struct flow_activity_poll flow_activity_poll;
/* Called once per started poll, from a thread of this part holding none
 * of its locks: task {"taskToken", "input"} (borrowed for the call), or
 * NULL when none came within the wait or tarn stops. */
typedef void (*flow_activity_done)(void *ctx, json_t *task);
/* Asked (on that thread, no lock of this part held) just before a task is
 * handed to the poll: true when nobody would receive it (the worker went
 * away); the poll then ends with done(ctx, NULL) and the task stays. */
typedef bool (*flow_activity_gone)(void *ctx);
/* GetActivityTask without a thread: done is called when a task of the
 * activity is handed to this worker or wait_ms pass, possibly before this
 * returns, unless flow_activity_poll_cancel returns true first. gone may
 * be NULL. Errors (FLOW_ERR_NO_ACTIVITY) are returned and done is never
 * called. */
int flow_activity_poll_start(flow_system *s, const char *arn, const char *worker, int wait_ms,
                             flow_activity_done done, flow_activity_gone gone, void *ctx,
                             flow_activity_poll **poll, err *e);
/* true: done will never be called. false: it has run or is about to.
 * Never waits for done. */
bool flow_activity_poll_cancel(flow_system *s, flow_activity_poll *poll);

/* ---- executions ---- */

/* Called once when an execution ends, with DescribeExecution's shape
 * (borrowed for the call), from a step thread; do little. exec is NULL when
 * tarn stops first (the execution goes on after the restart). */
typedef void (*flow_exec_done)(void *ctx, json_t *exec);

/* Starts an execution of machine_arn (a name defaults to a UUID) with input
 * (JSON text, NULL for "{}"). out: {"executionArn","startDate"}. done, when
 * not NULL, is called at the end (StartSyncExecution), unless
 * flow_execution_forget comes first. */
int flow_execution_start(flow_system *s, const char *machine_arn, const char *name,
                         const char *input, flow_exec_done done, void *done_ctx, json_t **out,
                         err *e);
/* The caller of a synchronous start went away: done will not be called. */
void flow_execution_forget(flow_system *s, const char *exec_arn, void *done_ctx);
int flow_execution_get(flow_system *s, const char *arn, json_t **out, err *e);
/* Stops a running execution (ABORTED with error and cause, either NULL);
 * out: {"stopDate"}. */
int flow_execution_stop(flow_system *s, const char *arn, const char *error, const char *cause,
                        json_t **out, err *e);
/* Executions of a machine, newest first; status filter may be NULL. */
int flow_execution_list(flow_system *s, const char *machine_arn, const char *status,
                        const char *after, size_t max, json_t **items, const char **next,
                        err *e);
/* History events after the token (ids ascending, or descending with
 * reverse), at most max. */
int flow_execution_history(flow_system *s, const char *arn, bool reverse, const char *after,
                           size_t max, json_t **events, const char **next, err *e);

/* ---- task tokens (.waitForTaskToken) ---- */

/* output: JSON text. */
int flow_task_success(flow_system *s, const char *token, const char *output, err *e);
int flow_task_failure(flow_system *s, const char *token, const char *error, const char *cause,
                      err *e);
int flow_task_heartbeat(flow_system *s, const char *token, err *e);

/* ---- the pieces of the States Language (for tests and fuzzing) ---- */

/* Reads path ($..., or $$... from ctx) from input: FLOW_ERR_RUNTIME when
 * it matches nothing. *out is a new reference. */
int flow_path_get(const char *path, json_t *input, json_t *ctx, json_t **out, err *e);
/* Places value at reference path in doc (ResultPath): *out is a new
 * reference (doc is not changed; "$" gives value itself). */
int flow_path_set(json_t *doc, const char *path, json_t *value, json_t **out, err *e);
/* Parameters / ResultSelector: keys ending ".$" take a path or an
 * intrinsic function's result. *out is a new reference. */
int flow_template_eval(json_t *tmpl, json_t *input, json_t *ctx, json_t **out, err *e);
/* An intrinsic function call, "States.Format('{}', $.x)". */
int flow_intrinsic_eval(const char *expr, json_t *input, json_t *ctx, json_t **out, err *e);
/* A Choice rule against input: *match. */
int flow_choice_eval(json_t *rule, json_t *input, json_t *ctx, bool *match, err *e);

#endif
