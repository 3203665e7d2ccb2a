/* sandbox/shell.c -- a template fork's namespaces, made by the trusted side.
 *
 * Why: a template (template.c) is a process that imported a function's
 * handler inside that function's sandbox; its forks are the function's
 * instances. A fork must get namespaces of its own (pid, mount with its
 * own /tmp, IPC, UTS, cgroup), but the template may not make namespaces:
 * that is the kernel surface the seccomp filter keeps out of reach. So
 * the spawner makes them ahead, here, and the fork only joins them
 * (setns, which a template's filter allows: seccomp.c (6)).
 *
 * The processes, all clones of the spawner (never of an interpreter):
 *   X   the spawner's clone (the server's child): joins the instance's
 *       cgroups, opens the forwards' host sockets (O_PATH, in the host's
 *       tree), joins the template's user, mount, network and pid
 *       namespaces through its init's pidfd, and clones Y; exits.
 *   Y   (the server's child, in the template's pid namespace: a pid
 *       namespace can only be made by a process that lives in its parent)
 *       takes the inside uid 993, makes a user namespace N nested in the
 *       template's (owned by 993 there: the template's own uid, so the
 *       template's processes get every capability in N, and nowhere
 *       else), and, owned by N, mount, UTS, IPC, cgroup and pid
 *       namespaces; over the template's /tmp it stacks an overlay whose
 *       upper layer is a fresh tmpfs (what the import left in /tmp is
 *       seen, what the fork writes is its own), a fresh /dev/shm, the
 *       hostname; clones pid 1 (init.c sandbox__shell_init) as the
 *       server's child, and reports the nsfs fds, pid 1's pidfd and the
 *       ports it listens on.
 *   pid 1 of the fork's pid namespace, in the template's network namespace
 *       (its forks share it: a fork with a network namespace owned by N
 *       would hold CAP_NET_ADMIN over it if it skipped its drop), listens
 *       for the forwards on ports the kernel picks, drops everything and
 *       stays as the fork's init: reaps, forwards, and exits with the
 *       fork's status.
 *
 * What a fork that skips its own drop holds (zygote_lib.c drops): every
 * capability in N, over N's mount, UTS, IPC, cgroup and pid namespaces,
 * where the template's filter still denies mount, unshare, new namespaces
 * and sethostname; pid 1 is not dumpable. Nothing over the template's
 * namespaces, another fork's, or another function's (no nsfs fd of
 * theirs, no capability in their owners).
 *
 * Invariants:
 *   (1) Everything here runs as a copy of the single-threaded spawner:
 *       it may call anything. A failure is reported on the start socket
 *       (sandbox__fail) and ends the shell.
 *   (2) N maps only 993 (to the template's 993, so to its host uid).
 *   (3) X, Y and pid 1 are the server's children (CLONE_PARENT): the
 *       server reaps X through the pidfd the spawner sends, Y through the
 *       one X sends, and waits for pid 1.
 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A fork-like clone as the caller's sibling (the server's child), with a pidfd. */
static pid_t sibling(int *pidfd)
{
  return sandbox__clone3(CLONE_PARENT | CLONE_PIDFD, pidfd, 0, -1);
}

/* "0" into each of the instance's cgroups: v1 "tasks" fds, or a v2 folder. */
static void join_cgroups(sandbox__job *job)
{
  for (size_t i = 0; i < job->ncgfds; i++) {
    int fd = job->cg_fds[i];
    int procs = job->cg_mode == SANDBOX_CG_V2_CLONE ? openat(fd, "cgroup.procs", O_WRONLY | O_CLOEXEC) : fd;
    if (procs < 0 || write(procs, "0", 1) != 1)
      sandbox__fail(job, errno, "cannot join the instance's cgroups");
    if (procs != fd)
      close(procs);
    close(fd);
  }
}

static void write_proc(sandbox__job *job, const char *path, const char *text)
{
  int rc = sandbox__write_file(path, text);
  if (rc != 0)
    sandbox__fail(job, -rc, "cannot write '%s'", path);
}

