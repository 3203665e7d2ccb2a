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

/* may some row of group rg satisfy e? (true when unsure) */
static bool maybe(const table *t, const pq_file *f, int rg, const int *fmap, const bexpr *x)
{
  if (x->kind == BX_AND) {
    for (int k = 0; k < x->nargs; k++)
      if (!maybe(t, f, rg, fmap, x->args[k]))
        return false;
    return true;
  }
  const bexpr *c = NULL, *k = NULL;
  int op = -1;
  if (x->kind == BX_CMP && x->nargs == 2) {
    op = x->op;
    if (x->args[0]->kind == BX_COL && x->args[1]->kind == BX_CONST) {
      c = x->args[0];
      k = x->args[1];
    } else if (x->args[1]->kind == BX_COL && x->args[0]->kind == BX_CONST) {
      c = x->args[1];
      k = x->args[0];
      /* mirror: const < col  ==  col > const */
      op = op == CMP_LT ? CMP_GT : op == CMP_LE ? CMP_GE : op == CMP_GT ? CMP_LT
         : op == CMP_GE ? CMP_LE : op;
    }
  } else if (x->kind == BX_ISNULL && x->nargs == 1 && x->args[0]->kind == BX_COL && !x->neg) {
    int col = x->args[0]->colno;
    if (col < 0 || col >= t->ncols)
      return true;
    if (fmap[col] < 0)
      return true;
    const pq_field *fd = &f->fields[fmap[col]];
    if (fd->nested)
      return true;
    int64_t nc = f->rgs[rg].chunks[fd->first_leaf].st.null_count;
    return !(nc == 0);
  }
  if (c == NULL || k->v.null || op == CMP_NE || op < 0)
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
  const pq_chunk *ch = &f->rgs[rg].chunks[fd->first_leaf];
  if (ch->st.null_count >= 0 && ch->st.null_count == f->rgs[rg].num_rows &&
      f->rgs[rg].num_rows > 0)
    return false;   /* all NULL: no comparison is true */
  int phys = sql__phys(ct.t);
  value lo = {0}, hi = {0};
  double dlo = 0, dhi = 0;
  if (!pq_stat_value(f, fd->first_leaf, ch->st.min, ch->st.min_len, &lo.i, &dlo, &lo.s) ||
      !pq_stat_value(f, fd->first_leaf, ch->st.max, ch->st.max_len, &hi.i, &dhi, &hi.s))
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
      for (int pi = 0; pi < p->npreds && keep; pi++)
        keep = maybe(t, f, g, fmap, p->preds[pi]);
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
};

pqt_cur *sql__pqt_cur_new(const int *cols, int ncols)
{
  pqt_cur *c = xcalloc(1, sizeof *c);
  c->ncols = ncols;
  c->cols = xcalloc((size_t)ncols + 1, sizeof(int));
  c->data = xcalloc((size_t)ncols + 1, sizeof(pq_column));
  c->absent = xcalloc((size_t)ncols + 1, sizeof(bool));
  c->loaded = xcalloc((size_t)ncols + 1, sizeof(bool));
  memcpy(c->cols, cols, sizeof(int) * (size_t)ncols);
  return c;
}

void sql__pqt_cur_close(qctx *q, pqt_cur *c)
{
  if (c == NULL)
    return;
  for (int k = 0; k < c->ncols; k++) {
    pq_column_release(&c->data[k]);
    c->loaded[k] = false;
  }
  pq_column_release(&c->dict);
  free(c->dictbytes);
  c->dictbytes = NULL;
  for (int k = 0; k < c->nchunks; k++)
    free(c->chunks[k]);
  free(c->chunks);
  c->chunks = NULL;
  c->nchunks = 0;
  if (c->charged)
    sql__qctx_mem(q, -c->charged);
  c->charged = 0;
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
      uint8_t *b = xmalloc(len + 1);
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
    rc = pq_column_read(f, rg, fi, ptrs, lens, (size_t)room, &c->data[k], e);
    free(ptrs);
    free(lens);
    if (rc == 0) {
      if ((rc = sql__qctx_mem(q, (int64_t)c->data[k].bytes)) < 0)
        rc = err_set(e, rc, "reading '%s' passed the query's memory limit", o->name);
      c->charged += (int64_t)c->data[k].bytes;
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
    if (d->phys == PHYS_STR)
      v->s = d->s + c->pos;
    else
      v->i = d->i + c->pos;
  }
  c->pos += n;
  return (int)n;
}
