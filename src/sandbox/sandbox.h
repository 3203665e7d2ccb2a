/* sandbox/sandbox.h -- isolation of one function instance (DESIGN.md §5).
 *
 * An instance runs in its own user, PID, mount, IPC, UTS and network
 * namespaces, with a read-only root made of the host's system folders,
 * the function's code read-only at /var/task, its layers stacked
 * read-only at /opt, a private tmpfs /tmp, no
 * capabilities, a seccomp filter, cgroup limits (memory, CPU share, pids)
 * and rlimits. Pid 1 inside is tarn's own small init: it starts the
 * runtime program and forwards TCP ports on the sandbox's loopback to Unix
 * sockets on the host (the Runtime API and the platform endpoint), which is
 * the only way out: the network namespace has nothing but loopback.
 * A template's forks (sandbox_template_fork) differ in two ways: they share
 * their template's network namespace (each listens on ports of its own),
 * and their /tmp shows, read-only below their own writes, what the
 * template's left there.
 *
 * The part knows nothing of Lambda: the caller (fn/) says what to run, with
 * which environment, limits and forwards.
 */
#ifndef TARN_SANDBOX_SANDBOX_H
#define TARN_SANDBOX_SANDBOX_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sandbox sandbox;
typedef struct sandbox_zygote sandbox_zygote;

#define SANDBOX_MAX_OPT_DIRS 8

typedef struct sandbox_forward {
  uint16_t port;           /* TCP port on 127.0.0.1 inside the sandbox */
  const char *host_socket; /* Unix socket path on the host it connects to; the
                              instance connects as its own host uid, so the
                              socket must be writable by others (mode 0666;
                              keep its folder private) */
  const char *env;         /* NULL; or, where the port is chosen by the
                              kernel (a template's fork), the variable that
                              tells the program "127.0.0.1:PORT" */
} sandbox_forward;

typedef struct sandbox_spec {
  const char *id;               /* [a-z0-9-]{1,64}: names the cgroup and the hostname */
  const char *code_dir;         /* host folder mounted read-only at /var/task */
  const char *runtime_dir;      /* host folder mounted read-only at /var/runtime, or NULL */
  const char *const *opt_dirs;  /* host folders stacked read-only at /opt, in order: a
                                   later one's file hides an earlier one's (an overlay) */
  size_t nopt_dirs;             /* at most SANDBOX_MAX_OPT_DIRS; 0: /opt is empty */
  const char *const *argv;      /* program to run, path as seen inside; NULL-terminated */
  const char *const *envp;      /* its whole environment; NULL-terminated */
  uint32_t memory_mb;           /* memory limit, >= 16; the CPU share follows it as Lambda's does */
  uint32_t tmp_mb;              /* size of the private /tmp, >= 1 */
  uint32_t max_procs;           /* processes and threads inside, init included; >= 2 */
  uint32_t max_open_files;      /* RLIMIT_NOFILE; 0: the server's */
  uint64_t max_file_bytes;      /* RLIMIT_FSIZE; 0: unlimited */
  const sandbox_forward *forwards;
  size_t nforwards;             /* at most 16, ports distinct */
  int log_fd;                   /* the program's stdout and stderr go here */
  sandbox_zygote *zygote;       /* NULL; or the program is a fork of this zygote, which
                                   stands for argv[0]'s exec (argv and envp are still
                                   what the program is told it was started with); when
                                   the zygote cannot serve, argv is exec'd as usual */
} sandbox_spec;

typedef struct sandbox_exit {
  bool exited;                  /* false: still running (wait timed out) */
  int status;                   /* exit code, or 128 + signal */
  bool oom_killed;              /* the memory limit killed something inside */
} sandbox_exit;

/* Once per process, before threads start: checks what the host offers
 * (user namespaces, cgroup v2 or v1 controllers), prepares the cgroup
 * parent "tarn" (OWN_CGROUP/tarn/<pid>/<id>) and forks the spawner, a
 * small single-threaded process that clones every instance (it forks in
 * turn a helper that makes network namespaces ahead). state_dir is a
 * private folder (under the data directory) used as the mount point of the
 * instances' roots; it must not contain code_dir, runtime_dir or sockets.
 * Errors say what the host lacks. Calling it again is a no-op. Call it
 * early, before secrets are loaded: the spawner, and each instance's init,
 * are copies of the process at that moment (the programs they run are not).
 *
 * Instances are children of the calling process (their pidfd is waited
 * for): the server must not reap children it did not start (waitpid(-1),
 * SIGCHLD set to SIG_IGN). */
int sandbox_system_init(const char *state_dir, err *e);

/* What the host lacks but sandboxes can do without (cgroup controllers
 * not delegated, ...), one sentence each; "" when nothing. For the log. */
const char *sandbox_system_notes(void);

/* Stops the spawner and removes this process's cgroup parent. Instances
 * must be freed first. sandbox_system_init may be called again after. */
void sandbox_system_release(void);

/* Starts an instance; returns once the program is exec'd inside (or
 * failed to be: ERR_INVALID when the program cannot be exec'd, ERR_INTERNAL
 * when the sandbox could not be built). The caller owns *out. Safe to call
 * from several threads at once. */
int sandbox_start(const sandbox_spec *spec, sandbox **out, err *e);

/* A zygote: a program started once (argv, envp: a clean environment, not
 * the server's) that loads libtarn-zygote (zygote_lib.c), pre-initialises
 * an interpreter and serves forks of itself as instances (zygote.c). It is
 * started at its first use and replaced after SANDBOX_ZYGOTE_FORKS
 * instances. NULL when zygotes cannot work here (no library). Safe to use
 * from several threads; free it after every sandbox_start using it. */