/* Y: N and the namespaces it owns (see the top). */
static void make_namespaces(sandbox__job *job)
{
  int bits = SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_NOROOT |
             SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0)
    sandbox__fail(job, errno, "cannot set securebits");
  /* (no setgroups: the template's namespace denies it; the spawner's
   * supplementary groups are none already, spawner.c setup) */
  if (setresgid(SANDBOX_INSIDE_GID, SANDBOX_INSIDE_GID, SANDBOX_INSIDE_GID) != 0 ||
      setresuid(SANDBOX_INSIDE_UID, SANDBOX_INSIDE_UID, SANDBOX_INSIDE_UID) != 0)
    sandbox__fail(job, errno, "cannot become %d in the template's namespace", SANDBOX_INSIDE_UID);
  /* the uid change made us not dumpable, which closes /proc/self to us */
  if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0 || unshare(CLONE_NEWUSER) != 0)
    sandbox__fail(job, errno, "cannot create the fork's user namespace");
  char map[32];
  write_proc(job, "/proc/self/setgroups", "deny");
  snprintf(map, sizeof map, "%d %d 1\n", SANDBOX_INSIDE_UID, SANDBOX_INSIDE_UID);
  write_proc(job, "/proc/self/uid_map", map);
  snprintf(map, sizeof map, "%d %d 1\n", SANDBOX_INSIDE_GID, SANDBOX_INSIDE_GID);
  write_proc(job, "/proc/self/gid_map", map);
  if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | CLONE_NEWPID) != 0)
    sandbox__fail(job, errno, "cannot create the fork's mount, UTS, IPC, cgroup and pid namespaces");
}

/* Y, in the fork's mount namespace (a copy of the template's tree, every
 * mount locked under N): /tmp, /dev/shm, the hostname. */
