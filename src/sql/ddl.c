/* sql/ddl.c -- the SQL engine over the table catalog (catalog/catalog.h):
 * Athena's DDL statements (parsed by parse_ddl.c) run against it, and the
 * catalog's tables as the binder's FROM items (sql__cat_table).
 *
 * Why apart: the rest of src/sql knows tables only as objects; this file
 * is the one that reads and writes catalog documents, and maps Hive's
 * types and SerDes to the engine's types and readers.
 *
 * Invariants:
 *   (1) A DDL statement is checked whole before anything is written (names
 *       exist or not, types known, partition specs complete); then it is one
 *       catalog call (one commit), except ALTER TABLE / MSCK with more
 *       partitions than one batch holds (one commit per batch).
 *   (2) Catalog errors (missing or existing database, table, partition)
 *       are statement errors (ERR_INVALID) at the name's line and column.
 *   (3) Documents read for a query live until the query ends (their
 *       strings are borrowed by the table definitions).
 *
 * Start reading at sql__ddl_exec() and sql__cat_table().
 */
#include "ddl.h"

#include "base/mem.h"
#include "catalog/catalog.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_QUERY_PARTITIONS 1000000 /* partitions one query may read from the catalog */
#define MAX_REPAIR_KEYS 1000000      /* objects MSCK REPAIR looks at */

/* ---- Hive types ---- */

int sql__hive_type(const char *h, stype *st, fmt_type *ft)
{
  char w[32];
  size_t n = 0;
  while (h[n] != 0 && (isalnum((unsigned char)h[n]) || h[n] == '_') && n + 1 < sizeof w) {
    w[n] = (char)tolower((unsigned char)h[n]);
    n++;
  }
  w[n] = 0;
  const char *rest = h + n;
  stype s = {SQL_VARCHAR, 0, 0};
  fmt_type f = FT_VARCHAR;
  if (!strcmp(w, "string") || !strcmp(w, "varchar") || !strcmp(w, "char") ||
      !strcmp(w, "binary")) {
    /* text as it is */
  } else if (!strcmp(w, "tinyint") || !strcmp(w, "smallint")) {
    s.t = SQL_SMALLINT, f = FT_BIGINT;
  } else if (!strcmp(w, "int") || !strcmp(w, "integer")) {
    s.t = SQL_INTEGER, f = FT_BIGINT;
  } else if (!strcmp(w, "bigint")) {
    s.t = SQL_BIGINT, f = FT_BIGINT;
  } else if (!strcmp(w, "double") || !strcmp(w, "float") || !strcmp(w, "real")) {
    s.t = SQL_DOUBLE, f = FT_DOUBLE;
  } else if (!strcmp(w, "boolean")) {
    s.t = SQL_BOOLEAN, f = FT_BOOLEAN;
  } else if (!strcmp(w, "date")) {
    s.t = SQL_DATE, f = FT_DATE;
  } else if (!strcmp(w, "timestamp")) {
    s.t = SQL_TIMESTAMP, f = FT_TIMESTAMP;
  } else if (!strcmp(w, "decimal") || !strcmp(w, "numeric")) {
    int p = 10, sc = 0;
    if (*rest == '(') {
      char *end;
      p = (int)strtol(rest + 1, &end, 10);
      sc = 0;
      if (*end == ',')
        sc = (int)strtol(end + 1, &end, 10);
      if (*end != ')' || p < 1 || p > 38 || sc < 0 || sc > p)
        return -1;
      rest = end + 1;
    }
    /* the engine's DECIMAL holds 18 digits; wider ones stay exact text */
    if (p <= 18)
      s = (stype){SQL_DECIMAL, p, sc};
  } else if (!strcmp(w, "array") || !strcmp(w, "map") || !strcmp(w, "struct") ||
             !strcmp(w, "uniontype")) {
    if (*rest != '<')
      return -1;
    *st = s; /* as JSON text */
    *ft = f;
    return 0;
  } else {
    return -1;
  }
  if ((s.t == SQL_VARCHAR && (!strcmp(w, "varchar") || !strcmp(w, "char"))) && *rest == '(') {
    char *end;
    long len = strtol(rest + 1, &end, 10);
    if (*end != ')' || len < 1)
      return -1;
    rest = end + 1;
  }
  if (*rest != 0)
    return -1;
  *st = s;
  *ft = f;
  return 0;
}

const char *sql__hive_type_of(arena *a, stype t)
{
  switch (t.t) {
  case SQL_BOOLEAN: return "boolean";
  case SQL_SMALLINT: return "smallint";
  case SQL_INTEGER: return "int";
  case SQL_BIGINT: return "bigint";
  case SQL_DOUBLE: return "double";
  case SQL_DECIMAL: return arena_sprintf(a, "decimal(%d,%d)", t.prec, t.scale);
  case SQL_DATE: return "date";
  case SQL_TIMESTAMP: return "timestamp";
  default: return "string";
  }
}

/* ---- documents ---- */

static void doc_free(void *p)
{
  json_decref((json_t *)p);
}

/* keeps doc until the query ends (invariant (3)) */
static json_t *doc_keep(qctx *q, json_t *doc)
{
  if (doc != NULL)
    sql__exec_defer(q, doc_free, doc);
  return doc;
}

/* "db.t" or "t" */
void sql__cat_split(qctx *q, const char *qual, const char **db, const char **name)
{
  const char *dot = strchr(qual, '.');
  if (dot != NULL) {
    *db = arena_strndup(q->a, qual, (size_t)(dot - qual));
    *name = dot + 1;
  } else {
    *db = q->database != NULL && q->database[0] ? q->database : CATALOG_DEFAULT_DATABASE;
    *name = qual;
  }
}

/* a catalog failure as a statement error at line:col (invariant (2)) */
static int cat_err(err *e, sql_pos *pos, int rc, int line, int col)
{
  if (pos->line != 0)
    return rc; /* already a statement error with its place */
  if (rc == ERR_ENTITY_NOT_FOUND || rc == ERR_ALREADY_EXISTS || rc == ERR_INVALID_INPUT ||
      rc == ERR_RESOURCE_LIMIT || rc == ERR_INVALID) {
    char msg[sizeof e->msg];
    snprintf(msg, sizeof msg, "%s", e->msg);
    return sql__error_at(e, pos, line, col, "%s", msg);
  }
  return rc;
}

