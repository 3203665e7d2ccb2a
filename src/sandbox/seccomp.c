/* sandbox/seccomp.c -- the syscall filter of every instance, kept as data.
 *
 * Why a denylist (default allow) and not an allowlist: the isolation rests
 * on the namespaces, the unprivileged uid, the empty capability sets and
 * no_new_privs; the filter removes the kernel surfaces that stay reachable
 * without any capability (new user namespaces, bpf, perf, userfaultfd,
 * io_uring, keyrings, ptrace) and says "no" early to the privileged ones.
 * Functions bring any runtime (python, node, Go, Rust, Java, a shell
 * script) and an allowlist that fits them all would be long, fragile across
 * libc and runtime versions, and hardly narrower than this list.
 *
 * Invariants:
 *   (1) Every rule has its reason on its row.
 *   (2) Denied calls fail with EPERM, so programs see "not allowed", except
 *       clone3 (ENOSYS, see its row) and sockets of a denied family
 *       (EAFNOSUPPORT, what a kernel without that family says).
 *   (3) A syscall the running architecture does not have is skipped;
 *       calls from another ABI (i386 int 0x80, x32) kill the process
 *       (libseccomp's bad-arch action).
 *   (4) The filter is compiled once (sandbox_system_init); instances load
 *       the compiled BPF with one syscall.
 *   (5) socket and socketpair are an allowlist of families (see
 *       families[]): every other value of the domain argument, including
 *       any with bits above the low 32 set (the kernel reads an int), fails.
 *   (6) A template (template.c) gets the same filter without the setns
 *       row: its forks join namespaces the spawner made for them, and each
 *       loads the whole filter on top before anything of its own runs.
 *       Joining needs a capability in the namespace's owner, and the
 *       template holds none but in the user namespaces made for its forks.
 *
 * Start reading at the rules table.
 */
#include "sandbox/internal.h"

#include "base/mem.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct rule {
  const char *name;                       /* syscall, as libseccomp names it */
  int errnum;                             /* what the call returns */
  uint64_t clone_flag;                    /* nonzero: only when arg 0 has this bit */
  const char *why;
} rule;

