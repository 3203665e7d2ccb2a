/* tests/unit/formats/test_parquet_write.c -- the Parquet writer: files
 * written into memory, their footer read back with a small Thrift compact
 * reader of the test's own, and the codecs' compress functions round-trip.
 * PQW_TEST_DIR=dir also leaves the files there (for checking them with
 * another reader by hand). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "formats/codec.h"
#include "formats/parquet.h"
#include "formats/parquet_format.h"
#include "formats/parquet_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mem {
  unsigned char *p;
  size_t len;
  size_t cap;
  int fail_after;   /* > 0: the n-th write fails */
} mem;

static int mem_out(void *ctx, const void *p, size_t n, err *e)
{
  mem *m = ctx;
  if (m->fail_after > 0 && --m->fail_after == 0)
    return err_set(e, ERR_IO, "disk full");
  if (m->len + n > m->cap) {
    m->cap = (m->len + n) * 2;
    m->p = realloc(m->p, m->cap);
  }
  memcpy(m->p + m->len, p, n);
  m->len += n;
  return 0;
}

/* ---- a minimal Thrift compact reader: enough to find fields ---- */

typedef struct rd {
  const unsigned char *p;
  size_t n;
  size_t i;
} rd;

static uint64_t rd_varint(rd *r)
{
  uint64_t v = 0;
  int s = 0;
  while (r->i < r->n) {
    unsigned char b = r->p[r->i++];
    v |= (uint64_t)(b & 0x7f) << s;
    if (!(b & 0x80))
      break;
    s += 7;
  }
  return v;
}

