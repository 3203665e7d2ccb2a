/* events/events.h -- events (DESIGN.md §6): bucket notifications read from
 * the store's change feed and delivered to queues, topics and functions;
 * event source mappings that drive functions from queues; the asynchronous
 * invocation settings of functions (retries, age, destinations, dead-letter
 * queues); and a live view of all of it for `tarn events`.
 *
 * Layout of DATA/events/:
 *   meta/   LMDB environment: event source mappings, functions' event
 *           invoke configurations and dead-letter targets
 * Bucket notification configurations live with their bucket in the store
 * (store_bucket_notification_set), because the store must know, inside the
 * transaction of an object change, whether to record it in its feed.
 *
 * Delivery is at least once: a feed entry is trimmed only after every
 * matching target accepted its event durably (queue_message_send,
 * queue_topic_publish and fn_invoke's Event queue all return once
 * committed). A crash in between delivers it again; nothing is skipped.
 *
 * Threads: every function is safe to call from many threads at once;
 * results are copied into the caller's arena. Wire formats (XML, Lambda's
 * JSON) are the API files' (api/s3_bucket.c, api/lambda_events.c); the
 * payloads functions and queues receive (S3 event records, SQS event
 * records, invocation records) are built here, as AWS builds them.
 */
#ifndef TARN_EVENTS_EVENTS_H
#define TARN_EVENTS_EVENTS_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "fn/fn.h"
#include "kv/kv.h"
#include "queue/queue.h"
#include "store/store.h"
#include "stream/stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENTS_REGION "us-east-1"
#define EVENTS_ACCOUNT "000000000000"
#define EVENTS_MAX_RULES 100            /* configurations per bucket */
#define EVENTS_MAX_RULE_EVENTS 32       /* event types per configuration */
#define EVENTS_MAX_MAPPINGS 1000        /* event source mappings */
#define EVENTS_MAX_BATCH 10000          /* BatchSize of a standard queue */
#define EVENTS_MAX_FIFO_BATCH 10        /* BatchSize of a FIFO queue */
#define EVENTS_MAX_WINDOW 300           /* MaximumBatchingWindowInSeconds */
#define EVENTS_DEFAULT_CONCURRENCY 5    /* pollers per mapping without ScalingConfig */
#define EVENTS_MAX_CONCURRENCY 1000     /* ScalingConfig.MaximumConcurrency */

typedef struct events_system events_system;

/* ---- lifecycle ---- */

typedef struct events_options {
  const char *data_dir;       /* DATA: events/meta goes under it (copied) */
  store *st;                  /* borrowed: the feed and the configurations */
  queue_system *q;            /* borrowed, or NULL: no queue or topic targets */
  fn_system *fn;              /* borrowed, or NULL: no function targets */
  stream_system *streams;     /* borrowed, or NULL: no Kinesis event sources */
  kv *kv;                     /* borrowed, or NULL: no DynamoDB stream sources */
  uint32_t retry_base_ms;     /* first retry of a failed delivery (doubles, up to
                                 60 s); 0: $TARN_EVENT_RETRY_BASE_MS, else 1000 */
  uint32_t workers;           /* threads that run mapping batches; 0: 16 */
  struct pg_pool *metadata;   /* borrowed, or NULL: --metadata, the mappings and
                                 invoke configs in PostgreSQL, shared by nodes */
} events_options;

/* Opens DATA/events/meta (creating it) and loads the mappings. */
int events_system_open(const events_options *o, events_system **out, err *e);
/* Starts the dispatcher (entries left in the feed by a previous run are
 * delivered first), the mappings' pollers and their workers, and registers
 * the lambda deliverer of topics (queue_set_lambda_deliverer). Call once
 * the queue and function systems are started. */
int events_system_start(events_system *ev, err *e);
/* Stops the threads, ends `tarn events` streams; what is not delivered
 * stays in the feed. Call before the queue and function systems stop and
 * before the HTTP server stops. Idempotent. */
void events_system_stop(events_system *ev);
/* Accepts NULL; returns NULL. */
events_system *events_system_close(events_system *ev);

/* Prometheus text: events delivered, failed, pending; mapping batches. */
void events_metrics(events_system *ev, buf *out);

/* ---- bucket notification configurations ---- */

enum events_target { EVENTS_QUEUE = 1, EVENTS_TOPIC, EVENTS_FUNCTION };

