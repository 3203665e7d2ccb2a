/* catalog/input.c -- Glue's input shapes (DatabaseInput, TableInput,
 * PartitionInput) checked member by member, as data.
 *
 * Why a table of members: the shapes nest (a table's StorageDescriptor holds
 * Columns, SerdeInfo, SortColumns, SkewedInfo; a partition's holds the
 * same), and each member has one type and one documented limit. One walker
 * over SHAPES checks them all and copies what it checked, so a document
 * holds only members of its shape and every client-controlled size is
 * bounded.
 *
 * Invariants:
 *   (1) A document built here holds only members listed in its shape, each
 *       of the listed JSON type and within its limit.
 *   (2) Messages follow AWS's validation wording and name the member by its
 *       path ("tableInput.storageDescriptor.columns.1.member.name").
 *
 * Start reading at catalog__input().
 */
#include "catalog/internal.h"

#include "base/text.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

typedef enum kind {
  K_STR,      /* string of at most max bytes */
  K_NAME,     /* string of 1..max bytes, single line */
  K_INT,      /* integer in [0, max] */
  K_SINT,     /* integer in [-max - 1, max] (NumberOfBuckets: Hive writes -1) */
  K_BOOL,
  K_TIME,     /* epoch seconds (number) */
  K_NUM,      /* any number (a statistic's double bounds) */
  K_MAP,      /* object of string -> string (Parameters) */
  K_STRLIST,  /* array of strings of at most max bytes */
  K_OBJ,      /* object of shape sub */
  K_OBJLIST,  /* array of objects of shape sub (at most CATALOG_MAX_COLUMNS) */
} kind;

typedef struct member {
  const char *name;           /* Glue's member name */
  kind k;
  long max;                   /* bytes, or the largest integer */
  bool required;
  const struct member *sub;   /* K_OBJ, K_OBJLIST */
} member;

#define END {NULL, K_STR, 0, false, NULL}

static const member COLUMN[] = {
    {"Name", K_NAME, CATALOG_MAX_NAME, true, NULL},
    {"Type", K_STR, CATALOG_MAX_TYPE, false, NULL},
    {"Comment", K_STR, CATALOG_MAX_COMMENT, false, NULL},
    {"Parameters", K_MAP, 0, false, NULL},
    END};

static const member SERDE[] = {
    {"Name", K_STR, CATALOG_MAX_NAME, false, NULL},
    {"SerializationLibrary", K_STR, CATALOG_MAX_NAME, false, NULL},
    {"Parameters", K_MAP, 0, false, NULL},
    END};

static const member ORDER[] = {
    {"Column", K_NAME, CATALOG_MAX_NAME, true, NULL},
    {"SortOrder", K_INT, 1, true, NULL},
    END};

static const member SKEWED[] = {
    {"SkewedColumnNames", K_STRLIST, CATALOG_MAX_NAME, false, NULL},
    {"SkewedColumnValues", K_STRLIST, CATALOG_MAX_VALUE, false, NULL},
    {"SkewedColumnValueLocationMaps", K_MAP, 0, false, NULL},
    END};

static const member STORAGE[] = {
    {"Columns", K_OBJLIST, 0, false, COLUMN},
    {"Location", K_STR, CATALOG_MAX_LOCATION, false, NULL},
    {"AdditionalLocations", K_STRLIST, CATALOG_MAX_LOCATION, false, NULL},
    {"InputFormat", K_STR, CATALOG_MAX_FORMAT, false, NULL},
    {"OutputFormat", K_STR, CATALOG_MAX_FORMAT, false, NULL},
    {"Compressed", K_BOOL, 0, false, NULL},
    {"NumberOfBuckets", K_SINT, 2147483647L, false, NULL},
    {"SerdeInfo", K_OBJ, 0, false, SERDE},
    {"BucketColumns", K_STRLIST, CATALOG_MAX_NAME, false, NULL},
    {"SortColumns", K_OBJLIST, 0, false, ORDER},
    {"Parameters", K_MAP, 0, false, NULL},
    {"SkewedInfo", K_OBJ, 0, false, SKEWED},
    {"StoredAsSubDirectories", K_BOOL, 0, false, NULL},
    END};

static const member DATABASE[] = {
    {"Name", K_NAME, CATALOG_MAX_NAME, true, NULL},
    {"Description", K_STR, CATALOG_MAX_DESCRIPTION, false, NULL},
    {"LocationUri", K_STR, CATALOG_MAX_LOCATION_URI, false, NULL},
    {"Parameters", K_MAP, 0, false, NULL},
    END};

