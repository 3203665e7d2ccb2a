/* api/s3control.c -- the S3 Control endpoint for Batch Operations jobs:
 * REST-XML under /v20180820/jobs onto batch/batch.h.
 *
 * Operations: CreateJob (POST /v20180820/jobs), ListJobs (GET, with
 * jobStatuses, nextToken, maxResults), DescribeJob (GET .../jobs/ID),
 * UpdateJobPriority (POST .../priority?priority=N), UpdateJobStatus (POST
 * .../status?requestedJobStatus=...&statusUpdateReason=...), and
 * Get/Put/DeleteJobTagging (.../tagging). Every other S3 Control path
 * answers NotImplemented. The account comes from x-amz-account-id.
 *
 * Requests are signed with the scope service "s3", so the S3 endpoint
 * hands every path starting with /v20180820/ here (api/s3.c). AWS's SDKs
 * put the account in front of the host ("{AccountId}." host prefix): a
 * client of tarn turns that off (README).
 *
 * Why a generic XML <-> JSON mapping: batch/ keeps records in the API's
 * own shapes; the few lists and maps of the job shapes are named in
 * lists[] and maps[] (their member element names as botocore's model has
 * them), everything else is a structure or a scalar.
 *
 * Errors: S3's REST-XML error document with the S3 Control exception
 * names (BadRequestException, NotFoundException, JobStatusException,
 * IdempotencyException, TooManyTagsException, ...).
 *
 * Invariants:
 *   (1) Bodies are bounded (S3CONTROL_BODY_MAX); a bad request changes
 *       nothing (batch/ checks everything before its one commit).
 *
 * Start reading at ctl_prepare() and routes[].
 */
#include "api/s3control.h"

#include "api/iam.h"
#include "aws/errors.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/text.h"
#include "base/xml.h"

#include <stdlib.h>
#include <string.h>

#define S3CONTROL_BODY_MAX (1u << 20)
#define S3CONTROL_NS "http://awss3control.amazonaws.com/doc/2018-08-20/"
#define S3CONTROL_PREFIX "/v20180820/"

typedef struct ctl {
  http_service svc;
  batch_system *b;
} ctl;

enum op_id { OP_CREATE, OP_LIST, OP_DESCRIBE, OP_PRIORITY, OP_STATUS, OP_TAGS_GET, OP_TAGS_PUT,
             OP_TAGS_DELETE };

typedef struct call {
  enum op_id op;
  const char *job;         /* the {id} of the path, or NULL */
  const char *account;
} call;

static const struct {
  const char *method;
  const char *tail;        /* after /v20180820/jobs: "", "/", "/priority", ... ("/" = /ID) */
  enum op_id op;
  const char *name;
  const char *action;
} routes[] = {
    {"POST", "", OP_CREATE, "CreateJob", "s3:CreateJob"},
    {"GET", "", OP_LIST, "ListJobs", "s3:ListJobs"},
    {"GET", "/", OP_DESCRIBE, "DescribeJob", "s3:DescribeJob"},
    {"POST", "/priority", OP_PRIORITY, "UpdateJobPriority", "s3:UpdateJobPriority"},
    {"POST", "/status", OP_STATUS, "UpdateJobStatus", "s3:UpdateJobStatus"},
    {"GET", "/tagging", OP_TAGS_GET, "GetJobTagging", "s3:GetJobTagging"},
    {"PUT", "/tagging", OP_TAGS_PUT, "PutJobTagging", "s3:PutJobTagging"},
    {"DELETE", "/tagging", OP_TAGS_DELETE, "DeleteJobTagging", "s3:DeleteJobTagging"},
};

bool s3control_path(const http_req *req)
{
  return req->path != NULL && str_starts(req->path, S3CONTROL_PREFIX);
}

/* ---- XML <-> JSON ---- */

static const struct {
  const char *name;
  const char *member;      /* element of each item when written */
} lists[] = {
    {"TagSet", "member"}, {"Tags", "member"}, {"Fields", "member"},
    {"MatchAnyPrefix", "Prefix"}, {"MatchAnySuffix", "Suffix"}, {"MatchAnySubstring", "member"},
    {"NewObjectTagging", "member"}, {"AccessControlGrants", "member"},
    {"ObjectReplicationStatuses", "member"}, {"MatchAnyStorageClass", "member"},
    {"MatchAnyObjectEncryption", "ObjectEncryption"}, {"FailureReasons", "member"},
    {"Jobs", "member"},
};
static const char *const maps[] = {"UserArguments", "UserMetadata"};

static const char *str_or_empty(const char *s)
{
  return s != NULL ? s : "";
}

static const char *list_member(const char *name)
{
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
    if (strcmp(lists[i].name, name) == 0)
      return lists[i].member;
  return NULL;
}

