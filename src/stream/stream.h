/* stream/stream.h -- streams of records: Kinesis Data Streams (shards,
 * sequence numbers, iterators) and Firehose delivery streams (records
 * buffered durably, then delivered as objects into buckets).
 *
 * Both keep their state in one LMDB environment under DATA/stream/, written
 * by the group committer (base/lmdb_env.h): a put is acknowledged only once
 * its records are committed, so an acknowledged record survives kill -9.
 *
 * Descriptions come back as jansson objects in the shapes of the AWS APIs
 * (StreamDescription, DeliveryStreamDescription): the AWS shape is the
 * part's model of a stream, and api/kinesis.c and api/firehose.c only wrap
 * them. Configurations come in the same way (the request's JSON objects).
 *
 * Threads: one delivery thread (started by stream_system_start) flushes
 * Firehose buffers when they reach their size or age, runs the Lambda
 * processor, converts records to Parquet when the destination asks for it
 * (the table's columns come through stream_options.schema_lookup, so this
 * part does not depend on the catalog), and writes objects through the
 * store (so bucket notifications fire). Everything else runs on the
 * caller's thread.
 */
#ifndef TARN_STREAM_STREAM_H
#define TARN_STREAM_STREAM_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct stream_system stream_system;
typedef struct store store;
typedef struct fn_system fn_system;

/* Kinesis limits (the AWS quotas). */
#define STREAM_MAX_NAME 128
#define STREAM_MAX_SHARDS 64                /* per stream, here */
#define STREAM_MAX_PARTITION_KEY 256
#define STREAM_MAX_RECORD (1u << 20)        /* data + partition key */
#define STREAM_MAX_PUT_RECORDS 500
#define STREAM_MAX_PUT_BYTES (5u << 20)
#define STREAM_MAX_GET_RECORDS 10000
#define STREAM_MAX_GET_BYTES (10u << 20)
#define STREAM_ON_DEMAND_SHARDS 4

/* Firehose limits. */
#define STREAM_MAX_FIREHOSE_RECORD 1024000u
#define STREAM_MAX_FIREHOSE_BATCH 500
#define STREAM_MAX_FIREHOSE_BATCH_BYTES (4u << 20)
/* A delivery stream's buffer holds at most this plus twice its size hint
 * (records waiting while a destination fails); beyond, puts are refused. */
#define STREAM_MAX_BUFFERED (8u << 20)

/* Errors of this part, beyond base/err.h (the API maps them to AWS names). */
#define STREAM_ERR_NOT_FOUND (-1401)        /* ResourceNotFoundException */
#define STREAM_ERR_IN_USE (-1402)           /* ResourceInUseException */
#define STREAM_ERR_INVALID (-1403)          /* InvalidArgumentException */
#define STREAM_ERR_LIMIT (-1404)            /* LimitExceededException */
#define STREAM_ERR_EXPIRED_ITERATOR (-1405) /* ExpiredIteratorException */
#define STREAM_ERR_BUSY (-1406)             /* ServiceUnavailableException */
#define STREAM_ERR_VERSION (-1407)          /* ConcurrentModificationException */
#define STREAM_ERR_VALIDATION (-1408)       /* ValidationException */

/* A catalog table's columns, for Firehose's record format conversion
 * (SchemaConfiguration): sets *columns to a new JSON array of {"Name",
 * "Type"} (Glue's StorageDescriptor.Columns, Hive type names). catalog_id
 * and version_id may be NULL (the account's catalog, the table's latest
 * version). Returns 0, STREAM_ERR_NOT_FOUND when the database or the table
 * does not exist (e says which), or another error (the delivery is tried
 * again later). Called on the delivery thread. */
typedef int (*stream_schema_fn)(void *ctx, const char *catalog_id, const char *database,
                                const char *table, const char *version_id, json_t **columns,
                                err *e);

typedef struct stream_options {
  const char *data_dir;   /* DATA: the environment is DATA/stream/ */
  store *st;              /* where delivery streams write objects */
  fn_system *fn;          /* the Lambda processor's functions, or NULL */
  stream_schema_fn schema_lookup; /* tables for format conversion, or NULL (none) */
  void *schema_ctx;
  /* Decides whether a delivery stream, acting as its destination's role
     (ExtendedS3DestinationConfiguration.RoleARN; S3BackupConfiguration's
     for the backup), may do action on resource (an ARN): s3:PutObject of
     each object a delivery writes (data, error output, backup), whose
     objects are committed together once each was allowed (deliver.c's
     outbox), and lambda:InvokeFunction of the Lambda processor. A refused object fails the whole delivery, as
     any failed write does: nothing is written, the records stay buffered
     and the delivery is tried again (S3.AccessDenied in the log). A
     refused invocation fails its records as Lambda.InvokeAccessDenied to
     the error output. NULL: everything is allowed. */
  int (*authorize)(void *ctx, const char *role_arn, const char *action, const char *resource,
                   err *e);
  void *authorize_ctx;
} stream_options;

int stream_system_open(const stream_options *o, stream_system **out, err *e);
/* Starts the delivery thread (buffers left by a crash are delivered). */
int stream_system_start(stream_system *s, err *e);
/* Stops the delivery thread (a delivery in progress finishes). Accepts NULL. */
void stream_system_stop(stream_system *s);
/* Accepts NULL; returns NULL. */
stream_system *stream_system_close(stream_system *s);

/* Prometheus text: records put, objects delivered, failed deliveries,
 * bytes buffered (sums over every stream: no label comes from a client). */
void stream_metrics(stream_system *s, buf *out);

/* ---- Kinesis Data Streams ---- */

