/* store/store.h -- the object store: buckets, objects, multipart uploads and
 * listings, durable on local disk (DESIGN.md §4).
 *
 * Layout of the data directory DIR:
 *   DIR/meta/           LMDB environment: the index (buckets, objects,
 *                       uploads, parts, counters) and the change feed
 *                       with the buckets' notification configurations
 *   DIR/blobs/XX/ID     object bytes; ID is 32 hex characters chosen by the
 *                       store, XX its first two; never derived from user keys
 * With an object backend (store_remote_set) blobs live there instead; with
 * the shared index (store_metadata_set) DIR/meta is unused and the index,
 * the feed and the notification configurations are tables in PostgreSQL.
 *
 * Small objects are inline: an object written with store_object_commit (or
 * copied from such an object) whose size is at most STORE_INLINE_MAX keeps
 * its bytes in its LMDB record and has no blob. Parts and the objects
 * multipart uploads make always have a blob, and so do encrypted objects
 * (crypt.c).
 *
 * Durability: a write is acknowledged (the call returns 0) only after its
 * blob is fsync'd, its directory entry fsync'd and the LMDB transaction that
 * references it committed; for an inline object the LMDB commit alone.
 * Concurrent commits are grouped: one committer thread applies every
 * waiting change in one transaction and one sync. Overwrites and deletes
 * switch the index in one commit and unlink the old blob (if it had one)
 * only afterwards; a sweep (at open, and periodically in the background)
 * removes blobs nothing references.
 *
 * Threads: every function is safe to call from many threads at once.
 * Memory: results are allocated in the caller's arena. Readers get a file
 * descriptor of a blob, or a copy of an inline object's bytes in their
 * arena (store_object.data); store_object_read() reads either.
 */
#ifndef TARN_STORE_STORE_H
#define TARN_STORE_STORE_H

#include "base/arena.h"
#include "base/err.h"
#include "base/text.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_MAX_KEY 1024                 /* bytes of UTF-8 */
#define STORE_MAX_META_BYTES 8192          /* all of an object's metadata pairs */
#define STORE_MAX_TAGS 10
#define STORE_MAX_BUCKET_TAGS 50
#define STORE_MAX_BUCKET_CONF (64 << 10)   /* bytes of one bucket configuration document */
#define STORE_MAX_PARTS 10000
#define STORE_MIN_PART_SIZE (5u << 20)     /* every part but the last */
#define STORE_MAX_PART_SIZE (5ull << 30)
#define STORE_MAX_OBJECT_SIZE (5ull << 40)
#define STORE_MAX_LIST_KEYS 1000
/* Objects up to this size are kept inline in their index record: no blob
 * file, so a small PUT costs only its share of a group commit instead of a
 * file fsync and a directory fsync of its own. 16 KiB: small configuration,
 * JSON and log objects fit; a record stays a few LMDB pages (values over
 * ~2 KiB go to overflow pages, which LMDB allocates as contiguous runs, so
 * much larger values fragment the map); a writer buffers at most this much
 * per upload; every inline GET fits the HTTP edge's 64 KiB in-memory path. */
#define STORE_INLINE_MAX (16u << 10)

typedef struct store store;

typedef struct store_bucket {
  const char *name;
  int64_t created_ms;  /* wall clock, milliseconds since the epoch */
} store_bucket;

typedef struct store_object {
  const char *bucket;
  const char *key;
  uint64_t size;
  int64_t mtime_ms;      /* when the object was committed */
  const char *etag;      /* without quotes: 32 hex, or 32 hex "-" N for multipart */
  str_pair *meta;        /* headers to return with the object, as given at
                            put: lower-case names such as "content-type",
                            "x-amz-meta-color", "x-amz-checksum-crc32" */
  size_t nmeta;
  str_pair *tags;        /* object tags (key, value), in the order set */
  size_t ntags;
  const void *data;      /* an inline object's size bytes, copied into the
                            caller's arena, when store_object_get was asked
                            for the bytes (fd not NULL; *fd is then -1);
                            NULL otherwise (blobs, listings, commit results) */
  const char *upload_id; /* the multipart upload that completed it, "" for
                            an object put or copied */
  size_t nparts;         /* its parts (0 when not made by an upload) */
  const uint64_t *part_sizes; /* their sizes, in part order: filled by
                            store_object_get and store_upload_complete
                            only (NULL otherwise) */
  int sse;               /* STORE_SSE_*: how its bytes are encrypted */
  const char *sse_sealed; /* its sealed data key (sse != NONE) */
  const struct store_crypt *crypt; /* the opened data key: set by
                            store_object_get (fd not NULL) for SSE_S3, by
                            store_object_unlock for SSE_C; NULL otherwise */
  const char *version_id; /* NULL in a bucket that never had versioning;
                            else "null" or the version's id */
  bool delete_marker;    /* a delete marker (version lookups, listings) */
  bool is_latest;        /* the key's current version (version listings) */
  int lock_mode;         /* STORE_LOCK_* retention of this version */
  int64_t retain_until_ms; /* its retain-until date (0: none) */
  bool legal_hold;       /* a legal hold is on */
  bool legal_hold_set;   /* a legal hold status was ever set (GetObjectLegalHold
                            answers one only then, as S3) */
  const struct store_remote *remote; /* set by store_object_get (fd not
                            NULL) when the bytes are in the object backend
                            (remote.c): *fd is then -1 and store_reader,
                            store_object_read and store_object_plain_fd
                            read them; NULL otherwise */
  const char *remote_name; /* the backend object, when remote */
} store_object;

