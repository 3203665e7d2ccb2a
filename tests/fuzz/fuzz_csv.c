/* fuzz_csv.c -- libFuzzer target for the CSV reader: sniffing any bytes,
 * then tokenizing and converting every column, whole and split in two
 * byte ranges; the reader must stay inside the buffer and either read or
 * report a malformed row. */
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
  }
  arena_free(a);
  free(p);
  return 0;
}
