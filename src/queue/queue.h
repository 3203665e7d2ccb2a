/* queue/queue.h -- queues (SQS) and topics (SNS): durable messages with
 * visibility timeouts, long polling, redrive and FIFO groups; topics that fan
 * a published message out to queues, functions and HTTP endpoints through
 * filter policies.
 *
 * Layout of DATA/queue/:
 *   meta/   LMDB environment: queues, messages, the visibility index, FIFO
 *           deduplication, topics, subscriptions and the delivery outbox
 * With queue_options.metadata (PostgreSQL, `--metadata`), queues and their
 * messages live in its tables instead (tarn_queue*), shared by every node
 * over the same database; topics are then refused (ERR_UNAVAILABLE).
 *
 * Naming: a queue is referred to ("ref") by its name, its ARN
 * (arn:aws:sqs:REGION:ACCOUNT:NAME) or its URL (any scheme and host,
 * path /ACCOUNT/NAME); a topic by its ARN (arn:aws:sns:REGION:ACCOUNT:NAME);
 * a subscription by its ARN (TOPIC_ARN:UUID). The account is QUEUE_ACCOUNT
 * and the region QUEUE_REGION.
 *
 * Durability: every call that changes state returns 0 only once the change
 * is committed and synced (a group commit shared by concurrent callers). A
 * message acknowledged by queue_message_send survives a crash; an in-flight
 * message becomes visible again when its visibility deadline (wall clock,
 * stored) passes, also across a restart. A publish acknowledged by
 * queue_topic_publish is delivered at least once to every matching
 * subscription: to queues in the same commit, to functions and HTTP
 * endpoints from a durable outbox, with retries.
 *
 * Threads: every function is safe to call from many threads at once.
 * Results are copied into the caller's arena. Callbacks registered here are
 * called from the part's own threads and must not call back into the part
 * while holding locks the part's caller may hold.
 *
 * Wire formats are the caller's (api/sqs.c, api/sns.c): this part knows
 * nothing of XML or HTTP requests. It only speaks HTTP as a client, to
 * deliver notifications to http/https subscribers.
 */
#ifndef TARN_QUEUE_QUEUE_H
#define TARN_QUEUE_QUEUE_H

#include "base/arena.h"
#include "base/err.h"
#include "base/netpolicy.h"
#include "base/pg.h"
#include "base/text.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Codes of this part that base/err.h's table does not have; the API files
 * map them to SQS / SNS error codes. */
#define QUEUE_ERR_NO_QUEUE (-1101)        /* QueueDoesNotExist (400) */
#define QUEUE_ERR_QUEUE_EXISTS (-1102)    /* QueueAlreadyExists: other attributes */
#define QUEUE_ERR_RECEIPT (-1103)         /* ReceiptHandleIsInvalid */
#define QUEUE_ERR_NOT_INFLIGHT (-1104)    /* the handle's message is not in flight */
#define QUEUE_ERR_ATTR_NAME (-1105)       /* InvalidAttributeName */
#define QUEUE_ERR_MISSING (-1106)         /* MissingParameter */
#define QUEUE_ERR_CONTENTS (-1107)        /* InvalidMessageContents */
#define QUEUE_ERR_NO_TOPIC (-1108)        /* NotFound: topic */
#define QUEUE_ERR_NO_SUB (-1109)          /* NotFound: subscription */
#define QUEUE_ERR_FILTER (-1110)          /* InvalidParameter: FilterPolicy */
#define QUEUE_ERR_TOKEN (-1111)           /* InvalidParameter: confirmation token */
/* ERR_INVALID is InvalidParameterValue (SQS) / InvalidParameter (SNS). */

