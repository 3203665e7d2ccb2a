/* fuzz_chunked.c -- libFuzzer target for the aws-chunked decoder.
 *
 * The input's first byte picks the mode and where to split the body into
 * two feeds; the rest is the body. The decoder must never crash, read out
 * of bounds or leak, whatever the framing.
 */
#include "aws/chunked.h"

#include <stdint.h>
#include <string.h>

static int sink(void *ctx, const void *p, size_t n, err *e)
{
  (void)ctx;
  (void)p;
  (void)n;
  (void)e;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  sigv4_result auth;
  memset(&auth, 0, sizeof auth);
  strcpy(auth.amz_date, "20130524T000000Z");
  strcpy(auth.scope, "20130524/us-east-1/s3/aws4_request");
  strcpy(auth.signature, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
  chunked_mode mode = (chunked_mode)(data[0] % 3);
  size_t split = data[1] % (size - 1);
  aws_chunked *c = aws_chunked_new(mode, &auth);
  err e = {0};
  if (aws_chunked_feed(c, data + 2, split, sink, NULL, &e) == 0 &&
      aws_chunked_feed(c, data + 2 + split, size - 2 - split, sink, NULL, &e) == 0)
    aws_chunked_finish(c, &e);
  aws_chunked_free(c);
  return 0;
}
