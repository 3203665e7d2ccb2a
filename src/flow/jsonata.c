/* flow/jsonata.c -- the JSONata language (flow/jsonata.h): a lexer, a
 * Pratt parser to a tree, and a tree-walking evaluator over jansson values.
 *
 * Why here: Step Functions' JSONata states ({% expr %} strings in
 * Arguments, Output, Assign, Condition, ...) need the language at run time,
 * and the definition check needs its parser to refuse a syntax error.
 *
 * Semantics kept from JSONata: undefined (NULL) is not null; a path maps
 * over arrays and flattens one level; a path's result that is a sequence of
 * one value is that value, of none is undefined; the last step of a path
 * keeps an array it selects as it is; an array constructor flattens the
 * arrays its items give unless an item is itself a constructor.
 *
 * Invariants:
 *   (1) ev() returns a new reference or NULL; once c->rc is set every
 *       caller drops what it holds and returns NULL.
 *   (2) Every loop and every node counts a step; depth, steps, string and
 *       array lengths are bounded (jsonata.h), so no query exhausts the
 *       server.
 *   (3) A function value is an object {"\001fn": id}, id indexing c->fns;
 *       it never leaves jsonata_eval (a result holding one is cleaned).
 *
 * Not supported (a syntax error says so): regular expressions, the parent
 * operator %, descendants **, grouping a{...}, order-by ^(...), focus and
 * index binding @ #, partial application, transforms |...|.
 *
 * Start reading at jsonata_eval().
 */
#include "flow/jsonata.h"

#include "base/buf.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <ctype.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNKEY "\001fn"

/* ---- the tree ---- */

enum kind {
  N_LIT, N_NAME, N_WILD, N_VAR, N_PATH, N_PRED, N_BIN, N_NEG, N_ARR, N_RANGE, N_OBJ,
  N_BLOCK, N_BIND, N_COND, N_LAMBDA, N_CALL, N_CHAIN
};

typedef struct node {
  enum kind kind;
  char *s;              /* name, variable (no '$'; "" is $, "$" is $$), operator */
  json_t *lit;          /* N_LIT */
  struct node *a, *b, *c;
  struct node **v;      /* path steps, items, pairs (k, v, k, v), block, args, params */
  size_t n;
  bool keep;            /* N_PATH: a[] keeps a singleton array */
  int height;           /* of the tree below, bounded (JSONATA_MAX_DEPTH) */
  size_t pos;
} node;

struct jsonata {
  node *root;
};

static node *node_free(node *n)
{
  if (n == NULL)
    return NULL;
  free(n->s);
  json_decref(n->lit);
  node_free(n->a);
  node_free(n->b);
  node_free(n->c);
  for (size_t i = 0; i < n->n; i++)
    node_free(n->v[i]);
  free(n->v);
  free(n);
  return NULL;
}

static node *mk(enum kind k, size_t pos)
{
  node *n = xcalloc(1, sizeof *n);
  n->kind = k;
  n->pos = pos;
  return n;
}

static void push(node *n, node *x)
{
  n->v = xrealloc(n->v, (n->n + 1) * sizeof *n->v);
  n->v[n->n++] = x;
}

/* ---- the lexer ---- */

enum tok { T_EOF, T_NUM, T_STR, T_NAME, T_QNAME, T_VAR, T_OP };

typedef struct parser {
  const char *src;
  size_t len, at;
  enum tok t;           /* the current token */
  char *tv;             /* its text (names, strings, operators) */
  double num;
  size_t tpos;
  int depth;
  err *e;
  int rc;
} parser;

