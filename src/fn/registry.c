/* fn/registry.c -- the function registry: the in-memory table of
 * functions, their confs, and the LMDB records that make them durable in
 * DATA/fn/meta; loaded at open, served from memory.
 *
 * Why memory: the invoke path looks a function up on every call; a hash
 * table under fn_system.lock costs a few hundred nanoseconds, an LMDB read
 * and a JSON parse tens of microseconds. The registry is small (configs of
 * a few KB), so all of it is loaded at open.
 *
 * Keys of the LMDB database (values are JSON):
 *   f/NAME               the function: $LATEST's configuration, NextVersion,
 *                        Reserved, Created, PublishedRevision
 *   v/NAME/%010u         a published version's configuration
 *   a/NAME/ALIAS         an alias
 *   l/NAME               a layer: NextVersion (layers.c)
 *   l/NAME/%010u         a layer version (layers.c)
 *   q/%016llx            a queued Event (invoke.c)
 *
 * Invariants:
 *   (1) Every mutation holds write_lock from its checks to its memory update,
 *       so checks and the commit see the same state; memory changes only
 *       after the LMDB commit succeeded (what a client was told is durable).
 *   (2) A conf never changes once made; $LATEST's is replaced, not edited.
 *   (3) fn_entry structs are freed only when deleted and unused (users == 0),
 *       so an invocation in flight keeps its entry alive.
 *
 * The operations on it live beside it, one concern a file: names.c (names
 * and validation), functions.c (functions and versions), aliases.c,
 * concurrency.c; registry.h is what they share.
 *
 * With --metadata (fn_system.pg) the same records live in PostgreSQL
 * (pg_registry.c): a write transaction (wtxn) collects its operations and
 * commits them there in one transaction; nothing is loaded at open, and
 * fn__registry_sync() brings one function's memory up to date with the
 * shared records before each call that looks it up, so every node sees
 * what any node wrote. Layers' records are there too, kept in memory by
 * layers.c (fn__layers_sync).
 *
 * Start reading at fn__registry_open() and load_all().
 */
#include "fn/internal.h"
#include "fn/registry.h"

#include "base/lmdb_env.h"
#include "base/mem.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAP_SIZE (8ull << 30)

/* ---- confs ---- */

static const char *or_empty(const char *s)
{
  return s ? s : "";
}

static const char *conf_strdup(conf *c, const char *s)
{
  return arena_strdup(c->a, s ? s : "");
}

static bool user_sets(const fn_config *f, const char *name)
{
  for (size_t i = 0; i < f->nenv; i++)
    if (strcmp(f->env[i].name, name) == 0)
      return true;
  return false;
}

/* The parts of the environment every instance of c gets (but its stream).
 * The search paths are Lambda's (its "Defined runtime environment
 * variables" and layer paths): /opt/bin, /opt/lib, /opt/python (and its
 * lib/python3.X/site-packages), /opt/nodejs/node_modules (and
 * nodejsNN/node_modules), /opt/ruby/gems/X.Y.0 and /opt/ruby/lib; a
 * variable of the function's own replaces ours. */
