/* api/s3_select.c -- SelectObjectContent (POST /bucket/key?select&select-type=2):
 * S3 Select, one SQL query over one object, answered as an AWS event stream.
 *
 * Why here: S3 Select is an S3 operation (REST-XML request, s3:GetObject,
 * S3's error documents) whose work is the SQL engine's. The engine gets the
 * object through sql_options.object (sql.h): `FROM S3Object s` resolves to
 * exactly that object with the request's reader options, and no other table
 * can be read. That hook was chosen over rewriting the statement into
 * read_csv('s3://...') because (a) a rewrite of SQL text must parse SQL to
 * be safe (aliases, quoted names, strings that contain "S3Object"), (b) the
 * table functions could read any object of the store, past what the caller
 * was authorized for, and (c) S3's CSV options (positional _1.._n names,
 * every value as text, a given header mode) are reader options, not SQL.
 *
 * What the request becomes (prepare_input):
 *   - the object's bytes are decompressed (GZIP, BZIP2) and, for CSV and JSON,
 *     cut to the records that start inside ScanRange [Start, End] (inclusive;
 *     End alone = the last End bytes), with records ending at
 *     RecordDelimiter, comment rows (Comments, default '#') dropped, JSON
 *     DOCUMENT input turned into one record per line (a top-level array
 *     gives one record per element, as `S3Object[*]`); when none of that
 *     applies the stored bytes are read in place;
 *   - the statement is checked for S3 Select's subset (s3_select_check_sql in
 *     s3_select_input.c, with the cuts above): no JOIN,
 *     GROUP BY, ORDER BY, HAVING, set operations, windows or WITH;
 *     `S3Object[*]` is read as S3Object; `s.a.b` and `s.a[0]` on JSON input
 *     become json_extract_scalar(s.a, '$.b'); S3's DATE_ADD(day, ...),
 *     DATE_DIFF(hour, ...), UTCNOW() and CHARACTER_LENGTH() are spelled
 *     as the engine's functions.
 *
 * The answer: 200, then event stream messages (aws/eventstream.h):
 * Records (<= RECORDS_CHUNK of output each), Cont while a long scan has
 * nothing to send, Progress (when RequestProgress is enabled), then Stats
 * (BytesScanned, BytesProcessed, BytesReturned) and End. An error found
 * before the stream starts is S3's XML error document with its status, and
 * nothing is sent; one found after is an error message (:message-type
 * error, :error-code, :error-message) that ends the stream, as S3 does.
 *
 * States of a job:
 *   PARKED    the request is parked; its thread prepares the input and runs
 *             the query;
 *   STREAMING the first message to send (a full Records chunk, a progress
 *             tick after ~0.5 s, or the end) started the response: from
 *             here the job touches only the stream;
 *   DONE      Stats and End (or an error message) were sent, or the XML
 *             error answered the parked request.
 *
 * Invariants:
 *   (1) The job touches the request only under job->lock while job->req is
 *       set; s3_select_cleanup() clears it (the client left) and cancels.
 *   (2) The job is freed by the last of its thread and the request's cleanup.
 *   (3) s3_select_pool_free() cancels every running job and waits for them, so
 *       the store is never closed under a query.
 *   (4) Limits: the expression 256 KiB, a record (input or output) 1 MiB,
 *       the decompressed input SELECT_INPUT_MAX, 2 x cores jobs at once
 *       (then 503 SlowDown), 10 minutes and RAM / (2 x 2 x cores) of memory
 *       (at least 256 MiB) per query.
 *
 * Not done: AllowQuotedRecordDelimiter is always TRUE (a quoted field may
 * hold the record delimiter, as RFC 4180); nested JSON values come out as
 * JSON text in a string, and `SELECT *` on JSON gives every key of the
 * object's records (missing ones as null); ScanRange on Parquet (row
 * groups) is refused.
 *
 * Start reading at s3_select_object().
 */
#include "api/s3_internal.h"
#include "api/s3_select.h"

#include "aws/eventstream.h"
#include "base/mem.h"
#include "base/xml.h"
#include "formats/codec.h"
#include "sql/sql.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#define SELECT_INPUT_MAX ((size_t)4 << 30)  /* decompressed input */
#define RECORDS_CHUNK (256u << 10)          /* output bytes per Records event */
#define SELECT_TIME_LIMIT_MS (10u * 60 * 1000)