static void make_mounts(sandbox__job *job)
{
  char opts[160];
  sandbox__tmp_opts(opts, sizeof opts, job->tmp_mb);
  /* the upper layer's tmpfs, on /run (empty in every instance) while the
   * overlay is made; the overlay keeps its own reference */
  if (mount("tmp", "/run", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
    sandbox__fail(job, errno, "cannot mount the fork's /tmp layer");
  if (mkdir("/run/upper", 01777) != 0 || mkdir("/run/work", 0700) != 0 || chmod("/run/upper", 01777) != 0)
    sandbox__fail(job, errno, "cannot make the fork's /tmp layer");
  if (mount("tmp", "/tmp", "overlay", MS_NOSUID | MS_NODEV,
            "lowerdir=/tmp,upperdir=/run/upper,workdir=/run/work") != 0)
    sandbox__fail(job, errno, "cannot mount the fork's /tmp");
  if (umount2("/run", MNT_DETACH) != 0)
    sandbox__fail(job, errno, "cannot unmount the fork's /tmp layer");
  sandbox__shm_opts(opts, sizeof opts, job->memory_mb);
  if (mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
    sandbox__fail(job, errno, "cannot mount the fork's /dev/shm");
  if (sethostname(job->id, strlen(job->id)) != 0)
    sandbox__fail(job, errno, "cannot set hostname '%s'", job->id);
}

/* self: /proc/self, opened before pid 1 mounts its own /proc (which
 * shows nothing of ours) over the template's. */
static int open_ns(sandbox__job *job, int self, const char *name)
{
  char path[64];
  snprintf(path, sizeof path, "ns/%s", name);
  int fd = openat(self, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    sandbox__fail(job, errno, "cannot open '/proc/self/%s'", path);
  return fd;
}

/* A report of kind with nfds fds beside (internal.h): Y's, with the
 * ports, or X's with Y's pidfd. */
static void report(sandbox__job *job, int kind, const uint16_t *ports, const int *fds, size_t nfds)
{
  sandbox__report r;
  memset(&r, 0, sizeof r);
  r.kind = kind;
  if (ports != NULL)
    memcpy(r.msg, ports, job->nforwards * sizeof ports[0]);
  r.phase_us[SANDBOX_P_UNSHARED] = job->phase_us[SANDBOX_P_UNSHARED];
  r.phase_us[SANDBOX_P_ROOTFS] = job->phase_us[SANDBOX_P_ROOTFS];
  r.phase_us[SANDBOX_P_PROGRAM] = sandbox__now_us();
  if (sandbox__send_fds(job->sync_fd, &r, sizeof r, fds, nfds) != (ssize_t)sizeof r)
    _exit(1);
}

/* Y: everything after the template's namespaces were joined. */
static void maker(sandbox__job *job, const int *sockets) __attribute__((noreturn));
static void maker(sandbox__job *job, const int *sockets)
{
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  make_namespaces(job);
  job->phase_us[SANDBOX_P_UNSHARED] = sandbox__now_us();
  make_mounts(job);
  job->phase_us[SANDBOX_P_ROOTFS] = sandbox__now_us();
  int self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (self < 0)
    sandbox__fail(job, errno, "cannot open '/proc/self'");
  int fds[SANDBOX_SHELL_FDS];
  fds[SHELL_USER] = open_ns(job, self, "user");
  fds[SHELL_MNT] = open_ns(job, self, "mnt");
  fds[SHELL_UTS] = open_ns(job, self, "uts");
  fds[SHELL_IPC] = open_ns(job, self, "ipc");
  fds[SHELL_CGROUP] = open_ns(job, self, "cgroup");
  fds[SHELL_PID] = -1; /* exists once its pid 1 does, below */
  int ex[2];
  int ready[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ex) != 0 ||
      pipe2(ready, O_CLOEXEC) != 0)
    sandbox__fail(job, errno, "cannot make the fork's sockets");
  int init_pidfd = -1;
  pid_t init = sibling(&init_pidfd);
  if (init < 0)
    sandbox__fail(job, errno, "cannot start the fork's init");
  if (init == 0) {
    close(ex[1]);
    close(ready[0]);
    for (int i = SHELL_USER; i < SHELL_PID; i++)
      close(fds[i]);
    close(self);
    sandbox__shell_init(job, sockets, ex[0], ready[1]);
  }
  close(ex[0]);
  close(ready[1]);
  uint16_t ports[SANDBOX_MAX_FORWARDS];
  size_t want = job->nforwards * sizeof ports[0];
  ssize_t got = want > 0 ? read(ready[0], ports, want) : 0;
  if (got != (ssize_t)want)
    _exit(1); /* init failed: its report is on the start socket */
  fds[SHELL_PID] = open_ns(job, self, "pid_for_children");
  fds[SHELL_PIDFD] = init_pidfd;
  fds[SHELL_EXIT] = ex[1];
  report(job, SANDBOX_REPORT_SHELL, ports, fds, SANDBOX_SHELL_FDS);
  _exit(0);
}

void sandbox__shell_main(sandbox__job *job)
{
  job->phase_us[SANDBOX_P_CHILD] = sandbox__now_us();
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (job->log_fd >= 0)
    close(job->log_fd); /* the fork's log goes to the template with the fork request */
  join_cgroups(job);
  job->phase_us[SANDBOX_P_JOINED] = sandbox__now_us();
  int sockets[SANDBOX_MAX_FORWARDS];
  for (size_t i = 0; i < job->nforwards; i++) {
    sockets[i] = open(job->sockets[i], O_PATH | O_CLOEXEC);
    if (sockets[i] < 0)
      sandbox__fail(job, errno, "cannot open forward socket '%s'", job->sockets[i]);
  }
  if (setns(job->template_pidfd, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID) != 0)
    sandbox__fail(job, errno, "cannot join the template's namespaces");
  close(job->template_pidfd);
  int pidfd = -1;
  pid_t y = sibling(&pidfd);
  if (y < 0)
    sandbox__fail(job, errno, "cannot start the fork's namespace maker");
  if (y == 0)
    maker(job, sockets);
  report(job, SANDBOX_REPORT_SHELL_MAKER, NULL, &pidfd, 1);
  _exit(0);
}
