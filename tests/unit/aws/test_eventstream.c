/* tests/unit/aws/test_eventstream.c -- unit tests of aws/eventstream.c;
 * run by test_sigv4.c's main.
 *
 * Known values: the event stream test suite's "empty_message" (16 bytes:
 * prelude CRC 05c248eb, message CRC 7d98c8ff), and the payload
 * {"foo": "bar"} without headers and with content-type: application/json,
 * as the published encoders of AWS's framing give them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/eventstream.h"
#include "base/err.h"
#include "base/hash.h"
#include "unit_aws.h"

#include <string.h>

static void test_empty_message(void **state)
{
  (void)state;
  static const uint8_t want[] = {0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00,
                                 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff};
  buf b;
  buf_init(&b, 1024);
  assert_int_equal(eventstream_message(&b, NULL, 0, NULL, 0), 0);
  assert_int_equal(b.len, sizeof want);
  assert_memory_equal(b.data, want, sizeof want);
  buf_release(&b);
}

static void test_payload_examples(void **state)
{
  (void)state;
  static const uint8_t plain[] = {0, 0, 0, 30, 0, 0, 0, 0, 186, 242, 246, 138, 123, 34, 102,
                                  111, 111, 34, 58, 32, 34, 98, 97, 114, 34, 125, 174, 114,
                                  88, 228};
  static const uint8_t typed[] = {
      0,   0,   0,   62,  0,   0,   0,   32,  64,  93,  249, 70,  12,  99,  111, 110,
      116, 101, 110, 116, 45,  116, 121, 112, 101, 7,   0,   16,  97,  112, 112, 108,
      105, 99,  97,  116, 105, 111, 110, 47,  106, 115, 111, 110, 123, 34,  102, 111,
      111, 34,  58,  32,  34,  98,  97,  114, 34,  125, 111, 162, 191, 59};
  const char *payload = "{\"foo\": \"bar\"}";
  buf b;
  buf_init(&b, 1024);
  assert_int_equal(eventstream_message(&b, NULL, 0, payload, strlen(payload)), 0);
  assert_int_equal(b.len, sizeof plain);
  assert_memory_equal(b.data, plain, sizeof plain);
  buf_reset(&b);
  str_pair h = {"content-type", "application/json"};
  assert_int_equal(eventstream_message(&b, &h, 1, payload, strlen(payload)), 0);
  assert_int_equal(b.len, sizeof typed);
  assert_memory_equal(b.data, typed, sizeof typed);
  buf_release(&b);
}

static uint32_t get32(const char *p)
{
  const uint8_t *u = (const uint8_t *)p;
  return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* Events and errors as S3 Select writes them: lengths and CRCs agree, the
 * headers are in place, messages follow one another. */
static void test_events_and_errors(void **state)
{
  (void)state;
  buf b;
  buf_init(&b, 1 << 20);
  assert_int_equal(eventstream_event(&b, "Records", "application/octet-stream", "a,b\n", 4), 0);
  size_t first = b.len;
  assert_int_equal(eventstream_event(&b, "End", NULL, NULL, 0), 0);
  assert_int_equal(eventstream_error(&b, "CSVParsingError", "bad record"), 0);
  const char *p = b.data;
  size_t left = b.len;
  int count = 0;
  while (left > 0) {
    uint32_t total = get32(p);
    uint32_t hlen = get32(p + 4);
    assert_true(total <= left && hlen + 16 <= total);
    assert_int_equal(get32(p + 8), crc32_update(0, p, 8));
    assert_int_equal(get32(p + total - 4), crc32_update(0, p, total - 4));
    assert_true(memmem(p + 12, hlen, ":message-type", 13) != NULL);
    p += total;
    left -= total;
    count++;
  }
  assert_int_equal(count, 3);
  assert_int_equal(get32(b.data + 4), (1 + 13 + 3 + 5) + (1 + 11 + 3 + 7) + (1 + 13 + 3 + 24));
  assert_true(memmem(b.data, first, "a,b\n", 4) != NULL);
  assert_true(memmem(b.data, b.len, ":error-code\x07\x00\x0f" "CSVParsingError", 29) != NULL);
  /* limits: a header value too long, a full buffer; nothing is appended */
  size_t before = b.len;
  char big[EVENTSTREAM_MAX_VALUE + 2];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  str_pair h = {":error-message", big};
  assert_int_equal(eventstream_message(&b, &h, 1, NULL, 0), ERR_INVALID);
  assert_int_equal(b.len, before);
  assert_int_equal(eventstream_error(&b, "X", big), 0); /* cut, not refused */
  buf small;
  buf_init(&small, 20);
  assert_int_equal(eventstream_event(&small, "Records", NULL, "abcdefgh", 8), ERR_ENTITY_TOO_LARGE);
  assert_int_equal(small.len, 0);
  buf_release(&small);
  buf_release(&b);
}

int unit_aws_eventstream_run(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_message),
      cmocka_unit_test(test_payload_examples),
      cmocka_unit_test(test_events_and_errors),
  };
  return cmocka_run_group_tests_name("eventstream", tests, NULL, NULL);
}
