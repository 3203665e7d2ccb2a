/* http/gate.h -- the front door of the TCP listener (private to src/http).
 *
 * The gate accepts connections, holds each one until its first request head
 * (request line and headers) is complete and sane, then hands the socket to
 * libmicrohttpd with the head still unread (it only peeks). A head that is
 * malformed, too large or too slow is answered by the gate itself, through
 * the reject callback, so every such answer is in the service's error shape.
 */
#ifndef TARN_HTTP_GATE_H
#define TARN_HTTP_GATE_H

#include "base/buf.h"
#include "base/err.h"
#include "base/text.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define GATE_HEAD_SECONDS 10          /* to send the request line and headers */
#define GATE_MAX_PENDING 4096         /* connections still sending their head */
#define GATE_MAX_PER_ADDRESS 256      /* open connections per client address, except loopback */
#define GATE_MAX_URI_BYTES 8192       /* longer request targets get 414 */
#define GATE_MAX_QUERY_PARAMS 1000    /* more get 400 */
#define GATE_MAX_HEADERS 200          /* header lines; more get 400 */

/* A request head, as far as the gate could parse it (fields may be NULL). */
typedef struct gate_head {
  const char *method;
  const char *target;         /* the request target, as sent */
  str_pair *headers;          /* names as sent */
  size_t nheaders;
} gate_head;

/* Checks the n bytes a connection has sent so far (p is modified: h's
 * strings point into it; headers has room for GATE_MAX_HEADERS). Returns 0
 * when the head is complete and sane, GATE_HEAD_MORE when it is incomplete
 * and nothing seen so far is wrong, or an ERR_* code with e set: a
 * malformed request line (even before the head is complete), a target
 * over GATE_MAX_URI_BYTES (414), more than GATE_MAX_QUERY_PARAMS query
 * parameters, a head over max_head or GATE_MAX_HEADERS lines, a header
 * line that is not "name: value", a Content-Length that is not digits, two
 * that differ, one with Transfer-Encoding, or a coding other than chunked. */
#define GATE_HEAD_MORE 1
int http__gate_head_check(char *p, size_t n, size_t max_head, gate_head *h, str_pair *headers,
                    err *e);

typedef struct gate_config {
  int listen_fd;              /* a listening TCP socket; the gate owns it */
  size_t max_head;            /* request line + headers, in bytes */
  /* Takes fd (and closes it on failure); 0 when it was taken. */
  int (*admit)(void *ctx, int fd, const struct sockaddr *addr, socklen_t len);
  /* Writes a complete HTTP response (status line to body) for a head
     answered with the error code and message. */
  void (*reject)(void *ctx, const gate_head *h, int code, const char *msg, buf *out);
  /* Called from the gate's thread a few times a second (may be NULL). */
  void (*sweep)(void *ctx, int64_t now_us);
  void *ctx;
} gate_config;

typedef struct gate gate;

int http__gate_start(const gate_config *cfg, gate **out, err *e);
/* A connection the gate admitted has closed (call once per admitted
 * connection; addr as given to admit). */
void http__gate_release(gate *g, const struct sockaddr *addr);
/* Stops accepting, closes the connections still in the gate and the
 * listening socket. http__gate_release may still be called until http__gate_free. */
void http__gate_stop(gate *g);
/* Accepts NULL; returns NULL. */
gate *http__gate_free(gate *g);

#endif
