/* queue/internal.h -- the queue part's private state and what its files
 * share. Never included outside src/queue/.
 *
 * Who owns what:
 *   system.c   open/start/stop/close, the LMDB environment, the timer thread
 *   commit.c   changes and the group committer (the only LMDB writer)
 *   codec.c    keys, the message record, attribute encoding, digests, ids
 *   queues.c   queues: create, delete, purge, attributes, tags, the cache
 *   message.c  send, receive (with redrive and FIFO groups), delete, visibility
 *   poll.c     long polls: waiters, wake-ups, deadlines
 *   filter.c   SNS filter policies
 *   topic.c    topics and subscriptions
 *   publish.c  publish: filter, envelopes, fan-out, the outbox
 *   deliver.c  the delivery workers (functions, HTTP endpoints)
 *   pg_store.c the queue store in PostgreSQL (--metadata), beside the LMDB one
 *   pg_topic.c the topic store and the outbox in PostgreSQL (--metadata)
 *
 * Locks, in the order they may be taken (never the other way):
 *   meta_mu (metadata changes, one at a time) -> mu (the caches, rwlock)
 *   -> wmu (polls) -> the committer's lock (base/lmdb_env.c); dmu (deliveries) alone;
 *   pg_store.c's own lock (its jobs and wake-ups) alone. pg_topic.c takes
 *   connections under meta_mu only to reload topics. With the PostgreSQL
 *   store, only the listener waits for meta_mu while it holds a pooled
 *   connection (its LISTEN one); every other holder of a connection finishes
 *   without meta_mu, so a meta_mu holder waiting for a connection gets one.
 * Nobody waits for the committer while holding mu or wmu: an apply running
 * on the committer takes mu (read) and wmu.
 *
 * Functions shared between the files are named queue__* (internal).
 */
#ifndef TARN_QUEUE_INTERNAL_H
#define TARN_QUEUE_INTERNAL_H

#include "queue.h"

#include "base/lmdb_env.h"
#include "base/pg.h"

#include <jansson.h>
#include <lmdb.h>
#include <pthread.h>

#define QUEUE_DIR_MAX 3000
#define ARN_SQS_PREFIX "arn:aws:sqs:" QUEUE_REGION ":" QUEUE_ACCOUNT ":"
#define ARN_SNS_PREFIX "arn:aws:sns:" QUEUE_REGION ":" QUEUE_ACCOUNT ":"

typedef struct qchange qchange;

/* What an apply leaves for after its commit (only if it commits). */
enum qnote_kind {
  NOTE_WAKE = 1,   /* a: queue id; b: messages made visible now (UINT64_MAX: all waiters) */
  NOTE_TIMER,      /* visibility deadlines changed: the timer recomputes */
  NOTE_OUTBOX,     /* a: outbox key of a new delivery */
};

typedef struct qnote {
  enum qnote_kind kind;
  uint64_t a;
  uint64_t b;
} qnote;

/* Runs on the committer thread in a nested transaction; a is scratch
 * memory released after the batch. */
typedef int (*qchange_fn)(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e);

struct qchange {
  lmdb_change base;       /* first: the committer's part (rc, e, queue link) */
  qchange_fn apply;
  void *arg;              /* the caller's context for apply */
  /* NULL: a caller waits in queue__commit_run. Else the change is
     asynchronous: complete runs on the committer thread once the batch is
     done (rc set) and owns c from then on. */
  void (*complete)(queue_system *q, qchange *c);
  qnote *notes;           /* heap, freed by the committer */
  size_t nnotes;
  size_t capnotes;
};

/* A queue, as cached in memory (the LMDB record is the truth). */
typedef struct mqueue {
  char *name;
  uint64_t id;              /* message keys start with it; never reused */
  int64_t version;          /* the shared store's record version (PostgreSQL) */
  bool fifo;
  int64_t created_ms;
  int64_t modified_ms;
  json_t *attrs;            /* the settable attributes given, name -> string */
  json_t *tags;             /* key -> value */
  uint32_t visibility;      /* parsed from attrs, with defaults */
  uint32_t delay;
  uint32_t wait;
  uint32_t retention;
  uint32_t max_size;
  bool content_dedup;
  char *dlq_name;           /* RedrivePolicy's target, or NULL */
  uint32_t max_receive;
} mqueue;

