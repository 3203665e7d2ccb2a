/* http/server.c -- the HTTP edge: libmicrohttpd in, services out.
 *
 * Why: every AWS service tarn speaks shares one port, one authentication and
 * one set of payload checks; a service only sees requests that passed them.
 *
 * A request moves through these states (req_state):
 *   NEW       the URI log callback made the request and its arena;
 *   BODY      headers authenticated, prepare called, body bytes flowing
 *             through the payload checks into the sink or the buffer;
 *   DEFERRED  a non-S3 request without x-amz-content-sha256: the body is
 *             buffered first, then authenticated with its digest, then BODY;
 *   FAILED    a check failed mid-body: the rest is read and dropped, the
 *             error is answered when the body ends (libmicrohttpd cannot
 *             queue a response while a body is still arriving);
 *   PARKED    handle() parked the request: the connection is suspended
 *             until http_req_resume() (or the server's stop) resumes it;
 *   ANSWERED  a response is queued.
 *
 * Invariants:
 *   (1) handle() is called only when the signature, the payload digest, the
 *       chunk signatures, Content-MD5 and x-amz-checksum-* all passed.
 *   (2) cleanup() is called exactly once for every request that reached
 *       prepare(), from the completion callback, whatever the outcome (for
 *       a parked request the stop answers, just before its 503: (5)).
 *   (3) Client-controlled sizes are bounded: a TCP connection's first head
 *       by the gate (size, header and parameter counts, GATE_HEAD_SECONDS;
 *       gate.c), later heads on a kept-alive connection by the connection
 *       memory limit and a deadline (conn_info, edge_sweep), buffered bodies
 *       by req->body.max, connections by HTTP_MAX_CONNECTIONS and per
 *       address by the gate, idle connections by HTTP_IDLE_TIMEOUT_SECONDS.
 *   (4) A parked request is resumed exactly once, by the service or by
 *       http_server_stop (which answers 503); every suspended connection
 *       is resumed before the daemon stops (libmicrohttpd requires it).
 *   (5) Only the service writes a parked request's response until its
 *       cleanup() returned: the stop's 503 is written on the connection's
 *       thread after cleanup(), and only when the service did not resume
 *       it meanwhile (its answer, if it finished one, is sent instead).
 *   (6) Metric labels take values from a fixed set (metric_service,
 *       metric_op): no request can add a series of its own.
 *
 * Start reading at on_request().
 */
#include "http/http.h"

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/text.h"
#include "aws/chunked.h"
#include "http/gate.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFERRED_BODY_MAX (8u << 20) /* default for non-S3 bodies buffered before auth */
#define SNIFF_BODY_MAX (64u << 10)    /* an unsigned form read to pick its error shape */
#define RESP_BODY_MAX (64u << 20)
#define SMALL_FILE_INLINE (64u << 10) /* fd responses up to this are sent from memory */
/* a reader response's buffer (http_resp_reader), at most: one read and one
 * send per this many bytes; a body streamed from another socket (the object
 * backend) costs about 20% less CPU per byte than with 64 KiB */
#define READER_BLOCK (1u << 20)
#define METRIC_SLOTS 256    /* the last one holds the "other" series */
#define LATENCY_BUCKETS 12

