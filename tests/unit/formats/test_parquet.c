/* tests/unit/formats/test_parquet.c -- the Parquet reader on files built
 * here byte by byte (a small Thrift compact writer below), for what the
 * end-to-end fixtures (written by DuckDB) do not contain: INT96
 * timestamps, DELTA_BYTE_ARRAY, the old Hadoop-framed LZ4, a dictionary
 * with NULLs in page v1, and damaged footers and pages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "formats/codec.h"
#include "formats/parquet.h"

#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a Thrift compact writer ---- */

typedef struct tw {
  uint8_t b[8192];
  size_t n;
  int16_t last[32];
  int depth;
} tw;

static void put(tw *w, const void *p, size_t n)
{
  assert_true(w->n + n <= sizeof w->b);
  memcpy(w->b + w->n, p, n);
  w->n += n;
}

static void byte(tw *w, uint8_t c)
{
  put(w, &c, 1);
}

static void varint(tw *w, uint64_t v)
{
  while (v >= 0x80) {
    byte(w, (uint8_t)(v | 0x80));
    v >>= 7;
  }
  byte(w, (uint8_t)v);
}

static void zigzag(tw *w, int64_t v)
{
  varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void field(tw *w, int16_t id, int type)
{
  int16_t d = (int16_t)(id - w->last[w->depth]);
  if (d > 0 && d <= 15) {
    byte(w, (uint8_t)(d << 4 | type));
  } else {
    byte(w, (uint8_t)type);
    zigzag(w, id);
  }
  w->last[w->depth] = id;
}

static void i32f(tw *w, int16_t id, int32_t v)
{
  field(w, id, THRIFT_I32);
  zigzag(w, v);
}

static void i64f(tw *w, int16_t id, int64_t v)
{
  field(w, id, THRIFT_I64);
  zigzag(w, v);
}

static void binf(tw *w, int16_t id, const char *s)
{
  field(w, id, THRIFT_BINARY);
  varint(w, strlen(s));
  put(w, s, strlen(s));
}

static void push(tw *w)
{
  w->last[++w->depth] = 0;
}

static void pop(tw *w)
{
  byte(w, 0);
  w->depth--;
}

static void structf(tw *w, int16_t id)
{
  field(w, id, THRIFT_STRUCT);
  push(w);
}

static void listf(tw *w, int16_t id, int etype, int n)
{
  field(w, id, THRIFT_LIST);
  byte(w, (uint8_t)(n << 4 | etype));
}

/* ---- files ---- */

typedef struct col {
  const char *name;
  int type;
  int rep;
  int converted;         /* -1 none */
  int codec;
  int64_t nvals;
  const uint8_t *pages;  /* page headers and bodies */
  size_t npages;
  int enc;               /* the one encoding the footer lists (0: PLAIN) */
} col;

/* PAR1, the pages of one column, the footer; returns the file size */
static size_t build(uint8_t *out, const col *c, int64_t rows)
{
  size_t n = 0;
  memcpy(out, "PAR1", 4);
  n = 4;
  int64_t data_off = (int64_t)n;
  memcpy(out + n, c->pages, c->npages);
  n += c->npages;
  tw w;
  memset(&w, 0, sizeof w);
  i32f(&w, 1, 1);
  listf(&w, 2, THRIFT_STRUCT, 2);
  push(&w);
  binf(&w, 4, "schema");
  i32f(&w, 5, 1);
  pop(&w);
  push(&w);
  i32f(&w, 1, c->type);
  i32f(&w, 3, c->rep);
  binf(&w, 4, c->name);
  if (c->converted >= 0)
    i32f(&w, 6, c->converted);
  pop(&w);
  i64f(&w, 3, rows);
  listf(&w, 4, THRIFT_STRUCT, 1);
  push(&w);                          /* RowGroup */
  listf(&w, 1, THRIFT_STRUCT, 1);
  push(&w);                          /* ColumnChunk */
  i64f(&w, 2, data_off);
  structf(&w, 3);                    /* ColumnMetaData */
  i32f(&w, 1, c->type);
  listf(&w, 2, THRIFT_I32, 1);
  zigzag(&w, c->enc);
  listf(&w, 3, THRIFT_BINARY, 1);
  varint(&w, strlen(c->name));
  put(&w, c->name, strlen(c->name));
  i32f(&w, 4, c->codec);
  i64f(&w, 5, c->nvals);
  i64f(&w, 6, (int64_t)c->npages);
  i64f(&w, 7, (int64_t)c->npages);
  i64f(&w, 9, data_off);
  pop(&w);                           /* ColumnMetaData */
  pop(&w);                           /* ColumnChunk */
  i64f(&w, 2, 100);
  i64f(&w, 3, rows);
  pop(&w);                           /* RowGroup */
  byte(&w, 0);                       /* FileMetaData */
  memcpy(out + n, w.b, w.n);
  n += w.n;
  uint32_t fl = (uint32_t)w.n;
  uint8_t le[4] = {(uint8_t)fl, (uint8_t)(fl >> 8), (uint8_t)(fl >> 16), (uint8_t)(fl >> 24)};
  memcpy(out + n, le, 4);
  memcpy(out + n + 4, "PAR1", 4);
  return n + 8;
}

/* a page header (v1 data or dictionary) followed by its body */
static size_t page(uint8_t *out, int type, int32_t nvals, int enc, const uint8_t *body,
                   size_t blen, size_t ulen)
{
  tw w;
  memset(&w, 0, sizeof w);
  i32f(&w, 1, type);
  i32f(&w, 2, (int32_t)ulen);
  i32f(&w, 3, (int32_t)blen);
  structf(&w, type == PQ_PAGE_DICTIONARY ? 7 : 5);
  i32f(&w, 1, nvals);
  i32f(&w, 2, enc);
  if (type == PQ_PAGE_DATA) {
    i32f(&w, 3, PQ_ENC_RLE);
    i32f(&w, 4, PQ_ENC_RLE);
  }
  pop(&w);
  byte(&w, 0);
  memcpy(out, w.b, w.n);
  memcpy(out + w.n, body, blen);
  return w.n + blen;
}

static int read_file(const uint8_t *f, size_t n, pq_column *c, err *e)
{
  uint32_t fl;
  int rc = pq_footer_len("s3://b/x.parquet", n, f, n, &fl, e);
  if (rc < 0)
    return rc;
  pq_file *pf = NULL;
  rc = pq_file_parse("s3://b/x.parquet", n, f + n - 8 - fl, fl, &pf, e);
  if (rc < 0)
    return rc;
  uint64_t off, len;
  if (pf->nrgs < 1 || pf->nfields < 1) {
    pq_file_free(pf);
    return err_set(e, ERR_INVALID, "no row group");
  }
  rc = pq_chunk_range(pf, 0, 0, &off, &len, e);
  if (rc == 0) {
    const uint8_t *p = f + off;
    size_t l = (size_t)len;
    rc = pq_column_read(pf, 0, 0, &p, &l, 1 << 20, c, e);
  }
  pq_file_free(pf);
  return rc;
}

/* ---- tests ---- */

static void test_int96(void **state)
{
  (void)state;
  uint8_t body[24];
  /* 1970-01-02 00:00:00.0000015 and 1969-12-31 23:59:59 */
  int64_t nanos[2] = {1500, 86399000000000LL};
  int32_t days[2] = {2440589, 2440587};
  for (int i = 0; i < 2; i++) {
    memcpy(body + 12 * i, &nanos[i], 8);
    memcpy(body + 12 * i + 8, &days[i], 4);
  }
  uint8_t pages[256];
  size_t np = page(pages, PQ_PAGE_DATA, 2, PQ_ENC_PLAIN, body, 24, 24);
  col c = {"t", PQ_INT96, PQ_REQUIRED, -1, PQ_CODEC_UNCOMPRESSED, 2, pages, np, 0};
  uint8_t f[4096];
  size_t n = build(f, &c, 2);
  pq_column pc;
  err e;
  err_clear(&e);
  assert_int_equal(read_file(f, n, &pc, &e), 0);
  assert_int_equal(pc.phys, PHYS_I64);
  assert_true(pc.nulls == NULL);
  assert_true(pc.i[0] == 86400000001LL);
  assert_true(pc.i[1] == -1000000LL);
  pq_column_release(&pc);
}

/* DELTA_BINARY_PACKED of 3 values: block 128, 4 miniblocks, width 8 */
static size_t dbp3(uint8_t *out, int64_t a, int64_t b, int64_t c)
{
  tw w;
  memset(&w, 0, sizeof w);
  varint(&w, 128);
  varint(&w, 4);
  varint(&w, 3);
  zigzag(&w, a);
  int64_t d1 = b - a, d2 = c - b;
  int64_t mn = d1 < d2 ? d1 : d2;
  zigzag(&w, mn);
  byte(&w, 8);
  byte(&w, 0);
  byte(&w, 0);
  byte(&w, 0);
  uint8_t mb[32] = {0};
  mb[0] = (uint8_t)(d1 - mn);
  mb[1] = (uint8_t)(d2 - mn);
  put(&w, mb, 32);
  memcpy(out, w.b, w.n);
  return w.n;
}

static void test_delta_byte_array(void **state)
{
  (void)state;
  uint8_t body[256];
  size_t bn = dbp3(body, 0, 4, 0);          /* prefixes */
  bn += dbp3(body + bn, 5, 1, 6);           /* suffix lengths */
  memcpy(body + bn, "appleybanana", 12);
  bn += 12;
  uint8_t pages[512];
  size_t np = page(pages, PQ_PAGE_DATA, 3, PQ_ENC_DELTA_BYTE_ARRAY, body, bn, bn);
  col c = {"s", PQ_BYTE_ARRAY, PQ_REQUIRED, PQ_CT_UTF8, PQ_CODEC_UNCOMPRESSED, 3, pages, np, 0};
  uint8_t f[4096];
  size_t n = build(f, &c, 3);
  pq_column pc;
  err e;
  err_clear(&e);
  assert_int_equal(read_file(f, n, &pc, &e), 0);
  assert_int_equal(pc.phys, PHYS_STR);
  const char *want[3] = {"apple", "apply", "banana"};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(pc.s[i].len, strlen(want[i]));
    assert_memory_equal(pc.s[i].ptr, want[i], strlen(want[i]));
  }
  pq_column_release(&pc);
}

