/* kv/system.c -- the kv part's LMDB environment (DATA/kv), its group
 * committer, table records and the table of operations.
 *
 * Why: every write of the part (items, indexes, stream records, tables)
 * runs as one closure on the shared committer thread (base/lmdb_env.h), so
 * a condition is checked and its write made in one transaction, concurrent
 * writes share one sync, and a write is durable before it is acknowledged.
 *
 * Invariants:
 *   (1) Only kv__write's closures write; readers use their own read
 *       transactions and see whole commits.
 *   (2) A closure that fails is rolled back alone (the committer's nested
 *       transaction): a failed condition changes nothing.
 *
 * Start reading at kv_open().
 */
#include "internal.h"

#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_MAP_SIZE ((size_t)16 << 30)

typedef struct kchange {
  lmdb_change base;  /* first: the committer's view */
  kv *k;
  kv_apply_fn fn;
  void *arg;
} kchange;

static int apply_change(void *ctx, lmdb_change *base, MDB_txn *txn, arena *a, err *e)
{
  kchange *c = (kchange *)base;
  return c->fn(c->k, c->arg, txn, a, e);
}

int kv__write(kv *k, kv_apply_fn fn, void *arg, err *e)
{
  kchange c;
  memset(&c, 0, sizeof c);
  c.base.apply = apply_change;
  c.k = k;
  c.fn = fn;
  c.arg = arg;
  return lmdb_committer_run(&k->committer, &c.base, e);
}

int kv_open(const char *data_dir, kv **out, err *e)
{
  *out = NULL;
  kv *k = xcalloc(1, sizeof *k);
  char path[4096];
  snprintf(path, sizeof path, "%s/kv", data_dir);
  lmdb_env_options eo = {.map_size = KV_MAP_SIZE, .max_dbs = 8, .max_readers = 512};
  int rc = lmdb_env_open(&k->env, path, &eo, "the key-value tables", e);
  if (rc != 0) {
    free(k);
    return rc;
  }
  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(k->env, NULL, 0, &txn);
  struct {
    const char *name;
    MDB_dbi *dbi;
  } dbs[] = {{"tables", &k->tables}, {"items", &k->items}, {"meta", &k->meta},
             {"tokens", &k->tokens}, {"streams", &k->streams}};
  for (size_t i = 0; mrc == 0 && i < sizeof dbs / sizeof dbs[0]; i++)
    mrc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
  if (mrc == 0)
    mrc = mdb_txn_commit(txn);
  else if (txn != NULL)
    mdb_txn_abort(txn);
  if (mrc != 0) {
    rc = lmdb_error(e, mrc, "open the key-value tables");
    mdb_env_close(k->env);
    free(k);
    return rc;
  }
  lmdb_committer_hooks hooks = {.ctx = k};
  rc = lmdb_committer_start(&k->committer, k->env, &hooks, "the key-value tables", e);
  if (rc == 0 && (rc = kv__ttl_start(k, e)) != 0)
    lmdb_committer_stop(&k->committer);
  if (rc != 0) {
    mdb_env_close(k->env);
    free(k);
    return rc;
  }
  *out = k;
  return 0;
}

kv *kv_close(kv *k)
{
  if (k == NULL)
    return NULL;
  kv__ttl_stop(k);
  lmdb_committer_stop(&k->committer);
  mdb_env_close(k->env);
  free(k);
  return NULL;
}

int kv__table_load(kv *k, MDB_txn *txn, const char *name, json_t **out, err *e)
{
  MDB_val key = {strlen(name), (void *)name}, val;
  int mrc = mdb_get(txn, k->tables, &key, &val);
  if (mrc == MDB_NOTFOUND)
    return err_set(e, KV_ERR_NO_TABLE, "Requested resource not found: Table: %s not found", name);
  if (mrc != 0)
    return lmdb_error(e, mrc, "read a table");
  json_error_t je;
  *out = json_loadb(val.mv_data, val.mv_size, 0, &je);
  if (*out == NULL)
    return err_set(e, ERR_INTERNAL, "table '%s' has a damaged record", name);
  return 0;
}

