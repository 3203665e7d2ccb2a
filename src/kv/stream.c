/* kv/stream.c -- the DynamoDB Streams API over a table's change records:
 * ListStreams, DescribeStream, GetShardIterator, GetRecords.
 *
 * Why: item.c appends one record per item change to the "streams" database
 * ([table id][sequence u64 BE] -> the record, DynamoDB Streams' JSON shape)
 * in the transaction of the change; this file only reads them.
 *
 * A table's stream has one shard. A shard iterator is opaque to clients:
 * "TABLEID/NEXTSEQ/STREAMARN" sealed with its issue time (base/seal.h);
 * GetRecords answers the records from NEXTSEQ on and a new iterator after
 * the last one.
 *
 * Invariants:
 *   (1) Sequence numbers grow per table and are never reused, so an
 *       iterator stays valid while its table lives.
 *   (2) An iterator of a deleted (or re-created) table is refused: its
 *       table id no longer matches.
 *   (3) An iterator is refused with ExpiredIteratorException 15 minutes
 *       after it was issued (TARN_ITERATOR_TTL_MS shortens that for tests).
 *
 * Start reading at kv__get_records().
 */
#include "internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/seal.h"
#include "base/text.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITERATOR_TTL_MS 900000 /* AWS: a stream iterator lives 15 minutes */

#define ARN_PREFIX "arn:aws:dynamodb:us-east-1:000000000000:table/"
#define RECORDS_MAX 1000
#define SHARD_FMT "shardId-00000000000000000001-%08" PRIx32

/* The sequence number of a "streams" key [id u32][seq u64]. */
static uint64_t key_seq(const MDB_val *key)
{
  const uint8_t *p = key->mv_data;
  uint64_t seq = 0;
  for (int i = 0; i < 8; i++)
    seq = seq << 8 | p[4 + i];
  return seq;
}

/* The table of a stream ARN, checking that the stream is its latest. */
static int stream_table(kv *k, MDB_txn *txn, const char *arn, kv_table *t, err *e)
{
  memset(t, 0, sizeof *t);
  if (arn == NULL || !str_starts(arn, ARN_PREFIX))
    return err_set(e, KV_ERR_VALIDATION, "Invalid StreamArn");
  const char *name = arn + strlen(ARN_PREFIX);
  const char *sep = strstr(name, "/stream/");
  if (sep == NULL)
    return err_set(e, KV_ERR_VALIDATION, "Invalid StreamArn");
  char tname[256];
  snprintf(tname, sizeof tname, "%.*s", (int)(sep - name), name);
  err ignored = {0};
  if (kv__table_open(k, txn, tname, t, &ignored) != 0 ||
      kv__in_str(t->desc, "LatestStreamArn") == NULL ||
      strcmp(kv__in_str(t->desc, "LatestStreamArn"), arn) != 0) {
    kv__table_release(t);
    return err_set(e, KV_ERR_NO_STREAM, "Requested resource not found: Stream: %s not found", arn);
  }
  return 0;
}

/* A read transaction and the table of a stream; on failure neither is
 * held (*txn NULL, t released). */
static int stream_open(kv *k, const char *arn, MDB_txn **txn, kv_table *t, err *e)
{
  memset(t, 0, sizeof *t);
  int rc = lmdb_read_begin(k->env, txn, e);
  if (rc != 0) {
    *txn = NULL;
    return rc;
  }
  rc = stream_table(k, *txn, arn, t, e);
  if (rc != 0) {
    mdb_txn_abort(*txn);
    *txn = NULL;
  }
  return rc;
}

static void stream_close(MDB_txn *txn, kv_table *t)
{
  kv__table_release(t);
  if (txn != NULL)
    mdb_txn_abort(txn);
}

int kv__list_streams(kv *k, json_t *in, json_t **out, err *e)
{
  const char *only = kv__in_str(in, "TableName");
  json_int_t limit = json_object_get(in, "Limit") ? json_integer_value(json_object_get(in, "Limit")) : 100;
  if (limit < 1 || limit > 100)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%lld' at 'limit' "
                   "failed to satisfy constraint: Member must have value less than or equal to "
                   "100", (long long)limit);
  const char *start = kv__in_str(in, "ExclusiveStartStreamArn");
  MDB_txn *txn;
  int rc = lmdb_read_begin(k->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, k->tables, &cur);
  MDB_val key, val;
  json_t *list = json_array();
  json_t *res = json_object();
  bool skipping = start != NULL;
  int mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
  for (; mrc == 0; mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
    json_t *d = json_loadb(val.mv_data, val.mv_size, 0, NULL);
    const char *arn = kv__in_str(d, "LatestStreamArn");
    const char *tname = kv__in_str(d, "TableName");
    bool want = arn != NULL && (only == NULL || strcmp(only, tname) == 0);
    if (want && skipping) {
      if (strcmp(arn, start) == 0)
        skipping = false;
      want = false;
    }
    if (want && (json_int_t)json_array_size(list) == limit) {
      json_object_set_new(res, "LastEvaluatedStreamArn",
                          json_string(kv__in_str(json_array_get(list, json_array_size(list) - 1),
                                                "StreamArn")));
      json_decref(d);
      break;
    }
    if (want)
      json_array_append_new(list, json_pack("{sssssO}", "StreamArn", arn, "TableName", tname,
                                            "StreamLabel", json_object_get(d, "LatestStreamLabel")));
    json_decref(d);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  json_object_set_new(res, "Streams", list);
  *out = res;
  return 0;
}

