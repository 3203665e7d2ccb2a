/* athena/result.c -- a query's result object: written as Athena writes it
 * (OutputLocation/ID.csv and ID.csv.metadata), and read back a page at a
 * time for GetQueryResults.
 *
 * Why: Athena's results live in the bucket, not in the service: a client
 * may read the CSV directly, an ObjectCreated event may start the next
 * step, and GetQueryResults works after a restart because it reads the
 * objects, not memory.
 *
 * Invariants:
 *   (1) The CSV has a header row, then one row per result row; every value
 *       is in double quotes with quotes doubled, a NULL is an empty field
 *       without quotes, each row ends with "\n". So a reader tells NULL
 *       ("") from the empty string ("\"\"") and never needs the types.
 *   (2) Both objects are committed only after the query succeeded, and
 *       before the execution is SUCCEEDED; the two commits run at once
 *       (one group commit of the store instead of two in a row).
 *   (3) A page is read from a byte offset that ends a row (the NextToken),
 *       so paging costs the page, not the rows before it; a page holds at
 *       most PAGE_BYTES_MAX of the CSV (fewer rows than asked, and a
 *       NextToken, when the rows are large).
 *
 * Start reading at athena__result_sink(), then athena__result_page().
 */
#include "athena/internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLUSH_AT (256u << 10)
#define METADATA_MAX (4u << 20)   /* bytes of a metadata object read back */
#define PAGE_BYTES_MAX (16u << 20) /* CSV bytes one page reads (then it ends early) */

/* ---- writing ---- */

int athena__result_init(result_writer *rw, store *st, const char *bucket, err *e)
{
  memset(rw, 0, sizeof *rw);
  rw->st = st;
  buf_init(&rw->line, 2 * (size_t)SQL_VALUE_MAX + FLUSH_AT + 16);
  buf_init(&rw->cell, (size_t)SQL_VALUE_MAX + 16);
  int rc = store_writer_new(st, &rw->w, e);
  return rc != 0 ? rc : store_writer_encrypt_default(st, rw->w, bucket, NULL, e);
}

void athena__result_release(result_writer *rw)
{
  rw->w = store_writer_free(rw->w);
  buf_release(&rw->line);
  buf_release(&rw->cell);
  json_decref(rw->columns);
  rw->columns = NULL;
}

static int flush(result_writer *rw, err *e)
{
  if (rw->line.len == 0)
    return 0;
  int rc = store_writer_write(rw->w, rw->line.data, rw->line.len, e);
  rw->bytes += rw->line.len;
  buf_reset(&rw->line);
  return rc;
}

/* Appends "text" with its quotes doubled (1). */
static int quoted(buf *b, const char *s, size_t n)
{
  int rc = buf_puts(b, "\"");
  const char *p = s, *end = s + n;
  while (rc == 0 && p < end) {
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (q == NULL) {
      rc = buf_append(b, p, (size_t)(end - p));
      break;
    }
    rc = buf_append(b, p, (size_t)(q - p + 1));
    if (rc == 0)
      rc = buf_puts(b, "\"");
    p = q + 1;
  }
  return rc != 0 ? rc : buf_puts(b, "\"");
}

/* ColumnInfo as Athena answers it (precision of each type as Athena
 * reports it; CaseSensitive only for text). */
static json_t *column_info(const sql_column *c)
{
  int precision = 0, scale = 0;
  const char *type = sql_type_name(c->type);
  switch (c->type) {
  case SQL_VARCHAR: precision = 2147483647; break;
  case SQL_BIGINT: precision = 19; break;
  case SQL_INTEGER: precision = 10; break;
  case SQL_SMALLINT: precision = 5; break;
  case SQL_DOUBLE: precision = 17; break;
  case SQL_DECIMAL: precision = c->precision; scale = c->scale; break;
  case SQL_TIMESTAMP: precision = 3; break;
  default: break;
  }
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:b}", "CatalogName", "hive",
                   "SchemaName", "", "TableName", "", "Name", c->name, "Label", c->name, "Type",
                   type, "Precision", precision, "Scale", scale, "Nullable", "UNKNOWN",
                   "CaseSensitive", c->type == SQL_VARCHAR);
}

static int on_columns(void *ctx, const sql_column *cols, size_t ncols, err *e)
{
  result_writer *rw = ctx;
  rw->ncols = ncols;
  rw->columns = json_array();
  for (size_t i = 0; i < ncols; i++) {
    json_array_append_new(rw->columns, column_info(&cols[i]));
    if (i > 0)
      buf_puts(&rw->line, ",");
    quoted(&rw->line, cols[i].name, strlen(cols[i].name));
  }
  buf_puts(&rw->line, "\n");
  return flush(rw, e);
}

