/* sql/sort.c -- ORDER BY (full sort and top-N) and window functions.
 *
 * Sorting works on row ids of a materialized rowset (id = chunk * 2048 +
 * row), so rows are never moved until the sorted result is gathered.
 * Top-N (ORDER BY ... LIMIT n): every thread keeps its best rows and cuts
 * them back to n whenever they pass max(2n, 8192), so memory stays
 * proportional to n, not to the input.
 *
 * Invariants:
 *   (1) NULLs sort last unless NULLS FIRST is given, in both directions
 *       (Presto). Ties keep input order (the id breaks them).
 *   (2) A window's frame without ORDER BY is the whole partition; with
 *       ORDER BY and no frame clause it is RANGE UNBOUNDED PRECEDING to
 *       CURRENT ROW (peers included).
 *
 * Start reading at sql__exec_sort(), then sql__exec_window().
 */
#include "exec.h"

#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int sql__cmp_rows(const rowset *r, const sortkey *keys, int nkeys, uint32_t a, uint32_t b)
{
  for (int k = 0; k < nkeys; k++) {
    int ra, rb;
    const vec *va = rs_col(r, a, keys[k].col, &ra);
    const vec *vb = rs_col(r, b, keys[k].col, &rb);
    bool na = va->nulls[ra] != 0, nb = vb->nulls[rb] != 0;
    if (na || nb) {
      if (na && nb)
        continue;
      int c = na ? 1 : -1;
      return keys[k].nulls_first ? -c : c;
    }
    value x = vec_get(va, ra), y = vec_get(vb, rb);
    int c = sql__value_cmp(r->phys[keys[k].col], x, y);
    if (c != 0)
      return keys[k].desc ? -c : c;
  }
  return 0;
}

typedef struct sortctx {
  const rowset *r;
  const sortkey *keys;
  int nkeys;
} sortctx;

/* Sorting by a normalized prefix of the first key: an unsigned 64-bit
 * integer that orders like the key (NULLs first or last, DESC inverted);
 * only equal prefixes compare the full keys. */
typedef struct skey {
  uint64_t k;
  uint32_t id;
} skey;

static uint64_t norm_key(const rowset *r, const sortkey *key, uint32_t id)
{
  int row;
  const vec *v = rs_col(r, id, key->col, &row);
  if (v->nulls[row])
    return key->nulls_first ? 0 : UINT64_MAX;
  uint64_t u;
  int ph = r->phys[key->col];
  if (ph == PHYS_I64) {
    u = (uint64_t)v->i[row] ^ (1ULL << 63);
  } else if (ph == PHYS_F64) {
    double d = v->f[row];
    if (d == 0)
      d = 0; /* -0.0 sorts with 0.0 */
    memcpy(&u, &d, 8);
    u = (u & (1ULL << 63)) ? ~u : u | (1ULL << 63);
  } else {
    str_ref s = v->s[row];
    u = 0;
    for (size_t i = 0; i < 8; i++)
      u = (u << 8) | (i < s.len ? (unsigned char)s.ptr[i] : 0);
  }
  if (key->desc)
    u = ~u;
  return 1 + (u >> 1);
}

static int cmp_skeys(const void *a, const void *b, void *arg)
{
  const skey *x = a, *y = b;
  if (x->k != y->k)
    return x->k < y->k ? -1 : 1;
  const sortctx *s = arg;
  int c = sql__cmp_rows(s->r, s->keys, s->nkeys, x->id, y->id);
  if (c != 0)
    return c;
  return x->id < y->id ? -1 : x->id > y->id;
}

static void sort_ids(const rowset *r, const sortkey *keys, int nkeys, uint32_t *ids, size_t n)
{
  if (nkeys == 0 || n < 2)
    return;
  skey *sk = xmalloc(sizeof(skey) * n);
  for (size_t i = 0; i < n; i++) {
    sk[i].id = ids[i];
    sk[i].k = norm_key(r, &keys[0], ids[i]);
  }
  sortctx sc = {r, keys, nkeys};
  qsort_r(sk, n, sizeof(skey), cmp_skeys, &sc);
  for (size_t i = 0; i < n; i++)
    ids[i] = sk[i].id;
  free(sk);
}

