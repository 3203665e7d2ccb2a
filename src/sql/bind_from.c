/* sql/bind_from.c -- the binder's FROM clause: tables over objects, table
 * functions (read_csv, read_json), VALUES, CTEs, subqueries and joins.
 *
 * Why apart: FROM decides the scope that every other clause resolves
 * names in; binding it is about tables and join shapes, not expressions.
 *
 * Invariants:
 *   (1) Every FROM item yields a plan and a scope with one scol per plan
 *       column, in the same order; a join's columns are its left side's
 *       then its right side's.
 *   (2) USING / NATURAL columns of the right side are hidden: not visible
 *       unqualified or in `*`; for RIGHT and FULL joins the visible key is
 *       coalesce(left, right).
 *   (3) ON equalities across the sides become hash keys; one-sided
 *       conditions go into the side that cannot lose rows by them.
 *   (4) A table is opened (listed and sniffed) here, once per reference;
 *       its errors point at the FROM item.
 *
 * Start reading at sql__bind_from().
 */
#include "bind_internal.h"
#include "ddl.h"
#include "base/text.h"

#include <string.h>
#include <strings.h>

static int const_arg(binder *B, ast_expr *x, value *v, sql_type *t)
{
  bexpr *b;
  scope empty = {0};
  int rc = sql__bind_expr(B, x, &empty, 0, &b);
  if (rc < 0)
    return rc;
  if (b->kind != BX_CONST)
    return sql__errx(B, x->line, x->col, "table function arguments must be constants");
  *v = b->v;
  *t = b->type.t;
  return 0;
}

static int parse_type_name(const char *s, fmt_type *out)
{
  while (*s == ' ')
    s++;
  if (str_istarts(s, "bigint") || str_istarts(s, "int") || str_istarts(s, "smallint") ||
      str_istarts(s, "tinyint"))
    *out = FT_BIGINT;
  else if (str_istarts(s, "double") || str_istarts(s, "float") || str_istarts(s, "real") ||
           str_istarts(s, "decimal"))
    *out = FT_DOUBLE;
  else if (str_istarts(s, "bool"))
    *out = FT_BOOLEAN;
  else if (str_istarts(s, "timestamp"))
    *out = FT_TIMESTAMP;
  else if (str_istarts(s, "date"))
    *out = FT_DATE;
  else if (str_istarts(s, "varchar") || str_istarts(s, "string") || str_istarts(s, "text") ||
           str_istarts(s, "char"))
    *out = FT_VARCHAR;
  else
    return -1;
  return 0;
}

/* ---- conditions on partition columns, before the table is read ---- */

typedef struct prefilter_ctx {
  binder *B;
  ast_from *f;
  ast_expr *where;
} prefilter_ctx;

static bool ast_has_query(const ast_expr *x)
{
  if (x == NULL)
    return false;
  if (x->sub != NULL || x->over != NULL || x->kind == EX_STAR)
    return true;
  for (int i = 0; i < x->nargs; i++)
    if (ast_has_query(x->args[i]))
      return true;
  return ast_has_query(x->filter);
}

/* Binds the WHERE conjuncts that name partition columns only (t shows
 * just those) and drops the objects they reject, before any is read.
 * A conjunct that does not bind here (other columns, outer references,
 * subqueries) is left for the scan; it binds again, fully, after FROM. */