/* What a message operation needs of a queue, copied out of the cache. */
typedef struct qsnap {
  char name[QUEUE_NAME_MAX + 1];
  uint64_t id;
  bool fifo;
  uint32_t visibility;
  uint32_t delay;
  uint32_t wait;
  uint32_t retention;
  uint32_t max_size;
  bool content_dedup;
  char dlq_name[QUEUE_NAME_MAX + 1];  /* "" when none */
  uint32_t max_receive;
} qsnap;

typedef struct msub {
  char *arn;                /* TOPIC_ARN:UUID */
  char *topic;              /* topic name */
  char *protocol;
  char *endpoint;
  json_t *attrs;            /* name -> string */
  bool confirmed;
  char *token;              /* confirmation token (http/https) */
  bool raw;                 /* RawMessageDelivery */
  bool body_scope;          /* FilterPolicyScope MessageBody */
  queue_filter *filter;     /* NULL: everything matches */
} msub;

typedef struct mtopic {
  char *name;
  char *arn;
  int64_t version;          /* the shared store's version (PostgreSQL), else 0 */
  bool fifo;
  bool content_dedup;
  int64_t created_ms;
  json_t *attrs;
  json_t *tags;
} mtopic;

typedef struct dentry dentry;   /* a delivery waiting (deliver.c) */
typedef struct pg_pool pg_pool;
typedef struct qpg qpg;         /* the PostgreSQL store's state (pg_store.c) */

/* Where queues and messages are kept: one interface, two implementations.
 * queue__lmdb_store is DATA/queue/meta (this node alone; its functions are
 * in queues.c, message.c and poll.c); queue__pg_store is PostgreSQL
 * (pg_store.c), shared by every node given the same --metadata. The files
 * above it (validation, the cache, polls, the timer) are the same for both.
 * Codes as in queue.h. */
typedef struct queue_store {
  /* Reloads the cached queue `name` (NULL: every queue) from the shared
     store; NULL when the cache is the truth (LMDB). */
  int (*refresh)(queue_system *q, const char *name, err *e);
  /* Metadata changes (meta_mu held): create sets m->id; update replaces
     the record `old` by m (ERR_CONFLICT when old is no longer current). */
  int (*create)(queue_system *q, mqueue *m, err *e);
  int (*update)(queue_system *q, const mqueue *old, mqueue *m, err *e);
  int (*remove)(queue_system *q, const mqueue *m, err *e);
  int (*purge)(queue_system *q, const mqueue *m, err *e);
  /* Messages: entries whose errs[i] has a code are skipped. */
  int (*send)(queue_system *q, const qsnap *s, const queue_send *m, size_t n, queue_sent *out,
              err *errs, err *e);
  int (*receive)(queue_system *q, const qsnap *s, const queue_receive *r, arena *a,
                 queue_message **out, size_t *n, err *e);
  /* Delete (seconds NULL) or change visibility of n handles. */
  int (*handles)(queue_system *q, const qsnap *s, const char *const *handles,
                 const uint32_t *seconds, size_t n, err *errs, err *e);
  /* Makes messages visible again without waiting; errors ignored. */
  void (*release)(queue_system *q, const qsnap *s, const queue_message *msgs, size_t n);
  int (*counts)(queue_system *q, const qsnap *s, uint64_t *visible, uint64_t *inflight,
                uint64_t *delayed, err *e);
  /* Runs a poll's receive change asynchronously (false when stopping). */
  bool (*submit)(queue_system *q, qchange *c);
  /* The first visible_at of queue qid later than `after` (INT64_MAX: none). */
  int64_t (*next_visible)(queue_system *q, uint64_t qid, int64_t after);
  /* Retention and deduplication windows, from the timer. */
  void (*sweep)(queue_system *q);
} queue_store;

extern const queue_store queue__lmdb_store;
/* The LMDB store's functions (queues.c, message.c, poll.c). */
int queue__lmdb_create(queue_system *q, mqueue *m, err *e);
int queue__lmdb_update(queue_system *q, const mqueue *old, mqueue *m, err *e);
int queue__lmdb_remove(queue_system *q, const mqueue *m, err *e);
int queue__lmdb_purge(queue_system *q, const mqueue *m, err *e);
int queue__lmdb_send(queue_system *q, const qsnap *s, const queue_send *m, size_t n,
                     queue_sent *out, err *errs, err *e);
int queue__lmdb_receive(queue_system *q, const qsnap *s, const queue_receive *r, arena *a,
                        queue_message **out, size_t *n, err *e);
int queue__lmdb_handles(queue_system *q, const qsnap *s, const char *const *handles,
                        const uint32_t *seconds, size_t n, err *errs, err *e);