#define QUEUE_ACCOUNT "000000000000"
#define QUEUE_REGION "us-east-1"
#define QUEUE_NAME_MAX 80                 /* queue and topic names, .fifo included */
#define QUEUE_MAX_MESSAGE 262144          /* body + attributes, bytes */
#define QUEUE_MAX_ATTRS 10                /* message attributes per message */
#define QUEUE_MAX_BATCH 10                /* entries per batch call, messages per receive */
#define QUEUE_MAX_WAIT_SECONDS 20
#define QUEUE_MAX_VISIBILITY 43200        /* 12 hours */
#define QUEUE_MAX_DELAY 900
#define QUEUE_DEDUP_WINDOW_MS 300000      /* FIFO deduplication: five minutes */
#define QUEUE_MAX_TAGS 50
#define QUEUE_ID_MAX 48                   /* message ids: 36-character UUIDs */

typedef struct queue_system queue_system;

/* ---- lifecycle ---- */

typedef struct queue_options {
  const char *data_dir;        /* DATA: queue/meta goes under it (copied) */
  const char *access_key;      /* credentials to presign the SubscribeURL and */
  const char *secret_key;      /*   UnsubscribeURL of HTTP subscriptions (copied) */
  uint32_t delivery_workers;   /* outbox workers (functions, HTTP); 0: 4 */
  uint32_t retry_base_ms;      /* first retry delay of a failed delivery; 0: 1000
                                  (doubles up to 60 s) */
  uint32_t max_attempts;       /* deliveries to functions and HTTP endpoints
                                  are dropped after; 0: 50 */
  const netpolicy *egress;     /* which addresses HTTP/HTTPS endpoints may
                                  have (base/netpolicy.h); NULL: the defaults.
                                  Must outlive the queue system */
  void (*delivery_failed)(const char *subscription, const char *why);
                               /* told why an HTTP delivery attempt failed
                                  (the server logs it); may be NULL */
  pg_pool *metadata;           /* queues and messages in PostgreSQL, shared
                                  with other nodes; NULL: LMDB. Must outlive
                                  the queue system */
} queue_options;

/* Opens DATA/queue/meta (creating it), loads queues and topics, and starts
 * the commit thread and the timer (long-poll deadlines and wake-ups,
 * retention, the deduplication window): queues work from here on. */
int queue_system_open(const queue_options *o, queue_system **out, err *e);
/* Starts the delivery workers (functions, HTTP endpoints); outbox entries
 * left by a previous run are delivered. endpoint is the server's base URL
 * ("http://127.0.0.1:9000"), used in the SubscribeURL, UnsubscribeURL and
 * SigningCertURL of notifications. */
int queue_system_start(queue_system *q, const char *endpoint, err *e);
/* Completes every pending poll (with no messages) and refuses new ones,
 * stops the threads; nothing queued is lost. Call before the HTTP server
 * stops. Idempotent. */
void queue_system_stop(queue_system *q);
/* Accepts NULL; returns NULL. */
queue_system *queue_system_close(queue_system *q);

/* ---- queues ---- */

/* What callers need to know about a queue. */
typedef struct queue_info {
  const char *name;
  const char *arn;
  bool fifo;
  uint32_t visibility_timeout;  /* seconds */
  uint32_t delay_seconds;
  uint32_t receive_wait_seconds;
  uint32_t retention_seconds;
  uint32_t max_message_size;
  const char *dlq_arn;          /* RedrivePolicy deadLetterTargetArn, or NULL */
  uint32_t max_receive_count;   /* RedrivePolicy maxReceiveCount, 0 when none */
} queue_info;

/* The queue's name from a ref (name, ARN or URL), without looking it up;
 * ERR_INVALID when the ref is none of the three. */
int queue_ref_name(const char *ref, arena *a, const char **name, err *e);
/* Looks up a queue. QUEUE_ERR_NO_QUEUE when it does not exist. */
int queue_lookup(queue_system *q, const char *ref, arena *a, queue_info *out, err *e);

/* Creates a queue with the SQS attributes given (VisibilityTimeout, ...,
 * FifoQueue, ContentBasedDeduplication, RedrivePolicy, Policy, ...) and
 * tags. Idempotent: an existing queue with the same attributes is 0 (tags
 * then ignored); with other attributes QUEUE_ERR_QUEUE_EXISTS. */
