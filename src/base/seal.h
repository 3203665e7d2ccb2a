/* base/seal.h -- opaque tokens (shard iterators) that carry their issue
 * time under a MAC, so a client can neither forge one nor make an old one
 * young. */
#ifndef TARN_BASE_SEAL_H
#define TARN_BASE_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEAL_MAX_PAYLOAD 1024

/* Derives this process's key from a secret that outlives it (the server's
 * own secret key), so tokens stay valid across a restart; call it once at
 * start, before any token is made. Without it the key is random (tokens then
 * die with the process). */
void seal_set_secret(const char *secret);

/* base64(payload || issued ms, 8 bytes BE || HMAC-SHA256/128 of purpose,
 * payload and time under this process's key); xmalloc'd, NUL-terminated.
 * n must be at most SEAL_MAX_PAYLOAD. */
char *seal_make(const char *purpose, const void *payload, size_t n);
/* Checks a token made by seal_make with the same purpose: 0 with the
 * payload (NUL-terminated; cap must exceed it), its length and issue time;
 * -1 when the token is malformed, forged or of another purpose. */
int seal_open(const char *purpose, const char *token, uint8_t *payload, size_t cap, size_t *n,
              int64_t *issued_ms);
/* The tolerated age of a token: dflt, or TARN_ITERATOR_TTL_MS when that is
 * set to a positive number (a test knob, read once). */
int64_t seal_ttl_ms(int64_t dflt);
/* True when a token issued at issued_ms is older than ttl_ms now; then msg
 * holds AWS's "Iterator expired. The iterator was created at time ..." text. */
bool seal_expired(int64_t issued_ms, int64_t ttl_ms, char *msg, size_t cap);

#endif