int kv__describe_stream(kv *k, json_t *in, json_t **out, err *e)
{
  const char *arn = kv__in_str(in, "StreamArn");
  MDB_txn *txn;
  kv_table t;
  int rc = stream_open(k, arn, &txn, &t, e);
  if (rc == 0) {
    /* the first record's sequence number starts the shard's range */
    uint8_t pre[4] = {(uint8_t)(t.id >> 24), (uint8_t)(t.id >> 16), (uint8_t)(t.id >> 8),
                      (uint8_t)t.id};
    MDB_cursor *cur;
    mdb_cursor_open(txn, k->streams, &cur);
    MDB_val key = {4, pre}, val;
    char first[32] = "00000000000000000001";
    if (mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE) == 0 && key.mv_size == 12 &&
        memcmp(key.mv_data, pre, 4) == 0) {
      snprintf(first, sizeof first, "%020" PRIu64, key_seq(&key));
    }
    mdb_cursor_close(cur);
    char shard[64];
    snprintf(shard, sizeof shard, SHARD_FMT, t.id);
    json_t *spec = json_object_get(t.desc, "StreamSpecification");
    bool enabled = json_is_true(json_object_get(spec, "StreamEnabled"));
    json_t *sd = json_pack("{sssOsssssOsO}", "StreamArn", arn, "StreamLabel",
                           json_object_get(t.desc, "LatestStreamLabel"), "StreamStatus",
                           enabled ? "ENABLED" : "DISABLED", "TableName", t.name, "KeySchema",
                           json_object_get(t.desc, "KeySchema"), "CreationRequestDateTime",
                           json_object_get(t.desc, "CreationDateTime"));
    if (t.stream_view != NULL)
      json_object_set_new(sd, "StreamViewType", json_string(t.stream_view));
    json_object_set_new(sd, "Shards", json_pack("[{sss{ss}}]", "ShardId", shard,
                                                "SequenceNumberRange", "StartingSequenceNumber",
                                                first));
    *out = json_pack("{so}", "StreamDescription", sd);
  }
  stream_close(txn, &t);
  return rc;
}

static json_t *iterator(uint32_t id, uint64_t next, const char *arn)
{
  char raw[1024];
  int n = snprintf(raw, sizeof raw, "%" PRIu32 "/%" PRIu64 "/%s", id, next, arn);
  char *b64 = seal_make("dynamodb-iterator", raw, n < (int)sizeof raw ? (size_t)n : sizeof raw - 1);
  json_t *s = json_string(b64);
  free(b64);
  return s;
}

static uint64_t last_seq(kv *k, MDB_txn *txn, uint32_t id)
{
  uint32_t nid = id + 1;
  uint8_t next[4] = {(uint8_t)(nid >> 24), (uint8_t)(nid >> 16), (uint8_t)(nid >> 8), (uint8_t)nid};
  MDB_cursor *cur;
  mdb_cursor_open(txn, k->streams, &cur);
  MDB_val key = {4, next}, val;
  int mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
  mrc = mrc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_PREV)
                 : mdb_cursor_get(cur, &key, &val, MDB_LAST);
  uint64_t seq = 0;
  if (mrc == 0 && key.mv_size == 12) {
    const uint8_t *p = key.mv_data;
    uint32_t kid = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (kid == id)
      seq = key_seq(&key);
  }
  mdb_cursor_close(cur);
  return seq;
}

int kv__get_shard_iterator(kv *k, json_t *in, json_t **out, err *e)
{
  const char *arn = kv__in_str(in, "StreamArn");
  const char *shard = kv__in_str(in, "ShardId");
  const char *type = kv__in_str(in, "ShardIteratorType");
  const char *seqtext = kv__in_str(in, "SequenceNumber");
  if (type == NULL || shard == NULL)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value null at '%s' failed "
                   "to satisfy constraint: Member must not be null",
                   type == NULL ? "shardIteratorType" : "shardId");
  MDB_txn *txn;
  kv_table t;
  int rc = stream_open(k, arn, &txn, &t, e);
  char want[64];
  if (rc == 0) {
    snprintf(want, sizeof want, SHARD_FMT, t.id);
    if (strcmp(shard, want) != 0)
      rc = err_set(e, KV_ERR_NO_STREAM, "Requested resource not found: Shard does not exist");
  }
  uint64_t next = 1;
  if (rc == 0) {
    if (strcmp(type, "TRIM_HORIZON") == 0)
      next = 1;
    else if (strcmp(type, "LATEST") == 0)
      next = last_seq(k, txn, t.id) + 1;
    else if (strcmp(type, "AT_SEQUENCE_NUMBER") == 0 || strcmp(type, "AFTER_SEQUENCE_NUMBER") == 0) {
      char *end = NULL;
      unsigned long long v = seqtext != NULL ? strtoull(seqtext, &end, 10) : 0;
      if (seqtext == NULL || *end != '\0' || v == 0)
        rc = err_set(e, KV_ERR_VALIDATION, "Invalid SequenceNumber: %s",
                     seqtext != NULL ? seqtext : "null");
      next = type[0] == 'A' && type[1] == 'F' ? v + 1 : v;
    } else {
      rc = err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%s' at "
                   "'shardIteratorType' failed to satisfy constraint: Member must satisfy enum "
                   "value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_SEQUENCE_NUMBER, TRIM_HORIZON]",
                   type);
    }
  }
  if (rc == 0)
    *out = json_pack("{so}", "ShardIterator", iterator(t.id, next, arn));
  stream_close(txn, &t);
  return rc;
}