/* ---- versioning (version.c) ----
 *
 * A bucket's versioning state is its "versioning" configuration document
 * ("Enabled" or "Suspended"; none: never enabled, and then objects behave
 * exactly as without versioning). Version ids are 32 characters; objects
 * written before versioning was enabled, and while it is suspended, are
 * the "null" version. */
#define STORE_VID_MAX 40                   /* bytes of a version id, NUL included */
enum { STORE_VERSIONING_OFF = 0, STORE_VERSIONING_ENABLED = 1, STORE_VERSIONING_SUSPENDED = 2 };
enum { STORE_LOCK_NONE = 0, STORE_LOCK_GOVERNANCE = 1, STORE_LOCK_COMPLIANCE = 2 };

/* Opens (creating when needed) the store in dir, runs the start-up sweep and
 * starts the committer and background sweep threads. */
int store_open(const char *dir, store **out, err *e);

/* ---- the object backend (remote.c) ----
 * Blob bytes kept in another S3 endpoint; the index stays local. Set once,
 * right after store_open and before any other call. */
typedef struct store_remote store_remote;
typedef struct store_remote_conf {
  const char *url;        /* s3://BUCKET[/PREFIX] */
  const char *endpoint;   /* http(s)://host[:port]; NULL: AWS S3 of region */
  const char *access_key;
  const char *secret_key;
  const char *region;     /* NULL: us-east-1 */
  int timeout_s;          /* a call fails once nothing moved for this long (0: 30) */
  int max_calls;          /* backend calls at once from request threads (0: 16) */
  int delete_delay_s;     /* a dropped object's bytes go no sooner (0: 10) */
  int orphan_grace_s;     /* the orphan sweep's minimum age (0: 3600) */
  int sweep_s;            /* seconds between orphan sweeps (0: 600; one at start) */
} store_remote_conf;
/* Checks the bucket answers (HEAD). Errors: ERR_INVALID (a bad URL or
 * missing keys), ERR_NO_SUCH_BUCKET, ERR_UNAVAILABLE (no answer, refused). */
int store_remote_set(store *s, const store_remote_conf *c, err *e);

/* ---- the shared index (pg_index.c) ----
 * Buckets, objects, uploads, notification configurations and the change
 * feed kept in PostgreSQL instead of DIR/meta, so that several nodes share
 * them (`tarn server --metadata postgres://...`). Needs the object backend
 * (store_remote_set first: every node must reach every blob). Set once,
 * right after store_remote_set and before any other call; p is not owned
 * and must outlive the store. Versioning, object lock, lifecycle rules and
 * SSE-S3 answer ERR_NOT_IMPLEMENTED on such a store. Errors: ERR_INVALID
 * (no object backend), pg_error's (creating the tables). */
struct pg_pool;
int store_metadata_set(store *s, struct pg_pool *p, err *e);
/* The backend url (s3://BUCKET[/PREFIX], NULL: none) this start uses,
 * checked against the one the data directory recorded when it first ran
 * with one (record: record url now if none was; call it so once
 * store_remote_set succeeded). ERR_INVALID when they differ: the index
 * would name bytes that are not there (and the orphan sweep would delete
 * another directory's). */
int store_remote_mark(store *s, const char *url, bool record, err *e);
/* Stops the threads after the pending commits and closes the index. Accepts
 * NULL; returns NULL. */
store *store_close(store *s);

/* ---- buckets ---- */

/* S3's naming rules for new buckets: 3-63 characters of a-z 0-9 . -,
 * starting and ending with a letter or digit, no "..", not an IPv4 address,
 * none of the reserved prefixes ("xn--", "sthree-", "amzn-s3-demo-") or
 * suffixes ("-s3alias", "--ol-s3", "--x-s3", ".mrap", "--table-s3"). */
bool store_bucket_name_valid(const char *name);

int store_bucket_create(store *s, const char *name, err *e);   /* ERR_BUCKET_EXISTS, ERR_INVALID_BUCKET_NAME */
/* store_bucket_create with configuration documents (store_bucket_conf_set)
 * in the same commit, e.g. "versioning" for a bucket made with object lock. */
int store_bucket_create_conf(store *s, const char *name, const str_pair *conf, size_t nconf,
                             err *e);
/* Deletes an empty bucket: multipart uploads still in progress are aborted
 * with it (their parts' blobs unlinked after the commit). Errors:
 * ERR_NO_SUCH_BUCKET, ERR_BUCKET_NOT_EMPTY (objects). */