static uint32_t *all_ids(const rowset *r, size_t *n)
{
  uint32_t *ids = xmalloc(sizeof(uint32_t) * (r->rows + 1));
  size_t k = 0;
  for (size_t c = 0; c < r->nchunks; c++)
    for (int i = 0; i < r->chunks[c]->n; i++)
      ids[k++] = (uint32_t)(c * COL_BATCH + (size_t)i);
  *n = k;
  return ids;
}

/* appends rows ids[0..n) of src to dst in that order */
static int gather(const rowset *src, const uint32_t *ids, size_t n, rowset *dst)
{
  int nc = src->ncols;
  vec *cols = xcalloc((size_t)(nc > 0 ? nc : 1), sizeof(vec));
  char *mem = xcalloc((size_t)(nc > 0 ? nc : 1), COL_BATCH * (sizeof(str_ref) + 1));
  for (int c = 0; c < nc; c++) {
    cols[c].phys = src->phys[c];
    cols[c].p = mem + (size_t)c * COL_BATCH * (sizeof(str_ref) + 1);
    cols[c].nulls = (uint8_t *)cols[c].p + COL_BATCH * sizeof(str_ref);
  }
  int rc = 0;
  size_t i = 0;
  while (i < n && rc == 0) {
    int m = 0;
    for (; m < COL_BATCH && i < n; m++, i++) {
      for (int c = 0; c < nc; c++) {
        int r;
        const vec *v = rs_col(src, ids[i], c, &r);
        cols[c].nulls[m] = v->nulls[r];
        if (src->phys[c] == PHYS_STR)
          cols[c].s[m] = v->s[r];
        else
          cols[c].i[m] = v->i[r];
      }
    }
    batch b = {.n = m, .nsel = m, .ncols = nc, .cols = cols};
    if (nc == 0) {
      /* no columns: count rows only */
      dst->rows += (uint64_t)m;
      continue;
    }
    rc = sql__rowset_append(dst, &b);
  }
  free(cols);
  free(mem);
  return rc;
}

/* ---- top-N sink ---- */

typedef struct topn {
  qctx *q;
  plan *p;
  size_t keep;           /* offset + limit */
  rowset **locals;
} topn;

typedef struct topn_thread {
  topn *t;
  int thread;
  bool has_thresh;       /* the local rows are cut: row `bar` is the bar */
  uint32_t bar;          /* the keep-th row after the last cut (rows appended
                            since do not move it) */
  uint8_t *keep;         /* scratch: rows of a batch that beat the bar */
  uint16_t *sel;
} topn_thread;

/* a row of a batch against a row of a rowset, by the sort keys */
static int cmp_batch_row(const batch *b, int r, const rowset *rs, uint32_t id,
                         const sortkey *keys, int nkeys)
{
  for (int k = 0; k < nkeys; k++) {
    int rr;
    const vec *vb = rs_col(rs, id, keys[k].col, &rr);
    value x = vec_get(&b->cols[keys[k].col], r);
    bool nb = vb->nulls[rr] != 0;
    if (x.null || nb) {
      if (x.null && nb)
        continue;
      int c = x.null ? 1 : -1;
      return keys[k].nulls_first ? -c : c;
    }
    int c = sql__value_cmp(rs->phys[keys[k].col], x, vec_get(vb, rr));
    if (c != 0)
      return keys[k].desc ? -c : c;
  }
  return 0;
}

static void *topn_init(void *arg, int thread)
{
  topn *t = arg;
  t->locals[thread] = sql__rowset_new(t->q, t->p->ncols, t->p->cols);
  topn_thread *tt = xcalloc(1, sizeof *tt);
  tt->t = t;
  tt->thread = thread;
  tt->sel = xmalloc(sizeof(uint16_t) * COL_BATCH);
  return tt;
}