int queue_create(queue_system *q, const char *name, const str_pair *attrs, size_t nattrs,
                 const str_pair *tags, size_t ntags, arena *a, queue_info *out, err *e);
/* Deletes a queue and its messages. */
int queue_delete(queue_system *q, const char *ref, err *e);
/* Deletes every message of a queue. */
int queue_purge(queue_system *q, const char *ref, err *e);
/* Queue names starting with prefix (NULL: all), in name order, after
 * marker (NULL: from the start), at most max (0: 1000). *next is the marker
 * of the next page, NULL on the last one. */
int queue_list(queue_system *q, const char *prefix, const char *marker, size_t max, arena *a,
               const char ***names, size_t *n, const char **next, err *e);
/* The queues whose RedrivePolicy names ref as dead-letter queue. */
int queue_dlq_sources(queue_system *q, const char *ref, arena *a, const char ***names,
                      size_t *n, err *e);

/* Every attribute of a queue, as SQS names and formats them (counts,
 * timestamps, QueueArn, ...), in a stable order. */
int queue_attrs_get(queue_system *q, const char *ref, arena *a, str_pair **out, size_t *n,
                    err *e);
/* Sets attributes; unknown names QUEUE_ERR_ATTR_NAME, bad values
 * ERR_INVALID; FifoQueue cannot change. */
int queue_attrs_set(queue_system *q, const char *ref, const str_pair *attrs, size_t nattrs,
                    err *e);

/* Approximate counts: visible, in flight, delayed. */
int queue_counts(queue_system *q, const char *ref, uint64_t *visible, uint64_t *inflight,
                 uint64_t *delayed, err *e);

int queue_tags_get(queue_system *q, const char *ref, arena *a, str_pair **out, size_t *n,
                   err *e);
int queue_tags_set(queue_system *q, const char *ref, const str_pair *tags, size_t n, err *e);
int queue_tags_remove(queue_system *q, const char *ref, const char *const *keys, size_t n,
                      err *e);

/* ---- messages ---- */

/* A message attribute (SQS MessageAttributeValue, SNS the same). */
typedef struct queue_attr {
  const char *name;
  const char *type;        /* "String", "Number", "Binary", optionally ".custom" */
  const char *value;       /* String and Number values, else NULL */
  const uint8_t *bin;      /* Binary values, else NULL */
  size_t bin_len;
} queue_attr;

typedef struct queue_send {
  const char *body;
  size_t body_len;
  const queue_attr *attrs;      /* message attributes */
  size_t nattrs;
  const char *trace_header;     /* system attribute AWSTraceHeader, or NULL */
  int delay_seconds;            /* -1: the queue's DelaySeconds */
  const char *group_id;         /* FIFO: MessageGroupId (required there) */
  const char *dedup_id;         /* FIFO: MessageDeduplicationId, or NULL for
                                   content-based deduplication */
  const char *sender_id;        /* SenderId; NULL: the account */
} queue_send;

typedef struct queue_sent {
  char message_id[QUEUE_ID_MAX];
  char md5_body[33];            /* hex */
  char md5_attrs[33];           /* hex, "" without attributes */
  char md5_sys_attrs[33];       /* hex, "" without AWSTraceHeader */
  char sequence_number[24];     /* FIFO: 20 digits, else "" */
} queue_sent;

/* Sends one message, durably. Checks: size (QUEUE_MAX_MESSAGE and the
 * queue's MaximumMessageSize, ERR_INVALID), characters (QUEUE_ERR_CONTENTS),
 * attributes (ERR_INVALID), FIFO fields (QUEUE_ERR_MISSING / ERR_INVALID).
 * A FIFO duplicate within the window returns the first send's ids. */
int queue_message_send(queue_system *q, const char *ref, const queue_send *m, queue_sent *out,
                       err *e);
/* Sends n (1..QUEUE_MAX_BATCH) messages in one commit. Returns an error only
 * when nothing could be tried (no queue); each entry's own result is in
 * errs[i] (code 0 and out[i] filled when sent). */