static int64_t rd_zz(rd *r)
{
  uint64_t v = rd_varint(r);
  return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void rd_skip(rd *r, int type);

static void rd_skip_struct(rd *r)
{
  for (;;) {
    unsigned char h = r->p[r->i++];
    if (h == 0)
      return;
    if ((h >> 4) == 0)
      rd_zz(r);
    rd_skip(r, h & 0x0f);
  }
}

static void rd_skip(rd *r, int type)
{
  switch (type) {
  case THRIFT_TRUE:
  case THRIFT_FALSE:
    break;
  case THRIFT_I8:
    r->i++;
    break;
  case THRIFT_I16:
  case THRIFT_I32:
  case THRIFT_I64:
    rd_zz(r);
    break;
  case THRIFT_DOUBLE:
    r->i += 8;
    break;
  case THRIFT_BINARY:
    r->i += rd_varint(r);
    break;
  case THRIFT_LIST:
  case THRIFT_SET: {
    unsigned char h = r->p[r->i++];
    size_t n = h >> 4;
    if (n == 15)
      n = rd_varint(r);
    for (size_t k = 0; k < n; k++)
      rd_skip(r, h & 0x0f);
    break;
  }
  case THRIFT_STRUCT:
    rd_skip_struct(r);
    break;
  default:
    fail_msg("unexpected thrift type %d", type);
  }
}

/* Reads the next field header of the struct; 0 at its end. */
static int rd_field(rd *r, int *last, int *type)
{
  unsigned char h = r->p[r->i++];
  if (h == 0)
    return 0;
  *type = h & 0x0f;
  if ((h >> 4) == 0)
    *last = (int)rd_zz(r);
  else
    *last += h >> 4;
  return *last;
}

typedef struct colmeta {
  int64_t codec;
  int64_t num_values;
  int64_t data_off;
  int64_t dict_off;        /* 0: none */
} colmeta;

static size_t rd_list(rd *r)
{
  size_t n = r->p[r->i++] >> 4;
  if (n == 15)
    n = rd_varint(r);
  return n;
}

static void read_colmeta(rd *r, colmeta *m)
{
  int last = 0;
  int type;
  int id;
  while ((id = rd_field(r, &last, &type)) != 0) {
    if (id == 4)
      m->codec = rd_zz(r);
    else if (id == 5)
      m->num_values = rd_zz(r);
    else if (id == 9)
      m->data_off = rd_zz(r);
    else if (id == 11)
      m->dict_off = rd_zz(r);
    else
      rd_skip(r, type);
  }
}

/* RowGroup: the first column chunk's metadata into m, the rest skipped */
static void read_row_group(rd *r, colmeta *m)
{
  int last = 0;
  int type;
  int id;
  while ((id = rd_field(r, &last, &type)) != 0) {
    if (id != 1) {
      rd_skip(r, type);
      continue;
    }
    size_t n = rd_list(r);
    for (size_t k = 0; k < n; k++) {
      if (k > 0) {
        rd_skip_struct(r);
        continue;
      }
      int l2 = 0;
      int t2;
      int id2;
      while ((id2 = rd_field(r, &l2, &t2)) != 0) {
        if (id2 == 3)
          read_colmeta(r, m);
        else
          rd_skip(r, t2);
      }
    }
  }
}

typedef struct footer {
  colmeta first;           /* row group 0, column 0 */
  int64_t version;
  int64_t num_rows;
  size_t nschema;
  size_t nrow_groups;
  char created_by[64];
} footer;

static void read_footer(const mem *m, footer *f)
{
  memset(f, 0, sizeof *f);
  assert_true(m->len >= 12);
  assert_memory_equal(m->p, "PAR1", 4);
  assert_memory_equal(m->p + m->len - 4, "PAR1", 4);
  const unsigned char *t = m->p + m->len - 8;
  size_t flen = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
  assert_true(flen + 12 <= m->len);
  rd r = {m->p + m->len - 8 - flen, flen, 0};
  int last = 0;
  int type;
  int id;
  while ((id = rd_field(&r, &last, &type)) != 0) {
    if (id == 1) {
      f->version = rd_zz(&r);
    } else if (id == 3) {
      f->num_rows = rd_zz(&r);
    } else if (id == 4) {
      size_t n = rd_list(&r);
      f->nrow_groups = n;
      for (size_t k = 0; k < n; k++) {
        if (k == 0)
          read_row_group(&r, &f->first);
        else
          rd_skip_struct(&r);
      }
    } else if (id == 2) {
      size_t at = r.i;
      size_t n = r.p[r.i++] >> 4;
      if (n == 15)
        n = rd_varint(&r);
      r.i = at;   /* skipped whole below */
      f->nschema = n;
      rd_skip(&r, type);
    } else if (id == 6) {
      size_t n = rd_varint(&r);
      assert_true(n < sizeof f->created_by);
      memcpy(f->created_by, r.p + r.i, n);
      r.i += n;
    } else {
      rd_skip(&r, type);
    }
  }
  assert_int_equal(r.i, flen);
}

/* ---- tests ---- */

static const pqw_column COLS[] = {
  {.name = "id", .kind = PQW_INT64, },    {.name = "name", .kind = PQW_STRING, }, {.name = "price", .kind = PQW_DOUBLE, },
  {.name = "ok", .kind = PQW_BOOLEAN, },  {.name = "day", .kind = PQW_DATE, },    {.name = "ts", .kind = PQW_TIMESTAMP, },
  {.name = "amount", .kind = PQW_DECIMAL, .precision = 12, .scale = 2},
};
#define NC 7

static void fill(vec *v, int64_t *iv[NC], double *fv, str_ref *sv, uint8_t *nulls, int base,
                 int n, char (*text)[16])
{
  for (int c = 0; c < NC; c++) {
    memset(&v[c], 0, sizeof v[c]);
    v[c].phys = COLS[c].kind == PQW_DOUBLE ? PHYS_F64 : COLS[c].kind == PQW_STRING ? PHYS_STR
                                                                                    : PHYS_I64;
  }
  for (int j = 0; j < n; j++) {
    int r = base + j;
    iv[0][j] = r;
    snprintf(text[j], 16, "%06d", r % 10);   /* repeats: a dictionary */
    sv[j].ptr = text[j];
    sv[j].len = strlen(text[j]);
    fv[j] = r * 0.5;
    iv[3][j] = r % 2;
    iv[4][j] = 19000 + r % 3;
    iv[5][j] = (int64_t)r * 1000000;
    iv[6][j] = r * 101;
    nulls[j] = r % 7 == 3;
  }
  v[0].i = iv[0];
  v[1].s = sv;
  v[1].nulls = nulls;
  v[2].f = fv;
  v[3].i = iv[3];
  v[4].i = iv[4];
  v[5].i = iv[5];
  v[6].i = iv[6];
}

static void write_file(pqw_codec codec, int rows, uint64_t rg_rows, mem *m, const char *name)
{
  pqw_writer *w;
  err e;
  pqw_options o = {.codec = codec, .row_group_rows = rg_rows};
  assert_int_equal(pqw_new(COLS, NC, &o, mem_out, m, &w, &e), 0);
  int64_t *iv[NC];
  for (int c = 0; c < NC; c++)
    iv[c] = calloc(COL_BATCH, sizeof(int64_t));
  double *fv = calloc(COL_BATCH, sizeof *fv);
  str_ref *sv = calloc(COL_BATCH, sizeof *sv);
  uint8_t *nulls = calloc(COL_BATCH, 1);
  char(*text)[16] = calloc(COL_BATCH, 16);
  vec v[NC];
  for (int base = 0; base < rows; base += COL_BATCH) {
    int n = rows - base < COL_BATCH ? rows - base : COL_BATCH;
    fill(v, iv, fv, sv, nulls, base, n, text);
    assert_int_equal(pqw_append(w, v, NULL, n, &e), 0);
  }
  assert_int_equal(pqw_finish(w, &e), 0);
  assert_int_equal(pqw_rows(w), (uint64_t)rows);
  assert_int_equal(pqw_written(w), m->len);
  pqw_free(w);
  for (int c = 0; c < NC; c++)
    free(iv[c]);
  free(fv);
  free(sv);
  free(nulls);
  free(text);
  const char *dir = getenv("PQW_TEST_DIR");
  if (dir != NULL && name != NULL) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f != NULL) {
      fwrite(m->p, 1, m->len, f);
      fclose(f);
    }
  }
}

