/* store/store.c -- opening and closing the store, buckets, statistics.
 *
 * Why: the one place that knows the data directory's layout (store.h) and
 * the lifecycle of the store's threads.
 *
 * Invariants:
 *   (1) The LMDB environment is opened without MDB_NOSYNC (a commit is on
 *       disk when it returns) and with MDB_NOTLS (read transactions are not
 *       tied to threads).
 *   (2) DIR/blobs/00 .. ff all exist once store_open returned.
 *   (3) Every write goes through the committer (commit.c); this file only
 *       reads directly.
 *
 * States: open (threads running) -> stopping (no new changes; the committer
 * drains the queue) -> closed.
 *
 * Start reading at store_open().
 */
#include "store.h"

#include "base/mem.h"

#include "blob.h"
#include "commit.h"
#include "index.h"
#include "pg_index.h"
#include "remote.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAP_SIZE (64ull << 30)   /* sparse: only pages in use take space */
#define MAX_READERS 1024         /* concurrent read transactions */

/* ---- shared helpers (internal.h) ---- */

int64_t store__clock_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store__read_begin(store *s, MDB_txn **txn, err *e)
{
  return lmdb_read_begin(s->env, txn, e);
}

int store__check_bucket_arg(const char *bucket, err *e)
{
  if (bucket == NULL)
    return err_set(e, ERR_NO_SUCH_BUCKET, "no bucket named ''");
  size_t n = strlen(bucket);
  if (n == 0 || n > BUCKET_MAX)
    return err_set(e, ERR_NO_SUCH_BUCKET, "no bucket named '%s'", bucket);
  return 0;
}

int store__check_key(const char *key, err *e)
{
  if (key == NULL || key[0] == '\0')
    return err_set(e, ERR_INVALID, "the key is empty");
  size_t n = strlen(key);
  if (n > STORE_MAX_KEY)
    return err_set(e, ERR_KEY_TOO_LONG, "key of %zu bytes is longer than the maximum of %d", n,
                   STORE_MAX_KEY);
  return 0;
}

int store__check_meta(const str_pair *meta, size_t nmeta, err *e)
{
  size_t total = 0;
  for (size_t i = 0; i < nmeta; i++) {
    total += strlen(meta[i].name) + (meta[i].value ? strlen(meta[i].value) : 0);
    if (total > STORE_MAX_META_BYTES)
      return err_set(e, ERR_METADATA_TOO_LARGE,
                     "metadata is larger than the maximum of %d bytes", STORE_MAX_META_BYTES);
  }
  return 0;
}

int store__check_tags(const str_pair *tags, size_t ntags, err *e)
{
  if (ntags > STORE_MAX_TAGS)
    return err_set(e, ERR_INVALID_TAG, "%zu tags are more than the maximum of %d", ntags,
                   STORE_MAX_TAGS);
  for (size_t i = 0; i < ntags; i++) {
    /* AWS: 128 characters of key, 256 of value; bound the bytes */
    if (tags[i].name == NULL || strlen(tags[i].name) > 4 * 128 ||
        (tags[i].value != NULL && strlen(tags[i].value) > 4 * 256))
      return err_set(e, ERR_INVALID_TAG, "tag %zu is too long", i + 1);
  }
  return 0;
}

/* ---- open and close ---- */

static int make_dir(const char *path, err *e)
{
  if (mkdir(path, 0700) == 0 || errno == EEXIST)
    return 0;
  int saved = errno;
  return err_set(e, err_from_errno(saved), "cannot create directory '%s': %s", path,
                 strerror(saved));
}

static int sync_path(const char *path, err *e)
{
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    int saved = errno;
    if (fd >= 0)
      close(fd);
    return err_set(e, err_from_errno(saved), "cannot sync directory '%s': %s", path,
                   strerror(saved));
  }
  close(fd);
  return 0;
}

static int make_layout(store *s, err *e)
{
  char path[BLOB_PATH_MAX];
  int rc = make_dir(s->dir, e);
  snprintf(path, sizeof path, "%s/meta", s->dir);
  if (rc == 0)
    rc = make_dir(path, e);
  snprintf(path, sizeof path, "%s/blobs", s->dir);
  if (rc == 0)
    rc = make_dir(path, e);
  for (unsigned i = 0; rc == 0 && i < 256; i++) {
    char sub[BLOB_PATH_MAX];
    store__blob_dir_path(s, i, sub);
    rc = make_dir(sub, e);
  }
  if (rc == 0)
    rc = sync_path(path, e);
  if (rc == 0)
    rc = sync_path(s->dir, e);
  return rc;
}