typedef struct sel_job {
  pthread_mutex_t lock;
  http_req *req;             /* while PARKED; NULL after (1) */
  http_stream *stream;       /* once STREAMING */
  s3_select_pool *pool;
  store *st;                 /* borrowed; s3_select_pool_free() waits for the job (3) */
  atomic_bool cancel;
  int refs;
  arena *a;                  /* the job's own: the request's arena may go first */
  sel_req r;
  const char *bucket, *key;
  char request_id[17];
  int fd;                    /* the stored object's bytes, or -1 */
  const void *inline_data;   /* or an inline object's (in a) */
  uint64_t size;             /* stored bytes */
  int in_fd;                 /* what the engine reads */
  uint64_t in_size;
  uint64_t scanned;          /* BytesScanned: stored bytes read */
  uint64_t processed;        /* BytesProcessed: bytes after decompression */
  uint64_t returned;         /* BytesReturned: output bytes */
  uint64_t engine_bytes;     /* bytes the engine read so far (progress) */
  const sql_column *cols;
  size_t ncols;
  const char **names;        /* JSON output names */
  buf out;                   /* output records not yet sent */
  buf msg;                   /* encoded messages */
  buf cell;                  /* one cell's text */
  bool wrote_since_tick;
  struct sel_job *next;      /* the pool's list */
} sel_job;

struct s3_select_pool {
  pthread_mutex_t lock;
  pthread_cond_t idle;
  sel_job *running;
  int nrunning;
  int max_running;
  uint64_t memory_limit;     /* of one query: half of RAM shared by the running ones */
};

/* ---- the request ---- */

static bool xml_bool(const char *s)
{
  return s != NULL && strcasecmp(s, "true") == 0;
}

/* One character of a CSV option, or the default when absent. */
static int one_char(const xml_node *n, const char *name, char def, char *out, sel_err *se)
{
  const char *v = xml_child_text(n, name);
  if (v == NULL || v[0] == '\0') {
    *out = def;
    return 0;
  }
  if (strcmp(v, "\\t") == 0) {
    *out = '\t';
    return 0;
  }
  if (strlen(v) != 1)
    return s3_select_fail(se, "InvalidRequestParameter",
                    "the value of %s must be one character, not '%.32s'", name, v);
  *out = v[0];
  return 0;
}

/* A delimiter of 1 or 2 bytes (CRLF), default def. */
static int delim_text(arena *a, const xml_node *n, const char *name, const char *def,
                      const char **out, sel_err *se)
{
  const char *v = xml_child_text(n, name);
  if (v == NULL || v[0] == '\0') {
    *out = def;
    return 0;
  }
  if (strlen(v) > 2)
    return s3_select_fail(se, "InvalidRequestParameter", "%s must be one or two characters", name);
  *out = arena_strdup(a, v);
  return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
  if (s == NULL || *s == '\0')
    return -1;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
      return -1;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  *out = v;
  return 0;
}

