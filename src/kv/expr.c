/* kv/expr.c -- DynamoDB's expression language: ConditionExpression,
 * FilterExpression, KeyConditionExpression, UpdateExpression and
 * ProjectionExpression, with #name and :value placeholders.
 *
 * Why one file: the five expression kinds share the lexer, document paths
 * and operands; a recursive-descent parser builds a small tree (in the
 * request's arena) that the evaluators walk over an item's typed tree.
 *
 * Grammar (keywords are case-insensitive):
 *   condition := and (OR and)*        and := not (AND not)*
 *   not       := NOT not | '(' condition ')' | function
 *              | operand (cmp operand | BETWEEN operand AND operand
 *                         | IN '(' operand (',' operand)* ')')
 *   function  := attribute_exists(path) | attribute_not_exists(path)
 *              | attribute_type(path, operand) | begins_with(path, operand)
 *              | contains(path, operand)
 *   operand   := path | :value | size(path)
 *   path      := name ('.' name | '[' digits ']')*   name := ident | #name
 *               (an ident may not be a reserved word, reserved.c)
 *   update    := (SET set (',' set)* | REMOVE path (',' path)*
 *               | ADD path :value (',' ...)* | DELETE path :value (',' ...)*)+
 *   set       := path '=' value ;  value := term (('+'|'-') term)?
 *   term      := operand | if_not_exists(path, value) | list_append(value, value)
 *
 * Invariants:
 *   (1) Every placeholder is resolved at parse time; the request fails when
 *       one is undefined or (kv__ctx_check_unused) one is never used.
 *   (2) The right-hand sides of an update are evaluated over the item as it
 *       was before the update; removed list elements are compacted last, so
 *       REMOVE a[0], a[1] removes the first two elements.
 *   (3) A comparison with a missing attribute or of two different types is
 *       false (<> is true).
 *
 * Start reading at kv__parse_condition().
 */
#include "internal.h"

#include "base/mem.h"
#include "base/text.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tok {
  T_EOF, T_NAME, T_HASH, T_VALUE, T_INT, T_LP, T_RP, T_LB, T_RB, T_DOT, T_COMMA,
  T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_PLUS, T_MINUS, T_BAD
};

enum kind {
  N_PATH, N_VAL, N_SIZE, N_IFNE, N_LAPPEND, N_PLUS, N_MINUS,
  N_CMP, N_BETWEEN, N_IN, N_AND, N_OR, N_NOT, N_FUNC,
  N_SET, N_REMOVE, N_ADD, N_DELETE, N_LIST
};

enum fn { F_EXISTS, F_NOT_EXISTS, F_TYPE, F_BEGINS, F_CONTAINS };

typedef struct elem {
  const char *name;  /* NULL: a list index */
  long index;
} elem;

struct kx_node {
  enum kind kind;
  int op;                 /* N_CMP: a token; N_FUNC: an fn */
  kx_node *a, *b, *c;
  kx_node **list;         /* N_IN, N_LIST */
  size_t n;
  elem *path;             /* N_PATH */
  size_t npath;
  json_t *val;            /* N_VAL (borrowed from the context) */
};

typedef struct parser {
  kx_ctx *c;
  const char *what;
  const char *s;
  size_t pos;
  enum tok t;
  size_t tstart, tlen;
  size_t prev_start;
  err *e;
  int rc;
} parser;

void kv__ctx_init(kx_ctx *c, arena *a, json_t *names, json_t *values)
{
  c->a = a;
  c->names = names;
  c->values = values;
  c->used_names = json_object();
  c->used_values = json_object();
}

void kv__ctx_release(kx_ctx *c)
{
  json_decref(c->used_names);
  json_decref(c->used_values);
  c->used_names = c->used_values = NULL;
}

static int unused(json_t *given, json_t *used, const char *what, err *e)
{
  const char *k;
  json_t *v;
  char list[256] = "";
  json_object_foreach(given, k, v) {
    if (json_object_get(used, k) == NULL) {
      size_t l = strlen(list);
      snprintf(list + l, sizeof list - l, "%s%s", l ? ", " : "", k);
    }
  }
  if (list[0] == '\0')
    return 0;
  return err_set(e, KV_ERR_VALIDATION,
                 "Value provided in %s unused in expressions: keys: {%s}", what, list);
}

int kv__ctx_check_unused(kx_ctx *c, err *e)
{
  int rc = unused(c->names, c->used_names, "ExpressionAttributeNames", e);
  return rc != 0 ? rc : unused(c->values, c->used_values, "ExpressionAttributeValues", e);
}

/* ---- lexer ---- */