static void conf_environment(fn_system *s, conf *c)
{
  const fn_config *f = &c->cfg;
  size_t cap = 40 + f->nenv;
  const char **env = arena_alloc(c->a, (cap + 2) * sizeof *env);
  size_t n = 0;
#define ENV(...) env[n++] = arena_sprintf(c->a, __VA_ARGS__)
  ENV("AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001");
  ENV("AWS_ENDPOINT_URL=http://127.0.0.1:9000");
  ENV("_HANDLER=%s", f->handler);
  ENV("LAMBDA_TASK_ROOT=/var/task");
  ENV("LAMBDA_RUNTIME_DIR=/var/runtime");
  ENV("AWS_LAMBDA_FUNCTION_NAME=%s", f->name);
  ENV("AWS_LAMBDA_FUNCTION_VERSION=%s", f->version);
  ENV("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%u", f->memory_mb);
  ENV("AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/%s", f->name);
  ENV("AWS_LAMBDA_INITIALIZATION_TYPE=on-demand");
  ENV("AWS_REGION=%s", FN_REGION);
  ENV("AWS_DEFAULT_REGION=%s", FN_REGION);
  if (!str_starts(f->runtime, "provided"))
    ENV("AWS_EXECUTION_ENV=AWS_Lambda_%s", f->runtime);
  ENV("TZ=:UTC");
  ENV("LANG=en_US.UTF-8");
  if (!user_sets(f, "PATH"))
    ENV("PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin");
  if (!user_sets(f, "LD_LIBRARY_PATH"))
    ENV("LD_LIBRARY_PATH=/var/task/lib:/opt/lib");
  if (str_starts(f->runtime, "python") && !user_sets(f, "PYTHONPATH")) {
    /* the runtime's python3.X, and the one the host's interpreter is */
    const char *own = f->runtime;
    const char *host = s->host_python[0] && strcmp(s->host_python, own) != 0 ? s->host_python
                                                                              : NULL;
    ENV("PYTHONPATH=/opt/python/lib/%s/site-packages%s%s%s:/opt/python", own,
        host ? ":/opt/python/lib/" : "", host ? host : "", host ? "/site-packages" : "");
  }
  if (str_starts(f->runtime, "nodejs") && !user_sets(f, "NODE_PATH")) {
    int major = atoi(f->runtime + 6);
    /* Lambda's, but /var/runtime itself: tarn's client is no module to require */
    ENV("NODE_PATH=/opt/nodejs/node%d/node_modules:/opt/nodejs/node_modules:"
        "/var/runtime/node_modules:/var/task", major);
  }
  if (str_starts(f->runtime, "ruby")) {
    /* Lambda's gem and library paths: the runtime's X.Y.0, and the host's */
    const char *own = f->runtime + 4;
    const char *host = s->host_ruby[0] && !str_starts(s->host_ruby, own) ? s->host_ruby : NULL;
    if (!user_sets(f, "GEM_PATH"))
      ENV("GEM_PATH=/var/task/vendor/bundle/ruby/%s.0:/opt/ruby/gems/%s.0%s%s", own, own,
          host ? ":/opt/ruby/gems/" : "", host ? host : "");
    if (!user_sets(f, "RUBYLIB"))
      ENV("RUBYLIB=/var/task:/opt/ruby/lib");
  }
  ENV("HOME=/tmp");
  char ak[FN_KEY_MAX];
  char sk[FN_KEY_MAX];
  fn__credentials_for(s, f, c->key_nonce, ak, sk);
  snprintf(c->access_key, sizeof c->access_key, "%s", ak);
  ENV("AWS_ACCESS_KEY_ID=%s", ak);
  ENV("AWS_SECRET_ACCESS_KEY=%s", sk);
  for (size_t i = 0; i < f->nenv; i++)
    ENV("%s=%s", f->env[i].name, f->env[i].value);
#undef ENV
  env[n] = NULL;
  c->envp = env;
  c->nenvp = n;

  const char **argv = arena_alloc(c->a, 12 * sizeof *argv);
  if (str_starts(f->runtime, "python")) {
    argv[0] = "/usr/bin/python3";
    argv[1] = "/var/runtime/python/bootstrap.py";
  } else if (str_starts(f->runtime, "nodejs")) {
    argv[0] = "/usr/bin/node";
    argv[1] = "/var/runtime/node/bootstrap.js";
  } else if (str_starts(f->runtime, "ruby")) {
    argv[0] = "/usr/bin/ruby";
    argv[1] = "/var/runtime/ruby/bootstrap.rb";
  } else if (str_starts(f->runtime, "java")) {
    /* Lambda's flags for a fast start; the heap sized from the function's
       memory, since the JVM cannot see the sandbox's cgroup limit */
    size_t i = 0;
    argv[i++] = "/usr/bin/java";
    argv[i++] = "-XX:+UseSerialGC";
    argv[i++] = "-XX:TieredStopAtLevel=1";
    argv[i++] = "-Xshare:auto";
    argv[i++] = "-XX:-UsePerfData";
    argv[i++] = arena_sprintf(c->a, "-Xmx%um", f->memory_mb * 3 / 5);
    if (s->java_runtime_dir != NULL) {
      c->runtime_dir = s->java_runtime_dir; /* the client compiled at build time */
      argv[i++] = "-cp";
      argv[i++] = "/var/runtime/tarn-runtime.jar";
      argv[i++] = "TarnRuntime";
    } else {
      argv[i++] = "/var/runtime/java/TarnRuntime.java";
    }
    argv[i] = NULL;
  } else {
    argv[0] = "/var/task/bootstrap";
  }
  c->argv = argv;
}

/* The configuration's layers, from its Layers record. */
static void conf_layers(fn_system *s, conf *c, json_t *layers)
{
  fn_config *f = &c->cfg;
  size_t n = json_array_size(layers);
  f->layers = arena_alloc(c->a, (n + 1) * sizeof *f->layers);
  c->opt_dirs = arena_alloc(c->a, (n + 1) * sizeof *c->opt_dirs);
  for (size_t i = 0; i < n; i++) {
    json_t *l = json_array_get(layers, i);
    f->layers[i].arn = conf_strdup(c, json_string_value(json_object_get(l, "Arn")));
    f->layers[i].code_size = (uint64_t)json_integer_value(json_object_get(l, "CodeSize"));
    c->opt_dirs[i] = arena_sprintf(c->a, "%s/%s", s->code_dir,
                                   or_empty(json_string_value(json_object_get(l, "CodeHex"))));
  }
  f->nlayers = n;
  c->nopt_dirs = n;
  c->layers = n > 0 ? json_incref(layers) : NULL;
}

