/* fn/layers.c -- Lambda layers: named, numbered versions of a zip's
 * content that functions stack at /opt (PublishLayerVersion,
 * GetLayerVersion, ListLayers, ListLayerVersions, DeleteLayerVersion and
 * the version's resource policy), and the resolution of a function's
 * Layers setting to the folders its sandbox shows.
 *
 * Why here, beside the functions: a layer's content lives in the same
 * code store as function code (DATA/fn/code/<hex>, extracted once per
 * distinct zip by code.c), its records in the same LMDB environment, and
 * the sweep at open keeps a folder while a function or a layer version
 * still names it.
 *
 * Keys of the registry's database (values are JSON):
 *   l/NAME             {"Next": n}: the number the next version gets
 *   l/NAME/%010u       a version: Description, License, Runtimes,
 *                      Architectures, CodeHex, CodeSha256, CodeSize,
 *                      Unzipped, Created, and its policy (Policy: the
 *                      statements, PolicyRevision)
 *
 * Invariants:
 *   (1) Version numbers only grow: l/NAME outlives its last version, so a
 *       deleted number is never given again (as Lambda).
 *   (2) A function's configuration copies what it needs of each layer
 *       version (ARN, size, code folder) when it is set: deleting the
 *       version later changes nothing for it, and its folder stays (the
 *       sweep asks fn__registry_code_used, which asks the functions too).
 *   (3) Mutations hold write_lock from their checks to their memory
 *       update and commit LMDB before memory changes; reads take s->lock
 *       only (registry.c, invariant (1)).
 *   (4) With --metadata (fn_system.pg) the same records live in PostgreSQL
 *       (pg_registry.c (7)) and memory is their copy, brought up to date
 *       (fn__layers_sync) at the start of every operation; a version's
 *       number is the database's (fn__pg_layer_publish), and a layer's
 *       code is the shared zip, unpacked on a node when a function there
 *       first names it. A policy change writes only over the record it
 *       read (fn__pg_layer_replace): the other node's concurrent change
 *       makes it fail (PreconditionFailedException) rather than be lost.
 *
 * Start reading at fn_layer_publish() and fn__layers_resolve().
 */
#include "fn/internal.h"
#include "fn/registry.h"

#include "base/hash.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAYER_NAME_MAX 140
#define NOT_THERE "The resource you requested does not exist."

typedef struct layer_ver {
  uint32_t number;
  json_t *rec;                /* the l/NAME/%010u record, as stored */
} layer_ver;

struct layer_rec {
  char name[LAYER_NAME_MAX + 1];
  uint32_t next;              /* the next version's number */
  layer_ver *versions;        /* ascending numbers */
  size_t nversions;
  size_t cap;
};

/* ---- names ---- */

static bool name_chars_ok(const char *p, size_t n)
{
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_'))
      return false;
  }
  return true;
}

/* ARN head "arn:PARTITION:lambda:REGION:ACCOUNT:layer:": the rest after
 * it, or NULL. *ours: region and account are this server's. */
static const char *arn_rest(const char *ref, bool *ours)
{
  char part[6][64];
  const char *p = ref;
  for (int i = 0; i < 6; i++) {
    const char *colon = strchr(p, ':');
    if (colon == NULL || (size_t)(colon - p) >= sizeof part[i])
      return NULL;
    memcpy(part[i], p, (size_t)(colon - p));
    part[i][colon - p] = '\0';
    p = colon + 1;
  }
  if (strcmp(part[0], "arn") != 0 || part[1][0] == '\0' || strcmp(part[2], "lambda") != 0 ||
      strcmp(part[5], "layer") != 0)
    return NULL;
  *ours = strcmp(part[3], FN_REGION) == 0 && strcmp(part[4], FN_ACCOUNT_ID) == 0;
  return p;
}

/* A layer name: NAME or its ARN. */
static int name_parse(const char *ref, char out[LAYER_NAME_MAX + 1], err *e)
{
  const char *name = ref ? ref : "";
  bool ours = true;
  if (strncmp(name, "arn:", 4) == 0 && (name = arn_rest(ref, &ours)) == NULL)
    name = "";
  if (strlen(ref ? ref : "") > LAYER_NAME_MAX || !name_chars_ok(name, strlen(name)))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'layerName' failed "
                                   "to satisfy constraint: Member must satisfy regular expression "
                                   "pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:"
                                   "[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+",
                   ref ? ref : "");
  if (!ours)
    return err_set(e, ERR_NOT_FOUND, NOT_THERE);
  snprintf(out, LAYER_NAME_MAX + 1, "%s", name);
  return 0;
}

/* A layer version ARN: its name and number. ERR_INVALID when it is not
 * one; *ours false when it names another region or account. */
