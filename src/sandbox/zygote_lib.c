/* sandbox/zygote_lib.c -- the library a zygote's interpreter loads
 * (libtarn-zygote.so): it turns a pre-initialised interpreter into a
 * spawner whose instances are copies of it.
 *
 * Why: a Python function's start was the interpreter's start (tens of ms
 * of imports) on top of the sandbox's few ms. A zygote pays the
 * interpreter's start once; each instance is a fork of it, placed into a
 * fresh sandbox exactly as an exec'd program is (zygote.c says what it
 * shares with its zygote and why that is safe).
 *
 * The interpreter (runtimes/python/zygote.py through ctypes,
 * runtimes/node/zygote.js as an N-API addon) loads this library from a
 * sealed memfd (fd 4: its mapping names no host path), calls
 * tarn_zygote_init() once, then tarn_zygote_serve(), which runs the
 * spawner's own loop (spawner.c, sandbox__serve) on fd 3 with three hooks:
 *   before/after each clone: the interpreter's fork hooks
 *       (PyOS_BeforeFork / PyOS_AfterFork_Parent when the host process is
 *       a CPython), so that its locks are in a known state in the copies
 *       (the after hook once the instance's id maps are written and the
 *       server has its answer: it is off the instance's path);
 *   in the clone child (the instance's init): the interpreter's signal
 *       handlers are saved and reset (init has none: init.c (2)), its
 *       command line becomes "tarn-init", and job->resume is set, so that
 *       init forks the program instead of exec'ing it (init.c).
 * The program calls resume(): it gets the interpreter's handlers back,
 * the command line and environment the exec would have given it, and
 * longjmps out of tarn_zygote_serve(), which returns 0 in it; in the
 * zygote it never returns (it exits when the server closes fd 3).
 *
 * Invariants:
 *   (1) The library holds nothing but the state folder, the seccomp filter
 *       and the command line's room; init closes every fd of the zygote
 *       (init.c keep_fds) before the program exists.
 *   (2) tarn_zygote_serve is called on the interpreter's main thread, with
 *       its lock held (ctypes.PyDLL), and never returns in the zygote: no
 *       interpreter code runs there again. CPython has no other thread;
 *       Node's other threads (V8's platform workers, idle: V8 runs
 *       --single-threaded) are not in the copies, which are single-threaded.
 *   (3) Before its first instance the zygote forks one rehearsal (below):
 *       each instance then writes, in one go when it resumes, the pages the
 *       rehearsal wrote. Only page ranges inside the zygote's own writable
 *       mappings are kept; a rehearsal that fails or is late leaves none.
 */
#undef _FORTIFY_SOURCE /* a fork longjmps from its waiter's stack: no __longjmp_chk */
#include "sandbox/internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define API __attribute__((visibility("default")))

extern char **environ;

/* What the interpreter calls (through ctypes or an addon's loader). */
API int tarn_zygote_init(void);
API int tarn_zygote_serve(void);
API char **tarn_zygote_environ(void);
API void tarn_zygote_rehearsed(void);
API int tarn_zygote_claimed(void);
API int tarn_zygote_template(void);
API int tarn_zygote_fork(void);
API int tarn_zygote_fork_claimed(void);

static char *state_dir;
static int top_fd;                        /* the highest fd the interpreter holds */
static bool node;                         /* loaded by Node.js (napi_register_module_v1) */
static struct sock_fprog filter;
static jmp_buf resume_point;
static struct sigaction saved[NSIG];
static void (*py_before)(void);
static void (*py_parent)(void);
static int claim_fd = -1;                 /* a pooled instance's program: its pair with init */
static struct sock_fprog template_filter; /* what a template's init loads (seccomp.c (6)) */
static int template_fd = -1;              /* a template's program: its channel to the server */
static int64_t ready_phases[SANDBOX_P_COUNT];

/* The rehearsal (see "the rehearsal" below). */
#define SPANS_MAX 8192                    /* page ranges an instance pre-faults, at most */
#define REHEARSAL_MS 10000                /* the rehearsal's time, at most */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
typedef struct span {
  uintptr_t from;
  uintptr_t to;                           /* exclusive; page-aligned both */
} span;
static span *vmas;                        /* the zygote's writable private mappings at its fork */
static size_t nvmas;
static span *hot;                         /* pages the rehearsal wrote */
static size_t nhot;
static bool rehearsed;
static int rehearsal_fd = -1;             /* in the rehearsal: its pipe to the zygote */