static int open_index(store *s, err *e)
{
  char path[BLOB_PATH_MAX];
  snprintf(path, sizeof path, "%s/meta", s->dir);
  lmdb_env_options o = { .map_size = MAP_SIZE, .max_dbs = 16, .max_readers = MAX_READERS };
  int rc = lmdb_env_open(&s->env, path, &o, "the index", e);
  if (rc != 0)
    return rc;

  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (mrc != 0)
    return lmdb_error(e, mrc, "begin a write transaction");
  struct {
    const char *name;
    MDB_dbi *dbi;
  } dbs[] = {
    { "buckets", &s->db_buckets }, { "objects", &s->db_objects },
    { "uploads", &s->db_uploads }, { "parts", &s->db_parts },
    { "counters", &s->db_counters }, { "blobs", &s->db_blobs },
    { "notify", &s->db_notify }, { "feed", &s->db_feed },
    { "versions", &s->db_versions },
  };
  for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
    mrc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
    if (mrc != 0) {
      mdb_txn_abort(txn);
      return lmdb_error(e, mrc, "open the index tables");
    }
  }
  mrc = mdb_txn_commit(txn);
  return mrc ? lmdb_error(e, mrc, "commit the index tables") : 0;
}

int store_open(const char *dir, store **out, err *e)
{
  *out = NULL;
  if (dir == NULL || dir[0] == '\0' || strlen(dir) > STORE_DIR_MAX)
    return err_set(e, ERR_INVALID, "data directory '%s' is not usable", dir ? dir : "");
  store *s = xcalloc(1, sizeof *s);
  s->dir = xstrdup(dir);
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->sweep_mu, NULL);
  pthread_mutex_init(&s->fly_mu, NULL);
  pthread_mutex_init(&s->crypt_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->sweep_wake, &ca);
  pthread_condattr_destroy(&ca);

  int rc = make_layout(s, e);
  if (rc == 0)
    rc = open_index(s, e);
  if (rc == 0) {
    long n = store__sweep_run(s, 0, e);
    if (n < 0) {
      rc = (int)n;
      err_wrap(e, "start-up sweep");
    }
  }
  if (rc == 0)
    rc = store__committer_start(s, e);
  if (rc == 0)
    rc = store__sweeper_start(s, e);
  if (rc == 0)
    rc = store__lifecycle_start(s, e);
  if (rc != 0) {
    store_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

store *store_close(store *s)
{
  if (s == NULL)
    return NULL;
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_broadcast(&s->sweep_wake);
  pthread_mutex_unlock(&s->mu);
  if (s->lifecycle_running)   /* it commits: stop it before the committer */
    pthread_join(s->lifecycle, NULL);
  store__committer_stop(s);
  if (s->sweeper_running)
    pthread_join(s->sweeper, NULL);
  if (s->env != NULL)
    mdb_env_close(s->env);
  pthread_cond_destroy(&s->sweep_wake);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->sweep_mu);
  pthread_mutex_destroy(&s->fly_mu);
  pthread_mutex_destroy(&s->crypt_mu);
  memset(s->master, 0, sizeof s->master);
  store__remote_free(s->remote);
  free(s->fly);
  free(s->dir);
  free(s);
  return NULL;
}

/* ---- buckets ---- */

static bool is_ipv4(const char *s)
{
  int groups = 0;
  const char *p = s;
  for (;;) {
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
      p++;
      digits++;
    }
    if (digits == 0 || digits > 3)
      return false;
    groups++;
    if (*p == '\0')
      return groups == 4;
    if (*p != '.')
      return false;
    p++;
  }
}

bool store_bucket_name_valid(const char *name)
{
  if (name == NULL)
    return false;
  size_t n = strlen(name);
  if (n < 3 || n > BUCKET_MAX)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != '.' && c != '-')
      return false;
    if ((i == 0 || i == n - 1) && !alnum)
      return false;
  }
  if (strstr(name, "..") != NULL || strncmp(name, "xn--", 4) == 0 ||
      strncmp(name, "sthree-", 7) == 0 || strncmp(name, "amzn-s3-demo-", 13) == 0)
    return false;
  static const char *const reserved_suffixes[] = {"-s3alias", "--ol-s3", "--x-s3", ".mrap",
                                                  "--table-s3"};
  for (size_t i = 0; i < sizeof reserved_suffixes / sizeof reserved_suffixes[0]; i++) {
    size_t k = strlen(reserved_suffixes[i]);
    if (n >= k && strcmp(name + n - k, reserved_suffixes[i]) == 0)
      return false;
  }
  return !is_ipv4(name);
}