static void test_hadoop_lz4_and_dictionary_nulls(void **state)
{
  (void)state;
  /* page v1 body: def levels (RLE, 4 values: 1,0,1,1 bit-packed), then
     dictionary indices (width 1: 1,0,1) */
  uint8_t body[64];
  size_t bn = 0;
  uint8_t lv[] = {2, 0, 0, 0, 0x03, 0x0d};   /* len 2; 1 group bit-packed: 1011 */
  memcpy(body, lv, sizeof lv);
  bn = sizeof lv;
  uint8_t ix[] = {1, 0x03, 0x05};            /* width 1; 1 group: 1,0,1 */
  memcpy(body + bn, ix, sizeof ix);
  bn += sizeof ix;
  /* Hadoop frame: raw size, compressed size (big-endian), LZ4 block */
  char comp[128];
  int cl = LZ4_compress_default((const char *)body, comp, (int)bn, (int)sizeof comp);
  assert_true(cl > 0);
  uint8_t framed[160];
  uint32_t raw = (uint32_t)bn, cz = (uint32_t)cl;
  uint8_t hdr[8] = {(uint8_t)(raw >> 24), (uint8_t)(raw >> 16), (uint8_t)(raw >> 8), (uint8_t)raw,
                    (uint8_t)(cz >> 24), (uint8_t)(cz >> 16), (uint8_t)(cz >> 8), (uint8_t)cz};
  memcpy(framed, hdr, 8);
  memcpy(framed + 8, comp, (size_t)cl);
  /* dictionary: two INT64 values, compressed the same way */
  int64_t dv[2] = {-7, 1234567890123LL};
  char dcomp[64];
  int dl = LZ4_compress_default((const char *)dv, dcomp, 16, (int)sizeof dcomp);
  uint8_t dframed[80] = {0, 0, 0, 16, 0, 0, 0, (uint8_t)dl};
  memcpy(dframed + 8, dcomp, (size_t)dl);
  uint8_t pages[512];
  size_t np = page(pages, PQ_PAGE_DICTIONARY, 2, PQ_ENC_PLAIN_DICTIONARY, dframed,
                   (size_t)dl + 8, 16);
  np += page(pages + np, PQ_PAGE_DATA, 4, PQ_ENC_PLAIN_DICTIONARY, framed, (size_t)cl + 8, bn);
  col c = {"v", PQ_INT64, PQ_OPTIONAL, -1, PQ_CODEC_LZ4, 4, pages, np, 0};
  uint8_t f[4096];
  size_t n = build(f, &c, 4);
  pq_column pc;
  err e;
  err_clear(&e);
  assert_int_equal(read_file(f, n, &pc, &e), 0);
  assert_non_null(pc.nulls);
  assert_int_equal(pc.nulls[0], 0);
  assert_int_equal(pc.nulls[1], 1);
  assert_true(pc.i[0] == 1234567890123LL);
  assert_true(pc.i[2] == -7);
  assert_true(pc.i[3] == 1234567890123LL);
  pq_column_release(&pc);
}

