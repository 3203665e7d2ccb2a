/* store/index.h -- index keys, record encoding and the LMDB helpers the
 * other files share. Private to src/store/. */
#ifndef TARN_STORE_INDEX_H
#define TARN_STORE_INDEX_H

#include "internal.h"

#include "base/arena.h"
#include "base/buf.h"

/* Index keys: bucket "\0" logical, where logical is the object key (or
 * key "\0" upload id for uploads). When that exceeds IKEY_SHORT_MAX bytes
 * the key takes the long form: bucket "\0" the first store__ikey_room() bytes of
 * logical, then SHA-256(logical); the record keeps the whole logical key.
 * See index.c for why this keeps listings in order. */
#define IKEY_SHORT_MAX 478
#define IKEY_HASH 32
#define IKEY_MAX (IKEY_SHORT_MAX + IKEY_HASH)  /* 510 <= LMDB's 511 */

typedef struct ikey {
  size_t n;               /* bytes used */
  uint8_t b[IKEY_MAX];    /* the key */
} ikey;

/* Logical bytes a short-form key of this bucket holds (the long form's
 * truncated prefix has exactly this length). */
size_t store__ikey_room(size_t bucket_len);
/* The index key of (bucket, logical); returns true for the long form. */
bool store__ikey_make(ikey *k, const char *bucket, const void *lk, size_t lkn);
/* The key to MDB_SET_RANGE to for the first entry >= logical: bucket "\0"
 * and at most store__ikey_room() bytes of logical. */
void store__ikey_seek(ikey *k, const char *bucket, const void *lk, size_t lkn);
bool store__ikey_is_long(const MDB_val *k);
MDB_val store__ikey_val(const ikey *k);

/* The logical key of an index entry: from the value for the long form,
 * from the index key otherwise. Pointers into k or v. 0 or ERR_INTERNAL. */
int store__rec_lkey(const MDB_val *k, const MDB_val *v, const uint8_t **lk, size_t *lkn);

/* ---- records (version byte, then length-prefixed fields) ---- */

typedef struct obj_rec {  /* forward-declared in internal.h */
  const uint8_t *lk;      /* the key, not NUL-terminated (decode: into k or v) */
  size_t lkn;             /* its length */
  uint64_t size;          /* bytes */
  int64_t mtime_ms;       /* commit time */
  bool inlined;           /* the bytes are data, in the record; no blob */
  blob_id blob;           /* the bytes, when !inlined */
  const uint8_t *data;    /* the size bytes, when inlined (decode: into v) */
  const char *etag;       /* text; NULL when decoded without an arena */
  str_pair *meta;         /* headers, in order */
  size_t nmeta;
  str_pair *tags;         /* tags, in order */
  size_t ntags;
  const char *upload_id;  /* the multipart upload that made it, or NULL
                             (encode) / "" (decode) */
  const uint64_t *part_sizes; /* encode: the parts' sizes, in order */
  size_t nparts;          /* parts; 0 for an object not made by an upload */
  const uint8_t *parts;   /* decode: the sizes as varints (into v) */
  size_t parts_len;       /* their bytes */
  /* versioning (version.c), the record's optional 'V' section: */
  const char *version_id; /* NULL or "" for the null version */
  uint64_t vseq;          /* the version's place in the bucket's history
                             (newer is larger); 0: none given yet */
  bool marker;            /* a delete marker (only in db_versions) */
  uint8_t lock_mode;      /* STORE_LOCK_* retention mode, 0 for none */
  int64_t retain_until_ms; /* retention date, 0 for none */
  bool legal_hold;        /* a legal hold is on */
  bool legal_hold_set;    /* a legal hold was ever placed (ON, maybe OFF since) */
} obj_rec;

typedef struct upload_rec {
  const uint8_t *lk;      /* key "\0" upload id */
  size_t lkn;
  int64_t initiated_ms;
  str_pair *meta;
  size_t nmeta;
  str_pair *tags;
  size_t ntags;
} upload_rec;

typedef struct part_rec {
  uint64_t size;
  int64_t mtime_ms;
  blob_id blob;
  uint8_t md5[16];        /* of the part's bytes */
  const char *etag;       /* text */
  const char *checksum;   /* NULL when none */
} part_rec;

/* Encoders append to b (which must allow at least 1 MiB). lng: the entry's
 * index key is the long form, so the logical key goes into the record. */
void store__obj_rec_encode(buf *b, const obj_rec *r, bool lng);
void store__upload_rec_encode(buf *b, const upload_rec *r, bool lng);
void store__part_rec_encode(buf *b, const part_rec *r);
/* A bucket record: invariant (8) of index.c. */
typedef struct bucket_rec {
  int64_t created_ms;
  str_pair *tags;   /* the bucket's tags, in the order set */
  size_t ntags;
  str_pair *conf;   /* configuration documents by name ("website", "policy") */
  size_t nconf;
} bucket_rec;
void store__bucket_rec_encode(buf *b, const bucket_rec *r);

