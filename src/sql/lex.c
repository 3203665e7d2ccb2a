/* sql/lex.c -- the SQL tokenizer.
 *
 * Invariants:
 *   (1) Every token carries the 1-based line and column (in characters:
 *       UTF-8 continuation bytes do not count) of its first character.
 *   (2) Identifiers are lower-cased unless double-quoted; string literals
 *       are unescaped ('' -> ').
 */
#include "ast.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sql__error_at(err *e, sql_pos *where, int line, int col, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char msg[ERR_MSG_MAX];
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (where != NULL) {
    where->line = line;
    where->col = col;
  }
  if (line > 0)
    return err_set(e, ERR_INVALID, "%s at line %d, column %d", msg, line, col);
  return err_set(e, ERR_INVALID, "%s", msg);
}

typedef struct lexer {
  const char *s;
  size_t i;
  int line;
  int col;
  arena *a;
  token *toks;
  int n;
  int cap;
} lexer;

static void advance(lexer *L)
{
  unsigned char c = (unsigned char)L->s[L->i];
  L->i++;
  if (c == '\n') {
    L->line++;
    L->col = 1;
  } else if ((c & 0xC0) != 0x80) {
    L->col++;
  } else {
    /* continuation byte: the column was counted at the lead byte */
  }
}

static void push(lexer *L, int kind, const char *text, int line, int col)
{
  if (L->n == L->cap) {
    int nc = L->cap ? L->cap * 2 : 64;
    token *nt = arena_alloc(L->a, sizeof(token) * (size_t)nc);
    if (L->n)
      memcpy(nt, L->toks, sizeof(token) * (size_t)L->n);
    L->toks = nt;
    L->cap = nc;
  }
  L->toks[L->n].kind = kind;
  L->toks[L->n].text = text;
  L->toks[L->n].line = line;
  L->toks[L->n].col = col;
  L->n++;
}

static bool is_ident_start(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool is_ident(unsigned char c)
{
  return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

int sql__lex(const char *sql, arena *a, token **toks, int *ntoks, err *e, sql_pos *pos)
{
  size_t len = strlen(sql);
  if (len > SQL_MAX_TEXT)
    return sql__error_at(e, pos, 0, 0, "statement is longer than %d bytes", SQL_MAX_TEXT);
  lexer L = {.s = sql, .line = 1, .col = 1, .a = a};
  for (;;) {
    unsigned char c = (unsigned char)sql[L.i];
    if (c == '\0')
      break;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
      advance(&L);
      continue;
    }
    if (c == '-' && sql[L.i + 1] == '-') {
      while (sql[L.i] && sql[L.i] != '\n')
        advance(&L);
      continue;
    }
    if (c == '/' && sql[L.i + 1] == '*') {
      int line = L.line;
      int col = L.col;
      advance(&L);
      advance(&L);
      while (sql[L.i] && !(sql[L.i] == '*' && sql[L.i + 1] == '/'))
        advance(&L);
      if (!sql[L.i])
        return sql__error_at(e, pos, line, col, "unterminated comment");
      advance(&L);
      advance(&L);
      continue;
    }
    int line = L.line;
    int col = L.col;
    if (is_ident_start(c)) {
      size_t st = L.i;
      while (is_ident((unsigned char)sql[L.i]))
        advance(&L);
      char *t = arena_strndup(a, sql + st, L.i - st);
      for (char *p = t; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
          *p = (char)(*p + 32);
      push(&L, TK_IDENT, t, line, col);
      continue;
    }
    if (c == '"' || c == '`') {
      char q = (char)c;
      advance(&L);
      char *t = arena_alloc(a, len - L.i + 1);
      size_t o = 0;
      for (;;) {
        if (!sql[L.i])
          return sql__error_at(e, pos, line, col, "unterminated quoted identifier");
        if (sql[L.i] == q) {
          if (sql[L.i + 1] == q) {
            t[o++] = q;
            advance(&L);
            advance(&L);
            continue;
          }
          advance(&L);
          break;
        }
        t[o++] = sql[L.i];
        advance(&L);
      }
      t[o] = '\0';
      if (o == 0)
        return sql__error_at(e, pos, line, col, "empty quoted identifier");
      push(&L, TK_QIDENT, t, line, col);
      continue;
    }
    if (c == '\'') {
      advance(&L);
      char *t = arena_alloc(a, len - L.i + 1);
      size_t o = 0;
      for (;;) {
        if (!sql[L.i])
          return sql__error_at(e, pos, line, col, "unterminated string literal");
        if (sql[L.i] == '\'') {
          if (sql[L.i + 1] == '\'') {
            t[o++] = '\'';
            advance(&L);
            advance(&L);
            continue;
          }
          advance(&L);
          break;
        }
        t[o++] = sql[L.i];
        advance(&L);
      }
      t[o] = '\0';
      push(&L, TK_STRING, t, line, col);
      continue;
    }
    if ((c >= '0' && c <= '9') || (c == '.' && sql[L.i + 1] >= '0' && sql[L.i + 1] <= '9')) {
      size_t st = L.i;
      int kind = TK_INT;
      while (sql[L.i] >= '0' && sql[L.i] <= '9')
        advance(&L);
      if (sql[L.i] == '.') {
        kind = TK_NUMBER;
        advance(&L);
        while (sql[L.i] >= '0' && sql[L.i] <= '9')
          advance(&L);
      }
      if (sql[L.i] == 'e' || sql[L.i] == 'E') {
        size_t save = L.i;
        int sl = L.line, sc = L.col;
        advance(&L);
        if (sql[L.i] == '+' || sql[L.i] == '-')
          advance(&L);
        if (sql[L.i] >= '0' && sql[L.i] <= '9') {
          kind = TK_FLOAT;
          while (sql[L.i] >= '0' && sql[L.i] <= '9')
            advance(&L);
        } else {
          L.i = save;
          L.line = sl;
          L.col = sc;
        }
      }
      if (is_ident_start((unsigned char)sql[L.i]))
        return sql__error_at(e, pos, L.line, L.col, "unexpected character '%c' after a number",
                            sql[L.i]);
      push(&L, kind, arena_strndup(a, sql + st, L.i - st), line, col);
      continue;
    }
    static const char *const ops2[] = {"<=", ">=", "<>", "!=", "||", "::", "=>", ":="};
    const char *op = NULL;
    for (size_t k = 0; k < sizeof ops2 / sizeof ops2[0]; k++) {
      if (sql[L.i] == ops2[k][0] && sql[L.i + 1] == ops2[k][1]) {
        op = ops2[k];
        break;
      }
    }
    if (op != NULL) {
      advance(&L);
      advance(&L);
      push(&L, TK_OP, op, line, col);
      continue;
    }
    if (strchr("(),.;+-*/%=<>[]", c) != NULL) {
      char *t = arena_alloc(a, 2);
      t[0] = (char)c;
      advance(&L);
      push(&L, TK_OP, t, line, col);
      continue;
    }
    if (c < 0x20 || c == 0x7f)
      return sql__error_at(e, pos, line, col, "unexpected control character 0x%02x", c);
    return sql__error_at(e, pos, line, col, "unexpected character '%c'", c);
  }
  push(&L, TK_EOF, "", L.line, L.col);
  *toks = L.toks;
  *ntoks = L.n;
  return 0;
}
