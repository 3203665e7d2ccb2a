/* sandbox/init.c -- the clone child: it builds the sandbox around itself,
 * then stays as pid 1 of it: starts the program, reaps zombies, forwards
 * TCP ports to host Unix sockets, and exits with the program's status.
 *
 * The child is a copy of the single-threaded spawner (spawner.c), so it
 * may call anything, malloc included; it never execs tarn again.
 *
 * States of the child, in order:
 *   JOIN     into its cgroups (v1: "0" to each tasks file), then it
 *            unshares mount, IPC, UTS and cgroup namespaces, and network
 *            unless it was born in a fresh one from the pool (netpool.c)
 *   WAIT     blocked on the start socket until the spawner has written the
 *            id maps ("go"; from the server instead when the server must
 *            first move it into its cgroups, and then it unshares its
 *            cgroup namespace after)
 *   BUILD    hostname, loopback (unless pooled), mounts, pivot_root
 *            (rootfs.c), as the inside uid with its caps in the user
 *            namespace
 *   DROP     forward listeners bound, then every capability dropped
 *            (bounding set too), no_new_privs, not dumpable, seccomp
 *   RUN      program vfork'ed and exec'd; init loops on epoll (in a
 *            zygote's instance: fork'ed, and it returns into the
 *            interpreter instead of an exec, zygote.c)
 *   EXIT     the program ended: init exits with its status, 128+signal
 *            when killed; the kernel then kills what is left in the pid ns
 * A pooled instance (pool.c) goes through JOIN, WAIT and BUILD without the
 * function's code, forks the program (which drops its own privileges and
 * waits in its interpreter), then waits for its claim: the function's code
 * and layers attached, /tmp resized, and only then DROP for init and the
 * claim handed to the program (pool_instance).
 * A failure before RUN is reported on the start socket (sandbox__fail).
 *
 * Invariants:
 *   (1) Init holds no capability and no fd the program could use: the
 *       program gets fds 0-2 and, until its exec, the start socket (CLOEXEC);
 *       everything else is closed in the child before exec. Init keeps an
 *       O_PATH fd of each forward's host socket (accept_all).
 *   (2) Init has no handler for any signal: as pid 1 of its pid namespace,
 *       the kernel drops signals the program sends it (SIGKILL included).
 *       SIGCHLD is blocked and read through a signalfd.
 *   (3) Init is not dumpable: /proc/1 is closed to the program, and so is
 *       ptrace (also denied by seccomp).
 *   (4) Init never blocks but in epoll_wait: every socket is non-blocking,
 *       sends use MSG_NOSIGNAL.
 *   (5) Init and the program share uid 993 (an unprivileged server can map
 *       only one uid); init is kept safe by (2) and (3), not by its uid.
 *
 * Start reading at sandbox__instance_main().
 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define FD_LOG 100                        /* the program's stdout/stderr, in init */
#define FD_SYNC 101                       /* the start socket, in init */
                                          /* FD_LOG + 2...: the cgroup fds, until joined */
#define FLOW_BUF 16384                    /* bytes in flight per direction */
#define EXIT_SETUP 125                    /* init's status when the build failed */

void sandbox__fail(const sandbox__job *job, int errnum, const char *fmt, ...)
{
  sandbox__report r;
  memset(&r, 0, sizeof r);
  r.kind = SANDBOX_REPORT_FAILED;
  r.errnum = errnum;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r.msg, sizeof r.msg, fmt, ap);
  va_end(ap);
  size_t n = strlen(r.msg);
  if (errnum != 0)
    snprintf(r.msg + n, sizeof r.msg - n, ": %s", strerror(errnum));
  (void)!send(job->sync_fd, &r, sizeof r, MSG_NOSIGNAL);
  _exit(EXIT_SETUP);
}

/* Keeps the log, start and cgroup fds (moved to FD_LOG...) and 0-2, which
 * the spawner pointed at /dev/null; closes everything else of the spawner. */
