/* sandbox/rootfs.c -- the file tree an instance sees, built by the clone
 * child in its own mount namespace, then made its root with pivot_root.
 *
 *   /usr /lib /lib64 ...   the host's, read-only (symlinks stay symlinks:
 *                          Debian's merged /usr has /bin -> usr/bin)
 *   /etc                   minimal, on the root tmpfs (see below)
 *   /var/task              code_dir, read-only (an overlay, see below)
 *   /var/runtime           runtime_dir, read-only (when given; likewise)
 *   /opt                   opt_dirs stacked in one read-only overlay, the
 *                          last on top (a function's layers); else empty
 *   /tmp                   private tmpfs of tmp_mb
 *   /proc                  new, for the instance's pid namespace
 *   /dev                   null zero full random urandom (the host's nodes),
 *                          fd/std* links, /dev/shm a small tmpfs
 *
 * Each forward's host socket is not in the tree: init keeps an O_PATH fd
 * of it (opened here, in sandbox__rootfs_prepare) and connects through
 * /proc/self/fd, so /proc/self/mountinfo names no host path of the data
 * directory for it.
 *
 * Why /var/task, /var/runtime and /opt are overlays, not binds: the root
 * field of a bind mount in /proc/self/mountinfo is the source's path
 * within its filesystem (proc(5)), so a bind of DATA/fn/code/<sha> shows
 * the data directory's host path, whatever the mount point, and so would
 * a bind from a neutral mount of it. An overlay is a filesystem of its
 * own: its root field is "/". It costs no copy and no memory: the code
 * is read through it from the host folder. (Older kernels, before
 * overlayfs had backing files, showed the lower path of a file mmap'ed
 * through an overlay in /proc/self/maps.)
 *
 * Why a minimal /etc: the host's /etc holds the host's users, its network
 * and service configuration, sometimes secrets, none of which a function
 * needs. We write passwd, group, hosts, hostname, resolv.conf and
 * nsswitch.conf, copy the localtime and os-release links, and show the
 * host's ssl (CA certificates), alternatives (Debian's command links),
 * ld.so.cache and mime.types read-only: what libc, python, node and the
 * AWS SDKs read. No /sys, /home, /root, /mnt or /var beyond /var/task:
 * python and node start without /sys. /proc has no hidepid: every process
 * inside runs as uid 993, so it would hide nothing (init is protected by
 * not being dumpable).
 *
 * Invariants:
 *   (1) Every mount is private first: nothing propagates to or from the host.
 *   (2) The server's private paths (state_dir, code_dir, runtime_dir, the
 *       sockets) are reached before the child takes the inside uid, so they
 *       may sit in folders closed to it; the tree is filled afterwards, as
 *       the inside uid (a file on a tmpfs of the user namespace needs an
 *       owner mapped in it). The host's system folders are world-readable.
 *   (3) Read-only binds use open_tree + mount_setattr(AT_RECURSIVE) +
 *       move_mount: mounts under a source come along and are read-only too,
 *       and flags the host locked (nosuid, noexec, atime) are never cleared.
 *   (4) /proc is mounted before the old root goes: the kernel allows a new
 *       proc in a user namespace only while a full one is visible.
 *   (5) The root tmpfs is read-only before the program exists.
 *   (6) No mount shows a host path outside the system folders: /var/task
 *       /var/runtime and /opt are overlays named by fd (show_folders), the
 *       sockets are fds, the rest is new tmpfs, proc or /dev nodes.
 *
 * Start reading at sandbox__rootfs_prepare().
 */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

