/* base/mem.c -- allocation that cannot fail (see mem.h for when to use it).
 *
 * Why: one wrapper that dies with a message, instead of a hand-written
 * `if (p == NULL) abort();` after every allocation.
 *
 * Invariants:
 *   (1) Never returns NULL: xmalloc(0) and xrealloc(p, 0) return a valid,
 *       freeable pointer.
 */
#include "base/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Noreturn void mem_out_of_memory(void)
{
  static const char msg[] = "tarn: out of memory\n";
  ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1); /* no stdio: it may allocate */
  (void)n;
  abort();
}

void *xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    mem_out_of_memory();
  return p;
}

void *xcalloc(size_t count, size_t size)
{
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (p == NULL)
    mem_out_of_memory();
  return p;
}

void *xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (q == NULL)
    mem_out_of_memory();
  return q;
}

char *xstrdup(const char *s)
{
  char *p = strdup(s);
  if (p == NULL)
    mem_out_of_memory();
  return p;
}

char *xasprintf(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *p = NULL;
  int n = vasprintf(&p, fmt, ap);
  va_end(ap);
  if (n < 0)
    mem_out_of_memory();
  return p;
}

char *xstrndup(const char *s, size_t n)
{
  char *p = strndup(s, n);
  if (p == NULL)
    mem_out_of_memory();
  return p;
}
