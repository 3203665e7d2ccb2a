/* bench/s3load.c -- a load generator for S3 servers (and plain HTTP ones).
 *
 * Why: `make bench` compares tarn with peers run on the same machine in the
 * same run (DESIGN.md §9), so the client must cost the same for every server
 * and must not be the bottleneck: C, one thread and one keep-alive TCP
 * connection per simulated client, the payload generated once, responses
 * read into one reused buffer and thrown away.
 *
 * Usage: s3load OP [options]; OP is put, get, head, list, mb (make bucket),
 * payload (write --size bytes of the payload to stdout, to seed a static file
 * server with the same bytes) or freeport (print a free TCP port on
 * 127.0.0.1). See usage() for the options. One result line goes to stdout:
 *   op=get conns=8 ops=... errors=0 secs=... ops_s=... mib_s=... p50_ms=... p99_ms=...
 *
 * Invariants:
 *   (1) Each worker owns one connection and sends one request at a time
 *       (no pipelining); a response is read fully (Content-Length, chunked,
 *       or until close) before the next request goes out.
 *   (2) Only status --expect (200) counts as an op; anything else counts as
 *       an error, the first one is printed, and the exit status is 1.
 *   (3) Requests are signed with tarn's own SigV4 signer (header form,
 *       UNSIGNED-PAYLOAD, service s3), unless --no-sign.
 *
 * Start reading at worker_main().
 */
#include "base/arena.h"
#include "base/text.h"
#include "aws/sigv4.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE (1024 * 1024)  /* read buffer per connection */
#define MAX_HEAD (64 * 1024)     /* limit on a response's header section */
#define MAX_CONNS 256
#define MAX_FAILS_IN_ROW 50      /* give up a worker after this many */

enum op { OP_PUT, OP_GET, OP_HEAD, OP_LIST, OP_MB };

typedef struct options {
  enum op op;
  const char *host;        /* IPv4 address to connect to */
  int port;
  const char *bucket;
  const char *key;         /* fixed key, or NULL for <key_prefix><thread>-<i> */
  const char *key_prefix;
  long keys;               /* cycle i over [0, keys) when > 0 */
  size_t size;             /* PUT body bytes */
  int conns;
  double duration;         /* seconds; used when count is 0 */
  long count;              /* requests per connection; 0 means use duration */
  const char *access_key;
  const char *secret_key;
  const char *region;
  bool sign;
  const char *list_prefix;
  int max_keys;
  const char *path;        /* raw path override (e.g. /_tarn/health) */
  int expect;              /* the status that counts as success */
  bool verify;             /* GET: compare the body with the payload */
} options;

typedef struct worker {
  const options *o;
  int id;                  /* thread index, part of the key names */
  int fd;                  /* the connection, -1 when closed */
  char *rbuf;              /* RBUF_SIZE bytes */
  size_t rpos;             /* first unread byte in rbuf */
  size_t rlen;             /* bytes held in rbuf */
  bool must_close;         /* the last response said Connection: close */
  uint32_t *lat_us;        /* latency of each successful op */
  size_t nlat;
  size_t caplat;
  long ops;
  long errors;
  uint64_t bytes;          /* payload bytes moved (PUT bodies, GET bodies) */
  double start;            /* monotonic seconds when the worker started */
  double end;              /* monotonic seconds when the worker stopped */
  char errmsg[768];        /* the first error of this worker */
} worker;

static const char *payload;       /* generated once, shared read-only */
static size_t payload_len;
static pthread_barrier_t start_barrier; /* all connected: start the clocks */

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t n)
{
  void *p = malloc(n);
  if (p == NULL) {
    fputs("s3load: out of memory\n", stderr);
    exit(2);
  }
  return p;
}

/* Incompressible, deterministic bytes (xorshift64*), so every server gets
 * the same payload and `s3load payload` can reproduce it. */
