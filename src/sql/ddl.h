/* sql/ddl.h -- the SQL engine over the table catalog (private): DDL
 * statements, catalog tables as FROM items, and the helpers CTAS and
 * INSERT INTO (copy.c) use to register what they wrote. See ddl.c. */
#ifndef TARN_SQL_DDL_H
#define TARN_SQL_DDL_H

#include "exec.h"

#include <jansson.h>

typedef struct catalog catalog;

/* Runs a DDL statement: *result its rows (none for CREATE, DROP, ALTER). */
int sql__ddl_exec(qctx *q, ast_ddl *d, plan **result, err *e, sql_pos *pos);

/* A catalog table, ready to open: opts (format, CSV dialect, cat), the
 * declared columns (data columns then partition keys) with their types. */
typedef struct cat_tdef {
  const char *db;
  const char *name;
  const char *display;   /* db.name */
  json_t *doc;           /* the table's document (lives as long as the query) */
  table_opts opts;
  table_cat cat;
  int ncols;             /* data columns */
  int npkeys;
  const char **names;    /* ncols + npkeys */
  stype *stypes;         /* declared types, ncols + npkeys */
} cat_tdef;

/* Looks up "db.t" or "t" (in q's default database). ERR_ENTITY_NOT_FOUND
 * when there is no such table (or database). */
int sql__cat_table(qctx *q, const char *qual, cat_tdef *out, err *e);
/* The table's document only. */
int sql__cat_table_doc(qctx *q, const char *db, const char *name, json_t **doc, err *e);
/* "db.t" -> db, t; "t" -> the default database, t (arena strings). */
void sql__cat_split(qctx *q, const char *qual, const char **db, const char **name);

/* A Hive type string as the engine's type (and how text is read into it):
 * -1 for a type tarn does not know. */
int sql__hive_type(const char *hive, stype *st, fmt_type *ft);
/* The Hive type of an engine type ("bigint", "decimal(10,2)", "string"). */
const char *sql__hive_type_of(arena *a, stype t);

#endif