static bool is_map(const char *name)
{
  for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
    if (strcmp(maps[i], name) == 0)
      return true;
  return false;
}

static json_t *xml_to_json(const xml_node *n)
{
  if (list_member(n->name) != NULL) {
    json_t *a = json_array();
    for (const xml_node *c = n->child; c != NULL; c = c->next)
      json_array_append_new(a, xml_to_json(c));
    return a;
  }
  if (is_map(n->name)) {
    json_t *o = json_object();
    for (const xml_node *c = n->child; c != NULL; c = c->next) {
      const char *k = xml_child_text(c, "key");
      const char *v = xml_child_text(c, "value");
      if (k != NULL)
        json_object_set_new(o, k, json_string(v != NULL ? v : ""));
    }
    return o;
  }
  if (n->child == NULL)
    return json_stringn(n->text, n->text_len);
  json_t *o = json_object();
  for (const xml_node *c = n->child; c != NULL; c = c->next)
    json_object_set_new(o, c->name, xml_to_json(c));
  return o;
}

static void json_to_xml(buf *b, const char *name, json_t *v);

static void json_members_xml(buf *b, json_t *o)
{
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    json_to_xml(b, k, v);
  }
}

static void json_to_xml(buf *b, const char *name, json_t *v)
{
  if (json_is_null(v))
    return;
  buf_printf(b, "<%s>", name);
  if (json_is_array(v)) {
    const char *m = list_member(name);
    size_t i;
    json_t *it;
    json_array_foreach(v, i, it) {
      json_to_xml(b, m != NULL ? m : "member", it);
    }
  } else if (json_is_object(v) && is_map(name)) {
    const char *k;
    json_t *it;
    json_object_foreach(v, k, it) {
      buf_puts(b, "<entry>");
      buf_xml_elem(b, "key", k);
      buf_xml_elem(b, "value", str_or_empty(json_string_value(it)));
      buf_puts(b, "</entry>");
    }
  } else if (json_is_object(v)) {
    json_members_xml(b, v);
  } else if (json_is_string(v)) {
    buf_xml_escape(b, json_string_value(v), json_string_length(v));
  } else if (json_is_integer(v)) {
    buf_printf(b, "%lld", (long long)json_integer_value(v));
  } else if (json_is_real(v)) {
    buf_printf(b, "%lld", (long long)json_real_value(v));
  } else if (json_is_boolean(v)) {
    buf_puts(b, json_is_true(v) ? "true" : "false");
  }
  buf_printf(b, "</%s>", name);
}

/* Answers root with members of o (taken). */
static void answer(http_req *req, const char *root, json_t *o)
{
  buf *b = &req->resp_body;
  buf_reset(b);
  buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  buf_printf(b, "<%s xmlns=\"%s\">", root, S3CONTROL_NS);
  if (o != NULL)
    json_members_xml(b, o);
  buf_printf(b, "</%s>", root);
  http_resp_header(req, "Content-Type", "application/xml");
  json_decref(o);
}

/* ---- errors ---- */

static const char *exception_of(const call *c, int code)
{
  switch (code) {
  case ERR_NOT_FOUND:
    return "NotFoundException";
  case ERR_CONFLICT:
    return c != NULL && c->op == OP_CREATE ? "IdempotencyException" : "JobStatusException";
  case ERR_LIMIT_EXCEEDED:
    return c != NULL && c->op == OP_TAGS_PUT ? "TooManyTagsException" : "BadRequestException";
  case ERR_INVALID:
  case ERR_INVALID_REQUEST:
  case ERR_MALFORMED_XML:
  case ERR_NOT_IMPLEMENTED:
    if (c == NULL)
      return err_aws_code(code);
    return c->op == OP_LIST ? "InvalidRequestException" : "BadRequestException";
  case ERR_INTERNAL:
  case ERR_IO:
    return "InternalServiceException";
  default:
    return err_aws_code(code);
  }
}

static int status_of(const char *exc, int code)
{
  if (strcmp(exc, "IdempotencyException") == 0 || strcmp(exc, "JobStatusException") == 0)
    return 409;
  if (strcmp(exc, "BadRequestException") == 0 || strcmp(exc, "InvalidRequestException") == 0 ||
      strcmp(exc, "TooManyTagsException") == 0 || strcmp(exc, "InvalidNextTokenException") == 0)
    return 400;
  return err_http_status(code);
}

