/* fn/internal.h -- what the files of fn/ share: the system, the in-memory
 * registry, pools, instances and invocations.
 *
 * One mutex (fn_system.lock) guards everything in memory here: the
 * registry's entries, pools, instances, invocations' states, the timer list
 * and the counters. Nothing slow runs under it: no LMDB commit, no sandbox
 * start, no file I/O but the log writes of START/END/REPORT. Invokers'
 * done callbacks run under it (they only fill a response or signal).
 *
 * Lifetimes:
 *   conf      refcounted (fn__conf_ref/fn__conf_unref under the lock): the entry
 *             holds $LATEST's and each version's; every instance holds the
 *             one it was started with.
 *   pool      one per (function, version) that was invoked; freed with its
 *             function entry, after its instances are gone.
 *   instance  from sched_start to the monitor's reaping of its sandbox.
 *   invoc     heap, made by fn_invoke; from admission (fn__sched_run) on it is
 *             on the timer list and its instance's inv, and fn__sched_complete
 *             frees it after calling its invoker back. Whoever drops the
 *             lock while holding an invoc pointer must look it up again.
 */
#ifndef TARN_FN_INTERNAL_H
#define TARN_FN_INTERNAL_H

#include "fn/fn.h"
#include "base/pg.h"
#include "sandbox/sandbox.h"

#include <jansson.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#define FN_HASH_BUCKETS 4096
#define FN_PID_BUCKETS 1024
#define FN_LOG_FILE_MAX (1u << 20)   /* a log file is rotated past this */
#define FN_INIT_TIMEOUT_MS 10000     /* Lambda's init phase limit */
#define FN_MAX_PROCS 1024            /* processes and threads per instance */
#define FN_MAX_OPEN_FILES 1024       /* RLIMIT_NOFILE of an instance */

typedef struct fn_entry fn_entry;
typedef struct pool pool;
typedef struct instance instance;
typedef struct fn_invocation invoc;
typedef struct layer_rec layer_rec;
typedef struct slot_token slot_token;

/* One configuration, immutable once made (strings in its own arena). */
typedef struct conf {
  int refs;                   /* under fn_system.lock */
  arena *a;                   /* everything below */
  fn_config cfg;              /* cfg.reserved_concurrency is not kept here */
  uint32_t number;            /* 0 for $LATEST */
  const char *key_nonce;      /* fixed at CreateFunction, kept by every later conf */
  char access_key[FN_KEY_MAX]; /* its instances' AWS_ACCESS_KEY_ID (credentials.c) */
  const char *code_dir;       /* DATA/fn/code/<hex> */
  json_t *layers;             /* its Layers record (registry.c), or NULL */
  const char **opt_dirs;      /* DATA/fn/code/<hex> of each layer, in order */
  size_t nopt_dirs;
  const char **argv;          /* what the sandbox runs */
  const char *runtime_dir;    /* shown at /var/runtime; NULL: fn_system's */
  const char **envp;          /* the environment, but the per-instance log stream */
  size_t nenvp;
  /* its template (templates.c), under fn_system.lock */
  sandbox_template *tmpl;     /* ready, or NULL */
  int tmpl_state;             /* FN_TMPL_* */
  uint32_t tmpl_cold;         /* its cold starts while it had no template */
  int64_t tmpl_used_ms;       /* its last fork */
  struct fn_system *tmpl_sys; /* set while it holds or builds one */
} conf;

enum { FN_TMPL_NONE, FN_TMPL_BUILDING, FN_TMPL_READY, FN_TMPL_FAILED };

typedef struct alias_rec {
  char *name;
  char *version;              /* "$LATEST" or a number */
  char *description;
  char revision_id[37];
} alias_rec;

struct pool {
  fn_entry *fn;
  char version[16];           /* "$LATEST" or a number */
  conf *conf;                 /* what new instances run (replaced on update) */
  instance *idle;             /* LIFO of idle instances (warmest first) */
  size_t nidle;
  instance *all;              /* every live instance, through all_next */
  size_t ninstances;
  pool *next;                 /* the entry's pools */
};