/* reads the one column of file f with only the rows [rr[0], rr[1]) wanted
   (rr NULL: all; codes: all, with dictionary codes when it has them) */
static int read_rows_or_codes(const uint8_t *f, size_t n, const int64_t *rr, bool codes,
                              pq_column *c, err *e)
{
  uint32_t fl;
  pq_file *pf = NULL;
  int rc = pq_footer_len("s3://b/x.parquet", n, f, n, &fl, e);
  if (rc == 0)
    rc = pq_file_parse("s3://b/x.parquet", n, f + n - 8 - fl, fl, &pf, e);
  uint64_t off, len;
  if (rc == 0)
    rc = pq_chunk_range(pf, 0, 0, &off, &len, e);
  if (rc == 0) {
    const uint8_t *p = f + off;
    size_t l = (size_t)len;
    rc = codes ? pq_column_read_codes(pf, 0, 0, &p, &l, 1 << 20, NULL, c, e)
               : pq_column_read_rows(pf, 0, 0, &p, &l, 1 << 20, NULL, rr, rr ? 1 : 0, c, e);
  }
  pq_file_free(pf);
  return rc;
}

static int read_rows(const uint8_t *f, size_t n, const int64_t *rr, pq_column *c, err *e)
{
  return read_rows_or_codes(f, n, rr, false, c, e);
}

