/* events/dispatch.c -- the dispatcher: reads the store's change feed,
 * matches each change against its bucket's rules, delivers the S3 event
 * message to every matching queue, topic or function, then trims the feed.
 *
 * Why one thread, in feed order: deliveries of one bucket keep the order of
 * the changes (what S3 users expect most of the time), and the feed needs
 * one reader to be trimmed safely. Deliveries are local commits (a queue
 * send, a topic publish, an Event queued by fn), so one thread keeps up.
 *
 * Invariants:
 *   (1) An entry is trimmed only after every rule that matched it was
 *       delivered or given up (its target does not exist). A crash before
 *       the trim delivers it again: at least once, never skipped.
 *   (2) A delivery that fails for any other reason is retried, with the
 *       delay doubling from retry_base_ms up to a minute, and the entries
 *       after it wait (the feed is ordered).
 *   (3) No lock is held while calling the store, the queue part or fn
 *       (the store calls events__feed_kick under its own lock).
 *
 * States of an entry: in the feed -> delivered to each matching rule (in
 * memory) -> trimmed.
 *
 * Start reading at dispatcher_main().
 */
#include "events/internal.h"
#include "base/text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE_RESCAN_MS 1000   /* look at the feed at least this often */

void events__feed_kick(void *ctx)
{
  events_system *ev = ctx;
  pthread_mutex_lock(&ev->mu);
  ev->kicked = true;
  pthread_cond_signal(&ev->wake);
  pthread_mutex_unlock(&ev->mu);
}

/* Waits up to ms on the dispatcher's condition; true when stopping. */
static bool wait_ms(events_system *ev, int64_t ms, bool until_kicked)
{
  struct timespec ts = time_deadline(CLOCK_MONOTONIC, ms);
  pthread_mutex_lock(&ev->mu);
  while (!ev->stopping && !(until_kicked && ev->kicked))
    if (pthread_cond_timedwait(&ev->wake, &ev->mu, &ts) != 0)
      break;
  if (until_kicked)
    ev->kicked = false;
  bool stopping = ev->stopping;
  pthread_mutex_unlock(&ev->mu);
  return stopping;
}

static void count(events_system *ev, uint64_t *counter)
{
  pthread_mutex_lock(&ev->mu);
  (*counter)++;
  pthread_mutex_unlock(&ev->mu);
}

/* ---- targets ---- */

bool events__target_exists(events_system *ev, enum events_target kind, const char *arn)
{
  arena *a = arena_new();
  err e = { 0 };
  bool ok = false;
  if (kind == EVENTS_QUEUE && ev->q != NULL && str_starts(arn, "arn:aws:sqs:")) {
    queue_info qi;
    ok = queue_lookup(ev->q, arn, a, &qi, &e) == 0;
  } else if (kind == EVENTS_TOPIC && ev->q != NULL && str_starts(arn, "arn:aws:sns:")) {
    queue_topic_info ti;
    ok = queue_topic_lookup(ev->q, arn, a, &ti, &e) == 0;
  } else if (kind == EVENTS_FUNCTION && ev->fn != NULL && str_starts(arn, "arn:aws:lambda:")) {
    const char *name = NULL;
    const char *qual = NULL;
    const char *farn = NULL;
    ok = events__function_resolve(ev, arn, NULL, a, &name, &qual, &farn, &e) == 0;
  }
  arena_free(a);
  return ok;
}

