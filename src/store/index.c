/* store/index.c -- the index: keys, records and their encoding, in LMDB.
 *
 * Why: listings (prefix, delimiter, continuation) must be ordered range
 * scans, and an overwrite must switch readers to the new bytes in one commit.
 *
 * Index keys are bucket "\0" logical (logical = the object key, or key "\0"
 * upload id). LMDB keys are at most 511 bytes, object keys up to 1,024, so a
 * key longer than IKEY_SHORT_MAX takes the long form: bucket "\0", the first
 * N = store__ikey_room(bucket) bytes of logical, SHA-256(logical).
 *
 * Invariants:
 *   (1) A short-form logical key has at most N bytes and a long-form one
 *       more than N. So a short key that starts with a long one's truncated
 *       prefix T is T itself, which sorts before every long key under T, and
 *       any other short key compares with a long key within T's bytes, as it
 *       would with the full key. Hence LMDB order is exact byte order except
 *       inside a run of long-form entries sharing T, which are contiguous:
 *       readers (list.c) collect such a run and sort it by full key.
 *   (2) A long-form record holds the whole logical key; a short-form record
 *       leaves it empty (the index key holds it). Lookups compare it.
 *   (3) Every record starts with a version byte (REC_VERSION; object
 *       records OBJ_REC_VERSION, (6)); a decoder refuses versions it does
 *       not know. Fields are varints or
 *       varint-length-prefixed bytes (codec.h), in a fixed order per
 *       record type.
 *   (4) The objects and bytes counters change in the same transaction as
 *       the records they count.
 *   (5) db_blobs holds exactly the blobs that object and part records
 *       reference (change_ref_blob / change_drop_blob keep it so); inline
 *       object records reference none.
 *   (6) Object records are version OBJ_REC_VERSION: after mtime a form
 *       byte, then either the blob id (FORM_BLOB) or the bytes themselves,
 *       length-prefixed, the length equal to the size (FORM_INLINE). The
 *       decoder still reads version 1 records (always a blob, no form byte).
 *   (7) Version 3 object records (OBJ_REC_VERSION) add, after the tags,
 *       the id of the multipart upload that completed the object ("" for
 *       none) and its part sizes (a count, then the varints as one
 *       length-prefixed field). Versions 1 and 2 decode as no upload, no
 *       parts. The upload id stays with the record until it is
 *       overwritten or deleted, so a repeated CompleteMultipartUpload
 *       finds it (multipart.c (4)).
 *   (8) Bucket records are version BUCKET_REC_VERSION: the creation time,
 *       the bucket's tags (pairs), then its configuration documents (pairs
 *       of a name such as "website" or "policy" and the document's text).
 *       Version 1 (no tags) and 2 (no documents) records still decode.
 *   (9) A version 3 object record may end with tagged sections; the only
 *       one is 'V' (versioning, version.c): the version id ("" for the null
 *       version), its sequence number, flags (bit 0: delete marker, bit 1:
 *       legal hold), the retention mode and retain-until time. Records
 *       without it (every record written before versioning existed, and
 *       every record of a bucket that never had versioning) decode as the
 *       null version with no lock, so old data directories open unchanged.
 *
 * Start reading at store__ikey_make().
 */
#include "index.h"

#include "codec.h"
#include "commit.h"
#include "crypt.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REC_VERSION 1
#define OBJ_REC_V2 2        /* object records with a form byte: invariant (6) */
#define OBJ_REC_VERSION 3   /* object records: invariants (6) and (7) */
#define BUCKET_REC_V2 2       /* bucket records with tags: invariant (8) */
#define BUCKET_REC_VERSION 3  /* bucket records: invariant (8) */
#define FORM_BLOB 0
#define FORM_INLINE 1

/* ---- index keys ---- */

size_t store__ikey_room(size_t bucket_len)
{
  return IKEY_SHORT_MAX - bucket_len - 1;
}

