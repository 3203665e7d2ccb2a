/* api/sns.c -- the SNS endpoint: SNS's query protocol onto the topics of
 * queue/queue.h, answered in SNS's XML.
 *
 * Why by hand: SNS's query input nests maps and lists in its own way
 * (Attributes.entry.N.key/value, Tags.member.N.Key/Value,
 * MessageAttributes.entry.N.Name/Value.*, PublishBatchRequestEntries.member.N.*),
 * and its answers are small; the query protocol's parameter tree (dotted
 * names split into nested objects, api/query_protocol.h) and a few
 * accessors over it are all it takes.
 *
 * Operations: CreateTopic, DeleteTopic, ListTopics, GetTopicAttributes,
 * SetTopicAttributes, Subscribe, ConfirmSubscription, Unsubscribe,
 * ListSubscriptions, ListSubscriptionsByTopic, GetSubscriptionAttributes,
 * SetSubscriptionAttributes, Publish, PublishBatch, TagResource,
 * UntagResource, ListTagsForResource. Others answer InvalidAction.
 *
 * Errors: <ErrorResponse><Error><Type/><Code/><Message/></Error> with SNS's
 * codes: NotFound (404) for topics and subscriptions, InvalidParameter
 * (400) for bad input, the batch codes for PublishBatch.
 *
 * Invariants:
 *   (1) Every answer is written by write_result or write_error; an op only
 *       appends its Result members.
 *
 * Start reading at sns_handle() and the ops[] table.
 */
#include "api/sns.h"

#include "api/iam.h"
#include "api/query_protocol.h"
#include "aws/errors.h"
#include "base/hash.h"
#include "base/mem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNS_NS "http://sns.amazonaws.com/doc/2010-03-31/"
#define SNS_BODY_MAX (4u << 20)

#define SNS_ERR_ACTION (-1251)
#define SNS_ERR_EMPTY_BATCH (-1252)
#define SNS_ERR_TOO_MANY (-1253)
#define SNS_ERR_NOT_DISTINCT (-1254)
#define SNS_ERR_BAD_ENTRY_ID (-1255)

typedef struct sns {
  http_service svc;
  queue_system *q;
} sns;

typedef struct sns_call {
  const char *action;
  json_t *in;           /* the parameter tree */
} sns_call;

/* ---- errors ---- */

static void error_code(int code, int *status, const char **name)
{
  *status = 400;
  switch (code) {
  case QUEUE_ERR_NO_TOPIC:
  case QUEUE_ERR_NO_SUB:
  case ERR_NOT_FOUND:
    *status = 404;
    *name = "NotFound";
    return;
  case ERR_INVALID:
  case ERR_INVALID_REQUEST:
  case QUEUE_ERR_FILTER:
  case QUEUE_ERR_TOKEN:
  case QUEUE_ERR_MISSING:
  case QUEUE_ERR_ATTR_NAME:
  case QUEUE_ERR_CONTENTS:
  case ERR_ENTITY_TOO_LARGE:
    *name = "InvalidParameter";
    return;
  case SNS_ERR_ACTION:
    *name = "InvalidAction";
    return;
  case SNS_ERR_EMPTY_BATCH:
    *name = "EmptyBatchRequest";
    return;
  case SNS_ERR_TOO_MANY:
    *name = "TooManyEntriesInBatchRequest";
    return;
  case SNS_ERR_NOT_DISTINCT:
    *name = "BatchEntryIdsNotDistinct";
    return;
  case SNS_ERR_BAD_ENTRY_ID:
    *name = "InvalidBatchEntryId";
    return;
  case ERR_SIGNATURE:
  case ERR_EXPIRED:
  case ERR_TIME_SKEWED:
    *status = 403;
    *name = "SignatureDoesNotMatch";
    return;
  case ERR_UNKNOWN_ACCESS_KEY:
    *status = 403;
    *name = "InvalidClientTokenId";
    return;
  case ERR_DENIED:
    *status = 403;
    *name = "AuthorizationError";
    return;
  case ERR_AUTH_MALFORMED:
    *name = "IncompleteSignature";
    return;
  case ERR_UNAVAILABLE:
    *status = 503;
    *name = "ServiceUnavailable";
    return;
  default:
    *status = 500;
    *name = "InternalError";
    return;
  }
}

