/* sql/scan_parquet.c -- tables of Parquet objects: the schema from the first
 * object's footer, row groups as morsels (pruned by min/max statistics of
 * the pushed filters), and a cursor that reads one row group's projected
 * column chunks and hands them out as batches.
 *
 * What is read (and counted as bytes scanned, as Athena counts): each
 * object's tail and footer once, then per kept row group one ranged read
 * per projected column chunk. Nothing else.
 *
 * Invariants:
 *   (1) tobj.pq (the parsed footer) is set before the pipeline starts and
 *       only read afterwards, so workers share it without locks.
 *   (2) Columns are matched to a file's fields by name (case-insensitive);
 *       a file without a column gives NULLs; a field of another type is an
 *       error naming the object.
 *   (3) A batch's vectors point into the cursor's decoded columns; they
 *       stay valid until the next call (the cursor keeps its row group
 *       until it moves to the next one).
 *   (4) With pushed filters, a filter on one column whose chunk is wholly
 *       dictionary-encoded runs first over the dictionary (and NULL): when
 *       no value passes, the row group is skipped after reading only the
 *       dictionary page.
 *   (5) With pushed filters, a row group's filter columns are read first
 *       and the filters run over all its rows; the other columns are read
 *       only when some row passes (a selective filter that statistics
 *       cannot prune, such as an equality on unsorted data, then reads
 *       only the filter column of most row groups).
 *   (6) Under a top-N whose rows reach the sort unchanged (scan_topn), a
 *       row group's sort key column is read first; only its rows whose key
 *       is no worse than the bar (the keep-th best key emitted so far by
 *       any scan, or by the groups' statistics) are kept, and the other
 *       columns decode only the pages holding them. Keys equal to the bar
 *       stay (ties are the sort's to break), NULLs stay when they sort
 *       first, NaN always stays.
 *   (7) A column decoded whole from a chunk whose data pages all use its
 *       dictionary keeps each row's code (pq_column.codes) and a number
 *       unique to that decoding (gen): the filters and the aggregation
 *       above work per dictionary entry (sql__pqt_cur_codes). Its values
 *       are not written out for the row group: each batch's are looked up
 *       from the codes into a buffer of the cursor (bbuf, COL_BATCH
 *       values, so they stay in the cache). Compacted columns (page
 *       indexes, top-N) are written out first and drop their codes.
 *
 * Start reading at sql__pqt_open().
 */
#include "exec.h"
#include "formats/parquet.h"

#include "base/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- reading bytes ---- */

static int read_at(int fd, const char *name, uint64_t off, size_t n, uint8_t *out, err *e)
{
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, out + got, n - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return err_set(e, ERR_IO, "cannot read '%s': %s", name, strerror(errno));
    if (r == 0)
      return err_set(e, ERR_INVALID, "cannot read '%s': the object is shorter than it was",
                     name);
    got += (size_t)r;
  }
  return 0;
}

static void pqt_free_file(void *p)
{
  pq_file_free(p);
}

/* reads and parses an object's footer (once) */
static int load_footer(qctx *q, tobj *o, err *e)
{
  if (o->pq != NULL)
    return 0;
  int fd = -1;
  uint64_t size = 0;
  int rc = q->src->open(q->src->ctx, o->bucket, o->key, &fd, &size, e);
  if (rc < 0)
    return rc;
  uint8_t tail[PARQUET_FOOTER_TAIL];
  uint32_t flen = 0;
  uint8_t head[PARQUET_MAGIC_LEN];
  if (size >= PARQUET_MAGIC_LEN + PARQUET_FOOTER_TAIL) {
    if ((rc = read_at(fd, o->name, size - PARQUET_FOOTER_TAIL, PARQUET_FOOTER_TAIL, tail, e)) < 0 ||
        (rc = read_at(fd, o->name, 0, PARQUET_MAGIC_LEN, head, e)) < 0) {
      close(fd);
      return rc;
    }
    atomic_fetch_add(&q->bytes_scanned, PARQUET_FOOTER_TAIL + PARQUET_MAGIC_LEN);
  }
  if ((rc = pq_footer_len(o->name, size, tail, sizeof tail, &flen, e)) < 0) {
    close(fd);
    return rc;
  }
  if (memcmp(head, PARQUET_MAGIC, PARQUET_MAGIC_LEN) != 0) {
    close(fd);
    return err_set(e, ERR_INVALID, "'%s' is not a Parquet file: it does not start with the "
                   "magic 'PAR1'", o->name);
  }
  if ((rc = sql__qctx_mem(q, flen)) < 0) {
    close(fd);
    return err_set(e, rc, "the footer of '%s' passed the query's memory limit", o->name);
  }
  uint8_t *fb = xmalloc(flen);
  rc = read_at(fd, o->name, size - PARQUET_FOOTER_TAIL - flen, flen, fb, e);
  close(fd);
  if (rc == 0) {
    atomic_fetch_add(&q->bytes_scanned, flen);
    atomic_fetch_add(&q->objects_scanned, 1);
    pq_file *f = NULL;
    rc = pq_file_parse(o->name, size, fb, flen, &f, e);
    if (rc == 0) {
      o->pq = f;
      sql__exec_defer(q, pqt_free_file, f);
    }
  }
  free(fb);
  sql__qctx_mem(q, -(int64_t)flen);
  return rc;
}

static fmt_type out_fmt(pq_out o)
{
  switch (o) {
  case PQO_BOOLEAN: return FT_BOOLEAN;
  case PQO_BIGINT: return FT_BIGINT;
  case PQO_DECIMAL: return FT_BIGINT;
  case PQO_DOUBLE: return FT_DOUBLE;
  case PQO_DATE: return FT_DATE;
  case PQO_TIMESTAMP: return FT_TIMESTAMP;
  default: return FT_VARCHAR;
  }
}

