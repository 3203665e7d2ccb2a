/* base/egress_stream.c -- a GET whose response body the caller reads as it
 * comes, straight from the socket into the caller's buffer, and a PUT whose
 * body goes from a file to the socket by sendfile (egress.h).
 *
 * Why: a proxy of large bodies (the object backend, store/remote.c) pays
 * for every copy; through libcurl a body is copied from its receive buffer
 * into an answer buffer, then again into the caller's. Here the kernel's
 * receive copy is the only one: the socket's buffer is the read-ahead.
 *
 * Invariants:
 *   (1) As egress.c (1): a connection is made only to an address
 *       netpolicy_addr_check allows (every resolved address is judged).
 *   (2) Plain http only, requests without a body, no redirects, no proxy.
 *       Only a body framed by Content-Length is streamed: any other
 *       framing (chunked, up to close) fails the open, so the caller can
 *       fall back to egress_fetch.
 *   (3) Bounded: headers by MAX_HEADERS and HEAD_MAX bytes, connecting by
 *       connect_timeout_ms, and every wait for a byte by stall_ms.
 *   (4) A connection is kept for reuse (POOL_MAX idle, per host:port) only
 *       when its body was read whole and the answer did not close it. A
 *       request on a reused connection that gets no byte back is sent
 *       once more on a new connection (the peer may have closed it idle).
 *   (5) An upload (egress_upload) goes from its file to the socket by
 *       sendfile(2), never through a buffer here; it is sent again on a new
 *       connection when a reused one failed before its answer (the file is
 *       still there to read).
 *
 * Start reading at egress_stream_open().
 */
#include "base/egress.h"

#include "base/mem.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADERS 200
#define HEAD_MAX (64u << 10)
#define HEAD_READ (16u << 10)    /* the first read of an answer */
#define KEY_MAX (NETPOLICY_HOST_MAX + 16)
#define POOL_MAX 32

struct egress_stream {
  int fd;
  char key[KEY_MAX];           /* host:port (4) */
  char *left;                  /* body bytes read with the headers */
  size_t nleft;
  size_t leftoff;
  uint64_t remain;             /* body bytes not yet given to the caller */
  bool keep;                   /* the connection may be reused (4) */
  int stall_ms;
  const char *url;             /* for messages (the caller's arena) */
};

/* ---- idle connections (4) ---- */

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int fd;
  char key[KEY_MAX];
} pool[POOL_MAX];
static size_t npool;

/* An idle connection to key that the peer has not closed, or -1. */
static int pool_take(const char *key)
{
  for (;;) {
    int fd = -1;
    pthread_mutex_lock(&pool_mu);
    for (size_t i = npool; i-- > 0;)
      if (strcmp(pool[i].key, key) == 0) {
        fd = pool[i].fd;
        pool[i] = pool[--npool];
        break;
      }
    pthread_mutex_unlock(&pool_mu);
    if (fd < 0)
      return -1;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return fd;  /* open, and nothing unasked for in it */
    close(fd);
  }
}

static void pool_put(int fd, const char *key)
{
  pthread_mutex_lock(&pool_mu);
  if (npool < POOL_MAX) {
    pool[npool].fd = fd;
    snprintf(pool[npool].key, sizeof pool[npool].key, "%s", key);
    npool++;
    fd = -1;
  }
  pthread_mutex_unlock(&pool_mu);
  if (fd >= 0)
    close(fd);
}

/* ---- the connection ---- */

static int64_t now_ms(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Waits up to ms for events on fd: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int ms)
{
  struct pollfd p = {.fd = fd, .events = events};
  int64_t until = now_ms() + ms;
  for (;;) {
    int left = (int)(until - now_ms());
    int r = poll(&p, 1, left > 0 ? left : 0);
    if (r > 0)
      return 1;
    if (r == 0)
      return 0;
    if (errno != EINTR)
      return -1;
  }
}