/* One QueueConfiguration, TopicConfiguration or CloudFunctionConfiguration. */
typedef struct events_rule {
  const char *id;             /* Id; a generated one when NULL at put */
  enum events_target target;
  const char *arn;            /* the queue's, topic's or function's ARN */
  const char **events;        /* "s3:ObjectCreated:*", "s3:ObjectRemoved:Delete", ... */
  size_t nevents;
  const char *prefix;         /* Filter.S3Key prefix rule, or NULL */
  const char *suffix;         /* suffix rule, or NULL */
} events_rule;

typedef struct events_config {
  events_rule *rules;
  size_t nrules;
  bool eventbridge;           /* EventBridgeConfiguration present (kept, not acted on) */
} events_config;

/* S3's checks of a configuration that need no lookup: known event types,
 * at most one prefix and one suffix, no two rules sharing an event type
 * with overlapping filters. ERR_INVALID with S3's message. */
int events_config_check(const events_config *c, err *e);
/* The stored form (JSON) and back. */
char *events_config_to_json(const events_config *c, arena *a);
int events_config_from_json(const char *json, arena *a, events_config *out, err *e);
/* Does rule r want an event named event_name ("ObjectCreated:Put") for key? */
bool events_rule_match(const events_rule *r, const char *event_name, const char *key);

/* Checks c (events_config_check, then that every target exists unless
 * skip_validation: ERR_INVALID "Unable to validate the following
 * destination configurations"), gives rules without an Id one, stores it
 * (an empty configuration removes it) and sends the s3:TestEvent message
 * to its queues and topics, as S3 does. request_id names the request in
 * the test message. */
int events_config_put(events_system *ev, const char *bucket, const events_config *c,
                      bool skip_validation, const char *request_id, arena *a, err *e);
/* The bucket's configuration (no rules when it has none). */
int events_config_get(events_system *ev, const char *bucket, arena *a, events_config *out,
                      err *e);

/* ---- payloads, as AWS builds them (pure functions, for tests too) ---- */

/* An object key as S3 writes it in event records: form-URL-encoded ('+'
 * for a space, '/' kept). */
char *events_key_encode(arena *a, const char *key);
/* The S3 event message {"Records":[...]} of one change for one rule. */
char *events_s3_message(arena *a, const store_change *ch, const char *configuration_id);
/* S3's s3:TestEvent message. */
char *events_test_message(arena *a, const char *bucket, const char *request_id, int64_t now_ms);
/* The SQS event {"Records":[...]} of a batch, for a function. */
char *events_sqs_message(arena *a, const char *queue_arn, const queue_message *msgs, size_t n);
/* The Kinesis event {"Records":[...]} of a batch of one shard, for a function. */
char *events_kinesis_message(arena *a, const char *stream_arn, const stream_batch *b);
/* The ids a function's answer reports as failed (ReportBatchItemFailures):
 * 0 with *n ids; ERR_INVALID when the answer is malformed or names an id not
 * in the batch (then the whole batch counts as failed, as Lambda does). */
int events_batch_failures(const char *answer, size_t len, const queue_message *msgs,
                          size_t nmsgs, arena *a, const char ***ids, size_t *n, err *e);

/* ---- event source mappings (SQS, Kinesis or a DynamoDB stream -> function) ---- */

typedef struct events_mapping {
  const char *uuid;
  const char *source_arn;       /* the queue's ARN */
  const char *function_arn;     /* the function's ARN, qualified when the mapping is */
  uint32_t batch_size;
  uint32_t window_s;            /* MaximumBatchingWindowInSeconds */
  bool enabled;
  bool report_failures;         /* FunctionResponseTypes ReportBatchItemFailures */
  uint32_t max_concurrency;     /* ScalingConfig.MaximumConcurrency, 0: none set */
  int64_t modified_ms;
  const char *last_result;      /* "No records processed", "OK", "PROBLEM: ..." */
  const char *state;            /* "Enabled", "Disabled", ... as Lambda says it */
  /* Kinesis sources only */
  const char *starting_position;/* TRIM_HORIZON, LATEST, AT_TIMESTAMP; NULL for SQS */
  bool bisect;                  /* BisectBatchOnFunctionError */
  int max_retries;              /* MaximumRetryAttempts, -1: until the records expire */
} events_mapping;

/* What a create or an update sets; an update changes only what has_* says. */
typedef struct events_mapping_params {
  const char *function;         /* a name or ARN (create: required) */
  const char *source_arn;       /* create only */
  bool has_batch_size;
  uint32_t batch_size;
  bool has_window;
  uint32_t window_s;
  bool has_enabled;
  bool enabled;
  bool has_response_types;
  bool report_failures;
  bool has_concurrency;
  uint32_t max_concurrency;     /* 0 removes it */
  /* stream sources only (Kinesis; DynamoDB streams: TRIM_HORIZON or LATEST) */
  const char *starting_position;/* create: TRIM_HORIZON, LATEST, AT_TIMESTAMP */
  int64_t starting_timestamp_ms;/* AT_TIMESTAMP */
  bool has_bisect;
  bool bisect;
  bool has_retries;
  int max_retries;              /* -1 .. 10000 */
} events_mapping_params;

