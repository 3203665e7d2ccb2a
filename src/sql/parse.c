/* sql/parse.c -- recursive-descent parser for the SELECT dialect of
 * Athena / Presto (see ast.h for the tree).
 *
 * Grammar, lowest precedence first:
 *   query    := [WITH cte, ...] setexpr [ORDER BY ...] [OFFSET n] [LIMIT n|ALL] [OFFSET n]
 *   setexpr  := setterm {(UNION | EXCEPT) [ALL|DISTINCT] setterm}
 *   setterm  := setprim {INTERSECT [ALL|DISTINCT] setprim}
 *   setprim  := SELECT ... | VALUES ... | '(' query ')'
 *   expr     := or; or := and {OR and}; and := not {AND not}; not := NOT not | pred
 *   pred     := concat {cmp concat | IS ... | [NOT] IN/BETWEEN/LIKE ...}
 *   concat   := add {'||' add}; add := mul {(+|-) mul}; mul := unary {(*|/|%) unary}
 *   unary    := (-|+) unary | postfix; postfix := primary {'::' type}
 * The binary levels (or to mul) are one precedence-climbing loop,
 * parse_binary(), over the table binops[].
 *
 * Invariants:
 *   (1) Every node records the line and column of its first token, so the
 *       binder can point at it.
 *   (2) Recursion is bounded by SQL_MAX_DEPTH (a clear error, not a crash).
 */
#include "parse_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char *const reserved[] = {
  "all", "and", "as", "between", "by", "case", "cross", "distinct", "else", "end", "except",
  "exists", "false", "fetch", "from", "full", "group", "having", "in", "inner", "intersect",
  "is", "join", "left", "like", "ilike", "limit", "natural", "not", "null", "offset", "on",
  "or", "order", "outer", "right", "select", "then", "true", "union", "using", "values",
  "when", "where", "with", "window", NULL,
};

bool sql__reserved(const char *w)
{
  for (int i = 0; reserved[i]; i++)
    if (strcmp(reserved[i], w) == 0)
      return true;
  return false;
}

static token *peek(parser *p)
{
  return &p->t[p->i];
}

static token *peek2(parser *p)
{
  return p->i + 1 < p->n ? &p->t[p->i + 1] : &p->t[p->n - 1];
}

static bool is_kw(token *t, const char *kw)
{
  return t->kind == TK_IDENT && strcmp(t->text, kw) == 0;
}

static bool is_op(token *t, const char *op)
{
  return t->kind == TK_OP && strcmp(t->text, op) == 0;
}

static bool accept_kw(parser *p, const char *kw)
{
  if (is_kw(peek(p), kw)) {
    p->i++;
    return true;
  }
  return false;
}

static bool accept_op(parser *p, const char *op)
{
  if (is_op(peek(p), op)) {
    p->i++;
    return true;
  }
  return false;
}

static const char *tok_desc(token *t, char *out, size_t n)
{
  if (t->kind == TK_EOF)
    return "end of statement";
  snprintf(out, n, "'%.40s'", t->text);
  return out;
}

static int syntax(parser *p, const char *expected)
{
  token *t = peek(p);
  char b[64];
  return sql__error_at(p->e, p->pos, t->line, t->col, "syntax error at %s: expected %s",
                      tok_desc(t, b, sizeof b), expected);
}

static int expect_kw(parser *p, const char *kw)
{
  if (accept_kw(p, kw))
    return 0;
  char exp[64];
  snprintf(exp, sizeof exp, "%s", kw);
  for (char *c = exp; *c; c++)
    if (*c >= 'a' && *c <= 'z')
      *c = (char)(*c - 32);
  return syntax(p, exp);
}

static int expect_op(parser *p, const char *op)
{
  if (accept_op(p, op))
    return 0;
  char exp[16];
  snprintf(exp, sizeof exp, "'%s'", op);
  return syntax(p, exp);
}


static void vpush(parser *p, vecp *v, void *x)
{
  if (v->n == v->cap) {
    int nc = v->cap ? v->cap * 2 : 8;
    void **nv = arena_alloc(p->a, sizeof(void *) * (size_t)nc);
    if (v->n)
      memcpy(nv, v->v, sizeof(void *) * (size_t)v->n);
    v->v = nv;
    v->cap = nc;
  }
  v->v[v->n++] = x;
}

static ast_expr *new_expr(parser *p, int kind, token *at)
{
  ast_expr *x = arena_alloc(p->a, sizeof *x);
  x->kind = kind;
  x->line = at->line;
  x->col = at->col;
  return x;
}

static int parse_expr(parser *p, ast_expr **out);
static int parse_query(parser *p, ast_query **out);

/* an identifier (name of a column, alias, table): unquoted non-reserved or quoted */
static int parse_ident(parser *p, const char **out, const char *what)
{
  token *t = peek(p);
  if (t->kind == TK_QIDENT || (t->kind == TK_IDENT && !sql__reserved(t->text))) {
    *out = t->text;
    p->i++;
    return 0;
  }
  return syntax(p, what);
}

static bool starts_query(parser *p)
{
  int j = p->i;
  while (j < p->n && is_op(&p->t[j], "("))
    j++;
  return j < p->n && (is_kw(&p->t[j], "select") || is_kw(&p->t[j], "with") ||
                      is_kw(&p->t[j], "values"));
}

static int parse_type(parser *p, ast_type *ty)
{
  token *t = peek(p);
  if (t->kind != TK_IDENT)
    return syntax(p, "a type name");
  const char *w = t->text;
  p->i++;
  memset(ty, 0, sizeof *ty);
  if (!strcmp(w, "boolean") || !strcmp(w, "bool"))
    ty->type = SQL_BOOLEAN;
  else if (!strcmp(w, "smallint") || !strcmp(w, "tinyint"))
    ty->type = SQL_SMALLINT;
  else if (!strcmp(w, "integer") || !strcmp(w, "int"))
    ty->type = SQL_INTEGER;
  else if (!strcmp(w, "bigint"))
    ty->type = SQL_BIGINT;
  else if (!strcmp(w, "double") || !strcmp(w, "real") || !strcmp(w, "float")) {
    ty->type = SQL_DOUBLE;
    accept_kw(p, "precision");
  } else if (!strcmp(w, "decimal") || !strcmp(w, "numeric")) {
    ty->type = SQL_DECIMAL;
    ty->precision = 18;
    ty->scale = 0;
    if (accept_op(p, "(")) {
      token *a = peek(p);
      if (a->kind != TK_INT)
        return syntax(p, "a precision");
      ty->precision = atoi(a->text);
      p->i++;
      if (accept_op(p, ",")) {
        token *b = peek(p);
        if (b->kind != TK_INT)
          return syntax(p, "a scale");
        ty->scale = atoi(b->text);
        p->i++;
      }
      int rc = expect_op(p, ")");
      if (rc < 0)
        return rc;
      if (ty->precision < 1 || ty->precision > 38 || ty->scale < 0 ||
          ty->scale > ty->precision)
        return sql__error_at(p->e, p->pos, t->line, t->col, "invalid DECIMAL(%d, %d)",
                            ty->precision, ty->scale);
      if (ty->precision > 18)
        return sql__error_at(p->e, p->pos, t->line, t->col,
                            "DECIMAL precision above 18 is not supported (use DOUBLE)");
    }
  } else if (!strcmp(w, "varchar") || !strcmp(w, "char") || !strcmp(w, "string") ||
             !strcmp(w, "text") || !strcmp(w, "json")) {
    ty->type = SQL_VARCHAR;
    if (accept_op(p, "(")) {
      if (peek(p)->kind != TK_INT)
        return syntax(p, "a length");
      p->i++;
      int rc = expect_op(p, ")");
      if (rc < 0)
        return rc;
    }
  } else if (!strcmp(w, "date"))
    ty->type = SQL_DATE;
  else if (!strcmp(w, "timestamp")) {
    ty->type = SQL_TIMESTAMP;
    if (accept_op(p, "(")) {
      if (peek(p)->kind != TK_INT)
        return syntax(p, "a precision");
      p->i++;
      int rc = expect_op(p, ")");
      if (rc < 0)
        return rc;
    }
  } else {
    p->i--;
    return sql__error_at(p->e, p->pos, t->line, t->col, "unknown type '%s'", w);
  }
  return 0;
}

