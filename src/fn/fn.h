/* fn/fn.h -- functions (DESIGN.md §5): the registry of functions, versions
 * and aliases, their code, the scheduler that keeps sandboxed instances warm,
 * invocation (synchronous, asynchronous through a durable queue, dry run),
 * the Lambda Runtime API the instances talk to, their logs and metrics.
 *
 * Layout of DATA/fn/:
 *   meta/          LMDB environment: functions, versions, aliases, the
 *                  asynchronous invocation queue
 *   code/<hex>/    extracted code, named by the SHA-256 of its zip; shared
 *                  by every version and layer version that has that code;
 *                  read-only to sandboxes
 *   logs/<name>.log (and .log.1): each function's log, bounded
 *
 * Threads: every function here is safe to call from many threads at once.
 * Nothing here waits for a function: a synchronous fn_invoke returns once
 * the invocation is admitted, and its end (answer, error, time-out, crash,
 * stop) calls the caller back from whichever thread saw it, so an HTTP
 * handler can park its request instead of holding a thread.
 * Memory: results are copied into the caller's arena (or, for a
 * synchronous invocation, handed to its callback).
 *
 * Wire formats are the caller's: api/lambda.c for the Lambda API,
 * api/runtime_api.c for the Runtime API that instances speak (whose
 * instance side is fn_runtime_*). This part has no HTTP.
 */
#ifndef TARN_FN_FN_H
#define TARN_FN_FN_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/text.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Errors besides base/err.h's usual ones: ERR_CONFLICT (an existing
 * function or alias, a version an alias uses) and ERR_THROTTLED (no
 * concurrency left; fn_invoke_result.throttled_reserved says whose). */

#define FN_ACCOUNT_ID "000000000000"
#define FN_REGION "us-east-1"
#define FN_MAX_ZIP_REQUEST (50u << 20)      /* zipped code sent in a request (Lambda's) */
#define FN_MAX_ZIP_S3 (250u << 20)          /* zipped code read from an object */
#define FN_MAX_UNZIPPED (250u << 20)        /* 262144000 bytes, as Lambda */
#define FN_MAX_ZIP_ENTRIES 100000
#define FN_MAX_SYNC_PAYLOAD 6291456u        /* request and response of RequestResponse */
#define FN_RESPONSE_MAX (FN_MAX_SYNC_PAYLOAD + 100) /* a runtime's response: Lambda allows 100 bytes over */
#define FN_MAX_ASYNC_PAYLOAD 262144u        /* Event */
#define FN_MAX_ENV_BYTES 4096               /* all variables, as Lambda counts them */
#define FN_MAX_FUNCTIONS 10000
#define FN_MAX_VERSIONS 10000               /* per function */
#define FN_MAX_ALIASES 100                  /* per function */
#define FN_LOG_TAIL 4096                    /* LogType Tail */
#define FN_LOG_TAIL_B64 5465                /* its base64, with the NUL */
#define FN_DEFAULT_ACCOUNT_CONCURRENCY 1000
#define FN_KEY_MAX 64                       /* a function credential's key or secret, with NUL */
#define FN_MAX_FUNCTION_LAYERS 5            /* Layers of one function (Lambda's) */
#define FN_MAX_LAYER_NAMES 10000            /* layers tarn keeps */
#define FN_MAX_LAYER_VERSIONS 10000         /* versions of one layer kept at once */
#define FN_MAX_LAYER_POLICY 20480           /* a layer version's policy document (Lambda's 20 KB) */

typedef struct fn_system fn_system;

/* Where the system lives and what it may use. Strings are copied. */
struct pg_pool;

typedef struct fn_options {
  const char *data_dir;          /* DATA: fn/ and run/ go under it */
  const char *runtime_dir;       /* host folder with python/ and node/ (runtimes/) */
  const char *java_runtime_dir;  /* host folder with tarn-runtime.jar (built from
                                    runtimes/java), or NULL: Java functions
                                    compile runtime_dir/java as they start */
  const char *runtime_socket;    /* Unix socket of the Runtime API server */
  const char *platform_socket;   /* Unix socket of the platform endpoint */
  const char *access_key;        /* credentials handed to functions (see */
  const char *secret_key;        /*   fn__credentials_for in credentials.c) */
  uint32_t account_concurrency;  /* 0: FN_DEFAULT_ACCOUNT_CONCURRENCY */
  uint32_t idle_seconds;         /* idle instances are reaped after; 0: 300 */
  uint32_t async_workers;        /* 0: 8 */
  uint32_t async_retry_ms;       /* first retry delay of a failed Event (doubles for
                                    the next); 0: $TARN_EVENT_RETRY_BASE_MS, else 1000 */
  struct pg_pool *metadata;      /* --metadata: functions, their code and queued
                                    Events shared by nodes in PostgreSQL; NULL:
                                    DATA/fn/meta (LMDB) */
} fn_options;

