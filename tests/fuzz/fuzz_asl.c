/* fuzz_asl.c -- libFuzzer target for the States Language: the definition
 * check over any bytes, and the same bytes as an intrinsic function call,
 * a JSONPath and a ResultPath over a fixed input. */
#include "flow/flow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  err e;
  json_t *doc = NULL;
  if (flow_definition_check((const char *)data, size, &doc, &e) == 0)
    json_decref(doc);
  if (size > 4096)
    return 0;
  char *s = malloc(size + 1);
  memcpy(s, data, size);
  s[size] = '\0';
  json_t *in = json_pack("{s:[i,i,s], s:{s:s}, s:n}", "a", 1, 2, "x", "o", "k", "v", "z");
  json_t *ctx = json_pack("{s:{s:s}}", "Execution", "Name", "n");
  json_t *out = NULL;
  if (flow_intrinsic_eval(s, in, ctx, &out, &e) == 0)
    json_decref(out);
  out = NULL;
  if (flow_path_get(s, in, ctx, &out, &e) == 0)
    json_decref(out);
  out = NULL;
  if (flow_path_set(in, s, ctx, &out, &e) == 0)
    json_decref(out);
  json_decref(in);
  json_decref(ctx);
  free(s);
  return 0;
}