static int parse_order_list(parser *p, ast_order **out, int *n)
{
  vecp v = {0};
  do {
    ast_order *o = arena_alloc(p->a, sizeof *o);
    int rc = parse_expr(p, &o->expr);
    if (rc < 0)
      return rc;
    if (accept_kw(p, "desc"))
      o->desc = true;
    else
      accept_kw(p, "asc");
    if (accept_kw(p, "nulls")) {
      if (accept_kw(p, "first"))
        o->nulls = 1;
      else if (accept_kw(p, "last"))
        o->nulls = 2;
      else
        return syntax(p, "FIRST or LAST");
    }
    vpush(p, &v, o);
  } while (accept_op(p, ","));
  *out = arena_alloc(p->a, sizeof(ast_order) * (size_t)v.n);
  for (int i = 0; i < v.n; i++)
    (*out)[i] = *(ast_order *)v.v[i];
  *n = v.n;
  return 0;
}

static int parse_frame_bound(parser *p, int *kind, int64_t *n)
{
  if (accept_kw(p, "unbounded")) {
    if (accept_kw(p, "preceding")) {
      *kind = FB_UNBOUNDED_PRECEDING;
      return 0;
    }
    if (accept_kw(p, "following")) {
      *kind = FB_UNBOUNDED_FOLLOWING;
      return 0;
    }
    return syntax(p, "PRECEDING or FOLLOWING");
  }
  if (accept_kw(p, "current")) {
    *kind = FB_CURRENT;
    return expect_kw(p, "row");
  }
  token *t = peek(p);
  if (t->kind != TK_INT)
    return syntax(p, "a frame bound");
  *n = atoll(t->text);
  p->i++;
  if (accept_kw(p, "preceding"))
    *kind = FB_PRECEDING;
  else if (accept_kw(p, "following"))
    *kind = FB_FOLLOWING;
  else
    return syntax(p, "PRECEDING or FOLLOWING");
  return 0;
}

static int parse_window(parser *p, ast_window **out)
{
  int rc = expect_op(p, "(");
  if (rc < 0)
    return rc;
  ast_window *w = arena_alloc(p->a, sizeof *w);
  if (accept_kw(p, "partition")) {
    if ((rc = expect_kw(p, "by")) < 0)
      return rc;
    vecp v = {0};
    do {
      ast_expr *x;
      if ((rc = parse_expr(p, &x)) < 0)
        return rc;
      vpush(p, &v, x);
    } while (accept_op(p, ","));
    w->partition = (ast_expr **)v.v;
    w->npartition = v.n;
  }
  if (accept_kw(p, "order")) {
    if ((rc = expect_kw(p, "by")) < 0)
      return rc;
    if ((rc = parse_order_list(p, &w->order, &w->norder)) < 0)
      return rc;
  }
  if (is_kw(peek(p), "rows") || is_kw(peek(p), "range")) {
    w->has_frame = true;
    w->rows = is_kw(peek(p), "rows");
    p->i++;
    if (accept_kw(p, "between")) {
      if ((rc = parse_frame_bound(p, &w->start_kind, &w->start_n)) < 0)
        return rc;
      if ((rc = expect_kw(p, "and")) < 0)
        return rc;
      if ((rc = parse_frame_bound(p, &w->end_kind, &w->end_n)) < 0)
        return rc;
    } else {
      if ((rc = parse_frame_bound(p, &w->start_kind, &w->start_n)) < 0)
        return rc;
      w->end_kind = FB_CURRENT;
    }
  }
  *out = w;
  return expect_op(p, ")");
}

static int parse_primary(parser *p, ast_expr **out);

static int parse_postfix(parser *p, ast_expr **out)
{
  int rc = parse_primary(p, out);
  if (rc < 0)
    return rc;
  while (is_op(peek(p), "::")) {
    token *t = peek(p);
    p->i++;
    ast_expr *c = new_expr(p, EX_CAST, t);
    c->args = arena_alloc(p->a, sizeof(ast_expr *));
    c->args[0] = *out;
    c->nargs = 1;
    c->line = (*out)->line;
    c->col = (*out)->col;
    if ((rc = parse_type(p, &c->type)) < 0)
      return rc;
    *out = c;
  }
  return 0;
}

static ast_expr *unary(parser *p, const char *op, ast_expr *inner, token *at)
{
  ast_expr *x = new_expr(p, EX_UNARY, at);
  x->op = op;
  x->args = arena_alloc(p->a, sizeof(ast_expr *));
  x->args[0] = inner;
  x->nargs = 1;
  return x;
}

static int parse_unary(parser *p, ast_expr **out)
{
  token *t = peek(p);
  if (is_op(t, "-") || is_op(t, "+")) {
    p->i++;
    ast_expr *inner;
    int rc = parse_unary(p, &inner);
    if (rc < 0)
      return rc;
    /* fold a sign into a numeric literal */
    if (is_op(t, "-") && (inner->kind == EX_INT || inner->kind == EX_NUMBER ||
                          inner->kind == EX_FLOAT) && inner->text[0] != '-') {
      inner->text = arena_sprintf(p->a, "-%s", inner->text);
      inner->line = t->line;
      inner->col = t->col;
      *out = inner;
      return 0;
    }
    if (is_op(t, "+")) {
      *out = inner;
      return 0;
    }
    *out = unary(p, "-", inner, t);
    return 0;
  }
  return parse_postfix(p, out);
}

static ast_expr *binary(parser *p, const char *op, ast_expr *l, ast_expr *r, token *at)
{
  ast_expr *x = new_expr(p, EX_BINARY, at);
  x->op = op;
  x->args = arena_alloc(p->a, sizeof(ast_expr *) * 2);
  x->args[0] = l;
  x->args[1] = r;
  x->nargs = 2;
  return x;
}

/* Precedence levels of the operators, loosest first. NOT is a prefix
 * operator between AND and the predicates; the predicates (comparisons,
 * IS, [NOT] IN / BETWEEN / LIKE) share one level. */
enum {
  PREC_OR = 1,
  PREC_AND,
  PREC_NOT,
  PREC_PRED,
  PREC_CONCAT,
  PREC_ADD,
  PREC_MUL,
};

/* The binary operators: the token (punctuation, or a keyword for AND and
 * OR), its precedence and associativity, and the op the tree records. */
static const struct binop {
  const char *tok;
  bool kw;              /* tok is a keyword (TK_IDENT), else punctuation (TK_OP) */
  int prec;
  bool right;           /* right-associative (none is today) */
  const char *op;       /* EX_BINARY's op */
} binops[] = {
  {"or", true, PREC_OR, false, "or"},
  {"and", true, PREC_AND, false, "and"},
  {"=", false, PREC_PRED, false, "="},
  {"<>", false, PREC_PRED, false, "<>"},
  {"!=", false, PREC_PRED, false, "<>"},
  {"<", false, PREC_PRED, false, "<"},
  {"<=", false, PREC_PRED, false, "<="},
  {">", false, PREC_PRED, false, ">"},
  {">=", false, PREC_PRED, false, ">="},
  {"||", false, PREC_CONCAT, false, "||"},
  {"+", false, PREC_ADD, false, "+"},
  {"-", false, PREC_ADD, false, "-"},
  {"*", false, PREC_MUL, false, "*"},
  {"/", false, PREC_MUL, false, "/"},
  {"%", false, PREC_MUL, false, "%"},
};