static void write_error(http_req *r, const err *e)
{
  int status;
  const char *code;
  error_code(e->code, &status, &code);
  r->nresp_headers = 0;
  buf_reset(&r->resp_body);
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "text/xml");
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  aws_error_query_xml(&r->resp_body, SNS_NS, status, code, e->msg[0] != '\0' ? e->msg : code,
                      false, r->request_id);
}

static void sns_error(void *ctx, http_req *r, const err *e)
{
  write_error(r, e);
}

/* ---- the parameter tree ---- */

static const char *in_str(json_t *o, const char *key)
{
  return json_string_value(json_object_get(o, key));
}

/* The numbered children of o[key][sub] ("entry" or "member"), in order. */
static json_t *numbered(json_t *o, const char *key, const char *sub)
{
  return aws_query_numbered(json_object_get(json_object_get(o, key), sub));
}

/* Pairs of o[key].<sub>.N.<kname>/<vname>. */
static void pairs(arena *a, json_t *o, const char *key, const char *sub, const char *kname,
                  const char *vname, str_pair **out, size_t *n)
{
  json_t *items = numbered(o, key, sub);
  *n = 0;
  *out = arena_alloc(a, (json_array_size(items) + 1) * sizeof **out);
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) {
    const char *k = in_str(it, kname);
    if (k == NULL)
      continue;
    const char *v = in_str(it, vname);
    (*out)[*n].name = arena_strdup(a, k);
    (*out)[*n].value = arena_strdup(a, v != NULL ? v : "");
    (*n)++;
  }
  json_decref(items);
}

static int message_attrs(arena *a, json_t *o, queue_attr **out, size_t *n, err *e)
{
  json_t *items = numbered(o, "MessageAttributes", "entry");
  *n = 0;
  *out = arena_alloc(a, (json_array_size(items) + 1) * sizeof **out);
  size_t i;
  json_t *it;
  int rc = 0;
  json_array_foreach(items, i, it) {
    const char *name = in_str(it, "Name");
    json_t *v = json_object_get(it, "Value");
    if (name == NULL) {
      rc = err_set(e, ERR_INVALID, "Invalid parameter: MessageAttributes: attribute name "
                   "missing");
      break;
    }
    queue_attr *at = &(*out)[(*n)++];
    at->name = arena_strdup(a, name);
    const char *type = in_str(v, "DataType");
    const char *sv = in_str(v, "StringValue");
    const char *bv = in_str(v, "BinaryValue");
    at->type = type != NULL ? arena_strdup(a, type) : NULL;
    at->value = sv != NULL ? arena_strdup(a, sv) : NULL;
    if (bv != NULL) {
      size_t len = strlen(bv);
      uint8_t *bin = arena_alloc(a, len + 1);
      long got = base64_decode(bv, len, bin, len + 1);
      if (got < 0) {
        rc = err_set(e, ERR_INVALID, "Invalid parameter: MessageAttributes: '%s' is not base64",
                     name);
        break;
      }
      at->bin = bin;
      at->bin_len = (size_t)got;
    }
  }
  json_decref(items);
  return rc;
}

/* ---- output ---- */

static void write_result(http_req *r, const char *action, const buf *result)
{
  http_resp_status(r, 200);
  http_resp_header(r, "Content-Type", "text/xml");
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  buf *b = &r->resp_body;
  aws_query_response_begin(b, SNS_NS, action, result != NULL);
  if (result != NULL)
    buf_append(b, result->data != NULL ? result->data : "", result->len);
  aws_query_response_end(b, action, result != NULL, r->request_id);
}

static void xml_attributes(buf *b, const str_pair *p, size_t n)
{
  buf_puts(b, "<Attributes>");
  for (size_t i = 0; i < n; i++) {
    buf_puts(b, "<entry>");
    buf_xml_elem(b, "key", p[i].name);
    buf_xml_elem(b, "value", p[i].value != NULL ? p[i].value : "");
    buf_puts(b, "</entry>");
  }
  buf_puts(b, "</Attributes>");
}

static void xml_tags(buf *b, const str_pair *p, size_t n)
{
  buf_puts(b, "<Tags>");
  for (size_t i = 0; i < n; i++) {
    buf_puts(b, "<member>");
    buf_xml_elem(b, "Key", p[i].name);
    buf_xml_elem(b, "Value", p[i].value != NULL ? p[i].value : "");
    buf_puts(b, "</member>");
  }
  buf_puts(b, "</Tags>");
}

