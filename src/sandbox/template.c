/* sandbox/template.c -- templates on the server's side: a function's
 * program, loaded once, whose forks are that function's instances.
 *
 * Why: a Python or Node.js function's instance, even a fork of the
 * runtime's zygote claimed from the pool (pool.c), still loads the
 * handler's module and everything it imports on the invocation's path: for
 * a handler that imports boto3, most of a second here. A template loads it
 * once; each new instance is a fork of it (bench/RESULTS.md, "Templates").
 *
 * What a template is, and why it is safe (sandbox.h, shell.c, zygote_lib.c,
 * seccomp.c (6)):
 *   - The template is an instance of its function like any other (built
 *     by the runtime's zygote: namespaces, cgroup with the function's
 *     limits, read-only root, no capability, seccomp), so the function's
 *     code that runs at import runs sandboxed as it always did. Its filter
 *     lacks one row, setns: joining a namespace needs a capability in the
 *     namespace's owner, and the template has none but in the user
 *     namespaces the spawner makes for its forks.
 *   - Each fork's namespaces are made by the spawner (shell.c), which
 *     never runs a function's code; the fork joins them, drops every
 *     capability and loads the whole filter before the interpreter runs
 *     again. What a fork shares with the template, and so with the other
 *     forks of the same function: the memory the import left
 *     (copy-on-write), fds the import opened (a socket opened at import is
 *     one socket: re-open it in an after-restore hook, as SnapStart
 *     documents), the network namespace (each other's loopback listeners,
 *     which Lambda does not share: see shell.c for why not per fork), the
 *     files the import left in /tmp (read-only below the fork's own), the
 *     host uid. Nothing is shared with another function.
 *   - Randomness the import drew (a module-level uuid) is the template's,
 *     the same in every fork; what the interpreter keeps (random's state,
 *     the hash secret) is re-seeded or replaced as for a zygote's fork
 *     (zygote.c), and the after-restore hooks run in each fork (SnapStart's
 *     contract, zygote.py).
 *
 * Invariants:
 *   (1) One fork at a time on a template's channel (t->mu): a request, then
 *       its one int32 answer.
 *   (2) A template lives while its owner or a fork holds it (refs): a
 *       fork's waiter lives in the template's pid namespace (zygote_lib.c),
 *       so ending the template would end its forks.
 *   (3) A fork is an instance like sandbox_start's: the caller waits for
 *       it, kills and frees it the same way; its status is the fork's.
 *   (4) Forks are made ahead: a thread keeps TEMPLATE_AHEAD of them ready,
 *       made like the template's first fork (its limits, forwards, command
 *       line and environment), each in its shell, dropped and re-seeded,
 *       waiting in its interpreter with /dev/null for a log and nothing of
 *       an invocation. A start claims one: its environment (the instance's)
 *       and its log are sent, and only the function's own after-restore
 *       work and its first event are left on the path. A start whose spec
 *       differs, or that finds none ready, makes its fork on its path.
 *
 * Start reading at sandbox_template_fork().
 */
#include "sandbox/internal.h"

#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TEMPLATE_AHEAD 2                  /* forks made ahead (4) */

/* A fork's namespaces and pid 1, made by the spawner (shell.c). */
typedef struct shell {
  sandbox *sb;
  uint16_t ports[SANDBOX_MAX_FORWARDS];
  int ns[SANDBOX_SHELL_NS_COUNT];
  int exit_fd;
} shell;

/* A fork made ahead: its instance (its shell's pid 1), the ports its
 * forwards listen on, and our end of its claim socket. */
typedef struct ahead {
  sandbox *sb;
  uint16_t ports[SANDBOX_MAX_FORWARDS];
  int claim;
} ahead;

/* What forks are made ahead for: a copy of the first fork's spec (its id
 * and log aside). */
typedef struct ahead_spec {
  sandbox_spec spec;
  sandbox_forward forwards[SANDBOX_MAX_FORWARDS];
  char **argv;
  char **envp;
  char *strings;                          /* what they all point into */
} ahead_spec;

struct sandbox_template {
  pthread_mutex_t mu;                     /* (1) */
  sandbox *sb;                            /* the template's own instance; its ctl is the channel */
  atomic_int refs;                        /* (2) */
  atomic_bool dead;                       /* its program ended, or its channel broke */
  char id[40];                            /* names the forks made ahead: ID-fN */
  int null_fd;                            /* their log until their claim */
  /* (4), under ahead_mu */
  pthread_mutex_t ahead_mu;
  pthread_cond_t ahead_cond;              /* one was taken, or stop */
  ahead ready[TEMPLATE_AHEAD];
  size_t nready;
  bool have_spec;                         /* spec is set, the refill thread runs */
  bool stop;
  ahead_spec spec;
  uint64_t made;                          /* forks made ahead: their numbers */
  pthread_t refill;
};