typedef struct bucket_arg {
  const char *name;    /* the bucket */
  MDB_val val;         /* its record (create) */
} bucket_arg;

static int apply_bucket_create(change *c, MDB_txn *txn, arena *a, err *e)
{
  bucket_arg *b = c->arg;
  MDB_val k = { strlen(b->name), (void *)b->name };
  int mrc = mdb_put(txn, c->s->db_buckets, &k, &b->val, MDB_NOOVERWRITE);
  if (mrc == MDB_KEYEXIST)
    return err_set(e, ERR_BUCKET_EXISTS, "bucket '%s' already exists", b->name);
  return mrc ? lmdb_error(e, mrc, "write a bucket record") : 0;
}

int store_bucket_create(store *s, const char *name, err *e)
{
  return store_bucket_create_conf(s, name, NULL, 0, e);
}

int store_bucket_create_conf(store *s, const char *name, const str_pair *conf, size_t nconf,
                             err *e)
{
  if (!store_bucket_name_valid(name))
    return err_set(e, ERR_INVALID_BUCKET_NAME, "bucket name '%s' is not valid",
                   name ? name : "");
  for (size_t i = 0; i < nconf; i++)
    if (strlen(conf[i].name) > 64 || strlen(conf[i].value) > STORE_MAX_BUCKET_CONF)
      return err_set(e, ERR_ENTITY_TOO_LARGE, "the '%.64s' configuration is too large",
                     conf[i].name);
  buf b;
  buf_init(&b, 1 << 20);
  bucket_rec rec = { .created_ms = store__clock_ms(), .conf = (str_pair *)conf, .nconf = nconf };
  store__bucket_rec_encode(&b, &rec);
  bucket_arg arg = { name, { b.len, b.data } };
  int rc = 0;
  if (s->pg != NULL) {
    rc = store__pg_bucket_create(s, name, &arg.val, e);
  } else {
    change c;
    store__change_init(&c, s, apply_bucket_create, &arg, NULL);
    rc = store__commit_run(s, &c, e);
  }
  buf_release(&b);
  return rc;
}

/* True when db has an entry whose index key starts with bucket "\0". */
static int bucket_has_entries(MDB_txn *txn, MDB_dbi db, const char *bucket, bool *has)
{
  ikey k;
  store__ikey_seek(&k, bucket, "", 0);
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, db, &cur);
  if (mrc != 0)
    return mrc;
  MDB_val kv = store__ikey_val(&k);
  MDB_val v;
  mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
  *has = mrc == 0 && kv.mv_size >= k.n && memcmp(kv.mv_data, k.b, k.n) == 0;
  mdb_cursor_close(cur);
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

static int apply_bucket_delete(change *c, MDB_txn *txn, arena *a, err *e)
{
  bucket_arg *b = c->arg;
  int rc = store__bucket_check(c->s, txn, b->name, e);
  if (rc != 0)
    return rc;
  bool objects = false;
  bool uploads = false;
  bool versions = false;
  int mrc = bucket_has_entries(txn, c->s->db_objects, b->name, &objects);
  if (mrc == 0)
    mrc = bucket_has_entries(txn, c->s->db_versions, b->name, &versions);
  objects = objects || versions;  /* S3: a bucket with versions is not empty */
  if (mrc == 0)
    mrc = bucket_has_entries(txn, c->s->db_uploads, b->name, &uploads);
  if (mrc != 0)
    return lmdb_error(e, mrc, "read the index");
  if (objects)
    return err_set(e, ERR_BUCKET_NOT_EMPTY, "bucket '%s' is not empty", b->name);
  if (uploads)  /* S3 aborts them with the bucket */
    rc = store__uploads_drop_all(c, txn, b->name, e);
  if (rc == 0)
    rc = store__notify_drop(c->s, txn, b->name, e);
  if (rc != 0)
    return rc;
  MDB_val k = { strlen(b->name), (void *)b->name };
  mrc = mdb_del(txn, c->s->db_buckets, &k, NULL);
  return mrc ? lmdb_error(e, mrc, "delete a bucket record") : 0;
}

