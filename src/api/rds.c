/* api/rds.c -- the RDS endpoint: the query protocol (form in, XML out) onto
 * rdb's clusters. Only Aurora PostgreSQL, Serverless v2.
 *
 * Operations: CreateDBCluster, DescribeDBClusters, ModifyDBCluster,
 * DeleteDBCluster, StopDBCluster, StartDBCluster, CreateDBClusterSnapshot,
 * DescribeDBClusterSnapshots, DeleteDBClusterSnapshot,
 * RestoreDBClusterFromSnapshot. Others answer InvalidAction.
 *
 * Errors: <ErrorResponse> with RDS's codes: DBClusterNotFoundFault (404),
 * DBClusterAlreadyExistsFault, InvalidParameterValue,
 * InvalidParameterCombination, InvalidDBClusterStateFault (400).
 *
 * Invariants:
 *   (1) Form values are strings; to_input() types the members rdb reads
 *       (numbers, booleans) before anything is called.
 *
 * Start reading at rds_handle().
 */
#include "api/rds.h"

#include "api/iam.h"
#include "api/query_protocol.h"
#include "aws/errors.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RDS_NS "http://rds.amazonaws.com/doc/2014-10-31/"
#define RDS_BODY_MAX (256u << 10)
#define RDS_ERR_ACTION (-1601)
#define RDS_ERR_SNAP_NOT_FOUND (-1602)
#define RDS_ERR_SNAP_EXISTS (-1603)

typedef struct rds_svc {
  http_service svc;
  rdb *r;
} rds_svc;

static void write_error(http_req *r, const err *e)
{
  int status = 400;
  const char *code;
  switch (e->code) {
  case ERR_NOT_FOUND: status = 404; code = "DBClusterNotFoundFault"; break;
  case ERR_ENTITY_EXISTS: code = "DBClusterAlreadyExistsFault"; break;
  case ERR_INVALID: code = "InvalidParameterValue"; break;
  case ERR_INVALID_REQUEST: code = "InvalidParameterCombination"; break;
  case ERR_CONFLICT: code = "InvalidDBClusterStateFault"; break;
  case RDS_ERR_ACTION: code = "InvalidAction"; break;
  case RDS_ERR_SNAP_NOT_FOUND: status = 404; code = "DBClusterSnapshotNotFoundFault"; break;
  case RDS_ERR_SNAP_EXISTS: code = "DBClusterSnapshotAlreadyExistsFault"; break;
  case ERR_SIGNATURE:
  case ERR_EXPIRED:
  case ERR_TIME_SKEWED: status = 403; code = "SignatureDoesNotMatch"; break;
  case ERR_UNKNOWN_ACCESS_KEY: status = 403; code = "InvalidClientTokenId"; break;
  case ERR_DENIED: status = 403; code = "AccessDenied"; break;
  case ERR_MISSING_AUTH: status = 403; code = "MissingAuthenticationToken"; break;
  case ERR_AUTH_MALFORMED: code = "IncompleteSignature"; break;
  case ERR_UNAVAILABLE: status = 503; code = "ServiceUnavailable"; break;
  default: status = 500; code = "InternalFailure"; break;
  }
  r->nresp_headers = 0;
  buf_reset(&r->resp_body);
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "text/xml");
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  aws_error_query_xml(&r->resp_body, RDS_NS, status, code, e->msg[0] != '\0' ? e->msg : code,
                      false, r->request_id);
}

static void rds_error(void *ctx, http_req *r, const err *e)
{
  write_error(r, e);
}

/* ---- XML out ---- */

static void xml_value(buf *b, const char *name, json_t *v);

static void xml_members(buf *b, json_t *o)
{
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v)
  {
    xml_value(b, k, v);
  }
}

static void xml_value(buf *b, const char *name, json_t *v)
{
  if (json_is_string(v)) {
    buf_xml_elem(b, name, json_string_value(v));
  } else if (json_is_integer(v)) {
    buf_printf(b, "<%s>%lld</%s>", name, (long long)json_integer_value(v), name);
  } else if (json_is_real(v)) {
    buf_printf(b, "<%s>%g</%s>", name, json_real_value(v), name);
  } else if (json_is_boolean(v)) {
    buf_printf(b, "<%s>%s</%s>", name, json_is_true(v) ? "true" : "false", name);
  } else if (json_is_object(v)) {
    buf_printf(b, "<%s>", name);
    xml_members(b, v);
    buf_printf(b, "</%s>", name);
  } else if (json_is_array(v)) {
    buf_printf(b, "<%s>", name);
    size_t i;
    json_t *it;
    json_array_foreach(v, i, it)
    {
      xml_value(b, "member", it);
    }
    buf_printf(b, "</%s>", name);
  }
}