int events__deliver(events_system *ev, const char *arn, const char *subject,
                    const char *message, bool *gone, err *e)
{
  *gone = false;
  int rc;
  if (str_starts(arn, "arn:aws:sqs:")) {
    if (ev->q == NULL) {
      *gone = true;
      return err_set(e, ERR_UNAVAILABLE, "queues are not running");
    }
    queue_send m = { .body = message, .body_len = strlen(message), .delay_seconds = -1 };
    queue_sent sent;
    rc = queue_message_send(ev->q, arn, &m, &sent, e);
    *gone = rc == QUEUE_ERR_NO_QUEUE || rc == ERR_INVALID || rc == QUEUE_ERR_CONTENTS ||
            rc == QUEUE_ERR_MISSING;
    return rc;
  }
  if (str_starts(arn, "arn:aws:sns:")) {
    if (ev->q == NULL) {
      *gone = true;
      return err_set(e, ERR_UNAVAILABLE, "topics are not running");
    }
    queue_publish p = { .message = message, .len = strlen(message), .subject = subject };
    char id[QUEUE_ID_MAX];
    char seq[24];
    rc = queue_topic_publish(ev->q, arn, &p, id, seq, e);
    *gone = rc == QUEUE_ERR_NO_TOPIC || rc == ERR_INVALID;
    return rc;
  }
  if (str_starts(arn, "arn:aws:lambda:")) {
    if (ev->fn == NULL) {
      *gone = true;
      return err_set(e, ERR_UNAVAILABLE, "functions are not running");
    }
    arena *a = arena_new();
    fn_invoke_params p = { .name = arn, .type = FN_INVOKE_EVENT, .payload = message,
                           .len = strlen(message) };
    fn_invoke_result res;
    rc = fn_invoke(ev->fn, &p, a, &res, e);
    if (rc == 0)
      buf_release(&res.payload);
    arena_free(a);
    *gone = rc == ERR_NOT_FOUND || rc == ERR_INVALID || rc == ERR_INVALID_REQUEST ||
            rc == ERR_ENTITY_TOO_LARGE;
    return rc;
  }
  *gone = true;
  return err_set(e, ERR_INVALID, "'%s' is not a queue, topic or function ARN", arn);
}

static const char *target_kind(enum events_target t)
{
  return t == EVENTS_QUEUE ? "queue" : t == EVENTS_TOPIC ? "topic" : "function";
}

/* ---- one change ---- */

/* Delivers ch to every matching rule of cfg. Returns false when stopping
 * interrupted it (the entry must stay in the feed). */
static bool dispatch_one(events_system *ev, const store_change *ch, const events_config *cfg,
                         arena *a)
{
  const char *name = store_event_name(ch->event);
  char when[25];
  time_format_iso8601_ms(ch->time_ms, when);
  json_t *line = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "type", "s3", "time", when, "seq",
                           (json_int_t)ch->seq, "event", name, "bucket", ch->bucket, "key",
                           ch->key);
  if (str_starts(name, "ObjectCreated:"))
    json_object_set_new(line, "size", json_integer((json_int_t)ch->size));
  json_t *deliveries = json_array();
  bool finished = true;
  for (size_t i = 0; i < cfg->nrules && finished; i++) {
    const events_rule *r = &cfg->rules[i];
    if (!events_rule_match(r, name, ch->key))
      continue;
    const char *msg = events_s3_message(a, ch, r->id);
    const char *result = NULL;
    for (unsigned attempt = 1;; attempt++) {
      err e = { 0 };
      bool gone = false;
      int rc = events__deliver(ev, r->arn, "Amazon S3 Notification", msg, &gone, &e);
      if (rc == 0) {
        count(ev, &ev->delivered);
        result = "delivered";
        break;
      }
      if (gone) {
        count(ev, &ev->dropped);
        result = arena_sprintf(a, "dropped: %s", e.msg);
        break;
      }
      count(ev, &ev->retried);
      if (wait_ms(ev, events__retry_delay(ev, attempt), false)) {
        finished = false;  /* stopping: the entry stays for the next run */
        break;
      }
    }
    if (result != NULL)
      json_array_append_new(deliveries,
                            json_pack("{s:s?, s:s, s:s, s:s}", "configurationId", r->id,
                                      "target", target_kind(r->target), "arn", r->arn,
                                      "result", result));
  }
  json_object_set_new(line, "deliveries", deliveries);
  if (finished) {
    char *text = json_dumps(line, JSON_COMPACT);
    if (text != NULL)
      events__watch_add(ev, text);
    free(text);
  }
  json_decref(line);
  return finished;
}

/* The configuration of bucket, through a per-batch cache. */
typedef struct cfg_cache {
  const char *bucket;
  events_config cfg;
} cfg_cache;