int store_bucket_delete(store *s, const char *name, err *e)
{
  int rc = store__check_bucket_arg(name, e);
  if (rc != 0)
    return rc;
  if (s->pg != NULL)
    return store__pg_bucket_delete(s, name, e);
  bucket_arg arg = { name, { 0, NULL } };
  change c;
  store__change_init(&c, s, apply_bucket_delete, &arg, NULL);
  return store__commit_run(s, &c, e);
}

/* A change to a bucket's record: its tags, or one configuration document. */
typedef struct bupdate_arg {
  const char *name;    /* the bucket */
  const str_pair *tags;
  size_t ntags;
  const char *conf;    /* the document's name, or NULL: the tags change */
  const char *value;   /* its new text, or NULL to remove it */
} bupdate_arg;

/* The record v with t's change, encoded into b (a store_rec_edit). */
static int bucket_rec_edit(const MDB_val *v, void *arg, arena *a, buf *b, err *e)
{
  const bupdate_arg *t = arg;
  bucket_rec r;
  if (store__bucket_rec_parse(v, a, &r) != 0)
    return store__corrupt(e, "bucket");
  if (t->conf == NULL) {
    r.tags = (str_pair *)t->tags;
    r.ntags = t->ntags;
  } else {
    str_pair *conf = arena_alloc(a, (r.nconf + 1) * sizeof *conf);
    size_t n = 0;
    for (size_t i = 0; i < r.nconf; i++)
      if (strcmp(r.conf[i].name, t->conf) != 0)
        conf[n++] = r.conf[i];
    if (t->value != NULL)
      conf[n++] = (str_pair){ (char *)t->conf, (char *)t->value };
    r.conf = conf;
    r.nconf = n;
  }
  store__bucket_rec_encode(b, &r);
  return 0;
}

static int apply_bucket_update(change *c, MDB_txn *txn, arena *a, err *e)
{
  bupdate_arg *t = c->arg;
  MDB_val k = { strlen(t->name), (void *)t->name };
  MDB_val v;
  int rc = store__bucket_read(c->s, txn, t->name, &v, e);
  if (rc != 0)
    return rc;
  buf b;
  buf_init(&b, 1 << 20);
  rc = bucket_rec_edit(&v, t, a, &b, e);
  MDB_val nv = { b.len, b.data };
  int mrc = rc == 0 ? mdb_put(txn, c->s->db_buckets, &k, &nv, 0) : 0;
  buf_release(&b);
  if (rc != 0)
    return rc;
  return mrc ? lmdb_error(e, mrc, "write a bucket record") : 0;
}

/* Runs t on the bucket's record, in one commit. */
static int bucket_update(store *s, bupdate_arg *t, err *e)
{
  if (s->pg != NULL)
    return store__pg_bucket_update(s, t->name, bucket_rec_edit, t, e);
  change c;
  store__change_init(&c, s, apply_bucket_update, t, NULL);
  return store__commit_run(s, &c, e);
}

/* The bucket's record into v (bytes valid until *txn ends, or in a when
 * *txn is NULL: the PostgreSQL index). */
static int bucket_record(store *s, const char *name, arena *a, MDB_txn **txn, MDB_val *v, err *e)
{
  *txn = NULL;
  if (s->pg == NULL)
    return store__bucket_read_begin(s, name, txn, v, e);
  int rc = store__check_bucket_arg(name, e);
  return rc != 0 ? rc : store__pg_bucket_read(s, name, a, v, e);
}

int store_bucket_tags_set(store *s, const char *name, const str_pair *tags, size_t ntags,
                          err *e)
{
  int rc = store__check_bucket_arg(name, e);
  if (rc != 0)
    return rc;
  if (ntags > STORE_MAX_BUCKET_TAGS)
    return err_set(e, ERR_INVALID_TAG, "%zu tags are more than the maximum of %d", ntags,
                   STORE_MAX_BUCKET_TAGS);
  for (size_t i = 0; i < ntags; i++)
    if (tags[i].name == NULL || strlen(tags[i].name) > 4 * 128 ||
        (tags[i].value != NULL && strlen(tags[i].value) > 4 * 256))
      return err_set(e, ERR_INVALID_TAG, "tag %zu is too long", i + 1);
  bupdate_arg t = { name, tags, ntags, NULL, NULL };
  return bucket_update(s, &t, e);
}

