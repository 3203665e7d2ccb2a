/* rdb/rdb.c -- clusters as PostgreSQL data directories: their durable
 * settings (LMDB), the PostgreSQL processes tarn runs for them, auto-pause,
 * and the secrets the Data API reads.
 *
 * Why a real PostgreSQL: the Data API's promise is "a relational database
 * that scales to zero"; the engine must be the real one.
 *
 * Layout: DATA/rdb/meta (LMDB), DATA/rdb/<id>/ (owned by the run-as user,
 * mode 0700) holding pg/ (the data directory), sock/ (the Unix socket; TCP
 * on 127.0.0.1 only for a cluster created with a Port) and postgres.log;
 * DATA/rdb/.snapshots/<snapshot>/pg (see "snapshots").
 *
 * Privileges: postgres refuses to run as root, so initdb and postgres are
 * started as the `postgres` system user (the Debian package's) when tarn
 * runs as root, and as tarn's own user otherwise. tarn's
 * data directory is usually private to root (0700), so the child keeps one
 * capability, CAP_DAC_READ_SEARCH, as an ambient capability: it may walk
 * the path down to its own directory and nothing else is granted.
 *
 * States of a cluster's process: stopped by the user (rec Stopped), paused
 * (pid 0), running (pid > 0). A statement on a paused cluster parks
 * (rdb_when_ready) while a worker thread starts it, and is handed back when
 * it runs, or with ERR_DB_RESUMING past the wait (the start goes on). A
 * statement that finds it paused anyway (it paused in between) starts it
 * itself, on its own thread.
 * The reaper thread pauses a running cluster with MinCapacity 0 once it has
 * been idle SecondsUntilAutoPause with no statement in flight and no open
 * transaction, expires transactions idle for 3 minutes, and notices a
 * postmaster that died.
 *
 * Invariants:
 *   (1) A cluster's record is in LMDB before its directory is used, and its
 *       directory is removed only after its record is gone.
 *   (2) Only c->mu's holder starts or stops c's process; connections are
 *       borrowed and returned under it, so a pause never pulls one away
 *       from a running statement (active > 0 blocks it).
 *   (3) The postmaster gets SIGINT (a fast, clean shutdown) when tarn dies
 *       (PR_SET_PDEATHSIG); a stale one found at start is stopped first.
 *   (4) Lock order: c->mu, then r->mu (or r->tx_mu); never the reverse.
 *       c->rec is replaced (never changed in place) under both, so holding
 *       either one is enough to read it. A deleted cluster stays allocated
 *       (the graveyard) until close, so a pointer from rdb_cluster_find
 *       stays valid.
 *
 * Start reading at rdb_cluster_create() and rdb_cluster_ensure().
 */
#include "rdb/rdb_internal.h"

#include "base/hash.h"
#include "base/lmdb_env.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/text.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <lmdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ARN_PREFIX "arn:aws:rds:us-east-1:000000000000:cluster:"
#define SECRET_ARN_PREFIX "arn:aws:secretsmanager:us-east-1:000000000000:secret:"
#define START_WAIT_MS 60000
#define STOP_WAIT_MS 30000
#define PG_PORT 5432     /* a cluster's port unless CreateDBCluster gave Port */

/* c's port as text (c->rec read: c->mu or r->mu held). TCP is on when the
 * cluster was created with a Port. */
static const char *port_of(rdb_cluster *c, char out[8])
{
  json_int_t p = json_integer_value(json_object_get(c->rec, "Port"));
  snprintf(out, 8, "%d", p > 0 ? (int)p : PG_PORT);
  return out;
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- LMDB ---- */

static int put_rec(rdb *r, unsigned dbi, const char *key, json_t *rec, err *e)
{
  MDB_txn *txn;
  int rc = mdb_txn_begin(r->env, NULL, 0, &txn);
  if (rc != 0)
    return lmdb_error(e, rc, "write the database state");
  MDB_val k = {strlen(key), (void *)key};
  if (rec != NULL) {
    char *text = json_dumps(rec, JSON_COMPACT);
    MDB_val v = {strlen(text), text};
    rc = mdb_put(txn, dbi, &k, &v, 0);
    free(text);
  } else {
    rc = mdb_del(txn, dbi, &k, NULL);
    if (rc == MDB_NOTFOUND)
      rc = 0;
  }
  if (rc != 0) {
    mdb_txn_abort(txn);
    return lmdb_error(e, rc, "write the database state");
  }
  if ((rc = mdb_txn_commit(txn)) != 0)
    return lmdb_error(e, rc, "commit the database state");
  return 0;
}

/* ---- processes ---- */

/* The child's side of spawn: become the run-as user keeping
 * CAP_DAC_READ_SEARCH (see the top), then exec. Never returns. */
static void child_exec(rdb *r, char *const argv[], const char *log_path, bool pdeath)
{
  int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int null = open("/dev/null", O_RDONLY);
  if (fd < 0 || null < 0)
    _exit(126);
  dup2(null, 0);
  dup2(fd, 1);
  dup2(fd, 2);
  syscall(SYS_close_range, 3, ~0u, 0);
  setsid();
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  signal(SIGPIPE, SIG_DFL);
  if (geteuid() == 0) { /* else tarn runs as a user: so does PostgreSQL */
    prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
    if (setgroups(0, NULL) != 0 || setgid(r->gid) != 0 || setuid(r->uid) != 0)
      _exit(125);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {{0}};
    unsigned bit = 1u << CAP_DAC_READ_SEARCH;
    d[0].effective = d[0].permitted = d[0].inheritable = bit;
    if (syscall(SYS_capset, &h, d) == 0)
      prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_DAC_READ_SEARCH, 0, 0);
  }
  if (pdeath)
    prctl(PR_SET_PDEATHSIG, SIGINT, 0, 0, 0);
  char *envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "LANG=C.UTF-8", "TZ=UTC", NULL};
  execve(argv[0], argv, envp);
  _exit(127);
}

static int spawn(rdb *r, char *const argv[], const char *log_path, bool pdeath, pid_t *pid,
                 err *e)
{
  pid_t p = fork();
  if (p < 0)
    return err_set(e, ERR_INTERNAL, "cannot start '%s': %s", argv[0], strerror(errno));
  if (p == 0)
    child_exec(r, argv, log_path, pdeath);
  *pid = p;
  return 0;
}

/* The last line of the cluster's log, for messages. */
static void log_tail(const char *dir, char *out, size_t cap)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/postgres.log", dir);
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  char line[512];
  while (fgets(line, sizeof line, f) != NULL) {
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if (n > 0)
      snprintf(out, cap, "%s", line);
  }
  fclose(f);
}

static int run_wait(rdb *r, char *const argv[], const char *dir, const char *what, err *e)
{
  char log_path[4200];
  snprintf(log_path, sizeof log_path, "%s/postgres.log", dir);
  pid_t pid;
  int rc = spawn(r, argv, log_path, false, &pid, e);
  if (rc != 0)
    return rc;
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    char tail[512];
    log_tail(dir, tail, sizeof tail);
    return err_set(e, ERR_INTERNAL, "%s failed (status %d): %s", what, st, tail);
  }
  return 0;
}

/* Stops a postmaster left running by a tarn that died (not our child). */
static void stop_stale(const char *dir)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/pg/postmaster.pid", dir);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  long pid = 0;
  if (fscanf(f, "%ld", &pid) != 1)
    pid = 0;
  fclose(f);
  if (pid <= 1 || kill((pid_t)pid, 0) != 0)
    return;
  char comm[64] = "";
  snprintf(path, sizeof path, "/proc/%ld/comm", pid);
  f = fopen(path, "r");
  if (f != NULL) {
    if (fgets(comm, sizeof comm, f) == NULL)
      comm[0] = '\0';
    fclose(f);
  }
  if (strncmp(comm, "postgres", 8) != 0)
    return;
  kill((pid_t)pid, SIGINT);
  for (int i = 0; i < STOP_WAIT_MS / 20 && kill((pid_t)pid, 0) == 0; i++)
    sleep_ms(20);
}

static void pool_close(rdb_cluster *c)
{
  for (int i = 0; i < c->nidle; i++) {
    PQfinish(c->idle[i].pg);
    free(c->idle[i].key);
  }
  c->nidle = 0;
}

/* Fast, clean shutdown of c's postmaster; c->mu held. */
static void stop_process(rdb_cluster *c)
{
  pool_close(c);
  if (c->pid <= 0)
    return;
  kill(c->pid, SIGINT);
  int st;
  int waited = 0;
  while (waitpid(c->pid, &st, WNOHANG) == 0) {
    if (waited >= STOP_WAIT_MS) {
      kill(c->pid, SIGQUIT);
      waitpid(c->pid, &st, 0);
      break;
    }
    sleep_ms(10);
    waited += 10;
  }
  c->pid = 0;
}

