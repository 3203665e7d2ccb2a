/* fuzz_glue_expr.c -- libFuzzer target for the catalog's filters
 * (catalog/expr.c): the first byte picks the GetPartitions predicate or
 * the GetTables name pattern, the rest is the text; whatever parses is
 * matched against a few partitions (numeric and text keys, a value that is
 * not a number) or names. */
#include "catalog/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys_text =
    "[{\"Name\":\"year\",\"Type\":\"int\"},{\"Name\":\"month\",\"Type\":\"string\"},"
    "{\"Name\":\"amount\",\"Type\":\"decimal(10,2)\"}]";
static const char *const parts_text =
    "[[\"2024\",\"01\",\"1.5\"],[\"x\",\"\",\"-0\"],[\"1e400\",\"%_\",\"nan\"],[\"1\"]]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1 || size > CATALOG_MAX_EXPRESSION + 2)
    return 0;
  char *text = malloc(size);
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  err e = {0};
  if (data[0] % 2 == 0) {
    json_t *keys = json_loads(keys_text, 0, NULL);
    json_t *parts = json_loads(parts_text, 0, NULL);
    catalog_expr *x = NULL;
    if (catalog_expr_parse(text, keys, &x, &e) == 0) {
      size_t i;
      json_t *p;
      json_array_foreach(parts, i, p) catalog_expr_match(x, p);
    }
    catalog_expr_free(x);
    json_decref(keys);
    json_decref(parts);
  } else {
    catalog_pattern *p = NULL;
    if (catalog__pattern_compile(text, &p, &e) == 0) {
      catalog__pattern_match(p, "sales_2024");
      catalog__pattern_match(p, "");
    }
    catalog__pattern_free(p);
  }
  free(text);
  return 0;
}
