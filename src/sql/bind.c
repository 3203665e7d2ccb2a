/* sql/bind.c -- the binder: names to columns, types to expressions, the
 * syntax tree to a plan (see plan.h), with the errors a user sees. This
 * file holds the entry, sql__bind(), and what every part of the binder
 * uses: types, constructors, constant folding, casts and coercion,
 * expression utilities and plan helpers.
 *
 * Why one pass: binding a SELECT decides its plan shape at the same time
 * (aggregation, windows, hidden ORDER BY columns), so building the plan
 * while resolving names keeps the two in step. The pass is cut into files
 * along SQLite's lines (bind_internal.h is what they share):
 *   bind_expr.c    scopes, name resolution, expressions, aggregates, windows
 *   bind_from.c    FROM: tables, table functions, VALUES, CTEs, joins
 *   bind_select.c  SELECT, set operations, WITH (sql__bind_query)
 *   rewrite.c      predicate pushdown, decorrelation, DISTINCT aggregates,
 *                  column pruning
 *   func_names.c   the names of the aggregate and window functions
 *
 * Invariants:
 *   (1) Every bexpr is typed; operands of an operator have been coerced to
 *       one type (casts are explicit nodes), so the executor never guesses.
 *   (2) An error points at the first token of the offending construct
 *       (sql_pos), and says what was expected (with the nearest name for
 *       unknown columns and functions).
 *   (3) Above an aggregation, an expression refers only to group keys and
 *       aggregates: a bare input column is the error "'x' must be an
 *       aggregate expression or appear in GROUP BY clause".
 *   (4) WHERE conjuncts are pushed as far down as they can go: into the
 *       scans (filter pushdown), and equalities across a join become its
 *       hash keys.
 *   (5) Everything the binder makes lives in the query's arena (q->a);
 *       compiled patterns and value sets are freed by sql__exec_defer.
 *
 * Start reading at sql__bind(), then sql__bind_query() in bind_select.c.
 */
#include "bind_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- small helpers ---- */

stype sql__st(sql_type t)
{
  stype s = {t, 0, 0};
  if (t == SQL_DECIMAL) {
    s.prec = 18;
  }
  return s;
}

int sql__phys(sql_type t)
{
  if (t == SQL_DOUBLE)
    return PHYS_F64;
  if (t == SQL_VARCHAR)
    return PHYS_STR;
  return PHYS_I64;
}

bool sql__stype_integer(sql_type t)
{
  return t == SQL_SMALLINT || t == SQL_INTEGER || t == SQL_BIGINT;
}

bool sql__stype_numeric(sql_type t)
{
  return sql__stype_integer(t) || t == SQL_DECIMAL || t == SQL_DOUBLE;
}

bool sql__stype_is_str(sql_type t)
{
  return t == SQL_VARCHAR;
}

const char *sql_type_name(sql_type t)
{
  switch (t) {
  case SQL_NULL: return "unknown";
  case SQL_BOOLEAN: return "boolean";
  case SQL_SMALLINT: return "smallint";
  case SQL_INTEGER: return "integer";
  case SQL_BIGINT: return "bigint";
  case SQL_DOUBLE: return "double";
  case SQL_DECIMAL: return "decimal";
  case SQL_VARCHAR: return "varchar";
  case SQL_DATE: return "date";
  case SQL_TIMESTAMP: return "timestamp";
  case SQL_INTERVAL_DS: return "interval day to second";
  case SQL_INTERVAL_YM: return "interval year to month";
  }
  return "?";
}

const char *sql__stype_name(stype t, char *out, size_t n)
{
  if (t.t == SQL_DECIMAL)
    snprintf(out, n, "decimal(%d,%d)", t.prec, t.scale);
  else
    snprintf(out, n, "%s", sql_type_name(t.t));
  return out;
}

int sql__levenshtein(const char *a, const char *b)
{
  size_t n = strlen(a), m = strlen(b);
  if (n > 64 || m > 64)
    return 99;
  int d[65][65];
  for (size_t i = 0; i <= n; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    for (size_t j = 1; j <= m; j++) {
      char ca = a[i - 1], cb = b[j - 1];
      if (ca >= 'A' && ca <= 'Z')
        ca = (char)(ca + 32);
      if (cb >= 'A' && cb <= 'Z')
        cb = (char)(cb + 32);
      int c = d[i - 1][j - 1] + (ca != cb);
      if (d[i - 1][j] + 1 < c)
        c = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < c)
        c = d[i][j - 1] + 1;
      d[i][j] = c;
    }
  }
  return d[n][m];
}

