/* sql/parse_ddl.c -- Athena's DDL statements (its Hive dialect) onto
 * ast_ddl; ddl.c runs them against the table catalog.
 *
 *   CREATE (DATABASE|SCHEMA) [IF NOT EXISTS] db [COMMENT 'c'] [LOCATION 's3://..']
 *     [WITH DBPROPERTIES ('k'='v', ...)]
 *   DROP (DATABASE|SCHEMA) [IF EXISTS] db [RESTRICT|CASCADE]
 *   CREATE EXTERNAL TABLE [IF NOT EXISTS] [db.]t (col type [COMMENT 'c'], ...)
 *     [COMMENT 'c'] [PARTITIONED BY (col type [COMMENT 'c'], ...)]
 *     [ROW FORMAT DELIMITED [FIELDS TERMINATED BY 'c' [ESCAPED BY 'c']]
 *        [COLLECTION ITEMS TERMINATED BY 'c'] [MAP KEYS TERMINATED BY 'c']
 *        [LINES TERMINATED BY 'c'] [NULL DEFINED AS 'c']
 *      | ROW FORMAT SERDE 'class' [WITH SERDEPROPERTIES ('k'='v', ...)]]
 *     [STORED AS (PARQUET|TEXTFILE|JSONFILE|ORC|AVRO|...)
 *      | STORED AS INPUTFORMAT 'class' OUTPUTFORMAT 'class']
 *     LOCATION 's3://..' [TBLPROPERTIES ('k'='v', ...)]
 *   DROP TABLE [IF EXISTS] [db.]t
 *   SHOW (DATABASES|SCHEMAS) [LIKE 'pattern']
 *   SHOW TABLES [IN db] ['pattern']
 *   SHOW PARTITIONS [db.]t
 *   SHOW COLUMNS (IN|FROM) [db.]t [(IN|FROM) db]
 *   SHOW CREATE TABLE [db.]t
 *   DESCRIBE [EXTENDED|FORMATTED] [db.]t
 *   MSCK REPAIR TABLE [db.]t
 *   ALTER TABLE [db.]t ADD [IF NOT EXISTS] PARTITION (k = 'v', ...) [LOCATION 's3://..'] ...
 *   ALTER TABLE [db.]t DROP [IF EXISTS] PARTITION (k = 'v', ...) [, PARTITION (...)] ...
 *
 * Invariants:
 *   (1) Names of databases, tables and columns are lower-cased (Hive and
 *       Glue keep them so); string values are kept as written.
 *   (2) Only syntax is checked here; whether names exist, and whether a
 *       type is known, is ddl.c's (with this node's positions).
 *
 * Start reading at sql__parse_ddl().
 */
#include "parse_internal.h"

#include <ctype.h>
#include <string.h>

#define peek sql__p_peek
#define peek2 sql__p_peek2
#define is_kw sql__p_is_kw
#define is_op sql__p_is_op
#define accept_kw sql__p_accept_kw
#define accept_op sql__p_accept_op
#define syntax sql__p_syntax
#define expect_kw sql__p_expect_kw
#define expect_op sql__p_expect_op

