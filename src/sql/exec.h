/* sql/exec.h -- the executor's shared structures (private): the query
 * context, tables over objects, batches, rowsets, expression evaluation.
 *
 * Model (DESIGN.md §7): a plan is cut into pipelines at the nodes that
 * must see all their input before giving output (aggregate, sort, window,
 * set operation, the build side of a join, full join). A pipeline is a
 * source (a scan over morsels = byte ranges of objects, or the batches of
 * a materialized rowset) followed by streaming operators (filter, project,
 * join probe, limit); every worker thread runs its own instance of the
 * chain and pulls morsels from the shared source until none are left.
 */
#ifndef TARN_SQL_EXEC_H
#define TARN_SQL_EXEC_H

#include "formats/codec.h"
#include "formats/csv.h"
#include "formats/jsonl.h"
#include "plan.h"
#include "value.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- where objects come from ---- */

typedef int (*objsrc_list_fn)(void *arg, const char *key, uint64_t size);

typedef struct sql_objsrc {
  void *ctx;
  /* Calls fn for every object of bucket whose key starts with prefix, in
     key order. ERR_NO_SUCH_BUCKET when the bucket does not exist. */
  int (*list)(void *ctx, const char *bucket, const char *prefix, objsrc_list_fn fn, void *arg,
              err *e);
  /* Opens one object's bytes; the caller closes *fd. */
  int (*open)(void *ctx, const char *bucket, const char *key, int *fd, uint64_t *size, err *e);
  /* Writing (COPY ... TO, copy.c); NULL when the source is read-only. A new
     object's bytes go to a writer *w and become visible only when
     put_commit (which consumes w) replaces bucket/key in one step;
     put_abort drops them. put_new encrypts the bytes as bucket's default
     encryption says. */
  int (*put_new)(void *ctx, const char *bucket, void **w, err *e);
  int (*put_write)(void *w, const void *p, size_t n, err *e);
  int (*put_commit)(void *ctx, void *w, const char *bucket, const char *key, err *e);
  void (*put_abort)(void *w);
} sql_objsrc;

/* sql_run over any object source (the store, or a local folder in tests). */
int sql__run_src(const sql_objsrc *src, const char *sql, const sql_options *opt, sql_sink *sink,
                sql_stats *stats, err *e);

/* A folder as a source: bucket = subfolder, key = path below it. Free
 * with sql__objsrc_dir_free. */
void sql__objsrc_dir(sql_objsrc *out, const char *root);
void sql__objsrc_dir_free(sql_objsrc *src);
/* The store as a source. */
void sql__objsrc_store(sql_objsrc *out, store *st);
/* One given object as the only source (sql_options.object): the bucket
 * SQL__OBJECT_BUCKET holds it as key "object"; every other bucket is an
 * error naming the table to use. Read-only. */
#define SQL__OBJECT_BUCKET "(object)"
void sql__objsrc_object(sql_objsrc *out, const sql_object_source *o);

/* ---- tables ---- */

enum { FMT_CSV, FMT_JSONL, FMT_PARQUET };

typedef struct tobj {
  const char *bucket;
  const char *key;
  const char *name;      /* s3://bucket/key, for messages */
  uint64_t size;         /* stored (compressed) bytes */
  codec_kind codec;
  /* runtime, under mu */
  pthread_mutex_t mu;
  int state;             /* 0 closed, 1 open, 2 failed, 3 released */
  const char *data;      /* the bytes (mapping or decompressed buffer) */
  size_t len;
  bool mapped;
  bool has_fd;           /* mapped: fd stays open for pread (scan_win.c) */
  int fd;
  int nranges;           /* morsels over this object */
  size_t *firsts;        /* per range: offset of its first record */
  size_t *ends;          /* per range: offset where its last record ended */
  atomic_int ranges_left;
  bool sequential;       /* read as one range */
  size_t *starts;        /* per range: its first byte */
  int quote;             /* CSV quote char when quotes toggle (RFC 4180), else -1 */
  int64_t *qcount;       /* per range: quotes in it (from byte start-1), -1 until
                            counted; under mu, waited for with qcv */
  pthread_cond_t qcv;
  value *part;           /* its Hive partition values (table's npart), or NULL */
  const char **part_text; /* the same as found in the key (NULL: default partition) */
  struct pq_file *pq;    /* Parquet: the parsed footer (scan_parquet.c) */
  int *pqmap;            /* Parquet: table column -> field of pq, -1 none */
} tobj;