static int version_arn_parse(const char *arn, char name[LAYER_NAME_MAX + 1], uint32_t *number,
                             bool *ours, err *e)
{
  const char *rest = strlen(arn) <= LAYER_NAME_MAX ? arn_rest(arn, ours) : NULL;
  const char *colon = rest ? strrchr(rest, ':') : NULL;
  if (colon == NULL || !name_chars_ok(rest, (size_t)(colon - rest)) ||
      !fn__all_digits(colon + 1) || strlen(colon + 1) > 9)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'arn' failed to "
                                   "satisfy constraint: Member must satisfy regular expression "
                                   "pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:"
                                   "[a-zA-Z0-9-_]+:[0-9]+",
                   arn);
  memcpy(name, rest, (size_t)(colon - rest));
  name[colon - rest] = '\0';
  *number = (uint32_t)strtoul(colon + 1, NULL, 10);
  return 0;
}

static char *layer_arn(arena *a, const char *name)
{
  return arena_sprintf(a, "arn:aws:lambda:%s:%s:layer:%s", FN_REGION, FN_ACCOUNT_ID, name);
}

static char *version_arn(arena *a, const char *name, uint32_t number)
{
  return arena_sprintf(a, "arn:aws:lambda:%s:%s:layer:%s:%u", FN_REGION, FN_ACCOUNT_ID, name,
                       number);
}

/* ---- memory (under lock) ---- */