int store_bucket_delete(store *s, const char *name, err *e);
int store_bucket_get(store *s, const char *name, arena *a, store_bucket *out, err *e); /* ERR_NO_SUCH_BUCKET */
/* Replaces a bucket's tag set (ntags 0 removes it), in one commit. The
 * caller checks the tags (S3's rules); the store bounds them by
 * STORE_MAX_BUCKET_TAGS and the tag lengths. Errors: ERR_NO_SUCH_BUCKET,
 * ERR_INVALID_TAG. */
int store_bucket_tags_set(store *s, const char *name, const str_pair *tags, size_t ntags,
                          err *e);
/* A bucket's tags in the order set (*n 0 when it has none). Errors:
 * ERR_NO_SUCH_BUCKET. */
int store_bucket_tags_get(store *s, const char *name, arena *a, str_pair **tags, size_t *n,
                          err *e);
int store_bucket_list(store *s, arena *a, store_bucket **out, size_t *n, err *e);       /* by name */
/* A bucket's configuration documents ("website", "policy", ...), kept in
 * its record as the caller's text (checked by the caller), durably, in one
 * commit. value NULL removes the document. Errors: ERR_NO_SUCH_BUCKET,
 * ERR_ENTITY_TOO_LARGE (over STORE_MAX_BUCKET_CONF bytes). */
int store_bucket_conf_set(store *s, const char *name, const char *what, const char *value,
                          err *e);
/* The document named what, in a, or *value NULL when the bucket has none.
 * Errors: ERR_NO_SUCH_BUCKET. */
int store_bucket_conf_get(store *s, const char *name, const char *what, arena *a,
                          const char **value, err *e);

/* ---- writing object bytes ---- */

/* Object bytes being written. Create a writer, write the bytes, then hand
 * it to one of the commit calls below, or free it to abandon the bytes.
 * The first STORE_INLINE_MAX bytes are held in the writer's memory; the
 * blob file is created only when more arrive (or the bytes become a part),
 * so an object committed at that size or less never touches blobs/. */
typedef struct store_writer store_writer;

int store_writer_new(store *s, store_writer **out, err *e);
int store_writer_write(store_writer *w, const void *p, size_t n, err *e);
/* The object will have size bytes (a PUT's Content-Length), said before the
 * first write: with an object backend its upload then starts as the bytes
 * come (remote.c (9)). A different final size only costs that overlap. */
void store_writer_expect(store_writer *w, uint64_t size);
uint64_t store_writer_size(const store_writer *w);
/* MD5 of everything written so far (the ETag of a single-part object). */
void store_writer_md5(const store_writer *w, uint8_t out[16]);
/* Unlinks an uncommitted blob (if one was created); accepts NULL; returns
 * NULL. A committed writer is simply released. */
store_writer *store_writer_free(store_writer *w);

/* Commits the written bytes as bucket/key with etag, meta and tags (copied),
 * replacing any current object atomically: inline when they are at most
 * STORE_INLINE_MAX bytes, else as the writer's blob. Durable when it
 * returns 0. The writer is consumed either way (free it after). out
 * (optional) gets the committed record, allocated in a. Errors:
 * ERR_NO_SUCH_BUCKET, ERR_KEY_TOO_LONG, ERR_METADATA_TOO_LARGE, ERR_IO. */
int store_object_commit(store_writer *w, const char *bucket, const char *key,
                        const char *etag, const str_pair *meta, size_t nmeta,
                        const str_pair *tags, size_t ntags,
                        arena *a, store_object *out, err *e);

/* A write's precondition on the object it would replace (S3's conditional
 * writes), checked inside the commit that replaces it, so no other write
 * can come in between. */
typedef struct store_expect {
  bool absent;       /* If-None-Match: *: there must be no object */
  const char *etag;  /* If-Match: the current object's etag (quotes allowed), or NULL */
  /* and the object lock the new version starts with (PutObject's
   * x-amz-object-lock-* headers; else the bucket's default retention): */
  int lock_mode;     /* STORE_LOCK_*, 0 for none */
  int64_t retain_until_ms;
  bool legal_hold;
} store_expect;

/* store_object_commit under x (NULL: none). Errors as store_object_commit,
 * and ERR_PRECONDITION (an object exists, or its etag differs),
 * ERR_NO_SUCH_KEY (x->etag set and there is no object). */
int store_object_commit_if(store_writer *w, const char *bucket, const char *key,
                           const char *etag, const str_pair *meta, size_t nmeta,
                           const str_pair *tags, size_t ntags, const store_expect *x,
                           arena *a, store_object *out, err *e);

/* ---- reading ---- */

/* Looks up bucket/key. When fd is not NULL also gives the object's bytes,
 * consistently with the record returned: for a blob *fd is the blob opened
 * read-only (O_CLOEXEC), which the caller owns and closes; for an inline
 * object *fd is -1 and out->data holds a copy of the bytes in a. Read
 * either with store_object_read(). Errors: ERR_NO_SUCH_BUCKET,
 * ERR_NO_SUCH_KEY, ERR_IO (a blob the record names is missing). */
int store_object_get(store *s, const char *bucket, const char *key, arena *a,
                     store_object *out, int *fd, err *e);

/* Reads up to n bytes of an object's content from offset into p, from
 * o->data when fd is -1, else from fd (both as store_object_get gave them);
 * *got gets the count: less than n only at the end, 0 past it. Errors:
 * ERR_IO and the like from pread. */
