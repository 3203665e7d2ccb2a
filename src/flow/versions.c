/* flow/versions.c -- state machine versions and aliases: immutable
 * snapshots of a machine's definition (PublishStateMachineVersion, or
 * CreateStateMachine / UpdateStateMachine with publish) and names that route
 * executions to one or two of them by weight.
 *
 * Why a file of its own: versions and aliases are records beside the
 * machine's, and a start with a qualified ARN (`...:stateMachine:NAME:3`,
 * `...:stateMachine:NAME:prod`) resolves here to the definition it runs
 * (flow_machine_resolve) before the engine sees it.
 *
 * Records:
 *   versions  MACHINE_ARN "#" %010u -> DescribeStateMachine's shape for the
 *             version (stateMachineArn is the version's ARN), with "_base"
 *   aliases   ALIAS_ARN -> DescribeStateMachineAlias's shape
 * The machine's record keeps "_nextVersion" (numbers are never reused).
 *
 * Invariants:
 *   (1) A version's definition never changes; deleting the machine deletes
 *       its versions and aliases in the same commit.
 *   (2) An alias routes only to versions of its machine that exist: a
 *       version an alias routes to cannot be deleted (ConflictException).
 *   (3) Publishing is serialised by flow_system.vmu, and the next number is
 *       above every stored one even if "_nextVersion" was overwritten by a
 *       concurrent UpdateStateMachine.
 *
 * Start reading at flow_version_publish().
 */
#include "flow/internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VERSIONS 1000  /* per machine (AWS's quota) */
#define MAX_ALIASES 100    /* per machine (AWS's quota) */
#define MAX_DESCRIPTION 256

bool flow__name_ok(const char *n);

/* Splits a state machine ARN into its base (malloc'd) and its qualifier
 * (after the name, NULL when none). false when it is no machine ARN. */
static bool arn_split(const char *arn, char **base, const char **qual)
{
  *base = NULL;
  *qual = NULL;
  if (arn == NULL || !str_starts(arn, "arn:aws:states:") || strlen(arn) > FLOW_MAX_ARN)
    return false;
  const char *m = strstr(arn, ":stateMachine:");
  if (m == NULL)
    return false;
  const char *name = m + strlen(":stateMachine:");
  const char *colon = strchr(name, ':');
  if (colon == NULL) {
    *base = xstrdup(arn);
    return *name != '\0';
  }
  *base = xstrndup(arn, (size_t)(colon - arn));
  *qual = colon + 1;
  return colon > name && colon[1] != '\0' && strchr(colon + 1, ':') == NULL;
}

static bool all_digits(const char *s)
{
  if (*s == '\0' || strlen(s) > 10)
    return false;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s))
      return false;
  return true;
}

static void version_key(const char *base, unsigned long n, char *out, size_t cap)
{
  snprintf(out, cap, "%s#%010lu", base, n);
}

static int invalid_arn(err *e, const char *arn)
{
  return err_set(e, FLOW_ERR_ARN, "Invalid Arn: 'Resource type not valid in this context: %s'",
                 arn ? arn : "");
}

bool flow_arn_qualified(const char *arn)
{
  char *base;
  const char *qual;
  bool ok = arn_split(arn, &base, &qual);
  free(base);
  return ok && qual != NULL;
}

static int description_check(const char *d, err *e)
{
  if (d == NULL || strlen(d) <= MAX_DESCRIPTION)
    return 0;
  return err_set(e, ERR_INVALID, "1 validation error detected: Value at 'description' failed "
                 "to satisfy constraint: Member must have length less than or equal to %d",
                 MAX_DESCRIPTION);
}

/* The ARN of a machine, not of a version or alias: *base (malloc'd). */
static int unqualified(const char *arn, char **base, err *e)
{
  const char *qual;
  if (arn_split(arn, base, &qual) && qual == NULL)
    return 0;
  free(*base);
  *base = NULL;
  return invalid_arn(e, arn);
}

static int machine_rec(flow_system *s, const char *base, json_t **out, err *e)
{
  int rc = flow__get(s, s->db_machines, base, out, e);
  if (rc == ERR_NOT_FOUND)
    return err_set(e, FLOW_ERR_NO_MACHINE, "State Machine Does Not Exist: '%s'", base);
  return rc;
}

