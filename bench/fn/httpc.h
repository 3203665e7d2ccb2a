/* bench/fn/httpc.h -- the HTTP/1.1 client of the function and queue
 * benchmarks (bench/fn/fnload.c, bench/queue/qload.c): one keep-alive TCP
 * connection, requests signed with tarn's own SigV4 signer, each response
 * read to its end into a buffer the connection owns.
 *
 * Why not libcurl: the benchmarks time requests of a few hundred
 * microseconds, so the client must add as little as possible and cost the
 * same from one run to the next (bench/s3load.c makes the same choice).
 *
 * Not thread-safe: one connection per thread.
 */
#ifndef TARN_BENCH_HTTPC_H
#define TARN_BENCH_HTTPC_H

#include "base/text.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPC_MAX_BODY (64u << 20)   /* a response body larger than this fails */

typedef struct httpc_conn {
  const char *host;          /* IPv4 address */
  int port;
  const char *access_key;    /* NULL: requests go unsigned */
  const char *secret_key;
  int fd;                    /* -1 when closed; opened on the next request */
  char *rbuf;                /* bytes read and not yet consumed */
  size_t rpos;
  size_t rlen;
  size_t rcap;
  int status;                /* of the last response */
  char *body;                /* the last response's body, NUL-terminated */
  size_t body_len;
  size_t body_cap;
  char err[512];             /* why the last request failed (status -1) */
} httpc_conn;

/* One request. query (optional) holds decoded name/value pairs made of
 * URL-safe characters only; headers (optional) are extra "Name: value"
 * pairs, sent but not signed. service "s3" signs UNSIGNED-PAYLOAD (and
 * sends x-amz-content-sha256); any other service signs the body's hash. */
typedef struct httpc_request {
  const char *method;
  const char *path;
  const str_pair *query;
  size_t nquery;
  const str_pair *headers;
  size_t nheaders;
  const char *service;
  const void *body;
  size_t len;
} httpc_request;

void httpc_conn_init(httpc_conn *c, const char *host, int port, const char *access_key,
                     const char *secret_key);
/* Closes the connection and frees the buffers. */
void httpc_conn_release(httpc_conn *c);
/* Connects now (so a benchmark can connect before its clock starts); 0 or -1. */
int httpc_conn_open(httpc_conn *c);
/* Sends r and reads its response: returns the status (also in c->status,
 * the body in c->body), or -1 with c->err set when the connection failed
 * (it is closed; the next request reconnects). */
int httpc_do(httpc_conn *c, const httpc_request *r);

/* Monotonic and wall-clock time. */
double httpc_now(void);
int64_t httpc_wall_ns(void);

/* ---- latency samples ---- */

typedef struct lat_set {
  double *v;                 /* seconds */
  size_t n;
  size_t cap;
} lat_set;

void lat_add(lat_set *l, double secs);
void lat_merge(lat_set *into, const lat_set *from);
/* The q-quantile (0..1) in milliseconds, sorting the samples; 0 when empty. */
double lat_ms(lat_set *l, double q);
void lat_release(lat_set *l);

/* A free TCP port on 127.0.0.1 (racy, as every such helper), or -1. */
int httpc_free_port(void);

#endif
