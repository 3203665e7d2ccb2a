/* store/pg_index.c -- the store's index in PostgreSQL: buckets, objects,
 * multipart uploads, notification configurations and the change feed that
 * several tarn nodes share (`tarn server --metadata postgres://...`).
 *
 * Why: one machine's LMDB cannot be shared; PostgreSQL already is the
 * database several writers share with transactions. The store's entry
 * points (store.c, object.c, list.c, multipart.c, feed.c, version.c) call
 * these when s->pg is set; records keep index.h's byte form (a bytea
 * column next to the columns queries need), so encoding and decoding stay
 * in index.c. Versioning and object lock are version.c's, run on this
 * file's vtab (vtab.h: PG_OPS) inside the transaction of the change.
 *
 * Tables (created once by store_metadata_set, pg_pool_schema):
 *   tarn_buckets  name -> record (creation time, tags, documents)
 *   tarn_objects  (bucket, key) -> size, record; key order is bytewise
 *                 (COLLATE "C"), the order S3 lists in
 *   tarn_uploads  (bucket, key, upload id) -> record
 *   tarn_parts    (upload id, number) -> record
 *   tarn_notify   bucket -> notification configuration text
 *   tarn_feed     seq -> feed entry (feed.c's bytes), owner, claimed_ms
 *   tarn_keys     name -> key: "sse-master", the SSE-S3 master key that
 *                 every node seals and opens data keys with (crypt.c)
 *   tarn_versions (bucket, key, seq) -> version id, record: the versions
 *                 of a versioned bucket's keys other than the current one
 *                 (which stays in tarn_objects) and the delete markers
 *                 (version.c's layout); seq from the sequence tarn_vseq
 *
 * Invariants:
 *   (1) A change is one PostgreSQL transaction (pg_transaction): the index
 *       rows and the feed entry it appends commit together or not at all
 *       (DESIGN.md §6). Commit is the acknowledgement (synchronous_commit).
 *   (2) Changes to a bucket's objects and uploads first take its row FOR
 *       KEY SHARE; deleting the bucket takes it FOR UPDATE, so a bucket is
 *       never deleted with an object being put into it.
 *   (3) A write reads the row it replaces FOR UPDATE; blobs it no longer
 *       references are removed after the commit, only if it committed
 *       (store__blob_unlink: the backend's delete queue, remote.c (5)).
 *       Blobs are never shared between records (a copy is a backend copy).
 *   (4) Feed entries are claimed, not just read: a read marks up to max
 *       unclaimed entries (FOR UPDATE SKIP LOCKED) as this node's; trim
 *       removes only this node's. So two nodes never deliver one entry,
 *       and entries claimed by a node that died are claimed again once
 *       their lease (TARN_FEED_LEASE_SECONDS, default 300) ran out. A
 *       node's name derives from its host and data directory, so a node
 *       restarted on the same directory takes back its own entries.
 *   (5) Object bytes are never here: inline objects live in the record,
 *       the others in the object backend, which every node reaches.
 *   (6) A put or delete reads its bucket's row FOR SHARE (the versioning
 *       state it acts on), which a versioning or lock configuration change
 *       (FOR NO KEY UPDATE) waits for, and the other way round.
 *   (7) In a bucket that has (had) versioning, the changes of one key take
 *       a transaction-level advisory lock on it first: the reads of the
 *       current and newest versions that decide what a change does are not
 *       raced by another node, and a later version gets a larger seq.
 *       A version listing pages through rows in (key, current first, newest
 *       first) order; each page is its own snapshot.
 *
 * Start reading at store_metadata_set(), then store__pg_object_put().
 */
#include "pg_index.h"

#include "blob.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <libpq-fe.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEASE_DEFAULT_S 300

static const char SCHEMA[] =
  "CREATE TABLE IF NOT EXISTS tarn_buckets ("
  "  name text COLLATE \"C\" PRIMARY KEY,"
  "  rec bytea NOT NULL);"
  "CREATE TABLE IF NOT EXISTS tarn_objects ("
  "  bucket text COLLATE \"C\" NOT NULL,"
  "  key text COLLATE \"C\" NOT NULL,"
  "  size bigint NOT NULL,"
  "  rec bytea NOT NULL,"
  "  PRIMARY KEY (bucket, key));"
  "CREATE TABLE IF NOT EXISTS tarn_uploads ("
  "  bucket text COLLATE \"C\" NOT NULL,"
  "  key text COLLATE \"C\" NOT NULL,"
  "  upload_id text COLLATE \"C\" NOT NULL,"
  "  rec bytea NOT NULL,"
  "  PRIMARY KEY (bucket, key, upload_id));"
  "CREATE TABLE IF NOT EXISTS tarn_parts ("
  "  upload_id text COLLATE \"C\" NOT NULL,"
  "  number integer NOT NULL,"
  "  rec bytea NOT NULL,"
  "  PRIMARY KEY (upload_id, number));"
  "CREATE TABLE IF NOT EXISTS tarn_notify ("
  "  bucket text COLLATE \"C\" PRIMARY KEY,"
  "  config text NOT NULL);"
  "CREATE TABLE IF NOT EXISTS tarn_feed ("
  "  seq bigserial PRIMARY KEY,"
  "  rec bytea NOT NULL,"
  "  owner text,"
  "  claimed_ms bigint);"
  "CREATE TABLE IF NOT EXISTS tarn_keys ("
  "  name text COLLATE \"C\" PRIMARY KEY,"
  "  key bytea NOT NULL);"
  "CREATE TABLE IF NOT EXISTS tarn_versions ("
  "  bucket text COLLATE \"C\" NOT NULL,"
  "  key text COLLATE \"C\" NOT NULL,"
  "  seq bigint NOT NULL,"
  "  vid text COLLATE \"C\" NOT NULL,"
  "  rec bytea NOT NULL,"
  "  PRIMARY KEY (bucket, key, seq));"
  "CREATE SEQUENCE IF NOT EXISTS tarn_vseq;";

/* ---- statement parameters ---- */

#define PRM_MAX 8

typedef struct prm {
  const char *v[PRM_MAX];
  int len[PRM_MAX];
  int fmt[PRM_MAX];            /* 1: binary (bytea) */
  char num[PRM_MAX][24];       /* integers as text */
  int n;
} prm;

static void p_text(prm *p, const char *s)
{
  p->v[p->n] = s;
  p->len[p->n] = 0;
  p->fmt[p->n] = 0;
  p->n++;
}

static void p_bytes(prm *p, const MDB_val *v)
{
  p->v[p->n] = v->mv_size > 0 ? v->mv_data : "";
  p->len[p->n] = (int)v->mv_size;
  p->fmt[p->n] = 1;
  p->n++;
}

static void p_int(prm *p, int64_t x)
{
  snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)x);
  p_text(p, p->num[p->n]);
}

/* Keys, prefixes and markers go to text columns, which hold only UTF-8:
 * other bytes are the client's error (S3's keys are UTF-8), not ours. */
static int check_text(const prm *p, PGresult **out, const char *what, err *e)
{
  for (int i = 0; i < p->n; i++)
    if (p->fmt[i] == 0 && !utf8_valid(p->v[i], strlen(p->v[i]))) {
      if (out != NULL)
        *out = NULL;
      return err_set(e, ERR_INVALID, "cannot %s: a key, prefix or marker that is not UTF-8",
                     what);
    }
  return 0;
}

static int ex(PGconn *c, const char *sql, const prm *p, PGresult **out, const char *what, err *e)
{
  int rc = check_text(p, out, what, e);
  return rc != 0 ? rc : pg_exec_bin(c, sql, p->n, p->v, p->len, p->fmt, out, what, e);
}

/* A statement outside a transaction (reads), on a connection of the pool. */
static int query(store *s, const char *sql, const prm *p, PGresult **out, const char *what,
                 err *e)
{
  int rc = check_text(p, out, what, e);
  return rc != 0 ? rc : pg_pool_exec(s->pg, sql, p->n, p->v, p->len, p->fmt, out, what, e);
}

/* A bytea column of a text result, copied into a. */
static MDB_val col_bytes(const PGresult *r, int row, int col, arena *a)
{
  size_t n = 0;
  unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
  if (raw == NULL)
    mem_out_of_memory();
  MDB_val v = { n, arena_memdup(a, raw, n > 0 ? n : 1) };
  PQfreemem(raw);
  return v;
}

/* ---- blobs dropped by a change (invariant (3)) ---- */

