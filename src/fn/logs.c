/* fn/logs.c -- each function's log: what its instances print, framed by the
 * START, END and REPORT lines Lambda writes, in DATA/fn/logs/NAME.log.
 *
 * Why a file: a function's log outlives its instances and the server, and a
 * file per function with one rotation keeps it bounded (FN_LOG_FILE_MAX per
 * file, two files) without a log service.
 *
 * Invariants:
 *   (1) Each write is one write(2) to an O_APPEND file, under the entry's
 *       log_lock, so lines of concurrent instances never interleave inside
 *       one chunk.
 *   (2) An invocation's tail ring (LogType Tail) gets the same bytes, from
 *       its START line to its REPORT line; callers hold the instance's
 *       log_lock while they write to it.
 */
#include "fn/internal.h"

#include "base/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void tail_append(invoc *inv, const char *p, size_t n)
{
  if (inv == NULL || !inv->want_tail)
    return;
  if (n >= FN_LOG_TAIL) {
    p += n - FN_LOG_TAIL;
    n = FN_LOG_TAIL;
  }
  for (size_t i = 0; i < n; i++) {
    inv->tail[inv->tail_pos] = p[i];
    inv->tail_pos = (inv->tail_pos + 1) % FN_LOG_TAIL;
  }
  inv->tail_len = inv->tail_len + n > FN_LOG_TAIL ? FN_LOG_TAIL : inv->tail_len + n;
}

static void log_path(fn_system *s, const char *name, const char *suffix, char *out, size_t cap)
{
  snprintf(out, cap, "%s/%s.log%s", s->log_dir, name, suffix);
}

void fn__logs_write(fn_system *s, fn_entry *f, invoc *inv, const char *p, size_t n)
{
  tail_append(inv, p, n);
  pthread_mutex_lock(&f->log_lock);
  if (f->log_fd < 0) {
    char path[4096];
    log_path(s, f->name, "", path, sizeof path);
    f->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    struct stat st;
    f->log_size = f->log_fd >= 0 && fstat(f->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  }
  if (f->log_fd >= 0) {
    ssize_t w = write(f->log_fd, p, n);
    if (w > 0)
      f->log_size += (uint64_t)w;
    if (f->log_size > FN_LOG_FILE_MAX) {
      char path[4096];
      char old[4096];
      log_path(s, f->name, "", path, sizeof path);
      log_path(s, f->name, ".1", old, sizeof old);
      rename(path, old);
      close(f->log_fd);
      f->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      f->log_size = 0;
    }
  }
  pthread_mutex_unlock(&f->log_lock);
}

void fn__logs_printf(fn_system *s, fn_entry *f, invoc *inv, const char *fmt, ...)
{
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof line)
    n = sizeof line - 1;
  fn__logs_write(s, f, inv, line, (size_t)n);
}

void fn__logs_close(fn_entry *f)
{
  if (f->log_fd >= 0)
    close(f->log_fd);
  f->log_fd = -1;
}

void fn__logs_tail_b64(const invoc *inv, char out[FN_LOG_TAIL_B64])
{
  uint8_t flat[FN_LOG_TAIL];
  size_t start = (inv->tail_pos + FN_LOG_TAIL - inv->tail_len) % FN_LOG_TAIL;
  for (size_t i = 0; i < inv->tail_len; i++)
    flat[i] = (uint8_t)inv->tail[(start + i) % FN_LOG_TAIL];
  base64_encode(flat, inv->tail_len, out);
}

static int read_tail(const char *path, size_t max, buf *out)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -1;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return -1;
  }
  off_t from = st.st_size > (off_t)max ? st.st_size - (off_t)max : 0;
  char chunk[16384];
  for (;;) {
    ssize_t n = pread(fd, chunk, sizeof chunk, from);
    if (n <= 0)
      break;
    buf_append(out, chunk, (size_t)n);
    from += n;
  }
  close(fd);
  return 0;
}

int fn_logs_read(fn_system *s, const char *name, size_t max, buf *out, err *e)
{
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, name);
  pthread_mutex_unlock(&s->lock);
  if (f == NULL)
    return err_set(e, ERR_NOT_FOUND, "Function not found: arn:aws:lambda:%s:%s:function:%s",
                   FN_REGION, FN_ACCOUNT_ID, name);
  char cur[4096];
  char old[4096];
  log_path(s, name, "", cur, sizeof cur);
  log_path(s, name, ".1", old, sizeof old);
  buf tmp;
  buf_init(&tmp, 2 * FN_LOG_FILE_MAX + 65536);
  read_tail(old, max, &tmp);
  read_tail(cur, max, &tmp);
  size_t skip = tmp.len > max ? tmp.len - max : 0;
  int rc = buf_append(out, tmp.data ? tmp.data + skip : "", tmp.len - skip);
  buf_release(&tmp);
  return rc ? err_set(e, rc, "the log of '%s' does not fit", name) : 0;
}