static int cut(topn *t, rowset **rp)
{
  rowset *r = *rp;
  size_t n;
  uint32_t *ids = all_ids(r, &n);
  sort_ids(r, t->p->keys, t->p->nkeys_sort, ids, n);
  if (n > t->keep)
    n = t->keep;
  rowset *nr = sql__rowset_new(t->q, t->p->ncols, t->p->cols);
  int rc = gather(r, ids, n, nr);
  free(ids);
  sql__rowset_free(r);
  *rp = nr;
  return rc;
}

static int topn_consume(void *state, batch *b)
{
  topn_thread *tt = state;
  topn *t = tt->t;
  rowset **rp = &t->locals[tt->thread];
  if (t->keep == 0)
    return 0;
  batch nb = *b;
  if (tt->has_thresh) {
    /* only rows that beat the keep-th row of the last cut can enter */
    const rowset *rs = *rp;
    uint32_t bar = tt->bar;
    int m = 0;
    for (int j = 0; j < b->nsel; j++) {
      int r = ROW(b, j);
      if (cmp_batch_row(b, r, rs, bar, t->p->keys, t->p->nkeys_sort) < 0)
        tt->sel[m++] = (uint16_t)r;
    }
    if (m == 0)
      return sql__qctx_check(t->q);
    nb.sel = tt->sel;
    nb.nsel = m;
  }
  int rc = sql__rowset_append(*rp, &nb);
  if (rc < 0)
    return rc;
  size_t limit = t->keep * 2 > 8192 ? t->keep * 2 : 8192;
  if ((*rp)->rows > limit) {
    rc = cut(t, rp);
    const rowset *rs = *rp;
    if (rc == 0 && rs->rows == t->keep && rs->nchunks > 0) {
      size_t last = rs->nchunks - 1;
      while (last > 0 && rs->chunks[last]->n == 0)
        last--;
      tt->bar = (uint32_t)(last * COL_BATCH + (size_t)rs->chunks[last]->n - 1);
      tt->has_thresh = rs->chunks[last]->n > 0;
    }
  }
  return rc;
}

static int topn_finish(void *state)
{
  topn_thread *tt = state;
  free(tt->sel);
  free(tt);
  return 0;
}

typedef struct coll {
  qctx *q;
  plan *p;
  rowset **locals;
} coll;

static void *coll_init(void *arg, int thread)
{
  coll *c = arg;
  c->locals[thread] = sql__rowset_new(c->q, c->p->ncols, c->p->cols);
  return c->locals[thread];
}

static int coll_consume(void *state, batch *b)
{
  return sql__rowset_append(state, b);
}

static int coll_finish(void *state)
{
  (void)state;
  return 0;
}

/* The Parquet scan whose rows reach top-N p unchanged (through projections
   that pass the first sort key through as a column), with the key's table
   column in *col; NULL when there is none. */
static plan *topn_scan(plan *p, int *col)
{
  int c = p->keys[0].col;
  plan *x = p->child;
  while (x != NULL && x->kind == P_PROJECT) {
    if (c < 0 || c >= x->ncols || x->exprs[c]->kind != BX_COL)
      return NULL;
    c = x->exprs[c]->colno;
    x = x->child;
  }
  if (x == NULL || x->kind != P_SCAN || x->table == NULL || x->table->format != FMT_PARQUET ||
      c < 0 || c >= x->table->ncols || c >= x->table->nfile || x->topn != NULL)
    return NULL;
  *col = c;
  return x;
}

