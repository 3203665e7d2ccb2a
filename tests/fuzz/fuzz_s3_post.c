/* fuzz_s3_post.c -- libFuzzer target for the browser POST form parser and
 * the POST policy checker (api/s3_post_form.c).
 *
 * The input's first byte picks where to split the body into two feeds; the
 * rest is a multipart/form-data body with the boundary "B". When the file
 * part begins, the field "policy" (raw JSON here, not base64, so mutations
 * reach the checker) is checked against the fields. Nothing may crash, read
 * out of bounds or leak.
 */
#include "api/s3_post_form.h"

#include <stdint.h>
#include <string.h>

typedef struct fuzz_ctx {
  s3_form *form;
  arena *a;
  size_t file_bytes;
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
  return s3_post_policy_check(f->a, policy, strlen(policy), fields, n, "bk", 1767225600000LL, &lo,
                              &hi, e) == ERR_INTERNAL ? ERR_INTERNAL : 0;
}

static int on_file_data(void *ctx, const void *p, size_t n, err *e)
{
  fuzz_ctx *f = ctx;
  (void)p;
  (void)e;
  f->file_bytes += n;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  size_t split = size > 1 ? data[0] % size : 0;
  const uint8_t *body = data + 1;
  size_t blen = size - 1;
  if (split > blen)
    split = blen;
  fuzz_ctx f = {.a = arena_new()};
  s3_form_cb cb = {.file_begin = on_file_begin, .file_data = on_file_data, .ctx = &f};
  err e = {0};
  if (s3_form_new(f.a, "multipart/form-data; boundary=B", &cb, &f.form, &e) == 0) {
    if (s3_form_feed(f.form, body, split, &e) == 0 &&
        s3_form_feed(f.form, body + split, blen - split, &e) == 0)
      s3_form_finish(f.form, &e);
    f.form = s3_form_free(f.form);
  }
  arena_free(f.a);
  return 0;
}
