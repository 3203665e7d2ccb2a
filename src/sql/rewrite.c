/* sql/rewrite.c -- the binder's rewrites of the plan: predicate pushdown,
 * decorrelation of subqueries, DISTINCT aggregates as a grouping, and
 * column pruning.
 *
 * Why apart from binding: these passes change the shape of a plan that is
 * already correct; keeping them here lets a reader see what the binder
 * means (bind_*.c) apart from how the plan is made cheaper to run.
 *
 * Invariants:
 *   (1) A rewrite never changes a query's result: a predicate moves below a
 *       join only to a side whose missing rows it cannot bring back (the
 *       preserved side of an outer join keeps it above); a correlated
 *       subquery becomes a join only in the forms whose meaning the join
 *       keeps (semi/anti for [NOT] EXISTS and IN, LEFT JOIN to the grouped
 *       subquery for a scalar aggregate, count giving 0).
 *   (2) WHERE conjuncts go as far down as they can: into the scans (filter
 *       pushdown), and equalities across an inner join become its keys.
 *   (3) After pruning, every node's `need`/`used` marks cover what its
 *       parent and its own expressions read; a projection's unneeded
 *       expressions are replaced by NULL constants, never evaluated.
 *
 * Start reading at sql__push_pred(), then sql__decorrelate() and sql__plan_prune().
 */
#include "bind_internal.h"

#include <string.h>

/* ---- predicate pushdown ---- */

/* replaces column references by the projection's expressions */
static bexpr *expr_subst(arena *a, const bexpr *x, bexpr **exprs)
{
  if (x->kind == BX_COL)
    return sql__bexpr_copy(a, exprs[x->colno]);
  bexpr *c = arena_alloc(a, sizeof *c);
  *c = *x;
  if (x->nargs > 0) {
    c->args = arena_alloc(a, sizeof(bexpr *) * (size_t)x->nargs);
    for (int i = 0; i < x->nargs; i++)
      c->args[i] = expr_subst(a, x->args[i], exprs);
  }
  return c;
}

/* Pushes predicate x (over p's output columns) as deep as it can go;
 * returns the plan to use in place of p. */
plan *sql__push_pred(binder *B, plan *p, bexpr *x)
{
  if (sql__expr_has_subquery(x))
    return sql__wrap_filter(B, p, x);
  switch (p->kind) {
  case P_SCAN:
    sql__add_pred(B, p, x);
    return p;
  case P_FILTER:
    p->child = sql__push_pred(B, p->child, x);
    return p;
  case P_PROJECT: {
    /* through a projection of a subquery or CTE: substitute */
    if (p->child->kind == P_VALUES)
      return sql__wrap_filter(B, p, x);
    bexpr *s = expr_subst(B->a, x, p->exprs);
    p->child = sql__push_pred(B, p->child, s);
    return p;
  }
  case P_JOIN: {
    int nl = p->child->ncols;
    int lo = -1, hi = -1;
    sql__expr_range(x, &lo, &hi);
    bool left_only = hi < nl;
    bool right_only = lo >= nl;
    if (lo < 0) {
      /* no column at all: a constant condition */
      left_only = true;
    }
    int jt = p->join;
    if (left_only && (jt == JN_INNER || jt == JN_CROSS || jt == JN_LEFT || jt == JN_SEMI ||
                      jt == JN_ANTI)) {
      p->child = sql__push_pred(B, p->child, x);
      return p;
    }
    if (right_only && (jt == JN_INNER || jt == JN_CROSS || jt == JN_RIGHT)) {
      bexpr *c = sql__bexpr_copy(B->a, x);
      sql__expr_shift(c, -nl);
      p->right = sql__push_pred(B, p->right, c);
      return p;
    }
    if (jt == JN_INNER || jt == JN_CROSS) {
      /* an equality across the sides becomes a key */
      if (sql__join_add_eq_key(B, p, x)) {
        p->join = JN_INNER;
        return p;
      }
      sql__join_add_cond(B, p, x);
      p->join = JN_INNER;
      return p;
    }
    return sql__wrap_filter(B, p, x);
  }
  default:
    return sql__wrap_filter(B, p, x);
  }
}

/* ---- decorrelation ---- */