static const member TABLE[] = {
    {"Name", K_NAME, CATALOG_MAX_NAME, true, NULL},
    {"Description", K_STR, CATALOG_MAX_DESCRIPTION, false, NULL},
    {"Owner", K_STR, CATALOG_MAX_NAME, false, NULL},
    {"LastAccessTime", K_TIME, 0, false, NULL},
    {"LastAnalyzedTime", K_TIME, 0, false, NULL},
    {"Retention", K_INT, 2147483647L, false, NULL},
    {"StorageDescriptor", K_OBJ, 0, false, STORAGE},
    {"PartitionKeys", K_OBJLIST, 0, false, COLUMN},
    {"ViewOriginalText", K_STR, CATALOG_MAX_VIEW_TEXT, false, NULL},
    {"ViewExpandedText", K_STR, CATALOG_MAX_VIEW_TEXT, false, NULL},
    {"TableType", K_STR, CATALOG_MAX_NAME, false, NULL},
    {"Parameters", K_MAP, 0, false, NULL},
    END};

static const member PARTITION[] = {
    {"Values", K_STRLIST, CATALOG_MAX_VALUE, false, NULL},
    {"LastAccessTime", K_TIME, 0, false, NULL},
    {"StorageDescriptor", K_OBJ, 0, false, STORAGE},
    {"Parameters", K_MAP, 0, false, NULL},
    {"LastAnalyzedTime", K_TIME, 0, false, NULL},
    END};

/* Column statistics (UpdateColumnStatisticsFor{Table,Partition}): counts
 * are non-negative longs, bounds as Glue types them (long, double, epoch
 * seconds, a decimal's unscaled big-endian bytes in base64 and its scale). */
#define COUNT 9223372036854775807L
#define STATS_BLOB_MAX 1024 /* base64 of a decimal's unscaled value (tarn's) */

static const member ST_BOOL[] = {
    {"NumberOfTrues", K_INT, COUNT, true, NULL},
    {"NumberOfFalses", K_INT, COUNT, true, NULL},
    {"NumberOfNulls", K_INT, COUNT, true, NULL},
    END};

static const member ST_DATE[] = {
    {"MinimumValue", K_TIME, 0, false, NULL},
    {"MaximumValue", K_TIME, 0, false, NULL},
    {"NumberOfNulls", K_INT, COUNT, true, NULL},
    {"NumberOfDistinctValues", K_INT, COUNT, true, NULL},
    END};

static const member ST_DECIMAL_NUMBER[] = {
    {"UnscaledValue", K_STR, STATS_BLOB_MAX, true, NULL},
    {"Scale", K_SINT, 2147483647L, true, NULL},
    END};

static const member ST_DECIMAL[] = {
    {"MinimumValue", K_OBJ, 0, false, ST_DECIMAL_NUMBER},
    {"MaximumValue", K_OBJ, 0, false, ST_DECIMAL_NUMBER},
    {"NumberOfNulls", K_INT, COUNT, true, NULL},
    {"NumberOfDistinctValues", K_INT, COUNT, true, NULL},
    END};

static const member ST_DOUBLE[] = {
    {"MinimumValue", K_NUM, 0, false, NULL},
    {"MaximumValue", K_NUM, 0, false, NULL},
    {"NumberOfNulls", K_INT, COUNT, true, NULL},
    {"NumberOfDistinctValues", K_INT, COUNT, true, NULL},
    END};

static const member ST_LONG[] = {
    {"MinimumValue", K_SINT, COUNT, false, NULL},
    {"MaximumValue", K_SINT, COUNT, false, NULL},
    {"NumberOfNulls", K_INT, COUNT, true, NULL},
    {"NumberOfDistinctValues", K_INT, COUNT, true, NULL},
    END};

static const member ST_STRING[] = {
    {"MaximumLength", K_INT, COUNT, true, NULL},
    {"AverageLength", K_NUM, 0, true, NULL},
    {"NumberOfNulls", K_INT, COUNT, true, NULL},
    {"NumberOfDistinctValues", K_INT, COUNT, true, NULL},
    END};

static const member ST_BINARY[] = {
    {"MaximumLength", K_INT, COUNT, true, NULL},
    {"AverageLength", K_NUM, 0, true, NULL},
    {"NumberOfNulls", K_INT, COUNT, true, NULL},
    END};