static const double latency_bounds[LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

typedef struct op_metric {
  char service[16];
  char op[48];
  uint64_t requests;
  uint64_t errors_4xx;
  uint64_t errors_5xx;
  uint64_t buckets[LATENCY_BUCKETS]; /* cumulative counts are built at render */
  uint64_t over;                     /* above the last bound */
  double seconds_sum;
} op_metric;

struct http_server {
  http_config cfg;
  struct MHD_Daemon *daemon;
  gate *gate;                    /* the TCP listener's front door (NULL on Unix sockets) */
  pthread_mutex_t conns_lock;    /* guards conns */
  struct conn_info *conns;       /* open TCP connections, for the head deadline */
  int port;
  pthread_mutex_t lock;          /* guards in_flight and the metrics */
  pthread_cond_t idle;           /* signalled when in_flight drops to 0 */
  int in_flight;
  uint32_t id_prefix;            /* random, the first half of request ids */
  atomic_uint_fast64_t next_request; /* the second half */
  struct req_private *parked;    /* suspended requests, a list through next_parked */
  http_stream *streams;          /* streams being sent, a list through next_live */
  http_upgrade *upgrades;        /* upgraded connections not closed yet, through next */
  op_metric metrics[METRIC_SLOTS];
  size_t nmetrics;
  uint64_t bytes_in;
  uint64_t bytes_out;
};

/* A streamed body: a bounded buffer between the producer's thread and the
 * connection's reader callback. Two references: the producer's (dropped by
 * http_stream_end) and the connection's (dropped when libmicrohttpd frees
 * the response). */
struct http_stream {
  pthread_mutex_t lock;
  pthread_cond_t room;             /* signalled when bytes are sent or the client goes */
  http_server *server;
  struct MHD_Connection *conn;     /* set when the response is queued */
  struct MHD_Response *response;
  buf pending;                     /* produced, not yet sent */
  size_t sent_from;                /* bytes of pending already sent */
  bool ended;                      /* http_stream_end was called */
  bool gone;                       /* the client or the server ended the transfer */
  bool reader_suspended;           /* the connection waits for bytes */
  int refs;
  str_pair *trailers;              /* copied at end, added as footers */
  size_t ntrailers;
  struct http_stream *next_live;   /* the server's list of live streams */
};

enum req_state { REQ_NEW, REQ_BODY, REQ_DEFERRED, REQ_FAILED, REQ_PARKED, REQ_ANSWERED };

typedef struct req_private {
  http_server *server;
  http_req *req;
  struct MHD_Connection *conn;
  bool park_requested;         /* handle() called http_req_park */
  bool suspended;              /* the connection is suspended (in server->parked) */
  bool resumed;                /* http_req_resume was called */
  bool service_resumed;        /* ... by the service (not the server's stop) */
  bool stop_resumed;           /* http_server_stop resumed it: answer 503 */
  bool cleaned;                /* cleanup() already ran (stop_resumed) */
  struct req_private *next_parked;
  http_service *svc;           /* the service answering, NULL before routing */
  enum req_state state;
  bool prepared;               /* prepare() was called: cleanup() is owed */
  bool sniff_service;          /* DEFERRED unsigned form: its body picks the service */
  int64_t start_us;
  err failure;                 /* the error of a FAILED request */
  aws_chunked *chunked;        /* aws-chunked decoder, or NULL */
  bool check_sha256;           /* x-amz-content-sha256 is a digest to verify */
  uint8_t want_sha256[SHA256_LEN];
  hasher sha256;
  bool check_md5;              /* Content-MD5 was sent */
  uint8_t want_md5[MD5_LEN];
  hasher md5;
  const char *checksum_name;   /* x-amz-checksum-<algo> to verify, or NULL */
  const char *checksum_header; /* its value from the headers, or NULL (trailer) */
  hasher checksum;
  int64_t decoded_length;      /* x-amz-decoded-content-length, or -1 */
  uint64_t bytes_out;
  http_upgrade_fn upgrade_fn;  /* http_resp_upgrade: the response is a 101 */
  void *upgrade_ctx;
  http_read_fn reader_fn;      /* http_resp_reader: the body, produced on demand */
  void (*reader_free)(void *);
  void *reader_ctx;            /* owned here until the response takes it */
  uint64_t reader_length;
} req_private;

/* An upgraded connection: its socket belongs to the service until
 * http_upgrade_close. */
struct http_upgrade {
  http_server *server;
  struct MHD_UpgradeResponseHandle *urh;
  int fd;
  http_upgrade_fn fn;
  void *ctx;
  http_upgrade *next;          /* in server->upgrades, under server->lock */
};

/* One open TCP connection (libmicrohttpd's socket context). The gate
 * checked its first head; a later head on the kept-alive connection must be
 * complete by head_deadline_us, else the sweep shuts the socket down (a
 * header line every few seconds would keep it alive for ever otherwise). */
typedef struct conn_info {
  struct sockaddr_storage addr;  /* the client */
  int fd;
  int64_t head_deadline_us;      /* 0 while a request is being handled */
  bool upgraded;                 /* a service owns the socket now: no deadline */
  struct conn_info *prev, *next;
} conn_info;

static void stream_unref(http_stream *st);

static http_req *req_new(http_server *srv)
{
  arena *a = arena_new();
  http_req *r = arena_alloc(a, sizeof *r);
  req_private *p = arena_alloc(a, sizeof *p);
  r->arena = a;
  r->content_length = -1;
  r->status = 200;
  r->resp_fd = -1;
  r->server_private = p;
  buf_init(&r->body, HTTP_DEFAULT_BODY_MAX);
  buf_init(&r->resp_body, RESP_BODY_MAX);
  p->server = srv;
  p->req = r;
  p->start_us = time_mono_us();
  p->decoded_length = -1;
  /* 8 random hex digits fixed per server, then a counter: unique, and no
     system call per request */
  uint64_t n = atomic_fetch_add(&srv->next_request, 1);
  snprintf(r->request_id, sizeof r->request_id, "%08X%08X", srv->id_prefix, (unsigned)n);
  return r;
}

/* Drops a reader the response never took. */
static void reader_drop(req_private *p)
{
  if (p->reader_fn != NULL && p->reader_free != NULL)
    p->reader_free(p->reader_ctx);
  p->reader_fn = NULL;
  p->reader_free = NULL;
  p->reader_ctx = NULL;
}

static void req_free(http_req *r)
{
  req_private *p = r->server_private;
  reader_drop(p);
  aws_chunked_free(p->chunked);
  hash_release(&p->sha256);
  hash_release(&p->md5);
  hash_release(&p->checksum);
  if (r->resp_fd >= 0)
    close(r->resp_fd);
  if (r->resp_stream != NULL && p->state != REQ_ANSWERED) {
    /* never handed to the connection: drop the connection's reference */
    pthread_mutex_lock(&r->resp_stream->lock);
    r->resp_stream->gone = true;
    pthread_cond_broadcast(&r->resp_stream->room);
    pthread_mutex_unlock(&r->resp_stream->lock);
    stream_unref(r->resp_stream);
  }
  buf_release(&r->body);
  buf_release(&r->resp_body);
  arena_free(r->arena);
}

/* ---- request accessors and response builders ---- */

const char *http_req_header(const http_req *r, const char *lname)
{
  for (size_t i = 0; i < r->nheaders; i++)
    if (strcmp(r->headers[i].name, lname) == 0)
      return r->headers[i].value;
  return NULL;
}

const char *http_req_param(const http_req *r, const char *name)
{
  for (size_t i = 0; i < r->nquery; i++)
    if (strcmp(r->query[i].name, name) == 0)
      return r->query[i].value;
  return NULL;
}

bool http_req_has_param(const http_req *r, const char *name)
{
  return http_req_param(r, name) != NULL;
}

void http_req_body_max(http_req *r, size_t max)
{
  r->body.max = max;
}

void http_resp_status(http_req *r, int status)
{
  r->status = status;
}

void http_resp_header(http_req *r, const char *name, const char *value)
{
  if (r->nresp_headers == r->resp_headers_cap) {
    size_t cap = r->resp_headers_cap ? r->resp_headers_cap * 2 : 16;
    str_pair *h = arena_alloc(r->arena, cap * sizeof *h);
    if (r->nresp_headers > 0)
      memcpy(h, r->resp_headers, r->nresp_headers * sizeof *h);
    r->resp_headers = h;
    r->resp_headers_cap = cap;
  }
  r->resp_headers[r->nresp_headers].name = arena_strdup(r->arena, name);
  r->resp_headers[r->nresp_headers].value = arena_strdup(r->arena, value);
  r->nresp_headers++;
}

void http_resp_headerf(http_req *r, const char *name, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *v = arena_vsprintf(r->arena, fmt, ap);
  va_end(ap);
  http_resp_header(r, name, v);
}

void http_resp_fd(http_req *r, int fd, uint64_t offset, uint64_t length)
{
  if (r->resp_fd >= 0)
    close(r->resp_fd);
  r->resp_fd = fd;
  r->resp_fd_offset = offset;
  r->resp_fd_length = length;
}

/* ---- metrics ---- */

/* Label values come from a fixed set, never from the request: the service
 * is one the server serves ("native", "none" before routing, else "other":
 * an unsigned request may claim any scope), the operation is a name the
 * service chose from its own table (unauthenticated requests never reach
 * a service, so they count as "unknown"). */
static const char *metric_service(const http_server *srv, const char *service)
{
  if (service == NULL)
    return "none";
  if (strcmp(service, "native") == 0)
    return "native";
  if (srv->cfg.open_service != NULL && strcmp(service, srv->cfg.open_service->name) == 0)
    return srv->cfg.open_service->name;
  for (size_t i = 0; i < srv->cfg.nservices; i++)
    if (strcmp(srv->cfg.services[i]->name, service) == 0)
      return srv->cfg.services[i]->name;
  return "other";
}

static const char *metric_op(const char *op)
{
  if (op == NULL)
    return "unknown";
  size_t n = strlen(op);
  if (n == 0 || n >= sizeof(((op_metric *)0)->op))
    return "other";
  for (const char *c = op; *c; c++)
    if (!isalnum((unsigned char)*c) && *c != '_')
      return "other";
  return op;
}

static op_metric *metric_find(http_server *srv, const char *service, const char *op, size_t max)
{
  for (size_t i = 0; i < srv->nmetrics; i++)
    if (strcmp(srv->metrics[i].service, service) == 0 && strcmp(srv->metrics[i].op, op) == 0)
      return &srv->metrics[i];
  if (srv->nmetrics >= max)
    return NULL;
  op_metric *m = &srv->metrics[srv->nmetrics++];
  snprintf(m->service, sizeof m->service, "%s", service);
  snprintf(m->op, sizeof m->op, "%s", op);
  return m;
}

static void metrics_record(http_server *srv, const char *service, const char *op, int status,
                           double seconds, uint64_t in, uint64_t out)
{
  service = metric_service(srv, service);
  op = metric_op(op);
  pthread_mutex_lock(&srv->lock);
  srv->bytes_in += in;
  srv->bytes_out += out;
  op_metric *m = metric_find(srv, service, op, METRIC_SLOTS - 1);
  if (m == NULL) /* the table is full: one series for the rest */
    m = metric_find(srv, "other", "other", METRIC_SLOTS);
  if (m != NULL) {
    m->requests++;
    if (status >= 500)
      m->errors_5xx++;
    else if (status >= 400)
      m->errors_4xx++;
    m->seconds_sum += seconds;
    size_t b = 0;
    while (b < LATENCY_BUCKETS && seconds > latency_bounds[b])
      b++;
    if (b < LATENCY_BUCKETS)
      m->buckets[b]++;
    else
      m->over++;
  }
  pthread_mutex_unlock(&srv->lock);
}

/* service="..",operation=".." with the values escaped as the Prometheus
 * text format asks (backslash, double quote, newline). */
static void metric_labels(const op_metric *m, char *out, size_t cap)
{
  const char *vals[2] = {m->service, m->op};
  const char *names[2] = {"service=\"", "\",operation=\""};
  size_t n = 0;
  for (int k = 0; k < 2; k++) {
    for (const char *c = names[k]; *c && n + 1 < cap; c++)
      out[n++] = *c;
    for (const char *c = vals[k]; *c && n + 2 < cap; c++) {
      if (*c == '\\' || *c == '"' || *c == '\n')
        out[n++] = '\\';
      out[n++] = *c == '\n' ? 'n' : *c;
    }
  }
  if (n + 1 < cap)
    out[n++] = '"';
  out[n] = '\0';
}

void http_server_metrics(http_server *srv, buf *out)
{
  char l[2 * (16 + 48) + 32];
  pthread_mutex_lock(&srv->lock);
  buf_puts(out, "# HELP tarn_requests_total Requests answered, by service and operation.\n"
                "# TYPE tarn_requests_total counter\n");
  for (size_t i = 0; i < srv->nmetrics; i++) {
    const op_metric *m = &srv->metrics[i];
    metric_labels(m, l, sizeof l);
    buf_printf(out, "tarn_requests_total{%s} %llu\n", l, (unsigned long long)m->requests);
  }
  buf_puts(out, "# HELP tarn_request_errors_total Requests answered with an error status.\n"
                "# TYPE tarn_request_errors_total counter\n");
  for (size_t i = 0; i < srv->nmetrics; i++) {
    const op_metric *m = &srv->metrics[i];
    metric_labels(m, l, sizeof l);
    buf_printf(out,
               "tarn_request_errors_total{%s,class=\"4xx\"} %llu\n"
               "tarn_request_errors_total{%s,class=\"5xx\"} %llu\n",
               l, (unsigned long long)m->errors_4xx, l, (unsigned long long)m->errors_5xx);
  }
  buf_puts(out, "# HELP tarn_request_duration_seconds Time from request to response.\n"
                "# TYPE tarn_request_duration_seconds histogram\n");
  for (size_t i = 0; i < srv->nmetrics; i++) {
    const op_metric *m = &srv->metrics[i];
    uint64_t cum = 0;
    metric_labels(m, l, sizeof l);
    for (size_t b = 0; b < LATENCY_BUCKETS; b++) {
      cum += m->buckets[b];
      buf_printf(out, "tarn_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n", l,
                 latency_bounds[b], (unsigned long long)cum);
    }
    buf_printf(out,
               "tarn_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n"
               "tarn_request_duration_seconds_sum{%s} %.6f\n"
               "tarn_request_duration_seconds_count{%s} %llu\n",
               l, (unsigned long long)m->requests, l, m->seconds_sum, l,
               (unsigned long long)m->requests);
  }
  buf_printf(out,
             "# HELP tarn_bytes_in_total Request body bytes received.\n"
             "# TYPE tarn_bytes_in_total counter\ntarn_bytes_in_total %llu\n"
             "# HELP tarn_bytes_out_total Response body bytes sent.\n"
             "# TYPE tarn_bytes_out_total counter\ntarn_bytes_out_total %llu\n",
             (unsigned long long)srv->bytes_in, (unsigned long long)srv->bytes_out);
  pthread_mutex_unlock(&srv->lock);
}

/* ---- parsing the request line and headers ---- */

typedef struct header_collect {
  http_req *req;
  size_t cap;
} header_collect;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
  header_collect *hc = cls;
  http_req *r = hc->req;
  if (r->nheaders == hc->cap) {
    size_t cap = hc->cap ? hc->cap * 2 : 32;
    str_pair *h = arena_alloc(r->arena, cap * sizeof *h);
    if (r->nheaders > 0)
      memcpy(h, r->headers, r->nheaders * sizeof *h);
    r->headers = h;
    hc->cap = cap;
  }
  char *name = arena_strdup(r->arena, key);
  for (char *c = name; *c; c++)
    if (*c >= 'A' && *c <= 'Z')
      *c = (char)(*c - 'A' + 'a');
  r->headers[r->nheaders].name = name;
  r->headers[r->nheaders].value = arena_strdup(r->arena, value ? value : "");
  r->nheaders++;
  return MHD_YES;
}

