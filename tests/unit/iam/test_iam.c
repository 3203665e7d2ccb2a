/* tests/unit/iam/test_iam.c -- the policy language (iam/policy.c):
 * validation at put time and decisions as IAM makes them; and the store's
 * round trip through LMDB (iam/store.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "iam/iam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *parse_ok(const char *text)
{
  json_t *doc = NULL;
  err e = {0};
  int rc = iam_policy_parse(text, strlen(text), &doc, &e);
  if (rc != 0)
    fprintf(stderr, "unexpected: %s\n", e.msg);
  assert_int_equal(rc, 0);
  return doc;
}

static void parse_bad(const char *text, const char *want)
{
  json_t *doc = NULL;
  err e = {0};
  assert_int_equal(iam_policy_parse(text, strlen(text), &doc, &e), ERR_MALFORMED_POLICY);
  assert_null(doc);
  if (strstr(e.msg, want) == NULL)
    fprintf(stderr, "message: %s\n", e.msg);
  assert_non_null(strstr(e.msg, want));
}

static enum iam_decision decide1(const char *text, const char *action, const char *resource,
                                 const iam_context *ctx)
{
  json_t *doc = parse_ok(text);
  enum iam_decision d = iam_policy_evaluate(&doc, 1, action, resource, ctx);
  json_decref(doc);
  return d;
}

static void test_wildcards(void **state)
{
  (void)state;
  assert_true(iam_wildcard_match("s3:Get*", "s3:getobject", true));
  assert_false(iam_wildcard_match("s3:Get*", "s3:getobject", false));
  assert_true(iam_wildcard_match("arn:aws:s3:::b/a?c/*", "arn:aws:s3:::b/abc/x/y", false));
  assert_false(iam_wildcard_match("arn:aws:s3:::b/a?c/*", "arn:aws:s3:::b/ac/x", false));
  assert_true(iam_wildcard_match("*", "", false));
  assert_true(iam_wildcard_match("a*b*c", "aXXbYYc", false));
  assert_false(iam_wildcard_match("a*b*c", "aXXbYY", false));
  assert_false(iam_wildcard_match("arn:aws:s3:::B/*", "arn:aws:s3:::b/k", false));
}

static void test_validation(void **state)
{
  (void)state;
  parse_bad("{", "Syntax errors");
  parse_bad("[]", "not a JSON object");
  parse_bad("{\"Version\":\"2013-01-01\",\"Statement\":[]}", "valid version");
  parse_bad("{\"Version\":\"2012-10-17\"}", "no Statement");
  parse_bad("{\"Statement\":{\"Action\":\"s3:*\",\"Resource\":\"*\"}}", "Effect");
  parse_bad("{\"Statement\":{\"Effect\":\"Maybe\",\"Action\":\"s3:*\",\"Resource\":\"*\"}}",
            "Invalid effect");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Resource\":\"*\"}}", "Action");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"NotAction\":\"x:y\","
            "\"Resource\":\"*\"}}", "exactly one");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\"}}", "resources");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"getobject\",\"Resource\":\"*\"}}",
            "vendor");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"b/k\"}}",
            "ARN");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:*\","
            "\"Resource\":\"*\"}}", "principal");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\","
            "\"Condition\":{\"NumericLessThan\":{\"x:y\":\"1\"}}}}", "not supported");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\","
            "\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":\"nonsense\"}}}}", "IP address");
  parse_bad("{\"Statement\":{\"Effect\":\"Allow\",\"Acton\":\"s3:*\",\"Resource\":\"*\"}}",
            "unknown element");
  json_decref(parse_ok("{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"a\","
                       "\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\",\"sqs:*\"],"
                       "\"Resource\":[\"arn:aws:s3:::b/*\",\"*\"]}]}"));
}

static void test_decisions(void **state)
{
  (void)state;
  const char *get_prefix =
      "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
      "\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::b/public/*\"}}";
  assert_int_equal(decide1(get_prefix, "s3:GetObject", "arn:aws:s3:::b/public/x", NULL),
                   IAM_ALLOW);
  assert_int_equal(decide1(get_prefix, "S3:GETOBJECT", "arn:aws:s3:::b/public/x", NULL),
                   IAM_ALLOW);
  assert_int_equal(decide1(get_prefix, "s3:GetObject", "arn:aws:s3:::b/private/x", NULL),
                   IAM_IMPLICIT_DENY);
  assert_int_equal(decide1(get_prefix, "s3:PutObject", "arn:aws:s3:::b/public/x", NULL),
                   IAM_IMPLICIT_DENY);
  const char *deny_wins =
      "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\"},"
      "{\"Effect\":\"Deny\",\"Action\":\"s3:DeleteObject\",\"Resource\":\"arn:aws:s3:::b/*\"}]}";
  assert_int_equal(decide1(deny_wins, "s3:DeleteObject", "arn:aws:s3:::b/k", NULL),
                   IAM_EXPLICIT_DENY);
  assert_int_equal(decide1(deny_wins, "s3:DeleteObject", "arn:aws:s3:::c/k", NULL), IAM_ALLOW);
  const char *not_action =
      "{\"Statement\":{\"Effect\":\"Allow\",\"NotAction\":\"s3:Delete*\",\"Resource\":\"*\"}}";
  assert_int_equal(decide1(not_action, "s3:GetObject", "arn:aws:s3:::b/k", NULL), IAM_ALLOW);
  assert_int_equal(decide1(not_action, "s3:DeleteBucket", "arn:aws:s3:::b", NULL),
                   IAM_IMPLICIT_DENY);
  const char *not_resource =
      "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
      "\"NotResource\":\"arn:aws:s3:::secret/*\"}}";
  assert_int_equal(decide1(not_resource, "s3:GetObject", "arn:aws:s3:::secret/k", NULL),
                   IAM_IMPLICIT_DENY);
  assert_int_equal(decide1(not_resource, "s3:GetObject", "arn:aws:s3:::open/k", NULL),
                   IAM_ALLOW);

  /* two documents: a Deny in one beats an Allow in the other */
  json_t *docs[2] = {parse_ok(get_prefix),
                     parse_ok("{\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"s3:Get*\","
                              "\"Resource\":\"arn:aws:s3:::b/public/secret*\"}}")};
  assert_int_equal(iam_policy_evaluate(docs, 2, "s3:GetObject", "arn:aws:s3:::b/public/a", NULL),
                   IAM_ALLOW);
  assert_int_equal(
      iam_policy_evaluate(docs, 2, "s3:GetObject", "arn:aws:s3:::b/public/secret.txt", NULL),
      IAM_EXPLICIT_DENY);
  assert_int_equal(iam_policy_evaluate(docs, 0, "s3:GetObject", "arn:aws:s3:::b/public/a", NULL),
                   IAM_IMPLICIT_DENY);
  json_decref(docs[0]);
  json_decref(docs[1]);
}

