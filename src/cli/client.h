/* cli/client.h -- the HTTP client of tarn's own commands (`tarn sql`,
 * `tarn fn`, ...): one signed request to the server, with the response body
 * streamed to a callback. Built on libcurl and the SigV4 signer. */
#ifndef TARN_CLI_CLIENT_H
#define TARN_CLI_CLIENT_H

#include "base/buf.h"
#include "base/err.h"
#include "base/text.h"
#include "cli/cli.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct cli_target {
  char endpoint[256];        /* "http://127.0.0.1:9000", from TARN_ENDPOINT */
  cli_credentials keys;      /* from TARN_* / AWS_* / DIR/credentials */
  const char *region;        /* "us-east-1" */
} cli_target;

/* Fills t from the environment and the data directory dir (DESIGN.md §3). */
int cli_target_init(cli_target *t, const char *dir, err *e);

/* Receives response body bytes; non-zero stops the transfer. */
typedef int (*cli_body_fn)(void *ctx, const char *p, size_t n);

typedef struct cli_call {
  const char *method;        /* "GET", "POST", ... */
  const char *path;          /* raw path and query, already percent-encoded */
  const char *service;       /* SigV4 scope service: "s3", "lambda", ... */
  const str_pair *headers;   /* extra headers (signed too) */
  size_t nheaders;
  const void *body;
  size_t body_len;
  cli_body_fn on_body;       /* NULL: the body is discarded */
  void *ctx;
  /* Optional: each response header and trailer, as "name: value" lines
     without the line end (the status line too). */
  void (*on_header)(void *ctx, const char *line, size_t n);
  /* Optional: called about once a second while waiting; seconds so far. */
  void (*on_wait)(void *ctx, double seconds);
} cli_call;

/* A body sink for cli_call.on_body (ctx = the sink): appends to b and stops
 * the transfer once b's limit is passed, setting over. */
typedef struct cli_sink {
  buf *b;
  bool over; /* the answer passed the buffer's limit */
} cli_sink;

int cli_sink_body(void *sink, const char *p, size_t n);

/* Sends the call; *status gets the HTTP status (0 when no answer came).
 * Errors are transport failures only: an HTTP error status is not one. */
int cli_send(const cli_target *t, const cli_call *c, long *status, err *e);

#endif