static int on_rows(void *ctx, const sql_batch *b, err *e)
{
  result_writer *rw = ctx;
  size_t nrows = sql_batch_rows(b);
  for (size_t row = 0; row < nrows; row++) {
    for (size_t c = 0; c < rw->ncols; c++) {
      if (c > 0)
        buf_puts(&rw->line, ",");
      if (sql_cell_is_null(b, c, row))
        continue;
      buf_reset(&rw->cell);
      if (sql_cell_text(b, c, row, &rw->cell) < 0 ||
          quoted(&rw->line, rw->cell.data, rw->cell.len) != 0)
        return err_set(e, ERR_ENTITY_TOO_LARGE, "a result row is too large to write");
      if (rw->line.len >= FLUSH_AT) {
        int rc = flush(rw, e);
        if (rc != 0)
          return rc;
      }
    }
    buf_puts(&rw->line, "\n");
    rw->rows++;
  }
  return rw->line.len >= FLUSH_AT ? flush(rw, e) : 0;
}

sql_sink athena__result_sink(result_writer *rw)
{
  return (sql_sink){.ctx = rw, .columns = on_columns, .rows = on_rows};
}

static void etag_of(store_writer *w, char out[33])
{
  uint8_t d[16];
  store_writer_md5(w, d);
  hex_encode(d, sizeof d, out);
}

/* The metadata object's commit, run beside the CSV's so the two share
 * one group commit of the store. */
typedef struct meta_commit {
  store *st;
  const char *bucket;
  const char *key;
  const char *text;
  int rc;
  err e;
} meta_commit;

static void *commit_metadata(void *arg)
{
  meta_commit *m = arg;
  store_writer *w = NULL;
  arena *ar = arena_new();
  m->rc = store_writer_new(m->st, &w, &m->e);
  if (m->rc == 0)
    m->rc = store_writer_encrypt_default(m->st, w, m->bucket, NULL, &m->e);
  if (m->rc == 0)
    m->rc = store_writer_write(w, m->text, strlen(m->text), &m->e);
  if (m->rc == 0) {
    char etag[33];
    etag_of(w, etag);
    str_pair json_meta = {"content-type", "application/json"};
    m->rc = store_object_commit(w, m->bucket, m->key, etag, &json_meta, 1, NULL, 0, ar, NULL,
                                &m->e);
  }
  store_writer_free(w);
  arena_free(ar);
  return NULL;
}

int athena__result_commit(result_writer *rw, const char *bucket, const char *key,
                          uint64_t scanned, err *e)
{
  int rc = flush(rw, e);
  if (rc != 0)
    return rc;
  if (rw->columns == NULL)
    rw->columns = json_array();
  json_t *meta = json_pack("{s:O, s:I, s:I}", "ColumnInfo", rw->columns, "Rows",
                           (json_int_t)rw->rows, "DataScannedInBytes", (json_int_t)scanned);
  char *text = json_dumps(meta, JSON_COMPACT);
  json_decref(meta);
  arena *ar = arena_new();
  meta_commit m = {.st = rw->st, .bucket = bucket, .key = arena_sprintf(ar, "%s.metadata", key),
                   .text = text};
  pthread_t t;
  bool threaded = pthread_create(&t, NULL, commit_metadata, &m) == 0;
  char etag[33];
  etag_of(rw->w, etag);
  str_pair csv_meta = {"content-type", "text/csv"};
  rc = store_object_commit(rw->w, bucket, key, etag, &csv_meta, 1, NULL, 0, ar, NULL, e);
  rw->w = store_writer_free(rw->w);
  if (threaded)
    pthread_join(t, NULL);
  else
    commit_metadata(&m);
  if (rc != 0)
    err_wrap(e, "cannot write the query results to 's3://%s/%s'", bucket, key);
  else if (m.rc != 0)
    rc = err_set(e, m.rc, "cannot write the query results to 's3://%s/%s': %s", bucket, m.key,
                 m.e.msg);
  free(text);
  arena_free(ar);
  return rc;
}

/* ---- reading ---- */

typedef struct reader {
  const store_object *o;
  int fd;
  uint64_t pos;            /* object offset of blk[0] */
  char blk[64 * 1024];
  size_t len, at;
} reader;

/* The next byte, or -1 at the end (or on an error, in e). */
static int next_byte(reader *r, err *e, int *rc)
{
  if (r->at == r->len) {
    r->pos += r->len;
    r->len = r->at = 0;
    size_t got = 0;
    if (r->pos >= r->o->size)
      return -1;
    *rc = store_object_read(r->o, r->fd, r->pos, r->blk, sizeof r->blk, &got, e);
    if (*rc != 0 || got == 0)
      return -1;
    r->len = got;
  }
  return (unsigned char)r->blk[r->at++];
}

