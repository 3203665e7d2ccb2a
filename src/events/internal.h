/* events/internal.h -- the events part's private state and what its files
 * share. Never included outside src/events/.
 *
 * Who owns what:
 *   events.c         open/start/stop/close, the meta environment, metrics,
 *                    the lambda deliverer of topics
 *   config.c         configurations: checks, stored JSON, the matcher
 *   record.c         payloads as AWS writes them
 *   notify.c         events_config_put/get: target validation, test events
 *   dispatch.c       the dispatcher: change feed -> targets -> trim
 *   mapping.c        event source mappings: records and their pollers
 *   stream_mapping.c the poller of mappings from DynamoDB streams
 *   invoke_config.c  event invoke configs, dead-letter targets, outcomes
 *   watch.c          the live log behind `tarn events`
 *
 * Locks, in the order they may be taken (never the other way):
 *   fn's lock (its callbacks) -> sync_mu -> map_mu -> wmu;  mu (dispatcher) alone;
 *   meta_mu alone. No lock of ours is held while calling into the store,
 *   the queue part or fn, except that map_mu is held around
 *   queue_poll_cancel (which never waits).
 *
 * Functions shared between the files are named events__* (internal).
 */
#ifndef TARN_EVENTS_INTERNAL_H
#define TARN_EVENTS_INTERNAL_H

#include "events/events.h"

#include "base/pg.h"
#include "base/text.h"

#include <lmdb.h>
#include <pthread.h>

#define EVENTS_DIR_MAX 3000
#define EVENTS_RETRY_MAX_MS 60000      /* retry delays double up to this */
#define EVENTS_FEED_BATCH 256          /* feed entries read at once */

typedef struct mapping_rt mapping_rt;
typedef struct batch_job batch_job;

struct events_system {
  char *dir;                   /* DATA/events */
  store *st;                   /* borrowed */
  queue_system *q;             /* borrowed, or NULL */
  fn_system *fn;               /* borrowed, or NULL */
  stream_system *streams;      /* borrowed, or NULL: Kinesis sources */
  kv *kv;                      /* borrowed, or NULL: no stream sources */
  uint32_t retry_base_ms;      /* first retry delay */
  uint32_t nworkers;           /* batch workers to start */

  MDB_env *env;                /* DATA/events/meta */
  MDB_dbi db;                  /* "m/UUID" mappings, "c/NAME:QUAL" invoke configs,
                                  "d/NAME" dead-letter targets: JSON or text */
  pthread_mutex_t meta_mu;     /* one meta write transaction at a time */
  pg_pool *pg;                 /* borrowed, or NULL: --metadata, the records in
                                  PostgreSQL (table tarn_events_meta), not env */

  /* the dispatcher (dispatch.c) */
  pthread_mutex_t mu;          /* guards kicked, stopping, the counters below */
  pthread_cond_t wake;         /* the dispatcher waits: feed appended, or stop */
  bool kicked;                 /* the feed grew since the dispatcher last looked */
  events_observer observer;    /* told every feed entry (events_observe) */
  void *observer_ctx;
  bool stopping;               /* events_system_stop began */
  bool started;                /* events_system_start ran */
  bool dispatcher_running;     /* join it */
  pthread_t dispatcher;
  uint64_t delivered;          /* deliveries accepted by their target */
  uint64_t dropped;            /* deliveries given up (target gone) */
  uint64_t retried;            /* delivery attempts that failed and were retried */
  uint64_t tests_sent;         /* s3:TestEvent messages */

  /* event source mappings (mapping.c) */
  pthread_mutex_t map_mu;      /* guards everything down to nbusy */
  pthread_cond_t map_cond;     /* workers wait: a job, or stop */
  pthread_cond_t map_idle;     /* stop waits: slots and jobs gone */
  mapping_rt *maps;            /* every mapping, enabled or not */
  batch_job *jobs;             /* batches waiting for a worker, FIFO */
  batch_job *jobs_tail;
  size_t nslots;               /* slots alive (polling or in a batch), all mappings */
  size_t nbusy;                /* workers running a batch */
  bool map_started;            /* events__mappings_start ran: new mappings poll */
  bool map_stopping;           /* events__mappings_stop began */
  pthread_t *workers;
  uint32_t nworkers_running;
  uint64_t batches;            /* batches handed to functions */
  uint64_t batch_failures;     /* of which failed (function error, throttle) */
  uint64_t messages_deleted;   /* messages deleted after success */

  /* the DynamoDB stream poller (stream_mapping.c) */
  pthread_t stream_thread;
  bool stream_running;         /* join it */
  bool stream_stop;            /* guarded by map_mu */
  pthread_cond_t stream_cond;  /* the poller waits: its interval, or stop */

  /* --metadata: the reconciler of mappings changed by other nodes (mapping.c) */
  pthread_t sync_thread;
  bool sync_running;           /* join it */
  pthread_cond_t sync_cond;    /* it waits (under map_mu): its interval, or stop */
  pthread_mutex_t sync_mu;     /* one reconcile at a time; taken before map_mu */
  uint64_t map_gen;            /* bumped (under map_mu) by every local change of a
                                  mapping: a reconcile that saw it change skips */