/* Opens DATA/fn (creating it), loads the registry, removes code folders no
 * version references, and starts the scheduler's threads (the instance
 * monitor, the deadline timer, the idle reaper): synchronous invocations
 * are served from here on (their instances reach the Runtime API server,
 * so start it next). Needs sandbox_system_init to have run. */
int fn_system_open(const fn_options *o, fn_system **out, err *e);
/* Starts the asynchronous workers (queued invocations left from a previous
 * run start running): call once the Runtime API server listens. */
int fn_system_start(fn_system *s, err *e);
/* Refuses new invocations, ends those in flight (their invokers are
 * called back with ERR_UNAVAILABLE), kills every instance and stops the
 * workers; queued Events stay queued. Call before the HTTP servers stop, so
 * parked Invoke requests are answered by now, not by the server's 503 at
 * its deadline. Idempotent. */
void fn_system_stop(fn_system *s);
/* Accepts NULL; returns NULL. Call after the servers have stopped. */
fn_system *fn_system_close(fn_system *s);

/* ---- the Runtime API (2018-06-01), instance side (fn/runtime.c) ----
 * The HTTP side is api/runtime_api.c. peer_pid is the connecting process:
 * the sandbox's init, which names the instance; any other pid is
 * ERR_DENIED ("not an instance of tarn"). */

/* The invocation handed to an instance by GET next (arena copies). */
typedef struct fn_runtime_work {
  const char *request_id;      /* Lambda-Runtime-Aws-Request-Id */
  int64_t deadline_ms;         /* Lambda-Runtime-Deadline-Ms, wall clock */
  const char *invoked_arn;     /* Lambda-Runtime-Invoked-Function-Arn */
  const char *trace_id;        /* Lambda-Runtime-Trace-Id */
  const char *client_context;  /* Lambda-Runtime-Client-Context, or NULL */
  const void *payload;         /* the event */
  size_t len;
} fn_runtime_work;

/* The answer to a GET next, called exactly once unless
 * fn_runtime_next_forget comes first, under the system's lock: do little
 * (fill a response, resume it) and call no fn_* function. rc is 0 (w is
 * valid during the call only), ERR_UNAVAILABLE (the instance or the system
 * is stopping) or ERR_DENIED (the caller is no instance); w is NULL then. */
typedef void (*fn_runtime_next_done)(void *ctx, int rc, const fn_runtime_work *w, const err *e);
typedef struct fn_runtime_wait fn_runtime_wait;

/* GET next: answers through done once the instance has an invocation
 * (handing it over), or stops; maybe before this returns, maybe later on
 * another thread. No thread waits meanwhile: *wait holds the parked call
 * and is cleared just before done. Returns 0, or ERR_DENIED while the
 * system stops (done is then never called). */
int fn_runtime_next(fn_system *s, int peer_pid, fn_runtime_next_done done, void *ctx,
                    fn_runtime_wait **wait, err *e);
/* Takes a parked GET next back (its client went away): after this, done
 * is never called. Accepts *wait NULL (answered already). */
void fn_runtime_next_forget(fn_system *s, fn_runtime_wait **wait);
/* POST response (failed false) or error (failed true, error_type from
 * Lambda-Runtime-Function-Error-Type, may be NULL): ends the invocation
 * with body, which is taken (left empty). ERR_INVALID for a request id that
 * is not the instance's current invocation. */
int fn_runtime_result(fn_system *s, int peer_pid, const char *request_id, bool failed,
                      const char *error_type, buf *body, err *e);
/* POST init/error: the runtime could not start; fails its invocation, if
 * any, and stops the instance. */
