/* tests/unit/sandbox/test_sandbox.c -- the sandbox, checked from inside: each
 * test runs /bin/sh or python3 in a real sandbox and reads what it printed
 * (log_fd is a pipe). Needs root with user namespaces; skips otherwise.
 *
 * SANDBOX_BENCH=1 runs a measurement instead: start latency (sandbox_start
 * until the program is exec'd) and full start/wait/free cycles per second.
 */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static bool available;                   /* sandboxes work here */
static bool limited;                      /* but without memory/pids cgroups (not root) */
static char base[256];                    /* host temp folder of the run */
static char state_dir[300];
static char code_dir[300];
static char runtime_dir[300];
static char marker[300];                  /* a host file the sandbox must not see */
static int counter;

static const char *const default_env[] = {"PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", NULL};

typedef struct run_opts {
  uint32_t memory_mb;                     /* 0: 128 */
  uint32_t tmp_mb;                        /* 0: 16 */
  uint32_t max_procs;                     /* 0: 64 */
  const sandbox_forward *forwards;
  size_t nforwards;
  const char *const *opt_dirs;            /* stacked at /opt */
  size_t nopt_dirs;
} run_opts;

static void fill_spec(sandbox_spec *spec, char *id, size_t idn, const char *const *argv, const run_opts *o,
                      int log_fd)
{
  snprintf(id, idn, "t-%d-%d", (int)getpid(), ++counter);
  memset(spec, 0, sizeof *spec);
  spec->id = id;
  spec->code_dir = code_dir;
  spec->runtime_dir = runtime_dir;
  spec->argv = argv;
  spec->envp = default_env;
  spec->memory_mb = o && o->memory_mb ? o->memory_mb : 128;
  spec->tmp_mb = o && o->tmp_mb ? o->tmp_mb : 16;
  spec->max_procs = o && o->max_procs ? o->max_procs : 64;
  spec->max_open_files = 256;
  spec->max_file_bytes = 64u << 20;
  spec->forwards = o ? o->forwards : NULL;
  spec->nforwards = o ? o->nforwards : 0;
  spec->opt_dirs = o ? o->opt_dirs : NULL;
  spec->nopt_dirs = o ? o->nopt_dirs : 0;
  spec->log_fd = log_fd;
}

/* Runs argv in a sandbox, collects its output into out, waits for its end. */
static void run(const char *const *argv, const run_opts *o, char *out, size_t n, sandbox_exit *ex)
{
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  char id[80];
  sandbox_spec spec;
  fill_spec(&spec, id, sizeof id, argv, o, p[1]);
  sandbox *sb = NULL;
  err e = {0};
  int rc = sandbox_start(&spec, &sb, &e);
  if (rc != 0)
    fail_msg("sandbox_start: %s", e.msg);
  close(p[1]);
  size_t got = 0;
  for (;;) {
    ssize_t r = read(p[0], out + got, n - 1 - got);
    if (r <= 0)
      break;
    got += (size_t)r;
    if (got == n - 1)
      break;
  }
  out[got] = '\0';
  close(p[0]);
  assert_int_equal(sandbox_wait(sb, -1, ex, &e), 0);
  assert_true(ex->exited);
  sandbox_free(sb);
}

static void sh(const char *script, const run_opts *o, char *out, size_t n, sandbox_exit *ex)
{
  const char *argv[] = {"/bin/sh", "-c", script, NULL};
  run(argv, o, out, n, ex);
}

static void py(const char *code, const run_opts *o, char *out, size_t n, sandbox_exit *ex)
{
  const char *argv[] = {"/usr/bin/python3", "-c", code, NULL};
  run(argv, o, out, n, ex);
}

#define NEED_SANDBOX()                                                                        \
  do {                                                                                        \
    if (!available)                                                                           \
      skip();                                                                                 \
  } while (0)

#define NEED_CGROUPS()                                                                        \
  do {                                                                                        \
    if (!available || limited)                                                                \
      skip();                                                                                 \
  } while (0)

#define ASSERT_HAS(hay, needle)                                                               \
  do {                                                                                        \
    if (strstr((hay), (needle)) == NULL)                                                      \
      fail_msg("expected '%s' in output:\n%s", (needle), (hay));                              \
  } while (0)

/* --- tests ------------------------------------------------------------------- */

static void exit_status(void **state)
{
  (void)state;
  NEED_SANDBOX();
  char out[256];
  sandbox_exit ex;
  sh("echo hello; exit 3", NULL, out, sizeof out, &ex);
  assert_string_equal(out, "hello\n");
  assert_int_equal(ex.status, 3);
  assert_false(ex.oom_killed);
}

