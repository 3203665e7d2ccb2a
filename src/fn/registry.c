/* fn/registry.c -- functions, versions, aliases and reserved concurrency:
 * durable in DATA/fn/meta (LMDB), served from memory.
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
 * Start reading at fn_function_create().
 */
#include "fn/internal.h"

#include "base/hash.h"
#include "base/lmdb_env.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAP_SIZE (8ull << 30)
#define KEY_MAX 256

static const char *const reserved_env[] = {
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", NULL};

/* ---- names and validation ---- */

static bool name_ok(const char *n)
{
  size_t len = strlen(n);
  if (len == 0 || len > 64)
    return false;
  for (const char *c = n; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '-' || *c == '_'))
      return false;
  return true;
}

static bool all_digits(const char *s)
{
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return false;
  return true;
}

/* A listing's page: the decimal marker (NULL or "": the start) into
 * *start, and max (0 or over 50: 50, as Lambda) into *max. */
static int page_args(const char *marker, size_t *start, size_t *max, err *e)
{
  *start = 0;
  if (marker != NULL && *marker) {
    if (!all_digits(marker))
      return err_set(e, ERR_INVALID, "invalid marker '%s'", marker);
    *start = strtoul(marker, NULL, 10);
  }
  if (*max == 0 || *max > 50)
    *max = 50;
  return 0;
}

static bool alias_name_ok(const char *n)
{
  return strlen(n) <= 128 && name_ok(n) && !all_digits(n);
}

static bool qualifier_ok(const char *q)
{
  if (strcmp(q, "$LATEST") == 0)
    return true;
  if (all_digits(q))
    return strlen(q) <= 10;
  return alias_name_ok(q);
}

int fn_name_parse(const char *ref, const char *qualifier, arena *a, const char **name,
                  const char **qual, err *e)
{
  if (ref == NULL || *ref == '\0' || strlen(ref) > 170)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'functionName' "
                                   "failed to satisfy constraint: Member must satisfy regular "
                                   "expression pattern", ref ? ref : "");
  char *parts[8];
  size_t n = 0;
  char *copy = arena_strdup(a, ref);
  for (char *p = copy;;) {
    if (n == 8)
      return err_set(e, ERR_INVALID, "invalid function name '%s'", ref);
    parts[n++] = p;
    char *colon = strchr(p, ':');
    if (colon == NULL)
      break;
    *colon = '\0';
    p = colon + 1;
  }
  const char *nm = NULL;
  const char *q = NULL;
  if (strcmp(parts[0], "arn") == 0) {
    if (n < 7 || n > 8 || strcmp(parts[2], "lambda") != 0 || strcmp(parts[5], "function") != 0)
      return err_set(e, ERR_INVALID, "invalid function ARN '%s'", ref);
    nm = parts[6];
    q = n == 8 ? parts[7] : NULL;
  } else if (n >= 3 && strcmp(parts[1], "function") == 0) {
    if (n > 4)
      return err_set(e, ERR_INVALID, "invalid function name '%s'", ref);
    nm = parts[2];
    q = n == 4 ? parts[3] : NULL;
  } else if (n <= 2) {
    nm = parts[0];
    q = n == 2 ? parts[1] : NULL;
  } else {
    return err_set(e, ERR_INVALID, "invalid function name '%s'", ref);
  }
  if (!name_ok(nm))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'functionName' "
                                   "failed to satisfy constraint: Member must satisfy regular "
                                   "expression pattern", ref);
  if (qualifier != NULL && *qualifier != '\0') {
    if (q != NULL && strcmp(q, qualifier) != 0)
      return err_set(e, ERR_INVALID, "The derived qualifier from the function name does not "
                                     "match the specified qualifier.");
    q = qualifier;
  }
  if (q != NULL && !qualifier_ok(q))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'qualifier' failed "
                                   "to satisfy constraint: Member must satisfy regular "
                                   "expression pattern: (|[a-zA-Z0-9$_-]+)", q);
  *name = nm;
  *qual = q;
  return 0;
}

static bool runtime_ok(const char *r)
{
  if (strcmp(r, "provided") == 0 || strcmp(r, "provided.al2") == 0 ||
      strcmp(r, "provided.al2023") == 0)
    return true;
  if (str_starts(r, "python3.") && all_digits(r + 8))
    return true;
  size_t n = strlen(r);
  if (str_starts(r, "nodejs") && n > 8 && strcmp(r + n - 2, ".x") == 0) {
    for (size_t i = 6; i < n - 2; i++)
      if (r[i] < '0' || r[i] > '9')
        return false;
    return true;
  }
  return false;
}

