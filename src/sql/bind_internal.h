/* sql/bind_internal.h -- what the binder's files share (private to
 * bind.c, bind_expr.c, bind_from.c, bind_select.c, rewrite.c and
 * func_names.c).
 *
 * The binder is one pass over the syntax tree (see bind.c) cut into files
 * along SQLite's lines: names and expressions (bind_expr.c), FROM and joins
 * (bind_from.c), SELECT and set operations (bind_select.c), the plan
 * rewrites (rewrite.c). They share one context, the binder, and the scopes
 * that names are resolved in.
 */
#ifndef TARN_SQL_BIND_INTERNAL_H
#define TARN_SQL_BIND_INTERNAL_H

#include "exec.h"

typedef struct scol {
  const char *table;   /* qualifier (alias), or NULL */
  const char *name;
  stype type;
  bool hidden;         /* the right side of USING: not visible unqualified or in * */
} scol;

typedef struct scope {
  scol *cols;
  int n;
  struct scope *outer;
} scope;

typedef struct ctedef {
  ast_cte *cte;
  struct ctedef *next;
} ctedef;

enum { M_AGG = 1, M_WIN = 2 };

typedef struct binder {
  qctx *q;
  arena *a;
  err *e;
  sql_pos *pos;
  ctedef *ctes;
  int depth;
  const char *clause;   /* "WHERE", "GROUP BY", ... for messages */
  bool corr_hit;        /* a column resolved to an outer query (correlation) */
} binder;

/* ---- function names (func_names.c) ---- */

/* The AGG_* code of an aggregate function's name, or -1. */
int agg_lookup(const char *name);
/* The WIN_* code of a window function's name, or -1. */
int win_lookup(const char *name);

#endif
