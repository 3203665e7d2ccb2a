/* store/version.c -- S3 versioning and object lock on the index.
 *
 * Why: a versioned bucket keeps every version of a key, with delete
 * markers, while listings, SQL and plain GETs keep reading the current
 * version as fast as before.
 *
 * Layout: the current version of each key stays where an unversioned
 * object is (LMDB's db_objects, PostgreSQL's tarn_objects), so list.c, the
 * SQL reader and a GET without versionId are unchanged; every other
 * version and every delete marker is in a second table (db_versions,
 * tarn_versions). The decisions (what a versioned put or delete does to
 * the two tables) are made here once, on a vtab (vtab.h): LMDB's is below,
 * PostgreSQL's in pg_index.c.
 *
 * In LMDB db_versions is keyed by vkey = bucket "\0" K "\0" (~seq, 8 bytes
 * big-endian), where K is the object key, or for keys longer than the room,
 * its first bytes and SHA-256 (the record then holds the whole key, as in
 * index.c). A key's versions are contiguous, newest first.
 *
 * Invariants:
 *   (1) For a key K of a bucket: the current table has K exactly when K's
 *       newest version is not a delete marker, and then that record is the
 *       newest; otherwise the newest entry of K among the versions is a
 *       delete marker (or K has no version at all). Every change below
 *       keeps this in its one transaction: removing the current version
 *       promotes the next one when it is an object.
 *   (2) Each version record lives in exactly one table, so db_blobs keeps
 *       naming each referenced blob once (index.c (5)): moving a record
 *       between the tables moves no reference.
 *   (3) Sequence numbers come from the "vseq" counter (PostgreSQL: the
 *       tarn_vseq sequence), in the transaction that creates the version; a
 *       version id is 16 hex digits of its sequence number then 16 random
 *       hex digits, so a lookup by id is a point read. The null version has
 *       id "" in its record and keeps a sequence number too (its place in
 *       the history).
 *   (4) A bucket that never had versioning has no versioning document and
 *       none of its records carries a 'V' section: everything behaves as
 *       before versioning existed.
 *   (5) The counters count current versions only.
 *
 * Start reading at store__vt_replace().
 */

#include "codec.h"
#include "commit.h"
#include "index.h"
#include "pg_index.h"
#include "vtab.h"

#include "base/hash.h"
#include "base/mem.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VSEQ_COUNTER "vseq"
#define VKEY_TAIL 9            /* "\0" and the inverted sequence number */
#define VKEY_MAX (IKEY_SHORT_MAX + IKEY_HASH)

typedef struct vkey {
  size_t n;                    /* bytes used */
  size_t pre;                  /* bytes of the key's prefix (through its "\0") */
  bool lng;                    /* long form: the record holds the whole key */
  uint8_t b[VKEY_MAX];
} vkey;

/* ---- the bucket's versioning and lock documents ---- */

/* The value of configuration document name in a bucket record, without
 * copying it (index.c (8)). */
static bool bucket_doc(const MDB_val *bv, const char *name, const uint8_t **val, size_t *vn)
{
  rec_dec d = store__dec_of(bv);
  uint8_t version = store__get_u8(&d);
  if (d.bad || version < 3)
    return false;
  (void)store__get_var(&d);
  uint64_t ntags = store__get_var(&d);
  for (uint64_t i = 0; i < ntags && !d.bad; i++) {
    size_t n;
    store__get_bytes(&d, &n);
    store__get_bytes(&d, &n);
  }
  uint64_t nconf = store__get_var(&d);
  size_t want = strlen(name);
  for (uint64_t i = 0; i < nconf && !d.bad; i++) {
    size_t nn = 0;
    const uint8_t *np = store__get_bytes(&d, &nn);
    const uint8_t *vp = store__get_bytes(&d, vn);
    if (!d.bad && nn == want && memcmp(np, name, nn) == 0) {
      *val = vp;
      return true;
    }
  }
  return false;
}

static int state_of(const MDB_val *bv)
{
  const uint8_t *v;
  size_t n;
  if (!bucket_doc(bv, "versioning", &v, &n))
    return STORE_VERSIONING_OFF;
  if (n == 7 && memcmp(v, "Enabled", 7) == 0)
    return STORE_VERSIONING_ENABLED;
  if (n == 9 && memcmp(v, "Suspended", 9) == 0)
    return STORE_VERSIONING_SUSPENDED;
  return STORE_VERSIONING_OFF;
}

/* ---- keys and ids ---- */

static void vkey_prefix(vkey *k, const char *bucket, const uint8_t *lk, size_t lkn)
{
  size_t bl = strlen(bucket);
  if (bl > BUCKET_MAX)
    abort();
  memcpy(k->b, bucket, bl);
  k->b[bl] = '\0';
  size_t room = IKEY_SHORT_MAX - VKEY_TAIL - bl - 1;
  size_t n = bl + 1;
  k->lng = lkn > room;
  if (!k->lng) {
    memcpy(k->b + n, lk, lkn);
    n += lkn;
  } else {
    memcpy(k->b + n, lk, room);
    n += room;
    if (EVP_Digest(lk, lkn, k->b + n, NULL, EVP_sha256(), NULL) != 1)
      abort();
    n += IKEY_HASH;
  }
  k->b[n++] = '\0';
  k->pre = k->n = n;
}

static void vkey_seq(vkey *k, uint64_t seq)
{
  uint64_t inv = ~seq;
  for (int i = 0; i < 8; i++)
    k->b[k->pre + (size_t)i] = (uint8_t)(inv >> (56 - 8 * i));
  k->n = k->pre + 8;
}