struct table {
  int format;
  csv_schema csv;
  jsonl_schema js;
  int ncols;
  char **names;
  fmt_type *types;
  stype *stypes;         /* Parquet: exact column types (DECIMAL(p,s)); else NULL */
  tobj *objs;
  size_t nobjs;
  bool skip_malformed;
  const char *display;   /* the path as written */
  atomic_uint_fast64_t skipped;
  int nfile;             /* columns 0..nfile-1 come from the objects' bytes */
  int npart;             /* then npart Hive partition columns (key=value folders) */
  size_t pruned;         /* objects left out by filters on partition columns */
  uint64_t prune_keys;   /* partition columns sql__table_prune() has decided on */
};

/* A table of the catalog (ddl.c builds it from the table's document):
 * where its objects are, and its declared columns. */
typedef struct table_cat_part {
  const char *location;    /* s3://bucket/prefix of the partition */
  const char **values;     /* one per partition key (NULL: the default partition) */
} table_cat_part;

typedef struct table_cat {
  const char *location;    /* unpartitioned: the table's s3://bucket/prefix */
  int ncols;               /* declared data columns (nothing is sniffed) */
  const char **names;
  const fmt_type *types;   /* how the text is read (DECIMAL and nested types as text) */
  int npkeys;              /* partition keys; their objects are the partitions' */
  char **pkey_names;
  fmt_type *pkey_types;
  const table_cat_part *parts;
  size_t nparts;
} table_cat;

/* Lists the objects of a path (a glob with '*', '**', '?', see table.c),
 * sniffs format and schema. opts are read_csv / read_json options. */
typedef struct table_opts {
  int format;            /* -1 detect */
  csv_options csv;
  bool skip_malformed;
  bool no_partitions;    /* hive_partitioning=false */
  /* Called after listing, before any object is read, with t showing only
     its partition columns (nfile = 0): drops objects with sql__table_prune()
     so that sampling never reads them. NULL: none. */
  int (*prefilter)(void *ctx, table *t);
  void *prefilter_ctx;
  /* A catalog table (path is then its display name): the prefilter drops
     partitions before their locations are listed; format must be set. */
  const table_cat *cat;
} table_opts;

int sql__table_open(qctx *q, const char *path, const table_opts *o, table **out, err *e);
/* An object's bytes for a morsel (opened on first use); release once per
 * morsel. */
int sql__tobj_acquire(qctx *q, tobj *o, err *e);

/* ---- a CSV / JSON-lines range through a reused buffer (scan_win.c) ---- */

#define SCAN_WIN_MIN (1u << 20)
#define SCAN_WIN_MAX (64u << 20)   /* a longer record: read from the mapping */
#define SCAN_WIN_SLACK (16u << 10)

typedef struct scan_win {
  char *buf;
  size_t cap;
  uint64_t from;         /* object offset of buf[0] */
  size_t len;            /* buf[0..len): JSON lines: whole records (or up to the
                            object's end); CSV: from a record start, maybe cut
                            inside a record (partial) */
  size_t size;           /* CSV: the bytes asked for */
  bool partial;          /* CSV: the object goes on after buf[len - 1] */
} scan_win;

/* Quotes (o->quote) in bytes [from, to) of o into *count; -1 on a read failure. */
int sql__win_count_quotes(scan_win *w, const tobj *o, uint64_t from, uint64_t to,
                          int64_t *count);
/* The first record start of the range beginning at start > 0, given whether
 * byte start-1 is inside quotes (CSV; -1 unknown); -1 on a read failure. */
int sql__win_first(scan_win *w, const tobj *o, bool csv, uint64_t start, int in_quote,
                   uint64_t *first);
/* Reads from the record start at into w: JSON lines, whole records; CSV,
 * SCAN_WIN_MIN bytes (no more than SCAN_WIN_SLACK past stop, where the
 * range's records end), or twice as many as the last time when grow (the
 * record at at did not fit). 0, 1 when a record is longer than
 * SCAN_WIN_MAX, -1 on a read failure. */
int sql__win_fill(scan_win *w, const tobj *o, bool csv, uint64_t at, uint64_t stop, bool grow);
void sql__win_free(scan_win *w);
void sql__tobj_release(qctx *q, tobj *o);
/* Unmaps whatever is still open (end of query, also after failures). */
void sql__table_release_all(qctx *q);
bool sql__glob_match(const char *pat, const char *s);

/* ---- Parquet tables (scan_parquet.c) ---- */