static int read_codes(const uint8_t *f, size_t n, pq_column *c, err *e)
{
  return read_rows_or_codes(f, n, NULL, true, c, e);
}

/* the string of row r of a column read with or without codes (NULL for a
   NULL row) */
static const str_ref *col_str(const pq_column *c, int r)
{
  if (c->nulls != NULL && c->nulls[r])
    return NULL;
  return c->codes != NULL ? &((const str_ref *)c->dict)[c->codes[r]] : &c->s[r];
}

/* rows 0..n-1 of a string column read with or without codes are want[]
   (NULL for a NULL row) */
static void check_strs(const pq_column *pc, const char *const *want, int n)
{
  for (int r = 0; r < n; r++) {
    const str_ref *s = col_str(pc, r);
    assert_int_equal(s == NULL, want[r] == NULL);
    if (s == NULL)
      continue;
    assert_int_equal(s->len, strlen(want[r]));
    assert_memory_equal(s->ptr, want[r], strlen(want[r]));
  }
}

/* A chunk that falls back from its dictionary to PLAIN mid-way (as
   parquet-mr and Arrow write when a dictionary grows too large): a
   dictionary page, an RLE_DICTIONARY page with a NULL, then a PLAIN page;
   read whole, and with only the rows of one page or the other wanted. */
