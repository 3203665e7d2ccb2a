/* flow/permission.c -- what a Task asks of IAM before it calls a function or
 * a service: the action and the resource ARN of each integration, decided by
 * the authorizer the server gives (flow_options.authorize) for the
 * execution's role.
 *
 * Why: an execution acts as its machine's role, as on AWS. Without this a
 * caller allowed only states:CreateStateMachine and StartExecution could
 * make the engine read, write or delete anything tarn holds.
 *
 * Invariants:
 *   (1) Every Task that calls out asks first: functions (a plain function
 *       ARN, lambda:invoke), each optimized integration, every aws-sdk
 *       action. A resource this file cannot name is asked for as "*".
 *   (2) The action is IAM's name for what the call does (sqs:SendMessage,
 *       s3:GetObject, dynamodb:PutItem, ...), the resource the ARN IAM
 *       policies name (arn:aws:sqs:REGION:ACCOUNT:QUEUE, arn:aws:s3:::B/K,
 *       arn:aws:dynamodb:REGION:ACCOUNT:table/T, ...).
 *   (3) A refusal fails the Task with SERVICE.AccessDeniedException (in the
 *       SDK integrations' naming for aws-sdk resources) and IAM's message
 *       as the cause; nothing is called.
 */
#include "flow/internal.h"

#include "base/mem.h"
#include "base/text.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define STATES_PREFIX "arn:aws:states:::"
#define ARN_HEAD(svc) "arn:aws:" svc ":" FLOW_REGION ":" FLOW_ACCOUNT_ID ":"

static const char *param(json_t *p, const char *key)
{
  return json_string_value(json_object_get(p, key));
}

/* The API action of "SERVICE:action[.suffix]" with its first letter
   upper-case ("sendMessage" -> "SendMessage"). */
static void api_action(const char *op, char *out, size_t cap)
{
  const char *a = strchr(op, ':');
  a = a != NULL ? a + 1 : op;
  size_t n = strcspn(a, ".");
  snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), a);
  out[0] = (char)toupper((unsigned char)out[0]);
}

/* A function's ARN from a FunctionName (a name, a partial or full ARN). */
static char *function_arn(const char *name)
{
  if (name == NULL)
    return xstrdup("*");
  if (str_starts(name, "arn:"))
    return xstrdup(name);
  return xasprintf(ARN_HEAD("lambda") "function:%s", name);
}

/* The ARN of what an aws-sdk or optimized call on svc acts on, from its
   parameters; "*" when they do not name one. */
static char *resource_of(const char *svc, const char *action, json_t *p)
{
  if (strcmp(svc, "sqs") == 0) {
    const char *url = param(p, "QueueUrl");
    const char *slash = url != NULL ? strrchr(url, '/') : NULL;
    return slash != NULL ? xasprintf(ARN_HEAD("sqs") "%s", slash + 1) : xstrdup("*");
  }
  if (strcmp(svc, "sns") == 0) {
    const char *t = param(p, "TopicArn") ? param(p, "TopicArn") : param(p, "TargetArn");
    return xstrdup(t != NULL ? t : "*");
  }
  if (strcmp(svc, "s3") == 0) {
    const char *b = param(p, "Bucket");
    const char *k = param(p, "Key");
    if (b == NULL)
      return xstrdup("*");
    if (strcmp(action, "ListObjectsV2") == 0 || strcmp(action, "ListObjects") == 0 || k == NULL)
      return xasprintf("arn:aws:s3:::%s", b);
    return xasprintf("arn:aws:s3:::%s/%s", b, k);
  }
  if (strcmp(svc, "dynamodb") == 0) {
    const char *t = param(p, "TableName");
    return t != NULL ? xasprintf(ARN_HEAD("dynamodb") "table/%s", t) : xstrdup("*");
  }
  if (strcmp(svc, "kinesis") == 0) {
    if (param(p, "StreamARN") != NULL)
      return xstrdup(param(p, "StreamARN"));
    const char *n = param(p, "StreamName");
    return n != NULL ? xasprintf(ARN_HEAD("kinesis") "stream/%s", n) : xstrdup("*");
  }
  if (strcmp(svc, "firehose") == 0) {
    const char *n = param(p, "DeliveryStreamName");
    return n != NULL ? xasprintf(ARN_HEAD("firehose") "deliverystream/%s", n) : xstrdup("*");
  }
  if (strcmp(svc, "states") == 0) {
    const char *m = param(p, "StateMachineArn");
    return xstrdup(m != NULL ? m : "*");
  }
  if (strcmp(svc, "athena") == 0) {
    const char *wg = param(p, "WorkGroup");
    if (strcmp(action, "StartQueryExecution") == 0)
      return xasprintf(ARN_HEAD("athena") "workgroup/%s", wg != NULL ? wg : "primary");
    return xstrdup("*");
  }
  if (strcmp(svc, "lambda") == 0)
    return function_arn(param(p, "FunctionName"));
  return xstrdup("*");
}

/* The service's name in a Task error: "SQS", "Lambda", ... */
static const char *error_service(const char *svc)
{
  static const char *const names[][2] = {
      {"sqs", "SQS"},       {"sns", "SNS"},           {"s3", "S3"},
      {"lambda", "Lambda"}, {"states", "StepFunctions"}, {"athena", "Athena"},
      {"dynamodb", "DynamoDB"}, {"kinesis", "Kinesis"}, {"firehose", "Firehose"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(names[i][0], svc) == 0)
      return names[i][1];
  return "States";
}

int flow__task_authorize(flow_system *s, const char *role_arn, const char *resource,
                         json_t *params, char **error, char **cause)
{
  *error = *cause = NULL;
  if (s->authorize == NULL)
    return 0;
  char svc[32] = "lambda";
  char action[96];
  char *arn;
  if (!str_starts(resource, STATES_PREFIX)) {
    /* a function's ARN as the Resource (or an activity's: not a call) */
    if (strstr(resource, ":activity:") != NULL)
      return 0;
    snprintf(action, sizeof action, "lambda:InvokeFunction");
    arn = xstrdup(resource);
  } else {
    const char *op = resource + strlen(STATES_PREFIX);
    if (str_starts(op, "aws-sdk:"))
      op += strlen("aws-sdk:");
    size_t n = strcspn(op, ":");
    snprintf(svc, sizeof svc, "%.*s", (int)(n < sizeof svc - 1 ? n : sizeof svc - 1), op);
    char api[64];
    api_action(op, api, sizeof api);
    arn = resource_of(svc, api, params);
    /* where IAM's action is not the API's name */
    if (strcmp(svc, "lambda") == 0 && strcmp(api, "Invoke") == 0)
      snprintf(api, sizeof api, "InvokeFunction");
    if (strcmp(svc, "s3") == 0 && str_starts(api, "ListObjects"))
      snprintf(api, sizeof api, "ListBucket");
    snprintf(action, sizeof action, "%s:%s", svc, api);
  }
  err e = {0};
  int rc = s->authorize(s->authorize_ctx, role_arn, action, arn, &e);
  free(arn);
  if (rc == 0)
    return 0;
  *error = xasprintf("%s.AccessDeniedException", error_service(svc));
  *cause = xstrdup(e.msg);
  flow__sdk_error_name(resource, error);
  return -1;
}
