/* fuzz_json_load.c -- libFuzzer target, differential: aws_json_load (the
 * fast loader of request bodies) against jansson's json_loadb on any bytes.
 * Both must accept or both refuse, and what they build must be equal;
 * input with a NUL byte must be refused (json_load.c, invariant (1)). */
#include "aws/json_load.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  json_error_t je;
  err e = {0};
  json_t *ref = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
  json_t *got = aws_json_load((const char *)data, size, &e);
  if (memchr(data, 0, size) != NULL) {
    /* the documented difference: a NUL byte is always refused */
    if (got != NULL)
      abort();
    json_decref(ref);
    return 0;
  }
  if ((ref == NULL) != (got == NULL) || (ref != NULL && !json_equal(ref, got))) {
    fprintf(stderr, "json_load disagrees with jansson on %zu bytes: %.*s\n  jansson: %s\n  "
            "aws_json_load: %s\n", size, (int)(size < 300 ? size : 300), (const char *)data,
            ref != NULL ? "accepts" : je.text, got != NULL ? "accepts" : e.msg);
    abort();
  }
  json_decref(ref);
  json_decref(got);
  return 0;
}