static void next(parser *p)
{
  const char *s = p->s;
  while (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r')
    p->pos++;
  p->prev_start = p->tstart;
  p->tstart = p->pos;
  char ch = s[p->pos];
  size_t i = p->pos;
  enum tok t = T_BAD;
  if (ch == '\0') {
    t = T_EOF;
  } else if (ch == '#' || ch == ':') {
    i++;
    while (isalnum((unsigned char)s[i]) || s[i] == '_')
      i++;
    t = i > p->pos + 1 ? (ch == '#' ? T_HASH : T_VALUE) : T_BAD;
    if (t == T_BAD)
      i = p->pos + 1;
  } else if (isalpha((unsigned char)ch) || ch == '_') {
    while (isalnum((unsigned char)s[i]) || s[i] == '_')
      i++;
    t = T_NAME;
  } else if (isdigit((unsigned char)ch)) {
    while (isdigit((unsigned char)s[i]))
      i++;
    t = T_INT;
  } else {
    i++;
    switch (ch) {
    case '(': t = T_LP; break;
    case ')': t = T_RP; break;
    case '[': t = T_LB; break;
    case ']': t = T_RB; break;
    case '.': t = T_DOT; break;
    case ',': t = T_COMMA; break;
    case '=': t = T_EQ; break;
    case '+': t = T_PLUS; break;
    case '-': t = T_MINUS; break;
    case '<':
      t = T_LT;
      if (s[i] == '=') { t = T_LE; i++; }
      else if (s[i] == '>') { t = T_NE; i++; }
      break;
    case '>':
      t = T_GT;
      if (s[i] == '=') { t = T_GE; i++; }
      break;
    default: t = T_BAD; break;
    }
  }
  p->t = t;
  p->tlen = i - p->pos;
  p->pos = i;
}

static bool is_kw(const parser *p, const char *kw)
{
  return p->t == T_NAME && p->tlen == strlen(kw) && strncasecmp(p->s + p->tstart, kw, p->tlen) == 0;
}

static int syntax(parser *p)
{
  if (p->rc != 0)
    return p->rc;
  char tok[64];
  if (p->t == T_EOF)
    snprintf(tok, sizeof tok, "<EOF>");
  else
    snprintf(tok, sizeof tok, "%.*s", (int)(p->tlen < 60 ? p->tlen : 60), p->s + p->tstart);
  size_t nstart = p->prev_start < p->tstart ? p->prev_start : p->tstart;
  int nlen = (int)(p->tstart + p->tlen - nstart);
  p->rc = err_set(p->e, KV_ERR_VALIDATION, "Invalid %s: Syntax error; token: \"%s\", near: \"%.*s\"",
                  p->what, tok, nlen > 80 ? 80 : nlen, p->s + nstart);
  return p->rc;
}

static int fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(parser *p, const char *fmt, ...)
{
  if (p->rc != 0)
    return p->rc;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  p->rc = err_set(p->e, KV_ERR_VALIDATION, "Invalid %s: %s", p->what, msg);
  return p->rc;
}

static kx_node *node(parser *p, enum kind k)
{
  kx_node *n = arena_alloc(p->c->a, sizeof *n);
  n->kind = k;
  return n;
}

static char *tok_text(parser *p)
{
  return arena_strndup(p->c->a, p->s + p->tstart, p->tlen);
}

/* ---- paths and operands ---- */

static const char *resolve_name(parser *p)
{
  char *t = tok_text(p);
  if (p->t == T_NAME) {
    if (kv__reserved_word(t, p->tlen)) {
      fail(p, "Attribute name is a reserved keyword; reserved keyword: %s", t);
      return NULL;
    }
    return t;
  }
  json_t *v = json_object_get(p->c->names, t);
  if (!json_is_string(v)) {
    fail(p, "An expression attribute name used in the document path is not defined; attribute "
         "name: %s", t);
    return NULL;
  }
  json_object_set_new(p->c->used_names, t, json_true());
  return json_string_value(v);
}

static kx_node *parse_path(parser *p)
{
  if (p->t != T_NAME && p->t != T_HASH) {
    syntax(p);
    return NULL;
  }
  kx_node *n = node(p, N_PATH);
  size_t cap = 4;
  n->path = arena_alloc(p->c->a, cap * sizeof *n->path);
  for (;;) {
    elem el = {0};
    if (n->npath == 0 || p->t == T_NAME || p->t == T_HASH) {
      el.name = resolve_name(p);
      if (el.name == NULL)
        return NULL;
      next(p);
    } else {
      next(p); /* '[' */
      if (p->t != T_INT) {
        syntax(p);
        return NULL;
      }
      el.index = atol(tok_text(p));
      next(p);
      if (p->t != T_RB) {
        syntax(p);
        return NULL;
      }
      next(p);
    }
    if (n->npath == cap) {
      elem *np = arena_alloc(p->c->a, cap * 2 * sizeof *np);
      memcpy(np, n->path, cap * sizeof *np);
      n->path = np;
      cap *= 2;
    }
    n->path[n->npath++] = el;
    if (n->npath > KV_DEPTH_MAX) {
      fail(p, "The document path has too many nesting levels; nesting levels: %s", "33");
      return NULL;
    }
    if (p->t == T_DOT) {
      next(p);
      if (p->t != T_NAME && p->t != T_HASH) {
        syntax(p);
        return NULL;
      }
    } else if (p->t != T_LB) {
      return n;
    }
  }
}

static kx_node *parse_value_ref(parser *p)
{
  char *t = tok_text(p);
  json_t *v = json_object_get(p->c->values, t);
  if (v == NULL) {
    fail(p, "An expression attribute value used in expression is not defined; attribute value: %s",
         t);
    return NULL;
  }
  json_object_set_new(p->c->used_values, t, json_true());
  kx_node *n = node(p, N_VAL);
  n->val = v;
  next(p);
  return n;
}

static bool peek_call(parser *p)
{
  size_t i = p->pos;
  while (p->s[i] == ' ' || p->s[i] == '\t' || p->s[i] == '\n' || p->s[i] == '\r')
    i++;
  return p->t == T_NAME && p->s[i] == '(';
}

static kx_node *parse_args(parser *p, const char *fname, int want, kx_node **args, bool update);

static kx_node *parse_operand(parser *p, bool update)
{
  if (p->t == T_VALUE)
    return parse_value_ref(p);
  if (peek_call(p)) {
    char *fname = tok_text(p);
    kx_node *args[2] = {0};
    if (strcmp(fname, "size") == 0 && !update) {
      if (parse_args(p, fname, 1, args, false) == NULL)
        return NULL;
      if (args[0]->kind != N_PATH) {
        fail(p, "Operator or function requires a document path; operator or function: %s", fname);
        return NULL;
      }
      kx_node *n = node(p, N_SIZE);
      n->a = args[0];
      return n;
    }
    if (update && (strcmp(fname, "if_not_exists") == 0 || strcmp(fname, "list_append") == 0)) {
      if (parse_args(p, fname, 2, args, true) == NULL)
        return NULL;
      bool ifne = fname[0] == 'i';
      if (ifne && args[0]->kind != N_PATH) {
        fail(p, "Operator or function requires a document path; operator or function: %s", fname);
        return NULL;
      }
      kx_node *n = node(p, ifne ? N_IFNE : N_LAPPEND);
      n->a = args[0];
      n->b = args[1];
      return n;
    }
    fail(p, "Invalid function name; function: %s", fname);
    return NULL;
  }
  return parse_path(p);
}

static kx_node *parse_set_value(parser *p);

/* fname '(' args ')' with the current token on fname. */
static kx_node *parse_args(parser *p, const char *fname, int want, kx_node **args, bool update)
{
  next(p); /* name */
  next(p); /* ( */
  int n = 0;
  kx_node *extra = NULL;
  while (p->t != T_RP) {
    kx_node *a = update ? parse_set_value(p) : parse_operand(p, false);
    if (a == NULL)
      return NULL;
    if (n < want)
      args[n] = a;
    else
      extra = a;
    n++;
    if (p->t == T_COMMA)
      next(p);
    else if (p->t != T_RP) {
      syntax(p);
      return NULL;
    }
  }
  next(p);
  (void)extra;
  if (n != want) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s, number of operands: %d", fname, n);
    fail(p, "Incorrect number of operands for operator or function; operator or function: %s",
         msg);
    return NULL;
  }
  return args[0];
}

