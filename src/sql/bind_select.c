/* sql/bind_select.c -- the binder's queries: SELECT (WHERE, GROUP BY,
 * HAVING, the select list, windows, DISTINCT, ORDER BY, LIMIT), set
 * operations, and WITH.
 *
 * Why apart: this is where a query's plan gets its shape (aggregation,
 * windows, hidden ORDER BY columns), around the expressions that
 * bind_expr.c binds and the FROM plan that bind_from.c builds.
 *
 * Invariants:
 *   (1) Above an aggregation, an expression refers only to group keys and
 *       aggregates (rewrite_agg): a bare input column is the error "'x' must
 *       be an aggregate expression or appear in GROUP BY clause".
 *   (2) A SELECT's plan is, bottom up: FROM (with WHERE pushed in), AGG,
 *       HAVING filter, WINDOW, PROJECT (select list, then hidden ORDER BY
 *       columns), DISTINCT, SORT or LIMIT, and a last PROJECT that drops
 *       the hidden columns.
 *   (3) Both sides of a set operation are cast to one type per column;
 *       its ORDER BY takes only output names and positions.
 *   (4) B->clause and B->ctes are restored on every return of sql__bind_query,
 *       so errors name the right clause and CTEs are scoped.
 *
 * Start reading at sql__bind_query(), then bind_select().
 */
#include "bind_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct aggctx {
  bexpr **groups;
  int ngroups;
  aggcall **aggs;
  int naggs;
  int cap;
} aggctx;

/* rewrites an expression bound over the FROM scope into one over the
 * aggregation's output (groups, then aggregates) */
static int rewrite_agg(binder *B, aggctx *g, bexpr **xp)
{
  bexpr *x = *xp;
  for (int i = 0; i < g->ngroups; i++) {
    if (sql__bexpr_equal(x, g->groups[i])) {
      bexpr *c = sql__bx_col(B->a, i, x->type);
      c->line = x->line;
      c->col = x->col;
      c->name = x->name;
      *xp = c;
      return 0;
    }
  }
  if (x->kind == BX_AGG) {
    int k;
    for (k = 0; k < g->naggs; k++) {
      bexpr tmp = {.kind = BX_AGG, .type = g->aggs[k]->type, .agg = g->aggs[k]};
      if (sql__bexpr_equal(&tmp, x))
        break;
    }
    if (k == g->naggs) {
      if (g->naggs == g->cap) {
        int nc = g->cap ? g->cap * 2 : 8;
        aggcall **na = arena_alloc(B->a, sizeof(aggcall *) * (size_t)nc);
        if (g->naggs)
          memcpy(na, g->aggs, sizeof(aggcall *) * (size_t)g->naggs);
        g->aggs = na;
        g->cap = nc;
      }
      g->aggs[g->naggs++] = x->agg;
    }
    bexpr *c = sql__bx_col(B->a, g->ngroups + k, x->type);
    c->line = x->line;
    c->col = x->col;
    c->name = x->name;
    *xp = c;
    return 0;
  }
  if (x->kind == BX_COL)
    return sql__errx(B, x->line, x->col,
                     "'%s' must be an aggregate expression or appear in GROUP BY clause",
                     x->name != NULL ? x->name : "column");
  if (x->kind == BX_WIN || x->kind == BX_SUBQ || x->kind == BX_EXISTS) {
    /* window args were bound in agg mode already; subqueries stand alone */
    if (x->kind != BX_WIN)
      return 0;
  }
  if (x->kind == BX_IN_SET) {
    return rewrite_agg(B, g, &x->args[0]);
  }
  for (int i = 0; i < x->nargs; i++) {
    int rc = rewrite_agg(B, g, &x->args[i]);
    if (rc < 0)
      return rc;
  }
  return 0;
}

typedef struct winctx {
  bexpr **wins;
  int n;
  int cap;
} winctx;

static void collect_wins(binder *B, bexpr *x, winctx *w)
{
  if (x->kind == BX_WIN) {
    for (int i = 0; i < w->n; i++)
      if (w->wins[i] == x)
        return;
    if (w->n == w->cap) {
      int nc = w->cap ? w->cap * 2 : 8;
      bexpr **nv = arena_alloc(B->a, sizeof(bexpr *) * (size_t)nc);
      if (w->n)
        memcpy(nv, w->wins, sizeof(bexpr *) * (size_t)w->n);
      w->wins = nv;
      w->cap = nc;
    }
    w->wins[w->n++] = x;
    return;
  }
  for (int i = 0; i < x->nargs; i++)
    collect_wins(B, x->args[i], w);
}

