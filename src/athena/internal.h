/* athena/internal.h -- what the files of the athena part share: the system
 * struct, the in-memory job of a queued or running execution, and the
 * result object's writer and reader (result.c).
 */
#ifndef TARN_ATHENA_INTERNAL_H
#define TARN_ATHENA_INTERNAL_H

#include "athena/athena.h"
#include "base/buf.h"
#include "sql/sql.h"

#include <pthread.h>
#include <stdatomic.h>

/* A queued or running execution. Lives from StartQueryExecution until its
 * final state is committed; lookups see it before the database. */
typedef struct ajob {
  char id[37];
  json_t *rec;              /* the QueryExecution record (under athena.mu) */
  char *sql;                /* the statement (copied out of rec) */
  char *out_bucket;         /* where the results go */
  char *out_key;            /* PREFIX/ID.csv */
  char *database;           /* QueryExecutionContext, "" when none */
  char *catalog;
  char *principal;          /* the caller (origin of the result objects), or NULL */
  char *token;              /* its ClientRequestToken, or NULL */
  atomic_bool cancel;       /* the engine's cancel flag */
  bool stop_asked;          /* StopQueryExecution (under mu): CANCELLED, not FAILED */
  bool running;             /* a thread took it (under mu) */
  bool unrecorded;          /* its final record could not be committed: rec
                               holds FAILED, in memory only (under mu) */
  int acked;                /* its QUEUED record: 0 being committed, 1 committed,
                               -1 the commit failed (under mu) */
  int64_t submit_ms;        /* wall clock */
  int64_t start_ms;         /* when a thread took it */
  _Atomic uint64_t scanned; /* bytes scanned so far (the engine's progress) */
  uint64_t cutoff;          /* the work group's BytesScannedCutoffPerQuery, 0: none */
  atomic_bool over_cutoff;  /* the query passed it (then cancelled) */
  struct ajob *next;        /* athena.active */
  struct ajob *qnext;       /* athena.queue while QUEUED */
} ajob;

/* ---- the state's two sides ----
 * athena.c and workgroup.c keep the logic (checks, the queue, the threads);
 * a side keeps the records: lmdb_store.c in DATA/athena/meta (one node),
 * pg_store.c in PostgreSQL (several nodes, `--metadata`). Records are the
 * same JSON documents on both; keys and tokens read the same. */
enum athena_space { AS_EXECS, AS_WGS };

typedef struct athena_side {
  /* One JSON record; ERR_NOT_FOUND (message naming key) when missing. On
     a shared side an execution whose owner's lease ran out is failed first
     (pg_store.c (3)). */
  int (*get)(athena *a, int space, const char *key, json_t **out, err *e);
  /* StartQueryExecution's write, one commit: the token (when not NULL) is
     checked and taken, the record and its work group's index entry added.
     found gets the token's earlier execution instead (nothing written). */
  int (*start)(athena *a, json_t *rec, const char *id, const char *wg, const char *token,
               const char *hash, char found[37], err *e);
  /* The committed execution of a token: 1 (found filled), 0 none, or an
     error (ERR_INVALID: used with other parameters). */
  int (*token_lookup)(athena *a, const char *token, const char *hash, char found[37], err *e);
  /* A page of wg's execution ids, newest first, from token (16 hex
     digits, or NULL); next gets the token of the next page or "". */
  int (*list)(athena *a, const char *wg, const char *token, json_int_t max, json_t **ids,
              char next[17], err *e);
  /* An execution's final record, written only while the execution is
     still this node's and not final. */
  int (*finish)(athena *a, const char *id, json_t *rec, err *e);
  /* Work groups: create fails (ERR_INVALID) when the name is taken or
     there are max groups; update runs fn over the record and writes it
     back, one read-modify-write; delete: ERR_NOT_FOUND when missing. */
  int (*wg_create)(athena *a, const char *name, json_t *rec, size_t max, err *e);
  int (*wg_update)(athena *a, const char *name, int (*fn)(json_t *wg, void *arg, err *e),
                   void *arg, err *e);
  int (*wg_delete)(athena *a, const char *name, err *e);
  /* A page of whole records in name order from token (a name, or NULL);
     *next a name (malloc'd) or NULL. */
  int (*wg_list)(athena *a, const char *token, json_int_t max, json_t **list, char **next,
                 err *e);
  /* ---- shared sides only (NULL on LMDB) ---- */
  /* The job started running: its record (RUNNING) is written, the lease
     renewed. 1: the execution is no longer this node's (dropped). */
  int (*running)(athena *a, const char *id, json_t *rec, err *e);
  /* Asks the node running id to cancel it (StopQueryExecution). */
  int (*stop_remote)(athena *a, const char *id, err *e);
  /* Called every ATHENA_POLL_MS by the watch thread: when local (this
     node has executions), returns the ids whose stop was asked elsewhere
     (cancel). Every athena.renew_ms, recs is not NULL: this node's
     executions (id -> the record of a running one, null for a queued
     one), whose leases it renews, returning those no longer this node's
     (lost); and it fails the executions of other nodes whose lease ran
     out. */
  int (*watch)(athena *a, bool local, json_t *recs, json_t **cancel, json_t **lost, err *e);
  void (*close)(athena *a);
  bool shared;
} athena_side;

