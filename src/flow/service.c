/* flow/service.c -- Task states that call a service of tarn directly
 * instead of a function: sqs:sendMessage, sns:publish, S3 getObject and
 * putObject (as s3:... and aws-sdk:s3:...), states:startExecution; each in
 * its request-response form, and sqs:sendMessage / sns:publish /
 * states:startExecution with .waitForTaskToken; states:startExecution also
 * with .sync and .sync:2 (the engine waits for the execution's end).
 *
 * Why synchronous: each of these is one durable commit in its part (a few
 * milliseconds), so the step thread makes the call itself and the result
 * is taken by the run's next step like a function's answer.
 *
 * Results use the shapes of the AWS integrations ({"MessageId",
 * "MD5OfMessageBody"}, {"Body", "ContentLength", "ETag", ...},
 * {"ExecutionArn", "StartDate"}); errors are named SERVICE.CODE
 * (SQS.QueueDoesNotExist, S3.NoSuchKey, ...).
 *
 * Start reading at flow__service_call().
 */
#include "flow/internal.h"

#include "base/hash.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A string parameter, or a JSON value given where a string is wanted
 * (MessageBody, Message, Body), as its compact text. */
static char *text_param(json_t *p, const char *key)
{
  json_t *v = json_object_get(p, key);
  if (v == NULL)
    return NULL;
  if (json_is_string(v))
    return xstrdup(json_string_value(v));
  char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  return d != NULL ? d : xstrdup("null");
}

static int fail(char **error, char **cause, const char *name, const char *msg)
{
  *error = xstrdup(name);
  *cause = xstrdup(msg);
  return -1;
}

static const char *short_code(int code)
{
  switch (code) {
  case QUEUE_ERR_NO_QUEUE:
    return "QueueDoesNotExist";
  case QUEUE_ERR_NO_TOPIC:
    return "NotFoundException";
  case ERR_NO_SUCH_BUCKET:
    return "NoSuchBucket";
  case ERR_NO_SUCH_KEY:
    return "NoSuchKey";
  case FLOW_ERR_NO_MACHINE:
    return "StateMachineDoesNotExistException";
  case FLOW_ERR_EXECUTION_EXISTS:
    return "ExecutionAlreadyExistsException";
  case ERR_INVALID:
  case FLOW_ERR_INPUT:
  case FLOW_ERR_NAME:
  case FLOW_ERR_ARN:
    return "InvalidParameterValue";
  default:
    return "ServiceException";
  }
}

static int service_error(char **error, char **cause, const char *svc, const err *e)
{
  char name[128];
  snprintf(name, sizeof name, "%s.%s", svc, short_code(e->code));
  return fail(error, cause, name, e->msg);
}

static int sqs_send(flow_system *s, json_t *p, char **result, char **error, char **cause)
{
  const char *url = json_string_value(json_object_get(p, "QueueUrl"));
  char *body = text_param(p, "MessageBody");
  if (s->q == NULL)
    return fail(error, cause, "SQS.ServiceException", "queues are not available");
  if (url == NULL || body == NULL) {
    free(body);
    return fail(error, cause, "States.Runtime", "sqs:sendMessage needs QueueUrl and "
                "MessageBody");
  }
  queue_send m = {.body = body, .body_len = strlen(body), .delay_seconds = -1,
                  .group_id = json_string_value(json_object_get(p, "MessageGroupId")),
                  .dedup_id = json_string_value(json_object_get(p, "MessageDeduplicationId"))};
  json_t *ds = json_object_get(p, "DelaySeconds");
  if (json_is_integer(ds))
    m.delay_seconds = (int)json_integer_value(ds);
  queue_sent out;
  err e = {0};
  int rc = queue_message_send(s->q, url, &m, &out, &e);
  free(body);
  if (rc != 0)
    return service_error(error, cause, "SQS", &e);
  json_t *r = json_pack("{s:s, s:s}", "MessageId", out.message_id, "MD5OfMessageBody",
                        out.md5_body);
  if (out.sequence_number[0])
    json_object_set_new(r, "SequenceNumber", json_string(out.sequence_number));
  *result = json_dumps(r, JSON_COMPACT);
  json_decref(r);
  return 0;
}