static void keep_fds(sandbox__job *job)
{
  /* the spawner's fds are all small numbers: no overlap with FD_LOG... */
  int *fds[2 + CG_COUNT] = {&job->log_fd, &job->sync_fd};
  size_t n = 2;
  for (size_t i = 0; i < job->ncgfds; i++)
    fds[n++] = &job->cg_fds[i];
  for (size_t i = 0; i < n; i++)
    if (*fds[i] >= FD_LOG)
      _exit(EXIT_SETUP);
  for (size_t i = 0; i < n; i++) {
    if (dup3(*fds[i], FD_LOG + (int)i, O_CLOEXEC) < 0)
      _exit(EXIT_SETUP);
    *fds[i] = FD_LOG + (int)i;
  }
  close_range(3, FD_LOG - 1, 0);
  close_range(FD_LOG + (unsigned)n, ~0u, 0);
}

/* v1: moves this (single-threaded) process into each controller's cgroup. */
static void join_cgroups(sandbox__job *job)
{
  for (size_t i = 0; i < job->ncgfds; i++) {
    if (job->cg_mode == SANDBOX_CG_V1_TASKS && write(job->cg_fds[i], "0", 1) != 1)
      sandbox__fail(job, errno, "cannot join cgroup %zu", i);
    close(job->cg_fds[i]);
  }
  job->ncgfds = 0;
}

static void loopback_up(const sandbox__job *job)
{
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    sandbox__fail(job, errno, "cannot open a socket to bring 'lo' up");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
    sandbox__fail(job, errno, "cannot bring 'lo' up");
  close(s);
}

static void become_inside_user(const sandbox__job *job)
{
  /* Keep the caps across setresuid (our kernel uid may be host root, which
   * the namespace does not map); lock out root-based cap gains for good. */
  int bits = SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_NOROOT |
             SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0)
    sandbox__fail(job, errno, "cannot set securebits");
  if (setresgid(SANDBOX_INSIDE_GID, SANDBOX_INSIDE_GID, SANDBOX_INSIDE_GID) != 0)
    sandbox__fail(job, errno, "cannot become gid %d", SANDBOX_INSIDE_GID);
  if (setresuid(SANDBOX_INSIDE_UID, SANDBOX_INSIDE_UID, SANDBOX_INSIDE_UID) != 0)
    sandbox__fail(job, errno, "cannot become uid %d", SANDBOX_INSIDE_UID);
}

static void drop_privileges(const sandbox__job *job)
{
  for (int cap = 0;; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
      continue;
    if (errno == EINVAL)
      break; /* past the last capability this kernel knows */
    sandbox__fail(job, errno, "cannot drop capability %d from the bounding set", cap);
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
    sandbox__fail(job, errno, "cannot clear ambient capabilities");
  struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &head, data) != 0)
    sandbox__fail(job, errno, "cannot drop capabilities");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    sandbox__fail(job, errno, "cannot set no_new_privs");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) /* (3) */
    sandbox__fail(job, errno, "cannot make init not dumpable");
  int rc = sandbox__seccomp_apply(job->role == SANDBOX_ROLE_TEMPLATE ? job->template_filter
                                                                     : job->filter);
  if (rc != 0)
    sandbox__fail(job, -rc, "cannot load the seccomp filter");
}

static int listen_port(const sandbox__job *job, uint16_t port)
{
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0)
    sandbox__fail(job, errno, "cannot open a socket for port %u", (unsigned)port);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0)
    sandbox__fail(job, errno, "cannot bind 127.0.0.1:%u", (unsigned)port);
  if (listen(s, 128) != 0)
    sandbox__fail(job, errno, "cannot listen on 127.0.0.1:%u", (unsigned)port);
  return s;
}

/* --- the program -------------------------------------------------------- */