int queue_message_send_batch(queue_system *q, const char *ref, const queue_send *m, size_t n,
                             queue_sent *out, err *errs, err *e);

/* A received message. All memory in the caller's arena. */
typedef struct queue_message {
  const char *message_id;
  const char *receipt_handle;
  const char *body;
  size_t body_len;
  char md5_body[33];
  char md5_attrs[33];           /* "" without attributes */
  queue_attr *attrs;            /* every message attribute, by name */
  size_t nattrs;
  const char *trace_header;     /* or NULL */
  int64_t sent_ms;              /* SentTimestamp */
  int64_t first_receive_ms;     /* ApproximateFirstReceiveTimestamp */
  uint32_t receive_count;       /* ApproximateReceiveCount, this one included */
  const char *sender_id;
  const char *group_id;         /* FIFO, else NULL */
  const char *dedup_id;         /* FIFO, else NULL */
  const char *sequence_number;  /* FIFO, else NULL */
} queue_message;

typedef struct queue_receive {
  uint32_t max;                 /* 1..10; 0 means 1 */
  int visibility_timeout;       /* seconds, -1: the queue's */
  int wait_seconds;             /* -1: the queue's ReceiveMessageWaitTimeSeconds;
                                   queue_message_receive blocks its caller up to
                                   this long, queue_poll_start parks instead */
} queue_receive;

/* Receives up to r->max visible messages, making them invisible for the
 * visibility timeout (durably) and counting the receive. Messages past
 * the queue's maxReceiveCount move to its dead-letter queue instead; FIFO
 * queues return messages in order and skip groups with a message in
 * flight. With wait_seconds > 0 and nothing visible, blocks the calling
 * thread until a message arrives, the time is up or the system stops (for
 * pollers on their own threads; request threads use queue_poll_start). */
int queue_message_receive(queue_system *q, const char *ref, const queue_receive *r, arena *a,
                          queue_message **out, size_t *n, err *e);

/* Deletes the message a receipt handle names. QUEUE_ERR_RECEIPT when the
 * handle is malformed or of another queue; a handle of a message already
 * deleted or received again since is accepted (as SQS does). */
int queue_message_delete(queue_system *q, const char *ref, const char *handle, err *e);
/* n handles (1..QUEUE_MAX_BATCH) in one commit; errs[i] per entry. */
int queue_message_delete_batch(queue_system *q, const char *ref, const char *const *handles,
                               size_t n, err *errs, err *e);
/* Sets the remaining visibility timeout of an in-flight message to seconds
 * from now (0 makes it visible). QUEUE_ERR_NOT_INFLIGHT when the message is
 * gone or the handle is stale. */
int queue_message_visibility(queue_system *q, const char *ref, const char *handle,
                             uint32_t seconds, err *e);
int queue_message_visibility_batch(queue_system *q, const char *ref,
                                   const char *const *handles, const uint32_t *seconds,
                                   size_t n, err *errs, err *e);

/* ---- long polling without a thread ---- */

typedef struct queue_poll queue_poll;

/* Called once per started poll, from a thread of the part: rc 0 with the
 * messages (none when the wait ended empty or the system stops), or an
 * error (QUEUE_ERR_NO_QUEUE when the queue was deleted meanwhile). msgs and
 * everything they point to belong to the poll and are valid until done
 * returns: copy what must outlive it. done runs on the part's commit
 * thread: it must be short and may call only queue_message_release and
 * queue_poll_cancel of this part (any other call would wait for itself). */
typedef void (*queue_poll_done)(void *ctx, int rc, queue_message *msgs, size_t n,
                                const err *e);

/* Receives like queue_message_receive without blocking a thread. With a
 * wait of 0 it answers at once: returns 0, *poll NULL, the messages in
 * *out / *n (in a). Otherwise it returns 0 with *poll set and done will be
 * called exactly once, from another thread and possibly before this returns,
 * when messages come or wait_seconds pass, unless queue_poll_cancel returns
 * true first. Errors are returned directly and done is never called for
 * them. */