static void test_footer(void **state)
{
  (void)state;
  static const struct {
    pqw_codec codec;
    const char *name;
  } codecs[] = {{PQW_UNCOMPRESSED, "none.parquet"},
                {PQW_SNAPPY, "snappy.parquet"},
                {PQW_GZIP, "gzip.parquet"},
                {PQW_ZSTD, "zstd.parquet"}};
  for (size_t k = 0; k < 4; k++) {
    mem m = {0};
    write_file(codecs[k].codec, 5000, 2048, &m, codecs[k].name);
    footer f;
    read_footer(&m, &f);
    assert_int_equal(f.version, 1);
    assert_int_equal(f.num_rows, 5000);
    assert_int_equal(f.nschema, NC + 1);
    assert_int_equal(f.nrow_groups, 3);   /* 2048 + 2048 + 904 */
    assert_string_equal(f.created_by, "tarn");
    free(m.p);
  }
}

static void test_empty_file(void **state)
{
  (void)state;
  mem m = {0};
  write_file(PQW_ZSTD, 0, 0, &m, "empty.parquet");
  footer f;
  read_footer(&m, &f);
  assert_int_equal(f.num_rows, 0);
  assert_int_equal(f.nrow_groups, 0);
  free(m.p);
}

static void test_compression_pays(void **state)
{
  (void)state;
  mem plain = {0};
  mem z = {0};
  write_file(PQW_UNCOMPRESSED, 20000, 0, &plain, NULL);
  write_file(PQW_ZSTD, 20000, 0, &z, NULL);
  assert_true(z.len < plain.len);
  free(plain.p);
  free(z.p);
}

static void test_out_failure(void **state)
{
  (void)state;
  mem m = {.fail_after = 3};
  pqw_writer *w;
  err e;
  pqw_options o = {.codec = PQW_SNAPPY, .row_group_rows = 10};
  assert_int_equal(pqw_new(COLS, 1, &o, mem_out, &m, &w, &e), 0);
  int64_t iv[40];
  for (int i = 0; i < 40; i++)
    iv[i] = i;
  vec v = {.phys = PHYS_I64, .i = iv};
  int rc = 0;
  for (int k = 0; k < 4 && rc == 0; k++)
    rc = pqw_append(w, &v, NULL, 10, &e);
  assert_int_equal(rc, ERR_IO);
  assert_string_equal(e.msg, "disk full");
  pqw_free(w);
  free(m.p);
}

/* the buffered row group stays within its byte bound (plus one batch) */
static void test_row_group_byte_bound(void **state)
{
  (void)state;
  mem m = {0};
  pqw_writer *w;
  err e;
  pqw_options o = {.codec = PQW_ZSTD, .row_group_bytes = 50000};
  assert_int_equal(pqw_new(COLS, 1, &o, mem_out, &m, &w, &e), 0);
  int64_t *iv = calloc(COL_BATCH, sizeof *iv);
  vec v = {.phys = PHYS_I64, .i = iv};
  for (int k = 0; k < 50; k++) {
    for (int i = 0; i < COL_BATCH; i++)
      iv[i] = (int64_t)k * COL_BATCH + i;
    assert_int_equal(pqw_append(w, &v, NULL, COL_BATCH, &e), 0);
    assert_true(pqw_buffered(w) < 50000);
  }
  assert_int_equal(pqw_finish(w, &e), 0);
  pqw_free(w);
  footer f;
  read_footer(&m, &f);
  assert_int_equal(f.num_rows, 50 * COL_BATCH);
  assert_true(f.nrow_groups >= 16);   /* 3 batches of 2048 rows (9 bytes each) per group */
  free(iv);
  free(m.p);
}

/* A page header at off: its type, value count, and where its body starts. */
static void read_page(const mem *m, size_t off, int *type, int *nvalues, size_t *body,
                      size_t *clen)
{
  rd r = {m->p, m->len, off};
  int last = 0;
  int t;
  int id;
  *nvalues = -1;
  while ((id = rd_field(&r, &last, &t)) != 0) {
    if (id == 1) {
      *type = (int)rd_zz(&r);
    } else if (id == 3) {
      *clen = (size_t)rd_zz(&r);
    } else if (id == 5 || id == 7) {
      int l2 = 0;
      int t2;
      int id2;
      while ((id2 = rd_field(&r, &l2, &t2)) != 0) {
        if (id2 == 1)
          *nvalues = (int)rd_zz(&r);
        else
          rd_skip(&r, t2);
      }
    } else {
      rd_skip(&r, t);
    }
  }
  *body = r.i;
}

/* Counts the 1s among the first n definition levels (bit width 1) of a
 * RLE / bit-packed hybrid run of len bytes at p. */
