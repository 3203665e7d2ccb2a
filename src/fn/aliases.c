/* fn/aliases.c -- aliases: names that point at one version of a function
 * ($LATEST or a number).
 *
 * Why: clients invoke and wire events to an alias (fn:prod) and move it
 * from version to version, instead of changing every caller.
 *
 * Invariants:
 *   (1) An alias points at a version that existed when it was written; a
 *       version with aliases cannot be deleted (functions.c).
 *   (2) Every change gets a new RevisionId; a change that names an older
 *       one is refused (PreconditionFailed).
 *   (3) LMDB first, then memory, all under write_lock (registry.c (1)).
 *
 * Start reading at fn_alias_create().
 */
#include "fn/internal.h"
#include "fn/registry.h"

#include "base/mem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- aliases ---- */

static void alias_copy(const fn_entry *f, const alias_rec *al, arena *a, fn_alias *out)
{
  out->name = arena_strdup(a, al->name);
  out->arn = arena_sprintf(a, "arn:aws:lambda:%s:%s:function:%s:%s", FN_REGION, FN_ACCOUNT_ID,
                           f->name, al->name);
  out->function_version = arena_strdup(a, al->version);
  out->description = arena_strdup(a, al->description ? al->description : "");
  out->revision_id = arena_strdup(a, al->revision_id);
}

static int alias_write(fn_system *s, const char *function, const alias_rec *al, bool remove,
                       err *e)
{
  char key[KEY_MAX];
  snprintf(key, sizeof key, "a/%s/%s", function, al->name);
  wtxn w = {0};
  int rc = fn__txn_begin(s, &w, e);
  if (rc == 0) {
    if (remove) {
      rc = fn__txn_del(&w, s, key, e);
    } else {
      json_t *j = fn__alias_record(al);
      rc = fn__txn_put_json(&w, s, key, j, e);
      json_decref(j);
    }
  }
  if (rc == 0)
    rc = fn__txn_commit(&w, e);
  fn__txn_abort(&w);
  return rc;
}

static int alias_not_found(const char *function, const char *alias, err *e)
{
  return err_set(e, ERR_NOT_FOUND, "Alias not found: arn:aws:lambda:%s:%s:function:%s:%s",
                 FN_REGION, FN_ACCOUNT_ID, function, alias);
}