void queue__lmdb_release(queue_system *q, const qsnap *s, const queue_message *msgs, size_t n);
int queue__lmdb_counts(queue_system *q, const qsnap *s, uint64_t *visible, uint64_t *inflight,
                       uint64_t *delayed, err *e);
bool queue__lmdb_submit(queue_system *q, qchange *c);
int64_t queue__lmdb_next_visible(queue_system *q, uint64_t qid, int64_t after);
void queue__lmdb_sweep(queue_system *q);
extern const queue_store queue__pg_store;

/* A publish, as publish.c prepares it for a topic store. */
typedef struct pub_target {
  bool sqs;                   /* else an outbox entry */
  const char *queue;          /* sqs: the queue name */
  queue_send send;            /* sqs: the message */
  json_t *entry;              /* outbox entry */
  const char *sub;            /* outbox: the subscription ARN */
} pub_target;

typedef struct pub_entry {
  const queue_publish *p;
  char message_id[QUEUE_ID_MAX];
  pub_target *targets;
  size_t ntargets;
  err *e;                     /* the entry's own result */
} pub_entry;

typedef struct pub_arg {
  const char *topic;
  int64_t version;            /* the topic's version the targets were built from */
  bool fifo;
  pub_entry *entries;
  size_t n;
} pub_arg;

/* Where topics, subscriptions and the outbox are kept: queue__lmdb_topics
 * (DATA/queue/meta, topic.c and publish.c) or queue__pg_topics (pg_topic.c,
 * shared by the nodes of one --metadata). topic.c validates and keeps the
 * cache for both; a store only writes (and, if shared, reloads). */
typedef struct topic_store {
  /* Reloads topic `name` and its subscriptions (NULL: every topic) into the
     cache (meta_mu held); NULL when the cache is the truth (LMDB). */
  int (*refresh)(queue_system *q, const char *name, err *e);
  /* create: ERR_CONFLICT when the name exists; else QUEUE_ERR_NO_TOPIC when gone. */
  int (*topic_put)(queue_system *q, const mtopic *t, bool create, err *e);
  int (*topic_delete)(queue_system *q, const char *name, char *const *subs, size_t nsubs,
                      err *e);
  /* confirm: an outbox entry committed with it, or NULL. create:
     ERR_CONFLICT when (topic, protocol, endpoint) is subscribed already. */
  int (*sub_put)(queue_system *q, const msub *s, bool create, json_t *confirm, err *e);
  int (*sub_delete)(queue_system *q, const msub *s, err *e);
  /* Commits the targets; a positive return: arg->version is no longer the
     topic's (reload and build again). */
  int (*publish)(queue_system *q, pub_arg *arg, err *e);
} topic_store;

extern const topic_store queue__lmdb_topics;
extern const topic_store queue__pg_topics;

struct queue_system {
  char *dir;                    /* DATA/queue */
  char *access_key;
  char *secret_key;
  pthread_mutex_t emu;          /* guards endpoint */
  char endpoint[256];           /* the server's base URL, set by start */
  uint32_t workers;
  uint32_t retry_base_ms;
  uint32_t max_attempts;
  const netpolicy *egress;      /* HTTP endpoints' addresses (not owned) */
  void (*delivery_failed)(const char *sub, const char *why); /* or NULL */

  const queue_store *store;     /* queues and messages: LMDB or PostgreSQL */
  const topic_store *tstore;    /* topics and the outbox: LMDB or PostgreSQL */
  qpg *pg;                      /* the PostgreSQL store, or NULL */
  MDB_env *env;                 /* DATA/queue/meta */
  MDB_dbi db_queues;            /* name -> queue record (JSON) */
  MDB_dbi db_qids;              /* queue id (8 BE) -> name: the live ids */
  MDB_dbi db_msgs;              /* (qid, seq) -> message header */
  MDB_dbi db_bodies;            /* (qid, seq) -> attributes + body */
  MDB_dbi db_vis;               /* (qid, visible_at, seq) -> state byte */
  MDB_dbi db_dedup;             /* (qid, dedup id) -> expiry, seq, message id */
  MDB_dbi db_topics;            /* name -> topic record (JSON) */
  MDB_dbi db_subs;              /* subscription ARN -> record (JSON) */
  MDB_dbi db_outbox;            /* key (8 BE) -> delivery (JSON) */
  MDB_dbi db_meta;              /* "seq", "qid", "outbox" -> 8 bytes BE */