typedef struct drops {
  blob_id *b;
  size_t n;
  size_t cap;
} drops;

static void drops_add(drops *d, const blob_id *id)
{
  if (d->n == d->cap) {
    d->cap = d->cap ? 2 * d->cap : 8;
    d->b = xrealloc(d->b, d->cap * sizeof *d->b);
  }
  d->b[d->n++] = *id;
}

/* Removes the blobs after a commit (ok), forgets them otherwise. */
static void drops_end(store *s, drops *d, bool ok)
{
  for (size_t i = 0; ok && i < d->n; i++)
    store__blob_unlink(s, &d->b[i]);
  free(d->b);
  memset(d, 0, sizeof *d);
}

/* The blob of a part record. */
static void drop_part(drops *d, const MDB_val *rec)
{
  part_rec r;
  if (store__part_rec_decode(rec, NULL, &r) == 0)
    drops_add(d, &r.blob);
}

/* The blobs of the part records in r's first column; clears r. */
static void drop_parts(drops *d, PGresult *r)
{
  arena *a = arena_new();
  for (int i = 0; i < PQntuples(r); i++) {
    MDB_val v = col_bytes(r, i, 0, a);
    drop_part(d, &v);
  }
  arena_free(a);
  PQclear(r);
}

/* ---- opening ---- */

int store_metadata_set(store *s, pg_pool *p, err *e)
{
  if (s->remote == NULL)
    return err_set(e, ERR_INVALID, "metadata in PostgreSQL needs an object backend (--objects "
                   "s3://...): every node must reach every object's bytes");
  int rc = pg_pool_schema(p, "tarn_store", SCHEMA, e);
  if (rc != 0)
    return rc;
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  char seed[sizeof host + STORE_DIR_MAX + 2];
  snprintf(seed, sizeof seed, "%s:%s", host, s->dir);
  uint8_t d[32];
  sha256(seed, strlen(seed), d);
  hex_encode(d, 16, s->node);
  s->pg = p;
  return 0;
}

/* ---- buckets ---- */

/* The bucket record last read by this thread, kept for the rest of the same
 * API request (its origin's request id): one request reads its bucket's
 * record several times (policy, ACL, CORS...), and one read is also one
 * consistent view. Any change made by the thread forgets it. */
static _Thread_local struct {
  char request[80];            /* the request it was read for, "" for none */
  char bucket[BUCKET_MAX + 1];
  uint8_t *rec;                /* heap */
  size_t len;
} seen;

static void seen_forget(void)
{
  free(seen.rec);
  memset(&seen, 0, sizeof seen);
}

static const char *request_now(void)
{
  const store_origin *o = store__origin_current();
  if (o == NULL || o->request_id == NULL || o->request_id[0] == '\0' ||
      strlen(o->request_id) >= sizeof seen.request)
    return NULL;
  return o->request_id;
}


/* Takes the bucket's row (lock: "KEY SHARE", "SHARE", "NO KEY UPDATE",
 * "UPDATE", or NULL: only reads it); rec (optional) gets its record.
 * ERR_NO_SUCH_BUCKET when there is none. */
static int bucket_lock(PGconn *c, const char *bucket, const char *lock, arena *a, MDB_val *rec,
                       err *e)
{
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT rec FROM tarn_buckets WHERE name = $1%s%s",
           lock != NULL ? " FOR " : "", lock != NULL ? lock : "");
  prm p = { .n = 0 };
  p_text(&p, bucket);
  PGresult *r = NULL;
  int rc = ex(c, sql, &p, &r, "read a bucket", e);
  if (rc != 0)
    return rc;
  if (PQntuples(r) == 0)
    rc = err_set(e, ERR_NO_SUCH_BUCKET, "no bucket named '%s'", bucket);
  else if (rec != NULL)
    *rec = col_bytes(r, 0, 0, a);
  PQclear(r);
  return rc;
}

typedef struct bucket_txn {
  const char *name;
  const MDB_val *rec;          /* create */
  store_rec_edit fn;           /* update */
  void *arg;
  drops dead;                  /* delete: the blobs of the uploads' parts */
} bucket_txn;

static int txn_bucket_create(PGconn *c, void *arg, err *e)
{
  bucket_txn *t = arg;
  prm p = { .n = 0 };
  p_text(&p, t->name);
  p_bytes(&p, t->rec);
  PGresult *r = NULL;
  int rc = ex(c, "INSERT INTO tarn_buckets (name, rec) VALUES ($1, $2) ON CONFLICT DO NOTHING",
              &p, &r, "create a bucket", e);
  if (rc == 0 && strcmp(PQcmdTuples(r), "1") != 0)
    rc = err_set(e, ERR_BUCKET_EXISTS, "bucket '%s' already exists", t->name);
  PQclear(r);
  return rc;
}

int store__pg_bucket_create(store *s, const char *name, const MDB_val *rec, err *e)
{
  seen_forget();
  bucket_txn t = { .name = name, .rec = rec };
  return pg_transaction(s->pg, NULL, txn_bucket_create, &t, e);
}

/* True when sql (one parameter: the bucket) returns a row. */
static int any_row(PGconn *c, const char *sql, const char *bucket, bool *any, err *e)
{
  prm p = { .n = 0 };
  p_text(&p, bucket);
  PGresult *r = NULL;
  int rc = ex(c, sql, &p, &r, "read the index", e);
  *any = rc == 0 && PQntuples(r) > 0;
  PQclear(r);
  return rc;
}

static int txn_bucket_delete(PGconn *c, void *arg, err *e)
{
  bucket_txn *t = arg;
  drops_end(NULL, &t->dead, false);  /* a retry starts afresh */
  int rc = bucket_lock(c, t->name, "UPDATE", NULL, NULL, e);
  bool objects = false;
  if (rc == 0)
    rc = any_row(c, "SELECT 1 FROM tarn_objects WHERE bucket = $1 LIMIT 1", t->name, &objects,
                 e);
  if (rc == 0 && !objects)  /* delete markers and older versions count (S3) */
    rc = any_row(c, "SELECT 1 FROM tarn_versions WHERE bucket = $1 LIMIT 1", t->name, &objects,
                 e);
  if (rc == 0 && objects)
    rc = err_set(e, ERR_BUCKET_NOT_EMPTY, "bucket '%s' is not empty", t->name);
  if (rc != 0)
    return rc;
  prm p = { .n = 0 };
  p_text(&p, t->name);
  PGresult *r = NULL;
  /* S3 aborts the uploads in progress with the bucket */
  rc = ex(c, "DELETE FROM tarn_parts WHERE upload_id IN "
             "(SELECT upload_id FROM tarn_uploads WHERE bucket = $1) RETURNING rec",
          &p, &r, "delete the bucket's parts", e);
  if (rc != 0)
    return rc;
  drop_parts(&t->dead, r);
  rc = ex(c, "DELETE FROM tarn_uploads WHERE bucket = $1", &p, NULL, "delete the bucket's uploads",
          e);
  if (rc == 0)
    rc = ex(c, "DELETE FROM tarn_notify WHERE bucket = $1", &p, NULL,
            "delete a notification configuration", e);
  if (rc == 0)
    rc = ex(c, "DELETE FROM tarn_buckets WHERE name = $1", &p, NULL, "delete a bucket", e);
  return rc;
}

int store__pg_bucket_delete(store *s, const char *name, err *e)
{
  seen_forget();
  bucket_txn t = { .name = name };
  int rc = pg_transaction(s->pg, NULL, txn_bucket_delete, &t, e);
  drops_end(s, &t.dead, rc == 0);
  return rc;
}

/* Inside a transaction: runs fn on the record old and writes what it made
 * with sql, whose parameters are p's and then the new record. */
static int rewrite(PGconn *c, const MDB_val *old, store_rec_edit fn, void *arg, arena *a,
                   const char *sql, prm *p, const char *what, err *e)
{
  buf b;
  buf_init(&b, 1 << 20);
  int rc = fn(old, arg, a, &b, e);
  if (rc == 0) {
    MDB_val nv = { b.len, b.data };
    p_bytes(p, &nv);
    rc = ex(c, sql, p, NULL, what, e);
  }
  buf_release(&b);
  return rc;
}

