/* tests/unit/http/test_gate.c -- unit tests of http/gate.c's head check
 * (http__gate_head_check), the unit-http program.
 *
 * Each case is a head as a client would send it, whole and cut at every
 * byte: a good head is "more" at every cut and accepted whole; a bad one
 * is refused with its error code, never accepted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http/gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEAD (32u << 10)

/* http__gate_head_check over a copy of the first n bytes of text. */
static int check_n(const char *text, size_t n, gate_head *h, str_pair *headers, char **copy)
{
  *copy = malloc(n + 1);
  assert_non_null(*copy);
  memcpy(*copy, text, n);
  (*copy)[n] = '\0';
  memset(h, 0, sizeof *h);
  err e = {0};
  int rc = http__gate_head_check(*copy, n, MAX_HEAD, h, headers, &e);
  if (rc < 0)
    assert_true(e.code == rc && e.msg[0] != '\0');
  return rc;
}

static int check(const char *text, gate_head *h, str_pair *headers, char **copy)
{
  return check_n(text, strlen(text), h, headers, copy);
}

static void test_good_heads(void **state)
{
  static const char *const heads[] = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "PUT /b/k?partNumber=1&uploadId=u HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
      "POST / HTTP/1.0\nHost: x\nX-Amz-Target: AmazonSQS.ListQueues\n\n",
      "GET /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Empty:\r\n\r\n",
      "HEAD /b/k HTTP/1.1\r\nContent-Length: 0\r\ncontent-length: 0\r\n\r\n",
  };
  str_pair headers[GATE_MAX_HEADERS];
  gate_head h;
  char *copy;
  for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
    const char *end = strstr(heads[i], "\r\n\r\n");
    size_t head_len = end ? (size_t)(end - heads[i]) + 4
                          : (size_t)(strstr(heads[i], "\n\n") - heads[i]) + 2;
    for (size_t n = 0; n < head_len; n++) {
      assert_int_equal(check_n(heads[i], n, &h, headers, &copy), GATE_HEAD_MORE);
      free(copy);
    }
    assert_int_equal(check(heads[i], &h, headers, &copy), 0);
    assert_non_null(h.method);
    assert_non_null(h.target);
    assert_true(h.nheaders >= 1);
    free(copy);
  }
  assert_int_equal(check("GET /b/k?a=1 HTTP/1.1\r\nHost: x\r\nX-A:  v  \r\n\r\n", &h, headers,
                         &copy),
                   0);
  assert_string_equal(h.method, "GET");
  assert_string_equal(h.target, "/b/k?a=1");
  assert_int_equal(h.nheaders, 2);
  assert_string_equal(h.headers[1].name, "X-A");
  assert_string_equal(h.headers[1].value, "v");
  free(copy);
}

static void test_bad_heads(void **state)
{
  static const struct {
    const char *text;
    int code;
  } cases[] = {
      {"\x01\x02garbage\r\n\r\n", ERR_INVALID_REQUEST},
      {"HELLO WORLD\r\n\r\n", ERR_INVALID_REQUEST},
      {"GET /\r\n\r\n", ERR_INVALID_REQUEST},
      {"GET / HTTP/2.0\r\n\r\n", ERR_INVALID_REQUEST},
      {"GET /a b HTTP/1.1\r\n\r\n", ERR_INVALID_REQUEST},
      {"G(T / HTTP/1.1\r\n\r\n", ERR_INVALID_REQUEST},
      {"PUT / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", ERR_INVALID},
      {"PUT / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n", ERR_INVALID},
      {"PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", ERR_INVALID},
      {"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", ERR_INVALID},
      {"PUT / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", ERR_INVALID},
      {"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", ERR_NOT_IMPLEMENTED},
      {"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", ERR_INVALID_REQUEST},
      {"GET / HTTP/1.1\r\n: empty name\r\n\r\n", ERR_INVALID_REQUEST},
      {"GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", ERR_INVALID_REQUEST},
      {"GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n", ERR_INVALID_REQUEST},
  };
  str_pair headers[GATE_MAX_HEADERS];
  gate_head h;
  char *copy;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = check(cases[i].text, &h, headers, &copy);
    if (rc != cases[i].code)
      fail_msg("case %zu (%s): got %d, want %d", i, cases[i].text, rc, cases[i].code);
    free(copy);
  }
  /* a bad request line is refused before the head is complete */
  assert_int_equal(check("BAD\r\nHost: x\r\n", &h, headers, &copy), ERR_INVALID_REQUEST);
  free(copy);
}

