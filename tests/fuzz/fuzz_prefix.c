/* fuzz_prefix.c -- libFuzzer target for Firehose's prefix expressions and
 * the jq subset of dynamic partitioning (stream/prefix.c): the input's
 * first line is a prefix, the second a query, the rest a JSON record. */
#include "stream/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = '\0';
  char *query = strchr(text, '\n');
  char *record = NULL;
  if (query != NULL) {
    *query++ = '\0';
    record = strchr(query, '\n');
    if (record != NULL)
      *record++ = '\0';
  }
  arena *a = arena_new();
  err e = {0};
  json_t *rec = record != NULL ? json_loads(record, 0, NULL) : NULL;
  json_t *keys = query != NULL && json_is_object(rec) ? stream__query_eval(query, rec, &e) : NULL;
  stream__prefix_eval(text, (int64_t)size * 1000003, (size & 1) ? "processing-failed" : NULL,
                      keys, a, &e);
  json_decref(keys);
  json_decref(rec);
  arena_free(a);
  free(text);
  return 0;
}
