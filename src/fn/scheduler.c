/* fn/scheduler.c -- warm pools of sandboxed instances, admission by
 * concurrency, the timer of invocations' deadlines, the monitor of
 * instances' output and exits, idle reaping.
 *
 * Why: an invocation should land on a warm instance (no start-up) when one
 * is idle, start one otherwise, and never exceed the concurrency the
 * account and the function allow; instances that sit idle cost memory and
 * are reaped.
 *
 * An instance moves through these states (enum inst_state):
 *   STARTING  sandbox started with its first invocation assigned; the
 *             runtime's first GET next ends init (Init Duration) -> BUSY
 *   BUSY      one invocation assigned (handed to the runtime at GET next);
 *             its response or error -> IDLE (or DEAD when retired)
 *   IDLE      on its pool's idle stack; an invocation -> BUSY
 *   DEAD      killed (time-out, reaping, recycling, stop) or exited; the
 *             monitor reaps it, fails its invocation if any, and frees it
 *             once no Runtime API call uses it (refs)
 *
 * Invariants:
 *   (1) An instance has at most one invocation (in->inv); a pool hands out
 *       only IDLE instances.
 *   (2) Admission counts an invocation in f->active and s->active (and
 *       s->unreserved_active for functions without a reservation), and in
 *       f->users, from fn__sched_run's admission to fn__sched_complete, whatever
 *       the outcome.
 *   (3) Lock order: s->lock, then in->log_lock, then f->log_lock; an
 *       invoker's done callback and a parked GET next's answer (both under
 *       s->lock) may take their own locks (the HTTP server's), never
 *       s->lock.
 *   (3a) Whatever gives an instance an invocation or kills it calls
 *       fn__runtime_wake (runtime.c), which answers its parked GET next.
 *   (4) Nobody waits for an invocation here: fn__sched_run assigns it and
 *       returns; whatever ends it (the runtime's answer, init error, the
 *       instance's exit, the timer, stop) calls fn__sched_complete, which calls
 *       the invoker back exactly once and frees the invocation.
 *   (5) Every admitted invocation is on s->timers (sorted by deadline)
 *       until fn__sched_complete; one timer thread sleeps on a condition
 *       variable until the earliest deadline (no polling) and times out
 *       what passes it. The reaper wakes once a second to look at idle
 *       times.
 *
 * Start reading at fn__sched_run().
 */
#include "fn/internal.h"

#include "base/log.h"

#include "base/hash.h"
#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <time.h>
#include <unistd.h>

#define TAG_PIDFD 1u

static void abs_deadline(struct timespec *ts, int64_t mono_us)
{
  ts->tv_sec = (time_t)(mono_us / 1000000);
  ts->tv_nsec = (long)(mono_us % 1000000) * 1000;
}

/* ---- pools ---- */

pool *fn__sched_pool(fn_system *s, fn_entry *f, const char *version, conf *c)
{
  for (pool *p = f->pools; p != NULL; p = p->next)
    if (strcmp(p->version, version) == 0)
      return p;
  pool *p = xcalloc(1, sizeof *p);
  p->fn = f;
  snprintf(p->version, sizeof p->version, "%s", version);
  p->conf = c;
  fn__conf_ref(c);
  p->next = f->pools;
  f->pools = p;
  return p;
}

static void idle_remove(pool *p, instance *in)
{
  for (instance **pp = &p->idle; *pp != NULL; pp = &(*pp)->idle_next)
    if (*pp == in) {
      *pp = in->idle_next;
      in->idle_next = NULL;
      p->nidle--;
      return;
    }
}

static void pid_remove(fn_system *s, instance *in)
{
  for (instance **pp = &s->by_pid[(unsigned)in->pid % FN_PID_BUCKETS]; *pp != NULL;
       pp = &(*pp)->pid_next)
    if (*pp == in) {
      *pp = in->pid_next;
      return;
    }
}

instance *fn__sched_by_pid(fn_system *s, int pid)
{
  for (instance *in = s->by_pid[(unsigned)pid % FN_PID_BUCKETS]; in != NULL; in = in->pid_next)
    if (in->pid == pid)
      return in;
  return NULL;
}

void fn__sched_kill(fn_system *s, instance *in)
{
  if (in->state == INST_IDLE)
    idle_remove(in->pool, in);
  in->state = INST_DEAD;
  if (!in->killed && in->sb != NULL) {
    in->killed = true;
    sandbox_kill(in->sb);
  }
  fn__runtime_wake(s, in);
}