/* One function's invocations since the server started (metrics.c). */
typedef struct fn_entry_stats {
  uint64_t invocations;
  uint64_t errors;
  uint64_t cold_starts;          /* instances started for it */
  uint64_t duration_buckets[12];
  uint64_t duration_over;
  double duration_sum;
} fn_entry_stats;

struct fn_entry {
  char name[65];
  conf *latest;
  conf **versions;            /* published, ascending numbers */
  size_t nversions;
  size_t cap_versions;
  uint32_t next_version;
  alias_rec *aliases;
  size_t naliases;
  int reserved;               /* -1: none */
  uint32_t active;            /* invocations running now */
  int64_t created_ms;
  pool *pools;
  int log_fd;                 /* DATA/fn/logs/<name>.log, O_APPEND; -1 until used */
  uint64_t log_size;
  pthread_mutex_t log_lock;   /* guards log_fd, log_size and rotation */
  bool deleted;               /* removed from the table; freed when unused */
  uint32_t users;             /* pools with instances + invocations in flight */
  fn_entry_stats stats;       /* under fn_system.lock; gone with the entry */
  int64_t gen;                /* --metadata: the generation memory holds
                                 (pg_registry.c (2)); 0 unknown */
  fn_entry *hnext;
};

enum inst_state {
  INST_STARTING,  /* sandbox started, no GET next yet (init running) */
  INST_IDLE,      /* waiting for work */
  INST_BUSY,      /* an invocation is assigned */
  INST_DEAD       /* killed or exited; waiting to be reaped */
};

struct instance {
  pool *pool;
  conf *conf;
  sandbox *sb;
  int pid;                    /* host pid of the sandbox init */
  int pidfd;
  int log_rd;                 /* read end of its stdout/stderr pipe */
  char id[24];
  char stream[96];            /* AWS_LAMBDA_LOG_STREAM_NAME */
  enum inst_state state;
  bool retire;                /* kill after the current invocation */
  bool killed;                /* sandbox_kill was called */
  bool log_open;              /* log_rd is still in the epoll set */
  int refs;                   /* the monitor's 1 + Runtime API calls using it */
  invoc *inv;                 /* the current invocation, or NULL */
  char *init_error;           /* body of /runtime/init/error (heap), or NULL */
  char *init_error_type;
  int64_t started_us;         /* for Init Duration */
  int64_t registered_us;      /* sandbox_start returned (trace_start) */
  int64_t next_us;            /* its first GET next arrived (trace_start) */
  double init_ms;             /* set at the first GET next */
  bool cold_pending;          /* the next invocation reports Init Duration */
  int64_t idle_since_ms;
  fn_runtime_wait *waiter;    /* its parked GET next, or NULL (runtime.c) */
  pthread_mutex_t log_lock;   /* guards reading log_rd and log_inv */
  invoc *log_inv;             /* whose tail the output goes to */
  instance *idle_next;
  instance *all_next;
  instance *pid_next;
};

enum invoc_result {
  INV_OK,
  INV_ERROR,      /* the function reported an error (payload is its document) */
  INV_FAILED,     /* time-out, crash, OOM, init failure: payload made here */
  INV_STOPPED     /* tarn is stopping: the invoker gets ERR_UNAVAILABLE */
};

struct fn_invocation {
  char id[37];                /* request id (UUID) */
  const void *payload;        /* the invoker's bytes, or own_payload */
  size_t len;
  void *own_payload;          /* heap copy, once the invoker went away early */
  char *client_context;       /* decoded JSON (heap), or NULL */
  char *invoked_arn;          /* Lambda-Runtime-Invoked-Function-Arn (heap) */
  conf *conf;                 /* what it runs (ref held by the pool's instance) */
  pool *pool;
  instance *inst;             /* its instance, from admission on */
  bool handed;                /* the runtime received it */
  buf response;               /* moved from the runtime's request, or made here */
  int64_t start_us;
  int64_t handed_us;
  int64_t deadline_wall_ms;   /* Lambda-Runtime-Deadline-Ms */
  int64_t deadline_us;        /* the timer's (monotonic): init and timeout
                                 from admission, then timeout from hand-off */
  invoc *timer_prev;          /* fn_system.timers, by deadline_us */
  invoc *timer_next;
  bool cold;
  double init_ms;
  fn_invoke_done done;        /* the invoker's callback; NULL once forgotten */
  void *done_ctx;
  fn_invocation **running;    /* the invoker's handle, cleared at the end */
  bool throttled_reserved;    /* admission refused by the reserved limit */
  char slot[37];              /* --metadata: the token of the concurrency slot
                                 it holds (pg_slots.c), or "" */
  char tail[FN_LOG_TAIL];     /* ring of the log lines of this invocation */
  size_t tail_len;            /* bytes in the ring (<= FN_LOG_TAIL) */
  size_t tail_pos;            /* next write position */
  bool want_tail;
};