static int perr(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int perr(parser *p, size_t pos, const char *fmt, ...)
{
  if (p->rc != 0)
    return p->rc;
  char what[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  p->rc = err_set(p->e, ERR_INVALID, "%s at position %zu", what, pos + 1);
  return p->rc;
}

static bool name_char(unsigned char ch)
{
  return isalnum(ch) || ch == '_' || ch >= 0x80;
}

/* Appends the UTF-8 of code point cp. */
static void utf8_put(buf *b, unsigned cp)
{
  char o[4];
  buf_append(b, o, utf8_encode(o, cp));
}

static const char *const ops[] = {"..", ":=", "!=", "<=", ">=", "~>", "**", ".", "[", "]",
                                  "{", "}", "(", ")", ",", ":", ";", "?", "+", "-", "*",
                                  "/", "%", "&", "=", "<", ">", "|", "^", "@", "#", NULL};

static void lex(parser *p)
{
  free(p->tv);
  p->tv = NULL;
  for (;;) {
    while (p->at < p->len && isspace((unsigned char)p->src[p->at]))
      p->at++;
    if (p->at + 1 < p->len && p->src[p->at] == '/' && p->src[p->at + 1] == '*') {
      const char *end = NULL;
      for (size_t i = p->at + 2; i + 1 < p->len; i++)
        if (p->src[i] == '*' && p->src[i + 1] == '/') {
          end = p->src + i;
          break;
        }
      if (end == NULL) {
        perr(p, p->at, "comment has no end");
        p->t = T_EOF;
        return;
      }
      p->at = (size_t)(end - p->src) + 2;
      continue;
    }
    break;
  }
  p->tpos = p->at;
  if (p->at >= p->len) {
    p->t = T_EOF;
    return;
  }
  const char *s = p->src + p->at;
  unsigned char ch = (unsigned char)*s;
  if (isdigit(ch)) {
    size_t i = p->at;
    while (i < p->len && isdigit((unsigned char)p->src[i]))
      i++;
    if (i + 1 < p->len && p->src[i] == '.' && isdigit((unsigned char)p->src[i + 1])) {
      i++;
      while (i < p->len && isdigit((unsigned char)p->src[i]))
        i++;
    }
    if (i < p->len && (p->src[i] == 'e' || p->src[i] == 'E')) {
      size_t j = i + 1;
      if (j < p->len && (p->src[j] == '+' || p->src[j] == '-'))
        j++;
      if (j < p->len && isdigit((unsigned char)p->src[j])) {
        while (j < p->len && isdigit((unsigned char)p->src[j]))
          j++;
        i = j;
      }
    }
    char tmp[64];
    size_t n = i - p->at < sizeof tmp - 1 ? i - p->at : sizeof tmp - 1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    p->num = strtod(tmp, NULL);
    if (!isfinite(p->num))
      perr(p, p->at, "number out of range");
    p->at = i;
    p->t = T_NUM;
    return;
  }
  if (ch == '"' || ch == '\'') {
    buf b;
    buf_init(&b, JSONATA_MAX_SOURCE);
    size_t i = p->at + 1;
    for (;;) {
      if (i >= p->len) {
        perr(p, p->at, "string literal has no end");
        break;
      }
      char c = p->src[i];
      if (c == (char)ch) {
        i++;
        break;
      }
      if (c == '\\' && i + 1 < p->len) {
        char x = p->src[i + 1];
        i += 2;
        switch (x) {
        case 'n': buf_append(&b, "\n", 1); break;
        case 't': buf_append(&b, "\t", 1); break;
        case 'r': buf_append(&b, "\r", 1); break;
        case 'b': buf_append(&b, "\b", 1); break;
        case 'f': buf_append(&b, "\f", 1); break;
        case 'u': {
          unsigned cp = 0;
          if (i + 4 > p->len) {
            perr(p, i, "bad \\u escape");
            break;
          }
          for (int k = 0; k < 4; k++) {
            char h = p->src[i + (size_t)k];
            cp <<= 4;
            if (isdigit((unsigned char)h))
              cp |= (unsigned)(h - '0');
            else if (isxdigit((unsigned char)h))
              cp |= (unsigned)(tolower((unsigned char)h) - 'a' + 10);
            else
              perr(p, i, "bad \\u escape");
          }
          i += 4;
          utf8_put(&b, cp);
          break;
        }
        default: buf_append(&b, &x, 1); break;
        }
        continue;
      }
      buf_append(&b, &c, 1);
      i++;
    }
    p->tv = b.data != NULL ? b.data : xstrdup("");
    p->at = i;
    p->t = T_STR;
    return;
  }
  if (ch == '`') {
    const char *end = memchr(s + 1, '`', p->len - p->at - 1);
    if (end == NULL) {
      perr(p, p->at, "quoted name has no end");
      p->t = T_EOF;
      return;
    }
    p->tv = xstrndup(s + 1, (size_t)(end - s - 1));
    p->at = (size_t)(end - p->src) + 1;
    p->t = T_QNAME;
    return;
  }
  if (ch == '$') {
    size_t i = p->at + 1;
    if (i < p->len && p->src[i] == '$') {
      p->tv = xstrdup("$");
      p->at = i + 1;
      p->t = T_VAR;
      return;
    }
    while (i < p->len && name_char((unsigned char)p->src[i]))
      i++;
    p->tv = xstrndup(s + 1, i - p->at - 1);
    p->at = i;
    p->t = T_VAR;
    return;
  }
  if (name_char(ch)) {
    size_t i = p->at;
    while (i < p->len && name_char((unsigned char)p->src[i]))
      i++;
    p->tv = xstrndup(s, i - p->at);
    p->at = i;
    p->t = T_NAME;
    return;
  }
  for (size_t k = 0; ops[k] != NULL; k++) {
    size_t ol = strlen(ops[k]);
    if (p->at + ol <= p->len && memcmp(s, ops[k], ol) == 0) {
      p->tv = xstrdup(ops[k]);
      p->at += ol;
      p->t = T_OP;
      return;
    }
  }
  perr(p, p->at, "unexpected character '%c'", ch);
  p->t = T_EOF;
}

static bool is_op(parser *p, const char *op)
{
  return p->t == T_OP && strcmp(p->tv, op) == 0;
}

static bool expect(parser *p, const char *op)
{
  if (!is_op(p, op)) {
    perr(p, p->tpos, "expected '%s'", op);
    return false;
  }
  lex(p);
  return true;
}

/* The left binding power of the current token as an infix operator. */
static int lbp(parser *p)
{
  if (p->t == T_NAME) {
    if (strcmp(p->tv, "and") == 0)
      return 30;
    if (strcmp(p->tv, "or") == 0)
      return 25;
    if (strcmp(p->tv, "in") == 0)
      return 40;
    return 0;
  }
  if (p->t != T_OP)
    return 0;
  static const struct {
    const char *op;
    int bp;
  } t[] = {{".", 75}, {"[", 80}, {"(", 80}, {"{", 70}, {"?", 20}, {"+", 50}, {"-", 50},
           {"&", 50}, {"*", 60}, {"/", 60}, {"%", 60}, {"=", 40}, {"!=", 40}, {"<", 40},
           {"<=", 40}, {">", 40}, {">=", 40}, {"~>", 40}, {":=", 10}, {"^", 40},
           {"@", 80}, {"#", 80}, {"|", 20}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcmp(p->tv, t[i].op) == 0)
      return t[i].bp;
  return 0;
}

static node *expr(parser *p, int rbp);
static void height_set(parser *p, node *n);

/* Items until close, separated by sep; each parsed by expr(0) (arrays:
 * a..b ranges). */
static void list(parser *p, node *n, const char *close, bool ranges)
{
  if (is_op(p, close)) {
    lex(p);
    return;
  }
  for (;;) {
    node *x = expr(p, 0);
    if (p->rc != 0) {
      node_free(x);
      return;
    }
    if (ranges && is_op(p, "..")) {
      node *r = mk(N_RANGE, p->tpos);
      lex(p);
      r->a = x;
      r->b = expr(p, 0);
      x = r;
    }
    push(n, x);
    if (p->rc != 0)
      return;
    if (is_op(p, ",")) {
      lex(p);
      continue;
    }
    expect(p, close);
    return;
  }
}

static node *nud(parser *p)
{
  size_t pos = p->tpos;
  node *n = NULL;
  switch (p->t) {
  case T_EOF:
    perr(p, pos, "unexpected end of expression");
    return NULL;
  case T_NUM:
    n = mk(N_LIT, pos);
    n->lit = json_real(p->num);
    lex(p);
    return n;
  case T_STR:
    n = mk(N_LIT, pos);
    n->lit = json_string(p->tv);
    if (n->lit == NULL) /* not UTF-8 */
      n->lit = json_stringn_nocheck(p->tv, strlen(p->tv));
    lex(p);
    return n;
  case T_QNAME:
    n = mk(N_NAME, pos);
    n->s = xstrdup(p->tv);
    lex(p);
    return n;
  case T_VAR:
    n = mk(N_VAR, pos);
    n->s = xstrdup(p->tv);
    lex(p);
    return n;
  case T_NAME:
    if (strcmp(p->tv, "true") == 0 || strcmp(p->tv, "false") == 0 ||
        strcmp(p->tv, "null") == 0) {
      n = mk(N_LIT, pos);
      n->lit = p->tv[0] == 't' ? json_true() : p->tv[0] == 'f' ? json_false() : json_null();
      lex(p);
      return n;
    }
    if (strcmp(p->tv, "function") == 0 && p->at < p->len) {
      lex(p);
      if (!is_op(p, "(")) {
        n = mk(N_NAME, pos); /* a field called "function" */
        n->s = xstrdup("function");
        return n;
      }
      lex(p);
      n = mk(N_LAMBDA, pos);
      while (!is_op(p, ")")) {
        if (p->t != T_VAR || p->tv[0] == '\0' || strcmp(p->tv, "$") == 0) {
          perr(p, p->tpos, "a function's parameters are variables");
          return n;
        }
        node *v = mk(N_VAR, p->tpos);
        v->s = xstrdup(p->tv);
        push(n, v);
        lex(p);
        if (is_op(p, ","))
          lex(p);
        else if (!is_op(p, ")")) {
          perr(p, p->tpos, "expected ',' or ')'");
          return n;
        }
      }
      lex(p);
      if (!expect(p, "{"))
        return n;
      n->a = expr(p, 0);
      expect(p, "}");
      return n;
    }
    n = mk(N_NAME, pos);
    n->s = xstrdup(p->tv);
    lex(p);
    return n;
  case T_OP:
    break;
  }
  if (is_op(p, "(")) {
    lex(p);
    n = mk(N_BLOCK, pos);
    while (!is_op(p, ")")) {
      node *x = expr(p, 0);
      if (x != NULL)
        push(n, x);
      if (p->rc != 0)
        return n;
      if (is_op(p, ";"))
        lex(p);
      else if (!is_op(p, ")")) {
        perr(p, p->tpos, "expected ';' or ')'");
        return n;
      }
    }
    lex(p);
    return n;
  }
  if (is_op(p, "[")) {
    lex(p);
    n = mk(N_ARR, pos);
    list(p, n, "]", true);
    return n;
  }
  if (is_op(p, "{")) {
    lex(p);
    n = mk(N_OBJ, pos);
    if (is_op(p, "}")) {
      lex(p);
      return n;
    }
    for (;;) {
      node *k = expr(p, 0);
      if (k != NULL)
        push(n, k);
      if (p->rc != 0 || !expect(p, ":"))
        return n;
      node *v = expr(p, 0);
      if (v != NULL)
        push(n, v);
      if (p->rc != 0)
        return n;
      if (is_op(p, ",")) {
        lex(p);
        continue;
      }
      expect(p, "}");
      return n;
    }
  }
  if (is_op(p, "-")) {
    lex(p);
    n = mk(N_NEG, pos);
    n->a = expr(p, 70);
    return n;
  }
  if (is_op(p, "*")) {
    lex(p);
    return mk(N_WILD, pos);
  }
  if (is_op(p, "**") || is_op(p, "%") || is_op(p, "/") || is_op(p, "|") || is_op(p, "?")) {
    perr(p, pos, "'%s' is not supported", p->tv);
    return NULL;
  }
  perr(p, pos, "unexpected '%s'", p->tv);
  return NULL;
}

static node *led(parser *p, node *left)
{
  size_t pos = p->tpos;
  int bp = lbp(p);
  char *op = p->tv;
  p->tv = NULL;
  lex(p);
  node *n = NULL;
  if (strcmp(op, ".") == 0) {
    node *right = expr(p, 75);
    if (left->kind == N_PATH && !left->keep) {
      n = left;
    } else {
      n = mk(N_PATH, pos);
      push(n, left);
    }
    if (right != NULL)
      push(n, right);
  } else if (strcmp(op, "[") == 0) {
    if (is_op(p, "]")) {
      lex(p);
      if (left->kind != N_PATH) {
        n = mk(N_PATH, pos);
        push(n, left);
      } else {
        n = left;
      }
      n->keep = true;
    } else {
      node *pred = expr(p, 0);
      expect(p, "]");
      if (left->kind == N_PATH && !left->keep && left->n > 0) {
        node *f = mk(N_PRED, pos);
        f->a = left->v[left->n - 1];
        f->b = pred;
        left->v[left->n - 1] = f;
        height_set(p, f);
        n = left;
      } else {
        n = mk(N_PRED, pos);
        n->a = left;
        n->b = pred;
      }
    }
  } else if (strcmp(op, "(") == 0) {
    n = mk(N_CALL, pos);
    n->a = left;
    list(p, n, ")", false);
  } else if (strcmp(op, "?") == 0) {
    n = mk(N_COND, pos);
    n->a = left;
    n->b = expr(p, 0);
    if (is_op(p, ":")) {
      lex(p);
      n->c = expr(p, 0);
    }
  } else if (strcmp(op, ":=") == 0) {
    if (left->kind != N_VAR || left->s[0] == '\0' || strcmp(left->s, "$") == 0) {
      free(op);
      perr(p, pos, "the left side of ':=' must be a variable name");
      return left;
    }
    n = mk(N_BIND, pos);
    n->s = xstrdup(left->s);
    node_free(left);
    n->a = expr(p, 9);
  } else if (strcmp(op, "~>") == 0) {
    n = mk(N_CHAIN, pos);
    n->a = left;
    n->b = expr(p, 40);
  } else if (strcmp(op, "{") == 0 || strcmp(op, "^") == 0 || strcmp(op, "@") == 0 ||
             strcmp(op, "#") == 0 || strcmp(op, "|") == 0) {
    perr(p, pos, "'%s' is not supported", op);
    free(op);
    return left;
  } else {
    n = mk(N_BIN, pos);
    n->s = op;
    op = NULL;
    n->a = left;
    n->b = expr(p, bp);
  }
  free(op);
  return n;
}

/* Sets n's height from its children's; a tree higher than the bound
 * (a long chain of binary operators) is refused, so that evaluating and
 * freeing it never recurse deeper than that. */
static void height_set(parser *p, node *n)
{
  if (n == NULL)
    return;
  int h = 0;
  node *kids[3] = {n->a, n->b, n->c};
  for (int i = 0; i < 3; i++)
    if (kids[i] != NULL && kids[i]->height > h)
      h = kids[i]->height;
  for (size_t i = 0; i < n->n; i++)
    if (n->v[i]->height > h)
      h = n->v[i]->height;
  n->height = h + 1;
  if (n->height > JSONATA_MAX_DEPTH)
    perr(p, n->pos, "the expression is nested more than %d levels deep", JSONATA_MAX_DEPTH);
}

static node *expr(parser *p, int rbp)
{
  if (++p->depth > JSONATA_MAX_DEPTH) {
    perr(p, p->tpos, "the expression is nested more than %d levels deep", JSONATA_MAX_DEPTH);
    p->depth--;
    return NULL;
  }
  node *left = nud(p);
  height_set(p, left);
  while (p->rc == 0 && left != NULL && rbp < lbp(p)) {
    left = led(p, left);
    height_set(p, left);
  }
  p->depth--;
  if (p->rc != 0)
    return node_free(left);
  return left;
}

int jsonata_parse(const char *src, size_t len, jsonata **out, err *e)
{
  *out = NULL;
  if (len > JSONATA_MAX_SOURCE)
    return err_set(e, ERR_INVALID, "the expression is longer than %u bytes",
                   (unsigned)JSONATA_MAX_SOURCE);
  parser p = {.src = src, .len = len, .e = e};
  lex(&p);
  node *root = expr(&p, 0);
  if (p.rc == 0 && p.t != T_EOF)
    perr(&p, p.tpos, "unexpected '%s'", p.tv ? p.tv : "?");
  free(p.tv);
  if (p.rc != 0) {
    node_free(root);
    return p.rc;
  }
  if (root == NULL)
    return err_set(e, ERR_INVALID, "the expression is empty");
  jsonata *j = xcalloc(1, sizeof *j);
  j->root = root;
  *out = j;
  return 0;
}

jsonata *jsonata_free(jsonata *j)
{
  if (j == NULL)
    return NULL;
  node_free(j->root);
  free(j);
  return NULL;
}

/* ---- evaluation ---- */

typedef struct frame {
  struct frame *up;
  json_t *vars;         /* name -> value */
  struct frame *all;    /* every frame of the evaluation, to free */
} frame;

typedef struct ctx ctx;
typedef json_t *(*builtin_fn)(ctx *c, json_t **a, size_t n, json_t *input, size_t pos);

typedef struct builtin {
  const char *name;
  builtin_fn fn;
  int min, max;         /* arguments */
  bool ctx_arg;         /* called without arguments: the context is the first */
} builtin;

typedef struct fnval {
  const builtin *b;     /* or a lambda: */
  node *lambda;
  frame *env;
  json_t *input;        /* the context where it was made */
} fnval;

struct ctx {
  err *e;
  int rc;
  json_t *root;
  frame *frames;
  fnval *fns;
  size_t nfns;
  long steps;
  int depth;
  int64_t now;          /* $now and $millis: one instant per evaluation */
};

static json_t *fail(ctx *c, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static json_t *fail(ctx *c, size_t pos, const char *fmt, ...)
{
  if (c->rc != 0)
    return NULL;
  char what[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  c->rc = err_set(c->e, FLOW_ERR_QUERY, "%s (at position %zu)", what, pos + 1);
  return NULL;
}

static bool step(ctx *c, size_t pos)
{
  if (c->rc != 0)
    return false;
  if (++c->steps > JSONATA_MAX_STEPS) {
    fail(c, pos, "the evaluation took more than %d steps", JSONATA_MAX_STEPS);
    return false;
  }
  return true;
}

static frame *frame_new(ctx *c, frame *up)
{
  frame *f = xcalloc(1, sizeof *f);
  f->up = up;
  f->vars = json_object();
  f->all = c->frames;
  c->frames = f;
  return f;
}

static json_t *fn_make(ctx *c, const builtin *b, node *lambda, frame *env, json_t *input)
{
  c->fns = xrealloc(c->fns, (c->nfns + 1) * sizeof *c->fns);
  c->fns[c->nfns] = (fnval){b, lambda, env, input ? json_incref(input) : NULL};
  return json_pack("{s:I}", FNKEY, (json_int_t)c->nfns++);
}

static fnval *fn_of(ctx *c, json_t *v)
{
  if (!json_is_object(v) || json_object_size(v) != 1)
    return NULL;
  json_t *id = json_object_get(v, FNKEY);
  if (!json_is_integer(id) || json_integer_value(id) < 0 ||
      (size_t)json_integer_value(id) >= c->nfns)
    return NULL;
  return &c->fns[json_integer_value(id)];
}

static json_t *num(ctx *c, double d, size_t pos)
{
  if (!isfinite(d))
    return fail(c, pos, "the number is out of range (infinite or not a number)");
  if (d == floor(d) && fabs(d) < 9007199254740992.0)
    return json_integer((json_int_t)d);
  return json_real(d);
}

/* A sequence of one is its value, of none undefined (takes seq). */
static json_t *collapse(json_t *seq)
{
  size_t n = json_array_size(seq);
  if (n == 0) {
    json_decref(seq);
    return NULL;
  }
  if (n == 1) {
    json_t *v = json_incref(json_array_get(seq, 0));
    json_decref(seq);
    return v;
  }
  return seq;
}

static bool arr_push(ctx *c, json_t *arr, json_t *v, size_t pos)
{
  if (json_array_size(arr) >= JSONATA_MAX_ARRAY) {
    json_decref(v);
    fail(c, pos, "an array would have more than %d elements", JSONATA_MAX_ARRAY);
    return false;
  }
  json_array_append_new(arr, v);
  return true;
}

static bool truthy(ctx *c, json_t *v)
{
  if (v == NULL || json_is_null(v))
    return false;
  if (json_is_boolean(v))
    return json_is_true(v);
  if (json_is_number(v))
    return json_number_value(v) != 0;
  if (json_is_string(v))
    return json_string_length(v) > 0;
  if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      if (truthy(c, x))
        return true;
    }
    return false;
  }
  if (fn_of(c, v) != NULL)
    return false;
  return json_object_size(v) > 0;
}

static bool deep_eq(json_t *a, json_t *b)
{
  if (json_is_number(a) && json_is_number(b))
    return json_number_value(a) == json_number_value(b);
  if (json_typeof(a) != json_typeof(b))
    return false;
  if (json_is_array(a)) {
    if (json_array_size(a) != json_array_size(b))
      return false;
    for (size_t i = 0; i < json_array_size(a); i++)
      if (!deep_eq(json_array_get(a, i), json_array_get(b, i)))
        return false;
    return true;
  }
  if (json_is_object(a)) {
    if (json_object_size(a) != json_object_size(b))
      return false;
    const char *k;
    json_t *v;
    json_object_foreach(a, k, v) {
      json_t *w = json_object_get(b, k);
      if (w == NULL || !deep_eq(v, w))
        return false;
    }
    return true;
  }
  return json_equal(a, b);
}

/* JSONata's number text: integers plainly, others with 15 significant
 * digits (JavaScript's toPrecision(15), then the shortest form). */
static void num_text(double d, char out[40])
{
  if (d == floor(d) && fabs(d) < 1e21) {
    snprintf(out, 40, "%.0f", d);
    if (strcmp(out, "-0") == 0)
      strcpy(out, "0");
    return;
  }
  snprintf(out, 40, "%.15g", d);
  /* JavaScript writes exponents as e+21, e-7 without padding */
  char *e = strchr(out, 'e');
  if (e != NULL && (e[1] == '+' || e[1] == '-') && e[2] == '0') {
    memmove(e + 2, e + 3, strlen(e + 3) + 1);
  }
}

static void stringify(ctx *c, json_t *v, buf *b)
{
  if (fn_of(c, v) != NULL) {
    buf_puts(b, "\"\"");
    return;
  }
  switch (json_typeof(v)) {
  case JSON_STRING:
    buf_json_string(b, json_string_value(v), json_string_length(v));
    return;
  case JSON_INTEGER:
  case JSON_REAL: {
    char t[40];
    num_text(json_number_value(v), t);
    buf_puts(b, t);
    return;
  }
  case JSON_TRUE:
    buf_puts(b, "true");
    return;
  case JSON_FALSE:
    buf_puts(b, "false");
    return;
  case JSON_NULL:
    buf_puts(b, "null");
    return;
  case JSON_ARRAY: {
    buf_puts(b, "[");
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      if (i > 0)
        buf_puts(b, ",");
      stringify(c, x, b);
    }
    buf_puts(b, "]");
    return;
  }
  case JSON_OBJECT: {
    buf_puts(b, "{");
    const char *k;
    json_t *x;
    bool first = true;
    json_object_foreach(v, k, x) {
      if (!first)
        buf_puts(b, ",");
      first = false;
      buf_json_string(b, k, strlen(k));
      buf_puts(b, ":");
      stringify(c, x, b);
    }
    buf_puts(b, "}");
    return;
  }
  }
}

/* $string's conversion; NULL for undefined. */
static json_t *to_string(ctx *c, json_t *v, size_t pos)
{
  if (v == NULL)
    return NULL;
  if (json_is_string(v))
    return json_incref(v);
  buf b;
  buf_init(&b, JSONATA_MAX_STRING);
  stringify(c, v, &b);
  if (b.len >= JSONATA_MAX_STRING) {
    buf_release(&b);
    return fail(c, pos, "a string would be longer than %u bytes", JSONATA_MAX_STRING);
  }
  json_t *s = json_stringn_nocheck(b.data ? b.data : "", b.len);
  buf_release(&b);
  return s;
}

static json_t *ev(ctx *c, node *n, json_t *input, frame *f);
static json_t *call(ctx *c, json_t *fn, json_t **args, size_t nargs, json_t *input, size_t pos);

static const builtin *builtin_find(const char *name);

static json_t *lookup(ctx *c, frame *f, const char *name, json_t *input)
{
  if (name[0] == '\0')
    return input ? json_incref(input) : NULL;
  if (strcmp(name, "$") == 0)
    return c->root ? json_incref(c->root) : NULL;
  for (frame *x = f; x != NULL; x = x->up) {
    json_t *v = json_object_get(x->vars, name);
    if (v != NULL)
      return json_incref(v);
  }
  const builtin *b = builtin_find(name);
  if (b != NULL)
    return fn_make(c, b, NULL, NULL, NULL);
  return NULL;
}

/* The field name of every object in v (arrays mapped and flattened). */
static void field_of(ctx *c, json_t *v, const char *name, json_t *seq, size_t pos)
{
  if (!step(c, pos))
    return;
  if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      field_of(c, x, name, seq, pos);
      if (c->rc != 0)
        return;
    }
    return;
  }
  if (!json_is_object(v) || fn_of(c, v) != NULL)
    return;
  json_t *r = json_object_get(v, name);
  if (r == NULL)
    return;
  if (json_is_array(r)) {
    size_t i;
    json_t *x;
    json_array_foreach(r, i, x) {
      if (!arr_push(c, seq, json_incref(x), pos))
        return;
    }
  } else {
    arr_push(c, seq, json_incref(r), pos);
  }
}