static int need_catalog(qctx *q, err *e, sql_pos *pos, int line, int col)
{
  if (q->cat != NULL)
    return 0;
  return sql__error_at(e, pos, line, col,
                       "this statement needs the table catalog, which this engine was started "
                       "without");
}

int sql__cat_table_doc(qctx *q, const char *db, const char *name, json_t **doc, err *e)
{
  json_t *d = NULL;
  int rc = catalog_table_get(q->cat, db, name, &d, e);
  if (rc < 0)
    return rc;
  *doc = doc_keep(q, d);
  return 0;
}

/* every partition of a table (pages of the catalog's list) */
static int all_partitions(qctx *q, const char *db, const char *name, json_t **out, err *e)
{
  json_t *all = json_array();
  char *ptok = NULL;
  int rc = 0;
  do {
    json_t *page = NULL;
    char *next = NULL;
    rc = catalog_partition_list(q->cat, db, name, NULL, ptok, 0, &page, &next, e);
    free(ptok);
    ptok = next;
    if (rc < 0)
      break;
    json_array_extend(all, page);
    json_decref(page);
    if (json_array_size(all) > MAX_QUERY_PARTITIONS) {
      rc = err_set(e, ERR_INVALID, "table %s.%s has more than %d partitions", db, name,
                   MAX_QUERY_PARTITIONS);
      break;
    }
  } while (ptok != NULL);
  free(ptok);
  if (rc < 0) {
    json_decref(all);
    return rc;
  }
  *out = doc_keep(q, all);
  return 0;
}

static int format_of_storage(const catalog_storage *s)
{
  switch (s->format) {
  case CATALOG_FORMAT_CSV: return FMT_CSV;
  case CATALOG_FORMAT_JSON: return FMT_JSONL;
  case CATALOG_FORMAT_PARQUET: return FMT_PARQUET;
  default: return -1;
  }
}

static char one_char(const char *s, char dflt)
{
  if (s == NULL || s[0] == 0)
    return dflt;
  if (s[0] == '\\' && s[1] == 't' && s[2] == 0)
    return '\t';
  if (s[0] == '\\' && s[1] == 'u' && strlen(s) == 6)
    return (char)strtol(s + 2, NULL, 16);
  if (s[0] == '\\' && isdigit((unsigned char)s[1]))
    return (char)strtol(s + 1, NULL, 8);
  if (isdigit((unsigned char)s[0]) && s[1] != 0) /* Hive also takes a byte's number: '1' is ^A */
    return (char)atoi(s);
  return s[0];
}

static const char *hive_default_null(const char *v)
{
  return v != NULL && strcmp(v, "__HIVE_DEFAULT_PARTITION__") == 0 ? NULL : v;
}

int sql__cat_table(qctx *q, const char *qual, cat_tdef *out, err *e)
{
  memset(out, 0, sizeof *out);
  sql__cat_split(q, qual, &out->db, &out->name);
  json_t *doc;
  int rc = sql__cat_table_doc(q, out->db, out->name, &doc, e);
  if (rc < 0)
    return rc;
  out->doc = doc;
  out->display = arena_sprintf(q->a, "%s.%s", out->db, out->name);
  catalog_storage st;
  memset(&st, 0, sizeof st);
  catalog_storage_of(doc, &st);
  if (st.location == NULL || st.location[0] == 0)
    return err_set(e, ERR_INVALID, "table %s has no location", out->display);
  int fmt = format_of_storage(&st);
  if (fmt < 0)
    return err_set(e, ERR_NOT_IMPLEMENTED,
                   "table %s: its format (SerDe '%s', InputFormat '%s') cannot be read; tarn "
                   "reads CSV, JSON and Parquet tables",
                   out->display, st.serde != NULL ? st.serde : "",
                   st.input_format != NULL ? st.input_format : "");
  table_opts *o = &out->opts;
  o->format = fmt;
  o->csv.header = st.skip_header_lines > 0 ? 1 : 0;
  if (st.skip_header_lines > 1)
    return err_set(e, ERR_NOT_IMPLEMENTED,
                   "table %s: skip.header.line.count above 1 is not supported", out->display);
  bool open_csv = st.serde != NULL && strstr(st.serde, "OpenCSVSerde") != NULL;
  if (fmt == FMT_CSV) {
    /* LazySimpleSerDe's default delimiter is ^A; OpenCSVSerde's ',' */
    char dflt = st.serde != NULL && strstr(st.serde, "LazySimpleSerDe") != NULL ? '\001' : ',';
    const char *cls = catalog_param(doc, "classification");
    if (cls != NULL && strcasecmp(cls, "csv") == 0 && st.field_delim == NULL)
      dflt = ',';
    o->csv.delim = one_char(st.field_delim, dflt);
    o->csv.quote = one_char(st.quote_char, '"');
    if (st.escape_char != NULL)
      o->csv.escape = one_char(st.escape_char, 0);
    if (st.null_format != NULL)
      o->csv.nullstr = st.null_format;
    else if (!open_csv)
      o->csv.nullstr = "\\N"; /* Hive's NULL in text */
  }
  /* columns */
  size_t nc = catalog_columns(doc, NULL, 0);
  size_t np = catalog_partition_keys(doc, NULL, 0);
  if (nc == 0)
    return err_set(e, ERR_INVALID, "table %s has no columns", out->display);
  catalog_column *cols = arena_alloc(q->a, sizeof(catalog_column) * nc);
  catalog_column *pks = arena_alloc(q->a, sizeof(catalog_column) * (np > 0 ? np : 1));
  catalog_columns(doc, cols, nc);
  catalog_partition_keys(doc, pks, np);
  table_cat *cat = &out->cat;
  cat->location = st.location;
  cat->ncols = (int)nc;
  const char **names = arena_alloc(q->a, sizeof(char *) * nc);
  fmt_type *fts = arena_alloc(q->a, sizeof(fmt_type) * nc);
  out->stypes = arena_alloc(q->a, sizeof(stype) * (nc + np));
  out->names = arena_alloc(q->a, sizeof(char *) * (nc + np));
  for (size_t i = 0; i < nc; i++) {
    if (cols[i].name == NULL ||
        sql__hive_type(cols[i].type != NULL ? cols[i].type : "", &out->stypes[i], &fts[i]) < 0)
      return err_set(e, ERR_NOT_IMPLEMENTED, "table %s: column '%s' has a type tarn cannot read ('%s')",
                     out->display, cols[i].name != NULL ? cols[i].name : "",
                     cols[i].type != NULL ? cols[i].type : "");
    /* OpenCSVSerde reads every column as text (Athena: declare them string) */
    names[i] = cols[i].name;
    out->names[i] = cols[i].name;
  }
  cat->names = names;
  cat->types = fts;
  cat->npkeys = (int)np;
  cat->pkey_names = arena_alloc(q->a, sizeof(char *) * (np > 0 ? np : 1));
  cat->pkey_types = arena_alloc(q->a, sizeof(fmt_type) * (np > 0 ? np : 1));
  for (size_t i = 0; i < np; i++) {
    if (pks[i].name == NULL ||
        sql__hive_type(pks[i].type != NULL ? pks[i].type : "", &out->stypes[nc + i],
                       &cat->pkey_types[i]) < 0)
      return err_set(e, ERR_NOT_IMPLEMENTED,
                     "table %s: partition key '%s' has a type tarn cannot read ('%s')",
                     out->display, pks[i].name != NULL ? pks[i].name : "",
                     pks[i].type != NULL ? pks[i].type : "");
    cat->pkey_names[i] = arena_strdup(q->a, pks[i].name);
    out->names[nc + i] = pks[i].name;
  }
  out->ncols = (int)nc;
  out->npkeys = (int)np;
  if (np > 0) {
    json_t *parts;
    if ((rc = all_partitions(q, out->db, out->name, &parts, e)) < 0)
      return rc;
    size_t n = json_array_size(parts);
    table_cat_part *cp = arena_alloc(q->a, sizeof(table_cat_part) * (n > 0 ? n : 1));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      json_t *pd = json_array_get(parts, i);
      const char **vals = arena_alloc(q->a, sizeof(char *) * np);
      if (catalog_partition_values(pd, vals, np) != np)
        continue;
      for (size_t j = 0; j < np; j++)
        vals[j] = hive_default_null(vals[j]);
      /* only the location is read (the format is the table's) */
      const char *ploc =
          json_string_value(json_object_get(json_object_get(pd, "StorageDescriptor"), "Location"));
      if (ploc == NULL || ploc[0] == 0)
        continue;
      cp[k].location = ploc;
      cp[k].values = vals;
      k++;
    }
    cat->parts = cp;
    cat->nparts = k;
  }
  o->cat = cat;
  return 0;
}