typedef struct fn_counters {
  uint64_t invocations;
  uint64_t errors;
  uint64_t throttles;
  uint64_t timeouts;
  uint64_t cold_starts;
  uint64_t async_queued;
  uint64_t async_done;
  uint64_t async_dropped;
  uint64_t duration_buckets[12];
  uint64_t duration_over;
  double duration_sum;
  uint64_t init_buckets[12];
  uint64_t init_over;
  double init_sum;
  uint64_t instances_started;
  uint64_t instances_reaped;
} fn_counters;

typedef struct async_item {
  uint64_t seq;
  int64_t not_before_ms;
  int attempts;               /* invocations made, counted in its record too */
  struct async_item *next;
} async_item;

struct fn_system {
  int trace_fd;               /* $TARN_TRACE_STARTS: one line per cold start, or -1 */
  char *data_dir;
  char *fn_dir;               /* DATA/fn */
  char *code_dir;             /* DATA/fn/code */
  char *log_dir;              /* DATA/fn/logs */
  char *runtime_dir;
  char *java_runtime_dir;     /* or NULL (fn_options) */
  char *runtime_socket;
  char *platform_socket;
  char *access_key;
  char *secret_key;
  uint32_t account_limit;
  uint32_t idle_seconds;
  uint32_t async_workers;
  uint32_t async_retry_ms;

  MDB_env *env;               /* NULL with pg */
  MDB_dbi dbi;
  pg_pool *pg;                /* --metadata: registry, code and Events shared
                                 in PostgreSQL (pg_registry.c), or NULL */
  char node[33];              /* this node's name in claims (pg_registry.c) */
  bool pg_poller;             /* under lock: a worker polls the shared queue (invoke.c) */
  int64_t pg_swept_ms;        /* under lock: when the poller last swept the shared code */
  pthread_mutex_t write_lock; /* one registry writer at a time */
  uint32_t slots_held;        /* under lock: concurrency slots claimed, not yet freed */
  slot_token *slot_release;   /* under lock: slots of ended invocations to free */
  pthread_cond_t slot_cond;   /* slot_release grew, or slot_stop */
  pthread_t slot_thread;
  bool slot_on;               /* the slot thread runs */
  bool slot_stop;             /* under lock: the slot thread ends */

  pthread_mutex_t lock;       /* see the top of this file */
  pthread_cond_t registered;  /* an instance's pid became known */
  fn_runtime_wait *unregistered; /* GET nexts of pids not yet known (runtime.c) */
  fn_entry *table[FN_HASH_BUCKETS];
  size_t nfunctions;
  instance *by_pid[FN_PID_BUCKETS];
  uint32_t active;            /* all invocations running */
  uint32_t unreserved_active; /* those of functions without a reservation */
  uint32_t reserved_sum;
  uint32_t instances;
  bool stopping;
  bool sched_on;              /* the monitor, reaper and timer run (open) */
  bool started;               /* the asynchronous workers run (start) */
  fn_counters c;
  uint64_t next_instance;
  layer_rec **layers;         /* layers.c: by name */
  size_t nlayers;
  size_t cap_layers;
  int64_t layers_gen;         /* with pg: the generation memory's layers are of */
  char host_python[32];       /* "python3.11": what /usr/bin/python3 runs, or "" */
  char host_ruby[16];         /* "3.1.0": the gem folder version of /usr/bin/ruby, or "" */
  sandbox_zygote *zygote_python; /* the python3.x runtime, pre-initialised (zygote.c), or NULL */
  sandbox_zygote *zygote_node;   /* the nodejs*.x runtime, likewise */
  sandbox_pool *pool_python;     /* instances of zygote_python started ahead, or NULL (zygote.c) */
  sandbox_pool *pool_node;       /* and of zygote_node */
  /* templates (templates.c), under lock */
  uint32_t templates_max;     /* $TARN_FN_TEMPLATES: confs holding or building one, at most */
  conf **tmpl_confs;          /* those confs (templates_max of room) */
  uint32_t ntmpl_confs;
  uint32_t templates_building;
  pthread_cond_t templates_cond; /* a build ended */