static const char *env_get(char **envp, const char *name)
{
  size_t n = strlen(name);
  for (char **e = envp; *e != NULL; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
      return *e + n + 1;
  return NULL;
}

/* execve, or a PATH search (from the program's envp) for a bare name. */
static int exec_program(char **argv, char **envp)
{
  if (strchr(argv[0], '/') != NULL) {
    execve(argv[0], argv, envp);
    return errno;
  }
  const char *path = env_get(envp, "PATH");
  if (path == NULL)
    path = "/usr/local/bin:/usr/bin:/bin";
  int best = ENOENT;
  for (const char *p = path;;) {
    size_t l = strcspn(p, ":");
    char full[1024];
    if (l > 0 && l + strlen(argv[0]) + 2 <= sizeof full) {
      snprintf(full, sizeof full, "%.*s/%s", (int)l, p, argv[0]);
      execve(full, argv, envp);
      if (errno == EACCES)
        best = EACCES;
      else if (errno != ENOENT && errno != ENOTDIR)
        return errno;
    }
    if (p[l] == '\0')
      break;
    p += l + 1;
  }
  return best;
}

static void set_limit(int resource, uint64_t value)
{
  struct rlimit rl = {.rlim_cur = value, .rlim_max = value};
  setrlimit(resource, &rl);
}

/* The program's process, vfork'ed by init: it shares init's memory until
 * its exec, so it only makes syscalls and writes nothing but its stack
 * (errno aside). Never returns. */
static void run_program(const sandbox__job *job) __attribute__((noreturn));

/* What the program starts with, exec'd or forked from a zygote: signals
 * unblocked, a session of its own, the job's resource limits, no core. */
static void program_setup(const sandbox__job *job)
{
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  setsid();
  if (job->max_open_files > 0)
    set_limit(RLIMIT_NOFILE, job->max_open_files);
  if (job->max_file_bytes > 0)
    set_limit(RLIMIT_FSIZE, job->max_file_bytes);
  /* a template's forks share its host uid, which RLIMIT_NPROC counts:
   * each fork's pids cgroup limits it instead */
  if (job->role != SANDBOX_ROLE_TEMPLATE)
    set_limit(RLIMIT_NPROC, job->max_procs);
  set_limit(RLIMIT_CORE, 0);
}

static void run_program(const sandbox__job *job)
{
  program_setup(job);

  /* (1): 0 is /dev/null already; 1, 2 the log; 3 the start socket */
  if (dup2(job->log_fd, 1) < 0 || dup2(job->log_fd, 2) < 0 || dup3(job->sync_fd, 3, O_CLOEXEC) < 0)
    _exit(EXIT_SETUP);
  close_range(4, ~0u, 0);
  int errnum = chdir("/var/task") == 0 ? exec_program(job->argv, job->envp) : errno;
  sandbox__report r;
  memset(&r, 0, sizeof r);
  r.kind = SANDBOX_REPORT_EXEC_FAILED;
  r.errnum = errnum;
  snprintf(r.msg, sizeof r.msg, "cannot run '%s': %s", job->argv[0], strerror(errnum));
  (void)!send(3, &r, sizeof r, MSG_NOSIGNAL);
  _exit(127);
}

/* What an fd of init was just before the program's fork. */
typedef struct fd_id {
  dev_t dev;
  ino_t ino;
} fd_id;

/* A zygote's program (zygote.c): forked by init, it sets itself up as
 * run_program does, says it started, and returns into the interpreter it
 * is a copy of. Never returns. */
static void become_program(const sandbox__job *job, int top, const fd_id *ids)
    __attribute__((noreturn));

/* ids[fd] for fd in 3..top: what init held there (its fds and
 * placeholders, see the fork below). An fd that is something else now was
 * made in this process by the interpreter's atfork handlers (libuv re-makes
 * its signal lock pipe, on the numbers of the old one) and is the
 * program's own; so is one above top but FD_LOG's. */
static void become_program(const sandbox__job *job, int top, const fd_id *ids)
{
  program_setup(job);
  for (int fd = 3; fd <= top; fd++) {
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_dev == ids[fd].dev && st.st_ino == ids[fd].ino)
      close(fd);
  }
  if (dup2(job->log_fd, 1) < 0 || dup2(job->log_fd, 2) < 0 || dup3(job->sync_fd, 3, O_CLOEXEC) < 0)
    _exit(EXIT_SETUP);
  close(job->log_fd);
  close(job->sync_fd);
  close_range(FD_LOG + 2, ~0u, 0);
  if (chdir("/var/task") != 0)
    _exit(EXIT_SETUP);
  /* what an exec would have made it: dumpable again (init is not) */
  prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  if (job->pooled)
    job->resume(job); /* fd 3 is its pair with init: it says it is ready, and waits there for its claim */
  sandbox__report r;
  memset(&r, 0, sizeof r);
  r.kind = SANDBOX_REPORT_STARTED;
  memcpy(r.phase_us, job->phase_us, sizeof r.phase_us);
  r.phase_us[SANDBOX_P_PROGRAM] = sandbox__now_us();
  (void)!send(3, &r, sizeof r, MSG_NOSIGNAL);
  if (job->role != SANDBOX_ROLE_TEMPLATE)
    close(3); /* a template keeps it: its channel to the server (zygote_lib.c) */
  job->resume(job);
}

