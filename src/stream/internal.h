/* stream/internal.h -- what the files of the stream part share.
 *
 * LMDB tables (DATA/stream/):
 *   meta      "seq" -> u64 (the last sequence number given), "sid" -> u64
 *   kstreams  name -> JSON {id, mode, retention, created, shards: [...]}
 *   krecords  sid(8) shard(4) seq(8), big-endian -> ts_ms(8) pklen(2) pk data
 *   dstreams  name -> JSON {id, version, created, input}
 *   dbuf      dsid(8) seq(8), big-endian -> ts_ms(8) data
 *
 * One sequence counter serves every shard and delivery stream, so numbers
 * increase per shard and per buffer, and a record's key orders it.
 */
#ifndef TARN_STREAM_INTERNAL_H
#define TARN_STREAM_INTERNAL_H

#include "stream/stream.h"

#include "base/lmdb_env.h"
#include "stream/convert.h"

#include <pthread.h>

enum compression { COMP_NONE, COMP_GZIP, COMP_ZIP, COMP_SNAPPY, COMP_HADOOP_SNAPPY };

/* A delivery stream's destination, parsed. Immutable once made; shared
 * by reference (UpdateDestination swaps in a new one). */
typedef struct dconfig {
  int refs;                    /* under stream_system.mu */
  uint64_t version;            /* DeliveryStreamVersion: 1, then +1 per update */
  char *bucket;                /* the destination bucket's name */
  char *prefix;                /* Prefix, or NULL */
  char *error_prefix;          /* ErrorOutputPrefix, or NULL */
  char *extension;             /* FileExtension, or NULL for the codec's */
  uint64_t size_bytes;         /* BufferingHints.SizeInMBs */
  int64_t interval_ms;         /* BufferingHints.IntervalInSeconds */
  enum compression comp;
  char *lambda_arn;            /* the Lambda processor, or NULL */
  size_t lambda_max_bytes;     /* its BufferSizeInMBs */
  bool append_newline;         /* AppendDelimiterToRecord */
  bool dynamic;                /* DynamicPartitioningConfiguration.Enabled */
  char *query;                 /* MetadataExtractionQuery, or NULL */
  char *backup_bucket;         /* S3BackupMode Enabled: source records, or NULL */
  char *backup_prefix;
  char *role_arn;              /* the destination's RoleARN: deliveries act as it */
  char *backup_role_arn;       /* S3BackupConfiguration.RoleARN (else role_arn) */
  conv_config *conv;           /* DataFormatConversionConfiguration enabled, or NULL */
} dconfig;

/* A delivery stream as the delivery thread sees it. Guarded by
 * stream_system.mu. */
typedef struct dstream {
  uint64_t id;
  char *name;
  dconfig *cfg;
  char *source;                /* KinesisStreamAsSource: the stream's name, else NULL */
  uint64_t source_from;        /* its records from this sequence on (LATEST at creation) */
  /* the buffer */
  int64_t bytes;               /* bytes of data buffered (may lag a put) */
  int64_t count;               /* records buffered */
  int64_t oldest_ms;           /* arrival of the oldest buffered record (0: none) */
  int64_t retry_at_ms;         /* a failed delivery waits until then */
  bool busy;                   /* the delivery thread works on it */
  bool failing;                /* the last delivery failed (logged once) */
  bool deleted;                /* gone: the delivery thread frees it */
  struct dstream *next;
} dstream;

struct stream_system {
  MDB_env *env;
  MDB_dbi db_meta, db_kstreams, db_krecords, db_dstreams, db_dbuf;
  lmdb_committer committer;
  store *st;
  fn_system *fn;
  stream_schema_fn schema_lookup;
  void *schema_ctx;
  int (*authorize)(void *ctx, const char *role_arn, const char *action, const char *resource,
                   err *e);
  void *authorize_ctx;
  pthread_mutex_t mu;          /* guards dstreams and the fields below */
  pthread_cond_t wake;         /* the delivery thread: work, or stop */
  pthread_cond_t drained;      /* puts wait for room in a buffer */
  dstream *dstreams;
  /* metrics (under mu) */
  uint64_t kinesis_records;    /* Kinesis records put */
  uint64_t firehose_records;   /* Firehose records buffered (put or pulled) */
  uint64_t objects;            /* objects delivered */
  uint64_t delivery_failures;  /* deliveries that failed and wait to retry */
  bool stopping;
  bool running;
  pthread_t thread;
};

/* A change of this part: the committer calls apply with the system. */
typedef struct schange schange;
typedef int (*schange_fn)(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e);
struct schange {
  lmdb_change base;
  schange_fn apply;
  void *arg;
};

/* Runs apply(arg) in the next commit; its result. */
int stream__commit(stream_system *s, schange_fn apply, void *arg, err *e);
/* The next value of a counter in meta ("seq", "sid"), within txn. */
int stream__counter_next(stream_system *s, MDB_txn *txn, const char *name, uint64_t *out,
                         err *e);