static int read_all(int fd, void *p, size_t n)
{
  for (size_t got = 0; got < n;) {
    ssize_t r = read(fd, (char *)p + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return r < 0 ? -errno : -EIO;
    got += (size_t)r;
  }
  return 0;
}

/* Reads fd 5 (internal.h, sandbox__zyg_setup); 0 or -errno. */
API int tarn_zygote_init(void)
{
  sandbox__zyg_setup z;
  int rc = read_all(5, &z, sizeof z);
  if (rc == 0 && (z.state_len == 0 || z.state_len >= SANDBOX_PATH_MAX || z.nfilter == 0 ||
                  z.nfilter > 65535 || z.ntemplate_filter == 0 || z.ntemplate_filter > 65535))
    rc = -EINVAL;
  if (rc == 0) {
    state_dir = calloc(1, z.state_len + 1);
    filter.filter = calloc(z.nfilter, sizeof *filter.filter);
    filter.len = (unsigned short)z.nfilter;
    template_filter.filter = calloc(z.ntemplate_filter, sizeof *template_filter.filter);
    template_filter.len = (unsigned short)z.ntemplate_filter;
    if (state_dir == NULL || filter.filter == NULL || template_filter.filter == NULL)
      rc = -ENOMEM;
  }
  if (rc == 0)
    rc = read_all(5, state_dir, z.state_len);
  if (rc == 0)
    rc = read_all(5, filter.filter, z.nfilter * sizeof *filter.filter);
  if (rc == 0)
    rc = read_all(5, template_filter.filter, z.ntemplate_filter * sizeof *template_filter.filter);
  close(5);
  close(4); /* the library's memfd: mapped by now */
  DIR *d = opendir("/proc/self/fd");
  struct dirent *de;
  while (d != NULL && (de = readdir(d)) != NULL) {
    int fd = atoi(de->d_name);
    if (fd > top_fd && fd != dirfd(d) && fd < 100)
      top_fd = fd;
  }
  if (d != NULL)
    closedir(d);
  /* POSIX's way to a function's address from dlsym */
  *(void **)&py_before = dlsym(RTLD_DEFAULT, "PyOS_BeforeFork");
  *(void **)&py_parent = dlsym(RTLD_DEFAULT, "PyOS_AfterFork_Parent");
  return rc;
}

/* Node.js marks V8's heap MADV_DONTFORK (so that its own fork+exec of a
 * child copies less): a copy would have no heap. Every mapping is made
 * inheritable again before each clone. */
static void all_inheritable(void)
{
  FILE *f = fopen("/proc/self/maps", "re");
  char line[512];
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    unsigned long a;
    unsigned long b;
    if (sscanf(line, "%lx-%lx", &a, &b) == 2)
      madvise((void *)a, b - a, MADV_DOFORK);
  }
  if (f != NULL)
    fclose(f);
}

static void before_clone(void)
{
  if (py_before != NULL)
    py_before();
  if (node)
    all_inheritable();
}

static void after_clone(void)
{
  if (py_parent != NULL)
    py_parent();
}

static void resume(const sandbox__job *job) __attribute__((noreturn));

static void resume(const sandbox__job *job)
{
  /* (3): one syscall per range instead of a fault per page */
  for (size_t i = 0; i < nhot; i++)
    madvise((void *)hot[i].from, hot[i].to - hot[i].from, MADV_POPULATE_WRITE);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &saved[sig], NULL);
  sandbox__set_cmdline((const char *const *)job->argv);
  environ = job->envp;
  if (job->pooled) {
    claim_fd = 3; /* tarn_zygote_claimed */
    memcpy(ready_phases, job->phase_us, sizeof ready_phases);
  }
  if (job->role == SANDBOX_ROLE_TEMPLATE)
    template_fd = 3; /* tarn_zygote_fork */
  longjmp(resume_point, 1);
}

static void in_child(sandbox__job *job)
{
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &dfl, &saved[sig]);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  static const char *const init_name[] = {"tarn-init", NULL};
  sandbox__set_cmdline(init_name);
  job->resume = resume;
  job->zygote_top_fd = top_fd;
}

static const sandbox__serve_hooks hooks = {
    .before_clone = before_clone,
    .after_clone = after_clone,
    .in_child = in_child,
};

