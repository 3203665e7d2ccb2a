/* api/iam.c -- the authorizer every service calls (see api/iam.h), and
 * the IAM endpoint: the query protocol (Action=CreateRole&...), answers
 * and errors in IAM's XML.
 *
 * Why one file: both halves speak IAM's language to the outside (ARNs,
 * the AccessDenied message, IAM's error codes); the decisions themselves
 * are iam/'s.
 *
 * Invariants:
 *   (1) The root key never reaches a policy: api_authorize returns at its
 *       first test for it (S3's small-object path pays one branch).
 *   (2) A function's key is resolved through the function registry on
 *       every request, so a deleted function (or one whose role changed)
 *       is refused from the next request on.
 *   (3) Only root, or a principal whose policies allow iam:ACTION, reaches
 *       an IAM operation.
 *   (4) What tarn does for a caller after its request (an Athena query's
 *       reads) is decided by api_authorize_later on the same key: a key
 *       revoked meanwhile is refused, root's (authz_root) never asked.
 *
 * Start reading at api_authorize(), then iam_handle().
 */
#include "api/iam.h"

#include "api/query_protocol.h"
#include "aws/errors.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IAM_NS "https://iam.amazonaws.com/doc/2010-05-08/"
#define IAM_BODY_MAX (256u << 10)

static _Atomic(iam_system *) authz_iam;
static _Atomic(fn_system *) authz_fn;
static atomic_bool authz_strict;
static _Atomic(const char *) authz_root;

void api_authz_attach(iam_system *iam, fn_system *fn, bool strict, const char *root_key)
{
  atomic_store(&authz_iam, iam);
  atomic_store(&authz_fn, fn);
  atomic_store(&authz_strict, strict);
  atomic_store(&authz_root, root_key);
}

const char *api_authz_secret(const char *access_key, char secret[FN_KEY_MAX])
{
  fn_system *fn = atomic_load(&authz_fn);
  if (fn != NULL && fn_credentials_lookup(fn, access_key, secret, NULL))
    return secret;
  char user[65];
  iam_system *iam = atomic_load(&authz_iam);
  if (iam != NULL && iam_key_lookup(iam, access_key, secret, user))
    return secret;
  return NULL;
}

static void warn_role(const char *what, const char *name, const char *role_arn,
                      const char *gets)
{
  bool known = false;
  iam_role_decide(atomic_load(&authz_iam), role_arn, "none:None", "*", NULL, &known);
  if (!known)
    log_warn("%s '%s': tarn does not know its role '%s': %s %s", what, name,
             role_arn ? role_arn : "", gets,
             atomic_load(&authz_strict) ? "no access (strict IAM)"
                                        : "the default data-plane access (see README, Access "
                                          "control)");
}

void api_authz_warn_role(const char *function, const char *role_arn)
{
  warn_role("function", function, role_arn, "its keys get");
}

void api_authz_warn_machine_role(const char *machine, const char *role_arn)
{
  warn_role("state machine", machine, role_arn, "its executions get");
}

/* What a function whose role tarn does not know may do. */
static const char *const default_actions[] = {
    "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:ListAllMyBuckets",
    "s3:GetBucketLocation", "s3:GetObjectTagging", "s3:PutObjectTagging",
    "s3:DeleteObjectTagging", "s3:GetObjectAcl", "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts", "s3:ListBucketMultipartUploads",
    "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ListQueues",
    "sns:Publish", "sns:ListTopics", "sns:GetTopicAttributes",
    "lambda:InvokeFunction",
    "execute-api:ManageConnections",  /* replying on a WebSocket API (@connections) */
    "kinesis:PutRecord", "kinesis:PutRecords", "kinesis:GetRecords", "kinesis:GetShardIterator",
    "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards",
    "firehose:PutRecord", "firehose:PutRecordBatch",
    "states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat",
    "states:StartExecution", "states:DescribeExecution",
    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
    "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
    "dynamodb:TransactGetItems", "dynamodb:TransactWriteItems", "dynamodb:DescribeTable",
    "dynamodb:ListTables", "dynamodb:DescribeStream", "dynamodb:GetShardIterator",
    "dynamodb:GetRecords", "dynamodb:ListStreams",
    "rds-data:ExecuteStatement", "rds-data:BatchExecuteStatement", "rds-data:BeginTransaction",
    "rds-data:CommitTransaction", "rds-data:RollbackTransaction",
};