static int start_process(rdb *r, rdb_cluster *c, err *e)
{
  char pg[4200], sock[4200], log_path[4200], sockopt[4300];
  snprintf(pg, sizeof pg, "%s/pg", c->dir);
  snprintf(sock, sizeof sock, "%s/sock", c->dir);
  snprintf(log_path, sizeof log_path, "%s/postgres.log", c->dir);
  snprintf(sockopt, sizeof sockopt, "unix_socket_directories=%s", sock);
  stop_stale(c->dir);
  char bin[1100];
  snprintf(bin, sizeof bin, "%s/postgres", r->bindir);
  char port[8];
  port_of(c, port);
  bool tcp = json_integer_value(json_object_get(c->rec, "Port")) > 0;
  char *argv[] = {bin, "-D", pg, "-p", port, "-c",
                  tcp ? "listen_addresses=127.0.0.1" : "listen_addresses=", "-c", sockopt,
                  "-c", "unix_socket_permissions=0700", "-c", "shared_buffers=16MB",
                  "-c", "max_connections=40", "-c", "huge_pages=off", NULL};
  int64_t t0 = time_mono_ms();
  pid_t pid;
  int rc = spawn(r, argv, log_path, true, &pid, e);
  if (rc != 0)
    return rc;
  const char *keys[] = {"host", "port", "dbname", "connect_timeout", NULL};
  const char *vals[] = {sock, port, "postgres", "5", NULL};
  for (;;) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      char tail[512];
      log_tail(c->dir, tail, sizeof tail);
      return err_set(e, ERR_INTERNAL, "PostgreSQL of cluster '%s' did not start: %s", c->id,
                     tail);
    }
    if (PQpingParams(keys, vals, 0) == PQPING_OK)
      break;
    if (time_mono_ms() - t0 > START_WAIT_MS) {
      kill(pid, SIGQUIT);
      waitpid(pid, &st, 0);
      return err_set(e, ERR_UNAVAILABLE, "PostgreSQL of cluster '%s' did not start in %d s",
                     c->id, START_WAIT_MS / 1000);
    }
    sleep_ms(5);
  }
  if (r->resume_delay_ms > 0)
    sleep_ms((int)r->resume_delay_ms);
  c->pid = pid;
  c->last_resume_ms = time_mono_ms() - t0;
  c->last_used_ms = time_mono_ms();
  return 0;
}

int rdb_cluster_ensure(rdb *r, rdb_cluster *c, err *e)
{
  if (c->deleted)
    return err_set(e, ERR_NOT_FOUND, "DBCluster %s not found", c->id);
  if (json_is_true(json_object_get(c->rec, "Stopped")))
    return err_set(e, ERR_INVALID, "DB cluster %s is stopped", c->id);
  if (json_is_true(json_object_get(c->rec, "Creating")))
    return err_set(e, ERR_INVALID, "DB cluster %s is being created", c->id);
  if (c->pid > 0) {
    int st;
    if (waitpid(c->pid, &st, WNOHANG) != c->pid)
      return 0;
    c->pid = 0; /* died: start again */
    pool_close(c);
  }
  int rc = start_process(r, c, e);
  if (rc == 0)
    c->resumes++;
  return rc;
}

/* ---- resumes without a thread ----
 * A statement on a paused cluster parks (rdb_when_ready); one of
 * RDB_WORKERS long-lived threads starts the cluster (long-lived: a
 * postmaster gets SIGINT when the thread that forked it ends, (3)) and then
 * hands each parked statement back to its caller, on those same threads.
 * The reaper tells the ones whose wait ran out. */

static void waiter_tell(rdb_waiter *w)
{
  w->fn(w->ctx, w->rc, &w->e);
  free(w);
}

/* Moves c's waiters to the ready list, telling them rc; r->wmu held. */
static void waiters_ready(rdb *r, rdb_cluster *c, int rc, const err *e)
{
  for (rdb_waiter **pp = &r->waiting; *pp != NULL;) {
    rdb_waiter *w = *pp;
    if (w->c != c) {
      pp = &w->next;
      continue;
    }
    *pp = w->next;
    r->nwaiting--;
    w->rc = rc;
    if (rc != 0)
      w->e = *e;
    w->next = NULL;
    *r->ready_tail = w;
    r->ready_tail = &w->next;
  }
}

static void *worker_main(void *arg)
{
  rdb *r = arg;
  pthread_mutex_lock(&r->wmu);
  while (!r->wstop) {
    if (r->ready != NULL) {
      rdb_waiter *w = r->ready;
      r->ready = w->next;
      if (r->ready == NULL)
        r->ready_tail = &r->ready;
      pthread_mutex_unlock(&r->wmu);
      waiter_tell(w);
      pthread_mutex_lock(&r->wmu);
    } else if (r->nstartq > 0) {
      rdb_cluster *c = r->startq[0];
      memmove(r->startq, r->startq + 1, --r->nstartq * sizeof *r->startq);
      pthread_mutex_unlock(&r->wmu);
      err e = {0};
      pthread_mutex_lock(&c->mu);
      int rc = rdb_cluster_ensure(r, c, &e);
      pthread_mutex_unlock(&c->mu);
      pthread_mutex_lock(&r->wmu);
      c->starting = false;
      waiters_ready(r, c, rc, &e);
      pthread_cond_broadcast(&r->wcv);
    } else {
      pthread_cond_wait(&r->wcv, &r->wmu);
    }
  }
  pthread_mutex_unlock(&r->wmu);
  return NULL;
}

/* Tells the parked statements whose wait ran out (now: INT64_MAX tells all,
 * with code; else ERR_DB_RESUMING). */
static void waiters_expire(rdb *r, int64_t now, int code)
{
  rdb_waiter *out = NULL;
  pthread_mutex_lock(&r->wmu);
  for (rdb_waiter **pp = &r->waiting; *pp != NULL;) {
    rdb_waiter *w = *pp;
    if (w->deadline_ms > now) {
      pp = &w->next;
      continue;
    }
    *pp = w->next;
    r->nwaiting--;
    w->next = out;
    out = w;
  }
  if (now == INT64_MAX) { /* closing: the ready ones too */
    while (r->ready != NULL) {
      rdb_waiter *w = r->ready;
      r->ready = w->next;
      w->next = out;
      out = w;
    }
    r->ready_tail = &r->ready;
  }
  pthread_mutex_unlock(&r->wmu);
  while (out != NULL) {
    rdb_waiter *w = out;
    out = w->next;
    if (code == ERR_DB_RESUMING)
      err_set(&w->e, ERR_DB_RESUMING, "The database %s is resuming after being auto-paused. "
              "Please wait a few seconds and try again.", w->c->id);
    else
      err_set(&w->e, code, "the server is stopping");
    w->rc = code;
    waiter_tell(w);
  }
}

/* A resume under way holds c->mu for its length: looked at first, so that
 * asking never waits for it. */
static bool paused(rdb *r, rdb_cluster *c)
{
  pthread_mutex_lock(&r->wmu);
  bool starting = c->starting;
  pthread_mutex_unlock(&r->wmu);
  if (starting)
    return true;
  pthread_mutex_lock(&c->mu);
  bool p = !c->deleted && c->pid <= 0 && !json_is_true(json_object_get(c->rec, "Stopped")) &&
           !json_is_true(json_object_get(c->rec, "Creating"));
  pthread_mutex_unlock(&c->mu);
  return p;
}

bool rdb_paused(rdb *r, const char *resource_arn)
{
  rdb_cluster *c = rdb_cluster_find(r, resource_arn);
  return c != NULL && paused(r, c);
}

int rdb_when_ready(rdb *r, const char *resource_arn, rdb_ready_fn fn, void *ctx, err *e)
{
  rdb_cluster *c = rdb_cluster_find(r, resource_arn);
  if (c == NULL || !paused(r, c))
    return 0;
  pthread_mutex_lock(&r->wmu);
  if (r->wstop || r->nworkers == 0) {
    pthread_mutex_unlock(&r->wmu);
    return 0; /* closing: the statement resumes it itself */
  }
  if (!c->starting) {
    c->starting = true;
    r->startq = xrealloc(r->startq, (r->nstartq + 1) * sizeof *r->startq);
    r->startq[r->nstartq++] = c;
    pthread_cond_broadcast(&r->wcv);
  }
  if (r->resume_wait_ms < 0 || r->nwaiting >= RDB_WAITERS_MAX) {
    pthread_mutex_unlock(&r->wmu);
    return err_set(e, ERR_DB_RESUMING, "The database %s is resuming after being auto-paused. "
                   "Please wait a few seconds and try again.", c->id);
  }
  rdb_waiter *w = xcalloc(1, sizeof *w);
  w->c = c;
  w->fn = fn;
  w->ctx = ctx;
  w->deadline_ms = time_mono_ms() + r->resume_wait_ms;
  w->next = r->waiting;
  r->waiting = w;
  r->nwaiting++;
  pthread_mutex_unlock(&r->wmu);
  return RDB_WAITING;
}

/* ---- connections ---- */

static char *conn_key(const char *db, const char *user, const char *password)
{
  size_t n = strlen(db) + strlen(user) + strlen(password) + 3;
  char *k = xmalloc(n);
  snprintf(k, n, "%s\n%s\n%s", db, user, password);
  return k;
}

