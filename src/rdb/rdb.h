/* rdb/rdb.h -- serverless PostgreSQL (Aurora Serverless v2 and the RDS Data
 * API) and the secrets that guard it (a minimal Secrets Manager).
 *
 * A cluster is a real PostgreSQL (Debian's postgresql 15) data directory
 * under DATA/rdb/<cluster>/pg, run by tarn as the unprivileged `postgres`
 * system user, listening on a Unix socket in DATA/rdb/<cluster>/sock (and
 * on 127.0.0.1:Port only when the cluster was created with a Port). tarn
 * starts it on the first statement, pauses it (clean, fast shutdown) after
 * SecondsUntilAutoPause of idleness when MinCapacity is 0, resumes it on the
 * next statement (rdb_when_ready: without the caller's thread), and stops
 * it on close. Snapshots are stopped copies of the data directory.
 *
 * State: DATA/rdb/meta is an LMDB environment (mode 0600) with three
 * databases: "clusters" (identifier -> settings, JSON), "secrets"
 * (name -> secret, JSON, with its value) and "snapshots" (identifier ->
 * record, with the managed master secret's value). Every write returns after its
 * commit.
 *
 * Wire shapes are the caller's; values are JSON in AWS's member names
 * (DBClusterIdentifier, ..., ARN, SecretString, ...), owned by the caller.
 * Every function is safe to call from many threads.
 */
#ifndef TARN_RDB_RDB_H
#define TARN_RDB_RDB_H

#include "base/buf.h"
#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define RDB_RESULT_MAX (1u << 20)       /* the Data API's 1 MB result limit */
#define RDB_TX_IDLE_MS (180 * 1000)     /* a transaction expires after 3 idle minutes */
#define RDB_TX_LIFE_MS (24LL * 3600 * 1000) /* ...and after 24 hours in all (AWS's limits) */
#define RDB_RESUME_WAIT_MS (30 * 1000)  /* a statement waits this long for a resume */
#define RDB_WAITERS_MAX 1024            /* statements parked on resumes, all clusters */
#define RDB_SQL_MAX (64u << 10)         /* bytes of one statement (AWS's limit) */

typedef struct rdb rdb;

typedef struct rdb_options {
  const char *data_dir;   /* DATA: clusters in DATA/rdb */
  const char *pg_bindir;  /* NULL: /usr/lib/postgresql/15/bin */
  const char *run_as;     /* NULL: "postgres" */
  int64_t tx_idle_ms;     /* 0: RDB_TX_IDLE_MS (AWS's 3 minutes) */
  int64_t resume_wait_ms; /* 0: RDB_RESUME_WAIT_MS; < 0: none (AWS's way: the first
                             statement on a paused cluster gets ERR_DB_RESUMING) */
  int64_t resume_delay_ms;/* tests: a resume takes at least this long */
} rdb_options;

/* Opens the state and adopts the clusters (none runs until used). Fails
 * (ERR_UNAVAILABLE) when PostgreSQL or its user is missing. */
int rdb_open(const rdb_options *o, rdb **out, err *e);
/* Stops every running PostgreSQL cleanly. Accepts NULL; returns NULL. */
rdb *rdb_close(rdb *r);

/* Appends Prometheus lines: per cluster whether PostgreSQL runs, how many
 * times it resumed from paused and how long the last resume took. */
void rdb_metrics(rdb *r, buf *out);

/* ---- clusters (RDS) ---- */

/* in: CreateDBCluster's members (DBClusterIdentifier, Engine,
 * MasterUsername, MasterUserPassword or ManageMasterUserPassword,
 * DatabaseName, EnableHttpEndpoint, ServerlessV2ScalingConfiguration
 * {MinCapacity, MaxCapacity, SecondsUntilAutoPause}). Runs initdb.
 * ERR_ENTITY_EXISTS, ERR_INVALID, ERR_INVALID_REQUEST (a bad combination). */
