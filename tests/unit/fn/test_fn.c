/* tests/unit/fn/test_fn.c -- unit tests of fn/: the zip checks (zip-slip,
 * absolute paths, symlinks out, duplicates, size limits, modes kept) and
 * the registry (functions, versions, aliases, concurrency, validation,
 * persistence across a reopen). No sandbox runs here: fn_system_open does
 * not need one; invocations are tested end to end (tests/e2e/test_lambda*).
 *
 * Zips are written with libzip into a temporary file, then read back into
 * memory, so every entry's name, type and mode is exactly what a test says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fn/fn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

typedef struct entry {
  const char *name;
  const char *data;  /* NULL for a folder */
  unsigned mode;     /* with its S_IFMT type bits */
} entry;

/* A zip of the entries, in memory (caller frees). */
static char *make_zip(const entry *es, size_t n, size_t *len)
{
  char path[] = "/tmp/tarn-fn-zip-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  int zerr = 0;
  zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
  assert_non_null(z);
  for (size_t i = 0; i < n; i++) {
    zip_int64_t idx;
    if (es[i].data == NULL) {
      idx = zip_dir_add(z, es[i].name, ZIP_FL_ENC_RAW);
    } else {
      zip_source_t *src = zip_source_buffer(z, es[i].data, strlen(es[i].data), 0);
      idx = zip_file_add(z, es[i].name, src, ZIP_FL_ENC_RAW | ZIP_FL_OVERWRITE);
    }
    assert_true(idx >= 0);
    assert_int_equal(zip_file_set_external_attributes(z, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX,
                                                      (zip_uint32_t)es[i].mode << 16),
                     0);
  }
  assert_int_equal(zip_close(z), 0);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *data = malloc((size_t)size);
  assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  unlink(path);
  *len = (size_t)size;
  return data;
}

static char tmpdir[64];

static int setup(void **state)
{
  snprintf(tmpdir, sizeof tmpdir, "/tmp/tarn-fn-XXXXXX");
  return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static bool exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

static int extract(const entry *es, size_t n, uint64_t max, err *e)
{
  size_t len;
  char *zip = make_zip(es, n, &len);
  char dir[128];
  snprintf(dir, sizeof dir, "%s/out", tmpdir);
  uint64_t unzipped = 0;
  int rc = fn_code_extract(zip, len, dir, max, &unzipped, e);
  free(zip);
  return rc;
}

/* ---- the zip checks ---- */

static void test_zip_good(void **state)
{
  entry es[] = {
      {"bootstrap", "#!/bin/sh\necho hi\n", S_IFREG | 0755},
      {"lib/", NULL, S_IFDIR | 0755},
      {"lib/helper.py", "x = 1\n", S_IFREG | 0600},
      {"deep/a/b/c.txt", "c", S_IFREG | 0644},
      {"lib/link.py", "helper.py", S_IFLNK | 0777},
      {"deep/a/b/up", "../../../lib", S_IFLNK | 0777},
  };
  err e = {0};
  assert_int_equal(extract(es, 6, 1 << 20, &e), 0);
  char p[256];
  struct stat st;
  snprintf(p, sizeof p, "%s/out/bootstrap", tmpdir);
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0755); /* the exec bit is kept */
  snprintf(p, sizeof p, "%s/out/lib/helper.py", tmpdir);
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0644); /* readable by the sandbox's user */
  snprintf(p, sizeof p, "%s/out/lib/link.py", tmpdir);
  assert_int_equal(lstat(p, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  assert_int_equal(stat(p, &st), 0); /* resolves */
  snprintf(p, sizeof p, "%s/out/deep/a/b/up/helper.py", tmpdir);
  assert_int_equal(stat(p, &st), 0);
}

static void test_zip_slip(void **state)
{
  entry es[] = {{"../evil.txt", "x", S_IFREG | 0644}};
  err e = {0};
  assert_int_equal(extract(es, 1, 1 << 20, &e), ERR_INVALID);
  assert_non_null(strstr(e.msg, "leads out of its folder"));
  char p[256];
  snprintf(p, sizeof p, "%s/evil.txt", tmpdir);
  assert_false(exists(p));
  snprintf(p, sizeof p, "%s/out", tmpdir);
  assert_false(exists(p)); /* nothing left behind */

  entry es2[] = {{"a/../../evil.txt", "x", S_IFREG | 0644}};
  assert_int_equal(extract(es2, 1, 1 << 20, &e), ERR_INVALID);
  assert_false(exists(p));
}

static void test_zip_absolute(void **state)
{
  entry es[] = {{"/tmp/tarn-absolute-evil", "x", S_IFREG | 0644}};
  err e = {0};
  assert_int_equal(extract(es, 1, 1 << 20, &e), ERR_INVALID);
  assert_non_null(strstr(e.msg, "absolute"));
  assert_false(exists("/tmp/tarn-absolute-evil"));
}

static void test_zip_symlink_out(void **state)
{
  const char *targets[] = {"/etc/passwd", "..", "../x", "a/../../x", "sub/../..", ""};
  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
    entry es[] = {{"sub/", NULL, S_IFDIR | 0755}, {"link", targets[i], S_IFLNK | 0777}};
    err e = {0};
    assert_int_equal(extract(es, 2, 1 << 20, &e), ERR_INVALID);
    char p[256];
    snprintf(p, sizeof p, "%s/out", tmpdir);
    assert_false(exists(p));
  }
  /* A file written "through" a symlink: the link is made last, so the file
   * lands in a real folder or the zip is refused; nothing goes out. */
  entry es[] = {{"d", "..", S_IFLNK | 0777}, {"d/escape.txt", "x", S_IFREG | 0644}};
  err e = {0};
  assert_int_equal(extract(es, 2, 1 << 20, &e), ERR_INVALID);
  char p[256];
  snprintf(p, sizeof p, "%s/escape.txt", tmpdir);
  assert_false(exists(p));
}

