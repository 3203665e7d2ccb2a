/* tests/unit/aws/test_json_load.c -- the fast JSON loader: what it builds
 * and refuses, each case checked against jansson's own loader; run by
 * test_sigv4.c's main. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/json_load.h"
#include "unit_aws.h"

#include <stdlib.h>
#include <string.h>

/* Both loaders on text: the same answer (equal values, or both refuse). */
static bool agrees(const char *text, bool want_ok)
{
  json_error_t je;
  err e = {0};
  json_t *ref = json_loadb(text, strlen(text), JSON_DECODE_ANY, &je);
  json_t *got = aws_json_load(text, strlen(text), &e);
  bool ok = (ref == NULL) == (got == NULL) && (ref == NULL || json_equal(ref, got)) &&
            (got != NULL) == want_ok && (got != NULL || e.code == ERR_INVALID);
  if (!ok)
    print_error("case %s: jansson %s, aws_json_load %s\n", text, ref ? "accepts" : je.text,
                got ? "accepts" : e.msg);
  json_decref(ref);
  json_decref(got);
  return ok;
}

static void test_json_load_accepts(void **state)
{
  (void)state;
  static const char *good[] = {
      "{}", "[]", " {\"a\" : [1, 2.5, -0, -0.0, 1e3, 1E-3, 12345678901234567]} ", "\"x\"", "0",
      "{\"a\":1,\"a\":2}", "{\"u\":\"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\\\\\"\"}",
      "[true,false,null]", "{\"k\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", "9223372036854775807",
      "-9223372036854775808", "1e308", "1e-400", "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\n\"]",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    assert_true(agrees(good[i], true));
}

static void test_json_load_refuses(void **state)
{
  (void)state;
  static const char *bad[] = {
      "", " ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "1.", ".5", "-", "1e", "+1",
      "9223372036854775808", "1e999", "\"\\u0000\"", "\"\\ud800\"", "\"\\udc00x\"",
      "\"\\x\"", "\"a\tb\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "tru", "nul",
      "{} x", "[1] [2]", "{\"a\":1}}", "\"unterminated", "\"\\u12\"", "NaN", "Infinity",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_true(agrees(bad[i], false));
}

static void test_json_load_depth(void **state)
{
  (void)state;
  /* deeper than jansson's and tarn's limit: refused, without a deep stack */
  size_t n = 100000;
  char *s = malloc(2 * n + 1);
  memset(s, '[', n);
  memset(s + n, ']', n);
  s[2 * n] = '\0';
  err e = {0};
  assert_null(aws_json_load(s, 2 * n, &e));
  assert_non_null(strstr(e.msg, "too deep"));
  free(s);
}

int unit_aws_json_load_run(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_load_accepts),
      cmocka_unit_test(test_json_load_refuses),
      cmocka_unit_test(test_json_load_depth),
  };
  return cmocka_run_group_tests_name("json_load", tests, NULL, NULL);
}