static const member ST_DATA[] = {
    {"Type", K_NAME, 16, true, NULL},
    {"BooleanColumnStatisticsData", K_OBJ, 0, false, ST_BOOL},
    {"DateColumnStatisticsData", K_OBJ, 0, false, ST_DATE},
    {"DecimalColumnStatisticsData", K_OBJ, 0, false, ST_DECIMAL},
    {"DoubleColumnStatisticsData", K_OBJ, 0, false, ST_DOUBLE},
    {"LongColumnStatisticsData", K_OBJ, 0, false, ST_LONG},
    {"StringColumnStatisticsData", K_OBJ, 0, false, ST_STRING},
    {"BinaryColumnStatisticsData", K_OBJ, 0, false, ST_BINARY},
    END};

static const member COLUMN_STATS[] = {
    {"ColumnName", K_NAME, CATALOG_MAX_NAME, true, NULL},
    {"ColumnType", K_STR, 20000, true, NULL},
    {"AnalyzedTime", K_TIME, 0, true, NULL},
    {"StatisticsData", K_OBJ, 0, true, ST_DATA},
    END};

/* UserDefinedFunctionInput. */
#define FUNCTION_MAX_URIS 1000

static const member RESOURCE_URI[] = {
    {"ResourceType", K_NAME, 16, false, NULL},
    {"Uri", K_NAME, 1024, false, NULL},
    END};

static const member FUNCTION[] = {
    {"FunctionName", K_NAME, CATALOG_MAX_NAME, true, NULL},
    {"ClassName", K_NAME, CATALOG_MAX_NAME, false, NULL},
    {"OwnerName", K_NAME, CATALOG_MAX_NAME, false, NULL},
    {"OwnerType", K_NAME, 16, false, NULL},
    {"ResourceUris", K_OBJLIST, 0, false, RESOURCE_URI},
    END};

/* "storageDescriptor" from "StorageDescriptor", appended to path. */
static void path_push(char *path, size_t cap, const char *name)
{
  size_t n = strlen(path);
  snprintf(path + n, cap - n, "%s%c%s", n > 0 ? "." : "", tolower((unsigned char)name[0]),
           name + 1);
}

static int too_long(const char *path, const char *value, long max, err *e)
{
  (void)value;
  return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at '%s' failed to "
                 "satisfy constraint: Member must have length less than or equal to %ld",
                 path, max);
}

static int check_text(const char *s, size_t n, const char *path, long max, bool name, err *e)
{
  if ((long)n > max)
    return too_long(path, s, max, e);
  if (name && n == 0)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at '%s' failed "
                   "to satisfy constraint: Member must have length greater than or equal to 1",
                   path);
  if (!utf8_valid(s, n) || memchr(s, '\0', n) != NULL)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at '%s' failed "
                   "to satisfy constraint: Member must be valid UTF-8 text without NUL", path);
  if (name)
    for (size_t i = 0; i < n; i++)
      if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
        return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at '%s' "
                       "failed to satisfy constraint: Member must satisfy regular expression "
                       "pattern: [\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*",
                       path);
  return 0;
}

static int wrong_type(const char *path, const char *want, err *e)
{
  return err_set(e, ERR_INVALID_INPUT, "Value at '%s' must be %s", path, want);
}

static int check_shape(const member *shape, const json_t *in, char *path, size_t cap,
                       json_t **out, err *e);

