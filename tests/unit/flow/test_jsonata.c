/* tests/unit/flow/test_jsonata.c -- the JSONata language of flow/jsonata.c:
 * expressions and the results the JSONata documentation gives for them
 * (singleton sequences, undefined against null, flattening), the function
 * library with the Step Functions additions, errors and the bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flow/flow.h"
#include "flow/jsonata.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *doc =
    "{\"FirstName\": \"Fred\", \"Surname\": \"Smith\", \"Age\": 28,"
    " \"Address\": {\"Street\": \"Hursley Park\", \"City\": \"Winchester\", \"Postcode\": \"SO21 2JN\"},"
    " \"Phone\": [{\"type\": \"home\", \"number\": \"0203 544 1234\"},"
    "            {\"type\": \"office\", \"number\": \"01962 001234\"},"
    "            {\"type\": \"office\", \"number\": \"01962 001235\"},"
    "            {\"type\": \"mobile\", \"number\": \"077 7700 1234\"}],"
    " \"Email\": [{\"type\": \"work\", \"address\": [\"fred.smith@my-work.com\", \"fsmith@my-work.com\"]},"
    "            {\"type\": \"home\", \"address\": [\"freddy@my-social.com\", \"frederic.smith@very-serious.com\"]}],"
    " \"Other\": {\"Over 18 ?\": true, \"Misc\": null, \"Alternative.Address\": {\"Street\": \"Brick Lane\", \"City\": \"London\"}},"
    " \"nums\": [3, 1, 2], \"one\": [7], \"nested\": [[1, 2], [3]],"
    " \"items\": [{\"p\": 10, \"q\": 2}, {\"p\": 5, \"q\": 1}]}";

/* expression -> expected JSON, or "undefined" */
static const struct {
  const char *expr;
  const char *want;
} cases[] = {
    /* literals and arithmetic */
    {"1 + 2 * 3", "7"},
    {"(1 + 2) * 3", "9"},
    {"7 % 4", "3"},
    {"10 / 4", "2.5"},
    {"-Age", "-28"},
    {"1.5e2", "150"},
    {"\"a\\\"b\"", "\"a\\\"b\""},
    {"'single'", "\"single\""},
    {"true and false", "false"},
    {"true or false", "true"},
    {"null", "null"},
    /* paths */
    {"Surname", "\"Smith\""},
    {"Address.City", "\"Winchester\""},
    {"Other.Misc", "null"},
    {"Other.Nothing", "undefined"},
    {"Other.`Over 18 ?`", "true"},
    {"Phone[0].number", "\"0203 544 1234\""},
    {"Phone[-1].number", "\"077 7700 1234\""},
    {"Phone[type='office'].number", "[\"01962 001234\", \"01962 001235\"]"},
    {"Phone[type='mobile'].number", "\"077 7700 1234\""},
    {"Phone.type", "[\"home\", \"office\", \"office\", \"mobile\"]"},
    {"Email.address", "[\"fred.smith@my-work.com\", \"fsmith@my-work.com\", \"freddy@my-social.com\", \"frederic.smith@very-serious.com\"]"},
    {"Email[type='home'].address[0]", "\"freddy@my-social.com\""},
    {"Phone[8]", "undefined"},
    {"one", "[7]"},
    {"$.one", "[7]"},
    {"items.p", "[10, 5]"},
    {"items[p > 6].q", "2"},
    {"items[0]", "{\"p\": 10, \"q\": 2}"},
    {"Address.*", "[\"Hursley Park\", \"Winchester\", \"SO21 2JN\"]"},
    {"$", NULL}, /* the whole document */
    {"$$.Age", "28"},
    {"nested[0]", "[1, 2]"},
    {"nums[1]", "1"},
    {"[1,2,3][1]", "2"},
    {"[[1,2],[3]]", "[[1,2],[3]]"},
    {"[nums, 4]", "[3, 1, 2, 4]"},
    {"[[nums], 4]", "[[3, 1, 2], 4]"},
    {"[1..5]", "[1, 2, 3, 4, 5]"},
    {"[1..3, 7]", "[1, 2, 3, 7]"},
    {"[5..1]", "[]"},
    {"{\"name\": FirstName, \"n\": $count(Phone), \"x\": Nothing}", "{\"name\": \"Fred\", \"n\": 4}"},
    /* comparison, membership, concatenation, conditional */
    {"Age > 18", "true"},
    {"Age = 28", "true"},
    {"Age != 28", "false"},
    {"Nothing = 1", "false"},
    {"'a' < 'b'", "true"},
    {"\"office\" in Phone.type", "true"},
    {"3 in [1, 2]", "false"},
    {"FirstName & ' ' & Surname", "\"Fred Smith\""},
    {"'n' & 1.5 & true & null", "\"n1.5truenull\""},
    {"'x' & Nothing", "\"x\""},
    {"Age > 18 ? 'adult' : 'minor'", "\"adult\""},
    {"Age < 18 ? 'minor'", "undefined"},
    {"[1,2] = [1,2]", "true"},
    {"{\"a\": 1} = {\"a\": 1.0}", "true"},
    /* blocks, variables, lambdas */
    {"($x := 5; $y := $x * 2; $x + $y)", "15"},
    {"($f := function($a, $b) { $a * $b }; $f(6, 7))", "42"},
    {"($fact := function($n) { $n <= 1 ? 1 : $n * $fact($n - 1) }; $fact(10))", "3628800"},
    {"$map([1, 2, 3], function($v) { $v * 10 })", "[10, 20, 30]"},
    {"$map([1, 2, 3], function($v, $i) { $i })", "[0, 1, 2]"},
    {"$filter(nums, function($v) { $v > 1 })", "[3, 2]"},
    {"$filter(nums, function($v) { $v > 2 })", "3"},
    {"$reduce([1, 2, 3, 4], function($a, $v) { $a + $v })", "10"},
    {"$reduce([1, 2, 3], function($a, $v) { $a + $v }, 10)", "16"},
    {"Phone.$uppercase(type)", "[\"HOME\", \"OFFICE\", \"OFFICE\", \"MOBILE\"]"},
    {"FirstName ~> $uppercase()", "\"FRED\""},
    {"$sum(items.(p * q))", "25"},
    {"$x", "undefined"},
    /* the function library */
    {"$string(5)", "\"5\""},
    {"$string(0.1 + 0.2)", "\"0.3\""},
    {"$string({\"a\": [1, true, null]})", "\"{\\\"a\\\":[1,true,null]}\""},
    {"$string('s')", "\"s\""},
    {"$number('42')", "42"},
    {"$number('1.5e1')", "15"},
    {"$number(true)", "1"},
    {"$boolean('')", "false"},
    {"$boolean([0, 1])", "true"},
    {"$boolean({})", "false"},
    {"$not(0)", "true"},
    {"$exists(Other.Misc)", "true"},
    {"$exists(Other.Nothing)", "false"},
    {"$count(nums)", "3"},
    {"$count(Nothing)", "0"},
    {"$count(5)", "1"},
    {"$sum(nums)", "6"},
    {"$sum([])", "0"},
    {"$sum(Nothing)", "undefined"},
    {"Address.*[0]", "\"Hursley Park\""},
    {"[[1, [2]], 3].*", "[1, 2]"},
    {"{\"a\": [[1, 2], [3]]}.*", "[1, 2, 3]"},
    {"[1..3].($ * 10)", "[10, 20, 30]"},
    {"$number('0x10')", "16"},
    {"$pad('x', 3) & '|'", "\"x  |\""},
    {"$pad('x', -3, '#')", "\"##x\""},
    {"$spread({\"a\": 1, \"b\": 2})", "[{\"a\": 1}, {\"b\": 2}]"},
    {"$each({\"a\": 1}, function($v, $k) { $k & $v })", "\"a1\""},
    {"$zip([1, 2, 3], ['a', 'b'])", "[[1, \"a\"], [2, \"b\"]]"},
    {"$max(nums)", "3"},
    {"$min(nums)", "1"},
    {"$average(nums)", "2"},
    {"$max([])", "undefined"},
    {"$length('héllo')", "5"},
    {"$substring('Hello World', 3)", "\"lo World\""},
    {"$substring('Hello World', 3, 5)", "\"lo Wo\""},
    {"$substring('Hello World', -4)", "\"orld\""},
    {"$substringBefore('Hello World', ' ')", "\"Hello\""},
    {"$substringAfter('Hello World', ' ')", "\"World\""},
    {"$substringAfter('Hello', 'x')", "\"Hello\""},
    {"$uppercase('abc')", "\"ABC\""},
    {"$lowercase('ABC')", "\"abc\""},
    {"$trim('  a   b  ')", "\"a b\""},
    {"$contains('abracadabra', 'bra')", "true"},
    {"$split('a,b,c', ',')", "[\"a\", \"b\", \"c\"]"},
    {"$split('a,b,c', ',', 2)", "[\"a\", \"b\"]"},
    {"$split('abc', '')", "[\"a\", \"b\", \"c\"]"},
    {"$join(['a', 'b'], '-')", "\"a-b\""},
    {"$join(Phone.type)", "\"homeofficeofficemobile\""},
    {"$replace('John Smith', 'John', 'Mr')", "\"Mr Smith\""},
    {"$replace('aaa', 'a', 'b', 2)", "\"bba\""},
    {"$keys(Address)", "[\"Street\", \"City\", \"Postcode\"]"},
    {"$lookup(Address, 'City')", "\"Winchester\""},
    {"$merge([{\"a\": 1}, {\"b\": 2}, {\"a\": 3}])", "{\"a\": 3, \"b\": 2}"},
    {"$append([1, 2], [3])", "[1, 2, 3]"},
    {"$append(1, 2)", "[1, 2]"},
    {"$sort(nums)", "[1, 2, 3]"},
    {"$sort(['b', 'a'])", "[\"a\", \"b\"]"},
    {"$sort(items, function($l, $r) { $l.p > $r.p }).p", "[5, 10]"},
    {"$reverse(nums)", "[2, 1, 3]"},
    {"$distinct([1, 2, 1, 'a', 'a'])", "[1, 2, \"a\"]"},
    {"$round(2.5)", "2"},
    {"$round(3.5)", "4"},
    {"$round(3.14159, 2)", "3.14"},
    {"$floor(-1.5)", "-2"},
    {"$ceil(1.2)", "2"},
    {"$abs(-3)", "3"},
    {"$type(null)", "\"null\""},
    {"$type([])", "\"array\""},
    {"$type(Nothing)", "undefined"},
    {"$toMillis('1970-01-01T00:00:01.500Z')", "1500"},
    {"$toMillis('2024-02-29T12:00:00+01:00')", "1709204400000"},
    {"$fromMillis(1500)", "\"1970-01-01T00:00:01.500Z\""},
    {"$partition([1, 2, 3, 4, 5], 2)", "[[1, 2], [3, 4], [5]]"},
    {"$range(0, 10, 5)", "[0, 5, 10]"},
    {"$range(5, 1, -2)", "[5, 3, 1]"},
    {"$hash('hello', 'SHA-256')", "\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\""},
    {"$hash('hello', 'MD5')", "\"5d41402abc4b2a76b9719d911017c592\""},
    {"$parse('{\"a\": [1]}').a", "[1]"},
    {"$length($uuid())", "36"},
    {"$random() < 1", "true"},
    {"$millis() > 0", "true"},
    {"$contains($now(), 'T')", "true"},
    {"Address.City[]", "[\"Winchester\"]"},
    {"$sum(items.(p * q))", "25"},
    {"Phone[type='office'][1].number", "\"01962 001235\""},
    {"$count(Phone[type != 'home'])", "3"},
    {"$map(nums, $string)", "[\"3\", \"1\", \"2\"]"},
    {"($x := {\"a\": {\"b\": [5, 6]}}; $x.a.b[1])", "6"},
    {"$states", "undefined"},
    /* comments */
    {"/* one */ 1 + /* two */ 1", "2"},
};

