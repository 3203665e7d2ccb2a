/* formats/parquet_page.c -- decoding a column chunk: page headers, codecs,
 * repetition / definition levels, the value encodings (PLAIN, dictionary,
 * RLE / bit-packed, DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY,
 * DELTA_BYTE_ARRAY, BYTE_STREAM_SPLIT), data pages v1 and v2, the
 * conversion of Parquet values to engine values, and the assembly of nested
 * fields into JSON text.
 *
 * How a field is read: each of its leaves is decoded into a `leafdata` --
 * its level entries (rep[], def[]) and its dense, non-NULL values already
 * converted to engine values. A flat field spreads the dense values over
 * its rows by the definition levels (in place, from the back); a nested
 * field walks the schema tree over its leaves' levels and writes JSON.
 *
 * Invariants:
 *   (1) Every read from a page checks the bytes left; every count taken from
 *       the file is checked against what it must fit in before use, and
 *       every growth of decoded data against the caller's byte limit.
 *   (2) Strings point into the chunk bytes (PLAIN, uncompressed), into a
 *       kept page buffer, or into the column's own buffers: all live until
 *       pq_column_release.
 *   (3) Values are never changed except by the documented type mapping
 *       (parquet.h): strings are the stored bytes.
 *   (4) With wanted row ranges (pq_column_read_rows), a flat leaf's data
 *       page holding none of them is skipped by its header alone; its rows
 *       read as NULL (zero when the leaf has no definition levels), which
 *       the caller never hands out. A snappy PLAIN page (v1) whose wanted
 *       rows end early is decompressed and decoded up to its last wanted
 *       row only (page_prefix); its later rows read as NULL the same way.
 *
 * Start reading at pq_column_read().
 */
#include "parquet_internal.h"
#include "formats/codec.h"

#include "base/mem.h"

#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

/* ---- owned buffers ---- */

struct pq_buf {
  struct pq_buf *next;
  size_t size;
  char data[];
};

/* ---- the buffer pool ---- */

#define POOL_SLOTS 96
#define POOL_MIN (16u << 10)   /* smaller buffers are not kept */
#define POOL_POPULATE_MIN (256u << 10)   /* larger fresh buffers are faulted in at once */

struct pq_pool {
  void *blk[POOL_SLOTS];
  size_t cap[POOL_SLOTS];
  int n;
};

pq_pool *pq_pool_new(void)
{
  return xcalloc(1, sizeof(pq_pool));
}

void pq_pool_free(pq_pool *p)
{
  if (p == NULL)
    return;
  for (int k = 0; k < p->n; k++)
    free(p->blk[k]);
  free(p);
}

void *pq_pool_take(pq_pool *p, size_t n)
{
  if (p != NULL && n >= POOL_MIN / 2) {
    int best = -1;
    for (int k = 0; k < p->n; k++)
      if (p->cap[k] >= n && (best < 0 || p->cap[k] < p->cap[best]))
        best = k;
    /* a much larger buffer is not wasted on a small request */
    if (best >= 0 && (p->cap[best] <= 4 * n || p->cap[best] <= POOL_MIN * 4)) {
      void *b = p->blk[best];
      p->n--;
      p->blk[best] = p->blk[p->n];
      p->cap[best] = p->cap[p->n];
      return b;
    }
  }
  void *b = xmalloc(n ? n : 1);
  if (n >= POOL_POPULATE_MIN) {
    /* fresh pages: faulted in by one madvise rather than a trap per 4 KB
       page as the decoder first writes them (dear on a virtual machine);
       an older kernel refuses it and the pages fault in as before */
    uintptr_t a = ((uintptr_t)b + 4095) & ~(uintptr_t)4095;
    uintptr_t z = ((uintptr_t)b + n) & ~(uintptr_t)4095;
    if (z > a)
      (void)madvise((void *)a, z - a, MADV_POPULATE_WRITE);
  }
  return b;
}

void pq_pool_give(pq_pool *p, void *buf)
{
  if (buf == NULL)
    return;
  size_t cap = malloc_usable_size(buf);
  if (p == NULL || cap < POOL_MIN) {
    free(buf);
    return;
  }
  if (p->n == POOL_SLOTS) {
    /* drop the smallest */
    int s = 0;
    for (int k = 1; k < p->n; k++)
      if (p->cap[k] < p->cap[s])
        s = k;
    if (p->cap[s] >= cap) {
      free(buf);
      return;
    }
    free(p->blk[s]);
    p->n--;
    p->blk[s] = p->blk[p->n];
    p->cap[s] = p->cap[p->n];
  }
  p->blk[p->n] = buf;
  p->cap[p->n] = cap;
  p->n++;
}

/* grows a buffer of the pool (old NULL: a new one) */
static void *pool_grow(pq_pool *p, void *old, size_t oldn, size_t n)
{
  if (old != NULL && malloc_usable_size(old) >= n)
    return old;
  void *b = pq_pool_take(p, n);
  if (old != NULL) {
    if (oldn)
      memcpy(b, old, oldn);
    pq_pool_give(p, old);
  }
  return b;
}

typedef struct rd {
  const pq_file *f;
  const pq_node *leaf;     /* current leaf */
  pq_column *col;          /* owner of buffers */
  pq_pool *pool;           /* where buffers come from (may be NULL) */
  bool some_pages;         /* the chunk holds some pages only: */
  int64_t rows;            /* their rows */
  const int64_t *rr;       /* flat fields: the row ranges [b, e) wanted (NULL all); */
  int nrr;                 /* pages holding none of them are not decoded */
  bool codes;              /* flat fields: keep dictionary codes (pq_column.codes) */
  size_t max;
  size_t used;
  err *e;
} rd;