static size_t bucket_prefix(ikey *k, const char *bucket)
{
  size_t bl = strlen(bucket);
  if (bl > BUCKET_MAX)
    abort();  /* entry points reject these (check_bucket_arg) */
  memcpy(k->b, bucket, bl);
  k->b[bl] = '\0';
  return bl;
}

bool store__ikey_make(ikey *k, const char *bucket, const void *lk, size_t lkn)
{
  size_t bl = bucket_prefix(k, bucket);
  size_t room = store__ikey_room(bl);
  if (lkn <= room) {
    memcpy(k->b + bl + 1, lk, lkn);
    k->n = bl + 1 + lkn;
    return false;
  }
  memcpy(k->b + bl + 1, lk, room);
  if (EVP_Digest(lk, lkn, k->b + bl + 1 + room, NULL, EVP_sha256(), NULL) != 1)
    abort();
  k->n = bl + 1 + room + IKEY_HASH;
  return true;
}

void store__ikey_seek(ikey *k, const char *bucket, const void *lk, size_t lkn)
{
  size_t bl = bucket_prefix(k, bucket);
  size_t room = store__ikey_room(bl);
  if (lkn > room)
    lkn = room;
  memcpy(k->b + bl + 1, lk, lkn);
  k->n = bl + 1 + lkn;
}

bool store__ikey_is_long(const MDB_val *k)
{
  return k->mv_size > IKEY_SHORT_MAX;
}

MDB_val store__ikey_val(const ikey *k)
{
  MDB_val v = { k->n, (void *)k->b };
  return v;
}

/* ---- encoding ---- */

void store__obj_rec_encode(buf *b, const obj_rec *r, bool lng)
{
  store__put_u8(b, OBJ_REC_VERSION);
  store__put_bytes(b, r->lk, lng ? r->lkn : 0);
  store__put_var(b, r->size);
  store__put_var(b, (uint64_t)r->mtime_ms);
  store__put_u8(b, r->inlined ? FORM_INLINE : FORM_BLOB);
  if (r->inlined)
    store__put_bytes(b, r->data, (size_t)r->size);
  else
    store__put(b, r->blob.b, sizeof r->blob.b);
  store__put_str(b, r->etag);
  store__put_pairs(b, r->meta, r->nmeta);
  store__put_pairs(b, r->tags, r->ntags);
  store__put_str(b, r->upload_id);
  store__put_var(b, r->nparts);
  buf sizes;
  buf_init(&sizes, 10 * (size_t)STORE_MAX_PARTS);
  for (size_t i = 0; i < r->nparts; i++)
    store__put_var(&sizes, r->part_sizes[i]);
  store__put_bytes(b, sizes.data, sizes.len);
  buf_release(&sizes);
  if (r->vseq != 0 || r->marker || r->lock_mode != 0 || r->legal_hold || r->legal_hold_set ||
      (r->version_id != NULL && r->version_id[0] != '\0')) {
    store__put_u8(b, 'V');
    store__put_str(b, r->version_id);
    store__put_var(b, r->vseq);
    store__put_u8(b, (uint8_t)((r->marker ? 1 : 0) | (r->legal_hold ? 2 : 0) |
                               (r->legal_hold_set ? 4 : 0)));
    store__put_u8(b, r->lock_mode);
    store__put_var(b, (uint64_t)r->retain_until_ms);
  }
}

void store__obj_rec_reencode(buf *b, const obj_rec *r, arena *a, bool lng)
{
  obj_rec c = *r;
  c.part_sizes = store__obj_rec_parts(r, a);
  if (c.part_sizes == NULL)
    c.nparts = 0;
  store__obj_rec_encode(b, &c, lng);
}

void store__upload_rec_encode(buf *b, const upload_rec *r, bool lng)
{
  store__put_u8(b, REC_VERSION);
  store__put_bytes(b, r->lk, lng ? r->lkn : 0);
  store__put_var(b, (uint64_t)r->initiated_ms);
  store__put_pairs(b, r->meta, r->nmeta);
  store__put_pairs(b, r->tags, r->ntags);
}

