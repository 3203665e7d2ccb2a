/* tests/unit/http/test_websocket.c -- unit tests of http/websocket.c, the
 * RFC 6455 framing (the unit-websocket program): the handshake's accept
 * key, the RFC's own frames fed whole and one byte at a time, fragments
 * with a control frame between them, and the errors (unmasked frames,
 * frames and messages over their limits, bad control frames, invalid
 * UTF-8), and the lengths of the frames a server writes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http/websocket.h"

#include <stdlib.h>
#include <string.h>

/* A client frame: masked with key, fin and opcode as given. */
static size_t client_frame(uint8_t *out, bool fin, int op, const void *p, size_t n)
{
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  size_t h = 0;
  out[h++] = (uint8_t)((fin ? 0x80 : 0) | op);
  if (n < 126) {
    out[h++] = (uint8_t)(0x80 | n);
  } else if (n <= 0xffff) {
    out[h++] = 0x80 | 126;
    out[h++] = (uint8_t)(n >> 8);
    out[h++] = (uint8_t)n;
  } else {
    out[h++] = 0x80 | 127;
    for (int i = 0; i < 8; i++)
      out[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
  }
  memcpy(out + h, key, 4);
  h += 4;
  for (size_t i = 0; i < n; i++)
    out[h + i] = ((const uint8_t *)p)[i] ^ key[i & 3];
  return h + n;
}

static void accept_key(void **state)
{
  (void)state;
  char out[29];
  ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out); /* RFC 6455 1.3 */
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void rfc_hello_whole_and_bytewise(void **state)
{
  (void)state;
  /* RFC 6455 5.7: a masked "Hello" */
  static const uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  ws_reader r;
  ws_item it;
  ws_reader_init(&r, 1024, 4096);
  assert_true(ws_reader_push(&r, frame, sizeof frame));
  ws_reader_next(&r, &it);
  assert_int_equal(it.type, WS_MESSAGE);
  assert_false(it.binary);
  assert_int_equal(it.len, 5);
  assert_memory_equal(it.data, "Hello", 5);
  ws_reader_next(&r, &it);
  assert_int_equal(it.type, WS_NEED_MORE);
  for (size_t i = 0; i < sizeof frame; i++) {
    ws_reader_next(&r, &it);
    assert_int_equal(it.type, WS_NEED_MORE);
    assert_true(ws_reader_push(&r, frame + i, 1));
  }
  ws_reader_next(&r, &it);
  assert_int_equal(it.type, WS_MESSAGE);
  assert_memory_equal(it.data, "Hello", 5);
  ws_reader_release(&r);
}

static void fragments_with_a_ping_between(void **state)
{
  (void)state;
  uint8_t fb[256];
  size_t n = client_frame(fb, false, WS_OP_TEXT, "Hel", 3);
  n += client_frame(fb + n, true, WS_OP_PING, "p", 1);
  n += client_frame(fb + n, true, WS_OP_CONT, "lo", 2);
  n += client_frame(fb + n, true, WS_OP_CLOSE, "\x03\xe8", 2);
  ws_reader r;
  ws_item it;
  ws_reader_init(&r, 1024, 4096);
  assert_true(ws_reader_push(&r, fb, n));
  ws_reader_next(&r, &it);
  assert_int_equal(it.type, WS_PING);
  assert_int_equal(it.len, 1);
  ws_reader_next(&r, &it);
  assert_int_equal(it.type, WS_MESSAGE);
  assert_memory_equal(it.data, "Hello", 5);
  ws_reader_next(&r, &it);
  assert_int_equal(it.type, WS_CLOSE);
  assert_int_equal(it.code, 1000);
  ws_reader_release(&r);
}

/* Feeds frames in 100-byte reads (as a socket would), taking events as
 * they come: the first error's code, or 0. */
static int first_error(const uint8_t *frames, size_t n, size_t max_frame, size_t max_message)
{
  ws_reader r;
  ws_item it;
  ws_reader_init(&r, max_frame, max_message);
  int code = 0;
  for (size_t off = 0; off < n && code == 0;) {
    size_t chunk = n - off < 100 ? n - off : 100;
    assert_true(ws_reader_push(&r, frames + off, chunk));
    off += chunk;
    for (;;) {
      ws_reader_next(&r, &it);
      if (it.type == WS_ERROR)
        code = it.code;
      if (it.type == WS_ERROR || it.type == WS_NEED_MORE)
        break;
    }
  }
  ws_reader_release(&r);
  return code;
}

static void errors(void **state)
{
  (void)state;
  uint8_t fb[4096];
  /* unmasked */
  static const uint8_t plain[] = {0x81, 0x02, 'h', 'i'};
  assert_int_equal(first_error(plain, sizeof plain, 1024, 4096), WS_CLOSE_PROTOCOL);
  /* a frame over the limit is refused from its header alone */
  uint8_t big[16];
  char *a = memset(malloc(2000), 'a', 2000);
  client_frame(fb, true, WS_OP_TEXT, a, 2000);
  free(a);
  memcpy(big, fb, 8);
  assert_int_equal(first_error(big, 8, 1024, 4096), WS_CLOSE_TOO_BIG);
  /* a message over the limit, in fragments under it */
  char part[600];
  memset(part, 'b', sizeof part);
  size_t n = client_frame(fb, false, WS_OP_TEXT, part, sizeof part);
  n += client_frame(fb + n, true, WS_OP_CONT, part, sizeof part);
  assert_int_equal(first_error(fb, n, 1024, 1000), WS_CLOSE_TOO_BIG);
  /* a fragmented ping; a continuation with no message; bad UTF-8 */
  n = client_frame(fb, false, WS_OP_PING, "x", 1);
  assert_int_equal(first_error(fb, n, 1024, 4096), WS_CLOSE_PROTOCOL);
  n = client_frame(fb, true, WS_OP_CONT, "x", 1);
  assert_int_equal(first_error(fb, n, 1024, 4096), WS_CLOSE_PROTOCOL);
  n = client_frame(fb, true, WS_OP_TEXT, "\xff\xfe", 2);
  assert_int_equal(first_error(fb, n, 1024, 4096), WS_CLOSE_INVALID_DATA);
  /* binary is not checked for UTF-8 */
  n = client_frame(fb, true, WS_OP_BINARY, "\xff\xfe", 2);
  assert_int_equal(first_error(fb, n, 1024, 4096), 0);
}

static void server_frames(void **state)
{
  (void)state;
  size_t sizes[] = {0, 125, 126, 65535, 65536};
  size_t heads[] = {2, 2, 4, 4, 10};
  char *p = calloc(1, 65536);
  for (size_t i = 0; i < 5; i++) {
    buf b;
    buf_init(&b, 1u << 20);
    assert_int_equal(ws_frame_append(&b, WS_OP_BINARY, p, sizes[i]), 0);
    assert_int_equal(b.len, heads[i] + sizes[i]);
    assert_int_equal((uint8_t)b.data[0], 0x82);
    assert_int_equal((uint8_t)b.data[1] & 0x80, 0); /* servers do not mask */
    buf_release(&b);
  }
  buf b;
  buf_init(&b, 1024);
  assert_int_equal(ws_close_append(&b, 1009, "too big"), 0);
  assert_int_equal(b.len, 2 + 2 + 7);
  assert_int_equal((uint8_t)b.data[2] << 8 | (uint8_t)b.data[3], 1009);
  buf_release(&b);
  free(p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accept_key),
      cmocka_unit_test(rfc_hello_whole_and_bytewise),
      cmocka_unit_test(fragments_with_a_ping_between),
      cmocka_unit_test(errors),
      cmocka_unit_test(server_frames),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
