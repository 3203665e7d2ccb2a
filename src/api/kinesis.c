/* api/kinesis.c -- the Kinesis Data Streams endpoint: JSON 1.1 requests
 * (api/json_rpc.c) onto stream/stream.h.
 *
 * Operations: CreateStream, DeleteStream, DescribeStream,
 * DescribeStreamSummary, ListStreams, ListShards, PutRecord, PutRecords
 * (failures per record, as AWS reports them), GetShardIterator,
 * GetRecords, IncreaseStreamRetentionPeriod,
 * DecreaseStreamRetentionPeriod, UpdateShardCount, SplitShard, MergeShards.
 *
 * Invariants:
 *   (1) Data arrives and leaves base64-encoded (the JSON protocol's blobs);
 *       a record that does not decode is refused before anything is put.
 *   (2) Bodies are bounded (KINESIS_BODY_MAX): 5 MiB of records is about
 *       7 MB of base64.
 *
 * Start reading at the ops[] table.
 */
#include "api/kinesis.h"

#include "api/iam.h"
#include "api/json_rpc.h"
#include "base/hash.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KINESIS_BODY_MAX (10u << 20)
#define LIST_MAX 1000

static const char *stream_name(json_t *in)
{
  const char *n = json_rpc_str(in, "StreamName");
  const char *arn = json_rpc_str(in, "StreamARN");
  if (n == NULL && arn != NULL && strrchr(arn, '/') != NULL)
    n = strrchr(arn, '/') + 1;
  return n;
}

static int need_name(json_t *in, const char **name, err *e)
{
  *name = stream_name(in);
  if (*name == NULL)
    return err_set(e, STREAM_ERR_INVALID, "StreamName or StreamARN is required");
  return 0;
}

/* Decodes a base64 blob into the arena. */
static int blob(http_req *r, json_t *in, const char *field, const void **p, size_t *n, err *e)
{
  const char *b64 = json_rpc_str(in, field);
  if (b64 == NULL)
    return err_set(e, STREAM_ERR_INVALID, "%s is required", field);
  size_t len = strlen(b64);
  uint8_t *out = arena_alloc(r->arena, len + 1);
  long got = base64_decode(b64, len, out, len + 1);
  if (got < 0)
    return err_set(e, ERR_INVALID, "%s is not valid base64", field);
  *p = out;
  *n = (size_t)got;
  return 0;
}

static int op_create(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name = json_rpc_str(in, "StreamName");
  if (name == NULL)
    return err_set(e, STREAM_ERR_INVALID, "StreamName is required");
  const char *mode = json_rpc_str(json_object_get(in, "StreamModeDetails"), "StreamMode");
  bool on_demand = mode != NULL && strcmp(mode, "ON_DEMAND") == 0;
  long shards = 0;
  bool present;
  int rc = json_rpc_int(in, "ShardCount", 1, 100000, &shards, &present, e);
  if (rc != 0)
    return rc;
  if (!present && !on_demand)
    return err_set(e, STREAM_ERR_INVALID, "ShardCount is required for a PROVISIONED stream");
  return stream_kinesis_create(ctx, name, (int)shards, on_demand, e);
}

static int op_delete(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = need_name(in, &name, e);
  return rc != 0 ? rc : stream_kinesis_delete(ctx, name, e);
}

static int describe(void *ctx, json_t *in, bool summary, json_t **out, err *e)
{
  const char *name;
  json_t *d;
  int rc = need_name(in, &name, e);
  if (rc == 0)
    rc = stream_kinesis_describe(ctx, name, summary, &d, e);
  if (rc == 0)
    *out = json_pack("{s:o}", summary ? "StreamDescriptionSummary" : "StreamDescription", d);
  return rc;
}

static int op_describe(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return describe(ctx, in, false, out, e);
}

static int op_summary(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return describe(ctx, in, true, out, e);
}