#define SANDBOX_ZYGOTE_FORKS 512
sandbox_zygote *sandbox_zygote_new(const char *const *argv, const char *const *envp);
sandbox_zygote *sandbox_zygote_free(sandbox_zygote *z);

/* A pool of instances of one zygote, started ahead (pool.c): each is
 * sandboxed (namespaces, cgroup, root, forwards, seccomp for its program)
 * and its program has forked from the zygote and done its after-fork
 * work, but nothing of a function is in it. sandbox_pool_claim gives one to
 * a function: its limits, code at /var/task, layers at /opt, /tmp size,
 * command line, environment and log are set then, and it is that
 * function's instance until it ends; it never goes back to the pool. The
 * pool starts filling at its first claim, refills in a thread of its own
 * and holds at most size instances. */
typedef struct sandbox_pool sandbox_pool;
typedef struct sandbox_pool_conf {
  const char *name;                /* [a-z0-9]{1,16}: names its instances' ids */
  sandbox_zygote *zygote;          /* whose forks the instances are */
  const char *runtime_dir;         /* as in sandbox_spec: only specs with the same one claim */
  const sandbox_forward *forwards; /* likewise (copied) */
  size_t nforwards;
  uint32_t max_procs;              /* likewise */
  uint32_t max_open_files;         /* likewise */
  uint32_t memory_mb;              /* while it waits (the claim sets the function's) */
  size_t size;                     /* instances kept ready; 0: no pool */
} sandbox_pool_conf;

/* NULL when conf->size is 0 or conf is unusable. */
sandbox_pool *sandbox_pool_new(const sandbox_pool_conf *conf);
/* 0 and *out: spec's instance, claimed from the pool (the caller owns it as
 * sandbox_start's); 1: the pool cannot serve spec now (none ready, or spec
 * differs from the pool's conf), nothing done; else an error, and nothing
 * is left of the instance (the caller may sandbox_start instead). */
int sandbox_pool_claim(sandbox_pool *p, const sandbox_spec *spec, sandbox **out, err *e);
/* Ends the waiting instances and the refill thread. Accepts NULL. */
sandbox_pool *sandbox_pool_free(sandbox_pool *p);

/* A template of one function (template.c): an instance whose program, a
 * fork of spec->zygote, loads the function's code (the interpreter's
 * handler import and its before-snapshot hooks, runtimes/python/zygote.py)
 * and then serves forks of itself. Each fork is a new instance of that
 * function, in namespaces of its own that the spawner made (shell.c):
 * pid, mount (a /tmp of its own over the template's), UTS, IPC, cgroup
 * (spec's limits), a user namespace nested in the template's, and the
 * template's network namespace; no capability, the instance filter.
 * sandbox_template_new returns once the program said it is ready (within
 * ready_ms), or why not (ERR_INVALID when the program ended: its code
 * failed to load). Safe to use from several threads (one fork at a time).
 * spec->forwards are the template's own (they serve its forks too). */
typedef struct sandbox_template sandbox_template;
int sandbox_template_new(const sandbox_spec *spec, int ready_ms, sandbox_template **out, err *e);
/* A new instance of t's function, owned by the caller as sandbox_start's:
 * spec gives its id, argv and envp (what the program is told), log_fd,
 * limits and forwards (host sockets; the kernel picks the ports, and the
 * program's environment gets each forward's env). code_dir, runtime_dir,
 * opt_dirs and zygote are t's. The instance keeps t until it is freed. */
int sandbox_template_fork(sandbox_template *t, const sandbox_spec *spec, sandbox **out, err *e);
/* False once the template's program has ended (forks fail then). */
bool sandbox_template_alive(sandbox_template *t);
/* One more reference (each is dropped with sandbox_template_release). */
sandbox_template *sandbox_template_ref(sandbox_template *t);
/* Drops one reference: the template ends when its owner and every fork
 * have let it go. Accepts NULL; returns NULL. */
sandbox_template *sandbox_template_release(sandbox_template *t);

/* True when sb is a template's fork (its phases are the fork's). */
bool sandbox_forked(const sandbox *sb);

/* True when sb was claimed from a pool (its phases are the claim's). */
bool sandbox_pooled(const sandbox *sb);

/* Where a start's time went, for tracing: each step's name and when it
 * ended (CLOCK_MONOTONIC µs; 0: not reached), in the order they happen
 * (the spawner's clone reply and init's first steps overlap). */
#define SANDBOX_PHASES 15
typedef struct sandbox_phase {
  const char *name;
  int64_t us;
} sandbox_phase;
size_t sandbox_phases(const sandbox *sb, sandbox_phase out[SANDBOX_PHASES]);

/* Host pid of the instance's init (pid 1 inside). */
int sandbox_pid(const sandbox *sb);

/* Waits up to timeout_ms (-1: forever, 0: poll) for the instance to end.
 * The instance ends when its program does: status is the program's. */
int sandbox_wait(sandbox *sb, int timeout_ms, sandbox_exit *out, err *e);

/* Kills every process of the instance at once (SIGKILL). May be called
 * from another thread while one waits; other calls on one sandbox must not
 * overlap. */
void sandbox_kill(sandbox *sb);

/* Peak memory of the instance so far, in bytes (from its cgroup). */
uint64_t sandbox_max_memory(const sandbox *sb);

/* Kills the instance if it still runs, reaps it and removes its cgroup and
 * mount points. Accepts NULL; returns NULL. */
sandbox *sandbox_free(sandbox *sb);

#endif
