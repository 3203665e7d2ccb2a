/* events/config.c -- bucket notification configurations: S3's checks, the
 * stored JSON form, and the rule matcher.
 *
 * Why: S3 refuses a configuration whose rules could both fire for one
 * event (same event type, overlapping key filters) and one naming an event
 * type it does not know; tarn must refuse the same ones with the same
 * words, and then match every change against the rules exactly as S3 does.
 *
 * Invariants:
 *   (1) A stored configuration passed events_config_check.
 *   (2) Matching is byte-wise on the object key (no normalisation), as S3.
 *
 * Start reading at events_rule_match().
 */
#include "events/internal.h"

#include "base/mem.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Every event type S3 accepts in a configuration. tarn produces the
 * ObjectCreated and ObjectRemoved ones; the rest are accepted and kept. */
static const char *const known_events[] = {
  "s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Post",
  "s3:ObjectCreated:Copy", "s3:ObjectCreated:CompleteMultipartUpload",
  "s3:ObjectRemoved:*", "s3:ObjectRemoved:Delete", "s3:ObjectRemoved:DeleteMarkerCreated",
  "s3:ObjectRestore:*", "s3:ObjectRestore:Post", "s3:ObjectRestore:Completed",
  "s3:ObjectRestore:Delete", "s3:ReducedRedundancyLostObject",
  "s3:Replication:*", "s3:Replication:OperationFailedReplication",
  "s3:Replication:OperationMissedThreshold",
  "s3:Replication:OperationReplicatedAfterThreshold", "s3:Replication:OperationNotTracked",
  "s3:LifecycleExpiration:*", "s3:LifecycleExpiration:Delete",
  "s3:LifecycleExpiration:DeleteMarkerCreated", "s3:LifecycleTransition",
  "s3:IntelligentTiering", "s3:ObjectTagging:*", "s3:ObjectTagging:Put",
  "s3:ObjectTagging:Delete", "s3:ObjectAcl:Put",
};

static bool event_known(const char *ev)
{
  for (size_t i = 0; i < sizeof known_events / sizeof known_events[0]; i++)
    if (strcmp(known_events[i], ev) == 0)
      return true;
  return false;
}

/* "s3:ObjectCreated:*" -> its family length ("s3:ObjectCreated:"), else 0. */
static size_t wildcard_family(const char *ev)
{
  size_t n = strlen(ev);
  if (n >= 2 && ev[n - 1] == '*' && ev[n - 2] == ':')
    return n - 1;
  return 0;
}

/* Two configured event types that can name the same event. */
static bool events_overlap(const char *a, const char *b)
{
  if (strcmp(a, b) == 0)
    return true;
  size_t fa = wildcard_family(a);
  size_t fb = wildcard_family(b);
  if (fa != 0 && strncmp(a, b, fa) == 0)
    return true;
  if (fb != 0 && strncmp(a, b, fb) == 0)
    return true;
  return false;
}

static bool prefixes_overlap(const char *a, const char *b)
{
  if (a == NULL || b == NULL || *a == '\0' || *b == '\0')
    return true;
  return str_starts(a, b) || str_starts(b, a);
}

static bool suffixes_overlap(const char *a, const char *b)
{
  if (a == NULL || b == NULL || *a == '\0' || *b == '\0')
    return true;
  return str_ends(a, b) || str_ends(b, a);
}

bool events_rule_match(const events_rule *r, const char *event_name, const char *key)
{
  if (r->prefix != NULL && !str_starts(key, r->prefix))
    return false;
  if (r->suffix != NULL && !str_ends(key, r->suffix))
    return false;
  for (size_t i = 0; i < r->nevents; i++) {
    const char *ev = r->events[i];
    if (!str_starts(ev, "s3:"))
      continue;
    ev += 3;
    size_t fam = wildcard_family(ev);
    if (fam != 0 ? strncmp(ev, event_name, fam) == 0 : strcmp(ev, event_name) == 0)
      return true;
  }
  return false;
}