/* Splits the raw URI into path and decoded query parameters. */
static int parse_uri(http_req *r, const char *uri, err *e)
{
  const char *q = strchr(uri, '?');
  size_t plen = q ? (size_t)(q - uri) : strlen(uri);
  r->raw_path = arena_strndup(r->arena, uri, plen);
  size_t dlen;
  char *path = percent_decode(r->arena, uri, plen, &dlen);
  if (path == NULL || strlen(path) != dlen)
    return err_set(e, ERR_INVALID, "malformed percent-encoding in path");
  r->path = path;
  r->raw_query = q != NULL ? arena_strdup(r->arena, q + 1) : "";
  if (q == NULL)
    return 0;
  size_t cap = 0;
  const char *s = q + 1;
  while (*s != '\0') {
    const char *amp = strchr(s, '&');
    size_t len = amp ? (size_t)(amp - s) : strlen(s);
    if (len > 0) {
      const char *eq = memchr(s, '=', len);
      size_t nlen = eq ? (size_t)(eq - s) : len;
      size_t n1, n2;
      char *name = percent_decode(r->arena, s, nlen, &n1);
      char *value = eq ? percent_decode(r->arena, eq + 1, len - nlen - 1, &n2)
                       : arena_strdup(r->arena, "");
      if (name == NULL || value == NULL)
        return err_set(e, ERR_INVALID, "malformed percent-encoding in query");
      if (r->nquery == cap) {
        if (cap >= 1024)
          return err_set(e, ERR_INVALID, "too many query parameters");
        cap = cap ? cap * 2 : 8;
        str_pair *np = arena_alloc(r->arena, cap * sizeof *np);
        if (r->nquery > 0)
          memcpy(np, r->query, r->nquery * sizeof *np);
        r->query = np;
      }
      r->query[r->nquery].name = name;
      r->query[r->nquery].value = value;
      r->nquery++;
    }
    if (amp == NULL)
      break;
    s = amp + 1;
  }
  return 0;
}

/* Sets the connection's head deadline: 0 (a request is being handled), or
 * now + seconds (at most: an earlier deadline stays). */
static void conn_head_deadline(http_server *srv, struct MHD_Connection *conn, int seconds)
{
  if (srv->gate == NULL)
    return;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  conn_info *c = ci != NULL ? ci->socket_context : NULL;
  if (c == NULL)
    return;
  int64_t at = time_mono_us() + (int64_t)seconds * 1000000;
  pthread_mutex_lock(&srv->conns_lock);
  if (seconds == 0 || c->upgraded)
    c->head_deadline_us = 0;
  else if (c->head_deadline_us == 0 || at < c->head_deadline_us)
    c->head_deadline_us = at;
  pthread_mutex_unlock(&srv->conns_lock);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
  http_server *srv = cls;
  conn_head_deadline(srv, conn, GATE_HEAD_SECONDS); /* the request line is here */
  http_req *r = req_new(srv);
  r->raw_path = arena_strdup(r->arena, uri); /* whole URI until parsed */
  pthread_mutex_lock(&srv->lock);
  srv->in_flight++;
  pthread_mutex_unlock(&srv->lock);
  return r;
}

/* Keeps the URL exactly as sent: tarn decodes it itself (SigV4 signs the raw path). */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
  return strlen(s);
}

/* ---- streamed responses ---- */

static void stream_unref(http_stream *st)
{
  pthread_mutex_lock(&st->lock);
  int left = --st->refs;
  pthread_mutex_unlock(&st->lock);
  if (left > 0)
    return;
  buf_release(&st->pending);
  for (size_t i = 0; i < st->ntrailers; i++) {
    free((char *)st->trailers[i].name);
    free((char *)st->trailers[i].value);
  }
  free(st->trailers);
  pthread_mutex_destroy(&st->lock);
  pthread_cond_destroy(&st->room);
  free(st);
}

http_stream *http_resp_stream(http_req *r)
{
  req_private *p = r->server_private;
  http_stream *st = xcalloc(1, sizeof *st);
  pthread_mutex_init(&st->lock, NULL);
  pthread_cond_init(&st->room, NULL);
  buf_init(&st->pending, 2 * HTTP_STREAM_BUFFER);
  st->server = p->server;
  st->refs = 2; /* the producer's and the connection's */
  r->resp_stream = st;
  return st;
}

/* Called with st->lock held: wakes a connection waiting for bytes. */
static void stream_wake_reader(http_stream *st)
{
  if (st->reader_suspended && st->conn != NULL) {
    st->reader_suspended = false;
    MHD_resume_connection(st->conn);
  }
}

int http_stream_write(http_stream *st, const void *data, size_t n)
{
  const char *c = data;
  pthread_mutex_lock(&st->lock);
  while (n > 0 && !st->gone) {
    while (!st->gone && st->pending.len - st->sent_from >= HTTP_STREAM_BUFFER)
      pthread_cond_wait(&st->room, &st->lock);
    if (st->gone)
      break;
    if (st->sent_from > 0) { /* compact */
      size_t left = st->pending.len - st->sent_from;
      memmove(st->pending.data, st->pending.data + st->sent_from, left);
      st->pending.len = left;
      st->sent_from = 0;
    }
    size_t room = HTTP_STREAM_BUFFER - st->pending.len;
    size_t take = n < room ? n : room;
    buf_append(&st->pending, c, take);
    c += take;
    n -= take;
    stream_wake_reader(st);
  }
  int rc = st->gone ? -1 : 0;
  pthread_mutex_unlock(&st->lock);
  return rc;
}

void http_stream_end(http_stream *st, const str_pair *trailers, size_t ntrailers)
{
  pthread_mutex_lock(&st->lock);
  if (ntrailers > 0) {
    st->trailers = xcalloc(ntrailers, sizeof *st->trailers);
    for (size_t i = 0; i < ntrailers; i++) {
      st->trailers[i].name = xstrdup(trailers[i].name);
      st->trailers[i].value = xstrdup(trailers[i].value);
    }
    st->ntrailers = ntrailers;
  }
  st->ended = true;
  stream_wake_reader(st);
  pthread_mutex_unlock(&st->lock);
  stream_unref(st);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
  http_stream *st = cls;
  pthread_mutex_lock(&st->lock);
  size_t avail = st->pending.len - st->sent_from;
  ssize_t rc;
  if (avail > 0) {
    size_t n = avail < max ? avail : max;
    memcpy(out, st->pending.data + st->sent_from, n);
    st->sent_from += n;
    pthread_cond_broadcast(&st->room);
    rc = (ssize_t)n;
  } else if (st->ended) {
    for (size_t i = 0; i < st->ntrailers; i++)
      MHD_add_response_footer(st->response, st->trailers[i].name, st->trailers[i].value);
    rc = MHD_CONTENT_READER_END_OF_STREAM;
  } else if (st->gone) {
    rc = MHD_CONTENT_READER_END_WITH_ERROR;
  } else {
    st->reader_suspended = true; /* the producer resumes us */
    MHD_suspend_connection(st->conn);
    rc = 0;
  }
  pthread_mutex_unlock(&st->lock);
  return rc;
}

/* True when the peer of conn closed (EOF, reset): a look at the socket,
 * which stays open while conn lives (callers hold the lock that conn's end
 * takes first). */
static bool conn_closed(struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (ci == NULL)
    return false;
  struct pollfd pfd = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
  if (poll(&pfd, 1, 0) <= 0)
    return false;
  if (pfd.revents & (POLLHUP | POLLERR | POLLRDHUP))
    return true;
  char c;
  return recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

bool http_stream_client_gone(http_stream *st)
{
  pthread_mutex_lock(&st->lock);
  bool gone = st->gone || (st->conn != NULL && conn_closed(st->conn));
  pthread_mutex_unlock(&st->lock);
  return gone;
}

bool http_req_client_gone(http_req *r)
{
  req_private *p = r->server_private;
  http_server *srv = p->server;
  pthread_mutex_lock(&srv->lock);
  bool gone = p->suspended && !p->resumed && p->conn != NULL && conn_closed(p->conn);
  pthread_mutex_unlock(&srv->lock);
  return gone;
}

/* libmicrohttpd frees the response: the transfer is over, one way or another. */
static void stream_done(void *cls)
{
  http_stream *st = cls;
  http_server *srv = st->server;
  pthread_mutex_lock(&srv->lock);
  for (http_stream **pp = &srv->streams; *pp != NULL; pp = &(*pp)->next_live) {
    if (*pp == st) {
      *pp = st->next_live;
      break;
    }
  }
  pthread_mutex_unlock(&srv->lock);
  pthread_mutex_lock(&st->lock);
  st->gone = true;
  st->conn = NULL;
  pthread_cond_broadcast(&st->room);
  pthread_mutex_unlock(&st->lock);
  stream_unref(st);
}

static struct MHD_Response *stream_response(http_stream *st, struct MHD_Connection *conn)
{
  struct MHD_Response *resp =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, st, stream_done);
  if (resp == NULL)
    return NULL;
  pthread_mutex_lock(&st->lock);
  st->conn = conn;
  st->response = resp;
  pthread_mutex_unlock(&st->lock);
  http_server *srv = st->server;
  pthread_mutex_lock(&srv->lock);
  st->next_live = srv->streams;
  srv->streams = st;
  pthread_mutex_unlock(&srv->lock);
  return resp;
}