/* Deletes the keys of dbi that start with prefix and whose last 8 bytes
 * (a big-endian sequence) are at most upto; *next_ts (optional) gets the
 * first 8 bytes of the first value kept (its arrival time), or 0. */
int stream__range_delete(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t plen,
                         uint64_t upto, int64_t *next_ts, err *e);
/* s, or "" for NULL. */
static inline const char *stream__str(const char *s)
{
  return s != NULL ? s : "";
}

/* Stream names: 1 to max characters of [a-zA-Z0-9_.-]. */
bool stream__name_valid(const char *n, size_t max);
/* A counter's value in meta (0 when never set), and setting it. */
uint64_t stream__counter_get(stream_system *s, MDB_txn *txn, const char *name);
int stream__counter_set(stream_system *s, MDB_txn *txn, const char *name, uint64_t v, err *e);
/* A JSON record by name: 0 (a new reference in *out), 1 when there is
 * none (e untouched), or an error. */
int stream__json_get(MDB_txn *txn, MDB_dbi dbi, const char *name, json_t **out, err *e);
int stream__json_put(MDB_txn *txn, MDB_dbi dbi, const char *name, json_t *rec, err *e);
/* What a missing record of kind ("Stream", "Firehose") answers:
 * STREAM_ERR_NOT_FOUND "KIND NAME under account 000000000000 not found." */
int stream__not_found(err *e, const char *kind, const char *name);
/* stream__json_get, with stream__not_found(kind) when there is none. */
int stream__json_load(MDB_txn *txn, MDB_dbi dbi, const char *kind, const char *name,
                      json_t **out, err *e);
/* Read-modify-write within txn: loads the record name of dbi (as
 * stream__json_load), lets edit change it, and stores it back only when
 * edit returns 0; edit's result otherwise. */
typedef int (*stream_edit_fn)(stream_system *s, MDB_txn *txn, json_t *rec, void *arg, err *e);
int stream__json_edit(stream_system *s, MDB_txn *txn, MDB_dbi dbi, const char *kind,
                      const char *name, stream_edit_fn edit, void *arg, err *e);
/* Deletes the record name of names and every key of records under its
 * "id" (8 bytes, big-endian, first): 0, 1 when there is none, or an error. */
int stream__drop(MDB_txn *txn, MDB_dbi names, MDB_dbi records, const char *name, err *e);
/* Calls fn for the records of dbi named after start (NULL: from the
 * first), at most max, in name order; *more when some remain. */
int stream__scan(stream_system *s, MDB_dbi dbi, const char *start, size_t max,
                 void (*fn)(void *ctx, const char *name, json_t *rec), void *ctx, bool *more,
                 err *e);

void stream__be64(uint8_t *p, uint64_t v);
uint64_t stream__rd64(const uint8_t *p);

/* kinesis.c: removes records older than their stream's retention (a
 * bounded number per call). */
int stream__kinesis_trim(stream_system *s, int64_t now_ms, err *e);

/* kinesis.c: moves up to budget bytes of the Kinesis stream's new records
 * (after each shard's checkpoint, kept in meta) into delivery stream dsid's
 * buffer, in one commit (each record once). Adds what it moved to *bytes
 * and *count, and the first one's arrival to *first_ts (when 0). */
int stream__kinesis_pull(stream_system *s, uint64_t dsid, const char *stream, uint64_t from,
                         size_t budget, int64_t *bytes, int64_t *count, int64_t *first_ts,
                         err *e);
/* The counter's current value (the last sequence number given). */
int stream__counter_read(stream_system *s, uint64_t *out, err *e);

/* firehose.c */
int stream__dstreams_load(stream_system *s, err *e);
void stream__dstreams_free(stream_system *s);
dstream *stream__dstream_find(stream_system *s, const char *name);
void stream__dconfig_unref(dconfig *c);  /* under s->mu */
void stream__dstream_free(dstream *d);

/* deliver.c */
void *stream__deliver_main(void *arg);

/* prefix.c: expands a Prefix: !{timestamp:FMT}, !{firehose:random-string},
 * !{firehose:error-output-type}, !{partitionKeyFromQuery:K},
 * !{partitionKeyFromLambda:K}. keys: JSON object of partition keys or NULL.
 * NULL with e set when an expression is unknown or a key is missing. */
char *stream__prefix_eval(const char *prefix, int64_t ts_ms, const char *error_type,
                          json_t *keys, arena *a, err *e);
/* Evaluates a jq subset, "{k: .a.b, k2: .c}", over record (a JSON object):
 * a JSON object of strings, or NULL with e set. */
json_t *stream__query_eval(const char *query, json_t *record, err *e);

#endif