static uint64_t read_from(kv *k, MDB_txn *txn, uint32_t id, uint64_t from, size_t max,
                          json_t *records);

int kv__get_records(kv *k, json_t *in, json_t **out, err *e)
{
  const char *it = kv__in_str(in, "ShardIterator");
  json_t *lim = json_object_get(in, "Limit");
  json_int_t limit = lim != NULL ? json_integer_value(lim) : RECORDS_MAX;
  if (limit < 1 || limit > RECORDS_MAX)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%lld' at 'limit' "
                   "failed to satisfy constraint: Member must have value less than or equal to "
                   "1000", (long long)limit);
  if (it == NULL || strlen(it) > 2048)
    return err_set(e, KV_ERR_VALIDATION, "Invalid ShardIterator");
  uint8_t raw[SEAL_MAX_PAYLOAD + 1];
  size_t n = 0;
  int64_t issued = 0;
  uint32_t id = 0;
  uint64_t next = 0;
  int used = 0;
  if (seal_open("dynamodb-iterator", it, raw, sizeof raw, &n, &issued) != 0 ||
      sscanf((const char *)raw, "%" SCNu32 "/%" SCNu64 "/%n", &id, &next, &used) < 2 || used == 0)
    return err_set(e, KV_ERR_VALIDATION, "Invalid ShardIterator");
  char msg[256];
  if (seal_expired(issued, seal_ttl_ms(ITERATOR_TTL_MS), msg, sizeof msg))
    return err_set(e, KV_ERR_TRIMMED, "%s", msg); /* (3) */
  const char *arn = (const char *)raw + used;
  MDB_txn *txn;
  kv_table t;
  int rc = stream_open(k, arn, &txn, &t, e);
  if (rc == 0 && t.id != id)
    rc = err_set(e, KV_ERR_TRIMMED, "Iterator expired: the table was deleted"); /* (2) */
  json_t *records = json_array();
  if (rc == 0)
    next = read_from(k, txn, id, next, (size_t)limit, records);
  if (rc == 0) {
    json_t *res = json_pack("{so}", "Records", records);
    if (t.stream_view != NULL)
      json_object_set_new(res, "NextShardIterator", iterator(id, next, arn));
    *out = res;
  } else {
    json_decref(records);
  }
  stream_close(txn, &t);
  return rc;
}

/* Appends the records of table id with sequence numbers >= from, at most
 * max; returns the next sequence number to read. */
static uint64_t read_from(kv *k, MDB_txn *txn, uint32_t id, uint64_t from, size_t max,
                          json_t *records)
{
  uint8_t sk[12];
  for (int i = 0; i < 4; i++)
    sk[i] = (uint8_t)(id >> (24 - 8 * i));
  for (int i = 0; i < 8; i++)
    sk[4 + i] = (uint8_t)(from >> (56 - 8 * i));
  MDB_cursor *cur;
  if (mdb_cursor_open(txn, k->streams, &cur) != 0)
    return from;
  MDB_val key = {12, sk}, val;
  uint64_t next = from;
  int mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
  while (mrc == 0 && key.mv_size == 12 && memcmp(key.mv_data, sk, 4) == 0 &&
         json_array_size(records) < max) {
    json_t *r = json_loadb(val.mv_data, val.mv_size, 0, NULL);
    if (r != NULL)
      json_array_append_new(records, r);
    next = key_seq(&key) + 1;
    mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  return next;
}

int kv_stream_read(kv *k, const char *stream_arn, uint64_t after, size_t max, json_t **records,
                   uint64_t *last, err *e)
{
  MDB_txn *txn;
  kv_table t;
  int rc = stream_open(k, stream_arn, &txn, &t, e);
  if (rc == 0) {
    *records = json_array();
    *last = read_from(k, txn, t.id, after + 1, max, *records) - 1;
  }
  stream_close(txn, &t);
  return rc;
}

int kv_stream_latest(kv *k, const char *stream_arn, uint64_t *seq, err *e)
{
  MDB_txn *txn;
  kv_table t;
  int rc = stream_open(k, stream_arn, &txn, &t, e);
  if (rc == 0)
    *seq = last_seq(k, txn, t.id);
  stream_close(txn, &t);
  return rc;
}