/* A conf for function `name`, version (number 0 = $LATEST), from JSON. */
conf *fn__conf_from_json(fn_system *s, const char *name, uint32_t number, json_t *j)
{
  conf *c = xcalloc(1, sizeof *c);
  c->a = arena_new();
  c->refs = 1;
  c->number = number;
  fn_config *f = &c->cfg;
  f->name = conf_strdup(c, name);
  f->version = number ? arena_sprintf(c->a, "%u", number) : "$LATEST";
  f->arn = number ? arena_sprintf(c->a, "arn:aws:lambda:%s:%s:function:%s:%u", FN_REGION,
                                  FN_ACCOUNT_ID, name, number)
                  : arena_sprintf(c->a, "arn:aws:lambda:%s:%s:function:%s", FN_REGION,
                                  FN_ACCOUNT_ID, name);
  f->runtime = conf_strdup(c, json_string_value(json_object_get(j, "Runtime")));
  f->handler = conf_strdup(c, json_string_value(json_object_get(j, "Handler")));
  f->role = conf_strdup(c, json_string_value(json_object_get(j, "Role")));
  f->description = conf_strdup(c, json_string_value(json_object_get(j, "Description")));
  f->architecture = conf_strdup(c, json_string_value(json_object_get(j, "Architecture")));
  f->memory_mb = (uint32_t)json_integer_value(json_object_get(j, "MemorySize"));
  f->timeout_s = (uint32_t)json_integer_value(json_object_get(j, "Timeout"));
  f->ephemeral_mb = (uint32_t)json_integer_value(json_object_get(j, "Ephemeral"));
  json_t *env = json_object_get(j, "Env");
  f->nenv = json_object_size(env);
  f->env = arena_alloc(c->a, (f->nenv + 1) * sizeof *f->env);
  size_t i = 0;
  const char *k;
  json_t *v;
  json_object_foreach(env, k, v)
  {
    f->env[i].name = conf_strdup(c, k);
    f->env[i].value = conf_strdup(c, json_string_value(v));
    i++;
  }
  snprintf(f->code.sha256_hex, sizeof f->code.sha256_hex, "%s",
           or_empty(json_string_value(json_object_get(j, "CodeHex"))));
  snprintf(f->code.sha256_b64, sizeof f->code.sha256_b64, "%s",
           or_empty(json_string_value(json_object_get(j, "CodeSha256"))));
  f->code.zip_size = (uint64_t)json_integer_value(json_object_get(j, "CodeSize"));
  f->last_modified_ms = json_integer_value(json_object_get(j, "LastModified"));
  f->revision_id = conf_strdup(c, json_string_value(json_object_get(j, "RevisionId")));
  f->reserved_concurrency = -1;
  c->key_nonce = conf_strdup(c, json_string_value(json_object_get(j, "KeyNonce")));
  f->code.unzipped_size = (uint64_t)json_integer_value(json_object_get(j, "CodeUnzipped"));
  c->code_dir = arena_sprintf(c->a, "%s/%s", s->code_dir, f->code.sha256_hex);
  conf_layers(s, c, json_object_get(j, "Layers"));
  conf_environment(s, c);
  return c;
}

json_t *fn__conf_to_json(const conf *c)
{
  const fn_config *f = &c->cfg;
  json_t *env = json_object();
  for (size_t i = 0; i < f->nenv; i++)
    json_object_set_new(env, f->env[i].name, json_string(f->env[i].value));
  json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:s, s:s, s:I, s:I, s:s, s:s}",
                   "Runtime", f->runtime, "Handler", f->handler, "Role", f->role,
                   "Description", f->description, "Architecture", f->architecture,
                   "MemorySize", (json_int_t)f->memory_mb, "Timeout", (json_int_t)f->timeout_s,
                   "Ephemeral", (json_int_t)f->ephemeral_mb, "Env", env, "CodeHex",
                   f->code.sha256_hex, "CodeSha256", f->code.sha256_b64, "CodeSize",
                   (json_int_t)f->code.zip_size, "LastModified", (json_int_t)f->last_modified_ms,
                   "RevisionId", f->revision_id, "KeyNonce", c->key_nonce);
  if (f->code.unzipped_size > 0)
    json_object_set_new(j, "CodeUnzipped", json_integer((json_int_t)f->code.unzipped_size));
  if (c->layers != NULL)
    json_object_set(j, "Layers", c->layers);
  return j;
}

void fn__conf_ref(conf *c)
{
  c->refs++;
}

void fn__conf_unref(conf *c)
{
  if (c == NULL || --c->refs > 0)
    return;
  fn__template_drop(c);
  json_decref(c->layers);
  arena_free(c->a);
  free(c);
}