static MDB_val vkey_val(const vkey *k)
{
  MDB_val v = { k->n, (void *)k->b };
  return v;
}

static bool vkey_has_prefix(const vkey *k, const MDB_val *kv)
{
  return kv->mv_size == k->pre + 8 && memcmp(kv->mv_data, k->b, k->pre) == 0;
}

/* The logical key of a db_versions entry (short form: from the index key). */
static void vrec_lkey(const MDB_val *k, const obj_rec *r, const uint8_t **lk, size_t *lkn)
{
  const uint8_t *kb = k->mv_data;
  const uint8_t *nul = memchr(kb, '\0', k->mv_size);
  size_t off = nul != NULL ? (size_t)(nul - kb) + 1 : k->mv_size;
  /* a record decoded from db_versions has lk pointing at the index key's
   * tail (index.c lkey_of) when short: drop the "\0" and sequence number */
  if (r->lk >= kb && r->lk < kb + k->mv_size) {
    *lk = kb + off;
    *lkn = k->mv_size >= off + VKEY_TAIL ? k->mv_size - off - VKEY_TAIL : 0;
  } else {
    *lk = r->lk;
    *lkn = r->lkn;
  }
}

/* Decodes a db_versions entry into r (strings in a), with its real key. */
static int vrec_decode(const MDB_val *k, const MDB_val *v, arena *a, obj_rec *r)
{
  if (store__obj_rec_decode(k, v, a, r) != 0)
    return ERR_INTERNAL;
  vrec_lkey(k, r, &r->lk, &r->lkn);
  return 0;
}

static void vid_make(uint64_t seq, char out[STORE_VID_MAX])
{
  uint8_t b[16];
  for (int i = 0; i < 8; i++)
    b[i] = (uint8_t)(seq >> (56 - 8 * i));
  random_bytes(b + 8, 8);
  hex_encode(b, sizeof b, out);
  out[32] = '\0';
}

/* The sequence number of a version id; false for text no id of ours is. */
static bool vid_parse(const char *vid, uint64_t *seq)
{
  if (strlen(vid) != 32)
    return false;
  uint64_t v = 0;
  for (int i = 0; i < 32; i++) {
    char c = vid[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0)
      return false;
    if (i < 16)
      v = v << 4 | (uint64_t)d;
  }
  *seq = v;
  return v != 0;
}

bool store_version_id_valid(const char *vid)
{
  uint64_t seq;
  return vid != NULL && (strcmp(vid, "null") == 0 || vid_parse(vid, &seq));
}

int store_version_id_check(const char *vid, err *e)
{
  if (vid != NULL && vid[0] == '\0')
    return err_set(e, ERR_INVALID, "Version id cannot be the empty string");
  if (!store_version_id_valid(vid))
    return err_set(e, ERR_INVALID, "Invalid version id specified");
  return 0;
}

static bool is_null(const obj_rec *r)
{
  return r->version_id == NULL || r->version_id[0] == '\0';
}

static bool vid_is(const obj_rec *r, const char *vid)
{
  return strcmp(vid, "null") == 0 ? is_null(r) : !is_null(r) && strcmp(r->version_id, vid) == 0;
}


int store__versioning_of(const MDB_val *brec)
{
  return state_of(brec);
}

/* ---- the versioning document ---- */

int store_bucket_versioning_get(store *s, const char *bucket, int *state, err *e)
{
  *state = STORE_VERSIONING_OFF;
  if (s->pg != NULL) {
    int rc = store__check_bucket_arg(bucket, e);
    arena *a = arena_new();
    MDB_val v;
    if (rc == 0)
      rc = store__pg_bucket_read(s, bucket, a, &v, e);
    if (rc == 0)
      *state = state_of(&v);
    arena_free(a);
    return rc;
  }
  MDB_txn *txn;
  MDB_val v;
  int rc = store__bucket_read_begin(s, bucket, &txn, &v, e);
  if (rc != 0)
    return rc;
  *state = state_of(&v);
  mdb_txn_abort(txn);
  return 0;
}

int store_bucket_versioning_set(store *s, const char *bucket, int state, err *e)
{
  if (state != STORE_VERSIONING_ENABLED && state != STORE_VERSIONING_SUSPENDED)
    return err_set(e, ERR_INVALID, "versioning can only be Enabled or Suspended");
  return store_bucket_conf_set(s, bucket, "versioning",
                               state == STORE_VERSIONING_ENABLED ? "Enabled" : "Suspended", e);
}

/* ---- LMDB's tables (vtab.h) ---- */

typedef struct lm_ctx {
  change *c;                   /* NULL in a read transaction */
  MDB_txn *txn;
} lm_ctx;

static MDB_txn *lm_txn(vtab *t)
{
  return ((lm_ctx *)t->ctx)->txn;
}

/* Copies what a decoded record points at in the transaction's pages into
 * a, so that the record survives writes. */
static void rec_own(obj_rec *r, arena *a)
{
  r->lk = arena_memdup(a, r->lk, r->lkn > 0 ? r->lkn : 1);
  if (r->inlined)
    r->data = arena_memdup(a, r->data, r->size > 0 ? (size_t)r->size : 1);
  if (r->parts != NULL)
    r->parts = arena_memdup(a, r->parts, r->parts_len > 0 ? r->parts_len : 1);
}

static int lm_cur_get(vtab *t, const uint8_t *lk, size_t lkn, arena *a, obj_rec *r, err *e)
{
  ikey k;
  MDB_val v;
  int mrc = store__index_get(lm_txn(t), t->s->db_objects, t->bucket, lk, lkn, &k, &v);
  if (mrc == MDB_NOTFOUND)
    return MDB_NOTFOUND;
  if (mrc != 0)
    return lmdb_error(e, mrc, "read an object record");
  MDB_val kv = store__ikey_val(&k);
  if (store__obj_rec_decode(&kv, &v, a, r) != 0)
    return store__corrupt(e, "object");
  rec_own(r, a);
  return 0;
}