int events_config_check(const events_config *c, err *e)
{
  if (c->nrules > EVENTS_MAX_RULES)
    return err_set(e, ERR_INVALID, "a bucket can have at most %d notification configurations",
                   EVENTS_MAX_RULES);
  for (size_t i = 0; i < c->nrules; i++) {
    const events_rule *r = &c->rules[i];
    if (r->arn == NULL || r->arn[0] == '\0')
      return err_set(e, ERR_MALFORMED_XML, "a notification configuration must name its "
                                           "destination");
    if (r->nevents == 0)
      return err_set(e, ERR_MALFORMED_XML, "a notification configuration must name at least "
                                           "one event");
    if (r->nevents > EVENTS_MAX_RULE_EVENTS)
      return err_set(e, ERR_INVALID, "a notification configuration can name at most %d events",
                     EVENTS_MAX_RULE_EVENTS);
    for (size_t k = 0; k < r->nevents; k++)
      if (!event_known(r->events[k]))
        return err_set(e, ERR_INVALID, "The event is not supported for notifications");
    if (r->id != NULL && strlen(r->id) > 1024)
      return err_set(e, ERR_INVALID, "the notification configuration Id is too long");
    if ((r->prefix != NULL && strlen(r->prefix) > STORE_MAX_KEY) ||
        (r->suffix != NULL && strlen(r->suffix) > STORE_MAX_KEY))
      return err_set(e, ERR_INVALID, "the filter rule value is too long");
  }
  for (size_t i = 0; i < c->nrules; i++) {
    for (size_t j = i + 1; j < c->nrules; j++) {
      const events_rule *a = &c->rules[i];
      const events_rule *b = &c->rules[j];
      if (a->id != NULL && b->id != NULL && strcmp(a->id, b->id) == 0)
        return err_set(e, ERR_INVALID, "Configuration Id '%s' is used more than once", a->id);
      if (!prefixes_overlap(a->prefix, b->prefix) || !suffixes_overlap(a->suffix, b->suffix))
        continue;
      for (size_t x = 0; x < a->nevents; x++)
        for (size_t y = 0; y < b->nevents; y++)
          if (events_overlap(a->events[x], b->events[y]))
            return err_set(e, ERR_INVALID, "Configurations overlap. Configurations on the same "
                                           "bucket cannot share a common event type.");
    }
  }
  return 0;
}

/* ---- the stored form ---- */

static const char *const target_names[] = {
  [EVENTS_QUEUE] = "queue", [EVENTS_TOPIC] = "topic", [EVENTS_FUNCTION] = "function",
};

char *events_config_to_json(const events_config *c, arena *a)
{
  json_t *rules = json_array();
  for (size_t i = 0; i < c->nrules; i++) {
    const events_rule *r = &c->rules[i];
    json_t *evs = json_array();
    for (size_t k = 0; k < r->nevents; k++)
      json_array_append_new(evs, json_string(r->events[k]));
    json_t *o = json_pack("{s:s?, s:s, s:s, s:o}", "id", r->id, "target",
                          target_names[r->target], "arn", r->arn, "events", evs);
    if (r->prefix != NULL)
      json_object_set_new(o, "prefix", json_string(r->prefix));
    if (r->suffix != NULL)
      json_object_set_new(o, "suffix", json_string(r->suffix));
    json_array_append_new(rules, o);
  }
  json_t *root = json_pack("{s:i, s:o, s:b}", "v", 1, "rules", rules, "eventbridge",
                           c->eventbridge);
  char *text = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  if (text == NULL)
    mem_out_of_memory();
  char *out = arena_strdup(a, text);
  free(text);
  return out;
}

static const char *dup_member(arena *a, json_t *o, const char *name)
{
  const char *s = json_string_value(json_object_get(o, name));
  return s != NULL ? arena_strdup(a, s) : NULL;
}

int events_config_from_json(const char *json, arena *a, events_config *out, err *e)
{
  memset(out, 0, sizeof *out);
  if (json == NULL || *json == '\0')
    return 0;
  json_error_t je;
  json_t *root = json_loads(json, 0, &je);
  json_t *rules = json_object_get(root, "rules");
  if (root == NULL || !json_is_array(rules)) {
    json_decref(root);
    return err_set(e, ERR_INTERNAL, "corrupt notification configuration");
  }
  size_t n = json_array_size(rules);
  out->rules = arena_alloc(a, (n + 1) * sizeof *out->rules);
  out->eventbridge = json_is_true(json_object_get(root, "eventbridge"));
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    json_t *o = json_array_get(rules, i);
    events_rule *r = &out->rules[i];
    const char *t = json_string_value(json_object_get(o, "target"));
    r->target = t == NULL ? 0
                : strcmp(t, "queue") == 0 ? EVENTS_QUEUE
                : strcmp(t, "topic") == 0 ? EVENTS_TOPIC
                : strcmp(t, "function") == 0 ? EVENTS_FUNCTION
                                             : 0;
    r->id = dup_member(a, o, "id");
    r->arn = dup_member(a, o, "arn");
    r->prefix = dup_member(a, o, "prefix");
    r->suffix = dup_member(a, o, "suffix");
    json_t *evs = json_object_get(o, "events");
    r->nevents = json_array_size(evs);
    r->events = arena_alloc(a, (r->nevents + 1) * sizeof *r->events);
    for (size_t k = 0; k < r->nevents; k++) {
      const char *ev = json_string_value(json_array_get(evs, k));
      r->events[k] = arena_strdup(a, ev != NULL ? ev : "");
    }
    if (r->target == 0 || r->arn == NULL)
      rc = err_set(e, ERR_INTERNAL, "corrupt notification configuration");
  }
  out->nrules = rc == 0 ? n : 0;
  json_decref(root);
  return rc;
}
