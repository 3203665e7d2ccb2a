/* tests/unit/gateway/test_gateway.c -- route precedence and route key
 * syntax (gateway/proxy.c), the proxy response mapping of payload formats
 * 1.0 and 2.0, and the definitions' round trip through LMDB
 * (gateway/gateway.c); the request an HTTP_PROXY integration sends
 * (gateway/http_proxy.c) and WebSocket route selection
 * (gateway/websocket.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gateway/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *match(const char *const *keys, size_t n, const char *method,
                         const char *path, json_t *params)
{
  int i = gateway_route_match(keys, n, method, path, params);
  return i < 0 ? NULL : keys[i];
}

static void test_precedence(void **state)
{
  const char *keys[] = {"$default",           "ANY /{proxy+}",     "GET /items/{id}",
                        "GET /items/special", "ANY /items/{id}",   "GET /items/{id}/{sub+}",
                        "GET /{a}/special",   "GET /",             "POST /items/{id}"};
  size_t n = sizeof keys / sizeof keys[0];
  json_t *p = json_object();
  assert_string_equal(match(keys, n, "GET", "/items/special", p), "GET /items/special");
  assert_int_equal(json_object_size(p), 0);
  assert_string_equal(match(keys, n, "GET", "/items/7", p), "GET /items/{id}");
  assert_string_equal(json_string_value(json_object_get(p, "id")), "7");
  assert_string_equal(match(keys, n, "DELETE", "/items/7", p), "ANY /items/{id}");
  assert_string_equal(match(keys, n, "POST", "/items/7", p), "POST /items/{id}");
  /* a literal at the first differing segment wins over a variable */
  assert_string_equal(match(keys, n, "GET", "/x/special", p), "GET /{a}/special");
  assert_string_equal(match(keys, n, "GET", "/items/7/a/b", p), "GET /items/{id}/{sub+}");
  assert_string_equal(json_string_value(json_object_get(p, "sub")), "a/b");
  assert_string_equal(match(keys, n, "PUT", "/x/y/z", p), "ANY /{proxy+}");
  assert_string_equal(json_string_value(json_object_get(p, "proxy")), "x/y/z");
  assert_string_equal(match(keys, n, "GET", "/", p), "GET /");
  assert_string_equal(match(keys, n, "POST", "/", p), "$default");
  const char *narrow[] = {"GET /a/{b}"};
  assert_null(match(narrow, 1, "GET", "/a", p));
  assert_null(match(narrow, 1, "GET", "/a/b/c", p));
  json_decref(p);
}

static void test_route_keys(void **state)
{
  const char *bad[] = {"GET", "get /x", "FETCH /x", "GET x", "GET /a//b", "GET /{p+}/x",
                       "GET /a{b}", "GET /{}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *keys[] = {bad[i]};
    assert_int_equal(gateway_route_match(keys, 1, "GET", "/x", NULL), -1);
  }
}

static void test_response_map(void **state)
{
  arena *a = arena_new();
  gateway_response r;
  err e = {0};
  const char *v2 = "{\"statusCode\":201,\"headers\":{\"x-a\":\"1\",\"x-n\":5},"
                   "\"cookies\":[\"c=1\",\"d=2\"],\"body\":\"aGk=\",\"isBase64Encoded\":true}";
  assert_int_equal(gateway_response_map("2.0", v2, strlen(v2), a, &r, &e), 0);
  assert_int_equal(r.status, 201);
  assert_int_equal(r.body.len, 2);
  assert_memory_equal(r.body.data, "hi", 2);
  assert_int_equal(r.nheaders, 4);
  assert_string_equal(r.headers[1].value, "5");
  assert_string_equal(r.headers[2].name, "Set-Cookie");
  buf_release(&r.body);
  /* 2.0: JSON without statusCode is a 200 application/json body as it is */
  const char *plain = "[1,2]";
  assert_int_equal(gateway_response_map("2.0", plain, 5, a, &r, &e), 0);
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.body.data, "[1,2]", 5);
  buf_release(&r.body);
  /* 1.0 needs statusCode; neither takes text that is not JSON */
  assert_int_not_equal(gateway_response_map("1.0", plain, 5, a, &r, &e), 0);
  assert_int_not_equal(gateway_response_map("2.0", "oops", 4, a, &r, &e), 0);
  const char *bad = "{\"statusCode\":200,\"body\":\"!!\",\"isBase64Encoded\":true}";
  assert_int_not_equal(gateway_response_map("2.0", bad, strlen(bad), a, &r, &e), 0);
  arena_free(a);
}

static void test_store_round_trip(void **state)
{
  char dir[] = "/tmp/tarn-gateway-XXXXXX";
  assert_non_null(mkdtemp(dir));
  gateway *g = NULL;
  err e = {0};
  assert_int_equal(gateway_open(dir, &g, &e), 0);
  json_t *in = json_pack("{s:s, s:s, s:s}", "name", "x", "protocolType", "HTTP", "target",
                         "arn:aws:lambda:us-east-1:000000000000:function:f");
  json_t *api = NULL;
  assert_int_equal(gateway_api_create(g, in, &api, &e), 0);
  char id[32];
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(api, "apiId")));
  json_decref(api);
  json_decref(in);
  /* WebSocket APIs are refused, and nothing is made */
  in = json_pack("{s:s, s:s}", "name", "w", "protocolType", "WEBSOCKET");
  assert_int_equal(gateway_api_create(g, in, &api, &e), ERR_INVALID);
  json_decref(in);
  g = gateway_close(g);
  assert_int_equal(gateway_open(dir, &g, &e), 0);
  json_t *list = NULL;
  assert_int_equal(gateway_api_list(g, &list, &e), 0);
  assert_int_equal(json_array_size(list), 1);
  json_decref(list);
  arena *a = arena_new();
  gateway_target t;
  const char *rest = NULL;
  assert_int_equal(gateway_resolve(g, id, "GET", "/any/path", a, &t, &rest, &e), 0);
  assert_string_equal(t.route_key, "$default");
  assert_string_equal(t.stage, "$default");
  assert_string_equal(t.format, "2.0");
  assert_string_equal(t.function, "arn:aws:lambda:us-east-1:000000000000:function:f");
  assert_string_equal(rest, "/any/path");
  json_decref(t.snapshot);
  json_decref(t.path_params);
  arena_free(a);
  g = gateway_close(g);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* The HTTP_PROXY request for method/path routed to route key `key`. */
