/* store/lifecycle.c -- bucket lifecycle rules: their S3 grammar and checks,
 * which rule expires an object and when, and the background sweep that
 * applies them (store.h, "lifecycle").
 *
 * Why here: the sweep deletes objects and aborts uploads through the
 * store's own delete paths (one durable commit each, with its change-feed
 * entry), so it belongs with them; the rules are the bucket's "lifecycle"
 * configuration document (store_bucket_conf_set), XML as the client sent
 * it, parsed again on each use.
 *
 * Invariants:
 *   (1) Expiration (Days, Date, ExpiredObjectDeleteMarker),
 *       NoncurrentVersionExpiration and AbortIncompleteMultipartUpload act.
 *       Transitions are recorded (tarn has one storage tier). A version
 *       becomes noncurrent when the next newer one was written: its
 *       NoncurrentDays count from that version's time. Versions are removed
 *       by id (store_object_delete_version) after the bucket's listing
 *       was read, so removals never disturb the listing's markers.
 *   (2) Every removal goes through the store's delete (only while the
 *       object is still the one listed: an overwrite in between survives)
 *       with the origin event STORE_EVENT_LIFECYCLE_DELETE
 *       ("LifecycleExpiration:Delete"),
 *       and every abort through store_upload_abort: a sweep killed midway
 *       leaves each object either present or deleted with its event.
 *   (3) With the index in PostgreSQL every node sweeps: a removal is
 *       conditional on the listed object's mtime and commits with its
 *       event, so a second node's removal finds nothing and raises none.
 *   (4) A day is STORE_LIFECYCLE_DAY seconds (86,400 unless
 *       TARN_LIFECYCLE_DAY_SECONDS says otherwise, for tests); with a real
 *       day the expiry is rounded up to the next midnight UTC, as S3 does.
 *
 * Start reading at store_lifecycle_parse().
 */
#include "internal.h"

#include "base/mem.h"
#include "base/xml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LC_MAX_RULES 1000
#define LC_MAX_ID 255
#define LC_DEFAULT_SWEEP 3600   /* seconds between sweeps */

static int malformed(err *e)
{
  return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                 "validate against our published schema");
}

/* A decimal integer in [min, max]. */
static bool parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
  if (s == NULL || *s == '\0')
    return false;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max)
    return false;
  *out = v;
  return true;
}

/* An ISO 8601 date at midnight UTC (S3 refuses any other time). */
static int parse_midnight(const char *s, int64_t *ms, err *e)
{
  if (s == NULL || !time_parse_iso8601(s, ms))
    return err_set(e, ERR_INVALID, "Invalid date: '%.64s'", s ? s : "");
  if (*ms % 86400000 != 0)
    return err_set(e, ERR_INVALID, "'Date' must be at midnight GMT");
  return 0;
}

static int parse_tag(const xml_node *t, arena *a, str_pair *out, err *e)
{
  const char *k = xml_child_text(t, "Key");
  const char *v = xml_child_text(t, "Value");
  if (k == NULL || v == NULL)
    return malformed(e);
  if (strlen(k) > 128 || strlen(v) > 256)
    return err_set(e, ERR_INVALID, "The TagKey or TagValue you have provided is too long");
  out->name = arena_strdup(a, k);
  out->value = arena_strdup(a, v);
  return 0;
}

static int parse_size(const xml_node *n, const char *name, int64_t *out, err *e)
{
  const char *t = xml_child_text(n, name);
  if (t == NULL)
    return 0;
  if (!parse_int(t, 0, INT64_MAX, out))
    return err_set(e, ERR_INVALID, "'%s' must be a non-negative integer", name);
  return 0;
}

/* Filter: one of Prefix, Tag, ObjectSizeGreaterThan, ObjectSizeLessThan,
 * And (which may hold a Prefix, Tags and the sizes); an empty Filter
 * matches every object. */
