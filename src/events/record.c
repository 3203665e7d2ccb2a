/* events/record.c -- the payloads, field for field as AWS writes them: the
 * S3 event message, S3's test message, the SQS event a mapping hands to a
 * function, Lambda's invocation record for destinations, and the reading
 * of a function's batchItemFailures answer.
 *
 * Why: code written for Lambda parses these by name (event['Records'][0]
 * ['s3']['object']['key'], record['receiptHandle'], ...); a missing or
 * renamed field breaks it. The shapes follow the AWS documentation's
 * examples (S3 event structure 2.1, "Using Lambda with Amazon SQS",
 * "Asynchronous invocation" destinations).
 *
 * Invariants:
 *   (1) Every function here is pure: the same input gives the same text.
 *   (2) Object keys are written form-URL-encoded ('+' for space), as S3.
 *
 * Start reading at events_s3_message().
 */
#include "events/internal.h"

#include "base/hash.h"
#include "base/mem.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dump(arena *a, json_t *j)
{
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (text == NULL)
    mem_out_of_memory();
  char *out = arena_strdup(a, text);
  free(text);
  return out;
}

char *events_key_encode(arena *a, const char *key)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(key);
  char *out = arena_alloc(a, 3 * n + 1);
  char *p = out;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)key[i];
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == '*' || c == '/';
    if (plain) {
      *p++ = (char)c;
    } else if (c == ' ') {
      *p++ = '+';
    } else {
      *p++ = '%';
      *p++ = hex[c >> 4];
      *p++ = hex[c & 15];
    }
  }
  *p = '\0';
  return out;
}

/* S3's x-amz-id-2 for a request: opaque, stable for the request. */
static char *host_id(arena *a, const char *request_id)
{
  uint8_t d[SHA256_LEN];
  sha256(request_id, strlen(request_id), d);
  char *out = arena_alloc(a, base64_encoded_len(sizeof d));
  base64_encode(d, sizeof d, out);
  return out;
}

const char *events__sequencer(arena *a, uint64_t seq)
{
  return arena_sprintf(a, "%016" PRIX64, seq);
}

char *events_s3_message(arena *a, const store_change *ch, const char *configuration_id)
{
  char when[25];
  time_format_iso8601_ms(ch->time_ms, when);
  const char *rid = ch->request_id != NULL && *ch->request_id ? ch->request_id
                                                               : events__sequencer(a, ch->seq);
  const char *principal = ch->principal != NULL && *ch->principal
                              ? arena_sprintf(a, "AWS:%s", ch->principal)
                              : "AWS:tarn";
  if (ch->event == STORE_EVENT_LIFECYCLE_DELETE)  /* S3 itself: "s3.amazonaws.com" */
    principal = ch->principal;
  const char *ip = ch->source_ip != NULL && *ch->source_ip ? ch->source_ip : "127.0.0.1";
  json_t *object = json_pack("{s:s}", "key", events_key_encode(a, ch->key));
  bool created = str_starts(store_event_name(ch->event), "ObjectCreated:");
  if (created) {
    json_object_set_new(object, "size", json_integer((json_int_t)ch->size));
    json_object_set_new(object, "eTag", json_string(ch->etag != NULL ? ch->etag : ""));
  }
  if (ch->version_id != NULL && ch->version_id[0] != '\0')
    json_object_set_new(object, "versionId", json_string(ch->version_id));
  json_object_set_new(object, "sequencer", json_string(events__sequencer(a, ch->seq)));
  json_t *rec = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:{s:s}, s:{s:s, s:s},"
      " s:{s:s, s:s, s:{s:s, s:{s:s}, s:s}, s:o}}",
      "eventVersion", "2.1", "eventSource", "aws:s3", "awsRegion", EVENTS_REGION, "eventTime",
      when, "eventName", store_event_name(ch->event), "userIdentity", "principalId", principal,
      "requestParameters", "sourceIPAddress", ip, "responseElements", "x-amz-request-id", rid,
      "x-amz-id-2", host_id(a, rid), "s3", "s3SchemaVersion", "1.0", "configurationId",
      configuration_id != NULL ? configuration_id : "", "bucket", "name", ch->bucket,
      "ownerIdentity", "principalId", "tarn", "arn", arena_sprintf(a, "arn:aws:s3:::%s",
                                                                   ch->bucket),
      "object", object);
  return dump(a, json_pack("{s:[o]}", "Records", rec));
}

