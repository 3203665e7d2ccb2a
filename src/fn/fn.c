/* fn/fn.c -- the function system's life: open, start, stop, close, and the
 * small file helpers the other files share.
 *
 * Why apart: the registry, scheduler, invoker and Runtime API each own
 * their threads and records; one file decides in which order they come up
 * and go down, so no part of fn runs against another that is gone.
 *
 * Order of things (main.c): sandbox_system_init, fn_system_open (the
 * scheduler's threads start: synchronous invocations work from here on),
 * the Runtime API server on its socket, fn_system_start (the asynchronous
 * workers); at the end fn_system_stop, the servers stop, fn_system_close.
 *
 * States: open -> started -> stopping -> closed. Stop is idempotent and
 * close stops first.
 *
 * Invariants:
 *   (1) fn_system_close accepts a half-opened system: every failure of
 *       fn_system_open ends in it, and it undoes only what was made.
 *   (2) After fn_system_stop no invocation runs and none is accepted;
 *       queued asynchronous events stay on disk for the next start.
 *
 * Start reading at fn_system_open().
 */
#include "fn/internal.h"

#include "base/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fn__mkdirs(const char *path, err *e)
{
  char tmp[4096];
  size_t n = strlen(path);
  if (n >= sizeof tmp)
    return err_set(e, ERR_INVALID, "path too long '%s'", path);
  memcpy(tmp, path, n + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
      return err_set(e, err_from_errno(errno), "cannot create '%s': %s", tmp, strerror(errno));
    *p = '/';
  }
  if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
    return err_set(e, err_from_errno(errno), "cannot create '%s': %s", tmp, strerror(errno));
  return 0;
}

static void rmtree_at(int dfd, const char *name)
{
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    unlinkat(dfd, name, 0);
    return;
  }
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (de->d_type == DT_DIR)
      rmtree_at(fd, de->d_name);
    else if (unlinkat(fd, de->d_name, 0) != 0 && errno == EISDIR)
      rmtree_at(fd, de->d_name);
  }
  closedir(d);
  unlinkat(dfd, name, AT_REMOVEDIR);
}

void fn__rmtree(const char *path)
{
  rmtree_at(AT_FDCWD, path);
}

static uint64_t tree_size_at(int dfd, const char *name, int depth)
{
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return 0;
  if (!S_ISDIR(st.st_mode))
    return S_ISREG(st.st_mode) || S_ISLNK(st.st_mode) ? (uint64_t)st.st_size : 0;
  if (depth > 512)
    return 0;
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return 0;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return 0;
  }
  uint64_t total = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      total += tree_size_at(fd, de->d_name, depth + 1);
  closedir(d);
  return total;
}

uint64_t fn__tree_size(const char *path)
{
  return tree_size_at(AT_FDCWD, path, 0);
}

static char *dup_or_die(const char *s)
{
  char *d = xstrdup(s ? s : "");
  return d;
}

