/* store/pg_index.h -- the store's index in PostgreSQL (pg_index.c), the
 * second implementation behind the store's entry points: each one that
 * reads or changes the index calls these when s->pg is set, the LMDB code
 * otherwise. Records keep the byte form of index.h (encoded and decoded by
 * the same code); only where they live changes. Private to src/store/. */
#ifndef TARN_STORE_PG_INDEX_H
#define TARN_STORE_PG_INDEX_H

#include "index.h"
#include "vtab.h"

/* Rewrites a record: old in, the new encoding appended to b. */
typedef int (*store_rec_edit)(const MDB_val *old, void *arg, arena *a, buf *b, err *e);

/* The SSE-S3 master key shared by every node (table tarn_keys): the one
 * stored, or candidate when none was (the first node's key wins a race). */
int store__pg_master_key(store *s, const uint8_t candidate[32], uint8_t key[32], err *e);

/* ---- buckets ---- */
int store__pg_bucket_create(store *s, const char *name, const MDB_val *rec, err *e);
int store__pg_bucket_delete(store *s, const char *name, err *e);
int store__pg_bucket_update(store *s, const char *name, store_rec_edit fn, void *arg, err *e);
/* The bucket's record into v (in a; v NULL: only whether it exists).
 * Errors: ERR_NO_SUCH_BUCKET. */
int store__pg_bucket_read(store *s, const char *name, arena *a, MDB_val *v, err *e);
int store__pg_bucket_list(store *s, arena *a, store_bucket **out, size_t *n, err *e);
void store__pg_stats(store *s, store_stats *out);

/* ---- objects ---- */
typedef struct pg_put {
  const char *bucket;
  const char *key;
  const ikey *k;               /* its index key (the record's encoding used it) */
  MDB_val val;                 /* the encoded record */
  uint64_t size;
  const blob_id *blob;         /* its bytes, NULL when inline */
  const store_expect *expect;  /* the precondition, or NULL */
  feed_note *note;             /* the change, for the feed */
  char *vid;                   /* out (STORE_VID_MAX): the version made, "" unversioned */
} pg_put;
int store__pg_object_put(store *s, pg_put *p, err *e);
/* The record of bucket/key's version vid (NULL: the current one; "null"
 * allowed), decoded into a (inline bytes copied too); *state (optional)
 * the bucket's STORE_VERSIONING_*. Errors: ERR_NO_SUCH_BUCKET,
 * ERR_NO_SUCH_KEY, store__vt_lookup's. */
int store__pg_object_lookup(store *s, const char *bucket, const char *key, const char *vid,
                            arena *a, obj_rec *r, int *state, err *e);
typedef struct pg_delete {
  const char *bucket;
  const char *key;
  int64_t if_mtime_ms;         /* not 0: only the object committed then */
  const char *if_etag;         /* not NULL: only an object with this etag */
  const char *version_id;      /* not NULL: that version for good (versioning) */
  bool bypass_governance;
  store_delete_result *res;    /* out, when not NULL */
  bool existed;                /* out */
} pg_delete;
int store__pg_object_delete(store *s, pg_delete *d, err *e);
int store__pg_object_edit(store *s, const char *bucket, const char *key, store_rec_edit fn,
                          void *arg, err *e);

/* A row of a scan: key (NUL-terminated), upload id (uploads), record. */
typedef struct pg_row {
  const char *key;
  const char *id;
  MDB_val rec;
} pg_row;
/* At most limit objects with prefix, in key order: after from (NULL: from
 * the prefix on), none under skip (NULL: no skipping). */
int store__pg_object_scan(store *s, const char *bucket, const char *prefix, const char *from,
                          const char *skip, size_t limit, arena *a, pg_row **rows, size_t *n,
                          err *e);

/* ---- versions (the vtab of version.c) ---- */
/* store_object_lock_set, store_object_tags_set_version */
int store__pg_version_update(store *s, const vupdate_arg *l, err *e);
bool store__pg_latest_marker(store *s, const char *bucket, const char *key, arena *a,
                             const char **vid);
int store__pg_object_versions(store *s, const char *bucket, const store_version_params *p,
                              arena *a, store_version_list *out, err *e);

/* ---- multipart uploads ---- */
int store__pg_upload_create(store *s, const char *bucket, const char *key, const char *id,
                            const MDB_val *rec, err *e);
/* Errors: ERR_NO_SUCH_BUCKET, ERR_NO_SUCH_UPLOAD. */
int store__pg_upload_read(store *s, const char *bucket, const char *key, const char *id,
                          arena *a, MDB_val *v, err *e);
/* Uploads with prefix ordered by (key, id), after (key_marker, id_marker)
 * (id_marker NULL or "": after every upload of key_marker). */
int store__pg_upload_scan(store *s, const char *bucket, const char *prefix,
                          const char *key_marker, const char *id_marker, size_t limit, arena *a,
                          pg_row **rows, size_t *n, err *e);
int store__pg_part_put(store *s, const char *bucket, const char *key, const char *id, int number,
                       const MDB_val *rec, err *e);
/* Part numbers above after, in order, at most max, with their records. */
int store__pg_parts_read(store *s, const char *id, int after, size_t max, arena *a, int **numbers,
                         MDB_val **recs, size_t *n, err *e);
typedef struct pg_complete {
  const char *upload_id;
  const int *numbers;          /* the parts named */
  const blob_id *blobs;        /* the blob each had when validated */
  size_t nparts;
  pg_put put;                  /* the object they make */
} pg_complete;
int store__pg_upload_complete(store *s, pg_complete *c, err *e);
int store__pg_upload_abort(store *s, const char *bucket, const char *key, const char *id,
                           err *e);

/* ---- notifications and the feed ---- */
int store__pg_notify_set(store *s, const char *bucket, const char *config, err *e);
int store__pg_notify_get(store *s, const char *bucket, arena *a, const char **config, err *e);
int store__pg_feed_read(store *s, uint64_t after, size_t max, arena *a, store_change **out,
                        size_t *n, err *e);
int store__pg_feed_trim(store *s, uint64_t upto, err *e);
uint64_t store__pg_feed_backlog(store *s);

#endif
