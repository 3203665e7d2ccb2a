/* http/websocket.h -- RFC 6455 framing, server side: the handshake's
 * accept key, a reader that turns the bytes a client sends into messages
 * and control frames (unmasking, reassembling fragments, checking limits),
 * and the frames a server writes. No I/O here: the owner of the socket
 * feeds bytes in and writes what comes out.
 */
#ifndef TARN_HTTP_WEBSOCKET_H
#define TARN_HTTP_WEBSOCKET_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
  WS_OP_CONT = 0x0,
  WS_OP_TEXT = 0x1,
  WS_OP_BINARY = 0x2,
  WS_OP_CLOSE = 0x8,
  WS_OP_PING = 0x9,
  WS_OP_PONG = 0xA,
};

/* Close codes used here. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_INVALID_DATA 1007
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009

/* Sec-WebSocket-Accept for the client's Sec-WebSocket-Key (28 characters
 * and a NUL). */
void ws_accept_key(const char *key, char out[29]);

enum ws_event {
  WS_NEED_MORE,   /* nothing complete yet: push more bytes */
  WS_MESSAGE,     /* a whole text or binary message */
  WS_PING,
  WS_PONG,
  WS_CLOSE,       /* the client's close frame (code, reason) */
  WS_ERROR,       /* a protocol violation or a limit: close with code */
};

typedef struct ws_item {
  enum ws_event type;
  bool binary;             /* WS_MESSAGE: opcode binary (else UTF-8 text) */
  const uint8_t *data;     /* payload, valid until the next ws_reader call */
  size_t len;
  int code;                /* WS_CLOSE: the client's code (1005 none); WS_ERROR: ours */
  const char *reason;      /* WS_ERROR: why (static text) */
} ws_item;

typedef struct ws_reader {
  uint8_t *in;             /* bytes not parsed yet */
  size_t in_len;
  size_t in_cap;           /* max_frame + the largest header */
  buf msg;                 /* the message being reassembled (max_message) */
  int msg_op;              /* its opcode, 0 when none is open */
  size_t max_frame;
  bool failed;             /* after WS_ERROR nothing more is read */
  uint8_t ctl[125];        /* the last control frame's payload */
} ws_reader;

/* Frames over max_frame payload bytes and messages over max_message are
 * errors (1009), as are unmasked frames, reserved bits and opcodes,
 * fragmented or long control frames and invalid UTF-8 text (1002, 1007). */
void ws_reader_init(ws_reader *r, size_t max_frame, size_t max_message);
void ws_reader_release(ws_reader *r);
/* Room for more bytes: where to read into, and how many fit. */
uint8_t *ws_reader_space(ws_reader *r, size_t *room);
/* n bytes were written at ws_reader_space(). */
void ws_reader_wrote(ws_reader *r, size_t n);
/* Appends n bytes (copying); false when they do not fit. */
bool ws_reader_push(ws_reader *r, const void *p, size_t n);
/* The next event in the bytes pushed so far. */
void ws_reader_next(ws_reader *r, ws_item *it);

/* Appends one unmasked frame (a server's) with fin set. */
int ws_frame_append(buf *out, int opcode, const void *p, size_t n);
/* Appends a close frame with code and reason. */
int ws_close_append(buf *out, int code, const char *reason);

#endif
