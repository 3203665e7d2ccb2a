/* athena/athena.h -- query executions over the SQL engine (DESIGN.md §1:
 * Athena): queries run asynchronously on a bounded pool of threads, their
 * results are written through the store to the output location, and their
 * history is kept in LMDB, or with --metadata in PostgreSQL, where every
 * node sees every execution and work group (athena/pg_store.c).
 *
 * Layout of DATA/athena/ (without --metadata):
 *   meta/   LMDB environment: executions (by id), the per-work-group index
 *           (newest first), ClientRequestTokens and work groups
 *
 * Records cross this header as jansson objects in the shapes of the Athena
 * API (QueryExecution, WorkGroup, ResultSet): those shapes are what this
 * part stores, so api/athena.c only moves them to and from the wire.
 *
 * An execution moves through
 *   QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED
 * (QUEUED -> CANCELLED when stopped before it ran). On LMDB only QUEUED and
 * the final states are committed: RUNNING lives in memory, so after a
 * crash an execution is either final or QUEUED, and athena_open turns
 * every one not final into FAILED with a reason that says so (never
 * stuck). On PostgreSQL an execution runs on the node that started it,
 * which writes RUNNING and keeps a lease on it; any node fails it once the
 * lease ran out (its node died), and a StopQueryExecution on another node
 * is seen by the running node within half a second (ATHENA_POLL_MS).
 *
 * Results: a query that succeeds leaves two objects at its output location
 * (OutputLocation/ID.csv and ID.csv.metadata), committed through the store
 * before the execution is SUCCEEDED (so ObjectCreated:Put fires for both).
 * The CSV is written as Athena writes it: a header row, every value in
 * double quotes (quotes doubled), NULL as an empty unquoted field, "\n"
 * after each row. The metadata object is JSON (Athena's own is an internal
 * binary format): {"ColumnInfo": [...as GetQueryResults answers...],
 * "Rows": data rows, "DataScannedInBytes": n}. GetQueryResults reads both
 * back from the store.
 *
 * Errors: ERR_INVALID (InvalidRequestException: bad input, an unknown work
 * group, results not ready), ERR_NOT_FOUND (an unknown execution; also an
 * InvalidRequestException on the wire), ERR_THROTTLED (the queue is full),
 * ERR_IO / ERR_NO_SPACE (the database).
 *
 * Threads: every function is safe to call from many threads at once.
 */
#ifndef TARN_ATHENA_ATHENA_H
#define TARN_ATHENA_ATHENA_H

#include "base/buf.h"
#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct athena athena;

#define ATHENA_MAX_QUERY 262144u        /* bytes of QueryString (AWS: 262,144) */
#define ATHENA_MAX_RESULTS 1000         /* GetQueryResults MaxResults */
#define ATHENA_MAX_LIST 50              /* ListQueryExecutions, ListWorkGroups, BatchGet */
#define ATHENA_MAX_WORKGROUPS 1000      /* work groups per server (AWS's quota) */
#define ATHENA_QUEUE_DEFAULT 1000       /* executions waiting for a thread */

typedef struct catalog catalog;

typedef struct athena_options {
  const char *data_dir;       /* DATA: the part keeps DATA/athena/ */
  store *st;                  /* tables are read and results written here */
  int workers;                /* queries running at once; 0: TARN_ATHENA_MAX_QUERIES, else cores */
  int max_queued;             /* 0: TARN_ATHENA_QUEUE, else ATHENA_QUEUE_DEFAULT */
  uint64_t time_limit_ms;     /* per query; 0: TARN_SQL_TIMEOUT_SECONDS, else 30 minutes */
  uint64_t memory_limit;      /* per query; 0: the engine's default rule (sql.h) */
  catalog *catalog;           /* optional: the tables FROM db.table reads, DDL */
  /* Optional: may principal (the access key that started a query) do
     action ("s3:GetObject", ...) on resource (an S3 ARN)? 0, or an ERR_*
     code with e set that fails the query. Asked for every bucket a query
     lists and object it reads or writes (sql_options.access); a query
     without a principal is the server's own and is never asked. */
  int (*authorize)(void *ctx, const char *principal, const char *action, const char *resource,
                   err *e);
  void *authorize_ctx;
  /* Optional: keep the records in PostgreSQL (--metadata), shared by the
     nodes of one cluster (athena/pg_store.c); DATA/athena/ is then unused. */
  struct pg_pool *metadata;
  const char *node;           /* this node's name (host:DATA), owner of its executions */
} athena_options;

/* Opens (creating) DATA/athena/meta, creates the work group "primary" when
 * missing and fails every execution left QUEUED or RUNNING by a previous
 * process. No query runs until athena_start. */
int athena_open(const athena_options *o, athena **out, err *e);
/* Starts the query threads. */
int athena_start(athena *a, err *e);
/* Cancels the running queries and joins the threads; what was running or
 * queued stays QUEUED in the database and is failed at the next open.
 * Accepts NULL and a system never started. */
void athena_stop(athena *a);
/* Stops, then closes the database. Accepts NULL; returns NULL. */
athena *athena_close(athena *a);

/* ---- query executions (in: the API request object) ---- */

/* StartQueryExecution: *id_out (37 bytes) gets the new execution's id, or
 * the earlier one of the same ClientRequestToken. principal (may be NULL)
 * is recorded as the origin of the result objects. */
int athena_query_start(athena *a, json_t *in, const char *principal, char id_out[37], err *e);
/* GetQueryExecution's QueryExecution (a new reference). */
int athena_query_get(athena *a, const char *id, json_t **out, err *e);
/* StopQueryExecution: a queued execution is CANCELLED at once, a running
 * one as soon as its query notices (milliseconds); a finished one stays. */
int athena_query_stop(athena *a, const char *id, err *e);
/* ListQueryExecutions: {"QueryExecutionIds": [...], "NextToken"?}. */
int athena_query_list(athena *a, json_t *in, json_t **out, err *e);
/* GetQueryResults: {"UpdateCount", "ResultSet", "NextToken"?}. */
int athena_query_results(athena *a, json_t *in, json_t **out, err *e);
/* GetQueryRuntimeStatistics: {"QueryRuntimeStatistics": {...}}. */
int athena_query_runtime(athena *a, const char *id, json_t **out, err *e);

/* ---- work groups ---- */

int athena_workgroup_create(athena *a, json_t *in, err *e);
/* GetWorkGroup's WorkGroup (a new reference). */
int athena_workgroup_get(athena *a, const char *name, json_t **out, err *e);
/* ListWorkGroups: {"WorkGroups": [...summaries], "NextToken"?}. */
int athena_workgroup_list(athena *a, json_t *in, json_t **out, err *e);
int athena_workgroup_update(athena *a, json_t *in, err *e);
int athena_workgroup_delete(athena *a, const char *name, err *e);

/* For /_tarn/metrics: executions queued and running, and totals. */
void athena_metrics(void *ctx, buf *out);

#endif