void store__part_rec_encode(buf *b, const part_rec *r)
{
  store__put_u8(b, REC_VERSION);
  store__put_var(b, r->size);
  store__put_var(b, (uint64_t)r->mtime_ms);
  store__put(b, r->blob.b, sizeof r->blob.b);
  store__put(b, r->md5, sizeof r->md5);
  store__put_str(b, r->etag);
  store__put_u8(b, r->checksum != NULL);
  store__put_str(b, r->checksum);
}

void store__bucket_rec_encode(buf *b, const bucket_rec *r)
{
  store__put_u8(b, BUCKET_REC_VERSION);
  store__put_var(b, (uint64_t)r->created_ms);
  store__put_pairs(b, r->tags, r->ntags);
  store__put_pairs(b, r->conf, r->nconf);
}

/* ---- decoding ---- */

static bool version_ok(rec_dec *d)
{
  uint8_t v = store__get_u8(d);
  return !d->bad && v == REC_VERSION;
}

/* The logical key: the record's when present, else the index key's tail. */
static void lkey_of(const MDB_val *k, const uint8_t *p, size_t n, const uint8_t **lk,
                    size_t *lkn)
{
  if (n > 0) {
    *lk = p;
    *lkn = n;
    return;
  }
  const uint8_t *kb = k->mv_data;
  const uint8_t *nul = memchr(kb, '\0', k->mv_size);
  size_t off = nul != NULL ? (size_t)(nul - kb) + 1 : k->mv_size;
  *lk = kb + off;
  *lkn = k->mv_size - off;
}

int store__rec_lkey(const MDB_val *k, const MDB_val *v, const uint8_t **lk, size_t *lkn)
{
  rec_dec d = store__dec_of(v);
  uint8_t version = store__get_u8(&d);
  if (d.bad || (version != REC_VERSION && version != OBJ_REC_V2 && version != OBJ_REC_VERSION))
    return ERR_INTERNAL;  /* upload records are version 1, object records 1 to 3 */
  size_t n = 0;
  const uint8_t *p = store__get_bytes(&d, &n);
  if (d.bad)
    return ERR_INTERNAL;
  lkey_of(k, p, n, lk, lkn);
  return 0;
}

int store__obj_rec_decode(const MDB_val *k, const MDB_val *v, arena *a, obj_rec *r)
{
  memset(r, 0, sizeof *r);
  rec_dec d = store__dec_of(v);
  uint8_t version = store__get_u8(&d);
  if (d.bad || (version != REC_VERSION && version != OBJ_REC_V2 && version != OBJ_REC_VERSION))
    return ERR_INTERNAL;
  size_t n = 0;
  const uint8_t *p = store__get_bytes(&d, &n);
  lkey_of(k, p, n, &r->lk, &r->lkn);
  r->size = store__get_var(&d);
  r->mtime_ms = (int64_t)store__get_var(&d);
  uint8_t form = version == REC_VERSION ? FORM_BLOB : store__get_u8(&d);
  if (form == FORM_INLINE) {
    r->inlined = true;
    r->data = store__get_bytes(&d, &n);
    if (n != r->size)
      d.bad = true;
  } else if (form == FORM_BLOB) {
    store__get_fixed(&d, r->blob.b, sizeof r->blob.b);
  } else {
    d.bad = true;
  }
  if (a != NULL) {
    r->etag = store__get_str(&d, a);
    r->meta = store__get_pairs(&d, a, &r->nmeta);
    r->tags = store__get_pairs(&d, a, &r->ntags);
    r->upload_id = "";
    if (version == OBJ_REC_VERSION) {
      r->upload_id = store__get_str(&d, a);
      r->nparts = (size_t)store__get_var(&d);
      r->parts = store__get_bytes(&d, &r->parts_len);
      if (r->nparts > STORE_MAX_PARTS || r->nparts > r->parts_len)
        d.bad = true;
      if (!d.bad && d.p < d.end && store__get_u8(&d) == 'V') {  /* invariant (9) */
        r->version_id = store__get_str(&d, a);
        r->vseq = store__get_var(&d);
        uint8_t flags = store__get_u8(&d);
        r->marker = (flags & 1) != 0;
        r->legal_hold = (flags & 2) != 0;
        r->legal_hold_set = (flags & 6) != 0;   /* older records: only when on */
        r->lock_mode = store__get_u8(&d);
        r->retain_until_ms = (int64_t)store__get_var(&d);
      }
    }
  }
  return d.bad ? ERR_INTERNAL : 0;
}