int fn_alias_create(fn_system *s, const char *function, const char *alias,
                    const char *version, const char *description, arena *a, fn_alias *out,
                    err *e)
{
  fn__registry_sync(s, function);
  if (alias == NULL || !fn__alias_name_ok(alias))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'name' failed to "
                                   "satisfy constraint: Member must satisfy regular expression "
                                   "pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)", alias ? alias : "");
  if (description != NULL && strlen(description) > 256)
    return err_set(e, ERR_INVALID, "Value at 'description' failed to satisfy constraint: Member "
                                   "must have length less than or equal to 256");
  if (version == NULL)
    return err_set(e, ERR_INVALID, "FunctionVersion is required");
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, function);
  int rc = f ? 0 : fn__not_found(function, e);
  if (rc == 0 && fn__entry_alias(f, alias) != NULL)
    rc = err_set(e, ERR_CONFLICT, "Alias already exists: arn:aws:lambda:%s:%s:function:%s:%s",
                 FN_REGION, FN_ACCOUNT_ID, function, alias);
  if (rc == 0 && fn__conf_of_version(f, version) == NULL)
    rc = err_set(e, ERR_NOT_FOUND, "Function not found: arn:aws:lambda:%s:%s:function:%s:%s",
                 FN_REGION, FN_ACCOUNT_ID, function, version);
  if (rc == 0 && f->naliases >= FN_MAX_ALIASES)
    rc = err_set(e, ERR_INVALID, "function '%s' has %d aliases, the most it can have", function,
                 FN_MAX_ALIASES);
  pthread_mutex_unlock(&s->lock);
  if (rc == 0) {
    alias_rec al = {.name = xstrdup(alias), .version = xstrdup(version),
                    .description = xstrdup(description ? description : "")};
    fn__new_revision(al.revision_id);
    rc = alias_write(s, function, &al, false, e);
    pthread_mutex_lock(&s->lock);
    if (rc == 0) {
      f->aliases = xrealloc(f->aliases, (f->naliases + 1) * sizeof *f->aliases);
      f->aliases[f->naliases++] = al;
      alias_copy(f, &al, a, out);
    } else {
      free(al.name);
      free(al.version);
      free(al.description);
    }
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int fn_alias_update(fn_system *s, const char *function, const char *alias,
                    const char *version, const char *description, const char *revision_id,
                    arena *a, fn_alias *out, err *e)
{
  fn__registry_sync(s, function);
  if (description != NULL && strlen(description) > 256)
    return err_set(e, ERR_INVALID, "Value at 'description' failed to satisfy constraint: Member "
                                   "must have length less than or equal to 256");
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, function);
  int rc = f ? 0 : fn__not_found(function, e);
  alias_rec *cur = rc == 0 ? fn__entry_alias(f, alias) : NULL;
  if (rc == 0 && cur == NULL)
    rc = alias_not_found(function, alias, e);
  if (rc == 0 && revision_id != NULL && *revision_id && strcmp(revision_id, cur->revision_id) != 0)
    rc = err_set(e, ERR_PRECONDITION, "The Revision Id provided does not match the latest "
                                      "Revision Id. Call the GetFunction/GetAlias API to retrieve "
                                      "the latest Revision Id");
  if (rc == 0 && version != NULL && fn__conf_of_version(f, version) == NULL)
    rc = err_set(e, ERR_NOT_FOUND, "Function not found: arn:aws:lambda:%s:%s:function:%s:%s",
                 FN_REGION, FN_ACCOUNT_ID, function, version);
  alias_rec next = {0};
  if (rc == 0) {
    next.name = xstrdup(cur->name);
    next.version = xstrdup(version ? version : cur->version);
    next.description = xstrdup(description ? description : cur->description);
    fn__new_revision(next.revision_id);
  }
  pthread_mutex_unlock(&s->lock);
  if (rc == 0) {
    rc = alias_write(s, function, &next, false, e);
    pthread_mutex_lock(&s->lock);
    if (rc == 0) {
      cur = fn__entry_alias(f, alias);
      free(cur->name);
      free(cur->version);
      free(cur->description);
      *cur = next;
      alias_copy(f, cur, a, out);
    } else {
      free(next.name);
      free(next.version);
      free(next.description);
    }
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int fn_alias_get(fn_system *s, const char *function, const char *alias, arena *a,
                 fn_alias *out, err *e)
{
  fn__registry_sync(s, function);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, function);
  int rc = f ? 0 : fn__not_found(function, e);
  alias_rec *al = rc == 0 ? fn__entry_alias(f, alias) : NULL;
  if (rc == 0 && al == NULL)
    rc = alias_not_found(function, alias, e);
  else if (rc == 0)
    alias_copy(f, al, a, out);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

int fn_alias_delete(fn_system *s, const char *function, const char *alias, err *e)
{
  fn__registry_sync(s, function);
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, function);
  int rc = f ? 0 : fn__not_found(function, e);
  alias_rec *al = rc == 0 ? fn__entry_alias(f, alias) : NULL;
  alias_rec copy = {0};
  if (al != NULL)
    copy = *al;
  pthread_mutex_unlock(&s->lock);
  if (rc == 0 && al == NULL) {
    pthread_mutex_unlock(&s->write_lock);
    return 0; /* Lambda: deleting a missing alias succeeds */
  }
  if (rc == 0)
    rc = alias_write(s, function, &copy, true, e);
  if (rc == 0) {
    pthread_mutex_lock(&s->lock);
    al = fn__entry_alias(f, alias);
    size_t i = (size_t)(al - f->aliases);
    free(al->name);
    free(al->version);
    free(al->description);
    memmove(&f->aliases[i], &f->aliases[i + 1], (f->naliases - i - 1) * sizeof *f->aliases);
    f->naliases--;
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int fn_alias_list(fn_system *s, const char *function, const char *version,
                  const char *marker, size_t max, arena *a, fn_alias **out, size_t *n,
                  const char **next_marker, err *e)
{
  fn__registry_sync(s, function);
  size_t start;
  int rc = fn__page_args(marker, &start, &max, e);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, function);
  if (f == NULL) {
    pthread_mutex_unlock(&s->lock);
    return fn__not_found(function, e);
  }
  fn_alias *res = arena_alloc(a, max * sizeof *res);
  size_t got = 0;
  size_t pos = 0;
  bool more = false;
  for (size_t i = 0; i < f->naliases; i++) {
    if (version != NULL && *version && strcmp(f->aliases[i].version, version) != 0)
      continue;
    if (pos++ < start)
      continue;
    if (got == max) {
      more = true;
      break;
    }
    alias_copy(f, &f->aliases[i], a, &res[got++]);
  }
  pthread_mutex_unlock(&s->lock);
  *out = res;
  *n = got;
  *next_marker = more ? arena_sprintf(a, "%zu", start + got) : NULL;
  return 0;
}
