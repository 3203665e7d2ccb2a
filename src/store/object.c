/* store/object.c -- objects: commit, get, delete, copy, tags.
 *
 * Why: the entry points that turn one S3 object operation into one change
 * for the committer (or one read transaction).
 *
 * Invariants:
 *   (1) Records are encoded on the caller's thread; a change's apply only
 *       checks what can change under it (the bucket, the current record) and
 *       writes.
 *   (2) A reader opens a blob while its read transaction shows the record
 *       naming it. If the open fails with ENOENT an overwrite committed and
 *       unlinked it in between: look again (a newer record exists).
 *   (3) A copy is a new hard link with a fresh blob name, in flight from
 *       link() until its commit returned; the copy of an inline object is
 *       an inline record with the same bytes (no file at all).
 *   (4) An object committed from a writer is inline exactly when the writer
 *       never made a blob (blob.c (5)): at most STORE_INLINE_MAX bytes. Its
 *       change has no blob to sync (change.sync NULL), so the commit's one
 *       LMDB sync, shared by the batch, is all its durability costs.
 *   (5) Inline bytes read from a record are copied into the caller's arena
 *       before the read transaction ends.
 *
 * Start reading at store_object_commit().
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

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define RACE_RETRIES 100   /* lookups racing with overwrites before we give up */

typedef struct put_arg {
  const char *bucket;  /* the destination */
  feed_note note;      /* the change, for the feed */
  ikey k;              /* its index key */
  MDB_val val;         /* the encoded record */
  uint64_t size;       /* the object's size */
  bool inlined;        /* the bytes are in val: no blob */
  blob_id blob;        /* its bytes, when !inlined */
  const store_expect *expect; /* the precondition, or NULL */
  char vid[STORE_VID_MAX];    /* out: the version made ("" unversioned) */
} put_arg;

static int apply_put(change *c, MDB_txn *txn, arena *a, err *e)
{
  put_arg *p = c->arg;
  int rc = store__bucket_check(c->s, txn, p->bucket, e);
  if (rc == 0)
    rc = store__expect_check(c->s, txn, &p->k, p->expect, a, e);
  if (rc == 0)
    rc = store__obj_replace(c, txn, p->bucket, &p->k, p->val, p->size,
                            p->inlined ? NULL : &p->blob, p->vid, e);
  p->note.version_id = p->vid;
  if (rc == 0)
    rc = store__feed_append(c, txn, &p->note, e);
  return rc;
}

/* Encodes r as bucket/key's record and commits it (event: the feed's
 * STORE_EVENT_*). On success out (when not NULL) gets the record, decoded
 * into a. */
static int put_record(store *s, const char *bucket, obj_rec *r, int event,
                      const store_expect *x, arena *a, store_object *out, err *e)
{
  char *key = xstrndup((const char *)r->lk, r->lkn);
  put_arg p = { .bucket = bucket, .size = r->size, .inlined = r->inlined, .blob = r->blob,
                .expect = x,
                .note = { event, bucket, key, r->size, r->etag, r->mtime_ms } };
  bool lng = store__ikey_make(&p.k, bucket, r->lk, r->lkn);
  if (x != NULL) {
    r->lock_mode = (uint8_t)x->lock_mode;
    r->retain_until_ms = x->retain_until_ms;
    r->legal_hold = x->legal_hold;
    r->legal_hold_set = x->legal_hold;
  }
  buf b;
  buf_init(&b, 1 << 20);
  store__obj_rec_encode(&b, r, lng);
  p.val.mv_size = b.len;
  p.val.mv_data = b.data;
  int rc;
  if (s->pg != NULL) {
    pg_put put = { bucket, key, &p.k, p.val, p.size, p.inlined ? NULL : &p.blob, x, &p.note,
                   p.vid };
    rc = store__pg_object_put(s, &put, e);
  } else {
    change c;
    store__change_init(&c, s, apply_put, &p, p.inlined ? NULL : &p.blob);
    rc = store__commit_run(s, &c, e);
  }
  if (rc == 0 && out != NULL && a != NULL) {
    MDB_val kv = store__ikey_val(&p.k);
    obj_rec d;
    if (store__obj_rec_decode(&kv, &p.val, a, &d) != 0)
      rc = store__corrupt(e, "object");
    else
      store__obj_out(a, bucket, &d, out);
    if (rc == 0 && p.vid[0] != '\0')
      out->version_id = arena_strdup(a, p.vid);
  }
  buf_release(&b);
  free(key);
  return rc;
}

