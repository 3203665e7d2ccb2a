/* formats/parquet_write.h -- a streaming Parquet file writer.
 *
 * The caller describes the columns (all OPTIONAL; flat, or nested STRUCT,
 * LIST and MAP trees), appends rows as column vectors (column.h; flat
 * columns only) or one row at a time as value trees (pqw_append_row; any
 * columns), and the writer buffers one row group in memory,
 * encodes it (dictionary or PLAIN pages, RLE/bit-packed definition levels,
 * statistics, the chosen codec) and hands the bytes to the caller's out()
 * function, then forgets them. pqw_finish() writes the footer. Bytes come
 * out in file order, so out() can append them to an object being written.
 *
 * Types (the engine's values, column.h physical forms):
 *   PQW_BOOLEAN    I64 0/1        -> BOOLEAN
 *   PQW_INT8       I64            -> INT32 (INTEGER(8, signed))
 *   PQW_INT16      I64            -> INT32 (INTEGER(16, signed))
 *   PQW_INT32      I64            -> INT32 (INTEGER(32, signed))
 *   PQW_INT64      I64            -> INT64
 *   PQW_DOUBLE     F64            -> DOUBLE
 *   PQW_FLOAT      F64            -> FLOAT (the value rounded to single precision)
 *   PQW_DECIMAL    I64 scaled     -> INT64 DECIMAL(precision, scale), precision <= 18
 *   PQW_DECIMAL_BYTES  STR        -> BYTE_ARRAY DECIMAL(precision, scale), precision <= 38:
 *                  the unscaled value as big-endian two's complement bytes
 *                  (no min/max statistics: their byte order is not the order)
 *   PQW_STRING     STR            -> BYTE_ARRAY STRING (UTF8)
 *   PQW_DATE       I64 days       -> INT32 DATE
 *   PQW_TIMESTAMP  I64 micros     -> INT64 TIMESTAMP(MICROS, not adjusted to UTC)
 *
 * Nested kinds (pqw_append_row only), written in the standard three-level
 * forms that Spark, pyarrow, DuckDB and Athena read:
 *   PQW_STRUCT  children: the fields      -> optional group name { fields }
 *   PQW_LIST    children[0]: the element  -> optional group name (LIST) {
 *                                              repeated group list {
 *                                                optional <element> element } }
 *   PQW_MAP     children[0]: the key,     -> optional group name (MAP) {
 *               children[1]: the value         repeated group key_value {
 *                                                required <key> key;
 *                                                optional <value> value } }
 * Children may be nested in turn (up to PQW_MAX_DEPTH levels).
 */
#ifndef TARN_FORMATS_PARQUET_WRITE_H
#define TARN_FORMATS_PARQUET_WRITE_H

#include "base/err.h"
#include "formats/column.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum pqw_kind {
  PQW_BOOLEAN,
  PQW_INT16,
  PQW_INT32,
  PQW_INT64,
  PQW_DOUBLE,
  PQW_DECIMAL,
  PQW_STRING,
  PQW_DATE,
  PQW_TIMESTAMP,
  PQW_INT8,
  PQW_FLOAT,
  PQW_DECIMAL_BYTES,
  PQW_STRUCT,
  PQW_LIST,
  PQW_MAP,
} pqw_kind;

typedef struct pqw_column {
  const char *name;      /* copied (a LIST element's and a MAP key's and value's are fixed) */
  pqw_kind kind;
  int precision;         /* PQW_DECIMAL, PQW_DECIMAL_BYTES */
  int scale;             /* PQW_DECIMAL, PQW_DECIMAL_BYTES */
  const struct pqw_column *children;   /* nested kinds (copied) */
  int nchildren;         /* STRUCT: 1..PQW_MAX_COLUMNS, LIST: 1, MAP: 2 */
} pqw_column;

/* One value of a row for pqw_append_row. A scalar is in the column.h form
 * of its kind: i (the I64 kinds), f (DOUBLE, FLOAT), s (STRING,
 * DECIMAL_BYTES). A nested value lists its parts in items: a STRUCT's
 * fields in the schema's order (n == nchildren; a NULL field is a value
 * with null set), a LIST's elements (n of them, 0 for an empty list), a
 * MAP's entries as key, value, key, value... (n = 2 * entries; a key is
 * never NULL). */
typedef struct pqw_value {
  bool null;
  int64_t i;
  double f;
  str_ref s;
  const struct pqw_value *items;
  size_t n;
} pqw_value;

/* Parquet's CompressionCodec numbers of the codecs the writer has. */
typedef enum pqw_codec {
  PQW_UNCOMPRESSED = 0,
  PQW_SNAPPY = 1,
  PQW_GZIP = 2,
  PQW_ZSTD = 6,
} pqw_codec;

#define PQW_ROW_GROUP_ROWS 1000000      /* rows per row group, at most */
#define PQW_ROW_GROUP_BYTES (64u << 20) /* buffered bytes per row group, at most */
#define PQW_MAX_COLUMNS 4096           /* leaf columns */
#define PQW_MAX_DEPTH 32               /* nesting of STRUCT, LIST and MAP */

/* Receives the file's bytes, in order. Returns 0 or a negative ERR_*. */
typedef int (*pqw_out_fn)(void *ctx, const void *p, size_t n, err *e);

typedef struct pqw_writer pqw_writer;

typedef struct pqw_options {
  pqw_codec codec;
  uint64_t row_group_rows;   /* 0: PQW_ROW_GROUP_ROWS */
  uint64_t row_group_bytes;  /* 0: PQW_ROW_GROUP_BYTES */
  uint64_t page_bytes;       /* a data page's values, about (0: 1 MiB) */
  bool no_dictionary;        /* PLAIN values only */
  bool page_v2;              /* DATA_PAGE_V2 pages (levels uncompressed, before the values) */
} pqw_options;

/* A writer of ncols top-level columns to out. Errors: ERR_INVALID (no
 * columns, more than PQW_MAX_COLUMNS leaves, a decimal precision out of
 * range, a nested kind with the wrong children, nesting past
 * PQW_MAX_DEPTH). */
int pqw_new(const pqw_column *cols, int ncols, const pqw_options *opt, pqw_out_fn out,
            void *out_ctx, pqw_writer **w, err *e);
/* Frees the writer (finished or not); accepts NULL, returns NULL. */
pqw_writer *pqw_free(pqw_writer *w);

/* Appends n rows: row j is cols[c] at index rows[j] (rows NULL: j), for
 * every column c (a constant vector stands for its value at every row).
 * Flat columns only (ERR_INTERNAL otherwise). May flush a row group
 * through out(). */
int pqw_append(pqw_writer *w, const vec *cols, const uint16_t *rows, int n, err *e);
/* Appends one row: row[c] is top-level column c's value. A STRUCT value
 * with the wrong number of fields or a NULL map key is ERR_INVALID and
 * appends nothing. May flush a row group through out(). */
int pqw_append_row(pqw_writer *w, const pqw_value *row, err *e);
/* Writes the buffered rows as a row group now (nothing when none). */
int pqw_flush(pqw_writer *w, err *e);
/* Flushes, then writes the footer. The writer accepts nothing after. */
int pqw_finish(pqw_writer *w, err *e);

/* Bytes the writer holds in memory now (the buffered row group). */
uint64_t pqw_buffered(const pqw_writer *w);
/* Bytes handed to out() so far; rows appended so far. */
uint64_t pqw_written(const pqw_writer *w);
uint64_t pqw_rows(const pqw_writer *w);

#endif
