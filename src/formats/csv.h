/* formats/csv.h -- CSV (RFC 4180 and its common dialects): sniffing the
 * dialect, header and column types from a sample, and tokenizing a byte
 * range of an object into field spans, only for the columns a query uses.
 *
 * The reader works on bytes in memory: the whole object (a read-only
 * mapping, or the decompressed bytes of a .gz/.zst object), or a piece of
 * it that starts at a record start (csv_cursor_resume: the SQL engine reads
 * ranges through a reused buffer, sql/scan_win.c); a piece may end inside
 * a record (csv_cursor.partial), which is then read from the next piece,
 * so the pieces can be cut at any byte. A byte range [start, stop)
 * owns the records whose first byte lies in it (DESIGN.md §7), so ranges
 * can be read in parallel: a cursor starts at the first line start at or
 * after `start` and reads records while they start before `stop`; the last
 * may end past `stop`. When a quoted field holds a newline right at a range
 * boundary, a line start is not a record start: the caller detects that by
 * comparing csv_cursor.first of a range with csv_cursor.pos (the end) of
 * the range before, and re-reads the object as one range.
 */
#ifndef TARN_FORMATS_CSV_H
#define TARN_FORMATS_CSV_H

#include "base/arena.h"
#include "base/err.h"
#include "column.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CSV_MAX_COLUMNS 4096

typedef struct csv_options {
  char delim;            /* 0: detect among , tab ; | */
  char quote;            /* 0: '"' */
  char escape;           /* 0: same as quote (a doubled quote) */
  int header;            /* -1: detect, 0: no, 1: yes */
  const char *nullstr;   /* also NULL when unquoted (besides the empty field) */
  size_t ncols;          /* > 0: the columns are given (no type inference) */
  const char **names;
  const fmt_type *types;
} csv_options;

typedef struct csv_schema {
  char delim;
  char quote;
  char escape;
  bool header;           /* every object starts with a header row */
  const char *nullstr;
  size_t ncols;
  char **names;          /* arena */
  fmt_type *types;       /* arena */
  bool declared;         /* types given by the user (read_csv columns=...) */
  bool lenient;          /* as Hive's text SerDes: a record with fewer fields has
                            NULL in the others, fields past the last are ignored */
} csv_schema;

/* Sniffs the dialect, header, names and types from the first bytes of the
 * first object (p[0..n); whole tells that this is the entire object).
 * Options that are set win over detection. */
int csv_sniff(const char *p, size_t n, bool whole, const csv_options *opt, arena *a,
              csv_schema *out, err *e);

/* Widens types[] (ncols of s) with the values of more sample records,
 * p[0..n) starting at a record boundary or, when mid is true, anywhere
 * (the bytes up to the first newline are skipped). */
void csv_sample_types(const csv_schema *s, const char *p, size_t n, bool mid, fmt_type *types);

typedef struct csv_cursor {
  const csv_schema *s;
  const char *base;      /* first byte of the object */
  const char *end;       /* one past its last byte */
  const char *pos;       /* next record start */
  const char *stop;      /* records starting here or later are not ours */
  const char *first;     /* the first record start of the range */
  bool partial;          /* end is not the object's end but a piece's (set after
                            csv_cursor_resume): a record that runs into it is
                            left unread, pos at its start, for the next piece */
  const char *object;    /* name for messages */
  bool skip_malformed;   /* drop malformed rows instead of failing */
  uint64_t skipped;      /* rows dropped */
} csv_cursor;

/* Positions c at the first record of range [start, stop) of an object of
 * size bytes (skipping a UTF-8 BOM and the header row at offset 0). */
int csv_cursor_init(csv_cursor *c, const csv_schema *s, const char *base, size_t size,
                    size_t start, size_t stop, const char *object, bool skip_malformed, err *e);

/* As csv_cursor_init, knowing whether byte start-1 lies inside a quoted
 * field (in_quote 1) or not (0), from the parity of the quotes before it:
 * with RFC 4180 quoting every quote toggles, so ranges split exactly.
 * in_quote -1 (unknown): the first line start is taken (csv_cursor_init). */
int csv_cursor_init_at(csv_cursor *c, const csv_schema *s, const char *base, size_t size,
                       size_t start, size_t stop, const char *object, bool skip_malformed,
                       int in_quote, err *e);
/* Positions c at base[0], a record start (no BOM or header is skipped):
 * a range read on in another piece of memory, [0, size) holding whole
 * records only. */
void csv_cursor_resume(csv_cursor *c, const csv_schema *s, const char *base, size_t size,
                       size_t stop, const char *object, bool skip_malformed);
/* How many bytes of p[0..n) are q. */
size_t csv_count_quotes(const char *p, size_t n, char q);

/* Reads up to max records: for the ncols columns cols[] (ascending column
 * numbers) fills spans[k][row]; rec[row] gets the record's first byte.
 * Returns the number of rows (0 at the end of the range, or, on a partial
 * piece, when the record at pos runs past its end) or a negative code
 * (malformed row, e names object, line and column). */
int csv_tokenize(csv_cursor *c, const int *cols, int ncols, fspan **spans, const char **rec,
                 int max, err *e);

/* As a nullstr of the converters below: no field is NULL for being empty
 * (an empty field is the empty string, a missing one stays NULL), as S3
 * Select reads CSV. Compared by address. */
extern const char fmt_no_null[];

/* Converts the spans of rows sel[0..nsel) (all of 0..nsel when sel is
 * NULL) into out (phys matching t; out->nulls must point at COL_BATCH
 * bytes of storage and is set to NULL when no value is NULL). Unquoting
 * and unescaping (CSV quote/escape, JSON \x) copy into h. Rows that do not
 * convert get NULL and bad[row] = 1 (when bad is not NULL). Returns how
 * many rows did not convert. */
int fmt_convert(const fspan *spans, const uint16_t *sel, int nsel, fmt_type t, char quote,
                char escape, const char *nullstr, vec *out, uint8_t *nullbuf, strheap *h,
                uint8_t *bad);

/* The same for a column whose type was sniffed (sniffed = true): a value
 * that the type would change ("000042" or "+5" as BIGINT) does not
 * convert, so a sample's guess never rewrites data it did not see.
 * Declared types (sniffed = false) convert as asked. */
int fmt_convert_sniffed(const fspan *spans, const uint16_t *sel, int nsel, fmt_type t,
                        char quote, char escape, const char *nullstr, bool sniffed, vec *out,
                        uint8_t *nullbuf, strheap *h, uint8_t *bad);

/* Unescapes a JSON string body (no quotes) into dst (at most n bytes
 * written: JSON escapes never grow). Returns the length. */
size_t fmt_json_unescape(const char *p, size_t n, char *dst);

#endif