int fn_runtime_init_error(fn_system *s, int peer_pid, const char *error_type, const char *body,
                          size_t len, err *e);
/* A response body over Lambda's limit: fails the invocation at once (the
 * runtime gets 413 and would otherwise leave the invoker waiting for the
 * time-out). */
void fn_runtime_response_too_large(fn_system *s, int peer_pid, const char *request_id);

/* Prometheus text: invocations, errors, throttles, durations, cold starts,
 * concurrency, instances. */
/* Who holds a function's derived key: the function and the role its
 * configuration names (as given at CreateFunction, any string). */
typedef struct fn_principal {
  char function[65];
  char role[2049];
} fn_principal;

/* The secret of a function's derived access key (fn/credentials.c): true
 * and secret_key (and who, when not NULL) filled when access_key belongs to
 * a configuration of a live function; false otherwise (unknown, or the
 * function was deleted or its role changed). Callers holding such a key are
 * functions, never the administrator. */
bool fn_credentials_lookup(fn_system *s, const char *access_key, char secret_key[FN_KEY_MAX],
                           fn_principal *who);

void fn_metrics(fn_system *s, buf *out);

/* ---- code ---- */

typedef struct fn_code {
  char sha256_hex[65];       /* names the folder DATA/fn/code/<hex> */
  char sha256_b64[45];       /* Lambda's CodeSha256 */
  uint64_t zip_size;         /* Lambda's CodeSize */
  uint64_t unzipped_size;    /* bytes of its files (and link targets) */
} fn_code;

/* Validates a zip and extracts it (once per distinct zip) durably. Checks:
 * at most max_zip bytes zipped and FN_MAX_UNZIPPED unzipped (counted while
 * extracting, not taken from the headers), FN_MAX_ZIP_ENTRIES entries, no
 * absolute path, no "..", no duplicates, no device or fifo, symlinks only to
 * relative targets that stay inside the folder; permission bits kept (no
 * set-id bits, no write for group and others). ERR_INVALID with Lambda's
 * wording for a bad zip. */
int fn_code_add(fn_system *s, const void *zip, size_t len, fn_code *out, err *e);
/* The same for a zip in a file (an object of the store); fd is not closed. */
int fn_code_add_fd(fn_system *s, int fd, fn_code *out, err *e);

/* The zip checks and extraction alone (for tests): extracts into dir,
 * which must not exist; on error nothing is left behind. */
int fn_code_extract(const void *zip, size_t len, const char *dir, uint64_t max_unzipped,
                    uint64_t *unzipped, err *e);

/* ---- the registry ---- */

/* A layer version a configuration uses (it keeps working after the layer
 * version is deleted, as on Lambda). */
typedef struct fn_layer_ref {
  const char *arn;            /* arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION */
  uint64_t code_size;         /* its zip's bytes */
} fn_layer_ref;

/* One configuration: $LATEST, or a published version (immutable). */
typedef struct fn_config {
  const char *name;
  const char *arn;            /* unqualified for $LATEST, else ...:function:NAME:VERSION */
  const char *version;        /* "$LATEST", "1", "2", ... */
  const char *runtime;        /* python3.x, nodejs*.x, provided, provided.al2, provided.al2023 */
  const char *handler;        /* "" when not set */
  const char *role;
  const char *description;
  uint32_t memory_mb;         /* 128..10240 */
  uint32_t timeout_s;         /* 1..900 */
  uint32_t ephemeral_mb;      /* 512..10240: the size of /tmp */
  str_pair *env;              /* the function's own variables */
  size_t nenv;
  const char *architecture;   /* "x86_64" or "arm64" (as given; the host's is used) */
  fn_code code;
  int64_t last_modified_ms;
  const char *revision_id;
  int reserved_concurrency;   /* the function's, -1 when none */
  fn_layer_ref *layers;       /* unpacked at /opt in this order */
  size_t nlayers;
} fn_config;

/* What a create or update sets; NULL strings and 0 numbers keep (update) or
 * take the default (create: 128 MB, 3 s, 512 MB). */