/* ---- results ---- */

typedef struct rows {
  qctx *q;
  plan *p;
  int cap;
} rows;

static void rows_init(rows *r, qctx *q, int ncols, const char *const *names)
{
  r->q = q;
  r->cap = 0;
  plan *p = arena_alloc(q->a, sizeof *p);
  p->kind = P_VALUES;
  p->ncols = ncols;
  p->cols = arena_alloc(q->a, sizeof(pcol) * (size_t)(ncols > 0 ? ncols : 1));
  for (int i = 0; i < ncols; i++) {
    p->cols[i].name = names[i];
    p->cols[i].type.t = SQL_VARCHAR;
  }
  r->p = p;
}

static void rows_add(rows *r, const char *const *cells)
{
  plan *p = r->p;
  if (p->nrows == r->cap) {
    int nc = r->cap ? r->cap * 2 : 16;
    value **nr = arena_alloc(r->q->a, sizeof(value *) * (size_t)nc);
    if (p->nrows > 0)
      memcpy(nr, p->rows, sizeof(value *) * (size_t)p->nrows);
    p->rows = nr;
    r->cap = nc;
  }
  value *row = arena_alloc(r->q->a, sizeof(value) * (size_t)(p->ncols > 0 ? p->ncols : 1));
  for (int i = 0; i < p->ncols; i++) {
    if (cells[i] == NULL) {
      row[i].null = true;
      continue;
    }
    row[i].s.ptr = arena_strdup(r->q->a, cells[i]);
    row[i].s.len = strlen(cells[i]);
  }
  p->rows[p->nrows++] = row;
}

static void rows_add1(rows *r, const char *cell)
{
  rows_add(r, &cell);
}

/* a statement that returns nothing (Athena: no rows, no columns) */
static plan *no_rows(qctx *q)
{
  rows r;
  rows_init(&r, q, 0, NULL);
  return r.p;
}

/* ---- patterns of SHOW DATABASES: '*' any run, '|' alternatives ---- */

static bool star_match(const char *p, const char *pe, const char *s)
{
  while (p < pe) {
    if (*p == '*') {
      for (const char *t = s;; t++) {
        if (star_match(p + 1, pe, t))
          return true;
        if (*t == 0)
          return false;
      }
    }
    if (*s == 0 || tolower((unsigned char)*p) != tolower((unsigned char)*s))
      return false;
    p++;
    s++;
  }
  return *s == 0;
}

static bool hive_like(const char *pat, const char *s)
{
  if (pat == NULL)
    return true;
  for (;;) {
    const char *bar = strchr(pat, '|');
    const char *end = bar != NULL ? bar : pat + strlen(pat);
    const char *a = pat;
    while (a < end && *a == ' ')
      a++;
    const char *b = end;
    while (b > a && b[-1] == ' ')
      b--;
    if (star_match(a, b, s))
      return true;
    if (bar == NULL)
      return false;
    pat = bar + 1;
  }
}

/* ---- statements ---- */

static const char *dbname(qctx *q, const ast_ddl *d)
{
  if (d->db != NULL)
    return d->db;
  return q->database != NULL && q->database[0] ? q->database : CATALOG_DEFAULT_DATABASE;
}

static bool s3_path(const char *s)
{
  return s != NULL && (strncmp(s, "s3://", 5) == 0 || strncmp(s, "s3a://", 6) == 0) &&
         s[strncmp(s, "s3://", 5) == 0 ? 5 : 6] != 0 && s[strncmp(s, "s3://", 5) == 0 ? 5 : 6] != '/';
}

static json_t *params_of(const ast_kv *kv, int n)
{
  json_t *o = json_object();
  for (int i = 0; i < n; i++)
    json_object_set_new(o, kv[i].key, json_string(kv[i].value));
  return o;
}