static void test_conditions(void **state)
{
  (void)state;
  const char *ip = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\","
                   "\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":[\"10.0.0.0/8\","
                   "\"192.168.1.7\"]}}}}";
  iam_context in = {.source_ip = "10.1.2.3"};
  iam_context out = {.source_ip = "127.0.0.1"};
  iam_context exact = {.source_ip = "192.168.1.7"};
  iam_context none = {0};
  assert_int_equal(decide1(ip, "s3:GetObject", "*", &in), IAM_ALLOW);
  assert_int_equal(decide1(ip, "s3:GetObject", "*", &exact), IAM_ALLOW);
  assert_int_equal(decide1(ip, "s3:GetObject", "*", &out), IAM_IMPLICIT_DENY);
  assert_int_equal(decide1(ip, "s3:GetObject", "*", &none), IAM_IMPLICIT_DENY);
  const char *not_ip =
      "{\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\","
      "\"Condition\":{\"NotIpAddress\":{\"aws:SourceIp\":\"127.0.0.0/8\"}}}}";
  assert_int_equal(decide1(not_ip, "s3:GetObject", "*", &in), IAM_EXPLICIT_DENY);
  assert_int_equal(decide1(not_ip, "s3:GetObject", "*", &out), IAM_IMPLICIT_DENY);
  const char *tls = "{\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\","
                    "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}}";
  iam_context plain = {.secure_transport = false};
  iam_context secure = {.secure_transport = true};
  assert_int_equal(decide1(tls, "s3:GetObject", "*", &plain), IAM_EXPLICIT_DENY);
  assert_int_equal(decide1(tls, "s3:GetObject", "*", &secure), IAM_IMPLICIT_DENY);
  const char *prefix =
      "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:ListBucket\",\"Resource\":\"*\","
      "\"Condition\":{\"StringLike\":{\"s3:prefix\":[\"home/*\",\"\"]}}}}";
  iam_context home = {.s3_prefix = "home/me/"};
  iam_context other = {.s3_prefix = "etc/"};
  assert_int_equal(decide1(prefix, "s3:ListBucket", "arn:aws:s3:::b", &home), IAM_ALLOW);
  assert_int_equal(decide1(prefix, "s3:ListBucket", "arn:aws:s3:::b", &other), IAM_IMPLICIT_DENY);
  const char *eq = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
                   "\"Condition\":{\"StringEquals\":{\"s3:prefix\":\"a\"},"
                   "\"StringNotEquals\":{\"aws:username\":\"bob\"}}}}";
  iam_context a_alice = {.s3_prefix = "a", .username = "alice"};
  iam_context a_bob = {.s3_prefix = "a", .username = "bob"};
  iam_context a_anon = {.s3_prefix = "a"};
  assert_int_equal(decide1(eq, "x:y", "*", &a_alice), IAM_ALLOW);
  assert_int_equal(decide1(eq, "x:y", "*", &a_bob), IAM_IMPLICIT_DENY);
  assert_int_equal(decide1(eq, "x:y", "*", &a_anon), IAM_ALLOW); /* absent: negated holds */
  const char *not_like =
      "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
      "\"Condition\":{\"StringNotLike\":{\"s3:prefix\":\"secret*\"}}}}";
  iam_context sec = {.s3_prefix = "secret/x"};
  assert_int_equal(decide1(not_like, "x:y", "*", &sec), IAM_IMPLICIT_DENY);
  assert_int_equal(decide1(not_like, "x:y", "*", &home), IAM_ALLOW);
}

static void test_store_round_trip(void **state)
{
  (void)state;
  char dir[] = "/tmp/tarn-iam-unit-XXXXXX";
  assert_non_null(mkdtemp(dir));
  iam_system *s;
  err e = {0};
  assert_int_equal(iam_system_open(dir, &s, &e), 0);
  json_t *out;
  const char *trust = "{\"Version\":\"2012-10-17\",\"Statement\":[]}";
  assert_int_equal(iam_role_create(s, "r1", NULL, trust, NULL, &out, &e), 0);
  json_decref(out);
  assert_int_equal(iam_role_create(s, "r1", NULL, trust, NULL, &out, &e), ERR_ENTITY_EXISTS);
  const char *doc = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\","
                    "\"Resource\":\"arn:aws:s3:::b/*\"}}";
  assert_int_equal(iam_inline_put(s, "role", "r1", "p", doc, &e), 0);
  assert_int_equal(iam_role_delete(s, "r1", &e), ERR_DELETE_CONFLICT);
  assert_int_equal(iam_user_create(s, "u1", NULL, &out, &e), 0);
  json_decref(out);
  json_t *key;
  assert_int_equal(iam_key_create(s, "u1", &key, &e), 0);
  char akid[32];
  snprintf(akid, sizeof akid, "%s", json_string_value(json_object_get(key, "AccessKeyId")));
  char secret[IAM_SECRET_MAX];
  snprintf(secret, sizeof secret, "%s", json_string_value(json_object_get(key, "SecretAccessKey")));
  json_decref(key);
  s = iam_system_close(s);

  assert_int_equal(iam_system_open(dir, &s, &e), 0);
  bool known;
  assert_int_equal(iam_role_decide(s, "arn:aws:iam::000000000000:role/r1", "s3:GetObject",
                                   "arn:aws:s3:::b/k", NULL, &known),
                   IAM_ALLOW);
  assert_true(known);
  iam_role_decide(s, "arn:aws:iam::000000000000:role/nope", "s3:GetObject", "*", NULL, &known);
  assert_false(known);
  char got[IAM_SECRET_MAX];
  char user[65];
  assert_true(iam_key_lookup(s, akid, got, user));
  assert_string_equal(got, secret);
  assert_string_equal(user, "u1");
  assert_int_equal(iam_key_delete(s, "u1", akid, &e), 0);
  assert_false(iam_key_lookup(s, akid, got, user));
  assert_int_equal(iam_inline_delete(s, "role", "r1", "p", &e), 0);
  assert_int_equal(iam_role_delete(s, "r1", &e), 0);
  assert_int_equal(iam_role_get(s, "r1", &out, &e), ERR_NO_SUCH_ENTITY);
  s = iam_system_close(s);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wildcards),
      cmocka_unit_test(test_validation),
      cmocka_unit_test(test_decisions),
      cmocka_unit_test(test_conditions),
      cmocka_unit_test(test_store_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
