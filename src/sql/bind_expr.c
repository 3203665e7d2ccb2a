/* sql/bind_expr.c -- the binder's names and expressions: scopes and name
 * resolution, literals, operators, function calls, aggregates, windows,
 * CASE, CAST, IN, LIKE and subqueries in expressions.
 *
 * Why apart: what a name means and what type an expression has are the
 * same questions in every clause; SELECT, FROM and the rewrites ask them
 * through sql__bind_expr() with a scope and a mode.
 *
 * Invariants:
 *   (1) Every bexpr is typed; operands of an operator have been coerced to
 *       one type (casts are explicit nodes), so the executor never guesses.
 *   (2) An error points at the first token of the offending construct and
 *       says what was expected (with the nearest name for unknown columns
 *       and functions).
 *   (3) A name resolves in the innermost scope that has it; a name found
 *       only in an outer scope sets B->corr_hit and is an error that the
 *       caller may turn into a decorrelation (rewrite.c).
 *   (4) Aggregates are bound only with M_AGG in the mode, window calls only
 *       with M_WIN; elsewhere they are errors naming B->clause.
 *   (5) Constant subtrees are folded as they are built (sql__fold()).
 *
 * Start reading at sql__bind_expr().
 */
#include "bind_internal.h"
#include "base/text.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- scopes ---- */

scope *sql__scope_new(binder *B, int n, scope *outer)
{
  scope *s = arena_alloc(B->a, sizeof *s);
  s->cols = arena_alloc(B->a, sizeof(scol) * (size_t)(n > 0 ? n : 1));
  s->n = n;
  s->outer = outer;
  return s;
}

scope *sql__scope_of_plan(binder *B, plan *p, const char *alias, scope *outer)
{
  scope *s = sql__scope_new(B, p->ncols, outer);
  for (int i = 0; i < p->ncols; i++) {
    s->cols[i].table = alias;
    s->cols[i].name = p->cols[i].name;
    s->cols[i].type = p->cols[i].type;
  }
  return s;
}

bool sql__name_eq(const char *a, const char *b)
{
  return a != NULL && b != NULL && str_ieq(a, b);
}

/* -1 not found, -2 ambiguous */
int sql__scope_find(scope *s, const char *qual, const char *name, bool any_hidden)
{
  int found = -1;
  for (int i = 0; i < s->n; i++) {
    scol *c = &s->cols[i];
    if (!sql__name_eq(c->name, name))
      continue;
    if (qual != NULL && !sql__name_eq(c->table, qual))
      continue;
    if (qual == NULL && c->hidden && !any_hidden && name[0] != '$')
      continue;
    if (found >= 0)
      return -2;
    found = i;
  }
  return found;
}

bool sql__scope_has_table(scope *s, const char *qual)
{
  for (int i = 0; i < s->n; i++)
    if (sql__name_eq(s->cols[i].table, qual))
      return true;
  return false;
}

int sql__unknown_column(binder *B, ast_expr *x, scope *sc)
{
  const char *best = NULL;
  int bestd = 99;
  for (scope *s = sc; s != NULL; s = s->outer) {
    for (int i = 0; i < s->n; i++) {
      if (s->cols[i].hidden || s->cols[i].name == NULL)
        continue;
      if (x->qual != NULL && !sql__name_eq(s->cols[i].table, x->qual))
        continue;
      int d = sql__levenshtein(x->name, s->cols[i].name);
      if (d < bestd) {
        bestd = d;
        best = s->cols[i].name;
      }
    }
  }
  int limit = (int)strlen(x->name) / 3 + 1;
  if (limit < 2)
    limit = 2;
  if (x->qual != NULL && !sql__scope_has_table(sc, x->qual))
    return sql__errx(B, x->line, x->col, "unknown table '%s' in '%s.%s'", x->qual, x->qual,
                     x->name);
  if (best != NULL && bestd <= limit) {
    if (x->qual != NULL)
      return sql__errx(B, x->line, x->col, "unknown column '%s.%s' (did you mean '%s'?)", x->qual,
                       x->name, best);
    return sql__errx(B, x->line, x->col, "unknown column '%s' (did you mean '%s'?)", x->name, best);
  }
  if (x->qual != NULL)
    return sql__errx(B, x->line, x->col, "unknown column '%s.%s'", x->qual, x->name);
  return sql__errx(B, x->line, x->col, "unknown column '%s'", x->name);
}

static void free_valset(void *p)
{
  sql__valset_free(p);
}

static void free_like(void *p)
{
  sql__like_free(p);
}

/* ---- literals ---- */