void fn__sched_recycle(fn_system *s, pool *p)
{
  for (instance *in = p->all; in != NULL; in = in->all_next) {
    if (in->state == INST_IDLE)
      fn__sched_kill(s, in);
    else
      in->retire = true;
  }
}

void fn__sched_drop_entry(fn_system *s, fn_entry *f)
{
  for (pool *p = f->pools; p != NULL; p = p->next)
    fn__sched_recycle(s, p);
}

void fn__sched_release(fn_system *s, instance *in)
{
  in->inv = NULL;
  if (in->state == INST_DEAD)
    return;
  if (in->retire || in->conf != in->pool->conf || in->pool->fn->deleted || s->stopping) {
    fn__sched_kill(s, in);
    return;
  }
  in->state = INST_IDLE;
  in->idle_since_ms = time_mono_ms();
  in->idle_next = in->pool->idle;
  in->pool->idle = in;
  in->pool->nidle++;
}

void fn__instance_unref(fn_system *s, instance *in)
{
  if (--in->refs > 0)
    return;
  fn_entry *f = in->pool->fn;
  fn__conf_unref(in->conf);
  free(in->init_error);
  free(in->init_error_type);
  pthread_mutex_destroy(&in->log_lock);
  free(in);
  fn__entry_release(s, f);
}

/* ---- logs of instances ---- */

