/* base/hash.c -- digests, checksums and the byte codecs around them.
 *
 * Why: SigV4 needs SHA-256 and HMAC-SHA256 on every request, S3 needs MD5
 * (ETags), SHA-1, CRC32 and CRC32C (the x-amz-checksum-* headers), and all of
 * them travel as hex or base64. One file keeps the OpenSSL details out of
 * every caller. Random names (blob ids, request ids, UUIDs) are here too,
 * so that every part draws them from the kernel the same way.
 *
 * Invariants:
 *   (1) The OpenSSL algorithm objects are fetched once (pthread_once) and
 *       never freed; every context made from them is per call or per hasher.
 *   (2) A zeroed hasher is a valid argument to hash_release.
 *   (3) CRC32C is the reflected Castagnoli polynomial 0x82F63B78 and
 *       CRC-64/NVME the reflected 0x9A6C9329AC4BC9B5, both computed
 *       slice-by-8 from tables built once; CRC32 is zlib's. crc_combine
 *       works for all three (zlib's method: multiply by x^(8 len) modulo
 *       the polynomial, by repeated squaring of the shift operator).
 *   (4) Allocation failure inside OpenSSL aborts, as for any small internal
 *       allocation; so does a kernel that has no random bytes to give.
 *
 * Start reading at hash_init().
 */
#include "hash.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <zlib.h>

static pthread_once_t algos_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256; /* fetched once, see (1) */
static EVP_MD *md_md5;
static EVP_MD *md_sha1;
static EVP_MAC *mac_hmac;
static uint32_t crc32c_table[8][256]; /* slice-by-8 tables, see (3) */
static uint64_t crc64_table[8][256];
#define CRC64NVME_POLY 0x9A6C9329AC4BC9B5ull

static void die(const char *what)
{
  fprintf(stderr, "tarn: fatal: %s failed\n", what);
  abort();
}

static void algos_load(void)
{
  md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  md_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
  md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
  mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  if (md_sha256 == NULL || md_md5 == NULL || md_sha1 == NULL || mac_hmac == NULL)
    die("loading the openssl digests");

  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc32c_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = crc32c_table[0][i];
    for (int t = 1; t < 8; t++) {
      c = crc32c_table[0][c & 0xff] ^ (c >> 8);
      crc32c_table[t][i] = c;
    }
  }
  for (uint64_t i = 0; i < 256; i++) {
    uint64_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? (c >> 1) ^ CRC64NVME_POLY : c >> 1;
    crc64_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++) {
    uint64_t c = crc64_table[0][i];
    for (int t = 1; t < 8; t++) {
      c = crc64_table[0][c & 0xff] ^ (c >> 8);
      crc64_table[t][i] = c;
    }
  }
}

static void algos(void)
{
  pthread_once(&algos_once, algos_load);
}

static const EVP_MD *algo_md(enum hash_algo algo)
{
  algos();
  switch (algo) {
  case HASH_SHA256:
    return md_sha256;
  case HASH_MD5:
    return md_md5;
  case HASH_SHA1:
    return md_sha1;
  case HASH_CRC32:
  case HASH_CRC32C:
  case HASH_CRC64NVME:
    break;
  }
  return NULL;
}

size_t hash_len(enum hash_algo algo)
{
  switch (algo) {
  case HASH_SHA256:
    return SHA256_LEN;
  case HASH_MD5:
    return MD5_LEN;
  case HASH_SHA1:
    return SHA1_LEN;
  case HASH_CRC32:
  case HASH_CRC32C:
    return 4;
  case HASH_CRC64NVME:
    return 8;
  }
  return 0;
}

void hash_init(hasher *h, enum hash_algo algo)
{
  h->algo = algo;
  h->md_ctx = NULL;
  h->crc = 0;
  const EVP_MD *md = algo_md(algo);
  if (md == NULL)
    return;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (ctx == NULL || EVP_DigestInit_ex(ctx, md, NULL) != 1)
    die("EVP_DigestInit_ex");
  h->md_ctx = ctx;
}

void hash_update(hasher *h, const void *p, size_t n)
{
  if (n == 0)
    return;
  switch (h->algo) {
  case HASH_CRC32:
    h->crc = crc32_update((uint32_t)h->crc, p, n);
    return;
  case HASH_CRC32C:
    h->crc = crc32c_update((uint32_t)h->crc, p, n);
    return;
  case HASH_CRC64NVME:
    h->crc = crc64nvme_update(h->crc, p, n);
    return;
  case HASH_SHA256:
  case HASH_MD5:
  case HASH_SHA1:
    if (EVP_DigestUpdate(h->md_ctx, p, n) != 1)
      die("EVP_DigestUpdate");
    return;
  }
}

