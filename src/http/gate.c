/* http/gate.c -- the front door: every TCP connection waits here, in one
 * thread, until its first request head is complete and sane.
 *
 * Why: libmicrohttpd gives a connection to one of its worker threads as soon
 * as it is accepted, times connections out only when idle (a header line
 * every few seconds keeps one alive for ever), and answers malformed heads
 * itself, in HTML, or not at all. The gate owns the part of a connection's
 * life where a client can hold resources without having said anything
 * useful: it peeks (MSG_PEEK) at the bytes, so when the head is good the
 * socket goes to libmicrohttpd with nothing consumed.
 *
 * A connection's states (slot.state):
 *   HEAD     accepted, the head not yet complete: on every new segment the
 *            bytes are peeked again; complete and sane -> admitted (the slot
 *            is freed); bad, too big or past its deadline -> rejected;
 *   CLOSING  answered by the gate, write side shut: what the client still
 *            sends is read and dropped until it closes or CLOSE_SECONDS pass
 *            (closing with unread bytes would reset the connection and the
 *            client could lose the answer).
 *
 * Invariants:
 *   (1) A connection spends at most GATE_HEAD_SECONDS in HEAD.
 *   (2) At most GATE_MAX_PENDING connections are in HEAD; when one more
 *       arrives the oldest is answered RequestTimeout, so a flood of slow
 *       clients delays nobody else by more than their own arrival.
 *   (3) A client address other than loopback holds at most
 *       GATE_MAX_PER_ADDRESS connections, in the gate and admitted ones
 *       together (admitted ones are counted until http__gate_release). Loopback
 *       is the machine itself (local tools, the functions' sandboxes): it
 *       is bounded only by (2) and the server's connection limit.
 *   (4) Every connection the gate does not admit gets an answer, written by
 *       the reject callback (the service's error shape), before it closes.
 *
 * Start reading at gate_loop().
 */
#include "http/gate.h"

#include "base/mem.h"
#include "base/text.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SLOTS (2 * GATE_MAX_PENDING)  /* HEAD and CLOSING together */
#define CLOSE_SECONDS 2
#define DRAIN_MAX (256u << 10)
#define ACCEPT_BATCH 64
#define SWEEP_US 250000
#define TAG_LISTEN UINT64_MAX
#define TAG_WAKE (UINT64_MAX - 1)

enum slot_state { SLOT_FREE, SLOT_HEAD, SLOT_CLOSING };

typedef struct slot {
  int fd;
  enum slot_state state;
  bool counted;                    /* holds a count in the address table */
  struct sockaddr_storage addr;    /* the client */
  socklen_t addrlen;
  int64_t opened_us;               /* accept time, for eviction */
  int64_t deadline_us;             /* end of HEAD or of CLOSING */
} slot;

typedef struct addr_count {
  uint8_t key[16];                 /* IPv4 or IPv6 address bytes */
  uint8_t keylen;
  uint32_t n;                      /* open connections */
} addr_count;

struct gate {
  gate_config cfg;
  pthread_t thread;
  int epfd;
  int wakefd;                      /* eventfd: http__gate_stop wakes the loop */
  atomic_bool stopping;
  slot *slots;
  size_t nhead;                    /* slots in HEAD */
  char *peek;                      /* max_head + 1 bytes */
  str_pair headers[GATE_MAX_HEADERS + 1];
  pthread_mutex_t lock;            /* guards counts (http__gate_release is called
                                      from libmicrohttpd's threads) */
  addr_count *counts;              /* addresses with open connections */
  size_t ncounts;
  size_t capcounts;
};

/* ---- connections per address ---- */

static size_t addr_key(const struct sockaddr_storage *sa, uint8_t key[16], bool *loopback)
{
  *loopback = false;
  if (sa->ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    memcpy(key, &in->sin_addr, 4);
    *loopback = key[0] == 127;
    return 4;
  }
  if (sa->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    memcpy(key, &in6->sin6_addr, 16);
    *loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
                (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && key[12] == 127);
    return 16;
  }
  *loopback = true; /* not an IP client */
  return 0;
}