static int sns_publish(flow_system *s, json_t *p, char **result, char **error, char **cause)
{
  const char *topic = json_string_value(json_object_get(p, "TopicArn"));
  char *msg = text_param(p, "Message");
  if (s->q == NULL)
    return fail(error, cause, "SNS.ServiceException", "topics are not available");
  if (topic == NULL || msg == NULL) {
    free(msg);
    return fail(error, cause, "States.Runtime", "sns:publish needs TopicArn and Message");
  }
  queue_publish pub = {.message = msg, .len = strlen(msg),
                       .subject = json_string_value(json_object_get(p, "Subject")),
                       .structure = json_string_value(json_object_get(p, "MessageStructure")),
                       .group_id = json_string_value(json_object_get(p, "MessageGroupId")),
                       .dedup_id = json_string_value(json_object_get(p, "MessageDeduplicationId"))};
  char id[QUEUE_ID_MAX];
  char seq[24];
  err e = {0};
  int rc = queue_topic_publish(s->q, topic, &pub, id, seq, &e);
  free(msg);
  if (rc != 0)
    return service_error(error, cause, "SNS", &e);
  json_t *r = json_pack("{s:s}", "MessageId", id);
  *result = json_dumps(r, JSON_COMPACT);
  json_decref(r);
  return 0;
}

static int s3_get(flow_system *s, json_t *p, char **result, char **error, char **cause)
{
  const char *bucket = json_string_value(json_object_get(p, "Bucket"));
  const char *key = json_string_value(json_object_get(p, "Key"));
  if (s->st == NULL)
    return fail(error, cause, "S3.ServiceException", "the store is not available");
  if (bucket == NULL || key == NULL)
    return fail(error, cause, "States.Runtime", "s3:getObject needs Bucket and Key");
  arena *a = arena_new();
  store_object o;
  int fd = -1;
  err e = {0};
  int rc = store_object_get(s->st, bucket, key, a, &o, &fd, &e);
  if (rc != 0) {
    arena_free(a);
    return service_error(error, cause, "S3", &e);
  }
  if (o.size > FLOW_MAX_PAYLOAD) {
    if (fd >= 0)
      close(fd);
    arena_free(a);
    return fail(error, cause, "States.DataLimitExceeded", "the object is larger than the "
                "256 KiB a state's result may be");
  }
  char *data = xmalloc(o.size + 1);
  size_t got = 0;
  rc = store_object_read(&o, fd, 0, data, (size_t)o.size, &got, &e);
  if (fd >= 0)
    close(fd);
  data[got] = '\0';
  json_t *body = rc == 0 ? json_stringn(data, got) : NULL;
  free(data);
  if (rc != 0 || body == NULL) {
    arena_free(a);
    return rc != 0 ? service_error(error, cause, "S3", &e)
                   : fail(error, cause, "States.Runtime", "the object is not UTF-8 text");
  }
  const char *ctype = "binary/octet-stream";
  for (size_t i = 0; i < o.nmeta; i++)
    if (strcmp(o.meta[i].name, "content-type") == 0)
      ctype = o.meta[i].value;
  char modified[25];
  time_format_iso8601_ms(o.mtime_ms, modified);
  json_t *r = json_pack("{s:o, s:I, s:s, s:s, s:s}", "Body", body, "ContentLength",
                        (json_int_t)o.size, "ContentType", ctype, "ETag",
                        arena_sprintf(a, "\"%s\"", o.etag), "LastModified", modified);
  *result = json_dumps(r, JSON_COMPACT);
  json_decref(r);
  arena_free(a);
  return 0;
}

