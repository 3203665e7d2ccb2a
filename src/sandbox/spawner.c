/* sandbox/spawner.c -- the zygote that clones every instance.
 *
 * Why: the server is multi-threaded, and after a clone in a threaded
 * process only async-signal-safe calls are allowed until exec; building a
 * sandbox needs much more (malloc, stdio, a whole init). So
 * sandbox_system_init forks this process while the server is still
 * single-threaded; it stays single-threaded and small, and each instance
 * is a clone of it that may do anything, with no exec of tarn.
 *
 * Protocol on the channel (SOCK_SEQPACKET, the server holds a mutex around
 * each exchange):
 *   spawner -> server  int32 probe errno, once at start (0: namespaces work)
 *   server -> spawner  one start request (internal.h), the log fd and the
 *                      instance's cgroup fds beside it
 *   spawner -> server  sandbox__reply; on success the init's pidfd and the
 *                      server's end of the start socket beside it
 * The spawner exits when the channel closes, and dies with the server.
 *
 * Invariants:
 *   (1) The spawner does one clone per request and nothing slow: the
 *       cgroups and the wait for exec happen in the server's calling
 *       thread, so starts overlap.
 *   (2) Instances are cloned with CLONE_PARENT: their parent is the server,
 *       which waits for them through their pidfd; the spawner's children
 *       are its one probe and the netpool filler.
 *   (3) The spawner holds no fd of the server (closed at fork) and closes
 *       each request's fds right after the clone, so no instance inherits
 *       another's. (The clone child closes what it inherits of ours first
 *       thing, the pool's namespaces included.)
 *   (4) The clone makes only the user and pid namespaces (pid must be
 *       made by the clone for the child to be pid 1); the child unshares the
 *       others itself, so that work runs in parallel across instances, not
 *       here. The network one, the slowest, comes ready from the pool when
 *       it can (6).
 *   (5) The spawner writes the id maps right after the clone (three short
 *       proc writes; it has the server's credentials) and then sends the
 *       child its "go", so the child never waits for a server thread to be
 *       scheduled. Not when the server must first move the child into its
 *       cgroups: then the server sends "go" after the move.
 *   (6) A pooled network namespace (netpool.c) is entered for one clone
 *       only: the spawner goes back to its own right after, or exits.
 *       Not for a forward below port 1024 (see netpool.c (2)).
 *   (7) A zygote (zygote.c) is started like an instance, by a clone of
 *       ours as the server's child, but it execs its interpreter at once:
 *       it holds nothing of ours but fds 3-5 (channel, library, setup).
 *       Each zygote then runs this same loop (sandbox__serve with hooks)
 *       for the instances the server asks of it.
 *   (8) A template fork's shell (SANDBOX_ROLE_SHELL, shell.c) is cloned as
 *       the server's child with none of our namespaces changed: it joins
 *       the template's and makes the fork's own itself, and reports on its
 *       start socket. It is only ever the spawner's: a zygote's clone would
 *       be a copy of an interpreter.
 *
 * Start reading at sandbox__spawner_start().
 */
#include "sandbox/internal.h"

#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHAN_FD 3                         /* the channel, in the spawner */
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* The kernel's struct clone_args (linux/sched.h), version 2. */
typedef struct clone_args_v2 {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
} clone_args_v2;

pid_t sandbox__clone3(uint64_t flags, int *pidfd, int exit_signal, int cgroup_fd)
{
  clone_args_v2 args;
  memset(&args, 0, sizeof args);
  args.flags = flags;
  args.pidfd = (uint64_t)(uintptr_t)pidfd;
  args.exit_signal = (uint64_t)exit_signal;
  if (flags & CLONE_INTO_CGROUP)
    args.cgroup = (uint64_t)cgroup_fd;
  return (pid_t)syscall(SYS_clone3, &args, sizeof args);
}

/* One throw-away instance: the namespaces it needs, as it makes them. */
static int probe(void)
{
  pid_t pid = sandbox__clone3(SANDBOX_CLONE_FLAGS, NULL, SIGCHLD, -1);
  if (pid < 0)
    return errno;
  if (pid == 0)
    _exit(unshare(SANDBOX_UNSHARE_FLAGS) == 0 ? 0 : errno & 0x7f);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : EINVAL;
}

/* /proc/PID/cmdline is readable by every process that sees PID, so each
 * instance's init would show the server's command line to the function:
 * the spawner overwrites its own (the clones inherit it), and a zygote's
 * init and program theirs. */
