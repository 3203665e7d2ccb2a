/* events/notify.c -- PutBucketNotificationConfiguration and its Get, below
 * the wire format: S3's checks, the destinations' existence, Ids, the
 * store, and the s3:TestEvent message.
 *
 * Why here and not in api/s3_bucket.c: whether a queue, topic or function
 * exists is known only to the parts events delivers into.
 *
 * Invariants:
 *   (1) Nothing is stored unless every check passed (bad input changes
 *       nothing).
 *   (2) Test events go out only after the configuration is stored, and a
 *       failure to send one does not undo it (S3 sends them best effort).
 *
 * Start reading at events_config_put().
 */
#include "events/internal.h"

#include "base/hash.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A configuration Id as S3 makes one when none is given. */
static const char *make_id(arena *a)
{
  uint8_t b[18];
  random_bytes(b, sizeof b);
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  char *id = arena_alloc(a, 37);
  for (size_t i = 0; i < sizeof b; i++) {
    id[2 * i] = alphabet[b[i] % 62];
    id[2 * i + 1] = alphabet[(b[i] / 62 + i) % 62];
  }
  return id;
}

int events_config_put(events_system *ev, const char *bucket, const events_config *c,
                      bool skip_validation, const char *request_id, arena *a, err *e)
{
  int rc = events_config_check(c, e);
  if (rc != 0)
    return rc;
  store_bucket sb;
  rc = store_bucket_get(ev->st, bucket, a, &sb, e);
  if (rc != 0)
    return rc;
  if (!skip_validation) {
    for (size_t i = 0; i < c->nrules; i++) {
      const events_rule *r = &c->rules[i];
      if (!events__target_exists(ev, r->target, r->arn))
        return err_set(e, ERR_INVALID, "Unable to validate the following destination "
                                       "configurations: '%s'", r->arn);
    }
  }
  events_config stored = *c;
  stored.rules = arena_alloc(a, (c->nrules + 1) * sizeof *stored.rules);
  for (size_t i = 0; i < c->nrules; i++) {
    stored.rules[i] = c->rules[i];
    if (stored.rules[i].id == NULL || stored.rules[i].id[0] == '\0')
      stored.rules[i].id = make_id(a);
  }
  const char *json = c->nrules > 0 || c->eventbridge ? events_config_to_json(&stored, a) : NULL;
  rc = store_bucket_notification_set(ev->st, bucket, json, e);
  if (rc != 0)
    return rc;

  /* invariant (2): S3 tells each queue and topic that it is wired */
  const char *msg = events_test_message(a, bucket, request_id, time_now_ms());
  for (size_t i = 0; i < stored.nrules; i++) {
    const events_rule *r = &stored.rules[i];
    if (r->target == EVENTS_FUNCTION)
      continue;
    bool dup = false;
    for (size_t j = 0; j < i && !dup; j++)
      dup = strcmp(stored.rules[j].arn, r->arn) == 0;
    if (dup)
      continue;
    err ignored = { 0 };
    bool gone = false;
    int src = events__deliver(ev, r->arn, "Amazon S3 Notification", msg, &gone, &ignored);
    if (src == 0) {
      pthread_mutex_lock(&ev->mu);
      ev->tests_sent++;
      pthread_mutex_unlock(&ev->mu);
    }
    char when[25];
    time_format_iso8601_ms(time_now_ms(), when);
    json_t *line = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "test", "time", when,
                             "event", "s3:TestEvent", "bucket", bucket, "arn", r->arn, "result",
                             src == 0 ? "delivered" : ignored.msg);
    char *text = json_dumps(line, JSON_COMPACT);
    if (text != NULL)
      events__watch_add(ev, text);
    free(text);
    json_decref(line);
  }
  return 0;
}

int events_config_get(events_system *ev, const char *bucket, arena *a, events_config *out,
                      err *e)
{
  memset(out, 0, sizeof *out);
  const char *json = NULL;
  int rc = store_bucket_notification_get(ev->st, bucket, a, &json, e);
  if (rc != 0 || json == NULL)
    return rc;
  return events_config_from_json(json, a, out, e);
}
