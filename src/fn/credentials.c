/* fn/credentials.c -- the credentials a function's instances get in
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, and the keyring's way back
 * from such a key to the live function (and role) it belongs to.
 *
 * Why: a function must reach tarn's APIs (its S3 objects, queues, topics,
 * other functions' Invoke) without holding the server's own keys, and what
 * it may do there is its role's business (api/iam.c): so a key must name
 * one live function with one role, and die with it.
 *
 * Each function configuration gets a key pair derived from the server's
 * secret:
 *   base   = HMAC(server secret, "tarn-function-credentials")
 *   mac    = HMAC(base, "key:" NAME "\n" ROLE "\n" NONCE)
 *   access = "TARNF" + base32(bucket of NAME, 3 chars) + base32(mac)[0..12]
 *   secret = base64(HMAC(base, "secret:" access))[0..40]
 * NONCE is drawn at CreateFunction and kept by every later configuration,
 * so a function deleted and created again under the same name gets new keys.
 *
 * Invariants:
 *   (1) Deriving a secret needs the server's secret: a function knows its
 *       own pair and nothing else, and cannot mint another.
 *   (2) A derived key is never the server's key (the server's is checked
 *       first by the keyring in main.c), so such a caller is never admin.
 *   (3) A key is valid only while a configuration of a live function
 *       ($LATEST or a published version) carries it: deleting the function
 *       or changing its role revokes it at once (fn_credentials_lookup
 *       finds it no more).
 *   (4) The bucket in the key makes the lookup one hash-bucket walk, not a
 *       scan of the registry.
 */
#include "fn/internal.h"

#include "base/hash.h"

#include <stdio.h>
#include <string.h>

#define KEY_PREFIX "TARNF"
#define KEY_LEN 20
#define SECRET_LEN 40

static const char base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

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

void fn__credentials_for(fn_system *s, const fn_config *f, const char *nonce,
                        char access_key[FN_KEY_MAX], char secret_key[FN_KEY_MAX])
{
  uint8_t base[SHA256_LEN];
  base_key(s, base);
  buf msg;
  buf_init(&msg, 8192);
  buf_printf(&msg, "key:%s\n%s\n%s", f->name, f->role ? f->role : "", nonce ? nonce : "");
  uint8_t mac[SHA256_LEN];
  hmac_sha256(base, sizeof base, msg.data, msg.len, mac);
  buf_release(&msg);
  size_t b = fn__registry_bucket(f->name);
  size_t p = strlen(KEY_PREFIX);
  memcpy(access_key, KEY_PREFIX, p);
  access_key[p++] = base32[(b >> 10) & 31];
  access_key[p++] = base32[(b >> 5) & 31];
  access_key[p++] = base32[b & 31];
  for (size_t i = 0; p < KEY_LEN; i++)
    access_key[p++] = base32[mac[i] & 31];
  access_key[KEY_LEN] = '\0';
  derive_secret(base, access_key, secret_key);
}

static int base32_value(char c)
{
  const char *at = c ? strchr(base32, c) : NULL;
  return at ? (int)(at - base32) : -1;
}

bool fn_credentials_lookup(fn_system *s, const char *access_key, char secret_key[FN_KEY_MAX],
                           fn_principal *who)
{
  if (s == NULL || strlen(access_key) != KEY_LEN ||
      strncmp(access_key, KEY_PREFIX, strlen(KEY_PREFIX)) != 0)
    return false;
  const char *bk = access_key + strlen(KEY_PREFIX);
  int d0 = base32_value(bk[0]);
  int d1 = base32_value(bk[1]);
  int d2 = base32_value(bk[2]);
  if (d0 < 0 || d1 < 0 || d2 < 0)
    return false;
  size_t b = (size_t)(d0 << 10 | d1 << 5 | d2);
  if (b >= FN_HASH_BUCKETS)
    return false;
  const conf *hit = NULL;
  const fn_entry *owner = NULL;
  pthread_mutex_lock(&s->lock);
  for (fn_entry *f = s->table[b]; f != NULL && hit == NULL; f = f->hnext) {
    owner = f;
    if (f->latest != NULL && strcmp(f->latest->access_key, access_key) == 0)
      hit = f->latest;
    for (size_t i = 0; hit == NULL && i < f->nversions; i++)
      if (strcmp(f->versions[i]->access_key, access_key) == 0)
        hit = f->versions[i];
  }
  if (hit != NULL && owner != NULL && who != NULL) {
    snprintf(who->function, sizeof who->function, "%s", owner->name);
    snprintf(who->role, sizeof who->role, "%s", hit->cfg.role);
  }
  pthread_mutex_unlock(&s->lock);
  if (hit == NULL)
    return false;
  uint8_t base[SHA256_LEN];
  base_key(s, base);
  derive_secret(base, access_key, secret_key);
  return true;
}