/* ---- conditions ---- */

static kx_node *parse_or(parser *p);

static kx_node *parse_function(parser *p)
{
  static const char *const names[] = {"attribute_exists", "attribute_not_exists",
                                      "attribute_type", "begins_with", "contains"};
  static const int nargs[] = {1, 1, 2, 2, 2};
  char *fname = tok_text(p);
  for (int f = 0; f < 5; f++) {
    if (strcmp(fname, names[f]) != 0)
      continue;
    kx_node *args[2] = {0};
    if (parse_args(p, fname, nargs[f], args, false) == NULL)
      return NULL;
    if (args[0]->kind != N_PATH && f != F_CONTAINS && f != F_BEGINS) {
      fail(p, "Operator or function requires a document path; operator or function: %s", fname);
      return NULL;
    }
    kx_node *n = node(p, N_FUNC);
    n->op = f;
    n->a = args[0];
    n->b = args[1];
    if (f == F_TYPE && args[1]->kind == N_VAL) {
      const char *tv = json_string_value(json_object_get(args[1]->val, "S"));
      static const char *const ok[] = {"S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"};
      bool good = false;
      for (int i = 0; i < 10 && tv != NULL && !good; i++)
        good = strcmp(ok[i], tv) == 0;
      if (!good) {
        fail(p, "Invalid attribute type name found; type: %s, valid types: { B,NULL,SS,BOOL,L,BS,"
             "N,NS,S,M }", tv != NULL ? tv : "?");
        return NULL;
      }
    }
    return n;
  }
  if (strcmp(fname, "size") == 0) {
    kx_node *lhs = parse_operand(p, false);
    return lhs; /* the comparison follows; handled by the caller */
  }
  fail(p, "Invalid function name; function: %s", fname);
  return NULL;
}

static kx_node *parse_primary(parser *p)
{
  if (p->t == T_LP) {
    next(p);
    kx_node *n = parse_or(p);
    if (n == NULL)
      return NULL;
    if (p->t != T_RP) {
      syntax(p);
      return NULL;
    }
    next(p);
    return n;
  }
  kx_node *lhs;
  if (peek_call(p) && strcmp(tok_text(p), "size") != 0)
    return parse_function(p);
  lhs = parse_operand(p, false);
  if (lhs == NULL)
    return NULL;
  if (p->t >= T_EQ && p->t <= T_GE) {
    kx_node *n = node(p, N_CMP);
    n->op = p->t;
    next(p);
    n->a = lhs;
    n->b = parse_operand(p, false);
    return n->b == NULL ? NULL : n;
  }
  if (is_kw(p, "BETWEEN")) {
    next(p);
    kx_node *n = node(p, N_BETWEEN);
    n->a = lhs;
    n->b = parse_operand(p, false);
    if (n->b == NULL)
      return NULL;
    if (!is_kw(p, "AND")) {
      syntax(p);
      return NULL;
    }
    next(p);
    n->c = parse_operand(p, false);
    return n->c == NULL ? NULL : n;
  }
  if (is_kw(p, "IN")) {
    next(p);
    if (p->t != T_LP) {
      syntax(p);
      return NULL;
    }
    next(p);
    kx_node *n = node(p, N_IN);
    n->a = lhs;
    n->list = arena_alloc(p->c->a, 100 * sizeof *n->list);
    for (;;) {
      if (n->n == 100) {
        fail(p, "The IN operator is provided with too many operands; number of operands: %s",
             "101");
        return NULL;
      }
      kx_node *x = parse_operand(p, false);
      if (x == NULL)
        return NULL;
      n->list[n->n++] = x;
      if (p->t == T_COMMA) {
        next(p);
        continue;
      }
      if (p->t != T_RP) {
        syntax(p);
        return NULL;
      }
      next(p);
      return n;
    }
  }
  syntax(p);
  return NULL;
}

static kx_node *parse_not(parser *p)
{
  if (is_kw(p, "NOT")) {
    next(p);
    kx_node *n = node(p, N_NOT);
    n->a = parse_not(p);
    return n->a == NULL ? NULL : n;
  }
  return parse_primary(p);
}