static const events_config *config_of(events_system *ev, const char *bucket, cfg_cache *cache,
                                      size_t *ncache, arena *a)
{
  for (size_t i = 0; i < *ncache; i++)
    if (strcmp(cache[i].bucket, bucket) == 0)
      return &cache[i].cfg;
  cfg_cache *c = &cache[(*ncache)++];
  c->bucket = bucket;
  memset(&c->cfg, 0, sizeof c->cfg);
  const char *json = NULL;
  err e = { 0 };
  if (store_bucket_notification_get(ev->st, bucket, a, &json, &e) == 0 && json != NULL)
    events_config_from_json(json, a, &c->cfg, &e);
  return &c->cfg;
}

static void *dispatcher_main(void *arg)
{
  events_system *ev = arg;
  uint64_t upto = 0;       /* every entry <= upto is delivered */
  uint64_t trimmed = 0;    /* and every entry <= trimmed is gone from the feed */
  bool more = true;        /* look at once: entries of a previous run */
  for (;;) {
    if (!more && wait_ms(ev, IDLE_RESCAN_MS, true))
      break;
    pthread_mutex_lock(&ev->mu);
    bool stopping = ev->stopping;
    ev->kicked = false;
    pthread_mutex_unlock(&ev->mu);
    if (stopping)
      break;
    arena *a = arena_new();
    store_change *ch = NULL;
    size_t n = 0;
    err e = { 0 };
    more = false;
    if (store_feed_read(ev->st, upto, EVENTS_FEED_BATCH, a, &ch, &n, &e) != 0) {
      arena_free(a);
      if (wait_ms(ev, ev->retry_base_ms, false))
        break;
      continue;
    }
    pthread_mutex_lock(&ev->mu);
    events_observer observer = ev->observer;
    void *observer_ctx = ev->observer_ctx;
    pthread_mutex_unlock(&ev->mu);
    cfg_cache *cache = arena_alloc(a, (n + 1) * sizeof *cache);
    size_t ncache = 0;
    bool interrupted = false;
    for (size_t i = 0; i < n; i++) {
      const events_config *cfg = config_of(ev, ch[i].bucket, cache, &ncache, a);
      if (!dispatch_one(ev, &ch[i], cfg, a)) {
        interrupted = true;
        break;
      }
      if (observer != NULL)
        observer(observer_ctx, &ch[i]);
      upto = ch[i].seq;
    }
    arena_free(a);
    if (upto > trimmed && store_feed_trim(ev->st, upto, &e) == 0)
      trimmed = upto;
    if (interrupted)
      break;
    more = n == EVENTS_FEED_BATCH;
  }
  if (upto > trimmed) {
    err e = { 0 };
    store_feed_trim(ev->st, upto, &e);
  }
  return NULL;
}

void events_observe(events_system *ev, events_observer fn, void *ctx)
{
  if (ev == NULL)
    return;
  pthread_mutex_lock(&ev->mu);
  ev->observer = fn;
  ev->observer_ctx = ctx;
  pthread_mutex_unlock(&ev->mu);
}

int events__dispatcher_start(events_system *ev, err *e)
{
  store_feed_watch(ev->st, events__feed_kick, ev);
  int rc = pthread_create(&ev->dispatcher, NULL, dispatcher_main, ev);
  if (rc != 0) {
    store_feed_watch(ev->st, NULL, NULL);
    return err_set(e, ERR_INTERNAL, "cannot start the event dispatcher: %s", strerror(rc));
  }
  ev->dispatcher_running = true;
  return 0;
}

void events__dispatcher_stop(events_system *ev)
{
  pthread_mutex_lock(&ev->mu);
  ev->stopping = true;
  pthread_cond_broadcast(&ev->wake);
  pthread_mutex_unlock(&ev->mu);
  if (ev->dispatcher_running) {
    pthread_join(ev->dispatcher, NULL);
    ev->dispatcher_running = false;
    store_feed_watch(ev->st, NULL, NULL);
  }
}
