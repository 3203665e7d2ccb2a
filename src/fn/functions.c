/* fn/functions.c -- functions and their versions: create, get, list,
 * update (code, configuration), delete; publish and list versions.
 *
 * Why one file: a function's $LATEST and its published versions change
 * together (CreateFunction and UpdateFunctionCode may publish, DeleteFunction
 * takes every version with it), through the same publish_locked().
 *
 * Invariants:
 *   (1) Each operation holds write_lock from its checks to its memory
 *       update, takes s->lock only for short looks and the final change,
 *       and never commits LMDB under s->lock.
 *   (2) $LATEST is replaced by a new conf, never edited; the instances of
 *       the old one are recycled (replace_latest).
 *   (3) Publishing with nothing changed since the last version returns that
 *       version (PublishedRevision in the function record); numbers only
 *       grow (NextVersion), even after a version is deleted.
 *
 * Start reading at fn_function_create().
 */
#include "fn/internal.h"
#include "fn/registry.h"

#include "base/hash.h"
#include "base/mem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- functions ---- */

void fn__new_revision(char out[37])
{
  uuid_v4(out);
}

/* A conf from a base (or defaults) with settings, code and layers (a
 * Layers record from fn__layers_resolve, or NULL to keep) applied. */
static conf *conf_make(fn_system *s, const char *name, const conf *base, const fn_settings *set,
                       const fn_code *code, json_t *layers)
{
  json_t *j = base ? fn__conf_to_json(base) : json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
                                                          "Runtime", "", "Handler", "", "Role", "",
                                                          "Description", "", "Architecture",
                                                          "x86_64", "MemorySize", (json_int_t)128,
                                                          "Timeout", (json_int_t)3, "Ephemeral",
                                                          (json_int_t)512);
  if (set != NULL) {
    if (set->runtime)
      json_object_set_new(j, "Runtime", json_string(set->runtime));
    if (set->handler)
      json_object_set_new(j, "Handler", json_string(set->handler));
    if (set->role)
      json_object_set_new(j, "Role", json_string(set->role));
    if (set->description)
      json_object_set_new(j, "Description", json_string(set->description));
    if (set->architecture)
      json_object_set_new(j, "Architecture", json_string(set->architecture));
    if (set->memory_mb)
      json_object_set_new(j, "MemorySize", json_integer(set->memory_mb));
    if (set->timeout_s)
      json_object_set_new(j, "Timeout", json_integer(set->timeout_s));
    if (set->ephemeral_mb)
      json_object_set_new(j, "Ephemeral", json_integer(set->ephemeral_mb));
    if (set->set_env) {
      json_t *env = json_object();
      for (size_t i = 0; i < set->nenv; i++)
        json_object_set_new(env, set->env[i].name,
                            json_string(set->env[i].value ? set->env[i].value : ""));
      json_object_set_new(j, "Env", env);
    }
  }
  if (code != NULL) {
    json_object_set_new(j, "CodeHex", json_string(code->sha256_hex));
    json_object_set_new(j, "CodeSha256", json_string(code->sha256_b64));
    json_object_set_new(j, "CodeSize", json_integer((json_int_t)code->zip_size));
    json_object_set_new(j, "CodeUnzipped", json_integer((json_int_t)code->unzipped_size));
  }
  if (layers != NULL) {
    if (json_array_size(layers) > 0)
      json_object_set(j, "Layers", layers);
    else
      json_object_del(j, "Layers");
  }
  char rev[37];
  fn__new_revision(rev);
  json_object_set_new(j, "RevisionId", json_string(rev));
  if (base == NULL) { /* a new function: keys no earlier function of its name had */
    char nonce[37];
    fn__new_revision(nonce);
    json_object_set_new(j, "KeyNonce", json_string(nonce));
  }
  json_object_set_new(j, "LastModified", json_integer(time_now_ms()));
  conf *c = fn__conf_from_json(s, name, 0, j);
  json_decref(j);
  return c;
}

int fn__not_found(const char *name, err *e)
{
  return err_set(e, ERR_NOT_FOUND, "Function not found: arn:aws:lambda:%s:%s:function:%s",
                 FN_REGION, FN_ACCOUNT_ID, name);
}

