/* formats/parquet_write.c -- the Parquet writer (parquet_write.h): row
 * groups buffered column by column, encoded into pages, and a footer in
 * Thrift's compact protocol.
 *
 * Why by hand: the format's heart (levels, dictionaries, the footer) is a
 * few hundred lines, and the engine's vectors map onto it directly; the
 * codecs are the libraries' (codec.h).
 *
 * Layout of what it writes (parquet_format.h has the numbers):
 *   "PAR1"
 *   per row group, per column: [dictionary page] data page ... (each page:
 *     a PageHeader, then its body compressed as a whole; a data page body
 *     is the definition levels (4-byte length + RLE/bit-packed hybrid, bit
 *     width 1) then the values, PLAIN or RLE_DICTIONARY (1 byte bit width +
 *     the hybrid of dictionary indices))
 *   FileMetaData, its length (4 bytes LE), "PAR1"
 *
 * Invariants:
 *   (1) Every column is OPTIONAL with max definition level 1 and no
 *       repetition levels (the engine's results are flat and nullable).
 *   (2) A chunk uses a dictionary only when it has repeated values and the
 *       dictionary stays small (DICT_MAX_VALUES, DICT_MAX_BYTES); booleans
 *       are always PLAIN.
 *   (3) Statistics are min_value / max_value (the ordering of the logical
 *       type: signed integers, doubles, strings byte-wise = code point
 *       order) and null_count, for every chunk; min/max are left out when a
 *       string one would be longer than STAT_MAX_STRING (never truncated)
 *       or a double chunk holds a NaN (engines order NaN differently, so
 *       no bound is safe to prune on).
 *   (4) Bytes leave through out() strictly in file order; the writer keeps
 *       only the current row group and the footer's records (with each
 *       data page's place, rows and bounds for the page index).
 *   (5) A page index follows the last row group: a ColumnIndex per chunk
 *       (per page min/max as in (3), null_pages, null_counts; left out for
 *       a chunk where a page's bound could not be written), then an
 *       OffsetIndex per chunk (each data page's offset, size with header,
 *       first row); the footer's ColumnChunks point at them. Pages break
 *       at the same rows in every column (PAGE_ROWS) unless a column's
 *       page reaches PAGE_BYTES first.
 *
 * Start reading at pqw_append(), then flush_row_group().
 */
#include "parquet_write.h"

#include "base/mem.h"

#include "codec.h"
#include "parquet_format.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_BYTES (1u << 20)       /* a data page's values, about */
#define PAGE_ROWS 20000
#define DICT_MAX_VALUES 65536
#define DICT_MAX_BYTES (2u << 20)
#define STAT_MAX_STRING 256
#define CREATED_BY "tarn"
/* PLAIN numbers are little-endian: on such a host whole arrays are copied */
#define HOST_LE (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)

/* ---- a growable byte buffer (the writer bounds what goes in) ---- */

typedef struct bb {
  unsigned char *p;
  size_t len;
  size_t cap;
} bb;

static void bb_reserve(bb *b, size_t n)
{
  if (b->len + n <= b->cap)
    return;
  size_t nc = b->cap ? b->cap : 256;
  while (nc < b->len + n)
    nc *= 2;
  unsigned char *np = xrealloc(b->p, nc);
  b->p = np;
  b->cap = nc;
}