static void test_cases(void **state)
{
  (void)state;
  json_t *in = json_loads(doc, 0, NULL);
  assert_non_null(in);
  int bad = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *out = NULL;
    err e = {0};
    int rc = jsonata_eval_text(cases[i].expr, in, NULL, &out, &e);
    if (rc != 0) {
      printf("# %s: failed: %s\n", cases[i].expr, e.msg);
      bad++;
      continue;
    }
    bool ok;
    if (cases[i].want == NULL) {
      ok = json_equal(out, in);
    } else if (strcmp(cases[i].want, "undefined") == 0) {
      ok = out == NULL;
    } else {
      json_t *w = json_loads(cases[i].want, JSON_DECODE_ANY, NULL);
      assert_non_null(w);
      ok = out != NULL && (json_equal(out, w) ||
                           (json_is_number(out) && json_is_number(w) &&
                            json_number_value(out) == json_number_value(w)));
      json_decref(w);
    }
    if (!ok) {
      char *d = out ? json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("undefined");
      printf("# %s: got %s, want %s\n", cases[i].expr, d, cases[i].want ? cases[i].want : "$");
      free(d);
      bad++;
    }
    json_decref(out);
  }
  json_decref(in);
  assert_int_equal(bad, 0);
}

static void test_variables(void **state)
{
  (void)state;
  json_t *vars = json_loads("{\"states\": {\"input\": {\"n\": 2}, \"context\": {\"Execution\":"
                            " {\"Name\": \"e1\"}}}, \"count\": 40}", 0, NULL);
  json_t *out;
  err e = {0};
  assert_int_equal(jsonata_eval_text("$states.input.n + $count", NULL, vars, &out, &e), 0);
  assert_int_equal(json_integer_value(out), 42);
  json_decref(out);
  assert_int_equal(jsonata_eval_text("$states.context.Execution.Name", NULL, vars, &out, &e), 0);
  assert_string_equal(json_string_value(out), "e1");
  json_decref(out);
  /* a function value never leaves the evaluation */
  assert_int_equal(jsonata_eval_text("{\"f\": function($x) { $x }, \"k\": 1}", NULL, vars, &out,
                                     &e), 0);
  assert_int_equal(json_object_size(out), 1);
  json_decref(out);
  json_decref(vars);
}

