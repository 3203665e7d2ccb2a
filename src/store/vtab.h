/* store/vtab.h -- the tables versioning works on (version.c), whichever
 * index holds them: LMDB's db_objects/db_versions (version.c) or
 * PostgreSQL's tarn_objects/tarn_versions (pg_index.c).
 *
 * version.c decides what a versioned put, delete or lock change does (one
 * code path); a vtab only reads and writes the records it names, inside the
 * one transaction of that change. Private to src/store/.
 */
#ifndef TARN_STORE_VTAB_H
#define TARN_STORE_VTAB_H

#include "index.h"

typedef struct vtab vtab;

/* Each returns 0 or an error code; the getters MDB_NOTFOUND when there is
 * no such record. Records read are decoded into a, with their whole key
 * (lk) and their strings owned by a. */
typedef struct vtab_ops {
  /* key's current version (the object a plain GET reads) */
  int (*cur_get)(vtab *t, const uint8_t *lk, size_t lkn, arena *a, obj_rec *r, err *e);
  int (*cur_put)(vtab *t, const obj_rec *r, arena *a, err *e);
  int (*cur_del)(vtab *t, const uint8_t *lk, size_t lkn, err *e);
  /* the older versions and delete markers: vid "null", an id, or NULL for
     the newest of key */
  int (*ver_get)(vtab *t, const uint8_t *lk, size_t lkn, const char *vid, arena *a, obj_rec *r,
                 err *e);
  int (*ver_put)(vtab *t, const obj_rec *r, arena *a, err *e);   /* at r->vseq */
  int (*ver_del)(vtab *t, const obj_rec *r, err *e);             /* the one at r->vseq */
  /* the next version sequence number */
  int (*seq_next)(vtab *t, uint64_t *seq, err *e);
  /* the bytes of a version: referenced by a new record, or no longer */
  int (*blob_ref)(vtab *t, const blob_id *id, err *e);
  int (*blob_drop)(vtab *t, const blob_id *id, err *e);
  /* the store's counters (current versions only) */
  int (*count)(vtab *t, int64_t objects, int64_t bytes, err *e);
  /* the bucket's record (into a); ERR_NO_SUCH_BUCKET */
  int (*bucket_rec)(vtab *t, arena *a, MDB_val *v, err *e);
  /* appends to the change feed (when the bucket has notifications) */
  int (*feed)(vtab *t, const feed_note *n, err *e);
} vtab_ops;

struct vtab {
  const vtab_ops *ops;
  store *s;
  const char *bucket;
  void *ctx;                   /* the implementation's */
};

/* version.c: the STORE_VERSIONING_* state a bucket record says */
int store__versioning_of(const MDB_val *brec);

/* version.c, on any vtab (t->bucket the bucket):
 * the bucket's STORE_VERSIONING_* state */
int store__vt_state(vtab *t, arena *a, int *state, err *e);
/* store__obj_replace in a bucket with versioning (state): rec (encoded
 * with key k) becomes the current version; vid gets its id. */
int store__vt_replace(vtab *t, const ikey *k, MDB_val rec, uint64_t size, const blob_id *blob,
                      int state, char *vid, err *e);
/* a DeleteObject in a bucket with versioning (internal.h store_vdelete) */
int store__vt_delete(vtab *t, const store_vdelete *d, arena *a, err *e);
/* the record of key's version vid ("null" allowed), owned by a. Errors:
 * ERR_INVALID (not a version id), ERR_NO_SUCH_VERSION. */
int store__vt_lookup(vtab *t, const char *key, const char *vid, arena *a, obj_rec *r, err *e);
/* whether key's newest version is a delete marker; *vid its id (in a) */
bool store__vt_latest_marker(vtab *t, const char *key, arena *a, const char **vid);

/* A version-changing edit (object lock, tags) of one record. */
typedef int (*version_edit)(obj_rec *r, const void *ctx, arena *a, err *e);
typedef struct vupdate_arg {
  const char *bucket;
  const char *key;
  const char *version_id;     /* NULL: the current version */
  version_edit edit;
  const void *ctx;            /* edit's */
  char *vid;                  /* out: the version changed */
} vupdate_arg;
/* Finds the version, lets the edit change it and writes it back. */
int store__vt_update(vtab *t, const vupdate_arg *l, arena *a, err *e);

/* ---- ListObjectVersions ---- */

/* One entry of a version listing, in the order S3 lists them: by key, the
 * current version first, then newest first. */
typedef struct vt_entry {
  const uint8_t *lk;           /* its key, until the listing ends */
  size_t lkn;
  MDB_val k;                   /* its record as stored, for the walk's decode */
  MDB_val v;
  bool current;
} vt_entry;
/* The next entry (1), none left (0) or an error. */
typedef int (*vt_next)(void *it, arena *a, vt_entry *out, err *e);
/* An entry's record into r (strings in a), for the entries listed only:
 * 0 or an error. */
typedef int (*vt_decode)(void *it, const vt_entry *en, arena *a, obj_rec *r, err *e);
/* Lists the versions of bucket from the entries next yields, which start
 * at the first key >= the params' key marker or prefix (store__vt_from). */
int store__vt_list(const char *bucket, const store_version_params *p, vt_next next,
                   vt_decode decode, void *it, arena *a, store_version_list *out, err *e);
/* Where a listing starts: the key marker or the prefix, the later one. */
const char *store__vt_from(const store_version_params *p);

#endif