/* ---- operations: each fills out (Result members) or returns an error ---- */

typedef int (*op_fn)(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e);

static const char *need(json_t *in, const char *key, err *e)
{
  const char *v = in_str(in, key);
  if (v == NULL || *v == '\0')
    err_set(e, ERR_INVALID, "Invalid parameter: %s", key);
  return v != NULL && *v != '\0' ? v : NULL;
}

static int op_create_topic(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *name = need(in, "Name", e);
  if (name == NULL)
    return e->code;
  str_pair *attrs, *tags;
  size_t nattrs, ntags;
  pairs(r->arena, in, "Attributes", "entry", "key", "value", &attrs, &nattrs);
  pairs(r->arena, in, "Tags", "member", "Key", "Value", &tags, &ntags);
  queue_topic_info t;
  int rc = queue_topic_create(s->q, name, attrs, nattrs, tags, ntags, r->arena, &t, e);
  if (rc == 0)
    buf_xml_elem(out, "TopicArn", t.arn);
  return rc;
}

static int op_delete_topic(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = need(in, "TopicArn", e);
  *result = false;
  return arn != NULL ? queue_topic_delete(s->q, arn, e) : e->code;
}

static int op_list_topics(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char **arns;
  size_t n;
  const char *next;
  int rc = queue_topic_list(s->q, in_str(in, "NextToken"), 100, r->arena, &arns, &n, &next, e);
  if (rc != 0)
    return rc;
  buf_puts(out, "<Topics>");
  for (size_t i = 0; i < n; i++) {
    buf_puts(out, "<member>");
    buf_xml_elem(out, "TopicArn", arns[i]);
    buf_puts(out, "</member>");
  }
  buf_puts(out, "</Topics>");
  if (next != NULL)
    buf_xml_elem(out, "NextToken", next);
  return 0;
}

static int op_get_topic_attrs(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = need(in, "TopicArn", e);
  if (arn == NULL)
    return e->code;
  str_pair *p;
  size_t n;
  int rc = queue_topic_attrs_get(s->q, arn, r->arena, &p, &n, e);
  if (rc == 0)
    xml_attributes(out, p, n);
  return rc;
}

static int op_set_topic_attrs(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = need(in, "TopicArn", e);
  const char *name = arn != NULL ? need(in, "AttributeName", e) : NULL;
  *result = false;
  if (name == NULL)
    return e->code;
  return queue_topic_attr_set(s->q, arn, name, in_str(in, "AttributeValue"), e);
}

static int op_subscribe(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = need(in, "TopicArn", e);
  const char *protocol = arn != NULL ? need(in, "Protocol", e) : NULL;
  if (protocol == NULL)
    return e->code;
  str_pair *attrs;
  size_t nattrs;
  pairs(r->arena, in, "Attributes", "entry", "key", "value", &attrs, &nattrs);
  queue_sub_info sub;
  int rc = queue_sub_create(s->q, arn, protocol, in_str(in, "Endpoint"), attrs, nattrs, r->arena,
                            &sub, e);
  if (rc != 0)
    return rc;
  const char *ret = in_str(in, "ReturnSubscriptionArn");
  bool want_arn = ret != NULL && str_ieq(ret, "true");
  buf_xml_elem(out, "SubscriptionArn",
               sub.confirmed || want_arn ? sub.arn : "pending confirmation");
  return 0;
}

static int op_confirm(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = need(in, "TopicArn", e);
  const char *token = arn != NULL ? need(in, "Token", e) : NULL;
  if (token == NULL)
    return e->code;
  queue_sub_info sub;
  int rc = queue_sub_confirm(s->q, arn, token, r->arena, &sub, e);
  if (rc == 0)
    buf_xml_elem(out, "SubscriptionArn", sub.arn);
  return rc;
}

static int op_unsubscribe(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = need(in, "SubscriptionArn", e);
  *result = false;
  return arn != NULL ? queue_sub_delete(s->q, arn, e) : e->code;
}

