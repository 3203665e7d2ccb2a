/* stream/kinesis.c -- Kinesis Data Streams: streams, shards over the 128-bit
 * hash key space, durable puts with sequence numbers, shard iterators and
 * GetRecords.
 *
 * Why here and how: a record goes to the open shard whose hash key range
 * holds MD5(partition key) read as a big-endian 128-bit number (or the
 * ExplicitHashKey), as AWS does. Its sequence number comes from the part's
 * one counter, so sequence numbers increase per shard; the record's key in
 * krecords is (stream id, shard, sequence), so a shard reads in order with
 * one cursor. A sequence number's text is "49" + 20 digits of counter + 8
 * digits of shard index.
 *
 * Invariants:
 *   (1) A put is acknowledged only after its commit (stream__commit).
 *   (2) A shard, once closed (reshard), keeps its records until they age
 *       out; new records go only to open shards. A closed shard's
 *       EndingSequenceNumber is the counter's value when it closed.
 *   (3) An iterator names the stream's id: a stream deleted and created
 *       again does not read the old one's records.
 *   (4) Records older than the retention period are not returned; the
 *       delivery thread's sweep removes them (stream_kinesis_trim).
 *   (5) An iterator is sealed with its issue time and refused with
 *       ExpiredIteratorException 5 minutes later (TARN_ITERATOR_TTL_MS
 *       shortens that for tests); each NextShardIterator is fresh.
 *
 * Start reading at stream_kinesis_put().
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

__extension__ typedef unsigned __int128 u128;

#define U128_MAX (~(u128)0)
#define ARN_PREFIX "arn:aws:kinesis:us-east-1:000000000000:stream/"
#define ITERATOR_TTL_MS 300000 /* AWS: an iterator lives 5 minutes */

/* ---- 128-bit hash keys ---- */

static void u128_dec(u128 v, char out[48])
{
  char tmp[48];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + (int)(v % 10));
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  out[n] = '\0';
}

static bool dec_u128(const char *s, u128 *out)
{
  u128 v = 0;
  if (*s == '\0' || strlen(s) > 39)
    return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return false;
    u128 nv = v * 10 + (u128)(*s - '0');
    if (nv / 10 != v)
      return false;
    v = nv;
  }
  *out = v;
  return true;
}

static void u128_hex(u128 v, char out[33])
{
  uint8_t b[16];
  for (int i = 15; i >= 0; i--) {
    b[i] = (uint8_t)v;
    v >>= 8;
  }
  hex_encode(b, 16, out);
}

static u128 hex_u128(const char *s)
{
  uint8_t b[16] = {0};
  hex_decode(s, 32, b, 16);
  u128 v = 0;
  for (int i = 0; i < 16; i++)
    v = v << 8 | b[i];
  return v;
}

static u128 pk_hash(const char *pk)
{
  uint8_t d[MD5_LEN];
  md5(pk, strlen(pk), d);
  u128 v = 0;
  for (int i = 0; i < 16; i++)
    v = v << 8 | d[i];
  return v;
}

/* ---- records and names ---- */

static void shard_name(int idx, char out[24])
{
  snprintf(out, 24, "shardId-%012d", idx);
}

static int shard_index(const char *id)
{
  if (!str_starts(id, "shardId-") || strlen(id) != 20)
    return -1;
  char *end;
  long v = strtol(id + 8, &end, 10);
  return *end == '\0' && v >= 0 && v < 1000000 ? (int)v : -1;
}

static void seq_text(uint64_t seq, int shard, char out[48])
{
  snprintf(out, 48, "49%020" PRIu64 "%08d", seq, shard);
}

static bool seq_parse(const char *s, uint64_t *seq, int *shard)
{
  if (strlen(s) != 30 || s[0] != '4' || s[1] != '9')
    return false;
  for (const char *p = s; *p; p++)
    if (*p < '0' || *p > '9')
      return false;
  char a[21];
  memcpy(a, s + 2, 20);
  a[20] = '\0';
  *seq = strtoull(a, NULL, 10);
  *shard = atoi(s + 22);
  return true;
}

static void rec_key(uint8_t k[20], uint64_t sid, int shard, uint64_t seq)
{
  stream__be64(k, sid);
  k[8] = (uint8_t)(shard >> 24);
  k[9] = (uint8_t)(shard >> 16);
  k[10] = (uint8_t)(shard >> 8);
  k[11] = (uint8_t)shard;
  stream__be64(k + 12, seq);
}

static int no_stream(err *e, const char *name)
{
  return stream__not_found(e, "Stream", name);
}

/* The stream's record (a new reference) from txn. */
static int load(stream_system *s, MDB_txn *txn, const char *name, json_t **out, err *e)
{
  return stream__json_load(txn, s->db_kstreams, "Stream", name, out, e);
}

static int save(stream_system *s, MDB_txn *txn, const char *name, json_t *rec, err *e)
{
  return stream__json_put(txn, s->db_kstreams, name, rec, e);
}

static uint64_t ju64(json_t *o, const char *k)
{
  return (uint64_t)json_integer_value(json_object_get(o, k));
}

static uint64_t counter_now(stream_system *s, MDB_txn *txn)
{
  return stream__counter_get(s, txn, "seq");
}

/* Appends n new open shards over the whole key space to rec's shards;
 * parents are the previously open shards that overlap them. */
static void shards_open(json_t *rec, int n, uint64_t start_seq)
{
  json_t *shards = json_object_get(rec, "shards");
  size_t old = json_array_size(shards);
  u128 step = U128_MAX / (u128)n + ((U128_MAX % (u128)n) + 1 == (u128)n ? 1 : 0);
  for (int i = 0; i < n; i++) {
    u128 lo = step * (u128)i;
    u128 hi = i == n - 1 ? U128_MAX : step * (u128)(i + 1) - 1;
    char hlo[33], hhi[33];
    u128_hex(lo, hlo);
    u128_hex(hi, hhi);
    json_int_t parent = -1, adj = -1;
    for (size_t j = 0; j < old; j++) {
      json_t *o = json_array_get(shards, j);
      if ((uint64_t)json_integer_value(json_object_get(o, "eseq")) != start_seq - 1)
        continue; /* closed earlier, not by this reshard */
      u128 olo = hex_u128(json_string_value(json_object_get(o, "start")));
      u128 ohi = hex_u128(json_string_value(json_object_get(o, "end")));
      if (olo <= hi && lo <= ohi) {
        if (parent < 0)
          parent = (json_int_t)j;
        else if (adj < 0)
          adj = (json_int_t)j;
      }
    }
    json_array_append_new(shards, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "start", hlo,
                                            "end", hhi, "sseq", (json_int_t)start_seq, "eseq",
                                            (json_int_t)0, "parent", parent, "adj", adj));
  }
}