static int create_db(qctx *q, ast_ddl *d, err *e, sql_pos *pos)
{
  if (d->location != NULL && !s3_path(d->location))
    return sql__error_at(e, pos, d->location_line, d->location_col,
                         "LOCATION must be 's3://bucket/prefix/'");
  json_t *in = json_object();
  json_object_set_new(in, "Name", json_string(d->name));
  if (d->comment != NULL)
    json_object_set_new(in, "Description", json_string(d->comment));
  if (d->location != NULL)
    json_object_set_new(in, "LocationUri", json_string(d->location));
  if (d->nprops > 0)
    json_object_set_new(in, "Parameters", params_of(d->props, d->nprops));
  int rc = catalog_database_create(q->cat, in, NULL, e);
  json_decref(in);
  if (rc == ERR_ALREADY_EXISTS && d->if_not_exists) {
    err_clear(e);
    rc = 0;
  }
  return rc < 0 ? cat_err(e, pos, rc, d->name_line, d->name_col) : 0;
}

static int drop_db(qctx *q, ast_ddl *d, err *e, sql_pos *pos)
{
  json_t *doc = NULL;
  int rc = catalog_database_get(q->cat, d->name, &doc, e);
  json_decref(doc);
  if (rc == ERR_ENTITY_NOT_FOUND && d->if_exists) {
    err_clear(e);
    return 0;
  }
  if (rc < 0)
    return cat_err(e, pos, rc, d->name_line, d->name_col);
  if (!d->cascade) {
    json_t *tabs = NULL;
    char *next = NULL;
    rc = catalog_table_list(q->cat, d->name, NULL, NULL, 1, &tabs, &next, e);
    size_t n = json_array_size(tabs);
    json_decref(tabs);
    free(next);
    if (rc < 0)
      return cat_err(e, pos, rc, d->name_line, d->name_col);
    if (n > 0)
      return sql__error_at(e, pos, d->name_line, d->name_col,
                           "database %s is not empty: drop its tables first, or DROP DATABASE "
                           "%s CASCADE",
                           d->name, d->name);
  }
  rc = catalog_database_delete(q->cat, d->name, e);
  return rc < 0 ? cat_err(e, pos, rc, d->name_line, d->name_col) : 0;
}

static json_t *columns_json(const ast_coldef *c, int n)
{
  json_t *a = json_array();
  for (int i = 0; i < n; i++) {
    json_t *o = json_object();
    json_object_set_new(o, "Name", json_string(c[i].name));
    json_object_set_new(o, "Type", json_string(c[i].type));
    if (c[i].comment != NULL)
      json_object_set_new(o, "Comment", json_string(c[i].comment));
    json_array_append_new(a, o);
  }
  return a;
}

static int check_coldefs(ast_coldef *c, int n, const ast_coldef *other, int nother, err *e,
                         sql_pos *pos)
{
  for (int i = 0; i < n; i++) {
    stype st;
    fmt_type ft;
    if (sql__hive_type(c[i].type, &st, &ft) < 0)
      return sql__error_at(e, pos, c[i].line, c[i].col,
                           "unknown type '%s' of column '%s' (string, varchar(n), char(n), "
                           "tinyint, smallint, int, bigint, float, double, decimal(p,s), "
                           "boolean, date, timestamp, binary, array<..>, map<..>, struct<..>)",
                           c[i].type, c[i].name);
    for (int j = 0; j < i; j++)
      if (strcmp(c[j].name, c[i].name) == 0)
        return sql__error_at(e, pos, c[i].line, c[i].col, "column '%s' is declared twice",
                             c[i].name);
    for (int j = 0; j < nother; j++)
      if (strcmp(other[j].name, c[i].name) == 0)
        return sql__error_at(e, pos, c[i].line, c[i].col,
                             "partition column '%s' is also a data column", c[i].name);
  }
  return 0;
}

#define SERDE_LAZY "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
#define SERDE_PARQUET "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
#define SERDE_JSON "org.openx.data.jsonserde.JsonSerDe"
#define IF_TEXT "org.apache.hadoop.mapred.TextInputFormat"
#define OF_TEXT "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
#define IF_PARQUET "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
#define OF_PARQUET "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