/* Reads the first object's footer: the table's columns and types. */
int sql__pqt_open(qctx *q, table *t, tobj *first, err *e);
/* Whether an object's first bytes are Parquet's magic. */
bool sql__pqt_sniff(const char *head, size_t n);
/* The row groups (objs[i], rgs[i]) that the scan p must read: every
   object's footer is read, groups pruned by the statistics of p's pushed
   filters. The arrays are malloc'd. */
int sql__pqt_cut(qctx *q, plan *p, tobj ***objs, int **rgs, size_t *n, err *e);
typedef struct pqt_cur pqt_cur;
/* A cursor over row groups for the table columns cols[0..ncols). */
pqt_cur *sql__pqt_cur_new(const int *cols, int ncols);
void sql__pqt_cur_free(qctx *q, pqt_cur *c);
/* Moves to row group rg of o (nothing read yet). */
int sql__pqt_cur_open(qctx *q, table *t, pqt_cur *c, tobj *o, int rg, err *e);
/* Page indexes: where the group's column chunks have a ColumnIndex, keeps
   only the rows of pages whose min/max may pass preds (their AND); later
   loads read only the pages holding those rows. 1 rows are left, 0 none
   (skip the group), or a failure. */
int sql__pqt_cur_pages(qctx *q, const table *t, pqt_cur *c, bexpr *const *preds, int npreds,
                       err *e);
/* Reads the columns k with which[k] (all when NULL) not read yet: one ranged
   read per column chunk. Columns not read give NULLs. */
int sql__pqt_cur_load(qctx *q, pqt_cur *c, const bool *which, err *e);
/* The dictionary of column k (cols[k]) in the current row group when its
   chunk is wholly dictionary-encoded: 1 with v (*n values, valid until the
   cursor moves), 0 when there is none, or a failure. */
int sql__pqt_cur_dict(qctx *q, pqt_cur *c, int k, vec *v, int64_t *n, err *e);
/* Back to the group's first row. */
void sql__pqt_cur_rewind(pqt_cur *c);
/* Drops the current row group. */
void sql__pqt_cur_close(qctx *q, pqt_cur *c);
/* Points vecs[k] (column cols[k]) at the next rows; 0 at the group's end. */
int sql__pqt_cur_next(pqt_cur *c, vec *vecs, const vec *nullv);
/* The dictionary codes of used column k for the last batch (one per row;
 * a NULL row has code *ncodes), when it has them (scan_parquet.c
 * invariant 7): *gen differs for every decoded dictionary; dict (may be
 * NULL) gets the dictionary's *ncodes values. NULL otherwise. */
const uint32_t *sql__pqt_cur_codes(const pqt_cur *c, int k, uint32_t *ncodes, uint64_t *gen,
                                   vec *dict);

/* Late materialization under a top-N (ORDER BY key LIMIT n over a Parquet
   scan whose rows reach the sort unchanged, through projections only): each
   scan keeps the best `keep` keys it has emitted; a row whose key is worse
   than the keep-th of them (or of another thread's, through `bar`) cannot
   enter the result. Keys are ordered as unsigned integers, smaller better. */
typedef struct scan_topn {
  int col;                /* table column of the first sort key (BIGINT-like or DOUBLE) */
  int phys;               /* PHYS_I64 / PHYS_F64 */
  bool desc, nulls_first;
  size_t keep;            /* limit + offset */
  _Atomic uint64_t bar;   /* the best bar of all scans; UINT64_MAX none */
} scan_topn;
/* Before the group's other columns are read: reads the key column and
   keeps only the group's rows that can still enter (the others' pages are
   then not decoded). feed: the scan emits every row of the group (no
   filters), so its keys count now. 1 rows are left, 0 none (skip the
   group), or a failure. */
int sql__pqt_cur_topn(qctx *q, pqt_cur *c, scan_topn *tn, bool feed, err *e);
/* Counts the keys of emitted rows (scans with filters) towards the bar. */
void sql__pqt_topn_feed(pqt_cur *c, scan_topn *tn, const vec *v, const uint16_t *sel, int n);

/* ---- COPY (copy.c) ---- */

typedef struct ast_copy ast_copy;
/* Runs COPY (query) TO 'path' (options): writes the rows to objects through
 * q->src, then gives *result, a plan of one row: the rows written. */
int sql__copy_exec(qctx *q, ast_copy *c, plan **result, err *e, sql_pos *pos);

/* ---- the query ---- */

