/* api/sqs.c -- the SQS endpoint: the query protocol (form in, XML out) and
 * AWS JSON 1.0 (X-Amz-Target: AmazonSQS.*), both onto queue/queue.h.
 *
 * Why one model: the operations are written once, over the JSON protocol's
 * shapes (jansson objects in, jansson objects out). A query request is first
 * turned into that shape (Attribute.N.Name/Value -> "Attributes" map,
 * MessageAttribute.N.* -> "MessageAttributes", XxxBatchRequestEntry.N.* ->
 * "Entries", AttributeName.N -> "AttributeNames", ...), and a result is
 * written back as the query protocol's XML by xml_emit(), which knows the
 * few element names that differ (QueueUrls -> QueueUrl, Messages -> Message,
 * maps as Attribute/MessageAttribute/Tag entries).
 *
 * Operations: CreateQueue, GetQueueUrl, ListQueues, DeleteQueue, PurgeQueue,
 * GetQueueAttributes, SetQueueAttributes, SendMessage, SendMessageBatch,
 * ReceiveMessage (long polling parks the request: see receive_park()),
 * DeleteMessage, DeleteMessageBatch, ChangeMessageVisibility,
 * ChangeMessageVisibilityBatch, ListDeadLetterSourceQueues, TagQueue,
 * UntagQueue, ListQueueTags. Others answer InvalidAction /
 * UnsupportedOperation.
 *
 * Errors: query XML <ErrorResponse><Error><Type/><Code/><Message/></Error>
 * with SQS's query codes (AWS.SimpleQueueService.NonExistentQueue, ...);
 * JSON {"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message"} plus the
 * x-amzn-query-error header that query-compatible SDKs read.
 *
 * Invariants:
 *   (1) A parked ReceiveMessage is answered exactly once: by poll_done when
 *       the request is still alive, else its messages are released. Its wait
 *       state (waitst) lives on the heap and is freed by whichever of
 *       cleanup and poll_done runs last, both under s->mu.
 *   (2) No call that waits for the queue part's committer is made while
 *       holding s->mu (poll_done runs on that committer and takes s->mu).
 *   (3) Bodies are bounded: SQS_BODY_MAX bytes of request.
 *   (4) A parked ReceiveMessage whose client closed the connection while
 *       it waited (the server notices only at resume) gives back the
 *       messages it received: they are released, visible at once to the
 *       next receiver, and the request is answered empty.
 *
 * Start reading at sqs_handle() and the ops[] table.
 */
#include "api/sqs.h"

#include "api/iam.h"
#include "api/query_protocol.h"
#include "aws/errors.h"
#include "base/hash.h"
#include "base/mem.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQS_NS "http://queue.amazonaws.com/doc/2012-11-05/"
#define SQS_BODY_MAX (4u << 20)

/* Codes of this file (batch shape errors, unknown actions). */
#define SQS_ERR_EMPTY_BATCH (-1201)
#define SQS_ERR_TOO_MANY (-1202)
#define SQS_ERR_NOT_DISTINCT (-1203)
#define SQS_ERR_BAD_ENTRY_ID (-1204)
#define SQS_ERR_BATCH_TOO_LONG (-1205)
#define SQS_ERR_ACTION (-1206)
#define SQS_PARKED 1  /* an op parked the request: no answer now */

typedef struct sqs {
  http_service svc;
  queue_system *q;
  pthread_mutex_t mu;   /* guards every waitst */
} sqs;

typedef struct waitst waitst;

typedef struct sqs_call {
  bool json;            /* the JSON protocol, else query */
  const char *action;
  json_t *in;           /* the input, in the JSON protocol's shape */
  waitst *w;            /* a parked ReceiveMessage */
} sqs_call;

struct waitst {
  sqs *s;
  http_req *req;        /* NULL once cleanup ran */
  sqs_call *call;
  queue_poll *poll;
  bool finished;        /* poll_done ran */
  char *queue_ref;      /* for releasing messages nobody will see */
};

/* ---- errors ---- */

typedef struct sqs_code {
  int code;
  int status;
  const char *query;    /* the query protocol's Code */
  const char *json;     /* the JSON protocol's __type */
} sqs_code;

