/* stream/convert.c -- Firehose's record format conversion: the JSON records
 * of one delivery become one Parquet file, typed by a catalog table's Hive
 * columns, written with tarn's Parquet writer (formats/parquet_write.h).
 *
 * Why here: the delivery thread converts each partition's records just
 * before it writes the object; a record that does not convert goes to the
 * error output (format-conversion-failed) instead of failing the delivery.
 *
 * Invariants:
 *   (1) Values round-trip exactly: a string column gets the record's text
 *       as written ("000042" stays "000042"; a number in a string column
 *       keeps its literal text), a decimal column the literal's digits
 *       (rounded half up to the scale only when it has more), never through
 *       a double.
 *   (2) A record gives rows only when all of its objects convert; otherwise
 *       it gives none and carries the first error.
 *   (3) Columns are matched to JSON keys as the SerDes do: case-insensitively
 *       (OpenX CaseInsensitive, the default; Hive always), with OpenX's
 *       ColumnToJsonKeyMappings and ConvertDotsInJsonKeysToUnderscores.
 *       Keys the table lacks are ignored; columns the record lacks are NULL.
 *   (4) array, map and struct columns (nested in any way) are written as
 *       Parquet's LIST, MAP and STRUCT, their parts converted by the same
 *       rules as columns: a struct's fields matched to JSON keys as in (3),
 *       a map's JSON keys converted to its key type.
 *
 * Start reading at stream__conv_write().
 */
#include "convert.h"

#include "base/mem.h"
#include "base/text.h"
#include "formats/column.h"
#include "stream/stream.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64                 /* JSON nesting */
#define MAX_TS_FORMATS 64
#define MAX_MAPPINGS 4096
#define MIN_BLOCK_BYTES 67108864     /* ParquetSerDe constraints (the API's) */
#define MIN_PAGE_BYTES 65536
#define DEFAULT_BLOCK_BYTES (256u << 20)
#define SCHEMA_MEMBER_MAX 1024

/* ---- configuration ---- */

static char *dup_str(json_t *v)
{
  const char *s = json_string_value(v);
  return s != NULL ? xstrdup(s) : NULL;
}

conv_config *stream__conv_free(conv_config *c)
{
  if (c == NULL)
    return NULL;
  for (size_t i = 0; i < c->nmap; i++) {
    free(c->map_cols[i]);
    free(c->map_keys[i]);
  }
  free(c->map_cols);
  free(c->map_keys);
  for (size_t i = 0; i < c->nts; i++)
    free(c->ts_formats[i]);
  free(c->ts_formats);
  free(c->catalog_id);
  free(c->database);
  free(c->table);
  free(c->region);
  free(c->version_id);
  free(c->role_arn);
  free(c);
  return NULL;
}

bool stream__conv_enabled(json_t *dst)
{
  json_t *dfc = json_object_get(dst, "DataFormatConversionConfiguration");
  return json_is_object(dfc) && !json_is_false(json_object_get(dfc, "Enabled"));
}

/* Constraint violations, joined as AWS's validation layer joins them. */
typedef struct violations {
  buf text;
  int n;
  const char *shape;
} violations;

