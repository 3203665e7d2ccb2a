/* store/internal.h -- the store's private state and the small helpers every
 * file of src/store/ shares. Never included outside src/store/.
 *
 * The other private headers say who owns what:
 *   blob.h    blob names, the writer, the in-flight set (blob.c)
 *   index.h   index keys, record encoding, LMDB helpers (index.c)
 *   commit.h  changes and the group committer (commit.c)
 *   pg_index.h the index in PostgreSQL, used instead of LMDB when s->pg is
 *             set (pg_index.c)
 *
 * Functions shared between the store's files are named store__* (internal,
 * as libuv's uv__), so they never collide with another part's at link time.
 */
#ifndef TARN_STORE_INTERNAL_H
#define TARN_STORE_INTERNAL_H

#include "store.h"

#include "base/buf.h"
#include "base/lmdb_env.h"
#include "base/pg.h"

#include <lmdb.h>
#include <pthread.h>

#define BUCKET_MAX 63          /* longest valid bucket name */
#define STORE_DIR_MAX 3000     /* longest data directory path we accept */

typedef struct blob_id {
  uint8_t b[16];               /* random; b[0] in hex names the directory */
} blob_id;

typedef struct change change;

struct store {
  char *dir;                   /* the data directory, as given to store_open */
  MDB_env *env;                /* DIR/meta */
  MDB_dbi db_buckets;          /* bucket name -> bucket record */
  MDB_dbi db_objects;          /* index key (bucket, key) -> object record */
  MDB_dbi db_uploads;          /* index key (bucket, key "\0" id) -> upload record */
  MDB_dbi db_parts;            /* upload id (32 hex) + number (4 bytes BE) -> part record */
  MDB_dbi db_counters;         /* "objects", "bytes" -> 8 bytes LE */
  MDB_dbi db_blobs;            /* blob id (16 bytes) -> kind: every referenced blob */
  MDB_dbi db_notify;           /* bucket name -> notification configuration text (feed.c) */
  MDB_dbi db_feed;             /* seq (8 bytes BE) -> change feed entry (feed.c) */
  MDB_dbi db_versions;         /* bucket, key, ~seq -> noncurrent versions and delete markers (version.c) */

  lmdb_committer committer;    /* the one thread that writes to LMDB (commit.c) */
  pthread_mutex_t mu;          /* guards everything down to `feed_ctx` */
  pthread_cond_t sweep_wake;   /* the sweeper waits (monotonic clock): stop */
  bool stopping;               /* store_close began */
  bool sweeper_running;        /* sweeper was started (join it) */
  pthread_t sweeper;           /* the background sweep */
  bool lifecycle_running;      /* the lifecycle thread was started (join it) */
  pthread_t lifecycle;         /* the lifecycle sweep (lifecycle.c) */
  uint64_t swept;              /* blobs removed by sweeps since open */
  void (*feed_watch)(void *);  /* told after a commit that appended to the feed */
  void *feed_ctx;              /* its argument */

  pthread_mutex_t sweep_mu;    /* one sweep at a time */
  pthread_mutex_t fly_mu;      /* guards fly */
  blob_id *fly;                /* blobs created, not yet committed nor removed */
  size_t nfly;                 /* entries in fly */
  size_t capfly;               /* entries allocated */

  pthread_mutex_t crypt_mu;    /* guards the two below (crypt.c) */
  bool crypt_loaded;           /* master holds DIR/sse-master.key */
  uint8_t master[32];          /* the server-side encryption master key */

  store_remote *remote;        /* the object backend (remote.c), or NULL: local files */
  pg_pool *pg;                 /* the shared index in PostgreSQL (pg_index.c), or NULL:
                                  the LMDB index above; not owned */
  char node[33];               /* this node's name in the feed's claims (pg_index.c) */
};

/* Wall clock in milliseconds since the epoch. */
int64_t store__clock_ms(void);

/* Begins a read-only transaction (usable from any thread: MDB_NOTLS). */
int store__read_begin(store *s, MDB_txn **txn, err *e);

/* Argument checks shared by the entry points. A bucket name too long to be
 * valid cannot exist (ERR_NO_SUCH_BUCKET); keys are 1..STORE_MAX_KEY bytes;
 * metadata at most STORE_MAX_META_BYTES, tags at most STORE_MAX_TAGS. */
int store__check_bucket_arg(const char *bucket, err *e);
int store__check_key(const char *key, err *e);
int store__check_meta(const str_pair *meta, size_t nmeta, err *e);
int store__check_tags(const str_pair *tags, size_t ntags, err *e);

/* feed.c: inside a change's apply, appends what it did to the change feed
 * when the bucket has a notification configuration (event: STORE_EVENT_*,
 * replaced by the origin's when set). */
typedef struct feed_note {
  int event;                   /* STORE_EVENT_* */
  const char *bucket;
  const char *key;             /* NUL-terminated */
  uint64_t size;
  const char *etag;            /* NULL for removals */
  int64_t time_ms;
  const char *version_id;      /* the version made or removed; NULL or "" when unversioned */
} feed_note;
int store__feed_append(change *c, MDB_txn *txn, const feed_note *n, err *e);
/* feed.c: the byte form of a feed entry (the origin's event replaces the
 * note's when set), and back (all of ch but seq): 0 or ERR_INTERNAL. */
void store__feed_encode(buf *b, const feed_note *n, const store_origin *o);
int store__feed_decode(const MDB_val *v, arena *a, store_change *ch);
/* feed.c: the thread's origin (store_origin_set), or NULL. */
const store_origin *store__origin_current(void);
/* feed.c: inside a change, removes a bucket's configuration (bucket delete). */
int store__notify_drop(store *s, MDB_txn *txn, const char *bucket, err *e);

/* sweep.c: removes unreferenced blobs older than min_age seconds. */
long store__sweep_run(store *s, int min_age, err *e);
int store__sweeper_start(store *s, err *e);
/* object.c: store_object_delete, but only while the object is the one
 * committed at mtime_ms (0: any); *existed false when it was not. */
int store__object_delete_if(store *s, const char *bucket, const char *key, int64_t mtime_ms,
                            bool *existed, err *e);
/* version.c: the bucket's versioning state (STORE_VERSIONING_*), read in
 * txn. Errors: ERR_NO_SUCH_BUCKET. */
int store__versioning_in(store *s, MDB_txn *txn, const char *bucket, int *state, err *e);
/* version.c: a DeleteObject in a bucket with versioning (d->version_id NULL:
 * a new delete marker; else that version for good). */
typedef struct store_vdelete {
  const char *bucket;
  const char *key;
  const char *version_id;     /* NULL: add a delete marker */
  bool bypass_governance;
  int64_t if_mtime_ms;        /* not 0: only while the current version is that one */
  const char *if_etag;        /* not NULL: only while the current version has it */
  store_delete_result *out;   /* what happened */
} store_vdelete;
int store__version_delete(change *c, MDB_txn *txn, const store_vdelete *d, arena *a, err *e);
/* version.c: the record of key's version vid ("null" allowed) in txn,
 * owned by a. Errors: ERR_INVALID (not a version id), ERR_NO_SUCH_VERSION. */
struct obj_rec;
int store__version_lookup(store *s, MDB_txn *txn, const char *bucket, const char *key,
                          const char *vid, arena *a, struct obj_rec *r, err *e);
/* lifecycle.c: starts the thread that applies lifecycle rules. */
int store__lifecycle_start(store *s, err *e);

#endif
