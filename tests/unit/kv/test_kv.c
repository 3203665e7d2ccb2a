/* tests/unit/kv/test_kv.c -- the kv part's pure pieces: exact decimals
 * (parse, format, add, order), the order-preserving key encoding, the item
 * codec, and the expression parser and evaluator; then the part itself over
 * a temporary directory (put, condition, reopen).
 */
#include "kv/internal.h"

#include "base/buf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void canon(const char *in, const char *want)
{
  kv_num n;
  err e = {0};
  assert_int_equal(kv__num_parse(in, &n, &e), 0);
  char out[KV_NUM_TEXT];
  kv__num_format(&n, out);
  assert_string_equal(out, want);
}

static void test_num_parse_format(void **state)
{
  canon("0", "0");
  canon("-0.000", "0");
  canon("1.500", "1.5");
  canon("0.001", "0.001");
  canon("+12e2", "1200");
  canon("-1.25E-3", "-0.00125");
  canon("12345678901234567890123456789012345678", "12345678901234567890123456789012345678");
  canon("1E+100", "1E+100");
  canon("00042", "42");
  kv_num n;
  err e = {0};
  assert_int_equal(kv__num_parse("1.23456789012345678901234567890123456789", &n, &e),
                   KV_ERR_VALIDATION);
  assert_non_null(strstr(e.msg, "38 significant digits"));
  assert_int_equal(kv__num_parse("1E126", &n, &e), KV_ERR_VALIDATION);
  assert_int_equal(kv__num_parse("1E-131", &n, &e), KV_ERR_VALIDATION);
  assert_int_equal(kv__num_parse("abc", &n, &e), KV_ERR_VALIDATION);
  assert_int_equal(kv__num_parse("1.2.3", &n, &e), KV_ERR_VALIDATION);
  assert_int_equal(kv__num_parse("", &n, &e), KV_ERR_VALIDATION);
  assert_int_equal(kv__num_parse("1e", &n, &e), KV_ERR_VALIDATION);
  assert_int_equal(kv__num_parse(".5", &n, &e), 0);
}

static void sum(const char *a, const char *b, bool sub, const char *want)
{
  kv_num x, y, r;
  err e = {0};
  assert_int_equal(kv__num_parse(a, &x, &e), 0);
  assert_int_equal(kv__num_parse(b, &y, &e), 0);
  assert_int_equal(kv__num_add(&x, &y, sub, &r, &e), 0);
  char out[KV_NUM_TEXT];
  kv__num_format(&r, out);
  assert_string_equal(out, want);
}

static void test_num_add(void **state)
{
  sum("0.1", "0.2", false, "0.3");
  sum("1", "1", true, "0");
  sum("-5", "3", false, "-2");
  sum("3", "-5", true, "8");
  sum("99999999999999999999999999999999999999", "0", false,
      "99999999999999999999999999999999999999");
  sum("9.99", "0.01", false, "10");
  sum("1000", "0.001", true, "999.999");
  kv_num x, y, r;
  err e = {0};
  kv__num_parse("99999999999999999999999999999999999999", &x, &e);
  kv__num_parse("0.1", &y, &e);
  assert_int_equal(kv__num_add(&x, &y, false, &r, &e), KV_ERR_VALIDATION);
}

/* Keys of increasing numbers must compare increasing byte-wise, and no key
 * is a prefix of another. */
static void test_num_key_order(void **state)
{
  const char *order[] = {"-1E+125", "-100", "-10", "-9.5", "-1.55", "-1.5", "-1", "-0.001",
                         "-1E-130", "0", "1E-130", "0.001", "0.0011", "1", "1.5", "1.55", "9.5",
                         "10", "100", "9.9999999999999999999999999999999999999E+125"};
  size_t n = sizeof order / sizeof order[0];
  uint8_t keys[20][KV_NUM_KEY];
  size_t lens[20];
  for (size_t i = 0; i < n; i++) {
    kv_num x;
    err e = {0};
    assert_int_equal(kv__num_parse(order[i], &x, &e), 0);
    lens[i] = kv__num_key(&x, keys[i]);
  }
  for (size_t i = 0; i + 1 < n; i++) {
    size_t m = lens[i] < lens[i + 1] ? lens[i] : lens[i + 1];
    int c = memcmp(keys[i], keys[i + 1], m);
    assert_true(c < 0);  /* strictly less within the common length: prefix-free too */
  }
}