/* ---- create, delete, describe, list ---- */

typedef struct create_arg {
  const char *name;
  int shards;
  bool on_demand;
} create_arg;

static int apply_create(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  create_arg *ca = c->arg;
  MDB_val k = {strlen(ca->name), (void *)ca->name};
  MDB_val d;
  if (mdb_get(txn, s->db_kstreams, &k, &d) == 0)
    return err_set(e, STREAM_ERR_IN_USE, "Stream %s under account 000000000000 already exists.",
                   ca->name);
  uint64_t sid;
  int rc = stream__counter_next(s, txn, "sid", &sid, e);
  if (rc != 0)
    return rc;
  json_t *rec = json_pack("{s:I, s:s, s:i, s:I, s:[]}", "id", (json_int_t)sid, "mode",
                          ca->on_demand ? "ON_DEMAND" : "PROVISIONED", "retention", 24,
                          "created", (json_int_t)time_now_ms(), "shards");
  shards_open(rec, ca->shards, counter_now(s, txn) + 1);
  rc = save(s, txn, ca->name, rec, e);
  json_decref(rec);
  return rc;
}

int stream_kinesis_create(stream_system *s, const char *name, int shards, bool on_demand,
                          err *e)
{
  if (!stream__name_valid(name, STREAM_MAX_NAME))
    return err_set(e, STREAM_ERR_INVALID, "1 validation error detected: Value '%s' at "
                   "'streamName' failed to satisfy constraint: Member must satisfy regular "
                   "expression pattern: [a-zA-Z0-9_.-]+ (1 to 128 characters)", name);
  if (on_demand)
    shards = STREAM_ON_DEMAND_SHARDS;
  if (shards < 1 || shards > STREAM_MAX_SHARDS)
    return err_set(e, STREAM_ERR_INVALID, "ShardCount must be between 1 and %d, not %d",
                   STREAM_MAX_SHARDS, shards);
  create_arg ca = {name, shards, on_demand};
  return stream__commit(s, apply_create, &ca, e);
}

static int apply_delete(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  const char *name = c->arg;
  int rc = stream__drop(txn, s->db_kstreams, s->db_krecords, name, e);
  return rc == 1 ? no_stream(e, name) : rc;
}

int stream_kinesis_delete(stream_system *s, const char *name, err *e)
{
  return stream__commit(s, apply_delete, (void *)name, e);
}

/* A read-only look at one stream's record. */
static int read_stream(stream_system *s, const char *name, json_t **rec, uint64_t *now_seq,
                       err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  rc = load(s, txn, name, rec, e);
  if (now_seq != NULL)
    *now_seq = counter_now(s, txn);
  mdb_txn_abort(txn);
  return rc;
}

static json_t *shards_json(json_t *rec)
{
  json_t *out = json_array();
  size_t i;
  json_t *sh;
  json_array_foreach(json_object_get(rec, "shards"), i, sh) {
    char id[24], lo[48], hi[48], sseq[48], eseq[48];
    shard_name((int)i, id);
    u128_dec(hex_u128(json_string_value(json_object_get(sh, "start"))), lo);
    u128_dec(hex_u128(json_string_value(json_object_get(sh, "end"))), hi);
    seq_text(ju64(sh, "sseq"), (int)i, sseq);
    json_t *o = json_pack("{s:s, s:{s:s, s:s}, s:{s:s}}", "ShardId", id, "HashKeyRange",
                          "StartingHashKey", lo, "EndingHashKey", hi, "SequenceNumberRange",
                          "StartingSequenceNumber", sseq);
    if (ju64(sh, "eseq") != 0) {
      seq_text(ju64(sh, "eseq"), (int)i, eseq);
      json_object_set_new(json_object_get(o, "SequenceNumberRange"), "EndingSequenceNumber",
                          json_string(eseq));
    }
    json_int_t p = json_integer_value(json_object_get(sh, "parent"));
    json_int_t ad = json_integer_value(json_object_get(sh, "adj"));
    if (p >= 0) {
      shard_name((int)p, id);
      json_object_set_new(o, "ParentShardId", json_string(id));
    }
    if (ad >= 0) {
      shard_name((int)ad, id);
      json_object_set_new(o, "AdjacentParentShardId", json_string(id));
    }
    json_array_append_new(out, o);
  }
  return out;
}

static json_t *summary_json(const char *name, json_t *rec)
{
  return json_pack("{s:s, s:s, s:{s:s}, s:f}", "StreamName", name, "StreamStatus", "ACTIVE", "StreamModeDetails", "StreamMode",
                   json_string_value(json_object_get(rec, "mode")), "StreamCreationTimestamp",
                   (double)json_integer_value(json_object_get(rec, "created")) / 1000.0);
}

static void set_arn(json_t *o, const char *name)
{
  char arn[256];
  snprintf(arn, sizeof arn, ARN_PREFIX "%s", name);
  json_object_set_new(o, "StreamARN", json_string(arn));
}

int stream_kinesis_describe(stream_system *s, const char *name, bool summary, json_t **out,
                            err *e)
{
  json_t *rec;
  int rc = read_stream(s, name, &rec, NULL, e);
  if (rc != 0)
    return rc;
  json_t *o = summary_json(name, rec);
  set_arn(o, name);
  json_object_set(o, "RetentionPeriodHours", json_object_get(rec, "retention"));
  json_object_set_new(o, "EnhancedMonitoring", json_pack("[{s:[]}]", "ShardLevelMetrics"));
  json_object_set_new(o, "EncryptionType", json_string("NONE"));
  json_t *shards = shards_json(rec);
  if (summary) {
    size_t open = 0;
    size_t i;
    json_t *sh;
    json_array_foreach(json_object_get(rec, "shards"), i, sh)
      open += ju64(sh, "eseq") == 0;
    json_object_set_new(o, "OpenShardCount", json_integer((json_int_t)open));
    json_object_set_new(o, "ConsumerCount", json_integer(0));
    json_decref(shards);
  } else {
    json_object_set_new(o, "Shards", shards);
    json_object_set_new(o, "HasMoreShards", json_false());
  }
  json_decref(rec);
  *out = o;
  return 0;
}