static int txn_bucket_update(PGconn *c, void *arg, err *e)
{
  bucket_txn *t = arg;
  arena *a = arena_new();
  MDB_val old;
  int rc = bucket_lock(c, t->name, "NO KEY UPDATE", a, &old, e);
  prm p = { .n = 0 };
  p_text(&p, t->name);
  if (rc == 0)
    rc = rewrite(c, &old, t->fn, t->arg, a, "UPDATE tarn_buckets SET rec = $2 WHERE name = $1",
                 &p, "write a bucket record", e);
  arena_free(a);
  return rc;
}

int store__pg_bucket_update(store *s, const char *name, store_rec_edit fn, void *arg, err *e)
{
  seen_forget();
  bucket_txn t = { .name = name, .fn = fn, .arg = arg };
  return pg_transaction(s->pg, NULL, txn_bucket_update, &t, e);
}

int store__pg_bucket_read(store *s, const char *name, arena *a, MDB_val *v, err *e)
{
  const char *req = request_now();
  if (req != NULL && seen.rec != NULL && strcmp(seen.request, req) == 0 &&
      strcmp(seen.bucket, name) == 0) {
    if (v != NULL) {
      v->mv_size = seen.len;
      v->mv_data = arena_memdup(a, seen.rec, seen.len > 0 ? seen.len : 1);
    }
    return 0;
  }
  prm p = { .n = 0 };
  p_text(&p, name);
  PGresult *r = NULL;
  int rc = query(s, "SELECT rec FROM tarn_buckets WHERE name = $1", &p, &r, "read a bucket", e);
  if (rc != 0)
    return rc;
  if (PQntuples(r) == 0) {
    rc = err_set(e, ERR_NO_SUCH_BUCKET, "no bucket named '%s'", name);
  } else {
    MDB_val got = col_bytes(r, 0, 0, a);
    if (v != NULL)
      *v = got;
    if (req != NULL && strlen(name) <= BUCKET_MAX) {
      seen_forget();
      snprintf(seen.request, sizeof seen.request, "%s", req);
      snprintf(seen.bucket, sizeof seen.bucket, "%s", name);
      seen.rec = xmalloc(got.mv_size > 0 ? got.mv_size : 1);
      memcpy(seen.rec, got.mv_data, got.mv_size);
      seen.len = got.mv_size;
    }
  }
  PQclear(r);
  return rc;
}

int store__pg_bucket_list(store *s, arena *a, store_bucket **out, size_t *n, err *e)
{
  prm p = { .n = 0 };
  PGresult *r = NULL;
  int rc = query(s, "SELECT name, rec FROM tarn_buckets ORDER BY name", &p, &r,
                 "read the bucket list", e);
  if (rc != 0)
    return rc;
  int rows = PQntuples(r);
  store_bucket *list = arena_alloc(a, ((size_t)rows + 1) * sizeof *list);
  for (int i = 0; i < rows && rc == 0; i++) {
    MDB_val v = col_bytes(r, i, 1, a);
    if (store__bucket_rec_decode(&v, &list[i].created_ms) != 0)
      rc = store__corrupt(e, "bucket");
    list[i].name = arena_strdup(a, PQgetvalue(r, i, 0));
  }
  PQclear(r);
  if (rc == 0) {
    *out = list;
    *n = (size_t)rows;
  }
  return rc;
}

void store__pg_stats(store *s, store_stats *out)
{
  prm p = { .n = 0 };
  PGresult *r = NULL;
  err e;
  err_clear(&e);
  if (query(s, "SELECT (SELECT count(*) FROM tarn_buckets), count(*), coalesce(sum(size), 0) "
               "FROM tarn_objects", &p, &r, "read the statistics", &e) != 0)
    return;
  if (PQntuples(r) == 1) {
    out->buckets = (uint64_t)(int64_t)pg_col_int(r, 0, 0);
    out->objects = (uint64_t)(int64_t)pg_col_int(r, 0, 1);
    out->bytes = (uint64_t)(int64_t)pg_col_int(r, 0, 2);
  }
  PQclear(r);
}

/* ---- the feed, inside a change ---- */

/* Appends n to the feed when the bucket has a notification configuration
 * (feed.c invariant (1)); *fed tells whether it did. */
static int feed_append(PGconn *c, const feed_note *n, bool *fed, err *e)
{
  buf b;
  buf_init(&b, 64 << 10);
  store__feed_encode(&b, n, store__origin_current());
  MDB_val v = { b.len, b.data };
  prm p = { .n = 0 };
  p_text(&p, n->bucket);
  p_bytes(&p, &v);
  PGresult *r = NULL;
  int rc = ex(c, "INSERT INTO tarn_feed (rec) SELECT $2 "
                 "WHERE EXISTS (SELECT 1 FROM tarn_notify WHERE bucket = $1)",
              &p, &r, "append to the change feed", e);
  buf_release(&b);
  if (rc == 0 && strcmp(PQcmdTuples(r), "1") == 0)
    *fed = true;
  PQclear(r);
  return rc;
}

/* Tells this node's feed consumer, after a commit that appended. */
static void feed_kick(store *s, bool fed)
{
  if (!fed)
    return;
  pthread_mutex_lock(&s->mu);
  void (*fn)(void *) = s->feed_watch;
  void *ctx = s->feed_ctx;
  pthread_mutex_unlock(&s->mu);
  if (fn != NULL)
    fn(ctx);
}

/* ---- versions: version.c's tables here (vtab.h) ---- */

typedef struct pgv {
  PGconn *c;
  bool write;                  /* in a change: the rows read are locked */
  drops *dead;                 /* blobs dropped (write) */
  bool *fed;                   /* set when the feed was appended to (write) */
  arena *a;                    /* the bucket's record, once read */
  MDB_val brec;
  bool have_brec;
} pgv;

static PGconn *pv_conn(vtab *t)
{
  return ((pgv *)t->ctx)->c;
}

/* A record of t's bucket and key (column 0 of row 0 of res) into r, its
 * key and strings owned by a. */
static int pv_decode(vtab *t, const char *key, const PGresult *res, arena *a, obj_rec *r,
                     err *e)
{
  MDB_val v = col_bytes(res, 0, 0, a);
  ikey k;
  store__ikey_make(&k, t->bucket, key, strlen(key));
  MDB_val kv = store__ikey_val(&k);
  if (store__obj_rec_decode(&kv, &v, a, r) != 0)
    return store__corrupt(e, "object");
  r->lk = arena_memdup(a, r->lk, r->lkn > 0 ? r->lkn : 1);  /* not into k */
  return 0;
}

/* The record sql (parameters p) returns: 0 or MDB_NOTFOUND. */
static int pv_row(vtab *t, const char *sql, const prm *p, const char *key, arena *a, obj_rec *r,
                  const char *what, err *e)
{
  PGresult *res = NULL;
  int rc = ex(pv_conn(t), sql, p, &res, what, e);
  if (rc == 0 && PQntuples(res) == 0)
    rc = MDB_NOTFOUND;
  if (rc == 0)
    rc = pv_decode(t, key, res, a, r, e);
  PQclear(res);
  return rc;
}

static int pv_cur_get(vtab *t, const uint8_t *lk, size_t lkn, arena *a, obj_rec *r, err *e)
{
  char *key = arena_strndup(a, (const char *)lk, lkn);
  prm p = { .n = 0 };
  p_text(&p, t->bucket);
  p_text(&p, key);
  bool w = ((pgv *)t->ctx)->write;
  return pv_row(t, w ? "SELECT rec FROM tarn_objects WHERE bucket = $1 AND key = $2 FOR UPDATE"
                     : "SELECT rec FROM tarn_objects WHERE bucket = $1 AND key = $2",
                &p, key, a, r, "read an object record", e);
}

/* Writes r as t's bucket's current record of its key (version false) or as
 * its version at r->vseq. */
static int pv_write(vtab *t, const obj_rec *r, bool version, arena *a, err *e)
{
  ikey k;
  bool lng = store__ikey_make(&k, t->bucket, r->lk, r->lkn);
  buf b;
  buf_init(&b, 1 << 20);
  store__obj_rec_reencode(&b, r, a, lng);
  MDB_val v = { b.len, b.data };
  prm p = { .n = 0 };
  p_text(&p, t->bucket);
  p_text(&p, arena_strndup(a, (const char *)r->lk, r->lkn));
  p_int(&p, version ? (int64_t)r->vseq : (int64_t)r->size);
  p_text(&p, r->version_id != NULL ? r->version_id : "");
  p_bytes(&p, &v);
  int rc = ex(pv_conn(t),
              version ? "INSERT INTO tarn_versions (bucket, key, seq, vid, rec) "
                        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (bucket, key, seq) "
                        "DO UPDATE SET vid = excluded.vid, rec = excluded.rec"
                      : "INSERT INTO tarn_objects (bucket, key, size, rec) "
                        "SELECT $1, $2, $3, $5 WHERE $4 = $4 ON CONFLICT (bucket, key) "
                        "DO UPDATE SET size = excluded.size, rec = excluded.rec",
              &p, NULL, version ? "write a version record" : "write an object record", e);
  buf_release(&b);
  return rc;
}