/* ---- answering ---- */

/* A small file is read into the response buffer, so headers and body leave
 * in one write instead of a send and a sendfile (two trips through the TCP
 * stack for a 4 KiB object). False (keep the fd) when the read falls short. */
static bool inline_small_file(http_req *r)
{
  size_t len = (size_t)r->resp_fd_length;
  buf_reset(&r->resp_body);
  if (len > 0) {
    char *to = buf_extend(&r->resp_body, len);
    if (to == NULL || pread(r->resp_fd, to, len, (off_t)r->resp_fd_offset) != (ssize_t)len) {
      buf_reset(&r->resp_body);
      return false;
    }
  }
  close(r->resp_fd);
  r->resp_fd = -1;
  return true;
}

void http_resp_reader(http_req *r, uint64_t length, http_read_fn fn, void (*free_fn)(void *),
                      void *ctx)
{
  req_private *p = r->server_private;
  reader_drop(p);
  p->reader_fn = fn;
  p->reader_free = free_fn;
  p->reader_ctx = ctx;
  p->reader_length = length;
}

/* libmicrohttpd asks a reader for the bytes at pos. */
static ssize_t reader_read(void *cls, uint64_t pos, char *to, size_t max)
{
  req_private *p = cls;
  if (pos >= p->reader_length)
    return MHD_CONTENT_READER_END_OF_STREAM;
  ssize_t n = p->reader_fn(p->reader_ctx, pos, to, max);
  if (n > 0)
    return n;
  p->bytes_out = pos;  /* the log tells what was sent before the body was cut short */
  return MHD_CONTENT_READER_END_WITH_ERROR;
}

void http_resp_upgrade(http_req *r, http_upgrade_fn fn, void *ctx)
{
  req_private *p = r->server_private;
  p->upgrade_fn = fn;
  p->upgrade_ctx = ctx;
  r->status = 101;
}

/* libmicrohttpd sent the 101: the socket is the service's from here. */
static void on_upgrade(void *cls, struct MHD_Connection *conn, void *req_cls,
                       const char *extra, size_t extra_len, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh)
{
  http_upgrade *u = cls;
  http_server *srv = u->server;
  (void)req_cls;
  u->urh = urh;
  u->fd = sock;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  conn_info *c = ci != NULL ? ci->socket_context : NULL;
  if (c != NULL) {
    pthread_mutex_lock(&srv->conns_lock);
    c->upgraded = true;
    c->head_deadline_us = 0;
    pthread_mutex_unlock(&srv->conns_lock);
  }
  pthread_mutex_lock(&srv->lock);
  u->next = srv->upgrades;
  srv->upgrades = u;
  pthread_mutex_unlock(&srv->lock);
  int fl = fcntl(sock, F_GETFL);
  if (fl >= 0)
    fcntl(sock, F_SETFL, fl | O_NONBLOCK);
  u->fn(u->ctx, u, sock, extra, extra_len);
}

void http_upgrade_close(http_upgrade *u)
{
  http_server *srv = u->server;
  pthread_mutex_lock(&srv->lock);
  for (http_upgrade **pp = &srv->upgrades; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == u) {
      *pp = u->next;
      break;
    }
  }
  pthread_cond_broadcast(&srv->idle);
  pthread_mutex_unlock(&srv->lock);
  MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
  free(u);
}

static enum MHD_Result queue(struct MHD_Connection *conn, http_req *r)
{
  req_private *p = r->server_private;
  struct MHD_Response *resp;
  if (p->upgrade_fn != NULL) {
    http_upgrade *u = xcalloc(1, sizeof *u);
    u->server = p->server;
    u->fd = -1;
    u->fn = p->upgrade_fn;
    u->ctx = p->upgrade_ctx;
    p->upgrade_fn = NULL;
    resp = MHD_create_response_for_upgrade(on_upgrade, u);
    if (resp == NULL)
      free(u);
    p->bytes_out = 0;
  } else if (r->resp_stream != NULL) {
    resp = stream_response(r->resp_stream, conn);
    p->bytes_out = 0;
  } else if (p->reader_fn != NULL) {
    /* the reader stays p's: req_free (after the transfer) drops it */
    size_t block = p->reader_length < READER_BLOCK ? (size_t)p->reader_length : READER_BLOCK;
    resp = MHD_create_response_from_callback(p->reader_length, block > 0 ? block : 1,
                                              reader_read, p, NULL);
    p->bytes_out = p->reader_length;
  } else if (r->resp_fd >= 0 && r->resp_fd_length <= SMALL_FILE_INLINE &&
             strcmp(r->method, "HEAD") != 0 && inline_small_file(r)) {
    return queue(conn, r); /* now a buffer response */
  } else if (r->resp_fd >= 0) {
    resp = MHD_create_response_from_fd_at_offset64(r->resp_fd_length, r->resp_fd,
                                                   r->resp_fd_offset);
    if (resp != NULL)
      r->resp_fd = -1; /* the response owns it now */
    p->bytes_out = r->resp_fd_length;
  } else {
    size_t len = r->resp_body.len;
    void *data = r->resp_body.data;
    resp = MHD_create_response_from_buffer(len, len ? data : (void *)"",
                                           len ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp != NULL && len) {
      r->resp_body.data = NULL; /* the response frees it */
      r->resp_body.len = r->resp_body.cap = 0;
    }
    p->bytes_out = len;
  }
  if (resp == NULL)
    return MHD_NO;
  for (size_t i = 0; i < r->nresp_headers; i++) {
    /* libmicrohttpd drops a header with an empty value; an empty value goes
     * out as optional whitespace, which clients read as "" (RFC 9110 5.5) */
    const char *v = r->resp_headers[i].value;
    MHD_add_response_header(resp, r->resp_headers[i].name, v[0] != '\0' ? v : " ");
  }
  MHD_add_response_header(resp, "x-amz-request-id", r->request_id);
  MHD_add_response_header(resp, "Server", "tarn");
  if (strcmp(r->method, "HEAD") == 0)
    p->bytes_out = 0;
  enum MHD_Result rc = MHD_queue_response(conn, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  p->state = REQ_ANSWERED;
  return rc;
}

static http_service *service_named(http_server *srv, const char *name)
{
  for (size_t i = 0; i < srv->cfg.nservices; i++)
    if (strcmp(srv->cfg.services[i]->name, name) == 0)
      return srv->cfg.services[i];
  return NULL;
}

/* The public front door that claims r (http_service.claim), or NULL. */
static http_service *front_service(http_server *srv, const http_req *r)
{
  for (size_t i = 0; i < srv->cfg.nservices; i++) {
    http_service *s = srv->cfg.services[i];
    if (s->claim != NULL && s->claim(s->ctx, r))
      return s;
  }
  return NULL;
}

/* A query-protocol form POST to / (the services that answer it are told
 * apart only by the body). */
static bool is_query_form(const http_req *r)
{
  const char *type = http_req_header(r, "content-type");
  return r->method != NULL && strcmp(r->method, "POST") == 0 && r->nquery == 0 &&
         r->raw_path != NULL && strcmp(r->raw_path, "/") == 0 && type != NULL &&
         str_starts(type, "application/x-www-form-urlencoded");
}

/* The service an unsigned request is addressed to, told by its shape: a
 * Lambda REST path (/<api date>/functions...), an SQS JSON target, a POST
 * to a queue URL (/<12 digits>/<name>) or a query-protocol form POST to /;
 * anything else is S3. Unsigned
 * requests are refused either way: this picks the error's wire shape. */
static const char *unsigned_service(const http_req *r)
{
  static const char *const lambda_roots[] = {"functions", "event-source-mappings", "tags",
                                             "layers", "account-settings"};
  const char *p = r->raw_path ? r->raw_path : "";
  if (strlen(p) > 12 && p[0] == '/' && p[5] == '-' && p[8] == '-' && p[11] == '/' &&
      strspn(p + 1, "0123456789") == 4) {
    for (size_t i = 0; i < sizeof lambda_roots / sizeof lambda_roots[0]; i++) {
      size_t n = strlen(lambda_roots[i]);
      if (strncmp(p + 12, lambda_roots[i], n) == 0 && (p[12 + n] == '\0' || p[12 + n] == '/'))
        return "lambda";
    }
  }
  /* the JSON protocols name their service in X-Amz-Target */
  static const struct {
    const char *prefix;
    const char *service;
  } targets[] = {
      {"AmazonSQS.", "sqs"},           {"Kinesis_20131202.", "kinesis"},
      {"Firehose_20150804.", "firehose"}, {"AWSStepFunctions.", "states"},
      {"DynamoDB_20120810.", "dynamodb"}, {"DynamoDBStreams_20120810.", "dynamodb"},
      {"AWSGlue.", "glue"},            {"AmazonAthena.", "athena"},
      {"secretsmanager.", "secretsmanager"},
  };
  const char *target = http_req_header(r, "x-amz-target");
  for (size_t i = 0; target != NULL && i < sizeof targets / sizeof targets[0]; i++)
    if (str_starts(target, targets[i].prefix))
      return targets[i].service;
  /* REST-JSON APIs whose paths no bucket can have (uppercase, too short) */
  static const char *const data_api[] = {"/Execute", "/BatchExecute", "/BeginTransaction",
                                         "/CommitTransaction", "/RollbackTransaction"};
  for (size_t i = 0; i < sizeof data_api / sizeof data_api[0]; i++)
    if (strcmp(p, data_api[i]) == 0)
      return "rds-data";
  if (strncmp(p, "/v2/", 4) == 0)
    return "apigateway";
  if (r->method == NULL || strcmp(r->method, "POST") != 0 || r->nquery != 0)
    return "s3";
  if (p[0] == '/' && strspn(p + 1, "0123456789") == 12 && p[13] == '/' && p[14] != '\0' &&
      strchr(p + 14, '/') == NULL)
    return "sqs";
  /* a form POST to / is the query protocol (SQS, SNS, IAM, RDS: the body's
     Version tells which, query_service); S3's browser uploads are multipart
     forms to a bucket */
  if (is_query_form(r))
    return "sqs";
  return "s3";
}

/* The service of an unsigned query-protocol body, told by its Version
 * (each service has its own API version); NULL when none matches. */
static const char *query_service(const buf *body)
{
  static const struct {
    const char *version;
    const char *service;
  } versions[] = {{"2012-11-05", "sqs"}, {"2010-03-31", "sns"}, {"2010-05-08", "iam"},
                  {"2014-10-31", "rds"}};
  const char *p = body->data != NULL ? body->data : "";
  const char *end = p + body->len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp != NULL ? amp : end;
    if (stop - p > 8 && memcmp(p, "Version=", 8) == 0)
      for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
        if ((size_t)(stop - p - 8) == strlen(versions[i].version) &&
            memcmp(p + 8, versions[i].version, (size_t)(stop - p - 8)) == 0)
          return versions[i].service;
    p = stop + 1;
  }
  return NULL;
}