char *events_test_message(arena *a, const char *bucket, const char *request_id, int64_t now_ms)
{
  char when[25];
  time_format_iso8601_ms(now_ms, when);
  const char *rid = request_id != NULL && *request_id ? request_id : "0000000000000000";
  return dump(a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "Service", "Amazon S3", "Event",
                           "s3:TestEvent", "Time", when, "Bucket", bucket, "RequestId", rid,
                           "HostId", host_id(a, rid)));
}

/* ---- SQS -> function ---- */

static json_t *message_attributes(arena *a, const queue_message *m)
{
  json_t *o = json_object();
  for (size_t i = 0; i < m->nattrs; i++) {
    const queue_attr *at = &m->attrs[i];
    json_t *v = json_pack("{s:[], s:[], s:s}", "stringListValues", "binaryListValues",
                          "dataType", at->type != NULL ? at->type : "String");
    if (at->bin != NULL) {
      char *b64 = arena_alloc(a, base64_encoded_len(at->bin_len));
      base64_encode(at->bin, at->bin_len, b64);
      json_object_set_new(v, "binaryValue", json_string(b64));
    } else {
      json_object_set_new(v, "stringValue", json_string(at->value != NULL ? at->value : ""));
    }
    json_object_set_new(o, at->name, v);
  }
  return o;
}

char *events_sqs_message(arena *a, const char *queue_arn, const queue_message *msgs, size_t n)
{
  json_t *records = json_array();
  for (size_t i = 0; i < n; i++) {
    const queue_message *m = &msgs[i];
    json_t *attrs = json_pack(
        "{s:s, s:s, s:s, s:s}", "ApproximateReceiveCount",
        arena_sprintf(a, "%" PRIu32, m->receive_count), "SentTimestamp",
        arena_sprintf(a, "%" PRId64, m->sent_ms), "SenderId",
        m->sender_id != NULL ? m->sender_id : EVENTS_ACCOUNT, "ApproximateFirstReceiveTimestamp",
        arena_sprintf(a, "%" PRId64, m->first_receive_ms));
    if (m->trace_header != NULL)
      json_object_set_new(attrs, "AWSTraceHeader", json_string(m->trace_header));
    if (m->group_id != NULL)
      json_object_set_new(attrs, "MessageGroupId", json_string(m->group_id));
    if (m->dedup_id != NULL)
      json_object_set_new(attrs, "MessageDeduplicationId", json_string(m->dedup_id));
    if (m->sequence_number != NULL)
      json_object_set_new(attrs, "SequenceNumber", json_string(m->sequence_number));
    json_t *body = json_stringn_nocheck(m->body != NULL ? m->body : "", m->body_len);
    json_t *r = json_pack("{s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:s, s:s}", "messageId",
                          m->message_id, "receiptHandle", m->receipt_handle, "body", body,
                          "attributes", attrs, "messageAttributes", message_attributes(a, m),
                          "md5OfBody", m->md5_body, "eventSource", "aws:sqs", "eventSourceARN",
                          queue_arn, "awsRegion", EVENTS_REGION);
    if (m->md5_attrs[0] != '\0')
      json_object_set_new(r, "md5OfMessageAttributes", json_string(m->md5_attrs));
    json_array_append_new(records, r);
  }
  return dump(a, json_pack("{s:o}", "Records", records));
}