/* ---- form in ---- */

static bool is_true(json_t *v)
{
  const char *s = json_string_value(v);
  return s != NULL && strcasecmp(s, "true") == 0;
}

/* The members rdb reads, typed (1). */
static json_t *to_input(json_t *p)
{
  json_t *in = json_object();
  const char *strs[] = {"DBClusterIdentifier", "Engine", "MasterUsername",
                        "MasterUserPassword", "DatabaseName", NULL};
  for (int i = 0; strs[i] != NULL; i++) {
    json_t *v = json_object_get(p, strs[i]);
    if (json_is_string(v))
      json_object_set(in, strs[i], v);
  }
  const char *bools[] = {"ManageMasterUserPassword", "EnableHttpEndpoint", NULL};
  for (int i = 0; bools[i] != NULL; i++) {
    json_t *v = json_object_get(p, bools[i]);
    if (v != NULL)
      json_object_set_new(in, bools[i], json_boolean(is_true(v)));
  }
  const char *port = json_string_value(json_object_get(p, "Port"));
  if (port != NULL) { /* not a number: a value rdb refuses */
    char *end;
    long v = strtol(port, &end, 10);
    json_object_set_new(in, "Port", *end == '\0' && port[0] != '\0' ? json_integer(v)
                                                                    : json_string(port));
  }
  json_t *sc = json_object_get(p, "ServerlessV2ScalingConfiguration");
  if (json_is_object(sc)) {
    json_t *o = json_object();
    const char *mn = json_string_value(json_object_get(sc, "MinCapacity"));
    const char *mx = json_string_value(json_object_get(sc, "MaxCapacity"));
    const char *ps = json_string_value(json_object_get(sc, "SecondsUntilAutoPause"));
    if (mn != NULL)
      json_object_set_new(o, "MinCapacity", json_real(strtod(mn, NULL)));
    if (mx != NULL)
      json_object_set_new(o, "MaxCapacity", json_real(strtod(mx, NULL)));
    if (ps != NULL)
      json_object_set_new(o, "SecondsUntilAutoPause", json_integer(strtol(ps, NULL, 10)));
    json_object_set_new(in, "ServerlessV2ScalingConfiguration", o);
  }
  return in;
}