static int lm_cur_put(vtab *t, const obj_rec *r, arena *a, err *e)
{
  ikey k;
  bool lng = store__ikey_make(&k, t->bucket, r->lk, r->lkn);
  buf b;
  buf_init(&b, 1 << 20);
  store__obj_rec_reencode(&b, r, a, lng);
  MDB_val kv = store__ikey_val(&k);
  MDB_val v = { b.len, b.data };
  int mrc = mdb_put(lm_txn(t), t->s->db_objects, &kv, &v, 0);
  buf_release(&b);
  return mrc ? lmdb_error(e, mrc, "write an object record") : 0;
}

static int lm_cur_del(vtab *t, const uint8_t *lk, size_t lkn, err *e)
{
  ikey k;
  store__ikey_make(&k, t->bucket, lk, lkn);
  MDB_val kv = store__ikey_val(&k);
  int mrc = mdb_del(lm_txn(t), t->s->db_objects, &kv, NULL);
  return mrc ? lmdb_error(e, mrc, "delete an object record") : 0;
}

/* Positions cur at the newest version of key: 0, or MDB_NOTFOUND when
 * it has none. k gets the key's prefix. */
static int versions_first(MDB_cursor *cur, const char *bucket, const uint8_t *lk, size_t lkn,
                          vkey *k, MDB_val *kv, MDB_val *v)
{
  vkey_prefix(k, bucket, lk, lkn);
  kv->mv_size = k->pre;
  kv->mv_data = k->b;
  int mrc = mdb_cursor_get(cur, kv, v, MDB_SET_RANGE);
  if (mrc == 0 && !vkey_has_prefix(k, kv))
    return MDB_NOTFOUND;
  return mrc;
}

/* Finds key's version vid (NULL: the newest) in db_versions: 0 with r
 * decoded (owned by a), or MDB_NOTFOUND. */
static int lm_ver_get(vtab *t, const uint8_t *lk, size_t lkn, const char *vid, arena *a,
                      obj_rec *r, err *e)
{
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(lm_txn(t), t->s->db_versions, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  vkey k;
  MDB_val kv;
  MDB_val v;
  uint64_t seq = 0;
  int rc = MDB_NOTFOUND;
  if (vid != NULL && strcmp(vid, "null") != 0) {
    if (!vid_parse(vid, &seq))
      goto out;
    vkey_prefix(&k, t->bucket, lk, lkn);
    vkey_seq(&k, seq);
    kv = vkey_val(&k);
    mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_KEY);
  } else {
    mrc = versions_first(cur, t->bucket, lk, lkn, &k, &kv, &v);
  }
  for (; mrc == 0; mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
    if (!vkey_has_prefix(&k, &kv))
      goto out;
    if (vrec_decode(&kv, &v, a, r) != 0) {
      rc = store__corrupt(e, "version");
      goto out;
    }
    if (r->lkn == lkn && memcmp(r->lk, lk, lkn) == 0 && (vid == NULL || vid_is(r, vid))) {
      rec_own(r, a);
      rc = 0;
      goto out;
    }
    if (seq != 0)
      goto out;
  }
  if (mrc != MDB_NOTFOUND)
    rc = lmdb_error(e, mrc, "read a version record");
out:
  mdb_cursor_close(cur);
  return rc;
}

static int lm_ver_put(vtab *t, const obj_rec *r, arena *a, err *e)
{
  vkey k;
  vkey_prefix(&k, t->bucket, r->lk, r->lkn);
  vkey_seq(&k, r->vseq);
  buf b;
  buf_init(&b, 1 << 20);
  store__obj_rec_reencode(&b, r, a, k.lng);
  MDB_val kv = vkey_val(&k);
  MDB_val v = { b.len, b.data };
  int mrc = mdb_put(lm_txn(t), t->s->db_versions, &kv, &v, 0);
  buf_release(&b);
  return mrc ? lmdb_error(e, mrc, "write a version record") : 0;
}

static int lm_ver_del(vtab *t, const obj_rec *r, err *e)
{
  vkey k;
  vkey_prefix(&k, t->bucket, r->lk, r->lkn);
  vkey_seq(&k, r->vseq);
  MDB_val kv = vkey_val(&k);
  int mrc = mdb_del(lm_txn(t), t->s->db_versions, &kv, NULL);
  return mrc ? lmdb_error(e, mrc, "delete a version record") : 0;
}

static int lm_seq_next(vtab *t, uint64_t *seq, err *e)
{
  return store__counter_add(t->s, lm_txn(t), VSEQ_COUNTER, 1, seq, e);
}

static int lm_blob_ref(vtab *t, const blob_id *id, err *e)
{
  return store__change_ref_blob(((lm_ctx *)t->ctx)->c, lm_txn(t), id, 'o', e);
}

static int lm_blob_drop(vtab *t, const blob_id *id, err *e)
{
  return store__change_drop_blob(((lm_ctx *)t->ctx)->c, lm_txn(t), id, e);
}

static int lm_count(vtab *t, int64_t objects, int64_t bytes, err *e)
{
  return store__counters_add(t->s, lm_txn(t), objects, bytes, e);
}

static int lm_bucket_rec(vtab *t, arena *a, MDB_val *v, err *e)
{
  (void)a;
  return store__bucket_read(t->s, lm_txn(t), t->bucket, v, e);
}