static int count_defined(const unsigned char *p, size_t len, int n)
{
  rd r = {p, len, 0};
  int seen = 0;
  int ones = 0;
  while (r.i < len && seen < n) {
    uint64_t h = rd_varint(&r);
    if (h & 1) {
      size_t groups = (size_t)(h >> 1);
      for (size_t g = 0; g < groups; g++) {
        unsigned char byte = p[r.i++];
        for (int k = 0; k < 8 && seen < n; k++, seen++)
          ones += (byte >> k) & 1;
      }
    } else {
      int run = (int)(h >> 1);
      int v = p[r.i++];
      for (int k = 0; k < run && seen < n; k++, seen++)
        ones += v;
    }
  }
  assert_int_equal(seen, n);
  return ones;
}

/* The offsets in the footer lead to the pages, and the levels say which
 * rows are NULL (checked without any other reader). */
static void test_pages_and_levels(void **state)
{
  (void)state;
  static const pqw_column col = {.name = "name", .kind = PQW_STRING};
  mem m = {0};
  pqw_writer *w;
  err e;
  pqw_options o = {.codec = PQW_UNCOMPRESSED};
  assert_int_equal(pqw_new(&col, 1, &o, mem_out, &m, &w, &e), 0);
  str_ref sv[COL_BATCH];
  uint8_t nulls[COL_BATCH];
  char text[COL_BATCH][8];
  int rows = 30000;
  int defined = 0;
  int defined_first_page = 0;
  for (int base = 0; base < rows; base += COL_BATCH) {
    int n = rows - base < COL_BATCH ? rows - base : COL_BATCH;
    for (int j = 0; j < n; j++) {
      int r = base + j;
      snprintf(text[j], sizeof text[j], "v%d", r % 50);
      sv[j] = (str_ref){text[j], strlen(text[j])};
      /* NULL runs (rows 100..299) and scattered NULLs */
      nulls[j] = (r >= 100 && r < 300) || r % 7 == 3;
      defined += !nulls[j];
      defined_first_page += !nulls[j] && r < 20000;
    }
    vec v = {.phys = PHYS_STR, .s = sv, .nulls = nulls};
    assert_int_equal(pqw_append(w, &v, NULL, n, &e), 0);
  }
  assert_int_equal(pqw_finish(w, &e), 0);
  pqw_free(w);
  footer f;
  read_footer(&m, &f);
  assert_int_equal(f.nrow_groups, 1);
  assert_int_equal(f.first.codec, PQW_UNCOMPRESSED);
  assert_int_equal(f.first.num_values, rows);
  assert_true(f.first.dict_off > 0 && f.first.dict_off < f.first.data_off);
  int type;
  int nv;
  size_t body;
  size_t clen;
  read_page(&m, (size_t)f.first.dict_off, &type, &nv, &body, &clen);
  assert_int_equal(type, PQ_PAGE_DICTIONARY);
  assert_int_equal(nv, 50);
  assert_int_equal(body + clen, (size_t)f.first.data_off);   /* the data page follows */
  read_page(&m, (size_t)f.first.data_off, &type, &nv, &body, &clen);
  assert_int_equal(type, PQ_PAGE_DATA);
  assert_int_equal(nv, 20000);   /* PAGE_ROWS */
  const unsigned char *b = m.p + body;
  size_t llen = (size_t)b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
  assert_int_equal(count_defined(b + 4, llen, nv), defined_first_page);
  /* then: the dictionary indices' bit width (50 entries: 6 bits) */
  assert_int_equal(b[4 + llen], 6);
  /* the second page holds the rest */
  read_page(&m, body + clen, &type, &nv, &body, &clen);
  assert_int_equal(type, PQ_PAGE_DATA);
  assert_int_equal(nv, rows - 20000);
  b = m.p + body;
  llen = (size_t)b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
  assert_int_equal(count_defined(b + 4, llen, nv), defined - defined_first_page);
  free(m.p);
}

static void test_bad_columns(void **state)
{
  (void)state;
  mem m = {0};
  pqw_writer *w;
  err e;
  assert_int_equal(pqw_new(COLS, 0, NULL, mem_out, &m, &w, &e), ERR_INVALID);
  pqw_column d = {.name = "d", .kind = PQW_DECIMAL, .precision = 30, .scale = 2};
  assert_int_equal(pqw_new(&d, 1, NULL, mem_out, &m, &w, &e), ERR_INVALID);
  assert_non_null(strstr(e.msg, "precision 30"));
  free(m.p);
}

static void test_codecs_round_trip(void **state)
{
  (void)state;
  size_t n = 100000;
  char *src = malloc(n);
  for (size_t i = 0; i < n; i++)
    src[i] = (char)("abcabcxyz"[i % 9] + (i % 1000 == 0));
  char *z;
  size_t zl;
  char *back;
  size_t bl;
  err e;
  assert_int_equal(codec_gzip_compress(src, n, 6, &z, &zl, &e), 0);
  assert_true(zl < n / 10);
  assert_int_equal(codec_decompress(CODEC_GZIP, z, zl, n * 2, &back, &bl, &e), 0);
  assert_int_equal(bl, n);
  assert_memory_equal(back, src, n);
  free(z);
  free(back);
  assert_int_equal(codec_zstd_compress(src, n, 3, &z, &zl, &e), 0);
  assert_int_equal(codec_decompress(CODEC_ZSTD, z, zl, n * 2, &back, &bl, &e), 0);
  assert_int_equal(bl, n);
  assert_memory_equal(back, src, n);
  free(z);
  free(back);
  assert_int_equal(codec_snappy_compress(src, n, &z, &zl, &e), 0);
  assert_true(zl < n / 4);
  free(z);
  assert_int_equal(codec_gzip_compress("", 0, 6, &z, &zl, &e), 0);
  assert_int_equal(codec_decompress(CODEC_GZIP, z, zl, 16, &back, &bl, &e), 0);
  assert_int_equal(bl, 0);
  free(z);
  free(back);
  free(src);
}

