/* sandbox/internal.h -- what the files of src/sandbox/ share. Never included
 * outside src/sandbox/.
 *
 * The files, in the order an instance meets them:
 *   sandbox.c   the public API, on the server's side: host checks, cgroups
 *               of an instance, the start handshake, wait, kill
 *   spawner.c   the zygote: a single-threaded process forked before the
 *               server starts threads; it clones every instance and
 *               writes its id maps
 *   netpool.c   the spawner's helper that makes network namespaces ahead
 *   cgroup.c    cgroup v1 and v2: the parent folder, per-instance limits,
 *               OOM and peak memory
 *   rootfs.c    the instance's new root (runs inside, as the clone child)
 *   init.c      pid 1 inside: drops privileges, starts the program, reaps,
 *               forwards TCP ports to host Unix sockets
 *   seccomp.c   the syscall filter, as a table with a reason per rule
 *   zygote.c    pre-initialised interpreters whose forks are instances
 *   pool.c      instances started ahead, claimed by a function
 *   template.c  a function's loaded program, whose forks are its instances
 *   shell.c     a template fork's namespaces, made by the spawner
 *
 * Functions shared between the files are named sandbox__* (internal, as
 * libuv's uv__).
 */
#ifndef TARN_SANDBOX_INTERNAL_H
#define TARN_SANDBOX_INTERNAL_H

#include "sandbox/sandbox.h"

#include <linux/filter.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>

#define SANDBOX_INSIDE_UID 993            /* the program's uid inside (Lambda's sbx_user1051) */
#define SANDBOX_INSIDE_GID 993            /* and its gid */
#define SANDBOX_HOST_ID_BASE 0x7a000000u  /* root server: first host uid/gid of an instance */
#define SANDBOX_HOST_ID_SLOTS 65536u      /* root server: instances alive at once, at most */
#define SANDBOX_MAX_FORWARDS 16           /* forwards per instance */
#define SANDBOX_MAX_STRINGS 4096          /* argv + envp entries per instance */
#define SANDBOX_MSG_MAX (128 * 1024)      /* one start request, strings included */
#define SANDBOX_PATH_MAX 1024             /* host paths we accept (state_dir, cgroups) */
#define SANDBOX_START_TIMEOUT_MS 10000    /* clone to exec, before we give up */

enum { CG_MEMORY, CG_CPU, CG_PIDS, CG_COUNT }; /* the controllers we use */

/* --- the start request: server -> spawner, one SOCK_SEQPACKET message ------
 * A head, then NUL-terminated strings in this order: id, code_dir,
 * runtime_dir (only if has_runtime), opt_dirs[nopt_dirs], argv[nargv], envp[nenvp],
 * host_socket[nforwards]. Beside it (SCM_RIGHTS): the log fd, then ncgfds
 * cgroup fds (see cg_mode). */
#define SANDBOX_REQ_MAGIC 0x74726e31u     /* "trn1" */

/* How an instance gets into its cgroups without the server moving it:
 * moving another process takes a lock whose write side waits for an RCU
 * grace period (milliseconds, once per controller), moving oneself as a
 * thread on v1, or being born in the cgroup on v2, does not. */
enum {
  SANDBOX_CG_NONE = 0,                    /* no cgroups */
  SANDBOX_CG_V1_TASKS = 1,                /* fds of each controller's "tasks": the child writes "0" */
  SANDBOX_CG_V2_CLONE = 2,                /* one fd of the v2 folder: clone3 CLONE_INTO_CGROUP */
};