static int bind_literal(binder *B, ast_expr *x, bexpr **out)
{
  bexpr *c = sql__bx_new(B, BX_CONST, sql__st(SQL_NULL), x->line, x->col);
  switch (x->kind) {
  case EX_NULL:
    c->v.null = true;
    break;
  case EX_BOOL:
    c->type = sql__st(SQL_BOOLEAN);
    c->v.i = x->ival;
    break;
  case EX_INT: {
    int64_t v;
    if (!fmt_parse_i64(x->text, strlen(x->text), &v)) {
      double d;
      fmt_parse_f64(x->text, strlen(x->text), &d);
      c->type = sql__st(SQL_DOUBLE);
      c->v.f = d;
      break;
    }
    c->type = sql__st(v >= INT32_MIN && v <= INT32_MAX ? SQL_INTEGER : SQL_BIGINT);
    c->v.i = v;
    break;
  }
  case EX_NUMBER: {
    const char *t = x->text;
    const char *dot = strchr(t, '.');
    int scale = dot ? (int)strlen(dot + 1) : 0;
    int digits = 0;
    for (const char *p = t; *p; p++)
      if (*p >= '0' && *p <= '9')
        digits++;
    /* strip leading zeros from the precision */
    for (const char *p = t; *p == '0' || *p == '-' || *p == '.'; p++)
      if (*p == '0' && digits > scale)
        digits--;
    if (digits < scale)
      digits = scale;
    if (digits == 0)
      digits = 1;
    if (digits > 18) {
      c->type = sql__st(SQL_DOUBLE);
      fmt_parse_f64(t, strlen(t), &c->v.f);
      break;
    }
    c->type = (stype){SQL_DECIMAL, digits, scale};
    char msg[128];
    value sv = {.s = {t, strlen(t)}};
    value r;
    strheap h = {0};
    if (!sql__cast_value(sql__st(SQL_VARCHAR), c->type, sv, &r, &h, msg, sizeof msg)) {
      strheap_release(&h);
      return sql__errx(B, x->line, x->col, "invalid number '%s'", t);
    }
    strheap_release(&h);
    c->v = r;
    break;
  }
  case EX_FLOAT:
    c->type = sql__st(SQL_DOUBLE);
    fmt_parse_f64(x->text, strlen(x->text), &c->v.f);
    break;
  case EX_STRING:
    c->type = sql__st(SQL_VARCHAR);
    c->v.s.ptr = x->text;
    c->v.s.len = strlen(x->text);
    break;
  case EX_TYPED: {
    size_t n = strlen(x->text);
    const char *p = x->text;
    while (n > 0 && *p == ' ') {
      p++;
      n--;
    }
    while (n > 0 && p[n - 1] == ' ')
      n--;
    c->type = sql__st(x->type.type);
    bool ok = x->type.type == SQL_DATE ? fmt_parse_date(p, n, &c->v.i)
                                       : fmt_parse_timestamp(p, n, &c->v.i);
    if (!ok)
      return sql__errx(B, x->line, x->col, "invalid %s literal '%s'",
                       x->type.type == SQL_DATE ? "DATE" : "TIMESTAMP", x->text);
    c->type = sql__st(x->type.type);
    break;
  }
  case EX_INTERVAL: {
    const char *t = x->text;
    bool neg = x->neg;
    while (*t == ' ')
      t++;
    if (*t == '-') {
      neg = !neg;
      t++;
    }
    const char *u = x->unit;
    bool ym = !strcmp(u, "year") || !strcmp(u, "month") || !strcmp(u, "quarter");
    if (x->op != NULL && ym) {
      /* '1-2' YEAR TO MONTH */
      int y = 0, m = 0;
      if (sscanf(t, "%d-%d", &y, &m) != 2)
        return sql__errx(B, x->line, x->col, "invalid interval '%s'", x->text);
      c->type = sql__st(SQL_INTERVAL_YM);
      c->v.i = (int64_t)y * 12 + m;
    } else if (ym) {
      int64_t v;
      if (!fmt_parse_i64(t, strlen(t), &v))
        return sql__errx(B, x->line, x->col, "invalid interval '%s'", x->text);
      c->type = sql__st(SQL_INTERVAL_YM);
      c->v.i = !strcmp(u, "year") ? v * 12 : !strcmp(u, "quarter") ? v * 3 : v;
    } else {
      double v;
      int64_t us;
      if (x->op != NULL) {
        /* '1 02:03:04' DAY TO SECOND, or 'HH:MM:SS' */
        int d = 0, h = 0, mi = 0;
        double s = 0;
        if (sscanf(t, "%d %d:%d:%lf", &d, &h, &mi, &s) < 2 &&
            sscanf(t, "%d:%d:%lf", &h, &mi, &s) < 2)
          return sql__errx(B, x->line, x->col, "invalid interval '%s'", x->text);
        us = (((int64_t)d * 24 + h) * 60 + mi) * 60000000LL + (int64_t)llround(s * 1e6);
      } else {
        if (!fmt_parse_f64(t, strlen(t), &v))
          return sql__errx(B, x->line, x->col, "invalid interval '%s'", x->text);
        double mul = !strcmp(u, "week")     ? 7 * 86400e6
                     : !strcmp(u, "day")    ? 86400e6
                     : !strcmp(u, "hour")   ? 3600e6
                     : !strcmp(u, "minute") ? 60e6
                     : !strcmp(u, "second") ? 1e6
                                            : 1e3;
        us = (int64_t)llround(v * mul);
      }
      c->type = sql__st(SQL_INTERVAL_DS);
      c->v.i = us;
    }
    if (neg)
      c->v.i = -c->v.i;
    break;
  }
  default:
    return sql__errx(B, x->line, x->col, "not a literal");
  }
  *out = c;
  return 0;
}

/* ---- aggregates and windows ---- */

bool sql__ast_has_agg(ast_expr *x)
{
  if (x == NULL)
    return false;
  if (x->kind == EX_FUNC && x->over == NULL && sql__agg_lookup(x->name) >= 0)
    return true;
  if (x->kind == EX_SUBQUERY || x->kind == EX_EXISTS)
    return false;
  for (int i = 0; i < x->nargs; i++)
    if (sql__ast_has_agg(x->args[i]))
      return true;
  if (x->over != NULL) {
    for (int i = 0; i < x->over->npartition; i++)
      if (sql__ast_has_agg(x->over->partition[i]))
        return true;
    for (int i = 0; i < x->over->norder; i++)
      if (sql__ast_has_agg(x->over->order[i].expr))
        return true;
  }
  return false;
}