static const struct binop *binop_find(token *t)
{
  for (size_t k = 0; k < sizeof binops / sizeof binops[0]; k++) {
    const struct binop *b = &binops[k];
    if (b->kw ? is_kw(t, b->tok) : is_op(t, b->tok))
      return b;
  }
  return NULL;
}

static int parse_binary(parser *p, int min, ast_expr **out);

/* The suffixes of the predicate level after *out: IS [NOT] NULL / TRUE /
 * FALSE / DISTINCT FROM, [NOT] IN, [NOT] BETWEEN, [NOT] [I]LIKE. Returns 1
 * when one was parsed (into *out), 0 when the next token starts none. */
static int parse_pred_suffix(parser *p, ast_expr **out)
{
  int rc;
  token *t = peek(p);
  if (is_kw(t, "is")) {
    p->i++;
    bool neg = accept_kw(p, "not");
    if (accept_kw(p, "null")) {
      ast_expr *x = new_expr(p, EX_IS_NULL, t);
      x->args = arena_alloc(p->a, sizeof(ast_expr *));
      x->args[0] = *out;
      x->nargs = 1;
      x->neg = neg;
      x->line = (*out)->line;
      x->col = (*out)->col;
      *out = x;
      return 1;
    }
    if (accept_kw(p, "distinct")) {
      if ((rc = expect_kw(p, "from")) < 0)
        return rc;
      ast_expr *r;
      if ((rc = parse_binary(p, PREC_CONCAT, &r)) < 0)
        return rc;
      ast_expr *x = binary(p, "distinct", *out, r, t);
      x->kind = EX_IS_DISTINCT;
      x->neg = neg;
      *out = x;
      return 1;
    }
    if (is_kw(peek(p), "true") || is_kw(peek(p), "false")) {
      /* x IS [NOT] TRUE: x IS NOT DISTINCT FROM TRUE */
      ast_expr *b = new_expr(p, EX_BOOL, peek(p));
      b->ival = is_kw(peek(p), "true");
      p->i++;
      ast_expr *x = binary(p, "distinct", *out, b, t);
      x->kind = EX_IS_DISTINCT;
      x->neg = !neg;
      *out = x;
      return 1;
    }
    return syntax(p, "NULL, NOT NULL, TRUE, FALSE or DISTINCT FROM");
  }
  bool neg = false;
  token *nt = t;
  if (is_kw(t, "not") && (is_kw(peek2(p), "in") || is_kw(peek2(p), "between") ||
                          is_kw(peek2(p), "like") || is_kw(peek2(p), "ilike"))) {
    neg = true;
    p->i++;
    t = peek(p);
  }
  if (is_kw(t, "in")) {
    p->i++;
    if ((rc = expect_op(p, "(")) < 0)
      return rc;
    if (starts_query(p)) {
      ast_expr *x = new_expr(p, EX_IN_QUERY, nt);
      if ((rc = parse_query(p, &x->sub)) < 0)
        return rc;
      if ((rc = expect_op(p, ")")) < 0)
        return rc;
      x->args = arena_alloc(p->a, sizeof(ast_expr *));
      x->args[0] = *out;
      x->nargs = 1;
      x->neg = neg;
      *out = x;
      return 1;
    }
    vecp v = {0};
    vpush(p, &v, *out);
    do {
      ast_expr *x;
      if ((rc = parse_expr(p, &x)) < 0)
        return rc;
      vpush(p, &v, x);
    } while (accept_op(p, ","));
    if ((rc = expect_op(p, ")")) < 0)
      return rc;
    ast_expr *x = new_expr(p, EX_IN, nt);
    x->args = (ast_expr **)v.v;
    x->nargs = v.n;
    x->neg = neg;
    *out = x;
    return 1;
  }
  if (is_kw(t, "between")) {
    p->i++;
    ast_expr *lo, *hi;
    if ((rc = parse_binary(p, PREC_CONCAT, &lo)) < 0)
      return rc;
    if ((rc = expect_kw(p, "and")) < 0)
      return rc;
    if ((rc = parse_binary(p, PREC_CONCAT, &hi)) < 0)
      return rc;
    ast_expr *x = new_expr(p, EX_BETWEEN, nt);
    x->args = arena_alloc(p->a, sizeof(ast_expr *) * 3);
    x->args[0] = *out;
    x->args[1] = lo;
    x->args[2] = hi;
    x->nargs = 3;
    x->neg = neg;
    *out = x;
    return 1;
  }
  if (is_kw(t, "like") || is_kw(t, "ilike")) {
    p->i++;
    ast_expr *pat;
    if ((rc = parse_binary(p, PREC_CONCAT, &pat)) < 0)
      return rc;
    ast_expr *x = new_expr(p, EX_LIKE, nt);
    x->args = arena_alloc(p->a, sizeof(ast_expr *) * 3);
    x->args[0] = *out;
    x->args[1] = pat;
    x->nargs = 2;
    if (accept_kw(p, "escape")) {
      if ((rc = parse_binary(p, PREC_CONCAT, &x->args[2])) < 0)
        return rc;
      x->nargs = 3;
    }
    x->neg = neg;
    x->ilike = is_kw(t, "ilike");
    *out = x;
    return 1;
  }
  return 0;
}

/* An operand of an operator of precedence min or tighter: a prefix NOT
 * where min allows it (NOT binds looser than the predicates), else a
 * unary expression. */
static int parse_operand(parser *p, int min, ast_expr **out)
{
  token *t = peek(p);
  if (min > PREC_NOT || !is_kw(t, "not"))
    return parse_unary(p, out);
  p->i++;
  ast_expr *inner;
  int rc = parse_binary(p, PREC_NOT, &inner);
  if (rc < 0)
    return rc;
  *out = unary(p, "not", inner, t);
  return 0;
}

/* Precedence climbing: an operand, then every binary operator (and, at
 * the predicate level, every predicate suffix) of precedence min or
 * tighter, left to right; the right operand of a left-associative
 * operator takes only tighter operators.
 *
 * max is the tightest operator that may still follow: what an operand or
 * a right operand left unconsumed is looser than it, and stays so. After
 * `NOT x` only AND and OR may follow, after a predicate suffix only
 * predicates and looser (`x IS NULL + 1` is an error, `x IS NULL = y` is
 * not). */
static int parse_binary(parser *p, int min, ast_expr **out)
{
  int max = min <= PREC_NOT && is_kw(peek(p), "not") ? PREC_AND : PREC_MUL;
  int rc = parse_operand(p, min, out);
  if (rc < 0)
    return rc;
  for (;;) {
    token *t = peek(p);
    const struct binop *b = binop_find(t);
    if (b != NULL && b->prec >= min && b->prec <= max) {
      p->i++;
      ast_expr *r;
      if ((rc = parse_binary(p, b->right ? b->prec : b->prec + 1, &r)) < 0)
        return rc;
      *out = binary(p, b->op, *out, r, t);
      max = b->prec;
      continue;
    }
    if (min > PREC_PRED || max < PREC_PRED)
      return 0;
    if ((rc = parse_pred_suffix(p, out)) <= 0)
      return rc;
    max = PREC_PRED;
  }
}

static int parse_expr(parser *p, ast_expr **out)
{
  if (++p->depth > SQL_MAX_DEPTH) {
    token *t = peek(p);
    return sql__error_at(p->e, p->pos, t->line, t->col, "expression nested too deeply");
  }
  int rc = parse_binary(p, PREC_OR, out);
  p->depth--;
  return rc;
}