static int lm_feed(vtab *t, const feed_note *n, err *e)
{
  return store__feed_append(((lm_ctx *)t->ctx)->c, lm_txn(t), n, e);
}

static const vtab_ops LM_OPS = {
  lm_cur_get, lm_cur_put, lm_cur_del, lm_ver_get, lm_ver_put, lm_ver_del, lm_seq_next,
  lm_blob_ref, lm_blob_drop, lm_count, lm_bucket_rec, lm_feed,
};

static vtab lm_vtab(store *s, const char *bucket, lm_ctx *ctx)
{
  vtab t = { &LM_OPS, s, bucket, ctx };
  return t;
}

int store__versioning_in(store *s, MDB_txn *txn, const char *bucket, int *state, err *e)
{
  MDB_val bv;
  int rc = store__bucket_read(s, txn, bucket, &bv, e);
  *state = rc == 0 ? state_of(&bv) : STORE_VERSIONING_OFF;
  return rc;
}

int store__version_replace(change *c, MDB_txn *txn, const char *bucket, const ikey *k,
                           MDB_val val, uint64_t size, const blob_id *blob, int state, char *vid,
                           err *e)
{
  lm_ctx ctx = { c, txn };
  vtab t = lm_vtab(c->s, bucket, &ctx);
  return store__vt_replace(&t, k, val, size, blob, state, vid, e);
}

int store__version_delete(change *c, MDB_txn *txn, const store_vdelete *d, arena *a, err *e)
{
  lm_ctx ctx = { c, txn };
  vtab t = lm_vtab(c->s, d->bucket, &ctx);
  return store__vt_delete(&t, d, a, e);
}

int store__version_lookup(store *s, MDB_txn *txn, const char *bucket, const char *key,
                          const char *vid, arena *a, obj_rec *r, err *e)
{
  lm_ctx ctx = { NULL, txn };
  vtab t = lm_vtab(s, bucket, &ctx);
  return store__vt_lookup(&t, key, vid, a, r, e);
}

/* ---- the decisions, on any vtab ---- */

int store__vt_state(vtab *t, arena *a, int *state, err *e)
{
  MDB_val bv;
  int rc = t->ops->bucket_rec(t, a, &bv, e);
  *state = rc == 0 ? state_of(&bv) : STORE_VERSIONING_OFF;
  return rc;
}

/* The bucket's default retention ("lock-default": "GOVERNANCE <days>" or
 * "COMPLIANCE <days>"), into r when r has none of its own. */
static void lock_default(vtab *t, arena *a, obj_rec *r)
{
  MDB_val bv;
  const uint8_t *v;
  size_t n;
  if (r->lock_mode != 0 || t->ops->bucket_rec(t, a, &bv, NULL) != 0 ||
      !bucket_doc(&bv, "lock-default", &v, &n) || n > 40)
    return;
  char text[48];
  memcpy(text, v, n);
  text[n] = '\0';
  char mode[16];
  long days = 0;
  if (sscanf(text, "%15s %ld", mode, &days) != 2 || days <= 0)
    return;
  r->lock_mode = strcmp(mode, "COMPLIANCE") == 0 ? STORE_LOCK_COMPLIANCE : STORE_LOCK_GOVERNANCE;
  r->retain_until_ms = r->mtime_ms + (int64_t)days * 86400000;
}

/* Drops a version's bytes (nothing for markers and inline objects). */
static int drop_bytes(vtab *t, const obj_rec *r, err *e)
{
  return r->marker || r->inlined ? 0 : t->ops->blob_drop(t, &r->blob, e);
}

/* Takes the current version of key out of the current table: into the
 * versions, or, when it is the null version and versioning is suspended,
 * away. */
static int demote_current(vtab *t, const uint8_t *lk, size_t lkn, int state, arena *a, err *e)
{
  obj_rec r;
  int rc = t->ops->cur_get(t, lk, lkn, a, &r, e);
  if (rc == MDB_NOTFOUND)
    return 0;
  if (rc != 0)
    return rc;
  rc = t->ops->count(t, -1, -(int64_t)r.size, e);
  if (rc == 0 && state == STORE_VERSIONING_SUSPENDED && is_null(&r)) {
    rc = drop_bytes(t, &r, e);
  } else if (rc == 0) {
    if (r.vseq == 0)
      rc = t->ops->seq_next(t, &r.vseq, e);
    if (rc == 0)
      rc = t->ops->ver_put(t, &r, a, e);
  }
  return rc != 0 ? rc : t->ops->cur_del(t, lk, lkn, e);
}

/* Removes key's null version from the versions (suspended versioning). */
static int drop_null_version(vtab *t, const uint8_t *lk, size_t lkn, arena *a, err *e)
{
  obj_rec r;
  int rc = t->ops->ver_get(t, lk, lkn, "null", a, &r, e);
  if (rc == MDB_NOTFOUND)
    return 0;
  if (rc == 0)
    rc = drop_bytes(t, &r, e);
  return rc != 0 ? rc : t->ops->ver_del(t, &r, e);
}

/* Invariant (1): when key has no current record and its newest version is
 * an object, that version becomes the current one. */
static int promote(vtab *t, const uint8_t *lk, size_t lkn, arena *a, err *e)
{
  obj_rec r;
  int rc = t->ops->cur_get(t, lk, lkn, a, &r, e);
  if (rc != MDB_NOTFOUND)
    return rc;
  rc = t->ops->ver_get(t, lk, lkn, NULL, a, &r, e);
  if (rc == MDB_NOTFOUND || (rc == 0 && r.marker))
    return 0;
  if (rc == 0)
    rc = t->ops->ver_del(t, &r, e);
  if (rc == 0)
    rc = t->ops->cur_put(t, &r, a, e);
  if (rc == 0)
    rc = t->ops->count(t, 1, (int64_t)r.size, e);
  return rc;
}

