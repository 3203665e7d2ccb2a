/* store/multipart.c -- multipart uploads: create, parts, complete, abort.
 *
 * Why: large objects arrive in parts, possibly in parallel and out of order;
 * the object must appear whole, in one commit, or not at all.
 *
 * Invariants:
 *   (1) A part is a blob of its own, referenced by a part record keyed by
 *       (upload id, number); a new upload of a number replaces the record
 *       and drops the old blob.
 *   (2) Complete validates against a read snapshot, builds the object's blob
 *       outside the committer (copy_file_range), then commits one change
 *       that re-checks the named parts are still the same blobs, writes the
 *       object and deletes the upload and all its parts (their blobs are
 *       unlinked after the commit).
 *   (3) Upload ids are 32 lower-case hex characters (random).
 *   (4) The object a complete makes records the upload id and the part
 *       sizes (index.c (7)). A complete that finds no upload but an
 *       object at the key made by that upload answers that object: the
 *       client retried after losing our answer. The record is the memory,
 *       so it lasts exactly as long as the object (an overwrite or delete
 *       forgets it) and costs no extra table or expiry.
 *   (5) Deleting a bucket aborts its uploads in the same commit
 *       (store__uploads_drop_all): their part blobs are dropped like an
 *       abort's.
 *
 * Start reading at store_upload_complete().
 */
#include "store.h"

#include "blob.h"
#include "commit.h"
#include "crypt.h"
#include "index.h"
#include "pg_index.h"
#include "remote.h"

#include "base/hash.h"
#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define UPLOAD_LK_MAX (STORE_MAX_KEY + 1 + 32)
#define RACE_RETRIES 100

static bool upload_id_ok(const char *id)
{
  if (id == NULL || strlen(id) != 32)
    return false;
  for (size_t i = 0; i < 32; i++)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
      return false;
  return true;
}

/* key "\0" upload id: the logical key of an upload (index.h). */
static size_t upload_lkey(uint8_t out[UPLOAD_LK_MAX], const char *key, const char *id)
{
  size_t kn = strlen(key);
  memcpy(out, key, kn);
  out[kn] = '\0';
  memcpy(out + kn + 1, id, 32);
  return kn + 1 + 32;
}

static int no_upload(err *e, const char *bucket, const char *key, const char *id)
{
  return err_set(e, ERR_NO_SUCH_UPLOAD, "no upload '%s' of key '%s' in bucket '%s'", id, key,
                 bucket);
}

static int check_upload_args(const char *bucket, const char *key, const char *id, err *e)
{
  int rc = store__check_bucket_arg(bucket, e);
  if (rc == 0)
    rc = store__check_key(key, e);
  if (rc == 0 && !upload_id_ok(id))
    rc = no_upload(e, bucket, key, id ? id : "");
  return rc;
}

/* In a change: 0 when the upload exists, else ERR_NO_SUCH_BUCKET or
 * ERR_NO_SUCH_UPLOAD. k gets its index key. */
static int upload_find(store *s, MDB_txn *txn, const char *bucket, const char *key,
                       const char *id, ikey *k, MDB_val *v, err *e)
{
  int rc = store__bucket_check(s, txn, bucket, e);
  if (rc != 0)
    return rc;
  uint8_t lk[UPLOAD_LK_MAX];
  size_t lkn = upload_lkey(lk, key, id);
  int mrc = store__index_get(txn, s->db_uploads, bucket, lk, lkn, k, v);
  if (mrc == MDB_NOTFOUND)
    return no_upload(e, bucket, key, id);
  return mrc ? lmdb_error(e, mrc, "read an upload record") : 0;
}

/* The upload's record from the PostgreSQL index (pg_index.c) into v (in
 * a), k its index key (to decode it with). */
static int upload_read_pg(store *s, const char *bucket, const char *key, const char *id,
                          arena *a, ikey *k, MDB_val *v, err *e)
{
  uint8_t lk[UPLOAD_LK_MAX];
  size_t lkn = upload_lkey(lk, key, id);
  store__ikey_make(k, bucket, lk, lkn);
  return store__pg_upload_read(s, bucket, key, id, a, v, e);
}

/* ---- create and get ---- */

typedef struct create_arg {
  const char *bucket;
  ikey k;              /* the upload's index key */
  MDB_val val;         /* its record */
} create_arg;