uint64_t *store__obj_rec_parts(const obj_rec *r, arena *a)
{
  if (r->nparts == 0 || r->parts == NULL)
    return NULL;
  uint64_t *sizes = arena_alloc(a, r->nparts * sizeof *sizes);
  MDB_val v = { r->parts_len, (void *)r->parts };
  rec_dec d = store__dec_of(&v);
  for (size_t i = 0; i < r->nparts; i++)
    sizes[i] = store__get_var(&d);
  return d.bad ? NULL : sizes;
}

int store__upload_rec_decode(const MDB_val *k, const MDB_val *v, arena *a, upload_rec *r)
{
  memset(r, 0, sizeof *r);
  rec_dec d = store__dec_of(v);
  if (!version_ok(&d))
    return ERR_INTERNAL;
  size_t n = 0;
  const uint8_t *p = store__get_bytes(&d, &n);
  lkey_of(k, p, n, &r->lk, &r->lkn);
  r->initiated_ms = (int64_t)store__get_var(&d);
  r->meta = store__get_pairs(&d, a, &r->nmeta);
  r->tags = store__get_pairs(&d, a, &r->ntags);
  return d.bad ? ERR_INTERNAL : 0;
}

int store__part_rec_decode(const MDB_val *v, arena *a, part_rec *r)
{
  memset(r, 0, sizeof *r);
  rec_dec d = store__dec_of(v);
  if (!version_ok(&d))
    return ERR_INTERNAL;
  r->size = store__get_var(&d);
  r->mtime_ms = (int64_t)store__get_var(&d);
  store__get_fixed(&d, r->blob.b, sizeof r->blob.b);
  store__get_fixed(&d, r->md5, sizeof r->md5);
  if (a != NULL) {
    r->etag = store__get_str(&d, a);
    bool has = store__get_u8(&d) != 0;
    const char *checksum = store__get_str(&d, a);
    r->checksum = has ? checksum : NULL;
  }
  return d.bad ? ERR_INTERNAL : 0;
}

int store__bucket_rec_decode(const MDB_val *v, int64_t *created_ms)
{
  rec_dec d = store__dec_of(v);
  uint8_t version = store__get_u8(&d);
  if (d.bad || (version != REC_VERSION && version != BUCKET_REC_V2 &&
                 version != BUCKET_REC_VERSION))
    return ERR_INTERNAL;
  *created_ms = (int64_t)store__get_var(&d);
  return d.bad ? ERR_INTERNAL : 0;
}

int store__bucket_rec_parse(const MDB_val *v, arena *a, bucket_rec *r)
{
  memset(r, 0, sizeof *r);
  rec_dec d = store__dec_of(v);
  uint8_t version = store__get_u8(&d);
  if (d.bad || (version != REC_VERSION && version != BUCKET_REC_V2 &&
                 version != BUCKET_REC_VERSION))
    return ERR_INTERNAL;
  r->created_ms = (int64_t)store__get_var(&d);
  if (version >= BUCKET_REC_V2)
    r->tags = store__get_pairs(&d, a, &r->ntags);
  if (version >= BUCKET_REC_VERSION)
    r->conf = store__get_pairs(&d, a, &r->nconf);
  return d.bad ? ERR_INTERNAL : 0;
}