static stype out_stype(const pq_field *f)
{
  switch (f->out) {
  case PQO_BOOLEAN: return (stype){SQL_BOOLEAN, 0, 0};
  case PQO_BIGINT: return (stype){SQL_BIGINT, 0, 0};
  case PQO_DECIMAL: return (stype){SQL_DECIMAL, f->prec, f->scale};
  case PQO_DOUBLE: return (stype){SQL_DOUBLE, 0, 0};
  case PQO_DATE: return (stype){SQL_DATE, 0, 0};
  case PQO_TIMESTAMP: return (stype){SQL_TIMESTAMP, 0, 0};
  default: return (stype){SQL_VARCHAR, 0, 0};
  }
}

int sql__pqt_open(qctx *q, table *t, tobj *first, err *e)
{
  int rc = load_footer(q, first, e);
  if (rc < 0)
    return rc;
  const pq_file *f = first->pq;
  t->format = FMT_PARQUET;
  t->ncols = f->nfields;
  t->names = arena_alloc(q->a, sizeof(char *) * (size_t)(f->nfields + 1));
  t->types = arena_alloc(q->a, sizeof(fmt_type) * (size_t)(f->nfields + 1));
  t->stypes = arena_alloc(q->a, sizeof(stype) * (size_t)(f->nfields + 1));
  for (int i = 0; i < f->nfields; i++) {
    t->names[i] = arena_strdup(q->a, f->fields[i].name);
    t->types[i] = out_fmt(f->fields[i].out);
    t->stypes[i] = out_stype(&f->fields[i]);
  }
  return 0;
}

bool sql__pqt_sniff(const char *head, size_t n)
{
  return n >= PARQUET_MAGIC_LEN && memcmp(head, PARQUET_MAGIC, PARQUET_MAGIC_LEN) == 0;
}

/* ---- which field of a file is a table column ---- */

static int field_of(const table *t, const pq_file *f, int col, err *e)
{
  for (int i = 0; i < f->nfields; i++) {
    if (strcasecmp(f->fields[i].name, t->names[col]) != 0)
      continue;
    stype st = out_stype(&f->fields[i]);
    const stype *want = &t->stypes[col];
    if (st.t != want->t || (st.t == SQL_DECIMAL && st.scale != want->scale))
      return err_set(e, ERR_INVALID,
                     "column '%s' of '%s' has another type than in the table's first object",
                     t->names[col], f->name);
    return i;
  }
  return -1;
}

/* ---- row-group pruning by statistics ---- */

/* where statistics come from: a row group's chunks, or one page of one
   leaf (a ColumnIndex entry; other leaves are then unknown) */
typedef struct statsrc {
  const pq_file *f;
  int rg;
  int leaf;                 /* page: its leaf, else -1 */
  const pq_stats *page;
  int64_t page_rows;
} statsrc;

static const pq_stats *src_stats(const statsrc *s, int leaf, int64_t *rows)
{
  if (s->leaf >= 0) {
    *rows = s->page_rows;
    return leaf == s->leaf ? s->page : NULL;
  }
  *rows = s->f->rgs[s->rg].num_rows;
  return &s->f->rgs[s->rg].chunks[leaf].st;
}

/* the column and constant of a comparison `col op const` (op mirrored for
   `const op col`); false for other shapes */
static bool cmp_parts(const bexpr *x, const bexpr **c, const bexpr **k, int *op)
{
  if (x->kind != BX_CMP || x->nargs != 2)
    return false;
  *op = x->op;
  if (x->args[0]->kind == BX_COL && x->args[1]->kind == BX_CONST) {
    *c = x->args[0];
    *k = x->args[1];
    return true;
  }
  if (x->args[1]->kind == BX_COL && x->args[0]->kind == BX_CONST) {
    *c = x->args[1];
    *k = x->args[0];
    /* mirror: const < col  ==  col > const */
    int o = *op;
    *op = o == CMP_LT ? CMP_GT : o == CMP_LE ? CMP_GE : o == CMP_GT ? CMP_LT
        : o == CMP_GE ? CMP_LE : o;
    return true;
  }
  return false;
}

/* may some row (of the group or page src describes) satisfy x? (true when
   unsure) */
static bool maybe(const table *t, const statsrc *src, const int *fmap, const bexpr *x)
{
  const pq_file *f = src->f;
  if (x->kind == BX_AND) {
    for (int k = 0; k < x->nargs; k++)
      if (!maybe(t, src, fmap, x->args[k]))
        return false;
    return true;
  }
  const bexpr *c = NULL, *k = NULL;
  int op = -1;
  int64_t rows = 0;
  if (x->kind == BX_ISNULL && x->nargs == 1 && x->args[0]->kind == BX_COL && !x->neg) {
    int col = x->args[0]->colno;
    if (col < 0 || col >= t->ncols)
      return true;
    if (fmap[col] < 0)
      return true;
    const pq_field *fd = &f->fields[fmap[col]];
    if (fd->nested)
      return true;
    const pq_stats *st = src_stats(src, fd->first_leaf, &rows);
    return st == NULL || st->null_count != 0;
  }
  if (!cmp_parts(x, &c, &k, &op))
    return true;
  if (k->v.null || op == CMP_NE || op < 0)
    return true;
  int col = c->colno;
  if (col < 0 || col >= t->ncols || fmap[col] < 0)
    return true;
  const pq_field *fd = &f->fields[fmap[col]];
  if (fd->nested)
    return true;
  stype ct = c->type, kt = k->type;
  if (ct.t != t->stypes[col].t || kt.t != ct.t ||
      (ct.t == SQL_DECIMAL && (kt.scale != ct.scale || t->stypes[col].scale != ct.scale)))
    return true;
  const pq_stats *st = src_stats(src, fd->first_leaf, &rows);
  if (st == NULL)
    return true;
  if (st->null_count >= 0 && st->null_count == rows && rows > 0)
    return false;   /* all NULL: no comparison is true */
  int phys = sql__phys(ct.t);
  value lo = {0}, hi = {0};
  double dlo = 0, dhi = 0;
  if (!pq_stat_value(f, fd->first_leaf, st->min, st->min_len, &lo.i, &dlo, &lo.s) ||
      !pq_stat_value(f, fd->first_leaf, st->max, st->max_len, &hi.i, &dhi, &hi.s))
    return true;
  if (phys == PHYS_F64) {
    lo.f = dlo;
    hi.f = dhi;
    /* NaN sorts above everything and is left out of statistics */
    if (op == CMP_GT || op == CMP_GE || k->v.f != k->v.f)
      return true;
  }
  value v = k->v;
  switch (op) {
  case CMP_EQ: return sql__value_cmp(phys, v, lo) >= 0 && sql__value_cmp(phys, v, hi) <= 0;
  case CMP_LT: return sql__value_cmp(phys, lo, v) < 0;
  case CMP_LE: return sql__value_cmp(phys, lo, v) <= 0;
  case CMP_GT: return sql__value_cmp(phys, hi, v) > 0;
  case CMP_GE: return sql__value_cmp(phys, hi, v) >= 0;
  }
  return true;
}