/* Publishes f's $LATEST as version next (write_lock held, s->lock not). */
static int publish_locked(fn_system *s, fn_entry *f, const char *description, arena *a,
                          fn_config *out, err *e)
{
  pthread_mutex_lock(&s->lock);
  conf *latest = f->latest;
  fn__conf_ref(latest);
  uint32_t number = f->next_version;
  int reserved = f->reserved;
  size_t nversions = f->nversions;
  conf *last = nversions ? f->versions[nversions - 1] : NULL;
  if (last != NULL)
    fn__conf_ref(last);
  pthread_mutex_unlock(&s->lock);

  char *published = fn__published_revision_of(s, f->name);
  int rc = 0;
  if (last != NULL && published != NULL && strcmp(published, latest->cfg.revision_id) == 0) {
    /* Nothing changed since the last version: Lambda returns that one. */
    pthread_mutex_lock(&s->lock);
    fn__config_copy(f, last, a, out);
    fn__conf_unref(last);
    fn__conf_unref(latest);
    pthread_mutex_unlock(&s->lock);
    free(published);
    return 0;
  }
  free(published);
  if (nversions >= FN_MAX_VERSIONS) {
    rc = err_set(e, ERR_INVALID, "function '%s' has %d versions, the most it can have", f->name,
                 FN_MAX_VERSIONS);
    goto out;
  }
  json_t *j = fn__conf_to_json(latest);
  char rev[37];
  fn__new_revision(rev);
  json_object_set_new(j, "RevisionId", json_string(rev));
  json_object_set_new(j, "LastModified", json_integer(time_now_ms()));
  if (description != NULL)
    json_object_set_new(j, "Description", json_string(description));
  conf *v = fn__conf_from_json(s, f->name, number, j);
  wtxn w = {0};
  char key[KEY_MAX];
  snprintf(key, sizeof key, "v/%s/%010u", f->name, number);
  json_t *fr = fn__function_record(f, latest, number + 1, reserved, latest->cfg.revision_id);
  if ((rc = fn__txn_begin(s, &w, e)) == 0 && (rc = fn__txn_put_new_json(&w, s, key, j, e)) == 0) {
    snprintf(key, sizeof key, "f/%s", f->name);
    if ((rc = fn__txn_put_json(&w, s, key, fr, e)) == 0)
      rc = fn__txn_commit(&w, e);
  }
  fn__txn_abort(&w);
  json_decref(j);
  json_decref(fr);
  pthread_mutex_lock(&s->lock);
  if (rc == 0) {
    if (f->nversions == f->cap_versions) {
      f->cap_versions = f->cap_versions ? 2 * f->cap_versions : 8;
      f->versions = xrealloc(f->versions, f->cap_versions * sizeof *f->versions);
    }
    f->versions[f->nversions++] = v;
    f->next_version = number + 1;
    fn__config_copy(f, v, a, out);
  } else {
    fn__conf_unref(v);
  }
  pthread_mutex_unlock(&s->lock);
out:
  pthread_mutex_lock(&s->lock);
  fn__conf_unref(latest);
  fn__conf_unref(last);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

int fn_function_create(fn_system *s, const char *name, const fn_settings *set,
                       const fn_code *code, bool publish, arena *a, fn_config *out, err *e)
{
  if (!fn__name_ok(name))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'functionName' "
                                   "failed to satisfy constraint: Member must satisfy regular "
                                   "expression pattern: [a-zA-Z0-9-_]+", name);
  int rc = fn__validate(set, true, e);
  if (rc)
    return rc;
  if (code == NULL || code->sha256_hex[0] == '\0')
    return err_set(e, ERR_INVALID, "Code is required");
  if (!str_starts(set->runtime, "provided") && (set->handler == NULL || !*set->handler))
    return err_set(e, ERR_INVALID, "Handler is required for .zip file packages");
  json_t *layers = NULL;
  if (set->set_layers && (rc = fn__layers_resolve(s, set->layers, set->nlayers, &layers, e)) != 0)
    return rc;
  char code_dir[4096];
  snprintf(code_dir, sizeof code_dir, "%s/%s", s->code_dir, code->sha256_hex);
  if ((rc = fn__layers_check_size(code->unzipped_size, code_dir, layers, e)) != 0) {
    json_decref(layers);
    return rc;
  }
  fn__registry_sync(s, name);
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  bool exists = fn__registry_find(s, name) != NULL;
  size_t count = s->nfunctions;
  pthread_mutex_unlock(&s->lock);
  if (exists || count >= FN_MAX_FUNCTIONS) {
    pthread_mutex_unlock(&s->write_lock);
    json_decref(layers);
    if (exists)
      return err_set(e, ERR_CONFLICT, "Function already exist: %s", name);
    return err_set(e, ERR_INVALID, "there are %d functions, the most tarn keeps", FN_MAX_FUNCTIONS);
  }
  conf *c = conf_make(s, name, NULL, set, code, layers);
  json_decref(layers);
  json_t *fr = fn__function_record(NULL, c, 1, -1, NULL);
  char key[KEY_MAX];
  snprintf(key, sizeof key, "f/%s", name);
  wtxn w = {0};
  if ((rc = fn__txn_begin(s, &w, e)) == 0 && (rc = fn__txn_put_new_json(&w, s, key, fr, e)) == 0)
    rc = fn__txn_commit(&w, e);
  fn__txn_abort(&w);
  json_decref(fr);
  if (rc == ERR_CONFLICT) /* another node created it meanwhile */
    err_set(e, ERR_CONFLICT, "Function already exist: %s", name);
  if (rc != 0) {
    pthread_mutex_lock(&s->lock);
    fn__conf_unref(c);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->write_lock);
    return rc;
  }
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__entry_new(s, name);
  f->latest = c;
  f->created_ms = time_now_ms();
  fn__config_copy(f, c, a, out);
  pthread_mutex_unlock(&s->lock);
  if (publish)
    rc = publish_locked(s, f, NULL, a, out, e);
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int fn_function_get(fn_system *s, const char *name, const char *qualifier, arena *a,
                    fn_config *out, err *e)
{
  fn__registry_sync(s, name);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, name);
  int rc;
  if (f == NULL) {
    rc = fn__not_found(name, e);
  } else {
    conf *c;
    const char *v;
    rc = fn__registry_resolve(f, qualifier, &c, &v, e);
    if (rc == 0)
      fn__config_copy(f, c, a, out);
  }
  pthread_mutex_unlock(&s->lock);
  return rc;
}