static int connect_to(const netpolicy *p, const char *host, unsigned port, int timeout_ms,
                      const char *url, err *e)
{
  char ps[8];
  snprintf(ps, sizeof ps, "%u", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *ai = NULL;
  int g = getaddrinfo(host, ps, &hints, &ai);
  if (g != 0)
    return err_set(e, ERR_UNAVAILABLE, "cannot reach '%.*s': %s", egress_url_shown(url), url,
                   gai_strerror(g));
  int fd = -1;
  err why = {0};
  bool refused = false;
  for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
    if (netpolicy_addr_check(p, host, a->ai_addr, a->ai_addrlen, &why) != 0) {
      refused = true;
      continue;
    }
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0)
      continue;
    int ok = connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
    if (ok == EINPROGRESS && wait_fd(fd, POLLOUT, timeout_ms) == 1) {
      socklen_t sl = sizeof ok;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &ok, &sl) != 0)
        ok = errno;
    }
    if (ok != 0) {
      why.code = 0;
      snprintf(why.msg, sizeof why.msg, "%s", ok == EINPROGRESS ? "connect timed out"
                                                                 : strerror(ok));
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(ai);
  if (fd < 0) {
    if (refused && why.code != 0)
      return err_set(e, ERR_DENIED, "cannot connect to '%.*s': %s", egress_url_shown(url),
                   url, why.msg);
    return err_set(e, ERR_UNAVAILABLE, "cannot reach '%.*s': %s", egress_url_shown(url), url,
                   why.msg[0] ? why.msg : "no address");
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static int send_all(int fd, const char *p, size_t n, int stall_ms)
{
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait_fd(fd, POLLOUT, stall_ms) != 1)
        return -1;
    } else {
      return -1;
    }
  }
  return 0;
}

/* Reads into p (at most n): >0 bytes, 0 the peer closed, -1 failed, -2
 * nothing within ms. */
static ssize_t recv_some(int fd, void *p, size_t n, int ms)
{
  for (;;) {
    ssize_t r = recv(fd, p, n, 0);
    if (r >= 0)
      return r;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -1;
    if (ms <= 0)
      return -2;
    int w = wait_fd(fd, POLLIN, ms);
    if (w == 0)
      return -2;
    if (w < 0)
      return -1;
  }
}

/* ---- the answer's head ---- */

/* Parses the head (status line and headers, hl bytes without the blank
 * line) into out; *clen the Content-Length or -1; *close when the
 * connection ends with this answer; *framed false when the body is
 * chunked. 0 or -1 (malformed). */
static int parse_head(char *h, size_t hl, arena *a, egress_response *out, int64_t *clen,
                      bool *close_after, bool *framed)
{
  h[hl] = '\0';
  char *line = h;
  char *eol = strstr(line, "\r\n");
  if (eol != NULL)
    *eol = '\0';
  int minor = 0;
  int status = 0;
  if (sscanf(line, "HTTP/1.%d %d", &minor, &status) != 2 || status < 200 || status > 999)
    return -1;
  out->status = status;
  *close_after = minor == 0;
  *clen = -1;
  *framed = true;
  out->headers = arena_alloc(a, MAX_HEADERS * sizeof *out->headers);
  out->nheaders = 0;
  while (eol != NULL) {
    line = eol + 2;
    eol = strstr(line, "\r\n");
    if (eol != NULL)
      *eol = '\0';
    char *colon = strchr(line, ':');
    if (colon == NULL || colon == line)
      continue;
    if (out->nheaders == MAX_HEADERS)
      return -1;
    *colon = '\0';
    for (char *c = line; *c; c++)
      *c = (char)tolower((unsigned char)*c);
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
      v++;
    size_t vl = strlen(v);
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
      v[--vl] = '\0';
    out->headers[out->nheaders].name = arena_strdup(a, line);
    out->headers[out->nheaders].value = arena_strdup(a, v);
    out->nheaders++;
    if (strcmp(line, "content-length") == 0) {
      char *end = NULL;
      errno = 0;
      long long n = strtoll(v, &end, 10);
      if (end == v || *end != '\0' || n < 0 || errno != 0 || (*clen >= 0 && *clen != n))
        return -1;
      *clen = n;
    } else if (strcmp(line, "transfer-encoding") == 0) {
      *framed = false;
    } else if (strcmp(line, "connection") == 0) {
      if (strcasecmp(v, "close") == 0)
        *close_after = true;
      else if (strcasecmp(v, "keep-alive") == 0)
        *close_after = false;
    }
  }
  return 0;
}