/* --- the rehearsal ------------------------------------------------------------
 * A page fault costs tens of µs on the virtual machines tarn runs on, and
 * an instance writes about a thousand pages of its zygote's memory (the
 * interpreter's objects, refcounts, stacks, allocator state) before it
 * answers its first event: that is most of its start. Which pages, is
 * the same every time: so before serving, the zygote forks one copy of
 * itself, outside any sandbox, that plays an instance through with a
 * built-in handler and no server (zygote.py, zygote.js), then reports
 * which pages of the zygote's mappings it wrote (present and exclusive in
 * /proc/self/pagemap). Each instance copies those at once when it
 * resumes (MADV_POPULATE_WRITE: one syscall a range, no fault per page).
 * The rehearsal runs the runtime client only, never a function's code,
 * and sends nothing but page ranges, which the zygote checks against its
 * own mappings; an instance that would not have written a page only has
 * a private copy of it (memory charged to its own cgroup). */

/* The zygote's writable private mappings, into vmas. */
static void snapshot_vmas(void)
{
  FILE *f = fopen("/proc/self/maps", "re");
  char line[512];
  size_t cap = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    unsigned long a;
    unsigned long b;
    char perm[8];
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perm) != 3 || perm[1] != 'w' || perm[3] != 'p')
      continue;
    if (nvmas == cap) {
      size_t ncap = cap ? cap * 2 : 256;
      span *n = realloc(vmas, ncap * sizeof *n);
      if (n == NULL)
        break;
      vmas = n;
      cap = ncap;
    }
    vmas[nvmas++] = (span){a, b};
  }
  if (f != NULL)
    fclose(f);
}

/* In the rehearsal, once it answered its event: the pages it wrote, as
 * spans on rehearsal_fd. Never returns. */
API void tarn_zygote_rehearsed(void)
{
  if (rehearsal_fd < 0)
    _exit(1);
  int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  span out[256];
  size_t n = 0;
  size_t total = 0;
  uint64_t e[512];
  for (size_t v = 0; pm >= 0 && v < nvmas && total < SPANS_MAX; v++) {
    for (uintptr_t a = vmas[v].from; a < vmas[v].to && total < SPANS_MAX;) {
      size_t pages = (vmas[v].to - a) / 4096;
      if (pages > 512)
        pages = 512;
      ssize_t r = pread(pm, e, pages * 8, (off_t)(a / 4096 * 8));
      if (r <= 0)
        break;
      for (size_t i = 0; i < (size_t)r / 8 && total < SPANS_MAX; i++, a += 4096) {
        if (!((e[i] >> 63) & 1) || !((e[i] >> 56) & 1))
          continue; /* not present, or still shared with the zygote */
        if (n > 0 && out[n - 1].to == a) {
          out[n - 1].to = a + 4096;
          continue;
        }
        if (n == sizeof out / sizeof out[0]) {
          (void)!write(rehearsal_fd, out, sizeof out);
          n = 0;
        }
        out[n++] = (span){a, a + 4096};
        total++;
      }
      if ((size_t)r / 8 < pages)
        break;
    }
  }
  if (n > 0)
    (void)!write(rehearsal_fd, out, n * sizeof out[0]);
  _exit(0);
}

/* Keeps the spans that lie in the zygote's own mappings. */
static bool span_ok(const span *s)
{
  if (s->from >= s->to || s->from % 4096 != 0 || s->to % 4096 != 0)
    return false;
  for (size_t v = 0; v < nvmas; v++)
    if (s->from >= vmas[v].from && s->to <= vmas[v].to)
      return true;
  return false;
}

/* Forks the rehearsal: 2 in it; in the zygote, reads what it wrote into
 * hot (nothing, when it failed or took too long: instances then fault as
 * before) and returns 0. */
static int rehearse(void)
{
  snapshot_vmas();
  int p[2];
  if (nvmas == 0 || pipe2(p, O_CLOEXEC) != 0)
    return 0;
  before_clone();
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    close(3); /* the server's channel: nothing of a request reaches the rehearsal */
    rehearsal_fd = p[1];
    return 2;
  }
  after_clone();
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return 0;
  }
  hot = calloc(SPANS_MAX, sizeof *hot);
  size_t got = 0;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (hot != NULL && got < SPANS_MAX * sizeof *hot) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long left = REHEARSAL_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
      kill(pid, SIGKILL);
      got = 0; /* late: not trusted to be whole */
      break;
    }
    ssize_t r = read(p[0], (char *)hot + got, SPANS_MAX * sizeof *hot - got);
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    got = 0;
  for (size_t i = 0; hot != NULL && i < got / sizeof *hot; i++)
    if (span_ok(&hot[i]))
      hot[nhot++] = hot[i];
  free(vmas);
  vmas = NULL;
  nvmas = 0;
  return 0;
}