static bool default_allows(const char *action)
{
  for (size_t i = 0; i < sizeof default_actions / sizeof default_actions[0]; i++)
    if (strcmp(default_actions[i], action) == 0)
      return true;
  return false;
}

/* What a state machine whose role tarn does not know may do besides: the
   queries of its Athena integrations. */
static const char *const default_workflow_actions[] = {
    "athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
    "athena:StopQueryExecution",
};

static bool default_workflow_allows(const char *action)
{
  for (size_t i = 0; i < sizeof default_workflow_actions / sizeof default_workflow_actions[0];
       i++)
    if (strcmp(default_workflow_actions[i], action) == 0)
      return true;
  return default_allows(action);
}

/* The last path segment of a role ARN: its name. */
static const char *role_name(const char *arn)
{
  const char *slash = strrchr(arn, '/');
  return slash != NULL ? slash + 1 : arn;
}

#define EXPLICIT_DENY_MSG " with an explicit deny in an identity-based policy"

/* The refusal's message. api_denied_explicitly reads the decision back from
   its end, so the end is never cut: the rest (a long who or resource: keys
   are up to 1,024 bytes) is truncated to the room the phrase leaves. */
static int denied(err *e, const char *who, const char *action, const char *resource,
                  bool explicit_deny)
{
  char head[ERR_MSG_MAX];
  int n = snprintf(head, sizeof head, "User: %s is not authorized to perform: %s on resource: %s",
                   who, action, resource);
  const char *tail = explicit_deny ? EXPLICIT_DENY_MSG : "";
  size_t room = ERR_MSG_MAX - 1 - strlen(tail);
  int keep = n < 0 ? 0 : (size_t)n < room ? n : (int)room;
  return err_set(e, ERR_DENIED, "%.*s%s", keep, head, tail);
}

bool api_denied_explicitly(const err *e)
{
  size_t n = strlen(e->msg), t = strlen(EXPLICIT_DENY_MSG);
  return e->code == ERR_DENIED && n >= t && strcmp(e->msg + n - t, EXPLICIT_DENY_MSG) == 0;
}

/* A workload acting as role_arn (session: who in the message). implied:
 * the default of a role tarn does not know allows it whatever the action
 * (see api_authorize_implied). */
static int role_decide(const char *role_arn, const char *session, const char *action,
                       const char *resource, const iam_context *ctx,
                       bool (*default_ok)(const char *action), bool implied, err *e)
{
  char who[256 + 2200];
  snprintf(who, sizeof who, "arn:aws:sts::" API_ACCOUNT_ID ":assumed-role/%s/%s",
           role_name(role_arn != NULL ? role_arn : ""), session);
  bool known = false;
  enum iam_decision d =
      iam_role_decide(atomic_load(&authz_iam), role_arn, action, resource, ctx, &known);
  if (known)
    return d == IAM_ALLOW ? 0 : denied(e, who, action, resource, d == IAM_EXPLICIT_DENY);
  if (!atomic_load(&authz_strict) && (implied || default_ok(action)))
    return 0;
  return denied(e, who, action, resource, false);
}

int api_authorize_role(const char *role_arn, const char *session, const char *action,
                       const char *resource, err *e)
{
  iam_context ctx = {0};
  return role_decide(role_arn, session, action, resource, &ctx, default_workflow_allows, false,
                     e);
}

int api_authorize_role_also(const char *role_arn, const char *session, const char *action,
                            const char *resource, const char *const *also, err *e)
{
  iam_context ctx = {0};
  bool implied = false;
  for (size_t i = 0; also != NULL && also[i] != NULL && !implied; i++)
    implied = strncmp(action, also[i], strlen(also[i])) == 0;
  return role_decide(role_arn, session, action, resource, &ctx, default_workflow_allows, implied,
                     e);
}

/* The decision for a key that is not root's (ctx: what conditions see).
 * implied: the default of a function whose role tarn does not know allows
 * it whatever the action (see api_authorize_implied). */