static int prefilter(void *arg, table *t)
{
  prefilter_ctx *c = arg;
  binder *B = c->B;
  ast_expr **acs = NULL;
  int nac = 0, acap = 0;
  sql__ast_conjuncts(B, c->where, &acs, &nac, &acap);
  scope *sc = sql__scope_new(B, t->ncols, NULL);
  for (int i = 0; i < t->ncols; i++) {
    sc->cols[i].table = c->f->alias;
    sc->cols[i].name = t->names[i];
    switch (t->types[i]) {
    case FT_BOOLEAN: sc->cols[i].type = sql__st(SQL_BOOLEAN); break;
    case FT_BIGINT: sc->cols[i].type = sql__st(SQL_BIGINT); break;
    case FT_DOUBLE: sc->cols[i].type = sql__st(SQL_DOUBLE); break;
    case FT_DATE: sc->cols[i].type = sql__st(SQL_DATE); break;
    case FT_TIMESTAMP: sc->cols[i].type = sql__st(SQL_TIMESTAMP); break;
    default: sc->cols[i].type = sql__st(SQL_VARCHAR); break;
    }
  }
  bexpr **preds = arena_alloc(B->a, sizeof(bexpr *) * (size_t)(nac > 0 ? nac : 1));
  int n = 0;
  sql_pos pos_save = B->pos != NULL ? *B->pos : (sql_pos){0, 0};
  const char *clause_save = B->clause;
  bool corr_save = B->corr_hit;
  B->clause = "WHERE";
  for (int k = 0; k < nac; k++) {
    if (ast_has_query(acs[k]))
      continue;
    bexpr *b;
    if (sql__bind_expr(B, acs[k], sc, 0, &b) < 0) {
      err_clear(B->e);
      continue;
    }
    if (b->type.t == SQL_BOOLEAN)
      preds[n++] = b;
  }
  B->clause = clause_save;
  B->corr_hit = corr_save;
  if (B->pos != NULL)
    *B->pos = pos_save;
  return sql__table_prune(B->q, t, preds, n);
}

/* Opens the table at path (lists and sniffs its objects) and makes its
 * scan; errors point at the FROM item f. */
static int scan_open(binder *B, ast_from *f, const char *path, const table_opts *o0, plan **out)
{
  table *t;
  err e2;
  err_clear(&e2);
  table_opts o1 = *o0;
  const table_opts *o = &o1;
  prefilter_ctx pc = {.B = B, .f = f, .where = B->from_where};
  if (B->from_where != NULL) {
    o1.prefilter = prefilter;
    o1.prefilter_ctx = &pc;
  }
  B->from_where = NULL; /* for this table only */
  int rc = sql__table_open(B->q, path, o, &t, &e2);
  if (rc < 0) {
    if (B->pos) {
      B->pos->line = f->line;
      B->pos->col = f->col;
    }
    /* a failure inside the prefilter (a cast) is recorded in the query */
    err_set(B->e, rc, "%s", e2.msg[0] != '\0' ? e2.msg : B->q->err.msg);
    return rc;
  }
  plan *p = sql__plan_new(B, P_SCAN, t->ncols);
  p->table = t;
  p->used = arena_alloc(B->a, sizeof(bool) * (size_t)(t->ncols > 0 ? t->ncols : 1));
  for (int i = 0; i < t->ncols; i++) {
    p->cols[i].name = t->names[i];
    if (t->stypes != NULL && i < t->nfile) {
      p->cols[i].type = t->stypes[i];
      continue;
    }
    switch (t->types[i]) {
    case FT_BOOLEAN: p->cols[i].type = sql__st(SQL_BOOLEAN); break;
    case FT_BIGINT: p->cols[i].type = sql__st(SQL_BIGINT); break;
    case FT_DOUBLE: p->cols[i].type = sql__st(SQL_DOUBLE); break;
    case FT_DATE: p->cols[i].type = sql__st(SQL_DATE); break;
    case FT_TIMESTAMP: p->cols[i].type = sql__st(SQL_TIMESTAMP); break;
    default: p->cols[i].type = sql__st(SQL_VARCHAR); break;
    }
  }
  *out = p;
  return 0;
}

