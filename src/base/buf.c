/* base/buf.c -- growable byte buffer with a hard maximum.
 *
 * Invariants:
 *   (1) len <= max at all times; a failed append changes nothing.
 *   (2) data[len] == '\0' whenever data != NULL.
 */
#include "buf.h"

#include "err.h"
#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf *b, size_t max)
{
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void buf_release(buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void buf_reset(buf *b)
{
  b->len = 0;
  if (b->data != NULL)
    b->data[0] = '\0';
}

static int reserve(buf *b, size_t extra)
{
  if (extra > b->max - b->len)
    return ERR_ENTITY_TOO_LARGE;
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  char *p = xrealloc(b->data, cap);
  b->data = p;
  b->cap = cap;
  return 0;
}

int buf_append(buf *b, const void *p, size_t n)
{
  int rc = reserve(b, n);
  if (rc != 0)
    return rc;
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

char *buf_extend(buf *b, size_t n)
{
  if (reserve(b, n) != 0)
    return NULL;
  char *p = b->data + b->len;
  b->len += n;
  b->data[b->len] = '\0';
  return p;
}

int buf_puts(buf *b, const char *s)
{
  return buf_append(b, s, strlen(s));
}

int buf_vprintf(buf *b, const char *fmt, va_list ap)
{
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return ERR_INTERNAL;
  int rc = reserve(b, (size_t)n);
  if (rc != 0)
    return rc;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int buf_printf(buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

int buf_xml_escape(buf *b, const char *s, size_t n)
{
  size_t start = b->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int rc;
    switch (c) {
    case '<': rc = buf_append(b, "&lt;", 4); break;
    case '>': rc = buf_append(b, "&gt;", 4); break;
    case '&': rc = buf_append(b, "&amp;", 5); break;
    case '"': rc = buf_append(b, "&quot;", 6); break;
    case '\'': rc = buf_append(b, "&apos;", 6); break;
    default:
      if (c < 0x20 || c == 0x7f)
        rc = buf_printf(b, "&#x%X;", c);
      else
        rc = buf_append(b, s + i, 1);
    }
    if (rc != 0) {
      b->len = start;
      if (b->data != NULL)
        b->data[start] = '\0';
      return rc;
    }
  }
  return 0;
}

int buf_xml_elem(buf *b, const char *name, const char *text)
{
  int rc = buf_printf(b, "<%s>", name);
  if (rc == 0)
    rc = buf_xml_escape(b, text, strlen(text));
  if (rc == 0)
    rc = buf_printf(b, "</%s>", name);
  return rc;
}

int buf_json_string(buf *b, const char *s, size_t n)
{
  size_t start = b->len;
  int rc = buf_append(b, "\"", 1);
  size_t run = 0; /* start of the bytes not yet appended */
  for (size_t i = 0; i < n && rc == 0; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[8];
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    default:
      if (c < 0x20) {
        snprintf(u, sizeof u, "\\u%04x", c);
        esc = u;
      }
    }
    if (esc != NULL) {
      rc = buf_append(b, s + run, i - run);
      if (rc == 0)
        rc = buf_puts(b, esc);
      run = i + 1;
    }
  }
  if (rc == 0)
    rc = buf_append(b, s + run, n - run);
  if (rc == 0)
    rc = buf_append(b, "\"", 1);
  if (rc != 0) {
    b->len = start;
    if (b->data != NULL)
      b->data[start] = '\0';
  }
  return rc;
}