void fn__sched_drain_log(fn_system *s, instance *in)
{
  char chunk[16384];
  pthread_mutex_lock(&in->log_lock);
  for (;;) {
    ssize_t n = read(in->log_rd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    fn__logs_write(s, in->pool->fn, in->log_inv, chunk, (size_t)n);
  }
  pthread_mutex_unlock(&in->log_lock);
}

/* ---- the timer ---- */

/* Inserts inv by deadline_us, scanning from the latest (new deadlines are
 * mostly the latest); wakes the timer when inv becomes the earliest. */
static void timer_insert(fn_system *s, invoc *inv)
{
  invoc *after = s->timers_tail;
  while (after != NULL && after->deadline_us > inv->deadline_us)
    after = after->timer_prev;
  inv->timer_prev = after;
  inv->timer_next = after != NULL ? after->timer_next : s->timers;
  if (inv->timer_next != NULL)
    inv->timer_next->timer_prev = inv;
  else
    s->timers_tail = inv;
  if (after != NULL) {
    after->timer_next = inv;
  } else {
    s->timers = inv;
    pthread_cond_signal(&s->timer_cond);
  }
}

static void timer_remove(fn_system *s, invoc *inv)
{
  if (inv->timer_prev != NULL)
    inv->timer_prev->timer_next = inv->timer_next;
  else
    s->timers = inv->timer_next;
  if (inv->timer_next != NULL)
    inv->timer_next->timer_prev = inv->timer_prev;
  else
    s->timers_tail = inv->timer_prev;
  inv->timer_prev = NULL;
  inv->timer_next = NULL;
}

void fn__sched_timer_set(fn_system *s, invoc *inv, int64_t deadline_us)
{
  timer_remove(s, inv);
  inv->deadline_us = deadline_us;
  timer_insert(s, inv);
}

/* ---- the end of an invocation ---- */

static void unadmit(fn_system *s, fn_entry *f)
{
  if (f->reserved < 0)
    s->unreserved_active--;
  f->active--;
  s->active--;
}

/* Gives the invoker its result (under lock). */
static void call_back(invoc *inv, enum invoc_result r)
{
  if (inv->running != NULL)
    *inv->running = NULL;
  if (inv->done == NULL)
    return;
  fn_invoke_result res = {0};
  err e = {0};
  int rc = 0;
  char tail[FN_LOG_TAIL_B64];
  if (r == INV_STOPPED) {
    rc = err_set(&e, ERR_UNAVAILABLE, "tarn is stopping");
  } else {
    res.status = 200;
    res.payload = inv->response;
    buf_init(&inv->response, 0);
    res.function_error = r == INV_OK ? NULL : "Unhandled";
    res.executed_version = inv->pool->version;
    res.request_id = inv->id;
    if (inv->want_tail) {
      fn__logs_tail_b64(inv, tail);
      res.log_tail_b64 = tail;
    }
  }
  inv->done(inv->done_ctx, rc, &res, rc ? &e : NULL);
  buf_release(&res.payload); /* moved out by a callback that keeps it */
}

/* $TARN_TRACE_STARTS: where a cold start's time went, as ms from the
 * Invoke's admission to the end of each step, on one line (bench/README). */
static void trace_start(fn_system *s, const instance *in, const invoc *inv, int64_t now)
{
  char line[1024];
  int n = snprintf(line, sizeof line, "cold %s%s %s queue=%.3f", in->conf->cfg.runtime,
                   sandbox_forked(in->sb) ? "/template" : sandbox_pooled(in->sb) ? "/pool" : "", in->id,
                   (double)(in->started_us - inv->start_us) / 1000.0);
  sandbox_phase ph[SANDBOX_PHASES];
  size_t np = sandbox_phases(in->sb, ph);
  for (size_t i = 0; i < np && n < (int)sizeof line - 64; i++)
    if (ph[i].us != 0)
      n += snprintf(line + n, sizeof line - (size_t)n, " %s=%.3f", ph[i].name,
                    (double)(ph[i].us - inv->start_us) / 1000.0);
  if (n < (int)sizeof line - 128)
    n += snprintf(line + n, sizeof line - (size_t)n, " registered=%.3f next=%.3f result=%.3f\n",
                  (double)(in->registered_us - inv->start_us) / 1000.0,
                  (double)(in->next_us - inv->start_us) / 1000.0,
                  (double)(now - inv->start_us) / 1000.0);
  (void)!write(s->trace_fd, line, (size_t)n);
}

void fn__sched_complete(fn_system *s, instance *in, invoc *inv, enum invoc_result r,
                    const char *status)
{
  int64_t now = time_mono_us();
  int64_t from = inv->handed ? inv->handed_us : inv->start_us;
  double ms = (double)(now - from) / 1000.0;
  if (inv->cold && s->trace_fd >= 0 && in != NULL && in->sb != NULL)
    trace_start(s, in, inv, now);
  fn_entry *f = inv->pool->fn;
  uint64_t max_mem = in != NULL && in->sb != NULL ? sandbox_max_memory(in->sb) : 0;
  char init[64] = "";
  if (inv->cold) /* a template's fork restores rather than inits, as SnapStart reports it */
    snprintf(init, sizeof init, "%s Duration: %.2f ms\t",
             in != NULL && in->sb != NULL && sandbox_forked(in->sb) ? "Restore" : "Init", inv->init_ms);
  char stat[32] = "";
  if (status != NULL)
    snprintf(stat, sizeof stat, "Status: %s\t", status);
  if (in != NULL)
    pthread_mutex_lock(&in->log_lock);
  fn__logs_printf(s, f, inv,
              "END RequestId: %s\nREPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %llu "
              "ms\tMemory Size: %u MB\tMax Memory Used: %llu MB\t%s%s\n",
              inv->id, inv->id, ms, (unsigned long long)(ms < 1 ? 1 : (uint64_t)(ms + 0.999)),
              inv->conf->cfg.memory_mb, (unsigned long long)((max_mem + (1 << 20) - 1) >> 20),
              init, stat);
  if (in != NULL) {
    if (in->log_inv == inv)
      in->log_inv = NULL;
    pthread_mutex_unlock(&in->log_lock);
    if (in->inv == inv)
      in->inv = NULL;
  }
  s->c.invocations++;
  if (r != INV_OK)
    s->c.errors++;
  fn__metrics_duration(s, ms);
  fn__metrics_function(f, ms, r != INV_OK);
  timer_remove(s, inv);
  if (inv->slot[0] != '\0')
    fn__slot_release_later(s, inv->slot);
  call_back(inv, r);
  unadmit(s, f);
  fn__entry_release(s, f); /* may free f: last */
  fn__invoc_free(inv);
}

/* An error document the platform writes (time-out, crash, OOM). */
static void fail_payload(invoc *inv, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_payload(invoc *inv, const char *type, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  buf_reset(&inv->response);
  if (type != NULL)
    buf_printf(&inv->response, "{\"errorType\":\"%s\",\"errorMessage\":\"%s\"}", type, msg);
  else
    buf_printf(&inv->response, "{\"errorMessage\":\"%s\"}", msg);
}

/* ---- starting instances ---- */

static void random_hex(char *out, size_t bytes)
{
  uint8_t b[16];
  if (bytes > sizeof b)
    bytes = sizeof b;
  random_bytes(b, bytes);
  hex_encode(b, bytes, out);
}

sandbox_spec fn__conf_spec(const fn_system *s, const conf *c)
{
  return (sandbox_spec){
      .code_dir = c->code_dir,
      .runtime_dir = c->runtime_dir != NULL ? c->runtime_dir : s->runtime_dir,
      .opt_dirs = c->opt_dirs,
      .nopt_dirs = c->nopt_dirs,
      .argv = c->argv,
      .envp = c->envp,
      .memory_mb = c->cfg.memory_mb,
      .tmp_mb = c->cfg.ephemeral_mb,
      .max_procs = FN_MAX_PROCS,
      .max_open_files = FN_MAX_OPEN_FILES,
      .max_file_bytes = (uint64_t)c->cfg.ephemeral_mb << 20,
      .log_fd = -1,
  };
}

/* Starts an instance of p for inv (lock held on entry and return, dropped
 * while the sandbox starts). On an error inv is still pending and has no
 * instance; 0 also when inv ended while the lock was dropped. */
static int instance_start(fn_system *s, pool *p, invoc *inv, err *e)
{
  instance *in = xcalloc(1, sizeof *in);
  in->pool = p;
  in->conf = p->conf;
  fn__conf_ref(in->conf);
  in->state = INST_STARTING;
  in->inv = inv;
  in->refs = 1;
  in->pidfd = -1;
  in->log_rd = -1;
  pthread_mutex_init(&in->log_lock, NULL);
  memcpy(in->id, "i-", 2);
  random_hex(in->id + 2, 8);
  char day[16];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(day, sizeof day, "%Y/%m/%d", &tm);
  char hex[33];
  random_hex(hex, 16);
  snprintf(in->stream, sizeof in->stream, "%s/[%s]%s", day, in->conf->cfg.version, hex);
  fn_entry *f = p->fn;
  f->users++;
  p->ninstances++;
  s->instances++;
  in->all_next = p->all;
  p->all = in;
  inv->inst = in;
  conf *c = in->conf;
  sandbox_template *tmpl = fn__template_for(s, c);
  pthread_mutex_unlock(&s->lock);

  /* Outside the lock: the environment and the sandbox. */
  const char **envp = xcalloc(c->nenvp + 2, sizeof *envp);
  char stream_env[128];
  memcpy(envp, c->envp, c->nenvp * sizeof *envp);
  snprintf(stream_env, sizeof stream_env, "AWS_LAMBDA_LOG_STREAM_NAME=%s", in->stream);
  envp[c->nenvp] = stream_env;
  int pipefd[2];
  int rc = 0;
  sandbox *sb = NULL;
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    rc = err_set(e, ERR_INTERNAL, "cannot make a pipe: %s", strerror(errno));
  } else {
    sandbox_forward fw[2] = {{9001, s->runtime_socket, NULL}, {9000, s->platform_socket, NULL}};
    sandbox_spec spec = fn__conf_spec(s, c);
    spec.id = in->id + 2;
    spec.envp = envp;
    spec.forwards = fw;
    spec.nforwards = 2;
    spec.log_fd = pipefd[1];
    spec.zygote = fn__zygote_for(s, c);
    in->started_us = time_mono_us();
    /* a fork of the function's template when it has one (templates.c);
     * else an instance started ahead when one is ready (sandbox/pool.c);
     * any failure of theirs leaves the usual start */
    err pe = {0};
    bool forked = false;
    if (tmpl != NULL) {
      sandbox_forward tfw[1] = {{9001, s->runtime_socket, "AWS_LAMBDA_RUNTIME_API"}};
      sandbox_spec fspec = spec;
      fspec.forwards = tfw;
      fspec.nforwards = 1;
      forked = sandbox_template_fork(tmpl, &fspec, &sb, &pe) == 0;
      if (!forked)
        log_warn("function '%s': a fork of its template failed, its instance starts the usual way: %s",
                 f->name, pe.msg);
      if (!forked && !sandbox_template_alive(tmpl)) {
        pthread_mutex_lock(&s->lock);
        fn__template_gone(s, c, tmpl);
        pthread_mutex_unlock(&s->lock);
      }
      tmpl = sandbox_template_release(tmpl);
    }
    if (!forked && sandbox_pool_claim(fn__pool_for(s, spec.zygote), &spec, &sb, &pe) != 0)
      rc = sandbox_start(&spec, &sb, e);
    close(pipefd[1]);
    if (rc != 0) {
      close(pipefd[0]);
    } else {
      in->log_rd = pipefd[0];
      fcntl(in->log_rd, F_SETFL, fcntl(in->log_rd, F_GETFL) | O_NONBLOCK);
      in->pid = sandbox_pid(sb);
      in->pidfd = pidfd_open(in->pid, 0);
      if (in->pidfd < 0) {
        rc = err_set(e, ERR_INTERNAL, "cannot watch the instance: %s", strerror(errno));
        sandbox_free(sb);
        sb = NULL;
        close(in->log_rd);
        in->log_rd = -1;
      }
    }
  }
  free(envp);

  pthread_mutex_lock(&s->lock);
  if (rc != 0) {
    /* Unlink the half-made instance; its invocation was never handed, but
     * may have ended meanwhile (time-out, stop): then it is gone, and
     * ending it was the answer. */
    for (instance **pp = &p->all; *pp != NULL; pp = &(*pp)->all_next)
      if (*pp == in) {
        *pp = in->all_next;
        break;
      }
    p->ninstances--;
    s->instances--;
    bool pending = in->inv == inv;
    if (pending)
      inv->inst = NULL;
    in->inv = NULL;
    fn__instance_unref(s, in);
    return pending ? err_wrap(e, "cannot start an instance of '%s'", f->name) : 0;
  }
  in->sb = sb;
  in->registered_us = time_mono_us();
  in->pid_next = s->by_pid[(unsigned)in->pid % FN_PID_BUCKETS];
  s->by_pid[(unsigned)in->pid % FN_PID_BUCKETS] = in;
  s->c.instances_started++;
  s->c.cold_starts++;
  f->stats.cold_starts++;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)in};
  epoll_ctl(s->epfd, EPOLL_CTL_ADD, in->log_rd, &ev);
  in->log_open = true;
  ev.data.u64 = (uint64_t)(uintptr_t)in | TAG_PIDFD;
  epoll_ctl(s->epfd, EPOLL_CTL_ADD, in->pidfd, &ev);
  pthread_cond_broadcast(&s->registered);
  fn__runtime_registered(s, in);
  /* Killed while starting (time-out, update, stop)? */
  if (in->state == INST_DEAD || s->stopping) {
    in->killed = true;
    sandbox_kill(sb);
  }
  return 0;
}

