/* aws/eventstream.c -- the AWS event stream encoder (eventstream.h).
 *
 * Why here: the framing is AWS's, shared by every streaming operation; the
 * services only choose event types and payloads.
 *
 * Invariants:
 *   (1) A message is appended whole or not at all: out is rolled back to
 *       its length before the call on any failure.
 *   (2) Both lengths and both CRCs are computed over the bytes as written,
 *       so a reader that checks them (boto3, the SDKs) accepts every
 *       message this file writes.
 */
#include "aws/eventstream.h"

#include "base/err.h"
#include "base/hash.h"

#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

int eventstream_message(buf *out, const str_pair *h, size_t nh, const void *p, size_t n)
{
  size_t hlen = 0;
  for (size_t i = 0; i < nh; i++) {
    size_t kn = strlen(h[i].name);
    size_t vn = strlen(h[i].value);
    if (kn == 0 || kn > EVENTSTREAM_MAX_NAME || vn > EVENTSTREAM_MAX_VALUE)
      return ERR_INVALID;
    hlen += 1 + kn + 1 + 2 + vn;
  }
  if (n > EVENTSTREAM_MAX_MESSAGE || hlen + n + 16 > EVENTSTREAM_MAX_MESSAGE)
    return ERR_INVALID;
  size_t total = 12 + hlen + n + 4;
  char *m = buf_extend(out, total);
  if (m == NULL)
    return ERR_ENTITY_TOO_LARGE;
  uint8_t *w = (uint8_t *)m;
  put32(w, (uint32_t)total);
  put32(w + 4, (uint32_t)hlen);
  put32(w + 8, crc32_update(0, w, 8));
  uint8_t *q = w + 12;
  for (size_t i = 0; i < nh; i++) {
    size_t kn = strlen(h[i].name);
    size_t vn = strlen(h[i].value);
    *q++ = (uint8_t)kn;
    memcpy(q, h[i].name, kn);
    q += kn;
    *q++ = 7; /* string */
    *q++ = (uint8_t)(vn >> 8);
    *q++ = (uint8_t)vn;
    memcpy(q, h[i].value, vn);
    q += vn;
  }
  if (n > 0)
    memcpy(q, p, n);
  q += n;
  put32(q, crc32_update(0, w, total - 4));
  return 0;
}

int eventstream_event(buf *out, const char *type, const char *content_type, const void *p,
                      size_t n)
{
  str_pair h[3] = {{":message-type", "event"}, {":event-type", type},
                   {":content-type", content_type}};
  return eventstream_message(out, h, content_type != NULL ? 3 : 2, p, n);
}

int eventstream_error(buf *out, const char *code, const char *message)
{
  char msg[EVENTSTREAM_MAX_VALUE + 1];
  size_t n = strlen(message);
  if (n > EVENTSTREAM_MAX_VALUE)
    n = EVENTSTREAM_MAX_VALUE;
  memcpy(msg, message, n);
  msg[n] = '\0';
  str_pair h[3] = {{":message-type", "error"}, {":error-code", code}, {":error-message", msg}};
  return eventstream_message(out, h, 3, NULL, 0);
}