static int bind_table_func(binder *B, ast_from *f, plan **out)
{
  const char *fn = f->name;
  table_opts o;
  memset(&o, 0, sizeof o);
  o.format = -1;
  o.csv.header = -1;
  if (!strcmp(fn, "read_csv") || !strcmp(fn, "read_csv_auto"))
    o.format = FMT_CSV;
  else if (!strcmp(fn, "read_json") || !strcmp(fn, "read_json_auto") ||
           !strcmp(fn, "read_ndjson") || !strcmp(fn, "read_jsonl"))
    o.format = FMT_JSONL;
  else if (!strcmp(fn, "read_parquet") || !strcmp(fn, "parquet_scan"))
    o.format = FMT_PARQUET;
  else
    return sql__errx(B, f->line, f->col,
                     "unknown table function '%s' (use read_csv, read_json or read_parquet)",
                     fn);
  const char *path = NULL;
  int rc;
  for (int i = 0; i < f->nargs; i++) {
    ast_arg *a = &f->args[i];
    value v = {.null = true};
    sql_type t = SQL_NULL;
    if ((rc = const_arg(B, a->value, &v, &t)) < 0)
      return rc;
    ast_expr *ax = a->value;
    if (a->name == NULL) {
      if (i != 0 || t != SQL_VARCHAR)
        return sql__errx(B, ax->line, ax->col, "the first argument of %s is the path", fn);
      path = arena_strndup(B->a, v.s.ptr, v.s.len);
      continue;
    }
    const char *n = a->name;
    bool is_str = t == SQL_VARCHAR;
    bool is_bool = t == SQL_BOOLEAN;
    if (!strcmp(n, "header")) {
      if (!is_bool)
        return sql__errx(B, ax->line, ax->col, "header must be true or false");
      o.csv.header = v.null ? -1 : (int)v.i;
    } else if (!strcmp(n, "delim") || !strcmp(n, "sep") || !strcmp(n, "delimiter")) {
      if (!is_str || v.s.len < 1 || v.s.len > 2)
        return sql__errx(B, ax->line, ax->col, "delim must be one character");
      o.csv.delim = v.s.ptr[0];
      if (v.s.len == 2 && v.s.ptr[0] == '\\' && v.s.ptr[1] == 't')
        o.csv.delim = '\t';
      else if (v.s.len == 2)
        return sql__errx(B, ax->line, ax->col, "delim must be one character");
    } else if (!strcmp(n, "quote")) {
      if (!is_str || v.s.len != 1)
        return sql__errx(B, ax->line, ax->col, "quote must be one character");
      o.csv.quote = v.s.ptr[0];
    } else if (!strcmp(n, "escape")) {
      if (!is_str || v.s.len != 1)
        return sql__errx(B, ax->line, ax->col, "escape must be one character");
      o.csv.escape = v.s.ptr[0];
    } else if (!strcmp(n, "nullstr") || !strcmp(n, "null")) {
      if (!is_str)
        return sql__errx(B, ax->line, ax->col, "nullstr must be a string");
      o.csv.nullstr = arena_strndup(B->a, v.s.ptr, v.s.len);
    } else if (!strcmp(n, "ignore_errors") || !strcmp(n, "skip_malformed")) {
      if (!is_bool)
        return sql__errx(B, ax->line, ax->col, "%s must be true or false", n);
      o.skip_malformed = v.i != 0;
    } else if (!strcmp(n, "format")) {
      if (!is_str)
        return sql__errx(B, ax->line, ax->col, "format must be a string");
      if (v.s.len == 3 && !strncasecmp(v.s.ptr, "csv", 3))
        o.format = FMT_CSV;
      else if (v.s.len >= 4 && (!strncasecmp(v.s.ptr, "json", 4) ||
                                !strncasecmp(v.s.ptr, "ndjson", 6)))
        o.format = FMT_JSONL;
      else if (v.s.len == 7 && !strncasecmp(v.s.ptr, "parquet", 7))
        o.format = FMT_PARQUET;
      else
        return sql__errx(B, ax->line, ax->col, "unknown format (csv, json or parquet)");
    } else if (!strcmp(n, "columns")) {
      if (!is_str)
        return sql__errx(B, ax->line, ax->col,
                         "columns must be a string such as 'id BIGINT, name VARCHAR'");
      /* "name type, name type" */
      char *s = arena_strndup(B->a, v.s.ptr, v.s.len);
      size_t cap = 1;
      for (char *p = s; *p; p++)
        cap += *p == ',';
      const char **names = arena_alloc(B->a, sizeof(char *) * cap);
      fmt_type *types = arena_alloc(B->a, sizeof(fmt_type) * cap);
      size_t nc = 0;
      char *save = NULL;
      for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
          tok++;
        char *sp = strchr(tok, ' ');
        if (sp == NULL)
          return sql__errx(B, ax->line, ax->col, "columns: '%s' needs a name and a type", tok);
        *sp = '\0';
        names[nc] = tok;
        if (parse_type_name(sp + 1, &types[nc]) < 0)
          return sql__errx(B, ax->line, ax->col, "columns: unknown type '%s'", sp + 1);
        nc++;
      }
      o.csv.ncols = nc;
      o.csv.names = names;
      o.csv.types = types;
    } else if (!strcmp(n, "hive_partitioning")) {
      if (!is_bool)
        return sql__errx(B, ax->line, ax->col, "hive_partitioning must be true or false");
      o.no_partitions = !v.null && v.i == 0;
    } else if (!strcmp(n, "auto_detect") || !strcmp(n, "sample_size") ||
               !strcmp(n, "compression") || !strcmp(n, "filename")) {
      /* accepted for DuckDB compatibility; detection is always on */
    } else {
      return sql__errx(B, ax->line, ax->col, "unknown option '%s' of %s", n, fn);
    }
  }
  if (path == NULL)
    return sql__errx(B, f->line, f->col, "%s needs a path such as 's3://bucket/prefix/*.csv'", fn);
  return scan_open(B, f, path, &o, out);
}