  /* the monitor: one thread over every instance's log pipe and pidfd */
  int epfd;
  int wake_fd;                /* eventfd: stop */
  pthread_t monitor;
  pthread_t reaper;
  pthread_cond_t reaper_cond;

  /* asynchronous invocations */
  uint64_t next_seq;
  async_item *queue;          /* ordered by not_before_ms */
  pthread_cond_t queue_cond;
  pthread_t *workers;
  uint32_t nworkers;
  fn_async_hooks hooks;       /* events/'s policy and outcome hooks, under lock */

  /* the timer: every admitted invocation, earliest deadline first */
  invoc *timers;
  invoc *timers_tail;
  pthread_cond_t timer_cond;  /* the head changed, or stopping */
  pthread_t timer;
};

/* ---- scheduler.c (more) ---- */
/* What a sandbox of c runs (code, layers, program, environment, limits);
 * id, forwards, log_fd and zygote are the caller's to set. */
sandbox_spec fn__conf_spec(const fn_system *s, const conf *c);

/* ---- templates.c ---- */
void fn__templates_open(fn_system *s);
/* Waits for the builds under way (the lock held: it is released while waiting). */
void fn__templates_close(fn_system *s);
/* Under lock: a reference to c's template when it has one ready (the
 * caller releases it); else NULL, and a build starts when c may have one. */
sandbox_template *fn__template_for(fn_system *s, conf *c);
/* Under lock: t of c ended (a fork found it gone): c gets no other. */
void fn__template_gone(fn_system *s, conf *c, sandbox_template *t);
/* Under lock: templates not forked since cutoff_ms (time_mono_ms) go, as
 * idle instances do; a later cold start builds one again. */
void fn__templates_sweep(fn_system *s, int64_t cutoff_ms);
/* Under lock, when c is freed: its template goes. */
void fn__template_drop(conf *c);

/* ---- credentials.c ---- */
/* The credentials a function's instances get in AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY: a pair derived for the function (credentials.c). */
void fn__credentials_for(fn_system *s, const fn_config *f, const char *nonce,
                        char access_key[FN_KEY_MAX], char secret_key[FN_KEY_MAX]);

/* ---- registry.c ---- */
int fn__registry_open(fn_system *s, err *e);
/* The table bucket of a function name (credentials.c puts it in keys). */
size_t fn__registry_bucket(const char *name);
void fn__registry_close(fn_system *s);
fn_entry *fn__registry_find(fn_system *s, const char *name);   /* under lock */
void fn__conf_ref(conf *c);                                     /* under lock */
void fn__conf_unref(conf *c);                                   /* under lock */
/* Resolves a qualifier (NULL, $LATEST, number, alias) of an entry; under lock. */
int fn__registry_resolve(fn_entry *f, const char *qualifier, conf **out, const char **version,
                     err *e);
bool fn__registry_code_used(fn_system *s, const char *hex);    /* under lock */
void fn__entry_release(fn_system *s, fn_entry *f);             /* under lock: users-- */

/* Brings the memory of function `name` up to date with the shared
 * registry (pg_registry.c (2)); nothing without pg. Takes the lock. */
void fn__registry_sync(fn_system *s, const char *name);
/* The same for every function (listing). */
void fn__registry_sync_all(fn_system *s);

/* ---- pg_registry.c (only with fn_system.pg) ---- */
/* The database's clock in ms, in SQL: leases are its time, not the nodes'. */
#define FN_PG_NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"
/* A function's records as read from the shared registry. */
typedef struct fn_records {
  int64_t gen;
  json_t *records;            /* [[key, value]...] by key; empty: deleted */
} fn_records;

/* A claimed Event. */
typedef struct fn_event {
  int64_t seq;
  char *name;                 /* heap */
  char *qualifier;            /* heap, or NULL */
  char *id;                   /* heap */
  int64_t queued_ms;
  int attempts;
  buf payload;
} fn_event;