typedef struct sandbox__req_head {
  uint32_t magic;                         /* SANDBOX_REQ_MAGIC */
  uint32_t memory_mb;                     /* as in sandbox_spec */
  uint32_t tmp_mb;
  uint32_t max_procs;
  uint32_t max_open_files;
  uint32_t nargv;                         /* strings of argv, without the NULL */
  uint32_t nenvp;                         /* strings of envp, without the NULL */
  uint32_t nforwards;                     /* entries used in ports[] */
  uint32_t has_runtime;                   /* 1: runtime_dir follows code_dir */
  uint32_t cg_mode;                       /* SANDBOX_CG_* */
  uint32_t ncgfds;                        /* cgroup fds beside the log fd */
  uint32_t host_uid;                      /* what the inside uid maps to on the host */
  uint32_t host_gid;                      /* and the inside gid */
  uint32_t nopt_dirs;                     /* folders for /opt after runtime_dir */
  uint32_t pooled;                        /* 1: a pool's instance (pool.c): no code yet, waits for its claim */
  uint32_t role;                          /* SANDBOX_ROLE_*: an instance, a template, a fork's shell */
  uint64_t max_file_bytes;
  uint16_t ports[SANDBOX_MAX_FORWARDS];   /* forward i: TCP port inside */
} sandbox__req_head;

/* What a request builds (template.c). */
enum {
  SANDBOX_ROLE_INSTANCE = 0,              /* an instance: its program is exec'd or a zygote's fork */
  SANDBOX_ROLE_TEMPLATE = 1,              /* a template: a zygote's fork whose program keeps fd 3
                                             (its channel to the server) and may setns */
  SANDBOX_ROLE_SHELL = 2,                 /* a template fork's namespaces and pid 1 (shell.c):
                                             the template's init pidfd travels after the cgroup fds */
};

/* The spawner's answer; on success two fds travel beside it: the pidfd of
 * the instance's init and the server's end of the start socket. When the
 * maps are written and the instance is in its cgroups, the spawner has
 * also sent it "go" on the start socket; otherwise the server does, after
 * it moved the instance (or it kills the instance, when maps_errnum). */
typedef struct sandbox__reply {
  int32_t errnum;                         /* 0, or why the clone failed */
  int32_t pid;                            /* host pid of the instance's init */
  int32_t attached;                       /* 0: v2 clone into the cgroup failed, the server moves it */
  int32_t maps_errnum;                    /* 0, or why the id maps could not be written */
} sandbox__reply;

/* What the instance sends on its start socket: one report, STARTED once
 * the program is exec'd (init knows: vfork returns then), or why it
 * failed. A close with no report means the instance died unheard. */
enum {
  SANDBOX_REPORT_STARTED = 1,             /* the program was exec'd */
  SANDBOX_REPORT_FAILED = 2,              /* building the sandbox failed */
  SANDBOX_REPORT_EXEC_FAILED = 3,         /* the program's execve failed */
  SANDBOX_REPORT_CLAIMED = 4,             /* a pooled instance took its function (pool.c) */
  SANDBOX_REPORT_SHELL = 5,               /* a fork's shell is ready (shell.c): its fds beside */
  SANDBOX_REPORT_SHELL_MAKER = 6,         /* the pidfd of a shell's maker beside (shell.c) */
};

/* --- a template's fork (template.c, shell.c, zygote_lib.c) -----------------
 * The shell's report, beside SANDBOX_REPORT_SHELL on the start socket:
 * SANDBOX_SHELL_FDS fds in this order: the pidfd of the shell's pid 1, the
 * nsfs fds the fork joins (user first: the kernel gives its owner's
 * processes every capability in it, which the joins of the others need),
 * and the fork's end of its exit socket (where the fork's waiter writes
 * its wait status). The report's msg holds the ports chosen for the
 * forwards (uint16_t each, in their order). Before or after it, the
 * shell's first process sends SANDBOX_REPORT_SHELL_MAKER with the pidfd
 * of the second (both are the server's children, to be reaped). */
enum { SHELL_PIDFD, SHELL_USER, SHELL_MNT, SHELL_UTS, SHELL_IPC, SHELL_CGROUP, SHELL_PID, SHELL_EXIT,
       SANDBOX_SHELL_FDS };
#define SANDBOX_SHELL_NS_FIRST SHELL_USER
#define SANDBOX_SHELL_NS_COUNT (SHELL_PID - SHELL_USER + 1)