int store_object_read(const store_object *o, int fd, uint64_t offset, void *p, size_t n,
                      size_t *got, err *e);

/* Deletes bucket/key; deleting a missing key succeeds (S3 semantics), a
 * missing bucket is ERR_NO_SUCH_BUCKET. *existed (optional) tells which. */
int store_object_delete(store *s, const char *bucket, const char *key, bool *existed, err *e);
/* store_object_delete only when the current object's etag is etag
 * (quotes allowed), checked in the deleting commit. Errors as
 * store_object_delete, and ERR_PRECONDITION (another etag),
 * ERR_NO_SUCH_KEY (no object). */
int store_object_delete_if_match(store *s, const char *bucket, const char *key, const char *etag,
                                 bool *existed, err *e);

/* Copies src to dst without copying a blob's bytes (blobs are immutable;
 * the copy gets a hard link of its own); the copy of an inline object is
 * inline, its bytes copied into the new record. When meta is NULL the
 * source's metadata is kept (directive COPY), otherwise replaced by meta
 * (REPLACE). Tags likewise when tags is NULL. The copy gets a new mtime
 * and the source's etag. */
int store_object_copy(store *s, const char *src_bucket, const char *src_key,
                      const char *dst_bucket, const char *dst_key,
                      const str_pair *meta, size_t nmeta,
                      const str_pair *tags, size_t ntags,
                      arena *a, store_object *out, err *e);

/* Replaces an object's tags (ntags may be 0 to delete them). */
int store_object_tags_set(store *s, const char *bucket, const char *key,
                          const str_pair *tags, size_t ntags, err *e);
/* Replaces an object's metadata in place (its bytes, etag, mtime and tags
 * kept): an ACL set on an existing object. Errors: ERR_NO_SUCH_KEY,
 * ERR_METADATA_TOO_LARGE. */
int store_object_meta_set(store *s, const char *bucket, const char *key,
                          const str_pair *meta, size_t nmeta, err *e);

/* ---- listing ---- */

typedef struct store_list_params {
  const char *prefix;      /* NULL or "" for all */
  const char *delimiter;   /* NULL or "" for none */
  const char *after;       /* exclusive start: a key or a common prefix
                              previously returned; NULL for the start */
  size_t max_keys;         /* 0..STORE_MAX_LIST_KEYS; keys + prefixes */
} store_list_params;

typedef struct store_list_result {
  store_object *objects;   /* in key order (byte-wise) */
  size_t nobjects;
  const char **prefixes;   /* common prefixes, in order, each once */
  size_t nprefixes;
  bool truncated;          /* more entries follow */
  const char *next_after;  /* when truncated: the last key or prefix
                              returned, to pass as `after` next time */
} store_list_result;

/* S3 listing semantics: entries are keys with the prefix, in byte order;
 * with a delimiter, keys that contain it after the prefix roll up into one
 * common prefix (prefix .. delimiter inclusive), counted once toward
 * max_keys. A listing never holds the index open across calls. */
int store_object_list(store *s, const char *bucket, const store_list_params *p,
                      arena *a, store_list_result *out, err *e);

/* ---- multipart uploads ---- */

typedef struct store_upload {
  const char *bucket;
  const char *key;
  const char *upload_id;
  int64_t initiated_ms;
  str_pair *meta;          /* as given at create, applied on complete */
  size_t nmeta;
  str_pair *tags;
  size_t ntags;
  int sse;                 /* STORE_SSE_*: how its parts are encrypted */
  const char *sse_sealed;  /* the upload's sealed data key (sse != NONE) */
} store_upload;

typedef struct store_part {
  int number;              /* 1..10000 */
  uint64_t size;
  int64_t mtime_ms;
  const char *etag;        /* 32 hex, no quotes */
  const char *checksum;    /* the part's x-amz-checksum-* value, or NULL */
} store_part;

/* Creates an upload; *upload_id (arena) is URL-safe text. */
int store_upload_create(store *s, const char *bucket, const char *key,
                        const str_pair *meta, size_t nmeta,
                        const str_pair *tags, size_t ntags,
                        arena *a, const char **upload_id, err *e);
int store_upload_get(store *s, const char *bucket, const char *key, const char *upload_id,
                     arena *a, store_upload *out, err *e);   /* ERR_NO_SUCH_UPLOAD */

/* Commits the writer's bytes as part `number` (replacing an earlier upload
 * of the same number). checksum (optional) is stored with the part. */
int store_part_commit(store_writer *w, const char *bucket, const char *key,
                      const char *upload_id, int number, const char *etag,
                      const char *checksum, arena *a, store_part *out, err *e);

/* Parts of an upload in number order, those with number > after, at most
 * max; *truncated tells whether more follow. */
int store_part_list(store *s, const char *bucket, const char *key, const char *upload_id,
                    int after, size_t max, arena *a, store_part **out, size_t *n,
                    bool *truncated, err *e);

/* What the client names in CompleteMultipartUpload. */
typedef struct store_part_ref {
  int number;
  const char *etag;        /* quotes allowed; compared without them */
} store_part_ref;