/* ---- admission and the wait ---- */

static int admit(fn_system *s, fn_entry *f, invoc *inv, err *e)
{
  if (f->reserved >= 0) {
    /* a slot of the cluster's (pg_slots.c) is the admission itself */
    if (inv->slot[0] == '\0' && f->active >= (uint32_t)f->reserved) {
      s->c.throttles++;
      inv->throttled_reserved = true;
      return err_set(e, ERR_THROTTLED, "Rate Exceeded.");
    }
  } else {
    uint32_t limit = s->account_limit > s->reserved_sum ? s->account_limit - s->reserved_sum : 0;
    if (s->unreserved_active >= limit) {
      s->c.throttles++;
      return err_set(e, ERR_THROTTLED, "Rate Exceeded.");
    }
    s->unreserved_active++;
  }
  f->active++;
  s->active++;
  return 0;
}

static void timed_out(fn_system *s, invoc *inv)
{
  instance *in = inv->inst;
  char ts[25];
  time_format_iso8601_ms(time_now_ms(), ts);
  double secs = (double)inv->conf->cfg.timeout_s;
  fail_payload(inv, NULL, "%s %s Task timed out after %.2f seconds", ts, inv->id, secs);
  if (in != NULL) {
    pthread_mutex_lock(&in->log_lock);
    fn__logs_printf(s, inv->pool->fn, inv, "%s %s Task timed out after %.2f seconds\n", ts, inv->id,
                secs);
    pthread_mutex_unlock(&in->log_lock);
  }
  s->c.timeouts++;
  fn__sched_complete(s, in, inv, INV_FAILED, "timeout");
  if (in != NULL)
    fn__sched_kill(s, in);
}