static const sqs_code codes[] = {
    {QUEUE_ERR_NO_QUEUE, 400, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"},
    {QUEUE_ERR_QUEUE_EXISTS, 400, "QueueAlreadyExists", "QueueNameExists"},
    {QUEUE_ERR_RECEIPT, 404, "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid"},
    {QUEUE_ERR_NOT_INFLIGHT, 400, "AWS.SimpleQueueService.MessageNotInflight",
     "MessageNotInflight"},
    {QUEUE_ERR_ATTR_NAME, 400, "InvalidAttributeName", "InvalidAttributeName"},
    {QUEUE_ERR_MISSING, 400, "MissingParameter", "MissingParameter"},
    {QUEUE_ERR_CONTENTS, 400, "InvalidMessageContents", "InvalidMessageContents"},
    {ERR_INVALID, 400, "InvalidParameterValue", "InvalidParameterValue"},
    {ERR_INVALID_REQUEST, 400, "InvalidParameterValue", "InvalidParameterValue"},
    {ERR_MALFORMED_XML, 400, "MalformedQueryString", "SerializationException"},
    {ERR_ENTITY_TOO_LARGE, 400, "InvalidParameterValue", "InvalidParameterValue"},
    {SQS_ERR_EMPTY_BATCH, 400, "AWS.SimpleQueueService.EmptyBatchRequest", "EmptyBatchRequest"},
    {SQS_ERR_TOO_MANY, 400, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
     "TooManyEntriesInBatchRequest"},
    {SQS_ERR_NOT_DISTINCT, 400, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
     "BatchEntryIdsNotDistinct"},
    {SQS_ERR_BAD_ENTRY_ID, 400, "AWS.SimpleQueueService.InvalidBatchEntryId",
     "InvalidBatchEntryId"},
    {SQS_ERR_BATCH_TOO_LONG, 400, "AWS.SimpleQueueService.BatchRequestTooLong",
     "BatchRequestTooLong"},
    {SQS_ERR_ACTION, 400, "InvalidAction", "UnknownOperationException"},
    {ERR_NOT_IMPLEMENTED, 400, "AWS.SimpleQueueService.UnsupportedOperation",
     "UnsupportedOperation"},
    {ERR_SIGNATURE, 403, "SignatureDoesNotMatch", "SignatureDoesNotMatch"},
    {ERR_EXPIRED, 403, "SignatureDoesNotMatch", "SignatureDoesNotMatch"},
    {ERR_TIME_SKEWED, 403, "SignatureDoesNotMatch", "SignatureDoesNotMatch"},
    {ERR_UNKNOWN_ACCESS_KEY, 403, "InvalidClientTokenId", "InvalidClientTokenId"},
    {ERR_DENIED, 403, "AccessDenied", "AccessDenied"},
    {ERR_AUTH_MALFORMED, 400, "IncompleteSignature", "IncompleteSignature"},
    {ERR_UNAVAILABLE, 503, "ServiceUnavailable", "ServiceUnavailable"},
};

static const sqs_code *code_of(int code)
{
  static const sqs_code internal = {ERR_INTERNAL, 500, "InternalError", "InternalError"};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (codes[i].code == code)
      return &codes[i];
  return &internal;
}

static bool wants_json(const http_req *r)
{
  const char *t = http_req_header(r, "x-amz-target");
  return t != NULL && str_starts(t, "AmazonSQS.");
}

static void write_error(http_req *r, bool json, const err *e)
{
  const sqs_code *c = code_of(e->code);
  const char *msg = e->msg[0] != '\0' ? e->msg : c->query;
  r->nresp_headers = 0;
  buf_reset(&r->resp_body);
  http_resp_status(r, c->status);
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  if (json) {
    http_resp_header(r, "Content-Type", "application/x-amz-json-1.0");
    http_resp_headerf(r, "x-amzn-query-error", "%s;%s", c->query, aws_error_fault(c->status));
    aws_error_json(&r->resp_body, arena_sprintf(r->arena, "com.amazonaws.sqs#%s", c->json), msg);
    return;
  }
  http_resp_header(r, "Content-Type", "text/xml");
  aws_error_query_xml(&r->resp_body, SQS_NS, c->status, c->query, msg, true, r->request_id);
}

static void sqs_error(void *ctx, http_req *r, const err *e)
{
  write_error(r, wants_json(r), e);
}

/* ---- the query protocol's input, in the JSON protocol's shapes ---- */

static json_t *normalise(json_t *tree);

/* MessageAttribute.N.{Name, Value.{DataType,StringValue,BinaryValue}} */
static json_t *attr_map(json_t *o)
{
  json_t *out = json_object();
  json_t *items = aws_query_numbered(o);
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) {
    const char *name = json_string_value(json_object_get(it, "Name"));
    json_t *v = json_object_get(it, "Value");
    if (name != NULL && json_is_object(v))
      json_object_set(out, name, v);
  }
  json_decref(items);
  return out;
}

static json_t *kv_map(json_t *o, const char *kname, const char *vname)
{
  json_t *out = json_object();
  json_t *items = aws_query_numbered(o);
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) {
    const char *k = json_string_value(json_object_get(it, kname));
    json_t *v = json_object_get(it, vname);
    if (k != NULL)
      json_object_set(out, k, v != NULL ? v : json_string(""));
  }
  json_decref(items);
  return out;
}

static json_t *normalise(json_t *tree)
{
  json_t *out = json_object();
  const char *key;
  json_t *v;
  json_object_foreach(tree, key, v) {
    if (strcmp(key, "Attribute") == 0) {
      json_object_set_new(out, "Attributes", kv_map(v, "Name", "Value"));
    } else if (strcmp(key, "Tag") == 0) {
      json_object_set_new(out, "Tags", kv_map(v, "Key", "Value"));
    } else if (strcmp(key, "MessageAttribute") == 0 ||
               strcmp(key, "MessageSystemAttribute") == 0) {
      json_object_set_new(out, strcmp(key, "MessageAttribute") == 0 ? "MessageAttributes"
                                                                   : "MessageSystemAttributes",
                          attr_map(v));
    } else if (strcmp(key, "AttributeName") == 0 || strcmp(key, "MessageAttributeName") == 0 ||
               strcmp(key, "MessageSystemAttributeName") == 0 || strcmp(key, "TagKey") == 0) {
      char plural[64];
      snprintf(plural, sizeof plural, "%ss", key);
      json_object_set_new(out, plural, aws_query_numbered(v));
    } else if (str_ends(key, "BatchRequestEntry")) {
      json_t *entries = json_array();
      json_t *items = aws_query_numbered(v);
      size_t i;
      json_t *it;
      json_array_foreach(items, i, it) {
        json_array_append_new(entries, json_is_object(it) ? normalise(it) : json_object());
      }
      json_decref(items);
      json_object_set_new(out, "Entries", entries);
    } else {
      json_object_set(out, key, v);
    }
  }
  return out;
}

/* ---- input helpers ---- */

static const char *in_str(json_t *in, const char *key)
{
  return json_string_value(json_object_get(in, key));
}

/* An integer member given as a JSON number or a decimal string; *present
 * tells whether it was there. */
static int in_int(json_t *in, const char *key, long lo, long hi, long *out, bool *present,
                  err *e)
{
  json_t *v = json_object_get(in, key);
  *present = v != NULL && !json_is_null(v);
  if (!*present)
    return 0;
  long x = 0;
  if (json_is_integer(v)) {
    x = (long)json_integer_value(v);
  } else if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *end;
    x = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0')
      return err_set(e, ERR_INVALID, "Value %s for parameter %s is invalid. Reason: must be an "
                     "integer.", s, key);
  } else {
    return err_set(e, ERR_INVALID, "Value for parameter %s is invalid. Reason: must be an "
                   "integer.", key);
  }
  if (x < lo || x > hi)
    return err_set(e, ERR_INVALID, "Value %ld for parameter %s is invalid. Reason: Must be "
                   "between %ld and %ld, if provided.", x, key, lo, hi);
  *out = x;
  return 0;
}

static const char *queue_url(http_req *r, const char *name)
{
  const char *host = http_req_header(r, "host");
  return arena_sprintf(r->arena, "http://%s/%s/%s", host != NULL ? host : "localhost:9000",
                       QUEUE_ACCOUNT, name);
}

