/* tests/unit/flow/test_flow.c -- unit tests of flow/: JSONPath reading and
 * ResultPath, Parameters templates, the intrinsic functions, Choice rules,
 * the definition check's verdicts and paths, and the rules of versions and
 * aliases (numbering, idempotent publishing, routing checks). The engine
 * is covered end to end (tests/e2e/test_states*.py).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flow/flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *J(const char *text)
{
  json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
  assert_non_null(v);
  return v;
}

static void assert_json(json_t *got, const char *want)
{
  json_t *w = J(want);
  if (!json_equal(got, w)) {
    char *d = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    fail_msg("got %s, want %s", d, want);
  }
  json_decref(w);
}

static void test_path_get(void **state)
{
  json_t *in = J("{\"a\": {\"b\": [10, 20, {\"c\": \"x\"}]}, \"k y\": 1}");
  json_t *ctx = J("{\"Execution\": {\"Name\": \"n1\"}}");
  json_t *out;
  err e = {0};
  assert_int_equal(flow_path_get("$", in, ctx, &out, &e), 0);
  assert_true(json_equal(out, in));
  json_decref(out);
  assert_int_equal(flow_path_get("$.a.b[1]", in, ctx, &out, &e), 0);
  assert_json(out, "20");
  json_decref(out);
  assert_int_equal(flow_path_get("$.a.b[-1].c", in, ctx, &out, &e), 0);
  assert_json(out, "\"x\"");
  json_decref(out);
  assert_int_equal(flow_path_get("$['k y']", in, ctx, &out, &e), 0);
  assert_json(out, "1");
  json_decref(out);
  assert_int_equal(flow_path_get("$$.Execution.Name", in, ctx, &out, &e), 0);
  assert_json(out, "\"n1\"");
  json_decref(out);
  assert_int_equal(flow_path_get("$.a.b[*]", in, ctx, &out, &e), 0);
  assert_json(out, "[10, 20, {\"c\": \"x\"}]");
  json_decref(out);
  assert_int_equal(flow_path_get("$.nope", in, ctx, &out, &e), FLOW_ERR_RUNTIME);
  assert_non_null(strstr(e.msg, "$.nope"));
  assert_int_equal(flow_path_get("$..a", in, ctx, &out, &e), FLOW_ERR_RUNTIME);
  json_decref(in);
  json_decref(ctx);
}

static void test_path_set(void **state)
{
  json_t *in = J("{\"a\": 1, \"arr\": [0, 1]}");
  json_t *v = J("{\"r\": true}");
  json_t *out;
  err e = {0};
  assert_int_equal(flow_path_set(in, "$.res.deep", v, &out, &e), 0);
  assert_json(out, "{\"a\": 1, \"arr\": [0, 1], \"res\": {\"deep\": {\"r\": true}}}");
  json_decref(out);
  assert_int_equal(flow_path_set(in, "$.arr[1]", v, &out, &e), 0);
  assert_json(out, "{\"a\": 1, \"arr\": [0, {\"r\": true}]}");
  json_decref(out);
  assert_int_equal(flow_path_set(in, "$", v, &out, &e), 0);
  assert_true(out == v);
  json_decref(out);
  /* the input is not changed */
  assert_json(in, "{\"a\": 1, \"arr\": [0, 1]}");
  assert_int_equal(flow_path_set(in, "$.arr[*]", v, &out, &e), FLOW_ERR_RUNTIME);
  assert_int_equal(flow_path_set(in, "$$.x", v, &out, &e), FLOW_ERR_RUNTIME);
  json_decref(in);
  json_decref(v);
}