static json_t *ev_name(ctx *c, node *n, json_t *input)
{
  if (json_is_object(input)) {
    json_t *r = json_object_get(input, n->s);
    return r != NULL && fn_of(c, input) == NULL ? json_incref(r) : NULL;
  }
  if (!json_is_array(input))
    return NULL;
  json_t *seq = json_array();
  field_of(c, input, n->s, seq, n->pos);
  return collapse(seq);
}

/* Appends v to seq, arrays flattened all the way down (the wildcard's
 * values). */
static void flatten_into(ctx *c, json_t *seq, json_t *v, size_t pos, int depth)
{
  if (c->rc != 0)
    return;
  if (!json_is_array(v)) {
    arr_push(c, seq, json_incref(v), pos);
    return;
  }
  if (depth > JSONATA_MAX_DEPTH) {
    fail(c, pos, "an array is nested more than %d levels deep", JSONATA_MAX_DEPTH);
    return;
  }
  size_t i;
  json_t *x;
  json_array_foreach(v, i, x) {
    flatten_into(c, seq, x, pos, depth + 1);
  }
}

/* The wildcard over one item of a path: an object's values, or an array's
 * elements (JavaScript's keys of an array), flattened. */
static void wild_item(ctx *c, node *n, json_t *o, json_t *seq)
{
  if (json_is_array(o)) {
    flatten_into(c, seq, o, n->pos, 0);
    return;
  }
  if (!json_is_object(o) || fn_of(c, o) != NULL)
    return;
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    if (!step(c, n->pos))
      break;
    flatten_into(c, seq, v, n->pos, 0);
  }
}

/* As a path's step (item) or on its own (the input, an array's elements
 * one by one, as a path's first step takes them). */
static json_t *ev_wild(ctx *c, node *n, json_t *input, bool item)
{
  json_t *seq = json_array();
  if (json_is_array(input) && !item) {
    size_t i;
    json_t *o;
    json_array_foreach(input, i, o) {
      if (c->rc != 0)
        break;
      if (!json_is_array(o))
        wild_item(c, n, o, seq);
    }
  } else {
    wild_item(c, n, input, seq);
  }
  if (c->rc != 0) {
    json_decref(seq);
    return NULL;
  }
  return collapse(seq);
}