/* ---- nested columns: written row by row, read back by tarn's reader ---- */

/* Field fi of the file in m, row group 0, as the reader's column. */
static void read_field(const mem *m, int fi, pq_column *c)
{
  err e;
  uint32_t fl;
  assert_int_equal(pq_footer_len("n.parquet", m->len, m->p, m->len, &fl, &e), 0);
  pq_file *pf = NULL;
  assert_int_equal(pq_file_parse("n.parquet", m->len, m->p + m->len - 8 - fl, fl, &pf, &e), 0);
  const pq_field *f = &pf->fields[fi];
  const uint8_t *chunks[8];
  size_t lens[8];
  assert_true(f->nleaves <= 8);
  for (int k = 0; k < f->nleaves; k++) {
    uint64_t off, len;
    assert_int_equal(pq_chunk_range(pf, 0, f->first_leaf + k, &off, &len, &e), 0);
    chunks[k] = m->p + off;
    lens[k] = (size_t)len;
  }
  int rc = pq_column_read(pf, 0, fi, chunks, lens, 64u << 20, c, &e);
  if (rc != 0)
    fail_msg("reading field %d: %s", fi, e.msg);
  pq_file_free(pf);
}

static pqw_value S(const char *s)
{
  return (pqw_value){.s = {s, strlen(s)}};
}

static pqw_value I(int64_t i)
{
  return (pqw_value){.i = i};
}

static const pqw_value NUL = {.null = true};

static void test_nested(void **state)
{
  (void)state;
  static const pqw_column str = {.name = "s", .kind = PQW_STRING};
  static const pqw_column i64 = {.name = "i", .kind = PQW_INT64};
  static const pqw_column i32 = {.name = "i", .kind = PQW_INT32};
  static const pqw_column kv[] = {{.name = "k", .kind = PQW_STRING},
                                  {.name = "v", .kind = PQW_INT64}};
  static const pqw_column nums = {.name = "n", .kind = PQW_LIST, .children = &i32,
                                  .nchildren = 1};
  static const pqw_column pt[] = {{.name = "x", .kind = PQW_DOUBLE},
                                  {.name = "name", .kind = PQW_STRING},
                                  {.name = "nums", .kind = PQW_LIST, .children = &i32,
                                   .nchildren = 1}};
  static const pqw_column cols[] = {
      {.name = "id", .kind = PQW_INT64},
      {.name = "tags", .kind = PQW_LIST, .children = &str, .nchildren = 1},
      {.name = "attrs", .kind = PQW_MAP, .children = kv, .nchildren = 2},
      {.name = "pt", .kind = PQW_STRUCT, .children = pt, .nchildren = 3},
      {.name = "grid", .kind = PQW_LIST, .children = &nums, .nchildren = 1},
  };
  (void)i64;
  mem m = {0};
  pqw_writer *w;
  err e;
  assert_int_equal(pqw_new(cols, 5, NULL, mem_out, &m, &w, &e), 0);
  /* a vector append is refused for nested columns */
  assert_int_equal(pqw_append(w, NULL, NULL, 0, &e), ERR_INTERNAL);

  /* row 1: everything present */
  pqw_value tags1[] = {S("a"), S("b")};
  pqw_value attrs1[] = {S("k"), I(1), S("z"), NUL};
  pqw_value nums1[] = {I(1), I(2), I(3)};
  pqw_value pt1[] = {{.f = 1.5}, S("p"), {.items = nums1, .n = 3}};
  pqw_value g1a[] = {I(1)};
  pqw_value g1[] = {{.items = g1a, .n = 1}, {.n = 0}, NUL};
  pqw_value row1[] = {I(1), {.items = tags1, .n = 2}, {.items = attrs1, .n = 4},
                      {.items = pt1, .n = 3}, {.items = g1, .n = 3}};
  /* row 2: empty list, NULL map, struct of NULLs */
  pqw_value pt2[] = {NUL, NUL, {.n = 0}};
  pqw_value row2[] = {I(2), {.n = 0}, NUL, {.items = pt2, .n = 3}, {.n = 0}};
  /* row 3: NULLs and an empty map */
  pqw_value row3[] = {NUL, NUL, {.n = 0}, NUL, NUL};
  /* row 4: a NULL element */
  pqw_value tags4[] = {NUL, S("c")};
  pqw_value pt4[] = {{.f = 2}, S("q"), NUL};
  pqw_value row4[] = {I(4), {.items = tags4, .n = 2}, NUL, {.items = pt4, .n = 3}, NUL};
  assert_int_equal(pqw_append_row(w, row1, &e), 0);
  assert_int_equal(pqw_append_row(w, row2, &e), 0);
  assert_int_equal(pqw_append_row(w, row3, &e), 0);
  assert_int_equal(pqw_append_row(w, row4, &e), 0);
  /* bad rows change nothing: a NULL map key, a struct missing a field */
  pqw_value badmap[] = {NUL, I(1)};
  pqw_value bad1[] = {I(9), NUL, {.items = badmap, .n = 2}, NUL, NUL};
  assert_int_equal(pqw_append_row(w, bad1, &e), ERR_INVALID);
  assert_non_null(strstr(e.msg, "map key"));
  pqw_value bad2[] = {I(9), NUL, NUL, {.items = pt4, .n = 2}, NUL};
  assert_int_equal(pqw_append_row(w, bad2, &e), ERR_INVALID);
  assert_int_equal(pqw_rows(w), 4);
  assert_int_equal(pqw_finish(w, &e), 0);
  pqw_free(w);

  static const char *want[5][4] = {
      {"1", "2", NULL, "4"},
      {"[\"a\",\"b\"]", "[]", NULL, "[null,\"c\"]"},
      {"{\"k\":1,\"z\":null}", NULL, "{}", NULL},
      {"{\"x\":1.5,\"name\":\"p\",\"nums\":[1,2,3]}",
       "{\"x\":null,\"name\":null,\"nums\":[]}", NULL, "{\"x\":2.0,\"name\":\"q\",\"nums\":null}"},
      {"[[1],[],null]", "[]", NULL, NULL},
  };
  for (int fi = 0; fi < 5; fi++) {
    pq_column c;
    read_field(&m, fi, &c);
    assert_int_equal(c.n, 4);
    for (int r = 0; r < 4; r++) {
      bool null = c.nulls != NULL && c.nulls[r];
      if (want[fi][r] == NULL) {
        if (!null)
          fail_msg("field %d row %d: want NULL", fi, r);
        continue;
      }
      if (null)
        fail_msg("field %d row %d: NULL, want %s", fi, r, want[fi][r]);
      char got[256];
      if (fi == 0)
        snprintf(got, sizeof got, "%lld", (long long)c.i[r]);
      else
        snprintf(got, sizeof got, "%.*s", (int)c.s[r].len, c.s[r].ptr);
      if (strcmp(got, want[fi][r]) != 0)
        fail_msg("field %d row %d: %s, want %s", fi, r, got, want[fi][r]);
    }
    pq_column_release(&c);
  }
  if (getenv("PQW_TEST_DIR") != NULL) {
    char path[512];
    snprintf(path, sizeof path, "%s/nested.parquet", getenv("PQW_TEST_DIR"));
    FILE *f = fopen(path, "wb");
    fwrite(m.p, 1, m.len, f);
    fclose(f);
  }
  free(m.p);
}