int sql__exec_sort(qctx *q, plan *p, rowset **out)
{
  rowset *all = sql__rowset_new(q, p->ncols, p->cols);
  rowset **locals = xcalloc((size_t)q->threads + 1, sizeof(rowset *));
  int rc;
  if (p->limit >= 0) {
    topn t = {.q = q, .p = p, .keep = (size_t)(p->limit + p->offset), .locals = locals};
    pipe_sink s = {topn_init, topn_consume, topn_finish, &t};
    /* late materialization: the scan reads the key first */
    int col = -1;
    plan *scan = p->nkeys_sort > 0 && t.keep > 0 && t.keep <= (1u << 16) ? topn_scan(p, &col)
                                                                         : NULL;
    scan_topn tn = {0};
    if (scan != NULL) {
      int ph = sql__phys(scan->table->stypes[col].t);
      tn = (scan_topn){.col = col, .phys = ph, .desc = p->keys[0].desc,
                       .nulls_first = p->keys[0].nulls_first, .keep = t.keep};
      atomic_init(&tn.bar, UINT64_MAX);
      if (ph == PHYS_I64 || ph == PHYS_F64)
        scan->topn = &tn;
      else
        scan = NULL;
    }
    rc = sql__exec_pipeline(q, p->child, &s, 0);
    if (scan != NULL)
      scan->topn = NULL;
  } else {
    coll c = {.q = q, .p = p, .locals = locals};
    pipe_sink s = {coll_init, coll_consume, coll_finish, &c};
    rc = sql__exec_pipeline(q, p->child, &s, 0);
  }
  for (int i = 0; i <= q->threads; i++) {
    if (locals[i] != NULL) {
      sql__rowset_move(all, locals[i]);
      sql__rowset_free(locals[i]);
    }
  }
  free(locals);
  if (rc < 0) {
    sql__rowset_free(all);
    return rc;
  }
  size_t n;
  uint32_t *ids = all_ids(all, &n);
  sort_ids(all, p->keys, p->nkeys_sort, ids, n);
  size_t from = (size_t)p->offset < n ? (size_t)p->offset : n;
  size_t to = n;
  if (p->limit >= 0 && from + (size_t)p->limit < to)
    to = from + (size_t)p->limit;
  rowset *res = sql__rowset_new(q, p->ncols, p->cols);
  rc = gather(all, ids + from, to - from, res);
  free(ids);
  sql__rowset_free(all);
  if (rc < 0) {
    sql__rowset_free(res);
    return rc;
  }
  res->ordered = true;
  *out = res;
  return 0;
}

/* ---- windows ---- */

typedef struct wres {
  value *v;
  uint8_t *null;
} wres;

static bool same_keys(const rowset *r, const int *cols, int n, uint32_t a, uint32_t b)
{
  for (int k = 0; k < n; k++) {
    int ra, rb;
    const vec *va = rs_col(r, a, cols[k], &ra);
    const vec *vb = rs_col(r, b, cols[k], &rb);
    bool na = va->nulls[ra] != 0, nb = vb->nulls[rb] != 0;
    if (na != nb)
      return false;
    if (na)
      continue;
    if (!sql__value_eq(r->phys[cols[k]], vec_get(va, ra), vec_get(vb, rb)))
      return false;
  }
  return true;
}

static bool same_order(const rowset *r, const wincall *w, uint32_t a, uint32_t b)
{
  return sql__cmp_rows(r, w->order, w->norder, a, b) == 0;
}

static value get_val(const rowset *r, int col, uint32_t id)
{
  int row;
  const vec *v = rs_col(r, id, col, &row);
  return vec_get(v, row);
}

static int frame_bounds(const wincall *w, size_t ps, size_t pe, size_t i, size_t peer_s,
                        size_t peer_e, size_t *fs, size_t *fe)
{
  if (!w->has_frame) {
    *fs = ps;
    *fe = w->norder > 0 ? peer_e : pe;
    return 0;
  }
  if (!w->rows && (w->start_kind == FB_PRECEDING || w->start_kind == FB_FOLLOWING ||
                   w->end_kind == FB_PRECEDING || w->end_kind == FB_FOLLOWING))
    return -1;
  size_t s, e;
  switch (w->start_kind) {
  case FB_UNBOUNDED_PRECEDING: s = ps; break;
  case FB_PRECEDING: s = i >= ps + (size_t)w->start_n ? i - (size_t)w->start_n : ps; break;
  case FB_CURRENT: s = w->rows ? i : peer_s; break;
  case FB_FOLLOWING: s = i + (size_t)w->start_n; break;
  default: s = pe; break;
  }
  switch (w->end_kind) {
  case FB_UNBOUNDED_FOLLOWING: e = pe; break;
  case FB_FOLLOWING: e = i + (size_t)w->end_n + 1; break;
  case FB_CURRENT: e = w->rows ? i + 1 : peer_e; break;
  case FB_PRECEDING: e = i + 1 >= ps + (size_t)w->end_n ? i + 1 - (size_t)w->end_n : ps; break;
  default: e = ps; break;
  }
  if (e > pe)
    e = pe;
  if (s > e)
    s = e;
  *fs = s;
  *fe = e;
  return 0;
}

