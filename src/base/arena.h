/* base/arena.h -- a region allocator: many allocations, one release.
 *
 * Each request owns one arena; nothing allocated from it is freed one by one.
 * What must outlive the request is copied into its owner on purpose.
 * Allocation failure aborts (out-of-memory on internal allocations is fatal).
 */
#ifndef TARN_BASE_ARENA_H
#define TARN_BASE_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct arena arena;

arena *arena_new(void);
/* Releases every block; accepts NULL; returns NULL. */
arena *arena_free(arena *a);

/* Zeroed, 16-byte aligned memory that lives as long as the arena. */
void *arena_alloc(arena *a, size_t size);
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);
void *arena_memdup(arena *a, const void *p, size_t n);
char *arena_sprintf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vsprintf(arena *a, const char *fmt, va_list ap);

/* Bytes handed out so far (for limits and tests). */
size_t arena_used(const arena *a);

#endif
