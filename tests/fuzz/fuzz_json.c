/* fuzz_json.c -- libFuzzer target for the JSON lines scanner: sniffing
 * and tokenizing any bytes, whole and in two byte ranges. */
#include "formats/jsonl.h"
#include "formats/csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_range(const jsonl_schema *s, const char *p, size_t n, size_t start, size_t stop)
{
  jsonl_cursor c;
  err e;
  jsonl_cursor_init(&c, s, p, n, start, stop, "fuzz", (n & 1) != 0);
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
    int r = jsonl_tokenize(&c, cols, ncols, spans, rec, 64, &e);
    if (r <= 0)
      break;
    for (int i = 0; i < ncols; i++) {
      int64_t iv[64];
      str_ref sv[64];
      uint8_t nulls[COL_BATCH];
      vec v = {.phys = s->types[i] == FT_DOUBLE ? PHYS_F64
                       : s->types[i] == FT_VARCHAR ? PHYS_STR : PHYS_I64};
      v.p = v.phys == PHYS_STR ? (void *)sv : (void *)iv;
      fmt_convert(spans[i], NULL, r, s->types[i], '"', '"', NULL, &v, nulls, &h, NULL);
    }
    strheap_reset(&h);
  }
  strheap_release(&h);
  jsonl_cursor_release(&c);
  for (int i = 0; i < ncols; i++)
    free(spans[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *p = malloc(size ? size : 1);
  memcpy(p, data, size);
  arena *a = arena_new();
  jsonl_schema s;
  err e;
  if (jsonl_sniff(p, size, true, a, &s, &e) == 0) {
    read_range(&s, p, size, 0, size);
    if (size > 2)
      read_range(&s, p, size, size / 3, size);
  }
  arena_free(a);
  free(p);
  return 0;
}
