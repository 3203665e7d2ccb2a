/* iam/store.c -- roles, users, access keys and policies: durable in
 * DATA/iam (LMDB), served from memory.
 *
 * Why memory: every request signed by a function or a user is authorized
 * against its policies; that must cost a hash lookup and a walk over
 * parsed documents, not an LMDB read and a JSON parse.
 *
 * Memory (s->db, under s->rw): {"role": {NAME: rec}, "user": {...},
 * "policy": {...}}, records as stored plus "_inline" (parsed inline
 * documents by name) and "_doc" (a managed policy's parsed document);
 * s->keys maps an access key id to its user's name.
 *
 * Invariants:
 *   (1) Writers hold s->write_lock from their checks to their memory
 *       update; memory changes (under s->rw's write side) only after the
 *       LMDB commit succeeded, so a reader never sees what is not durable.
 *   (2) Every write touches one record (one LMDB key): an access key lives
 *       in its user's record, a policy's attachments in the roles' and
 *       users' records.
 *   (3) Members whose names start with '_' are never written to LMDB.
 *
 * Roles, users and managed policies share one set of record functions
 * (entity_create, entity_read, entity_update, entity_delete); what differs
 * between them is one row of KINDS.
 *
 * Start reading at KINDS, then iam_role_create().
 */
#include "iam/iam.h"

#include "base/hash.h"
#include "base/lmdb_env.h"
#include "base/mem.h"
#include "base/text.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAP_SIZE (1ull << 30)
#define KEY_MAX 300

struct iam_system {
  MDB_env *env;
  MDB_dbi dbi;
  pthread_mutex_t write_lock; /* one writer at a time, see (1) */
  pthread_rwlock_t rw;        /* guards db and keys */
  json_t *db;
  json_t *keys;               /* access key id -> user name */
};

/* ---- LMDB ---- */

static int db_error(int rc, const char *what, err *e)
{
  char doing[64];
  snprintf(doing, sizeof doing, "%s the IAM store", what);
  return lmdb_error(e, rc, doing);
}

/* A record without its in-memory members, as text. */
static char *record_text(json_t *rec)
{
  json_t *copy = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(rec, k, v)
  {
    if (k[0] != '_')
      json_object_set(copy, k, v);
  }
  char *text = json_dumps(copy, JSON_COMPACT);
  json_decref(copy);
  return text;
}

/* Writes (rec) or deletes (rec NULL) KIND/NAME, durably. */
static int persist(iam_system *s, const char *kind, const char *name, json_t *rec, err *e)
{
  char key[KEY_MAX];
  int kn = snprintf(key, sizeof key, "%s/%s", kind, name);
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc != 0)
    return db_error(rc, "write", e);
  MDB_val k = {(size_t)kn, key};
  if (rec != NULL) {
    char *text = record_text(rec);
    MDB_val v = {strlen(text), text};
    rc = mdb_put(txn, s->dbi, &k, &v, 0);
    free(text);
  } else {
    rc = mdb_del(txn, s->dbi, &k, NULL);
    if (rc == MDB_NOTFOUND)
      rc = 0;
  }
  if (rc != 0) {
    mdb_txn_abort(txn);
    return db_error(rc, "write", e);
  }
  if ((rc = mdb_txn_commit(txn)) != 0)
    return db_error(rc, "commit", e);
  return 0;
}

/* ---- memory ---- */

static void index_keys(iam_system *s, const char *user, json_t *rec)
{
  size_t i;
  json_t *k;
  json_array_foreach(json_object_get(rec, "AccessKeys"), i, k)
  {
    json_object_set_new(s->keys, json_string_value(json_object_get(k, "AccessKeyId")),
                        json_string(user));
  }
}

static void unindex_keys(iam_system *s, json_t *rec)
{
  size_t i;
  json_t *k;
  json_array_foreach(json_object_get(rec, "AccessKeys"), i, k)
  {
    json_object_del(s->keys, json_string_value(json_object_get(k, "AccessKeyId")));
  }
}

/* Adds the parsed forms of rec's documents (they were valid when stored). */
static void parse_documents(json_t *rec)
{
  json_t *inl = json_object_get(rec, "Inline");
  if (inl != NULL) {
    json_t *parsed = json_object();
    const char *name;
    json_t *text;
    json_object_foreach(inl, name, text)
    {
      json_t *doc;
      err e = {0};
      const char *t = json_string_value(text);
      if (t != NULL && iam_policy_parse(t, strlen(t), &doc, &e) == 0)
        json_object_set_new(parsed, name, doc);
    }
    json_object_set_new(rec, "_inline", parsed);
  }
  const char *doc_text = json_string_value(json_object_get(rec, "Document"));
  if (doc_text != NULL) {
    json_t *doc;
    err e = {0};
    if (iam_policy_parse(doc_text, strlen(doc_text), &doc, &e) == 0)
      json_object_set_new(rec, "_doc", doc);
  }
}