/* 0 in an instance's program (its environment is the function's: see
 * tarn_zygote_environ); 2 in the rehearsal, once, which ends with
 * tarn_zygote_rehearsed; never returns in the zygote. */
API int tarn_zygote_serve(void)
{
  if (state_dir == NULL)
    return -EINVAL;
  if (!rehearsed) {
    rehearsed = true;
    if (rehearse() == 2)
      return 2;
  }
  if (setjmp(resume_point) != 0)
    return 0;
  sandbox__serve(state_dir, &filter, &template_filter, &hooks);
}

/* A function's RLIMIT_NOFILE and RLIMIT_FSIZE (0: unchanged); a failure
 * ends the process. */
static void set_limits(uint32_t max_open_files, uint64_t max_file_bytes)
{
  struct rlimit rl;
  if (max_open_files > 0) {
    rl = (struct rlimit){max_open_files, max_open_files};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      _exit(125);
  }
  if (max_file_bytes > 0) {
    rl = (struct rlimit){max_file_bytes, max_file_bytes};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
      _exit(125);
  }
}

/* In a pooled instance's program (init.c pool_instance), once the
 * interpreter's after-fork work is done: says it is ready, waits for its
 * claim, and becomes the function's program (command line, environment,
 * resource limits, log on 1 and 2, /var/task as its folder, now mounted).
 * Returns at once elsewhere. Nothing of the function existed in the
 * process before this returns. */
API int tarn_zygote_claimed(void)
{
  if (claim_fd < 0)
    return 0;
  sandbox__report r;
  memset(&r, 0, sizeof r);
  r.kind = SANDBOX_REPORT_STARTED;
  memcpy(r.phase_us, ready_phases, sizeof r.phase_us);
  r.phase_us[SANDBOX_P_PROGRAM] = sandbox__now_us();
  if (send(claim_fd, &r, sizeof r, MSG_NOSIGNAL) != (ssize_t)sizeof r)
    _exit(125);
  char *msg = malloc(SANDBOX_MSG_MAX);
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {.iov_base = msg, .iov_len = SANDBOX_MSG_MAX};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                      .msg_controllen = sizeof u.buf};
  ssize_t len;
  while (msg != NULL && (len = recvmsg(claim_fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (msg == NULL || len < (ssize_t)sizeof(sandbox__claim_head))
    _exit(125); /* init ended: so does the instance */
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  sandbox__claim_head h;
  memcpy(&h, msg, sizeof h);
  if (cm == NULL || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)) ||
      h.magic != SANDBOX_CLAIM_MAGIC || h.nargv == 0 ||
      (uint64_t)h.nargv + h.nenvp > SANDBOX_MAX_STRINGS)
    _exit(125);
  int log;
  memcpy(&log, CMSG_DATA(cm), sizeof log);
  char **list = calloc((size_t)h.nargv + h.nenvp + 2, sizeof *list);
  char *p = msg + sizeof h;
  char *end = msg + len;
  for (size_t i = 0; list != NULL && i < (size_t)h.nargv + h.nenvp; i++) {
    char *nul = memchr(p, '\0', (size_t)(end - p));
    if (nul == NULL)
      _exit(125);
    list[i < h.nargv ? i : i + 1] = p;
    p = nul + 1;
  }
  if (list == NULL || dup2(log, 1) < 0 || dup2(log, 2) < 0)
    _exit(125);
  close(log);
  close(claim_fd);
  claim_fd = -1;
  /* the function's limits: lower than the pool's or equal (pool.c) */
  set_limits(h.max_open_files, h.max_file_bytes);
  struct rlimit rl = {h.max_procs, h.max_procs};
  if (setrlimit(RLIMIT_NPROC, &rl) != 0 || chdir("/var/task") != 0)
    _exit(125);
  sandbox__set_cmdline((const char *const *)list);
  environ = list + h.nargv + 1;
  return 0;
}

/* The program's environment (the C environ), for the interpreter's own copy. */
API char **tarn_zygote_environ(void)
{
  return environ;
}

