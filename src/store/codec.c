/* store/codec.c -- the byte encoding of records and feed entries (codec.h).
 *
 * Why: the index (index.c) and the change feed (feed.c) store their values
 * in LMDB in one compact, versionable shape; one codec keeps them readable
 * by the same rules.
 *
 * Invariants:
 *   (1) A varint is at most 10 bytes; a longer one is malformed.
 *   (2) A decoder never reads outside [p, end): a length that runs past the
 *       end makes the reader bad rather than short.
 *   (3) Decoded strings are copied into the caller's arena; bytes point
 *       into the LMDB value and live as long as its transaction.
 *
 * Start reading at store__put_var().
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

void store__put(buf *b, const void *p, size_t n)
{
  if (buf_append(b, p, n) != 0)
    abort();  /* sizes are checked at the entry points */
}

void store__put_var(buf *b, uint64_t v)
{
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v != 0)
      tmp[n] |= 0x80;
    n++;
  } while (v != 0);
  store__put(b, tmp, n);
}

void store__put_u8(buf *b, uint8_t v)
{
  store__put(b, &v, 1);
}

void store__put_bytes(buf *b, const void *p, size_t n)
{
  store__put_var(b, n);
  if (n > 0)
    store__put(b, p, n);
}

void store__put_str(buf *b, const char *s)
{
  store__put_bytes(b, s, s != NULL ? strlen(s) : 0);
}

void store__put_pairs(buf *b, const str_pair *p, size_t n)
{
  store__put_var(b, n);
  for (size_t i = 0; i < n; i++) {
    store__put_str(b, p[i].name);
    store__put_str(b, p[i].value);
  }
}

rec_dec store__dec_of(const MDB_val *v)
{
  rec_dec d = { v->mv_data, (const uint8_t *)v->mv_data + v->mv_size, false };
  return d;
}

uint8_t store__get_u8(rec_dec *d)
{
  if (d->bad || d->p >= d->end) {
    d->bad = true;
    return 0;
  }
  return *d->p++;
}

uint64_t store__get_var(rec_dec *d)
{
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    uint8_t c = store__get_u8(d);
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80))
      return v;
  }
  d->bad = true;
  return 0;
}

const uint8_t *store__get_bytes(rec_dec *d, size_t *n)
{
  uint64_t len = store__get_var(d);
  if (d->bad || len > (uint64_t)(d->end - d->p)) {
    d->bad = true;
    *n = 0;
    return NULL;
  }
  const uint8_t *p = d->p;
  d->p += len;
  *n = (size_t)len;
  return p;
}

void store__get_fixed(rec_dec *d, void *out, size_t n)
{
  if (d->bad || n > (size_t)(d->end - d->p)) {
    d->bad = true;
    memset(out, 0, n);
    return;
  }
  memcpy(out, d->p, n);
  d->p += n;
}

const char *store__get_str(rec_dec *d, arena *a)
{
  size_t n = 0;
  const uint8_t *p = store__get_bytes(d, &n);
  return d->bad ? "" : arena_strndup(a, (const char *)p, n);
}

str_pair *store__get_pairs(rec_dec *d, arena *a, size_t *n)
{
  uint64_t count = store__get_var(d);
  *n = 0;
  if (d->bad || count > (uint64_t)(d->end - d->p) / 2) {
    d->bad = true;
    return NULL;
  }
  if (count == 0)
    return NULL;
  str_pair *p = arena_alloc(a, (size_t)count * sizeof *p);
  for (size_t i = 0; i < count; i++) {
    p[i].name = store__get_str(d, a);
    p[i].value = store__get_str(d, a);
  }
  *n = (size_t)count;
  return p;
}
