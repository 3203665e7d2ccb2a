/* store/version.c -- S3 versioning and object lock on the index.
 *
 * Why: a versioned bucket keeps every version of a key, with delete
 * markers, while listings, SQL and plain GETs keep reading the current
 * version as fast as before.
 *
 * Layout: db_objects keeps holding the current version of each key (so
 * list.c, the SQL reader and a GET without versionId are unchanged);
 * db_versions holds every other version and every delete marker, keyed by
 * vkey = bucket "\0" K "\0" (~seq, 8 bytes big-endian), where K is the
 * object key, or for keys longer than the room, its first bytes and
 * SHA-256 (the record then holds the whole key, as in index.c). A key's
 * versions are contiguous, newest first.
 *
 * Invariants:
 *   (1) For a key K of a bucket: db_objects has K exactly when K's newest
 *       version is not a delete marker, and then that record is the newest;
 *       otherwise the newest entry of K in db_versions is a delete marker
 *       (or K has no version at all). Every change below keeps this in its
 *       one transaction: removing the current version promotes the next
 *       one when it is an object.
 *   (2) Each version record lives in exactly one table, so db_blobs keeps
 *       naming each referenced blob once (index.c (5)): moving a record
 *       between the tables moves no reference.
 *   (3) Sequence numbers come from the "vseq" counter, in the transaction
 *       that creates the version; a version id is 16 hex digits of its
 *       sequence number then 16 random hex digits, so a lookup by id is a
 *       point read. The null version has id "" in its record and keeps a
 *       sequence number too (its place in the history).
 *   (4) A bucket that never had versioning has no versioning document and
 *       none of its records carries a 'V' section: everything behaves as
 *       before versioning existed.
 *   (5) The counters count current versions only.
 *
 * Start reading at store__version_replace().
 */
#include "store.h"

#include "codec.h"
#include "commit.h"
#include "index.h"
#include "pg_index.h"

#include "base/hash.h"
#include "base/mem.h"

#include <openssl/evp.h>
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

int store__versioning_in(store *s, MDB_txn *txn, const char *bucket, int *state, err *e)
{
  MDB_val bv;
  int rc = store__bucket_read(s, txn, bucket, &bv, e);
  *state = rc == 0 ? state_of(&bv) : STORE_VERSIONING_OFF;
  return rc;
}

/* The bucket's default retention ("lock-default": "GOVERNANCE <days>" or
 * "COMPLIANCE <days>"), into r when r has none of its own. */
