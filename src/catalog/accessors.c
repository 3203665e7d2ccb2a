/* catalog/accessors.c -- typed reads of catalog documents for the parts
 * that scan tables (the SQL engine): location, columns, partition keys and
 * the storage format with its SerDe settings.
 *
 * Why here: the documents are Glue's JSON; which SerDe or InputFormat means
 * CSV, JSON or Parquet, and which SerDe parameter holds the delimiter, is
 * catalog knowledge, written once.
 *
 * Invariants:
 *   (1) Nothing here allocates: every result points into the document.
 *
 * Start reading at catalog_storage_of().
 */
#include "catalog/internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *str(const json_t *o, const char *name)
{
  return json_string_value(json_object_get(o, name));
}

static size_t column_list(const json_t *list, catalog_column *out, size_t max)
{
  size_t i;
  json_t *c;
  json_array_foreach(list, i, c)
  {
    if (i < max) {
      out[i].name = str(c, "Name");
      out[i].type = str(c, "Type");
      out[i].comment = str(c, "Comment");
    }
  }
  return json_array_size(list);
}

size_t catalog_columns(const json_t *doc, catalog_column *out, size_t max)
{
  return column_list(json_object_get(json_object_get(doc, "StorageDescriptor"), "Columns"), out,
                     max);
}

size_t catalog_partition_keys(const json_t *table, catalog_column *out, size_t max)
{
  return column_list(json_object_get(table, "PartitionKeys"), out, max);
}

const char *catalog_param(const json_t *doc, const char *key)
{
  return str(json_object_get(doc, "Parameters"), key);
}

size_t catalog_partition_values(const json_t *partition, const char **out, size_t max)
{
  json_t *values = json_object_get(partition, "Values");
  size_t i;
  json_t *v;
  json_array_foreach(values, i, v)
  {
    if (i < max)
      out[i] = json_string_value(v);
  }
  return json_array_size(values);
}

static bool contains(const char *s, const char *needle)
{
  return s != NULL && strcasestr(s, needle) != NULL;
}

/* The format a SerDe library, an input format or a classification names. */
static catalog_format format_of(const char *serde, const char *input, const char *cls)
{
  if (contains(serde, "parquet") || contains(input, "parquet"))
    return CATALOG_FORMAT_PARQUET;
  if (contains(serde, "orc") || contains(input, "orc"))
    return CATALOG_FORMAT_ORC;
  if (contains(serde, "avro") || contains(input, "avro"))
    return CATALOG_FORMAT_AVRO;
  if (contains(serde, "json"))
    return CATALOG_FORMAT_JSON;
  if (contains(serde, "OpenCSVSerde") || contains(serde, "LazySimpleSerDe"))
    return CATALOG_FORMAT_CSV;
  if (cls != NULL) {
    if (strcasecmp(cls, "csv") == 0)
      return CATALOG_FORMAT_CSV;
    if (strcasecmp(cls, "json") == 0)
      return CATALOG_FORMAT_JSON;
    if (strcasecmp(cls, "parquet") == 0)
      return CATALOG_FORMAT_PARQUET;
    if (strcasecmp(cls, "orc") == 0)
      return CATALOG_FORMAT_ORC;
    if (strcasecmp(cls, "avro") == 0)
      return CATALOG_FORMAT_AVRO;
  }
  if (contains(input, "TextInputFormat"))
    return CATALOG_FORMAT_CSV;
  return CATALOG_FORMAT_UNKNOWN;
}

static void set_if(const char **dst, const char *v)
{
  if (v != NULL)
    *dst = v;
}

void catalog_storage_of(const json_t *doc, catalog_storage *out)
{
  const json_t *sd = json_object_get(doc, "StorageDescriptor");
  const json_t *serde = json_object_get(sd, "SerdeInfo");
  const json_t *sp = json_object_get(serde, "Parameters");
  set_if(&out->location, str(sd, "Location"));
  set_if(&out->input_format, str(sd, "InputFormat"));
  set_if(&out->output_format, str(sd, "OutputFormat"));
  set_if(&out->serde, str(serde, "SerializationLibrary"));
  set_if(&out->field_delim, str(sp, "separatorChar"));
  set_if(&out->field_delim, str(sp, "field.delim"));
  set_if(&out->quote_char, str(sp, "quoteChar"));
  set_if(&out->escape_char, str(sp, "escapeChar"));
  set_if(&out->escape_char, str(sp, "escape.delim"));
  set_if(&out->null_format, str(sp, "serialization.null.format"));
  catalog_format f = format_of(str(serde, "SerializationLibrary"), str(sd, "InputFormat"),
                               catalog_param(doc, "classification"));
  if (f != CATALOG_FORMAT_UNKNOWN)
    out->format = f;
  const char *skip = catalog_param(doc, "skip.header.line.count");
  if (skip != NULL)
    out->skip_header_lines = strtol(skip, NULL, 10);
  json_t *comp = json_object_get(sd, "Compressed");
  if (json_is_boolean(comp))
    out->compressed = json_is_true(comp);
}
