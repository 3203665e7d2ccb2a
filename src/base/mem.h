/* base/mem.h -- allocation that cannot fail: the out-of-memory policy.
 *
 * Internal, bounded allocations (a struct, a name, a table whose size tarn
 * chose) use these: when the system has no memory left for them, there is
 * nothing sensible to answer, so the process says so on stderr and aborts
 * (one message instead of a crash somewhere later). An allocation whose size
 * a client's input sets (a value built by a query, a body) must not use
 * them: it checks its limit first and turns a failure into that request's
 * error.
 */
#ifndef TARN_BASE_MEM_H
#define TARN_BASE_MEM_H

#include <stddef.h>

void *xmalloc(size_t n) __attribute__((malloc, returns_nonnull));
void *xcalloc(size_t count, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
char *xstrndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));
/* A new string formatted as printf does. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2), returns_nonnull));
/* Prints "tarn: out of memory" and aborts. */
_Noreturn void mem_out_of_memory(void);

#endif
