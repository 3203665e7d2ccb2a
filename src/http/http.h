/* http/http.h -- tarn's HTTP edge: one server, one port, many AWS services.
 *
 * The server (libmicrohttpd on a pool of threads, behind a gate that holds
 * each new TCP connection until its first request head is complete and
 * sane: gate.c) parses a request,
 * authenticates it with SigV4, picks the service by the credential scope
 * (DESIGN.md §2), streams the body through the payload checks (the
 * x-amz-content-sha256 digest, aws-chunked decoding with chunk signatures,
 * Content-MD5 and x-amz-checksum-* values, trailers) and hands it to the
 * service, which answers through the http_resp_* calls.
 *
 * A service sees a request in up to four calls, in this order:
 *   prepare  after the headers are authenticated (and, when a non-S3 request
 *            carries no x-amz-content-sha256, after its body is buffered):
 *            route, check, and for large bodies install req->sink;
 *   handle   when the whole body arrived and every check passed;
 *   error    to write any failure in the service's wire format;
 *   cleanup  once at the end of every request that reached prepare, whether
 *            it was answered, failed or the client went away: release what
 *            prepare took (an uncommitted blob, ...).
 * Services never see a body that failed a check: a sink may receive bytes
 * before the end-of-body checks, so it must commit nothing before handle.
 *
 * Waiting without a thread: the server runs a fixed pool of threads, so a
 * request that waits for something (a long poll, a function's answer) must
 * not block one. Its handle() calls http_req_park() and returns; later any
 * thread fills the response and calls http_req_resume() once. A parked
 * request may also end without resume (client gone, server stopping: the
 * server then answers 503 itself): cleanup() is called either way, and after
 * cleanup() returns the service must never touch the request again (remove
 * it from its waiting lists there, under the same lock resume is called
 * under).
 */
#ifndef TARN_HTTP_HTTP_H
#define TARN_HTTP_HTTP_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/text.h"
#include "aws/sigv4.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_DEFAULT_BODY_MAX (1u << 20)   /* buffered bodies, unless a service raises it */
#define HTTP_MAX_HEADER_BYTES (32u << 10)  /* request line + headers (S3 allows 8 KiB) */
#define HTTP_MAX_CONNECTIONS 4096   /* served by libmicrohttpd; connections still
                                       sending their first head wait in the gate
                                       (gate.h: its own limits and deadline) */
#define HTTP_IDLE_TIMEOUT_SECONDS 60
#define HTTP_POOL_THREADS 32           /* blocking work is short (fsync, LMDB); waits park */

typedef struct http_server http_server;
typedef struct http_req http_req;
typedef struct http_stream http_stream;

/* Where a streamed body goes (installed by prepare). */
typedef struct http_sink {
  int (*write)(void *ctx, const void *p, size_t n, err *e); /* 0 or an ERR_* code */
  void *ctx;
} http_sink;

typedef struct http_service {
  const char *name;  /* the SigV4 scope service this answers: "s3", "lambda", ... */
  void *ctx;         /* the service's own state, passed to every call */
  int (*prepare)(void *ctx, http_req *req, err *e);
  void (*handle)(void *ctx, http_req *req);
  void (*error)(void *ctx, http_req *req, const err *e);
  void (*cleanup)(void *ctx, http_req *req);
  size_t unsigned_body_max;  /* requests that sign their body without sending
                                x-amz-content-sha256 are buffered before
                                authentication, up to this (0: 8 MiB) */
  /* A public front door (HTTP APIs, function URLs): when set and true for a
     request (told by its path or Host header, before any signature check),
     the request is this service's. One that carries a signature (an
     Authorization header "AWS4-..." or X-Amz-Signature) is verified as usual and
     reaches prepare authenticated; one without reaches prepare with
     authenticated false, and the service alone decides whether anonymous
     access is allowed for what it asks. NULL for every AWS API. */
  bool (*claim)(void *ctx, const http_req *req);
} http_service;