static size_t layer_pos(fn_system *s, const char *name, bool *found)
{
  size_t lo = 0;
  size_t hi = s->nlayers;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(s->layers[mid]->name, name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

static layer_rec *layer_find(fn_system *s, const char *name)
{
  bool found;
  size_t i = layer_pos(s, name, &found);
  return found ? s->layers[i] : NULL;
}

static layer_rec *layer_insert(fn_system *s, const char *name)
{
  bool found;
  size_t i = layer_pos(s, name, &found);
  if (found)
    return s->layers[i];
  if (s->nlayers == s->cap_layers) {
    s->cap_layers = s->cap_layers ? 2 * s->cap_layers : 16;
    s->layers = xrealloc(s->layers, s->cap_layers * sizeof *s->layers);
  }
  memmove(&s->layers[i + 1], &s->layers[i], (s->nlayers - i) * sizeof *s->layers);
  layer_rec *l = xcalloc(1, sizeof *l);
  snprintf(l->name, sizeof l->name, "%s", name);
  l->next = 1;
  s->layers[i] = l;
  s->nlayers++;
  return l;
}

static layer_ver *version_find(layer_rec *l, uint32_t number)
{
  for (size_t i = 0; l != NULL && i < l->nversions; i++)
    if (l->versions[i].number == number)
      return &l->versions[i];
  return NULL;
}

/* Puts (or replaces) version number's record, taking rec. */
static void version_put(layer_rec *l, uint32_t number, json_t *rec)
{
  layer_ver *v = version_find(l, number);
  if (v != NULL) {
    json_decref(v->rec);
    v->rec = rec;
    return;
  }
  if (l->nversions == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 4;
    l->versions = xrealloc(l->versions, l->cap * sizeof *l->versions);
  }
  size_t i = l->nversions;
  while (i > 0 && l->versions[i - 1].number > number)
    i--;
  memmove(&l->versions[i + 1], &l->versions[i], (l->nversions - i) * sizeof *l->versions);
  l->versions[i].number = number;
  l->versions[i].rec = rec;
  l->nversions++;
  if (number >= l->next)
    l->next = number + 1;
}

static void version_remove(layer_rec *l, uint32_t number)
{
  layer_ver *v = version_find(l, number);
  if (v == NULL)
    return;
  json_decref(v->rec);
  size_t i = (size_t)(v - l->versions);
  memmove(&l->versions[i], &l->versions[i + 1], (l->nversions - i - 1) * sizeof *l->versions);
  l->nversions--;
}

static const char *rec_str(json_t *rec, const char *key)
{
  const char *v = json_string_value(json_object_get(rec, key));
  return v ? v : "";
}

static const char **str_list(arena *a, json_t *arr, size_t *n)
{
  *n = json_array_size(arr);
  const char **out = arena_alloc(a, (*n + 1) * sizeof *out);
  for (size_t i = 0; i < *n; i++)
    out[i] = arena_strdup(a, json_string_value(json_array_get(arr, i)));
  return out;
}

static void version_out(const layer_rec *l, const layer_ver *v, arena *a, fn_layer_version *out)
{
  memset(out, 0, sizeof *out);
  json_t *r = v->rec;
  out->name = arena_strdup(a, l->name);
  out->layer_arn = layer_arn(a, l->name);
  out->arn = version_arn(a, l->name, v->number);
  out->version = v->number;
  out->description = arena_strdup(a, rec_str(r, "Description"));
  const char *lic = json_string_value(json_object_get(r, "License"));
  out->license = lic ? arena_strdup(a, lic) : NULL;
  out->runtimes = str_list(a, json_object_get(r, "Runtimes"), &out->nruntimes);
  out->architectures = str_list(a, json_object_get(r, "Architectures"), &out->narchitectures);
  snprintf(out->code.sha256_hex, sizeof out->code.sha256_hex, "%s", rec_str(r, "CodeHex"));
  snprintf(out->code.sha256_b64, sizeof out->code.sha256_b64, "%s", rec_str(r, "CodeSha256"));
  out->code.zip_size = (uint64_t)json_integer_value(json_object_get(r, "CodeSize"));
  out->code.unzipped_size = (uint64_t)json_integer_value(json_object_get(r, "Unzipped"));
  out->created_ms = json_integer_value(json_object_get(r, "Created"));
}

void fn__layers_load(fn_system *s, const char *key, json_t *j)
{
  const char *name = key + 2;
  const char *slash = strchr(name, '/');
  char n[LAYER_NAME_MAX + 1];
  size_t len = slash ? (size_t)(slash - name) : strlen(name);
  if (len == 0 || len > LAYER_NAME_MAX)
    return;
  memcpy(n, name, len);
  n[len] = '\0';
  layer_rec *l = layer_insert(s, n);
  if (slash == NULL) {
    uint32_t next = (uint32_t)json_integer_value(json_object_get(j, "Next"));
    if (next > l->next)
      l->next = next;
  } else {
    version_put(l, (uint32_t)strtoul(slash + 1, NULL, 10), json_incref(j));
  }
}

void fn__layers_free(fn_system *s)
{
  for (size_t i = 0; i < s->nlayers; i++) {
    layer_rec *l = s->layers[i];
    for (size_t k = 0; k < l->nversions; k++)
      json_decref(l->versions[k].rec);
    free(l->versions);
    free(l);
  }
  free(s->layers);
  s->layers = NULL;
  s->nlayers = s->cap_layers = 0;
}

/* With pg, memory is a copy of the shared records (pg_registry.c (7)):
 * reloaded whole when their generation moved. Every operation starts
 * here, so a version published or deleted on another node is seen. */
void fn__layers_sync(fn_system *s)
{
  if (s->pg == NULL)
    return;
  pthread_mutex_lock(&s->lock);
  int64_t have = s->layers_gen;
  pthread_mutex_unlock(&s->lock);
  fn_records r;
  err e = {0};
  if (fn__pg_sync(s, FN_PG_LAYERS, have, &r, &e) != 0)
    return; /* unchanged, or the database is out of reach: memory serves */
  pthread_mutex_lock(&s->lock);
  if (r.gen > s->layers_gen) {
    fn__layers_free(s);
    size_t i;
    json_t *rec;
    json_array_foreach(r.records, i, rec)
    {
      const char *key = json_string_value(json_array_get(rec, 0));
      if (key != NULL && str_starts(key, "l/"))
        fn__layers_load(s, key, json_array_get(rec, 1));
    }
    s->layers_gen = r.gen;
  }
  pthread_mutex_unlock(&s->lock);
  json_decref(r.records);
}

bool fn__layers_code_used(fn_system *s, const char *hex)
{
  for (size_t i = 0; i < s->nlayers; i++)
    for (size_t k = 0; k < s->layers[i]->nversions; k++)
      if (strcmp(rec_str(s->layers[i]->versions[k].rec, "CodeHex"), hex) == 0)
        return true;
  return false;
}

/* ---- LMDB (write_lock held) ---- */

static int put_version(fn_system *s, const char *name, uint32_t number, json_t *rec,
                       json_t *head, err *e)
{
  char key[KEY_MAX];
  wtxn w = {0};
  int rc = fn__txn_begin(s, &w, e);
  if (rc == 0 && head != NULL) {
    snprintf(key, sizeof key, "l/%s", name);
    rc = fn__txn_put_json(&w, s, key, head, e);
  }
  if (rc == 0) {
    snprintf(key, sizeof key, "l/%s/%010u", name, number);
    rc = rec != NULL ? fn__txn_put_json(&w, s, key, rec, e) : fn__txn_del(&w, s, key, e);
  }
  if (rc == 0)
    rc = fn__txn_commit(&w, e);
  fn__txn_abort(&w);
  return rc;
}

/* ---- operations ---- */

static bool runtime_name_ok(const char *r)
{
  size_t n = strlen(r);
  if (n == 0 || n > 32)
    return false;
  for (const char *c = r; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.'))
      return false;
  return true;
}

static bool arch_ok(const char *a)
{
  return strcmp(a, "x86_64") == 0 || strcmp(a, "arm64") == 0;
}

static int settings_check(const fn_layer_settings *set, err *e)
{
  if (set->description != NULL && strlen(set->description) > 256)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value at 'description' failed to "
                                   "satisfy constraint: Member must have length less than or "
                                   "equal to 256");
  if (set->license != NULL && strlen(set->license) > 512)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value at 'licenseInfo' failed to "
                                   "satisfy constraint: Member must have length less than or "
                                   "equal to 512");
  if (set->nruntimes > 15)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value at 'compatibleRuntimes' "
                                   "failed to satisfy constraint: Member must have length less "
                                   "than or equal to 15");
  for (size_t i = 0; i < set->nruntimes; i++)
    if (set->runtimes[i] == NULL || !runtime_name_ok(set->runtimes[i]))
      return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at "
                                     "'compatibleRuntimes' failed to satisfy constraint: Member "
                                     "must satisfy enum value set",
                     set->runtimes[i] ? set->runtimes[i] : "");
  if (set->narchitectures > 2)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value at "
                                   "'compatibleArchitectures' failed to satisfy constraint: "
                                   "Member must have length less than or equal to 2");
  for (size_t i = 0; i < set->narchitectures; i++)
    if (set->architectures[i] == NULL || !arch_ok(set->architectures[i]))
      return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at "
                                     "'compatibleArchitectures' failed to satisfy constraint: "
                                     "Member must satisfy enum value set: [x86_64, arm64]",
                     set->architectures[i] ? set->architectures[i] : "");
  return 0;
}