static void write_error(http_req *req, const call *c, const err *e, const char *exc_override)
{
  int code = e != NULL && e->code != 0 ? e->code : ERR_INTERNAL;
  const char *exc = exc_override != NULL ? exc_override : exception_of(c, code);
  int status = status_of(exc, code);
  const char *msg = e != NULL && e->msg[0] != '\0' ? e->msg : exc;
  if (status >= 500 && code != ERR_NOT_IMPLEMENTED)
    msg = "we encountered an internal error, please try again";
  http_resp_status(req, status);
  buf_reset(&req->resp_body);
  http_resp_header(req, "Content-Type", "application/xml");
  aws_error_rest_xml(&req->resp_body, exc, msg, NULL, 0, req->request_id);
}

/* ---- the request cycle ---- */

static int ctl_prepare(void *ctx, http_req *req, err *e)
{
  call *c = arena_alloc(req->arena, sizeof *c);
  memset(c, 0, sizeof *c);
  req->svc = c;
  req->op = "S3Control";
  const char *p = req->path + strlen(S3CONTROL_PREFIX);
  if (!str_starts(p, "jobs") || (p[4] != '\0' && p[4] != '/')) {
    req->svc = NULL;
    return err_set(e, ERR_NOT_IMPLEMENTED, "the S3 Control API '%.100s' is not implemented by "
                                           "tarn (only Batch Operations jobs are)", req->path);
  }
  p += 4;
  const char *tail = "";
  if (*p == '/' && p[1] != '\0') {
    const char *id = p + 1;
    size_t n = strcspn(id, "/");
    c->job = arena_strndup(req->arena, id, n);
    tail = id[n] == '\0' ? "/" : id + n;
  }
  bool found = false;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    if (strcmp(routes[i].method, req->method) == 0 && strcmp(routes[i].tail, tail) == 0) {
      c->op = routes[i].op;
      req->op = routes[i].name;
      found = true;
      if (!req->authenticated)
        return err_set(e, ERR_DENIED, "anonymous access is not allowed: sign the request with SigV4");
      int rc = req->admin ? 0 : api_authorize(req, routes[i].action, "*", e);
      if (rc != 0)
        return rc;
      break;
    }
  }
  if (!found) {
    req->svc = NULL;
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "the method '%s' is not allowed against '%.100s'",
                   req->method, req->path);
  }
  c->account = http_req_header(req, "x-amz-account-id");
  if (c->account == NULL || c->account[0] == '\0' || strlen(c->account) > 64)
    return err_set(e, ERR_INVALID, "the x-amz-account-id header is required (your account id)");
  if (c->job != NULL && (strlen(c->job) > 64 || c->job[0] == '\0'))
    return err_set(e, ERR_NOT_FOUND, "the job '%.64s' does not exist", c->job);
  http_req_body_max(req, S3CONTROL_BODY_MAX);
  return 0;
}

static int body_json(http_req *req, const char *root, json_t **out, err *e)
{
  xml_node *n;
  int rc = xml_parse(req->body.data ? req->body.data : "", req->body.len, req->arena, &n, e);
  if (rc != 0)
    return rc;
  if (strcmp(n->name, root) != 0)
    return err_set(e, ERR_MALFORMED_XML, "the body must be a %s document", root);
  *out = xml_to_json(n);
  return 0;
}

/* ---- operations ---- */

static int op_create(ctl *s, http_req *req, call *c, const char **exc, err *e)
{
  json_t *in = NULL, *out = NULL;
  int rc = body_json(req, "CreateJobRequest", &in, e);
  if (rc == 0) /* the job acts as its role: the caller must be allowed to pass it */
    rc = api_authorize_pass_role(req, json_string_value(json_object_get(in, "RoleArn")), e);
  if (rc == 0)
    rc = batch_job_create(s->b, c->account, in, &out, e);
  if (rc == 0)
    answer(req, "CreateJobResult", out);
  json_decref(in);
  return rc;
}

static int op_describe(ctl *s, http_req *req, call *c, const char **exc, err *e)
{
  json_t *out = NULL;
  int rc = batch_job_get(s->b, c->account, c->job, &out, e);
  if (rc == 0)
    answer(req, "DescribeJobResult", json_pack("{s:o}", "Job", out));
  return rc;
}

static int op_list(ctl *s, http_req *req, call *c, const char **exc, err *e)
{
  long max = BATCH_MAX_LIST;
  const char *mr = http_req_param(req, "maxResults");
  if (mr != NULL) {
    char *end;
    max = strtol(mr, &end, 10);
    if (end == mr || *end != '\0' || max < 0 || max > BATCH_MAX_LIST)
      return err_set(e, ERR_INVALID, "maxResults must be between 0 and %d", BATCH_MAX_LIST);
  }
  if (max == 0)
    max = BATCH_MAX_LIST;
  json_t *statuses = json_array();
  for (size_t i = 0; i < req->nquery; i++)
    if (strcmp(req->query[i].name, "jobStatuses") == 0)
      json_array_append_new(statuses, json_string(req->query[i].value));
  const char *token = http_req_param(req, "nextToken");
  if (token != NULL && (strlen(token) != 36 || strspn(token, "0123456789abcdef-") != 36)) {
    json_decref(statuses);
    *exc = "InvalidNextTokenException";
    return err_set(e, ERR_INVALID, "the nextToken is not one ListJobs gave");
  }
  json_t *items;
  char *next = NULL;
  int rc = batch_job_list(s->b, c->account, statuses, token, (size_t)max, &items, &next, e);
  json_decref(statuses);
  if (rc == 0) {
    json_t *o = json_object();
    if (next != NULL)
      json_object_set_new(o, "NextToken", json_string(next));
    json_object_set_new(o, "Jobs", items);
    answer(req, "ListJobsResult", o);
  }
  free(next);
  return rc;
}