int store__vt_replace(vtab *t, const ikey *k, MDB_val rec, uint64_t size, const blob_id *blob,
                      int state, char *vid, err *e)
{
  arena *a = arena_new();
  MDB_val kv = store__ikey_val(k);
  obj_rec r;
  int rc = 0;
  if (store__obj_rec_decode(&kv, &rec, a, &r) != 0)
    rc = store__corrupt(e, "object");
  if (rc == 0) {
    rec_own(&r, a);
    rc = demote_current(t, r.lk, r.lkn, state, a, e);
  }
  if (rc == 0 && state == STORE_VERSIONING_SUSPENDED)
    rc = drop_null_version(t, r.lk, r.lkn, a, e);
  if (rc == 0)
    rc = t->ops->seq_next(t, &r.vseq, e);
  if (rc == 0) {
    char id[STORE_VID_MAX];
    id[0] = '\0';
    if (state == STORE_VERSIONING_ENABLED)
      vid_make(r.vseq, id);
    r.version_id = id;
    snprintf(vid, STORE_VID_MAX, "%s", id[0] ? id : "null");
    lock_default(t, a, &r);
    rc = t->ops->cur_put(t, &r, a, e);
  }
  if (rc == 0 && blob != NULL)
    rc = t->ops->blob_ref(t, blob, e);
  if (rc == 0)
    rc = t->ops->count(t, 1, (int64_t)size, e);
  arena_free(a);
  return rc;
}

/* S3's object lock on deleting a version: legal hold, compliance until its
 * date, governance unless bypassed. */
static int lock_check(const obj_rec *r, bool bypass, err *e)
{
  if (r->marker)
    return 0;
  if (r->legal_hold)
    return err_set(e, ERR_DENIED, "Access Denied because object protected by object lock "
                   "(legal hold)");
  if (r->lock_mode != 0 && r->retain_until_ms > store__clock_ms() &&
      (r->lock_mode == STORE_LOCK_COMPLIANCE || !bypass))
    return err_set(e, ERR_DENIED, "Access Denied because object protected by object lock");
  return 0;
}

int store__vt_delete(vtab *t, const store_vdelete *d, arena *a, err *e)
{
  const uint8_t *lk = (const uint8_t *)d->key;
  size_t lkn = strlen(d->key);
  int state = 0;
  int rc = store__vt_state(t, a, &state, e);
  if (rc != 0)
    return rc;
  d->out->existed = false;
  d->out->delete_marker = false;
  d->out->version_id[0] = '\0';
  if (d->version_id == NULL) {
    /* a new delete marker on top (conditions on the current version first) */
    obj_rec cur_r;
    rc = t->ops->cur_get(t, lk, lkn, a, &cur_r, e);
    if (rc != 0 && rc != MDB_NOTFOUND)
      return rc;
    bool have = rc == 0;
    if (d->if_mtime_ms != 0 && (!have || cur_r.mtime_ms != d->if_mtime_ms))
      return 0;
    if (d->if_etag != NULL && !have)
      return err_set(e, ERR_NO_SUCH_KEY, "the object does not exist (If-Match '%.80s')",
                     d->if_etag);
    if (d->if_etag != NULL && !store__etag_match(d->if_etag, cur_r.etag))
      return err_set(e, ERR_PRECONDITION, "At least one of the pre-conditions you specified "
                     "did not hold: the object's ETag is not '%.80s'", d->if_etag);
    rc = demote_current(t, lk, lkn, state, a, e);
    if (rc == 0 && state == STORE_VERSIONING_SUSPENDED)
      rc = drop_null_version(t, lk, lkn, a, e);
    obj_rec m = { .lk = lk, .lkn = lkn, .mtime_ms = store__clock_ms(), .inlined = true,
                  .data = (const uint8_t *)"", .etag = "", .upload_id = "", .marker = true };
    if (rc == 0)
      rc = t->ops->seq_next(t, &m.vseq, e);
    if (rc != 0)
      return rc;
    char id[STORE_VID_MAX];
    id[0] = '\0';
    if (state == STORE_VERSIONING_ENABLED)
      vid_make(m.vseq, id);
    m.version_id = id;
    rc = t->ops->ver_put(t, &m, a, e);
    if (rc != 0)
      return rc;
    snprintf(d->out->version_id, STORE_VID_MAX, "%s", id[0] ? id : "null");
    d->out->delete_marker = true;
    d->out->existed = have;
    feed_note note = { STORE_EVENT_DELETE_MARKER, d->bucket, d->key, 0, NULL, m.mtime_ms,
                       d->out->version_id };
    return t->ops->feed(t, &note, e);
  }

  /* one version, for good */
  obj_rec r;
  rc = t->ops->cur_get(t, lk, lkn, a, &r, e);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return rc;
  if (rc == 0 && (vid_is(&r, d->version_id) ||
                  (state == STORE_VERSIONING_OFF && strcmp(d->version_id, "null") == 0))) {
    rc = lock_check(&r, d->bypass_governance, e);
    if (rc == 0)
      rc = drop_bytes(t, &r, e);
    if (rc == 0)
      rc = t->ops->count(t, -1, -(int64_t)r.size, e);
    if (rc == 0)
      rc = t->ops->cur_del(t, lk, lkn, e);
    if (rc != 0)
      return rc;
  } else {
    rc = t->ops->ver_get(t, lk, lkn, d->version_id, a, &r, e);
    if (rc == MDB_NOTFOUND) {  /* S3 answers 204 for a version that is not there */
      snprintf(d->out->version_id, STORE_VID_MAX, "%s", d->version_id);
      return 0;
    }
    if (rc == 0)
      rc = lock_check(&r, d->bypass_governance, e);
    if (rc == 0)
      rc = drop_bytes(t, &r, e);
    if (rc == 0)
      rc = t->ops->ver_del(t, &r, e);
    if (rc != 0)
      return rc;
  }
  rc = promote(t, lk, lkn, a, e);
  if (rc != 0)
    return rc;
  snprintf(d->out->version_id, STORE_VID_MAX, "%s", d->version_id);
  d->out->delete_marker = r.marker;
  d->out->existed = true;
  feed_note note = { STORE_EVENT_DELETE, d->bucket, d->key, 0, NULL, store__clock_ms(),
                     d->out->version_id };
  return t->ops->feed(t, &note, e);
}