int fn_layer_publish(fn_system *s, const char *ref, const fn_layer_settings *set,
                     const fn_code *code, arena *a, fn_layer_version *out, err *e)
{
  char name[LAYER_NAME_MAX + 1];
  int rc = name_parse(ref, name, e);
  if (rc == 0)
    rc = settings_check(set, e);
  if (rc != 0)
    return rc;
  json_t *runtimes = json_array();
  for (size_t i = 0; i < set->nruntimes; i++)
    json_array_append_new(runtimes, json_string(set->runtimes[i]));
  json_t *archs = json_array();
  for (size_t i = 0; i < set->narchitectures; i++)
    json_array_append_new(archs, json_string(set->architectures[i]));
  json_t *rec = json_pack("{s:s, s:o, s:o, s:s, s:s, s:I, s:I, s:I}", "Description",
                          set->description ? set->description : "", "Runtimes", runtimes,
                          "Architectures", archs, "CodeHex", code->sha256_hex, "CodeSha256",
                          code->sha256_b64, "CodeSize", (json_int_t)code->zip_size, "Unzipped",
                          (json_int_t)code->unzipped_size, "Created", (json_int_t)time_now_ms());
  if (set->license != NULL)
    json_object_set_new(rec, "License", json_string(set->license));

  pthread_mutex_lock(&s->write_lock);
  fn__layers_sync(s);
  pthread_mutex_lock(&s->lock);
  layer_rec *l = layer_find(s, name);
  uint32_t number = l ? l->next : 1;
  size_t nversions = l ? l->nversions : 0;
  size_t nlayers = s->nlayers;
  pthread_mutex_unlock(&s->lock);
  if (l == NULL && nlayers >= FN_MAX_LAYER_NAMES)
    rc = err_set(e, ERR_INVALID, "there are %d layers, the most tarn keeps", FN_MAX_LAYER_NAMES);
  else if (nversions >= FN_MAX_LAYER_VERSIONS)
    rc = err_set(e, ERR_INVALID, "layer '%s' has %d versions, the most it can have", name,
                 FN_MAX_LAYER_VERSIONS);
  json_t *head = json_pack("{s:I}", "Next", (json_int_t)number + 1);
  if (rc == 0 && s->pg != NULL)
    rc = fn__pg_layer_publish(s, name, rec, &number, e); /* the number is the database's */
  else if (rc == 0)
    rc = put_version(s, name, number, rec, head, e);
  json_decref(head);
  if (rc == 0) {
    pthread_mutex_lock(&s->lock);
    l = layer_insert(s, name);
    version_put(l, number, rec);
    version_out(l, version_find(l, number), a, out);
    pthread_mutex_unlock(&s->lock);
  } else {
    json_decref(rec);
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int fn_layer_get(fn_system *s, const char *ref, uint32_t number, arena *a,
                 fn_layer_version *out, err *e)
{
  char name[LAYER_NAME_MAX + 1];
  int rc = name_parse(ref, name, e);
  if (rc != 0)
    return rc;
  if (number < 1)
    return err_set(e, ERR_INVALID, "Layer Version Cannot be less than 1");
  fn__layers_sync(s);
  pthread_mutex_lock(&s->lock);
  layer_rec *l = layer_find(s, name);
  layer_ver *v = version_find(l, number);
  if (v != NULL)
    version_out(l, v, a, out);
  else
    rc = err_set(e, ERR_NOT_FOUND, NOT_THERE);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

int fn_layer_get_arn(fn_system *s, const char *arn, arena *a, fn_layer_version *out, err *e)
{
  char name[LAYER_NAME_MAX + 1];
  uint32_t number;
  bool ours = false;
  int rc = version_arn_parse(arn ? arn : "", name, &number, &ours, e);
  if (rc != 0)
    return rc;
  if (!ours)
    return err_set(e, ERR_NOT_FOUND, NOT_THERE);
  return fn_layer_get(s, name, number, a, out, e);
}

static bool json_has(json_t *arr, const char *v)
{
  if (v == NULL)
    return true;
  size_t i;
  json_t *x;
  json_array_foreach(arr, i, x)
  {
    if (json_is_string(x) && strcmp(json_string_value(x), v) == 0)
      return true;
  }
  return false;
}

static bool matches(const layer_ver *v, const char *runtime, const char *arch)
{
  return json_has(json_object_get(v->rec, "Runtimes"), runtime) &&
         json_has(json_object_get(v->rec, "Architectures"), arch);
}

int fn_layer_list(fn_system *s, const char *ref, const char *runtime, const char *arch,
                  const char *marker, size_t max, arena *a, fn_layer_version **out, size_t *n,
                  const char **next_marker, err *e)
{
  char name[LAYER_NAME_MAX + 1];
  size_t start;
  int rc = fn__page_args(marker, &start, &max, e);
  if (rc == 0 && ref != NULL)
    rc = name_parse(ref, name, e);
  if (rc == 0 && runtime != NULL && !runtime_name_ok(runtime))
    rc = err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'compatibleRuntime' "
                                 "failed to satisfy constraint: Member must satisfy enum value set",
                 runtime);
  if (rc == 0 && arch != NULL && !arch_ok(arch))
    rc = err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at "
                                 "'compatibleArchitecture' failed to satisfy constraint: Member "
                                 "must satisfy enum value set: [x86_64, arm64]",
                 arch);
  bool none = rc == ERR_NOT_FOUND; /* another account's layer: an empty list */
  if (rc != 0 && !none)
    return rc;
  fn_layer_version *res = arena_alloc(a, (max + 1) * sizeof *res);
  size_t got = 0;
  size_t pos = 0;
  bool more = false;
  fn__layers_sync(s);
  pthread_mutex_lock(&s->lock);
  if (none) {
    /* nothing */
  } else if (ref != NULL) {
    layer_rec *l = layer_find(s, name);
    for (size_t i = l ? l->nversions : 0; i-- > 0 && !more;) {
      if (!matches(&l->versions[i], runtime, arch) || pos++ < start)
        continue;
      if (got == max)
        more = true;
      else
        version_out(l, &l->versions[i], a, &res[got++]);
    }
  } else {
    for (size_t k = 0; k < s->nlayers && !more; k++) {
      layer_rec *l = s->layers[k];
      size_t i = l->nversions;
      while (i > 0 && !matches(&l->versions[i - 1], runtime, arch))
        i--;
      if (i == 0 || pos++ < start)
        continue;
      if (got == max)
        more = true;
      else
        version_out(l, &l->versions[i - 1], a, &res[got++]);
    }
  }
  pthread_mutex_unlock(&s->lock);
  *out = res;
  *n = got;
  *next_marker = more ? arena_sprintf(a, "%zu", start + got) : NULL;
  return 0;
}

int fn_layer_delete(fn_system *s, const char *ref, uint32_t number, err *e)
{
  char name[LAYER_NAME_MAX + 1];
  int rc = name_parse(ref, name, e);
  if (rc == ERR_NOT_FOUND)
    return 0;
  if (rc != 0)
    return rc;
  if (number < 1)
    return err_set(e, ERR_INVALID, "Layer Version Cannot be less than 1");
  pthread_mutex_lock(&s->write_lock);
  fn__layers_sync(s);
  pthread_mutex_lock(&s->lock);
  bool there = version_find(layer_find(s, name), number) != NULL;
  pthread_mutex_unlock(&s->lock);
  if (there)
    rc = put_version(s, name, number, NULL, NULL, e);
  if (there && rc == 0) {
    pthread_mutex_lock(&s->lock);
    version_remove(layer_find(s, name), number);
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

/* ---- the version's policy ---- */

static int no_version(const char *name, uint32_t number, err *e)
{
  char arn[256];
  snprintf(arn, sizeof arn, "arn:aws:lambda:%s:%s:layer:%s:%u", FN_REGION, FN_ACCOUNT_ID, name,
           number);
  return err_set(e, ERR_NOT_FOUND, "Layer version %s does not exist.", arn);
}

static int policy_revision_check(json_t *rec, const char *revision_id, err *e)
{
  if (revision_id != NULL && *revision_id &&
      strcmp(revision_id, rec_str(rec, "PolicyRevision")) != 0)
    return err_set(e, ERR_PRECONDITION, "The Revision Id provided does not match the latest "
                                        "Revision Id. Call the GetLayerPolicy API to retrieve the "
                                        "latest Revision Id");
  return 0;
}

static bool principal_ok(const char *p)
{
  size_t n = strlen(p);
  if (strcmp(p, "*") == 0)
    return true;
  if (n == 12 && fn__all_digits(p))
    return true;
  const char *root = ":root";
  if (!str_starts(p, "arn:aws") || n < strlen(root) || strcmp(p + n - strlen(root), root) != 0)
    return false;
  const char *iam = strstr(p, ":iam::");
  return iam != NULL && iam + 6 + 12 == p + n - strlen(root) &&
         strspn(iam + 6, "0123456789") == 12;
}

static bool org_ok(const char *o)
{
  size_t n = strlen(o);
  if (n < 12 || n > 34 || strncmp(o, "o-", 2) != 0)
    return false;
  for (size_t i = 2; i < n; i++)
    if (!((o[i] >= 'a' && o[i] <= 'z') || (o[i] >= '0' && o[i] <= '9')))
      return false;
  return true;
}

/* The statement as GetLayerVersionPolicy shows it. */
static json_t *statement_json(json_t *st, const char *resource)
{
  const char *principal = rec_str(st, "Principal");
  json_t *p;
  if (strcmp(principal, "*") == 0)
    p = json_string("*");
  else if (fn__all_digits(principal))
    p = json_pack("{s:s++}", "AWS", "arn:aws:iam::", principal, ":root");
  else
    p = json_pack("{s:s}", "AWS", principal);
  json_t *j = json_pack("{s:s, s:s, s:o, s:s, s:s}", "Sid", rec_str(st, "Sid"), "Effect", "Allow",
                        "Principal", p, "Action", rec_str(st, "Action"), "Resource", resource);
  const char *org = json_string_value(json_object_get(st, "OrganizationId"));
  if (org != NULL)
    json_object_set_new(j, "Condition",
                        json_pack("{s:{s:s}}", "StringEquals", "aws:PrincipalOrgID", org));
  return j;
}

static char *dump(arena *a, json_t *j)
{
  char *text = json_dumps(j, JSON_COMPACT);
  if (text == NULL)
    mem_out_of_memory();
  char *out = arena_strdup(a, text);
  free(text);
  return out;
}

static json_t *policy_document(arena *a, const char *name, uint32_t number, json_t *statements)
{
  const char *resource = version_arn(a, name, number);
  json_t *arr = json_array();
  size_t i;
  json_t *st;
  json_array_foreach(statements, i, st)
  {
    json_array_append_new(arr, statement_json(st, resource));
  }
  return json_pack("{s:s, s:s, s:o}", "Version", "2012-10-17", "Id", "default", "Statement", arr);
}

/* Replaces the version's statements (write_lock held): a new record with
 * a new PolicyRevision, committed, then in memory. */
static int policy_store(fn_system *s, const char *name, uint32_t number, json_t *rec,
                        json_t *statements, char revision[37], err *e)
{
  json_t *next = json_deep_copy(rec);
  uuid_v4(revision);
  json_object_set(next, "Policy", statements);
  json_object_set_new(next, "PolicyRevision", json_string(revision));
  int rc;
  if (s->pg != NULL) {
    /* invariant (4): only over the record it was read from */
    char key[KEY_MAX];
    snprintf(key, sizeof key, "l/%s/%010u", name, number);
    rc = fn__pg_layer_replace(s, key, next,
                              json_string_value(json_object_get(rec, "PolicyRevision")), e);
    if (rc == 1)
      rc = err_set(e, ERR_PRECONDITION, "The layer version's policy was changed or the version "
                                        "deleted meanwhile (on another node); retry.");
  } else {
    rc = put_version(s, name, number, next, NULL, e);
  }
  if (rc == 0) {
    pthread_mutex_lock(&s->lock);
    layer_rec *l = layer_find(s, name);
    if (version_find(l, number) != NULL)
      version_put(l, number, json_incref(next));
    pthread_mutex_unlock(&s->lock);
  }
  json_decref(next);
  return rc;
}

/* A copy of the version's record (write_lock held), or NULL. */
static json_t *record_copy(fn_system *s, const char *name, uint32_t number)
{
  fn__layers_sync(s);
  pthread_mutex_lock(&s->lock);
  layer_ver *v = version_find(layer_find(s, name), number);
  json_t *rec = v ? json_deep_copy(v->rec) : NULL;
  pthread_mutex_unlock(&s->lock);
  return rec;
}

int fn_layer_permission_add(fn_system *s, const char *ref, uint32_t number, const char *sid,
                            const char *action, const char *principal, const char *org,
                            const char *revision_id, arena *a, const char **statement,
                            const char **new_revision, err *e)
{
  char name[LAYER_NAME_MAX + 1];
  int rc = name_parse(ref, name, e);
  if (rc != 0)
    return rc;
  if (sid == NULL || strlen(sid) > 100 || !name_chars_ok(sid, strlen(sid)))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'statementId' "
                                   "failed to satisfy constraint: Member must satisfy regular "
                                   "expression pattern: ([a-zA-Z0-9-_]+)",
                   sid ? sid : "");
  if (action == NULL || strcmp(action, "lambda:GetLayerVersion") != 0)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'action' failed to "
                                   "satisfy constraint: Member must satisfy regular expression "
                                   "pattern: lambda:GetLayerVersion",
                   action ? action : "");
  if (principal == NULL || !principal_ok(principal))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'principal' failed "
                                   "to satisfy constraint: Member must satisfy regular expression "
                                   "pattern: \\d{12}|\\*|arn:(aws[a-zA-Z-]*):iam::\\d{12}:root",
                   principal ? principal : "");
  if (org != NULL && !org_ok(org))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'organizationId' "
                                   "failed to satisfy constraint: Member must satisfy regular "
                                   "expression pattern: o-[a-z0-9]{10,32}",
                   org);
  pthread_mutex_lock(&s->write_lock);
  json_t *rec = record_copy(s, name, number);
  json_t *statements = NULL;
  if (rec == NULL)
    rc = no_version(name, number, e);
  if (rc == 0)
    rc = policy_revision_check(rec, revision_id, e);
  if (rc == 0) {
    statements = json_deep_copy(json_object_get(rec, "Policy"));
    if (statements == NULL)
      statements = json_array();
    size_t i;
    json_t *st;
    json_array_foreach(statements, i, st)
    {
      if (strcmp(rec_str(st, "Sid"), sid) == 0)
        rc = err_set(e, ERR_CONFLICT, "The statement id (%s) provided already exists. Please "
                                      "provide a new statement id, or remove the existing "
                                      "statement.",
                     sid);
    }
  }
  json_t *st = NULL;
  if (rc == 0) {
    st = json_pack("{s:s, s:s, s:s}", "Sid", sid, "Action", action, "Principal", principal);
    if (org != NULL)
      json_object_set_new(st, "OrganizationId", json_string(org));
    json_array_append(statements, st);
    json_t *doc = policy_document(a, name, number, statements);
    char *text = json_dumps(doc, JSON_COMPACT);
    size_t len = text ? strlen(text) : 0;
    free(text);
    json_decref(doc);
    if (len > FN_MAX_LAYER_POLICY)
      rc = err_set(e, ERR_INVALID, "The final policy size (%zu) is bigger than the limit (%d).",
                   len, FN_MAX_LAYER_POLICY);
  }
  char revision[37];
  if (rc == 0)
    rc = policy_store(s, name, number, rec, statements, revision, e);
  pthread_mutex_unlock(&s->write_lock);
  if (rc == 0) {
    json_t *shown = statement_json(st, version_arn(a, name, number));
    *statement = dump(a, shown);
    json_decref(shown);
    *new_revision = arena_strdup(a, revision);
  }
  json_decref(st);
  json_decref(statements);
  json_decref(rec);
  return rc;
}