int rdb_cluster_create(rdb *r, json_t *in, json_t **out, err *e);
/* One cluster's description, or all of them (id NULL: an array). */
int rdb_cluster_describe(rdb *r, const char *id, json_t **out, err *e);
/* ModifyDBCluster: EnableHttpEndpoint, ServerlessV2ScalingConfiguration. */
int rdb_cluster_modify(rdb *r, const char *id, json_t *in, json_t **out, err *e);
/* Stops PostgreSQL, removes the cluster, its directory and its managed
 * secret. *out: the description as it was, Status "deleting". */
int rdb_cluster_delete(rdb *r, const char *id, json_t **out, err *e);
/* StopDBCluster / StartDBCluster (ERR_CONFLICT: not in the right state). */
int rdb_cluster_stop(rdb *r, const char *id, json_t **out, err *e);
int rdb_cluster_start(rdb *r, const char *id, json_t **out, err *e);

/* ---- snapshots (a stopped copy of the data directory) ---- */

/* CreateDBClusterSnapshot: stops the cluster for the copy and starts it
 * again if it ran. ERR_CONFLICT with open transactions. */
int rdb_snapshot_create(rdb *r, const char *snap_id, const char *cluster_id, json_t **out,
                        err *e);
/* All (both NULL), one (ERR_NOT_FOUND), or a cluster's; *out an array. */
int rdb_snapshot_describe(rdb *r, const char *snap_id, const char *cluster_id, json_t **out,
                          err *e);
int rdb_snapshot_delete(rdb *r, const char *snap_id, json_t **out, err *e);
/* RestoreDBClusterFromSnapshot: in as CreateDBCluster's (DBClusterIdentifier,
 * EnableHttpEndpoint, ServerlessV2ScalingConfiguration, Port); the master
 * user, password (and managed secret's value) and data are the snapshot's. */
int rdb_snapshot_restore(rdb *r, const char *snap_id, json_t *in, json_t **out, err *e);

/* ---- the Data API ---- */

/* Resumes without a thread: before a statement, the caller asks whether
 * the cluster resourceArn names is ready. 0: run it now (a cluster that
 * does not exist, is stopped or runs: the statement itself tells).
 * RDB_WAITING: the cluster is paused and resuming; fn(ctx, rc, e) is called
 * exactly once from one of rdb's threads: rc 0 when it runs (then run the
 * statement there), ERR_DB_RESUMING when it did not resume within the wait
 * (rdb_options.resume_wait_ms; the resume goes on), another code when it
 * could not start or rdb is closing. ERR_DB_RESUMING at once when waiting is
 * off or too many statements wait (the resume is started all the same). */
#define RDB_WAITING 1
/* Whether that cluster is paused now (a cheap look before rdb_when_ready). */
bool rdb_paused(rdb *r, const char *resource_arn);
typedef void (*rdb_ready_fn)(void *ctx, int rc, const err *e);
int rdb_when_ready(rdb *r, const char *resource_arn, rdb_ready_fn fn, void *ctx, err *e);

/* in: ExecuteStatement's members (resourceArn, secretArn, database, sql,
 * parameters, includeResultMetadata, formatRecordsAs, transactionId);
 * *out: its answer. SQL errors are ERR_INVALID with PostgreSQL's message;
 * ERR_DB_RESUMING when the cluster did not resume in RDB_RESUME_WAIT_MS. */
int rdb_execute(rdb *r, json_t *in, json_t **out, err *e);
/* BatchExecuteStatement (parameterSets): all sets in one transaction. */
int rdb_batch_execute(rdb *r, json_t *in, json_t **out, err *e);
int rdb_tx_begin(rdb *r, json_t *in, json_t **out, err *e);
/* commit true: CommitTransaction, else RollbackTransaction. */
int rdb_tx_end(rdb *r, json_t *in, bool commit, json_t **out, err *e);

/* ---- secrets (Secrets Manager) ---- */

int rdb_secret_create(rdb *r, const char *name, const char *value, const char *description,
                      json_t **out, err *e);
/* id: a name or an ARN. *out has SecretString. ERR_NOT_FOUND. */
int rdb_secret_get(rdb *r, const char *id, json_t **out, err *e);
json_t *rdb_secret_list(rdb *r);
int rdb_secret_delete(rdb *r, const char *id, json_t **out, err *e);

#endif