static int pv_cur_put(vtab *t, const obj_rec *r, arena *a, err *e)
{
  return pv_write(t, r, false, a, e);
}

static int pv_cur_del(vtab *t, const uint8_t *lk, size_t lkn, err *e)
{
  char *key = xstrndup((const char *)lk, lkn);
  prm p = { .n = 0 };
  p_text(&p, t->bucket);
  p_text(&p, key);
  int rc = ex(pv_conn(t), "DELETE FROM tarn_objects WHERE bucket = $1 AND key = $2", &p, NULL,
              "delete an object record", e);
  free(key);
  return rc;
}

static int pv_ver_get(vtab *t, const uint8_t *lk, size_t lkn, const char *vid, arena *a,
                      obj_rec *r, err *e)
{
  char *key = arena_strndup(a, (const char *)lk, lkn);
  prm p = { .n = 0 };
  p_text(&p, t->bucket);
  p_text(&p, key);
  p_text(&p, vid == NULL ? "" : strcmp(vid, "null") == 0 ? "" : vid);
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT rec FROM tarn_versions WHERE bucket = $1 AND key = $2 AND %s "
           "ORDER BY seq DESC LIMIT 1%s", vid == NULL ? "$3 = $3" : "vid = $3",
           ((pgv *)t->ctx)->write ? " FOR UPDATE" : "");
  return pv_row(t, sql, &p, key, a, r, "read a version record", e);
}

static int pv_ver_put(vtab *t, const obj_rec *r, arena *a, err *e)
{
  return pv_write(t, r, true, a, e);
}

static int pv_ver_del(vtab *t, const obj_rec *r, err *e)
{
  char *key = xstrndup((const char *)r->lk, r->lkn);
  prm p = { .n = 0 };
  p_text(&p, t->bucket);
  p_text(&p, key);
  p_int(&p, (int64_t)r->vseq);
  int rc = ex(pv_conn(t), "DELETE FROM tarn_versions WHERE bucket = $1 AND key = $2 AND seq = $3",
              &p, NULL, "delete a version record", e);
  free(key);
  return rc;
}

static int pv_seq_next(vtab *t, uint64_t *seq, err *e)
{
  prm p = { .n = 0 };
  PGresult *r = NULL;
  int rc = ex(pv_conn(t), "SELECT nextval('tarn_vseq')", &p, &r, "number a version", e);
  if (rc == 0)
    *seq = (uint64_t)(int64_t)pg_col_int(r, 0, 0);
  PQclear(r);
  return rc;
}

static int pv_blob_ref(vtab *t, const blob_id *id, err *e)
{
  (void)t;
  (void)id;
  (void)e;
  return 0;  /* a blob belongs to the one record naming it (invariant (3)) */
}

static int pv_blob_drop(vtab *t, const blob_id *id, err *e)
{
  (void)e;
  drops_add(((pgv *)t->ctx)->dead, id);
  return 0;
}

static int pv_count(vtab *t, int64_t objects, int64_t bytes, err *e)
{
  (void)t;
  (void)objects;
  (void)bytes;
  (void)e;
  return 0;  /* the statistics count tarn_objects' rows */
}

/* Invariant (6): a change reads the bucket FOR SHARE. */
static int pv_bucket_rec(vtab *t, arena *a, MDB_val *v, err *e)
{
  (void)a;
  pgv *x = t->ctx;
  if (!x->have_brec) {
    int rc = bucket_lock(x->c, t->bucket, x->write ? "SHARE" : NULL, x->a, &x->brec, e);
    if (rc != 0)
      return rc;
    x->have_brec = true;
  }
  *v = x->brec;
  return 0;
}

static int pv_feed(vtab *t, const feed_note *n, err *e)
{
  pgv *x = t->ctx;
  return feed_append(x->c, n, x->fed, e);
}

static const vtab_ops PG_OPS = {
  pv_cur_get, pv_cur_put, pv_cur_del, pv_ver_get, pv_ver_put, pv_ver_del, pv_seq_next,
  pv_blob_ref, pv_blob_drop, pv_count, pv_bucket_rec, pv_feed,
};

/* Invariant (7): the versioned changes of one key wait for each other. */
static int key_lock(PGconn *c, const char *bucket, const char *key, err *e)
{
  prm p = { .n = 0 };
  p_text(&p, bucket);
  p_text(&p, key);
  return ex(c, "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 7))", &p, NULL,
            "lock a key", e);
}

/* ---- objects ---- */

/* The object row bucket/key FOR UPDATE: *had, and old (in a) when it had. */
static int object_row(PGconn *c, const char *bucket, const char *key, arena *a, MDB_val *old,
                      bool *had, err *e)
{
  prm p = { .n = 0 };
  p_text(&p, bucket);
  p_text(&p, key);
  PGresult *r = NULL;
  int rc = ex(c, "SELECT rec FROM tarn_objects WHERE bucket = $1 AND key = $2 FOR UPDATE", &p, &r,
              "read an object record", e);
  *had = rc == 0 && PQntuples(r) > 0;
  if (*had)
    *old = col_bytes(r, 0, 0, a);
  PQclear(r);
  return rc;
}

typedef struct put_txn {
  pg_put *put;
  drops dead;                  /* the blob of the object replaced */
  bool fed;
  /* complete only: */
  const pg_complete *complete;
} put_txn;

/* Inside a transaction: makes p->put's record the object's (invariant (3)). */
static int put_in(PGconn *c, put_txn *t, arena *a, err *e)
{
  pg_put *p = t->put;
  p->vid[0] = '\0';
  pgv x = { c, true, &t->dead, &t->fed, a, { 0, NULL }, false };
  vtab vt = { &PG_OPS, NULL, p->bucket, &x };
  int state = 0;
  int rc = store__vt_state(&vt, a, &state, e);
  if (rc == 0 && state != STORE_VERSIONING_OFF) {
    rc = key_lock(c, p->bucket, p->key, e);
    obj_rec r;
    int got = rc == 0 ? pv_cur_get(&vt, (const uint8_t *)p->key, strlen(p->key), a, &r, e) : rc;
    if (got != 0 && got != MDB_NOTFOUND)
      rc = got;
    if (rc == 0)
      rc = store__expect_judge(p->expect, got == 0 ? &r : NULL, e);
    if (rc == 0)
      rc = store__vt_replace(&vt, p->k, p->val, p->size, p->blob, state, p->vid, e);
    p->note->version_id = p->vid;
    return rc != 0 ? rc : feed_append(c, p->note, &t->fed, e);
  }
  for (int round = 0; rc == 0; round++) {
    MDB_val old;
    bool had = false;
    rc = object_row(c, p->bucket, p->key, a, &old, &had, e);
    if (rc != 0)
      break;
    obj_rec r;
    MDB_val kv = store__ikey_val(p->k);
    if (had && store__obj_rec_decode(&kv, &old, a, &r) != 0)
      return store__corrupt(e, "object");
    rc = store__expect_judge(p->expect, had ? &r : NULL, e);
    if (rc != 0)
      break;
    prm q = { .n = 0 };
    p_text(&q, p->bucket);
    p_text(&q, p->key);
    p_int(&q, (int64_t)p->size);
    p_bytes(&q, &p->val);
    PGresult *res = NULL;
    rc = ex(c, had ? "UPDATE tarn_objects SET size = $3, rec = $4 WHERE bucket = $1 AND key = $2"
                   : "INSERT INTO tarn_objects (bucket, key, size, rec) VALUES ($1, $2, $3, $4) "
                     "ON CONFLICT DO NOTHING",
            &q, &res, "write an object record", e);
    bool wrote = rc == 0 && strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (rc != 0)
      break;
    if (!wrote && round < 100)
      continue;  /* another node put the first version meanwhile: replace it */
    if (!wrote)
      return err_set(e, ERR_UNAVAILABLE, "key '%s' in bucket '%s' keeps changing", p->key,
                     p->bucket);
    if (had && !r.inlined)
      drops_add(&t->dead, &r.blob);
    break;
  }
  if (rc == 0)
    rc = feed_append(c, p->note, &t->fed, e);
  return rc;
}