/* server -> template, on its channel (fd 3 of its program): one fork. A
 * head, then argv[nargv] and envp[nenvp] (NUL-terminated); beside it the
 * log fd, the SANDBOX_SHELL_NS_COUNT nsfs fds, the exit socket, the claim
 * socket when claim is 1, then ncgfds "tasks" (v1) or folder (v2) fds of
 * the fork's cgroups. The template answers with one int32: 0 once the fork
 * exists, or an errno. A fork made ahead (claim 1) waits in its
 * interpreter, its log /dev/null, until the server claims it for an
 * instance on the claim socket: a sandbox__fork_claim head, envp[nenvp],
 * the log fd beside (template.c (4), zygote_lib.c). */
#define SANDBOX_FORK_MAGIC 0x74726e66u    /* "trnf" */
#define SANDBOX_FORK_FDS (2 + SANDBOX_SHELL_NS_COUNT)
typedef struct sandbox__fork_head {
  uint32_t magic;
  uint32_t nargv;
  uint32_t nenvp;
  uint32_t ncgfds;
  uint32_t cg_mode;                       /* SANDBOX_CG_* */
  uint32_t max_open_files;
  uint32_t claim;                         /* 1: made ahead, waits for its claim */
  uint64_t max_file_bytes;
} sandbox__fork_head;

#define SANDBOX_FORK_CLAIM_MAGIC 0x74726e6bu /* "trnk" */
typedef struct sandbox__fork_claim {
  uint32_t magic;
  uint32_t nenvp;
} sandbox__fork_claim;

/* --- a pooled instance's claim: server -> init on the start socket, then
 * init -> program on their own socket pair (pool.c). A head, then argv[nargv]
 * and envp[nenvp] as NUL-terminated strings. Beside it (SCM_RIGHTS), to
 * init: the log fd, an O_PATH fd of code_dir, then nopt_dirs of opt_dirs;
 * to the program: the log fd only. */
#define SANDBOX_CLAIM_MAGIC 0x74726e63u   /* "trnc" */
typedef struct sandbox__claim_head {
  uint32_t magic;
  uint32_t nargv;
  uint32_t nenvp;
  uint32_t nopt_dirs;
  uint32_t tmp_mb;
  uint32_t memory_mb;
  uint32_t max_open_files;
  uint32_t max_procs;
  uint64_t max_file_bytes;
} sandbox__claim_head;

/* Where the instance's time went before STARTED (CLOCK_MONOTONIC µs,
 * which no namespace shifts; 0: not reached): sandbox_phases. */
enum {
  SANDBOX_P_CHILD,                        /* init's first instruction */
  SANDBOX_P_JOINED,                       /* in its cgroups, fds sorted */
  SANDBOX_P_UNSHARED,                     /* mount, net, IPC, UTS, cgroup ns made */
  SANDBOX_P_GO,                           /* id maps written ("go" read) */
  SANDBOX_P_HOST,                         /* hostname, loopback */
  SANDBOX_P_ROOTFS,                       /* root built and pivoted into */
  SANDBOX_P_DROPPED,                      /* listeners, capabilities, seccomp */
  SANDBOX_P_FORK,                         /* the program's fork/vfork */
  SANDBOX_P_PROGRAM,                      /* the program, just before its exec or resume */
  SANDBOX_P_CLAIM_MOUNTS,                 /* pooled: the function's code mounted, init dropped */
  SANDBOX_P_CLAIM_SENT,                   /* pooled: the claim handed to the program */
  SANDBOX_P_COUNT
};

typedef struct sandbox__report {
  int32_t kind;                           /* SANDBOX_REPORT_* */
  int32_t errnum;                         /* errno of the failure, or 0 */
  char msg[480];                          /* "what failed 'subject': why" */
  int64_t phase_us[SANDBOX_P_COUNT];      /* STARTED: SANDBOX_P_* */
} sandbox__report;

/* One instance to build, as the spawner decoded it. The clone child reads
 * its own copy of this (and of everything it points to). */
