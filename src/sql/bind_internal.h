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

/* ---- bind.c: errors, constructors, coercion, plan helpers ---- */

/* Sets the error at line:col (also into B->pos); returns ERR_INVALID. */
int errx(binder *B, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bexpr *bx_new(binder *B, int kind, stype t, int line, int col);
bexpr *bx_col(arena *a, int colno, stype t);
bexpr **args_new(binder *B, int n);
bexpr *bx2(binder *B, int kind, stype t, bexpr *a, bexpr *b, int line, int col);
/* Evaluates a constant expression now; returns x itself when it is not
 * constant or fails (the error then happens at run time). */
bexpr *fold(binder *B, bexpr *x);
/* the type both a and b convert to implicitly; false when none */
bool common_type(stype a, stype b, stype *out);
bool can_cast(sql_type from, sql_type to);
/* 1 smallint, 2 integer, 3 bigint, 0 not an integer type */
int int_rank(sql_type t);
/* a string constant next to a value of another type converts to it */
bool str_literal(const bexpr *x);
/* Coerces a and b to one type for comparison (or set operations). */
int unify2(binder *B, bexpr **a, bexpr **b, const char *op, int line, int col);
int need_bool(binder *B, bexpr **x, const char *what);
bool bexpr_equal(const bexpr *a, const bexpr *b);
bexpr *bexpr_copy(arena *a, const bexpr *x);
/* lowest and highest column referenced (-1 / -1 when none) */
void expr_range(const bexpr *x, int *lo, int *hi);
void expr_shift(bexpr *x, int delta);
bool expr_has_subquery(const bexpr *x);
/* Appends the conjuncts of x (flattening AND) to *out. */
void conjuncts(binder *B, bexpr *x, bexpr ***out, int *n, int *cap);
plan *plan_new(binder *B, int kind, int ncols);
void add_pred(binder *B, plan *p, bexpr *x);
plan *wrap_filter(binder *B, plan *child, bexpr *x);
void join_add_key(binder *B, plan *j, bexpr *l, bexpr *r);
void join_add_cond(binder *B, plan *j, bexpr *x);
scope *scope_new(binder *B, int n, scope *outer);
scope *scope_of_plan(binder *B, plan *p, const char *alias, scope *outer);
bool name_eq(const char *a, const char *b);
/* The column of name (qualified by qual when not NULL): -1 not found,
 * -2 ambiguous. */
int scope_find(scope *s, const char *qual, const char *name, bool any_hidden);
bool scope_has_table(scope *s, const char *qual);
/* The error for an unknown column x, with the nearest name in sc. */
int unknown_column(binder *B, ast_expr *x, scope *sc);
bool ast_has_agg(ast_expr *x);
int bind_subquery_plan(binder *B, ast_query *sub, scope *sc, plan **out, int line, int col);
int bind_expr(binder *B, ast_expr *x, scope *sc, int mode, bexpr **out);
int bind_from(binder *B, ast_from *f, scope *outer, plan **out, scope **sc);

/* ---- bind_select.c: queries ---- */

/* Binds a query (WITH, SELECT or a set operation) over the outer scope. */
int bind_query(binder *B, ast_query *q, scope *outer, plan **out);

/* ---- rewrite.c: pushdown, decorrelation, DISTINCT aggregates, pruning ---- */

/* Pushes predicate x (over p's output columns) as deep as it can go;
 * returns the plan to use in place of p. */
plan *push_pred(binder *B, plan *p, bexpr *x);
void ast_conjuncts(binder *B, ast_expr *x, ast_expr ***out, int *n, int *cap);
/* [NOT] EXISTS or IN (subquery): the forms decorrelate() takes */
bool is_subquery_pred(ast_expr *x);
/* Turns a correlated [NOT] EXISTS / IN conjunct of WHERE into a semi or
 * anti join of *p with the subquery. */
int decorrelate(binder *B, ast_expr *x, scope *sc, plan **p);
/* Decorrelates every correlated scalar subquery in *xp (LEFT JOINs onto
 * *p; *sc grows by their columns). */
int decorrelate_scalars(binder *B, ast_expr **xp, plan **p, scope **sc);
/* count(DISTINCT x) ... over one x: GROUP BY (keys, x) first. */
plan *distinct_rewrite(binder *B, plan *ap);

/* ---- function names (func_names.c) ---- */

/* The AGG_* code of an aggregate function's name, or -1. */
int agg_lookup(const char *name);
/* The WIN_* code of a window function's name, or -1. */
int win_lookup(const char *name);

#endif