static const rule rules[] = {
  /* No new namespaces: a new user namespace gives its creator every
   * capability inside it, which opens much kernel code (netfilter, mounts
   * of many filesystems) to an unprivileged process; a new mount or pid
   * namespace could also hide processes and mounts from init. */
  {"unshare", EPERM, 0, "new namespaces from inside: see above"},
  {"setns", EPERM, 0, "joining another namespace, through an inherited or opened nsfs fd"},
  {"clone", EPERM, CLONE_NEWUSER, "clone into a new user namespace"},
  {"clone", EPERM, CLONE_NEWNS, "clone into a new mount namespace"},
  {"clone", EPERM, CLONE_NEWPID, "clone into a new pid namespace"},
  {"clone", EPERM, CLONE_NEWNET, "clone into a new network namespace"},
  {"clone", EPERM, CLONE_NEWIPC, "clone into a new IPC namespace"},
  {"clone", EPERM, CLONE_NEWUTS, "clone into a new UTS namespace"},
  {"clone", EPERM, CLONE_NEWCGROUP, "clone into a new cgroup namespace"},
  /* clone3 passes its flags in memory, where seccomp cannot look. ENOSYS
   * (not EPERM) makes glibc, Go and Rust fall back to clone(2), whose flags
   * the rows above check. */
  {"clone3", ENOSYS, 0, "flags out of the filter's sight; libcs fall back to clone"},

  /* The mount table is built by init and must stay as it is. */
  {"mount", EPERM, 0, "changing the mount table"},
  {"umount2", EPERM, 0, "uncovering what a mount hides"},
  {"pivot_root", EPERM, 0, "changing the root"},
  {"chroot", EPERM, 0, "changing the root (needs CAP_SYS_CHROOT anyway)"},
  {"fsopen", EPERM, 0, "new mount API: creating a filesystem context"},
  {"fsconfig", EPERM, 0, "new mount API: configuring a filesystem context"},
  {"fsmount", EPERM, 0, "new mount API: creating a mount"},
  {"fspick", EPERM, 0, "new mount API: reconfiguring a mount"},
  {"open_tree", EPERM, 0, "new mount API: cloning a mount tree"},
  {"move_mount", EPERM, 0, "new mount API: attaching a mount"},
  {"mount_setattr", EPERM, 0, "new mount API: changing mount flags (read-only off)"},

  /* Other processes' memory and state. */
  {"ptrace", EPERM, 0, "tracing reads and writes another process (init included)"},
  {"process_vm_readv", EPERM, 0, "reads another process's memory"},
  {"process_vm_writev", EPERM, 0, "writes another process's memory"},
  {"process_madvise", EPERM, 0, "acts on another process's memory"},
  {"pidfd_getfd", EPERM, 0, "steals another process's file descriptors"},
  {"kcmp", EPERM, 0, "probes another process's kernel objects (ptrace-class)"},

  /* The kernel itself. */
  {"kexec_load", EPERM, 0, "replaces the running kernel"},
  {"kexec_file_load", EPERM, 0, "replaces the running kernel"},
  {"init_module", EPERM, 0, "loads kernel code"},
  {"finit_module", EPERM, 0, "loads kernel code"},
  {"delete_module", EPERM, 0, "unloads kernel code"},
  {"bpf", EPERM, 0, "eBPF verifier and maps: a large, often exploited surface"},
  {"perf_event_open", EPERM, 0, "perf: a large surface, and it observes other processes"},
  {"userfaultfd", EPERM, 0, "pauses the kernel mid-copy: a classic exploit helper"},
  {"io_uring_setup", EPERM, 0, "io_uring: much exploited; runtimes fall back to plain syscalls"},
  {"io_uring_enter", EPERM, 0, "io_uring: see io_uring_setup"},
  {"io_uring_register", EPERM, 0, "io_uring: see io_uring_setup"},
  {"lookup_dcookie", EPERM, 0, "oprofile's path lookups, privileged and unused"},
  {"syslog", EPERM, 0, "reads the kernel log (addresses, other tenants' events)"},
  {"modify_ldt", EPERM, 0, "x86 segment tables: old exploit surface, unused by runtimes"},
  {"iopl", EPERM, 0, "raw access to I/O ports"},
  {"ioperm", EPERM, 0, "raw access to I/O ports"},
  {"vhangup", EPERM, 0, "hangs up the terminal (privileged)"},
  {"uselib", EPERM, 0, "obsolete a.out loader"},
  {"ustat", EPERM, 0, "obsolete filesystem statistics"},
  {"sysfs", EPERM, 0, "obsolete filesystem type listing"},
  {"nfsservctl", EPERM, 0, "obsolete NFS server control"},

  /* Keyrings are not namespaced: keys of the host or of other instances. */
  {"keyctl", EPERM, 0, "kernel keyrings are shared with the host"},
  {"add_key", EPERM, 0, "kernel keyrings are shared with the host"},
  {"request_key", EPERM, 0, "kernel keyrings are shared with the host"},

  /* Host-wide state no function may change. */
  {"reboot", EPERM, 0, "reboots the host"},
  {"swapon", EPERM, 0, "host swap"},
  {"swapoff", EPERM, 0, "host swap"},
  {"settimeofday", EPERM, 0, "host clock"},
  {"clock_settime", EPERM, 0, "host clock"},
  {"clock_adjtime", EPERM, 0, "host clock"},
  {"adjtimex", EPERM, 0, "host clock"},
  {"acct", EPERM, 0, "host process accounting"},
  {"quotactl", EPERM, 0, "host disk quotas"},
  {"quotactl_fd", EPERM, 0, "host disk quotas"},
  {"sethostname", EPERM, 0, "the hostname is the instance id"},
  {"setdomainname", EPERM, 0, "the domain name is fixed"},

  /* File handles bypass the mount tree: open_by_handle_at opens any inode
   * of a filesystem (the "shocker" container escape). */
  {"open_by_handle_at", EPERM, 0, "opens inodes outside the mounted tree"},
  {"name_to_handle_at", EPERM, 0, "prepares open_by_handle_at"},
};

/* Socket families a function may create (5); each with its reason. Every
 * other family is kernel code that no function needs and that a sandbox
 * should not reach: AF_VSOCK talks to the hypervisor and other VMs,
 * AF_PACKET and AF_XDP see raw frames (and have had many privilege
 * escalations), AF_ALG is the kernel crypto API (its own CVE history),
 * AF_KEY the IPsec key store, AF_BLUETOOTH, AF_CAN, AF_TIPC, AF_RDS, AF_X25,
 * AF_APPLETALK ... old or rarely audited protocol code that a module
 * autoload would bring in. */