/* The queue a request is about: QueueUrl, or the path it was posted to. */
static int queue_of(http_req *r, json_t *in, const char **ref, err *e)
{
  const char *url = in_str(in, "QueueUrl");
  if (url != NULL && *url != '\0') {
    *ref = url;
    return 0;
  }
  const char *p = r->path;
  if (p != NULL && p[0] == '/' && strchr(p + 1, '/') != NULL && p[strlen(p) - 1] != '/') {
    *ref = arena_sprintf(r->arena, "http://localhost%s", p);
    return 0;
  }
  return err_set(e, QUEUE_ERR_MISSING, "The request must contain the parameter QueueUrl.");
}

static int str_pairs(arena *a, json_t *o, str_pair **out, size_t *n, err *e, const char *what)
{
  *out = NULL;
  *n = 0;
  if (o == NULL || json_is_null(o))
    return 0;
  if (!json_is_object(o))
    return err_set(e, ERR_INVALID, "%s must be a map", what);
  *out = arena_alloc(a, (json_object_size(o) + 1) * sizeof **out);
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    const char *s = json_string_value(v);
    char num[32];
    if (s == NULL && json_is_integer(v)) {
      snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
      s = num;
    }
    if (s == NULL)
      return err_set(e, ERR_INVALID, "Value for %s '%s' must be a string", what, k);
    (*out)[*n].name = arena_strdup(a, k);
    (*out)[*n].value = arena_strdup(a, s);
    (*n)++;
  }
  return 0;
}

static int str_list(arena *a, json_t *arr, const char ***out, size_t *n, err *e, const char *what)
{
  *out = NULL;
  *n = 0;
  if (arr == NULL || json_is_null(arr))
    return 0;
  if (!json_is_array(arr))
    return err_set(e, ERR_INVALID, "%s must be a list", what);
  *out = arena_alloc(a, (json_array_size(arr) + 1) * sizeof **out);
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (!json_is_string(v))
      return err_set(e, ERR_INVALID, "%s must be a list of strings", what);
    (*out)[(*n)++] = arena_strdup(a, json_string_value(v));
  }
  return 0;
}

static int msg_attrs(arena *a, json_t *o, queue_attr **out, size_t *n, err *e)
{
  *out = NULL;
  *n = 0;
  if (o == NULL || json_is_null(o))
    return 0;
  if (!json_is_object(o))
    return err_set(e, ERR_INVALID, "MessageAttributes must be a map");
  *out = arena_alloc(a, (json_object_size(o) + 1) * sizeof **out);
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    queue_attr *at = &(*out)[(*n)++];
    at->name = arena_strdup(a, k);
    at->type = json_string_value(json_object_get(v, "DataType"));
    at->value = json_string_value(json_object_get(v, "StringValue"));
    const char *b64 = json_string_value(json_object_get(v, "BinaryValue"));
    if (at->type != NULL)
      at->type = arena_strdup(a, at->type);
    if (at->value != NULL)
      at->value = arena_strdup(a, at->value);
    if (b64 != NULL) {
      size_t len = strlen(b64);
      uint8_t *bin = arena_alloc(a, len + 1);
      long got = base64_decode(b64, len, bin, len + 1);
      if (got < 0)
        return err_set(e, ERR_INVALID, "The message attribute '%s' has an invalid binary value: "
                       "not base64", k);
      at->bin = bin;
      at->bin_len = (size_t)got;
    }
  }
  return 0;
}

/* One message of SendMessage or a batch entry. */
static int parse_send(arena *a, json_t *in, queue_send *m, err *e)
{
  memset(m, 0, sizeof *m);
  m->delay_seconds = -1;
  const char *body = in_str(in, "MessageBody");
  if (body == NULL)
    return err_set(e, QUEUE_ERR_MISSING, "The request must contain the parameter MessageBody.");
  m->body = body;
  m->body_len = strlen(body);
  long delay = 0;
  bool present = false;
  int rc = in_int(in, "DelaySeconds", 0, QUEUE_MAX_DELAY, &delay, &present, e);
  if (rc != 0)
    return rc;
  if (present)
    m->delay_seconds = (int)delay;
  queue_attr *attrs = NULL;
  if ((rc = msg_attrs(a, json_object_get(in, "MessageAttributes"), &attrs, &m->nattrs, e)) != 0)
    return rc;
  m->attrs = attrs;
  json_t *sys = json_object_get(in, "MessageSystemAttributes");
  if (json_is_object(sys)) {
    const char *k;
    json_t *v;
    json_object_foreach(sys, k, v) {
      if (strcmp(k, "AWSTraceHeader") != 0)
        return err_set(e, ERR_INVALID, "Message system attribute name '%s' is invalid.", k);
      const char *type = json_string_value(json_object_get(v, "DataType"));
      if (type == NULL || strcmp(type, "String") != 0)
        return err_set(e, ERR_INVALID, "Message system attribute AWSTraceHeader must be of "
                       "type String.");
      m->trace_header = json_string_value(json_object_get(v, "StringValue"));
      if (m->trace_header == NULL)
        return err_set(e, ERR_INVALID, "Message system attribute AWSTraceHeader has no value.");
    }
  }
  m->group_id = in_str(in, "MessageGroupId");
  m->dedup_id = in_str(in, "MessageDeduplicationId");
  return 0;
}

/* Batch entries: 1..10, ids valid and distinct. */
static int batch_entries(json_t *in, const char *entry_name, json_t **entries, err *e)
{
  json_t *arr = json_object_get(in, "Entries");
  size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
  if (n == 0)
    return err_set(e, SQS_ERR_EMPTY_BATCH, "There should be at least one %s in the request.",
                   entry_name);
  if (n > QUEUE_MAX_BATCH)
    return err_set(e, SQS_ERR_TOO_MANY, "Maximum number of entries per request are %d. You "
                   "have sent %zu.", QUEUE_MAX_BATCH, n);
  for (size_t i = 0; i < n; i++) {
    const char *id = in_str(json_array_get(arr, i), "Id");
    size_t len = id != NULL ? strlen(id) : 0;
    bool ok = len >= 1 && len <= 80;
    for (size_t k = 0; ok && k < len; k++) {
      char ch = id[k];
      ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
    }
    if (!ok)
      return err_set(e, SQS_ERR_BAD_ENTRY_ID, "A batch entry id can only contain alphanumeric "
                     "characters, hyphens and underscores. It can be at most 80 letters long.");
    for (size_t k = 0; k < i; k++)
      if (strcmp(id, in_str(json_array_get(arr, k), "Id")) == 0)
        return err_set(e, SQS_ERR_NOT_DISTINCT, "Id %s repeated.", id);
  }
  *entries = arr;
  return 0;
}