static bool tn_norm(const scan_topn *tn, const void *p, int64_t i, uint64_t *out);

/* the best key a row group holds by its statistics (false: unknown);
   *nulls: it may hold NULLs. An integer column's min and max are values of
   its rows (only byte arrays may be truncated bounds). */
static bool tn_group_best(const scan_topn *tn, const tobj *o, int rg, uint64_t *best,
                          bool *nulls)
{
  const pq_file *f = o->pq;
  int fi = o->pqmap[tn->col];
  if (tn->phys != PHYS_I64 || fi < 0 || f->fields[fi].nested)
    return false;   /* (NaN is left out of DOUBLE statistics) */
  int leaf = f->fields[fi].first_leaf;
  const pq_stats *st = &f->rgs[rg].chunks[leaf].st;
  int64_t lo, hi;
  double dd;
  str_ref ss;
  if (!pq_stat_value(f, leaf, st->min, st->min_len, &lo, &dd, &ss) ||
      !pq_stat_value(f, leaf, st->max, st->max_len, &hi, &dd, &ss))
    return false;
  *nulls = st->null_count != 0;
  return tn_norm(tn, tn->desc ? (const void *)&hi : (const void *)&lo, 0, best);
}

typedef struct rgbest {
  uint64_t best;
  bool known;
  tobj *o;
  int rg;
} rgbest;

static int rgbest_cmp(const void *a, const void *b)
{
  const rgbest *x = a, *y = b;
  if (x->known != y->known)
    return x->known ? -1 : 1;
  if (x->best != y->best)
    return x->best < y->best ? -1 : 1;
  return 0;
}

/* Under a top-N: the row groups whose best key (by statistics) is best
   come first, so the scans' bars tighten at once. Without filters every
   group's best key is a row the scan emits, so the keep-th best of them is
   a bar already: groups that cannot beat it are dropped unread. Returns
   the groups left. */
static size_t topn_order(plan *p, tobj **os, int *gs, size_t n)
{
  scan_topn *tn = p->topn;
  if (n < 2)
    return n;
  rgbest *b = xcalloc(n, sizeof *b);
  size_t known = 0;
  for (size_t i = 0; i < n; i++) {
    bool nulls = true;
    b[i].o = os[i];
    b[i].rg = gs[i];
    b[i].known = tn_group_best(tn, os[i], gs[i], &b[i].best, &nulls) &&
                 !(nulls && tn->nulls_first);
    known += b[i].known;
  }
  qsort(b, n, sizeof *b, rgbest_cmp);
  size_t m = n;
  if (p->npreds == 0 && known >= tn->keep && tn->keep > 0) {
    uint64_t bar = b[tn->keep - 1].best;
    atomic_store(&tn->bar, bar);
    m = 0;
    for (size_t i = 0; i < n; i++)
      if (!b[i].known || b[i].best <= bar)
        b[m++] = b[i];
  }
  for (size_t i = 0; i < m; i++) {
    os[i] = b[i].o;
    gs[i] = b[i].rg;
  }
  free(b);
  return m;
}

int sql__pqt_cut(qctx *q, plan *p, tobj ***objs, int **rgs, size_t *n, err *e)
{
  table *t = p->table;
  size_t cap = 0, k = 0;
  tobj **os = NULL;
  int *gs = NULL;
  int *fmap = xcalloc((size_t)t->ncols + 1, sizeof(int));
  int rc = 0;
  for (size_t i = 0; i < t->nobjs && rc == 0; i++) {
    tobj *o = &t->objs[i];
    if (o->size == 0)
      continue;   /* an empty object has no rows (and no footer) */
    if ((rc = load_footer(q, o, e)) < 0)
      break;
    const pq_file *f = o->pq;
    o->pqmap = arena_alloc(q->a, sizeof(int) * (size_t)(t->ncols + 1));
    for (int c = 0; c < t->ncols && rc == 0; c++) {
      err e2;
      err_clear(&e2);
      int fi = field_of(t, f, c, &e2);
      if (fi < -1) {
        rc = err_set(e, ERR_INVALID, "%s", e2.msg);
        break;
      }
      o->pqmap[c] = fi;
      fmap[c] = fi;
    }
    if (rc < 0)
      break;
    for (int g = 0; g < f->nrgs; g++) {
      if (f->rgs[g].num_rows == 0)
        continue;
      bool keep = true;
      statsrc src = {.f = f, .rg = g, .leaf = -1};
      for (int pi = 0; pi < p->npreds && keep; pi++)
        keep = maybe(t, &src, fmap, p->preds[pi]);
      if (!keep)
        continue;
      if (k == cap) {
        cap = cap ? cap * 2 : 64;
        os = xrealloc(os, sizeof(tobj *) * cap);
        gs = xrealloc(gs, sizeof(int) * cap);
      }
      os[k] = o;
      gs[k] = g;
      k++;
    }
    atomic_store(&o->ranges_left, 0);
  }
  free(fmap);
  if (rc < 0) {
    free(os);
    free(gs);
    return rc;
  }
  if (p->topn != NULL)
    k = topn_order(p, os, gs, k);
  *objs = os;
  *rgs = gs;
  *n = k;
  return 0;
}

/* ---- the cursor over one row group ---- */