static void test_template_and_intrinsics(void **state)
{
  json_t *in = J("{\"who\": \"ann\", \"n\": 3, \"list\": [1, 2, 2, 3], \"s\": \"{\\\"q\\\": 1}\"}");
  json_t *ctx = J("{}");
  json_t *tmpl = J("{\"fixed\": [1, {\"x.$\": \"$.n\"}],"
                   " \"msg.$\": \"States.Format('hello {}, \\\\{} n={}', $.who, $.n)\","
                   " \"arr.$\": \"States.Array($.n, 'two', States.ArrayLength($.list))\","
                   " \"uniq.$\": \"States.ArrayUnique($.list)\","
                   " \"range.$\": \"States.ArrayRange(1, 9, 4)\","
                   " \"item.$\": \"States.ArrayGetItem($.list, 3)\","
                   " \"parsed.$\": \"States.StringToJson($.s)\","
                   " \"merged.$\": \"States.JsonMerge(States.StringToJson($.s), States.StringToJson('{\\\"z\\\": 2}'), false)\","
                   " \"dec.$\": \"States.Base64Decode('aGVsbG8=')\","
                   " \"md5.$\": \"States.Hash('abc', 'MD5')\"}");
  json_t *out;
  err e = {0};
  int rc = flow_template_eval(tmpl, in, ctx, &out, &e);
  if (rc != 0)
    fail_msg("%s", e.msg);
  assert_json(out, "{\"fixed\": [1, {\"x\": 3}], \"msg\": \"hello ann, {} n=3\","
                   " \"arr\": [3, \"two\", 4], \"uniq\": [1, 2, 3], \"range\": [1, 5, 9],"
                   " \"item\": 3, \"parsed\": {\"q\": 1}, \"merged\": {\"q\": 1, \"z\": 2},"
                   " \"dec\": \"hello\", \"md5\": \"900150983cd24fb0d6963f7d28e17f72\"}");
  json_decref(out);
  assert_int_equal(flow_intrinsic_eval("States.UUID()", in, ctx, &out, &e), 0);
  assert_int_equal(strlen(json_string_value(out)), 36);
  json_decref(out);
  assert_int_equal(flow_intrinsic_eval("States.Format('{} {}', $.n)", in, ctx, &out, &e),
                   FLOW_ERR_INTRINSIC);
  assert_int_equal(flow_intrinsic_eval("States.Nope(1)", in, ctx, &out, &e),
                   FLOW_ERR_INTRINSIC);
  assert_int_equal(flow_intrinsic_eval("States.StringToJson('{bad')", in, ctx, &out, &e),
                   FLOW_ERR_INTRINSIC);
  json_decref(tmpl);
  json_decref(in);
  json_decref(ctx);
}

static bool choose(const char *rule, const char *input)
{
  json_t *r = J(rule);
  json_t *in = J(input);
  bool m = false;
  err e = {0};
  int rc = flow_choice_eval(r, in, NULL, &m, &e);
  json_decref(r);
  json_decref(in);
  assert_int_equal(rc, 0);
  return m;
}

static void test_choice(void **state)
{
  assert_true(choose("{\"Variable\": \"$.x\", \"NumericLessThanEquals\": 3}", "{\"x\": 3}"));
  assert_false(choose("{\"Variable\": \"$.x\", \"NumericLessThan\": 3}", "{\"x\": 3}"));
  assert_false(choose("{\"Variable\": \"$.x\", \"NumericEquals\": 3}", "{\"x\": \"3\"}"));
  assert_true(choose("{\"Variable\": \"$.s\", \"StringGreaterThan\": \"abc\"}", "{\"s\": \"abd\"}"));
  assert_true(choose("{\"Variable\": \"$.s\", \"StringMatches\": \"a*c\\\\*\"}", "{\"s\": \"abbc*\"}"));
  assert_false(choose("{\"Variable\": \"$.s\", \"StringMatches\": \"a*c\\\\*\"}", "{\"s\": \"abbcd\"}"));
  assert_true(choose("{\"Variable\": \"$.t\", \"TimestampGreaterThanEqualsPath\": \"$.u\"}",
                     "{\"t\": \"2024-01-02T00:00:00Z\", \"u\": \"2024-01-01T00:00:00Z\"}"));
  assert_true(choose("{\"Variable\": \"$.z\", \"IsPresent\": false}", "{}"));
  assert_true(choose("{\"Variable\": \"$.z\", \"IsNull\": true}", "{\"z\": null}"));
  assert_true(choose("{\"Variable\": \"$.z\", \"IsTimestamp\": true}",
                     "{\"z\": \"2024-01-01T00:00:00.5Z\"}"));
  assert_true(choose("{\"Or\": [{\"Variable\": \"$.a\", \"BooleanEquals\": true},"
                     " {\"Not\": {\"Variable\": \"$.b\", \"IsString\": true}}]}",
                     "{\"a\": false, \"b\": 1}"));
  json_t *r = J("{\"Variable\": \"$.missing\", \"NumericEquals\": 1}");
  json_t *in = J("{}");
  bool m;
  err e = {0};
  assert_int_equal(flow_choice_eval(r, in, NULL, &m, &e), FLOW_ERR_RUNTIME);
  json_decref(r);
  json_decref(in);
}