static int parse_case(parser *p, token *t, ast_expr **out)
{
  ast_expr *x = new_expr(p, EX_CASE, t);
  vecp v = {0};
  int rc;
  if (!is_kw(peek(p), "when")) {
    ast_expr *opnd;
    if ((rc = parse_expr(p, &opnd)) < 0)
      return rc;
    vpush(p, &v, opnd);
    x->has_operand = true;
  }
  if (!is_kw(peek(p), "when"))
    return syntax(p, "WHEN");
  while (accept_kw(p, "when")) {
    ast_expr *w, *th;
    if ((rc = parse_expr(p, &w)) < 0)
      return rc;
    if ((rc = expect_kw(p, "then")) < 0)
      return rc;
    if ((rc = parse_expr(p, &th)) < 0)
      return rc;
    vpush(p, &v, w);
    vpush(p, &v, th);
  }
  if (accept_kw(p, "else")) {
    ast_expr *el;
    if ((rc = parse_expr(p, &el)) < 0)
      return rc;
    vpush(p, &v, el);
    x->has_else = true;
  }
  if ((rc = expect_kw(p, "end")) < 0)
    return rc;
  x->args = (ast_expr **)v.v;
  x->nargs = v.n;
  *out = x;
  return 0;
}

static const char *const interval_units[] = {"year", "month", "week", "day", "hour", "minute",
                                             "second", "millisecond", "quarter", NULL};

static const char *unit_word(const char *w)
{
  size_t n = strlen(w);
  for (int k = 0; interval_units[k]; k++) {
    size_t m = strlen(interval_units[k]);
    if (strcmp(w, interval_units[k]) == 0 ||
        (n == m + 1 && strncmp(w, interval_units[k], m) == 0 && w[m] == 's'))
      return interval_units[k];
  }
  return NULL;
}

static int parse_primary(parser *p, ast_expr **out)
{
  token *t = peek(p);
  int rc;
  switch (t->kind) {
  case TK_INT:
    *out = new_expr(p, EX_INT, t);
    (*out)->text = t->text;
    p->i++;
    return 0;
  case TK_NUMBER:
    *out = new_expr(p, EX_NUMBER, t);
    (*out)->text = t->text;
    p->i++;
    return 0;
  case TK_FLOAT:
    *out = new_expr(p, EX_FLOAT, t);
    (*out)->text = t->text;
    p->i++;
    return 0;
  case TK_STRING:
    *out = new_expr(p, EX_STRING, t);
    (*out)->text = t->text;
    p->i++;
    return 0;
  case TK_QIDENT:
  case TK_IDENT:
    break;
  case TK_OP:
    if (is_op(t, "(")) {
      p->i++;
      if (starts_query(p)) {
        ast_expr *x = new_expr(p, EX_SUBQUERY, t);
        if ((rc = parse_query(p, &x->sub)) < 0)
          return rc;
        *out = x;
        return expect_op(p, ")");
      }
      if ((rc = parse_expr(p, out)) < 0)
        return rc;
      if (is_op(peek(p), ","))
        return sql__error_at(p->e, p->pos, peek(p)->line, peek(p)->col,
                            "row constructors are not supported");
      return expect_op(p, ")");
    }
    if (is_op(t, "*")) {
      *out = new_expr(p, EX_STAR, t);
      p->i++;
      return 0;
    }
    return syntax(p, "an expression");
  default:
    return syntax(p, "an expression");
  }
  /* identifiers and keywords */
  const char *w = t->text;
  if (t->kind == TK_IDENT) {
    if (!strcmp(w, "null")) {
      p->i++;
      *out = new_expr(p, EX_NULL, t);
      return 0;
    }
    if (!strcmp(w, "true") || !strcmp(w, "false")) {
      p->i++;
      *out = new_expr(p, EX_BOOL, t);
      (*out)->ival = w[0] == 't';
      return 0;
    }
    if (!strcmp(w, "case")) {
      p->i++;
      return parse_case(p, t, out);
    }
    if (!strcmp(w, "exists") && is_op(peek2(p), "(")) {
      p->i += 2;
      ast_expr *x = new_expr(p, EX_EXISTS, t);
      if ((rc = parse_query(p, &x->sub)) < 0)
        return rc;
      *out = x;
      return expect_op(p, ")");
    }
    if ((!strcmp(w, "cast") || !strcmp(w, "try_cast")) && is_op(peek2(p), "(")) {
      p->i += 2;
      ast_expr *x = new_expr(p, EX_CAST, t);
      x->try_cast = w[0] == 't';
      x->args = arena_alloc(p->a, sizeof(ast_expr *));
      x->nargs = 1;
      if ((rc = parse_expr(p, &x->args[0])) < 0)
        return rc;
      if ((rc = expect_kw(p, "as")) < 0)
        return rc;
      if ((rc = parse_type(p, &x->type)) < 0)
        return rc;
      *out = x;
      return expect_op(p, ")");
    }
    if (!strcmp(w, "extract") && is_op(peek2(p), "(")) {
      p->i += 2;
      ast_expr *x = new_expr(p, EX_EXTRACT, t);
      token *u = peek(p);
      if (u->kind != TK_IDENT)
        return syntax(p, "a date field");
      x->unit = u->text;
      p->i++;
      if ((rc = expect_kw(p, "from")) < 0)
        return rc;
      x->args = arena_alloc(p->a, sizeof(ast_expr *));
      x->nargs = 1;
      if ((rc = parse_expr(p, &x->args[0])) < 0)
        return rc;
      *out = x;
      return expect_op(p, ")");
    }
    if ((!strcmp(w, "date") || !strcmp(w, "timestamp")) && peek2(p)->kind == TK_STRING) {
      p->i++;
      ast_expr *x = new_expr(p, EX_TYPED, t);
      x->type.type = w[0] == 'd' ? SQL_DATE : SQL_TIMESTAMP;
      x->text = peek(p)->text;
      p->i++;
      *out = x;
      return 0;
    }
    if (!strcmp(w, "interval") &&
        (peek2(p)->kind == TK_STRING || peek2(p)->kind == TK_INT || is_op(peek2(p), "-"))) {
      p->i++;
      ast_expr *x = new_expr(p, EX_INTERVAL, t);
      if (accept_op(p, "-"))
        x->neg = true;
      token *v = peek(p);
      if (v->kind != TK_STRING && v->kind != TK_INT)
        return syntax(p, "an interval value");
      x->text = v->text;
      p->i++;
      token *u = peek(p);
      const char *unit = u->kind == TK_IDENT ? unit_word(u->text) : NULL;
      if (unit == NULL)
        return syntax(p, "an interval unit (YEAR, MONTH, DAY, HOUR, MINUTE, SECOND)");
      p->i++;
      x->unit = unit;
      if (accept_kw(p, "to")) {
        token *u2 = peek(p);
        if (u2->kind != TK_IDENT || unit_word(u2->text) == NULL)
          return syntax(p, "an interval unit");
        p->i++;
        x->op = unit_word(u2->text);
      }
      *out = x;
      return 0;
    }
    if (!strcmp(w, "current_date") || !strcmp(w, "current_timestamp") ||
        !strcmp(w, "localtimestamp") || !strcmp(w, "now")) {
      if (strcmp(w, "now") != 0 || is_op(peek2(p), "(")) {
        p->i++;
        ast_expr *x = new_expr(p, EX_FUNC, t);
        x->name = w;
        if (accept_op(p, "(")) {
          if ((rc = expect_op(p, ")")) < 0)
            return rc;
        }
        *out = x;
        return 0;
      }
    }
    if (sql__reserved(w))
      return syntax(p, "an expression");
  }
  /* function call */
  if (is_op(peek2(p), "(")) {
    p->i += 2;
    ast_expr *x = new_expr(p, EX_FUNC, t);
    x->name = w;
    if (accept_op(p, "*")) {
      x->star = true;
    } else if (!is_op(peek(p), ")")) {
      if (accept_kw(p, "distinct"))
        x->distinct = true;
      else
        accept_kw(p, "all");
      vecp v = {0};
      do {
        ast_expr *a;
        if ((rc = parse_expr(p, &a)) < 0)
          return rc;
        vpush(p, &v, a);
      } while (accept_op(p, ","));
      x->args = (ast_expr **)v.v;
      x->nargs = v.n;
      if (is_kw(peek(p), "order"))
        return sql__error_at(p->e, p->pos, peek(p)->line, peek(p)->col,
                            "ORDER BY inside an aggregate call is not supported");
    }
    if ((rc = expect_op(p, ")")) < 0)
      return rc;
    if (is_kw(peek(p), "filter") && is_op(peek2(p), "(")) {
      p->i += 2;
      if ((rc = expect_kw(p, "where")) < 0)
        return rc;
      if ((rc = parse_expr(p, &x->filter)) < 0)
        return rc;
      if ((rc = expect_op(p, ")")) < 0)
        return rc;
    }
    if (accept_kw(p, "over")) {
      if ((rc = parse_window(p, &x->over)) < 0)
        return rc;
    }
    *out = x;
    return 0;
  }
  /* column, qualified column or qualified star */
  p->i++;
  ast_expr *x = new_expr(p, EX_COLUMN, t);
  x->name = w;
  if (is_op(peek(p), ".")) {
    p->i++;
    if (accept_op(p, "*")) {
      x->kind = EX_STAR;
      x->qual = w;
      x->name = NULL;
      *out = x;
      return 0;
    }
    token *c = peek(p);
    if (c->kind != TK_IDENT && c->kind != TK_QIDENT)
      return syntax(p, "a column name");
    p->i++;
    x->qual = w;
    x->name = c->text;
    if (is_op(peek(p), ".")) {
      /* schema.table.column: keep the last two */
      p->i++;
      token *c2 = peek(p);
      if (c2->kind != TK_IDENT && c2->kind != TK_QIDENT)
        return syntax(p, "a column name");
      p->i++;
      x->qual = c->text;
      x->name = c2->text;
    }
  }
  *out = x;
  return 0;
}

