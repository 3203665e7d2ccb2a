/* bench/fn/httpc.c -- a keep-alive HTTP/1.1 client with SigV4, for the
 * benchmarks (see httpc.h).
 *
 * Invariants:
 *   (1) One request at a time per connection (no pipelining); a response is
 *       read to its end (Content-Length or chunked) before httpc_do returns.
 *   (2) Any failure closes the connection, so a half-read response never
 *       shows up as the next request's answer.
 *
 * Start reading at httpc_do().
 */
#include "httpc.h"

#include "base/arena.h"
#include "base/hash.h"
#include "aws/sigv4.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define RBUF_MIN (256u * 1024)
#define MAX_HEAD (64u * 1024)

static void *xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n);
  if (q == NULL) {
    fputs("bench: out of memory\n", stderr);
    exit(2);
  }
  return q;
}

double httpc_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t httpc_wall_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void httpc_conn_init(httpc_conn *c, const char *host, int port, const char *access_key,
                     const char *secret_key)
{
  memset(c, 0, sizeof *c);
  c->host = host;
  c->port = port;
  c->access_key = access_key;
  c->secret_key = secret_key;
  c->fd = -1;
  c->rcap = RBUF_MIN;
  c->rbuf = xrealloc(NULL, c->rcap);
  c->body_cap = 4096;
  c->body = xrealloc(NULL, c->body_cap);
  c->body[0] = '\0';
}

static void conn_close(httpc_conn *c)
{
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  c->rpos = 0;
  c->rlen = 0;
}

void httpc_conn_release(httpc_conn *c)
{
  conn_close(c);
  free(c->rbuf);
  free(c->body);
  c->rbuf = NULL;
  c->body = NULL;
}

static int fail(httpc_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(httpc_conn *c, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  conn_close(c);
  c->status = -1;
  return -1;
}

int httpc_conn_open(httpc_conn *c)
{
  if (c->fd >= 0)
    return 0;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)c->port);
  if (inet_pton(AF_INET, c->host, &sa.sin_addr) != 1)
    return fail(c, "bad address '%s'", c->host);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return fail(c, "socket: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return fail(c, "cannot connect to '%s:%d': %s", c->host, c->port, strerror(errno));
  }
  c->fd = fd;
  c->rpos = 0;
  c->rlen = 0;
  return 0;
}

static int send_all(httpc_conn *c, struct iovec *iov, int niov)
{
  while (niov > 0) {
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)niov;
    ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
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

/* Reads more bytes after those held; bytes read, 0 at EOF, -1 on error. */
static ssize_t fill(httpc_conn *c)
{
  if (c->rpos == c->rlen) {
    c->rpos = 0;
    c->rlen = 0;
  } else if (c->rpos > 0) {
    memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
    c->rlen -= c->rpos;
    c->rpos = 0;
  }
  if (c->rlen == c->rcap) {
    c->rcap *= 2;
    c->rbuf = xrealloc(c->rbuf, c->rcap);
  }
  for (;;) {
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n > 0)
      c->rlen += (size_t)n;
    return n;
  }
}

static int body_append(httpc_conn *c, size_t n)
{
  if (c->body_len + n + 1 > HTTPC_MAX_BODY)
    return -1;
  if (c->body_len + n + 1 > c->body_cap) {
    while (c->body_len + n + 1 > c->body_cap)
      c->body_cap *= 2;
    c->body = xrealloc(c->body, c->body_cap);
  }
  memcpy(c->body + c->body_len, c->rbuf + c->rpos, n);
  c->body_len += n;
  c->body[c->body_len] = '\0';
  c->rpos += n;
  return 0;
}

static int body_read(httpc_conn *c, uint64_t n)
{
  while (n > 0) {
    if (c->rpos == c->rlen && fill(c) <= 0)
      return fail(c, "connection lost in a response body");
    size_t avail = c->rlen - c->rpos;
    size_t take = n < avail ? (size_t)n : avail;
    if (body_append(c, take) != 0)
      return fail(c, "response body over %u bytes", HTTPC_MAX_BODY);
    n -= take;
  }
  return 0;
}

