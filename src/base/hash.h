/* base/hash.h -- digests and checksums: SHA-256, HMAC-SHA256, MD5 and SHA-1
 * (through OpenSSL's libcrypto), CRC32 (zlib's), CRC32C and CRC64/NVME (our
 * own tables) with the combination of two CRCs of adjacent byte runs,
 * plus hex and base64 codecs, random bytes and random UUIDs.
 *
 * Streaming hashers are plain structs the caller owns (hash_init/update/final);
 * one-shot helpers cover the small cases.
 */
#ifndef TARN_BASE_HASH_H
#define TARN_BASE_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define MD5_LEN 16
#define SHA1_LEN 20

enum hash_algo { HASH_SHA256, HASH_MD5, HASH_SHA1, HASH_CRC32, HASH_CRC32C, HASH_CRC64NVME };

/* A streaming digest of any algo. Release with hash_release even on error
 * paths (it accepts a never-initialised, zeroed struct). */
typedef struct hasher {
  enum hash_algo algo;
  void *md_ctx;   /* EVP_MD_CTX for SHA/MD5, NULL for CRCs */
  uint64_t crc;   /* running CRC for the CRC algos */
} hasher;

void hash_init(hasher *h, enum hash_algo algo);
void hash_update(hasher *h, const void *p, size_t n);
/* Writes the digest (CRCs as 4 or 8 big-endian bytes) and returns its length. */
size_t hash_final(hasher *h, uint8_t *out);
void hash_release(hasher *h);
/* Bytes of digest for algo: 32, 16, 20, 4, 4, 8. */
size_t hash_len(enum hash_algo algo);

void sha256(const void *p, size_t n, uint8_t out[SHA256_LEN]);
void md5(const void *p, size_t n, uint8_t out[MD5_LEN]);
void hmac_sha256(const void *key, size_t keylen, const void *p, size_t n, uint8_t out[SHA256_LEN]);
uint32_t crc32_update(uint32_t crc, const void *p, size_t n);  /* start with 0 */
uint32_t crc32c_update(uint32_t crc, const void *p, size_t n); /* start with 0 */
/* CRC-64/NVME (reflected polynomial 0x9A6C9329AC4BC9B5, init and xorout
 * all ones): the check value of "123456789" is 0xAE8B14860A799888. */
uint64_t crc64nvme_update(uint64_t crc, const void *p, size_t n); /* start with 0 */
/* The CRC (of algo HASH_CRC32, HASH_CRC32C or HASH_CRC64NVME) of A then B
 * from crc_a = CRC(A), crc_b = CRC(B) and len_b = |B|, without the bytes:
 * how a multipart upload's full-object checksum is made from its parts'. */
uint64_t crc_combine(enum hash_algo algo, uint64_t crc_a, uint64_t crc_b, uint64_t len_b);

/* The value of one hex digit (either case), or -1. */
int hex_value(char c);
/* Lower-case hex; out must hold 2*n+1 bytes; NUL-terminated. */
void hex_encode(const uint8_t *p, size_t n, char *out);
/* Decodes exactly 2*n hex characters (either case) into n bytes; false when
 * the text is not valid hex of that length. */
bool hex_decode(const char *s, size_t slen, uint8_t *out, size_t n);

/* Standard base64 with padding; out must hold base64_encoded_len(n) bytes
 * (which counts the NUL). */
size_t base64_encoded_len(size_t n);
void base64_encode(const uint8_t *p, size_t n, char *out);
/* Decodes standard base64 (padding required); returns the byte count, or -1
 * when the text is not valid base64 or would not fit in outcap. */
long base64_decode(const char *s, size_t slen, uint8_t *out, size_t outcap);

/* n random bytes from the kernel (getrandom(2)); aborts when it has none. */
void random_bytes(void *p, size_t n);
/* A random (version 4) UUID in lower case, 8-4-4-4-12; out holds 37 bytes. */
void uuid_v4(char out[37]);

/* Constant-time equality of two byte strings of the same length n. */
bool mem_equal_ct(const void *a, const void *b, size_t n);

#endif