static json_t *failed_entry(const char *id, const err *e)
{
  const sqs_code *c = code_of(e->code);
  return json_pack("{s:s, s:b, s:s, s:s}", "Id", id, "SenderFault", c->status < 500, "Code",
                   c->query, "Message", e->msg);
}

/* ---- output ---- */

static void xml_emit(buf *b, const char *action, const char *key, json_t *v);

static void xml_members(buf *b, const char *action, json_t *o)
{
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    xml_emit(b, action, k, v);
  }
}

static void xml_emit(buf *b, const char *action, const char *key, json_t *v)
{
  if (v == NULL || json_is_null(v))
    return;
  if (json_is_object(v) && (strcmp(key, "Attributes") == 0 || strcmp(key, "Tags") == 0 ||
                            strcmp(key, "MessageAttributes") == 0)) {
    bool tags = strcmp(key, "Tags") == 0;
    bool mattrs = strcmp(key, "MessageAttributes") == 0;
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
      buf_puts(b, tags ? "<Tag>" : mattrs ? "<MessageAttribute>" : "<Attribute>");
      buf_xml_elem(b, tags ? "Key" : "Name", k);
      if (mattrs) {
        buf_puts(b, "<Value>");
        xml_members(b, action, x);
        buf_puts(b, "</Value>");
      } else {
        buf_xml_elem(b, "Value", json_string_value(x) ? json_string_value(x) : "");
      }
      buf_puts(b, tags ? "</Tag>" : mattrs ? "</MessageAttribute>" : "</Attribute>");
    }
    return;
  }
  if (json_is_array(v)) {
    const char *elem = key;
    char entry[96];
    if (strcmp(key, "QueueUrls") == 0 || strcmp(key, "queueUrls") == 0) {
      elem = "QueueUrl";
    } else if (strcmp(key, "Messages") == 0) {
      elem = "Message";
    } else if (strcmp(key, "Failed") == 0) {
      elem = "BatchResultErrorEntry";
    } else if (strcmp(key, "Successful") == 0) {
      snprintf(entry, sizeof entry, "%sResultEntry", action);
      elem = entry;
    }
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      xml_emit(b, action, elem, x);
    }
    return;
  }
  if (json_is_object(v)) {
    buf_printf(b, "<%s>", key);
    xml_members(b, action, v);
    buf_printf(b, "</%s>", key);
    return;
  }
  if (json_is_string(v)) {
    buf_xml_elem(b, key, json_string_value(v));
  } else if (json_is_integer(v)) {
    buf_printf(b, "<%s>%lld</%s>", key, (long long)json_integer_value(v), key);
  } else if (json_is_boolean(v)) {
    buf_printf(b, "<%s>%s</%s>", key, json_is_true(v) ? "true" : "false", key);
  }
}

/* Writes an operation's result (takes out). */
static void write_result(http_req *r, sqs_call *c, json_t *out)
{
  http_resp_status(r, 200);
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  if (c->json) {
    http_resp_header(r, "Content-Type", "application/x-amz-json-1.0");
    char *text = json_dumps(out, JSON_COMPACT);
    buf_puts(&r->resp_body, text != NULL ? text : "{}");
    free(text);
  } else {
    http_resp_header(r, "Content-Type", "text/xml");
    buf *b = &r->resp_body;
    static const char *const no_result[] = {"DeleteMessage", "DeleteQueue", "PurgeQueue",
                                            "SetQueueAttributes", "ChangeMessageVisibility",
                                            "TagQueue", "UntagQueue", NULL};
    bool none = false;
    for (size_t i = 0; no_result[i] != NULL && !none; i++)
      none = strcmp(no_result[i], c->action) == 0;
    aws_query_response_begin(b, SQS_NS, c->action, !none);
    if (!none)
      xml_members(b, c->action, out);
    aws_query_response_end(b, c->action, !none, r->request_id);
  }
  json_decref(out);
}

/* ---- queues ---- */

static int op_create_queue(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *name = in_str(in, "QueueName");
  if (name == NULL)
    return err_set(e, QUEUE_ERR_MISSING, "The request must contain the parameter QueueName.");
  str_pair *attrs, *tags;
  size_t nattrs, ntags;
  int rc = str_pairs(r->arena, json_object_get(in, "Attributes"), &attrs, &nattrs, e,
                     "Attributes");
  json_t *jt = json_object_get(in, "tags");
  if (jt == NULL)
    jt = json_object_get(in, "Tags");
  if (rc == 0)
    rc = str_pairs(r->arena, jt, &tags, &ntags, e, "Tags");
  queue_info info;
  if (rc == 0)
    rc = queue_create(s->q, name, attrs, nattrs, tags, ntags, r->arena, &info, e);
  if (rc == 0)
    *out = json_pack("{s:s}", "QueueUrl", queue_url(r, info.name));
  return rc;
}

static int op_get_queue_url(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *name = in_str(in, "QueueName");
  if (name == NULL)
    return err_set(e, QUEUE_ERR_MISSING, "The request must contain the parameter QueueName.");
  queue_info info;
  int rc = queue_lookup(s->q, name, r->arena, &info, e);
  if (rc == ERR_INVALID)
    rc = err_set(e, QUEUE_ERR_NO_QUEUE, "The specified queue does not exist.");
  if (rc == 0)
    *out = json_pack("{s:s}", "QueueUrl", queue_url(r, info.name));
  return rc;
}