/* Errors: ERR_NOT_FOUND (function), ERR_INVALID (queue missing or not SQS,
 * sizes), ERR_CONFLICT (a mapping of this queue and function exists). The
 * state in *out is "Creating", as Lambda answers. */
int events_mapping_create(events_system *ev, const events_mapping_params *p, arena *a,
                          events_mapping *out, err *e);
/* ERR_NOT_FOUND for an unknown uuid. */
int events_mapping_get(events_system *ev, const char *uuid, arena *a, events_mapping *out,
                       err *e);
/* State in *out: "Updating", "Enabling" or "Disabling". */
int events_mapping_update(events_system *ev, const char *uuid, const events_mapping_params *p,
                          arena *a, events_mapping *out, err *e);
/* Stops its pollers (messages in flight come back after their visibility
 * timeout). State in *out: "Deleting". */
int events_mapping_delete(events_system *ev, const char *uuid, arena *a, events_mapping *out,
                          err *e);
/* Mappings filtered by source ARN and/or function (NULL: any), in uuid
 * order after marker, at most max (0: 100). */
int events_mapping_list(events_system *ev, const char *source_arn, const char *function,
                        const char *marker, size_t max, arena *a, events_mapping **out,
                        size_t *n, const char **next, err *e);

/* ---- asynchronous invocation settings (event invoke configs) ---- */

typedef struct events_invoke_config {
  const char *function_arn;     /* qualified: ...:function:NAME:$LATEST or :VERSION/ALIAS */
  int max_retries;              /* MaximumRetryAttempts 0..2; -1 when not set (2) */
  int max_age_s;                /* MaximumEventAgeInSeconds 60..21600; -1 when not set */
  const char *on_success;       /* destination ARNs, or NULL */
  const char *on_failure;
  int64_t modified_ms;
} events_invoke_config;

/* Put replaces the whole configuration, update (merge true) only the
 * fields given (max_retries/max_age_s -1 and NULL destinations keep;
 * "" removes a destination). Errors: ERR_NOT_FOUND (function),
 * ERR_INVALID (ranges, destination ARNs). */
int events_invoke_config_put(events_system *ev, const char *function, const char *qualifier,
                             const events_invoke_config *c, bool merge, arena *a,
                             events_invoke_config *out, err *e);
/* ERR_NOT_FOUND when the function has none. */
int events_invoke_config_get(events_system *ev, const char *function, const char *qualifier,
                             arena *a, events_invoke_config *out, err *e);
int events_invoke_config_delete(events_system *ev, const char *function, const char *qualifier,
                                err *e);
/* Every configuration of a function (all its qualifiers). */
int events_invoke_config_list(events_system *ev, const char *function, arena *a,
                              events_invoke_config **out, size_t *n, err *e);

/* A function's DeadLetterConfig.TargetArn (a queue or topic ARN; NULL or
 * "" removes it). */
int events_dead_letter_set(events_system *ev, const char *function, const char *target_arn,
                           err *e);
/* *target_arn NULL when none. */
int events_dead_letter_get(events_system *ev, const char *function, arena *a,
                           const char **target_arn, err *e);

/* ---- the live view (`tarn events`) ---- */

/* Every event, delivery, mapping batch and asynchronous outcome is also a
 * line of JSON in a bounded in-memory log (the last EVENTS_WATCH_KEEP
 * lines), numbered from 1. */
#define EVENTS_WATCH_KEEP 1000

/* Lines after `after` (0: the oldest kept), at most max, into out (one per
 * line); *last gets the number of the last line given (or `after`). With
 * wait_ms > 0 and nothing new, waits up to that long (or until stop).
 * Returns ERR_UNAVAILABLE once the system stops. */
int events_watch_read(events_system *ev, uint64_t after, size_t max, int wait_ms, buf *out,
                      uint64_t *last, err *e);

/* ---- in-process observers ---- */

/* Told every change of the store's feed (a bucket with a notification
 * configuration), on the dispatcher thread, once per entry, after its
 * notifications were delivered: it must return quickly (queue the work).
 * At least once, as the notifications are. fn NULL removes it. */
typedef void (*events_observer)(void *ctx, const store_change *ch);
void events_observe(events_system *ev, events_observer fn, void *ctx);

#endif