struct http_req {
  arena *arena;               /* freed when the request ends */
  const char *method;         /* "GET", "PUT", ... */
  const char *raw_path;       /* path as received, percent-encoded */
  const char *path;           /* path percent-decoded (may hold any UTF-8) */
  const char *raw_query;      /* the query as received, without '?' ("" when none) */
  str_pair *query;            /* decoded query parameters, in order */
  size_t nquery;
  str_pair *headers;          /* lower-case names, in order */
  size_t nheaders;
  int64_t content_length;     /* -1 when the request has none */
  char request_id[17];        /* 16 hex characters, sent as x-amz-request-id */
  const char *service;        /* the scope service ("s3" for unsigned) */
  bool authenticated;         /* SigV4 verified */
  bool admin;                 /* signed with the administrator's key (see
                                 http_config.admin_access_key) */
  sigv4_result auth;          /* valid when authenticated */
  const char *op;             /* operation name for logs and metrics, set by the service */

  /* body */
  buf body;                   /* the buffered body, when no sink is set */
  http_sink sink;             /* set by prepare to stream the body instead */
  uint64_t body_len;          /* decoded body bytes received so far */
  const char *checksum_name;  /* "x-amz-checksum-crc32", ... when the request carried one */
  const char *checksum_value; /* its base64 value, verified against the body */
  bool checksum_not_body;     /* set by prepare: x-amz-checksum-* describes
                                 something else (an object made of parts),
                                 the server leaves it unchecked */

  /* response */
  int status;                 /* 200 unless set */
  str_pair *resp_headers;
  size_t nresp_headers;
  size_t resp_headers_cap;
  buf resp_body;              /* response bytes, unless an fd is set */
  int resp_fd;                /* -1, or a file to send (the server closes it) */
  uint64_t resp_fd_offset;
  uint64_t resp_fd_length;
  http_stream *resp_stream;   /* set by http_resp_stream */

  int peer_pid;               /* the connecting process (Unix sockets), else 0 */
  const char *peer_addr;      /* the client's IP address as text ("" on a Unix socket) */
  void *svc;                  /* the service's per-request state */
  void *server_private;       /* the server's own per-request state */
};

/* Request accessors: header by lower-case name, query parameter by name. */
const char *http_req_header(const http_req *r, const char *lname);
const char *http_req_param(const http_req *r, const char *name);
bool http_req_has_param(const http_req *r, const char *name);
/* Sets the buffered body's limit (prepare may raise it, e.g. Lambda's 6 MB). */
void http_req_body_max(http_req *r, size_t max);

