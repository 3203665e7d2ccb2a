/* http/websocket.c -- RFC 6455 framing for the server side (see
 * websocket.h).
 *
 * Invariants:
 *   (1) A frame is taken only once all of it is buffered: the input buffer
 *       holds one frame at most (max_frame plus a 14-byte header), so a
 *       client that sends a larger one is refused (1009), never buffered.
 *   (2) Client frames must be masked (RFC 6455 5.1); payloads are unmasked
 *       in place.
 *   (3) Control frames (close, ping, pong) are at most 125 bytes, never
 *       fragmented, and may arrive between the fragments of a message.
 *   (4) A text message is valid UTF-8 as a whole (checked once complete).
 *
 * Start reading at ws_reader_next().
 */
#include "http/websocket.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <stdlib.h>
#include <string.h>

#define HEADER_MAX 14

void ws_accept_key(const char *key, char out[29])
{
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  hasher h;
  uint8_t md[SHA1_LEN];
  hash_init(&h, HASH_SHA1);
  hash_update(&h, key, strlen(key));
  hash_update(&h, guid, sizeof guid - 1);
  hash_final(&h, md);
  hash_release(&h);
  base64_encode(md, sizeof md, out);
}

void ws_reader_init(ws_reader *r, size_t max_frame, size_t max_message)
{
  memset(r, 0, sizeof *r);
  r->max_frame = max_frame;
  r->in_cap = max_frame + HEADER_MAX;
  r->in = xmalloc(r->in_cap);
  buf_init(&r->msg, max_message);
}

void ws_reader_release(ws_reader *r)
{
  free(r->in);
  r->in = NULL;
  buf_release(&r->msg);
}

uint8_t *ws_reader_space(ws_reader *r, size_t *room)
{
  *room = r->in_cap - r->in_len;
  return r->in + r->in_len;
}

void ws_reader_wrote(ws_reader *r, size_t n)
{
  r->in_len += n;
}

bool ws_reader_push(ws_reader *r, const void *p, size_t n)
{
  if (n > r->in_cap - r->in_len)
    return false;
  memcpy(r->in + r->in_len, p, n);
  r->in_len += n;
  return true;
}

static void fail(ws_reader *r, ws_item *it, int code, const char *why)
{
  r->failed = true;
  it->type = WS_ERROR;
  it->code = code;
  it->reason = why;
}

void ws_reader_next(ws_reader *r, ws_item *it)
{
  memset(it, 0, sizeof *it);
  it->type = WS_NEED_MORE;
  if (r->failed) {
    fail(r, it, WS_CLOSE_PROTOCOL, "the connection failed");
    return;
  }
  for (;;) {
    uint8_t *p = r->in;
    size_t n = r->in_len;
    if (n < 2)
      return;
    bool fin = p[0] & 0x80;
    int op = p[0] & 0x0f;
    bool masked = p[1] & 0x80;
    uint64_t len = p[1] & 0x7f;
    size_t h = 2;
    if (p[0] & 0x70)
      {
        fail(r, it, WS_CLOSE_PROTOCOL, "reserved bits set");
        return;
      }
    if (len == 126) {
      if (n < 4)
        return;
      len = (uint64_t)p[2] << 8 | p[3];
      h = 4;
    } else if (len == 127) {
      if (n < 10)
        return;
      len = 0;
      for (int i = 0; i < 8; i++)
        len = len << 8 | p[2 + i];
      h = 10;
    }
    if (!masked)
      {
        fail(r, it, WS_CLOSE_PROTOCOL, "client frames must be masked");
        return;
      }
    bool control = op >= 0x8;
    if (control && (len > 125 || !fin))
      {
        fail(r, it, WS_CLOSE_PROTOCOL, "bad control frame");
        return;
      }
    if (len > r->max_frame)
      {
        fail(r, it, WS_CLOSE_TOO_BIG, "frame too large");
        return;
      }
    if (n < h + 4 + len)
      return;
    uint8_t *mask = p + h;
    uint8_t *data = p + h + 4;
    for (uint64_t i = 0; i < len; i++)
      data[i] ^= mask[i & 3];
    size_t frame = h + 4 + (size_t)len;
    if (control) { /* (3): its payload is kept aside, the frame leaves the input */
      memcpy(r->ctl, data, (size_t)len);
      memmove(r->in, r->in + frame, n - frame);
      r->in_len = n - frame;
      it->data = r->ctl;
      it->len = (size_t)len;
      if (op == WS_OP_PING) {
        it->type = WS_PING;
      } else if (op == WS_OP_PONG) {
        it->type = WS_PONG;
      } else if (op == WS_OP_CLOSE) {
        it->type = WS_CLOSE;
        it->code = len >= 2 ? (r->ctl[0] << 8 | r->ctl[1]) : 1005;
      } else {
        {
        fail(r, it, WS_CLOSE_PROTOCOL, "unknown opcode");
        return;
      }
      }
      return;
    }
    if (op != WS_OP_CONT && op != WS_OP_TEXT && op != WS_OP_BINARY)
      {
        fail(r, it, WS_CLOSE_PROTOCOL, "unknown opcode");
        return;
      }
    if (op == WS_OP_CONT && r->msg_op == 0)
      {
        fail(r, it, WS_CLOSE_PROTOCOL, "continuation without a message");
        return;
      }
    if (op != WS_OP_CONT && r->msg_op != 0)
      {
        fail(r, it, WS_CLOSE_PROTOCOL, "a new message inside a fragmented one");
        return;
      }
    if (op != WS_OP_CONT) {
      r->msg_op = op;
      buf_reset(&r->msg);
    }
    if (len > 0 && buf_append(&r->msg, data, (size_t)len) != 0)
      {
        fail(r, it, WS_CLOSE_TOO_BIG, "message too large");
        return;
      }
    memmove(r->in, r->in + frame, n - frame);
    r->in_len = n - frame;
    if (!fin)
      continue;
    it->binary = r->msg_op == WS_OP_BINARY;
    r->msg_op = 0;
    if (!it->binary && !utf8_valid(r->msg.data ? r->msg.data : "", r->msg.len))
      {
        fail(r, it, WS_CLOSE_INVALID_DATA, "text is not UTF-8");
        return;
      }
    it->type = WS_MESSAGE;
    it->data = (const uint8_t *)(r->msg.data ? r->msg.data : "");
    it->len = r->msg.len;
    return;
  }
}

int ws_frame_append(buf *out, int opcode, const void *p, size_t n)
{
  uint8_t h[10];
  size_t hl = 2;
  h[0] = (uint8_t)(0x80 | opcode);
  if (n < 126) {
    h[1] = (uint8_t)n;
  } else if (n <= 0xffff) {
    h[1] = 126;
    h[2] = (uint8_t)(n >> 8);
    h[3] = (uint8_t)n;
    hl = 4;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; i++)
      h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    hl = 10;
  }
  if (buf_append(out, h, hl) != 0)
    return -1;
  return n > 0 ? buf_append(out, p, n) : 0;
}

int ws_close_append(buf *out, int code, const char *reason)
{
  uint8_t p[125];
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > 123)
    rl = 123;
  p[0] = (uint8_t)(code >> 8);
  p[1] = (uint8_t)code;
  if (rl)
    memcpy(p + 2, reason, rl);
  return ws_frame_append(out, WS_OP_CLOSE, p, 2 + rl);
}