static void identity(void **state)
{
  (void)state;
  NEED_SANDBOX();
  char out[2048];
  sandbox_exit ex;
  sh("echo uid=$(id -u) gid=$(id -g) groups=$(id -G); echo host=$(cat /proc/sys/kernel/hostname);"
     "echo pid=$$ ppid=$PPID; echo cwd=$(pwd);"
     "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status",
     NULL, out, sizeof out, &ex);
  assert_int_equal(ex.status, 0);
  ASSERT_HAS(out, "uid=993 gid=993 groups=993\n");
  ASSERT_HAS(out, "host=t-");
  ASSERT_HAS(out, "pid=2 ppid=1\n");
  ASSERT_HAS(out, "cwd=/var/task\n");
  ASSERT_HAS(out, "CapPrm:\t0000000000000000");
  ASSERT_HAS(out, "CapEff:\t0000000000000000");
  ASSERT_HAS(out, "CapBnd:\t0000000000000000");
  ASSERT_HAS(out, "CapAmb:\t0000000000000000");
  ASSERT_HAS(out, "NoNewPrivs:\t1");
  ASSERT_HAS(out, "Seccomp:\t2");
}

static void own_processes_only(void **state)
{
  (void)state;
  NEED_SANDBOX();
  char out[512];
  sandbox_exit ex;
  py("import os\n"
     "print(os.getpid(), os.getppid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
     "print('fds', sorted(os.listdir('/proc/self/fd')))\n"
     "try:\n"
     "    open('/proc/1/environ').read(); print('init environ readable')\n"
     "except OSError as e:\n"
     "    print('init environ', e.errno)\n"
     "print('init cmdline', repr(open('/proc/1/cmdline').read().rstrip('\\0')))\n",
     NULL, out, sizeof out, &ex);
  assert_int_equal(ex.status, 0);
  ASSERT_HAS(out, "2 1 [1, 2]\n");
  ASSERT_HAS(out, "fds ['0', '1', '2', '3']\n"); /* 3: listdir's own */
  ASSERT_HAS(out, "init environ 13\n");          /* EACCES: init is not dumpable */
  ASSERT_HAS(out, "init cmdline 'tarn-init'\n"); /* not the server's command line */
}

static void filesystem(void **state)
{
  (void)state;
  NEED_SANDBOX();
  char code[4096];
  /* the three host paths: the marker, the state folder, the base folder */
  snprintf(code, sizeof code,
           "import os, errno\n"
           "for p in ['/root', '/home', '/sys', '/mnt', '/srv', '/var/lib', '%s', '%s', '%s']:\n"
           "    print('seen' if os.path.lexists(p) else 'hidden', p)\n"
           "for d in ['/', '/etc', '/usr', '/bin', '/var/task', '/var/runtime', '/dev', '/run/tarn', '/proc']:\n"
           "    try:\n"
           "        open(d + '/x', 'w'); print('wrote', d)\n"
           "    except OSError as e:\n"
           "        print('denied', d, errno.errorcode[e.errno])\n"
           "open('/tmp/ok', 'w').write('fine'); print('tmp', open('/tmp/ok').read())\n"
           "open('/dev/shm/ok', 'w').write('fine'); print('shm ok')\n"
           "print('task', open('/var/task/handler.txt').read().strip())\n"
           "print('runtime', open('/var/runtime/rt.txt').read().strip())\n"
           "print('passwd', 'sbx_user1051' in open('/etc/passwd').read())\n"
           "print('shadow', os.path.exists('/etc/shadow'))\n"
           "print('null', open('/dev/null', 'w').write('x'))\n"
           "print('urandom', len(open('/dev/urandom', 'rb').read(8)))\n"
           "print('bin', os.readlink('/bin'))\n"
           "for p in ['/proc/self/mountinfo', '/proc/self/mounts', '/proc/1/mountinfo']:\n"
           "    t = open(p).read()\n"
           "    print('read', p, ' /var/task ' in t and ' /var/runtime ' in t)\n"
           "    for h in ['%s', '%s']:\n"
           "        print('leak', p, h) if h in t else None\n",
           marker, state_dir, base, code_dir, runtime_dir);
  char out[4096];
  sandbox_exit ex;
  py(code, NULL, out, sizeof out, &ex);
  assert_int_equal(ex.status, 0);
  assert_null(strstr(out, "seen "));
  assert_null(strstr(out, "wrote "));
  ASSERT_HAS(out, "denied / EROFS\n");
  ASSERT_HAS(out, "denied /etc EROFS\n");
  ASSERT_HAS(out, "denied /usr EROFS\n");
  ASSERT_HAS(out, "denied /var/task EROFS\n");
  ASSERT_HAS(out, "denied /var/runtime EROFS\n");
  ASSERT_HAS(out, "tmp fine\n");
  ASSERT_HAS(out, "shm ok\n");
  ASSERT_HAS(out, "task hello from the code\n");
  ASSERT_HAS(out, "runtime the runtime\n");
  ASSERT_HAS(out, "passwd True\n");
  ASSERT_HAS(out, "shadow False\n");
  ASSERT_HAS(out, "null 1\n");
  ASSERT_HAS(out, "urandom 8\n");
  ASSERT_HAS(out, "bin usr/bin\n");
  /* the code and runtime folders show no host path (rootfs.c (6)) */
  ASSERT_HAS(out, "read /proc/self/mountinfo True\n");
  ASSERT_HAS(out, "read /proc/self/mounts True\n");
  ASSERT_HAS(out, "read /proc/1/mountinfo True\n");
  assert_null(strstr(out, "leak "));
}

