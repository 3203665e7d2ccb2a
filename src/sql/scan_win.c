/* sql/scan_win.c -- a CSV or JSON-lines range read through a reused buffer
 * (pread) instead of the object's mapping.
 *
 * Why: on a virtual machine the first touch of each page of a mapping costs
 * far more than copying the same bytes with pread into a buffer that stays
 * in the cache; a scan reads every byte once, so it reads them into a window
 * of about 1 MiB per worker and tokenizes that.
 *
 * Invariants:
 *   (1) A window starts at a record start and holds whole records only:
 *       it ends after the last line break outside quotes (CSV with
 *       RFC 4180 quoting: every quote toggles, so the parity of the quotes
 *       since the window's start tells), after the last line break (JSON
 *       lines), or at the object's end. A cursor over it never needs a byte
 *       past it, and a record never straddles two windows.
 *   (2) A record longer than the window doubles it, up to SCAN_WIN_MAX;
 *       past that the caller reads the rest of the range from the mapping.
 *   (3) Strings of a batch point into the window, which is overwritten by
 *       the next window: they live as long as the batch, as every reader's
 *       (column.h; whatever outlives a batch is copied by its keeper).
 *   (4) The first record of range r > 0 is found exactly as
 *       csv_cursor_init_at / jsonl_cursor_init find it on the mapping.
 */
#include "exec.h"
#include "base/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* bytes [off, off + n) of o (fewer at its end) into w->buf[0..); -1 on a failure */
static ssize_t win_read(scan_win *w, const tobj *o, uint64_t off, size_t n)
{
  if (off >= o->len)
    return 0;
  if (n > o->len - off)
    n = (size_t)(o->len - off);
  if (w->cap < n) {
    free(w->buf);
    w->buf = xmalloc(n);
    w->cap = n;
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(o->fd, w->buf + got, n - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

int sql__win_count_quotes(scan_win *w, const tobj *o, uint64_t from, uint64_t to,
                          int64_t *count)
{
  *count = 0;
  while (from < to) {
    size_t n = to - from > SCAN_WIN_MIN ? SCAN_WIN_MIN : (size_t)(to - from);
    ssize_t r = win_read(w, o, from, n);
    if (r <= 0)
      return r < 0 ? -1 : 0;
    *count += (int64_t)csv_count_quotes(w->buf, (size_t)r, (char)o->quote);
    from += (uint64_t)r;
  }
  return 0;
}

int sql__win_first(scan_win *w, const tobj *o, bool csv, uint64_t start, int in_quote,
                   uint64_t *first)
{
  uint64_t off = start - 1;
  bool inq = in_quote == 1;
  char q = (char)o->quote;
  for (;;) {
    ssize_t r = win_read(w, o, off, SCAN_WIN_MIN);
    if (r < 0)
      return -1;
    if (r == 0) {
      *first = o->len;
      return 0;
    }
    const char *p = w->buf;
    if (!csv || in_quote < 0) {
      const char *nl = memchr(p, '\n', (size_t)r);
      if (nl != NULL) {
        *first = off + (uint64_t)(nl - p) + 1;
        return 0;
      }
    } else {
      for (ssize_t i = 0; i < r; i++) {
        if (p[i] == q)
          inq = !inq;
        else if (p[i] == '\n' && !inq) {
          *first = off + (uint64_t)i + 1;
          return 0;
        }
      }
    }
    off += (uint64_t)r;
  }
}

/* the end of the last whole record of p[0..n), which starts at a record
   start; 0 when none ends in it */
static size_t last_boundary(const char *p, size_t n, bool csv, char q)
{
  if (!csv) {
    const char *nl = memrchr(p, '\n', n);
    return nl == NULL ? 0 : (size_t)(nl - p) + 1;
  }
  size_t total = csv_count_quotes(p, n, q);
  size_t tail = 0;   /* quotes in [x, n) */
  for (size_t x = n; x > 0; x--) {
    char ch = p[x - 1];
    if (ch == '\n' && ((total - tail) & 1) == 0)
      return x;
    if (ch == q)
      tail++;
  }
  return 0;
}

int sql__win_fill(scan_win *w, const tobj *o, bool csv, uint64_t at)
{
  size_t size = SCAN_WIN_MIN;
  for (;;) {
    ssize_t r = win_read(w, o, at, size);
    if (r < 0)
      return -1;
    w->from = at;
    if (at + (uint64_t)r >= o->len) {
      w->len = (size_t)r;
      return 0;
    }
    size_t b = last_boundary(w->buf, (size_t)r, csv, (char)o->quote);
    if (b > 0) {
      w->len = b;
      return 0;
    }
    if (size >= SCAN_WIN_MAX)
      return 1;
    size *= 2;
  }
}

void sql__win_free(scan_win *w)
{
  free(w->buf);
  w->buf = NULL;
  w->cap = 0;
}