/* --- a template: forks of a function's initialised program -----------------
 * A template (template.c) is an instance of one function whose program
 * imported the handler and ran its before-snapshot hooks, then called
 * tarn_zygote_fork(): it serves the server's fork requests on fd 3 and
 * never returns there; in each fork it returns 0. The fork's namespaces
 * were made by the spawner (shell.c); the request carries their nsfs
 * fds. Per request:
 *   W  the waiter: a CLONE_VM child of the template on a stack of its own
 *      (no copy of the template's memory), which joins the namespaces
 *      (user first), forks G, wakes the template, closes every fd but its
 *      exit socket, waits for G and writes G's wait status there (the
 *      shell's init exits with it). Once the template is awake it makes
 *      raw syscalls only: it shares the template's memory, errno and
 *      thread descriptor included, while the template runs on.
 *   G  the fork: a copy of the template's memory as it was while the
 *      template waited for W (single-threaded, holding the interpreter's
 *      lock), pid 2 of the fork's pid namespace. It longjmps back into
 *      tarn_zygote_fork, joins its cgroups, takes its log, closes what the
 *      request brought and the channel, drops every capability, loads the
 *      instance filter on top of the template's, takes the function's
 *      environment and limits, and returns 0 into the interpreter, which
 *      re-initialises what a fork must (zygote.py).
 * W and G live in the fork's namespaces; W is the template's child (it
 * reaps W and frees its stack), G is W's. */

#define WAITER_STACK (256 * 1024)      /* glibc's fork and the atfork handlers run on it */

typedef struct fork_job {
  int ns[SANDBOX_SHELL_NS_COUNT];         /* user first */
  int exit_fd;
  volatile int state;                     /* futex: 0 pending, 1 G exists, 2 failed */
  int err;
} fork_job;

static long raw_syscall(long n, long a, long b, long c, long d)
{
  long ret;
#if defined(__x86_64__)
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  ret = x0;
#else
#error "templates need raw syscalls for this architecture"
#endif
  return ret;
}

static jmp_buf fork_point;
static sigset_t fork_mask;                /* the template's, for G (W blocks everything) */
static struct sigaction fork_chld;        /* likewise its SIGCHLD action (W's is the default) */

static int waiter_main(void *arg)
{
  fork_job *j = arg;
  uint64_t all = ~0ull;
  raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8);
  struct {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
  } dfl = {NULL, 0, NULL, 0}; /* SIG_DFL */
  raw_syscall(SYS_rt_sigaction, SIGCHLD, (long)&dfl, 0, 8); /* wait4 needs it not ignored */
  int exit_fd = j->exit_fd;
  long rc = 0;
  for (int i = 0; i < SANDBOX_SHELL_NS_COUNT && rc == 0; i++)
    rc = raw_syscall(SYS_setns, j->ns[i], 0, 0, 0);
  /* glibc's fork, for its child handlers (libuv's thread pool, OpenSSL)
   * and G's thread descriptor; the template waits, so what the parent's
   * side writes into the memory we share is not in use */
  long g = rc == 0 ? fork() : rc;
  if (g == 0)
    longjmp(fork_point, 1); /* G: back onto the template's stack, as it was */
  if (g < 0 && rc == 0)
    g = -errno;
  if (g < 0) {
    j->err = (int)-g;
    __atomic_store_n(&j->state, 2, __ATOMIC_RELEASE);
  } else {
    __atomic_store_n(&j->state, 1, __ATOMIC_RELEASE);
  }
  raw_syscall(SYS_futex, (long)&j->state, FUTEX_WAKE, 1, 0);
  /* j is the template's again from here */
  if (exit_fd > 0)
    raw_syscall(SYS_close_range, 0, exit_fd - 1, 0, 0);
  raw_syscall(SYS_close_range, exit_fd + 1, ~0u, 0, 0);
  if (g < 0)
    raw_syscall(SYS_exit, 1, 0, 0, 0);
  int32_t status = 0;
  int st = 0;
  while ((rc = raw_syscall(SYS_wait4, g, (long)&st, 0, 0)) == -EINTR) {
  }
  status = rc == g ? st : (int32_t)(128 + SIGKILL) << 8;
  raw_syscall(SYS_write, exit_fd, (long)&status, sizeof status, 0); /* SIGPIPE is blocked */
  raw_syscall(SYS_exit, 0, 0, 0, 0);
  return 0;
}