static void test_limits(void **state)
{
  str_pair headers[GATE_MAX_HEADERS];
  gate_head h;
  char *copy;
  size_t cap = 64u << 10;
  char *t = malloc(cap);
  assert_non_null(t);

  /* target of exactly the limit, then one byte more */
  size_t n = (size_t)snprintf(t, cap, "GET /");
  memset(t + n, 'a', GATE_MAX_URI_BYTES - 1);
  n += GATE_MAX_URI_BYTES - 1;
  n += (size_t)snprintf(t + n, cap - n, " HTTP/1.1\r\n\r\n");
  assert_int_equal(check(t, &h, headers, &copy), 0);
  free(copy);
  n = (size_t)snprintf(t, cap, "GET /");
  memset(t + n, 'a', GATE_MAX_URI_BYTES);
  n += GATE_MAX_URI_BYTES;
  n += (size_t)snprintf(t + n, cap - n, " HTTP/1.1\r\n\r\n");
  assert_int_equal(check(t, &h, headers, &copy), ERR_URI_TOO_LONG);
  free(copy);
  /* a long target with no end of line yet is refused early */
  n = (size_t)snprintf(t, cap, "GET /");
  memset(t + n, 'a', GATE_MAX_URI_BYTES + 100);
  t[n + GATE_MAX_URI_BYTES + 100] = '\0';
  assert_int_equal(check(t, &h, headers, &copy), ERR_URI_TOO_LONG);
  free(copy);

  /* query parameters: the limit, then one more */
  for (int extra = 0; extra <= 1; extra++) {
    n = (size_t)snprintf(t, cap, "GET /?a");
    for (int i = 1; i < GATE_MAX_QUERY_PARAMS + extra; i++)
      n += (size_t)snprintf(t + n, cap - n, "&a");
    n += (size_t)snprintf(t + n, cap - n, " HTTP/1.1\r\n\r\n");
    assert_int_equal(check(t, &h, headers, &copy), extra ? ERR_INVALID : 0);
    free(copy);
  }

  /* header lines: the limit, then one more */
  for (int extra = 0; extra <= 1; extra++) {
    n = (size_t)snprintf(t, cap, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < GATE_MAX_HEADERS + extra; i++)
      n += (size_t)snprintf(t + n, cap - n, "X-H: %d\r\n", i);
    n += (size_t)snprintf(t + n, cap - n, "\r\n");
    assert_int_equal(check(t, &h, headers, &copy), extra ? ERR_HEADERS_TOO_LARGE : 0);
    free(copy);
  }

  /* a head larger than max_head, complete or not */
  n = (size_t)snprintf(t, cap, "GET / HTTP/1.1\r\nX-Big: ");
  memset(t + n, 'b', MAX_HEAD);
  n += MAX_HEAD;
  t[n] = '\0';
  assert_int_equal(check(t, &h, headers, &copy), ERR_HEADERS_TOO_LARGE);
  free(copy);
  n += (size_t)snprintf(t + n, cap - n, "\r\n\r\n");
  assert_int_equal(check(t, &h, headers, &copy), ERR_HEADERS_TOO_LARGE);
  free(copy);
  free(t);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_heads),
      cmocka_unit_test(test_bad_heads),
      cmocka_unit_test(test_limits),
  };
  return cmocka_run_group_tests_name("gate", tests, NULL, NULL);
}
