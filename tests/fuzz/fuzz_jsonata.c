/* fuzz_jsonata.c -- libFuzzer target for the JSONata language
 * (flow/jsonata.c): any bytes parsed as an expression and, when they
 * parse, evaluated against a fixed document and variables; the bounds of
 * jsonata.h keep every evaluation short. The same bytes as a JSONata state's
 * Output go through the definition check. */
#include "flow/flow.h"
#include "flow/jsonata.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 4096)
    return 0;
  err e;
  jsonata *j = NULL;
  if (jsonata_parse((const char *)data, size, &j, &e) == 0) {
    json_t *in = json_loads("{\"a\": [1, 2, {\"b\": \"x\"}], \"o\": {\"k\": \"v\", \"n\": 1.5},"
                            " \"s\": \"hello\", \"z\": null, \"t\": true}", 0, NULL);
    json_t *vars = json_pack("{s:{s:O}, s:i, s:[s,s]}", "states", "input", in, "n", 3, "l",
                             "p", "q");
    json_t *out = NULL;
    if (jsonata_eval(j, in, vars, &out, &e) == 0)
      json_decref(out);
    json_decref(vars);
    json_decref(in);
    jsonata_free(j);
  }
  /* the definition check over the same expression */
  json_t *expr = json_stringn_nocheck((const char *)data, size);
  char *text = json_dumps(expr, JSON_ENCODE_ANY);
  json_decref(expr);
  if (text != NULL && strlen(text) > 2) {
    size_t n = strlen(text);
    char *def = malloc(n + 200);
    snprintf(def, n + 200, "{\"QueryLanguage\": \"JSONata\", \"StartAt\": \"P\", \"States\": "
             "{\"P\": {\"Type\": \"Pass\", \"Output\": \"{%%%.*s%%}\", \"End\": true}}}",
             (int)(n - 2), text + 1);
    json_t *doc = NULL;
    if (flow_definition_check(def, strlen(def), &doc, &e) == 0)
      json_decref(doc);
    free(def);
  }
  free(text);
  return 0;
}
