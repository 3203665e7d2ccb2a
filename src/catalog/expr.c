/* catalog/expr.c -- the filters of listings: GetPartitions' predicate over
 * partition keys, and GetTables' table-name pattern.
 *
 * Why our own parser: the predicate language is the small WHERE subset
 * Glue and Athena accept (comparisons, IN, BETWEEN, LIKE, IS NULL, AND, OR,
 * NOT), typed by the table's partition keys, and it must be checked against
 * those keys before any partition is read.
 *
 * Grammar (keywords case-insensitive):
 *   or    := and (OR and)*
 *   and   := not (AND not)*
 *   not   := NOT not | '(' or ')' | pred
 *   pred  := key cmp lit | key [NOT] IN '(' lit (',' lit)* ')'
 *          | key [NOT] BETWEEN lit AND lit | key [NOT] LIKE string
 *          | key IS [NOT] NULL
 *   cmp   := '=' | '<>' | '!=' | '<' | '>' | '<=' | '>='
 *   key   := name | "name" | `name`
 *   lit   := 'string' ('' is a quote) | number
 *
 * Invariants:
 *   (1) A parsed expression names only keys of its table (by index), and
 *       every literal under a numeric key is a number.
 *   (2) Nesting is bounded (MAX_DEPTH) and the text is bounded
 *       (CATALOG_MAX_EXPRESSION), so parsing and matching are bounded.
 *
 * Start reading at catalog_expr_parse().
 */
#include "catalog/internal.h"

#include "base/mem.h"

#include <ctype.h>
#include <math.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 64
#define MAX_KEYS CATALOG_MAX_COLUMNS

enum node_kind { N_AND, N_OR, N_NOT, N_CMP, N_IN, N_BETWEEN, N_LIKE, N_NULL };
enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_GT, OP_LE, OP_GE };

typedef struct lit {
  char *text;          /* the literal as text (a number's digits as written) */
  double num;          /* its value under a numeric key */
} lit;

typedef struct node node;
struct node {
  enum node_kind kind;
  node *a, *b;         /* N_AND, N_OR: both; N_NOT: a */
  size_t key;          /* index of the partition key */
  bool numeric;        /* the key compares as a number */
  enum cmp_op op;      /* N_CMP */
  bool negate;         /* NOT IN, NOT BETWEEN, NOT LIKE, IS NOT NULL */
  lit *lits;           /* N_CMP: 1, N_BETWEEN: 2, N_IN: n, N_LIKE: 1 */
  size_t nlits;
};

struct catalog_expr {
  node *root;
};

typedef struct parser {
  const char *s;       /* the text */
  size_t pos;
  const json_t *keys;  /* PartitionKeys */
  int depth;
  err *e;
} parser;

/* ---- types ---- */

bool catalog_type_numeric(const char *t)
{
  static const char *const numeric[] = {"tinyint", "smallint", "int", "integer", "bigint",
                                        "long", "float", "double", "decimal", "real", NULL};
  if (t == NULL)
    return false;
  for (int i = 0; numeric[i] != NULL; i++) {
    size_t n = strlen(numeric[i]);
    if (strncasecmp(t, numeric[i], n) == 0 && (t[n] == '\0' || t[n] == '('))
      return true;
  }
  return false;
}

/* ---- lexing ---- */

static void skip_space(parser *p)
{
  while (isspace((unsigned char)p->s[p->pos]))
    p->pos++;
}

static int fail(parser *p, const char *what)
{
  return err_set(p->e, ERR_INVALID_INPUT, "Unsupported expression '%s': %s at position %zu",
                 p->s, what, p->pos + 1);
}

/* Consumes keyword kw (a whole word) when next. */
static bool keyword(parser *p, const char *kw)
{
  skip_space(p);
  size_t n = strlen(kw);
  if (strncasecmp(p->s + p->pos, kw, n) != 0)
    return false;
  char c = p->s[p->pos + n];
  if (isalnum((unsigned char)c) || c == '_')
    return false;
  p->pos += n;
  return true;
}

static bool punct(parser *p, const char *t)
{
  skip_space(p);
  size_t n = strlen(t);
  if (strncmp(p->s + p->pos, t, n) != 0)
    return false;
  p->pos += n;
  return true;
}

