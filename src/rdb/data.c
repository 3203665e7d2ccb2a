/* rdb/data.c -- the RDS Data API's statements over libpq: ExecuteStatement,
 * BatchExecuteStatement and transactions.
 *
 * Why here and not in api/: the typing of values (a PostgreSQL column to a
 * Field union, a typed parameter with a typeHint to a PostgreSQL parameter)
 * is the Data API's meaning, not its wire shape.
 *
 * Statements: named parameters (:name) become $n outside quotes, comments
 * and `::` casts; values go as text with the type their union member (or
 * typeHint) names, so PostgreSQL checks them. A statement without parameters
 * is sent as one query string (several statements allowed, the last one
 * answers); answers are read row by row, so none is held past RDB_RESULT_MAX.
 * Array parameters: see "arrays" below.
 *
 * Invariants:
 *   (1) Outside a transaction, a statement autocommits: an error leaves
 *       nothing changed. A batch runs in one transaction of its own.
 *   (2) A transaction pins one connection; one statement at a time runs on
 *       it (busy); it expires after RDB_TX_IDLE_MS without a call (rolled
 *       back, as AWS does after 3 minutes; rdb_options.tx_idle_ms), and
 *       after RDB_TX_LIFE_MS (24 hours) in all, busy or not at its next
 *       idle moment.
 *   (3) No answer is larger than RDB_RESULT_MAX bytes.
 *
 * Start reading at rdb_execute().
 */
#include "rdb/rdb_internal.h"

#include "base/buf.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARAMS_MAX 1000

/* type OIDs (pg_type.h) */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_OID 26
#define OID_JSON 114
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_VARCHAR 1043
#define OID_DATE 1082
#define OID_TIME 1083
#define OID_TIMESTAMP 1114
#define OID_TIMESTAMPTZ 1184
#define OID_NUMERIC 1700
#define OID_UUID 2950
#define OID_JSONB 3802

typedef struct call {
  rdb_cluster *c;
  json_t *secret;          /* the secret's value (owns user, password) */
  const char *user;
  const char *password;
  char db[64];             /* the database, copied from the request or the cluster */
} call;

static int resolve(rdb *r, json_t *in, call *k, err *e)
{
  memset(k, 0, sizeof *k);
  const char *arn = json_string_value(json_object_get(in, "resourceArn"));
  const char *sarn = json_string_value(json_object_get(in, "secretArn"));
  if (arn == NULL || sarn == NULL)
    return err_set(e, ERR_INVALID, "resourceArn and secretArn are required");
  k->c = rdb_cluster_find(r, arn);
  if (k->c == NULL)
    return err_set(e, ERR_INVALID, "Database cluster %s not found", arn);
  pthread_mutex_lock(&k->c->mu); /* (4) of rdb.c: c->rec is read under c->mu */
  bool enabled = json_is_true(json_object_get(k->c->rec, "HttpEndpointEnabled"));
  const char *db = json_string_value(json_object_get(in, "database"));
  if (db == NULL || db[0] == '\0')
    db = json_string_value(json_object_get(k->c->rec, "DatabaseName"));
  bool long_name = db != NULL && strlen(db) >= sizeof k->db;
  snprintf(k->db, sizeof k->db, "%s", db != NULL && !long_name ? db : "postgres");
  pthread_mutex_unlock(&k->c->mu);
  if (long_name)
    return err_set(e, ERR_INVALID, "database name is longer than 63 characters");
  if (!enabled)
    return err_set(e, ERR_INVALID, "HttpEndpoint is not enabled for cluster %s. Please refer "
                   "to https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/"
                   "data-api.html#data-api.troubleshooting", k->c->id);
  int rc = rdb_secret_credentials(r, sarn, &k->secret, &k->user, &k->password, e);
  if (rc != 0)
    return rc;
  return 0;
}

/* ---- statements ---- */