/* Keeps the items of seq the predicate selects (an index, or true). */
static json_t *filter(ctx *c, json_t *seq, node *pred, frame *f, size_t pos)
{
  json_t *out = json_array();
  size_t n = json_array_size(seq);
  /* a number literal: an index, without evaluating it per item */
  if (pred->kind == N_LIT && json_is_number(pred->lit)) {
    double d = floor(json_number_value(pred->lit));
    if (d < 0)
      d += (double)n;
    if (d >= 0 && d < (double)n)
      json_array_append(out, json_array_get(seq, (size_t)d));
    return out;
  }
  for (size_t i = 0; i < n && c->rc == 0; i++) {
    if (!step(c, pos))
      break;
    json_t *item = json_array_get(seq, i);
    json_t *r = ev(c, pred, item, f);
    if (c->rc != 0)
      break;
    bool keep = false;
    if (json_is_number(r)) {
      double d = floor(json_number_value(r));
      if (d < 0)
        d += (double)n;
      keep = d == (double)i;
    } else if (json_is_array(r) && json_array_size(r) > 0 &&
               json_is_number(json_array_get(r, 0))) {
      size_t k;
      json_t *x;
      json_array_foreach(r, k, x) {
        double d = floor(json_number_value(x));
        if (d < 0)
          d += (double)n;
        if (json_is_number(x) && d == (double)i)
          keep = true;
      }
    } else {
      keep = truthy(c, r);
    }
    json_decref(r);
    if (keep)
      json_array_append(out, item);
  }
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

static json_t *ev_pred(ctx *c, node *n, json_t *input, frame *f)
{
  json_t *base = ev(c, n->a, input, f);
  if (base == NULL)
    return NULL;
  json_t *seq;
  if (json_is_array(base)) {
    seq = base;
  } else {
    seq = json_array();
    json_array_append_new(seq, base);
  }
  json_t *out = filter(c, seq, n->b, f, n->pos);
  json_decref(seq);
  return out ? collapse(out) : NULL;
}

static json_t *ev_path(ctx *c, node *n, json_t *input, frame *f)
{
  json_t *first = ev(c, n->v[0], input, f);
  if (c->rc != 0)
    return NULL;
  json_t *seq = json_array();
  bool kept = false; /* the last step kept an array it selected */
  if (json_is_array(first)) {
    json_array_extend(seq, first);
    json_decref(first);
  } else if (first != NULL) {
    json_array_append_new(seq, first);
  }
  if (n->n == 1 && json_is_array(json_array_get(seq, 0)) && json_array_size(seq) == 1)
    kept = true;
  for (size_t s = 1; s < n->n && c->rc == 0; s++) {
    node *st = n->v[s];
    bool last = s + 1 == n->n;
    json_t *next = json_array();
    size_t cnt = json_array_size(seq);
    json_t *only = NULL;
    size_t results = 0;
    for (size_t i = 0; i < cnt && c->rc == 0; i++) {
      json_t *item = json_array_get(seq, i);
      json_t *r = st->kind == N_WILD && step(c, st->pos) ? ev_wild(c, st, item, true)
                                                          : ev(c, st, item, f);
      if (r == NULL)
        continue;
      results++;
      if (last && cnt == 1 && json_is_array(r) && !json_is_array(item) && st->kind != N_ARR)
        only = json_incref(r);
      if (json_is_array(r) && st->kind != N_ARR) {
        size_t k;
        json_t *x;
        json_array_foreach(r, k, x) {
          if (!arr_push(c, next, json_incref(x), st->pos))
            break;
        }
        json_decref(r);
      } else {
        arr_push(c, next, r, st->pos);
      }
    }
    json_decref(seq);
    seq = next;
    if (only != NULL && results == 1) {
      json_decref(seq);
      seq = json_array();
      json_array_append_new(seq, only);
      kept = true;
    } else {
      json_decref(only);
      kept = false;
    }
  }
  if (c->rc != 0) {
    json_decref(seq);
    return NULL;
  }
  if (kept) {
    json_t *v = json_incref(json_array_get(seq, 0));
    json_decref(seq);
    return v;
  }
  if (n->keep)
    return json_array_size(seq) > 0 ? seq : (json_decref(seq), NULL);
  return collapse(seq);
}

static const char *type_name(ctx *c, json_t *v)
{
  if (v == NULL)
    return "undefined";
  if (fn_of(c, v) != NULL)
    return "function";
  switch (json_typeof(v)) {
  case JSON_STRING: return "string";
  case JSON_INTEGER:
  case JSON_REAL: return "number";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  case JSON_NULL: return "null";
  case JSON_ARRAY: return "array";
  case JSON_OBJECT: return "object";
  }
  return "?";
}

static json_t *ev_bin(ctx *c, node *n, json_t *input, frame *f)
{
  const char *op = n->s;
  if (strcmp(op, "and") == 0 || strcmp(op, "or") == 0) {
    json_t *l = ev(c, n->a, input, f);
    bool lv = truthy(c, l);
    json_decref(l);
    if (c->rc != 0)
      return NULL;
    if (op[0] == 'a' ? !lv : lv)
      return json_boolean(lv);
    json_t *r = ev(c, n->b, input, f);
    bool rv = truthy(c, r);
    json_decref(r);
    return c->rc != 0 ? NULL : json_boolean(rv);
  }
  json_t *l = ev(c, n->a, input, f);
  json_t *r = c->rc == 0 ? ev(c, n->b, input, f) : NULL;
  json_t *out = NULL;
  if (c->rc != 0)
    goto done;
  if (strchr("+-*/%", op[0]) != NULL && op[1] == '\0') {
    if ((l != NULL && !json_is_number(l)) || (r != NULL && !json_is_number(r))) {
      fail(c, n->pos, "the operands of '%s' must be numbers (got %s and %s)", op,
           type_name(c, l), type_name(c, r));
      goto done;
    }
    if (l == NULL || r == NULL)
      goto done;
    double a = json_number_value(l), b = json_number_value(r);
    double d = op[0] == '+' ? a + b : op[0] == '-' ? a - b : op[0] == '*' ? a * b
             : op[0] == '/' ? a / b : fmod(a, b);
    out = num(c, d, n->pos);
  } else if (strcmp(op, "&") == 0) {
    json_t *ls = to_string(c, l, n->pos);
    json_t *rs = c->rc == 0 ? to_string(c, r, n->pos) : NULL;
    size_t ll = ls ? json_string_length(ls) : 0, rl = rs ? json_string_length(rs) : 0;
    if (c->rc == 0 && ll + rl > JSONATA_MAX_STRING) {
      fail(c, n->pos, "a string would be longer than %u bytes", JSONATA_MAX_STRING);
    } else if (c->rc == 0) {
      char *s = xmalloc(ll + rl + 1);
      if (ll)
        memcpy(s, json_string_value(ls), ll);
      if (rl)
        memcpy(s + ll, json_string_value(rs), rl);
      s[ll + rl] = '\0';
      c->steps += (long)((ll + rl) / 256);
      out = json_stringn_nocheck(s, ll + rl);
      free(s);
    }
    json_decref(ls);
    json_decref(rs);
  } else if (strcmp(op, "=") == 0 || strcmp(op, "!=") == 0) {
    bool eq = l != NULL && r != NULL && deep_eq(l, r);
    if (l == NULL || r == NULL)
      out = json_false();
    else
      out = json_boolean(op[0] == '=' ? eq : !eq);
  } else if (strcmp(op, "in") == 0) {
    bool found = false;
    if (l != NULL && r != NULL) {
      if (json_is_array(r)) {
        size_t i;
        json_t *x;
        json_array_foreach(r, i, x) {
          if (deep_eq(l, x))
            found = true;
        }
      } else {
        found = deep_eq(l, r);
      }
    }
    out = json_boolean(found);
  } else { /* < <= > >= */
    bool ln = json_is_number(l), rn = json_is_number(r);
    bool ls = json_is_string(l), rs = json_is_string(r);
    if ((l != NULL && !ln && !ls) || (r != NULL && !rn && !rs)) {
      fail(c, n->pos, "the operands of '%s' must be numbers or strings (got %s and %s)", op,
           type_name(c, l), type_name(c, r));
      goto done;
    }
    if (l == NULL || r == NULL)
      goto done;
    if (ln != rn) {
      fail(c, n->pos, "the operands of '%s' must both be numbers or both strings", op);
      goto done;
    }
    int cmp;
    if (ln) {
      double a = json_number_value(l), b = json_number_value(r);
      cmp = a < b ? -1 : a > b ? 1 : 0;
    } else {
      cmp = strcmp(json_string_value(l), json_string_value(r));
    }
    bool res = strcmp(op, "<") == 0    ? cmp < 0
               : strcmp(op, "<=") == 0 ? cmp <= 0
               : strcmp(op, ">") == 0  ? cmp > 0
                                       : cmp >= 0;
    out = json_boolean(res);
  }
done:
  json_decref(l);
  json_decref(r);
  return c->rc != 0 ? (json_decref(out), NULL) : out;
}

static json_t *ev_array(ctx *c, node *n, json_t *input, frame *f)
{
  json_t *out = json_array();
  for (size_t i = 0; i < n->n && c->rc == 0; i++) {
    node *it = n->v[i];
    if (it->kind == N_RANGE) {
      json_t *lo = ev(c, it->a, input, f);
      json_t *hi = c->rc == 0 ? ev(c, it->b, input, f) : NULL;
      if (c->rc == 0 && ((lo != NULL && (!json_is_number(lo) ||
                                         json_number_value(lo) != floor(json_number_value(lo)))) ||
                         (hi != NULL && (!json_is_number(hi) ||
                                         json_number_value(hi) != floor(json_number_value(hi))))))
        fail(c, it->pos, "the bounds of a range must be integers");
      if (c->rc == 0 && lo != NULL && hi != NULL) {
        double a = json_number_value(lo), b = json_number_value(hi);
        if (b - a + 1 > JSONATA_MAX_ARRAY)
          fail(c, it->pos, "a range would have more than %d elements", JSONATA_MAX_ARRAY);
        for (double d = a; d <= b && c->rc == 0; d++) {
          if (!step(c, it->pos) || !arr_push(c, out, json_integer((json_int_t)d), it->pos))
            break;
        }
      }
      json_decref(lo);
      json_decref(hi);
      continue;
    }
    json_t *v = ev(c, it, input, f);
    if (v == NULL)
      continue;
    if (json_is_array(v) && it->kind != N_ARR) {
      size_t k;
      json_t *x;
      json_array_foreach(v, k, x) {
        if (!arr_push(c, out, json_incref(x), it->pos))
          break;
      }
      json_decref(v);
    } else {
      arr_push(c, out, v, it->pos);
    }
  }
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

static json_t *ev_object(ctx *c, node *n, json_t *input, frame *f)
{
  json_t *out = json_object();
  for (size_t i = 0; i + 1 < n->n && c->rc == 0; i += 2) {
    json_t *k = ev(c, n->v[i], input, f);
    if (c->rc != 0)
      break;
    if (!json_is_string(k)) {
      fail(c, n->v[i]->pos, "an object's key must be a string (got %s)", type_name(c, k));
      json_decref(k);
      break;
    }
    json_t *v = ev(c, n->v[i + 1], input, f);
    if (v != NULL && c->rc == 0)
      json_object_set_new(out, json_string_value(k), v);
    else
      json_decref(v);
    json_decref(k);
  }
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

static json_t *ev_call(ctx *c, node *n, json_t *input, frame *f, bool chained, json_t *first)
{
  json_t *fn = ev(c, n->a, input, f);
  if (c->rc != 0) {
    json_decref(first);
    return NULL;
  }
  if (fn_of(c, fn) == NULL) {
    json_decref(fn);
    json_decref(first);
    if (n->a->kind == N_VAR)
      return fail(c, n->pos, "'$%s' is not a function", n->a->s);
    return fail(c, n->pos, "the expression called is not a function");
  }
  size_t na = n->n + (chained ? 1 : 0);
  json_t **args = xcalloc(na + 1, sizeof *args);
  size_t k = 0;
  if (chained)
    args[k++] = first;
  for (size_t i = 0; i < n->n && c->rc == 0; i++)
    args[k++] = ev(c, n->v[i], input, f);
  json_t *out = c->rc == 0 ? call(c, fn, args, na, input, n->pos) : NULL;
  for (size_t i = 0; i < na; i++)
    json_decref(args[i]);
  free(args);
  json_decref(fn);
  return out;
}

static json_t *ev(ctx *c, node *n, json_t *input, frame *f)
{
  if (n == NULL || !step(c, n->pos))
    return NULL;
  if (++c->depth > JSONATA_MAX_DEPTH * 4) {
    c->depth--;
    return fail(c, n->pos, "the evaluation is nested more than %d levels deep",
                JSONATA_MAX_DEPTH * 4);
  }
  json_t *out = NULL;
  switch (n->kind) {
  case N_LIT:
    out = json_is_real(n->lit) ? num(c, json_real_value(n->lit), n->pos) : json_incref(n->lit);
    break;
  case N_NAME:
    out = ev_name(c, n, input);
    break;
  case N_WILD:
    out = ev_wild(c, n, input, false);
    break;
  case N_VAR:
    out = lookup(c, f, n->s, input);
    break;
  case N_PATH:
    out = ev_path(c, n, input, f);
    break;
  case N_PRED:
    out = ev_pred(c, n, input, f);
    break;
  case N_BIN:
    out = ev_bin(c, n, input, f);
    break;
  case N_NEG: {
    json_t *v = ev(c, n->a, input, f);
    if (v != NULL && !json_is_number(v))
      fail(c, n->pos, "cannot negate a %s", type_name(c, v));
    else if (v != NULL)
      out = num(c, -json_number_value(v), n->pos);
    json_decref(v);
    break;
  }
  case N_ARR:
    out = ev_array(c, n, input, f);
    break;
  case N_RANGE:
    fail(c, n->pos, "a range is only allowed in an array constructor");
    break;
  case N_OBJ:
    out = ev_object(c, n, input, f);
    break;
  case N_BLOCK: {
    frame *b = frame_new(c, f);
    for (size_t i = 0; i < n->n && c->rc == 0; i++) {
      json_decref(out);
      out = ev(c, n->v[i], input, b);
    }
    break;
  }
  case N_BIND: {
    out = ev(c, n->a, input, f);
    frame *target = f;
    if (c->rc == 0 && target != NULL) {
      if (out != NULL)
        json_object_set(target->vars, n->s, out);
      else
        json_object_del(target->vars, n->s);
    }
    break;
  }
  case N_COND: {
    json_t *cond = ev(c, n->a, input, f);
    bool t = truthy(c, cond);
    json_decref(cond);
    if (c->rc == 0)
      out = t ? ev(c, n->b, input, f) : n->c != NULL ? ev(c, n->c, input, f) : NULL;
    break;
  }
  case N_LAMBDA:
    out = fn_make(c, NULL, n, f, input);
    break;
  case N_CALL:
    out = ev_call(c, n, input, f, false, NULL);
    break;
  case N_CHAIN: {
    json_t *l = ev(c, n->a, input, f);
    if (c->rc != 0)
      break;
    if (n->b->kind == N_CALL) {
      out = ev_call(c, n->b, input, f, true, l);
    } else {
      json_t *fn = ev(c, n->b, input, f);
      if (c->rc == 0 && fn_of(c, fn) == NULL)
        fail(c, n->pos, "the right side of '~>' must be a function");
      else if (c->rc == 0)
        out = call(c, fn, &l, 1, input, n->pos);
      json_decref(fn);
      json_decref(l);
    }
    break;
  }
  }
  c->depth--;
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

static json_t *call(ctx *c, json_t *fn, json_t **args, size_t nargs, json_t *input, size_t pos)
{
  fnval *fv = fn_of(c, fn);
  if (fv == NULL)
    return fail(c, pos, "not a function");
  if (fv->b != NULL) {
    const builtin *b = fv->b;
    json_t *ctxarg[1];
    if (nargs == 0 && b->ctx_arg && input != NULL) {
      ctxarg[0] = input;
      args = ctxarg;
      nargs = 1;
    }
    if ((int)nargs < b->min || (b->max >= 0 && (int)nargs > b->max))
      return fail(c, pos, "$%s takes %d to %d arguments, not %zu", b->name, b->min,
                  b->max < 0 ? 99 : b->max, nargs);
    return b->fn(c, args, nargs, input, pos);
  }
  node *lam = fv->lambda;
  frame *env = fv->env;
  json_t *lin = fv->input;
  frame *fr = frame_new(c, env);
  for (size_t i = 0; i < lam->n; i++)
    if (i < nargs && args[i] != NULL)
      json_object_set(fr->vars, lam->v[i]->s, args[i]);
  return ev(c, lam->a, lin, fr);
}

/* A function's arity, for $map and friends (how many arguments to pass). */
static size_t arity(ctx *c, json_t *fn)
{
  fnval *fv = fn_of(c, fn);
  if (fv == NULL)
    return 0;
  if (fv->lambda != NULL)
    return fv->lambda->n;
  return fv->b->max < 0 ? 3 : (size_t)fv->b->max;
}

/* ---- the function library ---- */

#define ARG(i) ((i) < n ? a[i] : NULL)

static json_t *as_seq(json_t *v)
{
  if (v == NULL)
    return json_array();
  if (json_is_array(v))
    return json_incref(v);
  json_t *s = json_array();
  json_array_append(s, v);
  return s;
}

static bool need_str(ctx *c, json_t *v, const char *fn, int i, size_t pos)
{
  if (v != NULL && !json_is_string(v)) {
    fail(c, pos, "argument %d of $%s must be a string (got %s)", i, fn, type_name(c, v));
    return false;
  }
  return true;
}

static bool need_num(ctx *c, json_t *v, const char *fn, int i, size_t pos)
{
  if (v != NULL && !json_is_number(v)) {
    fail(c, pos, "argument %d of $%s must be a number (got %s)", i, fn, type_name(c, v));
    return false;
  }
  return true;
}

static bool need_fn(ctx *c, json_t *v, const char *fn, int i, size_t pos)
{
  if (fn_of(c, v) == NULL) {
    fail(c, pos, "argument %d of $%s must be a function", i, fn);
    return false;
  }
  return true;
}

/* Code points of a UTF-8 string, and the byte offset of code point i. */
static size_t u8_len(const char *s, size_t bytes)
{
  size_t n = 0;
  for (size_t i = 0; i < bytes; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80)
      n++;
  return n;
}

static size_t u8_off(const char *s, size_t bytes, size_t cp)
{
  size_t n = 0;
  for (size_t i = 0; i < bytes; i++) {
    if (((unsigned char)s[i] & 0xC0) != 0x80) {
      if (n == cp)
        return i;
      n++;
    }
  }
  return bytes;
}

static json_t *bi_string(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  (void)n;
  if (a[0] != NULL && json_is_number(a[0]) && !isfinite(json_number_value(a[0])))
    return fail(c, pos, "$string cannot convert an infinite number");
  return to_string(c, a[0], pos);
}

static json_t *bi_number(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  (void)n;
  json_t *v = a[0];
  if (v == NULL)
    return NULL;
  if (json_is_number(v))
    return json_incref(v);
  if (json_is_boolean(v))
    return json_integer(json_is_true(v) ? 1 : 0);
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *end;
    double d = strtod(s, &end);
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b') && s[2] != '\0') {
      /* JSONata 2: 0x.., 0o.., 0b.. */
      long long iv = strtoll(s + 2, &end, s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2);
      if (*end == '\0' && isalnum((unsigned char)s[2]))
        return num(c, (double)iv, pos);
    }
    bool hex = strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0;
    if (*s != '\0' && !isspace((unsigned char)*s) && *end == '\0' && !hex && isfinite(d) &&
        strcasecmp(s, "nan") != 0 && strcasecmp(s, "inf") != 0 && strcasecmp(s, "infinity") != 0)
      return num(c, d, pos);
  }
  return fail(c, pos, "$number cannot convert %s '%s' to a number", type_name(c, v),
              json_is_string(v) ? json_string_value(v) : "");
}

static json_t *bi_boolean(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n, (void)pos;
  return a[0] == NULL ? NULL : json_boolean(truthy(c, a[0]));
}

static json_t *bi_not(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n, (void)pos;
  return a[0] == NULL ? NULL : json_boolean(!truthy(c, a[0]));
}

static json_t *bi_exists(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)c, (void)in, (void)n, (void)pos;
  return json_boolean(a[0] != NULL);
}

static json_t *bi_count(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)c, (void)in, (void)pos;
  if (ARG(0) == NULL)
    return json_integer(0);
  return json_integer(json_is_array(a[0]) ? (json_int_t)json_array_size(a[0]) : 1);
}