static void test_key_encoding_strings(void **state)
{
  const char *order[] = {"", "\x01", "a", "a\x01", "ab", "b", "\xc3\xa9"};
  buf prev;
  buf_init(&prev, 1 << 16);
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    json_t *av = json_pack("{ss}", "S", order[i]);
    buf k;
    buf_init(&k, 1 << 16);
    err e = {0};
    assert_int_equal(kv__key_append(&k, "S", av, &e), 0);
    if (i > 0) {
      size_t m = prev.len < k.len ? prev.len : k.len;
      assert_true(memcmp(prev.data, k.data, m) < 0);
    }
    buf_reset(&prev);
    buf_append(&prev, k.data, k.len);
    buf_release(&k);
    json_decref(av);
  }
  buf_release(&prev);
  /* a string with a NUL byte sorts after its prefix and before the next character */
  json_t *a = json_pack("{s:s#}", "S", "a\0", (size_t)2);
  json_t *b = json_pack("{ss}", "S", "a\x01");
  buf ka, kb;
  buf_init(&ka, 1 << 16);
  buf_init(&kb, 1 << 16);
  err e = {0};
  kv__key_append(&ka, "S", a, &e);
  kv__key_append(&kb, "S", b, &e);
  assert_true(memcmp(ka.data, kb.data, ka.len < kb.len ? ka.len : kb.len) < 0);
  buf_release(&ka);
  buf_release(&kb);
  json_decref(a);
  json_decref(b);
}

static void test_item_codec(void **state)
{
  const char *text =
      "{\"s\":{\"S\":\"x\"},\"n\":{\"N\":\"-1.5\"},\"b\":{\"B\":\"AAH/\"},\"t\":{\"BOOL\":false},"
      "\"z\":{\"NULL\":true},\"l\":{\"L\":[{\"S\":\"a\"},{\"M\":{}}]},"
      "\"m\":{\"M\":{\"k\":{\"NS\":[\"1\",\"2\"]}}},\"ss\":{\"SS\":[\"a\",\"b\"]},"
      "\"bs\":{\"BS\":[\"AQ==\"]}}";
  json_t *item = json_loads(text, 0, NULL);
  err e = {0};
  assert_int_equal(kv__item_check(item, &e), 0);
  buf b;
  buf_init(&b, 1 << 20);
  assert_int_equal(kv__item_encode(item, &b), 0);
  json_t *back = kv__item_decode(b.data, b.len);
  assert_non_null(back);
  assert_true(json_equal(item, back));
  /* truncated input is refused, never read past */
  for (size_t cut = 0; cut < b.len; cut++) {
    json_t *x = kv__item_decode(b.data, cut);
    if (x != NULL)
      assert_true(json_object_size(x) < json_object_size(item));
    json_decref(x);
  }
  buf_release(&b);
  json_decref(back);
  json_decref(item);
}

static bool cond(const char *expr, const char *values, const char *item_text)
{
  arena *a = arena_new();
  json_t *vals = values != NULL ? json_loads(values, 0, NULL) : NULL;
  json_t *item = json_loads(item_text, 0, NULL);
  kx_ctx cx;
  kv__ctx_init(&cx, a, NULL, vals);
  kx_node *n;
  err e = {0};
  int rc = kv__parse_condition(&cx, expr, "ConditionExpression", &n, &e);
  if (rc != 0)
    fail_msg("%s: %s", expr, e.msg);
  bool out = false;
  assert_int_equal(kv__eval_condition(n, item, &out, &e), 0);
  kv__ctx_release(&cx);
  json_decref(vals);
  json_decref(item);
  arena_free(a);
  return out;
}

static void test_conditions(void **state)
{
  const char *item = "{\"a\":{\"N\":\"10\"},\"s\":{\"S\":\"hello\"},\"l\":{\"L\":[{\"N\":\"1\"}]},"
                     "\"m\":{\"M\":{\"x\":{\"SS\":[\"p\",\"q\"]}}}}";
  const char *v = "{\":n\":{\"N\":\"9.99\"},\":s\":{\"S\":\"he\"},\":p\":{\"S\":\"p\"},"
                  "\":one\":{\"N\":\"1\"},\":t\":{\"S\":\"SS\"}}";
  assert_true(cond("a > :n", v, item));
  assert_false(cond("a < :n", v, item));
  assert_true(cond("begins_with(s, :s) AND contains(m.x, :p)", v, item));
  assert_true(cond("l[0] = :one", v, item));
  assert_true(cond("attribute_type(m.x, :t)", v, item));
  assert_true(cond("size(l) = :one", v, item));
  assert_true(cond("NOT (a = :one) and absent <> :one", v, item));
  assert_false(cond("absent = :one OR a BETWEEN :one AND :n", v, item));
  assert_true(cond("a IN (:one, :n) or attribute_not_exists(q)", v, item));
  assert_false(cond("s > :n", v, item)); /* different types never compare */
}

static void test_parse_errors(void **state)
{
  const char *bad[] = {"a =", "a = :v AND", "(a = :v", "a == :v", "foo(a)", "size(a)",
                       "begins_with(a)", "a = :undefined", "#undefined = :v", "a BETWEEN :v",
                       "a IN ()", "", "   ", "a = :v extra", "a.[0] = :v", "a[x] = :v"};
  json_t *vals = json_loads("{\":v\":{\"N\":\"1\"}}", 0, NULL);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    arena *a = arena_new();
    kx_ctx cx;
    kv__ctx_init(&cx, a, NULL, vals);
    kx_node *n;
    err e = {0};
    int rc = kv__parse_condition(&cx, bad[i], "ConditionExpression", &n, &e);
    if (rc != KV_ERR_VALIDATION)
      fail_msg("'%s' parsed", bad[i]);
    assert_non_null(strstr(e.msg, "ConditionExpression"));
    kv__ctx_release(&cx);
    arena_free(a);
  }
  json_decref(vals);
}