/* Fills r's response with e in svc's error shape (svc NULL: S3's). */
static void write_error(http_server *srv, http_req *r, http_service *svc, const err *e)
{
  if (svc == NULL)
    svc = service_named(srv, "s3");
  r->nresp_headers = 0;
  buf_reset(&r->resp_body);
  reader_drop(r->server_private);
  if (r->resp_fd >= 0) {
    close(r->resp_fd);
    r->resp_fd = -1;
  }
  r->status = err_http_status(e->code);
  if (svc != NULL && svc->error != NULL) {
    svc->error(svc->ctx, r, e);
  } else {
    buf_printf(&r->resp_body, "%s: %s\n", err_aws_code(e->code), e->msg);
    http_resp_header(r, "Content-Type", "text/plain");
  }
}

static enum MHD_Result answer_error(struct MHD_Connection *conn, http_req *r, const err *e)
{
  req_private *p = r->server_private;
  write_error(p->server, r, p->svc, e);
  return queue(conn, r);
}

void http_req_park(http_req *r)
{
  req_private *p = r->server_private;
  p->park_requested = true;
}

static void unlink_parked(http_server *srv, req_private *p)
{
  for (req_private **pp = &srv->parked; *pp != NULL; pp = &(*pp)->next_parked) {
    if (*pp == p) {
      *pp = p->next_parked;
      break;
    }
  }
  p->suspended = false;
}

void http_req_resume(http_req *r)
{
  req_private *p = r->server_private;
  http_server *srv = p->server;
  pthread_mutex_lock(&srv->lock);
  p->service_resumed = true;
  if (!p->resumed) {
    p->resumed = true;
    if (p->suspended) {
      unlink_parked(srv, p);
      MHD_resume_connection(p->conn);
    }
  }
  pthread_mutex_unlock(&srv->lock);
}

static enum MHD_Result answer(struct MHD_Connection *conn, http_req *r)
{
  req_private *p = r->server_private;
  http_server *srv = p->server;
  p->svc->handle(p->svc->ctx, r);
  if (p->park_requested) {
    pthread_mutex_lock(&srv->lock);
    bool already = p->resumed;
    if (!already) {
      p->conn = conn;
      p->suspended = true;
      p->next_parked = srv->parked;
      srv->parked = p;
      p->state = REQ_PARKED;
      MHD_suspend_connection(conn);
    }
    pthread_mutex_unlock(&srv->lock);
    if (!already)
      return MHD_YES;
  }
  return queue(conn, r);
}

/* ---- the body pipeline ---- */

static int deliver(void *ctx, const void *data, size_t n, err *e)
{
  http_req *r = ctx;
  req_private *p = r->server_private;
  if (p->check_sha256)
    hash_update(&p->sha256, data, n);
  if (p->check_md5)
    hash_update(&p->md5, data, n);
  if (p->checksum_name != NULL)
    hash_update(&p->checksum, data, n);
  r->body_len += n;
  if (r->sink.write != NULL)
    return r->sink.write(r->sink.ctx, data, n, e);
  if (buf_append(&r->body, data, n) != 0)
    return err_set(e, ERR_ENTITY_TOO_LARGE, "request body is larger than %zu bytes", r->body.max);
  return 0;
}

static const struct {
  const char *header;
  enum hash_algo algo;
} checksum_algos[] = {
    {"x-amz-checksum-crc32", HASH_CRC32},
    {"x-amz-checksum-crc32c", HASH_CRC32C},
    {"x-amz-checksum-sha1", HASH_SHA1},
    {"x-amz-checksum-sha256", HASH_SHA256},
    {"x-amz-checksum-crc64nvme", HASH_CRC64NVME},
};

/* Sets up the payload checks the headers ask for. */
static int setup_payload_checks(http_req *r, err *e)
{
  req_private *p = r->server_private;
  const char *ph = r->authenticated ? r->auth.payload_hash : NULL;
  if (ph != NULL) {
    if (strcmp(ph, SIGV4_STREAMING_SIGNED) == 0)
      p->chunked = aws_chunked_new(CHUNKED_SIGNED, &r->auth);
    else if (strcmp(ph, SIGV4_STREAMING_SIGNED_TRAILER) == 0)
      p->chunked = aws_chunked_new(CHUNKED_SIGNED_TRAILER, &r->auth);
    else if (strcmp(ph, SIGV4_STREAMING_UNSIGNED_TRAILER) == 0)
      p->chunked = aws_chunked_new(CHUNKED_UNSIGNED_TRAILER, &r->auth);
    else if (strcmp(ph, SIGV4_UNSIGNED_PAYLOAD) == 0)
      ;
    else if (strlen(ph) == 64 && hex_decode(ph, 64, p->want_sha256, SHA256_LEN)) {
      p->check_sha256 = true;
      hash_init(&p->sha256, HASH_SHA256);
    } else {
      return err_set(e, ERR_INVALID, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                                     "STREAMING-... or a SHA-256 digest in hex");
    }
  }
  const char *dl = http_req_header(r, "x-amz-decoded-content-length");
  if (dl != NULL) {
    char *end;
    errno = 0;
    long long v = strtoll(dl, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || end == dl)
      return err_set(e, ERR_INVALID, "invalid x-amz-decoded-content-length '%s'", dl);
    p->decoded_length = v;
  }
  const char *md5h = http_req_header(r, "content-md5");
  if (md5h != NULL) {
    if (base64_decode(md5h, strlen(md5h), p->want_md5, sizeof p->want_md5) != MD5_LEN)
      return err_set(e, ERR_INVALID_DIGEST, "the Content-MD5 you specified is not valid");
    p->check_md5 = true;
    hash_init(&p->md5, HASH_MD5);
  }
  const char *trailer = http_req_header(r, "x-amz-trailer");
  for (size_t i = 0; i < sizeof checksum_algos / sizeof checksum_algos[0]; i++) {
    const char *h = http_req_header(r, checksum_algos[i].header);
    bool in_trailer = trailer != NULL && str_ieq(trailer, checksum_algos[i].header);
    if (h == NULL && !in_trailer)
      continue;
    if (p->checksum_name != NULL)
      return err_set(e, ERR_INVALID_REQUEST, "expecting a single x-amz-checksum- header");
    if (in_trailer && p->chunked == NULL)
      return err_set(e, ERR_INVALID_REQUEST, "x-amz-trailer needs an aws-chunked body");
    p->checksum_name = checksum_algos[i].header;
    p->checksum_header = h;
    hash_init(&p->checksum, checksum_algos[i].algo);
  }
  return 0;
}

/* End-of-body checks; on success sets req->checksum_name/value. */
static int finish_payload_checks(http_req *r, err *e)
{
  req_private *p = r->server_private;
  int rc;
  if (p->chunked != NULL && (rc = aws_chunked_finish(p->chunked, e)) != 0)
    return rc;
  if (p->check_sha256) {
    uint8_t got[SHA256_LEN];
    hash_final(&p->sha256, got);
    if (!mem_equal_ct(got, p->want_sha256, SHA256_LEN))
      return err_set(e, ERR_CONTENT_SHA256,
                     "the provided 'x-amz-content-sha256' header does not match what was computed");
  }
  if (p->decoded_length >= 0 && (uint64_t)p->decoded_length != r->body_len)
    return err_set(e, ERR_INCOMPLETE_BODY,
                   "the body has %llu bytes but x-amz-decoded-content-length says %lld",
                   (unsigned long long)r->body_len, (long long)p->decoded_length);
  if (p->check_md5) {
    uint8_t got[MD5_LEN];
    hash_final(&p->md5, got);
    if (!mem_equal_ct(got, p->want_md5, MD5_LEN))
      return err_set(e, ERR_BAD_DIGEST, "the Content-MD5 you specified did not match what we received");
  }
  if (p->checksum_name != NULL && !r->checksum_not_body) {
    const char *want = p->checksum_header;
    if (want == NULL)
      want = aws_chunked_trailer(p->chunked, p->checksum_name);
    if (want == NULL)
      return err_set(e, ERR_INVALID_REQUEST, "the trailer '%s' is missing", p->checksum_name);
    uint8_t got[SHA256_LEN];
    size_t n = hash_final(&p->checksum, got);
    char *got64 = arena_alloc(r->arena, base64_encoded_len(n));
    base64_encode(got, n, got64);
    uint8_t sent[SHA256_LEN];
    if (base64_decode(want, strlen(want), sent, sizeof sent) != (long)n)
      return err_set(e, ERR_INVALID_REQUEST, "Value for %s header is invalid.", p->checksum_name);
    if (strcmp(got64, want) != 0)
      return err_set(e, ERR_BAD_DIGEST, "the %s you specified did not match the calculated checksum",
                     p->checksum_name);
    r->checksum_name = p->checksum_name;
    r->checksum_value = got64;
  }
  return 0;
}