static int op_list(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  long limit = 100;
  bool present;
  int rc = json_rpc_int(in, "Limit", 1, 10000, &limit, &present, e);
  if (rc != 0)
    return rc;
  const char *start = json_rpc_str(in, "ExclusiveStartStreamName");
  const char *token = json_rpc_str(in, "NextToken");
  if (token != NULL)
    start = token;
  json_t *summaries;
  bool more;
  if ((rc = stream_kinesis_list(ctx, start, (size_t)limit, &summaries, &more, e)) != 0)
    return rc;
  json_t *names = json_array();
  size_t i;
  json_t *o;
  json_array_foreach(summaries, i, o)
    json_array_append(names, json_object_get(o, "StreamName"));
  *out = json_pack("{s:o, s:o, s:b}", "StreamNames", names, "StreamSummaries", summaries,
                   "HasMoreStreams", more);
  if (more && i > 0)
    json_object_set(*out, "NextToken", json_array_get(names, i - 1));
  return 0;
}

static int op_list_shards(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name = stream_name(in);
  const char *token = json_rpc_str(in, "NextToken");
  if (name == NULL && token != NULL)
    name = token; /* the token is the stream's name: every shard fits one page */
  if (name == NULL)
    return err_set(e, STREAM_ERR_INVALID, "StreamName, StreamARN or NextToken is required");
  json_t *shards;
  int rc = stream_kinesis_shards(ctx, name, &shards, e);
  if (rc != 0)
    return rc;
  const char *after = json_rpc_str(in, "ExclusiveStartShardId");
  json_t *filter = json_object_get(in, "ShardFilter");
  const char *ftype = json_rpc_str(filter, "Type");
  json_t *keep = json_array();
  size_t i;
  json_t *sh;
  json_array_foreach(shards, i, sh) {
    const char *id = json_rpc_str(sh, "ShardId");
    if (after != NULL && strcmp(id, after) <= 0)
      continue;
    bool open = json_object_get(json_object_get(sh, "SequenceNumberRange"),
                                "EndingSequenceNumber") == NULL;
    if (ftype != NULL && strcmp(ftype, "AT_LATEST") == 0 && !open)
      continue;
    json_array_append(keep, sh);
  }
  json_decref(shards);
  *out = json_pack("{s:o}", "Shards", keep);
  return 0;
}

static int op_put(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = need_name(in, &name, e);
  stream_record_in rec = {0};
  if (rc == 0)
    rc = blob(r, in, "Data", &rec.data, &rec.len, e);
  if (rc != 0)
    return rc;
  rec.partition_key = json_rpc_str(in, "PartitionKey");
  rec.explicit_hash = json_rpc_str(in, "ExplicitHashKey");
  stream_record_out res;
  if ((rc = stream_kinesis_put(ctx, name, &rec, 1, &res, e)) != 0)
    return rc;
  *out = json_pack("{s:s, s:s, s:s}", "ShardId", res.shard_id, "SequenceNumber", res.sequence,
                   "EncryptionType", "NONE");
  return 0;
}

static int op_put_records(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = need_name(in, &name, e);
  if (rc != 0)
    return rc;
  json_t *recs = json_object_get(in, "Records");
  size_t n = json_array_size(recs);
  if (n == 0 || n > STREAM_MAX_PUT_RECORDS)
    return err_set(e, STREAM_ERR_INVALID, "1 validation error detected: Value at 'records' "
                   "failed to satisfy constraint: Member must have length between 1 and 500");
  stream_record_in *rin = arena_alloc(r->arena, n * sizeof *rin);
  stream_record_out *rout = arena_alloc(r->arena, n * sizeof *rout);
  for (size_t i = 0; i < n && rc == 0; i++) {
    json_t *x = json_array_get(recs, i);
    memset(&rin[i], 0, sizeof rin[i]);
    rc = blob(r, x, "Data", &rin[i].data, &rin[i].len, e);
    rin[i].partition_key = json_rpc_str(x, "PartitionKey");
    rin[i].explicit_hash = json_rpc_str(x, "ExplicitHashKey");
  }
  if (rc == 0)
    rc = stream_kinesis_put(ctx, name, rin, n, rout, e);
  if (rc != 0)
    return rc;
  json_t *results = json_array();
  int failed = 0;
  for (size_t i = 0; i < n; i++) {
    if (rout[i].e.code != 0) {
      failed++;
      json_array_append_new(results, json_pack("{s:s, s:s}", "ErrorCode",
                                               "ProvisionedThroughputExceededException",
                                               "ErrorMessage", rout[i].e.msg));
    } else {
      json_array_append_new(results, json_pack("{s:s, s:s}", "ShardId", rout[i].shard_id,
                                               "SequenceNumber", rout[i].sequence));
    }
  }
  *out = json_pack("{s:i, s:o, s:s}", "FailedRecordCount", failed, "Records", results,
                   "EncryptionType", "NONE");
  return 0;
}