struct pqt_cur {
  tobj *obj;
  int rg;
  int64_t rows;
  int64_t pos;
  int64_t bpos;         /* first row of the last batch handed out */
  uint64_t *gen;        /* per used column: its codes' decoding (invariant 7) */
  void **bbuf;          /* per used column: a batch of values looked up by code */
  int ncols;
  int *cols;            /* table columns */
  pq_column *data;      /* per used column */
  bool *absent;         /* the file has no such field: NULLs */
  bool *loaded;         /* read and decoded (else NULLs for now) */
  uint8_t **chunks;     /* raw chunk bytes of the row group (strings point in) */
  int nchunks;
  int64_t charged;
  pq_column dict;       /* sql__pqt_cur_dict's dictionary */
  uint8_t *dictbytes;
  pq_pool *pool;        /* buffers reused from row group to row group */
  /* page index pruning (sql__pqt_cur_pages): the row ranges [b, e) of the
     group that may pass the filters (NULL: all rows), and the page
     indexes read for it, per leaf (state 0 not read, 1 read, -1 none) */
  int64_t *rr;
  int nrr;
  pq_pageidx *pidx;
  int8_t *pstate;
  uint8_t **pbytes;
  int npidx;
  /* top-N (sql__pqt_cur_topn): the best keys this scan has emitted, a
     max-heap of at most keep of them (the root is the bar) */
  uint64_t *heap;
  size_t nheap;
};

pqt_cur *sql__pqt_cur_new(const int *cols, int ncols)
{
  pqt_cur *c = xcalloc(1, sizeof *c);
  c->ncols = ncols;
  c->cols = xcalloc((size_t)ncols + 1, sizeof(int));
  c->data = xcalloc((size_t)ncols + 1, sizeof(pq_column));
  c->absent = xcalloc((size_t)ncols + 1, sizeof(bool));
  c->loaded = xcalloc((size_t)ncols + 1, sizeof(bool));
  c->gen = xcalloc((size_t)ncols + 1, sizeof(uint64_t));
  c->bbuf = xcalloc((size_t)ncols + 1, sizeof(void *));
  memcpy(c->cols, cols, sizeof(int) * (size_t)ncols);
  c->pool = pq_pool_new();
  return c;
}

void sql__pqt_cur_close(qctx *q, pqt_cur *c)
{
  if (c == NULL)
    return;
  for (int k = 0; k < c->ncols; k++) {
    pq_column_recycle(&c->data[k], c->pool);
    c->loaded[k] = false;
  }
  pq_column_release(&c->dict);
  free(c->dictbytes);
  c->dictbytes = NULL;
  for (int k = 0; k < c->nchunks; k++)
    pq_pool_give(c->pool, c->chunks[k]);
  free(c->chunks);
  c->chunks = NULL;
  c->nchunks = 0;
  if (c->charged)
    sql__qctx_mem(q, -c->charged);
  c->charged = 0;
  free(c->rr);
  c->rr = NULL;
  c->nrr = 0;
  for (int k = 0; k < c->npidx; k++) {
    if (c->pstate[k] == 1)
      pq_page_index_free(&c->pidx[k]);
    free(c->pbytes[k]);
  }
  free(c->pidx);
  free(c->pstate);
  free(c->pbytes);
  c->pidx = NULL;
  c->pstate = NULL;
  c->pbytes = NULL;
  c->npidx = 0;
  c->obj = NULL;
}

void sql__pqt_cur_free(qctx *q, pqt_cur *c)
{
  if (c == NULL)
    return;
  sql__pqt_cur_close(q, c);
  free(c->cols);
  free(c->data);
  free(c->absent);
  free(c->loaded);
  free(c->gen);
  for (int k = 0; k < c->ncols; k++)
    free(c->bbuf[k]);
  free(c->bbuf);
  free(c->heap);
  pq_pool_free(c->pool);
  free(c);
}

int sql__pqt_cur_open(qctx *q, table *t, pqt_cur *c, tobj *o, int rg, err *e)
{
  sql__pqt_cur_close(q, c);
  const pq_file *f = o->pq;
  c->obj = o;
  c->rg = rg;
  c->rows = f->rgs[rg].num_rows;
  c->pos = 0;
  c->bpos = 0;
  int nleaves = 0;
  for (int k = 0; k < c->ncols; k++) {
    int fi = o->pqmap[c->cols[k]];
    c->absent[k] = fi < 0;
    c->loaded[k] = false;
    if (fi >= 0)
      nleaves += f->fields[fi].nleaves;
  }
  c->chunks = xcalloc((size_t)nleaves + 1, sizeof(uint8_t *));
  (void)t;
  return 0;
}

/* ---- page indexes ---- */

/* the page index of leaf `leaf` of the cursor's row group, read once (its
   bytes counted as scanned): 1 there, 0 the file has none, or a failure */
static int load_pidx(qctx *q, pqt_cur *c, int leaf, err *e)
{
  tobj *o = c->obj;
  const pq_file *f = o->pq;
  if (c->pidx == NULL) {
    c->npidx = f->nleaves;
    c->pidx = xcalloc((size_t)f->nleaves + 1, sizeof(pq_pageidx));
    c->pstate = xcalloc((size_t)f->nleaves + 1, 1);
    c->pbytes = xcalloc((size_t)f->nleaves + 1, sizeof(uint8_t *));
  }
  if (c->pstate[leaf] != 0)
    return c->pstate[leaf] > 0;
  c->pstate[leaf] = -1;
  uint64_t oo, ol, co, cl;
  pq_page_index_ranges(f, c->rg, leaf, &oo, &ol, &co, &cl);
  if (ol == 0 || ol > (16u << 20) || cl > (64u << 20))
    return 0;
  int fd = -1;
  uint64_t size = 0;
  int rc = q->src->open(q->src->ctx, o->bucket, o->key, &fd, &size, e);
  if (rc < 0)
    return rc;
  uint8_t *b = xmalloc(ol + cl + 1);
  if (size != f->size)
    rc = err_set(e, ERR_INVALID, "'%s' changed during the query", o->name);
  else if ((rc = read_at(fd, o->name, oo, ol, b, e)) == 0 && cl > 0)
    rc = read_at(fd, o->name, co, cl, b + ol, e);
  close(fd);
  if (rc < 0) {
    free(b);
    return rc;
  }
  atomic_fetch_add(&q->bytes_scanned, ol + cl);
  rc = pq_page_index_parse(f, c->rg, leaf, b, ol, cl ? b + ol : NULL, cl, &c->pidx[leaf], e);
  if (rc < 0) {
    free(b);
    return rc;
  }
  c->pbytes[leaf] = b;
  c->pstate[leaf] = 1;
  return 1;
}

