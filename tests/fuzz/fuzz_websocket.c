/* fuzz_websocket.c -- libFuzzer target for the RFC 6455 reader
 * (ws_reader in http/websocket.c).
 *
 * The input is what a client sends, fed in pieces whose sizes the input's
 * first byte picks. The reader must never crash or read out of bounds,
 * hand out a message over its limit or a control payload over 125 bytes,
 * or go on after an error.
 */
#include "http/websocket.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  size_t piece = (size_t)data[0] % 64 + 1;
  data++;
  size--;
  ws_reader r;
  ws_reader_init(&r, 1024, 4096);
  bool failed = false;
  for (size_t off = 0; off < size && !failed;) {
    size_t room;
    uint8_t *to = ws_reader_space(&r, &room);
    size_t n = size - off < piece ? size - off : piece;
    if (n > room)
      n = room;
    if (n == 0)
      abort(); /* a frame that fits always leaves room, a larger one fails */
    memcpy(to, data + off, n);
    ws_reader_wrote(&r, n);
    off += n;
    for (;;) {
      ws_item it;
      ws_reader_next(&r, &it);
      if (it.type == WS_NEED_MORE)
        break;
      if (it.type == WS_ERROR) {
        failed = true;
        break;
      }
      if (it.type == WS_MESSAGE && it.len > 4096)
        abort();
      if ((it.type == WS_PING || it.type == WS_PONG || it.type == WS_CLOSE) && it.len > 125)
        abort();
      if (it.len > 0)
        (void)(volatile uint8_t)it.data[it.len - 1];
    }
  }
  ws_reader_release(&r);
  return 0;
}
