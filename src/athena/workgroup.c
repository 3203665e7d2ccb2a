/* athena/workgroup.c -- work groups: where a query's results go by default,
 * whether that overrides the client's choice, and whether the group takes
 * queries at all.
 *
 * Why: Athena clients name a work group, not an output location; "primary"
 * exists from the start, and a query with no output location in its
 * request nor in its work group is refused (InvalidRequestException).
 *
 * Invariants:
 *   (1) "primary" always exists: made at open, never deleted.
 *   (2) Changes are read-modify-writes of the side (athena_side.wg_update:
 *       under wg_mu on LMDB, one transaction reading the row FOR UPDATE on
 *       PostgreSQL), so two updates, of one node or two, never lose one
 *       another.
 *   (3) At most ATHENA_MAX_WORKGROUPS groups.
 *
 * Start reading at athena_workgroup_create().
 */
#include "athena/internal.h"

#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_valid(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 128)
    return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return false;
  }
  return true;
}

static int need_name(json_t *in, const char *member, const char **out, err *e)
{
  *out = json_string_value(json_object_get(in, member));
  if (*out == NULL)
    return athena__invalid(e, member, "Member must not be null");
  if (!name_valid(*out))
    return athena__invalid(e, member, "Member must satisfy regular expression pattern: "
                           "[a-zA-Z0-9._-]{1,128}");
  return 0;
}

int athena__workgroup_load(athena *a, const char *name, json_t **out, err *e)
{
  int rc = athena__get(a, AS_WGS, name, out, e);
  if (rc == ERR_NOT_FOUND)
    return err_set(e, ERR_INVALID, "WorkGroup %s is not found.", name);
  return rc;
}

static json_t *engine_version(void)
{
  return json_pack("{s:s, s:s}", "SelectedEngineVersion", "AUTO", "EffectiveEngineVersion",
                   "Athena engine version 3");
}

/* The checked ResultConfiguration of a request (a new reference). */
static int result_config(json_t *rc_in, json_t **out, err *e)
{
  *out = json_object();
  if (rc_in == NULL || json_is_null(rc_in))
    return 0;
  if (!json_is_object(rc_in))
    return athena__invalid(e, "ResultConfiguration", "Member must be an object");
  json_t *loc = json_object_get(rc_in, "OutputLocation");
  if (loc != NULL) {
    const char *s = json_string_value(loc);
    if (s == NULL || strncmp(s, "s3://", 5) != 0 || strlen(s) > 1024)
      return err_set(e, ERR_INVALID, "the OutputLocation must be an s3:// location");
    json_object_set(*out, "OutputLocation", loc);
  }
  const char *keep[] = {"EncryptionConfiguration", "ExpectedBucketOwner", "AclConfiguration"};
  for (size_t i = 0; i < 3; i++) {
    json_t *v = json_object_get(rc_in, keep[i]);
    if (v != NULL)
      json_object_set(*out, keep[i], v);
  }
  return 0;
}

static int create(athena *a, const char *name, const char *desc, json_t *cfg_in, bool enforce_def,
                  err *e)
{
  json_t *cfg = json_object();
  json_t *res;
  int rc = result_config(json_object_get(cfg_in, "ResultConfiguration"), &res, e);
  json_object_set_new(cfg, "ResultConfiguration", res);
  if (rc != 0) {
    json_decref(cfg);
    return rc;
  }
  json_t *enforce = json_object_get(cfg_in, "EnforceWorkGroupConfiguration");
  json_object_set_new(cfg, "EnforceWorkGroupConfiguration",
                      json_boolean(enforce != NULL ? json_is_true(enforce) : enforce_def));
  json_t *publish = json_object_get(cfg_in, "PublishCloudWatchMetricsEnabled");
  json_object_set_new(cfg, "PublishCloudWatchMetricsEnabled", json_boolean(json_is_true(publish)));
  json_object_set_new(cfg, "RequesterPaysEnabled",
                      json_boolean(json_is_true(json_object_get(cfg_in, "RequesterPaysEnabled"))));
  json_t *cutoff = json_object_get(cfg_in, "BytesScannedCutoffPerQuery");
  if (cutoff != NULL) {
    if (!json_is_integer(cutoff) || json_integer_value(cutoff) < 10000000) {
      json_decref(cfg);
      return athena__invalid(e, "BytesScannedCutoffPerQuery",
                             "Member must have value greater than or equal to 10000000");
    }
    json_object_set(cfg, "BytesScannedCutoffPerQuery", cutoff);
  }
  json_object_set_new(cfg, "EngineVersion", engine_version());
  json_t *wg = json_pack("{s:s, s:s, s:o, s:o}", "Name", name, "State", "ENABLED",
                         "Configuration", cfg, "CreationTime", athena__time(athena__now_ms()));
  if (desc != NULL)
    json_object_set_new(wg, "Description", json_string(desc));
  rc = a->side->wg_create(a, name, wg, ATHENA_MAX_WORKGROUPS, e);
  json_decref(wg);
  return rc;
}