static int op_iterator(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = need_name(in, &name, e);
  if (rc != 0)
    return rc;
  const char *shard = json_rpc_str(in, "ShardId");
  const char *type = json_rpc_str(in, "ShardIteratorType");
  if (shard == NULL || type == NULL)
    return err_set(e, STREAM_ERR_INVALID, "ShardId and ShardIteratorType are required");
  static const struct {
    const char *name;
    enum stream_iterator_type type;
  } types[] = {{"AT_SEQUENCE_NUMBER", STREAM_AT_SEQUENCE},
               {"AFTER_SEQUENCE_NUMBER", STREAM_AFTER_SEQUENCE},
               {"TRIM_HORIZON", STREAM_TRIM_HORIZON},
               {"LATEST", STREAM_LATEST},
               {"AT_TIMESTAMP", STREAM_AT_TIMESTAMP}};
  int t = -1;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strcmp(types[i].name, type) == 0)
      t = (int)i;
  if (t < 0)
    return err_set(e, STREAM_ERR_INVALID, "1 validation error detected: Value '%s' at "
                   "'shardIteratorType' failed to satisfy constraint: Member must satisfy enum "
                   "value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, "
                   "TRIM_HORIZON, LATEST]", type);
  int64_t ts = 0;
  json_t *tv = json_object_get(in, "Timestamp");
  if (types[t].type == STREAM_AT_TIMESTAMP) {
    if (json_is_number(tv))
      ts = (int64_t)(json_number_value(tv) * 1000.0);
    else if (!json_is_string(tv) || !time_parse_iso8601(json_string_value(tv), &ts))
      return err_set(e, STREAM_ERR_INVALID, "AT_TIMESTAMP needs a Timestamp");
  }
  const char *it;
  rc = stream_kinesis_iterator(ctx, name, shard, types[t].type,
                               json_rpc_str(in, "StartingSequenceNumber"), ts, r->arena, &it, e);
  if (rc == 0)
    *out = json_pack("{s:s}", "ShardIterator", it);
  return rc;
}

static int op_get_records(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *it = json_rpc_str(in, "ShardIterator");
  if (it == NULL)
    return err_set(e, STREAM_ERR_INVALID, "ShardIterator is required");
  long limit = STREAM_MAX_GET_RECORDS;
  bool present;
  int rc = json_rpc_int(in, "Limit", 1, STREAM_MAX_GET_RECORDS, &limit, &present, e);
  return rc != 0 ? rc : stream_kinesis_get(ctx, it, (size_t)limit, out, e);
}

static int retention(void *ctx, json_t *in, bool increase, err *e)
{
  const char *name;
  int rc = need_name(in, &name, e);
  long hours = 0;
  bool present;
  if (rc == 0)
    rc = json_rpc_int(in, "RetentionPeriodHours", 1, 100000, &hours, &present, e);
  if (rc == 0 && !present)
    rc = err_set(e, STREAM_ERR_INVALID, "RetentionPeriodHours is required");
  json_t *d = NULL;
  if (rc == 0)
    rc = stream_kinesis_describe(ctx, name, true, &d, e);
  if (rc != 0)
    return rc;
  long now = (long)json_integer_value(json_object_get(d, "RetentionPeriodHours"));
  json_decref(d);
  if (increase ? hours < now : hours > now)
    return err_set(e, STREAM_ERR_INVALID, "Requested retention period (%ld hours) for stream %s "
                   "can not be %s than existing retention period (%ld hours). Use %s instead.",
                   hours, name, increase ? "shorter" : "longer", now,
                   increase ? "DecreaseRetentionPeriod API" : "IncreaseRetentionPeriod API");
  return stream_kinesis_retention(ctx, name, (int)hours, e);
}