/* Rewrites :name to $n (names collected in *names, in order of first use). */
static char *rewrite(const char *sql, json_t *names)
{
  size_t n = strlen(sql);
  buf b;
  buf_init(&b, RDB_SQL_MAX * 4); /* ':a' -> '$1000' at the most */
  for (size_t i = 0; i < n;) {
    char ch = sql[i];
    if (ch == '\'' || ch == '"') {
      size_t j = i + 1;
      while (j < n && sql[j] != ch)
        j++;
      j = j < n ? j + 1 : n;
      buf_append(&b, sql + i, j - i);
      i = j;
    } else if (ch == '-' && sql[i + 1] == '-') {
      size_t j = i;
      while (j < n && sql[j] != '\n')
        j++;
      buf_append(&b, sql + i, j - i);
      i = j;
    } else if (ch == '/' && sql[i + 1] == '*') {
      const char *end = strstr(sql + i + 2, "*/");
      size_t j = end != NULL ? (size_t)(end - sql) + 2 : n;
      buf_append(&b, sql + i, j - i);
      i = j;
    } else if (ch == '$' && (i == 0 || !isalnum((unsigned char)sql[i - 1]))) {
      /* dollar quoting: $tag$ ... $tag$ */
      size_t j = i + 1;
      while (j < n && (isalnum((unsigned char)sql[j]) || sql[j] == '_'))
        j++;
      if (j < n && sql[j] == '$') {
        size_t tl = j - i + 1;
        char *tag = strndup(sql + i, tl);
        const char *end = strstr(sql + j + 1, tag);
        free(tag);
        size_t k = end != NULL ? (size_t)(end - sql) + tl : n;
        buf_append(&b, sql + i, k - i);
        i = k;
      } else {
        buf_append(&b, sql + i, j - i);
        i = j;
      }
    } else if (ch == ':' && sql[i + 1] == ':') {
      buf_append(&b, "::", 2);
      i += 2;
    } else if (ch == ':' && (isalpha((unsigned char)sql[i + 1]) || sql[i + 1] == '_')) {
      size_t j = i + 1;
      while (j < n && (isalnum((unsigned char)sql[j]) || sql[j] == '_'))
        j++;
      char *name = strndup(sql + i + 1, j - i - 1);
      size_t idx = json_array_size(names);
      /* past PARAMS_MAX names run() refuses the statement: stop looking */
      for (size_t k = 0; idx <= PARAMS_MAX && k < json_array_size(names); k++)
        if (strcmp(json_string_value(json_array_get(names, k)), name) == 0)
          idx = k;
      if (idx == json_array_size(names))
        json_array_append_new(names, json_string(name));
      free(name);
      buf_printf(&b, "$%zu", idx + 1);
      i = j;
    } else {
      buf_append(&b, &ch, 1);
      i++;
    }
  }
  char *out = xmalloc(b.len + 1);
  memcpy(out, b.data != NULL ? b.data : "", b.len);
  out[b.len] = '\0';
  buf_release(&b);
  return out;
}

typedef enum elem_kind { ELEM_LONG, ELEM_DOUBLE, ELEM_BOOL, ELEM_STRING } elem_kind;

/* The array type a typeHint names for stringValues (0: PostgreSQL infers). */
static unsigned hint_array_oid(const char *hint)
{
  static const struct {
    const char *hint;
    unsigned oid;
  } t[] = {{"DATE", 1182}, {"TIME", 1183}, {"TIMESTAMP", 1115}, {"DECIMAL", 1231},
           {"UUID", 2951}, {"JSON", 199}};
  for (size_t i = 0; hint != NULL && i < sizeof t / sizeof t[0]; i++)
    if (strcmp(hint, t[i].hint) == 0)
      return t[i].oid;
  return 0;
}

static unsigned hint_oid(const char *hint)
{
  if (hint == NULL)
    return 0;
  if (strcmp(hint, "DATE") == 0)
    return OID_DATE;
  if (strcmp(hint, "TIME") == 0)
    return OID_TIME;
  if (strcmp(hint, "TIMESTAMP") == 0)
    return OID_TIMESTAMP;
  if (strcmp(hint, "DECIMAL") == 0)
    return OID_NUMERIC;
  if (strcmp(hint, "UUID") == 0)
    return OID_UUID;
  if (strcmp(hint, "JSON") == 0)
    return OID_JSON;
  return 0;
}

typedef struct bound {
  size_t n;
  unsigned *types;
  char **values;           /* NULL: SQL NULL */
} bound;

static void bound_release(bound *bd)
{
  for (size_t i = 0; i < bd->n; i++)
    free(bd->values[i]);
  free(bd->values);
  free(bd->types);
  memset(bd, 0, sizeof *bd);
}

/* An ArrayValue parameter as PostgreSQL's array text ({1,2}, {"a","b"},
 * {{1,2},{3,4}}); *kind: the element kind (-1 while unknown: empty). */
static int array_literal(json_t *a, buf *b, int *kind, int depth, err *e)
{
  static const char *members[] = {"longValues", "doubleValues", "booleanValues", "stringValues"};
  if (depth > 6)
    return err_set(e, ERR_INVALID, "arrayValue is nested more than 6 deep");
  if (!json_is_object(a) || json_object_size(a) != 1)
    return err_set(e, ERR_INVALID, "arrayValue must have exactly one of longValues, "
                   "doubleValues, booleanValues, stringValues, arrayValues");
  json_t *items = json_object_get(a, "arrayValues");
  bool nested = items != NULL;
  int k = -1;
  for (int i = 0; i < 4 && items == NULL; i++)
    if ((items = json_object_get(a, members[i])) != NULL)
      k = i;
  if (!json_is_array(items))
    return err_set(e, ERR_INVALID, "arrayValue must have exactly one of longValues, "
                   "doubleValues, booleanValues, stringValues, arrayValues");
  if (k >= 0) {
    if (*kind >= 0 && *kind != k)
      return err_set(e, ERR_INVALID, "the arrays of an arrayValues hold values of one type");
    *kind = k;
  }
  buf_append(b, "{", 1);
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it)
  {
    if (i > 0)
      buf_append(b, ",", 1);
    if (nested) {
      int rc = array_literal(it, b, kind, depth + 1, e);
      if (rc != 0)
        return rc;
    } else if (json_is_null(it)) {
      buf_puts(b, "NULL");
    } else if (k == ELEM_LONG && json_is_integer(it)) {
      buf_printf(b, "%lld", (long long)json_integer_value(it));
    } else if (k == ELEM_DOUBLE && json_is_number(it)) {
      buf_printf(b, "%.17g", json_number_value(it));
    } else if (k == ELEM_BOOL && json_is_boolean(it)) {
      buf_puts(b, json_is_true(it) ? "t" : "f");
    } else if (k == ELEM_STRING && json_is_string(it)) {
      buf_append(b, "\"", 1);
      for (const char *c = json_string_value(it); *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
          buf_append(b, "\\", 1);
        buf_append(b, c, 1);
      }
      buf_append(b, "\"", 1);
    } else {
      return err_set(e, ERR_INVALID, "arrayValue.%s holds a value of another type",
                     members[k]);
    }
    if (b->len > RDB_SQL_MAX * 16 - 64)
      return err_set(e, ERR_INVALID, "arrayValue is too large");
  }
  buf_append(b, "}", 1);
  return 0;
}