int store_object_commit(store_writer *w, const char *bucket, const char *key,
                        const char *etag, const str_pair *meta, size_t nmeta,
                        const str_pair *tags, size_t ntags,
                        arena *a, store_object *out, err *e)
{
  return store_object_commit_if(w, bucket, key, etag, meta, nmeta, tags, ntags, NULL, a, out, e);
}

/* Commits what w wrote as bucket/key, raising `event` (a PUT's, or a
 * rewritten copy's ObjectCreated:Copy). */
static int commit_written(store_writer *w, const char *bucket, const char *key,
                          const char *etag, const str_pair *meta, size_t nmeta,
                          const str_pair *tags, size_t ntags, const store_expect *x,
                          enum store_event event, arena *a, store_object *out, err *e)
{
  if (w == NULL || w->consumed)
    return err_set(e, ERR_INVALID, "writer already committed");
  int rc = store__check_bucket_arg(bucket, e);
  if (rc == 0)
    rc = store__check_key(key, e);
  if (rc == 0)
    rc = store__check_meta(meta, nmeta, e);
  if (rc == 0)
    rc = store__check_tags(tags, ntags, e);
  if (rc != 0) {
    w->consumed = true;
    return rc;
  }
  w->staged = w->s->remote != NULL;  /* blob.c (7) */
  rc = store__writer_finish(w, false, e);
  if (rc == 0 && w->has_blob && w->s->remote != NULL)
    rc = store__remote_stage(w->s, &w->id, &w->tail, e);  /* remote.c (1), (9) */
  if (rc != 0)
    return rc;
  char md5hex[33];
  if (etag == NULL) {
    uint8_t md5[16];
    store_writer_etag_md5(w, md5);
    hex_encode(md5, sizeof md5, md5hex);
    etag = md5hex;
  }
  obj_rec r = {
    .lk = (const uint8_t *)key, .lkn = strlen(key), .size = w->size, .mtime_ms = store__clock_ms(),
    .inlined = !w->has_blob, .blob = w->id, .data = w->head, .etag = etag,
    .meta = (str_pair *)meta, .nmeta = nmeta, .tags = (str_pair *)tags, .ntags = ntags,
  };
  arena *tmp = NULL;
  if (w->crypt != NULL) {  /* the sealed key goes with the record (crypt.c) */
    tmp = arena_new();
    r.meta = store__crypt_meta_add(tmp, meta, nmeta, w->sealed, &r.nmeta);
  }
  rc = put_record(w->s, bucket, &r, event, x, a, out, e);
  arena_free(tmp);
  if (rc == 0)
    w->committed = true;
  return rc;
}

int store_object_commit_if(store_writer *w, const char *bucket, const char *key,
                           const char *etag, const str_pair *meta, size_t nmeta,
                           const str_pair *tags, size_t ntags, const store_expect *x,
                           arena *a, store_object *out, err *e)
{
  return commit_written(w, bucket, key, etag, meta, nmeta, tags, ntags, x, STORE_EVENT_PUT, a,
                        out, e);
}

/* ---- reading ---- */

/* Looks up bucket/key (version vid, NULL: the current one) in txn: 0,
 * ERR_NO_SUCH_BUCKET, ERR_NO_SUCH_KEY or store__version_lookup's errors.
 * *state gets the bucket's versioning. */
static int lookup(store *s, MDB_txn *txn, const char *bucket, const char *key, const char *vid,
                  arena *a, obj_rec *r, int *state, err *e)
{
  int rc = store__versioning_in(s, txn, bucket, state, e);
  if (rc != 0)
    return rc;
  if (vid != NULL && (*state != STORE_VERSIONING_OFF || strcmp(vid, "null") != 0))
    return store__version_lookup(s, txn, bucket, key, vid, a, r, e);
  ikey k;
  MDB_val v;
  int mrc = store__index_get(txn, s->db_objects, bucket, key, strlen(key), &k, &v);
  if (mrc == MDB_NOTFOUND)
    return err_set(e, ERR_NO_SUCH_KEY, "no key '%s' in bucket '%s'", key, bucket);
  if (mrc != 0)
    return lmdb_error(e, mrc, "read an object record");
  MDB_val kv = store__ikey_val(&k);
  if (store__obj_rec_decode(&kv, &v, a, r) != 0)
    return store__corrupt(e, "object");
  /* lk points into the transaction's pages: move it to the arena */
  r->lk = arena_memdup(a, r->lk, r->lkn);
  return 0;
}

int store_object_get(store *s, const char *bucket, const char *key, arena *a,
                     store_object *out, int *fd, err *e)
{
  return store_object_get_version(s, bucket, key, NULL, a, out, fd, e);
}

