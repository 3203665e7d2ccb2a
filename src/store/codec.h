/* store/codec.h -- the byte encoding of the store's LMDB records and change
 * feed entries: unsigned LEB128 varints, and bytes or strings prefixed by
 * their length as a varint. Private to src/store/.
 */
#ifndef TARN_STORE_CODEC_H
#define TARN_STORE_CODEC_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/text.h"

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- encoding: append to b; past b's max they abort, so callers bound
 * every size they pass (the entry points check keys and metadata) ---- */

void store__put(buf *b, const void *p, size_t n);
void store__put_u8(buf *b, uint8_t v);
void store__put_var(buf *b, uint64_t v);
void store__put_bytes(buf *b, const void *p, size_t n);  /* varint length, bytes */
void store__put_str(buf *b, const char *s);              /* NULL as "" */
void store__put_pairs(buf *b, const str_pair *p, size_t n); /* count, then name, value */

/* ---- decoding: a reader over one value; running off its end or reading
 * a malformed varint sets bad, after which every getter returns zeroes ---- */

typedef struct rec_dec {
  const uint8_t *p;    /* next byte */
  const uint8_t *end;  /* one past the last */
  bool bad;            /* ran off the end or malformed: sticky */
} rec_dec;

rec_dec store__dec_of(const MDB_val *v);
uint8_t store__get_u8(rec_dec *d);
uint64_t store__get_var(rec_dec *d);
/* Points into the value; NULL when bad. */
const uint8_t *store__get_bytes(rec_dec *d, size_t *n);
void store__get_fixed(rec_dec *d, void *out, size_t n);
/* A copy in a ("" when bad). */
const char *store__get_str(rec_dec *d, arena *a);
str_pair *store__get_pairs(rec_dec *d, arena *a, size_t *n);

#endif
