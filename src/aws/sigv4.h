/* aws/sigv4.h -- AWS Signature Version 4: verification of a request's
 * Authorization header or presigned query, and the signing primitives the
 * aws-chunked decoder and the tests share.
 *
 * The verifier knows nothing of HTTP libraries: it takes the method, the raw
 * (still percent-encoded) path, the decoded query parameters and the headers.
 * For service "s3" the canonical URI is the raw path as sent; for every other
 * service it is the normalised path URI-encoded once more, as the SDKs sign.
 */
#ifndef TARN_AWS_SIGV4_H
#define TARN_AWS_SIGV4_H

#include "base/arena.h"
#include "base/err.h"
#include "base/hash.h"
#include "base/text.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SIGV4_MAX_SKEW_SECONDS (15 * 60)
#define SIGV4_MAX_EXPIRES 604800 /* presigned URLs: at most 7 days */

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_STREAMING_SIGNED "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define SIGV4_STREAMING_SIGNED_TRAILER "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
#define SIGV4_STREAMING_UNSIGNED_TRAILER "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

typedef struct sigv4_request {
  const char *method;       /* "GET", ... */
  const char *raw_path;     /* as received, percent-encoded, without query */
  const str_pair *query;    /* decoded names and values ("" for a bare flag) */
  size_t nquery;
  const str_pair *headers;  /* names lower-case; a name may repeat */
  size_t nheaders;
  /* Lower-case hex SHA-256 of the body, filled by the caller when it has
   * buffered a small body, else NULL. Used when x-amz-content-sha256 is
   * absent: other services' SDKs sign the body hash without sending it
   * (NULL then reads as the empty body's hash); for s3 it is accepted only
   * when set (tarn's own endpoints, whose caller hashed the body). */
  const char *body_sha256_hex;
} sigv4_request;

typedef struct sigv4_result {
  char access_key[129];
  char date[9];               /* yyyymmdd of the scope */
  char region[64];
  char service[32];           /* routes the request: "s3", "lambda", ... */
  char amz_date[17];          /* x-amz-date / X-Amz-Date, 20130524T000000Z */
  char scope[160];            /* date/region/service/aws4_request */
  char signature[65];         /* the verified (seed) signature, hex */
  uint8_t signing_key[SHA256_LEN];
  bool presigned;
  /* x-amz-content-sha256 as sent (UNSIGNED-PAYLOAD for presigned s3
   * requests without it; for other services without it, the body hash that
   * was signed): a hex digest the body must match, UNSIGNED-PAYLOAD, or one
   * of the STREAMING-* forms. Arena memory. */
  const char *payload_hash;
} sigv4_result;

/* Returns the secret key for an access key, or NULL when unknown. */
typedef const char *(*sigv4_secret_fn)(void *ctx, const char *access_key);

/* Verifies the request's signature at time now. Errors: ERR_DENIED (no
 * signature at all), ERR_AUTH_MALFORMED (a malformed Authorization header,
 * credential, date or presigned parameter, X-Amz-Expires outside
 * 1..604800 included), ERR_INVALID (both an Authorization header and a
 * presigned query, or a bad x-amz-content-sha256 value),
 * ERR_INVALID_REQUEST (s3 header auth without x-amz-content-sha256),
 * ERR_UNKNOWN_ACCESS_KEY, ERR_TIME_SKEWED (more than 15 minutes off),
 * ERR_EXPIRED (presigned URL past X-Amz-Expires), ERR_SIGNATURE. The
 * signature comparison is constant-time. */
int sigv4_verify(const sigv4_request *req, sigv4_secret_fn lookup, void *lookup_ctx,
                 time_t now, arena *a, sigv4_result *out, err *e);

/* Only parses the credential scope of a request (header or presigned), so
 * callers can tell which service a request is for; false when unsigned or
 * malformed. service needs 32 bytes. */
bool sigv4_scope_service(const sigv4_request *req, char service[32]);

/* kSigning = HMAC chain over date, region, service, "aws4_request". */
void sigv4_signing_key(const char *secret, const char *date, const char *region,
                       const char *service, uint8_t out[SHA256_LEN]);

/* The canonical request and string to sign, exposed for tests and tools. */
char *sigv4_canonical_request(const sigv4_request *req, const char *service,
                              const char *signed_headers, const char *payload_hash,
                              bool presigned, arena *a);
char *sigv4_string_to_sign(const char *amz_date, const char *scope,
                           const char *canonical_request, arena *a);

/* Signs a request the way a client would (Authorization header form): used
 * by the unit tests and by tarn's own CLI. amz_date is the request's
 * x-amz-date (the scope date is its first 8 characters); signed_headers NULL
 * signs every header of req; payload_hash NULL means the empty body's hash.
 * Returns the header value. */
char *sigv4_sign_header(const sigv4_request *req, const char *access_key, const char *secret,
                        const char *region, const char *service, const char *amz_date,
                        const char *signed_headers, const char *payload_hash, arena *a);

#endif