/* Joins the named parts into the object bucket/key and ends the upload.
 * The object's record remembers the upload id and the part sizes until it
 * is overwritten or deleted: a repeated complete of the same upload (a
 * client retrying after a lost answer) then succeeds again with the
 * object as it is (same etag), without checking the parts again.
 * Checks: parts in ascending order (ERR_INVALID_PART_ORDER), each exists
 * with that etag (ERR_INVALID_PART), each but the last at least
 * STORE_MIN_PART_SIZE (ERR_ENTITY_TOO_SMALL). The etag is AWS's rule:
 * hex(md5(concatenated binary part md5s)) "-" count. extra_meta (optional)
 * is added to the upload's metadata (e.g. a composite checksum). The object
 * appears in one commit; parts not named are discarded. */
int store_upload_complete(store *s, const char *bucket, const char *key, const char *upload_id,
                          const store_part_ref *parts, size_t nparts,
                          const str_pair *extra_meta, size_t nextra,
                          arena *a, store_object *out, err *e);
/* store_upload_complete under x (NULL: none), checked in the commit that
 * makes the object; errors as store_object_commit_if adds. */
int store_upload_complete_if(store *s, const char *bucket, const char *key,
                             const char *upload_id, const store_part_ref *parts, size_t nparts,
                             const str_pair *extra_meta, size_t nextra, const store_expect *x,
                             arena *a, store_object *out, err *e);
int store_upload_abort(store *s, const char *bucket, const char *key, const char *upload_id,
                       err *e);

/* Uploads in progress in a bucket, ordered by (key, upload_id), after the
 * (key_marker, upload_id_marker) pair, with prefix. */
int store_upload_list(store *s, const char *bucket, const char *prefix,
                      const char *key_marker, const char *upload_id_marker, size_t max,
                      arena *a, store_upload **out, size_t *n, bool *truncated, err *e);

/* ---- notifications: a bucket's configuration and the change feed ----
 *
 * A bucket may carry a notification configuration: opaque text that the
 * events part writes and reads (its JSON). While it has one, every change
 * to an object of the bucket is appended to the change feed in the same
 * LMDB transaction as the change itself, so an acknowledged change always
 * has its feed entry (DESIGN.md §6). Buckets without one cost nothing.
 * The feed is read and trimmed by one consumer (events/dispatch.c). */

#define STORE_MAX_NOTIFICATION (64u << 10)   /* bytes of configuration text */

/* The changes the feed records, named as S3 names its events (without
 * the "s3:" prefix) by store_event_name(). Each write call records its own
 * kind: store_object_commit Put, store_object_copy Copy,
 * store_upload_complete CompleteMultipartUpload, store_object_delete
 * Delete (only when the key existed); store_origin.event overrides it. */
enum store_event {
  STORE_EVENT_NONE = 0,
  STORE_EVENT_PUT,             /* ObjectCreated:Put */
  STORE_EVENT_POST,            /* ObjectCreated:Post */
  STORE_EVENT_COPY,            /* ObjectCreated:Copy */
  STORE_EVENT_COMPLETE,        /* ObjectCreated:CompleteMultipartUpload */
  STORE_EVENT_DELETE,          /* ObjectRemoved:Delete */
  STORE_EVENT_DELETE_MARKER,   /* ObjectRemoved:DeleteMarkerCreated */
  STORE_EVENT_LIFECYCLE_DELETE, /* LifecycleExpiration:Delete (the lifecycle sweep) */
  STORE_EVENT_LIFECYCLE_MARKER, /* LifecycleExpiration:DeleteMarkerCreated (its marker in a
                                   versioned bucket; an origin of LIFECYCLE_DELETE becomes it) */
  STORE_EVENT_MAX
};

/* "ObjectCreated:Put", ...; "" for anything else. */
const char *store_event_name(int event);

/* Who asked for the changes a thread makes: recorded with feed entries. */
typedef struct store_origin {
  int event;                 /* STORE_EVENT_*: replaces the call's own kind; 0 keeps it */
  const char *request_id;    /* the API request (x-amz-request-id), or NULL */
  const char *principal;     /* the caller's access key, or NULL */
  const char *source_ip;     /* the client's address, or NULL */
} store_origin;

/* Sets the origin of the store calls this thread makes from now on (the
 * pointer is kept, not the strings copied: o must stay valid until the
 * next call); NULL clears it. The S3 endpoint sets it around each request. */
void store_origin_set(const store_origin *o);

/* Sets (config non-empty) or removes (NULL or "") a bucket's notification
 * configuration, in one commit. Errors: ERR_NO_SUCH_BUCKET, ERR_INVALID
 * (over STORE_MAX_NOTIFICATION). Deleting the bucket removes it too. */
int store_bucket_notification_set(store *s, const char *bucket, const char *config, err *e);
/* The configuration, or *config NULL when the bucket has none.
 * Errors: ERR_NO_SUCH_BUCKET. */
int store_bucket_notification_get(store *s, const char *bucket, arena *a, const char **config,
                                  err *e);