/* ---- reading ---- */

int store__vt_lookup(vtab *t, const char *key, const char *vid, arena *a, obj_rec *r, err *e)
{
  const uint8_t *lk = (const uint8_t *)key;
  size_t lkn = strlen(key);
  int rc = store_version_id_check(vid, e);
  if (rc != 0)
    return rc;
  rc = t->ops->cur_get(t, lk, lkn, a, r, e);
  if (rc == 0 && vid_is(r, vid))
    return 0;
  if (rc != 0 && rc != MDB_NOTFOUND)
    return rc;
  rc = t->ops->ver_get(t, lk, lkn, vid, a, r, e);
  if (rc == MDB_NOTFOUND)
    return err_set(e, ERR_NO_SUCH_VERSION, "The specified version does not exist.");
  return rc;
}

bool store__vt_latest_marker(vtab *t, const char *key, arena *a, const char **vid)
{
  obj_rec r;
  const uint8_t *lk = (const uint8_t *)key;
  size_t lkn = strlen(key);
  if (t->ops->cur_get(t, lk, lkn, a, &r, NULL) != MDB_NOTFOUND ||
      t->ops->ver_get(t, lk, lkn, NULL, a, &r, NULL) != 0 || !r.marker)
    return false;
  *vid = is_null(&r) ? "null" : arena_strdup(a, r.version_id);
  return true;
}

bool store_object_latest_marker(store *s, const char *bucket, const char *key, arena *a,
                                const char **vid)
{
  *vid = NULL;
  MDB_txn *txn = NULL;
  if (store__check_bucket_arg(bucket, NULL) != 0 || store__check_key(key, NULL) != 0)
    return false;
  if (s->pg != NULL)
    return store__pg_latest_marker(s, bucket, key, a, vid);
  if (store__read_begin(s, &txn, NULL) != 0)
    return false;
  lm_ctx ctx = { NULL, txn };
  vtab t = lm_vtab(s, bucket, &ctx);
  bool found = store__vt_latest_marker(&t, key, a, vid);
  mdb_txn_abort(txn);
  return found;
}

/* ---- changes to one version's record: object lock, tags ---- */

int store__vt_update(vtab *t, const vupdate_arg *l, arena *a, err *e)
{
  const uint8_t *lk = (const uint8_t *)l->key;
  size_t lkn = strlen(l->key);
  int state = 0;
  int rc = store__vt_state(t, a, &state, e);
  if (rc != 0)
    return rc;
  if (l->version_id != NULL && (rc = store_version_id_check(l->version_id, e)) != 0)
    return rc;
  obj_rec r;
  bool in_versions = false;
  rc = t->ops->cur_get(t, lk, lkn, a, &r, e);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return rc;
  if (rc == MDB_NOTFOUND && l->version_id == NULL)
    return err_set(e, ERR_NO_SUCH_KEY, "The specified key does not exist.");
  if (l->version_id != NULL && (rc == MDB_NOTFOUND || !vid_is(&r, l->version_id))) {
    rc = t->ops->ver_get(t, lk, lkn, l->version_id, a, &r, e);
    if (rc == MDB_NOTFOUND)
      return err_set(e, ERR_NO_SUCH_VERSION, "The specified version does not exist.");
    if (rc != 0)
      return rc;
    in_versions = true;
  }
  if (r.marker)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "The specified method is not allowed against "
                   "this resource.");
  rc = l->edit(&r, l->ctx, a, e);
  if (rc == 0)
    rc = in_versions ? t->ops->ver_put(t, &r, a, e) : t->ops->cur_put(t, &r, a, e);
  if (rc != 0)
    return rc;
  if (state != STORE_VERSIONING_OFF || r.vseq != 0)
    snprintf(l->vid, STORE_VID_MAX, "%s", is_null(&r) ? "null" : r.version_id);
  return 0;
}

static int apply_vupdate(change *c, MDB_txn *txn, arena *a, err *e)
{
  vupdate_arg *l = c->arg;
  lm_ctx ctx = { c, txn };
  vtab t = lm_vtab(c->s, l->bucket, &ctx);
  return store__vt_update(&t, l, a, e);
}

static int vupdate_run(store *s, const char *bucket, const char *key, const char *version_id,
                       version_edit edit, const void *ctx, char vid[STORE_VID_MAX], err *e)
{
  vid[0] = '\0';
  int rc = store__check_bucket_arg(bucket, e);
  if (rc == 0)
    rc = store__check_key(key, e);
  if (rc != 0)
    return rc;
  vupdate_arg l = { bucket, key, version_id, edit, ctx, vid };
  if (s->pg != NULL)
    return store__pg_version_update(s, &l, e);
  change c;
  store__change_init(&c, s, apply_vupdate, &l, NULL);
  return store__commit_run(s, &c, e);
}