static kx_node *parse_and(parser *p)
{
  kx_node *l = parse_not(p);
  while (l != NULL && is_kw(p, "AND")) {
    next(p);
    kx_node *n = node(p, N_AND);
    n->a = l;
    n->b = parse_not(p);
    l = n->b == NULL ? NULL : n;
  }
  return l;
}

static kx_node *parse_or(parser *p)
{
  kx_node *l = parse_and(p);
  while (l != NULL && is_kw(p, "OR")) {
    next(p);
    kx_node *n = node(p, N_OR);
    n->a = l;
    n->b = parse_and(p);
    l = n->b == NULL ? NULL : n;
  }
  return l;
}

static int start(parser *p, kx_ctx *c, const char *text, const char *what, err *e)
{
  memset(p, 0, sizeof *p);
  p->c = c;
  p->s = text;
  p->what = what;
  p->e = e;
  if (strlen(text) > KV_EXPR_MAX)
    return err_set(e, KV_ERR_VALIDATION, "Invalid %s: Expression size has exceeded the maximum "
                   "allowed size; expression size: %zu", what, strlen(text));
  if (text[strspn(text, " \t\r\n")] == '\0')
    return err_set(e, KV_ERR_VALIDATION, "Invalid %s: The expression can not be empty;", what);
  next(p);
  return 0;
}

static int finish(parser *p, kx_node *n, kx_node **out)
{
  if (n != NULL && p->t != T_EOF)
    syntax(p);
  if (p->rc == 0 && n == NULL)
    syntax(p);
  if (p->rc != 0)
    return p->rc;
  *out = n;
  return 0;
}

int kv__parse_condition(kx_ctx *c, const char *text, const char *what, kx_node **out, err *e)
{
  parser p;
  int rc = start(&p, c, text, what, e);
  if (rc != 0)
    return rc;
  return finish(&p, parse_or(&p), out);
}

int kv__parse_projection(kx_ctx *c, const char *text, kx_node **out, err *e)
{
  parser p;
  int rc = start(&p, c, text, "ProjectionExpression", e);
  if (rc != 0)
    return rc;
  kx_node *n = node(&p, N_LIST);
  n->list = arena_alloc(c->a, 256 * sizeof *n->list);
  for (;;) {
    kx_node *x = parse_path(&p);
    if (x == NULL)
      return finish(&p, NULL, out);
    if (n->n == 256)
      return err_set(e, KV_ERR_VALIDATION, "Invalid ProjectionExpression: too many paths");
    n->list[n->n++] = x;
    if (p.t != T_COMMA)
      break;
    next(&p);
  }
  return finish(&p, n, out);
}

/* ---- updates ---- */

static kx_node *parse_set_term(parser *p)
{
  return parse_operand(p, true);
}

static kx_node *parse_set_value(parser *p)
{
  kx_node *l = parse_set_term(p);
  if (l != NULL && (p->t == T_PLUS || p->t == T_MINUS)) {
    kx_node *n = node(p, p->t == T_PLUS ? N_PLUS : N_MINUS);
    next(p);
    n->a = l;
    n->b = parse_set_term(p);
    return n->b == NULL ? NULL : n;
  }
  return l;
}

static void path_text(const kx_node *n, char *out, size_t cap)
{
  size_t l = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n->npath && l < cap; i++) {
    if (n->path[i].name != NULL)
      l += (size_t)snprintf(out + l, cap - l, "%s%s", i ? ", " : "", n->path[i].name);
    else
      l += (size_t)snprintf(out + l, cap - l, "%s[%ld]", i ? ", " : "", n->path[i].index);
  }
}

static bool overlap(const kx_node *x, const kx_node *y)
{
  size_t n = x->npath < y->npath ? x->npath : y->npath;
  for (size_t i = 0; i < n; i++) {
    const elem *a = &x->path[i];
    const elem *b = &y->path[i];
    if ((a->name == NULL) != (b->name == NULL))
      return false;
    if (a->name != NULL ? strcmp(a->name, b->name) != 0 : a->index != b->index)
      return false;
  }
  return true;
}

int kv__parse_update(kx_ctx *c, const char *text, kx_node **out, err *e)
{
  parser p;
  int rc = start(&p, c, text, "UpdateExpression", e);
  if (rc != 0)
    return rc;
  kx_node *n = node(&p, N_LIST);
  size_t cap = 64;
  n->list = arena_alloc(c->a, cap * sizeof *n->list);
  bool seen[4] = {false};
  static const char *const kws[] = {"SET", "REMOVE", "ADD", "DELETE"};
  static const enum kind kinds[] = {N_SET, N_REMOVE, N_ADD, N_DELETE};
  while (p.t != T_EOF) {
    int k = -1;
    for (int i = 0; i < 4; i++)
      if (is_kw(&p, kws[i]))
        k = i;
    if (k < 0)
      return finish(&p, NULL, out);
    if (seen[k])
      return err_set(e, KV_ERR_VALIDATION, "Invalid UpdateExpression: The \"%s\" section can "
                     "only be used once in an update expression;", kws[k]);
    seen[k] = true;
    next(&p);
    for (;;) {
      kx_node *act = node(&p, kinds[k]);
      act->a = parse_path(&p);
      if (act->a == NULL)
        return finish(&p, NULL, out);
      if (kinds[k] == N_SET) {
        if (p.t != T_EQ)
          return finish(&p, NULL, out) != 0 ? p.rc : syntax(&p);
        next(&p);
        act->b = parse_set_value(&p);
      } else if (kinds[k] == N_ADD || kinds[k] == N_DELETE) {
        act->b = p.t == T_VALUE ? parse_value_ref(&p) : NULL;
        if (act->b == NULL && p.rc == 0)
          syntax(&p);
      }
      if (p.rc != 0)
        return p.rc;
      if (n->n == cap) {
        kx_node **nl = arena_alloc(c->a, cap * 2 * sizeof *nl);
        memcpy(nl, n->list, cap * sizeof *nl);
        n->list = nl;
        cap *= 2;
      }
      n->list[n->n++] = act;
      if (p.t != T_COMMA)
        break;
      next(&p);
    }
  }
  if (n->n == 0)
    return finish(&p, NULL, out);
  for (size_t i = 0; i < n->n; i++)
    for (size_t j = i + 1; j < n->n; j++)
      if (overlap(n->list[i]->a, n->list[j]->a)) {
        char a[200], b[200];
        path_text(n->list[i]->a, a, sizeof a);
        path_text(n->list[j]->a, b, sizeof b);
        return err_set(e, KV_ERR_VALIDATION,
                       "Invalid UpdateExpression: Two document paths overlap with each other; "
                       "must remove or rewrite one of these paths; path one: [%s], path two: [%s]",
                       a, b);
      }
  *out = n;
  return 0;
}