/* shards: provisioned count (1..STREAM_MAX_SHARDS); on_demand ignores it. */
int stream_kinesis_create(stream_system *s, const char *name, int shards, bool on_demand,
                          err *e);
int stream_kinesis_delete(stream_system *s, const char *name, err *e);
/* StreamDescription (summary: no Shards, OpenShardCount instead). */
int stream_kinesis_describe(stream_system *s, const char *name, bool summary, json_t **out,
                            err *e);
/* The Shards array (every shard, open and closed). */
int stream_kinesis_shards(stream_system *s, const char *name, json_t **out, err *e);
/* Names in order, after start (NULL: from the first), at most max. */
int stream_kinesis_list(stream_system *s, const char *start, size_t max, json_t **names,
                        bool *more, err *e);
int stream_kinesis_retention(stream_system *s, const char *name, int hours, err *e);
/* Closes every open shard and opens target shards over the whole hash
 * key space (UpdateShardCount UNIFORM_SCALING). */
int stream_kinesis_reshard(stream_system *s, const char *name, int target, err *e);
/* SplitShard: closes shard_id, opens two children split at new_start
 * (decimal hash key). MergeShards: closes two adjacent open shards, opens
 * one child over both ranges. */
int stream_kinesis_split(stream_system *s, const char *name, const char *shard_id,
                         const char *new_start, err *e);
int stream_kinesis_merge(stream_system *s, const char *name, const char *shard_id,
                         const char *adjacent_id, err *e);

typedef struct stream_record_in {
  const char *partition_key;
  const char *explicit_hash;  /* decimal, or NULL */
  const void *data;
  size_t len;
} stream_record_in;

typedef struct stream_record_out {
  char shard_id[24];          /* "shardId-000000000000" */
  char sequence[48];          /* decimal */
  err e;                      /* code != 0: this record failed */
} stream_record_out;

/* Puts n records in one commit; out[i] says where each went. A failure of
 * the whole call (no stream, I/O) is the return value. */
int stream_kinesis_put(stream_system *s, const char *name, const stream_record_in *in,
                       size_t n, stream_record_out *out, err *e);

enum stream_iterator_type {
  STREAM_AT_SEQUENCE, STREAM_AFTER_SEQUENCE, STREAM_TRIM_HORIZON, STREAM_LATEST,
  STREAM_AT_TIMESTAMP,
};

/* A shard iterator (opaque text allocated in a). */
int stream_kinesis_iterator(stream_system *s, const char *name, const char *shard_id,
                            enum stream_iterator_type type, const char *sequence,
                            int64_t timestamp_ms, arena *a, const char **iterator, err *e);
/* GetRecords: {"Records": [...], "NextShardIterator", "MillisBehindLatest"}. */
int stream_kinesis_get(stream_system *s, const char *iterator, size_t limit, json_t **out,
                       err *e);

/* ---- consumers (event source mappings read a stream through these) ----
 * A consumer (named by its id, e.g. a mapping's UUID) has a durable
 * checkpoint per shard: the next sequence it has not processed. Reading
 * never moves it; committing does, after the records were processed, so a
 * crash repeats a batch, never skips one. A child shard is read only once
 * its parents are read to their end. */

typedef struct stream_batch_record {
  char sequence[48];
  const char *partition_key;
  const void *data;
  size_t len;
  int64_t ts_ms;              /* ApproximateArrivalTimestamp */
} stream_batch_record;

typedef struct stream_batch {
  char shard_id[24];
  size_t n;
  stream_batch_record *recs;  /* in a */
} stream_batch;

/* Sets the consumer's checkpoints on the open shards to the position:
 * TRIM_HORIZON, LATEST or AT_TIMESTAMP (timestamp_ms). */
int stream_consumer_start(stream_system *s, const char *stream, const char *consumer,
                          enum stream_iterator_type type, int64_t timestamp_ms, err *e);
/* The next batch (at most max records and max_bytes) of one shard, trying
 * shards round robin from *next_shard (updated); out->n 0 when none has
 * records. */
int stream_consumer_read(stream_system *s, const char *stream, const char *consumer,
                         size_t *next_shard, size_t max, size_t max_bytes, arena *a,
                         stream_batch *out, err *e);
/* Moves the consumer's checkpoint on shard_id past sequence (durable). */
int stream_consumer_commit(stream_system *s, const char *stream, const char *consumer,
                           const char *shard_id, const char *sequence, err *e);
/* Forgets the consumer's checkpoints. */
int stream_consumer_drop(stream_system *s, const char *consumer, err *e);
/* 0 when the stream exists, else STREAM_ERR_NOT_FOUND. */
int stream_kinesis_exists(stream_system *s, const char *stream, err *e);

/* ---- Firehose delivery streams ---- */

/* input: the CreateDeliveryStream request (DeliveryStreamName,
 * DeliveryStreamType, ExtendedS3DestinationConfiguration or
 * S3DestinationConfiguration, ...). */
int stream_delivery_create(stream_system *s, json_t *input, err *e);
int stream_delivery_delete(stream_system *s, const char *name, err *e);
int stream_delivery_describe(stream_system *s, const char *name, json_t **out, err *e);
int stream_delivery_list(stream_system *s, const char *start, size_t max, json_t **names,
                         bool *more, err *e);
/* input: the UpdateDestination request. */
int stream_delivery_update(stream_system *s, json_t *input, err *e);

typedef struct stream_blob {
  const void *data;
  size_t len;
} stream_blob;

/* Appends n records to the stream's durable buffer in one commit; ids[i]
 * (allocated in a) names each record. STREAM_ERR_BUSY when the buffer is
 * full (the caller retries later). */
int stream_delivery_put(stream_system *s, const char *name, const stream_blob *recs, size_t n,
                        arena *a, const char **ids, err *e);

#endif