static const struct {
  int family;
  const char *why;
} families[] = {
  {AF_UNIX, "local IPC: runtimes' own socketpairs and unix sockets"},
  {AF_INET, "TCP/UDP on 127.0.0.1: the Runtime API and the platform endpoint"},
  {AF_INET6, "runtimes and resolvers open IPv6 sockets (::1) as well"},
  {AF_NETLINK, "route and link queries (getaddrinfo's AI_ADDRCONFIG, getifaddrs: Node's "
               "os.networkInterfaces); NETLINK_ROUTE only, see below"},
};
#define FAMILY_SCAN 64 /* domains below are denied one by one, from here on as a range */

static bool family_allowed(int v)
{
  for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
    if (families[i].family == v)
      return true;
  return false;
}

/* (5): socket(domain, ...) and socketpair(domain, ...) for every denied
 * domain; and netlink other than NETLINK_ROUTE (audit, netfilter,
 * uevents, sock_diag of other sockets ...). */
static int add_family_rules(scmp_filter_ctx ctx, err *e)
{
  static const char *const calls[] = {"socket", "socketpair"};
  for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
    int nr = seccomp_syscall_resolve_name(calls[c]);
    if (nr == __NR_SCMP_ERROR)
      continue; /* (3) */
    int rc = 0;
    for (int v = 0; v < FAMILY_SCAN && rc == 0; v++)
      if (!family_allowed(v))
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)v));
    if (rc == 0) /* and any value with high bits: the kernel would truncate it */
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                            SCMP_A0(SCMP_CMP_GE, (scmp_datum_t)FAMILY_SCAN));
    if (rc == 0)
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), nr, 2,
                            SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)AF_NETLINK),
                            SCMP_A2(SCMP_CMP_NE, (scmp_datum_t)NETLINK_ROUTE));
    if (rc < 0)
      return err_set(e, ERR_INTERNAL, "cannot add seccomp rule for '%s' families: %s", calls[c],
                     strerror(-rc));
  }
  return 0;
}

int sandbox__seccomp_build(struct sock_fprog *out, bool for_template, err *e)
{
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL)
    return err_set(e, ERR_INTERNAL, "cannot create the seccomp filter");
  /* (3): the whole process, not just the thread */
  seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  int rc = 0;
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
    const rule *r = &rules[i];
    if (for_template && strcmp(r->name, "setns") == 0)
      continue; /* (6) */
    int nr = seccomp_syscall_resolve_name(r->name);
    if (nr == __NR_SCMP_ERROR)
      continue; /* (3) */
    if (r->clone_flag != 0)
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((uint32_t)r->errnum), nr, 1,
                            SCMP_A0(SCMP_CMP_MASKED_EQ, r->clone_flag, r->clone_flag));
    else
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((uint32_t)r->errnum), nr, 0);
    if (rc < 0) {
      seccomp_release(ctx);
      return err_set(e, ERR_INTERNAL, "cannot add seccomp rule '%s': %s", r->name, strerror(-rc));
    }
  }

  rc = add_family_rules(ctx, e);
  if (rc != 0) {
    seccomp_release(ctx);
    return rc;
  }

  /* libseccomp 2.5 exports BPF only to a file descriptor. */
  int fd = memfd_create("tarn-seccomp", MFD_CLOEXEC);
  if (fd < 0) {
    seccomp_release(ctx);
    return err_set(e, ERR_INTERNAL, "cannot create memfd for seccomp: %s", strerror(errno));
  }
  rc = seccomp_export_bpf(ctx, fd);
  seccomp_release(ctx);
  struct stat st;
  if (rc < 0 || fstat(fd, &st) < 0 || st.st_size <= 0 ||
      st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
      st.st_size > (off_t)(BPF_MAXINSNS * sizeof(struct sock_filter))) {
    close(fd);
    return err_set(e, ERR_INTERNAL, "cannot export the seccomp filter");
  }
  struct sock_filter *insns = xmalloc((size_t)st.st_size);
  if (pread(fd, insns, (size_t)st.st_size, 0) != st.st_size) {
    free(insns);
    close(fd);
    return err_set(e, ERR_INTERNAL, "cannot read the seccomp filter back");
  }
  close(fd);
  out->len = (unsigned short)((size_t)st.st_size / sizeof(struct sock_filter));
  out->filter = insns;
  return 0;
}

int sandbox__seccomp_apply(const struct sock_fprog *prog)
{
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
    return -errno;
  return 0;
}