/* One try of the exchange on fd: 0 with s filled, 1 when nothing came
 * back (a stale kept connection), or an error code. */
static int read_answer(int fd, int stall_ms, arena *a, egress_response *out, egress_stream *s,
                       err *e);

static int exchange(int fd, const char *req, size_t reqlen, int stall_ms, arena *a,
                    egress_response *out, egress_stream *s, err *e)
{
  if (send_all(fd, req, reqlen, stall_ms) != 0)
    return 1;
  return read_answer(fd, stall_ms, a, out, s, e);
}

/* Reads an answer's head on fd into out and s (the body bytes that came
 * with it kept in s): 0, 1 when nothing came back, or an error code. */
static int read_answer(int fd, int stall_ms, arena *a, egress_response *out, egress_stream *s,
                       err *e)
{
  size_t cap = HEAD_READ;
  char *h = xmalloc(cap + 1);
  size_t len = 0;
  char *end = NULL;
  while (end == NULL) {
    if (len == cap) {
      if (cap >= HEAD_MAX) {
        free(h);
        return err_set(e, ERR_UNAVAILABLE, "the answer of '%.*s' has over %u bytes of "
                       "headers", egress_url_shown(s->url), s->url, HEAD_MAX);
      }
      cap *= 2;
      h = xrealloc(h, cap + 1);
    }
    ssize_t r = recv_some(fd, h + len, cap - len, stall_ms);
    if (r <= 0) {
      free(h);
      if (len == 0 && r != -2)
        return 1;
      return r == -2 ? err_set(e, ERR_REQUEST_TIMEOUT, "'%.*s' stalled for %d ms",
                               egress_url_shown(s->url), s->url,
                               stall_ms)
                     : err_set(e, ERR_UNAVAILABLE, "'%.*s' closed the connection",
                                       egress_url_shown(s->url), s->url);
    }
    size_t from = len > 3 ? len - 3 : 0;
    len += (size_t)r;
    h[len] = '\0';
    end = strstr(h + from, "\r\n\r\n");
  }
  size_t hl = (size_t)(end - h);
  int64_t clen = -1;
  bool close_after = false;
  bool framed = true;
  if (parse_head(h, hl, a, out, &clen, &close_after, &framed) != 0) {
    free(h);
    return err_set(e, ERR_NOT_IMPLEMENTED, "'%.*s' answered with a head not understood "
                   "here", egress_url_shown(s->url), s->url);
  }
  if (!framed || clen < 0) {
    free(h);
    return err_set(e, ERR_NOT_IMPLEMENTED, "'%.*s' answered without a Content-Length",
                   egress_url_shown(s->url), s->url);
  }
  s->left = h;
  s->leftoff = hl + 4;
  s->nleft = len;
  if ((uint64_t)(s->nleft - s->leftoff) > (uint64_t)clen) {  /* more than the body */
    s->nleft = s->leftoff + (size_t)clen;
    close_after = true;
  }
  s->remain = (uint64_t)clen;
  s->keep = !close_after;
  return 0;
}

/* The request's head (method, path, headers, a Content-Length for an
 * upload) in req (the caller releases it). */
static void request_head(const egress_request *rq, const char *path, buf *req)
{
  buf_init(req, HEAD_MAX);
  buf_printf(req, "%s %s HTTP/1.1\r\n", rq->method ? rq->method : "GET", path);
  for (size_t i = 0; i < rq->nheaders; i++)
    buf_printf(req, "%s: %s\r\n", rq->headers[i].name, rq->headers[i].value);
  if (rq->user_agent != NULL)
    buf_printf(req, "user-agent: %s\r\n", rq->user_agent);
  if (rq->upload)
    buf_printf(req, "content-length: %llu\r\n", (unsigned long long)rq->upload_len);
  buf_append(req, "\r\n", 2);
}

/* The host, port and request head of rq, whose URL must be http:// (else
   not_http, the caller's code for that). */
