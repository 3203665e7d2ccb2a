/* sql/exec.c -- the executor: pipelines of streaming operators over
 * morsels, run on all cores, with breakers materialized in between.
 *
 * How a plan runs (see exec.h for the model):
 *   1. prepare(node): every breaker under the streaming part of node is
 *      materialized first (sql__exec_agg, sql__exec_sort, ...), every hash join
 *      builds its table, every scan cuts its objects into morsels.
 *   2. sql__exec_pipeline: each worker thread builds its own chain of operators
 *      (op_build) and pulls batches until the shared sources run dry,
 *      handing each batch to the sink (collect, aggregate, sort, result).
 *   3. After the workers join, the scans check their ranges lined up
 *      (csv.h) and the first failure of any thread is the query's.
 *
 * Invariants:
 *   (1) A batch returned by op->next stays valid until the next call on
 *       that op; operators reset their scratch at the start of next().
 *   (2) A pipeline whose source is an ordered rowset runs on one thread,
 *       so the order reaches the sink.
 *   (3) Every loop over batches checks sql__qctx_check(), so cancellation, the
 *       time limit and another thread's failure stop all threads within
 *       one batch.
 *
 * Start reading at sql__exec_pipeline().
 */
#include "exec.h"
#include "base/mem.h"
#include "base/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- query context ---- */

int sql__qctx_fail(qctx *q, int code, const err *e)
{
  pthread_mutex_lock(&q->mu);
  if (!atomic_load(&q->failed)) {
    q->err_code = code;
    if (e != NULL)
      q->err = *e;
    else
      err_set(&q->err, code, "query failed");
    atomic_store(&q->failed, true);
  }
  pthread_mutex_unlock(&q->mu);
  return code;
}

int sql__qctx_check(qctx *q)
{
  if (atomic_load(&q->failed))
    return q->err_code ? q->err_code : ERR_INTERNAL;
  if (q->cancel != NULL && atomic_load(q->cancel)) {
    err e;
    err_set(&e, ERR_REQUEST_TIMEOUT, "query cancelled");
    return sql__qctx_fail(q, ERR_REQUEST_TIMEOUT, &e);
  }
  if (q->deadline_us > 0 && time_mono_us() > q->deadline_us) {
    err e;
    err_set(&e, ERR_REQUEST_TIMEOUT, "query ran past its time limit of %lld ms",
            (long long)((q->deadline_us - q->start_us) / 1000));
    return sql__qctx_fail(q, ERR_REQUEST_TIMEOUT, &e);
  }
  return 0;
}

int sql__qctx_mem(qctx *q, int64_t n)
{
  int64_t now = atomic_fetch_add(&q->mem_used, n) + n;
  if (n > 0 && q->mem_limit > 0 && now > (int64_t)q->mem_limit) {
    err e;
    err_set(&e, ERR_ENTITY_TOO_LARGE, "query exceeded its memory limit of %llu MB",
            (unsigned long long)(q->mem_limit >> 20));
    return sql__qctx_fail(q, ERR_ENTITY_TOO_LARGE, &e);
  }
  return 0;
}

typedef struct deferred {
  struct deferred *next;
  void (*fn)(void *);
  void *p;
} deferred;

void sql__exec_defer(qctx *q, void (*fn)(void *), void *p)
{
  deferred *d = xmalloc(sizeof *d);
  d->fn = fn;
  d->p = p;
  pthread_mutex_lock(&q->mu);
  d->next = q->deferred;
  q->deferred = d;
  pthread_mutex_unlock(&q->mu);
}

void sql__exec_run_deferred(qctx *q)
{
  deferred *d = q->deferred;
  q->deferred = NULL;
  while (d != NULL) {
    deferred *n = d->next;
    d->fn(d->p);
    free(d);
    d = n;
  }
}

static void defer_sbank(void *p)
{
  sql__sbank_free(p);
}

static void defer_rowset(void *p)
{
  sql__rowset_free(p);
}

static void defer_valset(void *p)
{
  sql__valset_free(p);
}

/* ---- rowsets ---- */

rowset *sql__rowset_new(qctx *q, int ncols, const pcol *cols)
{
  rowset *r = xcalloc(1, sizeof *r);
  r->q = q;
  r->ncols = ncols;
  r->phys = xcalloc((size_t)(ncols > 0 ? ncols : 1), 1);
  for (int i = 0; i < ncols; i++)
    r->phys[i] = (uint8_t)sql__phys(cols[i].type.t);
  return r;
}

static void chunk_free(rs_chunk *c, int ncols)
{
  if (c == NULL)
    return;
  for (int i = 0; i < ncols; i++) {
    free(c->cols[i].p);
    free(c->cols[i].nulls);
  }
  free(c->cols);
  free(c);
}

rowset *sql__rowset_free(rowset *r)
{
  if (r == NULL)
    return NULL;
  for (size_t i = 0; i < r->nchunks; i++)
    chunk_free(r->chunks[i], r->ncols);
  free(r->chunks);
  free(r->phys);
  sql__sbank_free(r->strings);
  if (r->accounted)
    sql__qctx_mem(r->q, -(int64_t)r->accounted);
  free(r);
  return NULL;
}

static size_t chunk_bytes(const rowset *r)
{
  size_t b = sizeof(rs_chunk) + sizeof(vec) * (size_t)r->ncols;
  for (int i = 0; i < r->ncols; i++)
    b += (size_t)COL_BATCH * (r->phys[i] == PHYS_STR ? sizeof(str_ref) : 8) + COL_BATCH;
  return b;
}

static rs_chunk *chunk_new(rowset *r)
{
  rs_chunk *c = xcalloc(1, sizeof *c);
  c->cols = xcalloc((size_t)(r->ncols > 0 ? r->ncols : 1), sizeof(vec));
  for (int i = 0; i < r->ncols; i++) {
    c->cols[i].phys = r->phys[i];
    c->cols[i].p = xmalloc((size_t)COL_BATCH * (r->phys[i] == PHYS_STR ? sizeof(str_ref) : 8));
    c->cols[i].nulls = xcalloc(COL_BATCH, 1);
  }
  return c;
}

static int rowset_account(rowset *r, size_t n)
{
  r->accounted += n;
  return sql__qctx_mem(r->q, (int64_t)n);
}

str_ref sql__rowset_str(rowset *r, str_ref s)
{
  if (s.len == 0)
    return (str_ref){"", 0};
  if (r->strings == NULL)
    r->strings = sql__sbank_new();
  size_t before = sql__sbank_bytes(r->strings);
  s.ptr = sql__sbank_copy(r->strings, s.ptr, s.len);
  size_t after = sql__sbank_bytes(r->strings);
  if (after != before)
    rowset_account(r, after - before);
  return s;
}

static rs_chunk *rowset_tail(rowset *r)
{
  if (r->nchunks > 0 && r->chunks[r->nchunks - 1]->n < COL_BATCH)
    return r->chunks[r->nchunks - 1];
  if (r->nchunks == r->cap) {
    size_t nc = r->cap ? r->cap * 2 : 16;
    rs_chunk **n = xrealloc(r->chunks, sizeof(rs_chunk *) * nc);
    r->chunks = n;
    r->cap = nc;
  }
  rs_chunk *c = chunk_new(r);
  r->chunks[r->nchunks++] = c;
  rowset_account(r, chunk_bytes(r));
  return c;
}

/* Appends rows 0..n of cols as a chunk of its own (aligned chunking). */
static int rowset_add_chunk(rowset *r, const vec *cols, int n)
{
  if (r->nchunks == r->cap) {
    size_t nc = r->cap ? r->cap * 2 : 16;
    rs_chunk **nn = xrealloc(r->chunks, sizeof(rs_chunk *) * nc);
    r->chunks = nn;
    r->cap = nc;
  }
  rs_chunk *c = chunk_new(r);
  r->chunks[r->nchunks++] = c;
  rowset_account(r, chunk_bytes(r));
  for (int k = 0; k < r->ncols; k++) {
    const vec *src = &cols[k];
    vec *dst = &c->cols[k];
    for (int i = 0; i < n; i++) {
      int si = src->is_const ? 0 : i;
      bool isnull = src->nulls != NULL && src->nulls[si];
      dst->nulls[i] = isnull;
      if (r->phys[k] == PHYS_STR)
        dst->s[i] = isnull ? (str_ref){"", 0} : sql__rowset_str(r, src->s[si]);
      else
        dst->i[i] = isnull ? 0 : src->i[si];
    }
  }
  c->n = n;
  r->rows += (uint64_t)n;
  return sql__qctx_check(r->q);
}

int sql__rowset_append(rowset *r, const batch *b)
{
  int j = 0;
  while (j < b->nsel) {
    rs_chunk *c = rowset_tail(r);
    int room = COL_BATCH - c->n;
    int take = b->nsel - j < room ? b->nsel - j : room;
    for (int k = 0; k < r->ncols; k++) {
      const vec *src = &b->cols[k];
      vec *dst = &c->cols[k];
      int ph = r->phys[k];
      for (int t = 0; t < take; t++) {
        int row = ROW(b, j + t);
        int si = src->is_const ? 0 : row;
        int di = c->n + t;
        bool isnull = src->nulls != NULL && src->nulls[si];
        dst->nulls[di] = isnull;
        if (ph == PHYS_STR) {
          dst->s[di] = isnull ? (str_ref){"", 0} : sql__rowset_str(r, src->s[si]);
        } else {
          dst->i[di] = isnull ? 0 : src->i[si];
        }
      }
    }
    c->n += take;
    r->rows += (uint64_t)take;
    j += take;
  }
  return sql__qctx_check(r->q);
}

void sql__rowset_move(rowset *dst, rowset *src)
{
  for (size_t i = 0; i < src->nchunks; i++) {
    if (dst->nchunks == dst->cap) {
      size_t nc = dst->cap ? dst->cap * 2 : 16;
      rs_chunk **n = xrealloc(dst->chunks, sizeof(rs_chunk *) * nc);
      dst->chunks = n;
      dst->cap = nc;
    }
    dst->chunks[dst->nchunks++] = src->chunks[i];
  }
  dst->rows += src->rows;
  src->nchunks = 0;
  src->rows = 0;
  if (src->strings != NULL) {
    /* keep the strings alive: chain the bank into dst's owner list */
    sql__exec_defer(dst->q, defer_sbank, src->strings);
    src->strings = NULL;
  }
  dst->accounted += src->accounted;
  src->accounted = 0;
}

/* A batch over one chunk of a rowset (no copy). */
static void chunk_batch(const rowset *r, size_t ci, batch *b)
{
  rs_chunk *c = r->chunks[ci];
  b->n = c->n;
  b->sel = NULL;
  b->nsel = c->n;
  b->ncols = r->ncols;
  b->cols = c->cols;
  b->codes = NULL;
}

/* ---- runtime state per plan node ---- */

typedef struct morsel {
  tobj *obj;
  int range;
  size_t start;
  size_t stop;
} morsel;

typedef struct join_rt {
  rowset *build;          /* right side rows */
  rowset *keys;           /* right key values, aligned with build */
  uint32_t *heads;        /* hash -> first row id + 1 */
  uint32_t *next;         /* row id -> next row id + 1 */
  uint64_t *hashes;       /* per row id */
  size_t mask;
  uint8_t *matched;       /* RIGHT/FULL: per row id */
  size_t nids;            /* chunk count * COL_BATCH */
} join_rt;

typedef struct node_rt {
  bool prepared;
  rowset *rs;             /* breakers: materialized output */
  atomic_size_t next_chunk;
  morsel *morsels;        /* scans */
  size_t nmorsels;
  atomic_size_t next_morsel;
  join_rt *join;
  atomic_int_fast64_t seen; /* LIMIT: rows reserved so far */
  atomic_bool done;         /* LIMIT reached: sources may stop */
} node_rt;

