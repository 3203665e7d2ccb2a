/* kv/table.c -- tables: CreateTable, DescribeTable, ListTables, UpdateTable
 * (indexes, streams, billing), DeleteTable, time to live and tags.
 *
 * Why: a table's description is what DescribeTable returns, so it is kept
 * in that shape (JSON in the "tables" database) with a few private fields
 * (TarnId: the table's key prefix; TarnIndex: an index's key byte;
 * TarnNextIndex; TarnTtl; TarnTags), stripped on the way out.
 *
 * Invariants:
 *   (1) A table id is never reused, so a deleted table's entries (removed
 *       in the same transaction) can never show up in a new table.
 *   (2) A new global secondary index is filled from the table's items in the
 *       same transaction that adds it, so it is ACTIVE at once.
 *
 * Start reading at kv__create_table().
 */
#include "internal.h"

#include "base/hash.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARN_PREFIX "arn:aws:dynamodb:us-east-1:000000000000:table/"

static int invalid(err *e, const char *msg)
{
  return err_set(e, KV_ERR_VALIDATION, "One or more parameter values were invalid: %s", msg);
}

/* The type of attribute name in defs, or NULL. */
static const char *def_type(json_t *defs, const char *name)
{
  size_t i;
  json_t *d;
  json_array_foreach(defs, i, d) {
    const char *n = kv__in_str(d, "AttributeName");
    if (n != NULL && strcmp(n, name) == 0)
      return kv__in_str(d, "AttributeType");
  }
  return NULL;
}

static const char *schema_key(json_t *schema, const char *type)
{
  size_t i;
  json_t *k;
  json_array_foreach(schema, i, k) {
    const char *t = kv__in_str(k, "KeyType");
    if (t != NULL && strcmp(t, type) == 0)
      return kv__in_str(k, "AttributeName");
  }
  return NULL;
}

static int check_schema(json_t *schema, json_t *defs, json_t *used, const char *what, err *e)
{
  if (!json_is_array(schema))
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value null at '%s' failed "
                   "to satisfy constraint: Member must not be null", what);
  size_t n = json_array_size(schema);
  if (n < 1 || n > 2)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%s' at '%s' failed "
                   "to satisfy constraint: Member must have length less than or equal to 2",
                   "[...]", what);
  const char *hash = schema_key(schema, "HASH");
  const char *range = schema_key(schema, "RANGE");
  if (hash == NULL || (n == 2 && range == NULL))
    return invalid(e, n == 2 && hash != NULL ? "Invalid KeySchema: The second KeySchemaElement is "
                   "not a RANGE key type" : "Invalid KeySchema: The first KeySchemaElement is "
                   "not a HASH key type");
  if (range != NULL && strcmp(range, hash) == 0)
    return invalid(e, "Both the Hash Key and the Range Key element in the KeySchema have the "
                   "same name");
  const char *names[2] = {hash, range};
  for (int i = 0; i < 2; i++) {
    if (names[i] == NULL)
      continue;
    const char *t = def_type(defs, names[i]);
    if (t == NULL) {
      char msg[512];
      snprintf(msg, sizeof msg, "Some index key attributes are not defined in "
               "AttributeDefinitions. Keys: [%s], AttributeDefinitions: [...]", names[i]);
      return invalid(e, msg);
    }
    if (strcmp(t, "S") != 0 && strcmp(t, "N") != 0 && strcmp(t, "B") != 0)
      return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%s' at "
                     "'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: "
                     "Member must satisfy enum value set: [B, N, S]", t);
    json_object_set_new(used, names[i], json_true());
  }
  return 0;
}

static int check_projection(json_t *ix, err *e)
{
  json_t *p = json_object_get(ix, "Projection");
  const char *t = kv__in_str(p, "ProjectionType");
  if (t == NULL)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value null at "
                   "'projection' failed to satisfy constraint: Member must not be null");
  if (strcmp(t, "ALL") != 0 && strcmp(t, "KEYS_ONLY") != 0 && strcmp(t, "INCLUDE") != 0)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%s' at "
                   "'projection.projectionType' failed to satisfy constraint: Member must satisfy "
                   "enum value set: [ALL, INCLUDE, KEYS_ONLY]", t);
  if (strcmp(t, "INCLUDE") != 0 && json_object_get(p, "NonKeyAttributes") != NULL)
    return invalid(e, "ProjectionType is ALL or KEYS_ONLY, but NonKeyAttributes is specified");
  return 0;
}

