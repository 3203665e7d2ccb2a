/* api/athena.c -- the Athena endpoint: JSON 1.1 requests (api/json_rpc.c)
 * onto athena/athena.h.
 *
 * Operations: StartQueryExecution, GetQueryExecution, GetQueryResults,
 * StopQueryExecution, ListQueryExecutions, BatchGetQueryExecution,
 * GetQueryRuntimeStatistics, CreateWorkGroup, GetWorkGroup, ListWorkGroups,
 * UpdateWorkGroup, DeleteWorkGroup.
 *
 * Besides athena:Operation on the work group, StartQueryExecution asks a
 * caller who is not root for s3:PutObject on the output location. Errors
 * as Athena's model names them: every client mistake, an unknown
 * execution or work group included, is a 400 InvalidRequestException with
 * an AthenaErrorCode (INVALID_INPUT, or RESOURCE_NOT_FOUND for an unknown
 * execution); a full queue is TooManyRequestsException; the rest
 * InternalServerException.
 *
 * Invariants:
 *   (1) Bodies are bounded (ATHENA_BODY_MAX): a QueryString is at most
 *       256 KiB, the rest of a request is small.
 *
 * Start reading at the ops[] table.
 */
#include "api/athena.h"

#include "api/iam.h"
#include "api/json_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATHENA_BODY_MAX (1u << 20)

static const char *id_of(json_t *in)
{
  return json_rpc_str(in, "QueryExecutionId");
}

/* A caller who is not root must be allowed s3:PutObject where the results
 * will go (the request's OutputLocation, or its work group's), as Athena
 * asks of its callers; a location the part refuses is left to it. */
static int authorize_output(athena *a, http_req *r, json_t *in, err *e)
{
  if (r->admin)
    return 0;
  const char *loc = json_string_value(
      json_object_get(json_object_get(in, "ResultConfiguration"), "OutputLocation"));
  const char *wgname = json_rpc_str(in, "WorkGroup");
  json_t *wg = NULL;
  err ignored = {0};
  if (athena_workgroup_get(a, wgname != NULL ? wgname : "primary", &wg, &ignored) == 0) {
    json_t *cfg = json_object_get(wg, "Configuration");
    const char *wgloc = json_string_value(
        json_object_get(json_object_get(cfg, "ResultConfiguration"), "OutputLocation"));
    if (wgloc != NULL &&
        (loc == NULL || json_is_true(json_object_get(cfg, "EnforceWorkGroupConfiguration"))))
      loc = wgloc;
  }
  int rc = 0;
  if (loc != NULL && strncmp(loc, "s3://", 5) == 0)
    rc = api_authorize(r, "s3:PutObject", arena_sprintf(r->arena, "arn:aws:s3:::%s*", loc + 5),
                       e);
  json_decref(wg);
  return rc;
}

static int op_start(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  char id[37];
  int rc = authorize_output(ctx, r, in, e);
  if (rc != 0)
    return rc;
  rc = athena_query_start(ctx, in, r->authenticated ? r->auth.access_key : NULL, id, e);
  if (rc == 0)
    *out = json_pack("{s:s}", "QueryExecutionId", id);
  return rc;
}

static int op_get(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  json_t *q;
  int rc = athena_query_get(ctx, id_of(in), &q, e);
  if (rc == 0)
    *out = json_pack("{s:o}", "QueryExecution", q);
  return rc;
}

static int op_results(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return athena_query_results(ctx, in, out, e);
}

static int op_stop(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return athena_query_stop(ctx, id_of(in), e);
}

static int op_list(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return athena_query_list(ctx, in, out, e);
}