/* A key name; *out is its index in keys. */
static int parse_key(parser *p, size_t *out, bool *numeric)
{
  skip_space(p);
  char name[CATALOG_MAX_NAME + 1];
  size_t n = 0;
  char c = p->s[p->pos];
  if (c == '"' || c == '`') {
    p->pos++;
    while (p->s[p->pos] != '\0' && p->s[p->pos] != c) {
      if (n == CATALOG_MAX_NAME)
        return fail(p, "a name is too long");
      name[n++] = p->s[p->pos++];
    }
    if (p->s[p->pos] != c)
      return fail(p, "an unterminated name");
    p->pos++;
  } else {
    while (isalnum((unsigned char)p->s[p->pos]) || p->s[p->pos] == '_' ||
           (unsigned char)p->s[p->pos] >= 0x80) {
      if (n == CATALOG_MAX_NAME)
        return fail(p, "a name is too long");
      name[n++] = p->s[p->pos++];
    }
  }
  name[n] = '\0';
  if (n == 0)
    return fail(p, "a partition key was expected");
  size_t i;
  json_t *k;
  json_array_foreach(p->keys, i, k)
  {
    const char *kn = json_string_value(json_object_get(k, "Name"));
    if (kn != NULL && strcasecmp(kn, name) == 0) {
      *out = i;
      *numeric = catalog_type_numeric(json_string_value(json_object_get(k, "Type")));
      return 0;
    }
  }
  return err_set(p->e, ERR_INVALID_INPUT, "Unsupported expression '%s': '%s' is not a "
                 "partition key", p->s, name);
}

static int parse_lit(parser *p, bool numeric, lit *out)
{
  skip_space(p);
  size_t start = p->pos;
  char *text;
  if (p->s[p->pos] == '\'') {
    size_t cap = strlen(p->s + p->pos) + 1;
    text = xmalloc(cap);
    size_t n = 0;
    p->pos++;
    for (;;) {
      char c = p->s[p->pos];
      if (c == '\0') {
        free(text);
        p->pos = start;
        return fail(p, "an unterminated string");
      }
      p->pos++;
      if (c == '\'') {
        if (p->s[p->pos] != '\'')
          break;
        p->pos++;
      }
      text[n++] = c;
    }
    text[n] = '\0';
  } else {
    char *end;
    strtod(p->s + p->pos, &end);
    if (end == p->s + p->pos)
      return fail(p, "a literal was expected");
    text = xstrndup(p->s + p->pos, (size_t)(end - (p->s + p->pos)));
    p->pos = (size_t)(end - p->s);
  }
  out->text = text;
  out->num = 0;
  if (numeric) {
    char *end;
    out->num = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(out->num)) {
      p->pos = start;
      free(text);
      out->text = NULL;
      return fail(p, "a number was expected for a numeric partition key");
    }
  }
  return 0;
}

/* ---- parsing ---- */

static node *node_free(node *n)
{
  if (n == NULL)
    return NULL;
  node_free(n->a);
  node_free(n->b);
  for (size_t i = 0; i < n->nlits; i++)
    free(n->lits[i].text);
  free(n->lits);
  free(n);
  return NULL;
}

static node *node_new(enum node_kind kind)
{
  node *n = xcalloc(1, sizeof *n);
  n->kind = kind;
  return n;
}

static int add_lit(parser *p, node *n)
{
  n->lits = xrealloc(n->lits, (n->nlits + 1) * sizeof *n->lits);
  if (parse_lit(p, n->numeric, &n->lits[n->nlits]) != 0)
    return p->e->code;
  n->nlits++;
  return 0;
}

static int parse_or(parser *p, node **out);