static int parse_filter(const xml_node *f, arena *a, store_lc_rule *r, err *e)
{
  size_t parts = 0;
  for (const xml_node *c = f->child; c != NULL; c = c->next)
    parts++;
  if (parts > 1)
    return malformed(e);
  const xml_node *and = xml_child(f, "And");
  const xml_node *from = and != NULL ? and : f;
  const char *prefix = xml_child_text(from, "Prefix");
  r->prefix = prefix != NULL ? arena_strdup(a, prefix) : "";
  size_t ntags = 0;
  for (const xml_node *t = xml_child(from, "Tag"); t != NULL; t = xml_next_same(t))
    ntags++;
  if (and == NULL && ntags > 1)
    return malformed(e);
  if (ntags > STORE_MAX_TAGS * 5)
    return malformed(e);
  r->tags = arena_alloc(a, (ntags + 1) * sizeof *r->tags);
  for (const xml_node *t = xml_child(from, "Tag"); t != NULL; t = xml_next_same(t)) {
    int rc = parse_tag(t, a, &r->tags[r->ntags], e);
    if (rc != 0)
      return rc;
    for (size_t i = 0; i < r->ntags; i++)
      if (strcmp(r->tags[i].name, r->tags[r->ntags].name) == 0)
        return err_set(e, ERR_INVALID, "Duplicate Tag Keys are not allowed.");
    r->ntags++;
  }
  int rc = parse_size(from, "ObjectSizeGreaterThan", &r->size_gt, e);
  if (rc == 0)
    rc = parse_size(from, "ObjectSizeLessThan", &r->size_lt, e);
  if (rc != 0)
    return rc;
  if (r->size_gt >= 0 && r->size_lt >= 0 && r->size_lt <= r->size_gt)
    return err_set(e, ERR_INVALID, "ObjectSizeGreaterThan must be less than "
                   "ObjectSizeLessThan");
  return 0;
}

static int parse_expiration(const xml_node *x, store_lc_rule *r, err *e)
{
  const char *days = xml_child_text(x, "Days");
  const char *date = xml_child_text(x, "Date");
  const char *marker = xml_child_text(x, "ExpiredObjectDeleteMarker");
  if ((days != NULL) + (date != NULL) + (marker != NULL) != 1)
    return malformed(e);
  if (days != NULL && !parse_int(days, 1, 1000000, &r->exp_days))
    return err_set(e, ERR_INVALID, "'Days' for Expiration action must be a positive integer");
  if (date != NULL)
    return parse_midnight(date, &r->exp_date_ms, e);
  if (marker != NULL && strcmp(marker, "true") != 0 && strcmp(marker, "false") != 0)
    return malformed(e);
  if (marker != NULL && r->ntags > 0)
    return err_set(e, ERR_INVALID, "ExpiredObjectDeleteMarker cannot be specified with "
                   "object tags");
  r->expired_marker = marker != NULL && strcmp(marker, "true") == 0;
  return 0;
}

static int parse_transition(const xml_node *x, bool noncurrent, err *e)
{
  static const char *const classes[] = {"GLACIER", "STANDARD_IA", "ONEZONE_IA",
                                        "INTELLIGENT_TIERING", "DEEP_ARCHIVE", "GLACIER_IR"};
  const char *sc = xml_child_text(x, "StorageClass");
  if (sc == NULL)
    return malformed(e);
  bool ok = false;
  for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
    ok = ok || strcmp(sc, classes[i]) == 0;
  if (!ok)
    return malformed(e);
  int64_t v;
  const char *days = xml_child_text(x, noncurrent ? "NoncurrentDays" : "Days");
  const char *date = noncurrent ? NULL : xml_child_text(x, "Date");
  if ((days != NULL) + (date != NULL) != 1)
    return malformed(e);
  if (days != NULL && !parse_int(days, 0, 1000000, &v))
    return err_set(e, ERR_INVALID, "'Days' in Transition action must be a non-negative "
                   "integer");
  if (days != NULL && v < 30 && (strcmp(sc, "STANDARD_IA") == 0 || strcmp(sc, "ONEZONE_IA") == 0))
    return err_set(e, ERR_INVALID, "'Days' in Transition action must be greater than or "
                   "equal to 30 for storageClass '%s'", sc);
  if (date != NULL)
    return parse_midnight(date, &v, e);
  return 0;
}