static int edit_lock(obj_rec *r, const void *ctx, arena *a, err *e)
{
  (void)a;
  const store_lock_change *ch = ctx;
  int64_t now = store__clock_ms();
  if (ch->set_retention) {
    /* only extending a running retention in its own mode needs nothing */
    bool active = r->lock_mode != 0 && r->retain_until_ms > now;
    bool weaker = ch->mode != r->lock_mode || ch->retain_until_ms < r->retain_until_ms;
    if (active && weaker && r->lock_mode == STORE_LOCK_COMPLIANCE)
      return err_set(e, ERR_DENIED, "Access Denied: a COMPLIANCE retention cannot be shortened, "
                     "removed or changed to GOVERNANCE");
    if (active && weaker && !ch->bypass_governance)
      return err_set(e, ERR_DENIED, "Access Denied: shortening, removing or changing the mode "
                     "of a GOVERNANCE retention needs x-amz-bypass-governance-retention");
    r->lock_mode = (uint8_t)ch->mode;
    r->retain_until_ms = ch->mode != 0 ? ch->retain_until_ms : 0;
  }
  if (ch->set_legal_hold) {
    r->legal_hold = ch->legal_hold;
    r->legal_hold_set = true;
  }
  return 0;
}

int store_object_lock_set(store *s, const char *bucket, const char *key, const char *version_id,
                          const store_lock_change *ch, char vid[STORE_VID_MAX], err *e)
{
  return vupdate_run(s, bucket, key, version_id, edit_lock, ch, vid, e);
}

typedef struct tag_set {
  const str_pair *tags;
  size_t ntags;
} tag_set;

static int edit_tags(obj_rec *r, const void *ctx, arena *a, err *e)
{
  (void)a;
  (void)e;
  const tag_set *t = ctx;
  r->tags = (str_pair *)t->tags;
  r->ntags = t->ntags;
  return 0;
}

int store_object_tags_set_version(store *s, const char *bucket, const char *key,
                                  const char *version_id, const str_pair *tags, size_t ntags,
                                  char vid[STORE_VID_MAX], err *e)
{
  int rc = store__check_tags(tags, ntags, e);
  if (rc != 0)
    return rc;
  tag_set t = { tags, ntags };
  return vupdate_run(s, bucket, key, version_id, edit_tags, &t, vid, e);
}

/* ---- ListObjectVersions ---- */

static int lkcmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
  size_t n = an < bn ? an : bn;
  int c = n ? memcmp(a, b, n) : 0;
  return c != 0 ? c : an < bn ? -1 : an > bn ? 1 : 0;
}

static bool starts(const uint8_t *p, size_t n, const char *pre, size_t pn)
{
  return n >= pn && memcmp(p, pre, pn) == 0;
}

const char *store__vt_from(const store_version_params *p)
{
  const char *prefix = p->prefix != NULL ? p->prefix : "";
  const char *km = p->key_marker != NULL && p->key_marker[0] ? p->key_marker : NULL;
  return km != NULL && strcmp(km, prefix) > 0 ? km : prefix;
}

int store__vt_list(const char *bucket, const store_version_params *p, vt_next next,
                   vt_decode decode, void *it, arena *a, store_version_list *out, err *e)
{
  const char *prefix = p->prefix != NULL ? p->prefix : "";
  size_t pl = strlen(prefix);
  const char *delim = p->delimiter != NULL && p->delimiter[0] ? p->delimiter : NULL;
  const char *km = p->key_marker != NULL && p->key_marker[0] ? p->key_marker : NULL;
  const char *vm = p->version_id_marker != NULL && p->version_id_marker[0] ? p->version_id_marker
                                                                           : NULL;
  size_t max = p->max_keys > STORE_MAX_LIST_KEYS ? STORE_MAX_LIST_KEYS : p->max_keys;
  size_t cap = max > 0 ? max : 1;
  out->versions = arena_alloc(a, cap * sizeof *out->versions);
  out->prefixes = arena_alloc(a, cap * sizeof *out->prefixes);
  size_t count = 0;
  bool skipping_km = km != NULL && vm != NULL;  /* inside key_marker until vm passed */
  vt_entry cur;
  int have = next(it, a, &cur, e);
  while (have > 0) {
    const uint8_t *K = cur.lk;
    size_t Kn = cur.lkn;
    if (!starts(K, Kn, prefix, pl)) {
      if (lkcmp(K, Kn, (const uint8_t *)prefix, pl) > 0)
        break;
      have = next(it, a, &cur, e);
      continue;
    }
    char *key = arena_strndup(a, (const char *)K, Kn);
    int vs_km = km != NULL ? strcmp(key, km) : 1;
    if (delim != NULL) {
      const char *rest = key + pl;
      const char *hit = strstr(rest, delim);
      if (hit != NULL) {
        size_t cpn = (size_t)(hit - key) + strlen(delim);
        char *cp = arena_strndup(a, key, cpn);
        bool emit = km == NULL || strcmp(cp, km) > 0;
        if (emit) {
          if (count == max) {
            out->truncated = true;
            break;
          }
          out->prefixes[out->nprefixes++] = cp;
          count++;
          out->next_key_marker = cp;
          out->next_version_id_marker = NULL;
        }
        while (have > 0 && starts(cur.lk, cur.lkn, cp, cpn))
          have = next(it, a, &cur, e);
        continue;
      }
    }
    bool first = true;
    bool stop = false;
    while (have > 0 && lkcmp(cur.lk, cur.lkn, K, Kn) == 0) {
      /* the record only of a version listed or looked at for the id marker */
      bool need = vs_km > 0 || (vs_km == 0 && vm != NULL);
      obj_rec rec;
      const obj_rec *r = &rec;
      if (need) {
        int rc = decode(it, &cur, a, &rec, e);
        if (rc != 0)
          return rc;
      }
      bool latest = first;
      first = false;
      const char *id = need ? (is_null(r) ? "null" : r->version_id) : NULL;
      bool emit;
      if (vs_km != 0 || vm == NULL) {
        emit = vs_km > 0;
      } else if (skipping_km) {
        if (strcmp(id, vm) == 0)
          skipping_km = false;
        emit = false;
      } else {
        emit = true;
      }
      if (emit) {
        if (count == max) {
          out->truncated = true;
          stop = true;
          break;
        }
        store_object *ob = &out->versions[out->nversions++];
        memset(ob, 0, sizeof *ob);
        store__obj_out(a, bucket, r, ob);
        ob->key = key;
        ob->version_id = id;
        ob->is_latest = latest;
        count++;
        out->next_key_marker = key;
        out->next_version_id_marker = id;
      }
      have = next(it, a, &cur, e);
    }
    if (stop)
      break;
  }
  if (have < 0)
    return have;
  if (!out->truncated) {
    out->next_key_marker = NULL;
    out->next_version_id_marker = NULL;
  }
  return 0;
}