void kv__update_names(const kx_node *n, json_t *names)
{
  for (size_t i = 0; i < n->n; i++)
    json_object_set_new(names, n->list[i]->a->path[0].name, json_true());
}

/* ---- key conditions ---- */

static bool simple_name(const kx_node *n)
{
  return n->kind == N_PATH && n->npath == 1;
}

static int key_part(kx_keycond *k, const kx_node *n, err *e)
{
  const char *ops[] = {[T_EQ] = "=", [T_LT] = "<", [T_LE] = "<=", [T_GT] = ">", [T_GE] = ">="};
  if (n->kind == N_CMP && n->op != T_NE && simple_name(n->a) && n->b->kind == N_VAL) {
    if (n->op == T_EQ && k->hash_name == NULL) {
      k->hash_name = n->a->path[0].name;
      k->hash_value = n->b->val;
      return 0;
    }
    if (k->range_name != NULL)
      goto bad;
    k->range_name = n->a->path[0].name;
    k->op = ops[n->op];
    k->v1 = n->b->val;
    return 0;
  }
  if (n->kind == N_BETWEEN && simple_name(n->a) && n->b->kind == N_VAL && n->c->kind == N_VAL &&
      k->range_name == NULL) {
    k->range_name = n->a->path[0].name;
    k->op = "BETWEEN";
    k->v1 = n->b->val;
    k->v2 = n->c->val;
    return 0;
  }
  if (n->kind == N_FUNC && n->op == F_BEGINS && simple_name(n->a) && n->b->kind == N_VAL &&
      k->range_name == NULL) {
    k->range_name = n->a->path[0].name;
    k->op = "begins_with";
    k->v1 = n->b->val;
    return 0;
  }
bad:
  return err_set(e, KV_ERR_VALIDATION, "Query key condition not supported");
}

int kv__parse_keycond(kx_ctx *c, const char *text, kx_keycond *out, err *e)
{
  kx_node *n;
  memset(out, 0, sizeof *out);
  int rc = kv__parse_condition(c, text, "KeyConditionExpression", &n, e);
  if (rc != 0)
    return rc;
  if (n->kind == N_AND) {
    /* the partition key's equality may come second */
    const kx_node *first = n->a, *second = n->b;
    if (!(first->kind == N_CMP && first->op == T_EQ) && second->kind == N_CMP &&
        second->op == T_EQ) {
      first = n->b;
      second = n->a;
    }
    rc = key_part(out, first, e);
    if (rc == 0)
      rc = key_part(out, second, e);
    return rc;
  }
  rc = key_part(out, n, e);
  if (rc == 0 && out->hash_name == NULL)
    return err_set(e, KV_ERR_VALIDATION, "Query key condition not supported");
  return rc;
}

static bool begins(const json_t *v, const json_t *prefix)
{
  const char *tv = kv__av_type(v), *tp = kv__av_type(prefix);
  if (tv == NULL || tp == NULL || strcmp(tv, tp) != 0)
    return false;
  if (strcmp(tv, "S") == 0) {
    json_t *a = json_object_get(v, "S"), *b = json_object_get(prefix, "S");
    return json_string_length(a) >= json_string_length(b) &&
           memcmp(json_string_value(a), json_string_value(b), json_string_length(b)) == 0;
  }
  if (strcmp(tv, "B") == 0) {
    arena *ar = arena_new();
    uint8_t *x, *y;
    long nx = kv__av_bytes(v, ar, &x), ny = kv__av_bytes(prefix, ar, &y);
    bool ok = nx >= 0 && ny >= 0 && nx >= ny && memcmp(x, y, (size_t)ny) == 0;
    arena_free(ar);
    return ok;
  }
  return false;
}

bool kv__keycond_match(const kx_keycond *k, const json_t *v)
{
  if (k->range_name == NULL)
    return true;
  if (v == NULL)
    return false;
  int c;
  if (strcmp(k->op, "begins_with") == 0)
    return begins(v, k->v1);
  if (!kv__av_cmp(v, k->v1, &c))
    return false;
  if (strcmp(k->op, "=") == 0)
    return c == 0;
  if (strcmp(k->op, "<") == 0)
    return c < 0;
  if (strcmp(k->op, "<=") == 0)
    return c <= 0;
  if (strcmp(k->op, ">") == 0)
    return c > 0;
  if (strcmp(k->op, ">=") == 0)
    return c >= 0;
  int c2;
  return c >= 0 && kv__av_cmp(v, k->v2, &c2) && c2 <= 0;
}