void sandbox__set_cmdline(const char *const *argv)
{
  static char *start;
  static size_t size;
  if (start == NULL) {
    char stat[4096];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0)
      return;
    stat[n] = '\0';
    char *p = strrchr(stat, ')');
    if (p == NULL)
      return;
    /* fields 48 and 49 are arg_start and arg_end; the token after ')' is field 3 */
    unsigned long s = 0;
    unsigned long end = 0;
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
      field++;
      if (field == 48)
        s = strtoul(tok, NULL, 10);
      if (field == 49) {
        end = strtoul(tok, NULL, 10);
        break;
      }
    }
    if (s == 0 || end <= s || end - s > (1u << 20))
      return;
    start = (char *)s;
    size = end - s;
  }
  memset(start, 0, size);
  size_t off = 0;
  for (size_t i = 0; argv[i] != NULL; i++) {
    size_t l = strlen(argv[i]) + 1;
    if (off + l >= size) /* the last byte stays NUL */
      break;
    memcpy(start + off, argv[i], l);
    off += l;
  }
}

static void setup(int chan, pid_t server)
{
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != server)
    _exit(0);
  prctl(PR_SET_NAME, "tarn-spawner", 0, 0, 0);
  static const char *const init_name[] = {"tarn-init", NULL}; /* what ps shows for pid 1 inside */
  sandbox__set_cmdline(init_name);

  /* Instances start from our signal state: all default, none blocked. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &sa, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);

  /* (3): 0-2 on /dev/null, the channel on CHAN_FD, nothing else */
  int c = fcntl(chan, F_DUPFD_CLOEXEC, 64);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (c < 0 || null < 0)
    _exit(1);
  for (int fd = 0; fd < 3; fd++)
    if (null != fd)
      dup2(null, fd);
  if (dup3(c, CHAN_FD, O_CLOEXEC) < 0)
    _exit(1);
  close_range(CHAN_FD + 1, ~0u, 0);

  /* A root server's supplementary groups (root's) must not follow the
   * instances into their namespace; an unprivileged one cannot drop them. */
  if (geteuid() == 0)
    setgroups(0, NULL);
}

/* Takes the next NUL-terminated string of the request. */
static const char *take(const char **p, const char *end)
{
  const char *s = *p;
  const char *z = s < end ? memchr(s, '\0', (size_t)(end - s)) : NULL;
  if (z == NULL)
    return NULL;
  *p = z + 1;
  return s;
}

static char **take_list(const char **p, const char *end, uint32_t n)
{
  char **list = xcalloc((size_t)n + 1, sizeof *list);
  for (uint32_t i = 0; i < n; i++) {
    list[i] = (char *)take(p, end);
    if (list[i] == NULL) {
      free(list);
      return NULL;
    }
  }
  return list;
}

static int decode(const char *msg, size_t len, sandbox__job *job)
{
  sandbox__req_head h;
  if (len < sizeof h)
    return EINVAL;
  memcpy(&h, msg, sizeof h);
  if (h.magic != SANDBOX_REQ_MAGIC || h.nforwards > SANDBOX_MAX_FORWARDS ||
      h.nopt_dirs > SANDBOX_MAX_OPT_DIRS ||
      h.nargv == 0 || (uint64_t)h.nargv + h.nenvp > SANDBOX_MAX_STRINGS)
    return EINVAL;
  const char *p = msg + sizeof h;
  const char *end = msg + len;
  job->id = take(&p, end);
  job->code_dir = take(&p, end);
  job->runtime_dir = h.has_runtime ? take(&p, end) : NULL;
  if (job->id == NULL || job->code_dir == NULL || (h.has_runtime && job->runtime_dir == NULL))
    return EINVAL;
  job->nopt_dirs = h.nopt_dirs;
  for (uint32_t i = 0; i < h.nopt_dirs; i++)
    if ((job->opt_dirs[i] = take(&p, end)) == NULL)
      return EINVAL;
  job->argv = take_list(&p, end, h.nargv);
  job->envp = job->argv ? take_list(&p, end, h.nenvp) : NULL;
  if (job->envp == NULL) {
    free(job->argv);
    job->argv = NULL;
    return EINVAL;
  }
  for (uint32_t i = 0; i < h.nforwards; i++) {
    job->ports[i] = h.ports[i];
    job->sockets[i] = take(&p, end);
    if (job->sockets[i] == NULL) {
      free(job->argv);
      free(job->envp);
      job->argv = job->envp = NULL;
      return EINVAL;
    }
  }
  job->nforwards = h.nforwards;
  job->memory_mb = h.memory_mb;
  job->tmp_mb = h.tmp_mb;
  job->max_procs = h.max_procs;
  job->max_open_files = h.max_open_files;
  job->max_file_bytes = h.max_file_bytes;
  if (h.ncgfds > CG_COUNT || (h.cg_mode == SANDBOX_CG_NONE) != (h.ncgfds == 0) ||
      (h.cg_mode == SANDBOX_CG_V2_CLONE && h.ncgfds != 1) || h.cg_mode > SANDBOX_CG_V2_CLONE) {
    free(job->argv);
    free(job->envp);
    job->argv = job->envp = NULL;
    return EINVAL;
  }
  job->cg_mode = (int)h.cg_mode;
  job->ncgfds = h.ncgfds;
  job->host_uid = h.host_uid;
  job->host_gid = h.host_gid;
  job->pooled = h.pooled != 0;
  job->role = (int)h.role;
  if (h.role > SANDBOX_ROLE_SHELL || (h.role != SANDBOX_ROLE_INSTANCE && h.pooled)) {
    free(job->argv);
    free(job->envp);
    job->argv = job->envp = NULL;
    return EINVAL;
  }
  return 0;
}