/* Copies a conf's config into a (reserved from the entry). */
void fn__config_copy(const fn_entry *f, const conf *c, arena *a, fn_config *out)
{
  const fn_config *src = &c->cfg;
  *out = *src;
  out->name = arena_strdup(a, src->name);
  out->arn = arena_strdup(a, src->arn);
  out->version = arena_strdup(a, src->version);
  out->runtime = arena_strdup(a, src->runtime);
  out->handler = arena_strdup(a, src->handler);
  out->role = arena_strdup(a, src->role);
  out->description = arena_strdup(a, src->description);
  out->architecture = arena_strdup(a, src->architecture);
  out->revision_id = arena_strdup(a, src->revision_id);
  out->env = arena_alloc(a, (src->nenv + 1) * sizeof *out->env);
  for (size_t i = 0; i < src->nenv; i++) {
    out->env[i].name = arena_strdup(a, src->env[i].name);
    out->env[i].value = arena_strdup(a, src->env[i].value);
  }
  out->reserved_concurrency = f->reserved;
  out->layers = arena_alloc(a, (src->nlayers + 1) * sizeof *out->layers);
  for (size_t i = 0; i < src->nlayers; i++) {
    out->layers[i].arn = arena_strdup(a, src->layers[i].arn);
    out->layers[i].code_size = src->layers[i].code_size;
  }
}

/* ---- the table ---- */

static size_t bucket_of(const char *name)
{
  uint32_t h = 2166136261u;
  for (const unsigned char *c = (const unsigned char *)name; *c; c++)
    h = (h ^ *c) * 16777619u;
  return h % FN_HASH_BUCKETS;
}

size_t fn__registry_bucket(const char *name)
{
  return bucket_of(name);
}

fn_entry *fn__registry_find(fn_system *s, const char *name)
{
  for (fn_entry *f = s->table[bucket_of(name)]; f != NULL; f = f->hnext)
    if (strcmp(f->name, name) == 0)
      return f;
  return NULL;
}

/* An entry in no table. */
static fn_entry *entry_alloc(const char *name)
{
  fn_entry *f = xcalloc(1, sizeof *f);
  snprintf(f->name, sizeof f->name, "%s", name);
  f->reserved = -1;
  f->next_version = 1;
  f->log_fd = -1;
  pthread_mutex_init(&f->log_lock, NULL);
  return f;
}

fn_entry *fn__entry_new(fn_system *s, const char *name)
{
  fn_entry *f = entry_alloc(name);
  size_t b = bucket_of(name);
  f->hnext = s->table[b];
  s->table[b] = f;
  s->nfunctions++;
  return f;
}

static void entry_free(fn_entry *f)
{
  fn__conf_unref(f->latest);
  for (size_t i = 0; i < f->nversions; i++)
    fn__conf_unref(f->versions[i]);
  free(f->versions);
  for (size_t i = 0; i < f->naliases; i++) {
    free(f->aliases[i].name);
    free(f->aliases[i].version);
    free(f->aliases[i].description);
  }
  free(f->aliases);
  for (pool *p = f->pools, *next; p != NULL; p = next) {
    next = p->next;
    fn__conf_unref(p->conf);
    free(p);
  }
  fn__logs_close(f);
  pthread_mutex_destroy(&f->log_lock);
  free(f);
}

/* Takes f out of the table; freed now or when its last user leaves. */
void fn__entry_unlink(fn_system *s, fn_entry *f)
{
  fn_entry **pp = &s->table[bucket_of(f->name)];
  while (*pp != f)
    pp = &(*pp)->hnext;
  *pp = f->hnext;
  s->nfunctions--;
  if (f->reserved >= 0)
    s->reserved_sum -= (uint32_t)f->reserved;
  f->deleted = true;
  fn__sched_drop_entry(s, f);
  if (f->users == 0)
    entry_free(f);
}

void fn__entry_release(fn_system *s, fn_entry *f)
{
  if (--f->users == 0 && f->deleted)
    entry_free(f);
}

static conf *entry_version(fn_entry *f, uint32_t number)
{
  size_t lo = 0;
  size_t hi = f->nversions;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (f->versions[mid]->number < number)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < f->nversions && f->versions[lo]->number == number ? f->versions[lo] : NULL;
}

alias_rec *fn__entry_alias(fn_entry *f, const char *name)
{
  for (size_t i = 0; i < f->naliases; i++)
    if (strcmp(f->aliases[i].name, name) == 0)
      return &f->aliases[i];
  return NULL;
}

conf *fn__conf_of_version(fn_entry *f, const char *version)
{
  if (strcmp(version, "$LATEST") == 0)
    return f->latest;
  if (!fn__all_digits(version) || strlen(version) > 10)
    return NULL;
  return entry_version(f, (uint32_t)strtoul(version, NULL, 10));
}

int fn__registry_resolve(fn_entry *f, const char *qualifier, conf **out, const char **version,
                     err *e)
{
  const char *q = qualifier ? qualifier : "$LATEST";
  conf *c;
  if (strcmp(q, "$LATEST") == 0 || fn__all_digits(q)) {
    c = fn__conf_of_version(f, q);
  } else {
    alias_rec *al = fn__entry_alias(f, q);
    c = al ? fn__conf_of_version(f, al->version) : NULL;
  }
  if (c == NULL)
    return err_set(e, ERR_NOT_FOUND, "Function not found: arn:aws:lambda:%s:%s:function:%s:%s",
                   FN_REGION, FN_ACCOUNT_ID, f->name, q);
  *out = c;
  *version = c->cfg.version;
  return 0;
}

