/* sandbox/netpool.c -- fresh network namespaces made ahead of need.
 *
 * Why: making a network namespace is the slowest part of an instance's
 * start (loopback, sysctl tables, netfilter, proc entries: about half a
 * millisecond). A helper process, the filler, makes a few ahead while the
 * spawner waits for requests; the spawner enters one just for the clone of
 * an instance, which is born in it.
 *
 * Protocol on the pool socket (SOCK_SEQPACKET, spawner <-> filler):
 *   spawner -> filler  one byte per namespace wanted (a credit)
 *   filler -> spawner  one byte per namespace made, its fd beside it
 * The spawner gives SANDBOX_NETPOOL_SIZE credits at start and one more per
 * namespace taken, so at most that many wait, made and never entered.
 *
 * Invariants:
 *   (1) Each namespace is used once: the filler makes it, brings its
 *       loopback up, hands its only fd over and leaves it; the spawner
 *       enters it for one clone, then closes the fd. No instance shares a
 *       namespace, or anything in one, with another.
 *   (2) The namespaces belong to the spawner's user namespace (the host's):
 *       an instance cannot configure its network even before it drops its
 *       capabilities, which is why the filler brings loopback up, and why a
 *       forward to a port below 1024 needs a namespace of the instance's
 *       own (sandbox__netpool_take's caller checks).
 *   (3) The pool is an optimisation only: when the filler cannot make
 *       namespaces (an unprivileged server), is behind, or is gone, the
 *       instance makes its own, as it did before.
 *   (4) The filler is a child of the spawner, holds nothing of the server
 *       (the spawner's fds are closed in it) and dies with the spawner.
 *   (5) Kernel memory of a pooled namespace is charged to the server's
 *       cgroup, not to the instance's (the namespace is older than the
 *       instance); what the instance allocates in it later is its own.
 *   (6) The filler runs at nice 19: it works ahead of need and must not
 *       take the CPU from the starts it serves. When it is starved the
 *       pool runs dry and instances make their own namespace (3).
 *
 * Start reading at sandbox__netpool_start().
 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Brings the calling process's loopback up; 0 or an errno. */
static int lo_up(void)
{
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
  int rc = ioctl(s, SIOCSIFFLAGS, &ifr) == 0 ? 0 : errno;
  close(s);
  return rc;
}

static int send_fd(int sock, int fd)
{
  char byte = 'n';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  if (cm == NULL)
    return -1; /* msg_controllen is set: cannot happen */
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  ssize_t n;
  while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  return n == 1 ? 0 : -1;
}

/* The filler: one namespace per credit, until the spawner goes. */
static void filler(int sock) __attribute__((noreturn));

static void filler(int sock)
{
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* (4) */
  prctl(PR_SET_NAME, "tarn-netpool", 0, 0, 0);
  /* (6): the work is ahead of need, so it yields to the starts that need it */
  (void)!setpriority(PRIO_PROCESS, 0, 19);
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0)
    _exit(0);
  for (;;) {
    char credit;
    ssize_t n = recv(sock, &credit, 1, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n != 1)
      _exit(0); /* the spawner is gone */
    if (unshare(CLONE_NEWNET) != 0 || lo_up() != 0)
      _exit(0); /* (3): no pool on this host; the socket's EOF says so */
    int ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    /* (1): leave the new namespace before anyone enters it */
    if (ns < 0 || setns(home, CLONE_NEWNET) != 0)
      _exit(0);
    int rc = send_fd(sock, ns);
    close(ns);
    if (rc != 0)
      _exit(0);
  }
}

void sandbox__netpool_start(sandbox__netpool *pool)
{
  memset(pool, 0, sizeof *pool);
  pool->sock = -1;
  pool->filler = -1;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return;
  pid_t pid = fork();
  if (pid < 0) {
    close(sv[0]);
    close(sv[1]);
    return;
  }
  if (pid == 0) {
    /* (4): 0-2 on /dev/null (the spawner's), our end of the socket on 3,
     * nothing else */
    if (sv[1] != 3 && dup3(sv[1], 3, O_CLOEXEC) < 0)
      _exit(0);
    close_range(4, ~0u, 0);
    filler(3);
  }
  close(sv[1]);
  pool->sock = sv[0];
  pool->filler = pid;
  for (int i = 0; i < SANDBOX_NETPOOL_SIZE; i++)
    if (send(pool->sock, "c", 1, MSG_NOSIGNAL) != 1)
      break;
}

/* Takes what the filler has sent so far, without waiting. */
static void collect(sandbox__netpool *pool)
{
  while (pool->sock >= 0 && pool->count < SANDBOX_NETPOOL_SIZE) {
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
      char buf[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } u;
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    ssize_t n = recvmsg(pool->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    int fd = -1;
    struct cmsghdr *cm = n == 1 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len == CMSG_LEN(sizeof(int)))
      memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    if (fd < 0) {
      /* EOF or garbage: the filler is gone, (3) */
      close(pool->sock);
      pool->sock = -1;
      return;
    }
    pool->fds[pool->count++] = fd;
  }
}

int sandbox__netpool_take(sandbox__netpool *pool)
{
  collect(pool);
  if (pool->count == 0)
    return -1;
  int fd = pool->fds[0];
  pool->count--;
  memmove(pool->fds, pool->fds + 1, pool->count * sizeof pool->fds[0]);
  pool->owed++;
  return fd;
}

void sandbox__netpool_refill(sandbox__netpool *pool)
{
  for (; pool->owed > 0 && pool->sock >= 0; pool->owed--)
    if (send(pool->sock, "c", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
      close(pool->sock);
      pool->sock = -1;
    }
}

void sandbox__netpool_stop(sandbox__netpool *pool)
{
  for (size_t i = 0; i < pool->count; i++)
    close(pool->fds[i]);
  pool->count = 0;
  if (pool->sock >= 0)
    close(pool->sock); /* the filler exits on EOF */
  pool->sock = -1;
  if (pool->filler > 0)
    while (waitpid(pool->filler, NULL, 0) < 0 && errno == EINTR) {
    }
  pool->filler = -1;
}