/* The refusal of a request that carries no signature at all: IAM and RDS
 * answer MissingAuthenticationToken (403) as AWS does; the other services
 * keep sigv4_verify's AccessDenied, which their error shapes map to their
 * own codes (SNS's AuthorizationError). */
static int unsigned_refusal(http_req *r, err *e)
{
  static const char *const token_services[] = {"iam", "rds"};
  for (size_t i = 0; i < sizeof token_services / sizeof token_services[0]; i++)
    if (strcmp(r->service, token_services[i]) == 0)
      return err_set(e, ERR_MISSING_AUTH, "Request is missing Authentication Token");
  return ERR_DENIED;
}

/* Authenticates and routes a request whose headers are complete. */
static int begin(http_req *r, const char *body_sha256_hex, err *e)
{
  req_private *p = r->server_private;
  http_server *srv = p->server;
  int rc;
  sigv4_request sr = {
      .method = r->method,
      .raw_path = r->raw_path,
      .query = r->query,
      .nquery = r->nquery,
      .headers = r->headers,
      .nheaders = r->nheaders,
      .body_sha256_hex = body_sha256_hex,
  };
  if ((rc = sigv4_verify(&sr, srv->cfg.secret_lookup, srv->cfg.secret_ctx, time(NULL), r->arena,
                         &r->auth, e)) != 0) {
    /* A request with no signature at all reaches S3 as anonymous: S3
     * decides (a bucket policy may let anyone read); every other service
     * refuses it here. */
    if (rc != ERR_DENIED || p->svc == srv->cfg.native || strcmp(r->service, "s3") != 0 ||
        http_req_header(r, "authorization") != NULL)
      return rc == ERR_DENIED ? unsigned_refusal(r, e) : rc;
    err_clear(e);
    memset(&r->auth, 0, sizeof r->auth);
    if ((rc = setup_payload_checks(r, e)) != 0)
      return rc;
    p->prepared = true;
    return p->svc->prepare(p->svc->ctx, r, e);
  }
  r->authenticated = true;
  r->admin = srv->cfg.admin_access_key == NULL ||
             strcmp(r->auth.access_key, srv->cfg.admin_access_key) == 0;
  /* Only S3 takes an unsigned body (as AWS): elsewhere it would let a
   * signed request be replayed with another body. */
  if ((strcmp(r->service, "s3") != 0 || p->svc == srv->cfg.native) && r->auth.payload_hash != NULL &&
      (strcmp(r->auth.payload_hash, SIGV4_UNSIGNED_PAYLOAD) == 0 ||
       strcmp(r->auth.payload_hash, SIGV4_STREAMING_UNSIGNED_TRAILER) == 0))
    return err_set(e, ERR_SIGNATURE, "x-amz-content-sha256 '%s' is accepted by S3 only: "
                   "sign the body's SHA-256", r->auth.payload_hash);
  if ((rc = setup_payload_checks(r, e)) != 0)
    return rc;
  p->prepared = true;
  return p->svc->prepare(p->svc->ctx, r, e);
}

/* Signature version 2: "Authorization: AWS key:signature", or a query with
 * AWSAccessKeyId and Signature (presigned URLs of old SDKs and CLIs). */
static bool is_sigv2(const http_req *r)
{
  const char *a = http_req_header(r, "authorization");
  if (a != NULL && strncmp(a, "AWS ", 4) == 0)
    return true;
  return http_req_has_param(r, "AWSAccessKeyId") && http_req_has_param(r, "Signature");
}

static int feed(http_req *r, const char *data, size_t n, err *e)
{
  req_private *p = r->server_private;
  if (p->chunked != NULL)
    return aws_chunked_feed(p->chunked, data, n, deliver, r, e);
  return deliver(r, data, n, e);
}

static enum MHD_Result on_first_call(struct MHD_Connection *conn, http_req *r, const char *method)
{
  req_private *p = r->server_private;
  http_server *srv = p->server;
  err e = {0};
  conn_head_deadline(srv, conn, 0);
  r->method = arena_strdup(r->arena, method);
  const char *uri = r->raw_path;
  header_collect hc = {.req = r};
  MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &hc);
  const char *cl = http_req_header(r, "content-length");
  if (cl != NULL)
    r->content_length = strtoll(cl, NULL, 10);
  if (parse_uri(r, uri, &e) != 0)
    return answer_error(conn, r, &e);

  if (srv->cfg.open_service != NULL) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (ci != NULL && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
      r->peer_pid = cred.pid;
    p->svc = srv->cfg.open_service;
    r->service = p->svc->name;
    p->prepared = true;
    if (setup_payload_checks(r, &e) != 0 || p->svc->prepare(p->svc->ctx, r, &e) != 0)
      return answer_error(conn, r, &e);
    p->state = REQ_BODY;
    return MHD_YES;
  }

  r->peer_addr = "";
  const union MHD_ConnectionInfo *ai =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (ai != NULL && ai->client_addr != NULL && ai->client_addr->sa_family != AF_UNIX) {
    char ip[INET6_ADDRSTRLEN];
    const struct sockaddr *sa = ai->client_addr;
    const void *at = sa->sa_family == AF_INET6
                         ? (const void *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    if (inet_ntop(sa->sa_family, at, ip, sizeof ip) != NULL)
      r->peer_addr = arena_strdup(r->arena, ip);
  }
  /* A public front door: anonymous requests go straight to prepare (the
     service decides what they may reach), signed ones are verified below. */
  http_service *front = front_service(srv, r);
  const char *authz = http_req_header(r, "authorization");
  /* there an Authorization header that is not SigV4 (a bearer token for
     an authorizer, Basic for the backend) is the service's to read */
  if (front != NULL && (authz == NULL || strncmp(authz, "AWS4-", 5) != 0) &&
      !http_req_has_param(r, "X-Amz-Signature")) {
    p->svc = front;
    r->service = front->name;
    p->prepared = true;
    if (setup_payload_checks(r, &e) != 0 || p->svc->prepare(p->svc->ctx, r, &e) != 0)
      return answer_error(conn, r, &e);
    p->state = REQ_BODY;
    return MHD_YES;
  }
  bool native = front == NULL &&
                (strncmp(r->raw_path, "/_tarn/", 7) == 0 || strcmp(r->raw_path, "/_tarn") == 0);
  if (strncmp(r->raw_path, "/_tarn/sites/", 13) == 0)
    native = false;  /* static websites from buckets: S3 serves them */
  if (native && srv->cfg.native != NULL && strcmp(r->raw_path, "/_tarn/health") == 0) {
    p->svc = srv->cfg.native;
    r->service = "native";
    p->prepared = true;
    if (p->svc->prepare(p->svc->ctx, r, &e) != 0)
      return answer_error(conn, r, &e);
    p->state = REQ_BODY;
    return MHD_YES;
  }

  sigv4_request sr = {.method = r->method, .raw_path = r->raw_path, .query = r->query,
                      .nquery = r->nquery, .headers = r->headers, .nheaders = r->nheaders};
  char scope[32];
  const char *service = unsigned_service(r);
  bool scoped = sigv4_scope_service(&sr, scope);
  if (scoped && strncmp(r->raw_path, "/_tarn/sites/", 13) != 0)
    service = arena_strdup(r->arena, scope);
  r->service = service;
  if (front != NULL)
    p->svc = front;
  else if (native && srv->cfg.native != NULL)
    p->svc = srv->cfg.native;
  else
    p->svc = service_named(srv, service);
  if (p->svc == NULL) {
    p->svc = service_named(srv, "s3");
    err_set(&e, ERR_INVALID_REQUEST, "tarn does not serve the service '%s'", service);
    return answer_error(conn, r, &e);
  }
  if (is_sigv2(r)) {
    err_set(&e, ERR_INVALID_REQUEST,
            "the authorization mechanism you have provided (signature version 2) is not "
            "supported, please use AWS4-HMAC-SHA256 (AWS CLI: aws configure set "
            "default.s3.signature_version s3v4)");
    return answer_error(conn, r, &e);
  }
  /* An unsigned query-protocol form is refused in its own service's error
     shape, which only its body tells (query_service): buffer a small one
     first. */
  if (!scoped && front == NULL && !native && is_query_form(r) &&
      http_req_header(r, "authorization") == NULL && r->content_length > 0 &&
      r->content_length <= SNIFF_BODY_MAX) {
    r->body.max = SNIFF_BODY_MAX;
    p->sniff_service = true;
    p->state = REQ_DEFERRED;
    return MHD_YES;
  }
  /* Non-S3 SDK requests sign the body digest without sending it: buffer, then verify. */
  bool has_body = r->content_length > 0 || http_req_header(r, "transfer-encoding") != NULL;
  bool hashes_body = strcmp(service, "s3") != 0 || native;
  if (hashes_body && http_req_header(r, "x-amz-content-sha256") == NULL && has_body &&
      http_req_header(r, "authorization") != NULL) {
    size_t max = p->svc->unsigned_body_max ? p->svc->unsigned_body_max : DEFERRED_BODY_MAX;
    if (r->content_length > (int64_t)max) {
      err_set(&e, ERR_ENTITY_TOO_LARGE, "request body is larger than %zu bytes", max);
      return answer_error(conn, r, &e);
    }
    r->body.max = max;
    p->state = REQ_DEFERRED;
    return MHD_YES;
  }
  const char *digest = has_body || !hashes_body
                           ? NULL
                           : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  if (begin(r, digest, &e) != 0)
    return answer_error(conn, r, &e);
  p->state = REQ_BODY;
  return MHD_YES;
}

