/* flow/service.c -- Task states that call a service of tarn directly
 * instead of a function: sqs:sendMessage, sns:publish (also as aws-sdk:...),
 * S3 getObject and putObject (as s3:... and aws-sdk:s3:...),
 * states:startExecution, Athena
 * startQueryExecution / getQueryExecution / getQueryResults /
 * stopQueryExecution; each in its request-response form, and
 * sqs:sendMessage / sns:publish / states:startExecution with
 * .waitForTaskToken; states:startExecution also with .sync and .sync:2 (the
 * engine waits for the execution's end), athena:startQueryExecution with
 * .sync (the run polls the query on a timer until it ends: the query id is
 * in the run's committed record, so a restart goes on polling).
 *
 * DynamoDB, Kinesis and Firehose, aws-sdk:s3:deleteObject|listObjectsV2 and
 * the names of AWS SDK integration errors are integrations_sdk.c's.
 *
 * Why synchronous: each of these is one durable commit in its part (a few
 * milliseconds), so the step thread makes the call itself and the result
 * is taken by the run's next step like a function's answer.
 *
 * Results use the shapes of the AWS integrations ({"MessageId",
 * "MD5OfMessageBody"}, {"Body", "ContentLength", "ETag", ...},
 * {"ExecutionArn", "StartDate"}, {"QueryExecutionId"}); errors are named
 * SERVICE.CODE (SQS.QueueDoesNotExist, S3.NoSuchKey,
 * Athena.InvalidRequestException, ...).
 *
 * Start reading at flow__service_call().
 */
#include "flow/internal.h"

#include "base/hash.h"
#include "base/mem.h"
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

int flow__task_fail(char **error, char **cause, const char *name, const char *msg)
{
  *error = xstrdup(name);
  *cause = xstrdup(msg);
  return -1;
}

