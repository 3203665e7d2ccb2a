/* aws/chunked.h -- the aws-chunked body decoder: the framing SDKs use for
 * streaming uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD with a signature per
 * chunk, the -TRAILER variant, and STREAMING-UNSIGNED-PAYLOAD-TRAILER with
 * checksum trailers).
 *
 * Framing: "<hex-size>[;chunk-signature=<64 hex>]\r\n<data>\r\n" ... a
 * zero-size final chunk, then (trailer forms) "name:value\r\n" lines, an
 * optional "x-amz-trailer-signature:<hex>\r\n", and "\r\n".
 *
 * The decoder is a push state machine: feed it the body in pieces of any
 * size; it emits decoded data as it goes, never buffering a chunk. A chunk
 * signature is checked when the chunk ends, so data may be emitted before its
 * chunk is verified: consumers commit only after aws_chunked_finish succeeds.
 * Limits: a chunk header line <= 4 KiB, trailers <= 16 KiB in all.
 */
#ifndef TARN_AWS_CHUNKED_H
#define TARN_AWS_CHUNKED_H

#include "base/err.h"
#include "aws/sigv4.h"

#include <stddef.h>
#include <stdint.h>

typedef enum chunked_mode {
  CHUNKED_SIGNED,           /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD */
  CHUNKED_SIGNED_TRAILER,   /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER */
  CHUNKED_UNSIGNED_TRAILER, /* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
} chunked_mode;

typedef struct aws_chunked aws_chunked;

/* Receives decoded bytes; a non-zero return stops the decoder with that code. */
typedef int (*chunked_emit_fn)(void *ctx, const void *p, size_t n, err *e);

/* auth supplies the signing key, date, scope and seed signature for the
 * signed modes (it may be NULL for CHUNKED_UNSIGNED_TRAILER). The decoder
 * copies what it needs. */
aws_chunked *aws_chunked_new(chunked_mode mode, const sigv4_result *auth);
aws_chunked *aws_chunked_free(aws_chunked *c);

/* Errors: ERR_INCOMPLETE_BODY / ERR_INVALID for bad framing, ERR_SIGNATURE
 * for a chunk or trailer signature that does not match, or the emit code. */
int aws_chunked_feed(aws_chunked *c, const void *p, size_t n, chunked_emit_fn emit,
                     void *ctx, err *e);
/* Call at the end of the body: ERR_INCOMPLETE_BODY unless the final chunk
 * (and the trailers, in trailer modes) arrived whole. */
int aws_chunked_finish(aws_chunked *c, err *e);

/* A trailer's value by lower-case name, or NULL. Valid after finish. */
const char *aws_chunked_trailer(const aws_chunked *c, const char *name);
uint64_t aws_chunked_decoded_len(const aws_chunked *c);

/* The string to sign of one chunk (exposed for tests):
 * "AWS4-HMAC-SHA256-PAYLOAD\n" amz_date "\n" scope "\n" prev_sig "\n"
 * hex(sha256("")) "\n" hex(sha256(data)). out needs 512 bytes. */
void aws_chunked_string_to_sign(const char *amz_date, const char *scope, const char *prev_sig,
                                const char *data_sha256_hex, char *out, size_t outcap);

/* The string to sign of the trailers (signed-trailer mode; exposed for tests
 * and clients): "AWS4-HMAC-SHA256-TRAILER\n" amz_date "\n" scope "\n" prev_sig
 * "\n" hex(sha256(each trailer as "name:value\n")), where prev_sig is the
 * final (zero-size) chunk's signature. out needs 512 bytes. */
void aws_chunked_trailer_string_to_sign(const char *amz_date, const char *scope,
                                        const char *prev_sig, const char *trailers_sha256_hex,
                                        char *out, size_t outcap);

#endif