static json_t *throughput(json_t *in, bool ppr)
{
  json_t *pt = json_object_get(in, "ProvisionedThroughput");
  return json_pack("{sIsIsi}", "ReadCapacityUnits",
                   ppr ? (json_int_t)0 : json_integer_value(json_object_get(pt, "ReadCapacityUnits")),
                   "WriteCapacityUnits",
                   ppr ? (json_int_t)0 : json_integer_value(json_object_get(pt, "WriteCapacityUnits")),
                   "NumberOfDecreasesToday", 0);
}

static int check_billing(json_t *in, bool *ppr, err *e)
{
  const char *mode = kv__in_str(in, "BillingMode");
  json_t *pt = json_object_get(in, "ProvisionedThroughput");
  *ppr = mode != NULL && strcmp(mode, "PAY_PER_REQUEST") == 0;
  if (mode != NULL && !*ppr && strcmp(mode, "PROVISIONED") != 0)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%s' at "
                   "'billingMode' failed to satisfy constraint: Member must satisfy enum value "
                   "set: [PROVISIONED, PAY_PER_REQUEST]", mode);
  if (*ppr && pt != NULL)
    return invalid(e, "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when "
                   "BillingMode is PAY_PER_REQUEST");
  if (!*ppr && (pt == NULL || json_object_get(pt, "ReadCapacityUnits") == NULL ||
                json_object_get(pt, "WriteCapacityUnits") == NULL))
    return invalid(e, "ReadCapacityUnits and WriteCapacityUnits must both be specified when "
                   "BillingMode is PROVISIONED");
  return 0;
}

static int check_stream(json_t *spec, err *e)
{
  if (spec == NULL)
    return 0;
  json_t *en = json_object_get(spec, "StreamEnabled");
  const char *view = kv__in_str(spec, "StreamViewType");
  if (json_is_true(en)) {
    if (view == NULL)
      return invalid(e, "You must specify a StreamViewType when enabling a stream");
    if (strcmp(view, "NEW_IMAGE") != 0 && strcmp(view, "OLD_IMAGE") != 0 &&
        strcmp(view, "NEW_AND_OLD_IMAGES") != 0 && strcmp(view, "KEYS_ONLY") != 0)
      return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%s' at "
                     "'streamSpecification.streamViewType' failed to satisfy constraint: Member "
                     "must satisfy enum value set: [NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES, "
                     "KEYS_ONLY]", view);
  } else if (view != NULL) {
    return invalid(e, "You cannot specify a StreamViewType when disabling a stream");
  }
  return 0;
}

static void set_stream(json_t *desc, const char *name, json_t *spec)
{
  if (json_is_true(json_object_get(spec, "StreamEnabled"))) {
    char label[32];
    time_format_iso8601_ms(time_now_ms(), label);
    label[23] = '\0';
    json_object_set_new(desc, "StreamSpecification", json_deep_copy(spec));
    json_object_set_new(desc, "LatestStreamLabel", json_string(label));
    json_object_set_new(desc, "LatestStreamArn",
                        json_sprintf(ARN_PREFIX "%s/stream/%s", name, label));
  } else {
    json_object_del(desc, "StreamSpecification");
    json_object_set_new(desc, "StreamSpecification", json_pack("{sb}", "StreamEnabled", 0));
  }
}

/* Builds an index's description; no is its key byte. */
static int index_desc(json_t *ix, json_t *defs, const char *table, const char *table_hash,
                      bool global, bool ppr, uint8_t no, json_t *used, json_t **out, err *e)
{
  const char *name = kv__in_str(ix, "IndexName");
  if (name == NULL || strlen(name) < 3 || strlen(name) > 255)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%s' at "
                   "'indexName' failed to satisfy constraint: Member must have length greater "
                   "than or equal to 3", name != NULL ? name : "null");
  json_t *schema = json_object_get(ix, "KeySchema");
  int rc = check_schema(schema, defs, used, "keySchema", e);
  if (rc == 0)
    rc = check_projection(ix, e);
  if (rc != 0)
    return rc;
  if (!global) {
    const char *h = schema_key(schema, "HASH");
    if (strcmp(h, table_hash) != 0) {
      char msg[512];
      snprintf(msg, sizeof msg, "Index KeySchema does not have the same leading hash key as "
               "table KeySchema for index: %s. index hash key: %s, table hash key: %s", name, h,
               table_hash);
      return invalid(e, msg);
    }
    if (schema_key(schema, "RANGE") == NULL)
      return invalid(e, "Local secondary indices must have a range key");
  }
  if (global && !ppr && json_object_get(ix, "ProvisionedThroughput") == NULL)
    return err_set(e, KV_ERR_VALIDATION, "One or more parameter values were invalid: "
                   "ProvisionedThroughput must be specified for index: %s", name);
  json_t *d = json_pack("{sssOsOsssIsIsI}", "IndexName", name, "KeySchema", schema,
                        "Projection", json_object_get(ix, "Projection"), "IndexStatus", "ACTIVE",
                        "IndexSizeBytes", (json_int_t)0, "ItemCount", (json_int_t)0,
                        "TarnIndex", (json_int_t)no);
  json_object_set_new(d, "IndexArn", json_sprintf(ARN_PREFIX "%s/index/%s", table, name));
  if (global)
    json_object_set_new(d, "ProvisionedThroughput", throughput(ix, ppr));
  *out = d;
  return 0;
}