/* One SqlParameter's value as text and a type. */
static int bind_value(json_t *p, unsigned *type, char **text, err *e)
{
  json_t *v = json_object_get(p, "value");
  const char *hint = json_string_value(json_object_get(p, "typeHint"));
  json_t *m;
  *text = NULL;
  *type = 0;
  if (v == NULL || json_is_true(json_object_get(v, "isNull"))) {
    return 0;
  } else if ((m = json_object_get(v, "stringValue")) != NULL && json_is_string(m)) {
    *text = xstrdup(json_string_value(m));
    *type = hint_oid(hint);
  } else if ((m = json_object_get(v, "longValue")) != NULL && json_is_integer(m)) {
    *text = xmalloc(32);
    snprintf(*text, 32, "%lld", (long long)json_integer_value(m));
    *type = OID_INT8;
  } else if ((m = json_object_get(v, "doubleValue")) != NULL && json_is_number(m)) {
    *text = xmalloc(40);
    snprintf(*text, 40, "%.17g", json_number_value(m));
    *type = OID_FLOAT8;
  } else if ((m = json_object_get(v, "booleanValue")) != NULL && json_is_boolean(m)) {
    *text = xstrdup(json_is_true(m) ? "true" : "false");
    *type = OID_BOOL;
  } else if ((m = json_object_get(v, "blobValue")) != NULL && json_is_string(m)) {
    const char *b64 = json_string_value(m);
    size_t bl = strlen(b64);
    uint8_t *raw = xmalloc(bl + 1);
    long got = base64_decode(b64, bl, raw, bl + 1);
    if (got < 0) {
      free(raw);
      return err_set(e, ERR_INVALID, "blobValue is not valid base64");
    }
    *text = xmalloc(2 * (size_t)got + 3);
    memcpy(*text, "\\x", 2);
    hex_encode(raw, (size_t)got, *text + 2);
    free(raw);
    *type = OID_BYTEA;
  } else if ((m = json_object_get(v, "arrayValue")) != NULL) {
    buf b;
    buf_init(&b, RDB_SQL_MAX * 16);
    int kind = -1;
    int rc = array_literal(m, &b, &kind, 0, e);
    if (rc != 0) {
      buf_release(&b);
      return rc;
    }
    buf_append(&b, "", 1);
    *text = xstrdup(b.data);
    buf_release(&b);
    static const unsigned kinds[] = {1016, 1022, 1000, 0}; /* int8[] float8[] bool[] */
    *type = kind >= 0 ? kinds[kind] : 0;
    if (kind == ELEM_STRING || kind < 0)
      *type = hint != NULL ? hint_array_oid(hint) : 1009; /* text[] */
  } else {
    return err_set(e, ERR_INVALID, "Invalid parameter value: expected one of stringValue, "
                   "longValue, doubleValue, booleanValue, blobValue, isNull");
  }
  if (hint != NULL && hint_oid(hint) == 0)
    return err_set(e, ERR_INVALID, "Invalid typeHint '%s'", hint);
  return 0;
}

