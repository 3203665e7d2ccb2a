/* fuzz_sql.c -- libFuzzer target for the SQL front end: any text either
 * parses and binds (against an empty folder, so tables fail to open) or
 * fails with ERR_INVALID and a position; nothing else may happen. Simple
 * statements without tables also run, which exercises the executor on
 * constants (casts, functions, CASE, arithmetic overflow). DDL runs against
 * a table catalog in a temporary folder (made on the first input). */
#include "catalog/catalog.h"
#include "sql/exec.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static catalog *cat;
static char cat_dir[] = "/tmp/tarn-fuzz-sql-XXXXXX";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
  (void)st;
  (void)flag;
  (void)f;
  remove(path);
  return 0;
}

static void fuzz_catalog_drop(void)
{
  cat = catalog_close(cat);
  nftw(cat_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static catalog *fuzz_catalog(void)
{
  static int tried;
  if (!tried) {
    tried = 1;
    err e;
    if (mkdtemp(cat_dir) != NULL) {
      atexit(fuzz_catalog_drop);
      if (catalog_open(cat_dir, &cat, &e) != 0)
        cat = NULL;
    }
  }
  return cat;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 4096)
    return 0;
  char *sql = malloc(size + 1);
  memcpy(sql, data, size);
  sql[size] = '\0';
  sql_objsrc src;
  sql__objsrc_dir(&src, "/nonexistent-tarn-fuzz");
  sql_options opt;
  memset(&opt, 0, sizeof opt);
  opt.threads = 1;
  opt.memory_limit = 64u << 20;
  opt.time_limit_ms = 2000;
  opt.catalog = fuzz_catalog();
  sql_stats st;
  err e;
  int rc = sql__run_src(&src, sql, &opt, NULL, &st, &e);
  if (rc < 0 && e.msg[0] == '\0')
    abort(); /* every failure has a message */
  sql__objsrc_dir_free(&src);
  free(sql);
  return 0;
}
