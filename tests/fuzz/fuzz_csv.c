/* fuzz_csv.c -- libFuzzer target for the CSV reader: sniffing any bytes,
 * then tokenizing and converting every column, whole and split in two
 * byte ranges; the reader must stay inside the buffer and either read or
 * report a malformed row. The object read in pieces cut at any byte (as
 * sql/scan_win.c reads a range: csv_cursor.partial) must give the same
 * records and fields as read whole. */
#include "formats/csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_range(const csv_schema *s, const char *p, size_t n, size_t start, size_t stop)
{
  csv_cursor c;
  err e;
  if (csv_cursor_init(&c, s, p, n, start, stop, "fuzz", (n & 1) != 0, &e) < 0)
    return;
  int ncols = s->ncols < 8 ? (int)s->ncols : 8;
  int cols[8];
  fspan *spans[8];
  for (int i = 0; i < ncols; i++) {
    cols[i] = i;
    spans[i] = calloc(64, sizeof(fspan));
  }
  const char *rec[64];
  strheap h = {0};
  for (;;) {
    int r = csv_tokenize(&c, cols, ncols, spans, rec, 64, &e);
    if (r <= 0)
      break;
    for (int i = 0; i < ncols; i++) {
      int64_t iv[64];
      uint8_t nulls[COL_BATCH];
      vec v = {.phys = s->types[i] == FT_DOUBLE ? PHYS_F64
                       : s->types[i] == FT_VARCHAR ? PHYS_STR : PHYS_I64};
      str_ref sv[64];
      v.p = v.phys == PHYS_STR ? (void *)sv : (void *)iv;
      fmt_convert(spans[i], NULL, r, s->types[i], s->quote, s->escape, NULL, &v, nulls, &h,
                  NULL);
    }
    strheap_reset(&h);
  }
  strheap_release(&h);
  for (int i = 0; i < ncols; i++)
    free(spans[i]);
}

/* The records of p[0..n) as numbers: per record its offset, then per
 * column (up to 8) the offset of its field (or -1), length and flags; -2
 * at a malformed row. piece 0: all at once; else pieces of that size, each
 * a copy of its own, doubled when one holds no whole record. One record
 * per call, so that a malformed row fails only itself. */
static size_t records(const csv_schema *s, const char *p, size_t n, size_t piece, bool skip,
                      int64_t *out, size_t cap)
{
  csv_cursor c;
  err e;
  if (csv_cursor_init(&c, s, p, n, 0, n, "fuzz", skip, &e) < 0)
    return 0;
  int ncols = s->ncols < 8 ? (int)s->ncols : 8;
  int cols[8];
  fspan sp[8];
  fspan *spans[8];
  for (int i = 0; i < ncols; i++) {
    cols[i] = i;
    spans[i] = &sp[i];
  }
  const char *rec[1];
  size_t at = (size_t)(c.pos - p), size = piece, k = 0;
  for (;;) {
    size_t len = piece == 0 || size > n - at ? n - at : size;
    char *copy = malloc(len ? len : 1);
    memcpy(copy, p + at, len);
    csv_cursor_resume(&c, s, copy, len, n - at, "fuzz", skip);
    c.partial = at + len < n;
    int r;
    while ((r = csv_tokenize(&c, cols, ncols, spans, rec, 1, &e)) > 0 && k + 25 < cap) {
      out[k++] = (int64_t)(at + (size_t)(rec[0] - copy));
      for (int i = 0; i < ncols; i++) {
        out[k++] = sp[i].p == NULL ? -1 : (int64_t)(at + (size_t)(sp[i].p - copy));
        out[k++] = sp[i].n;
        out[k++] = sp[i].flags;
      }
    }
    size_t next = at + (size_t)(c.pos - copy);
    bool more = c.partial && next < n && r == 0 && k + 25 < cap;
    free(copy);
    if (r < 0)
      out[k++] = -2;
    if (!more)
      return k;
    size = next == at ? size * 2 : piece;
    at = next;
  }
}

static void compare_pieces(const csv_schema *s, const char *p, size_t n, size_t piece, bool skip)
{
  enum { CAP = 1 << 16 };
  static int64_t whole[CAP], cut[CAP];
  size_t a = records(s, p, n, 0, skip, whole, CAP);
  size_t b = records(s, p, n, piece, skip, cut, CAP);
  if (a < CAP - 25 && (a != b || memcmp(whole, cut, a * sizeof(int64_t)) != 0))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* a private copy with no slack after it, so ASan sees over-reads */
  char *p = malloc(size ? size : 1);
  memcpy(p, data, size);
  arena *a = arena_new();
  csv_options o;
  memset(&o, 0, sizeof o);
  o.header = -1;
  csv_schema s;
  err e;
  if (csv_sniff(p, size, true, &o, a, &s, &e) == 0) {
    read_range(&s, p, size, 0, size);
    if (size > 2) {
      read_range(&s, p, size, 0, size / 2);
      read_range(&s, p, size, size / 2, size);
    }
    compare_pieces(&s, p, size, 1 + (size_t)(size > 0 ? data[0] % 97 : 0), (size & 2) != 0);
  }
  arena_free(a);
  free(p);
  return 0;
}