/* --- the forwards --------------------------------------------------------- */

enum { W_SIGNAL, W_LISTEN, W_CONN, W_EXIT };

typedef struct conn conn;

typedef struct watch {
  int kind;                               /* W_* */
  int index;                              /* W_LISTEN: forward; W_CONN: side */
  conn *conn;                             /* W_CONN */
} watch;

typedef struct flow {                     /* bytes read from one side for the other */
  char buf[FLOW_BUF];
  size_t off;                             /* first byte not yet written */
  size_t len;                             /* bytes in buf from off */
  bool eof;                               /* the reading side ended */
  bool shut;                              /* the writing side was shut down */
} flow;

struct conn {
  int fd[2];                              /* 0: TCP from inside, 1: Unix to the host */
  flow flow[2];                           /* flow[i]: from fd[i] to fd[1 - i] */
  watch w[2];
  uint32_t events[2];                     /* what fd[i] is in epoll for; 0: not in it */
  bool dead;                              /* closed; freed after this epoll batch */
  conn *next_dead;                        /* in graveyard */
};

/* Conns closed during one epoll batch: the batch may still hold an event
 * for the other side of one of them. */
static conn *graveyard;

static void conn_close(int ep, conn *c)
{
  for (int i = 0; i < 2; i++) {
    if (c->events[i] != 0)
      epoll_ctl(ep, EPOLL_CTL_DEL, c->fd[i], NULL);
    close(c->fd[i]);
  }
  c->dead = true;
  c->next_dead = graveyard;
  graveyard = c;
}

/* Writes flow j to the other side; -1 when the connection is dead. */
static int pump(conn *c, int j)
{
  flow *f = &c->flow[j];
  while (f->len > 0) {
    ssize_t n = send(c->fd[1 - j], f->buf + f->off, f->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        return 0;
      return -1;
    }
    f->off += (size_t)n;
    f->len -= (size_t)n;
  }
  f->off = 0;
  if (f->eof && !f->shut) {
    shutdown(c->fd[1 - j], SHUT_WR);
    f->shut = true;
  }
  return 0;
}

/* Puts each side in epoll for what it can do next; -1: the connection is over. */
static int conn_rearm(int ep, conn *c)
{
  if (c->flow[0].shut && c->flow[1].shut)
    return -1;
  for (int i = 0; i < 2; i++) {
    uint32_t want = 0;
    if (!c->flow[i].eof && c->flow[i].len == 0)
      want |= EPOLLIN;
    if (c->flow[1 - i].len > 0)
      want |= EPOLLOUT;
    if (want == c->events[i])
      continue;
    struct epoll_event ev = {.events = want, .data.ptr = &c->w[i]};
    int op = want == 0 ? EPOLL_CTL_DEL : c->events[i] == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(ep, op, c->fd[i], &ev) != 0)
      return -1;
    c->events[i] = want;
  }
  return 0;
}

static void conn_event(int ep, conn *c, int side, uint32_t revents)
{
  flow *in = &c->flow[side];
  if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !in->eof && in->len == 0) {
    ssize_t n = recv(c->fd[side], in->buf, sizeof in->buf, MSG_DONTWAIT);
    if (n == 0) {
      in->eof = true;
    } else if (n > 0) {
      in->off = 0;
      in->len = (size_t)n;
    } else if (errno != EAGAIN && errno != EINTR) {
      conn_close(ep, c);
      return;
    }
    if (pump(c, side) != 0) {
      conn_close(ep, c);
      return;
    }
  }
  if ((revents & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && pump(c, 1 - side) != 0) {
    conn_close(ep, c);
    return;
  }
  if (conn_rearm(ep, c) != 0)
    conn_close(ep, c);
}