static int authorize_key(const char *access_key, iam_context *ctx, const char *action,
                         const char *resource, bool implied, err *e)
{
  iam_system *iam = atomic_load(&authz_iam);
  fn_system *fn = atomic_load(&authz_fn);
  char secret[FN_KEY_MAX];
  fn_principal fpv, *fp = &fpv;
  if (fn != NULL && fn_credentials_lookup(fn, access_key, secret, fp))
    return role_decide(fp->role, fp->function, action, resource, ctx, default_allows, implied,
                       e);
  char user[65];
  if (iam != NULL && iam_key_lookup(iam, access_key, secret, user)) {
    ctx->username = user;
    char who[128];
    snprintf(who, sizeof who, "arn:aws:iam::" API_ACCOUNT_ID ":user/%s", user);
    enum iam_decision d = iam_user_decide(iam, user, action, resource, ctx);
    return d == IAM_ALLOW ? 0 : denied(e, who, action, resource, d == IAM_EXPLICIT_DENY);
  }
  /* the key was valid when the signature was checked; it is gone now */
  return err_set(e, ERR_UNKNOWN_ACCESS_KEY,
                 "The AWS Access Key Id you provided does not exist in our records.");
}

int api_authorize(http_req *r, const char *action, const char *resource, err *e)
{
  if (r->admin)
    return 0;
  if (!r->authenticated)
    return err_set(e, ERR_DENIED, "anonymous access is not allowed: sign the request with SigV4");
  iam_context ctx = {.source_ip = r->peer_addr != NULL && r->peer_addr[0] ? r->peer_addr : NULL,
                     .secure_transport = false};
  if (strcmp(action, "s3:ListBucket") == 0)
    ctx.s3_prefix = http_req_param(r, "prefix");
  return authorize_key(r->auth.access_key, &ctx, action, resource, false, e);
}

int api_authorize_implied(http_req *r, const char *action, const char *resource, err *e)
{
  if (r->admin)
    return 0;
  if (!r->authenticated)
    return err_set(e, ERR_DENIED, "anonymous access is not allowed: sign the request with SigV4");
  iam_context ctx = {.source_ip = r->peer_addr != NULL && r->peer_addr[0] ? r->peer_addr : NULL};
  return authorize_key(r->auth.access_key, &ctx, action, resource, true, e);
}

int api_authorize_pass_role(http_req *r, const char *role_arn, err *e)
{
  if (r->admin || role_arn == NULL || role_arn[0] == '\0')
    return 0;
  if (strncmp(role_arn, "arn:", 4) != 0) /* a bare name (Glue's crawlers take one) */
    role_arn = arena_sprintf(r->arena, "arn:aws:iam::" API_ACCOUNT_ID ":role/%s", role_arn);
  return api_authorize(r, "iam:PassRole", role_arn, e);
}

int api_authorize_later(void *ctx, const char *principal, const char *action,
                        const char *resource, err *e)
{
  (void)ctx;
  if (principal == NULL)
    return 0;
  const char *root = atomic_load(&authz_root);
  if (root != NULL && strcmp(principal, root) == 0)
    return 0;
  iam_context ictx = {.source_ip = NULL};
  return authorize_key(principal, &ictx, action, resource, false, e);
}

/* ---- the IAM endpoint ---- */

typedef struct iam_svc {
  http_service svc;  /* first: the service is the struct */
  iam_system *iam;
} iam_svc;

typedef struct iam_call {
  const char *action;
  str_pair *p;
  size_t np;
} iam_call;

static const char *param(const iam_call *c, const char *name)
{
  for (size_t i = 0; i < c->np; i++)
    if (strcmp(c->p[i].name, name) == 0)
      return c->p[i].value;
  return NULL;
}