/* ---- evaluation ---- */

/* The value at path in item (a map of AttributeValues), borrowed, or NULL. */
static json_t *path_get(const kx_node *n, const json_t *item)
{
  if (item == NULL)
    return NULL;
  json_t *cur = json_object_get(item, n->path[0].name);
  for (size_t i = 1; i < n->npath && cur != NULL; i++) {
    const elem *el = &n->path[i];
    if (el->name != NULL)
      cur = json_object_get(json_object_get(cur, "M"), el->name);
    else
      cur = json_array_get(json_object_get(cur, "L"), (size_t)el->index);
  }
  return json_is_object(cur) ? cur : NULL;
}

/* An operand's value, a new reference, or NULL when missing. */
static json_t *operand(const kx_node *n, const json_t *item)
{
  switch (n->kind) {
  case N_PATH:
    return json_incref(path_get(n, item));
  case N_VAL:
    return json_incref(n->val);
  case N_SIZE: {
    json_t *v = path_get(n->a, item);
    const char *t = kv__av_type(v);
    if (t == NULL)
      return NULL;
    json_t *x = json_object_get(v, t);
    long size;
    if (strcmp(t, "S") == 0)
      size = (long)json_string_length(x);
    else if (strcmp(t, "B") == 0) {
      size_t l = json_string_length(x);
      const char *s = json_string_value(x);
      size = (long)(l / 4 * 3) - (l > 0 && s[l - 1] == '=') - (l > 1 && s[l - 2] == '=');
    } else if (json_is_array(x))
      size = (long)json_array_size(x);
    else if (json_is_object(x))
      size = (long)json_object_size(x);
    else
      return NULL;
    char num[32];
    snprintf(num, sizeof num, "%ld", size);
    return json_pack("{ss}", "N", num);
  }
  default:
    return NULL;
  }
}

static bool contains(const json_t *hay, const json_t *needle)
{
  const char *th = kv__av_type(hay), *tn = kv__av_type(needle);
  if (th == NULL || tn == NULL)
    return false;
  json_t *h = json_object_get(hay, th);
  json_t *nv = json_object_get(needle, tn);
  if (strcmp(th, "S") == 0 && strcmp(tn, "S") == 0)
    return strstr(json_string_value(h), json_string_value(nv)) != NULL;
  if (strcmp(th, "L") == 0) {
    size_t i;
    json_t *x;
    json_array_foreach(h, i, x) if (kv__av_eq(x, needle)) return true;
    return false;
  }
  if (strlen(th) == 2 && th[1] == 'S' && th[0] == tn[0] && tn[1] == '\0') {
    if (strcmp(tn, "N") == 0) {
      size_t i;
      json_t *x;
      json_array_foreach(h, i, x) {
        json_t *av = json_pack("{sO}", "N", x);
        int c;
        bool eq = kv__av_cmp(av, needle, &c) && c == 0;
        json_decref(av);
        if (eq)
          return true;
      }
      return false;
    }
    size_t i;
    json_t *x;
    json_array_foreach(h, i, x) if (json_equal(x, nv)) return true;
  }
  return false;
}

int kv__eval_condition(const kx_node *n, const json_t *item, bool *out, err *e)
{
  bool a;
  int rc;
  switch (n->kind) {
  case N_AND:
    if ((rc = kv__eval_condition(n->a, item, &a, e)) != 0)
      return rc;
    if (!a) {
      *out = false;
      return 0;
    }
    return kv__eval_condition(n->b, item, out, e);
  case N_OR:
    if ((rc = kv__eval_condition(n->a, item, &a, e)) != 0)
      return rc;
    if (a) {
      *out = true;
      return 0;
    }
    return kv__eval_condition(n->b, item, out, e);
  case N_NOT:
    if ((rc = kv__eval_condition(n->a, item, &a, e)) != 0)
      return rc;
    *out = !a;
    return 0;
  case N_CMP: {
    json_t *x = operand(n->a, item), *y = operand(n->b, item);
    int c = 0;
    if (x == NULL || y == NULL)
      *out = n->op == T_NE;
    else if (n->op == T_EQ)
      *out = kv__av_eq(x, y);
    else if (n->op == T_NE)
      *out = !kv__av_eq(x, y);
    else if (!kv__av_cmp(x, y, &c))
      *out = false;
    else
      *out = n->op == T_LT ? c < 0 : n->op == T_LE ? c <= 0 : n->op == T_GT ? c > 0 : c >= 0;
    json_decref(x);
    json_decref(y);
    return 0;
  }
  case N_BETWEEN: {
    json_t *x = operand(n->a, item), *lo = operand(n->b, item), *hi = operand(n->c, item);
    int c1, c2;
    *out = x != NULL && lo != NULL && hi != NULL && kv__av_cmp(x, lo, &c1) && c1 >= 0 &&
           kv__av_cmp(x, hi, &c2) && c2 <= 0;
    json_decref(x);
    json_decref(lo);
    json_decref(hi);
    return 0;
  }
  case N_IN: {
    json_t *x = operand(n->a, item);
    *out = false;
    for (size_t i = 0; i < n->n && x != NULL && !*out; i++) {
      json_t *y = operand(n->list[i], item);
      *out = y != NULL && kv__av_eq(x, y);
      json_decref(y);
    }
    json_decref(x);
    return 0;
  }
  case N_FUNC: {
    json_t *x = operand(n->a, item);
    json_t *y = n->b != NULL ? operand(n->b, item) : NULL;
    switch (n->op) {
    case F_EXISTS: *out = x != NULL; break;
    case F_NOT_EXISTS: *out = x == NULL; break;
    case F_TYPE: {
      const char *t = kv__av_type(x);
      const char *want = json_string_value(json_object_get(y, "S"));
      *out = t != NULL && want != NULL && strcmp(t, want) == 0;
      break;
    }
    case F_BEGINS: *out = x != NULL && y != NULL && begins(x, y); break;
    case F_CONTAINS: *out = x != NULL && y != NULL && contains(x, y); break;
    }
    json_decref(x);
    json_decref(y);
    return 0;
  }
  default:
    return err_set(e, KV_ERR_VALIDATION, "Invalid ConditionExpression: The expression is not a "
                   "condition");
  }
}