void sql__ast_conjuncts(binder *B, ast_expr *x, ast_expr ***out, int *n, int *cap)
{
  if (x->kind == EX_BINARY && !strcmp(x->op, "and")) {
    sql__ast_conjuncts(B, x->args[0], out, n, cap);
    sql__ast_conjuncts(B, x->args[1], out, n, cap);
    return;
  }
  if (*n == *cap) {
    int nc = *cap ? *cap * 2 : 8;
    ast_expr **nv = arena_alloc(B->a, sizeof(ast_expr *) * (size_t)nc);
    if (*n)
      memcpy(nv, *out, sizeof(ast_expr *) * (size_t)*n);
    *out = nv;
    *cap = nc;
  }
  (*out)[(*n)++] = x;
}

bool sql__is_subquery_pred(ast_expr *x)
{
  if (x->kind == EX_UNARY && !strcmp(x->op, "not"))
    x = x->args[0];
  return x->kind == EX_EXISTS || (x->kind == EX_IN_QUERY && !x->neg);
}

/* binds x over inner scope ss alone (true), or reports it needs more */
static bool try_bind(binder *B, ast_expr *x, scope *ss, bexpr **out)
{
  scope *save = ss->outer;
  ss->outer = NULL;
  err saved = *B->e;
  sql_pos savedpos = B->pos != NULL ? *B->pos : (sql_pos){0, 0};
  int rc = sql__bind_expr(B, x, ss, 0, out);
  ss->outer = save;
  if (rc < 0) {
    *B->e = saved;
    if (B->pos != NULL)
      *B->pos = savedpos;
    return false;
  }
  return true;
}

/* [NOT] EXISTS (SELECT .. FROM t WHERE t.k = outer.k AND ...) and
 * x IN (SELECT y FROM t WHERE t.k = outer.k ...) as a semi / anti join on
 * the equalities; the other conditions filter t. */
int sql__decorrelate(binder *B, ast_expr *x, scope *sc, plan **p)
{
  bool neg = false;
  ast_expr *at = x;
  if (x->kind == EX_UNARY) {
    neg = true;
    x = x->args[0];
  }
  if (x->neg)
    neg = !neg;
  ast_query *sq = x->sub;
  if (sq->kind != Q_SELECT || sq->nctes > 0 || sq->norder > 0 || sq->limit != NULL ||
      sq->offset != NULL || sq->sel->ngroup > 0 || sq->sel->having != NULL ||
      sq->sel->from == NULL || sq->sel->distinct)
    return sql__errx(B, at->line, at->col,
                     "correlated subqueries are supported only as [NOT] EXISTS or IN over a plain "
                     "SELECT ... FROM ... WHERE");
  for (int i = 0; i < sq->sel->nitems; i++)
    if (sql__ast_has_agg(sq->sel->items[i].expr))
      return sql__errx(B, at->line, at->col,
                       "correlated subqueries with aggregates are not supported yet");
  plan *sp;
  scope *ss;
  int rc = sql__bind_from(B, sq->sel->from, NULL, &sp, &ss);
  if (rc < 0)
    return rc;
  ss->outer = sc;
  plan *j = sql__plan_new(B, P_JOIN, (*p)->ncols);
  j->join = neg ? JN_ANTI : JN_SEMI;
  memcpy(j->cols, (*p)->cols, sizeof(pcol) * (size_t)(*p)->ncols);
  if (x->kind == EX_IN_QUERY) {
    if (sq->sel->nitems != 1 || sq->sel->items[0].expr->kind == EX_STAR)
      return sql__errx(B, at->line, at->col, "subquery of IN must return one column");
    bexpr *l, *r;
    if ((rc = sql__bind_expr(B, x->args[0], sc, 0, &l)) < 0)
      return rc;
    if (!try_bind(B, sq->sel->items[0].expr, ss, &r))
      return sql__errx(
          B, at->line, at->col,
          "the selected value of a correlated IN subquery cannot refer to the outer query");
    if ((rc = sql__unify2(B, &l, &r, "IN", at->line, at->col)) < 0)
      return rc;
    sql__join_add_key(B, j, l, r);
  }
  if (sq->sel->where != NULL) {
    ast_expr **acs = NULL;
    int nac = 0, acap = 0;
    sql__ast_conjuncts(B, sq->sel->where, &acs, &nac, &acap);
    for (int a = 0; a < nac; a++) {
      ast_expr *c = acs[a];
      bexpr *b;
      if (try_bind(B, c, ss, &b)) {
        if ((rc = sql__need_bool(B, &b, "WHERE condition")) < 0)
          return rc;
        sp = sql__push_pred(B, sp, b);
        continue;
      }
      bexpr *inner = NULL, *outer = NULL;
      if (c->kind == EX_BINARY && !strcmp(c->op, "=")) {
        for (int side = 0; side < 2 && inner == NULL; side++) {
          bexpr *in_x;
          if (!try_bind(B, c->args[side], ss, &in_x))
            continue;
          bexpr *out_x;
          err saved = *B->e;
          if (sql__bind_expr(B, c->args[1 - side], sc, 0, &out_x) < 0) {
            *B->e = saved;
            continue;
          }
          inner = in_x;
          outer = out_x;
        }
      }
      if (inner == NULL) {
        /* any other condition over both: a residual of the join, over the
           outer columns followed by the subquery's */
        scope *cs = sql__scope_new(B, sc->n + ss->n, NULL);
        memcpy(cs->cols, sc->cols, sizeof(scol) * (size_t)sc->n);
        memcpy(cs->cols + sc->n, ss->cols, sizeof(scol) * (size_t)ss->n);
        bexpr *both;
        if ((rc = sql__bind_expr(B, c, cs, 0, &both)) < 0)
          return rc;
        if ((rc = sql__need_bool(B, &both, "WHERE condition")) < 0)
          return rc;
        sql__join_add_cond(B, j, both);
        continue;
      }
      if ((rc = sql__unify2(B, &outer, &inner, "=", c->line, c->col)) < 0)
        return rc;
      sql__join_add_key(B, j, outer, inner);
    }
  }
  j->child = *p;
  j->right = sp;
  *p = j;
  return 0;
}