static int op_list_queues(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  long max = 0;
  bool present = false;
  int rc = in_int(in, "MaxResults", 1, 1000, &max, &present, e);
  if (rc != 0)
    return rc;
  const char *token = in_str(in, "NextToken");
  const char *marker = NULL;
  if (token != NULL && *token != '\0') {
    size_t len = strlen(token);
    uint8_t *raw = arena_alloc(r->arena, len + 1);
    long got = base64_decode(token, len, raw, len);
    if (got <= 0)
      return err_set(e, ERR_INVALID, "Invalid NextToken value.");
    marker = arena_strndup(r->arena, (const char *)raw, (size_t)got);
  }
  const char **names;
  size_t n;
  const char *next;
  rc = queue_list(s->q, in_str(in, "QueueNamePrefix"), marker, present ? (size_t)max : 1000,
                  r->arena, &names, &n, &next, e);
  if (rc != 0)
    return rc;
  *out = json_object();
  if (n > 0) {
    json_t *urls = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(urls, json_string(queue_url(r, names[i])));
    json_object_set_new(*out, "QueueUrls", urls);
  }
  if (next != NULL && present) {
    char *b64 = arena_alloc(r->arena, base64_encoded_len(strlen(next)));
    base64_encode((const uint8_t *)next, strlen(next), b64);
    json_object_set_new(*out, "NextToken", json_string(b64));
  }
  return 0;
}

static int op_delete_queue(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  if (rc == 0)
    rc = queue_delete(s->q, ref, e);
  return rc;
}

static int op_purge_queue(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  if (rc == 0)
    rc = queue_purge(s->q, ref, e);
  return rc;
}

static const char *const readable_attrs[] = {
    "All", "Policy", "VisibilityTimeout", "MaximumMessageSize", "MessageRetentionPeriod",
    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "CreatedTimestamp",
    "LastModifiedTimestamp", "QueueArn", "ApproximateNumberOfMessagesDelayed", "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds", "RedrivePolicy", "FifoQueue", "ContentBasedDeduplication",
    "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "DeduplicationScope",
    "FifoThroughputLimit", "RedriveAllowPolicy", "SqsManagedSseEnabled", NULL};

static bool in_list(const char *const *list, size_t n, const char *s)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], s) == 0)
      return true;
  return false;
}

static int op_get_attrs(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  const char **names = NULL;
  size_t nnames = 0;
  if (rc == 0)
    rc = str_list(r->arena, json_object_get(in, "AttributeNames"), &names, &nnames, e,
                  "AttributeNames");
  for (size_t i = 0; rc == 0 && i < nnames; i++)
    if (!in_list(readable_attrs, sizeof readable_attrs / sizeof *readable_attrs - 1, names[i]))
      rc = err_set(e, QUEUE_ERR_ATTR_NAME, "Unknown Attribute %s.", names[i]);
  str_pair *attrs;
  size_t n;
  if (rc == 0)
    rc = queue_attrs_get(s->q, ref, r->arena, &attrs, &n, e);
  if (rc != 0)
    return rc;
  bool all = in_list(names, nnames, "All");
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++)
    if (all || in_list(names, nnames, attrs[i].name))
      json_object_set_new(o, attrs[i].name, json_string(attrs[i].value));
  *out = json_object();
  if (json_object_size(o) > 0)
    json_object_set_new(*out, "Attributes", o);
  else
    json_decref(o);
  return 0;
}

static int op_set_attrs(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  str_pair *attrs;
  size_t n;
  if (rc == 0)
    rc = str_pairs(r->arena, json_object_get(in, "Attributes"), &attrs, &n, e, "Attributes");
  if (rc == 0)
    rc = queue_attrs_set(s->q, ref, attrs, n, e);
  return rc;
}

static int op_dlq_sources(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  const char **names;
  size_t n;
  if (rc == 0)
    rc = queue_dlq_sources(s->q, ref, r->arena, &names, &n, e);
  if (rc != 0)
    return rc;
  json_t *urls = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(urls, json_string(queue_url(r, names[i])));
  *out = json_pack("{s:o}", "queueUrls", urls);
  return 0;
}

static int op_tag(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  str_pair *tags;
  size_t n;
  if (rc == 0)
    rc = str_pairs(r->arena, json_object_get(in, "Tags"), &tags, &n, e, "Tags");
  if (rc == 0)
    rc = queue_tags_set(s->q, ref, tags, n, e);
  return rc;
}

static int op_untag(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  const char **keys;
  size_t n;
  if (rc == 0)
    rc = str_list(r->arena, json_object_get(in, "TagKeys"), &keys, &n, e, "TagKeys");
  if (rc == 0)
    rc = queue_tags_remove(s->q, ref, keys, n, e);
  return rc;
}

static int op_list_tags(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  str_pair *tags;
  size_t n;
  if (rc == 0)
    rc = queue_tags_get(s->q, ref, r->arena, &tags, &n, e);
  if (rc != 0)
    return rc;
  *out = json_object();
  if (n > 0) {
    json_t *t = json_object();
    for (size_t i = 0; i < n; i++)
      json_object_set_new(t, tags[i].name, json_string(tags[i].value));
    json_object_set_new(*out, "Tags", t);
  }
  return 0;
}

/* ---- messages ---- */

static json_t *sent_json(const queue_sent *m)
{
  json_t *o = json_pack("{s:s, s:s}", "MD5OfMessageBody", m->md5_body, "MessageId",
                        m->message_id);
  if (m->md5_attrs[0] != '\0')
    json_object_set_new(o, "MD5OfMessageAttributes", json_string(m->md5_attrs));
  if (m->md5_sys_attrs[0] != '\0')
    json_object_set_new(o, "MD5OfMessageSystemAttributes", json_string(m->md5_sys_attrs));
  if (m->sequence_number[0] != '\0')
    json_object_set_new(o, "SequenceNumber", json_string(m->sequence_number));
  return o;
}

static int op_send(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  queue_send m;
  if (rc == 0)
    rc = parse_send(r->arena, in, &m, e);
  queue_sent sent;
  if (rc == 0)
    rc = queue_message_send(s->q, ref, &m, &sent, e);
  if (rc == 0)
    *out = sent_json(&sent);
  return rc;
}