static bool index_named(json_t *desc, const char *name)
{
  const char *lists[] = {"GlobalSecondaryIndexes", "LocalSecondaryIndexes"};
  for (int l = 0; l < 2; l++) {
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(desc, lists[l]), i, x) {
      const char *n = kv__in_str(x, "IndexName");
      if (n != NULL && strcmp(n, name) == 0)
        return true;
    }
  }
  return false;
}

typedef struct create_arg {
  const char *name;
  json_t *desc;
} create_arg;

static int create_apply(kv *k, void *argp, MDB_txn *txn, arena *a, err *e)
{
  create_arg *c = argp;
  MDB_val key = {strlen(c->name), (void *)c->name}, val;
  if (mdb_get(txn, k->tables, &key, &val) == 0)
    return err_set(e, KV_ERR_IN_USE, "Table already exists: %s", c->name);
  MDB_stat st;
  mdb_stat(txn, k->tables, &st);
  if (st.ms_entries >= KV_TABLES_MAX)
    return err_set(e, KV_ERR_LIMIT, "Subscriber limit exceeded: there are already %d tables",
                   KV_TABLES_MAX);
  MDB_val mk = {10, "next_table"};
  uint32_t id = 1;
  if (mdb_get(txn, k->meta, &mk, &val) == 0 && val.mv_size == 4) {
    const uint8_t *p = val.mv_data;
    id = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  }
  uint8_t next[4] = {(uint8_t)((id + 1) >> 24), (uint8_t)((id + 1) >> 16), (uint8_t)((id + 1) >> 8),
                     (uint8_t)(id + 1)};
  val = (MDB_val){4, next};
  int mrc = mdb_put(txn, k->meta, &mk, &val, 0);
  if (mrc != 0)
    return lmdb_error(e, mrc, "write a table id");
  json_object_set_new(c->desc, "TarnId", json_integer(id));
  char tid[40];
  snprintf(tid, sizeof tid, "%08x-0000-4000-8000-%012x", id, id);
  json_object_set_new(c->desc, "TableId", json_string(tid));
  return kv__table_store(k, txn, c->name, c->desc, e);
}

/* A copy of desc without the private fields, with live counts. */
static json_t *public_desc(kv *k, MDB_txn *txn, json_t *desc);