/* A version's record by its ARN (internal members kept). */
static int version_rec(flow_system *s, const char *arn, json_t **out, err *e)
{
  *out = NULL;
  char *base;
  const char *qual;
  if (!arn_split(arn, &base, &qual) || qual == NULL || !all_digits(qual)) {
    free(base);
    return invalid_arn(e, arn);
  }
  char key[1024];
  version_key(base, strtoul(qual, NULL, 10), key, sizeof key);
  free(base);
  int rc = flow__get(s, s->db_versions, key, out, e);
  if (rc == ERR_NOT_FOUND)
    return err_set(e, FLOW_ERR_NOT_FOUND, "Resource not found: '%s'", arn);
  return rc;
}

int flow__version_get(flow_system *s, const char *arn, json_t **out, err *e)
{
  json_t *rec;
  int rc = version_rec(s, arn, &rec, e);
  if (rc == FLOW_ERR_NOT_FOUND)
    return err_set(e, FLOW_ERR_NO_MACHINE, "State Machine Does Not Exist: '%s'", arn);
  if (rc != 0)
    return rc;
  *out = flow__public_copy(rec);
  json_decref(rec);
  return 0;
}

/* ---- versions ---- */

int flow_version_publish(flow_system *s, const char *machine_arn, const char *revision_id,
                         const char *description, json_t **out, err *e)
{
  *out = NULL;
  char *base;
  int rc = unqualified(machine_arn, &base, e);
  if (rc != 0)
    return rc;
  if ((rc = description_check(description, e)) != 0) {
    free(base);
    return rc;
  }
  pthread_mutex_lock(&s->vmu);
  json_t *m = NULL, *keys = NULL, *vals = NULL;
  rc = machine_rec(s, base, &m, e);
  if (rc != 0)
    goto done;
  const char *rev = flow__rec_str(m, "revisionId");
  if (revision_id != NULL && strcmp(revision_id, rev) != 0 &&
      !(strcmp(revision_id, "INITIAL") == 0 && json_object_get(m, "updateDate") == NULL)) {
    rc = err_set(e, FLOW_ERR_CONFLICT, "Failed to publish the State Machine version: the "
                 "current revision '%s' of '%s' is not '%s'", rev, base, revision_id);
    goto done;
  }
  char prefix[1024];
  snprintf(prefix, sizeof prefix, "%s#", base);
  if ((rc = flow__scan(s, s->db_versions, prefix, &keys, &vals, e)) != 0)
    goto done;
  unsigned long next = (unsigned long)json_integer_value(json_object_get(m, "_nextVersion"));
  size_t i;
  json_t *v;
  json_array_foreach(vals, i, v) {
    const char *varn = flow__rec_str(v, "stateMachineVersionArn");
    unsigned long n = strtoul(strrchr(varn, ':') + 1, NULL, 10);
    if (n >= next)
      next = n + 1;
    /* AWS: a version of the current revision is the answer again */
    if (strcmp(flow__rec_str(v, "revisionId"), rev) == 0) {
      *out = json_pack("{s:O, s:O}", "stateMachineVersionArn",
                       json_object_get(v, "stateMachineVersionArn"), "creationDate",
                       json_object_get(v, "creationDate"));
      goto done;
    }
  }
  if (json_array_size(vals) >= MAX_VERSIONS) {
    rc = err_set(e, FLOW_ERR_QUOTA, "Maximum number of versions (%d) reached for '%s'",
                 MAX_VERSIONS, base);
    goto done;
  }
  if (next == 0)
    next = 1;
  char *varn = xasprintf("%s:%lu", base, next);
  double now = flow__now_epoch();
  json_t *rec = json_pack("{s:s, s:s, s:O, s:s, s:O, s:O, s:O, s:f, s:s, s:s, s:O, s:O}",
                          "stateMachineArn", varn, "stateMachineVersionArn", varn, "name",
                          json_object_get(m, "name"), "status", "ACTIVE", "definition",
                          json_object_get(m, "definition"), "roleArn",
                          json_object_get(m, "roleArn"), "type", json_object_get(m, "type"),
                          "creationDate", now, "revisionId", rev, "_base", base,
                          "loggingConfiguration", json_object_get(m, "loggingConfiguration"),
                          "tracingConfiguration", json_object_get(m, "tracingConfiguration"));
  if (description != NULL)
    json_object_set_new(rec, "description", json_string(description));
  json_object_set_new(m, "_nextVersion", json_integer((json_int_t)next + 1));
  char key[1024];
  version_key(base, next, key, sizeof key);
  fchange c = {0};
  flow__change_put(&c, s->db_versions, key, strlen(key), rec);
  flow__change_put(&c, s->db_machines, base, strlen(base), m);
  rc = flow__commit(s, &c, e);
  if (rc == 0)
    *out = json_pack("{s:s, s:f}", "stateMachineVersionArn", varn, "creationDate", now);
  json_decref(rec);
  free(varn);
done:
  pthread_mutex_unlock(&s->vmu);
  json_decref(m);
  json_decref(keys);
  json_decref(vals);
  free(base);
  return rc;
}