/* One int32 on fd within ms: 0 and *v, or -1 (timed out, closed, short). */
static int recv_int(int fd, int ms, int32_t *v)
{
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long left = ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
    if (left <= 0)
      return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    ssize_t got = recv(fd, v, sizeof *v, MSG_DONTWAIT);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    return got == (ssize_t)sizeof *v ? 0 : -1;
  }
}

int sandbox_template_new(const sandbox_spec *spec, int ready_ms, sandbox_template **out, err *e)
{
  *out = NULL;
  sandbox *sb = NULL;
  int rc = sandbox__start_template(spec, &sb, e);
  if (rc != 0)
    return rc;
  int32_t ready = -1;
  if (recv_int(sandbox__ctl(sb), ready_ms, &ready) != 0 || ready != 0) {
    sandbox_free(sb);
    return err_set(e, ERR_INVALID, "the template '%s' did not load its code within %d ms", spec->id, ready_ms);
  }
  sandbox_template *t = xcalloc(1, sizeof *t);
  pthread_mutex_init(&t->mu, NULL);
  pthread_mutex_init(&t->ahead_mu, NULL);
  pthread_cond_init(&t->ahead_cond, NULL);
  t->sb = sb;
  atomic_init(&t->refs, 1);
  snprintf(t->id, sizeof t->id, "%.30s", spec->id);
  t->null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  *out = t;
  return 0;
}

/* spec's envp with each chosen forward's variable set to its port (vars:
 * room for the variables); NULL-terminated, the caller frees the list. */
static const char **fork_environ(const sandbox_spec *spec, const uint16_t *ports,
                                 char vars[SANDBOX_MAX_FORWARDS][160])
{
  size_t n = 0;
  while (spec->envp[n] != NULL)
    n++;
  const char **out = xcalloc(n + spec->nforwards + 1, sizeof *out);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    bool replaced = false;
    for (size_t f = 0; f < spec->nforwards && !replaced; f++) {
      const char *v = spec->forwards[f].env;
      replaced = v != NULL && strncmp(spec->envp[i], v, strlen(v)) == 0 && spec->envp[i][strlen(v)] == '=';
    }
    if (!replaced)
      out[k++] = spec->envp[i];
  }
  for (size_t f = 0; f < spec->nforwards; f++)
    if (spec->forwards[f].env != NULL) {
      snprintf(vars[f], sizeof vars[f], "%s=127.0.0.1:%u", spec->forwards[f].env, (unsigned)ports[f]);
      out[k++] = vars[f];
    }
  return out;
}

/* head (hsize bytes, its counts already set), then argv (or none), then
 * envp, NUL-terminated; NULL when too large. */
static char *pack(const void *head, size_t hsize, const char *const *argv, const char *const *envp,
                  const char *id, size_t *len, err *e)
{
  size_t size = hsize;
  size_t n = 0;
  for (size_t i = 0; argv != NULL && argv[i] != NULL; i++, n++)
    size += strlen(argv[i]) + 1;
  for (size_t i = 0; envp[i] != NULL; i++, n++)
    size += strlen(envp[i]) + 1;
  if (size > SANDBOX_MSG_MAX || n > SANDBOX_MAX_STRINGS) {
    err_set(e, ERR_INVALID, "program and environment of sandbox '%s' take %zu bytes, more than %d", id, size,
            SANDBOX_MSG_MAX);
    return NULL;
  }
  char *msg = xmalloc(size);
  memcpy(msg, head, hsize);
  char *p = msg + hsize;
  for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
    p = stpcpy(p, argv[i]) + 1;
  for (size_t i = 0; envp[i] != NULL; i++)
    p = stpcpy(p, envp[i]) + 1;
  *len = size;
  return msg;
}

static uint32_t count(const char *const *list)
{
  uint32_t n = 0;
  while (list[n] != NULL)
    n++;
  return n;
}

