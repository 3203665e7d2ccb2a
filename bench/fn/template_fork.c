/* bench/fn/template_fork.c -- one instance out of a template with one copy
 * of its memory, for bench/fn_template_probe.py (built by it with cc).
 *
 * A template's fork must join the instance's namespaces, and a new pid
 * namespace only takes the children of whoever joins it: two forks. The
 * first need not copy anything: C is a CLONE_VM|CLONE_VFORK child on a
 * stack of its own (as posix_spawn does), which joins the namespaces and
 * then clones G, the instance, a copy of the template's memory (shared
 * with C) in the new pid namespace. G longjmps back onto the template's
 * stack as it was when C started, and returns 0 to the caller.
 *
 * Invariants:
 *   (1) The caller holds the GIL and is single-threaded (PyDLL, not CDLL:
 *       the GIL is not released around the call).
 *   (2) G's glibc thread descriptor still holds the template's tid (a raw
 *       clone, not fork(), whose bookkeeping would write memory C shares
 *       with the template): G must not use pthread_kill on itself or
 *       error-checking mutexes. A model's shortcut; tarn's own would set it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STACK 65536

static jmp_buf back;

struct job {
  const int *fds;
  int n;
  int err;
};

static int c_main(void *p)
{
  struct job *j = p;
  for (int i = 0; i < j->n; i++)
    if (setns(j->fds[i], 0) < 0) {
      j->err = errno;
      _exit(1);
    }
  long g = syscall(SYS_clone, (unsigned long)SIGCHLD, 0L, 0L, 0L, 0L);
  if (g == 0)
    longjmp(back, 1);
  if (g < 0)
    j->err = errno;
  _exit(0);
}

/* 0 in G; C's pid in the template (reap it); -errno when nothing started. */
long tmpl_fork(const int *fds, int n)
{
  static char *stack;
  if (!stack) {
    stack = mmap(0, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
      stack = 0;
      return -ENOMEM;
    }
  }
  struct job j = {fds, n, 0};
  if (setjmp(back))
    return 0;
  long c = clone(c_main, stack + STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &j);
  if (c < 0)
    return -errno;
  if (j.err)
    return -j.err;
  return c;
}