typedef struct fn_settings {
  const char *runtime;
  const char *handler;
  const char *role;
  const char *description;
  uint32_t memory_mb;
  uint32_t timeout_s;
  uint32_t ephemeral_mb;
  bool set_env;               /* env/nenv replace the variables */
  const str_pair *env;
  size_t nenv;
  const char *architecture;
  const char *revision_id;    /* when set, must match (ERR_PRECONDITION) */
  bool set_layers;            /* layers/nlayers (layer version ARNs) replace the layers */
  const char *const *layers;
  size_t nlayers;
} fn_settings;

/* Function names are NAME, a partial ARN (ACCOUNT:function:NAME) or a full
 * ARN, any of them with :QUALIFIER; qualifier (optional) must agree. */
int fn_name_parse(const char *ref, const char *qualifier, arena *a, const char **name,
                  const char **qual, err *e);

int fn_function_create(fn_system *s, const char *name, const fn_settings *set,
                       const fn_code *code, bool publish, arena *a, fn_config *out, err *e);
/* qualifier NULL: $LATEST; a version or an alias. */
int fn_function_get(fn_system *s, const char *name, const char *qualifier, arena *a,
                    fn_config *out, err *e);
/* Functions by name after marker (exclusive), at most max; with
 * all_versions, each function's versions follow its $LATEST. */
int fn_function_list(fn_system *s, const char *marker, size_t max, bool all_versions,
                     arena *a, fn_config **out, size_t *n, const char **next_marker, err *e);
int fn_function_update_code(fn_system *s, const char *name, const fn_code *code,
                            const char *revision_id, bool publish, arena *a, fn_config *out,
                            err *e);
int fn_function_update_config(fn_system *s, const char *name, const fn_settings *set,
                              arena *a, fn_config *out, err *e);
/* qualifier NULL deletes the function with every version and alias; else
 * one published version (not one an alias points to). */
int fn_function_delete(fn_system *s, const char *name, const char *qualifier, err *e);

/* Publishes $LATEST as a new version unless the last one already has the
 * same code and configuration (then that one is returned). */
int fn_version_publish(fn_system *s, const char *name, const char *code_sha256,
                       const char *description, const char *revision_id, arena *a,
                       fn_config *out, err *e);
/* $LATEST then the versions in order, after marker, at most max. */
int fn_version_list(fn_system *s, const char *name, const char *marker, size_t max, arena *a,
                    fn_config **out, size_t *n, const char **next_marker, err *e);

typedef struct fn_alias {
  const char *name;
  const char *arn;
  const char *function_version;
  const char *description;
  const char *revision_id;
} fn_alias;

int fn_alias_create(fn_system *s, const char *function, const char *alias,
                    const char *version, const char *description, arena *a, fn_alias *out,
                    err *e);
/* NULL version/description keep them. */
int fn_alias_update(fn_system *s, const char *function, const char *alias,
                    const char *version, const char *description, const char *revision_id,
                    arena *a, fn_alias *out, err *e);
int fn_alias_get(fn_system *s, const char *function, const char *alias, arena *a,
                 fn_alias *out, err *e);
int fn_alias_delete(fn_system *s, const char *function, const char *alias, err *e);
/* version (optional) keeps only aliases of that version. */
int fn_alias_list(fn_system *s, const char *function, const char *version,
                  const char *marker, size_t max, arena *a, fn_alias **out, size_t *n,
                  const char **next_marker, err *e);

/* reserved -1 removes the reservation. */
int fn_concurrency_put(fn_system *s, const char *function, int reserved, err *e);
int fn_concurrency_get(fn_system *s, const char *function, int *reserved, err *e);

/* ---- layers (fn/layers.c) ----
 * A layer is a name with numbered versions (from 1, never reused); each
 * version is a zip's content, unpacked once into the code store, that
 * functions stack at /opt. Names are NAME or arn:aws:lambda:R:A:layer:NAME. */

typedef struct fn_layer_version {
  const char *name;
  const char *layer_arn;      /* arn:aws:lambda:R:A:layer:NAME */
  const char *arn;            /* ...:VERSION */
  uint32_t version;
  const char *description;    /* "" when none */
  const char *license;        /* NULL when none */
  const char **runtimes;      /* CompatibleRuntimes */
  size_t nruntimes;
  const char **architectures; /* CompatibleArchitectures */
  size_t narchitectures;
  fn_code code;
  int64_t created_ms;
} fn_layer_version;

