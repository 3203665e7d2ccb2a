/* sql/sql.c -- the public entry (sql.h): parse, bind, run, stream the
 * result to the sink, fill the statistics; and the cell formatters the
 * result writers use.
 *
 * Invariants:
 *   (1) The sink's columns() is called before the first rows() and at
 *       most once, on the caller's thread; it is delayed until the first
 *       batch (or the end), so a query that must be retried (a CSV object
 *       whose ranges did not line up, see csv.h) can run again unseen.
 *   (2) Every resource of a query (mappings, buffers, threads) is
 *       released before sql_run returns, on success and on failure.
 *
 * Start reading at sql__run_src().
 */
#include "ddl.h"
#include "base/mem.h"
#include "base/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sql_batch {
  const batch *b;
  const pcol *cols;
};

size_t sql_batch_rows(const sql_batch *b)
{
  return (size_t)b->b->nsel;
}

size_t sql_batch_columns(const sql_batch *b)
{
  return (size_t)b->b->ncols;
}

static value cell(const sql_batch *b, size_t col, size_t row)
{
  const batch *x = b->b;
  int r = ROW(x, (int)row);
  return vec_get(&x->cols[col], r);
}

bool sql_cell_is_null(const sql_batch *b, size_t col, size_t row)
{
  return cell(b, col, row).null;
}

int sql_cell_text(const sql_batch *b, size_t col, size_t row, buf *out)
{
  value v = cell(b, col, row);
  if (v.null)
    return 1;
  char tmp[64];
  str_ref s = sql__value_text(b->cols[col].type, v, tmp);
  return buf_append(out, s.ptr, s.len);
}

int sql_cell_csv(const sql_batch *b, size_t col, size_t row, buf *out)
{
  value v = cell(b, col, row);
  if (v.null)
    return 1;
  char tmp[64];
  str_ref s = sql__value_text(b->cols[col].type, v, tmp);
  bool quote = s.len == 0;
  for (size_t i = 0; i < s.len && !quote; i++) {
    char c = s.ptr[i];
    if (c == ',' || c == '"' || c == '\r' || c == '\n')
      quote = true;
  }
  if (!quote)
    return buf_append(out, s.ptr, s.len);
  int rc = buf_append(out, "\"", 1);
  size_t st = 0;
  for (size_t i = 0; i < s.len && rc == 0; i++) {
    if (s.ptr[i] == '"') {
      rc = buf_append(out, s.ptr + st, i - st + 1);
      if (rc == 0)
        rc = buf_append(out, "\"", 1);
      st = i + 1;
    }
  }
  if (rc == 0)
    rc = buf_append(out, s.ptr + st, s.len - st);
  if (rc == 0)
    rc = buf_append(out, "\"", 1);
  return rc;
}

int sql_cell_json(const sql_batch *b, size_t col, size_t row, buf *out)
{
  value v = cell(b, col, row);
  if (v.null)
    return buf_puts(out, "null");
  stype t = b->cols[col].type;
  char tmp[64];
  str_ref s = sql__value_text(t, v, tmp);
  switch (t.t) {
  case SQL_BOOLEAN:
  case SQL_SMALLINT:
  case SQL_INTEGER:
  case SQL_BIGINT:
  case SQL_DECIMAL:
    return buf_append(out, s.ptr, s.len);
  case SQL_DOUBLE:
    if (isnan(v.f) || isinf(v.f))
      return buf_json_string(out, s.ptr, s.len);
    return buf_append(out, s.ptr, s.len);
  default:
    return buf_json_string(out, s.ptr, s.len);
  }
}

double sql_cost_usd(uint64_t bytes)
{
  uint64_t min = 10ull * 1000 * 1000;
  if (bytes < min)
    bytes = min;
  return (double)bytes / 1e12 * 5.0;
}

/* ---- running ---- */

typedef struct run {
  sql_sink *sink;
  plan *p;
  sql_column *cols;
  bool columns_sent;
  uint64_t rows;
} run;

static int send_columns(run *r, err *e)
{
  if (r->columns_sent)
    return 0;
  r->columns_sent = true;
  if (r->sink == NULL || r->sink->columns == NULL)
    return 0;
  return r->sink->columns(r->sink->ctx, r->cols, (size_t)r->p->ncols, e);
}

static int on_batch(void *arg, const batch *b, err *e)
{
  run *r = arg;
  int rc = send_columns(r, e);
  if (rc < 0)
    return rc;
  if (b->nsel == 0)
    return 0;
  r->rows += (uint64_t)b->nsel;
  if (r->sink == NULL || r->sink->rows == NULL)
    return 0;
  sql_batch sb = {b, r->p->cols};
  return r->sink->rows(r->sink->ctx, &sb, e);
}

typedef struct progress_ctx {
  const sql_options *opt;
  qctx *q;
  run *r;
  int64_t start;
} progress_ctx;

static void on_progress(void *arg)
{
  progress_ctx *pc = arg;
  sql_stats s;
  memset(&s, 0, sizeof s);
  s.rows = pc->r->rows;
  s.bytes_scanned = atomic_load(&pc->q->bytes_scanned);
  s.objects_scanned = atomic_load(&pc->q->objects_scanned);
  s.elapsed_ms = (uint64_t)((time_mono_us() - pc->start) / 1000);
  s.cost_usd = sql_cost_usd(s.bytes_scanned);
  pc->opt->progress(pc->opt->progress_ctx, &s);
}

static uint64_t default_memory(void)
{
  long pages = sysconf(_SC_PHYS_PAGES);
  long psize = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || psize <= 0)
    return 1ull << 30;
  return (uint64_t)pages * (uint64_t)psize / 4;
}

