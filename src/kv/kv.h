/* kv/kv.h -- key-value tables (DynamoDB): tables, items, expressions,
 * indexes, transactions, kept in LMDB under DATA/kv/.
 *
 * The part speaks DynamoDB's data model: requests and results are jansson
 * trees in the shapes of the DynamoDB API (TableName, Key, Item with typed
 * AttributeValues {"S": ..}, {"N": ..}, ...), because that typed tree *is*
 * the data model; api/dynamodb.c owns the wire (HTTP, X-Amz-Target,
 * signatures, error bodies). Numbers are exact decimals (kv/num.c).
 *
 * Every operation is `int kv_OP(kv *k, json_t *in, json_t **out, err *e)`:
 * 0 and *out the result object (caller owns it), or a code. On some errors
 * *out holds extra fields of the error body (the Item of a failed
 * condition, a transaction's CancellationReasons); the caller owns those too.
 * Writes are durable before they return (the group committer).
 */
#ifndef TARN_KV_KV_H
#define TARN_KV_KV_H

#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The part's error codes; api/dynamodb.c maps them to DynamoDB's types. */
#define KV_ERR_VALIDATION (-1501)     /* ValidationException */
#define KV_ERR_NO_TABLE (-1502)       /* ResourceNotFoundException */
#define KV_ERR_IN_USE (-1503)         /* ResourceInUseException */
#define KV_ERR_CONDITION (-1504)      /* ConditionalCheckFailedException */
#define KV_ERR_TX_CANCELED (-1505)    /* TransactionCanceledException */
#define KV_ERR_IDEMPOTENT (-1506)     /* IdempotentParameterMismatchException */
#define KV_ERR_LIMIT (-1507)          /* LimitExceededException */
#define KV_ERR_SERIALIZATION (-1508)  /* SerializationException */
#define KV_ERR_NO_STREAM (-1509)      /* ResourceNotFoundException (streams) */
#define KV_ERR_TRIMMED (-1510)        /* TrimmedDataAccessException / ExpiredIteratorException */
#define KV_ERR_DUPLICATE (-1511)      /* DuplicateItemException (PartiQL INSERT) */

typedef struct kv kv;

/* Opens (creating) DATA_DIR/kv and starts its committer. */
int kv_open(const char *data_dir, kv **out, err *e);
/* Stops the committer and closes the environment; accepts NULL. */
kv *kv_close(kv *k);

typedef int (*kv_op_fn)(kv *k, json_t *in, json_t **out, err *e);

/* The operation named name ("PutItem", "ListStreams", ...) or NULL;
 * *canon gets the operation's name as a static string (for metrics).
 * streams: the DynamoDB Streams API's operations, else DynamoDB's. */
kv_op_fn kv_op_find(const char *name, bool streams, const char **canon);

/* ---- reading a table's stream (for event source mappings) ---- */

/* Up to max records of the stream stream_arn with sequence numbers above
 * after, oldest first, as a JSON array in the Streams API's shape; *last
 * gets the last one's sequence number (after when there is none).
 * KV_ERR_NO_STREAM when the stream is not its table's latest. */
int kv_stream_read(kv *k, const char *stream_arn, uint64_t after, size_t max, json_t **records,
                   uint64_t *last, err *e);
/* The sequence number of the stream's newest record (0: none). */
int kv_stream_latest(kv *k, const char *stream_arn, uint64_t *seq, err *e);

/* Rewrites the legacy parameters of a request (AttributesToGet, Expected,
 * KeyConditions, QueryFilter, ScanFilter, AttributeUpdates,
 * ConditionalOperator) into expression parameters, in place. */
int kv_legacy_rewrite(json_t *in, err *e);

/* The table an operation's input names, for authorization ("*" when it
 * names none or many). Points into in. */
const char *kv_op_table(const char *op, json_t *in);

/* For authorization of a PartiQL statement: the IAM action it needs
 * (dynamodb:PartiQLSelect, ...Insert, ...Update, ...Delete) and the table
 * (and index, for a SELECT from one) it names, both malloc'd. -1 when the
 * statement cannot be read that far (the operation then refuses it). */
int kv_statement_target(const char *stmt, const char **action, char **table, char **index);

#endif