/* The machine whose versions or aliases are listed: it exists, and arn is
 * not qualified. *base: its ARN (malloc'd). */
static int machine_listed(flow_system *s, const char *arn, char **base, err *e)
{
  json_t *m;
  int rc = unqualified(arn, base, e);
  if (rc == 0 && (rc = machine_rec(s, *base, &m, e)) == 0)
    json_decref(m);
  if (rc != 0) {
    free(*base);
    *base = NULL;
  }
  return rc;
}

static int cmp_version_desc(const void *a, const void *b)
{
  const char *x = flow__rec_str(*(json_t *const *)a, "stateMachineVersionArn");
  const char *y = flow__rec_str(*(json_t *const *)b, "stateMachineVersionArn");
  unsigned long nx = strtoul(strrchr(x, ':') + 1, NULL, 10);
  unsigned long ny = strtoul(strrchr(y, ':') + 1, NULL, 10);
  return nx < ny ? 1 : nx > ny ? -1 : 0;
}

/* Items of vals after the token (the last ARN returned, under key), at
 * most max; *next names the last one when more follow. */
static void page(json_t *vals, const char *key, const char *after, size_t max, json_t **items,
                 const char **next)
{
  static _Thread_local char token[1024];
  *items = json_array();
  *next = NULL;
  bool skipping = after != NULL && *after;
  size_t n = json_array_size(vals);
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_array_get(vals, i);
    const char *arn = flow__rec_str(v, key);
    if (skipping) {
      skipping = strcmp(arn, after) != 0;
      continue;
    }
    json_array_append_new(*items, json_pack("{s:s, s:O}", key, arn, "creationDate",
                                            json_object_get(v, "creationDate")));
    if (json_array_size(*items) == max && i + 1 < n) {
      snprintf(token, sizeof token, "%s", arn);
      *next = token;
      break;
    }
  }
}

int flow_version_list(flow_system *s, const char *machine_arn, const char *after, size_t max,
                      json_t **items, const char **next, err *e)
{
  *items = NULL;
  *next = NULL;
  char *base;
  json_t *keys, *vals;
  int rc = machine_listed(s, machine_arn, &base, e);
  if (rc != 0)
    return rc;
  char prefix[1024];
  snprintf(prefix, sizeof prefix, "%s#", base);
  rc = flow__scan(s, s->db_versions, prefix, &keys, &vals, e);
  free(base);
  if (rc != 0)
    return rc;
  size_t n = json_array_size(vals);
  json_t **all = xcalloc(n + 1, sizeof *all);
  for (size_t i = 0; i < n; i++)
    all[i] = json_array_get(vals, i);
  qsort(all, n, sizeof *all, cmp_version_desc);
  json_t *sorted = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append(sorted, all[i]);
  free(all);
  page(sorted, "stateMachineVersionArn", after, max, items, next);
  json_decref(sorted);
  json_decref(keys);
  json_decref(vals);
  return 0;
}

/* The aliases of a machine (base ARN), as records. */
static int aliases_of(flow_system *s, const char *base, json_t **vals, err *e)
{
  char prefix[1024];
  snprintf(prefix, sizeof prefix, "%s:", base);
  json_t *keys;
  int rc = flow__scan(s, s->db_aliases, prefix, &keys, vals, e);
  if (rc == 0)
    json_decref(keys);
  return rc;
}

