/* sql/scan_win.c -- a CSV or JSON-lines range read through a reused buffer
 * (pread) instead of the object's mapping.
 *
 * Why: on a virtual machine the first touch of each page of a mapping costs
 * far more than copying the same bytes with pread into a buffer that stays
 * in the cache; a scan reads every byte once, so it reads them into a window
 * of about 1 MiB per worker and tokenizes that.
 *
 * Invariants:
 *   (1) A window starts at a record start. JSON lines: it holds whole
 *       records only (it ends after its last line break, or at the
 *       object's end). CSV: it holds the next SCAN_WIN_MIN bytes, cut
 *       anywhere; the tokenizer leaves a record that runs past the window
 *       unread (csv_cursor.partial), and the next window starts at it, so
 *       no pass looks for the last whole record before tokenizing.
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
    /* the first record is near: read a little at a time (the window
       then reads from it) */
    ssize_t r = win_read(w, o, off, 64u << 10);
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

int sql__win_fill(scan_win *w, const tobj *o, bool csv, uint64_t at, uint64_t stop, bool grow)
{
  if (csv) {
    size_t size = grow && w->size > 0 ? w->size * 2 : SCAN_WIN_MIN;
    if (size > SCAN_WIN_MAX)
      return 1;
    /* records that start before stop are ours: the last one ends a little
       past it (a larger window if not) */
    if (!grow && stop > at && stop - at + SCAN_WIN_SLACK < size)
      size = (size_t)(stop - at) + SCAN_WIN_SLACK;
    ssize_t r = win_read(w, o, at, size);
    if (r < 0)
      return -1;
    w->from = at;
    w->len = (size_t)r;
    w->size = size;
    w->partial = at + (uint64_t)r < o->len;
    return 0;
  }
  size_t size = SCAN_WIN_MIN;
  for (;;) {
    ssize_t r = win_read(w, o, at, size);
    if (r < 0)
      return -1;
    w->from = at;
    w->partial = false;
    if (at + (uint64_t)r >= o->len) {
      w->len = (size_t)r;
      return 0;
    }
    const char *nl = memrchr(w->buf, '\n', (size_t)r);
    if (nl != NULL) {
      w->len = (size_t)(nl - w->buf) + 1;
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