static int list_subs(sns *s, http_req *r, const char *topic, json_t *in, buf *out, err *e)
{
  queue_sub_info *subs;
  size_t n;
  const char *next;
  int rc = queue_sub_list(s->q, topic, in_str(in, "NextToken"), 100, r->arena, &subs, &n, &next,
                          e);
  if (rc != 0)
    return rc;
  buf_puts(out, "<Subscriptions>");
  for (size_t i = 0; i < n; i++) {
    buf_puts(out, "<member>");
    buf_xml_elem(out, "TopicArn", subs[i].topic_arn);
    buf_xml_elem(out, "Protocol", subs[i].protocol);
    buf_xml_elem(out, "SubscriptionArn", subs[i].arn);
    buf_xml_elem(out, "Owner", QUEUE_ACCOUNT);
    buf_xml_elem(out, "Endpoint", subs[i].endpoint);
    buf_puts(out, "</member>");
  }
  buf_puts(out, "</Subscriptions>");
  if (next != NULL)
    buf_xml_elem(out, "NextToken", next);
  return 0;
}

static int op_list_subs(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  return list_subs(s, r, NULL, in, out, e);
}

static int op_list_subs_by_topic(sns *s, http_req *r, json_t *in, buf *out, bool *result,
                                 err *e)
{
  const char *arn = need(in, "TopicArn", e);
  return arn != NULL ? list_subs(s, r, arn, in, out, e) : e->code;
}

static int op_get_sub_attrs(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = need(in, "SubscriptionArn", e);
  if (arn == NULL)
    return e->code;
  str_pair *p;
  size_t n;
  int rc = queue_sub_attrs_get(s->q, arn, r->arena, &p, &n, e);
  if (rc == 0)
    xml_attributes(out, p, n);
  return rc;
}

static int op_set_sub_attrs(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = need(in, "SubscriptionArn", e);
  const char *name = arn != NULL ? need(in, "AttributeName", e) : NULL;
  *result = false;
  if (name == NULL)
    return e->code;
  return queue_sub_attr_set(s->q, arn, name, in_str(in, "AttributeValue"), e);
}

/* One Publish or one PublishBatch entry. */
static int parse_publish(arena *a, json_t *in, queue_publish *p, err *e)
{
  memset(p, 0, sizeof *p);
  p->message = in_str(in, "Message");
  if (p->message == NULL)
    return err_set(e, ERR_INVALID, "Invalid parameter: Message");
  p->len = strlen(p->message);
  p->subject = in_str(in, "Subject");
  p->structure = in_str(in, "MessageStructure");
  p->group_id = in_str(in, "MessageGroupId");
  p->dedup_id = in_str(in, "MessageDeduplicationId");
  queue_attr *attrs;
  int rc = message_attrs(a, in, &attrs, &p->nattrs, e);
  p->attrs = attrs;
  return rc;
}

static const char *topic_of(json_t *in, err *e)
{
  const char *arn = in_str(in, "TopicArn");
  if (arn == NULL)
    arn = in_str(in, "TargetArn");
  if (arn == NULL || *arn == '\0') {
    err_set(e, ERR_INVALID, "Invalid parameter: TopicArn or TargetArn Reason: no value for "
            "required parameter");
    return NULL;
  }
  return arn;
}

static int op_publish(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = topic_of(in, e);
  if (arn == NULL)
    return e->code;
  queue_publish p;
  int rc = parse_publish(r->arena, in, &p, e);
  if (rc != 0)
    return rc;
  char id[QUEUE_ID_MAX];
  char seq[24];
  rc = queue_topic_publish(s->q, arn, &p, id, seq, e);
  if (rc != 0)
    return rc;
  buf_xml_elem(out, "MessageId", id);
  if (seq[0] != '\0')
    buf_xml_elem(out, "SequenceNumber", seq);
  return 0;
}