int stream_kinesis_shards(stream_system *s, const char *name, json_t **out, err *e)
{
  json_t *rec;
  int rc = read_stream(s, name, &rec, NULL, e);
  if (rc != 0)
    return rc;
  *out = shards_json(rec);
  json_decref(rec);
  return 0;
}

static void add_summary(void *ctx, const char *name, json_t *rec)
{
  json_t *o = summary_json(name, rec);
  set_arn(o, name);
  json_array_append_new(ctx, o);
}

int stream_kinesis_list(stream_system *s, const char *start, size_t max, json_t **names,
                        bool *more, err *e)
{
  *names = json_array();
  return stream__scan(s, s->db_kstreams, start, max, add_summary, *names, more, e);
}

typedef struct retention_arg {
  const char *name;
  int hours;
  int target;
} retention_arg;

static int edit_retention(stream_system *s, MDB_txn *txn, json_t *rec, void *arg, err *e)
{
  retention_arg *ra = arg;
  json_object_set_new(rec, "retention", json_integer(ra->hours));
  return 0;
}

static int apply_retention(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  retention_arg *ra = c->arg;
  return stream__json_edit(s, txn, s->db_kstreams, "Stream", ra->name, edit_retention, ra, e);
}

int stream_kinesis_retention(stream_system *s, const char *name, int hours, err *e)
{
  if (hours < 24 || hours > 8760)
    return err_set(e, STREAM_ERR_INVALID, "Minimum allowed retention period is 24 hours and "
                   "maximum is 8760 hours, not %d", hours);
  retention_arg ra = {name, hours, 0};
  return stream__commit(s, apply_retention, &ra, e);
}

static int edit_reshard(stream_system *s, MDB_txn *txn, json_t *rec, void *arg, err *e)
{
  retention_arg *ra = arg;
  json_t *shards = json_object_get(rec, "shards");
  /* the closing point must be a value no open shard has yet: take one */
  uint64_t close_at;
  int rc = stream__counter_next(s, txn, "seq", &close_at, e);
  if (rc != 0)
    return rc;
  if (json_array_size(shards) + (size_t)ra->target > 1000)
    return err_set(e, STREAM_ERR_LIMIT, "too many shards over the life of stream '%s'",
                   ra->name);
  size_t i;
  json_t *sh;
  json_array_foreach(shards, i, sh)
    if (ju64(sh, "eseq") == 0)
      json_object_set_new(sh, "eseq", json_integer((json_int_t)close_at));
  shards_open(rec, ra->target, close_at + 1);
  return 0;
}

static int apply_reshard(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  retention_arg *ra = c->arg;
  return stream__json_edit(s, txn, s->db_kstreams, "Stream", ra->name, edit_reshard, ra, e);
}

int stream_kinesis_reshard(stream_system *s, const char *name, int target, err *e)
{
  if (target < 1 || target > STREAM_MAX_SHARDS)
    return err_set(e, STREAM_ERR_INVALID, "TargetShardCount must be between 1 and %d, not %d",
                   STREAM_MAX_SHARDS, target);
  retention_arg ra = {name, 0, target};
  return stream__commit(s, apply_reshard, &ra, e);
}

typedef struct split_arg {
  const char *name;
  int shard;            /* SplitShard's, or MergeShards' first */
  int other;            /* MergeShards' adjacent shard, or -1 */
  u128 at;              /* SplitShard's NewStartingHashKey */
} split_arg;

static json_t *child(u128 lo, u128 hi, uint64_t sseq, int parent, int adj)
{
  char hlo[33], hhi[33];
  u128_hex(lo, hlo);
  u128_hex(hi, hhi);
  return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "start", hlo, "end", hhi, "sseq",
                   (json_int_t)sseq, "eseq", (json_int_t)0, "parent", (json_int_t)parent, "adj",
                   (json_int_t)adj);
}

static int edit_split(stream_system *s, MDB_txn *txn, json_t *rec, void *arg, err *e)
{
  split_arg *sa = arg;
  int rc = 0;
  json_t *shards = json_object_get(rec, "shards");
  json_t *x = json_array_get(shards, (size_t)sa->shard);
  json_t *y = sa->other >= 0 ? json_array_get(shards, (size_t)sa->other) : NULL;
  size_t open = 0;
  size_t i;
  json_t *sh;
  json_array_foreach(shards, i, sh)
    open += ju64(sh, "eseq") == 0;
  if (x == NULL || (sa->other >= 0 && y == NULL))
    rc = err_set(e, STREAM_ERR_NOT_FOUND, "Could not find shard in stream %s under account "
                 "000000000000.", sa->name);
  else if (ju64(x, "eseq") != 0 || (y != NULL && ju64(y, "eseq") != 0))
    rc = err_set(e, STREAM_ERR_INVALID, "shard is already closed in stream %s", sa->name);
  else if (y == NULL && open + 1 > STREAM_MAX_SHARDS)
    rc = err_set(e, STREAM_ERR_LIMIT, "stream %s would have more than %d open shards",
                 sa->name, STREAM_MAX_SHARDS);
  else if (json_array_size(shards) + 2 > 1000)
    rc = err_set(e, STREAM_ERR_LIMIT, "too many shards over the life of stream '%s'",
                 sa->name);
  u128 xlo = 0, xhi = 0, ylo = 0, yhi = 0;
  if (rc == 0) {
    xlo = hex_u128(json_string_value(json_object_get(x, "start")));
    xhi = hex_u128(json_string_value(json_object_get(x, "end")));
    if (y != NULL) {
      ylo = hex_u128(json_string_value(json_object_get(y, "start")));
      yhi = hex_u128(json_string_value(json_object_get(y, "end")));
      if (!((xhi != U128_MAX && xhi + 1 == ylo) || (yhi != U128_MAX && yhi + 1 == xlo)))
        rc = err_set(e, STREAM_ERR_INVALID, "Shards %s and %s are not adjacent in stream %s",
                     "ShardToMerge", "AdjacentShardToMerge", sa->name);
    } else if (sa->at <= xlo || sa->at > xhi) {
      rc = err_set(e, STREAM_ERR_INVALID, "NewStartingHashKey must be inside the shard's hash "
                   "key range, above its StartingHashKey");
    }
  }
  uint64_t close_at = 0;
  if (rc == 0)
    rc = stream__counter_next(s, txn, "seq", &close_at, e);
  if (rc == 0) {
    json_object_set_new(x, "eseq", json_integer((json_int_t)close_at));
    if (y != NULL) {
      json_object_set_new(y, "eseq", json_integer((json_int_t)close_at));
      json_array_append_new(shards, child(xlo < ylo ? xlo : ylo, xhi > yhi ? xhi : yhi,
                                          close_at + 1, sa->shard, sa->other));
    } else {
      json_array_append_new(shards, child(xlo, sa->at - 1, close_at + 1, sa->shard, -1));
      json_array_append_new(shards, child(sa->at, xhi, close_at + 1, sa->shard, -1));
    }
  }
  return rc;
}