int kv__create_table(kv *k, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = kv__need_table_name(in, &name, e);
  if (rc != 0)
    return rc;
  json_t *defs = json_object_get(in, "AttributeDefinitions");
  json_t *schema = json_object_get(in, "KeySchema");
  if (!json_is_array(defs))
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value null at "
                   "'attributeDefinitions' failed to satisfy constraint: Member must not be null");
  json_t *used = json_object();
  bool ppr;
  rc = check_schema(schema, defs, used, "keySchema", e);
  if (rc == 0)
    rc = check_billing(in, &ppr, e);
  if (rc == 0)
    rc = check_stream(json_object_get(in, "StreamSpecification"), e);
  const char *hash = rc == 0 ? schema_key(schema, "HASH") : NULL;
  json_t *desc = NULL;
  if (rc == 0) {
    desc = json_pack("{sssssssOsOsOs{ss}sfsIsI}", "TableName", name, "TableStatus", "ACTIVE",
                     "TableArn", "", "AttributeDefinitions", defs, "KeySchema", schema,
                     "ProvisionedThroughput", json_null(), "BillingModeSummary", "BillingMode",
                     ppr ? "PAY_PER_REQUEST" : "PROVISIONED", "CreationDateTime",
                     (double)time_now_ms() / 1000.0, "TableSizeBytes", (json_int_t)0,
                     "ItemCount", (json_int_t)0);
    json_object_set_new(desc, "TableArn", json_sprintf(ARN_PREFIX "%s", name));
    json_object_set_new(desc, "ProvisionedThroughput", throughput(in, ppr));
  }
  uint8_t no = 1;
  const char *lists[] = {"GlobalSecondaryIndexes", "LocalSecondaryIndexes"};
  for (int l = 0; l < 2 && rc == 0; l++) {
    json_t *ixs = json_object_get(in, lists[l]);
    if (ixs == NULL)
      continue;
    if (!json_is_array(ixs) || json_array_size(ixs) == 0) {
      rc = invalid(e, l == 0 ? "List of GlobalSecondaryIndexes is empty"
                             : "List of LocalSecondaryIndexes is empty");
      break;
    }
    if (json_array_size(ixs) > (l == 0 ? KV_GSI_MAX : KV_LSI_MAX)) {
      rc = invalid(e, l == 0 ? "GlobalSecondaryIndex count exceeds the per-table limit of 20"
                             : "LocalSecondaryIndex count exceeds the per-table limit of 5");
      break;
    }
    json_t *arr = json_array();
    size_t i;
    json_t *ix;
    json_array_foreach(ixs, i, ix) {
      json_t *d;
      rc = index_desc(ix, defs, name, hash, l == 0, ppr, no++, used, &d, e);
      if (rc != 0)
        break;
      if (index_named(desc, kv__in_str(d, "IndexName")) ||
          json_array_size(arr) > 0) {
        bool dup = index_named(desc, kv__in_str(d, "IndexName"));
        size_t j;
        json_t *o;
        json_array_foreach(arr, j, o) dup = dup || strcmp(kv__in_str(o, "IndexName"),
                                                          kv__in_str(d, "IndexName")) == 0;
        if (dup) {
          char msg[300];
          snprintf(msg, sizeof msg, "Duplicate index name: %s", kv__in_str(d, "IndexName"));
          json_decref(d);
          rc = invalid(e, msg);
          break;
        }
      }
      json_array_append_new(arr, d);
    }
    json_object_set_new(desc, lists[l], arr);
  }
  if (rc == 0 && json_array_size(defs) != json_object_size(used))
    rc = invalid(e, "Number of attributes in KeySchema does not exactly match number of "
                 "attributes defined in AttributeDefinitions");
  json_decref(used);
  if (rc != 0) {
    json_decref(desc);
    return rc;
  }
  json_object_set_new(desc, "TarnNextIndex", json_integer(no));
  set_stream(desc, name, json_object_get(in, "StreamSpecification"));
  if (json_is_array(json_object_get(in, "Tags")))
    json_object_set(desc, "TarnTags", json_object_get(in, "Tags"));
  create_arg c = {name, desc};
  rc = kv__write(k, create_apply, &c, e);
  if (rc == 0) {
    json_t *pub = public_desc(k, NULL, desc);
    json_object_set_new(pub, "TableStatus", json_string("ACTIVE"));
    *out = json_pack("{so}", "TableDescription", pub);
  }
  json_decref(desc);
  return rc;
}

static uint64_t count_prefix(kv *k, MDB_txn *txn, uint32_t id, uint8_t no, uint64_t *bytes)
{
  uint8_t pre[5] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id, no};
  MDB_cursor *cur;
  uint64_t n = 0;
  *bytes = 0;
  if (mdb_cursor_open(txn, k->items, &cur) != 0)
    return 0;
  MDB_val key = {5, pre}, val;
  int mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
  while (mrc == 0 && key.mv_size >= 5 && memcmp(key.mv_data, pre, 5) == 0) {
    n++;
    *bytes += key.mv_size + val.mv_size;
    mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  return n;
}

static void strip(json_t *o)
{
  json_object_del(o, "TarnIndex");
}

static json_t *public_desc(kv *k, MDB_txn *txn, json_t *desc)
{
  json_t *d = json_deep_copy(desc);
  uint32_t id = (uint32_t)json_integer_value(json_object_get(desc, "TarnId"));
  json_object_del(d, "TarnId");
  json_object_del(d, "TarnNextIndex");
  json_object_del(d, "TarnTtl");
  json_object_del(d, "TarnTags");
  if (!json_is_true(json_object_get(json_object_get(d, "StreamSpecification"), "StreamEnabled")) &&
      json_object_get(d, "LatestStreamArn") == NULL)
    json_object_del(d, "StreamSpecification");
  const char *lists[] = {"GlobalSecondaryIndexes", "LocalSecondaryIndexes"};
  for (int l = 0; l < 2; l++) {
    json_t *arr = json_object_get(d, lists[l]);
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
      uint64_t bytes = 0;
      if (txn != NULL) {
        uint8_t no = (uint8_t)json_integer_value(json_object_get(x, "TarnIndex"));
        json_object_set_new(x, "ItemCount", json_integer((json_int_t)count_prefix(k, txn, id, no, &bytes)));
        json_object_set_new(x, "IndexSizeBytes", json_integer((json_int_t)bytes));
      }
      strip(x);
    }
    if (arr != NULL && json_array_size(arr) == 0)
      json_object_del(d, lists[l]);
  }
  if (txn != NULL) {
    uint64_t bytes;
    uint64_t n = count_prefix(k, txn, id, 0, &bytes);
    json_object_set_new(d, "ItemCount", json_integer((json_int_t)n));
    json_object_set_new(d, "TableSizeBytes", json_integer((json_int_t)bytes));
  }
  return d;
}

