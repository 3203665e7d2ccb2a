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
  ast_expr *from_where; /* WHERE of the SELECT whose FROM is one table: its
                           conditions on partition columns prune the listing */
} binder;

/* ---- bind.c: errors, constructors, coercion, utilities, plans ---- */

/* Sets the error at line:col (also into B->pos); returns ERR_INVALID. */
int sql__errx(binder *B, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bexpr *sql__bx_new(binder *B, int kind, stype t, int line, int col);
bexpr *sql__bx_col(arena *a, int colno, stype t);
bexpr **sql__args_new(binder *B, int n);
bexpr *sql__bx2(binder *B, int kind, stype t, bexpr *a, bexpr *b, int line, int col);
/* Evaluates a constant expression now; returns x itself when it is not
 * constant or fails (the error then happens at run time). */
bexpr *sql__fold(binder *B, bexpr *x);
bool sql__can_cast(sql_type from, sql_type to);
/* 1 smallint, 2 integer, 3 bigint, 0 not an integer type */
int sql__int_rank(sql_type t);
/* the type both a and b convert to implicitly; false when none */
bool sql__common_type(stype a, stype b, stype *out);
/* a string constant next to a value of another type converts to it */
bool sql__str_literal(const bexpr *x);
/* Coerces a and b to one type for comparison (or set operations). */
int sql__unify2(binder *B, bexpr **a, bexpr **b, const char *op, int line, int col);
/* x must be boolean (NULL becomes a boolean NULL); what names it in the error. */
int sql__need_bool(binder *B, bexpr **x, const char *what);
bool sql__bexpr_equal(const bexpr *a, const bexpr *b);
bexpr *sql__bexpr_copy(arena *a, const bexpr *x);
/* lowest and highest column referenced (-1 / -1 when none) */
void sql__expr_range(const bexpr *x, int *lo, int *hi);
/* adds delta to every column reference */
void sql__expr_shift(bexpr *x, int delta);
bool sql__expr_has_subquery(const bexpr *x);
/* Appends the conjuncts of x (flattening AND) to *out. */
void sql__conjuncts(binder *B, bexpr *x, bexpr ***out, int *n, int *cap);
plan *sql__plan_new(binder *B, int kind, int ncols);
void sql__add_pred(binder *B, plan *p, bexpr *x);
/* x as a filter over child (joining child's filter when it is one) */
plan *sql__wrap_filter(binder *B, plan *child, bexpr *x);
void sql__join_add_key(binder *B, plan *j, bexpr *l, bexpr *r);
/* An equality across j's sides becomes a key of j (true), else false. */
bool sql__join_add_eq_key(binder *B, plan *j, bexpr *x);
/* ANDs x to the join's residual condition */
void sql__join_add_cond(binder *B, plan *j, bexpr *x);

/* ---- bind_expr.c: scopes, names, expressions ---- */

scope *sql__scope_new(binder *B, int n, scope *outer);
scope *sql__scope_of_plan(binder *B, plan *p, const char *alias, scope *outer);
/* case-insensitive; false when either is NULL */
bool sql__name_eq(const char *a, const char *b);
/* The column of name (qualified by qual when not NULL): -1 not found,
 * -2 ambiguous. */
int sql__scope_find(scope *s, const char *qual, const char *name, bool any_hidden);
bool sql__scope_has_table(scope *s, const char *qual);
/* The error for an unknown column x, with the nearest name in sc. */
int sql__unknown_column(binder *B, ast_expr *x, scope *sc);
/* x holds an aggregate call outside subqueries (a call with OVER is a
 * window call, though its arguments may hold aggregates) */
bool sql__ast_has_agg(ast_expr *x);
/* Binds a subquery over scope sc (one level deeper) and prunes its plan. */
int sql__bind_subquery_plan(binder *B, ast_query *sub, scope *sc, plan **out, int line,
                            int col);
/* Binds x over scope sc; mode is M_AGG and/or M_WIN where those calls
 * are allowed. */
int sql__bind_expr(binder *B, ast_expr *x, scope *sc, int mode, bexpr **out);

/* ---- bind_from.c: FROM ---- */

/* Binds a FROM item: its plan and the scope its columns are named in. */
int sql__bind_from(binder *B, ast_from *f, scope *outer, plan **out, scope **sc);

/* ---- bind_select.c: queries ---- */

/* Binds a query (WITH, SELECT or a set operation) over the outer scope. */
int sql__bind_query(binder *B, ast_query *q, scope *outer, plan **out);

/* ---- rewrite.c: pushdown, decorrelation, DISTINCT aggregates, pruning ---- */

/* Pushes predicate x (over p's output columns) as deep as it can go;
 * returns the plan to use in place of p. */
plan *sql__push_pred(binder *B, plan *p, bexpr *x);
/* Appends the AND-conjuncts of the syntax tree x to *out. */
void sql__ast_conjuncts(binder *B, ast_expr *x, ast_expr ***out, int *n, int *cap);
/* [NOT] EXISTS or IN (subquery): the conjuncts sql__decorrelate() takes */
bool sql__is_subquery_pred(ast_expr *x);
/* Turns a correlated [NOT] EXISTS / IN conjunct of WHERE into a semi or
 * anti join of *p with the subquery. */
int sql__decorrelate(binder *B, ast_expr *x, scope *sc, plan **p);
/* Decorrelates every correlated scalar subquery in *xp (LEFT JOINs onto
 * *p; *sc grows by their columns). */
int sql__decorrelate_scalars(binder *B, ast_expr **xp, plan **p, scope **sc);
/* count(DISTINCT x) ... over one x: GROUP BY (keys, x) first. */
plan *sql__distinct_rewrite(binder *B, plan *ap);
/* Marks the columns every node must produce (scans read only those). */
void sql__plan_prune(plan *p, arena *a);

/* ---- func_names.c: aggregate and window function names ---- */

/* The AGG_* code of an aggregate function's name, or -1. */
int sql__agg_lookup(const char *name);
/* The WIN_* code of a window function's name, or -1. */
int sql__win_lookup(const char *name);

#endif
