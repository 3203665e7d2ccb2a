/* rdb/rdb_internal.h -- what rdb.c (state, processes, secrets) and data.c
 * (the Data API's statements) share. Not part of the part's contract.
 */
#ifndef TARN_RDB_INTERNAL_H
#define TARN_RDB_INTERNAL_H

#include "rdb/rdb.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <sys/types.h>

#define RDB_POOL_MAX 8    /* idle connections kept per cluster */
#define RDB_TX_MAX 256    /* open transactions, all clusters */

typedef struct rdb_conn {
  PGconn *pg;
  char *key;              /* "database\nuser\npassword" it was opened with */
} rdb_conn;

typedef struct rdb_cluster {
  char id[64];            /* DBClusterIdentifier, lower case */
  json_t *rec;            /* the durable settings (rdb->mu guards its changes) */
  pthread_mutex_t mu;     /* guards everything below */
  pid_t pid;              /* the postmaster, 0 when paused or stopped */
  int64_t last_used_ms;   /* monotonic: last statement's end */
  int active;             /* statements in flight on borrowed connections */
  int ntx;                /* open transactions (each pins a connection) */
  rdb_conn idle[RDB_POOL_MAX];
  int nidle;
  int64_t last_resume_ms; /* how long the last start from paused took */
  uint64_t resumes;       /* starts from paused */
  bool deleted;
  bool starting;          /* a resume job is queued or runs (rdb->wmu guards it) */
  char dir[4096];         /* DATA/rdb/<id> */
} rdb_cluster;

typedef struct rdb_tx {
  char id[48];            /* "" when the slot is free */
  rdb_cluster *c;
  PGconn *pg;
  int64_t last_used_ms;
  int64_t begun_ms;
  bool busy;              /* a statement runs on it */
} rdb_tx;

/* A statement parked until its cluster resumes (see rdb_when_ready). */
typedef struct rdb_waiter {
  rdb_cluster *c;
  rdb_ready_fn fn;
  void *ctx;
  int64_t deadline_ms;    /* monotonic */
  int rc;                 /* for the ready list: what fn is told */
  err e;
  struct rdb_waiter *next;
} rdb_waiter;

#define RDB_WORKERS 4     /* threads that resume clusters and run parked statements */

struct rdb {
  char root[4000];        /* DATA/rdb */
  char bindir[1024];
  int64_t tx_idle_ms;     /* a transaction idle this long is rolled back */
  uid_t uid;              /* the user PostgreSQL runs as */
  gid_t gid;
  void *env;              /* MDB_env */
  unsigned dbi_clusters;
  unsigned dbi_secrets;
  unsigned dbi_snapshots;
  pthread_mutex_t mu;     /* guards clusters, secrets, graveyard, writes */
  json_t *secrets;        /* name -> record */
  json_t *snapshots;      /* identifier -> record (with the managed secret's value) */
  rdb_cluster **clusters;
  size_t nclusters;
  rdb_cluster **graveyard; /* deleted clusters, freed at close */
  size_t ngraveyard;
  rdb_cluster **halfmade;  /* at open: clusters whose initdb never finished */
  size_t nhalfmade;
  pthread_mutex_t tx_mu;  /* guards txs */
  rdb_tx txs[RDB_TX_MAX];
  pthread_t reaper;
  pthread_mutex_t stop_mu;
  pthread_cond_t stop_cv;
  bool stopping;
  bool reaper_running;
  int64_t resume_wait_ms; /* < 0: none */
  int64_t resume_delay_ms;
  pthread_mutex_t wmu;    /* guards what follows and every cluster's starting */
  pthread_cond_t wcv;
  rdb_waiter *waiting;    /* parked until their cluster runs */
  rdb_waiter *ready;      /* to be told (FIFO through ready_tail) */
  rdb_waiter **ready_tail;
  size_t nwaiting;
  rdb_cluster **startq;   /* clusters to resume */
  size_t nstartq;
  pthread_t workers[RDB_WORKERS];
  int nworkers;
  bool wstop;
};

/* The cluster an ARN or identifier names, or NULL (under no lock). */
rdb_cluster *rdb_cluster_find(rdb *r, const char *arn_or_id);
/* Makes sure c's PostgreSQL runs (resuming it when paused); c->mu held. */
int rdb_cluster_ensure(rdb *r, rdb_cluster *c, err *e);
/* Borrows a connection (c->mu not held), returns it. */
int rdb_conn_get(rdb *r, rdb_cluster *c, const char *db, const char *user, const char *password,
                 PGconn **out, err *e);
void rdb_conn_put(rdb_cluster *c, const char *db, const char *user, const char *password,
                  PGconn *pg);
/* The secret's username and password (strings in *rec), for secretArn. */
int rdb_secret_credentials(rdb *r, const char *arn, json_t **rec, const char **user,
                           const char **password, err *e);
void rdb_tx_expire(rdb *r, int64_t now);
void rdb_tx_drop_cluster(rdb *r, rdb_cluster *c);

#endif