/* FROM S3Object (sql_options.object): the one object the caller gave, read
 * with its options; CSV columns are text (an empty field is '', not NULL)
 * and, when positional, _1, _2, ... */
static int bind_object_source(binder *B, ast_from *f, plan **out)
{
  const sql_object_source *src = B->q->object;
  table_opts o;
  memset(&o, 0, sizeof o);
  o.format = src->format == SQL_OBJECT_CSV    ? FMT_CSV
             : src->format == SQL_OBJECT_JSON ? FMT_JSONL
                                              : FMT_PARQUET;
  o.no_partitions = true;
  o.csv.delim = src->delim != 0 ? src->delim : ',';
  o.csv.quote = src->quote;
  o.csv.escape = src->escape;
  o.csv.header = src->header ? 1 : 0;
  int rc = scan_open(B, f, "s3://" SQL__OBJECT_BUCKET "/object", &o, out);
  if (rc < 0 || src->format != SQL_OBJECT_CSV)
    return rc;
  plan *p = *out;
  for (int i = 0; i < p->ncols && i < p->table->nfile; i++) {
    if (src->positional)
      p->cols[i].name = arena_sprintf(B->a, "_%d", i + 1);
    if (src->text) {
      p->table->csv.nullstr = fmt_no_null; /* an empty field is '' */
      p->table->types[i] = FT_VARCHAR;
      p->cols[i].type = sql__st(SQL_VARCHAR);
    }
  }
  return 0;
}

static int apply_col_aliases(binder *B, plan *p, const char **names, int n, int line, int col)
{
  if (n == 0)
    return 0;
  if (n != p->ncols)
    return sql__errx(B, line, col, "column alias list has %d names but the table has %d columns", n,
                     p->ncols);
  for (int i = 0; i < n; i++)
    p->cols[i].name = names[i];
  return 0;
}

/* a plan whose column names can be changed without touching the child */
static plan *rename_wrap(binder *B, plan *p)
{
  if (p->kind == P_PROJECT)
    return p;
  plan *pr = sql__plan_new(B, P_PROJECT, p->ncols);
  pr->child = p;
  pr->exprs = sql__args_new(B, p->ncols);
  for (int i = 0; i < p->ncols; i++) {
    pr->exprs[i] = sql__bx_col(B->a, i, p->cols[i].type);
    pr->cols[i] = p->cols[i];
  }
  return pr;
}

