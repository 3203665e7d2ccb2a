/* api/glue.c -- the AWS Glue Data Catalog endpoint: JSON 1.1 requests
 * (X-Amz-Target: AWSGlue.*, api/json_rpc.c) onto catalog/catalog.h.
 *
 * Operations: CreateDatabase, GetDatabase, GetDatabases, UpdateDatabase,
 * DeleteDatabase, CreateTable, GetTable, GetTables, UpdateTable,
 * DeleteTable, BatchDeleteTable, CreatePartition, BatchCreatePartition,
 * GetPartition, GetPartitions (with Segment), BatchGetPartition,
 * UpdatePartition, BatchUpdatePartition, DeletePartition,
 * BatchDeletePartition; column statistics: GetColumnStatisticsForTable,
 * UpdateColumnStatisticsForTable, DeleteColumnStatisticsForTable and the
 * same ForPartition; Create/Update/Delete/GetUserDefinedFunction and
 * GetUserDefinedFunctions; crawlers (catalog/crawler.h): CreateCrawler,
 * GetCrawler, GetCrawlers, ListCrawlers, UpdateCrawler, DeleteCrawler,
 * StartCrawler, StopCrawler, GetCrawlerMetrics.
 *
 * Invariants:
 *   (1) Documents leave as the catalog keeps them (Glue's shapes); this file
 *       only unwraps the request members and wraps the answers.
 *   (2) The catalog is the only account's (CatalogId, when given, is
 *       checked for length only).
 *   (3) Bodies are bounded (GLUE_BODY_MAX); every member the catalog
 *       stores is bounded by catalog.h's limits.
 *
 * Start reading at the ops[] table.
 */
#include "api/glue.h"

#include "api/iam.h"
#include "api/json_rpc.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

#define GLUE_BODY_MAX (16u << 20)

typedef struct glue_ctx {
  catalog *c;
  crawlers *cr;
} glue_ctx;

#define CAT(ctx) (((glue_ctx *)(ctx))->c)
#define CRAWLERS(ctx) (((glue_ctx *)(ctx))->cr)

static int required(const char *what, err *e)
{
  return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value null at '%s' failed "
                 "to satisfy constraint: Member must not be null", what);
}

/* A required string member. */
static int need(json_t *in, const char *name, const char *path, const char **out, err *e)
{
  *out = json_rpc_str(in, name);
  if (*out == NULL)
    return required(path, e);
  return 0;
}

/* CatalogId, when given, is at most 255 characters (Glue's limit). */
static int catalog_id(json_t *in, err *e)
{
  const char *id = json_rpc_str(in, "CatalogId");
  if (id != NULL && (strlen(id) == 0 || strlen(id) > CATALOG_MAX_NAME))
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at 'catalogId' "
                   "failed to satisfy constraint: Member must have length between 1 and %d",
                   CATALOG_MAX_NAME);
  return 0;
}

/* Wraps one page: {member: list, NextToken?}. Takes list and next. */
static json_t *page(const char *member, json_t *list, char *next)
{
  json_t *out = json_pack("{s:o}", member, list);
  if (next != NULL)
    json_object_set_new(out, "NextToken", json_string(next));
  free(next);
  return out;
}

static int page_args(json_t *in, long max, long *limit, const char **token, err *e)
{
  bool present;
  *limit = 0;
  int rc = json_rpc_int(in, "MaxResults", 1, max, limit, &present, e);
  if (rc != 0)
    return rc;
  *token = json_rpc_str(in, "NextToken");
  if (*token != NULL && strlen(*token) > 2 * 1024)
    return err_set(e, ERR_INVALID_INPUT, "Invalid continuation token");
  return 0;
}

/* ---- databases ---- */

static int op_create_database(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  int rc = catalog_id(in, e);
  if (rc == 0)
    rc = catalog_database_create(CAT(ctx), json_object_get(in, "DatabaseInput"), NULL, e);
  if (rc == 0)
    *out = json_object();
  return rc;
}