  /* the live log (watch.c) */
  pthread_mutex_t wmu;         /* guards the ring */
  pthread_cond_t wcond;        /* readers wait: a line, or stop */
  char *ring[EVENTS_WATCH_KEEP]; /* heap lines; line number n is ring[(n-1) % KEEP] */
  uint64_t wlast;              /* number of the newest line (0: none yet) */
  bool wstop;                  /* no more lines: readers return */
};

/* ---- events.c: the meta environment ---- */

/* Puts (value non-NULL) or deletes key, durably. */
int events__meta_write(events_system *ev, const char *key, const char *value, err *e);
/* *value NULL when missing. */
int events__meta_get(events_system *ev, const char *key, arena *a, const char **value, err *e);
/* Every (key, value) whose key starts with prefix, in key order. */
int events__meta_scan(events_system *ev, const char *prefix, arena *a, str_pair **out,
                      size_t *n, err *e);

/* The delay before retry number `attempt` (1, 2, ...): base doubled each
 * time, capped. */
int64_t events__retry_delay(const events_system *ev, unsigned attempt);

/* ---- delivery (dispatch.c) ---- */

/* Sends one message to a queue, topic or function ARN (functions: an
 * asynchronous invocation). 0 once the target accepted it durably; *gone
 * is set when the error is permanent (no such target). */
int events__deliver(events_system *ev, const char *arn, const char *subject,
                    const char *message, bool *gone, err *e);
/* Is arn an existing queue, topic or function? */
bool events__target_exists(events_system *ev, enum events_target kind, const char *arn);

int events__dispatcher_start(events_system *ev, err *e);
void events__dispatcher_stop(events_system *ev);
/* The store's feed watcher. */
void events__feed_kick(void *ctx);

/* ---- payload helpers (record.c) ---- */

/* A feed seq as S3's sequencer: 16 upper-case hex digits. */
const char *events__sequencer(arena *a, uint64_t seq);

/* The end of an asynchronous invocation, for destinations. */
typedef struct events_outcome {
  const char *function_arn;    /* qualified with the version or alias invoked */
  const char *request_id;
  const char *condition;       /* "Success", "RetriesExhausted", "EventAgeExceeded" */
  int attempts;                /* approximateInvokeCount */
  int status;                  /* 200 */
  const char *executed_version;
  const char *function_error;  /* "Unhandled", or NULL */
  const char *payload;         /* the event */
  size_t payload_len;
  const char *response;        /* the function's answer, or NULL */
  size_t response_len;
  int64_t time_ms;
} events_outcome;

/* Lambda's invocation record of an outcome. */
char *events__invocation_record(arena *a, const events_outcome *o);

/* ---- mappings (mapping.c) ---- */

int events__mappings_load(events_system *ev, err *e);
/* --metadata: brings the mappings in memory to the shared records (started,
 * updated, stopped as other nodes changed them). A no-op without. */
void events__mappings_reconcile(events_system *ev);
/* Invokes name:qual synchronously with payload (mapping.c). */
int events__mapping_invoke(events_system *ev, const char *name, const char *qual,
                           const char *payload, bool *function_error, err *e);

/* A DynamoDB stream mapping's next batch, copied out of its record. */
typedef struct events_stream_job {
  char uuid[37];
  char *source_arn, *fname, *fqual;  /* heap copies */
  uint32_t batch_size;
  uint64_t pos;                      /* the last record delivered */
} events_stream_job;

/* mapping.c: the enabled stream mappings due now (at most max); the
 * caller frees the strings. */
size_t events__stream_mappings(events_system *ev, events_stream_job *out, size_t max);
/* mapping.c: a batch ended; ok moves the position to `to` (if the mapping
 * is still at j->pos), else the mapping waits a second. */
void events__stream_mapping_done(events_system *ev, const events_stream_job *j, uint64_t to,
                                 bool ok, const char *result);
/* stream_mapping.c: checks a stream source and picks the first position. */
int events__stream_source(events_system *ev, const char *arn, const char *starting_position,
                          uint64_t *pos, err *e);
int events__streams_start(events_system *ev, err *e);
void events__streams_stop(events_system *ev);
int events__mappings_start(events_system *ev, err *e);
void events__mappings_stop(events_system *ev);
void events__mappings_free(events_system *ev);

/* ---- function names (invoke_config.c) ---- */

/* Parses a function name or ARN with an optional qualifier; checks that the
 * function (and qualifier) exist. *arn gets the function's ARN (qualified
 * when a qualifier was given). ERR_NOT_FOUND as Lambda says it. */
int events__function_resolve(events_system *ev, const char *function, const char *qualifier,
                             arena *a, const char **name, const char **qual, const char **arn,
                             err *e);

/* ---- asynchronous invocations (invoke_config.c), called by fn ---- */

/* The retry limits of the invoked function and qualifier (-1: Lambda's
 * defaults, 2 retries and 6 hours). */
void events__async_policy(events_system *ev, const char *name, const char *qualifier,
                          int *max_retries, int *max_age_s);
/* Delivers an outcome to the configured destination and dead-letter
 * target, and logs it. */
void events__async_outcome(events_system *ev, const char *name, const char *qualifier,
                           const events_outcome *o);

/* ---- the live log (watch.c) ---- */

/* Appends one JSON line (text without the newline; copied). */
void events__watch_add(events_system *ev, const char *line);
/* Wakes every reader and makes them return. */
void events__watch_stop(events_system *ev);
void events__watch_free(events_system *ev);

#endif