static int txn_put(PGconn *c, void *arg, err *e)
{
  put_txn *t = arg;
  drops_end(NULL, &t->dead, false);
  t->fed = false;
  arena *a = arena_new();
  int rc = put_in(c, t, a, e);
  arena_free(a);
  return rc;
}

int store__pg_object_put(store *s, pg_put *p, err *e)
{
  put_txn t = { .put = p };
  int rc = pg_transaction(s->pg, NULL, txn_put, &t, e);
  drops_end(s, &t.dead, rc == 0);
  feed_kick(s, rc == 0 && t.fed);
  return rc;
}

typedef struct read_txn {
  const char *bucket;
  const char *key;
  const char *vid;
  arena *a;
  obj_rec *r;
  int state;
  const vupdate_arg *update;   /* store__pg_version_update */
  const char **marker;         /* store__pg_latest_marker: the marker's id */
} read_txn;

static int txn_lookup(PGconn *c, void *arg, err *e)
{
  read_txn *t = arg;
  pgv x = { c, false, NULL, NULL, t->a, { 0, NULL }, false };
  vtab vt = { &PG_OPS, NULL, t->bucket, &x };
  int rc = store__vt_state(&vt, t->a, &t->state, e);
  if (rc != 0)
    return rc;
  if (t->state != STORE_VERSIONING_OFF || strcmp(t->vid, "null") != 0)
    return store__vt_lookup(&vt, t->key, t->vid, t->a, t->r, e);
  rc = pv_cur_get(&vt, (const uint8_t *)t->key, strlen(t->key), t->a, t->r, e);
  if (rc == MDB_NOTFOUND)
    rc = err_set(e, ERR_NO_SUCH_KEY, "no key '%s' in bucket '%s'", t->key, t->bucket);
  return rc;
}

int store__pg_object_lookup(store *s, const char *bucket, const char *key, const char *vid,
                            arena *a, obj_rec *r, int *state, err *e)
{
  if (vid != NULL) {
    read_txn t = { .bucket = bucket, .key = key, .vid = vid, .a = a, .r = r };
    int rc = pg_transaction(s->pg, NULL, txn_lookup, &t, e);
    if (state != NULL)
      *state = t.state;
    return rc;
  }
  prm p = { .n = 0 };
  p_text(&p, bucket);
  p_text(&p, key);
  PGresult *res = NULL;
  int rc = query(s, "SELECT o.rec, o.rec IS NULL, b.rec FROM tarn_buckets b "
                    "LEFT JOIN tarn_objects o ON o.bucket = b.name AND o.key = $2 "
                    "WHERE b.name = $1",
                 &p, &res, "read an object record", e);
  if (rc != 0)
    return rc;
  if (PQntuples(res) == 0)
    rc = err_set(e, ERR_NO_SUCH_BUCKET, "no bucket named '%s'", bucket);
  else if (strcmp(PQgetvalue(res, 0, 1), "t") == 0)
    rc = err_set(e, ERR_NO_SUCH_KEY, "no key '%s' in bucket '%s'", key, bucket);
  if (rc == 0 && state != NULL) {
    MDB_val bv = col_bytes(res, 0, 2, a);
    *state = store__versioning_of(&bv);
  }
  if (rc == 0) {
    vtab vt = { &PG_OPS, NULL, bucket, NULL };
    rc = pv_decode(&vt, key, res, a, r, e);
  }
  PQclear(res);
  return rc;
}

static int txn_vupdate(PGconn *c, void *arg, err *e)
{
  read_txn *t = arg;
  arena *a = arena_new();
  pgv x = { c, true, NULL, NULL, a, { 0, NULL }, false };
  vtab vt = { &PG_OPS, NULL, t->bucket, &x };
  int state = 0;
  int rc = store__vt_state(&vt, a, &state, e);  /* the bucket, then the key, as a put does */
  if (rc == 0)
    rc = key_lock(c, t->bucket, t->key, e);
  t->update->vid[0] = '\0';
  if (rc == 0)
    rc = store__vt_update(&vt, t->update, a, e);
  arena_free(a);
  return rc;
}

int store__pg_version_update(store *s, const vupdate_arg *l, err *e)
{
  seen_forget();
  read_txn t = { .bucket = l->bucket, .key = l->key, .update = l };
  return pg_transaction(s->pg, NULL, txn_vupdate, &t, e);
}

static int txn_marker(PGconn *c, void *arg, err *e)
{
  (void)e;
  read_txn *t = arg;
  pgv x = { c, false, NULL, NULL, t->a, { 0, NULL }, false };
  vtab vt = { &PG_OPS, NULL, t->bucket, &x };
  *t->marker = NULL;
  if (!store__vt_latest_marker(&vt, t->key, t->a, t->marker))
    *t->marker = NULL;
  return 0;
}

bool store__pg_latest_marker(store *s, const char *bucket, const char *key, arena *a,
                             const char **vid)
{
  read_txn t = { .bucket = bucket, .key = key, .a = a, .marker = vid };
  *vid = NULL;
  err e;
  err_clear(&e);
  return pg_transaction(s->pg, NULL, txn_marker, &t, &e) == 0 && *vid != NULL;
}

/* ---- ListObjectVersions: version.c's listing over pages of rows ---- */

#define WALK_PAGE 256
#define ORD_MAX "9223372036854775807"

typedef struct pg_walk {
  store *s;
  const char *bucket;
  const char *prefix;
  const char *key;             /* the position: after (key, ord) */
  int64_t ord;                 /* 0: the current version, else ORD_MAX - seq */
  PGresult *res;               /* the page */
  int row;
  bool last;                   /* the page was the last */
} pg_walk;

static int walk_next(void *it, arena *a, vt_entry *out, err *e)
{
  pg_walk *w = it;
  if (w->res != NULL && w->row == PQntuples(w->res)) {
    PQclear(w->res);
    w->res = NULL;
    if (w->last)
      return 0;
  }
  if (w->res == NULL) {
    prm p = { .n = 0 };
    p_text(&p, w->bucket);
    p_text(&p, w->key);
    p_int(&p, w->ord);
    p_int(&p, WALK_PAGE);
    p_text(&p, w->prefix);
    int rc = query(w->s,
                   "SELECT key, ord, rec FROM ("
                   "SELECT key, 0::bigint AS ord, rec FROM tarn_objects "
                   "WHERE bucket = $1 AND key >= $2 AND starts_with(key, $5) "
                   "UNION ALL SELECT key, " ORD_MAX " - seq, rec FROM tarn_versions "
                   "WHERE bucket = $1 AND key >= $2 AND starts_with(key, $5)) u "
                   "WHERE (key, ord) > ($2::text COLLATE \"C\", $3::bigint) "
                   "ORDER BY key, ord LIMIT $4",
                   &p, &w->res, "list versions", e);
    if (rc != 0)
      return rc;
    w->row = 0;
    w->last = PQntuples(w->res) < WALK_PAGE;
    if (PQntuples(w->res) == 0)
      return 0;
  }
  PGresult *r = w->res;
  int i = w->row++;
  char *key = arena_strdup(a, PQgetvalue(r, i, 0));
  int64_t ord = (int64_t)pg_col_int(r, i, 1);
  out->v = col_bytes(r, i, 2, a);
  out->k = (MDB_val){ 0, NULL };
  out->lk = (const uint8_t *)key;
  out->lkn = strlen(key);
  out->current = ord == 0;
  w->key = key;
  w->ord = ord;
  return 1;
}

static int walk_decode(void *it, const vt_entry *en, arena *a, obj_rec *r, err *e)
{
  pg_walk *w = it;
  ikey k;
  store__ikey_make(&k, w->bucket, en->lk, en->lkn);
  MDB_val kv = store__ikey_val(&k);
  if (store__obj_rec_decode(&kv, &en->v, a, r) != 0)
    return store__corrupt(e, "version");
  r->lk = en->lk;  /* not into k */
  r->lkn = en->lkn;
  return 0;
}

int store__pg_object_versions(store *s, const char *bucket, const store_version_params *p,
                              arena *a, store_version_list *out, err *e)
{
  int rc = store__check_bucket_arg(bucket, e);
  if (rc == 0)
    rc = store__pg_bucket_read(s, bucket, a, NULL, e);
  if (rc != 0)
    return rc;
  pg_walk w = { s, bucket, p->prefix != NULL ? p->prefix : "", store__vt_from(p), -1,
                NULL, 0, false };
  rc = store__vt_list(bucket, p, walk_next, walk_decode, &w, a, out, e);
  PQclear(w.res);
  return rc;
}