typedef struct sandbox__job {
  const char *id;                         /* hostname, names the instance */
  const char *state_dir;                  /* mount point of the new root (host) */
  const char *code_dir;                   /* host folder for /var/task */
  const char *runtime_dir;                /* host folder for /var/runtime, or NULL */
  size_t nopt_dirs;
  const char *opt_dirs[SANDBOX_MAX_OPT_DIRS]; /* host folders stacked at /opt, bottom first */
  char **argv;                            /* NULL-terminated, in the spawner's heap */
  char **envp;                            /* NULL-terminated, in the spawner's heap */
  uint32_t memory_mb;
  uint32_t tmp_mb;
  uint32_t max_procs;
  uint32_t max_open_files;
  uint64_t max_file_bytes;
  size_t nforwards;
  uint16_t ports[SANDBOX_MAX_FORWARDS];
  const char *sockets[SANDBOX_MAX_FORWARDS];
  int log_fd;                             /* the program's stdout and stderr */
  int sync_fd;                            /* instance end of the start socket */
  int cg_mode;                            /* SANDBOX_CG_* */
  size_t ncgfds;
  int cg_fds[CG_COUNT];                   /* as cg_mode says */
  bool attach_later;                      /* the server moves the instance into its cgroups before "go" */
  bool net_ready;                         /* born in a pooled network namespace, loopback up (netpool.c) */
  bool pooled;                            /* a pool's instance: init.c pool_wait, pool.c */
  int role;                               /* SANDBOX_ROLE_* */
  int template_pidfd;                     /* SANDBOX_ROLE_SHELL: the template's init */
  uint32_t host_uid;                      /* as in the request */
  uint32_t host_gid;
  const struct sock_fprog *filter;        /* seccomp program, built once */
  const struct sock_fprog *template_filter; /* the same without its setns row (templates) */
  /* Zygote instances only (zygote.c): init forks the program instead of
   * exec'ing it, and the program calls resume, which returns into the
   * pre-initialised interpreter; NULL: exec argv as usual. */
  void (*resume)(const struct sandbox__job *job) __attribute__((noreturn));
  int zygote_top_fd;                      /* the highest fd the zygote held (below FD_LOG) */
  int64_t phase_us[SANDBOX_P_COUNT];      /* filled in the clone child, sent with STARTED */
} sandbox__job;

/* --- spawner.c ------------------------------------------------------------ */

/* Namespaces made by the clone, and by the child right after. */
#define SANDBOX_CLONE_FLAGS (CLONE_NEWUSER | CLONE_NEWPID)
#define SANDBOX_UNSHARE_FLAGS (CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)

/* What a zygote (zygote.c) adds around each clone of serve(): the
 * interpreter's own fork hooks, and the clone child's preparation. */
typedef struct sandbox__serve_hooks {
  void (*before_clone)(void);
  void (*after_clone)(void);              /* in the parent */
  void (*in_child)(sandbox__job *job);    /* in the clone child, before it builds the instance */
} sandbox__serve_hooks;

/* The spawner's loop on fd 3: one clone per request, until EOF (then
 * _exit(0)). hooks NULL: the spawner (with its network namespace pool);
 * else a zygote's (no pool). */
void sandbox__serve(const char *state_dir, const struct sock_fprog *filter,
                    const struct sock_fprog *template_filter, const sandbox__serve_hooks *hooks)
    __attribute__((noreturn));

/* A zygote's start request (server -> spawner): the head, then argv[nargv]
 * and envp[nenvp] as NUL-terminated strings; beside it the zygote's library
 * (a sealed memfd). The spawner clones it as the server's child with fds
 * 0-2 on /dev/null, 3 its channel, 4 the library, 5 a memfd holding the
 * state folder and the seccomp filter (SANDBOX_ZYG_* below), and execs it. */
#define SANDBOX_ZYG_MAGIC 0x74726e7au     /* "trnz" */
typedef struct sandbox__zyg_head {
  uint32_t magic;
  uint32_t nargv;
  uint32_t nenvp;
} sandbox__zyg_head;

/* fd 5 of a new zygote: this head, the state folder (state_len bytes, no
 * NUL), then nfilter struct sock_filter, then ntemplate_filter more (the
 * templates' filter). */