/* ---- FROM ---- */

static int parse_alias(parser *p, const char **alias, const char ***cols, int *ncols)
{
  int rc;
  if (accept_kw(p, "as")) {
    if ((rc = parse_ident(p, alias, "an alias")) < 0)
      return rc;
  } else {
    token *t = peek(p);
    if (t->kind == TK_QIDENT || (t->kind == TK_IDENT && !sql__reserved(t->text) &&
                                 strcmp(t->text, "tablesample") != 0)) {
      *alias = t->text;
      p->i++;
    } else {
      return 0;
    }
  }
  if (cols != NULL && accept_op(p, "(")) {
    vecp v = {0};
    do {
      const char *c = NULL;
      if ((rc = parse_ident(p, &c, "a column alias")) < 0)
        return rc;
      vpush(p, &v, (void *)c);
    } while (accept_op(p, ","));
    if ((rc = expect_op(p, ")")) < 0)
      return rc;
    *cols = (const char **)v.v;
    *ncols = v.n;
  }
  return 0;
}

static int parse_values(parser *p, token *t, ast_from **out)
{
  ast_from *f = arena_alloc(p->a, sizeof *f);
  f->kind = FR_VALUES;
  f->line = t->line;
  f->col = t->col;
  vecp rows = {0};
  int rc;
  do {
    vecp v = {0};
    if (accept_op(p, "(")) {
      do {
        ast_expr *x;
        if ((rc = parse_expr(p, &x)) < 0)
          return rc;
        vpush(p, &v, x);
      } while (accept_op(p, ","));
      if ((rc = expect_op(p, ")")) < 0)
        return rc;
    } else {
      ast_expr *x;
      if ((rc = parse_expr(p, &x)) < 0)
        return rc;
      vpush(p, &v, x);
    }
    if (rows.n > 0 && v.n != f->nvalcols)
      return sql__error_at(p->e, p->pos, t->line, t->col,
                          "VALUES rows have different numbers of columns");
    f->nvalcols = v.n;
    vpush(p, &rows, v.v);
  } while (accept_op(p, ","));
  f->rows = (ast_expr ***)rows.v;
  f->nrows = rows.n;
  *out = f;
  return 0;
}

static int parse_from_item(parser *p, ast_from **out);

static int parse_table_primary(parser *p, ast_from **out)
{
  token *t = peek(p);
  int rc;
  ast_from *f = arena_alloc(p->a, sizeof *f);
  f->line = t->line;
  f->col = t->col;
  if (is_op(t, "(")) {
    if (starts_query(p)) {
      p->i++;
      f->kind = FR_SUBQUERY;
      if ((rc = parse_query(p, &f->sub)) < 0)
        return rc;
      if ((rc = expect_op(p, ")")) < 0)
        return rc;
    } else {
      p->i++;
      if ((rc = parse_from_item(p, &f)) < 0)
        return rc;
      if ((rc = expect_op(p, ")")) < 0)
        return rc;
      if (f->kind == FR_JOIN) {
        *out = f;
        return 0;
      }
    }
  } else if (t->kind == TK_STRING) {
    f->kind = FR_TABLE;
    f->name = t->text;
    f->is_path = true;
    p->i++;
  } else if (is_kw(t, "values")) {
    p->i++;
    if ((rc = parse_values(p, t, &f)) < 0)
      return rc;
  } else if (t->kind == TK_IDENT || t->kind == TK_QIDENT) {
    if (t->kind == TK_IDENT && sql__reserved(t->text))
      return syntax(p, "a table");
    p->i++;
    if (is_op(peek(p), "(")) {
      p->i++;
      f->kind = FR_FUNC;
      f->name = t->text;
      vecp v = {0};
      if (!is_op(peek(p), ")")) {
        do {
          ast_arg *a = arena_alloc(p->a, sizeof *a);
          token *n1 = peek(p);
          token *n2 = peek2(p);
          if ((n1->kind == TK_IDENT || n1->kind == TK_QIDENT) &&
              (is_op(n2, "=") || is_op(n2, "=>") || is_op(n2, ":="))) {
            a->name = n1->text;
            p->i += 2;
          }
          if ((rc = parse_expr(p, &a->value)) < 0)
            return rc;
          vpush(p, &v, a);
        } while (accept_op(p, ","));
      }
      if ((rc = expect_op(p, ")")) < 0)
        return rc;
      f->args = arena_alloc(p->a, sizeof(ast_arg) * (size_t)(v.n ? v.n : 1));
      for (int i = 0; i < v.n; i++)
        f->args[i] = *(ast_arg *)v.v[i];
      f->nargs = v.n;
    } else {
      f->kind = FR_TABLE;
      f->name = t->text;
      while (accept_op(p, ".")) {
        token *c = peek(p);
        if (c->kind != TK_IDENT && c->kind != TK_QIDENT)
          return syntax(p, "a table name");
        p->i++;
        f->name = arena_sprintf(p->a, "%s.%s", f->name, c->text);
      }
    }
  } else {
    return syntax(p, "a table");
  }
  if ((rc = parse_alias(p, &f->alias, &f->colalias, &f->ncolalias)) < 0)
    return rc;
  if (f->kind == FR_SUBQUERY && f->alias == NULL) {
    /* Presto allows it; give it a name nobody can write */
  }
  *out = f;
  return 0;
}