int kv__describe_table(kv *k, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = kv__need_table_name(in, &name, e);
  if (rc != 0)
    return rc;
  MDB_txn *txn;
  if ((rc = lmdb_read_begin(k->env, &txn, e)) != 0)
    return rc;
  json_t *desc;
  rc = kv__table_load(k, txn, name, &desc, e);
  if (rc == 0) {
    *out = json_pack("{so}", "Table", public_desc(k, txn, desc));
    json_decref(desc);
  }
  mdb_txn_abort(txn);
  return rc;
}

int kv__list_tables(kv *k, json_t *in, json_t **out, err *e)
{
  json_t *lim = json_object_get(in, "Limit");
  json_int_t limit = lim != NULL ? json_integer_value(lim) : 100;
  if (lim != NULL && (limit < 1 || limit > 100))
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%lld' at 'limit' "
                   "failed to satisfy constraint: Member must have value %s", (long long)limit,
                   limit < 1 ? "greater than or equal to 1" : "less than or equal to 100");
  const char *start = kv__in_str(in, "ExclusiveStartTableName");
  MDB_txn *txn;
  int rc = lmdb_read_begin(k->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, k->tables, &cur);
  MDB_val key = {0, NULL}, val;
  int mrc;
  if (start != NULL) {
    key = (MDB_val){strlen(start), (void *)start};
    mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (mrc == 0 && key.mv_size == strlen(start) && memcmp(key.mv_data, start, key.mv_size) == 0)
      mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
  } else {
    mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
  }
  json_t *names = json_array();
  json_t *res = json_object();
  while (mrc == 0) {
    if ((json_int_t)json_array_size(names) == limit) {
      json_object_set(res, "LastEvaluatedTableName", json_array_get(names, (size_t)limit - 1));
      break;
    }
    json_array_append_new(names, json_stringn(key.mv_data, key.mv_size));
    mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  json_object_set_new(res, "TableNames", names);
  *out = res;
  return 0;
}

/* ---- changes to an existing table ---- */

typedef struct alter_arg {
  const char *name;
  json_t *in;
  int (*fn)(kv *k, struct alter_arg *a, MDB_txn *txn, json_t *desc, err *e);
  json_t *out;
} alter_arg;

static int alter_apply(kv *k, void *argp, MDB_txn *txn, arena *a, err *e)
{
  alter_arg *c = argp;
  json_t *desc;
  int rc = kv__table_load(k, txn, c->name, &desc, e);
  if (rc != 0)
    return rc;
  rc = c->fn(k, c, txn, desc, e);
  if (rc == 0)
    rc = kv__table_store(k, txn, c->name, desc, e);
  if (rc == 0 && c->out == NULL)
    c->out = public_desc(k, txn, desc);
  json_decref(desc);
  return rc;
}

static int alter(kv *k, json_t *in, const char *name,
                 int (*fn)(kv *k, alter_arg *a, MDB_txn *txn, json_t *desc, err *e),
                 json_t **out, err *e)
{
  alter_arg c = {name, in, fn, NULL};
  int rc = kv__write(k, alter_apply, &c, e);
  if (rc != 0) {
    json_decref(c.out);
    return rc;
  }
  *out = c.out;
  return 0;
}

/* Deletes every entry under [id][no] (no < 0: every index). */
static int drop_prefix(kv *k, MDB_txn *txn, uint32_t id, int no, err *e)
{
  uint8_t pre[5] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id,
                    (uint8_t)(no < 0 ? 0 : no)};
  size_t plen = no < 0 ? 4 : 5;
  MDB_cursor *cur;
  int mrc = mdb_cursor_open(txn, k->items, &cur);
  MDB_val key = {plen, pre}, val;
  if (mrc == 0)
    mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
  while (mrc == 0 && key.mv_size >= plen && memcmp(key.mv_data, pre, plen) == 0) {
    mrc = mdb_cursor_del(cur, 0);
    if (mrc == 0)
      mrc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT);
  }
  mdb_cursor_close(cur);
  return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : lmdb_error(e, mrc, "delete a table's items");
}