/* created while preparing (one thread), from the query's arena */
static node_rt *rt_of(qctx *q, plan *p)
{
  if (p->rt == NULL)
    p->rt = arena_alloc(q->a, sizeof(node_rt));
  return p->rt;
}

static bool is_breaker(const plan *p)
{
  switch (p->kind) {
  case P_AGG:
  case P_SORT:
  case P_WINDOW:
  case P_SETOP:
  case P_VALUES:
    return true;
  case P_JOIN:
    return p->join == JN_RIGHT || p->join == JN_FULL;
  default:
    return false;
  }
}

/* ---- operators ---- */

typedef struct op op;
struct op {
  int (*next)(op *o, batch **out);   /* 1 batch, 0 end, < 0 failure */
  void (*close)(op *o);
  qctx *q;
  plan *p;
  op *child;
  ectx x;
  batch out;
  node_rt *stop;          /* a LIMIT above: stop early when it is done */
};

static void op_close(op *o)
{
  if (o == NULL)
    return;
  if (o->child != NULL)
    op_close(o->child);
  if (o->close != NULL)
    o->close(o);
  sql__ectx_release(&o->x);
  free(o);
}

static op *op_alloc(qctx *q, plan *p, size_t size)
{
  op *o = xcalloc(1, size);
  o->q = q;
  o->p = p;
  sql__ectx_init(&o->x, q);
  return o;
}

/* -- rowset source -- */

typedef struct rs_op {
  op base;
  rowset *rs;
  node_rt *rt;
} rs_op;

static int rs_next(op *o, batch **out)
{
  rs_op *r = (rs_op *)o;
  int rc = sql__qctx_check(o->q);
  if (rc < 0)
    return rc;
  if (o->stop != NULL && atomic_load(&o->stop->done))
    return 0;
  for (;;) {
    size_t i = atomic_fetch_add(&r->rt->next_chunk, 1);
    if (i >= r->rs->nchunks)
      return 0;
    if (r->rs->chunks[i]->n == 0)
      continue;
    chunk_batch(r->rs, i, &o->out);
    *out = &o->out;
    return 1;
  }
}

/* -- scan -- */

typedef struct scan_op {
  op base;
  node_rt *rt;
  table *t;
  int *cols;              /* used columns, ascending */
  int ncols;
  bool *is_filter_col;    /* per used column: read before the filter */
  fspan **spans;
  const char **rec;
  vec *vecs;              /* per table column */
  uint8_t **nullbufs;
  uint8_t *bad;
  strheap heap;
  morsel *m;              /* current morsel */
  csv_cursor cc;
  jsonl_cursor jc;
  int ncols_all;
  pqt_cur *pc;            /* Parquet: the row group being read */
  vec *pvecs;             /* Parquet: per used column */
  bcodes *bc;             /* Parquet: per table column, the batch's dictionary codes */
  int *pcol;              /* Parquet: per pushed filter, the one column it reads (-1) */
  uint8_t **pass;         /* per pushed filter: its result per dictionary entry */
  uint64_t *pass_gen;     /* (and NULL last) for the dictionary of codes gen */
  /* CSV / JSON lines: the cursor reads cur_base[i] = byte cur_off + i of the
     object: the mapping (cur_off 0), or the window win (scan_win.c) */
  scan_win win;
  const char *cur_base;
  uint64_t cur_off;
  bool win_on;            /* the cursor is on win now */
  bool win_started;       /* the morsel began on win: its first record is win_first */
  uint64_t win_first;
  uint64_t win_skipped;   /* CSV: rows skipped in the morsel's earlier windows */
} scan_op;

static uint8_t nv_nulls[COL_BATCH];
static int64_t nv_zeros[COL_BATCH * 2];
static vec nv_vec;
static pthread_once_t nv_once = PTHREAD_ONCE_INIT;

static void null_vec_init(void)
{
  memset(nv_nulls, 1, sizeof nv_nulls);
  nv_vec.phys = PHYS_I64;
  nv_vec.nulls = nv_nulls;
  nv_vec.p = nv_zeros;
}

/* a vector of COL_BATCH NULLs (for columns nobody reads) */
static const vec *null_vec(void)
{
  pthread_once(&nv_once, null_vec_init);
  return &nv_vec;
}

static void scan_close(op *o)
{
  scan_op *s = (scan_op *)o;
  for (int k = 0; k < s->ncols; k++) {
    free(s->spans[k]);
    free(s->vecs[s->cols[k]].p);
    free(s->nullbufs[k]);
  }
  free(s->spans);
  free(s->nullbufs);
  free(s->vecs);
  free(s->cols);
  free(s->is_filter_col);
  free(s->rec);
  free(s->bad);
  strheap_release(&s->heap);
  sql__pqt_cur_free(o->q, s->pc);
  free(s->pvecs);
  free(s->bc);
  free(s->pcol);
  if (s->pass != NULL)
    for (int k = 0; k < o->p->npreds; k++)
      free(s->pass[k]);
  free(s->pass);
  free(s->pass_gen);
  if (s->m != NULL)
    sql__tobj_release(o->q, s->m->obj);
  jsonl_cursor_release(&s->jc);
  sql__win_free(&s->win);
}

static int scan_finish_morsel(scan_op *s)
{
  morsel *m = s->m;
  size_t end = s->t->format == FMT_CSV ? (size_t)(s->cc.pos - s->cur_base)
                                       : (size_t)(s->jc.pos - s->cur_base);
  end += s->cur_off;
  size_t first = s->t->format == FMT_CSV ? (size_t)(s->cc.first - s->cc.base)
                                         : (size_t)(s->jc.first - s->jc.base);
  if (s->win_started)
    first = s->win_first;
  m->obj->firsts[m->range] = first;
  m->obj->ends[m->range] = end;
  uint64_t skipped = s->t->format == FMT_CSV ? s->cc.skipped + s->win_skipped : s->jc.skipped;
  if (skipped)
    atomic_fetch_add(&s->t->skipped, skipped);
  if (m->obj->mapped && !s->win_on && end > first) {
    /* drop the pages of this range from the process (they stay in the page
       cache): a scan's memory stays a few morsels, not the object */
    uintptr_t pg = 4096;
    uintptr_t a = ((uintptr_t)m->obj->data + first + pg - 1) & ~(pg - 1);
    uintptr_t b = ((uintptr_t)m->obj->data + end) & ~(pg - 1);
    if (b > a)
      madvise((void *)a, b - a, MADV_DONTNEED);
  }
  sql__tobj_release(s->base.q, m->obj);
  s->m = NULL;
  if (s->t->format == FMT_JSONL)
    jsonl_cursor_release(&s->jc);
  return 0;
}

/* a malformed row in a range that may have started inside a quoted field */
static int scan_malformed(scan_op *s, err *e)
{
  morsel *m = s->m;
  if (s->t->format == FMT_CSV && m->range > 0 && m->obj->nranges > 1 &&
      memchr(m->obj->data, s->t->csv.quote, m->obj->len) != NULL) {
    pthread_mutex_lock(&s->base.q->mu);
    if (s->base.q->resplit == NULL)
      s->base.q->resplit = m->obj->name;
    pthread_mutex_unlock(&s->base.q->mu);
  }
  return sql__qctx_fail(s->base.q, e->code, e);
}

static int scan_bad_value(scan_op *s, int col, int row)
{
  fspan *sp = &s->spans[col][row];
  int tc = s->cols[col];
  const char *base = s->m->obj->data;
  size_t off = s->cur_off + (size_t)(s->rec[row] - s->cur_base);
  size_t line = fmt_count_lines(base, off) + 1;
  err e;
  err_set(&e, ERR_INVALID,
          "cannot read '%.*s' as %s in '%s' line %zu column '%s' (the type was guessed from a "
          "sample: give it with read_csv(..., columns='...'), or skip such rows with "
          "ignore_errors=true)",
          (int)(sp->n > 60 ? 60 : sp->n), sp->p, fmt_type_name(s->t->types[tc]),
          s->m->obj->name, line, s->t->names[tc]);
  if (s->t->format == FMT_CSV && s->m->range > 0 && s->m->obj->nranges > 1) {
    pthread_mutex_lock(&s->base.q->mu);
    if (s->base.q->resplit == NULL)
      s->base.q->resplit = s->m->obj->name;
    pthread_mutex_unlock(&s->base.q->mu);
  }
  return sql__qctx_fail(s->base.q, ERR_INVALID, &e);
}

static int scan_convert(scan_op *s, int k, const uint16_t *sel, int nsel, batch *b)
{
  table *t = s->t;
  int tc = s->cols[k];
  vec *v = &s->vecs[tc];
  int nbad = fmt_convert_sniffed(s->spans[k], sel, nsel, t->types[tc], t->csv.quote,
                                 t->csv.escape, t->csv.nullstr, !t->csv.declared, v,
                                 s->nullbufs[k], &s->heap, s->bad);
  b->cols[tc] = *v;
  if (nbad > 0 && !t->skip_malformed) {
    for (int j = 0; j < nsel; j++) {
      int r = sel != NULL ? sel[j] : j;
      if (s->bad[r])
        return scan_bad_value(s, k, r);
    }
  }
  return nbad;
}

/* Whether byte start-1 of a CSV range lies inside quotes: every range
 * counts the quotes of its own bytes (in parallel), then adds up those of
 * the ranges before it, which were handed out earlier and only count, so
 * the wait is short and cannot deadlock. -1 when unknown (no parity). */
static int range_in_quote(qctx *q, morsel *m, scan_win *w)
{
  tobj *o = m->obj;
  if (o->qcount == NULL)
    return -1;
  int r = m->range;
  size_t from = r == 0 ? 0 : o->starts[r] - 1;
  size_t to = r + 1 < o->nranges ? o->starts[r + 1] - 1 : o->len;
  if (from > o->len)
    from = o->len;
  if (to > o->len)
    to = o->len;
  int64_t mine = 0;
  if (to > from && (!o->has_fd || sql__win_count_quotes(w, o, from, to, &mine) < 0))
    mine = (int64_t)csv_count_quotes(o->data + from, to - from, (char)o->quote);
  pthread_mutex_lock(&o->mu);
  o->qcount[r] = mine;
  pthread_cond_broadcast(&o->qcv);
  int64_t before = 0;
  for (int k = 0; k < r; k++) {
    while (o->qcount[k] < 0 && !atomic_load(&q->failed)) {
      struct timespec ts = time_deadline(CLOCK_REALTIME, 10);
      pthread_cond_timedwait(&o->qcv, &o->mu, &ts);
    }
    before += o->qcount[k];
  }
  pthread_mutex_unlock(&o->mu);
  return r == 0 ? 0 : (int)(before & 1);
}

/* Parquet: with pushed filters and other columns, reads the filter columns
   of the row group and runs the filters over all of it: 0 when no row
   passes (the other columns are never read), 1 otherwise, or a failure */
/* the one table column that e reads, -1 for none or several */
static int single_column(const bexpr *e)
{
  const bexpr *stack[256];
  int sp = 0, col = -1;
  stack[sp++] = e;
  while (sp > 0) {
    const bexpr *x = stack[--sp];
    if (x->kind == BX_SUBQ || x->kind == BX_EXISTS || x->kind == BX_IN_SET)
      return -1;
    if (x->kind == BX_COL) {
      if (col >= 0 && col != x->colno)
        return -1;
      col = x->colno;
    }
    for (int a = 0; a < x->nargs; a++) {
      if (sp == 255)
        return -1;
      stack[sp++] = x->args[a];
    }
  }
  return col;
}

/* runs pushed filter pk over the dn values of a dictionary (dv) of column
   col, COL_BATCH at a time, and then over one NULL: with pass, each one's
   result (pass[dn] the NULL's); without, stops at the first that passes.
   1 some passes, 0 none, or a failure */