static int parse_rule(const xml_node *x, arena *a, store_lc_rule *r, err *e)
{
  memset(r, 0, sizeof *r);
  r->size_gt = -1;
  r->size_lt = -1;
  const char *id = xml_child_text(x, "ID");
  if (id != NULL && strlen(id) > LC_MAX_ID)
    return err_set(e, ERR_INVALID, "ID length should not exceed allowed limit of %d", LC_MAX_ID);
  r->id = id != NULL ? arena_strdup(a, id) : "";
  const char *status = xml_child_text(x, "Status");
  if (status == NULL || (strcmp(status, "Enabled") != 0 && strcmp(status, "Disabled") != 0))
    return malformed(e);
  r->enabled = strcmp(status, "Enabled") == 0;
  const xml_node *filter = xml_child(x, "Filter");
  const char *prefix = xml_child_text(x, "Prefix");
  if ((filter != NULL) == (prefix != NULL))
    return malformed(e);
  int rc = 0;
  if (filter != NULL) {
    rc = parse_filter(filter, a, r, e);
  } else {
    r->prefix = arena_strdup(a, prefix);
  }
  if (rc != 0)
    return rc;
  bool action = false;
  const xml_node *exp = xml_child(x, "Expiration");
  if (exp != NULL) {
    action = true;
    if ((rc = parse_expiration(exp, r, e)) != 0)
      return rc;
  }
  for (const xml_node *t = xml_child(x, "Transition"); t != NULL; t = xml_next_same(t)) {
    action = true;
    if ((rc = parse_transition(t, false, e)) != 0)
      return rc;
  }
  for (const xml_node *t = xml_child(x, "NoncurrentVersionTransition"); t != NULL;
       t = xml_next_same(t)) {
    action = true;
    if ((rc = parse_transition(t, true, e)) != 0)
      return rc;
  }
  const xml_node *nve = xml_child(x, "NoncurrentVersionExpiration");
  if (nve != NULL) {
    action = true;
    if (!parse_int(xml_child_text(nve, "NoncurrentDays"), 1, 1000000, &r->nc_days))
      return err_set(e, ERR_INVALID, "'NoncurrentDays' for NoncurrentVersionExpiration action "
                     "must be a positive integer");
    const char *keep = xml_child_text(nve, "NewerNoncurrentVersions");
    if (keep != NULL && !parse_int(keep, 1, 100, &r->nc_keep))
      return err_set(e, ERR_INVALID, "'NewerNoncurrentVersions' must be between 1 and 100");
  }
  const xml_node *abort_ = xml_child(x, "AbortIncompleteMultipartUpload");
  if (abort_ != NULL) {
    action = true;
    if (r->ntags > 0)
      return err_set(e, ERR_INVALID_REQUEST, "Tag based filter cannot be used with "
                     "AbortIncompleteMultipartUpload action");
    if (!parse_int(xml_child_text(abort_, "DaysAfterInitiation"), 1, 1000000, &r->abort_days))
      return err_set(e, ERR_INVALID, "'DaysAfterInitiation' for AbortIncompleteMultipartUpload "
                     "action must be a positive integer");
  }
  if (!action)
    return err_set(e, ERR_INVALID_REQUEST, "At least one action needs to be specified in a "
                   "rule");
  return 0;
}

int store_lifecycle_parse(const char *doc, size_t len, arena *a, store_lifecycle *out, err *e)
{
  memset(out, 0, sizeof *out);
  xml_node *root;
  int rc = xml_parse(doc, len, a, &root, e);
  if (rc != 0)
    return rc;
  if (strcmp(root->name, "LifecycleConfiguration") != 0)
    return malformed(e);
  size_t n = 0;
  for (const xml_node *c = root->child; c != NULL; c = c->next) {
    if (strcmp(c->name, "Rule") != 0)
      return malformed(e);
    n++;
  }
  if (n == 0)
    return malformed(e);
  if (n > LC_MAX_RULES)
    return err_set(e, ERR_INVALID_REQUEST, "The number of lifecycle rules must not exceed %d",
                   LC_MAX_RULES);
  out->rules = arena_alloc(a, n * sizeof *out->rules);
  for (const xml_node *c = root->child; c != NULL; c = c->next) {
    store_lc_rule *r = &out->rules[out->nrules];
    if ((rc = parse_rule(c, a, r, e)) != 0)
      return rc;
    for (size_t i = 0; r->id[0] != '\0' && i < out->nrules; i++)
      if (strcmp(out->rules[i].id, r->id) == 0)
        return err_set(e, ERR_INVALID, "Rule ID must be unique. Found same ID for more than "
                       "one rule");
    out->nrules++;
  }
  return 0;
}