static int apply_create(change *c, MDB_txn *txn, arena *a, err *e)
{
  create_arg *u = c->arg;
  int rc = store__bucket_check(c->s, txn, u->bucket, e);
  if (rc != 0)
    return rc;
  MDB_val kv = store__ikey_val(&u->k);
  int mrc = mdb_put(txn, c->s->db_uploads, &kv, &u->val, MDB_NOOVERWRITE);
  return mrc ? lmdb_error(e, mrc, "write an upload record") : 0;
}

int store_upload_create(store *s, const char *bucket, const char *key,
                        const str_pair *meta, size_t nmeta,
                        const str_pair *tags, size_t ntags,
                        arena *a, const char **upload_id, err *e)
{
  *upload_id = NULL;
  int rc = store__check_bucket_arg(bucket, e);
  if (rc == 0)
    rc = store__check_key(key, e);
  if (rc == 0)
    rc = store__check_meta(meta, nmeta, e);
  if (rc == 0)
    rc = store__check_tags(tags, ntags, e);
  if (rc != 0)
    return rc;
  blob_id rnd;
  random_bytes(rnd.b, sizeof rnd.b);
  char id[33];
  hex_encode(rnd.b, sizeof rnd.b, id);
  uint8_t lk[UPLOAD_LK_MAX];
  upload_rec r = {
    .lk = lk, .lkn = upload_lkey(lk, key, id), .initiated_ms = store__clock_ms(),
    .meta = (str_pair *)meta, .nmeta = nmeta, .tags = (str_pair *)tags, .ntags = ntags,
  };
  create_arg u = { .bucket = bucket };
  bool lng = store__ikey_make(&u.k, bucket, r.lk, r.lkn);
  buf b;
  buf_init(&b, 1 << 20);
  store__upload_rec_encode(&b, &r, lng);
  u.val.mv_size = b.len;
  u.val.mv_data = b.data;
  if (s->pg != NULL) {
    rc = store__pg_upload_create(s, bucket, key, id, &u.val, e);
  } else {
    change c;
    store__change_init(&c, s, apply_create, &u, NULL);
    rc = store__commit_run(s, &c, e);
  }
  buf_release(&b);
  if (rc == 0)
    *upload_id = arena_strdup(a, id);
  return rc;
}

int store_upload_get(store *s, const char *bucket, const char *key, const char *upload_id,
                     arena *a, store_upload *out, err *e)
{
  int rc = check_upload_args(bucket, key, upload_id, e);
  if (rc != 0)
    return rc;
  MDB_txn *txn = NULL;
  ikey k;
  MDB_val v;
  if (s->pg != NULL) {
    rc = upload_read_pg(s, bucket, key, upload_id, a, &k, &v, e);
  } else {
    rc = store__read_begin(s, &txn, e);
    if (rc != 0)
      return rc;
    rc = upload_find(s, txn, bucket, key, upload_id, &k, &v, e);
  }
  if (rc == 0) {
    MDB_val kv = store__ikey_val(&k);
    upload_rec r;
    if (store__upload_rec_decode(&kv, &v, a, &r) != 0)
      rc = store__corrupt(e, "upload");
    else
      store__upload_out(a, bucket, &r, out);
  }
  mdb_txn_abort(txn);
  return rc;
}

/* ---- parts ---- */

typedef struct part_arg {
  const char *bucket;
  const char *key;
  const char *upload_id;
  uint8_t pk[36];      /* the part's key */
  MDB_val val;         /* its record */
  blob_id blob;        /* its bytes */
} part_arg;

static int apply_part(change *c, MDB_txn *txn, arena *a, err *e)
{
  part_arg *p = c->arg;
  store *s = c->s;
  ikey k;
  MDB_val v;
  int rc = upload_find(s, txn, p->bucket, p->key, p->upload_id, &k, &v, e);
  if (rc != 0)
    return rc;
  MDB_val pk = { sizeof p->pk, p->pk };
  MDB_val old;
  int mrc = mdb_get(txn, s->db_parts, &pk, &old);
  if (mrc == 0) {
    part_rec r;
    if (store__part_rec_decode(&old, NULL, &r) != 0)
      return store__corrupt(e, "part");
    rc = store__change_drop_blob(c, txn, &r.blob, e);
    if (rc != 0)
      return rc;
  } else if (mrc != MDB_NOTFOUND) {
    return lmdb_error(e, mrc, "read a part record");
  }
  mrc = mdb_put(txn, s->db_parts, &pk, &p->val, 0);
  if (mrc != 0)
    return lmdb_error(e, mrc, "write a part record");
  return store__change_ref_blob(c, txn, &p->blob, 'p', e);
}