/* What PublishLayerVersion sets; strings are copied. */
typedef struct fn_layer_settings {
  const char *description;
  const char *license;
  const char *const *runtimes;
  size_t nruntimes;
  const char *const *architectures;
  size_t narchitectures;
} fn_layer_settings;

/* Publishes code (already in the code store, fn_code_add) as the next
 * version of layer name, creating the layer. */
int fn_layer_publish(fn_system *s, const char *name, const fn_layer_settings *set,
                     const fn_code *code, arena *a, fn_layer_version *out, err *e);
/* One version; ERR_NOT_FOUND when it is not there (or was deleted). */
int fn_layer_get(fn_system *s, const char *name, uint32_t version, arena *a,
                 fn_layer_version *out, err *e);
/* The same by a layer version ARN. */
int fn_layer_get_arn(fn_system *s, const char *arn, arena *a, fn_layer_version *out, err *e);
/* ListLayers: each layer (by name, after marker) with its newest version
 * compatible with runtime and architecture (NULL: any); layers with none
 * are left out. ListLayerVersions (name given): that layer's versions,
 * newest first, that match. At most max (1..50). */
int fn_layer_list(fn_system *s, const char *name, const char *runtime, const char *architecture,
                  const char *marker, size_t max, arena *a, fn_layer_version **out, size_t *n,
                  const char **next_marker, err *e);
/* Deletes a version (nothing when there is none, as Lambda). Functions
 * that use it keep it. */
int fn_layer_delete(fn_system *s, const char *name, uint32_t version, err *e);
/* The version's resource policy: adds a statement (statement: its JSON),
 * reads the document, removes one. revision_id, when given, must match
 * (ERR_PRECONDITION). Strings in a. */
int fn_layer_permission_add(fn_system *s, const char *name, uint32_t version, const char *sid,
                            const char *action, const char *principal, const char *org,
                            const char *revision_id, arena *a, const char **statement,
                            const char **new_revision, err *e);
int fn_layer_policy_get(fn_system *s, const char *name, uint32_t version, arena *a,
                        const char **policy, const char **revision_id, err *e);
int fn_layer_permission_remove(fn_system *s, const char *name, uint32_t version,
                               const char *sid, const char *revision_id, err *e);

/* ---- invocation ---- */

enum fn_invoke_type { FN_INVOKE_SYNC, FN_INVOKE_EVENT, FN_INVOKE_DRYRUN };

typedef struct fn_invocation fn_invocation; /* a synchronous invocation in flight */

typedef struct fn_invoke_result {
  int status;                  /* 200, 202 or 204 */
  buf payload;                 /* the function's answer; the receiver owns it */
  const char *function_error;  /* "Unhandled" when the function failed, else NULL */
  const char *log_tail_b64;    /* last FN_LOG_TAIL bytes of the log, when asked */
  const char *executed_version;
  const char *request_id;
  bool throttled_reserved;     /* with ERR_THROTTLED: the function's reserved
                                  concurrency was exhausted, not the account's */
} fn_invoke_result;

/* The end of a synchronous invocation, called exactly once, on the thread
 * that saw the end, under the system's lock: do little (fill a response,
 * signal a waiter) and call no fn_* function. rc is 0 (res holds the answer;
 * res->payload is the callee's to keep or release, the strings live until
 * the call returns) or ERR_UNAVAILABLE (tarn is stopping; e says so, res is
 * empty). */
typedef void (*fn_invoke_done)(void *ctx, int rc, fn_invoke_result *res, const err *e);

typedef struct fn_invoke_params {
  const char *name;            /* as fn_name_parse takes it */
  const char *qualifier;       /* NULL for $LATEST */
  enum fn_invoke_type type;
  const void *payload;         /* SYNC: must stay valid until done or forget */
  size_t len;
  bool log_tail;               /* fill log_tail_b64 */
  const char *client_context;  /* X-Amz-Client-Context (base64), or NULL */
  fn_invoke_done done;         /* SYNC: called at the end */
  void *done_ctx;
  fn_invocation **running;     /* SYNC, optional: set to the invocation once
                                  admitted, back to NULL just before done is
                                  called; what fn_invoke_forget takes */
} fn_invoke_params;