/* Each forward's host socket, as an O_PATH fd opened before the pivot
 * (rootfs.c): init connects through /proc/self/fd/N, so the socket is not
 * mounted anywhere in the instance's tree and its host path shows in no
 * mountinfo. (Init is not dumpable, so /proc/1/fd is closed to the
 * program; the program never has these fds: run_program closes them.) */
static int host_sockets[SANDBOX_MAX_FORWARDS];

static void accept_all(int ep, int listener, int host_socket)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", host_socket);
  for (;;) {
    int tcp = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (tcp < 0)
      return; /* EAGAIN; or EMFILE: the program's client sees its connect hang */
    int ux = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (ux < 0 || connect(ux, (struct sockaddr *)&a, sizeof a) != 0) {
      /* the host side is down or its backlog full: the client sees a reset */
      if (ux >= 0)
        close(ux);
      close(tcp);
      continue;
    }
    conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
      close(ux);
      close(tcp);
      continue;
    }
    c->fd[0] = tcp;
    c->fd[1] = ux;
    for (int i = 0; i < 2; i++)
      c->w[i] = (watch){.kind = W_CONN, .index = i, .conn = c};
    if (conn_rearm(ep, c) != 0)
      conn_close(ep, c);
  }
}

static int exit_code(int status)
{
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return 255;
}

/* Drains sfd's SIGCHLDs and reaps every ended child; exits init with the
 * program's code when the program is among them (the kernel then kills
 * the rest of the pid namespace). */
static void reap(int sfd, pid_t program)
{
  struct signalfd_siginfo si;
  while (read(sfd, &si, sizeof si) > 0) {
  }
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
    if (pid == program)
      _exit(exit_code(status));
}

/* A template fork's wait status, from its waiter (zygote_lib.c) on
 * exit_fd: init exits with it; with 255 when the waiter is gone unheard. */
static void fork_ended(int exit_fd)
{
  int32_t status;
  ssize_t n;
  while ((n = recv(exit_fd, &status, sizeof status, MSG_DONTWAIT)) < 0 && errno == EINTR) {
  }
  if (n < 0 && errno == EAGAIN)
    return;
  _exit(n == (ssize_t)sizeof status ? exit_code(status) : 255);
}

/* Pid 1's loop: until the program ends (a template fork's shell: until
 * exit_fd says it did; else exit_fd is -1). */
static void serve(const sandbox__job *job, pid_t program, int sfd, const int *listeners, int exit_fd)
    __attribute__((noreturn));

static void serve(const sandbox__job *job, pid_t program, int sfd, const int *listeners, int exit_fd)
{
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    _exit(EXIT_SETUP);
  watch sigw = {.kind = W_SIGNAL};
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &sigw};
  epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
  watch exitw = {.kind = W_EXIT};
  if (exit_fd >= 0) {
    ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &exitw};
    epoll_ctl(ep, EPOLL_CTL_ADD, exit_fd, &ev);
  }
  watch lw[SANDBOX_MAX_FORWARDS];
  for (size_t i = 0; i < job->nforwards; i++) {
    lw[i] = (watch){.kind = W_LISTEN, .index = (int)i};
    ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &lw[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, listeners[i], &ev);
  }
  for (;;) {
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, -1);
    for (int k = 0; k < n; k++) {
      watch *w = evs[k].data.ptr;
      if (w->kind == W_LISTEN) {
        accept_all(ep, listeners[w->index], host_sockets[w->index]);
      } else if (w->kind == W_CONN) {
        if (!w->conn->dead)
          conn_event(ep, w->conn, w->index, evs[k].events);
      } else if (w->kind == W_EXIT) {
        fork_ended(exit_fd);
      } else {
        reap(sfd, program);
      }
    }
    while (graveyard != NULL) {
      conn *c = graveyard;
      graveyard = c->next_dead;
      free(c);
    }
  }
}

/* A zygote's instance: the program is a copy of init, which is a copy of
 * the pre-initialised interpreter; it reports its own start. The
 * interpreter's atfork handlers may make fds in it (libuv re-makes its
 * signal lock pipe), and then re-make the fds of its own the zygote had,
 * closing their old numbers: placeholders on every free fd up to the
 * highest the zygote or init holds push the new ones above them. chan >= 0
 * (a pooled instance): the program's fd 3 is chan instead of the start
 * socket, and it drops its privileges itself (init keeps its own until the
 * claim, pool_instance). */