static int validate(const fn_settings *set, bool creating, err *e)
{
  if (set->runtime != NULL && !runtime_ok(set->runtime))
    return err_set(e, ERR_INVALID,
                   "Value %s at 'runtime' failed to satisfy constraint: Member must satisfy "
                   "enum value set: [python3.x, nodejs*.x, provided, provided.al2, "
                   "provided.al2023] or be a valid ARN",
                   set->runtime);
  if (creating && set->runtime == NULL)
    return err_set(e, ERR_INVALID, "Runtime is required for .zip file packages");
  if (set->handler != NULL) {
    size_t n = strlen(set->handler);
    if (n > 128 || strpbrk(set->handler, " \t\r\n") != NULL)
      return err_set(e, ERR_INVALID, "Value '%s' at 'handler' failed to satisfy constraint: "
                                     "Member must satisfy regular expression pattern: [^\\s]+",
                     set->handler);
  }
  if (set->memory_mb != 0 && (set->memory_mb < 128 || set->memory_mb > 10240))
    return err_set(e, ERR_INVALID, "'MemorySize' value failed to satisfy constraint: Member must "
                                   "have value greater than or equal to 128 and less than or "
                                   "equal to 10240");
  if (set->timeout_s != 0 && set->timeout_s > 900)
    return err_set(e, ERR_INVALID, "Value '%u' at 'timeout' failed to satisfy constraint: Member "
                                   "must have value less than or equal to 900", set->timeout_s);
  if (set->ephemeral_mb != 0 && (set->ephemeral_mb < 512 || set->ephemeral_mb > 10240))
    return err_set(e, ERR_INVALID, "Value '%u' at 'ephemeralStorage.size' failed to satisfy "
                                   "constraint: Member must have value between 512 and 10240",
                   set->ephemeral_mb);
  if (set->description != NULL && strlen(set->description) > 256)
    return err_set(e, ERR_INVALID, "Value at 'description' failed to satisfy constraint: Member "
                                   "must have length less than or equal to 256");
  if (set->role != NULL && strlen(set->role) > 2048)
    return err_set(e, ERR_INVALID, "Value at 'role' failed to satisfy constraint: Member must "
                                   "have length less than or equal to 2048");
  if (set->architecture != NULL && strcmp(set->architecture, "x86_64") != 0 &&
      strcmp(set->architecture, "arm64") != 0)
    return err_set(e, ERR_INVALID, "Value '%s' at 'architectures' failed to satisfy constraint: "
                                   "Member must satisfy enum value set: [x86_64, arm64]",
                   set->architecture);
  if (set->set_env) {
    size_t total = 0;
    for (size_t i = 0; i < set->nenv; i++) {
      const char *k = set->env[i].name;
      const char *v = set->env[i].value ? set->env[i].value : "";
      bool ok = (k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z');
      for (const char *c = k; *c && ok; c++)
        ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
             *c == '_';
      if (!ok || strlen(k) < 2)
        return err_set(e, ERR_INVALID, "Lambda was unable to configure your environment "
                                       "variables because the environment variables you have "
                                       "provided contains invalid keys: '%s'", k);
      for (size_t r = 0; reserved_env[r] != NULL; r++)
        if (strcmp(k, reserved_env[r]) == 0)
          return err_set(e, ERR_INVALID,
                         "Lambda was unable to configure your environment variables because "
                         "the environment variables you have provided contains reserved keys "
                         "that are currently not supported for modification. Reserved keys "
                         "used in this request: %s", k);
      total += strlen(k) + strlen(v);
    }
    if (total > FN_MAX_ENV_BYTES)
      return err_set(e, ERR_INVALID, "Lambda was unable to configure your environment variables "
                                     "because the environment variables you have provided "
                                     "exceeded the 4KB limit. String measured: %zu bytes", total);
  }
  return 0;
}

/* ---- confs ---- */

static const char *or_empty(const char *s)
{
  return s ? s : "";
}

static const char *conf_strdup(conf *c, const char *s)
{
  return arena_strdup(c->a, s ? s : "");
}

/* The parts of the environment every instance of c gets (but its stream). */
static void conf_environment(fn_system *s, conf *c)
{
  const fn_config *f = &c->cfg;
  size_t cap = 32 + f->nenv;
  const char **env = arena_alloc(c->a, (cap + 2) * sizeof *env);
  size_t n = 0;
#define ENV(...) env[n++] = arena_sprintf(c->a, __VA_ARGS__)
  ENV("AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001");
  ENV("AWS_ENDPOINT_URL=http://127.0.0.1:9000");
  ENV("_HANDLER=%s", f->handler);
  ENV("LAMBDA_TASK_ROOT=/var/task");
  ENV("LAMBDA_RUNTIME_DIR=/opt/tarn/runtime");
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
  ENV("PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin");
  ENV("HOME=/tmp");
  char ak[FN_KEY_MAX];
  char sk[FN_KEY_MAX];
  fn_credentials_for(s, f, c->key_nonce, ak, sk);
  snprintf(c->access_key, sizeof c->access_key, "%s", ak);
  ENV("AWS_ACCESS_KEY_ID=%s", ak);
  ENV("AWS_SECRET_ACCESS_KEY=%s", sk);
  for (size_t i = 0; i < f->nenv; i++)
    ENV("%s=%s", f->env[i].name, f->env[i].value);
#undef ENV
  env[n] = NULL;
  c->envp = env;
  c->nenvp = n;

  const char **argv = arena_alloc(c->a, 4 * sizeof *argv);
  if (str_starts(f->runtime, "python")) {
    argv[0] = "/usr/bin/python3";
    argv[1] = "/opt/tarn/runtime/python/bootstrap.py";
  } else if (str_starts(f->runtime, "nodejs")) {
    argv[0] = "/usr/bin/node";
    argv[1] = "/opt/tarn/runtime/node/bootstrap.js";
  } else {
    argv[0] = "/var/task/bootstrap";
  }
  c->argv = argv;
}

/* A conf for function `name`, version (number 0 = $LATEST), from JSON. */
static conf *conf_from_json(fn_system *s, const char *name, uint32_t number, json_t *j)
{
  conf *c = calloc(1, sizeof *c);
  if (c == NULL)
    abort();
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
  c->code_dir = arena_sprintf(c->a, "%s/%s", s->code_dir, f->code.sha256_hex);
  conf_environment(s, c);
  return c;
}

static json_t *conf_to_json(const conf *c)
{
  const fn_config *f = &c->cfg;
  json_t *env = json_object();
  for (size_t i = 0; i < f->nenv; i++)
    json_object_set_new(env, f->env[i].name, json_string(f->env[i].value));
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:s, s:s, s:I, s:I, s:s, s:s}",
                   "Runtime", f->runtime, "Handler", f->handler, "Role", f->role,
                   "Description", f->description, "Architecture", f->architecture,
                   "MemorySize", (json_int_t)f->memory_mb, "Timeout", (json_int_t)f->timeout_s,
                   "Ephemeral", (json_int_t)f->ephemeral_mb, "Env", env, "CodeHex",
                   f->code.sha256_hex, "CodeSha256", f->code.sha256_b64, "CodeSize",
                   (json_int_t)f->code.zip_size, "LastModified", (json_int_t)f->last_modified_ms,
                   "RevisionId", f->revision_id, "KeyNonce", c->key_nonce);
}