static void test_update_apply(void **state)
{
  arena *a = arena_new();
  json_t *vals = json_loads("{\":one\":{\"N\":\"1\"},\":l\":{\"L\":[{\"S\":\"z\"}]},"
                            "\":s\":{\"NS\":[\"3\",\"1\"]}}", 0, NULL);
  json_t *item = json_loads("{\"n\":{\"N\":\"1.5\"},\"l\":{\"L\":[{\"S\":\"a\"},{\"S\":\"b\"},"
                            "{\"S\":\"c\"}]},\"ns\":{\"NS\":[\"1\",\"2\"]}}", 0, NULL);
  kx_ctx cx;
  kv__ctx_init(&cx, a, NULL, vals);
  kx_node *n;
  err e = {0};
  assert_int_equal(kv__parse_update(&cx, "set n = n + :one, m = if_not_exists(m, :one), "
                                   "l2 = list_append(:l, l) remove l[0], l[1] add ns :s", &n, &e), 0);
  assert_int_equal(kv__ctx_check_unused(&cx, &e), 0);
  json_t *touched = json_object();
  json_t *out;
  assert_int_equal(kv__apply_update(n, item, &out, touched, &e), 0);
  char *text = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(text, "{\"l\":{\"L\":[{\"S\":\"c\"}]},\"l2\":{\"L\":[{\"S\":\"z\"},{\"S\":\"a\"},"
                      "{\"S\":\"b\"},{\"S\":\"c\"}]},\"m\":{\"N\":\"1\"},\"n\":{\"N\":\"2.5\"},"
                      "\"ns\":{\"NS\":[\"1\",\"2\",\"3\"]}}");
  free(text);
  json_decref(out);
  json_decref(touched);
  kv__ctx_release(&cx);
  json_decref(vals);
  json_decref(item);
  arena_free(a);
}

static void test_part_put_condition_reopen(void **state)
{
  char dir[] = "/tmp/kvtestXXXXXX";
  assert_non_null(mkdtemp(dir));
  kv *k;
  err e = {0};
  assert_int_equal(kv_open(dir, &k, &e), 0);
  json_t *out = NULL;
  json_t *in = json_loads("{\"TableName\":\"tab\",\"AttributeDefinitions\":[{\"AttributeName\":"
                          "\"pk\",\"AttributeType\":\"N\"}],\"KeySchema\":[{\"AttributeName\":"
                          "\"pk\",\"KeyType\":\"HASH\"}],\"BillingMode\":\"PAY_PER_REQUEST\"}",
                          0, NULL);
  const char *canon;
  assert_int_equal(kv_op_find("CreateTable", false, &canon)(k, in, &out, &e), 0);
  json_decref(in);
  json_decref(out);
  in = json_loads("{\"TableName\":\"tab\",\"Item\":{\"pk\":{\"N\":\"1.0\"}},"
                  "\"ConditionExpression\":\"attribute_not_exists(pk)\"}", 0, NULL);
  assert_int_equal(kv__put_item(k, in, &out, &e), 0);
  json_decref(out);
  out = NULL;
  assert_int_equal(kv__put_item(k, in, &out, &e), KV_ERR_CONDITION);
  json_decref(out);
  json_decref(in);
  k = kv_close(k);
  assert_int_equal(kv_open(dir, &k, &e), 0);
  in = json_loads("{\"TableName\":\"tab\",\"Key\":{\"pk\":{\"N\":\"1\"}}}", 0, NULL);
  assert_int_equal(kv__get_item(k, in, &out, &e), 0);
  assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(
                          out, "Item"), "pk"), "N")), "1");
  json_decref(out);
  json_decref(in);
  kv_close(k);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_reserved_words(void **state)
{
  (void)state;
  const char *yes[] = {"ABORT", "abort", "ZONE", "status", "Name", "data", "YEAR", "Timestamp",
                       "KEYS", "value", "DATE", "user", "size"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
    assert_true(kv__reserved_word(yes[i], strlen(yes[i])));
  const char *no[] = {"statuses", "pk", "sk", "id", "AAA", "ZZZZ", "named", "attribute_exists",
                      "a_very_long_name_that_is_not_a_word"};
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    assert_false(kv__reserved_word(no[i], strlen(no[i])));
  assert_true(kv__reserved_word("statuses", 6)); /* the prefix "status" */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_num_parse_format),
      cmocka_unit_test(test_num_add),
      cmocka_unit_test(test_num_key_order),
      cmocka_unit_test(test_key_encoding_strings),
      cmocka_unit_test(test_item_codec),
      cmocka_unit_test(test_conditions),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_update_apply),
      cmocka_unit_test(test_reserved_words),
      cmocka_unit_test(test_part_put_condition_reopen),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