/* Publishes rec (or its removal) as KIND/NAME in memory; takes rec. */
static void publish(iam_system *s, const char *kind, const char *name, json_t *rec)
{
  pthread_rwlock_wrlock(&s->rw);
  json_t *all = json_object_get(s->db, kind);
  json_t *old = json_object_get(all, name);
  if (old != NULL && strcmp(kind, "user") == 0)
    unindex_keys(s, old);
  if (rec != NULL) {
    if (strcmp(kind, "user") == 0)
      index_keys(s, name, rec);
    json_object_set_new(all, name, rec);
  } else {
    json_object_del(all, name);
  }
  pthread_rwlock_unlock(&s->rw);
}

static int load(iam_system *s, err *e)
{
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0)
    return db_error(rc, "read", e);
  MDB_cursor *cur;
  if ((rc = mdb_cursor_open(txn, s->dbi, &cur)) != 0) {
    mdb_txn_abort(txn);
    return db_error(rc, "read", e);
  }
  MDB_val k, v;
  char key[KEY_MAX];
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size >= sizeof key)
      continue;
    memcpy(key, k.mv_data, k.mv_size);
    key[k.mv_size] = '\0';
    char *slash = strchr(key, '/');
    if (slash == NULL)
      continue;
    *slash = '\0';
    json_t *all = json_object_get(s->db, key);
    json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (all == NULL || !json_is_object(rec)) {
      json_decref(rec);
      continue;
    }
    parse_documents(rec);
    if (strcmp(key, "user") == 0)
      index_keys(s, slash + 1, rec);
    json_object_set_new(all, slash + 1, rec);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return 0;
}