static pid_t fork_program(sandbox__job *job, int chan)
{
  int top = job->zygote_top_fd;
  for (int fd = 3; fd < FD_LOG; fd++)
    if (fcntl(fd, F_GETFD) >= 0 && fd > top)
      top = fd;
  int placeholders[FD_LOG];
  int nph = 0;
  fd_id ids[FD_LOG];
  memset(ids, 0, sizeof ids);
  for (int fd = 3; fd <= top; fd++) {
    if (fcntl(fd, F_GETFD) < 0 && dup3(0, fd, O_CLOEXEC) == fd)
      placeholders[nph++] = fd;
    struct stat st;
    if (fstat(fd, &st) == 0)
      ids[fd] = (fd_id){st.st_dev, st.st_ino};
  }
  job->phase_us[SANDBOX_P_FORK] = sandbox__now_us();
  pid_t program = fork();
  if (program < 0)
    sandbox__fail(job, errno, "cannot start the program");
  if (program == 0) {
    if (chan >= 0) {
      if (dup3(chan, job->sync_fd, O_CLOEXEC) < 0)
        _exit(EXIT_SETUP);
      drop_privileges(job);
    }
    become_program(job, top, ids);
  }
  for (int i = 0; i < nph; i++)
    close(placeholders[i]);
  return program;
}

/* Waits until fd is readable; exits init when the program ended first
 * (sfd: its SIGCHLD) or fd hung up. */
static void pool_await(const sandbox__job *job, int fd, int sfd, pid_t program)
{
  for (;;) {
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      _exit(EXIT_SETUP);
    }
    if (p[1].revents != 0) {
      reap(sfd, program);
    }
    if (p[0].revents & POLLIN)
      return;
    if (p[0].revents != 0)
      _exit(EXIT_SETUP); /* the server dropped its pool */
  }
  (void)job;
}

/* A pooled instance (pool.c in sandbox.c): everything of a sandbox that
 * does not depend on a function is built; the program is forked now,
 * drops its privileges and runs the interpreter's after-fork work, then
 * waits on its pair with init. Init keeps its capabilities (in the
 * instance's user namespace only, as while it builds any instance) until
 * the claim: it mounts the function's code and layers there, then drops
 * them, exactly as any init does, and only then hands the program its
 * command line, environment and log. So no function code ever runs
 * while a process of the instance holds a capability, and an instance
 * gets one claim: it ends with its program. */