int store__corrupt(err *e, const char *what)
{
  return err_set(e, ERR_INTERNAL, "corrupt %s record in the index", what);
}

/* ---- lookups and updates ---- */

int store__index_get(MDB_txn *txn, MDB_dbi db, const char *bucket, const void *lk, size_t lkn,
              ikey *k, MDB_val *v)
{
  bool lng = store__ikey_make(k, bucket, lk, lkn);
  MDB_val kv = store__ikey_val(k);
  int mrc = mdb_get(txn, db, &kv, v);
  if (mrc != 0 || !lng)
    return mrc;
  const uint8_t *have = NULL;
  size_t haven = 0;
  if (store__rec_lkey(&kv, v, &have, &haven) != 0)
    return MDB_CORRUPTED;
  if (haven != lkn || memcmp(have, lk, lkn) != 0)
    return MDB_NOTFOUND;  /* a SHA-256 collision: not this key */
  return 0;
}

int store__bucket_read(store *s, MDB_txn *txn, const char *bucket, MDB_val *v, err *e)
{
  MDB_val k = { strlen(bucket), (void *)bucket };
  MDB_val unused;
  int mrc = mdb_get(txn, s->db_buckets, &k, v != NULL ? v : &unused);
  if (mrc == MDB_NOTFOUND)
    return err_set(e, ERR_NO_SUCH_BUCKET, "no bucket named '%s'", bucket);
  if (mrc != 0)
    return lmdb_error(e, mrc, "read a bucket record");
  return 0;
}

int store__bucket_check(store *s, MDB_txn *txn, const char *bucket, err *e)
{
  return store__bucket_read(s, txn, bucket, NULL, e);
}

int store__bucket_read_begin(store *s, const char *bucket, MDB_txn **txn, MDB_val *v, err *e)
{
  *txn = NULL;
  int rc = store__check_bucket_arg(bucket, e);
  if (rc == 0)
    rc = store__read_begin(s, txn, e);
  if (rc != 0)
    return rc;
  rc = store__bucket_read(s, *txn, bucket, v, e);
  if (rc != 0) {
    mdb_txn_abort(*txn);
    *txn = NULL;
  }
  return rc;
}

static int counter_get(store *s, MDB_txn *txn, const char *name, uint64_t *out)
{
  MDB_val k = { strlen(name), (void *)name };
  MDB_val v;
  *out = 0;
  int mrc = mdb_get(txn, s->db_counters, &k, &v);
  if (mrc == MDB_NOTFOUND)
    return 0;
  if (mrc != 0)
    return mrc;
  if (v.mv_size != 8)
    return MDB_CORRUPTED;
  const uint8_t *p = v.mv_data;
  for (int i = 7; i >= 0; i--)
    *out = *out << 8 | p[i];
  return 0;
}

static int counter_add(store *s, MDB_txn *txn, const char *name, int64_t delta)
{
  uint64_t cur = 0;
  int mrc = counter_get(s, txn, name, &cur);
  if (mrc != 0)
    return mrc;
  cur += (uint64_t)delta;
  uint8_t p[8];
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(cur >> (8 * i));
  MDB_val k = { strlen(name), (void *)name };
  MDB_val v = { sizeof p, p };
  return mdb_put(txn, s->db_counters, &k, &v, 0);
}

int store__counter_add(store *s, MDB_txn *txn, const char *name, int64_t delta, uint64_t *out,
                       err *e)
{
  int mrc = counter_add(s, txn, name, delta);
  if (mrc == 0 && out != NULL)
    mrc = counter_get(s, txn, name, out);
  return mrc ? lmdb_error(e, mrc, "update a counter") : 0;
}

int store__counters_add(store *s, MDB_txn *txn, int64_t objects, int64_t bytes, err *e)
{
  int mrc = counter_add(s, txn, "objects", objects);
  if (mrc == 0)
    mrc = counter_add(s, txn, "bytes", bytes);
  return mrc ? lmdb_error(e, mrc, "update the counters") : 0;
}