static int bind(json_t *names, json_t *params, bound *bd, err *e)
{
  memset(bd, 0, sizeof *bd);
  size_t n = json_array_size(names);
  if (json_array_size(params) > PARAMS_MAX)
    return err_set(e, ERR_INVALID, "too many parameters (at most %d)", PARAMS_MAX);
  bd->n = n;
  bd->types = xcalloc(n + 1, sizeof *bd->types);
  bd->values = xcalloc(n + 1, sizeof *bd->values);
  for (size_t i = 0; i < n; i++) {
    const char *name = json_string_value(json_array_get(names, i));
    json_t *found = NULL;
    size_t k;
    json_t *p;
    json_array_foreach(params, k, p)
    {
      const char *pn = json_string_value(json_object_get(p, "name"));
      if (pn != NULL && strcmp(pn, name) == 0)
        found = p;
    }
    if (found == NULL)
      return err_set(e, ERR_INVALID, "No value specified for parameter: %s", name);
    int rc = bind_value(found, &bd->types[i], &bd->values[i], e);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- results ---- */

static const char *type_name(unsigned oid, int *jdbc)
{
  switch (oid) {
  case OID_BOOL: *jdbc = -7; return "bool";
  case OID_BYTEA: *jdbc = -2; return "bytea";
  case OID_INT8: *jdbc = -5; return "int8";
  case OID_INT2: *jdbc = 5; return "int2";
  case OID_INT4: *jdbc = 4; return "int4";
  case OID_OID: *jdbc = -5; return "oid";
  case OID_TEXT: *jdbc = 12; return "text";
  case OID_VARCHAR: *jdbc = 12; return "varchar";
  case OID_JSON: *jdbc = 1111; return "json";
  case OID_JSONB: *jdbc = 1111; return "jsonb";
  case OID_FLOAT4: *jdbc = 7; return "float4";
  case OID_FLOAT8: *jdbc = 8; return "float8";
  case OID_DATE: *jdbc = 91; return "date";
  case OID_TIME: *jdbc = 92; return "time";
  case OID_TIMESTAMP: *jdbc = 93; return "timestamp";
  case OID_TIMESTAMPTZ: *jdbc = 93; return "timestamptz";
  case OID_NUMERIC: *jdbc = 2; return "numeric";
  case OID_UUID: *jdbc = 1111; return "uuid";
  default: break;
  }
  static const struct {
    unsigned oid;
    const char *name;
  } arrays[] = {{1000, "_bool"}, {1005, "_int2"}, {1007, "_int4"}, {1016, "_int8"},
                {1021, "_float4"}, {1022, "_float8"}, {1009, "_text"}, {1015, "_varchar"},
                {1231, "_numeric"}, {1182, "_date"}, {1183, "_time"}, {1115, "_timestamp"},
                {1185, "_timestamptz"}, {2951, "_uuid"}, {199, "_json"}, {3807, "_jsonb"}};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
    if (arrays[i].oid == oid) {
      *jdbc = 2003; /* java.sql.Types.ARRAY */
      return arrays[i].name;
    }
  }
  *jdbc = 1111;
  return "unknown";
}

/* ---- arrays ----
 * A one-dimensional array of a scalar type comes back as arrayValue
 * (longValues, doubleValues, booleanValues or stringValues), parsed from
 * PostgreSQL's text form ({1,2,3}, {"a b",c}); a nested array as
 * arrayValues. An array holding NULL stays a stringValue in PostgreSQL's
 * text form (a Field's lists cannot hold null: SDKs fail to parse one); in
 * formatRecordsAs JSON it is a JSON array with null. Array parameters
 * (arrayValue in parameters, which AWS's Data API refuses) are sent as the
 * same text form, typed int8[], float8[], bool[] or by the typeHint. */

static bool array_kind(unsigned oid, elem_kind *k)
{
  switch (oid) {
  case 1005: case 1007: case 1016: case 1028: *k = ELEM_LONG; return true;     /* int2[] int4[] int8[] oid[] */
  case 1021: case 1022: *k = ELEM_DOUBLE; return true;                         /* float4[] float8[] */
  case 1000: *k = ELEM_BOOL; return true;                                      /* bool[] */
  case 1009: case 1015: case 1014: case 1231: case 1182: case 1115: case 1183: /* text[] varchar[] bpchar[] numeric[] date[] timestamp[] time[] */
  case 2951: case 199: case 3807: case 1185: case 1003: case 1002:            /* uuid[] json[] jsonb[] timestamptz[] name[] char[] */
    *k = ELEM_STRING; return true;
  default: return false;
  }
}

static json_t *elem_value(elem_kind k, const char *text)
{
  switch (k) {
  case ELEM_LONG: return json_integer(strtoll(text, NULL, 10));
  case ELEM_DOUBLE: return json_real(strtod(text, NULL));
  case ELEM_BOOL: return json_boolean(text[0] == 't');
  default: return json_string(text);
  }
}

/* Parses one {...} level at *p; NULL when the text holds a NULL or is
 * malformed. field: Data API arrayValue shape, else plain JSON arrays. */
static json_t *parse_array(const char **p, elem_kind k, bool field)
{
  static const char *members[] = {"longValues", "doubleValues", "booleanValues", "stringValues"};
  const char *s = *p;
  if (*s != '{')
    return NULL;
  s++;
  json_t *items = json_array();
  bool nested = *s == '{';
  buf tok;
  buf_init(&tok, RDB_RESULT_MAX);
  while (*s != '}' && *s != '\0') {
    json_t *v;
    if (*s == '{') {
      v = parse_array(&s, k, field);
    } else {
      buf_reset(&tok);
      bool quoted = *s == '"';
      if (quoted) {
        s++;
        while (*s != '\0' && *s != '"') {
          if (*s == '\\' && s[1] != '\0')
            s++;
          buf_append(&tok, s, 1);
          s++;
        }
        if (*s == '"')
          s++;
      } else {
        while (*s != '\0' && *s != ',' && *s != '}') {
          buf_append(&tok, s, 1);
          s++;
        }
      }
      buf_append(&tok, "", 1);
      bool null = !quoted && strcmp(tok.data, "NULL") == 0;
      /* a Field's lists cannot hold null (SDKs fail to parse it): see above */
      v = null ? (field ? NULL : json_null()) : elem_value(k, tok.data);
    }
    if (v == NULL) {
      json_decref(items);
      buf_release(&tok);
      return NULL;
    }
    json_array_append_new(items, v);
    if (*s == ',')
      s++;
  }
  buf_release(&tok);
  if (*s != '}') {
    json_decref(items);
    return NULL;
  }
  *p = s + 1;
  if (!field)
    return items;
  return json_pack("{s:o}", nested ? "arrayValues" : members[k], items);
}

/* One value as a Field union (field true) or as a plain JSON value. */
static json_t *value_of(PGresult *res, int row, int col, bool field)
{
  if (PQgetisnull(res, row, col))
    return field ? json_pack("{s:b}", "isNull", 1) : json_null();
  const char *s = PQgetvalue(res, row, col);
  unsigned oid = PQftype(res, col);
  switch (oid) {
  case OID_BOOL: {
    json_t *b = json_boolean(s[0] == 't');
    return field ? json_pack("{s:o}", "booleanValue", b) : b;
  }
  case OID_INT2:
  case OID_INT4:
  case OID_INT8:
  case OID_OID: {
    json_t *l = json_integer(strtoll(s, NULL, 10));
    return field ? json_pack("{s:o}", "longValue", l) : l;
  }
  case OID_FLOAT4:
  case OID_FLOAT8: {
    json_t *d = json_real(strtod(s, NULL));
    return field ? json_pack("{s:o}", "doubleValue", d) : d;
  }
  case OID_BYTEA: {
    size_t len = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)s, &len);
    char *b64 = xmalloc(base64_encoded_len(len));
    base64_encode(raw, len, b64);
    PQfreemem(raw);
    json_t *v = json_string(b64);
    free(b64);
    return field ? json_pack("{s:o}", "blobValue", v) : v;
  }
  default: {
    elem_kind k;
    if (array_kind(oid, &k) && s[0] == '{') {
      const char *q = s;
      json_t *a = parse_array(&q, k, field);
      if (a != NULL && *q == '\0')
        return field ? json_pack("{s:o}", "arrayValue", a) : a;
      json_decref(a);
    }
    json_t *v = json_string(s);
    if (v == NULL) /* not UTF-8: the database's encoding is UTF8, so never */
      v = json_string("");
    return field ? json_pack("{s:o}", "stringValue", v) : v;
  }
  }
}