/* $sum $max $min $average: which 0..3 */
static json_t *aggregate(ctx *c, json_t *v, int which, const char *name, size_t pos)
{
  if (v == NULL)
    return NULL;
  json_t *s = as_seq(v);
  double acc = which == 0 || which == 3 ? 0 : NAN;
  size_t i;
  json_t *x;
  json_array_foreach(s, i, x) {
    if (!json_is_number(x)) {
      json_decref(s);
      return fail(c, pos, "$%s takes an array of numbers (got %s)", name, type_name(c, x));
    }
    double d = json_number_value(x);
    if (which == 0 || which == 3)
      acc += d;
    else if (which == 1)
      acc = isnan(acc) || d > acc ? d : acc;
    else
      acc = isnan(acc) || d < acc ? d : acc;
  }
  size_t cnt = json_array_size(s);
  json_decref(s);
  if (cnt == 0)
    return which == 0 ? json_integer(0) : NULL;
  if (which == 3)
    acc /= (double)cnt;
  return num(c, acc, pos);
}

static json_t *bi_sum(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  return aggregate(c, a[0], 0, "sum", pos);
}

static json_t *bi_max(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  return aggregate(c, a[0], 1, "max", pos);
}

static json_t *bi_min(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  return aggregate(c, a[0], 2, "min", pos);
}

static json_t *bi_average(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  return aggregate(c, a[0], 3, "average", pos);
}

static json_t *bi_length(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (a[0] == NULL)
    return NULL;
  if (!need_str(c, a[0], "length", 1, pos))
    return NULL;
  return json_integer((json_int_t)u8_len(json_string_value(a[0]), json_string_length(a[0])));
}

static json_t *bi_substring(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  if (a[0] == NULL)
    return NULL;
  if (!need_str(c, a[0], "substring", 1, pos) || !need_num(c, ARG(1), "substring", 2, pos) ||
      !need_num(c, ARG(2), "substring", 3, pos))
    return NULL;
  const char *s = json_string_value(a[0]);
  size_t bytes = json_string_length(a[0]);
  double len = (double)u8_len(s, bytes);
  double start = ARG(1) ? floor(json_number_value(a[1])) : 0;
  if (start < 0)
    start = len + start < 0 ? 0 : len + start;
  double cnt = ARG(2) ? floor(json_number_value(a[2])) : len;
  if (cnt < 0)
    cnt = 0;
  if (start > len)
    start = len;
  double end = start + cnt > len ? len : start + cnt;
  size_t b0 = u8_off(s, bytes, (size_t)start), b1 = u8_off(s, bytes, (size_t)end);
  return json_stringn_nocheck(s + b0, b1 - b0);
}