int flow_version_delete(flow_system *s, const char *version_arn, err *e)
{
  pthread_mutex_lock(&s->vmu);
  json_t *rec = NULL, *aliases = NULL;
  int rc = version_rec(s, version_arn, &rec, e);
  if (rc == FLOW_ERR_NOT_FOUND) {
    rc = 0; /* AWS: deleting what is gone succeeds */
    goto done;
  }
  if (rc != 0 || (rc = aliases_of(s, flow__rec_str(rec, "_base"), &aliases, e)) != 0)
    goto done;
  size_t i, j;
  json_t *a, *route;
  json_array_foreach(aliases, i, a) {
    json_array_foreach(json_object_get(a, "routingConfiguration"), j, route) {
      if (strcmp(flow__rec_str(route, "stateMachineVersionArn"), version_arn) == 0) {
        rc = err_set(e, FLOW_ERR_CONFLICT, "Version to be deleted must not be referenced by an "
                     "alias. Current list of aliases referencing this version: [%s]",
                     flow__rec_str(a, "stateMachineAliasArn"));
        goto done;
      }
    }
  }
  char key[1024];
  version_key(flow__rec_str(rec, "_base"), strtoul(strrchr(version_arn, ':') + 1, NULL, 10), key,
              sizeof key);
  fchange c = {0};
  flow__change_del(&c, s->db_versions, key, strlen(key));
  rc = flow__commit(s, &c, e);
done:
  pthread_mutex_unlock(&s->vmu);
  json_decref(rec);
  json_decref(aliases);
  return rc;
}

void flow__versions_drop(flow_system *s, const char *machine_arn, fchange *c)
{
  json_t *keys, *vals;
  err e = {0};
  char prefix[1024];
  snprintf(prefix, sizeof prefix, "%s#", machine_arn);
  if (flow__scan(s, s->db_versions, prefix, &keys, &vals, &e) == 0) {
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
      flow__change_del(c, s->db_versions, json_string_value(k), strlen(json_string_value(k)));
    json_decref(keys);
    json_decref(vals);
  }
  snprintf(prefix, sizeof prefix, "%s:", machine_arn);
  if (flow__scan(s, s->db_aliases, prefix, &keys, &vals, &e) == 0) {
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
      flow__change_del(c, s->db_aliases, json_string_value(k), strlen(json_string_value(k)));
    json_decref(keys);
    json_decref(vals);
  }
}

/* ---- aliases ---- */

static bool alias_name_ok(const char *n)
{
  if (!flow__name_ok(n) || all_digits(n))
    return false;
  for (const char *c = n; *c; c++)
    if (!isalnum((unsigned char)*c) && strchr("_-.", *c) == NULL)
      return false;
  return true;
}

/* Checks a routingConfiguration: 1 or 2 distinct versions of one machine
 * that exist, integer weights summing to 100. *base gets that machine. */
static int routing_check(flow_system *s, json_t *routing, char **base, err *e)
{
  *base = NULL;
  size_t n = json_array_size(routing);
  if (!json_is_array(routing) || n < 1 || n > 2)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value at "
                   "'routingConfiguration' failed to satisfy constraint: Member must have "
                   "length between 1 and 2");
  json_int_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *r = json_array_get(routing, i);
    const char *varn = flow__rec_str(r, "stateMachineVersionArn");
    json_t *w = json_object_get(r, "weight");
    if (varn == NULL || !json_is_integer(w) || json_integer_value(w) < 0 ||
        json_integer_value(w) > 100)
      return err_set(e, ERR_INVALID, "Invalid Routing Configuration: each entry needs a "
                     "stateMachineVersionArn and a weight between 0 and 100");
    sum += json_integer_value(w);
    char *vb;
    const char *qual;
    if (!arn_split(varn, &vb, &qual) || qual == NULL || !all_digits(qual)) {
      free(vb);
      free(*base);
      *base = NULL;
      return err_set(e, ERR_INVALID, "Invalid Routing Configuration: '%s' is not a state "
                     "machine version ARN", varn);
    }
    if (*base != NULL && strcmp(*base, vb) != 0) {
      free(vb);
      free(*base);
      *base = NULL;
      return err_set(e, ERR_INVALID, "Invalid Routing Configuration: all versions must be of "
                     "the same state machine");
    }
    if (i == 1 && strcmp(varn, flow__rec_str(json_array_get(routing, 0),
                                             "stateMachineVersionArn")) == 0) {
      free(vb);
      free(*base);
      *base = NULL;
      return err_set(e, ERR_INVALID, "Invalid Routing Configuration: the versions must be "
                     "distinct");
    }
    free(*base);
    *base = vb;
    json_t *rec;
    int rc = version_rec(s, varn, &rec, e);
    if (rc != 0) {
      free(*base);
      *base = NULL;
      return rc;
    }
    json_decref(rec);
  }
  if (sum != 100) {
    free(*base);
    *base = NULL;
    return err_set(e, ERR_INVALID, "Invalid Routing Configuration: the weights must add up to "
                   "100");
  }
  return 0;
}