/* The fork request (internal.h) for spec in a shell with these ports. */
static char *fork_request(const sandbox_spec *spec, const uint16_t *ports, int cg_mode, size_t ncg,
                          bool claim, size_t *len, err *e)
{
  char vars[SANDBOX_MAX_FORWARDS][160];
  const char **envp = fork_environ(spec, ports, vars);
  sandbox__fork_head h = {.magic = SANDBOX_FORK_MAGIC, .nargv = count(spec->argv), .nenvp = count(envp),
                          .ncgfds = (uint32_t)ncg, .cg_mode = (uint32_t)cg_mode,
                          .max_open_files = spec->max_open_files, .claim = claim,
                          .max_file_bytes = spec->max_file_bytes};
  char *msg = pack(&h, sizeof h, spec->argv, envp, spec->id, len, e);
  free(envp);
  return msg;
}

/* (1): the request and its answer; 0, an errno from the template, or -1
 * when its channel is gone. */
static int ask(sandbox_template *t, const char *msg, size_t len, const int *fds, size_t nfds)
{
  int ctl = sandbox__ctl(t->sb);
  pthread_mutex_lock(&t->mu);
  ssize_t n = sandbox__send_fds(ctl, msg, len, fds, nfds);
  int32_t answer = -1;
  if (n != (ssize_t)len || recv_int(ctl, SANDBOX_START_TIMEOUT_MS, &answer) != 0)
    answer = -1;
  pthread_mutex_unlock(&t->mu);
  return answer;
}

static void shell_close(shell *sh)
{
  for (int i = 0; i < SANDBOX_SHELL_NS_COUNT; i++)
    close(sh->ns[i]);
  close(sh->exit_fd);
  sh->sb = sandbox_free(sh->sb); /* its init exits when the exit socket closes unheard, or is killed */
}

/* A fork of t in a new shell, for spec, named id: 0 and *out, its ports
 * (and, with claim >= 0, its end of a claim socket: the fork waits for
 * its claim there), or an error and nothing left. */