int store_bucket_tags_get(store *s, const char *name, arena *a, str_pair **tags, size_t *n,
                          err *e)
{
  *tags = NULL;
  *n = 0;
  MDB_txn *txn;
  MDB_val v;
  int rc = bucket_record(s, name, a, &txn, &v, e);
  if (rc != 0)
    return rc;
  bucket_rec r;
  if (store__bucket_rec_parse(&v, a, &r) != 0) {
    rc = store__corrupt(e, "bucket");
  } else {
    *tags = r.tags;
    *n = r.ntags;
  }
  mdb_txn_abort(txn);
  return rc;
}

int store_bucket_conf_set(store *s, const char *name, const char *what, const char *value,
                          err *e)
{
  int rc = store__check_bucket_arg(name, e);
  if (rc != 0)
    return rc;
  if (what == NULL || *what == '\0' || strlen(what) > 64)
    return err_set(e, ERR_INVALID, "a bucket configuration needs a name of 1 to 64 bytes");
  if (value != NULL && strlen(value) > STORE_MAX_BUCKET_CONF)
    return err_set(e, ERR_ENTITY_TOO_LARGE, "the '%s' configuration is larger than %d bytes",
                   what, STORE_MAX_BUCKET_CONF);
  bupdate_arg t = { name, NULL, 0, what, value };
  return bucket_update(s, &t, e);
}

int store_bucket_conf_get(store *s, const char *name, const char *what, arena *a,
                          const char **value, err *e)
{
  *value = NULL;
  MDB_txn *txn;
  MDB_val v;
  int rc = bucket_record(s, name, a, &txn, &v, e);
  if (rc != 0)
    return rc;
  bucket_rec r;
  if (store__bucket_rec_parse(&v, a, &r) != 0)
    rc = store__corrupt(e, "bucket");
  else
    for (size_t i = 0; i < r.nconf; i++)
      if (strcmp(r.conf[i].name, what) == 0)
        *value = r.conf[i].value;
  mdb_txn_abort(txn);
  return rc;
}

int store_bucket_get(store *s, const char *name, arena *a, store_bucket *out, err *e)
{
  MDB_txn *txn;
  MDB_val v;
  int rc = bucket_record(s, name, a, &txn, &v, e);
  if (rc != 0)
    return rc;
  if (store__bucket_rec_decode(&v, &out->created_ms) != 0)
    rc = store__corrupt(e, "bucket");
  else
    out->name = arena_strdup(a, name);
  mdb_txn_abort(txn);
  return rc;
}

int store_bucket_list(store *s, arena *a, store_bucket **out, size_t *n, err *e)
{
  *out = NULL;
  *n = 0;
  if (s->pg != NULL)
    return store__pg_bucket_list(s, a, out, n, e);
  MDB_txn *txn = NULL;
  int rc = store__read_begin(s, &txn, e);
  if (rc != 0)
    return rc;
  MDB_stat st;
  MDB_cursor *cur = NULL;
  int mrc = mdb_stat(txn, s->db_buckets, &st);
  if (mrc == 0)
    mrc = mdb_cursor_open(txn, s->db_buckets, &cur);
  if (mrc != 0) {
    mdb_txn_abort(txn);
    return lmdb_error(e, mrc, "read the bucket list");
  }
  store_bucket *list = arena_alloc(a, (st.ms_entries + 1) * sizeof *list);
  size_t count = 0;
  MDB_val k;
  MDB_val v;
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && count < st.ms_entries;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (store__bucket_rec_decode(&v, &list[count].created_ms) != 0) {
      rc = store__corrupt(e, "bucket");
      break;
    }
    list[count].name = arena_strndup(a, k.mv_data, k.mv_size);
    count++;
  }
  if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
    rc = lmdb_error(e, mrc, "read the bucket list");
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (rc == 0) {
    *out = list;
    *n = count;
  }
  return rc;
}

/* ---- statistics ---- */

void store_stats_get(store *s, store_stats *out)
{
  memset(out, 0, sizeof *out);
  MDB_txn *txn = NULL;
  if (s->pg != NULL)
    store__pg_stats(s, out);
  else if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
    MDB_stat st;
    if (mdb_stat(txn, s->db_buckets, &st) == 0)
      out->buckets = st.ms_entries;
    store__counters_get(s, txn, &out->objects, &out->bytes);
    mdb_txn_abort(txn);
  }
  lmdb_committer_stats(&s->committer, &out->changes, &out->commits);
  pthread_mutex_lock(&s->mu);
  out->swept_blobs = s->swept;
  pthread_mutex_unlock(&s->mu);
}

long store_sweep(store *s, int min_age_seconds, err *e)
{
  return store__sweep_run(s, min_age_seconds, e);
}