/* Decoders: 0 or ERR_INTERNAL (corrupt or unknown version). Strings go to
 * a; obj_rec_decode with a == NULL decodes only lk, size, mtime, inlined,
 * blob and data. An inline object's data points into v, like lk: copy it
 * before the transaction ends or v is overwritten. */
int store__obj_rec_decode(const MDB_val *k, const MDB_val *v, arena *a, obj_rec *r);
/* The part sizes of a decoded record, in a (NULL when it has none); call
 * before v's transaction ends. */
uint64_t *store__obj_rec_parts(const obj_rec *r, arena *a);
int store__upload_rec_decode(const MDB_val *k, const MDB_val *v, arena *a, upload_rec *r);
int store__part_rec_decode(const MDB_val *v, arena *a, part_rec *r);
int store__bucket_rec_decode(const MDB_val *v, int64_t *created_ms);
/* The whole record, strings into a (no tags in a version 1 record, no
 * documents before version 3). */
int store__bucket_rec_parse(const MDB_val *v, arena *a, bucket_rec *r);

/* ---- lookups and updates ---- */

/* Gets the record of (bucket, logical) from db, checking the full logical
 * key for long-form entries. 0, MDB_NOTFOUND or another LMDB code. */
int store__index_get(MDB_txn *txn, MDB_dbi db, const char *bucket, const void *lk, size_t lkn,
              ikey *k, MDB_val *v);
/* Reads the bucket's record into v (NULL: only whether it exists; v's
 * bytes live as long as txn): 0, or ERR_NO_SUCH_BUCKET with "no bucket
 * named 'x'". */
int store__bucket_read(store *s, MDB_txn *txn, const char *bucket, MDB_val *v, err *e);
/* store__bucket_read without the record. */
int store__bucket_check(store *s, MDB_txn *txn, const char *bucket, err *e);
/* Checks the bucket name, begins a read transaction (*txn, the caller's
 * to end) and reads the bucket's record into v (may be NULL). On an error
 * *txn is NULL. */
int store__bucket_read_begin(store *s, const char *bucket, MDB_txn **txn, MDB_val *v, err *e);
/* Adds to the objects and bytes counters. */
int store__counters_add(store *s, MDB_txn *txn, int64_t objects, int64_t bytes, err *e);
int store__counters_get(store *s, MDB_txn *txn, uint64_t *objects, uint64_t *bytes);
/* The part key: upload id (32 hex) then the number, 4 bytes big-endian. */
void store__part_key(uint8_t out[36], const char *upload_id, uint32_t number);

/* Inside a change: makes k -> val the object record (size; blob, or NULL
 * for an inline object), dropping the blob of the record it replaces (if it
 * had one) and updating the counters. */
/* Checks x (NULL: nothing) against the record at k in txn (a: scratch): 0,
 * ERR_PRECONDITION or ERR_NO_SUCH_KEY. */
int store__expect_check(store *s, MDB_txn *txn, const ikey *k, const store_expect *x, arena *a,
                        err *e);
/* x (NULL: nothing) against the current record r (NULL: none), decoded
 * with its strings: 0, ERR_PRECONDITION or ERR_NO_SUCH_KEY. */
int store__expect_judge(const store_expect *x, const obj_rec *r, err *e);
/* A client's etag (quotes allowed) against ours. */
bool store__etag_match(const char *given, const char *ours);
/* vid (at least STORE_VID_MAX bytes) gets the new version's id: "" in a
 * bucket that never had versioning, "null" or a new id otherwise. In a
 * versioned bucket the record is re-encoded with its version fields and the
 * one it replaces kept in db_versions (version.c). */
int store__obj_replace(change *c, MDB_txn *txn, const char *bucket, const ikey *k, MDB_val val,
                       uint64_t size, const blob_id *blob, char *vid, err *e);
/* version.c: store__obj_replace in a bucket with versioning (state). */
int store__version_replace(change *c, MDB_txn *txn, const char *bucket, const ikey *k,
                           MDB_val val, uint64_t size, const blob_id *blob, int state, char *vid,
                           err *e);
/* Adds delta to the named counter in db_counters; *out (optional) gets
 * the new value. */
int store__counter_add(store *s, MDB_txn *txn, const char *name, int64_t delta, uint64_t *out,
                       err *e);
/* Re-encodes a decoded record (its parts included) into b. */
void store__obj_rec_reencode(buf *b, const obj_rec *r, arena *a, bool lng);
/* Inside a change: deletes every upload of a bucket and their parts,
 * dropping the parts' blobs (multipart.c). */
int store__uploads_drop_all(change *c, MDB_txn *txn, const char *bucket, err *e);
/* Inside a change: deletes every part of an upload, dropping their blobs. */
int store__parts_delete_all(change *c, MDB_txn *txn, const char *upload_id, err *e);

/* Fills out from a decoded record, copying into a (but not the inline
 * bytes: out->data is NULL). */
void store__obj_out(arena *a, const char *bucket, const obj_rec *r, store_object *out);
/* Fills out from a decoded upload record, copying into a. */
void store__upload_out(arena *a, const char *bucket, const upload_rec *r, store_upload *out);
/* The error for a record that does not decode. */
int store__corrupt(err *e, const char *what);

#endif