static ast_expr *ast_new(binder *B, int kind, int line, int col)
{
  ast_expr *x = arena_alloc(B->a, sizeof *x);
  x->kind = kind;
  x->line = line;
  x->col = col;
  return x;
}

/* (SELECT agg(..) FROM t WHERE t.k = outer.k AND ...) in an expression:
 * LEFT JOIN (SELECT k, agg(..) FROM t WHERE ... GROUP BY k) ON k = outer.k,
 * and the subquery becomes that column (count gives 0 where nothing
 * joins). p and sc grow by the joined columns; *xp is rewritten. */
static int decorrelate_scalar(binder *B, ast_expr *x, plan **p, scope **sc, int *counter)
{
  ast_query *sq = x->sub;
  if (sq->kind != Q_SELECT || sq->nctes > 0 || sq->norder > 0 || sq->limit != NULL ||
      sq->offset != NULL || sq->sel->ngroup > 0 || sq->sel->having != NULL ||
      sq->sel->from == NULL || sq->sel->distinct || sq->sel->nitems != 1 ||
      sq->sel->items[0].expr->kind == EX_STAR || !sql__ast_has_agg(sq->sel->items[0].expr))
    return sql__errx(B, x->line, x->col,
                     "a correlated scalar subquery must be SELECT <aggregate> FROM ... WHERE with "
                     "equalities to the outer query");
  plan *probe;
  scope *ss;
  int rc = sql__bind_from(B, sq->sel->from, NULL, &probe, &ss);
  if (rc < 0)
    return rc;
  ss->outer = *sc;
  /* split the WHERE: inner-only conditions, and inner = outer equalities */
  ast_expr **acs = NULL;
  int nac = 0, acap = 0;
  if (sq->sel->where != NULL)
    sql__ast_conjuncts(B, sq->sel->where, &acs, &nac, &acap);
  ast_expr **inner_keys = arena_alloc(B->a, sizeof(ast_expr *) * (size_t)(nac + 1));
  bexpr **outer_keys = arena_alloc(B->a, sizeof(bexpr *) * (size_t)(nac + 1));
  int nk = 0;
  ast_expr *local = NULL;
  for (int a = 0; a < nac; a++) {
    ast_expr *c = acs[a];
    bexpr *b;
    if (try_bind(B, c, ss, &b)) {
      if (local == NULL) {
        local = c;
      } else {
        ast_expr *and = ast_new(B, EX_BINARY, c->line, c->col);
        and->op = "and";
        and->args = arena_alloc(B->a, sizeof(ast_expr *) * 2);
        and->args[0] = local;
        and->args[1] = c;
        and->nargs = 2;
        local = and;
      }
      continue;
    }
    bool done = false;
    if (c->kind == EX_BINARY && !strcmp(c->op, "=")) {
      for (int side = 0; side < 2 && !done; side++) {
        bexpr *in_x;
        if (!try_bind(B, c->args[side], ss, &in_x))
          continue;
        bexpr *out_x;
        err saved = *B->e;
        if (sql__bind_expr(B, c->args[1 - side], *sc, 0, &out_x) < 0) {
          *B->e = saved;
          continue;
        }
        inner_keys[nk] = c->args[side];
        outer_keys[nk] = out_x;
        nk++;
        done = true;
      }
    }
    if (!done)
      return sql__errx(B, c->line, c->col,
                       "a correlated scalar subquery may refer to the outer query only in "
                       "equalities");
  }
  if (nk == 0)
    return sql__errx(B, x->line, x->col, "correlated scalar subquery without an equality");
  /* SELECT keys..., item FROM ... WHERE local GROUP BY keys */
  ast_query *gq = arena_alloc(B->a, sizeof *gq);
  *gq = *sq;
  gq->sel = arena_alloc(B->a, sizeof(ast_select));
  gq->sel->from = sq->sel->from;
  gq->sel->where = local;
  gq->sel->nitems = nk + 1;
  gq->sel->items = arena_alloc(B->a, sizeof(ast_item) * (size_t)(nk + 1));
  gq->sel->ngroup = nk;
  gq->sel->group = arena_alloc(B->a, sizeof(ast_expr *) * (size_t)nk);
  for (int k = 0; k < nk; k++) {
    gq->sel->items[k].expr = inner_keys[k];
    gq->sel->group[k] = inner_keys[k];
  }
  gq->sel->items[nk] = sq->sel->items[0];
  plan *sp;
  if ((rc = sql__bind_query(B, gq, NULL, &sp)) < 0)
    return rc;
  int nl = (*p)->ncols;
  plan *j = sql__plan_new(B, P_JOIN, nl + sp->ncols);
  j->join = JN_LEFT;
  j->child = *p;
  j->right = sp;
  memcpy(j->cols, (*p)->cols, sizeof(pcol) * (size_t)nl);
  memcpy(j->cols + nl, sp->cols, sizeof(pcol) * (size_t)sp->ncols);
  for (int k = 0; k < nk; k++) {
    bexpr *l = outer_keys[k];
    bexpr *r = sql__bx_col(B->a, k, sp->cols[k].type);
    if ((rc = sql__unify2(B, &l, &r, "=", x->line, x->col)) < 0)
      return rc;
    sql__join_add_key(B, j, l, r);
  }
  /* the scope grows by hidden columns; the value is "$sqN" */
  scope *ns = sql__scope_new(B, nl + sp->ncols, (*sc)->outer);
  memcpy(ns->cols, (*sc)->cols, sizeof(scol) * (size_t)nl);
  const char *vname = arena_sprintf(B->a, "$sq%d", ++*counter);
  for (int i = 0; i < sp->ncols; i++) {
    ns->cols[nl + i].name = i == nk ? vname : sp->cols[i].name;
    ns->cols[nl + i].type = sp->cols[i].type;
    ns->cols[nl + i].hidden = true;
  }
  j->cols[nl + nk].name = vname;
  *p = j;
  *sc = ns;
  /* rewrite the node in place: a column, or coalesce(column, 0) for count */
  ast_expr *item = sq->sel->items[0].expr;
  bool is_count = item->kind == EX_FUNC && item->over == NULL &&
                  (!strcmp(item->name, "count") || !strcmp(item->name, "count_if") ||
                   !strcmp(item->name, "approx_distinct"));
  ast_expr *col = ast_new(B, EX_COLUMN, x->line, x->col);
  col->name = vname;
  if (is_count) {
    ast_expr *zero = ast_new(B, EX_INT, x->line, x->col);
    zero->text = "0";
    memset(x, 0, sizeof *x);
    x->kind = EX_FUNC;
    x->name = "coalesce";
    x->line = col->line;
    x->col = col->col;
    x->args = arena_alloc(B->a, sizeof(ast_expr *) * 2);
    x->args[0] = col;
    x->args[1] = zero;
    x->nargs = 2;
  } else {
    *x = *col;
  }
  return 0;
}