static int fail(char **error, char **cause, const char *name, const char *msg)
{
  return flow__task_fail(error, cause, name, msg);
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

int flow__service_error(char **error, char **cause, const char *svc, const err *e)
{
  return service_error(error, cause, svc, e);
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

/* An object's bytes as text (at most max bytes), with its record in a. */
static int object_text(flow_system *s, json_t *p, size_t max, arena *a, store_object *o,
                       char **text, size_t *len, char **error, char **cause)
{
  const char *bucket = json_string_value(json_object_get(p, "Bucket"));
  const char *key = json_string_value(json_object_get(p, "Key"));
  if (s->st == NULL)
    return fail(error, cause, "S3.ServiceException", "the store is not available");
  if (bucket == NULL || key == NULL)
    return fail(error, cause, "States.Runtime", "s3:getObject needs Bucket and Key");
  int fd = -1;
  err e = {0};
  int rc = store_object_get(s->st, bucket, key, a, o, &fd, &e);
  if (rc != 0)
    return service_error(error, cause, "S3", &e);
  if (o->size > max) {
    if (fd >= 0)
      close(fd);
    return fail(error, cause, "States.DataLimitExceeded",
                arena_sprintf(a, "the object is larger than %zu bytes", max));
  }
  char *data = xmalloc(o->size + 1);
  size_t got = 0;
  rc = store_object_read(o, fd, 0, data, (size_t)o->size, &got, &e);
  if (fd >= 0)
    close(fd);
  data[got] = '\0';
  if (rc != 0) {
    free(data);
    return service_error(error, cause, "S3", &e);
  }
  *text = data;
  *len = got;
  return 0;
}

static int s3_get(flow_system *s, json_t *p, char **result, char **error, char **cause)
{
  arena *a = arena_new();
  store_object o;
  char *data;
  size_t got;
  if (object_text(s, p, FLOW_MAX_PAYLOAD, a, &o, &data, &got, error, cause) != 0) {
    arena_free(a);
    return -1;
  }
  json_t *body = json_stringn(data, got);
  free(data);
  if (body == NULL) {
    arena_free(a);
    return fail(error, cause, "States.Runtime", "the object is not UTF-8 text");
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

/* Writes body (taken) as bucket/key; etag gets its ETag. */
static int object_put(flow_system *s, const char *bucket, const char *key, char *body,
                      const char *ctype, char etag[33], char **error, char **cause)
{
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
  if (rc == 0)   /* as S3's PutObject without SSE headers: the bucket's default */
    rc = store_writer_encrypt_default(s->st, w, bucket, NULL, &e);
  if (rc == 0)
    rc = store_writer_write(w, body, strlen(body), &e);
  free(body);
  if (rc == 0) {
    uint8_t md[16];
    store_writer_md5(w, md);
    hex_encode(md, 16, etag);
    etag[32] = '\0';
    str_pair meta = {"content-type", ctype != NULL ? ctype : "binary/octet-stream"};
    rc = store_object_commit(w, bucket, key, etag, &meta, 1, NULL, 0, NULL, NULL, &e);
  }
  w = store_writer_free(w);
  if (rc != 0)
    return service_error(error, cause, "S3", &e);
  return 0;
}

static int s3_put(flow_system *s, json_t *p, char **result, char **error, char **cause)
{
  char etag[33];
  if (object_put(s, json_string_value(json_object_get(p, "Bucket")),
                 json_string_value(json_object_get(p, "Key")), text_param(p, "Body"),
                 json_string_value(json_object_get(p, "ContentType")), etag, error,
                 cause) != 0)
    return -1;
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

/* ---- Athena ---- */

static int athena_error(char **error, char **cause, const err *e)
{
  const char *code = e->code == ERR_INVALID || e->code == ERR_NOT_FOUND
                         ? "InvalidRequestException"
                     : e->code == ERR_THROTTLED ? "TooManyRequestsException"
                                                : "InternalServerException";
  char name[64];
  snprintf(name, sizeof name, "Athena.%s", code);
  return fail(error, cause, name, e->msg);
}

static int athena_call(flow_system *s, const char *op, json_t *p, char **result, char **error,
                       char **cause)
{
  if (s->athena == NULL)
    return fail(error, cause, "Athena.InternalServerException", "Athena is not available");
  const char *id = json_string_value(json_object_get(p, "QueryExecutionId"));
  json_t *r = NULL;
  err e = {0};
  int rc;
  if (str_starts(op, "startQueryExecution")) {
    char qid[37];
    rc = athena_query_start(s->athena, p, NULL, qid, &e);
    if (rc == 0)
      r = json_pack("{s:s}", "QueryExecutionId", qid);
  } else if (id == NULL) {
    return fail(error, cause, "States.Runtime", "the Athena task needs QueryExecutionId");
  } else if (strcmp(op, "getQueryExecution") == 0) {
    json_t *qe = NULL;
    rc = athena_query_get(s->athena, id, &qe, &e);
    if (rc == 0)
      r = json_pack("{s:o}", "QueryExecution", qe);
  } else if (strcmp(op, "getQueryResults") == 0) {
    rc = athena_query_results(s->athena, p, &r, &e);
  } else {
    rc = athena_query_stop(s->athena, id, &e);
    if (rc == 0)
      r = json_object();
  }
  if (rc != 0)
    return athena_error(error, cause, &e);
  *result = json_dumps(r, JSON_COMPACT);
  json_decref(r);
  return 0;
}

int flow__athena_poll(flow_system *s, const char *id, char **result, char **error,
                      char **cause)
{
  *result = *error = *cause = NULL;
  if (s->athena == NULL)
    return fail(error, cause, "Athena.InternalServerException", "Athena is not available");
  json_t *qe = NULL;
  err e = {0};
  if (athena_query_get(s->athena, id, &qe, &e) != 0)
    return athena_error(error, cause, &e);
  const char *state = json_string_value(json_object_get(json_object_get(qe, "Status"), "State"));
  if (state == NULL || strcmp(state, "QUEUED") == 0 || strcmp(state, "RUNNING") == 0) {
    json_decref(qe);
    return 1;
  }
  bool ok = strcmp(state, "SUCCEEDED") == 0;
  json_t *r = json_pack("{s:o}", "QueryExecution", qe);
  char *text = json_dumps(r, JSON_COMPACT);
  json_decref(r);
  if (ok) {
    *result = text;
    return 0;
  }
  /* FAILED or CANCELLED: the cause is GetQueryExecution's answer (its
   * Status says why) */
  *error = xstrdup("States.TaskFailed");
  *cause = text;
  return -1;
}

bool flow__service_known(const char *resource)
{
  if (flow__sdk_known(resource))
    return true;
  static const char *const known[] = {
      "arn:aws:states:::sqs:sendMessage",   "arn:aws:states:::sns:publish",
      "arn:aws:states:::s3:getObject",      "arn:aws:states:::s3:putObject",
      "arn:aws:states:::aws-sdk:s3:getObject", "arn:aws:states:::aws-sdk:s3:putObject",
      "arn:aws:states:::aws-sdk:sqs:sendMessage", "arn:aws:states:::aws-sdk:sns:publish",
      "arn:aws:states:::states:startExecution", "arn:aws:states:::athena:getQueryExecution",
      "arn:aws:states:::athena:getQueryResults", "arn:aws:states:::athena:stopQueryExecution",
      NULL};
  if (strcmp(resource, "arn:aws:states:::athena:startQueryExecution") == 0 ||
      strcmp(resource, "arn:aws:states:::athena:startQueryExecution.sync") == 0)
    return true;
  for (size_t i = 0; known[i] != NULL; i++) {
    size_t n = strlen(known[i]);
    if (strncmp(resource, known[i], n) == 0 &&
        (resource[n] == '\0' || (strcmp(resource + n, ".waitForTaskToken") == 0 &&
                                  strstr(known[i], ":athena:") == NULL)))
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

static int service_call(flow_system *s, const char *resource, json_t *params, char **result,
                        char **error, char **cause)
{
  *result = *error = *cause = NULL;
  if (flow__sdk_known(resource))
    return flow__sdk_call(s, resource, params, result, error, cause);
  if (!flow__service_known(resource))
    return fail(error, cause, "States.Runtime",
                str_ends(resource, ".sync") || strstr(resource, ".sync:") != NULL
                    ? "the .sync integration pattern is supported for states:startExecution "
                      "and athena:startQueryExecution only"
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
  if (str_starts(op, "athena:"))
    return athena_call(s, op + strlen("athena:"), params, result, error, cause);
  return start_execution(s, params, result, error, cause);
}

int flow__service_call(flow_system *s, const char *resource, json_t *params, char **result,
                       char **error, char **cause)
{
  int rc = service_call(s, resource, params, result, error, cause);
  if (rc != 0)
    flow__sdk_error_name(resource, error);
  return rc;
}

/* ---- distributed Map: ItemReader and ResultWriter ---- */

/* One CSV record from *p (RFC 4180 quotes), as strings; NULL at the end. */
static json_t *csv_record(const char **p)
{
  const char *c = *p;
  if (*c == '\0')
    return NULL;
  json_t *row = json_array();
  buf f;
  buf_init(&f, FLOW_MAX_ITEM_READER);
  for (;;) {
    buf_reset(&f);
    if (*c == '"') {
      c++;
      while (*c && !(*c == '"' && c[1] != '"')) {
        if (*c == '"')
          c++;
        buf_append(&f, c, 1);
        c++;
      }
      if (*c == '"')
        c++;
    }
    while (*c && *c != ',' && *c != '\n' && *c != '\r') {
      buf_append(&f, c, 1);
      c++;
    }
    json_t *v = json_stringn(f.data ? f.data : "", f.len);
    json_array_append_new(row, v != NULL ? v : json_string(""));
    if (*c == ',') {
      c++;
      continue;
    }
    if (*c == '\r')
      c++;
    if (*c == '\n')
      c++;
    break;
  }
  buf_release(&f);
  *p = c;
  return row;
}

int flow__items_read(flow_system *s, json_t *reader, json_t *params, json_t **items,
                     char **error, char **cause)
{
  *items = NULL;
  *error = *cause = NULL;
  json_t *cfg = json_object_get(reader, "ReaderConfig");
  const char *type = json_string_value(json_object_get(cfg, "InputType"));
  json_t *maxv = json_object_get(cfg, "MaxItems");
  size_t max = json_is_integer(maxv) && json_integer_value(maxv) > 0
                   ? (size_t)json_integer_value(maxv) : FLOW_MAX_MAP_ITEMS;
  if (max > FLOW_MAX_MAP_ITEMS)
    max = FLOW_MAX_MAP_ITEMS;
  arena *a = arena_new();
  store_object o;
  char *text;
  size_t len;
  if (object_text(s, params, FLOW_MAX_ITEM_READER, a, &o, &text, &len, error, cause) != 0) {
    arena_free(a);
    return -1;
  }
  arena_free(a);
  int rc = 0;
  if (type == NULL || strcmp(type, "JSON") == 0) {
    json_error_t je;
    json_t *doc = json_loadb(text, len, 0, &je);
    if (!json_is_array(doc))
      rc = fail(error, cause, "States.ItemReaderFailed", "the object is not a JSON array");
    if (rc == 0) {
      while (json_array_size(doc) > max)
        json_array_remove(doc, json_array_size(doc) - 1);
      *items = doc;
    } else {
      json_decref(doc);
    }
  } else if (strcmp(type, "CSV") == 0) {
    const char *p = text;
    json_t *header = NULL;
    const char *where = json_string_value(json_object_get(cfg, "CSVHeaderLocation"));
    if (where != NULL && strcmp(where, "GIVEN") == 0)
      header = json_incref(json_object_get(cfg, "CSVHeaders"));
    else
      header = csv_record(&p);
    if (!json_is_array(header)) {
      json_decref(header);
      free(text);
      return fail(error, cause, "States.ItemReaderFailed", "the CSV file has no header");
    }
    *items = json_array();
    json_t *row;
    while (json_array_size(*items) < max && (row = csv_record(&p)) != NULL) {
      json_t *obj = json_object();
      size_t i;
      json_t *h;
      json_array_foreach(header, i, h) {
        json_t *v = json_array_get(row, i);
        if (json_is_string(h))
          json_object_set(obj, json_string_value(h), v != NULL ? v : json_string(""));
      }
      json_decref(row);
      json_array_append_new(*items, obj);
    }
    json_decref(header);
  } else {
    rc = fail(error, cause, "States.ItemReaderFailed",
              "the ItemReader InputType must be JSON or CSV (MANIFEST is not supported)");
  }
  free(text);
  return rc;
}

int flow__results_write(flow_system *s, json_t *params, const char *map_run, json_t *ok,
                        json_t *failed, json_t **out, char **error, char **cause)
{
  *out = NULL;
  *error = *cause = NULL;
  const char *bucket = json_string_value(json_object_get(params, "Bucket"));
  const char *prefix = json_string_value(json_object_get(params, "Prefix"));
  char run_id[37];
  uuid_v4(run_id);
  char *base = xasprintf("%s%s%s", prefix ? prefix : "",
               prefix && *prefix && !str_ends(prefix, "/") ? "/" : "", run_id);
  json_t *files = json_object();
  json_t *lists[] = {ok, failed};
  const char *names[] = {"SUCCEEDED", "FAILED"};
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0; i++) {
    char *key = xasprintf("%s/%s_0.json", base, names[i]);
    char etag[33];
    rc = object_put(s, bucket, key, json_dumps(lists[i], JSON_COMPACT), "application/json",
                    etag, error, cause);
    json_object_set_new(files, names[i],
                        json_pack("[{s:s, s:I}]", "Key", key, "Size",
                                  (json_int_t)json_array_size(lists[i])));
    free(key);
  }
  char *manifest = xasprintf("%s/manifest.json", base);
  if (rc == 0) {
    json_t *m = json_pack("{s:s, s:s, s:o}", "DestinationBucket", bucket ? bucket : "",
                          "MapRunArn", map_run, "ResultFiles", files);
    files = NULL;
    char etag[33];
    rc = object_put(s, bucket, manifest, json_dumps(m, JSON_COMPACT), "application/json", etag,
                    error, cause);
    json_decref(m);
  }
  json_decref(files);
  if (rc == 0)
    *out = json_pack("{s:s, s:{s:s, s:s}}", "MapRunArn", map_run, "ResultWriterDetails",
                     "Bucket", bucket, "Key", manifest);
  free(manifest);
  free(base);
  return rc;
}