static int parse_request(arena *a, const xml_node *root, sel_req *r, sel_err *se)
{
  memset(r, 0, sizeof *r);
  const char *expr = xml_child_text(root, "Expression");
  if (expr == NULL)
    return s3_select_fail(se, "MissingRequiredParameter",
                    "the SelectRequest entity is missing a required parameter: Expression");
  if (strlen(expr) > SELECT_EXPR_MAX)
    return s3_select_fail(se, "ExpressionTooLong",
                    "the SQL expression is too long: the maximum byte-length for the SQL "
                    "expression is 256 KB");
  r->expr = arena_strdup(a, expr);
  const char *type = xml_child_text(root, "ExpressionType");
  if (type == NULL)
    return s3_select_fail(se, "MissingRequiredParameter",
                    "the SelectRequest entity is missing a required parameter: ExpressionType");
  if (strcmp(type, "SQL") != 0)
    return s3_select_fail(se, "InvalidExpressionType",
                    "the ExpressionType '%.32s' is not valid: only SQL expressions are supported",
                    type);
  const xml_node *rp = xml_child(root, "RequestProgress");
  r->progress = rp != NULL && xml_bool(xml_child_text(rp, "Enabled"));

  const xml_node *in = xml_child(root, "InputSerialization");
  const xml_node *out = xml_child(root, "OutputSerialization");
  if (in == NULL)
    return s3_select_fail(se, "MissingRequiredParameter",
                    "the SelectRequest entity is missing a required parameter: "
                    "InputSerialization");
  if (out == NULL)
    return s3_select_fail(se, "MissingRequiredParameter",
                    "the SelectRequest entity is missing a required parameter: "
                    "OutputSerialization");
  const char *comp = xml_child_text(in, "CompressionType");
  if (comp == NULL || comp[0] == '\0' || strcmp(comp, "NONE") == 0)
    r->codec = CODEC_NONE;
  else if (strcmp(comp, "GZIP") == 0)
    r->codec = CODEC_GZIP;
  else if (strcmp(comp, "BZIP2") == 0)
    r->codec = CODEC_BZIP2;
  else
    return s3_select_fail(se, "InvalidCompressionFormat",
                    "the file is not in a supported compression format: only GZIP and BZIP2 "
                    "are supported");
  const xml_node *csv = xml_child(in, "CSV");
  const xml_node *json = xml_child(in, "JSON");
  const xml_node *pq = xml_child(in, "Parquet");
  if ((csv != NULL) + (json != NULL) + (pq != NULL) != 1)
    return s3_select_fail(se, (csv || json || pq) ? "ObjectSerializationConflict"
                                            : "MissingRequiredParameter",
                    "InputSerialization must name exactly one of CSV, JSON and Parquet");
  int rc;
  if (csv != NULL) {
    r->in = SQL_OBJECT_CSV;
    const char *fh = xml_child_text(csv, "FileHeaderInfo");
    if (fh == NULL || fh[0] == '\0' || strcmp(fh, "NONE") == 0)
      r->header = HDR_NONE;
    else if (strcmp(fh, "USE") == 0)
      r->header = HDR_USE;
    else if (strcmp(fh, "IGNORE") == 0)
      r->header = HDR_IGNORE;
    else
      return s3_select_fail(se, "InvalidFileHeaderInfo",
                      "the FileHeaderInfo '%.32s' is invalid: only NONE, USE and IGNORE are "
                      "supported", fh);
    if ((rc = one_char(csv, "FieldDelimiter", ',', &r->delim, se)) < 0 ||
        (rc = one_char(csv, "QuoteCharacter", '"', &r->quote, se)) < 0 ||
        (rc = one_char(csv, "QuoteEscapeCharacter", '"', &r->escape, se)) < 0 ||
        (rc = delim_text(a, csv, "RecordDelimiter", "\n", &r->rdelim, se)) < 0)
      return rc;
    if (xml_child(csv, "Comments") != NULL) {
      if ((rc = one_char(csv, "Comments", 0, &r->comments, se)) < 0)
        return rc;
    } else {
      r->comments = '#';
    }
    if (r->delim == r->quote || strchr(r->rdelim, r->delim) != NULL)
      return s3_select_fail(se, "InvalidRequestParameter",
                      "the FieldDelimiter must differ from the QuoteCharacter and the "
                      "RecordDelimiter");
  } else if (json != NULL) {
    r->in = SQL_OBJECT_JSON;
    const char *t = xml_child_text(json, "Type");
    if (t == NULL || t[0] == '\0')
      return s3_select_fail(se, "MissingRequiredParameter",
                      "the SelectRequest entity is missing a required parameter: JSON Type");
    if (strcmp(t, "DOCUMENT") == 0)
      r->json_document = true;
    else if (strcmp(t, "LINES") != 0)
      return s3_select_fail(se, "InvalidJsonType",
                      "the JsonType '%.32s' is invalid: only DOCUMENT and LINES are supported",
                      t);
    r->rdelim = "\n";
  } else {
    r->in = SQL_OBJECT_PARQUET;
    if (r->codec != CODEC_NONE)
      return s3_select_fail(se, "InvalidCompressionFormat",
                      "the Parquet format does not support whole-object compression: "
                      "its pages are compressed");
  }

  const xml_node *ocsv = xml_child(out, "CSV");
  const xml_node *ojson = xml_child(out, "JSON");
  if ((ocsv != NULL) + (ojson != NULL) != 1)
    return s3_select_fail(se, (ocsv || ojson) ? "ObjectSerializationConflict"
                                        : "MissingRequiredParameter",
                    "OutputSerialization must name exactly one of CSV and JSON");
  if (ocsv != NULL) {
    if ((rc = delim_text(a, ocsv, "FieldDelimiter", ",", &r->out_delim, se)) < 0 ||
        (rc = delim_text(a, ocsv, "RecordDelimiter", "\n", &r->out_rdelim, se)) < 0 ||
        (rc = one_char(ocsv, "QuoteCharacter", '"', &r->out_quote, se)) < 0 ||
        (rc = one_char(ocsv, "QuoteEscapeCharacter", '"', &r->out_escape, se)) < 0)
      return rc;
    const char *qf = xml_child_text(ocsv, "QuoteFields");
    if (qf == NULL || qf[0] == '\0' || strcmp(qf, "ASNEEDED") == 0)
      r->quote_always = false;
    else if (strcmp(qf, "ALWAYS") == 0)
      r->quote_always = true;
    else
      return s3_select_fail(se, "InvalidQuoteFields",
                      "the QuoteFields '%.32s' is invalid: only ALWAYS and ASNEEDED are "
                      "supported", qf);
  } else {
    r->out_json = true;
    if ((rc = delim_text(a, ojson, "RecordDelimiter", "\n", &r->out_rdelim, se)) < 0)
      return rc;
  }

  const xml_node *sr = xml_child(root, "ScanRange");
  if (sr != NULL) {
    const char *s = xml_child_text(sr, "Start");
    const char *e = xml_child_text(sr, "End");
    if (s != NULL && s[0] != '\0') {
      if (parse_u64(s, &r->start) < 0)
        return s3_select_fail(se, "InvalidRequestParameter", "ScanRange Start must be a "
                                                       "non-negative integer");
      r->has_start = true;
    }
    if (e != NULL && e[0] != '\0') {
      if (parse_u64(e, &r->end) < 0)
        return s3_select_fail(se, "InvalidRequestParameter", "ScanRange End must be a "
                                                       "non-negative integer");
      r->has_end = true;
    }
    if (!r->has_start && !r->has_end)
      return s3_select_fail(se, "InvalidRequestParameter", "ScanRange must hold Start or End");
    if (r->has_start && r->has_end && r->start > r->end)
      return s3_select_fail(se, "InvalidRequestParameter",
                      "ScanRange Start must not be greater than its End");
    if (r->codec != CODEC_NONE || r->json_document || r->in == SQL_OBJECT_PARQUET)
      return s3_select_fail(se, "UnsupportedScanRangeInput",
                      "ScanRange is supported on uncompressed CSV and JSON LINES objects only");
  }
  return 0;
}