  pthread_mutex_t meta_mu;      /* one metadata change at a time */
  pthread_rwlock_t mu;          /* guards the caches below */
  mqueue **queues;              /* by name */
  size_t nqueues;
  size_t capqueues;
  mtopic **topics;              /* by name */
  size_t ntopics;
  size_t captopics;
  msub **subs;                  /* by ARN */
  size_t nsubs;
  size_t capsubs;

  lmdb_committer committer;     /* the only LMDB writer (commit.c) */
  qnote *batch_notes;           /* committer only: notes of the batch committed */
  size_t nbatch_notes;
  size_t capbatch_notes;
  uint64_t next_seq;            /* committer only: last message seq used */
  uint64_t next_qid;            /* committer only */
  uint64_t next_outbox;         /* committer only */

  pthread_mutex_t wmu;          /* guards the polls and the timer's state */
  pthread_cond_t timer_cv;      /* the timer waits (monotonic clock) */
  struct queue_poll *waiters;   /* polls waiting, a list */
  bool polls_closed;            /* stop began: no new polls */
  bool timer_stop;
  bool timer_running;
  bool timer_kick;              /* recompute now */
  pthread_t timer;

  pthread_mutex_t dmu;          /* guards the delivery schedule */
  pthread_cond_t dcv;           /* workers wait (monotonic clock) */
  dentry *due;                  /* deliveries by due time */
  uint64_t dkick;               /* PostgreSQL outbox: bumped when there is work */
  bool dstop;
  pthread_t *dthreads;
  size_t ndthreads;
  queue_lambda_deliver_fn lambda_fn;
  void *lambda_ctx;
};

/* ---- system.c ---- */
int queue__read_begin(queue_system *q, MDB_txn **txn, err *e);
/* A counter of db_meta, incremented (committer only). */
uint64_t queue__counter_next(queue_system *q, MDB_txn *txn, const char *name, uint64_t *cache,
                             err *e);

/* ---- commit.c ---- */
void queue__change_init(qchange *c, qchange_fn apply, void *arg);
int queue__note(qchange *c, enum qnote_kind kind, uint64_t a, uint64_t b);
/* Queues c and waits for its result. ERR_UNAVAILABLE once stopping. */
int queue__commit_run(queue_system *q, qchange *c, err *e);
/* Queues an asynchronous change (c->complete set); false when stopping
 * (then nothing is called). */
bool queue__commit_submit(queue_system *q, qchange *c);
int queue__committer_start(queue_system *q, err *e);
void queue__committer_stop(queue_system *q);

/* ---- codec.c ---- */
#define MSG_KEY_LEN 16
#define VIS_KEY_LEN 24

void queue__be64_put(uint8_t *p, uint64_t v);
uint64_t queue__be64_get(const uint8_t *p);
void queue__msg_key(uint8_t out[MSG_KEY_LEN], uint64_t qid, uint64_t seq);
void queue__vis_key(uint8_t out[VIS_KEY_LEN], uint64_t qid, int64_t visible_at, uint64_t seq);

enum { MSG_NEW = 'n', MSG_RECEIVED = 'r' };

/* The header of a message (db_msgs); strings NUL-terminated, in an arena. */
typedef struct qmsg {
  uint8_t state;            /* MSG_NEW until first received */
  uint32_t recv_count;
  int64_t sent_ms;
  int64_t first_recv_ms;
  int64_t visible_at;       /* the db_vis key's time */
  uint64_t token;           /* changes on every receive: receipt handles */
  bool has_attrs;
  uint8_t md5_body[16];
  uint8_t md5_attrs[16];
  const char *id;
  const char *sender;
  const char *group;        /* FIFO */
  const char *dedup;        /* FIFO */
  const char *trace;        /* AWSTraceHeader */
} qmsg;

/* Encodes m into the arena. */
MDB_val queue__msg_encode(const qmsg *m, arena *a);
int queue__msg_decode(const MDB_val *v, arena *a, qmsg *m, err *e);
/* The body record: attributes then body. */
MDB_val queue__body_encode(const queue_attr *attrs, size_t nattrs, const char *body,
                           size_t len, arena *a);
int queue__body_decode(const MDB_val *v, arena *a, queue_attr **attrs, size_t *nattrs,
                       const char **body, size_t *len, err *e);

/* Receipt handles: hex of (qid, seq, token). */
char *queue__handle_make(arena *a, uint64_t qid, uint64_t seq, uint64_t token);
bool queue__handle_parse(const char *h, uint64_t *qid, uint64_t *seq, uint64_t *token);