static void test_errors(void **state)
{
  (void)state;
  static const char *syntax[] = {"1 +", "(1; 2", "[1, 2", "{\"a\" 1}", "$x := ", "a.b[",
                                 "'open", "/regex/", "a{b: c}", "**.x", "1 2", "function($x) 1",
                                 "@", "/* open", NULL};
  for (size_t i = 0; syntax[i] != NULL; i++) {
    jsonata *j = NULL;
    err e = {0};
    int rc = jsonata_parse(syntax[i], strlen(syntax[i]), &j, &e);
    if (rc == 0)
      fail_msg("'%s' parsed", syntax[i]);
    assert_int_equal(rc, ERR_INVALID);
    assert_non_null(strstr(e.msg, "position"));
  }
  static const char *runtime[] = {"'a' + 1", "$number('x')", "1 < 'a'", "$nope(1)",
                                  "$sum(['a'])", "1 / 0", "$hash('a', 'SHA-3')",
                                  "$partition([1], 0)", "$parse('{')", "$range(1, 10, 0)",
                                  "{1: 2}", NULL};
  for (size_t i = 0; runtime[i] != NULL; i++) {
    json_t *out = NULL;
    err e = {0};
    int rc = jsonata_eval_text(runtime[i], NULL, NULL, &out, &e);
    if (rc != FLOW_ERR_QUERY)
      fail_msg("'%s' gave %d", runtime[i], rc);
    assert_null(out);
    assert_true(e.msg[0] != '\0');
  }
}