static int parse_from_item(parser *p, ast_from **out)
{
  int rc = parse_table_primary(p, out);
  if (rc < 0)
    return rc;
  for (;;) {
    token *t = peek(p);
    int kind = -1;
    bool natural = false;
    if (accept_kw(p, "natural"))
      natural = true;
    if (accept_kw(p, "join")) {
      kind = JN_INNER;
    } else if (accept_kw(p, "inner")) {
      if ((rc = expect_kw(p, "join")) < 0)
        return rc;
      kind = JN_INNER;
    } else if (accept_kw(p, "left")) {
      accept_kw(p, "outer");
      if ((rc = expect_kw(p, "join")) < 0)
        return rc;
      kind = JN_LEFT;
    } else if (accept_kw(p, "right")) {
      accept_kw(p, "outer");
      if ((rc = expect_kw(p, "join")) < 0)
        return rc;
      kind = JN_RIGHT;
    } else if (accept_kw(p, "full")) {
      accept_kw(p, "outer");
      if ((rc = expect_kw(p, "join")) < 0)
        return rc;
      kind = JN_FULL;
    } else if (accept_kw(p, "cross")) {
      if ((rc = expect_kw(p, "join")) < 0)
        return rc;
      kind = JN_CROSS;
    } else {
      if (natural)
        return syntax(p, "JOIN");
      return 0;
    }
    ast_from *j = arena_alloc(p->a, sizeof *j);
    j->kind = FR_JOIN;
    j->join = kind;
    j->line = t->line;
    j->col = t->col;
    j->left = *out;
    j->natural = natural;
    if ((rc = parse_table_primary(p, &j->right)) < 0)
      return rc;
    if (kind != JN_CROSS && !natural) {
      if (accept_kw(p, "on")) {
        if ((rc = parse_expr(p, &j->on)) < 0)
          return rc;
      } else if (accept_kw(p, "using")) {
        if ((rc = expect_op(p, "(")) < 0)
          return rc;
        vecp v = {0};
        do {
          const char *c = NULL;
          if ((rc = parse_ident(p, &c, "a column name")) < 0)
            return rc;
          vpush(p, &v, (void *)c);
        } while (accept_op(p, ","));
        if ((rc = expect_op(p, ")")) < 0)
          return rc;
        j->using_cols = (const char **)v.v;
        j->nusing = v.n;
      } else {
        return syntax(p, "ON or USING");
      }
    }
    *out = j;
  }
}

/* ---- SELECT ---- */

static int parse_select(parser *p, ast_select **out)
{
  ast_select *s = arena_alloc(p->a, sizeof *s);
  int rc;
  if (accept_kw(p, "distinct"))
    s->distinct = true;
  else
    accept_kw(p, "all");
  vecp items = {0};
  do {
    ast_item *it = arena_alloc(p->a, sizeof *it);
    if ((rc = parse_expr(p, &it->expr)) < 0)
      return rc;
    if (it->expr->kind != EX_STAR) {
      if ((rc = parse_alias(p, &it->alias, NULL, NULL)) < 0)
        return rc;
    }
    vpush(p, &items, it);
  } while (accept_op(p, ","));
  s->items = arena_alloc(p->a, sizeof(ast_item) * (size_t)items.n);
  for (int i = 0; i < items.n; i++)
    s->items[i] = *(ast_item *)items.v[i];
  s->nitems = items.n;
  if (accept_kw(p, "from")) {
    if ((rc = parse_from_item(p, &s->from)) < 0)
      return rc;
    while (is_op(peek(p), ",")) {
      token *t = peek(p);
      p->i++;
      ast_from *j = arena_alloc(p->a, sizeof *j);
      j->kind = FR_JOIN;
      j->join = JN_CROSS;
      j->line = t->line;
      j->col = t->col;
      j->left = s->from;
      if ((rc = parse_from_item(p, &j->right)) < 0)
        return rc;
      s->from = j;
    }
  }
  if (accept_kw(p, "where")) {
    if ((rc = parse_expr(p, &s->where)) < 0)
      return rc;
  }
  if (accept_kw(p, "group")) {
    if ((rc = expect_kw(p, "by")) < 0)
      return rc;
    vecp g = {0};
    do {
      ast_expr *x;
      if ((rc = parse_expr(p, &x)) < 0)
        return rc;
      vpush(p, &g, x);
    } while (accept_op(p, ","));
    s->group = (ast_expr **)g.v;
    s->ngroup = g.n;
  }
  if (accept_kw(p, "having")) {
    if ((rc = parse_expr(p, &s->having)) < 0)
      return rc;
  }
  *out = s;
  return 0;
}

static int parse_set_primary(parser *p, ast_query **out)
{
  token *t = peek(p);
  int rc;
  if (accept_kw(p, "select")) {
    ast_query *q = arena_alloc(p->a, sizeof *q);
    q->kind = Q_SELECT;
    q->line = t->line;
    q->col = t->col;
    if ((rc = parse_select(p, &q->sel)) < 0)
      return rc;
    *out = q;
    return 0;
  }
  if (accept_kw(p, "values")) {
    /* VALUES ... as a query: SELECT * FROM (VALUES ...) */
    ast_query *q = arena_alloc(p->a, sizeof *q);
    q->kind = Q_SELECT;
    q->line = t->line;
    q->col = t->col;
    q->sel = arena_alloc(p->a, sizeof *q->sel);
    q->sel->items = arena_alloc(p->a, sizeof(ast_item));
    q->sel->items[0].expr = new_expr(p, EX_STAR, t);
    q->sel->nitems = 1;
    if ((rc = parse_values(p, t, &q->sel->from)) < 0)
      return rc;
    *out = q;
    return 0;
  }
  if (accept_op(p, "(")) {
    if ((rc = parse_query(p, out)) < 0)
      return rc;
    return expect_op(p, ")");
  }
  return syntax(p, "SELECT");
}

static int parse_set_term(parser *p, ast_query **out)
{
  int rc = parse_set_primary(p, out);
  if (rc < 0)
    return rc;
  while (is_kw(peek(p), "intersect")) {
    token *t = peek(p);
    p->i++;
    ast_query *q = arena_alloc(p->a, sizeof *q);
    q->kind = Q_INTERSECT;
    q->line = t->line;
    q->col = t->col;
    q->all = accept_kw(p, "all");
    if (!q->all)
      accept_kw(p, "distinct");
    q->left = *out;
    if ((rc = parse_set_primary(p, &q->right)) < 0)
      return rc;
    *out = q;
  }
  return 0;
}

