/* base/seal.c -- opaque tokens that carry their issue time under a MAC.
 *
 * Why: AWS shard iterators (Kinesis, DynamoDB Streams) expire a fixed time
 * after they are handed out; the time must travel inside the token, and a
 * client must not be able to change it (or anything else in the token).
 *
 * Invariants:
 *   (1) The key is derived from the server's secret key (seal_set_secret),
 *       so a token outlives a restart as AWS's do, for its time to live;
 *       without a secret (unit tests) it is 32 random bytes per process.
 *   (2) The MAC covers the purpose, the payload and the time, so a token of
 *       one purpose never opens as another.
 *   (3) TARN_ITERATOR_TTL_MS is read once; it exists only to let tests wait
 *       seconds instead of minutes.
 */
#include "base/seal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAC_LEN 16

static uint8_t key[32];
static int64_t ttl_knob = 0;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
  random_bytes(key, sizeof key);
  const char *v = getenv("TARN_ITERATOR_TTL_MS");
  if (v != NULL && *v != '\0') {
    char *end = NULL;
    long long ms = strtoll(v, &end, 10);
    if (*end == '\0' && ms > 0)
      ttl_knob = ms;
  }
}

void seal_set_secret(const char *secret)
{
  pthread_once(&once, init);
  static const char label[] = "tarn seal key v1";
  uint8_t full[SHA256_LEN];
  hmac_sha256(secret, strlen(secret), label, sizeof label - 1, full);
  memcpy(key, full, sizeof key);
}

static void mac(const char *purpose, const uint8_t *body, size_t n, uint8_t out[MAC_LEN])
{
  size_t pl = strlen(purpose);
  uint8_t *m = xmalloc(pl + 1 + n);
  memcpy(m, purpose, pl);
  m[pl] = '\0';
  memcpy(m + pl + 1, body, n);
  uint8_t full[SHA256_LEN];
  hmac_sha256(key, sizeof key, m, pl + 1 + n, full);
  memcpy(out, full, MAC_LEN);
  free(m);
}

char *seal_make(const char *purpose, const void *payload, size_t n)
{
  pthread_once(&once, init);
  if (n > SEAL_MAX_PAYLOAD)
    n = SEAL_MAX_PAYLOAD;
  uint8_t raw[SEAL_MAX_PAYLOAD + 8 + MAC_LEN];
  memcpy(raw, payload, n);
  uint64_t now = (uint64_t)time_now_ms();
  for (int i = 0; i < 8; i++)
    raw[n + (size_t)i] = (uint8_t)(now >> (56 - 8 * i));
  mac(purpose, raw, n + 8, raw + n + 8);
  size_t len = n + 8 + MAC_LEN;
  char *out = xmalloc(base64_encoded_len(len) + 1);
  base64_encode(raw, len, out);
  return out;
}

int seal_open(const char *purpose, const char *token, uint8_t *payload, size_t cap, size_t *n,
              int64_t *issued_ms)
{
  pthread_once(&once, init);
  uint8_t raw[SEAL_MAX_PAYLOAD + 8 + MAC_LEN];
  size_t tl = strlen(token);
  if (tl > base64_encoded_len(sizeof raw) + 4)
    return -1;
  long got = base64_decode(token, tl, raw, sizeof raw);
  if (got < 8 + MAC_LEN)
    return -1;
  size_t body = (size_t)got - MAC_LEN;
  uint8_t want[MAC_LEN];
  mac(purpose, raw, body, want);
  uint8_t diff = 0;
  for (int i = 0; i < MAC_LEN; i++)
    diff |= (uint8_t)(want[i] ^ raw[body + (size_t)i]);
  size_t pl = body - 8;
  if (diff != 0 || pl + 1 > cap)
    return -1;
  uint64_t t = 0;
  for (int i = 0; i < 8; i++)
    t = t << 8 | raw[pl + (size_t)i];
  memcpy(payload, raw, pl);
  payload[pl] = '\0';
  *n = pl;
  *issued_ms = (int64_t)t;
  return 0;
}

int64_t seal_ttl_ms(int64_t dflt)
{
  pthread_once(&once, init);
  return ttl_knob > 0 ? ttl_knob : dflt;
}

static void when(int64_t ms, char out[40])
{
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(out, 40, "%a %b %d %H:%M:%S UTC %Y", &tm);
}

bool seal_expired(int64_t issued_ms, int64_t ttl_ms, char *msg, size_t cap)
{
  int64_t now = time_now_ms();
  if (now - issued_ms <= ttl_ms)
    return false;
  char a[40], b[40];
  when(issued_ms, a);
  when(now, b);
  snprintf(msg, cap, "Iterator expired. The iterator was created at time %s while right now it "
           "is %s which is further in the future than the tolerated delay of %lld milliseconds.",
           a, b, (long long)ttl_ms);
  return true;
}