int fn_layer_policy_get(fn_system *s, const char *ref, uint32_t number, arena *a,
                        const char **policy, const char **revision_id, err *e)
{
  char name[LAYER_NAME_MAX + 1];
  int rc = name_parse(ref, name, e);
  if (rc != 0)
    return rc;
  json_t *rec = record_copy(s, name, number);
  if (rec == NULL)
    return no_version(name, number, e);
  json_t *statements = json_object_get(rec, "Policy");
  if (json_array_size(statements) == 0) {
    rc = err_set(e, ERR_NOT_FOUND, "No policy is associated with the given resource.");
  } else {
    json_t *doc = policy_document(a, name, number, statements);
    *policy = dump(a, doc);
    json_decref(doc);
    *revision_id = arena_strdup(a, rec_str(rec, "PolicyRevision"));
  }
  json_decref(rec);
  return rc;
}

int fn_layer_permission_remove(fn_system *s, const char *ref, uint32_t number, const char *sid,
                               const char *revision_id, err *e)
{
  char name[LAYER_NAME_MAX + 1];
  int rc = name_parse(ref, name, e);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&s->write_lock);
  json_t *rec = record_copy(s, name, number);
  json_t *statements = NULL;
  if (rec == NULL)
    rc = no_version(name, number, e);
  if (rc == 0)
    rc = policy_revision_check(rec, revision_id, e);
  if (rc == 0) {
    statements = json_deep_copy(json_object_get(rec, "Policy"));
    size_t found = (size_t)-1;
    size_t i;
    json_t *st;
    json_array_foreach(statements, i, st)
    {
      if (strcmp(rec_str(st, "Sid"), sid) == 0)
        found = i;
    }
    if (found == (size_t)-1)
      rc = err_set(e, ERR_NOT_FOUND, "Statement %s is not found in resource policy.", sid);
    else
      json_array_remove(statements, found);
  }
  char revision[37];
  if (rc == 0)
    rc = policy_store(s, name, number, rec, statements, revision, e);
  pthread_mutex_unlock(&s->write_lock);
  json_decref(statements);
  json_decref(rec);
  return rc;
}

