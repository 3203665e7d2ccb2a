/* sql/plan.h -- bound expressions and the query plan (private).
 *
 * The binder (bind.c) turns the syntax tree into a tree of plan nodes whose
 * expressions are typed and refer to the columns of their input by index.
 * The executor (exec.c) runs that tree. A node's output is a list of
 * columns (pcol); expressions above it refer to them by position.
 *
 * Column layout per node:
 *   P_SCAN     the table's columns (only `used` ones are read)
 *   P_VALUES   its columns
 *   P_FILTER   the child's
 *   P_PROJECT  exprs
 *   P_JOIN     left's then right's (SEMI/ANTI: left's only)
 *   P_AGG      groups then aggregates
 *   P_SORT     the child's
 *   P_LIMIT    the child's
 *   P_WINDOW   the child's then one per window call
 *   P_SETOP    left's (both sides have the same types)
 */
#ifndef TARN_SQL_PLAN_H
#define TARN_SQL_PLAN_H

#include "ast.h"
#include "formats/column.h"

typedef struct qctx qctx;
typedef struct table table;
typedef struct plan plan;

typedef struct value {
  bool null;
  union {
    int64_t i;
    double f;
    str_ref s;
  };
} value;

typedef struct stype {
  sql_type t;
  int prec;
  int scale;
} stype;

int sql__phys(sql_type t); /* PHYS_* */

enum bx_kind {
  BX_COL,        /* col */
  BX_CONST,      /* v */
  BX_CAST,       /* args[0]; try_cast */
  BX_ARITH,      /* op '+','-','*','/','%'; args[0..1] */
  BX_NEG,        /* args[0] */
  BX_CMP,        /* op CMP_*; args[0..1] */
  BX_AND,        /* args[0..n) */
  BX_OR,
  BX_NOT,
  BX_ISNULL,     /* args[0]; neg */
  BX_DISTINCT,   /* args[0] IS DISTINCT FROM args[1]; neg */
  BX_IN,         /* args[0] IN args[1..n) ; neg; set (when all constants) */
  BX_IN_SET,     /* args[0] IN (sub); neg; set after prepare */
  BX_LIKE,       /* args[0] LIKE args[1] [escape args[2]]; neg, ilike; like (constant pattern) */
  BX_CASE,       /* args: when, then, ..., [else] (has_else) */
  BX_FUNC,       /* fn, args */
  BX_SUBQ,       /* sub: scalar subquery, a constant after prepare */
  BX_EXISTS,     /* sub; neg: a constant after prepare */
  BX_AGG,        /* binder only: aggregate call agg */
  BX_WIN,        /* binder only: window call win */
  BX_CONCAT,     /* args[0..n) */
  BX_COALESCE,   /* args[0..n) */
};

enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

typedef struct bexpr bexpr;
typedef struct func_def func_def;
typedef struct aggcall aggcall;
typedef struct wincall wincall;

struct bexpr {
  int kind;
  stype type;
  int line;
  int col;
  int colno;            /* BX_COL */
  value v;              /* BX_CONST */
  int op;
  bool neg;
  bool try_cast;
  bool ilike;
  bool has_else;
  bexpr **args;
  int nargs;
  const func_def *fn;   /* BX_FUNC */
  void *fstate;         /* BX_FUNC: compiled constant argument (regex ...) */
  void *like;           /* BX_LIKE: compiled pattern */
  void *set;            /* BX_IN / BX_IN_SET: hash set of the values */
  plan *sub;            /* BX_SUBQ, BX_EXISTS, BX_IN_SET */
  bool correlated;      /* sub refers to the outer query (not supported) */
  aggcall *agg;         /* BX_AGG */
  wincall *win;         /* BX_WIN */
  const char *name;     /* for result column names */
};

enum agg_fn {
  AGG_COUNT_STAR, AGG_COUNT, AGG_SUM, AGG_AVG, AGG_MIN, AGG_MAX, AGG_STDDEV_SAMP,
  AGG_STDDEV_POP, AGG_VAR_SAMP, AGG_VAR_POP, AGG_BOOL_AND, AGG_BOOL_OR, AGG_ARBITRARY,
  AGG_APPROX_DISTINCT, AGG_COUNT_IF, AGG_MAX_BY, AGG_MIN_BY,
};

struct aggcall {
  int fn;
  bool distinct;
  bexpr *arg;           /* NULL for count(*) */
  bexpr *arg2;          /* max_by / min_by: the ordering value */
  bexpr *filter;        /* FILTER (WHERE ...) or NULL */
  stype type;           /* result */
};

enum win_fn {
  WIN_ROW_NUMBER, WIN_RANK, WIN_DENSE_RANK, WIN_PERCENT_RANK, WIN_CUME_DIST, WIN_NTILE,
  WIN_LAG, WIN_LEAD, WIN_FIRST_VALUE, WIN_LAST_VALUE, WIN_NTH_VALUE, WIN_AGG,
};

typedef struct sortkey {
  int col;
  bool desc;
  bool nulls_first;
} sortkey;

