/* fuzz_ddb_expr.c -- libFuzzer target for the DynamoDB expression language
 * (kv/expr.c): the first byte picks the kind (condition, update,
 * projection, key condition), the rest is the expression; whatever parses
 * is evaluated or applied over a fixed item with every attribute type. */
#include "kv/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const item_text =
    "{\"a\":{\"N\":\"10\"},\"s\":{\"S\":\"hello\"},\"b\":{\"B\":\"AAE=\"},"
    "\"l\":{\"L\":[{\"N\":\"1\"},{\"M\":{\"x\":{\"S\":\"y\"}}}]},\"m\":{\"M\":{\"k\":{\"SS\":[\"p\"]}}},"
    "\"ns\":{\"NS\":[\"1\",\"2\"]},\"t\":{\"BOOL\":true},\"z\":{\"NULL\":true}}";
static const char *const values_text =
    "{\":n\":{\"N\":\"1\"},\":s\":{\"S\":\"he\"},\":l\":{\"L\":[{\"N\":\"2\"}]},"
    "\":ss\":{\"SS\":[\"q\"]},\":ns\":{\"NS\":[\"3\"]},\":t\":{\"S\":\"N\"},\":b\":{\"B\":\"AA==\"}}";
static const char *const names_text = "{\"#a\":\"a\",\"#l\":\"l\",\"#m\":\"m\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1 || size > KV_EXPR_MAX + 1)
    return 0;
  char *text = malloc(size);
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  json_t *item = json_loads(item_text, 0, NULL);
  json_t *values = json_loads(values_text, 0, NULL);
  json_t *names = json_loads(names_text, 0, NULL);
  arena *a = arena_new();
  kx_ctx cx;
  kv__ctx_init(&cx, a, names, values);
  kx_node *n = NULL;
  err e = {0};
  switch (data[0] % 4) {
  case 0:
    if (kv__parse_condition(&cx, text, "ConditionExpression", &n, &e) == 0) {
      bool out;
      kv__eval_condition(n, item, &out, &e);
      kv__eval_condition(n, NULL, &out, &e);
    }
    break;
  case 1:
    if (kv__parse_update(&cx, text, &n, &e) == 0) {
      json_t *touched = json_object();
      json_t *out = NULL;
      if (kv__apply_update(n, item, &out, touched, &e) == 0)
        json_decref(out);
      json_decref(touched);
    }
    break;
  case 2:
    if (kv__parse_projection(&cx, text, &n, &e) == 0)
      json_decref(kv__project(n, item));
    break;
  default: {
    kx_keycond kc;
    if (kv__parse_keycond(&cx, text, &kc, &e) == 0)
      (void)kv__keycond_match(&kc, json_object_get(item, "a"));
    break;
  }
  }
  kv__ctx_check_unused(&cx, &e);
  kv__ctx_release(&cx);
  arena_free(a);
  json_decref(item);
  json_decref(values);
  json_decref(names);
  free(text);
  return 0;
}