/* Waiters that may still run, and their stacks (freed once reaped). */
static struct waiter {
  pid_t pid;
  void *stack;
} *waiters;
static size_t nwaiters;
static size_t cwaiters;

static void reap_waiters(void)
{
  for (size_t i = 0; i < nwaiters;) {
    int status;
    if (waitpid(waiters[i].pid, &status, WNOHANG | __WALL) == waiters[i].pid) {
      munmap(waiters[i].stack, WAITER_STACK);
      waiters[i] = waiters[--nwaiters];
    } else {
      i++;
    }
  }
}

/* The request, as the template read it: G reads its copy. */
static char *fork_msg;
static int fork_fds[SANDBOX_FORK_FDS + 1 + CG_COUNT];
static size_t fork_nfds;

static void close_request(void)
{
  for (size_t i = 0; i < fork_nfds; i++)
    close(fork_fds[i]);
  fork_nfds = 0;
}

/* G, from the longjmp: becomes the function's new instance (see above). */
static int fork_claim_fd = -1;            /* a fork made ahead: where its claim comes */

static int become_fork(void)
{
  sigaction(SIGCHLD, &fork_chld, NULL);
  sigprocmask(SIG_SETMASK, &fork_mask, NULL);
  sandbox__fork_head h;
  memcpy(&h, fork_msg, sizeof h);
  int log = fork_fds[0];
  /* first, so that what it writes from here on is charged to its own
   * cgroup, not to the template's */
  for (uint32_t i = 0; i < h.ncgfds; i++) {
    int fd = fork_fds[SANDBOX_FORK_FDS + h.claim + i];
    int procs = h.cg_mode == SANDBOX_CG_V2_CLONE ? openat(fd, "cgroup.procs", O_WRONLY | O_CLOEXEC) : fd;
    if (procs < 0 || write(procs, "0", 1) != 1)
      _exit(125);
    if (procs != fd)
      close(procs);
  }
  /* the zygote's rehearsal spans (3): the pages the runtime client's path
   * writes, which the template inherited; a span the load moved fails */
  for (size_t i = 0; i < nhot; i++)
    madvise((void *)hot[i].from, hot[i].to - hot[i].from, MADV_POPULATE_WRITE);
  if (h.claim)
    fork_claim_fd = fcntl(fork_fds[SANDBOX_FORK_FDS], F_DUPFD_CLOEXEC, 3);
  if (dup2(log, 1) < 0 || dup2(log, 2) < 0)
    _exit(125);
  close_request();
  close(template_fd);
  template_fd = -1;
  for (int cap = 0;; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL)
      break;
  struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 ||
      syscall(SYS_capset, &head, data) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      sandbox__seccomp_apply(&filter) != 0)
    _exit(125);
  set_limits(h.max_open_files, h.max_file_bytes);
  char **list = calloc((size_t)h.nargv + h.nenvp + 2, sizeof *list);
  char *p = fork_msg + sizeof h;
  for (size_t i = 0; list != NULL && i < (size_t)h.nargv + h.nenvp; i++) {
    list[i < h.nargv ? i : i + 1] = p;
    p += strlen(p) + 1; /* checked by the template before the fork */
  }
  if (list == NULL || chdir("/var/task") != 0)
    _exit(125);
  sandbox__set_cmdline((const char *const *)list);
  environ = list + h.nargv + 1;
  return 0;
}

/* The request's strings are whole (argv then envp, NUL-terminated). */
static bool request_ok(const sandbox__fork_head *h, size_t len, size_t nfds)
{
  if (h->magic != SANDBOX_FORK_MAGIC || h->nargv == 0 || (uint64_t)h->nargv + h->nenvp > SANDBOX_MAX_STRINGS ||
      h->ncgfds > CG_COUNT || h->claim > 1 || nfds != SANDBOX_FORK_FDS + h->claim + h->ncgfds)
    return false;
  const char *p = fork_msg + sizeof *h;
  const char *end = fork_msg + len;
  for (size_t i = 0; i < (size_t)h->nargv + h->nenvp; i++) {
    const char *nul = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
    if (nul == NULL)
      return false;
    p = nul + 1;
  }
  return true;
}