static int fail(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(rd *r, const char *fmt, ...)
{
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return err_set(r->e, ERR_INVALID, "corrupt Parquet file '%s': column '%s': %s", r->f->name,
                 r->leaf ? r->leaf->name : "?", msg);
}

static int charge(rd *r, size_t n)
{
  if (n > r->max || r->used > r->max - n)
    return err_set(r->e, ERR_ENTITY_TOO_LARGE,
                   "reading Parquet file '%s' passed the query's memory limit of %zu MB",
                   r->f->name, r->max >> 20);
  r->used += n;
  return 0;
}

/* a buffer owned by the column (freed by pq_column_release) */
static void *own(rd *r, size_t n)
{
  struct pq_buf *b = pq_pool_take(r->pool, sizeof *b + n + 1);
  b->size = n;
  b->next = r->col->bufs;
  r->col->bufs = b;
  r->col->bytes += n;
  return b->data;
}

static uint32_t le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
  return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* ---- bit unpacking and the RLE / bit-packed hybrid ---- */

/* value j of width bw (<= 64) from little-endian packed bits p[0..n) */
static uint64_t unpack_one(const uint8_t *p, size_t n, uint64_t j, int bw)
{
  uint64_t bit = j * (uint64_t)bw;
  size_t byte = (size_t)(bit >> 3);
  int sh = (int)(bit & 7);
  uint8_t tmp[16] = {0};
  size_t take = n > byte ? n - byte : 0;
  if (take > 9)
    take = 9;
  if (take > 0)
    memcpy(tmp, p + byte, take);
  uint64_t lo = le64(tmp);
  uint64_t v = lo >> sh;
  if (sh + bw > 64)
    v |= (uint64_t)tmp[8] << (64 - sh);
  if (bw < 64)
    v &= ((uint64_t)1 << bw) - 1;
  return v;
}

typedef struct hybrid {
  const uint8_t *p, *end;
  int bw;
  uint32_t rle_left;       /* values left in an RLE run */
  uint64_t rle_val;
  uint32_t bp_left;        /* values left in a bit-packed run */
  const uint8_t *bp;       /* its bytes */
  size_t bp_n;
  uint64_t bp_pos;
} hybrid;

static void hybrid_init(hybrid *h, const uint8_t *p, size_t n, int bw)
{
  memset(h, 0, sizeof *h);
  h->p = p;
  h->end = p + n;
  h->bw = bw;
}

static bool hybrid_varint(hybrid *h, uint64_t *out)
{
  uint64_t v = 0;
  for (int s = 0; s < 64; s += 7) {
    if (h->p >= h->end)
      return false;
    uint8_t b = *h->p++;
    v |= (uint64_t)(b & 0x7f) << s;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

/* reads the next run's header: an RLE run (rle_left) or a bit-packed one
   (bp_left), or nothing for an empty run; false when the data ends */
static bool hybrid_run(hybrid *h)
{
  uint64_t hd;
  if (!hybrid_varint(h, &hd))
    return false;
  if (hd & 1) {
    uint64_t groups = hd >> 1;
    uint64_t bytes = groups * (uint64_t)h->bw;
    if (groups == 0 || groups > (1u << 26) || bytes > (uint64_t)(h->end - h->p)) {
      /* a short last run: take what is there */
      if (groups == 0)
        return true;
      bytes = (uint64_t)(h->end - h->p);
      if (bytes == 0)
        return false;
      groups = h->bw ? bytes * 8 / (uint64_t)h->bw / 8 : groups;
      if (h->bw && bytes * 8 / (uint64_t)h->bw == 0)
        return false;
      h->bp_left = h->bw ? (uint32_t)(bytes * 8 / (uint64_t)h->bw) : (uint32_t)(groups * 8);
    } else {
      h->bp_left = (uint32_t)(groups * 8);
    }
    h->bp = h->p;
    h->bp_n = (size_t)bytes;
    h->bp_pos = 0;
    h->p += bytes;
    if (h->bw == 0) {
      h->rle_left = h->bp_left;
      h->rle_val = 0;
      h->bp_left = 0;
    }
  } else {
    uint64_t cnt = hd >> 1;
    int vb = (h->bw + 7) / 8;
    if (cnt == 0 || cnt > UINT32_MAX || h->end - h->p < vb)
      return false;
    uint64_t v = 0;
    for (int j = 0; j < vb; j++)
      v |= (uint64_t)h->p[j] << (8 * j);
    h->p += vb;
    h->rle_left = (uint32_t)cnt;
    h->rle_val = v;
  }
  return true;
}

/* ng groups of 8 values of width bw (each group bw bytes) from p; every
   8-byte load stays below p + ng * bw + 8. Inlined with a constant width
   (unpack_groups_w) the loads, shifts and masks are constants. */
static inline __attribute__((always_inline)) void unpack_groups(const uint8_t *p, uint32_t *o,
                                                                size_t ng, int bw)
{
  const uint64_t mask = ((uint64_t)1 << bw) - 1;
  for (size_t g = 0; g < ng; g++, p += bw, o += 8) {
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      uint64_t w;
      memcpy(&w, p + ((j * bw) >> 3), 8);
      o[j] = (uint32_t)((w >> ((j * bw) & 7)) & mask);
    }
  }
}

static void unpack_groups_w(const uint8_t *p, uint32_t *o, size_t ng, int bw)
{
  switch (bw) {
#define UG(B) case B: unpack_groups(p, o, ng, B); return;
  UG(1) UG(2) UG(3) UG(4) UG(5) UG(6) UG(7) UG(8) UG(9) UG(10) UG(11) UG(12) UG(13) UG(14)
  UG(15) UG(16) UG(17) UG(18) UG(19) UG(20) UG(21) UG(22) UG(23) UG(24) UG(25) UG(26)
  UG(27) UG(28) UG(29) UG(30) UG(31) UG(32)
#undef UG
  default: unpack_groups(p, o, ng, bw); return;
  }
}

/* m values of a bit-packed run from position pos (width <= 32): whole
   groups of 8 by unpack_groups_w while their loads stay in the run, then
   one 8-byte load each while 8 bytes remain, value by value after */
static void unpack_run(const uint8_t *p, size_t n, uint64_t pos, size_t m, int bw,
                       uint32_t *out)
{
  if (bw >= 1 && bw <= 32 && (pos & 7) == 0 && m >= 8) {
    size_t byte = (size_t)(pos >> 3) * (size_t)bw;
    size_t ng = m / 8;
    size_t fit = n >= byte + (size_t)bw + 8 ? (n - byte - (size_t)bw - 8) / (size_t)bw + 1 : 0;
    if (ng > fit)
      ng = fit;
    unpack_groups_w(p + byte, out, ng, bw);
    pos += ng * 8;
    m -= ng * 8;
    out += ng * 8;
  }
  uint64_t mask = ((uint64_t)1 << bw) - 1;
  /* values j with j * bw / 8 + 8 <= n can take the 8-byte load */
  uint64_t fast_end = n >= 8 ? (uint64_t)(n - 8) * 8 / (uint64_t)bw + 1 : 0;
  size_t j = 0;
  if (pos < fast_end) {
    size_t f = fast_end - pos < m ? (size_t)(fast_end - pos) : m;
    uint64_t bit = pos * (uint64_t)bw;
    for (; j < f; j++, bit += (uint64_t)bw) {
      uint64_t w;
      memcpy(&w, p + (bit >> 3), 8);
      out[j] = (uint32_t)((w >> (bit & 7)) & mask);
    }
  }
  for (; j < m; j++)
    out[j] = (uint32_t)unpack_one(p, n, pos + j, bw);
}

/* n values into out; false when the data ends first */
static bool hybrid_get(hybrid *h, uint32_t *out, size_t n)
{
  size_t k = 0;
  while (k < n) {
    if (h->rle_left > 0) {
      size_t m = h->rle_left < n - k ? h->rle_left : n - k;
      uint32_t v = (uint32_t)h->rle_val;
      for (size_t j = 0; j < m; j++)
        out[k + j] = v;
      k += m;
      h->rle_left -= (uint32_t)m;
      continue;
    }
    if (h->bp_left > 0) {
      size_t m = h->bp_left < n - k ? h->bp_left : n - k;
      if (h->bw <= 32) {
        /* the loads may read past the run (never past the data): short
           runs, as writers make between RLE runs, take the fast path too */
        unpack_run(h->bp, (size_t)(h->end - h->bp), h->bp_pos, m, h->bw, out + k);
      } else {
        for (size_t j = 0; j < m; j++)
          out[k + j] = (uint32_t)unpack_one(h->bp, h->bp_n, h->bp_pos + j, h->bw);
      }
      h->bp_pos += m;
      k += m;
      h->bp_left -= (uint32_t)m;
      continue;
    }
    if (!hybrid_run(h))
      return false;
  }
  return true;
}

static int bit_width(int max)
{
  int w = 0;
  while ((1 << w) <= max)
    w++;
  return w;
}

/* ---- raw values (by physical type) ---- */

/* a page's values before conversion: i64 (BOOLEAN, INT32, INT64, INT96 as
   micros), f64 (FLOAT, DOUBLE), str (BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY) */
typedef struct raw {
  int phys;
  size_t n;
  size_t cap;
  union {
    int64_t *i;
    double *f;
    str_ref *s;
    void *p;
  };
} raw;

static int raw_phys(int ptype)
{
  if (ptype == PQ_FLOAT || ptype == PQ_DOUBLE)
    return PHYS_F64;
  if (ptype == PQ_BYTE_ARRAY || ptype == PQ_FIXED_LEN_BYTE_ARRAY)
    return PHYS_STR;
  return PHYS_I64;
}

static int raw_reserve(rd *r, raw *v, size_t n)
{
  if (n <= v->cap)
    return 0;
  size_t es = v->phys == PHYS_STR ? sizeof(str_ref) : 8;
  if (n > r->max / es)
    return charge(r, SIZE_MAX);
  v->p = pool_grow(r->pool, v->p, v->n < v->cap ? v->n * es : v->cap * es, n * es);
  v->cap = n;
  return 0;
}

static int64_t int96_micros(const uint8_t *p)
{
  int64_t nanos = (int64_t)le64(p);
  int64_t day = (int64_t)le32(p + 8);
  int64_t us = nanos >= 0 ? nanos / 1000 : -((-(nanos + 1)) / 1000) - 1;
  /* wrapping arithmetic: a real value never wraps, a hostile one must not be UB */
  return (int64_t)((uint64_t)(day - 2440588) * 86400000000ULL + (uint64_t)us);
}

static int plain_decode(rd *r, const pq_node *nd, const uint8_t *p, size_t n, size_t count,
                        raw *out)
{
  int rc;
  if ((rc = raw_reserve(r, out, count)) < 0)
    return rc;
  out->n = count;
  switch (nd->ptype) {
  case PQ_BOOLEAN:
    if ((count + 7) / 8 > n)
      return fail(r, "a page holds fewer booleans than it claims");
    for (size_t k = 0; k < count; k++)
      out->i[k] = (p[k >> 3] >> (k & 7)) & 1;
    return 0;
  case PQ_INT32:
    if (count > n / 4)
      return fail(r, "a page holds fewer values than it claims");
    for (size_t k = 0; k < count; k++)
      out->i[k] = (int32_t)le32(p + 4 * k);
    return 0;
  case PQ_INT64:
    if (count > n / 8)
      return fail(r, "a page holds fewer values than it claims");
    if (count > 0)
      memcpy(out->i, p, count * 8);
    return 0;
  case PQ_INT96:
    if (count > n / 12)
      return fail(r, "a page holds fewer values than it claims");
    for (size_t k = 0; k < count; k++)
      out->i[k] = int96_micros(p + 12 * k);
    return 0;
  case PQ_FLOAT:
    if (count > n / 4)
      return fail(r, "a page holds fewer values than it claims");
    for (size_t k = 0; k < count; k++) {
      uint32_t u = le32(p + 4 * k);
      float x;
      memcpy(&x, &u, 4);
      out->f[k] = x;
    }
    return 0;
  case PQ_DOUBLE:
    if (count > n / 8)
      return fail(r, "a page holds fewer values than it claims");
    if (count > 0)
      memcpy(out->f, p, count * 8);
    return 0;
  case PQ_BYTE_ARRAY: {
    size_t pos = 0;
    for (size_t k = 0; k < count; k++) {
      if (n - pos < 4)
        return fail(r, "a string runs past its page");
      uint32_t l = le32(p + pos);
      pos += 4;
      if (l > n - pos)
        return fail(r, "a string runs past its page");
      out->s[k].ptr = (const char *)p + pos;
      out->s[k].len = l;
      pos += l;
    }
    return 0;
  }
  case PQ_FIXED_LEN_BYTE_ARRAY: {
    size_t w = (size_t)nd->type_len;
    if (count > n / w)
      return fail(r, "a page holds fewer values than it claims");
    for (size_t k = 0; k < count; k++) {
      out->s[k].ptr = (const char *)p + k * w;
      out->s[k].len = w;
    }
    return 0;
  }
  }
  return fail(r, "unknown physical type");
}

/* DELTA_BINARY_PACKED: count values (int64, wrapping) from p; *used gets
   the bytes consumed */
static int delta_decode(rd *r, const uint8_t *p, size_t n, size_t count, int64_t *out,
                        size_t *total_out, size_t *used)
{
  hybrid h;
  hybrid_init(&h, p, n, 0);
  uint64_t bsize, nmini, total, zz;
  if (!hybrid_varint(&h, &bsize) || !hybrid_varint(&h, &nmini) || !hybrid_varint(&h, &total) ||
      !hybrid_varint(&h, &zz))
    return fail(r, "truncated DELTA_BINARY_PACKED header");
  if (bsize == 0 || bsize % 128 != 0 || bsize > (1u << 20) || nmini == 0 || bsize % nmini != 0 ||
      (bsize / nmini) % 32 != 0)
    return fail(r, "bad DELTA_BINARY_PACKED block size");
  if (total_out != NULL) {
    *total_out = (size_t)total;
    if (total > count)
      return fail(r, "DELTA_BINARY_PACKED holds more values than its page");
    count = (size_t)total;
  } else if (total < count) {
    return fail(r, "DELTA_BINARY_PACKED holds fewer values than its page");
  }
  uint64_t vpm = bsize / nmini;
  uint64_t cur = (zz >> 1) ^ -(zz & 1);
  size_t k = 0;
  if (count > 0)
    out[k++] = (int64_t)cur;
  while (k < count) {
    uint64_t mdz;
    if (!hybrid_varint(&h, &mdz))
      return fail(r, "truncated DELTA_BINARY_PACKED block");
    uint64_t mind = (mdz >> 1) ^ -(mdz & 1);
    if ((uint64_t)(h.end - h.p) < nmini)
      return fail(r, "truncated DELTA_BINARY_PACKED block");
    const uint8_t *widths = h.p;
    h.p += nmini;
    for (uint64_t m = 0; m < nmini && k < count; m++) {
      int bw = widths[m];
      if (bw > 64)
        return fail(r, "bad DELTA_BINARY_PACKED bit width");
      size_t mb = (size_t)(vpm * (uint64_t)bw / 8);
      size_t avail = (size_t)(h.end - h.p);
      size_t need = count - k < vpm ? count - k : (size_t)vpm;
      if (((uint64_t)need * (uint64_t)bw + 7) / 8 > avail)
        return fail(r, "truncated DELTA_BINARY_PACKED miniblock");
      for (size_t j = 0; j < need; j++) {
        uint64_t d = bw ? unpack_one(h.p, avail, j, bw) : 0;
        cur += mind + d;
        out[k++] = (int64_t)cur;
      }
      h.p += mb < avail ? mb : avail;
    }
  }
  *used = (size_t)(h.p - p);
  return 0;
}

static int delta_len_decode(rd *r, const uint8_t *p, size_t n, size_t count, raw *out,
                            size_t *used)
{
  int rc;
  int64_t *lens = xmalloc(sizeof(int64_t) * (count ? count : 1));
  size_t u = 0;
  if ((rc = delta_decode(r, p, n, count, lens, NULL, &u)) < 0) {
    free(lens);
    return rc;
  }
  size_t pos = u;
  for (size_t k = 0; k < count; k++) {
    if (lens[k] < 0 || (uint64_t)lens[k] > n - pos) {
      free(lens);
      return fail(r, "a string runs past its page");
    }
    out->s[k].ptr = (const char *)p + pos;
    out->s[k].len = (size_t)lens[k];
    pos += (size_t)lens[k];
  }
  free(lens);
  if (used)
    *used = pos;
  return 0;
}

static int delta_bytes_decode(rd *r, const uint8_t *p, size_t n, size_t count, raw *out)
{
  int rc;
  int64_t *pre = xmalloc(sizeof(int64_t) * (count ? count : 1));
  size_t u = 0;
  if ((rc = delta_decode(r, p, n, count, pre, NULL, &u)) < 0)
    goto done;
  if ((rc = delta_len_decode(r, p + u, n - u, count, out, NULL)) < 0)
    goto done;
  size_t total = 0;
  for (size_t k = 0; k < count; k++) {
    size_t prev = k > 0 ? out->s[k - 1].len : 0;
    if (pre[k] < 0 || (uint64_t)pre[k] > prev) {
      rc = fail(r, "DELTA_BYTE_ARRAY prefix longer than the previous value");
      goto done;
    }
    total += (size_t)pre[k] + out->s[k].len;
    if (total > r->max) {
      rc = charge(r, SIZE_MAX);
      goto done;
    }
    /* lengths of the full values, in order (prev uses the new length) */
    size_t full = (size_t)pre[k] + out->s[k].len;
    (void)full;
    /* build now: the previous value is complete */
    if ((rc = charge(r, (size_t)pre[k] + out->s[k].len)) < 0)
      goto done;
    char *b = own(r, (size_t)pre[k] + out->s[k].len);
    if (pre[k] > 0)
      memcpy(b, out->s[k - 1].ptr, (size_t)pre[k]);
    if (out->s[k].len > 0)
      memcpy(b + pre[k], out->s[k].ptr, out->s[k].len);
    out->s[k].ptr = b;
    out->s[k].len = (size_t)pre[k] + out->s[k].len;
  }
done:
  free(pre);
  return rc;
}

static int split_decode(rd *r, const pq_node *nd, const uint8_t *p, size_t n, size_t count,
                        raw *out)
{
  size_t w = nd->ptype == PQ_FLOAT || nd->ptype == PQ_INT32 ? 4
             : nd->ptype == PQ_DOUBLE || nd->ptype == PQ_INT64 ? 8
             : nd->ptype == PQ_FIXED_LEN_BYTE_ARRAY ? (size_t)nd->type_len : 0;
  if (w == 0)
    return fail(r, "BYTE_STREAM_SPLIT on a type that has none");
  if (count > n / w)
    return fail(r, "a page holds fewer values than it claims");
  uint8_t *tmp = own(r, count * w);
  for (size_t k = 0; k < count; k++)
    for (size_t b = 0; b < w; b++)
      tmp[k * w + b] = p[b * count + k];
  return plain_decode(r, nd, tmp, count * w, count, out);
}

/* ---- conversion to engine values ---- */

static void fmt_time_of_day(int64_t us, char *out, size_t *len)
{
  if (us < 0)
    us = 0;
  int64_t s = us / 1000000, f = us % 1000000;
  int n = snprintf(out, 32, "%02lld:%02lld:%02lld", (long long)(s / 3600),
                   (long long)(s / 60 % 60), (long long)(s % 60));
  if (f != 0) {
    n += snprintf(out + n, 16, ".%06lld", (long long)f);
    while (out[n - 1] == '0')
      n--;
  }
  *len = (size_t)n;
}

static size_t i128_text(i128 v, int scale, char *out)
{
  char dig[64];
  int nd = 0;
  bool neg = v < 0;
  u128 u = neg ? (u128)0 - (u128)v : (u128)v;
  do {
    dig[nd++] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u > 0);
  while (nd <= scale)
    dig[nd++] = '0';
  size_t k = 0;
  if (neg)
    out[k++] = '-';
  for (int i = nd - 1; i >= 0; i--) {
    out[k++] = dig[i];
    if (i == scale && scale > 0)
      out[k++] = '.';
  }
  return k;
}

static bool is_unsigned(const pq_node *nd)
{
  return nd->converted == PQ_CT_UINT_8 || nd->converted == PQ_CT_UINT_16 ||
         nd->converted == PQ_CT_UINT_32 || nd->converted == PQ_CT_UINT_64 ||
         (nd->logical == PQ_LT_INTEGER && !nd->is_signed);
}

static double half_to_double(uint16_t h)
{
  int ex = (h >> 10) & 0x1f;
  int man = h & 0x3ff;
  double v;
  if (ex == 0)
    v = ldexp(man, -24);
  else if (ex == 31)
    v = man ? NAN : INFINITY;
  else
    v = ldexp(man + 1024, ex - 25);
  return (h & 0x8000) ? -v : v;
}

/* the engine phys of a leaf's values */
static int leaf_phys(const pq_leaf *l)
{
  if (l->out == PQO_DOUBLE)
    return PHYS_F64;
  if (l->out == PQO_VARCHAR)
    return PHYS_STR;
  return PHYS_I64;
}

/* Converts src[0..n) (raw) into dst (engine values of leaf_phys) */
static int convert(rd *r, const pq_leaf *l, const raw *src, void *dstp)
{
  const pq_node *nd = l->node;
  size_t n = src->n;
  int ph = leaf_phys(l);
  if (ph == PHYS_I64 && src->phys == PHYS_I64) {
    int64_t *dst = dstp;
    int64_t mul = 1, div = 1;
    if (l->out == PQO_TIMESTAMP && nd->ptype == PQ_INT64) {
      int unit = nd->unit ? nd->unit
                          : nd->converted == PQ_CT_TIMESTAMP_MILLIS ? PQ_UNIT_MILLIS
                                                                    : PQ_UNIT_MICROS;
      if (unit == PQ_UNIT_MILLIS)
        mul = 1000;
      else if (unit == PQ_UNIT_NANOS)
        div = 1000;
    }
    bool uns = is_unsigned(nd);
    for (size_t k = 0; k < n; k++) {
      int64_t v = src->i[k];
      if (uns && nd->ptype == PQ_INT32)
        v = (int64_t)(uint32_t)v;
      else if (uns && v < 0)
        return fail(r, "an unsigned 64-bit value %llu does not fit BIGINT",
                    (unsigned long long)v);
      if (mul != 1) {
        if (__builtin_mul_overflow(v, mul, &v))
          return fail(r, "a timestamp out of range");
      } else if (div != 1)
        v = v >= 0 ? v / div : -((-(v + 1)) / div) - 1;
      dst[k] = v;
    }
    return 0;
  }
  if (ph == PHYS_F64 && src->phys == PHYS_F64) {
    if (n > 0)
      memcpy(dstp, src->f, n * 8);
    return 0;
  }
  if (ph == PHYS_F64 && src->phys == PHYS_STR) {
    /* FLOAT16 */
    double *dst = dstp;
    for (size_t k = 0; k < n; k++) {
      const uint8_t *b = (const uint8_t *)src->s[k].ptr;
      dst[k] = half_to_double((uint16_t)(b[0] | b[1] << 8));
    }
    return 0;
  }
  if (ph == PHYS_I64 && src->phys == PHYS_STR) {
    /* DECIMAL (<= 18 digits) in big-endian bytes */
    int64_t *dst = dstp;
    for (size_t k = 0; k < n; k++) {
      const uint8_t *b = (const uint8_t *)src->s[k].ptr;
      size_t len = src->s[k].len;
      if (len == 0) {
        dst[k] = 0;
        continue;
      }
      if (len > 16)
        return fail(r, "a DECIMAL(%d) value of %zu bytes", nd->prec, len);
      i128 w = (int8_t)b[0];
      for (size_t j = 1; j < len; j++)
        w = (i128)((u128)w << 8 | b[j]);
      if (w > INT64_MAX || w < INT64_MIN)
        return fail(r, "a DECIMAL(%d) value does not fit its precision", nd->prec);
      int64_t v = (int64_t)w;
      dst[k] = v;
    }
    return 0;
  }
  if (ph == PHYS_STR && src->phys == PHYS_STR) {
    str_ref *dst = dstp;
    bool dec = nd->logical == PQ_LT_DECIMAL || nd->converted == PQ_CT_DECIMAL;
    if (dec) {
      /* more than 18 digits: exact text */
      for (size_t k = 0; k < n; k++) {
        const uint8_t *b = (const uint8_t *)src->s[k].ptr;
        size_t len = src->s[k].len;
        if (len > 16)
          return fail(r, "a DECIMAL value of %zu bytes is too wide (at most 38 digits)", len);
        i128 v = len ? (int8_t)b[0] : 0;
        for (size_t j = 1; j < len; j++)
          v = (i128)((u128)v << 8 | b[j]);
        char tmp[64];
        int sc = nd->scale > 0 && nd->scale < 40 ? nd->scale : 0;
        size_t tl = i128_text(v, sc, tmp);
        char *o = own(r, tl);
        memcpy(o, tmp, tl);
        dst[k].ptr = o;
        dst[k].len = tl;
      }
      return 0;
    }
    if (nd->logical == PQ_LT_UUID && nd->type_len == 16) {
      static const char hx[] = "0123456789abcdef";
      for (size_t k = 0; k < n; k++) {
        const uint8_t *b = (const uint8_t *)src->s[k].ptr;
        char *o = own(r, 36);
        size_t q = 0;
        for (int j = 0; j < 16; j++) {
          if (j == 4 || j == 6 || j == 8 || j == 10)
            o[q++] = '-';
          o[q++] = hx[b[j] >> 4];
          o[q++] = hx[b[j] & 15];
        }
        dst[k].ptr = o;
        dst[k].len = 36;
      }
      return 0;
    }
    if (n > 0)
      memcpy(dst, src->s, n * sizeof(str_ref));
    return 0;
  }
  if (ph == PHYS_STR && src->phys == PHYS_I64) {
    /* TIME, or DECIMAL > 18 digits in INT64 (never valid, still exact) */
    str_ref *dst = dstp;
    bool dec = nd->logical == PQ_LT_DECIMAL || nd->converted == PQ_CT_DECIMAL;
    int unit = nd->unit ? nd->unit
                        : nd->converted == PQ_CT_TIME_MILLIS ? PQ_UNIT_MILLIS : PQ_UNIT_MICROS;
    for (size_t k = 0; k < n; k++) {
      char tmp[64];
      size_t tl;
      if (dec) {
        int sc = nd->scale > 0 && nd->scale < 40 ? nd->scale : 0;
        tl = i128_text(src->i[k], sc, tmp);
      } else {
        int64_t us = src->i[k];
        if (unit == PQ_UNIT_MILLIS)
          us *= 1000;
        else if (unit == PQ_UNIT_NANOS)
          us /= 1000;
        fmt_time_of_day(us, tmp, &tl);
      }
      char *o = own(r, tl);
      memcpy(o, tmp, tl);
      dst[k].ptr = o;
      dst[k].len = tl;
    }
    return 0;
  }
  return fail(r, "values of an unexpected type");
}

/* does convert() only copy (raw values are already the engine's)? */
static bool convert_is_copy(const pq_leaf *l)
{
  const pq_node *nd = l->node;
  int ph = leaf_phys(l);
  if (ph != raw_phys(nd->ptype))
    return false;
  if (ph == PHYS_F64)
    return nd->ptype == PQ_DOUBLE || nd->ptype == PQ_FLOAT;
  if (ph == PHYS_STR)
    return !(nd->logical == PQ_LT_DECIMAL || nd->converted == PQ_CT_DECIMAL) &&
           !(nd->logical == PQ_LT_UUID && nd->type_len == 16);
  if (nd->ptype != PQ_INT32 && nd->ptype != PQ_INT64)
    return false;
  if (is_unsigned(nd))
    return false;
  if (l->out == PQO_TIMESTAMP && nd->ptype == PQ_INT64) {
    int unit = nd->unit ? nd->unit
                        : nd->converted == PQ_CT_TIMESTAMP_MILLIS ? PQ_UNIT_MILLIS
                                                                  : PQ_UNIT_MICROS;
    return unit == PQ_UNIT_MICROS;
  }
  return true;
}

/* ---- one leaf's chunk ---- */

typedef struct leafdata {
  size_t n;          /* level entries */
  size_t nvals;      /* dense values */
  size_t cap;        /* entries allocated */
  size_t vcap;
  uint8_t *def;      /* NULL when max_def == 0 */
  uint8_t *rep;      /* NULL when max_rep == 0 */
  int phys;
  union {
    int64_t *i;
    double *f;
    str_ref *s;
    void *p;
  };
  size_t vpos;       /* assembly cursor */
  size_t lpos;
  /* rd.codes: the dictionary index of each dense value (vcap entries),
     until a data page in another encoding (nocodes) */
  uint32_t *codes;
  bool nocodes;
  bool lazy;         /* codes only: values not written (dict[codes[i]]) */
  bool novals;       /* lazy from the start: no values array (p) until needed */
  const void *dict;  /* ndict values and a zero one (a NULL row's) */
  size_t ndict;
} leafdata;

static size_t esize(int phys)
{
  return phys == PHYS_STR ? sizeof(str_ref) : 8;
}

/* a lazy leaf's values written out from its codes (a page in another
   encoding follows, or codes cannot be kept) */
static int leaf_materialize(rd *r, leafdata *d)
{
  if (!d->lazy)
    return 0;
  d->lazy = false;
  if (d->novals) {
    d->novals = false;
    int rc = charge(r, d->vcap * esize(d->phys));
    if (rc < 0)
      return rc;
    d->p = pq_pool_take(r->pool, d->vcap * esize(d->phys) + 1);
  }
  if (d->phys == PHYS_STR) {
    const str_ref *ds = d->dict;
    for (size_t i = 0; i < d->nvals; i++)
      d->s[i] = ds[d->codes[i]];
  } else {
    const int64_t *di = d->dict;
    for (size_t i = 0; i < d->nvals; i++)
      d->i[i] = di[d->codes[i]];
  }
  return 0;
}

static void leafdata_free(rd *r, leafdata *d)
{
  pq_pool_give(r->pool, d->def);
  pq_pool_give(r->pool, d->rep);
  pq_pool_give(r->pool, d->p);
  pq_pool_give(r->pool, d->codes);
  memset(d, 0, sizeof *d);
}

static int leaf_grow(rd *r, leafdata *d, size_t entries, size_t vals, const pq_node *nd)
{
  int rc;
  if (entries > d->cap) {
    size_t nc = d->cap ? d->cap : 1024;
    while (nc < entries)
      nc *= 2;
    if ((rc = charge(r, (nc - d->cap) * 2)) < 0)
      return rc;
    if (nd->max_def > 0)
      d->def = pool_grow(r->pool, d->def, d->n, nc);
    if (nd->max_rep > 0)
      d->rep = pool_grow(r->pool, d->rep, d->n, nc);
    d->cap = nc;
  }
  if (vals > d->vcap) {
    size_t nc = d->vcap ? d->vcap : 1024;
    while (nc < vals)
      nc *= 2;
    /* flat columns spread values over rows in place: room for every entry */
    if (nd->max_rep == 0 && nc < d->cap)
      nc = d->cap;
    if (!d->novals && (rc = charge(r, (nc - d->vcap) * esize(d->phys))) < 0)
      return rc;
    if (!d->novals)
      d->p = pool_grow(r->pool, d->p, d->nvals * esize(d->phys), nc * esize(d->phys));
    if (d->codes != NULL || d->novals) {
      if ((rc = charge(r, (nc - d->vcap) * sizeof(uint32_t))) < 0)
        return rc;
      d->codes = pool_grow(r->pool, d->codes, d->nvals * sizeof(uint32_t),
                           nc * sizeof(uint32_t));
    }
    d->vcap = nc;
  }
  return 0;
}

typedef struct pagehdr {
  int type;
  int32_t usize, csize;
  int32_t nvals;
  int enc;
  int def_enc, rep_enc;
  int32_t v2_nulls, v2_rows, v2_dlen, v2_rlen;
  bool v2_compressed;
  bool has_data, has_dict, has_v2;
} pagehdr;

static void read_dph(thrift *t, pagehdr *h, bool v2)
{
  if (!formats__thrift_enter(t))
    return;
  int16_t last = 0, id;
  int ty;
  bool bv = false;
  while (formats__thrift_field(t, &last, &id, &ty, &bv)) {
    if (ty == THRIFT_TRUE || ty == THRIFT_FALSE) {
      if (v2 && id == 7)
        h->v2_compressed = bv;
      continue;
    }
    if (ty != THRIFT_I32) {
      formats__thrift_skip(t, ty);
      continue;
    }
    int64_t v = formats__thrift_zigzag(t);
    if (v < INT32_MIN || v > INT32_MAX) {
      formats__thrift_fail(t, "page number out of range");
      break;
    }
    int32_t x = (int32_t)v;
    if (!v2) {
      if (id == 1) h->nvals = x;
      else if (id == 2) h->enc = x;
      else if (id == 3) h->def_enc = x;
      else if (id == 4) h->rep_enc = x;
    } else {
      if (id == 1) h->nvals = x;
      else if (id == 2) h->v2_nulls = x;
      else if (id == 3) h->v2_rows = x;
      else if (id == 4) h->enc = x;
      else if (id == 5) h->v2_dlen = x;
      else if (id == 6) h->v2_rlen = x;
    }
  }
  formats__thrift_leave(t);
}

static int page_header(rd *r, const uint8_t *p, size_t n, pagehdr *h, size_t *hlen)
{
  memset(h, 0, sizeof *h);
  h->type = -1;
  h->def_enc = PQ_ENC_RLE;
  h->rep_enc = PQ_ENC_RLE;
  h->v2_compressed = true;
  thrift t;
  formats__thrift_init(&t, p, n);
  formats__thrift_enter(&t);
  int16_t last = 0, id;
  int ty;
  bool bv;
  while (formats__thrift_field(&t, &last, &id, &ty, &bv)) {
    if (id >= 1 && id <= 3 && ty == THRIFT_I32) {
      int64_t v = formats__thrift_zigzag(&t);
      if (v < 0 || v > INT32_MAX) {
        formats__thrift_fail(&t, "negative size");
        break;
      }
      if (id == 1) h->type = (int)v;
      else if (id == 2) h->usize = (int32_t)v;
      else h->csize = (int32_t)v;
    } else if (id == 5 && ty == THRIFT_STRUCT) {
      h->has_data = true;
      read_dph(&t, h, false);
    } else if (id == 7 && ty == THRIFT_STRUCT) {
      h->has_dict = true;
      read_dph(&t, h, false);
    } else if (id == 8 && ty == THRIFT_STRUCT) {
      h->has_v2 = true;
      read_dph(&t, h, true);
    } else {
      formats__thrift_skip(&t, ty);
    }
  }
  if (t.bad)
    return fail(r, "bad page header (%s)", t.why ? t.why : "unreadable");
  *hlen = (size_t)(t.p - p);
  if (h->nvals < 0)
    return fail(r, "a page with a negative value count");
  if ((uint32_t)h->usize > PQ_PAGE_MAX)
    return fail(r, "a page of %d bytes (at most %u)", h->usize, PQ_PAGE_MAX);
  return 0;
}

static int decompress(rd *r, int codec, const uint8_t *src, size_t n, uint8_t *dst,
                      size_t dlen)
{
  err e2;
  err_clear(&e2);
  int rc;
  switch (codec) {
  case PQ_CODEC_SNAPPY: rc = codec_block_snappy(src, n, dst, dlen, &e2); break;
  case PQ_CODEC_GZIP: rc = codec_block_gzip(src, n, dst, dlen, &e2); break;
  case PQ_CODEC_ZSTD: rc = codec_block_zstd(src, n, dst, dlen, &e2); break;
  case PQ_CODEC_LZ4_RAW: rc = codec_block_lz4_raw(src, n, dst, dlen, &e2); break;
  case PQ_CODEC_LZ4: rc = codec_block_lz4_hadoop(src, n, dst, dlen, &e2); break;
  case PQ_CODEC_BROTLI: rc = codec_block_brotli(src, n, dst, dlen, &e2); break;
  default:
    return err_set(r->e, ERR_NOT_IMPLEMENTED,
                   "Parquet file '%s': column '%s' uses compression codec %d (LZO), which is "
                   "not supported", r->f->name, r->leaf->name, codec);
  }
  if (rc < 0)
    return fail(r, "%s", e2.msg);
  return 0;
}

/* decodes the values of one data page (count dense values) into d at
   d->nvals, converting them */
static int page_values(rd *r, const pq_leaf *l, int enc, const uint8_t *p, size_t n,
                       size_t count, const void *dict, size_t ndict, leafdata *d, raw *tmp)
{
  const pq_node *nd = l->node;
  int rc;
  if (count == 0)
    return 0;
  if (enc == PQ_ENC_PLAIN_DICTIONARY || enc == PQ_ENC_RLE_DICTIONARY) {
    if (dict == NULL)
      return fail(r, "a dictionary-encoded page without a dictionary");
    if (count == 0)
      return 0;
    if (n < 1)
      return fail(r, "truncated dictionary indices");
    int bw = p[0];
    if (bw > 32)
      return fail(r, "bad dictionary index width %d", bw);
    hybrid h;
    hybrid_init(&h, p + 1, n - 1, bw);
    uint32_t idx[1024];
    size_t es = esize(d->phys);
    if (r->codes && !d->nocodes && d->codes == NULL) {
      if ((rc = charge(r, d->vcap * sizeof(uint32_t))) < 0)
        return rc;
      d->codes = pq_pool_take(r->pool, d->vcap * sizeof(uint32_t) + 1);
      d->lazy = d->nvals == 0;
    }
    uint32_t *cd = d->nocodes ? NULL : d->codes;
    char *dst = d->lazy ? NULL : (char *)d->p + d->nvals * es;
    for (size_t k = 0; k < count;) {
      size_t m = count - k < 1024 ? count - k : 1024;
      /* codes only: the indices go straight into place */
      uint32_t *ix = d->lazy ? cd + d->nvals + k : idx;
      if (!hybrid_get(&h, ix, m))
        return fail(r, "truncated dictionary indices");
      uint32_t top = 0;
      for (size_t j = 0; j < m; j++)
        top = ix[j] > top ? ix[j] : top;
      if (top >= ndict)
        return fail(r, "dictionary index %u past the dictionary's %zu values", top, ndict);
      if (d->lazy) {
        k += m;
        continue;
      }
      if (cd != NULL)
        memcpy(cd + d->nvals + k, idx, m * sizeof(uint32_t));
      if (es == sizeof(str_ref)) {
        const str_ref *ds = dict;
        str_ref *o = (str_ref *)dst + k;
        for (size_t j = 0; j < m; j++)
          o[j] = ds[idx[j]];
      } else {
        const int64_t *di = dict;
        int64_t *o = (int64_t *)dst + k;
        for (size_t j = 0; j < m; j++)
          o[j] = di[idx[j]];
      }
      k += m;
    }
    return 0;
  }
  /* values not from the dictionary: no codes for the chunk */
  if ((rc = leaf_materialize(r, d)) < 0)
    return rc;
  d->nocodes = true;
  if ((enc == PQ_ENC_PLAIN || enc == PQ_ENC_DELTA_BINARY_PACKED) && convert_is_copy(l)) {
    /* the values are the engine's: decode straight into place */
    raw direct = {.phys = raw_phys(nd->ptype), .n = count, .cap = count,
                  .p = (char *)d->p + d->nvals * esize(d->phys)};
    size_t used2;
    if (enc == PQ_ENC_PLAIN)
      return plain_decode(r, nd, p, n, count, &direct);
    if (nd->ptype != PQ_INT32 && nd->ptype != PQ_INT64)
      return fail(r, "DELTA_BINARY_PACKED on a non-integer column");
    rc = delta_decode(r, p, n, count, direct.i, NULL, &used2);
    if (rc == 0 && nd->ptype == PQ_INT32)
      for (size_t k = 0; k < count; k++)
        direct.i[k] = (int32_t)direct.i[k];
    return rc;
  }
  tmp->phys = raw_phys(nd->ptype);
  tmp->n = 0;
  if ((rc = raw_reserve(r, tmp, count)) < 0)
    return rc;
  tmp->n = count;
  size_t used;
  switch (enc) {
  case PQ_ENC_PLAIN:
    rc = plain_decode(r, nd, p, n, count, tmp);
    break;
  case PQ_ENC_RLE:
    if (nd->ptype != PQ_BOOLEAN)
      return fail(r, "RLE encoding on a non-boolean column");
    {
      if (n < 4 || le32(p) > n - 4)
        return fail(r, "truncated RLE booleans");
      hybrid h;
      hybrid_init(&h, p + 4, le32(p), 1);
      uint32_t b[1024];
      for (size_t k = 0; k < count;) {
        size_t m = count - k < 1024 ? count - k : 1024;
        if (!hybrid_get(&h, b, m))
          return fail(r, "truncated RLE booleans");
        for (size_t j = 0; j < m; j++)
          tmp->i[k + j] = b[j] & 1;
        k += m;
      }
      rc = 0;
    }
    break;
  case PQ_ENC_DELTA_BINARY_PACKED:
    if (nd->ptype != PQ_INT32 && nd->ptype != PQ_INT64)
      return fail(r, "DELTA_BINARY_PACKED on a non-integer column");
    rc = delta_decode(r, p, n, count, tmp->i, NULL, &used);
    if (rc == 0 && nd->ptype == PQ_INT32)
      for (size_t k = 0; k < count; k++)
        tmp->i[k] = (int32_t)tmp->i[k];
    break;
  case PQ_ENC_DELTA_LENGTH_BYTE_ARRAY:
    if (nd->ptype != PQ_BYTE_ARRAY)
      return fail(r, "DELTA_LENGTH_BYTE_ARRAY on a non-string column");
    rc = delta_len_decode(r, p, n, count, tmp, NULL);
    break;
  case PQ_ENC_DELTA_BYTE_ARRAY:
    if (nd->ptype != PQ_BYTE_ARRAY && nd->ptype != PQ_FIXED_LEN_BYTE_ARRAY)
      return fail(r, "DELTA_BYTE_ARRAY on a non-string column");
    rc = delta_bytes_decode(r, p, n, count, tmp);
    break;
  case PQ_ENC_BYTE_STREAM_SPLIT:
    rc = split_decode(r, nd, p, n, count, tmp);
    break;
  default:
    return fail(r, "unknown value encoding %d", enc);
  }
  if (rc < 0)
    return rc;
  return convert(r, l, tmp, (char *)d->p + d->nvals * esize(d->phys));
}

/* count levels (at most max) into out; *nmax gets how many equal max.
   An RLE run (a column without NULLs is one run of max) is a memset. */
static int levels_dec(rd *r, hybrid *h, int max, size_t count, uint8_t *out, size_t *nmax)
{
  size_t k = 0, nm = 0;
  uint32_t b[256];
  while (k < count) {
    if (h->rle_left > 0) {
      size_t m = h->rle_left < count - k ? h->rle_left : count - k;
      if (h->rle_val > (uint64_t)max)
        return fail(r, "level %llu above the column's maximum %d",
                    (unsigned long long)h->rle_val, max);
      memset(out + k, (int)h->rle_val, m);
      if (h->rle_val == (uint64_t)max)
        nm += m;
      h->rle_left -= (uint32_t)m;
      k += m;
      continue;
    }
    if (h->bp_left > 0) {
      size_t m = count - k;
      if (m > h->bp_left)
        m = h->bp_left;
      if (m > 256)
        m = 256;
      hybrid_get(h, b, m);
      for (size_t j = 0; j < m; j++) {
        if (b[j] > (uint32_t)max)
          return fail(r, "level %u above the column's maximum %d", b[j], max);
        out[k + j] = (uint8_t)b[j];
        nm += b[j] == (uint32_t)max;
      }
      k += m;
      continue;
    }
    if (!hybrid_run(h))
      return fail(r, "truncated levels");
  }
  *nmax = nm;
  return 0;
}

static int levels_v1(rd *r, const uint8_t **pp, size_t *np, int max, int enc, size_t count,
                     uint8_t *out, size_t *nmax)
{
  *nmax = count;
  if (max == 0)
    return 0;
  if (enc != PQ_ENC_RLE)
    return fail(r, "levels in encoding %d (only RLE is supported)", enc);
  if (*np < 4)
    return fail(r, "truncated levels");
  uint32_t len = le32(*pp);
  if (len > *np - 4)
    return fail(r, "levels run past their page");
  hybrid h;
  hybrid_init(&h, *pp + 4, len, bit_width(max));
  int rc = levels_dec(r, &h, max, count, out, nmax);
  if (rc < 0)
    return rc;
  *pp += 4 + len;
  *np -= 4 + len;
  return 0;
}

static int levels_v2(rd *r, const uint8_t *p, size_t n, int max, size_t count, uint8_t *out,
                     size_t *nmax)
{
  *nmax = count;
  if (max == 0)
    return 0;
  hybrid h;
  hybrid_init(&h, p, n, bit_width(max));
  return levels_dec(r, &h, max, count, out, nmax);
}

static bool keeps_strings(const pq_leaf *l)
{
  return l->out == PQO_VARCHAR &&
         (l->node->ptype == PQ_BYTE_ARRAY || l->node->ptype == PQ_FIXED_LEN_BYTE_ARRAY);
}

/* may rows [b, b + n) of the row group hold a wanted row (r->rr)? */
static bool rows_wanted(const rd *r, int64_t b, int64_t n)
{
  int lo = 0, hi = r->nrr;
  /* the first range ending after b */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (r->rr[2 * mid + 1] <= b)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < r->nrr && r->rr[2 * lo] < b + n;
}

/* the last wanted row (r->rr) of rows [b, b + n), as an offset from b; -1
   when none is */
static int64_t last_wanted(const rd *r, int64_t b, int64_t n)
{
  int lo = 0, hi = r->nrr;
  /* the first range starting at or after b + n */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (r->rr[2 * mid] < b + n)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0 || r->rr[2 * lo - 1] <= b)
    return -1;
  int64_t e = r->rr[2 * lo - 1] < b + n ? r->rr[2 * lo - 1] : b + n;
  return e - 1 - b;
}

/* the bytes the first m PLAIN values at p take, or SIZE_MAX when they run
   past n */
static size_t plain_span(const pq_node *nd, const uint8_t *p, size_t n, size_t m)
{
  size_t w;
  switch (nd->ptype) {
  case PQ_BOOLEAN: return (m + 7) / 8 <= n ? (m + 7) / 8 : SIZE_MAX;
  case PQ_INT32: case PQ_FLOAT: w = 4; break;
  case PQ_INT64: case PQ_DOUBLE: w = 8; break;
  case PQ_INT96: w = 12; break;
  case PQ_FIXED_LEN_BYTE_ARRAY: w = nd->type_len > 0 ? (size_t)nd->type_len : 0; break;
  case PQ_BYTE_ARRAY: {
    size_t pos = 0;
    for (size_t k = 0; k < m; k++) {
      if (n - pos < 4)
        return SIZE_MAX;
      uint32_t l = le32(p + pos);
      pos += 4;
      if (l > n - pos)
        return SIZE_MAX;
      pos += l;
    }
    return pos;
  }
  default: return SIZE_MAX;
  }
  return w != 0 && m <= n / w ? m * w : SIZE_MAX;
}

/* Late materialization of a flat leaf whose wanted rows (r->rr) end early
   in a snappy PLAIN data page (v1): only the page's prefix up to its last
   wanted row is decompressed and decoded; its later rows become NULLs (or
   zeros), as in a page nobody reads. Returns 1 when done, 0 when the page
   must be read whole (the wanted rows reach its end, or the estimated
   prefix was short: u then holds a prefix to overwrite), <0 on error. */
static int page_prefix(rd *r, const pq_leaf *l, const pagehdr *h, const uint8_t *body,
                       uint8_t *u, size_t ulen, int64_t first, leafdata *d, raw *tmp)
{
  const pq_node *nd = l->node;
  size_t count = (size_t)h->nvals;
  int64_t lw = last_wanted(r, first, (int64_t)count);
  if (lw < 0 || count == 0 || (size_t)(lw + 1) * 8 > count * 7)
    return 0;
  size_t k = (size_t)lw + 1;
  /* the prefix: the rows' share of the page, and some room for levels and
     values longer than the average */
  size_t need = (size_t)((double)ulen * (double)k / (double)count) + ulen / 32 + 1024;
  if (need >= ulen)
    return 0;
  size_t have;
  err e2;
  err_clear(&e2);
  if (codec_block_snappy_prefix(body, (size_t)h->csize, u, ulen, need, &have, &e2) < 0)
    return fail(r, "%s", e2.msg);
  const uint8_t *vp = u;
  size_t vn = have, nonnull = k;
  if (nd->max_def > 0) {
    if (have < 4 || le32(u) > have - 4)
      return 0;
    size_t all;
    int rc = levels_v1(r, &vp, &vn, nd->max_def, h->def_enc, count, d->def + d->n, &all);
    if (rc < 0)
      return rc;
    nonnull = 0;
    for (size_t i = 0; i < k; i++)
      nonnull += d->def[d->n + i] == nd->max_def;
  }
  size_t span = plain_span(nd, vp, vn, nonnull);
  if (span == SIZE_MAX)
    return 0;
  int rc = page_values(r, l, PQ_ENC_PLAIN, vp, span, nonnull, NULL, 0, d, tmp);
  if (rc < 0)
    return rc;
  if (nd->max_def > 0) {
    memset(d->def + d->n + k, 0, count - k);
    d->nvals += nonnull;
  } else {
    memset((char *)d->p + (d->nvals + k) * esize(d->phys), 0, (count - k) * esize(d->phys));
    d->nvals += count;
  }
  d->n += count;
  return 1;
}

/* Room in d for a page's count values, which must not pass the left
   values of the column chunk. */
static int page_room(rd *r, leafdata *d, const pq_node *nd, size_t count, int64_t left)
{
  if ((int64_t)count > left)
    return fail(r, "the pages hold more values than the column chunk");
  return leaf_grow(r, d, d->n + count, d->nvals + count, nd);
}

static int read_leaf(rd *r, int rg, int li, const uint8_t *chunk, size_t len, leafdata *d)
{
  const pq_file *f = r->f;
  const pq_leaf *l = &f->leaves[li];
  const pq_node *nd = l->node;
  const pq_chunk *c = &f->rgs[rg].chunks[li];
  r->leaf = nd;
  memset(d, 0, sizeof *d);
  d->phys = leaf_phys(l);
  /* a flat chunk whose data pages all use its dictionary (by the footer):
     codes only from the start, no values array unless a page proves the
     footer wrong */
  if (r->codes && c->all_dict == 1 && nd->max_rep == 0) {
    d->novals = true;
    d->lazy = true;
  }
  int rc = 0;
  void *dict = NULL;
  size_t ndict = 0;
  raw tmp = {0};
  uint8_t *pbuf = NULL;   /* a decompressed page not kept */
  size_t pos = 0;
  int64_t want = r->some_pages ? r->rows : c->num_values;
  if (want < 0)
    return fail(r, "negative value count");
  int64_t got = 0;
  /* a flat leaf's values fit its rows: room for all of them at once */
  if (nd->max_rep == 0 && want > 0 && want <= f->rgs[rg].num_rows && want <= (1 << 24) &&
      (rc = leaf_grow(r, d, (size_t)want, (size_t)want, nd)) < 0)
    return rc;
  while (got < want) {
    if (pos >= len) {
      rc = fail(r, "the column chunk ends after %lld of %lld values", (long long)got,
                (long long)want);
      break;
    }
    pagehdr h;
    size_t hl;
    if ((rc = page_header(r, chunk + pos, len - pos, &h, &hl)) < 0)
      break;
    pos += hl;
    if ((size_t)h.csize > len - pos) {
      rc = fail(r, "a page of %d bytes runs past the column chunk", h.csize);
      break;
    }
    const uint8_t *body = chunk + pos;
    pos += (size_t)h.csize;
    if (h.type == PQ_PAGE_INDEX || (h.type != PQ_PAGE_DICTIONARY && h.type != PQ_PAGE_DATA &&
                                    h.type != PQ_PAGE_DATA_V2))
      continue;
    if ((h.type == PQ_PAGE_DICTIONARY && !h.has_dict) || (h.type == PQ_PAGE_DATA && !h.has_data) ||
        (h.type == PQ_PAGE_DATA_V2 && !h.has_v2)) {
      rc = fail(r, "a page without its header");
      break;
    }
    /* the page's bytes, decompressed */
    const uint8_t *data = body;
    size_t dlen = (size_t)h.csize;
    size_t lvl = 0;   /* v2: uncompressed level bytes first */
    if (h.type == PQ_PAGE_DATA_V2) {
      if (h.v2_dlen < 0 || h.v2_rlen < 0 || (int64_t)h.v2_dlen + h.v2_rlen > h.csize ||
          (int64_t)h.v2_dlen + h.v2_rlen > h.usize) {
        rc = fail(r, "page v2 levels longer than the page");
        break;
      }
      lvl = (size_t)h.v2_dlen + (size_t)h.v2_rlen;
    }
    if (r->rr != NULL && h.type != PQ_PAGE_DICTIONARY && nd->max_rep == 0 &&
        !rows_wanted(r, got, (int64_t)h.nvals)) {
      /* a flat leaf's page whose rows nobody reads: NULLs (or zeros) in
         their place, nothing decompressed or decoded */
      size_t count = (size_t)h.nvals;
      if ((rc = page_room(r, d, nd, count, want - got)) < 0)
        break;
      if (d->def != NULL) {
        memset(d->def + d->n, 0, count);
      } else {
        memset((char *)d->p + d->nvals * esize(d->phys), 0, count * esize(d->phys));
        d->nvals += count;
      }
      d->n += count;
      got += (int64_t)count;
      continue;
    }
    bool compressed = c->codec != PQ_CODEC_UNCOMPRESSED &&
                      (h.type != PQ_PAGE_DATA_V2 || h.v2_compressed);
    if (compressed) {
      size_t ulen = (size_t)h.usize - lvl;
      if ((rc = charge(r, ulen + lvl)) < 0)
        break;
      /* strings point into the page: keep it; other values are copied out */
      uint8_t *u = keeps_strings(l) ? own(r, ulen + lvl) : (pbuf = pool_grow(r->pool, pbuf, 0, ulen + lvl + 1));
      if (r->rr != NULL && nd->max_rep == 0 && h.type == PQ_PAGE_DATA &&
          c->codec == PQ_CODEC_SNAPPY && h.enc == PQ_ENC_PLAIN) {
        size_t count = (size_t)h.nvals;
        if ((rc = page_room(r, d, nd, count, want - got)) < 0)
          break;
        if ((rc = page_prefix(r, l, &h, body, u, ulen, got, d, &tmp)) < 0)
          break;
        if (rc == 1) {
          rc = 0;
          got += (int64_t)count;
          continue;
        }
      }
      memcpy(u, body, lvl);
      if ((rc = decompress(r, c->codec, body + lvl, (size_t)h.csize - lvl, u + lvl, ulen)) < 0)
        break;
      data = u;
      dlen = ulen + lvl;
    } else if (h.type != PQ_PAGE_DATA_V2 && (size_t)h.usize != dlen) {
      rc = fail(r, "an uncompressed page of %d bytes claims %d", h.csize, h.usize);
      break;
    }
    if (h.type == PQ_PAGE_DICTIONARY) {
      if (dict != NULL) {
        rc = fail(r, "two dictionary pages");
        break;
      }
      if (h.enc != PQ_ENC_PLAIN && h.enc != PQ_ENC_PLAIN_DICTIONARY) {
        rc = fail(r, "a dictionary in encoding %d", h.enc);
        break;
      }
      size_t nv = (size_t)h.nvals;
      tmp.phys = raw_phys(nd->ptype);
      if ((rc = charge(r, nv * 8)) < 0 || (rc = plain_decode(r, nd, data, dlen, nv, &tmp)) < 0)
        break;
      dict = own(r, (nv + 1) * esize(d->phys));
      if ((rc = convert(r, l, &tmp, dict)) < 0)
        break;
      memset((char *)dict + nv * esize(d->phys), 0, esize(d->phys));
      ndict = nv;
      d->dict = dict;
      d->ndict = nv;
      continue;
    }
    size_t count = (size_t)h.nvals;
    if ((int64_t)count > want - got) {
      rc = fail(r, "the pages hold more values than the column chunk");
      break;
    }
    if ((rc = leaf_grow(r, d, d->n + count, d->nvals + count, nd)) < 0)
      break;
    const uint8_t *vp = data;
    size_t vn = dlen;
    size_t nrep, nonnull;   /* nonnull: entries at the maximum definition level */
    if (h.type == PQ_PAGE_DATA) {
      if ((rc = levels_v1(r, &vp, &vn, nd->max_rep, h.rep_enc, count,
                          d->rep ? d->rep + d->n : NULL, &nrep)) < 0)
        break;
      if ((rc = levels_v1(r, &vp, &vn, nd->max_def, h.def_enc, count,
                          d->def ? d->def + d->n : NULL, &nonnull)) < 0)
        break;
    } else {
      if ((rc = levels_v2(r, data, (size_t)h.v2_rlen, nd->max_rep, count,
                          d->rep ? d->rep + d->n : NULL, &nrep)) < 0)
        break;
      if ((rc = levels_v2(r, data + h.v2_rlen, (size_t)h.v2_dlen, nd->max_def, count,
                          d->def ? d->def + d->n : NULL, &nonnull)) < 0)
        break;
      vp = data + lvl;
      vn = dlen - lvl;
    }
    if ((rc = page_values(r, l, h.enc, vp, vn, nonnull, dict, ndict, d, &tmp)) < 0)
      break;
    d->n += count;
    d->nvals += nonnull;
    got += (int64_t)count;
  }
  pq_pool_give(r->pool, tmp.p);
  pq_pool_give(r->pool, pbuf);
  if (rc < 0)
    leafdata_free(r, d);
  return rc;
}

/* ---- nested fields as JSON ---- */

typedef struct jctx {
  rd *r;
  leafdata *ld;        /* the field's leaves */
  int first;           /* leaf index of ld[0] */
  char *buf;
  size_t len, cap;
  int depth;
} jctx;

static int jput(jctx *j, const char *s, size_t n)
{
  if (j->len + n > j->cap) {
    size_t nc = j->cap ? j->cap : 4096;
    while (nc < j->len + n)
      nc *= 2;
    int rc = charge(j->r, nc - j->cap);
    if (rc < 0)
      return rc;
    j->buf = xrealloc(j->buf, nc);
    j->cap = nc;
  }
  if (n > 0)
    memcpy(j->buf + j->len, s, n);
  j->len += n;
  return 0;
}

static int jstr(jctx *j, const char *s, size_t n)
{
  int rc = jput(j, "\"", 1);
  size_t from = 0;
  for (size_t k = 0; k < n && rc == 0; k++) {
    unsigned char c = (unsigned char)s[k];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    rc = jput(j, s + from, k - from);
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      rc = rc ? rc : jput(j, esc, 2);
    } else if (c == '\n') {
      rc = rc ? rc : jput(j, "\\n", 2);
    } else if (c == '\t') {
      rc = rc ? rc : jput(j, "\\t", 2);
    } else if (c == '\r') {
      rc = rc ? rc : jput(j, "\\r", 2);
    } else {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      rc = rc ? rc : jput(j, esc, 6);
    }
    from = k + 1;
  }
  if (rc == 0)
    rc = jput(j, s + from, n - from);
  return rc ? rc : jput(j, "\"", 1);
}