int store_part_commit(store_writer *w, const char *bucket, const char *key,
                      const char *upload_id, int number, const char *etag,
                      const char *checksum, arena *a, store_part *out, err *e)
{
  if (w == NULL || w->consumed)
    return err_set(e, ERR_INVALID, "writer already committed");
  int rc = check_upload_args(bucket, key, upload_id, e);
  if (rc == 0 && (number < 1 || number > STORE_MAX_PARTS))
    rc = err_set(e, ERR_INVALID, "part number %d is not in 1..%d", number, STORE_MAX_PARTS);
  if (rc == 0 && w->size > STORE_MAX_PART_SIZE)
    rc = err_set(e, ERR_ENTITY_TOO_LARGE, "part of %llu bytes is larger than the maximum",
                 (unsigned long long)w->size);
  if (rc != 0) {
    w->consumed = true;
    return rc;
  }
  w->staged = w->s->pg != NULL && w->s->remote != NULL;  /* blob.c (7) */
  rc = store__writer_finish(w, true, e);  /* parts always have a blob */
  if (rc == 0 && w->staged)  /* any node may complete the upload: remote.c (1) */
    rc = store__remote_stage(w->s, &w->id, &w->tail, e);
  if (rc != 0)
    return rc;
  part_rec r = {
    .size = w->size, .mtime_ms = store__clock_ms(), .blob = w->id, .checksum = checksum,
  };
  store_writer_etag_md5(w, r.md5);  /* SSE-C: not the data's MD5 (crypt.c) */
  char md5hex[33];
  hex_encode(r.md5, sizeof r.md5, md5hex);
  r.etag = etag != NULL ? etag : md5hex;
  part_arg p = { .bucket = bucket, .key = key, .upload_id = upload_id, .blob = w->id };
  store__part_key(p.pk, upload_id, (uint32_t)number);
  buf b;
  buf_init(&b, 1 << 20);
  store__part_rec_encode(&b, &r);
  p.val.mv_size = b.len;
  p.val.mv_data = b.data;
  if (w->s->pg != NULL) {
    rc = store__pg_part_put(w->s, bucket, key, upload_id, number, &p.val, e);
  } else {
    change c;
    store__change_init(&c, w->s, apply_part, &p, &w->id);
    rc = store__commit_run(w->s, &c, e);
  }
  buf_release(&b);
  if (rc != 0)
    return rc;
  w->committed = true;
  if (out != NULL) {
    out->number = number;
    out->size = r.size;
    out->mtime_ms = r.mtime_ms;
    out->etag = arena_strdup(a, r.etag);
    out->checksum = checksum != NULL ? arena_strdup(a, checksum) : NULL;
  }
  return 0;
}

static int part_list_pg(store *s, const char *bucket, const char *key, const char *upload_id,
                        int after, size_t max, arena *a, store_part **out, size_t *n,
                        bool *truncated, err *e)
{
  ikey k;
  MDB_val v;
  int rc = upload_read_pg(s, bucket, key, upload_id, a, &k, &v, e);
  int *numbers = NULL;
  MDB_val *recs = NULL;
  size_t count = 0;
  if (rc == 0)
    rc = store__pg_parts_read(s, upload_id, after, max + 1, a, &numbers, &recs, &count, e);
  if (rc != 0)
    return rc;
  *truncated = count > max;
  if (count > max)
    count = max;
  store_part *list = arena_alloc(a, (count + 1) * sizeof *list);
  for (size_t i = 0; i < count; i++) {
    part_rec r;
    if (store__part_rec_decode(&recs[i], a, &r) != 0) {
      *truncated = false;
      return store__corrupt(e, "part");
    }
    list[i] = (store_part){ numbers[i], r.size, r.mtime_ms, r.etag, r.checksum };
  }
  *out = list;
  *n = count;
  return 0;
}