void conf_ref(conf *c)
{
  c->refs++;
}

void conf_unref(conf *c)
{
  if (c == NULL || --c->refs > 0)
    return;
  arena_free(c->a);
  free(c);
}

/* Copies a conf's config into a (reserved from the entry). */
static void config_copy(const fn_entry *f, const conf *c, arena *a, fn_config *out)
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
}

/* ---- the table ---- */

static size_t bucket_of(const char *name)
{
  uint32_t h = 2166136261u;
  for (const unsigned char *c = (const unsigned char *)name; *c; c++)
    h = (h ^ *c) * 16777619u;
  return h % FN_HASH_BUCKETS;
}

size_t registry_bucket(const char *name)
{
  return bucket_of(name);
}

fn_entry *registry_find(fn_system *s, const char *name)
{
  for (fn_entry *f = s->table[bucket_of(name)]; f != NULL; f = f->hnext)
    if (strcmp(f->name, name) == 0)
      return f;
  return NULL;
}

static fn_entry *entry_new(fn_system *s, const char *name)
{
  fn_entry *f = calloc(1, sizeof *f);
  if (f == NULL)
    abort();
  snprintf(f->name, sizeof f->name, "%s", name);
  f->reserved = -1;
  f->next_version = 1;
  f->log_fd = -1;
  pthread_mutex_init(&f->log_lock, NULL);
  size_t b = bucket_of(name);
  f->hnext = s->table[b];
  s->table[b] = f;
  s->nfunctions++;
  return f;
}

static void entry_free(fn_entry *f)
{
  conf_unref(f->latest);
  for (size_t i = 0; i < f->nversions; i++)
    conf_unref(f->versions[i]);
  free(f->versions);
  for (size_t i = 0; i < f->naliases; i++) {
    free(f->aliases[i].name);
    free(f->aliases[i].version);
    free(f->aliases[i].description);
  }
  free(f->aliases);
  for (pool *p = f->pools, *next; p != NULL; p = next) {
    next = p->next;
    conf_unref(p->conf);
    free(p);
  }
  logs_close(f);
  pthread_mutex_destroy(&f->log_lock);
  free(f);
}

/* Takes f out of the table; freed now or when its last user leaves. */
static void entry_unlink(fn_system *s, fn_entry *f)
{
  fn_entry **pp = &s->table[bucket_of(f->name)];
  while (*pp != f)
    pp = &(*pp)->hnext;
  *pp = f->hnext;
  s->nfunctions--;
  if (f->reserved >= 0)
    s->reserved_sum -= (uint32_t)f->reserved;
  f->deleted = true;
  sched_drop_entry(s, f);
  if (f->users == 0)
    entry_free(f);
}