static void write_error(http_req *r, const err *e)
{
  int code = e->code != 0 ? e->code : ERR_INTERNAL;
  int status = err_http_status(code);
  const char *name = err_aws_code(code);
  if (code == ERR_INVALID || code == ERR_INVALID_REQUEST)
    name = "ValidationError";
  else if (code == ERR_UNKNOWN_ACCESS_KEY)
    name = "InvalidClientTokenId";
  else if (code == ERR_SIGNATURE || code == ERR_TIME_SKEWED)
    name = "SignatureDoesNotMatch";
  else if (code == ERR_NOT_IMPLEMENTED)
    name = "InvalidAction";
  else if (status >= 500)
    name = "ServiceFailure";
  if (code == ERR_NOT_IMPLEMENTED)
    status = 400;
  r->nresp_headers = 0;
  buf_reset(&r->resp_body);
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "text/xml");
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  aws_error_query_xml(&r->resp_body, IAM_NS, status, name, e->msg[0] != '\0' ? e->msg : name,
                      false, r->request_id);
}

static void iam_error(void *ctx, http_req *r, const err *e)
{
  write_error(r, e);
}

/* Members that carry a policy document: URL-encoded, as IAM sends them. */
static bool is_document(const char *k)
{
  return strcmp(k, "AssumeRolePolicyDocument") == 0 || strcmp(k, "PolicyDocument") == 0 ||
         strcmp(k, "Document") == 0;
}

/* An entity's members as XML elements, in order (scalars only). */
static void xml_members(http_req *r, buf *b, json_t *o)
{
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v)
  {
    if (json_is_string(v)) {
      const char *s = json_string_value(v);
      if (strcmp(k, "Description") == 0 && s[0] == '\0')
        continue;
      if (is_document(k))
        s = uri_encode(r->arena, s, strlen(s), false);
      buf_xml_elem(b, k, s);
    } else if (json_is_integer(v)) {
      buf_printf(b, "<%s>%lld</%s>", k, (long long)json_integer_value(v), k);
    } else if (json_is_boolean(v)) {
      buf_printf(b, "<%s>%s</%s>", k, json_is_true(v) ? "true" : "false", k);
    }
  }
}

static void xml_entity(http_req *r, buf *b, const char *elem, json_t *o)
{
  buf_printf(b, "<%s>", elem);
  xml_members(r, b, o);
  buf_printf(b, "</%s>", elem);
}

static void xml_list(http_req *r, buf *b, const char *elem, json_t *arr)
{
  buf_printf(b, "<%s>", elem);
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v)
  {
    if (json_is_string(v))
      buf_xml_elem(b, "member", json_string_value(v));
    else
      xml_entity(r, b, "member", v);
  }
  buf_printf(b, "</%s>", elem);
}

/* The resource an IAM action is about, for the authorizer. */
static const char *iam_resource(http_req *r, const iam_call *c)
{
  const char *role = param(c, "RoleName");
  const char *user = param(c, "UserName");
  const char *arn = param(c, "PolicyArn");
  if (role != NULL)
    return arena_sprintf(r->arena, "arn:aws:iam::" API_ACCOUNT_ID ":role/%s", role);
  if (user != NULL)
    return arena_sprintf(r->arena, "arn:aws:iam::" API_ACCOUNT_ID ":user/%s", user);
  if (arn != NULL)
    return arn;
  if (param(c, "PolicyName") != NULL && strcmp(c->action, "CreatePolicy") == 0)
    return arena_sprintf(r->arena, "arn:aws:iam::" API_ACCOUNT_ID ":policy/%s",
                         param(c, "PolicyName"));
  return "*";
}

