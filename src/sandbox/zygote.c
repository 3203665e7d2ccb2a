/* sandbox/zygote.c -- zygotes on the server's side: pre-initialised
 * interpreters whose forks are instances.
 *
 * Why: an instance of a Python or Node.js function used to exec
 * python3 or node, which spends tens of ms starting and loading what the
 * runtime client needs before the handler is even looked at. A zygote is
 * that interpreter, started once with the runtime client loaded
 * (runtimes/python/zygote.py, runtimes/node/zygote.js); an instance is a
 * fork of it. The zygote runs the spawner's loop itself
 * (zygote_lib.c), so an instance is built exactly as an exec'd one is:
 * the zygote clones init into new user and pid namespaces, init unshares
 * the others, joins the instance's cgroups, builds the root, drops every
 * capability, loads the seccomp filter and forks the program, which
 * returns into the interpreter instead of exec'ing one.
 *
 * What an instance shares with its zygote, and why that is safe:
 *   - Memory: the interpreter's heap, copy-on-write, as it was after the
 *     runtime client was loaded and before any function's code or data
 *     existed. The zygote is exec'd from a clean environment (not the
 *     server's), imports no user code (a function's handler module is
 *     imported in the instance, after the fork) and takes requests only
 *     from the server (a socketpair). So the only thing in it is the
 *     runtime client, the same for every function of the runtime.
 *   - Randomness that lives in that memory: the string hash secret
 *     (Python's PYTHONHASHSEED, V8's hash seed) and the address layout
 *     (ASLR) are the zygote's, the same in every instance it forked;
 *     Python's random module is reseeded in each instance by the
 *     interpreter's fork hooks, Node's Math.random is replaced by one that
 *     draws from the kernel (runtimes/node/zygote.js), and os.urandom,
 *     uuid4, OpenSSL (which reseeds when its pid changes) read the kernel. A
 *     zygote is replaced after SANDBOX_ZYGOTE_FORKS instances, so the
 *     shared hash secret and layout do not outlive a few hundred starts.
 *     (Lambda SnapStart restores every instance of a version from one
 *     snapshot: the same trade, for the same reason.)
 *   - Nothing else: namespaces (user, pid, mount, network, IPC, UTS,
 *     cgroup) are new for each instance, made by the clone and by init as
 *     for an exec'd program; the id maps, cgroups, rlimits, seccomp filter,
 *     capabilities (none) and uid are the instance's; init closes every fd
 *     of the zygote before the program exists; the program's environment
 *     and command line are set to the function's before its interpreter
 *     runs again (zygote_lib.c resume, zygote.py).
 *   - Pages the zygote touched stay charged to the zygote's cgroup (the
 *     server's), not the instance's: an instance's memory limit counts what
 *     it writes, not the interpreter it was given.
 * Node.js needs more than a fork (zygote_lib.c, zygote.js): it marks V8's
 * heap MADV_DONTFORK, which the zygote undoes before each clone; a fork has
 * one thread, so V8 runs --single-threaded (no background compilation or
 * GC tasks that would wait for threads the copy does not have) and an
 * instance leaves with _exit; its event loop is re-made (uv_loop_fork) and
 * the signal lock pipe libuv re-makes in its atfork handler is kept
 * (init.c).
 *
 * The zygote process itself has the server's credentials (it must: it
 * clones user namespaces and writes their id maps, as the spawner does);
 * it runs the interpreter and the runtime client, never user code, and is
 * not reachable from an instance (another pid namespace, no shared fd).
 *
 * A zygote per runtime holds no function's code; a function's own
 * template (template.c), which has imported the handler, is a fork of
 * the zygote like any instance, made in that function's sandbox, and its
 * forks are that function's later instances, in namespaces the spawner
 * made for each (shell.c). Why not a template only, without this
 * zygote: the template must itself be an instance of its function (its
 * import is the function's code), so something without any function's
 * code has to start it, and the function's first instances start while
 * it loads. The rehearsal (zygote_lib.c) and the pool (pool.c) make those
 * starts cheaper; the template leaves only a fork on the path of the
 * rest. (What the design of the template answers, and what it still
 * shares between the instances of one function: template.c.)
 *
 * Invariants:
 *   (1) A zygote is used by one start at a time (z->mu held across its
 *       request and reply), like the spawner.
 *   (2) Whatever goes wrong with a zygote (no library, it died, its exec
 *       failed) makes sandbox__zygote_exchange return -1 before anything was
 *       cloned, and the caller asks the spawner instead: a function never
 *       fails because its zygote did. A broken zygote is not retried for
 *       RETRY_MS.
 *   (3) A zygote is the server's child (spawner.c (7)): it is reaped here,
 *       through its pidfd, when it is replaced or freed.
 *
 * Start reading at sandbox__zygote_exchange().
 */
#include "sandbox/internal.h"

#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MS 10000                    /* after a zygote failed to start */

struct sandbox_zygote {
  pthread_mutex_t mu;                     /* (1) */
  char *msg;                              /* its start request (sandbox__zyg_head + strings) */
  size_t len;
  int chan;                               /* -1: not running */
  int pidfd;
  unsigned forks;                         /* instances since it started */
  int64_t broken_until_ms;                /* (2) */
};

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the library ---------------------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_fd = -1;

/* $TARN_ZYGOTE_LIB when set (empty: no zygotes), else beside the binary:
 * its build tree's src/sandbox/, or an install's ../lib/tarn/. */