static void lock_default(store *s, MDB_txn *txn, const char *bucket, obj_rec *r)
{
  MDB_val bv;
  const uint8_t *v;
  size_t n;
  if (r->lock_mode != 0 || store__bucket_read(s, txn, bucket, &bv, NULL) != 0 ||
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

int store_bucket_versioning_get(store *s, const char *bucket, int *state, err *e)
{
  *state = STORE_VERSIONING_OFF;
  if (s->pg != NULL) {  /* never on: pg_index.c refuses the document */
    int rc = store__check_bucket_arg(bucket, e);
    arena *a = arena_new();
    if (rc == 0)
      rc = store__pg_bucket_read(s, bucket, a, NULL, e);
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

static int next_seq(store *s, MDB_txn *txn, uint64_t *seq, err *e)
{
  return store__counter_add(s, txn, VSEQ_COUNTER, 1, seq, e);
}

/* ---- moving records between the tables ---- */

/* Writes r into db_versions at its sequence number. */
static int version_put(store *s, MDB_txn *txn, const char *bucket, const obj_rec *r, arena *a,
                       err *e)
{
  vkey k;
  vkey_prefix(&k, bucket, r->lk, r->lkn);
  vkey_seq(&k, r->vseq);
  buf b;
  buf_init(&b, 1 << 20);
  store__obj_rec_reencode(&b, r, a, k.lng);
  MDB_val kv = vkey_val(&k);
  MDB_val v = { b.len, b.data };
  int mrc = mdb_put(txn, s->db_versions, &kv, &v, 0);
  buf_release(&b);
  return mrc ? lmdb_error(e, mrc, "write a version record") : 0;
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

/* The current record of key (0 or MDB_NOTFOUND), decoded into r and owned
 * by a; k gets its index key. */
static int current_get(store *s, MDB_txn *txn, const char *bucket, const uint8_t *lk, size_t lkn,
                       ikey *k, arena *a, obj_rec *r, err *e)
{
  MDB_val v;
  int mrc = store__index_get(txn, s->db_objects, bucket, lk, lkn, k, &v);
  if (mrc == MDB_NOTFOUND)
    return MDB_NOTFOUND;
  if (mrc != 0)
    return lmdb_error(e, mrc, "read an object record");
  MDB_val kv = store__ikey_val(k);
  if (store__obj_rec_decode(&kv, &v, a, r) != 0)
    return store__corrupt(e, "object");
  rec_own(r, a);
  return 0;
}

/* Drops a version's bytes (nothing for markers and inline objects). */
static int drop_bytes(change *c, MDB_txn *txn, const obj_rec *r, err *e)
{
  return r->marker || r->inlined ? 0 : store__change_drop_blob(c, txn, &r->blob, e);
}

/* Takes the current version of key out of db_objects: into db_versions,
 * or, when it is the null version and versioning is suspended, away. */
static int demote_current(change *c, MDB_txn *txn, const char *bucket, const uint8_t *lk,
                          size_t lkn, int state, arena *a, err *e)
{
  store *s = c->s;
  ikey k;
  obj_rec r;
  int rc = current_get(s, txn, bucket, lk, lkn, &k, a, &r, e);
  if (rc == MDB_NOTFOUND)
    return 0;
  if (rc != 0)
    return rc;
  rc = store__counters_add(s, txn, -1, -(int64_t)r.size, e);
  if (rc == 0 && state == STORE_VERSIONING_SUSPENDED && is_null(&r)) {
    rc = drop_bytes(c, txn, &r, e);
  } else if (rc == 0) {
    if (r.vseq == 0)
      rc = next_seq(s, txn, &r.vseq, e);
    if (rc == 0)
      rc = version_put(s, txn, bucket, &r, a, e);
  }
  if (rc != 0)
    return rc;
  MDB_val kv = store__ikey_val(&k);
  int mrc = mdb_del(txn, s->db_objects, &kv, NULL);
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

/* Finds the version of key whose id is vid in db_versions: 0 with the
 * cursor on it and r decoded (owned by a), or MDB_NOTFOUND. */
static int version_find(store *s, MDB_cursor *cur, const char *bucket, const uint8_t *lk,
                        size_t lkn, const char *vid, arena *a, obj_rec *r, err *e)
{
  vkey k;
  MDB_val kv;
  MDB_val v;
  uint64_t seq = 0;
  int mrc;
  (void)s;
  if (strcmp(vid, "null") != 0) {
    if (!vid_parse(vid, &seq))
      return MDB_NOTFOUND;
    vkey_prefix(&k, bucket, lk, lkn);
    vkey_seq(&k, seq);
    kv = vkey_val(&k);
    mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_KEY);
  } else {
    mrc = versions_first(cur, bucket, lk, lkn, &k, &kv, &v);
  }
  for (; mrc == 0; mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
    if (!vkey_has_prefix(&k, &kv))
      return MDB_NOTFOUND;
    if (vrec_decode(&kv, &v, a, r) != 0)
      return store__corrupt(e, "version");
    if (r->lkn == lkn && memcmp(r->lk, lk, lkn) == 0 && vid_is(r, vid)) {
      rec_own(r, a);
      return 0;
    }
    if (seq != 0)
      return MDB_NOTFOUND;
  }
  return mrc == MDB_NOTFOUND ? MDB_NOTFOUND : lmdb_error(e, mrc, "read a version record");
}

/* Removes key's null version from db_versions (suspended versioning). */
static int drop_null_version(change *c, MDB_txn *txn, const char *bucket, const uint8_t *lk,
                             size_t lkn, arena *a, err *e)
{
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, c->s->db_versions, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  obj_rec r;
  int rc = version_find(c->s, cur, bucket, lk, lkn, "null", a, &r, e);
  if (rc == 0) {
    rc = drop_bytes(c, txn, &r, e);
    if (rc == 0 && (mrc = mdb_cursor_del(cur, 0)) != 0)
      rc = lmdb_error(e, mrc, "delete a version record");
  } else if (rc == MDB_NOTFOUND) {
    rc = 0;
  }
  mdb_cursor_close(cur);
  return rc;
}

/* Invariant (1): when key has no current record and its newest version is
 * an object, that version becomes the current one. */
static int promote(change *c, MDB_txn *txn, const char *bucket, const uint8_t *lk, size_t lkn,
                   arena *a, err *e)
{
  store *s = c->s;
  ikey k;
  obj_rec cur_r;
  int rc = current_get(s, txn, bucket, lk, lkn, &k, a, &cur_r, e);
  if (rc != MDB_NOTFOUND)
    return rc;
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, s->db_versions, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  vkey vk;
  MDB_val kv;
  MDB_val v;
  obj_rec r;
  mrc = versions_first(cur, bucket, lk, lkn, &vk, &kv, &v);
  rc = 0;
  if (mrc == 0) {
    if (vrec_decode(&kv, &v, a, &r) != 0) {
      rc = store__corrupt(e, "version");
    } else if (!r.marker) {
      rec_own(&r, a);
      bool lng = store__ikey_make(&k, bucket, lk, lkn);
      buf b;
      buf_init(&b, 1 << 20);
      store__obj_rec_reencode(&b, &r, a, lng);
      MDB_val ok = store__ikey_val(&k);
      MDB_val ov = { b.len, b.data };
      mrc = mdb_cursor_del(cur, 0);
      if (mrc == 0)
        mrc = mdb_put(txn, s->db_objects, &ok, &ov, 0);
      buf_release(&b);
      rc = mrc ? lmdb_error(e, mrc, "promote a version") : 0;
      if (rc == 0)
        rc = store__counters_add(s, txn, 1, (int64_t)r.size, e);
    }
  } else if (mrc != MDB_NOTFOUND) {
    rc = lmdb_error(e, mrc, "read a version record");
  }
  mdb_cursor_close(cur);
  return rc;
}

/* ---- writes ---- */

int store__version_replace(change *c, MDB_txn *txn, const char *bucket, const ikey *k,
                           MDB_val val, uint64_t size, const blob_id *blob, int state, char *vid,
                           err *e)
{
  store *s = c->s;
  arena *a = arena_new();
  MDB_val kv = store__ikey_val(k);
  obj_rec r;
  int rc = 0;
  if (store__obj_rec_decode(&kv, &val, a, &r) != 0)
    rc = store__corrupt(e, "object");
  if (rc == 0) {
    rec_own(&r, a);
    rc = demote_current(c, txn, bucket, r.lk, r.lkn, state, a, e);
  }
  if (rc == 0 && state == STORE_VERSIONING_SUSPENDED)
    rc = drop_null_version(c, txn, bucket, r.lk, r.lkn, a, e);
  if (rc == 0)
    rc = next_seq(s, txn, &r.vseq, e);
  if (rc == 0) {
    char id[STORE_VID_MAX];
    id[0] = '\0';
    if (state == STORE_VERSIONING_ENABLED)
      vid_make(r.vseq, id);
    r.version_id = id;
    snprintf(vid, STORE_VID_MAX, "%s", id[0] ? id : "null");
    lock_default(s, txn, bucket, &r);
    buf b;
    buf_init(&b, 1 << 20);
    store__obj_rec_reencode(&b, &r, a, store__ikey_is_long(&kv));
    MDB_val nv = { b.len, b.data };
    int mrc = mdb_put(txn, s->db_objects, &kv, &nv, 0);
    buf_release(&b);
    if (mrc != 0)
      rc = lmdb_error(e, mrc, "write an object record");
  }
  if (rc == 0 && blob != NULL)
    rc = store__change_ref_blob(c, txn, blob, 'o', e);
  if (rc == 0)
    rc = store__counters_add(s, txn, 1, (int64_t)size, e);
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

int store__version_delete(change *c, MDB_txn *txn, const store_vdelete *d, arena *a, err *e)
{
  store *s = c->s;
  const uint8_t *lk = (const uint8_t *)d->key;
  size_t lkn = strlen(d->key);
  int state = 0;
  int rc = store__versioning_in(s, txn, d->bucket, &state, e);
  if (rc != 0)
    return rc;
  d->out->existed = false;
  d->out->delete_marker = false;
  d->out->version_id[0] = '\0';
  if (d->version_id == NULL) {
    /* a new delete marker on top (conditions on the current version first) */
    ikey k;
    obj_rec cur_r;
    rc = current_get(s, txn, d->bucket, lk, lkn, &k, a, &cur_r, e);
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
    rc = demote_current(c, txn, d->bucket, lk, lkn, state, a, e);
    if (rc == 0 && state == STORE_VERSIONING_SUSPENDED)
      rc = drop_null_version(c, txn, d->bucket, lk, lkn, a, e);
    obj_rec m = { .lk = lk, .lkn = lkn, .mtime_ms = store__clock_ms(), .inlined = true,
                  .data = (const uint8_t *)"", .etag = "", .upload_id = "", .marker = true };
    if (rc == 0)
      rc = next_seq(s, txn, &m.vseq, e);
    if (rc != 0)
      return rc;
    char id[STORE_VID_MAX];
    id[0] = '\0';
    if (state == STORE_VERSIONING_ENABLED)
      vid_make(m.vseq, id);
    m.version_id = id;
    rc = version_put(s, txn, d->bucket, &m, a, e);
    if (rc != 0)
      return rc;
    snprintf(d->out->version_id, STORE_VID_MAX, "%s", id[0] ? id : "null");
    d->out->delete_marker = true;
    d->out->existed = have;
    feed_note note = { STORE_EVENT_DELETE_MARKER, d->bucket, d->key, 0, NULL, m.mtime_ms,
                       d->out->version_id };
    return store__feed_append(c, txn, &note, e);
  }

  /* one version, for good */
  ikey k;
  obj_rec r;
  rc = current_get(s, txn, d->bucket, lk, lkn, &k, a, &r, e);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return rc;
  if (rc == 0 && (vid_is(&r, d->version_id) ||
                  (state == STORE_VERSIONING_OFF && strcmp(d->version_id, "null") == 0))) {
    rc = lock_check(&r, d->bypass_governance, e);
    if (rc == 0)
      rc = drop_bytes(c, txn, &r, e);
    if (rc == 0)
      rc = store__counters_add(s, txn, -1, -(int64_t)r.size, e);
    if (rc != 0)
      return rc;
    MDB_val kv = store__ikey_val(&k);
    int mrc = mdb_del(txn, s->db_objects, &kv, NULL);
    if (mrc != 0)
      return lmdb_error(e, mrc, "delete an object record");
  } else {
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(txn, s->db_versions, &cur);
    if (mrc != 0)
      return lmdb_error(e, mrc, "open a cursor");
    rc = version_find(s, cur, d->bucket, lk, lkn, d->version_id, a, &r, e);
    if (rc == 0)
      rc = lock_check(&r, d->bypass_governance, e);
    if (rc == 0)
      rc = drop_bytes(c, txn, &r, e);
    if (rc == 0 && (mrc = mdb_cursor_del(cur, 0)) != 0)
      rc = lmdb_error(e, mrc, "delete a version record");
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {  /* S3 answers 204 for a version that is not there */
      snprintf(d->out->version_id, STORE_VID_MAX, "%s", d->version_id);
      return 0;
    }
    if (rc != 0)
      return rc;
  }
  rc = promote(c, txn, d->bucket, lk, lkn, a, e);
  if (rc != 0)
    return rc;
  snprintf(d->out->version_id, STORE_VID_MAX, "%s", d->version_id);
  d->out->delete_marker = r.marker;
  d->out->existed = true;
  feed_note note = { STORE_EVENT_DELETE, d->bucket, d->key, 0, NULL, store__clock_ms(),
                     d->out->version_id };
  return store__feed_append(c, txn, &note, e);
}

/* ---- reading ---- */

int store__version_lookup(store *s, MDB_txn *txn, const char *bucket, const char *key,
                          const char *vid, arena *a, obj_rec *r, err *e)
{
  const uint8_t *lk = (const uint8_t *)key;
  size_t lkn = strlen(key);
  int vrc = store_version_id_check(vid, e);
  if (vrc != 0)
    return vrc;
  ikey k;
  int rc = current_get(s, txn, bucket, lk, lkn, &k, a, r, e);
  if (rc == 0 && vid_is(r, vid))
    return 0;
  if (rc != 0 && rc != MDB_NOTFOUND)
    return rc;
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, s->db_versions, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  rc = version_find(s, cur, bucket, lk, lkn, vid, a, r, e);
  mdb_cursor_close(cur);
  if (rc == MDB_NOTFOUND)
    return err_set(e, ERR_NO_SUCH_VERSION, "The specified version does not exist.");
  return rc;
}

bool store_object_latest_marker(store *s, const char *bucket, const char *key, arena *a,
                                const char **vid)
{
  *vid = NULL;
  MDB_txn *txn = NULL;
  if (s->pg != NULL)
    return false;  /* no versions there: pg_index.c */
  if (store__check_bucket_arg(bucket, NULL) != 0 || store__check_key(key, NULL) != 0 ||
      store__read_begin(s, &txn, NULL) != 0)
    return false;
  bool found = false;
  MDB_cursor *cur = NULL;
  if (mdb_cursor_open(txn, s->db_versions, &cur) == 0) {
    vkey k;
    MDB_val kv;
    MDB_val v;
    obj_rec r;
    ikey ik;
    MDB_val ov;
    if (store__index_get(txn, s->db_objects, bucket, key, strlen(key), &ik, &ov) ==
            MDB_NOTFOUND &&
        versions_first(cur, bucket, (const uint8_t *)key, strlen(key), &k, &kv, &v) == 0 &&
        vrec_decode(&kv, &v, a, &r) == 0 && r.marker) {
      found = true;
      *vid = is_null(&r) ? "null" : r.version_id;
    }
    mdb_cursor_close(cur);
  }
  mdb_txn_abort(txn);
  return found;
}

/* ---- changes to one version's record: object lock, tags ---- */

/* Changes a decoded record in place (strings in a): 0 or an error. */
typedef int (*version_edit)(obj_rec *r, const void *ctx, arena *a, err *e);

typedef struct vupdate_arg {
  const char *bucket;
  const char *key;
  const char *version_id;     /* NULL: the current version */
  version_edit edit;
  const void *ctx;            /* edit's */
  char *vid;                  /* out: the version changed */
} vupdate_arg;

/* Finds the version (current record or db_versions entry), lets the edit
 * change it and writes it back where it was. */
static int apply_vupdate(change *c, MDB_txn *txn, arena *a, err *e)
{
  vupdate_arg *l = c->arg;
  store *s = c->s;
  const uint8_t *lk = (const uint8_t *)l->key;
  size_t lkn = strlen(l->key);
  int state = 0;
  int rc = store__versioning_in(s, txn, l->bucket, &state, e);
  if (rc != 0)
    return rc;
  if (l->version_id != NULL && (rc = store_version_id_check(l->version_id, e)) != 0)
    return rc;
  ikey k;
  obj_rec r;
  bool in_versions = false;
  rc = current_get(s, txn, l->bucket, lk, lkn, &k, a, &r, e);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return rc;
  if (rc == MDB_NOTFOUND && l->version_id == NULL)
    return err_set(e, ERR_NO_SUCH_KEY, "The specified key does not exist.");
  if (l->version_id != NULL && (rc == MDB_NOTFOUND || !vid_is(&r, l->version_id))) {
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(txn, s->db_versions, &cur);
    if (mrc != 0)
      return lmdb_error(e, mrc, "open a cursor");
    rc = version_find(s, cur, l->bucket, lk, lkn, l->version_id, a, &r, e);
    mdb_cursor_close(cur);
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
  if (rc != 0)
    return rc;
  buf b;
  buf_init(&b, 1 << 20);
  int mrc;
  if (in_versions) {
    vkey vk;
    vkey_prefix(&vk, l->bucket, lk, lkn);
    vkey_seq(&vk, r.vseq);
    store__obj_rec_reencode(&b, &r, a, vk.lng);
    MDB_val kv = vkey_val(&vk);
    MDB_val v = { b.len, b.data };
    mrc = mdb_put(txn, s->db_versions, &kv, &v, 0);
  } else {
    MDB_val kv = store__ikey_val(&k);
    store__obj_rec_reencode(&b, &r, a, store__ikey_is_long(&kv));
    MDB_val v = { b.len, b.data };
    mrc = mdb_put(txn, s->db_objects, &kv, &v, 0);
  }
  buf_release(&b);
  if (mrc != 0)
    return lmdb_error(e, mrc, "write an object record");
  if (state != STORE_VERSIONING_OFF || r.vseq != 0)
    snprintf(l->vid, STORE_VID_MAX, "%s", is_null(&r) ? "null" : r.version_id);
  return 0;
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
  if (s->pg != NULL) {
    vid[0] = '\0';
    return store__pg_refuse(e, "object lock");
  }
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
  if (s->pg != NULL) {
    vid[0] = '\0';
    if (version_id != NULL && strcmp(version_id, "null") != 0)
      return store__pg_refuse(e, "versioning");
    return store_object_tags_set(s, bucket, key, tags, ntags, e);
  }
  tag_set t = { tags, ntags };
  return vupdate_run(s, bucket, key, version_id, edit_tags, &t, vid, e);
}

/* ---- ListObjectVersions ---- */

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

static void side_next(side *sd, const char *bucket, size_t bl)
{
  side_load(sd, bucket, bl, mdb_cursor_get(sd->cur, &sd->k, &sd->v, MDB_NEXT));
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

int store_object_versions(store *s, const char *bucket, const store_version_params *p, arena *a,
                          store_version_list *out, err *e)
{
  memset(out, 0, sizeof *out);
  if (s->pg != NULL)
    return store__pg_refuse(e, "versioning (ListObjectVersions)");
  MDB_txn *txn = NULL;
  int rc = store__bucket_read_begin(s, bucket, &txn, NULL, e);
  if (rc != 0)
    return rc;
  const char *prefix = p->prefix != NULL ? p->prefix : "";
  size_t pl = strlen(prefix);
  const char *delim = p->delimiter != NULL && p->delimiter[0] ? p->delimiter : NULL;
  const char *km = p->key_marker != NULL && p->key_marker[0] ? p->key_marker : NULL;
  const char *vm = p->version_id_marker != NULL && p->version_id_marker[0] ? p->version_id_marker
                                                                           : NULL;
  size_t max = p->max_keys > STORE_MAX_LIST_KEYS ? STORE_MAX_LIST_KEYS : p->max_keys;
  size_t bl = strlen(bucket);
  side o = { .versions = false };
  side v = { .versions = true };
  int mrc = mdb_cursor_open(txn, s->db_objects, &o.cur);
  if (mrc == 0)
    mrc = mdb_cursor_open(txn, s->db_versions, &v.cur);
  if (mrc != 0) {
    rc = lmdb_error(e, mrc, "open a cursor");
    goto done;
  }
  const char *from = km != NULL && strcmp(km, prefix) > 0 ? km : prefix;
  side_seek(&o, bucket, from);
  side_seek(&v, bucket, from);
  size_t cap = max > 0 ? max : 1;
  out->versions = arena_alloc(a, cap * sizeof *out->versions);
  out->prefixes = arena_alloc(a, cap * sizeof *out->prefixes);
  size_t count = 0;
  bool skipping_km = km != NULL && vm != NULL;  /* inside key_marker until vm passed */
  for (;;) {
    const uint8_t *K;
    size_t Kn;
    if (o.have && (!v.have || lkcmp(o.lk, o.lkn, v.lk, v.lkn) <= 0)) {
      K = o.lk;
      Kn = o.lkn;
    } else if (v.have) {
      K = v.lk;
      Kn = v.lkn;
    } else {
      break;
    }
    if (!starts(K, Kn, prefix, pl)) {
      if (lkcmp(K, Kn, (const uint8_t *)prefix, pl) > 0)
        break;
      if (o.have && o.lk == K)
        side_next(&o, bucket, bl);
      else
        side_next(&v, bucket, bl);
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
        while (o.have && starts(o.lk, o.lkn, cp, cpn))
          side_next(&o, bucket, bl);
        while (v.have && starts(v.lk, v.lkn, cp, cpn))
          side_next(&v, bucket, bl);
        continue;
      }
    }
    bool first = true;
    bool stop = false;
    for (int pass = 0; pass < 2 && !stop; pass++) {
      side *sd = pass == 0 ? &o : &v;
      while (sd->have && lkcmp(sd->lk, sd->lkn, K, Kn) == 0) {
        obj_rec r;
        MDB_val kk = sd->k;
        if ((pass == 0 ? store__obj_rec_decode(&kk, &sd->v, a, &r)
                       : vrec_decode(&kk, &sd->v, a, &r)) != 0) {
          rc = store__corrupt(e, "version");
          goto done;
        }
        bool latest = first;
        first = false;
        const char *id = is_null(&r) ? "null" : r.version_id;
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
          store__obj_out(a, bucket, &r, ob);
          ob->key = key;
          ob->version_id = id;
          ob->delete_marker = r.marker;
          ob->is_latest = latest;
          ob->lock_mode = r.lock_mode;
          ob->retain_until_ms = r.retain_until_ms;
          ob->legal_hold = r.legal_hold;
          ob->legal_hold_set = r.legal_hold_set;
          count++;
          out->next_key_marker = key;
          out->next_version_id_marker = id;
        }
        side_next(sd, bucket, bl);
      }
    }
    if (stop)
      break;
  }
  if (!out->truncated) {
    out->next_key_marker = NULL;
    out->next_version_id_marker = NULL;
  }
done:
  if (o.cur != NULL)
    mdb_cursor_close(o.cur);
  if (v.cur != NULL)
    mdb_cursor_close(v.cur);
  mdb_txn_abort(txn);
  return rc;
}