int athena__workgroup_init(athena *a, err *e)
{
  json_t *wg;
  int rc = athena__get(a, AS_WGS, "primary", &wg, e);
  if (rc == 0) {
    json_decref(wg);
    return 0;
  }
  if (rc != ERR_NOT_FOUND)
    return rc;
  err_clear(e);
  json_t *none = json_object();
  rc = create(a, "primary", NULL, none, false, e);
  json_decref(none);
  if (rc == ERR_INVALID && a->side->shared) { /* another node made it meanwhile */
    err_clear(e);
    rc = 0;
  }
  return rc;
}

int athena_workgroup_create(athena *a, json_t *in, err *e)
{
  const char *name;
  int rc = need_name(in, "Name", &name, e);
  if (rc != 0)
    return rc;
  const char *desc = json_string_value(json_object_get(in, "Description"));
  if (desc != NULL && strlen(desc) > 1024)
    return athena__invalid(e, "Description", "Member must have length less than or equal to 1024");
  json_t *cfg = json_object_get(in, "Configuration");
  if (cfg != NULL && !json_is_object(cfg))
    return athena__invalid(e, "Configuration", "Member must be an object");
  json_t *none = json_object();
  rc = create(a, name, desc, cfg != NULL ? cfg : none, true, e);
  json_decref(none);
  return rc;
}

int athena_workgroup_get(athena *a, const char *name, json_t **out, err *e)
{
  if (name == NULL)
    return athena__invalid(e, "WorkGroup", "Member must not be null");
  return athena__workgroup_load(a, name, out, e);
}

int athena_workgroup_list(athena *a, json_t *in, json_t **out, err *e)
{
  json_int_t max;
  int rc = athena__max_results(in, 1, ATHENA_MAX_LIST, &max, e);
  if (rc != 0)
    return rc;
  const char *token = json_string_value(json_object_get(in, "NextToken"));
  json_t *wgs;
  char *next;
  if ((rc = a->side->wg_list(a, token, max, &wgs, &next, e)) != 0)
    return rc;
  json_t *list = json_array();
  size_t i;
  json_t *wg;
  json_array_foreach(wgs, i, wg) {
    json_t *sum = json_object();
    const char *keys[] = {"Name", "State", "Description", "CreationTime"};
    for (size_t k = 0; k < 4; k++) {
      json_t *x = json_object_get(wg, keys[k]);
      if (x != NULL)
        json_object_set(sum, keys[k], x);
    }
    json_object_set(sum, "EngineVersion",
                    json_object_get(json_object_get(wg, "Configuration"), "EngineVersion"));
    json_array_append_new(list, sum);
  }
  json_decref(wgs);
  *out = json_pack("{s:o}", "WorkGroups", list);
  if (next != NULL)
    json_object_set_new(*out, "NextToken", json_string(next));
  free(next);
  return 0;
}