static json_t *bi_before_after(ctx *c, json_t **a, size_t n, bool after, size_t pos)
{
  if (a[0] == NULL)
    return NULL;
  const char *fn = after ? "substringAfter" : "substringBefore";
  if (!need_str(c, a[0], fn, 1, pos) || !need_str(c, ARG(1), fn, 2, pos) || ARG(1) == NULL)
    return ARG(1) == NULL && c->rc == 0 ? json_incref(a[0]) : NULL;
  const char *s = json_string_value(a[0]);
  const char *hit = strstr(s, json_string_value(a[1]));
  if (hit == NULL)
    return json_incref(a[0]);
  if (after)
    return json_string_nocheck(hit + json_string_length(a[1]));
  return json_stringn_nocheck(s, (size_t)(hit - s));
}

static json_t *bi_before(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  return bi_before_after(c, a, n, false, pos);
}

static json_t *bi_after(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  return bi_before_after(c, a, n, true, pos);
}

static json_t *bi_case(ctx *c, json_t **a, bool up, size_t pos)
{
  if (a[0] == NULL)
    return NULL;
  if (!need_str(c, a[0], up ? "uppercase" : "lowercase", 1, pos))
    return NULL;
  size_t len = json_string_length(a[0]);
  char *s = xstrndup(json_string_value(a[0]), len);
  for (size_t i = 0; i < len; i++)
    s[i] = (char)(up ? toupper((unsigned char)s[i]) : tolower((unsigned char)s[i]));
  json_t *r = json_stringn_nocheck(s, len);
  free(s);
  return r;
}

static json_t *bi_upper(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  return bi_case(c, a, true, pos);
}

static json_t *bi_lower(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  return bi_case(c, a, false, pos);
}

static json_t *bi_trim(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (a[0] == NULL)
    return NULL;
  if (!need_str(c, a[0], "trim", 1, pos))
    return NULL;
  const char *s = json_string_value(a[0]);
  buf b;
  buf_init(&b, JSONATA_MAX_STRING);
  bool space = false;
  for (; *s; s++) {
    if (isspace((unsigned char)*s)) {
      space = true;
      continue;
    }
    if (space && b.len > 0)
      buf_append(&b, " ", 1);
    space = false;
    buf_append(&b, s, 1);
  }
  json_t *r = json_stringn_nocheck(b.data ? b.data : "", b.len);
  buf_release(&b);
  return r;
}

static json_t *bi_contains(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (a[0] == NULL)
    return NULL;
  if (!need_str(c, a[0], "contains", 1, pos))
    return NULL;
  if (!json_is_string(a[1]))
    return fail(c, pos, "argument 2 of $contains must be a string (regular expressions are "
                "not supported)");
  return json_boolean(strstr(json_string_value(a[0]), json_string_value(a[1])) != NULL);
}

static json_t *bi_split(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  if (a[0] == NULL)
    return NULL;
  if (!need_str(c, a[0], "split", 1, pos) || !need_num(c, ARG(2), "split", 3, pos))
    return NULL;
  if (!json_is_string(a[1]))
    return fail(c, pos, "argument 2 of $split must be a string (regular expressions are not "
                "supported)");
  double limit = ARG(2) ? json_number_value(a[2]) : -1;
  if (ARG(2) && limit < 0)
    return fail(c, pos, "the limit of $split must not be negative");
  json_t *out = json_array();
  const char *s = json_string_value(a[0]);
  size_t slen = json_string_length(a[0]);
  const char *sep = json_string_value(a[1]);
  size_t sl = json_string_length(a[1]);
  if (sl == 0) {
    for (size_t i = 0; i < slen && c->rc == 0;) {
      size_t j = i + 1;
      while (j < slen && ((unsigned char)s[j] & 0xC0) == 0x80)
        j++;
      if (limit >= 0 && (double)json_array_size(out) >= limit)
        break;
      if (!step(c, pos) || !arr_push(c, out, json_stringn_nocheck(s + i, j - i), pos))
        break;
      i = j;
    }
  } else {
    const char *p = s;
    for (;;) {
      if (limit >= 0 && (double)json_array_size(out) >= limit)
        break;
      if (!step(c, pos))
        break;
      const char *hit = strstr(p, sep);
      if (hit == NULL) {
        arr_push(c, out, json_string_nocheck(p), pos);
        break;
      }
      if (!arr_push(c, out, json_stringn_nocheck(p, (size_t)(hit - p)), pos))
        break;
      p = hit + sl;
    }
  }
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

static json_t *bi_join(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  if (a[0] == NULL)
    return NULL;
  if (!need_str(c, ARG(1), "join", 2, pos))
    return NULL;
  json_t *s = as_seq(a[0]);
  buf b;
  buf_init(&b, JSONATA_MAX_STRING);
  size_t i;
  json_t *x;
  json_array_foreach(s, i, x) {
    if (!json_is_string(x)) {
      fail(c, pos, "$join takes an array of strings (got %s)", type_name(c, x));
      break;
    }
    bool sep_ok = i == 0 || ARG(1) == NULL ||
                  buf_append(&b, json_string_value(a[1]), json_string_length(a[1])) == 0;
    if (!sep_ok || buf_append(&b, json_string_value(x), json_string_length(x)) != 0) {
      fail(c, pos, "a string would be longer than %u bytes", JSONATA_MAX_STRING);
      break;
    }
  }
  json_decref(s);
  json_t *r = c->rc == 0 ? json_stringn_nocheck(b.data ? b.data : "", b.len) : NULL;
  buf_release(&b);
  return r;
}

static json_t *bi_replace(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  if (a[0] == NULL)
    return NULL;
  if (!need_str(c, a[0], "replace", 1, pos) || !need_num(c, ARG(3), "replace", 4, pos))
    return NULL;
  if (!json_is_string(ARG(1)))
    return fail(c, pos, "argument 2 of $replace must be a string (regular expressions are "
                "not supported)");
  if (json_string_length(a[1]) == 0)
    return fail(c, pos, "the pattern of $replace must not be empty");
  if (!json_is_string(ARG(2)))
    return fail(c, pos, "argument 3 of $replace must be a string");
  double limit = ARG(3) ? json_number_value(a[3]) : -1;
  const char *s = json_string_value(a[0]);
  const char *pat = json_string_value(a[1]);
  size_t pl = json_string_length(a[1]);
  buf b;
  buf_init(&b, JSONATA_MAX_STRING);
  double done = 0;
  const char *hit;
  int rc = 0;
  while ((limit < 0 || done < limit) && (hit = strstr(s, pat)) != NULL && rc == 0) {
    rc |= buf_append(&b, s, (size_t)(hit - s));
    rc |= buf_append(&b, json_string_value(a[2]), json_string_length(a[2]));
    s = hit + pl;
    done++;
    if (!step(c, pos))
      break;
  }
  rc |= buf_puts(&b, s);
  json_t *r = NULL;
  if (rc != 0)
    fail(c, pos, "a string would be longer than %u bytes", JSONATA_MAX_STRING);
  else if (c->rc == 0)
    r = json_stringn_nocheck(b.data ? b.data : "", b.len);
  buf_release(&b);
  return r;
}

static json_t *bi_keys(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  json_t *out = json_array();
  json_t *s = as_seq(a[0]);
  size_t i;
  json_t *o;
  json_array_foreach(s, i, o) {
    if (!json_is_object(o) || fn_of(c, o) != NULL)
      continue;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
      bool dup = false;
      size_t j;
      json_t *x;
      if (!step(c, pos))
        break;
      json_array_foreach(out, j, x) {
        if (strcmp(json_string_value(x), k) == 0)
          dup = true;
      }
      if (!dup)
        json_array_append_new(out, json_string_nocheck(k));
    }
  }
  json_decref(s);
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return collapse(out);
}

static json_t *bi_lookup(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (!need_str(c, a[1], "lookup", 2, pos) || a[0] == NULL || a[1] == NULL)
    return NULL;
  node nm = {.kind = N_NAME, .s = (char *)json_string_value(a[1]), .pos = pos};
  return ev_name(c, &nm, a[0]);
}

static json_t *bi_merge(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (a[0] == NULL)
    return NULL;
  json_t *out = json_object();
  json_t *s = as_seq(a[0]);
  size_t i;
  json_t *o;
  json_array_foreach(s, i, o) {
    if (!json_is_object(o)) {
      fail(c, pos, "$merge takes an array of objects (got %s)", type_name(c, o));
      break;
    }
    json_object_update(out, o);
  }
  json_decref(s);
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

static json_t *bi_append(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (a[0] == NULL)
    return a[1] ? json_incref(a[1]) : NULL;
  if (a[1] == NULL)
    return json_incref(a[0]);
  json_t *l = as_seq(a[0]), *r = as_seq(a[1]);
  json_t *out = json_array();
  if (json_array_size(l) + json_array_size(r) > JSONATA_MAX_ARRAY) {
    fail(c, pos, "an array would have more than %d elements", JSONATA_MAX_ARRAY);
  } else {
    json_array_extend(out, l);
    json_array_extend(out, r);
    c->steps += (long)(json_array_size(out) / 16);
  }
  json_decref(l);
  json_decref(r);
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

/* $sort's comparison: true when x must come after y. */
static bool sort_after(ctx *c, json_t *fn, json_t *x, json_t *y, size_t pos)
{
  if (c->rc != 0)
    return false;
  step(c, pos);
  if (fn != NULL) {
    json_t *args[2] = {x, y};
    json_t *r = call(c, fn, args, 2, NULL, pos);
    bool t = truthy(c, r);
    json_decref(r);
    return t;
  }
  if (json_is_number(x) && json_is_number(y))
    return json_number_value(x) > json_number_value(y);
  if (json_is_string(x) && json_is_string(y))
    return strcmp(json_string_value(x), json_string_value(y)) > 0;
  fail(c, pos, "$sort without a function sorts an array of only numbers or only strings");
  return false;
}

static json_t *bi_sort(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  if (a[0] == NULL)
    return NULL;
  json_t *fn = ARG(1);
  if (fn != NULL && !need_fn(c, fn, "sort", 2, pos))
    return NULL;
  json_t *s = as_seq(a[0]);
  size_t len = json_array_size(s);
  json_t **v = xmalloc((len + 1) * sizeof *v);
  json_t **tmp = xmalloc((len + 1) * sizeof *tmp);
  for (size_t i = 0; i < len; i++)
    v[i] = json_array_get(s, i);
  if (fn == NULL && len > 0 && !json_is_number(v[0]) && !json_is_string(v[0]))
    fail(c, pos, "$sort without a function sorts an array of only numbers or only strings");
  /* bottom-up merge sort: stable, n log n comparisons */
  for (size_t w = 1; w < len && c->rc == 0; w *= 2) {
    for (size_t lo = 0; lo < len && c->rc == 0; lo += 2 * w) {
      size_t mid = lo + w < len ? lo + w : len, hi = lo + 2 * w < len ? lo + 2 * w : len;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi && c->rc == 0)
        tmp[k++] = sort_after(c, fn, v[i], v[j], pos) ? v[j++] : v[i++];
      while (i < mid)
        tmp[k++] = v[i++];
      while (j < hi)
        tmp[k++] = v[j++];
    }
    memcpy(v, tmp, len * sizeof *v);
  }
  json_t *out = NULL;
  if (c->rc == 0) {
    out = json_array();
    for (size_t i = 0; i < len; i++)
      json_array_append(out, v[i]);
  }
  free(v);
  free(tmp);
  json_decref(s);
  return out;
}

static json_t *bi_reverse(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)c, (void)in, (void)n, (void)pos;
  if (a[0] == NULL)
    return NULL;
  json_t *s = as_seq(a[0]);
  json_t *out = json_array();
  for (size_t i = json_array_size(s); i > 0; i--)
    json_array_append(out, json_array_get(s, i - 1));
  json_decref(s);
  return out;
}