typedef struct delete_txn {
  pg_delete *d;
  drops dead;
  bool fed;
} delete_txn;

static int txn_delete(PGconn *c, void *arg, err *e)
{
  delete_txn *t = arg;
  pg_delete *d = t->d;
  drops_end(NULL, &t->dead, false);
  t->fed = false;
  d->existed = false;
  arena *a = arena_new();
  MDB_val old;
  bool had = false;
  pgv x = { c, true, &t->dead, &t->fed, a, { 0, NULL }, false };
  vtab vt = { &PG_OPS, NULL, d->bucket, &x };
  int state = 0;
  int rc = store__vt_state(&vt, a, &state, e);
  if (rc == 0 && (state != STORE_VERSIONING_OFF ||
                  (d->version_id != NULL && strcmp(d->version_id, "null") != 0))) {
    store_delete_result scratch;
    store_vdelete vd = { d->bucket, d->key, d->version_id, d->bypass_governance, d->if_mtime_ms,
                         d->if_etag, d->res != NULL ? d->res : &scratch };
    rc = key_lock(c, d->bucket, d->key, e);
    if (rc == 0)
      rc = store__vt_delete(&vt, &vd, a, e);
    d->existed = rc == 0 && vd.out->existed;
    goto out;
  }
  if (rc == 0)
    rc = object_row(c, d->bucket, d->key, a, &old, &had, e);
  obj_rec r;
  if (rc == 0 && !had && d->if_etag != NULL)
    rc = err_set(e, ERR_NO_SUCH_KEY, "the object does not exist (If-Match '%.80s')", d->if_etag);
  if (rc != 0 || !had)
    goto out;
  ikey k;
  store__ikey_make(&k, d->bucket, d->key, strlen(d->key));
  MDB_val kv = store__ikey_val(&k);
  if (store__obj_rec_decode(&kv, &old, a, &r) != 0) {
    rc = store__corrupt(e, "object");
    goto out;
  }
  if (d->if_mtime_ms != 0 && r.mtime_ms != d->if_mtime_ms)
    goto out;  /* replaced since the caller looked: keep it */
  if (d->if_etag != NULL && !store__etag_match(d->if_etag, r.etag)) {
    rc = err_set(e, ERR_PRECONDITION, "At least one of the pre-conditions you specified did not "
                 "hold: the object's ETag is not '%.80s'", d->if_etag);
    goto out;
  }
  prm p = { .n = 0 };
  p_text(&p, d->bucket);
  p_text(&p, d->key);
  rc = ex(c, "DELETE FROM tarn_objects WHERE bucket = $1 AND key = $2", &p, NULL,
          "delete an object record", e);
  if (rc != 0)
    goto out;
  if (!r.inlined)
    drops_add(&t->dead, &r.blob);
  d->existed = true;
  if (d->res != NULL) {
    d->res->existed = true;
    if (d->version_id != NULL)  /* "null" in a bucket without versioning */
      snprintf(d->res->version_id, STORE_VID_MAX, "null");
  }
  feed_note note = { STORE_EVENT_DELETE, d->bucket, d->key, 0, NULL, store__clock_ms(), NULL };
  rc = feed_append(c, &note, &t->fed, e);
out:
  arena_free(a);
  return rc;
}

int store__pg_object_delete(store *s, pg_delete *d, err *e)
{
  delete_txn t = { .d = d };
  int rc = pg_transaction(s->pg, NULL, txn_delete, &t, e);
  drops_end(s, &t.dead, rc == 0);
  feed_kick(s, rc == 0 && t.fed);
  if (rc != 0)
    d->existed = false;
  return rc;
}

typedef struct edit_txn {
  const char *bucket;
  const char *key;
  store_rec_edit fn;
  void *arg;
} edit_txn;

static int txn_edit(PGconn *c, void *arg, err *e)
{
  edit_txn *t = arg;
  arena *a = arena_new();
  MDB_val old;
  bool had = false;
  int rc = bucket_lock(c, t->bucket, "KEY SHARE", NULL, NULL, e);
  if (rc == 0)
    rc = object_row(c, t->bucket, t->key, a, &old, &had, e);
  if (rc == 0 && !had)
    rc = err_set(e, ERR_NO_SUCH_KEY, "no key '%s' in bucket '%s'", t->key, t->bucket);
  prm p = { .n = 0 };
  p_text(&p, t->bucket);
  p_text(&p, t->key);
  if (rc == 0)
    rc = rewrite(c, &old, t->fn, t->arg, a,
                 "UPDATE tarn_objects SET rec = $3 WHERE bucket = $1 AND key = $2", &p,
                 "write an object record", e);
  arena_free(a);
  return rc;
}

int store__pg_object_edit(store *s, const char *bucket, const char *key, store_rec_edit fn,
                          void *arg, err *e)
{
  edit_txn t = { bucket, key, fn, arg };
  return pg_transaction(s->pg, NULL, txn_edit, &t, e);
}

/* Rows of r (columns: key, [upload id,] rec) into *rows, in a. */
static void rows_of(const PGresult *r, bool with_id, arena *a, pg_row **rows, size_t *n)
{
  int count = PQntuples(r);
  pg_row *list = arena_alloc(a, ((size_t)count + 1) * sizeof *list);
  for (int i = 0; i < count; i++) {
    list[i].key = arena_strdup(a, PQgetvalue(r, i, 0));
    list[i].id = with_id ? arena_strdup(a, PQgetvalue(r, i, 1)) : NULL;
    list[i].rec = col_bytes(r, i, with_id ? 2 : 1, a);
  }
  *rows = list;
  *n = (size_t)count;
}

int store__pg_object_scan(store *s, const char *bucket, const char *prefix, const char *from,
                          const char *skip, size_t limit, arena *a, pg_row **rows, size_t *n,
                          err *e)
{
  char sql[400];
  prm p = { .n = 0 };
  p_text(&p, bucket);
  p_text(&p, prefix);
  p_int(&p, (int64_t)limit);
  p_text(&p, from != NULL ? from : "");
  p_text(&p, skip != NULL ? skip : "");
  snprintf(sql, sizeof sql,
           "SELECT key, rec FROM tarn_objects WHERE bucket = $1 AND key >= $2 "
           "AND starts_with(key, $2)%s%s ORDER BY key LIMIT $3",
           from != NULL ? " AND key > $4" : " AND $4 = $4",
           skip != NULL ? " AND NOT starts_with(key, $5)" : " AND $5 = $5");
  PGresult *r = NULL;
  int rc = query(s, sql, &p, &r, "list objects", e);
  if (rc != 0)
    return rc;
  rows_of(r, false, a, rows, n);
  PQclear(r);
  return 0;
}

/* ---- multipart uploads ---- */

/* The upload's row (FOR lock, or no lock: NULL), its record into v (in a,
 * optional). ERR_NO_SUCH_BUCKET or ERR_NO_SUCH_UPLOAD. */
static int upload_row(PGconn *c, const char *bucket, const char *key, const char *id,
                      const char *lock, arena *a, MDB_val *v, err *e)
{
  int rc = lock != NULL ? bucket_lock(c, bucket, "KEY SHARE", NULL, NULL, e) : 0;
  if (rc != 0)
    return rc;
  char sql[200];
  snprintf(sql, sizeof sql,
           "SELECT rec FROM tarn_uploads WHERE bucket = $1 AND key = $2 AND upload_id = $3%s%s",
           lock != NULL ? " FOR " : "", lock != NULL ? lock : "");
  prm p = { .n = 0 };
  p_text(&p, bucket);
  p_text(&p, key);
  p_text(&p, id);
  PGresult *r = NULL;
  rc = ex(c, sql, &p, &r, "read an upload record", e);
  if (rc != 0)
    return rc;
  if (PQntuples(r) == 0)
    rc = err_set(e, ERR_NO_SUCH_UPLOAD, "no upload '%s' of key '%s' in bucket '%s'", id, key,
                 bucket);
  else if (v != NULL)
    *v = col_bytes(r, 0, 0, a);
  PQclear(r);
  return rc;
}

typedef struct upload_txn {
  const char *bucket;
  const char *key;
  const char *id;
  int number;
  const MDB_val *rec;
  drops dead;
} upload_txn;