int fn__pg_open(fn_system *s, err *e);
/* Runs a change's operations ([kind, key, value?]...) in one transaction. */
int fn__pg_commit(fn_system *s, json_t *ops, err *e);
json_t *fn__pg_get(fn_system *s, const char *key);             /* one record, or NULL */
/* The records of name if its generation is not `have`: 0 (out filled),
 * 1 (unchanged or unknown), or an error. */
int fn__pg_sync(fn_system *s, const char *name, int64_t have, fn_records *out, err *e);
int fn__pg_generations(fn_system *s, json_t **out, err *e);    /* {name: gen} */
int fn__pg_code_put(fn_system *s, const char *hex, const void *zip, size_t len, err *e);
int fn__pg_code_get(fn_system *s, const char *hex, buf *out, err *e);
/* Deletes the zips no record names any more (pg_registry.c (6)). */
void fn__pg_code_sweep(fn_system *s);
/* The records of layers belong to this name (no function's: it has '/'). */
#define FN_PG_LAYERS "/layers"
/* Writes layer name's next version (rec) and sets *number to it. */
int fn__pg_layer_publish(fn_system *s, const char *name, json_t *rec, uint32_t *number, err *e);
/* Replaces a layer version's record if its PolicyRevision is still
 * revision (NULL: none): 0, 1 when it is not (changed or deleted), or an
 * error. */
int fn__pg_layer_replace(fn_system *s, const char *key, json_t *rec, const char *revision,
                         err *e);
int fn__pg_event_add(fn_system *s, const char *name, const char *qualifier, const char *id,
                     const void *payload, size_t len, err *e);
/* 0: out filled (payload appended to its buf), 1: nothing due, or an error. */
int fn__pg_event_claim(fn_system *s, fn_event *out, err *e);
/* Hands a claimed Event back, due after delay_ms, with attempts counted. */
void fn__pg_event_release(fn_system *s, int64_t seq, int attempts, int64_t delay_ms);
void fn__pg_event_done(fn_system *s, int64_t seq);

/* ---- pg_slots.c (only with fn_system.pg) ---- */
int fn__slots_open(fn_system *s, err *e);
int fn__slots_start(fn_system *s, err *e);
void fn__slots_stop(fn_system *s);  /* after fn__sched_stop: frees what ended */
/* Claims one of the `reserved` slots of function name: 0 (token set), 1
 * (none free: throttled), or an error. Not under lock. */
int fn__slot_claim(fn_system *s, const char *name, int reserved, char token[37], err *e);
/* Frees a slot now (not under lock); token is cleared. */
void fn__slot_release(fn_system *s, char token[37]);
/* Frees a slot soon, on the slot thread (under lock); token is cleared. */
void fn__slot_release_later(fn_system *s, char token[37]);

/* ---- zygote.c ---- */
void fn__zygotes_open(fn_system *s);
void fn__zygotes_close(fn_system *s);
/* The pool of instances of z ahead, or NULL. */
sandbox_pool *fn__pool_for(fn_system *s, const sandbox_zygote *z);
/* The zygote an instance of c is forked from, or NULL: exec its runtime. */
sandbox_zygote *fn__zygote_for(fn_system *s, const conf *c);

/* ---- code.c ---- */
void fn__code_sweep(fn_system *s);
/* With pg: unpacks the shared zip of hex into DATA/fn/code/<hex> unless
 * it is there. */
int fn__code_ensure(fn_system *s, const char *hex, err *e);

/* ---- layers.c ---- */
/* Loads one l/... record of the registry (under lock, at open). */
void fn__layers_load(fn_system *s, const char *key, json_t *j);
void fn__layers_free(fn_system *s);                             /* at close */
bool fn__layers_code_used(fn_system *s, const char *hex);      /* under lock */
/* With pg: brings memory's layers up to date with the shared records. */
void fn__layers_sync(fn_system *s);
/* A configuration's Layers record from layer version ARNs (takes the lock):
 * [{"Arn","CodeSize","CodeHex","Unzipped"}...]; ERR_INVALID when one does
 * not exist or two are versions of one layer. */
