/* base/egress.c -- the outbound HTTP client (libcurl) under the address
 * policy: see egress.h for who uses it and why.
 *
 * Invariants:
 *   (1) A connection is made only to an address netpolicy_addr_check
 *       allows, judged in the open-socket callback on the resolved
 *       address (so a name that resolves or rebinds to loopback or a
 *       private range is refused there), for every address libcurl tries.
 *   (2) Redirects are not followed, no proxy is used (whatever the
 *       environment says), only http and https.
 *   (3) What comes back is bounded: the body by max_response, the headers
 *       by MAX_HEADERS and MAX_HEADER_BYTES, the time by timeout_ms.
 *   (4) Connections are kept alive between requests (idle handles hold
 *       them): a reused connection was judged by (1) when it was opened,
 *       to the same host and port.
 *
 * Start reading at egress_fetch().
 */
#include "base/egress.h"

#include "base/mem.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HEADERS 200
#define MAX_HEADER_BYTES (64u << 10)

/* What the callbacks need, and what they found. */
typedef struct fetch_ctx {
  const netpolicy *policy;
  const char *host;            /* the URL's host, as libcurl parsed it */
  err refused;                 /* why a connection was refused (1) */
  arena *a;
  egress_response *out;
  size_t header_bytes;
  size_t max_body;
  bool too_large;
  bool keep_body;
} fetch_ctx;

/* libcurl calls this for every address it tries, after resolving (1). */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
  fetch_ctx *x = clientp;
  if (purpose != CURLSOCKTYPE_IPCXN)
    return CURL_SOCKET_BAD;
  err e = {0};
  if (netpolicy_addr_check(x->policy, x->host, &addr->addr, addr->addrlen, &e) != 0) {
    x->refused = e;
    return CURL_SOCKET_BAD;
  }
  return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* An upload's body, read from its file as libcurl sends it. */
typedef struct upload_ctx {
  long (*fn)(void *ctx, void *p, size_t n);  /* or this (egress_request.upload_fn) */
  void *fn_ctx;
  int fd;
  uint64_t base;               /* the file offset of the body's first byte */
  uint64_t off;                /* body bytes sent */
  uint64_t len;
} upload_ctx;

static size_t on_upload(char *p, size_t size, size_t n, void *ctx)
{
  upload_ctx *u = ctx;
  size_t want = size * n;
  if (want > u->len - u->off)
    want = (size_t)(u->len - u->off);
  if (want == 0)
    return 0;
  if (u->fn != NULL) {
    long r = u->fn(u->fn_ctx, p, want);
    if (r <= 0)
      return CURL_READFUNC_ABORT;
    u->off += (uint64_t)r;
    return (size_t)r;
  }
  for (;;) {
    ssize_t r = pread(u->fd, p, want, (off_t)(u->base + u->off));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return CURL_READFUNC_ABORT;  /* the file ended before upload_len */
    u->off += (uint64_t)r;
    return (size_t)r;
  }
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
  fetch_ctx *x = ctx;
  size_t len = size * n;
  if (!x->keep_body)
    return len;
  if (x->out->body.len + len > x->max_body) {
    x->too_large = true;
    return 0; /* aborts the transfer */
  }
  buf_append(&x->out->body, p, len);
  return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
  fetch_ctx *x = ctx;
  size_t len = size * n;
  egress_response *o = x->out;
  x->header_bytes += len;
  if (x->header_bytes > MAX_HEADER_BYTES)
    return 0;
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new status line: 1xx before */
    o->nheaders = 0;
    return len;
  }
  const char *colon = memchr(p, ':', len);
  if (colon == NULL || colon == p)
    return len;
  if (o->nheaders == MAX_HEADERS)
    return 0;
  size_t nl = (size_t)(colon - p);
  char *name = arena_strndup(x->a, p, nl);
  for (char *c = name; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  const char *v = colon + 1;
  const char *end = p + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
    end--;
  if (o->headers == NULL)
    o->headers = arena_alloc(x->a, MAX_HEADERS * sizeof *o->headers);
  o->headers[o->nheaders].name = name;
  o->headers[o->nheaders].value = arena_strndup(x->a, v, (size_t)(end - v));
  o->nheaders++;
  return len;
}

int egress_url_shown(const char *url)
{
  return (int)strcspn(url, "?#");
}

int egress_url_host(const char *url, char *host, size_t n, unsigned *port, err *e)
{
  CURLU *u = curl_url();
  if (u == NULL)
    mem_out_of_memory();
  char *h = NULL;
  char *p = NULL;
  char *scheme = NULL;
  int rc = 0;
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) ||
      curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK || strlen(h) >= n)
    rc = err_set(e, ERR_INVALID, "'%.*s' is not a valid http(s) URL", egress_url_shown(url),
                 url);
  else {
    snprintf(host, n, "%s", h);
    *port = (unsigned)strtoul(p, NULL, 10);
  }
  curl_free(scheme);
  curl_free(h);
  curl_free(p);
  curl_url_cleanup(u);
  return rc;
}

int egress_url_check(const netpolicy *p, const char *url, err *e)
{
  char host[NETPOLICY_HOST_MAX];
  unsigned port = 0;
  int rc = egress_url_host(url, host, sizeof host, &port, e);
  if (rc != 0)
    return rc;
  return netpolicy_host_check(p, host, port, e);
}