int store_part_list(store *s, const char *bucket, const char *key, const char *upload_id,
                    int after, size_t max, arena *a, store_part **out, size_t *n,
                    bool *truncated, err *e)
{
  *out = NULL;
  *n = 0;
  *truncated = false;
  int rc = check_upload_args(bucket, key, upload_id, e);
  if (rc != 0)
    return rc;
  if (max > STORE_MAX_PARTS)
    max = STORE_MAX_PARTS;
  if (after < 0)
    after = 0;
  if (s->pg != NULL)
    return part_list_pg(s, bucket, key, upload_id, after, max, a, out, n, truncated, e);
  MDB_txn *txn = NULL;
  rc = store__read_begin(s, &txn, e);
  if (rc != 0)
    return rc;
  ikey k;
  MDB_val v;
  rc = upload_find(s, txn, bucket, key, upload_id, &k, &v, e);
  MDB_cursor *cur = NULL;
  if (rc == 0) {
    int mrc = mdb_cursor_open(txn, s->db_parts, &cur);
    if (mrc != 0)
      rc = lmdb_error(e, mrc, "open a cursor");
  }
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc;
  }
  store_part *list = arena_alloc(a, (max + 1) * sizeof *list);
  size_t count = 0;
  uint8_t kb[36];
  store__part_key(kb, upload_id, (uint32_t)after + 1);
  MDB_val pk = { sizeof kb, kb };
  int mrc = mdb_cursor_get(cur, &pk, &v, MDB_SET_RANGE);
  for (; mrc == 0; mrc = mdb_cursor_get(cur, &pk, &v, MDB_NEXT)) {
    if (pk.mv_size != 36 || memcmp(pk.mv_data, upload_id, 32) != 0)
      break;
    if (count == max) {
      *truncated = true;
      break;
    }
    part_rec r;
    if (store__part_rec_decode(&v, a, &r) != 0) {
      rc = store__corrupt(e, "part");
      break;
    }
    const uint8_t *nb = (const uint8_t *)pk.mv_data + 32;
    store_part *p = &list[count++];
    p->number = (int)((uint32_t)nb[0] << 24 | (uint32_t)nb[1] << 16 | (uint32_t)nb[2] << 8 | nb[3]);
    p->size = r.size;
    p->mtime_ms = r.mtime_ms;
    p->etag = r.etag;
    p->checksum = r.checksum;
  }
  if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
    rc = lmdb_error(e, mrc, "read the parts");
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (rc == 0) {
    *out = list;
    *n = count;
  } else {
    *truncated = false;
  }
  return rc;
}

/* ---- complete ---- */

typedef struct complete_arg {
  const char *bucket;
  const char *key;
  const char *upload_id;
  const store_part_ref *parts;  /* as named by the client */
  const blob_id *blobs;         /* the blob each named part had when validated */
  size_t nparts;
  ikey k;                       /* the object's index key */
  MDB_val val;                  /* its record */
  uint64_t size;
  blob_id blob;                 /* the joined bytes */
  feed_note note;               /* the change, for the feed */
  const store_expect *expect;   /* the precondition, or NULL */
  char vid[STORE_VID_MAX];      /* out: the version made ("" unversioned) */
} complete_arg;

static int apply_complete(change *c, MDB_txn *txn, arena *a, err *e)
{
  complete_arg *x = c->arg;
  store *s = c->s;
  ikey uk;
  MDB_val uv;
  int rc = upload_find(s, txn, x->bucket, x->key, x->upload_id, &uk, &uv, e);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < x->nparts; i++) {
    uint8_t kb[36];
    store__part_key(kb, x->upload_id, (uint32_t)x->parts[i].number);
    MDB_val pk = { sizeof kb, kb };
    MDB_val pv;
    part_rec r;
    int mrc = mdb_get(txn, s->db_parts, &pk, &pv);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
      return lmdb_error(e, mrc, "read a part record");
    if (mrc == MDB_NOTFOUND || store__part_rec_decode(&pv, NULL, &r) != 0 ||
        memcmp(&r.blob, &x->blobs[i], sizeof r.blob) != 0)
      return err_set(e, ERR_INVALID_PART, "part %d of upload '%s' changed while completing",
                     x->parts[i].number, x->upload_id);
  }
  rc = store__expect_check(s, txn, &x->k, x->expect, a, e);
  if (rc == 0)
    rc = store__obj_replace(c, txn, x->bucket, &x->k, x->val, x->size, &x->blob, x->vid, e);
  x->note.version_id = x->vid;
  if (rc == 0)
    rc = store__parts_delete_all(c, txn, x->upload_id, e);
  if (rc != 0)
    return rc;
  MDB_val ukv = store__ikey_val(&uk);
  int mrc = mdb_del(txn, s->db_uploads, &ukv, NULL);
  if (mrc != 0)
    return lmdb_error(e, mrc, "delete an upload record");
  return store__feed_append(c, txn, &x->note, e);
}

