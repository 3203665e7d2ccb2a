/* fn/zygote.c -- which instances are forks of a pre-initialised runtime
 * (a zygote: src/sandbox/zygote.c) rather than an exec of it.
 *
 * Why: a python3.x function's instance started by exec'ing python3 and
 * importing the runtime client, tens of ms before the handler's module is
 * even looked at; a fork of a python that did this once starts in a few
 * ms. Likewise for nodejs*.x with `node`. A zygote is started at its
 * runtime's first instance and serves every function of that runtime: it holds the runtime client only, never a function's
 * code (see sandbox/zygote.c for what an instance shares with it).
 *
 * A fork is what an exec would have been only when nothing in the
 * function's configuration changes how the interpreter or the dynamic
 * loader start, since those have already started in the zygote. So an
 * instance is exec'd, as before, when
 *   - the function's own environment sets a variable read at start:
 *     PYTHON* (but PYTHONPATH, which zygote.py applies), NODE_* (but
 *     NODE_PATH, which zygote.js applies), LD_*, LC_*, LANG, LANGUAGE,
 *     HOME, MALLOC_*, GLIBC_TUNABLES, OPENSSL_*, SSL_CERT_*;
 *   - its code or a layer has a lib/ folder (LD_LIBRARY_PATH's
 *     /var/task/lib and /opt/lib: the loader reads that variable once, at
 *     start, and the zygote's start had no such folders);
 *   - the zygote cannot serve (no library, it died): sandbox_start execs.
 *
 * Each zygote has a pool of instances started ahead (sandbox/pool.c): a
 * cold start claims one when one is ready, and only the function's part
 * (its limits, code, layers, environment, handler import) is left on its
 * path. $TARN_FN_POOL sets how many wait per runtime (default
 * FN_POOL_DEFAULT, 0: none, at most 64); each costs a few MB of memory
 * (bench/RESULTS.md, "instance pool"). The pool fills from its first claim
 * on, so a server that runs no Python or Node.js function holds none.
 * A Python function's later cold starts fork its own template instead,
 * once it has one (templates.c).
 *
 * Invariants:
 *   (1) The zygote is started with an environment of its own, fixed here
 *       (never the server's): the defaults every python instance gets
 *       (registry.c conf_environment) that the interpreter reads at start.
 *   (2) The zygote's HOME names no folder (a root server's python must not
 *       read a user site folder of the host), and it has no
 *       LD_LIBRARY_PATH (nor loads libraries from /opt or /var/task of the
 *       host).
 */
#include "fn/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* what `python3 -c` runs in the zygote: runtimes/python/zygote.py, under
 * its /var/runtime name (padded: an instance's command line is written
 * over this one, in the same room) */
#define PY_LOADER                                                                    \
  "import sys;exec(compile(open(sys.argv[1]+'/python/zygote.py','rb').read(),"      \
  "'/var/runtime/python/zygote.py','exec'),{'__name__':'_tarn_zygote'})"

/* and `node -e`: runtimes/node/zygote.js, likewise */
#define NODE_LOADER                                                                  \
  "const M=require('module');const f='/var/runtime/node/zygote.js';"                \
  "const m=new M(f,null);m.filename=f;m.paths=[];"                                  \
  "m._compile(require('fs').readFileSync(process.argv[1]+'/node/zygote.js','utf8'),f)"

#define FN_POOL_DEFAULT 2

void fn__zygotes_open(fn_system *s)
{
  const char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin", "LANG=en_US.UTF-8",
                        "TZ=:UTC", "HOME=/nonexistent", NULL};
  const char *py[] = {"/usr/bin/python3", "-c", PY_LOADER, s->runtime_dir, NULL};
  s->zygote_python = sandbox_zygote_new(py, envp);
  /* --no-memory-reducer: V8's memory reducer runs full collections when
   * the allocation rate, measured over wall time, is low, which it is for
   * an instance that waited in the pool (sandbox/pool.c): each collection
   * writes, page by page, the heap shared with the zygote, on the Invoke's
   * path (bench/RESULTS.md, "instance pool"). Collections when the heap
   * grows are unchanged. */
  const char *node[] = {"/usr/bin/node", "--single-threaded", "--no-memory-reducer", "-e", NODE_LOADER,
                        s->runtime_dir, NULL};
  s->zygote_node = sandbox_zygote_new(node, envp);
  const char *env = getenv("TARN_FN_POOL");
  size_t size = env != NULL && env[0] != '\0' ? (size_t)strtoul(env, NULL, 10) : FN_POOL_DEFAULT;
  /* what scheduler.c gives every instance; a spec that differs is not served */
  sandbox_forward fw[2] = {{9001, s->runtime_socket, NULL}, {9000, s->platform_socket, NULL}};
  sandbox_pool_conf pc = {.runtime_dir = s->runtime_dir, .forwards = fw, .nforwards = 2,
                          .max_procs = FN_MAX_PROCS, .max_open_files = FN_MAX_OPEN_FILES,
                          .memory_mb = 128, .size = size};
  pc.name = "python";
  pc.zygote = s->zygote_python;
  s->pool_python = s->zygote_python != NULL ? sandbox_pool_new(&pc) : NULL;
  pc.name = "node";
  pc.zygote = s->zygote_node;
  s->pool_node = s->zygote_node != NULL ? sandbox_pool_new(&pc) : NULL;
}

sandbox_pool *fn__pool_for(fn_system *s, const sandbox_zygote *z)
{
  return z == NULL ? NULL : z == s->zygote_python ? s->pool_python : z == s->zygote_node ? s->pool_node : NULL;
}

void fn__zygotes_close(fn_system *s)
{
  /* the pools' instances first: they are the zygotes' forks */
  s->pool_python = sandbox_pool_free(s->pool_python);
  s->pool_node = sandbox_pool_free(s->pool_node);
  s->zygote_python = sandbox_zygote_free(s->zygote_python);
  s->zygote_node = sandbox_zygote_free(s->zygote_node);
}

static bool read_at_start(const char *name)
{
  static const char *const prefixes[] = {"LD_", "LC_", "MALLOC_", "GLIBC_TUNABLES", "OPENSSL_",
                                         "SSL_CERT_"};
  static const char *const names[] = {"LANG", "LANGUAGE", "HOME"};
  if (strncmp(name, "PYTHON", 6) == 0)
    return strcmp(name, "PYTHONPATH") != 0;
  if (strncmp(name, "NODE_", 5) == 0)
    return strcmp(name, "NODE_PATH") != 0;
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
      return true;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(name, names[i]) == 0)
      return true;
  return false;
}

static bool has_lib(const char *dir)
{
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/lib", dir);
  return lstat(path, &st) == 0;
}

sandbox_zygote *fn__zygote_for(fn_system *s, const conf *c)
{
  sandbox_zygote *z = str_starts(c->cfg.runtime, "python3") ? s->zygote_python
                     : str_starts(c->cfg.runtime, "nodejs") ? s->zygote_node
                                                            : NULL;
  if (z == NULL)
    return NULL;
  for (size_t i = 0; i < c->cfg.nenv; i++)
    if (read_at_start(c->cfg.env[i].name))
      return NULL;
  if (has_lib(c->code_dir))
    return NULL;
  for (size_t i = 0; i < c->nopt_dirs; i++)
    if (has_lib(c->opt_dirs[i]))
      return NULL;
  return z;
}