/* One feed entry. */
typedef struct store_change {
  uint64_t seq;              /* position in the feed: increasing, never reused */
  int event;                 /* STORE_EVENT_* */
  const char *bucket;
  const char *key;
  uint64_t size;             /* created: the object's size; removed: 0 */
  const char *etag;          /* created: without quotes; removed: "" */
  const char *version_id;    /* the version made or removed; "" when unversioned */
  int64_t time_ms;           /* when the change was made (wall clock) */
  const char *request_id;    /* the origin's fields, "" when unknown */
  const char *principal;
  const char *source_ip;
} store_change;

/* Up to max (1..10000) entries with seq > after, in seq order, into a. */
int store_feed_read(store *s, uint64_t after, size_t max, arena *a, store_change **out,
                    size_t *n, err *e);
/* Removes every entry with seq <= upto, in one commit. */
int store_feed_trim(store *s, uint64_t upto, err *e);
/* Entries waiting in the feed (approximate: for metrics). */
uint64_t store_feed_backlog(store *s);
/* Registers the one callback told, from the committer thread after the
 * commit, that entries were appended (it must return quickly: signal a
 * condition variable). NULL removes it. */
void store_feed_watch(store *s, void (*fn)(void *ctx), void *ctx);

/* ---- lifecycle (lifecycle.c) ----
 *
 * A bucket's lifecycle rules are its "lifecycle" configuration document
 * (store_bucket_conf_set), S3's LifecycleConfiguration XML. A background
 * thread applies them every TARN_LIFECYCLE_SWEEP_SECONDS (default 3600):
 * Expiration deletes current objects (feed event LifecycleExpiration:Delete;
 * in a versioned bucket that adds a delete marker, as S3 does),
 * NoncurrentVersionExpiration removes noncurrent versions (days after they
 * became noncurrent, keeping NewerNoncurrentVersions), ExpiredObjectDeleteMarker
 * removes delete markers that are a key's only version, and
 * AbortIncompleteMultipartUpload aborts stale uploads. Transitions are
 * checked and kept but do nothing (one storage tier). A day lasts TARN_LIFECYCLE_DAY_SECONDS
 * (default 86400; shorter for tests). */

typedef struct store_lc_rule {
  const char *id;          /* "" when the rule has none */
  bool enabled;
  const char *prefix;      /* "" for every key */
  str_pair *tags;          /* all must be on the object */
  size_t ntags;
  int64_t size_gt;         /* ObjectSizeGreaterThan, -1 when absent */
  int64_t size_lt;         /* ObjectSizeLessThan, -1 when absent */
  int64_t exp_days;        /* Expiration Days, 0 when absent */
  int64_t exp_date_ms;     /* Expiration Date, 0 when absent */
  int64_t abort_days;      /* AbortIncompleteMultipartUpload, 0 when absent */
  int64_t nc_days;         /* NoncurrentVersionExpiration NoncurrentDays, 0 when absent */
  int64_t nc_keep;         /* its NewerNoncurrentVersions, 0 when absent */
  bool expired_marker;     /* Expiration ExpiredObjectDeleteMarker true */
} store_lc_rule;

typedef struct store_lifecycle {
  store_lc_rule *rules;
  size_t nrules;
} store_lifecycle;

/* Parses and checks a LifecycleConfiguration document as S3 does. Errors:
 * ERR_MALFORMED_XML, ERR_INVALID (InvalidArgument), ERR_INVALID_REQUEST. */
int store_lifecycle_parse(const char *doc, size_t len, arena *a, store_lifecycle *out,
                          err *e);
/* The earliest time (ms since the epoch) an enabled Expiration rule expires
 * o, and that rule's id; false when none applies. */
bool store_lifecycle_expiry(const store_lifecycle *lc, const store_object *o, int64_t *when_ms,
                            const char **rule_id);
/* When an AbortIncompleteMultipartUpload rule aborts an upload of key
 * initiated then, and that rule's id; false when none applies. */
bool store_lifecycle_abort_date(const store_lifecycle *lc, const char *key, int64_t initiated_ms,
                                int64_t *when_ms, const char **rule_id);
/* The length of a lifecycle day in milliseconds. */
int64_t store_lifecycle_day_ms(void);
/* Runs one sweep now: returns how many objects and uploads it removed. */
long store_lifecycle_sweep(store *s, err *e);

/* ---- server-side encryption (crypt.c) ----
 *
 * An encrypted object's bytes are AES-256-GCM in chunks under a data key of
 * its own; the data key is sealed under the server's master key
 * (DIR/sse-master.key, SSE-S3) or the customer's key (SSE-C, never
 * stored). Encrypted objects always have a blob. Readers see plaintext:
 * store_object_read and store_reader decrypt; store_object_plain_fd gives
 * a plain descriptor to readers that need one (mmap). */

enum { STORE_SSE_NONE = 0, STORE_SSE_S3 = 1, STORE_SSE_C = 2 };
#define STORE_SSE_KEY_LEN 32     /* AES-256 */
/* The metadata pair that carries the sealed data key (never shown: the
 * store strips it from store_object.meta and store_upload.meta). Pass it
 * in store_upload_create's meta to make an encrypted upload. */