static char *payload_make(size_t n)
{
  char *p = xmalloc(n ? n : 1);
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  size_t i = 0;
  while (i < n) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    uint64_t v = x * 0x2545f4914f6cdd1dULL;
    size_t take = n - i < 8 ? n - i : 8;
    memcpy(p + i, &v, take);
    i += take;
  }
  return p;
}

static void worker_fail(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void worker_fail(worker *w, const char *fmt, ...)
{
  w->errors++;
  if (w->errmsg[0] != '\0')
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
  va_end(ap);
}

static void conn_close(worker *w)
{
  if (w->fd >= 0)
    close(w->fd);
  w->fd = -1;
  w->rpos = 0;
  w->rlen = 0;
  w->must_close = false;
}

static int conn_open(worker *w)
{
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)w->o->port);
  if (inet_pton(AF_INET, w->o->host, &sa.sin_addr) != 1) {
    worker_fail(w, "bad address '%s'", w->o->host);
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    worker_fail(w, "socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    worker_fail(w, "cannot connect to '%s:%d': %s", w->o->host, w->o->port, strerror(errno));
    close(fd);
    return -1;
  }
  w->fd = fd;
  w->rpos = 0;
  w->rlen = 0;
  w->must_close = false;
  return 0;
}

/* Sends all iov; 0 or -1. */
static int send_all(worker *w, struct iovec *iov, int niov)
{
  while (niov > 0) {
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)niov;
    ssize_t n = sendmsg(w->fd, &mh, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      worker_fail(w, "send: %s", strerror(errno));
      return -1;
    }
    size_t left = (size_t)n;
    while (niov > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      niov--;
    }
    if (niov > 0) {
      iov->iov_base = (char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

/* Reads more bytes into rbuf after what it holds (compacting first when the
 * unread part is not at the start). Returns bytes read, 0 at EOF, -1 on error. */
static ssize_t conn_fill(worker *w)
{
  if (w->rpos == w->rlen) {
    w->rpos = 0;
    w->rlen = 0;
  } else if (w->rpos > 0 && w->rlen == RBUF_SIZE) {
    memmove(w->rbuf, w->rbuf + w->rpos, w->rlen - w->rpos);
    w->rlen -= w->rpos;
    w->rpos = 0;
  }
  if (w->rlen == RBUF_SIZE)
    return -1;
  for (;;) {
    ssize_t n = recv(w->fd, w->rbuf + w->rlen, RBUF_SIZE - w->rlen, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n > 0)
      w->rlen += (size_t)n;
    return n;
  }
}

/* Consumes up to n body bytes: compares them with the payload at *off when
 * verifying, keeps the first ones in keep (error bodies). */
static size_t body_take(worker *w, size_t n, uint64_t *off, bool *mismatch,
                        char *keep, size_t keepcap, size_t *keeplen)
{
  size_t avail = w->rlen - w->rpos;
  size_t take = n < avail ? n : avail;
  const char *p = w->rbuf + w->rpos;
  if (w->o->verify && !*mismatch) {
    if (*off + take > payload_len || memcmp(p, payload + *off, take) != 0)
      *mismatch = true;
  }
  if (keep != NULL && *keeplen < keepcap) {
    size_t k = take < keepcap - *keeplen ? take : keepcap - *keeplen;
    memcpy(keep + *keeplen, p, k);
    *keeplen += k;
  }
  *off += take;
  w->rpos += take;
  return take;
}

/* Reads exactly n body bytes. 0 or -1. */
static int body_read(worker *w, uint64_t n, uint64_t *off, bool *mismatch,
                     char *keep, size_t keepcap, size_t *keeplen)
{
  while (n > 0) {
    if (w->rpos == w->rlen) {
      ssize_t r = conn_fill(w);
      if (r <= 0) {
        worker_fail(w, "connection lost in a response body");
        return -1;
      }
    }
    size_t chunk = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
    n -= body_take(w, chunk, off, mismatch, keep, keepcap, keeplen);
  }
  return 0;
}

/* Reads one CRLF-terminated line into line (without the CRLF). 0 or -1. */
static int line_read(worker *w, char *line, size_t cap)
{
  for (;;) {
    char *start = w->rbuf + w->rpos;
    char *nl = memchr(start, '\n', w->rlen - w->rpos);
    if (nl != NULL) {
      size_t len = (size_t)(nl - start);
      if (len > 0 && start[len - 1] == '\r')
        len--;
      if (len >= cap)
        len = cap - 1;
      memcpy(line, start, len);
      line[len] = '\0';
      w->rpos = (size_t)(nl - w->rbuf) + 1;
      return 0;
    }
    if (conn_fill(w) <= 0)
      return -1;
  }
}

static bool header_is(const char *line, size_t namelen, const char *name)
{
  return strlen(name) == namelen && strncasecmp(line, name, namelen) == 0;
}

/* Reads one response. Returns its status (and the body bytes in *body), or
 * -1 when the connection failed. keep gets the first bytes of the body;
 * *bad_body is set when verifying and the body is not the payload. */
static int response_read(worker *w, bool head_request, uint64_t *body, bool *bad_body,
                         char *keep, size_t keepcap, size_t *keeplen)
{
  /* Wait for the whole header section. */
  char *hend;
  for (;;) {
    hend = memmem(w->rbuf + w->rpos, w->rlen - w->rpos, "\r\n\r\n", 4);
    if (hend != NULL)
      break;
    if (w->rlen - w->rpos > MAX_HEAD) {
      worker_fail(w, "response header section over %d bytes", MAX_HEAD);
      return -1;
    }
    ssize_t r = conn_fill(w);
    if (r <= 0) {
      worker_fail(w, "connection closed before a response");
      return -1;
    }
  }
  char *p = w->rbuf + w->rpos;
  char *end = hend + 2; /* the last header line's CRLF */
  w->rpos = (size_t)(hend + 4 - w->rbuf);

  int status = 0;
  if (sscanf(p, "HTTP/%*d.%*d %d", &status) != 1) {
    worker_fail(w, "bad status line");
    return -1;
  }
  bool http10 = strncmp(p, "HTTP/1.0", 8) == 0;
  long long clen = -1;
  bool chunked = false;
  bool close_conn = http10;
  char *line = memchr(p, '\n', (size_t)(end - p));
  line = line ? line + 1 : end;
  while (line < end) {
    char *eol = memchr(line, '\r', (size_t)(end - line));
    if (eol == NULL)
      eol = end;
    char *colon = memchr(line, ':', (size_t)(eol - line));
    if (colon != NULL) {
      size_t nlen = (size_t)(colon - line);
      char *v = colon + 1;
      while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
      size_t vlen = (size_t)(eol - v);
      if (header_is(line, nlen, "content-length"))
        clen = strtoll(v, NULL, 10);
      else if (header_is(line, nlen, "transfer-encoding"))
        chunked = vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0;
      else if (header_is(line, nlen, "connection")) {
        if (vlen >= 5 && strncasecmp(v, "close", 5) == 0)
          close_conn = true;
        else if (vlen >= 10 && strncasecmp(v, "keep-alive", 10) == 0)
          close_conn = false;
      }
    }
    line = eol + 2;
  }
  w->must_close = close_conn;

  uint64_t off = 0;
  bool mismatch = false;
  if (head_request || status == 204 || status == 304 || (status >= 100 && status < 200)) {
    /* no body */
  } else if (chunked) {
    char cl[256];
    for (;;) {
      if (line_read(w, cl, sizeof cl) != 0) {
        worker_fail(w, "connection lost in a chunked body");
        return -1;
      }
      uint64_t n = strtoull(cl, NULL, 16);
      if (n == 0)
        break;
      if (body_read(w, n, &off, &mismatch, keep, keepcap, keeplen) != 0)
        return -1;
      if (line_read(w, cl, sizeof cl) != 0) /* CRLF after the data */
        return -1;
    }
    for (;;) { /* trailers, up to the empty line */
      if (line_read(w, cl, sizeof cl) != 0)
        return -1;
      if (cl[0] == '\0')
        break;
    }
  } else if (clen >= 0) {
    if (body_read(w, (uint64_t)clen, &off, &mismatch, keep, keepcap, keeplen) != 0)
      return -1;
  } else {
    /* Neither: the body runs until the server closes. */
    for (;;) {
      if (w->rpos == w->rlen) {
        ssize_t r = conn_fill(w);
        if (r < 0)
          return -1;
        if (r == 0)
          break;
      }
      body_take(w, SIZE_MAX, &off, &mismatch, keep, keepcap, keeplen);
    }
    w->must_close = true;
  }
  *bad_body = mismatch || (w->o->verify && !head_request && off != payload_len);
  *body = off;
  return status;
}

/* The x-amz-date of now; cached per second by the caller. */
static void amz_date_now(char out[17])
{
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* Builds and sends one request; then reads the response. Returns 0 on the
 * expected status, 1 on another status (an error, recorded), -1 when the
 * connection failed. */
static int request_do(worker *w, long i, char *host_hdr)
{
  const options *o = w->o;
  char key[512];
  if (o->key != NULL)
    snprintf(key, sizeof key, "%s", o->key);
  else
    snprintf(key, sizeof key, "%s%d-%ld", o->key_prefix, w->id, o->keys > 0 ? i % o->keys : i);

  const char *method = "GET";
  char path[1024];
  char query[512] = "";
  str_pair q[3];
  size_t nq = 0;
  char maxk[16];
  bool has_body = false;
  switch (o->op) {
  case OP_PUT:
    method = "PUT";
    has_body = true;
    snprintf(path, sizeof path, "/%s/%s", o->bucket, key);
    break;
  case OP_GET:
    snprintf(path, sizeof path, "/%s/%s", o->bucket, key);
    break;
  case OP_HEAD:
    method = "HEAD";
    snprintf(path, sizeof path, "/%s/%s", o->bucket, key);
    break;
  case OP_LIST:
    snprintf(path, sizeof path, "/%s", o->bucket);
    {
      snprintf(maxk, sizeof maxk, "%d", o->max_keys);
      q[nq++] = (str_pair){"list-type", "2"};
      q[nq++] = (str_pair){"max-keys", maxk};
      q[nq++] = (str_pair){"prefix", o->list_prefix};
      /* The list prefix is URL-safe but for '/', which is sent as %2F. */
      char enc[256];
      size_t k = 0;
      for (const char *s = o->list_prefix; *s && k + 4 < sizeof enc; s++) {
        if (*s == '/') {
          memcpy(enc + k, "%2F", 3);
          k += 3;
        } else {
          enc[k++] = *s;
        }
      }
      enc[k] = '\0';
      snprintf(query, sizeof query, "?list-type=2&max-keys=%s&prefix=%s", maxk, enc);
    }
    break;
  case OP_MB:
    method = "PUT";
    snprintf(path, sizeof path, "/%s", o->bucket);
    break;
  }
  if (o->path != NULL)
    snprintf(path, sizeof path, "%s", o->path);

  static __thread char amz_date[17];
  static __thread time_t amz_sec;
  time_t t = time(NULL);
  if (t != amz_sec) {
    amz_date_now(amz_date);
    amz_sec = t;
  }

  char hdr[4096];
  int hl;
  size_t body_len = has_body ? o->size : 0;
  if (o->sign) {
    arena *a = arena_new();
    str_pair h[3] = {
      {"host", host_hdr},
      {"x-amz-content-sha256", SIGV4_UNSIGNED_PAYLOAD},
      {"x-amz-date", amz_date},
    };
    sigv4_request sr = {
      .method = method,
      .raw_path = path,
      .query = q,
      .nquery = nq,
      .headers = h,
      .nheaders = 3,
    };
    const char *auth = sigv4_sign_header(&sr, o->access_key, o->secret_key, o->region, "s3",
                                         amz_date, "host;x-amz-content-sha256;x-amz-date",
                                         SIGV4_UNSIGNED_PAYLOAD, a);
    hl = snprintf(hdr, sizeof hdr,
                  "%s %s%s HTTP/1.1\r\nHost: %s\r\nx-amz-content-sha256: %s\r\n"
                  "x-amz-date: %s\r\nAuthorization: %s\r\n",
                  method, path, query, host_hdr, SIGV4_UNSIGNED_PAYLOAD, amz_date,
                  auth ? auth : "");
    arena_free(a);
  } else {
    hl = snprintf(hdr, sizeof hdr, "%s %s%s HTTP/1.1\r\nHost: %s\r\n", method, path, query,
                  host_hdr);
  }
  if (has_body || o->op == OP_MB)
    hl += snprintf(hdr + hl, sizeof hdr - (size_t)hl,
                   "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n", body_len);
  hl += snprintf(hdr + hl, sizeof hdr - (size_t)hl, "\r\n");

  struct iovec iov[2] = {{hdr, (size_t)hl}, {(void *)payload, body_len}};
  if (send_all(w, iov, body_len > 0 ? 2 : 1) != 0)
    return -1;

  uint64_t body = 0;
  char keep[512];
  size_t keeplen = 0;
  bool bad_body = false;
  int status = response_read(w, o->op == OP_HEAD, &body, &bad_body, keep, sizeof keep - 1,
                             &keeplen);
  if (status < 0)
    return -1;
  if (status != o->expect) {
    keep[keeplen] = '\0';
    worker_fail(w, "%s %s: status %d: %s", method, path, status, keep);
    return 1;
  }
  if (bad_body) {
    worker_fail(w, "%s %s: the body (%llu bytes) differs from the payload", method, path,
                (unsigned long long)body);
    return 1;
  }
  w->bytes += has_body ? body_len : body;
  return 0;
}

static void lat_push(worker *w, uint32_t us)
{
  if (w->nlat == w->caplat) {
    w->caplat = w->caplat ? w->caplat * 2 : 4096;
    uint32_t *n = realloc(w->lat_us, w->caplat * sizeof *n);
    if (n == NULL) {
      fputs("s3load: out of memory\n", stderr);
      exit(2);
    }
    w->lat_us = n;
  }
  w->lat_us[w->nlat++] = us;
}

static void *worker_main(void *arg)
{
  worker *w = arg;
  const options *o = w->o;
  char host_hdr[128];
  snprintf(host_hdr, sizeof host_hdr, "%s:%d", o->host, o->port);
  w->rbuf = xmalloc(RBUF_SIZE);
  w->fd = -1;
  conn_open(w); /* connect before the clock starts; failures retried below */

  pthread_barrier_wait(&start_barrier);
  w->start = now_s();
  double deadline = w->start + o->duration;

  int fails = 0;
  for (long i = 0; o->count > 0 ? i < o->count : true; i++) {
    double t0 = now_s();
    if (o->count == 0 && t0 >= deadline)
      break;
    if (w->fd < 0 && conn_open(w) != 0) {
      if (++fails >= MAX_FAILS_IN_ROW)
        break;
      continue;
    }
    int rc = request_do(w, i, host_hdr);
    double t1 = now_s();
    if (rc == 0) {
      w->ops++;
      lat_push(w, (uint32_t)((t1 - t0) * 1e6));
      fails = 0;
    } else if (++fails >= MAX_FAILS_IN_ROW) {
      break;
    }
    if (rc < 0 || w->must_close)
      conn_close(w);
  }
  w->end = now_s();
  conn_close(w);
  free(w->rbuf);
  w->rbuf = NULL;
  return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *)a;
  uint32_t y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static size_t parse_size(const char *s)
{
  char *end;
  double v = strtod(s, &end);
  switch (*end) {
  case 'k': case 'K': v *= 1024; break;
  case 'm': case 'M': v *= 1024 * 1024; break;
  case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
  default: break;
  }
  return (size_t)v;
}

static int freeport(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    perror("s3load: freeport");
    return 1;
  }
  printf("%d\n", ntohs(sa.sin_port));
  close(fd);
  return 0;
}

static int payload_write(size_t n)
{
  char *p = payload_make(n);
  size_t off = 0;
  while (off < n) {
    ssize_t k = write(STDOUT_FILENO, p + off, n - off);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      perror("s3load: payload");
      return 1;
    }
    off += (size_t)k;
  }
  free(p);
  return 0;
}

static void usage(void)
{
  fputs("usage: s3load put|get|head|list|mb|payload|freeport [options]\n"
        "  --host ADDR        IPv4 address (127.0.0.1)\n"
        "  --port N           server port\n"
        "  --bucket B         bucket (bench)\n"
        "  --key K            a fixed key for every request\n"
        "  --key-prefix P     keys are P<thread>-<i> (bench/obj-)\n"
        "  --keys N           cycle i over [0, N)\n"
        "  --size N[K|M]      PUT body size, also the payload for --verify\n"
        "  --conns N          concurrent connections, one thread each (1)\n"
        "  --duration SECS    run for this long (3)\n"
        "  --count N          or send N requests per connection\n"
        "  --access-key A, --secret-key S, --region R (us-east-1)\n"
        "  --no-sign          send no Authorization header\n"
        "  --prefix P         list: the prefix (list/)\n"
        "  --max-keys N       list: max-keys (100)\n"
        "  --path P           raw request path instead of /bucket/key\n"
        "  --expect N         the status that counts as success (200)\n"
        "  --verify           GET: check the body equals the payload\n",
        stderr);
}

int main(int argc, char **argv)
{
  options o = {
    .host = "127.0.0.1",
    .bucket = "bench",
    .key_prefix = "bench/obj-",
    .conns = 1,
    .duration = 3,
    .access_key = getenv("TARN_ACCESS_KEY"),
    .secret_key = getenv("TARN_SECRET_KEY"),
    .region = "us-east-1",
    .sign = true,
    .list_prefix = "list/",
    .max_keys = 100,
    .expect = 200,
  };
  if (argc < 2) {
    usage();
    return 2;
  }
  const char *opname = argv[1];
  static const struct option longopts[] = {
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"bucket", required_argument, NULL, 'b'},
    {"key", required_argument, NULL, 'k'},
    {"key-prefix", required_argument, NULL, 'K'},
    {"keys", required_argument, NULL, 'n'},
    {"size", required_argument, NULL, 's'},
    {"conns", required_argument, NULL, 'c'},
    {"duration", required_argument, NULL, 'd'},
    {"count", required_argument, NULL, 'N'},
    {"access-key", required_argument, NULL, 'A'},
    {"secret-key", required_argument, NULL, 'S'},
    {"region", required_argument, NULL, 'r'},
    {"no-sign", no_argument, NULL, 'u'},
    {"prefix", required_argument, NULL, 'P'},
    {"max-keys", required_argument, NULL, 'm'},
    {"path", required_argument, NULL, 'x'},
    {"expect", required_argument, NULL, 'e'},
    {"verify", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
  };
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
    case 'H': o.host = optarg; break;
    case 'p': o.port = atoi(optarg); break;
    case 'b': o.bucket = optarg; break;
    case 'k': o.key = optarg; break;
    case 'K': o.key_prefix = optarg; break;
    case 'n': o.keys = atol(optarg); break;
    case 's': o.size = parse_size(optarg); break;
    case 'c': o.conns = atoi(optarg); break;
    case 'd': o.duration = atof(optarg); break;
    case 'N': o.count = atol(optarg); break;
    case 'A': o.access_key = optarg; break;
    case 'S': o.secret_key = optarg; break;
    case 'r': o.region = optarg; break;
    case 'u': o.sign = false; break;
    case 'P': o.list_prefix = optarg; break;
    case 'm': o.max_keys = atoi(optarg); break;
    case 'x': o.path = optarg; break;
    case 'e': o.expect = atoi(optarg); break;
    case 'v': o.verify = true; break;
    default: usage(); return 2;
    }
  }

  if (strcmp(opname, "freeport") == 0)
    return freeport();
  if (strcmp(opname, "payload") == 0)
    return payload_write(o.size);
  if (strcmp(opname, "put") == 0) o.op = OP_PUT;
  else if (strcmp(opname, "get") == 0) o.op = OP_GET;
  else if (strcmp(opname, "head") == 0) o.op = OP_HEAD;
  else if (strcmp(opname, "list") == 0) o.op = OP_LIST;
  else if (strcmp(opname, "mb") == 0) o.op = OP_MB;
  else {
    usage();
    return 2;
  }
  if (o.op == OP_MB && o.count == 0)
    o.count = 1;
  if (o.port <= 0 || o.conns < 1 || o.conns > MAX_CONNS) {
    fputs("s3load: need --port, and --conns between 1 and 256\n", stderr);
    return 2;
  }
  if (o.sign && (o.access_key == NULL || o.secret_key == NULL)) {
    fputs("s3load: need --access-key and --secret-key (or TARN_ACCESS_KEY/TARN_SECRET_KEY), "
          "or --no-sign\n", stderr);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  payload_len = o.size;
  payload = payload_make(o.size);

  worker *ws = calloc((size_t)o.conns, sizeof *ws);
  pthread_t *th = calloc((size_t)o.conns, sizeof *th);
  if (ws == NULL || th == NULL)
    return 2;
  pthread_barrier_init(&start_barrier, NULL, (unsigned)o.conns);
  for (int i = 0; i < o.conns; i++) {
    ws[i].o = &o;
    ws[i].id = i;
    if (pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0) {
      perror("s3load: pthread_create");
      return 2;
    }
  }
  long ops = 0;
  long errors = 0;
  uint64_t bytes = 0;
  double start = 0;
  double end = 0;
  size_t nlat = 0;
  for (int i = 0; i < o.conns; i++) {
    pthread_join(th[i], NULL);
    ops += ws[i].ops;
    errors += ws[i].errors;
    bytes += ws[i].bytes;
    nlat += ws[i].nlat;
    if (i == 0 || ws[i].start < start)
      start = ws[i].start;
    if (ws[i].end > end)
      end = ws[i].end;
  }
  uint32_t *lat = xmalloc((nlat ? nlat : 1) * sizeof *lat);
  size_t k = 0;
  for (int i = 0; i < o.conns; i++) {
    if (ws[i].nlat > 0)
      memcpy(lat + k, ws[i].lat_us, ws[i].nlat * sizeof *lat);
    k += ws[i].nlat;
    free(ws[i].lat_us);
  }
  qsort(lat, nlat, sizeof *lat, cmp_u32);
  double p50 = nlat ? lat[nlat / 2] / 1000.0 : 0;
  double p99 = nlat ? lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 : nlat - 1] / 1000.0 : 0;
  double secs = end - start;
  if (secs <= 0)
    secs = 1e-9;
  printf("op=%s conns=%d ops=%ld errors=%ld secs=%.3f ops_s=%.1f mib_s=%.1f p50_ms=%.3f "
         "p99_ms=%.3f\n",
         opname, o.conns, ops, errors, secs, (double)ops / secs,
         (double)bytes / secs / (1024.0 * 1024.0), p50, p99);
  for (int i = 0; i < o.conns; i++) {
    if (ws[i].errmsg[0] != '\0') {
      fprintf(stderr, "s3load: %s (%ld errors on connection %d)\n", ws[i].errmsg,
              ws[i].errors, i);
      break;
    }
  }
  free(lat);
  free(ws);
  free(th);
  free((void *)payload);
  return errors > 0 || ops == 0 ? 1 : 0;
}