/* ---- the input ---- */

/* Makes j->in_fd / in_size: what the engine reads. */
static int prepare_input(sel_job *j, sel_err *se, err *e)
{
  const sel_req *r = &j->r;
  const char *data = j->inline_data;
  void *map = NULL;
  size_t len = (size_t)j->size;
  int rc = 0;
  if (j->fd >= 0 && len > 0) {
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, j->fd, 0);
    if (map == MAP_FAILED)
      return err_set(e, ERR_IO, "cannot map the object");
    data = map;
  }
  if (data == NULL)
    data = "";
  char *plain = NULL;
  size_t plen = len;
  const char *src = data;
  if (r->codec != CODEC_NONE) {
    err e2 = {0};
    rc = codec_decompress(r->codec, data, len, SELECT_INPUT_MAX, &plain, &plen, &e2);
    if (rc < 0) {
      if (map != NULL)
        munmap(map, len);
      if (rc == ERR_ENTITY_TOO_LARGE)
        return s3_select_fail(se, "OverMaxRecordSize", "the decompressed object is larger than "
                                                 "tarn's limit of 4 GiB");
      return s3_select_fail(se, "InvalidCompressionFormat", "the object is not valid %s data: %s",
                      r->codec == CODEC_GZIP ? "GZIP" : "BZIP2", e2.msg);
    }
    src = plain;
  }
  j->scanned = j->size;
  j->processed = plen;
  uint64_t lo = 0, hi = UINT64_MAX;
  if (r->has_start || r->has_end) {
    if (r->has_start) {
      lo = r->start;
      hi = r->has_end ? r->end : UINT64_MAX;
    } else {
      lo = r->end >= plen ? 0 : plen - r->end;
    }
    uint64_t last = hi < plen ? hi + 1 : plen;
    j->scanned = last > lo ? last - lo : 0;
    j->processed = j->scanned;
  }
  bool in_place = lo == 0 && hi == UINT64_MAX &&
                  (r->in == SQL_OBJECT_PARQUET ||
                   (!r->json_document && s3_select_in_place(r, src, plen)));
  if (in_place && j->fd >= 0 && r->codec != CODEC_NONE &&
      codec_sniff(data, len) == r->codec) {
    /* the engine decompresses it again itself (it knows the magic): one
       copy of the plain bytes in memory at a time, not two */
    free(plain);
    plain = NULL;
    j->in_fd = dup(j->fd);
    j->in_size = j->size;
  } else if (in_place && j->fd >= 0 && r->codec == CODEC_NONE) {
    j->in_fd = dup(j->fd);
    j->in_size = j->size;
  } else {
    sel_writer w = {.fd = memfd_create("tarn-select", MFD_CLOEXEC)};
    buf_init(&w.b, 8u << 20);
    if (w.fd < 0) {
      rc = err_set(e, ERR_INTERNAL, "cannot make a buffer for the object");
    } else if (in_place) {
      sel_writer_put(&w, src, plen); /* an inline object */
    } else if (r->json_document) {
      rc = s3_select_json_lines(src, plen, &w, se);
    } else {
      rc = s3_select_cut_records(r, src, plen, lo, hi, &w, se);
    }
    sel_writer_flush(&w);
    buf_release(&w.b);
    if (rc == 0 && w.rc != 0)
      rc = err_set(e, ERR_NO_SPACE, "cannot hold the object's records");
    if (rc == 0) {
      j->in_fd = w.fd;
      j->in_size = w.total;
    } else if (w.fd >= 0) {
      close(w.fd);
    }
  }
  free(plain);
  if (map != NULL)
    munmap(map, len);
  if (rc == 0 && j->in_fd < 0)
    rc = err_set(e, ERR_IO, "cannot open the object's bytes");
  return rc;
}