static leafdata *jleaf(jctx *j, const pq_node *n)
{
  while (n->leaf < 0)
    n = n->children[0];
  return &j->ld[n->leaf - j->first];
}

static int jbad(jctx *j)
{
  return fail(j->r, "repetition and definition levels do not fit the schema");
}

/* an absent node: one entry in each of its leaves */
static int jskip(jctx *j, const pq_node *n)
{
  if (n->leaf >= 0) {
    leafdata *d = &j->ld[n->leaf - j->first];
    if (d->lpos >= d->n)
      return jbad(j);
    if (d->def != NULL && d->def[d->lpos] == n->max_def)
      d->vpos++;
    d->lpos++;
    return 0;
  }
  for (int i = 0; i < n->nchildren; i++) {
    int rc = jskip(j, n->children[i]);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int jfield(jctx *j, const pq_node *c);

static int jleafval(jctx *j, const pq_node *n)
{
  leafdata *d = &j->ld[n->leaf - j->first];
  if (d->lpos >= d->n || d->vpos >= d->nvals)
    return jbad(j);
  d->lpos++;
  size_t v = d->vpos++;
  const pq_leaf *l = &j->r->f->leaves[n->leaf];
  char tmp[64];
  int k;
  switch (l->out) {
  case PQO_BOOLEAN: return d->i[v] ? jput(j, "true", 4) : jput(j, "false", 5);
  case PQO_BIGINT:
    k = snprintf(tmp, sizeof tmp, "%lld", (long long)d->i[v]);
    return jput(j, tmp, (size_t)k);
  case PQO_DOUBLE:
    if (d->f[v] != d->f[v] || isinf(d->f[v])) {
      k = fmt_double(d->f[v], tmp);
      return jstr(j, tmp, (size_t)k);
    }
    k = fmt_double(d->f[v], tmp);
    return jput(j, tmp, (size_t)k);
  case PQO_DATE:
    k = fmt_date(d->i[v], tmp);
    return jstr(j, tmp, (size_t)k);
  case PQO_TIMESTAMP:
    k = fmt_timestamp(d->i[v], tmp);
    return jstr(j, tmp, (size_t)k);
  case PQO_DECIMAL: {
    size_t tl = i128_text(d->i[v], n->scale, tmp);
    return jput(j, tmp, tl);
  }
  case PQO_VARCHAR:
    return jstr(j, d->s[v].ptr, d->s[v].len);
  }
  return jbad(j);
}

static bool is_list(const pq_node *n)
{
  return (n->converted == PQ_CT_LIST || n->logical == PQ_LT_LIST) && n->nchildren == 1 &&
         n->children[0]->rep == PQ_REPEATED;
}

static bool is_map(const pq_node *n)
{
  return (n->converted == PQ_CT_MAP || n->converted == PQ_CT_MAP_KEY_VALUE ||
          n->logical == PQ_LT_MAP) && n->nchildren == 1 && n->children[0]->rep == PQ_REPEATED &&
         n->children[0]->nchildren >= 1;
}

/* one occurrence of a list's repeated node: its element */
static int jelement(jctx *j, const pq_node *r)
{
  size_t nl = strlen(r->name);
  bool legacy = r->nchildren != 1 || !strcmp(r->name, "array") ||
                (nl > 6 && !strcmp(r->name + nl - 6, "_tuple"));
  if (r->nchildren == 0 || legacy) {
    /* the repeated node itself is the element */
    if (r->leaf >= 0)
      return jleafval(j, r);
    const pq_node *saved = r;
    (void)saved;
    int rc = jput(j, "{", 1);
    for (int i = 0; i < r->nchildren && rc == 0; i++) {
      if (i > 0)
        rc = jput(j, ",", 1);
      rc = rc ? rc : jstr(j, r->children[i]->name, strlen(r->children[i]->name));
      rc = rc ? rc : jput(j, ":", 1);
      rc = rc ? rc : jfield(j, r->children[i]);
    }
    return rc ? rc : jput(j, "}", 1);
  }
  return jfield(j, r->children[0]);
}

static int jkv(jctx *j, const pq_node *kv)
{
  size_t at = j->len;
  int rc = jfield(j, kv->children[0]);
  if (rc < 0)
    return rc;
  if (j->len == at || j->buf[at] != '"') {
    /* a key that is not a string: its text, quoted */
    size_t n = j->len - at;
    char *k = xmalloc(n + 1);
    memcpy(k, j->buf + at, n);
    j->len = at;
    rc = jstr(j, k, n);
    free(k);
    if (rc < 0)
      return rc;
  }
  rc = jput(j, ":", 1);
  if (rc == 0 && kv->nchildren >= 2)
    rc = jfield(j, kv->children[1]);
  else if (rc == 0)
    rc = jput(j, "null", 4);
  for (int i = 2; i < kv->nchildren && rc == 0; i++)
    rc = jskip(j, kv->children[i]);
  return rc;
}

/* a present group or leaf: its value */
static int jvalue(jctx *j, const pq_node *n, bool as_repeated_elem)
{
  (void)as_repeated_elem;
  if (n->leaf >= 0)
    return jleafval(j, n);
  if (++j->depth > THRIFT_DEPTH_MAX)
    return jbad(j);
  int rc = 0;
  if (is_list(n) || is_map(n)) {
    const pq_node *r = n->children[0];
    bool map = is_map(n);
    leafdata *d = jleaf(j, r);
    if (d->lpos >= d->n)
      return jbad(j);
    int dv = d->def ? d->def[d->lpos] : 0;
    if (dv < r->max_def) {
      rc = jskip(j, r);
      rc = rc ? rc : jput(j, map ? "{}" : "[]", 2);
    } else {
      rc = jput(j, map ? "{" : "[", 1);
      bool first = true;
      do {
        if (!first)
          rc = rc ? rc : jput(j, ",", 1);
        first = false;
        rc = rc ? rc : map ? jkv(j, r) : jelement(j, r);
      } while (rc == 0 && d->lpos < d->n && d->rep != NULL && d->rep[d->lpos] == r->max_rep);
      rc = rc ? rc : jput(j, map ? "}" : "]", 1);
    }
  } else {
    rc = jput(j, "{", 1);
    for (int i = 0; i < n->nchildren && rc == 0; i++) {
      if (i > 0)
        rc = jput(j, ",", 1);
      rc = rc ? rc : jstr(j, n->children[i]->name, strlen(n->children[i]->name));
      rc = rc ? rc : jput(j, ":", 1);
      rc = rc ? rc : jfield(j, n->children[i]);
    }
    rc = rc ? rc : jput(j, "}", 1);
  }
  j->depth--;
  return rc;
}

/* a child of a present group */
static int jfield(jctx *j, const pq_node *c)
{
  leafdata *d = jleaf(j, c);
  if (d->lpos >= d->n)
    return jbad(j);
  int dv = d->def ? d->def[d->lpos] : 0;
  if (c->rep == PQ_REPEATED) {
    /* an unannotated repeated field: a JSON array */
    if (dv < c->max_def) {
      int rc = jskip(j, c);
      return rc ? rc : jput(j, "[]", 2);
    }
    int rc = jput(j, "[", 1);
    bool first = true;
    do {
      if (!first)
        rc = rc ? rc : jput(j, ",", 1);
      first = false;
      rc = rc ? rc : jvalue(j, c, true);
    } while (rc == 0 && d->lpos < d->n && d->rep != NULL && d->rep[d->lpos] == c->max_rep);
    return rc ? rc : jput(j, "]", 1);
  }
  if (c->rep == PQ_OPTIONAL && dv < c->max_def) {
    int rc = jskip(j, c);
    return rc ? rc : jput(j, "null", 4);
  }
  return jvalue(j, c, false);
}

static int read_nested(rd *r, const pq_field *fd, int64_t rows, leafdata *ld, pq_column *out)
{
  jctx j = {.r = r, .ld = ld, .first = fd->first_leaf};
  const pq_node *t = fd->node;
  int rc = charge(r, (size_t)rows * (sizeof(str_ref) + 1 + sizeof(size_t)));
  if (rc < 0)
    return rc;
  size_t *offs = xmalloc(sizeof(size_t) * (size_t)(rows + 1));
  uint8_t *nulls = xmalloc((size_t)rows);
  bool any_null = false;
  leafdata *d0 = jleaf(&j, t);
  for (int64_t row = 0; row < rows && rc == 0; row++) {
    offs[row] = j.len;
    nulls[row] = 0;
    if (d0->lpos >= d0->n || (d0->rep != NULL && d0->rep[d0->lpos] != 0)) {
      rc = jbad(&j);
      break;
    }
    int dv = d0->def ? d0->def[d0->lpos] : 0;
    if (t->rep == PQ_OPTIONAL && dv < t->max_def) {
      nulls[row] = 1;
      any_null = true;
      rc = jskip(&j, t);
      continue;
    }
    rc = jfield(&j, t);
  }
  for (int k = 0; rc == 0 && k < fd->nleaves; k++)
    if (ld[k].lpos != ld[k].n)
      rc = fail(r, "more level entries than rows");
  if (rc < 0) {
    free(offs);
    free(nulls);
    free(j.buf);
    return rc;
  }
  offs[rows] = j.len;
  str_ref *s = xmalloc(sizeof(str_ref) * (size_t)(rows ? rows : 1));
  char *text = own(r, j.len);
  if (j.len)
    memcpy(text, j.buf, j.len);
  free(j.buf);
  for (int64_t row = 0; row < rows; row++) {
    s[row].ptr = text + offs[row];
    s[row].len = nulls[row] ? 0 : offs[row + 1] - offs[row];
  }
  free(offs);
  out->phys = PHYS_STR;
  out->s = s;
  out->nulls = any_null ? nulls : NULL;
  if (!any_null)
    free(nulls);
  return 0;
}

/* ---- a field of a row group ---- */

int pq_column_read(const pq_file *f, int rg, int fi, const uint8_t *const *chunks,
                   const size_t *lens, size_t max, pq_column *out, err *e)
{
  return pq_column_read_pool(f, rg, fi, chunks, lens, max, NULL, out, e);
}

static int column_read(const pq_file *f, int rg, int fi, const uint8_t *const *chunks,
                       const size_t *lens, size_t max, pq_pool *pool, int64_t pool_pages_rows,
                       const int64_t *rr, int nrr, bool codes, pq_column *out, err *e)
{
  memset(out, 0, sizeof *out);
  const pq_field *fd = &f->fields[fi];
  rd r = {.f = f, .col = out, .pool = pool, .max = max, .e = e};
  r.codes = codes && rr == NULL && pool_pages_rows < 0 && !fd->nested && fd->nleaves == 1 &&
            fd->node->max_rep == 0;
  if (rr != NULL && !fd->nested && fd->nleaves == 1 && fd->node->max_rep == 0) {
    r.rr = rr;
    r.nrr = nrr;
  }
  int64_t rows = f->rgs[rg].num_rows;
  if (pool_pages_rows >= 0) {
    if (fd->nested || fd->nleaves != 1 || fd->node->max_rep > 0)
      return err_set(e, ERR_INVALID, "column '%s' of '%s' is not flat", fd->name, f->name);
    r.some_pages = true;
    r.rows = rows = pool_pages_rows;
  }
  out->n = rows;
  leafdata one;
  leafdata *ld = fd->nleaves == 1 ? &one : xmalloc(sizeof(leafdata) * (size_t)fd->nleaves);
  int rc = 0;
  int done = 0;
  for (; done < fd->nleaves && rc == 0; done++)
    rc = read_leaf(&r, rg, fd->first_leaf + done, chunks[done], lens[done], &ld[done]);
  if (rc < 0) {
    done--;   /* the failed one freed itself */
    goto out;
  }
  r.leaf = fd->node;
  if (fd->nested) {
    rc = read_nested(&r, fd, rows, ld, out);
    goto out;
  }
  leafdata *d = &ld[0];
  const pq_node *nd = f->leaves[fd->first_leaf].node;
  if ((int64_t)d->n != rows) {
    rc = fail(&r, "%zu values in a row group of %lld rows", d->n, (long long)rows);
    goto out;
  }
  out->phys = d->phys;
  /* codes only when every value came from the dictionary, and when it
     has fewer entries than UINT32_MAX (the NULL code is ndict) */
  uint32_t *cd = NULL;
  if (d->codes != NULL && !d->nocodes && d->dict != NULL && d->ndict < UINT32_MAX) {
    cd = d->codes;
  } else if (r.codes && !d->nocodes && d->dict != NULL && d->nvals == 0 && d->n > 0 &&
             d->ndict < UINT32_MAX && (rc = charge(&r, d->n * sizeof(uint32_t))) == 0) {
    /* no value at all (every row NULL): all the NULL code */
    cd = pq_pool_take(pool, d->n * sizeof(uint32_t) + 1);
  }
  if (rc < 0)
    goto out;
  if (cd == NULL && (rc = leaf_materialize(&r, d)) < 0)
    goto out;
  d->codes = cd != NULL && cd == d->codes ? NULL : d->codes;
  uint32_t nullc = (uint32_t)d->ndict;
  bool lazy = d->lazy;
  if (lazy && d->def != NULL && d->nvals < d->n) {
    /* codes only: spread them, a NULL row gets the NULL code */
    size_t jv = d->nvals;
    for (size_t k = d->n; k-- > 0;) {
      if (d->def[k] == nd->max_def) {
        cd[k] = cd[--jv];
        d->def[k] = 0;
      } else {
        cd[k] = nullc;
        d->def[k] = 1;
      }
    }
    out->nulls = d->def;
    d->def = NULL;
  } else if (d->def != NULL && d->nvals < d->n) {
    /* spread the dense values over the rows, from the back */
    size_t es = esize(d->phys);
    char *v = d->p;
    size_t jv = d->nvals;
    for (size_t k = d->n; k-- > 0;) {
      if (d->def[k] == nd->max_def) {
        jv--;
        if (jv != k)
          memcpy(v + k * es, v + jv * es, es);
        if (cd != NULL)
          cd[k] = cd[jv];
        d->def[k] = 0;
      } else {
        memset(v + k * es, 0, es);
        if (cd != NULL)
          cd[k] = nullc;
        d->def[k] = 1;
      }
    }
    out->nulls = d->def;
    d->def = NULL;
  }
  if (lazy) {
    pq_pool_give(pool, d->p);   /* never written: values are dict[codes[r]] */
    out->p = NULL;
  } else {
    out->p = d->p;
  }
  d->p = NULL;
  if (cd != NULL) {
    out->codes = cd;
    out->dict = d->dict;
    out->ndict = nullc;
  }
out:
  for (int k = 0; k < done; k++)
    leafdata_free(&r, &ld[k]);
  if (ld != &one)
    free(ld);
  out->bytes += r.used;
  if (rc < 0)
    pq_column_recycle(out, pool);
  return rc;
}

int pq_column_read_pool(const pq_file *f, int rg, int fi, const uint8_t *const *chunks,
                        const size_t *lens, size_t max, pq_pool *pool, pq_column *out, err *e)
{
  return column_read(f, rg, fi, chunks, lens, max, pool, -1, NULL, 0, false, out, e);
}

int pq_column_read_codes(const pq_file *f, int rg, int fi, const uint8_t *const *chunks,
                         const size_t *lens, size_t max, pq_pool *pool, pq_column *out, err *e)
{
  return column_read(f, rg, fi, chunks, lens, max, pool, -1, NULL, 0, true, out, e);
}

int pq_column_read_rows(const pq_file *f, int rg, int fi, const uint8_t *const *chunks,
                        const size_t *lens, size_t max, pq_pool *pool, const int64_t *rr,
                        int nrr, pq_column *out, err *e)
{
  return column_read(f, rg, fi, chunks, lens, max, pool, -1, rr, nrr, false, out, e);
}

int pq_column_read_pages(const pq_file *f, int rg, int fi, const uint8_t *chunk, size_t len,
                         int64_t rows, size_t max, pq_pool *pool, pq_column *out, err *e)
{
  const uint8_t *chunks[1] = {chunk};
  size_t lens[1] = {len};
  return column_read(f, rg, fi, chunks, lens, max, pool, rows < 0 ? 0 : rows, NULL, 0, false,
                     out, e);
}

void pq_column_recycle(pq_column *c, pq_pool *pool)
{
  struct pq_buf *b = c->bufs;
  while (b != NULL) {
    struct pq_buf *n = b->next;
    pq_pool_give(pool, b);
    b = n;
  }
  pq_pool_give(pool, c->p);
  pq_pool_give(pool, c->nulls);
  pq_pool_give(pool, c->codes);
  memset(c, 0, sizeof *c);
}

void pq_column_release(pq_column *c)
{
  struct pq_buf *b = c->bufs;
  while (b != NULL) {
    struct pq_buf *n = b->next;
    free(b);
    b = n;
  }
  free(c->p);
  free(c->nulls);
  free(c->codes);
  memset(c, 0, sizeof *c);
}

/* ---- dictionaries alone (filters on dictionary values) ---- */

int pq_dict_range(const pq_file *f, int rg, int leaf, uint64_t *off, uint64_t *len)
{
  const pq_chunk *c = &f->rgs[rg].chunks[leaf];
  if (c->all_dict != 1 || c->dict_off < PARQUET_MAGIC_LEN || c->data_off <= c->dict_off)
    return 1;
  uint64_t limit = f->size - PARQUET_FOOTER_TAIL;
  if ((uint64_t)c->data_off > limit)
    return 1;
  *off = (uint64_t)c->dict_off;
  *len = (uint64_t)(c->data_off - c->dict_off);
  return 0;
}

int pq_dict_read(const pq_file *f, int rg, int leaf, const uint8_t *p, size_t n, size_t max,
                 pq_column *out, err *e)
{
  memset(out, 0, sizeof *out);
  const pq_leaf *l = &f->leaves[leaf];
  const pq_node *nd = l->node;
  rd r = {.f = f, .leaf = nd, .col = out, .max = max, .e = e};
  pagehdr h;
  size_t hl;
  int rc = page_header(&r, p, n, &h, &hl);
  if (rc < 0)
    goto fail;
  if (h.type != PQ_PAGE_DICTIONARY || !h.has_dict ||
      (h.enc != PQ_ENC_PLAIN && h.enc != PQ_ENC_PLAIN_DICTIONARY)) {
    rc = 1;
    goto fail;
  }
  if ((size_t)h.csize > n - hl) {
    rc = fail(&r, "a dictionary page runs past the column chunk");
    goto fail;
  }
  const uint8_t *data = p + hl;
  size_t dlen = (size_t)h.csize;
  int codec = f->rgs[rg].chunks[leaf].codec;
  if (codec != PQ_CODEC_UNCOMPRESSED) {
    if ((rc = charge(&r, (size_t)h.usize)) < 0)
      goto fail;
    uint8_t *u = own(&r, (size_t)h.usize);
    if ((rc = decompress(&r, codec, data, dlen, u, (size_t)h.usize)) < 0)
      goto fail;
    data = u;
    dlen = (size_t)h.usize;
  }
  size_t nv = (size_t)h.nvals;
  raw tmp = {.phys = raw_phys(nd->ptype)};
  int ph = leaf_phys(l);
  if ((rc = charge(&r, nv * 8)) < 0 || (rc = plain_decode(&r, nd, data, dlen, nv, &tmp)) < 0) {
    free(tmp.p);
    goto fail;
  }
  if ((rc = charge(&r, nv * esize(ph))) < 0) {
    free(tmp.p);
    goto fail;
  }
  out->p = xmalloc(nv * esize(ph));
  rc = convert(&r, l, &tmp, out->p);
  free(tmp.p);
  if (rc < 0)
    goto fail;
  out->phys = ph;
  out->n = (int64_t)nv;
  out->bytes += r.used;
  return 0;
fail:
  pq_column_release(out);
  return rc;
}