static int apply_split(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  split_arg *sa = c->arg;
  return stream__json_edit(s, txn, s->db_kstreams, "Stream", sa->name, edit_split, sa, e);
}

int stream_kinesis_split(stream_system *s, const char *name, const char *shard_id,
                         const char *new_start, err *e)
{
  split_arg sa = {name, shard_index(shard_id != NULL ? shard_id : ""), -1, 0};
  if (sa.shard < 0)
    return err_set(e, STREAM_ERR_NOT_FOUND, "Could not find shard %s in stream %s under "
                   "account 000000000000.", shard_id != NULL ? shard_id : "", name);
  if (new_start == NULL || !dec_u128(new_start, &sa.at))
    return err_set(e, STREAM_ERR_INVALID, "NewStartingHashKey must be a decimal number from 0 "
                   "to 2^128 - 1");
  return stream__commit(s, apply_split, &sa, e);
}

int stream_kinesis_merge(stream_system *s, const char *name, const char *shard_id,
                         const char *adjacent_id, err *e)
{
  split_arg sa = {name, shard_index(shard_id != NULL ? shard_id : ""),
                  shard_index(adjacent_id != NULL ? adjacent_id : ""), 0};
  if (sa.shard < 0 || sa.other < 0 || sa.shard == sa.other)
    return err_set(e, STREAM_ERR_INVALID, "ShardToMerge and AdjacentShardToMerge must name two "
                   "shards of stream %s", name);
  return stream__commit(s, apply_split, &sa, e);
}

/* ---- put ---- */

typedef struct put_arg {
  const char *name;
  const stream_record_in *in;
  u128 *hashes;
  size_t n;
  stream_record_out *out;
} put_arg;

static int apply_put(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  put_arg *pa = c->arg;
  json_t *rec;
  int rc = load(s, txn, pa->name, &rec, e);
  if (rc != 0)
    return rc;
  uint64_t sid = ju64(rec, "id");
  json_t *shards = json_object_get(rec, "shards");
  size_t ns = json_array_size(shards);
  u128 *lo = arena_alloc(a, ns * sizeof *lo);
  u128 *hi = arena_alloc(a, ns * sizeof *hi);
  bool *open = arena_alloc(a, ns * sizeof *open);
  for (size_t i = 0; i < ns; i++) {
    json_t *sh = json_array_get(shards, i);
    lo[i] = hex_u128(json_string_value(json_object_get(sh, "start")));
    hi[i] = hex_u128(json_string_value(json_object_get(sh, "end")));
    open[i] = ju64(sh, "eseq") == 0;
  }
  json_decref(rec);
  uint64_t seq = counter_now(s, txn);
  int64_t now = time_now_ms();
  for (size_t i = 0; i < pa->n; i++) {
    const stream_record_in *r = &pa->in[i];
    int shard = -1;
    for (size_t j = 0; j < ns && shard < 0; j++)
      if (open[j] && lo[j] <= pa->hashes[i] && pa->hashes[i] <= hi[j])
        shard = (int)j;
    if (shard < 0)
      return err_set(e, ERR_INTERNAL, "no open shard holds a hash key of stream '%s'",
                     pa->name);
    seq++;
    uint8_t k[20];
    rec_key(k, sid, shard, seq);
    size_t pkl = strlen(r->partition_key);
    size_t vlen = 10 + pkl + r->len;
    MDB_val key = {sizeof k, k};
    MDB_val val = {vlen, NULL};
    int mrc = mdb_put(txn, s->db_krecords, &key, &val, MDB_RESERVE);
    if (mrc != 0)
      return lmdb_error(e, mrc, "write a record");
    uint8_t *p = val.mv_data;
    stream__be64(p, (uint64_t)now);
    p[8] = (uint8_t)(pkl >> 8);
    p[9] = (uint8_t)pkl;
    memcpy(p + 10, r->partition_key, pkl);
    if (r->len > 0)
      memcpy(p + 10 + pkl, r->data, r->len);
    shard_name(shard, pa->out[i].shard_id);
    seq_text(seq, shard, pa->out[i].sequence);
  }
  return stream__counter_set(s, txn, "seq", seq, e);
}

int stream_kinesis_put(stream_system *s, const char *name, const stream_record_in *in,
                       size_t n, stream_record_out *out, err *e)
{
  if (n == 0 || n > STREAM_MAX_PUT_RECORDS)
    return err_set(e, STREAM_ERR_INVALID, "a put takes 1 to %d records, not %zu",
                   STREAM_MAX_PUT_RECORDS, n);
  size_t total = 0;
  u128 *hashes = xcalloc(n, sizeof *hashes);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *pk = in[i].partition_key;
    size_t pkl = pk != NULL ? strlen(pk) : 0;
    memset(&out[i], 0, sizeof out[i]);
    if (pkl == 0 || pkl > STREAM_MAX_PARTITION_KEY)
      rc = err_set(e, STREAM_ERR_INVALID, "1 validation error detected: Value at "
                   "'partitionKey' failed to satisfy constraint: Member must have length "
                   "between 1 and 256");
    else if (in[i].len + pkl > STREAM_MAX_RECORD)
      rc = err_set(e, STREAM_ERR_INVALID, "record %zu is %zu bytes with its partition key; "
                   "the limit is 1 MiB", i, in[i].len + pkl);
    else if (in[i].explicit_hash != NULL && !dec_u128(in[i].explicit_hash, &hashes[i]))
      rc = err_set(e, STREAM_ERR_INVALID, "Invalid ExplicitHashKey '%s': it must be a decimal "
                   "number from 0 to 2^128 - 1", in[i].explicit_hash);
    else if (in[i].explicit_hash == NULL)
      hashes[i] = pk_hash(pk);
    total += in[i].len + pkl;
  }
  if (rc == 0 && total > STREAM_MAX_PUT_BYTES)
    rc = err_set(e, STREAM_ERR_INVALID, "the records total %zu bytes; a put takes at most "
                 "5 MiB", total);
  if (rc == 0) {
    put_arg pa = {name, in, hashes, n, out};
    rc = stream__commit(s, apply_put, &pa, e);
  }
  if (rc == 0) {
    pthread_mutex_lock(&s->mu);
    s->kinesis_records += n;
    pthread_mutex_unlock(&s->mu);
  }
  free(hashes);
  return rc;
}