#define STORE_SSE_META "x-tarn-sse"

/* A fresh data key sealed for mode (STORE_SSE_S3, or STORE_SSE_C with the
 * customer's STORE_SSE_KEY_LEN-byte key); *sealed (in a) is text. The
 * master key is created on first use. Errors: ERR_IO. */
int store_sse_new(store *s, int mode, const uint8_t *customer_key, arena *a,
                  const char **sealed, err *e);
/* From now on w encrypts with the data key sealed (call before the first
 * write): the object or part committed from w is encrypted, its sealed key
 * kept in the object's record. Errors: ERR_DENIED (customer_key does not
 * open it), ERR_INVALID_REQUEST (SSE-C without a key). */
int store_writer_encrypt(store_writer *w, const char *sealed, const uint8_t *customer_key,
                         err *e);
/* Commits to bucket/key a copy of src that cannot share its blob: writes
 * all of src's plaintext (decrypted when src is encrypted and opened) to w,
 * which the caller made (and made encrypt as the target needs), then
 * commits it with the ETag of what w wrote (store_writer_etag_md5), raising
 * ObjectCreated:Copy as any copy does. meta /
 * tags NULL keep src's. Takes fd (as store_object_get gave it; closed in
 * every case). Errors: ERR_IO (src is shorter than its record),
 * store_reader_read's and store_object_commit's. */
int store_writer_commit_copy(store_writer *w, const store_object *src, int fd, const char *bucket,
                             const char *key, const str_pair *meta, size_t nmeta,
                             const str_pair *tags, size_t ntags, arena *a, store_object *out,
                             err *e);
/* A bucket's default encryption (Put/GetBucketEncryption): its document
 * in the bucket record, named STORE_SSE_CONF (the canonical "AES256 true" or
 * "AES256 false"). Without one, the server's default: SSE-S3 when the
 * server runs with TARN_S3_DEFAULT_SSE=AES256, else none. Returns
 * STORE_SSE_S3 or STORE_SSE_NONE; *configured (may be NULL): whether the
 * bucket has a document. */
#define STORE_SSE_CONF "encryption"
int store_bucket_sse_default(store *s, const char *bucket, bool *configured);
/* Encrypts w as bucket's default encryption says (before w's first byte):
 * the one call of every writer that puts objects in a bucket without an
 * S3 request to say how (Firehose, SQL COPY/CTAS, Athena, Batch). *mode
 * (may be NULL): the mode applied. Errors: ERR_IO. */
int store_writer_encrypt_default(store *s, store_writer *w, const char *bucket, int *mode,
                                 err *e);
/* The MD5 to make w's ETag of: store_writer_md5, except for SSE-C writers
 * (as on S3, the ETag of an SSE-C object is not the MD5 of its data). */
void store_writer_etag_md5(const store_writer *w, uint8_t out[16]);
/* Opens o's data key with the customer's key (SSE-C; the store opens
 * SSE-S3 keys by itself). Errors: ERR_DENIED (wrong key),
 * ERR_INVALID_REQUEST (no key given). A no-op for plain objects. */
int store_object_unlock(store *s, store_object *o, const uint8_t *customer_key, arena *a,
                        err *e);

/* A reader of an object's plaintext: plain, inline or encrypted alike,
 * keeping the last chunk it decrypted, for streaming a GET. Takes fd (as
 * store_object_get gave it; closed by store_reader_free); copies what it
 * needs of o (inline bytes excepted: they must outlive the reader). */
typedef struct store_reader store_reader;
store_reader *store_reader_new(const store_object *o, int fd);
/* The reader will read len bytes from first, in order (a GET's range): an
 * object in the backend is then fetched in as few calls as that allows. */
void store_reader_span(store_reader *r, uint64_t first, uint64_t len);
/* store_object_read through the reader. */
int store_reader_read(store_reader *r, uint64_t offset, void *p, size_t n, size_t *got, err *e);
store_reader *store_reader_free(store_reader *r);
/* For readers that need a plain descriptor (mmap, pread): when o is
 * encrypted, replaces *fd (closing it) by a memfd holding the plaintext.
 * Plain objects are left as they are. */
int store_object_plain_fd(const store_object *o, int *fd, err *e);
/* ---- versions (version.c) ---- */

/* The bucket's STORE_VERSIONING_* state. Errors: ERR_NO_SUCH_BUCKET. */
int store_bucket_versioning_get(store *s, const char *bucket, int *state, err *e);
/* Enables or suspends versioning (never back to off), in one commit. */
int store_bucket_versioning_set(store *s, const char *bucket, int state, err *e);
/* "null" or a version id the store could have made. */
bool store_version_id_valid(const char *vid);
/* 0, or ERR_INVALID with S3's message for text that is no version id. */
int store_version_id_check(const char *vid, err *e);

/* store_object_get of one version (version_id NULL: the current one). A
 * delete marker answers 0 with out->delete_marker set and no bytes (*fd
 * -1). Errors: as store_object_get, ERR_INVALID (a malformed id),
 * ERR_NO_SUCH_VERSION. */