/* decorrelates every correlated scalar subquery in an expression */
int sql__decorrelate_scalars(binder *B, ast_expr **xp, plan **p, scope **sc)
{
  static int counter;  /* names only need to differ within a statement */
  ast_expr *x = *xp;
  if (x == NULL)
    return 0;
  if (x->kind == EX_SUBQUERY) {
    plan *sp;
    B->corr_hit = false;
    err saved = *B->e;
    int rc = sql__bind_subquery_plan(B, x->sub, *sc, &sp, x->line, x->col);
    if (rc == 0)
      return 0;
    if (!B->corr_hit)
      return rc;
    *B->e = saved;
    int n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    return decorrelate_scalar(B, x, p, sc, &n);
  }
  for (int i = 0; i < x->nargs; i++) {
    int rc = sql__decorrelate_scalars(B, &x->args[i], p, sc);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* ---- DISTINCT aggregates ---- */

/* count(DISTINCT x), sum(DISTINCT x) ... all over the same x: group by
 * (keys, x) first, then aggregate without DISTINCT. The first step is an
 * ordinary (parallel, partitioned) aggregation instead of one value set per
 * group. */
plan *sql__distinct_rewrite(binder *B, plan *ap)
{
  if (ap->naggs == 0)
    return ap;
  const bexpr *x = NULL;
  for (int i = 0; i < ap->naggs; i++) {
    aggcall *a = &ap->aggs[i];
    if (!a->distinct || a->filter != NULL || a->arg == NULL || a->arg2 != NULL)
      return ap;
    if (x == NULL)
      x = a->arg;
    else if (!sql__bexpr_equal(x, a->arg))
      return ap;
  }
  int ng = ap->ngroups;
  plan *in = sql__plan_new(B, P_AGG, ng + 1);
  in->child = ap->child;
  in->ngroups = ng + 1;
  in->groups = sql__args_new(B, ng + 1);
  for (int i = 0; i < ng; i++) {
    in->groups[i] = ap->groups[i];
    in->cols[i] = ap->cols[i];
  }
  in->groups[ng] = (bexpr *)x;
  in->cols[ng].name = "$d";
  in->cols[ng].type = x->type;
  plan *out = sql__plan_new(B, P_AGG, ap->ncols);
  out->child = in;
  out->ngroups = ng;
  out->groups = sql__args_new(B, ng);
  for (int i = 0; i < ng; i++)
    out->groups[i] = sql__bx_col(B->a, i, ap->groups[i]->type);
  out->naggs = ap->naggs;
  out->aggs = arena_alloc(B->a, sizeof(aggcall) * (size_t)ap->naggs);
  for (int i = 0; i < ap->naggs; i++) {
    out->aggs[i] = ap->aggs[i];
    out->aggs[i].distinct = false;
    out->aggs[i].arg = sql__bx_col(B->a, ng, x->type);
    if (out->aggs[i].fn == AGG_APPROX_DISTINCT)
      out->aggs[i].fn = AGG_COUNT;
  }
  memcpy(out->cols, ap->cols, sizeof(pcol) * (size_t)ap->ncols);
  return out;
}

/* ---- pruning: which columns each node must produce ---- */

/* columns referenced: marks need[colno] (array of n) */
static void expr_cols(const bexpr *x, bool *need, int n)
{
  if (x == NULL)
    return;
  if (x->kind == BX_COL) {
    if (x->colno >= 0 && x->colno < n)
      need[x->colno] = true;
    return;
  }
  if (x->kind == BX_AGG) {
    expr_cols(x->agg->arg, need, n);
    expr_cols(x->agg->arg2, need, n);
    expr_cols(x->agg->filter, need, n);
  }
  for (int i = 0; i < x->nargs; i++)
    expr_cols(x->args[i], need, n);
}

static void prune(plan *p, const bool *need, arena *a)
{
  int n;
  switch (p->kind) {
  case P_SCAN:
    for (int i = 0; i < p->ncols; i++)
      p->used[i] = need[i];
    for (int k = 0; k < p->npreds; k++)
      expr_cols(p->preds[k], p->used, p->ncols);
    return;
  case P_VALUES:
    return;
  case P_FILTER: {
    n = p->child->ncols;
    bool *cn = arena_alloc(a, (size_t)n + 1);
    memcpy(cn, need, (size_t)n);
    for (int k = 0; k < p->npreds; k++)
      expr_cols(p->preds[k], cn, n);
    prune(p->child, cn, a);
    return;
  }
  case P_PROJECT: {
    n = p->child->ncols;
    bool *cn = arena_alloc(a, (size_t)n + 1);
    for (int i = 0; i < p->ncols; i++) {
      if (need[i]) {
        expr_cols(p->exprs[i], cn, n);
      } else if (p->exprs[i]->kind != BX_COL && p->exprs[i]->kind != BX_CONST) {
        /* not needed: do not compute it */
        bexpr *c = arena_alloc(a, sizeof *c);
        c->kind = BX_CONST;
        c->type = p->exprs[i]->type;
        c->v.null = true;
        p->exprs[i] = c;
      }
    }
    prune(p->child, cn, a);
    return;
  }
  case P_JOIN: {
    int nl = p->child->ncols, nr = p->right->ncols;
    bool *ln = arena_alloc(a, (size_t)nl + 1);
    bool *rn = arena_alloc(a, (size_t)nr + 1);
    bool *all = arena_alloc(a, (size_t)(nl + nr) + 1);
    int outn = p->join == JN_SEMI || p->join == JN_ANTI ? nl : nl + nr;
    memcpy(all, need, (size_t)outn);
    p->need = arena_alloc(a, (size_t)(nl + nr) + 1);
    memcpy(p->need, need, (size_t)outn);
    if (p->cond != NULL) {
      expr_cols(p->cond, all, nl + nr);
      expr_cols(p->cond, p->need, nl + nr);
    }
    memcpy(ln, all, (size_t)nl);
    memcpy(rn, all + nl, (size_t)nr);
    for (int k = 0; k < p->nkeys; k++) {
      expr_cols(p->lkeys[k], ln, nl);
      expr_cols(p->rkeys[k], rn, nr);
    }
    prune(p->child, ln, a);
    prune(p->right, rn, a);
    return;
  }
  case P_AGG: {
    n = p->child->ncols;
    bool *cn = arena_alloc(a, (size_t)n + 1);
    for (int k = 0; k < p->ngroups; k++)
      expr_cols(p->groups[k], cn, n);
    for (int k = 0; k < p->naggs; k++) {
      expr_cols(p->aggs[k].arg, cn, n);
      expr_cols(p->aggs[k].arg2, cn, n);
      expr_cols(p->aggs[k].filter, cn, n);
    }
    prune(p->child, cn, a);
    return;
  }
  case P_SORT: {
    n = p->child->ncols;
    bool *cn = arena_alloc(a, (size_t)n + 1);
    memcpy(cn, need, (size_t)n);
    for (int k = 0; k < p->nkeys_sort; k++)
      cn[p->keys[k].col] = true;
    prune(p->child, cn, a);
    return;
  }
  case P_LIMIT:
    prune(p->child, need, a);
    return;
  case P_WINDOW: {
    n = p->child->ncols;
    bool *cn = arena_alloc(a, (size_t)n + 1);
    memcpy(cn, need, (size_t)n);
    for (int k = 0; k < p->nwins; k++) {
      wincall *w = &p->wins[k];
      if (w->arg >= 0)
        cn[w->arg] = true;
      if (w->deflt >= 0)
        cn[w->deflt] = true;
      for (int j = 0; j < w->npart; j++)
        cn[w->part[j]] = true;
      for (int j = 0; j < w->norder; j++)
        cn[w->order[j].col] = true;
    }
    prune(p->child, cn, a);
    return;
  }
  case P_SETOP: {
    bool *l = arena_alloc(a, (size_t)p->ncols + 1);
    for (int i = 0; i < p->ncols; i++)
      l[i] = true;
    prune(p->child, l, a);
    prune(p->right, l, a);
    return;
  }
  }
}

void sql__plan_prune(plan *p, arena *a)
{
  bool *all = arena_alloc(a, (size_t)p->ncols + 1);
  for (int i = 0; i < p->ncols; i++)
    all[i] = true;
  prune(p, all, a);
}