/* one attempt; *resplit names an object whose ranges did not line up,
 * *guessed tells that some CSV range guessed where its first record starts
 * (guess false: none may). start and now_wall_us are the query's, taken
 * before its first attempt: the time limit is the whole query's, and
 * now() is the same in every attempt. */
static int run_once(const sql_objsrc *src, const char *sql, const sql_options *opt,
                    sql_sink *sink, sql_stats *stats, err *e, const char **seq, int nseq,
                    bool guess, int64_t start, int64_t now_wall_us, const char **resplit,
                    bool *guessed, bool *sent)
{
  qctx q;
  memset(&q, 0, sizeof q);
  pthread_mutex_init(&q.mu, NULL);
  q.a = arena_new();
  q.src = src;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  q.threads = opt != NULL && opt->threads > 0 ? opt->threads : (int)(ncpu > 0 ? ncpu : 1);
  if (q.threads > 256)
    q.threads = 256;
  q.mem_limit = opt != NULL && opt->memory_limit > 0 ? opt->memory_limit : default_memory();
  q.start_us = start;
  q.deadline_us = opt != NULL && opt->time_limit_ms > 0
                      ? start + (int64_t)opt->time_limit_ms * 1000
                      : 0;
  q.now_wall_us = now_wall_us;
  q.cancel = opt != NULL ? opt->cancel : NULL;
  q.cat = opt != NULL ? opt->catalog : NULL;
  q.database = opt != NULL ? opt->database : NULL;
  q.seq_objs = seq;
  q.nseq = nseq;
  q.csv_no_guess = !guess;
  sql_objsrc object_src;
  if (opt != NULL && opt->object != NULL) { /* S3 Select: one object, nothing else */
    sql__objsrc_object(&object_src, opt->object);
    q.src = &object_src;
    q.object = opt->object;
  }
  run r = {.sink = sink};
  progress_ctx pc = {.opt = opt, .q = &q, .r = &r, .start = start};
  if (opt != NULL && opt->progress != NULL) {
    q.progress = on_progress;
    q.progress_ctx = &pc;
  }
  sql_pos pos = {0, 0};
  ast_query *ast;
  ast_copy *copy;
  ast_ddl *ddl;
  plan *p = NULL;
  int rc = sql__parse_stmt(sql, q.a, &ast, &copy, &ddl, e, &pos);
  if (rc == 0)
    rc = copy != NULL  ? sql__copy_exec(&q, copy, &p, e, &pos)
         : ddl != NULL ? sql__ddl_exec(&q, ddl, &p, e, &pos)
                       : sql__bind(&q, ast, &p, e, &pos);
  if (rc == 0) {
    r.p = p;
    r.cols = arena_alloc(q.a, sizeof(sql_column) * (size_t)(p->ncols > 0 ? p->ncols : 1));
    for (int i = 0; i < p->ncols; i++) {
      r.cols[i].name = p->cols[i].name;
      r.cols[i].type = p->cols[i].type.t;
      r.cols[i].precision = p->cols[i].type.prec;
      r.cols[i].scale = p->cols[i].type.scale;
    }
    rc = sql__exec_stream(&q, p, on_batch, &r);
    if (rc < 0) {
      if (q.err_code != 0 && e != NULL)
        *e = q.err;
      if (q.resplit != NULL)
        *resplit = arena_strdup(q.a, q.resplit);
    } else {
      err e2;
      err_clear(&e2);
      rc = send_columns(&r, &e2);
      if (rc < 0 && e != NULL)
        *e = e2;
    }
  } else if (rc == ERR_INVALID && pos.line == 0 && q.err_code != 0 && e != NULL) {
    *e = q.err;
  }
  *sent = r.columns_sent;
  *guessed = atomic_load(&q.csv_guessed);
  sql__table_release_all(&q);
  sql__exec_run_deferred(&q);
  if (stats != NULL) {
    stats->rows = r.rows;
    stats->bytes_scanned = atomic_load(&q.bytes_scanned);
    stats->objects_scanned = atomic_load(&q.objects_scanned);
    stats->elapsed_ms = (uint64_t)((time_mono_us() - start) / 1000);
    stats->cost_usd = sql_cost_usd(stats->bytes_scanned);
    stats->error_line = rc < 0 ? pos.line : 0;
    stats->error_column = rc < 0 ? pos.col : 0;
  }
  /* the resplit name must outlive the arena */
  if (*resplit != NULL)
    *resplit = xstrdup(*resplit);
  arena_free(q.a);
  pthread_mutex_destroy(&q.mu);
  return rc;
}

int sql__run_src(const sql_objsrc *src, const char *sql, const sql_options *opt, sql_sink *sink,
                sql_stats *stats, err *e)
{
  const char *seq[8];
  int nseq = 0;
  err_clear(e);
  if (stats != NULL)
    memset(stats, 0, sizeof *stats);
  bool guess = true;
  /* retries (a resplit, a guess undone) run within the first attempt's time limit */
  int64_t start = time_mono_us();
  int64_t now_wall_us = time_now_ms() * 1000;
  for (;;) {
    const char *resplit = NULL;
    bool sent = false, guessed = false;
    int rc = run_once(src, sql, opt, sink, stats, e, seq, nseq, guess, start, now_wall_us,
                      &resplit, &guessed, &sent);
    if (rc < 0 && resplit != NULL && !sent && nseq < 8) {
      seq[nseq++] = resplit;
      err_clear(e);
      continue;
    }
    /* a failure after a guess may come from a range that started inside a
       quoted field (values of no record): again, without guessing */
    if (rc < 0 && guessed && !sent && rc != ERR_REQUEST_TIMEOUT) {
      free((void *)resplit);
      guess = false;
      err_clear(e);
      continue;
    }
    free((void *)resplit);
    for (int i = 0; i < nseq; i++)
      free((void *)seq[i]);
    return rc;
  }
}