int queue_poll_start(queue_system *q, const char *ref, const queue_receive *r, arena *a,
                     queue_message **out, size_t *n, queue_poll_done done, void *ctx,
                     queue_poll **poll, err *e);
/* Cancels a poll. true: done will never be called and the poll is freed.
 * false: done has run or is about to run (then the poll frees itself after
 * done returns). Never waits for done, so it may be called under a lock
 * that done takes. */
bool queue_poll_cancel(queue_system *q, queue_poll *poll);
/* Makes received messages visible again (a poll whose client went away),
 * without waiting for the commit. Errors are ignored: stale handles are
 * skipped. */
void queue_message_release(queue_system *q, const char *ref, const queue_message *msgs,
                           size_t n);

/* ---- topics ---- */

typedef struct queue_topic_info {
  const char *name;
  const char *arn;
  bool fifo;
} queue_topic_info;

/* Creates a topic (idempotent: an existing topic is 0, as SNS does) with
 * attributes (DisplayName, Policy, DeliveryPolicy, FifoTopic,
 * ContentBasedDeduplication, ...) and tags. */
int queue_topic_create(queue_system *q, const char *name, const str_pair *attrs, size_t nattrs,
                       const str_pair *tags, size_t ntags, arena *a, queue_topic_info *out,
                       err *e);
/* Deletes a topic and its subscriptions (deleting a missing topic is 0). */
int queue_topic_delete(queue_system *q, const char *arn, err *e);
int queue_topic_lookup(queue_system *q, const char *arn, arena *a, queue_topic_info *out,
                       err *e);
/* Topic ARNs in order, after marker (NULL: from the start), at most max. */
int queue_topic_list(queue_system *q, const char *marker, size_t max, arena *a,
                     const char ***arns, size_t *n, const char **next, err *e);
/* TopicArn, Owner, DisplayName, Policy, SubscriptionsConfirmed /Pending
 * /Deleted, EffectiveDeliveryPolicy, FifoTopic, ... */
int queue_topic_attrs_get(queue_system *q, const char *arn, arena *a, str_pair **out,
                          size_t *n, err *e);
int queue_topic_attr_set(queue_system *q, const char *arn, const char *name, const char *value,
                         err *e);
int queue_topic_tags_get(queue_system *q, const char *arn, arena *a, str_pair **out, size_t *n,
                         err *e);
int queue_topic_tags_set(queue_system *q, const char *arn, const str_pair *tags, size_t n,
                         err *e);
int queue_topic_tags_remove(queue_system *q, const char *arn, const char *const *keys,
                            size_t n, err *e);

/* ---- subscriptions ---- */

typedef struct queue_sub_info {
  const char *arn;          /* "PendingConfirmation" until confirmed (http/https) */
  const char *topic_arn;
  const char *protocol;     /* "sqs", "lambda", "http", "https" */
  const char *endpoint;     /* queue ARN, function ARN or URL */
  bool confirmed;
} queue_sub_info;

/* Subscribes an endpoint (sqs: a queue ARN; lambda: a function ARN;
 * http/https: a URL) with attributes (RawMessageDelivery, FilterPolicy,
 * FilterPolicyScope, RedrivePolicy, ...). sqs and lambda subscriptions are
 * confirmed at once; http/https ones get a SubscriptionConfirmation message
 * and stay pending until queue_sub_confirm. Subscribing the same endpoint
 * twice returns the existing subscription. */
int queue_sub_create(queue_system *q, const char *topic_arn, const char *protocol,
                     const char *endpoint, const str_pair *attrs, size_t nattrs, arena *a,
                     queue_sub_info *out, err *e);
/* Confirms with the token of the SubscriptionConfirmation message;
 * QUEUE_ERR_TOKEN when it does not match. */
int queue_sub_confirm(queue_system *q, const char *topic_arn, const char *token, arena *a,
                      queue_sub_info *out, err *e);