/* Only the members AWS documents, in its order. */
static json_t *routing_copy(json_t *routing)
{
  json_t *o = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(routing, i, r)
    json_array_append_new(o, json_pack("{s:O, s:O}", "stateMachineVersionArn",
                                       json_object_get(r, "stateMachineVersionArn"), "weight",
                                       json_object_get(r, "weight")));
  return o;
}

int flow_alias_create(flow_system *s, const char *name, const char *description,
                      json_t *routing, json_t **out, err *e)
{
  *out = NULL;
  if (name == NULL || !alias_name_ok(name))
    return err_set(e, ERR_INVALID, "Invalid Name: '%s' (an alias name has letters, digits, "
                   "'_', '-' and '.', and is not a number)", name ? name : "");
  int drc = description_check(description, e);
  if (drc != 0)
    return drc;
  pthread_mutex_lock(&s->vmu);
  char *base = NULL;
  json_t *old = NULL, *all = NULL;
  int rc = routing_check(s, routing, &base, e);
  if (rc != 0)
    goto done;
  char *arn = xasprintf("%s:%s", base, name);
  rc = flow__get(s, s->db_aliases, arn, &old, e);
  if (rc == 0) {
    json_t *want = routing_copy(routing);
    bool same = json_equal(want, json_object_get(old, "routingConfiguration")) &&
                strcmp(description ? description : "", flow__rec_str(old, "description")
                                                           ? flow__rec_str(old, "description")
                                                           : "") == 0;
    json_decref(want);
    if (same)
      *out = json_pack("{s:s, s:O}", "stateMachineAliasArn", arn, "creationDate",
                       json_object_get(old, "creationDate"));
    else
      rc = err_set(e, FLOW_ERR_CONFLICT, "Failed to create alias because an alias with the "
                   "same name and a different routing configuration already exists: '%s'", arn);
    free(arn);
    goto done;
  }
  if (rc != ERR_NOT_FOUND) {
    free(arn);
    goto done;
  }
  if ((rc = aliases_of(s, base, &all, e)) != 0) {
    free(arn);
    goto done;
  }
  if (json_array_size(all) >= MAX_ALIASES) {
    rc = err_set(e, FLOW_ERR_QUOTA, "Maximum number of aliases (%d) reached for '%s'",
                 MAX_ALIASES, base);
    free(arn);
    goto done;
  }
  double now = flow__now_epoch();
  json_t *rec = json_pack("{s:s, s:s, s:o, s:f}", "stateMachineAliasArn", arn, "name", name,
                          "routingConfiguration", routing_copy(routing), "creationDate", now);
  if (description != NULL)
    json_object_set_new(rec, "description", json_string(description));
  fchange c = {0};
  flow__change_put(&c, s->db_aliases, arn, strlen(arn), rec);
  rc = flow__commit(s, &c, e);
  json_decref(rec);
  if (rc == 0)
    *out = json_pack("{s:s, s:f}", "stateMachineAliasArn", arn, "creationDate", now);
  free(arn);
done:
  pthread_mutex_unlock(&s->vmu);
  json_decref(old);
  json_decref(all);
  free(base);
  return rc;
}

static int alias_rec(flow_system *s, const char *arn, json_t **out, err *e)
{
  *out = NULL;
  char *base;
  const char *qual;
  bool ok = arn_split(arn, &base, &qual) && qual != NULL && !all_digits(qual);
  free(base);
  if (!ok)
    return invalid_arn(e, arn);
  int rc = flow__get(s, s->db_aliases, arn, out, e);
  if (rc == ERR_NOT_FOUND)
    return err_set(e, FLOW_ERR_NOT_FOUND, "Resource not found: '%s'", arn);
  return rc;
}

int flow_alias_get(flow_system *s, const char *arn, json_t **out, err *e)
{
  return alias_rec(s, arn, out, e);
}

