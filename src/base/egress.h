/* base/egress.h -- the one HTTP client for requests tarn makes on a
 * caller's behalf (SNS HTTP/HTTPS deliveries, API Gateway HTTP_PROXY
 * integrations, the JWKS of JWT authorizers), always under the outbound
 * address policy (base/netpolicy.h).
 *
 * Every connection is judged on its resolved address at connect time
 * (libcurl's open-socket callback), redirects are never followed (a 3xx is
 * handed back as it came), no proxy is used, only http and https are
 * spoken. The call blocks its thread for at most timeout_ms: callers that
 * serve HTTP requests run it off the server's pool.
 */
#ifndef TARN_BASE_EGRESS_H
#define TARN_BASE_EGRESS_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/netpolicy.h"
#include "base/text.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct egress_request {
  const char *method;          /* "GET", "POST", ... */
  const char *url;             /* http(s)://... */
  const str_pair *headers;     /* sent as given (name: value), in order */
  size_t nheaders;
  const void *body;            /* NULL: none */
  size_t body_len;
  const char *user_agent;      /* NULL: none unless a header sets it */
  int timeout_ms;              /* the whole exchange */
  int connect_timeout_ms;      /* 0: the whole timeout */
  int stall_ms;                /* not 0: fail when no byte moved for this long
                                  (in whole seconds, rounded up) */
  size_t max_response;         /* response body bytes kept; 0: discarded */
  bool upload;                 /* the body is upload_len bytes of upload_fd from
                                  upload_off, read as it is sent (body NULL) */
  int upload_fd;
  uint64_t upload_off;
  uint64_t upload_len;
  /* not NULL (with upload): the body's bytes come from this call instead of
     upload_fd, which may block until it has some; it returns how many it
     put in p (at most n), or -1 to abort the transfer */
  long (*upload_fn)(void *ctx, void *p, size_t n);
  void *upload_ctx;
  /* not NULL (with upload_fd, for egress_upload): blocks until bytes of the
     body past its first `sent` are in upload_fd, and returns how many (at
     least 1), or -1 to abort the transfer */
  long (*upload_ready)(void *ctx, uint64_t sent);
} egress_request;

typedef struct egress_response {
  long status;
  str_pair *headers;           /* arena memory, lower-case names, in order */
  size_t nheaders;
  buf body;                    /* the caller releases it (buf_release) */
} egress_response;

/* Initialises the client library once (any thread, any number of times);
 * egress_fetch calls it too. */
void egress_init(void);

/* Performs rq. 0 with out filled (any status), or: ERR_INVALID (not an
 * http(s) URL), ERR_DENIED (the policy refused every address: the message
 * says why), ERR_REQUEST_TIMEOUT (timeout_ms passed), ERR_ENTITY_TOO_LARGE
 * (the response body is over max_response), ERR_UNAVAILABLE (no
 * connection, or the exchange failed). out->body is released on error. */
int egress_fetch(const netpolicy *p, const egress_request *rq, arena *a, egress_response *out,
                 err *e);

/* The host and port of an http(s) URL as the client will use them: for
 * checks before any connection (netpolicy_host_check). */
int egress_url_host(const char *url, char *host, size_t n, unsigned *port, err *e);

/* How many leading characters of url a message may show: all but its
 * query string and fragment, which may carry credentials (a presigned
 * URL's signature, a token). For "%.*s"; every message here uses it. */
int egress_url_shown(const char *url);

/* Request time: refuses a URL that is malformed, not http(s), or whose
 * host is an address literal the policy refuses. */
int egress_url_check(const netpolicy *p, const char *url, err *e);

/* A GET whose response body is read by the caller as it comes, from the
 * socket straight into the caller's buffer (egress_stream.c): for proxies
 * of large bodies. Plain http only, no request body; rq->stall_ms bounds
 * every wait for a byte. 0 with out's status and headers (out->body stays
 * empty) and *s open, whatever the status; ERR_NOT_IMPLEMENTED when the
 * answer's head is not understood or its body is not framed by
 * Content-Length (the caller may use egress_fetch instead); else as
 * egress_fetch. The connection is kept alive
 * between requests, to the same host and port. */
typedef struct egress_stream egress_stream;
int egress_stream_open(const netpolicy *p, const egress_request *rq, arena *a,
                       egress_response *out, egress_stream **s, err *e);
/* Body bytes not read yet. */
uint64_t egress_stream_left(const egress_stream *s);
/* Reads up to n body bytes into p (*got; 0 once the body is read whole).
 * wait false: *got is 0 when none has arrived yet. ERR_REQUEST_TIMEOUT
 * when none came for stall_ms, ERR_UNAVAILABLE when the body ended early. */
int egress_stream_read(egress_stream *s, void *p, size_t n, bool wait, size_t *got, err *e);
/* Ends the stream: its connection is kept when its body was read whole. */
egress_stream *egress_stream_close(egress_stream *s);

/* Performs rq, an upload whose body is upload_len bytes of upload_fd from
 * upload_off (upload_fn NULL), sent from the file by sendfile(2) on a kept
 * connection (egress_stream.c (5)): as egress_fetch, but plain http only
 * (ERR_NOT_IMPLEMENTED otherwise: the caller may use egress_fetch), and
 * rq->stall_ms bounds every wait for the peer (not for upload_ready). */
int egress_upload(const netpolicy *p, const egress_request *rq, arena *a, egress_response *out,
                  err *e);

#endif