static int parse_query(parser *p, ast_query **out)
{
  if (++p->depth > SQL_MAX_DEPTH) {
    token *t = peek(p);
    return sql__error_at(p->e, p->pos, t->line, t->col, "query nested too deeply");
  }
  int rc;
  token *start = peek(p);
  ast_cte *ctes = NULL;
  int nctes = 0;
  if (accept_kw(p, "with")) {
    if (accept_kw(p, "recursive"))
      return sql__error_at(p->e, p->pos, start->line, start->col,
                          "WITH RECURSIVE is not supported");
    vecp v = {0};
    do {
      ast_cte *c = arena_alloc(p->a, sizeof *c);
      if ((rc = parse_ident(p, &c->name, "a name")) < 0)
        return rc;
      if (accept_op(p, "(")) {
        vecp cols = {0};
        do {
          const char *cn = NULL;
          if ((rc = parse_ident(p, &cn, "a column name")) < 0)
            return rc;
          vpush(p, &cols, (void *)cn);
        } while (accept_op(p, ","));
        if ((rc = expect_op(p, ")")) < 0)
          return rc;
        c->cols = (const char **)cols.v;
        c->ncols = cols.n;
      }
      if ((rc = expect_kw(p, "as")) < 0)
        return rc;
      if ((rc = expect_op(p, "(")) < 0)
        return rc;
      if ((rc = parse_query(p, &c->query)) < 0)
        return rc;
      if ((rc = expect_op(p, ")")) < 0)
        return rc;
      vpush(p, &v, c);
    } while (accept_op(p, ","));
    ctes = arena_alloc(p->a, sizeof(ast_cte) * (size_t)v.n);
    for (int i = 0; i < v.n; i++)
      ctes[i] = *(ast_cte *)v.v[i];
    nctes = v.n;
  }
  ast_query *q;
  if ((rc = parse_set_term(p, &q)) < 0)
    return rc;
  while (is_kw(peek(p), "union") || is_kw(peek(p), "except")) {
    token *t = peek(p);
    p->i++;
    ast_query *s = arena_alloc(p->a, sizeof *s);
    s->kind = is_kw(t, "union") ? Q_UNION : Q_EXCEPT;
    s->line = t->line;
    s->col = t->col;
    s->all = accept_kw(p, "all");
    if (!s->all)
      accept_kw(p, "distinct");
    s->left = q;
    if ((rc = parse_set_term(p, &s->right)) < 0)
      return rc;
    q = s;
  }
  /* ORDER BY / LIMIT / OFFSET apply to the whole query; when q already has
     them (a parenthesized query) wrap it */
  bool has_tail = is_kw(peek(p), "order") || is_kw(peek(p), "limit") ||
                  is_kw(peek(p), "offset") || is_kw(peek(p), "fetch");
  if (has_tail && (q->norder > 0 || q->limit != NULL || q->offset != NULL || q->nctes > 0)) {
    ast_query *w = arena_alloc(p->a, sizeof *w);
    w->kind = Q_SELECT;
    w->line = q->line;
    w->col = q->col;
    w->sel = arena_alloc(p->a, sizeof *w->sel);
    w->sel->items = arena_alloc(p->a, sizeof(ast_item));
    w->sel->items[0].expr = new_expr(p, EX_STAR, start);
    w->sel->nitems = 1;
    ast_from *f = arena_alloc(p->a, sizeof *f);
    f->kind = FR_SUBQUERY;
    f->sub = q;
    f->line = q->line;
    f->col = q->col;
    w->sel->from = f;
    q = w;
  }
  if (accept_kw(p, "order")) {
    if ((rc = expect_kw(p, "by")) < 0)
      return rc;
    if ((rc = parse_order_list(p, &q->order, &q->norder)) < 0)
      return rc;
  }
  for (int k = 0; k < 2; k++) {
    if (accept_kw(p, "offset")) {
      if ((rc = parse_expr(p, &q->offset)) < 0)
        return rc;
      if (!accept_kw(p, "rows"))
        accept_kw(p, "row");
    }
    if (accept_kw(p, "limit")) {
      if (accept_kw(p, "all"))
        continue;
      if ((rc = parse_expr(p, &q->limit)) < 0)
        return rc;
    } else if (accept_kw(p, "fetch")) {
      if (!accept_kw(p, "first") && (rc = expect_kw(p, "next")) < 0)
        return rc;
      if ((rc = parse_expr(p, &q->limit)) < 0)
        return rc;
      if (!accept_kw(p, "rows") && (rc = expect_kw(p, "row")) < 0)
        return rc;
      if ((rc = expect_kw(p, "only")) < 0)
        return rc;
    }
  }
  if (nctes > 0) {
    if (q->nctes > 0) {
      /* WITH inside a parenthesized query that also has WITH: wrap */
      ast_query *w = arena_alloc(p->a, sizeof *w);
      *w = *q;
      q = w;
    }
    q->ctes = ctes;
    q->nctes = nctes;
  }
  *out = q;
  p->depth--;
  return 0;
}

int sql__parse(const char *sql, arena *a, ast_query **out, err *e, sql_pos *pos)
{
  token *toks;
  int n;
  int rc = sql__lex(sql, a, &toks, &n, e, pos);
  if (rc < 0)
    return rc;
  parser p = {.t = toks, .n = n, .a = a, .e = e, .pos = pos};
  if (peek(&p)->kind == TK_EOF)
    return sql__error_at(e, pos, 1, 1, "empty statement");
  token *t0 = peek(&p);
  if (t0->kind == TK_IDENT && !is_kw(t0, "select") && !is_kw(t0, "with") &&
      !is_kw(t0, "values") && !is_op(t0, "(")) {
    static const char *const stmts[] = {"insert", "update", "delete", "create", "drop",
                                        "alter", "show", "describe", "explain", NULL};
    for (int k = 0; stmts[k]; k++)
      if (is_kw(t0, stmts[k]))
        return sql__error_at(e, pos, t0->line, t0->col,
                            "only SELECT statements are supported ('%s' is not)", t0->text);
  }
  if ((rc = parse_query(&p, out)) < 0)
    return rc;
  accept_op(&p, ";");
  if (peek(&p)->kind != TK_EOF)
    return syntax(&p, "end of statement");
  return 0;
}

/* ---- COPY ----
 *   copy := COPY '(' query ')' TO 'path' ['(' option {',' option} ')'] [';']
 *   option := name [word | 'string' | integer | '(' name {',' name} ')']
 * The options are only collected here; copy.c reads and checks them.
 * CTAS and INSERT INTO parse onto the same ast_copy with the helpers below. */

/* A statement onto ast_copy: its position is its first token's; skip is
 * how many keyword tokens open it. */
static ast_copy *copy_stmt_begin(parser *p, int skip)
{
  ast_copy *c = arena_alloc(p->a, sizeof *c);
  token *t = peek(p);
  c->line = t->line;
  c->col = t->col;
  p->i += skip;
  return c;
}

/* [';'] then the end of the statement, which is c. */
static int copy_stmt_end(parser *p, ast_copy *c, ast_copy **out)
{
  accept_op(p, ";");
  if (peek(p)->kind != TK_EOF)
    return syntax(p, "end of statement");
  *out = c;
  return 0;
}

/* name {'.' name}: a table's name, qualified or not. */
static int parse_table_name(parser *p, const char **out)
{
  const char *name = NULL;
  int rc;
  if ((rc = parse_ident(p, &name, "a table name")) < 0)
    return rc;
  while (accept_op(p, ".")) {
    const char *part = NULL;
    if ((rc = parse_ident(p, &part, "a table name")) < 0)
      return rc;
    name = arena_sprintf(p->a, "%s.%s", name, part);
  }
  *out = name;
  return 0;
}

/* An option's name: a word, or also a "quoted" one when quoted is set;
 * otherwise a syntax error expecting what. */
static int copt_name(parser *p, ast_copt *o, bool quoted, const char *what)
{
  token *t = peek(p);
  if (t->kind != TK_IDENT && !(quoted && t->kind == TK_QIDENT))
    return syntax(p, what);
  o->name = t->text;
  o->line = t->line;
  o->col = t->col;
  p->i++;
  return 0;
}

/* An option's scalar value: a word, 'string' or integer, or also a
 * "quoted" word when quoted is set. False (nothing taken) otherwise. */
static bool copt_scalar(parser *p, ast_copt *o, bool quoted)
{
  token *t = peek(p);
  if (t->kind != TK_IDENT && t->kind != TK_STRING && t->kind != TK_INT &&
      !(quoted && t->kind == TK_QIDENT))
    return false;
  o->text = t->text;
  o->is_string = t->kind == TK_STRING;
  p->i++;
  return true;
}

/* The collected options (v holds ast_copt *) become c's array. */
static void copy_opts_set(parser *p, ast_copy *c, const vecp *v)
{
  c->opts = arena_alloc(p->a, sizeof(ast_copt) * (size_t)(v->n > 0 ? v->n : 1));
  for (int i = 0; i < v->n; i++)
    c->opts[i] = *(ast_copt *)v->v[i];
  c->nopts = v->n;
}

static int parse_copy_option(parser *p, ast_copt *o)
{
  memset(o, 0, sizeof *o);
  int rc = copt_name(p, o, false, "a COPY option name");
  if (rc < 0)
    return rc;
  if (copt_scalar(p, o, true))
    return 0;
  if (accept_op(p, "(")) {
    vecp v = {0};
    do {
      const char *name;
      if ((rc = parse_ident(p, &name, "a column name")) < 0)
        return rc;
      vpush(p, &v, (void *)name);
    } while (accept_op(p, ","));
    if ((rc = expect_op(p, ")")) < 0)
      return rc;
    o->list = (const char **)v.v;
    o->nlist = v.n;
  }
  return 0;
}

