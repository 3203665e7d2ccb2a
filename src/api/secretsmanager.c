/* api/secretsmanager.c -- Secrets Manager's JSON 1.1 shape (through
 * api/json_rpc) over rdb's secrets: just what the Data API's secretArn
 * needs, CreateSecret, GetSecretValue, ListSecrets, DeleteSecret.
 *
 * Errors: ResourceNotFoundException, ResourceExistsException,
 * InvalidParameterException (all 400, as Secrets Manager answers).
 */
#include "api/secretsmanager.h"

#include "api/iam.h"
#include "api/json_rpc.h"

#include <stdatomic.h>
#include <string.h>

#define SM_BODY_MAX (128u << 10)

static _Atomic(rdb *) sm_rdb;  /* for resource(): one service per process */

static int op_create(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  if (json_object_get(in, "SecretBinary") != NULL)
    return err_set(e, ERR_INVALID, "tarn stores SecretString only");
  return rdb_secret_create(ctx, json_rpc_str(in, "Name"), json_rpc_str(in, "SecretString"),
                           json_rpc_str(in, "Description"), out, e);
}

static int op_get(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return rdb_secret_get(ctx, json_rpc_str(in, "SecretId"), out, e);
}

static int op_list(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  *out = json_pack("{s:o}", "SecretList", rdb_secret_list(ctx));
  return 0;
}

static int op_delete(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return rdb_secret_delete(ctx, json_rpc_str(in, "SecretId"), out, e);
}

static const json_rpc_op ops[] = {
    {"CreateSecret", op_create},
    {"GetSecretValue", op_get},
    {"ListSecrets", op_list},
    {"DeleteSecret", op_delete},
};

static const json_rpc_code codes[] = {
    {ERR_NOT_FOUND, 400, "ResourceNotFoundException"},
    {ERR_ENTITY_EXISTS, 400, "ResourceExistsException"},
    {ERR_INVALID, 400, "InvalidParameterException"},
};

static const char *resource(http_req *r, const char *op, json_t *in)
{
  const char *id = json_rpc_str(in, "SecretId");
  if (id == NULL)
    id = json_rpc_str(in, "Name");
  if (id == NULL)
    return "*";
  if (strncmp(id, "arn:", 4) == 0)
    return id;
  /* a secret named by its name is the ARN it has (with its random
     suffix), so a policy naming that ARN decides, as on AWS */
  json_t *sec = NULL;
  err ignored = {0};
  rdb *db = atomic_load(&sm_rdb);
  if (db != NULL && strcmp(op, "CreateSecret") != 0 &&
      rdb_secret_get(db, id, &sec, &ignored) == 0) {
    const char *arn = json_string_value(json_object_get(sec, "ARN"));
    const char *res = arn != NULL ? arena_strdup(r->arena, arn) : NULL;
    json_decref(sec);
    if (res != NULL)
      return res;
  }
  return arena_sprintf(r->arena, "arn:aws:secretsmanager:" API_REGION ":" API_ACCOUNT_ID
                       ":secret:%s", id);
}

static const json_rpc_def def = {
    .service = "secretsmanager",
    .target_prefix = "secretsmanager.",
    .content_type = "application/x-amz-json-1.1",
    .ops = ops,
    .nops = sizeof ops / sizeof ops[0],
    .codes = codes,
    .ncodes = sizeof codes / sizeof codes[0],
    .body_max = SM_BODY_MAX,
    .resource = resource,
};

http_service *secretsmanager_service_new(rdb *r)
{
  atomic_store(&sm_rdb, r);
  return json_rpc_service_new(&def, r);
}

http_service *secretsmanager_service_free(http_service *svc)
{
  if (svc != NULL)
    atomic_store(&sm_rdb, NULL);
  return json_rpc_service_free(svc);
}