/* Does c run the code hex, as its own or as one of its layers? */
static bool conf_uses(const conf *c, const char *hex)
{
  if (strcmp(c->cfg.code.sha256_hex, hex) == 0)
    return true;
  size_t i;
  json_t *l;
  json_array_foreach(c->layers, i, l)
  {
    const char *h = json_string_value(json_object_get(l, "CodeHex"));
    if (h != NULL && strcmp(h, hex) == 0)
      return true;
  }
  return false;
}

bool fn__registry_code_used(fn_system *s, const char *hex)
{
  for (size_t b = 0; b < FN_HASH_BUCKETS; b++)
    for (fn_entry *f = s->table[b]; f != NULL; f = f->hnext) {
      if (conf_uses(f->latest, hex))
        return true;
      for (size_t i = 0; i < f->nversions; i++)
        if (conf_uses(f->versions[i], hex))
          return true;
    }
  return fn__layers_code_used(s, hex);
}

/* ---- LMDB ---- */

static int db_error(int rc, const char *what, err *e)
{
  char doing[64];
  snprintf(doing, sizeof doing, "%s the function registry", what);
  return lmdb_error(e, rc, doing);
}

int fn__txn_begin(fn_system *s, wtxn *w, err *e)
{
  w->s = s;
  if (s->pg != NULL) {
    w->ops = json_array();
    return 0;
  }
  int rc = mdb_txn_begin(s->env, NULL, 0, &w->txn);
  return rc ? db_error(rc, "write", e) : 0;
}

static int txn_put(wtxn *w, fn_system *s, const char *key, json_t *j, bool fresh, err *e)
{
  if (w->ops != NULL) {
    json_array_append_new(w->ops, json_pack("[s, s, O]", fresh ? "n" : "p", key, j));
    return 0;
  }
  char *text = json_dumps(j, JSON_COMPACT);
  if (text == NULL)
    mem_out_of_memory();
  MDB_val k = {strlen(key), (void *)key};
  MDB_val v = {strlen(text), text};
  int rc = mdb_put(w->txn, s->dbi, &k, &v, fresh ? MDB_NOOVERWRITE : 0);
  free(text);
  if (rc == MDB_KEYEXIST)
    return err_set(e, ERR_CONFLICT, "'%s' exists in the function registry", key);
  return rc ? db_error(rc, "write", e) : 0;
}

int fn__txn_put_json(wtxn *w, fn_system *s, const char *key, json_t *j, err *e)
{
  return txn_put(w, s, key, j, false, e);
}

int fn__txn_put_new_json(wtxn *w, fn_system *s, const char *key, json_t *j, err *e)
{
  return txn_put(w, s, key, j, true, e);
}

int fn__txn_del(wtxn *w, fn_system *s, const char *key, err *e)
{
  if (w->ops != NULL) {
    json_array_append_new(w->ops, json_pack("[s, s]", "d", key));
    return 0;
  }
  MDB_val k = {strlen(key), (void *)key};
  int rc = mdb_del(w->txn, s->dbi, &k, NULL);
  return rc && rc != MDB_NOTFOUND ? db_error(rc, "write", e) : 0;
}

/* Deletes every key that starts with prefix. */
int fn__txn_del_prefix(wtxn *w, fn_system *s, const char *prefix, err *e)
{
  if (w->ops != NULL) {
    json_array_append_new(w->ops, json_pack("[s, s]", "x", prefix));
    return 0;
  }
  MDB_cursor *cur;
  int rc = mdb_cursor_open(w->txn, s->dbi, &cur);
  if (rc)
    return db_error(rc, "write", e);
  size_t plen = strlen(prefix);
  MDB_val k = {plen, (void *)prefix};
  MDB_val v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0) {
    if ((rc = mdb_cursor_del(cur, 0)) != 0)
      break;
    rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
    if (rc == MDB_NOTFOUND || rc == EINVAL)
      rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  return rc && rc != MDB_NOTFOUND ? db_error(rc, "write", e) : 0;
}

int fn__txn_commit(wtxn *w, err *e)
{
  if (w->ops != NULL) {
    int rc = fn__pg_commit(w->s, w->ops, e);
    json_decref(w->ops);
    w->ops = NULL;
    return rc;
  }
  int rc = mdb_txn_commit(w->txn);
  w->txn = NULL;
  return rc ? db_error(rc, "commit", e) : 0;
}

void fn__txn_abort(wtxn *w)
{
  if (w->txn != NULL)
    mdb_txn_abort(w->txn);
  w->txn = NULL;
  json_decref(w->ops);
  w->ops = NULL;
}