static enum MHD_Result on_body_end(struct MHD_Connection *conn, http_req *r)
{
  req_private *p = r->server_private;
  err e = {0};
  if (p->state == REQ_FAILED)
    return answer_error(conn, r, &p->failure);
  if (p->state == REQ_DEFERRED) {
    uint8_t digest[SHA256_LEN];
    char hex[2 * SHA256_LEN + 1];
    sha256(r->body.data ? r->body.data : "", r->body.len, digest);
    hex_encode(digest, sizeof digest, hex);
    /* The buffered body goes through the pipeline again once prepared. */
    if (p->sniff_service) {
      const char *svc = query_service(&r->body);
      http_service *named = svc != NULL ? service_named(p->server, svc) : NULL;
      if (named != NULL) {
        r->service = svc;
        p->svc = named;
      }
    }
    buf pending = r->body;
    buf_init(&r->body, HTTP_DEFAULT_BODY_MAX);
    int rc = begin(r, hex, &e);
    if (rc == 0 && pending.len > 0)
      rc = feed(r, pending.data, pending.len, &e);
    buf_release(&pending);
    if (rc != 0)
      return answer_error(conn, r, &e);
  }
  if (finish_payload_checks(r, &e) != 0)
    return answer_error(conn, r, &e);
  return answer(conn, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
  http_req *r = *req_cls;
  if (r == NULL)
    return MHD_NO;
  req_private *p = r->server_private;
  switch (p->state) {
  case REQ_NEW:
    return on_first_call(conn, r, method);
  case REQ_ANSWERED:
    *upload_data_size = 0; /* drop whatever still arrives */
    return MHD_YES;
  case REQ_PARKED:
    *upload_data_size = 0;
    if (p->stop_resumed) {
      /* The stop resumed it, and the service may be filling the response
       * right now: cleanup() first (the service lets go of r under its own
       * lock), then send what the service finished, else a 503. */
      p->cleaned = true;
      if (p->prepared && p->svc != NULL && p->svc->cleanup != NULL)
        p->svc->cleanup(p->svc->ctx, r);
      pthread_mutex_lock(&p->server->lock);
      bool served = p->service_resumed;
      pthread_mutex_unlock(&p->server->lock);
      if (!served) {
        r->nresp_headers = 0;
        buf_reset(&r->resp_body);
        r->status = 503;
        http_resp_header(r, "Content-Type", "text/plain");
        buf_puts(&r->resp_body, "the server is stopping\n");
      }
    }
    return queue(conn, r); /* resumed: the response is ready */
  case REQ_DEFERRED:
    if (*upload_data_size > 0) {
      if (buf_append(&r->body, upload_data, *upload_data_size) != 0) {
        err_set(&p->failure, ERR_ENTITY_TOO_LARGE, "request body is larger than %zu bytes",
                r->body.max);
        p->state = REQ_FAILED;
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
    return on_body_end(conn, r);
  case REQ_FAILED:
    if (*upload_data_size > 0) {
      *upload_data_size = 0;
      return MHD_YES;
    }
    return on_body_end(conn, r);
  case REQ_BODY:
    if (*upload_data_size > 0) {
      if (feed(r, upload_data, *upload_data_size, &p->failure) != 0)
        p->state = REQ_FAILED;
      *upload_data_size = 0;
      return MHD_YES;
    }
    return on_body_end(conn, r);
  }
  return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
  http_server *srv = cls;
  http_req *r = *req_cls;
  /* the next head on this connection: the idle time, then the head's own */
  conn_head_deadline(srv, conn, HTTP_IDLE_TIMEOUT_SECONDS + GATE_HEAD_SECONDS);
  if (r == NULL)
    return;
  *req_cls = NULL;
  req_private *p = r->server_private;
  pthread_mutex_lock(&srv->lock);
  if (p->suspended)
    unlink_parked(srv, p);
  pthread_mutex_unlock(&srv->lock);
  if (p->prepared && !p->cleaned && p->svc != NULL && p->svc->cleanup != NULL)
    p->svc->cleanup(p->svc->ctx, r);
  double seconds = (double)(time_mono_us() - p->start_us) / 1e6;
  int status = p->state == REQ_ANSWERED ? r->status : 499; /* 499: the client went away */
  const char *op = r->op ? r->op : "unknown";
  uint64_t in = r->body_len;
  if (r->method != NULL) {
    metrics_record(srv, r->service ? r->service : "none", op, status, seconds, in, p->bytes_out);
    if (srv->cfg.log_requests)
      log_info("%s %s %s %d in=%llu out=%llu %.2fms %s %s", r->method, r->raw_path,
               r->service ? r->service : "-", status, (unsigned long long)in,
               (unsigned long long)p->bytes_out, seconds * 1e3, op, r->request_id);
  }
  req_free(r);
  pthread_mutex_lock(&srv->lock);
  if (--srv->in_flight == 0)
    pthread_cond_broadcast(&srv->idle);
  pthread_mutex_unlock(&srv->lock);
}

/* ---- the gate's side ---- */

static int edge_admit(void *cls, int fd, const struct sockaddr *addr, socklen_t len)
{
  http_server *srv = cls;
  return MHD_add_connection(srv->daemon, fd, addr, len) == MHD_YES ? 0 : -1;
}

/* Answers a head the gate refused: a request made of what the gate could
 * parse, routed like any other, in its service's error shape, with
 * Connection: close. */
static void edge_reject(void *cls, const gate_head *h, int code, const char *msg, buf *out)
{
  http_server *srv = cls;
  http_req *r = req_new(srv);
  req_private *p = r->server_private;
  err e = {0};
  r->method = arena_strdup(r->arena, h->method ? h->method : "GET");
  header_collect hc = {.req = r};
  for (size_t i = 0; i < h->nheaders; i++)
    collect_header(&hc, MHD_HEADER_KIND, h->headers[i].name, h->headers[i].value);
  if (h->target == NULL || parse_uri(r, h->target, &e) != 0) {
    r->nquery = 0;
    r->raw_path = "/";
    r->path = "/";
  }
  err_clear(&e);
  sigv4_request sr = {.method = r->method, .raw_path = r->raw_path, .query = r->query,
                      .nquery = r->nquery, .headers = r->headers, .nheaders = r->nheaders};
  char scope[32];
  const char *service = unsigned_service(r);
  if (sigv4_scope_service(&sr, scope))
    service = arena_strdup(r->arena, scope);
  p->svc = service_named(srv, service);
  r->service = p->svc ? p->svc->name : "s3";
  /* JSON services know the usual client errors, not the edge's own codes */
  int wire = code;
  if (p->svc != NULL && strcmp(p->svc->name, "s3") != 0)
    wire = code == ERR_TOO_MANY_REQUESTS ? ERR_UNAVAILABLE : ERR_INVALID_REQUEST;
  err_set(&e, wire, "%s", msg);
  write_error(srv, r, p->svc, &e);
  if (code == ERR_URI_TOO_LONG)
    r->status = err_http_status(code);
  int status = r->status;
  buf_printf(out, "HTTP/1.1 %d %s\r\n", status, MHD_get_reason_phrase_for((unsigned)status));
  for (size_t i = 0; i < r->nresp_headers; i++)
    buf_printf(out, "%s: %s\r\n", r->resp_headers[i].name, r->resp_headers[i].value);
  char date[64];
  time_t now = time(NULL);
  struct tm tm;
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
  buf_printf(out, "Date: %s\r\nx-amz-request-id: %s\r\nServer: tarn\r\nConnection: close\r\n"
                  "Content-Length: %zu\r\n\r\n", date, r->request_id, r->resp_body.len);
  if (strcmp(r->method, "HEAD") != 0)
    buf_append(out, r->resp_body.data, r->resp_body.len);
  metrics_record(srv, r->service, "Rejected", status, 0, 0, r->resp_body.len);
  if (srv->cfg.log_requests)
    log_info("%s %.200s %s %d rejected: %s %s", r->method, r->raw_path, r->service, status, msg,
             r->request_id);
  req_free(r);
}

/* Each admitted connection's address is kept until it closes, when the
 * gate stops counting it. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
  http_server *srv = cls;
  if (srv->gate == NULL)
    return;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const union MHD_ConnectionInfo *fi =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    conn_info *c = xcalloc(1, sizeof *c);
    if (ci != NULL && ci->client_addr != NULL)
      memcpy(&c->addr, ci->client_addr,
             ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                    : sizeof(struct sockaddr_in));
    c->fd = fi != NULL ? fi->connect_fd : -1;
    pthread_mutex_lock(&srv->conns_lock);
    c->next = srv->conns;
    if (c->next != NULL)
      c->next->prev = c;
    srv->conns = c;
    pthread_mutex_unlock(&srv->conns_lock);
    *socket_context = c;
  } else if (*socket_context != NULL) {
    conn_info *c = *socket_context;
    pthread_mutex_lock(&srv->conns_lock);
    if (c->prev != NULL)
      c->prev->next = c->next;
    else
      srv->conns = c->next;
    if (c->next != NULL)
      c->next->prev = c->prev;
    pthread_mutex_unlock(&srv->conns_lock);
    http__gate_release(srv->gate, (struct sockaddr *)&c->addr);
    free(c);
    *socket_context = NULL;
  }
}

/* From the gate's thread: shuts down the kept-alive connections whose next
 * head is late (libmicrohttpd then closes them). The socket is checked to
 * still be the client's (its peer), so a descriptor number reused by a
 * socket elsewhere in the process is never touched. */
static void edge_sweep(void *cls, int64_t now_us)
{
  http_server *srv = cls;
  pthread_mutex_lock(&srv->conns_lock);
  for (conn_info *c = srv->conns; c != NULL; c = c->next) {
    if (c->head_deadline_us == 0 || now_us < c->head_deadline_us || c->fd < 0)
      continue;
    c->head_deadline_us = 0;
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    const struct sockaddr_in *a = (const struct sockaddr_in *)&c->addr;
    const struct sockaddr_in *b = (const struct sockaddr_in *)&peer;
    if (getpeername(c->fd, (struct sockaddr *)&peer, &len) == 0 && peer.ss_family == AF_INET &&
        a->sin_family == AF_INET && a->sin_port == b->sin_port &&
        a->sin_addr.s_addr == b->sin_addr.s_addr)
      shutdown(c->fd, SHUT_RDWR);
  }
  pthread_mutex_unlock(&srv->conns_lock);
}

/* ---- start and stop ---- */

/* bind() keeps the path it is given as the socket's address, and every
 * connection accepted copies it into the connecting side's network
 * namespace: a sandbox's /proc/net/unix would show the host path. So the
 * bare file name is bound, from a thread with a working directory of its
 * own (unshare CLONE_FS) inside the folder. */
typedef struct bind_job {
  int fd;
  const char *path;
  int errnum;
} bind_job;

static void *bind_in_folder(void *arg)
{
  bind_job *j = arg;
  const char *slash = strrchr(j->path, '/');
  const char *name = slash != NULL ? slash + 1 : j->path;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", name);
  char dir[4096];
  if (slash == NULL)
    snprintf(dir, sizeof dir, ".");
  else if (slash == j->path)
    snprintf(dir, sizeof dir, "/");
  else
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - j->path), j->path);
  if (unshare(CLONE_FS) != 0 || chdir(dir) != 0 ||
      bind(j->fd, (struct sockaddr *)&addr, sizeof addr) != 0)
    j->errnum = errno;
  return NULL;
}

/* A listening Unix socket at path (an old socket file there is replaced). */
static int listen_unix(const char *path, err *e)
{
  const char *slash = strrchr(path, '/');
  if (strlen(slash != NULL ? slash + 1 : path) >= sizeof(((struct sockaddr_un *)0)->sun_path) ||
      strlen(path) >= 4096)
    return err_set(e, ERR_INVALID, "socket path '%s' is too long", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return err_set(e, ERR_IO, "cannot create a socket: %s", strerror(errno));
  unlink(path);
  bind_job j = {.fd = fd, .path = path};
  pthread_t t;
  if (pthread_create(&t, NULL, bind_in_folder, &j) != 0)
    j.errnum = EAGAIN;
  else
    pthread_join(t, NULL);
  if (j.errnum != 0)
    errno = j.errnum;
  if (j.errnum != 0 || chmod(path, 0666) != 0 || listen(fd, 512) != 0) {
    int saved = errno;
    close(fd);
    return err_set(e, ERR_IO, "cannot listen on '%s': %s", path, strerror(saved));
  }
  return fd;
}

int http_server_start(const http_config *cfg, http_server **out, err *e)
{
  http_server *srv = xcalloc(1, sizeof *srv);
  srv->cfg = *cfg;
  pthread_mutex_init(&srv->lock, NULL);
  pthread_mutex_init(&srv->conns_lock, NULL);
  pthread_cond_init(&srv->idle, NULL);
  uint8_t seed[4];
  random_bytes(seed, sizeof seed);
  srv->id_prefix = (uint32_t)seed[0] << 24 | (uint32_t)seed[1] << 16 | (uint32_t)seed[2] << 8 | seed[3];
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
  flags |= MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE;
  unsigned pool = cfg->threads ? cfg->threads : HTTP_POOL_THREADS;
  if (cfg->listen_unix != NULL) {
    int fd = listen_unix(cfg->listen_unix, e);
    if (fd < 0) {
      free(srv);
      return fd;
    }
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, pool,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0, /* runtimes hold long polls */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(2 * HTTP_MAX_HEADER_BYTES),
        MHD_OPTION_END);
    if (srv->daemon == NULL) {
      close(fd);
      free(srv);
      return err_set(e, ERR_IO, "cannot serve on '%s'", cfg->listen_unix);
    }
    *out = srv;
    return 0;
  }
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)cfg->listen_port);
  const char *host = cfg->listen_host ? cfg->listen_host : "127.0.0.1";
  if (strcmp(host, "localhost") == 0)
    host = "127.0.0.1";
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    free(srv);
    return err_set(e, ERR_INVALID, "cannot listen on '%s': not an IPv4 address", host);
  }
  /* The gate owns the listening socket and hands libmicrohttpd only
     connections whose first request head is complete (see gate.c). */
  int one = 1;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  socklen_t alen = sizeof addr;
  if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0) {
    if (lfd >= 0)
      close(lfd);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->idle);
    free(srv);
    return err_set(e, ERR_IO, "cannot listen on '%s:%d': address in use or not allowed", host,
                   cfg->listen_port);
  }
  srv->port = ntohs(addr.sin_port);
  srv->daemon = MHD_start_daemon(
      flags | MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, on_request, srv,
      MHD_OPTION_THREAD_POOL_SIZE, pool,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
      MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_SECONDS,
      /* room for a head the gate admits: its bytes plus one entry per
         header and query parameter */
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(4 * HTTP_MAX_HEADER_BYTES),
      MHD_OPTION_END);
  gate_config gc = {.listen_fd = lfd, .max_head = HTTP_MAX_HEADER_BYTES,
                    .admit = edge_admit, .reject = edge_reject, .sweep = edge_sweep,
                    .ctx = srv};
  if (srv->daemon == NULL || http__gate_start(&gc, &srv->gate, e) != 0) {
    if (srv->daemon != NULL)
      MHD_stop_daemon(srv->daemon);
    else
      err_set(e, ERR_IO, "cannot start the HTTP server on '%s:%d'", host, srv->port);
    close(lfd);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->idle);
    free(srv);
    return e->code;
  }
  *out = srv;
  return 0;
}