int flow_alias_update(flow_system *s, const char *arn, const char *description, json_t *routing,
                      json_t **out, err *e)
{
  *out = NULL;
  if (description == NULL && routing == NULL)
    return err_set(e, ERR_INVALID, "Either the description or the routingConfiguration must be "
                   "specified");
  int drc = description_check(description, e);
  if (drc != 0)
    return drc;
  pthread_mutex_lock(&s->vmu);
  json_t *rec = NULL;
  char *base = NULL, *rbase = NULL;
  const char *qual;
  int rc = alias_rec(s, arn, &rec, e);
  if (rc == 0 && routing != NULL && (rc = routing_check(s, routing, &rbase, e)) == 0) {
    arn_split(arn, &base, &qual);
    if (strcmp(base, rbase) != 0)
      rc = err_set(e, ERR_INVALID, "Invalid Routing Configuration: the versions must be of the "
                   "alias's state machine '%s'", base);
  }
  if (rc == 0) {
    double now = flow__now_epoch();
    if (routing != NULL)
      json_object_set_new(rec, "routingConfiguration", routing_copy(routing));
    if (description != NULL)
      json_object_set_new(rec, "description", json_string(description));
    json_object_set_new(rec, "updateDate", json_real(now));
    fchange c = {0};
    flow__change_put(&c, s->db_aliases, arn, strlen(arn), rec);
    rc = flow__commit(s, &c, e);
    if (rc == 0)
      *out = json_pack("{s:f}", "updateDate", now);
  }
  pthread_mutex_unlock(&s->vmu);
  json_decref(rec);
  free(base);
  free(rbase);
  return rc;
}

int flow_alias_delete(flow_system *s, const char *arn, err *e)
{
  pthread_mutex_lock(&s->vmu);
  json_t *rec;
  int rc = alias_rec(s, arn, &rec, e);
  if (rc == 0) {
    json_decref(rec);
    fchange c = {0};
    flow__change_del(&c, s->db_aliases, arn, strlen(arn));
    rc = flow__commit(s, &c, e);
  } else if (rc == FLOW_ERR_NOT_FOUND) {
    rc = 0; /* AWS: deleting what is gone succeeds */
  }
  pthread_mutex_unlock(&s->vmu);
  return rc;
}

int flow_alias_list(flow_system *s, const char *machine_arn, const char *after, size_t max,
                    json_t **items, const char **next, err *e)
{
  *items = NULL;
  *next = NULL;
  char *base;
  json_t *vals;
  int rc = machine_listed(s, machine_arn, &base, e);
  if (rc != 0)
    return rc;
  rc = aliases_of(s, base, &vals, e);
  free(base);
  if (rc != 0)
    return rc;
  page(vals, "stateMachineAliasArn", after, max, items, next);
  json_decref(vals);
  return 0;
}

/* ---- starting an execution ---- */

int flow_machine_resolve(flow_system *s, const char *arn, json_t **out, err *e)
{
  *out = NULL;
  char *base;
  const char *qual;
  if (!arn_split(arn, &base, &qual)) {
    free(base);
    return invalid_arn(e, arn);
  }
  int rc;
  if (qual == NULL) {
    free(base);
    return flow_machine_get(s, arn, out, e);
  }
  json_t *rec = NULL;
  const char *alias = NULL;
  char *varn = NULL;
  if (all_digits(qual)) {
    varn = xstrdup(arn);
  } else {
    json_t *a;
    if ((rc = alias_rec(s, arn, &a, e)) != 0) {
      free(base);
      return rc;
    }
    /* the weights choose the version (invariant 2: it exists) */
    json_t *routes = json_object_get(a, "routingConfiguration");
    uint32_t pick;
    random_bytes(&pick, sizeof pick);
    json_int_t roll = (json_int_t)(pick % 100), acc = 0;
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r) {
      acc += json_integer_value(json_object_get(r, "weight"));
      if (roll < acc || i + 1 == json_array_size(routes)) {
        varn = xstrdup(flow__rec_str(r, "stateMachineVersionArn"));
        break;
      }
    }
    json_decref(a);
    alias = arn;
  }
  rc = version_rec(s, varn, &rec, e);
  if (rc == FLOW_ERR_NOT_FOUND)
    rc = err_set(e, FLOW_ERR_NOT_FOUND, "Resource not found: '%s'", varn);
  if (rc == 0) {
    *out = flow__public_copy(rec);
    json_object_set_new(*out, "stateMachineArn", json_string(base));
    json_object_set_new(*out, "stateMachineVersionArn", json_string(varn));
    if (alias != NULL)
      json_object_set_new(*out, "stateMachineAliasArn", json_string(alias));
  }
  json_decref(rec);
  free(varn);
  free(base);
  return rc;
}