void entry_release(fn_system *s, fn_entry *f)
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

static alias_rec *entry_alias(fn_entry *f, const char *name)
{
  for (size_t i = 0; i < f->naliases; i++)
    if (strcmp(f->aliases[i].name, name) == 0)
      return &f->aliases[i];
  return NULL;
}

static conf *conf_of_version(fn_entry *f, const char *version)
{
  if (strcmp(version, "$LATEST") == 0)
    return f->latest;
  if (!all_digits(version) || strlen(version) > 10)
    return NULL;
  return entry_version(f, (uint32_t)strtoul(version, NULL, 10));
}

int registry_resolve(fn_entry *f, const char *qualifier, conf **out, const char **version,
                     err *e)
{
  const char *q = qualifier ? qualifier : "$LATEST";
  conf *c;
  if (strcmp(q, "$LATEST") == 0 || all_digits(q)) {
    c = conf_of_version(f, q);
  } else {
    alias_rec *al = entry_alias(f, q);
    c = al ? conf_of_version(f, al->version) : NULL;
  }
  if (c == NULL)
    return err_set(e, ERR_NOT_FOUND, "Function not found: arn:aws:lambda:%s:%s:function:%s:%s",
                   FN_REGION, FN_ACCOUNT_ID, f->name, q);
  *out = c;
  *version = c->cfg.version;
  return 0;
}

bool registry_code_used(fn_system *s, const char *hex)
{
  for (size_t b = 0; b < FN_HASH_BUCKETS; b++)
    for (fn_entry *f = s->table[b]; f != NULL; f = f->hnext) {
      if (strcmp(f->latest->cfg.code.sha256_hex, hex) == 0)
        return true;
      for (size_t i = 0; i < f->nversions; i++)
        if (strcmp(f->versions[i]->cfg.code.sha256_hex, hex) == 0)
          return true;
    }
  return false;
}

/* ---- LMDB ---- */

static int db_error(int rc, const char *what, err *e)
{
  char doing[64];
  snprintf(doing, sizeof doing, "%s the function registry", what);
  return lmdb_error(e, rc, doing);
}

typedef struct wtxn {
  MDB_txn *txn;
} wtxn;

static int txn_begin(fn_system *s, wtxn *w, err *e)
{
  int rc = mdb_txn_begin(s->env, NULL, 0, &w->txn);
  return rc ? db_error(rc, "write", e) : 0;
}

static int txn_put_json(wtxn *w, fn_system *s, const char *key, json_t *j, err *e)
{
  char *text = json_dumps(j, JSON_COMPACT);
  if (text == NULL)
    abort();
  MDB_val k = {strlen(key), (void *)key};
  MDB_val v = {strlen(text), text};
  int rc = mdb_put(w->txn, s->dbi, &k, &v, 0);
  free(text);
  return rc ? db_error(rc, "write", e) : 0;
}

static int txn_del(wtxn *w, fn_system *s, const char *key, err *e)
{
  MDB_val k = {strlen(key), (void *)key};
  int rc = mdb_del(w->txn, s->dbi, &k, NULL);
  return rc && rc != MDB_NOTFOUND ? db_error(rc, "write", e) : 0;
}

/* Deletes every key that starts with prefix. */
static int txn_del_prefix(wtxn *w, fn_system *s, const char *prefix, err *e)
{
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

static int txn_commit(wtxn *w, err *e)
{
  int rc = mdb_txn_commit(w->txn);
  w->txn = NULL;
  return rc ? db_error(rc, "commit", e) : 0;
}

static void txn_abort(wtxn *w)
{
  if (w->txn != NULL)
    mdb_txn_abort(w->txn);
  w->txn = NULL;
}

static json_t *function_record(const fn_entry *f, const conf *latest, uint32_t next_version,
                               int reserved, const char *published_revision)
{
  json_t *j = conf_to_json(latest);
  json_object_set_new(j, "NextVersion", json_integer(next_version));
  json_object_set_new(j, "Reserved", json_integer(reserved));
  json_object_set_new(j, "Created", json_integer(f ? f->created_ms : time_now_ms()));
  if (published_revision != NULL)
    json_object_set_new(j, "PublishedRevision", json_string(published_revision));
  return j;
}

/* The revision of $LATEST that the last version was published from. */
static char *published_revision_of(fn_system *s, const char *name)
{
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
      out = strdup(r);
    json_decref(j);
  }
  mdb_txn_abort(txn);
  return out;
}