static int delete_fn(kv *k, alter_arg *a, MDB_txn *txn, json_t *desc, err *e)
{
  uint32_t id = (uint32_t)json_integer_value(json_object_get(desc, "TarnId"));
  a->out = public_desc(k, txn, desc);
  json_object_set_new(a->out, "TableStatus", json_string("DELETING"));
  int rc = drop_prefix(k, txn, id, -1, e);
  if (rc != 0)
    return rc;
  /* the stream's records go with the table */
  uint8_t pre[4] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
  MDB_cursor *cur;
  MDB_val key = {4, pre}, val;
  int mrc = mdb_cursor_open(txn, k->streams, &cur);
  if (mrc == 0)
    mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
  while (mrc == 0 && key.mv_size >= 4 && memcmp(key.mv_data, pre, 4) == 0) {
    mrc = mdb_cursor_del(cur, 0);
    if (mrc == 0)
      mrc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT);
  }
  mdb_cursor_close(cur);
  MDB_val tk = {strlen(a->name), (void *)a->name};
  mrc = mdb_del(txn, k->tables, &tk, NULL);
  return mrc == 0 ? 1 : lmdb_error(e, mrc, "delete a table"); /* 1: do not store desc again */
}

static int delete_apply(kv *k, void *argp, MDB_txn *txn, arena *a, err *e)
{
  alter_arg *c = argp;
  json_t *desc;
  int rc = kv__table_load(k, txn, c->name, &desc, e);
  if (rc != 0)
    return rc;
  rc = delete_fn(k, c, txn, desc, e);
  json_decref(desc);
  return rc == 1 ? 0 : rc;
}

int kv__delete_table(kv *k, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = kv__need_table_name(in, &name, e);
  if (rc != 0)
    return rc;
  alter_arg c = {name, in, NULL, NULL};
  rc = kv__write(k, delete_apply, &c, e);
  if (rc != 0) {
    json_decref(c.out);
    return rc;
  }
  *out = json_pack("{so}", "TableDescription", c.out);
  return 0;
}

static int update_fn(kv *k, alter_arg *a, MDB_txn *txn, json_t *desc, err *e)
{
  json_t *in = a->in;
  const char *name = a->name;
  int rc = 0;
  if (json_object_get(in, "BillingMode") != NULL) {
    bool ppr;
    rc = check_billing(in, &ppr, e);
    if (rc != 0)
      return rc;
    json_object_set_new(desc, "BillingModeSummary",
                        json_pack("{ss}", "BillingMode", ppr ? "PAY_PER_REQUEST" : "PROVISIONED"));
    json_object_set_new(desc, "ProvisionedThroughput", throughput(in, ppr));
  } else if (json_object_get(in, "ProvisionedThroughput") != NULL) {
    json_object_set_new(desc, "ProvisionedThroughput", throughput(in, false));
  }
  json_t *spec = json_object_get(in, "StreamSpecification");
  if (spec != NULL) {
    if ((rc = check_stream(spec, e)) != 0)
      return rc;
    bool was = json_is_true(json_object_get(json_object_get(desc, "StreamSpecification"),
                                            "StreamEnabled"));
    bool want = json_is_true(json_object_get(spec, "StreamEnabled"));
    if (was && want)
      return err_set(e, KV_ERR_VALIDATION, "Table already has an enabled stream: %s",
                     json_string_value(json_object_get(desc, "TableArn")));
    if (!was && !want)
      return err_set(e, KV_ERR_VALIDATION, "Table already has no stream enabled");
    set_stream(desc, name, spec);
  }
  json_t *defs = json_object_get(desc, "AttributeDefinitions");
  json_t *newdefs = json_object_get(in, "AttributeDefinitions");
  size_t i;
  json_t *d;
  json_array_foreach(newdefs, i, d) {
    if (def_type(defs, kv__in_str(d, "AttributeName")) == NULL)
      json_array_append(defs, d);
  }
  json_t *updates = json_object_get(in, "GlobalSecondaryIndexUpdates");
  json_t *u;
  json_array_foreach(updates, i, u) {
    json_t *create = json_object_get(u, "Create");
    json_t *del = json_object_get(u, "Delete");
    json_t *gsis = json_object_get(desc, "GlobalSecondaryIndexes");
    if (gsis == NULL) {
      gsis = json_array();
      json_object_set_new(desc, "GlobalSecondaryIndexes", gsis);
    }
    if (create != NULL) {
      const char *ixname = kv__in_str(create, "IndexName");
      if (ixname != NULL && index_named(desc, ixname))
        return err_set(e, KV_ERR_VALIDATION, "One or more parameter values were invalid: Index "
                       "with name %s already exists", ixname);
      if (json_array_size(gsis) >= KV_GSI_MAX)
        return err_set(e, KV_ERR_LIMIT, "GlobalSecondaryIndex count exceeds the per-table "
                       "limit of 20");
      json_t *used = json_object();
      bool ppr = strcmp(json_string_value(json_object_get(json_object_get(desc, "BillingModeSummary"),
                                                          "BillingMode")), "PAY_PER_REQUEST") == 0;
      uint8_t no = (uint8_t)json_integer_value(json_object_get(desc, "TarnNextIndex"));
      json_t *ixd;
      rc = index_desc(create, defs, name, NULL, true, ppr, no, used, &ixd, e);
      json_decref(used);
      if (rc != 0)
        return rc;
      json_array_append_new(gsis, ixd);
      json_object_set_new(desc, "TarnNextIndex", json_integer(no + 1));
      /* (2): fill it from the table's items */
      kv_table t;
      memset(&t, 0, sizeof t);
      rc = kv__table_from_desc(desc, &t, e);
      if (rc == 0)
        rc = kv__index_fill(k, txn, &t, no, e);
      kv__table_release(&t);
      if (rc != 0)
        return rc;
    } else if (del != NULL) {
      const char *ixname = kv__in_str(del, "IndexName");
      bool found = false;
      for (size_t j = 0; j < json_array_size(gsis) && !found; j++) {
        json_t *x = json_array_get(gsis, j);
        if (ixname != NULL && strcmp(kv__in_str(x, "IndexName"), ixname) == 0) {
          uint32_t id = (uint32_t)json_integer_value(json_object_get(desc, "TarnId"));
          rc = drop_prefix(k, txn, id, (int)json_integer_value(json_object_get(x, "TarnIndex")), e);
          if (rc != 0)
            return rc;
          json_array_remove(gsis, j);
          found = true;
        }
      }
      if (!found)
        return err_set(e, KV_ERR_NO_TABLE, "Requested resource not found: Index: %s not found",
                       ixname != NULL ? ixname : "null");
    }
  }
  return 0;
}

