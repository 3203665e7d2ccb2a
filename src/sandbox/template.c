/* sandbox/template.c -- templates on the server's side: a function's
 * program, loaded once, whose forks are that function's instances.
 *
 * Why: a Python function's instance, even a fork of the runtime's zygote
 * claimed from the pool (pool.c), still imports the handler's module and
 * everything it imports on the invocation's path: for a handler that
 * imports boto3, most of a second here. A template imports it once; each
 * new instance is a fork of it (bench/RESULTS.md, "templates").
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

struct sandbox_template {
  pthread_mutex_t mu;                     /* (1) */
  sandbox *sb;                            /* the template's own instance; its ctl is the channel */
  atomic_int refs;                        /* (2) */
  atomic_bool dead;                       /* its program ended, or its channel broke */
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
  t->sb = sb;
  atomic_init(&t->refs, 1);
  *out = t;
  return 0;
}

/* argv, then envp with each chosen forward's variable set; NULL when too large. */
static char *fork_request(const sandbox_spec *spec, const uint16_t *ports, int cg_mode, size_t ncg,
                          size_t *len, err *e)
{
  char vars[SANDBOX_MAX_FORWARDS][160];
  size_t nvars = 0;
  for (size_t i = 0; i < spec->nforwards; i++)
    if (spec->forwards[i].env != NULL)
      snprintf(vars[nvars++], sizeof vars[0], "%s=127.0.0.1:%u", spec->forwards[i].env, (unsigned)ports[i]);
  size_t nargv = 0;
  size_t nenvp = 0;
  size_t size = sizeof(sandbox__fork_head);
  for (; spec->argv[nargv] != NULL; nargv++)
    size += strlen(spec->argv[nargv]) + 1;
  for (size_t i = 0; spec->envp[i] != NULL; i++) {
    bool replaced = false;
    for (size_t k = 0; k < spec->nforwards && !replaced; k++) {
      const char *v = spec->forwards[k].env;
      replaced = v != NULL && strncmp(spec->envp[i], v, strlen(v)) == 0 && spec->envp[i][strlen(v)] == '=';
    }
    if (!replaced) {
      size += strlen(spec->envp[i]) + 1;
      nenvp++;
    }
  }
  for (size_t i = 0; i < nvars; i++)
    size += strlen(vars[i]) + 1;
  nenvp += nvars;
  if (size > SANDBOX_MSG_MAX || nargv + nenvp > SANDBOX_MAX_STRINGS) {
    err_set(e, ERR_INVALID, "program and environment of sandbox '%s' take %zu bytes, more than %d", spec->id,
            size, SANDBOX_MSG_MAX);
    return NULL;
  }
  char *msg = xmalloc(size);
  sandbox__fork_head h = {.magic = SANDBOX_FORK_MAGIC, .nargv = (uint32_t)nargv, .nenvp = (uint32_t)nenvp,
                          .ncgfds = (uint32_t)ncg, .cg_mode = (uint32_t)cg_mode,
                          .max_open_files = spec->max_open_files, .max_file_bytes = spec->max_file_bytes};
  memcpy(msg, &h, sizeof h);
  char *p = msg + sizeof h;
  for (size_t i = 0; i < nargv; i++)
    p = stpcpy(p, spec->argv[i]) + 1;
  for (size_t i = 0; spec->envp[i] != NULL; i++) {
    bool replaced = false;
    for (size_t k = 0; k < spec->nforwards && !replaced; k++) {
      const char *v = spec->forwards[k].env;
      replaced = v != NULL && strncmp(spec->envp[i], v, strlen(v)) == 0 && spec->envp[i][strlen(v)] == '=';
    }
    if (!replaced)
      p = stpcpy(p, spec->envp[i]) + 1;
  }
  for (size_t i = 0; i < nvars; i++)
    p = stpcpy(p, vars[i]) + 1;
  *len = size;
  return msg;
}

/* (1): the request and its answer; 0, an errno from the template, or -1
 * when its channel is gone. */
static int ask(sandbox_template *t, const char *msg, size_t len, const int *fds, size_t nfds)
{
  struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
  union {
    char buf[CMSG_SPACE((SANDBOX_FORK_FDS + CG_COUNT) * sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                      .msg_controllen = CMSG_SPACE(nfds * sizeof(int))};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
  memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
  int ctl = sandbox__ctl(t->sb);
  pthread_mutex_lock(&t->mu);
  ssize_t n;
  while ((n = sendmsg(ctl, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  int32_t answer = -1;
  if (n != (ssize_t)len || recv_int(ctl, SANDBOX_START_TIMEOUT_MS, &answer) != 0)
    answer = -1;
  pthread_mutex_unlock(&t->mu);
  return answer;
}

int sandbox_template_fork(sandbox_template *t, const sandbox_spec *spec, sandbox **out, err *e)
{
  *out = NULL;
  if (atomic_load(&t->dead))
    return err_set(e, ERR_UNAVAILABLE, "the template of sandbox '%s' has ended", spec->id);
  if (spec->nforwards > SANDBOX_MAX_FORWARDS)
    return err_set(e, ERR_INVALID, "sandbox '%s' has more than %d forwards", spec->id, SANDBOX_MAX_FORWARDS);
  sandbox_spec shell = *spec;
  shell.code_dir = "/"; /* the template's */
  shell.runtime_dir = NULL;
  shell.nopt_dirs = 0;
  shell.zygote = NULL;
  uint16_t ports[SANDBOX_MAX_FORWARDS];
  int ns[SANDBOX_SHELL_NS_COUNT];
  int exit_fd = -1;
  sandbox *sb = NULL;
  int rc = sandbox__start_shell(&shell, sandbox__pidfd(t->sb), &sb, ports, ns, &exit_fd, e);
  if (rc != 0)
    return rc;
  int mode = 0;
  int cgfds[CG_COUNT];
  size_t ncg = 0;
  size_t len = 0;
  char *msg = NULL;
  rc = sandbox__cgroup_fds(sb, &mode, cgfds, &ncg, e);
  if (rc == 0) {
    msg = fork_request(spec, ports, mode, ncg, &len, e);
    if (msg == NULL)
      rc = ERR_INVALID;
  }
  if (rc == 0) {
    int fds[SANDBOX_FORK_FDS + CG_COUNT];
    fds[0] = spec->log_fd;
    memcpy(fds + 1, ns, sizeof ns);
    fds[1 + SANDBOX_SHELL_NS_COUNT] = exit_fd;
    memcpy(fds + SANDBOX_FORK_FDS, cgfds, ncg * sizeof(int));
    int answer = ask(t, msg, len, fds, SANDBOX_FORK_FDS + ncg);
    if (answer < 0) {
      atomic_store(&t->dead, true);
      rc = err_set(e, ERR_UNAVAILABLE, "the template of sandbox '%s' has ended", spec->id);
    } else if (answer != 0) {
      rc = err_set(e, ERR_INTERNAL, "the template could not fork sandbox '%s': %s", spec->id, strerror(answer));
    }
    for (size_t i = 0; i < ncg; i++)
      close(cgfds[i]);
  }
  free(msg);
  for (int i = 0; i < SANDBOX_SHELL_NS_COUNT; i++)
    close(ns[i]);
  close(exit_fd);
  if (rc != 0) {
    sandbox_free(sb); /* its init exits when the exit socket closes unheard, or is killed */
    return rc;
  }
  atomic_fetch_add(&t->refs, 1);
  sandbox__started(sb, t);
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
  sandbox_free(t->sb);
  pthread_mutex_destroy(&t->mu);
  free(t);
  return NULL;
}
