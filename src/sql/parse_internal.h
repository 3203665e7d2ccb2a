/* sql/parse_internal.h -- the parser's state and primitives, shared by
 * parse.c (queries, COPY, CTAS, INSERT) and parse_ddl.c (Athena's DDL).
 * Private to the parser. */
#ifndef TARN_SQL_PARSE_INTERNAL_H
#define TARN_SQL_PARSE_INTERNAL_H

#include "ast.h"

typedef struct parser {
  token *t;
  int n;
  int i;
  arena *a;
  err *e;
  sql_pos *pos;
  int depth;
} parser;

/* a growable array of pointers in the arena */
typedef struct vecp {
  void **v;
  int n;
  int cap;
} vecp;

token *sql__p_peek(parser *p);
token *sql__p_peek2(parser *p);
bool sql__p_is_kw(token *t, const char *kw);
bool sql__p_is_op(token *t, const char *op);
bool sql__p_accept_kw(parser *p, const char *kw);
bool sql__p_accept_op(parser *p, const char *op);
/* "syntax error at X: expected <expected>" at the current token */
int sql__p_syntax(parser *p, const char *expected);
int sql__p_expect_kw(parser *p, const char *kw);
int sql__p_expect_op(parser *p, const char *op);
int sql__p_ident(parser *p, const char **out, const char *what);
/* name {'.' name} */
int sql__p_table_name(parser *p, const char **out);
int sql__p_query(parser *p, ast_query **out);
void sql__p_vpush(parser *p, vecp *v, void *x);

/* DDL (parse_ddl.c): called when the statement starts with a DDL word;
 * 1 when it is not DDL after all (nothing consumed). */
int sql__parse_ddl(parser *p, ast_ddl **out);

#endif