/* The version fields of out from r, in a bucket in versioning state. */
static void version_out(arena *a, const obj_rec *r, int state, store_object *out)
{
  out->version_id = NULL;
  if (r->version_id != NULL && r->version_id[0] != '\0')
    out->version_id = arena_strdup(a, r->version_id);
  else if (state != STORE_VERSIONING_OFF || r->vseq != 0)
    out->version_id = "null";
  out->delete_marker = r->marker;
  out->lock_mode = r->lock_mode;
  out->retain_until_ms = r->retain_until_ms;
  out->legal_hold = r->legal_hold;
  out->legal_hold_set = r->legal_hold_set;
}

/* store_object_get_version on the PostgreSQL index (pg_index.c): blobs are
 * read from their local file if there is one, else from the backend
 * (remote.c (2)); both are immutable, so no retry is needed. */
static int get_pg(store *s, const char *bucket, const char *key, const char *version_id,
                  arena *a, store_object *out, int *fd, err *e)
{
  obj_rec r;
  int state = 0;
  int rc = store__pg_object_lookup(s, bucket, key, version_id, a, &r, &state, e);
  if (rc != 0)
    return rc;
  store__obj_out(a, bucket, &r, out);
  version_out(a, &r, state, out);
  out->part_sizes = store__obj_rec_parts(&r, a);
  if (out->part_sizes == NULL)
    out->nparts = 0;
  if (fd == NULL)
    return 0;
  if (r.inlined) {
    out->data = r.data;  /* in a already (pg_index.c) */
    return 0;
  }
  char path[BLOB_PATH_MAX];
  store__blob_path(s, &r.blob, path);
  *fd = open(path, O_RDONLY | O_CLOEXEC);
  if (*fd < 0 && s->remote != NULL) {
    out->remote = s->remote;
    out->remote_name = store__remote_name(s->remote, &r.blob, a);
  } else if (*fd < 0) {
    int saved = errno;
    return err_set(e, err_from_errno(saved), "cannot open blob of '%s' in bucket '%s': %s", key,
                   bucket, strerror(saved));
  }
  if (out->sse == STORE_SSE_S3) {
    rc = store_object_unlock(s, out, NULL, a, e);
    if (rc != 0 && *fd >= 0) {
      close(*fd);
      *fd = -1;
    }
  }
  return rc;
}

int store_object_get_version(store *s, const char *bucket, const char *key,
                             const char *version_id, arena *a, store_object *out, int *fd,
                             err *e)
{
  if (fd != NULL)
    *fd = -1;
  int rc = store__check_bucket_arg(bucket, e);
  if (rc == 0)
    rc = store__check_key(key, e);
  if (rc != 0)
    return rc;
  if (s->pg != NULL)
    return get_pg(s, bucket, key, version_id, a, out, fd, e);
  blob_id missing;   /* the blob an earlier attempt could not open */
  bool missed = false;
  for (int attempt = 0; attempt < RACE_RETRIES; attempt++) {
    MDB_txn *txn = NULL;
    rc = store__read_begin(s, &txn, e);
    if (rc != 0)
      return rc;
    obj_rec r;
    int state = 0;
    rc = lookup(s, txn, bucket, key, version_id, a, &r, &state, e);
    int opened = -1;
    blob_id remote;
    bool in_remote = false;
    const void *data = NULL;
    const uint64_t *sizes = rc == 0 ? store__obj_rec_parts(&r, a) : NULL;
    if (rc == 0 && fd != NULL && r.inlined) {
      data = arena_memdup(a, r.data, r.size > 0 ? (size_t)r.size : 1);  /* invariant (5) */
    } else if (rc == 0 && fd != NULL && !r.marker) {
      char path[BLOB_PATH_MAX];
      store__blob_path(s, &r.blob, path);
      opened = open(path, O_RDONLY | O_CLOEXEC);
      if (opened < 0 && errno == ENOENT && s->remote != NULL) {
        remote = r.blob;  /* remote.c (2): in the backend */
        in_remote = true;
      } else if (opened < 0) {
        int saved = errno;
        mdb_txn_abort(txn);
        if (saved == ENOENT && missed && memcmp(&missing, &r.blob, sizeof missing) == 0)
          return err_set(e, ERR_IO, "the bytes of key '%s' in bucket '%s' are missing", key,
                         bucket);
        missing = r.blob;
        missed = true;
        if (saved == ENOENT)
          continue;  /* invariant (2) */
        return err_set(e, err_from_errno(saved), "cannot open blob of '%s' in bucket '%s': %s",
                       key, bucket, strerror(saved));
      }
    }
    mdb_txn_abort(txn);
    if (rc != 0)
      return rc;
    store__obj_out(a, bucket, &r, out);
    version_out(a, &r, state, out);
    out->data = data;
    if (in_remote) {
      out->remote = s->remote;
      out->remote_name = store__remote_name(s->remote, &remote, a);
    }
    out->part_sizes = sizes;
    if (sizes == NULL)
      out->nparts = 0;
    if (fd != NULL && out->sse == STORE_SSE_S3) {
      rc = store_object_unlock(s, out, NULL, a, e);
      if (rc != 0) {
        if (opened >= 0)
          close(opened);
        return rc;
      }
    }
    if (fd != NULL)
      *fd = opened;
    return 0;
  }
  return err_set(e, ERR_UNAVAILABLE, "key '%s' in bucket '%s' keeps changing", key, bucket);
}