/* LMDB's entries: db_objects and db_versions merged by key, the current
 * version (db_objects) first. */
typedef struct side {
  MDB_cursor *cur;
  bool versions;       /* db_versions (else db_objects) */
  bool have;           /* at an entry of the bucket */
  MDB_val k, v;
  const uint8_t *lk;   /* its logical key */
  size_t lkn;
} side;

static void side_load(side *sd, const char *bucket, size_t bl, int mrc)
{
  sd->have = mrc == 0 && sd->k.mv_size > bl && memcmp(sd->k.mv_data, bucket, bl) == 0 &&
             ((const uint8_t *)sd->k.mv_data)[bl] == '\0';
  if (!sd->have)
    return;
  if (sd->versions) {
    obj_rec r;
    if (store__obj_rec_decode(&sd->k, &sd->v, NULL, &r) != 0) {
      sd->have = false;
      return;
    }
    vrec_lkey(&sd->k, &r, &sd->lk, &sd->lkn);
  } else if (store__rec_lkey(&sd->k, &sd->v, &sd->lk, &sd->lkn) != 0) {
    sd->have = false;
  }
}

static void side_seek(side *sd, const char *bucket, const char *from)
{
  size_t bl = strlen(bucket);
  uint8_t kb[VKEY_MAX];
  size_t fl = strlen(from);
  size_t room = IKEY_SHORT_MAX - VKEY_TAIL - bl - 1;
  if (fl > room)
    fl = room;
  memcpy(kb, bucket, bl);
  kb[bl] = '\0';
  memcpy(kb + bl + 1, from, fl);
  sd->k.mv_size = bl + 1 + fl;
  sd->k.mv_data = kb;
  side_load(sd, bucket, bl, mdb_cursor_get(sd->cur, &sd->k, &sd->v, MDB_SET_RANGE));
}

typedef struct lm_walk {
  const char *bucket;
  size_t bl;
  side o;
  side v;
} lm_walk;

static int lm_next(void *it, arena *a, vt_entry *out, err *e)
{
  lm_walk *w = it;
  side *sd;
  if (w->o.have && (!w->v.have || lkcmp(w->o.lk, w->o.lkn, w->v.lk, w->v.lkn) <= 0))
    sd = &w->o;
  else if (w->v.have)
    sd = &w->v;
  else
    return 0;
  (void)a;
  (void)e;
  out->k = sd->k;     /* in the read transaction's pages, stable until its end */
  out->v = sd->v;
  out->lk = sd->lk;
  out->lkn = sd->lkn;
  out->current = !sd->versions;
  side_load(sd, w->bucket, w->bl, mdb_cursor_get(sd->cur, &sd->k, &sd->v, MDB_NEXT));
  return 1;
}

static int lm_decode(void *it, const vt_entry *en, arena *a, obj_rec *r, err *e)
{
  (void)it;
  if ((en->current ? store__obj_rec_decode(&en->k, &en->v, a, r)
                   : vrec_decode(&en->k, &en->v, a, r)) != 0)
    return store__corrupt(e, "version");
  return 0;
}

int store_object_versions(store *s, const char *bucket, const store_version_params *p, arena *a,
                          store_version_list *out, err *e)
{
  memset(out, 0, sizeof *out);
  if (s->pg != NULL)
    return store__pg_object_versions(s, bucket, p, a, out, e);
  MDB_txn *txn = NULL;
  int rc = store__bucket_read_begin(s, bucket, &txn, NULL, e);
  if (rc != 0)
    return rc;
  lm_walk w = { bucket, strlen(bucket), { .versions = false }, { .versions = true } };
  int mrc = mdb_cursor_open(txn, s->db_objects, &w.o.cur);
  if (mrc == 0)
    mrc = mdb_cursor_open(txn, s->db_versions, &w.v.cur);
  if (mrc != 0) {
    rc = lmdb_error(e, mrc, "open a cursor");
  } else {
    const char *from = store__vt_from(p);
    side_seek(&w.o, bucket, from);
    side_seek(&w.v, bucket, from);
    rc = store__vt_list(bucket, p, lm_next, lm_decode, &w, a, out, e);
  }
  if (w.o.cur != NULL)
    mdb_cursor_close(w.o.cur);
  if (w.v.cur != NULL)
    mdb_cursor_close(w.v.cur);
  mdb_txn_abort(txn);
  return rc;
}