int sql__errx(binder *B, int line, int col, const char *fmt, ...)
{
  char msg[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return sql__error_at(B->e, B->pos, line, col, "%s", msg);
}

bexpr *sql__bx_new(binder *B, int kind, stype t, int line, int col)
{
  bexpr *x = arena_alloc(B->a, sizeof *x);
  x->kind = kind;
  x->type = t;
  x->line = line;
  x->col = col;
  return x;
}

bexpr *sql__bx_col(arena *a, int colno, stype t)
{
  bexpr *x = arena_alloc(a, sizeof *x);
  x->kind = BX_COL;
  x->colno = colno;
  x->type = t;
  return x;
}

bexpr **sql__args_new(binder *B, int n)
{
  return arena_alloc(B->a, sizeof(bexpr *) * (size_t)(n > 0 ? n : 1));
}

bexpr *sql__bx2(binder *B, int kind, stype t, bexpr *a, bexpr *b, int line, int col)
{
  bexpr *x = sql__bx_new(B, kind, t, line, col);
  x->args = sql__args_new(B, 2);
  x->args[0] = a;
  x->args[1] = b;
  x->nargs = 2;
  return x;
}

/* ---- constant folding ---- */

static qctx fold_q;
static pthread_once_t fold_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t fold_mu = PTHREAD_MUTEX_INITIALIZER;

static void fold_init(void)
{
  pthread_mutex_init(&fold_q.mu, NULL);
}

static bool is_const_tree(const bexpr *x)
{
  if (x->kind == BX_CONST)
    return true;
  if (x->kind == BX_COL || x->kind == BX_SUBQ || x->kind == BX_EXISTS || x->kind == BX_IN_SET ||
      x->kind == BX_AGG || x->kind == BX_WIN)
    return false;
  if (x->kind == BX_FUNC && x->fn != NULL && x->fn->min_args == 0 && x->nargs == 0)
    return true; /* current_date etc.: constant for the query */
  for (int i = 0; i < x->nargs; i++)
    if (!is_const_tree(x->args[i]))
      return false;
  return true;
}

/* Evaluates a constant expression now; leaves it alone when it fails (the
 * error then happens at run time, where Presto reports it too). */
bexpr *sql__fold(binder *B, bexpr *x)
{
  if (x->kind == BX_CONST || !is_const_tree(x))
    return x;
  pthread_once(&fold_once, fold_init);
  pthread_mutex_lock(&fold_mu);
  atomic_store(&fold_q.failed, false);
  fold_q.now_wall_us = B->q->now_wall_us;
  fold_q.err_code = 0;
  ectx ex;
  sql__ectx_init(&ex, &fold_q);
  batch b = {.n = 1, .nsel = 1};
  vec v;
  bexpr *res = x;
  if (sql__expr_eval(&ex, x, &b, &v) == 0 && !atomic_load(&fold_q.failed)) {
    value val = vec_get(&v, 0);
    if (!val.null && sql__phys(x->type.t) == PHYS_STR)
      val.s.ptr = arena_strndup(B->a, val.s.ptr, val.s.len);
    res = sql__bx_new(B, BX_CONST, x->type, x->line, x->col);
    res->v = val;
    res->name = x->name;
  }
  sql__ectx_release(&ex);
  pthread_mutex_unlock(&fold_mu);
  return res;
}

/* ---- casts and coercion ---- */

bool sql__can_cast(sql_type from, sql_type to)
{
  if (from == to || from == SQL_NULL || to == SQL_VARCHAR || from == SQL_VARCHAR)
    return from != SQL_VARCHAR || (to != SQL_INTERVAL_DS && to != SQL_INTERVAL_YM);
  bool fn = sql__stype_numeric(from) || from == SQL_BOOLEAN;
  bool tn = sql__stype_numeric(to) || to == SQL_BOOLEAN;
  if (fn && tn)
    return true;
  if ((from == SQL_DATE || from == SQL_TIMESTAMP) && (to == SQL_DATE || to == SQL_TIMESTAMP))
    return true;
  return false;
}

bexpr *sql__bind_cast(qctx *q, bexpr *x, stype to)
{
  if (x->type.t == to.t && (to.t != SQL_DECIMAL ||
                            (x->type.scale == to.scale && x->type.prec == to.prec)))
    return x;
  if (x->kind == BX_CONST && x->v.null) {
    bexpr *c = arena_alloc(q->a, sizeof *c);
    *c = *x;
    c->type = to;
    return c;
  }
  bexpr *c = arena_alloc(q->a, sizeof *c);
  c->kind = BX_CAST;
  c->type = to;
  c->line = x->line;
  c->col = x->col;
  c->args = arena_alloc(q->a, sizeof(bexpr *));
  c->args[0] = x;
  c->nargs = 1;
  c->name = x->name;
  return c;
}

int sql__int_rank(sql_type t)
{
  return t == SQL_SMALLINT ? 1 : t == SQL_INTEGER ? 2 : t == SQL_BIGINT ? 3 : 0;
}

/* the type both a and b convert to implicitly; false when none */
bool sql__common_type(stype a, stype b, stype *out)
{
  if (a.t == SQL_NULL) {
    *out = b;
    return true;
  }
  if (b.t == SQL_NULL || (a.t == b.t && a.t != SQL_DECIMAL)) {
    *out = a;
    return true;
  }
  if (sql__stype_integer(a.t) && sql__stype_integer(b.t)) {
    *out = sql__st(sql__int_rank(a.t) >= sql__int_rank(b.t) ? a.t : b.t);
    return true;
  }
  if (sql__stype_numeric(a.t) && sql__stype_numeric(b.t)) {
    if (a.t == SQL_DOUBLE || b.t == SQL_DOUBLE) {
      *out = sql__st(SQL_DOUBLE);
      return true;
    }
    /* decimal with decimal or integer */
    int as = a.t == SQL_DECIMAL ? a.scale : 0;
    int bs = b.t == SQL_DECIMAL ? b.scale : 0;
    int ai = a.t == SQL_DECIMAL ? a.prec - a.scale : 18;
    int bi = b.t == SQL_DECIMAL ? b.prec - b.scale : 18;
    if (a.t != SQL_DECIMAL)
      ai = sql__int_rank(a.t) == 3 ? 18 : 10;
    if (b.t != SQL_DECIMAL)
      bi = sql__int_rank(b.t) == 3 ? 18 : 10;
    int s = as > bs ? as : bs;
    int i = ai > bi ? ai : bi;
    if (i + s > 18)
      i = 18 - s;
    *out = (stype){SQL_DECIMAL, i + s, s};
    return true;
  }
  if ((a.t == SQL_DATE && b.t == SQL_TIMESTAMP) || (a.t == SQL_TIMESTAMP && b.t == SQL_DATE)) {
    *out = sql__st(SQL_TIMESTAMP);
    return true;
  }
  return false;
}

/* a string constant next to a value of another type converts to it */
bool sql__str_literal(const bexpr *x)
{
  return x->kind == BX_CONST && x->type.t == SQL_VARCHAR;
}

int sql__bind_coerce(qctx *q, bexpr **x, stype to, const char *what, err *e, sql_pos *pos)
{
  stype from = (*x)->type;
  if (from.t == to.t && (to.t != SQL_DECIMAL || from.scale == to.scale))
    return 0;
  stype c;
  bool ok = from.t == SQL_NULL || (sql__common_type(from, to, &c) && c.t == to.t) ||
            (sql__str_literal(*x) && sql__can_cast(SQL_VARCHAR, to.t));
  if (to.t == SQL_DECIMAL && sql__stype_numeric(from.t) && from.t != SQL_DOUBLE)
    ok = true;
  if (!ok) {
    char a[48], b[48];
    return sql__error_at(e, pos, (*x)->line, (*x)->col, "%s expects %s, got %s", what,
                        sql__stype_name(to, a, sizeof a), sql__stype_name(from, b, sizeof b));
  }
  *x = sql__bind_cast(q, *x, to);
  return 0;
}

/* Coerces a and b to one type for comparison (or set operations) */
int sql__unify2(binder *B, bexpr **a, bexpr **b, const char *op, int line, int col)
{
  stype t;
  stype ta = (*a)->type, tb = (*b)->type;
  if (ta.t == tb.t && (ta.t != SQL_DECIMAL || ta.scale == tb.scale))
    return 0;
  if (sql__str_literal(*a) && tb.t != SQL_VARCHAR && sql__can_cast(SQL_VARCHAR, tb.t)) {
    *a = sql__fold(B, sql__bind_cast(B->q, *a, tb));
    return 0;
  }
  if (sql__str_literal(*b) && ta.t != SQL_VARCHAR && sql__can_cast(SQL_VARCHAR, ta.t)) {
    *b = sql__fold(B, sql__bind_cast(B->q, *b, ta));
    return 0;
  }
  if (!sql__common_type(ta, tb, &t)) {
    char x1[48], x2[48];
    return sql__errx(B, line, col, "type mismatch: cannot apply '%s' to %s and %s", op,
                     sql__stype_name(ta, x1, sizeof x1), sql__stype_name(tb, x2, sizeof x2));
  }
  *a = sql__fold(B, sql__bind_cast(B->q, *a, t));
  *b = sql__fold(B, sql__bind_cast(B->q, *b, t));
  return 0;
}

int sql__need_bool(binder *B, bexpr **x, const char *what)
{
  if ((*x)->type.t == SQL_BOOLEAN)
    return 0;
  if ((*x)->type.t == SQL_NULL) {
    *x = sql__bind_cast(B->q, *x, sql__st(SQL_BOOLEAN));
    return 0;
  }
  char t[48];
  return sql__errx(B, (*x)->line, (*x)->col, "%s must be boolean, not %s", what,
                   sql__stype_name((*x)->type, t, sizeof t));
}

/* ---- expression utilities ---- */

bool sql__bexpr_equal(const bexpr *a, const bexpr *b)
{
  if (a->kind != b->kind || a->type.t != b->type.t || a->nargs != b->nargs || a->op != b->op ||
      a->neg != b->neg || a->try_cast != b->try_cast || a->ilike != b->ilike)
    return false;
  switch (a->kind) {
  case BX_COL:
    return a->colno == b->colno;
  case BX_CONST:
    if (a->v.null || b->v.null)
      return a->v.null == b->v.null;
    return sql__value_eq(sql__phys(a->type.t), a->v, b->v);
  case BX_FUNC:
    if (a->fn != b->fn)
      return false;
    break;
  case BX_AGG:
    if (a->agg->fn != b->agg->fn || a->agg->distinct != b->agg->distinct)
      return false;
    if ((a->agg->arg == NULL) != (b->agg->arg == NULL))
      return false;
    if (a->agg->arg != NULL && !sql__bexpr_equal(a->agg->arg, b->agg->arg))
      return false;
    if ((a->agg->arg2 == NULL) != (b->agg->arg2 == NULL))
      return false;
    if (a->agg->arg2 != NULL && !sql__bexpr_equal(a->agg->arg2, b->agg->arg2))
      return false;
    if ((a->agg->filter == NULL) != (b->agg->filter == NULL))
      return false;
    if (a->agg->filter != NULL && !sql__bexpr_equal(a->agg->filter, b->agg->filter))
      return false;
    return true;
  case BX_SUBQ:
  case BX_EXISTS:
  case BX_IN_SET:
  case BX_WIN:
    return a == b;
  default:
    break;
  }
  for (int i = 0; i < a->nargs; i++)
    if (!sql__bexpr_equal(a->args[i], b->args[i]))
      return false;
  return true;
}

bexpr *sql__bexpr_copy(arena *a, const bexpr *x)
{
  bexpr *c = arena_alloc(a, sizeof *c);
  *c = *x;
  if (x->nargs > 0) {
    c->args = arena_alloc(a, sizeof(bexpr *) * (size_t)x->nargs);
    for (int i = 0; i < x->nargs; i++)
      c->args[i] = sql__bexpr_copy(a, x->args[i]);
  }
  return c;
}

/* lowest and highest column referenced (-1 / -1 when none) */
void sql__expr_range(const bexpr *x, int *lo, int *hi)
{
  if (x->kind == BX_COL) {
    if (*lo < 0 || x->colno < *lo)
      *lo = x->colno;
    if (x->colno > *hi)
      *hi = x->colno;
    return;
  }
  for (int i = 0; i < x->nargs; i++)
    sql__expr_range(x->args[i], lo, hi);
}

void sql__expr_shift(bexpr *x, int delta)
{
  if (x->kind == BX_COL) {
    x->colno += delta;
    return;
  }
  for (int i = 0; i < x->nargs; i++)
    sql__expr_shift(x->args[i], delta);
}

bool sql__expr_has_subquery(const bexpr *x)
{
  if (x->kind == BX_SUBQ || x->kind == BX_EXISTS || x->kind == BX_IN_SET)
    return true;
  for (int i = 0; i < x->nargs; i++)
    if (sql__expr_has_subquery(x->args[i]))
      return true;
  return false;
}

void sql__conjuncts(binder *B, bexpr *x, bexpr ***out, int *n, int *cap)
{
  if (x->kind == BX_AND) {
    for (int i = 0; i < x->nargs; i++)
      sql__conjuncts(B, x->args[i], out, n, cap);
    return;
  }
  if (*n == *cap) {
    int nc = *cap ? *cap * 2 : 8;
    bexpr **nv = arena_alloc(B->a, sizeof(bexpr *) * (size_t)nc);
    if (*n)
      memcpy(nv, *out, sizeof(bexpr *) * (size_t)*n);
    *out = nv;
    *cap = nc;
  }
  (*out)[(*n)++] = x;
}

/* ---- plans ---- */

plan *sql__plan_new(binder *B, int kind, int ncols)
{
  plan *p = arena_alloc(B->a, sizeof *p);
  p->kind = kind;
  p->ncols = ncols;
  p->cols = arena_alloc(B->a, sizeof(pcol) * (size_t)(ncols > 0 ? ncols : 1));
  p->limit = -1;
  return p;
}

void sql__add_pred(binder *B, plan *p, bexpr *x)
{
  bexpr **np = arena_alloc(B->a, sizeof(bexpr *) * (size_t)(p->npreds + 1));
  if (p->npreds)
    memcpy(np, p->preds, sizeof(bexpr *) * (size_t)p->npreds);
  np[p->npreds++] = x;
  p->preds = np;
}

plan *sql__wrap_filter(binder *B, plan *child, bexpr *x)
{
  if (child->kind == P_FILTER) {
    sql__add_pred(B, child, x);
    return child;
  }
  plan *f = sql__plan_new(B, P_FILTER, child->ncols);
  memcpy(f->cols, child->cols, sizeof(pcol) * (size_t)child->ncols);
  f->child = child;
  sql__add_pred(B, f, x);
  return f;
}

void sql__join_add_key(binder *B, plan *j, bexpr *l, bexpr *r)
{
  bexpr **nl = arena_alloc(B->a, sizeof(bexpr *) * (size_t)(j->nkeys + 1));
  bexpr **nr = arena_alloc(B->a, sizeof(bexpr *) * (size_t)(j->nkeys + 1));
  if (j->nkeys) {
    memcpy(nl, j->lkeys, sizeof(bexpr *) * (size_t)j->nkeys);
    memcpy(nr, j->rkeys, sizeof(bexpr *) * (size_t)j->nkeys);
  }
  nl[j->nkeys] = l;
  nr[j->nkeys] = r;
  j->lkeys = nl;
  j->rkeys = nr;
  j->nkeys++;
}

/* When x is an equality between an expression over j's left input and one
 * over its right input (columns nl.. of x, nl = the left's width), adds it
 * as a key of join j (the right side shifted to the right input's columns)
 * and returns true; otherwise changes nothing. */
bool sql__join_add_eq_key(binder *B, plan *j, bexpr *x)
{
  int nl = j->child->ncols;
  if (x->kind != BX_CMP || x->op != CMP_EQ)
    return false;
  int l0 = -1, h0 = -1, l1 = -1, h1 = -1;
  sql__expr_range(x->args[0], &l0, &h0);
  sql__expr_range(x->args[1], &l1, &h1);
  bexpr *lk = NULL, *rk = NULL;
  if (l0 >= 0 && l1 >= 0 && h0 < nl && l1 >= nl) {
    lk = x->args[0];
    rk = x->args[1];
  } else if (l0 >= 0 && l1 >= 0 && h1 < nl && l0 >= nl) {
    lk = x->args[1];
    rk = x->args[0];
  }
  if (lk == NULL)
    return false;
  rk = sql__bexpr_copy(B->a, rk);
  sql__expr_shift(rk, -nl);
  sql__join_add_key(B, j, lk, rk);
  return true;
}

void sql__join_add_cond(binder *B, plan *j, bexpr *x)
{
  if (j->cond == NULL) {
    j->cond = x;
    return;
  }
  j->cond = sql__bx2(B, BX_AND, sql__st(SQL_BOOLEAN), j->cond, x, x->line, x->col);
}

/* ---- the entry ---- */

int sql__bind(qctx *q, ast_query *ast, plan **out, err *e, sql_pos *pos)
{
  binder B = {.q = q, .a = q->a, .e = e, .pos = pos, .clause = "SELECT"};
  int rc = sql__bind_query(&B, ast, NULL, out);
  if (rc < 0)
    return rc;
  sql__plan_prune(*out, q->a);
  return 0;
}