/* One fork: 0, or an errno; in G it does not return (longjmp). */
static int fork_one(void)
{
  fork_job j;
  memset(&j, 0, sizeof j);
  for (int i = 0; i < SANDBOX_SHELL_NS_COUNT; i++)
    j.ns[i] = fork_fds[1 + i];
  j.exit_fd = fork_fds[1 + SANDBOX_SHELL_NS_COUNT];
  if (nwaiters == cwaiters) {
    size_t n = cwaiters ? cwaiters * 2 : 64;
    struct waiter *w = realloc(waiters, n * sizeof *w);
    if (w == NULL)
      return ENOMEM;
    waiters = w;
    cwaiters = n;
  }
  void *stack = mmap(NULL, WAITER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED)
    return ENOMEM;
  sigprocmask(SIG_SETMASK, NULL, &fork_mask);
  sigaction(SIGCHLD, NULL, &fork_chld);
  before_clone();
  pid_t w = clone(waiter_main, (char *)stack + WAITER_STACK, CLONE_VM | SIGCHLD, &j);
  int failed = 0;
  if (w < 0) {
    failed = errno;
  } else {
    while (__atomic_load_n(&j.state, __ATOMIC_ACQUIRE) == 0)
      syscall(SYS_futex, &j.state, FUTEX_WAIT, 0, NULL);
    if (j.state == 2)
      failed = j.err;
  }
  after_clone();
  if (w < 0) {
    munmap(stack, WAITER_STACK);
  } else {
    waiters[nwaiters++] = (struct waiter){w, stack};
  }
  return failed;
}

/* In a fork made ahead (template.c (4)), once the interpreter's own
 * after-fork work is done: waits for its claim, then takes the instance's
 * environment and log. Returns at once in any other fork. */