int fn_system_open(const fn_options *o, fn_system **out, err *e)
{
  fn_system *s = xcalloc(1, sizeof *s);
  s->data_dir = dup_or_die(o->data_dir);
  size_t n = strlen(s->data_dir) + 32;
  s->fn_dir = xmalloc(n);
  s->code_dir = xmalloc(n);
  s->log_dir = xmalloc(n);
  snprintf(s->fn_dir, n, "%s/fn", s->data_dir);
  snprintf(s->code_dir, n, "%s/fn/code", s->data_dir);
  snprintf(s->log_dir, n, "%s/fn/logs", s->data_dir);
  s->runtime_dir = dup_or_die(o->runtime_dir);
  s->java_runtime_dir = o->java_runtime_dir ? xstrdup(o->java_runtime_dir) : NULL;
  s->runtime_socket = dup_or_die(o->runtime_socket);
  s->platform_socket = dup_or_die(o->platform_socket);
  s->access_key = dup_or_die(o->access_key);
  s->secret_key = dup_or_die(o->secret_key);
  s->account_limit = o->account_concurrency ? o->account_concurrency
                                            : FN_DEFAULT_ACCOUNT_CONCURRENCY;
  s->idle_seconds = o->idle_seconds ? o->idle_seconds : 300;
  s->async_workers = o->async_workers ? o->async_workers : 8;
  s->async_retry_ms = o->async_retry_ms;
  s->pg = o->metadata;
  if (s->async_retry_ms == 0 && getenv("TARN_EVENT_RETRY_BASE_MS") != NULL)
    s->async_retry_ms = (uint32_t)strtoul(getenv("TARN_EVENT_RETRY_BASE_MS"), NULL, 10);
  if (s->async_retry_ms == 0)
    s->async_retry_ms = 1000;
  /* Debian's /usr/bin/python3 is a link to python3.X: which X names the
   * site-packages folder of a layer that python functions read. */
  ssize_t pn = readlink("/usr/bin/python3", s->host_python, sizeof s->host_python - 1);
  s->host_python[pn > 0 ? pn : 0] = '\0';
  if (strncmp(s->host_python, "python3.", 8) != 0 || strchr(s->host_python, '/') != NULL)
    s->host_python[0] = '\0';
  /* and /usr/bin/ruby to rubyX.Y: X.Y.0 names its gem folders */
  char ruby[32];
  ssize_t rn = readlink("/usr/bin/ruby", ruby, sizeof ruby - 1);
  ruby[rn > 0 ? rn : 0] = '\0';
  s->host_ruby[0] = '\0';
  if (strncmp(ruby, "ruby", 4) == 0 && strchr(ruby, '/') == NULL && strlen(ruby) < 12)
    snprintf(s->host_ruby, sizeof s->host_ruby, "%s.0", ruby + 4);
  s->epfd = -1;
  s->wake_fd = -1;
  const char *trace = getenv("TARN_TRACE_STARTS");
  s->trace_fd = trace != NULL && trace[0] != '\0'
                    ? open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)
                    : -1;
  fn__zygotes_open(s);
  fn__templates_open(s);
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_init(&s->write_lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->registered, &ca);
  pthread_cond_init(&s->reaper_cond, &ca);
  pthread_cond_init(&s->queue_cond, &ca);
  pthread_cond_init(&s->timer_cond, &ca);
  pthread_cond_init(&s->slot_cond, &ca);
  pthread_condattr_destroy(&ca);
  int rc;
  if ((rc = fn__mkdirs(s->code_dir, e)) != 0 || (rc = fn__mkdirs(s->log_dir, e)) != 0 ||
      (rc = fn__registry_open(s, e)) != 0 || (rc = fn__async_open(s, e)) != 0) {
    fn_system_close(s);
    return rc;
  }
  fn__code_sweep(s);
  if (s->pg != NULL) {
    fn__pg_code_sweep(s);
    s->pg_swept_ms = time_mono_ms();
  }
  if ((rc = fn__sched_start_threads(s, e)) != 0 ||
      (s->pg != NULL && (rc = fn__slots_start(s, e)) != 0)) {
    fn_system_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

int fn_system_start(fn_system *s, err *e)
{
  s->started = true; /* even when a worker failed to start: stop joins the others */
  return fn__async_start(s, e);
}

void fn_system_stop(fn_system *s)
{
  if (s == NULL)
    return;
  pthread_mutex_lock(&s->lock);
  bool was = s->stopping;
  s->stopping = true;
  pthread_cond_broadcast(&s->registered);
  pthread_mutex_unlock(&s->lock);
  if (was)
    return;
  if (s->sched_on)
    fn__sched_stop(s); /* ends invocations in flight: their workers wake */
  fn__slots_stop(s);   /* frees the slots of what ended */
  if (s->started)
    fn__async_stop(s);
}

fn_system *fn_system_close(fn_system *s)
{
  if (s == NULL)
    return NULL;
  fn_system_stop(s);
  pthread_mutex_lock(&s->lock);
  fn__templates_close(s);
  pthread_mutex_unlock(&s->lock);
  fn__zygotes_close(s);
  if (s->trace_fd >= 0)
    close(s->trace_fd);
  fn__registry_close(s);
  for (async_item *it = s->queue, *next; it != NULL; it = next) {
    next = it->next;
    free(it);
  }
  pthread_cond_destroy(&s->registered);
  pthread_cond_destroy(&s->templates_cond);
  free(s->tmpl_confs);
  pthread_cond_destroy(&s->reaper_cond);
  pthread_cond_destroy(&s->queue_cond);
  pthread_cond_destroy(&s->timer_cond);
  pthread_mutex_destroy(&s->lock);
  pthread_mutex_destroy(&s->write_lock);
  free(s->data_dir);
  free(s->fn_dir);
  free(s->code_dir);
  free(s->log_dir);
  free(s->runtime_dir);
  free(s->java_runtime_dir);
  free(s->runtime_socket);
  free(s->platform_socket);
  free(s->access_key);
  free(s->secret_key);
  free(s);
  return NULL;
}