int fn__layers_resolve(fn_system *s, const char *const *arns, size_t n, json_t **out, err *e);
/* Code of code_unzipped bytes (0: measure the folder code_dir) with these
 * layers must fit FN_MAX_UNZIPPED, as Lambda counts. */
int fn__layers_check_size(uint64_t code_unzipped, const char *code_dir, json_t *layers, err *e);

/* ---- scheduler.c ---- */
int fn__sched_start_threads(fn_system *s, err *e);
void fn__sched_stop(fn_system *s);
pool *fn__sched_pool(fn_system *s, fn_entry *f, const char *version, conf *c); /* under lock */
/* Admits one invocation and assigns it to an instance (idle, or started
 * here: the lock is dropped meanwhile); the lock is held on entry and on
 * return. 0: the scheduler owns inv and fn__sched_complete will end it (it may
 * already have). Else (throttled, stopping, no instance) inv is the
 * caller's still and was never seen by anyone. */
int fn__sched_run(fn_system *s, fn_entry *f, pool *p, invoc *inv, err *e);
/* Moves inv's deadline (the hand-off starts the timeout). Under lock. */
void fn__sched_timer_set(fn_system *s, invoc *inv, int64_t deadline_us);
/* Kills and forgets the instances of a pool / of every pool of f (update,
 * delete); busy ones are retired. Under lock. */
void fn__sched_recycle(fn_system *s, pool *p);
void fn__sched_drop_entry(fn_system *s, fn_entry *f);
instance *fn__sched_by_pid(fn_system *s, int pid);              /* under lock */
/* Ends inv (under lock): writes the END and REPORT lines (status: NULL, or
 * "timeout" / "error" for REPORT), calls its invoker back, releases its
 * admission and frees it: inv is gone when this returns. */
void fn__sched_complete(fn_system *s, instance *in, invoc *inv, enum invoc_result r,
                    const char *status);
void fn__instance_unref(fn_system *s, instance *in);           /* under lock */
/* Moves what the instance printed so far into its function's log. */
void fn__sched_drain_log(fn_system *s, instance *in);
void fn__sched_kill(fn_system *s, instance *in);                /* under lock */
/* Answers in's parked GET next if it has work or is stopping (runtime.c). */
void fn__runtime_wake(fn_system *s, instance *in);              /* under lock */
/* in's pid became known: GET nexts that came before it attach (runtime.c). */
void fn__runtime_registered(fn_system *s, instance *in);        /* under lock */
/* Refuses the GET nexts of unknown pids parked since before now_us, or all
 * of them once stopping (runtime.c). */
void fn__runtime_expire(fn_system *s, int64_t now_us);          /* under lock */
/* After a response: back to the idle stack, or killed when retired. */
void fn__sched_release(fn_system *s, instance *in);             /* under lock */

/* ---- logs.c ---- */
void fn__logs_write(fn_system *s, fn_entry *f, invoc *inv, const char *p, size_t n);
void fn__logs_printf(fn_system *s, fn_entry *f, invoc *inv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fn__logs_close(fn_entry *f);
/* Base64 of the invocation's tail. */
void fn__logs_tail_b64(const invoc *inv, char out[FN_LOG_TAIL_B64]);

/* ---- invoke.c ---- */
int fn__async_open(fn_system *s, err *e);                      /* loads the queue */
int fn__async_start(fn_system *s, err *e);
void fn__async_stop(fn_system *s);
invoc *fn__invoc_new(void);
invoc *fn__invoc_free(invoc *inv);                             /* accepts NULL */

/* ---- metrics.c ---- */
void fn__metrics_duration(fn_system *s, double ms);             /* under lock */
/* One invocation of f ended (after ms, an error or not): f's own counters. */
void fn__metrics_function(fn_entry *f, double ms, bool error);  /* under lock */
void fn__metrics_init_duration(fn_system *s, double ms);        /* under lock */

/* ---- small helpers (fn.c) ---- */
int fn__mkdirs(const char *path, err *e);
/* Removes a tree without following symlinks; ignores what is missing. */
void fn__rmtree(const char *path);
/* Bytes of a tree's files and symlink targets, not following links. */
uint64_t fn__tree_size(const char *path);

#endif
