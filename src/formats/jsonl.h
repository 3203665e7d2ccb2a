/* formats/jsonl.h -- JSON lines: one JSON object per line. Sniffing the
 * columns (the union of the keys of a sample, in order of first
 * appearance, with their types) and tokenizing a byte range of an object
 * into field spans for the keys a query uses.
 *
 * A JSON string cannot hold a raw newline, so every '\n' ends a record and
 * byte ranges split exactly at line starts. Nested objects and arrays are
 * kept as their JSON text (VARCHAR).
 */
#ifndef TARN_FORMATS_JSONL_H
#define TARN_FORMATS_JSONL_H

#include "base/arena.h"
#include "base/err.h"
#include "column.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONL_MAX_COLUMNS 4096

typedef struct jsonl_schema {
  size_t ncols;
  char **names;        /* arena */
  fmt_type *types;     /* arena */
} jsonl_schema;

/* Columns from up to ~20,000 lines of p[0..n). */
int jsonl_sniff(const char *p, size_t n, bool whole, arena *a, jsonl_schema *out, err *e);
/* Widens the types with more sample lines (mid: skip to the first newline). */
void jsonl_sample_types(const jsonl_schema *s, const char *p, size_t n, bool mid,
                        fmt_type *types);

typedef struct jsonl_cursor {
  const jsonl_schema *s;
  const char *base;
  const char *end;
  const char *pos;
  const char *stop;
  const char *first;
  const char *object;
  bool skip_malformed;
  bool careful;            /* tests: every line through the validating parser */
  uint64_t skipped;
  struct key_slot *cache;  /* key positions seen (jsonl.c); release it */
} jsonl_cursor;

void jsonl_cursor_init(jsonl_cursor *c, const jsonl_schema *s, const char *base, size_t size,
                       size_t start, size_t stop, const char *object, bool skip_malformed);
/* Moves an initialized c to base[0], a line start, over [0, size) holding
 * whole lines only (another piece of memory); keeps its schema, options,
 * count of skipped lines and key cache. */
void jsonl_cursor_resume(jsonl_cursor *c, const char *base, size_t size, size_t stop);

/* Frees what tokenizing cached; the cursor can be initialized again. */
void jsonl_cursor_release(jsonl_cursor *c);

/* As csv_tokenize: spans[k][row] for the keys of columns cols[k] (a key
 * that is absent or null gives p == NULL). */
int jsonl_tokenize(jsonl_cursor *c, const int *cols, int ncols, fspan **spans, const char **rec,
                   int max, err *e);

#endif