static void tmp_limit(void **state)
{
  (void)state;
  NEED_SANDBOX();
  char out[512];
  sandbox_exit ex;
  run_opts o = {.tmp_mb = 4};
  py("import errno\n"
     "f = open('/tmp/big', 'wb')\n"
     "try:\n"
     "    for i in range(5 * 16):\n"
     "        f.write(b'x' * 65536); f.flush()\n"
     "    print('wrote 5 MB')\n"
     "except OSError as e:\n"
     "    print('stopped', errno.errorcode[e.errno])\n",
     &o, out, sizeof out, &ex);
  ASSERT_HAS(out, "stopped ENOSPC\n");
}

/* seccomp.c (5): only unix, inet, inet6 and route netlink sockets. The
 * domain goes through syscall(2) as a 64-bit value, so that one with high
 * bits set (which the kernel truncates to its int) is tried too. */
static void socket_families(void **state)
{
  (void)state;
  NEED_SANDBOX();
  char out[2048];
  sandbox_exit ex;
  py("import ctypes, errno, os\n"
     "libc = ctypes.CDLL(None, use_errno=True)\n"
     "libc.syscall.argtypes = [ctypes.c_long] * 5\n"
     "def show(name, fam, typ, proto=0):\n"
     "    fd = libc.syscall(41, fam, typ, proto, 0)\n"
     "    print(name, 'ok' if fd >= 0 else errno.errorcode[ctypes.get_errno()])\n"
     "    fd >= 0 and os.close(fd)\n"
     "show('vsock', 40, 1)\n"
     "show('vsock-high', 40 | (1 << 32), 1)\n"
     "show('unix-high', 1 | (1 << 32), 1)\n"
     "show('packet', 17, 3)\n"
     "show('alg', 38, 5)\n"
     "show('key', 15, 3)\n"
     "show('unspec', 0, 1)\n"
     "show('big', 200, 1)\n"
     "show('netlink-route', 16, 3, 0)\n"
     "show('netlink-audit', 16, 3, 9)\n"
     "show('unix', 1, 1)\n"
     "show('inet', 2, 1)\n"
     "show('inet6', 10, 2)\n"
     "sv = (ctypes.c_int * 2)()\n"
     "rc = libc.syscall(53, 40, 1, 0, ctypes.addressof(sv))\n"
     "print('socketpair-vsock', 'ok' if rc == 0 else errno.errorcode[ctypes.get_errno()])\n"
     "rc = libc.syscall(53, 1, 1, 0, ctypes.addressof(sv))\n"
     "print('socketpair-unix', 'ok' if rc == 0 else errno.errorcode[ctypes.get_errno()])\n",
     NULL, out, sizeof out, &ex);
  assert_int_equal(ex.status, 0);
  ASSERT_HAS(out, "vsock EAFNOSUPPORT\n");
  ASSERT_HAS(out, "vsock-high EAFNOSUPPORT\n");
  ASSERT_HAS(out, "unix-high EAFNOSUPPORT\n");
  ASSERT_HAS(out, "packet EAFNOSUPPORT\n");
  ASSERT_HAS(out, "alg EAFNOSUPPORT\n");
  ASSERT_HAS(out, "key EAFNOSUPPORT\n");
  ASSERT_HAS(out, "unspec EAFNOSUPPORT\n");
  ASSERT_HAS(out, "big EAFNOSUPPORT\n");
  ASSERT_HAS(out, "netlink-route ok\n");
  ASSERT_HAS(out, "netlink-audit EPROTONOSUPPORT\n");
  ASSERT_HAS(out, "unix ok\n");
  ASSERT_HAS(out, "inet ok\n");
  ASSERT_HAS(out, "inet6 ok\n");
  ASSERT_HAS(out, "socketpair-vsock EAFNOSUPPORT\n");
  ASSERT_HAS(out, "socketpair-unix ok\n");
}

