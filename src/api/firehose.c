/* api/firehose.c -- the Firehose endpoint: JSON 1.1 requests
 * (api/json_rpc.c) onto stream/stream.h.
 *
 * Operations: CreateDeliveryStream (DirectPut, extended S3 destination),
 * DescribeDeliveryStream, ListDeliveryStreams, DeleteDeliveryStream,
 * UpdateDestination, PutRecord, PutRecordBatch (results per record).
 *
 * Invariants:
 *   (1) A put is answered only after its records are in the durable buffer
 *       (stream_delivery_put); a full buffer answers
 *       ServiceUnavailableException and keeps nothing of the request.
 *   (2) Bodies are bounded (FIREHOSE_BODY_MAX): 4 MiB of records is about
 *       5.5 MB of base64.
 *
 * Start reading at the ops[] table.
 */
#include "api/firehose.h"

#include "api/iam.h"
#include "api/json_rpc.h"
#include "base/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIREHOSE_BODY_MAX (8u << 20)

static const char *ds_name(json_t *in)
{
  return json_rpc_str(in, "DeliveryStreamName");
}

static int need_name(json_t *in, const char **name, err *e)
{
  *name = ds_name(in);
  return *name != NULL ? 0 : err_set(e, STREAM_ERR_INVALID, "DeliveryStreamName is required");
}

static int decode(http_req *r, json_t *rec, stream_blob *out, err *e)
{
  const char *b64 = json_rpc_str(rec, "Data");
  if (b64 == NULL)
    return err_set(e, STREAM_ERR_INVALID, "Record.Data is required");
  size_t len = strlen(b64);
  uint8_t *p = arena_alloc(r->arena, len + 1);
  long n = base64_decode(b64, len, p, len + 1);
  if (n < 0)
    return err_set(e, STREAM_ERR_INVALID, "Record.Data is not valid base64");
  out->data = p;
  out->len = (size_t)n;
  return 0;
}

static int op_create(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  int rc = stream_delivery_create(ctx, in, e);
  if (rc == 0)
    *out = json_pack("{s:s}", "DeliveryStreamARN",
                     arena_sprintf(r->arena, "arn:aws:firehose:" API_REGION ":" API_ACCOUNT_ID
                                   ":deliverystream/%s", ds_name(in)));
  return rc;
}

static int op_delete(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = need_name(in, &name, e);
  return rc != 0 ? rc : stream_delivery_delete(ctx, name, e);
}

static int op_describe(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  json_t *d;
  int rc = need_name(in, &name, e);
  if (rc == 0)
    rc = stream_delivery_describe(ctx, name, &d, e);
  if (rc == 0)
    *out = json_pack("{s:o}", "DeliveryStreamDescription", d);
  return rc;
}

static int op_list(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  long limit = 10;
  bool present;
  int rc = json_rpc_int(in, "Limit", 1, 10000, &limit, &present, e);
  if (rc != 0)
    return rc;
  const char *type = json_rpc_str(in, "DeliveryStreamType");
  json_t *names;
  bool more;
  if ((rc = stream_delivery_list(ctx, json_rpc_str(in, "ExclusiveStartDeliveryStreamName"),
                                 (size_t)limit, &names, &more, e)) != 0)
    return rc;
  if (type != NULL && strcmp(type, "DirectPut") != 0)
    json_array_clear(names);
  *out = json_pack("{s:o, s:b}", "DeliveryStreamNames", names, "HasMoreDeliveryStreams", more);
  return 0;
}

static int op_update(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return stream_delivery_update(ctx, in, e);
}

static int op_put(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = need_name(in, &name, e);
  stream_blob b;
  if (rc == 0)
    rc = decode(r, json_object_get(in, "Record"), &b, e);
  const char *id;
  if (rc == 0)
    rc = stream_delivery_put(ctx, name, &b, 1, r->arena, &id, e);
  if (rc == 0)
    *out = json_pack("{s:s, s:b}", "RecordId", id, "Encrypted", 0);
  return rc;
}

static int op_put_batch(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = need_name(in, &name, e);
  if (rc != 0)
    return rc;
  json_t *recs = json_object_get(in, "Records");
  size_t n = json_array_size(recs);
  if (n == 0 || n > STREAM_MAX_FIREHOSE_BATCH)
    return err_set(e, STREAM_ERR_INVALID, "1 validation error detected: Value at 'records' "
                   "failed to satisfy constraint: Member must have length between 1 and 500");
  stream_blob *b = arena_alloc(r->arena, n * sizeof *b);
  const char **ids = arena_alloc(r->arena, n * sizeof *ids);
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = decode(r, json_array_get(recs, i), &b[i], e);
  if (rc == 0)
    rc = stream_delivery_put(ctx, name, b, n, r->arena, ids, e);
  if (rc != 0)
    return rc;
  json_t *res = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(res, json_pack("{s:s}", "RecordId", ids[i]));
  *out = json_pack("{s:i, s:b, s:o}", "FailedPutCount", 0, "Encrypted", 0, "RequestResponses",
                   res);
  return 0;
}

static const json_rpc_op ops[] = {
    {"CreateDeliveryStream", op_create},
    {"DeleteDeliveryStream", op_delete},
    {"DescribeDeliveryStream", op_describe},
    {"ListDeliveryStreams", op_list},
    {"UpdateDestination", op_update},
    {"PutRecord", op_put},
    {"PutRecordBatch", op_put_batch},
};

/* what this service maps apart from json_rpc.c's shared table */
static const json_rpc_code codes[] = {
    {STREAM_ERR_BUSY, 503, "ServiceUnavailableException"},
    {STREAM_ERR_VERSION, 400, "ConcurrentModificationException"},
    {STREAM_ERR_VALIDATION, 400, "ValidationException"},
};

static const char *resource(http_req *r, const char *op, json_t *in)
{
  const char *name = ds_name(in);
  if (name == NULL || strcmp(op, "ListDeliveryStreams") == 0)
    return "*";
  return arena_sprintf(r->arena, "arn:aws:firehose:" API_REGION ":" API_ACCOUNT_ID
                       ":deliverystream/%s", name);
}

/* The roles a delivery stream acts as: its destination's and its Kinesis
 * source's (iam:PassRole). */
static size_t passed_roles(const char *op, json_t *in, const char *out[4])
{
  static const char *const members[] = {
      "ExtendedS3DestinationConfiguration", "S3DestinationConfiguration",
      "ExtendedS3DestinationUpdate", "S3DestinationUpdate", "KinesisStreamSourceConfiguration"};
  size_t n = 0;
  (void)op;
  for (size_t i = 0; i < sizeof members / sizeof members[0] && n < 4; i++) {
    const char *role = json_rpc_str(json_object_get(in, members[i]), "RoleARN");
    if (role != NULL)
      out[n++] = role;
  }
  return n;
}

static const json_rpc_def def = {
    .service = "firehose",
    .target_prefix = "Firehose_20150804.",
    .content_type = "application/x-amz-json-1.1",
    .ops = ops,
    .nops = sizeof ops / sizeof ops[0],
    .codes = codes,
    .ncodes = sizeof codes / sizeof codes[0],
    .body_max = FIREHOSE_BODY_MAX,
    .resource = resource,
    .passed_roles = passed_roles,
};

http_service *firehose_service_new(stream_system *s)
{
  return json_rpc_service_new(&def, s);
}

http_service *firehose_service_free(http_service *svc)
{
  return json_rpc_service_free(svc);
}