int iam_system_open(const char *data_dir, iam_system **out, err *e)
{
  *out = NULL;
  char path[4096];
  snprintf(path, sizeof path, "%s/iam", data_dir);
  iam_system *s = xcalloc(1, sizeof *s);
  pthread_mutex_init(&s->write_lock, NULL);
  pthread_rwlock_init(&s->rw, NULL);
  s->db = json_pack("{s:{}, s:{}, s:{}}", "role", "user", "policy");
  s->keys = json_object();
  int rc;
  lmdb_env_options o = {.map_size = MAP_SIZE, .max_readers = 1024};
  if ((rc = lmdb_env_open(&s->env, path, &o, "the IAM store", e)) != 0) {
    iam_system_close(s);
    return rc;
  }
  MDB_txn *txn;
  if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0 ||
      (rc = mdb_dbi_open(txn, NULL, 0, &s->dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
    rc = db_error(rc, "open", e);
    iam_system_close(s);
    return rc;
  }
  if ((rc = load(s, e)) != 0) {
    iam_system_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

iam_system *iam_system_close(iam_system *s)
{
  if (s == NULL)
    return NULL;
  if (s->env != NULL)
    mdb_env_close(s->env);
  json_decref(s->db);
  json_decref(s->keys);
  pthread_rwlock_destroy(&s->rw);
  pthread_mutex_destroy(&s->write_lock);
  free(s);
  return NULL;
}

/* ---- helpers ---- */

static void iso_now(char out[32])
{
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* IAM's unique ids: a prefix and 17 characters. */
static void unique_id(const char *prefix, char out[32])
{
  static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  uint8_t r[17];
  random_bytes(r, sizeof r);
  size_t p = (size_t)snprintf(out, 32, "%s", prefix);
  for (size_t i = 0; i < 17 && p < 31; i++)
    out[p++] = chars[r[i] & 31];
  out[p] = '\0';
}

static bool name_ok(const char *n, size_t max)
{
  size_t len = n ? strlen(n) : 0;
  if (len == 0 || len > max)
    return false;
  for (const char *c = n; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          strchr("+=,.@_-", *c) != NULL))
      return false;
  return true;
}

static int check_name(const char *n, size_t max, const char *member, err *e)
{
  if (!name_ok(n, max))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at '%s' failed to "
                                   "satisfy constraint: Member must have length less than or "
                                   "equal to %zu and satisfy regular expression pattern: "
                                   "[\\w+=,.@-]+", n ? n : "", member, max);
  return 0;
}

static int check_path(const char *path, err *e)
{
  if (path == NULL)
    return 0;
  size_t n = strlen(path);
  if (n == 0 || n > 512 || path[0] != '/' || path[n - 1] != '/')
    return err_set(e, ERR_INVALID, "the specified value for path is invalid. It must begin "
                                   "and end with / and contain only alphanumeric characters "
                                   "and/or / characters");
  return 0;
}

/* ---- the kinds of entity ----
 *
 * Roles, users and managed policies are records of one shape (a name, an
 * id, a path, an ARN, a creation date, then their own members), created,
 * read, changed and deleted by one set of functions below. What differs
 * between the kinds, down to the words of IAM's messages, is this table. */

typedef struct kind_info {
  const char *section;       /* memory section, LMDB key prefix, the word in messages */
  const char *name_member;   /* RoleName, UserName, PolicyName */
  const char *id_member;     /* RoleId, UserId, PolicyId */
  const char *id_prefix;     /* IAM's id prefix: AROA, AIDA, ANPA */
  const char *name_param;    /* the name's parameter in validation messages */
  size_t name_max;           /* the name's longest length */
  const char *exists_before; /* EntityAlreadyExists: the message around the name */
  const char *exists_after;
  const char *quota;         /* the account quota on their number, NULL: none checked */
  size_t inline_max;         /* inline policies, all together; 0: none */
  const char *attach_quota;  /* the quota on attached managed policies */
} kind_info;

enum { KIND_ROLE, KIND_USER, KIND_POLICY };

static const kind_info KINDS[] = {
    [KIND_ROLE] = {"role", "RoleName", "RoleId", "AROA", "roleName", 64, "Role with name ",
                   " already exists.", "RolesPerAccount", IAM_MAX_ROLE_INLINE,
                   "PoliciesPerRole"},
    [KIND_USER] = {"user", "UserName", "UserId", "AIDA", "userName", 64, "User with name ",
                   " already exists.", "UsersPerAccount", IAM_MAX_USER_INLINE,
                   "PoliciesPerUser"},
    [KIND_POLICY] = {"policy", "PolicyName", "PolicyId", "ANPA", "policyName", 128,
                     "A policy called ", " already exists. Duplicate names are not allowed.",
                     NULL, 0, NULL},
};

/* The kinds that have inline and attached policies (role, user) by the
 * name callers use, or NULL. */
static const kind_info *kind_of(const char *kind)
{
  if (kind != NULL && strcmp(kind, "role") == 0)
    return &KINDS[KIND_ROLE];
  if (kind != NULL && strcmp(kind, "user") == 0)
    return &KINDS[KIND_USER];
  return NULL;
}

static int no_kind(const char *kind, err *e)
{
  return err_set(e, ERR_INVALID, "no entity kind '%s'", kind ? kind : "");
}

/* The record of KIND/NAME (under either lock), or NULL. */
static json_t *entity_find(iam_system *s, const kind_info *k, const char *name)
{
  return json_object_get(json_object_get(s->db, k->section), name ? name : "");
}

static int no_entity(const kind_info *k, const char *name, err *e)
{
  return err_set(e, ERR_NO_SUCH_ENTITY, "The %s with name %s cannot be found.", k->section,
                 name ? name : "");
}

static int no_inline(const kind_info *k, const char *policy, err *e)
{
  return err_set(e, ERR_NO_SUCH_ENTITY, "The %s policy with name %s cannot be found.",
                 k->section, policy ? policy : "");
}

static int no_document(const char *member, err *e)
{
  return err_set(e, ERR_INVALID, "1 validation error detected: Value null at '%s' failed to "
                                 "satisfy constraint: Member must not be null", member);
}

/* What an API answer shows of a record: no '_' members, no secrets. */
static json_t *public_copy(json_t *rec)
{
  json_t *o = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(rec, k, v)
  {
    if (k[0] != '_' && strcmp(k, "Inline") != 0 && strcmp(k, "Attached") != 0 &&
        strcmp(k, "AccessKeys") != 0 && strcmp(k, "Document") != 0)
      json_object_set(o, k, v);
  }
  return o;
}

/* Commits rec as KIND/NAME and publishes it (takes rec); under write_lock. */
static int commit(iam_system *s, const char *kind, const char *name, json_t *rec, err *e)
{
  int rc = persist(s, kind, name, rec, e);
  if (rc != 0) {
    json_decref(rec);
    return rc;
  }
  publish(s, kind, name, rec);
  return 0;
}

/* The checks of a new entity's name and path, before its own. */
static int entity_check(const kind_info *k, const char *name, const char *path, err *e)
{
  int rc = check_name(name, k->name_max, k->name_param, e);
  if (rc == 0)
    rc = check_path(path, e);
  return rc;
}

/* Creates KIND/NAME (path NULL: "/"): its name, id, path and ARN, then
 * extra's members in their order (takes extra), once IAM's checks pass:
 * the name is new, the account's quota is not reached. *out: what the
 * API shows of it. */
static int entity_create(iam_system *s, const kind_info *k, const char *name, const char *path,
                         json_t *extra, json_t **out, err *e)
{
  if (path == NULL)
    path = "/";
  pthread_mutex_lock(&s->write_lock);
  json_t *all = json_object_get(s->db, k->section);
  int rc = 0;
  if (json_object_get(all, name) != NULL)
    rc = err_set(e, ERR_ENTITY_EXISTS, "%s%s%s", k->exists_before, name, k->exists_after);
  else if (k->quota != NULL && json_object_size(all) >= IAM_MAX_ENTITIES)
    rc = err_set(e, ERR_LIMIT_EXCEEDED, "Cannot exceed quota for %s: %d", k->quota,
                 IAM_MAX_ENTITIES);
  if (rc != 0) {
    pthread_mutex_unlock(&s->write_lock);
    json_decref(extra);
    return rc;
  }
  char id[32];
  unique_id(k->id_prefix, id);
  char *arn = xasprintf("arn:aws:iam::" IAM_ACCOUNT_ID ":%s%s%s", k->section, path, name);
  json_t *rec = json_pack("{s:s, s:s, s:s, s:s}", k->name_member, name, k->id_member, id,
                          "Path", path, "Arn", arn);
  free(arn);
  json_object_update(rec, extra);
  json_decref(extra);
  json_t *pub = public_copy(rec);
  rc = commit(s, k->section, name, rec, e);
  pthread_mutex_unlock(&s->write_lock);
  if (rc == 0)
    *out = pub;
  else
    json_decref(pub);
  return rc;
}

/* A view of a record for a reader (under s->rw's read side): a new value,
 * or NULL for "not there". */
typedef json_t *(*entity_view)(json_t *rec, const char *arg);

/* *out = view(KIND/NAME), or ERR_NO_SUCH_ENTITY. */
static int entity_read(iam_system *s, const kind_info *k, const char *name, entity_view view,
                       const char *arg, json_t **out, err *e)
{
  pthread_rwlock_rdlock(&s->rw);
  json_t *rec = entity_find(s, k, name);
  if (rec != NULL)
    *out = view(rec, arg);
  pthread_rwlock_unlock(&s->rw);
  return rec != NULL ? 0 : no_entity(k, name, e);
}

/* An edit of a copy of a record: 0 to commit it, 1 when nothing is to
 * change, or an error (nothing changes). */
typedef int (*entity_edit)(iam_system *s, const kind_info *k, json_t *rec, void *arg, err *e);

/* Changes KIND/NAME by edit, durably (one writer at a time). */
static int entity_update(iam_system *s, const kind_info *k, const char *name, entity_edit edit,
                         void *arg, err *e)
{
  pthread_mutex_lock(&s->write_lock);
  int rc;
  json_t *found = entity_find(s, k, name);
  if (found == NULL) {
    rc = no_entity(k, name, e);
  } else {
    json_t *rec = json_deep_copy(found);
    rc = edit(s, k, rec, arg, e);
    if (rc == 0) {
      rc = commit(s, k->section, name, rec, e);
    } else {
      json_decref(rec);
      if (rc > 0)
        rc = 0;
    }
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

static json_t *view_public(json_t *rec, const char *arg)
{
  return public_copy(rec);
}

/* ---- roles and users ---- */

int iam_role_create(iam_system *s, const char *name, const char *path, const char *trust,
                    const char *description, json_t **out, err *e)
{
  int rc;
  if ((rc = entity_check(&KINDS[KIND_ROLE], name, path, e)) != 0)
    return rc;
  if (trust == NULL)
    return no_document("assumeRolePolicyDocument", e);
  if (strlen(trust) > IAM_MAX_TRUST)
    return err_set(e, ERR_LIMIT_EXCEEDED, "Cannot exceed quota for ACLSizePerRole: %d",
                   IAM_MAX_TRUST);
  json_error_t je;
  json_t *t = json_loads(trust, 0, &je);
  if (!json_is_object(t) || json_object_get(t, "Statement") == NULL) {
    json_decref(t);
    return err_set(e, ERR_MALFORMED_POLICY, "Syntax errors in policy.");
  }
  json_decref(t);
  char now[32];
  iso_now(now);
  json_t *extra = json_pack("{s:s, s:s, s:s, s:i, s:{}, s:[], s:{}}", "CreateDate", now,
                            "AssumeRolePolicyDocument", trust, "Description",
                            description ? description : "", "MaxSessionDuration", 3600,
                            "Inline", "Attached", "_inline");
  return entity_create(s, &KINDS[KIND_ROLE], name, path, extra, out, e);
}

int iam_role_get(iam_system *s, const char *name, json_t **out, err *e)
{
  return entity_read(s, &KINDS[KIND_ROLE], name, view_public, NULL, out, e);
}

int iam_user_get(iam_system *s, const char *name, json_t **out, err *e)
{
  return entity_read(s, &KINDS[KIND_USER], name, view_public, NULL, out, e);
}

static int entity_delete(iam_system *s, const kind_info *k, const char *name, err *e)
{
  pthread_mutex_lock(&s->write_lock);
  json_t *rec = entity_find(s, k, name);
  int rc;
  if (rec == NULL) {
    rc = no_entity(k, name, e);
  } else if (json_object_size(json_object_get(rec, "Inline")) > 0) {
    rc = err_set(e, ERR_DELETE_CONFLICT, "Cannot delete entity, must delete policies first.");
  } else if (json_array_size(json_object_get(rec, "Attached")) > 0) {
    rc = err_set(e, ERR_DELETE_CONFLICT, "Cannot delete entity, must detach all policies "
                                         "first.");
  } else if (json_array_size(json_object_get(rec, "AccessKeys")) > 0) {
    rc = err_set(e, ERR_DELETE_CONFLICT, "Cannot delete entity, must delete access keys "
                                         "first.");
  } else {
    rc = commit(s, k->section, name, NULL, e);
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int iam_role_delete(iam_system *s, const char *name, err *e)
{
  return entity_delete(s, &KINDS[KIND_ROLE], name, e);
}

int iam_user_delete(iam_system *s, const char *name, err *e)
{
  return entity_delete(s, &KINDS[KIND_USER], name, e);
}

json_t *iam_entity_list(iam_system *s, const char *kind)
{
  json_t *arr = json_array();
  pthread_rwlock_rdlock(&s->rw);
  json_t *all = json_object_get(s->db, kind);
  const char **names = xcalloc(json_object_size(all) + 1, sizeof *names);
  size_t n = 0;
  const char *k;
  json_t *v;
  json_object_foreach(all, k, v) names[n++] = k;
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      const char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, public_copy(json_object_get(all, names[i])));
  free(names);
  pthread_rwlock_unlock(&s->rw);
  return arr;
}

int iam_user_create(iam_system *s, const char *name, const char *path, json_t **out, err *e)
{
  int rc;
  if ((rc = entity_check(&KINDS[KIND_USER], name, path, e)) != 0)
    return rc;
  char now[32];
  iso_now(now);
  json_t *extra = json_pack("{s:s, s:{}, s:[], s:[], s:{}}", "CreateDate", now, "Inline",
                            "Attached", "AccessKeys", "_inline");
  return entity_create(s, &KINDS[KIND_USER], name, path, extra, out, e);
}

/* ---- access keys ---- */

static int key_add(iam_system *s, const kind_info *k, json_t *rec, void *arg, err *e)
{
  json_t **out = arg;
  json_t *keys = json_object_get(rec, "AccessKeys");
  if (json_array_size(keys) >= IAM_MAX_KEYS)
    return err_set(e, ERR_LIMIT_EXCEEDED, "Cannot exceed quota for AccessKeysPerUser: %d",
                   IAM_MAX_KEYS);
  char id[32];
  unique_id("AKIA", id);
  id[20] = '\0';
  uint8_t raw[30];
  random_bytes(raw, sizeof raw);
  char secret[64];
  base64_encode(raw, sizeof raw, secret);
  secret[40] = '\0';
  for (char *c = secret; *c; c++)
    if (*c == '/' || *c == '+')
      *c = 'x';
  char now[32];
  iso_now(now);
  *out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "UserName",
                   json_string_value(json_object_get(rec, "UserName")), "AccessKeyId", id,
                   "Status", "Active", "SecretAccessKey", secret, "CreateDate", now);
  json_array_append(keys, *out);
  return 0;
}

int iam_key_create(iam_system *s, const char *user, json_t **out, err *e)
{
  json_t *key = NULL;
  int rc = entity_update(s, &KINDS[KIND_USER], user, key_add, &key, e);
  if (rc == 0)
    *out = key;
  else
    json_decref(key);
  return rc;
}

static int key_remove(iam_system *s, const kind_info *k, json_t *rec, void *arg, err *e)
{
  const char *access_key = arg;
  json_t *keys = json_object_get(rec, "AccessKeys");
  size_t i;
  json_t *key;
  json_array_foreach(keys, i, key)
  {
    if (strcmp(json_string_value(json_object_get(key, "AccessKeyId")), access_key) == 0) {
      json_array_remove(keys, i);
      return 0;
    }
  }
  return err_set(e, ERR_NO_SUCH_ENTITY, "The Access Key with id %s cannot be found.",
                 access_key);
}

int iam_key_delete(iam_system *s, const char *user, const char *access_key, err *e)
{
  return entity_update(s, &KINDS[KIND_USER], user, key_remove,
                       (void *)(access_key ? access_key : ""), e);
}

static json_t *view_keys(json_t *rec, const char *arg)
{
  json_t *arr = json_array();
  size_t i;
  json_t *k;
  json_array_foreach(json_object_get(rec, "AccessKeys"), i, k)
  {
    json_t *c = json_deep_copy(k);
    json_object_del(c, "SecretAccessKey");
    json_array_append_new(arr, c);
  }
  return arr;
}

int iam_key_list(iam_system *s, const char *user, json_t **out, err *e)
{
  return entity_read(s, &KINDS[KIND_USER], user, view_keys, NULL, out, e);
}

bool iam_key_lookup(iam_system *s, const char *access_key, char secret[IAM_SECRET_MAX],
                    char user[65])
{
  if (s == NULL)
    return false;
  bool found = false;
  pthread_rwlock_rdlock(&s->rw);
  const char *name = json_string_value(json_object_get(s->keys, access_key));
  json_t *rec = name ? json_object_get(json_object_get(s->db, "user"), name) : NULL;
  size_t i;
  json_t *k;
  json_array_foreach(json_object_get(rec, "AccessKeys"), i, k)
  {
    if (strcmp(json_string_value(json_object_get(k, "AccessKeyId")), access_key) == 0 &&
        strcmp(json_string_value(json_object_get(k, "Status")), "Active") == 0) {
      snprintf(secret, IAM_SECRET_MAX, "%s",
               json_string_value(json_object_get(k, "SecretAccessKey")));
      snprintf(user, 65, "%s", name);
      found = true;
    }
  }
  pthread_rwlock_unlock(&s->rw);
  return found;
}

/* ---- inline policies ---- */

static size_t inline_total(json_t *inl, const char *except)
{
  size_t total = 0;
  const char *k;
  json_t *v;
  json_object_foreach(inl, k, v)
  {
    if (except == NULL || strcmp(k, except) != 0)
      total += strlen(json_string_value(v));
  }
  return total;
}

typedef struct inline_arg {
  const char *policy;
  const char *doc;
  json_t *parsed; /* the edit takes it (sets NULL) */
} inline_arg;

static int inline_set(iam_system *s, const kind_info *k, json_t *rec, void *arg, err *e)
{
  inline_arg *x = arg;
  json_t *inl = json_object_get(rec, "Inline");
  if (inline_total(inl, x->policy) + strlen(x->doc) > k->inline_max)
    return err_set(e, ERR_LIMIT_EXCEEDED, "Maximum policy size of %zu bytes exceeded for %s %s",
                   k->inline_max, k->section,
                   json_string_value(json_object_get(rec, k->name_member)));
  json_object_set_new(inl, x->policy, json_string(x->doc));
  json_object_set_new(json_object_get(rec, "_inline"), x->policy, x->parsed);
  x->parsed = NULL;
  return 0;
}

int iam_inline_put(iam_system *s, const char *kind, const char *entity, const char *policy,
                   const char *doc, err *e)
{
  int rc;
  const kind_info *k = kind_of(kind);
  if (k == NULL)
    return no_kind(kind, e);
  if ((rc = check_name(policy, 128, "policyName", e)) != 0)
    return rc;
  if (doc == NULL)
    return no_document("policyDocument", e);
  inline_arg x = {policy, doc, NULL};
  if ((rc = iam_policy_parse(doc, strlen(doc), &x.parsed, e)) != 0)
    return rc;
  rc = entity_update(s, k, entity, inline_set, &x, e);
  json_decref(x.parsed);
  return rc;
}

static json_t *view_inline(json_t *rec, const char *policy)
{
  return json_deep_copy(json_object_get(json_object_get(rec, "Inline"), policy));
}

int iam_inline_get(iam_system *s, const char *kind, const char *entity, const char *policy,
                   json_t **doc, err *e)
{
  const kind_info *k = kind_of(kind);
  if (k == NULL)
    return no_kind(kind, e);
  json_t *text = NULL;
  int rc = entity_read(s, k, entity, view_inline, policy ? policy : "", &text, e);
  if (rc == 0 && text == NULL)
    rc = no_inline(k, policy, e);
  if (rc == 0)
    *doc = text;
  return rc;
}

static int inline_remove(iam_system *s, const kind_info *k, json_t *rec, void *arg, err *e)
{
  const char *policy = arg;
  if (json_object_get(json_object_get(rec, "Inline"), policy) == NULL)
    return no_inline(k, policy, e);
  json_object_del(json_object_get(rec, "Inline"), policy);
  json_object_del(json_object_get(rec, "_inline"), policy);
  return 0;
}

int iam_inline_delete(iam_system *s, const char *kind, const char *entity, const char *policy,
                      err *e)
{
  const kind_info *k = kind_of(kind);
  if (k == NULL)
    return no_kind(kind, e);
  return entity_update(s, k, entity, inline_remove, (void *)(policy ? policy : ""), e);
}

static json_t *sorted_keys(json_t *o)
{
  json_t *arr = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v)
  {
    size_t at = json_array_size(arr);
    while (at > 0 && strcmp(json_string_value(json_array_get(arr, at - 1)), k) > 0)
      at--;
    json_array_insert_new(arr, at, json_string(k));
  }
  return arr;
}

static json_t *view_inline_names(json_t *rec, const char *arg)
{
  return sorted_keys(json_object_get(rec, "Inline"));
}

int iam_inline_list(iam_system *s, const char *kind, const char *entity, json_t **out, err *e)
{
  const kind_info *k = kind_of(kind);
  if (k == NULL)
    return no_kind(kind, e);
  return entity_read(s, k, entity, view_inline_names, NULL, out, e);
}

/* ---- managed policies ---- */

/* The policy name of a customer managed policy ARN of this account. */
static const char *policy_name_of(const char *arn)
{
  static const char prefix[] = "arn:aws:iam::" IAM_ACCOUNT_ID ":policy/";
  if (arn == NULL || strncmp(arn, prefix, sizeof prefix - 1) != 0)
    return NULL;
  const char *slash = strrchr(arn, '/');
  return slash + 1;
}

static int no_policy(const char *arn, err *e)
{
  return err_set(e, ERR_NO_SUCH_ENTITY, "Policy %s does not exist or is not attachable.",
                 arn ? arn : "");
}

/* Roles and users that have arn attached (under either lock). */
static int attachment_count(iam_system *s, const char *arn)
{
  int n = 0;
  const char *kinds[] = {"role", "user"};
  for (size_t i = 0; i < 2; i++) {
    const char *k;
    json_t *rec;
    json_object_foreach(json_object_get(s->db, kinds[i]), k, rec)
    {
      size_t j;
      json_t *a;
      json_array_foreach(json_object_get(rec, "Attached"), j, a)
      {
        if (strcmp(json_string_value(a), arn) == 0)
          n++;
      }
    }
  }
  return n;
}

static json_t *policy_public(iam_system *s, json_t *rec)
{
  json_t *o = public_copy(rec);
  json_object_set_new(o, "AttachmentCount",
                      json_integer(attachment_count(s, json_string_value(json_object_get(rec, "Arn")))));
  return o;
}

int iam_policy_create(iam_system *s, const char *name, const char *path, const char *doc,
                      const char *description, json_t **out, err *e)
{
  int rc;
  if ((rc = entity_check(&KINDS[KIND_POLICY], name, path, e)) != 0)
    return rc;
  if (doc == NULL)
    return no_document("policyDocument", e);
  if (strlen(doc) > IAM_MAX_MANAGED)
    return err_set(e, ERR_LIMIT_EXCEEDED, "Cannot exceed quota for PolicySize: %d",
                   IAM_MAX_MANAGED);
  json_t *parsed;
  if ((rc = iam_policy_parse(doc, strlen(doc), &parsed, e)) != 0)
    return rc;
  char now[32];
  iso_now(now);
  json_t *extra = json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:s, s:o}", "DefaultVersionId", "v1",
                            "CreateDate", now, "UpdateDate", now, "Description",
                            description ? description : "", "IsAttachable", 1,
                            "PermissionsBoundaryUsageCount", 0, "Document", doc, "_doc", parsed);
  rc = entity_create(s, &KINDS[KIND_POLICY], name, path, extra, out, e);
  if (rc == 0)
    json_object_set_new(*out, "AttachmentCount", json_integer(0));
  return rc;
}

/* The record of a policy ARN (under either lock), or NULL. */
static json_t *policy_by_arn(iam_system *s, const char *arn)
{
  const char *name = policy_name_of(arn);
  json_t *rec = name ? json_object_get(json_object_get(s->db, "policy"), name) : NULL;
  if (rec != NULL && strcmp(json_string_value(json_object_get(rec, "Arn")), arn) != 0)
    rec = NULL;
  return rec;
}

int iam_policy_get(iam_system *s, const char *arn, json_t **out, err *e)
{
  pthread_rwlock_rdlock(&s->rw);
  json_t *rec = policy_by_arn(s, arn);
  if (rec != NULL)
    *out = policy_public(s, rec);
  pthread_rwlock_unlock(&s->rw);
  return rec != NULL ? 0 : no_policy(arn, e);
}

int iam_policy_document(iam_system *s, const char *arn, json_t **doc, err *e)
{
  pthread_rwlock_rdlock(&s->rw);
  json_t *rec = policy_by_arn(s, arn);
  if (rec != NULL)
    *doc = json_deep_copy(json_object_get(rec, "Document"));
  pthread_rwlock_unlock(&s->rw);
  return rec != NULL ? 0 : no_policy(arn, e);
}

json_t *iam_policy_list(iam_system *s)
{
  json_t *arr = json_array();
  pthread_rwlock_rdlock(&s->rw);
  const char *k;
  json_t *rec;
  json_object_foreach(json_object_get(s->db, "policy"), k, rec)
  {
    json_array_append_new(arr, policy_public(s, rec));
  }
  pthread_rwlock_unlock(&s->rw);
  return arr;
}

int iam_policy_delete(iam_system *s, const char *arn, err *e)
{
  pthread_mutex_lock(&s->write_lock);
  json_t *rec = policy_by_arn(s, arn);
  int rc;
  if (rec == NULL)
    rc = no_policy(arn, e);
  else if (attachment_count(s, arn) > 0)
    rc = err_set(e, ERR_DELETE_CONFLICT, "Cannot delete a policy attached to entities.");
  else
    rc = commit(s, "policy", policy_name_of(arn), NULL, e);
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

static int attach_one(iam_system *s, const kind_info *k, json_t *rec, void *arg, err *e)
{
  const char *arn = arg;
  if (policy_by_arn(s, arn) == NULL)
    return no_policy(arn, e);
  json_t *att = json_object_get(rec, "Attached");
  size_t i;
  json_t *a;
  json_array_foreach(att, i, a)
  {
    if (strcmp(json_string_value(a), arn) == 0)
      return 1;
  }
  if (json_array_size(att) >= IAM_MAX_ATTACHED)
    return err_set(e, ERR_LIMIT_EXCEEDED, "Cannot exceed quota for %s: %d", k->attach_quota,
                   IAM_MAX_ATTACHED);
  json_array_append_new(att, json_string(arn));
  return 0;
}

int iam_attach(iam_system *s, const char *kind, const char *entity, const char *arn, err *e)
{
  const kind_info *k = kind_of(kind);
  if (k == NULL)
    return no_kind(kind, e);
  return entity_update(s, k, entity, attach_one, (void *)arn, e);
}

static int detach_one(iam_system *s, const kind_info *k, json_t *rec, void *arg, err *e)
{
  const char *arn = arg;
  json_t *att = json_object_get(rec, "Attached");
  size_t i;
  json_t *a;
  json_array_foreach(att, i, a)
  {
    if (strcmp(json_string_value(a), arn) == 0) {
      json_array_remove(att, i);
      return 0;
    }
  }
  return err_set(e, ERR_NO_SUCH_ENTITY, "Policy %s was not found.", arn);
}

int iam_detach(iam_system *s, const char *kind, const char *entity, const char *arn, err *e)
{
  const kind_info *k = kind_of(kind);
  if (k == NULL)
    return no_kind(kind, e);
  return entity_update(s, k, entity, detach_one, (void *)(arn ? arn : ""), e);
}

static json_t *view_attached(json_t *rec, const char *arg)
{
  json_t *arr = json_array();
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(rec, "Attached"), i, a)
  {
    json_array_append_new(arr, json_pack("{s:s, s:s}", "PolicyName",
                                         policy_name_of(json_string_value(a)), "PolicyArn",
                                         json_string_value(a)));
  }
  return arr;
}

int iam_attached_list(iam_system *s, const char *kind, const char *entity, json_t **out,
                      err *e)
{
  const kind_info *k = kind_of(kind);
  if (k == NULL)
    return no_kind(kind, e);
  return entity_read(s, k, entity, view_attached, NULL, out, e);
}

/* ---- decisions ---- */

#define MAX_DOCS 64

static enum iam_decision decide(iam_system *s, json_t *rec, const char *action,
                                const char *resource, const iam_context *ctx)
{
  json_t *docs[MAX_DOCS];
  size_t n = 0;
  const char *k;
  json_t *d;
  json_object_foreach(json_object_get(rec, "_inline"), k, d)
  {
    if (n < MAX_DOCS)
      docs[n++] = d;
  }
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(rec, "Attached"), i, a)
  {
    json_t *p = policy_by_arn(s, json_string_value(a));
    json_t *doc = json_object_get(p, "_doc");
    if (doc != NULL && n < MAX_DOCS)
      docs[n++] = doc;
  }
  return iam_policy_evaluate(docs, n, action, resource, ctx);
}