static int request_start(const egress_request *rq, int not_http, char host[NETPOLICY_HOST_MAX],
                         unsigned *port, buf *req, err *e)
{
  if (strncasecmp(rq->url, "http://", 7) != 0)
    return err_set(e, not_http, "'%.*s' is not an http URL", egress_url_shown(rq->url),
                   rq->url);
  if (egress_url_host(rq->url, host, NETPOLICY_HOST_MAX, port, e) != 0)
    return e->code;
  const char *path = strchr(rq->url + 7, '/');
  request_head(rq, path != NULL ? path : "/", req);
  return 0;
}

int egress_stream_open(const netpolicy *p, const egress_request *rq, arena *a,
                       egress_response *out, egress_stream **sp, err *e)
{
  *sp = NULL;
  memset(out, 0, sizeof *out);
  buf_init(&out->body, 1);
  if (rq->body != NULL || rq->upload)
    return err_set(e, ERR_INVALID, "a streamed request has no body");
  char host[NETPOLICY_HOST_MAX];
  unsigned port = 0;
  buf req;
  if (request_start(rq, ERR_INVALID, host, &port, &req, e) != 0)
    return e->code;
  egress_stream *s = xcalloc(1, sizeof *s);
  snprintf(s->key, sizeof s->key, "%s:%u", host, port);
  s->stall_ms = rq->stall_ms > 0 ? rq->stall_ms : rq->timeout_ms;
  s->url = rq->url;
  int ctimeout = rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : rq->timeout_ms;
  int rc = 1;
  for (int attempt = 0; rc == 1 && attempt < 2; attempt++) {
    bool reused = false;
    s->fd = attempt == 0 ? pool_take(s->key) : -1;
    if (s->fd >= 0)
      reused = true;
    else
      s->fd = connect_to(p, host, port, ctimeout, rq->url, e);
    if (s->fd < 0) {
      rc = e->code;
      break;
    }
    rc = exchange(s->fd, req.data, req.len, s->stall_ms, a, out, s, e);
    if (rc != 0) {
      close(s->fd);
      s->fd = -1;
      if (rc == 1 && !reused)
        rc = err_set(e, ERR_UNAVAILABLE, "'%.*s' closed the connection without an "
                     "answer", egress_url_shown(rq->url), rq->url);
    }
  }
  buf_release(&req);
  if (rc != 0) {
    free(s);
    return rc;
  }
  *sp = s;
  return 0;
}

uint64_t egress_stream_left(const egress_stream *s)
{
  return s->remain;
}

int egress_stream_read(egress_stream *s, void *p, size_t n, bool wait, size_t *got, err *e)
{
  *got = 0;
  if (n > s->remain)
    n = (size_t)s->remain;
  if (n == 0)
    return 0;
  if (s->leftoff < s->nleft) {  /* bytes that came with the head */
    size_t k = s->nleft - s->leftoff < n ? s->nleft - s->leftoff : n;
    memcpy(p, s->left + s->leftoff, k);
    s->leftoff += k;
    s->remain -= k;
    *got = k;
    return 0;
  }
  ssize_t r = recv_some(s->fd, p, n, wait ? s->stall_ms : 0);
  if (r > 0) {
    s->remain -= (uint64_t)r;
    *got = (size_t)r;
    return 0;
  }
  if (r == -2 && !wait)
    return 0;
  s->keep = false;
  if (r == -2)
    return err_set(e, ERR_REQUEST_TIMEOUT, "'%.*s' stalled for %d ms",
                               egress_url_shown(s->url), s->url, s->stall_ms);
  return err_set(e, ERR_UNAVAILABLE, "'%.*s' ended its answer %llu bytes early",
                 egress_url_shown(s->url), s->url, (unsigned long long)s->remain);
}

egress_stream *egress_stream_close(egress_stream *s)
{
  if (s == NULL)
    return NULL;
  if (s->fd >= 0) {
    if (s->remain == 0 && s->keep)
      pool_put(s->fd, s->key);
    else
      close(s->fd);
  }
  free(s->left);
  free(s);
  return NULL;
}

/* ---- uploads from a file by sendfile (5) ---- */

/* Sends the body: upload_len bytes of upload_fd from upload_off, each once
 * upload_ready says it is there. 0, 1 when the connection failed (an
 * answer may still be there to read), or an error code. */