/* Response builders. Header names and values are copied. */
void http_resp_status(http_req *r, int status);
void http_resp_header(http_req *r, const char *name, const char *value);
void http_resp_headerf(http_req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parks the request (from handle): no response is sent when handle returns. */
void http_req_park(http_req *r);
/* Sends the response of a parked request; from any thread, at most once,
 * and never after cleanup() for r has returned. */
void http_req_resume(http_req *r);

/* ---- streamed responses ----
 * A body produced by another thread while it is sent (chunked encoding).
 * The producer writes with http_stream_write and ends once with
 * http_stream_end; the connection holds its own reference, so either side
 * may finish first. A write blocks while HTTP_STREAM_BUFFER bytes wait to
 * be sent, and fails once the client has gone (the producer should stop). */
#define HTTP_STREAM_BUFFER (1u << 20)
/* From handle() (or before resuming a parked request): the response body
 * becomes the stream. Returns the producer's reference. */
http_stream *http_resp_stream(http_req *r);
/* 0, or -1 when the client is gone or the server stopping. */
int http_stream_write(http_stream *s, const void *p, size_t n);
/* Ends the body, sending trailers (lower-case names; may be none), and
 * drops the producer's reference. */
void http_stream_end(http_stream *s, const str_pair *trailers, size_t ntrailers);

/* True when the client has closed its connection (or the connection
 * failed). libmicrohttpd does not watch a suspended connection (a parked
 * request, a stream waiting for bytes), so a service that works long without
 * answering or writing asks (from any thread), and so does one about to hand
 * a parked request something it cannot take back (received messages). For a
 * request: only while it is parked and not yet resumed (false otherwise);
 * for a stream: while the producer holds it. */
bool http_req_client_gone(http_req *r);
bool http_stream_client_gone(http_stream *s);

/* Sends length bytes of fd from offset as the body; the server owns fd from
 * here on. For HEAD the length is announced and nothing is sent. */
void http_resp_fd(http_req *r, int fd, uint64_t offset, uint64_t length);

/* Sends length bytes produced on demand as the body (Content-Length known):
 * fn(ctx, pos, buf, max) fills buf with up to max bytes from pos and
 * returns their count, or -1 on an error (the connection is then cut short).
 * It runs on the server's thread, so it must not block for long (reading a
 * local file is fine). free_fn(ctx) runs once the request is over, sent or
 * not. For HEAD the length is announced and fn never called. */
typedef ssize_t (*http_read_fn)(void *ctx, uint64_t pos, char *buf, size_t max);
void http_resp_reader(http_req *r, uint64_t length, http_read_fn fn, void (*free_fn)(void *),
                      void *ctx);

/* ---- upgraded connections (WebSocket) ----
 * A service may answer a request by taking its TCP connection: it sets the
 * 101's headers (Upgrade, Connection, Sec-WebSocket-Accept) and calls
 * http_resp_upgrade from handle (or before resuming a parked request).
 * Once the 101 is out, fn(ctx, u, fd, extra, n) runs on a server thread:
 * it must not block (hand fd to a thread of the service's own); fd is the
 * socket, non-blocking, and extra the bytes the client sent after its
 * head. The service owns fd from then on but never closes it: it calls
 * http_upgrade_close(u) exactly once. If the connection fails before the
 * 101 is sent, fn is never called. When the server stops it shuts every
 * upgraded socket down for reading (the owner reads end-of-file and may
 * still write a last word) and waits, up to its deadline, for them to be
 * closed. */
typedef struct http_upgrade http_upgrade;
typedef void (*http_upgrade_fn)(void *ctx, http_upgrade *u, int fd, const char *extra,
                                size_t n);
void http_resp_upgrade(http_req *r, http_upgrade_fn fn, void *ctx);
void http_upgrade_close(http_upgrade *u);

/* ---- the server ---- */

typedef struct http_config {
  const char *listen_host;      /* "127.0.0.1" */
  int listen_port;              /* 9000; 0 picks a free port */
  const char *listen_unix;      /* instead of host:port: a Unix socket path
                                   (created, mode 0666; its folder guards it) */
  http_service *open_service;   /* when set, every request goes here with no
                                   SigV4 check (the Runtime API on its private
                                   socket); services and native are unused */
  unsigned threads;             /* the pool's threads; 0: HTTP_POOL_THREADS */
  sigv4_secret_fn secret_lookup;/* access key -> secret */
  const char *admin_access_key; /* requests signed with it are admin; others
                                   (functions' derived keys) are not; NULL:
                                   every signed request is admin */
  void *secret_ctx;
  http_service *native;         /* answers /_tarn/... (health needs no signature) */
  http_service **services;      /* by scope name; the one named "s3" also takes unsigned requests */
  size_t nservices;
  bool log_requests;            /* one log line per request */
} http_config;

int http_server_start(const http_config *cfg, http_server **out, err *e);
/* The port actually bound (after listen_port 0). */
int http_server_port(const http_server *s);
/* Stops accepting, lets in-flight requests finish for up to deadline_ms,
 * then closes every connection. Accepts NULL; returns NULL. */
http_server *http_server_stop(http_server *s, int deadline_ms);

/* Appends the HTTP metrics (requests, errors and latency histograms by
 * service and operation, bytes in and out) in Prometheus text format. */
void http_server_metrics(http_server *s, buf *out);

#endif
