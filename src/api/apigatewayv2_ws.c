/* api/apigatewayv2_ws.c -- WebSocket APIs' connections: one thread, one
 * epoll set, every upgraded socket (see apigatewayv2_ws.h).
 *
 * Why a thread of its own: a WebSocket connection lives for hours and is
 * idle most of that time; the HTTP server's pool has HTTP_POOL_THREADS
 * threads, so no connection may hold one. libmicrohttpd hands the socket
 * over after the 101 (http_resp_upgrade) and this thread does the rest.
 *
 * A connection's states:
 *   EXPECTED  $connect accepted it, the 101 is on its way (ws_hub_expect);
 *   OPEN      the socket is here: messages flow;
 *   CLOSING   a close frame was sent: the output drains, then it ends;
 *   (ended)   out of the list: the socket goes back (http_upgrade_close),
 *             $disconnect runs, the record is freed.
 *
 * Invariants:
 *   (1) Only the hub thread reads a socket, writes it, or frees a
 *       connection; other threads (the @connections API, functions'
 *       answers) queue bytes in c->out or set want_close under h->mu and
 *       wake the thread.
 *   (2) A connection ends exactly once and $disconnect runs for every one
 *       that was OPEN (whatever ended it: a close frame, end-of-file, a
 *       protocol error, idle or age limit, DeleteConnection, the stop).
 *   (3) Invocations are fire-and-forget: what they need (payload, ids) is
 *       in a job of their own (a two-way route's answer is posted to the
 *       connection like an @connections POST), and the hub stays allocated until the last
 *       job's done has run (refs).
 *   (4) Output per connection is bounded (WS_HUB_MAX_PENDING_OUT): a
 *       client that does not read gets LimitExceeded, never unbounded
 *       memory.
 *   (5) An EXPECTED record is forgotten after EXPECT_MS only: the 101
 *       goes out (or the connection dies) long before, so the upgrade
 *       callback never sees a freed record.
 *
 * Start reading at hub_main().
 */
#include "api/apigatewayv2_ws.h"

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/text.h"
#include "http/websocket.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EXPECT_MS (5 * 60 * 1000)

enum conn_state { EXPECTED, OPEN, CLOSING };

typedef struct ws_hub ws_hub;

typedef struct wsconn {
  ws_hub *h;                   /* its hub (the upgrade callback has only the record) */
  char id[17];
  arena *a;                    /* the strings below */
  gateway_ws_conn info;        /* what events say (strings in a) */
  str_pair *headers;           /* the upgrade request's, for DISCONNECT */
  size_t nheaders;
  enum conn_state state;       /* under h->mu */
  int64_t expected_at;         /* monotonic ms */
  int64_t opened_at;           /* monotonic ms */
  int64_t last_active_ms;      /* wall clock, for GetConnection */
  int64_t last_active_mono;
  http_upgrade *u;
  int fd;
  ws_reader rd;                /* hub thread only */
  bool has_extra;              /* bytes arrived with the 101: parse without a read */
  buf out;                     /* frames to send (4), under h->mu */
  bool want_close;             /* under h->mu: end it (code, reason below) */
  bool close_sent;
  bool dead;                   /* hub thread: end it now */
  bool epoll_out;              /* hub thread: EPOLLOUT is armed */
  int close_code;              /* for $disconnect */
  const char *close_reason;
  struct wsconn *next;
} wsconn;

struct ws_hub {
  gateway *g;
  fn_system *fn;
  pthread_mutex_t mu;
  wsconn *conns;               /* under mu */
  size_t nconns;
  int ep;
  int wake_fd;
  pthread_t thread;
  bool started;
  atomic_bool stopping;
  atomic_int refs;             /* the owner's, plus one per running job (3) */
};