/* ---- the answer ---- */

/* Starts the 200 event stream; false when the client has gone. */
static bool start_stream(sel_job *j)
{
  if (j->stream != NULL)
    return true;
  pthread_mutex_lock(&j->lock);
  http_req *r = j->req;
  if (r == NULL) {
    pthread_mutex_unlock(&j->lock);
    return false;
  }
  http_resp_status(r, 200);
  http_resp_header(r, "Content-Type", "application/vnd.amazon.eventstream");
  j->stream = http_resp_stream(r);
  j->req = NULL;
  http_req_resume(r);
  pthread_mutex_unlock(&j->lock);
  return true;
}

static int send_msgs(sel_job *j, err *e)
{
  if (j->msg.len == 0)
    return 0;
  if (!start_stream(j) || http_stream_write(j->stream, j->msg.data, j->msg.len) != 0) {
    buf_reset(&j->msg);
    return err_set(e, ERR_REQUEST_TIMEOUT, "query cancelled");
  }
  buf_reset(&j->msg);
  j->wrote_since_tick = true;
  return 0;
}

static int flush_records(sel_job *j, err *e)
{
  if (j->out.len == 0)
    return 0;
  int rc = eventstream_event(&j->msg, "Records", "application/octet-stream", j->out.data,
                             j->out.len);
  j->returned += j->out.len;
  buf_reset(&j->out);
  if (rc != 0)
    return err_set(e, ERR_INTERNAL, "cannot frame the records");
  return send_msgs(j, e);
}

static void stats_xml(buf *b, const char *root, uint64_t scanned, uint64_t processed,
                      uint64_t returned)
{
  buf_printf(b,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><%s><BytesScanned>%llu</BytesScanned>"
             "<BytesProcessed>%llu</BytesProcessed><BytesReturned>%llu</BytesReturned></%s>",
             root, (unsigned long long)scanned, (unsigned long long)processed,
             (unsigned long long)returned, root);
}

static int on_columns(void *ctx, const sql_column *cols, size_t ncols, err *e)
{
  sel_job *j = ctx;
  j->cols = cols;
  j->ncols = ncols;
  j->names = arena_alloc(j->a, sizeof(char *) * (ncols ? ncols : 1));
  for (size_t i = 0; i < ncols; i++) {
    const char *nm = cols[i].name;
    int k;
    char tail;
    /* unnamed expressions are _1, _2, ... by position, as S3 names them */
    if (sscanf(nm, "_col%d%c", &k, &tail) == 1)
      nm = arena_sprintf(j->a, "_%zu", i + 1);
    j->names[i] = nm;
  }
  return 0;
}

static void csv_field(sel_job *j, const char *s, size_t n)
{
  const sel_req *r = &j->r;
  bool quote = r->quote_always;
  for (size_t i = 0; i < n && !quote; i++) {
    char c = s[i];
    if (c == r->out_quote || c == r->out_escape || c == '\n' || c == '\r' ||
        strchr(r->out_delim, c) != NULL || strchr(r->out_rdelim, c) != NULL)
      quote = true;
  }
  if (!quote) {
    buf_append(&j->out, s, n);
    return;
  }
  buf_append(&j->out, &r->out_quote, 1);
  size_t st = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == r->out_quote || (s[i] == r->out_escape && r->out_escape != r->out_quote)) {
      buf_append(&j->out, s + st, i - st);
      buf_append(&j->out, &r->out_escape, 1);
      st = i;
    }
  }
  buf_append(&j->out, s + st, n - st);
  buf_append(&j->out, &r->out_quote, 1);
}