static int op_get_database(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  json_t *d;
  if (catalog_id(in, e) != 0 || need(in, "Name", "name", &name, e) != 0 ||
      catalog_database_get(CAT(ctx), name, &d, e) != 0)
    return e->code;
  *out = json_pack("{s:o}", "Database", d);
  return 0;
}

static int op_get_databases(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  long limit;
  const char *token;
  json_t *list;
  char *next;
  if (catalog_id(in, e) != 0 || page_args(in, CATALOG_MAX_PAGE_DATABASES, &limit, &token, e) != 0 ||
      catalog_database_list(CAT(ctx), token, (size_t)limit, &list, &next, e) != 0)
    return e->code;
  *out = page("DatabaseList", list, next);
  return 0;
}

static int op_update_database(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  if (catalog_id(in, e) != 0 || need(in, "Name", "name", &name, e) != 0 ||
      catalog_database_update(CAT(ctx), name, json_object_get(in, "DatabaseInput"), e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_delete_database(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  if (catalog_id(in, e) != 0 || need(in, "Name", "name", &name, e) != 0 ||
      catalog_database_delete(CAT(ctx), name, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

/* ---- tables ---- */

static int need_db(json_t *in, const char **db, err *e)
{
  if (catalog_id(in, e) != 0)
    return e->code;
  return need(in, "DatabaseName", "databaseName", db, e);
}

static int op_create_table(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  if (need_db(in, &db, e) != 0 ||
      catalog_table_create(CAT(ctx), db, json_object_get(in, "TableInput"), NULL, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_get_table(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *name;
  json_t *t;
  if (need_db(in, &db, e) != 0 || need(in, "Name", "name", &name, e) != 0 ||
      catalog_table_get(CAT(ctx), db, name, &t, e) != 0)
    return e->code;
  *out = json_pack("{s:o}", "Table", t);
  return 0;
}

static int op_get_tables(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  long limit;
  const char *token;
  json_t *list;
  char *next;
  if (need_db(in, &db, e) != 0 ||
      page_args(in, CATALOG_MAX_PAGE_TABLES, &limit, &token, e) != 0)
    return e->code;
  const char *expr = json_rpc_str(in, "Expression");
  if (expr != NULL && strlen(expr) > CATALOG_MAX_EXPRESSION)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at 'expression' "
                   "failed to satisfy constraint: Member must have length less than or equal "
                   "to %d", CATALOG_MAX_EXPRESSION);
  if (catalog_table_list(CAT(ctx), db, expr, token, (size_t)limit, &list, &next, e) != 0)
    return e->code;
  *out = page("TableList", list, next);
  return 0;
}

/* UpdateTable: VersionId (optimistic writers) and SkipArchive (tarn keeps
 * no table versions to skip) are Glue's members; TransactionId is refused,
 * as tarn has no Lake Formation transactions. */
static int op_update_table(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  if (need_db(in, &db, e) != 0)
    return e->code;
  const char *version = json_rpc_str(in, "VersionId");
  if (version != NULL && (strlen(version) == 0 || strlen(version) > CATALOG_MAX_NAME))
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at 'versionId' "
                   "failed to satisfy constraint: Member must have length between 1 and %d",
                   CATALOG_MAX_NAME);
  if (json_rpc_str(in, "TransactionId") != NULL)
    return err_set(e, ERR_INVALID_INPUT, "Transactions are not supported: TransactionId");
  if (catalog_table_update_at(CAT(ctx), db, json_object_get(in, "TableInput"), version, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_delete_table(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *name;
  if (need_db(in, &db, e) != 0 || need(in, "Name", "name", &name, e) != 0 ||
      catalog_table_delete(CAT(ctx), db, name, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_batch_delete_table(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  json_t *errors;
  if (need_db(in, &db, e) != 0)
    return e->code;
  json_t *names = json_object_get(in, "TablesToDelete");
  if (names == NULL)
    return required("tablesToDelete", e);
  if (catalog_table_batch_delete(CAT(ctx), db, names, &errors, e) != 0)
    return e->code;
  *out = json_pack("{s:o}", "Errors", errors);
  return 0;
}

/* ---- partitions ---- */

static int need_table(json_t *in, const char **db, const char **table, err *e)
{
  if (need_db(in, db, e) != 0)
    return e->code;
  return need(in, "TableName", "tableName", table, e);
}

static int op_create_partition(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  if (need_table(in, &db, &table, e) != 0 ||
      catalog_partition_create(CAT(ctx), db, table, json_object_get(in, "PartitionInput"), e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_batch_create_partition(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  json_t *errors;
  if (need_table(in, &db, &table, e) != 0)
    return e->code;
  json_t *list = json_object_get(in, "PartitionInputList");
  if (list == NULL)
    return required("partitionInputList", e);
  if (catalog_partition_batch_create(CAT(ctx), db, table, list, &errors, e) != 0)
    return e->code;
  *out = json_pack("{s:o}", "Errors", errors);
  return 0;
}

static int need_values(json_t *in, const char *name, const char *path, json_t **out, err *e)
{
  *out = json_object_get(in, name);
  if (*out == NULL)
    return required(path, e);
  return 0;
}

static int op_get_partition(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  json_t *values;
  json_t *p;
  if (need_table(in, &db, &table, e) != 0 ||
      need_values(in, "PartitionValues", "partitionValues", &values, e) != 0 ||
      catalog_partition_get(CAT(ctx), db, table, values, &p, e) != 0)
    return e->code;
  *out = json_pack("{s:o}", "Partition", p);
  return 0;
}

static int op_get_partitions(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  long limit;
  const char *token;
  json_t *list;
  char *next;
  if (need_table(in, &db, &table, e) != 0 ||
      page_args(in, CATALOG_MAX_PAGE_PARTITIONS, &limit, &token, e) != 0)
    return e->code;
  const char *expr = json_rpc_str(in, "Expression");
  if (expr != NULL && strlen(expr) > CATALOG_MAX_EXPRESSION)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at 'expression' "
                   "failed to satisfy constraint: Member must have length less than or equal "
                   "to %d", CATALOG_MAX_EXPRESSION);
  long segment = 0;
  long total = 0;
  json_t *seg = json_object_get(in, "Segment");
  if (seg != NULL) {
    bool present;
    if (!json_is_object(seg))
      return err_set(e, ERR_INVALID_INPUT, "Value at 'segment' must be a structure");
    if (json_rpc_int(seg, "SegmentNumber", 0, 2147483647L, &segment, &present, e) != 0)
      return e->code;
    if (!present)
      return required("segment.segmentNumber", e);
    if (json_rpc_int(seg, "TotalSegments", 1, CATALOG_MAX_SEGMENTS, &total, &present, e) != 0)
      return e->code;
    if (!present)
      return required("segment.totalSegments", e);
  }
  if (catalog_partition_list_segment(CAT(ctx), db, table, expr, (int)segment, (int)total, token,
                                     (size_t)limit, &list, &next, e) != 0)
    return e->code;
  if (json_is_true(json_object_get(in, "ExcludeColumnSchema"))) {
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
      json_object_del(json_object_get(p, "StorageDescriptor"), "Columns");
  }
  *out = page("Partitions", list, next);
  return 0;
}

/* [{Values}] -> [[...]]: a new array, or an error naming path. */
static int values_of(json_t *in, const char *name, const char *path, json_t **out, err *e)
{
  json_t *list;
  *out = NULL;
  if (need_values(in, name, path, &list, e) != 0)
    return e->code;
  if (!json_is_array(list))
    return err_set(e, ERR_INVALID_INPUT, "Value at '%s' must be a list", path);
  json_t *vl = json_array();
  size_t i;
  json_t *entry;
  json_array_foreach(list, i, entry)
  {
    json_t *v = json_object_get(entry, "Values");
    if (v == NULL) {
      json_decref(vl);
      return required(path, e);
    }
    json_array_append(vl, v);
  }
  *out = vl;
  return 0;
}

static int op_batch_get_partition(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  json_t *vl;
  json_t *found;
  json_t *unprocessed;
  if (need_table(in, &db, &table, e) != 0 ||
      values_of(in, "PartitionsToGet", "partitionsToGet", &vl, e) != 0)
    return e->code;
  int rc = catalog_partition_batch_get(CAT(ctx), db, table, vl, &found, &unprocessed, e);
  json_decref(vl);
  if (rc != 0)
    return rc;
  *out = json_pack("{s:o, s:o}", "Partitions", found, "UnprocessedKeys", unprocessed);
  return 0;
}

static int op_update_partition(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  json_t *values;
  if (need_table(in, &db, &table, e) != 0 ||
      need_values(in, "PartitionValueList", "partitionValueList", &values, e) != 0 ||
      catalog_partition_update(CAT(ctx), db, table, values, json_object_get(in, "PartitionInput"),
                               e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_batch_update_partition(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  json_t *entries;
  json_t *errors;
  if (need_table(in, &db, &table, e) != 0 ||
      need_values(in, "Entries", "entries", &entries, e) != 0 ||
      catalog_partition_batch_update(CAT(ctx), db, table, entries, &errors, e) != 0)
    return e->code;
  *out = json_pack("{s:o}", "Errors", errors);
  return 0;
}

static int op_delete_partition(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  json_t *values;
  if (need_table(in, &db, &table, e) != 0 ||
      need_values(in, "PartitionValues", "partitionValues", &values, e) != 0 ||
      catalog_partition_delete(CAT(ctx), db, table, values, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_batch_delete_partition(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  json_t *vl;
  json_t *errors;
  if (need_table(in, &db, &table, e) != 0 ||
      values_of(in, "PartitionsToDelete", "partitionsToDelete", &vl, e) != 0)
    return e->code;
  int rc = catalog_partition_batch_delete(CAT(ctx), db, table, vl, &errors, e);
  json_decref(vl);
  if (rc != 0)
    return rc;
  *out = json_pack("{s:o}", "Errors", errors);
  return 0;
}

/* ---- column statistics ---- */

/* The table, and for a ...ForPartition call (partition) its partition's
 * PartitionValues (else *values NULL). */
static int stats_target(json_t *in, bool partition, const char **db, const char **table,
                        json_t **values, err *e)
{
  *values = NULL;
  if (need_table(in, db, table, e) != 0)
    return e->code;
  if (!partition)
    return 0;
  return need_values(in, "PartitionValues", "partitionValues", values, e);
}

static int get_stats(void *ctx, bool partition, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  json_t *values;
  json_t *names;
  json_t *list;
  json_t *errors;
  if (stats_target(in, partition, &db, &table, &values, e) != 0 ||
      need_values(in, "ColumnNames", "columnNames", &names, e) != 0 ||
      catalog_column_stats_get(CAT(ctx), db, table, values, names, &list, &errors, e) != 0)
    return e->code;
  *out = json_pack("{s:o, s:o}", "ColumnStatisticsList", list, "Errors", errors);
  return 0;
}

static int update_stats(void *ctx, bool partition, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  json_t *values;
  json_t *list;
  json_t *errors;
  if (stats_target(in, partition, &db, &table, &values, e) != 0 ||
      need_values(in, "ColumnStatisticsList", "columnStatisticsList", &list, e) != 0 ||
      catalog_column_stats_update(CAT(ctx), db, table, values, list, &errors, e) != 0)
    return e->code;
  *out = json_pack("{s:o}", "Errors", errors);
  return 0;
}

static int delete_stats(void *ctx, bool partition, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *table;
  json_t *values;
  const char *column;
  if (stats_target(in, partition, &db, &table, &values, e) != 0 ||
      need(in, "ColumnName", "columnName", &column, e) != 0 ||
      catalog_column_stats_delete(CAT(ctx), db, table, values, column, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_get_stats_table(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return get_stats(ctx, false, in, out, e);
}

static int op_get_stats_partition(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return get_stats(ctx, true, in, out, e);
}

static int op_update_stats_table(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return update_stats(ctx, false, in, out, e);
}

static int op_update_stats_partition(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return update_stats(ctx, true, in, out, e);
}

static int op_delete_stats_table(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return delete_stats(ctx, false, in, out, e);
}

static int op_delete_stats_partition(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  return delete_stats(ctx, true, in, out, e);
}

/* ---- user-defined functions ----
 * Spark's Hive client lists them when it resolves a name; Trino keeps its
 * SQL routines as functions named trino__NAME__SIGNATURE. */

static int op_create_function(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  json_t *input;
  if (need_db(in, &db, e) != 0 ||
      need_values(in, "FunctionInput", "functionInput", &input, e) != 0 ||
      catalog_function_create(CAT(ctx), db, input, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_update_function(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *name;
  json_t *input;
  if (need_db(in, &db, e) != 0 || need(in, "FunctionName", "functionName", &name, e) != 0 ||
      need_values(in, "FunctionInput", "functionInput", &input, e) != 0 ||
      catalog_function_update(CAT(ctx), db, name, input, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_delete_function(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *name;
  if (need_db(in, &db, e) != 0 || need(in, "FunctionName", "functionName", &name, e) != 0 ||
      catalog_function_delete(CAT(ctx), db, name, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_get_function(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *db;
  const char *name;
  json_t *f;
  if (need_db(in, &db, e) != 0 || need(in, "FunctionName", "functionName", &name, e) != 0 ||
      catalog_function_get(CAT(ctx), db, name, &f, e) != 0)
    return e->code;
  *out = json_pack("{s:o}", "UserDefinedFunction", f);
  return 0;
}

static int op_get_functions(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  long limit;
  const char *token;
  const char *pattern;
  json_t *list;
  char *next;
  if (catalog_id(in, e) != 0 || need(in, "Pattern", "pattern", &pattern, e) != 0 ||
      page_args(in, CATALOG_MAX_PAGE_FUNCTIONS, &limit, &token, e) != 0)
    return e->code;
  if (strlen(pattern) == 0 || strlen(pattern) > CATALOG_MAX_NAME)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at 'pattern' "
                   "failed to satisfy constraint: Member must have length between 1 and %d",
                   CATALOG_MAX_NAME);
  if (catalog_function_list(CAT(ctx), json_rpc_str(in, "DatabaseName"), pattern, token,
                            (size_t)limit, &list, &next, e) != 0)
    return e->code;
  *out = page("UserDefinedFunctions", list, next);
  return 0;
}

/* ---- crawlers ---- */

static int op_create_crawler(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  if (crawler_create(CRAWLERS(ctx), in, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_update_crawler(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  if (crawler_update(CRAWLERS(ctx), in, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_get_crawler(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  json_t *d;
  if (need(in, "Name", "name", &name, e) != 0 || crawler_get(CRAWLERS(ctx), name, &d, e) != 0)
    return e->code;
  *out = json_pack("{s:o}", "Crawler", d);
  return 0;
}

static int op_get_crawlers(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  long limit;
  const char *token;
  json_t *list;
  char *next;
  if (page_args(in, 1000, &limit, &token, e) != 0 ||
      crawler_list(CRAWLERS(ctx), token, (size_t)limit, false, &list, &next, e) != 0)
    return e->code;
  *out = page("Crawlers", list, next);
  return 0;
}

static int op_list_crawlers(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  long limit;
  const char *token;
  json_t *list;
  char *next;
  if (page_args(in, 1000, &limit, &token, e) != 0 ||
      crawler_list(CRAWLERS(ctx), token, (size_t)limit, true, &list, &next, e) != 0)
    return e->code;
  *out = page("CrawlerNames", list, next);
  return 0;
}

static int op_delete_crawler(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  if (need(in, "Name", "name", &name, e) != 0 || crawler_delete(CRAWLERS(ctx), name, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_start_crawler(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  if (need(in, "Name", "name", &name, e) != 0 || crawler_start(CRAWLERS(ctx), name, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_stop_crawler(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  const char *name;
  if (need(in, "Name", "name", &name, e) != 0 || crawler_stop(CRAWLERS(ctx), name, e) != 0)
    return e->code;
  *out = json_object();
  return 0;
}

static int op_get_crawler_metrics(void *ctx, http_req *r, json_t *in, json_t **out, err *e)
{
  json_t *names = json_object_get(in, "CrawlerNameList");
  if (names != NULL && (!json_is_array(names) || json_array_size(names) > 100))
    return err_set(e, ERR_INVALID_INPUT, "CrawlerNameList is a list of at most 100 names");
  json_t *list = json_array();
  if (names == NULL) {
    json_t *all;
    char *next;
    if (crawler_list(CRAWLERS(ctx), NULL, 0, true, &all, &next, e) != 0) {
      json_decref(list);
      return e->code;
    }
    free(next);
    names = all;
  } else {
    json_incref(names);
  }
  size_t i;
  json_t *n;
  json_array_foreach(names, i, n)
  {
    json_t *m;
    if (!json_is_string(n))
      continue;
    if (crawler_metrics(CRAWLERS(ctx), json_string_value(n), &m, e) == 0)
      json_array_append_new(list, m);
    else
      err_clear(e);
  }
  json_decref(names);
  *out = json_pack("{s:o}", "CrawlerMetricsList", list);
  return 0;
}

static const json_rpc_op ops[] = {
    {"CreateDatabase", op_create_database},
    {"GetDatabase", op_get_database},
    {"GetDatabases", op_get_databases},
    {"UpdateDatabase", op_update_database},
    {"DeleteDatabase", op_delete_database},
    {"CreateTable", op_create_table},
    {"GetTable", op_get_table},
    {"GetTables", op_get_tables},
    {"UpdateTable", op_update_table},
    {"DeleteTable", op_delete_table},
    {"BatchDeleteTable", op_batch_delete_table},
    {"CreatePartition", op_create_partition},
    {"BatchCreatePartition", op_batch_create_partition},
    {"GetPartition", op_get_partition},
    {"GetPartitions", op_get_partitions},
    {"BatchGetPartition", op_batch_get_partition},
    {"UpdatePartition", op_update_partition},
    {"BatchUpdatePartition", op_batch_update_partition},
    {"DeletePartition", op_delete_partition},
    {"BatchDeletePartition", op_batch_delete_partition},
    {"GetColumnStatisticsForTable", op_get_stats_table},
    {"UpdateColumnStatisticsForTable", op_update_stats_table},
    {"DeleteColumnStatisticsForTable", op_delete_stats_table},
    {"GetColumnStatisticsForPartition", op_get_stats_partition},
    {"UpdateColumnStatisticsForPartition", op_update_stats_partition},
    {"DeleteColumnStatisticsForPartition", op_delete_stats_partition},
    {"CreateUserDefinedFunction", op_create_function},
    {"UpdateUserDefinedFunction", op_update_function},
    {"DeleteUserDefinedFunction", op_delete_function},
    {"GetUserDefinedFunction", op_get_function},
    {"GetUserDefinedFunctions", op_get_functions},
    {"CreateCrawler", op_create_crawler},
    {"UpdateCrawler", op_update_crawler},
    {"GetCrawler", op_get_crawler},
    {"GetCrawlers", op_get_crawlers},
    {"ListCrawlers", op_list_crawlers},
    {"DeleteCrawler", op_delete_crawler},
    {"StartCrawler", op_start_crawler},
    {"StopCrawler", op_stop_crawler},
    {"GetCrawlerMetrics", op_get_crawler_metrics},
};

/* what this service maps apart from json_rpc.c's shared table */
static const json_rpc_code codes[] = {
    {ERR_ENTITY_NOT_FOUND, 400, "EntityNotFoundException"},
    {ERR_ALREADY_EXISTS, 400, "AlreadyExistsException"},
    {ERR_INVALID_INPUT, 400, "InvalidInputException"},
    {ERR_INVALID, 400, "InvalidInputException"},
    {ERR_RESOURCE_LIMIT, 400, "ResourceNumberLimitExceededException"},
    {ERR_CONFLICT, 400, "ConcurrentModificationException"},
    {ERR_CRAWLER_RUNNING, 400, "CrawlerRunningException"},
    {ERR_CRAWLER_NOT_RUNNING, 400, "CrawlerNotRunningException"},
    {ERR_CRAWLER_STOPPING, 400, "CrawlerStoppingException"},
    {ERR_IO, 500, "InternalServiceException"},
    {ERR_INTERNAL, 500, "InternalServiceException"},
};

static const char *resource(http_req *r, const char *op, json_t *in)
{
  if (strstr(op, "Crawler") != NULL) {
    const char *name = json_rpc_str(in, "Name");
    if (name == NULL)
      return "arn:aws:glue:" API_REGION ":" API_ACCOUNT_ID ":crawler/*";
    return arena_sprintf(r->arena, "arn:aws:glue:" API_REGION ":" API_ACCOUNT_ID
                         ":crawler/%s", name);
  }
  const char *db = json_rpc_str(in, "DatabaseName");
  const char *fn = json_rpc_str(in, "FunctionName");
  if (fn == NULL)
    fn = json_rpc_str(json_object_get(in, "FunctionInput"), "FunctionName");
  if (db != NULL && fn != NULL && strstr(op, "UserDefinedFunction") != NULL)
    return arena_sprintf(r->arena, "arn:aws:glue:" API_REGION ":" API_ACCOUNT_ID
                         ":userDefinedFunction/%s/%s", db, fn);
  if (db == NULL && strstr(op, "Database") != NULL && strcmp(op, "GetDatabases") != 0) {
    db = json_rpc_str(in, "Name");
    if (db == NULL)
      db = json_rpc_str(json_object_get(in, "DatabaseInput"), "Name");
  }
  if (db == NULL)
    return "arn:aws:glue:" API_REGION ":" API_ACCOUNT_ID ":catalog";
  const char *table = json_rpc_str(in, "TableName");
  if (table == NULL && strstr(op, "Table") != NULL && strcmp(op, "GetTables") != 0 &&
      strcmp(op, "BatchDeleteTable") != 0) {
    table = json_rpc_str(in, "Name");
    if (table == NULL)
      table = json_rpc_str(json_object_get(in, "TableInput"), "Name");
  }
  if (table == NULL)
    return arena_sprintf(r->arena, "arn:aws:glue:" API_REGION ":" API_ACCOUNT_ID
                         ":database/%s", db);
  return arena_sprintf(r->arena, "arn:aws:glue:" API_REGION ":" API_ACCOUNT_ID ":table/%s/%s",
                       db, table);
}

/* A crawler's Role (iam:PassRole). */
static size_t passed_roles(const char *op, json_t *in, const char *out[4])
{
  const char *role = json_rpc_str(in, "Role");
  if (role == NULL || (strcmp(op, "CreateCrawler") != 0 && strcmp(op, "UpdateCrawler") != 0))
    return 0;
  out[0] = role;
  return 1;
}

static const json_rpc_def def = {
    .service = "glue",
    .target_prefix = "AWSGlue.",
    .content_type = "application/x-amz-json-1.1",
    .ops = ops,
    .nops = sizeof ops / sizeof ops[0],
    .codes = codes,
    .ncodes = sizeof codes / sizeof codes[0],
    .body_max = GLUE_BODY_MAX,
    .resource = resource,
    .passed_roles = passed_roles,
};

http_service *glue_service_new(catalog *c, crawlers *cr)
{
  glue_ctx *g = xmalloc(sizeof *g);
  g->c = c;
  g->cr = cr;
  return json_rpc_service_new(&def, g);
}

http_service *glue_service_free(http_service *svc)
{
  free(json_rpc_service_ctx(svc));
  return json_rpc_service_free(svc);
}