static int bind_values(binder *B, ast_from *f, plan **out)
{
  int nc = f->nvalcols;
  plan *p = sql__plan_new(B, P_VALUES, nc);
  p->nrows = f->nrows;
  p->rows = arena_alloc(B->a, sizeof(value *) * (size_t)f->nrows);
  bexpr ***cells = arena_alloc(B->a, sizeof(bexpr **) * (size_t)f->nrows);
  scope empty = {0};
  int rc;
  for (int c = 0; c < nc; c++)
    p->cols[c].type = sql__st(SQL_NULL);
  for (int r = 0; r < f->nrows; r++) {
    cells[r] = sql__args_new(B, nc);
    for (int c = 0; c < nc; c++) {
      if ((rc = sql__bind_expr(B, f->rows[r][c], &empty, 0, &cells[r][c])) < 0)
        return rc;
      if (cells[r][c]->kind != BX_CONST)
        return sql__errx(B, f->rows[r][c]->line, f->rows[r][c]->col,
                         "VALUES holds constants only");
      stype u;
      if (!sql__common_type(p->cols[c].type, cells[r][c]->type, &u)) {
        char t1[48], t2[48];
        return sql__errx(B, f->rows[r][c]->line, f->rows[r][c]->col,
                         "VALUES column %d has types %s and %s", c + 1,
                         sql__stype_name(p->cols[c].type, t1, sizeof t1),
                         sql__stype_name(cells[r][c]->type, t2, sizeof t2));
      }
      p->cols[c].type = u;
    }
  }
  for (int c = 0; c < nc; c++) {
    if (p->cols[c].type.t == SQL_NULL)
      p->cols[c].type = sql__st(SQL_VARCHAR);
    p->cols[c].name = arena_sprintf(B->a, "_col%d", c);
  }
  for (int r = 0; r < f->nrows; r++) {
    p->rows[r] = arena_alloc(B->a, sizeof(value) * (size_t)(nc > 0 ? nc : 1));
    for (int c = 0; c < nc; c++) {
      bexpr *v = sql__fold(B, sql__bind_cast(B->q, cells[r][c], p->cols[c].type));
      if (v->kind != BX_CONST)
        return sql__errx(B, f->rows[r][c]->line, f->rows[r][c]->col, "cannot convert this value");
      p->rows[r][c] = v->v;
    }
  }
  *out = p;
  return 0;
}