static json_t *alias_record(const alias_rec *al)
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
      fn_entry *f = entry_new(s, key + 2);
      f->latest = conf_from_json(s, key + 2, 0, j);
      f->next_version = (uint32_t)json_integer_value(json_object_get(j, "NextVersion"));
      f->reserved = (int)json_integer_value(json_object_get(j, "Reserved"));
      f->created_ms = json_integer_value(json_object_get(j, "Created"));
      if (f->reserved >= 0)
        s->reserved_sum += (uint32_t)f->reserved;
    } else if (key[0] == 'v') {
      char *slash = strchr(key + 2, '/');
      if (slash != NULL) {
        *slash = '\0';
        fn_entry *f = registry_find(s, key + 2);
        if (f != NULL) {
          if (f->nversions == f->cap_versions) {
            f->cap_versions = f->cap_versions ? 2 * f->cap_versions : 8;
            f->versions = realloc(f->versions, f->cap_versions * sizeof *f->versions);
            if (f->versions == NULL)
              abort();
          }
          f->versions[f->nversions++] =
              conf_from_json(s, key + 2, (uint32_t)strtoul(slash + 1, NULL, 10), j);
        }
      }
    } else if (key[0] == 'a') {
      json_object_set_new(j, "_key", json_string(key));
      json_array_append(aliases, j);
    }
    json_decref(j);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  size_t i;
  json_t *j;
  json_array_foreach(aliases, i, j)
  {
    char *kk = strdup(json_string_value(json_object_get(j, "_key")));
    char *slash = strchr(kk + 2, '/');
    fn_entry *f = NULL;
    if (slash != NULL) {
      *slash = '\0';
      f = registry_find(s, kk + 2);
    }
    if (f != NULL) {
      f->aliases = realloc(f->aliases, (f->naliases + 1) * sizeof *f->aliases);
      if (f->aliases == NULL)
        abort();
      alias_rec *al = &f->aliases[f->naliases++];
      al->name = strdup(slash + 1);
      al->version = strdup((json_string_value(json_object_get(j, "FunctionVersion")) ? json_string_value(json_object_get(j, "FunctionVersion")) : "$LATEST"));
      al->description = strdup(or_empty(json_string_value(json_object_get(j, "Description"))));
      snprintf(al->revision_id, sizeof al->revision_id, "%s",
               or_empty(json_string_value(json_object_get(j, "RevisionId"))));
      if (al->name == NULL || al->version == NULL || al->description == NULL)
        abort();
    }
    free(kk);
  }
  json_decref(aliases);
  return 0;
}

int registry_open(fn_system *s, err *e)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/meta", s->fn_dir);
  int rc = fn_mkdirs(path, e);
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

void registry_close(fn_system *s)
{
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

/* ---- functions ---- */

static void new_revision(char out[37])
{
  uuid_v4(out);
}

/* A conf from a base (or defaults) with settings and code applied. */
static conf *conf_make(fn_system *s, const char *name, const conf *base, const fn_settings *set,
                       const fn_code *code)
{
  json_t *j = base ? conf_to_json(base) : json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
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
  }
  char rev[37];
  new_revision(rev);
  json_object_set_new(j, "RevisionId", json_string(rev));
  if (base == NULL) { /* a new function: keys no earlier function of its name had */
    char nonce[37];
    new_revision(nonce);
    json_object_set_new(j, "KeyNonce", json_string(nonce));
  }
  json_object_set_new(j, "LastModified", json_integer(time_now_ms()));
  conf *c = conf_from_json(s, name, 0, j);
  json_decref(j);
  return c;
}