static void expect_invalid(const char *def, const char *where)
{
  err e = {0};
  int rc = flow_definition_check(def, strlen(def), NULL, &e);
  assert_int_equal(rc, FLOW_ERR_DEFINITION);
  char at[256];
  snprintf(at, sizeof at, " at %s'", where);
  if (strstr(e.msg, at) == NULL)
    fail_msg("'%s' does not name %s", e.msg, where);
}

static void test_definition_check(void **state)
{
  const char *ok = "{\"StartAt\": \"M\", \"States\": {"
                   "\"M\": {\"Type\": \"Map\", \"ItemsPath\": \"$.items\", \"Next\": \"T\","
                   "  \"ItemProcessor\": {\"ProcessorConfig\": {\"Mode\": \"INLINE\"},"
                   "   \"StartAt\": \"X\", \"States\": {\"X\": {\"Type\": \"Pass\", \"End\": true}}}},"
                   "\"T\": {\"Type\": \"Task\", \"Resource\": \"arn:aws:states:::lambda:invoke\","
                   "  \"Parameters\": {\"FunctionName\": \"f\", \"Payload.$\": \"$\"},"
                   "  \"Retry\": [{\"ErrorEquals\": [\"States.ALL\"], \"JitterStrategy\": \"FULL\"}],"
                   "  \"Catch\": [{\"ErrorEquals\": [\"States.ALL\"], \"Next\": \"F\"}], \"End\": true},"
                   "\"F\": {\"Type\": \"Fail\", \"ErrorPath\": \"$.Error\"}}}";
  err e = {0};
  json_t *doc;
  assert_int_equal(flow_definition_check(ok, strlen(ok), &doc, &e), 0);
  assert_non_null(doc);
  json_decref(doc);
  expect_invalid("{\"States\": {}}", "/");
  expect_invalid("{\"StartAt\": \"Z\", \"States\": {\"A\": {\"Type\": \"Succeed\"}}}", "/StartAt");
  expect_invalid("{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"End\": true,"
                 " \"Next\": \"A\"}}}", "/States/A");
  expect_invalid("{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"End\": true,"
                 " \"Extra\": 1}}}", "/States/A/Extra");
  expect_invalid("{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Task\", \"End\": true,"
                 " \"Resource\": \"arn:x\", \"Retry\": [{\"ErrorEquals\": [\"States.ALL\", \"X\"]}]}}}",
                 "/States/A/Retry[0]/ErrorEquals");
  expect_invalid("{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"End\": true,"
                 " \"ResultPath\": \"$.a[*]\"}}}", "/States/A/ResultPath");
  expect_invalid("{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Choice\", \"Choices\": ["
                 "{\"Variable\": \"$.x\", \"Next\": \"A\", \"And\": []}]}}}",
                 "/States/A/Choices[0]/And");
  expect_invalid("{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Map\", \"End\": true,"
                 " \"ItemProcessor\": {\"StartAt\": \"B\", \"States\": {\"B\": {\"Type\": \"Pass\","
                 " \"Next\": \"A\"}}}}}}", "/States/A/ItemProcessor/States/B/Next");
  const char *dup = "{\"StartAt\": \"A\", \"StartAt\": \"B\", \"States\": {}}";
  assert_int_equal(flow_definition_check(dup, strlen(dup), NULL, &e), FLOW_ERR_DEFINITION);
  assert_non_null(strstr(e.msg, "INVALID_JSON_DESCRIPTION"));
}

static const char *version_of(json_t *out)
{
  return json_string_value(json_object_get(out, "stateMachineVersionArn"));
}

