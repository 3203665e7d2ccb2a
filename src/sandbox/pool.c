/* sandbox/pool.c -- instances started ahead, claimed by a function at its
 * cold start (sandbox.h sandbox_pool_*).
 *
 * Why: a zygote's instance (zygote.c) still spent ~8 ms building its
 * sandbox (the zygote's clone, namespaces, id maps, root, seccomp, init's
 * fork of the program) and ~20 ms in the program's after-fork work before
 * it asked for its first event, most of it page faults, all on the
 * Invoke's path. None of it depends on the function. A pooled instance
 * does all of it ahead (init.c pool_instance, zygote_lib.c
 * tarn_zygote_claimed) and stops where the function begins; the claim
 * does the rest: cgroup limits, the code and layers mounted, /tmp sized,
 * then command line, environment and log handed to the program, which
 * imports the handler.
 *
 * Security (what a pooled instance is, against a fresh one):
 *   - Same isolation: it is built by the same code (new user, pid, mount,
 *     network, IPC, UTS and cgroup namespaces, its own cgroup and host uid,
 *     read-only root, no capability and the seccomp filter in the program
 *     before the interpreter runs again). Its hostname is its pool id
 *     (pool-NAME-N), which names no function.
 *   - No more rights: until its claim init keeps its capabilities inside
 *     the instance's user namespace (what any init has while it builds
 *     the root), to mount the code at the claim; it drops them, sets
 *     no_new_privs and loads the filter before the program receives
 *     anything of the function. No function code runs before that: the
 *     program runs the runtime client only, the same for every function.
 *   - One claim: an instance leaves the pool when it is claimed and never
 *     goes back; it ends with its program (sandbox_free), so nothing a
 *     function leaves (files in /tmp, processes, memory) meets another
 *     function, tenant or Invoke of another function. Two claims never get
 *     the same instance (taken under the pool's lock).
 *   - Limits: waiting, it is in its own cgroup at conf->memory_mb; the claim
 *     writes the function's memory, CPU and pids limits before the code is
 *     mounted; rlimits are lowered to the function's in the program
 *     (a spec whose max_procs or max_open_files differ from the pool's
 *     does not claim: they are fixed when the program was forked).
 *   - Bounded: at most conf->size instances wait; each holds its own
 *     copy-on-write share of the zygote plus the pages the rehearsal
 *     pre-faults (bench/RESULTS.md, "instance pool").
 *
 * Invariants:
 *   (1) ready[] and count under mu; an instance is in ready[] or owned by
 *       exactly one caller.
 *   (2) The refill runs in the pool's own thread, never in a claim: a
 *       claim takes one and wakes the thread.
 *   (3) A fill that fails (the zygote cannot serve, the host refuses)
 *       waits RETRY_MS before the next; claims meanwhile miss and callers
 *       start instances the usual way.
 *   (4) After MAX_FAILED_CLAIMS claims in a row failed (a server that may
 *       not make overlays: not root), the pool stops: its instances end and
 *       every claim misses, instead of wasting an instance per cold start.
 */
#include "sandbox/internal.h"

#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 64                       /* instances per pool, at most */
#define RETRY_MS 2000                     /* (3) */
#define MAX_FAILED_CLAIMS 3               /* (4) */

struct sandbox_pool {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  pthread_t thread;
  bool started;                           /* the refill thread runs */
  bool stop;
  char name[17];
  sandbox_zygote *zygote;
  char *runtime_dir;
  sandbox_forward forwards[SANDBOX_MAX_FORWARDS];
  size_t nforwards;
  uint32_t max_procs;
  uint32_t max_open_files;
  uint32_t memory_mb;
  size_t size;
  sandbox *ready[POOL_MAX];               /* (1), oldest first */
  size_t count;
  unsigned failed_claims;                 /* (4): in a row */
};

static atomic_uint_fast64_t next_id;

sandbox_pool *sandbox_pool_new(const sandbox_pool_conf *c)
{
  if (c == NULL || c->size == 0 || c->zygote == NULL || c->name == NULL || strlen(c->name) > 16 ||
      c->nforwards > SANDBOX_MAX_FORWARDS || c->memory_mb < 16 || c->max_procs < 2)
    return NULL;
  sandbox_pool *p = xcalloc(1, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cond, &ca);
  pthread_condattr_destroy(&ca);
  snprintf(p->name, sizeof p->name, "%s", c->name);
  p->zygote = c->zygote;
  p->runtime_dir = c->runtime_dir != NULL ? xstrdup(c->runtime_dir) : NULL;
  for (size_t i = 0; i < c->nforwards; i++)
    p->forwards[i] = (sandbox_forward){c->forwards[i].port, xstrdup(c->forwards[i].host_socket), NULL};
  p->nforwards = c->nforwards;
  p->max_procs = c->max_procs;
  p->max_open_files = c->max_open_files;
  p->memory_mb = c->memory_mb;
  p->size = c->size < POOL_MAX ? c->size : POOL_MAX;
  return p;
}