static int not_found(const char *name, err *e)
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
  conf_ref(latest);
  uint32_t number = f->next_version;
  int reserved = f->reserved;
  size_t nversions = f->nversions;
  conf *last = nversions ? f->versions[nversions - 1] : NULL;
  if (last != NULL)
    conf_ref(last);
  pthread_mutex_unlock(&s->lock);

  char *published = published_revision_of(s, f->name);
  int rc = 0;
  if (last != NULL && published != NULL && strcmp(published, latest->cfg.revision_id) == 0) {
    /* Nothing changed since the last version: Lambda returns that one. */
    pthread_mutex_lock(&s->lock);
    config_copy(f, last, a, out);
    conf_unref(last);
    conf_unref(latest);
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
  json_t *j = conf_to_json(latest);
  char rev[37];
  new_revision(rev);
  json_object_set_new(j, "RevisionId", json_string(rev));
  json_object_set_new(j, "LastModified", json_integer(time_now_ms()));
  if (description != NULL)
    json_object_set_new(j, "Description", json_string(description));
  conf *v = conf_from_json(s, f->name, number, j);
  wtxn w = {0};
  char key[KEY_MAX];
  snprintf(key, sizeof key, "v/%s/%010u", f->name, number);
  json_t *fr = function_record(f, latest, number + 1, reserved, latest->cfg.revision_id);
  if ((rc = txn_begin(s, &w, e)) == 0 && (rc = txn_put_json(&w, s, key, j, e)) == 0) {
    snprintf(key, sizeof key, "f/%s", f->name);
    if ((rc = txn_put_json(&w, s, key, fr, e)) == 0)
      rc = txn_commit(&w, e);
  }
  txn_abort(&w);
  json_decref(j);
  json_decref(fr);
  pthread_mutex_lock(&s->lock);
  if (rc == 0) {
    if (f->nversions == f->cap_versions) {
      f->cap_versions = f->cap_versions ? 2 * f->cap_versions : 8;
      f->versions = realloc(f->versions, f->cap_versions * sizeof *f->versions);
      if (f->versions == NULL)
        abort();
    }
    f->versions[f->nversions++] = v;
    f->next_version = number + 1;
    config_copy(f, v, a, out);
  } else {
    conf_unref(v);
  }
  pthread_mutex_unlock(&s->lock);
out:
  pthread_mutex_lock(&s->lock);
  conf_unref(latest);
  conf_unref(last);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

int fn_function_create(fn_system *s, const char *name, const fn_settings *set,
                       const fn_code *code, bool publish, arena *a, fn_config *out, err *e)
{
  if (!name_ok(name))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at 'functionName' "
                                   "failed to satisfy constraint: Member must satisfy regular "
                                   "expression pattern: [a-zA-Z0-9-_]+", name);
  int rc = validate(set, true, e);
  if (rc)
    return rc;
  if (code == NULL || code->sha256_hex[0] == '\0')
    return err_set(e, ERR_INVALID, "Code is required");
  if (!str_starts(set->runtime, "provided") && (set->handler == NULL || !*set->handler))
    return err_set(e, ERR_INVALID, "Handler is required for .zip file packages");
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  bool exists = registry_find(s, name) != NULL;
  size_t count = s->nfunctions;
  pthread_mutex_unlock(&s->lock);
  if (exists) {
    pthread_mutex_unlock(&s->write_lock);
    return err_set(e, ERR_CONFLICT, "Function already exist: %s", name);
  }
  if (count >= FN_MAX_FUNCTIONS) {
    pthread_mutex_unlock(&s->write_lock);
    return err_set(e, ERR_INVALID, "there are %d functions, the most tarn keeps", FN_MAX_FUNCTIONS);
  }
  conf *c = conf_make(s, name, NULL, set, code);
  json_t *fr = function_record(NULL, c, 1, -1, NULL);
  char key[KEY_MAX];
  snprintf(key, sizeof key, "f/%s", name);
  wtxn w = {0};
  if ((rc = txn_begin(s, &w, e)) == 0 && (rc = txn_put_json(&w, s, key, fr, e)) == 0)
    rc = txn_commit(&w, e);
  txn_abort(&w);
  json_decref(fr);
  if (rc != 0) {
    pthread_mutex_lock(&s->lock);
    conf_unref(c);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->write_lock);
    return rc;
  }
  pthread_mutex_lock(&s->lock);
  fn_entry *f = entry_new(s, name);
  f->latest = c;
  f->created_ms = time_now_ms();
  config_copy(f, c, a, out);
  pthread_mutex_unlock(&s->lock);
  if (publish)
    rc = publish_locked(s, f, NULL, a, out, e);
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int fn_function_get(fn_system *s, const char *name, const char *qualifier, arena *a,
                    fn_config *out, err *e)
{
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, name);
  int rc;
  if (f == NULL) {
    rc = not_found(name, e);
  } else {
    conf *c;
    const char *v;
    rc = registry_resolve(f, qualifier, &c, &v, e);
    if (rc == 0)
      config_copy(f, c, a, out);
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
  size_t start;
  int rc = page_args(marker, &start, &max, e);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&s->lock);
  fn_entry **all = malloc((s->nfunctions + 1) * sizeof *all);
  if (all == NULL)
    abort();
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
      config_copy(all[i], c, a, &res[got++]);
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
  char *published = published_revision_of(s, f->name);
  json_t *fr = function_record(f, c, next_version, reserved, published);
  free(published);
  char key[KEY_MAX];
  snprintf(key, sizeof key, "f/%s", f->name);
  wtxn w = {0};
  int rc;
  if ((rc = txn_begin(s, &w, e)) == 0 && (rc = txn_put_json(&w, s, key, fr, e)) == 0)
    rc = txn_commit(&w, e);
  txn_abort(&w);
  json_decref(fr);
  pthread_mutex_lock(&s->lock);
  if (rc == 0) {
    conf *old = f->latest;
    f->latest = c;
    for (pool *p = f->pools; p != NULL; p = p->next)
      if (strcmp(p->version, "$LATEST") == 0) {
        conf_ref(c);
        conf_unref(p->conf);
        p->conf = c;
        sched_recycle(s, p);
      }
    conf_unref(old);
  } else {
    conf_unref(c);
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
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, name);
  int rc = f ? check_revision(f, revision_id, e) : not_found(name, e);
  conf *base = f ? f->latest : NULL;
  if (rc == 0)
    conf_ref(base);
  pthread_mutex_unlock(&s->lock);
  if (rc == 0) {
    conf *c = conf_make(s, name, base, NULL, code);
    rc = replace_latest(s, f, c, e);
    pthread_mutex_lock(&s->lock);
    conf_unref(base);
    if (rc == 0)
      config_copy(f, f->latest, a, out);
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
  int rc = validate(set, false, e);
  if (rc)
    return rc;
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, name);
  rc = f ? check_revision(f, set->revision_id, e) : not_found(name, e);
  conf *base = f ? f->latest : NULL;
  if (rc == 0)
    conf_ref(base);
  pthread_mutex_unlock(&s->lock);
  if (rc == 0) {
    conf *c = conf_make(s, name, base, set, NULL);
    rc = replace_latest(s, f, c, e);
    pthread_mutex_lock(&s->lock);
    conf_unref(base);
    if (rc == 0)
      config_copy(f, f->latest, a, out);
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int fn_function_delete(fn_system *s, const char *name, const char *qualifier, err *e)
{
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, name);
  int rc = f ? 0 : not_found(name, e);
  conf *v = NULL;
  if (rc == 0 && qualifier != NULL && strcmp(qualifier, "$LATEST") == 0)
    rc = err_set(e, ERR_INVALID, "$LATEST version cannot be deleted without deleting the function.");
  else if (rc == 0 && qualifier != NULL && !all_digits(qualifier))
    rc = err_set(e, ERR_INVALID, "Deletion of aliases is not supported (use DeleteAlias)");
  else if (rc == 0 && qualifier != NULL) {
    v = conf_of_version(f, qualifier);
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
  if ((rc = txn_begin(s, &w, e)) == 0) {
    if (v != NULL) {
      snprintf(key, sizeof key, "v/%s/%010u", name, v->number);
      rc = txn_del(&w, s, key, e);
    } else {
      snprintf(key, sizeof key, "f/%s", name);
      rc = txn_del(&w, s, key, e);
      snprintf(key, sizeof key, "v/%s/", name);
      if (rc == 0)
        rc = txn_del_prefix(&w, s, key, e);
      snprintf(key, sizeof key, "a/%s/", name);
      if (rc == 0)
        rc = txn_del_prefix(&w, s, key, e);
    }
    if (rc == 0)
      rc = txn_commit(&w, e);
  }
  txn_abort(&w);
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
          sched_recycle(s, p);
      conf_unref(v);
    } else {
      entry_unlink(s, f);
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
  if (description != NULL && strlen(description) > 256)
    return err_set(e, ERR_INVALID, "Value at 'description' failed to satisfy constraint: Member "
                                   "must have length less than or equal to 256");
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, name);
  int rc = f ? check_revision(f, revision_id, e) : not_found(name, e);
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
  size_t start;
  int rc = page_args(marker, &start, &max, e);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, name);
  if (f == NULL) {
    pthread_mutex_unlock(&s->lock);
    return not_found(name, e);
  }
  size_t total = 1 + f->nversions;
  fn_config *res = arena_alloc(a, max * sizeof *res);
  size_t got = 0;
  for (size_t i = start; i < total && got < max; i++)
    config_copy(f, i == 0 ? f->latest : f->versions[i - 1], a, &res[got++]);
  *next_marker = start + got < total ? arena_sprintf(a, "%zu", start + got) : NULL;
  pthread_mutex_unlock(&s->lock);
  *out = res;
  *n = got;
  return 0;
}

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
  int rc = txn_begin(s, &w, e);
  if (rc == 0) {
    if (remove) {
      rc = txn_del(&w, s, key, e);
    } else {
      json_t *j = alias_record(al);
      rc = txn_put_json(&w, s, key, j, e);
      json_decref(j);
    }
  }
  if (rc == 0)
    rc = txn_commit(&w, e);
  txn_abort(&w);
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
  if (alias == NULL || !alias_name_ok(alias))
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
  fn_entry *f = registry_find(s, function);
  int rc = f ? 0 : not_found(function, e);
  if (rc == 0 && entry_alias(f, alias) != NULL)
    rc = err_set(e, ERR_CONFLICT, "Alias already exists: arn:aws:lambda:%s:%s:function:%s:%s",
                 FN_REGION, FN_ACCOUNT_ID, function, alias);
  if (rc == 0 && conf_of_version(f, version) == NULL)
    rc = err_set(e, ERR_NOT_FOUND, "Function not found: arn:aws:lambda:%s:%s:function:%s:%s",
                 FN_REGION, FN_ACCOUNT_ID, function, version);
  if (rc == 0 && f->naliases >= FN_MAX_ALIASES)
    rc = err_set(e, ERR_INVALID, "function '%s' has %d aliases, the most it can have", function,
                 FN_MAX_ALIASES);
  pthread_mutex_unlock(&s->lock);
  if (rc == 0) {
    alias_rec al = {.name = strdup(alias), .version = strdup(version),
                    .description = strdup(description ? description : "")};
    if (al.name == NULL || al.version == NULL || al.description == NULL)
      abort();
    new_revision(al.revision_id);
    rc = alias_write(s, function, &al, false, e);
    pthread_mutex_lock(&s->lock);
    if (rc == 0) {
      f->aliases = realloc(f->aliases, (f->naliases + 1) * sizeof *f->aliases);
      if (f->aliases == NULL)
        abort();
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
  if (description != NULL && strlen(description) > 256)
    return err_set(e, ERR_INVALID, "Value at 'description' failed to satisfy constraint: Member "
                                   "must have length less than or equal to 256");
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, function);
  int rc = f ? 0 : not_found(function, e);
  alias_rec *cur = rc == 0 ? entry_alias(f, alias) : NULL;
  if (rc == 0 && cur == NULL)
    rc = alias_not_found(function, alias, e);
  if (rc == 0 && revision_id != NULL && *revision_id && strcmp(revision_id, cur->revision_id) != 0)
    rc = err_set(e, ERR_PRECONDITION, "The Revision Id provided does not match the latest "
                                      "Revision Id. Call the GetFunction/GetAlias API to retrieve "
                                      "the latest Revision Id");
  if (rc == 0 && version != NULL && conf_of_version(f, version) == NULL)
    rc = err_set(e, ERR_NOT_FOUND, "Function not found: arn:aws:lambda:%s:%s:function:%s:%s",
                 FN_REGION, FN_ACCOUNT_ID, function, version);
  alias_rec next = {0};
  if (rc == 0) {
    next.name = strdup(cur->name);
    next.version = strdup(version ? version : cur->version);
    next.description = strdup(description ? description : cur->description);
    if (next.name == NULL || next.version == NULL || next.description == NULL)
      abort();
    new_revision(next.revision_id);
  }
  pthread_mutex_unlock(&s->lock);
  if (rc == 0) {
    rc = alias_write(s, function, &next, false, e);
    pthread_mutex_lock(&s->lock);
    if (rc == 0) {
      cur = entry_alias(f, alias);
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
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, function);
  int rc = f ? 0 : not_found(function, e);
  alias_rec *al = rc == 0 ? entry_alias(f, alias) : NULL;
  if (rc == 0 && al == NULL)
    rc = alias_not_found(function, alias, e);
  if (rc == 0)
    alias_copy(f, al, a, out);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

int fn_alias_delete(fn_system *s, const char *function, const char *alias, err *e)
{
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, function);
  int rc = f ? 0 : not_found(function, e);
  alias_rec *al = rc == 0 ? entry_alias(f, alias) : NULL;
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
    al = entry_alias(f, alias);
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
  size_t start;
  int rc = page_args(marker, &start, &max, e);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, function);
  if (f == NULL) {
    pthread_mutex_unlock(&s->lock);
    return not_found(function, e);
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

/* ---- concurrency ---- */

int fn_concurrency_put(fn_system *s, const char *function, int reserved, err *e)
{
  uint32_t floor = s->account_limit < 100 ? 0 : 100;
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, function);
  int rc = f ? 0 : not_found(function, e);
  if (rc == 0 && reserved >= 0) {
    uint32_t others = s->reserved_sum - (f->reserved >= 0 ? (uint32_t)f->reserved : 0);
    if ((uint64_t)others + (uint64_t)reserved + floor > s->account_limit)
      rc = err_set(e, ERR_INVALID, "Specified ReservedConcurrentExecutions for function decreases "
                                   "account's UnreservedConcurrentExecution below its minimum "
                                   "value of [%u].", floor);
  }
  conf *latest = f ? f->latest : NULL;
  uint32_t next_version = f ? f->next_version : 0;
  if (rc == 0)
    conf_ref(latest);
  pthread_mutex_unlock(&s->lock);
  if (rc == 0) {
    char *published = published_revision_of(s, function);
    json_t *fr = function_record(f, latest, next_version, reserved, published);
    free(published);
    char key[KEY_MAX];
    snprintf(key, sizeof key, "f/%s", function);
    wtxn w = {0};
    if ((rc = txn_begin(s, &w, e)) == 0 && (rc = txn_put_json(&w, s, key, fr, e)) == 0)
      rc = txn_commit(&w, e);
    txn_abort(&w);
    json_decref(fr);
    pthread_mutex_lock(&s->lock);
    if (rc == 0) {
      if (f->reserved >= 0) {
        s->reserved_sum -= (uint32_t)f->reserved;
        s->unreserved_active += f->active; /* its runs move to the shared pool */
      }
      f->reserved = reserved;
      if (reserved >= 0) {
        s->reserved_sum += (uint32_t)reserved;
        s->unreserved_active -= f->active;
      }
    }
    conf_unref(latest);
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int fn_concurrency_get(fn_system *s, const char *function, int *reserved, err *e)
{
  pthread_mutex_lock(&s->lock);
  fn_entry *f = registry_find(s, function);
  int rc = f ? 0 : not_found(function, e);
  if (rc == 0)
    *reserved = f->reserved;
  pthread_mutex_unlock(&s->lock);
  return rc;
}