/* a StorageDescriptor for the formats tarn writes */
static int create_table(qctx *q, ast_ddl *d, err *e, sql_pos *pos)
{
  int rc;
  if ((rc = check_coldefs(d->cols, d->ncols, d->pcols, d->npcols, e, pos)) < 0 ||
      (rc = check_coldefs(d->pcols, d->npcols, NULL, 0, e, pos)) < 0)
    return rc;
  if (d->location == NULL)
    return sql__error_at(e, pos, d->line, d->col,
                         "CREATE EXTERNAL TABLE needs LOCATION 's3://bucket/prefix/'");
  if (!s3_path(d->location))
    return sql__error_at(e, pos, d->location_line, d->location_col,
                         "LOCATION must be 's3://bucket/prefix/'");
  const char *serde = d->serde;
  const char *inf = d->input_format;
  const char *outf = d->output_format;
  const char *cls = NULL;
  if (d->stored_as != NULL) {
    const char *s = d->stored_as;
    if (!strcmp(s, "parquet")) {
      inf = IF_PARQUET, outf = OF_PARQUET, cls = "parquet";
      if (serde == NULL)
        serde = SERDE_PARQUET;
    } else if (!strcmp(s, "textfile")) {
      inf = IF_TEXT, outf = OF_TEXT;
      if (serde == NULL)
        serde = SERDE_LAZY;
    } else if (!strcmp(s, "jsonfile")) {
      inf = IF_TEXT, outf = OF_TEXT;
      if (serde == NULL)
        serde = "org.apache.hive.hcatalog.data.JsonSerDe";
    } else if (!strcmp(s, "orc")) {
      inf = "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat";
      outf = "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat";
      if (serde == NULL)
        serde = "org.apache.hadoop.hive.ql.io.orc.OrcSerde";
    } else if (!strcmp(s, "avro")) {
      inf = "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat";
      outf = "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat";
      if (serde == NULL)
        serde = "org.apache.hadoop.hive.serde2.avro.AvroSerDe";
    } else {
      return sql__error_at(e, pos, d->line, d->col,
                           "unknown STORED AS '%s' (PARQUET, TEXTFILE, JSONFILE, ORC, AVRO, or "
                           "INPUTFORMAT '...' OUTPUTFORMAT '...')",
                           s);
    }
  }
  if (inf == NULL)
    inf = IF_TEXT, outf = OF_TEXT;
  if (serde == NULL)
    serde = SERDE_LAZY;
  json_t *in = json_object();
  json_object_set_new(in, "Name", json_string(d->name));
  json_object_set_new(in, "TableType", json_string("EXTERNAL_TABLE"));
  if (d->comment != NULL)
    json_object_set_new(in, "Description", json_string(d->comment));
  json_t *params = params_of(d->props, d->nprops);
  json_object_set_new(params, "EXTERNAL", json_string("TRUE"));
  if (cls != NULL && json_object_get(params, "classification") == NULL)
    json_object_set_new(params, "classification", json_string(cls));
  json_object_set_new(in, "Parameters", params);
  json_object_set_new(in, "PartitionKeys", columns_json(d->pcols, d->npcols));
  json_t *sd = json_object();
  json_object_set_new(sd, "Columns", columns_json(d->cols, d->ncols));
  json_object_set_new(sd, "Location", json_string(d->location));
  json_object_set_new(sd, "InputFormat", json_string(inf));
  if (outf != NULL)
    json_object_set_new(sd, "OutputFormat", json_string(outf));
  json_t *si = json_object();
  json_object_set_new(si, "SerializationLibrary", json_string(serde));
  json_t *sp = params_of(d->serde_props, d->nserde_props);
  if (strcmp(serde, SERDE_LAZY) == 0 && json_object_get(sp, "serialization.format") == NULL)
    json_object_set_new(sp, "serialization.format", json_string("1"));
  json_object_set_new(si, "Parameters", sp);
  json_object_set_new(sd, "SerdeInfo", si);
  json_object_set_new(in, "StorageDescriptor", sd);
  rc = catalog_table_create(q->cat, dbname(q, d), in, NULL, e);
  json_decref(in);
  if (rc == ERR_ALREADY_EXISTS && d->if_not_exists) {
    err_clear(e);
    rc = 0;
  }
  return rc < 0 ? cat_err(e, pos, rc, d->name_line, d->name_col) : 0;
}

static int drop_table(qctx *q, ast_ddl *d, err *e, sql_pos *pos)
{
  int rc = catalog_table_delete(q->cat, dbname(q, d), d->name, e);
  if (rc == ERR_ENTITY_NOT_FOUND && d->if_exists) {
    err_clear(e);
    rc = 0;
  }
  return rc < 0 ? cat_err(e, pos, rc, d->name_line, d->name_col) : 0;
}

/* Adds the names of the databases (db NULL) or of db's tables that match
 * pattern to r, page by page. */
static int names_matching(qctx *q, const char *db, const char *pattern, rows *r, err *e)
{
  char *ptok = NULL;
  int rc = 0;
  do {
    json_t *page = NULL;
    char *next = NULL;
    rc = db == NULL ? catalog_database_list(q->cat, ptok, 0, &page, &next, e)
                    : catalog_table_list(q->cat, db, NULL, ptok, 0, &page, &next, e);
    free(ptok);
    ptok = next;
    if (rc < 0)
      break;
    size_t i;
    json_t *o;
    json_array_foreach(page, i, o)
    {
      const char *n = json_string_value(json_object_get(o, "Name"));
      if (n != NULL && hive_like(pattern, n))
        rows_add1(r, n);
    }
    json_decref(page);
  } while (ptok != NULL);
  free(ptok);
  return rc;
}

static int show_dbs(qctx *q, ast_ddl *d, plan **out, err *e)
{
  static const char *const names[] = {"database_name"};
  rows r;
  rows_init(&r, q, 1, names);
  int rc = names_matching(q, NULL, d->pattern, &r, e);
  *out = r.p;
  return rc;
}

static int show_tables(qctx *q, ast_ddl *d, plan **out, err *e, sql_pos *pos)
{
  static const char *const names[] = {"tab_name"};
  rows r;
  rows_init(&r, q, 1, names);
  int rc = names_matching(q, dbname(q, d), d->pattern, &r, e);
  *out = r.p;
  if (rc < 0)
    return cat_err(e, pos, rc, d->db != NULL ? d->name_line : d->line,
                   d->db != NULL ? d->name_col : d->col);
  return 0;
}

/* "k=v/k2=v2" of a partition, with Hive's escaping of the values */
static void part_name(buf *b, const catalog_column *keys, const char **vals, size_t n)
{
  static const char bad[] = "\"#%'*/:=?\\{}[]^";
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      buf_append(b, "/", 1);
    buf_puts(b, keys[i].name);
    buf_append(b, "=", 1);
    const char *v = vals[i] != NULL ? vals[i] : "__HIVE_DEFAULT_PARTITION__";
    for (const char *c = v; *c; c++) {
      unsigned char ch = (unsigned char)*c;
      if (ch < 0x20 || ch == 0x7f || strchr(bad, ch) != NULL)
        buf_printf(b, "%%%02X", ch);
      else
        buf_append(b, c, 1);
    }
  }
}

typedef struct tinfo {
  const char *db;
  json_t *doc;
  catalog_column *keys;
  size_t nkeys;
  catalog_storage st;
} tinfo;

static int table_info(qctx *q, ast_ddl *d, tinfo *ti, err *e, sql_pos *pos)
{
  memset(ti, 0, sizeof *ti);
  ti->db = dbname(q, d);
  int rc = sql__cat_table_doc(q, ti->db, d->name, &ti->doc, e);
  if (rc < 0)
    return cat_err(e, pos, rc, d->name_line, d->name_col);
  ti->nkeys = catalog_partition_keys(ti->doc, NULL, 0);
  ti->keys = arena_alloc(q->a, sizeof(catalog_column) * (ti->nkeys + 1));
  catalog_partition_keys(ti->doc, ti->keys, ti->nkeys);
  catalog_storage_of(ti->doc, &ti->st);
  return 0;
}

/* The table's columns (not its partition keys), in the query's arena. */
static catalog_column *table_columns(qctx *q, const tinfo *ti, size_t *n)
{
  *n = catalog_columns(ti->doc, NULL, 0);
  catalog_column *cols = arena_alloc(q->a, sizeof(catalog_column) * (*n + 1));
  catalog_columns(ti->doc, cols, *n);
  return cols;
}