static int s3_put(flow_system *s, json_t *p, char **result, char **error, char **cause)
{
  const char *bucket = json_string_value(json_object_get(p, "Bucket"));
  const char *key = json_string_value(json_object_get(p, "Key"));
  char *body = text_param(p, "Body");
  if (s->st == NULL) {
    free(body);
    return fail(error, cause, "S3.ServiceException", "the store is not available");
  }
  if (bucket == NULL || key == NULL || body == NULL) {
    free(body);
    return fail(error, cause, "States.Runtime", "s3:putObject needs Bucket, Key and Body");
  }
  store_writer *w = NULL;
  err e = {0};
  int rc = store_writer_new(s->st, &w, &e);
  if (rc == 0)
    rc = store_writer_write(w, body, strlen(body), &e);
  free(body);
  char etag[33];
  if (rc == 0) {
    uint8_t md[16];
    store_writer_md5(w, md);
    hex_encode(md, 16, etag);
    etag[32] = '\0';
    const char *ctype = json_string_value(json_object_get(p, "ContentType"));
    str_pair meta = {"content-type", ctype != NULL ? ctype : "binary/octet-stream"};
    rc = store_object_commit(w, bucket, key, etag, &meta, 1, NULL, 0, NULL, NULL, &e);
  }
  w = store_writer_free(w);
  if (rc != 0)
    return service_error(error, cause, "S3", &e);
  json_t *r = json_pack("{s:s}", "ETag", etag);
  json_object_set_new(r, "ETag", json_sprintf("\"%s\"", etag));
  *result = json_dumps(r, JSON_COMPACT);
  json_decref(r);
  return 0;
}

static int start_execution(flow_system *s, json_t *p, char **result, char **error, char **cause)
{
  const char *arn = json_string_value(json_object_get(p, "StateMachineArn"));
  if (arn == NULL)
    return fail(error, cause, "States.Runtime", "states:startExecution needs StateMachineArn");
  char *input = text_param(p, "Input");
  json_t *out = NULL;
  err e = {0};
  json_t *parent = json_object_get(p, "_parent"); /* .sync: set by the engine */
  int rc = flow__execution_start(s, arn, json_string_value(json_object_get(p, "Name")), input,
                                 parent, NULL, NULL, &out, &e);
  free(input);
  if (rc != 0)
    return service_error(error, cause, "StepFunctions", &e);
  json_t *r = json_pack("{s:O, s:O}", "ExecutionArn", json_object_get(out, "executionArn"),
                        "StartDate", json_object_get(out, "startDate"));
  *result = json_dumps(r, JSON_COMPACT);
  json_decref(r);
  json_decref(out);
  return 0;
}

bool flow__service_known(const char *resource)
{
  static const char *const known[] = {
      "arn:aws:states:::sqs:sendMessage",   "arn:aws:states:::sns:publish",
      "arn:aws:states:::s3:getObject",      "arn:aws:states:::s3:putObject",
      "arn:aws:states:::aws-sdk:s3:getObject", "arn:aws:states:::aws-sdk:s3:putObject",
      "arn:aws:states:::states:startExecution", NULL};
  for (size_t i = 0; known[i] != NULL; i++) {
    size_t n = strlen(known[i]);
    if (strncmp(resource, known[i], n) == 0 &&
        (resource[n] == '\0' || strcmp(resource + n, ".waitForTaskToken") == 0))
      return true;
  }
  for (size_t i = 0; known[i] != NULL; i++) {
    size_t n = strlen(known[i]);
    if (strstr(known[i], "startExecution") != NULL && strncmp(resource, known[i], n) == 0 &&
        (strcmp(resource + n, ".sync") == 0 || strcmp(resource + n, ".sync:2") == 0))
      return true;
  }
  return false;
}

int flow__service_call(flow_system *s, const char *resource, json_t *params, char **result,
                       char **error, char **cause)
{
  *result = *error = *cause = NULL;
  if (!flow__service_known(resource))
    return fail(error, cause, "States.Runtime",
                str_ends(resource, ".sync") || strstr(resource, ".sync:") != NULL
                    ? "the .sync integration pattern is supported for states:startExecution only"
                    : "the resource is not supported by tarn");
  const char *op = resource + strlen("arn:aws:states:::");
  if (str_starts(op, "aws-sdk:"))
    op += strlen("aws-sdk:");
  if (str_starts(op, "sqs:sendMessage"))
    return sqs_send(s, params, result, error, cause);
  if (str_starts(op, "sns:publish"))
    return sns_publish(s, params, result, error, cause);
  if (str_starts(op, "s3:getObject"))
    return s3_get(s, params, result, error, cause);
  if (str_starts(op, "s3:putObject"))
    return s3_put(s, params, result, error, cause);
  return start_execution(s, params, result, error, cause);
}