static int bind_join(binder *B, ast_from *f, scope *outer, plan **out, scope **sc)
{
  plan *lp, *rp;
  scope *ls, *rs;
  int rc;
  if ((rc = sql__bind_from(B, f->left, outer, &lp, &ls)) < 0)
    return rc;
  if ((rc = sql__bind_from(B, f->right, outer, &rp, &rs)) < 0)
    return rc;
  int nl = lp->ncols, nr = rp->ncols;
  plan *j = sql__plan_new(B, P_JOIN, nl + nr);
  j->child = lp;
  j->right = rp;
  j->join = f->join;
  memcpy(j->cols, lp->cols, sizeof(pcol) * (size_t)nl);
  memcpy(j->cols + nl, rp->cols, sizeof(pcol) * (size_t)nr);
  scope *s = sql__scope_new(B, nl + nr, outer);
  memcpy(s->cols, ls->cols, sizeof(scol) * (size_t)nl);
  memcpy(s->cols + nl, rs->cols, sizeof(scol) * (size_t)nr);
  /* USING / NATURAL: equality keys, the right columns hidden */
  const char **using_cols = f->using_cols;
  int nusing = f->nusing;
  if (f->natural) {
    using_cols = arena_alloc(B->a, sizeof(char *) * (size_t)(nl > 0 ? nl : 1));
    nusing = 0;
    for (int i = 0; i < nl; i++)
      if (!ls->cols[i].hidden && sql__scope_find(rs, NULL, ls->cols[i].name, false) >= 0)
        using_cols[nusing++] = ls->cols[i].name;
    if (nusing == 0)
      j->join = JN_CROSS;
  }
  int *lu = arena_alloc(B->a, sizeof(int) * (size_t)(nusing > 0 ? nusing : 1));
  int *ru = arena_alloc(B->a, sizeof(int) * (size_t)(nusing > 0 ? nusing : 1));
  for (int k = 0; k < nusing; k++) {
    int li = sql__scope_find(ls, NULL, using_cols[k], false);
    int ri = sql__scope_find(rs, NULL, using_cols[k], false);
    if (li < 0 || ri < 0)
      return sql__errx(B, f->line, f->col, "column '%s' in USING is not on both sides",
                       using_cols[k]);
    lu[k] = li;
    ru[k] = ri;
    bexpr *l = sql__bx_col(B->a, li, ls->cols[li].type);
    bexpr *r = sql__bx_col(B->a, ri, rs->cols[ri].type);
    if ((rc = sql__unify2(B, &l, &r, "USING", f->line, f->col)) < 0)
      return rc;
    sql__join_add_key(B, j, l, r);
    s->cols[nl + ri].hidden = true;
  }
  if (f->on != NULL) {
    const char *save = B->clause;
    B->clause = "ON";
    bexpr *cond;
    rc = sql__bind_expr(B, f->on, s, 0, &cond);
    B->clause = save;
    if (rc < 0)
      return rc;
    if ((rc = sql__need_bool(B, &cond, "ON condition")) < 0)
      return rc;
    bexpr **cs = NULL;
    int n = 0, cap = 0;
    sql__conjuncts(B, cond, &cs, &n, &cap);
    for (int k = 0; k < n; k++) {
      bexpr *x = cs[k];
      int lo = -1, hi = -1;
      sql__expr_range(x, &lo, &hi);
      bool has_sub = sql__expr_has_subquery(x);
      if (!has_sub && sql__join_add_eq_key(B, j, x))
        continue;
      /* one-sided conditions of the inner side go into that side */
      if (!has_sub && lo >= nl && (j->join == JN_INNER || j->join == JN_LEFT)) {
        bexpr *c = sql__bexpr_copy(B->a, x);
        sql__expr_shift(c, -nl);
        j->right = sql__push_pred(B, j->right, c);
        continue;
      }
      if (!has_sub && hi < nl && lo >= 0 && (j->join == JN_INNER || j->join == JN_RIGHT)) {
        j->child = sql__push_pred(B, j->child, x);
        continue;
      }
      sql__join_add_cond(B, j, x);
    }
  }
  if (j->join == JN_CROSS && (j->nkeys > 0 || j->cond != NULL))
    j->join = JN_INNER;
  plan *res = j;
  /* RIGHT/FULL USING: the visible key is the one that is not NULL */
  if (nusing > 0 && (j->join == JN_RIGHT || j->join == JN_FULL)) {
    plan *pr = sql__plan_new(B, P_PROJECT, nl + nr);
    pr->child = j;
    pr->exprs = sql__args_new(B, nl + nr);
    for (int i = 0; i < nl + nr; i++) {
      pr->exprs[i] = sql__bx_col(B->a, i, j->cols[i].type);
      pr->cols[i] = j->cols[i];
    }
    for (int k = 0; k < nusing; k++) {
      bexpr *co = sql__bx_new(B, BX_COALESCE, j->lkeys[k]->type, f->line, f->col);
      co->nargs = 2;
      co->args = sql__args_new(B, 2);
      co->args[0] = j->lkeys[k];
      bexpr *rk = sql__bexpr_copy(B->a, j->rkeys[k]);
      sql__expr_shift(rk, nl);
      co->args[1] = rk;
      pr->exprs[lu[k]] = co;
      pr->cols[lu[k]].type = co->type;
      s->cols[lu[k]].type = co->type;
    }
    res = pr;
  }
  (void)ru;
  *out = res;
  *sc = s;
  return 0;
}

/* A table of the catalog: its scan, then a projection that gives the
 * declared columns in the declared order with the declared types (a
 * column the objects lack is NULL; a type the reader does not give, as
 * DECIMAL from text or INTEGER over Parquet's INT64, is a cast or a
 * retyping of the same values). */
