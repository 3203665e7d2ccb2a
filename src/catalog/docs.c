/* catalog/docs.c -- building the documents that readers of the lake write
 * into the catalog: a StorageDescriptor for one of the formats tarn reads
 * (as Athena and Glue's crawlers write them), a PartitionInput below a
 * table, and Hive's partition folder names ("k=v", percent-escaped).
 *
 * Why here: the SQL engine (CREATE TABLE AS, INSERT INTO, MSCK REPAIR
 * TABLE, ALTER TABLE ADD PARTITION) and the crawler build the same
 * documents; one builder keeps them alike.
 *
 * Invariants: the documents pass catalog__input's checks for well-formed
 * arguments; nothing here touches the database.
 */
#include "catalog/catalog.h"

#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

#define SERDE_LAZY "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
#define SERDE_PARQUET "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
#define SERDE_JSON "org.openx.data.jsonserde.JsonSerDe"
#define IF_TEXT "org.apache.hadoop.mapred.TextInputFormat"
#define OF_TEXT "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
#define IF_PARQUET "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
#define OF_PARQUET "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

json_t *catalog_storage_new(const char *format, const char *location, json_t *columns,
                         const char *field_delim)
{
  json_t *sd = json_object();
  json_object_set_new(sd, "Columns", columns);
  json_object_set_new(sd, "Location", json_string(location));
  json_t *si = json_object();
  json_t *sp = json_object();
  if (!strcmp(format, "parquet")) {
    json_object_set_new(sd, "InputFormat", json_string(IF_PARQUET));
    json_object_set_new(sd, "OutputFormat", json_string(OF_PARQUET));
    json_object_set_new(si, "SerializationLibrary", json_string(SERDE_PARQUET));
    json_object_set_new(sp, "serialization.format", json_string("1"));
  } else if (!strcmp(format, "json")) {
    json_object_set_new(sd, "InputFormat", json_string(IF_TEXT));
    json_object_set_new(sd, "OutputFormat", json_string(OF_TEXT));
    json_object_set_new(si, "SerializationLibrary", json_string(SERDE_JSON));
  } else {
    json_object_set_new(sd, "InputFormat", json_string(IF_TEXT));
    json_object_set_new(sd, "OutputFormat", json_string(OF_TEXT));
    json_object_set_new(si, "SerializationLibrary", json_string(SERDE_LAZY));
    json_object_set_new(sp, "field.delim", json_string(field_delim != NULL ? field_delim : ","));
  }
  json_object_set_new(si, "Parameters", sp);
  json_object_set_new(sd, "SerdeInfo", si);
  return sd;
}

json_t *catalog_values_new(const char **vals, size_t n)
{
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, json_string(vals[i] != NULL ? vals[i] : CATALOG_HIVE_NULL));
  return a;
}

json_t *catalog_partition_input(const char **vals, size_t n, const char *location,
                                 const json_t *table_sd)
{
  json_t *in = json_object();
  json_object_set_new(in, "Values", catalog_values_new(vals, n));
  json_t *sd = table_sd != NULL ? json_deep_copy(table_sd) : json_object();
  json_object_set_new(sd, "Location", json_string(location));
  json_object_set_new(in, "StorageDescriptor", sd);
  return in;
}

int catalog_partitions_add(catalog *c, const char *db, const char *tname, json_t *inputs,
                            bool skip_existing, size_t *added, err *e)
{
  size_t n = json_array_size(inputs);
  *added = 0;
  for (size_t i = 0; i < n; i += CATALOG_MAX_BATCH_CREATE) {
    json_t *chunk = json_array();
    for (size_t k = i; k < n && k < i + CATALOG_MAX_BATCH_CREATE; k++)
      json_array_append(chunk, json_array_get(inputs, k));
    json_t *errors = NULL;
    int rc = catalog_partition_batch_create(c, db, tname, chunk, &errors, e);
    size_t nb = json_array_size(chunk);
    json_decref(chunk);
    if (rc < 0) {
      json_decref(errors);
      return rc;
    }
    size_t bad = 0;
    size_t j;
    json_t *er;
    json_array_foreach(errors, j, er)
    {
      json_t *det = json_object_get(er, "ErrorDetail");
      const char *code = json_string_value(json_object_get(det, "ErrorCode"));
      const char *msg = json_string_value(json_object_get(det, "ErrorMessage"));
      if (code != NULL && strstr(code, "AlreadyExists") != NULL && skip_existing) {
        bad++;
        continue;
      }
      err_set(e, code != NULL && strstr(code, "AlreadyExists") ? ERR_ALREADY_EXISTS
                                                                : ERR_INVALID_INPUT,
              "%s", msg != NULL ? msg : "a partition was not added");
      json_decref(errors);
      return e->code;
    }
    json_decref(errors);
    *added += nb - bad;
  }
  return 0;
}

static int hexv(char c)
{
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

char *catalog_hive_unescape(const char *p, size_t n)
{
  char *o = xmalloc(n + 1);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '%' && i + 2 < n + 0 && hexv(p[i + 1]) >= 0 && hexv(p[i + 2]) >= 0) {
      o[k++] = (char)(hexv(p[i + 1]) * 16 + hexv(p[i + 2]));
      i += 2;
    } else {
      o[k++] = p[i];
    }
  }
  o[k] = 0;
  return o;
}