/* One CRLF-terminated line into out (without the CRLF); 0 or -1. */
static int line_read(httpc_conn *c, char *out, size_t cap)
{
  for (;;) {
    char *start = c->rbuf + c->rpos;
    char *nl = memchr(start, '\n', c->rlen - c->rpos);
    if (nl != NULL) {
      size_t len = (size_t)(nl - start);
      if (len > 0 && start[len - 1] == '\r')
        len--;
      if (len >= cap)
        len = cap - 1;
      memcpy(out, start, len);
      out[len] = '\0';
      c->rpos = (size_t)(nl - c->rbuf) + 1;
      return 0;
    }
    if (fill(c) <= 0)
      return fail(c, "connection lost in a chunked body");
  }
}

static int response_read(httpc_conn *c, bool head)
{
  char *hend;
  for (;;) {
    hend = memmem(c->rbuf + c->rpos, c->rlen - c->rpos, "\r\n\r\n", 4);
    if (hend != NULL)
      break;
    if (c->rlen - c->rpos > MAX_HEAD)
      return fail(c, "response header section over %u bytes", MAX_HEAD);
    if (fill(c) <= 0)
      return fail(c, "connection closed before a response");
  }
  char *p = c->rbuf + c->rpos;
  char *end = hend + 2;
  size_t after = (size_t)(hend + 4 - c->rbuf);
  int status = 0;
  if (sscanf(p, "HTTP/%*d.%*d %d", &status) != 1)
    return fail(c, "bad status line");
  long long clen = -1;
  bool chunked = false;
  bool close_conn = strncmp(p, "HTTP/1.0", 8) == 0;
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
      if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0)
        clen = strtoll(v, NULL, 10);
      else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)
        chunked = vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0;
      else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0)
        close_conn = vlen >= 5 && strncasecmp(v, "close", 5) == 0;
    }
    line = eol + 2;
  }
  c->rpos = after;
  c->body_len = 0;
  c->body[0] = '\0';
  if (head || status == 204 || status == 304 || (status >= 100 && status < 200)) {
    /* no body */
  } else if (chunked) {
    char cl[256];
    for (;;) {
      if (line_read(c, cl, sizeof cl) != 0)
        return -1;
      uint64_t n = strtoull(cl, NULL, 16);
      if (n == 0)
        break;
      if (body_read(c, n) != 0 || line_read(c, cl, sizeof cl) != 0)
        return -1;
    }
    do { /* trailers, up to the empty line */
      if (line_read(c, cl, sizeof cl) != 0)
        return -1;
    } while (cl[0] != '\0');
  } else if (clen >= 0) {
    if (body_read(c, (uint64_t)clen) != 0)
      return -1;
  } else {
    for (;;) { /* until the server closes */
      if (c->rpos == c->rlen) {
        ssize_t r = fill(c);
        if (r < 0)
          return fail(c, "connection lost in a response body");
        if (r == 0)
          break;
      }
      if (body_append(c, c->rlen - c->rpos) != 0)
        return fail(c, "response body over %u bytes", HTTPC_MAX_BODY);
    }
    close_conn = true;
  }
  c->status = status;
  if (close_conn)
    conn_close(c);
  return status;
}