int kv__table_store(kv *k, MDB_txn *txn, const char *name, json_t *desc, err *e)
{
  char *text = json_dumps(desc, JSON_COMPACT);
  MDB_val key = {strlen(name), (void *)name}, val = {strlen(text), text};
  int mrc = mdb_put(txn, k->tables, &key, &val, 0);
  free(text);
  return mrc == 0 ? 0 : lmdb_error(e, mrc, "write a table");
}

const char *kv__in_str(json_t *in, const char *key)
{
  return json_string_value(json_object_get(in, key));
}

int kv__need_table_name(json_t *in, const char **out, err *e)
{
  const char *name = kv__in_str(in, "TableName");
  if (name == NULL)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value null at "
                   "'tableName' failed to satisfy constraint: Member must not be null");
  size_t n = strlen(name);
  bool ok = n >= 3 && n <= 255;
  for (size_t i = 0; i < n && ok; i++) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-' || c == '.';
  }
  if (!ok)
    return err_set(e, KV_ERR_VALIDATION,
                   "1 validation error detected: Value '%s' at 'tableName' failed to satisfy "
                   "constraint: %s", name,
                   n < 3 || n > 255 ? "Member must have length greater than or equal to 3"
                                    : "Member must satisfy regular expression pattern: "
                                      "[a-zA-Z0-9_.-]+");
  *out = name;
  return 0;
}

/* ---- operations ---- */

static const struct {
  const char *name;
  kv_op_fn fn;
  bool streams;
} ops[] = {
    {"CreateTable", kv__create_table, false},
    {"DescribeTable", kv__describe_table, false},
    {"ListTables", kv__list_tables, false},
    {"UpdateTable", kv__update_table, false},
    {"DeleteTable", kv__delete_table, false},
    {"UpdateTimeToLive", kv__update_ttl, false},
    {"DescribeTimeToLive", kv__describe_ttl, false},
    {"TagResource", kv__tag_resource, false},
    {"UntagResource", kv__untag_resource, false},
    {"ListTagsOfResource", kv__list_tags, false},
    {"PutItem", kv__put_item, false},
    {"GetItem", kv__get_item, false},
    {"UpdateItem", kv__update_item, false},
    {"DeleteItem", kv__delete_item, false},
    {"Query", kv__query, false},
    {"Scan", kv__scan, false},
    {"BatchGetItem", kv__batch_get, false},
    {"BatchWriteItem", kv__batch_write, false},
    {"TransactWriteItems", kv__transact_write, false},
    {"TransactGetItems", kv__transact_get, false},
    {"DescribeLimits", kv__describe_limits, false},
    {"DescribeEndpoints", kv__describe_endpoints, false},
    {"DescribeContinuousBackups", kv__describe_backups, false},
    {"ExecuteStatement", kv__execute_statement, false},
    {"BatchExecuteStatement", kv__batch_execute_statement, false},
    {"ListStreams", kv__list_streams, true},
    {"DescribeStream", kv__describe_stream, true},
    {"GetShardIterator", kv__get_shard_iterator, true},
    {"GetRecords", kv__get_records, true},
};

kv_op_fn kv_op_find(const char *name, bool streams, const char **canon)
{
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (ops[i].streams == streams && strcmp(ops[i].name, name) == 0) {
      *canon = ops[i].name;
      return ops[i].fn;
    }
  return NULL;
}

const char *kv_op_table(const char *op, json_t *in)
{
  const char *t = kv__in_str(in, "TableName");
  if (t != NULL)
    return t;
  const char *arn = kv__in_str(in, "ResourceArn");
  if (arn == NULL)
    arn = kv__in_str(in, "StreamArn");
  if (arn != NULL && strstr(arn, ":table/") != NULL)
    return strstr(arn, ":table/") + 7;
  return "*";
}