static void test_dictionary_fallback_mid_chunk(void **state)
{
  (void)state;
  static const uint8_t dict[] = {1, 0, 0, 0, 'a', 2, 0, 0, 0, 'b', 'b', 3, 0, 0, 0, 'c', 'c', 'c'};
  /* 8 rows: def levels 1,1,0,1,1,1,1,1 (one bit-packed group), then 7
     indices of width 2 (0,1,2,0,2,1,1) */
  static const uint8_t p1[] = {2, 0, 0, 0, 0x03, 0xFB, 2, 0x03, 0x24, 0x16};
  /* 4 rows, all defined (one RLE run), PLAIN strings */
  static const uint8_t p2[] = {2, 0, 0, 0, 0x08, 0x01,
                               2, 0, 0, 0, 'x', 'y', 1, 0, 0, 0, 'z', 0, 0, 0, 0,
                               4, 0, 0, 0, 'l', 'a', 's', 't'};
  static const char *want[12] = {"a", "bb", NULL, "ccc", "a", "ccc", "bb", "bb",
                                 "xy", "z", "", "last"};
  uint8_t pages[512];
  size_t np = page(pages, PQ_PAGE_DICTIONARY, 3, PQ_ENC_PLAIN, dict, sizeof dict, sizeof dict);
  np += page(pages + np, PQ_PAGE_DATA, 8, PQ_ENC_RLE_DICTIONARY, p1, sizeof p1, sizeof p1);
  np += page(pages + np, PQ_PAGE_DATA, 4, PQ_ENC_PLAIN, p2, sizeof p2, sizeof p2);
  col c = {"s", PQ_BYTE_ARRAY, PQ_OPTIONAL, PQ_CT_UTF8, PQ_CODEC_UNCOMPRESSED, 12, pages, np, 0};
  uint8_t f[4096];
  size_t n = build(f, &c, 12);
  static const int64_t only2[2] = {9, 11}, only1[2] = {1, 3};
  const int64_t *cases[3] = {NULL, only2, only1};
  for (int k = 0; k < 3; k++) {
    pq_column pc;
    err e;
    err_clear(&e);
    if (read_rows(f, n, cases[k], &pc, &e) != 0)
      fail_msg("case %d: %s", k, e.msg);
    assert_int_equal(pc.n, 12);
    assert_non_null(pc.nulls);
    for (int r = 0; r < 12; r++) {
      bool decoded = cases[k] == NULL || (cases[k] == only2 ? r >= 8 : r < 8);
      if (!decoded) {
        assert_int_equal(pc.nulls[r], 1);
        continue;
      }
      assert_int_equal(pc.nulls[r], want[r] == NULL);
      if (want[r] == NULL)
        continue;
      assert_int_equal(pc.s[r].len, strlen(want[r]));
      assert_memory_equal(pc.s[r].ptr, want[r], strlen(want[r]));
    }
    pq_column_release(&pc);
  }
  /* with codes asked for: none (a page is PLAIN), the values written out
     from the codes of the first page when the PLAIN one came */
  pq_column pc;
  err e;
  err_clear(&e);
  if (read_codes(f, n, &pc, &e) != 0)
    fail_msg("codes: %s", e.msg);
  assert_null(pc.codes);
  assert_non_null(pc.p);
  check_strs(&pc, want, 12);
  pq_column_release(&pc);
  /* the same with a footer that claims every page uses the dictionary (so
     the reader starts with codes only and no values array) */
  col cd = c;
  cd.enc = PQ_ENC_RLE_DICTIONARY;
  size_t n2 = build(f, &cd, 12);
  if (read_codes(f, n2, &pc, &e) != 0)
    fail_msg("codes, footer claims all dictionary: %s", e.msg);
  assert_null(pc.codes);
  check_strs(&pc, want, 12);
  pq_column_release(&pc);
  /* the dictionary-encoded page alone: codes, values not written out, a
     NULL row's code past the dictionary and its value empty */
  np = page(pages, PQ_PAGE_DICTIONARY, 3, PQ_ENC_PLAIN, dict, sizeof dict, sizeof dict);
  np += page(pages + np, PQ_PAGE_DATA, 8, PQ_ENC_RLE_DICTIONARY, p1, sizeof p1, sizeof p1);
  col c1 = {"s", PQ_BYTE_ARRAY, PQ_OPTIONAL, PQ_CT_UTF8, PQ_CODEC_UNCOMPRESSED, 8, pages, np, 0};
  n = build(f, &c1, 8);
  if (read_codes(f, n, &pc, &e) != 0)
    fail_msg("codes, one page: %s", e.msg);
  assert_non_null(pc.codes);
  assert_null(pc.p);
  assert_int_equal(pc.ndict, 3);
  assert_int_equal(((const str_ref *)pc.dict)[3].len, 0);
  static const uint32_t wantc[8] = {0, 1, 3, 2, 0, 2, 1, 1};
  for (int r = 0; r < 8; r++)
    assert_int_equal(pc.codes[r], wantc[r]);
  check_strs(&pc, want, 8);
  pq_column_release(&pc);
}