/* row ranges: sorted, disjoint [b, e) pairs */
typedef struct rset {
  int64_t *r;
  int n;
  int cap;
} rset;

static void rs_add(rset *s, int64_t b, int64_t e)
{
  if (s->n > 0 && s->r[2 * s->n - 1] == b) {
    s->r[2 * s->n - 1] = e;
    return;
  }
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 8;
    s->r = xrealloc(s->r, sizeof(int64_t) * 2 * (size_t)s->cap);
  }
  s->r[2 * s->n] = b;
  s->r[2 * s->n + 1] = e;
  s->n++;
}

static rset rs_and(const rset *a, const rset *b)
{
  rset o = {0};
  int i = 0, j = 0;
  while (i < a->n && j < b->n) {
    int64_t lo = a->r[2 * i] > b->r[2 * j] ? a->r[2 * i] : b->r[2 * j];
    int64_t hi = a->r[2 * i + 1] < b->r[2 * j + 1] ? a->r[2 * i + 1] : b->r[2 * j + 1];
    if (lo < hi)
      rs_add(&o, lo, hi);
    if (a->r[2 * i + 1] < b->r[2 * j + 1])
      i++;
    else
      j++;
  }
  return o;
}

/* the rows of the group where x may be true, by the ColumnIndex of the
   one column a comparison reads (all rows when unsure) */
static int ranges_of(qctx *q, const table *t, pqt_cur *c, const bexpr *x, rset *out, err *e)
{
  const pq_file *f = c->obj->pq;
  int64_t rows = f->rgs[c->rg].num_rows;
  out->n = 0;
  if (x->kind == BX_AND) {
    rs_add(out, 0, rows);
    for (int k = 0; k < x->nargs && out->n > 0; k++) {
      rset one = {0};
      int rc = ranges_of(q, t, c, x->args[k], &one, e);
      if (rc < 0) {
        free(one.r);
        return rc;
      }
      rset both = rs_and(out, &one);
      free(one.r);
      free(out->r);
      *out = both;
    }
    return 0;
  }
  const bexpr *cx = NULL, *kx = NULL;
  int op;
  int col = -1;
  if (x->kind == BX_ISNULL && x->nargs == 1 && x->args[0]->kind == BX_COL && !x->neg)
    col = x->args[0]->colno;
  else if (cmp_parts(x, &cx, &kx, &op))
    col = cx->colno;
  int fi = col >= 0 && col < t->ncols ? c->obj->pqmap[col] : -1;
  if (fi < 0 || f->fields[fi].nested) {
    rs_add(out, 0, rows);
    return 0;
  }
  int leaf = f->fields[fi].first_leaf;
  int rc = load_pidx(q, c, leaf, e);
  if (rc < 0)
    return rc;
  const pq_pageidx *pi = &c->pidx[leaf];
  if (rc == 0 || !pi->has_ci) {
    rs_add(out, 0, rows);
    return 0;
  }
  for (int k = 0; k < pi->n; k++) {
    statsrc src = {.f = f, .rg = c->rg, .leaf = leaf, .page = &pi->st[k],
                   .page_rows = pi->first_row[k + 1] - pi->first_row[k]};
    if (maybe(t, &src, c->obj->pqmap, x))
      rs_add(out, pi->first_row[k], pi->first_row[k + 1]);
  }
  return 0;
}

int sql__pqt_cur_pages(qctx *q, const table *t, pqt_cur *c, bexpr *const *preds, int npreds,
                       err *e)
{
  if (c->obj == NULL || npreds == 0)
    return 1;
  const pq_file *f = c->obj->pq;
  bool any = false;
  for (int l = 0; l < f->nleaves && !any; l++)
    any = f->rgs[c->rg].chunks[l].ci_off >= 0 && f->rgs[c->rg].chunks[l].oi_off >= 0;
  if (!any)
    return 1;
  int64_t rows = f->rgs[c->rg].num_rows;
  rset all = {0};
  rs_add(&all, 0, rows);
  for (int k = 0; k < npreds && all.n > 0; k++) {
    rset one = {0};
    int rc = ranges_of(q, t, c, preds[k], &one, e);
    if (rc < 0) {
      free(one.r);
      free(all.r);
      return rc;
    }
    rset both = rs_and(&all, &one);
    free(one.r);
    free(all.r);
    all = both;
  }
  if (all.n == 0) {
    free(all.r);
    return 0;
  }
  if (all.n == 1 && all.r[0] == 0 && all.r[1] == rows) {
    free(all.r);
    return 1;
  }
  c->rr = all.r;
  c->nrr = all.n;
  c->rows = 0;
  for (int k = 0; k < all.n; k++)
    c->rows += all.r[2 * k + 1] - all.r[2 * k];
  return 1;
}

/* a column kept as dictionary codes (invariant 7) written out as values,
   its codes dropped */
static void materialize(pqt_cur *c, pq_column *d)
{
  if (d->codes == NULL)
    return;
  if (d->p == NULL) {
    if (d->phys == PHYS_STR) {
      str_ref *o = pq_pool_take(c->pool, (size_t)d->n * sizeof(str_ref) + 1);
      const str_ref *ds = d->dict;
      for (int64_t r = 0; r < d->n; r++)
        o[r] = ds[d->codes[r]];
      d->s = o;
    } else {
      int64_t *o = pq_pool_take(c->pool, (size_t)d->n * 8 + 1);
      const int64_t *di = d->dict;
      for (int64_t r = 0; r < d->n; r++)
        o[r] = di[d->codes[r]];
      d->i = o;
    }
  }
  pq_pool_give(c->pool, d->codes);
  d->codes = NULL;
}

/* keeps only the rows of c->rr of a column decoded over the row ranges
   spans (sorted, disjoint, covering c->rr) */