struct wincall {
  int fn;
  aggcall agg;          /* WIN_AGG; its arg is a column reference */
  int arg;              /* column of the argument, -1 none */
  int64_t offset;       /* lag/lead/ntile/nth_value */
  int deflt;            /* column of lag/lead's default, -1 none */
  int *part;            /* partition columns */
  int npart;
  sortkey *order;
  int norder;
  bool has_frame;
  bool rows;
  int start_kind;
  int64_t start_n;
  int end_kind;
  int64_t end_n;
  stype type;
};

typedef struct pcol {
  const char *name;
  stype type;
} pcol;

enum plan_kind { P_SCAN, P_VALUES, P_FILTER, P_PROJECT, P_JOIN, P_AGG, P_SORT, P_LIMIT,
                 P_WINDOW, P_SETOP };

struct plan {
  int kind;
  int ncols;
  pcol *cols;
  plan *child;
  plan *right;
  /* P_SCAN */
  table *table;
  bool *used;
  /* P_FILTER, and filters pushed into P_SCAN: conjuncts */
  bexpr **preds;
  int npreds;
  /* P_VALUES */
  value **rows;
  int nrows;
  /* P_PROJECT */
  bexpr **exprs;
  /* P_JOIN */
  int join;             /* JN_INNER, JN_LEFT, JN_FULL, JN_CROSS, JN_SEMI, JN_ANTI */
  bexpr **lkeys;        /* over the left input */
  bexpr **rkeys;        /* over the right input */
  int nkeys;
  bexpr *cond;          /* residual, over the joined columns; NULL none */
  bool null_aware;      /* ANTI for NOT IN: a NULL on the right empties the result */
  bool *need;           /* which output columns anything reads (set by pruning) */
  /* P_AGG */
  bexpr **groups;
  int ngroups;
  aggcall *aggs;
  int naggs;
  /* P_SORT */
  sortkey *keys;
  int nkeys_sort;
  /* P_SORT (top-N when limit >= 0) and P_LIMIT */
  int64_t limit;
  int64_t offset;
  /* P_WINDOW */
  wincall *wins;
  int nwins;
  /* P_SETOP */
  int setop;            /* Q_UNION, Q_INTERSECT, Q_EXCEPT */
  bool all;
  /* P_SCAN of Parquet under a top-N that reads its rows unchanged: the
     first sort key, so that the scan decodes the other columns only for
     rows that can still enter (sort.c sets it for the run; exec.h) */
  struct scan_topn *topn;
  /* executor state of this node (exec.c), NULL before execution */
  struct node_rt *rt;
};

/* Binds a parsed statement into a plan. Tables are opened (listed and
 * sniffed) through q. */
int sql__bind(qctx *q, ast_query *ast, plan **out, err *e, sql_pos *pos);

/* ---- scalar functions (func.c) ---- */

typedef struct fn_ctx fn_ctx;

/* Resolves argument types (may wrap args in casts through the binder's
 * helper) and the result type. Returns 0 or an error at the call. */
typedef int (*fn_bind_fn)(qctx *q, bexpr *call, err *e, sql_pos *pos);
/* Computes one row; args are non-NULL unless the function takes NULLs.
 * Returns false for a NULL result. Strings go to the context's heap. */
typedef bool (*fn_row_fn)(fn_ctx *c, const bexpr *call, const value *args, value *out);

struct func_def {
  const char *name;
  int min_args;
  int max_args;
  fn_bind_fn bind;
  fn_row_fn row;
  bool takes_nulls;      /* row() is called with NULL arguments too */
};

const func_def *sql__func_find(const char *name);
/* The registered name nearest to name (for "did you mean"), or NULL. */
const char *sql__func_nearest(const char *name);
bool sql__func_is_aggregate(const char *name);
bool sql__func_is_window(const char *name);

/* errors from row functions (e.g. a bad regexp) */
struct fn_ctx {
  strheap *heap;
  qctx *q;
  int64_t now_us;        /* the query's start time */
  void *scratch;         /* per-thread scratch (PCRE2 match data) */
  struct fn_block *big;  /* values of FN_BIG_VALUE bytes or more (malloc'd, so a
                            failure is a query error); freed by sql__fn_ctx_reset */
  uint64_t big_bytes;    /* their total */
  int64_t charged;       /* bytes of this batch's values charged to q's budget */
};

/* Room for a built value of n bytes (plus a terminator) that lives until
 * sql__fn_ctx_reset: checked against SQL_VALUE_MAX, then against the query's
 * memory budget. NULL after failing the query with a message naming fname
 * ("rpad: result of 40000000 bytes exceeds the 32 MiB value limit"). */
char *sql__fn_out_alloc(fn_ctx *c, const char *fname, uint64_t n);
/* Ends a batch: frees the large values and gives their charge back. */
void sql__fn_ctx_reset(fn_ctx *c);

/* Binder helpers the function binders use. */
bexpr *sql__bind_cast(qctx *q, bexpr *x, stype to);
bool sql__stype_numeric(sql_type t);
bool sql__stype_integer(sql_type t);
bool sql__stype_is_str(sql_type t);
/* Coerces an argument to `to` when implicitly allowed (numeric widening,
 * string literals to dates, NULL to anything); otherwise an error naming
 * the function. */
int sql__bind_coerce(qctx *q, bexpr **x, stype to, const char *what, err *e, sql_pos *pos);

stype sql__st(sql_type t);
const char *sql__stype_name(stype t, char *out, size_t n);
int sql__levenshtein(const char *a, const char *b);

#endif