API int tarn_zygote_fork_claimed(void)
{
  if (fork_claim_fd < 0)
    return 0;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {.iov_base = fork_msg, .iov_len = SANDBOX_MSG_MAX};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  ssize_t len;
  while ((len = recvmsg(fork_claim_fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  struct cmsghdr *cm = len > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
  sandbox__fork_claim h;
  if (cm == NULL || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)) ||
      len < (ssize_t)sizeof h)
    _exit(0); /* let go unclaimed */
  memcpy(&h, fork_msg, sizeof h);
  int log;
  memcpy(&log, CMSG_DATA(cm), sizeof log);
  char **list = h.magic == SANDBOX_FORK_CLAIM_MAGIC && h.nenvp <= SANDBOX_MAX_STRINGS
                    ? calloc((size_t)h.nenvp + 1, sizeof *list) : NULL;
  char *p = fork_msg + sizeof h;
  char *end = fork_msg + len;
  for (size_t i = 0; list != NULL && i < h.nenvp; i++) {
    char *nul = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
    if (nul == NULL)
      _exit(125);
    list[i] = p;
    p = nul + 1;
  }
  if (list == NULL || dup2(log, 1) < 0 || dup2(log, 2) < 0)
    _exit(125);
  close(log);
  close(fork_claim_fd);
  fork_claim_fd = -1;
  environ = list;
  return 0;
}

API int tarn_zygote_template(void)
{
  return template_fd >= 0;
}

/* In a template's program, once its handler is imported: serves forks.
 * 0 in each fork (its environment and command line are the request's);
 * -EINVAL when this process is not a template; never returns in the
 * template (it exits when the server closes its channel). */
API int tarn_zygote_fork(void)
{
  if (template_fd < 0)
    return -EINVAL;
  if (fork_msg == NULL && (fork_msg = malloc(SANDBOX_MSG_MAX)) == NULL)
    _exit(125);
  if (setjmp(fork_point) != 0)
    return become_fork();
  static bool announced;
  if (!announced) {
    announced = true;
    int32_t ready = 0; /* template.c: the code is loaded */
    if (send(template_fd, &ready, sizeof ready, MSG_NOSIGNAL) != (ssize_t)sizeof ready)
      _exit(0);
    static const char *const name[] = {"tarn-template", NULL}; /* what ps shows (a fork: its own) */
    sandbox__set_cmdline(name);
  }
  for (;;) {
    reap_waiters();
    struct pollfd pf = {.fd = template_fd, .events = POLLIN};
    int n = poll(&pf, 1, nwaiters > 0 ? 1000 : -1);
    if (n < 0 && errno != EINTR)
      _exit(125);
    if (n <= 0)
      continue;
    union {
      char buf[CMSG_SPACE((SANDBOX_FORK_FDS + 1 + CG_COUNT) * sizeof(int))];
      struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = fork_msg, .iov_len = SANDBOX_MSG_MAX};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    ssize_t len = recvmsg(template_fd, &mh, MSG_CMSG_CLOEXEC);
    if (len < 0 && errno == EINTR)
      continue;
    if (len <= 0)
      _exit(0); /* the server let the template go */
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    fork_nfds = 0;
    if (cm != NULL && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len >= CMSG_LEN(0)) {
      fork_nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      memcpy(fork_fds, CMSG_DATA(cm), fork_nfds * sizeof(int));
    }
    sandbox__fork_head h;
    int32_t answer = EPROTO;
    if ((size_t)len >= sizeof h && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
      memcpy(&h, fork_msg, sizeof h);
      if (request_ok(&h, (size_t)len, fork_nfds))
        answer = fork_one();
    }
    close_request();
    if (send(template_fd, &answer, sizeof answer, MSG_NOSIGNAL) != (ssize_t)sizeof answer)
      _exit(0);
  }
}

/* --- Node.js: the same three calls as an N-API addon ------------------------
 * Declared here, weak: the library is also loaded where they do not exist
 * (CPython), and N-API's ABI is stable across Node.js versions. */
typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
typedef struct uv_loop_s uv_loop_t;
extern int napi_create_function(napi_env env, const char *name, size_t length, napi_callback cb,
                                void *data, napi_value *result) __attribute__((weak));
extern int napi_set_named_property(napi_env env, napi_value object, const char *name,
                                   napi_value value) __attribute__((weak));
extern int napi_create_int32(napi_env env, int32_t value, napi_value *result) __attribute__((weak));
extern int napi_get_cb_info(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv,
                            napi_value *this_arg, void **data) __attribute__((weak));
extern int napi_get_value_int32(napi_env env, napi_value value, int32_t *result) __attribute__((weak));
extern uv_loop_t *uv_default_loop(void) __attribute__((weak));
extern int uv_loop_fork(uv_loop_t *loop) __attribute__((weak));

API napi_value napi_register_module_v1(napi_env env, napi_value exports);

static napi_value int_value(napi_env env, int v)
{
  napi_value out = NULL;
  napi_create_int32(env, v, &out);
  return out;
}

static napi_value js_init(napi_env env, napi_callback_info info)
{
  return int_value(env, tarn_zygote_init());
}

/* 0 in an instance's program, after its event loop was re-made (the
 * zygote's epoll and eventfds are gone with init's fd clean-up). */
static napi_value js_serve(napi_env env, napi_callback_info info)
{
  int rc = tarn_zygote_serve();
  if ((rc == 0 || rc == 2) && uv_loop_fork(uv_default_loop()) != 0)
    _exit(125);
  if (rc == 0)
    tarn_zygote_claimed(); /* a pooled instance waits here for its function */
  return int_value(env, rc);
}

static napi_value js_rehearsed(napi_env env, napi_callback_info info)
{
  tarn_zygote_rehearsed();
  return NULL;
}

static napi_value js_template(napi_env env, napi_callback_info info)
{
  return int_value(env, tarn_zygote_template());
}

static napi_value js_fork_claimed(napi_env env, napi_callback_info info)
{
  return int_value(env, tarn_zygote_fork_claimed());
}

/* A template's forks (tarn_zygote_fork): 0 in each, its event loop re-made. */
static napi_value js_fork(napi_env env, napi_callback_info info)
{
  int rc = tarn_zygote_fork();
  if (rc == 0 && uv_loop_fork(uv_default_loop()) != 0)
    _exit(125);
  return int_value(env, rc);
}

/* process.exit in an instance: Node's own would join the platform's worker
 * threads, which a fork does not have. */
static napi_value js_exit(napi_env env, napi_callback_info info)
{
  size_t argc = 1;
  napi_value argv[1];
  int32_t code = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == 0 && argc == 1)
    napi_get_value_int32(env, argv[0], &code);
  _exit(code);
}

API napi_value napi_register_module_v1(napi_env env, napi_value exports)
{
  static const struct {
    const char *name;
    napi_callback cb;
  } fns[] = {{"init", js_init},         {"serve", js_serve},       {"exit", js_exit},
              {"rehearsed", js_rehearsed}, {"template", js_template}, {"fork", js_fork},
              {"forkClaimed", js_fork_claimed}};
  if (napi_create_function == NULL || uv_loop_fork == NULL)
    return exports;
  node = true;
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, strlen(fns[i].name), fns[i].cb, NULL, &f) == 0)
      napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}