static int bind_agg(binder *B, ast_expr *x, scope *sc, int mode, bexpr **out)
{
  int fn = sql__agg_lookup(x->name);
  if (!(mode & M_AGG))
    return sql__errx(B, x->line, x->col, "aggregate function '%s' is not allowed in %s", x->name,
                     B->clause);
  aggcall *ag = arena_alloc(B->a, sizeof *ag);
  ag->fn = fn;
  ag->distinct = x->distinct;
  int rc;
  /* arguments cannot hold aggregates (nor windows) */
  if (x->star) {
    if (fn != AGG_COUNT)
      return sql__errx(B, x->line, x->col, "'%s(*)' is not a function; only count(*)", x->name);
    ag->fn = AGG_COUNT_STAR;
  } else {
    int want = (fn == AGG_MAX_BY || fn == AGG_MIN_BY) ? 2 : 1;
    if (fn == AGG_COUNT && x->nargs == 0) {
      ag->fn = AGG_COUNT_STAR;
    } else if (x->nargs != want) {
      return sql__errx(B, x->line, x->col, "function '%s' takes %d argument%s, got %d", x->name,
                       want, want > 1 ? "s" : "", x->nargs);
    } else {
      for (int i = 0; i < x->nargs; i++) {
        if (sql__ast_has_agg(x->args[i]))
          return sql__errx(B, x->args[i]->line, x->args[i]->col,
                           "cannot nest aggregate functions");
      }
      if ((rc = sql__bind_expr(B, x->args[0], sc, 0, &ag->arg)) < 0)
        return rc;
      if (want == 2 && (rc = sql__bind_expr(B, x->args[1], sc, 0, &ag->arg2)) < 0)
        return rc;
    }
  }
  if (x->filter != NULL) {
    if ((rc = sql__bind_expr(B, x->filter, sc, 0, &ag->filter)) < 0)
      return rc;
    if ((rc = sql__need_bool(B, &ag->filter, "FILTER condition")) < 0)
      return rc;
  }
  stype at = ag->arg != NULL ? ag->arg->type : sql__st(SQL_NULL);
  char tn[48];
  switch (ag->fn) {
  case AGG_COUNT_STAR:
  case AGG_COUNT:
  case AGG_APPROX_DISTINCT:
    ag->type = sql__st(SQL_BIGINT);
    break;
  case AGG_COUNT_IF:
    if ((rc = sql__need_bool(B, &ag->arg, "count_if argument")) < 0)
      return rc;
    ag->type = sql__st(SQL_BIGINT);
    break;
  case AGG_SUM:
    if (at.t == SQL_NULL) {
      ag->arg = sql__bind_cast(B->q, ag->arg, sql__st(SQL_BIGINT));
      at = ag->arg->type;
    }
    if (sql__stype_integer(at.t))
      ag->type = sql__st(SQL_BIGINT);
    else if (at.t == SQL_DECIMAL)
      ag->type = (stype){SQL_DECIMAL, 18, at.scale};
    else if (at.t == SQL_DOUBLE)
      ag->type = sql__st(SQL_DOUBLE);
    else if (at.t == SQL_INTERVAL_DS || at.t == SQL_INTERVAL_YM)
      ag->type = at;
    else
      return sql__errx(B, x->line, x->col, "function 'sum' cannot be applied to %s",
                       sql__stype_name(at, tn, sizeof tn));
    break;
  case AGG_AVG:
    if (at.t == SQL_NULL) {
      ag->arg = sql__bind_cast(B->q, ag->arg, sql__st(SQL_DOUBLE));
      at = ag->arg->type;
    }
    if (sql__stype_integer(at.t) || at.t == SQL_DOUBLE)
      ag->type = sql__st(SQL_DOUBLE);
    else if (at.t == SQL_DECIMAL)
      ag->type = at;
    else if (at.t == SQL_INTERVAL_DS)
      ag->type = at;
    else
      return sql__errx(B, x->line, x->col, "function 'avg' cannot be applied to %s",
                       sql__stype_name(at, tn, sizeof tn));
    break;
  case AGG_STDDEV_SAMP:
  case AGG_STDDEV_POP:
  case AGG_VAR_SAMP:
  case AGG_VAR_POP:
    if (!sql__stype_numeric(at.t) && at.t != SQL_NULL)
      return sql__errx(B, x->line, x->col, "function '%s' cannot be applied to %s", x->name,
                       sql__stype_name(at, tn, sizeof tn));
    ag->arg = sql__bind_cast(B->q, ag->arg, sql__st(SQL_DOUBLE));
    ag->type = sql__st(SQL_DOUBLE);
    break;
  case AGG_BOOL_AND:
  case AGG_BOOL_OR:
    if ((rc = sql__need_bool(B, &ag->arg, "argument")) < 0)
      return rc;
    ag->type = sql__st(SQL_BOOLEAN);
    break;
  case AGG_MIN:
  case AGG_MAX:
  case AGG_ARBITRARY:
  case AGG_MAX_BY:
  case AGG_MIN_BY:
    ag->type = at;
    if (ag->type.t == SQL_NULL) {
      ag->arg = sql__bind_cast(B->q, ag->arg, sql__st(SQL_VARCHAR));
      ag->type = sql__st(SQL_VARCHAR);
    }
    break;
  }
  bexpr *r = sql__bx_new(B, BX_AGG, ag->type, x->line, x->col);
  r->agg = ag;
  r->name = x->name;
  *out = r;
  return 0;
}

static int bind_window(binder *B, ast_expr *x, scope *sc, int mode, bexpr **out)
{
  if (!(mode & M_WIN))
    return sql__errx(B, x->line, x->col, "window function '%s' is not allowed in %s", x->name,
                     B->clause);
  wincall *w = arena_alloc(B->a, sizeof *w);
  w->arg = -1;
  w->deflt = -1;
  int wf = sql__win_lookup(x->name);
  int af = sql__agg_lookup(x->name);
  int rc;
  /* arguments are bound as expressions; the WINDOW builder turns them
     into columns. They travel in a BX_WIN node's args:
       args[0..nargs)                          function arguments
       then partition exprs, then order exprs  */
  int npart = x->over->npartition;
  int nord = x->over->norder;
  bexpr *r = sql__bx_new(B, BX_WIN, sql__st(SQL_BIGINT), x->line, x->col);
  r->win = w;
  r->name = x->name;
  int nfargs = x->star ? 0 : x->nargs;
  r->nargs = nfargs + npart + nord;
  r->args = sql__args_new(B, r->nargs);
  int inner_mode = mode & M_AGG;
  for (int i = 0; i < nfargs; i++)
    if ((rc = sql__bind_expr(B, x->args[i], sc, inner_mode, &r->args[i])) < 0)
      return rc;
  for (int i = 0; i < npart; i++)
    if ((rc = sql__bind_expr(B, x->over->partition[i], sc, inner_mode, &r->args[nfargs + i])) < 0)
      return rc;
  w->norder = nord;
  w->order = arena_alloc(B->a, sizeof(sortkey) * (size_t)(nord > 0 ? nord : 1));
  for (int i = 0; i < nord; i++) {
    ast_order *o = &x->over->order[i];
    if ((rc = sql__bind_expr(B, o->expr, sc, inner_mode, &r->args[nfargs + npart + i])) < 0)
      return rc;
    w->order[i].desc = o->desc;
    /* Presto: NULLS LAST by default for both directions */
    w->order[i].nulls_first = o->nulls == 1;
  }
  w->npart = npart;
  w->has_frame = x->over->has_frame;
  w->rows = x->over->rows;
  w->start_kind = x->over->start_kind;
  w->start_n = x->over->start_n;
  w->end_kind = x->over->end_kind;
  w->end_n = x->over->end_n;
  char tn[48];
  if (wf >= 0) {
    w->fn = wf;
    switch (wf) {
    case WIN_ROW_NUMBER:
    case WIN_RANK:
    case WIN_DENSE_RANK:
      if (nfargs != 0)
        return sql__errx(B, x->line, x->col, "function '%s' takes no arguments", x->name);
      w->type = sql__st(SQL_BIGINT);
      break;
    case WIN_PERCENT_RANK:
    case WIN_CUME_DIST:
      if (nfargs != 0)
        return sql__errx(B, x->line, x->col, "function '%s' takes no arguments", x->name);
      w->type = sql__st(SQL_DOUBLE);
      break;
    case WIN_NTILE:
      if (nfargs != 1 || r->args[0]->kind != BX_CONST || !sql__stype_integer(r->args[0]->type.t))
        return sql__errx(B, x->line, x->col, "function 'ntile' takes one integer constant");
      w->offset = r->args[0]->v.i;
      if (w->offset <= 0)
        return sql__errx(B, x->line, x->col, "ntile's argument must be positive");
      w->type = sql__st(SQL_BIGINT);
      break;
    case WIN_LAG:
    case WIN_LEAD:
      if (nfargs < 1 || nfargs > 3)
        return sql__errx(B, x->line, x->col, "function '%s' takes 1 to 3 arguments", x->name);
      w->offset = 1;
      if (nfargs >= 2) {
        if (r->args[1]->kind != BX_CONST || !sql__stype_integer(r->args[1]->type.t))
          return sql__errx(B, r->args[1]->line, r->args[1]->col,
                           "the offset of '%s' must be an integer constant", x->name);
        w->offset = r->args[1]->v.i;
      }
      w->type = r->args[0]->type;
      if (nfargs == 3 && (rc = sql__unify2(B, &r->args[0], &r->args[2], x->name, x->line,
                                           x->col)) < 0)
        return rc;
      w->type = r->args[0]->type;
      break;
    case WIN_FIRST_VALUE:
    case WIN_LAST_VALUE:
      if (nfargs != 1)
        return sql__errx(B, x->line, x->col, "function '%s' takes 1 argument", x->name);
      w->type = r->args[0]->type;
      break;
    case WIN_NTH_VALUE:
      if (nfargs != 2 || r->args[1]->kind != BX_CONST)
        return sql__errx(B, x->line, x->col, "function 'nth_value' takes a value and a constant");
      w->offset = r->args[1]->v.i;
      w->type = r->args[0]->type;
      break;
    }
  } else if (af >= 0) {
    w->fn = WIN_AGG;
    /* type it like the aggregate */
    ast_expr tmp = *x;
    tmp.over = NULL;
    tmp.filter = NULL;
    bexpr *ab;
    if ((rc = bind_agg(B, &tmp, sc, M_AGG | (mode & M_AGG), &ab)) < 0)
      return rc;
    w->agg = *ab->agg;
    if (w->agg.distinct)
      return sql__errx(B, x->line, x->col, "DISTINCT in window aggregates is not supported");
    if (w->agg.fn == AGG_MAX_BY || w->agg.fn == AGG_MIN_BY || w->agg.fn == AGG_APPROX_DISTINCT)
      return sql__errx(B, x->line, x->col, "'%s' is not supported as a window function", x->name);
    w->type = w->agg.type;
    /* the aggregate's (possibly cast) argument is the window's argument */
    if (nfargs >= 1 && w->agg.arg != NULL)
      r->args[0] = w->agg.arg;
  } else {
    return sql__errx(B, x->line, x->col, "'%s' is not a window function", x->name);
  }
  (void)tn;
  r->type = w->type;
  *out = r;
  return 0;
}