int rdb_conn_get(rdb *r, rdb_cluster *c, const char *db, const char *user, const char *password,
                 PGconn **out, err *e)
{
  *out = NULL;
  char *key = conn_key(db, user, password);
  int64_t t0 = time_mono_ms();
  pthread_mutex_lock(&c->mu);
  bool was_paused = c->pid <= 0;
  int rc = rdb_cluster_ensure(r, c, e);
  if (rc != 0) {
    pthread_mutex_unlock(&c->mu);
    free(key);
    if (was_paused && rc == ERR_UNAVAILABLE)
      return err_set(e, ERR_DB_RESUMING, "The database %s is resuming after being auto-paused. "
                     "Please wait a few seconds and try again.", c->id);
    return rc;
  }
  if (was_paused && time_mono_ms() - t0 > RDB_RESUME_WAIT_MS) {
    /* resumed, but later than a client waits: it tries again */
    pthread_mutex_unlock(&c->mu);
    free(key);
    return err_set(e, ERR_DB_RESUMING, "The database %s is resuming after being auto-paused. "
                   "Please wait a few seconds and try again.", c->id);
  }
  PGconn *pg = NULL;
  for (int i = c->nidle - 1; i >= 0; i--) {
    if (strcmp(c->idle[i].key, key) == 0) {
      pg = c->idle[i].pg;
      free(c->idle[i].key);
      c->idle[i] = c->idle[--c->nidle];
      break;
    }
  }
  c->active++;
  char sock[4200], port[8];
  snprintf(sock, sizeof sock, "%s/sock", c->dir);
  port_of(c, port);
  pthread_mutex_unlock(&c->mu);
  free(key);
  if (pg != NULL && PQstatus(pg) == CONNECTION_OK) {
    *out = pg;
    return 0;
  }
  if (pg != NULL)
    PQfinish(pg);
  const char *keys[] = {"host", "port", "dbname", "user", "password", "connect_timeout",
                        "application_name", NULL};
  const char *vals[] = {sock, port, db, user, password, "10", "tarn-data-api", NULL};
  pg = PQconnectdbParams(keys, vals, 0);
  if (PQstatus(pg) != CONNECTION_OK) {
    const char *m = PQerrorMessage(pg);
    const char *p = strstr(m, "FATAL:  ");
    rc = err_set(e, ERR_INVALID, "%s", p != NULL ? p + 8 : m);
    size_t n = strlen(e->msg);
    while (n > 0 && (e->msg[n - 1] == '\n'))
      e->msg[--n] = '\0';
    PQfinish(pg);
    rdb_conn_put(c, db, user, password, NULL);
    return rc;
  }
  *out = pg;
  return 0;
}

void rdb_conn_put(rdb_cluster *c, const char *db, const char *user, const char *password,
                  PGconn *pg)
{
  pthread_mutex_lock(&c->mu);
  c->active--;
  c->last_used_ms = time_mono_ms();
  if (pg != NULL) {
    if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) == PQTRANS_IDLE &&
        c->nidle < RDB_POOL_MAX && c->pid > 0) {
      c->idle[c->nidle].pg = pg;
      c->idle[c->nidle].key = conn_key(db, user, password);
      c->nidle++;
      pg = NULL;
    }
  }
  pthread_mutex_unlock(&c->mu);
  if (pg != NULL)
    PQfinish(pg);
}

/* ---- clusters ---- */

static bool valid_id(const char *id)
{
  size_t n = strlen(id);
  if (n < 1 || n > 63 || !isalpha((unsigned char)id[0]) || id[n - 1] == '-')
    return false;
  for (size_t i = 0; i < n; i++) {
    if (!isalnum((unsigned char)id[i]) && id[i] != '-')
      return false;
    if (id[i] == '-' && id[i + 1] == '-')
      return false;
  }
  return true;
}

static bool valid_pg_name(const char *s)
{
  size_t n = strlen(s);
  if (n < 1 || n > 63 || !isalpha((unsigned char)s[0]))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_')
      return false;
  return true;
}

rdb_cluster *rdb_cluster_find(rdb *r, const char *arn_or_id)
{
  if (arn_or_id == NULL)
    return NULL;
  const char *id = arn_or_id;
  if (strncmp(id, ARN_PREFIX, strlen(ARN_PREFIX)) == 0)
    id += strlen(ARN_PREFIX);
  rdb_cluster *found = NULL;
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->nclusters; i++)
    if (strcasecmp(r->clusters[i]->id, id) == 0)
      found = r->clusters[i];
  pthread_mutex_unlock(&r->mu);
  return found;
}

static rdb_cluster *cluster_new(rdb *r, const char *id, json_t *rec)
{
  rdb_cluster *c = xcalloc(1, sizeof *c);
  snprintf(c->id, sizeof c->id, "%s", id);
  c->rec = rec;
  pthread_mutex_init(&c->mu, NULL);
  snprintf(c->dir, sizeof c->dir, "%s/%.63s", r->root, id);
  return c;
}