static int window_one(qctx *q, rowset *r, const wincall *w, wres *res)
{
  size_t n;
  uint32_t *ids = all_ids(r, &n);
  /* sort by partition, then order */
  int nk = w->npart + w->norder;
  sortkey *keys = xcalloc((size_t)(nk > 0 ? nk : 1), sizeof(sortkey));
  for (int k = 0; k < w->npart; k++) {
    keys[k].col = w->part[k];
    keys[k].nulls_first = true;
  }
  for (int k = 0; k < w->norder; k++)
    keys[w->npart + k] = w->order[k];
  sort_ids(r, keys, nk, ids, n);
  int sz = sql__agg_state_size();
  char *st = xcalloc(1, (size_t)sz);
  int rc = 0;
  size_t ps = 0;
  while (ps < n && rc == 0) {
    size_t pe = ps + 1;
    while (pe < n && same_keys(r, w->part, w->npart, ids[ps], ids[pe]))
      pe++;
    size_t np = pe - ps;
    int64_t dense = 0;
    size_t peer_s = ps, peer_e = ps;
    /* running aggregate (frames starting at the partition start) */
    size_t run_to = ps;
    sql__agg_state_clear(&w->agg, st);
    for (size_t i = ps; i < pe && rc == 0; i++) {
      if (i >= peer_e) {
        peer_s = i;
        peer_e = i + 1;
        while (peer_e < pe && (w->norder == 0 || same_order(r, w, ids[i], ids[peer_e])))
          peer_e++;
        if (w->norder == 0)
          peer_e = pe;
        dense++;
      }
      uint32_t id = ids[i];
      value out = {.null = false};
      switch (w->fn) {
      case WIN_ROW_NUMBER: out.i = (int64_t)(i - ps + 1); break;
      case WIN_RANK: out.i = (int64_t)(peer_s - ps + 1); break;
      case WIN_DENSE_RANK: out.i = dense; break;
      case WIN_PERCENT_RANK:
        out.f = np > 1 ? (double)(peer_s - ps) / (double)(np - 1) : 0.0;
        break;
      case WIN_CUME_DIST: out.f = (double)(peer_e - ps) / (double)np; break;
      case WIN_NTILE: {
        size_t k = (size_t)w->offset;
        size_t qn = np / k, rem = np % k;
        size_t idx = i - ps;
        if (idx < rem * (qn + 1))
          out.i = (int64_t)(idx / (qn + 1) + 1);
        else
          out.i = (int64_t)((idx - rem * (qn + 1)) / (qn > 0 ? qn : 1) + rem + 1);
        break;
      }
      case WIN_LAG:
      case WIN_LEAD: {
        int64_t off = w->fn == WIN_LAG ? -w->offset : w->offset;
        int64_t j = (int64_t)i + off;
        if (j >= (int64_t)ps && j < (int64_t)pe)
          out = get_val(r, w->arg, ids[j]);
        else if (w->deflt >= 0)
          out = get_val(r, w->deflt, id);
        else
          out.null = true;
        break;
      }
      default: {
        size_t fs, fe;
        if (frame_bounds(w, ps, pe, i, peer_s, peer_e, &fs, &fe) < 0) {
          err e;
          err_set(&e, ERR_NOT_IMPLEMENTED, "RANGE frames with offsets are not supported "
                  "(use ROWS)");
          rc = sql__qctx_fail(q, ERR_NOT_IMPLEMENTED, &e);
          break;
        }
        if (w->fn == WIN_FIRST_VALUE) {
          if (fs < fe)
            out = get_val(r, w->arg, ids[fs]);
          else
            out.null = true;
        } else if (w->fn == WIN_LAST_VALUE) {
          if (fs < fe)
            out = get_val(r, w->arg, ids[fe - 1]);
          else
            out.null = true;
        } else if (w->fn == WIN_NTH_VALUE) {
          size_t at = fs + (size_t)w->offset - 1;
          if (w->offset >= 1 && at < fe)
            out = get_val(r, w->arg, ids[at]);
          else
            out.null = true;
        } else {
          /* aggregate over [fs, fe) */
          const aggcall *ac = &w->agg;
          value one = {.null = false, .i = 1};
          if (fs == ps && fe >= run_to) {
            for (; run_to < fe && rc == 0; run_to++) {
              value v = ac->arg != NULL ? get_val(r, ac->arg->colno, ids[run_to]) : one;
              rc = sql__agg_state_add(q, ac, st, v);
            }
            if (rc == 0)
              rc = sql__agg_state_final(q, ac, st, &out);
          } else {
            char *tmp = xcalloc(1, (size_t)sz);
            for (size_t k = fs; k < fe && rc == 0; k++) {
              value v = ac->arg != NULL ? get_val(r, ac->arg->colno, ids[k]) : one;
              rc = sql__agg_state_add(q, ac, tmp, v);
            }
            if (rc == 0)
              rc = sql__agg_state_final(q, ac, tmp, &out);
            sql__agg_state_clear(ac, tmp);
            free(tmp);
          }
        }
        break;
      }
      }
      res->v[id] = out;
      res->null[id] = out.null;
    }
    sql__agg_state_clear(&w->agg, st);
    ps = pe;
    if (rc == 0)
      rc = sql__qctx_check(q);
  }
  free(st);
  free(keys);
  free(ids);
  return rc;
}