/* ---- expressions ---- */

static int cmp_op(const char *op)
{
  if (!strcmp(op, "="))
    return CMP_EQ;
  if (!strcmp(op, "<>"))
    return CMP_NE;
  if (!strcmp(op, "<"))
    return CMP_LT;
  if (!strcmp(op, "<="))
    return CMP_LE;
  if (!strcmp(op, ">"))
    return CMP_GT;
  return CMP_GE;
}

static int bind_compare(binder *B, int op, const char *opname, bexpr *a, bexpr *b, int line,
                        int col, bexpr **out)
{
  int rc = sql__unify2(B, &a, &b, opname, line, col);
  if (rc < 0)
    return rc;
  *out = sql__fold(B, sql__bx2(B, BX_CMP, sql__st(SQL_BOOLEAN), a, b, line, col));
  (*out)->op = op;
  return 0;
}

static int bind_arith(binder *B, ast_expr *x, bexpr *a, bexpr *b, bexpr **out)
{
  int op = x->op[0];
  stype ta = a->type, tb = b->type;
  char t1[48], t2[48];
  /* date and time arithmetic goes through functions */
  bool ta_time = ta.t == SQL_DATE || ta.t == SQL_TIMESTAMP;
  bool tb_time = tb.t == SQL_DATE || tb.t == SQL_TIMESTAMP;
  bool ta_iv = ta.t == SQL_INTERVAL_DS || ta.t == SQL_INTERVAL_YM;
  bool tb_iv = tb.t == SQL_INTERVAL_DS || tb.t == SQL_INTERVAL_YM;
  if ((ta_time && tb_iv && (op == '+' || op == '-')) || (ta_iv && tb_time && op == '+')) {
    if (ta_iv) {
      bexpr *t = a;
      a = b;
      b = t;
    }
    const func_def *fd = sql__func_find(op == '+' ? "$time_plus" : "$time_minus");
    bexpr *f = sql__bx2(B, BX_FUNC, a->type, a, b, x->line, x->col);
    f->fn = fd;
    if (a->type.t == SQL_DATE && b->type.t == SQL_INTERVAL_DS) {
      /* date + hours: Presto keeps DATE only for day multiples; we use timestamp */
      f->args[0] = sql__bind_cast(B->q, a, sql__st(SQL_TIMESTAMP));
      f->type = sql__st(SQL_TIMESTAMP);
      if (b->kind == BX_CONST && !b->v.null && b->v.i % 86400000000LL == 0) {
        f->args[0] = a;
        f->type = sql__st(SQL_DATE);
      }
    }
    *out = sql__fold(B, f);
    return 0;
  }
  if (ta_time && tb_time && op == '-') {
    bexpr *aa = sql__bind_cast(B->q, a, sql__st(SQL_TIMESTAMP));
    bexpr *bb = sql__bind_cast(B->q, b, sql__st(SQL_TIMESTAMP));
    bexpr *f = sql__bx2(B, BX_FUNC, sql__st(SQL_INTERVAL_DS), aa, bb, x->line, x->col);
    f->fn = sql__func_find("$time_diff");
    *out = sql__fold(B, f);
    return 0;
  }
  if (ta_iv && tb_iv && ta.t == tb.t && (op == '+' || op == '-')) {
    bexpr *r = sql__bx2(B, BX_ARITH, ta, a, b, x->line, x->col);
    r->op = op;
    *out = sql__fold(B, r);
    return 0;
  }
  if (ta_iv && sql__stype_numeric(tb.t) && (op == '*' || op == '/')) {
    bexpr *f = sql__bx2(B, BX_FUNC, ta, a, sql__bind_cast(B->q, b, sql__st(SQL_DOUBLE)), x->line, x->col);
    f->fn = sql__func_find(op == '*' ? "$interval_mul" : "$interval_div");
    *out = sql__fold(B, f);
    return 0;
  }
  if (sql__str_literal(a) && sql__stype_numeric(tb.t))
    a = sql__fold(B, sql__bind_cast(B->q, a, tb.t == SQL_DECIMAL ? sql__st(SQL_DOUBLE) : tb));
  if (sql__str_literal(b) && sql__stype_numeric(ta.t))
    b = sql__fold(B, sql__bind_cast(B->q, b, ta.t == SQL_DECIMAL ? sql__st(SQL_DOUBLE) : ta));
  if (a->type.t == SQL_NULL)
    a = sql__bind_cast(B->q, a, b->type.t == SQL_NULL ? sql__st(SQL_INTEGER) : b->type);
  if (b->type.t == SQL_NULL)
    b = sql__bind_cast(B->q, b, a->type);
  ta = a->type;
  tb = b->type;
  if (!sql__stype_numeric(ta.t) || !sql__stype_numeric(tb.t))
    return sql__errx(B, x->line, x->col, "type mismatch: cannot apply '%s' to %s and %s", x->op,
                     sql__stype_name(ta, t1, sizeof t1), sql__stype_name(tb, t2, sizeof t2));
  stype rt;
  if (ta.t == SQL_DOUBLE || tb.t == SQL_DOUBLE) {
    rt = sql__st(SQL_DOUBLE);
    a = sql__bind_cast(B->q, a, rt);
    b = sql__bind_cast(B->q, b, rt);
  } else if (ta.t == SQL_DECIMAL || tb.t == SQL_DECIMAL) {
    stype da = ta.t == SQL_DECIMAL ? ta
                                   : (stype){SQL_DECIMAL, sql__int_rank(ta.t) == 3 ? 18 : 10, 0};
    stype db = tb.t == SQL_DECIMAL ? tb
                                   : (stype){SQL_DECIMAL, sql__int_rank(tb.t) == 3 ? 18 : 10, 0};
    a = sql__bind_cast(B->q, a, da);
    b = sql__bind_cast(B->q, b, db);
    if (op == '+' || op == '-' || op == '%') {
      int s = da.scale > db.scale ? da.scale : db.scale;
      int ip = (da.prec - da.scale > db.prec - db.scale ? da.prec - da.scale
                                                        : db.prec - db.scale) + 1;
      if (ip + s > 18)
        ip = 18 - s;
      rt = (stype){SQL_DECIMAL, ip + s, s};
      a = sql__bind_cast(B->q, a, (stype){SQL_DECIMAL, 18, s});
      b = sql__bind_cast(B->q, b, (stype){SQL_DECIMAL, 18, s});
      a->type.prec = 18;
      b->type.prec = 18;
    } else if (op == '*') {
      int s = da.scale + db.scale;
      if (s > 18) {
        rt = sql__st(SQL_DOUBLE);
        a = sql__bind_cast(B->q, a, rt);
        b = sql__bind_cast(B->q, b, rt);
      } else {
        rt = (stype){SQL_DECIMAL, 18, s};
      }
    } else {
      int s = da.scale > db.scale ? da.scale : db.scale;
      rt = (stype){SQL_DECIMAL, 18, s};
    }
  } else {
    rt = sql__st(sql__int_rank(ta.t) >= sql__int_rank(tb.t) ? ta.t : tb.t);
    if (rt.t == SQL_SMALLINT)
      rt = sql__st(SQL_INTEGER);
  }
  bexpr *r = sql__bx2(B, BX_ARITH, rt, a, b, x->line, x->col);
  r->op = op;
  *out = sql__fold(B, r);
  return 0;
}