int store_object_read(const store_object *o, int fd, uint64_t offset, void *p, size_t n,
                      size_t *got, err *e)
{
  *got = 0;
  if (o->sse != STORE_SSE_NONE || o->remote != NULL)
    return store__object_read_crypt(o, fd, offset, p, n, got, e);
  if (offset >= o->size)
    return 0;
  if (n > o->size - offset)
    n = (size_t)(o->size - offset);
  if (fd < 0) {
    assert(o->data != NULL);
    memcpy(p, (const uint8_t *)o->data + offset, n);
    *got = n;
    return 0;
  }
  for (;;) {
    ssize_t r = pread(fd, p, n, (off_t)offset);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int saved = errno;
      return err_set(e, err_from_errno(saved), "cannot read key '%s' in bucket '%s': %s",
                     o->key, o->bucket, strerror(saved));
    }
    *got = (size_t)r;
    return 0;
  }
}

/* ---- delete ---- */

typedef struct delete_arg {
  const char *bucket;
  const char *key;
  int64_t if_mtime_ms; /* when not 0: delete only the object committed then */
  bool existed;        /* out */
  const char *if_etag; /* when not NULL: delete only an object with this etag */
  const char *version_id;  /* versioned buckets: the version to remove, or NULL */
  bool bypass_governance;
  store_delete_result *res; /* out, when not NULL */
} delete_arg;

static int apply_delete(change *c, MDB_txn *txn, arena *a, err *e)
{
  delete_arg *d = c->arg;
  store *s = c->s;
  d->existed = false;
  int state = 0;
  int rc = store__versioning_in(s, txn, d->bucket, &state, e);
  if (rc != 0)
    return rc;
  if (state != STORE_VERSIONING_OFF ||
      (d->version_id != NULL && strcmp(d->version_id, "null") != 0)) {
    store_delete_result scratch;
    store_vdelete vd = { d->bucket, d->key, d->version_id, d->bypass_governance, d->if_mtime_ms,
                         d->if_etag, d->res != NULL ? d->res : &scratch };
    rc = store__version_delete(c, txn, &vd, a, e);
    d->existed = rc == 0 && vd.out->existed;
    return rc;
  }
  ikey k;
  MDB_val v;
  int mrc = store__index_get(txn, s->db_objects, d->bucket, d->key, strlen(d->key), &k, &v);
  if (mrc == MDB_NOTFOUND && d->if_etag != NULL)
    return err_set(e, ERR_NO_SUCH_KEY, "the object does not exist (If-Match '%.80s')", d->if_etag);
  if (mrc == MDB_NOTFOUND)
    return 0;
  if (mrc != 0)
    return lmdb_error(e, mrc, "read an object record");
  MDB_val kv = store__ikey_val(&k);
  obj_rec r;
  if (store__obj_rec_decode(&kv, &v, d->if_etag != NULL ? a : NULL, &r) != 0)
    return store__corrupt(e, "object");
  if (d->if_mtime_ms != 0 && r.mtime_ms != d->if_mtime_ms)
    return 0;   /* replaced since the caller looked: keep it */
  if (d->if_etag != NULL && !store__etag_match(d->if_etag, r.etag))
    return err_set(e, ERR_PRECONDITION, "At least one of the pre-conditions you specified did not "
                   "hold: the object's ETag is not '%.80s'", d->if_etag);
  rc = r.inlined ? 0 : store__change_drop_blob(c, txn, &r.blob, e);
  if (rc == 0)
    rc = store__counters_add(s, txn, -1, -(int64_t)r.size, e);
  if (rc != 0)
    return rc;
  mrc = mdb_del(txn, s->db_objects, &kv, NULL);
  if (mrc != 0)
    return lmdb_error(e, mrc, "delete an object record");
  d->existed = true;
  if (d->res != NULL) {
    d->res->existed = true;
    if (d->version_id != NULL)  /* "null" in a bucket without versioning */
      snprintf(d->res->version_id, STORE_VID_MAX, "null");
  }
  feed_note note = { STORE_EVENT_DELETE, d->bucket, d->key, 0, NULL, store__clock_ms(), NULL };
  return store__feed_append(c, txn, &note, e);
}

