/* base/arena.c -- region allocator built from a chain of blocks.
 *
 * Invariants:
 *   (1) Every pointer handed out stays valid until arena_free.
 *   (2) Blocks are at least ARENA_BLOCK bytes; a larger request gets a block
 *       of its own, so no space is wasted rounding up huge allocations.
 */
#include "arena.h"

#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK (16 * 1024)
#define ARENA_ALIGN 16

typedef struct block {
  struct block *next; /* older block */
  size_t size;        /* usable bytes in data */
  size_t used;        /* bytes handed out from data */
  _Alignas(ARENA_ALIGN) unsigned char data[];
} block;

struct arena {
  block *head;  /* current block; allocations come from here first */
  size_t total; /* bytes handed out */
};

arena *arena_new(void)
{
  arena *a = xmalloc(sizeof *a);
  a->head = NULL;
  a->total = 0;
  return a;
}

arena *arena_free(arena *a)
{
  if (a == NULL)
    return NULL;
  block *b = a->head;
  while (b != NULL) {
    block *next = b->next;
    free(b);
    b = next;
  }
  free(a);
  return NULL;
}

void *arena_alloc(arena *a, size_t size)
{
  size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (need == 0)
    need = ARENA_ALIGN;
  block *b = a->head;
  if (b == NULL || b->size - b->used < need) {
    size_t bsize = need > ARENA_BLOCK ? need : ARENA_BLOCK;
    block *nb = xmalloc(sizeof *nb + bsize);
    nb->size = bsize;
    nb->used = 0;
    if (b != NULL && need > ARENA_BLOCK) {
      /* a big one-off: keep the current block as head for small ones */
      nb->next = b->next;
      b->next = nb;
    } else {
      nb->next = b;
      a->head = nb;
    }
    b = nb;
  }
  void *p = b->data + b->used;
  b->used += need;
  a->total += need;
  memset(p, 0, size);
  return p;
}

void *arena_memdup(arena *a, const void *p, size_t n)
{
  char *d = arena_alloc(a, n + 1);
  if (n > 0)
    memcpy(d, p, n);
  d[n] = '\0';
  return d;
}

char *arena_strndup(arena *a, const char *s, size_t n)
{
  return arena_memdup(a, s, n);
}

char *arena_strdup(arena *a, const char *s)
{
  if (s == NULL)
    return NULL;
  return arena_memdup(a, s, strlen(s));
}

char *arena_vsprintf(arena *a, const char *fmt, va_list ap)
{
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    n = 0;
  char *s = arena_alloc(a, (size_t)n + 1);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

char *arena_sprintf(arena *a, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *s = arena_vsprintf(a, fmt, ap);
  va_end(ap);
  return s;
}

size_t arena_used(const arena *a)
{
  return a->total;
}