int sql__bind_subquery_plan(binder *B, ast_query *sub, scope *sc, plan **out, int line,
                            int col)
{
  (void)line;
  (void)col;
  B->depth++;
  const char *clause = B->clause;
  int rc = sql__bind_query(B, sub, sc, out);
  B->clause = clause;
  B->depth--;
  if (rc == 0)
    sql__plan_prune(*out, B->a);
  return rc;
}

static int bind_func(binder *B, ast_expr *x, scope *sc, int mode, bexpr **out)
{
  int rc;
  const char *name = x->name;
  if (x->over != NULL)
    return bind_window(B, x, sc, mode, out);
  if (sql__agg_lookup(name) >= 0)
    return bind_agg(B, x, sc, mode, out);
  if (sql__win_lookup(name) >= 0)
    return sql__errx(B, x->line, x->col, "window function '%s' requires an OVER clause", name);
  if (x->distinct || x->star)
    return sql__errx(B, x->line, x->col, "'%s' is not an aggregate function", name);
  if (x->filter != NULL)
    return sql__errx(B, x->line, x->col, "FILTER is only allowed with aggregate functions");
  bexpr **args = sql__args_new(B, x->nargs);
  for (int i = 0; i < x->nargs; i++)
    if ((rc = sql__bind_expr(B, x->args[i], sc, mode, &args[i])) < 0)
      return rc;
  int n = x->nargs;
  /* forms with their own nodes */
  if (!strcmp(name, "coalesce")) {
    if (n < 1)
      return sql__errx(B, x->line, x->col, "function 'coalesce' takes at least 1 argument");
    stype t = args[0]->type;
    for (int i = 1; i < n; i++) {
      stype u;
      if (sql__str_literal(args[i]) && t.t != SQL_VARCHAR && t.t != SQL_NULL)
        continue;
      if (!sql__common_type(t, args[i]->type, &u)) {
        char t1[48], t2[48];
        return sql__errx(B, args[i]->line, args[i]->col,
                         "coalesce arguments must have one type: %s and %s",
                         sql__stype_name(t, t1, sizeof t1), sql__stype_name(args[i]->type, t2, sizeof t2));
      }
      t = u;
    }
    for (int i = 0; i < n; i++)
      args[i] = sql__fold(B, sql__bind_cast(B->q, args[i], t));
    bexpr *r = sql__bx_new(B, BX_COALESCE, t, x->line, x->col);
    r->args = args;
    r->nargs = n;
    r->name = name;
    *out = r;
    return 0;
  }
  if (!strcmp(name, "nullif") || !strcmp(name, "if")) {
    bool isif = name[0] == 'i';
    if ((!isif && n != 2) || (isif && (n < 2 || n > 3)))
      return sql__errx(B, x->line, x->col, "function '%s' takes %s arguments", name,
                       isif ? "2 or 3" : "2");
    bexpr *r = sql__bx_new(B, BX_CASE, sql__st(SQL_NULL), x->line, x->col);
    r->name = name;
    if (isif) {
      if ((rc = sql__need_bool(B, &args[0], "if condition")) < 0)
        return rc;
      bexpr *th = args[1];
      bexpr *el = n == 3 ? args[2] : NULL;
      stype t = th->type;
      if (el != NULL) {
        if ((rc = sql__unify2(B, &th, &el, "if", x->line, x->col)) < 0)
          return rc;
        t = th->type;
      }
      r->type = t;
      r->nargs = el != NULL ? 3 : 2;
      r->args = sql__args_new(B, 3);
      r->args[0] = args[0];
      r->args[1] = th;
      if (el != NULL)
        r->args[2] = el;
      r->has_else = el != NULL;
    } else {
      bexpr *a = args[0], *b = args[1];
      bexpr *cmp;
      if ((rc = bind_compare(B, CMP_EQ, "nullif", a, b, x->line, x->col, &cmp)) < 0)
        return rc;
      bexpr *nul = sql__bx_new(B, BX_CONST, args[0]->type, x->line, x->col);
      nul->v.null = true;
      r->type = args[0]->type;
      r->nargs = 3;
      r->args = sql__args_new(B, 3);
      r->args[0] = cmp;
      r->args[1] = nul;
      r->args[2] = args[0];
      r->has_else = true;
    }
    *out = r;
    return 0;
  }
  if (!strcmp(name, "concat")) {
    if (n < 1)
      return sql__errx(B, x->line, x->col, "function 'concat' takes at least 1 argument");
    for (int i = 0; i < n; i++)
      args[i] = sql__fold(B, sql__bind_cast(B->q, args[i], sql__st(SQL_VARCHAR)));
    bexpr *r = sql__bx_new(B, BX_CONCAT, sql__st(SQL_VARCHAR), x->line, x->col);
    r->args = args;
    r->nargs = n;
    r->name = name;
    *out = sql__fold(B, r);
    return 0;
  }
  const func_def *fd = sql__func_find(name);
  if (fd == NULL || name[0] == '$') {
    const char *near = sql__func_nearest(name);
    if (near != NULL)
      return sql__errx(B, x->line, x->col, "unknown function '%s' (did you mean '%s'?)", name,
                       near);
    return sql__errx(B, x->line, x->col, "unknown function '%s'", name);
  }
  if (n < fd->min_args || n > fd->max_args) {
    if (fd->min_args == fd->max_args)
      return sql__errx(B, x->line, x->col, "function '%s' takes %d argument%s, got %d", name,
                       fd->min_args, fd->min_args == 1 ? "" : "s", n);
    return sql__errx(B, x->line, x->col, "function '%s' takes %d to %d arguments, got %d", name,
                     fd->min_args, fd->max_args, n);
  }
  bexpr *r = sql__bx_new(B, BX_FUNC, sql__st(SQL_NULL), x->line, x->col);
  r->fn = fd;
  r->args = args;
  r->nargs = n;
  r->name = name;
  if ((rc = fd->bind(B->q, r, B->e, B->pos)) < 0)
    return rc;
  *out = sql__fold(B, r);
  return 0;
}