static void privileged_calls(void **state)
{
  (void)state;
  NEED_SANDBOX();
  char out[2048];
  sandbox_exit ex;
  py("import ctypes, errno, os, signal, time\n"
     "libc = ctypes.CDLL(None, use_errno=True)\n"
     "def show(name, rc):\n"
     "    print(name, 'ok' if rc == 0 else errno.errorcode[ctypes.get_errno()])\n"
     "show('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))\n"
     "show('umount', libc.umount2(b'/proc', 2))\n"
     "show('unshare', libc.unshare(0x10000000))\n"
     "show('unshare-net', libc.unshare(0x40000000))\n"
     "show('chroot', libc.chroot(b'/tmp'))\n"
     "child = os.fork()\n"
     "if child == 0:\n"
     "    time.sleep(30); os._exit(0)\n"
     "show('ptrace', libc.ptrace(16, child, None, None))\n"
     "os.kill(child, signal.SIGKILL); os.waitpid(child, 0)\n"
     "show('ptrace-init', libc.ptrace(16, 1, None, None))\n"
     "show('setuid', libc.setuid(0))\n"
     "for name, nr in [('bpf', 321), ('perf', 298), ('keyctl', 250), ('userfaultfd', 323),\n"
     "                 ('io_uring', 425), ('clone3', 435), ('kexec', 246), ('init_module', 175),\n"
     "                 ('open_by_handle_at', 304), ('setns', 308), ('syslog', 103)]:\n"
     "    show(name, libc.syscall(nr, 0, 0, 0, 0, 0))\n"
     "os.kill(1, signal.SIGKILL); os.kill(1, signal.SIGTERM); time.sleep(0.1)\n"
     "print('still here')\n",
     NULL, out, sizeof out, &ex);
  assert_int_equal(ex.status, 0);
  ASSERT_HAS(out, "mount EPERM\n");
  ASSERT_HAS(out, "umount EPERM\n");
  ASSERT_HAS(out, "unshare EPERM\n");
  ASSERT_HAS(out, "unshare-net EPERM\n");
  ASSERT_HAS(out, "chroot EPERM\n");
  ASSERT_HAS(out, "ptrace EPERM\n");
  ASSERT_HAS(out, "ptrace-init EPERM\n");
  ASSERT_HAS(out, "setuid EINVAL\n"); /* uid 0 is not even mapped */
  ASSERT_HAS(out, "bpf EPERM\n");
  ASSERT_HAS(out, "perf EPERM\n");
  ASSERT_HAS(out, "keyctl EPERM\n");
  ASSERT_HAS(out, "userfaultfd EPERM\n");
  ASSERT_HAS(out, "io_uring EPERM\n");
  ASSERT_HAS(out, "clone3 ENOSYS\n");
  ASSERT_HAS(out, "kexec EPERM\n");
  ASSERT_HAS(out, "init_module EPERM\n");
  ASSERT_HAS(out, "open_by_handle_at EPERM\n");
  ASSERT_HAS(out, "setns EPERM\n");
  ASSERT_HAS(out, "syslog EPERM\n");
  ASSERT_HAS(out, "still here\n");
}

/* A host listener the sandbox must not reach. */
static int host_tcp_listener(uint16_t *port)
{
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t l = sizeof a;
  getsockname(s, (struct sockaddr *)&a, &l);
  assert_int_equal(listen(s, 8), 0);
  *port = ntohs(a.sin_port);
  return s;
}

static void network(void **state)
{
  (void)state;
  NEED_SANDBOX();
  uint16_t port;
  int ls = host_tcp_listener(&port);
  char code[1024];
  snprintf(code, sizeof code,
           "import socket, errno\n"
           "print('ifaces', [n for i, n in socket.if_nameindex()])\n"
           "s = socket.socket()\n"
           "s.settimeout(2)\n"
           "try:\n"
           "    s.connect(('127.0.0.1', %u)); print('reached the host')\n"
           "except OSError as e:\n"
           "    print('host', errno.errorcode.get(e.errno, e))\n"
           "try:\n"
           "    socket.create_connection(('1.1.1.1', 80), timeout=2); print('reached the internet')\n"
           "except OSError as e:\n"
           "    print('internet', errno.errorcode.get(e.errno, e))\n",
           (unsigned)port);
  char out[1024];
  sandbox_exit ex;
  py(code, NULL, out, sizeof out, &ex);
  close(ls);
  assert_int_equal(ex.status, 0);
  ASSERT_HAS(out, "ifaces ['lo']\n");
  ASSERT_HAS(out, "host ECONNREFUSED\n");
  ASSERT_HAS(out, "internet ENETUNREACH\n");
}

typedef struct echo {
  int listener;
  int served;
} echo;

