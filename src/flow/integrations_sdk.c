/* flow/integrations_sdk.c -- Task states that call DynamoDB, Kinesis and
 * Firehose of tarn: the optimized DynamoDB integrations
 * (arn:aws:states:::dynamodb:getItem|putItem|updateItem|deleteItem) and the
 * AWS SDK integrations arn:aws:states:::aws-sdk:dynamodb:ACTION (every
 * action the kv part serves), aws-sdk:kinesis:putRecord,
 * aws-sdk:firehose:putRecord, aws-sdk:s3:deleteObject and
 * aws-sdk:s3:listObjectsV2; also the names of AWS SDK integration errors
 * for the services service.c calls (sqs, sns, s3).
 *
 * Why generic for DynamoDB: the kv part takes and returns DynamoDB's own
 * JSON (kv/kv.h), which is what the integration's Parameters and result
 * are, so an action is the kv operation of the same name, called directly
 * like the other integrations call their parts.
 *
 * Errors: the optimized integration names them DynamoDB.TYPE
 * (DynamoDB.ConditionalCheckFailedException); the SDK integrations name
 * them ServiceName.ErrorName in PascalCase with an "Exception" suffix
 * (DynamoDb.ConditionalCheckFailedException, Kinesis.
 * ResourceNotFoundException, Sqs.QueueDoesNotExistException).
 *
 * Blobs: Kinesis and Firehose Data is given as text (or any JSON value,
 * written as its compact text) and becomes the record's bytes as they are.
 *
 * Start reading at flow__sdk_call().
 */
#include "flow/internal.h"

#include "base/mem.h"
#include "base/text.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATES_PREFIX "arn:aws:states:::"
#define SDK_PREFIX "arn:aws:states:::aws-sdk:"


/* DynamoDB's type for a kv error (api/dynamodb.c sends the same). */
static const char *kv_type(int code)
{
  switch (code) {
  case KV_ERR_VALIDATION:
    return "ValidationException";
  case KV_ERR_NO_TABLE:
  case KV_ERR_NO_STREAM:
    return "ResourceNotFoundException";
  case KV_ERR_IN_USE:
    return "ResourceInUseException";
  case KV_ERR_CONDITION:
    return "ConditionalCheckFailedException";
  case KV_ERR_TX_CANCELED:
    return "TransactionCanceledException";
  case KV_ERR_IDEMPOTENT:
    return "IdempotentParameterMismatchException";
  case KV_ERR_LIMIT:
    return "LimitExceededException";
  case KV_ERR_SERIALIZATION:
    return "SerializationException";
  case KV_ERR_TRIMMED:
    return "ExpiredIteratorException";
  case KV_ERR_DUPLICATE:
    return "DuplicateItemException";
  default:
    return "InternalServerErrorException";
  }
}

static const char *stream_type(int code)
{
  switch (code) {
  case STREAM_ERR_NOT_FOUND:
    return "ResourceNotFoundException";
  case STREAM_ERR_IN_USE:
    return "ResourceInUseException";
  case STREAM_ERR_INVALID:
  case ERR_INVALID:
    return "InvalidArgumentException";
  case STREAM_ERR_LIMIT:
    return "LimitExceededException";
  case STREAM_ERR_BUSY:
    return "ServiceUnavailableException";
  case STREAM_ERR_VALIDATION:
    return "ValidationException";
  default:
    return "InternalFailureException";
  }
}

/* The action of "...:SERVICE:ACTION[.waitForTaskToken]" (without the
 * suffix) into out, its first letter upper-case (the API's name). */
static void action_of(const char *res, char *out, size_t cap)
{
  const char *a = strrchr(res, ':') + 1;
  size_t n = strcspn(a, ".");
  snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), a);
  out[0] = (char)toupper((unsigned char)out[0]);
}

