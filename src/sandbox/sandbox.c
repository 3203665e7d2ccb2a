/* sandbox/sandbox.c -- the sandbox API on the server's side: host checks,
 * the start of an instance, its wait, kill and cleanup.
 *
 * A start, in the calling thread except the clone:
 *   1. validate the spec; pick the instance's host uid/gid (root server:
 *      one of its own from SANDBOX_HOST_ID_BASE; unprivileged: ours)
 *   2. create the instance's cgroups with their limits (cgroup.c)
 *   3. send the request, with fds to join the cgroups, to the spawner; it
 *      clones init into new user and pid namespaces (spawner.c), writes
 *      init's uid_map/gid_map (inside 993 -> the host id), sends init its
 *      "go" and answers with init's pidfd and our end of its start socket;
 *      meanwhile init joins its cgroups and unshares its other namespaces
 *      (init.c)
 *   4. only if the spawner could not clone init into its cgroup (v2): move
 *      init there, then send "go" ourselves
 *   5. init builds the sandbox and starts the program; we wait on the
 *      start socket for its report: started, or why not
 *
 * Invariants:
 *   (1) Inside, both init and the program run as uid/gid 993. A root
 *       server maps it to a host uid/gid of its own per instance, which owns
 *       nothing on the host: an escaped process is nobody there, and not
 *       even the same nobody as another instance.
 *   (2) An instance is the server's child (CLONE_PARENT) and is waited for
 *       only through its pidfd, so its pid cannot be reused under us.
 *   (3) Killing init kills its whole pid namespace, so one SIGKILL to init
 *       ends every process of the instance.
 *   (4) A failed start leaves nothing behind: init killed and reaped,
 *       cgroups removed, host id freed.
 *   (5) sandbox_kill may run in another thread while one waits: `ended` is
 *       atomic and set only after `exit` is complete; a kill that loses the
 *       race signals a reaped pidfd, which fails harmlessly (ESRCH).
 *
 * Start reading at sandbox_start().
 */
#include "sandbox/internal.h"

#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct sandbox {
  char id[65];                            /* as in the spec */
  pid_t pid;                              /* host pid of init */
  int pidfd;                              /* init's pidfd: wait, kill */
  long slot;                              /* host id slot (root server), or -1 */
  sandbox__cgroup cg;                     /* the instance's cgroups */
  atomic_bool ended;                      /* init was reaped; exit holds its status (5) */
  sandbox_exit exit;
  int64_t begin_us;                       /* sandbox_phases */
  int64_t cgroup_us;
  int64_t reply_us;
  int64_t started_us;
  int64_t init_us[SANDBOX_P_COUNT];
  int ctl;                                /* pooled, until claimed, or a template: the start socket */
  bool pooled;                            /* claimed from a pool: sandbox_phases says the claim's */
  sandbox_template *tmpl;                 /* a template's fork: the template it keeps (template.c) */
};

static struct {
  bool ready;                             /* sandbox_system_init succeeded */
  bool root;                              /* the server runs as host root */
  char state_dir[SANDBOX_PATH_MAX];       /* absolute */
  sandbox__cgroups cgs;
  struct sock_fprog filter;               /* compiled once, inherited by the spawner */
  struct sock_fprog template_filter;      /* the same without setns (seccomp.c (6)) */
  pid_t spawner;
  int chan;                               /* our end of the spawner's channel */
  pthread_mutex_t chan_mu;                /* one request/reply on chan at a time */
  pthread_mutex_t slot_mu;                /* guards slots, next_slot */
  uint32_t next_slot;
  uint8_t slots[SANDBOX_HOST_ID_SLOTS / 8];
  char notes[1024];                       /* what the host lacks, for the log */
} sys = {
    .chan = -1,
    .chan_mu = PTHREAD_MUTEX_INITIALIZER,
    .slot_mu = PTHREAD_MUTEX_INITIALIZER,
};

/* --- small file helpers ----------------------------------------------------- */

int64_t sandbox__now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int sandbox__write_file(const char *path, const char *text)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  size_t n = strlen(text);
  ssize_t w = write(fd, text, n);
  int rc = w == (ssize_t)n ? 0 : w < 0 ? -errno : -EIO;
  close(fd);
  return rc;
}