static json_t *bi_distinct(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (a[0] == NULL)
    return NULL;
  if (!json_is_array(a[0]))
    return json_incref(a[0]);
  json_t *out = json_array();
  size_t i;
  json_t *x;
  json_array_foreach(a[0], i, x) {
    bool dup = false;
    size_t j;
    json_t *y;
    json_array_foreach(out, j, y) {
      if (!step(c, pos))
        break;
      if (deep_eq(x, y)) {
        dup = true;
        break;
      }
    }
    if (c->rc != 0)
      break;
    if (!dup)
      json_array_append(out, x);
  }
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

static json_t *bi_now(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)a, (void)n, (void)in, (void)pos;
  char t[25];
  time_format_iso8601_ms(c->now, t);
  return json_string(t);
}

static json_t *bi_millis(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)a, (void)n, (void)in, (void)pos;
  return json_integer(c->now);
}

static json_t *bi_tomillis(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  if (a[0] == NULL)
    return NULL;
  if (!need_str(c, a[0], "toMillis", 1, pos))
    return NULL;
  if (ARG(1) != NULL)
    return fail(c, pos, "$toMillis with a picture string is not supported");
  int64_t ms;
  const char *s = json_string_value(a[0]);
  if (!time_parse_iso8601(s, &ms)) {
    /* a date alone, or an offset other than Z */
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
    char sign = 0;
    double frac = 0;
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3)
      return fail(c, pos, "$toMillis cannot read the timestamp '%s'", s);
    const char *p = s + used;
    if (*p == 'T') {
      int u2 = 0;
      if (sscanf(p, "T%2d:%2d:%2d%n", &h, &mi, &sec, &u2) != 3)
        return fail(c, pos, "$toMillis cannot read the timestamp '%s'", s);
      p += u2;
      if (*p == '.') {
        char *end;
        frac = strtod(p, &end);
        p = end;
      }
      if (*p == '+' || *p == '-') {
        sign = *p;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
          return fail(c, pos, "$toMillis cannot read the timestamp '%s'", s);
        p += 6;
      } else if (*p == 'Z') {
        p++;
      }
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
      return fail(c, pos, "$toMillis cannot read the timestamp '%s'", s);
    /* days from civil (Howard Hinnant's algorithm) */
    int yy = mo <= 2 ? y - 1 : y;
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    unsigned yoe = (unsigned)(yy - era * 400);
    unsigned doy = (unsigned)((153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
    int64_t off = (int64_t)(oh * 60 + om) * 60000 * (sign == '-' ? -1 : 1);
    ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 +
         (int64_t)llround(frac * 1000) - off;
  }
  return json_integer(ms);
}

static json_t *bi_frommillis(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  if (a[0] == NULL)
    return NULL;
  if (!need_num(c, a[0], "fromMillis", 1, pos))
    return NULL;
  if (ARG(1) != NULL || ARG(2) != NULL)
    return fail(c, pos, "$fromMillis with a picture string is not supported");
  double d = json_number_value(a[0]);
  if (d < -62135596800000.0 || d > 253402300799999.0)
    return fail(c, pos, "$fromMillis: the time is out of range");
  char t[25];
  time_format_iso8601_ms((int64_t)floor(d), t);
  return json_string(t);
}

static json_t *bi_round(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  if (a[0] == NULL)
    return NULL;
  if (!need_num(c, a[0], "round", 1, pos) || !need_num(c, ARG(1), "round", 2, pos))
    return NULL;
  double v = json_number_value(a[0]);
  int prec = ARG(1) ? (int)json_number_value(a[1]) : 0;
  if (prec > 15 || prec < -15)
    prec = prec > 0 ? 15 : -15;
  double scale = pow(10.0, prec);
  double x = v * scale;
  /* round half to even, as JSONata does */
  double r = round(x);
  if (fabs(x - trunc(x)) == 0.5)
    r = 2.0 * round(x / 2.0);
  return num(c, r / scale, pos);
}

static json_t *bi_math(ctx *c, json_t **a, const char *name, double (*f)(double), size_t pos)
{
  if (a[0] == NULL)
    return NULL;
  if (!need_num(c, a[0], name, 1, pos))
    return NULL;
  return num(c, f(json_number_value(a[0])), pos);
}

static json_t *bi_floor(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  return bi_math(c, a, "floor", floor, pos);
}

static json_t *bi_ceil(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  return bi_math(c, a, "ceil", ceil, pos);
}

static json_t *bi_abs(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  return bi_math(c, a, "abs", fabs, pos);
}

static json_t *bi_sqrt(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (a[0] != NULL && json_is_number(a[0]) && json_number_value(a[0]) < 0)
    return fail(c, pos, "$sqrt of a negative number");
  return bi_math(c, a, "sqrt", sqrt, pos);
}

static json_t *bi_power(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (a[0] == NULL)
    return NULL;
  if (!need_num(c, a[0], "power", 1, pos) || !need_num(c, a[1], "power", 2, pos) || !a[1])
    return NULL;
  return num(c, pow(json_number_value(a[0]), json_number_value(a[1])), pos);
}

static json_t *bi_type(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n, (void)pos;
  if (a[0] == NULL)
    return NULL;
  return json_string(type_name(c, a[0]));
}

/* $map $filter: fn(value, index, array) per item */
static json_t *map_filter(ctx *c, json_t **a, bool keep_items, const char *name, size_t pos)
{
  if (a[0] == NULL)
    return NULL;
  if (!need_fn(c, a[1], name, 2, pos))
    return NULL;
  json_t *s = as_seq(a[0]);
  json_t *out = json_array();
  size_t na = arity(c, a[1]);
  if (na > 3)
    na = 3;
  size_t i;
  json_t *x;
  json_array_foreach(s, i, x) {
    if (!step(c, pos))
      break;
    json_t *idx = json_integer((json_int_t)i);
    json_t *args[3] = {x, idx, s};
    json_t *r = call(c, a[1], args, na == 0 ? 1 : na, NULL, pos);
    json_decref(idx);
    if (c->rc != 0)
      break;
    if (keep_items) {
      if (truthy(c, r))
        json_array_append(out, x);
      json_decref(r);
    } else if (r != NULL) {
      arr_push(c, out, r, pos);
    }
  }
  json_decref(s);
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return collapse(out);
}

static json_t *bi_map(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  return map_filter(c, a, false, "map", pos);
}

static json_t *bi_filter(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  return map_filter(c, a, true, "filter", pos);
}

static json_t *bi_reduce(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  if (a[0] == NULL)
    return NULL;
  if (!need_fn(c, a[1], "reduce", 2, pos))
    return NULL;
  if (arity(c, a[1]) < 2)
    return fail(c, pos, "the function of $reduce must take at least two arguments");
  json_t *s = as_seq(a[0]);
  size_t i = 0;
  json_t *acc;
  if (ARG(2) != NULL) {
    acc = json_incref(a[2]);
  } else {
    acc = json_array_size(s) > 0 ? json_incref(json_array_get(s, 0)) : NULL;
    i = 1;
  }
  for (; i < json_array_size(s) && c->rc == 0; i++) {
    if (!step(c, pos))
      break;
    json_t *idx = json_integer((json_int_t)i);
    json_t *args[4] = {acc, json_array_get(s, i), idx, s};
    size_t na = arity(c, a[1]);
    json_t *r = call(c, a[1], args, na > 4 ? 4 : na, NULL, pos);
    json_decref(idx);
    json_decref(acc);
    acc = r;
  }
  json_decref(s);
  if (c->rc != 0) {
    json_decref(acc);
    return NULL;
  }
  return acc;
}

static json_t *bi_pad(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  if (a[0] == NULL)
    return NULL;
  if (!need_str(c, a[0], "pad", 1, pos) || !need_num(c, a[1], "pad", 2, pos) ||
      !need_str(c, ARG(2), "pad", 3, pos) || a[1] == NULL)
    return NULL;
  const char *s = json_string_value(a[0]);
  size_t have = u8_len(s, json_string_length(a[0]));
  double w = json_number_value(a[1]);
  size_t want = (size_t)fabs(w);
  if (want > JSONATA_MAX_STRING)
    return fail(c, pos, "a string would be longer than %u bytes", JSONATA_MAX_STRING);
  const char *ch = ARG(2) != NULL && json_string_length(a[2]) > 0 ? json_string_value(a[2]) : " ";
  size_t chl = strlen(ch);
  buf pad;
  buf_init(&pad, JSONATA_MAX_STRING);
  /* the padding repeats the characters of ch, cut at the width */
  size_t chcp = u8_len(ch, chl);
  for (size_t i = have; i < want; i++) {
    size_t k = (i - have) % chcp;
    size_t b0 = u8_off(ch, chl, k), b1 = u8_off(ch, chl, k + 1);
    if (buf_append(&pad, ch + b0, b1 - b0) != 0) {
      buf_release(&pad);
      return fail(c, pos, "a string would be longer than %u bytes", JSONATA_MAX_STRING);
    }
  }
  buf b;
  buf_init(&b, 2 * (size_t)JSONATA_MAX_STRING + 8);
  if (w < 0)
    buf_append(&b, pad.data ? pad.data : "", pad.len);
  buf_append(&b, s, json_string_length(a[0]));
  if (w >= 0)
    buf_append(&b, pad.data ? pad.data : "", pad.len);
  json_t *r = json_stringn_nocheck(b.data ? b.data : "", b.len);
  buf_release(&b);
  buf_release(&pad);
  return r;
}

static json_t *bi_spread(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (a[0] == NULL)
    return NULL;
  json_t *s = as_seq(a[0]);
  json_t *out = json_array();
  size_t i;
  json_t *o;
  json_array_foreach(s, i, o) {
    if (!json_is_object(o) || fn_of(c, o) != NULL) {
      json_array_append(out, o);
      continue;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
      if (!step(c, pos) || !arr_push(c, out, json_pack("{s:O}", k, v), pos))
        break;
    }
  }
  json_decref(s);
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return collapse(out);
}

static json_t *bi_each(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (a[0] == NULL)
    return NULL;
  if (!json_is_object(a[0]))
    return fail(c, pos, "argument 1 of $each must be an object");
  if (!need_fn(c, a[1], "each", 2, pos))
    return NULL;
  json_t *out = json_array();
  size_t na = arity(c, a[1]);
  const char *k;
  json_t *v;
  json_object_foreach(a[0], k, v) {
    if (!step(c, pos))
      break;
    json_t *key = json_string_nocheck(k);
    json_t *args[3] = {v, key, a[0]};
    json_t *r = call(c, a[1], args, na > 3 ? 3 : na == 0 ? 1 : na, NULL, pos);
    json_decref(key);
    if (c->rc != 0)
      break;
    if (r != NULL)
      arr_push(c, out, r, pos);
  }
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return collapse(out);
}

static json_t *bi_zip(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in;
  json_t *out = json_array();
  size_t len = (size_t)-1;
  json_t **seqs = xcalloc(n + 1, sizeof *seqs);
  for (size_t i = 0; i < n; i++) {
    seqs[i] = as_seq(a[i]);
    if (json_array_size(seqs[i]) < len)
      len = json_array_size(seqs[i]);
  }
  for (size_t j = 0; n > 0 && j < len && c->rc == 0; j++) {
    json_t *row = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append(row, json_array_get(seqs[i], j));
    if (!step(c, pos) || !arr_push(c, out, row, pos))
      break;
  }
  for (size_t i = 0; i < n; i++)
    json_decref(seqs[i]);
  free(seqs);
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

/* ---- the Step Functions additions ---- */

static json_t *bi_partition(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (!json_is_array(a[0]))
    return fail(c, pos, "argument 1 of $partition must be an array");
  if (!json_is_number(a[1]) || json_number_value(a[1]) < 1 ||
      json_number_value(a[1]) != floor(json_number_value(a[1])))
    return fail(c, pos, "argument 2 of $partition must be a positive integer");
  size_t size = (size_t)json_number_value(a[1]);
  json_t *out = json_array();
  json_t *cur = NULL;
  size_t i;
  json_t *x;
  json_array_foreach(a[0], i, x) {
    if (i % size == 0) {
      cur = json_array();
      json_array_append_new(out, cur);
    }
    json_array_append(cur, x);
  }
  return out;
}

static json_t *bi_range(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  for (int i = 0; i < 3; i++)
    if (!json_is_number(a[i]) || json_number_value(a[i]) != floor(json_number_value(a[i])))
      return fail(c, pos, "the arguments of $range must be integers");
  double lo = json_number_value(a[0]), hi = json_number_value(a[1]), st = json_number_value(a[2]);
  if (st == 0)
    return fail(c, pos, "the step of $range must not be 0");
  if ((hi - lo) / st + 1 > JSONATA_MAX_ARRAY)
    return fail(c, pos, "$range would have more than %d elements", JSONATA_MAX_ARRAY);
  json_t *out = json_array();
  for (double d = lo; st > 0 ? d <= hi : d >= hi; d += st) {
    if (!step(c, pos))
      break;
    json_array_append_new(out, json_integer((json_int_t)d));
  }
  if (c->rc != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

static json_t *bi_hash(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (!json_is_string(a[0]))
    return fail(c, pos, "argument 1 of $hash must be a string");
  const char *alg = json_string_value(a[1]);
  const EVP_MD *md = NULL;
  if (alg != NULL && strcmp(alg, "MD5") == 0)
    md = EVP_md5();
  else if (alg != NULL && strcmp(alg, "SHA-1") == 0)
    md = EVP_sha1();
  else if (alg != NULL && strcmp(alg, "SHA-256") == 0)
    md = EVP_sha256();
  else if (alg != NULL && strcmp(alg, "SHA-384") == 0)
    md = EVP_sha384();
  else if (alg != NULL && strcmp(alg, "SHA-512") == 0)
    md = EVP_sha512();
  if (md == NULL)
    return fail(c, pos, "the algorithm of $hash must be one of MD5, SHA-1, SHA-256, SHA-384, "
                "SHA-512");
  uint8_t d[EVP_MAX_MD_SIZE];
  unsigned dl = 0;
  EVP_Digest(json_string_value(a[0]), json_string_length(a[0]), d, &dl, md, NULL);
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  hex_encode(d, dl, hex);
  hex[2 * dl] = '\0';
  return json_string(hex);
}

static json_t *bi_random(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)a, (void)n;
  uint64_t r;
  random_bytes(&r, sizeof r);
  return num(c, (double)(r >> 11) / 9007199254740992.0, pos);
}

static json_t *bi_uuid(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)c, (void)in, (void)a, (void)n, (void)pos;
  char u[37];
  uuid_v4(u);
  return json_string(u);
}

static json_t *bi_parse(ctx *c, json_t **a, size_t n, json_t *in, size_t pos)
{
  (void)in, (void)n;
  if (!json_is_string(a[0]))
    return fail(c, pos, "argument 1 of $parse must be a string");
  json_error_t je;
  json_t *v = json_loadb(json_string_value(a[0]), json_string_length(a[0]), JSON_DECODE_ANY, &je);
  if (v == NULL)
    return fail(c, pos, "$parse: the string is not JSON: %s", je.text);
  return v;
}

static const builtin builtins[] = {
    {"string", bi_string, 1, 2, true},       {"number", bi_number, 1, 1, true},
    {"boolean", bi_boolean, 1, 1, true},     {"not", bi_not, 1, 1, true},
    {"exists", bi_exists, 1, 1, false},      {"count", bi_count, 0, 1, false},
    {"sum", bi_sum, 1, 1, false},            {"max", bi_max, 1, 1, false},
    {"min", bi_min, 1, 1, false},            {"average", bi_average, 1, 1, false},
    {"length", bi_length, 1, 1, true},       {"substring", bi_substring, 2, 3, false},
    {"substringBefore", bi_before, 2, 2, false},
    {"substringAfter", bi_after, 2, 2, false},
    {"uppercase", bi_upper, 1, 1, true},     {"lowercase", bi_lower, 1, 1, true},
    {"trim", bi_trim, 1, 1, true},           {"contains", bi_contains, 2, 2, false},
    {"split", bi_split, 2, 3, false},        {"join", bi_join, 1, 2, false},
    {"replace", bi_replace, 3, 4, false},    {"keys", bi_keys, 1, 1, true},
    {"lookup", bi_lookup, 2, 2, false},      {"merge", bi_merge, 1, 1, false},
    {"append", bi_append, 2, 2, false},      {"sort", bi_sort, 1, 2, false},
    {"reverse", bi_reverse, 1, 1, false},    {"distinct", bi_distinct, 1, 1, false},
    {"now", bi_now, 0, 2, false},            {"millis", bi_millis, 0, 0, false},
    {"toMillis", bi_tomillis, 1, 2, false},  {"fromMillis", bi_frommillis, 1, 3, false},
    {"round", bi_round, 1, 2, false},        {"floor", bi_floor, 1, 1, false},
    {"ceil", bi_ceil, 1, 1, false},          {"abs", bi_abs, 1, 1, false},
    {"sqrt", bi_sqrt, 1, 1, false},          {"power", bi_power, 2, 2, false},
    {"type", bi_type, 1, 1, false},          {"map", bi_map, 2, 2, false},
    {"filter", bi_filter, 2, 2, false},      {"reduce", bi_reduce, 2, 3, false},
    {"partition", bi_partition, 2, 2, false}, {"range", bi_range, 3, 3, false},
    {"hash", bi_hash, 2, 2, false},          {"random", bi_random, 0, 1, false},
    {"uuid", bi_uuid, 0, 0, false},          {"parse", bi_parse, 1, 1, false},
    {"pad", bi_pad, 2, 3, false},            {"spread", bi_spread, 1, 1, false},
    {"each", bi_each, 2, 2, false},          {"zip", bi_zip, 1, -1, false},
};

static const builtin *builtin_find(const char *name)
{
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
    if (strcmp(builtins[i].name, name) == 0)
      return &builtins[i];
  return NULL;
}

/* Drops function values from a result (they have no JSON form). */
static json_t *clean(ctx *c, json_t *v)
{
  if (v == NULL)
    return NULL;
  if (fn_of(c, v) != NULL) {
    json_decref(v);
    return NULL;
  }
  if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++) {
      json_t *x = json_array_get(v, i);
      if (fn_of(c, x) != NULL || json_is_array(x) || json_is_object(x)) {
        json_t *y = clean(c, json_incref(x));
        if (y == NULL) {
          json_array_remove(v, i);
          i--;
        } else {
          json_array_set_new(v, i, y);
        }
      }
    }
  } else if (json_is_object(v)) {
    const char *k;
    json_t *x;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, x) {
      if (fn_of(c, x) != NULL || json_is_array(x) || json_is_object(x)) {
        json_t *y = clean(c, json_incref(x));
        if (y == NULL)
          json_object_del(v, k);
        else
          json_object_set_new(v, k, y);
      }
    }
  }
  return v;
}