static int make_fork(sandbox_template *t, const sandbox_spec *spec, const char *id, bool claim,
                     sandbox **out, uint16_t ports[SANDBOX_MAX_FORWARDS], int *claim_fd, err *e)
{
  *out = NULL;
  sandbox_spec s = *spec;
  s.id = id;
  s.code_dir = "/"; /* the template's */
  s.runtime_dir = NULL;
  s.nopt_dirs = 0;
  s.zygote = NULL;
  s.log_fd = t->null_fd;
  shell sh;
  memset(&sh, 0, sizeof sh);
  int rc = sandbox__start_shell(&s, sandbox__pidfd(t->sb), &sh.sb, sh.ports, sh.ns, &sh.exit_fd, e);
  if (rc != 0)
    return rc;
  int mode = 0;
  int cgfds[CG_COUNT];
  size_t ncg = 0;
  size_t len = 0;
  char *msg = NULL;
  int pair[2] = {-1, -1};
  rc = sandbox__cgroup_fds(sh.sb, &mode, cgfds, &ncg, e);
  if (rc == 0 && claim && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    rc = err_set(e, ERR_INTERNAL, "cannot make the claim socket of sandbox '%s': %s", id, strerror(errno));
  if (rc == 0) {
    msg = fork_request(&s, sh.ports, mode, ncg, claim, &len, e);
    if (msg == NULL)
      rc = ERR_INVALID;
  }
  if (rc == 0) {
    int fds[SANDBOX_FORK_FDS + 1 + CG_COUNT];
    size_t n = 0;
    fds[n++] = claim ? t->null_fd : spec->log_fd;
    for (int i = 0; i < SANDBOX_SHELL_NS_COUNT; i++)
      fds[n++] = sh.ns[i];
    fds[n++] = sh.exit_fd;
    if (claim)
      fds[n++] = pair[1];
    for (size_t i = 0; i < ncg; i++)
      fds[n++] = cgfds[i];
    int answer = ask(t, msg, len, fds, n);
    if (answer < 0) {
      atomic_store(&t->dead, true);
      rc = err_set(e, ERR_UNAVAILABLE, "the template of sandbox '%s' has ended", id);
    } else if (answer != 0) {
      rc = err_set(e, ERR_INTERNAL, "the template could not fork sandbox '%s': %s", id, strerror(answer));
    }
  }
  for (size_t i = 0; i < ncg; i++)
    close(cgfds[i]);
  free(msg);
  if (pair[1] >= 0)
    close(pair[1]);
  if (rc != 0) {
    if (pair[0] >= 0)
      close(pair[0]);
    shell_close(&sh);
    return rc;
  }
  *out = sh.sb;
  memcpy(ports, sh.ports, sizeof sh.ports);
  if (claim_fd != NULL)
    *claim_fd = pair[0];
  sh.sb = NULL;
  shell_close(&sh); /* our copies of what the fork took */
  return 0;
}

/* (4): spec's copy, for the refill thread. */
static void keep_spec(ahead_spec *k, const sandbox_spec *spec)
{
  size_t size = 0;
  size_t nargv = count(spec->argv);
  size_t nenvp = count(spec->envp);
  for (size_t i = 0; i < nargv; i++)
    size += strlen(spec->argv[i]) + 1;
  for (size_t i = 0; i < nenvp; i++)
    size += strlen(spec->envp[i]) + 1;
  for (size_t i = 0; i < spec->nforwards; i++)
    size += strlen(spec->forwards[i].host_socket) + 1 +
            (spec->forwards[i].env != NULL ? strlen(spec->forwards[i].env) + 1 : 0);
  k->strings = xmalloc(size + 1);
  k->argv = xcalloc(nargv + 1, sizeof *k->argv);
  k->envp = xcalloc(nenvp + 1, sizeof *k->envp);
  char *p = k->strings;
  for (size_t i = 0; i < nargv; i++) {
    k->argv[i] = p;
    p = stpcpy(p, spec->argv[i]) + 1;
  }
  for (size_t i = 0; i < nenvp; i++) {
    k->envp[i] = p;
    p = stpcpy(p, spec->envp[i]) + 1;
  }
  k->spec = *spec;
  for (size_t i = 0; i < spec->nforwards; i++) {
    const sandbox_forward *f = &spec->forwards[i];
    k->forwards[i] = (sandbox_forward){.port = f->port, .host_socket = p};
    p = stpcpy(p, f->host_socket) + 1;
    if (f->env != NULL) {
      k->forwards[i].env = p;
      p = stpcpy(p, f->env) + 1;
    }
  }
  k->spec.forwards = k->forwards;
  k->spec.argv = (const char *const *)k->argv;
  k->spec.envp = (const char *const *)k->envp;
  k->spec.id = NULL;
  k->spec.log_fd = -1;
}

/* Whether spec's forks may be the ones made ahead for k: the same limits
 * and forwards (the environment and log come with the claim). */
static bool fits(const ahead_spec *k, const sandbox_spec *spec)
{
  const sandbox_spec *a = &k->spec;
  if (a->memory_mb != spec->memory_mb || a->tmp_mb != spec->tmp_mb || a->max_procs != spec->max_procs ||
      a->max_open_files != spec->max_open_files || a->max_file_bytes != spec->max_file_bytes ||
      a->nforwards != spec->nforwards || count(a->argv) != count(spec->argv))
    return false;
  for (size_t i = 0; a->argv[i] != NULL; i++)
    if (strcmp(a->argv[i], spec->argv[i]) != 0)
      return false;
  for (size_t i = 0; i < a->nforwards; i++) {
    const sandbox_forward *x = &a->forwards[i];
    const sandbox_forward *y = &spec->forwards[i];
    if (strcmp(x->host_socket, y->host_socket) != 0 || (x->env == NULL) != (y->env == NULL) ||
        (y->env != NULL && strcmp(x->env, y->env) != 0))
      return false;
  }
  return true;
}

static void *refill_main(void *arg)
{
  sandbox_template *t = arg;
  pthread_mutex_lock(&t->ahead_mu);
  int failures = 0;
  while (!t->stop && failures < 3 && !atomic_load(&t->dead)) {
    if (t->nready == TEMPLATE_AHEAD) {
      pthread_cond_wait(&t->ahead_cond, &t->ahead_mu);
      continue;
    }
    char id[64];
    snprintf(id, sizeof id, "%s-f%llu", t->id, (unsigned long long)++t->made);
    pthread_mutex_unlock(&t->ahead_mu);
    ahead a;
    err e = {0};
    int rc = make_fork(t, &t->spec.spec, id, true, &a.sb, a.ports, &a.claim, &e);
    pthread_mutex_lock(&t->ahead_mu);
    if (rc != 0) {
      failures++; /* forks are made on their path then */
      continue;
    }
    failures = 0;
    if (t->stop) {
      close(a.claim);
      sandbox_free(a.sb);
      break;
    }
    t->ready[t->nready++] = a;
  }
  pthread_mutex_unlock(&t->ahead_mu);
  return NULL;
}

/* A fork made ahead for spec, or 1 when there is none (the first fork's
 * spec is then kept, and the refill thread started). */
static int take_ahead(sandbox_template *t, const sandbox_spec *spec, ahead *out)
{
  int rc = 1;
  pthread_mutex_lock(&t->ahead_mu);
  if (!t->have_spec) {
    keep_spec(&t->spec, spec);
    t->have_spec = pthread_create(&t->refill, NULL, refill_main, t) == 0;
  } else if (t->nready > 0 && fits(&t->spec, spec)) {
    *out = t->ready[0];
    memmove(t->ready, t->ready + 1, --t->nready * sizeof t->ready[0]);
    pthread_cond_signal(&t->ahead_cond);
    rc = 0;
  }
  pthread_mutex_unlock(&t->ahead_mu);
  return rc;
}

/* Gives a fork made ahead its instance: its environment and log. */
static int claim(const ahead *a, const sandbox_spec *spec, err *e)
{
  char vars[SANDBOX_MAX_FORWARDS][160];
  const char **envp = fork_environ(spec, a->ports, vars);
  sandbox__fork_claim h = {.magic = SANDBOX_FORK_CLAIM_MAGIC, .nenvp = count(envp)};
  size_t len = 0;
  char *msg = pack(&h, sizeof h, NULL, envp, spec->id, &len, e);
  free(envp);
  if (msg == NULL)
    return ERR_INVALID;
  ssize_t n = sandbox__send_fds(a->claim, msg, len, &spec->log_fd, 1);
  free(msg);
  if (n != (ssize_t)len)
    return err_set(e, ERR_UNAVAILABLE, "a fork made ahead for sandbox '%s' has ended", spec->id);
  return 0;
}

int sandbox_template_fork(sandbox_template *t, const sandbox_spec *spec, sandbox **out, err *e)
{
  *out = NULL;
  int64_t begin_us = sandbox__now_us();
  if (atomic_load(&t->dead))
    return err_set(e, ERR_UNAVAILABLE, "the template of sandbox '%s' has ended", spec->id);
  if (spec->nforwards > SANDBOX_MAX_FORWARDS)
    return err_set(e, ERR_INVALID, "sandbox '%s' has more than %d forwards", spec->id, SANDBOX_MAX_FORWARDS);
  sandbox *sb = NULL;
  uint16_t ports[SANDBOX_MAX_FORWARDS];
  ahead a;
  int rc = 0;
  if (take_ahead(t, spec, &a) == 0) {
    rc = claim(&a, spec, e);
    close(a.claim);
    sb = a.sb;
    if (rc != 0)
      sb = sandbox_free(sb);
  }
  if (sb == NULL) /* none made ahead, or it had ended: one on the path */
    rc = make_fork(t, spec, spec->id, false, &sb, ports, NULL, e);
  if (rc != 0)
    return rc;
  atomic_fetch_add(&t->refs, 1);
  sandbox__started(sb, t, begin_us);
  *out = sb;
  return 0;
}

bool sandbox_template_alive(sandbox_template *t)
{
  if (atomic_load(&t->dead))
    return false;
  struct pollfd p = {.fd = sandbox__ctl(t->sb), .events = 0};
  if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)))
    atomic_store(&t->dead, true);
  return !atomic_load(&t->dead);
}

sandbox_template *sandbox_template_ref(sandbox_template *t)
{
  atomic_fetch_add(&t->refs, 1);
  return t;
}

sandbox_template *sandbox_template_release(sandbox_template *t)
{
  if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
    return NULL;
  pthread_mutex_lock(&t->ahead_mu);
  t->stop = true;
  pthread_cond_broadcast(&t->ahead_cond);
  bool joined = t->have_spec;
  pthread_mutex_unlock(&t->ahead_mu);
  if (joined)
    pthread_join(t->refill, NULL);
  for (size_t i = 0; i < t->nready; i++) {
    close(t->ready[i].claim);
    sandbox_free(t->ready[i].sb);
  }
  sandbox_free(t->sb);
  if (t->null_fd >= 0)
    close(t->null_fd);
  if (t->have_spec) {
    free(t->spec.argv);
    free(t->spec.envp);
    free(t->spec.strings);
  }
  pthread_cond_destroy(&t->ahead_cond);
  pthread_mutex_destroy(&t->ahead_mu);
  pthread_mutex_destroy(&t->mu);
  free(t);
  return NULL;
}