static void cluster_free(rdb_cluster *c)
{
  pool_close(c);
  json_decref(c->rec);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* The description DescribeDBClusters gives; c->mu held or not (reads). */
static json_t *describe(rdb_cluster *c)
{
  json_t *d = json_deep_copy(c->rec);
  json_object_del(d, "MasterUserPassword");
  bool stopped = json_is_true(json_object_get(d, "Stopped"));
  bool creating = json_is_true(json_object_get(d, "Creating"));
  json_object_del(d, "Stopped");
  json_object_del(d, "Creating");
  json_object_set_new(d, "Status", json_string(creating  ? "creating"
                                               : stopped ? "stopped"
                                                         : "available"));
  json_t *sc = json_object_get(d, "ServerlessV2ScalingConfiguration");
  double minc = json_number_value(json_object_get(sc, "MinCapacity"));
  /* Capacity: 0 while paused (no PostgreSQL runs), else the minimum, at least 1 */
  long cap = c->pid > 0 ? (long)(minc < 1 ? 1 : minc) : 0;
  json_object_set_new(d, "Capacity", json_integer(cap));
  json_object_set_new(d, "DBClusterArn", json_sprintf(ARN_PREFIX "%s", c->id));
  /* with a Port, PostgreSQL also listens on 127.0.0.1:Port (libpq, psql) */
  json_int_t port = json_integer_value(json_object_get(c->rec, "Port"));
  if (port > 0)
    json_object_set_new(d, "Endpoint", json_string("127.0.0.1"));
  else
    json_object_set_new(d, "Endpoint", json_sprintf("%s.cluster.tarn.local", c->id));
  json_object_set_new(d, "Port", json_integer(port > 0 ? port : PG_PORT));
  return d;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb;
  (void)ftw;
  if (flag == FTW_DP || flag == FTW_D)
    rmdir(p);
  else
    unlink(p);
  return 0;
}

/* Removes dir and everything in it, depth first, without following links. */
static void rm_tree(const char *dir)
{
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int make_owned_dir(rdb *r, const char *path, err *e)
{
  if (mkdir(path, 0700) != 0 && errno != EEXIST)
    return err_set(e, err_from_errno(errno), "cannot create '%s': %s", path, strerror(errno));
  if (chown(path, r->uid, r->gid) != 0)
    return err_set(e, ERR_IO, "cannot hand '%s' to the database user: %s", path,
                   strerror(errno));
  return 0;
}

/* initdb, the socket folder, the first start and CREATE DATABASE. */
static int cluster_init(rdb *r, rdb_cluster *c, const char *user, const char *password,
                        const char *dbname, err *e)
{
  int rc;
  char pg[4200], sock[4200], pwfile[4200], pwopt[4300], bin[1100];
  snprintf(pg, sizeof pg, "%s/pg", c->dir);
  char port[8];
  snprintf(sock, sizeof sock, "%s/sock/.s.PGSQL.%s", c->dir, port_of(c, port));
  if (strlen(sock) >= 107)
    return err_set(e, ERR_INVALID, "the data directory path is too long for a socket of "
                   "cluster '%s' (%zu bytes, at most 107)", c->id, strlen(sock));
  snprintf(sock, sizeof sock, "%s/sock", c->dir);
  if ((rc = make_owned_dir(r, c->dir, e)) != 0 || (rc = make_owned_dir(r, sock, e)) != 0)
    return rc;
  snprintf(pwfile, sizeof pwfile, "%s/pwfile", c->dir);
  int fd = open(pwfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, password, strlen(password)) < 0 || write(fd, "\n", 1) < 0 ||
      fchown(fd, r->uid, r->gid) != 0) {
    if (fd >= 0)
      close(fd);
    return err_set(e, ERR_IO, "cannot write '%s': %s", pwfile, strerror(errno));
  }
  close(fd);
  snprintf(pwopt, sizeof pwopt, "--pwfile=%s", pwfile);
  snprintf(bin, sizeof bin, "%s/initdb", r->bindir);
  char *uopt = xmalloc(strlen(user) + 4);
  sprintf(uopt, "-U%s", user);
  char *argv[] = {bin, "-D", pg, uopt, pwopt, "-A", "scram-sha-256", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync", NULL};
  rc = run_wait(r, argv, c->dir, "initdb", e);
  free(uopt);
  unlink(pwfile);
  if (rc != 0)
    return rc;
  /* --no-sync above, then one sync of the file system: durable before the answer */
  int dfd = open(pg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    syncfs(dfd);
    close(dfd);
  }
  rc = start_process(r, c, e);
  if (rc != 0 || dbname == NULL || strcmp(dbname, "postgres") == 0)
    return rc;
  const char *keys[] = {"host", "port", "dbname", "user", "password", NULL};
  const char *vals[] = {sock, port, "postgres", user, password, NULL};
  PGconn *pg_conn = PQconnectdbParams(keys, vals, 0);
  if (PQstatus(pg_conn) != CONNECTION_OK) {
    rc = err_set(e, ERR_INTERNAL, "cannot connect to the new cluster '%s': %s", c->id,
                 PQerrorMessage(pg_conn));
    PQfinish(pg_conn);
    return rc;
  }
  char sql[200];
  snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", dbname);
  PGresult *res = PQexec(pg_conn, sql);
  if (PQresultStatus(res) != PGRES_COMMAND_OK)
    rc = err_set(e, ERR_INVALID, "cannot create database '%s': %s", dbname,
                 PQresultErrorMessage(res));
  PQclear(res);
  PQfinish(pg_conn);
  return rc;
}

static int secret_create_locked(rdb *r, const char *name, const char *value,
                                const char *description, json_t **out, err *e);
static json_t *secret_find(rdb *r, const char *id);
static int update_rec(rdb *r, rdb_cluster *c, const char *member, json_t *value, err *e);

/* CreateDBCluster, or RestoreDBClusterFromSnapshot when snap (the
 * snapshot's record, with its directory from_dir) is given: then the
 * master user, database and managed secret's value are the snapshot's, and
 * the data directory is a copy of the snapshot's instead of initdb. */
static int cluster_copy_in(rdb *r, rdb_cluster *c, const char *from, err *e);

static int cluster_make(rdb *r, json_t *in, json_t *snap, const char *from_dir, json_t **out,
                        err *e)
{
  *out = NULL;
  const char *id0 = json_string_value(json_object_get(in, "DBClusterIdentifier"));
  const char *engine = json_string_value(json_object_get(in, "Engine"));
  const char *user = json_string_value(json_object_get(in, "MasterUsername"));
  const char *password = json_string_value(json_object_get(in, "MasterUserPassword"));
  bool manage = json_is_true(json_object_get(in, "ManageMasterUserPassword"));
  const char *dbname = json_string_value(json_object_get(in, "DatabaseName"));
  const char *snap_secret = NULL; /* the managed secret's value at the snapshot */
  if (snap != NULL) {
    if (engine == NULL)
      engine = "aurora-postgresql";
    user = json_string_value(json_object_get(snap, "MasterUsername"));
    dbname = json_string_value(json_object_get(snap, "DatabaseName"));
    snap_secret = json_string_value(json_object_get(snap, "SecretValue"));
    password = NULL;
    manage = snap_secret != NULL;
    if (!manage)
      password = "-"; /* the snapshot's own: nothing to set */
  }
  json_t *sc = json_object_get(in, "ServerlessV2ScalingConfiguration");
  if (id0 != NULL && strcasecmp(id0, "meta") == 0) /* DATA/rdb/meta is the state */
    return err_set(e, ERR_INVALID, "The DBClusterIdentifier 'meta' is reserved by tarn.");
  if (id0 == NULL || !valid_id(id0))
    return err_set(e, ERR_INVALID, "The parameter DBClusterIdentifier is not a valid "
                   "identifier. Identifiers must begin with a letter; must contain only ASCII "
                   "letters, digits, and hyphens; and must not end with a hyphen or contain two "
                   "consecutive hyphens.");
  if (engine == NULL || strcmp(engine, "aurora-postgresql") != 0)
    return err_set(e, ERR_INVALID, "Invalid DB engine: %s (tarn runs aurora-postgresql)",
                   engine != NULL ? engine : "");
  if (user == NULL || !valid_pg_name(user))
    return err_set(e, ERR_INVALID, "The parameter MasterUsername must be provided and must "
                   "be 1 to 63 letters, digits or underscores, beginning with a letter.");
  if (password != NULL && manage)
    return err_set(e, ERR_INVALID_REQUEST, "Both ManageMasterUserPassword and "
                   "MasterUserPassword can't be specified.");
  if (password == NULL && !manage)
    return err_set(e, ERR_INVALID, "The parameter MasterUserPassword must be provided and must "
                   "not be blank.");
  if (snap == NULL && password != NULL && (strlen(password) < 8 || strlen(password) > 128 ||
                           strpbrk(password, "/\"@ \n") != NULL))
    return err_set(e, ERR_INVALID, "The parameter MasterUserPassword is not a valid password. "
                   "Only printable ASCII characters besides '/', '@', '\"', ' ' may be used.");
  if (dbname != NULL && !valid_pg_name(dbname))
    return err_set(e, ERR_INVALID, "The parameter DatabaseName is not a valid identifier.");
  json_t *jport = json_object_get(in, "Port");
  json_int_t port = jport != NULL ? json_integer_value(jport) : 0;
  if (jport != NULL && (!json_is_integer(jport) || port < 1150 || port > 65535))
    return err_set(e, ERR_INVALID, "The parameter Port must be between 1150 and 65535.");
  double minc = 0.5, maxc = 16;
  long pause_s = 300;
  if (sc != NULL) {
    json_t *v;
    if ((v = json_object_get(sc, "MinCapacity")) != NULL)
      minc = json_number_value(v);
    if ((v = json_object_get(sc, "MaxCapacity")) != NULL)
      maxc = json_number_value(v);
    if ((v = json_object_get(sc, "SecondsUntilAutoPause")) != NULL)
      pause_s = (long)json_integer_value(v);
  }
  if (minc < 0 || maxc < 1 || maxc > 256 || minc > maxc)
    return err_set(e, ERR_INVALID, "Invalid ServerlessV2ScalingConfiguration: MinCapacity %g, "
                   "MaxCapacity %g", minc, maxc);
  if (pause_s < 1 || pause_s > 86400)
    return err_set(e, ERR_INVALID, "SecondsUntilAutoPause must be between 1 and 86400");
  char id[64];
  size_t n = strlen(id0);
  for (size_t i = 0; i <= n; i++)
    id[i] = (char)tolower((unsigned char)id0[i]);

  char pwbuf[33];
  if (manage && snap == NULL) {
    uint8_t raw[16];
    random_bytes(raw, sizeof raw);
    hex_encode(raw, sizeof raw, pwbuf);
    password = pwbuf;
  }
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->nclusters; i++) {
    if (strcmp(r->clusters[i]->id, id) == 0) {
      pthread_mutex_unlock(&r->mu);
      return err_set(e, ERR_ENTITY_EXISTS, "DB Cluster already exists");
    }
    if (port > 0 && json_integer_value(json_object_get(r->clusters[i]->rec, "Port")) == port) {
      pthread_mutex_unlock(&r->mu);
      return err_set(e, ERR_INVALID, "Port %lld is taken by DB cluster %s", (long long)port,
                     r->clusters[i]->id);
    }
  }
  char created[25];
  time_format_iso8601_ms(time_now_ms(), created);
  uint8_t raw[13];
  random_bytes(raw, sizeof raw);
  char rid[27];
  hex_encode(raw, sizeof raw, rid);
  json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:{s:f, s:f, s:i}, "
                          "s:b, s:s, s:[]}",
                          "DBClusterIdentifier", id, "Engine", "aurora-postgresql",
                          "EngineVersion", "15.4", "EngineMode", "provisioned",
                          "MasterUsername", user, "ClusterCreateTime", created,
                          "DbClusterResourceId", "", "HttpEndpointEnabled",
                          json_is_true(json_object_get(in, "EnableHttpEndpoint")),
                          "ServerlessV2ScalingConfiguration", "MinCapacity", minc, "MaxCapacity",
                          maxc, "SecondsUntilAutoPause", (json_int_t)pause_s, "Stopped", 0,
                          "DatabaseName", dbname != NULL ? dbname : "postgres",
                          "AssociatedRoles");
  json_object_set_new(rec, "DbClusterResourceId", json_sprintf("cluster-%s", rid));
  json_object_set_new(rec, "Creating", json_true()); /* until initdb is done: see load() */
  if (port > 0)
    json_object_set_new(rec, "Port", json_integer(port));
  int rc = 0;
  if (manage) {
    json_t *secret = NULL;
    char name[128];
    snprintf(name, sizeof name, "rds!cluster-%s", rid);
    json_t *val = json_pack("{s:s, s:s}", "username", user, "password",
                            password != NULL ? password : "");
    char *text = snap_secret != NULL ? xstrdup(snap_secret) : json_dumps(val, JSON_COMPACT);
    json_decref(val);
    rc = secret_create_locked(r, name, text, "The secret associated with the primary RDS DB "
                              "cluster", &secret, e);
    free(text);
    if (rc == 0)
      json_object_set_new(rec, "MasterUserSecret",
                          json_pack("{s:O, s:s}", "SecretArn", json_object_get(secret, "ARN"),
                                    "SecretStatus", "active"));
    json_decref(secret);
  }
  if (rc == 0)
    rc = put_rec(r, r->dbi_clusters, id, rec, e);
  if (rc != 0) {
    pthread_mutex_unlock(&r->mu);
    json_decref(rec);
    return rc;
  }
  rdb_cluster *c = cluster_new(r, id, rec);
  r->clusters = xrealloc(r->clusters, (r->nclusters + 1) * sizeof *r->clusters);
  r->clusters[r->nclusters++] = c;
  pthread_mutex_unlock(&r->mu);
  pthread_mutex_lock(&c->mu);
  rc = snap != NULL ? cluster_copy_in(r, c, from_dir, e)
                    : cluster_init(r, c, user, password, dbname, e);
  if (rc == 0)
    rc = update_rec(r, c, "Creating", json_false(), e);
  pthread_mutex_unlock(&c->mu);
  if (rc != 0) {
    json_t *gone = NULL;
    err e2 = {0};
    rdb_cluster_delete(r, id, &gone, &e2);
    json_decref(gone);
    return rc;
  }
  *out = describe(c);
  return 0;
}