static int bind_cat_table(binder *B, ast_from *f, plan **out)
{
  cat_tdef td;
  err e2;
  err_clear(&e2);
  int rc = sql__cat_table(B->q, f->name, &td, &e2);
  if (rc == ERR_ENTITY_NOT_FOUND)
    return sql__errx(B, f->line, f->col, "table '%s.%s' does not exist", td.db, td.name);
  if (rc < 0) {
    if (B->pos) {
      B->pos->line = f->line;
      B->pos->col = f->col;
    }
    err_set(B->e, rc, "%s", e2.msg);
    return rc;
  }
  plan *sp;
  if ((rc = scan_open(B, f, td.display, &td.opts, &sp)) < 0)
    return rc;
  int n = td.ncols + td.npkeys;
  plan *pr = sql__plan_new(B, P_PROJECT, n);
  pr->child = sp;
  pr->exprs = sql__args_new(B, n);
  bool same = n == sp->ncols;
  for (int i = 0; i < n; i++) {
    stype want = td.stypes[i];
    int j = -1;
    for (int k = 0; k < sp->ncols && j < 0; k++)
      if (strcasecmp(sp->cols[k].name, td.names[i]) == 0)
        j = k;
    bexpr *x;
    if (j < 0) {
      x = sql__bx_new(B, BX_CONST, want, f->line, f->col);
      x->v.null = true;
      same = false;
    } else {
      stype have = sp->cols[j].type;
      x = sql__bx_col(B->a, j, have);
      same = same && j == i && have.t == want.t && strcmp(sp->cols[j].name, td.names[i]) == 0;
      if (have.t != want.t && sql__stype_integer(have.t) && sql__stype_integer(want.t))
        x->type = want; /* the same 64-bit values */
      else if (have.t != want.t || (want.t == SQL_DECIMAL && (have.prec != want.prec ||
                                                             have.scale != want.scale)))
        x = sql__bind_cast(B->q, x, want);
    }
    pr->exprs[i] = x;
    pr->cols[i].name = td.names[i];
    pr->cols[i].type = want;
  }
  *out = same ? sp : pr;
  return 0;
}

static ast_cte *find_cte(binder *B, const char *name)
{
  for (ctedef *c = B->ctes; c != NULL; c = c->next)
    if (sql__name_eq(c->cte->name, name))
      return c->cte;
  return NULL;
}

int sql__bind_from(binder *B, ast_from *f, scope *outer, plan **out, scope **sc)
{
  int rc;
  plan *p = NULL;
  const char *alias = f->alias;
  switch (f->kind) {
  case FR_JOIN:
    return bind_join(B, f, outer, out, sc);
  case FR_TABLE:
    if (f->is_path) {
      table_opts o;
      memset(&o, 0, sizeof o);
      o.format = -1;
      o.csv.header = -1;
      if ((rc = scan_open(B, f, f->name, &o, &p)) < 0)
        return rc;
    } else if (B->q->object != NULL && sql__name_eq(f->name, B->q->object->name)) {
      if ((rc = bind_object_source(B, f, &p)) < 0)
        return rc;
    } else {
      ast_cte *c = find_cte(B, f->name);
      if (c == NULL && B->q->cat != NULL) {
        if (f->alias == NULL) {
          const char *dot = strrchr(f->name, '.');
          f->alias = dot != NULL ? dot + 1 : f->name;
          alias = f->alias;
        }
        if ((rc = bind_cat_table(B, f, &p)) < 0)
          return rc;
        break;
      }
      if (c == NULL)
        return sql__errx(B, f->line, f->col,
                         "table '%s' does not exist (name objects as 's3://bucket/prefix/*.csv' "
                         "or read_csv('s3://...'))", f->name);
      /* a CTE sees the CTEs defined before it */
      ctedef *save = B->ctes;
      ctedef *cd = B->ctes;
      while (cd != NULL && cd->cte != c)
        cd = cd->next;
      B->ctes = cd != NULL ? cd->next : save;
      rc = sql__bind_query(B, c->query, NULL, &p);
      B->ctes = save;
      if (rc < 0)
        return rc;
      p = rename_wrap(B, p);
      if ((rc = apply_col_aliases(B, p, c->cols, c->ncols, f->line, f->col)) < 0)
        return rc;
      if (alias == NULL)
        alias = c->name;
    }
    break;
  case FR_FUNC:
    if ((rc = bind_table_func(B, f, &p)) < 0)
      return rc;
    break;
  case FR_SUBQUERY:
    if ((rc = sql__bind_query(B, f->sub, NULL, &p)) < 0)
      return rc;
    p = rename_wrap(B, p);
    break;
  case FR_VALUES:
    if ((rc = bind_values(B, f, &p)) < 0)
      return rc;
    p = rename_wrap(B, p);
    break;
  default:
    return sql__errx(B, f->line, f->col, "unsupported FROM item");
  }
  if (f->ncolalias > 0) {
    p = rename_wrap(B, p);
    if ((rc = apply_col_aliases(B, p, f->colalias, f->ncolalias, f->line, f->col)) < 0)
      return rc;
  }
  *out = p;
  *sc = sql__scope_of_plan(B, p, alias, outer);
  return 0;
}