static int txn_upload_create(PGconn *c, void *arg, err *e)
{
  upload_txn *t = arg;
  int rc = bucket_lock(c, t->bucket, "KEY SHARE", NULL, NULL, e);
  if (rc != 0)
    return rc;
  prm p = { .n = 0 };
  p_text(&p, t->bucket);
  p_text(&p, t->key);
  p_text(&p, t->id);
  p_bytes(&p, t->rec);
  return ex(c, "INSERT INTO tarn_uploads (bucket, key, upload_id, rec) VALUES ($1, $2, $3, $4)",
            &p, NULL, "write an upload record", e);
}

int store__pg_upload_create(store *s, const char *bucket, const char *key, const char *id,
                            const MDB_val *rec, err *e)
{
  upload_txn t = { .bucket = bucket, .key = key, .id = id, .rec = rec };
  return pg_transaction(s->pg, NULL, txn_upload_create, &t, e);
}

int store__pg_upload_read(store *s, const char *bucket, const char *key, const char *id,
                          arena *a, MDB_val *v, err *e)
{
  prm p = { .n = 0 };
  p_text(&p, bucket);
  p_text(&p, key);
  p_text(&p, id);
  PGresult *r = NULL;
  int rc = query(s, "SELECT u.rec, u.rec IS NULL FROM tarn_buckets b LEFT JOIN tarn_uploads u "
                    "ON u.bucket = b.name AND u.key = $2 AND u.upload_id = $3 WHERE b.name = $1",
                 &p, &r, "read an upload record", e);
  if (rc != 0)
    return rc;
  if (PQntuples(r) == 0)
    rc = err_set(e, ERR_NO_SUCH_BUCKET, "no bucket named '%s'", bucket);
  else if (strcmp(PQgetvalue(r, 0, 1), "t") == 0)
    rc = err_set(e, ERR_NO_SUCH_UPLOAD, "no upload '%s' of key '%s' in bucket '%s'", id, key,
                 bucket);
  else
    *v = col_bytes(r, 0, 0, a);
  PQclear(r);
  return rc;
}

int store__pg_upload_scan(store *s, const char *bucket, const char *prefix,
                          const char *key_marker, const char *id_marker, size_t limit, arena *a,
                          pg_row **rows, size_t *n, err *e)
{
  bool km = key_marker != NULL && key_marker[0] != '\0';
  bool im = km && id_marker != NULL && id_marker[0] != '\0';
  prm p = { .n = 0 };
  p_text(&p, bucket);
  p_text(&p, prefix);
  p_int(&p, (int64_t)limit);
  p_text(&p, km ? key_marker : "");
  p_text(&p, im ? id_marker : "");
  char sql[400];
  snprintf(sql, sizeof sql,
           "SELECT key, upload_id, rec FROM tarn_uploads WHERE bucket = $1 AND key >= $2 "
           "AND starts_with(key, $2) AND %s ORDER BY key, upload_id LIMIT $3",
           im ? "(key, upload_id) > ($4, $5)" : km ? "key > $4 AND $5 = $5"
                                               : "$4 = $4 AND $5 = $5");
  PGresult *r = NULL;
  int rc = query(s, sql, &p, &r, "list uploads", e);
  if (rc != 0)
    return rc;
  rows_of(r, true, a, rows, n);
  PQclear(r);
  return 0;
}

static int txn_part_put(PGconn *c, void *arg, err *e)
{
  upload_txn *t = arg;
  drops_end(NULL, &t->dead, false);
  int rc = upload_row(c, t->bucket, t->key, t->id, "KEY SHARE", NULL, NULL, e);
  if (rc != 0)
    return rc;
  prm p = { .n = 0 };
  p_text(&p, t->id);
  p_int(&p, t->number);
  p_bytes(&p, t->rec);
  PGresult *r = NULL;
  /* the part it replaces, if any (its blob is dropped): the row is locked
     by the upsert, and RETURNING of a CTE's old row gives its record */
  rc = ex(c, "WITH old AS (SELECT rec FROM tarn_parts WHERE upload_id = $1 AND number = $2 "
             "FOR UPDATE), "
             "up AS (INSERT INTO tarn_parts (upload_id, number, rec) VALUES ($1, $2, $3) "
             "ON CONFLICT (upload_id, number) DO UPDATE SET rec = excluded.rec) "
             "SELECT rec FROM old",
          &p, &r, "write a part record", e);
  if (rc != 0)
    return rc;
  drop_parts(&t->dead, r);
  return 0;
}

int store__pg_part_put(store *s, const char *bucket, const char *key, const char *id, int number,
                       const MDB_val *rec, err *e)
{
  upload_txn t = { .bucket = bucket, .key = key, .id = id, .number = number, .rec = rec };
  int rc = pg_transaction(s->pg, NULL, txn_part_put, &t, e);
  drops_end(s, &t.dead, rc == 0);
  return rc;
}

int store__pg_parts_read(store *s, const char *id, int after, size_t max, arena *a, int **numbers,
                         MDB_val **recs, size_t *n, err *e)
{
  prm p = { .n = 0 };
  p_text(&p, id);
  p_int(&p, after);
  p_int(&p, (int64_t)max);
  PGresult *r = NULL;
  int rc = query(s, "SELECT number, rec FROM tarn_parts WHERE upload_id = $1 AND number > $2 "
                    "ORDER BY number LIMIT $3", &p, &r, "read the parts", e);
  if (rc != 0)
    return rc;
  int count = PQntuples(r);
  *numbers = arena_alloc(a, ((size_t)count + 1) * sizeof **numbers);
  *recs = arena_alloc(a, ((size_t)count + 1) * sizeof **recs);
  for (int i = 0; i < count; i++) {
    (*numbers)[i] = (int)(int64_t)pg_col_int(r, i, 0);
    (*recs)[i] = col_bytes(r, i, 1, a);
  }
  *n = (size_t)count;
  PQclear(r);
  return 0;
}

/* Inside a transaction: deletes the upload's parts, their blobs dropped;
 * numbers and recs (in a, when numbers is not NULL) get what they were. */
static int parts_drop(PGconn *c, const char *id, drops *dead, arena *a, int **numbers,
                      MDB_val **recs, size_t *n, err *e)
{
  prm p = { .n = 0 };
  p_text(&p, id);
  PGresult *r = NULL;
  int rc = ex(c, "DELETE FROM tarn_parts WHERE upload_id = $1 RETURNING number, rec", &p, &r,
              "delete the parts", e);
  if (rc != 0)
    return rc;
  int count = PQntuples(r);
  if (numbers != NULL) {
    *numbers = arena_alloc(a, ((size_t)count + 1) * sizeof **numbers);
    *recs = arena_alloc(a, ((size_t)count + 1) * sizeof **recs);
    *n = (size_t)count;
  }
  for (int i = 0; i < count; i++) {
    MDB_val v = col_bytes(r, i, 1, a);
    drop_part(dead, &v);
    if (numbers != NULL) {
      (*numbers)[i] = (int)(int64_t)pg_col_int(r, i, 0);
      (*recs)[i] = v;
    }
  }
  PQclear(r);
  return 0;
}

static int upload_delete(PGconn *c, const char *bucket, const char *key, const char *id, err *e)
{
  prm p = { .n = 0 };
  p_text(&p, bucket);
  p_text(&p, key);
  p_text(&p, id);
  return ex(c, "DELETE FROM tarn_uploads WHERE bucket = $1 AND key = $2 AND upload_id = $3", &p,
            NULL, "delete an upload record", e);
}

static int txn_complete(PGconn *c, void *arg, err *e)
{
  put_txn *t = arg;
  const pg_complete *x = t->complete;
  drops_end(NULL, &t->dead, false);
  t->fed = false;
  arena *a = arena_new();
  int *numbers = NULL;
  MDB_val *recs = NULL;
  size_t n = 0;
  int rc = upload_row(c, x->put.bucket, x->put.key, x->upload_id, "UPDATE", NULL, NULL, e);
  if (rc == 0)
    rc = parts_drop(c, x->upload_id, &t->dead, a, &numbers, &recs, &n, e);
  for (size_t i = 0; rc == 0 && i < x->nparts; i++) {
    bool same = false;
    for (size_t j = 0; j < n && !same; j++) {
      part_rec r;
      same = numbers[j] == x->numbers[i] && store__part_rec_decode(&recs[j], NULL, &r) == 0 &&
             memcmp(&r.blob, &x->blobs[i], sizeof r.blob) == 0;
    }
    if (!same)
      rc = err_set(e, ERR_INVALID_PART, "part %d of upload '%s' changed while completing",
                   x->numbers[i], x->upload_id);
  }
  if (rc == 0)
    rc = upload_delete(c, x->put.bucket, x->put.key, x->upload_id, e);
  if (rc == 0)
    rc = put_in(c, t, a, e);
  arena_free(a);
  return rc;
}