static void pool_instance(sandbox__job *job, int sfd, const int *listeners) __attribute__((noreturn));
static void pool_instance(sandbox__job *job, int sfd, const int *listeners)
{
  if (job->resume == NULL)
    sandbox__fail(job, EINVAL, "a pooled instance must be a zygote's");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) /* (3), before the program exists */
    sandbox__fail(job, errno, "cannot make init not dumpable");
  int pp[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pp) != 0 ||
      dup3(pp[0], FD_LOG + 2, O_CLOEXEC) < 0 || dup3(pp[1], FD_LOG + 3, O_CLOEXEC) < 0)
    sandbox__fail(job, errno, "cannot make the program's claim socket");
  close(pp[0]);
  close(pp[1]);
  int prog_chan = FD_LOG + 2;
  pid_t program = fork_program(job, FD_LOG + 3);
  close(FD_LOG + 3);
  close(job->log_fd); /* /dev/null until the claim */

  /* ready: the program's report (its phases), passed on as STARTED */
  pool_await(job, prog_chan, sfd, program);
  sandbox__report r;
  if (recv(prog_chan, &r, sizeof r, 0) != (ssize_t)sizeof r || r.kind != SANDBOX_REPORT_STARTED)
    sandbox__fail(job, EPROTO, "the pooled program did not get ready");
  (void)!send(job->sync_fd, &r, sizeof r, MSG_NOSIGNAL);

  /* the claim */
  pool_await(job, job->sync_fd, sfd, program);
  static char msg[SANDBOX_MSG_MAX];
  int fds[2 + SANDBOX_MAX_OPT_DIRS];
  size_t nfds = 0;
  struct iovec iov = {.iov_base = msg, .iov_len = sizeof msg};
  union {
    char buf[CMSG_SPACE((2 + SANDBOX_MAX_OPT_DIRS) * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                      .msg_controllen = sizeof u.buf};
  ssize_t len = recvmsg(job->sync_fd, &mh, MSG_CMSG_CLOEXEC);
  struct cmsghdr *cm = len > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
  if (cm != NULL && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len >= CMSG_LEN(0)) {
    nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
  }
  sandbox__claim_head h;
  if (len < (ssize_t)sizeof h || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
    sandbox__fail(job, EPROTO, "bad claim");
  memcpy(&h, msg, sizeof h);
  if (h.magic != SANDBOX_CLAIM_MAGIC || h.nopt_dirs > SANDBOX_MAX_OPT_DIRS ||
      nfds != (h.nopt_dirs > 0 ? 3u : 2u))
    sandbox__fail(job, EPROTO, "bad claim");
  sandbox__rootfs_claim(job, fds[1], nfds > 2 ? fds[2] : -1, h.tmp_mb, h.memory_mb);
  for (size_t i = 1; i < nfds; i++)
    close(fds[i]);
  drop_privileges(job);
  job->phase_us[SANDBOX_P_CLAIM_MOUNTS] = sandbox__now_us();

  /* the program's part, with the log beside it */
  iov.iov_len = (size_t)len;
  mh = (struct msghdr){.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int))};
  memset(u.buf, 0, sizeof u.buf);
  cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fds[0], sizeof(int));
  if (sendmsg(prog_chan, &mh, MSG_NOSIGNAL) != len)
    sandbox__fail(job, errno, "cannot hand the claim to the program");
  close(fds[0]);
  close(prog_chan);
  job->phase_us[SANDBOX_P_CLAIM_SENT] = sandbox__now_us();
  memset(&r, 0, sizeof r);
  r.kind = SANDBOX_REPORT_CLAIMED;
  memcpy(r.phase_us, job->phase_us, sizeof r.phase_us);
  (void)!send(job->sync_fd, &r, sizeof r, MSG_NOSIGNAL);
  close(job->sync_fd);
  serve(job, program, sfd, listeners, -1);
}

/* What init needs for its loop: its hard fd limit (forwarded connections
 * take fds) and SIGCHLD through a signalfd (2); the signalfd. */
static int become_pid1(const sandbox__job *job)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0)
    sandbox__fail(job, errno, "cannot create a signalfd");
  return sfd;
}