void sandbox__rootfs_prepare(const sandbox__job *job, sandbox__sources *src)
{
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    sandbox__fail(job, errno, "cannot make the mounts private");
  char opts[128];
  snprintf(opts, sizeof opts, "size=4m,nr_inodes=4096,mode=0755,uid=%d,gid=%d",
           SANDBOX_INSIDE_UID, SANDBOX_INSIDE_GID);
  if (mount("tarn-root", job->state_dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
    sandbox__fail(job, errno, "cannot mount the root tmpfs on '%s'", job->state_dir);
  if (chdir(job->state_dir) != 0)
    sandbox__fail(job, errno, "cannot enter '%s'", job->state_dir);

  src->code = job->pooled ? -1 : open(job->code_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (src->code < 0 && !job->pooled)
    sandbox__fail(job, errno, "cannot open code folder '%s'", job->code_dir);
  src->runtime = -1;
  if (job->runtime_dir != NULL) {
    src->runtime = open(job->runtime_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (src->runtime < 0)
      sandbox__fail(job, errno, "cannot open runtime folder '%s'", job->runtime_dir);
  }
  for (size_t i = 0; i < job->nopt_dirs; i++) {
    src->opt[i] = open(job->opt_dirs[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (src->opt[i] < 0)
      sandbox__fail(job, errno, "cannot open folder '%s' for /opt", job->opt_dirs[i]);
  }
  for (size_t i = 0; i < job->nforwards; i++) {
    src->sockets[i] = open(job->sockets[i], O_PATH | O_CLOEXEC);
    if (src->sockets[i] < 0)
      sandbox__fail(job, errno, "cannot open socket '%s'", job->sockets[i]);
    struct stat st;
    if (fstat(src->sockets[i], &st) != 0 || !S_ISSOCK(st.st_mode))
      sandbox__fail(job, ENOTSOCK, "cannot forward to '%s'", job->sockets[i]);
  }
}

/* Binds a host tree (dfd + path, or dfd alone with path "") at target,
 * read-only when ro. (3) */
static void bind(const sandbox__job *job, int dfd, const char *path, const char *target, bool ro)
{
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE;
  if (path[0] == '\0')
    flags |= AT_EMPTY_PATH;
  int fd = open_tree(dfd, path, flags);
  if (fd < 0)
    sandbox__fail(job, errno, "cannot clone mount '%s' for '/%s'", path, target);
  if (ro) {
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
      sandbox__fail(job, errno, "cannot make '/%s' read-only", target);
  }
  if (move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0)
    sandbox__fail(job, errno, "cannot mount '/%s'", target);
  close(fd);
}

static void make_dir(const sandbox__job *job, const char *path, mode_t mode)
{
  if (mkdir(path, mode) != 0 && errno != EEXIST)
    sandbox__fail(job, errno, "cannot create '/%s'", path);
}

/* Shows the host folders open at dfds[0..n) at target (an empty folder of
 * the root tmpfs), read-only, through one overlay where dfds[n-1] is on
 * top: a file of a later folder hides the same path of an earlier one,
 * folders merge. (6) The overlay's root is the root of a filesystem of its
 * own, so mountinfo's root field reads "/"; its layers are named by
 * /proc/self/fd links, so its options name no host path either. A
 * read-only overlay needs two layers: the last is target itself, empty
 * and covered by the mount. Where the overlay cannot be made (no
 * overlayfs in the kernel, a folder already stacked too deep, overlayfs
 * refused in user namespaces), a single folder is bound instead: the
 * function still runs, and its mountinfo shows the folder's host path as
 * before; several folders cannot be stacked without it. */
static void show_folders(const sandbox__job *job, const int *dfds, size_t n, const char *source,
                         const char *target)
{
  int empty = open(target, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (empty < 0)
    sandbox__fail(job, errno, "cannot open '/%s'", target);
  unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV;
  char opts[64 + 24 * SANDBOX_MAX_OPT_DIRS];
  size_t len = (size_t)snprintf(opts, sizeof opts, "ro,lowerdir=");
  for (size_t i = n; i-- > 0;) {
    struct statvfs sv;
    if (fstatvfs(dfds[i], &sv) != 0)
      sandbox__fail(job, errno, "cannot stat a folder for '/%s'", target);
    if (sv.f_flag & ST_NOEXEC)
      flags |= MS_NOEXEC; /* (3): what the host forbids stays forbidden */
    len += (size_t)snprintf(opts + len, sizeof opts - len, "/proc/self/fd/%d:", dfds[i]);
  }
  snprintf(opts + len, sizeof opts - len, "/proc/self/fd/%d", empty);
  if (mount(source, target, "overlay", flags, opts) != 0) {
    if (n != 1)
      sandbox__fail(job, errno, "cannot stack %zu folders at '/%s'", n, target);
    bind(job, dfds[0], "", target, true);
  }
  close(empty);
}

/* An empty file to bind a non-folder on. */
static void make_file(const sandbox__job *job, const char *path)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    sandbox__fail(job, errno, "cannot create '/%s'", path);
  close(fd);
}

static void make_link(const sandbox__job *job, const char *target, const char *path)
{
  if (symlink(target, path) != 0)
    sandbox__fail(job, errno, "cannot create link '/%s'", path);
}

static void put(const sandbox__job *job, const char *path, const char *text)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    sandbox__fail(job, errno, "cannot create '/%s'", path);
  size_t n = strlen(text);
  if (write(fd, text, n) != (ssize_t)n)
    sandbox__fail(job, errno, "cannot write '/%s'", path);
  close(fd);
}

/* Shows host path /name at name: a folder read-only, a link as a link. */
static void mirror(const sandbox__job *job, const char *name, bool optional)
{
  char host[256];
  snprintf(host, sizeof host, "/%s", name);
  struct stat st;
  if (lstat(host, &st) != 0) {
    if (optional)
      return;
    sandbox__fail(job, errno, "cannot find '%s' on the host", host);
  }
  if (S_ISLNK(st.st_mode)) {
    char target[512];
    ssize_t n = readlink(host, target, sizeof target - 1);
    if (n < 0)
      sandbox__fail(job, errno, "cannot read link '%s'", host);
    target[n] = '\0';
    make_link(job, target, name);
  } else if (S_ISDIR(st.st_mode)) {
    make_dir(job, name, 0755);
    bind(job, AT_FDCWD, host, name, true);
  } else if (S_ISREG(st.st_mode)) {
    make_file(job, name);
    bind(job, AT_FDCWD, host, name, true);
  }
}

static void build_etc(const sandbox__job *job)
{
  char text[1024];
  make_dir(job, "etc", 0755);
  snprintf(text, sizeof text,
           "root:x:0:0:root:/root:/usr/sbin/nologin\n"
           "sbx_user1051:x:%d:%d::/tmp:/usr/sbin/nologin\n"
           "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
           SANDBOX_INSIDE_UID, SANDBOX_INSIDE_GID);
  put(job, "etc/passwd", text);
  snprintf(text, sizeof text, "root:x:0:\nsbx_user1051:x:%d:\nnogroup:x:65534:\n", SANDBOX_INSIDE_GID);
  put(job, "etc/group", text);
  snprintf(text, sizeof text, "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", job->id);
  put(job, "etc/hosts", text);
  snprintf(text, sizeof text, "%s\n", job->id);
  put(job, "etc/hostname", text);
  put(job, "etc/resolv.conf", "# no DNS inside a tarn sandbox: only 127.0.0.1 is reachable\n");
  put(job, "etc/nsswitch.conf",
      "passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\n"
      "protocols: files\nservices: files\n");
  mirror(job, "etc/localtime", true);
  mirror(job, "etc/os-release", true);
  mirror(job, "etc/ssl", true);
  mirror(job, "etc/alternatives", true);
  mirror(job, "etc/ld.so.cache", true);
  mirror(job, "etc/mime.types", true);
  mirror(job, "etc/java-17-openjdk", true); /* Debian's JDK reads its conf/ here */
}

/* The options of /tmp for tmp_mb, and of /dev/shm for memory_mb. */
void sandbox__tmp_opts(char *opts, size_t size, uint32_t tmp_mb)
{
  uint64_t inodes = (uint64_t)tmp_mb * 256;
  if (inodes < 1024)
    inodes = 1024;
  if (inodes > (1u << 20))
    inodes = 1u << 20;
  snprintf(opts, size, "size=%um,nr_inodes=%llu,mode=1777", (unsigned)tmp_mb, (unsigned long long)inodes);
}

void sandbox__shm_opts(char *opts, size_t size, uint32_t memory_mb)
{
  uint32_t shm_mb = memory_mb / 4;
  if (shm_mb > 64)
    shm_mb = 64;
  if (shm_mb < 1)
    shm_mb = 1;
  snprintf(opts, size, "size=%um,nr_inodes=1024,mode=1777", (unsigned)shm_mb);
}

static void build_dev(const sandbox__job *job)
{
  static const char *const nodes[] = {"null", "zero", "full", "random", "urandom"};
  make_dir(job, "dev", 0755);
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    char host[32];
    char path[32];
    snprintf(host, sizeof host, "/dev/%s", nodes[i]);
    snprintf(path, sizeof path, "dev/%s", nodes[i]);
    make_file(job, path);
    bind(job, AT_FDCWD, host, path, false);
  }
  make_link(job, "/proc/self/fd", "dev/fd");
  make_link(job, "/proc/self/fd/0", "dev/stdin");
  make_link(job, "/proc/self/fd/1", "dev/stdout");
  make_link(job, "/proc/self/fd/2", "dev/stderr");
  make_dir(job, "dev/shm", 0755);
  char opts[96];
  sandbox__shm_opts(opts, sizeof opts, job->memory_mb);
  if (mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
    sandbox__fail(job, errno, "cannot mount '/dev/shm'");
}

void sandbox__rootfs_build(const sandbox__job *job, const sandbox__sources *src)
{
  static const char *const system_dirs[] = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"};
  for (size_t i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++)
    mirror(job, system_dirs[i], i != 0);
  build_etc(job);

  make_dir(job, "var", 0755);
  make_dir(job, "var/task", 0755);
  if (src->code >= 0) /* a pooled instance's comes with its claim */
    show_folders(job, &src->code, 1, "tarn-code", "var/task");
  if (src->runtime >= 0) {
    make_dir(job, "var/runtime", 0755);
    show_folders(job, &src->runtime, 1, "tarn-runtime", "var/runtime");
  }
  make_dir(job, "opt", 0755);
  if (job->nopt_dirs > 0)
    show_folders(job, src->opt, job->nopt_dirs, "tarn-opt", "opt");

  make_dir(job, "tmp", 01777);
  char opts[96];
  sandbox__tmp_opts(opts, sizeof opts, job->tmp_mb);
  if (mount("tmp", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
    sandbox__fail(job, errno, "cannot mount '/tmp'");

  build_dev(job);

  make_dir(job, "run", 0755);

  make_dir(job, "proc", 0555);
  if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) /* (4) */
    sandbox__fail(job, errno, "cannot mount '/proc'");

  struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
  if (mount_setattr(AT_FDCWD, ".", 0, &ro, sizeof ro) != 0) /* (5) */
    sandbox__fail(job, errno, "cannot make the root read-only");

  /* pivot_root(".", "."): the old root ends up stacked on the new one,
   * where one lazy unmount takes it away (pivot_root(2), NOTES). */
  if (syscall(SYS_pivot_root, ".", ".") != 0)
    sandbox__fail(job, errno, "cannot pivot_root to '%s'", job->state_dir);
  if (umount2(".", MNT_DETACH) != 0)
    sandbox__fail(job, errno, "cannot detach the host's root");
  if (chdir("/") != 0)
    sandbox__fail(job, errno, "cannot enter the new root");
}

/* After the pivot the host's tree is gone, and overlayfs takes no layer
 * from another mount namespace: the server makes the overlays of the code
 * and the layers itself (sandbox.c claim_overlay, read-only, detached) and
 * sends them; init attaches them, so mountinfo shows them as a fresh
 * instance's (6). /tmp and /dev/shm are still empty (nothing ran in the
 * instance but the runtime client): a remount resizes them. */
void sandbox__rootfs_claim(const sandbox__job *job, int code, int opt, uint32_t tmp_mb,
                           uint32_t memory_mb)
{
  if (move_mount(code, "", AT_FDCWD, "/var/task", MOVE_MOUNT_F_EMPTY_PATH) != 0)
    sandbox__fail(job, errno, "cannot mount the function's code at '/var/task'");
  if (opt >= 0 && move_mount(opt, "", AT_FDCWD, "/opt", MOVE_MOUNT_F_EMPTY_PATH) != 0)
    sandbox__fail(job, errno, "cannot mount the function's layers at '/opt'");
  char opts[96];
  sandbox__tmp_opts(opts, sizeof opts, tmp_mb);
  if (mount(NULL, "/tmp", NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, opts) != 0)
    sandbox__fail(job, errno, "cannot resize '/tmp'");
  sandbox__shm_opts(opts, sizeof opts, memory_mb);
  if (mount(NULL, "/dev/shm", NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, opts) != 0)
    sandbox__fail(job, errno, "cannot resize '/dev/shm'");
}