static int bind_column(binder *B, ast_expr *x, scope *sc, bexpr **out)
{
  int i = sql__scope_find(sc, x->qual, x->name, false);
  if (i == -2)
    return sql__errx(B, x->line, x->col, "column '%s' is ambiguous", x->name);
  if (i >= 0) {
    bexpr *c = sql__bx_new(B, BX_COL, sc->cols[i].type, x->line, x->col);
    c->colno = i;
    c->name = sc->cols[i].name;
    *out = c;
    return 0;
  }
  for (scope *o = sc->outer; o != NULL; o = o->outer) {
    if (sql__scope_find(o, x->qual, x->name, false) >= 0) {
      B->corr_hit = true;
      return sql__errx(B, x->line, x->col,
                       "correlated subqueries are supported only as [NOT] EXISTS or IN in "
                       "WHERE ('%s' refers to the outer query)", x->name);
    }
  }
  return sql__unknown_column(B, x, sc);
}

int sql__bind_expr(binder *B, ast_expr *x, scope *sc, int mode, bexpr **out)
{
  int rc;
  if (++B->depth > SQL_MAX_DEPTH)
    return sql__errx(B, x->line, x->col, "expression nested too deeply");
  rc = 0;
  switch (x->kind) {
  case EX_COLUMN:
    rc = bind_column(B, x, sc, out);
    break;
  case EX_STAR:
    rc = sql__errx(B, x->line, x->col, "'*' is only allowed in a select list or count(*)");
    break;
  case EX_INT:
  case EX_NUMBER:
  case EX_FLOAT:
  case EX_STRING:
  case EX_BOOL:
  case EX_NULL:
  case EX_TYPED:
  case EX_INTERVAL:
    rc = bind_literal(B, x, out);
    break;
  case EX_BINARY: {
    bexpr *a, *b;
    if ((rc = sql__bind_expr(B, x->args[0], sc, mode, &a)) < 0)
      break;
    if ((rc = sql__bind_expr(B, x->args[1], sc, mode, &b)) < 0)
      break;
    const char *op = x->op;
    if (!strcmp(op, "and") || !strcmp(op, "or")) {
      if ((rc = sql__need_bool(B, &a, !strcmp(op, "and") ? "operand of AND" : "operand of OR")) < 0)
        break;
      if ((rc = sql__need_bool(B, &b, !strcmp(op, "and") ? "operand of AND" : "operand of OR")) < 0)
        break;
      *out = sql__fold(B, sql__bx2(B, op[0] == 'a' ? BX_AND : BX_OR, sql__st(SQL_BOOLEAN), a, b, x->line,
                                   x->col));
    } else if (!strcmp(op, "||")) {
      a = sql__bind_cast(B->q, a, sql__st(SQL_VARCHAR));
      b = sql__bind_cast(B->q, b, sql__st(SQL_VARCHAR));
      *out = sql__fold(B, sql__bx2(B, BX_CONCAT, sql__st(SQL_VARCHAR), a, b, x->line, x->col));
    } else if (strchr("=<>", op[0]) != NULL) {
      rc = bind_compare(B, cmp_op(op), op, a, b, x->line, x->col, out);
    } else {
      rc = bind_arith(B, x, a, b, out);
    }
    break;
  }
  case EX_UNARY: {
    bexpr *a;
    if ((rc = sql__bind_expr(B, x->args[0], sc, mode, &a)) < 0)
      break;
    if (!strcmp(x->op, "not")) {
      if ((rc = sql__need_bool(B, &a, "operand of NOT")) < 0)
        break;
      bexpr *r = sql__bx_new(B, BX_NOT, sql__st(SQL_BOOLEAN), x->line, x->col);
      r->args = sql__args_new(B, 1);
      r->args[0] = a;
      r->nargs = 1;
      *out = sql__fold(B, r);
    } else {
      if (a->type.t == SQL_NULL)
        a = sql__bind_cast(B->q, a, sql__st(SQL_INTEGER));
      if (!sql__stype_numeric(a->type.t) && a->type.t != SQL_INTERVAL_DS &&
          a->type.t != SQL_INTERVAL_YM) {
        char t[48];
        rc = sql__errx(B, x->line, x->col, "type mismatch: cannot negate %s",
                       sql__stype_name(a->type, t, sizeof t));
        break;
      }
      bexpr *r = sql__bx_new(B, BX_NEG, a->type, x->line, x->col);
      r->args = sql__args_new(B, 1);
      r->args[0] = a;
      r->nargs = 1;
      *out = sql__fold(B, r);
    }
    break;
  }
  case EX_FUNC:
    rc = bind_func(B, x, sc, mode, out);
    break;
  case EX_CASE: {
    int n = x->nargs;
    int first = x->has_operand ? 1 : 0;
    bexpr *opnd = NULL;
    if (x->has_operand && (rc = sql__bind_expr(B, x->args[0], sc, mode, &opnd)) < 0)
      break;
    int npairs = (n - first - (x->has_else ? 1 : 0)) / 2;
    bexpr *r = sql__bx_new(B, BX_CASE, sql__st(SQL_NULL), x->line, x->col);
    r->nargs = npairs * 2 + (x->has_else ? 1 : 0);
    r->args = sql__args_new(B, r->nargs);
    r->has_else = x->has_else;
    stype t = sql__st(SQL_NULL);
    for (int k = 0; k < npairs; k++) {
      bexpr *w, *th;
      ast_expr *wa = x->args[first + 2 * k];
      if ((rc = sql__bind_expr(B, wa, sc, mode, &w)) < 0)
        goto done;
      if (opnd != NULL) {
        if ((rc = bind_compare(B, CMP_EQ, "=", opnd, w, wa->line, wa->col, &w)) < 0)
          goto done;
      } else if ((rc = sql__need_bool(B, &w, "WHEN condition")) < 0) {
        goto done;
      }
      if ((rc = sql__bind_expr(B, x->args[first + 2 * k + 1], sc, mode, &th)) < 0)
        goto done;
      r->args[2 * k] = w;
      r->args[2 * k + 1] = th;
    }
    if (x->has_else &&
        (rc = sql__bind_expr(B, x->args[n - 1], sc, mode, &r->args[r->nargs - 1])) < 0)
      break;
    /* result type: common type of the branches (string literals follow) */
    for (int k = 0; k < r->nargs; k++) {
      bool is_then = (k % 2 == 1) || (x->has_else && k == r->nargs - 1);
      if (!is_then)
        continue;
      stype u;
      bexpr *v = r->args[k];
      if (sql__str_literal(v) && t.t != SQL_VARCHAR && t.t != SQL_NULL)
        continue;
      if (!sql__common_type(t, v->type, &u)) {
        char t1[48], t2[48];
        rc = sql__errx(B, v->line, v->col, "CASE branches have different types: %s and %s",
                       sql__stype_name(t, t1, sizeof t1), sql__stype_name(v->type, t2, sizeof t2));
        goto done;
      }
      t = u;
    }
    for (int k = 0; k < r->nargs; k++) {
      bool is_then = (k % 2 == 1) || (x->has_else && k == r->nargs - 1);
      if (is_then)
        r->args[k] = sql__fold(B, sql__bind_cast(B->q, r->args[k], t));
    }
    r->type = t;
    *out = r;
    break;
  }
  case EX_CAST: {
    bexpr *a;
    if ((rc = sql__bind_expr(B, x->args[0], sc, mode, &a)) < 0)
      break;
    stype to = {x->type.type, x->type.precision, x->type.scale};
    if (!sql__can_cast(a->type.t, to.t)) {
      char t1[48], t2[48];
      rc = sql__errx(B, x->line, x->col, "cannot cast %s to %s", sql__stype_name(a->type, t1, sizeof t1),
                     sql__stype_name(to, t2, sizeof t2));
      break;
    }
    bexpr *c = sql__bx_new(B, BX_CAST, to, x->line, x->col);
    c->args = sql__args_new(B, 1);
    c->args[0] = a;
    c->nargs = 1;
    c->try_cast = x->try_cast;
    c->name = a->name;
    *out = sql__fold(B, c);
    break;
  }
  case EX_IN: {
    bexpr *r = sql__bx_new(B, BX_IN, sql__st(SQL_BOOLEAN), x->line, x->col);
    r->nargs = x->nargs;
    r->args = sql__args_new(B, x->nargs);
    r->neg = x->neg;
    for (int k = 0; k < x->nargs; k++)
      if ((rc = sql__bind_expr(B, x->args[k], sc, mode, &r->args[k])) < 0)
        goto done;
    stype t = r->args[0]->type;
    for (int k = 1; k < x->nargs; k++) {
      stype u;
      bexpr *v = r->args[k];
      if (sql__str_literal(v) && t.t != SQL_VARCHAR && t.t != SQL_NULL)
        continue;
      if (!sql__common_type(t, v->type, &u)) {
        char t1[48], t2[48];
        rc = sql__errx(B, v->line, v->col, "type mismatch: IN list value of type %s for %s",
                       sql__stype_name(v->type, t1, sizeof t1), sql__stype_name(t, t2, sizeof t2));
        goto done;
      }
      t = u;
    }
    bool all_const = true;
    for (int k = 0; k < x->nargs; k++) {
      r->args[k] = sql__fold(B, sql__bind_cast(B->q, r->args[k], t));
      if (k > 0 && r->args[k]->kind != BX_CONST)
        all_const = false;
    }
    if (all_const) {
      valset *s = sql__valset_new(sql__phys(t.t));
      for (int k = 1; k < x->nargs; k++)
        sql__valset_add(s, r->args[k]->v);
      r->set = s;
      sql__exec_defer(B->q, free_valset, s);
    }
    *out = sql__fold(B, r);
    break;
  }
  case EX_IN_QUERY: {
    bexpr *a;
    if ((rc = sql__bind_expr(B, x->args[0], sc, mode, &a)) < 0)
      break;
    plan *sp;
    if ((rc = sql__bind_subquery_plan(B, x->sub, sc, &sp, x->line, x->col)) < 0)
      break;
    if (sp->ncols != 1) {
      rc = sql__errx(B, x->line, x->col, "subquery of IN must return one column, not %d",
                     sp->ncols);
      break;
    }
    stype t;
    if (!sql__common_type(a->type, sp->cols[0].type, &t)) {
      char t1[48], t2[48];
      rc = sql__errx(B, x->line, x->col, "type mismatch: %s IN (subquery of %s)",
                     sql__stype_name(a->type, t1, sizeof t1), sql__stype_name(sp->cols[0].type, t2,
                                                               sizeof t2));
      break;
    }
    a = sql__bind_cast(B->q, a, t);
    if (sp->cols[0].type.t != t.t || sp->cols[0].type.scale != t.scale) {
      plan *pr = sql__plan_new(B, P_PROJECT, 1);
      pr->child = sp;
      pr->exprs = sql__args_new(B, 1);
      pr->exprs[0] = sql__bind_cast(B->q, sql__bx_col(B->a, 0, sp->cols[0].type), t);
      pr->cols[0].name = sp->cols[0].name;
      pr->cols[0].type = t;
      sp = pr;
    }
    bexpr *r = sql__bx_new(B, BX_IN_SET, sql__st(SQL_BOOLEAN), x->line, x->col);
    r->args = sql__args_new(B, 1);
    r->args[0] = a;
    r->nargs = 1;
    r->sub = sp;
    r->neg = x->neg;
    *out = r;
    break;
  }
  case EX_EXISTS: {
    plan *sp;
    if ((rc = sql__bind_subquery_plan(B, x->sub, sc, &sp, x->line, x->col)) < 0)
      break;
    bexpr *r = sql__bx_new(B, BX_EXISTS, sql__st(SQL_BOOLEAN), x->line, x->col);
    r->sub = sp;
    r->neg = x->neg;
    *out = r;
    break;
  }
  case EX_SUBQUERY: {
    plan *sp;
    if ((rc = sql__bind_subquery_plan(B, x->sub, sc, &sp, x->line, x->col)) < 0)
      break;
    if (sp->ncols != 1) {
      rc = sql__errx(B, x->line, x->col, "scalar subquery must return one column, not %d",
                     sp->ncols);
      break;
    }
    bexpr *r = sql__bx_new(B, BX_SUBQ, sp->cols[0].type, x->line, x->col);
    r->sub = sp;
    r->name = sp->cols[0].name;
    *out = r;
    break;
  }
  case EX_BETWEEN: {
    bexpr *v, *lo, *hi;
    if ((rc = sql__bind_expr(B, x->args[0], sc, mode, &v)) < 0)
      break;
    if ((rc = sql__bind_expr(B, x->args[1], sc, mode, &lo)) < 0)
      break;
    if ((rc = sql__bind_expr(B, x->args[2], sc, mode, &hi)) < 0)
      break;
    bexpr *v2 = v;
    bexpr *c1, *c2;
    if ((rc = bind_compare(B, x->neg ? CMP_LT : CMP_GE, "BETWEEN", v, lo, x->line, x->col,
                           &c1)) < 0)
      break;
    if ((rc = bind_compare(B, x->neg ? CMP_GT : CMP_LE, "BETWEEN", v2, hi, x->line, x->col,
                           &c2)) < 0)
      break;
    *out = sql__fold(B, sql__bx2(B, x->neg ? BX_OR : BX_AND, sql__st(SQL_BOOLEAN), c1, c2, x->line,
                                 x->col));
    break;
  }
  case EX_LIKE: {
    bexpr *r = sql__bx_new(B, BX_LIKE, sql__st(SQL_BOOLEAN), x->line, x->col);
    r->nargs = x->nargs;
    r->args = sql__args_new(B, x->nargs);
    r->neg = x->neg;
    r->ilike = x->ilike;
    for (int k = 0; k < x->nargs; k++) {
      if ((rc = sql__bind_expr(B, x->args[k], sc, mode, &r->args[k])) < 0)
        goto done;
      if (r->args[k]->type.t != SQL_VARCHAR && r->args[k]->type.t != SQL_NULL) {
        char t[48];
        rc = sql__errx(B, r->args[k]->line, r->args[k]->col,
                       "type mismatch: LIKE expects varchar, got %s",
                       sql__stype_name(r->args[k]->type, t, sizeof t));
        goto done;
      }
      r->args[k] = sql__bind_cast(B->q, r->args[k], sql__st(SQL_VARCHAR));
    }
    bexpr *pat = r->args[1];
    bexpr *esc = x->nargs > 2 ? r->args[2] : NULL;
    if (pat->kind == BX_CONST && !pat->v.null && (esc == NULL || (esc->kind == BX_CONST &&
                                                                  !esc->v.null))) {
      char ec = 0;
      if (esc != NULL) {
        if (esc->v.s.len != 1) {
          rc = sql__errx(B, esc->line, esc->col, "ESCAPE must be one character");
          goto done;
        }
        ec = esc->v.s.ptr[0];
      }
      r->like = sql__like_compile(pat->v.s.ptr, pat->v.s.len, ec, x->ilike);
      sql__exec_defer(B->q, free_like, r->like);
    }
    *out = sql__fold(B, r);
    break;
  }
  case EX_IS_NULL: {
    bexpr *a;
    if ((rc = sql__bind_expr(B, x->args[0], sc, mode, &a)) < 0)
      break;
    bexpr *r = sql__bx_new(B, BX_ISNULL, sql__st(SQL_BOOLEAN), x->line, x->col);
    r->args = sql__args_new(B, 1);
    r->args[0] = a;
    r->nargs = 1;
    r->neg = x->neg;
    *out = sql__fold(B, r);
    break;
  }
  case EX_IS_DISTINCT: {
    bexpr *a, *b;
    if ((rc = sql__bind_expr(B, x->args[0], sc, mode, &a)) < 0)
      break;
    if ((rc = sql__bind_expr(B, x->args[1], sc, mode, &b)) < 0)
      break;
    if ((rc = sql__unify2(B, &a, &b, "IS DISTINCT FROM", x->line, x->col)) < 0)
      break;
    bexpr *r = sql__bx2(B, BX_DISTINCT, sql__st(SQL_BOOLEAN), a, b, x->line, x->col);
    r->neg = x->neg;
    *out = sql__fold(B, r);
    break;
  }
  case EX_EXTRACT: {
    static const char *const units[] = {"year", "quarter", "month", "week", "day",
                                        "day_of_month", "day_of_week", "dow", "day_of_year",
                                        "doy", "hour", "minute", "second", "year_of_week",
                                        NULL};
    bool ok = false;
    for (int k = 0; units[k]; k++)
      if (!strcmp(units[k], x->unit))
        ok = true;
    if (!ok) {
      rc = sql__errx(B, x->line, x->col, "unknown field '%s' in EXTRACT", x->unit);
      break;
    }
    ast_expr f = *x;
    f.kind = EX_FUNC;
    f.name = !strcmp(x->unit, "dow")            ? "day_of_week"
             : !strcmp(x->unit, "doy")          ? "day_of_year"
             : !strcmp(x->unit, "day_of_month") ? "day"
                                                : x->unit;
    rc = bind_func(B, &f, sc, mode, out);
    break;
  }
  default:
    rc = sql__errx(B, x->line, x->col, "unsupported expression");
  }
done:
  B->depth--;
  if (rc == 0 && (*out)->name == NULL && x->kind == EX_COLUMN)
    (*out)->name = x->name;
  return rc;
}
