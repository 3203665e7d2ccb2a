/* base/buf.h -- a growable byte buffer with a hard maximum.
 *
 * Every buffer whose size a client controls has a limit: appending past
 * `max` fails with ERR_ENTITY_TOO_LARGE and leaves the buffer unchanged.
 * The data is always NUL-terminated (the NUL is not counted in len).
 */
#ifndef TARN_BASE_BUF_H
#define TARN_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
  char *data; /* heap bytes, NUL-terminated; NULL until the first append */
  size_t len; /* bytes in use */
  size_t cap; /* bytes allocated */
  size_t max; /* hard limit on len */
} buf;

void buf_init(buf *b, size_t max);
void buf_release(buf *b);
void buf_reset(buf *b); /* len = 0, keeps the memory */

/* 0, or ERR_ENTITY_TOO_LARGE when len would pass max. */
int buf_append(buf *b, const void *p, size_t n);
int buf_puts(buf *b, const char *s);
/* Grows len by n and returns the n new (uninitialised) bytes, for a reader
 * to fill in place; NULL, changing nothing, when len would pass max. */
char *buf_extend(buf *b, size_t n);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap);

/* Appends s with XML's five special characters escaped (and control
 * characters as numeric references), for element text and attributes. */
int buf_xml_escape(buf *b, const char *s, size_t n);
/* Appends <name>escaped text</name>. */
int buf_xml_elem(buf *b, const char *name, const char *text);

/* Appends the n bytes of s as a JSON string, quotes included: '"' and '\\'
 * escaped, \n \r \t \b \f by name, other control characters as \u00XX,
 * every other byte (UTF-8 included) as it is. A failed append changes
 * nothing. */
int buf_json_string(buf *b, const char *s, size_t n);

#endif