static json_t *metadata(PGresult *res)
{
  json_t *cols = json_array();
  for (int i = 0; i < PQnfields(res); i++) {
    int jdbc;
    unsigned oid = PQftype(res, i);
    const char *tn = type_name(oid, &jdbc);
    int mod = PQfmod(res, i);
    json_array_append_new(
        cols, json_pack("{s:s, s:s, s:s, s:i, s:i, s:b, s:i, s:i, s:b, s:b, s:b, s:s, "
                        "s:s, s:i}",
                        "name", PQfname(res, i), "label", PQfname(res, i), "typeName", tn,
                        "type", jdbc, "nullable", 2, "isSigned",
                        oid == OID_INT2 || oid == OID_INT4 || oid == OID_INT8 ||
                            oid == OID_FLOAT4 || oid == OID_FLOAT8 || oid == OID_NUMERIC,
                        "precision", mod > 4 && oid == OID_NUMERIC ? ((mod - 4) >> 16) : 0,
                        "scale", mod > 4 && oid == OID_NUMERIC ? ((mod - 4) & 0xffff) : 0,
                        "isAutoIncrement", 0, "isCaseSensitive", oid == OID_TEXT ||
                                                                     oid == OID_VARCHAR,
                        "isCurrency", 0, "schemaName", "", "tableName",
                        "", "arrayBaseColumnType", 0));
  }
  return cols;
}

static int pg_error(PGresult *res, PGconn *pg, err *e)
{
  const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *pos = res != NULL ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
  if (msg == NULL) {
    err_set(e, ERR_INVALID, "%s", PQerrorMessage(pg));
  } else if (pos != NULL) {
    err_set(e, ERR_INVALID, "ERROR: %s\n  Position: %s; SQLState: %s", msg, pos,
            state != NULL ? state : "");
  } else {
    err_set(e, ERR_INVALID, "ERROR: %s; SQLState: %s", msg, state != NULL ? state : "");
  }
  return ERR_INVALID;
}

/* Reads the answer of the statements sent on pg, row by row (single-row
 * mode), into one result: the last statement's, as PQexec would give.
 * Rows past RDB_RESULT_MAX bytes (as answer() counts them) are never kept:
 * the statement is cancelled and the answer is the size error, so a query
 * of a billion rows costs the server 1 MB, not the rows. */