static void compact(pqt_cur *c, pq_column *d, const int64_t *spans, int nspans)
{
  materialize(c, d);
  size_t es = d->phys == PHYS_STR ? sizeof(str_ref) : 8;
  char *np = pq_pool_take(c->pool, (size_t)c->rows * es + 1);
  uint8_t *nn = d->nulls != NULL ? pq_pool_take(c->pool, (size_t)c->rows + 1) : NULL;
  int j = 0;
  int64_t base = 0;   /* decoded rows before span j */
  int64_t w = 0;
  for (int i = 0; i < c->nrr; i++) {
    int64_t b = c->rr[2 * i], end = c->rr[2 * i + 1];
    while (b < end) {
      while (j < nspans && spans[2 * j + 1] <= b) {
        base += spans[2 * j + 1] - spans[2 * j];
        j++;
      }
      if (j == nspans || spans[2 * j] > b)
        break;   /* not covered (never: the spans cover the ranges) */
      int64_t stop = end < spans[2 * j + 1] ? end : spans[2 * j + 1];
      int64_t from = base + (b - spans[2 * j]);
      memcpy(np + (size_t)w * es, (char *)d->p + (size_t)from * es, (size_t)(stop - b) * es);
      if (nn != NULL)
        memcpy(nn + w, d->nulls + from, (size_t)(stop - b));
      w += stop - b;
      b = stop;
    }
  }
  pq_pool_give(c->pool, d->p);
  pq_pool_give(c->pool, d->nulls);
  d->p = np;
  d->nulls = nn;
  d->n = c->rows;
}

/* a flat column read from only the pages holding rows of c->rr (its
   dictionary page, then those pages, by its OffsetIndex): 1 done, 0 not
   possible here (no OffsetIndex, nested), or a failure */
static int load_some_pages(qctx *q, pqt_cur *c, const pq_field *fdl, int fi, int k, int fd,
                           err *e)
{
  tobj *o = c->obj;
  const pq_file *f = o->pq;
  if (fdl->nested || fdl->nleaves != 1 || fdl->node->max_rep > 0)
    return 0;
  int leaf = fdl->first_leaf;
  int rc = load_pidx(q, c, leaf, e);
  if (rc <= 0)
    return rc;
  const pq_pageidx *pi = &c->pidx[leaf];
  uint64_t start, len;
  if ((rc = pq_chunk_range(f, c->rg, leaf, &start, &len, e)) < 0)
    return rc;
  /* the pages to read, and the bytes: [start, first page) holds the
     dictionary page (when any), then each chosen page */
  int64_t *spans = xmalloc(sizeof(int64_t) * 2 * (size_t)pi->n);
  int nspans = 0;
  uint64_t total = (uint64_t)pi->offset[0] - start;
  int64_t rows = 0;
  int r = 0;
  for (int p = 0; p < pi->n; p++) {
    int64_t b = pi->first_row[p], en = pi->first_row[p + 1];
    while (r < c->nrr && c->rr[2 * r + 1] <= b)
      r++;
    if (r == c->nrr || c->rr[2 * r] >= en)
      continue;
    spans[2 * nspans] = b;
    spans[2 * nspans + 1] = en;
    nspans++;
    rows += en - b;
    total += (uint64_t)pi->size[p];
  }
  if ((rc = sql__qctx_mem(q, (int64_t)total)) < 0) {
    free(spans);
    return err_set(e, rc, "reading '%s' passed the query's memory limit", o->name);
  }
  c->charged += (int64_t)total;
  uint8_t *pb = pq_pool_take(c->pool, total + 1);
  c->chunks[c->nchunks++] = pb;
  uint64_t w = 0;
  if (pi->offset[0] > (int64_t)start) {
    rc = read_at(fd, o->name, start, (size_t)((uint64_t)pi->offset[0] - start), pb, e);
    w = (uint64_t)pi->offset[0] - start;
  }
  int s = 0;
  for (int p = 0; p < pi->n && rc == 0 && s < nspans; p++) {
    if (pi->first_row[p] != spans[2 * s])
      continue;
    /* consecutive chosen pages: one read */
    int p2 = p;
    uint64_t n = (uint64_t)pi->size[p];
    while (s + 1 < nspans && p2 + 1 < pi->n && pi->first_row[p2 + 1] == spans[2 * (s + 1)] &&
           pi->offset[p2 + 1] == pi->offset[p2] + pi->size[p2]) {
      p2++;
      s++;
      n += (uint64_t)pi->size[p2];
    }
    rc = read_at(fd, o->name, (uint64_t)pi->offset[p], (size_t)n, pb + w, e);
    w += n;
    s++;
    p = p2;
  }
  if (rc < 0) {
    free(spans);
    return rc;
  }
  atomic_fetch_add(&q->bytes_scanned, w);
  int64_t room = (int64_t)q->mem_limit - atomic_load(&q->mem_used);
  if (room < (1 << 20))
    room = 1 << 20;
  rc = pq_column_read_pages(f, c->rg, fi, pb, (size_t)w, rows, (size_t)room, c->pool,
                            &c->data[k], e);
  if (rc == 0) {
    if ((rc = sql__qctx_mem(q, (int64_t)c->data[k].bytes)) < 0)
      rc = err_set(e, rc, "reading '%s' passed the query's memory limit", o->name);
    c->charged += (int64_t)c->data[k].bytes;
  }
  if (rc == 0)
    compact(c, &c->data[k], spans, nspans);
  free(spans);
  return rc < 0 ? rc : 1;
}