static int op_publish_batch(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = topic_of(in, e);
  if (arn == NULL)
    return e->code;
  json_t *items = numbered(in, "PublishBatchRequestEntries", "member");
  size_t n = json_array_size(items);
  int rc = 0;
  if (n == 0)
    rc = err_set(e, SNS_ERR_EMPTY_BATCH, "The batch request doesn't contain any entries");
  else if (n > QUEUE_MAX_BATCH)
    rc = err_set(e, SNS_ERR_TOO_MANY, "The batch request contains more entries than permissible");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *id = in_str(json_array_get(items, i), "Id");
    size_t len = id != NULL ? strlen(id) : 0;
    bool ok = len >= 1 && len <= 80;
    for (size_t k = 0; ok && k < len; k++)
      ok = (id[k] >= 'a' && id[k] <= 'z') || (id[k] >= 'A' && id[k] <= 'Z') ||
           (id[k] >= '0' && id[k] <= '9') || id[k] == '-' || id[k] == '_';
    if (!ok)
      rc = err_set(e, SNS_ERR_BAD_ENTRY_ID, "The Id of a batch entry in a batch request doesn't "
                   "abide by the specification");
    for (size_t k = 0; rc == 0 && k < i; k++)
      if (strcmp(id, in_str(json_array_get(items, k), "Id")) == 0)
        rc = err_set(e, SNS_ERR_NOT_DISTINCT, "Two or more batch entries in the request have "
                     "the same Id");
  }
  if (rc != 0) {
    json_decref(items);
    return rc;
  }
  queue_publish *p = arena_alloc(r->arena, n * sizeof *p);
  err *pre = arena_alloc(r->arena, n * sizeof *pre);
  err *errs = arena_alloc(r->arena, n * sizeof *errs);
  char (*ids)[QUEUE_ID_MAX] = arena_alloc(r->arena, n * sizeof *ids);
  for (size_t i = 0; i < n; i++)
    if (parse_publish(r->arena, json_array_get(items, i), &p[i], &pre[i]) != 0)
      p[i] = (queue_publish){0};  /* fails its own check: empty message */
  rc = queue_topic_publish_batch(s->q, arn, p, n, ids, errs, e);
  if (rc == 0) {
    buf_puts(out, "<Successful>");
    for (size_t i = 0; i < n; i++) {
      if (pre[i].code != 0 || errs[i].code != 0)
        continue;
      buf_puts(out, "<member>");
      buf_xml_elem(out, "Id", in_str(json_array_get(items, i), "Id"));
      buf_xml_elem(out, "MessageId", ids[i]);
      buf_puts(out, "</member>");
    }
    buf_puts(out, "</Successful><Failed>");
    for (size_t i = 0; i < n; i++) {
      const err *ee = pre[i].code != 0 ? &pre[i] : &errs[i];
      if (ee->code == 0)
        continue;
      int status;
      const char *code;
      error_code(ee->code, &status, &code);
      buf_puts(out, "<member>");
      buf_xml_elem(out, "Id", in_str(json_array_get(items, i), "Id"));
      buf_xml_elem(out, "Code", code);
      buf_xml_elem(out, "Message", ee->msg);
      buf_xml_elem(out, "SenderFault", status < 500 ? "true" : "false");
      buf_puts(out, "</member>");
    }
    buf_puts(out, "</Failed>");
  }
  json_decref(items);
  return rc;
}

static int op_tag(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = need(in, "ResourceArn", e);
  if (arn == NULL)
    return e->code;
  str_pair *tags;
  size_t n;
  pairs(r->arena, in, "Tags", "member", "Key", "Value", &tags, &n);
  return queue_topic_tags_set(s->q, arn, tags, n, e);
}

static int op_untag(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = need(in, "ResourceArn", e);
  if (arn == NULL)
    return e->code;
  json_t *items = numbered(in, "TagKeys", "member");
  size_t n = json_array_size(items);
  const char **keys = arena_alloc(r->arena, (n + 1) * sizeof *keys);
  for (size_t i = 0; i < n; i++)
    keys[i] = arena_strdup(r->arena, json_string_value(json_array_get(items, i)) ?
                                         json_string_value(json_array_get(items, i)) : "");
  json_decref(items);
  return queue_topic_tags_remove(s->q, arn, keys, n, e);
}

static int op_list_tags(sns *s, http_req *r, json_t *in, buf *out, bool *result, err *e)
{
  const char *arn = need(in, "ResourceArn", e);
  if (arn == NULL)
    return e->code;
  str_pair *tags;
  size_t n;
  int rc = queue_topic_tags_get(s->q, arn, r->arena, &tags, &n, e);
  if (rc == 0)
    xml_tags(out, tags, n);
  return rc;
}