static int on_rows(void *ctx, const sql_batch *b, err *e)
{
  sel_job *j = ctx;
  const sel_req *r = &j->r;
  size_t nrows = sql_batch_rows(b);
  for (size_t row = 0; row < nrows; row++) {
    size_t rec_start = j->out.len;
    for (size_t c = 0; c < j->ncols; c++) {
      if (r->out_json) {
        buf_puts(&j->out, c ? "," : "{");
        buf_json_string(&j->out, j->names[c], strlen(j->names[c]));
        buf_puts(&j->out, ":");
        if (sql_cell_json(b, c, row, &j->out) != 0)
          return err_set(e, ERR_ENTITY_TOO_LARGE, "record too large");
      } else {
        if (c > 0)
          buf_puts(&j->out, r->out_delim);
        buf_reset(&j->cell);
        int k = sql_cell_text(b, c, row, &j->cell);
        if (k < 0)
          return err_set(e, ERR_ENTITY_TOO_LARGE, "record too large");
        csv_field(j, j->cell.data != NULL ? j->cell.data : "", j->cell.len);
      }
    }
    if (r->out_json)
      buf_puts(&j->out, j->ncols ? "}" : "{}");
    if (buf_puts(&j->out, r->out_rdelim) != 0 || j->out.len - rec_start > SELECT_RECORD_MAX)
      return err_set(e, ERR_ENTITY_TOO_LARGE,
                     "the length of a record in the result is greater than the limit of 1 MB");
    if (j->out.len >= RECORDS_CHUNK) {
      int rc = flush_records(j, e);
      if (rc < 0)
        return rc;
    }
  }
  return 0;
}

/* About every 500 ms while the query runs, on its thread. */
static void on_progress(void *ctx, const sql_stats *s)
{
  sel_job *j = ctx;
  pthread_mutex_lock(&j->lock);
  bool gone = j->req != NULL ? http_req_client_gone(j->req)
                             : j->stream != NULL && http_stream_client_gone(j->stream);
  pthread_mutex_unlock(&j->lock);
  if (gone) {
    atomic_store(&j->cancel, true);
    return;
  }
  j->engine_bytes = s->bytes_scanned;
  err e = {0};
  if (flush_records(j, &e) < 0) {
    atomic_store(&j->cancel, true);
    return;
  }
  if (j->r.progress) {
    buf x;
    buf_init(&x, 4096);
    uint64_t processed = s->bytes_scanned < j->processed ? s->bytes_scanned : j->processed;
    uint64_t scanned = j->processed > 0 ? (uint64_t)((double)processed * (double)j->scanned /
                                                     (double)j->processed)
                                        : 0;
    stats_xml(&x, "Progress", scanned, processed, j->returned);
    eventstream_event(&j->msg, "Progress", "text/xml", x.data, x.len);
    buf_release(&x);
  } else if (!j->wrote_since_tick) {
    eventstream_event(&j->msg, "Cont", NULL, NULL, 0);
  }
  if (send_msgs(j, &e) < 0)
    atomic_store(&j->cancel, true);
  j->wrote_since_tick = false;
}

/* The S3 Select code of an engine failure. */
static const char *engine_code(const sel_job *j, int rc, const err *e, const sql_stats *s)
{
  const char *m = e->msg;
  if (rc == ERR_ENTITY_TOO_LARGE && strstr(m, "record") != NULL)
    return "OverMaxRecordSize";
  if (rc == ERR_REQUEST_TIMEOUT)
    return strstr(m, "time limit") != NULL ? "Busy" : "RequestTimeout";
  if (rc != ERR_INVALID && rc != ERR_NOT_IMPLEMENTED)
    return "InternalError";
  bool data = strstr(m, "cannot read '") != NULL || strstr(m, "malformed") != NULL;
  if (s->error_line > 0 && !data) { /* the statement */
    if (strstr(m, "column") != NULL && strstr(m, "'_") != NULL)
      return "InvalidColumnIndex";
    if (strstr(m, "column") != NULL && (strstr(m, "unknown") || strstr(m, "not found") ||
                                        strstr(m, "does not exist")))
      return j->r.in == SQL_OBJECT_CSV && j->r.header == HDR_USE ? "MissingHeaders"
                                                                 : "InvalidColumnIndex";
    if (strstr(m, "function") != NULL)
      return "UnsupportedFunction";
    if (strstr(m, "type") != NULL || strstr(m, "cannot compare") != NULL)
      return "IncorrectSqlFunctionArgumentType";
    if (strstr(m, "table") != NULL)
      return "InvalidTableAlias";
    if (rc == ERR_NOT_IMPLEMENTED)
      return "UnsupportedSyntax";
    return "ParseUnexpectedToken";
  }
  if (strstr(m, "cast") != NULL || strstr(m, "convert") != NULL)
    return "CastFailed";
  if (j->r.in == SQL_OBJECT_JSON)
    return "JSONParsingError";
  if (j->r.in == SQL_OBJECT_CSV)
    return "CSVParsingError";
  return "InvalidDataSource";
}

/* The engine's message with the object named as the user knows it. */
static const char *user_message(sel_job *j, const char *m)
{
  static const char inner[] = "s3://(object)/object";
  const char *at = strstr(m, inner);
  if (at == NULL)
    return m;
  return arena_sprintf(j->a, "%.*ss3://%s/%s%s", (int)(at - m), m, j->bucket, j->key,
                       at + sizeof inner - 1);
}