/* Counts one more connection from sa; false when the address is at its limit. */
static bool count_add(gate *g, const struct sockaddr_storage *sa)
{
  uint8_t key[16];
  bool loopback;
  size_t len = addr_key(sa, key, &loopback);
  if (loopback)
    return true;
  bool ok = true;
  pthread_mutex_lock(&g->lock);
  size_t i = 0;
  while (i < g->ncounts && !(g->counts[i].keylen == len && memcmp(g->counts[i].key, key, len) == 0))
    i++;
  if (i == g->ncounts) {
    if (g->ncounts == g->capcounts) {
      g->capcounts = g->capcounts ? 2 * g->capcounts : 64;
      g->counts = xrealloc(g->counts, g->capcounts * sizeof *g->counts);
    }
    memset(&g->counts[i], 0, sizeof g->counts[i]);
    memcpy(g->counts[i].key, key, len);
    g->counts[i].keylen = (uint8_t)len;
    g->ncounts++;
  }
  if (g->counts[i].n >= GATE_MAX_PER_ADDRESS)
    ok = false;
  else
    g->counts[i].n++;
  if (g->counts[i].n == 0)
    g->counts[i] = g->counts[--g->ncounts];
  pthread_mutex_unlock(&g->lock);
  return ok;
}

static void count_remove(gate *g, const struct sockaddr_storage *sa)
{
  uint8_t key[16];
  bool loopback;
  size_t len = addr_key(sa, key, &loopback);
  if (loopback)
    return;
  pthread_mutex_lock(&g->lock);
  for (size_t i = 0; i < g->ncounts; i++) {
    if (g->counts[i].keylen == len && memcmp(g->counts[i].key, key, len) == 0) {
      if (--g->counts[i].n == 0)
        g->counts[i] = g->counts[--g->ncounts];
      break;
    }
  }
  pthread_mutex_unlock(&g->lock);
}

void http__gate_release(gate *g, const struct sockaddr *addr)
{
  struct sockaddr_storage ss = {0};
  if (addr->sa_family == AF_INET)
    memcpy(&ss, addr, sizeof(struct sockaddr_in));
  else if (addr->sa_family == AF_INET6)
    memcpy(&ss, addr, sizeof(struct sockaddr_in6));
  else
    return;
  count_remove(g, &ss);
}

/* ---- checking a head ---- */