static void violation(violations *v, const char *member, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void violation(violations *v, const char *member, const char *fmt, ...)
{
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (v->n++ > 0)
    buf_puts(&v->text, "; ");
  buf_printf(&v->text, "Value at '%s.dataFormatConversionConfiguration.%s' failed to satisfy "
             "constraint: %s", v->shape, member, what);
}

static bool no_space(const char *s)
{
  for (; *s != '\0'; s++)
    if (isspace((unsigned char)*s))
      return false;
  return true;
}

static void schema_member(violations *v, json_t *schema, const char *name, const char *member)
{
  const char *s = json_string_value(json_object_get(schema, name));
  if (s == NULL)
    return;
  char path[96];
  snprintf(path, sizeof path, "schemaConfiguration.%s", member);
  size_t n = strlen(s);
  if (n == 0)
    violation(v, path, "Member must have length greater than or equal to 1");
  else if (n > SCHEMA_MEMBER_MAX)
    violation(v, path, "Member must have length less than or equal to %d", SCHEMA_MEMBER_MAX);
  if (!no_space(s))
    violation(v, path, "Member must satisfy regular expression pattern: ^\\S+$");
}

static void min_value(violations *v, json_t *o, const char *name, const char *member,
                      json_int_t min)
{
  json_t *x = json_object_get(o, name);
  if (json_is_integer(x) && json_integer_value(x) < min)
    violation(v, member, "Member must have value greater than or equal to %" JSON_INTEGER_FORMAT,
              min);
}

static void enum_value(violations *v, json_t *o, const char *name, const char *member,
                       const char *const *set, const char *shown)
{
  const char *s = json_string_value(json_object_get(o, name));
  if (s == NULL)
    return;
  for (size_t i = 0; set[i] != NULL; i++)
    if (strcmp(s, set[i]) == 0)
      return;
  violation(v, member, "Member must satisfy enum value set: %s", shown);
}

/* The member constraints of the API model (checked even when disabled). */
static void constraints(json_t *dfc, violations *v)
{
  json_t *ser = json_object_get(json_object_get(dfc, "OutputFormatConfiguration"), "Serializer");
  json_t *pq = json_object_get(ser, "ParquetSerDe");
  if (json_is_object(pq)) {
    static const char *const comps[] = {"SNAPPY", "GZIP", "UNCOMPRESSED", NULL};
    static const char *const versions[] = {"V1", "V2", NULL};
    const char *p = "outputFormatConfiguration.serializer.parquetSerDe.";
    char m[128];
    snprintf(m, sizeof m, "%smaxPaddingBytes", p);
    min_value(v, pq, "MaxPaddingBytes", m, 0);
    snprintf(m, sizeof m, "%sblockSizeBytes", p);
    min_value(v, pq, "BlockSizeBytes", m, MIN_BLOCK_BYTES);
    snprintf(m, sizeof m, "%spageSizeBytes", p);
    min_value(v, pq, "PageSizeBytes", m, MIN_PAGE_BYTES);
    snprintf(m, sizeof m, "%scompression", p);
    enum_value(v, pq, "Compression", m, comps, "[SNAPPY, GZIP, UNCOMPRESSED]");
    snprintf(m, sizeof m, "%swriterVersion", p);
    enum_value(v, pq, "WriterVersion", m, versions, "[V1, V2]");
  }
  json_t *ox = json_object_get(json_object_get(json_object_get(dfc, "InputFormatConfiguration"),
                                               "Deserializer"), "OpenXJsonSerDe");
  json_t *maps = json_object_get(ox, "ColumnToJsonKeyMappings");
  if (json_is_object(maps)) {
    bool bad_key = false;
    bool bad_value = false;
    const char *k;
    json_t *val;
    json_object_foreach(maps, k, val) {
      size_t kn = strlen(k);
      if (kn == 0 || kn > SCHEMA_MEMBER_MAX || !no_space(k))
        bad_key = true;
      const char *s = json_string_value(val);
      size_t sn = s != NULL ? strlen(s) : 0;
      bool blank = true;
      for (size_t i = 0; i < sn; i++)
        if (!isspace((unsigned char)s[i]))
          blank = false;
      if (s == NULL || sn == 0 || sn > SCHEMA_MEMBER_MAX || blank || strchr(s, '\n') != NULL)
        bad_value = true;
    }
    const char *m = "inputFormatConfiguration.deserializer.openXJsonSerDe.columnToJsonKeyMappings";
    if (bad_key)
      violation(v, m, "Map keys must satisfy constraint: [Member must have length less than or "
                "equal to 1024, Member must have length greater than or equal to 1, Member must "
                "satisfy regular expression pattern: ^\\S+$]");
    if (bad_value)
      violation(v, m, "Map value must satisfy constraint: [Member must have length less than "
                "or equal to 1024, Member must have length greater than or equal to 1, Member "
                "must satisfy regular expression pattern: ^(?!\\s*$).+]");
  }
  json_t *schema = json_object_get(dfc, "SchemaConfiguration");
  schema_member(v, schema, "VersionId", "versionId");
  schema_member(v, schema, "CatalogId", "catalogId");
  schema_member(v, schema, "DatabaseName", "databaseName");
  schema_member(v, schema, "RoleARN", "roleARN");
  schema_member(v, schema, "Region", "region");
  schema_member(v, schema, "TableName", "tableName");
}

static int invalid(err *e, const char *msg)
{
  return err_set(e, STREAM_ERR_INVALID, "%s", msg);
}

/* The pattern letters a Hive TimestampFormats pattern may use here. */
static int check_pattern(const char *f, err *e)
{
  if (strcmp(f, "millis") == 0)
    return 0;
  for (const char *p = f; *p != '\0'; p++) {
    if (*p == '\'') {
      const char *q = strchr(p + 1, '\'');
      if (q == NULL)
        return err_set(e, STREAM_ERR_INVALID, "TimestampFormats: '%s' has an unterminated "
                       "quote", f);
      p = q;
      continue;
    }
    if (isalpha((unsigned char)*p) && strchr("yMdHmsSZ", *p) == NULL)
      return err_set(e, STREAM_ERR_INVALID, "TimestampFormats: pattern letter '%c' of '%s' is "
                     "not supported by tarn (y M d H m s S Z, quoted text and 'millis' are)",
                     *p, f);
  }
  return 0;
}

int stream__conv_parse(json_t *dst, const char *shape, conv_config **out, err *e)
{
  *out = NULL;
  json_t *dfc = json_object_get(dst, "DataFormatConversionConfiguration");
  if (dfc == NULL || json_is_null(dfc))
    return 0;
  if (!json_is_object(dfc))
    return invalid(e, "DataFormatConversionConfiguration must be an object");
  violations v = {.n = 0, .shape = shape};
  buf_init(&v.text, 1u << 16);
  constraints(dfc, &v);
  if (v.n > 0) {
    int rc = err_set(e, STREAM_ERR_VALIDATION, "%d validation error%s detected: %.*s", v.n,
                     v.n == 1 ? "" : "s", (int)v.text.len, v.text.data);
    buf_release(&v.text);
    return rc;
  }
  buf_release(&v.text);
  if (!stream__conv_enabled(dst))
    return 0;
  const char *comp = json_string_value(json_object_get(dst, "CompressionFormat"));
  if (comp != NULL && strcmp(comp, "UNCOMPRESSED") != 0)
    return invalid(e, "The S3 destination's compression format must be set to UNCOMPRESSED "
                      "when data format conversion is enabled. To enable compression within "
                      "the converted output format, set the appropriate serialization option in "
                      "the output format configuration.");
  json_t *size = json_object_get(json_object_get(dst, "BufferingHints"), "SizeInMBs");
  if (json_is_integer(size) && json_integer_value(size) < 64)
    return invalid(e, "BufferingHints.SizeInMBs must be at least 64 when data format "
                      "conversion is enabled.");
  json_t *in = json_object_get(dfc, "InputFormatConfiguration");
  json_t *outf = json_object_get(dfc, "OutputFormatConfiguration");
  json_t *schema = json_object_get(dfc, "SchemaConfiguration");
  if (!json_is_object(in))
    return invalid(e, "InputFormatConfiguration must not be null");
  if (!json_is_object(outf))
    return invalid(e, "OutputFormatConfiguration must not be null");
  if (!json_is_object(schema))
    return invalid(e, "SchemaConfiguration must not be null");
  json_t *de = json_object_get(in, "Deserializer");
  json_t *ox = json_object_get(de, "OpenXJsonSerDe");
  json_t *hive = json_object_get(de, "HiveJsonSerDe");
  int nde = json_is_object(ox) + json_is_object(hive);
  if (nde == 0)
    return invalid(e, "Deserializer must not be null");
  if (nde > 1)
    return invalid(e, "More than one deserializer specified. Only one may be chosen.");
  json_t *ser = json_object_get(outf, "Serializer");
  json_t *pq = json_object_get(ser, "ParquetSerDe");
  json_t *orc = json_object_get(ser, "OrcSerDe");
  int nser = json_is_object(pq) + json_is_object(orc);
  if (nser == 0)
    return invalid(e, "Serializer must not be null");
  if (nser > 1)
    return invalid(e, "More than one serializer specified. Only one may be chosen.");
  if (json_is_object(orc))
    return invalid(e, "OrcSerDe is not supported by tarn: it has no ORC writer; use "
                      "ParquetSerDe");
  static const char *const need[][2] = {
      {"RoleARN", "RoleArn"}, {"DatabaseName", "DatabaseName"}, {"TableName", "TableName"}};
  for (size_t i = 0; i < 3; i++) {
    const char *s = json_string_value(json_object_get(schema, need[i][0]));
    if (s == NULL || *s == '\0')
      return err_set(e, STREAM_ERR_INVALID, "SchemaConfiguration.%s must not be null or empty",
                     need[i][1]);
  }
  conv_config *c = xcalloc(1, sizeof *c);
  c->openx = json_is_object(ox);
  c->case_insensitive = !c->openx || !json_is_false(json_object_get(ox, "CaseInsensitive"));
  c->dots_to_underscores =
      c->openx && json_is_true(json_object_get(ox, "ConvertDotsInJsonKeysToUnderscores"));
  json_t *maps = json_object_get(ox, "ColumnToJsonKeyMappings");
  if (json_is_object(maps) && json_object_size(maps) > MAX_MAPPINGS) {
    stream__conv_free(c);
    return err_set(e, STREAM_ERR_INVALID, "ColumnToJsonKeyMappings: at most %d mappings",
                   MAX_MAPPINGS);
  }
  if (json_is_object(maps) && json_object_size(maps) > 0) {
    c->map_cols = xcalloc(json_object_size(maps), sizeof(char *));
    c->map_keys = xcalloc(json_object_size(maps), sizeof(char *));
    const char *k;
    json_t *val;
    json_object_foreach(maps, k, val) {
      c->map_cols[c->nmap] = xstrdup(k);
      c->map_keys[c->nmap] = xstrdup(json_string_value(val));
      c->nmap++;
    }
  }
  json_t *fmts = json_object_get(hive, "TimestampFormats");
  if (json_is_array(fmts) && json_array_size(fmts) > 0) {
    if (json_array_size(fmts) > MAX_TS_FORMATS) {
      stream__conv_free(c);
      return err_set(e, STREAM_ERR_INVALID, "TimestampFormats: at most %d formats",
                     MAX_TS_FORMATS);
    }
    c->ts_formats = xcalloc(json_array_size(fmts), sizeof(char *));
    size_t i;
    json_t *f;
    json_array_foreach(fmts, i, f) {
      const char *s = json_string_value(f);
      int rc = s == NULL ? invalid(e, "TimestampFormats must be strings") : check_pattern(s, e);
      if (rc != 0) {
        stream__conv_free(c);
        return rc;
      }
      c->ts_formats[c->nts++] = xstrdup(s);
    }
  }
  const char *pc = json_string_value(json_object_get(pq, "Compression"));
  c->codec = pc == NULL || strcmp(pc, "SNAPPY") == 0 ? PQW_SNAPPY
             : strcmp(pc, "GZIP") == 0               ? PQW_GZIP
                                                     : PQW_UNCOMPRESSED;
  json_t *bs = json_object_get(pq, "BlockSizeBytes");
  c->block_bytes = json_is_integer(bs) ? (uint64_t)json_integer_value(bs) : DEFAULT_BLOCK_BYTES;
  /* PageSizeBytes (1 MiB by default), EnableDictionaryCompression (on unless
     false, as Hive's Parquet writer), WriterVersion V2: DATA_PAGE_V2 pages.
     MaxPaddingBytes aligns row groups to HDFS blocks: tarn has none, so it
     pads nothing (no byte of data depends on it). */
  json_t *ps = json_object_get(pq, "PageSizeBytes");
  c->page_bytes = json_is_integer(ps) ? (uint64_t)json_integer_value(ps) : 0;
  c->no_dictionary = json_is_false(json_object_get(pq, "EnableDictionaryCompression"));
  const char *wv = json_string_value(json_object_get(pq, "WriterVersion"));
  c->page_v2 = wv != NULL && strcmp(wv, "V2") == 0;
  c->catalog_id = dup_str(json_object_get(schema, "CatalogId"));
  c->database = dup_str(json_object_get(schema, "DatabaseName"));
  c->table = dup_str(json_object_get(schema, "TableName"));
  c->region = dup_str(json_object_get(schema, "Region"));
  c->version_id = dup_str(json_object_get(schema, "VersionId"));
  c->role_arn = dup_str(json_object_get(schema, "RoleARN"));
  *out = c;
  return 0;
}

/* ---- the schema ---- */

typedef enum ckind {
  CK_STRING, CK_BOOLEAN, CK_TINYINT, CK_SMALLINT, CK_INT, CK_BIGINT, CK_FLOAT, CK_DOUBLE,
  CK_DECIMAL, CK_DATE, CK_TIMESTAMP, CK_LIST, CK_MAP, CK_STRUCT,
} ckind;

/* A column, or a part of a nested one (a struct's field, a list's element,
   a map's key or value). */
typedef struct ccol {
  char *name;                  /* the column's name; a part: "col.field", "col[]", ... */
  char *key;                   /* the JSON key it reads (lower-case when case-insensitive) */
  size_t keylen;
  ckind kind;
  int precision;               /* CK_DECIMAL */
  int scale;
  char *type;                  /* the Hive type, for messages */
  struct ccol *kids;           /* CK_STRUCT: the fields; CK_LIST: the element;
                                  CK_MAP: the key and the value */
  size_t nkids;
  pqw_column *pkids;           /* the writer's description of the kids */
} ccol;

struct conv_schema {
  ccol *cols;
  size_t n;
  pqw_column *pcols;
};

static void ccol_free(ccol *c)
{
  for (size_t i = 0; i < c->nkids; i++)
    ccol_free(&c->kids[i]);
  free(c->kids);
  free(c->pkids);
  free(c->name);
  free(c->key);
  free(c->type);
}

conv_schema *stream__conv_schema_free(conv_schema *s)
{
  if (s == NULL)
    return NULL;
  for (size_t i = 0; i < s->n; i++)
    ccol_free(&s->cols[i]);
  free(s->cols);
  free(s->pcols);
  free(s);
  return NULL;
}

static void lower(char *s)
{
  for (; *s != '\0'; s++)
    *s = (char)tolower((unsigned char)*s);
}

/* A Hive type being parsed: the text, where the parser is, the nesting. */
typedef struct tparse {
  const char *p;
  const char *e;
} tparse;

static void tp_ws(tparse *t)
{
  while (t->p < t->e && isspace((unsigned char)*t->p))
    t->p++;
}

static bool tp_char(tparse *t, char ch)
{
  tp_ws(t);
  if (t->p < t->e && *t->p == ch) {
    t->p++;
    return true;
  }
  return false;
}

/* A struct field's name: up to ':' (backquotes removed), trimmed. */
static char *tp_field_name(tparse *t)
{
  tp_ws(t);
  const char *s = t->p;
  bool quoted = t->p < t->e && *t->p == '`';
  if (quoted) {
    s = ++t->p;
    while (t->p < t->e && *t->p != '`')
      t->p++;
    if (t->p >= t->e || t->p == s)
      return NULL;
    char *n = xstrndup(s, (size_t)(t->p - s));
    t->p++;
    return n;
  }
  while (t->p < t->e && *t->p != ':' && *t->p != ',' && *t->p != '<' && *t->p != '>')
    t->p++;
  const char *end = t->p;
  while (end > s && isspace((unsigned char)end[-1]))
    end--;
  return end > s ? xstrndup(s, (size_t)(end - s)) : NULL;
}

static int hive_parse(tparse *t, ccol *c, int depth);

/* The kids of a nested type: n of them, parsed at t (after its '<'). */
static int hive_kids(tparse *t, ccol *c, int depth)
{
  for (;;) {
    c->kids = xrealloc(c->kids, (c->nkids + 1) * sizeof *c->kids);
    ccol *k = &c->kids[c->nkids];
    memset(k, 0, sizeof *k);
    c->nkids++;
    if (c->kind == CK_STRUCT) {
      char *fname = tp_field_name(t);
      if (fname == NULL || !tp_char(t, ':')) {
        free(fname);
        return -1;
      }
      k->name = xasprintf("%s.%s", c->name, fname);
      k->key = fname;
      k->keylen = strlen(fname);
    } else if (c->kind == CK_LIST) {
      k->name = xasprintf("%s[]", c->name);
    } else {
      k->name = xasprintf("%s.%s", c->name, c->nkids == 1 ? "key" : "value");
    }
    if (hive_parse(t, k, depth + 1) != 0)
      return -1;
    if (!tp_char(t, ','))
      break;
  }
  if (!tp_char(t, '>'))
    return -1;
  size_t want = c->kind == CK_LIST ? 1 : c->kind == CK_MAP ? 2 : c->nkids;
  return c->nkids == want ? 0 : -1;
}

/* One Hive type at t into c (kind, precision, kids, type text): 0, or -1
   when tarn cannot write it. */
static int hive_parse(tparse *t, ccol *c, int depth)
{
  if (depth > PQW_MAX_DEPTH)
    return -1;
  tp_ws(t);
  const char *start = t->p;
  char w[16];
  size_t n = 0;
  while (t->p < t->e && (isalnum((unsigned char)*t->p) || *t->p == '_')) {
    if (n + 1 >= sizeof w)
      return -1;
    w[n++] = (char)tolower((unsigned char)*t->p++);
  }
  w[n] = '\0';
  int rc = 0;
  if (strcmp(w, "array") == 0 || strcmp(w, "map") == 0 || strcmp(w, "struct") == 0) {
    c->kind = w[0] == 'a' ? CK_LIST : w[0] == 'm' ? CK_MAP : CK_STRUCT;
    rc = tp_char(t, '<') ? hive_kids(t, c, depth) : -1;
  } else {
    static const struct {
      const char *name;
      ckind kind;
    } simple[] = {
        {"string", CK_STRING}, {"boolean", CK_BOOLEAN}, {"tinyint", CK_TINYINT},
        {"smallint", CK_SMALLINT}, {"int", CK_INT}, {"integer", CK_INT}, {"bigint", CK_BIGINT},
        {"float", CK_FLOAT}, {"double", CK_DOUBLE}, {"date", CK_DATE},
        {"timestamp", CK_TIMESTAMP}, {"varchar", CK_STRING}, {"char", CK_STRING},
        {"decimal", CK_DECIMAL},
    };
    rc = -1;
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
      if (strcmp(w, simple[i].name) == 0) {
        c->kind = simple[i].kind;
        rc = 0;
      }
    bool sized = strcmp(w, "varchar") == 0 || strcmp(w, "char") == 0;
    if (rc == 0 && (sized || c->kind == CK_DECIMAL)) {
      long a = 10, b = 0;
      char *end;
      if (tp_char(t, '(')) {
        tp_ws(t);
        a = strtol(t->p, &end, 10);
        rc = end == t->p ? -1 : 0;
        t->p = end;
        if (rc == 0 && c->kind == CK_DECIMAL) {
          if (!tp_char(t, ','))
            rc = -1;
          tp_ws(t);
          b = strtol(t->p, &end, 10);
          rc = rc == 0 && end != t->p ? 0 : -1;
          t->p = end;
        }
        if (rc == 0 && !tp_char(t, ')'))
          rc = -1;
      } else if (sized) {
        rc = -1;   /* varchar and char take a length */
      }
      if (rc == 0 && sized && (a < 1 || a > 65535))
        rc = -1;
      if (rc == 0 && c->kind == CK_DECIMAL) {
        if (a < 1 || a > 38 || b < 0 || b > a)
          rc = -1;
        c->precision = (int)a;
        c->scale = (int)b;
      }
    }
  }
  if (rc == 0) {
    const char *end = t->p;
    while (end > start && isspace((unsigned char)end[-1]))
      end--;
    c->type = xstrndup(start, (size_t)(end - start));
  }
  return rc;
}

/* The writer's description of c (kids described in c->pkids). */
static void describe(ccol *c, pqw_column *pc)
{
  memset(pc, 0, sizeof *pc);
  pc->name = c->name;
  switch (c->kind) {
  case CK_BOOLEAN:
    pc->kind = PQW_BOOLEAN;
    break;
  case CK_TINYINT:
    pc->kind = PQW_INT8;
    break;
  case CK_SMALLINT:
    pc->kind = PQW_INT16;
    break;
  case CK_INT:
    pc->kind = PQW_INT32;
    break;
  case CK_BIGINT:
    pc->kind = PQW_INT64;
    break;
  case CK_FLOAT:
    pc->kind = PQW_FLOAT;
    break;
  case CK_DOUBLE:
    pc->kind = PQW_DOUBLE;
    break;
  case CK_DECIMAL:
    pc->kind = c->precision <= 18 ? PQW_DECIMAL : PQW_DECIMAL_BYTES;
    pc->precision = c->precision;
    pc->scale = c->scale;
    break;
  case CK_DATE:
    pc->kind = PQW_DATE;
    break;
  case CK_TIMESTAMP:
    pc->kind = PQW_TIMESTAMP;
    break;
  case CK_LIST:
  case CK_MAP:
  case CK_STRUCT:
    pc->kind = c->kind == CK_LIST ? PQW_LIST : c->kind == CK_MAP ? PQW_MAP : PQW_STRUCT;
    c->pkids = xcalloc(c->nkids, sizeof *c->pkids);
    for (size_t i = 0; i < c->nkids; i++) {
      describe(&c->kids[i], &c->pkids[i]);
      if (c->kind == CK_STRUCT)   /* a field is named as the table names it */
        c->pkids[i].name = c->kids[i].name + strlen(c->name) + 1;
    }
    pc->children = c->pkids;
    pc->nchildren = (int)c->nkids;
    break;
  default:
    pc->kind = PQW_STRING;
    break;
  }
}

/* Struct fields match JSON keys as columns do (invariant (3)). */
static void field_keys(const conv_config *cfg, ccol *c)
{
  for (size_t i = 0; i < c->nkids; i++) {
    ccol *k = &c->kids[i];
    if (c->kind == CK_STRUCT && cfg->case_insensitive)
      lower(k->key);
    field_keys(cfg, k);
  }
}

static int discard_out(void *ctx, const void *p, size_t n, err *e)
{
  return 0;
}

int stream__conv_schema_new(const conv_config *cfg, json_t *columns, conv_schema **out, err *e)
{
  *out = NULL;
  size_t n = json_array_size(columns);
  if (n == 0)
    return err_set(e, ERR_INVALID, "the table '%s.%s' has no columns", cfg->database, cfg->table);
  if (n > PQW_MAX_COLUMNS)
    return err_set(e, ERR_INVALID, "the table '%s.%s' has %zu columns; tarn writes at most %d",
                   cfg->database, cfg->table, n, PQW_MAX_COLUMNS);
  conv_schema *s = xcalloc(1, sizeof *s);
  s->cols = xcalloc(n, sizeof *s->cols);
  s->pcols = xcalloc(n, sizeof *s->pcols);
  for (size_t i = 0; i < n; i++) {
    json_t *col = json_array_get(columns, i);
    const char *name = json_string_value(json_object_get(col, "Name"));
    const char *type = json_string_value(json_object_get(col, "Type"));
    ccol *c = &s->cols[s->n];
    if (name == NULL || *name == '\0' || type == NULL) {
      stream__conv_schema_free(s);
      return err_set(e, ERR_INVALID, "column %zu of the table '%s.%s' has no name or type",
                     i + 1, cfg->database, cfg->table);
    }
    s->n++;
    c->name = xstrdup(name);
    tparse t = {type, type + strlen(type)};
    int rc = hive_parse(&t, c, 0);
    tp_ws(&t);
    if (rc != 0 || t.p != t.e) {
      err_set(e, ERR_INVALID, "column '%s' has type '%s', which tarn cannot write to "
              "Parquet (string, char(n), varchar(n), boolean, tinyint, smallint, int, bigint, "
              "float, double, decimal(p<=38,s), date, timestamp, and array<t>, map<k,v>, "
              "struct<name:t,...> of them, nested up to %d levels)", name, type, PQW_MAX_DEPTH);
      stream__conv_schema_free(s);
      return ERR_INVALID;
    }
    free(c->type);
    c->type = xstrdup(type);
    const char *key = name;
    for (size_t m = 0; m < cfg->nmap; m++)
      if (strcasecmp(cfg->map_cols[m], name) == 0)
        key = cfg->map_keys[m];
    c->key = xstrdup(key);
    if (cfg->case_insensitive)
      lower(c->key);
    c->keylen = strlen(c->key);
    field_keys(cfg, c);
    describe(c, &s->pcols[i]);
  }
  err pe;
  pqw_writer *probe = NULL;
  if (pqw_new(s->pcols, (int)s->n, NULL, discard_out, NULL, &probe, &pe) != 0) {
    stream__conv_schema_free(s);
    return err_set(e, ERR_INVALID, "the table '%s.%s' cannot be written to Parquet: %s",
                   cfg->database, cfg->table, pe.msg);
  }
  pqw_free(probe);
  *out = s;
  return 0;
}

/* ---- a small JSON reader that keeps the text of values ---- */

typedef struct jr {
  const char *p;
  const char *e;
  const char *error;           /* what is malformed, or NULL */
} jr;

static void jws(jr *j)
{
  while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static bool fail(jr *j, const char *what)
{
  if (j->error == NULL)
    j->error = what;
  return false;
}

/* A string at j->p (the quote): its content span, and whether it has escapes. */
static bool jstring(jr *j, str_ref *out, bool *escaped)
{
  if (j->p >= j->e || *j->p != '"')
    return fail(j, "expected a string");
  const char *s = ++j->p;
  *escaped = false;
  while (j->p < j->e) {
    unsigned char ch = (unsigned char)*j->p;
    if (ch == '"') {
      out->ptr = s;
      out->len = (size_t)(j->p - s);
      j->p++;
      return true;
    }
    if (ch < 0x20)
      return fail(j, "a control character in a string");
    if (ch == '\\') {
      *escaped = true;
      if (j->p + 1 >= j->e)
        break;
      char x = j->p[1];
      if (x == 'u') {
        if (j->p + 5 >= j->e)
          break;
        for (int k = 2; k < 6; k++)
          if (!isxdigit((unsigned char)j->p[k]))
            return fail(j, "a bad \\u escape");
        j->p += 6;
        continue;
      }
      if (strchr("\"\\/bfnrt", x) == NULL)
        return fail(j, "a bad escape");
      j->p += 2;
      continue;
    }
    j->p++;
  }
  return fail(j, "an unterminated string");
}

static unsigned hex4(const char *p)
{
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    char c = p[k];
    v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

/* Unescapes a checked string's content into h; false on a lone surrogate. */
static bool unescape(str_ref in, strheap *h, str_ref *out)
{
  char *o = strheap_alloc(h, in.len + 1);
  size_t n = 0;
  for (size_t i = 0; i < in.len; i++) {
    char c = in.ptr[i];
    if (c != '\\') {
      o[n++] = c;
      continue;
    }
    char x = in.ptr[++i];
    switch (x) {
    case 'b':
      o[n++] = '\b';
      break;
    case 'f':
      o[n++] = '\f';
      break;
    case 'n':
      o[n++] = '\n';
      break;
    case 'r':
      o[n++] = '\r';
      break;
    case 't':
      o[n++] = '\t';
      break;
    case 'u': {
      unsigned cp = hex4(in.ptr + i + 1);
      i += 4;
      if (cp >= 0xd800 && cp < 0xdc00) {
        if (i + 6 >= in.len || in.ptr[i + 1] != '\\' || in.ptr[i + 2] != 'u')
          return false;
        unsigned lo = hex4(in.ptr + i + 3);
        if (lo < 0xdc00 || lo >= 0xe000)
          return false;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i += 6;
      } else if (cp >= 0xdc00 && cp < 0xe000) {
        return false;
      }
      n += utf8_encode(o + n, cp);
      break;
    }
    default:
      o[n++] = x;
      break;
    }
  }
  out->ptr = o;
  out->len = n;
  return true;
}

static bool jvalue(jr *j, int depth);

static bool jnumber(jr *j)
{
  const char *p = j->p;
  if (p < j->e && *p == '-')
    p++;
  if (p >= j->e || !isdigit((unsigned char)*p))
    return fail(j, "a bad number");
  if (*p == '0')
    p++;
  else
    while (p < j->e && isdigit((unsigned char)*p))
      p++;
  if (p < j->e && *p == '.') {
    p++;
    if (p >= j->e || !isdigit((unsigned char)*p))
      return fail(j, "a bad number");
    while (p < j->e && isdigit((unsigned char)*p))
      p++;
  }
  if (p < j->e && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < j->e && (*p == '+' || *p == '-'))
      p++;
    if (p >= j->e || !isdigit((unsigned char)*p))
      return fail(j, "a bad number");
    while (p < j->e && isdigit((unsigned char)*p))
      p++;
  }
  j->p = p;
  return true;
}

static bool jword(jr *j, const char *w)
{
  size_t n = strlen(w);
  if ((size_t)(j->e - j->p) < n || memcmp(j->p, w, n) != 0)
    return fail(j, "an unexpected character");
  j->p += n;
  return true;
}

static bool jcompound(jr *j, int depth, char close)
{
  if (depth >= MAX_DEPTH)
    return fail(j, "nesting deeper than 64");
  j->p++;
  jws(j);
  if (j->p < j->e && *j->p == close) {
    j->p++;
    return true;
  }
  for (;;) {
    if (close == '}') {
      str_ref k;
      bool esc;
      if (!jstring(j, &k, &esc))
        return false;
      jws(j);
      if (j->p >= j->e || *j->p != ':')
        return fail(j, "expected ':'");
      j->p++;
      jws(j);
    }
    if (!jvalue(j, depth + 1))
      return false;
    jws(j);
    if (j->p < j->e && *j->p == ',') {
      j->p++;
      jws(j);
      continue;
    }
    if (j->p < j->e && *j->p == close) {
      j->p++;
      return true;
    }
    return fail(j, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static bool jvalue(jr *j, int depth)
{
  if (j->p >= j->e)
    return fail(j, "unexpected end of input");
  switch (*j->p) {
  case '"': {
    str_ref s;
    bool esc;
    return jstring(j, &s, &esc);
  }
  case '{':
    return jcompound(j, depth, '}');
  case '[':
    return jcompound(j, depth, ']');
  case 't':
    return jword(j, "true");
  case 'f':
    return jword(j, "false");
  case 'n':
    return jword(j, "null");
  default:
    return jnumber(j);
  }
}

/* ---- values ---- */

/* One value found for a column: its kind and text. */
typedef struct jval {
  char t;                      /* 's' string, 'n' number, 'b' true/false, '{', '[', 0 none/null */
  str_ref text;                /* string content (unescaped), or the literal / JSON text */
  bool escaped;                /* 's': text still has escapes */
} jval;

/* A converted value: a scalar, or a nested value's parts (parquet_write.h). */
typedef pqw_value cell;

typedef struct cctx {
  const conv_config *cfg;
  const conv_schema *sch;
  strheap *heap;
  arena *a;
  arena *tree;                 /* the parts of nested values, per record */
  const char *code;            /* the failure: error code and message (arena) */
  const char *msg;
} cctx;

static bool mismatch(cctx *x, const ccol *c, const jval *v, const char *why)
{
  int n = v->text.len > 200 ? 200 : (int)v->text.len;
  x->code = "DataFormatConversion.MalformedData";
  x->msg = arena_sprintf(x->a, "Data does not match the schema. Column '%s' (%s): %s: \"%.*s\"",
                         c->name, c->type, why, n, v->text.ptr != NULL ? v->text.ptr : "");
  return false;
}

/* The text as a NUL-terminated copy (bounded; numbers and dates are short). */
static bool small_text(const jval *v, char *out, size_t cap)
{
  if (v->text.len >= cap)
    return false;
  memcpy(out, v->text.ptr, v->text.len);
  out[v->text.len] = '\0';
  return true;
}

/* An integer literal or numeric string. */
static bool to_i64(const jval *v, int64_t *out)
{
  char t[40];
  if ((v->t != 'n' && v->t != 's') || !small_text(v, t, sizeof t))
    return false;
  return fmt_parse_i64(t, strlen(t), out);
}

__extension__ typedef unsigned __int128 u128;

/* A decimal exactly: digits scaled to scale, rounded half up beyond it;
 * the magnitude below 10^precision (precision <= 38) and the sign. */
static bool to_decimal(const jval *v, int precision, int scale, u128 *out, bool *negative)
{
  char t[128];
  if ((v->t != 'n' && v->t != 's') || !small_text(v, t, sizeof t))
    return false;
  const char *p = t;
  bool neg = false;
  if (*p == '-' || *p == '+') {
    neg = *p == '-';
    p++;
  }
  char digits[128];
  size_t nd = 0;
  int point = -1;                 /* digits before the point */
  bool any = false;
  for (; *p != '\0' && *p != 'e' && *p != 'E'; p++) {
    if (*p == '.') {
      if (point >= 0)
        return false;
      point = (int)nd;
      continue;
    }
    if (!isdigit((unsigned char)*p))
      return false;
    any = true;
    digits[nd++] = *p;
  }
  if (!any)
    return false;
  if (point < 0)
    point = (int)nd;
  if (*p == 'e' || *p == 'E') {
    char *end;
    long x = strtol(p + 1, &end, 10);
    if (*end != '\0' || end == p + 1 || x > 1000 || x < -1000)
      return false;
    point += (int)x;
  }
  /* value = 0.digits * 10^point; scaled = digits up to point+scale */
  int keep = point + scale;         /* digits that make the scaled integer */
  u128 max = 1;
  for (int k = 0; k < precision; k++)
    max *= 10;
  u128 acc = 0;
  for (int k = 0; k < keep; k++) {
    int d = k < (int)nd ? digits[k] - '0' : 0;
    acc = acc * 10 + (u128)d;
    if (acc >= max)                 /* (max <= 10^38: acc * 10 cannot wrap) */
      return false;
  }
  if (keep >= 0 && keep < (int)nd && digits[keep] >= '5')
    acc++;                          /* half up */
  if (acc >= max)
    return false;
  *out = acc;
  *negative = neg && acc != 0;
  return true;
}

/* Digits: 1..max of them at *p. */
static bool digits(const char **p, const char *e, int min, int max, int64_t *out)
{
  int64_t v = 0;
  int n = 0;
  while (*p < e && n < max && isdigit((unsigned char)**p)) {
    v = v * 10 + (**p - '0');
    (*p)++;
    n++;
  }
  *out = v;
  return n >= min;
}

static bool valid_ymd(int64_t y, int64_t m, int64_t d)
{
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
    return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m != 2 || d <= 28 || leap;
}

/* yyyy-[M]M-[d]d */
static bool parse_ymd(const char **p, const char *e, int64_t *days)
{
  int64_t y, m, d;
  if (!digits(p, e, 4, 4, &y) || *p >= e || **p != '-')
    return false;
  (*p)++;
  if (!digits(p, e, 1, 2, &m) || *p >= e || **p != '-')
    return false;
  (*p)++;
  if (!digits(p, e, 1, 2, &d) || !valid_ymd(y, m, d))
    return false;
  *days = fmt_days_from_civil(y, (unsigned)m, (unsigned)d);
  return true;
}

/* A fraction of a second after '.': up to 9 digits, as microseconds. */
static bool fraction(const char **p, const char *e, int64_t *us)
{
  int64_t v = 0;
  int n = 0;
  while (*p < e && isdigit((unsigned char)**p)) {
    if (n >= 9)
      return false;
    v = v * 10 + (**p - '0');
    (*p)++;
    n++;
  }
  if (n == 0)
    return false;
  for (; n < 9; n++)
    v *= 10;
  *us = v / 1000;
  return true;
}

/* An offset: Z, or (+|-)HH[:]MM or (+|-)HH; seconds east of UTC. */
static bool offset(const char **p, const char *e, int64_t *secs)
{
  if (*p < e && **p == 'Z') {
    (*p)++;
    *secs = 0;
    return true;
  }
  if (*p >= e || (**p != '+' && **p != '-'))
    return false;
  int sign = **p == '-' ? -1 : 1;
  (*p)++;
  int64_t h, m = 0;
  if (!digits(p, e, 2, 2, &h))
    return false;
  if (*p < e && **p == ':')
    (*p)++;
  if (*p < e && isdigit((unsigned char)**p) && !digits(p, e, 2, 2, &m))
    return false;
  if (h > 18 || m > 59)
    return false;
  *secs = sign * (h * 3600 + m * 60);
  return true;
}

/* yyyy-[M]M-[d]d( |T)[H]H:[m]m:[s]s[.f{1,9}][Z|offset]: the forms the
 * OpenX SerDe documents (and java.sql.Timestamp's), as UTC micros. */
static bool parse_datetime(const char *p, const char *e, int64_t *micros)
{
  int64_t days, h, mi, s, us = 0, off = 0;
  if (!parse_ymd(&p, e, &days) || p >= e || (*p != ' ' && *p != 'T'))
    return false;
  p++;
  if (!digits(&p, e, 1, 2, &h) || p >= e || *p != ':')
    return false;
  p++;
  if (!digits(&p, e, 1, 2, &mi) || p >= e || *p != ':')
    return false;
  p++;
  if (!digits(&p, e, 1, 2, &s) || h > 23 || mi > 59 || s > 59)
    return false;
  if (p < e && *p == '.') {
    p++;
    if (!fraction(&p, e, &us))
      return false;
  }
  if (p < e && !offset(&p, e, &off))
    return false;
  if (p != e)
    return false;
  *micros = ((days * 86400 + h * 3600 + mi * 60 + s) - off) * 1000000 + us;
  return true;
}

/* Epoch seconds (with a fraction) below 1e12 in magnitude, milliseconds
 * from there on, as Firehose reads numbers in timestamp columns. */
static bool parse_epoch(const char *t, int64_t *micros)
{
  size_t n = strlen(t);
  int64_t i;
  if (fmt_parse_i64(t, n, &i)) {
    if (i > -1000000000000LL && i < 1000000000000LL) {
      *micros = i * 1000000;
      return true;
    }
    if (i > INT64_MAX / 1000 || i < INT64_MIN / 1000)
      return false;
    *micros = i * 1000;
    return true;
  }
  double d;
  if (!fmt_parse_f64(t, n, &d) || !isfinite(d))
    return false;
  double us = fabs(d) < 1e12 ? d * 1e6 : d * 1e3;
  if (fabs(us) > 9.2e18)
    return false;
  *micros = (int64_t)llround(us);
  return true;
}

/* A Joda pattern (the subset check_pattern admits) over t. */
static bool parse_joda(const char *f, const char *t, int64_t *micros)
{
  const char *p = t;
  const char *e = t + strlen(t);
  if (strcmp(f, "millis") == 0) {
    int64_t ms;
    if (!fmt_parse_i64(t, strlen(t), &ms) || ms > INT64_MAX / 1000 || ms < INT64_MIN / 1000)
      return false;
    *micros = ms * 1000;
    return true;
  }
  int64_t y = 1970, mo = 1, d = 1, h = 0, mi = 0, s = 0, us = 0, off = 0;
  for (const char *q = f; *q != '\0';) {
    char c = *q;
    if (c == '\'') {
      const char *end = strchr(q + 1, '\'');
      if (end == q + 1) {        /* '' is a quote */
        if (p >= e || *p != '\'')
          return false;
        p++;
      } else {
        size_t n = (size_t)(end - q - 1);
        if ((size_t)(e - p) < n || memcmp(p, q + 1, n) != 0)
          return false;
        p += n;
      }
      q = end + 1;
      continue;
    }
    if (!isalpha((unsigned char)c)) {
      if (p >= e || *p != c)
        return false;
      p++;
      q++;
      continue;
    }
    int count = 0;
    while (q[count] == c)
      count++;
    q += count;
    /* adjacent numeric fields take exactly their width */
    bool adjacent = isalpha((unsigned char)*q) && *q != 'Z';
    int64_t v;
    switch (c) {
    case 'y':
      if (!digits(&p, e, adjacent ? count : 1, adjacent ? count : 4, &v))
        return false;
      y = count == 2 && !adjacent && v < 100 ? 2000 + v : v;
      break;
    case 'M':
    case 'd':
    case 'H':
    case 'm':
    case 's':
      if (!digits(&p, e, adjacent ? count : 1, adjacent ? count : 2, &v))
        return false;
      if (c == 'M')
        mo = v;
      else if (c == 'd')
        d = v;
      else if (c == 'H')
        h = v;
      else if (c == 'm')
        mi = v;
      else
        s = v;
      break;
    case 'S': {
      const char *start = p;
      int n = 0;
      int64_t frac = 0;
      int max = adjacent ? count : 9;
      while (p < e && n < max && isdigit((unsigned char)*p)) {
        frac = frac * 10 + (*p - '0');
        p++;
        n++;
      }
      if (p == start)
        return false;
      for (; n < 6; n++)
        frac *= 10;
      for (; n > 6; n--)
        frac /= 10;
      us = frac;
      break;
    }
    case 'Z':
      if (!offset(&p, e, &off))
        return false;
      break;
    default:
      return false;
    }
  }
  if (p != e || y < 1 || y > 9999 || !valid_ymd(y, mo, d) || h > 23 || mi > 59 || s > 59)
    return false;
  int64_t days = fmt_days_from_civil(y, (unsigned)mo, (unsigned)d);
  *micros = ((days * 86400 + h * 3600 + mi * 60 + s) - off) * 1000000 + us;
  return true;
}

static bool to_timestamp(const conv_config *cfg, const jval *v, int64_t *out)
{
  char t[128];
  if ((v->t != 'n' && v->t != 's') || !small_text(v, t, sizeof t))
    return false;
  /* Hive's TimestampFormats first ("millis" reads numbers too), then the
     forms both SerDes read */
  for (size_t i = 0; i < cfg->nts; i++)
    if ((v->t == 's' || strcmp(cfg->ts_formats[i], "millis") == 0) &&
        parse_joda(cfg->ts_formats[i], t, out))
      return true;
  if (v->t == 's' && parse_datetime(t, t + strlen(t), out))
    return true;
  return parse_epoch(t, out);
}

static bool to_date(const jval *v, int64_t *days)
{
  if (v->t != 's')
    return false;
  const char *p = v->text.ptr;
  const char *e = p + v->text.len;
  return parse_ymd(&p, e, days) && p == e;
}

/* The value whose JSON text is [vstart, vend) (already checked), as a jval. */
static void classify(const char *vstart, const char *vend, jval *v)
{
  memset(v, 0, sizeof *v);
  switch (*vstart) {
  case '"': {
    jr sj = {vstart, vend, NULL};
    v->t = 's';
    jstring(&sj, &v->text, &v->escaped);
    return;
  }
  case 'n':
    return;                    /* null */
  case 't':
  case 'f':
    v->t = 'b';
    break;
  case '{':
  case '[':
    v->t = *vstart;
    break;
  default:
    v->t = 'n';
    break;
  }
  v->text.ptr = vstart;
  v->text.len = (size_t)(vend - vstart);
  while (v->text.len > 0 && strchr(" \t\r\n", v->text.ptr[v->text.len - 1]) != NULL)
    v->text.len--;
}

/* A JSON key as columns and struct fields are matched to it (invariant
   (3)): unescaped, lower-cased when case-insensitive, dots made
   underscores when asked; into scratch. False when it cannot match. */
static bool match_key(const cctx *x, str_ref key, bool escaped, char *scratch, size_t cap,
                      str_ref *out)
{
  str_ref k = key;
  if (escaped) {
    strheap tmp = {0};
    str_ref u;
    if (!unescape(key, &tmp, &u) || u.len >= cap) {
      strheap_release(&tmp);
      return false;
    }
    memcpy(scratch, u.ptr, u.len);
    strheap_release(&tmp);
    k.len = u.len;
  } else {
    if (key.len >= cap)
      return false;
    memcpy(scratch, key.ptr, key.len);
  }
  k.ptr = scratch;
  for (size_t i = 0; i < k.len; i++) {
    if (x->cfg->case_insensitive)
      scratch[i] = (char)tolower((unsigned char)scratch[i]);
    if (x->cfg->dots_to_underscores && scratch[i] == '.')
      scratch[i] = '_';
  }
  *out = k;
  return true;
}

/* The kid of c (or column of the schema, c NULL) whose key is k; -1 none. */
static int find_key(const cctx *x, const ccol *c, str_ref k)
{
  const ccol *cols = c != NULL ? c->kids : x->sch->cols;
  size_t n = c != NULL ? c->nkids : x->sch->n;
  for (size_t i = 0; i < n; i++)
    if (cols[i].keylen == k.len && memcmp(cols[i].key, k.ptr, k.len) == 0)
      return (int)i;
  return -1;
}

static bool convert_value(cctx *x, const ccol *c, jval *v, cell *out);

/* A JSON array (list) or object (map, struct) for nested column c: its
   parts converted into out->items (in x->tree). */
static bool convert_nested(cctx *x, const ccol *c, jval *v, cell *out)
{
  char open = c->kind == CK_LIST ? '[' : '{';
  if (v->t != open)
    return mismatch(x, c, v, c->kind == CK_LIST ? "not a JSON array" : "not a JSON object");
  jr j = {v->text.ptr + 1, v->text.ptr + v->text.len, NULL};
  size_t cap = c->kind == CK_STRUCT ? c->nkids : 8;
  size_t n = 0;
  cell *items = arena_alloc(x->tree, cap * sizeof *items);
  jval *fields = c->kind == CK_STRUCT ? arena_alloc(x->tree, c->nkids * sizeof *fields) : NULL;
  char scratch[1024];
  jws(&j);
  while (j.p < j.e && *j.p != (open == '[' ? ']' : '}')) {
    str_ref key = {0};
    bool kesc = false;
    if (open == '{') {
      if (!jstring(&j, &key, &kesc))
        return mismatch(x, c, v, "malformed JSON");
      jws(&j);
      j.p++;                   /* ':' (the record was checked whole) */
      jws(&j);
    }
    const char *vs = j.p;
    if (!jvalue(&j, 1))
      return mismatch(x, c, v, "malformed JSON");
    jval ev;
    classify(vs, j.p, &ev);
    jws(&j);
    if (j.p < j.e && *j.p == ',') {
      j.p++;
      jws(&j);
    }
    if (c->kind == CK_STRUCT) {
      str_ref k;
      int f = match_key(x, key, kesc, scratch, sizeof scratch, &k) ? find_key(x, c, k) : -1;
      if (f >= 0)
        fields[f] = ev;        /* the last of a repeated key wins, as for columns */
      continue;
    }
    size_t per = c->kind == CK_MAP ? 2 : 1;
    if (n + per > cap) {
      cell *more = arena_alloc(x->tree, cap * 2 * sizeof *more);
      memcpy(more, items, n * sizeof *items);
      items = more;
      cap *= 2;
    }
    if (c->kind == CK_MAP) {
      jval kv = {.t = 's', .text = key, .escaped = kesc};
      if (!convert_value(x, &c->kids[0], &kv, &items[n]) ||
          !convert_value(x, &c->kids[1], &ev, &items[n + 1]))
        return false;
    } else if (!convert_value(x, &c->kids[0], &ev, &items[n])) {
      return false;
    }
    n += per;
  }
  if (c->kind == CK_STRUCT) {
    for (size_t i = 0; i < c->nkids; i++)
      if (!convert_value(x, &c->kids[i], &fields[i], &items[i]))
        return false;
    n = c->nkids;
  }
  out->items = items;
  out->n = n;
  return true;
}

/* Converts value v for column c into *out. */
static bool convert_value(cctx *x, const ccol *c, jval *v, cell *out)
{
  memset(out, 0, sizeof *out);
  if (v->t == 0) {
    out->null = true;
    return true;
  }
  if (v->t == 's' && v->escaped) {
    str_ref u;
    if (!unescape(v->text, x->heap, &u)) {
      x->code = "DataFormatConversion.ParseError";
      x->msg = arena_sprintf(x->a, "Encountered malformed JSON. A lone surrogate in a string "
                             "(column '%s')", c->name);
      return false;
    }
    v->text = u;
    v->escaped = false;
  }
  if (v->t == 's' && !utf8_valid(v->text.ptr, v->text.len)) {
    x->code = "DataFormatConversion.ParseError";
    x->msg = arena_sprintf(x->a, "Encountered malformed JSON. Invalid UTF-8 in a string "
                           "(column '%s')", c->name);
    return false;
  }
  switch (c->kind) {
  case CK_STRING:
    out->s = v->text;
    return true;
  case CK_LIST:
  case CK_MAP:
  case CK_STRUCT:
    return convert_nested(x, c, v, out);
  case CK_BOOLEAN:
    if (v->t == 'b' || v->t == 's') {
      if (v->text.len == 4 && strncasecmp(v->text.ptr, "true", 4) == 0) {
        out->i = 1;
        return true;
      }
      if (v->text.len == 5 && strncasecmp(v->text.ptr, "false", 5) == 0)
        return true;
    }
    return mismatch(x, c, v, "not a boolean");
  case CK_TINYINT:
  case CK_SMALLINT:
  case CK_INT:
  case CK_BIGINT: {
    static const int64_t lim[] = {127, 32767, 2147483647, INT64_MAX};
    int64_t max = lim[c->kind - CK_TINYINT];
    if (!to_i64(v, &out->i))
      return mismatch(x, c, v, "not an integer");
    if (out->i > max || out->i < -max - 1)
      return mismatch(x, c, v, "out of range");
    return true;
  }
  case CK_FLOAT:
  case CK_DOUBLE: {
    char t[400];
    if ((v->t != 'n' && v->t != 's') || !small_text(v, t, sizeof t) ||
        !fmt_parse_f64(t, strlen(t), &out->f))
      return mismatch(x, c, v, "not a number");
    if (!isfinite(out->f) || (c->kind == CK_FLOAT && !isfinite((float)out->f)))
      return mismatch(x, c, v, "out of range");
    return true;
  }
  case CK_DECIMAL: {
    u128 mag;
    bool neg;
    if (!to_decimal(v, c->precision, c->scale, &mag, &neg))
      return mismatch(x, c, v, "not a decimal that fits");
    if (c->precision <= 18) {
      out->i = neg ? -(int64_t)mag : (int64_t)mag;
      return true;
    }
    /* wider: the unscaled value as big-endian two's complement, shortest */
    u128 twos = neg ? ~mag + 1 : mag;
    uint8_t be[16];
    for (int k = 0; k < 16; k++)
      be[k] = (uint8_t)(twos >> (8 * (15 - k)));
    int skip = 0;
    while (skip < 15 && ((be[skip] == 0x00 && !(be[skip + 1] & 0x80)) ||
                         (be[skip] == 0xff && (be[skip + 1] & 0x80))))
      skip++;
    char *p = strheap_alloc(x->heap, (size_t)(16 - skip));
    memcpy(p, be + skip, (size_t)(16 - skip));
    out->s.ptr = p;
    out->s.len = (size_t)(16 - skip);
    return true;
  }
  case CK_DATE:
    if (!to_date(v, &out->i))
      return mismatch(x, c, v, "not a date (yyyy-MM-dd)");
    return true;
  case CK_TIMESTAMP:
    if (!to_timestamp(x->cfg, v, &out->i))
      return mismatch(x, c, v, "not a timestamp in a supported format");
    return true;
  }
  return mismatch(x, c, v, "unsupported");
}

/* One object at j->p into row[]; false with x->code set. */
static bool convert_object(cctx *x, jr *j, cell *row, jval *vals)
{
  const conv_schema *s = x->sch;
  for (size_t c = 0; c < s->n; c++)
    vals[c].t = 0;
  if (*j->p != '{') {
    jr probe = *j;
    if (!jvalue(&probe, 0)) {
      x->code = "DataFormatConversion.ParseError";
      x->msg = arena_sprintf(x->a, "Encountered malformed JSON. %s", probe.error);
      return false;
    }
    x->code = "DataFormatConversion.MalformedData";
    x->msg = "Data does not match the schema. A JSON object is required.";
    return false;
  }
  const char *obj_start = j->p;
  j->p++;
  jws(j);
  bool first = true;
  char scratch[1024];
  while (j->p < j->e && *j->p != '}') {
    if (!first) {
      if (*j->p != ',') {
        fail(j, "expected ',' or '}'");
        break;
      }
      j->p++;
      jws(j);
    }
    first = false;
    str_ref key;
    bool kesc;
    if (!jstring(j, &key, &kesc))
      break;
    jws(j);
    if (j->p >= j->e || *j->p != ':') {
      fail(j, "expected ':'");
      break;
    }
    j->p++;
    jws(j);
    const char *vstart = j->p;
    if (!jvalue(j, 1))
      break;
    str_ref k;
    int c = match_key(x, key, kesc, scratch, sizeof scratch, &k) ? find_key(x, NULL, k) : -1;
    const char *vend = j->p;
    jws(j);
    if (c >= 0)
      classify(vstart, vend, &vals[c]);
  }
  if (j->error == NULL && (j->p >= j->e || *j->p != '}'))
    fail(j, "expected ',' or '}'");
  if (j->error != NULL) {
    x->code = "DataFormatConversion.ParseError";
    x->msg = arena_sprintf(x->a, "Encountered malformed JSON. %s at offset %zu", j->error,
                           (size_t)(j->p - obj_start));
    return false;
  }
  j->p++;
  for (size_t c = 0; c < s->n; c++)
    if (!convert_value(x, &s->cols[c], &vals[c], &row[c]))
      return false;
  return true;
}

/* ---- writing ---- */

static int out_fn(void *ctx, const void *p, size_t n, err *e)
{
  buf *b = ctx;
  if (buf_append(b, p, n) != 0)
    return err_set(e, ERR_ENTITY_TOO_LARGE, "a converted object would pass its limit");
  return 0;
}

int stream__conv_write(const conv_config *cfg, const conv_schema *s, conv_rec *recs, size_t n,
                       buf *out, arena *a, err *e)
{
  strheap heap = {0};
  cctx x = {cfg, s, &heap, a, arena_new(), NULL, NULL};
  /* a record's rows, held until all of its objects convert (invariant (2)) */
  size_t rcap = 4;
  cell *rows = xcalloc(rcap * s->n, sizeof(cell));
  jval *vals = xcalloc(s->n, sizeof(jval));
  pqw_writer *w = NULL;
  pqw_options po = {.codec = cfg->codec, .row_group_bytes = cfg->block_bytes,
                    .page_bytes = cfg->page_bytes, .no_dictionary = cfg->no_dictionary,
                    .page_v2 = cfg->page_v2};
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    conv_rec *r = &recs[i];
    jr j = {(const char *)r->data, (const char *)r->data + r->len, NULL};
    size_t nrows = 0;
    bool ok = true;
    jws(&j);
    if (j.p >= j.e) {
      x.code = "DataFormatConversion.ParseError";
      x.msg = "Encountered malformed JSON. The record is empty.";
      ok = false;
    }
    while (ok && j.p < j.e) {
      if (nrows == rcap) {
        rcap *= 2;
        rows = xrealloc(rows, rcap * s->n * sizeof(cell));
      }
      if (!convert_object(&x, &j, rows + nrows * s->n, vals)) {
        ok = false;
        break;
      }
      nrows++;
      jws(&j);
    }
    if (!ok) {
      r->err_code = x.code;
      r->err_msg = x.msg;
      continue;
    }
    for (size_t k = 0; k < nrows && rc == 0; k++) {
      if (w == NULL)
        rc = pqw_new(s->pcols, (int)s->n, &po, out_fn, out, &w, e);
      if (rc == 0)
        rc = pqw_append_row(w, rows + k * s->n, e);
    }
    /* the writer copied the rows: their strings (in the heap) and parts
       (in the tree arena) can go */
    if (heap.used > (16u << 20))
      strheap_reset(&heap);
    if (arena_used(x.tree) > (1u << 20)) {
      arena_free(x.tree);
      x.tree = arena_new();
    }
  }
  if (rc == 0 && w != NULL)
    rc = pqw_finish(w, e);
  pqw_free(w);
  arena_free(x.tree);
  free(rows);
  free(vals);
  strheap_release(&heap);
  return rc;
}