static int collect(PGconn *pg, PGresult **res, err *e)
{
  PQsetSingleRowMode(pg);
  PGresult *acc = NULL;    /* the rows of the statement being read */
  PGresult *last = NULL;   /* the last finished statement's result */
  PGresult *failed = NULL; /* the first error */
  size_t bytes = 0;
  bool over = false, oom = false;
  PGresult *x;
  while ((x = PQgetResult(pg)) != NULL) {
    ExecStatusType st = PQresultStatus(x);
    if (st == PGRES_SINGLE_TUPLE) {
      int cols = PQnfields(x);
      size_t size = 0;
      for (int j = 0; j < cols; j++)
        size += (size_t)PQgetlength(x, 0, j) + 24;
      if (!over && !oom && bytes + size > RDB_RESULT_MAX) {
        over = true;
        PGcancel *cancel = PQgetCancel(pg);
        char ebuf[256];
        if (cancel != NULL)
          PQcancel(cancel, ebuf, sizeof ebuf);
        PQfreeCancel(cancel);
      }
      if (!over && !oom) {
        if (acc == NULL)
          acc = PQcopyResult(x, PG_COPYRES_ATTRS);
        int row = acc != NULL ? PQntuples(acc) : 0;
        for (int j = 0; j < cols && acc != NULL && !oom; j++)
          oom = !PQsetvalue(acc, row, j, PQgetisnull(x, 0, j) ? NULL : PQgetvalue(x, 0, j),
                            PQgetisnull(x, 0, j) ? -1 : PQgetlength(x, 0, j));
        oom = oom || acc == NULL;
        bytes += size;
      }
      PQclear(x);
      continue;
    }
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY) {
      PQclear(last);
      if (st == PGRES_TUPLES_OK && acc != NULL) {
        last = acc;  /* the rows, with the statement's columns */
        PQclear(x);
      } else {
        PQclear(acc);
        last = x;
      }
      acc = NULL;
      bytes = 0;
      continue;
    }
    if (failed == NULL)
      failed = x;
    else
      PQclear(x);
  }
  PQclear(acc);
  int rc = 0;
  if (over || oom)
    rc = err_set(e, ERR_INVALID, "Database returned more than the allowed response size limit");
  else if (failed != NULL)
    rc = pg_error(failed, pg, e);
  PQclear(failed);
  if (rc != 0) {
    PQclear(last);
    return rc;
  }
  *res = last;
  return 0;
}

/* Runs sql with params on pg; *res is the last result (the caller clears). */
static int run(PGconn *pg, const char *sql, json_t *params, PGresult **res, err *e)
{
  *res = NULL;
  if (sql == NULL || sql[0] == '\0')
    return err_set(e, ERR_INVALID, "sql is required");
  if (strlen(sql) > RDB_SQL_MAX)
    return err_set(e, ERR_INVALID, "sql is longer than %u bytes", RDB_SQL_MAX);
  json_t *names = json_array();
  char *text = rewrite(sql, names);
  int rc = 0;
  PGresult *r = NULL;
  if (json_array_size(names) > PARAMS_MAX) {
    free(text);
    json_decref(names);
    return err_set(e, ERR_INVALID, "too many parameters (at most %d)", PARAMS_MAX);
  }
  int sent;
  if (json_array_size(names) == 0 && json_array_size(params) == 0) {
    sent = PQsendQuery(pg, text);
  } else {
    bound bd;
    rc = bind(names, params, &bd, e);
    sent = rc == 0 ? PQsendQueryParams(pg, text, (int)bd.n, bd.types,
                                       (const char *const *)bd.values, NULL, NULL, 0)
                   : 0;
    bound_release(&bd);
  }
  free(text);
  json_decref(names);
  if (rc != 0)
    return rc;
  if (!sent) {
    r = PQmakeEmptyPGresult(pg, PGRES_FATAL_ERROR);
    rc = pg_error(r, pg, e);
    PQclear(r);
    return rc;
  }
  return collect(pg, res, e);
}

/* The ExecuteStatement answer for res. */
static int answer(PGresult *res, bool meta, bool as_json, json_t **out, err *e)
{
  json_t *o = json_object();
  size_t size = 0;
  int rows = PQntuples(res);
  int cols = PQnfields(res);
  ExecStatusType rst = PQresultStatus(res);
  if (rst == PGRES_TUPLES_OK || rst == PGRES_SINGLE_TUPLE) { /* rows (collect()) */
    json_t *records = json_array();
    for (int i = 0; i < rows; i++) {
      json_t *rec = as_json ? json_object() : json_array();
      for (int j = 0; j < cols; j++) {
        json_t *v = value_of(res, i, j, !as_json);
        size += (size_t)PQgetlength(res, i, j) + 24;
        if (as_json)
          json_object_set_new(rec, PQfname(res, j), v);
        else
          json_array_append_new(rec, v);
      }
      json_array_append_new(records, rec);
      if (size > RDB_RESULT_MAX)
        break;
    }
    if (size > RDB_RESULT_MAX) {
      json_decref(records);
      json_decref(o);
      return err_set(e, ERR_INVALID, "Database returned more than the allowed response size "
                     "limit");
    }
    if (as_json) {
      char *text = json_dumps(records, JSON_COMPACT);
      json_object_set_new(o, "formattedRecords", json_string(text));
      free(text);
      json_decref(records);
    } else {
      json_object_set_new(o, "records", records);
    }
    if (meta)
      json_object_set_new(o, "columnMetadata", metadata(res));
    json_object_set_new(o, "numberOfRecordsUpdated", json_integer(0));
  } else {
    const char *n = PQcmdTuples(res);
    json_object_set_new(o, "numberOfRecordsUpdated", json_integer(n[0] ? atoll(n) : 0));
    json_object_set_new(o, "generatedFields", json_array());
  }
  if (json_dumpb(o, NULL, 0, JSON_COMPACT) > RDB_RESULT_MAX) {
    json_decref(o);
    return err_set(e, ERR_INVALID, "Database returned more than the allowed response size "
                   "limit");
  }
  *out = o;
  return 0;
}