size_t hash_final(hasher *h, uint8_t *out)
{
  if (h->algo == HASH_CRC32 || h->algo == HASH_CRC32C || h->algo == HASH_CRC64NVME) {
    size_t len = hash_len(h->algo);
    for (size_t i = 0; i < len; i++)
      out[i] = (uint8_t)(h->crc >> (8 * (len - 1 - i)));
    return len;
  }
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(h->md_ctx, out, &len) != 1)
    die("EVP_DigestFinal_ex");
  return len;
}

void hash_release(hasher *h)
{
  if (h == NULL)
    return;
  EVP_MD_CTX_free(h->md_ctx);
  h->md_ctx = NULL;
}

static void digest_once(enum hash_algo algo, const void *p, size_t n, uint8_t *out)
{
  hasher h;
  hash_init(&h, algo);
  hash_update(&h, p, n);
  hash_final(&h, out);
  hash_release(&h);
}

void sha256(const void *p, size_t n, uint8_t out[SHA256_LEN])
{
  digest_once(HASH_SHA256, p, n, out);
}

void md5(const void *p, size_t n, uint8_t out[MD5_LEN])
{
  digest_once(HASH_MD5, p, n, out);
}

void hmac_sha256(const void *key, size_t keylen, const void *p, size_t n, uint8_t out[SHA256_LEN])
{
  algos();
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac_hmac);
  if (ctx == NULL)
    die("EVP_MAC_CTX_new");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
    OSSL_PARAM_construct_end(),
  };
  static const uint8_t empty_key[1];
  size_t outlen = 0;
  if (EVP_MAC_init(ctx, keylen > 0 ? key : empty_key, keylen, params) != 1
      || EVP_MAC_update(ctx, p, n) != 1
      || EVP_MAC_final(ctx, out, &outlen, SHA256_LEN) != 1 || outlen != SHA256_LEN)
    die("hmac-sha256");
  EVP_MAC_CTX_free(ctx);
}

uint32_t crc32_update(uint32_t crc, const void *p, size_t n)
{
  const Bytef *b = p;
  uLong c = crc;
  while (n > 0) {
    uInt step = n > (1u << 30) ? (1u << 30) : (uInt)n;
    c = crc32(c, b, step);
    b += step;
    n -= step;
  }
  return (uint32_t)c;
}

uint32_t crc32c_update(uint32_t crc, const void *p, size_t n)
{
  algos();
  const uint8_t *b = p;
  uint32_t c = ~crc;
  while (n > 0 && ((uintptr_t)b & 7) != 0) {
    c = crc32c_table[0][(c ^ *b++) & 0xff] ^ (c >> 8);
    n--;
  }
  while (n >= 8) {
    uint32_t lo = c ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16
                       | (uint32_t)b[3] << 24);
    uint32_t hi = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16
                  | (uint32_t)b[7] << 24;
    c = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff]
        ^ crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24]
        ^ crc32c_table[3][hi & 0xff] ^ crc32c_table[2][(hi >> 8) & 0xff]
        ^ crc32c_table[1][(hi >> 16) & 0xff] ^ crc32c_table[0][hi >> 24];
    b += 8;
    n -= 8;
  }
  while (n > 0) {
    c = crc32c_table[0][(c ^ *b++) & 0xff] ^ (c >> 8);
    n--;
  }
  return ~c;
}

uint64_t crc64nvme_update(uint64_t crc, const void *p, size_t n)
{
  algos();
  const uint8_t *b = p;
  uint64_t c = ~crc;
  while (n > 0 && ((uintptr_t)b & 7) != 0) {
    c = crc64_table[0][(c ^ *b++) & 0xff] ^ (c >> 8);
    n--;
  }
  while (n >= 8) {
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--)
      w = (w << 8) | b[i];
    c ^= w;
    c = crc64_table[7][c & 0xff] ^ crc64_table[6][(c >> 8) & 0xff]
        ^ crc64_table[5][(c >> 16) & 0xff] ^ crc64_table[4][(c >> 24) & 0xff]
        ^ crc64_table[3][(c >> 32) & 0xff] ^ crc64_table[2][(c >> 40) & 0xff]
        ^ crc64_table[1][(c >> 48) & 0xff] ^ crc64_table[0][c >> 56];
    b += 8;
    n -= 8;
  }
  while (n > 0) {
    c = crc64_table[0][(c ^ *b++) & 0xff] ^ (c >> 8);
    n--;
  }
  return ~c;
}

/* The product of the width x width GF(2) matrix mat (one column per entry)
 * and the vector vec. */
static uint64_t gf2_times(const uint64_t *mat, uint64_t vec)
{
  uint64_t sum = 0;
  for (int i = 0; vec != 0; i++, vec >>= 1)
    if (vec & 1)
      sum ^= mat[i];
  return sum;
}

static void gf2_square(uint64_t *sq, const uint64_t *mat, int width)
{
  for (int i = 0; i < width; i++)
    sq[i] = gf2_times(mat, mat[i]);
}