static int cmp_names(const void *x, const void *y)
{
  return strcmp((*(fn_entry *const *)x)->name, (*(fn_entry *const *)y)->name);
}

int fn_function_list(fn_system *s, const char *marker, size_t max, bool all_versions,
                     arena *a, fn_config **out, size_t *n, const char **next_marker, err *e)
{
  fn__registry_sync_all(s);
  size_t start;
  int rc = fn__page_args(marker, &start, &max, e);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&s->lock);
  fn_entry **all = xmalloc((s->nfunctions + 1) * sizeof *all);
  size_t count = 0;
  for (size_t b = 0; b < FN_HASH_BUCKETS; b++)
    for (fn_entry *f = s->table[b]; f != NULL; f = f->hnext)
      all[count++] = f;
  qsort(all, count, sizeof *all, cmp_names);
  /* Positions count configurations: with all_versions, each version too. */
  fn_config *res = arena_alloc(a, max * sizeof *res);
  size_t pos = 0;
  size_t got = 0;
  bool more = false;
  for (size_t i = 0; i < count && !more; i++) {
    size_t nconf = 1 + (all_versions ? all[i]->nversions : 0);
    for (size_t k = 0; k < nconf; k++, pos++) {
      if (pos < start)
        continue;
      if (got == max) {
        more = true;
        break;
      }
      conf *c = k == 0 ? all[i]->latest : all[i]->versions[k - 1];
      fn__config_copy(all[i], c, a, &res[got++]);
    }
  }
  pthread_mutex_unlock(&s->lock);
  free(all);
  *out = res;
  *n = got;
  *next_marker = more ? arena_sprintf(a, "%zu", start + got) : NULL;
  return 0;
}