uint64_t queue__rand64(void);
/* 20-digit FIFO sequence number. */
void queue__seqnum(uint64_t seq, char out[24]);
/* Checks a message attribute (name, type, value) as SQS does. */
int queue__attr_check(const queue_attr *at, err *e);
/* Size of attributes as SQS counts it (name + type + value). */
size_t queue__attrs_size(const queue_attr *attrs, size_t n);
/* Valid SQS message characters (and UTF-8). */
bool queue__chars_valid(const char *s, size_t n);

/* ---- queues.c ---- */
/* A queue from its record (JSON, as stored); NULL when damaged. */
mqueue *queue__mq_from_record(const char *name, size_t nlen, const char *rec, size_t len);
/* The record of a queue (heap, to free). */
char *queue__mq_record(const mqueue *m);
mqueue *queue__mq_free(mqueue *m);
/* Puts m into the cache (mu taken), replacing a queue of its name, or
 * removes `name` (m NULL); takes m. */
void queue__cache_set(queue_system *q, const char *name, mqueue *m);
/* Replaces the whole cache by ms[0..n) (mu taken); takes them. */
void queue__cache_replace(queue_system *q, mqueue **ms, size_t n);
/* Finds a queue in the cache by name (mu held). */
mqueue *queue__find(queue_system *q, const char *name);
/* Copies a queue's settings (takes mu). QUEUE_ERR_NO_QUEUE. */
int queue__snap(queue_system *q, const char *ref, qsnap *out, err *e);
int queue__snap_name(queue_system *q, const char *name, qsnap *out, err *e);
/* True when the queue id is live (inside an apply). */
bool queue__qid_live(queue_system *q, MDB_txn *txn, uint64_t qid);
int queue__queues_load(queue_system *q, MDB_txn *txn, err *e);
void queue__queues_free(queue_system *q);
/* Deletes every record of queue id with key prefix qid from db. */
int queue__delete_prefix(MDB_txn *txn, MDB_dbi db, uint64_t qid, err *e);

/* ---- message.c ---- */
/* What a send stores, computed the same way by both stores. */
typedef struct qprep {
  char id[37];              /* the new message id */
  const char *dedup;        /* FIFO: the id given or the body's SHA-256 (hex,
                               arena); else NULL */
  int delay;                /* seconds */
  bool has_attrs;
  uint8_t md5_body[16];
  uint8_t md5_attrs[16];
} qprep;
void queue__send_prepare(const qsnap *s, const queue_send *m, arena *a, qprep *p);
/* The answer of a send of m stored as message id (seq: its FIFO number). */
void queue__sent_fill(const queue_send *m, const char *id, uint64_t seq, bool fifo,
                      queue_sent *out);
/* Inserts a message inside an apply (publish uses it for sqs targets).
 * out may be NULL. */
int queue__msg_insert(queue_system *q, qchange *c, MDB_txn *txn, arena *a, const qsnap *s,
                      const queue_send *m, int64_t now, queue_sent *out, err *e);
/* The receive itself, inside an apply. */
int queue__receive_apply(queue_system *q, qchange *c, MDB_txn *txn, const qsnap *s,
                         const queue_receive *r, int64_t now, arena *out_arena,
                         queue_message **out, size_t *n, err *e);

/* ---- poll.c ---- */
/* After a batch: wake waiters of queue id (count messages; UINT64_MAX all). */
void queue__polls_wake(queue_system *q, uint64_t qid, uint64_t count);
void queue__timer_kick(queue_system *q);
void *queue__timer_main(void *arg);
/* Completes every poll (stop). */
void queue__polls_close(queue_system *q);

/* ---- topic.c ---- */
mtopic *queue__topic_find(queue_system *q, const char *name);
/* Records (JSON, as stored) and back; NULL when damaged. */
mtopic *queue__topic_from_record(const char *name, size_t n, const char *rec, size_t len);
msub *queue__sub_from_record(const char *arn, size_t n, const char *rec, size_t len);
char *queue__topic_record(const mtopic *t);   /* heap */
char *queue__sub_record(const msub *s);       /* heap */
void queue__topic_free(mtopic *t);
void queue__sub_free(msub *s);
/* Replaces topic `name` and its subscriptions in the cache by t and
 * subs[0..n) (t NULL: removes them), or, name NULL, the whole cache (mu
 * taken); takes them. */
void queue__topic_cache_set(queue_system *q, const char *name, mtopic **ts, size_t nt,
                            msub **subs, size_t n);