int kv__update_table(kv *k, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = kv__need_table_name(in, &name, e);
  if (rc != 0)
    return rc;
  json_t *d;
  rc = alter(k, in, name, update_fn, &d, e);
  if (rc == 0)
    *out = json_pack("{so}", "TableDescription", d);
  return rc;
}

/* ---- time to live ---- */

static int ttl_fn(kv *k, alter_arg *a, MDB_txn *txn, json_t *desc, err *e)
{
  json_t *spec = json_object_get(a->in, "TimeToLiveSpecification");
  const char *attr = kv__in_str(spec, "AttributeName");
  json_t *en = json_object_get(spec, "Enabled");
  if (attr == NULL || !json_is_boolean(en))
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value null at "
                   "'timeToLiveSpecification' failed to satisfy constraint: Member must not be "
                   "null");
  json_t *cur = json_object_get(desc, "TarnTtl");
  bool was = json_is_true(json_object_get(cur, "Enabled"));
  if (was == json_is_true(en))
    return err_set(e, KV_ERR_VALIDATION, "TimeToLive is already %s",
                   was ? "enabled" : "disabled");
  json_object_set_new(desc, "TarnTtl", json_pack("{sssO}", "AttributeName", attr, "Enabled", en));
  a->out = json_pack("{s{sssO}}", "TimeToLiveSpecification", "AttributeName", attr, "Enabled", en);
  return 0;
}

int kv__update_ttl(kv *k, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = kv__need_table_name(in, &name, e);
  if (rc != 0)
    return rc;
  return alter(k, in, name, ttl_fn, out, e);
}

/* The stored description of table name, in a read transaction of its own. */
static int load_desc(kv *k, const char *name, json_t **desc, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(k->env, &txn, e);
  if (rc != 0)
    return rc;
  rc = kv__table_load(k, txn, name, desc, e);
  mdb_txn_abort(txn);
  return rc;
}

int kv__describe_ttl(kv *k, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = kv__need_table_name(in, &name, e);
  if (rc != 0)
    return rc;
  json_t *desc;
  if ((rc = load_desc(k, name, &desc, e)) != 0)
    return rc;
  json_t *ttl = json_object_get(desc, "TarnTtl");
  if (json_is_true(json_object_get(ttl, "Enabled")))
    *out = json_pack("{s{sssO}}", "TimeToLiveDescription", "TimeToLiveStatus", "ENABLED",
                     "AttributeName", json_object_get(ttl, "AttributeName"));
  else
    *out = json_pack("{s{ss}}", "TimeToLiveDescription", "TimeToLiveStatus", "DISABLED");
  json_decref(desc);
  return 0;
}