/* A list longer than a page stays in one page: pages end between rows. */
static void test_nested_long_row(void **state)
{
  (void)state;
  static const pqw_column i64 = {.name = "i", .kind = PQW_INT64};
  static const pqw_column col = {.name = "xs", .kind = PQW_LIST, .children = &i64,
                                 .nchildren = 1};
  mem m = {0};
  pqw_writer *w;
  err e;
  assert_int_equal(pqw_new(&col, 1, NULL, mem_out, &m, &w, &e), 0);
  enum { LONG = 50000 };
  pqw_value *xs = calloc(LONG, sizeof *xs);
  for (int k = 0; k < LONG; k++)
    xs[k].i = k;
  pqw_value one[] = {I(7)};
  for (int r = 0; r < 30000; r++) {
    pqw_value row = {.items = r == 15000 ? xs : one, .n = r == 15000 ? LONG : 1};
    assert_int_equal(pqw_append_row(w, &row, &e), 0);
  }
  assert_int_equal(pqw_finish(w, &e), 0);
  pqw_free(w);
  pq_column c;
  read_field(&m, 0, &c);
  assert_int_equal(c.n, 30000);
  assert_int_equal(c.s[0].len, 3);
  assert_int_equal(memcmp(c.s[14999].ptr, "[7]", 3), 0);
  assert_int_equal(memcmp(c.s[15000].ptr, "[0,1,2,", 7), 0);
  assert_int_equal(memcmp(c.s[15001].ptr, "[7]", 3), 0);
  pq_column_release(&c);
  free(xs);
  free(m.p);
}

/* The options: DATA_PAGE_V2 pages (flat and nested, every codec), no
   dictionary, a smaller page size; tarn's reader reads each back. */