static void replace_wins(bexpr **xp, winctx *w, int base, arena *a)
{
  bexpr *x = *xp;
  if (x->kind == BX_WIN) {
    for (int i = 0; i < w->n; i++) {
      if (w->wins[i] == x) {
        bexpr *c = sql__bx_col(a, base + i, x->type);
        c->name = x->name;
        c->line = x->line;
        c->col = x->col;
        *xp = c;
        return;
      }
    }
  }
  for (int i = 0; i < x->nargs; i++)
    replace_wins(&x->args[i], w, base, a);
}

/* builds PROJECT(child cols + window inputs) -> WINDOW over p */
static plan *build_window(binder *B, plan *p, winctx *w)
{
  int base = p->ncols;
  int nextra = 0;
  for (int i = 0; i < w->n; i++)
    nextra += w->wins[i]->nargs;
  plan *pr = sql__plan_new(B, P_PROJECT, base + nextra);
  pr->child = p;
  pr->exprs = sql__args_new(B, base + nextra);
  for (int i = 0; i < base; i++) {
    pr->exprs[i] = sql__bx_col(B->a, i, p->cols[i].type);
    pr->cols[i] = p->cols[i];
  }
  int k = base;
  plan *wp = sql__plan_new(B, P_WINDOW, base + nextra + w->n);
  wp->child = pr;
  wp->nwins = w->n;
  wp->wins = arena_alloc(B->a, sizeof(wincall) * (size_t)w->n);
  for (int i = 0; i < w->n; i++) {
    bexpr *x = w->wins[i];
    wincall *wc = x->win;
    int nfargs = x->nargs - wc->npart - wc->norder;
    int first = k;
    for (int a = 0; a < x->nargs; a++) {
      pr->exprs[k] = x->args[a];
      pr->cols[k].name = "$w";
      pr->cols[k].type = x->args[a]->type;
      k++;
    }
    wincall *out = &wp->wins[i];
    *out = *wc;
    out->arg = nfargs >= 1 ? first : -1;
    out->deflt = (wc->fn == WIN_LAG || wc->fn == WIN_LEAD) && nfargs == 3 ? first + 2 : -1;
    out->part = arena_alloc(B->a, sizeof(int) * (size_t)(wc->npart > 0 ? wc->npart : 1));
    for (int a = 0; a < wc->npart; a++)
      out->part[a] = first + nfargs + a;
    out->order = arena_alloc(B->a, sizeof(sortkey) * (size_t)(wc->norder > 0 ? wc->norder : 1));
    for (int a = 0; a < wc->norder; a++) {
      out->order[a] = wc->order[a];
      out->order[a].col = first + nfargs + wc->npart + a;
    }
    if (wc->fn == WIN_AGG)
      out->agg.arg = nfargs >= 1 ? sql__bx_col(B->a, first, x->args[0]->type) : NULL;
  }
  memcpy(wp->cols, pr->cols, sizeof(pcol) * (size_t)(base + nextra));
  for (int i = 0; i < w->n; i++) {
    wp->cols[base + nextra + i].name = w->wins[i]->name;
    wp->cols[base + nextra + i].type = w->wins[i]->type;
  }
  return wp;
}

static const char *derived_name(binder *B, bexpr *x, int i)
{
  if (x->kind == BX_COL && x->name != NULL)
    return x->name;
  return arena_sprintf(B->a, "_col%d", i);
}

static int const_int(binder *B, ast_expr *x, int64_t *out, const char *what)
{
  bexpr *b;
  scope empty = {0};
  int rc = sql__bind_expr(B, x, &empty, 0, &b);
  if (rc < 0)
    return rc;
  if (b->kind != BX_CONST || !sql__stype_integer(b->type.t) || b->v.null || b->v.i < 0)
    return sql__errx(B, x->line, x->col, "%s must be a non-negative integer constant", what);
  *out = b->v.i;
  return 0;
}