static int show_partitions(qctx *q, ast_ddl *d, plan **out, err *e, sql_pos *pos)
{
  tinfo ti;
  int rc = table_info(q, d, &ti, e, pos);
  if (rc < 0)
    return rc;
  if (ti.nkeys == 0)
    return sql__error_at(e, pos, d->name_line, d->name_col, "table %s.%s is not partitioned",
                         ti.db, d->name);
  static const char *const names[] = {"partition"};
  rows r;
  rows_init(&r, q, 1, names);
  json_t *parts;
  if ((rc = all_partitions(q, ti.db, d->name, &parts, e)) < 0)
    return rc;
  buf b;
  buf_init(&b, 1 << 20);
  const char **vals = arena_alloc(q->a, sizeof(char *) * ti.nkeys);
  size_t i;
  json_t *pd;
  json_array_foreach(parts, i, pd)
  {
    if (catalog_partition_values(pd, vals, ti.nkeys) != ti.nkeys)
      continue;
    buf_reset(&b);
    part_name(&b, ti.keys, vals, ti.nkeys);
    buf_append(&b, "", 1);
    rows_add1(&r, b.data);
  }
  buf_release(&b);
  *out = r.p;
  return 0;
}

/* DESCRIBE's row of one column: name, type, comment. */
static void describe_row(rows *r, const catalog_column *c)
{
  const char *cells[3] = {c->name, c->type, c->comment != NULL ? c->comment : ""};
  rows_add(r, cells);
}

static int describe(qctx *q, ast_ddl *d, plan **out, err *e, sql_pos *pos)
{
  tinfo ti;
  int rc = table_info(q, d, &ti, e, pos);
  if (rc < 0)
    return rc;
  size_t nc;
  catalog_column *cols = table_columns(q, &ti, &nc);
  rows r;
  if (d->kind == DDL_SHOW_COLUMNS) {
    static const char *const names[] = {"field"};
    rows_init(&r, q, 1, names);
    for (size_t i = 0; i < nc; i++)
      rows_add1(&r, cols[i].name);
    for (size_t i = 0; i < ti.nkeys; i++)
      rows_add1(&r, ti.keys[i].name);
    *out = r.p;
    return 0;
  }
  static const char *const names[] = {"col_name", "data_type", "comment"};
  rows_init(&r, q, 3, names);
  for (size_t i = 0; i < nc; i++)
    describe_row(&r, &cols[i]);
  for (size_t i = 0; i < ti.nkeys; i++)
    describe_row(&r, &ti.keys[i]);
  if (ti.nkeys > 0) {
    static const char *const blank[3] = {"", "", ""};
    static const char *const head[3] = {"# Partition Information", "", ""};
    static const char *const head2[3] = {"# col_name", "data_type", "comment"};
    rows_add(&r, blank);
    rows_add(&r, head);
    rows_add(&r, head2);
    for (size_t i = 0; i < ti.nkeys; i++)
      describe_row(&r, &ti.keys[i]);
  }
  *out = r.p;
  return 0;
}

static void sql_string(buf *b, const char *s)
{
  buf_append(b, "'", 1);
  for (; s != NULL && *s; s++) {
    if (*s == '\'')
      buf_append(b, "'", 1);
    buf_append(b, s, 1);
  }
  buf_append(b, "'", 1);
}

static void kv_lines(buf *b, json_t *obj, const char *skip)
{
  const char *k;
  json_t *v;
  bool first = true;
  json_object_foreach(obj, k, v)
  {
    if (!json_is_string(v) || (skip != NULL && strcmp(k, skip) == 0))
      continue;
    buf_puts(b, first ? "\n  " : ",\n  ");
    sql_string(b, k);
    buf_puts(b, "=");
    sql_string(b, json_string_value(v));
    first = false;
  }
}

static int show_create(qctx *q, ast_ddl *d, plan **out, err *e, sql_pos *pos)
{
  tinfo ti;
  int rc = table_info(q, d, &ti, e, pos);
  if (rc < 0)
    return rc;
  size_t nc;
  catalog_column *cols = table_columns(q, &ti, &nc);
  buf b;
  buf_init(&b, 4u << 20);
  buf_printf(&b, "CREATE EXTERNAL TABLE `%s`.`%s`(", ti.db, d->name);
  for (size_t i = 0; i < nc; i++) {
    buf_printf(&b, "%s\n  `%s` %s", i > 0 ? "," : "", cols[i].name, cols[i].type);
    if (cols[i].comment != NULL) {
      buf_puts(&b, " COMMENT ");
      sql_string(&b, cols[i].comment);
    }
  }
  buf_puts(&b, ")");
  if (ti.nkeys > 0) {
    buf_puts(&b, "\nPARTITIONED BY (");
    for (size_t i = 0; i < ti.nkeys; i++)
      buf_printf(&b, "%s\n  `%s` %s", i > 0 ? "," : "", ti.keys[i].name, ti.keys[i].type);
    buf_puts(&b, ")");
  }
  json_t *sd = json_object_get(ti.doc, "StorageDescriptor");
  json_t *si = json_object_get(sd, "SerdeInfo");
  buf_puts(&b, "\nROW FORMAT SERDE\n  ");
  sql_string(&b, ti.st.serde);
  json_t *sp = json_object_get(si, "Parameters");
  if (json_object_size(sp) > 0) {
    buf_puts(&b, "\nWITH SERDEPROPERTIES (");
    kv_lines(&b, sp, NULL);
    buf_puts(&b, ")");
  }
  buf_puts(&b, "\nSTORED AS INPUTFORMAT\n  ");
  sql_string(&b, ti.st.input_format);
  buf_puts(&b, "\nOUTPUTFORMAT\n  ");
  sql_string(&b, ti.st.output_format);
  buf_puts(&b, "\nLOCATION\n  ");
  sql_string(&b, ti.st.location);
  json_t *tp = json_object_get(ti.doc, "Parameters");
  if (json_object_size(tp) > 0) {
    buf_puts(&b, "\nTBLPROPERTIES (");
    kv_lines(&b, tp, "EXTERNAL");
    buf_puts(&b, ")");
  }
  buf_append(&b, "", 1);
  static const char *const names[] = {"createtab_stmt"};
  rows r;
  rows_init(&r, q, 1, names);
  /* one row per line, as Athena returns it */
  char *s = b.data;
  for (;;) {
    char *nl = strchr(s, '\n');
    if (nl != NULL)
      *nl = 0;
    rows_add1(&r, s);
    if (nl == NULL)
      break;
    s = nl + 1;
  }
  buf_release(&b);
  *out = r.p;
  return 0;
}