void sandbox__instance_main(sandbox__job *job)
{
  job->phase_us[SANDBOX_P_CHILD] = sandbox__now_us();
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  keep_fds(job);
  /* While the spawner writes our id maps: cgroups first, so that what the
   * kernel allocates for our namespaces counts against the instance (a
   * pooled network namespace is older than us: netpool.c (5)). */
  join_cgroups(job);
  job->phase_us[SANDBOX_P_JOINED] = sandbox__now_us();
  /* The cgroup namespace's root is the cgroup we are in when we make it:
   * at once if we are in ours already, else after the server moved us. */
  int flags = SANDBOX_UNSHARE_FLAGS | (job->attach_later ? 0 : CLONE_NEWCGROUP);
  if (job->net_ready)
    flags &= ~CLONE_NEWNET; /* born in a fresh one (netpool.c) */
  if (unshare(flags) != 0)
    sandbox__fail(job, errno, "cannot create mount, network, IPC, UTS and cgroup namespaces");
  job->phase_us[SANDBOX_P_UNSHARED] = sandbox__now_us();
  char go;
  if (read(job->sync_fd, &go, 1) != 1)
    _exit(EXIT_SETUP); /* the server gave up on us */
  job->phase_us[SANDBOX_P_GO] = sandbox__now_us();

  umask(022);
  if (job->attach_later && unshare(CLONE_NEWCGROUP) != 0)
    sandbox__fail(job, errno, "cannot create a cgroup namespace");
  if (sethostname(job->id, strlen(job->id)) != 0)
    sandbox__fail(job, errno, "cannot set hostname '%s'", job->id);
  if (!job->net_ready)
    loopback_up(job);
  job->phase_us[SANDBOX_P_HOST] = sandbox__now_us();

  sandbox__sources src;
  sandbox__rootfs_prepare(job, &src);
  become_inside_user(job);
  sandbox__rootfs_build(job, &src);
  close(src.code);
  if (src.runtime >= 0)
    close(src.runtime);
  for (size_t i = 0; i < job->nopt_dirs; i++)
    close(src.opt[i]);
  for (size_t i = 0; i < job->nforwards; i++)
    host_sockets[i] = src.sockets[i]; /* kept: see accept_all */
  job->phase_us[SANDBOX_P_ROOTFS] = sandbox__now_us();

  int listeners[SANDBOX_MAX_FORWARDS];
  for (size_t i = 0; i < job->nforwards; i++)
    listeners[i] = listen_port(job, job->ports[i]);

  if (!job->pooled)
    drop_privileges(job); /* pooled: at the claim (pool_instance) */
  job->phase_us[SANDBOX_P_DROPPED] = sandbox__now_us();

  int sfd = become_pid1(job);

  if (job->pooled)
    pool_instance(job, sfd, listeners);
  if (job->resume != NULL) {
    pid_t program = fork_program(job, -1);
    close(job->log_fd);
    close(job->sync_fd);
    serve(job, program, sfd, listeners, -1);
  }
  job->phase_us[SANDBOX_P_FORK] = sandbox__now_us();
  pid_t program = vfork(); /* init's pages are not copied for a process that execs */
  if (program < 0)
    sandbox__fail(job, errno, "cannot start the program");
  if (program == 0)
    run_program(job);
  /* vfork returns once the program exec'd or exited: if its exec failed,
   * its report is already on the socket, ahead of this one */
  sandbox__report r;
  memset(&r, 0, sizeof r);
  r.kind = SANDBOX_REPORT_STARTED;
  job->phase_us[SANDBOX_P_PROGRAM] = sandbox__now_us(); /* the exec is done */
  memcpy(r.phase_us, job->phase_us, sizeof r.phase_us);
  (void)!send(job->sync_fd, &r, sizeof r, MSG_NOSIGNAL);
  close(job->log_fd);
  close(job->sync_fd);
  serve(job, program, sfd, listeners, -1);
}

/* --- a template fork's pid 1 ------------------------------------------------ */

void sandbox__shell_init(sandbox__job *job, const int *sockets, int exit_fd, int ready_fd)
{
  job->phase_us[SANDBOX_P_CHILD] = sandbox__now_us();
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
    sandbox__fail(job, errno, "cannot mount '/proc'");
  /* Pid 2 is taken and let go here, so the fork is pid 3: its template is
   * pid 2 of its own namespace, and what tells a fork by a change of pid
   * (OpenSSL's random generators, Python's tempfile names) must see one,
   * or every fork would draw the template's numbers. */
  pid_t two = fork();
  if (two == 0)
    _exit(0);
  if (two < 0 || waitpid(two, NULL, 0) != two)
    sandbox__fail(job, errno, "cannot take pid 2");
  for (size_t i = 0; i < job->nforwards; i++)
    host_sockets[i] = sockets[i];
  /* the network namespace is the template's: the kernel picks free ports */
  int listeners[SANDBOX_MAX_FORWARDS];
  uint16_t ports[SANDBOX_MAX_FORWARDS];
  for (size_t i = 0; i < job->nforwards; i++) {
    listeners[i] = listen_port(job, 0);
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    if (getsockname(listeners[i], (struct sockaddr *)&a, &alen) != 0)
      sandbox__fail(job, errno, "cannot read the port of forward %zu", i);
    ports[i] = ntohs(a.sin_port);
  }
  drop_privileges(job);
  job->phase_us[SANDBOX_P_DROPPED] = sandbox__now_us();
  int sfd = become_pid1(job);
  size_t bytes = job->nforwards * sizeof ports[0];
  if (write(ready_fd, ports, bytes) != (ssize_t)bytes)
    _exit(EXIT_SETUP);
  close(ready_fd);
  close(job->sync_fd); /* the shell's maker reports (shell.c) */
  serve(job, -1, sfd, listeners, exit_fd);
}