int store_object_get_version(store *s, const char *bucket, const char *key,
                             const char *version_id, arena *a, store_object *out, int *fd,
                             err *e);
/* True when key has no current version because its newest one is a delete
 * marker; *vid gets the marker's id (in a). */
bool store_object_latest_marker(store *s, const char *bucket, const char *key, arena *a,
                                const char **vid);

typedef struct store_delete_result {
  char version_id[STORE_VID_MAX]; /* the marker made or the version removed; "" unversioned */
  bool delete_marker;             /* a marker was made, or the version removed was one */
  bool existed;                   /* something was there */
} store_delete_result;

/* DeleteObject as S3 does it: in a bucket that never had versioning, as
 * store_object_delete; otherwise without version_id a new delete marker
 * ("null" one while suspended, replacing the null version), with one that
 * version for good (the next one becomes current). A version under object
 * lock is refused: ERR_DENIED (legal hold, compliance retention, or
 * governance retention without bypass_governance). A version id that
 * names nothing succeeds. Errors: ERR_INVALID (malformed id). */
int store_object_delete_version(store *s, const char *bucket, const char *key,
                                const char *version_id, bool bypass_governance,
                                store_delete_result *out, err *e);

/* store_object_copy from one version of the source (NULL: current). A
 * delete marker as source is ERR_INVALID_REQUEST. A plain source copied
 * into a bucket whose default encryption is SSE-S3 is read and written
 * encrypted (store_writer_encrypt_default), its ETag the MD5 of its data. */
int store_object_copy_version(store *s, const char *src_bucket, const char *src_key,
                              const char *src_version_id,
                              const char *dst_bucket, const char *dst_key,
                              const str_pair *meta, size_t nmeta,
                              const str_pair *tags, size_t ntags,
                              arena *a, store_object *out, err *e);

typedef struct store_version_params {
  const char *prefix;             /* NULL or "" for all */
  const char *delimiter;          /* NULL or "" for none */
  const char *key_marker;         /* start after this key (all its versions) ... */
  const char *version_id_marker;  /* ... or after this version of it */
  size_t max_keys;                /* versions + prefixes, 0..STORE_MAX_LIST_KEYS */
} store_version_params;

typedef struct store_version_list {
  store_object *versions;         /* by key, then newest first: version_id,
                                     delete_marker and is_latest set */
  size_t nversions;
  const char **prefixes;          /* common prefixes */
  size_t nprefixes;
  bool truncated;
  const char *next_key_marker;    /* when truncated */
  const char *next_version_id_marker; /* when truncated; NULL after a prefix */
} store_version_list;

/* ListObjectVersions: current versions (db_objects) merged with the others,
 * in key order, each key's versions newest first. Keys longer than about
 * 460 bytes that share their first 460 may come out of order. */
int store_object_versions(store *s, const char *bucket, const store_version_params *p, arena *a,
                          store_version_list *out, err *e);

/* A change to one version's object lock. */
typedef struct store_lock_change {
  bool set_retention;             /* change mode and retain_until_ms */
  int mode;                       /* STORE_LOCK_*; NONE removes the retention */
  int64_t retain_until_ms;
  bool bypass_governance;         /* may shorten or remove a GOVERNANCE retention */
  bool set_legal_hold;
  bool legal_hold;
} store_lock_change;

/* Applies ch to the version (NULL: the current one), in one commit; vid
 * gets the version's id. A COMPLIANCE retention still running cannot be
 * shortened, removed or made GOVERNANCE; a GOVERNANCE one can be shortened,
 * removed or made COMPLIANCE only with bypass_governance (extending a
 * retention in its own mode needs nothing). Errors: ERR_NO_SUCH_KEY, ERR_NO_SUCH_VERSION,
 * ERR_INVALID, ERR_DENIED, ERR_METHOD_NOT_ALLOWED (a delete marker). */
int store_object_lock_set(store *s, const char *bucket, const char *key, const char *version_id,
                          const store_lock_change *ch, char vid[STORE_VID_MAX], err *e);

/* store_object_tags_set on one version (NULL: the current one); vid gets
 * the version's id ("" in a bucket that never had versioning). Errors:
 * ERR_NO_SUCH_KEY, ERR_NO_SUCH_VERSION, ERR_INVALID, ERR_METHOD_NOT_ALLOWED
 * (a delete marker). */
int store_object_tags_set_version(store *s, const char *bucket, const char *key,
                                  const char *version_id, const str_pair *tags, size_t ntags,
                                  char vid[STORE_VID_MAX], err *e);

/* ---- statistics ---- */

typedef struct store_stats {
  uint64_t buckets;
  uint64_t objects;
  uint64_t bytes;          /* sum of object sizes */
  uint64_t changes;        /* changes committed since open */
  uint64_t commits;        /* LMDB write transactions since open; fewer
                              than changes when commits were grouped */
  uint64_t swept_blobs;    /* unreferenced blobs removed since open */
} store_stats;

void store_stats_get(store *s, store_stats *out);

/* Runs one sweep now (tests): removes unreferenced blobs older than
 * min_age_seconds. Returns how many were removed, or a negative code. */
long store_sweep(store *s, int min_age_seconds, err *e);

#endif