/* ResultConfigurationUpdates onto a ResultConfiguration. */
static int apply_result_updates(json_t *res, json_t *up, err *e)
{
  if (json_is_true(json_object_get(up, "RemoveOutputLocation")))
    json_object_del(res, "OutputLocation");
  json_t *loc = json_object_get(up, "OutputLocation");
  if (loc != NULL) {
    const char *s = json_string_value(loc);
    if (s == NULL || strncmp(s, "s3://", 5) != 0 || strlen(s) > 1024)
      return err_set(e, ERR_INVALID, "the OutputLocation must be an s3:// location");
    json_object_set(res, "OutputLocation", loc);
  }
  const char *pairs[][2] = {{"EncryptionConfiguration", "RemoveEncryptionConfiguration"},
                            {"ExpectedBucketOwner", "RemoveExpectedBucketOwner"},
                            {"AclConfiguration", "RemoveAclConfiguration"}};
  for (size_t i = 0; i < 3; i++) {
    if (json_is_true(json_object_get(up, pairs[i][1])))
      json_object_del(res, pairs[i][0]);
    json_t *v = json_object_get(up, pairs[i][0]);
    if (v != NULL)
      json_object_set(res, pairs[i][0], v);
  }
  return 0;
}

typedef struct wg_update {
  const char *state;
  const char *desc;
  json_t *up;
} wg_update;

/* UpdateWorkGroup's changes onto the stored record (2). */
static int apply_update(json_t *wg, void *arg, err *e)
{
  wg_update *u = arg;
  int rc = 0;
  json_t *cfg = json_object_get(wg, "Configuration");
  if (u->state != NULL)
    json_object_set_new(wg, "State", json_string(u->state));
  if (u->desc != NULL)
    json_object_set_new(wg, "Description", json_string(u->desc));
  json_t *up = u->up;
  if (json_is_object(up)) {
    json_t *res = json_object_get(cfg, "ResultConfiguration");
    json_t *rup = json_object_get(up, "ResultConfigurationUpdates");
    if (json_is_object(rup))
      rc = apply_result_updates(res, rup, e);
    const char *flags[] = {"EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled",
                           "RequesterPaysEnabled"};
    for (size_t i = 0; i < 3; i++) {
      json_t *v = json_object_get(up, flags[i]);
      if (json_is_boolean(v))
        json_object_set(cfg, flags[i], v);
    }
    if (json_is_true(json_object_get(up, "RemoveBytesScannedCutoffPerQuery")))
      json_object_del(cfg, "BytesScannedCutoffPerQuery");
    json_t *cutoff = json_object_get(up, "BytesScannedCutoffPerQuery");
    if (rc == 0 && cutoff != NULL) {
      if (!json_is_integer(cutoff) || json_integer_value(cutoff) < 10000000)
        rc = athena__invalid(e, "BytesScannedCutoffPerQuery",
                             "Member must have value greater than or equal to 10000000");
      else
        json_object_set(cfg, "BytesScannedCutoffPerQuery", cutoff);
    }
  }
  return rc;
}

int athena_workgroup_update(athena *a, json_t *in, err *e)
{
  const char *name;
  int rc = need_name(in, "WorkGroup", &name, e);
  if (rc != 0)
    return rc;
  const char *state = json_string_value(json_object_get(in, "State"));
  if (state != NULL && strcmp(state, "ENABLED") != 0 && strcmp(state, "DISABLED") != 0)
    return athena__invalid(e, "State", "Member must satisfy enum value set: [ENABLED, DISABLED]");
  const char *desc = json_string_value(json_object_get(in, "Description"));
  if (desc != NULL && strlen(desc) > 1024)
    return athena__invalid(e, "Description", "Member must have length less than or equal to 1024");
  wg_update u = {.state = state, .desc = desc, .up = json_object_get(in, "ConfigurationUpdates")};
  rc = a->side->wg_update(a, name, apply_update, &u, e);
  if (rc == ERR_NOT_FOUND)
    return err_set(e, ERR_INVALID, "WorkGroup %s is not found.", name);
  return rc;
}

int athena_workgroup_delete(athena *a, const char *name, err *e)
{
  if (name == NULL)
    return athena__invalid(e, "WorkGroup", "Member must not be null");
  if (strcmp(name, "primary") == 0)
    return err_set(e, ERR_INVALID, "the primary WorkGroup cannot be deleted");
  int rc = a->side->wg_delete(a, name, e);
  if (rc == ERR_NOT_FOUND)
    return err_set(e, ERR_INVALID, "WorkGroup %s is not found.", name);
  return rc;
}