static int op_send_batch(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  json_t *entries = NULL;
  int rc = queue_of(r, in, &ref, e);
  if (rc == 0)
    rc = batch_entries(in, "SendMessageBatchRequestEntry", &entries, e);
  if (rc != 0)
    return rc;
  size_t n = json_array_size(entries);
  queue_send *m = arena_alloc(r->arena, n * sizeof *m);
  queue_sent *sent = arena_alloc(r->arena, n * sizeof *sent);
  err *errs = arena_alloc(r->arena, n * sizeof *errs);
  err *pre = arena_alloc(r->arena, n * sizeof *pre);
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    parse_send(r->arena, json_array_get(entries, i), &m[i], &pre[i]);
    total += m[i].body_len;
    for (size_t k = 0; k < m[i].nattrs; k++)
      total += strlen(m[i].attrs[k].name) + (m[i].attrs[k].type ? strlen(m[i].attrs[k].type) : 0) +
               (m[i].attrs[k].value ? strlen(m[i].attrs[k].value) : m[i].attrs[k].bin_len);
  }
  if (total > QUEUE_MAX_MESSAGE)
    return err_set(e, SQS_ERR_BATCH_TOO_LONG, "Batch requests cannot be longer than %d bytes. "
                   "You have sent %zu bytes.", QUEUE_MAX_MESSAGE, total);
  /* entries that failed to parse are sent as empty bodies: replaced below */
  for (size_t i = 0; i < n; i++)
    if (pre[i].code != 0)
      m[i] = (queue_send){.delay_seconds = -1};
  rc = queue_message_send_batch(s->q, ref, m, n, sent, errs, e);
  if (rc != 0)
    return rc;
  json_t *ok = json_array();
  json_t *failed = json_array();
  for (size_t i = 0; i < n; i++) {
    const char *id = in_str(json_array_get(entries, i), "Id");
    const err *ee = pre[i].code != 0 ? &pre[i] : &errs[i];
    if (ee->code != 0) {
      json_array_append_new(failed, failed_entry(id, ee));
    } else {
      json_t *o = sent_json(&sent[i]);
      json_object_set_new(o, "Id", json_string(id));
      json_array_append_new(ok, o);
    }
  }
  *out = json_pack("{s:o, s:o}", "Successful", ok, "Failed", failed);
  return 0;
}

static bool name_wanted(const char **names, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++) {
    if (strcmp(names[i], "All") == 0 || strcmp(names[i], ".*") == 0 ||
        strcmp(names[i], name) == 0)
      return true;
    size_t l = strlen(names[i]);
    if (l > 2 && strcmp(names[i] + l - 2, ".*") == 0 && strncmp(names[i], name, l - 1) == 0)
      return true;
  }
  return false;
}

static json_t *message_json(arena *a, const queue_message *m, const char **sys, size_t nsys,
                            const char **user, size_t nuser)
{
  json_t *o = json_pack("{s:s, s:s, s:s, s:s%}", "MessageId", m->message_id, "ReceiptHandle",
                        m->receipt_handle, "MD5OfBody", m->md5_body, "Body", m->body,
                        m->body_len);
  json_t *attrs = json_object();
  struct {
    const char *name;
    const char *value;
  } sa[] = {
      {"SenderId", m->sender_id},
      {"SentTimestamp", arena_sprintf(a, "%lld", (long long)m->sent_ms)},
      {"ApproximateReceiveCount", arena_sprintf(a, "%u", m->receive_count)},
      {"ApproximateFirstReceiveTimestamp",
       arena_sprintf(a, "%lld", (long long)m->first_receive_ms)},
      {"SequenceNumber", m->sequence_number},
      {"MessageDeduplicationId", m->dedup_id},
      {"MessageGroupId", m->group_id},
      {"AWSTraceHeader", m->trace_header},
  };
  for (size_t i = 0; i < sizeof sa / sizeof sa[0]; i++)
    if (sa[i].value != NULL && (in_list(sys, nsys, "All") || in_list(sys, nsys, sa[i].name)))
      json_object_set_new(attrs, sa[i].name, json_string(sa[i].value));
  if (json_object_size(attrs) > 0)
    json_object_set_new(o, "Attributes", attrs);
  else
    json_decref(attrs);
  queue_attr *picked = arena_alloc(a, (m->nattrs + 1) * sizeof *picked);
  size_t np = 0;
  json_t *ma = json_object();
  for (size_t i = 0; i < m->nattrs; i++) {
    const queue_attr *at = &m->attrs[i];
    if (!name_wanted(user, nuser, at->name))
      continue;
    picked[np++] = *at;
    json_t *v = json_pack("{s:s}", "DataType", at->type);
    if (at->bin != NULL) {
      char *b64 = arena_alloc(a, base64_encoded_len(at->bin_len));
      base64_encode(at->bin, at->bin_len, b64);
      json_object_set_new(v, "BinaryValue", json_string(b64));
    } else {
      json_object_set_new(v, "StringValue", json_string(at->value ? at->value : ""));
    }
    json_object_set_new(ma, at->name, v);
  }
  if (np > 0) {
    char md5[33];
    queue_md5_attrs(picked, np, md5);
    json_object_set_new(o, "MD5OfMessageAttributes", json_string(md5));
    json_object_set_new(o, "MessageAttributes", ma);
  } else {
    json_decref(ma);
  }
  return o;
}

/* The ReceiveMessage result for msgs, as the request asked for them. */
static json_t *receive_result(http_req *r, json_t *in, queue_message *msgs, size_t n)
{
  const char **sys = NULL, **sys2 = NULL, **user = NULL;
  size_t nsys = 0, nsys2 = 0, nuser = 0;
  err ignore = {0};
  str_list(r->arena, json_object_get(in, "AttributeNames"), &sys, &nsys, &ignore, "");
  str_list(r->arena, json_object_get(in, "MessageSystemAttributeNames"), &sys2, &nsys2, &ignore,
           "");
  str_list(r->arena, json_object_get(in, "MessageAttributeNames"), &user, &nuser, &ignore, "");
  const char **all = arena_alloc(r->arena, (nsys + nsys2 + 1) * sizeof *all);
  for (size_t i = 0; i < nsys; i++)
    all[i] = sys[i];
  for (size_t i = 0; i < nsys2; i++)
    all[nsys + i] = sys2[i];
  json_t *out = json_object();
  if (n > 0) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(arr, message_json(r->arena, &msgs[i], all, nsys + nsys2, user,
                                              nuser));
    json_object_set_new(out, "Messages", arr);
  }
  return out;
}

static void waitst_free(waitst *w)
{
  free(w->queue_ref);
  free(w);
}

/* Completes a parked ReceiveMessage (invariant 1), on the queue part's
 * committer thread. */