/* Runs or queues an invocation.
 * SYNC: returns 0 once the invocation is admitted; p->done is then called
 * exactly once, maybe before fn_invoke returns and maybe on another thread,
 * unless fn_invoke_forget comes first. Nothing in result but
 * throttled_reserved is used, and a is not touched after admission.
 * EVENT, DRYRUN: result is complete on return; done is not used.
 * A failure of the function is not an error (it is in the result); errors
 * are (done is then never called): ERR_NOT_FOUND, ERR_INVALID,
 * ERR_ENTITY_TOO_LARGE (payload), ERR_THROTTLED, ERR_UNAVAILABLE (stopping),
 * ERR_IO (the queue). An Event is durable when this returns 0. */
int fn_invoke(fn_system *s, const fn_invoke_params *p, arena *a, fn_invoke_result *result,
              err *e);

/* The caller of a running invocation went away: done will not be called,
 * the payload is copied if the runtime has not taken it yet, and the
 * function runs on to its end. Sets *running to NULL; does nothing when the
 * invocation already ended (*running is NULL then). */
void fn_invoke_forget(fn_system *s, fn_invocation **running);

/* A synchronous invocation's answer, for fn_invoke_wait. */
typedef struct fn_answer {
  buf payload;          /* the function's answer; the caller releases it */
  bool function_error;  /* the function failed (its error is the payload) */
} fn_answer;

/* Invokes name:qualifier (NULL: $LATEST) synchronously and waits for the
 * end on this thread, asking stop(stop_ctx) every 200 ms: when it says yes
 * the invocation is forgotten and ERR_UNAVAILABLE ("tarn is stopping") is
 * returned. Returns 0 with *out filled (a failure of the function is not an
 * error), or fn_invoke's error (ERR_THROTTLED, ...), or the invocation's.
 * out->payload is initialised in every case (fn/wait.c). */
int fn_invoke_wait(fn_system *s, const char *name, const char *qualifier, const char *payload,
                   bool (*stop)(void *ctx), void *stop_ctx, fn_answer *out, err *e);

/* ---- asynchronous outcomes ----
 * What happens to an Event beyond its retries is event wiring (events/:
 * PutFunctionEventInvokeConfig, destinations, dead-letter queues); fn asks
 * and tells it through two hooks, both called from the asynchronous
 * workers with no lock of fn's held (they may call fn_invoke). */

/* The retry limits of an Event; -1 keeps Lambda's defaults (2 retries, an
 * age of six hours). */
typedef struct fn_async_policy {
  int max_retries;               /* MaximumRetryAttempts, 0..2 */
  int max_age_s;                 /* MaximumEventAgeInSeconds, 60..21600 */
} fn_async_policy;

/* How an Event ended for good. Strings and payloads live until the hook
 * returns. */
typedef struct fn_async_outcome {
  const char *function;          /* the name */
  const char *qualifier;         /* as invoked, or NULL */
  const char *function_arn;      /* qualified (":$LATEST" when invoked without) */
  const char *request_id;
  const char *condition;         /* "Success", "RetriesExhausted", "EventAgeExceeded" */
  int attempts;                  /* invocations made */
  const char *executed_version;  /* or NULL when it never ran */
  const char *function_error;    /* "Unhandled", or NULL */
  const void *payload;           /* the event */
  size_t len;
  const void *response;          /* the last answer (an error document on failure), or NULL */
  size_t response_len;
  int64_t time_ms;               /* when it ended (wall clock) */
} fn_async_outcome;

typedef struct fn_async_hooks {
  /* before each decision to retry: the limits of function:qualifier */
  void (*policy)(void *ctx, const char *function, const char *qualifier, fn_async_policy *out);
  /* once per Event that ended (not when its function was deleted), before
     it leaves the durable queue: a crash in between tells it again */
  void (*outcome)(void *ctx, const fn_async_outcome *o);
  void *ctx;
} fn_async_hooks;

/* Sets (h copied) or clears (NULL) the hooks; set them before
 * fn_system_start so Events left by a previous run are covered. */
void fn_async_hooks_set(fn_system *s, const fn_async_hooks *h);

/* ---- logs ---- */

/* The last max bytes of a function's log (its file and the rotated one). */
int fn_logs_read(fn_system *s, const char *name, size_t max, buf *out, err *e);

#endif