/* The service of an SDK resource ("dynamodb"), into out. */
static bool sdk_service(const char *res, char *out, size_t cap)
{
  if (!str_starts(res, SDK_PREFIX))
    return false;
  const char *svc = res + strlen(SDK_PREFIX);
  size_t n = strcspn(svc, ":");
  if (svc[n] != ':' || n == 0 || n >= cap)
    return false;
  memcpy(out, svc, n);
  out[n] = '\0';
  return true;
}

bool flow__sdk_known(const char *res)
{
  static const char *const optimized[] = {"dynamodb:getItem", "dynamodb:putItem",
                                          "dynamodb:updateItem", "dynamodb:deleteItem", NULL};
  if (str_starts(res, STATES_PREFIX) && !str_starts(res, SDK_PREFIX))
    for (size_t i = 0; optimized[i] != NULL; i++)
      if (strcmp(res + strlen(STATES_PREFIX), optimized[i]) == 0)
        return true;
  char svc[32], action[64];
  if (!sdk_service(res, svc, sizeof svc))
    return false;
  const char *tail = strrchr(res, ':') + 1;
  const char *dot = strchr(tail, '.');
  if (dot != NULL && strcmp(dot, ".waitForTaskToken") != 0)
    return false;
  action_of(res, action, sizeof action);
  const char *canon;
  if (strcmp(svc, "dynamodb") == 0)
    return kv_op_find(action, false, &canon) != NULL;
  if (strcmp(svc, "s3") == 0)
    return strcmp(action, "DeleteObject") == 0 || strcmp(action, "ListObjectsV2") == 0;
  return (strcmp(svc, "kinesis") == 0 || strcmp(svc, "firehose") == 0) &&
         strcmp(action, "PutRecord") == 0;
}

/* ---- S3 ---- */

static int s3_delete(flow_system *s, json_t *p, char **result, char **error, char **cause)
{
  const char *bucket = flow__rec_str(p, "Bucket");
  const char *key = flow__rec_str(p, "Key");
  if (s->st == NULL)
    return flow__task_fail(error, cause, "S3.ServiceException", "the store is not available");
  if (bucket == NULL || key == NULL)
    return flow__task_fail(error, cause, "States.Runtime", "s3:deleteObject needs Bucket and Key");
  bool existed;
  err e = {0};
  if (store_object_delete(s->st, bucket, key, &existed, &e) != 0)
    return flow__service_error(error, cause, "S3", &e);
  *result = xstrdup("{}");
  return 0;
}

/* ListObjectsV2's answer; ContinuationToken is the last key or prefix of
 * the page before. */