json_t *fn__function_record(const fn_entry *f, const conf *latest, uint32_t next_version,
                               int reserved, const char *published_revision)
{
  json_t *j = fn__conf_to_json(latest);
  json_object_set_new(j, "NextVersion", json_integer(next_version));
  json_object_set_new(j, "Reserved", json_integer(reserved));
  json_object_set_new(j, "Created", json_integer(f ? f->created_ms : time_now_ms()));
  if (published_revision != NULL)
    json_object_set_new(j, "PublishedRevision", json_string(published_revision));
  return j;
}

/* Writes fr as the function's f/NAME record, in a transaction of its own. */
int fn__function_record_put(fn_system *s, const char *name, json_t *fr, err *e)
{
  char key[KEY_MAX];
  snprintf(key, sizeof key, "f/%s", name);
  wtxn w = {0};
  int rc;
  if ((rc = fn__txn_begin(s, &w, e)) == 0 && (rc = fn__txn_put_json(&w, s, key, fr, e)) == 0)
    rc = fn__txn_commit(&w, e);
  fn__txn_abort(&w);
  return rc;
}

/* The revision of $LATEST that the last version was published from. */
char *fn__published_revision_of(fn_system *s, const char *name)
{
  if (s->pg != NULL) {
    char key[KEY_MAX];
    snprintf(key, sizeof key, "f/%s", name);
    json_t *j = fn__pg_get(s, key);
    const char *r = json_string_value(json_object_get(j, "PublishedRevision"));
    char *out = r != NULL ? xstrdup(r) : NULL;
    json_decref(j);
    return out;
  }
  MDB_txn *txn;
  if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
    return NULL;
  char key[KEY_MAX];
  snprintf(key, sizeof key, "f/%s", name);
  MDB_val k = {strlen(key), key};
  MDB_val v;
  char *out = NULL;
  if (mdb_get(txn, s->dbi, &k, &v) == 0) {
    json_t *j = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    const char *r = json_string_value(json_object_get(j, "PublishedRevision"));
    if (r != NULL)
      out = xstrdup(r);
    json_decref(j);
  }
  mdb_txn_abort(txn);
  return out;
}

json_t *fn__alias_record(const alias_rec *al)
{
  return json_pack("{s:s, s:s, s:s}", "FunctionVersion", al->version, "Description",
                   al->description ? al->description : "", "RevisionId", al->revision_id);
}

static int load_all(fn_system *s, err *e)
{
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc)
    return db_error(rc, "read", e);
  MDB_cursor *cur;
  if ((rc = mdb_cursor_open(txn, s->dbi, &cur)) != 0) {
    mdb_txn_abort(txn);
    return db_error(rc, "read", e);
  }
  MDB_val k, v;
  char key[KEY_MAX];
  /* Keys sort as a/..., f/..., q/..., v/...: functions come before their
   * versions but after their aliases, so aliases are kept for a second pass. */
  json_t *aliases = json_array();
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size >= sizeof key || k.mv_size < 3)
      continue;
    memcpy(key, k.mv_data, k.mv_size);
    key[k.mv_size] = '\0';
    json_t *j = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (j == NULL)
      continue;
    if (key[0] == 'f') {
      fn_entry *f = fn__entry_new(s, key + 2);
      f->latest = fn__conf_from_json(s, key + 2, 0, j);
      f->next_version = (uint32_t)json_integer_value(json_object_get(j, "NextVersion"));
      f->reserved = (int)json_integer_value(json_object_get(j, "Reserved"));
      f->created_ms = json_integer_value(json_object_get(j, "Created"));
      if (f->reserved >= 0)
        s->reserved_sum += (uint32_t)f->reserved;
    } else if (key[0] == 'v') {
      char *slash = strchr(key + 2, '/');
      if (slash != NULL) {
        *slash = '\0';
        fn_entry *f = fn__registry_find(s, key + 2);
        if (f != NULL) {
          if (f->nversions == f->cap_versions) {
            f->cap_versions = f->cap_versions ? 2 * f->cap_versions : 8;
            f->versions = xrealloc(f->versions, f->cap_versions * sizeof *f->versions);
          }
          f->versions[f->nversions++] =
              fn__conf_from_json(s, key + 2, (uint32_t)strtoul(slash + 1, NULL, 10), j);
        }
      }
    } else if (key[0] == 'a') {
      json_object_set_new(j, "_key", json_string(key));
      json_array_append(aliases, j);
    } else if (key[0] == 'l') {
      fn__layers_load(s, key, j);
    }
    json_decref(j);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  size_t i;
  json_t *j;
  json_array_foreach(aliases, i, j)
  {
    char *kk = xstrdup(json_string_value(json_object_get(j, "_key")));
    char *slash = strchr(kk + 2, '/');
    fn_entry *f = NULL;
    if (slash != NULL) {
      *slash = '\0';
      f = fn__registry_find(s, kk + 2);
    }
    if (f != NULL) {
      f->aliases = xrealloc(f->aliases, (f->naliases + 1) * sizeof *f->aliases);
      alias_rec *al = &f->aliases[f->naliases++];
      al->name = xstrdup(slash + 1);
      al->version = xstrdup((json_string_value(json_object_get(j, "FunctionVersion")) ? json_string_value(json_object_get(j, "FunctionVersion")) : "$LATEST"));
      al->description = xstrdup(or_empty(json_string_value(json_object_get(j, "Description"))));
      snprintf(al->revision_id, sizeof al->revision_id, "%s",
               or_empty(json_string_value(json_object_get(j, "RevisionId"))));
    }
    free(kk);
  }
  json_decref(aliases);
  return 0;
}