struct qctx {
  arena *a;
  const sql_objsrc *src;
  int threads;
  uint64_t mem_limit;
  int64_t start_us;        /* monotonic */
  int64_t deadline_us;     /* 0: none */
  int64_t now_wall_us;     /* wall clock at start (current_date, now()) */
  const atomic_bool *cancel;
  atomic_bool failed;
  pthread_mutex_t mu;
  err err;                 /* the first failure */
  int err_code;
  atomic_uint_fast64_t bytes_scanned;
  atomic_uint_fast64_t objects_scanned;
  atomic_int_fast64_t mem_used;
  table **tables;          /* opened, for release */
  int ntables;
  int tables_cap;
  bool csv_no_guess;       /* (set by the caller) never guess, below */
  bool csv_speculate;      /* no CSV row reaches the caller before the scan's
                              ranges are checked: a range may guess where its
                              first record starts (cut_morsels) */
  atomic_bool csv_guessed; /* some range did: a failure may come from a wrong
                              guess (the caller runs the query again) */
  const char **seq_objs;   /* objects whose ranges did not line up, once per
                              run (retry: another way to find records) */
  int nseq;
  const char *resplit;     /* an object whose ranges did not line up */
  int subquery_depth;
  struct deferred *deferred; /* cleanups at the end (sql__exec_defer) */
  const sql_object_source *object; /* sql_options.object, or NULL */
  struct catalog *cat;      /* the table catalog (sql_options), or NULL */
  const char *database;     /* the default database */
  void (*progress)(void *ctx); /* called on the caller's thread, ~2/s */
  void *progress_ctx;
};

/* Runs the cleanups registered with sql__exec_defer. */
void sql__exec_run_deferred(qctx *q);

/* Records the first failure (later ones are dropped); returns code. */
int sql__qctx_fail(qctx *q, int code, const err *e);
/* 0, or the failure code after cancel, time limit or another thread's failure. */
int sql__qctx_check(qctx *q);
/* Accounts n bytes (negative to release); fails the query past the limit. */
int sql__qctx_mem(qctx *q, int64_t n);

/* Frees p with fn when the query ends (compiled patterns, value sets). */
void sql__exec_defer(qctx *q, void (*fn)(void *), void *p);

/* ---- batches ---- */

/* Dictionary codes of one column of a batch (a Parquet scan's): codes[r]
 * is physical row r's entry of a dictionary of ncodes values (ncodes: the
 * row is NULL); gen names that dictionary. They describe the column only
 * while its vector still points at vals and nulls: an operator that
 * rewrites the column gives it another vector, and the codes no longer
 * apply (check before use). */
typedef struct bcodes {
  const void *vals;
  const uint8_t *nulls;
  const uint32_t *codes;   /* NULL: none */
  uint32_t ncodes;
  uint64_t gen;
} bcodes;

typedef struct batch {
  int n;                 /* physical rows */
  uint16_t *sel;         /* NULL: rows 0..n-1 */
  int nsel;              /* active rows */
  int ncols;
  vec *cols;
  const bcodes *codes;   /* NULL, or nbcodes of them, one per column (bcodes) */
  int nbcodes;
} batch;

/* the codes of b's column c when they still describe it, else NULL */
static inline const bcodes *batch_codes(const batch *b, int c)
{
  if (b->codes == NULL || c < 0 || c >= b->ncols || c >= b->nbcodes)
    return NULL;
  const bcodes *k = &b->codes[c];
  const vec *v = &b->cols[c];
  if (k->codes == NULL || v->is_const || v->p != k->vals || v->nulls != k->nulls)
    return NULL;
  return k;
}

#define ROW(b, j) ((b)->sel != NULL ? (b)->sel[j] : (j))

/* Hive partitions (table.c): drops the objects whose partition values
 * fail one of the scan's predicates that read partition columns only;
 * called once before the scan is cut into morsels. */
int sql__table_prune(qctx *q, table *t, bexpr **preds, int npreds);
/* Sets b's partition columns to o's values (constant vectors). */
void sql__table_part_fill(const table *t, const tobj *o, batch *b);

/* ---- rowsets: materialized results ---- */

typedef struct rs_chunk {
  int n;
  vec *cols;
} rs_chunk;

typedef struct rowset {
  qctx *q;
  int ncols;
  uint8_t *phys;
  rs_chunk **chunks;
  size_t nchunks;
  size_t cap;
  uint64_t rows;
  struct sbank *strings;  /* copies of strings */
  size_t accounted;       /* bytes counted in q's memory */
  bool ordered;           /* rows are in a meaningful order */
} rowset;