int rdb_cluster_create(rdb *r, json_t *in, json_t **out, err *e)
{
  return cluster_make(r, in, NULL, NULL, out, e);
}

/* ---- snapshots ----
 * A snapshot is a copy of a cluster's data directory taken while its
 * PostgreSQL is shut down cleanly (a running cluster is stopped for the copy
 * and started again after it): DATA/rdb/.snapshots/<id>/pg, its record
 * in the "snapshots" database. A restore copies it into a new cluster. The
 * record is written "Creating" before the copy and completed after it, so a
 * copy cut short by a crash is removed at the next start (as a cluster's
 * initdb is). */

static void snap_dir(rdb *r, const char *id, char *out, size_t cap)
{
  snprintf(out, cap, "%s/.snapshots/%.255s", r->root, id);
}

/* Copies src/pg into dst/pg as the database user (cp -a), then syncs. */
static int copy_pg(rdb *r, const char *src, const char *dst, err *e)
{
  char from[4200], to[4200];
  snprintf(from, sizeof from, "%s/pg", src);
  snprintf(to, sizeof to, "%s/pg", dst);
  char *argv[] = {"/bin/cp", "-a", "--", from, to, NULL};
  int rc = run_wait(r, argv, dst, "copying the data directory", e);
  if (rc != 0)
    return rc;
  int dfd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    syncfs(dfd);
    close(dfd);
  }
  return 0;
}

static int cluster_copy_in(rdb *r, rdb_cluster *c, const char *from, err *e)
{
  char sock[4200];
  snprintf(sock, sizeof sock, "%s/sock", c->dir);
  int rc;
  if ((rc = make_owned_dir(r, c->dir, e)) != 0 || (rc = make_owned_dir(r, sock, e)) != 0 ||
      (rc = copy_pg(r, from, c->dir, e)) != 0)
    return rc;
  return start_process(r, c, e);
}

static json_t *snap_public(json_t *s)
{
  json_t *d = json_deep_copy(s);
  json_object_del(d, "SecretValue");
  json_object_del(d, "Creating");
  return d;
}

int rdb_snapshot_create(rdb *r, const char *snap_id, const char *cluster_id, json_t **out,
                        err *e)
{
  *out = NULL;
  if (snap_id == NULL || !valid_id(snap_id))
    return err_set(e, ERR_INVALID, "The parameter DBClusterSnapshotIdentifier is not a valid "
                   "identifier.");
  rdb_cluster *c = rdb_cluster_find(r, cluster_id);
  if (c == NULL)
    return err_set(e, ERR_NOT_FOUND, "DBCluster %s not found.", cluster_id != NULL ? cluster_id : "");
  char id[64];
  size_t n = strlen(snap_id);
  for (size_t i = 0; i <= n; i++)
    id[i] = (char)tolower((unsigned char)snap_id[i]);
  /* no statement may run during the copy: wait for the running ones (30 s) */
  int64_t t0 = time_mono_ms();
  for (;;) {
    pthread_mutex_lock(&c->mu);
    if (c->ntx > 0) {
      pthread_mutex_unlock(&c->mu);
      return err_set(e, ERR_CONFLICT, "DbCluster %s has open transactions: commit or roll "
                     "them back first.", c->id);
    }
    if (c->active == 0)
      break;
    pthread_mutex_unlock(&c->mu);
    if (time_mono_ms() - t0 > 30000)
      return err_set(e, ERR_CONFLICT, "DbCluster %s has statements running.", c->id);
    sleep_ms(10);
  }
  if (json_is_true(json_object_get(c->rec, "Creating")) || c->deleted) {
    pthread_mutex_unlock(&c->mu);
    return err_set(e, ERR_CONFLICT, "DbCluster %s is not available.", c->id);
  }
  char created[25];
  time_format_iso8601_ms(time_now_ms(), created);
  json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:i, s:s, s:b}",
                          "DBClusterSnapshotIdentifier", id, "DBClusterIdentifier", c->id,
                          "SnapshotCreateTime", created, "Engine", "aurora-postgresql",
                          "EngineVersion", "15.4", "MasterUsername",
                          json_string_value(json_object_get(c->rec, "MasterUsername")),
                          "DatabaseName", json_object_get(c->rec, "DatabaseName"),
                          "Status", "available", "SnapshotType", "manual", "Port",
                          json_integer_value(json_object_get(c->rec, "Port")) > 0
                              ? (int)json_integer_value(json_object_get(c->rec, "Port"))
                              : PG_PORT,
                          "ClusterCreateTime",
                          json_string_value(json_object_get(c->rec, "ClusterCreateTime")),
                          "Creating", 1);
  json_object_set_new(rec, "DBClusterSnapshotArn",
                      json_sprintf("arn:aws:rds:us-east-1:000000000000:cluster-snapshot:%s", id));
  pthread_mutex_lock(&r->mu);
  const char *sarn = json_string_value(
      json_object_get(json_object_get(c->rec, "MasterUserSecret"), "SecretArn"));
  json_t *sec = secret_find(r, sarn);
  if (sec != NULL) /* a restore makes a managed secret with this value */
    json_object_set(rec, "SecretValue", json_object_get(sec, "SecretString"));
  int rc = 0;
  if (json_object_get(r->snapshots, id) != NULL)
    rc = err_set(e, ERR_ENTITY_EXISTS, "Cannot create the cluster snapshot because one with "
                 "the identifier %s already exists.", id);
  if (rc == 0)
    rc = put_rec(r, r->dbi_snapshots, id, rec, e);
  if (rc == 0)
    json_object_set(r->snapshots, id, rec);
  pthread_mutex_unlock(&r->mu);
  char dir[4400], top[4200];
  snprintf(top, sizeof top, "%s/.snapshots", r->root);
  snap_dir(r, id, dir, sizeof dir);
  if (rc == 0) {
    bool was_running = c->pid > 0;
    stop_process(c); /* a clean shutdown: the copy is consistent */
    if ((rc = make_owned_dir(r, top, e)) == 0 && (rc = make_owned_dir(r, dir, e)) == 0)
      rc = copy_pg(r, c->dir, dir, e);
    err e2 = {0};
    if (was_running && rdb_cluster_ensure(r, c, &e2) != 0) /* else its next statement does */
      log_warn("cluster %s did not start again after its snapshot: %s", c->id, e2.msg);
  }
  pthread_mutex_unlock(&c->mu);
  if (rc == 0) {
    pthread_mutex_lock(&r->mu);
    json_object_del(rec, "Creating");
    rc = put_rec(r, r->dbi_snapshots, id, rec, e);
    pthread_mutex_unlock(&r->mu);
  }
  if (rc == 0) {
    *out = snap_public(rec);
  } else if (rc != ERR_ENTITY_EXISTS) {
    pthread_mutex_lock(&r->mu);
    err e2 = {0};
    if (put_rec(r, r->dbi_snapshots, id, NULL, &e2) == 0)
      json_object_del(r->snapshots, id);
    pthread_mutex_unlock(&r->mu);
    rm_tree(dir);
  }
  json_decref(rec);
  return rc;
}

int rdb_snapshot_describe(rdb *r, const char *snap_id, const char *cluster_id, json_t **out,
                          err *e)
{
  json_t *all = json_array();
  pthread_mutex_lock(&r->mu);
  const char *k;
  json_t *v;
  bool found = false;
  json_object_foreach(r->snapshots, k, v)
  {
    if (json_is_true(json_object_get(v, "Creating")))
      continue;
    if (snap_id != NULL && strcasecmp(k, snap_id) != 0)
      continue;
    const char *cid = json_string_value(json_object_get(v, "DBClusterIdentifier"));
    if (cluster_id != NULL && (cid == NULL || strcasecmp(cid, cluster_id) != 0))
      continue;
    found = true;
    json_array_append_new(all, snap_public(v));
  }
  pthread_mutex_unlock(&r->mu);
  if (snap_id != NULL && !found) {
    json_decref(all);
    return err_set(e, ERR_NOT_FOUND, "DBClusterSnapshot %s not found.", snap_id);
  }
  *out = all;
  return 0;
}