enum iam_decision iam_role_decide(iam_system *s, const char *role_arn, const char *action,
                                  const char *resource, const iam_context *ctx, bool *known)
{
  static const char prefix[] = "arn:aws:iam::" IAM_ACCOUNT_ID ":role/";
  *known = false;
  if (s == NULL || role_arn == NULL || strncmp(role_arn, prefix, sizeof prefix - 1) != 0)
    return IAM_IMPLICIT_DENY;
  const char *name = strrchr(role_arn, '/') + 1;
  enum iam_decision d = IAM_IMPLICIT_DENY;
  pthread_rwlock_rdlock(&s->rw);
  json_t *rec = json_object_get(json_object_get(s->db, "role"), name);
  if (rec != NULL && strcmp(json_string_value(json_object_get(rec, "Arn")), role_arn) == 0) {
    *known = true;
    d = decide(s, rec, action, resource, ctx);
  }
  pthread_rwlock_unlock(&s->rw);
  return d;
}

enum iam_decision iam_user_decide(iam_system *s, const char *user, const char *action,
                                  const char *resource, const iam_context *ctx)
{
  enum iam_decision d = IAM_IMPLICIT_DENY;
  pthread_rwlock_rdlock(&s->rw);
  json_t *rec = json_object_get(json_object_get(s->db, "user"), user);
  if (rec != NULL)
    d = decide(s, rec, action, resource, ctx);
  pthread_rwlock_unlock(&s->rw);
  return d;
}