static int s3_list(flow_system *s, json_t *p, char **result, char **error, char **cause)
{
  const char *bucket = flow__rec_str(p, "Bucket");
  if (s->st == NULL)
    return flow__task_fail(error, cause, "S3.ServiceException", "the store is not available");
  if (bucket == NULL)
    return flow__task_fail(error, cause, "States.Runtime", "s3:listObjectsV2 needs Bucket");
  json_t *mk = json_object_get(p, "MaxKeys");
  size_t max = json_is_integer(mk) && json_integer_value(mk) >= 0 &&
                       json_integer_value(mk) < STORE_MAX_LIST_KEYS
                   ? (size_t)json_integer_value(mk) : STORE_MAX_LIST_KEYS;
  const char *token = flow__rec_str(p, "ContinuationToken");
  store_list_params lp = {.prefix = flow__rec_str(p, "Prefix"),
                          .delimiter = flow__rec_str(p, "Delimiter"),
                          .after = token != NULL ? token : flow__rec_str(p, "StartAfter"),
                          .max_keys = max};
  arena *a = arena_new();
  store_list_result out;
  err e = {0};
  if (store_object_list(s->st, bucket, &lp, a, &out, &e) != 0) {
    arena_free(a);
    return flow__service_error(error, cause, "S3", &e);
  }
  json_t *contents = json_array();
  for (size_t i = 0; i < out.nobjects; i++) {
    char modified[25];
    time_format_iso8601_ms(out.objects[i].mtime_ms, modified);
    json_array_append_new(contents, json_pack("{s:s, s:s, s:s, s:I, s:s}", "Key",
                                              out.objects[i].key, "LastModified", modified,
                                              "ETag", arena_sprintf(a, "\"%s\"",
                                                                    out.objects[i].etag),
                                              "Size", (json_int_t)out.objects[i].size,
                                              "StorageClass", "STANDARD"));
  }
  json_t *r = json_pack("{s:b, s:s, s:s, s:I, s:I}", "IsTruncated", out.truncated, "Name",
                        bucket, "Prefix", lp.prefix ? lp.prefix : "", "MaxKeys", (json_int_t)max,
                        "KeyCount", (json_int_t)(out.nobjects + out.nprefixes));
  if (out.nobjects > 0)
    json_object_set(r, "Contents", contents);
  json_decref(contents);
  if (out.nprefixes > 0) {
    json_t *cp = json_array();
    for (size_t i = 0; i < out.nprefixes; i++)
      json_array_append_new(cp, json_pack("{s:s}", "Prefix", out.prefixes[i]));
    json_object_set_new(r, "CommonPrefixes", cp);
  }
  if (lp.delimiter != NULL)
    json_object_set_new(r, "Delimiter", json_string(lp.delimiter));
  if (token != NULL)
    json_object_set_new(r, "ContinuationToken", json_string(token));
  if (out.truncated && out.next_after != NULL)
    json_object_set_new(r, "NextContinuationToken", json_string(out.next_after));
  arena_free(a);
  *result = flow__dump(r);
  json_decref(r);
  return 0;
}

/* ---- DynamoDB ---- */

static int dynamodb_call(flow_system *s, const char *res, const char *prefix, json_t *params,
                         char **result, char **error, char **cause)
{
  char action[64], name[160];
  action_of(res, action, sizeof action);
  const char *canon;
  kv_op_fn fn = kv_op_find(action, false, &canon);
  if (s->kv == NULL || fn == NULL)
    return flow__task_fail(error, cause, "States.Runtime", "DynamoDB is not available");
  json_t *in = json_deep_copy(params);
  json_t *out = NULL;
  err e = {0};
  int rc = json_is_object(in) ? kv_legacy_rewrite(in, &e)
                              : err_set(&e, KV_ERR_VALIDATION, "the parameters are not an object");
  if (rc == 0)
    rc = fn(s->kv, in, &out, &e);
  json_decref(in);
  if (rc != 0) {
    json_decref(out);
    snprintf(name, sizeof name, "%s.%s", prefix, kv_type(rc));
    return flow__task_fail(error, cause, name, e.msg);
  }
  *result = flow__dump(out);
  json_decref(out);
  return 0;
}

/* ---- Kinesis and Firehose ---- */

/* A blob parameter as bytes (malloc'd text). */
static char *blob_param(json_t *v)
{
  if (v == NULL)
    return NULL;
  if (json_is_string(v))
    return xstrndup(json_string_value(v), json_string_length(v));
  return flow__dump(v);
}