static char *lower(parser *p, const char *s)
{
  char *o = arena_strdup(p->a, s);
  for (char *c = o; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  return o;
}

static int name(parser *p, const char **out, int *line, int *col, const char *what)
{
  token *t = peek(p);
  if (line != NULL) {
    *line = t->line;
    *col = t->col;
  }
  if (t->kind != TK_IDENT && t->kind != TK_QIDENT)
    return syntax(p, what);
  *out = lower(p, t->text);
  p->i++;
  return 0;
}

/* [db.]name into d->db / d->name */
static int qualified(parser *p, ast_ddl *d, const char *what)
{
  int rc = name(p, &d->name, &d->name_line, &d->name_col, what);
  if (rc < 0)
    return rc;
  if (accept_op(p, ".")) {
    d->db = d->name;
    if ((rc = name(p, &d->name, NULL, NULL, what)) < 0)
      return rc;
  }
  return 0;
}

static int string(parser *p, const char **out, const char *what)
{
  token *t = peek(p);
  if (t->kind != TK_STRING)
    return syntax(p, what);
  *out = t->text;
  p->i++;
  return 0;
}

static bool if_not_exists(parser *p, int *rc)
{
  *rc = 0;
  if (!accept_kw(p, "if"))
    return false;
  if ((*rc = expect_kw(p, "not")) < 0 || (*rc = expect_kw(p, "exists")) < 0)
    return false;
  return true;
}

static bool if_exists(parser *p, int *rc)
{
  *rc = 0;
  if (!accept_kw(p, "if"))
    return false;
  if ((*rc = expect_kw(p, "exists")) < 0)
    return false;
  return true;
}

/* ('k' = 'v', ...) */
static int kv_list(parser *p, ast_kv **out, int *n)
{
  int rc;
  if ((rc = expect_op(p, "(")) < 0)
    return rc;
  vecp v = {0};
  do {
    ast_kv *kv = arena_alloc(p->a, sizeof *kv);
    if ((rc = string(p, &kv->key, "a property name as a string ('key' = 'value')")) < 0)
      return rc;
    if ((rc = expect_op(p, "=")) < 0)
      return rc;
    if ((rc = string(p, &kv->value, "a property value as a string")) < 0)
      return rc;
    sql__p_vpush(p, &v, kv);
  } while (accept_op(p, ","));
  if ((rc = expect_op(p, ")")) < 0)
    return rc;
  *out = arena_alloc(p->a, sizeof(ast_kv) * (size_t)(v.n > 0 ? v.n : 1));
  for (int i = 0; i < v.n; i++)
    (*out)[i] = *(ast_kv *)v.v[i];
  *n = v.n;
  return 0;
}

static void kv_add(parser *p, ast_kv **arr, int *n, const char *k, const char *v)
{
  ast_kv *na = arena_alloc(p->a, sizeof(ast_kv) * (size_t)(*n + 1));
  if (*n > 0)
    memcpy(na, *arr, sizeof(ast_kv) * (size_t)*n);
  na[*n].key = k;
  na[*n].value = v;
  *arr = na;
  (*n)++;
}

/* A Hive type as text: words, (numbers) and <nested, types>, up to a ','
 * or ')' outside brackets, or COMMENT. */
static int type_text(parser *p, const char **out)
{
  char tmp[1024];
  size_t n = 0;
  int depth = 0;
  token *first = peek(p);
  for (;;) {
    token *t = peek(p);
    if (t->kind == TK_EOF)
      break;
    if (depth == 0 && (is_op(t, ",") || is_op(t, ")") || is_kw(t, "comment")))
      break;
    if (is_op(t, "(") || is_op(t, "<"))
      depth++;
    else if (is_op(t, ")") || is_op(t, ">"))
      depth--;
    else if (is_op(t, "<>")) {
      /* "<>" of an empty list: not a type */
      return syntax(p, "a column type");
    }
    const char *s = t->kind == TK_IDENT ? t->text : lower(p, t->text);
    size_t l = strlen(s);
    if (n + l + 1 >= sizeof tmp)
      return syntax(p, "a shorter column type");
    memcpy(tmp + n, s, l);
    n += l;
    p->i++;
    if (depth < 0)
      return syntax(p, "a column type");
  }
  if (n == 0 || depth != 0) {
    if (n == 0)
      p->i = (int)(first - p->t);
    return syntax(p, "a column type");
  }
  tmp[n] = 0;
  *out = arena_strdup(p->a, tmp);
  return 0;
}

/* (name type [COMMENT 'c'], ...) */
static int col_defs(parser *p, ast_coldef **out, int *n)
{
  int rc;
  if ((rc = expect_op(p, "(")) < 0)
    return rc;
  vecp v = {0};
  do {
    ast_coldef *c = arena_alloc(p->a, sizeof *c);
    if ((rc = name(p, &c->name, &c->line, &c->col, "a column name")) < 0)
      return rc;
    if ((rc = type_text(p, &c->type)) < 0)
      return rc;
    if (accept_kw(p, "comment") && (rc = string(p, &c->comment, "a comment string")) < 0)
      return rc;
    sql__p_vpush(p, &v, c);
  } while (accept_op(p, ","));
  if ((rc = expect_op(p, ")")) < 0)
    return rc;
  *out = arena_alloc(p->a, sizeof(ast_coldef) * (size_t)(v.n > 0 ? v.n : 1));
  for (int i = 0; i < v.n; i++)
    (*out)[i] = *(ast_coldef *)v.v[i];
  *n = v.n;
  return 0;
}

/* PARTITION (k = 'v' | k = number, ...) */
static int part_spec(parser *p, ast_partspec *ps)
{
  int rc;
  token *t0 = peek(p);
  ps->line = t0->line;
  ps->col = t0->col;
  if ((rc = expect_kw(p, "partition")) < 0 || (rc = expect_op(p, "(")) < 0)
    return rc;
  vecp v = {0};
  do {
    ast_kv *kv = arena_alloc(p->a, sizeof *kv);
    if ((rc = name(p, &kv->key, NULL, NULL, "a partition column name")) < 0)
      return rc;
    if ((rc = expect_op(p, "=")) < 0)
      return rc;
    token *t = peek(p);
    if (t->kind != TK_STRING && t->kind != TK_INT && t->kind != TK_NUMBER)
      return syntax(p, "a partition value ('2024' or 2024)");
    kv->value = t->text;
    p->i++;
    sql__p_vpush(p, &v, kv);
  } while (accept_op(p, ","));
  if ((rc = expect_op(p, ")")) < 0)
    return rc;
  ps->kv = arena_alloc(p->a, sizeof(ast_kv) * (size_t)v.n);
  for (int i = 0; i < v.n; i++)
    ps->kv[i] = *(ast_kv *)v.v[i];
  ps->nkv = v.n;
  return 0;
}

static int location(parser *p, ast_ddl *d)
{
  d->location_line = peek(p)->line;
  d->location_col = peek(p)->col;
  return string(p, &d->location, "the location as a string ('s3://bucket/prefix/')");
}

static int create_db(parser *p, ast_ddl *d)
{
  int rc;
  d->kind = DDL_CREATE_DB;
  d->if_not_exists = if_not_exists(p, &rc);
  if (rc < 0 || (rc = name(p, &d->name, &d->name_line, &d->name_col, "a database name")) < 0)
    return rc;
  for (;;) {
    if (accept_kw(p, "comment")) {
      if ((rc = string(p, &d->comment, "a comment string")) < 0)
        return rc;
    } else if (accept_kw(p, "location")) {
      if ((rc = location(p, d)) < 0)
        return rc;
    } else if (accept_kw(p, "with")) {
      if ((rc = expect_kw(p, "dbproperties")) < 0 || (rc = kv_list(p, &d->props, &d->nprops)) < 0)
        return rc;
    } else {
      return 0;
    }
  }
}

static int row_format(parser *p, ast_ddl *d)
{
  int rc;
  if (accept_kw(p, "serde")) {
    if ((rc = string(p, &d->serde, "the SerDe class as a string")) < 0)
      return rc;
    if (accept_kw(p, "with")) {
      if ((rc = expect_kw(p, "serdeproperties")) < 0)
        return rc;
      ast_kv *kv;
      int n;
      if ((rc = kv_list(p, &kv, &n)) < 0)
        return rc;
      for (int i = 0; i < n; i++)
        kv_add(p, &d->serde_props, &d->nserde_props, kv[i].key, kv[i].value);
    }
    return 0;
  }
  if ((rc = expect_kw(p, "delimited")) < 0)
    return rc;
  d->serde = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe";
  for (;;) {
    const char *v = NULL;
    if (accept_kw(p, "fields")) {
      if ((rc = expect_kw(p, "terminated")) < 0 || (rc = expect_kw(p, "by")) < 0 ||
          (rc = string(p, &v, "the delimiter as a string")) < 0)
        return rc;
      kv_add(p, &d->serde_props, &d->nserde_props, "field.delim", v);
      kv_add(p, &d->serde_props, &d->nserde_props, "serialization.format", v);
      if (accept_kw(p, "escaped")) {
        if ((rc = expect_kw(p, "by")) < 0 || (rc = string(p, &v, "the escape as a string")) < 0)
          return rc;
        kv_add(p, &d->serde_props, &d->nserde_props, "escape.delim", v);
      }
    } else if (accept_kw(p, "collection")) {
      if ((rc = expect_kw(p, "items")) < 0 || (rc = expect_kw(p, "terminated")) < 0 ||
          (rc = expect_kw(p, "by")) < 0 || (rc = string(p, &v, "the delimiter as a string")) < 0)
        return rc;
      kv_add(p, &d->serde_props, &d->nserde_props, "colelction.delim", v); /* Hive's spelling */
    } else if (accept_kw(p, "map")) {
      if ((rc = expect_kw(p, "keys")) < 0 || (rc = expect_kw(p, "terminated")) < 0 ||
          (rc = expect_kw(p, "by")) < 0 || (rc = string(p, &v, "the delimiter as a string")) < 0)
        return rc;
      kv_add(p, &d->serde_props, &d->nserde_props, "mapkey.delim", v);
    } else if (accept_kw(p, "lines")) {
      if ((rc = expect_kw(p, "terminated")) < 0 || (rc = expect_kw(p, "by")) < 0 ||
          (rc = string(p, &v, "the delimiter as a string")) < 0)
        return rc;
      kv_add(p, &d->serde_props, &d->nserde_props, "line.delim", v);
    } else if (is_kw(peek(p), "null") && is_kw(peek2(p), "defined")) {
      p->i += 2;
      if ((rc = expect_kw(p, "as")) < 0 || (rc = string(p, &v, "the NULL text as a string")) < 0)
        return rc;
      kv_add(p, &d->serde_props, &d->nserde_props, "serialization.null.format", v);
    } else {
      return 0;
    }
  }
}

static int create_table(parser *p, ast_ddl *d)
{
  int rc;
  d->kind = DDL_CREATE_TABLE;
  d->if_not_exists = if_not_exists(p, &rc);
  if (rc < 0 || (rc = qualified(p, d, "a table name")) < 0)
    return rc;
  if ((rc = col_defs(p, &d->cols, &d->ncols)) < 0)
    return rc;
  for (;;) {
    if (accept_kw(p, "comment")) {
      if ((rc = string(p, &d->comment, "a comment string")) < 0)
        return rc;
    } else if (accept_kw(p, "partitioned")) {
      if ((rc = expect_kw(p, "by")) < 0 || (rc = col_defs(p, &d->pcols, &d->npcols)) < 0)
        return rc;
    } else if (accept_kw(p, "row")) {
      if ((rc = expect_kw(p, "format")) < 0 || (rc = row_format(p, d)) < 0)
        return rc;
    } else if (accept_kw(p, "stored")) {
      if ((rc = expect_kw(p, "as")) < 0)
        return rc;
      if (accept_kw(p, "inputformat")) {
        if ((rc = string(p, &d->input_format, "the InputFormat class as a string")) < 0 ||
            (rc = expect_kw(p, "outputformat")) < 0 ||
            (rc = string(p, &d->output_format, "the OutputFormat class as a string")) < 0)
          return rc;
      } else {
        token *t = peek(p);
        if (t->kind != TK_IDENT)
          return syntax(p, "a file format (PARQUET, TEXTFILE, JSONFILE, ...)");
        d->stored_as = t->text;
        p->i++;
      }
    } else if (accept_kw(p, "location")) {
      if ((rc = location(p, d)) < 0)
        return rc;
    } else if (accept_kw(p, "tblproperties")) {
      if ((rc = kv_list(p, &d->props, &d->nprops)) < 0)
        return rc;
    } else {
      return 0;
    }
  }
}

static int alter_table(parser *p, ast_ddl *d)
{
  int rc;
  if ((rc = qualified(p, d, "a table name")) < 0)
    return rc;
  vecp v = {0};
  if (accept_kw(p, "add")) {
    d->kind = DDL_ADD_PARTS;
    d->if_not_exists = if_not_exists(p, &rc);
    if (rc < 0)
      return rc;
    do {
      ast_partspec *ps = arena_alloc(p->a, sizeof *ps);
      if ((rc = part_spec(p, ps)) < 0)
        return rc;
      if (accept_kw(p, "location") &&
          (rc = string(p, &ps->location, "the location as a string")) < 0)
        return rc;
      sql__p_vpush(p, &v, ps);
    } while (is_kw(peek(p), "partition"));
  } else if (accept_kw(p, "drop")) {
    d->kind = DDL_DROP_PARTS;
    d->if_exists = if_exists(p, &rc);
    if (rc < 0)
      return rc;
    do {
      ast_partspec *ps = arena_alloc(p->a, sizeof *ps);
      if ((rc = part_spec(p, ps)) < 0)
        return rc;
      sql__p_vpush(p, &v, ps);
    } while (accept_op(p, ","));
  } else {
    return syntax(p, "ADD PARTITION or DROP PARTITION");
  }
  d->parts = arena_alloc(p->a, sizeof(ast_partspec) * (size_t)v.n);
  for (int i = 0; i < v.n; i++)
    d->parts[i] = *(ast_partspec *)v.v[i];
  d->nparts = v.n;
  return 0;
}

static int show(parser *p, ast_ddl *d)
{
  int rc;
  if (accept_kw(p, "databases") || accept_kw(p, "schemas")) {
    d->kind = DDL_SHOW_DBS;
    if (accept_kw(p, "like") || peek(p)->kind == TK_STRING)
      return string(p, &d->pattern, "a pattern as a string");
    return 0;
  }
  if (accept_kw(p, "tables")) {
    d->kind = DDL_SHOW_TABLES;
    if (accept_kw(p, "in") || accept_kw(p, "from")) {
      if ((rc = name(p, &d->db, &d->name_line, &d->name_col, "a database name")) < 0)
        return rc;
    }
    if (accept_kw(p, "like") || peek(p)->kind == TK_STRING)
      return string(p, &d->pattern, "a pattern as a string");
    return 0;
  }
  if (accept_kw(p, "partitions")) {
    d->kind = DDL_SHOW_PARTITIONS;
    return qualified(p, d, "a table name");
  }
  if (accept_kw(p, "columns")) {
    d->kind = DDL_SHOW_COLUMNS;
    if (!accept_kw(p, "in") && (rc = expect_kw(p, "from")) < 0)
      return rc;
    if ((rc = qualified(p, d, "a table name")) < 0)
      return rc;
    if (accept_kw(p, "in") || accept_kw(p, "from"))
      return name(p, &d->db, NULL, NULL, "a database name");
    return 0;
  }
  if (accept_kw(p, "create")) {
    d->kind = DDL_SHOW_CREATE;
    if ((rc = expect_kw(p, "table")) < 0)
      return rc;
    return qualified(p, d, "a table name");
  }
  return syntax(p, "DATABASES, SCHEMAS, TABLES, PARTITIONS, COLUMNS or CREATE TABLE");
}

int sql__parse_ddl(parser *p, ast_ddl **out)
{
  token *t = peek(p);
  token *t2 = peek2(p);
  ast_ddl *d = arena_alloc(p->a, sizeof *d);
  d->line = t->line;
  d->col = t->col;
  int rc;
  if (is_kw(t, "create") && (is_kw(t2, "database") || is_kw(t2, "schema"))) {
    p->i += 2;
    rc = create_db(p, d);
  } else if (is_kw(t, "drop") && (is_kw(t2, "database") || is_kw(t2, "schema"))) {
    p->i += 2;
    d->kind = DDL_DROP_DB;
    d->if_exists = if_exists(p, &rc);
    if (rc == 0)
      rc = name(p, &d->name, &d->name_line, &d->name_col, "a database name");
    if (rc == 0 && !accept_kw(p, "restrict"))
      d->cascade = accept_kw(p, "cascade");
  } else if (is_kw(t, "create") && is_kw(t2, "external")) {
    p->i += 2;
    rc = expect_kw(p, "table");
    if (rc == 0)
      rc = create_table(p, d);
  } else if (is_kw(t, "create") && is_kw(t2, "table")) {
    /* Athena: a table that is not EXTERNAL is Iceberg's (or CTAS) */
    return sql__error_at(p->e, p->pos, t->line, t->col,
                         "CREATE TABLE without AS SELECT must be CREATE EXTERNAL TABLE ... "
                         "LOCATION 's3://...' (tables stored elsewhere are not supported)");
  } else if (is_kw(t, "drop") && is_kw(t2, "table")) {
    p->i += 2;
    d->kind = DDL_DROP_TABLE;
    d->if_exists = if_exists(p, &rc);
    if (rc == 0)
      rc = qualified(p, d, "a table name");
  } else if (is_kw(t, "show")) {
    p->i++;
    rc = show(p, d);
  } else if (is_kw(t, "describe") || is_kw(t, "desc")) {
    p->i++;
    d->kind = DDL_DESCRIBE;
    if (!accept_kw(p, "extended"))
      accept_kw(p, "formatted");
    rc = qualified(p, d, "a table name");
  } else if (is_kw(t, "msck")) {
    p->i++;
    d->kind = DDL_MSCK;
    rc = expect_kw(p, "repair");
    if (rc == 0)
      rc = expect_kw(p, "table");
    if (rc == 0)
      rc = qualified(p, d, "a table name");
  } else if (is_kw(t, "alter") && is_kw(t2, "table")) {
    p->i += 2;
    rc = alter_table(p, d);
  } else {
    return 1;
  }
  if (rc < 0)
    return rc;
  accept_op(p, ";");
  if (peek(p)->kind != TK_EOF)
    return syntax(p, "end of statement");
  *out = d;
  return 0;
}