/* Appends len bytes of in to out (copy_file_range, else read/write). */
static int copy_bytes(int in, int out, uint64_t len, err *e)
{
  bool plain = false;
  char *bounce = NULL;
  int rc = 0;
  while (len > 0 && rc == 0) {
    size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
    ssize_t r;
    if (!plain) {
      r = copy_file_range(in, NULL, out, NULL, chunk, 0);
      if (r < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                    errno == EOPNOTSUPP || errno == EBADF)) {
        plain = true;
        continue;
      }
    } else {
      if (bounce == NULL)
        bounce = xmalloc(1 << 20);
      r = read(in, bounce, chunk < (1u << 20) ? chunk : (1u << 20));
      for (ssize_t done = 0; r > 0 && done < r;) {
        ssize_t w = write(out, bounce + done, (size_t)(r - done));
        if (w < 0 && errno == EINTR)
          continue;
        if (w < 0) {
          r = -1;
          break;
        }
        done += w;
      }
    }
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int saved = errno;
      rc = err_set(e, err_from_errno(saved), "cannot join parts: %s", strerror(saved));
    } else if (r == 0) {
      rc = err_set(e, ERR_IO, "cannot join parts: a part's blob is shorter than its record");
    } else {
      len -= (uint64_t)r;
    }
  }
  free(bounce);
  return rc;
}

/* Appends len bytes of the backend's blob id to out. */
static int copy_remote(store *s, const blob_id *id, int out, uint64_t len, err *e)
{
  arena *a = arena_new();
  remote_rd *rd = store__remote_rd_new(s->remote, store__remote_name(s->remote, id, a));
  enum { CHUNK = 1 << 20 };
  uint8_t *chunk = xmalloc(CHUNK);
  int rc = 0;
  for (uint64_t off = 0; rc == 0 && off < len;) {
    size_t got = 0;
    size_t want = len - off < CHUNK ? (size_t)(len - off) : CHUNK;
    rc = store__remote_rd_read(rd, off, chunk, want, &got, e);
    if (rc == 0 && got == 0)
      rc = err_set(e, ERR_IO, "cannot join parts: a part's blob is shorter than its record");
    for (size_t done = 0; rc == 0 && done < got;) {
      ssize_t w = write(out, chunk + done, got - done);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        rc = err_set(e, err_from_errno(errno), "cannot join parts: %s", strerror(errno));
      else
        done += (size_t)w;
    }
    off += got;
  }
  free(chunk);
  store__remote_rd_free(rd);
  arena_free(a);
  return rc;
}

/* What complete learns from the read snapshot. */
typedef struct plan {
  upload_rec up;       /* the upload (meta and tags in the arena) */
  blob_id *blobs;      /* per named part (heap) */
  uint64_t *sizes;     /* per named part (heap) */
  uint8_t *md5s;       /* 16 bytes per named part (heap) */
  uint64_t total;      /* sum of sizes */
  bool encrypted;      /* the upload is: each part's blob is a segment (crypt.c) */
} plan;

/* The record of part `number` of upload id into pv: 0, MDB_NOTFOUND or an
 * LMDB code (txn), or from the parts read from PostgreSQL (numbers, recs). */
static int part_get(store *s, MDB_txn *txn, const char *id, int number, const int *numbers,
                    const MDB_val *recs, size_t nrecs, MDB_val *pv)
{
  if (txn == NULL) {
    for (size_t i = 0; i < nrecs; i++)
      if (numbers[i] == number) {
        *pv = recs[i];
        return 0;
      }
    return MDB_NOTFOUND;
  }
  uint8_t kb[36];
  store__part_key(kb, id, (uint32_t)number);
  MDB_val pk = { sizeof kb, kb };
  return mdb_get(txn, s->db_parts, &pk, pv);
}