/* ---- transactions ---- */

/* The transaction id names, marked busy; NULL with e set. */
static rdb_tx *tx_take(rdb *r, const char *id, rdb_cluster *c, err *e)
{
  rdb_tx *found = NULL;
  pthread_mutex_lock(&r->tx_mu);
  for (int i = 0; i < RDB_TX_MAX; i++)
    if (r->txs[i].id[0] != '\0' && strcmp(r->txs[i].id, id) == 0)
      found = &r->txs[i];
  if (found != NULL && (found->busy || found->c != c)) {
    pthread_mutex_unlock(&r->tx_mu);
    err_set(e, ERR_INVALID, found->busy ? "Transaction %s is busy with another statement"
                                        : "Transaction %s belongs to another cluster", id);
    return NULL;
  }
  if (found != NULL)
    found->busy = true;
  pthread_mutex_unlock(&r->tx_mu);
  if (found == NULL)
    err_set(e, ERR_INVALID, "Transaction %s is not found", id);
  return found;
}

static void tx_release(rdb *r, rdb_tx *t)
{
  pthread_mutex_lock(&r->tx_mu);
  t->busy = false;
  t->last_used_ms = time_mono_ms();
  pthread_mutex_unlock(&r->tx_mu);
}

/* Ends t (rolled back unless it was committed): closes its connection. */
static void tx_free(rdb *r, rdb_tx *t, PGconn *pg, rdb_cluster *c)
{
  pthread_mutex_lock(&r->tx_mu);
  t->id[0] = '\0';
  t->busy = false;
  t->pg = NULL;
  t->c = NULL;
  pthread_mutex_unlock(&r->tx_mu);
  if (pg != NULL)
    PQfinish(pg);
  pthread_mutex_lock(&c->mu);
  c->ntx--;
  c->active--;
  c->last_used_ms = time_mono_ms();
  pthread_mutex_unlock(&c->mu);
}

void rdb_tx_expire(rdb *r, int64_t now)
{
  for (int i = 0; i < RDB_TX_MAX; i++) {
    pthread_mutex_lock(&r->tx_mu);
    rdb_tx *t = &r->txs[i];
    bool expired = t->id[0] != '\0' && !t->busy &&
                   (now - t->last_used_ms >= r->tx_idle_ms || now - t->begun_ms >= RDB_TX_LIFE_MS);
    PGconn *pg = t->pg;
    rdb_cluster *c = t->c;
    if (expired)
      t->busy = true;
    pthread_mutex_unlock(&r->tx_mu);
    if (expired)
      tx_free(r, t, pg, c); /* closing the connection rolls back */
  }
}

void rdb_tx_drop_cluster(rdb *r, rdb_cluster *c)
{
  for (int i = 0; i < RDB_TX_MAX; i++) {
    pthread_mutex_lock(&r->tx_mu);
    rdb_tx *t = &r->txs[i];
    bool mine = t->id[0] != '\0' && !t->busy && t->c == c;
    PGconn *pg = t->pg;
    if (mine)
      t->busy = true;
    pthread_mutex_unlock(&r->tx_mu);
    if (mine)
      tx_free(r, t, pg, c);
  }
}

int rdb_tx_begin(rdb *r, json_t *in, json_t **out, err *e)
{
  call k;
  int rc = resolve(r, in, &k, e);
  PGconn *pg = NULL;
  if (rc == 0)
    rc = rdb_conn_get(r, k.c, k.db, k.user, k.password, &pg, e);
  if (rc != 0) {
    json_decref(k.secret);
    return rc;
  }
  PGresult *res = PQexec(pg, "BEGIN");
  if (PQresultStatus(res) != PGRES_COMMAND_OK)
    rc = pg_error(res, pg, e);
  PQclear(res);
  rdb_tx *slot = NULL;
  if (rc == 0) {
    pthread_mutex_lock(&r->tx_mu);
    for (int i = 0; i < RDB_TX_MAX && slot == NULL; i++)
      if (r->txs[i].id[0] == '\0')
        slot = &r->txs[i];
    if (slot != NULL) {
      uint8_t raw[24];
      random_bytes(raw, sizeof raw);
      base64_encode(raw, sizeof raw, slot->id);
      slot->c = k.c;
      slot->pg = pg;
      slot->busy = false;
      slot->last_used_ms = time_mono_ms();
      slot->begun_ms = slot->last_used_ms;
    }
    pthread_mutex_unlock(&r->tx_mu);
    if (slot == NULL)
      rc = err_set(e, ERR_INVALID, "too many open transactions (at most %d)", RDB_TX_MAX);
  }
  if (rc != 0) {
    PQfinish(pg);
    rdb_conn_put(k.c, k.db, k.user, k.password, NULL);
  } else {
    pthread_mutex_lock(&k.c->mu);
    k.c->ntx++; /* stays "active" until the transaction ends: see tx_free */
    pthread_mutex_unlock(&k.c->mu);
    *out = json_pack("{s:s}", "transactionId", slot->id);
  }
  json_decref(k.secret);
  return rc;
}