int fn__sched_run(fn_system *s, fn_entry *f, pool *p, invoc *inv, err *e)
{
  if (s->stopping)
    return err_set(e, ERR_UNAVAILABLE, "tarn is stopping");
  int rc = admit(s, f, inv, e);
  if (rc != 0)
    return rc;
  f->users++;
  inv->pool = p;
  inv->conf = p->conf;
  inv->deadline_us = inv->start_us + FN_INIT_TIMEOUT_MS * 1000 +
                     (int64_t)inv->conf->cfg.timeout_s * 1000000;
  timer_insert(s, inv);
  instance *in = NULL;
  while (p->idle != NULL) {
    in = p->idle;
    p->idle = in->idle_next;
    in->idle_next = NULL;
    p->nidle--;
    if (in->conf == p->conf && in->state == INST_IDLE)
      break;
    in->state = INST_BUSY; /* so fn__sched_kill does not look for it on the stack */
    fn__sched_kill(s, in);
    in = NULL;
  }
  if (in != NULL) {
    in->state = INST_BUSY;
    in->inv = inv;
    inv->inst = in;
    fn__runtime_wake(s, in);
  } else if ((rc = instance_start(s, p, inv, e)) != 0) {
    timer_remove(s, inv);
    unadmit(s, f);
    fn__entry_release(s, f);
    return rc;
  }
  return 0;
}