/* Runs one action; b gets the inner XML of <ActionResult>. */
static int run(rds_svc *s, const char *a, json_t *p, buf *b, err *e)
{
  const char *id = json_string_value(json_object_get(p, "DBClusterIdentifier"));
  json_t *in = to_input(p);
  json_t *o = NULL;
  int rc;
  if (strcmp(a, "CreateDBCluster") == 0) {
    rc = rdb_cluster_create(s->r, in, &o, e);
  } else if (strcmp(a, "DescribeDBClusters") == 0) {
    rc = rdb_cluster_describe(s->r, id, &o, e);
    if (rc == 0) {
      buf_puts(b, "<DBClusters>");
      size_t i;
      json_t *c;
      json_array_foreach(o, i, c)
      {
        xml_value(b, "DBCluster", c);
      }
      buf_puts(b, "</DBClusters>");
      json_decref(o);
      json_decref(in);
      return 0;
    }
  } else if (strcmp(a, "CreateDBClusterSnapshot") == 0 ||
             strcmp(a, "DeleteDBClusterSnapshot") == 0) {
    const char *sid = json_string_value(json_object_get(p, "DBClusterSnapshotIdentifier"));
    bool create = a[0] == 'C';
    rc = create ? rdb_snapshot_create(s->r, sid, id, &o, e) : rdb_snapshot_delete(s->r, sid, &o, e);
    if (rc == ERR_NOT_FOUND && !create)
      e->code = rc = RDS_ERR_SNAP_NOT_FOUND;
    if (rc == ERR_ENTITY_EXISTS)
      e->code = rc = RDS_ERR_SNAP_EXISTS;
    if (rc == 0)
      xml_value(b, "DBClusterSnapshot", o);
    json_decref(o);
    json_decref(in);
    return rc;
  } else if (strcmp(a, "DescribeDBClusterSnapshots") == 0) {
    const char *sid = json_string_value(json_object_get(p, "DBClusterSnapshotIdentifier"));
    rc = rdb_snapshot_describe(s->r, sid, id, &o, e);
    if (rc == ERR_NOT_FOUND)
      e->code = rc = RDS_ERR_SNAP_NOT_FOUND;
    if (rc == 0) {
      buf_puts(b, "<DBClusterSnapshots>");
      size_t i;
      json_t *c;
      json_array_foreach(o, i, c)
      {
        xml_value(b, "DBClusterSnapshot", c);
      }
      buf_puts(b, "</DBClusterSnapshots>");
    }
    json_decref(o);
    json_decref(in);
    return rc;
  } else if (strcmp(a, "RestoreDBClusterFromSnapshot") == 0) {
    const char *sid = json_string_value(json_object_get(p, "SnapshotIdentifier"));
    rc = rdb_snapshot_restore(s->r, sid, in, &o, e);
    if (rc == ERR_NOT_FOUND)
      e->code = rc = RDS_ERR_SNAP_NOT_FOUND;
  } else if (strcmp(a, "ModifyDBCluster") == 0) {
    rc = rdb_cluster_modify(s->r, id, in, &o, e);
  } else if (strcmp(a, "DeleteDBCluster") == 0) {
    rc = rdb_cluster_delete(s->r, id, &o, e);
  } else if (strcmp(a, "StopDBCluster") == 0) {
    rc = rdb_cluster_stop(s->r, id, &o, e);
  } else if (strcmp(a, "StartDBCluster") == 0) {
    rc = rdb_cluster_start(s->r, id, &o, e);
  } else {
    rc = err_set(e, RDS_ERR_ACTION, "The action %s is not valid for this web service.", a);
  }
  if (rc == 0)
    xml_value(b, "DBCluster", o);
  json_decref(o);
  json_decref(in);
  return rc;
}

static int rds_prepare(void *ctx, http_req *r, err *e)
{
  http_req_body_max(r, RDS_BODY_MAX);
  if (!r->authenticated)
    return err_set(e, ERR_DENIED, "anonymous access is not allowed: sign the request with SigV4");
  return 0;
}

static void rds_handle(void *ctx, http_req *r)
{
  rds_svc *s = ctx;
  err e = {0};
  str_pair *p = NULL;
  size_t np = 0;
  json_t *tree = json_object();
  const char *action = NULL;
  int rc = query_params(r, &p, &np, &e);
  if (rc == 0) {
    for (size_t i = 0; i < np; i++)
      aws_query_tree_set(tree, p[i].name, p[i].value);
    action = json_string_value(json_object_get(tree, "Action"));
    if (action == NULL)
      rc = err_set(&e, ERR_INVALID, "the request has no Action");
  }
  if (rc == 0) {
    r->op = arena_strdup(r->arena, action);
    const char *id = json_string_value(json_object_get(tree, "DBClusterIdentifier"));
    const char *res = id != NULL ? arena_sprintf(r->arena, "arn:aws:rds:" API_REGION ":"
                                                 API_ACCOUNT_ID ":cluster:%s", id)
                                 : "*";
    rc = api_authorize(r, arena_sprintf(r->arena, "rds:%s", action), res, &e);
  }
  buf result;
  buf_init(&result, 16u << 20);
  if (rc == 0)
    rc = run(s, action, tree, &result, &e);
  if (rc != 0) {
    write_error(r, &e);
  } else {
    http_resp_status(r, 200);
    http_resp_header(r, "Content-Type", "text/xml");
    http_resp_header(r, "x-amzn-RequestId", r->request_id);
    aws_query_response_begin(&r->resp_body, RDS_NS, action, true);
    buf_append(&r->resp_body, result.data != NULL ? result.data : "", result.len);
    aws_query_response_end(&r->resp_body, action, true, r->request_id);
  }
  buf_release(&result);
  json_decref(tree);
}

http_service *rds_service_new(rdb *r)
{
  rds_svc *s = xcalloc(1, sizeof *s);
  s->r = r;
  s->svc = (http_service){
      .name = "rds",
      .ctx = s,
      .prepare = rds_prepare,
      .handle = rds_handle,
      .error = rds_error,
      .unsigned_body_max = RDS_BODY_MAX,
  };
  return &s->svc;
}

http_service *rds_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