static void test_bounds(void **state)
{
  (void)state;
  static const char *hostile[] = {
      "[1..100000000]",
      "($f := function($n) { $f($n + 1) }; $f(0))",
      "$reduce([1..900000], function($a, $v) { $a & 'xxxxxxxxxxxxxxxxxxxx' }, '')",
      "$map([1..1000000], function($v) { $map([1..1000000], function($w) { $w }) })",
      "$range(0, 100000000, 1)",
      NULL};
  for (size_t i = 0; hostile[i] != NULL; i++) {
    json_t *out = NULL;
    err e = {0};
    int rc = jsonata_eval_text(hostile[i], NULL, NULL, &out, &e);
    if (rc != FLOW_ERR_QUERY)
      fail_msg("'%s' gave %d", hostile[i], rc);
  }
  /* nesting deeper than the parser allows */
  char deep[2000];
  size_t n = 0;
  for (int i = 0; i < 500; i++)
    deep[n++] = '(';
  deep[n++] = '1';
  for (int i = 0; i < 500; i++)
    deep[n++] = ')';
  deep[n] = '\0';
  jsonata *j = NULL;
  err e = {0};
  assert_int_equal(jsonata_parse(deep, n, &j, &e), ERR_INVALID);
  /* a long chain of operators: a tall tree without nesting */
  char *chain = malloc(60001);
  for (int i = 0; i < 30000; i++)
    memcpy(chain + 2 * i, "1+", 2);
  chain[59999] = '1';
  chain[60000] = '\0';
  assert_int_equal(jsonata_parse(chain, strlen(chain), &j, &e), ERR_INVALID);
  for (int i = 0; i < 20000; i++)
    memcpy(chain + 3 * i, "[0]", 3);
  memcpy(chain, "a.b", 3);
  chain[60000] = '\0';
  assert_int_equal(jsonata_parse(chain, strlen(chain), &j, &e), ERR_INVALID);
  free(chain);
}