int sql__pqt_cur_load(qctx *q, pqt_cur *c, const bool *which, err *e)
{
  tobj *o = c->obj;
  const pq_file *f = o->pq;
  int rg = c->rg;
  bool any = false;
  for (int k = 0; k < c->ncols; k++)
    if (!c->absent[k] && !c->loaded[k] && (which == NULL || which[k]))
      any = true;
  if (!any)
    return 0;
  int fd = -1;
  uint64_t size = 0;
  int rc = q->src->open(q->src->ctx, o->bucket, o->key, &fd, &size, e);
  if (rc < 0)
    return rc;
  if (size != f->size) {
    close(fd);
    return err_set(e, ERR_INVALID, "'%s' changed during the query", o->name);
  }
  for (int k = 0; k < c->ncols && rc == 0; k++) {
    int fi = o->pqmap[c->cols[k]];
    if (fi < 0 || c->loaded[k] || (which != NULL && !which[k]))
      continue;
    c->loaded[k] = true;
    const pq_field *fd2 = &f->fields[fi];
    if (c->rr != NULL) {
      rc = load_some_pages(q, c, fd2, fi, k, fd, e);
      if (rc < 0)
        break;
      if (rc == 1) {
        rc = 0;
        continue;
      }
    }
    const uint8_t **ptrs = xcalloc((size_t)fd2->nleaves, sizeof(uint8_t *));
    size_t *lens = xcalloc((size_t)fd2->nleaves, sizeof(size_t));
    for (int l = 0; l < fd2->nleaves && rc == 0; l++) {
      uint64_t off, len;
      if ((rc = pq_chunk_range(f, rg, fd2->first_leaf + l, &off, &len, e)) < 0)
        break;
      if ((rc = sql__qctx_mem(q, (int64_t)len)) < 0) {
        rc = err_set(e, rc, "reading '%s' passed the query's memory limit", o->name);
        break;
      }
      c->charged += (int64_t)len;
      uint8_t *b = pq_pool_take(c->pool, len + 1);
      c->chunks[c->nchunks++] = b;
      if ((rc = read_at(fd, o->name, off, len, b, e)) < 0)
        break;
      atomic_fetch_add(&q->bytes_scanned, len);
      ptrs[l] = b;
      lens[l] = len;
    }
    if (rc < 0) {
      free(ptrs);
      free(lens);
      break;
    }
    int64_t room = (int64_t)q->mem_limit - atomic_load(&q->mem_used);
    if (room < (1 << 20))
      room = 1 << 20;
    rc = c->rr != NULL ? pq_column_read_rows(f, rg, fi, ptrs, lens, (size_t)room, c->pool,
                                             c->rr, c->nrr, &c->data[k], e)
                       : pq_column_read_codes(f, rg, fi, ptrs, lens, (size_t)room, c->pool,
                                              &c->data[k], e);
    if (rc == 0 && c->data[k].codes != NULL) {
      static _Atomic uint64_t gens;
      c->gen[k] = atomic_fetch_add(&gens, 1) + 1;
    }
    free(ptrs);
    free(lens);
    if (rc == 0) {
      if ((rc = sql__qctx_mem(q, (int64_t)c->data[k].bytes)) < 0)
        rc = err_set(e, rc, "reading '%s' passed the query's memory limit", o->name);
      c->charged += (int64_t)c->data[k].bytes;
    }
    if (rc == 0 && c->rr != NULL) {
      int64_t all[2] = {0, f->rgs[rg].num_rows};
      compact(c, &c->data[k], all, 1);
    }
  }
  close(fd);
  return rc;
}

int sql__pqt_cur_dict(qctx *q, pqt_cur *c, int k, vec *v, int64_t *n, err *e)
{
  tobj *o = c->obj;
  const pq_file *f = o->pq;
  int fi = o->pqmap[c->cols[k]];
  if (fi < 0 || f->fields[fi].nested)
    return 0;
  int leaf = f->fields[fi].first_leaf;
  uint64_t off, len;
  if (pq_dict_range(f, c->rg, leaf, &off, &len) != 0 || len > (64u << 20))
    return 0;
  pq_column_release(&c->dict);
  free(c->dictbytes);
  c->dictbytes = xmalloc(len + 1);
  int fd = -1;
  uint64_t size = 0;
  int rc = q->src->open(q->src->ctx, o->bucket, o->key, &fd, &size, e);
  if (rc < 0)
    return rc;
  rc = size == f->size ? read_at(fd, o->name, off, len, c->dictbytes, e)
                       : err_set(e, ERR_INVALID, "'%s' changed during the query", o->name);
  close(fd);
  if (rc < 0)
    return rc;
  atomic_fetch_add(&q->bytes_scanned, len);
  int64_t room = (int64_t)q->mem_limit - atomic_load(&q->mem_used);
  if (room < (1 << 20))
    room = 1 << 20;
  rc = pq_dict_read(f, c->rg, leaf, c->dictbytes, len, (size_t)room, &c->dict, e);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  v->phys = (uint8_t)c->dict.phys;
  v->is_const = 0;
  v->nulls = NULL;
  v->p = c->dict.p;
  *n = c->dict.n;
  return 1;
}

void sql__pqt_cur_rewind(pqt_cur *c)
{
  c->pos = 0;
}

/* the next batch: vectors per used column (index k = position in cols);
   0 at the end of the row group */
int sql__pqt_cur_next(pqt_cur *c, vec *vecs, const vec *nullv)
{
  if (c->obj == NULL || c->pos >= c->rows)
    return 0;
  int64_t n = c->rows - c->pos;
  if (n > COL_BATCH)
    n = COL_BATCH;
  for (int k = 0; k < c->ncols; k++) {
    vec *v = &vecs[k];
    if (c->absent[k] || !c->loaded[k]) {
      uint8_t ph = v->phys;
      *v = *nullv;
      v->phys = ph;
      continue;
    }
    pq_column *d = &c->data[k];
    v->is_const = 0;
    v->nulls = d->nulls != NULL ? d->nulls + c->pos : NULL;
    if (d->p == NULL && d->codes != NULL) {
      /* the batch's values by code (a NULL row's code gives zero / empty) */
      const uint32_t *cd = d->codes + c->pos;
      if (c->bbuf[k] == NULL)
        c->bbuf[k] = xmalloc(COL_BATCH * sizeof(str_ref));
      if (d->phys == PHYS_STR) {
        str_ref *o = c->bbuf[k];
        const str_ref *ds = d->dict;
        for (int64_t j = 0; j < n; j++)
          o[j] = ds[cd[j]];
      } else {
        int64_t *o = c->bbuf[k];
        const int64_t *di = d->dict;
        for (int64_t j = 0; j < n; j++)
          o[j] = di[cd[j]];
      }
      v->p = c->bbuf[k];
    } else if (d->phys == PHYS_STR) {
      v->s = d->s + c->pos;
    } else {
      v->i = d->i + c->pos;
    }
  }
  c->bpos = c->pos;
  c->pos += n;
  return (int)n;
}