static void poll_done(void *ctx, int rc, queue_message *msgs, size_t n, const err *e)
{
  waitst *w = ctx;
  sqs *s = w->s;
  pthread_mutex_lock(&s->mu);
  w->finished = true;
  http_req *r = w->req;
  if (r == NULL) {
    if (rc == 0 && n > 0)
      queue_message_release(s->q, w->queue_ref, msgs, n);
    pthread_mutex_unlock(&s->mu);
    waitst_free(w);
    return;
  }
  if (rc == 0 && n > 0 && http_req_client_gone(r)) {
    /* invariant (4): nobody would read them */
    queue_message_release(s->q, w->queue_ref, msgs, n);
    n = 0;
  }
  if (rc == 0)
    write_result(r, w->call, receive_result(r, w->call->in, msgs, n));
  else
    write_error(r, w->call->json, e);
  http_req_resume(r);
  pthread_mutex_unlock(&s->mu);
}

static int op_receive(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  if (rc != 0)
    return rc;
  long max = 1, vt = -1, wait = -1;
  bool present;
  if ((rc = in_int(in, "MaxNumberOfMessages", 1, QUEUE_MAX_BATCH, &max, &present, e)) != 0 ||
      (rc = in_int(in, "VisibilityTimeout", 0, QUEUE_MAX_VISIBILITY, &vt, &present, e)) != 0)
    return rc;
  if (!present)
    vt = -1;
  if ((rc = in_int(in, "WaitTimeSeconds", 0, QUEUE_MAX_WAIT_SECONDS, &wait, &present, e)) != 0)
    return rc;
  queue_info info;
  if ((rc = queue_lookup(s->q, ref, r->arena, &info, e)) != 0)
    return rc;
  if (!present)
    wait = info.receive_wait_seconds;
  queue_receive rq = {.max = (uint32_t)max, .visibility_timeout = (int)vt,
                      .wait_seconds = (int)wait};
  queue_message *msgs = NULL;
  size_t n = 0;
  queue_poll *poll = NULL;
  if (wait == 0) {
    /* invariant 2: this may wait for the committer, so no s->mu here */
    rc = queue_poll_start(s->q, ref, &rq, r->arena, &msgs, &n, NULL, NULL, &poll, e);
    if (rc == 0)
      *out = receive_result(r, in, msgs, n);
    return rc;
  }
  waitst *w = xcalloc(1, sizeof *w);
  w->s = s;
  w->req = r;
  w->call = c;
  w->queue_ref = xstrdup(ref);
  pthread_mutex_lock(&s->mu);
  rc = queue_poll_start(s->q, ref, &rq, r->arena, &msgs, &n, poll_done, w, &w->poll, e);
  if (rc != 0 || w->poll == NULL) {
    pthread_mutex_unlock(&s->mu);
    waitst_free(w);
    if (rc == 0)
      *out = receive_result(r, in, msgs, n);
    return rc;
  }
  c->w = w;
  http_req_park(r);
  pthread_mutex_unlock(&s->mu);
  return SQS_PARKED;
}

static int op_delete_message(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out,
                             err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  if (rc != 0)
    return rc;
  const char *h = in_str(in, "ReceiptHandle");
  if (h == NULL)
    return err_set(e, QUEUE_ERR_MISSING, "The request must contain the parameter "
                   "ReceiptHandle.");
  return queue_message_delete(s->q, ref, h, e);
}

static int op_visibility(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  const char *ref = NULL;
  int rc = queue_of(r, in, &ref, e);
  if (rc != 0)
    return rc;
  const char *h = in_str(in, "ReceiptHandle");
  if (h == NULL)
    return err_set(e, QUEUE_ERR_MISSING, "The request must contain the parameter "
                   "ReceiptHandle.");
  long vt = 0;
  bool present;
  if ((rc = in_int(in, "VisibilityTimeout", 0, QUEUE_MAX_VISIBILITY, &vt, &present, e)) != 0)
    return rc;
  if (!present)
    return err_set(e, QUEUE_ERR_MISSING, "The request must contain the parameter "
                   "VisibilityTimeout.");
  return queue_message_visibility(s->q, ref, h, (uint32_t)vt, e);
}

static int handles_batch(sqs *s, http_req *r, json_t *in, bool visibility, json_t **out,
                         err *e)
{
  const char *ref = NULL;
  json_t *entries = NULL;
  int rc = queue_of(r, in, &ref, e);
  if (rc == 0)
    rc = batch_entries(in, visibility ? "ChangeMessageVisibilityBatchRequestEntry"
                                      : "DeleteMessageBatchRequestEntry", &entries, e);
  if (rc != 0)
    return rc;
  size_t n = json_array_size(entries);
  const char **handles = arena_alloc(r->arena, n * sizeof *handles);
  uint32_t *secs = arena_alloc(r->arena, n * sizeof *secs);
  err *errs = arena_alloc(r->arena, n * sizeof *errs);
  err *pre = arena_alloc(r->arena, n * sizeof *pre);
  for (size_t i = 0; i < n; i++) {
    json_t *en = json_array_get(entries, i);
    handles[i] = in_str(en, "ReceiptHandle");
    if (handles[i] == NULL) {
      err_set(&pre[i], QUEUE_ERR_MISSING, "The request must contain the parameter "
              "ReceiptHandle.");
      handles[i] = "";
    }
    long vt = 0;
    bool present = false;
    if (visibility && pre[i].code == 0 &&
        in_int(en, "VisibilityTimeout", 0, QUEUE_MAX_VISIBILITY, &vt, &present, &pre[i]) == 0 &&
        !present)
      err_set(&pre[i], QUEUE_ERR_MISSING, "The request must contain the parameter "
              "VisibilityTimeout.");
    secs[i] = (uint32_t)vt;
  }
  rc = visibility ? queue_message_visibility_batch(s->q, ref, handles, secs, n, errs, e)
                  : queue_message_delete_batch(s->q, ref, handles, n, errs, e);
  if (rc != 0)
    return rc;
  json_t *ok = json_array();
  json_t *failed = json_array();
  for (size_t i = 0; i < n; i++) {
    const char *id = in_str(json_array_get(entries, i), "Id");
    const err *ee = pre[i].code != 0 ? &pre[i] : &errs[i];
    if (ee->code != 0)
      json_array_append_new(failed, failed_entry(id, ee));
    else
      json_array_append_new(ok, json_pack("{s:s}", "Id", id));
  }
  *out = json_pack("{s:o, s:o}", "Successful", ok, "Failed", failed);
  return 0;
}

static int op_delete_batch(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e)
{
  return handles_batch(s, r, in, false, out, e);
}