#define ATHENA_POLL_MS 500

struct athena {
  store *st;
  catalog *catalog;         /* borrowed, or NULL */
  int (*authorize)(void *ctx, const char *principal, const char *action, const char *resource,
                   err *e);         /* athena_options.authorize */
  void *authorize_ctx;
  const athena_side *side;
  void *impl;               /* the side's own state */
  char *node;               /* this node's name (athena_options.node), or NULL */
  pthread_mutex_t wg_mu;    /* serializes work group read-modify-writes on this node */
  pthread_mutex_t mu;       /* guards the fields below */
  pthread_cond_t work;      /* a job was queued, or stop */
  pthread_cond_t acked;     /* a job's QUEUED record was committed (or failed) */
  pthread_cond_t wake;      /* the watch thread: stop */
  ajob *active;             /* queued and running jobs */
  ajob *qhead, *qtail;      /* queued, oldest first */
  int nqueued;
  int nrunning;
  bool stopping;
  pthread_t *threads;
  int nthreads;             /* started */
  pthread_t watcher;        /* shared sides: leases and remote stops */
  bool watching;
  int64_t renew_ms;         /* shared sides: how often leases are renewed */
  int workers;              /* limits */
  int max_queued;
  uint64_t time_limit_ms;
  uint64_t memory_limit;
  uint64_t n_succeeded, n_failed, n_cancelled; /* metrics */
};

/* ---- athena.c ---- */
int64_t athena__now_ms(void);
/* JSON 1.1 timestamps: epoch seconds, milliseconds as the fraction. */
json_t *athena__time(int64_t ms);
/* Reads one JSON record; ERR_NOT_FOUND when missing. */
int athena__get(athena *a, int space, const char *key, json_t **out, err *e);
/* The execution record as a stopped or crashed node leaves it: FAILED with
 * reason msg at now (rec changed in place). */
void athena__fail_rec(json_t *rec, const char *msg, int64_t now);
/* Orders the sides open: data_dir/athena/meta, or the shared pool. */
int athena__lmdb_open(athena *a, const char *data_dir, err *e);
struct pg_pool;
int athena__pg_open(athena *a, struct pg_pool *pool, err *e);
/* MaxResults of a request within [min, max]; *out = max when absent (or 0). */
int athena__max_results(json_t *in, json_int_t min, json_int_t max, json_int_t *out, err *e);
/* ERR_INVALID: a ClientRequestToken reused with other parameters. */
int athena__token_mismatch(err *e);
/* "InvalidRequestException"-style validation message for a member. */
int athena__invalid(err *e, const char *member, const char *constraint);

/* ---- workgroup.c ---- */
/* Makes "primary" when missing (at open). */
int athena__workgroup_init(athena *a, err *e);
/* The work group's record (a new reference): ERR_INVALID when unknown. */
int athena__workgroup_load(athena *a, const char *name, json_t **out, err *e);

/* ---- result.c ---- */
typedef struct result_writer {
  store *st;
  struct store_writer *w;   /* the CSV's bytes */
  buf line;                 /* formatted rows waiting to be written */
  buf cell;                 /* one cell's text */
  json_t *columns;          /* ColumnInfo */
  size_t ncols;
  uint64_t rows;            /* data rows written */
  uint64_t bytes;           /* CSV bytes */
} result_writer;

/* The result's bytes are encrypted as bucket's default encryption says. */
int athena__result_init(result_writer *rw, store *st, const char *bucket, err *e);
void athena__result_release(result_writer *rw);
/* The sink that writes rows into rw. */
sql_sink athena__result_sink(result_writer *rw);
/* Commits ID.csv then ID.csv.metadata at bucket/key (key ends in .csv). */
int athena__result_commit(result_writer *rw, const char *bucket, const char *key,
                          uint64_t scanned, err *e);
/* One page of GetQueryResults read back from bucket/key from byte offset:
 * up to max rows (the header row first when offset is 0). *next gets the
 * offset of the next page, or 0 when this is the last. */
int athena__result_page(store *st, const char *bucket, const char *key, uint64_t offset,
                        size_t max, json_t **result_set, uint64_t *next, err *e);

#endif