int rdb_snapshot_delete(rdb *r, const char *snap_id, json_t **out, err *e)
{
  *out = NULL;
  pthread_mutex_lock(&r->mu);
  json_t *s = snap_id != NULL ? json_object_get(r->snapshots, snap_id) : NULL;
  char id[64] = "";
  if (s == NULL && snap_id != NULL && strlen(snap_id) < sizeof id) {
    size_t n = strlen(snap_id);
    for (size_t i = 0; i <= n; i++)
      id[i] = (char)tolower((unsigned char)snap_id[i]);
    s = json_object_get(r->snapshots, id);
  }
  int rc = 0;
  if (s == NULL || json_is_true(json_object_get(s, "Creating")))
    rc = err_set(e, ERR_NOT_FOUND, "DBClusterSnapshot %s not found.", snap_id != NULL ? snap_id : "");
  char key[64] = "";
  if (rc == 0) {
    snprintf(key, sizeof key, "%s", json_string_value(json_object_get(s, "DBClusterSnapshotIdentifier")));
    rc = put_rec(r, r->dbi_snapshots, key, NULL, e);
  }
  if (rc == 0) {
    *out = snap_public(s);
    json_object_set_new(*out, "Status", json_string("deleted"));
    json_object_del(r->snapshots, key);
  }
  pthread_mutex_unlock(&r->mu);
  if (rc == 0) {
    char dir[4400];
    snap_dir(r, key, dir, sizeof dir);
    rm_tree(dir);
  }
  return rc;
}

int rdb_snapshot_restore(rdb *r, const char *snap_id, json_t *in, json_t **out, err *e)
{
  *out = NULL;
  const char *arn = snap_id != NULL ? strstr(snap_id, ":cluster-snapshot:") : NULL;
  if (arn != NULL && strncmp(snap_id, "arn:", 4) == 0)
    snap_id = arn + strlen(":cluster-snapshot:");
  pthread_mutex_lock(&r->mu);
  json_t *s = NULL;
  const char *k;
  json_t *v;
  json_object_foreach(r->snapshots, k, v)
  {
    if (snap_id != NULL && strcasecmp(k, snap_id) == 0 &&
        !json_is_true(json_object_get(v, "Creating")))
      s = json_deep_copy(v);
  }
  pthread_mutex_unlock(&r->mu);
  if (s == NULL)
    return err_set(e, ERR_NOT_FOUND, "DBClusterSnapshot %s not found.",
                   snap_id != NULL ? snap_id : "");
  char dir[4400];
  snap_dir(r, json_string_value(json_object_get(s, "DBClusterSnapshotIdentifier")), dir,
           sizeof dir);
  int rc = cluster_make(r, in, s, dir, out, e);
  json_decref(s);
  return rc;
}

int rdb_cluster_describe(rdb *r, const char *id, json_t **out, err *e)
{
  if (id != NULL) {
    rdb_cluster *c = rdb_cluster_find(r, id);
    if (c == NULL)
      return err_set(e, ERR_NOT_FOUND, "DBCluster %s not found.", id);
    pthread_mutex_lock(&c->mu);
    *out = json_pack("[o]", describe(c));
    pthread_mutex_unlock(&c->mu);
    return 0;
  }
  json_t *all = json_array();
  pthread_mutex_lock(&r->mu);
  size_t n = r->nclusters;
  rdb_cluster **cs = xmalloc((n + 1) * sizeof *cs);
  if (n > 0)
    if (n > 0)
      memcpy(cs, r->clusters, n * sizeof *cs);
  pthread_mutex_unlock(&r->mu);
  for (size_t i = 0; i < n; i++) {
    pthread_mutex_lock(&cs[i]->mu);
    json_array_append_new(all, describe(cs[i]));
    pthread_mutex_unlock(&cs[i]->mu);
  }
  free(cs);
  *out = all;
  return 0;
}