/* ---- retention ---- */

#define TRIM_MAX 10000 /* records removed per sweep: a sweep is one commit */

static int apply_trim(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  int64_t now = *(int64_t *)c->arg;
  size_t removed = 0;
  MDB_cursor *streams;
  int mrc = mdb_cursor_open(txn, s->db_kstreams, &streams);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  MDB_cursor *cur;
  if ((mrc = mdb_cursor_open(txn, s->db_krecords, &cur)) != 0) {
    mdb_cursor_close(streams);
    return lmdb_error(e, mrc, "open a cursor");
  }
  MDB_val k, v;
  for (mrc = mdb_cursor_get(streams, &k, &v, MDB_FIRST); mrc == 0 && removed < TRIM_MAX;
       mrc = mdb_cursor_get(streams, &k, &v, MDB_NEXT)) {
    json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (rec == NULL)
      continue;
    uint64_t sid = ju64(rec, "id");
    int64_t cutoff = now - (int64_t)json_integer_value(json_object_get(rec, "retention")) *
                               3600000;
    size_t nshards = json_array_size(json_object_get(rec, "shards"));
    json_decref(rec);
    for (size_t sh = 0; sh < nshards && removed < TRIM_MAX; sh++) {
      uint8_t key[20];
      rec_key(key, sid, (int)sh, 0);
      MDB_val rk = {20, key};
      MDB_val rv;
      int r = mdb_cursor_get(cur, &rk, &rv, MDB_SET_RANGE);
      /* a shard's records arrive in order: the old ones come first */
      while (r == 0 && removed < TRIM_MAX && rk.mv_size == 20 &&
             memcmp(rk.mv_data, key, 12) == 0 && (int64_t)stream__rd64(rv.mv_data) < cutoff) {
        if ((r = mdb_cursor_del(cur, 0)) != 0)
          break;
        removed++;
        r = mdb_cursor_get(cur, &rk, &rv, MDB_GET_CURRENT);
      }
    }
  }
  mdb_cursor_close(cur);
  mdb_cursor_close(streams);
  return 0;
}

int stream__kinesis_trim(stream_system *s, int64_t now_ms, err *e)
{
  return stream__commit(s, apply_trim, &now_ms, e);
}

/* ---- Firehose's Kinesis source ---- */

typedef struct pull_arg {
  uint64_t dsid;
  const char *stream;
  uint64_t from;
  size_t budget;
  int64_t bytes, count, first_ts; /* out */
} pull_arg;

static void checkpoint_key(uint8_t k[14], uint64_t dsid, int shard)
{
  k[0] = 'c';
  k[1] = 'k';
  stream__be64(k + 2, dsid);
  k[10] = (uint8_t)(shard >> 24);
  k[11] = (uint8_t)(shard >> 16);
  k[12] = (uint8_t)(shard >> 8);
  k[13] = (uint8_t)shard;
}