static bool has_header(const egress_request *rq, const char *name)
{
  for (size_t i = 0; i < rq->nheaders; i++)
    if (strcasecmp(rq->headers[i].name, name) == 0)
      return true;
  return false;
}

/* Idle handles: libcurl keeps a handle's connections open after a
 * transfer, so taking a handle from here reuses a kept-alive connection
 * to the same host and port (4). */
#define POOL_MAX 32
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static CURL *pool[POOL_MAX];
static size_t npool;

static CURL *handle_take(void)
{
  pthread_mutex_lock(&pool_mu);
  CURL *h = npool > 0 ? pool[--npool] : NULL;
  pthread_mutex_unlock(&pool_mu);
  if (h != NULL) {
    curl_easy_reset(h); /* options only: its connections stay */
    return h;
  }
  h = curl_easy_init();
  if (h == NULL)
    mem_out_of_memory();
  return h;
}

static void handle_put(CURL *h)
{
  pthread_mutex_lock(&pool_mu);
  if (npool < POOL_MAX) {
    pool[npool++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&pool_mu);
  if (h != NULL)
    curl_easy_cleanup(h);
}

static void pool_release(void)
{
  pthread_mutex_lock(&pool_mu);
  while (npool > 0)
    curl_easy_cleanup(pool[--npool]);
  pthread_mutex_unlock(&pool_mu);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_curl(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  atexit(pool_release);
}

void egress_init(void)
{
  pthread_once(&init_once, init_curl);
}

int egress_fetch(const netpolicy *p, const egress_request *rq, arena *a, egress_response *out,
                 err *e)
{
  egress_init();
  memset(out, 0, sizeof *out);
  buf_init(&out->body, rq->max_response > 0 ? rq->max_response : 1);
  char host[NETPOLICY_HOST_MAX];
  unsigned port = 0;
  if (egress_url_host(rq->url, host, sizeof host, &port, e) != 0) {
    buf_release(&out->body);
    return e->code;
  }
  fetch_ctx x = {.policy = p, .host = host, .a = a, .out = out, .max_body = rq->max_response,
                 .keep_body = rq->max_response > 0};
  CURL *h = handle_take();
  struct curl_slist *hdrs = NULL;
  for (size_t i = 0; i < rq->nheaders; i++) {
    const char *v = rq->headers[i].value;
    char *line = *v ? arena_sprintf(a, "%s: %s", rq->headers[i].name, v)
                    : arena_sprintf(a, "%s;", rq->headers[i].name);
    hdrs = curl_slist_append(hdrs, line);
  }
  /* what libcurl would add on its own, unless the caller sent it */
  hdrs = curl_slist_append(hdrs, "Expect:");
  if (!has_header(rq, "accept"))
    hdrs = curl_slist_append(hdrs, "Accept:");
  if (rq->body != NULL && !has_header(rq, "content-type"))
    hdrs = curl_slist_append(hdrs, "Content-Type:");
  curl_easy_setopt(h, CURLOPT_URL, rq->url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  const char *m = rq->method ? rq->method : "GET";
  upload_ctx up = {.fn = rq->upload_fn, .fn_ctx = rq->upload_ctx, .fd = rq->upload_fd,
                   .base = rq->upload_off, .len = rq->upload_len};
  if (rq->upload) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->upload_len);
    if (strcmp(m, "PUT") != 0)
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
  } else if (rq->body != NULL) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body_len ? rq->body : "");
    if (strcmp(m, "POST") != 0)
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
  } else if (strcmp(m, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (strcmp(m, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
  }
  if (rq->user_agent != NULL)
    curl_easy_setopt(h, CURLOPT_USERAGENT, rq->user_agent);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : rq->timeout_ms));
  if (rq->stall_ms > 0) {  /* under 1 byte/s for that long: a stalled peer */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)((rq->stall_ms + 999) / 1000));
  }
  if (rq->max_response >= (1u << 20))  /* large answers: fewer, larger reads */
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &x);
  CURLcode cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
  curl_slist_free_all(hdrs);
  if (cc == CURLE_OK)
    handle_put(h);
  else
    curl_easy_cleanup(h); /* a failed transfer's connections are not kept */
  int rc = 0;
  if (cc == CURLE_OK)
    return 0;
  int ul = egress_url_shown(rq->url);
  if (x.refused.code != 0)
    rc = err_set(e, ERR_DENIED, "cannot connect to '%.*s': %s", ul, rq->url, x.refused.msg);
  else if (x.too_large)
    rc = err_set(e, ERR_ENTITY_TOO_LARGE, "the answer of '%.*s' is larger than %zu bytes", ul,
                 rq->url, rq->max_response);
  else if (cc == CURLE_OPERATION_TIMEDOUT)
    rc = rq->stall_ms > 0
             ? err_set(e, ERR_REQUEST_TIMEOUT, "'%.*s' did not answer within %d ms, or "
                       "stalled for %d ms", ul, rq->url, rq->timeout_ms, rq->stall_ms)
             : err_set(e, ERR_REQUEST_TIMEOUT, "'%.*s' did not answer within %d ms", ul,
                       rq->url, rq->timeout_ms);
  else
    rc = err_set(e, ERR_UNAVAILABLE, "cannot reach '%.*s': %s", ul, rq->url,
                 curl_easy_strerror(cc));
  buf_release(&out->body);
  return rc;
}