/* Replaces $LATEST with c (write_lock held); recycles its instances. */
static int replace_latest(fn_system *s, fn_entry *f, conf *c, err *e)
{
  pthread_mutex_lock(&s->lock);
  uint32_t next_version = f->next_version;
  int reserved = f->reserved;
  pthread_mutex_unlock(&s->lock);
  char *published = fn__published_revision_of(s, f->name);
  json_t *fr = fn__function_record(f, c, next_version, reserved, published);
  free(published);
  int rc = fn__function_record_put(s, f->name, fr, e);
  json_decref(fr);
  pthread_mutex_lock(&s->lock);
  if (rc == 0) {
    conf *old = f->latest;
    f->latest = c;
    for (pool *p = f->pools; p != NULL; p = p->next)
      if (strcmp(p->version, "$LATEST") == 0) {
        fn__conf_ref(c);
        fn__conf_unref(p->conf);
        p->conf = c;
        fn__sched_recycle(s, p);
      }
    fn__conf_unref(old);
  } else {
    fn__conf_unref(c);
  }
  pthread_mutex_unlock(&s->lock);
  return rc;
}

static int check_revision(fn_entry *f, const char *revision_id, err *e)
{
  if (revision_id != NULL && *revision_id && strcmp(revision_id, f->latest->cfg.revision_id) != 0)
    return err_set(e, ERR_PRECONDITION, "The Revision Id provided does not match the latest "
                                        "Revision Id. Call the GetFunction/GetAlias API to "
                                        "retrieve the latest Revision Id");
  return 0;
}