static void test_zip_duplicates_and_types(void **state)
{
  entry dup[] = {{"a.txt", "1", S_IFREG | 0644}, {"./a.txt", "2", S_IFREG | 0644}};
  err e = {0};
  assert_int_equal(extract(dup, 2, 1 << 20, &e), ERR_INVALID);
  entry fifo[] = {{"pipe", "", S_IFIFO | 0644}};
  assert_int_equal(extract(fifo, 1, 1 << 20, &e), ERR_INVALID);
  entry dev[] = {{"dev", "", S_IFCHR | 0644}};
  assert_int_equal(extract(dev, 1, 1 << 20, &e), ERR_INVALID);
}

static void test_zip_size_limit(void **state)
{
  /* 2 MB of zeros compresses to a few KB: the limit counts inflated bytes. */
  size_t n = 2u << 20;
  char *big = malloc(n + 1);
  memset(big, '0', n);
  big[n] = '\0';
  entry es[] = {{"big.txt", big, S_IFREG | 0644}};
  err e = {0};
  assert_int_equal(extract(es, 1, 1 << 20, &e), ERR_INVALID);
  assert_non_null(strstr(e.msg, "Unzipped size must be smaller than"));
  char p[256];
  snprintf(p, sizeof p, "%s/out", tmpdir);
  assert_false(exists(p));
  assert_int_equal(extract(es, 1, 4 << 20, &e), 0);
  free(big);
}

static void test_zip_garbage(void **state)
{
  err e = {0};
  uint64_t u = 0;
  char dir[128];
  snprintf(dir, sizeof dir, "%s/out", tmpdir);
  assert_int_equal(fn_code_extract("PK\x03\x04garbage", 12, dir, 1 << 20, &u, &e), ERR_INVALID);
  assert_non_null(strstr(e.msg, "Could not unzip uploaded file"));
  assert_false(exists(dir));
}

/* ---- the registry ---- */

static fn_system *open_system(void)
{
  fn_options o = {.data_dir = tmpdir, .runtime_dir = "/nonexistent",
                  .runtime_socket = "/nonexistent/r.sock", .platform_socket = "/nonexistent/p.sock",
                  .access_key = "AK", .secret_key = "SK", .account_concurrency = 200};
  fn_system *s = NULL;
  err e = {0};
  assert_int_equal(fn_system_open(&o, &s, &e), 0);
  return s;
}

