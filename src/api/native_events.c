/* api/native_events.c -- GET /_tarn/events[?after=N][&follow=1]: the lines
 * of the events part's live log (events/watch.c) as JSON lines.
 *
 * Why: `tarn events` and the demo show what happened (changes, deliveries,
 * mapping batches, asynchronous outcomes) without an AWS API for it.
 *
 * Without follow the answer is the lines kept so far (after N) and ends.
 * With follow it is a chunked stream fed by a thread of its own (one per
 * follower): new lines as they come, an empty line every KEEPALIVE_MS so a
 * client that went away is noticed, and the end when tarn stops.
 *
 * Invariants:
 *   (1) A follower thread touches only its stream (never the request,
 *       which may be gone) and the events part, which outlives it:
 *       native_events_attach(NULL) waits for every follower to end.
 *
 * Start reading at native_events_handle().
 */
#include "api/native_events.h"

#include "base/mem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEPALIVE_MS 10000
#define LINES_MAX (4u << 20)   /* one read's worth of lines */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gone = PTHREAD_COND_INITIALIZER;
static events_system *attached;   /* under lock */
static int followers;             /* follower threads alive, under lock */

void native_events_attach(events_system *ev)
{
  pthread_mutex_lock(&lock);
  attached = ev;
  if (ev == NULL)
    while (followers > 0)
      pthread_cond_wait(&gone, &lock);
  pthread_mutex_unlock(&lock);
}

static events_system *current(void)
{
  pthread_mutex_lock(&lock);
  events_system *ev = attached;
  pthread_mutex_unlock(&lock);
  return ev;
}

int native_events_prepare(http_req *r, err *e)
{
  if (strcmp(r->raw_path, "/_tarn/events") != 0 && strcmp(r->raw_path, "/_tarn/events/") != 0)
    return err_set(e, ERR_NOT_FOUND, "no endpoint '%s'", r->raw_path);
  if (strcmp(r->method, "GET") != 0)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "'%s' answers GET only", r->raw_path);
  const char *after = http_req_param(r, "after");
  if (after != NULL) {
    char *end = NULL;
    strtoull(after, &end, 10);
    if (*after == '\0' || end == NULL || *end != '\0')
      return err_set(e, ERR_INVALID, "after must be a line number, not '%s'", after);
  }
  if (current() == NULL)
    return err_set(e, ERR_UNAVAILABLE, "events are not running");
  return 0;
}

typedef struct follower {
  events_system *ev;
  http_stream *stream;
  uint64_t after;
} follower;

static void *follow_main(void *arg)
{
  follower *f = arg;
  buf b;
  buf_init(&b, LINES_MAX);
  int64_t quiet_ms = 0;
  for (;;) {
    buf_reset(&b);
    err e = {0};
    uint64_t last = f->after;
    int rc = events_watch_read(f->ev, f->after, 256, 1000, &b, &last, &e);
    if (rc != 0)
      break;  /* stopping */
    if (b.len > 0) {
      f->after = last;
      quiet_ms = 0;
      if (http_stream_write(f->stream, b.data, b.len) != 0)
        break;  /* the client went away */
      continue;
    }
    quiet_ms += 1000;
    if (quiet_ms >= KEEPALIVE_MS) {
      quiet_ms = 0;
      if (http_stream_write(f->stream, "\n", 1) != 0)
        break;
    }
  }
  http_stream_end(f->stream, NULL, 0);
  buf_release(&b);
  free(f);
  pthread_mutex_lock(&lock);
  followers--;
  pthread_cond_broadcast(&gone);
  pthread_mutex_unlock(&lock);
  return NULL;
}

void native_events_handle(http_req *r)
{
  events_system *ev = current();
  err e = {0};
  const char *after_s = http_req_param(r, "after");
  uint64_t after = after_s != NULL ? strtoull(after_s, NULL, 10) : 0;
  const char *follow = http_req_param(r, "follow");
  bool streaming = follow != NULL && (strcmp(follow, "1") == 0 || strcmp(follow, "true") == 0);
  http_resp_header(r, "Content-Type", "application/x-ndjson");
  if (ev == NULL) {
    http_resp_status(r, 503);
    buf_puts(&r->resp_body, "{\"error\":\"ServiceUnavailable\",\"message\":\"events are not "
                            "running\"}\n");
    return;
  }
  if (!streaming) {
    uint64_t last = 0;
    if (r->resp_body.max < LINES_MAX)
      r->resp_body.max = LINES_MAX;
    if (events_watch_read(ev, after, 0, 0, &r->resp_body, &last, &e) != 0)
      buf_reset(&r->resp_body);
    http_resp_headerf(r, "x-tarn-events-last", "%llu", (unsigned long long)last);
    return;
  }
  follower *f = xcalloc(1, sizeof *f);
  f->ev = ev;
  f->after = after;
  pthread_mutex_lock(&lock);
  bool ok = attached != NULL;
  if (ok)
    followers++;
  pthread_mutex_unlock(&lock);
  if (!ok) {
    free(f);
    http_resp_status(r, 503);
    return;
  }
  f->stream = http_resp_stream(r);
  pthread_t t;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&at, 256 << 10);
  if (pthread_create(&t, &at, follow_main, f) != 0) {
    http_stream_end(f->stream, NULL, 0);
    free(f);
    pthread_mutex_lock(&lock);
    followers--;
    pthread_cond_broadcast(&gone);
    pthread_mutex_unlock(&lock);
  }
  pthread_attr_destroy(&at);
}