int store_object_delete(store *s, const char *bucket, const char *key, bool *existed, err *e)
{
  return store__object_delete_if(s, bucket, key, 0, existed, e);
}

static int delete_run(store *s, delete_arg *d, bool *existed, err *e)
{
  if (existed != NULL)
    *existed = false;
  int rc = store__check_bucket_arg(d->bucket, e);
  if (rc == 0)
    rc = store__check_key(d->key, e);
  if (rc != 0)
    return rc;
  if (s->pg != NULL) {
    pg_delete pd = { d->bucket, d->key, d->if_mtime_ms, d->if_etag, d->version_id,
                     d->bypass_governance, d->res, false };
    rc = store__pg_object_delete(s, &pd, e);
    d->existed = pd.existed;
  } else {
    change c;
    store__change_init(&c, s, apply_delete, d, NULL);
    rc = store__commit_run(s, &c, e);
  }
  if (rc == 0 && existed != NULL)
    *existed = d->existed;
  return rc;
}

int store_object_delete_version(store *s, const char *bucket, const char *key,
                                const char *version_id, bool bypass_governance,
                                store_delete_result *out, err *e)
{
  memset(out, 0, sizeof *out);
  int rc = version_id != NULL ? store_version_id_check(version_id, e) : 0;
  if (rc != 0)
    return rc;
  delete_arg d = { .bucket = bucket, .key = key, .version_id = version_id,
                   .bypass_governance = bypass_governance, .res = out };
  return delete_run(s, &d, NULL, e);
}

int store_object_delete_if_match(store *s, const char *bucket, const char *key, const char *etag,
                                 bool *existed, err *e)
{
  delete_arg d = { .bucket = bucket, .key = key, .if_etag = etag };
  return delete_run(s, &d, existed, e);
}

int store__object_delete_if(store *s, const char *bucket, const char *key, int64_t mtime_ms,
                            bool *existed, err *e)
{
  delete_arg d = { .bucket = bucket, .key = key, .if_mtime_ms = mtime_ms };
  return delete_run(s, &d, existed, e);
}

/* ---- copy ---- */

int store_object_copy(store *s, const char *src_bucket, const char *src_key,
                      const char *dst_bucket, const char *dst_key,
                      const str_pair *meta, size_t nmeta,
                      const str_pair *tags, size_t ntags,
                      arena *a, store_object *out, err *e)
{
  return store_object_copy_version(s, src_bucket, src_key, NULL, dst_bucket, dst_key, meta, nmeta,
                                   tags, ntags, a, out, e);
}

int store_writer_commit_copy(store_writer *w, const store_object *src, int fd, const char *bucket,
                             const char *key, const str_pair *meta, size_t nmeta,
                             const str_pair *tags, size_t ntags, arena *a, store_object *out,
                             err *e)
{
  enum { CHUNK = 1 << 20 };
  store_reader *r = store_reader_new(src, fd);
  uint8_t *chunk = xmalloc(CHUNK);
  int rc = 0;
  for (uint64_t off = 0; rc == 0 && off < src->size;) {
    size_t got = 0;
    rc = store_reader_read(r, off, chunk, CHUNK, &got, e);
    if (rc == 0 && got == 0)
      rc = err_set(e, ERR_IO, "the source object is shorter than its record");
    if (rc == 0)
      rc = store_writer_write(w, chunk, got, e);
    off += got;
  }
  free(chunk);
  store_reader_free(r);
  if (rc != 0)
    return rc;
  uint8_t d[16];
  char etag[33];
  store_writer_etag_md5(w, d);
  hex_encode(d, sizeof d, etag);
  return commit_written(w, bucket, key, etag, meta != NULL ? meta : src->meta,
                        meta != NULL ? nmeta : src->nmeta, tags != NULL ? tags : src->tags,
                        tags != NULL ? ntags : src->ntags, NULL, STORE_EVENT_COPY, a, out, e);
}

/* A copy of a plain source into a bucket whose default encryption is
 * SSE-S3: its bytes read and written again under a data key of its own
 * (*done false: the source is encrypted already, so linking keeps it so). */