/* the location of a new partition below the table's */
static const char *part_location(qctx *q, const tinfo *ti, const char **vals)
{
  buf b;
  buf_init(&b, 1 << 20);
  buf_puts(&b, ti->st.location);
  if (b.len > 0 && b.data[b.len - 1] != '/')
    buf_append(&b, "/", 1);
  part_name(&b, ti->keys, vals, ti->nkeys);
  buf_append(&b, "/", 1);
  const char *s = arena_strndup(q->a, b.data, b.len);
  buf_release(&b);
  return s;
}


/* a PARTITION (k='v', ...) spec as the table's values, in key order */
static int spec_values(qctx *q, const tinfo *ti, const ast_partspec *ps, const char ***out,
                       err *e, sql_pos *pos)
{
  if ((size_t)ps->nkv != ti->nkeys)
    return sql__error_at(e, pos, ps->line, ps->col,
                         "PARTITION names %d of the table's %zu partition keys: name all of them",
                         ps->nkv, ti->nkeys);
  const char **vals = arena_alloc(q->a, sizeof(char *) * (ti->nkeys + 1));
  for (size_t k = 0; k < ti->nkeys; k++) {
    vals[k] = NULL;
    for (int j = 0; j < ps->nkv; j++)
      if (strcasecmp(ps->kv[j].key, ti->keys[k].name) == 0)
        vals[k] = ps->kv[j].value;
    if (vals[k] == NULL)
      return sql__error_at(e, pos, ps->line, ps->col, "partition key '%s' is missing",
                           ti->keys[k].name);
  }
  for (int j = 0; j < ps->nkv; j++) {
    bool known = false;
    for (size_t k = 0; k < ti->nkeys; k++)
      known |= strcasecmp(ps->kv[j].key, ti->keys[k].name) == 0;
    if (!known)
      return sql__error_at(e, pos, ps->line, ps->col, "'%s' is not a partition key of the table",
                           ps->kv[j].key);
  }
  *out = vals;
  return 0;
}

static int add_parts(qctx *q, ast_ddl *d, err *e, sql_pos *pos)
{
  tinfo ti;
  int rc = table_info(q, d, &ti, e, pos);
  if (rc < 0)
    return rc;
  if (ti.nkeys == 0)
    return sql__error_at(e, pos, d->name_line, d->name_col, "table %s.%s is not partitioned",
                         ti.db, d->name);
  json_t *inputs = json_array();
  json_t *sd = json_object_get(ti.doc, "StorageDescriptor");
  for (int i = 0; i < d->nparts && rc == 0; i++) {
    const ast_partspec *ps = &d->parts[i];
    const char **vals;
    if ((rc = spec_values(q, &ti, ps, &vals, e, pos)) < 0)
      break;
    if (ps->location != NULL && !s3_path(ps->location)) {
      rc = sql__error_at(e, pos, ps->line, ps->col, "LOCATION must be 's3://bucket/prefix/'");
      break;
    }
    /* nothing changes on an error: look for existing ones first */
    json_t *vj = catalog_values_new(vals, ti.nkeys);
    json_t *got = NULL;
    int g = catalog_partition_get(q->cat, ti.db, d->name, vj, &got, e);
    json_decref(vj);
    json_decref(got);
    if (g == 0) {
      if (d->if_not_exists)
        continue;
      buf b;
      buf_init(&b, 1 << 16);
      part_name(&b, ti.keys, vals, ti.nkeys);
      buf_append(&b, "", 1);
      rc = sql__error_at(e, pos, ps->line, ps->col, "partition %s already exists", b.data);
      buf_release(&b);
      break;
    }
    err_clear(e);
    const char *loc = ps->location != NULL ? ps->location : part_location(q, &ti, vals);
    json_array_append_new(inputs, catalog_partition_input(vals, ti.nkeys, loc, sd));
  }
  size_t added = 0;
  if (rc == 0)
    rc = catalog_partitions_add(q->cat, ti.db, d->name, inputs, d->if_not_exists, &added, e);
  json_decref(inputs);
  return rc < 0 ? cat_err(e, pos, rc, d->line, d->col) : 0;
}

static int drop_parts(qctx *q, ast_ddl *d, err *e, sql_pos *pos)
{
  tinfo ti;
  int rc = table_info(q, d, &ti, e, pos);
  if (rc < 0)
    return rc;
  if (ti.nkeys == 0)
    return sql__error_at(e, pos, d->name_line, d->name_col, "table %s.%s is not partitioned",
                         ti.db, d->name);
  json_t *list = json_array();
  for (int i = 0; i < d->nparts && rc == 0; i++) {
    const char **vals;
    if ((rc = spec_values(q, &ti, &d->parts[i], &vals, e, pos)) < 0)
      break;
    json_t *vj = catalog_values_new(vals, ti.nkeys);
    json_t *got = NULL;
    int g = catalog_partition_get(q->cat, ti.db, d->name, vj, &got, e);
    json_decref(got);
    if (g < 0) {
      json_decref(vj);
      if (g == ERR_ENTITY_NOT_FOUND && d->if_exists) {
        err_clear(e);
        continue;
      }
      rc = cat_err(e, pos, g, d->parts[i].line, d->parts[i].col);
      break;
    }
    json_array_append_new(list, vj);
  }
  size_t n = json_array_size(list);
  for (size_t i = 0; i < n && rc == 0; i += CATALOG_MAX_BATCH_DELETE) {
    json_t *chunk = json_array();
    for (size_t k = i; k < n && k < i + CATALOG_MAX_BATCH_DELETE; k++)
      json_array_append(chunk, json_array_get(list, k));
    json_t *errors = NULL;
    rc = catalog_partition_batch_delete(q->cat, ti.db, d->name, chunk, &errors, e);
    json_decref(errors);
    json_decref(chunk);
  }
  json_decref(list);
  return rc < 0 ? cat_err(e, pos, rc, d->line, d->col) : 0;
}