static bool is_tchar(unsigned char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The end of the line starting at p (at the '\n'), or NULL. */
static char *line_end(char *p, char *end)
{
  return memchr(p, '\n', (size_t)(end - p));
}

/* Checks the request line p..nl (nl at its '\n'), cutting it into h. */
static int check_request_line(char *p, char *nl, gate_head *h, err *e)
{
  char *stop = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
  char *sp1 = memchr(p, ' ', (size_t)(stop - p));
  if (sp1 == NULL || sp1 == p || sp1 - p > 32)
    return err_set(e, ERR_INVALID_REQUEST, "malformed request line");
  for (char *c = p; c < sp1; c++)
    if (!is_tchar((unsigned char)*c))
      return err_set(e, ERR_INVALID_REQUEST, "malformed request line");
  char *target = sp1 + 1;
  char *sp2 = target;
  while (sp2 < stop && *sp2 != ' ')
    sp2++;
  if (sp2 - target > GATE_MAX_URI_BYTES)
    return err_set(e, ERR_URI_TOO_LONG, "the request target is longer than %d bytes",
                   GATE_MAX_URI_BYTES);
  if (sp2 == stop || sp2 == target || stop - (sp2 + 1) != 8 ||
      memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
    return err_set(e, ERR_INVALID_REQUEST, "malformed request line");
  size_t params = 0;
  bool in_query = false;
  for (char *c = target; c < sp2; c++) {
    unsigned char u = (unsigned char)*c;
    if (u <= 0x20 || u == 0x7f)
      return err_set(e, ERR_INVALID_REQUEST, "malformed request line");
    if (u == '?' && !in_query) {
      in_query = true;
      if (c + 1 < sp2 && c[1] != '&')
        params++;
    } else if (u == '&' && in_query && c + 1 < sp2 && c[1] != '&') {
      params++;
    }
  }
  if (params > GATE_MAX_QUERY_PARAMS)
    return err_set(e, ERR_INVALID, "the request has more than %d query parameters",
                   GATE_MAX_QUERY_PARAMS);
  *sp1 = '\0';
  *sp2 = '\0';
  h->method = p;
  h->target = target;
  return 0;
}

/* Checks a complete head p..end (end after the empty line) and cuts it into
 * h: header syntax, their number, Content-Length and Transfer-Encoding. */
static int check_head(char *p, char *end, gate_head *h, str_pair *headers, err *e)
{
  char *nl = line_end(p, end);
  int rc = check_request_line(p, nl, h, e);
  if (rc != 0)
    return rc;
  const char *length = NULL;
  const char *coding = NULL;
  h->headers = headers;
  for (char *line = nl + 1; line < end; line = nl + 1) {
    nl = line_end(line, end);
    char *stop = nl > line && nl[-1] == '\r' ? nl - 1 : nl;
    if (stop == line)
      break; /* the empty line */
    if (h->nheaders == GATE_MAX_HEADERS)
      return err_set(e, ERR_HEADERS_TOO_LARGE, "the request has more than %d headers",
                     GATE_MAX_HEADERS);
    char *colon = line;
    while (colon < stop && is_tchar((unsigned char)*colon))
      colon++;
    if (colon == line || colon == stop || *colon != ':')
      return err_set(e, ERR_INVALID_REQUEST, "malformed header line");
    char *v = colon + 1;
    while (v < stop && (*v == ' ' || *v == '\t'))
      v++;
    char *vend = stop;
    while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
      vend--;
    for (char *c = v; c < vend; c++)
      if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
        return err_set(e, ERR_INVALID_REQUEST, "malformed header line");
    *colon = '\0';
    *vend = '\0';
    headers[h->nheaders].name = line;
    headers[h->nheaders].value = v;
    h->nheaders++;
    if (str_ieq(line, "content-length")) {
      size_t n = strlen(v);
      if (n == 0 || n > 18 || strspn(v, "0123456789") != n)
        return err_set(e, ERR_INVALID, "invalid Content-Length '%.40s'", v);
      if (length != NULL && strcmp(length, v) != 0)
        return err_set(e, ERR_INVALID, "conflicting Content-Length headers");
      length = v;
    } else if (str_ieq(line, "transfer-encoding")) {
      if (coding != NULL || !str_ieq(v, "chunked"))
        return err_set(e, ERR_NOT_IMPLEMENTED,
                       "a header you provided implies functionality that is not implemented: "
                       "Transfer-Encoding '%.40s'", v);
      coding = v;
    }
  }
  if (length != NULL && coding != NULL)
    return err_set(e, ERR_INVALID, "a request cannot have both Content-Length and "
                                   "Transfer-Encoding");
  return 0;
}

int http__gate_head_check(char *p, size_t n, size_t max_head, gate_head *h, str_pair *headers,
                    err *e)
{
  char *end = p + n;
  char *head_end = NULL;
  for (char *nl = line_end(p, end); nl != NULL; nl = line_end(nl + 1, end)) {
    char *next = nl + 1;
    if (next < end && *next == '\n') {
      head_end = next + 1;
      break;
    }
    if (next + 1 < end && next[0] == '\r' && next[1] == '\n') {
      head_end = next + 2;
      break;
    }
  }
  if (head_end == NULL) {
    char *nl = line_end(p, end);
    int rc;
    if (nl != NULL && (rc = check_request_line(p, nl, h, e)) != 0)
      return rc; /* a bad request line is answered at once */
    if (nl == NULL && n > GATE_MAX_URI_BYTES + 64)
      return err_set(e, ERR_URI_TOO_LONG, "the request target is longer than %d bytes",
                     GATE_MAX_URI_BYTES);
    if (n > max_head)
      return err_set(e, ERR_HEADERS_TOO_LARGE,
                     "your request header section exceeds the maximum allowed size (%zu bytes)",
                     max_head);
    return GATE_HEAD_MORE;
  }
  if ((size_t)(head_end - p) > max_head)
    return err_set(e, ERR_HEADERS_TOO_LARGE,
                   "your request header section exceeds the maximum allowed size (%zu bytes)",
                   max_head);
  return check_head(p, head_end, h, headers, e);
}

/* ---- the loop ---- */

static void slot_close(gate *g, slot *s)
{
  if (s->state == SLOT_HEAD)
    g->nhead--;
  if (s->counted)
    count_remove(g, &s->addr);
  close(s->fd); /* also leaves the epoll set */
  s->state = SLOT_FREE;
  s->counted = false;
  s->fd = -1;
}

/* Reads and drops what a CLOSING slot's client sent; at most DRAIN_MAX
 * bytes a call, so a client sending fast cannot hold the gate's thread
 * (its next segment brings another call, and CLOSE_SECONDS ends it). */
static void slot_drain(gate *g, slot *s)
{
  char scratch[16384];
  for (size_t total = 0; total < DRAIN_MAX;) {
    ssize_t n = recv(s->fd, scratch, sizeof scratch, MSG_DONTWAIT);
    if (n > 0) {
      total += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    slot_close(g, s);
    return;
  }
}

/* Answers a connection the gate will not admit, then lets it drain. */
static void slot_reject(gate *g, slot *s, const gate_head *h, const err *e)
{
  buf out;
  buf_init(&out, 64u << 10);
  g->cfg.reject(g->cfg.ctx, h, e->code, e->msg, &out);
  if (out.len > 0) /* a failure means the client is gone: nothing to tell it */
    (void)!send(s->fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
  buf_release(&out);
  shutdown(s->fd, SHUT_WR);
  if (s->state == SLOT_HEAD)
    g->nhead--;
  if (s->counted)
    count_remove(g, &s->addr);
  s->counted = false;
  s->state = SLOT_CLOSING;
  s->deadline_us = time_mono_us() + CLOSE_SECONDS * 1000000LL;
  slot_drain(g, s); /* the head that was only peeked at, and whatever followed */
}

static void slot_timeout(gate *g, slot *s)
{
  err e = {0};
  err_set(&e, ERR_REQUEST_TIMEOUT, "your socket connection to the server was not read from or "
                                   "written to within the timeout period");
  gate_head h = {0};
  slot_reject(g, s, &h, &e);
}

/* A HEAD slot got bytes (or its client closed: hup): peek at the head. */
static void slot_read(gate *g, slot *s, bool hup)
{
  size_t max = g->cfg.max_head;
  ssize_t n = recv(s->fd, g->peek, max + 1, MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    slot_close(g, s);
    return;
  }
  gate_head h = {0};
  err e = {0};
  int rc = http__gate_head_check(g->peek, (size_t)n, max, &h, g->headers, &e);
  if (rc == GATE_HEAD_MORE && hup) {
    slot_close(g, s); /* it will never be complete: the client stopped sending */
    return;
  }
  if (rc == GATE_HEAD_MORE)
    return;
  if (rc != 0) {
    slot_reject(g, s, &h, &e);
    return;
  }
  /* admitted: the socket leaves the gate with its bytes unread */
  int fd = s->fd;
  epoll_ctl(g->epfd, EPOLL_CTL_DEL, fd, NULL);
  g->nhead--;
  s->state = SLOT_FREE;
  s->fd = -1;
  bool counted = s->counted;
  s->counted = false;
  if (g->cfg.admit(g->cfg.ctx, fd, (struct sockaddr *)&s->addr, s->addrlen) != 0 && counted)
    count_remove(g, &s->addr);
}


static slot *slot_free_one(gate *g)
{
  for (size_t i = 0; i < SLOTS; i++)
    if (g->slots[i].state == SLOT_FREE)
      return &g->slots[i];
  return NULL;
}

/* Accepts what waits, up to ACCEPT_BATCH at a time (the listening socket
 * is level-triggered: the rest comes on the next turn, after the slots'
 * own events). */
static void gate_accept(gate *g)
{
  for (int batch = 0; batch < ACCEPT_BATCH; batch++) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    int fd = accept4(g->cfg.listen_fd, (struct sockaddr *)&addr, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      return; /* EAGAIN, or out of descriptors: the backlog waits */
    }
    if (g->nhead >= GATE_MAX_PENDING) {
      slot *oldest = NULL;
      for (size_t i = 0; i < SLOTS; i++)
        if (g->slots[i].state == SLOT_HEAD &&
            (oldest == NULL || g->slots[i].opened_us < oldest->opened_us))
          oldest = &g->slots[i];
      if (oldest != NULL)
        slot_timeout(g, oldest);
    }
    slot *s = slot_free_one(g);
    if (s == NULL) { /* every slot is closing: drop the oldest of those */
      for (size_t i = 0; i < SLOTS; i++)
        if (g->slots[i].state == SLOT_CLOSING &&
            (s == NULL || g->slots[i].deadline_us < s->deadline_us))
          s = &g->slots[i];
      if (s == NULL) {
        close(fd);
        continue;
      }
      slot_close(g, s);
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)(s - g->slots)};
    if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    int64_t now = time_mono_us();
    s->fd = fd;
    s->addr = addr;
    s->addrlen = len;
    s->opened_us = now;
    s->deadline_us = now + GATE_HEAD_SECONDS * 1000000LL;
    s->state = SLOT_HEAD;
    g->nhead++;
    s->counted = count_add(g, &addr);
    if (!s->counted) {
      err e = {0};
      err_set(&e, ERR_TOO_MANY_REQUESTS, "too many connections from this address (at most %d)",
              GATE_MAX_PER_ADDRESS);
      slot_reject(g, s, &(gate_head){0}, &e);
    }
  }
}

static void gate_sweep(gate *g, int64_t now)
{
  for (size_t i = 0; i < SLOTS; i++) {
    slot *s = &g->slots[i];
    if (s->state == SLOT_HEAD && now >= s->deadline_us)
      slot_timeout(g, s);
    else if (s->state == SLOT_CLOSING && now >= s->deadline_us)
      slot_close(g, s);
  }
}

static void *gate_loop(void *arg)
{
  gate *g = arg;
  struct epoll_event evs[256];
  int64_t next_sweep = time_mono_us() + SWEEP_US;
  while (!atomic_load(&g->stopping)) {
    int n = epoll_wait(g->epfd, evs, 256, SWEEP_US / 1000);
    for (int i = 0; i < n; i++) {
      uint64_t tag = evs[i].data.u64;
      if (tag == TAG_LISTEN) {
        gate_accept(g);
      } else if (tag == TAG_WAKE) {
        continue;
      } else {
        slot *s = &g->slots[tag];
        if (s->state == SLOT_HEAD)
          slot_read(g, s, (evs[i].events & (EPOLLRDHUP | EPOLLHUP)) != 0);
        else if (s->state == SLOT_CLOSING)
          slot_drain(g, s);
      }
    }
    int64_t now = time_mono_us();
    if (now >= next_sweep) {
      gate_sweep(g, now);
      if (g->cfg.sweep != NULL)
        g->cfg.sweep(g->cfg.ctx, now);
      next_sweep = now + SWEEP_US;
    }
  }
  return NULL;
}

int http__gate_start(const gate_config *cfg, gate **out, err *e)
{
  gate *g = xcalloc(1, sizeof *g);
  g->cfg = *cfg;
  g->slots = xcalloc(SLOTS, sizeof *g->slots);
  g->peek = xmalloc(cfg->max_head + 1);
  for (size_t i = 0; i < SLOTS; i++)
    g->slots[i].fd = -1;
  pthread_mutex_init(&g->lock, NULL);
  g->epfd = epoll_create1(EPOLL_CLOEXEC);
  g->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
  struct epoll_event wev = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
  if (g->epfd < 0 || g->wakefd < 0 ||
      epoll_ctl(g->epfd, EPOLL_CTL_ADD, cfg->listen_fd, &lev) != 0 ||
      epoll_ctl(g->epfd, EPOLL_CTL_ADD, g->wakefd, &wev) != 0 ||
      pthread_create(&g->thread, NULL, gate_loop, g) != 0) {
    int saved = errno;
    if (g->epfd >= 0)
      close(g->epfd);
    if (g->wakefd >= 0)
      close(g->wakefd);
    pthread_mutex_destroy(&g->lock);
    free(g->slots);
    free(g->peek);
    free(g);
    return err_set(e, ERR_IO, "cannot start the connection gate: %s", strerror(saved));
  }
  *out = g;
  return 0;
}

void http__gate_stop(gate *g)
{
  if (g == NULL)
    return;
  atomic_store(&g->stopping, true);
  uint64_t one = 1;
  /* a failed write still stops the loop, within SWEEP_US */
  (void)!write(g->wakefd, &one, sizeof one);
  pthread_join(g->thread, NULL);
  for (size_t i = 0; i < SLOTS; i++)
    if (g->slots[i].state != SLOT_FREE)
      slot_close(g, &g->slots[i]);
  close(g->cfg.listen_fd);
  close(g->epfd);
  close(g->wakefd);
}

gate *http__gate_free(gate *g)
{
  if (g == NULL)
    return NULL;
  pthread_mutex_destroy(&g->lock);
  free(g->counts);
  free(g->slots);
  free(g->peek);
  free(g);
  return NULL;
}