static int copy_encrypting(store *s, const char *src_bucket, const char *src_key,
                           const char *src_version_id, const char *dst_bucket,
                           const char *dst_key, const str_pair *meta, size_t nmeta,
                           const str_pair *tags, size_t ntags, arena *a, store_object *out,
                           bool *done, err *e)
{
  *done = false;
  arena *tmp = arena_new();
  store_object src;
  int fd = -1;
  int rc = store_object_get_version(s, src_bucket, src_key, src_version_id, tmp, &src, &fd, e);
  if (rc != 0 || src.sse != STORE_SSE_NONE) {
    if (fd >= 0)
      close(fd);
    arena_free(tmp);
    return rc;
  }
  *done = true;
  store_writer *w = NULL;
  rc = store_writer_new(s, &w, e);
  if (rc == 0)
    rc = store_writer_encrypt_default(s, w, dst_bucket, NULL, e);
  if (rc == 0)
    rc = store_writer_commit_copy(w, &src, fd, dst_bucket, dst_key, meta, nmeta, tags, ntags,
                                  a != NULL ? a : tmp, out, e);   /* takes fd */
  else if (fd >= 0)
    close(fd);
  store_writer_free(w);
  arena_free(tmp);
  return rc;
}

/* The record of a copy of src as dst_key (blob: its bytes; meta / tags NULL:
 * src's), with src's encryption key and part sizes (its segments). */
static obj_rec copy_rec(const obj_rec *src, const blob_id *blob, const char *dst_key,
                        const str_pair *meta, size_t nmeta, const str_pair *tags, size_t ntags,
                        arena *ra)
{
  obj_rec r = {
    .lk = (const uint8_t *)dst_key, .lkn = strlen(dst_key), .size = src->size,
    .mtime_ms = store__clock_ms(), .inlined = src->inlined, .blob = *blob, .data = src->data,
    .etag = src->etag,
    .meta = meta != NULL ? (str_pair *)meta : src->meta,
    .nmeta = meta != NULL ? nmeta : src->nmeta,
    .tags = tags != NULL ? (str_pair *)tags : src->tags,
    .ntags = tags != NULL ? ntags : src->ntags,
  };
  const char *sealed = store__crypt_find(src->meta, src->nmeta);
  if (sealed != NULL) {
    /* the bytes stay encrypted: the copy keeps their key and, for a
       multipart source, the part sizes that locate its segments */
    r.meta = store__crypt_meta_add(ra, r.meta, r.nmeta, sealed, &r.nmeta);
    r.part_sizes = store__obj_rec_parts(src, ra);
    r.nparts = r.part_sizes != NULL ? src->nparts : 0;
  }
  return r;
}

/* store_object_copy_version on the PostgreSQL index: the source's blob is
 * copied in the backend under a new name (blobs are never shared between
 * records, so a delete never needs to know about other references). */
static int copy_pg(store *s, const char *src_bucket, const char *src_key,
                   const char *src_version_id, const char *dst_bucket, const char *dst_key,
                   const str_pair *meta, size_t nmeta, const str_pair *tags, size_t ntags,
                   arena *a, store_object *out, err *e)
{
  arena *tmp = arena_new();
  arena *ra = a != NULL ? a : tmp;
  obj_rec src;
  blob_id id;
  memset(&id, 0, sizeof id);
  bool flying = false;
  int rc = store__pg_object_lookup(s, src_bucket, src_key, src_version_id, ra, &src, NULL, e);
  if (rc == 0 && src.marker)
    rc = err_set(e, ERR_INVALID_REQUEST, "The source of a copy request may not specifically "
                 "refer to a delete marker by version id.");
  if (rc == 0 && !src.inlined) {
    random_bytes(id.b, sizeof id.b);
    store__fly_add(s, &id);
    flying = true;
    char from[BLOB_PATH_MAX];
    char to[BLOB_PATH_MAX];
    store__blob_path(s, &src.blob, from);
    store__blob_path(s, &id, to);
    int lrc = link(from, to) == 0 ? 0 : errno;
    if (lrc == ENOENT && s->remote != NULL)
      rc = store__remote_copy(s, &src.blob, &id, e);  /* remote.c (2) */
    else if (lrc != 0)
      rc = err_set(e, err_from_errno(lrc), "cannot link blob '%s': %s", to, strerror(lrc));
  }
  if (rc == 0) {
    obj_rec r = copy_rec(&src, &id, dst_key, meta, nmeta, tags, ntags, ra);
    rc = put_record(s, dst_bucket, &r, STORE_EVENT_COPY, NULL, a, out, e);
    if (rc != 0 && !src.inlined)
      store__blob_unlink(s, &id);
  }
  if (flying)
    store__fly_del(s, &id);
  arena_free(tmp);
  return rc;
}

