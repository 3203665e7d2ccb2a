/* formats/column.h -- the columnar vocabulary shared by the readers
 * (CSV, JSON lines, later Parquet) and the SQL executor: field types,
 * vectors of up to COL_BATCH values, field spans, a string heap, and the
 * text <-> value conversions every reader and CAST needs.
 *
 * Physical representation (one of three, so every operator has three
 * cases and no more):
 *   PHYS_I64  BOOLEAN (0/1), SMALLINT, INTEGER, BIGINT, DECIMAL (scaled),
 *             DATE (days since 1970-01-01), TIMESTAMP (microseconds since
 *             1970-01-01 00:00:00, no zone), INTERVAL (microseconds or months)
 *   PHYS_F64  DOUBLE
 *   PHYS_STR  VARCHAR: str_ref into the reader's bytes (a mapping, a
 *             buffer of the scan, decoded Parquet pages) or into the batch's
 *             string heap: valid for the batch only; an operator that keeps
 *             a string longer copies it
 *
 * Invariants:
 *   (1) A vector's nulls is NULL when no value is NULL; otherwise nulls[i]
 *       is 1 for NULL (and the value slot holds 0 / empty).
 *   (2) A constant vector (is_const) holds its one value at index 0 and
 *       stands for that value at every row.
 */
#ifndef TARN_FORMATS_COLUMN_H
#define TARN_FORMATS_COLUMN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COL_BATCH 2048   /* rows per batch */

/* Field types the readers produce (a subset of the SQL types). */
typedef enum fmt_type {
  FT_NULL = 0,   /* nothing seen yet (sampling) */
  FT_BOOLEAN,
  FT_BIGINT,
  FT_DOUBLE,
  FT_DATE,
  FT_TIMESTAMP,
  FT_VARCHAR,
} fmt_type;

const char *fmt_type_name(fmt_type t);

enum { PHYS_I64 = 0, PHYS_F64 = 1, PHYS_STR = 2 };

typedef struct str_ref {
  const char *ptr;
  size_t len;
} str_ref;

typedef struct vec {
  uint8_t phys;       /* PHYS_* */
  uint8_t is_const;   /* invariant (2) */
  uint8_t *nulls;     /* invariant (1) */
  union {
    int64_t *i;
    double *f;
    str_ref *s;
    void *p;
  };
} vec;

/* A chunked bump allocator for strings made while filling a batch; reset
 * between batches. Chunks are kept for reuse. */
typedef struct strheap_chunk strheap_chunk;
typedef struct strheap {
  strheap_chunk *head;   /* chunk being filled */
  strheap_chunk *free;   /* spare chunks */
  size_t used;           /* bytes handed out since the last reset */
} strheap;

char *strheap_alloc(strheap *h, size_t n);
void strheap_reset(strheap *h);
void strheap_release(strheap *h);

/* One field as found in the input: its bytes, and how to read them. */
enum {
  SPAN_QUOTED = 1,     /* CSV: was quoted (doubled quotes still inside when SPAN_ESCAPED) */
  SPAN_ESCAPED = 2,    /* needs unescaping (CSV "" or JSON \x) */
  SPAN_JSON_STR = 4,   /* JSON: a string value (p/n without the quotes) */
  SPAN_JSON_RAW = 8,   /* JSON: an object or array, kept as its text */
  SPAN_JSON_LIT = 16,  /* JSON: a number, true, false (null is p == NULL) */
};

typedef struct fspan {
  const char *p;       /* NULL: missing / NULL */
  uint32_t n;
  uint32_t flags;      /* SPAN_* */
} fspan;

/* ---- text <-> values (all strict: the whole text must be the value) ---- */

bool fmt_parse_i64(const char *p, size_t n, int64_t *out);
bool fmt_parse_f64(const char *p, size_t n, double *out);
bool fmt_parse_bool(const char *p, size_t n, int64_t *out);
/* YYYY-MM-DD */
bool fmt_parse_date(const char *p, size_t n, int64_t *days);
/* YYYY-MM-DD[( |T)HH:MM[:SS[.f{1,9}]]][Z|(+|-)HH[:MM]]; a zone converts to UTC */
bool fmt_parse_timestamp(const char *p, size_t n, int64_t *micros);

int64_t fmt_days_from_civil(int64_t y, unsigned m, unsigned d);
void fmt_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* Writers return the length written (no NUL counted; out gets a NUL). */
int fmt_date(int64_t days, char out[32]);
int fmt_timestamp(int64_t micros, char out[48]);
int fmt_double(double d, char out[40]);   /* shortest round-trip, Presto style */

/* Guesses the type of one text value: the narrowest of BOOLEAN, BIGINT,
 * DOUBLE, DATE, TIMESTAMP, else VARCHAR. A value whose meaning or text the
 * type would change stays VARCHAR: leading zeros ("000042", "-007"), a
 * '+' sign, exponents that do not print back as written ("1e3"), integers
 * past BIGINT, hexadecimal, spaces, thousands separators, dates without
 * two-digit month and day ("2024-1-5"). Plain decimals are DOUBLE even
 * when a trailing zero will not print ("1.50" is 1.5), as DuckDB does. */
fmt_type fmt_guess_type(const char *p, size_t n);
/* The type that holds values of both (BIGINT+DOUBLE = DOUBLE, DATE +
 * TIMESTAMP = TIMESTAMP, anything else mixed = VARCHAR). */
fmt_type fmt_type_merge(fmt_type a, fmt_type b);

/* Counts '\n' in p[0..n): line numbers for error messages. */
size_t fmt_count_lines(const char *p, size_t n);

#endif