static int send_body(int fd, const egress_request *rq, int stall_ms, err *e)
{
  uint64_t sent = 0;
  while (sent < rq->upload_len) {
    uint64_t can = rq->upload_len - sent;
    if (rq->upload_ready != NULL) {
      long k = rq->upload_ready(rq->upload_ctx, sent);
      if (k <= 0)
        return err_set(e, ERR_INVALID, "the upload to '%.*s' was given up",
                       egress_url_shown(rq->url), rq->url);
      if ((uint64_t)k < can)
        can = (uint64_t)k;
    }
    off_t off = (off_t)(rq->upload_off + sent);
    ssize_t w = sendfile(fd, rq->upload_fd, &off, can < (1u << 30) ? (size_t)can : (1u << 30));
    if (w > 0) {
      sent += (uint64_t)w;
    } else if (w == 0) {
      return err_set(e, ERR_IO, "the file uploaded to '%.*s' ended %llu bytes early",
                     egress_url_shown(rq->url), rq->url,
                     (unsigned long long)(rq->upload_len - sent));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait_fd(fd, POLLOUT, stall_ms) != 1)
        return err_set(e, ERR_REQUEST_TIMEOUT, "'%.*s' stalled for %d ms",
                       egress_url_shown(rq->url), rq->url, stall_ms);
    } else if (errno != EINTR) {
      return 1;
    }
  }
  return 0;
}

int egress_upload(const netpolicy *p, const egress_request *rq, arena *a, egress_response *out,
                  err *e)
{
  memset(out, 0, sizeof *out);
  buf_init(&out->body, 1);
  if (!rq->upload || rq->upload_fn != NULL)
    return err_set(e, ERR_INVALID, "an upload by sendfile has its body in a file");
  char host[NETPOLICY_HOST_MAX];
  unsigned port = 0;
  buf req;
  if (request_start(rq, ERR_NOT_IMPLEMENTED, host, &port, &req, e) != 0)
    return e->code;
  egress_stream s = {.fd = -1, .url = rq->url};
  snprintf(s.key, sizeof s.key, "%s:%u", host, port);
  s.stall_ms = rq->stall_ms > 0 ? rq->stall_ms : rq->timeout_ms;
  int ctimeout = rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : rq->timeout_ms;
  int rc = 1;
  for (int attempt = 0; rc == 1 && attempt < 2; attempt++) {
    bool reused = false;
    s.fd = attempt == 0 ? pool_take(s.key) : -1;
    if (s.fd >= 0)
      reused = true;
    else
      s.fd = connect_to(p, host, port, ctimeout, rq->url, e);
    if (s.fd < 0) {
      rc = e->code;
      break;
    }
    rc = send_all(s.fd, req.data, req.len, s.stall_ms) != 0 ? 1
                                                           : send_body(s.fd, rq, s.stall_ms, e);
    if (rc == 0 || rc == 1)  /* sent, or cut short: the answer may say why */
      rc = read_answer(s.fd, s.stall_ms, a, out, &s, e);
    if (rc != 0) {
      close(s.fd);
      s.fd = -1;
      if (rc == 1 && !reused)
        rc = err_set(e, ERR_UNAVAILABLE, "'%.*s' closed the connection without an "
                     "answer", egress_url_shown(rq->url), rq->url);
    }
  }
  buf_release(&req);
  if (rc != 0) {
    buf_release(&out->body);
    return rc;
  }
  char tmp[16384];
  while (rc == 0 && egress_stream_left(&s) > 0) {  /* the answer's body (an error's) */
    size_t got = 0;
    size_t want = sizeof tmp;
    rc = egress_stream_read(&s, tmp, want, true, &got, e);
    if (rc == 0 && out->body.len + got > rq->max_response) {
      s.keep = false;
      break;
    }
    if (rc == 0)
      buf_append(&out->body, tmp, got);
  }
  if (rc != 0)
    buf_release(&out->body);
  if (s.remain == 0 && s.keep)
    pool_put(s.fd, s.key);
  else
    close(s.fd);
  free(s.left);
  return rc;
}