int queue_sub_delete(queue_system *q, const char *sub_arn, err *e);
/* Subscriptions of one topic (topic_arn) or all (NULL), after marker. */
int queue_sub_list(queue_system *q, const char *topic_arn, const char *marker, size_t max,
                   arena *a, queue_sub_info **out, size_t *n, const char **next, err *e);
int queue_sub_attrs_get(queue_system *q, const char *sub_arn, arena *a, str_pair **out,
                        size_t *n, err *e);
/* RawMessageDelivery, FilterPolicy (validated: QUEUE_ERR_FILTER),
 * FilterPolicyScope (MessageAttributes | MessageBody), RedrivePolicy,
 * DeliveryPolicy. */
int queue_sub_attr_set(queue_system *q, const char *sub_arn, const char *name,
                       const char *value, err *e);

/* ---- publishing ---- */

typedef struct queue_publish {
  const char *message;          /* the Message (UTF-8) */
  size_t len;
  const char *subject;          /* or NULL */
  const char *structure;        /* "json": message is {"default": ..., "sqs": ...} */
  const queue_attr *attrs;      /* message attributes */
  size_t nattrs;
  const char *group_id;         /* FIFO topics */
  const char *dedup_id;         /* FIFO topics */
} queue_publish;

/* Notifications carry SNS's envelope; its Signature is a fixed placeholder
 * (tarn does not sign them) and SigningCertURL points at the server but is
 * not served. SubscribeURL and UnsubscribeURL are SigV4-presigned links to
 * the server, valid for 7 days. */

/* Publishes to a topic: matches every confirmed subscription's filter
 * policy, sends to the matching queues in the same commit and queues the
 * deliveries to functions and HTTP endpoints in the durable outbox. Returns
 * once that is committed. message_id gets the SNS MessageId, sequence (may
 * be NULL) the FIFO SequenceNumber or "". */
int queue_topic_publish(queue_system *q, const char *topic_arn, const queue_publish *p,
                        char message_id[QUEUE_ID_MAX], char sequence[24], err *e);
/* n entries (1..QUEUE_MAX_BATCH) in one commit; errs[i] per entry. */
int queue_topic_publish_batch(queue_system *q, const char *topic_arn, const queue_publish *p,
                              size_t n, char (*message_ids)[QUEUE_ID_MAX], err *errs, err *e);

/* Delivery to `lambda` subscriptions: the wiring code registers a callback
 * that takes a function ARN and the SNS event
 * ({"Records":[{"EventSource":"aws:sns","EventVersion":"1.0",
 * "EventSubscriptionArn":...,"Sns":{...envelope...}}]}) and queues an
 * asynchronous invocation. It returns 0 once the invocation is accepted
 * durably; anything else is retried with backoff (up to max_attempts).
 * Called from the delivery workers, several at once. Until one is set,
 * lambda deliveries wait in the outbox. */
typedef int (*queue_lambda_deliver_fn)(void *ctx, const char *function_arn, const char *event,
                                       size_t len, err *e);
void queue_set_lambda_deliverer(queue_system *q, queue_lambda_deliver_fn fn, void *ctx);

/* ---- helpers shared with the API files and the tests ---- */

/* SQS's MD5OfMessageAttributes over attrs (any order): hex into out. */
void queue_md5_attrs(const queue_attr *attrs, size_t n, char out[33]);
/* MD5OfMessageSystemAttributes for an AWSTraceHeader value. */
void queue_md5_trace_header(const char *value, char out[33]);

/* A compiled SNS filter policy (JSON). */
typedef struct queue_filter queue_filter;
/* Compiles a policy; QUEUE_ERR_FILTER with SNS's reason when invalid. */
int queue_filter_new(const char *policy_json, queue_filter **out, err *e);
queue_filter *queue_filter_free(queue_filter *f);
/* Matches a message: with body_scope, the JSON body (not JSON: no match);
 * else the message attributes (String and Number values; String.Array as
 * its JSON array). */
bool queue_filter_match(const queue_filter *f, bool body_scope, const queue_attr *attrs,
                        size_t nattrs, const char *body, size_t body_len);

#endif