static int validate(store *s, const char *bucket, const char *key, const char *id,
                    const store_part_ref *parts, size_t nparts, arena *a, plan *pl, err *e)
{
  MDB_txn *txn = NULL;
  ikey k;
  MDB_val v;
  int *numbers = NULL;
  MDB_val *recs = NULL;
  size_t nrecs = 0;
  int rc;
  if (s->pg != NULL) {
    rc = upload_read_pg(s, bucket, key, id, a, &k, &v, e);
    if (rc == 0)
      rc = store__pg_parts_read(s, id, 0, STORE_MAX_PARTS, a, &numbers, &recs, &nrecs, e);
  } else {
    rc = store__read_begin(s, &txn, e);
    if (rc != 0)
      return rc;
    rc = upload_find(s, txn, bucket, key, id, &k, &v, e);
  }
  if (rc == 0) {
    MDB_val kv = store__ikey_val(&k);
    if (store__upload_rec_decode(&kv, &v, a, &pl->up) != 0)
      rc = store__corrupt(e, "upload");
  }
  pl->total = 0;
  pl->encrypted = rc == 0 && store__crypt_find(pl->up.meta, pl->up.nmeta) != NULL;
  for (size_t i = 0; rc == 0 && i < nparts; i++) {
    MDB_val pv;
    int mrc = part_get(s, txn, id, parts[i].number, numbers, recs, nrecs, &pv);
    part_rec r;
    if (mrc == MDB_NOTFOUND) {
      rc = err_set(e, ERR_INVALID_PART, "part %d of upload '%s' was not uploaded",
                   parts[i].number, id);
    } else if (mrc != 0) {
      rc = lmdb_error(e, mrc, "read a part record");
    } else if (store__part_rec_decode(&pv, a, &r) != 0) {
      rc = store__corrupt(e, "part");
    } else if (!store__etag_match(parts[i].etag, r.etag)) {
      rc = err_set(e, ERR_INVALID_PART, "part %d of upload '%s' has etag '%s', not '%s'",
                   parts[i].number, id, r.etag, parts[i].etag ? parts[i].etag : "");
    } else {
      pl->blobs[i] = r.blob;
      pl->sizes[i] = r.size;
      memcpy(pl->md5s + 16 * i, r.md5, 16);
      pl->total += r.size;
    }
  }
  for (size_t i = 0; rc == 0 && i + 1 < nparts; i++)
    if (pl->sizes[i] < STORE_MIN_PART_SIZE)
      rc = err_set(e, ERR_ENTITY_TOO_SMALL,
                   "part %d of %llu bytes is smaller than the minimum of %u bytes",
                   parts[i].number, (unsigned long long)pl->sizes[i], STORE_MIN_PART_SIZE);
  if (rc == 0 && pl->total > STORE_MAX_OBJECT_SIZE)
    rc = err_set(e, ERR_ENTITY_TOO_LARGE, "the object would be larger than the maximum");
  mdb_txn_abort(txn);
  return rc;
}

/* Writes the named parts' bytes into the new blob id (fsync'd). 1 when a
 * part's blob vanished (raced with a replace or abort: validate again);
 * *missing remembers it, so that the same blob missing twice is an error. */
static int join(store *s, const blob_id *id, const plan *pl, size_t nparts, blob_id *missing,
                bool *missed, err *e)
{
  char path[BLOB_PATH_MAX];
  store__blob_path(s, id, path);
  int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    int saved = errno;
    return err_set(e, err_from_errno(saved), "cannot create blob '%s': %s", path,
                   strerror(saved));
  }
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < nparts; i++) {
    char from[BLOB_PATH_MAX];
    store__blob_path(s, &pl->blobs[i], from);
    int in = open(from, O_RDONLY | O_CLOEXEC);
    uint64_t len = pl->encrypted ? store__crypt_stored_size(pl->sizes[i]) : pl->sizes[i];
    if (in < 0 && errno == ENOENT && s->pg != NULL && s->remote != NULL) {
      rc = copy_remote(s, &pl->blobs[i], out, len, e);  /* a part staged: remote.c (1) */
      continue;
    }
    if (in < 0) {
      int saved = errno;
      if (saved != ENOENT || (*missed && memcmp(missing, &pl->blobs[i], sizeof *missing) == 0))
        rc = err_set(e, err_from_errno(saved), "cannot open blob '%s': %s", from,
                     strerror(saved));
      else
        rc = 1;
      *missing = pl->blobs[i];
      *missed = true;
      break;
    }
    rc = copy_bytes(in, out, len, e);
    close(in);
  }
  if (rc == 0 && s->remote == NULL && fsync(out) != 0) {  /* else remote.c (1) */
    int saved = errno;
    rc = err_set(e, err_from_errno(saved), "cannot sync blob '%s': %s", path, strerror(saved));
  }
  close(out);
  if (rc != 0)
    unlink(path);
  return rc;
}

/* 0 when bucket/key is the object upload id completed (invariant (4));
 * out (optional) gets it. */
static int completed_by(store *s, const char *bucket, const char *key, const char *id,
                        arena *a, store_object *out)
{
  err ignored;
  err_clear(&ignored);
  store_object o;
  if (store_object_get(s, bucket, key, a, &o, NULL, &ignored) != 0)
    return ERR_NO_SUCH_UPLOAD;
  if (o.upload_id == NULL || strcmp(o.upload_id, id) != 0)
    return ERR_NO_SUCH_UPLOAD;
  if (out != NULL)
    *out = o;
  return 0;
}

int store_upload_complete(store *s, const char *bucket, const char *key, const char *upload_id,
                          const store_part_ref *parts, size_t nparts,
                          const str_pair *extra_meta, size_t nextra,
                          arena *a, store_object *out, err *e)
{
  return store_upload_complete_if(s, bucket, key, upload_id, parts, nparts, extra_meta, nextra,
                                  NULL, a, out, e);
}