/* ---- applying updates ---- */

static int bad_type(err *e)
{
  return err_set(e, KV_ERR_VALIDATION,
                 "An operand in the update expression has an incorrect data type");
}

static int set_value(const kx_node *n, const json_t *item, json_t **out, err *e)
{
  switch (n->kind) {
  case N_PATH:
  case N_VAL:
    *out = operand(n, item);
    if (*out == NULL)
      return err_set(e, KV_ERR_VALIDATION,
                     "The provided expression refers to an attribute that does not exist in the "
                     "item");
    return 0;
  case N_IFNE: {
    json_t *x = operand(n->a, item);
    if (x != NULL) {
      *out = x;
      return 0;
    }
    return set_value(n->b, item, out, e);
  }
  case N_LAPPEND:
  case N_PLUS:
  case N_MINUS: {
    json_t *x, *y;
    int rc = set_value(n->a, item, &x, e);
    if (rc != 0)
      return rc;
    rc = set_value(n->b, item, &y, e);
    if (rc != 0) {
      json_decref(x);
      return rc;
    }
    const char *want = n->kind == N_LAPPEND ? "L" : "N";
    json_t *xv = json_object_get(x, want), *yv = json_object_get(y, want);
    if (xv == NULL || yv == NULL || json_object_size(x) != 1 || json_object_size(y) != 1)
      rc = bad_type(e);
    else if (n->kind == N_LAPPEND) {
      json_t *l = json_deep_copy(xv);
      size_t i;
      json_t *v;
      json_array_foreach(yv, i, v) json_array_append_new(l, json_deep_copy(v));
      *out = json_pack("{so}", "L", l);
    } else {
      kv_num a, b, r;
      rc = kv__num_parse(json_string_value(xv), &a, e);
      if (rc == 0)
        rc = kv__num_parse(json_string_value(yv), &b, e);
      if (rc == 0)
        rc = kv__num_add(&a, &b, n->kind == N_MINUS, &r, e);
      if (rc == 0)
        *out = kv__av_num(&r);
    }
    json_decref(x);
    json_decref(y);
    return rc;
  }
  default:
    return bad_type(e);
  }
}

static int invalid_path(err *e)
{
  return err_set(e, KV_ERR_VALIDATION,
                 "The document path provided in the update expression is invalid for update");
}

/* The container (an object for M, an array for L) that holds the last
 * element of path, or NULL. */
static json_t *parent_of(const kx_node *path, json_t *item, bool *is_list)
{
  if (path->npath == 1) {
    *is_list = false;
    return item;
  }
  kx_node sub = *path;
  sub.npath--;
  json_t *av = path_get(&sub, item);
  const elem *last = &path->path[path->npath - 1];
  *is_list = last->name == NULL;
  return json_object_get(av, *is_list ? "L" : "M");
}

static int path_set(const kx_node *path, json_t *item, json_t *v, err *e)
{
  bool list;
  json_t *parent = parent_of(path, item, &list);
  const elem *last = &path->path[path->npath - 1];
  if (parent == NULL) {
    json_decref(v);
    return invalid_path(e);
  }
  if (!list)
    return json_object_set_new(parent, last->name, v), 0;
  if ((size_t)last->index >= json_array_size(parent))
    json_array_append_new(parent, v);
  else
    json_array_set_new(parent, (size_t)last->index, v);
  return 0;
}

static int path_remove(const kx_node *path, json_t *item, err *e)
{
  bool list;
  json_t *parent = parent_of(path, item, &list);
  const elem *last = &path->path[path->npath - 1];
  if (parent == NULL)
    return 0;
  if (!list)
    json_object_del(parent, last->name);
  else if ((size_t)last->index < json_array_size(parent))
    json_array_set_new(parent, (size_t)last->index, json_null()); /* (2): compacted later */
  return 0;
}

static void compact(json_t *av)
{
  json_t *l = json_object_get(av, "L");
  json_t *m = json_object_get(av, "M");
  if (l != NULL) {
    for (size_t i = json_array_size(l); i > 0; i--)
      if (json_is_null(json_array_get(l, i - 1)))
        json_array_remove(l, i - 1);
    size_t i;
    json_t *x;
    json_array_foreach(l, i, x) compact(x);
  } else if (m != NULL) {
    const char *k;
    json_t *x;
    json_object_foreach(m, k, x) compact(x);
  }
}

