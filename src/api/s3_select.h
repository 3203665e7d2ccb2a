/* api/s3_select.h -- what S3 Select's request handling (s3_select.c) and
 * its input and statement preparation (s3_select_input.c) share. Private
 * to src/api/s3_select*.c and the fuzz target tests/fuzz/fuzz_s3_select.c.
 */
#ifndef TARN_API_S3_SELECT_H
#define TARN_API_S3_SELECT_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "formats/codec.h"
#include "sql/sql.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SELECT_EXPR_MAX (256u << 10)        /* S3's limit on the SQL expression */
#define SELECT_RECORD_MAX (1u << 20)        /* S3's limit on one record, in or out */

enum header_mode { HDR_NONE, HDR_USE, HDR_IGNORE };

/* The request, parsed (strings in the job's arena). */
typedef struct sel_req {
  const char *expr;
  bool progress;             /* RequestProgress Enabled */
  sql_object_format in;
  codec_kind codec;
  /* CSV input */
  enum header_mode header;
  char delim, quote, escape;
  char comments;             /* 0: none */
  const char *rdelim;        /* 1 or 2 bytes */
  bool json_document;        /* JSON Type DOCUMENT (else LINES) */
  /* output */
  bool out_json;
  const char *out_delim;     /* CSV field delimiter */
  const char *out_rdelim;    /* record delimiter (CSV and JSON) */
  char out_quote, out_escape;
  bool quote_always;
  /* ScanRange */
  bool has_start, has_end;
  uint64_t start, end;
} sel_req;

/* An S3 Select error: S3's code (they are many and S3 Select's own), HTTP 400. */
typedef struct sel_err {
  const char *code;
  char msg[512];
} sel_err;

/* Fills se (S3's code and a message) and returns ERR_INVALID. */
int s3_select_fail(sel_err *se, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks r->expr for S3 Select's subset (no JOIN, GROUP BY, ORDER BY,
 * HAVING, set operations, windows, WITH, DISTINCT; a FROM) and rewrites
 * S3's spellings into the engine's: S3Object[*], JSON paths s.a.b and
 * s.a[0], DATE_ADD(day, ...), DATE_DIFF, UTCNOW, CHARACTER_LENGTH. The
 * statement to run goes to *out (in a). Errors: UnsupportedSqlOperation,
 * UnsupportedSyntax, ParseUnexpectedToken, ParseSelectMissingFrom. */
int s3_select_check_sql(arena *a, const sel_req *r, const char **out, sel_err *se);

/* Bytes written to an fd (a memfd) through a buffer; rc sticks at the
 * first failure (ERR_NO_SPACE). */
typedef struct sel_writer {
  int fd;
  buf b;
  uint64_t total;            /* bytes put so far */
  int rc;
} sel_writer;

void sel_writer_put(sel_writer *w, const void *p, size_t n);
void sel_writer_flush(sel_writer *w);

/* CSV / JSON lines data[0..len): writes the records that start in [lo, hi]
 * (byte offsets, inclusive), each ended by '\n' instead of r->rdelim, with
 * the header row first when r wants one, comment rows dropped. Errors:
 * OverMaxRecordSize (a record over SELECT_RECORD_MAX). */
int s3_select_cut_records(const sel_req *r, const char *data, size_t len, uint64_t lo,
                          uint64_t hi, sel_writer *w, sel_err *se);
/* JSON DOCUMENT p[0..n): each top-level value, or each element of a
 * top-level array, as one compact line. Errors: JSONParsingError,
 * OverMaxRecordSize. */
int s3_select_json_lines(const char *p, size_t n, sel_writer *w, sel_err *se);
/* Whether CSV / JSON lines bytes can be read as they are: records end in
 * '\n' (or CRLF), none is a comment row or longer than the limit. */
bool s3_select_in_place(const sel_req *r, const char *p, size_t n);

#endif