static void add_code(fn_system *s, const char *body, fn_code *code)
{
  entry es[] = {{"app.py", body, S_IFREG | 0644}};
  size_t len;
  char *zip = make_zip(es, 1, &len);
  err e = {0};
  assert_int_equal(fn_code_add(s, zip, len, code, &e), 0);
  free(zip);
  char p[256];
  snprintf(p, sizeof p, "%s/fn/code/%s/app.py", tmpdir, code->sha256_hex);
  assert_true(exists(p));
  assert_int_equal(strlen(code->sha256_b64), 44);
}

static void test_registry(void **state)
{
  fn_system *s = open_system();
  arena *a = arena_new();
  fn_code code;
  add_code(s, "def h(e, c): return 1\n", &code);
  str_pair env[] = {{"COLOR", "blue"}};
  fn_settings set = {.runtime = "python3.12", .handler = "app.h", .memory_mb = 256,
                     .set_env = true, .env = env, .nenv = 1};
  fn_config cfg;
  err e = {0};
  assert_int_equal(fn_function_create(s, "f1", &set, &code, false, a, &cfg, &e), 0);
  assert_string_equal(cfg.version, "$LATEST");
  assert_int_equal(cfg.memory_mb, 256);
  assert_int_equal(cfg.timeout_s, 3);
  assert_int_equal(cfg.ephemeral_mb, 512);
  assert_string_equal(cfg.arn, "arn:aws:lambda:us-east-1:000000000000:function:f1");
  assert_int_equal(fn_function_create(s, "f1", &set, &code, false, a, &cfg, &e), ERR_CONFLICT);

  /* bad settings change nothing */
  fn_settings bad = set;
  bad.runtime = "cobol";
  assert_int_equal(fn_function_create(s, "f2", &bad, &code, false, a, &cfg, &e), ERR_INVALID);
  bad = set;
  bad.memory_mb = 64;
  assert_int_equal(fn_function_create(s, "f2", &bad, &code, false, a, &cfg, &e), ERR_INVALID);
  str_pair reserved[] = {{"AWS_REGION", "x"}};
  bad = set;
  bad.env = reserved;
  assert_int_equal(fn_function_create(s, "f2", &bad, &code, false, a, &cfg, &e), ERR_INVALID);
  assert_int_equal(fn_function_create(s, "bad name!", &set, &code, false, a, &cfg, &e),
                   ERR_INVALID);
  assert_int_equal(fn_function_get(s, "f2", NULL, a, &cfg, &e), ERR_NOT_FOUND);

  /* versions */
  fn_config v1;
  assert_int_equal(fn_version_publish(s, "f1", NULL, "first", NULL, a, &v1, &e), 0);
  assert_string_equal(v1.version, "1");
  assert_string_equal(v1.description, "first");
  fn_config again;
  assert_int_equal(fn_version_publish(s, "f1", NULL, NULL, NULL, a, &again, &e), 0);
  assert_string_equal(again.version, "1"); /* nothing changed: the same version */
  fn_settings upd = {.timeout_s = 10};
  assert_int_equal(fn_function_update_config(s, "f1", &upd, a, &cfg, &e), 0);
  assert_int_equal(cfg.timeout_s, 10);
  assert_int_equal(cfg.memory_mb, 256); /* kept */
  upd.revision_id = "stale";
  assert_int_equal(fn_function_update_config(s, "f1", &upd, a, &cfg, &e), ERR_PRECONDITION);
  fn_config v2;
  assert_int_equal(fn_version_publish(s, "f1", NULL, NULL, NULL, a, &v2, &e), 0);
  assert_string_equal(v2.version, "2");
  assert_int_equal(v2.timeout_s, 10);
  fn_config got;
  assert_int_equal(fn_function_get(s, "f1", "1", a, &got, &e), 0);
  assert_int_equal(got.timeout_s, 3);

  /* aliases */
  fn_alias al;
  assert_int_equal(fn_alias_create(s, "f1", "live", "1", NULL, a, &al, &e), 0);
  assert_int_equal(fn_alias_create(s, "f1", "live", "1", NULL, a, &al, &e), ERR_CONFLICT);
  assert_int_equal(fn_alias_create(s, "f1", "123", "1", NULL, a, &al, &e), ERR_INVALID);
  assert_int_equal(fn_alias_create(s, "f1", "x", "9", NULL, a, &al, &e), ERR_NOT_FOUND);
  assert_int_equal(fn_function_get(s, "f1", "live", a, &got, &e), 0);
  assert_string_equal(got.version, "1");
  assert_int_equal(fn_function_delete(s, "f1", "1", &e), ERR_CONFLICT);
  assert_int_equal(fn_alias_update(s, "f1", "live", "2", NULL, NULL, a, &al, &e), 0);
  assert_int_equal(fn_function_delete(s, "f1", "1", &e), 0);
  assert_int_equal(fn_function_get(s, "f1", "1", a, &got, &e), ERR_NOT_FOUND);

  /* concurrency: the account keeps 100 unreserved */
  assert_int_equal(fn_concurrency_put(s, "f1", 101, &e), ERR_INVALID);
  assert_int_equal(fn_concurrency_put(s, "f1", 100, &e), 0);
  int rsv = -2;
  assert_int_equal(fn_concurrency_get(s, "f1", &rsv, &e), 0);
  assert_int_equal(rsv, 100);

  /* names */
  const char *name;
  const char *q;
  assert_int_equal(fn_name_parse("arn:aws:lambda:us-east-1:000000000000:function:f1:live", NULL,
                                 a, &name, &q, &e), 0);
  assert_string_equal(name, "f1");
  assert_string_equal(q, "live");
  assert_int_equal(fn_name_parse("000000000000:function:f1", "2", a, &name, &q, &e), 0);
  assert_string_equal(q, "2");
  assert_int_equal(fn_name_parse("f1:1", "2", a, &name, &q, &e), ERR_INVALID);

  /* everything is still there after a reopen */
  fn_system_close(s);
  s = open_system();
  assert_int_equal(fn_function_get(s, "f1", "live", a, &got, &e), 0);
  assert_string_equal(got.version, "2");
  assert_int_equal(got.timeout_s, 10);
  assert_int_equal(got.reserved_concurrency, 100);
  assert_int_equal(got.nenv, 1);
  assert_string_equal(got.env[0].value, "blue");
  fn_config *list;
  size_t n;
  const char *next;
  assert_int_equal(fn_version_list(s, "f1", NULL, 10, a, &list, &n, &next, &e), 0);
  assert_int_equal(n, 2); /* $LATEST and 2 */
  assert_string_equal(list[1].version, "2");

  /* delete removes all, and the code folder goes at the next open */
  assert_int_equal(fn_function_delete(s, "f1", NULL, &e), 0);
  assert_int_equal(fn_function_get(s, "f1", NULL, a, &got, &e), ERR_NOT_FOUND);
  fn_system_close(s);
  s = open_system();
  assert_int_equal(fn_function_list(s, NULL, 50, true, a, &list, &n, &next, &e), 0);
  assert_int_equal(n, 0);
  char p[256];
  snprintf(p, sizeof p, "%s/fn/code/%s", tmpdir, code.sha256_hex);
  assert_false(exists(p));
  fn_system_close(s);
  arena_free(a);
}

static void test_list_pages(void **state)
{
  fn_system *s = open_system();
  arena *a = arena_new();
  fn_code code;
  add_code(s, "x = 1\n", &code);
  fn_settings set = {.runtime = "provided.al2023"};
  err e = {0};
  fn_config cfg;
  char name[16];
  for (int i = 0; i < 7; i++) {
    snprintf(name, sizeof name, "fn-%d", 6 - i);
    assert_int_equal(fn_function_create(s, name, &set, &code, false, a, &cfg, &e), 0);
  }
  const char *marker = NULL;
  int seen = 0;
  do {
    fn_config *list;
    size_t n;
    assert_int_equal(fn_function_list(s, marker, 3, false, a, &list, &n, &marker, &e), 0);
    for (size_t i = 0; i < n; i++) {
      snprintf(name, sizeof name, "fn-%d", seen++);
      assert_string_equal(list[i].name, name);
    }
  } while (marker != NULL);
  assert_int_equal(seen, 7);
  fn_system_close(s);
  arena_free(a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_zip_good, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zip_slip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zip_absolute, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zip_symlink_out, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zip_duplicates_and_types, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zip_size_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zip_garbage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