static void hub_unref(ws_hub *h)
{
  if (atomic_fetch_sub(&h->refs, 1) != 1)
    return;
  close(h->ep);
  close(h->wake_fd);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

static void wake(ws_hub *h)
{
  uint64_t one = 1;
  ssize_t n = write(h->wake_fd, &one, sizeof one);
  (void)n;
}

void ws_hub_new_id(char out[17])
{
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  uint8_t r[16];
  random_bytes(r, sizeof r);
  for (size_t i = 0; i < 16; i++)
    out[i] = abc[r[i] % 62];
  out[16] = '\0';
}

/* ---- invocations (3) ---- */

typedef struct job {
  ws_hub *h;
  char *payload;
  char api_id[64];
  char id[17];
  char request_id[37];
  bool reply_errors;           /* MESSAGE: tell the client when it fails */
  bool reply_body;             /* a two-way route: the answer goes to the client */
  fn_invocation *running;
} job;

static void post_error(ws_hub *h, const char *api_id, const char *id, const char *request_id,
                       const char *message)
{
  json_t *j = json_pack("{s:s, s:s, s:s}", "message", message, "connectionId", id, "requestId",
                        request_id);
  char *s = json_dumps(j, JSON_COMPACT);
  err e = {0};
  ws_hub_post(h, api_id, id, s, strlen(s), &e);
  free(s);
  json_decref(j);
}

/* A two-way route's answer: the body of a proxy response
 * ({"statusCode":..,"body":..}), else the whole answer. */
static void reply(job *j, const char *payload, size_t len)
{
  json_t *a = json_loadb(payload, len, JSON_DECODE_ANY, NULL);
  json_t *body = json_is_object(a) && json_object_get(a, "statusCode") != NULL
                     ? json_object_get(a, "body")
                     : NULL;
  err e = {0};
  if (json_is_string(body)) {
    ws_hub_post(j->h, j->api_id, j->id, json_string_value(body), json_string_length(body), &e);
  } else if (body != NULL && !json_is_null(body)) {
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    ws_hub_post(j->h, j->api_id, j->id, s, strlen(s), &e);
    free(s);
  } else if (!(json_is_object(a) && json_object_get(a, "statusCode") != NULL) && len > 0 &&
             !(len == 4 && memcmp(payload, "null", 4) == 0)) {
    ws_hub_post(j->h, j->api_id, j->id, payload, len, &e);
  }
  json_decref(a);
}

static void job_done(void *ctx, int rc, fn_invoke_result *res, const err *e)
{
  job *j = ctx;
  (void)e;
  bool failed = rc != 0 || (res != NULL && res->function_error != NULL);
  if (!failed && j->reply_body && !atomic_load(&j->h->stopping))
    reply(j, res->payload.data ? res->payload.data : "", res->payload.len);
  if (res != NULL)
    buf_release(&res->payload);
  if (failed && j->reply_errors && !atomic_load(&j->h->stopping))
    post_error(j->h, j->api_id, j->id, j->request_id, "Internal server error");
  free(j->payload);
  hub_unref(j->h);
  free(j);
}

/* Invokes function with ev (consumed); false when it could not start. */
static bool invoke(ws_hub *h, const char *function, json_t *ev, const wsconn *c,
                   const char *request_id, bool reply_errors, bool reply_body)
{
  job *j = xcalloc(1, sizeof *j);
  j->h = h;
  j->payload = json_dumps(ev, JSON_COMPACT);
  json_decref(ev);
  snprintf(j->api_id, sizeof j->api_id, "%s", c->info.api_id);
  memcpy(j->id, c->id, sizeof j->id);
  snprintf(j->request_id, sizeof j->request_id, "%s", request_id);
  j->reply_errors = reply_errors;
  j->reply_body = reply_body;
  atomic_fetch_add(&h->refs, 1);
  fn_invoke_params p = {
      .name = function,
      .type = FN_INVOKE_SYNC,
      .payload = j->payload,
      .len = strlen(j->payload),
      .done = job_done,
      .done_ctx = j,
  };
  arena *a = arena_new();
  fn_invoke_result res;
  err e = {0};
  int rc = fn_invoke(h->fn, &p, a, &res, &e);
  arena_free(a);
  if (rc != 0) {
    free(j->payload);
    free(j);
    hub_unref(h);
    return false;
  }
  return true;
}

static void request_id_new(char out[37])
{
  uuid_v4(out);
}

/* A message from the client: route it (gateway_ws_select) and invoke. */
static void dispatch(ws_hub *h, wsconn *c, const uint8_t *data, size_t len, bool binary)
{
  char rid[37];
  request_id_new(rid);
  json_t *doc = gateway_api_snapshot(h->g, c->info.api_id);
  if (doc == NULL) { /* the API was deleted */
    pthread_mutex_lock(&h->mu);
    c->want_close = true;
    c->close_code = WS_CLOSE_GOING_AWAY;
    c->close_reason = "Going away";
    pthread_mutex_unlock(&h->mu);
    return;
  }
  arena *a = arena_new();
  const char *key = gateway_ws_select(doc, data, len, binary, a);
  const char *function = key ? gateway_ws_route(doc, key, a, NULL) : NULL;
  bool two_way = key != NULL && gateway_ws_two_way(doc, key);
  json_decref(doc);
  if (key == NULL) {
    post_error(h, c->info.api_id, c->id, rid, "Forbidden");
  } else if (function == NULL || *function == '\0') {
    post_error(h, c->info.api_id, c->id, rid, "Internal server error");
  } else {
    json_t *ev = gateway_ws_event(&c->info, "MESSAGE", key, rid, NULL, data, len, binary, 0,
                                  NULL);
    if (!invoke(h, function, ev, c, rid, true, two_way))
      post_error(h, c->info.api_id, c->id, rid, "Internal server error");
  }
  arena_free(a);
}

/* ---- connections ---- */

void *ws_hub_expect(ws_hub *h, const gateway_ws_conn *ci, const str_pair *headers,
                    size_t nheaders)
{
  wsconn *c = xcalloc(1, sizeof *c);
  c->h = h;
  c->a = arena_new();
  snprintf(c->id, sizeof c->id, "%s", ci->connection_id);
  c->info.api_id = arena_strdup(c->a, ci->api_id);
  c->info.stage = arena_strdup(c->a, ci->stage);
  c->info.connection_id = c->id;
  c->info.domain = arena_strdup(c->a, ci->domain);
  c->info.source_ip = arena_strdup(c->a, ci->source_ip);
  c->info.user_agent = arena_strdup(c->a, ci->user_agent ? ci->user_agent : "");
  c->info.connected_at_ms = ci->connected_at_ms;
  c->info.authorizer = ci->authorizer ? json_deep_copy(ci->authorizer) : NULL;
  c->headers = arena_alloc(c->a, (nheaders + 1) * sizeof *c->headers);
  for (size_t i = 0; i < nheaders; i++) {
    c->headers[i].name = arena_strdup(c->a, headers[i].name);
    c->headers[i].value = arena_strdup(c->a, headers[i].value);
  }
  c->nheaders = nheaders;
  c->fd = -1;
  c->state = EXPECTED;
  c->expected_at = time_mono_ms();
  c->last_active_ms = time_now_ms();
  c->last_active_mono = c->expected_at;
  buf_init(&c->out, WS_HUB_MAX_PENDING_OUT);
  ws_reader_init(&c->rd, GATEWAY_WS_MAX_FRAME, GATEWAY_WS_MAX_MESSAGE);
  pthread_mutex_lock(&h->mu);
  if (h->nconns >= WS_HUB_MAX_CONNECTIONS || atomic_load(&h->stopping)) {
    pthread_mutex_unlock(&h->mu);
    ws_reader_release(&c->rd);
    buf_release(&c->out);
    json_decref((json_t *)c->info.authorizer);
    arena_free(c->a);
    free(c);
    return NULL;
  }
  c->next = h->conns;
  h->conns = c;
  h->nconns++;
  pthread_mutex_unlock(&h->mu);
  return c;
}

void ws_hub_upgraded(void *ctx, http_upgrade *u, int fd, const char *extra, size_t n)
{
  wsconn *c = ctx;
  ws_hub *h = c->h;
  /* all under mu: the hub thread sees the record OPEN only once its
     socket is in the epoll set, so it never ends it half-added */
  pthread_mutex_lock(&h->mu);
  c->u = u;
  c->fd = fd;
  c->state = OPEN;
  c->opened_at = time_mono_ms();
  c->last_active_mono = c->opened_at;
  if (n > 0) {
    if (!ws_reader_push(&c->rd, extra, n))
      c->dead = true;
    c->has_extra = true;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
  if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
    c->dead = true;
  pthread_mutex_unlock(&h->mu);
  wake(h);
}

/* An OPEN or CLOSING connection of api_id by id (h->mu held), or NULL. */
static wsconn *find(ws_hub *h, const char *api_id, const char *id)
{
  for (wsconn *c = h->conns; c != NULL; c = c->next)
    if (c->state != EXPECTED && !c->dead && strcmp(c->id, id) == 0 &&
        strcmp(c->info.api_id, api_id) == 0)
      return c;
  return NULL;
}

static int gone(const char *id, err *e)
{
  return err_set(e, ERR_NOT_FOUND, "connection '%s' is gone", id);
}

int ws_hub_post(ws_hub *h, const char *api_id, const char *id, const void *data, size_t n,
                err *e)
{
  if (n > GATEWAY_WS_MAX_MESSAGE)
    return err_set(e, ERR_ENTITY_TOO_LARGE, "the message is larger than %u bytes",
                   GATEWAY_WS_MAX_MESSAGE);
  pthread_mutex_lock(&h->mu);
  wsconn *c = find(h, api_id, id);
  int rc = 0;
  if (c == NULL || c->want_close || c->close_sent) {
    rc = gone(id, e);
  } else {
    bool text = utf8_valid(data, n);
    size_t before = c->out.len;
    if (ws_frame_append(&c->out, text ? WS_OP_TEXT : WS_OP_BINARY, data, n) != 0) {
      c->out.len = before;
      rc = err_set(e, ERR_LIMIT_EXCEEDED, "connection '%s' has too much unread data", id);
    }
  }
  pthread_mutex_unlock(&h->mu);
  if (rc == 0)
    wake(h);
  return rc;
}

int ws_hub_describe(ws_hub *h, const char *api_id, const char *id, json_t **out, err *e)
{
  pthread_mutex_lock(&h->mu);
  wsconn *c = find(h, api_id, id);
  if (c == NULL) {
    pthread_mutex_unlock(&h->mu);
    return gone(id, e);
  }
  char at[25];
  char last[25];
  time_format_iso8601_ms(c->info.connected_at_ms, at);
  time_format_iso8601_ms(c->last_active_ms, last);
  *out = json_pack("{s:s, s:{s:s, s:s}, s:s}", "connectedAt", at, "identity", "sourceIp",
                   c->info.source_ip, "userAgent", c->info.user_agent, "lastActiveAt", last);
  pthread_mutex_unlock(&h->mu);
  return 0;
}

int ws_hub_disconnect(ws_hub *h, const char *api_id, const char *id, err *e)
{
  pthread_mutex_lock(&h->mu);
  wsconn *c = find(h, api_id, id);
  if (c != NULL && !c->want_close) {
    c->want_close = true;
    c->close_code = WS_CLOSE_NORMAL;
    c->close_reason = "";
  }
  pthread_mutex_unlock(&h->mu);
  if (c == NULL)
    return gone(id, e);
  wake(h);
  return 0;
}

/* ---- the hub thread ---- */

/* Handles what the reader has (hub thread; takes h->mu for output). */
static void process(ws_hub *h, wsconn *c)
{
  for (;;) {
    ws_item it;
    ws_reader_next(&c->rd, &it);
    if (it.type == WS_NEED_MORE)
      return;
    int64_t now = time_mono_ms();
    switch (it.type) {
    case WS_MESSAGE:
      pthread_mutex_lock(&h->mu);
      c->last_active_mono = now;
      c->last_active_ms = time_now_ms();
      bool closing = c->close_sent || c->want_close;
      pthread_mutex_unlock(&h->mu);
      if (!closing)
        dispatch(h, c, it.data, it.len, it.binary);
      break;
    case WS_PING:
      pthread_mutex_lock(&h->mu);
      c->last_active_mono = now;
      size_t before = c->out.len;
      if (ws_frame_append(&c->out, WS_OP_PONG, it.data, it.len) != 0)
        c->out.len = before; /* no room: the pong is dropped, never half-written (4) */
      pthread_mutex_unlock(&h->mu);
      break;
    case WS_PONG:
      break;
    case WS_CLOSE:
    case WS_ERROR:
      pthread_mutex_lock(&h->mu);
      if (!c->close_sent) {
        int code = it.type == WS_ERROR ? it.code : it.code == 1005 ? WS_CLOSE_NORMAL : it.code;
        buf_reset(&c->out); /* nothing after a close */
        ws_close_append(&c->out, code, it.type == WS_ERROR ? it.reason : "");
        c->close_sent = true;
        c->state = CLOSING;
      }
      c->close_code = it.type == WS_ERROR ? it.code : it.code;
      c->close_reason = it.type == WS_ERROR ? it.reason : "";
      pthread_mutex_unlock(&h->mu);
      return;
    default:
      return;
    }
  }
}

/* Reads what the socket has (hub thread). */
static void read_conn(ws_hub *h, wsconn *c)
{
  for (;;) {
    size_t room;
    uint8_t *to = ws_reader_space(&c->rd, &room);
    if (room == 0) {
      process(h, c);
      to = ws_reader_space(&c->rd, &room);
      if (room == 0)
        return;
    }
    ssize_t n = read(c->fd, to, room);
    if (n > 0) {
      ws_reader_wrote(&c->rd, (size_t)n);
      process(h, c);
      if (c->rd.failed)
        return;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    /* end-of-file (the client left, or the server stops: it shuts the
       socket down for reading) or a broken connection: a last close frame,
       best effort, for a client that still listens */
    pthread_mutex_lock(&h->mu);
    if (!c->close_sent) {
      c->close_code = 1006;
      c->close_reason = "Connection closed abnormally";
    }
    if (!c->close_sent && c->out.len == 0) { /* never inside a half-sent frame */
      buf bye;
      buf_init(&bye, 256);
      ws_close_append(&bye, WS_CLOSE_GOING_AWAY, "Going away");
      ssize_t w = write(c->fd, bye.data, bye.len);
      (void)w;
      buf_release(&bye);
    }
    c->dead = true;
    pthread_mutex_unlock(&h->mu);
    return;
  }
}

/* Writes queued output (hub thread, h->mu held). */
static void flush_conn(ws_hub *h, wsconn *c)
{
  while (c->out.len > 0 && !c->dead) {
    ssize_t n = write(c->fd, c->out.data, c->out.len);
    if (n > 0) {
      memmove(c->out.data, c->out.data + n, c->out.len - (size_t)n);
      c->out.len -= (size_t)n;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      break;
    c->dead = true;
  }
  bool want_out = c->out.len > 0 && !c->dead;
  if (want_out != c->epoll_out && !c->dead) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want_out ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->epoll_out = want_out;
  }
  if (c->state == CLOSING && c->out.len == 0)
    c->dead = true;
}

/* Ends c (out of the list already): the socket goes back, $disconnect
 * runs (2). */
static void finish(ws_hub *h, wsconn *c)
{
  if (c->u != NULL) {
    epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
    http_upgrade_close(c->u);
    json_t *doc = gateway_api_snapshot(h->g, c->info.api_id);
    arena *a = arena_new();
    const char *function = doc ? gateway_ws_route(doc, "$disconnect", a, NULL) : NULL;
    if (function != NULL && *function != '\0') {
      char rid[37];
      request_id_new(rid);
      gateway_request q = {.headers = c->headers, .nheaders = c->nheaders};
      json_t *ev = gateway_ws_event(&c->info, "DISCONNECT", "$disconnect", rid, &q, NULL, 0,
                                    false, c->close_code ? c->close_code : WS_CLOSE_NORMAL,
                                    c->close_reason);
      invoke(h, function, ev, c, rid, false, false);
    }
    arena_free(a);
    json_decref(doc);
  }
  ws_reader_release(&c->rd);
  buf_release(&c->out);
  json_decref((json_t *)c->info.authorizer);
  arena_free(c->a);
  free(c);
}

static void *hub_main(void *arg)
{
  ws_hub *h = arg;
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(h->ep, evs, 64, 1000);
    for (int i = 0; i < n; i++) {
      wsconn *c = evs[i].data.ptr;
      if (c == NULL) {
        uint64_t v;
        ssize_t r = read(h->wake_fd, &v, sizeof v);
        (void)r;
        continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
        read_conn(h, c);
    }
    int64_t now = time_mono_ms();
    bool stopping = atomic_load(&h->stopping);
    wsconn *ended = NULL;
    /* frames queued by others, close requests, limits; then the dead */
    pthread_mutex_lock(&h->mu);
    for (wsconn *c = h->conns; c != NULL; c = c->next) {
      if (c->state == EXPECTED) {
        if (now - c->expected_at > EXPECT_MS || stopping)
          c->dead = true;
        continue;
      }
      if (c->has_extra) {
        c->has_extra = false;
        pthread_mutex_unlock(&h->mu);
        process(h, c);
        pthread_mutex_lock(&h->mu);
      }
      if (stopping) { /* the server shut every socket down already */
        c->dead = true;
        continue;
      }
      if (!c->want_close && !c->close_sent) {
        if (now - c->last_active_mono > GATEWAY_WS_IDLE_MS ||
            now - c->opened_at > GATEWAY_WS_MAX_AGE_MS) {
          c->want_close = true;
          c->close_code = WS_CLOSE_GOING_AWAY;
          c->close_reason = "Going away";
        }
      }
      if (c->want_close && !c->close_sent) {
        size_t before = c->out.len;
        if (ws_close_append(&c->out, c->close_code, c->close_reason) != 0) {
          c->out.len = before; /* a client that reads nothing: let it go */
          c->dead = true;
        }
        c->close_sent = true;
        c->state = CLOSING;
      }
      flush_conn(h, c);
    }
    for (wsconn **pp = &h->conns; *pp != NULL;) {
      wsconn *c = *pp;
      if (!c->dead) {
        pp = &c->next;
        continue;
      }
      *pp = c->next;
      h->nconns--;
      c->next = ended;
      ended = c;
    }
    bool done = stopping && h->conns == NULL;
    pthread_mutex_unlock(&h->mu);
    while (ended != NULL) {
      wsconn *c = ended;
      ended = c->next;
      finish(h, c);
    }
    if (done)
      return NULL;
  }
}

ws_hub *ws_hub_new(gateway *g, fn_system *fn)
{
  ws_hub *h = xcalloc(1, sizeof *h);
  h->g = g;
  h->fn = fn;
  pthread_mutex_init(&h->mu, NULL);
  atomic_init(&h->refs, 1);
  h->ep = epoll_create1(EPOLL_CLOEXEC);
  h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (h->ep < 0 || h->wake_fd < 0)
    abort();
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(h->ep, EPOLL_CTL_ADD, h->wake_fd, &ev);
  h->started = pthread_create(&h->thread, NULL, hub_main, h) == 0;
  return h;
}

ws_hub *ws_hub_free(ws_hub *h)
{
  if (h == NULL)
    return NULL;
  atomic_store(&h->stopping, true);
  wake(h);
  if (h->started)
    pthread_join(h->thread, NULL);
  /* the thread ended every connection; what is left (never started) */
  while (h->conns != NULL) {
    wsconn *c = h->conns;
    h->conns = c->next;
    c->u = NULL;
    finish(h, c);
  }
  hub_unref(h); /* the last job's done frees it (3) */
  return NULL;
}