int store_upload_complete_if(store *s, const char *bucket, const char *key,
                             const char *upload_id, const store_part_ref *parts, size_t nparts,
                             const str_pair *extra_meta, size_t nextra, const store_expect *xp,
                             arena *a, store_object *out, err *e)
{
  int rc = check_upload_args(bucket, key, upload_id, e);
  if (rc != 0)
    return rc;
  if (nparts == 0)
    return err_set(e, ERR_MALFORMED_XML, "you must specify at least one part");
  if (nparts > STORE_MAX_PARTS)
    return err_set(e, ERR_INVALID_PART, "%zu parts are more than the maximum of %d", nparts,
                   STORE_MAX_PARTS);
  for (size_t i = 0; i < nparts; i++) {
    if (i > 0 && parts[i].number <= parts[i - 1].number)
      return err_set(e, ERR_INVALID_PART_ORDER, "part %d follows part %d: parts must be in "
                     "ascending order", parts[i].number, parts[i - 1].number);
    if (parts[i].number < 1 || parts[i].number > STORE_MAX_PARTS)
      return err_set(e, ERR_INVALID_PART, "part number %d is not in 1..%d", parts[i].number,
                     STORE_MAX_PARTS);
  }

  plan pl = { .blobs = xmalloc(nparts * sizeof(blob_id)),
              .sizes = xmalloc(nparts * sizeof(uint64_t)),
              .md5s = xmalloc(nparts * 16) };
  blob_id id;
  random_bytes(id.b, sizeof id.b);
  store__fly_add(s, &id);
  blob_id missing;
  bool missed = false;
  rc = 1;
  for (int attempt = 0; rc == 1 && attempt < RACE_RETRIES; attempt++) {
    rc = validate(s, bucket, key, upload_id, parts, nparts, a, &pl, e);
    if (rc == 0)
      rc = join(s, &id, &pl, nparts, &missing, &missed, e);
  }
  if (rc == 1)
    rc = err_set(e, ERR_UNAVAILABLE, "upload '%s' keeps changing", upload_id);
  if (rc == 0 && s->remote != NULL) {  /* remote.c (1) */
    rc = store__remote_stage(s, &id, NULL, e);
  }
  if (rc == ERR_NO_SUCH_UPLOAD && completed_by(s, bucket, key, upload_id, a, out) == 0) {
    err_clear(e);  /* invariant (4): a retry of a complete that succeeded */
    store__blob_unlink(s, &id);
    store__fly_del(s, &id);
    free(pl.blobs);
    free(pl.sizes);
    free(pl.md5s);
    return 0;
  }

  /* the object's record */
  str_pair *meta = NULL;
  size_t nmeta = 0;
  char etag[48];
  if (rc == 0) {
    nmeta = pl.up.nmeta + nextra;
    meta = arena_alloc(a, (nmeta + 1) * sizeof *meta);
    for (size_t i = 0; i < pl.up.nmeta; i++)
      meta[i] = pl.up.meta[i];
    for (size_t i = 0; i < nextra; i++)
      meta[pl.up.nmeta + i] = extra_meta[i];
    rc = store__check_meta(meta, nmeta, e);
  }
  if (rc == 0) {
    uint8_t md5[16];
    unsigned len = 0;
    if (EVP_Digest(pl.md5s, 16 * nparts, md5, &len, EVP_md5(), NULL) != 1)
      abort();
    hex_encode(md5, sizeof md5, etag);
    snprintf(etag + 32, sizeof etag - 32, "-%zu", nparts);

    obj_rec r = {
      .lk = (const uint8_t *)key, .lkn = strlen(key), .size = pl.total,
      .mtime_ms = store__clock_ms(), .blob = id, .etag = etag, .meta = meta, .nmeta = nmeta,
      .tags = pl.up.tags, .ntags = pl.up.ntags,
      .upload_id = upload_id, .part_sizes = pl.sizes, .nparts = nparts,
      .lock_mode = xp != NULL ? (uint8_t)xp->lock_mode : 0,
      .retain_until_ms = xp != NULL ? xp->retain_until_ms : 0,
      .legal_hold = xp != NULL && xp->legal_hold,
      .legal_hold_set = xp != NULL && xp->legal_hold,
    };
    complete_arg x = {
      .bucket = bucket, .key = key, .upload_id = upload_id, .parts = parts,
      .blobs = pl.blobs, .nparts = nparts, .size = pl.total, .blob = id,
      .note = { STORE_EVENT_COMPLETE, bucket, key, pl.total, etag, r.mtime_ms },
      .expect = xp,
    };
    bool lng = store__ikey_make(&x.k, bucket, r.lk, r.lkn);
    buf b;
    buf_init(&b, 1 << 20);
    store__obj_rec_encode(&b, &r, lng);
    x.val.mv_size = b.len;
    x.val.mv_data = b.data;
    if (s->pg != NULL) {
      int *numbers = arena_alloc(a, nparts * sizeof *numbers);
      for (size_t i = 0; i < nparts; i++)
        numbers[i] = parts[i].number;
      pg_complete pc = { upload_id, numbers, pl.blobs, nparts,
                         { bucket, key, &x.k, x.val, pl.total, &id, xp, &x.note, x.vid } };
      rc = store__pg_upload_complete(s, &pc, e);
    } else {
      change c;
      store__change_init(&c, s, apply_complete, &x, &id);
      rc = store__commit_run(s, &c, e);
    }
    if (rc == 0 && out != NULL) {
      MDB_val kv = store__ikey_val(&x.k);
      obj_rec d;
      if (store__obj_rec_decode(&kv, &x.val, a, &d) != 0)
        rc = store__corrupt(e, "object");
      else
        store__obj_out(a, bucket, &d, out);
      if (rc == 0 && x.vid[0] != '\0')
        out->version_id = arena_strdup(a, x.vid);
    } else if (rc != 0) {
      store__blob_unlink(s, &id);
      if (rc == ERR_NO_SUCH_UPLOAD && completed_by(s, bucket, key, upload_id, a, out) == 0) {
        err_clear(e);  /* a concurrent complete of the same upload won */
        rc = 0;
      }
    }
    buf_release(&b);
  } else {
    store__blob_unlink(s, &id);
  }
  store__fly_del(s, &id);
  free(pl.blobs);
  free(pl.sizes);
  free(pl.md5s);
  return rc;
}