static const struct {
  const char *name;
  op_fn fn;
} ops[] = {
    {"CreateTopic", op_create_topic},
    {"DeleteTopic", op_delete_topic},
    {"ListTopics", op_list_topics},
    {"GetTopicAttributes", op_get_topic_attrs},
    {"SetTopicAttributes", op_set_topic_attrs},
    {"Subscribe", op_subscribe},
    {"ConfirmSubscription", op_confirm},
    {"Unsubscribe", op_unsubscribe},
    {"ListSubscriptions", op_list_subs},
    {"ListSubscriptionsByTopic", op_list_subs_by_topic},
    {"GetSubscriptionAttributes", op_get_sub_attrs},
    {"SetSubscriptionAttributes", op_set_sub_attrs},
    {"Publish", op_publish},
    {"PublishBatch", op_publish_batch},
    {"TagResource", op_tag},
    {"UntagResource", op_untag},
    {"ListTagsForResource", op_list_tags},
};

/* Asks api/iam.c whether a caller who is not root may run the action:
 * sns:ACTION (PublishBatch as Publish) on the topic's ARN. */
static int authorize(http_req *r, sns_call *c, err *e)
{
  const char *action = strcmp(c->action, "PublishBatch") == 0
                           ? "sns:Publish"
                           : arena_sprintf(r->arena, "sns:%s", c->action);
  const char *res = in_str(c->in, "TopicArn");
  if (res == NULL)
    res = in_str(c->in, "TargetArn");
  if (res == NULL)
    res = in_str(c->in, "ResourceArn");
  const char *sub = in_str(c->in, "SubscriptionArn");
  if (res == NULL && sub != NULL) { /* TOPIC_ARN:ID */
    const char *colon = strrchr(sub, ':');
    res = colon != NULL ? arena_strndup(r->arena, sub, (size_t)(colon - sub)) : sub;
  }
  const char *name = in_str(c->in, "Name");
  if (res == NULL && name != NULL && strcmp(c->action, "CreateTopic") == 0)
    res = arena_sprintf(r->arena, "arn:aws:sns:" API_REGION ":" API_ACCOUNT_ID ":%s", name);
  return api_authorize(r, action, res != NULL ? res : "*", e);
}

static int sns_prepare(void *ctx, http_req *r, err *e)
{
  sns_call *c = arena_alloc(r->arena, sizeof *c);
  r->svc = c;
  http_req_body_max(r, SNS_BODY_MAX);
  if (!r->authenticated)
    return err_set(e, ERR_DENIED, "anonymous access is not allowed: sign the request with "
                   "SigV4");
  return 0;
}

static void sns_handle(void *ctx, http_req *r)
{
  sns *s = ctx;
  sns_call *c = r->svc;
  err e = {0};
  str_pair *p;
  size_t n;
  int rc = query_params(r, &p, &n, &e);
  if (rc == 0) {
    c->in = json_object();
    for (size_t i = 0; i < n; i++) {
      if (strcmp(p[i].name, "Action") == 0)
        c->action = p[i].value;
      else if (!str_starts(p[i].name, "X-Amz-"))
        aws_query_tree_set(c->in, p[i].name, p[i].value);
    }
    if (c->action == NULL)
      rc = err_set(&e, SNS_ERR_ACTION, "the request has no Action");
  }
  op_fn fn = NULL;
  for (size_t i = 0; rc == 0 && i < sizeof ops / sizeof ops[0] && fn == NULL; i++)
    if (strcmp(ops[i].name, c->action) == 0) {
      fn = ops[i].fn;
      r->op = ops[i].name;
    }
  if (rc == 0 && fn == NULL)
    rc = err_set(&e, SNS_ERR_ACTION, "Unrecognized action %s", c->action);
  if (rc == 0 && !r->admin)
    rc = authorize(r, c, &e);
  buf result;
  buf_init(&result, 64u << 20);
  bool has_result = true;
  if (rc == 0)
    rc = fn(s, r, c->in, &result, &has_result, &e);
  if (rc != 0)
    write_error(r, &e);
  else
    write_result(r, c->action, has_result ? &result : NULL);
  buf_release(&result);
}

static void sns_cleanup(void *ctx, http_req *r)
{
  sns_call *c = r->svc;
  if (c != NULL) {
    json_decref(c->in);
    c->in = NULL;
  }
}

http_service *sns_service_new(queue_system *q)
{
  sns *s = xcalloc(1, sizeof *s);
  s->q = q;
  s->svc = (http_service){
      .name = "sns",
      .ctx = s,
      .prepare = sns_prepare,
      .handle = sns_handle,
      .error = sns_error,
      .cleanup = sns_cleanup,
      .unsigned_body_max = SNS_BODY_MAX,
  };
  return &s->svc;
}

http_service *sns_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