static int dict_filter(scan_op *s, int pk, int col, const vec *dv, int64_t dn, uint8_t *pass)
{
  op *o = &s->base;
  batch *b = &o->out;
  b->ncols = s->ncols_all;
  b->codes = NULL;
  for (int j = 0; j < s->ncols_all; j++)
    b->cols[j] = s->vecs[j];
  bool any = false;
  for (int64_t off = 0; off <= dn; off += COL_BATCH) {
    int64_t n = dn - off > COL_BATCH ? COL_BATCH : dn - off;
    vec v = *dv;
    if (n == 0) {   /* off == dn: the NULL */
      v = *null_vec();
      v.phys = dv->phys;
      n = 1;
    } else {
      v.p = (char *)dv->p + off * (dv->phys == PHYS_STR ? (int64_t)sizeof(str_ref) : 8);
    }
    sql__ectx_reset(&o->x);
    b->cols[col] = v;
    b->n = (int)n;
    b->sel = NULL;
    b->nsel = (int)n;
    int rc = sql__expr_filter(&o->x, o->p->preds[pk], b);
    if (rc < 0)
      return rc;
    any = any || b->nsel > 0;
    if (pass == NULL && any)
      break;
    if (pass != NULL) {
      memset(pass + off, 0, (size_t)n);
      for (int j = 0; j < b->nsel; j++)
        pass[off + ROW(b, j)] = 1;
    }
    if (off + COL_BATCH > dn && off < dn)
      off = dn - COL_BATCH;   /* the NULL next */
  }
  sql__ectx_reset(&o->x);
  return any ? 1 : 0;
}

/* may some row of the row group pass pred k, judged on the dictionary of
   the one column it reads? 1 yes or unknown, 0 no, or a failure */
static int scan_pq_dict_check(scan_op *s, int pk)
{
  op *o = &s->base;
  int col = single_column(o->p->preds[pk]);
  int k = -1;
  for (int j = 0; j < s->ncols; j++)
    if (s->cols[j] == col)
      k = j;
  if (k < 0)
    return 1;
  vec dv;
  int64_t dn = 0;
  err e;
  err_clear(&e);
  int rc = sql__pqt_cur_dict(o->q, s->pc, k, &dv, &dn, &e);
  if (rc < 0)
    return sql__qctx_fail(o->q, rc, &e);
  if (rc == 0)
    return 1;
  return dict_filter(s, pk, col, &dv, dn, NULL);
}

static int scan_pq_passes(scan_op *s);
static int scan_pq_batch(scan_op *s, batch *b, int n);

static int scan_pq_prefilter(scan_op *s)
{
  op *o = &s->base;
  if (o->p->npreds == 0)
    return 1;
  for (int pk = 0; pk < o->p->npreds; pk++) {
    int rc = scan_pq_dict_check(s, pk);
    if (rc <= 0)
      return rc;
  }
  bool others = false, any = false;
  for (int k = 0; k < s->ncols; k++) {
    others |= !s->is_filter_col[k];
    any |= s->is_filter_col[k];
  }
  if (!others || !any)
    return 1;
  err e;
  err_clear(&e);
  int rc = sql__pqt_cur_load(o->q, s->pc, s->is_filter_col, &e);
  if (rc < 0)
    return sql__qctx_fail(o->q, rc, &e);
  if ((rc = scan_pq_passes(s)) < 0)
    return rc;
  batch *b = &o->out;
  int n;
  bool pass = false;
  while (!pass && (n = sql__pqt_cur_next(s->pc, s->pvecs, null_vec())) > 0) {
    sql__ectx_reset(&o->x);
    if ((rc = scan_pq_batch(s, b, n)) < 0)
      return rc;
    pass = b->nsel > 0;
  }
  sql__pqt_cur_rewind(s->pc);
  return pass ? 1 : 0;
}

/* Parquet, dictionary codes (scan_parquet.c invariant 7): each pushed
   filter that reads one dictionary-coded column is judged once per
   dictionary entry (and once for NULL) when the row group is loaded, and
   its rows are then kept by their codes, not evaluated one by one */
static int scan_pq_passes(scan_op *s)
{
  op *o = &s->base;
  for (int pk = 0; pk < o->p->npreds; pk++) {
    int col = s->pcol[pk], k = -1;
    for (int j = 0; j < s->ncols && col >= 0; j++)
      if (s->cols[j] == col)
        k = j;
    uint32_t nc = 0;
    uint64_t gen = 0;
    vec dv;
    if (k < 0 || sql__pqt_cur_codes(s->pc, k, &nc, &gen, &dv) == NULL)
      continue;
    if (s->pass_gen[pk] == gen)
      continue;
    s->pass_gen[pk] = 0;
    s->pass[pk] = xrealloc(s->pass[pk], (size_t)nc + 1);
    int rc = dict_filter(s, pk, col, &dv, (int64_t)nc, s->pass[pk]);
    if (rc < 0)
      return rc;
    s->pass_gen[pk] = gen;
  }
  return 0;
}

/* keeps the active rows of b whose code passes */
static void code_filter(ectx *x, batch *b, const uint32_t *codes, const uint8_t *pass)
{
  uint16_t *sel = sql__ectx_alloc(x, sizeof(uint16_t) * (size_t)(b->n > 0 ? b->n : 1));
  int m = 0;
  if (b->sel == NULL) {
    for (int i = 0; i < b->nsel; i++) {
      sel[m] = (uint16_t)i;
      m += pass[codes[i]];
    }
  } else {
    for (int j = 0; j < b->nsel; j++) {
      int i = b->sel[j];
      sel[m] = (uint16_t)i;
      m += pass[codes[i]];
    }
  }
  b->sel = sel;
  b->nsel = m;
}

/* the batch of the cursor's last n rows, its dictionary codes, and the
   pushed filters run over it (by code where they can be) */