/* Times out what passes its deadline; sleeps until the earliest one. */
static void *timer_main(void *arg)
{
  fn_system *s = arg;
  pthread_mutex_lock(&s->lock);
  while (!s->stopping) {
    invoc *inv = s->timers;
    if (inv == NULL) {
      pthread_cond_wait(&s->timer_cond, &s->lock);
    } else if (time_mono_us() >= inv->deadline_us) {
      timed_out(s, inv);
    } else {
      struct timespec ts;
      abs_deadline(&ts, inv->deadline_us);
      pthread_cond_timedwait(&s->timer_cond, &s->lock, &ts);
    }
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* ---- the monitor ---- */

static void instance_exited(fn_system *s, instance *in)
{
  fn__sched_drain_log(s, in);
  sandbox_exit ex = {0};
  err e = {0};
  sandbox_wait(in->sb, 1000, &ex, &e);
  pthread_mutex_lock(&s->lock);
  if (in->state == INST_IDLE)
    idle_remove(in->pool, in);
  in->state = INST_DEAD;
  pid_remove(s, in);
  pool *p = in->pool;
  for (instance **pp = &p->all; *pp != NULL; pp = &(*pp)->all_next)
    if (*pp == in) {
      *pp = in->all_next;
      break;
    }
  p->ninstances--;
  s->instances--;
  s->c.instances_reaped++;
  invoc *inv = in->inv;
  if (inv != NULL) {
    if (in->init_error != NULL) {
      buf_reset(&inv->response);
      buf_puts(&inv->response, in->init_error);
    } else if (ex.oom_killed) {
      fail_payload(inv, "Runtime.OutOfMemory",
                   "RequestId: %s Error: Runtime exited with error: signal: killed", inv->id);
    } else if (ex.exited && ex.status > 128) {
      fail_payload(inv, "Runtime.ExitError",
                   "RequestId: %s Error: Runtime exited with error: signal: %s", inv->id,
                   ex.status - 128 == SIGKILL ? "killed" : strsignal(ex.status - 128));
    } else {
      fail_payload(inv, "Runtime.ExitError",
                   "RequestId: %s Error: Runtime exited with error: exit status %d", inv->id,
                   ex.status);
    }
    fn__sched_complete(s, in, inv, INV_FAILED, ex.oom_killed ? "error\tError Type: Runtime.OutOfMemory"
                                                         : "error\tError Type: Runtime.ExitError");
  }
  in->inv = NULL;
  fn__runtime_wake(s, in);
  sandbox *sb = in->sb;
  in->sb = NULL;
  pthread_mutex_unlock(&s->lock);

  if (in->log_open)
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, in->log_rd, NULL);
  epoll_ctl(s->epfd, EPOLL_CTL_DEL, in->pidfd, NULL);
  pthread_mutex_lock(&in->log_lock);
  close(in->log_rd);
  in->log_rd = -1;
  pthread_mutex_unlock(&in->log_lock);
  close(in->pidfd);
  sandbox_free(sb);
  pthread_mutex_lock(&s->lock);
  fn__instance_unref(s, in);
  pthread_mutex_unlock(&s->lock);
}

static void *monitor_main(void *arg)
{
  fn_system *s = arg;
  struct epoll_event evs[64];
  int64_t give_up = 0; /* once stopping: leave by then even if an instance lingers */
  for (;;) {
    int n = epoll_wait(s->epfd, evs, 64, give_up ? 100 : -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    /* Logs first, exits after: an exit frees its instance, whose log may
     * have an event in the same batch (an instance's log and pidfd often
     * end together). Once freed, it has no event in a later batch: its fds
     * left the epoll set first. */
    for (int i = 0; i < n; i++) {
      if (evs[i].data.u64 == 0) {
        uint64_t v;
        if (read(s->wake_fd, &v, sizeof v) < 0) {
          /* nothing to read: another wake-up took it */
        }
        give_up = time_mono_ms() + 5000;
        continue;
      }
      if (evs[i].data.u64 & TAG_PIDFD)
        continue;
      instance *in = (instance *)(uintptr_t)evs[i].data.u64;
      fn__sched_drain_log(s, in);
      if ((evs[i].events & (EPOLLHUP | EPOLLERR)) && !(evs[i].events & EPOLLIN)) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, in->log_rd, NULL);
        in->log_open = false;
      }
    }
    for (int i = 0; i < n; i++)
      if (evs[i].data.u64 & TAG_PIDFD)
        instance_exited(s, (instance *)(uintptr_t)(evs[i].data.u64 & ~(uint64_t)TAG_PIDFD));
    if (give_up) {
      pthread_mutex_lock(&s->lock);
      bool none = s->instances == 0;
      pthread_mutex_unlock(&s->lock);
      if (none || time_mono_ms() > give_up)
        break;
    }
  }
  return NULL;
}