/* Serves three connections on a host Unix socket: "pong:" + all it read. */
static void *echo_serve(void *arg)
{
  echo *ec = arg;
  size_t cap = 8u << 20;
  char *buf = malloc(cap);
  for (int k = 0; k < 3 && buf != NULL; k++) {
    int c = accept4(ec->listener, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
      break;
    memcpy(buf, "pong:", 5);
    size_t got = 5;
    ssize_t r;
    while (got < cap && (r = read(c, buf + got, cap - got)) > 0)
      got += (size_t)r;
    for (size_t off = 0; off < got;) {
      ssize_t w = write(c, buf + off, got - off);
      if (w <= 0)
        break;
      off += (size_t)w;
    }
    close(c);
    ec->served++;
  }
  free(buf);
  return NULL;
}

static void forward(void **state)
{
  (void)state;
  NEED_SANDBOX();
  char path[320];
  snprintf(path, sizeof path, "%s/api.sock", base);
  unlink(path);
  echo ec = {.listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  assert_true(snprintf(a.sun_path, sizeof a.sun_path, "%s", path) < (int)sizeof a.sun_path);
  assert_int_equal(bind(ec.listener, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(chmod(path, 0666), 0);
  assert_int_equal(listen(ec.listener, 8), 0);
  pthread_t t;
  pthread_create(&t, NULL, echo_serve, &ec);

  sandbox_forward fw[] = {{.port = 9001, .host_socket = path}};
  run_opts o = {.forwards = fw, .nforwards = 1};
  char out[1024];
  sandbox_exit ex;
  py("import socket\n"
     "for msg in [b'ping', b'x' * 100, b'z' * (4 << 20)]:\n"
     "    s = socket.create_connection(('127.0.0.1', 9001), timeout=5)\n"
     "    s.sendall(msg); s.shutdown(socket.SHUT_WR)\n"
     "    data = b''\n"
     "    while True:\n"
     "        b = s.recv(65536)\n"
     "        if not b: break\n"
     "        data += b\n"
     "    print(data[:20].decode(), len(data))\n",
     &o, out, sizeof out, &ex);
  pthread_join(t, NULL);
  close(ec.listener);
  unlink(path);
  assert_int_equal(ex.status, 0);
  ASSERT_HAS(out, "pong:ping 9\n");
  ASSERT_HAS(out, "pong:xxxxxxxxxxxxxxx 105\n");
  ASSERT_HAS(out, "pong:zzzzzzzzzzzzzzz 4194309\n"); /* 4 MiB both ways, through init */
  assert_int_equal(ec.served, 3);
}

static void fork_bomb(void **state)
{
  (void)state;
  NEED_SANDBOX();
  /* python: counts how many processes it gets */
  char out[512];
  sandbox_exit ex;
  run_opts o = {.max_procs = 16};
  py("import os, time\n"
     "n = 0\n"
     "try:\n"
     "    while n < 1000:\n"
     "        if os.fork() == 0:\n"
     "            time.sleep(60); os._exit(0)\n"
     "        n += 1\n"
     "except OSError as e:\n"
     "    print('forks', n, e.errno)\n",
     &o, out, sizeof out, &ex);
  /* 16 = init + python + 14 children; the children die with the instance */
  ASSERT_HAS(out, "forks 14 11\n");

  /* a real fork bomb: the test finishes and free cleans up */
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  const char *argv[] = {"/bin/sh", "-c", "b() { b | b & }; b; sleep 30", NULL};
  char id[80];
  sandbox_spec spec;
  fill_spec(&spec, id, sizeof id, argv, &o, p[1]);
  sandbox *sb = NULL;
  err e = {0};
  assert_int_equal(sandbox_start(&spec, &sb, &e), 0);
  int pid = sandbox_pid(sb);
  char cg[128];
  snprintf(cg, sizeof cg, "/proc/%d/cgroup", pid);
  sandbox_exit w;
  assert_int_equal(sandbox_wait(sb, 500, &w, &e), 0);
  sandbox_free(sb);
  close(p[0]);
  close(p[1]);
  assert_int_equal(access(cg, F_OK), -1); /* init is gone, and so its pid ns */
}

static void memory_limit(void **state)
{
  (void)state;
  NEED_CGROUPS();
  char out[512];
  sandbox_exit ex;
  run_opts o = {.memory_mb = 64};
  py("b = b'x' * (256 << 20)\nprint('survived', len(b))\n", &o, out, sizeof out, &ex);
  assert_null(strstr(out, "survived"));
  assert_int_equal(ex.status, 128 + SIGKILL);
  assert_true(ex.oom_killed);
}

static void kill_sleeping(void **state)
{
  (void)state;
  NEED_SANDBOX();
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  const char *argv[] = {"/bin/sleep", "60", NULL};
  char id[80];
  sandbox_spec spec;
  fill_spec(&spec, id, sizeof id, argv, NULL, p[1]);
  sandbox *sb = NULL;
  err e = {0};
  assert_int_equal(sandbox_start(&spec, &sb, &e), 0);
  sandbox_exit ex;
  assert_int_equal(sandbox_wait(sb, 0, &ex, &e), 0);
  assert_false(ex.exited);
  assert_int_equal(sandbox_wait(sb, 50, &ex, &e), 0);
  assert_false(ex.exited);
  sandbox_kill(sb);
  assert_int_equal(sandbox_wait(sb, -1, &ex, &e), 0);
  assert_true(ex.exited);
  assert_int_equal(ex.status, 128 + SIGKILL);
  assert_false(ex.oom_killed);
  if (!limited)
    assert_true(sandbox_max_memory(sb) > 0);
  sandbox_free(sb);
  close(p[0]);
  close(p[1]);
}

static void cgroup_limits(void **state)
{
  (void)state;
  NEED_CGROUPS();
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  const char *argv[] = {"/bin/sleep", "60", NULL};
  char id[80];
  sandbox_spec spec;
  run_opts o = {.memory_mb = 512, .max_procs = 33};
  fill_spec(&spec, id, sizeof id, argv, &o, p[1]);
  sandbox *sb = NULL;
  err e = {0};
  assert_int_equal(sandbox_start(&spec, &sb, &e), 0);
  char path[256];
  snprintf(path, sizeof path, "/proc/%d/cgroup", sandbox_pid(sb));
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[512];
  int checked = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL)
      continue;
    *c2 = '\0';
    const char *ctl = c1 + 1;
    const char *cgpath = c2 + 1;
    char file[1024];
    char val[64] = "";
    const char *want = NULL;
    if (strcmp(ctl, "memory") == 0) {
      snprintf(file, sizeof file, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", cgpath);
      want = "536870912\n";
    } else if (strcmp(ctl, "pids") == 0) {
      snprintf(file, sizeof file, "/sys/fs/cgroup/pids%s/pids.max", cgpath);
      want = "33\n";
    } else if (strcmp(ctl, "cpu") == 0) {
      snprintf(file, sizeof file, "/sys/fs/cgroup/cpu%s/cpu.shares", cgpath);
      want = "296\n"; /* 1024 * 512 / 1769 */
    } else {
      continue;
    }
    assert_non_null(strstr(cgpath, id));
    FILE *v = fopen(file, "r");
    assert_non_null(v);
    assert_non_null(fgets(val, sizeof val, v));
    fclose(v);
    assert_string_equal(val, want);
    checked++;
  }
  fclose(f);
  if (checked == 0)
    fprintf(stderr, "# cgroup_limits: no v1 memory/cpu/pids cgroups here: %s\n", sandbox_system_notes());
  sandbox_free(sb);
  close(p[0]);
  close(p[1]);
}

static void exec_failure(void **state)
{
  (void)state;
  NEED_SANDBOX();
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  const char *argv[] = {"/var/task/nonexistent", NULL};
  char id[80];
  sandbox_spec spec;
  fill_spec(&spec, id, sizeof id, argv, NULL, p[1]);
  sandbox *sb = NULL;
  err e = {0};
  assert_int_equal(sandbox_start(&spec, &sb, &e), ERR_INVALID);
  assert_null(sb);
  ASSERT_HAS(e.msg, "cannot run '/var/task/nonexistent': No such file or directory");

  /* a sandbox that cannot be built says why */
  spec.code_dir = "/nonexistent/code";
  assert_int_equal(sandbox_start(&spec, &sb, &e), ERR_INTERNAL);
  ASSERT_HAS(e.msg, "cannot open code folder '/nonexistent/code': No such file or directory");
  spec.code_dir = code_dir;
  sandbox_forward fw[] = {{.port = 9001, .host_socket = marker}};
  spec.forwards = fw;
  spec.nforwards = 1;
  assert_int_equal(sandbox_start(&spec, &sb, &e), ERR_INTERNAL);
  ASSERT_HAS(e.msg, "cannot forward to");

  /* a bad spec is refused before anything starts */
  spec.id = "Bad_Id";
  assert_int_equal(sandbox_start(&spec, &sb, &e), ERR_INVALID);
  close(p[0]);
  close(p[1]);
}

static void runtimes_start(void **state)
{
  (void)state;
  NEED_SANDBOX();
  char out[1024];
  sandbox_exit ex;
  run_opts o = {.memory_mb = 512};
  py("import ssl, json, urllib.request, multiprocessing, os\n"
     "print('python', json.dumps({'ok': True}), os.cpu_count() > 0)\n",
     &o, out, sizeof out, &ex);
  assert_int_equal(ex.status, 0);
  ASSERT_HAS(out, "python {\"ok\": true} True\n");
  if (access("/usr/bin/node", X_OK) == 0) {
    const char *argv[] = {"/usr/bin/node", "-e",
                          "const os = require('os'); console.log('node', 1 + 1, os.cpus().length > 0, "
                          "require('crypto').randomBytes(4).length)",
                          NULL};
    run(argv, &o, out, sizeof out, &ex);
    assert_int_equal(ex.status, 0);
    ASSERT_HAS(out, "node 2 true 4\n");
  }
  const char *argv[] = {"python3", "-c", "print('found on PATH')", NULL};
  run(argv, &o, out, sizeof out, &ex);
  ASSERT_HAS(out, "found on PATH\n");
}

static void *start_many(void *arg)
{
  int *failures = arg;
  for (int i = 0; i < 8; i++) {
    char out[64];
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      (*failures)++;
      continue;
    }
    const char *argv[] = {"/bin/sh", "-c", "echo ok", NULL};
    char id[80];
    sandbox_spec spec;
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    fill_spec(&spec, id, sizeof id, argv, NULL, p[1]);
    pthread_mutex_unlock(&mu);
    sandbox *sb = NULL;
    err e = {0};
    if (sandbox_start(&spec, &sb, &e) != 0) {
      fprintf(stderr, "# %s\n", e.msg);
      (*failures)++;
      close(p[0]);
      close(p[1]);
      continue;
    }
    close(p[1]);
    ssize_t n = read(p[0], out, sizeof out - 1);
    sandbox_exit ex;
    sandbox_wait(sb, -1, &ex, &e);
    if (n != 3 || memcmp(out, "ok\n", 3) != 0 || ex.status != 0)
      (*failures)++;
    sandbox_free(sb);
    close(p[0]);
  }
  return NULL;
}

static void concurrent_starts(void **state)
{
  (void)state;
  NEED_SANDBOX();
  pthread_t t[4];
  int failures[4] = {0};
  for (int i = 0; i < 4; i++)
    pthread_create(&t[i], NULL, start_many, &failures[i]);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < 4; i++)
    assert_int_equal(failures[i], 0);
}

/* --- setup ------------------------------------------------------------------- */

static void write_text(const char *path, const char *text, mode_t mode)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  chmod(path, mode);
}