int store_object_copy_version(store *s, const char *src_bucket, const char *src_key,
                              const char *src_version_id,
                              const char *dst_bucket, const char *dst_key,
                              const str_pair *meta, size_t nmeta,
                              const str_pair *tags, size_t ntags,
                              arena *a, store_object *out, err *e)
{
  int rc = store__check_bucket_arg(src_bucket, e);
  if (rc == 0)
    rc = store__check_bucket_arg(dst_bucket, e);
  if (rc == 0)
    rc = store__check_key(src_key, e);
  if (rc == 0)
    rc = store__check_key(dst_key, e);
  if (rc == 0 && meta != NULL)
    rc = store__check_meta(meta, nmeta, e);
  if (rc == 0 && tags != NULL)
    rc = store__check_tags(tags, ntags, e);
  if (rc != 0)
    return rc;
  if (store_bucket_sse_default(s, dst_bucket, NULL) == STORE_SSE_S3) {
    bool done;
    rc = copy_encrypting(s, src_bucket, src_key, src_version_id, dst_bucket, dst_key, meta,
                         nmeta, tags, ntags, a, out, &done, e);
    if (rc != 0 || done)
      return rc;
  }

  if (s->pg != NULL)
    return copy_pg(s, src_bucket, src_key, src_version_id, dst_bucket, dst_key, meta, nmeta,
                   tags, ntags, a, out, e);
  arena *tmp = arena_new();   /* the source record, when a is NULL */
  arena *ra = a != NULL ? a : tmp;
  obj_rec src;
  blob_id id;
  memset(&src, 0, sizeof src);
  memset(&id, 0, sizeof id);
  bool linked = false;  /* or, for an inline source, its bytes copied */
  blob_id missing;   /* the source blob an earlier attempt could not link */
  bool missed = false;
  for (int attempt = 0; rc == 0 && !linked && attempt < RACE_RETRIES; attempt++) {
    MDB_txn *txn = NULL;
    rc = store__read_begin(s, &txn, e);
    if (rc != 0)
      break;
    int state = 0;
    rc = lookup(s, txn, src_bucket, src_key, src_version_id, ra, &src, &state, e);
    if (rc == 0 && src.marker)
      rc = err_set(e, ERR_INVALID_REQUEST, "The source of a copy request may not specifically "
                   "refer to a delete marker by version id.");
    if (rc == 0 && src.inlined) {
      src.data = arena_memdup(ra, src.data, src.size > 0 ? (size_t)src.size : 1);
      linked = true;
    } else if (rc == 0) {
      char from[BLOB_PATH_MAX];
      char to[BLOB_PATH_MAX];
      random_bytes(id.b, sizeof id.b);
      store__fly_add(s, &id);
      store__blob_path(s, &src.blob, from);
      store__blob_path(s, &id, to);
      int lrc = link(from, to) == 0 ? 0 : errno;
      if (lrc == ENOENT && s->remote != NULL) {  /* remote.c (2) */
        err re;
        err_clear(&re);
        lrc = store__remote_copy(s, &src.blob, &id, &re);
        if (lrc == ERR_NO_SUCH_KEY)
          lrc = ENOENT;  /* overwritten meanwhile, as below */
        else if (lrc != 0) {
          store__fly_del(s, &id);
          rc = err_set(e, lrc, "%s", re.msg);
          mdb_txn_abort(txn);
          break;
        }
      }
      if (lrc == 0) {
        linked = true;
      } else {
        int saved = lrc;
        store__fly_del(s, &id);
        if (saved == ENOENT && missed && memcmp(&missing, &src.blob, sizeof missing) == 0)
          rc = err_set(e, ERR_IO, "the bytes of key '%s' in bucket '%s' are missing", src_key,
                       src_bucket);
        else if (saved != ENOENT)  /* ENOENT: overwritten meanwhile, invariant (2) */
          rc = err_set(e, err_from_errno(saved), "cannot link blob '%s': %s", to,
                       strerror(saved));
        missing = src.blob;
        missed = true;
      }
    }
    mdb_txn_abort(txn);
  }
  if (rc == 0 && !linked)
    rc = err_set(e, ERR_UNAVAILABLE, "key '%s' in bucket '%s' keeps changing", src_key,
                 src_bucket);
  if (rc == 0) {
    obj_rec r = copy_rec(&src, &id, dst_key, meta, nmeta, tags, ntags, ra);
    rc = put_record(s, dst_bucket, &r, STORE_EVENT_COPY, NULL, a, out, e);
    if (rc != 0 && !src.inlined)
      store__blob_unlink(s, &id);
    if (!src.inlined)
      store__fly_del(s, &id);
  }
  arena_free(tmp);
  return rc;
}