int http_server_port(const http_server *s)
{
  return s->port;
}

http_server *http_server_stop(http_server *srv, int deadline_ms)
{
  if (srv == NULL)
    return NULL;
  http__gate_stop(srv->gate); /* no new connections; those still sending a head are closed */
  MHD_socket listen_fd = srv->gate ? MHD_INVALID_SOCKET : MHD_quiesce_daemon(srv->daemon);
  if (listen_fd != MHD_INVALID_SOCKET)
    close(listen_fd);
  if (srv->cfg.listen_unix != NULL)
    unlink(srv->cfg.listen_unix);
  struct timespec until = time_deadline(CLOCK_REALTIME, deadline_ms);
  pthread_mutex_lock(&srv->lock);
  /* upgraded connections: their owners read end-of-file (and may still
     write a goodbye, a WebSocket close frame) and close them */
  for (http_upgrade *u = srv->upgrades; u != NULL; u = u->next)
    shutdown(u->fd, SHUT_RD);
  while (srv->upgrades != NULL)
    if (pthread_cond_timedwait(&srv->idle, &srv->lock, &until) == ETIMEDOUT)
      break;
  while (srv->in_flight > 0)
    if (pthread_cond_timedwait(&srv->idle, &srv->lock, &until) == ETIMEDOUT)
      break;
  /* Past the deadline, parked requests are answered 503 by the server, on
     their connection's thread (on_request): a service may be writing the
     response at this very moment, so this thread must not touch it. */
  while (srv->parked != NULL) {
    req_private *p = srv->parked;
    unlink_parked(srv, p);
    p->resumed = true;
    p->stop_resumed = true;
    MHD_resume_connection(p->conn);
  }
  /* Streams still sending: their producers are told the client is gone,
     and a suspended reader is resumed so the connection can close. */
  for (http_stream *st = srv->streams; st != NULL; st = st->next_live) {
    pthread_mutex_lock(&st->lock);
    st->gone = true;
    pthread_cond_broadcast(&st->room);
    stream_wake_reader(st);
    pthread_mutex_unlock(&st->lock);
  }
  until.tv_sec += 1; /* let the resumed ones be answered */
  while (srv->in_flight > 0)
    if (pthread_cond_timedwait(&srv->idle, &srv->lock, &until) == ETIMEDOUT)
      break;
  pthread_mutex_unlock(&srv->lock);
  MHD_stop_daemon(srv->daemon);
  srv->gate = http__gate_free(srv->gate);
  pthread_mutex_destroy(&srv->conns_lock);
  pthread_mutex_destroy(&srv->lock);
  pthread_cond_destroy(&srv->idle);
  free(srv);
  return NULL;
}