/* /var/task is an overlay (rootfs.c (6)): code runs from it, but not when
 * the host mounted the code's folder noexec (rootfs.c (3)). */
static void code_exec(void **state)
{
  (void)state;
  NEED_SANDBOX();
  static const char script[] = "#!/bin/sh\necho ran\n";
  char path[512];
  snprintf(path, sizeof path, "%s/run.sh", code_dir);
  write_text(path, script, 0755);
  const char *argv[] = {"/var/task/run.sh", NULL};
  char out[256];
  sandbox_exit ex;
  run(argv, NULL, out, sizeof out, &ex);
  assert_string_equal(out, "ran\n");
  if (geteuid() != 0)
    return; /* mounting the noexec folder needs root */

  char noexec[400];
  snprintf(noexec, sizeof noexec, "%s/noexec", base);
  mkdir(noexec, 0755);
  assert_int_equal(mount("tarn-test", noexec, "tmpfs", MS_NOEXEC | MS_NOSUID | MS_NODEV, "size=1m,mode=0755"), 0);
  snprintf(path, sizeof path, "%s/run.sh", noexec);
  write_text(path, script, 0755);
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  char id[80];
  sandbox_spec spec;
  fill_spec(&spec, id, sizeof id, argv, NULL, p[1]);
  spec.code_dir = noexec;
  sandbox *sb = NULL;
  err e = {0};
  int rc = sandbox_start(&spec, &sb, &e);
  umount2(noexec, MNT_DETACH);
  close(p[0]);
  close(p[1]);
  sb = sandbox_free(sb);
  assert_int_equal(rc, ERR_INVALID);
  ASSERT_HAS(e.msg, "cannot run '/var/task/run.sh': Permission denied");
}