typedef struct sandbox__zyg_setup {
  uint32_t state_len;
  uint32_t nfilter;
  uint32_t ntemplate_filter;
} sandbox__zyg_setup;

/* Overwrites the command line that /proc/PID/cmdline shows (within the
 * room the process was started with). */
void sandbox__set_cmdline(const char *const *argv);

/* Forks the spawner. It first probes one clone with every namespace flag;
 * *probe_errno gets that clone's errno (0: namespaces work). */
int sandbox__spawner_start(const char *state_dir, const struct sock_fprog *filter,
                           const struct sock_fprog *template_filter, pid_t *pid, int *chan, int *probe_errno, err *e);

/* --- netpool.c (in the spawner) -------------------------------------------- */

#define SANDBOX_NETPOOL_SIZE 4            /* namespaces made ahead, at most */

typedef struct sandbox__netpool {
  int sock;                               /* to the filler; -1: no (more) pool */
  pid_t filler;                           /* the helper process, or -1 */
  size_t count;                           /* namespaces ready in fds[] */
  size_t owed;                            /* taken, not yet asked for again */
  int fds[SANDBOX_NETPOOL_SIZE];          /* their fds, oldest first */
} sandbox__netpool;

/* Forks the filler (a child of the caller) and asks for the first
 * namespaces. Never fails: a pool that cannot work stays empty. */
void sandbox__netpool_start(sandbox__netpool *pool);

/* A fresh namespace's fd, never entered by anyone, or -1 when none is
 * ready. The caller enters it once, for one clone, and closes it. */
int sandbox__netpool_take(sandbox__netpool *pool);

/* Asks the filler for as many namespaces as were taken since the last
 * call: after the reply to the server, so that the filler's work does not
 * delay it. */
void sandbox__netpool_refill(sandbox__netpool *pool);

/* Closes what is left and waits for the filler. */
void sandbox__netpool_stop(sandbox__netpool *pool);

/* --- init.c (runs in the clone child) --------------------------------------- */

/* The clone child: waits for its go, builds the sandbox, becomes
 * pid 1 of it. Never returns. */
void sandbox__instance_main(sandbox__job *job) __attribute__((noreturn));