typedef struct orderres {
  int col;           /* output column (may be hidden) */
  bool desc;
  bool nulls_first;
} orderres;

static int bind_select(binder *B, ast_query *q, scope *outer, plan **out)
{
  ast_select *s = q->sel;
  int rc;
  plan *p;
  scope *sc;
  if (s->from == NULL) {
    p = sql__plan_new(B, P_VALUES, 0);
    p->nrows = 1;
    p->rows = arena_alloc(B->a, sizeof(value *));
    p->rows[0] = arena_alloc(B->a, sizeof(value));
    sc = sql__scope_new(B, 0, outer);
  } else {
    ast_expr *save_where = B->from_where;
    B->from_where = s->from->kind == FR_TABLE || s->from->kind == FR_FUNC ? s->where : NULL;
    rc = sql__bind_from(B, s->from, outer, &p, &sc);
    B->from_where = save_where;
    if (rc < 0)
      return rc;
  }
  /* WHERE: conjunct by conjunct, so correlated [NOT] EXISTS / IN become
     semi and anti joins */
  if (s->where != NULL) {
    B->clause = "WHERE";
    ast_expr **acs = NULL;
    int nac = 0, acap = 0;
    sql__ast_conjuncts(B, s->where, &acs, &nac, &acap);
    for (int a = 0; a < nac; a++) {
      bexpr *w;
      B->corr_hit = false;
      rc = sql__bind_expr(B, acs[a], sc, 0, &w);
      if (rc < 0 && B->corr_hit && sql__is_subquery_pred(acs[a])) {
        err_clear(B->e);
        if ((rc = sql__decorrelate(B, acs[a], sc, &p)) < 0)
          return rc;
        continue;
      }
      if (rc < 0 && B->corr_hit) {
        err_clear(B->e);
        if ((rc = sql__decorrelate_scalars(B, &acs[a], &p, &sc)) < 0)
          return rc;
        rc = sql__bind_expr(B, acs[a], sc, 0, &w);
      }
      if (rc < 0)
        return rc;
      if ((rc = sql__need_bool(B, &w, "WHERE condition")) < 0)
        return rc;
      bexpr **cs = NULL;
      int n = 0, cap = 0;
      sql__conjuncts(B, w, &cs, &n, &cap);
      for (int k = 0; k < n; k++) {
        if (cs[k]->kind == BX_CONST && !cs[k]->v.null && cs[k]->v.i)
          continue;
        p = sql__push_pred(B, p, cs[k]);
      }
    }
  }
  /* expand the select list */
  int nitems = 0;
  for (int i = 0; i < s->nitems; i++) {
    ast_expr *x = s->items[i].expr;
    if (x->kind == EX_STAR) {
      if (x->qual != NULL && !sql__scope_has_table(sc, x->qual))
        return sql__errx(B, x->line, x->col, "unknown table '%s'", x->qual);
      for (int c = 0; c < sc->n; c++)
        if (!sc->cols[c].hidden && (x->qual == NULL || sql__name_eq(sc->cols[c].table, x->qual)))
          nitems++;
    } else {
      nitems++;
    }
  }
  if (nitems == 0)
    return sql__errx(B, q->line, q->col, "SELECT * over a table without columns");
  ast_expr **items = arena_alloc(B->a, sizeof(ast_expr *) * (size_t)nitems);
  const char **aliases = arena_alloc(B->a, sizeof(char *) * (size_t)nitems);
  int *starcol = arena_alloc(B->a, sizeof(int) * (size_t)nitems);
  int k = 0;
  for (int i = 0; i < s->nitems; i++) {
    ast_expr *x = s->items[i].expr;
    if (x->kind == EX_STAR) {
      for (int c = 0; c < sc->n; c++) {
        if (sc->cols[c].hidden || (x->qual != NULL && !sql__name_eq(sc->cols[c].table, x->qual)))
          continue;
        items[k] = NULL;
        starcol[k] = c;
        aliases[k] = sc->cols[c].name;
        k++;
      }
    } else {
      items[k] = x;
      starcol[k] = -1;
      aliases[k] = s->items[i].alias;
      k++;
    }
  }
  bool has_agg = s->ngroup > 0 || sql__ast_has_agg(s->having);
  for (int i = 0; i < nitems; i++)
    if (items[i] != NULL && sql__ast_has_agg(items[i]))
      has_agg = true;
  for (int i = 0; i < q->norder; i++)
    if (sql__ast_has_agg(q->order[i].expr))
      has_agg = true;
  if (s->having != NULL && !has_agg)
    has_agg = true;
  int mode = M_WIN | (has_agg ? M_AGG : 0);
  aggctx g = {0};
  scope *post = sc;
  if (has_agg) {
    /* GROUP BY: ordinals and select aliases allowed */
    B->clause = "GROUP BY";
    g.groups = sql__args_new(B, s->ngroup);
    for (int i = 0; i < s->ngroup; i++) {
      ast_expr *x = s->group[i];
      if (x->kind == EX_INT) {
        int64_t ord = atoll(x->text);
        if (ord < 1 || ord > nitems)
          return sql__errx(B, x->line, x->col, "GROUP BY position %lld is not in the select list",
                           (long long)ord);
        if (items[ord - 1] == NULL) {
          bexpr *c = sql__bx_col(B->a, starcol[ord - 1], sc->cols[starcol[ord - 1]].type);
          c->name = sc->cols[starcol[ord - 1]].name;
          g.groups[g.ngroups++] = c;
          continue;
        }
        x = items[ord - 1];
        if (sql__ast_has_agg(x))
          return sql__errx(B, s->group[i]->line, s->group[i]->col,
                           "GROUP BY position %lld refers to an aggregate", (long long)ord);
      } else if (x->kind == EX_COLUMN && x->qual == NULL &&
                 sql__scope_find(sc, NULL, x->name, false) == -1) {
        for (int a = 0; a < nitems; a++)
          if (aliases[a] != NULL && items[a] != NULL && sql__name_eq(aliases[a], x->name)) {
            x = items[a];
            break;
          }
      }
      bexpr *gx;
      if ((rc = sql__bind_expr(B, x, sc, 0, &gx)) < 0)
        return rc;
      bool dup = false;
      for (int j = 0; j < g.ngroups; j++)
        if (sql__bexpr_equal(g.groups[j], gx))
          dup = true;
      if (!dup)
        g.groups[g.ngroups++] = gx;
    }
  }
  /* select expressions */
  B->clause = "SELECT";
  bexpr **sel = sql__args_new(B, nitems);
  for (int i = 0; i < nitems; i++) {
    if (items[i] == NULL) {
      sel[i] = sql__bx_col(B->a, starcol[i], sc->cols[starcol[i]].type);
      sel[i]->name = sc->cols[starcol[i]].name;
      sel[i]->line = q->line;
      sel[i]->col = q->col;
    } else {
      B->corr_hit = false;
      rc = sql__bind_expr(B, items[i], sc, mode, &sel[i]);
      if (rc < 0 && B->corr_hit && !has_agg) {
        err_clear(B->e);
        if ((rc = sql__decorrelate_scalars(B, &items[i], &p, &sc)) < 0)
          return rc;
        rc = sql__bind_expr(B, items[i], sc, mode, &sel[i]);
      }
      if (rc < 0)
        return rc;
    }
  }
  bexpr *having = NULL;
  if (s->having != NULL) {
    B->clause = "HAVING";
    if ((rc = sql__bind_expr(B, s->having, sc, M_AGG, &having)) < 0)
      return rc;
    if ((rc = sql__need_bool(B, &having, "HAVING condition")) < 0)
      return rc;
  }
  /* ORDER BY: output names and ordinals first, else expressions */
  B->clause = "ORDER BY";
  orderres *ord = arena_alloc(B->a, sizeof(orderres) * (size_t)(q->norder > 0 ? q->norder : 1));
  bexpr **hidden = sql__args_new(B, q->norder);
  int nhidden = 0;
  for (int i = 0; i < q->norder; i++) {
    ast_order *o = &q->order[i];
    ord[i].desc = o->desc;
    ord[i].nulls_first = o->nulls == 1;
    ord[i].col = -1;
    ast_expr *x = o->expr;
    if (x->kind == EX_INT) {
      int64_t n = atoll(x->text);
      if (n < 1 || n > nitems)
        return sql__errx(B, x->line, x->col, "ORDER BY position %lld is not in the select list",
                         (long long)n);
      ord[i].col = (int)n - 1;
      continue;
    }
    if (x->kind == EX_COLUMN && x->qual == NULL) {
      int found = -1;
      for (int a = 0; a < nitems; a++) {
        const char *nm = aliases[a] != NULL ? aliases[a] : sel[a]->name;
        if (aliases[a] == NULL && items[a] != NULL && items[a]->kind != EX_COLUMN)
          nm = NULL;
        if (nm != NULL && sql__name_eq(nm, x->name)) {
          if (found >= 0 && !sql__bexpr_equal(sel[found], sel[a]))
            return sql__errx(B, x->line, x->col, "ORDER BY name '%s' is ambiguous", x->name);
          found = a;
        }
      }
      if (found >= 0) {
        ord[i].col = found;
        continue;
      }
    }
    bexpr *ox;
    if ((rc = sql__bind_expr(B, x, sc, mode, &ox)) < 0)
      return rc;
    for (int a = 0; a < nitems; a++)
      if (sql__bexpr_equal(sel[a], ox)) {
        ord[i].col = a;
        break;
      }
    if (ord[i].col < 0) {
      if (s->distinct)
        return sql__errx(
            B, x->line, x->col,
            "for SELECT DISTINCT, ORDER BY expressions must appear in the select list");
      hidden[nhidden] = ox;
      ord[i].col = nitems + nhidden;
      nhidden++;
    }
  }
  /* aggregation */
  if (has_agg) {
    B->clause = "SELECT";
    for (int i = 0; i < nitems; i++)
      if ((rc = rewrite_agg(B, &g, &sel[i])) < 0)
        return rc;
    B->clause = "ORDER BY";
    for (int i = 0; i < nhidden; i++)
      if ((rc = rewrite_agg(B, &g, &hidden[i])) < 0)
        return rc;
    B->clause = "HAVING";
    if (having != NULL && (rc = rewrite_agg(B, &g, &having)) < 0)
      return rc;
    plan *ap = sql__plan_new(B, P_AGG, g.ngroups + g.naggs);
    ap->child = p;
    ap->groups = g.groups;
    ap->ngroups = g.ngroups;
    ap->naggs = g.naggs;
    ap->aggs = arena_alloc(B->a, sizeof(aggcall) * (size_t)(g.naggs > 0 ? g.naggs : 1));
    for (int i = 0; i < g.ngroups; i++) {
      ap->cols[i].name = g.groups[i]->name != NULL ? g.groups[i]->name : "$g";
      ap->cols[i].type = g.groups[i]->type;
    }
    for (int i = 0; i < g.naggs; i++) {
      ap->aggs[i] = *g.aggs[i];
      ap->cols[g.ngroups + i].name = "$a";
      ap->cols[g.ngroups + i].type = g.aggs[i]->type;
    }
    p = sql__distinct_rewrite(B, ap);
    if (having != NULL)
      p = sql__wrap_filter(B, p, having);
    post = NULL;
  }
  (void)post;
  /* windows */
  winctx w = {0};
  for (int i = 0; i < nitems; i++)
    collect_wins(B, sel[i], &w);
  for (int i = 0; i < nhidden; i++)
    collect_wins(B, hidden[i], &w);
  if (w.n > 0) {
    int base = p->ncols;
    int nextra = 0;
    for (int i = 0; i < w.n; i++)
      nextra += w.wins[i]->nargs;
    p = build_window(B, p, &w);
    for (int i = 0; i < nitems; i++)
      replace_wins(&sel[i], &w, base + nextra, B->a);
    for (int i = 0; i < nhidden; i++)
      replace_wins(&hidden[i], &w, base + nextra, B->a);
  }
  /* projection */
  int nout = nitems + nhidden;
  plan *pr = sql__plan_new(B, P_PROJECT, nout);
  pr->child = p;
  pr->exprs = sql__args_new(B, nout);
  for (int i = 0; i < nitems; i++) {
    pr->exprs[i] = sel[i];
    pr->cols[i].name = aliases[i] != NULL ? aliases[i]
                       : items[i] == NULL || items[i]->kind == EX_COLUMN
                           ? derived_name(B, sel[i], i)
                           : arena_sprintf(B->a, "_col%d", i);
    pr->cols[i].type = sel[i]->type;
    if (pr->cols[i].type.t == SQL_NULL) {
      pr->exprs[i] = sql__bind_cast(B->q, sel[i], sql__st(SQL_VARCHAR));
      pr->cols[i].type = sql__st(SQL_VARCHAR);
    }
  }
  for (int i = 0; i < nhidden; i++) {
    pr->exprs[nitems + i] = hidden[i];
    pr->cols[nitems + i].name = "$o";
    pr->cols[nitems + i].type = hidden[i]->type;
  }
  p = pr;
  if (s->distinct) {
    plan *d = sql__plan_new(B, P_AGG, nout);
    d->child = p;
    d->ngroups = nout;
    d->groups = sql__args_new(B, nout);
    for (int i = 0; i < nout; i++) {
      d->groups[i] = sql__bx_col(B->a, i, p->cols[i].type);
      d->cols[i] = p->cols[i];
    }
    p = d;
  }
  /* ORDER BY, LIMIT, OFFSET */
  int64_t limit = -1, offset = 0;
  if (q->limit != NULL && (rc = const_int(B, q->limit, &limit, "LIMIT")) < 0)
    return rc;
  if (q->offset != NULL && (rc = const_int(B, q->offset, &offset, "OFFSET")) < 0)
    return rc;
  if (q->norder > 0) {
    plan *so = sql__plan_new(B, P_SORT, p->ncols);
    so->child = p;
    memcpy(so->cols, p->cols, sizeof(pcol) * (size_t)p->ncols);
    so->nkeys_sort = q->norder;
    so->keys = arena_alloc(B->a, sizeof(sortkey) * (size_t)q->norder);
    for (int i = 0; i < q->norder; i++) {
      so->keys[i].col = ord[i].col;
      so->keys[i].desc = ord[i].desc;
      so->keys[i].nulls_first = ord[i].nulls_first;
    }
    so->limit = limit;
    so->offset = offset;
    p = so;
  } else if (limit >= 0 || offset > 0) {
    plan *l = sql__plan_new(B, P_LIMIT, p->ncols);
    l->child = p;
    memcpy(l->cols, p->cols, sizeof(pcol) * (size_t)p->ncols);
    l->limit = limit;
    l->offset = offset;
    p = l;
  }
  if (nhidden > 0) {
    plan *f = sql__plan_new(B, P_PROJECT, nitems);
    f->child = p;
    f->exprs = sql__args_new(B, nitems);
    for (int i = 0; i < nitems; i++) {
      f->exprs[i] = sql__bx_col(B->a, i, p->cols[i].type);
      f->cols[i] = p->cols[i];
    }
    p = f;
  }
  *out = p;
  return 0;
}