int rdb_tx_end(rdb *r, json_t *in, bool commit, json_t **out, err *e)
{
  const char *arn = json_string_value(json_object_get(in, "resourceArn"));
  const char *id = json_string_value(json_object_get(in, "transactionId"));
  rdb_cluster *c = rdb_cluster_find(r, arn);
  if (c == NULL)
    return err_set(e, ERR_INVALID, "Database cluster %s not found", arn != NULL ? arn : "");
  if (id == NULL)
    return err_set(e, ERR_INVALID, "transactionId is required");
  rdb_tx *t = tx_take(r, id, c, e);
  if (t == NULL)
    return ERR_INVALID;
  PGresult *res = PQexec(t->pg, commit ? "COMMIT" : "ROLLBACK");
  int rc = 0;
  if (PQresultStatus(res) != PGRES_COMMAND_OK)
    rc = pg_error(res, t->pg, e);
  /* COMMIT of an aborted transaction answers ROLLBACK */
  else if (commit && strcmp(PQcmdStatus(res), "ROLLBACK") == 0)
    rc = err_set(e, ERR_INVALID, "Transaction %s was rolled back: a statement in it failed",
                 id);
  PQclear(res);
  tx_free(r, t, t->pg, c);
  if (rc == 0)
    *out = json_pack("{s:s}", "transactionStatus",
                     commit ? "Transaction Committed" : "Rollback Complete");
  return rc;
}

/* ---- ExecuteStatement, BatchExecuteStatement ---- */

int rdb_execute(rdb *r, json_t *in, json_t **out, err *e)
{
  *out = NULL;
  call k;
  int rc = resolve(r, in, &k, e);
  if (rc != 0)
    return rc;
  const char *sql = json_string_value(json_object_get(in, "sql"));
  json_t *params = json_object_get(in, "parameters");
  bool meta = json_is_true(json_object_get(in, "includeResultMetadata"));
  const char *fmt = json_string_value(json_object_get(in, "formatRecordsAs"));
  bool as_json = fmt != NULL && strcmp(fmt, "JSON") == 0;
  const char *txid = json_string_value(json_object_get(in, "transactionId"));
  PGresult *res = NULL;
  if (txid != NULL) {
    rdb_tx *t = tx_take(r, txid, k.c, e);
    if (t == NULL) {
      json_decref(k.secret);
      return ERR_INVALID;
    }
    rc = run(t->pg, sql, params, &res, e);
    tx_release(r, t);
  } else {
    PGconn *pg;
    rc = rdb_conn_get(r, k.c, k.db, k.user, k.password, &pg, e);
    if (rc == 0) {
      rc = run(pg, sql, params, &res, e);
      rdb_conn_put(k.c, k.db, k.user, k.password, pg);
    }
  }
  if (rc == 0)
    rc = answer(res, meta, as_json, out, e);
  PQclear(res);
  json_decref(k.secret);
  return rc;
}

int rdb_batch_execute(rdb *r, json_t *in, json_t **out, err *e)
{
  *out = NULL;
  call k;
  int rc = resolve(r, in, &k, e);
  if (rc != 0)
    return rc;
  const char *sql = json_string_value(json_object_get(in, "sql"));
  json_t *sets = json_object_get(in, "parameterSets");
  const char *txid = json_string_value(json_object_get(in, "transactionId"));
  if (json_array_size(sets) > PARAMS_MAX) {
    json_decref(k.secret);
    return err_set(e, ERR_INVALID, "too many parameter sets (at most %d)", PARAMS_MAX);
  }
  rdb_tx *t = NULL;
  PGconn *pg = NULL;
  if (txid != NULL) {
    t = tx_take(r, txid, k.c, e);
    rc = t == NULL ? ERR_INVALID : 0;
    if (t != NULL)
      pg = t->pg;
  } else {
    rc = rdb_conn_get(r, k.c, k.db, k.user, k.password, &pg, e);
    if (rc == 0) {
      PGresult *b = PQexec(pg, "BEGIN");
      if (PQresultStatus(b) != PGRES_COMMAND_OK)
        rc = pg_error(b, pg, e);
      PQclear(b);
    }
  }
  json_t *results = json_array();
  size_t nsets = json_array_size(sets) > 0 ? json_array_size(sets) : 1;
  for (size_t i = 0; rc == 0 && i < nsets; i++) {
    PGresult *res = NULL;
    rc = run(pg, sql, json_array_get(sets, i), &res, e);
    PQclear(res);
    if (rc == 0)
      json_array_append_new(results, json_pack("{s:[]}", "generatedFields"));
  }
  if (t != NULL) {
    tx_release(r, t);
  } else if (pg != NULL) {
    PGresult *end = PQexec(pg, rc == 0 ? "COMMIT" : "ROLLBACK");
    if (rc == 0 && PQresultStatus(end) != PGRES_COMMAND_OK)
      rc = pg_error(end, pg, e);
    PQclear(end);
    rdb_conn_put(k.c, k.db, k.user, k.password, pg);
  }
  if (rc == 0)
    *out = json_pack("{s:o}", "updateResults", results);
  else
    json_decref(results);
  json_decref(k.secret);
  return rc;
}