static void lib_load(void)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash != NULL)
    *slash = '\0';
  char paths[3][PATH_MAX + 64];
  const char *env = getenv("TARN_ZYGOTE_LIB");
  snprintf(paths[0], sizeof paths[0], "%s", env ? env : "");
  snprintf(paths[1], sizeof paths[1], "%s/src/sandbox/libtarn-zygote.so", exe);
  snprintf(paths[2], sizeof paths[2], "%s/../lib/tarn/libtarn-zygote.so", exe);
  for (int i = 0; i < 3 && lib_fd < 0; i++) {
    if (paths[i][0] == '\0' || (env != NULL && i > 0))
      continue; /* a set $TARN_ZYGOTE_LIB is the only place ("": none) */
    int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    struct stat st;
    int mfd = fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (64 << 20)
                  ? memfd_create("tarn-zygote", MFD_CLOEXEC | MFD_ALLOW_SEALING)
                  : -1;
    char buf[65536];
    ssize_t r;
    bool ok = mfd >= 0;
    while (ok && (r = read(fd, buf, sizeof buf)) != 0)
      ok = r > 0 && write(mfd, buf, (size_t)r) == r;
    close(fd);
    if (ok && fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) == 0) {
      lib_fd = mfd;
    } else if (mfd >= 0) {
      close(mfd);
    }
  }
}

int sandbox__zygote_library(void)
{
  pthread_once(&lib_once, lib_load);
  return lib_fd;
}

/* --- zygotes ---------------------------------------------------------------- */

sandbox_zygote *sandbox_zygote_new(const char *const *argv, const char *const *envp)
{
  if (sandbox__zygote_library() < 0 || argv == NULL || argv[0] == NULL || envp == NULL)
    return NULL;
  size_t nargv = 0;
  size_t nenvp = 0;
  size_t len = sizeof(sandbox__zyg_head);
  for (; argv[nargv] != NULL; nargv++)
    len += strlen(argv[nargv]) + 1;
  for (; envp[nenvp] != NULL; nenvp++)
    len += strlen(envp[nenvp]) + 1;
  if (len > SANDBOX_MSG_MAX || nargv + nenvp > SANDBOX_MAX_STRINGS)
    return NULL;
  sandbox_zygote *z = xcalloc(1, sizeof *z);
  pthread_mutex_init(&z->mu, NULL);
  z->chan = -1;
  z->pidfd = -1;
  z->msg = xmalloc(len);
  z->len = len;
  sandbox__zyg_head h = {.magic = SANDBOX_ZYG_MAGIC, .nargv = (uint32_t)nargv, .nenvp = (uint32_t)nenvp};
  memcpy(z->msg, &h, sizeof h);
  char *p = z->msg + sizeof h;
  for (size_t i = 0; i < nargv; i++)
    p = stpcpy(p, argv[i]) + 1;
  for (size_t i = 0; i < nenvp; i++)
    p = stpcpy(p, envp[i]) + 1;
  return z;
}

/* Ends it and reaps it (3). Under z->mu, so it is between requests: it
 * would exit on EOF of its channel; the kill makes sure the wait ends. */
static void stop(sandbox_zygote *z)
{
  if (z->chan >= 0)
    close(z->chan);
  if (z->pidfd >= 0) {
    syscall(SYS_pidfd_send_signal, z->pidfd, SIGKILL, NULL, 0);
    siginfo_t si;
    while (waitid((idtype_t)P_PIDFD, (id_t)z->pidfd, &si, WEXITED) < 0 && errno == EINTR) {
    }
    close(z->pidfd);
  }
  z->chan = -1;
  z->pidfd = -1;
  z->forks = 0;
}

/* Under z->mu: 0 when it runs (its start request was answered). */
static int start(sandbox_zygote *z)
{
  int lib = sandbox__zygote_library();
  sandbox__reply r;
  int back[2];
  if (lib < 0 || sandbox__spawner_exchange(z->msg, z->len, &lib, 1, &r, back) != 0)
    return -1;
  if (r.errnum != 0 || back[0] < 0 || back[1] < 0) {
    if (back[0] >= 0)
      close(back[0]);
    if (back[1] >= 0)
      close(back[1]);
    return -1;
  }
  z->pidfd = back[0];
  z->chan = back[1];
  z->forks = 0;
  return 0;
}

sandbox_zygote *sandbox_zygote_free(sandbox_zygote *z)
{
  if (z == NULL)
    return NULL;
  pthread_mutex_lock(&z->mu);
  stop(z);
  pthread_mutex_unlock(&z->mu);
  pthread_mutex_destroy(&z->mu);
  free(z->msg);
  free(z);
  return NULL;
}

int sandbox__zygote_exchange(sandbox_zygote *z, const void *msg, size_t len, const int *fds,
                             size_t nfds, sandbox__reply *r, int back[2])
{
  pthread_mutex_lock(&z->mu); /* for the whole exchange: no lock of its own */
  int rc = -1;
  if (z->chan >= 0 && z->forks >= SANDBOX_ZYGOTE_FORKS)
    stop(z); /* replaced: see the top of this file */
  if (z->chan < 0 && mono_ms() >= z->broken_until_ms && start(z) != 0)
    z->broken_until_ms = mono_ms() + RETRY_MS;
  if (z->chan >= 0) {
    rc = sandbox__exchange(z->chan, NULL, msg, len, fds, nfds, r, back);
    if (rc != 0) {
      /* it died, or its exec failed: (2) */
      stop(z);
      z->broken_until_ms = mono_ms() + RETRY_MS;
    } else {
      z->forks++;
    }
  }
  pthread_mutex_unlock(&z->mu);
  return rc;
}
