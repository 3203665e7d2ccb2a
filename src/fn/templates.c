/* fn/templates.c -- which function versions get a template, and when.
 *
 * Why: a Python or Node.js function's cold start, even from the pool (sandbox/pool.c),
 * imports its handler's module on the invocation's path. A template
 * (sandbox/template.c) is that import done once, in the function's own
 * sandbox; later cold starts of the same version fork it instead. This
 * file decides which configurations (function versions) hold one.
 *
 * Policy:
 *   - Only a configuration a zygote serves (zygote.c: Python or Node.js,
 *     whose environment and folders do not change how the interpreter
 *     starts) gets one; the other runtimes start as before.
 *   - Its second cold start starts the build (FN_TEMPLATE_AFTER), in a
 *     thread of its own, in parallel with that start, which goes the usual
 *     way: a version that started once and was never needed again (a
 *     one-off, or each of a thousand functions invoked once) costs no
 *     template, and the build does not compete with the starts of new
 *     functions. Cold starts after the template is ready fork it; a fork
 *     that fails falls back to the usual start.
 *   - $TARN_FN_TEMPLATES configurations hold or build one at once
 *     (default FN_TEMPLATES_DEFAULT; 0: none); each costs about the memory
 *     its import took (bench/RESULTS.md, "templates"). When all are taken,
 *     the one forked least recently gives its place up.
 *   - A template whose code fails to load, or that ends, is not built
 *     again for that configuration (its instances start the usual way and
 *     report the error as they always did).
 *   - A template not forked for $TARN_FN_IDLE_SECONDS goes, as an idle
 *     instance does (the reaper, scheduler.c); the next cold start builds
 *     it again.
 *   - A configuration is immutable: an update makes a new one, which gets
 *     a template of its own; the old one goes when the old configuration
 *     is freed (after its last instance), or is evicted.
 *   - The template's own output (what the import prints) is not kept: each
 *     fork's log is its own from the fork on. Lambda likewise logs a
 *     SnapStart version's initialisation apart from its instances.
 *
 * Invariants:
 *   (1) Under fn_system.lock: every conf's tmpl fields, tmpl_confs.
 *   (2) A conf in tmpl_confs holds no reference to it (it would never be
 *       freed); fn__template_drop unlinks it when it is freed, and tmpl_sys
 *       says from which system.
 *   (3) A build holds a reference to its conf until it ends, and close
 *       waits for every build.
 */
#include "fn/internal.h"

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/text.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FN_TEMPLATES_DEFAULT 4
#define FN_TEMPLATE_READY_MS 10000 /* Lambda's limit for a function's init */
#define FN_TEMPLATE_AFTER 2        /* cold starts of a version before it gets one */

void fn__templates_open(fn_system *s)
{
  const char *env = getenv("TARN_FN_TEMPLATES");
  unsigned long n = env != NULL && env[0] != '\0' ? strtoul(env, NULL, 10) : FN_TEMPLATES_DEFAULT;
  s->templates_max = n > 64 ? 64 : (uint32_t)n;
  s->tmpl_confs = s->templates_max > 0 ? xcalloc(s->templates_max, sizeof *s->tmpl_confs) : NULL;
  s->ntmpl_confs = 0;
  s->templates_building = 0;
  pthread_cond_init(&s->templates_cond, NULL);
}

void fn__templates_close(fn_system *s)
{
  while (s->templates_building > 0)
    pthread_cond_wait(&s->templates_cond, &s->lock);
}

static void unlink_conf(fn_system *s, conf *c)
{
  for (uint32_t i = 0; i < s->ntmpl_confs; i++)
    if (s->tmpl_confs[i] == c) {
      s->tmpl_confs[i] = s->tmpl_confs[--s->ntmpl_confs];
      break;
    }
  c->tmpl_sys = NULL;
}

void fn__template_drop(conf *c)
{
  if (c->tmpl_sys != NULL)
    unlink_conf(c->tmpl_sys, c);
  c->tmpl = sandbox_template_release(c->tmpl);
}

typedef struct build {
  fn_system *s;
  conf *c;
  sandbox_zygote *zygote;
} build;