static void answer_xml_error(sel_job *j, int status, const char *code, const char *msg)
{
  pthread_mutex_lock(&j->lock);
  http_req *r = j->req;
  if (r != NULL) {
    j->req = NULL;
    s3_error_doc(r, j->bucket, j->key, NULL, status, code, msg);
    http_req_resume(r);
  }
  pthread_mutex_unlock(&j->lock);
}

static void end_stream(sel_job *j)
{
  pthread_mutex_lock(&j->lock);
  http_stream *st = j->stream;
  j->stream = NULL; /* see (1) */
  pthread_mutex_unlock(&j->lock);
  if (st != NULL)
    http_stream_end(st, NULL, 0);
}

static void run_select(sel_job *j)
{
  sel_err se = {0};
  err e = {0};
  const char *sql = NULL;
  int rc = s3_select_check_sql(j->a, &j->r, &sql, &se);
  if (rc == 0)
    rc = prepare_input(j, &se, &e);
  if (rc < 0) {
    if (se.code != NULL)
      answer_xml_error(j, 400, se.code, se.msg);
    else
      answer_xml_error(j, err_http_status(rc), err_aws_code(rc),
                       err_http_status(rc) >= 500 ? "we encountered an internal error, please "
                                                    "try again"
                                                  : e.msg);
    return;
  }
  sql_object_source obj = {
      .name = "S3Object",
      .fd = j->in_fd,
      .size = j->in_size,
      .format = j->r.in,
      .delim = j->r.delim,
      .quote = j->r.quote,
      .escape = j->r.escape == j->r.quote ? 0 : j->r.escape,
      .header = j->r.header != HDR_NONE,
      .positional = j->r.header != HDR_USE,
      .text = true,
  };
  sql_options opt = {.time_limit_ms = SELECT_TIME_LIMIT_MS,
                     .memory_limit = j->pool->memory_limit,
                     .cancel = &j->cancel,
                     .progress = on_progress,
                     .progress_ctx = j,
                     .object = &obj};
  sql_sink sink = {.ctx = j, .columns = on_columns, .rows = on_rows};
  sql_stats stats;
  memset(&stats, 0, sizeof stats);
  rc = sql_run(j->st, sql, &opt, &sink, &stats, &e);
  if (j->r.in == SQL_OBJECT_PARQUET) {
    j->scanned = stats.bytes_scanned;
    j->processed = stats.bytes_scanned;
  }
  if (rc == 0)
    rc = flush_records(j, &e);
  if (rc == 0) {
    buf x;
    buf_init(&x, 4096);
    if (j->r.progress) {
      stats_xml(&x, "Progress", j->scanned, j->processed, j->returned);
      eventstream_event(&j->msg, "Progress", "text/xml", x.data, x.len);
      buf_reset(&x);
    }
    stats_xml(&x, "Stats", j->scanned, j->processed, j->returned);
    eventstream_event(&j->msg, "Stats", "text/xml", x.data, x.len);
    eventstream_event(&j->msg, "End", NULL, NULL, 0);
    buf_release(&x);
    send_msgs(j, &e);
    end_stream(j);
    return;
  }
  const char *code = engine_code(j, rc, &e, &stats);
  const char *msg = strcmp(code, "InternalError") == 0 ? "we encountered an internal error, "
                                                         "please try again"
                                                       : user_message(j, e.msg);
  if (j->stream == NULL) {
    int status = strcmp(code, "InternalError") == 0 ? 500 : 400;
    answer_xml_error(j, status, code, msg);
    return;
  }
  if (rc == ERR_REQUEST_TIMEOUT && atomic_load(&j->cancel)) {
    end_stream(j); /* the client left: nothing to tell */
    return;
  }
  buf_reset(&j->msg);
  eventstream_error(&j->msg, code, msg);
  send_msgs(j, &e);
  end_stream(j);
}

/* ---- the job's life ---- */

static void job_unref(sel_job *j)
{
  pthread_mutex_lock(&j->lock);
  int left = --j->refs;
  pthread_mutex_unlock(&j->lock);
  if (left > 0)
    return;
  if (j->fd >= 0)
    close(j->fd);
  if (j->in_fd >= 0)
    close(j->in_fd);
  buf_release(&j->out);
  buf_release(&j->msg);
  buf_release(&j->cell);
  arena_free(j->a);
  pthread_mutex_destroy(&j->lock);
  free(j);
}

static void *job_main(void *arg)
{
  sel_job *j = arg;
  s3_select_pool *pool = j->pool;
  run_select(j);
  pthread_mutex_lock(&pool->lock);
  for (sel_job **pp = &pool->running; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == j) {
      *pp = j->next;
      break;
    }
  }
  if (--pool->nrunning == 0)
    pthread_cond_broadcast(&pool->idle);
  pthread_mutex_unlock(&pool->lock);
  job_unref(j);
  return NULL;
}