/* Sets rec[member] and writes the record; r->mu taken here. */
static int update_rec(rdb *r, rdb_cluster *c, const char *member, json_t *value, err *e)
{
  pthread_mutex_lock(&r->mu);
  json_t *copy = json_deep_copy(c->rec);
  json_object_set_new(copy, member, value);
  int rc = put_rec(r, r->dbi_clusters, c->id, copy, e);
  if (rc == 0) {
    json_t *old = c->rec;
    c->rec = copy;
    json_decref(old);
  } else {
    json_decref(copy);
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

int rdb_cluster_modify(rdb *r, const char *id, json_t *in, json_t **out, err *e)
{
  rdb_cluster *c = rdb_cluster_find(r, id);
  if (c == NULL)
    return err_set(e, ERR_NOT_FOUND, "DBCluster %s not found.", id != NULL ? id : "");
  int rc = 0;
  pthread_mutex_lock(&c->mu);
  json_t *he = json_object_get(in, "EnableHttpEndpoint");
  if (he != NULL)
    rc = update_rec(r, c, "HttpEndpointEnabled", json_boolean(json_is_true(he)), e);
  json_t *sc = json_object_get(in, "ServerlessV2ScalingConfiguration");
  if (rc == 0 && sc != NULL) {
    json_t *cur = json_deep_copy(json_object_get(c->rec, "ServerlessV2ScalingConfiguration"));
    json_object_update(cur, sc);
    double minc = json_number_value(json_object_get(cur, "MinCapacity"));
    double maxc = json_number_value(json_object_get(cur, "MaxCapacity"));
    json_int_t p = json_integer_value(json_object_get(cur, "SecondsUntilAutoPause"));
    if (minc < 0 || maxc < 1 || maxc > 256 || minc > maxc || p < 1 || p > 86400) {
      json_decref(cur);
      rc = err_set(e, ERR_INVALID, "Invalid ServerlessV2ScalingConfiguration");
    } else {
      rc = update_rec(r, c, "ServerlessV2ScalingConfiguration", cur, e);
    }
  }
  if (rc == 0)
    *out = describe(c);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int rdb_cluster_stop(rdb *r, const char *id, json_t **out, err *e)
{
  rdb_cluster *c = rdb_cluster_find(r, id);
  if (c == NULL)
    return err_set(e, ERR_NOT_FOUND, "DBCluster %s not found.", id != NULL ? id : "");
  rdb_tx_drop_cluster(r, c);
  pthread_mutex_lock(&c->mu);
  int rc = 0;
  if (json_is_true(json_object_get(c->rec, "Stopped")))
    rc = err_set(e, ERR_CONFLICT, "DbCluster %s is in stopped state.", c->id);
  if (rc == 0 && c->active > 0)
    rc = err_set(e, ERR_CONFLICT, "DbCluster %s has statements running.", c->id);
  if (rc == 0) {
    stop_process(c);
    rc = update_rec(r, c, "Stopped", json_true(), e);
  }
  if (rc == 0)
    *out = describe(c);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int rdb_cluster_start(rdb *r, const char *id, json_t **out, err *e)
{
  rdb_cluster *c = rdb_cluster_find(r, id);
  if (c == NULL)
    return err_set(e, ERR_NOT_FOUND, "DBCluster %s not found.", id != NULL ? id : "");
  pthread_mutex_lock(&c->mu);
  int rc = 0;
  if (!json_is_true(json_object_get(c->rec, "Stopped")))
    rc = err_set(e, ERR_CONFLICT, "DbCluster %s is not in stopped state.", c->id);
  if (rc == 0)
    rc = update_rec(r, c, "Stopped", json_false(), e);
  if (rc == 0)
    *out = describe(c);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

static int secret_delete_locked(rdb *r, const char *id, json_t **out, err *e);

int rdb_cluster_delete(rdb *r, const char *id, json_t **out, err *e)
{
  *out = NULL;
  rdb_cluster *c = rdb_cluster_find(r, id);
  if (c == NULL)
    return err_set(e, ERR_NOT_FOUND, "DBCluster %s not found.", id != NULL ? id : "");
  rdb_tx_drop_cluster(r, c);
  pthread_mutex_lock(&c->mu);
  stop_process(c);
  pthread_mutex_lock(&r->mu);
  int rc = put_rec(r, r->dbi_clusters, c->id, NULL, e);
  if (rc == 0) {
    json_t *d = describe(c);
    json_object_set_new(d, "Status", json_string("deleting"));
    *out = d;
    const char *sarn = json_string_value(
        json_object_get(json_object_get(c->rec, "MasterUserSecret"), "SecretArn"));
    if (sarn != NULL) {
      json_t *gone = NULL;
      err e2 = {0};
      secret_delete_locked(r, sarn, &gone, &e2);
      json_decref(gone);
    }
    for (size_t i = 0; i < r->nclusters; i++) {
      if (r->clusters[i] == c) {
        r->clusters[i] = r->clusters[--r->nclusters];
        break;
      }
    }
    r->graveyard = xrealloc(r->graveyard, (r->ngraveyard + 1) * sizeof *r->graveyard);
    r->graveyard[r->ngraveyard++] = c;
    c->deleted = true;
  }
  pthread_mutex_unlock(&r->mu);
  if (rc == 0)
    rm_tree(c->dir);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

/* ---- secrets ---- */

static json_t *secret_find(rdb *r, const char *id)
{
  if (id == NULL)
    return NULL;
  json_t *s = json_object_get(r->secrets, id);
  if (s != NULL)
    return s;
  const char *k;
  json_t *v;
  json_object_foreach(r->secrets, k, v)
  {
    const char *arn = json_string_value(json_object_get(v, "ARN"));
    if (arn != NULL && strcmp(arn, id) == 0)
      return v;
  }
  return NULL;
}

static json_t *secret_public(json_t *s, bool value)
{
  json_t *o = json_pack("{s:O, s:O}", "ARN", json_object_get(s, "ARN"), "Name",
                        json_object_get(s, "Name"));
  if (value) {
    json_object_set(o, "VersionId", json_object_get(s, "VersionId"));
    json_object_set(o, "SecretString", json_object_get(s, "SecretString"));
    json_object_set_new(o, "VersionStages", json_pack("[s]", "AWSCURRENT"));
    json_object_set(o, "CreatedDate", json_object_get(s, "CreatedDate"));
  }
  return o;
}

static int secret_create_locked(rdb *r, const char *name, const char *value,
                                const char *description, json_t **out, err *e)
{
  *out = NULL;
  if (name == NULL || name[0] == '\0' || strlen(name) > 512)
    return err_set(e, ERR_INVALID, "Invalid name. Must be a valid name containing "
                   "alphanumeric characters, or any of the following: -/_+=.@!");
  if (value == NULL)
    return err_set(e, ERR_INVALID, "You must provide either SecretString or SecretBinary.");
  if (strlen(value) > 65536)
    return err_set(e, ERR_INVALID, "SecretString must be at most 65536 bytes");
  if (json_object_get(r->secrets, name) != NULL)
    return err_set(e, ERR_ENTITY_EXISTS, "The operation failed because the secret %s already "
                   "exists.", name);
  static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  uint8_t raw[6];
  random_bytes(raw, sizeof raw);
  char suffix[7];
  for (int i = 0; i < 6; i++)
    suffix[i] = alnum[raw[i] % 62];
  suffix[6] = '\0';
  char version[37];
  uuid_v4(version);
  json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:f, s:s}", "Name", name, "ARN", "",
                        "SecretString", value, "VersionId", version, "CreatedDate",
                        (double)time_now_ms() / 1000.0, "Description",
                        description != NULL ? description : "");
  json_object_set_new(s, "ARN", json_sprintf(SECRET_ARN_PREFIX "%s-%s", name, suffix));
  int rc = put_rec(r, r->dbi_secrets, name, s, e);
  if (rc != 0) {
    json_decref(s);
    return rc;
  }
  json_object_set_new(r->secrets, name, s);
  *out = json_pack("{s:O, s:O, s:O}", "ARN", json_object_get(s, "ARN"), "Name",
                   json_object_get(s, "Name"), "VersionId", json_object_get(s, "VersionId"));
  return 0;
}

int rdb_secret_create(rdb *r, const char *name, const char *value, const char *description,
                      json_t **out, err *e)
{
  pthread_mutex_lock(&r->mu);
  int rc = secret_create_locked(r, name, value, description, out, e);
  pthread_mutex_unlock(&r->mu);
  return rc;
}

int rdb_secret_get(rdb *r, const char *id, json_t **out, err *e)
{
  pthread_mutex_lock(&r->mu);
  json_t *s = secret_find(r, id);
  if (s != NULL)
    *out = secret_public(s, true);
  pthread_mutex_unlock(&r->mu);
  if (s == NULL)
    return err_set(e, ERR_NOT_FOUND, "Secrets Manager can't find the specified secret.");
  return 0;
}

json_t *rdb_secret_list(rdb *r)
{
  json_t *list = json_array();
  pthread_mutex_lock(&r->mu);
  const char *k;
  json_t *v;
  json_object_foreach(r->secrets, k, v)
  {
    json_t *o = secret_public(v, false);
    json_object_set(o, "Description", json_object_get(v, "Description"));
    json_object_set(o, "CreatedDate", json_object_get(v, "CreatedDate"));
    json_array_append_new(list, o);
  }
  pthread_mutex_unlock(&r->mu);
  return list;
}

static int secret_delete_locked(rdb *r, const char *id, json_t **out, err *e)
{
  json_t *s = secret_find(r, id);
  if (s == NULL)
    return err_set(e, ERR_NOT_FOUND, "Secrets Manager can't find the specified secret.");
  const char *name = json_string_value(json_object_get(s, "Name"));
  int rc = put_rec(r, r->dbi_secrets, name, NULL, e);
  if (rc != 0)
    return rc;
  *out = json_pack("{s:O, s:O, s:f}", "ARN", json_object_get(s, "ARN"), "Name",
                   json_object_get(s, "Name"), "DeletionDate", (double)time_now_ms() / 1000.0);
  json_object_del(r->secrets, name);
  return 0;
}

int rdb_secret_delete(rdb *r, const char *id, json_t **out, err *e)
{
  pthread_mutex_lock(&r->mu);
  int rc = secret_delete_locked(r, id, out, e);
  pthread_mutex_unlock(&r->mu);
  return rc;
}

int rdb_secret_credentials(rdb *r, const char *arn, json_t **rec, const char **user,
                           const char **password, err *e)
{
  *rec = NULL;
  pthread_mutex_lock(&r->mu);
  json_t *s = secret_find(r, arn);
  const char *text = json_string_value(json_object_get(s, "SecretString"));
  json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;
  pthread_mutex_unlock(&r->mu);
  if (s == NULL)
    return err_set(e, ERR_INVALID, "Error fetching secret %s : Secrets Manager can't find the "
                   "specified secret.", arn != NULL ? arn : "");
  *user = json_string_value(json_object_get(v, "username"));
  *password = json_string_value(json_object_get(v, "password"));
  if (*user == NULL || *password == NULL) {
    json_decref(v);
    return err_set(e, ERR_INVALID, "The secret %s does not hold a username and a password",
                   arn);
  }
  *rec = v;
  return 0;
}

void rdb_metrics(rdb *r, buf *out)
{
  buf_puts(out, "# TYPE tarn_rdb_running gauge\n# TYPE tarn_rdb_resumes_total counter\n"
                "# TYPE tarn_rdb_last_resume_seconds gauge\n# TYPE tarn_rdb_waiting gauge\n");
  /* c->mu is never taken under r->mu (the order is c->mu, then r->mu) */
  pthread_mutex_lock(&r->mu);
  size_t n = r->nclusters;
  rdb_cluster **cs = xmalloc((n + 1) * sizeof *cs);
  if (n > 0)
    memcpy(cs, r->clusters, n * sizeof *cs);
  pthread_mutex_unlock(&r->mu);
  for (size_t i = 0; i < n; i++) {
    rdb_cluster *c = cs[i];
    size_t nw = 0;
    pthread_mutex_lock(&r->wmu);
    for (rdb_waiter *w = r->waiting; w != NULL; w = w->next)
      nw += w->c == c;
    bool starting = c->starting;
    pthread_mutex_unlock(&r->wmu);
    buf_printf(out, "tarn_rdb_waiting{cluster=\"%s\"} %zu\n", c->id, nw);
    /* a resume holds c->mu for its length: a scrape does not wait for it */
    if (starting ? pthread_mutex_trylock(&c->mu) != 0 : pthread_mutex_lock(&c->mu) != 0) {
      buf_printf(out, "tarn_rdb_running{cluster=\"%s\"} 0\n", c->id);
      continue;
    }
    buf_printf(out, "tarn_rdb_running{cluster=\"%s\"} %d\n", c->id, c->pid > 0);
    buf_printf(out, "tarn_rdb_resumes_total{cluster=\"%s\"} %llu\n", c->id,
               (unsigned long long)c->resumes);
    buf_printf(out, "tarn_rdb_last_resume_seconds{cluster=\"%s\"} %.3f\n", c->id,
               (double)c->last_resume_ms / 1000.0);
    pthread_mutex_unlock(&c->mu);
  }
  free(cs);
}

/* ---- the reaper ---- */

static void *reaper_main(void *arg)
{
  rdb *r = arg;
  pthread_mutex_lock(&r->stop_mu);
  while (!r->stopping) {
    struct timespec ts = time_deadline(CLOCK_REALTIME, 250);
    pthread_cond_timedwait(&r->stop_cv, &r->stop_mu, &ts);
    if (r->stopping)
      break;
    pthread_mutex_unlock(&r->stop_mu);
    int64_t now = time_mono_ms();
    rdb_tx_expire(r, now);
    waiters_expire(r, now, ERR_DB_RESUMING);
    pthread_mutex_lock(&r->mu);
    size_t n = r->nclusters;
    rdb_cluster **cs = xmalloc((n + 1) * sizeof *cs);
    if (n > 0)
    if (n > 0)
      memcpy(cs, r->clusters, n * sizeof *cs);
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < n; i++) {
      rdb_cluster *c = cs[i];
      if (pthread_mutex_trylock(&c->mu) != 0)
        continue;
      if (c->pid > 0) {
        int st;
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
          c->pid = 0;
          pool_close(c);
        }
      }
      json_t *sc = json_object_get(c->rec, "ServerlessV2ScalingConfiguration");
      double minc = json_number_value(json_object_get(sc, "MinCapacity"));
      int64_t pause_ms = json_integer_value(json_object_get(sc, "SecondsUntilAutoPause")) * 1000;
      if (c->pid > 0 && minc == 0 && c->active == 0 && c->ntx == 0 &&
          now - c->last_used_ms >= pause_ms)
        stop_process(c);
      pthread_mutex_unlock(&c->mu);
    }
    free(cs);
    pthread_mutex_lock(&r->stop_mu);
  }
  pthread_mutex_unlock(&r->stop_mu);
  return NULL;
}

/* ---- open, close ---- */

static int load(rdb *r, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(r->env, &txn, e);
  if (rc != 0)
    return rc;
  unsigned dbis[3] = {r->dbi_clusters, r->dbi_secrets, r->dbi_snapshots};
  for (int d = 0; d < 3 && rc == 0; d++) {
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, dbis[d], &cur)) != 0) {
      rc = lmdb_error(e, rc, "read the database state");
      break;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0) {
      json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
      char key[600];
      snprintf(key, sizeof key, "%.*s", (int)(k.mv_size < 599 ? k.mv_size : 599),
               (char *)k.mv_data);
      if (rec != NULL && d == 0 && json_is_true(json_object_get(rec, "Creating"))) {
        /* tarn stopped during its initdb: the creation never answered */
        r->halfmade = xrealloc(r->halfmade, (r->nhalfmade + 1) * sizeof *r->halfmade);
        r->halfmade[r->nhalfmade++] = cluster_new(r, key, rec);
      } else if (rec != NULL && d == 0) {
        r->clusters = xrealloc(r->clusters, (r->nclusters + 1) * sizeof *r->clusters);
        r->clusters[r->nclusters++] = cluster_new(r, key, rec);
      } else if (rec != NULL && d == 1) {
        json_object_set_new(r->secrets, key, rec);
      } else if (rec != NULL) {
        json_object_set_new(r->snapshots, key, rec);
      }
      mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
  }
  mdb_txn_abort(txn);
  return rc;
}