/* One instance for the pool, or NULL. Outside mu. */
static sandbox *fill_one(sandbox_pool *p)
{
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (devnull < 0)
    return NULL;
  char id[64];
  snprintf(id, sizeof id, "pool-%s-%llu", p->name, (unsigned long long)atomic_fetch_add(&next_id, 1));
  static const char *const argv[] = {"tarn-pooled", NULL};
  static const char *const envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
  sandbox_spec spec = {
      .id = id,
      .code_dir = "/", /* not opened: the claim brings the code */
      .runtime_dir = p->runtime_dir,
      .argv = argv,
      .envp = envp,
      .memory_mb = p->memory_mb,
      .tmp_mb = 1, /* resized at the claim */
      .max_procs = p->max_procs,
      .max_open_files = p->max_open_files,
      .forwards = p->forwards,
      .nforwards = p->nforwards,
      .log_fd = devnull,
      .zygote = p->zygote,
  };
  sandbox *sb = NULL;
  err e = {0};
  if (sandbox__start_pooled(&spec, &sb, &e) != 0)
    sb = NULL; /* the claims miss meanwhile (3) */
  close(devnull);
  return sb;
}

static void *refill(void *arg)
{
  sandbox_pool *p = arg;
  pthread_mutex_lock(&p->mu);
  int64_t retry_at = 0;
  while (!p->stop) {
    int64_t now = sandbox__now_us();
    if (p->count < p->size && now >= retry_at) {
      pthread_mutex_unlock(&p->mu);
      sandbox *sb = fill_one(p);
      pthread_mutex_lock(&p->mu);
      if (sb == NULL) {
        retry_at = sandbox__now_us() + RETRY_MS * 1000;
      } else if (p->stop || p->count >= p->size) {
        pthread_mutex_unlock(&p->mu);
        sandbox_free(sb);
        pthread_mutex_lock(&p->mu);
      } else {
        p->ready[p->count++] = sb;
      }
      continue;
    }
    if (p->count < p->size) {
      struct timespec ts = {.tv_sec = retry_at / 1000000, .tv_nsec = (retry_at % 1000000) * 1000};
      pthread_cond_timedwait(&p->cond, &p->mu, &ts);
    } else {
      pthread_cond_wait(&p->cond, &p->mu);
    }
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* spec may take a pool's instance: everything fixed before the claim is
 * what spec asks for. */
static bool fits(const sandbox_pool *p, const sandbox_spec *spec)
{
  if (spec->zygote != p->zygote || spec->max_procs != p->max_procs ||
      spec->max_open_files != p->max_open_files || spec->nforwards != p->nforwards)
    return false;
  if ((spec->runtime_dir == NULL) != (p->runtime_dir == NULL) ||
      (spec->runtime_dir != NULL && strcmp(spec->runtime_dir, p->runtime_dir) != 0))
    return false;
  for (size_t i = 0; i < p->nforwards; i++)
    if (spec->forwards[i].port != p->forwards[i].port ||
        strcmp(spec->forwards[i].host_socket, p->forwards[i].host_socket) != 0)
      return false;
  return true;
}

int sandbox_pool_claim(sandbox_pool *p, const sandbox_spec *spec, sandbox **out, err *e)
{
  *out = NULL;
  if (p == NULL || spec == NULL || !fits(p, spec))
    return 1;
  pthread_mutex_lock(&p->mu);
  if (!p->started && !p->stop)
    p->started = pthread_create(&p->thread, NULL, refill, p) == 0;
  sandbox *sb = NULL;
  if (p->count > 0 && !p->stop) {
    sb = p->ready[0]; /* the oldest (1) */
    memmove(p->ready, p->ready + 1, --p->count * sizeof p->ready[0]);
  }
  pthread_cond_signal(&p->cond); /* (2) */
  pthread_mutex_unlock(&p->mu);
  if (sb == NULL)
    return 1;
  int rc = sandbox__claim(sb, spec, e);
  sandbox *stale[POOL_MAX];
  size_t nstale = 0;
  pthread_mutex_lock(&p->mu);
  p->failed_claims = rc == 0 ? 0 : p->failed_claims + 1;
  if (p->failed_claims >= MAX_FAILED_CLAIMS && !p->stop) {
    p->stop = true; /* (4): the thread ends; claims miss from now on */
    memcpy(stale, p->ready, p->count * sizeof p->ready[0]);
    nstale = p->count;
    p->count = 0;
    pthread_cond_signal(&p->cond);
  }
  pthread_mutex_unlock(&p->mu);
  for (size_t i = 0; i < nstale; i++)
    sandbox_free(stale[i]);
  if (rc != 0) {
    sandbox_free(sb);
    return rc;
  }
  *out = sb;
  return 0;
}

sandbox_pool *sandbox_pool_free(sandbox_pool *p)
{
  if (p == NULL)
    return NULL;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_signal(&p->cond);
  bool started = p->started;
  pthread_mutex_unlock(&p->mu);
  if (started)
    pthread_join(p->thread, NULL);
  for (size_t i = 0; i < p->count; i++)
    sandbox_free(p->ready[i]);
  for (size_t i = 0; i < p->nforwards; i++)
    free((char *)p->forwards[i].host_socket);
  free(p->runtime_dir);
  pthread_cond_destroy(&p->cond);
  pthread_mutex_destroy(&p->mu);
  free(p);
  return NULL;
}