int store__pg_upload_complete(store *s, pg_complete *c, err *e)
{
  put_txn t = { .put = &c->put, .complete = c };
  int rc = pg_transaction(s->pg, NULL, txn_complete, &t, e);
  drops_end(s, &t.dead, rc == 0);
  feed_kick(s, rc == 0 && t.fed);
  return rc;
}

static int txn_abort(PGconn *c, void *arg, err *e)
{
  upload_txn *t = arg;
  drops_end(NULL, &t->dead, false);
  int rc = upload_row(c, t->bucket, t->key, t->id, "UPDATE", NULL, NULL, e);
  arena *a = arena_new();
  if (rc == 0)
    rc = parts_drop(c, t->id, &t->dead, a, NULL, NULL, NULL, e);
  arena_free(a);
  if (rc == 0)
    rc = upload_delete(c, t->bucket, t->key, t->id, e);
  return rc;
}

int store__pg_upload_abort(store *s, const char *bucket, const char *key, const char *id,
                           err *e)
{
  upload_txn t = { .bucket = bucket, .key = key, .id = id };
  int rc = pg_transaction(s->pg, NULL, txn_abort, &t, e);
  drops_end(s, &t.dead, rc == 0);
  return rc;
}

/* ---- notification configurations ---- */

typedef struct notify_txn {
  const char *bucket;
  const char *config;          /* NULL: remove */
} notify_txn;

static int txn_notify(PGconn *c, void *arg, err *e)
{
  notify_txn *t = arg;
  int rc = bucket_lock(c, t->bucket, "KEY SHARE", NULL, NULL, e);
  if (rc != 0)
    return rc;
  prm p = { .n = 0 };
  p_text(&p, t->bucket);
  if (t->config == NULL)
    return ex(c, "DELETE FROM tarn_notify WHERE bucket = $1", &p, NULL,
              "remove a notification configuration", e);
  p_text(&p, t->config);
  return ex(c, "INSERT INTO tarn_notify (bucket, config) VALUES ($1, $2) "
               "ON CONFLICT (bucket) DO UPDATE SET config = excluded.config",
            &p, NULL, "write a notification configuration", e);
}

int store__pg_notify_set(store *s, const char *bucket, const char *config, err *e)
{
  notify_txn t = { bucket, config };
  return pg_transaction(s->pg, NULL, txn_notify, &t, e);
}

int store__pg_notify_get(store *s, const char *bucket, arena *a, const char **config, err *e)
{
  prm p = { .n = 0 };
  p_text(&p, bucket);
  PGresult *r = NULL;
  int rc = query(s, "SELECT n.config, n.config IS NULL FROM tarn_buckets b "
                    "LEFT JOIN tarn_notify n ON n.bucket = b.name WHERE b.name = $1",
                 &p, &r, "read a notification configuration", e);
  if (rc != 0)
    return rc;
  if (PQntuples(r) == 0)
    rc = err_set(e, ERR_NO_SUCH_BUCKET, "no bucket named '%s'", bucket);
  else if (strcmp(PQgetvalue(r, 0, 1), "t") != 0)
    *config = arena_strdup(a, PQgetvalue(r, 0, 0));
  PQclear(r);
  return rc;
}

/* ---- the SSE-S3 master key ---- */

int store__pg_master_key(store *s, const uint8_t candidate[32], uint8_t key[32], err *e)
{
  prm p = { .n = 0 };
  MDB_val v = { 32, (void *)candidate };
  p_bytes(&p, &v);
  /* the first node's candidate wins; every node then reads the same key.
     A node whose insert waited for another's to commit sees neither row in
     its statement's snapshot: the second try reads the winner's. */
  int rc = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    PGresult *r = NULL;
    rc = query(s, "WITH ins AS (INSERT INTO tarn_keys (name, key) VALUES ('sse-master', $1) "
                  "ON CONFLICT (name) DO NOTHING RETURNING key) "
                  "SELECT key FROM ins UNION ALL "
                  "SELECT key FROM tarn_keys WHERE name = 'sse-master'",
               &p, &r, "read the encryption master key", e);
    if (rc != 0)
      return rc;
    int rows = PQntuples(r);
    arena *a = arena_new();
    MDB_val got = rows > 0 ? col_bytes(r, 0, 0, a) : (MDB_val){ 0, NULL };
    if (got.mv_size == 32)
      memcpy(key, got.mv_data, 32);
    else
      rc = err_set(e, ERR_INTERNAL, "the encryption master key in the metadata database is "
                   "missing or not 32 bytes");
    arena_free(a);
    PQclear(r);
    if (rc == 0 || rows != 0)
      break;
  }
  return rc;
}

/* ---- the feed's consumers (invariant (4)) ---- */

static int64_t lease_ms(void)
{
  return (int64_t)pg_lease_ms("TARN_FEED_LEASE_SECONDS", LEASE_DEFAULT_S);
}

typedef struct claim_txn {
  store *s;
  uint64_t after;
  size_t max;
  arena *a;
  store_change *list;          /* out, in seq order */
  size_t n;
} claim_txn;

static int change_cmp(const void *x, const void *y)
{
  const store_change *a = x;
  const store_change *b = y;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int txn_claim(PGconn *c, void *arg, err *e)
{
  claim_txn *t = arg;
  int64_t now = store__clock_ms();
  prm p = { .n = 0 };
  p_text(&p, t->s->node);
  p_int(&p, now);
  p_int(&p, now - lease_ms());
  p_int(&p, (int64_t)(t->after > INT64_MAX ? INT64_MAX : t->after));
  p_int(&p, (int64_t)t->max);
  PGresult *r = NULL;
  int rc = ex(c, "UPDATE tarn_feed SET owner = $1, claimed_ms = $2 WHERE seq IN ("
                 "SELECT seq FROM tarn_feed WHERE owner IS NULL OR claimed_ms < $3 "
                 "OR (owner = $1 AND seq > $4) ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED) "
                 "RETURNING seq, rec",
              &p, &r, "claim change feed entries", e);
  if (rc != 0)
    return rc;
  int count = PQntuples(r);
  t->list = arena_alloc(t->a, ((size_t)count + 1) * sizeof *t->list);
  t->n = 0;
  for (int i = 0; i < count && rc == 0; i++) {
    store_change *ch = &t->list[t->n];
    MDB_val v = col_bytes(r, i, 1, t->a);
    if (store__feed_decode(&v, t->a, ch) != 0) {
      rc = store__corrupt(e, "change feed");
      break;
    }
    ch->seq = (uint64_t)(int64_t)pg_col_int(r, i, 0);
    t->n++;
  }
  PQclear(r);
  qsort(t->list, t->n, sizeof *t->list, change_cmp);
  return rc;
}

int store__pg_feed_read(store *s, uint64_t after, size_t max, arena *a, store_change **out,
                        size_t *n, err *e)
{
  claim_txn t = { .s = s, .after = after, .max = max, .a = a };
  int rc = pg_transaction(s->pg, NULL, txn_claim, &t, e);
  if (rc == 0) {
    *out = t.list;
    *n = t.n;
  }
  return rc;
}

int store__pg_feed_trim(store *s, uint64_t upto, err *e)
{
  prm p = { .n = 0 };
  p_text(&p, s->node);
  p_int(&p, (int64_t)(upto > INT64_MAX ? INT64_MAX : upto));
  return query(s, "DELETE FROM tarn_feed WHERE owner = $1 AND seq <= $2", &p, NULL,
               "trim the change feed", e);
}

uint64_t store__pg_feed_backlog(store *s)
{
  prm p = { .n = 0 };
  PGresult *r = NULL;
  err e;
  err_clear(&e);
  if (query(s, "SELECT count(*) FROM tarn_feed", &p, &r, "count the change feed", &e) != 0)
    return 0;
  uint64_t n = PQntuples(r) == 1 ? (uint64_t)(int64_t)pg_col_int(r, 0, 0) : 0;
  PQclear(r);
  return n;
}