/* ---- tags ---- */

static int arn_table(json_t *in, const char **name, err *e)
{
  const char *arn = kv__in_str(in, "ResourceArn");
  if (arn == NULL || !str_starts(arn, ARN_PREFIX) || strlen(arn) <= strlen(ARN_PREFIX))
    return err_set(e, KV_ERR_VALIDATION, "Invalid TableArn: Invalid ResourceArn provided as "
                   "input %s", arn != NULL ? arn : "null");
  *name = arn + strlen(ARN_PREFIX);
  if (strchr(*name, '/') != NULL)
    return err_set(e, KV_ERR_VALIDATION, "Invalid TableArn: Invalid ResourceArn provided as "
                   "input %s", arn);
  return 0;
}

static int tag_fn(kv *k, alter_arg *a, MDB_txn *txn, json_t *desc, err *e)
{
  json_t *tags = json_object_get(desc, "TarnTags");
  if (tags == NULL) {
    tags = json_array();
    json_object_set_new(desc, "TarnTags", tags);
  }
  json_t *add = json_object_get(a->in, "Tags");
  json_t *remove = json_object_get(a->in, "TagKeys");
  size_t i;
  json_t *t;
  json_array_foreach(add, i, t) {
    const char *key = kv__in_str(t, "Key");
    if (key == NULL || kv__in_str(t, "Value") == NULL)
      return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value null at "
                     "'tags.%zu.member.key' failed to satisfy constraint: Member must not be null",
                     i + 1);
    for (size_t j = json_array_size(tags); j > 0; j--)
      if (strcmp(kv__in_str(json_array_get(tags, j - 1), "Key"), key) == 0)
        json_array_remove(tags, j - 1);
    json_array_append(tags, t);
  }
  json_array_foreach(remove, i, t) {
    for (size_t j = json_array_size(tags); j > 0; j--)
      if (json_is_string(t) &&
          strcmp(kv__in_str(json_array_get(tags, j - 1), "Key"), json_string_value(t)) == 0)
        json_array_remove(tags, j - 1);
  }
  if (json_array_size(tags) > 50)
    return err_set(e, KV_ERR_LIMIT, "The number of tags exceeds the limit of 50");
  a->out = json_object();
  return 0;
}

int kv__tag_resource(kv *k, json_t *in, json_t **out, err *e)
{
  const char *name = NULL;
  int rc = arn_table(in, &name, e);
  return rc != 0 ? rc : alter(k, in, name, tag_fn, out, e);
}

int kv__untag_resource(kv *k, json_t *in, json_t **out, err *e)
{
  return kv__tag_resource(k, in, out, e);
}

int kv__list_tags(kv *k, json_t *in, json_t **out, err *e)
{
  const char *name = NULL;
  int rc = arn_table(in, &name, e);
  if (rc != 0)
    return rc;
  json_t *desc;
  if ((rc = load_desc(k, name, &desc, e)) != 0)
    return rc;
  json_t *tags = json_object_get(desc, "TarnTags");
  *out = json_object();
  json_object_set_new(*out, "Tags", tags != NULL ? json_deep_copy(tags) : json_array());
  json_decref(desc);
  return 0;
}

/* ---- account-level answers SDKs and tools ask for ---- */

int kv__describe_limits(kv *k, json_t *in, json_t **out, err *e)
{
  *out = json_pack("{sisisisi}", "AccountMaxReadCapacityUnits", 80000,
                   "AccountMaxWriteCapacityUnits", 80000, "TableMaxReadCapacityUnits", 40000,
                   "TableMaxWriteCapacityUnits", 40000);
  return 0;
}

int kv__describe_endpoints(kv *k, json_t *in, json_t **out, err *e)
{
  *out = json_pack("{s[{sssi}]}", "Endpoints", "Address", "dynamodb.us-east-1.amazonaws.com",
                   "CachePeriodInMinutes", 1440);
  return 0;
}

/* Point-in-time recovery is not kept: the table exists, backups are off. */
int kv__describe_backups(kv *k, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = kv__need_table_name(in, &name, e);
  json_t *desc = NULL;
  if (rc == 0)
    rc = load_desc(k, name, &desc, e);
  if (rc != 0)
    return rc;
  json_decref(desc);
  *out = json_pack("{s{sss{ss}}}", "ContinuousBackupsDescription", "ContinuousBackupsStatus",
                   "DISABLED", "PointInTimeRecoveryDescription", "PointInTimeRecoveryStatus",
                   "DISABLED");
  return 0;
}