/* ---- tags, and metadata set in place ---- */

typedef struct tags_arg {
  const char *bucket;
  const char *key;
  const str_pair *tags;   /* with meta NULL: the new tags */
  size_t ntags;
  const str_pair *meta;   /* not NULL: the new metadata, tags kept */
  size_t nmeta;
} tags_arg;

/* The record v (at index key kv) with t's change, encoded into b. */
static int tags_edit(const tags_arg *t, const MDB_val *kv, const MDB_val *v, arena *a, buf *b,
                     err *e)
{
  obj_rec r;
  if (store__obj_rec_decode(kv, v, a, &r) != 0)
    return store__corrupt(e, "object");
  r.lk = (const uint8_t *)t->key;  /* v's pages may move when we write */
  if (r.inlined)
    r.data = arena_memdup(a, r.data, r.size > 0 ? (size_t)r.size : 1);
  if (t->meta != NULL) {
    r.meta = (str_pair *)t->meta;
    r.nmeta = t->nmeta;
  } else {
    r.tags = (str_pair *)t->tags;
    r.ntags = t->ntags;
  }
  r.part_sizes = store__obj_rec_parts(&r, a);  /* keep the upload's parts */
  if (r.part_sizes == NULL)
    r.nparts = 0;
  store__obj_rec_encode(b, &r, store__ikey_is_long(kv));
  return 0;
}

/* tags_edit as a store_rec_edit (the PostgreSQL index). */
static int tags_edit_pg(const MDB_val *v, void *arg, arena *a, buf *b, err *e)
{
  const tags_arg *t = arg;
  ikey k;
  store__ikey_make(&k, t->bucket, t->key, strlen(t->key));
  MDB_val kv = store__ikey_val(&k);
  return tags_edit(t, &kv, v, a, b, e);
}

static int apply_tags(change *c, MDB_txn *txn, arena *a, err *e)
{
  tags_arg *t = c->arg;
  store *s = c->s;
  int rc = store__bucket_check(s, txn, t->bucket, e);
  if (rc != 0)
    return rc;
  ikey k;
  MDB_val v;
  int mrc = store__index_get(txn, s->db_objects, t->bucket, t->key, strlen(t->key), &k, &v);
  if (mrc == MDB_NOTFOUND)
    return err_set(e, ERR_NO_SUCH_KEY, "no key '%s' in bucket '%s'", t->key, t->bucket);
  if (mrc != 0)
    return lmdb_error(e, mrc, "read an object record");
  MDB_val kv = store__ikey_val(&k);
  buf b;
  buf_init(&b, 1 << 20);
  rc = tags_edit(t, &kv, &v, a, &b, e);
  MDB_val nv = { b.len, b.data };
  mrc = rc == 0 ? mdb_put(txn, s->db_objects, &kv, &nv, 0) : 0;
  buf_release(&b);
  if (rc != 0)
    return rc;
  return mrc ? lmdb_error(e, mrc, "write an object record") : 0;
}

static int tags_run(store *s, tags_arg *t, err *e)
{
  if (s->pg != NULL)
    return store__pg_object_edit(s, t->bucket, t->key, tags_edit_pg, t, e);
  change c;
  store__change_init(&c, s, apply_tags, t, NULL);
  return store__commit_run(s, &c, e);
}

int store_object_tags_set(store *s, const char *bucket, const char *key,
                          const str_pair *tags, size_t ntags, err *e)
{
  int rc = store__check_bucket_arg(bucket, e);
  if (rc == 0)
    rc = store__check_key(key, e);
  if (rc == 0)
    rc = store__check_tags(tags, ntags, e);
  if (rc != 0)
    return rc;
  tags_arg t = { bucket, key, tags, ntags, NULL, 0 };
  return tags_run(s, &t, e);
}

int store_object_meta_set(store *s, const char *bucket, const char *key,
                          const str_pair *meta, size_t nmeta, err *e)
{
  int rc = store__check_bucket_arg(bucket, e);
  if (rc == 0)
    rc = store__check_key(key, e);
  if (rc == 0)
    rc = store__check_meta(meta, nmeta, e);
  if (rc != 0)
    return rc;
  static const str_pair none[1];
  tags_arg t = { bucket, key, NULL, 0, nmeta > 0 ? meta : none, nmeta };
  return tags_run(s, &t, e);
}