static void test_damaged(void **state)
{
  (void)state;
  uint8_t body[16] = {0};
  uint8_t pages[256];
  size_t np = page(pages, PQ_PAGE_DATA, 2, PQ_ENC_PLAIN, body, 16, 16);
  col c = {"i", PQ_INT64, PQ_REQUIRED, -1, PQ_CODEC_UNCOMPRESSED, 2, pages, np, 0};
  uint8_t f[4096];
  size_t n = build(f, &c, 2);
  pq_column pc;
  err e;
  /* wrong magic at the end */
  uint8_t g[4096];
  memcpy(g, f, n);
  g[n - 1] = 'X';
  err_clear(&e);
  assert_int_equal(read_file(g, n, &pc, &e), ERR_INVALID);
  assert_non_null(strstr(e.msg, "'s3://b/x.parquet' is not a Parquet file"));
  /* a footer longer than the object */
  memcpy(g, f, n);
  g[n - 6] = 0x7f;
  err_clear(&e);
  assert_int_equal(read_file(g, n, &pc, &e), ERR_INVALID);
  assert_non_null(strstr(e.msg, "longer than the object"));
  /* every truncation of the footer, every byte of it flipped: errors, no crash */
  for (size_t k = 8; k < n; k++) {
    err_clear(&e);
    if (read_file(f, k, &pc, &e) == 0)
      pq_column_release(&pc);
    memcpy(g, f, n);
    g[n - 1 - k % (n - 4)] ^= 0xff;
    err_clear(&e);
    if (read_file(g, n, &pc, &e) == 0)
      pq_column_release(&pc);
  }
  /* a page claiming more values than its bytes */
  np = page(pages, PQ_PAGE_DATA, 200, PQ_ENC_PLAIN, body, 16, 16);
  col c2 = {"i", PQ_INT64, PQ_REQUIRED, -1, PQ_CODEC_UNCOMPRESSED, 200, pages, np, 0};
  n = build(f, &c2, 200);
  err_clear(&e);
  assert_int_equal(read_file(f, n, &pc, &e), ERR_INVALID);
  assert_non_null(strstr(e.msg, "column 'i'"));
  assert_non_null(strstr(e.msg, "s3://b/x.parquet"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_int96),
    cmocka_unit_test(test_delta_byte_array),
    cmocka_unit_test(test_hadoop_lz4_and_dictionary_nulls),
    cmocka_unit_test(test_dictionary_fallback_mid_chunk),
    cmocka_unit_test(test_damaged),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