/* ---- the reaper ---- */

static void *reaper_main(void *arg)
{
  fn_system *s = arg;
  pthread_mutex_lock(&s->lock);
  while (!s->stopping) {
    struct timespec ts;
    abs_deadline(&ts, time_mono_us() + 1000000);
    pthread_cond_timedwait(&s->reaper_cond, &s->lock, &ts);
    fn__runtime_expire(s, time_mono_us());
    int64_t cutoff = time_mono_ms() - (int64_t)s->idle_seconds * 1000;
    for (size_t b = 0; b < FN_HASH_BUCKETS; b++)
      for (fn_entry *f = s->table[b]; f != NULL; f = f->hnext)
        for (pool *p = f->pools; p != NULL; p = p->next)
          for (instance *in = p->idle, *next; in != NULL; in = next) {
            next = in->idle_next;
            if (in->idle_since_ms < cutoff)
              fn__sched_kill(s, in);
          }
    fn__templates_sweep(s, cutoff);
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

int fn__sched_start_threads(fn_system *s, err *e)
{
  s->epfd = epoll_create1(EPOLL_CLOEXEC);
  s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->epfd < 0 || s->wake_fd < 0)
    return err_set(e, ERR_INTERNAL, "cannot make the instance monitor: %s", strerror(errno));
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
  epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake_fd, &ev);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 256 << 10);
  if (pthread_create(&s->monitor, &at, monitor_main, s) != 0 ||
      pthread_create(&s->reaper, &at, reaper_main, s) != 0 ||
      pthread_create(&s->timer, &at, timer_main, s) != 0) {
    pthread_attr_destroy(&at);
    return err_set(e, ERR_INTERNAL, "cannot start the scheduler threads");
  }
  pthread_attr_destroy(&at);
  s->sched_on = true;
  return 0;
}

void fn__sched_stop(fn_system *s)
{
  pthread_mutex_lock(&s->lock);
  /* End every invocation (their invokers hear ERR_UNAVAILABLE now), then
   * kill every instance. */
  while (s->timers != NULL)
    fn__sched_complete(s, s->timers->inst, s->timers, INV_STOPPED, "error");
  for (size_t b = 0; b < FN_HASH_BUCKETS; b++)
    for (fn_entry *f = s->table[b]; f != NULL; f = f->hnext)
      for (pool *p = f->pools; p != NULL; p = p->next)
        for (instance *in = p->all; in != NULL; in = in->all_next)
          fn__sched_kill(s, in);
  fn__runtime_expire(s, INT64_MAX);
  pthread_cond_broadcast(&s->reaper_cond);
  pthread_cond_broadcast(&s->timer_cond);
  pthread_mutex_unlock(&s->lock);
  pthread_join(s->reaper, NULL);
  pthread_join(s->timer, NULL);
  uint64_t one = 1;
  if (write(s->wake_fd, &one, sizeof one) < 0) {
    /* cannot happen with an eventfd below its maximum */
  }
  pthread_join(s->monitor, NULL);
  close(s->epfd);
  close(s->wake_fd);
}