/* Reports a failure on the start socket and exits the instance. */
void sandbox__fail(const sandbox__job *job, int errnum, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

/* A template fork's pid 1 (shell.c made its namespaces): mounts /proc,
 * listens for the forwards on ports the kernel picks (sockets: their host
 * sockets, O_PATH), drops every privilege, writes the ports (uint16_t
 * each, in order) on ready_fd, and forwards until the fork's waiter writes
 * its wait status on exit_fd (zygote_lib.c); exits with that status, or
 * with 255 when exit_fd closes unheard. A failure before ready_fd is
 * reported on the start socket. Never returns. */
void sandbox__shell_init(sandbox__job *job, const int *sockets, int exit_fd, int ready_fd)
    __attribute__((noreturn));

/* --- shell.c (the spawner's clone child for SANDBOX_ROLE_SHELL) ------------ */

/* Joins the template's namespaces, makes the fork's (user nested in the
 * template's, mount with its own /tmp, UTS, IPC, cgroup, pid), starts its
 * pid 1 as the server's child and reports. Never returns. */
void sandbox__shell_main(sandbox__job *job) __attribute__((noreturn));

/* --- rootfs.c (runs in the clone child) ------------------------------------- */

/* Host folders and sockets the instance shows, opened (O_PATH) while the
 * child still has the cloning user's identity: the server's private folders
 * may be closed to the instance's uid. */
typedef struct sandbox__sources {
  int code;                               /* code_dir */
  int runtime;                            /* runtime_dir, or -1 */
  int opt[SANDBOX_MAX_OPT_DIRS];          /* opt_dirs (nopt_dirs of them) */
  int sockets[SANDBOX_MAX_FORWARDS];      /* each forward's host socket */
} sandbox__sources;

/* Step 1, as the cloning user: makes every mount private, mounts the new
 * root's tmpfs over state_dir, moves there, opens the sources. */
void sandbox__rootfs_prepare(const sandbox__job *job, sandbox__sources *src);

/* A pooled instance's claim, in init after the pivot, caps still on:
 * attaches the overlays the server made (code at /var/task, opt at /opt
 * when >= 0) and resizes /tmp and /dev/shm to the function's. */
void sandbox__rootfs_claim(const sandbox__job *job, int code, int opt, uint32_t tmp_mb,
                           uint32_t memory_mb);

/* The options of a /tmp of tmp_mb, and of a /dev/shm for memory_mb. */
void sandbox__tmp_opts(char *opts, size_t size, uint32_t tmp_mb);
void sandbox__shm_opts(char *opts, size_t size, uint32_t memory_mb);

/* Step 2, as the inside uid with its caps in the user namespace still on:
 * fills the new root, makes it read-only and pivots into it. Both steps
 * fail through sandbox__fail. */
void sandbox__rootfs_build(const sandbox__job *job, const sandbox__sources *src);


/* --- seccomp.c ------------------------------------------------------------ */

/* Compiles the filter table to BPF once; the program lives until exit.
 * for_template: without the setns row (a template's forks join the
 * namespaces the spawner made for them; each loads the whole filter). */
int sandbox__seccomp_build(struct sock_fprog *out, bool for_template, err *e);

/* Loads a compiled filter on the calling thread (no_new_privs must be set).
 * Returns 0 or -errno. Async-signal-safe. */
int sandbox__seccomp_apply(const struct sock_fprog *prog);

/* --- cgroup.c ------------------------------------------------------------- */

typedef struct sandbox__cgroups {
  int version;                            /* 0: none usable, 1 or 2 */
  char parent[CG_COUNT][SANDBOX_PATH_MAX]; /* this server's folder per controller; "" = off */
  char tarn[CG_COUNT][SANDBOX_PATH_MAX];  /* the shared "tarn" folder above it */
} sandbox__cgroups;

typedef struct sandbox__cgroup {
  char dir[CG_COUNT][SANDBOX_PATH_MAX];   /* the instance's folders; "" = off (v2: same thrice) */
} sandbox__cgroup;

/* Detects the controllers and makes PARENT/tarn/<pid>. What cannot be used
 * is appended to notes (one sentence each) and left off; only a broken host
 * is an error. */
int sandbox__cgroups_init(sandbox__cgroups *cgs, char *notes, size_t notes_size, err *e);
void sandbox__cgroups_release(sandbox__cgroups *cgs);

int sandbox__cgroup_create(const sandbox__cgroups *cgs, const char *id,
                           const sandbox_spec *spec, sandbox__cgroup *cg, err *e);
/* Opens what the instance joins its cgroups with (SANDBOX_CG_*): *mode
 * and *n say what fds[] holds; the caller closes them. */
int sandbox__cgroup_join_fds(const sandbox__cgroups *cgs, const sandbox__cgroup *cg, int *mode,
                             int fds[CG_COUNT], size_t *n, err *e);
/* Moves pid into the instance's cgroups (the slow way: see SANDBOX_CG_*). */
/* Writes spec's limits (memory, CPU share, pids) to cg again: a claim. */
int sandbox__cgroup_limits(const sandbox__cgroups *cgs, const sandbox__cgroup *cg,
                           const sandbox_spec *spec, err *e);
int sandbox__cgroup_attach(const sandbox__cgroup *cg, pid_t pid, err *e);
bool sandbox__cgroup_oom(const sandbox__cgroup *cg);
uint64_t sandbox__cgroup_peak(const sandbox__cgroup *cg);
void sandbox__cgroup_remove(sandbox__cgroup *cg);

/* CPU share of a memory size, as Lambda's: one full vCPU at 1,769 MB. */
uint32_t sandbox__cpu_shares(uint32_t memory_mb);

/* --- requests (sandbox.c) ------------------------------------------------- */

/* One request on a spawner's or zygote's channel (under mu, unless NULL) with nfds fds
 * beside it, and its reply with the two fds that come back (-1 when none).
 * -1 when the channel is gone (the process at its end died). */
int sandbox__exchange(int chan, pthread_mutex_t *mu, const void *msg, size_t len, const int *fds,
                      size_t nfds, sandbox__reply *r, int back[2]);
/* The same on the spawner's channel. */
int sandbox__spawner_exchange(const void *msg, size_t len, const int *fds, size_t nfds,
                              sandbox__reply *r, int back[2]);

/* --- zygote.c (server side) ------------------------------------------------- */

/* Sends a start request to z (started first if it is not running): 0 and
 * its reply, or -1 when z cannot serve (the caller asks the spawner). */
int sandbox__zygote_exchange(sandbox_zygote *z, const void *msg, size_t len, const int *fds,
                             size_t nfds, sandbox__reply *r, int back[2]);
/* The library's memfd for a new zygote, or -1 when there is none. */
int sandbox__zygote_library(void);

/* --- pools (sandbox.c, pool.c) ------------------------------------------------ */

/* sandbox_start for a pool: the program is spec->zygote's fork (never an
 * exec), it stops before anything of a function (init.c pool_instance),
 * and the start socket stays open for the claim. */
int sandbox__start_pooled(const sandbox_spec *spec, sandbox **out, err *e);
/* Gives a pooled instance to spec's function (limits, code, layers, /tmp,
 * command line, environment, log) and waits until init says it has it; on
 * an error the caller frees sb. Once per instance. */
int sandbox__claim(sandbox *sb, const sandbox_spec *spec, err *e);

/* --- templates (sandbox.c, template.c) ---------------------------------------- */

/* sandbox_start for a template: the program is spec->zygote's fork (never
 * an exec) with SANDBOX_ROLE_TEMPLATE; its start socket stays open as its
 * channel (sandbox__ctl). */
int sandbox__start_template(const sandbox_spec *spec, sandbox **out, err *e);
int sandbox__ctl(const sandbox *sb);
int sandbox__pidfd(const sandbox *sb);
/* A template fork's shell (shell.c): the instance's cgroups, namespaces and
 * pid 1, made by the spawner next to the template whose init's pidfd is
 * template_pidfd. Gives the instance (its pid 1), the ports its forwards
 * listen on (in spec's order), the nsfs fds the fork joins and its exit
 * socket; the caller closes those. */
int sandbox__start_shell(const sandbox_spec *spec, int template_pidfd, sandbox **out,
                         uint16_t *ports, int nsfds[SANDBOX_SHELL_NS_COUNT], int *exit_fd, err *e);
/* Fds to join sb's cgroups with (as sandbox__cgroup_join_fds). */
int sandbox__cgroup_fds(const sandbox *sb, int *mode, int fds[CG_COUNT], size_t *n, err *e);
/* The fork in sb runs (asked for at begin_us): sb keeps t's reference
 * until it is freed. */
void sandbox__started(sandbox *sb, sandbox_template *t, int64_t begin_us);

/* --- small helpers (sandbox.c) --------------------------------------------- */

/* One message on a socket with nfds fds beside it (at most
 * SANDBOX_SEND_FDS_MAX), MSG_NOSIGNAL, retried on EINTR: sendmsg's result. */
#define SANDBOX_SEND_FDS_MAX 16
ssize_t sandbox__send_fds(int sock, const void *msg, size_t len, const int *fds, size_t nfds);

/* A fork-like clone3 (returns in both processes, on the same copied stack)
 * with flags, *pidfd with CLONE_PIDFD, exit_signal, and cgroup_fd with
 * CLONE_INTO_CGROUP (spawner.c). */
pid_t sandbox__clone3(uint64_t flags, int *pidfd, int exit_signal, int cgroup_fd);

/* CLOCK_MONOTONIC in µs (async-signal-safe). */
int64_t sandbox__now_us(void);

/* Writes a whole short string to a file (cgroup, proc); 0 or -errno. */
int sandbox__write_file(const char *path, const char *text);
/* Reads up to n-1 bytes of a file, NUL-terminated; bytes read or -errno. */
ssize_t sandbox__read_file(const char *path, char *buf, size_t n);

#endif