static bool has_fn(ctx *c, json_t *v, int depth)
{
  if (depth > 200)
    return false;
  if (fn_of(c, v) != NULL)
    return true;
  size_t i;
  json_t *x;
  const char *k;
  if (json_is_array(v)) {
    json_array_foreach(v, i, x) {
      if (has_fn(c, x, depth + 1))
        return true;
    }
  } else if (json_is_object(v)) {
    json_object_foreach(v, k, x) {
      if (has_fn(c, x, depth + 1))
        return true;
    }
  }
  return false;
}

int jsonata_eval(const jsonata *j, json_t *input, json_t *vars, json_t **out, err *e)
{
  *out = NULL;
  ctx c = {.e = e, .root = input, .now = time_now_ms()};
  frame *top = frame_new(&c, NULL);
  if (vars != NULL)
    json_object_update(top->vars, vars);
  frame *f = frame_new(&c, top);
  json_t *r = ev(&c, j->root, input, f);
  if (c.rc == 0 && r != NULL && c.nfns > 0 && has_fn(&c, r, 0)) {
    json_t *copy = json_deep_copy(r);
    json_decref(r);
    r = clean(&c, copy);
  }
  for (frame *x = c.frames; x != NULL;) {
    frame *next = x->all;
    json_decref(x->vars);
    free(x);
    x = next;
  }
  for (size_t i = 0; i < c.nfns; i++)
    json_decref(c.fns[i].input);
  free(c.fns);
  if (c.rc != 0) {
    json_decref(r);
    return c.rc;
  }
  *out = r;
  return 0;
}

int jsonata_eval_text(const char *src, json_t *input, json_t *vars, json_t **out, err *e)
{
  jsonata *j;
  *out = NULL;
  int rc = jsonata_parse(src, strlen(src), &j, e);
  if (rc != 0)
    return rc;
  rc = jsonata_eval(j, input, vars, out, e);
  jsonata_free(j);
  return rc;
}