int queue__topics_load(queue_system *q, MDB_txn *txn, err *e);
void queue__topics_free(queue_system *q);
/* The topic name of an ARN (arena); ERR_INVALID / QUEUE_ERR_NO_TOPIC. */
int queue__topic_name(const char *arn, arena *a, const char **name, err *e);
/* A presigned URL of the server for a query API call (sns scope). */
char *queue__presign(queue_system *q, arena *a, const str_pair *params, size_t n);
/* A copy of the server's base URL ("http://127.0.0.1:9000"). */
const char *queue__endpoint(queue_system *q, arena *a);
/* The fixed Signature of notifications (tarn does not sign them). */
const char *queue__signature_placeholder(void);

/* ---- deliver.c ---- */
/* Schedules an outbox entry now (after its commit). */
void queue__deliver_schedule(queue_system *q, uint64_t key, int64_t due_ms, uint32_t attempts);
int queue__deliver_load(queue_system *q, err *e);
/* Subscribe time: url must parse, and a literal host must be allowed by
 * the egress policy (names are judged at connect time). 0 or ERR_INVALID
 * / ERR_DENIED. */
int queue__endpoint_check(queue_system *q, const char *url, err *e);
int queue__deliver_start(queue_system *q, err *e);
void queue__deliver_stop(queue_system *q);
/* Puts a delivery into the outbox inside an apply. */
int queue__outbox_put(queue_system *q, qchange *c, MDB_txn *txn, json_t *entry, err *e);

/* ---- pg_store.c ---- */
/* Opens the tables (creating them) and starts the listener and the poll
 * workers; loads the queues into the cache. */
int queue__pg_open(queue_system *q, pg_pool *pool, err *e);
void queue__pg_stop(queue_system *q);
void queue__pg_close(queue_system *q);

/* ---- publish.c ---- */
/* Whether a publish's copy m fits queue s (adjusting FIFO fields); false:
 * it is dropped, as SNS drops what a queue refuses. */
bool queue__publish_fits(const qsnap *s, queue_send *m);
/* The LMDB store's publish (one commit with the queues' copies). */
int queue__lmdb_publish(queue_system *q, pub_arg *arg, err *e);

/* ---- pg_store.c, for pg_topic.c ---- */
pg_pool *queue__pg_pool(queue_system *q);
/* Sends m to queue s inside the caller's transaction on c (FIFO: locks the
 * queue's row); *visible counts it when visible at once. */
int queue__pg_send_on(PGconn *c, const qsnap *s, const queue_send *m, int64_t now, arena *a,
                      uint64_t *visible, err *e);
/* A publish's copy for a standard queue (queue__pg_send_many). */
typedef struct pg_copy {
  const qsnap *s;
  queue_send m;
} pg_copy;
/* Sends every copy to its standard queue inside the caller's transaction
 * on c, in one multi-row INSERT (one per PG_COPY_ROWS copies or
 * PG_COPY_BYTES of bodies); a copy for a queue deleted meanwhile is
 * dropped. visible(ctx, qid) is called for each copy visible at once. */
int queue__pg_send_many(PGconn *c, const pg_copy *copies, size_t n, int64_t now, arena *a,
                        void (*visible)(void *ctx, uint64_t qid), void *ctx, err *e);
/* Wakes count polls of queue qid on every node (after the commit). */
void queue__pg_wake(queue_system *q, uint64_t qid, uint64_t count);

/* ---- pg_topic.c ---- */
int queue__pg_topics_open(queue_system *q, err *e);
/* The listener heard that topic `name` changed (NULL: reload all). */
void queue__pg_topic_heard(queue_system *q, const char *name);
/* A delivery worker over the PostgreSQL outbox (thread main). */
void *queue__pg_outbox_main(void *arg);

/* ---- deliver.c, for pg_topic.c ---- */
enum queue_outcome { QUEUE_DONE, QUEUE_RETRY, QUEUE_WAIT };
/* Performs one outbox entry (exists: its subscription still does). */
enum queue_outcome queue__deliver_entry(queue_system *q, json_t *entry, bool exists);
/* The wait before retry number attempts+1. */
int64_t queue__retry_delay(queue_system *q, uint32_t attempts);
/* Wakes the delivery workers: there is work (PostgreSQL outbox). */
void queue__deliver_kick(queue_system *q);

/* ---- small helpers ---- */
char *queue__strdup(const char *s);   /* aborts on OOM */
int64_t queue__now_ms(void);

#endif