static void *build_main(void *arg)
{
  build *b = arg;
  fn_system *s = b->s;
  conf *c = b->c;
  sandbox_zygote *zygote = b->zygote;
  free(b);
  char id[24];
  uint8_t r[6];
  random_bytes(r, sizeof r);
  memcpy(id, "t-", 2);
  hex_encode(r, sizeof r, id + 2);
  int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  /* the platform endpoint is the template's: its forks reach it through
   * the network namespace they share with it (sandbox/shell.c) */
  sandbox_forward fw[1] = {{9000, s->platform_socket, NULL}};
  sandbox_spec spec = fn__conf_spec(s, c);
  spec.id = id;
  spec.forwards = fw;
  spec.nforwards = 1;
  spec.log_fd = null;
  spec.zygote = zygote;
  sandbox_template *t = NULL;
  err e = {0};
  int rc = null >= 0 ? sandbox_template_new(&spec, FN_TEMPLATE_READY_MS, &t, &e) : -1;
  if (null >= 0)
    close(null);
  pthread_mutex_lock(&s->lock);
  if (rc == 0 && c->tmpl_sys == s && !s->stopping) {
    c->tmpl = t;
    c->tmpl_state = FN_TMPL_READY;
    c->tmpl_used_ms = time_mono_ms();
  } else {
    if (rc != 0)
      log_warn("function '%s': no template, its instances start the usual way: %s", c->cfg.name,
               e.msg[0] ? e.msg : "cannot open /dev/null");
    sandbox_template_release(t);
    c->tmpl_state = FN_TMPL_FAILED;
    if (c->tmpl_sys == s)
      unlink_conf(s, c);
  }
  s->templates_building--;
  pthread_cond_broadcast(&s->templates_cond);
  fn__conf_unref(c); /* (3) */
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* Makes room for one more: the ready template forked least recently goes. */
static bool make_room(fn_system *s)
{
  if (s->ntmpl_confs < s->templates_max)
    return true;
  conf *oldest = NULL;
  for (uint32_t i = 0; i < s->ntmpl_confs; i++) {
    conf *c = s->tmpl_confs[i];
    if (c->tmpl_state == FN_TMPL_READY && (oldest == NULL || c->tmpl_used_ms < oldest->tmpl_used_ms))
      oldest = c;
  }
  if (oldest == NULL)
    return false; /* all of them are building */
  fn__template_drop(oldest);
  oldest->tmpl_state = FN_TMPL_NONE;
  return true;
}

sandbox_template *fn__template_for(fn_system *s, conf *c)
{
  sandbox_zygote *zygote = fn__zygote_for(s, c);
  if (s->templates_max == 0 || s->stopping || zygote == NULL)
    return NULL;
  if (c->tmpl_state == FN_TMPL_READY) {
    c->tmpl_used_ms = time_mono_ms();
    return sandbox_template_ref(c->tmpl);
  }
  /* (a version started once may never start again: see the top) */
  if (c->tmpl_state != FN_TMPL_NONE || ++c->tmpl_cold < FN_TEMPLATE_AFTER || !make_room(s))
    return NULL;
  build *b = xcalloc(1, sizeof *b);
  b->s = s;
  b->c = c;
  b->zygote = zygote;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_t th;
  fn__conf_ref(c); /* (3) */
  if (pthread_create(&th, &at, build_main, b) != 0) {
    fn__conf_unref(c);
    free(b);
  } else {
    c->tmpl_state = FN_TMPL_BUILDING;
    c->tmpl_sys = s;
    s->tmpl_confs[s->ntmpl_confs++] = c;
    s->templates_building++;
  }
  pthread_attr_destroy(&at);
  return NULL;
}

void fn__templates_sweep(fn_system *s, int64_t cutoff_ms)
{
  for (uint32_t i = 0; i < s->ntmpl_confs;) {
    conf *c = s->tmpl_confs[i];
    if (c->tmpl_state == FN_TMPL_READY && c->tmpl_used_ms < cutoff_ms) {
      fn__template_drop(c); /* unlinks c: the same i holds the next one */
      c->tmpl_state = FN_TMPL_NONE;
    } else {
      i++;
    }
  }
}

void fn__template_gone(fn_system *s, conf *c, sandbox_template *t)
{
  if (c->tmpl == t && t != NULL) {
    fn__template_drop(c);
    c->tmpl_state = FN_TMPL_FAILED;
  }
}