/* /opt stacks its folders in one read-only overlay, the last on top
 * (rootfs.c); without any it is an empty folder of the read-only root. */
static void opt_layers(void **state)
{
  (void)state;
  NEED_SANDBOX();
  char l1[400];
  char l2[400];
  char path[512];
  snprintf(l1, sizeof l1, "%s/layer1", base);
  snprintf(l2, sizeof l2, "%s/layer2", base);
  for (int i = 0; i < 2; i++) {
    const char *l = i ? l2 : l1;
    mkdir(l, 0755);
    snprintf(path, sizeof path, "%s/lib", l);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/lib/both.txt", l);
    write_text(path, i ? "two" : "one", 0644);
    snprintf(path, sizeof path, "%s/lib/only%d.txt", l, i + 1);
    write_text(path, "mine", 0644);
  }
  char code[1024];
  snprintf(code, sizeof code,
           "import os, errno\n"
           "print('both', open('/opt/lib/both.txt').read())\n"
           "print('files', sorted(os.listdir('/opt/lib')))\n"
           "for p in ['/opt/x', '/opt/lib/both.txt']:\n"
           "    try:\n"
           "        open(p, 'w'); print('wrote', p)\n"
           "    except OSError as e:\n"
           "        print('denied', p, errno.errorcode[e.errno])\n"
           "t = open('/proc/self/mountinfo').read()\n"
           "print('leak' if '%s' in t else 'no leak')\n",
           base);
  const char *const dirs[] = {l1, l2};
  run_opts o = {.opt_dirs = dirs, .nopt_dirs = 2};
  char out[1024];
  sandbox_exit ex;
  py(code, &o, out, sizeof out, &ex);
  assert_int_equal(ex.status, 0);
  ASSERT_HAS(out, "both two\n");
  ASSERT_HAS(out, "files ['both.txt', 'only1.txt', 'only2.txt']\n");
  ASSERT_HAS(out, "denied /opt/x EROFS\n");
  ASSERT_HAS(out, "denied /opt/lib/both.txt EROFS\n");
  ASSERT_HAS(out, "no leak\n");
  const char *const reversed[] = {l2, l1};
  o.opt_dirs = reversed;
  py("print(open('/opt/lib/both.txt').read())", &o, out, sizeof out, &ex);
  assert_string_equal(out, "one\n");
  py("import os; print(os.listdir('/opt'))", NULL, out, sizeof out, &ex);
  assert_string_equal(out, "[]\n");
}

static int group_setup(void **state)
{
  (void)state;
  snprintf(base, sizeof base, "/tmp/tarn-sandbox-test-XXXXXX");
  if (mkdtemp(base) == NULL)
    return -1;
  snprintf(state_dir, sizeof state_dir, "%s/state", base);
  snprintf(code_dir, sizeof code_dir, "%s/code", base);
  snprintf(runtime_dir, sizeof runtime_dir, "%s/runtime", base);
  snprintf(marker, sizeof marker, "%s/marker", base);
  mkdir(code_dir, 0755);
  mkdir(runtime_dir, 0755);
  write_text(marker, "secret\n", 0644);
  char path[400];
  snprintf(path, sizeof path, "%s/handler.txt", code_dir);
  write_text(path, "hello from the code\n", 0644);
  snprintf(path, sizeof path, "%s/rt.txt", runtime_dir);
  write_text(path, "the runtime\n", 0644);

  err e = {0};
  if (sandbox_system_init(state_dir, &e) != 0) {
    fprintf(stderr, "# sandbox tests skipped: %s\n", e.msg);
    return 0;
  }
  if (sandbox_system_notes()[0] != '\0') {
    fprintf(stderr, "# sandbox notes: %s\n", sandbox_system_notes());
    limited = strstr(sandbox_system_notes(), "memory") != NULL || strstr(sandbox_system_notes(), "pids") != NULL;
  }
  if (limited)
    fprintf(stderr, "# memory and cgroup tests skipped: they need root (or delegated cgroups)\n");
  available = true;
  return 0;
}