/* the definition check over JSONata states (flow/asl.c) */
static void test_definition(void **state)
{
  (void)state;
  static const struct {
    const char *def;
    const char *want; /* NULL: valid; else a part of the message */
  } defs[] = {
      {"{\"QueryLanguage\": \"JSONata\", \"StartAt\": \"P\", \"States\": {\"P\": "
       "{\"Type\": \"Pass\", \"Output\": {\"a\": \"{% $states.input.x %}\"}, "
       "\"Assign\": {\"v\": \"{% 1 %}\"}, \"End\": true}}}", NULL},
      {"{\"QueryLanguage\": \"JSONata\", \"StartAt\": \"P\", \"States\": {\"P\": "
       "{\"Type\": \"Pass\", \"Parameters\": {}, \"End\": true}}}",
       "The field 'Parameters' is not supported for states with QueryLanguage JSONata at "
       "/States/P/Parameters"},
      {"{\"QueryLanguage\": \"JSONata\", \"StartAt\": \"P\", \"States\": {\"P\": "
       "{\"Type\": \"Pass\", \"Output\": \"{% ( %}\", \"End\": true}}}",
       "must be a valid JSONata expression"},
      {"{\"QueryLanguage\": \"JSONata\", \"StartAt\": \"C\", \"States\": {\"C\": "
       "{\"Type\": \"Choice\", \"Choices\": [{\"Condition\": \"{% $x > 1 %}\", "
       "\"Next\": \"E\"}], \"Default\": \"E\"}, \"E\": {\"Type\": \"Succeed\"}}}", NULL},
      {"{\"QueryLanguage\": \"JSONata\", \"StartAt\": \"W\", \"States\": {\"W\": "
       "{\"Type\": \"Wait\", \"Seconds\": \"{% $n %}\", \"End\": true}}}", NULL},
      {"{\"QueryLanguage\": \"JSONata\", \"StartAt\": \"T\", \"States\": {\"T\": "
       "{\"Type\": \"Task\", \"Resource\": \"arn:aws:states:::lambda:invoke\", "
       "\"Arguments\": {\"FunctionName\": \"f\"}, \"TimeoutSeconds\": \"{% 5 %}\", "
       "\"Catch\": [{\"ErrorEquals\": [\"States.ALL\"], \"Next\": \"T\", "
       "\"ResultPath\": \"$.e\"}], \"End\": true}}}",
       "ResultPath"},
      {"{\"StartAt\": \"P\", \"States\": {\"P\": {\"Type\": \"Pass\", "
       "\"Assign\": {\"x.$\": \"$.a\", \"y.$\": \"$x.b\"}, \"End\": true}}}", NULL},
      {"{\"StartAt\": \"P\", \"States\": {\"P\": {\"Type\": \"Pass\", "
       "\"Assign\": {\"states\": 1}, \"End\": true}}}", "'states'"},
      {"{\"StartAt\": \"P\", \"States\": {\"P\": {\"Type\": \"Succeed\", "
       "\"Assign\": {\"a\": 1}}}}", "Assign"},
      {"{\"QueryLanguage\": \"XPath\", \"StartAt\": \"P\", \"States\": {\"P\": "
       "{\"Type\": \"Succeed\"}}}", "QueryLanguage"},
  };
  for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
    err e = {0};
    int rc = flow_definition_check(defs[i].def, strlen(defs[i].def), NULL, &e);
    if (defs[i].want == NULL && rc != 0)
      fail_msg("definition %zu: %s", i, e.msg);
    if (defs[i].want != NULL && (rc != FLOW_ERR_DEFINITION || strstr(e.msg, defs[i].want) == NULL))
      fail_msg("definition %zu: rc %d, '%s'", i, rc, e.msg);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases),
      cmocka_unit_test(test_variables),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_definition),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