static void http_request(const char *key, const char *uri, json_t *params, json_t *rp,
                         const char *path, const char *raw_query, egress_request *out,
                         arena *a)
{
  gateway_target t = {.api_id = "abc", .stage = "$default", .route_key = key,
                      .http_proxy = true, .uri = uri, .http_method = "GET",
                      .request_parameters = rp, .path_params = params, .timeout_ms = 1000};
  str_pair headers[] = {{"x-keep", "1"}, {"connection", "close"}, {"x-drop", "2"},
                        {"host", "example"}};
  str_pair query[] = {{"a", "1"}, {"b", "x y"}};
  gateway_request q = {.method = "GET", .path = path, .raw_query = raw_query, .query = query,
                       .nquery = 2, .headers = headers, .nheaders = 4, .body = "",
                       .source_ip = "10.0.0.1", .request_id = "rid"};
  err e = {0};
  assert_int_equal(gateway_http_request(&t, &q, path, a, out, &e), 0);
}

static const char *out_header(const egress_request *o, const char *name)
{
  for (size_t i = 0; i < o->nheaders; i++)
    if (strcmp(o->headers[i].name, name) == 0)
      return o->headers[i].value;
  return NULL;
}

static void test_http_proxy_request(void **state)
{
  (void)state;
  arena *a = arena_new();
  egress_request o;
  /* greedy variable into {proxy}; slashes kept, the rest encoded */
  json_t *p = json_pack("{s:s}", "proxy+", "dogs/a b");
  http_request("ANY /pets/{proxy+}", "http://h:1/store/{proxy}", p, NULL, "/pets/dogs/a b",
               "a=1&b=x%20y", &o, a);
  assert_string_equal(o.url, "http://h:1/store/dogs/a%20b?a=1&b=x%20y");
  assert_string_equal(out_header(&o, "x-keep"), "1");
  assert_null(out_header(&o, "connection"));  /* hop-by-hop */
  assert_null(out_header(&o, "host"));
  assert_string_equal(out_header(&o, "x-forwarded-for"), "10.0.0.1");
  json_decref(p);
  /* $default appends the path to the URI's */
  p = json_object();
  http_request("$default", "https://h/base/", p, NULL, "/x/y", "", &o, a);
  assert_string_equal(o.url, "https://h/base/x/y");
  /* requestParameters: remove, overwrite, append; the query rebuilt */
  json_t *rp = json_pack("{s:s, s:s, s:s, s:s}", "remove:header.x-drop", "''",
                         "overwrite:querystring.a", "$request.header.x-keep",
                         "append:header.x-new", "$context.requestId", "overwrite:path", "/p");
  http_request("GET /x", "http://h/orig?z=0", p, rp, "/x", "a=1&b=x%20y", &o, a);
  assert_string_equal(o.url, "http://h/p?z=0&b=x%20y&a=1");
  assert_null(out_header(&o, "x-drop"));
  assert_string_equal(out_header(&o, "x-new"), "rid");
  json_decref(rp);
  json_decref(p);
  arena_free(a);
}

static void test_ws_select(void **state)
{
  (void)state;
  json_t *doc = json_pack(
      "{s:{s:s, s:s}, s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s}}, s:{s:{s:s}}}", "api",
      "protocolType", "WEBSOCKET", "routeSelectionExpression", "$request.body.msg.kind",
      "routes", "r1", "routeKey", "send", "target", "integrations/i1", "r2", "routeKey",
      "$default", "target", "integrations/i1", "r3", "routeKey", "$connect", "integrations",
      "i1", "integrationUri", "arn:aws:lambda:us-east-1:000000000000:function:f");
  arena *a = arena_new();
  const char *m1 = "{\"msg\":{\"kind\":\"send\"}}";
  const char *m2 = "{\"msg\":{\"kind\":\"$connect\"}}";
  assert_string_equal(gateway_ws_select(doc, m1, strlen(m1), false, a), "send");
  assert_string_equal(gateway_ws_select(doc, m2, strlen(m2), false, a), "$default");
  assert_string_equal(gateway_ws_select(doc, "plain", 5, false, a), "$default");
  assert_string_equal(gateway_ws_select(doc, m1, strlen(m1), true, a), "$default");
  assert_string_equal(gateway_ws_route(doc, "send", a, NULL),
                      "arn:aws:lambda:us-east-1:000000000000:function:f");
  assert_string_equal(gateway_ws_route(doc, "$connect", a, NULL), ""); /* no target */
  assert_null(gateway_ws_route(doc, "nope", a, NULL));
  assert_true(gateway_ws_expression_ok("${request.body.action}"));
  assert_false(gateway_ws_expression_ok("$request.header.x"));
  arena_free(a);
  json_decref(doc);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_precedence), cmocka_unit_test(test_route_keys),
      cmocka_unit_test(test_response_map), cmocka_unit_test(test_store_round_trip),
      cmocka_unit_test(test_http_proxy_request), cmocka_unit_test(test_ws_select)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