int store__counters_get(store *s, MDB_txn *txn, uint64_t *objects, uint64_t *bytes)
{
  int mrc = counter_get(s, txn, "objects", objects);
  if (mrc == 0)
    mrc = counter_get(s, txn, "bytes", bytes);
  return mrc;
}

void store__part_key(uint8_t out[36], const char *upload_id, uint32_t number)
{
  memcpy(out, upload_id, 32);
  out[32] = (uint8_t)(number >> 24);
  out[33] = (uint8_t)(number >> 16);
  out[34] = (uint8_t)(number >> 8);
  out[35] = (uint8_t)number;
}

bool store__etag_match(const char *given, const char *ours)
{
  if (given == NULL)
    return false;
  size_t n = strlen(given);
  if (n >= 2 && given[0] == '"' && given[n - 1] == '"') {
    given++;
    n -= 2;
  }
  return strlen(ours) == n && strncasecmp(given, ours, n) == 0;
}

int store__expect_judge(const store_expect *x, const obj_rec *r, err *e)
{
  if (x == NULL || (!x->absent && x->etag == NULL))
    return 0;
  if (r == NULL) {
    if (x->etag != NULL)
      return err_set(e, ERR_NO_SUCH_KEY, "the object does not exist (If-Match '%.80s')", x->etag);
    return 0;
  }
  if (x->absent)
    return err_set(e, ERR_PRECONDITION, "At least one of the pre-conditions you specified did not "
                   "hold: the object exists and If-None-Match is '*'");
  if (!store__etag_match(x->etag, r->etag))
    return err_set(e, ERR_PRECONDITION, "At least one of the pre-conditions you specified did not "
                   "hold: the object's ETag is not '%.80s'", x->etag);
  return 0;
}

int store__expect_check(store *s, MDB_txn *txn, const ikey *k, const store_expect *x, arena *a,
                        err *e)
{
  if (x == NULL || (!x->absent && x->etag == NULL))
    return 0;
  MDB_val kv = store__ikey_val(k);
  MDB_val v;
  int mrc = mdb_get(txn, s->db_objects, &kv, &v);
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    return lmdb_error(e, mrc, "read an object record");
  if (mrc == MDB_NOTFOUND)
    return store__expect_judge(x, NULL, e);
  obj_rec r;
  if (store__obj_rec_decode(&kv, &v, a, &r) != 0)
    return store__corrupt(e, "object");
  return store__expect_judge(x, &r, e);
}

int store__obj_replace(change *c, MDB_txn *txn, const char *bucket, const ikey *k, MDB_val val,
                       uint64_t size, const blob_id *blob, char *vid, err *e)
{
  store *s = c->s;
  vid[0] = '\0';
  int state = 0;
  int rc = store__versioning_in(s, txn, bucket, &state, e);
  if (rc != 0)
    return rc;
  if (state != STORE_VERSIONING_OFF)
    return store__version_replace(c, txn, bucket, k, val, size, blob, state, vid, e);
  MDB_val kv = store__ikey_val(k);
  MDB_val old;
  int mrc = mdb_get(txn, s->db_objects, &kv, &old);
  if (mrc == 0) {
    obj_rec r;
    if (store__obj_rec_decode(&kv, &old, NULL, &r) != 0)
      return store__corrupt(e, "object");
    rc = r.inlined ? 0 : store__change_drop_blob(c, txn, &r.blob, e);
    if (rc == 0)
      rc = store__counters_add(s, txn, -1, -(int64_t)r.size, e);
    if (rc != 0)
      return rc;
  } else if (mrc != MDB_NOTFOUND) {
    return lmdb_error(e, mrc, "read an object record");
  }
  mrc = mdb_put(txn, s->db_objects, &kv, &val, 0);
  if (mrc != 0)
    return lmdb_error(e, mrc, "write an object record");
  rc = blob != NULL ? store__change_ref_blob(c, txn, blob, 'o', e) : 0;
  if (rc == 0)
    rc = store__counters_add(s, txn, 1, (int64_t)size, e);
  return rc;
}