/* ---- deciding ---- */

int64_t store_lifecycle_day_ms(void)
{
  uint64_t s = env_u64("TARN_LIFECYCLE_DAY_SECONDS", 86400);
  return (int64_t)(s > 0 ? s : 86400) * 1000;
}

static bool tags_hold(const store_lc_rule *r, const store_object *o)
{
  for (size_t i = 0; i < r->ntags; i++) {
    bool found = false;
    for (size_t j = 0; j < o->ntags && !found; j++)
      found = strcmp(r->tags[i].name, o->tags[j].name) == 0 &&
              strcmp(r->tags[i].value, o->tags[j].value) == 0;
    if (!found)
      return false;
  }
  return true;
}

static bool rule_matches(const store_lc_rule *r, const char *key, const store_object *o)
{
  if (!r->enabled || !str_starts(key, r->prefix))
    return false;
  if (o == NULL)
    return r->ntags == 0;
  if (r->size_gt >= 0 && o->size <= (uint64_t)r->size_gt)
    return false;
  if (r->size_lt >= 0 && o->size >= (uint64_t)r->size_lt)
    return false;
  return tags_hold(r, o);
}

/* When a rule of `days` expires something made at t_ms (invariant 3). */
static int64_t after_days(int64_t t_ms, int64_t days)
{
  int64_t day = store_lifecycle_day_ms();
  int64_t at = t_ms + days * day;
  if (day == 86400000)
    at = (at + day - 1) / day * day;
  return at;
}

bool store_lifecycle_expiry(const store_lifecycle *lc, const store_object *o, int64_t *when_ms,
                            const char **rule_id)
{
  bool any = false;
  for (size_t i = 0; i < lc->nrules; i++) {
    const store_lc_rule *r = &lc->rules[i];
    if ((r->exp_days == 0 && r->exp_date_ms == 0) || !rule_matches(r, o->key, o))
      continue;
    int64_t at = r->exp_days > 0 ? after_days(o->mtime_ms, r->exp_days) : r->exp_date_ms;
    if (!any || at < *when_ms) {
      *when_ms = at;
      *rule_id = r->id;
      any = true;
    }
  }
  return any;
}

bool store_lifecycle_abort_date(const store_lifecycle *lc, const char *key, int64_t initiated_ms,
                                int64_t *when_ms, const char **rule_id)
{
  bool any = false;
  for (size_t i = 0; i < lc->nrules; i++) {
    const store_lc_rule *r = &lc->rules[i];
    if (r->abort_days == 0 || !rule_matches(r, key, NULL))
      continue;
    int64_t at = after_days(initiated_ms, r->abort_days);
    if (!any || at < *when_ms) {
      *when_ms = at;
      *rule_id = r->id;
      any = true;
    }
  }
  return any;
}

/* ---- the sweep ---- */

/* store_close began: a sweep stops between pages. */
static bool stopping(store *s)
{
  pthread_mutex_lock(&s->mu);
  bool v = s->stopping;
  pthread_mutex_unlock(&s->mu);
  return v;
}

static void sweep_objects(store *s, const char *bucket, const store_lifecycle *lc, int64_t now,
                          long *removed)
{
  store_origin origin = {.event = STORE_EVENT_LIFECYCLE_DELETE,
                         .principal = "s3.amazonaws.com",
                         .source_ip = "s3.amazonaws.com"};  /* as S3 records them */
  const char *after = NULL;
  arena *page = arena_new();
  for (;;) {
    store_list_params p = {.after = after, .max_keys = STORE_MAX_LIST_KEYS};
    store_list_result res;
    err e;
    if (store_object_list(s, bucket, &p, page, &res, &e) != 0)
      break;
    for (size_t i = 0; i < res.nobjects; i++) {
      int64_t when;
      const char *id;
      if (!store_lifecycle_expiry(lc, &res.objects[i], &when, &id) || when > now)
        continue;
      bool existed = false;
      store_origin_set(&origin);
      if (store__object_delete_if(s, bucket, res.objects[i].key, res.objects[i].mtime_ms,
                                  &existed, &e) == 0 && existed)
        (*removed)++;
      store_origin_set(NULL);
    }
    if (!res.truncated || stopping(s))
      break;
    after = arena_strdup(page, res.next_after);
  }
  arena_free(page);
}

