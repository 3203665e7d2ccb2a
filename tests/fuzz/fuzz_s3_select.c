/* fuzz_s3_select.c -- libFuzzer target for S3 Select's statement check and
 * input cuts (api/s3_select_input.c): the first byte picks the options
 * (input format, header, record delimiter, comment character, the scan
 * range), the rest is used as the statement and as the object's bytes. */
#include "api/s3_select.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  uint8_t k = data[0];
  const char *p = (const char *)data + 1;
  size_t n = size - 1;
  static const char *const rdelims[] = {"\n", "\r\n", "~", "||"};
  sel_req r;
  memset(&r, 0, sizeof r);
  r.in = (k & 1) ? SQL_OBJECT_JSON : SQL_OBJECT_CSV;
  r.header = (enum header_mode)((k >> 1) % 3);
  r.rdelim = r.in == SQL_OBJECT_JSON ? "\n" : rdelims[(k >> 3) & 3];
  r.comments = (k & 0x20) ? '#' : 0;
  r.delim = ',';
  r.quote = '"';
  arena *a = arena_new();
  r.expr = arena_strndup(a, p, n);
  sel_err se = {0};
  const char *sql = NULL;
  if (s3_select_check_sql(a, &r, &sql, &se) == 0 && sql == NULL)
    abort();
  sel_writer w = {.fd = open("/dev/null", O_WRONLY | O_CLOEXEC)};
  buf_init(&w.b, 8u << 20);
  (void)s3_select_in_place(&r, p, n);
  uint64_t lo = (k & 0x40) ? n / 3 : 0;
  uint64_t hi = (k & 0x80) ? n / 2 : UINT64_MAX;
  (void)s3_select_cut_records(&r, p, n, lo, hi, &w, &se);
  sel_writer_flush(&w);
  (void)s3_select_json_lines(p, n, &w, &se);
  sel_writer_flush(&w);
  buf_release(&w.b);
  if (w.fd >= 0)
    close(w.fd);
  arena_free(a);
  return 0;
}