static void test_page_options(void **state)
{
  (void)state;
  static const pqw_column str = {.name = "s", .kind = PQW_STRING};
  static const pqw_column cols[] = {
      {.name = "id", .kind = PQW_INT64},
      {.name = "name", .kind = PQW_STRING},
      {.name = "tags", .kind = PQW_LIST, .children = &str, .nchildren = 1},
  };
  static const pqw_codec codecs[] = {PQW_UNCOMPRESSED, PQW_SNAPPY, PQW_GZIP, PQW_ZSTD};
  enum { ROWS = 30000 };
  for (int variant = 0; variant < 5; variant++) {
    pqw_options o = {.codec = codecs[variant % 4], .page_v2 = variant < 4,
                     .no_dictionary = variant == 4, .page_bytes = variant == 4 ? 65536 : 0};
    mem m = {0};
    pqw_writer *w;
    err e;
    assert_int_equal(pqw_new(cols, 3, &o, mem_out, &m, &w, &e), 0);
    char names[4][8] = {"ann", "bob", "cy", "dee"};
    for (int r = 0; r < ROWS; r++) {
      pqw_value tags[2] = {S(names[r % 4]), r % 5 == 0 ? NUL : S(names[(r + 1) % 4])};
      pqw_value row[3] = {I(r), r % 7 == 0 ? NUL : S(names[r % 3]),
                          r % 11 == 0 ? NUL : (pqw_value){.items = tags, .n = (size_t)(r % 3)}};
      assert_int_equal(pqw_append_row(w, row, &e), 0);
    }
    assert_int_equal(pqw_finish(w, &e), 0);
    pqw_free(w);
    pq_column c[3];
    for (int fi = 0; fi < 3; fi++)
      read_field(&m, fi, &c[fi]);
    for (int r = 0; r < ROWS; r++) {
      assert_int_equal(c[0].i[r], r);
      bool null = c[1].nulls != NULL && c[1].nulls[r];
      assert_int_equal(null, r % 7 == 0);
      if (!null)
        assert_true(c[1].s[r].len == strlen(names[r % 3]) &&
                    memcmp(c[1].s[r].ptr, names[r % 3], c[1].s[r].len) == 0);
      null = c[2].nulls != NULL && c[2].nulls[r];
      assert_int_equal(null, r % 11 == 0);
      if (null)
        continue;
      char want[64];
      if (r % 3 == 0)
        snprintf(want, sizeof want, "[]");
      else if (r % 3 == 1)
        snprintf(want, sizeof want, "[\"%s\"]", names[r % 4]);
      else if (r % 5 == 0)
        snprintf(want, sizeof want, "[\"%s\",null]", names[r % 4]);
      else
        snprintf(want, sizeof want, "[\"%s\",\"%s\"]", names[r % 4], names[(r + 1) % 4]);
      if (c[2].s[r].len != strlen(want) || memcmp(c[2].s[r].ptr, want, strlen(want)) != 0)
        fail_msg("variant %d row %d: %.*s, want %s", variant, r, (int)c[2].s[r].len,
                 c[2].s[r].ptr, want);
    }
    for (int fi = 0; fi < 3; fi++)
      pq_column_release(&c[fi]);
    /* the pages' kind, the dictionary, and how many pages id has */
    uint32_t fl;
    pq_file *pf = NULL;
    assert_int_equal(pq_footer_len("o", m.len, m.p, m.len, &fl, &e), 0);
    assert_int_equal(pq_file_parse("o", m.len, m.p + m.len - 8 - fl, fl, &pf, &e), 0);
    const pq_chunk *id = &pf->rgs[0].chunks[0];
    const pq_chunk *name = &pf->rgs[0].chunks[1];
    assert_int_equal(name->dict_off >= 0, variant != 4);
    /* the first page header's type: compact-protocol field 1 */
    const uint8_t *ph = m.p + id->data_off;
    assert_int_equal(ph[0], 0x15);
    assert_int_equal(ph[1] >> 1, variant < 4 ? PQ_PAGE_DATA_V2 : PQ_PAGE_DATA);
    uint64_t oi_off, oi_len, ci_off, ci_len;
    pq_page_index_ranges(pf, 0, 0, &oi_off, &oi_len, &ci_off, &ci_len);
    pq_pageidx px;
    assert_int_equal(pq_page_index_parse(pf, 0, 0, m.p + oi_off, oi_len, NULL, 0, &px, &e), 0);
    /* 30,000 8-byte values: 2 pages of 20,000 rows, or 4 of 64 KiB */
    assert_int_equal(px.n, variant == 4 ? 4 : 2);
    pq_page_index_free(&px);
    pq_file_free(pf);
    free(m.p);
  }
}

/* Dictionary indices of every width the reader meets (2 to 70,000 entries:
   1 to 17 bits), NULLs among them, read whole, then with only the rows
   of the second page wanted (pq_column_read_rows): the other pages' rows
   come back NULL, the wanted ones exact; then as codes
   (pq_column_read_codes): values not written out, each row's value its
   code's entry, a NULL row's code the dictionary's size. */