/* ---- MSCK REPAIR TABLE: the Hive partitions below the location ---- */

typedef struct repair {
  qctx *q;
  const tinfo *ti;
  size_t prefix_len;        /* of the location's key prefix */
  json_t *seen;             /* "k=v/..." -> values array */
  size_t keys;
  err *e;
} repair;


static int repair_key(void *arg, const char *key, uint64_t size)
{
  (void)size;
  repair *r = arg;
  if (++r->keys > MAX_REPAIR_KEYS)
    return ERR_ENTITY_TOO_LARGE;
  const char *rel = key + r->prefix_len;
  const char *s = rel;
  json_t *vals = json_array();
  size_t k = 0;
  for (; k < r->ti->nkeys; k++) {
    const char *slash = strchr(s, '/');
    const char *eq = slash != NULL ? memchr(s, '=', (size_t)(slash - s)) : NULL;
    const char *kn = r->ti->keys[k].name;
    if (eq == NULL || (size_t)(eq - s) != strlen(kn) || strncasecmp(s, kn, strlen(kn)) != 0)
      break;
    char *v = catalog_hive_unescape(eq + 1, (size_t)(slash - eq - 1));
    json_array_append_new(vals, json_string(v));
    free(v);
    s = slash + 1;
  }
  if (k == r->ti->nkeys && *s != 0) {
    char *name = xstrndup(rel, (size_t)(s - rel - 1));
    if (json_object_get(r->seen, name) == NULL)
      json_object_set(r->seen, name, vals);
    free(name);
  }
  json_decref(vals);
  return 0;
}

static int msck(qctx *q, ast_ddl *d, plan **out, err *e, sql_pos *pos)
{
  tinfo ti;
  int rc = table_info(q, d, &ti, e, pos);
  if (rc < 0)
    return rc;
  static const char *const names[] = {"result"};
  rows r;
  rows_init(&r, q, 1, names);
  *out = r.p;
  if (ti.nkeys == 0)
    return 0;
  const char *loc = ti.st.location;
  if (!s3_path(loc))
    return sql__error_at(e, pos, d->name_line, d->name_col, "table %s.%s has no s3:// location",
                         ti.db, d->name);
  loc += strncmp(loc, "s3://", 5) == 0 ? 5 : 6;
  const char *slash = strchr(loc, '/');
  char *bucket = slash != NULL ? arena_strndup(q->a, loc, (size_t)(slash - loc))
                               : arena_strdup(q->a, loc);
  const char *kp = slash != NULL ? slash + 1 : "";
  size_t kl = strlen(kp);
  char *prefix = kl == 0 || kp[kl - 1] == '/' ? arena_strdup(q->a, kp)
                                               : arena_sprintf(q->a, "%s/", kp);
  repair rp = {.q = q, .ti = &ti, .prefix_len = strlen(prefix), .seen = json_object(), .e = e};
  rc = q->src->list(q->src->ctx, bucket, prefix, repair_key, &rp, e);
  if (rc == ERR_ENTITY_TOO_LARGE)
    rc = err_set(e, rc, "MSCK REPAIR TABLE looks at most %d objects", MAX_REPAIR_KEYS);
  json_t *inputs = json_array();
  json_t *sd = json_object_get(ti.doc, "StorageDescriptor");
  const char *base = ti.st.location;
  size_t bl = strlen(base);
  const char *pname;
  json_t *vals;
  const char **cv = arena_alloc(q->a, sizeof(char *) * (ti.nkeys + 1));
  json_object_foreach(rp.seen, pname, vals)
  {
    if (rc < 0)
      break;
    json_t *got = NULL;
    if (catalog_partition_get(q->cat, ti.db, d->name, vals, &got, e) == 0) {
      json_decref(got);
      continue;
    }
    err_clear(e);
    for (size_t k = 0; k < ti.nkeys; k++)
      cv[k] = hive_default_null(json_string_value(json_array_get(vals, k)));
    const char *ploc = arena_sprintf(q->a, "%s%s%s/", base, bl > 0 && base[bl - 1] == '/' ? "" : "/",
                                     pname);
    json_array_append_new(inputs, catalog_partition_input(cv, ti.nkeys, ploc, sd));
    rows_add1(&r, arena_sprintf(q->a, "Repair: Added partition to metastore %s.%s:%s", ti.db,
                                d->name, pname));
  }
  json_decref(rp.seen);
  size_t added = 0;
  if (rc == 0)
    rc = catalog_partitions_add(q->cat, ti.db, d->name, inputs, true, &added, e);
  json_decref(inputs);
  if (rc < 0)
    return cat_err(e, pos, rc, d->line, d->col);
  return 0;
}

int sql__ddl_exec(qctx *q, ast_ddl *d, plan **result, err *e, sql_pos *pos)
{
  int rc = need_catalog(q, e, pos, d->line, d->col);
  if (rc < 0)
    return rc;
  *result = NULL;
  switch (d->kind) {
  case DDL_CREATE_DB: rc = create_db(q, d, e, pos); break;
  case DDL_DROP_DB: rc = drop_db(q, d, e, pos); break;
  case DDL_CREATE_TABLE: rc = create_table(q, d, e, pos); break;
  case DDL_DROP_TABLE: rc = drop_table(q, d, e, pos); break;
  case DDL_SHOW_DBS: rc = show_dbs(q, d, result, e); break;
  case DDL_SHOW_TABLES: rc = show_tables(q, d, result, e, pos); break;
  case DDL_SHOW_PARTITIONS: rc = show_partitions(q, d, result, e, pos); break;
  case DDL_DESCRIBE:
  case DDL_SHOW_COLUMNS: rc = describe(q, d, result, e, pos); break;
  case DDL_SHOW_CREATE: rc = show_create(q, d, result, e, pos); break;
  case DDL_MSCK: rc = msck(q, d, result, e, pos); break;
  case DDL_ADD_PARTS: rc = add_parts(q, d, e, pos); break;
  case DDL_DROP_PARTS: rc = drop_parts(q, d, e, pos); break;
  default: rc = sql__error_at(e, pos, d->line, d->col, "unsupported statement");
  }
  if (rc == 0 && *result == NULL)
    *result = no_rows(q);
  return rc;
}
