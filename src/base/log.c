/* base/log.c -- timestamped single-write log lines on stderr.
 *
 * Invariants:
 *   (1) One record is one write(2) of at most 4 KiB: long lines are cut.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level level)
{
  min_level = level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
  static const char *names[] = {"debug", "info", "warn", "error"};
  if (level < min_level)
    return;
  char line[4096];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s ", ts.tv_nsec / 1000000, names[level]);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    m = 0;
  n += (size_t)m;
  if (n > sizeof line - 2)
    n = sizeof line - 2;
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}