static int apply_pull(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  pull_arg *pa = c->arg;
  json_t *rec;
  int rc = load(s, txn, pa->stream, &rec, e);
  if (rc != 0)
    return rc;
  uint64_t sid = ju64(rec, "id");
  size_t nshards = json_array_size(json_object_get(rec, "shards"));
  json_decref(rec);
  uint64_t seq = counter_now(s, txn);
  MDB_cursor *cur;
  int mrc = mdb_cursor_open(txn, s->db_krecords, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  size_t moved = 0;
  for (size_t sh = 0; sh < nshards && moved < pa->budget; sh++) {
    uint8_t ck[14];
    checkpoint_key(ck, pa->dsid, (int)sh);
    MDB_val ckk = {sizeof ck, ck};
    MDB_val ckv;
    uint64_t from = pa->from;
    if (mdb_get(txn, s->db_meta, &ckk, &ckv) == 0 && ckv.mv_size == 8)
      from = stream__rd64(ckv.mv_data);
    uint8_t key[20];
    rec_key(key, sid, (int)sh, from);
    MDB_val rk = {20, key};
    MDB_val rv;
    uint64_t next = from;
    for (mrc = mdb_cursor_get(cur, &rk, &rv, MDB_SET_RANGE);
         mrc == 0 && moved < pa->budget && rk.mv_size == 20 && memcmp(rk.mv_data, key, 12) == 0;
         mrc = mdb_cursor_get(cur, &rk, &rv, MDB_NEXT)) {
      const uint8_t *p = rv.mv_data;
      size_t pkl = (size_t)p[8] << 8 | p[9];
      size_t dlen = rv.mv_size - 10 - pkl;
      uint8_t bk[16];
      stream__be64(bk, pa->dsid);
      stream__be64(bk + 8, ++seq);
      MDB_val bkey = {16, bk};
      MDB_val bval = {8 + dlen, NULL};
      int r = mdb_put(txn, s->db_dbuf, &bkey, &bval, MDB_RESERVE);
      if (r != 0) {
        mdb_cursor_close(cur);
        return lmdb_error(e, r, "buffer a record");
      }
      memcpy(bval.mv_data, p, 8); /* the arrival time in the Kinesis stream */
      memcpy((uint8_t *)bval.mv_data + 8, p + 10 + pkl, dlen);
      if (pa->first_ts == 0)
        pa->first_ts = (int64_t)stream__rd64(p);
      pa->bytes += (int64_t)dlen;
      pa->count++;
      moved += dlen;
      next = stream__rd64((const uint8_t *)rk.mv_data + 12) + 1;
    }
    if (next != from) {
      uint8_t b[8];
      stream__be64(b, next);
      ckv = (MDB_val){8, b};
      if ((mrc = mdb_put(txn, s->db_meta, &ckk, &ckv, 0)) != 0) {
        mdb_cursor_close(cur);
        return lmdb_error(e, mrc, "write a checkpoint");
      }
    }
  }
  mdb_cursor_close(cur);
  if (pa->count == 0)
    return 0;
  return stream__counter_set(s, txn, "seq", seq, e);
}

int stream__kinesis_pull(stream_system *s, uint64_t dsid, const char *stream, uint64_t from,
                         size_t budget, int64_t *bytes, int64_t *count, int64_t *first_ts,
                         err *e)
{
  pull_arg pa = {dsid, stream, from, budget, 0, 0, 0};
  int rc = stream__commit(s, apply_pull, &pa, e);
  if (rc == 0) {
    *bytes += pa.bytes;
    *count += pa.count;
    if (*first_ts == 0)
      *first_ts = pa.first_ts;
  }
  return rc;
}

int stream__counter_read(stream_system *s, uint64_t *out, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  *out = counter_now(s, txn);
  mdb_txn_abort(txn);
  return 0;
}

/* ---- consumers ---- */

#define CONSUMER_MAX 64

static int cp_key(uint8_t k[2 + CONSUMER_MAX + 4], const char *consumer, int shard)
{
  size_t n = strlen(consumer);
  if (n > CONSUMER_MAX)
    n = CONSUMER_MAX;
  k[0] = 'c';
  k[1] = 'p';
  memcpy(k + 2, consumer, n);
  k[2 + n] = (uint8_t)(shard >> 24);
  k[3 + n] = (uint8_t)(shard >> 16);
  k[4 + n] = (uint8_t)(shard >> 8);
  k[5 + n] = (uint8_t)shard;
  return (int)(n + 6);
}

static uint64_t cp_get(stream_system *s, MDB_txn *txn, const char *consumer, int shard)
{
  uint8_t k[2 + CONSUMER_MAX + 4];
  MDB_val key = {(size_t)cp_key(k, consumer, shard), k};
  MDB_val v;
  if (mdb_get(txn, s->db_meta, &key, &v) == 0 && v.mv_size == 8)
    return stream__rd64(v.mv_data);
  return 0;
}

static int cp_set(stream_system *s, MDB_txn *txn, const char *consumer, int shard,
                  uint64_t next, err *e)
{
  uint8_t k[2 + CONSUMER_MAX + 4];
  uint8_t b[8];
  stream__be64(b, next);
  MDB_val key = {(size_t)cp_key(k, consumer, shard), k};
  MDB_val v = {8, b};
  int mrc = mdb_put(txn, s->db_meta, &key, &v, 0);
  return mrc != 0 ? lmdb_error(e, mrc, "write a checkpoint") : 0;
}

/* The first record's sequence at or after from in a shard, or 0. */
static uint64_t first_after(stream_system *s, MDB_txn *txn, uint64_t sid, int shard,
                            uint64_t from, int64_t min_ts)
{
  uint8_t k[20];
  rec_key(k, sid, shard, from);
  MDB_cursor *cur;
  if (mdb_cursor_open(txn, s->db_krecords, &cur) != 0)
    return 0;
  MDB_val key = {20, k};
  MDB_val v;
  uint64_t found = 0;
  for (int mrc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
       mrc == 0 && key.mv_size == 20 && memcmp(key.mv_data, k, 12) == 0;
       mrc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
    if ((int64_t)stream__rd64(v.mv_data) >= min_ts) {
      found = stream__rd64((const uint8_t *)key.mv_data + 12);
      break;
    }
  }
  mdb_cursor_close(cur);
  return found;
}

typedef struct consumer_arg {
  const char *stream;
  const char *consumer;
  enum stream_iterator_type type;
  int64_t ts;
  int shard;
  uint64_t next;
} consumer_arg;

static int apply_consumer_start(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  consumer_arg *ca = c->arg;
  json_t *rec;
  int rc = load(s, txn, ca->stream, &rec, e);
  if (rc != 0)
    return rc;
  uint64_t sid = ju64(rec, "id");
  uint64_t latest = counter_now(s, txn) + 1;
  size_t i;
  json_t *sh;
  json_array_foreach(json_object_get(rec, "shards"), i, sh) {
    if (ju64(sh, "eseq") != 0 && ca->type != STREAM_TRIM_HORIZON)
      continue;
    uint64_t at = 0;
    if (ca->type == STREAM_LATEST)
      at = latest;
    else if (ca->type == STREAM_AT_TIMESTAMP) {
      at = first_after(s, txn, sid, (int)i, 0, ca->ts);
      if (at == 0)
        at = latest;
    }
    if ((rc = cp_set(s, txn, ca->consumer, (int)i, at, e)) != 0)
      break;
  }
  json_decref(rec);
  return rc;
}

int stream_consumer_start(stream_system *s, const char *stream, const char *consumer,
                          enum stream_iterator_type type, int64_t timestamp_ms, err *e)
{
  consumer_arg ca = {stream, consumer, type, timestamp_ms, 0, 0};
  return stream__commit(s, apply_consumer_start, &ca, e);
}

static int apply_consumer_commit(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  consumer_arg *ca = c->arg;
  if (cp_get(s, txn, ca->consumer, ca->shard) >= ca->next)
    return 0; /* never backwards */
  return cp_set(s, txn, ca->consumer, ca->shard, ca->next, e);
}

int stream_consumer_commit(stream_system *s, const char *stream, const char *consumer,
                           const char *shard_id, const char *sequence, err *e)
{
  uint64_t seq = 0;
  int shard = -1;
  if (!seq_parse(sequence, &seq, &shard) || shard != shard_index(shard_id))
    return err_set(e, STREAM_ERR_INVALID, "sequence number '%s' is not of shard '%s'", sequence,
                   shard_id);
  consumer_arg ca = {stream, consumer, STREAM_TRIM_HORIZON, 0, shard, seq + 1};
  return stream__commit(s, apply_consumer_commit, &ca, e);
}

static int apply_consumer_drop(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  uint8_t k[2 + CONSUMER_MAX + 4];
  size_t plen = (size_t)cp_key(k, c->arg, 0) - 4;
  MDB_cursor *cur;
  int mrc = mdb_cursor_open(txn, s->db_meta, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  MDB_val key = {plen, k};
  MDB_val v;
  mrc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
  while (mrc == 0 && key.mv_size == plen + 4 && memcmp(key.mv_data, k, plen) == 0) {
    if ((mrc = mdb_cursor_del(cur, 0)) != 0)
      break;
    mrc = mdb_cursor_get(cur, &key, &v, MDB_GET_CURRENT);
  }
  mdb_cursor_close(cur);
  return 0;
}

int stream_consumer_drop(stream_system *s, const char *consumer, err *e)
{
  return stream__commit(s, apply_consumer_drop, (void *)consumer, e);
}

int stream_kinesis_exists(stream_system *s, const char *stream, err *e)
{
  json_t *rec;
  int rc = read_stream(s, stream, &rec, NULL, e);
  json_decref(rec);
  return rc;
}

/* A shard whose records the consumer has all read (closed, nothing left). */
static bool shard_done(stream_system *s, MDB_txn *txn, json_t *shards, uint64_t sid,
                       const char *consumer, json_int_t idx)
{
  json_t *sh = json_array_get(shards, (size_t)idx);
  if (sh == NULL)
    return true;
  if (ju64(sh, "eseq") == 0)
    return false;
  return first_after(s, txn, sid, (int)idx, cp_get(s, txn, consumer, (int)idx), 0) == 0;
}

int stream_consumer_read(stream_system *s, const char *stream, const char *consumer,
                         size_t *next_shard, size_t max, size_t max_bytes, arena *a,
                         stream_batch *out, err *e)
{
  memset(out, 0, sizeof *out);
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  json_t *rec = NULL;
  if ((rc = load(s, txn, stream, &rec, e)) != 0)
    goto done;
  uint64_t sid = ju64(rec, "id");
  int64_t oldest = time_now_ms() -
                   (int64_t)json_integer_value(json_object_get(rec, "retention")) * 3600000;
  json_t *shards = json_object_get(rec, "shards");
  size_t ns = json_array_size(shards);
  out->recs = arena_alloc(a, (max + 1) * sizeof *out->recs);
  for (size_t tried = 0; tried < ns && out->n == 0; tried++) {
    size_t idx = (*next_shard + tried) % ns;
    json_t *sh = json_array_get(shards, idx);
    /* parents first: a child waits until they are read to their end */
    if (!shard_done(s, txn, shards, sid, consumer, json_integer_value(json_object_get(sh, "parent"))) ||
        !shard_done(s, txn, shards, sid, consumer, json_integer_value(json_object_get(sh, "adj"))))
      continue;
    uint8_t k[20];
    rec_key(k, sid, (int)idx, cp_get(s, txn, consumer, (int)idx));
    MDB_cursor *cur;
    mdb_cursor_open(txn, s->db_krecords, &cur);
    MDB_val key = {20, k};
    MDB_val v;
    size_t bytes = 0;
    for (int mrc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
         mrc == 0 && out->n < max && key.mv_size == 20 && memcmp(key.mv_data, k, 12) == 0;
         mrc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
      const uint8_t *p = v.mv_data;
      size_t pkl = (size_t)p[8] << 8 | p[9];
      size_t dlen = v.mv_size - 10 - pkl;
      if ((int64_t)stream__rd64(p) < oldest)
        continue; /* past retention */
      if (out->n > 0 && bytes + dlen > max_bytes)
        break;
      stream_batch_record *r = &out->recs[out->n++];
      seq_text(stream__rd64((const uint8_t *)key.mv_data + 12), (int)idx, r->sequence);
      r->partition_key = arena_strndup(a, (const char *)p + 10, pkl);
      r->data = arena_memdup(a, p + 10 + pkl, dlen);
      r->len = dlen;
      r->ts_ms = (int64_t)stream__rd64(p);
      bytes += dlen;
    }
    mdb_cursor_close(cur);
    if (out->n > 0) {
      shard_name((int)idx, out->shard_id);
      *next_shard = idx + 1;
    }
  }
done:
  json_decref(rec);
  mdb_txn_abort(txn);
  return rc;
}

/* ---- iterators and reading ---- */

/* name \n sid \n shard \n next sequence, sealed with its issue time
 * (base/seal.h): a client cannot forge one, and it expires (5). */
static const char *iterator_make(arena *a, const char *name, uint64_t sid, int shard,
                                 uint64_t seq)
{
  char *text = arena_sprintf(a, "%s\n%" PRIu64 "\n%d\n%" PRIu64, name, sid, shard, seq);
  char *sealed = seal_make("kinesis-iterator", text, strlen(text));
  const char *out = arena_strdup(a, sealed);
  free(sealed);
  return out;
}

static int iterator_parse(const char *it, char name[STREAM_MAX_NAME + 1], uint64_t *sid,
                          int *shard, uint64_t *seq, err *e)
{
  uint8_t raw[STREAM_MAX_NAME + 80];
  size_t n = 0;
  int64_t issued = 0;
  if (strlen(it) > 512 || seal_open("kinesis-iterator", it, raw, sizeof raw, &n, &issued) != 0)
    return err_set(e, STREAM_ERR_INVALID, "Invalid ShardIterator.");
  char msg[256];
  if (seal_expired(issued, seal_ttl_ms(ITERATOR_TTL_MS), msg, sizeof msg))
    return err_set(e, STREAM_ERR_EXPIRED_ITERATOR, "%s", msg); /* (5) */
  char *nl = strchr((char *)raw, '\n');
  if (nl == NULL || nl - (char *)raw > STREAM_MAX_NAME)
    return err_set(e, STREAM_ERR_INVALID, "Invalid ShardIterator.");
  memcpy(name, raw, (size_t)(nl - (char *)raw));
  name[nl - (char *)raw] = '\0';
  unsigned long long a, c;
  int b;
  if (sscanf(nl + 1, "%llu\n%d\n%llu", &a, &b, &c) != 3)
    return err_set(e, STREAM_ERR_INVALID, "Invalid ShardIterator.");
  *sid = a;
  *shard = b;
  *seq = c;
  return 0;
}

int stream_kinesis_iterator(stream_system *s, const char *name, const char *shard_id,
                            enum stream_iterator_type type, const char *sequence,
                            int64_t timestamp_ms, arena *a, const char **iterator, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  json_t *rec = NULL;
  if ((rc = load(s, txn, name, &rec, e)) != 0)
    goto out;
  int shard = shard_index(shard_id);
  if (shard < 0 || (size_t)shard >= json_array_size(json_object_get(rec, "shards"))) {
    rc = err_set(e, STREAM_ERR_NOT_FOUND, "Shard %s in stream %s under account 000000000000 "
                 "does not exist", shard_id, name);
    goto out;
  }
  uint64_t sid = ju64(rec, "id");
  uint64_t seq = 0;
  int sshard = -1;
  switch (type) {
  case STREAM_TRIM_HORIZON:
    seq = 0;
    break;
  case STREAM_LATEST:
    seq = counter_now(s, txn) + 1;
    break;
  case STREAM_AT_SEQUENCE:
  case STREAM_AFTER_SEQUENCE:
    if (sequence == NULL || !seq_parse(sequence, &seq, &sshard) || sshard != shard) {
      rc = err_set(e, STREAM_ERR_INVALID, "StartingSequenceNumber %s used in GetShardIterator "
                   "on shard %s in stream %s under account 000000000000 is invalid.",
                   sequence != NULL ? sequence : "(none)", shard_id, name);
      goto out;
    }
    if (type == STREAM_AFTER_SEQUENCE)
      seq++;
    break;
  case STREAM_AT_TIMESTAMP: {
    seq = counter_now(s, txn) + 1;
    uint8_t k[20];
    rec_key(k, sid, shard, 0);
    MDB_cursor *cur;
    mdb_cursor_open(txn, s->db_krecords, &cur);
    MDB_val key = {12, k};
    MDB_val d;
    int mrc = mdb_cursor_get(cur, &key, &d, MDB_SET_RANGE);
    for (; mrc == 0 && key.mv_size == 20 && memcmp(key.mv_data, k, 12) == 0;
         mrc = mdb_cursor_get(cur, &key, &d, MDB_NEXT)) {
      if ((int64_t)stream__rd64(d.mv_data) >= timestamp_ms) {
        seq = stream__rd64((const uint8_t *)key.mv_data + 12);
        break;
      }
    }
    mdb_cursor_close(cur);
    break;
  }
  }
  *iterator = iterator_make(a, name, sid, shard, seq);
out:
  json_decref(rec);
  mdb_txn_abort(txn);
  return rc;
}

int stream_kinesis_get(stream_system *s, const char *iterator, size_t limit, json_t **out,
                       err *e)
{
  char name[STREAM_MAX_NAME + 1];
  uint64_t sid = 0, seq = 0;
  int shard = 0;
  int rc = iterator_parse(iterator, name, &sid, &shard, &seq, e);
  if (rc != 0)
    return rc;
  if (limit == 0 || limit > STREAM_MAX_GET_RECORDS)
    limit = STREAM_MAX_GET_RECORDS;
  MDB_txn *txn;
  if ((rc = lmdb_read_begin(s->env, &txn, e)) != 0)
    return rc;
  json_t *rec = NULL;
  arena *a = arena_new();
  if ((rc = load(s, txn, name, &rec, e)) != 0 || ju64(rec, "id") != sid) {
    if (rc == 0)
      rc = err_set(e, STREAM_ERR_NOT_FOUND, "Stream %s under account 000000000000 not found.",
                   name);
    goto out;
  }
  json_t *sh = json_array_get(json_object_get(rec, "shards"), (size_t)shard);
  if (sh == NULL) {
    rc = err_set(e, STREAM_ERR_INVALID, "Invalid ShardIterator.");
    goto out;
  }
  int64_t now = time_now_ms();
  int64_t oldest = now - (int64_t)json_integer_value(json_object_get(rec, "retention")) * 3600000;
  json_t *records = json_array();
  uint8_t k[20];
  rec_key(k, sid, shard, seq);
  MDB_cursor *cur;
  mdb_cursor_open(txn, s->db_krecords, &cur);
  MDB_val key = {20, k};
  MDB_val d;
  size_t bytes = 0;
  uint64_t next = seq;
  int64_t last_ts = 0;
  bool more = false;
  int mrc = mdb_cursor_get(cur, &key, &d, MDB_SET_RANGE);
  for (; mrc == 0 && key.mv_size == 20 && memcmp(key.mv_data, k, 12) == 0;
       mrc = mdb_cursor_get(cur, &key, &d, MDB_NEXT)) {
    const uint8_t *p = d.mv_data;
    uint64_t rseq = stream__rd64((const uint8_t *)key.mv_data + 12);
    int64_t ts = (int64_t)stream__rd64(p);
    size_t pkl = (size_t)p[8] << 8 | p[9];
    size_t dlen = d.mv_size - 10 - pkl;
    if (ts < oldest) {
      next = rseq + 1;
      continue;
    }
    if (json_array_size(records) == limit || bytes + dlen > STREAM_MAX_GET_BYTES) {
      more = true;
      break;
    }
    bytes += dlen;
    char sq[48];
    seq_text(rseq, shard, sq);
    char *b64 = arena_alloc(a, base64_encoded_len(dlen));
    base64_encode(p + 10 + pkl, dlen, b64);
    json_array_append_new(records,
                          json_pack("{s:s, s:f, s:s, s:s%}", "SequenceNumber", sq,
                                    "ApproximateArrivalTimestamp", (double)ts / 1000.0, "Data",
                                    b64, "PartitionKey", (const char *)p + 10, pkl));
    next = rseq + 1;
    last_ts = ts;
  }
  mdb_cursor_close(cur);
  json_t *o = json_pack("{s:o, s:I}", "Records", records, "MillisBehindLatest",
                        (json_int_t)(more && last_ts > 0 ? now - last_ts : 0));
  uint64_t eseq = ju64(sh, "eseq");
  if (eseq != 0 && !more && json_array_size(records) == 0) {
    /* a closed shard read to its end: no next iterator; its children */
    json_t *children = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(rec, "shards"), i, c) {
      if (json_integer_value(json_object_get(c, "parent")) == shard ||
          json_integer_value(json_object_get(c, "adj")) == shard) {
        char id[24], pid[24];
        shard_name((int)i, id);
        json_t *parents = json_array();
        shard_name((int)json_integer_value(json_object_get(c, "parent")), pid);
        json_array_append_new(parents, json_string(pid));
        if (json_integer_value(json_object_get(c, "adj")) >= 0) {
          shard_name((int)json_integer_value(json_object_get(c, "adj")), pid);
          json_array_append_new(parents, json_string(pid));
        }
        char lo[48], hi[48];
        u128_dec(hex_u128(json_string_value(json_object_get(c, "start"))), lo);
        u128_dec(hex_u128(json_string_value(json_object_get(c, "end"))), hi);
        json_array_append_new(children,
                              json_pack("{s:s, s:o, s:{s:s, s:s}}", "ShardId", id,
                                        "ParentShards", parents, "HashKeyRange",
                                        "StartingHashKey", lo, "EndingHashKey", hi));
      }
    }
    json_object_set_new(o, "ChildShards", children);
  } else {
    json_object_set_new(o, "NextShardIterator",
                        json_string(iterator_make(a, name, sid, shard, next)));
  }
  *out = o;
out:
  json_decref(rec);
  arena_free(a);
  mdb_txn_abort(txn);
  return rc;
}