s3_select_pool *s3_select_pool_new(void)
{
  s3_select_pool *p = xcalloc(1, sizeof *p);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->idle, NULL);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  p->max_running = 2 * (int)(ncpu > 0 ? ncpu : 1);
  long pages = sysconf(_SC_PHYS_PAGES);
  long psize = sysconf(_SC_PAGESIZE);
  uint64_t ram = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : (4ull << 30);
  p->memory_limit = ram / (2 * (uint64_t)p->max_running);
  if (p->memory_limit < (256ull << 20))
    p->memory_limit = 256ull << 20;
  return p;
}

s3_select_pool *s3_select_pool_free(s3_select_pool *p)
{
  if (p == NULL)
    return NULL;
  pthread_mutex_lock(&p->lock);
  for (sel_job *j = p->running; j != NULL; j = j->next)
    atomic_store(&j->cancel, true);
  while (p->nrunning > 0)
    pthread_cond_wait(&p->idle, &p->lock);
  pthread_mutex_unlock(&p->lock);
  pthread_cond_destroy(&p->idle);
  pthread_mutex_destroy(&p->lock);
  free(p);
  return NULL;
}

int s3_select_object(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *st = http_req_param(req, "select-type");
  if (st == NULL || strcmp(st, "2") != 0)
    return err_set(e, ERR_INVALID, "select-type must be 2");
  xml_node *root;
  int rc = s3_body_xml(req, "SelectObjectContentRequest", &root, e);
  if (rc != 0)
    return rc;
  arena *a = arena_new();
  sel_req r;
  sel_err se = {0};
  if (parse_request(a, root, &r, &se) < 0) {
    arena_free(a);
    s3_error_doc(req, c->bucket, c->key, NULL, 400, se.code, se.msg);
    return 0;
  }
  store_object o;
  int fd = -1;
  rc = store_object_get(s->st, c->bucket, c->key, a, &o, &fd, e);
  const char *key_md5;
  if (rc == 0 && (rc = s3_sse_unlock(s, req, &o, false, &key_md5, e)) == 0)
    rc = store_object_plain_fd(&o, &fd, e);  /* the engine reads plaintext */
  if (rc != 0) {
    if (fd >= 0)
      close(fd);
    arena_free(a);
    return rc;
  }
  s3_select_pool *pool = s->select;
  pthread_mutex_lock(&pool->lock);
  if (pool->nrunning >= pool->max_running) {
    pthread_mutex_unlock(&pool->lock);
    if (fd >= 0)
      close(fd);
    arena_free(a);
    return err_set(e, ERR_TOO_MANY_REQUESTS, "please reduce your request rate: %d S3 Select "
                   "queries are running", pool->max_running);
  }
  sel_job *j = xcalloc(1, sizeof *j);
  pthread_mutex_init(&j->lock, NULL);
  j->req = req;
  j->pool = pool;
  j->st = s->st;
  j->a = a;
  j->r = r;
  j->bucket = arena_strdup(a, c->bucket);
  j->key = arena_strdup(a, c->key);
  snprintf(j->request_id, sizeof j->request_id, "%s", req->request_id);
  j->fd = fd;
  j->inline_data = fd < 0 ? o.data : NULL;
  j->size = o.size;
  j->in_fd = -1;
  buf_init(&j->out, RECORDS_CHUNK + 2 * SELECT_RECORD_MAX + (64u << 20));
  buf_init(&j->msg, EVENTSTREAM_MAX_MESSAGE + (1u << 20));
  buf_init(&j->cell, SQL_VALUE_MAX + 1);
  j->refs = 2; /* the thread's and the request's (2) */
  c->select = j;
  j->next = pool->running;
  pool->running = j;
  pool->nrunning++;
  http_req_park(req);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, job_main, j) != 0) {
    pool->running = j->next;
    pool->nrunning--;
    pthread_mutex_unlock(&pool->lock);
    answer_xml_error(j, 503, "ServiceUnavailable", "cannot start an S3 Select query");
    job_unref(j);
  } else {
    pthread_mutex_unlock(&pool->lock);
  }
  pthread_attr_destroy(&attr);
  return 0;
}

void s3_select_cleanup(s3_call *c)
{
  sel_job *j = c->select;
  if (j == NULL)
    return;
  c->select = NULL;
  pthread_mutex_lock(&j->lock);
  if (j->req != NULL) { /* gone before the answer started (1) */
    j->req = NULL;
    atomic_store(&j->cancel, true);
  }
  pthread_mutex_unlock(&j->lock);
  job_unref(j);
}