static void bb_put(bb *b, const void *p, size_t n)
{
  if (n == 0)
    return;
  bb_reserve(b, n);
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void bb_byte(bb *b, unsigned v)
{
  bb_reserve(b, 1);
  b->p[b->len++] = (unsigned char)v;
}

static void bb_varint(bb *b, uint64_t v)
{
  while (v >= 0x80) {
    bb_byte(b, (unsigned)(v & 0x7f) | 0x80);
    v >>= 7;
  }
  bb_byte(b, (unsigned)v);
}

static void bb_le(bb *b, uint64_t v, int n)
{
  bb_reserve(b, (size_t)n);
  for (int i = 0; i < n; i++)
    b->p[b->len++] = (unsigned char)(v >> (8 * i));
}

static void bb_free(bb *b)
{
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ---- Thrift compact protocol, the encoding side ---- */

typedef struct tc {
  bb *b;
  int16_t last[16];   /* last field id per open struct */
  int depth;
} tc;

static void tc_field(tc *t, int id, int type)
{
  int delta = id - t->last[t->depth];
  if (delta > 0 && delta <= 15) {
    bb_byte(t->b, (unsigned)(delta << 4 | type));
  } else {
    bb_byte(t->b, (unsigned)type);
    bb_varint(t->b, (uint64_t)(((uint32_t)id << 1) ^ (uint32_t)(id >> 15)));
  }
  t->last[t->depth] = (int16_t)id;
}

static uint64_t zigzag(int64_t v)
{
  return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static void tc_i32(tc *t, int id, int32_t v)
{
  tc_field(t, id, THRIFT_I32);
  bb_varint(t->b, zigzag(v));
}

static void tc_i64(tc *t, int id, int64_t v)
{
  tc_field(t, id, THRIFT_I64);
  bb_varint(t->b, zigzag(v));
}

static void tc_i8(tc *t, int id, int v)
{
  tc_field(t, id, THRIFT_I8);
  bb_byte(t->b, (unsigned)v & 0xff);
}

static void tc_bool(tc *t, int id, bool v)
{
  tc_field(t, id, v ? THRIFT_TRUE : THRIFT_FALSE);
}

static void tc_bin(tc *t, int id, const void *p, size_t n)
{
  tc_field(t, id, THRIFT_BINARY);
  bb_varint(t->b, n);
  bb_put(t->b, p, n);
}

/* a struct as a field (id > 0) or as a list element (id 0) */
static void tc_begin(tc *t, int id)
{
  if (id > 0)
    tc_field(t, id, THRIFT_STRUCT);
  t->last[++t->depth] = 0;
}

static void tc_end(tc *t)
{
  bb_byte(t->b, THRIFT_STOP);
  t->depth--;
}

static void tc_list(tc *t, int id, int elem, size_t n)
{
  tc_field(t, id, THRIFT_LIST);
  if (n < 15) {
    bb_byte(t->b, (unsigned)(n << 4 | (size_t)elem));
  } else {
    bb_byte(t->b, 0xf0u | (unsigned)elem);
    bb_varint(t->b, n);
  }
}

/* an empty struct as a field: a union's member such as StringType */
static void tc_empty(tc *t, int id)
{
  tc_begin(t, id);
  tc_end(t);
}

/* ---- RLE / bit-packed hybrid ---- */

static void bitpack8(bb *out, const uint32_t *v, int nv, int bw)
{
  uint64_t acc = 0;
  int nbits = 0;
  for (int i = 0; i < 8; i++) {
    uint64_t x = i < nv ? v[i] : 0;
    acc |= x << nbits;
    nbits += bw;
    while (nbits >= 8) {
      bb_byte(out, (unsigned)(acc & 0xff));
      acc >>= 8;
      nbits -= 8;
    }
  }
}

static void flush_packed(bb *out, bb *pend, int *ngroups)
{
  if (*ngroups == 0)
    return;
  bb_varint(out, (uint64_t)*ngroups << 1 | 1);
  bb_put(out, pend->p, pend->len);
  pend->len = 0;
  *ngroups = 0;
}

/* Runs of 8 or more equal values become RLE runs, the rest bit-packed
 * groups of 8 (the last padded with zeros; readers stop at the page's
 * value count). */
static void rle_encode(bb *out, const uint32_t *v, size_t n, int bw)
{
  bb pend = {0};
  int ngroups = 0;
  size_t i = 0;
  int vbytes = (bw + 7) / 8;
  while (i < n) {
    size_t run = 1;
    while (i + run < n && v[i + run] == v[i])
      run++;
    if (run >= 8) {
      flush_packed(out, &pend, &ngroups);
      bb_varint(out, (uint64_t)run << 1);
      bb_le(out, v[i], vbytes);
      i += run;
      continue;
    }
    int take = n - i >= 8 ? 8 : (int)(n - i);
    bitpack8(&pend, v + i, take, bw);
    ngroups++;
    i += (size_t)take;
    if (ngroups == 63)
      flush_packed(out, &pend, &ngroups);
  }
  flush_packed(out, &pend, &ngroups);
  bb_free(&pend);
}

static int bit_width(uint32_t max)
{
  int w = 1;
  while (w < 32 && (max >> w) != 0)
    w++;
  return w;
}

/* ---- the writer ---- */

typedef struct colbuf {
  pqw_column c;          /* name owned */
  int ptype;             /* PQ_* physical type */
  uint8_t *def;          /* per row: 1 value, 0 NULL */
  size_t nrows;
  size_t defcap;
  int64_t *iv;           /* non-NULL values (I64 kinds) */
  double *fv;            /* (PQW_DOUBLE, PQW_FLOAT: rounded to float) */
  uint32_t *slen;        /* (PQW_STRING) lengths, bytes in sdata */
  size_t nvals;
  size_t vcap;
  bb sdata;
} colbuf;

typedef struct pageinfo {
  uint64_t off;          /* its header */
  uint64_t size;         /* header + compressed body */
  uint64_t first_row;
  uint64_t nulls;
  bool null_page;        /* no values */
  bb min, max;
} pageinfo;

typedef struct chunkmeta {
  pageinfo *pg;          /* data pages */
  size_t npg, pgcap;
  bool ci_ok;            /* every page has its bounds: a ColumnIndex */
  uint64_t oi_off, oi_len, ci_off, ci_len;
  bool dict;
  uint64_t num_values;   /* rows, NULLs included */
  uint64_t null_count;
  uint64_t usize;        /* headers included */
  uint64_t csize;
  uint64_t start;        /* first byte of the chunk */
  uint64_t data_off;     /* first data page */
  uint64_t dict_off;     /* dictionary page (when dict) */
  bool has_minmax;
  bb min;
  bb max;
} chunkmeta;

typedef struct rgmeta {
  chunkmeta *cols;
  uint64_t rows;
  uint64_t usize;
  uint64_t csize;
  uint64_t start;
} rgmeta;

struct pqw_writer {
  colbuf *cols;
  int ncols;
  pqw_options opt;
  pqw_out_fn out;
  void *out_ctx;
  uint64_t off;          /* bytes handed to out() */
  uint64_t rows;         /* rows appended in total */
  uint64_t rg_rows;      /* rows buffered */
  uint64_t rg_bytes;     /* bytes buffered */
  rgmeta *rgs;
  size_t nrgs;
  size_t rgcap;
  bool finished;
  /* scratch of write_chunk, kept between chunks (fresh pages cost faults) */
  size_t *soff;          /* string offsets */
  size_t soffcap;
  uint32_t *idx;         /* dictionary indices */
  size_t idxcap;
  uint32_t *lev;         /* a page's levels */
  uint32_t *slots;       /* the dictionary's hash table */
  size_t *first;         /* the dictionary's entries */
  bb body;
  bb levels;
};

static int ptype_of(pqw_kind k)
{
  switch (k) {
  case PQW_BOOLEAN:
    return PQ_BOOLEAN;
  case PQW_INT8:
  case PQW_INT16:
  case PQW_INT32:
  case PQW_DATE:
    return PQ_INT32;
  case PQW_DOUBLE:
    return PQ_DOUBLE;
  case PQW_FLOAT:
    return PQ_FLOAT;
  case PQW_STRING:
  case PQW_DECIMAL_BYTES:
    return PQ_BYTE_ARRAY;
  default:
    return PQ_INT64;
  }
}

/* The floating kinds keep their values in fv. */
static bool is_fp(const colbuf *c)
{
  return c->ptype == PQ_DOUBLE || c->ptype == PQ_FLOAT;
}

static int emit(pqw_writer *w, const void *p, size_t n, err *e)
{
  int rc = w->out(w->out_ctx, p, n, e);
  if (rc == 0)
    w->off += n;
  return rc;
}

int pqw_new(const pqw_column *cols, int ncols, const pqw_options *opt, pqw_out_fn out,
            void *out_ctx, pqw_writer **wout, err *e)
{
  *wout = NULL;
  if (ncols < 1 || ncols > PQW_MAX_COLUMNS)
    return err_set(e, ERR_INVALID, "a parquet file needs 1 to %d columns, not %d",
                   PQW_MAX_COLUMNS, ncols);
  for (int i = 0; i < ncols; i++) {
    if (cols[i].kind == PQW_DECIMAL && (cols[i].precision < 1 || cols[i].precision > 18))
      return err_set(e, ERR_INVALID, "cannot write column '%s': decimal precision %d is not 1..18",
                     cols[i].name, cols[i].precision);
    if (cols[i].kind == PQW_DECIMAL_BYTES && (cols[i].precision < 1 || cols[i].precision > 38))
      return err_set(e, ERR_INVALID, "cannot write column '%s': decimal precision %d is not 1..38",
                     cols[i].name, cols[i].precision);
  }
  pqw_writer *w = xcalloc(1, sizeof *w);
  w->cols = xcalloc((size_t)ncols, sizeof *w->cols);
  w->ncols = ncols;
  if (opt != NULL)
    w->opt = *opt;
  if (w->opt.row_group_rows == 0)
    w->opt.row_group_rows = PQW_ROW_GROUP_ROWS;
  if (w->opt.row_group_bytes == 0)
    w->opt.row_group_bytes = PQW_ROW_GROUP_BYTES;
  w->out = out;
  w->out_ctx = out_ctx;
  for (int i = 0; i < ncols; i++) {
    w->cols[i].c = cols[i];
    w->cols[i].c.name = xstrdup(cols[i].name != NULL ? cols[i].name : "");
    w->cols[i].ptype = ptype_of(cols[i].kind);
  }
  int rc = emit(w, PARQUET_MAGIC, PARQUET_MAGIC_LEN, e);
  if (rc < 0) {
    pqw_free(w);
    return rc;
  }
  *wout = w;
  return 0;
}

static void colbuf_clear(colbuf *c)
{
  c->nrows = 0;
  c->nvals = 0;
  c->sdata.len = 0;
}

pqw_writer *pqw_free(pqw_writer *w)
{
  if (w == NULL)
    return NULL;
  for (int i = 0; i < w->ncols; i++) {
    colbuf *c = &w->cols[i];
    free((void *)c->c.name);
    free(c->def);
    free(c->iv);
    free(c->fv);
    free(c->slen);
    bb_free(&c->sdata);
  }
  for (size_t g = 0; g < w->nrgs; g++) {
    for (int i = 0; i < w->ncols; i++) {
      chunkmeta *m = &w->rgs[g].cols[i];
      bb_free(&m->min);
      bb_free(&m->max);
      for (size_t k = 0; k < m->npg; k++) {
        bb_free(&m->pg[k].min);
        bb_free(&m->pg[k].max);
      }
      free(m->pg);
    }
    free(w->rgs[g].cols);
  }
  free(w->rgs);
  free(w->cols);
  free(w->soff);
  free(w->idx);
  free(w->lev);
  free(w->slots);
  free(w->first);
  bb_free(&w->body);
  bb_free(&w->levels);
  free(w);
  return NULL;
}

uint64_t pqw_buffered(const pqw_writer *w)
{
  return w->rg_bytes;
}

uint64_t pqw_written(const pqw_writer *w)
{
  return w->off;
}

uint64_t pqw_rows(const pqw_writer *w)
{
  return w->rows;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
  if (need <= *cap)
    return p;
  size_t nc = *cap ? *cap * 2 : 4096;
  while (nc < need)
    nc *= 2;
  void *np = xrealloc(p, nc * elem);
  *cap = nc;
  return np;
}

/* Appends rows start..start+n of the caller's rows. */
static void append_some(pqw_writer *w, const vec *cols, const uint16_t *rows, int start, int n)
{
  for (int ci = 0; ci < w->ncols; ci++) {
    colbuf *c = &w->cols[ci];
    const vec *v = &cols[ci];
    size_t dc = c->defcap;
    c->def = grow(c->def, &dc, c->nrows + (size_t)n, 1);
    c->defcap = dc;
    size_t vc = c->vcap;
    if (is_fp(c))
      c->fv = grow(c->fv, &vc, c->nvals + (size_t)n, sizeof(double));
    else if (c->ptype == PQ_BYTE_ARRAY)
      c->slen = grow(c->slen, &vc, c->nvals + (size_t)n, sizeof(uint32_t));
    else
      c->iv = grow(c->iv, &vc, c->nvals + (size_t)n, sizeof(int64_t));
    c->vcap = vc;
    size_t before = c->sdata.len;
    for (int j = 0; j < n; j++) {
      int r = rows != NULL ? rows[start + j] : start + j;
      int idx = v->is_const ? 0 : r;
      bool null = v->nulls != NULL && v->nulls[idx];
      c->def[c->nrows++] = null ? 0 : 1;
      if (null)
        continue;
      if (c->c.kind == PQW_FLOAT) {
        c->fv[c->nvals++] = (double)(float)v->f[idx];
      } else if (c->c.kind == PQW_DOUBLE) {
        c->fv[c->nvals++] = v->f[idx];
      } else if (c->ptype == PQ_BYTE_ARRAY) {
        str_ref s = v->s[idx];
        c->slen[c->nvals++] = (uint32_t)s.len;
        bb_put(&c->sdata, s.ptr, s.len);
      } else {
        c->iv[c->nvals++] = v->i[idx];
      }
    }
    /* per row: a level, and 8 bytes of value (or a length and the bytes) */
    w->rg_bytes += (uint64_t)n * 9 + (c->sdata.len - before);
  }
  w->rows += (uint64_t)n;
  w->rg_rows += (uint64_t)n;
}

int pqw_append(pqw_writer *w, const vec *cols, const uint16_t *rows, int n, err *e)
{
  if (w->finished)
    return err_set(e, ERR_INTERNAL, "parquet writer already finished");
  int done = 0;
  while (done < n) {
    /* a row group ends at exactly row_group_rows rows */
    uint64_t room = w->opt.row_group_rows - w->rg_rows;
    int k = (uint64_t)(n - done) < room ? n - done : (int)room;
    append_some(w, cols, rows, done, k);
    done += k;
    if (w->rg_rows >= w->opt.row_group_rows || w->rg_bytes >= w->opt.row_group_bytes) {
      int rc = pqw_flush(w, e);
      if (rc < 0)
        return rc;
    }
  }
  return 0;
}

/* ---- encoding one column chunk ---- */

/* The PLAIN bytes of value i of c (strings: 4-byte length + bytes). */
static void plain_value(const colbuf *c, size_t i, const size_t *soff, bb *out)
{
  switch (c->ptype) {
  case PQ_INT32:
    bb_le(out, (uint64_t)(uint32_t)(int32_t)c->iv[i], 4);
    break;
  case PQ_INT64:
    bb_le(out, (uint64_t)c->iv[i], 8);
    break;
  case PQ_DOUBLE: {
    uint64_t u;
    memcpy(&u, &c->fv[i], 8);
    bb_le(out, u, 8);
    break;
  }
  case PQ_FLOAT: {
    float f = (float)c->fv[i];
    uint32_t u;
    memcpy(&u, &f, 4);
    bb_le(out, u, 4);
    break;
  }
  case PQ_BYTE_ARRAY:
    bb_le(out, c->slen[i], 4);
    bb_put(out, c->sdata.p + soff[i], c->slen[i]);
    break;
  default:
    break;
  }
}

/* The statistic bytes of value i (as PLAIN, without a string's length). */
static void stat_value(const colbuf *c, size_t i, const size_t *soff, bb *out)
{
  out->len = 0;
  if (c->ptype == PQ_BOOLEAN)
    bb_byte(out, c->iv[i] != 0);
  else if (c->ptype == PQ_BYTE_ARRAY)
    bb_put(out, c->sdata.p + soff[i], c->slen[i]);
  else
    plain_value(c, i, soff, out);
}

static int cmp_vals(const colbuf *c, size_t a, size_t b, const size_t *soff)
{
  if (is_fp(c))
    return c->fv[a] < c->fv[b] ? -1 : c->fv[a] > c->fv[b];
  if (c->ptype == PQ_BYTE_ARRAY) {
    size_t la = c->slen[a];
    size_t lb = c->slen[b];
    int r = memcmp(c->sdata.p + soff[a], c->sdata.p + soff[b], la < lb ? la : lb);
    if (r != 0)
      return r;
    return la < lb ? -1 : la > lb;
  }
  return c->iv[a] < c->iv[b] ? -1 : c->iv[a] > c->iv[b];
}

static bool val_eq(const colbuf *c, size_t a, size_t b, const size_t *soff)
{
  if (c->ptype == PQ_BYTE_ARRAY)
    return c->slen[a] == c->slen[b] &&
           memcmp(c->sdata.p + soff[a], c->sdata.p + soff[b], c->slen[a]) == 0;
  if (is_fp(c))
    return memcmp(&c->fv[a], &c->fv[b], 8) == 0;
  return c->iv[a] == c->iv[b];
}

static uint64_t val_hash(const colbuf *c, size_t i, const size_t *soff)
{
  uint64_t h = 1469598103934665603ull;
  if (c->ptype == PQ_BYTE_ARRAY) {
    const unsigned char *p = c->sdata.p + soff[i];
    for (uint32_t k = 0; k < c->slen[i]; k++)
      h = (h ^ p[k]) * 1099511628211ull;
    return h ^ (h >> 29);
  }
  uint64_t x;
  if (is_fp(c))
    memcpy(&x, &c->fv[i], 8);
  else
    x = (uint64_t)c->iv[i];
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

/* Dictionary indices of every value (idx[nvals]) and the dictionary's
 * values (first[k] = index of the value that opened entry k); false when
 * the chunk should be PLAIN (invariant (2)). */
static bool build_dict(pqw_writer *w, const colbuf *c, const size_t *soff, uint32_t *idx,
                       size_t *ndict)
{
  *ndict = 0;
  if (c->ptype == PQ_BOOLEAN || c->nvals < 2)
    return false;
  size_t cap = 1024;
  while (cap < c->nvals * 2 && cap < (size_t)DICT_MAX_VALUES * 4)
    cap *= 2;
  if (w->slots == NULL) {
    w->slots = xmalloc((size_t)DICT_MAX_VALUES * 4 * sizeof *w->slots);
    w->first = xmalloc((size_t)DICT_MAX_VALUES * sizeof *w->first);
  }
  uint32_t *slots = w->slots;  /* entry + 1, 0 empty */
  size_t *first = w->first;
  memset(slots, 0, cap * sizeof *slots);
  size_t n = 0;
  size_t bytes = 0;
  bool ok = true;
  for (size_t i = 0; i < c->nvals && ok; i++) {
    size_t s = (size_t)val_hash(c, i, soff) & (cap - 1);
    for (;;) {
      uint32_t k = slots[s];
      if (k == 0) {
        if (n == DICT_MAX_VALUES || n * 2 >= cap) {
          ok = false;
          break;
        }
        first[n] = i;
        slots[s] = (uint32_t)++n;
        bytes += c->ptype == PQ_BYTE_ARRAY ? 4 + c->slen[i] : 8;
        if (bytes > DICT_MAX_BYTES)
          ok = false;
        idx[i] = (uint32_t)(n - 1);
        break;
      }
      if (val_eq(c, first[k - 1], i, soff)) {
        idx[i] = k - 1;
        break;
      }
      s = (s + 1) & (cap - 1);
    }
  }
  /* worth it only with repeats: at most half as many entries as values */
  if (!ok || n * 2 > c->nvals)
    return false;
  *ndict = n;
  return true;
}

static int compress(pqw_codec k, const bb *in, char **out, size_t *outlen, err *e)
{
  switch (k) {
  case PQW_SNAPPY:
    return codec_snappy_compress(in->p, in->len, out, outlen, e);
  case PQW_GZIP:
    return codec_gzip_compress(in->p, in->len, 6, out, outlen, e);
  case PQW_ZSTD:
    return codec_zstd_compress(in->p, in->len, 3, out, outlen, e);
  default:
    *out = NULL;
    *outlen = in->len;
    return 0;
  }
}

/* Writes one page: header (with the sizes) and the compressed body. */
/* min and max of values [from, to) as statistic bytes (invariant (3));
   false when they cannot be written (a NaN, a string too long, no value) */
static bool bounds(const colbuf *c, size_t from, size_t to, const size_t *soff,
                   const size_t *first, bb *min, bb *max)
{
  size_t imin = SIZE_MAX;
  size_t imax = SIZE_MAX;
  for (size_t k = from; k < to; k++) {
    size_t i = first != NULL ? first[k] : k;
    if (is_fp(c) && isnan(c->fv[i]))
      return false;
    if (imin == SIZE_MAX || cmp_vals(c, i, imin, soff) < 0)
      imin = i;
    if (imax == SIZE_MAX || cmp_vals(c, i, imax, soff) > 0)
      imax = i;
  }
  /* (a decimal's bytes are signed: their byte order is not its order) */
  if (imin == SIZE_MAX || c->c.kind == PQW_DECIMAL_BYTES ||
      (c->ptype == PQ_BYTE_ARRAY &&
       (c->slen[imin] > STAT_MAX_STRING || c->slen[imax] > STAT_MAX_STRING)))
    return false;
  stat_value(c, imin, soff, min);
  stat_value(c, imax, soff, max);
  if (c->ptype == PQ_DOUBLE) {
    /* zeros: -0.0 as the min, +0.0 as the max (the format's rule) */
    double z = 0.0;
    uint64_t u;
    if (c->fv[imin] == 0.0) {
      z = -0.0;
      memcpy(&u, &z, 8);
      min->len = 0;
      bb_le(min, u, 8);
    }
    if (c->fv[imax] == 0.0) {
      z = 0.0;
      memcpy(&u, &z, 8);
      max->len = 0;
      bb_le(max, u, 8);
    }
  } else if (c->ptype == PQ_FLOAT) {
    float z;
    uint32_t u;
    if (c->fv[imin] == 0.0) {
      z = -0.0f;
      memcpy(&u, &z, 4);
      min->len = 0;
      bb_le(min, u, 4);
    }
    if (c->fv[imax] == 0.0) {
      z = 0.0f;
      memcpy(&u, &z, 4);
      max->len = 0;
      bb_le(max, u, 4);
    }
  }
  return true;
}

static int write_page(pqw_writer *w, chunkmeta *m, int type, const bb *body, int32_t nvalues,
                      int encoding, err *e)
{
  char *z = NULL;
  size_t zlen = 0;
  int rc = compress(w->opt.codec, body, &z, &zlen, e);
  if (rc < 0)
    return rc;
  if (body->len > INT32_MAX || zlen > INT32_MAX) {
    free(z);
    return err_set(e, ERR_ENTITY_TOO_LARGE, "a parquet page is larger than 2 GiB");
  }
  bb h = {0};
  tc t = {.b = &h};
  tc_i32(&t, 1, type);
  tc_i32(&t, 2, (int32_t)body->len);
  tc_i32(&t, 3, (int32_t)zlen);
  if (type == PQ_PAGE_DICTIONARY) {
    tc_begin(&t, 7);
    tc_i32(&t, 1, nvalues);
    tc_i32(&t, 2, PQ_ENC_PLAIN);
    tc_end(&t);
  } else {
    tc_begin(&t, 5);
    tc_i32(&t, 1, nvalues);
    tc_i32(&t, 2, encoding);
    tc_i32(&t, 3, PQ_ENC_RLE);
    tc_i32(&t, 4, PQ_ENC_RLE);
    tc_end(&t);
  }
  bb_byte(&h, THRIFT_STOP);
  rc = emit(w, h.p, h.len, e);
  if (rc == 0)
    rc = emit(w, z != NULL ? (const void *)z : (const void *)body->p, zlen, e);
  m->usize += h.len + body->len;
  m->csize += h.len + zlen;
  bb_free(&h);
  free(z);
  return rc;
}

static int write_chunk(pqw_writer *w, colbuf *c, chunkmeta *m, err *e)
{
  int rc = 0;
  size_t *soff = NULL;
  if (c->ptype == PQ_BYTE_ARRAY) {
    w->soff = grow(w->soff, &w->soffcap, c->nvals + 1, sizeof *w->soff);
    soff = w->soff;
    size_t o = 0;
    for (size_t i = 0; i < c->nvals; i++) {
      soff[i] = o;
      o += c->slen[i];
    }
  }
  memset(m, 0, sizeof *m);
  m->start = w->off;
  m->num_values = c->nrows;
  m->null_count = c->nrows - c->nvals;

  w->idx = grow(w->idx, &w->idxcap, c->nvals + 1, sizeof *w->idx);
  uint32_t *idx = w->idx;
  if (w->lev == NULL)
    w->lev = xmalloc((PAGE_ROWS + 1) * sizeof *w->lev);
  uint32_t *lev = w->lev;
  size_t ndict = 0;
  m->dict = build_dict(w, c, soff, idx, &ndict);
  const size_t *first = w->first;

  /* statistics (invariant (3)): over the dictionary's entries when there is one */
  m->has_minmax = bounds(c, 0, m->dict ? ndict : c->nvals, soff, m->dict ? first : NULL,
                         &m->min, &m->max);
  m->ci_ok = true;

  int bw = m->dict ? bit_width(ndict > 1 ? (uint32_t)(ndict - 1) : 1) : 0;
  bb body = w->body;
  body.len = 0;
  if (m->dict) {
    for (size_t k = 0; k < ndict; k++)
      plain_value(c, first[k], soff, &body);
    m->dict_off = w->off;
    rc = write_page(w, m, PQ_PAGE_DICTIONARY, &body, (int32_t)ndict, PQ_ENC_PLAIN, e);
  }
  m->data_off = w->off;
  size_t row = 0;
  size_t val = 0;
  while (rc == 0 && (row < c->nrows || (row == 0 && c->nrows == 0))) {
    /* the page's rows: up to PAGE_ROWS, or about PAGE_BYTES of values */
    size_t r1 = row;
    size_t v1 = val;
    size_t bytes = 0;
    while (r1 < c->nrows && r1 - row < PAGE_ROWS && bytes < PAGE_BYTES) {
      if (c->def[r1]) {
        bytes += m->dict ? 2 : c->ptype == PQ_BYTE_ARRAY ? 4 + c->slen[v1] : 8;
        v1++;
      }
      r1++;
    }
    body.len = 0;
    /* definition levels: 4-byte length, then the hybrid */
    for (size_t r = row; r < r1; r++)
      lev[r - row] = c->def[r];
    bb *levels = &w->levels;
    levels->len = 0;
    rle_encode(levels, lev, r1 - row, 1);
    bb_le(&body, levels->len, 4);
    bb_put(&body, levels->p, levels->len);
    if (m->dict) {
      bb_byte(&body, (unsigned)bw);
      rle_encode(&body, idx + val, v1 - val, bw);
    } else if (c->ptype == PQ_BOOLEAN) {
      for (size_t i = val; i < v1; i += 8) {
        unsigned byte = 0;
        for (size_t k = 0; k < 8 && i + k < v1; k++)
          byte |= (c->iv[i + k] != 0 ? 1u : 0u) << k;
        bb_byte(&body, byte);
      }
    } else if (HOST_LE && c->ptype == PQ_INT64) {
      bb_put(&body, c->iv + val, (v1 - val) * 8);
    } else if (HOST_LE && c->ptype == PQ_DOUBLE) {
      bb_put(&body, c->fv + val, (v1 - val) * 8);
    } else {
      for (size_t i = val; i < v1; i++)
        plain_value(c, i, soff, &body);
    }
    if (m->npg == m->pgcap) {
      m->pgcap = m->pgcap ? m->pgcap * 2 : 8;
      m->pg = xrealloc(m->pg, m->pgcap * sizeof *m->pg);
    }
    pageinfo *pg = &m->pg[m->npg++];
    memset(pg, 0, sizeof *pg);
    pg->off = w->off;
    pg->first_row = row;
    pg->nulls = (r1 - row) - (v1 - val);
    pg->null_page = v1 == val;
    if (!pg->null_page && !bounds(c, val, v1, soff, NULL, &pg->min, &pg->max))
      m->ci_ok = false;
    rc = write_page(w, m, PQ_PAGE_DATA, &body, (int32_t)(r1 - row),
                    m->dict ? PQ_ENC_RLE_DICTIONARY : PQ_ENC_PLAIN, e);
    pg->size = w->off - pg->off;
    row = r1;
    val = v1;
    if (c->nrows == 0)
      break;
  }
  w->body = body;   /* kept for the next chunk */
  return rc;
}

int pqw_flush(pqw_writer *w, err *e)
{
  if (w->rg_rows == 0)
    return 0;
  if (w->nrgs == w->rgcap) {
    size_t nc = w->rgcap ? w->rgcap * 2 : 8;
    rgmeta *n = xrealloc(w->rgs, nc * sizeof *n);
    w->rgs = n;
    w->rgcap = nc;
  }
  rgmeta *g = &w->rgs[w->nrgs++];
  memset(g, 0, sizeof *g);
  g->cols = xcalloc((size_t)w->ncols, sizeof *g->cols);
  g->rows = w->rg_rows;
  g->start = w->off;
  int rc = 0;
  for (int i = 0; i < w->ncols && rc == 0; i++) {
    rc = write_chunk(w, &w->cols[i], &g->cols[i], e);
    g->usize += g->cols[i].usize;
    g->csize += g->cols[i].csize;
  }
  for (int i = 0; i < w->ncols; i++)
    colbuf_clear(&w->cols[i]);
  w->rg_rows = 0;
  w->rg_bytes = 0;
  return rc;
}

/* ---- the footer ---- */

static void schema_element(tc *t, const colbuf *c)
{
  tc_begin(t, 0);
  tc_i32(t, 1, c->ptype);
  tc_i32(t, 3, PQ_OPTIONAL);
  tc_bin(t, 4, c->c.name, strlen(c->c.name));
  switch (c->c.kind) {
  case PQW_STRING:
    tc_i32(t, 6, PQ_CT_UTF8);
    tc_begin(t, 10);
    tc_empty(t, PQ_LT_STRING);
    tc_end(t);
    break;
  case PQW_INT8:
  case PQW_INT16:
  case PQW_INT32:
    tc_i32(t, 6, c->c.kind == PQW_INT8    ? PQ_CT_INT_8
                 : c->c.kind == PQW_INT16 ? PQ_CT_INT_16
                                          : PQ_CT_INT_32);
    tc_begin(t, 10);
    tc_begin(t, PQ_LT_INTEGER);
    tc_i8(t, 1, c->c.kind == PQW_INT8 ? 8 : c->c.kind == PQW_INT16 ? 16 : 32);
    tc_bool(t, 2, true);
    tc_end(t);
    tc_end(t);
    break;
  case PQW_DATE:
    tc_i32(t, 6, PQ_CT_DATE);
    tc_begin(t, 10);
    tc_empty(t, PQ_LT_DATE);
    tc_end(t);
    break;
  case PQW_TIMESTAMP:
    tc_i32(t, 6, PQ_CT_TIMESTAMP_MICROS);
    tc_begin(t, 10);
    tc_begin(t, PQ_LT_TIMESTAMP);
    tc_bool(t, 1, false);
    tc_begin(t, 2);
    tc_empty(t, PQ_UNIT_MICROS);
    tc_end(t);
    tc_end(t);
    tc_end(t);
    break;
  case PQW_DECIMAL:
  case PQW_DECIMAL_BYTES:
    tc_i32(t, 6, PQ_CT_DECIMAL);
    tc_i32(t, 7, c->c.scale);
    tc_i32(t, 8, c->c.precision);
    tc_begin(t, 10);
    tc_begin(t, PQ_LT_DECIMAL);
    tc_i32(t, 1, c->c.scale);
    tc_i32(t, 2, c->c.precision);
    tc_end(t);
    tc_end(t);
    break;
  default:
    break;
  }
  tc_end(t);
}

static void column_chunk(tc *t, const colbuf *c, const chunkmeta *m, int codec)
{
  tc_begin(t, 0);
  tc_i64(t, 2, (int64_t)m->start);
  tc_begin(t, 3);
  tc_i32(t, 1, c->ptype);
  if (m->dict) {
    tc_list(t, 2, THRIFT_I32, 3);
    bb_varint(t->b, zigzag(PQ_ENC_PLAIN));
    bb_varint(t->b, zigzag(PQ_ENC_RLE));
    bb_varint(t->b, zigzag(PQ_ENC_RLE_DICTIONARY));
  } else {
    tc_list(t, 2, THRIFT_I32, 2);
    bb_varint(t->b, zigzag(PQ_ENC_PLAIN));
    bb_varint(t->b, zigzag(PQ_ENC_RLE));
  }
  tc_list(t, 3, THRIFT_BINARY, 1);
  bb_varint(t->b, strlen(c->c.name));
  bb_put(t->b, c->c.name, strlen(c->c.name));
  tc_i32(t, 4, codec);
  tc_i64(t, 5, (int64_t)m->num_values);
  tc_i64(t, 6, (int64_t)m->usize);
  tc_i64(t, 7, (int64_t)m->csize);
  tc_i64(t, 9, (int64_t)m->data_off);
  if (m->dict)
    tc_i64(t, 11, (int64_t)m->dict_off);
  tc_begin(t, 12);
  if (m->has_minmax) {
    /* the legacy max/min (1, 2) only where their signed order is the same */
    if (c->ptype != PQ_BYTE_ARRAY && c->ptype != PQ_BOOLEAN) {
      tc_bin(t, 1, m->max.p, m->max.len);
      tc_bin(t, 2, m->min.p, m->min.len);
    }
  }
  tc_i64(t, 3, (int64_t)m->null_count);
  if (m->has_minmax) {
    tc_bin(t, 5, m->max.p, m->max.len);
    tc_bin(t, 6, m->min.p, m->min.len);
  }
  tc_end(t);
  tc_end(t);
  if (m->oi_len > 0) {
    tc_i64(t, 4, (int64_t)m->oi_off);
    tc_i32(t, 5, (int32_t)m->oi_len);
  }
  if (m->ci_len > 0) {
    tc_i64(t, 6, (int64_t)m->ci_off);
    tc_i32(t, 7, (int32_t)m->ci_len);
  }
  tc_end(t);
}

/* the page index (invariant (5)): ColumnIndexes, then OffsetIndexes */
static int write_page_index(pqw_writer *w, err *e)
{
  int rc = 0;
  bb b = {0};
  for (int pass = 0; pass < 2 && rc == 0; pass++) {
    for (size_t g = 0; g < w->nrgs && rc == 0; g++) {
      for (int i = 0; i < w->ncols && rc == 0; i++) {
        chunkmeta *m = &w->rgs[g].cols[i];
        if (m->npg == 0 || m->npg > INT32_MAX || (pass == 0 && !m->ci_ok))
          continue;
        b.len = 0;
        tc t = {.b = &b};
        if (pass == 0) {
          /* compact protocol: a list's booleans are bytes, 1 true, 2 false */
          tc_list(&t, 1, THRIFT_TRUE, m->npg);
          for (size_t k = 0; k < m->npg; k++)
            bb_byte(&b, m->pg[k].null_page ? 1 : 2);
          for (int mx = 0; mx < 2; mx++) {
            tc_list(&t, 2 + mx, THRIFT_BINARY, m->npg);
            for (size_t k = 0; k < m->npg; k++) {
              const bb *v = mx ? &m->pg[k].max : &m->pg[k].min;
              bb_varint(&b, v->len);
              bb_put(&b, v->p, v->len);
            }
          }
          tc_i32(&t, 4, 0);   /* boundary_order: UNORDERED */
          tc_list(&t, 5, THRIFT_I64, m->npg);
          for (size_t k = 0; k < m->npg; k++)
            bb_varint(&b, zigzag((int64_t)m->pg[k].nulls));
        } else {
          tc_list(&t, 1, THRIFT_STRUCT, m->npg);
          for (size_t k = 0; k < m->npg; k++) {
            tc_begin(&t, 0);
            tc_i64(&t, 1, (int64_t)m->pg[k].off);
            tc_i32(&t, 2, (int32_t)m->pg[k].size);
            tc_i64(&t, 3, (int64_t)m->pg[k].first_row);
            tc_end(&t);
          }
        }
        bb_byte(&b, THRIFT_STOP);
        if (pass == 0) {
          m->ci_off = w->off;
          m->ci_len = b.len;
        } else {
          m->oi_off = w->off;
          m->oi_len = b.len;
        }
        rc = emit(w, b.p, b.len, e);
      }
    }
  }
  bb_free(&b);
  return rc;
}

int pqw_finish(pqw_writer *w, err *e)
{
  if (w->finished)
    return 0;
  int rc = pqw_flush(w, e);
  if (rc < 0)
    return rc;
  if ((rc = write_page_index(w, e)) < 0)
    return rc;
  w->finished = true;
  bb f = {0};
  tc t = {.b = &f};
  tc_i32(&t, 1, 1);
  tc_list(&t, 2, THRIFT_STRUCT, (size_t)w->ncols + 1);
  tc_begin(&t, 0);
  tc_bin(&t, 4, "schema", 6);
  tc_i32(&t, 5, w->ncols);
  tc_end(&t);
  for (int i = 0; i < w->ncols; i++)
    schema_element(&t, &w->cols[i]);
  tc_i64(&t, 3, (int64_t)w->rows);
  tc_list(&t, 4, THRIFT_STRUCT, w->nrgs);
  for (size_t g = 0; g < w->nrgs; g++) {
    rgmeta *r = &w->rgs[g];
    tc_begin(&t, 0);
    tc_list(&t, 1, THRIFT_STRUCT, (size_t)w->ncols);
    for (int i = 0; i < w->ncols; i++)
      column_chunk(&t, &w->cols[i], &r->cols[i], (int)w->opt.codec);
    tc_i64(&t, 2, (int64_t)r->usize);
    tc_i64(&t, 3, (int64_t)r->rows);
    tc_i64(&t, 5, (int64_t)r->start);
    tc_i64(&t, 6, (int64_t)r->csize);
    tc_field(&t, 7, THRIFT_I16);
    bb_varint(&f, zigzag((int64_t)g));
    tc_end(&t);
  }
  tc_bin(&t, 6, CREATED_BY, strlen(CREATED_BY));
  bb_byte(&f, THRIFT_STOP);
  if (f.len > UINT32_MAX) {
    bb_free(&f);
    return err_set(e, ERR_ENTITY_TOO_LARGE, "parquet footer too large");
  }
  bb_le(&f, f.len, 4);
  bb_put(&f, PARQUET_MAGIC, PARQUET_MAGIC_LEN);
  rc = emit(w, f.p, f.len, e);
  bb_free(&f);
  return rc;
}