static int group_teardown(void **state)
{
  (void)state;
  sandbox_system_release();
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
  if (strncmp(base, "/tmp/tarn-sandbox-test-", 23) == 0)
    (void)!system(cmd);
  return 0;
}

/* --- the measurement ------------------------------------------------------------ */

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a;
  double y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct bench_arg {
  double until;
  int done;
  int failed;
  int null_fd;
} bench_arg;

static double sum_wait_ms;
static double sum_free_ms;

static int one_cycle(int null_fd, double *start_ms)
{
  static const char *const argv[] = {"/bin/true", NULL};
  static int seq;
  static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  char id[80];
  sandbox_spec spec;
  pthread_mutex_lock(&mu);
  fill_spec(&spec, id, sizeof id, argv, NULL, null_fd);
  snprintf(id, sizeof id, "b-%d-%d", (int)getpid(), ++seq);
  pthread_mutex_unlock(&mu);
  sandbox *sb = NULL;
  err e = {0};
  double t0 = now_s();
  int rc = sandbox_start(&spec, &sb, &e);
  double t1 = now_s();
  if (rc != 0) {
    fprintf(stderr, "start: %s\n", e.msg);
    return -1;
  }
  if (start_ms)
    *start_ms = (t1 - t0) * 1e3;
  sandbox_exit ex;
  sandbox_wait(sb, -1, &ex, &e);
  double t2 = now_s();
  sandbox_free(sb);
  double t3 = now_s();
  if (start_ms) {
    sum_wait_ms += (t2 - t1) * 1e3;
    sum_free_ms += (t3 - t2) * 1e3;
  }
  return ex.status == 0 ? 0 : -1;
}

static void *bench_thread(void *p)
{
  bench_arg *a = p;
  while (now_s() < a->until) {
    if (one_cycle(a->null_fd, NULL) == 0)
      a->done++;
    else
      a->failed++;
  }
  return NULL;
}

static double cpu_s(void)
{
  struct rusage self;
  struct rusage kids;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  double s = 0;
  const struct rusage *r[2] = {&self, &kids};
  for (int i = 0; i < 2; i++)
    s += (double)(r[i]->ru_utime.tv_sec + r[i]->ru_stime.tv_sec) +
         (double)(r[i]->ru_utime.tv_usec + r[i]->ru_stime.tv_usec) / 1e6;
  return s;
}

static int bench(void)
{
  int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  double cpu0 = cpu_s();
  int total = 0;
  enum { N = 300 };
  double lat[N];
  for (int i = 0; i < 20; i++)
    one_cycle(null_fd, NULL); /* warm up */
  for (int i = 0; i < N; i++)
    if (one_cycle(null_fd, &lat[i]) != 0)
      return 1;
  total += 20 + N;
  qsort(lat, N, sizeof lat[0], cmp_double);
  printf("sandbox_start (clone to exec of /bin/true), %d sequential: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms\n",
         N, lat[N / 2], lat[N * 9 / 10], lat[N * 99 / 100]);
  printf("then, on average: wait for the exit of /bin/true %.2f ms, sandbox_free %.2f ms\n", sum_wait_ms / N,
         sum_free_ms / N);
  for (int threads = 1; threads <= 8; threads *= 2) {
    pthread_t t[8];
    bench_arg a[8];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
      a[i] = (bench_arg){.until = t0 + 3.0, .null_fd = null_fd};
      pthread_create(&t[i], NULL, bench_thread, &a[i]);
    }
    int done = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
      pthread_join(t[i], NULL);
      done += a[i].done;
      failed += a[i].failed;
    }
    double secs = now_s() - t0;
    total += done + failed;
    printf("start+wait+free cycles, %d thread%s: %.0f sandboxes/s (%d in %.1f s, %d failed)\n", threads,
           threads > 1 ? "s" : "", done / secs, done, secs, failed);
  }
  close(null_fd);
  /* instances are our children (reaped: in RUSAGE_CHILDREN), and so is the
   * spawner once released */
  sandbox_system_release();
  printf("CPU per sandbox (server, spawner, init, /bin/true; not kernel threads): %.2f ms\n",
         (cpu_s() - cpu0) * 1e3 / total);
  return 0;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(exit_status),      cmocka_unit_test(identity),
      cmocka_unit_test(own_processes_only), cmocka_unit_test(filesystem),
      cmocka_unit_test(tmp_limit),        cmocka_unit_test(privileged_calls),
      cmocka_unit_test(socket_families),
      cmocka_unit_test(network),          cmocka_unit_test(forward),
      cmocka_unit_test(fork_bomb),        cmocka_unit_test(memory_limit),
      cmocka_unit_test(kill_sleeping),    cmocka_unit_test(cgroup_limits),
      cmocka_unit_test(exec_failure),     cmocka_unit_test(code_exec),
      cmocka_unit_test(runtimes_start),   cmocka_unit_test(opt_layers),
      cmocka_unit_test(concurrent_starts),
  };
  const char *b = getenv("SANDBOX_BENCH");
  if (b != NULL && b[0] == '1') {
    group_setup(NULL);
    int rc = available ? bench() : 0;
    group_teardown(NULL);
    return rc;
  }
  return cmocka_run_group_tests_name("sandbox", tests, group_setup, group_teardown);
}