/* Whether a rule removes a noncurrent version: since_ms is when it became
 * noncurrent, newer the noncurrent versions of its key newer than it. */
static bool noncurrent_expires(const store_lifecycle *lc, const store_object *o, int64_t since_ms,
                               size_t newer, int64_t now)
{
  for (size_t i = 0; i < lc->nrules; i++) {
    const store_lc_rule *r = &lc->rules[i];
    if (r->nc_days == 0 || !rule_matches(r, o->key, o->delete_marker ? NULL : o))
      continue;
    if ((int64_t)newer >= r->nc_keep && after_days(since_ms, r->nc_days) <= now)
      return true;
  }
  return false;
}

static bool marker_expires(const store_lifecycle *lc, const char *key)
{
  for (size_t i = 0; i < lc->nrules; i++)
    if (lc->rules[i].expired_marker && rule_matches(&lc->rules[i], key, NULL))
      return true;
  return false;
}

typedef struct doomed {
  const char *key;
  const char *vid;
} doomed;

#define LC_MAX_VERSION_REMOVALS 100000   /* per bucket and sweep; the rest next time */

/* NoncurrentVersionExpiration and ExpiredObjectDeleteMarker: read the
 * bucket's versions in order, then remove what the rules name. */
static void doom(doomed **list, size_t *n, size_t *cap, arena *keep, const char *key,
                 const char *vid)
{
  if (*n == LC_MAX_VERSION_REMOVALS)
    return;
  if (*n == *cap) {
    *cap *= 2;
    *list = xrealloc(*list, *cap * sizeof **list);
  }
  (*list)[(*n)++] = (doomed){arena_strdup(keep, key), arena_strdup(keep, vid)};
}

static void sweep_versions(store *s, const char *bucket, const store_lifecycle *lc, int64_t now,
                           long *removed)
{
  bool any = false;
  for (size_t i = 0; i < lc->nrules; i++)
    any = any || (lc->rules[i].enabled && (lc->rules[i].nc_days > 0 || lc->rules[i].expired_marker));
  if (!any)
    return;
  arena *keep = arena_new();    /* what outlives a page: the removals, the walk's state */
  arena *page = NULL;           /* one listing page, freed before the next */
  size_t cap = 64;
  size_t n = 0;
  doomed *list = xmalloc(cap * sizeof *list);
  const char *km = NULL;
  const char *vm = NULL;
  const char *cur_key = NULL;   /* the key being walked */
  int64_t newer_ms = 0;         /* the time of the previous (newer) version of cur_key */
  size_t noncurrent = 0;        /* noncurrent versions of cur_key seen */
  size_t count = 0;             /* versions of cur_key seen */
  const char *lone = NULL;      /* the id of cur_key's latest version, a marker, or NULL */
  bool done = false;
  while (!done && !stopping(s)) {
    page = arena_free(page);
    page = arena_new();
    store_version_params p = {.key_marker = km, .version_id_marker = vm,
                              .max_keys = STORE_MAX_LIST_KEYS};
    store_version_list l;
    err e;
    if (store_object_versions(s, bucket, &p, page, &l, &e) != 0)
      break;
    for (size_t i = 0; i <= l.nversions; i++) {
      const store_object *o = i < l.nversions ? &l.versions[i] : NULL;
      bool end = o == NULL && !l.truncated;
      if (o == NULL && !end)
        break;
      if (end || cur_key == NULL || strcmp(o->key, cur_key) != 0) {
        if (lone != NULL && count == 1 && marker_expires(lc, cur_key))
          doom(&list, &n, &cap, keep, cur_key, lone);
        if (end)
          break;
        cur_key = arena_strdup(keep, o->key);
        noncurrent = 0;
        count = 0;
        lone = NULL;
      }
      count++;
      if (o->is_latest) {
        lone = o->delete_marker ? arena_strdup(keep, o->version_id) : NULL;
      } else {  /* a key's first entry is its latest: newer_ms is set */
        if (noncurrent_expires(lc, o, newer_ms, noncurrent, now))
          doom(&list, &n, &cap, keep, o->key, o->version_id);
        noncurrent++;
      }
      newer_ms = o->mtime_ms;
    }
    if (!l.truncated || l.next_version_id_marker == NULL)
      done = true;
    km = l.next_key_marker != NULL ? arena_strdup(keep, l.next_key_marker) : NULL;
    vm = l.next_version_id_marker != NULL ? arena_strdup(keep, l.next_version_id_marker) : NULL;
  }
  arena_free(page);
  store_origin origin = {.event = STORE_EVENT_LIFECYCLE_DELETE,
                         .principal = "s3.amazonaws.com",
                         .source_ip = "s3.amazonaws.com"};
  for (size_t i = 0; i < n && !stopping(s); i++) {
    store_delete_result r;
    err e;
    store_origin_set(&origin);
    if (store_object_delete_version(s, bucket, list[i].key, list[i].vid, false, &r, &e) == 0 &&
        r.existed)
      (*removed)++;
    store_origin_set(NULL);
  }
  free(list);
  arena_free(keep);
}