ssize_t sandbox__read_file(const char *path, char *buf, size_t n)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    buf[0] = '\0';
    return -errno;
  }
  size_t got = 0;
  while (got + 1 < n) {
    ssize_t r = read(fd, buf + got, n - 1 - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  buf[got] = '\0';
  close(fd);
  return (ssize_t)got;
}

static int mkdir_p(const char *path, mode_t mode)
{
  char tmp[SANDBOX_PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p != '\0'; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(tmp, mode) != 0 && errno != EEXIST)
    return -errno;
  return 0;
}

ssize_t sandbox__send_fds(int sock, const void *msg, size_t len, const int *fds, size_t nfds)
{
  if (nfds > SANDBOX_SEND_FDS_MAX) {
    errno = EINVAL;
    return -1;
  }
  struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
  union {
    char buf[CMSG_SPACE(SANDBOX_SEND_FDS_MAX * sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    mh.msg_control = u.buf;
    mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
  }
  ssize_t n;
  while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  return n;
}

/* --- the system ------------------------------------------------------------- */

int sandbox_system_init(const char *state_dir, err *e)
{
  if (sys.ready)
    return 0;
  if (state_dir == NULL || state_dir[0] == '\0' || strlen(state_dir) >= SANDBOX_PATH_MAX - 64)
    return err_set(e, ERR_INVALID, "sandbox state folder '%s' is not a usable path", state_dir ? state_dir : "");
  int rc = mkdir_p(state_dir, 0700);
  char real[PATH_MAX];
  if (rc != 0 || realpath(state_dir, real) == NULL)
    return err_set(e, ERR_IO, "cannot create sandbox state folder '%s': %s", state_dir,
                   strerror(rc != 0 ? -rc : errno));
  if (snprintf(sys.state_dir, sizeof sys.state_dir, "%s", real) >= (int)sizeof sys.state_dir)
    return err_set(e, ERR_INVALID, "sandbox state folder '%s' is too long", real);
  sys.root = geteuid() == 0;
  sys.notes[0] = '\0';

  if (access("/proc/self/ns/user", F_OK) != 0)
    return err_set(e, ERR_UNAVAILABLE, "this kernel has no user namespaces (CONFIG_USER_NS)");
  rc = sandbox__seccomp_build(&sys.filter, false, e);
  if (rc != 0)
    return rc;
  rc = sandbox__seccomp_build(&sys.template_filter, true, e);
  if (rc != 0) {
    free(sys.filter.filter);
    sys.filter.filter = NULL;
    return rc;
  }
  rc = sandbox__cgroups_init(&sys.cgs, sys.notes, sizeof sys.notes, e);
  if (rc != 0)
    goto fail;
  int probe_errno = 0;
  rc = sandbox__spawner_start(sys.state_dir, &sys.filter, &sys.template_filter, &sys.spawner, &sys.chan, &probe_errno, e);
  if (rc != 0)
    goto fail;
  if (probe_errno != 0) {
    rc = err_set(e, ERR_UNAVAILABLE,
                 "cannot create user, pid, mount, IPC, UTS and network namespaces: %s "
                 "(see sysctls user.max_user_namespaces, kernel.unprivileged_userns_clone, "
                 "kernel.apparmor_restrict_unprivileged_userns)",
                 strerror(probe_errno));
    close(sys.chan);
    waitpid(sys.spawner, NULL, 0);
    sys.chan = -1;
    goto fail;
  }
  sys.ready = true;
  return 0;

fail:
  sandbox__cgroups_release(&sys.cgs);
  free(sys.filter.filter);
  sys.filter.filter = NULL;
  free(sys.template_filter.filter);
  sys.template_filter.filter = NULL;
  return rc;
}

const char *sandbox_system_notes(void)
{
  return sys.notes;
}

void sandbox_system_release(void)
{
  if (!sys.ready)
    return;
  pthread_mutex_lock(&sys.chan_mu);
  close(sys.chan); /* the spawner exits on EOF */
  sys.chan = -1;
  pthread_mutex_unlock(&sys.chan_mu);
  while (waitpid(sys.spawner, NULL, 0) < 0 && errno == EINTR) {
  }
  sandbox__cgroups_release(&sys.cgs);
  free(sys.filter.filter);
  sys.filter.filter = NULL;
  free(sys.template_filter.filter);
  sys.template_filter.filter = NULL;
  sys.ready = false;
}

/* --- host ids (root server) ------------------------------------------------- */

static long slot_alloc(void)
{
  pthread_mutex_lock(&sys.slot_mu);
  long found = -1;
  for (uint32_t k = 0; k < SANDBOX_HOST_ID_SLOTS; k++) {
    uint32_t s = (sys.next_slot + k) % SANDBOX_HOST_ID_SLOTS;
    if (!(sys.slots[s / 8] & (1u << (s % 8)))) {
      sys.slots[s / 8] |= (uint8_t)(1u << (s % 8));
      sys.next_slot = s + 1;
      found = s;
      break;
    }
  }
  pthread_mutex_unlock(&sys.slot_mu);
  return found;
}

static void slot_free(long s)
{
  if (s < 0)
    return;
  pthread_mutex_lock(&sys.slot_mu);
  sys.slots[s / 8] &= (uint8_t) ~(1u << (s % 8));
  pthread_mutex_unlock(&sys.slot_mu);
}

/* --- start ------------------------------------------------------------------ */

static bool valid_id(const char *id)
{
  size_t n = 0;
  for (; id[n] != '\0'; n++) {
    char c = id[n];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  }
  return n >= 1 && n <= 64;
}

static int validate(const sandbox_spec *s, err *e)
{
  if (s == NULL || s->id == NULL || !valid_id(s->id))
    return err_set(e, ERR_INVALID, "sandbox id '%s' is not [a-z0-9-]{1,64}", s && s->id ? s->id : "");
  if (s->code_dir == NULL || s->code_dir[0] != '/')
    return err_set(e, ERR_INVALID, "code folder of sandbox '%s' is not an absolute path", s->id);
  if (s->runtime_dir != NULL && s->runtime_dir[0] != '/')
    return err_set(e, ERR_INVALID, "runtime folder of sandbox '%s' is not an absolute path", s->id);
  if (s->nopt_dirs > SANDBOX_MAX_OPT_DIRS || (s->nopt_dirs > 0 && s->opt_dirs == NULL))
    return err_set(e, ERR_INVALID, "sandbox '%s' stacks more than %d folders at /opt", s->id,
                   SANDBOX_MAX_OPT_DIRS);
  for (size_t i = 0; i < s->nopt_dirs; i++)
    if (s->opt_dirs[i] == NULL || s->opt_dirs[i][0] != '/')
      return err_set(e, ERR_INVALID, "folder %zu for /opt of sandbox '%s' is not an absolute path",
                     i, s->id);
  if (s->argv == NULL || s->argv[0] == NULL || s->argv[0][0] == '\0' || s->envp == NULL)
    return err_set(e, ERR_INVALID, "sandbox '%s' has no program to run", s->id);
  if (s->memory_mb < 16 || s->memory_mb > 1024 * 1024)
    return err_set(e, ERR_INVALID, "memory of sandbox '%s' must be 16 MB to 1 TB, not %u", s->id,
                   (unsigned)s->memory_mb);
  if (s->tmp_mb < 1 || s->tmp_mb > 1024 * 1024)
    return err_set(e, ERR_INVALID, "/tmp of sandbox '%s' must be 1 MB to 1 TB, not %u", s->id,
                   (unsigned)s->tmp_mb);
  if (s->max_procs < 2)
    return err_set(e, ERR_INVALID, "sandbox '%s' needs max_procs of 2 or more (init and the program)", s->id);
  if (s->nforwards > SANDBOX_MAX_FORWARDS || (s->nforwards > 0 && s->forwards == NULL))
    return err_set(e, ERR_INVALID, "sandbox '%s' has more than %d forwards", s->id, SANDBOX_MAX_FORWARDS);
  for (size_t i = 0; i < s->nforwards; i++) {
    const sandbox_forward *f = &s->forwards[i];
    if (f->port == 0 || f->host_socket == NULL || f->host_socket[0] != '/')
      return err_set(e, ERR_INVALID, "forward %zu of sandbox '%s' needs a port and an absolute socket path", i, s->id);
    for (size_t j = 0; j < i; j++)
      if (s->forwards[j].port == f->port)
        return err_set(e, ERR_INVALID, "sandbox '%s' forwards port %u twice", s->id, (unsigned)f->port);
  }
  if (s->log_fd < 0 || fcntl(s->log_fd, F_GETFD) < 0)
    return err_set(e, ERR_INVALID, "log fd %d of sandbox '%s' is not open", s->log_fd, s->id);
  return 0;
}

/* The start request (internal.h); NULL and an error when too large. */
static char *encode(const sandbox_spec *s, bool pooled, int role, size_t *len, err *e)
{
  size_t nargv = 0;
  size_t nenvp = 0;
  size_t size = sizeof(sandbox__req_head) + strlen(s->id) + 1 + strlen(s->code_dir) + 1;
  if (s->runtime_dir != NULL)
    size += strlen(s->runtime_dir) + 1;
  for (size_t i = 0; i < s->nopt_dirs; i++)
    size += strlen(s->opt_dirs[i]) + 1;
  for (; s->argv[nargv] != NULL; nargv++)
    size += strlen(s->argv[nargv]) + 1;
  for (; s->envp[nenvp] != NULL; nenvp++)
    size += strlen(s->envp[nenvp]) + 1;
  for (size_t i = 0; i < s->nforwards; i++)
    size += strlen(s->forwards[i].host_socket) + 1;
  if (size > SANDBOX_MSG_MAX || nargv + nenvp > SANDBOX_MAX_STRINGS) {
    err_set(e, ERR_INVALID, "program, environment and forwards of sandbox '%s' take %zu bytes, more than %d",
            s->id, size, SANDBOX_MSG_MAX);
    return NULL;
  }
  char *msg = xmalloc(size);
  sandbox__req_head h;
  memset(&h, 0, sizeof h);
  h.magic = SANDBOX_REQ_MAGIC;
  h.memory_mb = s->memory_mb;
  h.tmp_mb = s->tmp_mb;
  h.max_procs = s->max_procs;
  h.max_open_files = s->max_open_files;
  h.max_file_bytes = s->max_file_bytes;
  h.nargv = (uint32_t)nargv;
  h.nenvp = (uint32_t)nenvp;
  h.nforwards = (uint32_t)s->nforwards;
  h.has_runtime = s->runtime_dir != NULL;
  h.nopt_dirs = (uint32_t)s->nopt_dirs;
  h.pooled = pooled;
  h.role = (uint32_t)role;
  for (size_t i = 0; i < s->nforwards; i++)
    h.ports[i] = s->forwards[i].port;
  memcpy(msg, &h, sizeof h);
  char *p = msg + sizeof h;
#define PUT(str)                  \
  do {                            \
    size_t l_ = strlen(str) + 1;  \
    memcpy(p, (str), l_);         \
    p += l_;                      \
  } while (0)
  PUT(s->id);
  PUT(s->code_dir);
  if (s->runtime_dir != NULL)
    PUT(s->runtime_dir);
  for (size_t i = 0; i < s->nopt_dirs; i++)
    PUT(s->opt_dirs[i]);
  for (size_t i = 0; i < nargv; i++)
    PUT(s->argv[i]);
  for (size_t i = 0; i < nenvp; i++)
    PUT(s->envp[i]);
  for (size_t i = 0; i < s->nforwards; i++)
    PUT(s->forwards[i].host_socket);
#undef PUT
  *len = size;
  return msg;
}

int sandbox__exchange(int chan, pthread_mutex_t *mu, const void *msg, size_t len, const int *fds,
                      size_t nfds, sandbox__reply *r, int back[2])
{
  struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
  union {
    char buf[CMSG_SPACE((2 + CG_COUNT) * sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (nfds > 0) {
    mh.msg_control = u.buf;
    mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (cm == NULL)
      abort(); /* msg_controllen is set: cannot happen */
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
  }
  memset(r, 0, sizeof *r);
  back[0] = back[1] = -1;
  ssize_t n;
  if (mu != NULL)
    pthread_mutex_lock(mu);
  while ((n = sendmsg(chan, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n == (ssize_t)len) {
    struct iovec riov = {.iov_base = r, .iov_len = sizeof *r};
    memset(&u, 0, sizeof u);
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &riov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    while ((n = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
  } else {
    n = -1;
  }
  if (mu != NULL)
    pthread_mutex_unlock(mu);
  if (n != sizeof *r)
    return -1;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  if (cm != NULL && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(2 * sizeof(int)))
    memcpy(back, CMSG_DATA(cm), 2 * sizeof(int));
  return 0;
}

int sandbox__spawner_exchange(const void *msg, size_t len, const int *fds, size_t nfds,
                              sandbox__reply *r, int back[2])
{
  return sandbox__exchange(sys.chan, &sys.chan_mu, msg, len, fds, nfds, r, back);
}

/* Step 3: one exchange with the spawner, or with the spec's zygote when it
 * can serve. *attached: the instance is (or will put itself) in its
 * cgroups, and it was sent "go". On an error after the clone, sb holds the
 * instance, to be killed. */
static int spawn(const sandbox_spec *spec, bool zygote_only, char *msg, size_t len, sandbox *sb,
                 int *sync_fd, bool *attached, err *e)
{
  int mode;
  int cgfds[CG_COUNT];
  size_t ncg = 0;
  int rc = sandbox__cgroup_join_fds(&sys.cgs, &sb->cg, &mode, cgfds, &ncg, e);
  if (rc != 0)
    return rc;
  sandbox__req_head h;
  memcpy(&h, msg, sizeof h);
  h.cg_mode = (uint32_t)mode;
  h.ncgfds = (uint32_t)ncg;
  h.host_uid = sys.root ? SANDBOX_HOST_ID_BASE + (uint32_t)sb->slot : (uint32_t)geteuid();
  h.host_gid = sys.root ? SANDBOX_HOST_ID_BASE + (uint32_t)sb->slot : (uint32_t)getegid();
  memcpy(msg, &h, sizeof h);

  int sent[1 + CG_COUNT];
  sent[0] = spec->log_fd;
  memcpy(sent + 1, cgfds, ncg * sizeof(int));
  sandbox__reply r;
  int fds[2] = {-1, -1};
  int gone = 1;
  if (spec->zygote != NULL)
    gone = sandbox__zygote_exchange(spec->zygote, msg, len, sent, 1 + ncg, &r, fds);
  if (gone && !zygote_only) /* a pooled instance or a template must be a zygote's */
    gone = sandbox__exchange(sys.chan, &sys.chan_mu, msg, len, sent, 1 + ncg, &r, fds);
  for (size_t i = 0; i < ncg; i++)
    close(cgfds[i]);
  if (gone)
    return err_set(e, ERR_INTERNAL, "cannot start sandbox '%s': the sandbox spawner is gone", spec->id);
  if (r.errnum != 0 || fds[0] < 0 || fds[1] < 0) {
    if (fds[0] >= 0)
      close(fds[0]);
    if (fds[1] >= 0)
      close(fds[1]);
    return err_set(e, ERR_INTERNAL, "cannot clone sandbox '%s': %s", spec->id,
                   strerror(r.errnum ? r.errnum : EPROTO));
  }
  sb->reply_us = sandbox__now_us();
  sb->pid = r.pid;
  sb->pidfd = fds[0];
  *sync_fd = fds[1];
  *attached = r.attached != 0;
  if (r.maps_errnum != 0)
    return err_set(e, ERR_INTERNAL, "cannot write the id maps of sandbox '%s': %s", spec->id,
                   strerror(r.maps_errnum));
  return 0;
}

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The instance's report, if one is there (*heard): 0 when it says the
 * program started, else the error it means. */
static int read_report(sandbox *sb, int sync_fd, bool *heard, err *e)
{
  sandbox__report r;
  ssize_t got;
  while ((got = recv(sync_fd, &r, sizeof r, MSG_DONTWAIT)) < 0 && errno == EINTR) {
  }
  *heard = !(got < 0 && errno == EAGAIN);
  if (!*heard)
    return 0;
  if (got != sizeof r)
    return err_set(e, ERR_INTERNAL, "sandbox '%s' died while starting", sb->id);
  r.msg[sizeof r.msg - 1] = '\0';
  if (r.kind == SANDBOX_REPORT_STARTED || r.kind == SANDBOX_REPORT_CLAIMED) {
    sb->started_us = sandbox__now_us();
    memcpy(sb->init_us, r.phase_us, sizeof sb->init_us);
    return 0;
  }
  if (r.kind == SANDBOX_REPORT_EXEC_FAILED)
    return err_set(e, ERR_INVALID, "sandbox '%s': %s", sb->id, r.msg);
  return err_set(e, ERR_INTERNAL, "cannot build sandbox '%s': %s", sb->id, r.msg);
}

/* Step 5: the report that says the program started, or why not. */
static int await_exec(sandbox *sb, int sync_fd, const char *program, err *e)
{
  int64_t deadline = now_ms() + SANDBOX_START_TIMEOUT_MS;
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0)
      return err_set(e, ERR_INTERNAL, "sandbox '%s' did not start '%s' within %d ms", sb->id, program,
                     SANDBOX_START_TIMEOUT_MS);
    struct pollfd p = {.fd = sync_fd, .events = POLLIN};
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno != EINTR)
      return err_set(e, ERR_INTERNAL, "cannot wait for sandbox '%s': %s", sb->id, strerror(errno));
    if (n <= 0)
      continue;
    bool heard;
    int rc = read_report(sb, sync_fd, &heard, e);
    if (heard)
      return rc;
  }
}

/* sandbox_start, or a pool's instance (pooled: its start socket is kept in
 * sb->ctl for the claim). */
/* What every start begins with: spec checked, its request (*msg, *len)
 * and an empty record (*out), or an error and neither. */
static int prepare(const sandbox_spec *spec, bool pooled, int role, char **msg, size_t *len,
                   sandbox **out, err *e)
{
  *out = NULL;
  if (!sys.ready)
    return err_set(e, ERR_INTERNAL, "sandbox_system_init was not called");
  int rc = validate(spec, e);
  if (rc != 0)
    return rc;
  *msg = encode(spec, pooled, role, len, e);
  if (*msg == NULL)
    return ERR_INVALID;
  sandbox *sb = xcalloc(1, sizeof *sb);
  snprintf(sb->id, sizeof sb->id, "%s", spec->id);
  sb->pid = -1;
  sb->pidfd = -1;
  sb->slot = -1;
  sb->ctl = -1;
  *out = sb;
  return 0;
}

static int start(const sandbox_spec *spec, bool pooled, int role, sandbox **out, err *e)
{
  *out = NULL;
  size_t len = 0;
  char *msg = NULL;
  sandbox *sb = NULL;
  int rc = prepare(spec, pooled, role, &msg, &len, &sb, e);
  if (rc != 0 || sb == NULL)
    return rc;
  int sync_fd = -1;
  if (sys.root) {
    sb->slot = slot_alloc();
    if (sb->slot < 0) {
      rc = err_set(e, ERR_TOO_MANY_REQUESTS, "cannot start sandbox '%s': %u sandboxes already run", spec->id,
                   SANDBOX_HOST_ID_SLOTS);
      goto fail;
    }
  }
  bool attached = true;
  sb->begin_us = sandbox__now_us();
  rc = sandbox__cgroup_create(&sys.cgs, spec->id, spec, &sb->cg, e);
  sb->cgroup_us = sandbox__now_us();
  if (rc == 0)
    rc = spawn(spec, pooled || role == SANDBOX_ROLE_TEMPLATE, msg, len, sb, &sync_fd, &attached, e);
  if (rc == 0 && !attached) {
    /* step 4 */
    rc = sandbox__cgroup_attach(&sb->cg, sb->pid, e);
    if (rc == 0 && send(sync_fd, "g", 1, MSG_NOSIGNAL) != 1)
      rc = err_set(e, ERR_INTERNAL, "sandbox '%s' died before it could start", spec->id);
  }
  if (rc != 0 && sync_fd >= 0) {
    /* the instance may have said why it died */
    err why = {0};
    bool heard;
    int why_rc = read_report(sb, sync_fd, &heard, &why);
    if (heard && why_rc != 0)
      rc = err_set(e, why_rc, "%s", why.msg);
  }
  if (rc == 0)
    rc = await_exec(sb, sync_fd, spec->argv[0], e);
  if (rc != 0)
    goto fail;
  if (pooled || role == SANDBOX_ROLE_TEMPLATE)
    sb->ctl = sync_fd;
  else
    close(sync_fd);
  free(msg);
  *out = sb;
  return 0;

fail:
  if (sync_fd >= 0)
    close(sync_fd);
  free(msg);
  sandbox_free(sb); /* (4) */
  return rc;
}

int sandbox_start(const sandbox_spec *spec, sandbox **out, err *e)
{
  return start(spec, false, SANDBOX_ROLE_INSTANCE, out, e);
}

int sandbox__start_pooled(const sandbox_spec *spec, sandbox **out, err *e)
{
  return start(spec, true, SANDBOX_ROLE_INSTANCE, out, e);
}

int sandbox__start_template(const sandbox_spec *spec, sandbox **out, err *e)
{
  if (spec->zygote == NULL)
    return err_set(e, ERR_INVALID, "a template of sandbox '%s' needs a zygote", spec->id);
  return start(spec, false, SANDBOX_ROLE_TEMPLATE, out, e);
}

int sandbox__ctl(const sandbox *sb)
{
  return sb->ctl;
}

int sandbox__pidfd(const sandbox *sb)
{
  return sb->pidfd;
}

/* Host pid behind a pidfd (its fdinfo's "Pid:"), or -1. */
static pid_t pidfd_pid(int pidfd)
{
  char path[64];
  char buf[1024];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
  if (sandbox__read_file(path, buf, sizeof buf) <= 0)
    return -1;
  const char *p = strstr(buf, "\nPid:");
  return p != NULL ? (pid_t)strtol(p + 5, NULL, 10) : -1;
}

static void reap_pidfd(int pidfd)
{
  siginfo_t si;
  while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR) {
  }
  close(pidfd);
}

/* One report of a shell's (shell.c) within ms, with up to nmax fds (the
 * rest closed): its kind, or -1 when none came. */
static int shell_message(int sync_fd, int ms, sandbox__report *r, int *fds, size_t nmax, size_t *nfds)
{
  *nfds = 0;
  struct pollfd p = {.fd = sync_fd, .events = POLLIN};
  int n;
  while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR) {
  }
  if (n <= 0)
    return -1;
  union {
    char buf[CMSG_SPACE(SANDBOX_SHELL_FDS * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {.iov_base = r, .iov_len = sizeof *r};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                      .msg_controllen = sizeof u.buf};
  ssize_t got;
  while ((got = recvmsg(sync_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)) < 0 && errno == EINTR) {
  }
  struct cmsghdr *cm = got > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
  if (cm != NULL && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len >= CMSG_LEN(0)) {
    size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *in = (int *)(void *)CMSG_DATA(cm);
    for (size_t i = 0; i < k; i++) {
      if (i < nmax)
        fds[(*nfds)++] = in[i];
      else
        close(in[i]);
    }
  }
  if (got != (ssize_t)sizeof *r) {
    for (size_t i = 0; i < *nfds; i++)
      close(fds[i]);
    *nfds = 0;
    return -1;
  }
  r->msg[sizeof r->msg - 1] = '\0';
  return r->kind;
}

/* The shell's report, with its fds (0, or the error it means), after X
 * ended; Y, whose pidfd X sent, is reaped. */
static int read_shell_report(sandbox *sb, int sync_fd, uint16_t *ports, size_t nports,
                             int fds[SANDBOX_SHELL_FDS], err *e)
{
  int64_t deadline = now_ms() + SANDBOX_START_TIMEOUT_MS;
  int maker = -1;
  int rc = 1; /* no answer yet */
  while (rc == 1 || maker < 0) {
    int64_t left = deadline - now_ms();
    /* once the answer is in, only what X sent before it ended is awaited */
    int ms = rc == 1 ? (int)(left > 0 ? left : 0) : 0;
    sandbox__report r;
    int got[SANDBOX_SHELL_FDS];
    size_t ngot = 0;
    int kind = shell_message(sync_fd, ms, &r, got, SANDBOX_SHELL_FDS, &ngot);
    if (kind < 0) {
      if (rc == 1)
        rc = err_set(e, ERR_INTERNAL, "the shell of sandbox '%s' died while starting", sb->id);
      break;
    }
    if (kind == SANDBOX_REPORT_SHELL_MAKER && ngot == 1 && maker < 0) {
      maker = got[0];
      continue;
    }
    if (kind == SANDBOX_REPORT_SHELL && ngot == SANDBOX_SHELL_FDS && rc == 1) {
      memcpy(fds, got, sizeof got);
      memcpy(ports, r.msg, nports * sizeof *ports);
      memcpy(sb->init_us, r.phase_us, sizeof sb->init_us);
      rc = 0;
      continue;
    }
    for (size_t i = 0; i < ngot; i++)
      close(got[i]);
    if (rc == 1)
      rc = err_set(e, ERR_INTERNAL, "cannot build sandbox '%s': %s", sb->id,
                   kind == SANDBOX_REPORT_FAILED ? r.msg : "bad report");
  }
  if (maker >= 0)
    reap_pidfd(maker);
  return rc;
}

int sandbox__start_shell(const sandbox_spec *spec, int template_pidfd, sandbox **out,
                         uint16_t *ports, int nsfds[SANDBOX_SHELL_NS_COUNT], int *exit_fd, err *e)
{
  size_t len = 0;
  char *msg = NULL;
  sandbox *sb = NULL; /* slot -1: a fork has its template's host uid */
  int rc = prepare(spec, false, SANDBOX_ROLE_SHELL, &msg, &len, &sb, e);
  *out = NULL;
  if (rc != 0 || sb == NULL)
    return rc;
  sb->begin_us = sandbox__now_us();
  int sync_fd = -1;
  int fds[SANDBOX_SHELL_FDS];
  for (int i = 0; i < SANDBOX_SHELL_FDS; i++)
    fds[i] = -1;
  rc = sandbox__cgroup_create(&sys.cgs, spec->id, spec, &sb->cg, e);
  sb->cgroup_us = sandbox__now_us();
  int mode = 0;
  int cgfds[CG_COUNT];
  size_t ncg = 0;
  if (rc == 0)
    rc = sandbox__cgroup_join_fds(&sys.cgs, &sb->cg, &mode, cgfds, &ncg, e);
  if (rc == 0) {
    sandbox__req_head h;
    memcpy(&h, msg, sizeof h);
    h.cg_mode = (uint32_t)mode;
    h.ncgfds = (uint32_t)ncg;
    memcpy(msg, &h, sizeof h);
    int sent[2 + CG_COUNT];
    sent[0] = spec->log_fd;
    memcpy(sent + 1, cgfds, ncg * sizeof(int));
    sent[1 + ncg] = template_pidfd;
    sandbox__reply r;
    int back[2] = {-1, -1};
    int gone = sandbox__exchange(sys.chan, &sys.chan_mu, msg, len, sent, 2 + ncg, &r, back);
    for (size_t i = 0; i < ncg; i++)
      close(cgfds[i]);
    if (gone) {
      rc = err_set(e, ERR_INTERNAL, "cannot start sandbox '%s': the sandbox spawner is gone", spec->id);
    } else if (r.errnum != 0 || back[0] < 0 || back[1] < 0) {
      rc = err_set(e, ERR_INTERNAL, "cannot clone the shell of sandbox '%s': %s", spec->id,
                   strerror(r.errnum ? r.errnum : EPROTO));
      if (back[1] >= 0)
        close(back[1]);
    } else {
      sync_fd = back[1];
    }
    if (back[0] >= 0)
      reap_pidfd(back[0]); /* X ends once it cloned Y and sent its pidfd */
    sb->reply_us = sandbox__now_us();
  }
  if (rc == 0)
    rc = read_shell_report(sb, sync_fd, ports, spec->nforwards, fds, e);
  if (rc == 0) {
    sb->pidfd = fds[SHELL_PIDFD];
    fds[SHELL_PIDFD] = -1;
    sb->pid = pidfd_pid(sb->pidfd);
    if (sb->pid <= 0)
      rc = err_set(e, ERR_INTERNAL, "cannot find the init of sandbox '%s'", spec->id);
  }
  if (sync_fd >= 0)
    close(sync_fd);
  free(msg);
  if (rc != 0) {
    for (int i = 0; i < SANDBOX_SHELL_FDS; i++)
      if (fds[i] >= 0)
        close(fds[i]);
    sandbox_free(sb);
    return rc;
  }
  memcpy(nsfds, fds + SANDBOX_SHELL_NS_FIRST, SANDBOX_SHELL_NS_COUNT * sizeof(int));
  *exit_fd = fds[SHELL_EXIT];
  *out = sb;
  return 0;
}

int sandbox__cgroup_fds(const sandbox *sb, int *mode, int fds[CG_COUNT], size_t *n, err *e)
{
  return sandbox__cgroup_join_fds(&sys.cgs, &sb->cg, mode, fds, n, e);
}

void sandbox__started(sandbox *sb, sandbox_template *t, int64_t begin_us)
{
  sb->begin_us = begin_us;
  sb->started_us = sandbox__now_us();
  sb->tmpl = t;
}

bool sandbox_forked(const sandbox *sb)
{
  return sb->tmpl != NULL;
}

/* STATE/overlay-base: an empty folder, the bottom layer of every overlay
 * claim_overlay makes (a read-only overlay needs two). Open for good. */
static pthread_once_t empty_once = PTHREAD_ONCE_INIT;
static int empty_fd = -1;

static void empty_open(void)
{
  char path[SANDBOX_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/overlay-base", sys.state_dir);
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    return;
  empty_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* The folders dirs[0..n) stacked read-only (the last on top) as a new
 * overlay, detached, for a pooled instance's init to attach (rootfs.c
 * sandbox__rootfs_claim: overlayfs takes no layer from another mount
 * namespace, so init cannot make it after its pivot). As rootfs.c
 * show_folders, its layers are named by /proc/self/fd links, the bottom
 * one an empty folder of ours, and a layer on a noexec mount makes it
 * noexec. -1 and e when the host does not let the server make overlays
 * (an unprivileged server): the caller starts a fresh instance instead. */
static int claim_overlay(const char *const *dirs, size_t n, const char *source, err *e)
{
  pthread_once(&empty_once, empty_open);
  if (empty_fd < 0)
    return err_set(e, ERR_INTERNAL, "cannot make the empty folder of overlays in '%s'", sys.state_dir), -1;
  int fds[SANDBOX_MAX_OPT_DIRS];
  size_t opened = 0;
  int m = -1;
  unsigned attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  char lower[32 + 24 * (SANDBOX_MAX_OPT_DIRS + 1)];
  size_t len = 0;
  lower[0] = '\0';
  for (size_t i = n; i-- > 0;) {
    int fd = open(dirs[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      err_set(e, ERR_INTERNAL, "cannot open folder '%s': %s", dirs[i], strerror(errno));
      goto out;
    }
    fds[opened++] = fd;
    struct statvfs sv;
    if (fstatvfs(fd, &sv) == 0 && (sv.f_flag & ST_NOEXEC))
      attrs |= MOUNT_ATTR_NOEXEC;
    len += (size_t)snprintf(lower + len, sizeof lower - len, "/proc/self/fd/%d:", fd);
  }
  snprintf(lower + len, sizeof lower - len, "/proc/self/fd/%d", empty_fd);
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fs >= 0 && fsconfig(fs, FSCONFIG_SET_STRING, "source", source, 0) == 0 &&
      fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", lower, 0) == 0 &&
      fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
    m = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
  if (m < 0)
    err_set(e, ERR_INTERNAL, "cannot make an overlay of '%s': %s", dirs[0], strerror(errno));
  if (fs >= 0)
    close(fs);
out:
  for (size_t i = 0; i < opened; i++)
    close(fds[i]);
  return m;
}

int sandbox__claim(sandbox *sb, const sandbox_spec *spec, err *e)
{
  int rc = validate(spec, e);
  if (rc != 0)
    return rc;
  if (sb->ctl < 0)
    return err_set(e, ERR_INTERNAL, "sandbox '%s' was claimed already", sb->id);
  sb->begin_us = sandbox__now_us();
  /* (the limits first: the function's code runs under them from its start) */
  rc = sandbox__cgroup_limits(&sys.cgs, &sb->cg, spec, e);
  sb->cgroup_us = sandbox__now_us();
  if (rc != 0)
    return rc;
  size_t nargv = 0;
  size_t nenvp = 0;
  size_t len = sizeof(sandbox__claim_head);
  for (; spec->argv[nargv] != NULL; nargv++)
    len += strlen(spec->argv[nargv]) + 1;
  for (; spec->envp[nenvp] != NULL; nenvp++)
    len += strlen(spec->envp[nenvp]) + 1;
  if (len > SANDBOX_MSG_MAX || nargv + nenvp > SANDBOX_MAX_STRINGS)
    return err_set(e, ERR_INVALID, "program and environment of sandbox '%s' take %zu bytes, more than %d",
                   spec->id, len, SANDBOX_MSG_MAX);
  char *msg = xmalloc(len);
  sandbox__claim_head h = {
      .magic = SANDBOX_CLAIM_MAGIC,
      .nargv = (uint32_t)nargv,
      .nenvp = (uint32_t)nenvp,
      .nopt_dirs = (uint32_t)spec->nopt_dirs,
      .tmp_mb = spec->tmp_mb,
      .memory_mb = spec->memory_mb,
      .max_open_files = spec->max_open_files,
      .max_procs = spec->max_procs,
      .max_file_bytes = spec->max_file_bytes,
  };
  memcpy(msg, &h, sizeof h);
  char *p = msg + sizeof h;
  for (size_t i = 0; i < nargv; i++)
    p = stpcpy(p, spec->argv[i]) + 1;
  for (size_t i = 0; i < nenvp; i++)
    p = stpcpy(p, spec->envp[i]) + 1;
  /* the overlays are made here, as the server (claim_overlay) */
  int fds[3];
  size_t nfds = 0;
  fds[nfds++] = spec->log_fd;
  fds[nfds++] = claim_overlay(&spec->code_dir, 1, "tarn-code", e);
  if (fds[1] < 0)
    rc = ERR_INTERNAL;
  if (rc == 0 && spec->nopt_dirs > 0) {
    fds[nfds] = claim_overlay(spec->opt_dirs, spec->nopt_dirs, "tarn-opt", e);
    if (fds[nfds] < 0)
      rc = ERR_INTERNAL;
    else
      nfds++;
  }
  if (rc == 0) {
    ssize_t n = sandbox__send_fds(sb->ctl, msg, len, fds, nfds);
    sb->reply_us = sandbox__now_us();
    if (n != (ssize_t)len)
      rc = err_set(e, ERR_INTERNAL, "pooled sandbox '%s' died before its claim", sb->id);
  }
  for (size_t i = 1; i < nfds; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  free(msg);
  if (rc == 0)
    rc = await_exec(sb, sb->ctl, spec->argv[0], e);
  close(sb->ctl);
  sb->ctl = -1;
  sb->pooled = true;
  return rc;
}

/* --- the rest of the API ------------------------------------------------------ */

size_t sandbox_phases(const sandbox *sb, sandbox_phase out[SANDBOX_PHASES])
{
  static const char *const names[SANDBOX_P_COUNT] = {
      "init", "cgroup-join", "unshare", "id-maps", "host-net", "rootfs", "drop-seccomp", "fork",
      "program", "claim-mounts", "claim-sent"};
  size_t n = 0;
  out[n++] = (sandbox_phase){"begin", sb->begin_us};
  if (sb->tmpl != NULL) {
    /* a template's fork: its shell was made ahead, or just now */
    out[n++] = (sandbox_phase){"forked", sb->started_us};
    return n;
  }
  if (sb->pooled) {
    /* the rest was done ahead, before the function was known */
    out[n++] = (sandbox_phase){"claim-limits", sb->cgroup_us};
    out[n++] = (sandbox_phase){"claim-sent", sb->reply_us};
    out[n++] = (sandbox_phase){"claim-mounts", sb->init_us[SANDBOX_P_CLAIM_MOUNTS]};
    out[n++] = (sandbox_phase){"claim-handed", sb->init_us[SANDBOX_P_CLAIM_SENT]};
    out[n++] = (sandbox_phase){"started", sb->started_us};
    return n;
  }
  out[n++] = (sandbox_phase){"cgroup-create", sb->cgroup_us};
  for (int i = 0; i < SANDBOX_P_COUNT; i++) {
    if (i == SANDBOX_P_GO)
      out[n++] = (sandbox_phase){"clone-reply", sb->reply_us};
    out[n++] = (sandbox_phase){names[i], sb->init_us[i]};
  }
  out[n++] = (sandbox_phase){"started", sb->started_us};
  return n;
}

int sandbox_pid(const sandbox *sb)
{
  return sb->pid;
}

/* Reaps init (blocking, or not when nohang); true when it was reaped. */
static bool reap(sandbox *sb, bool nohang)
{
  if (sb->ended)
    return true;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int rc;
  while ((rc = waitid((idtype_t)P_PIDFD, (id_t)sb->pidfd, &si, WEXITED | (nohang ? WNOHANG : 0))) < 0 &&
         errno == EINTR) {
  }
  if (rc < 0 || si.si_pid == 0)
    return false;
  sb->exit.exited = true;
  sb->exit.status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
  sb->exit.oom_killed = sandbox__cgroup_oom(&sb->cg);
  atomic_store(&sb->ended, true); /* (5) */
  return true;
}

int sandbox_wait(sandbox *sb, int timeout_ms, sandbox_exit *out, err *e)
{
  memset(out, 0, sizeof *out);
  if (!sb->ended) {
    int64_t deadline = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;
    for (;;) {
      int left = -1;
      if (timeout_ms >= 0) {
        int64_t l = deadline - now_ms();
        left = l < 0 ? 0 : (int)l;
      }
      struct pollfd p = {.fd = sb->pidfd, .events = POLLIN};
      int n = poll(&p, 1, left);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return err_set(e, ERR_INTERNAL, "cannot wait for sandbox '%s': %s", sb->id, strerror(errno));
      if (n == 0)
        return 0; /* still running */
      if (reap(sb, true))
        break;
      if (timeout_ms >= 0 && now_ms() >= deadline)
        return 0;
    }
  }
  *out = sb->exit;
  return 0;
}

void sandbox_kill(sandbox *sb)
{
  if (sb != NULL && sb->pidfd >= 0 && !atomic_load(&sb->ended))
    syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0); /* (3) */
}

uint64_t sandbox_max_memory(const sandbox *sb)
{
  return sandbox__cgroup_peak(&sb->cg);
}

sandbox *sandbox_free(sandbox *sb)
{
  if (sb == NULL)
    return NULL;
  if (sb->pidfd >= 0) {
    if (!sb->ended) {
      sandbox_kill(sb);
      reap(sb, false);
    }
    close(sb->pidfd);
  }
  if (sb->ctl >= 0)
    close(sb->ctl);
  sandbox__cgroup_remove(&sb->cg);
  slot_free(sb->slot);
  sandbox_template *t = sb->tmpl;
  free(sb);
  sandbox_template_release(t); /* after the fork ended: its waiter lives in the template */
  return NULL;
}

bool sandbox_pooled(const sandbox *sb)
{
  return sb->pooled;
}

