/* sql/ast.h -- tokens and the syntax tree of one statement (private).
 *
 * The lexer (lex.c) turns the text into tokens with their line and column;
 * the parser (parse.c) builds this tree in the statement's arena. Nothing
 * here knows about tables or types: names are resolved by the binder.
 */
#ifndef TARN_SQL_AST_H
#define TARN_SQL_AST_H

#include "base/arena.h"
#include "base/err.h"
#include "sql.h"

#include <stdbool.h>
#include <stdint.h>

#define SQL_MAX_TEXT (1 << 20)   /* bytes of SQL text accepted */
#define SQL_MAX_DEPTH 200        /* nesting of expressions and subqueries */

/* Where an error is: filled by the lexer, parser and binder. */
typedef struct sql_pos {
  int line;
  int col;
} sql_pos;

/* sets e and *pos; returns ERR_INVALID */
int sql__error_at(err *e, sql_pos *where, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

enum tok_kind {
  TK_EOF = 0,
  TK_IDENT,     /* unquoted identifier or keyword; text is lower-cased */
  TK_QIDENT,    /* "quoted identifier", text as written */
  TK_STRING,    /* 'string literal', text unescaped */
  TK_INT,       /* digits */
  TK_NUMBER,    /* digits with '.' (decimal) */
  TK_FLOAT,     /* with an exponent (double) */
  TK_OP,        /* punctuation; text is the operator */
};

typedef struct token {
  int kind;
  const char *text;
  int line;
  int col;
} token;

/* Tokenizes sql into *toks (arena), ending with TK_EOF. */
int sql__lex(const char *sql, arena *a, token **toks, int *ntoks, err *e, sql_pos *pos);

typedef struct ast_query ast_query;
typedef struct ast_expr ast_expr;
typedef struct ast_from ast_from;

enum ex_kind {
  EX_COLUMN,     /* name, qual */
  EX_STAR,       /* qual.* or * (in select lists and count(*)) */
  EX_INT,        /* text */
  EX_NUMBER,     /* text: decimal literal */
  EX_FLOAT,      /* text: double literal */
  EX_STRING,     /* text */
  EX_BOOL,       /* ival */
  EX_NULL,
  EX_TYPED,      /* DATE 'x', TIMESTAMP 'x': type, text */
  EX_INTERVAL,   /* INTERVAL 'n' unit: text, unit (name), neg */
  EX_BINARY,     /* op, args[0..1] */
  EX_UNARY,      /* op ("not", "-", "+"), args[0] */
  EX_FUNC,       /* name, args, distinct, star (count(*)), over */
  EX_CASE,       /* args: [operand] when then ... [else]; has_operand, has_else */
  EX_CAST,       /* args[0], type; try_cast */
  EX_IN,         /* args[0] IN (args[1..]); neg */
  EX_IN_QUERY,   /* args[0] IN (sub); neg */
  EX_EXISTS,     /* sub; neg */
  EX_SUBQUERY,   /* sub (scalar) */
  EX_BETWEEN,    /* args[0] BETWEEN args[1] AND args[2]; neg */
  EX_LIKE,       /* args[0] LIKE args[1] [ESCAPE args[2]]; neg, ilike */
  EX_IS_NULL,    /* args[0]; neg */
  EX_IS_DISTINCT,/* args[0] IS [NOT] DISTINCT FROM args[1]; neg */
  EX_EXTRACT,    /* EXTRACT(unit FROM args[0]): unit */
};

typedef struct ast_type {
  sql_type type;
  int precision;
  int scale;
} ast_type;

typedef struct ast_order {
  ast_expr *expr;
  bool desc;
  int nulls;         /* 0 default, 1 first, 2 last */
} ast_order;

enum frame_bound { FB_UNBOUNDED_PRECEDING, FB_PRECEDING, FB_CURRENT, FB_FOLLOWING,
                   FB_UNBOUNDED_FOLLOWING };

typedef struct ast_window {
  ast_expr **partition;
  int npartition;
  ast_order *order;
  int norder;
  bool has_frame;
  bool rows;         /* ROWS (else RANGE) */
  int start_kind;
  int64_t start_n;
  int end_kind;
  int64_t end_n;
} ast_window;

struct ast_expr {
  int kind;
  int line;
  int col;
  const char *name;   /* column or function name (lower case unless quoted) */
  const char *qual;   /* table qualifier */
  const char *text;   /* literal text */
  const char *op;     /* operator */
  const char *unit;   /* interval / extract unit (lower case) */
  int64_t ival;
  bool neg;           /* NOT IN, NOT LIKE, IS NOT NULL, NOT BETWEEN, NOT EXISTS */
  bool distinct;      /* count(DISTINCT x) */
  bool star;          /* count(*) */
  bool ilike;
  bool try_cast;
  bool has_operand;   /* CASE x WHEN ... */
  bool has_else;
  ast_type type;      /* CAST target / typed literal */
  ast_expr **args;
  int nargs;
  ast_query *sub;
  ast_window *over;
  ast_expr *filter;   /* agg(x) FILTER (WHERE ...) */
};

typedef struct ast_item {
  ast_expr *expr;
  const char *alias;  /* NULL: derived */
} ast_item;

enum from_kind { FR_TABLE, FR_FUNC, FR_SUBQUERY, FR_JOIN, FR_VALUES };
enum join_kind { JN_INNER, JN_LEFT, JN_RIGHT, JN_FULL, JN_CROSS, JN_SEMI, JN_ANTI };

typedef struct ast_arg {
  const char *name;   /* NULL: positional */
  ast_expr *value;
} ast_arg;

struct ast_from {
  int kind;
  int line;
  int col;
  const char *name;     /* FR_TABLE: identifier or 's3://...' path; FR_FUNC: function */
  bool is_path;         /* name came from a string literal */
  ast_arg *args;        /* FR_FUNC */
  int nargs;
  ast_query *sub;       /* FR_SUBQUERY */
  const char *alias;
  const char **colalias;
  int ncolalias;
  int join;             /* FR_JOIN */
  ast_from *left;
  ast_from *right;
  ast_expr *on;
  const char **using_cols;
  int nusing;
  bool natural;
  ast_expr ***rows;     /* FR_VALUES: rows[i][j] */
  int nrows;
  int nvalcols;
};

typedef struct ast_select {
  bool distinct;
  ast_item *items;
  int nitems;
  ast_from *from;       /* NULL: one row, no columns */
  ast_expr *where;
  ast_expr **group;
  int ngroup;
  ast_expr *having;
} ast_select;

typedef struct ast_cte {
  const char *name;
  const char **cols;
  int ncols;
  ast_query *query;
} ast_cte;

enum query_kind { Q_SELECT, Q_UNION, Q_INTERSECT, Q_EXCEPT };

struct ast_query {
  int kind;
  int line;
  int col;
  ast_select *sel;      /* Q_SELECT */
  bool all;             /* set operation ALL */
  ast_query *left;
  ast_query *right;
  ast_cte *ctes;
  int nctes;
  ast_order *order;
  int norder;
  ast_expr *limit;
  ast_expr *offset;
};

/* Parses one statement (a query, optionally ending with ';'). */
int sql__parse(const char *sql, arena *a, ast_query **out, err *e, sql_pos *pos);

/* Is this word reserved (cannot be a bare column name or alias)? */
bool sql__reserved(const char *word);

/* ---- COPY (query) TO 'path' (options): a query written to objects ---- */

typedef struct ast_copt {
  const char *name;     /* lower case */
  const char *text;     /* the value: a word (lower case), string or integer; NULL none */
  bool is_string;       /* text came from a string literal */
  const char **list;    /* a parenthesized list of names, as PARTITION_BY (a, b) */
  int nlist;
  int line;
  int col;
} ast_copt;

typedef struct ast_copy {
  ast_query *query;
  const char *path;     /* the target, 's3://bucket/key' or '.../prefix/' */
  int line;             /* of COPY */
  int col;
  int path_line;
  int path_col;
  ast_copt *opts;
  int nopts;
  /* Athena's writing statements, parsed onto the same fields (the WITH
     properties become options: format, write_compression, partitioned_by,
     external_location = path): */
  const char *table;    /* CREATE TABLE table WITH (...) AS query / INSERT INTO table query */
  bool insert;          /* INSERT INTO (path NULL: the catalog knows the table) */
  bool if_not_exists;   /* CREATE TABLE IF NOT EXISTS */
  const char **cols;    /* INSERT INTO t (cols): the table's columns given, in order */
  int ncols;
  int table_line;
  int table_col;
} ast_copy;

/* ---- DDL: Athena's statements on the table catalog (parse_ddl.c) ---- */

enum ddl_kind {
  DDL_CREATE_DB, DDL_DROP_DB, DDL_CREATE_TABLE, DDL_DROP_TABLE, DDL_SHOW_DBS,
  DDL_SHOW_TABLES, DDL_SHOW_PARTITIONS, DDL_DESCRIBE, DDL_SHOW_COLUMNS, DDL_SHOW_CREATE,
  DDL_MSCK, DDL_ADD_PARTS, DDL_DROP_PARTS,
};

typedef struct ast_kv {
  const char *key;
  const char *value;
} ast_kv;

typedef struct ast_coldef {
  const char *name;     /* lower case */
  const char *type;     /* Hive type text, lower case: "int", "decimal(10,2)", "array<string>" */
  const char *comment;
  int line;
  int col;
} ast_coldef;

typedef struct ast_partspec {
  ast_kv *kv;           /* key (lower case) = value, in the order written */
  int nkv;
  const char *location; /* NULL: below the table's */
  int line;
  int col;
} ast_partspec;

typedef struct ast_ddl {
  int kind;
  int line;             /* of the statement's first word */
  int col;
  const char *db;       /* database named (NULL: the default one) */
  const char *name;     /* database or table, lower case */
  int name_line;
  int name_col;
  bool if_not_exists;
  bool if_exists;
  bool cascade;
  const char *comment;
  const char *location;
  int location_line;
  int location_col;
  const char *pattern;  /* SHOW ... LIKE 'x*|y' */
  ast_coldef *cols;
  int ncols;
  ast_coldef *pcols;    /* PARTITIONED BY */
  int npcols;
  const char *serde;    /* ROW FORMAT SERDE 'x' */
  ast_kv *serde_props;  /* WITH SERDEPROPERTIES, and ROW FORMAT DELIMITED's clauses as
                           field.delim, escape.delim, colelction.delim, mapkey.delim,
                           line.delim, serialization.null.format */
  int nserde_props;
  const char *stored_as;   /* lower case: parquet, textfile, jsonfile, ... */
  const char *input_format;
  const char *output_format;
  ast_kv *props;        /* TBLPROPERTIES / DBPROPERTIES */
  int nprops;
  ast_partspec *parts;  /* ALTER TABLE ADD / DROP PARTITION */
  int nparts;
} ast_ddl;

/* Parses one statement: a query (*copy and *ddl NULL), a COPY, CREATE TABLE
 * AS or INSERT INTO (*copy), or DDL (*ddl). */
int sql__parse_stmt(const char *sql, arena *a, ast_query **q, ast_copy **copy, ast_ddl **ddl,
                   err *e, sql_pos *pos);

#endif