/* ---- abort ---- */

typedef struct abort_arg {
  const char *bucket;
  const char *key;
  const char *upload_id;
} abort_arg;

static int apply_abort(change *c, MDB_txn *txn, arena *a, err *e)
{
  abort_arg *x = c->arg;
  ikey k;
  MDB_val v;
  int rc = upload_find(c->s, txn, x->bucket, x->key, x->upload_id, &k, &v, e);
  if (rc == 0)
    rc = store__parts_delete_all(c, txn, x->upload_id, e);
  if (rc != 0)
    return rc;
  MDB_val kv = store__ikey_val(&k);
  int mrc = mdb_del(txn, c->s->db_uploads, &kv, NULL);
  return mrc ? lmdb_error(e, mrc, "delete an upload record") : 0;
}

int store_upload_abort(store *s, const char *bucket, const char *key, const char *upload_id,
                       err *e)
{
  int rc = check_upload_args(bucket, key, upload_id, e);
  if (rc != 0)
    return rc;
  if (s->pg != NULL)
    return store__pg_upload_abort(s, bucket, key, upload_id, e);
  abort_arg x = { bucket, key, upload_id };
  change c;
  store__change_init(&c, s, apply_abort, &x, NULL);
  return store__commit_run(s, &c, e);
}

/* ---- bucket deletion ---- */

int store__uploads_drop_all(change *c, MDB_txn *txn, const char *bucket, err *e)
{
  ikey start;
  store__ikey_seek(&start, bucket, "", 0);
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, c->s->db_uploads, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  int rc = 0;
  for (;;) {
    MDB_val k = store__ikey_val(&start);
    MDB_val v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND || (mrc == 0 && (k.mv_size < start.n ||
                                             memcmp(k.mv_data, start.b, start.n) != 0)))
      break;
    if (mrc != 0) {
      rc = lmdb_error(e, mrc, "read an upload record");
      break;
    }
    const uint8_t *lk = NULL;
    size_t lkn = 0;
    if (store__rec_lkey(&k, &v, &lk, &lkn) != 0 || lkn < 33 || lk[lkn - 33] != '\0') {
      rc = store__corrupt(e, "upload");
      break;
    }
    char id[33];
    memcpy(id, lk + lkn - 32, 32);
    id[32] = '\0';
    /* parts live in another table: the cursor stays on this record */
    rc = store__parts_delete_all(c, txn, id, e);
    if (rc != 0)
      break;
    mrc = mdb_cursor_del(cur, 0);
    if (mrc != 0) {
      rc = lmdb_error(e, mrc, "delete an upload record");
      break;
    }
  }
  mdb_cursor_close(cur);
  return rc;
}