static void sweep_uploads(store *s, const char *bucket, const store_lifecycle *lc, int64_t now,
                          long *removed)
{
  const char *key_marker = NULL;
  const char *id_marker = NULL;
  arena *page = arena_new();
  for (;;) {
    store_upload *ups;
    size_t n;
    bool truncated;
    err e;
    if (store_upload_list(s, bucket, NULL, key_marker, id_marker, 1000, page, &ups, &n,
                          &truncated, &e) != 0)
      break;
    for (size_t i = 0; i < n; i++) {
      int64_t when;
      const char *id;
      if (store_lifecycle_abort_date(lc, ups[i].key, ups[i].initiated_ms, &when, &id) &&
          when <= now && store_upload_abort(s, bucket, ups[i].key, ups[i].upload_id, &e) == 0)
        (*removed)++;
    }
    if (!truncated || n == 0 || stopping(s))
      break;
    key_marker = ups[n - 1].key;
    id_marker = ups[n - 1].upload_id;
  }
  arena_free(page);
}

long store_lifecycle_sweep(store *s, err *e)
{
  arena *a = arena_new();
  store_bucket *buckets;
  size_t nb;
  long removed = 0;
  int rc = store_bucket_list(s, a, &buckets, &nb, e);
  int64_t now = store__clock_ms();
  for (size_t i = 0; rc == 0 && i < nb && !stopping(s); i++) {
    const char *doc;
    err ie;
    if (store_bucket_conf_get(s, buckets[i].name, "lifecycle", a, &doc, &ie) != 0 ||
        doc == NULL)
      continue;
    store_lifecycle lc;
    if (store_lifecycle_parse(doc, strlen(doc), a, &lc, &ie) != 0)
      continue;
    sweep_objects(s, buckets[i].name, &lc, now, &removed);
    sweep_versions(s, buckets[i].name, &lc, now, &removed);
    sweep_uploads(s, buckets[i].name, &lc, now, &removed);
  }
  arena_free(a);
  return rc != 0 ? rc : removed;
}

static void *lifecycle_main(void *arg)
{
  store *s = arg;
  uint64_t every = env_u64("TARN_LIFECYCLE_SWEEP_SECONDS", LC_DEFAULT_SWEEP);
  if (every == 0)
    every = LC_DEFAULT_SWEEP;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)every;
    while (!s->stopping) {
      if (pthread_cond_timedwait(&s->sweep_wake, &s->mu, &until) == ETIMEDOUT)
        break;
    }
    if (s->stopping)
      break;
    pthread_mutex_unlock(&s->mu);
    store_lifecycle_sweep(s, NULL);  /* failures: try again next time */
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int store__lifecycle_start(store *s, err *e)
{
  int rc = pthread_create(&s->lifecycle, NULL, lifecycle_main, s);
  if (rc != 0)
    return err_set(e, ERR_INTERNAL, "cannot start the lifecycle thread: %s", strerror(rc));
  s->lifecycle_running = true;
  return 0;
}