static void test_dictionary_widths_and_some_pages(void **state)
{
  (void)state;
  static const pqw_column col = {.name = "s", .kind = PQW_STRING};
  static const int sizes[] = {2, 3, 50, 300, 5000, 70000};
  int rows = 50000;   /* pages of 20,000 rows: three pages */
  char(*text)[16] = malloc((size_t)COL_BATCH * 16);
  for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
    int nd = sizes[z];
    mem m = {0};
    pqw_writer *w;
    err e;
    pqw_options o = {.codec = PQW_SNAPPY};
    assert_int_equal(pqw_new(&col, 1, &o, mem_out, &m, &w, &e), 0);
    str_ref sv[COL_BATCH];
    uint8_t nulls[COL_BATCH];
    for (int base = 0; base < rows; base += COL_BATCH) {
      int n = rows - base < COL_BATCH ? rows - base : COL_BATCH;
      for (int j = 0; j < n; j++) {
        int r = base + j;
        snprintf(text[j], 16, "v%d", (int)(((int64_t)r * 7919) % nd));
        sv[j] = (str_ref){text[j], strlen(text[j])};
        nulls[j] = r % 11 == 5;
      }
      vec v = {.phys = PHYS_STR, .s = sv, .nulls = nulls};
      assert_int_equal(pqw_append(w, &v, NULL, n, &e), 0);
    }
    assert_int_equal(pqw_finish(w, &e), 0);
    pqw_free(w);
    uint32_t fl;
    pq_file *pf = NULL;
    assert_int_equal(pq_footer_len("d", m.len, m.p, m.len, &fl, &e), 0);
    assert_int_equal(pq_file_parse("d", m.len, m.p + m.len - 8 - fl, fl, &pf, &e), 0);
    uint64_t off, len;
    assert_int_equal(pq_chunk_range(pf, 0, 0, &off, &len, &e), 0);
    const uint8_t *chunks[1] = {m.p + off};
    size_t lens[1] = {(size_t)len};
    int64_t want[2] = {25000, 25003};
    for (int pass = 0; pass < 3; pass++) {
      pq_column c;
      int rc = pass == 0   ? pq_column_read(pf, 0, 0, chunks, lens, 64u << 20, &c, &e)
               : pass == 1 ? pq_column_read_rows(pf, 0, 0, chunks, lens, 64u << 20, NULL, want,
                                                 1, &c, &e)
                           : pq_column_read_codes(pf, 0, 0, chunks, lens, 64u << 20, NULL, &c, &e);
      if (rc != 0)
        fail_msg("%d entries, pass %d: %s", nd, pass, e.msg);
      assert_int_equal(c.n, rows);
      if (pass == 2 && c.codes == NULL) {
        /* tarn's writer gives up on a dictionary this large: PLAIN pages */
        assert_true(nd > 60000);
        assert_non_null(c.p);
      } else if (pass == 2) {
        assert_null(c.p);
        assert_true(c.ndict >= 1 && c.ndict <= (uint32_t)nd);
        for (int r = 0; r < rows; r++) {
          assert_true(c.codes[r] <= c.ndict);
          assert_int_equal(c.codes[r] == c.ndict, c.nulls != NULL && c.nulls[r]);
        }
        /* the values by code, checked below as the others are */
        str_ref *sv2 = malloc(sizeof(str_ref) * (size_t)rows);
        for (int r = 0; r < rows; r++)
          sv2[r] = ((const str_ref *)c.dict)[c.codes[r]];
        assert_int_equal(((const str_ref *)c.dict)[c.ndict].len, 0);
        c.s = sv2;
      }
      for (int r = 0; r < rows; r++) {
        bool in_page2 = r >= 20000 && r < 40000;
        bool null = c.nulls != NULL && c.nulls[r];
        if (pass == 1 && !in_page2) {
          assert_true(null);
          continue;
        }
        /* a PLAIN page's rows past the last wanted one may be left
           undecoded: they read as NULL, as a page nobody reads */
        bool wanted = pass != 1 || (r >= want[0] && r < want[1]);
        if (!wanted && null)
          continue;
        assert_int_equal(null, r % 11 == 5);
        if (null)
          continue;
        char t[16];
        int tl = snprintf(t, sizeof t, "v%d", (int)(((int64_t)r * 7919) % nd));
        if (c.s[r].len != (size_t)tl || memcmp(c.s[r].ptr, t, (size_t)tl) != 0)
          fail_msg("%d entries, pass %d, row %d: '%.*s', not '%s'", nd, pass, r,
                   (int)c.s[r].len, c.s[r].ptr, t);
      }
      if (pass == 2 && c.codes != NULL) {
        free(c.s);
        c.s = NULL;
      }
      pq_column_release(&c);
    }
    pq_file_free(pf);
    free(m.p);
  }
  free(text);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_footer),
    cmocka_unit_test(test_empty_file),
    cmocka_unit_test(test_compression_pays),
    cmocka_unit_test(test_out_failure),
    cmocka_unit_test(test_row_group_byte_bound),
    cmocka_unit_test(test_pages_and_levels),
    cmocka_unit_test(test_bad_columns),
    cmocka_unit_test(test_codecs_round_trip),
    cmocka_unit_test(test_nested),
    cmocka_unit_test(test_nested_long_row),
    cmocka_unit_test(test_page_options),
    cmocka_unit_test(test_dictionary_widths_and_some_pages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