/* Runs one action; result gets the inner XML of <ActionResult>. */
static int run(iam_svc *s, http_req *r, iam_call *c, buf *b, bool *has_result, err *e)
{
  const char *a = c->action;
  iam_system *iam = s->iam;
  json_t *o = NULL;
  int rc = 0;
  const char *role = param(c, "RoleName");
  const char *user = param(c, "UserName");
  const char *kind = NULL;
  const char *entity = NULL;
  if (strstr(a, "RolePolic") != NULL || strcmp(a, "ListAttachedRolePolicies") == 0) {
    kind = "role";
    entity = role;
  } else if (strstr(a, "UserPolic") != NULL || strcmp(a, "ListAttachedUserPolicies") == 0) {
    kind = "user";
    entity = user;
  }
  *has_result = true;
  if (strcmp(a, "CreateRole") == 0) {
    if ((rc = iam_role_create(iam, role, param(c, "Path"), param(c, "AssumeRolePolicyDocument"),
                              param(c, "Description"), &o, e)) == 0)
      xml_entity(r, b, "Role", o);
  } else if (strcmp(a, "GetRole") == 0) {
    if ((rc = iam_role_get(iam, role, &o, e)) == 0)
      xml_entity(r, b, "Role", o);
  } else if (strcmp(a, "DeleteRole") == 0) {
    rc = iam_role_delete(iam, role, e);
    *has_result = false;
  } else if (strcmp(a, "ListRoles") == 0 || strcmp(a, "ListUsers") == 0) {
    o = iam_entity_list(iam, a[4] == 'R' ? "role" : "user");
    xml_list(r, b, a[4] == 'R' ? "Roles" : "Users", o);
    buf_puts(b, "<IsTruncated>false</IsTruncated>");
  } else if (strcmp(a, "CreateUser") == 0) {
    if ((rc = iam_user_create(iam, user, param(c, "Path"), &o, e)) == 0)
      xml_entity(r, b, "User", o);
  } else if (strcmp(a, "GetUser") == 0) {
    if (user == NULL)
      return err_set(e, ERR_INVALID, "tarn's GetUser needs a UserName");
    if ((rc = iam_user_get(iam, user, &o, e)) == 0)
      xml_entity(r, b, "User", o);
  } else if (strcmp(a, "DeleteUser") == 0) {
    rc = iam_user_delete(iam, user, e);
    *has_result = false;
  } else if (strcmp(a, "CreateAccessKey") == 0) {
    if ((rc = iam_key_create(iam, user, &o, e)) == 0)
      xml_entity(r, b, "AccessKey", o);
  } else if (strcmp(a, "DeleteAccessKey") == 0) {
    rc = iam_key_delete(iam, user, param(c, "AccessKeyId"), e);
    *has_result = false;
  } else if (strcmp(a, "ListAccessKeys") == 0) {
    if ((rc = iam_key_list(iam, user, &o, e)) == 0) {
      xml_list(r, b, "AccessKeyMetadata", o);
      buf_puts(b, "<IsTruncated>false</IsTruncated>");
    }
  } else if (strcmp(a, "PutRolePolicy") == 0 || strcmp(a, "PutUserPolicy") == 0) {
    rc = iam_inline_put(iam, kind, entity, param(c, "PolicyName"), param(c, "PolicyDocument"), e);
    *has_result = false;
  } else if (strcmp(a, "GetRolePolicy") == 0 || strcmp(a, "GetUserPolicy") == 0) {
    const char *pname = param(c, "PolicyName");
    if ((rc = iam_inline_get(iam, kind, entity, pname, &o, e)) == 0) {
      buf_xml_elem(b, kind[0] == 'r' ? "RoleName" : "UserName", entity);
      buf_xml_elem(b, "PolicyName", pname);
      const char *doc = json_string_value(o);
      buf_xml_elem(b, "PolicyDocument", uri_encode(r->arena, doc, strlen(doc), false));
    }
  } else if (strcmp(a, "DeleteRolePolicy") == 0 || strcmp(a, "DeleteUserPolicy") == 0) {
    rc = iam_inline_delete(iam, kind, entity, param(c, "PolicyName"), e);
    *has_result = false;
  } else if (strcmp(a, "ListRolePolicies") == 0 || strcmp(a, "ListUserPolicies") == 0) {
    if ((rc = iam_inline_list(iam, kind, entity, &o, e)) == 0) {
      xml_list(r, b, "PolicyNames", o);
      buf_puts(b, "<IsTruncated>false</IsTruncated>");
    }
  } else if (strcmp(a, "CreatePolicy") == 0) {
    if ((rc = iam_policy_create(iam, param(c, "PolicyName"), param(c, "Path"),
                                param(c, "PolicyDocument"), param(c, "Description"), &o, e)) == 0)
      xml_entity(r, b, "Policy", o);
  } else if (strcmp(a, "GetPolicy") == 0) {
    if ((rc = iam_policy_get(iam, param(c, "PolicyArn"), &o, e)) == 0)
      xml_entity(r, b, "Policy", o);
  } else if (strcmp(a, "GetPolicyVersion") == 0) {
    const char *v = param(c, "VersionId");
    if (v == NULL || strcmp(v, "v1") != 0)
      return err_set(e, ERR_NO_SUCH_ENTITY, "Policy %s version %s does not exist or is not "
                                            "attachable.", param(c, "PolicyArn"), v ? v : "");
    if ((rc = iam_policy_document(iam, param(c, "PolicyArn"), &o, e)) == 0) {
      const char *doc = json_string_value(o);
      buf_puts(b, "<PolicyVersion>");
      buf_xml_elem(b, "Document", uri_encode(r->arena, doc, strlen(doc), false));
      buf_puts(b, "<VersionId>v1</VersionId><IsDefaultVersion>true</IsDefaultVersion>"
                  "</PolicyVersion>");
    }
  } else if (strcmp(a, "DeletePolicy") == 0) {
    rc = iam_policy_delete(iam, param(c, "PolicyArn"), e);
    *has_result = false;
  } else if (strcmp(a, "ListPolicies") == 0) {
    o = iam_policy_list(iam);
    xml_list(r, b, "Policies", o);
    buf_puts(b, "<IsTruncated>false</IsTruncated>");
  } else if (strcmp(a, "AttachRolePolicy") == 0 || strcmp(a, "AttachUserPolicy") == 0) {
    rc = iam_attach(iam, kind, entity, param(c, "PolicyArn"), e);
    *has_result = false;
  } else if (strcmp(a, "DetachRolePolicy") == 0 || strcmp(a, "DetachUserPolicy") == 0) {
    rc = iam_detach(iam, kind, entity, param(c, "PolicyArn"), e);
    *has_result = false;
  } else if (strcmp(a, "ListAttachedRolePolicies") == 0 ||
             strcmp(a, "ListAttachedUserPolicies") == 0) {
    if ((rc = iam_attached_list(iam, kind, entity, &o, e)) == 0) {
      xml_list(r, b, "AttachedPolicies", o);
      buf_puts(b, "<IsTruncated>false</IsTruncated>");
    }
  } else {
    rc = err_set(e, ERR_NOT_IMPLEMENTED, "Could not find operation %s for version 2010-05-08", a);
  }
  json_decref(o);
  return rc;
}

