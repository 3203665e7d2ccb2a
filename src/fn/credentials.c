/* fn/credentials.c -- the credentials a function's instances get in
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
 *
 * Why: a function must reach tarn's APIs (its S3 objects, queues, topics,
 * other functions' Invoke) without holding the server's own keys, which
 * would let any function rewrite or delete every other function.
 *
 * Each function gets a key pair derived from the server's secret:
 *   base   = HMAC(server secret, "tarn-function-credentials")
 *   access = "TARNF" + base32(HMAC(base, "key:" NAME))[0..15]
 *   secret = base64(HMAC(base, "secret:" access))[0..40]
 * so the server can check a function's signature from the access key alone,
 * with no table to keep and nothing stored on disk.
 *
 * Invariants:
 *   (1) Deriving a secret needs the server's secret: a function knows its
 *       own pair and nothing else, and cannot mint another.
 *   (2) A derived key is never the server's key (the server's is checked
 *       first by the keyring in main.c), so such a caller is never admin:
 *       the API layer refuses it the Lambda control plane.
 *   (3) Keys change only when the server's secret changes; a deleted
 *       function's key stays valid for data-plane calls until then.
 */
#include "fn/internal.h"

#include "base/hash.h"

#include <stdio.h>
#include <string.h>

#define KEY_PREFIX "TARNF"
#define KEY_LEN 20
#define SECRET_LEN 40

static void base_key(const fn_system *s, uint8_t out[SHA256_LEN])
{
  static const char label[] = "tarn-function-credentials";
  hmac_sha256(s->secret_key, strlen(s->secret_key), label, sizeof label - 1, out);
}

static void derive_secret(const uint8_t base[SHA256_LEN], const char *access_key,
                          char out[SECRET_LEN + 1])
{
  char msg[64];
  int n = snprintf(msg, sizeof msg, "secret:%s", access_key);
  uint8_t mac[SHA256_LEN];
  hmac_sha256(base, SHA256_LEN, msg, (size_t)n, mac);
  char b64[64];
  base64_encode(mac, sizeof mac, b64);
  memcpy(out, b64, SECRET_LEN);
  out[SECRET_LEN] = '\0';
}

void fn_credentials_for(fn_system *s, const fn_config *f, char access_key[FN_KEY_MAX],
                        char secret_key[FN_KEY_MAX])
{
  static const char base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  uint8_t base[SHA256_LEN];
  base_key(s, base);
  char msg[160]; /* "key:" and a function name of at most 64 bytes */
  int n = snprintf(msg, sizeof msg, "key:%s", f->name);
  uint8_t mac[SHA256_LEN];
  hmac_sha256(base, sizeof base, msg, (size_t)n, mac);
  memcpy(access_key, KEY_PREFIX, strlen(KEY_PREFIX));
  for (size_t i = strlen(KEY_PREFIX); i < KEY_LEN; i++)
    access_key[i] = base32[mac[i] & 31];
  access_key[KEY_LEN] = '\0';
  derive_secret(base, access_key, secret_key);
}

bool fn_credentials_secret(fn_system *s, const char *access_key, char secret_key[FN_KEY_MAX])
{
  if (s == NULL || strlen(access_key) != KEY_LEN ||
      strncmp(access_key, KEY_PREFIX, strlen(KEY_PREFIX)) != 0)
    return false;
  uint8_t base[SHA256_LEN];
  base_key(s, base);
  derive_secret(base, access_key, secret_key);
  return true;
}
