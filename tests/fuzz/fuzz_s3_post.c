/* fuzz_s3_post.c -- libFuzzer target for the browser POST form parser and
 * the POST policy checker (api/s3_post_form.c).
 *
 * The input's first two bytes pick where to cut the body into three feeds;
 * the rest is a multipart/form-data body with the boundary "B". When the
 * file part begins, the field "policy" (raw JSON here, not base64, so
 * mutations reach the checker) is checked against the fields. Nothing may
 * crash, read out of bounds or leak, and the body fed whole or in pieces
 * must give the same result and the same file bytes (differential).
 */
#include "api/s3_post_form.h"

#include "base/hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct fuzz_ctx {
  s3_form *form;
  arena *a;
  hasher md5;          /* of the file's bytes */
  uint64_t file_bytes;
  int policy_rc;
} fuzz_ctx;

static int on_file_begin(void *ctx, const char *filename, err *e)
{
  fuzz_ctx *f = ctx;
  (void)filename;
  size_t n;
  const str_pair *fields = s3_form_fields(f->form, &n);
  const char *policy = s3_form_field(f->form, "policy");
  if (policy == NULL)
    return 0;
  uint64_t lo;
  uint64_t hi;
  /* 2026-01-01T00:00:00Z */
  f->policy_rc = s3_post_policy_check(f->a, policy, strlen(policy), fields, n, "bk",
                                      1767225600000LL, &lo, &hi, e);
  err_clear(e);
  return 0;
}

static int on_file_data(void *ctx, const void *p, size_t n, err *e)
{
  fuzz_ctx *f = ctx;
  (void)e;
  if (n == 0)
    abort();  /* never called for nothing */
  hash_update(&f->md5, p, n);
  f->file_bytes += n;
  return 0;
}

typedef struct outcome {
  int rc;
  int policy_rc;
  uint64_t file_bytes;
  uint8_t md5[MD5_LEN];
  size_t nfields;
} outcome;

static void run(const uint8_t *body, size_t n, const size_t cuts[2], outcome *out)
{
  fuzz_ctx f = {.a = arena_new()};
  hash_init(&f.md5, HASH_MD5);
  s3_form_cb cb = {.file_begin = on_file_begin, .file_data = on_file_data, .ctx = &f};
  err e = {0};
  int rc = s3_form_new(f.a, "multipart/form-data; boundary=B", &cb, &f.form, &e);
  if (rc == 0) {
    size_t at = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
      size_t end = i < 2 ? cuts[i] : n;
      rc = s3_form_feed(f.form, body + at, end - at, &e);
      at = end;
    }
    if (rc == 0)
      rc = s3_form_finish(f.form, &e);
    s3_form_fields(f.form, &out->nfields);
    f.form = s3_form_free(f.form);
  }
  out->rc = rc;
  out->policy_rc = f.policy_rc;
  out->file_bytes = f.file_bytes;
  hash_final(&f.md5, out->md5);
  hash_release(&f.md5);
  arena_free(f.a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  const uint8_t *body = data + 2;
  size_t n = size - 2;
  size_t c1 = n > 0 ? (size_t)data[0] * 37 % (n + 1) : 0;
  size_t c2 = n > 0 ? (size_t)data[1] * 53 % (n + 1) : 0;
  size_t cuts[2] = {c1 < c2 ? c1 : c2, c1 < c2 ? c2 : c1};
  size_t whole[2] = {n, n};
  outcome a = {0};
  outcome b = {0};
  run(body, n, whole, &a);
  run(body, n, cuts, &b);
  if (a.rc != b.rc || a.policy_rc != b.policy_rc || a.nfields != b.nfields)
    abort();
  if (a.rc == 0 && (a.file_bytes != b.file_bytes || memcmp(a.md5, b.md5, MD5_LEN) != 0))
    abort();
  return 0;
}