static int iam_prepare(void *ctx, http_req *r, err *e)
{
  http_req_body_max(r, IAM_BODY_MAX);
  if (!r->authenticated)
    return err_set(e, ERR_DENIED, "anonymous access is not allowed: sign the request with SigV4");
  return 0;
}

static void iam_handle(void *ctx, http_req *r)
{
  iam_svc *s = ctx;
  iam_call c = {0};
  err e = {0};
  int rc = query_params(r, &c.p, &c.np, &e);
  if (rc == 0) {
    c.action = param(&c, "Action");
    if (c.action == NULL)
      rc = err_set(&e, ERR_INVALID, "the request has no Action");
  }
  if (rc == 0) {
    r->op = c.action;
    const char *action = arena_sprintf(r->arena, "iam:%s", c.action);
    rc = api_authorize(r, action, iam_resource(r, &c), &e);
  }
  buf result;
  buf_init(&result, 16u << 20);
  bool has_result = false;
  if (rc == 0)
    rc = run(s, r, &c, &result, &has_result, &e);
  if (rc != 0) {
    write_error(r, &e);
  } else {
    http_resp_status(r, 200);
    http_resp_header(r, "Content-Type", "text/xml");
    http_resp_header(r, "x-amzn-RequestId", r->request_id);
    buf *b = &r->resp_body;
    aws_query_response_begin(b, IAM_NS, c.action, has_result);
    if (has_result)
      buf_append(b, result.data != NULL ? result.data : "", result.len);
    aws_query_response_end(b, c.action, has_result, r->request_id);
  }
  buf_release(&result);
}

http_service *iam_service_new(iam_system *iam)
{
  iam_svc *s = xcalloc(1, sizeof *s);
  s->iam = iam;
  s->svc = (http_service){
      .name = "iam",
      .ctx = s,
      .prepare = iam_prepare,
      .handle = iam_handle,
      .error = iam_error,
      .unsigned_body_max = IAM_BODY_MAX,
  };
  return &s->svc;
}

http_service *iam_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
