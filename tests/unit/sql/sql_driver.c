/* tests/unit/sql/sql_driver.c -- runs one SQL statement over a folder
 * (bucket = subfolder, key = path below it) and prints the result as CSV
 * with a header row, then the statistics on stderr.
 *
 *   sql_driver [-t THREADS] [-m MEMORY_MB] [-j] DIR "SQL"
 *
 * Why: the engine can be tested and measured without the server; the e2e
 * tests drive the real endpoint.
 * Exit code: 0, or 1 with "error: <message> (line L, column C)" on stderr.
 */
#include "base/buf.h"
#include "sql/exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct out {
  buf b;
  bool json;
  const sql_column *cols;
  size_t ncols;
} out;

static int on_columns(void *ctx, const sql_column *cols, size_t n, err *e)
{
  out *o = ctx;
  (void)e;
  o->cols = cols;
  o->ncols = n;
  if (o->json)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (i)
      buf_append(&o->b, ",", 1);
    buf_puts(&o->b, cols[i].name);
  }
  buf_append(&o->b, "\n", 1);
  return 0;
}

static int on_rows(void *ctx, const sql_batch *b, err *e)
{
  out *o = ctx;
  (void)e;
  size_t nr = sql_batch_rows(b), nc = sql_batch_columns(b);
  for (size_t r = 0; r < nr; r++) {
    if (o->json)
      buf_append(&o->b, "{", 1);
    for (size_t c = 0; c < nc; c++) {
      if (o->json) {
        if (c)
          buf_append(&o->b, ",", 1);
        buf_printf(&o->b, "\"%s\":", o->cols[c].name);
        sql_cell_json(b, c, r, &o->b);
      } else {
        if (c)
          buf_append(&o->b, ",", 1);
        sql_cell_csv(b, c, r, &o->b);
      }
    }
    buf_append(&o->b, o->json ? "}\n" : "\n", o->json ? 2 : 1);
    if (o->b.len > (1 << 20)) {
      fwrite(o->b.data, 1, o->b.len, stdout);
      buf_reset(&o->b);
    }
  }
  return 0;
}

int main(int argc, char **argv)
{
  sql_options opt;
  memset(&opt, 0, sizeof opt);
  out o;
  memset(&o, 0, sizeof o);
  int c;
  while ((c = getopt(argc, argv, "t:m:jT:")) != -1) {
    switch (c) {
    case 't': opt.threads = atoi(optarg); break;
    case 'm': opt.memory_limit = (uint64_t)atoll(optarg) << 20; break;
    case 'T': opt.time_limit_ms = (uint64_t)atoll(optarg); break;
    case 'j': o.json = true; break;
    default: return 2;
    }
  }
  if (argc - optind != 2) {
    fprintf(stderr, "usage: sql_driver [-t threads] [-m MB] [-j] DIR SQL\n");
    return 2;
  }
  buf_init(&o.b, (size_t)1 << 40);
  sql_objsrc src;
  sql__objsrc_dir(&src, argv[optind]);
  sql_sink sink = {&o, on_columns, on_rows};
  sql_stats st;
  err e;
  int rc = sql__run_src(&src, argv[optind + 1], &opt, &sink, &st, &e);
  if (o.b.len)
    fwrite(o.b.data, 1, o.b.len, stdout);
  buf_release(&o.b);
  sql__objsrc_dir_free(&src);
  if (rc < 0) {
    fprintf(stderr, "error: %s", e.msg);
    if (st.error_line > 0)
      fprintf(stderr, " (line %d, column %d)", st.error_line, st.error_column);
    fprintf(stderr, "\n");
    return 1;
  }
  fprintf(stderr, "rows=%llu bytes=%llu objects=%llu ms=%llu cost=$%.6f\n",
          (unsigned long long)st.rows, (unsigned long long)st.bytes_scanned,
          (unsigned long long)st.objects_scanned, (unsigned long long)st.elapsed_ms,
          st.cost_usd);
  return 0;
}
