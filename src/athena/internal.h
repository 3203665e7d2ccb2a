/* athena/internal.h -- what the files of the athena part share: the system
 * struct, the in-memory job of a queued or running execution, and the
 * result object's writer and reader (result.c).
 */
#ifndef TARN_ATHENA_INTERNAL_H
#define TARN_ATHENA_INTERNAL_H

#include "athena/athena.h"
#include "base/buf.h"
#include "base/lmdb_env.h"
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

struct athena {
  store *st;
  catalog *catalog;         /* borrowed, or NULL */
  int (*authorize)(void *ctx, const char *principal, const char *action, const char *resource,
                   err *e);         /* athena_options.authorize */
  void *authorize_ctx;
  char *dir;
  MDB_env *env;
  MDB_dbi db_execs;         /* id -> QueryExecution JSON ("_" members internal) */
  MDB_dbi db_bywg;          /* WORKGROUP \0 ~seq (8 bytes, big-endian) -> id */
  MDB_dbi db_tokens;        /* ClientRequestToken -> {"Id", "Hash"} */
  MDB_dbi db_wgs;           /* name -> WorkGroup JSON */
  lmdb_committer committer;
  pthread_mutex_t wg_mu;    /* serializes work group read-modify-writes */
  pthread_mutex_t mu;       /* guards the fields below */
  pthread_cond_t work;      /* a job was queued, or stop */
  pthread_cond_t acked;     /* a job's QUEUED record was committed (or failed) */
  ajob *active;             /* queued and running jobs */
  ajob *qhead, *qtail;      /* queued, oldest first */
  int nqueued;
  int nrunning;
  bool stopping;
  pthread_t *threads;
  int nthreads;             /* started */
  int workers;              /* limits */
  int max_queued;
  uint64_t time_limit_ms;
  uint64_t memory_limit;
  uint64_t seq;             /* last execution sequence (committer thread) */
  uint64_t n_succeeded, n_failed, n_cancelled; /* metrics */
};

/* ---- athena.c ---- */
int64_t athena__now_ms(void);
/* JSON 1.1 timestamps: epoch seconds, milliseconds as the fraction. */
json_t *athena__time(int64_t ms);
/* Writes records through the committer: n (dbi, key, JSON or NULL=delete). */
typedef struct athena_put {
  MDB_dbi dbi;
  const void *key;
  size_t klen;
  json_t *val;              /* NULL: delete the key */
} athena_put;
int athena__commit(athena *a, const athena_put *puts, size_t n, err *e);
/* Reads one JSON record; ERR_NOT_FOUND when missing. */
int athena__get(athena *a, MDB_dbi dbi, const char *key, json_t **out, err *e);
/* MaxResults of a request within [min, max]; *out = max when absent (or 0). */
int athena__max_results(json_t *in, json_int_t min, json_int_t max, json_int_t *out, err *e);
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
