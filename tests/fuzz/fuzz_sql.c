/* fuzz_sql.c -- libFuzzer target for the SQL front end: any text either
 * parses and binds (against an empty folder, so tables fail to open) or
 * fails with ERR_INVALID and a position; nothing else may happen. Simple
 * statements without tables also run, which exercises the executor on
 * constants (casts, functions, CASE, arithmetic overflow). */
#include "sql/exec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 4096)
    return 0;
  char *sql = malloc(size + 1);
  memcpy(sql, data, size);
  sql[size] = '\0';
  sql_objsrc src;
  sql_objsrc_dir(&src, "/nonexistent-tarn-fuzz");
  sql_options opt;
  memset(&opt, 0, sizeof opt);
  opt.threads = 1;
  opt.memory_limit = 64u << 20;
  opt.time_limit_ms = 2000;
  sql_stats st;
  err e;
  int rc = sql__run_src(&src, sql, &opt, NULL, &st, &e);
  if (rc < 0 && e.msg[0] == '\0')
    abort(); /* every failure has a message */
  sql_objsrc_dir_free(&src);
  free(sql);
  return 0;
}