int sql__exec_window(qctx *q, plan *p, rowset **out)
{
  rowset *r;
  int rc = sql__exec_materialize(q, p->child, &r);
  if (rc < 0)
    return rc;
  size_t nids = r->nchunks * COL_BATCH;
  int base = r->ncols;
  int nw = p->nwins;
  wres *res = xcalloc((size_t)nw, sizeof(wres));
  for (int k = 0; k < nw && rc == 0; k++) {
    res[k].v = xcalloc(nids + 1, sizeof(value));
    res[k].null = xcalloc(nids + 1, 1);
    if ((rc = sql__qctx_mem(q, (int64_t)(nids * (sizeof(value) + 1)))) < 0)
      break;
    rc = window_one(q, r, &p->wins[k], &res[k]);
  }
  if (rc == 0) {
    /* extend every chunk with the window columns */
    uint8_t *phys = xrealloc(r->phys, (size_t)(base + nw));
    r->phys = phys;
    for (int k = 0; k < nw; k++)
      r->phys[base + k] = (uint8_t)sql__phys(p->wins[k].type.t);
    for (size_t c = 0; c < r->nchunks; c++) {
      rs_chunk *ch = r->chunks[c];
      vec *cols = xrealloc(ch->cols, sizeof(vec) * (size_t)(base + nw));
      ch->cols = cols;
      for (int k = 0; k < nw; k++) {
        vec *v = &ch->cols[base + k];
        v->phys = r->phys[base + k];
        v->is_const = 0;
        v->p = xmalloc(COL_BATCH * (v->phys == PHYS_STR ? sizeof(str_ref) : 8));
        v->nulls = xcalloc(COL_BATCH, 1);
        for (int i = 0; i < ch->n; i++) {
          size_t id = c * COL_BATCH + (size_t)i;
          v->nulls[i] = res[k].null[id];
          if (v->phys == PHYS_STR)
            v->s[i] = res[k].null[id] ? (str_ref){"", 0} : res[k].v[id].s;
          else
            v->i[i] = res[k].null[id] ? 0 : res[k].v[id].i;
        }
      }
    }
    r->ncols = base + nw;
  }
  for (int k = 0; k < nw; k++) {
    if (res[k].v != NULL)
      sql__qctx_mem(q, -(int64_t)(nids * (sizeof(value) + 1)));
    free(res[k].v);
    free(res[k].null);
  }
  free(res);
  if (rc < 0) {
    sql__rowset_free(r);
    return rc;
  }
  r->ordered = false;
  *out = r;
  return 0;
}