static void reply(int errnum, pid_t pid, int attached, int maps_errnum, int pidfd, int sync_fd)
{
  sandbox__reply r = {.errnum = errnum, .pid = pid, .attached = attached, .maps_errnum = maps_errnum};
  struct iovec iov = {.iov_base = &r, .iov_len = sizeof r};
  union {
    char buf[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (errnum == 0) {
    memset(&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (cm == NULL)
      abort(); /* msg_controllen is set: cannot happen */
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = {pidfd, sync_fd};
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
  }
  while (sendmsg(CHAN_FD, &mh, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR)
      _exit(1);
  }
}

/* (5): inside 993 -> the instance's host uid and gid; 0 or an errno. */
static int write_maps(pid_t pid, uint32_t uid, uint32_t gid)
{
  char path[64];
  char map[64];
  snprintf(path, sizeof path, "/proc/%ld/setgroups", (long)pid);
  int rc = sandbox__write_file(path, "deny");
  if (rc == 0) {
    snprintf(path, sizeof path, "/proc/%ld/uid_map", (long)pid);
    snprintf(map, sizeof map, "%d %lu 1\n", SANDBOX_INSIDE_UID, (unsigned long)uid);
    rc = sandbox__write_file(path, map);
  }
  if (rc == 0) {
    snprintf(path, sizeof path, "/proc/%ld/gid_map", (long)pid);
    snprintf(map, sizeof map, "%d %lu 1\n", SANDBOX_INSIDE_GID, (unsigned long)gid);
    rc = sandbox__write_file(path, map);
  }
  return -rc;
}

/* (6): a pooled namespace's loopback belongs to our user namespace, and so
 * would the right to bind a port below 1024 in it. */
static bool pool_fits(const sandbox__job *job)
{
  for (size_t i = 0; i < job->nforwards; i++)
    if (job->ports[i] < 1024)
      return false;
  return true;
}

/* (7): a zygote, cloned as the server's child and exec'd; see internal.h
 * (sandbox__zyg_head). Answers like an instance's clone: its pidfd and the
 * server's end of its channel. */
static void start_zygote(const char *msg, size_t len, const int *fds, size_t nfds,
                         const char *state_dir, const struct sock_fprog *filter,
                         const struct sock_fprog *template_filter)
{
  sandbox__zyg_head h;
  int errnum = 0;
  char **argv = NULL;
  char **envp = NULL;
  if (len < sizeof h || nfds != 1) {
    errnum = EINVAL;
  } else {
    memcpy(&h, msg, sizeof h);
    const char *p = msg + sizeof h;
    const char *end = msg + len;
    if (h.nargv == 0 || (uint64_t)h.nargv + h.nenvp > SANDBOX_MAX_STRINGS)
      errnum = EINVAL;
    else if ((argv = take_list(&p, end, h.nargv)) == NULL || (envp = take_list(&p, end, h.nenvp)) == NULL)
      errnum = EINVAL;
  }
  int sp[2] = {-1, -1};
  int pidfd = -1;
  pid_t pid = -1;
  if (errnum == 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
    errnum = errno;
  if (errnum == 0) {
    pid = sandbox__clone3(CLONE_PARENT | CLONE_PIDFD, &pidfd, 0, -1);
    if (pid < 0)
      errnum = errno;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    int setup = memfd_create("tarn-zygote-setup", MFD_CLOEXEC);
    if (setup < 0)
      _exit(127);
    sandbox__zyg_setup z = {.state_len = (uint32_t)strlen(state_dir), .nfilter = filter->len,
                            .ntemplate_filter = template_filter->len};
    size_t fbytes = (size_t)filter->len * sizeof *filter->filter;
    size_t tbytes = (size_t)template_filter->len * sizeof *template_filter->filter;
    if (write(setup, &z, sizeof z) != (ssize_t)sizeof z ||
        write(setup, state_dir, z.state_len) != (ssize_t)z.state_len ||
        write(setup, filter->filter, fbytes) != (ssize_t)fbytes ||
        write(setup, template_filter->filter, tbytes) != (ssize_t)tbytes ||
        lseek(setup, 0, SEEK_SET) != 0)
      _exit(127);
    /* out of the way of 3-5 first, then into place (dup2 clears CLOEXEC) */
    int chan = fcntl(sp[1], F_DUPFD_CLOEXEC, 16);
    int lib = fcntl(fds[0], F_DUPFD_CLOEXEC, 16);
    int set = fcntl(setup, F_DUPFD_CLOEXEC, 16);
    if (chan < 0 || lib < 0 || set < 0 || dup2(chan, 3) != 3 || dup2(lib, 4) != 4 || dup2(set, 5) != 5)
      _exit(127);
    close_range(6, ~0u, 0);
    if (chdir("/") != 0) /* not the server's folder */
      _exit(127);
    execve(argv[0], argv, envp);
    _exit(127);
  }
  reply(errnum, pid, 1, 0, pidfd, sp[0]);
  if (pidfd >= 0)
    close(pidfd);
  for (int i = 0; i < 2; i++)
    if (sp[i] >= 0)
      close(sp[i]);
  free(argv);
  free(envp);
}

void sandbox__serve(const char *state_dir, const struct sock_fprog *filter,
                    const struct sock_fprog *template_filter, const sandbox__serve_hooks *hooks)
{
  /* (6): our own network namespace, to come back to after each clone; a
   * zygote has no pool (its helper would be a copy of the interpreter) */
  int home_net = hooks == NULL ? open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC) : -1;
  sandbox__netpool pool = {.sock = -1, .filler = -1};
  if (hooks == NULL)
    sandbox__netpool_start(&pool);
  char *msg = xmalloc(SANDBOX_MSG_MAX);
  for (;;) {
    struct iovec iov = {.iov_base = msg, .iov_len = SANDBOX_MSG_MAX};
    union {
      char buf[CMSG_SPACE((2 + CG_COUNT) * sizeof(int))];
      struct cmsghdr align;
    } u;
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    ssize_t n = recvmsg(CHAN_FD, &mh, MSG_CMSG_CLOEXEC);
    if (n == 0) {
      if (hooks == NULL)
        sandbox__netpool_stop(&pool);
      _exit(0); /* the server closed the channel */
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      _exit(1);
    }
    int fds[2 + CG_COUNT];
    size_t nfds = 0;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len >= CMSG_LEN(sizeof(int)) && cm->cmsg_len <= CMSG_LEN(sizeof fds)) {
      nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
    }

    uint32_t magic = 0;
    if ((size_t)n >= sizeof magic)
      memcpy(&magic, msg, sizeof magic);
    if (magic == SANDBOX_ZYG_MAGIC && hooks == NULL) {
      start_zygote(msg, (size_t)n, fds, nfds, state_dir, filter, template_filter);
      for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
      continue;
    }

    sandbox__job job;
    memset(&job, 0, sizeof job);
    int errnum = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? EMSGSIZE
                 : nfds == 0                               ? EBADF
                                                           : decode(msg, (size_t)n, &job);
    bool shell = errnum == 0 && job.role == SANDBOX_ROLE_SHELL;
    if (errnum == 0 && job.ncgfds + (shell ? 2 : 1) != nfds)
      errnum = EBADF;
    if (shell && (hooks != NULL || errnum != 0))
      errnum = EINVAL; /* the spawner's alone: a zygote's copies would hold an interpreter */
    job.template_pidfd = shell && errnum == 0 ? fds[nfds - 1] : -1;
    job.state_dir = state_dir;
    job.filter = filter;
    job.template_filter = template_filter;
    job.log_fd = nfds > 0 ? fds[0] : -1;
    for (size_t i = 0; i < job.ncgfds && i + 1 < nfds; i++)
      job.cg_fds[i] = fds[i + 1];

    int sp[2] = {-1, -1};
    int pidfd = -1;
    pid_t pid = -1;
    int attached = 1;
    int maps_errnum = 0;
    bool hooked = false;                  /* before_clone ran: after_clone is owed */
    if (errnum == 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
      errnum = errno;
    if (errnum == 0 && shell) {
      /* (8): no namespace of ours, no maps, no go */
      pid = sandbox__clone3(CLONE_PARENT | CLONE_PIDFD, &pidfd, 0, -1);
      if (pid == 0) {
        close(sp[0]);
        job.sync_fd = sp[1];
        sandbox__shell_main(&job);
      }
      if (pid < 0)
        errnum = errno;
    } else if (errnum == 0) {
      /* (6): the instance is born in a pooled network namespace if one is ready */
      int net = home_net >= 0 && pool_fits(&job) ? sandbox__netpool_take(&pool) : -1;
      if (net >= 0 && setns(net, CLONE_NEWNET) != 0) {
        close(net);
        net = -1;
      }
      job.net_ready = net >= 0;
      uint64_t flags = SANDBOX_CLONE_FLAGS | CLONE_PARENT | CLONE_PIDFD;
      bool into = job.cg_mode == SANDBOX_CG_V2_CLONE;
      hooked = hooks != NULL;
      if (hooked)
        hooks->before_clone();
      pid = sandbox__clone3(flags | (into ? CLONE_INTO_CGROUP : 0), &pidfd, 0, into ? job.cg_fds[0] : -1);
      if (pid < 0 && into) {
        /* an old kernel, or a cgroup we may not clone into: the server moves it */
        attached = 0;
        job.cg_mode = SANDBOX_CG_NONE;
        job.attach_later = true;
        pid = sandbox__clone3(flags, &pidfd, 0, -1);
      }
      if (pid == 0) {
        close(sp[0]);
        job.sync_fd = sp[1];
        if (hooks != NULL)
          hooks->in_child(&job);
        sandbox__instance_main(&job);
      }
      if (pid < 0)
        errnum = errno;
      if (net >= 0) {
        /* (6): never clone another instance into a namespace that is used */
        if (setns(home_net, CLONE_NEWNET) != 0)
          _exit(1);
        close(net);
      }
    }
    if (pid > 0 && !shell) {
      /* (5) */
      maps_errnum = write_maps(pid, job.host_uid, job.host_gid);
      if (maps_errnum == 0 && attached)
        (void)!send(sp[0], "g", 1, MSG_NOSIGNAL); /* if it died, the server hears it */
    }
    reply(errnum, pid, attached, maps_errnum, pidfd, sp[0]);
    /* A zygote's interpreter hooks run once the instance has its go and
     * the server its answer: they run the interpreter (Python's at-fork
     * callbacks), whose writes fault on pages shared with the copy. */
    if (hooked)
      hooks->after_clone();
    sandbox__netpool_refill(&pool);
    if (pidfd >= 0)
      close(pidfd);
    for (int i = 0; i < 2; i++)
      if (sp[i] >= 0)
        close(sp[i]);
    for (size_t i = 0; i < nfds; i++)
      close(fds[i]);
    free(job.argv);
    free(job.envp);
  }
}

int sandbox__spawner_start(const char *state_dir, const struct sock_fprog *filter,
                           const struct sock_fprog *template_filter, pid_t *pid, int *chan, int *probe_errno, err *e)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return err_set(e, ERR_INTERNAL, "cannot create the spawner's socket: %s", strerror(errno));
  pid_t server = getpid();
  pid_t p = fork();
  if (p < 0) {
    int errnum = errno;
    close(sv[0]);
    close(sv[1]);
    return err_set(e, ERR_INTERNAL, "cannot fork the sandbox spawner: %s", strerror(errnum));
  }
  if (p == 0) {
    setup(sv[1], server);
    int32_t probed = probe();
    if (send(CHAN_FD, &probed, sizeof probed, MSG_NOSIGNAL) != sizeof probed)
      _exit(1);
    sandbox__serve(state_dir, filter, template_filter, NULL);
  }
  close(sv[1]);
  int32_t probed = 0;
  ssize_t n;
  while ((n = recv(sv[0], &probed, sizeof probed, 0)) < 0 && errno == EINTR) {
  }
  if (n != sizeof probed) {
    close(sv[0]);
    waitpid(p, NULL, 0);
    return err_set(e, ERR_INTERNAL, "the sandbox spawner died at start");
  }
  *pid = p;
  *chan = sv[0];
  *probe_errno = probed;
  return 0;
}