char *events_kinesis_message(arena *a, const char *stream_arn, const stream_batch *b)
{
  json_t *records = json_array();
  for (size_t i = 0; i < b->n; i++) {
    const stream_batch_record *r = &b->recs[i];
    char *data = arena_alloc(a, base64_encoded_len(r->len));
    base64_encode(r->data, r->len, data);
    json_t *k = json_pack("{s:s, s:s, s:s, s:s, s:f}", "kinesisSchemaVersion", "1.0",
                          "partitionKey", r->partition_key, "sequenceNumber", r->sequence,
                          "data", data, "approximateArrivalTimestamp", (double)r->ts_ms / 1000.0);
    json_array_append_new(
        records, json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kinesis", k,
                           "eventSource", "aws:kinesis", "eventVersion", "1.0", "eventID",
                           arena_sprintf(a, "%s:%s", b->shard_id, r->sequence), "eventName",
                           "aws:kinesis:record", "invokeIdentityArn",
                           "arn:aws:iam::" EVENTS_ACCOUNT ":role/lambda", "awsRegion",
                           EVENTS_REGION, "eventSourceARN", stream_arn));
  }
  return dump(a, json_pack("{s:o}", "Records", records));
}

int events_batch_failures(const char *answer, size_t len, const queue_message *msgs,
                          size_t nmsgs, arena *a, const char ***ids, size_t *n, err *e)
{
  *ids = NULL;
  *n = 0;
  if (answer == NULL || len == 0)
    return 0;  /* null / no answer: every record succeeded */
  json_error_t je;
  json_t *root = json_loadb(answer, len, JSON_DECODE_ANY, &je);
  if (root == NULL)
    return err_set(e, ERR_INVALID, "the function's answer is not JSON");
  int rc = 0;
  json_t *failures = json_is_object(root) ? json_object_get(root, "batchItemFailures") : NULL;
  if (failures == NULL || json_is_null(failures)) {
    json_decref(root);
    return 0;  /* no batchItemFailures: every record succeeded */
  }
  if (!json_is_array(failures)) {
    json_decref(root);
    return err_set(e, ERR_INVALID, "batchItemFailures is not a list");
  }
  size_t k = json_array_size(failures);
  const char **list = arena_alloc(a, (k + 1) * sizeof *list);
  size_t count = 0;
  for (size_t i = 0; i < k && rc == 0; i++) {
    const char *id = json_string_value(json_object_get(json_array_get(failures, i),
                                                       "itemIdentifier"));
    if (id == NULL || *id == '\0') {
      rc = err_set(e, ERR_INVALID, "a batchItemFailures entry has no itemIdentifier");
      break;
    }
    bool known = false;
    for (size_t j = 0; j < nmsgs && !known; j++)
      known = strcmp(msgs[j].message_id, id) == 0;
    if (!known) {
      rc = err_set(e, ERR_INVALID, "itemIdentifier '%s' is not a message of the batch", id);
      break;
    }
    list[count++] = arena_strdup(a, id);
  }
  json_decref(root);
  if (rc == 0) {
    *ids = list;
    *n = count;
  }
  return rc;
}

/* ---- Lambda's invocation record (destinations) ---- */

/* The payload as JSON when it is JSON, else as a string. */
static json_t *payload_json(const char *p, size_t n)
{
  if (p == NULL || n == 0)
    return json_null();
  json_error_t je;
  json_t *j = json_loadb(p, n, JSON_DECODE_ANY, &je);
  return j != NULL ? j : json_stringn_nocheck(p, n);
}

char *events__invocation_record(arena *a, const events_outcome *o)
{
  char when[25];
  time_format_iso8601_ms(o->time_ms, when);
  json_t *ctx = json_pack("{s:s, s:s, s:s, s:i}", "requestId", o->request_id, "functionArn",
                          o->function_arn, "condition", o->condition,
                          "approximateInvokeCount", o->attempts);
  json_t *resp = json_pack("{s:i, s:s}", "statusCode", o->status != 0 ? o->status : 200,
                           "executedVersion",
                           o->executed_version != NULL ? o->executed_version : "$LATEST");
  if (o->function_error != NULL)
    json_object_set_new(resp, "functionError", json_string(o->function_error));
  json_t *rec = json_pack("{s:s, s:s, s:o, s:o, s:o}", "version", "1.0", "timestamp", when,
                          "requestContext", ctx, "requestPayload",
                          payload_json(o->payload, o->payload_len), "responseContext", resp);
  if (o->response != NULL || o->response_len > 0 || o->status != 0)
    json_object_set_new(rec, "responsePayload", payload_json(o->response, o->response_len));
  return dump(a, rec);
}