/* ---- the shared registry (pg_registry.c (2)) ---- */

/* An entry in no table from one function's records ([key, value]... by
 * key); its latest is NULL when there is no f/ record (deleted). */
static fn_entry *entry_parse(fn_system *s, const char *name, json_t *records)
{
  fn_entry *d = entry_alloc(name);
  size_t i;
  json_t *rec;
  json_array_foreach(records, i, rec)
  {
    const char *key = json_string_value(json_array_get(rec, 0));
    json_t *j = json_array_get(rec, 1);
    if (key == NULL || strlen(key) < 3 || key[1] != '/')
      continue;
    if (key[0] == 'f') {
      fn__conf_unref(d->latest);
      d->latest = fn__conf_from_json(s, name, 0, j);
      d->next_version = (uint32_t)json_integer_value(json_object_get(j, "NextVersion"));
      d->reserved = (int)json_integer_value(json_object_get(j, "Reserved"));
      d->created_ms = json_integer_value(json_object_get(j, "Created"));
    } else if (key[0] == 'v') {
      const char *slash = strrchr(key, '/');
      if (d->nversions == d->cap_versions) {
        d->cap_versions = d->cap_versions ? 2 * d->cap_versions : 8;
        d->versions = xrealloc(d->versions, d->cap_versions * sizeof *d->versions);
      }
      d->versions[d->nversions++] =
          fn__conf_from_json(s, name, (uint32_t)strtoul(slash + 1, NULL, 10), j);
    } else if (key[0] == 'a') {
      const char *slash = strchr(key + 2, '/');
      if (slash == NULL)
        continue;
      d->aliases = xrealloc(d->aliases, (d->naliases + 1) * sizeof *d->aliases);
      alias_rec *al = &d->aliases[d->naliases++];
      const char *v = json_string_value(json_object_get(j, "FunctionVersion"));
      al->name = xstrdup(slash + 1);
      al->version = xstrdup(v ? v : "$LATEST");
      al->description = xstrdup(or_empty(json_string_value(json_object_get(j, "Description"))));
      snprintf(al->revision_id, sizeof al->revision_id, "%s",
               or_empty(json_string_value(json_object_get(j, "RevisionId"))));
    }
  }
  return d;
}

/* Makes f (in the table) hold what d holds; d's parts are taken or freed.
 * Under lock. */
static void entry_merge(fn_system *s, fn_entry *f, fn_entry *d)
{
  if (strcmp(f->latest->cfg.revision_id, d->latest->cfg.revision_id) != 0) {
    conf *old = f->latest;
    f->latest = d->latest;
    for (pool *p = f->pools; p != NULL; p = p->next)
      if (strcmp(p->version, "$LATEST") == 0) {
        fn__conf_ref(f->latest);
        fn__conf_unref(p->conf);
        p->conf = f->latest;
        fn__sched_recycle(s, p);
      }
    fn__conf_unref(old);
  } else {
    fn__conf_unref(d->latest);
  }
  d->latest = NULL;
  /* versions never change: keep the confs memory has, drop the deleted */
  for (size_t i = 0; i < d->nversions; i++) {
    conf *have = entry_version(f, d->versions[i]->number);
    if (have != NULL) {
      fn__conf_ref(have);
      fn__conf_unref(d->versions[i]);
      d->versions[i] = have;
    }
  }
  for (size_t i = 0; i < f->nversions; i++) {
    if (entry_version(d, f->versions[i]->number) == NULL)
      for (pool *p = f->pools; p != NULL; p = p->next)
        if (p->conf == f->versions[i])
          fn__sched_recycle(s, p);
    fn__conf_unref(f->versions[i]);
  }
  free(f->versions);
  f->versions = d->versions;
  f->nversions = d->nversions;
  f->cap_versions = d->cap_versions;
  d->versions = NULL;
  d->nversions = 0;
  for (size_t i = 0; i < f->naliases; i++) {
    free(f->aliases[i].name);
    free(f->aliases[i].version);
    free(f->aliases[i].description);
  }
  free(f->aliases);
  f->aliases = d->aliases;
  f->naliases = d->naliases;
  d->aliases = NULL;
  d->naliases = 0;
  f->next_version = d->next_version;
  f->created_ms = d->created_ms;
  if (f->reserved != d->reserved) { /* as concurrency.c moves its runs */
    if (f->reserved >= 0) {
      s->reserved_sum -= (uint32_t)f->reserved;
      s->unreserved_active += f->active;
    }
    f->reserved = d->reserved;
    if (f->reserved >= 0) {
      s->reserved_sum += (uint32_t)f->reserved;
      s->unreserved_active -= f->active;
    }
  }
}