static int op_increase(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return retention(ctx, in, true, e);
}

static int op_decrease(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return retention(ctx, in, false, e);
}

static int op_shard_count(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = need_name(in, &name, e);
  long target = 0;
  bool present;
  if (rc == 0)
    rc = json_rpc_int(in, "TargetShardCount", 1, 100000, &target, &present, e);
  if (rc == 0 && !present)
    rc = err_set(e, STREAM_ERR_INVALID, "TargetShardCount is required");
  json_t *d = NULL;
  if (rc == 0)
    rc = stream_kinesis_describe(ctx, name, true, &d, e);
  if (rc != 0)
    return rc;
  json_t *cur = json_object_get(d, "OpenShardCount");
  *out = json_pack("{s:s, s:O, s:i}", "StreamName", name, "CurrentShardCount", cur,
                   "TargetShardCount", (int)target);
  json_decref(d);
  rc = stream_kinesis_reshard(ctx, name, (int)target, e);
  if (rc != 0) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

static int op_split(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = need_name(in, &name, e);
  return rc != 0 ? rc
                 : stream_kinesis_split(ctx, name, json_rpc_str(in, "ShardToSplit"),
                                        json_rpc_str(in, "NewStartingHashKey"), e);
}

static int op_merge(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = need_name(in, &name, e);
  return rc != 0 ? rc
                 : stream_kinesis_merge(ctx, name, json_rpc_str(in, "ShardToMerge"),
                                        json_rpc_str(in, "AdjacentShardToMerge"), e);
}

static const json_rpc_op ops[] = {
    {"CreateStream", op_create},
    {"DeleteStream", op_delete},
    {"DescribeStream", op_describe},
    {"DescribeStreamSummary", op_summary},
    {"ListStreams", op_list},
    {"ListShards", op_list_shards},
    {"PutRecord", op_put},
    {"PutRecords", op_put_records},
    {"GetShardIterator", op_iterator},
    {"GetRecords", op_get_records},
    {"IncreaseStreamRetentionPeriod", op_increase},
    {"DecreaseStreamRetentionPeriod", op_decrease},
    {"UpdateShardCount", op_shard_count},
    {"SplitShard", op_split},
    {"MergeShards", op_merge},
};

/* what this service maps apart from json_rpc.c's shared table */
static const json_rpc_code codes[] = {
    {STREAM_ERR_EXPIRED_ITERATOR, 400, "ExpiredIteratorException"},
    {STREAM_ERR_BUSY, 400, "ProvisionedThroughputExceededException"},
};

static const char *resource(http_req *r, const char *op, json_t *in)
{
  const char *name = stream_name(in);
  if (name == NULL || strcmp(op, "ListStreams") == 0)
    return "*";
  return arena_sprintf(r->arena, "arn:aws:kinesis:" API_REGION ":" API_ACCOUNT_ID ":stream/%s",
                       name);
}

static const json_rpc_def def = {
    .service = "kinesis",
    .target_prefix = "Kinesis_20131202.",
    .content_type = "application/x-amz-json-1.1",
    .ops = ops,
    .nops = sizeof ops / sizeof ops[0],
    .codes = codes,
    .ncodes = sizeof codes / sizeof codes[0],
    .body_max = KINESIS_BODY_MAX,
    .resource = resource,
};

http_service *kinesis_service_new(stream_system *s)
{
  return json_rpc_service_new(&def, s);
}

http_service *kinesis_service_free(http_service *svc)
{
  return json_rpc_service_free(svc);
}