static int parse_copy(parser *p, ast_copy **out)
{
  ast_copy *c = copy_stmt_begin(p, 1);
  token *t;
  int rc;
  if (!is_op(peek(p), "("))
    return syntax(p, "'(' and a query (COPY (SELECT ...) TO 's3://bucket/prefix/')");
  p->i++;
  if ((rc = parse_query(p, &c->query)) < 0)
    return rc;
  if ((rc = expect_op(p, ")")) < 0)
    return rc;
  if ((rc = expect_kw(p, "to")) < 0)
    return rc;
  t = peek(p);
  if (t->kind != TK_STRING)
    return syntax(p, "the target as a string ('s3://bucket/prefix/')");
  c->path = t->text;
  c->path_line = t->line;
  c->path_col = t->col;
  p->i++;
  accept_kw(p, "with");
  if (accept_op(p, "(")) {
    vecp v = {0};
    do {
      ast_copt *o = arena_alloc(p->a, sizeof *o);
      if ((rc = parse_copy_option(p, o)) < 0)
        return rc;
      vpush(p, &v, o);
    } while (accept_op(p, ","));
    if ((rc = expect_op(p, ")")) < 0)
      return rc;
    copy_opts_set(p, c, &v);
  }
  return copy_stmt_end(p, c, out);
}

/* Athena's CTAS:
 *   CREATE TABLE [IF NOT EXISTS] name WITH (prop = value, ...) AS query
 *     [WITH [NO] DATA]
 * where value is 'string', a number, true/false or ARRAY['a', ...]; the
 * properties become COPY options (external_location becomes the path). */
static int parse_ctas(parser *p, ast_copy **out)
{
  ast_copy *c = copy_stmt_begin(p, 2);
  token *t;
  int rc;
  if (accept_kw(p, "if")) {
    if ((rc = expect_kw(p, "not")) < 0 || (rc = expect_kw(p, "exists")) < 0)
      return rc;
    c->if_not_exists = true;
  }
  c->table_line = peek(p)->line;
  c->table_col = peek(p)->col;
  if ((rc = parse_table_name(p, &c->table)) < 0)
    return rc;
  vecp v = {0};
  if (accept_kw(p, "with")) {
    if ((rc = expect_op(p, "(")) < 0)
      return rc;
    do {
      ast_copt *o = arena_alloc(p->a, sizeof *o);
      if ((rc = copt_name(p, o, true, "a table property name")) < 0)
        return rc;
      if ((rc = expect_op(p, "=")) < 0)
        return rc;
      t = peek(p);
      if (is_kw(t, "array")) {
        p->i++;
        if ((rc = expect_op(p, "[")) < 0)
          return rc;
        vecp l = {0};
        if (!is_op(peek(p), "]")) {
          do {
            if (peek(p)->kind != TK_STRING)
              return syntax(p, "a column name as a string");
            vpush(p, &l, (void *)peek(p)->text);
            p->i++;
          } while (accept_op(p, ","));
        }
        if ((rc = expect_op(p, "]")) < 0)
          return rc;
        o->list = (const char **)l.v;
        o->nlist = l.n;
      } else if (!copt_scalar(p, o, false)) {
        return syntax(p, "a property value ('text', a number or ARRAY['a'])");
      }
      if (!strcmp(o->name, "external_location") && o->text != NULL) {
        c->path = o->text;
        c->path_line = o->line;
        c->path_col = o->col;
      } else {
        vpush(p, &v, o);
      }
    } while (accept_op(p, ","));
    if ((rc = expect_op(p, ")")) < 0)
      return rc;
  }
  if ((rc = expect_kw(p, "as")) < 0)
    return rc;
  if ((rc = parse_query(p, &c->query)) < 0)
    return rc;
  if (accept_kw(p, "with")) {
    accept_kw(p, "no");
    if ((rc = expect_kw(p, "data")) < 0)
      return rc;
  }
  copy_opts_set(p, c, &v);
  return copy_stmt_end(p, c, out);
}

/* INSERT INTO name [(columns)] query */
static int parse_insert(parser *p, ast_copy **out)
{
  ast_copy *c = copy_stmt_begin(p, 2);
  c->insert = true;
  int rc;
  c->table_line = peek(p)->line;
  c->table_col = peek(p)->col;
  if ((rc = parse_table_name(p, &c->table)) < 0)
    return rc;
  if (is_op(peek(p), "(") && !starts_query(p)) {
    p->i++;
    vecp v = {0};
    do {
      const char *col;
      if ((rc = parse_ident(p, &col, "a column name")) < 0)
        return rc;
      vpush(p, &v, (void *)col);
    } while (accept_op(p, ","));
    if ((rc = expect_op(p, ")")) < 0)
      return rc;
    c->cols = (const char **)v.v;
    c->ncols = v.n;
  }
  if ((rc = parse_query(p, &c->query)) < 0)
    return rc;
  return copy_stmt_end(p, c, out);
}

int sql__parse_stmt(const char *sql, arena *a, ast_query **q, ast_copy **copy, ast_ddl **ddl,
                   err *e, sql_pos *pos)
{
  *q = NULL;
  *copy = NULL;
  *ddl = NULL;
  token *toks;
  int n;
  int rc = sql__lex(sql, a, &toks, &n, e, pos);
  if (rc < 0)
    return rc;
  parser p = {.t = toks, .n = n, .a = a, .e = e, .pos = pos};
  if (is_kw(peek(&p), "copy"))
    return parse_copy(&p, copy);
  if (is_kw(peek(&p), "create") && is_kw(peek2(&p), "table")) {
    /* only CREATE TABLE ... AS SELECT: other forms keep the old message */
    for (int j = p.i; j < p.n; j++)
      if (is_kw(&p.t[j], "as") && j + 1 < p.n &&
          (is_kw(&p.t[j + 1], "select") || is_kw(&p.t[j + 1], "with") ||
           is_kw(&p.t[j + 1], "values") || is_op(&p.t[j + 1], "(")))
        return parse_ctas(&p, copy);
  }
  if (is_kw(peek(&p), "insert") && is_kw(peek2(&p), "into"))
    return parse_insert(&p, copy);
  rc = sql__parse_ddl(&p, ddl);
  if (rc <= 0)
    return rc;
  return sql__parse(sql, a, q, e, pos);
}

/* ---- the parser's primitives, for the DDL parser (parse_ddl.c) ---- */

token *sql__p_peek(parser *p) { return peek(p); }
token *sql__p_peek2(parser *p) { return peek2(p); }
bool sql__p_is_kw(token *t, const char *kw) { return is_kw(t, kw); }
bool sql__p_is_op(token *t, const char *op) { return is_op(t, op); }
bool sql__p_accept_kw(parser *p, const char *kw) { return accept_kw(p, kw); }
bool sql__p_accept_op(parser *p, const char *op) { return accept_op(p, op); }
int sql__p_syntax(parser *p, const char *expected) { return syntax(p, expected); }
int sql__p_expect_kw(parser *p, const char *kw) { return expect_kw(p, kw); }
int sql__p_expect_op(parser *p, const char *op) { return expect_op(p, op); }
int sql__p_ident(parser *p, const char **out, const char *what)
{
  return parse_ident(p, out, what);
}
int sql__p_table_name(parser *p, const char **out) { return parse_table_name(p, out); }
int sql__p_query(parser *p, ast_query **out) { return parse_query(p, out); }
void sql__p_vpush(parser *p, vecp *v, void *x) { vpush(p, v, x); }