int store__parts_delete_all(change *c, MDB_txn *txn, const char *upload_id, err *e)
{
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, c->s->db_parts, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  int rc = 0;
  for (;;) {
    uint8_t kb[36];
    store__part_key(kb, upload_id, 0);
    MDB_val k = { sizeof kb, kb };
    MDB_val v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND || (mrc == 0 && (k.mv_size != 36 || memcmp(k.mv_data, upload_id, 32))))
      break;
    if (mrc != 0) {
      rc = lmdb_error(e, mrc, "read a part record");
      break;
    }
    part_rec r;
    if (store__part_rec_decode(&v, NULL, &r) != 0) {
      rc = store__corrupt(e, "part");
      break;
    }
    rc = store__change_drop_blob(c, txn, &r.blob, e);
    if (rc != 0)
      break;
    mrc = mdb_cursor_del(cur, 0);
    if (mrc != 0) {
      rc = lmdb_error(e, mrc, "delete a part record");
      break;
    }
  }
  mdb_cursor_close(cur);
  return rc;
}

/* Moves the sealed data key out of the metadata (crypt.c (4)); the
 * record's array is left as it was. */
static void sse_out(arena *a, str_pair **meta, size_t *nmeta, int *sse, const char **sealed)
{
  *sse = STORE_SSE_NONE;
  *sealed = NULL;
  if (store__crypt_find(*meta, *nmeta) == NULL)
    return;
  str_pair *m = arena_memdup(a, *meta, *nmeta * sizeof *m);
  *sealed = store__crypt_take(m, nmeta);
  *meta = m;
  *sse = store__crypt_mode(*sealed);
}

void store__obj_out(arena *a, const char *bucket, const obj_rec *r, store_object *out)
{
  out->bucket = arena_strdup(a, bucket);
  out->key = arena_strndup(a, (const char *)r->lk, r->lkn);
  out->size = r->size;
  out->mtime_ms = r->mtime_ms;
  out->etag = r->etag;
  out->meta = r->meta;
  out->nmeta = r->nmeta;
  out->tags = r->tags;
  out->ntags = r->ntags;
  out->data = NULL;
  out->upload_id = r->upload_id != NULL ? r->upload_id : "";
  out->nparts = r->nparts;
  out->part_sizes = NULL;
  sse_out(a, &out->meta, &out->nmeta, &out->sse, &out->sse_sealed);
  out->crypt = NULL;
  out->remote = NULL;
  out->remote_name = NULL;
  out->version_id = r->version_id != NULL && r->version_id[0] != '\0'
                        ? r->version_id
                        : r->vseq != 0 ? "null" : NULL;
  out->delete_marker = r->marker;
  out->is_latest = false;
  out->lock_mode = r->lock_mode;
  out->retain_until_ms = r->retain_until_ms;
  out->legal_hold = r->legal_hold;
  out->legal_hold_set = r->legal_hold_set;
}

void store__upload_out(arena *a, const char *bucket, const upload_rec *r, store_upload *out)
{
  const uint8_t *nul = memchr(r->lk, '\0', r->lkn);
  size_t kn = nul != NULL ? (size_t)(nul - r->lk) : r->lkn;
  out->bucket = arena_strdup(a, bucket);
  out->key = arena_strndup(a, (const char *)r->lk, kn);
  out->upload_id = kn < r->lkn ? arena_strndup(a, (const char *)r->lk + kn + 1, r->lkn - kn - 1)
                               : arena_strdup(a, "");
  out->initiated_ms = r->initiated_ms;
  out->meta = r->meta;
  out->nmeta = r->nmeta;
  out->tags = r->tags;
  out->ntags = r->ntags;
  sse_out(a, &out->meta, &out->nmeta, &out->sse, &out->sse_sealed);
}