rowset *sql__rowset_new(qctx *q, int ncols, const pcol *cols);
rowset *sql__rowset_free(rowset *r);
/* Copies the active rows of b (columns 0..ncols) into r. */
int sql__rowset_append(rowset *r, const batch *b);
/* Appends all chunks of src (moved; src becomes empty). */
void sql__rowset_move(rowset *dst, rowset *src);
/* Copies one value into the rowset's storage (strings into its bank). */
str_ref sql__rowset_str(rowset *r, str_ref s);
/* Rows as a flat index: id = chunk * COL_BATCH + row. */
static inline vec *rs_col(const rowset *r, uint32_t id, int col, int *row)
{
  *row = (int)(id % COL_BATCH);
  return &r->chunks[id / COL_BATCH]->cols[col];
}

/* ---- expression evaluation (expr.c) ---- */

typedef struct ectx {
  qctx *q;
  char *scratch;         /* bump area, reset per batch */
  size_t scratch_used;
  size_t scratch_cap;
  strheap heap;          /* strings made for this batch */
  fn_ctx fc;
} ectx;

void sql__ectx_init(ectx *x, qctx *q);
void sql__ectx_release(ectx *x);
void sql__ectx_reset(ectx *x);      /* between batches */
void *sql__ectx_alloc(ectx *x, size_t n);

/* Evaluates e over the active rows of b; *out (valid until the next
 * reset) is indexed like b's rows. Returns 0 or a failure code (already
 * recorded in q). */
int sql__expr_eval(ectx *x, const bexpr *e, const batch *b, vec *out);
/* Evaluates a predicate and narrows b's selection to the rows where it is
 * TRUE (sel storage from x). */
int sql__expr_filter(ectx *x, const bexpr *e, batch *b);
/* Executes the subqueries in e (scalar, EXISTS, IN) and compiles constant
 * patterns; called once per expression before execution. */
int sql__expr_prepare(qctx *q, bexpr *e);
/* The value at row r of v (index 0 when constant). */
static inline value vec_get(const vec *v, int r)
{
  value out;
  out.s.len = 0;
  int i = v->is_const ? 0 : r;
  out.null = v->nulls != NULL && v->nulls[i];
  if (v->phys == PHYS_STR)
    out.s = v->s[i];
  else
    out.i = v->i[i];
  return out;
}

static inline bool vec_is_null(const vec *v, int r)
{
  return v->nulls != NULL && v->nulls[v->is_const ? 0 : r];
}

/* hashing and comparing values */
uint64_t sql__hash_value(int phys, const vec *v, int r);
uint64_t sql__hash_bytes(const void *p, size_t n);
int sql__value_cmp(int phys, value a, value b);   /* non-NULL values */
bool sql__value_eq(int phys, value a, value b);

/* ---- execution (exec.c) ---- */

/* Runs plan p to completion into a rowset. */
int sql__exec_materialize(qctx *q, plan *p, rowset **out);
/* Runs plan p and hands its batches, in order, to fn on the calling thread. */
typedef int (*batch_fn)(void *arg, const batch *b, err *e);
int sql__exec_stream(qctx *q, plan *p, batch_fn fn, void *arg);

/* the breakers (agg.c, sort.c) */
int sql__exec_agg(qctx *q, plan *p, rowset **out);
int sql__exec_sort(qctx *q, plan *p, rowset **out);
int sql__exec_window(qctx *q, plan *p, rowset **out);
int sql__exec_setop(qctx *q, plan *p, rowset **out);

/* Runs the pipeline of p on all threads; each thread calls sink(state, b)
 * for every batch; init/fini make and finish per-thread states. */
typedef struct pipe_sink {
  void *(*init)(void *arg, int thread);
  int (*consume)(void *state, batch *b);
  int (*finish)(void *state);   /* on the thread, after its last batch */
  void *arg;
} pipe_sink;
int sql__exec_pipeline(qctx *q, plan *p, const pipe_sink *s, int max_threads);

/* aggregate states, for window aggregates (agg.c) */
int sql__agg_state_size(void);
int sql__agg_state_add(qctx *q, const aggcall *a, void *state, value v);
int sql__agg_state_final(qctx *q, const aggcall *a, const void *state, value *out);
void sql__agg_state_clear(const aggcall *a, void *state);

/* batch helpers */
void sql__batch_alloc_cols(ectx *x, batch *b, int ncols, const pcol *cols);
int sql__cmp_rows(const rowset *r, const sortkey *keys, int nkeys, uint32_t a, uint32_t b);

#endif