static int check_member(const member *m, const json_t *v, char *path, size_t cap, json_t **out,
                        err *e)
{
  *out = NULL;
  switch (m->k) {
  case K_STR:
  case K_NAME:
    if (!json_is_string(v))
      return wrong_type(path, "a string", e);
    if (check_text(json_string_value(v), json_string_length(v), path, m->max, m->k == K_NAME,
                   e) != 0)
      return e->code;
    *out = json_incref((json_t *)v);
    return 0;
  case K_INT:
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > m->max)
      return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at '%s' failed "
                     "to satisfy constraint: Member must be an integer from 0 to %ld", path,
                     m->max);
    *out = json_incref((json_t *)v);
    return 0;
  case K_SINT:
    if (!json_is_integer(v) || json_integer_value(v) < -m->max - 1 ||
        json_integer_value(v) > m->max)
      return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at '%s' failed "
                     "to satisfy constraint: Member must be a 32-bit integer", path);
    *out = json_incref((json_t *)v);
    return 0;
  case K_BOOL:
    if (!json_is_boolean(v))
      return wrong_type(path, "a boolean", e);
    *out = json_incref((json_t *)v);
    return 0;
  case K_TIME:
  case K_NUM:
    if (!json_is_number(v))
      return wrong_type(path, m->k == K_TIME ? "a timestamp" : "a number", e);
    *out = json_incref((json_t *)v);
    return 0;
  case K_MAP: {
    if (!json_is_object(v))
      return wrong_type(path, "a map", e);
    if (json_object_size(v) > CATALOG_MAX_PARAMS)
      return err_set(e, ERR_INVALID_INPUT, "Value at '%s' has more than %d entries", path,
                     CATALOG_MAX_PARAMS);
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
      size_t kn = strlen(k);
      if (kn == 0 || kn > CATALOG_MAX_PARAM_KEY)
        return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at '%s' "
                       "failed to satisfy constraint: Map keys must have length from 1 to %d",
                       path, CATALOG_MAX_PARAM_KEY);
      if (!json_is_string(x))
        return wrong_type(path, "a map of strings", e);
      if (check_text(json_string_value(x), json_string_length(x), path,
                     CATALOG_MAX_PARAM_VALUE, false, e) != 0)
        return e->code;
    }
    *out = json_deep_copy(v);
    return 0;
  }
  case K_STRLIST: {
    if (!json_is_array(v))
      return wrong_type(path, "a list", e);
    if (json_array_size(v) > CATALOG_MAX_COLUMNS)
      return err_set(e, ERR_INVALID_INPUT, "Value at '%s' has more than %d members", path,
                     CATALOG_MAX_COLUMNS);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
      if (!json_is_string(x))
        return wrong_type(path, "a list of strings", e);
      if (check_text(json_string_value(x), json_string_length(x), path, m->max, false, e) != 0)
        return e->code;
    }
    *out = json_deep_copy(v);
    return 0;
  }
  case K_OBJ:
    if (!json_is_object(v))
      return wrong_type(path, "a structure", e);
    return check_shape(m->sub, v, path, cap, out, e);
  case K_OBJLIST: {
    if (!json_is_array(v))
      return wrong_type(path, "a list", e);
    if (json_array_size(v) > CATALOG_MAX_COLUMNS)
      return err_set(e, ERR_INVALID_INPUT, "Value at '%s' has more than %d members", path,
                     CATALOG_MAX_COLUMNS);
    json_t *list = json_array();
    size_t i;
    json_t *x;
    size_t n = strlen(path);
    json_array_foreach(v, i, x)
    {
      snprintf(path + n, cap - n, ".%zu.member", i + 1);
      json_t *o;
      if (!json_is_object(x)) {
        json_decref(list);
        return wrong_type(path, "a structure", e);
      }
      if (check_shape(m->sub, x, path, cap, &o, e) != 0) {
        json_decref(list);
        return e->code;
      }
      json_array_append_new(list, o);
      path[n] = '\0';
    }
    *out = list;
    return 0;
  }
  }
  return err_set(e, ERR_INTERNAL, "unknown member kind");
}

static int check_shape(const member *shape, const json_t *in, char *path, size_t cap,
                       json_t **out, err *e)
{
  json_t *doc = json_object();
  size_t n = strlen(path);
  for (const member *m = shape; m->name != NULL; m++) {
    path_push(path, cap, m->name);
    json_t *v = json_object_get(in, m->name);
    if (v == NULL || json_is_null(v)) {
      if (m->required) {
        json_decref(doc);
        return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value null at '%s' "
                       "failed to satisfy constraint: Member must not be null", path);
      }
      path[n] = '\0';
      continue;
    }
    json_t *o;
    if (check_member(m, v, path, cap, &o, e) != 0) {
      json_decref(doc);
      return e->code;
    }
    json_object_set_new(doc, m->name, o);
    path[n] = '\0';
  }
  *out = doc;
  return 0;
}

/* A statistic's Type names which one member of StatisticsData carries its
 * figures (Glue's union): that member must be there, and no other. */
static int stats_type(json_t *doc, const char *where, json_t **out, err *e)
{
  static const struct {
    const char *type;
    const char *member;
  } types[] = {
      {"BOOLEAN", "BooleanColumnStatisticsData"}, {"DATE", "DateColumnStatisticsData"},
      {"DECIMAL", "DecimalColumnStatisticsData"}, {"DOUBLE", "DoubleColumnStatisticsData"},
      {"LONG", "LongColumnStatisticsData"},       {"STRING", "StringColumnStatisticsData"},
      {"BINARY", "BinaryColumnStatisticsData"},
  };
  json_t *data = json_object_get(doc, "StatisticsData");
  const char *type = json_string_value(json_object_get(data, "Type"));
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    if (strcmp(type, types[i].type) != 0)
      continue;
    if (json_object_get(data, types[i].member) == NULL || json_object_size(data) != 2)
      break;
    return 0;
  }
  *out = (json_decref(doc), NULL);
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strcmp(type, types[i].type) == 0)
      return err_set(e, ERR_INVALID_INPUT, "%s.statisticsData of type %s must carry %s and "
                     "no other statistics", where, type, types[i].member);
  return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value '%s' at "
                 "'%s.statisticsData.type' failed to satisfy constraint: Member must satisfy "
                 "enum value set: [BOOLEAN, DATE, DECIMAL, DOUBLE, LONG, STRING, BINARY]", type,
                 where);
}

