/* store/crypt.h -- server-side encryption of blobs: sealed data keys, the
 * chunked AES-256-GCM stream a writer produces and a reader opens. Private
 * to src/store/; crypt.c says how the bytes are laid out. */
#ifndef TARN_STORE_CRYPT_H
#define TARN_STORE_CRYPT_H

#include "internal.h"

#define CRYPT_KEY 32                 /* AES-256 */
#define CRYPT_CHUNK (64u << 10)      /* plaintext bytes per chunk */
#define CRYPT_TAG 16                 /* GCM tag after each chunk */
#define CRYPT_HEAD 16                /* segment header: magic, nonce prefix, zeroes */

/* An opened data key (in the caller's arena or heap). */
struct store_crypt {
  int mode;                          /* STORE_SSE_S3 or STORE_SSE_C */
  uint8_t key[CRYPT_KEY];            /* the object's data key */
};

/* The stored length of a segment (one blob, or one part of a multipart
 * object) of plain plaintext bytes. */
uint64_t store__crypt_stored_size(uint64_t plain);

/* The mode of sealed text ("" or malformed: STORE_SSE_NONE). */
int store__crypt_mode(const char *sealed);

/* Opens sealed with the master key (SSE-S3) or customer_key (SSE-C) into
 * out. Errors: ERR_DENIED (the key does not open it), ERR_INVALID
 * (malformed), ERR_IO (the master key cannot be read). */
int store__crypt_open(store *s, const char *sealed, const uint8_t *customer_key,
                      struct store_crypt *out, err *e);

/* Splits the internal pair off meta (in place, order kept): its value, or
 * NULL when there is none. */
const char *store__crypt_take(str_pair *meta, size_t *nmeta);
/* meta with the internal pair (name STORE_SSE_META, value sealed) added
 * at the end, in a. */
str_pair *store__crypt_meta_add(arena *a, const str_pair *meta, size_t nmeta, const char *sealed,
                                size_t *n);
/* The sealed text of a raw (undecoded-by-obj_out) meta array, or NULL. */
const char *store__crypt_find(const str_pair *meta, size_t nmeta);

/* store_object_read of an encrypted object. */
int store__object_read_crypt(const store_object *o, int fd, uint64_t offset, void *p, size_t n,
                             size_t *got, err *e);

/* ---- the writer's side ---- */

typedef struct crypt_wr crypt_wr;
/* Emits bytes to the blob. */
typedef int (*crypt_emit_fn)(void *ctx, const void *p, size_t n, err *e);

crypt_wr *store__crypt_wr_new(const struct store_crypt *k);
/* The segment header: call once, first. */
int store__crypt_wr_head(crypt_wr *c, crypt_emit_fn emit, void *ctx, err *e);
/* Encrypts p; whole chunks are emitted as they fill. */
int store__crypt_wr_feed(crypt_wr *c, const void *p, size_t n, crypt_emit_fn emit, void *ctx,
                         err *e);
/* Emits the last partial chunk. */
int store__crypt_wr_end(crypt_wr *c, crypt_emit_fn emit, void *ctx, err *e);
/* The ETag bytes of an object of this key whose plaintext MD5 is md5:
 * md5 itself for SSE-S3, HMAC-SHA256(data key, md5)/128 for SSE-C (as on
 * S3, an SSE-C ETag is not the MD5 of the data). */
void store__crypt_etag(const crypt_wr *c, const uint8_t md5[16], uint8_t out[16]);
crypt_wr *store__crypt_wr_free(crypt_wr *c);

#endif