int httpc_do(httpc_conn *c, const httpc_request *r)
{
  static __thread char amz_date[17];
  static __thread time_t amz_sec;
  time_t t = time(NULL);
  if (t != amz_sec) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
    amz_sec = t;
  }
  char host[96];
  snprintf(host, sizeof host, "%s:%d", c->host, c->port);
  bool s3 = strcmp(r->service, "s3") == 0;

  char query[1024];
  size_t ql = 0;
  query[0] = '\0';
  for (size_t i = 0; i < r->nquery && ql < sizeof query; i++) {
    const str_pair *q = &r->query[i];
    ql += (size_t)snprintf(query + ql, sizeof query - ql, "%c%s%s%s", i ? '&' : '?', q->name,
                           q->value[0] ? "=" : "", q->value);
  }

  size_t cap = 4096 + 1024 * r->nheaders;
  char *hdr = xrealloc(NULL, cap);
  int hl = snprintf(hdr, cap, "%s %s%s HTTP/1.1\r\nHost: %s\r\n", r->method, r->path, query,
                    host);
  if (c->access_key != NULL) {
    arena *a = arena_new();
    char hash[SHA256_LEN * 2 + 1];
    const char *payload_hash = SIGV4_UNSIGNED_PAYLOAD;
    if (!s3) {
      uint8_t d[SHA256_LEN];
      sha256(r->body, r->len, d);
      hex_encode(d, SHA256_LEN, hash);
      payload_hash = hash;
    }
    str_pair h[3] = {{"host", host}, {"x-amz-content-sha256", SIGV4_UNSIGNED_PAYLOAD},
                     {"x-amz-date", amz_date}};
    if (!s3)
      h[1] = h[2];
    sigv4_request sr = {.method = r->method, .raw_path = r->path, .query = r->query,
                        .nquery = r->nquery, .headers = h, .nheaders = s3 ? 3 : 2};
    const char *auth = sigv4_sign_header(&sr, c->access_key, c->secret_key, "us-east-1",
                                         r->service, amz_date,
                                         s3 ? "host;x-amz-content-sha256;x-amz-date"
                                            : "host;x-amz-date",
                                         payload_hash, a);
    if (s3)
      hl += snprintf(hdr + hl, cap - (size_t)hl, "x-amz-content-sha256: %s\r\n",
                     SIGV4_UNSIGNED_PAYLOAD);
    hl += snprintf(hdr + hl, cap - (size_t)hl, "x-amz-date: %s\r\nAuthorization: %s\r\n",
                   amz_date, auth ? auth : "");
    arena_free(a);
  }
  for (size_t i = 0; i < r->nheaders; i++)
    hl += snprintf(hdr + hl, cap - (size_t)hl, "%s: %s\r\n", r->headers[i].name,
                   r->headers[i].value);
  if (r->body != NULL || strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0)
    hl += snprintf(hdr + hl, cap - (size_t)hl, "Content-Length: %zu\r\n", r->len);
  hl += snprintf(hdr + hl, cap - (size_t)hl, "\r\n");

  /* A kept-alive connection the server closed meanwhile fails on the first
   * send or read: retry once on a new connection then. */
  for (int attempt = 0;; attempt++) {
    bool fresh = c->fd < 0;
    if (httpc_conn_open(c) != 0) {
      free(hdr);
      return -1;
    }
    struct iovec iov[2] = {{hdr, (size_t)hl}, {(void *)r->body, r->len}};
    int rc = send_all(c, iov, r->len > 0 ? 2 : 1);
    if (rc == 0)
      rc = response_read(c, strcmp(r->method, "HEAD") == 0);
    else
      fail(c, "send: %s", strerror(errno));
    if (rc >= 0 || fresh || attempt > 0) {
      free(hdr);
      return rc;
    }
  }
}

/* ---- latency samples ---- */

void lat_add(lat_set *l, double secs)
{
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 1024;
    l->v = xrealloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = secs;
}

void lat_merge(lat_set *into, const lat_set *from)
{
  for (size_t i = 0; i < from->n; i++)
    lat_add(into, from->v[i]);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a;
  double y = *(const double *)b;
  return (x > y) - (x < y);
}

double lat_ms(lat_set *l, double q)
{
  if (l->n == 0)
    return 0;
  qsort(l->v, l->n, sizeof *l->v, cmp_double);
  size_t i = (size_t)(q * (double)l->n);
  if (i >= l->n)
    i = l->n - 1;
  return l->v[i] * 1e3;
}

void lat_release(lat_set *l)
{
  free(l->v);
  memset(l, 0, sizeof *l);
}

int httpc_free_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}