static int kinesis_put(flow_system *s, json_t *p, char **result, char **error, char **cause)
{
  if (s->streams == NULL)
    return flow__task_fail(error, cause, "Kinesis.InternalFailureException", "Kinesis is not available");
  const char *name = flow__rec_str(p, "StreamName");
  const char *arn = flow__rec_str(p, "StreamARN");
  if (name == NULL && arn != NULL && strstr(arn, ":stream/") != NULL)
    name = strstr(arn, ":stream/") + strlen(":stream/");
  const char *key = flow__rec_str(p, "PartitionKey");
  char *data = blob_param(json_object_get(p, "Data"));
  if (name == NULL || key == NULL || data == NULL) {
    free(data);
    return flow__task_fail(error, cause, "Kinesis.InvalidArgumentException",
                "kinesis:putRecord needs StreamName (or StreamARN), PartitionKey and Data");
  }
  stream_record_in in = {.partition_key = key,
                         .explicit_hash = flow__rec_str(p, "ExplicitHashKey"),
                         .data = data, .len = strlen(data)};
  stream_record_out out = {0};
  err e = {0};
  int rc = stream_kinesis_put(s->streams, name, &in, 1, &out, &e);
  free(data);
  if (rc == 0 && out.e.code != 0) {
    e = out.e;
    rc = out.e.code;
  }
  if (rc != 0) {
    char ename[96];
    snprintf(ename, sizeof ename, "Kinesis.%s", stream_type(rc));
    return flow__task_fail(error, cause, ename, e.msg);
  }
  json_t *r = json_pack("{s:s, s:s, s:s}", "ShardId", out.shard_id, "SequenceNumber",
                        out.sequence, "EncryptionType", "NONE");
  *result = flow__dump(r);
  json_decref(r);
  return 0;
}

static int firehose_put(flow_system *s, json_t *p, char **result, char **error, char **cause)
{
  if (s->streams == NULL)
    return flow__task_fail(error, cause, "Firehose.ServiceUnavailableException",
                "Firehose is not available");
  const char *name = flow__rec_str(p, "DeliveryStreamName");
  char *data = blob_param(json_object_get(json_object_get(p, "Record"), "Data"));
  if (name == NULL || data == NULL) {
    free(data);
    return flow__task_fail(error, cause, "Firehose.InvalidArgumentException",
                "firehose:putRecord needs DeliveryStreamName and Record.Data");
  }
  stream_blob b = {.data = data, .len = strlen(data)};
  arena *a = arena_new();
  const char *id = NULL;
  err e = {0};
  int rc = stream_delivery_put(s->streams, name, &b, 1, a, &id, &e);
  free(data);
  if (rc != 0) {
    arena_free(a);
    char ename[96];
    snprintf(ename, sizeof ename, "Firehose.%s", stream_type(rc));
    return flow__task_fail(error, cause, ename, e.msg);
  }
  json_t *r = json_pack("{s:s, s:b}", "RecordId", id, "Encrypted", 0);
  arena_free(a);
  *result = flow__dump(r);
  json_decref(r);
  return 0;
}

int flow__sdk_call(flow_system *s, const char *res, json_t *params, char **result,
                   char **error, char **cause)
{
  *result = *error = *cause = NULL;
  char svc[32];
  if (!sdk_service(res, svc, sizeof svc))
    return dynamodb_call(s, res, "DynamoDB", params, result, error, cause);
  if (strcmp(svc, "dynamodb") == 0)
    return dynamodb_call(s, res, "DynamoDb", params, result, error, cause);
  if (strcmp(svc, "kinesis") == 0)
    return kinesis_put(s, params, result, error, cause);
  if (strcmp(svc, "s3") == 0)
    return strstr(res, ":deleteObject") != NULL ? s3_delete(s, params, result, error, cause)
                                                : s3_list(s, params, result, error, cause);
  return firehose_put(s, params, result, error, cause);
}

void flow__sdk_error_name(const char *res, char **error)
{
  char svc[32];
  if (*error == NULL || !sdk_service(res, svc, sizeof svc) || str_starts(*error, "States."))
    return;
  const char *dot = strchr(*error, '.');
  if (dot == NULL)
    return;
  /* "SQS.QueueDoesNotExist" -> "Sqs.QueueDoesNotExistException" */
  if (strcmp(svc, "dynamodb") == 0)
    snprintf(svc, sizeof svc, "DynamoDb");
  svc[0] = (char)toupper((unsigned char)svc[0]);
  char *renamed = xasprintf("%s.%s%s", svc, dot + 1, str_ends(dot + 1, "Exception") ? "" :
                            "Exception");
  free(*error);
  *error = renamed;
}