static int op_priority(ctl *s, http_req *req, call *c, const char **exc, err *e)
{
  const char *p = http_req_param(req, "priority");
  char *end = NULL;
  long long v = p != NULL ? strtoll(p, &end, 10) : -1;
  if (p == NULL || end == p || *end != '\0')
    return err_set(e, ERR_INVALID, "the priority parameter must be an integer");
  int rc = batch_job_priority(s->b, c->account, c->job, v, e);
  if (rc == 0)
    answer(req, "UpdateJobPriorityResult",
           json_pack("{s:s, s:I}", "JobId", c->job, "Priority", (json_int_t)v));
  return rc;
}

static int op_status(ctl *s, http_req *req, call *c, const char **exc, err *e)
{
  json_t *out = NULL;
  int rc = batch_job_status(s->b, c->account, c->job, http_req_param(req, "requestedJobStatus"),
                            http_req_param(req, "statusUpdateReason"), &out, e);
  if (rc == 0)
    answer(req, "UpdateJobStatusResult", out);
  return rc;
}

static int op_tags_get(ctl *s, http_req *req, call *c, const char **exc, err *e)
{
  json_t *out = NULL;
  int rc = batch_job_tags_get(s->b, c->account, c->job, &out, e);
  if (rc == 0)
    answer(req, "GetJobTaggingResult", json_pack("{s:o}", "Tags", out));
  return rc;
}

static int op_tags_put(ctl *s, http_req *req, call *c, const char **exc, err *e)
{
  json_t *in = NULL;
  int rc = body_json(req, "PutJobTaggingRequest", &in, e);
  if (rc == 0) {
    json_t *tags = json_object_get(in, "Tags");
    if (!json_is_array(tags))
      rc = err_set(e, ERR_INVALID, "PutJobTagging needs Tags");
    else
      rc = batch_job_tags_set(s->b, c->account, c->job, tags, e);
  }
  if (rc == 0)
    answer(req, "PutJobTaggingResult", NULL);
  json_decref(in);
  return rc;
}

static int op_tags_delete(ctl *s, http_req *req, call *c, const char **exc, err *e)
{
  json_t *none = json_array();
  int rc = batch_job_tags_set(s->b, c->account, c->job, none, e);
  json_decref(none);
  if (rc == 0)
    answer(req, "DeleteJobTaggingResult", NULL);
  return rc;
}

/* What each operation does, in the order of enum op_id. */
typedef int (*op_fn)(ctl *s, http_req *req, call *c, const char **exc, err *e);
static const op_fn op_fns[] = {
    [OP_CREATE] = op_create,       [OP_LIST] = op_list,         [OP_DESCRIBE] = op_describe,
    [OP_PRIORITY] = op_priority,   [OP_STATUS] = op_status,     [OP_TAGS_GET] = op_tags_get,
    [OP_TAGS_PUT] = op_tags_put,   [OP_TAGS_DELETE] = op_tags_delete,
};

static void ctl_handle(void *ctx, http_req *req)
{
  ctl *s = ctx;
  call *c = req->svc;
  err e;
  err_clear(&e);
  const char *exc = NULL;
  int rc = op_fns[c->op](s, req, c, &exc, &e);
  if (rc != 0) {
    if (e.code == 0)
      err_set(&e, rc, "%s failed", req->op);
    write_error(req, c, &e, exc);
  }
}

static void ctl_error(void *ctx, http_req *req, const err *e)
{
  write_error(req, req->svc, e, NULL);
}

static void ctl_cleanup(void *ctx, http_req *req)
{
}

http_service *s3control_service_new(batch_system *b)
{
  ctl *s = xcalloc(1, sizeof *s);
  s->b = b;
  s->svc = (http_service){
      .name = "s3",
      .ctx = s,
      .prepare = ctl_prepare,
      .handle = ctl_handle,
      .error = ctl_error,
      .cleanup = ctl_cleanup,
  };
  return &s->svc;
}

http_service *s3control_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