int rdb_open(const rdb_options *o, rdb **out, err *e)
{
  *out = NULL;
  rdb *r = xcalloc(1, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  pthread_mutex_init(&r->tx_mu, NULL);
  pthread_mutex_init(&r->stop_mu, NULL);
  pthread_cond_init(&r->stop_cv, NULL);
  pthread_mutex_init(&r->wmu, NULL);
  pthread_cond_init(&r->wcv, NULL);
  r->ready_tail = &r->ready;
  r->resume_wait_ms = o->resume_wait_ms == 0 ? RDB_RESUME_WAIT_MS : o->resume_wait_ms;
  r->resume_delay_ms = o->resume_delay_ms;
  r->secrets = json_object();
  r->snapshots = json_object();
  r->tx_idle_ms = o->tx_idle_ms > 0 ? o->tx_idle_ms : RDB_TX_IDLE_MS;
  snprintf(r->root, sizeof r->root, "%s/rdb", o->data_dir);
  snprintf(r->bindir, sizeof r->bindir, "%s",
           o->pg_bindir != NULL ? o->pg_bindir : "/usr/lib/postgresql/15/bin");
  /* as root PostgreSQL runs as `postgres` (it refuses root); as anyone else, as that user */
  const char *who = o->run_as != NULL ? o->run_as : "postgres";
  struct passwd *pw = geteuid() == 0 ? getpwnam(who) : getpwuid(geteuid());
  char bin[1100];
  snprintf(bin, sizeof bin, "%s/postgres", r->bindir);
  int rc = 0;
  if (access(bin, X_OK) != 0)
    rc = err_set(e, ERR_UNAVAILABLE, "PostgreSQL is not installed ('%s'): apt-get install "
                 "postgresql", bin);
  else if (pw == NULL)
    rc = err_set(e, ERR_UNAVAILABLE, "there is no user '%s' to run PostgreSQL as", who);
  if (rc == 0) {
    r->uid = pw->pw_uid;
    r->gid = pw->pw_gid;
    if (mkdir(r->root, 0700) != 0 && errno != EEXIST)
      rc = err_set(e, err_from_errno(errno), "cannot create '%s': %s", r->root, strerror(errno));
  }
  char meta[4200];
  snprintf(meta, sizeof meta, "%s/meta", r->root);
  lmdb_env_options lo = {.map_size = 1ull << 30, .max_dbs = 4, .max_readers = 256};
  MDB_env *env = NULL;
  if (rc == 0)
    rc = lmdb_env_open(&env, meta, &lo, "the database state", e);
  r->env = env;
  if (rc == 0) {
    MDB_txn *txn;
    MDB_dbi a, b, c;
    int mrc;
    if ((mrc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
        (mrc = mdb_dbi_open(txn, "clusters", MDB_CREATE, &a)) != 0 ||
        (mrc = mdb_dbi_open(txn, "secrets", MDB_CREATE, &b)) != 0 ||
        (mrc = mdb_dbi_open(txn, "snapshots", MDB_CREATE, &c)) != 0 ||
        (mrc = mdb_txn_commit(txn)) != 0) {
      rc = lmdb_error(e, mrc, "open the database state");
    } else {
      r->dbi_clusters = a;
      r->dbi_secrets = b;
      r->dbi_snapshots = c;
    }
  }
  if (rc == 0)
    rc = load(r, e);
  /* clusters whose creation never finished: their record, then their directory (1) */
  for (size_t i = 0; rc == 0 && i < r->nhalfmade; i++) {
    rdb_cluster *c = r->halfmade[i];
    stop_stale(c->dir);
    if ((rc = put_rec(r, r->dbi_clusters, c->id, NULL, e)) == 0)
      rm_tree(c->dir);
  }
  /* snapshots whose copy never finished: their record, then their directory */
  const char *sk;
  json_t *sv;
  void *tmp;
  json_object_foreach_safe(r->snapshots, tmp, sk, sv)
  {
    if (rc != 0 || !json_is_true(json_object_get(sv, "Creating")))
      continue;
    char dir[4400];
    snap_dir(r, sk, dir, sizeof dir);
    if ((rc = put_rec(r, r->dbi_snapshots, sk, NULL, e)) == 0) {
      rm_tree(dir);
      json_object_del(r->snapshots, sk);
    }
  }
  for (size_t i = 0; i < r->nhalfmade; i++)
    cluster_free(r->halfmade[i]);
  free(r->halfmade);
  r->halfmade = NULL;
  r->nhalfmade = 0;
  if (rc == 0) {
    if (pthread_create(&r->reaper, NULL, reaper_main, r) != 0)
      rc = err_set(e, ERR_INTERNAL, "cannot start the database reaper");
    else
      r->reaper_running = true;
  }
  for (int i = 0; rc == 0 && i < RDB_WORKERS; i++) {
    if (pthread_create(&r->workers[i], NULL, worker_main, r) != 0)
      rc = err_set(e, ERR_INTERNAL, "cannot start the database workers");
    else
      r->nworkers++;
  }
  if (rc != 0) {
    rdb_close(r);
    return rc;
  }
  *out = r;
  return 0;
}

rdb *rdb_close(rdb *r)
{
  if (r == NULL)
    return NULL;
  pthread_mutex_lock(&r->stop_mu);
  r->stopping = true;
  pthread_cond_broadcast(&r->stop_cv);
  pthread_mutex_unlock(&r->stop_mu);
  if (r->reaper_running)
    pthread_join(r->reaper, NULL);
  pthread_mutex_lock(&r->wmu);
  r->wstop = true;
  pthread_cond_broadcast(&r->wcv);
  pthread_mutex_unlock(&r->wmu);
  for (int i = 0; i < r->nworkers; i++)
    pthread_join(r->workers[i], NULL);
  waiters_expire(r, INT64_MAX, ERR_UNAVAILABLE);
  free(r->startq);
  rdb_tx_expire(r, INT64_MAX);
  for (size_t i = 0; i < r->nclusters; i++) {
    pthread_mutex_lock(&r->clusters[i]->mu);
    stop_process(r->clusters[i]);
    pthread_mutex_unlock(&r->clusters[i]->mu);
    cluster_free(r->clusters[i]);
  }
  for (size_t i = 0; i < r->ngraveyard; i++)
    cluster_free(r->graveyard[i]);
  free(r->clusters);
  free(r->graveyard);
  if (r->env != NULL)
    mdb_env_close(r->env);
  json_decref(r->secrets);
  json_decref(r->snapshots);
  pthread_mutex_destroy(&r->mu);
  pthread_mutex_destroy(&r->tx_mu);
  pthread_mutex_destroy(&r->stop_mu);
  pthread_cond_destroy(&r->stop_cv);
  pthread_mutex_destroy(&r->wmu);
  pthread_cond_destroy(&r->wcv);
  free(r);
  return NULL;
}