static void test_versions(void **state)
{
  char dir[] = "/tmp/tarn-flow-XXXXXX";
  assert_non_null(mkdtemp(dir));
  flow_options o = {.data_dir = dir};
  flow_system *s;
  err e = {0};
  assert_int_equal(flow_system_open(&o, &s, &e), 0);
  const char *def = "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Succeed\"}}}";
  flow_machine_params p = {.name = "m", .definition = def, .role_arn = "arn:aws:iam::0:role/r"};
  json_t *m, *out, *again;
  assert_int_equal(flow_machine_create(s, &p, &m, &e), 0);
  const char *arn = json_string_value(json_object_get(m, "stateMachineArn"));
  char v1[256], v2[256], v3[256];
  snprintf(v1, sizeof v1, "%s:1", arn);
  snprintf(v2, sizeof v2, "%s:2", arn);
  snprintf(v3, sizeof v3, "%s:3", arn);
  assert_true(flow_arn_qualified(v1));
  assert_false(flow_arn_qualified(arn));
  assert_false(flow_arn_qualified("arn:aws:states:us-east-1:0:activity:a"));
  /* the current revision once: the same version again */
  assert_int_equal(flow_version_publish(s, arn, NULL, "one", &out, &e), 0);
  assert_string_equal(version_of(out), v1);
  assert_int_equal(flow_version_publish(s, arn, NULL, NULL, &again, &e), 0);
  assert_string_equal(version_of(again), v1);
  json_decref(out);
  json_decref(again);
  assert_int_equal(flow_version_publish(s, arn, "stale", NULL, &out, &e), FLOW_ERR_CONFLICT);
  /* numbers are never reused */
  const char *def2 = "{\"StartAt\": \"B\", \"States\": {\"B\": {\"Type\": \"Succeed\"}}}";
  assert_int_equal(flow_machine_update(s, arn, def2, NULL, &out, &e), 0);
  json_decref(out);
  assert_int_equal(flow_version_publish(s, arn, NULL, NULL, &out, &e), 0);
  assert_string_equal(version_of(out), v2);
  json_decref(out);
  assert_int_equal(flow_version_delete(s, v2, &e), 0);
  assert_int_equal(flow_machine_update(s, arn, def, NULL, &out, &e), 0);
  json_decref(out);
  assert_int_equal(flow_version_publish(s, arn, NULL, NULL, &out, &e), 0);
  assert_string_equal(version_of(out), v3);
  json_decref(out);
  /* routing: weights add up to 100, versions exist and are distinct */
  json_t *bad = json_pack("[{s:s, s:i}]", "stateMachineVersionArn", v1, "weight", 99);
  assert_int_equal(flow_alias_create(s, "a", NULL, bad, &out, &e), ERR_INVALID);
  json_decref(bad);
  bad = json_pack("[{s:s, s:i}]", "stateMachineVersionArn", v2, "weight", 100);
  assert_int_equal(flow_alias_create(s, "a", NULL, bad, &out, &e), FLOW_ERR_NOT_FOUND);
  json_decref(bad);
  json_t *ok = json_pack("[{s:s, s:i}, {s:s, s:i}]", "stateMachineVersionArn", v1, "weight", 30,
                         "stateMachineVersionArn", v3, "weight", 70);
  assert_int_equal(flow_alias_create(s, "live", NULL, ok, &out, &e), 0);
  json_decref(out);
  json_decref(ok);
  assert_int_equal(flow_version_delete(s, v3, &e), FLOW_ERR_CONFLICT);
  json_t *r;
  char alias[256];
  snprintf(alias, sizeof alias, "%s:live", arn);
  assert_int_equal(flow_machine_resolve(s, alias, &r, &e), 0);
  assert_string_equal(json_string_value(json_object_get(r, "stateMachineArn")), arn);
  assert_string_equal(json_string_value(json_object_get(r, "stateMachineAliasArn")), alias);
  json_decref(r);
  /* the machine takes its versions and aliases with it */
  assert_int_equal(flow_machine_delete(s, arn, &e), 0);
  assert_int_equal(flow_alias_get(s, alias, &r, &e), FLOW_ERR_NOT_FOUND);
  assert_int_equal(flow_machine_get(s, v1, &r, &e), FLOW_ERR_NO_MACHINE);
  json_decref(m);
  flow_system_close(s);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_path_get),
      cmocka_unit_test(test_path_set),
      cmocka_unit_test(test_template_and_intrinsics),
      cmocka_unit_test(test_choice),
      cmocka_unit_test(test_definition_check),
      cmocka_unit_test(test_versions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