static int op_batch_get(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  json_t *ids = json_object_get(in, "QueryExecutionIds");
  size_t n = json_array_size(ids);
  if (!json_is_array(ids) || n < 1 || n > ATHENA_MAX_LIST)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value at 'queryExecutionIds' "
                   "failed to satisfy constraint: Member must have length between 1 and 50");
  json_t *found = json_array(), *unprocessed = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(ids, i, v) {
    const char *id = json_string_value(v);
    json_t *q;
    err qe = {0};
    int rc = athena_query_get(ctx, id, &q, &qe);
    if (rc == 0) {
      json_array_append_new(found, q);
    } else if (rc == ERR_INVALID || rc == ERR_NOT_FOUND) {
      json_array_append_new(unprocessed,
                            json_pack("{s:s, s:s, s:s}", "QueryExecutionId", id ? id : "",
                                      "ErrorCode", rc == ERR_NOT_FOUND ? "RESOURCE_NOT_FOUND"
                                                                       : "INVALID_INPUT",
                                      "ErrorMessage", qe.msg));
    } else {
      json_decref(found);
      json_decref(unprocessed);
      *e = qe;
      return rc;
    }
  }
  *out = json_pack("{s:o, s:o}", "QueryExecutions", found, "UnprocessedQueryExecutionIds",
                   unprocessed);
  return 0;
}

static int op_runtime(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return athena_query_runtime(ctx, id_of(in), out, e);
}

static int op_wg_create(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return athena_workgroup_create(ctx, in, e);
}

static int op_wg_get(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  json_t *wg;
  int rc = athena_workgroup_get(ctx, json_rpc_str(in, "WorkGroup"), &wg, e);
  if (rc == 0)
    *out = json_pack("{s:o}", "WorkGroup", wg);
  return rc;
}

static int op_wg_list(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return athena_workgroup_list(ctx, in, out, e);
}

static int op_wg_update(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return athena_workgroup_update(ctx, in, e);
}

static int op_wg_delete(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return athena_workgroup_delete(ctx, json_rpc_str(in, "WorkGroup"), e);
}

static const json_rpc_op ops[] = {
    {"StartQueryExecution", op_start},
    {"GetQueryExecution", op_get},
    {"GetQueryResults", op_results},
    {"StopQueryExecution", op_stop},
    {"ListQueryExecutions", op_list},
    {"BatchGetQueryExecution", op_batch_get},
    {"GetQueryRuntimeStatistics", op_runtime},
    {"CreateWorkGroup", op_wg_create},
    {"GetWorkGroup", op_wg_get},
    {"ListWorkGroups", op_wg_list},
    {"UpdateWorkGroup", op_wg_update},
    {"DeleteWorkGroup", op_wg_delete},
};

static const json_rpc_code codes[] = {
    {ERR_INVALID, 400, "InvalidRequestException"},
    {ERR_NOT_FOUND, 400, "InvalidRequestException"},
    {ERR_THROTTLED, 400, "TooManyRequestsException"},
    {ERR_INTERNAL, 500, "InternalServerException"},
    {ERR_IO, 500, "InternalServerException"},
};

static void error_fields(const err *e, json_t *body)
{
  json_object_set(body, "Message", json_object_get(body, "message"));
  if (e->code == ERR_INVALID)
    json_object_set_new(body, "AthenaErrorCode", json_string("INVALID_INPUT"));
  else if (e->code == ERR_NOT_FOUND)
    json_object_set_new(body, "AthenaErrorCode", json_string("RESOURCE_NOT_FOUND"));
  else if (e->code == ERR_THROTTLED)
    json_object_set_new(body, "Reason", json_string("CONCURRENT_QUERY_LIMIT_EXCEEDED"));
}

static const char *resource(http_req *r, const char *op, json_t *in)
{
  const char *wg = json_rpc_str(in, strcmp(op, "CreateWorkGroup") == 0 ? "Name" : "WorkGroup");
  if (wg == NULL && (strcmp(op, "StartQueryExecution") == 0 ||
                     strcmp(op, "ListQueryExecutions") == 0))
    wg = "primary";
  if (wg == NULL)
    return "*";
  return arena_sprintf(r->arena, "arn:aws:athena:" API_REGION ":" API_ACCOUNT_ID
                       ":workgroup/%s", wg);
}

static const json_rpc_def def = {
    .service = "athena",
    .target_prefix = "AmazonAthena.",
    .content_type = "application/x-amz-json-1.1",
    .ops = ops,
    .nops = sizeof ops / sizeof ops[0],
    .codes = codes,
    .ncodes = sizeof codes / sizeof codes[0],
    .body_max = ATHENA_BODY_MAX,
    .resource = resource,
    .error_fields = error_fields,
};

http_service *athena_service_new(athena *a)
{
  return json_rpc_service_new(&def, a);
}

http_service *athena_service_free(http_service *svc)
{
  return json_rpc_service_free(svc);
}