static int scan_pq_batch(scan_op *s, batch *b, int n)
{
  op *o = &s->base;
  b->n = n;
  b->sel = NULL;
  b->nsel = n;
  b->ncols = s->ncols_all;
  for (int k = 0; k < s->ncols; k++) {
    int c = s->cols[k];
    b->cols[c] = s->pvecs[k];
    bcodes *bc = &s->bc[c];
    bc->codes = sql__pqt_cur_codes(s->pc, k, &bc->ncodes, &bc->gen, NULL);
    bc->vals = s->pvecs[k].p;
    bc->nulls = s->pvecs[k].nulls;
  }
  b->codes = s->bc;
  b->nbcodes = s->ncols_all;
  if (s->t->npart > 0)
    sql__table_part_fill(s->t, s->m->obj, b);
  for (int k = 0; k < o->p->npreds && b->nsel > 0; k++) {
    const bcodes *bc = s->pcol[k] >= 0 ? batch_codes(b, s->pcol[k]) : NULL;
    if (bc != NULL && s->pass_gen[k] == bc->gen) {
      code_filter(&o->x, b, bc->codes, s->pass[k]);
      continue;
    }
    int rc = sql__expr_filter(&o->x, o->p->preds[k], b);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* Parquet: morsels are row groups; values come decoded, no conversion */
static int scan_next_pq(scan_op *s, batch **out)
{
  op *o = &s->base;
  node_rt *rt = s->rt;
  qctx *q = o->q;
  for (;;) {
    int rc = sql__qctx_check(q);
    if (rc < 0)
      return rc;
    if (o->stop != NULL && atomic_load(&o->stop->done))
      return 0;
    sql__ectx_reset(&o->x);
    int n = sql__pqt_cur_next(s->pc, s->pvecs, null_vec());
    if (n == 0) {
      sql__pqt_cur_close(q, s->pc);
      size_t i = atomic_fetch_add(&rt->next_morsel, 1);
      if (i >= rt->nmorsels)
        return 0;
      morsel *m = &rt->morsels[i];
      s->m = m;
      err e;
      err_clear(&e);
      if ((rc = sql__pqt_cur_open(q, s->t, s->pc, m->obj, m->range, &e)) < 0)
        return sql__qctx_fail(q, rc, &e);
      if ((rc = sql__pqt_cur_pages(q, s->t, s->pc, o->p->preds, o->p->npreds, &e)) < 0)
        return sql__qctx_fail(q, rc, &e);
      if (rc == 0) {
        sql__pqt_cur_close(q, s->pc);
        continue;
      }
      if ((rc = scan_pq_prefilter(s)) < 0)
        return rc;
      if (rc == 0) {
        sql__pqt_cur_close(q, s->pc);
        continue;
      }
      /* under a top-N: the sort key first, the rest only for rows that
         can enter */
      if (o->p->topn != NULL &&
          (rc = sql__pqt_cur_topn(q, s->pc, o->p->topn, o->p->npreds == 0, &e)) <= 0) {
        if (rc < 0)
          return sql__qctx_fail(q, rc, &e);
        sql__pqt_cur_close(q, s->pc);
        continue;
      }
      if ((rc = sql__pqt_cur_load(q, s->pc, NULL, &e)) < 0)
        return sql__qctx_fail(q, rc, &e);
      if ((rc = scan_pq_passes(s)) < 0)
        return rc;
      continue;
    }
    batch *b = &o->out;
    if ((rc = scan_pq_batch(s, b, n)) < 0)
      return rc;
    if (b->nsel == 0)
      continue;
    if (o->p->topn != NULL && o->p->npreds > 0)
      sql__pqt_topn_feed(s->pc, o->p->topn, &b->cols[o->p->topn->col], b->sel, b->nsel);
    *out = b;
    return 1;
  }
}

/* ---- CSV / JSON lines through a window (scan_win.c) ---- */

static bool win_usable(const tobj *o)
{
  return o->has_fd && o->nranges > 1;
}

/* the rest of the morsel from object offset at (a record start) on the mapping */
static void scan_map_at(scan_op *s, uint64_t at)
{
  tobj *o = s->m->obj;
  size_t stop = s->m->stop > o->len ? o->len : s->m->stop;
  if (s->t->format == FMT_CSV) {
    s->win_skipped += s->cc.skipped;
    csv_cursor_resume(&s->cc, &s->t->csv, o->data, o->len, stop, o->name, s->t->skip_malformed);
    s->cc.pos = o->data + at;
  } else {
    jsonl_cursor_resume(&s->jc, o->data, o->len, stop);
    s->jc.pos = o->data + at;
  }
  s->win_on = false;
  s->cur_base = o->data;
  s->cur_off = 0;
}

static int win_io(const tobj *o, err *e)
{
  return err_set(e, ERR_IO, "cannot read '%s': %s", o->name, strerror(errno));
}

/* the cursor on the window from object offset at (a record start; CSV:
   a larger window when the one before, also from at, held no whole record) */
static int scan_win_next(scan_op *s, uint64_t at, err *e)
{
  tobj *o = s->m->obj;
  bool csv = s->t->format == FMT_CSV;
  bool grow = csv && s->win_on && s->win.partial && s->win.from == at;
  size_t stop = s->m->stop > o->len ? o->len : s->m->stop;
  int rc = sql__win_fill(&s->win, o, csv, at, stop, grow);
  if (rc < 0)
    return win_io(o, e);
  if (rc > 0) {
    scan_map_at(s, at);
    return 0;
  }
  size_t wstop = stop > at ? (size_t)(stop - at) : 0;
  if (csv) {
    s->win_skipped += s->cc.skipped;
    csv_cursor_resume(&s->cc, &s->t->csv, s->win.buf, s->win.len, wstop, o->name,
                      s->t->skip_malformed);
    s->cc.partial = s->win.partial;
  } else {
    jsonl_cursor_resume(&s->jc, s->win.buf, s->win.len, wstop);
  }
  s->win_on = true;
  s->cur_base = s->win.buf;
  s->cur_off = at;
  return 0;
}

/* The morsel's first window: 0, 1 to read it from the mapping instead
   (its header is malformed or longer than a window), or a failure. */
static int scan_win_start(scan_op *s, size_t start, size_t stop, int inq, err *e)
{
  tobj *o = s->m->obj;
  bool csv = s->t->format == FMT_CSV;
  bool skip = s->t->skip_malformed;
  if (csv)
    memset(&s->cc, 0, sizeof s->cc);
  else
    jsonl_cursor_init(&s->jc, &s->t->js, "", 0, 0, 0, o->name, skip);
  uint64_t first;
  s->win.partial = false;
  if (start == 0) {
    int rc = sql__win_fill(&s->win, o, csv, 0, stop, false);
    if (rc < 0)
      return win_io(o, e);
    if (rc > 0)
      return 1;
    size_t wstop = stop < s->win.len ? stop : s->win.len;
    if (csv) {
      err e2;
      err_clear(&e2);
      if (csv_cursor_init_at(&s->cc, &s->t->csv, s->win.buf, s->win.len, 0, wstop, o->name,
                             skip, inq, &e2) < 0)
        return 1;
      /* a header that runs past the window: read from the mapping */
      if (s->win.partial && s->cc.pos == s->cc.end)
        return 1;
      s->cc.partial = s->win.partial;
      first = (uint64_t)(s->cc.pos - s->win.buf);
    } else {
      jsonl_cursor_release(&s->jc);
      jsonl_cursor_init(&s->jc, &s->t->js, s->win.buf, s->win.len, 0, wstop, o->name, skip);
      first = (uint64_t)(s->jc.pos - s->win.buf);
    }
    s->win_on = true;
    s->cur_base = s->win.buf;
    s->cur_off = 0;
  } else {
    if (sql__win_first(&s->win, o, csv, start, csv ? inq : -1, &first) < 0)
      return win_io(o, e);
    if (first < stop) {
      int rc = scan_win_next(s, first, e);
      if (rc < 0)
        return rc;
    } else {
      /* no record starts in the range: an empty window at first */
      if (csv)
        csv_cursor_resume(&s->cc, &s->t->csv, s->win.buf, 0, 0, o->name, skip);
      else
        jsonl_cursor_resume(&s->jc, s->win.buf, 0, 0);
      s->win_on = true;
      s->cur_base = s->win.buf;
      s->cur_off = first;
    }
  }
  s->win_started = true;
  s->win_first = first;
  return 0;
}

static int scan_next(op *o, batch **out)
{
  scan_op *s = (scan_op *)o;
  node_rt *rt = s->rt;
  qctx *q = o->q;
  if (s->pc != NULL)
    return scan_next_pq(s, out);
  for (;;) {
    int rc = sql__qctx_check(q);
    if (rc < 0)
      return rc;
    if (o->stop != NULL && atomic_load(&o->stop->done))
      return 0;
    if (s->m == NULL) {
      size_t i = atomic_fetch_add(&rt->next_morsel, 1);
      if (i >= rt->nmorsels)
        return 0;
      morsel *m = &rt->morsels[i];
      err e;
      err_clear(&e);
      if ((rc = sql__tobj_acquire(q, m->obj, &e)) < 0)
        return sql__qctx_fail(q, rc, &e);
      s->m = m;
      size_t stop = m->stop > m->obj->len ? m->obj->len : m->stop;
      size_t start = m->start > m->obj->len ? m->obj->len : m->start;
      s->win_on = s->win_started = false;
      s->win_skipped = 0;
      s->cur_base = m->obj->data;
      s->cur_off = 0;
      int inq = s->t->format == FMT_CSV ? range_in_quote(q, m, &s->win) : -1;
      if (win_usable(m->obj)) {
        if ((rc = scan_win_start(s, start, stop, inq, &e)) < 0)
          return sql__qctx_fail(q, rc, &e);
        if (rc == 0)
          continue;
      }
      if (s->t->format == FMT_CSV) {
        rc = csv_cursor_init_at(&s->cc, &s->t->csv, m->obj->data, m->obj->len, start, stop,
                                m->obj->name, s->t->skip_malformed, inq, &e);
        if (rc < 0)
          return scan_malformed(s, &e);
      } else {
        jsonl_cursor_init(&s->jc, &s->t->js, m->obj->data, m->obj->len, start, stop,
                          m->obj->name, s->t->skip_malformed);
      }
    }
    strheap_reset(&s->heap);
    sql__ectx_reset(&o->x);
    err e;
    err_clear(&e);
    int n;
    bool csv = s->t->format == FMT_CSV;
    const char *bpos = csv ? s->cc.pos : s->jc.pos;
    uint64_t bskip = csv ? s->cc.skipped : s->jc.skipped;
    if (csv)
      n = csv_tokenize(&s->cc, s->cols, s->ncols, s->spans, s->rec, COL_BATCH, &e);
    else
      n = jsonl_tokenize(&s->jc, s->cols, s->ncols, s->spans, s->rec, COL_BATCH, &e);
    if (n < 0 && s->win_on) {
      /* again on the mapping, for the message's line (or a record the
         quote parity cut wrongly) */
      if (csv)
        s->cc.skipped = bskip;
      else
        s->jc.skipped = bskip;
      scan_map_at(s, s->cur_off + (uint64_t)(bpos - s->cur_base));
      continue;
    }
    if (n < 0)
      return scan_malformed(s, &e);
    if (n == 0) {
      uint64_t at = s->cur_off + (uint64_t)((csv ? s->cc.pos : s->jc.pos) - s->cur_base);
      size_t stop = s->m->stop > s->m->obj->len ? s->m->obj->len : s->m->stop;
      if (s->win_on && at < stop) {
        if ((rc = scan_win_next(s, at, &e)) < 0)
          return sql__qctx_fail(q, rc, &e);
        continue;
      }
      scan_finish_morsel(s);
      continue;
    }
    batch *b = &o->out;
    b->n = n;
    b->sel = NULL;
    b->nsel = n;
    b->ncols = s->ncols_all;
    if (s->t->npart > 0)
      sql__table_part_fill(s->t, s->m->obj, b);
    if (s->t->skip_malformed)
      memset(s->bad, 0, (size_t)n);
    int nbad = 0;
    /* filter columns first, then the filter, then the rest for the survivors */
    for (int k = 0; k < s->ncols; k++) {
      if (!s->is_filter_col[k])
        continue;
      if ((rc = scan_convert(s, k, NULL, n, b)) < 0)
        return rc;
      nbad += rc;
    }
    if (nbad > 0) {
      uint16_t *sel = sql__ectx_alloc(&o->x, sizeof(uint16_t) * (size_t)n);
      int m = 0;
      for (int r = 0; r < n; r++)
        if (!s->bad[r])
          sel[m++] = (uint16_t)r;
      b->sel = sel;
      b->nsel = m;
      atomic_fetch_add(&s->t->skipped, (uint64_t)nbad);
      nbad = 0;
    }
    for (int k = 0; k < o->p->npreds && b->nsel > 0; k++)
      if ((rc = sql__expr_filter(&o->x, o->p->preds[k], b)) < 0)
        return rc;
    if (b->nsel == 0)
      continue;
    for (int k = 0; k < s->ncols; k++) {
      if (s->is_filter_col[k])
        continue;
      if ((rc = scan_convert(s, k, b->sel, b->nsel, b)) < 0)
        return rc;
      nbad += rc;
    }
    if (nbad > 0) {
      uint16_t *sel = sql__ectx_alloc(&o->x, sizeof(uint16_t) * (size_t)n);
      int m = 0;
      for (int j = 0; j < b->nsel; j++) {
        int r = ROW(b, j);
        if (!s->bad[r])
          sel[m++] = (uint16_t)r;
      }
      b->sel = sel;
      b->nsel = m;
      atomic_fetch_add(&s->t->skipped, (uint64_t)nbad);
      if (m == 0)
        continue;
    }
    *out = b;
    return 1;
  }
}

static op *scan_build(qctx *q, plan *p)
{
  scan_op *s = (scan_op *)op_alloc(q, p, sizeof *s);
  s->base.next = scan_next;
  s->base.close = scan_close;
  s->rt = rt_of(q, p);
  s->t = p->table;
  table *t = p->table;
  s->ncols_all = t->ncols;
  s->cols = xcalloc((size_t)t->ncols + 1, sizeof(int));
  s->is_filter_col = xcalloc((size_t)t->ncols + 1, sizeof(bool));
  s->vecs = xcalloc((size_t)t->ncols + 1, sizeof(vec));
  s->spans = xcalloc((size_t)t->ncols + 1, sizeof(fspan *));
  s->nullbufs = xcalloc((size_t)t->ncols + 1, sizeof(uint8_t *));
  s->rec = xcalloc(COL_BATCH, sizeof(char *));
  s->bad = xcalloc(COL_BATCH, 1);
  s->base.out.cols = sql__ectx_alloc(&s->base.x, 1); /* replaced below */
  bool *fcols = xcalloc((size_t)t->ncols + 1, sizeof(bool));
  for (int k = 0; k < p->npreds; k++) {
    /* mark the columns the pushed filters read */
    const bexpr *stack[256];
    int sp = 0;
    stack[sp++] = p->preds[k];
    while (sp > 0) {
      const bexpr *x = stack[--sp];
      if (x->kind == BX_COL && x->colno < t->ncols)
        fcols[x->colno] = true;
      for (int a = 0; a < x->nargs && sp < 255; a++)
        stack[sp++] = x->args[a];
    }
  }
  for (int c = 0; c < t->ncols; c++) {
    s->vecs[c] = *null_vec();
    if (!p->used[c] || c >= t->nfile)
      continue;
    int k = s->ncols++;
    s->cols[k] = c;
    s->is_filter_col[k] = fcols[c];
    s->spans[k] = xcalloc(COL_BATCH, sizeof(fspan));
    s->nullbufs[k] = xcalloc(COL_BATCH, 1);
    int phys = t->types[c] == FT_DOUBLE ? PHYS_F64 : t->types[c] == FT_VARCHAR ? PHYS_STR
                                                                               : PHYS_I64;
    s->vecs[c].phys = (uint8_t)phys;
    s->vecs[c].nulls = NULL;
    s->vecs[c].is_const = 0;
    s->vecs[c].p = xcalloc(COL_BATCH, phys == PHYS_STR ? sizeof(str_ref) : 8);
  }
  free(fcols);
  /* the batch's column array lives as long as the op */
  s->base.out.cols = xcalloc((size_t)t->ncols + 1, sizeof(vec));
  sql__exec_defer(q, free, s->base.out.cols);
  for (int c = 0; c < t->ncols; c++)
    s->base.out.cols[c] = s->vecs[c];
  if (t->format == FMT_PARQUET) {
    s->pc = sql__pqt_cur_new(s->cols, s->ncols);
    s->pvecs = xcalloc((size_t)s->ncols + 1, sizeof(vec));
    for (int k = 0; k < s->ncols; k++)
      s->pvecs[k].phys = s->vecs[s->cols[k]].phys;
    s->bc = xcalloc((size_t)t->ncols + 1, sizeof(bcodes));
    int np = p->npreds;
    s->pcol = xcalloc((size_t)np + 1, sizeof(int));
    s->pass = xcalloc((size_t)np + 1, sizeof(uint8_t *));
    s->pass_gen = xcalloc((size_t)np + 1, sizeof(uint64_t));
    for (int k = 0; k < np; k++)
      s->pcol[k] = single_column(p->preds[k]);
  }
  return &s->base;
}

/* -- filter -- */

static int filter_next(op *o, batch **out)
{
  for (;;) {
    batch *in;
    int rc = o->child->next(o->child, &in);
    if (rc <= 0)
      return rc;
    sql__ectx_reset(&o->x);
    o->out = *in;
    for (int k = 0; k < o->p->npreds && o->out.nsel > 0; k++)
      if ((rc = sql__expr_filter(&o->x, o->p->preds[k], &o->out)) < 0)
        return rc;
    if (o->out.nsel > 0) {
      *out = &o->out;
      return 1;
    }
  }
}

/* -- project -- */

static int project_next(op *o, batch **out)
{
  batch *in;
  int rc = o->child->next(o->child, &in);
  if (rc <= 0)
    return rc;
  sql__ectx_reset(&o->x);
  plan *p = o->p;
  vec *cols = sql__ectx_alloc(&o->x, sizeof(vec) * (size_t)(p->ncols > 0 ? p->ncols : 1));
  for (int k = 0; k < p->ncols; k++)
    if ((rc = sql__expr_eval(&o->x, p->exprs[k], in, &cols[k])) < 0)
      return rc;
  o->out.n = in->n;
  o->out.sel = in->sel;
  o->out.nsel = in->nsel;
  o->out.ncols = p->ncols;
  o->out.cols = cols;
  *out = &o->out;
  return 1;
}

/* -- limit (parallel: rows reserve global positions) -- */

static int limit_next(op *o, batch **out)
{
  node_rt *rt = rt_of(o->q, o->p);
  int64_t lim = o->p->limit;
  int64_t off = o->p->offset;
  int64_t end = lim < 0 ? INT64_MAX : off + lim;
  for (;;) {
    if (atomic_load(&rt->done))
      return 0;
    batch *in;
    int rc = o->child->next(o->child, &in);
    if (rc <= 0)
      return rc;
    int64_t start = atomic_fetch_add(&rt->seen, in->nsel);
    int64_t stop = start + in->nsel;
    if (stop >= end)
      atomic_store(&rt->done, true);
    if (stop <= off || start >= end)
      continue;
    sql__ectx_reset(&o->x);
    int from = (int)(start < off ? off - start : 0);
    int to = (int)(stop > end ? end - start : in->nsel);
    uint16_t *sel = sql__ectx_alloc(&o->x, sizeof(uint16_t) * (size_t)(in->n > 0 ? in->n : 1));
    int m = 0;
    for (int j = from; j < to; j++)
      sel[m++] = (uint16_t)ROW(in, j);
    o->out = *in;
    o->out.sel = sel;
    o->out.nsel = m;
    if (m == 0)
      continue;
    *out = &o->out;
    return 1;
  }
}

/* -- hash join probe -- */

typedef struct join_op {
  op base;
  join_rt *j;
  batch *in;              /* current probe batch */
  vec *keys;              /* its key vectors */
  uint64_t *hash;         /* per row */
  uint8_t *pmatch;        /* per row: had a surviving match */
  int pos;                /* next active row of in */
  uint32_t chain;         /* next build id + 1 in the current chain (0 none) */
  bool nl_started;        /* nested loop: chain over all ids */
  int phase;              /* 0 pairs, 1 unmatched, 2 need input */
  uint16_t *prow;         /* pair: probe row */
  uint32_t *bid;          /* pair: build id */
  ectx kx;                /* key evaluation, lives as long as `in` */
  int nl;                 /* left columns */
  int nr;
  /* one key with dictionary codes (bcodes): its hash per code, for the
     dictionary cgen (cknown: computed) */
  uint64_t cgen;
  uint64_t *chash;
  uint8_t *cknown;
  /* and its build match per code (CM_UNKNOWN, 0 none, id + 1 the only
     one, CM_MANY), when the batch's key is that column (ccodes) */
  uint32_t *cmatch;
  const uint32_t *ccodes;
} join_op;

#define CM_UNKNOWN UINT32_MAX
#define CM_MANY (UINT32_MAX - 1)

static bool keys_equal(join_op *jo, int row, uint32_t id)
{
  plan *p = jo->base.p;
  for (int k = 0; k < p->nkeys; k++) {
    int r;
    vec *bv = rs_col(jo->j->keys, id, k, &r);
    value a = vec_get(&jo->keys[k], row);
    value b = vec_get(bv, r);
    if (a.null || b.null || !sql__value_eq(bv->phys, a, b))
      return false;
  }
  return true;
}

static void gather_left(join_op *jo, batch *o, const uint16_t *rows, int n)
{
  const bool *need = jo->base.p->need;
  for (int c = 0; c < jo->nl; c++) {
    const vec *src = &jo->in->cols[c];
    vec *dst = &o->cols[c];
    if (need != NULL && !need[c]) {
      *dst = *null_vec();
      dst->phys = src->phys;
      continue;
    }
    dst->phys = src->phys;
    dst->is_const = 0;
    dst->p = sql__ectx_alloc(&jo->base.x, (size_t)(n > 0 ? n : 1) *
                                         (src->phys == PHYS_STR ? sizeof(str_ref) : 8));
    dst->nulls = NULL;
    if (src->nulls != NULL) {
      dst->nulls = sql__ectx_alloc(&jo->base.x, (size_t)(n > 0 ? n : 1));
      for (int i = 0; i < n; i++)
        dst->nulls[i] = src->nulls[src->is_const ? 0 : rows[i]];
    }
    if (src->phys == PHYS_STR) {
      for (int i = 0; i < n; i++)
        dst->s[i] = src->s[src->is_const ? 0 : rows[i]];
    } else {
      for (int i = 0; i < n; i++)
        dst->i[i] = src->i[src->is_const ? 0 : rows[i]];
    }
  }
}

static void gather_right(join_op *jo, batch *o, const uint32_t *ids, int n, bool nulls)
{
  rowset *bs = jo->j->build;
  const bool *need = jo->base.p->need;
  for (int c = 0; c < jo->nr; c++) {
    vec *dst = &o->cols[jo->nl + c];
    int ph = bs->phys[c];
    if (need != NULL && !need[jo->nl + c]) {
      *dst = *null_vec();
      dst->phys = (uint8_t)ph;
      continue;
    }
    dst->phys = (uint8_t)ph;
    dst->is_const = 0;
    dst->p = sql__ectx_alloc(&jo->base.x, (size_t)(n > 0 ? n : 1) *
                                         (ph == PHYS_STR ? sizeof(str_ref) : 8));
    dst->nulls = sql__ectx_alloc(&jo->base.x, (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
      if (nulls) {
        dst->nulls[i] = 1;
        if (ph == PHYS_STR)
          dst->s[i] = (str_ref){"", 0};
        else
          dst->i[i] = 0;
        continue;
      }
      int r;
      vec *src = rs_col(bs, ids[i], c, &r);
      dst->nulls[i] = src->nulls[r];
      if (ph == PHYS_STR)
        dst->s[i] = src->s[r];
      else
        dst->i[i] = src->i[r];
    }
  }
}

static int join_new_input(join_op *jo)
{
  op *o = &jo->base;
  plan *p = o->p;
  batch *in;
  int rc = o->child->next(o->child, &in);
  if (rc <= 0)
    return rc;
  sql__ectx_reset(&jo->kx);
  jo->in = in;
  for (int k = 0; k < p->nkeys; k++)
    if ((rc = sql__expr_eval(&jo->kx, p->lkeys[k], in, &jo->keys[k])) < 0)
      return rc;
  const bcodes *bc = p->nkeys == 1 && p->lkeys[0]->kind == BX_COL
                        ? batch_codes(in, p->lkeys[0]->colno) : NULL;
  if (bc != NULL && jo->keys[0].p == bc->vals && jo->keys[0].nulls == bc->nulls) {
    /* a dictionary-coded key: each entry hashed once */
    if (jo->cgen != bc->gen) {
      jo->chash = xrealloc(jo->chash, sizeof(uint64_t) * ((size_t)bc->ncodes + 1));
      jo->cknown = xrealloc(jo->cknown, (size_t)bc->ncodes + 1);
      memset(jo->cknown, 0, (size_t)bc->ncodes + 1);
      jo->cmatch = xrealloc(jo->cmatch, sizeof(uint32_t) * ((size_t)bc->ncodes + 1));
      memset(jo->cmatch, 0xff, sizeof(uint32_t) * ((size_t)bc->ncodes + 1));
      jo->cgen = bc->gen;
    }
    jo->ccodes = bc->codes;
    for (int j = 0; j < in->nsel; j++) {
      int r = ROW(in, j);
      uint32_t c = bc->codes[r];
      if (!jo->cknown[c]) {
        jo->chash[c] = 0x12345 * 0x9E3779B97F4A7C15ULL ^
                       sql__hash_value(jo->keys[0].phys, &jo->keys[0], r);
        jo->cknown[c] = 1;
      }
      jo->hash[r] = jo->chash[c];
      jo->pmatch[r] = 0;
    }
  } else {
    jo->ccodes = NULL;
    for (int j = 0; j < in->nsel; j++) {
      int r = ROW(in, j);
      uint64_t h = 0x12345;
      for (int k = 0; k < p->nkeys; k++)
        h = h * 0x9E3779B97F4A7C15ULL ^ sql__hash_value(jo->keys[k].phys, &jo->keys[k], r);
      jo->hash[r] = h;
      jo->pmatch[r] = 0;
    }
  }
  jo->pos = 0;
  jo->chain = 0;
  jo->nl_started = false;
  jo->phase = 0;
  return 1;
}

/* the build rows whose key equals probe row r's (one key): 0 none, id + 1
   the only one, CM_MANY more */
static uint32_t code_match(join_op *jo, int r)
{
  join_rt *j = jo->j;
  if (vec_is_null(&jo->keys[0], r))
    return 0;
  uint32_t m = 0;
  for (uint32_t c = j->heads[jo->hash[r] & j->mask]; c != 0; c = j->next[c - 1]) {
    uint32_t id = c - 1;
    if (j->hashes[id] == jo->hash[r] && keys_equal(jo, r, id)) {
      if (m != 0 || id + 1 >= CM_MANY)
        return CM_MANY;
      m = id + 1;
    }
  }
  return m;
}

static int join_next(op *o, batch **out)
{
  join_op *jo = (join_op *)o;
  plan *p = o->p;
  join_rt *j = jo->j;
  bool semi = p->join == JN_SEMI || p->join == JN_ANTI;
  bool outer_left = p->join == JN_LEFT || p->join == JN_FULL;
  for (;;) {
    if (jo->phase == 2 || jo->in == NULL) {
      int rc = sql__qctx_check(o->q);
      if (rc < 0)
        return rc;
      rc = join_new_input(jo);
      if (rc <= 0)
        return rc;
    }
    sql__ectx_reset(&o->x);
    batch *in = jo->in;
    if (jo->phase == 0) {
      /* one input batch may make millions of pairs (a cross join) that a
         filter drops: check between each COL_BATCH of them */
      if (sql__qctx_check(o->q) < 0)
        return sql__qctx_check(o->q);
      /* collect up to COL_BATCH candidate pairs */
      int np = 0;
      while (np < COL_BATCH && jo->pos < in->nsel) {
        int r = ROW(in, jo->pos);
        if (jo->ccodes != NULL && jo->chain == 0 && !jo->nl_started) {
          /* a dictionary-coded key: each entry's match found once */
          uint32_t c = jo->ccodes[r];
          uint32_t m = jo->cmatch[c];
          if (m == CM_UNKNOWN)
            m = jo->cmatch[c] = code_match(jo, r);
          if (m != CM_MANY) {
            if (m != 0 && semi && p->cond == NULL) {
              jo->pmatch[r] = 1;
            } else if (m != 0) {
              jo->prow[np] = (uint16_t)r;
              jo->bid[np] = m - 1;
              np++;
            }
            jo->pos++;
            continue;
          }
        }
        if (p->nkeys > 0) {
          if (jo->chain == 0 && !jo->nl_started) {
            bool nullkey = false;
            for (int k = 0; k < p->nkeys; k++)
              if (vec_is_null(&jo->keys[k], r))
                nullkey = true;
            jo->chain = nullkey ? 0 : j->heads[jo->hash[r] & j->mask];
            jo->nl_started = true;
          }
          while (jo->chain != 0 && np < COL_BATCH) {
            uint32_t id = jo->chain - 1;
            jo->chain = j->next[id];
            if (j->hashes[id] == jo->hash[r] && keys_equal(jo, r, id)) {
              if (semi && p->cond == NULL) {
                jo->pmatch[r] = 1;
                jo->chain = 0;
                break;
              }
              jo->prow[np] = (uint16_t)r;
              jo->bid[np] = id;
              np++;
            }
          }
          if (jo->chain == 0) {
            jo->pos++;
            jo->nl_started = false;
          }
        } else {
          /* nested loop over every build row */
          if (!jo->nl_started) {
            jo->chain = 1;
            jo->nl_started = true;
          }
          size_t nids = j->build->nchunks * COL_BATCH;
          while (jo->chain != 0 && np < COL_BATCH) {
            uint32_t id = jo->chain - 1;
            if (id >= nids) {
              jo->chain = 0;
              break;
            }
            jo->chain++;
            if ((int)(id % COL_BATCH) >= j->build->chunks[id / COL_BATCH]->n) {
              /* skip the unused tail of a chunk */
              jo->chain = (uint32_t)((id / COL_BATCH + 1) * COL_BATCH + 1);
              continue;
            }
            jo->prow[np] = (uint16_t)r;
            jo->bid[np] = id;
            np++;
          }
          if (jo->chain == 0) {
            jo->pos++;
            jo->nl_started = false;
          }
        }
      }
      if (jo->pos >= in->nsel)
        jo->phase = 1;
      if (np == 0)
        continue;
      batch *ob = &o->out;
      ob->ncols = jo->nl + jo->nr;
      ob->cols = sql__ectx_alloc(&o->x, sizeof(vec) * (size_t)(ob->ncols > 0 ? ob->ncols : 1));
      ob->n = np;
      ob->sel = NULL;
      ob->nsel = np;
      gather_left(jo, ob, jo->prow, np);
      gather_right(jo, ob, jo->bid, np, false);
      if (p->cond != NULL) {
        int rc = sql__expr_filter(&o->x, p->cond, ob);
        if (rc < 0)
          return rc;
      }
      for (int k = 0; k < ob->nsel; k++) {
        int i = ROW(ob, k);
        jo->pmatch[jo->prow[i]] = 1;
        if (j->matched != NULL)
          __atomic_store_n(&j->matched[jo->bid[i]], 1, __ATOMIC_RELAXED);
      }
      if (semi || ob->nsel == 0)
        continue;
      *out = ob;
      return 1;
    }
    /* phase 1: probe rows without a match */
    jo->phase = 2;
    if (p->join == JN_SEMI || p->join == JN_ANTI) {
      bool want = p->join == JN_SEMI;
      uint16_t *sel = sql__ectx_alloc(&o->x, sizeof(uint16_t) * (size_t)(in->n > 0 ? in->n : 1));
      int m = 0;
      for (int k = 0; k < in->nsel; k++) {
        int r = ROW(in, k);
        if ((jo->pmatch[r] != 0) == want)
          sel[m++] = (uint16_t)r;
      }
      if (m == 0)
        continue;
      o->out = *in;
      o->out.sel = sel;
      o->out.nsel = m;
      *out = &o->out;
      return 1;
    }
    if (!outer_left)
      continue;
    uint16_t *rows = sql__ectx_alloc(&o->x, sizeof(uint16_t) * (size_t)(in->n > 0 ? in->n : 1));
    int m = 0;
    for (int k = 0; k < in->nsel; k++) {
      int r = ROW(in, k);
      if (!jo->pmatch[r])
        rows[m++] = (uint16_t)r;
    }
    if (m == 0)
      continue;
    batch *ob = &o->out;
    ob->ncols = jo->nl + jo->nr;
    ob->cols = sql__ectx_alloc(&o->x, sizeof(vec) * (size_t)(ob->ncols > 0 ? ob->ncols : 1));
    ob->n = m;
    ob->sel = NULL;
    ob->nsel = m;
    gather_left(jo, ob, rows, m);
    gather_right(jo, ob, NULL, m, true);
    *out = ob;
    return 1;
  }
}

static void join_close(op *o)
{
  join_op *jo = (join_op *)o;
  free(jo->hash);
  free(jo->pmatch);
  free(jo->prow);
  free(jo->bid);
  free(jo->keys);
  free(jo->chash);
  free(jo->cknown);
  free(jo->cmatch);
  sql__ectx_release(&jo->kx);
}

static op *op_build(qctx *q, plan *p, node_rt *stop, bool top);

static op *join_build_op(qctx *q, plan *p, node_rt *stop)
{
  join_op *jo = (join_op *)op_alloc(q, p, sizeof *jo);
  jo->base.next = join_next;
  jo->base.close = join_close;
  jo->j = rt_of(q, p)->join;
  jo->hash = xcalloc(COL_BATCH, 8);
  jo->pmatch = xcalloc(COL_BATCH, 1);
  jo->prow = xcalloc(COL_BATCH, sizeof(uint16_t));
  jo->bid = xcalloc(COL_BATCH, sizeof(uint32_t));
  jo->keys = xcalloc((size_t)(p->nkeys > 0 ? p->nkeys : 1), sizeof(vec));
  sql__ectx_init(&jo->kx, q);
  jo->nl = p->child->ncols;
  jo->nr = p->right->ncols;
  jo->phase = 2;
  jo->base.child = op_build(q, p->child, stop, false);
  return &jo->base;
}

/* Builds one thread's chain for the streaming part of p. top: p itself is
 * being materialized (so a RIGHT/FULL join is built as its probe side). */
static op *op_build(qctx *q, plan *p, node_rt *stop, bool top)
{
  op *o;
  if (is_breaker(p) && !(top && p->kind == P_JOIN)) {
    rs_op *r = (rs_op *)op_alloc(q, p, sizeof *r);
    r->base.next = rs_next;
    r->rt = rt_of(q, p);
    r->rs = r->rt->rs;
    r->base.stop = stop;
    return &r->base;
  }
  switch (p->kind) {
  case P_SCAN:
    o = scan_build(q, p);
    o->stop = stop;
    return o;
  case P_FILTER:
    o = op_alloc(q, p, sizeof *o);
    o->next = filter_next;
    o->child = op_build(q, p->child, stop, false);
    return o;
  case P_PROJECT:
    o = op_alloc(q, p, sizeof *o);
    o->next = project_next;
    o->child = op_build(q, p->child, stop, false);
    return o;
  case P_LIMIT:
    o = op_alloc(q, p, sizeof *o);
    o->next = limit_next;
    o->child = op_build(q, p->child, rt_of(q, p), false);
    return o;
  case P_JOIN:
    return join_build_op(q, p, stop);
  default:
    return NULL;
  }
}

/* ---- prepare ---- */

static int prepare(qctx *q, plan *p, bool top);

int sql__exec_join_outer(qctx *q, plan *p, rowset **out);

static int build_hash(qctx *q, plan *p)
{
  node_rt *rt = rt_of(q, p);
  if (rt->join != NULL)
    return 0;
  join_rt *j = xcalloc(1, sizeof *j);
  rt->join = j;
  sql__exec_defer(q, free, j);
  int rc = sql__exec_materialize(q, p->right, &j->build);
  if (rc < 0)
    return rc;
  sql__exec_defer(q, defer_rowset, j->build);
  size_t nids = j->build->nchunks * COL_BATCH;
  j->nids = nids;
  if (p->join == JN_RIGHT || p->join == JN_FULL) {
    j->matched = xcalloc(nids + 1, 1);
    sql__exec_defer(q, free, j->matched);
  }
  if (p->nkeys == 0)
    return 0;
  if (nids >= UINT32_MAX - 1) {
    err e;
    err_set(&e, ERR_ENTITY_TOO_LARGE, "the build side of a join has too many rows");
    return sql__qctx_fail(q, ERR_ENTITY_TOO_LARGE, &e);
  }
  size_t size = 16;
  while (size < j->build->rows * 2)
    size *= 2;
  j->mask = size - 1;
  j->heads = xcalloc(size, sizeof(uint32_t));
  j->next = xcalloc(nids + 1, sizeof(uint32_t));
  j->hashes = xcalloc(nids + 1, sizeof(uint64_t));
  sql__exec_defer(q, free, j->heads);
  sql__exec_defer(q, free, j->next);
  sql__exec_defer(q, free, j->hashes);
  if ((rc = sql__qctx_mem(q, (int64_t)(size * 4 + nids * 12))) < 0)
    return rc;
  pcol *kc = xcalloc((size_t)p->nkeys, sizeof(pcol));
  for (int k = 0; k < p->nkeys; k++)
    kc[k].type = p->rkeys[k]->type;
  j->keys = sql__rowset_new(q, p->nkeys, kc);
  free(kc);
  sql__exec_defer(q, defer_rowset, j->keys);
  ectx x;
  sql__ectx_init(&x, q);
  for (int k = 0; k < p->nkeys; k++)
    if ((rc = sql__expr_prepare(q, p->rkeys[k])) < 0)
      break;
  for (size_t c = 0; c < j->build->nchunks && rc == 0; c++) {
    batch b;
    chunk_batch(j->build, c, &b);
    sql__ectx_reset(&x);
    vec *kv = sql__ectx_alloc(&x, sizeof(vec) * (size_t)p->nkeys);
    for (int k = 0; k < p->nkeys && rc == 0; k++)
      rc = sql__expr_eval(&x, p->rkeys[k], &b, &kv[k]);
    if (rc < 0)
      break;
    /* key chunk c holds the keys of build chunk c */
    if ((rc = rowset_add_chunk(j->keys, kv, b.n)) < 0)
      break;
    for (int r = 0; r < b.n; r++) {
      uint32_t id = (uint32_t)(c * COL_BATCH + (size_t)r);
      uint64_t h = 0x12345;
      bool nullkey = false;
      for (int k = 0; k < p->nkeys; k++) {
        if (vec_is_null(&kv[k], r))
          nullkey = true;
        h = h * 0x9E3779B97F4A7C15ULL ^ sql__hash_value(kv[k].phys, &kv[k], r);
      }
      j->hashes[id] = h;
      if (nullkey)
        continue;
      size_t slot = h & j->mask;
      j->next[id] = j->heads[slot];
      j->heads[slot] = id + 1;
    }
  }
  sql__ectx_release(&x);
  return rc;
}

static void expr_walk_prepare(qctx *q, bexpr *x, int *rc)
{
  if (x == NULL || *rc < 0)
    return;
  int r = sql__expr_prepare(q, x);
  if (r < 0)
    *rc = r;
}

/* runs the subqueries of all expressions of node p (not below) */
static int prepare_exprs(qctx *q, plan *p)
{
  int rc = 0;
  for (int k = 0; k < p->npreds; k++)
    expr_walk_prepare(q, p->preds[k], &rc);
  if (p->kind == P_PROJECT)
    for (int k = 0; k < p->ncols; k++)
      expr_walk_prepare(q, p->exprs[k], &rc);
  if (p->kind == P_JOIN) {
    for (int k = 0; k < p->nkeys; k++) {
      expr_walk_prepare(q, p->lkeys[k], &rc);
      expr_walk_prepare(q, p->rkeys[k], &rc);
    }
    expr_walk_prepare(q, p->cond, &rc);
  }
  if (p->kind == P_AGG) {
    for (int k = 0; k < p->ngroups; k++)
      expr_walk_prepare(q, p->groups[k], &rc);
    for (int k = 0; k < p->naggs; k++) {
      expr_walk_prepare(q, p->aggs[k].arg, &rc);
      expr_walk_prepare(q, p->aggs[k].arg2, &rc);
      expr_walk_prepare(q, p->aggs[k].filter, &rc);
    }
  }
  return rc;
}

/* Parquet: one morsel per row group kept by the statistics */
static int cut_row_groups(qctx *q, plan *p)
{
  node_rt *rt = rt_of(q, p);
  tobj **objs = NULL;
  int *rgs = NULL;
  size_t n = 0;
  err e;
  err_clear(&e);
  int rc = sql__pqt_cut(q, p, &objs, &rgs, &n, &e);
  if (rc < 0)
    return sql__qctx_fail(q, rc, &e);
  rt->morsels = xcalloc(n + 1, sizeof(morsel));
  sql__exec_defer(q, free, rt->morsels);
  for (size_t k = 0; k < n; k++) {
    rt->morsels[k].obj = objs[k];
    rt->morsels[k].range = rgs[k];
  }
  rt->nmorsels = n;
  free(objs);
  free(rgs);
  return 0;
}

/* how many times the query ran before with o's ranges not lining up */
static int seq_tries(const qctx *q, const char *name)
{
  int n = 0;
  for (int k = 0; k < q->nseq; k++)
    n += strcmp(q->seq_objs[k], name) == 0;
  return n;
}

static int cut_morsels(qctx *q, plan *p)
{
  node_rt *rt = rt_of(q, p);
  table *t = p->table;
  if (t->format == FMT_PARQUET)
    return cut_row_groups(q, p);
  uint64_t total = 0;
  for (size_t i = 0; i < t->nobjs; i++)
    total += t->objs[i].size;
  uint64_t msize = total / ((uint64_t)q->threads * 8 + 1);
  if (msize < (1u << 20))
    msize = 1u << 20;
  if (msize > (32u << 20))
    msize = 32u << 20;
  size_t n = 0;
  bool quotes = t->format == FMT_CSV && t->csv.escape == t->csv.quote;
  for (size_t i = 0; i < t->nobjs; i++) {
    tobj *o = &t->objs[i];
    /* Where a CSV range's first record starts, tried in turn after ranges
       that did not line up (verify_scan): the first line break after its
       start (a guess, checked against the range before; with RFC 4180
       quoting, only when no row reaches the caller before that check), the
       parity of the quotes before it (RFC 4180 quoting: a pass over the
       object that counts them), then the object as one range. */
    int tries = seq_tries(q, o->name);
    int ways = (q->csv_speculate ? 1 : 0) + (quotes ? 1 : 0);
    bool seq = o->codec != CODEC_NONE || o->sequential || (tries > 0 && tries >= ways);
    o->sequential = seq;
    o->nranges = seq || o->size == 0 ? 1 : (int)((o->size + msize - 1) / msize);
    n += (size_t)o->nranges;
  }
  rt->morsels = xcalloc(n + 1, sizeof(morsel));
  sql__exec_defer(q, free, rt->morsels);
  size_t k = 0;
  for (size_t i = 0; i < t->nobjs; i++) {
    tobj *o = &t->objs[i];
    o->firsts = xcalloc((size_t)o->nranges, sizeof(size_t));
    o->ends = xcalloc((size_t)o->nranges, sizeof(size_t));
    o->starts = xcalloc((size_t)o->nranges, sizeof(size_t));
    sql__exec_defer(q, free, o->firsts);
    sql__exec_defer(q, free, o->ends);
    sql__exec_defer(q, free, o->starts);
    o->quote = t->format == FMT_CSV && t->csv.escape == t->csv.quote ? (unsigned char)t->csv.quote
                                                                     : -1;
    for (int r = 0; r < o->nranges; r++)
      o->starts[r] = o->nranges == 1 ? 0 : (size_t)r * msize;
    bool guess = t->format == FMT_CSV && q->csv_speculate && seq_tries(q, o->name) == 0;
    if (guess && o->nranges > 1)
      atomic_store(&q->csv_guessed, true);
    if (o->quote >= 0 && o->nranges > 1 && !guess) {
      o->qcount = xmalloc(sizeof(int64_t) * (size_t)o->nranges);
      for (int r = 0; r < o->nranges; r++)
        o->qcount[r] = -1;
      pthread_cond_init(&o->qcv, NULL);
      sql__exec_defer(q, free, o->qcount);
    }
    atomic_store(&o->ranges_left, o->nranges);
    for (int r = 0; r < o->nranges; r++) {
      morsel *m = &rt->morsels[k++];
      m->obj = o;
      m->range = r;
      if (o->nranges == 1) {
        m->start = 0;
        m->stop = SIZE_MAX;
      } else {
        m->start = (size_t)r * msize;
        m->stop = r == o->nranges - 1 ? SIZE_MAX : (size_t)(r + 1) * msize;
      }
    }
  }
  rt->nmorsels = k;
  return 0;
}

/* after the pipeline: did the ranges of every object line up? */
static int verify_scan(qctx *q, plan *p)
{
  table *t = p->table;
  if (t->format != FMT_CSV)
    return 0;
  for (size_t i = 0; i < t->nobjs; i++) {
    tobj *o = &t->objs[i];
    for (int r = 1; r < o->nranges; r++) {
      if (o->ends[r - 1] != o->firsts[r]) {
        pthread_mutex_lock(&q->mu);
        if (q->resplit == NULL)
          q->resplit = o->name;
        pthread_mutex_unlock(&q->mu);
        err e;
        err_set(&e, ERR_INVALID, "object '%s' has a quoted field with a line break across a "
                "split point", o->name);
        return sql__qctx_fail(q, ERR_INVALID, &e);
      }
    }
  }
  return 0;
}

static int verify_tree(qctx *q, plan *p, bool top)
{
  if (is_breaker(p) && !(top && p->kind == P_JOIN))
    return 0;
  if (p->kind == P_SCAN)
    return verify_scan(q, p);
  if (p->child != NULL) {
    int rc = verify_tree(q, p->child, false);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* does the pipeline of p read an ordered rowset? */
static bool ordered_source(plan *p, bool top)
{
  if (is_breaker(p) && !(top && p->kind == P_JOIN))
    return p->rt != NULL && p->rt->rs != NULL && p->rt->rs->ordered;
  if (p->kind == P_SCAN)
    return false;
  return p->child != NULL && ordered_source(p->child, false);
}

static size_t source_units(plan *p, bool top)
{
  if (is_breaker(p) && !(top && p->kind == P_JOIN))
    return p->rt != NULL && p->rt->rs != NULL ? p->rt->rs->nchunks : 1;
  if (p->kind == P_SCAN)
    return p->rt != NULL ? p->rt->nmorsels : 1;
  return p->child != NULL ? source_units(p->child, false) : 1;
}

static int prepare(qctx *q, plan *p, bool top)
{
  node_rt *rt = rt_of(q, p);
  int rc;
  if (is_breaker(p) && !(top && p->kind == P_JOIN)) {
    if (rt->rs != NULL)
      return 0;
    rowset *r = NULL;
    switch (p->kind) {
    case P_AGG: rc = sql__exec_agg(q, p, &r); break;
    case P_SORT: rc = sql__exec_sort(q, p, &r); break;
    case P_WINDOW: rc = sql__exec_window(q, p, &r); break;
    case P_SETOP: rc = sql__exec_setop(q, p, &r); break;
    case P_JOIN: rc = sql__exec_join_outer(q, p, &r); break;
    case P_VALUES: {
      r = sql__rowset_new(q, p->ncols, p->cols);
      rc = 0;
      for (int i = 0; i < p->nrows && rc == 0; i++) {
        /* one row as a batch of constants */
        vec *cols = xcalloc((size_t)(p->ncols > 0 ? p->ncols : 1), sizeof(vec));
        uint8_t *nulls = xcalloc((size_t)(p->ncols > 0 ? p->ncols : 1), 1);
        value *vals = xcalloc((size_t)(p->ncols > 0 ? p->ncols : 1), sizeof(value));
        for (int c = 0; c < p->ncols; c++) {
          vals[c] = p->rows[i][c];
          nulls[c] = p->rows[i][c].null;
          cols[c].phys = (uint8_t)sql__phys(p->cols[c].type.t);
          cols[c].is_const = 1;
          cols[c].nulls = &nulls[c];
          if (cols[c].phys == PHYS_STR)
            cols[c].s = &vals[c].s;
          else
            cols[c].i = &vals[c].i;
        }
        batch b = {.n = 1, .nsel = 1, .ncols = p->ncols, .cols = cols};
        if (p->ncols > 0) {
          rc = sql__rowset_append(r, &b);
        } else {
          rs_chunk *c = rowset_tail(r);
          c->n++;
          r->rows++;
        }
        free(cols);
        free(nulls);
        free(vals);
      }
      break;
    }
    default: rc = ERR_INTERNAL; break;
    }
    if (rc < 0) {
      sql__rowset_free(r);
      return rc;
    }
    rt->rs = r;
    sql__exec_defer(q, defer_rowset, r);
    return 0;
  }
  if (rt->prepared)
    return 0;
  rt->prepared = true;
  if ((rc = prepare_exprs(q, p)) < 0)
    return rc;
  switch (p->kind) {
  case P_SCAN:
    if ((rc = sql__table_prune(q, p->table, p->preds, p->npreds)) < 0)
      return rc;
    return cut_morsels(q, p);
  case P_FILTER:
  case P_PROJECT:
  case P_LIMIT:
    return prepare(q, p->child, false);
  case P_JOIN:
    if ((rc = build_hash(q, p)) < 0)
      return rc;
    return prepare(q, p->child, false);
  default:
    return 0;
  }
}

/* ---- running a pipeline ---- */

typedef struct worker {
  pthread_t tid;
  qctx *q;
  plan *p;
  const pipe_sink *s;
  int thread;
  int rc;
  bool probe_top;   /* p is a RIGHT/FULL join run as its probe side */
} worker;

static void *worker_main(void *arg)
{
  worker *w = arg;
  qctx *q = w->q;
  op *chain = op_build(q, w->p, NULL, w->probe_top);
  void *state = w->s->init(w->s->arg, w->thread);
  int rc = 0;
  for (;;) {
    batch *b;
    rc = chain->next(chain, &b);
    if (rc <= 0)
      break;
    if ((rc = w->s->consume(state, b)) < 0)
      break;
  }
  int frc = w->s->finish(state);
  if (rc == 0)
    rc = frc;
  op_close(chain);
  w->rc = rc;
  return NULL;
}

static int pipeline_run(qctx *q, plan *p, const pipe_sink *s, int max_threads, bool top)
{
  int rc = prepare(q, p, top);
  if (rc < 0)
    return rc;
  if ((rc = sql__qctx_check(q)) < 0)
    return rc;
  int n = q->threads;
  if (max_threads > 0 && n > max_threads)
    n = max_threads;
  if (ordered_source(p, top))
    n = 1;
  size_t units = source_units(p, top);
  if ((size_t)n > units)
    n = units > 0 ? (int)units : 1;
  worker *ws = xcalloc((size_t)n, sizeof(worker));
  for (int i = 0; i < n; i++) {
    ws[i].q = q;
    ws[i].p = p;
    ws[i].s = s;
    ws[i].thread = i;
    ws[i].probe_top = top;
  }
  if (n == 1) {
    worker_main(&ws[0]);
  } else {
    for (int i = 0; i < n; i++)
      if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0)
        abort();
    for (int i = 0; i < n; i++)
      pthread_join(ws[i].tid, NULL);
  }
  rc = 0;
  for (int i = 0; i < n; i++)
    if (ws[i].rc < 0 && rc == 0)
      rc = ws[i].rc;
  free(ws);
  if (rc == 0 && !atomic_load(&q->failed))
    rc = verify_tree(q, p, top);
  if (atomic_load(&q->failed))
    return q->err_code ? q->err_code : ERR_INTERNAL;
  return rc;
}

int sql__exec_pipeline(qctx *q, plan *p, const pipe_sink *s, int max_threads)
{
  return pipeline_run(q, p, s, max_threads, false);
}

/* -- collect sink -- */

typedef struct collect {
  qctx *q;
  plan *p;
  rowset **locals;
  int n;
} collect;

static void *collect_init(void *arg, int thread)
{
  collect *c = arg;
  c->locals[thread] = sql__rowset_new(c->q, c->p->ncols, c->p->cols);
  return c->locals[thread];
}

static int collect_consume(void *state, batch *b)
{
  return sql__rowset_append(state, b);
}

static int collect_finish(void *state)
{
  (void)state;
  return 0;
}

int sql__exec_materialize(qctx *q, plan *p, rowset **out)
{
  *out = NULL;
  if (is_breaker(p)) {
    int rc = prepare(q, p, false);
    if (rc < 0)
      return rc;
    /* hand over a copy of the node's rowset: the caller owns *out */
    node_rt *rt = rt_of(q, p);
    rowset *r = sql__rowset_new(q, p->ncols, p->cols);
    for (size_t c = 0; c < rt->rs->nchunks && rc == 0; c++) {
      batch b;
      chunk_batch(rt->rs, c, &b);
      rc = sql__rowset_append(r, &b);
    }
    r->ordered = rt->rs->ordered;
    if (rc < 0) {
      sql__rowset_free(r);
      return rc;
    }
    *out = r;
    return 0;
  }
  collect c = {.q = q, .p = p};
  c.locals = xcalloc((size_t)q->threads + 1, sizeof(rowset *));
  pipe_sink s = {collect_init, collect_consume, collect_finish, &c};
  int rc = sql__exec_pipeline(q, p, &s, 0);
  rowset *r = sql__rowset_new(q, p->ncols, p->cols);
  for (int i = 0; i <= q->threads; i++) {
    if (c.locals[i] != NULL) {
      sql__rowset_move(r, c.locals[i]);
      sql__rowset_free(c.locals[i]);
    }
  }
  free(c.locals);
  if (rc < 0) {
    sql__rowset_free(r);
    return rc;
  }
  r->ordered = ordered_source(p, false);
  *out = r;
  return 0;
}

/* RIGHT and FULL joins: the probe side's output, then the build rows that
 * nothing matched, with NULLs on the left */
int sql__exec_join_outer(qctx *q, plan *p, rowset **out)
{
  rowset *r;
  collect c = {.q = q, .p = p};
  c.locals = xcalloc((size_t)q->threads + 1, sizeof(rowset *));
  pipe_sink s = {collect_init, collect_consume, collect_finish, &c};
  int rc = pipeline_run(q, p, &s, 0, true);
  r = sql__rowset_new(q, p->ncols, p->cols);
  for (int i = 0; i <= q->threads; i++) {
    if (c.locals[i] != NULL) {
      sql__rowset_move(r, c.locals[i]);
      sql__rowset_free(c.locals[i]);
    }
  }
  free(c.locals);
  if (rc < 0) {
    sql__rowset_free(r);
    return rc;
  }
  join_rt *j = rt_of(q, p)->join;
  int nl = p->child->ncols;
  int nr = p->right->ncols;
  vec *cols = xcalloc((size_t)(nl + nr) + 1, sizeof(vec));
  uint8_t *ones = xmalloc(COL_BATCH);
  int64_t *zeros = xcalloc(COL_BATCH, sizeof(str_ref));
  uint16_t *sel = xmalloc(sizeof(uint16_t) * COL_BATCH);
  memset(ones, 1, COL_BATCH);
  for (int k = 0; k < nl; k++) {
    cols[k].phys = (uint8_t)sql__phys(p->child->cols[k].type.t);
    cols[k].nulls = ones;
    cols[k].p = zeros;
  }
  for (size_t ci = 0; ci < j->build->nchunks && rc == 0; ci++) {
    rs_chunk *ch = j->build->chunks[ci];
    int m = 0;
    for (int rr = 0; rr < ch->n; rr++)
      if (!j->matched[ci * COL_BATCH + (size_t)rr])
        sel[m++] = (uint16_t)rr;
    if (m == 0)
      continue;
    for (int k = 0; k < nr; k++)
      cols[nl + k] = ch->cols[k];
    batch b = {.n = ch->n, .sel = sel, .nsel = m, .ncols = nl + nr, .cols = cols};
    rc = sql__rowset_append(r, &b);
  }
  free(cols);
  free(ones);
  free(zeros);
  free(sel);
  if (rc < 0) {
    sql__rowset_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

/* ---- the root: stream batches to the caller's thread ---- */

typedef struct rq {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  rowset **items;
  int cap;
  int head;
  int count;
  int producers;
  bool abort;
  qctx *q;
  plan *p;
} rq;

static void *rq_init(void *arg, int thread)
{
  (void)thread;
  return arg;
}

static int rq_consume(void *state, batch *b)
{
  rq *r = state;
  rowset *one = sql__rowset_new(r->q, r->p->ncols, r->p->cols);
  int rc = sql__rowset_append(one, b);
  if (rc < 0) {
    sql__rowset_free(one);
    return rc;
  }
  pthread_mutex_lock(&r->mu);
  while (r->count == r->cap && !r->abort && !atomic_load(&r->q->failed)) {
    struct timespec ts = time_deadline(CLOCK_REALTIME, 50);
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
  }
  if (r->abort || atomic_load(&r->q->failed)) {
    pthread_mutex_unlock(&r->mu);
    sql__rowset_free(one);
    return sql__qctx_check(r->q) < 0 ? sql__qctx_check(r->q) : ERR_INTERNAL;
  }
  r->items[(r->head + r->count) % r->cap] = one;
  r->count++;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return 0;
}

static int rq_finish(void *state)
{
  (void)state;
  return 0;
}

typedef struct stream_run {
  qctx *q;
  plan *p;
  rq *r;
  pipe_sink s;
  int rc;
  bool done;
} stream_run;

static void *stream_thread(void *arg)
{
  stream_run *sr = arg;
  qctx *q = sr->q;
  plan *p = sr->p;
  if (is_breaker(p)) {
    /* materialize here, then queue its chunks in order */
    int rc = prepare(q, p, false);
    if (rc == 0) {
      rowset *rs = rt_of(q, p)->rs;
      for (size_t c = 0; c < rs->nchunks && rc == 0; c++) {
        batch b;
        chunk_batch(rs, c, &b);
        if (b.n == 0)
          continue;
        rc = rq_consume(sr->r, &b);
      }
    }
    sr->rc = rc;
  } else {
    sr->rc = sql__exec_pipeline(q, p, &sr->s, 0);
  }
  pthread_mutex_lock(&sr->r->mu);
  sr->done = true;
  pthread_cond_broadcast(&sr->r->cv);
  pthread_mutex_unlock(&sr->r->mu);
  return NULL;
}

/* whether rows of a CSV scan reach the caller without a breaker between:
   then they leave before verify_scan has checked its ranges */
static bool csv_streams(const plan *p)
{
  if (p == NULL || (is_breaker(p) && p->kind != P_JOIN))
    return false;
  if (p->kind == P_SCAN)
    return p->table != NULL && p->table->format == FMT_CSV;
  return csv_streams(p->child) || csv_streams(p->right);
}

int sql__exec_stream(qctx *q, plan *p, batch_fn fn, void *arg)
{
  q->csv_speculate = !q->csv_no_guess && !csv_streams(p);
  rq r = {.cap = 8, .q = q, .p = p};
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);
  r.items = xcalloc((size_t)r.cap, sizeof(rowset *));
  stream_run sr = {.q = q, .p = p, .r = &r};
  sr.s = (pipe_sink){rq_init, rq_consume, rq_finish, &r};
  pthread_t tid;
  if (pthread_create(&tid, NULL, stream_thread, &sr) != 0)
    abort();
  int rc = 0;
  int64_t last_progress = time_mono_us();
  for (;;) {
    pthread_mutex_lock(&r.mu);
    while (r.count == 0 && !sr.done) {
      struct timespec ts = time_deadline(CLOCK_REALTIME, 100);
      pthread_cond_timedwait(&r.cv, &r.mu, &ts);
      if (r.count == 0 && !sr.done) {
        pthread_mutex_unlock(&r.mu);
        sql__qctx_check(q); /* cancellation and time limit while waiting */
        int64_t now = time_mono_us();
        if (q->progress != NULL && now - last_progress >= 500000) {
          last_progress = now;
          q->progress(q->progress_ctx);
        }
        pthread_mutex_lock(&r.mu);
      }
    }
    if (r.count == 0 && sr.done) {
      pthread_mutex_unlock(&r.mu);
      break;
    }
    rowset *one = r.items[r.head];
    r.head = (r.head + 1) % r.cap;
    r.count--;
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);
    for (size_t c = 0; c < one->nchunks && rc == 0; c++) {
      batch b;
      chunk_batch(one, c, &b);
      err e;
      err_clear(&e);
      if ((rc = fn(arg, &b, &e)) < 0)
        sql__qctx_fail(q, rc, &e);
    }
    sql__rowset_free(one);
    int64_t now = time_mono_us();
    if (q->progress != NULL && now - last_progress >= 500000) {
      last_progress = now;
      q->progress(q->progress_ctx);
    }
    if (rc < 0 || atomic_load(&q->failed)) {
      pthread_mutex_lock(&r.mu);
      r.abort = true;
      pthread_cond_broadcast(&r.cv);
      pthread_mutex_unlock(&r.mu);
    }
  }
  pthread_join(tid, NULL);
  while (r.count > 0) {
    sql__rowset_free(r.items[r.head]);
    r.head = (r.head + 1) % r.cap;
    r.count--;
  }
  free(r.items);
  pthread_mutex_destroy(&r.mu);
  pthread_cond_destroy(&r.cv);
  if (atomic_load(&q->failed))
    return q->err_code ? q->err_code : ERR_INTERNAL;
  return sr.rc < 0 ? sr.rc : rc;
}

/* ---- subqueries in expressions ---- */

int sql__expr_prepare(qctx *q, bexpr *e)
{
  if (e == NULL)
    return 0;
  int rc;
  for (int i = 0; i < e->nargs; i++)
    if ((rc = sql__expr_prepare(q, e->args[i])) < 0)
      return rc;
  if (e->kind == BX_SUBQ || e->kind == BX_EXISTS) {
    rowset *r;
    if ((rc = sql__exec_materialize(q, e->sub, &r)) < 0)
      return rc;
    value v = {.null = true};
    if (e->kind == BX_EXISTS) {
      v.null = false;
      v.i = (r->rows > 0) != e->neg;
    } else {
      if (r->rows > 1) {
        sql__rowset_free(r);
        err er;
        err_set(&er, ERR_INVALID, "scalar subquery returned more than one row");
        return sql__qctx_fail(q, ERR_INVALID, &er);
      }
      if (r->rows == 1) {
        for (size_t c = 0; c < r->nchunks; c++) {
          if (r->chunks[c]->n > 0) {
            v = vec_get(&r->chunks[c]->cols[0], 0);
            break;
          }
        }
        if (!v.null && r->phys[0] == PHYS_STR)
          v.s.ptr = arena_strndup(q->a, v.s.ptr, v.s.len);
      }
    }
    sql__rowset_free(r);
    e->kind = BX_CONST;
    e->v = v;
    e->nargs = 0;
    return 0;
  }
  if (e->kind == BX_IN_SET && e->set == NULL) {
    rowset *r;
    if ((rc = sql__exec_materialize(q, e->sub, &r)) < 0)
      return rc;
    valset *s = sql__valset_new(r->phys[0]);
    for (size_t c = 0; c < r->nchunks; c++) {
      rs_chunk *ch = r->chunks[c];
      for (int i = 0; i < ch->n; i++)
        sql__valset_add(s, vec_get(&ch->cols[0], i));
    }
    sql__rowset_free(r);
    e->set = s;
    sql__exec_defer(q, defer_valset, s);
    return sql__qctx_mem(q, (int64_t)sql__valset_bytes(s));
  }
  return 0;
}