uint64_t crc_combine(enum hash_algo algo, uint64_t crc_a, uint64_t crc_b, uint64_t len_b)
{
  int width = algo == HASH_CRC64NVME ? 64 : 32;
  uint64_t poly = algo == HASH_CRC64NVME ? CRC64NVME_POLY
                  : algo == HASH_CRC32C  ? 0x82F63B78u : 0xEDB88320u;
  if (len_b == 0)
    return crc_a;
  uint64_t even[64];
  uint64_t odd[64];
  odd[0] = poly;  /* the operator for one zero bit */
  uint64_t row = 1;
  for (int i = 1; i < width; i++) {
    odd[i] = row;
    row <<= 1;
  }
  gf2_square(even, odd, width);  /* two zero bits */
  gf2_square(odd, even, width);  /* four */
  do {  /* apply len_b zero bytes to crc_a */
    gf2_square(even, odd, width);
    if (len_b & 1)
      crc_a = gf2_times(even, crc_a);
    len_b >>= 1;
    if (len_b == 0)
      break;
    gf2_square(odd, even, width);
    if (len_b & 1)
      crc_a = gf2_times(odd, crc_a);
    len_b >>= 1;
  } while (len_b != 0);
  return crc_a ^ crc_b;
}

void hex_encode(const uint8_t *p, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 0xf];
  }
  out[2 * n] = '\0';
}

int hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

bool hex_decode(const char *s, size_t slen, uint8_t *out, size_t n)
{
  if (slen != 2 * n)
    return false;
  for (size_t i = 0; i < n; i++) {
    int hi = hex_value(s[2 * i]);
    int lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return true;
}

static const char b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t n)
{
  return (n + 2) / 3 * 4 + 1;
}

void base64_encode(const uint8_t *p, size_t n, char *out)
{
  size_t o = 0;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    out[o++] = b64_digits[v >> 18];
    out[o++] = b64_digits[(v >> 12) & 63];
    out[o++] = b64_digits[(v >> 6) & 63];
    out[o++] = b64_digits[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    out[o++] = b64_digits[v >> 18];
    out[o++] = b64_digits[(v >> 12) & 63];
    out[o++] = '=';
    out[o++] = '=';
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    out[o++] = b64_digits[v >> 18];
    out[o++] = b64_digits[(v >> 12) & 63];
    out[o++] = b64_digits[(v >> 6) & 63];
    out[o++] = '=';
  }
  out[o] = '\0';
}

/* base64 digit values by byte, -1 for a byte that is not one */
static const int8_t B64_VALUE[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

long base64_decode(const char *s, size_t slen, uint8_t *out, size_t outcap)
{
  if (slen % 4 != 0)
    return -1;
  size_t o = 0;
  size_t i = 0;
  /* every quad but the last has no padding: four table lookups */
  if (slen >= 4 && (slen - 4) / 4 * 3 <= outcap) {
    const uint8_t *u = (const uint8_t *)s;
    for (; i + 4 < slen; i += 4) {
      int a = B64_VALUE[u[i]], b = B64_VALUE[u[i + 1]], c = B64_VALUE[u[i + 2]],
          d = B64_VALUE[u[i + 3]];
      if ((a | b | c | d) < 0)
        return -1;
      uint32_t w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
      out[o] = (uint8_t)(w >> 16);
      out[o + 1] = (uint8_t)(w >> 8);
      out[o + 2] = (uint8_t)w;
      o += 3;
    }
  }
  for (; i < slen; i += 4) {
    bool last = i + 4 == slen;
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      char c = s[i + (size_t)k];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        pad++;
        continue;
      }
      if (pad > 0)
        return -1; /* data after padding */
      v[k] = B64_VALUE[(uint8_t)c];
      if (v[k] < 0)
        return -1;
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    size_t take = (size_t)(3 - pad);
    if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0))
      return -1; /* non-canonical: stray bits under the padding */
    if (take > outcap - o)
      return -1;
    out[o++] = (uint8_t)(w >> 16);
    if (take > 1)
      out[o++] = (uint8_t)(w >> 8);
    if (take > 2)
      out[o++] = (uint8_t)w;
  }
  return (long)o;
}

bool mem_equal_ct(const void *a, const void *b, size_t n)
{
  const volatile uint8_t *x = a;
  const volatile uint8_t *y = b;
  uint8_t diff = 0;
  for (size_t i = 0; i < n; i++)
    diff |= (uint8_t)(x[i] ^ y[i]);
  return diff == 0;
}

void random_bytes(void *p, size_t n)
{
  uint8_t *b = p;
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(b + got, n - got, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      die("getrandom");  /* no randomness: nothing sensible to do */
    got += (size_t)r;
  }
}

void uuid_v4(char out[37])
{
  uint8_t b[16];
  random_bytes(b, sizeof b);
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
  char hex[33];
  hex_encode(b, sizeof b, hex);
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}