static int parse_pred(parser *p, node **out)
{
  size_t key;
  bool numeric;
  if (parse_key(p, &key, &numeric) != 0)
    return p->e->code;
  node *n = node_new(N_CMP);
  n->key = key;
  n->numeric = numeric;
  int rc = 0;
  if (keyword(p, "IS")) {
    n->kind = N_NULL;
    n->negate = keyword(p, "NOT");
    if (!keyword(p, "NULL"))
      rc = fail(p, "NULL was expected");
    goto done;
  }
  n->negate = keyword(p, "NOT");
  if (keyword(p, "IN")) {
    n->kind = N_IN;
    if (!punct(p, "(")) {
      rc = fail(p, "'(' was expected");
      goto done;
    }
    do {
      if ((rc = add_lit(p, n)) != 0)
        goto done;
    } while (punct(p, ","));
    if (!punct(p, ")"))
      rc = fail(p, "')' was expected");
  } else if (keyword(p, "BETWEEN")) {
    n->kind = N_BETWEEN;
    if ((rc = add_lit(p, n)) == 0 && !keyword(p, "AND"))
      rc = fail(p, "AND was expected");
    if (rc == 0)
      rc = add_lit(p, n);
  } else if (keyword(p, "LIKE")) {
    n->kind = N_LIKE;
    bool num = n->numeric;
    n->numeric = false;
    skip_space(p);
    if (p->s[p->pos] != '\'')
      rc = fail(p, "a string was expected after LIKE");
    else
      rc = add_lit(p, n);
    n->numeric = num;
  } else if (n->negate) {
    rc = fail(p, "IN, BETWEEN or LIKE was expected after NOT");
  } else {
    static const struct {
      const char *t;
      enum cmp_op op;
    } ops[] = {{"<>", OP_NE}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
               {"=", OP_EQ},  {"<", OP_LT},  {">", OP_GT}};
    size_t i;
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
      if (punct(p, ops[i].t))
        break;
    if (i == sizeof ops / sizeof ops[0])
      rc = fail(p, "a comparison was expected");
    else {
      n->op = ops[i].op;
      rc = add_lit(p, n);
    }
  }
done:
  if (rc != 0) {
    node_free(n);
    return rc;
  }
  *out = n;
  return 0;
}

static int parse_not(parser *p, node **out)
{
  if (++p->depth > MAX_DEPTH)
    return fail(p, "the expression is nested too deeply");
  int rc;
  if (keyword(p, "NOT")) {
    node *n = node_new(N_NOT);
    if ((rc = parse_not(p, &n->a)) != 0) {
      node_free(n);
      return rc;
    }
    *out = n;
  } else if (punct(p, "(")) {
    if ((rc = parse_or(p, out)) != 0)
      return rc;
    if (!punct(p, ")")) {
      *out = node_free(*out);
      return fail(p, "')' was expected");
    }
  } else if ((rc = parse_pred(p, out)) != 0) {
    return rc;
  }
  p->depth--;
  return 0;
}

static int parse_chain(parser *p, node **out, bool or)
{
  node *left;
  int rc = or ? parse_chain(p, &left, false) : parse_not(p, &left);
  if (rc != 0)
    return rc;
  while (keyword(p, or ? "OR" : "AND")) {
    node *n = node_new(or ? N_OR : N_AND);
    n->a = left;
    left = n;
    if ((rc = or ? parse_chain(p, &n->b, false) : parse_not(p, &n->b)) != 0) {
      node_free(left);
      return rc;
    }
  }
  *out = left;
  return 0;
}

static int parse_or(parser *p, node **out)
{
  return parse_chain(p, out, true);
}

int catalog_expr_parse(const char *text, const json_t *keys, catalog_expr **out, err *e)
{
  *out = NULL;
  if (text == NULL)
    return err_set(e, ERR_INVALID_INPUT, "the expression is empty");
  if (strlen(text) > CATALOG_MAX_EXPRESSION)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at 'expression' "
                   "failed to satisfy constraint: Member must have length less than or equal "
                   "to %d", CATALOG_MAX_EXPRESSION);
  parser p = {.s = text, .keys = keys, .e = e};
  node *root;
  if (parse_or(&p, &root) != 0)
    return e->code;
  skip_space(&p);
  if (p.s[p.pos] != '\0') {
    node_free(root);
    return fail(&p, "unexpected text");
  }
  catalog_expr *x = xmalloc(sizeof *x);
  x->root = root;
  *out = x;
  return 0;
}

catalog_expr *catalog_expr_free(catalog_expr *x)
{
  if (x != NULL) {
    node_free(x->root);
    free(x);
  }
  return NULL;
}

/* ---- matching ---- */

/* SQL LIKE: '%' any run, '_' one byte. */
static bool like(const char *s, const char *pat)
{
  const char *star = NULL;
  const char *back = NULL;
  while (*s != '\0') {
    if (*pat == '%') {
      star = ++pat;
      back = s;
    } else if (*pat == '_' || *pat == *s) {
      pat++;
      s++;
    } else if (star != NULL) {
      pat = star;
      s = ++back;
    } else {
      return false;
    }
  }
  while (*pat == '%')
    pat++;
  return *pat == '\0';
}

/* -1, 0, 1; *ok false when a numeric value does not parse. */
static int compare(const node *n, const char *v, const lit *l, bool *ok)
{
  *ok = true;
  if (!n->numeric) {
    int c = strcmp(v, l->text);
    return c < 0 ? -1 : c > 0;
  }
  char *end;
  double d = strtod(v, &end);
  if (end == v || *end != '\0') {
    *ok = false;
    return 0;
  }
  return d < l->num ? -1 : d > l->num;
}