const uint32_t *sql__pqt_cur_codes(const pqt_cur *c, int k, uint32_t *ncodes, uint64_t *gen,
                                   vec *dict)
{
  if (c->obj == NULL || c->absent[k] || !c->loaded[k] || c->data[k].codes == NULL)
    return NULL;
  const pq_column *d = &c->data[k];
  *ncodes = d->ndict;
  *gen = c->gen[k];
  if (dict != NULL) {
    dict->phys = (uint8_t)d->phys;
    dict->is_const = 0;
    dict->nulls = NULL;
    dict->p = (void *)d->dict;
  }
  return d->codes + c->bpos;
}

/* ---- top-N: late materialization ---- */

/* a key as an unsigned integer ordered as the sort wants it (smaller
   first); false for NaN, which is left to the sort */
static bool tn_norm(const scan_topn *tn, const void *p, int64_t i, uint64_t *out)
{
  uint64_t u;
  if (tn->phys == PHYS_F64) {
    double d = ((const double *)p)[i];
    if (d != d)
      return false;
    if (d == 0)
      d = 0;   /* -0.0 sorts with 0.0 */
    memcpy(&u, &d, 8);
    u = (u >> 63) ? ~u : u | (1ULL << 63);
  } else {
    u = (uint64_t)((const int64_t *)p)[i] ^ (1ULL << 63);
  }
  *out = tn->desc ? ~u : u;
  return true;
}

static void heap_push(pqt_cur *c, size_t keep, uint64_t u)
{
  uint64_t *h = c->heap;
  if (c->nheap < keep) {
    size_t i = c->nheap++;
    while (i > 0 && h[(i - 1) / 2] < u) {
      h[i] = h[(i - 1) / 2];
      i = (i - 1) / 2;
    }
    h[i] = u;
    return;
  }
  if (u >= h[0])
    return;
  size_t i = 0, n = c->nheap;
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    uint64_t best = u;
    if (l < n && h[l] > best) {
      m = l;
      best = h[l];
    }
    if (l + 1 < n && h[l + 1] > best)
      m = l + 1;
    if (m == i)
      break;
    h[i] = h[m];
    i = m;
  }
  h[i] = u;
}

/* the bar: this scan's keep-th best key, or a better one of another scan
   (published both ways) */
static uint64_t tn_bar(pqt_cur *c, scan_topn *tn)
{
  uint64_t g = atomic_load(&tn->bar);
  if (c->nheap < tn->keep)
    return g;
  uint64_t mine = c->heap[0];
  while (mine < g && !atomic_compare_exchange_weak(&tn->bar, &g, mine))
    ;
  return mine < g ? mine : g;
}

static void tn_feed(pqt_cur *c, scan_topn *tn, const void *p, const uint8_t *nulls,
                    const uint16_t *sel, int64_t n)
{
  if (c->heap == NULL)
    c->heap = xmalloc(sizeof(uint64_t) * (tn->keep + 1));
  for (int64_t j = 0; j < n; j++) {
    int64_t r = sel != NULL ? sel[j] : j;
    uint64_t u;
    if ((nulls != NULL && nulls[r]) || !tn_norm(tn, p, r, &u))
      continue;
    if (c->nheap == tn->keep && u >= c->heap[0])
      continue;
    heap_push(c, tn->keep, u);
  }
}

void sql__pqt_topn_feed(pqt_cur *c, scan_topn *tn, const vec *v, const uint16_t *sel, int n)
{
  if (v->is_const)
    return;
  tn_feed(c, tn, v->p, v->nulls, sel, n);
}

/* can no row of the group beat the bar, by its statistics? */
static bool tn_stats_skip(const pqt_cur *c, const scan_topn *tn, uint64_t bar)
{
  uint64_t best = 0;
  bool nulls = true;
  return tn_group_best(tn, c->obj, c->rg, &best, &nulls) && !(nulls && tn->nulls_first) &&
         best > bar;
}

int sql__pqt_cur_topn(qctx *q, pqt_cur *c, scan_topn *tn, bool feed, err *e)
{
  if (c->obj == NULL || c->rr != NULL || tn->keep == 0)
    return 1;
  int k = -1;
  for (int j = 0; j < c->ncols; j++)
    if (c->cols[j] == tn->col)
      k = j;
  if (k < 0 || c->absent[k])
    return 1;
  if (tn_stats_skip(c, tn, tn_bar(c, tn)))
    return 0;
  bool *which = xcalloc((size_t)c->ncols + 1, sizeof(bool));
  which[k] = true;
  int rc = sql__pqt_cur_load(q, c, which, e);
  free(which);
  if (rc < 0)
    return rc;
  pq_column *d = &c->data[k];
  if (d->n != c->rows)
    return 1;
  materialize(c, d);
  if (feed)
    tn_feed(c, tn, d->p, d->nulls, NULL, d->n);
  uint64_t bar = tn_bar(c, tn);
  if (bar == UINT64_MAX)
    return 1;
  /* the rows that can still enter: ranges of them */
  rset keep = {0};
  int64_t nkeep = 0;
  for (int64_t r = 0; r < d->n; r++) {
    uint64_t u;
    bool in;
    if (d->nulls != NULL && d->nulls[r])
      in = tn->nulls_first;
    else
      in = !tn_norm(tn, d->p, r, &u) || u <= bar;
    if (in) {
      rs_add(&keep, r, r + 1);
      nkeep++;
    }
  }
  if (nkeep == 0) {
    free(keep.r);
    return 0;
  }
  if (nkeep * 4 > d->n * 3) {
    free(keep.r);
    return 1;   /* most rows stay: not worth it */
  }
  c->rr = keep.r;
  c->nrr = keep.n;
  c->rows = nkeep;
  c->pos = 0;
  int64_t all[2] = {0, c->obj->pq->rgs[c->rg].num_rows};
  for (int j = 0; j < c->ncols; j++)
    if (c->loaded[j] && !c->absent[j])
      compact(c, &c->data[j], all, 1);
  return 1;
}