/* One row of (1): an array of {"VarCharValue"} / {} cells. Returns 1 for a
 * row, 0 at the end of the object, or an error code. */
static int read_row(reader *r, buf *cell, json_t **row, err *e)
{
  int rc = 0;
  int c = next_byte(r, e, &rc);
  if (c < 0)
    return rc;
  json_t *data = json_array();
  for (;;) {
    if (c == '"') { /* a quoted value */
      buf_reset(cell);
      for (;;) {
        c = next_byte(r, e, &rc);
        if (c < 0)
          break;
        if (c == '"') {
          c = next_byte(r, e, &rc);
          if (c != '"')
            break;
        }
        char ch = (char)c;
        if (buf_append(cell, &ch, 1) != 0) {
          json_decref(data);
          return err_set(e, ERR_ENTITY_TOO_LARGE, "a result value is too large");
        }
      }
      json_array_append_new(data, json_pack("{s:s%}", "VarCharValue", cell->data ? cell->data : "",
                                            cell->len));
    } else { /* NULL */
      json_array_append_new(data, json_object());
    }
    if (c == ',') {
      c = next_byte(r, e, &rc);
      if (c < 0 || c == '\n') { /* a trailing NULL */
        json_array_append_new(data, json_object());
        break;
      }
      continue;
    }
    break; /* '\n' or the end */
  }
  if (rc != 0) {
    json_decref(data);
    return rc;
  }
  *row = json_pack("{s:o}", "Data", data);
  return 1;
}

int athena__result_page(store *st, const char *bucket, const char *key, uint64_t offset,
                        size_t max, json_t **result_set, uint64_t *next, err *e)
{
  *result_set = NULL;
  *next = 0;
  arena *ar = arena_new();
  store_object meta_obj, obj;
  int mfd = -1, fd = -1;
  char *mkey = arena_sprintf(ar, "%s.metadata", key);
  int rc = store_object_get(st, bucket, mkey, ar, &meta_obj, &mfd, e);
  json_t *meta = NULL;
  if (rc == 0 && meta_obj.size > METADATA_MAX)
    rc = err_set(e, ERR_INVALID, "the result metadata 's3://%s/%s' is too large", bucket, mkey);
  if (rc == 0) {
    char *text = xmalloc(meta_obj.size + 1);
    size_t got = 0;
    rc = store_object_read(&meta_obj, mfd, 0, text, meta_obj.size, &got, e);
    if (rc == 0)
      meta = json_loadb(text, got, 0, NULL);
    free(text);
    if (rc == 0 && !json_is_array(json_object_get(meta, "ColumnInfo")))
      rc = err_set(e, ERR_INVALID, "the result metadata 's3://%s/%s' is not what the query "
                   "wrote", bucket, mkey);
  }
  if (mfd >= 0)
    close(mfd);
  if (rc == ERR_NO_SUCH_KEY || rc == ERR_NO_SUCH_BUCKET)
    rc = err_set(e, ERR_INVALID, "the query results are gone: 's3://%s/%s' was deleted", bucket,
                 mkey);
  if (rc == 0) {
    rc = store_object_get(st, bucket, key, ar, &obj, &fd, e);
    if (rc == ERR_NO_SUCH_KEY || rc == ERR_NO_SUCH_BUCKET)
      rc = err_set(e, ERR_INVALID, "the query results are gone: 's3://%s/%s' was deleted",
                   bucket, key);
  }
  if (rc == 0 && offset > obj.size)
    rc = err_set(e, ERR_INVALID, "the NextToken is not valid");
  json_t *rows = json_array();
  if (rc == 0) {
    reader *r = xcalloc(1, sizeof *r);
    r->o = &obj;
    r->fd = fd;
    r->pos = offset;
    buf cell;
    buf_init(&cell, (size_t)SQL_VALUE_MAX + 16);
    /* a page ends at max rows, or early past PAGE_BYTES_MAX (the answer
       is built in memory), with at least one row */
    while (json_array_size(rows) < max &&
           (json_array_size(rows) == 0 || r->pos + r->at - offset < PAGE_BYTES_MAX)) {
      json_t *row = NULL;
      int got = read_row(r, &cell, &row, e);
      if (got <= 0) {
        rc = got;
        break;
      }
      json_array_append_new(rows, row);
    }
    uint64_t at = r->pos + r->at;
    if (rc == 0 && at < obj.size)
      *next = at;
    buf_release(&cell);
    free(r);
  }
  if (fd >= 0)
    close(fd);
  if (rc == 0)
    *result_set = json_pack("{s:o, s:{s:O}}", "Rows", rows, "ResultSetMetadata", "ColumnInfo",
                            json_object_get(meta, "ColumnInfo"));
  else
    json_decref(rows);
  json_decref(meta);
  arena_free(ar);
  return rc;
}