static int op_visibility_batch(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out,
                               err *e)
{
  return handles_batch(s, r, in, true, out, e);
}

/* ---- dispatch ---- */

typedef int (*op_fn)(sqs *s, http_req *r, sqs_call *c, json_t *in, json_t **out, err *e);

static const struct {
  const char *name;
  op_fn fn;
} ops[] = {
    {"CreateQueue", op_create_queue},
    {"GetQueueUrl", op_get_queue_url},
    {"ListQueues", op_list_queues},
    {"DeleteQueue", op_delete_queue},
    {"PurgeQueue", op_purge_queue},
    {"GetQueueAttributes", op_get_attrs},
    {"SetQueueAttributes", op_set_attrs},
    {"ListDeadLetterSourceQueues", op_dlq_sources},
    {"TagQueue", op_tag},
    {"UntagQueue", op_untag},
    {"ListQueueTags", op_list_tags},
    {"SendMessage", op_send},
    {"SendMessageBatch", op_send_batch},
    {"ReceiveMessage", op_receive},
    {"DeleteMessage", op_delete_message},
    {"DeleteMessageBatch", op_delete_batch},
    {"ChangeMessageVisibility", op_visibility},
    {"ChangeMessageVisibilityBatch", op_visibility_batch},
};

/* Asks api/iam.c whether a caller who is not root may run the action:
 * sqs:ACTION (a batch as its single form) on the queue's ARN. */
static int authorize(http_req *r, sqs_call *c, err *e)
{
  char action[64];
  snprintf(action, sizeof action, "sqs:%s", c->action);
  char *batch = strstr(action, "Batch");
  if (batch != NULL && batch[5] == '\0')
    *batch = '\0';
  const char *name = in_str(c->in, "QueueName");
  const char *url = in_str(c->in, "QueueUrl");
  if (url != NULL && *url != '\0')
    name = strrchr(url, '/') + 1;
  else if (name == NULL && r->path != NULL && strchr(r->path + 1, '/') != NULL)
    name = strrchr(r->path, '/') + 1;
  const char *res = strcmp(c->action, "ListQueues") == 0 || name == NULL
                        ? "*"
                        : arena_sprintf(r->arena, "arn:aws:sqs:" API_REGION ":" API_ACCOUNT_ID ":%s",
                                        name);
  return api_authorize(r, action, res, e);
}

static int sqs_prepare(void *ctx, http_req *r, err *e)
{
  sqs_call *c = arena_alloc(r->arena, sizeof *c);
  r->svc = c;
  c->json = wants_json(r);
  http_req_body_max(r, SQS_BODY_MAX);
  if (!r->authenticated)
    return err_set(e, ERR_DENIED, "anonymous access is not allowed: sign the request with "
                   "SigV4");
  return 0;
}

/* The input of a request, in the JSON protocol's shape. */
static int parse_input(http_req *r, sqs_call *c, err *e)
{
  if (c->json) {
    c->action = http_req_header(r, "x-amz-target") + strlen("AmazonSQS.");
    if (r->body.len == 0) {
      c->in = json_object();
      return 0;
    }
    json_error_t je;
    c->in = json_loadb(r->body.data, r->body.len, 0, &je);
    if (!json_is_object(c->in))
      return err_set(e, ERR_MALFORMED_XML, "the request body is not a JSON object: %s",
                     je.text);
    return 0;
  }
  str_pair *p;
  size_t n;
  int rc = query_params(r, &p, &n, e);
  if (rc != 0)
    return rc;
  json_t *tree = json_object();
  for (size_t i = 0; i < n; i++) {
    if (strcmp(p[i].name, "Action") == 0)
      c->action = p[i].value;
    else
      aws_query_tree_set(tree, p[i].name, p[i].value);
  }
  c->in = normalise(tree);
  json_decref(tree);
  if (c->action == NULL)
    return err_set(e, QUEUE_ERR_MISSING, "The request must contain the parameter Action.");
  return 0;
}

static void sqs_handle(void *ctx, http_req *r)
{
  sqs *s = ctx;
  sqs_call *c = r->svc;
  err e = {0};
  int rc = parse_input(r, c, &e);
  op_fn fn = NULL;
  if (rc == 0) {
    for (size_t i = 0; i < sizeof ops / sizeof ops[0] && fn == NULL; i++)
      if (strcmp(ops[i].name, c->action) == 0) {
        fn = ops[i].fn;
        r->op = ops[i].name;
      }
    if (fn == NULL)
      rc = err_set(&e, SQS_ERR_ACTION, "The action %s is not valid for this endpoint.",
                   c->action);
  }
  if (rc == 0 && !r->admin)
    rc = authorize(r, c, &e);
  json_t *out = NULL;
  if (rc == 0)
    rc = fn(s, r, c, c->in, &out, &e);
  if (rc == SQS_PARKED)
    return;
  if (rc != 0) {
    json_decref(out);
    write_error(r, c->json, &e);
    return;
  }
  write_result(r, c, out != NULL ? out : json_object());
}

static void sqs_cleanup(void *ctx, http_req *r)
{
  sqs *s = ctx;
  sqs_call *c = r->svc;
  if (c == NULL)
    return;
  if (c->w != NULL) {
    pthread_mutex_lock(&s->mu);
    waitst *w = c->w;
    w->req = NULL;
    bool free_it = w->finished || queue_poll_cancel(s->q, w->poll);
    pthread_mutex_unlock(&s->mu);
    if (free_it)
      waitst_free(w);
    c->w = NULL;
  }
  json_decref(c->in);
  c->in = NULL;
}

http_service *sqs_service_new(queue_system *q)
{
  sqs *s = xcalloc(1, sizeof *s);
  s->q = q;
  pthread_mutex_init(&s->mu, NULL);
  s->svc = (http_service){
      .name = "sqs",
      .ctx = s,
      .prepare = sqs_prepare,
      .handle = sqs_handle,
      .error = sqs_error,
      .cleanup = sqs_cleanup,
      .unsigned_body_max = SQS_BODY_MAX,
  };
  return &s->svc;
}

http_service *sqs_service_free(http_service *svc)
{
  if (svc != NULL) {
    sqs *s = (sqs *)svc;
    pthread_mutex_destroy(&s->mu);
    free(s);
  }
  return NULL;
}