int fn_function_update_code(fn_system *s, const char *name, const fn_code *code,
                            const char *revision_id, bool publish, arena *a, fn_config *out,
                            err *e)
{
  fn__registry_sync(s, name);
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, name);
  int rc = f ? check_revision(f, revision_id, e) : fn__not_found(name, e);
  conf *base = f ? f->latest : NULL;
  if (rc == 0)
    fn__conf_ref(base);
  pthread_mutex_unlock(&s->lock);
  if (rc == 0) {
    char code_dir[4096];
    snprintf(code_dir, sizeof code_dir, "%s/%s", s->code_dir, code->sha256_hex);
    bool fits = fn__layers_check_size(code->unzipped_size, code_dir, base->layers, e) == 0;
    rc = fits ? replace_latest(s, f, conf_make(s, name, base, NULL, code, NULL), e) : e->code;
    pthread_mutex_lock(&s->lock);
    fn__conf_unref(base);
    if (rc == 0)
      fn__config_copy(f, f->latest, a, out);
    pthread_mutex_unlock(&s->lock);
    if (rc == 0 && publish)
      rc = publish_locked(s, f, NULL, a, out, e);
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int fn_function_update_config(fn_system *s, const char *name, const fn_settings *set,
                              arena *a, fn_config *out, err *e)
{
  fn__registry_sync(s, name);
  int rc = fn__validate(set, false, e);
  if (rc)
    return rc;
  json_t *layers = NULL;
  if (set->set_layers && (rc = fn__layers_resolve(s, set->layers, set->nlayers, &layers, e)) != 0)
    return rc;
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, name);
  rc = f ? check_revision(f, set->revision_id, e) : fn__not_found(name, e);
  conf *base = f ? f->latest : NULL;
  if (rc == 0)
    fn__conf_ref(base);
  pthread_mutex_unlock(&s->lock);
  if (rc == 0) {
    bool fits = layers == NULL || fn__layers_check_size(base->cfg.code.unzipped_size,
                                                        base->code_dir, layers, e) == 0;
    rc = fits ? replace_latest(s, f, conf_make(s, name, base, set, NULL, layers), e) : e->code;
    pthread_mutex_lock(&s->lock);
    fn__conf_unref(base);
    if (rc == 0)
      fn__config_copy(f, f->latest, a, out);
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_unlock(&s->write_lock);
  json_decref(layers);
  return rc;
}

int fn_function_delete(fn_system *s, const char *name, const char *qualifier, err *e)
{
  fn__registry_sync(s, name);
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, name);
  int rc = f ? 0 : fn__not_found(name, e);
  conf *v = NULL;
  if (rc == 0 && qualifier != NULL && strcmp(qualifier, "$LATEST") == 0)
    rc = err_set(e, ERR_INVALID, "$LATEST version cannot be deleted without deleting the function.");
  else if (rc == 0 && qualifier != NULL && !fn__all_digits(qualifier))
    rc = err_set(e, ERR_INVALID, "Deletion of aliases is not supported (use DeleteAlias)");
  else if (rc == 0 && qualifier != NULL) {
    v = fn__conf_of_version(f, qualifier);
    if (v == NULL)
      rc = err_set(e, ERR_NOT_FOUND, "Function not found: %s:%s", f->latest->cfg.arn, qualifier);
    for (size_t i = 0; rc == 0 && i < f->naliases; i++)
      if (strcmp(f->aliases[i].version, qualifier) == 0)
        rc = err_set(e, ERR_CONFLICT, "Unable to delete version because the following aliases "
                                         "reference it: [%s]", f->aliases[i].name);
  }
  pthread_mutex_unlock(&s->lock);
  if (rc != 0) {
    pthread_mutex_unlock(&s->write_lock);
    return rc;
  }
  wtxn w = {0};
  char key[KEY_MAX];
  if ((rc = fn__txn_begin(s, &w, e)) == 0) {
    if (v != NULL) {
      snprintf(key, sizeof key, "v/%s/%010u", name, v->number);
      rc = fn__txn_del(&w, s, key, e);
    } else {
      snprintf(key, sizeof key, "f/%s", name);
      rc = fn__txn_del(&w, s, key, e);
      snprintf(key, sizeof key, "v/%s/", name);
      if (rc == 0)
        rc = fn__txn_del_prefix(&w, s, key, e);
      snprintf(key, sizeof key, "a/%s/", name);
      if (rc == 0)
        rc = fn__txn_del_prefix(&w, s, key, e);
    }
    if (rc == 0)
      rc = fn__txn_commit(&w, e);
  }
  fn__txn_abort(&w);
  if (rc == 0) {
    pthread_mutex_lock(&s->lock);
    if (v != NULL) {
      size_t i = 0;
      while (f->versions[i] != v)
        i++;
      memmove(&f->versions[i], &f->versions[i + 1], (f->nversions - i - 1) * sizeof *f->versions);
      f->nversions--;
      for (pool *p = f->pools; p != NULL; p = p->next)
        if (p->conf == v)
          fn__sched_recycle(s, p);
      fn__conf_unref(v);
    } else {
      fn__entry_unlink(s, f);
    }
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

/* ---- versions ---- */

int fn_version_publish(fn_system *s, const char *name, const char *code_sha256,
                       const char *description, const char *revision_id, arena *a,
                       fn_config *out, err *e)
{
  fn__registry_sync(s, name);
  if (description != NULL && strlen(description) > 256)
    return err_set(e, ERR_INVALID, "Value at 'description' failed to satisfy constraint: Member "
                                   "must have length less than or equal to 256");
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, name);
  int rc = f ? check_revision(f, revision_id, e) : fn__not_found(name, e);
  if (rc == 0 && code_sha256 != NULL && *code_sha256 &&
      strcmp(code_sha256, f->latest->cfg.code.sha256_b64) != 0)
    rc = err_set(e, ERR_INVALID, "CodeSHA256 (%s) is different from current CodeSHA256 in "
                                 "$LATEST (%s). Please try again with the current CodeSHA256.",
                 code_sha256, f->latest->cfg.code.sha256_b64);
  pthread_mutex_unlock(&s->lock);
  if (rc == 0)
    rc = publish_locked(s, f, description, a, out, e);
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int fn_version_list(fn_system *s, const char *name, const char *marker, size_t max, arena *a,
                    fn_config **out, size_t *n, const char **next_marker, err *e)
{
  fn__registry_sync(s, name);
  size_t start;
  int rc = fn__page_args(marker, &start, &max, e);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, name);
  if (f == NULL) {
    pthread_mutex_unlock(&s->lock);
    return fn__not_found(name, e);
  }
  size_t total = 1 + f->nversions;
  fn_config *res = arena_alloc(a, max * sizeof *res);
  size_t got = 0;
  for (size_t i = start; i < total && got < max; i++)
    fn__config_copy(f, i == 0 ? f->latest : f->versions[i - 1], a, &res[got++]);
  *next_marker = start + got < total ? arena_sprintf(a, "%zu", start + got) : NULL;
  pthread_mutex_unlock(&s->lock);
  *out = res;
  *n = got;
  return 0;
}