/* ---- functions' layers ---- */

int fn__layers_resolve(fn_system *s, const char *const *arns, size_t n, json_t **out, err *e)
{
  if (n > FN_MAX_FUNCTION_LAYERS)
    return err_set(e, ERR_INVALID, "Cannot reference more than %d layers.",
                   FN_MAX_FUNCTION_LAYERS);
  char names[FN_MAX_FUNCTION_LAYERS][LAYER_NAME_MAX + 1];
  uint32_t numbers[FN_MAX_FUNCTION_LAYERS];
  for (size_t i = 0; i < n; i++) {
    bool ours = false;
    int rc = version_arn_parse(arns[i] ? arns[i] : "", names[i], &numbers[i], &ours, e);
    if (rc != 0)
      return err_set(e, ERR_INVALID, "1 validation error detected: Value '[%s]' at 'layers' "
                                     "failed to satisfy constraint: Member must satisfy "
                                     "constraint: [Member must have length less than or equal to "
                                     "140, Member must have length greater than or equal to 1, "
                                     "Member must satisfy regular expression pattern: "
                                     "arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:"
                                     "[a-zA-Z0-9-_]+:[0-9]+]",
                     arns[i] ? arns[i] : "");
    if (!ours)
      return err_set(e, ERR_INVALID, "Layer version %s does not exist.", arns[i]);
    for (size_t k = 0; k < i; k++)
      if (strcmp(names[k], names[i]) == 0)
        return err_set(e, ERR_INVALID, "Two different versions of the same layer are not allowed "
                                       "to be referenced in the same function. %s and %s are "
                                       "versions of the same layer.",
                       arns[k], arns[i]);
  }
  json_t *arr = json_array();
  arena *a = arena_new();
  int rc = 0;
  if (n > 0)
    fn__layers_sync(s);
  pthread_mutex_lock(&s->lock);
  for (size_t i = 0; i < n && rc == 0; i++) {
    layer_ver *v = version_find(layer_find(s, names[i]), numbers[i]);
    if (v == NULL) {
      rc = err_set(e, ERR_INVALID, "Layer version %s does not exist.", arns[i]);
      break;
    }
    json_array_append_new(
        arr, json_pack("{s:s, s:O, s:O, s:O}", "Arn", version_arn(a, names[i], numbers[i]),
                       "CodeSize", json_object_get(v->rec, "CodeSize"), "CodeHex",
                       json_object_get(v->rec, "CodeHex"), "Unzipped",
                       json_object_get(v->rec, "Unzipped")));
  }
  pthread_mutex_unlock(&s->lock);
  arena_free(a);
  /* with pg, a layer published on another node is unpacked here first */
  for (size_t i = 0; i < json_array_size(arr) && rc == 0; i++)
    rc = fn__code_ensure(s, json_string_value(json_object_get(json_array_get(arr, i), "CodeHex")),
                         e);
  if (rc != 0) {
    json_decref(arr);
    return rc;
  }
  *out = arr;
  return 0;
}

int fn__layers_check_size(uint64_t code_unzipped, const char *code_dir, json_t *layers, err *e)
{
  uint64_t total = code_unzipped ? code_unzipped : fn__tree_size(code_dir);
  size_t i;
  json_t *l;
  json_array_foreach(layers, i, l)
  {
    total += (uint64_t)json_integer_value(json_object_get(l, "Unzipped"));
  }
  if (total > FN_MAX_UNZIPPED)
    return err_set(e, ERR_INVALID, "Function code combined with layers exceeds the maximum "
                                   "allowed size of %u bytes. The actual size is %llu bytes.",
                   FN_MAX_UNZIPPED, (unsigned long long)total);
  return 0;
}