static int bind_setop(binder *B, ast_query *q, scope *outer, plan **out)
{
  plan *l, *r;
  int rc;
  if ((rc = sql__bind_query(B, q->left, outer, &l)) < 0)
    return rc;
  if ((rc = sql__bind_query(B, q->right, outer, &r)) < 0)
    return rc;
  const char *opn = q->kind == Q_UNION ? "UNION" : q->kind == Q_INTERSECT ? "INTERSECT"
                                                                          : "EXCEPT";
  if (l->ncols != r->ncols)
    return sql__errx(B, q->line, q->col, "%s query has different number of fields: %d, %d", opn,
                     l->ncols, r->ncols);
  int n = l->ncols;
  stype *types = arena_alloc(B->a, sizeof(stype) * (size_t)n);
  bool lcast = false, rcast = false;
  for (int i = 0; i < n; i++) {
    if (!sql__common_type(l->cols[i].type, r->cols[i].type, &types[i])) {
      char t1[48], t2[48];
      return sql__errx(B, q->line, q->col, "column %d in %s has incompatible types %s and %s",
                       i + 1, opn, sql__stype_name(l->cols[i].type, t1, sizeof t1),
                       sql__stype_name(r->cols[i].type, t2, sizeof t2));
    }
    if (types[i].t == SQL_NULL)
      types[i] = sql__st(SQL_VARCHAR);
    if (types[i].t != l->cols[i].type.t || types[i].scale != l->cols[i].type.scale)
      lcast = true;
    if (types[i].t != r->cols[i].type.t || types[i].scale != r->cols[i].type.scale)
      rcast = true;
  }
  plan *sides[2] = {l, r};
  bool casts[2] = {lcast, rcast};
  for (int sdx = 0; sdx < 2; sdx++) {
    if (!casts[sdx])
      continue;
    plan *c = sides[sdx];
    plan *pr = sql__plan_new(B, P_PROJECT, n);
    pr->child = c;
    pr->exprs = sql__args_new(B, n);
    for (int i = 0; i < n; i++) {
      pr->exprs[i] = sql__bind_cast(B->q, sql__bx_col(B->a, i, c->cols[i].type), types[i]);
      pr->cols[i].name = c->cols[i].name;
      pr->cols[i].type = types[i];
    }
    sides[sdx] = pr;
  }
  plan *so = sql__plan_new(B, P_SETOP, n);
  so->child = sides[0];
  so->right = sides[1];
  so->setop = q->kind;
  so->all = q->all;
  for (int i = 0; i < n; i++) {
    so->cols[i].name = l->cols[i].name;
    so->cols[i].type = types[i];
  }
  plan *p = so;
  int64_t limit = -1, offset = 0;
  if (q->limit != NULL && (rc = const_int(B, q->limit, &limit, "LIMIT")) < 0)
    return rc;
  if (q->offset != NULL && (rc = const_int(B, q->offset, &offset, "OFFSET")) < 0)
    return rc;
  if (q->norder > 0) {
    plan *sp = sql__plan_new(B, P_SORT, n);
    sp->child = p;
    memcpy(sp->cols, p->cols, sizeof(pcol) * (size_t)n);
    sp->nkeys_sort = q->norder;
    sp->keys = arena_alloc(B->a, sizeof(sortkey) * (size_t)q->norder);
    scope *osc = sql__scope_of_plan(B, p, NULL, NULL);
    for (int i = 0; i < q->norder; i++) {
      ast_order *o = &q->order[i];
      int col = -1;
      if (o->expr->kind == EX_INT) {
        col = atoi(o->expr->text) - 1;
        if (col < 0 || col >= n)
          return sql__errx(B, o->expr->line, o->expr->col,
                           "ORDER BY position %s is not in the select list", o->expr->text);
      } else if (o->expr->kind == EX_COLUMN) {
        col = sql__scope_find(osc, NULL, o->expr->name, false);
        if (col == -1)
          return sql__unknown_column(B, o->expr, osc);
        if (col == -2)
          return sql__errx(B, o->expr->line, o->expr->col, "ORDER BY name '%s' is ambiguous",
                           o->expr->name);
      } else {
        return sql__errx(B, o->expr->line, o->expr->col,
                         "ORDER BY of a set operation takes output column names or positions");
      }
      sp->keys[i].col = col;
      sp->keys[i].desc = o->desc;
      sp->keys[i].nulls_first = o->nulls == 1;
    }
    sp->limit = limit;
    sp->offset = offset;
    p = sp;
  } else if (limit >= 0 || offset > 0) {
    plan *lp = sql__plan_new(B, P_LIMIT, n);
    lp->child = p;
    memcpy(lp->cols, p->cols, sizeof(pcol) * (size_t)n);
    lp->limit = limit;
    lp->offset = offset;
    p = lp;
  }
  *out = p;
  return 0;
}

int sql__bind_query(binder *B, ast_query *q, scope *outer, plan **out)
{
  if (++B->depth > SQL_MAX_DEPTH)
    return sql__errx(B, q->line, q->col, "query nested too deeply");
  ctedef *save = B->ctes;
  for (int i = 0; i < q->nctes; i++) {
    for (int j = 0; j < i; j++)
      if (sql__name_eq(q->ctes[j].name, q->ctes[i].name))
        return sql__errx(B, q->line, q->col, "WITH query name '%s' specified more than once",
                         q->ctes[i].name);
    ctedef *c = arena_alloc(B->a, sizeof *c);
    c->cte = &q->ctes[i];
    c->next = B->ctes;
    B->ctes = c;
  }
  const char *clause = B->clause;
  int rc = q->kind == Q_SELECT ? bind_select(B, q, outer, out) : bind_setop(B, q, outer, out);
  B->clause = clause;
  B->ctes = save;
  B->depth--;
  return rc;
}