static int set_op(const kx_node *act, json_t *cur, json_t *v, json_t **out, err *e)
{
  const char *tv = kv__av_type(v);
  bool add = act->kind == N_ADD;
  if (tv == NULL || (add && strcmp(tv, "N") != 0 && strcmp(tv, "SS") != 0 &&
                     strcmp(tv, "NS") != 0 && strcmp(tv, "BS") != 0) ||
      (!add && strcmp(tv, "SS") != 0 && strcmp(tv, "NS") != 0 && strcmp(tv, "BS") != 0))
    return err_set(e, KV_ERR_VALIDATION, "Invalid UpdateExpression: Incorrect operand type for "
                   "operator or function; operator: %s, operand type: %s",
                   add ? "ADD" : "DELETE", tv == NULL ? "?" : tv);
  if (cur == NULL) {
    *out = add ? json_deep_copy(v) : NULL;
    return 0;
  }
  const char *tc = kv__av_type(cur);
  if (tc == NULL || strcmp(tc, tv) != 0)
    return bad_type(e);
  if (strcmp(tv, "N") == 0) {
    kv_num a, b, r;
    int rc = kv__num_parse(json_string_value(json_object_get(cur, "N")), &a, e);
    if (rc == 0)
      rc = kv__num_parse(json_string_value(json_object_get(v, "N")), &b, e);
    if (rc == 0)
      rc = kv__num_add(&a, &b, false, &r, e);
    if (rc == 0)
      *out = kv__av_num(&r);
    return rc;
  }
  json_t *set = json_deep_copy(json_object_get(cur, tc));
  json_t *arg = json_object_get(v, tv);
  size_t i;
  json_t *x;
  json_array_foreach(arg, i, x) {
    size_t found = (size_t)-1;
    for (size_t j = 0; j < json_array_size(set) && found == (size_t)-1; j++) {
      json_t *y = json_array_get(set, j);
      bool eq = json_equal(x, y);
      if (!eq && tv[0] == 'N') {
        json_t *ax = json_pack("{sO}", "N", x), *ay = json_pack("{sO}", "N", y);
        int c;
        eq = kv__av_cmp(ax, ay, &c) && c == 0;
        json_decref(ax);
        json_decref(ay);
      }
      if (eq)
        found = j;
    }
    if (add && found == (size_t)-1)
      json_array_append(set, x);
    else if (!add && found != (size_t)-1)
      json_array_remove(set, found);
  }
  if (json_array_size(set) == 0) {
    json_decref(set);
    *out = NULL;
    return 0;
  }
  *out = json_object();
  json_object_set_new(*out, tv, set);
  return 0;
}

int kv__apply_update(const kx_node *n, const json_t *item, json_t **out, json_t *touched, err *e)
{
  json_t *old = item != NULL ? (json_t *)item : NULL;
  json_t *empty = json_object();
  if (old == NULL)
    old = empty;
  json_t *nw = json_deep_copy(old);
  json_t **vals = xcalloc(n->n, sizeof *vals);
  int rc = 0;
  /* (2): every value first, over the old item */
  for (size_t i = 0; i < n->n && rc == 0; i++) {
    const kx_node *act = n->list[i];
    if (act->kind == N_SET)
      rc = set_value(act->b, old, &vals[i], e);
    else if (act->kind == N_ADD || act->kind == N_DELETE) {
      json_t *cur = path_get(act->a, old);
      rc = set_op(act, cur, act->b->val, &vals[i], e);
      if (rc == 0 && vals[i] == NULL && cur == NULL && act->kind == N_DELETE)
        continue;
    }
  }
  for (size_t i = 0; i < n->n && rc == 0; i++) {
    const kx_node *act = n->list[i];
    json_object_set_new(touched, act->a->path[0].name, json_true());
    if (act->kind == N_REMOVE || (act->kind == N_DELETE && vals[i] == NULL)) {
      if (act->kind == N_DELETE && path_get(act->a, old) == NULL)
        continue;
      rc = path_remove(act->a, nw, e);
    } else {
      rc = path_set(act->a, nw, vals[i], e);
      vals[i] = NULL;
    }
  }
  for (size_t i = 0; i < n->n; i++)
    json_decref(vals[i]);
  free(vals);
  json_decref(empty);
  if (rc != 0) {
    json_decref(nw);
    return rc;
  }
  const char *k;
  json_t *x;
  json_object_foreach(nw, k, x) compact(x);
  *out = nw;
  return 0;
}

/* ---- projections ---- */

static void project_into(json_t *dst, const json_t *src, const kx_node *path, size_t i)
{
  /* dst and src are the containers (objects for maps, arrays for lists) at level i */
  const elem *el = &path->path[i];
  json_t *sv = el->name != NULL ? json_object_get(src, el->name)
                                : json_array_get(src, (size_t)el->index);
  if (!json_is_object(sv))
    return;
  if (i + 1 == path->npath) {
    if (el->name != NULL)
      json_object_set_new(dst, el->name, json_deep_copy(sv));
    else
      json_array_append_new(dst, json_deep_copy(sv));
    return;
  }
  const char *want = path->path[i + 1].name != NULL ? "M" : "L";
  json_t *sub = json_object_get(sv, want);
  if (sub == NULL)
    return;
  json_t *dv = el->name != NULL ? json_object_get(dst, el->name) : NULL;
  json_t *dsub = json_object_get(dv, want);
  if (dsub == NULL) {
    dsub = json_is_object(sub) ? json_object() : json_array();
    dv = json_object();
    json_object_set_new(dv, want, dsub);
    if (el->name != NULL)
      json_object_set_new(dst, el->name, dv);
    else
      json_array_append_new(dst, dv);
  }
  project_into(dsub, sub, path, i + 1);
}

json_t *kv__project(const kx_node *n, const json_t *item)
{
  json_t *out = json_object();
  for (size_t i = 0; i < n->n; i++)
    project_into(out, item, n->list[i], 0);
  return out;
}

bool kv__names(const kx_node *n, const char *name)
{
  if (n == NULL)
    return false;
  if (n->kind == N_PATH)
    return n->npath > 0 && strcmp(n->path[0].name, name) == 0;
  if (kv__names(n->a, name) || kv__names(n->b, name) || kv__names(n->c, name))
    return true;
  for (size_t i = 0; i < n->n; i++)
    if (kv__names(n->list[i], name))
      return true;
  return false;
}