static bool eval(const node *n, const json_t *values)
{
  switch (n->kind) {
  case N_AND:
    return eval(n->a, values) && eval(n->b, values);
  case N_OR:
    return eval(n->a, values) || eval(n->b, values);
  case N_NOT:
    return !eval(n->a, values);
  default:
    break;
  }
  const char *v = json_string_value(json_array_get(values, n->key));
  if (n->kind == N_NULL)
    return (v == NULL) != n->negate;
  if (v == NULL)
    return false;
  bool ok;
  bool r = false;
  switch (n->kind) {
  case N_CMP: {
    int c = compare(n, v, &n->lits[0], &ok);
    if (!ok)
      return false;
    switch (n->op) {
    case OP_EQ: return c == 0;
    case OP_NE: return c != 0;
    case OP_LT: return c < 0;
    case OP_GT: return c > 0;
    case OP_LE: return c <= 0;
    case OP_GE: return c >= 0;
    }
    return false;
  }
  case N_IN:
    for (size_t i = 0; i < n->nlits && !r; i++) {
      r = compare(n, v, &n->lits[i], &ok) == 0;
      if (!ok)
        return false;
    }
    break;
  case N_BETWEEN: {
    int lo = compare(n, v, &n->lits[0], &ok);
    if (!ok)
      return false;
    int hi = compare(n, v, &n->lits[1], &ok);
    r = lo >= 0 && hi <= 0;
    break;
  }
  case N_LIKE:
    r = like(v, n->lits[0].text);
    break;
  default:
    return false;
  }
  return r != n->negate;
}

bool catalog_expr_match(const catalog_expr *x, const json_t *values)
{
  return x == NULL || eval(x->root, values);
}

/* ---- table-name patterns ----
 * PCRE2 rather than POSIX regcomp: glibc's compiler copies the tree for
 * every stacked quantifier ("a++++..."), gigabytes for a 2 KB pattern;
 * PCRE2 refuses such patterns and bounds each match (MATCH_LIMIT). */

#define MATCH_LIMIT 100000u

struct catalog_pattern {
  pcre2_code *code;
  pcre2_match_data *md;
  pcre2_match_context *mctx;
};

int catalog__pattern_compile(const char *text, catalog_pattern **out, err *e)
{
  *out = NULL;
  size_t n = strlen(text);
  if (n > CATALOG_MAX_EXPRESSION)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at 'expression' "
                   "failed to satisfy constraint: Member must have length less than or equal "
                   "to %d", CATALOG_MAX_EXPRESSION);
  /* a lone '*' (Hive's wildcard) as ".*" */
  char *re = xmalloc(n * 2 + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char prev = i > 0 ? text[i - 1] : '\0';
    if (text[i] == '*' && prev != '.' && prev != ')' && prev != ']' && prev != '\\')
      re[o++] = '.';
    re[o++] = text[i];
  }
  int ec;
  PCRE2_SIZE eo;
  pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, o,
                                   PCRE2_UTF | PCRE2_CASELESS | PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                                   &ec, &eo, NULL);
  free(re);
  if (code == NULL) {
    PCRE2_UCHAR msg[120];
    pcre2_get_error_message(ec, msg, sizeof msg);
    return err_set(e, ERR_INVALID_INPUT, "Invalid expression '%s': %s", text, (char *)msg);
  }
  catalog_pattern *p = xmalloc(sizeof *p);
  p->code = code;
  p->md = pcre2_match_data_create_from_pattern(code, NULL);
  p->mctx = pcre2_match_context_create(NULL);
  if (p->md == NULL || p->mctx == NULL)
    mem_out_of_memory();
  pcre2_set_match_limit(p->mctx, MATCH_LIMIT);
  pcre2_set_depth_limit(p->mctx, MATCH_LIMIT);
  *out = p;
  return 0;
}

bool catalog__pattern_match(const catalog_pattern *p, const char *name)
{
  if (name == NULL)
    return false;
  return pcre2_match(p->code, (PCRE2_SPTR)name, strlen(name), 0, 0, p->md, p->mctx) >= 0;
}

catalog_pattern *catalog__pattern_free(catalog_pattern *p)
{
  if (p != NULL) {
    pcre2_match_data_free(p->md);
    pcre2_match_context_free(p->mctx);
    pcre2_code_free(p->code);
    free(p);
  }
  return NULL;
}