/* Unpacks c's code and its layers' here (with pg), as far as it can. */
static void conf_ensure(fn_system *s, const conf *c, err *e)
{
  fn__code_ensure(s, c->cfg.code.sha256_hex, e);
  size_t i;
  json_t *l;
  json_array_foreach(c->layers, i, l)
  {
    const char *h = json_string_value(json_object_get(l, "CodeHex"));
    if (h != NULL)
      fn__code_ensure(s, h, e);
  }
}

void fn__registry_sync(fn_system *s, const char *name)
{
  if (s->pg == NULL || !fn__name_ok(name))
    return;
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, name);
  int64_t have = f != NULL ? f->gen : -1;
  pthread_mutex_unlock(&s->lock);
  fn_records r;
  err e = {0};
  if (fn__pg_sync(s, name, have, &r, &e) != 0)
    return; /* unchanged, or the database is out of reach: memory serves */
  fn_entry *d = entry_parse(s, name, r.records);
  json_decref(r.records);
  /* invariant (3) there: the code is here before the conf is in memory */
  if (d->latest != NULL) {
    conf_ensure(s, d->latest, &e);
    for (size_t i = 0; i < d->nversions; i++)
      conf_ensure(s, d->versions[i], &e);
  }
  pthread_mutex_lock(&s->lock);
  f = fn__registry_find(s, name);
  if (f != NULL && r.gen <= f->gen) {
    /* a newer state came meanwhile */
  } else if (d->latest == NULL) {
    if (f != NULL)
      fn__entry_unlink(s, f);
  } else if (f == NULL) {
    if (s->nfunctions < FN_MAX_FUNCTIONS) {
      f = fn__entry_new(s, name);
      f->latest = d->latest;
      f->versions = d->versions;
      f->nversions = d->nversions;
      f->cap_versions = d->cap_versions;
      f->aliases = d->aliases;
      f->naliases = d->naliases;
      f->next_version = d->next_version;
      f->reserved = d->reserved;
      f->created_ms = d->created_ms;
      f->gen = r.gen;
      if (f->reserved >= 0)
        s->reserved_sum += (uint32_t)f->reserved;
      d->latest = NULL;
      d->versions = NULL;
      d->nversions = 0;
      d->aliases = NULL;
      d->naliases = 0;
    }
  } else {
    entry_merge(s, f, d);
    f->gen = r.gen;
  }
  entry_free(d);
  pthread_mutex_unlock(&s->lock);
}

void fn__registry_sync_all(fn_system *s)
{
  if (s->pg == NULL)
    return;
  fn__layers_sync(s);
  json_t *gens = NULL;
  err e = {0};
  if (fn__pg_generations(s, &gens, &e) != 0)
    return;
  const char *name;
  json_t *g;
  json_object_foreach(gens, name, g)
  {
    pthread_mutex_lock(&s->lock);
    fn_entry *f = fn__registry_find(s, name);
    bool same = f != NULL ? f->gen == json_integer_value(g) : false;
    pthread_mutex_unlock(&s->lock);
    if (!same)
      fn__registry_sync(s, name);
  }
  json_decref(gens);
}

int fn__registry_open(fn_system *s, err *e)
{
  if (s->pg != NULL) {
    int rc = fn__pg_open(s, e);
    if (rc == 0)
      rc = fn__slots_open(s, e);
    if (rc == 0)
      fn__registry_sync_all(s);
    return rc;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/meta", s->fn_dir);
  int rc = fn__mkdirs(path, e);
  if (rc)
    return rc;
  lmdb_env_options o = {.map_size = MAP_SIZE, .max_readers = 1024};
  if ((rc = lmdb_env_open(&s->env, path, &o, "the function registry", e)) != 0)
    return rc;
  MDB_txn *txn;
  if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
    return db_error(rc, "open", e);
  if ((rc = mdb_dbi_open(txn, NULL, 0, &s->dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0)
    return db_error(rc, "open", e);
  pthread_mutex_lock(&s->lock);
  rc = load_all(s, e);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

void fn__registry_close(fn_system *s)
{
  fn__layers_free(s);
  for (size_t b = 0; b < FN_HASH_BUCKETS; b++) {
    for (fn_entry *f = s->table[b], *next; f != NULL; f = next) {
      next = f->hnext;
      entry_free(f);
    }
    s->table[b] = NULL;
  }
  if (s->env != NULL)
    mdb_env_close(s->env);
  s->env = NULL;
}