static bool one_of(const char *v, const char *const *set)
{
  for (; *set != NULL; set++)
    if (strcmp(v, *set) == 0)
      return true;
  return false;
}

/* A function's OwnerType and ResourceTypes are Glue's enums; at most
 * FUNCTION_MAX_URIS resource URIs. */
static int function_enums(json_t *doc, const char *where, json_t **out, err *e)
{
  static const char *const owners[] = {"USER", "ROLE", "GROUP", NULL};
  static const char *const kinds[] = {"JAR", "FILE", "ARCHIVE", NULL};
  const char *owner = json_string_value(json_object_get(doc, "OwnerType"));
  json_t *uris = json_object_get(doc, "ResourceUris");
  int rc = 0;
  if (owner != NULL && !one_of(owner, owners))
    rc = err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value '%s' at "
                 "'%s.ownerType' failed to satisfy constraint: Member must satisfy enum value "
                 "set: [USER, ROLE, GROUP]", owner, where);
  else if (json_array_size(uris) > FUNCTION_MAX_URIS)
    rc = err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at "
                 "'%s.resourceUris' failed to satisfy constraint: Member must have length "
                 "less than or equal to %d", where, FUNCTION_MAX_URIS);
  size_t i;
  json_t *u;
  json_array_foreach(uris, i, u)
  {
    const char *type = json_string_value(json_object_get(u, "ResourceType"));
    if (rc == 0 && type != NULL && !one_of(type, kinds))
      rc = err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value '%s' at "
                   "'%s.resourceUris.%zu.member.resourceType' failed to satisfy constraint: "
                   "Member must satisfy enum value set: [JAR, FILE, ARCHIVE]", type, where,
                   i + 1);
  }
  if (rc != 0)
    *out = (json_decref(doc), NULL);
  return rc;
}

int catalog__input(enum catalog_shape shape, const json_t *input, const char *where,
                   json_t **out, err *e)
{
  static const member *const shapes[] = {DATABASE, TABLE, PARTITION, COLUMN_STATS, FUNCTION};
  *out = NULL;
  char path[512];
  snprintf(path, sizeof path, "%s", where);
  if (!json_is_object(input))
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value null at '%s' "
                   "failed to satisfy constraint: Member must not be null", where);
  if (check_shape(shapes[shape], input, path, sizeof path, out, e) != 0)
    return e->code;
  if (shape == SHAPE_COLUMN_STATS)
    return stats_type(*out, where, out, e);
  if (shape == SHAPE_FUNCTION)
    return function_enums(*out, where, out, e);
  return 0;
}

int catalog__name(const char *name, const char *what, char out[CATALOG_MAX_NAME + 1], err *e)
{
  if (name == NULL)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value null at '%s' "
                   "failed to satisfy constraint: Member must not be null", what);
  size_t n = strlen(name);
  if (check_text(name, n, what, CATALOG_MAX_NAME, true, e) != 0)
    return e->code;
  for (size_t i = 0; i <= n; i++)
    out[i] = (char)tolower((unsigned char)name[i]);
  return 0;
}

int catalog__values(const json_t *values, const json_t *table, const char *what, err *e)
{
  if (!json_is_array(values))
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value null at '%s' "
                   "failed to satisfy constraint: Member must not be null", what);
  size_t nkeys = json_array_size(json_object_get(table, "PartitionKeys"));
  if (json_array_size(values) != nkeys)
    return err_set(e, ERR_INVALID_INPUT, "The number of partition keys do not match the "
                   "number of partition values");
  size_t i;
  json_t *v;
  json_array_foreach(values, i, v)
  {
    if (!json_is_string(v))
      return err_set(e, ERR_INVALID_INPUT, "Value at '%s' must be a list of strings", what);
    if (json_string_length(v) == 0)
      return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at '%s' failed "
                     "to satisfy constraint: Member must have length greater than or equal to "
                     "1", what);
    if (check_text(json_string_value(v), json_string_length(v), what, CATALOG_MAX_VALUE, false,
                   e) != 0)
      return e->code;
  }
  return 0;
}
