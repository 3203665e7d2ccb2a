/* aws/eventstream.h -- the AWS event stream framing
 * (application/vnd.amazon.eventstream), written once for every operation
 * that answers with one (S3 SelectObjectContent; later Kinesis
 * SubscribeToShard, Transcribe-like streams).
 *
 * A message, all integers big-endian:
 *   total length [4] | headers length [4] | prelude CRC32 [4] (of the 8 bytes before)
 *   headers [headers length] | payload | message CRC32 [4] (of every byte before)
 * A header: name length [1] | name | type [1] | value; only string values
 * (type 7: length [2] | bytes) are written here, which is all the
 * services' event, exception and error messages use. The CRC is CRC-32
 * (the gzip one). Total overhead: 16 bytes plus the headers.
 */
#ifndef TARN_AWS_EVENTSTREAM_H
#define TARN_AWS_EVENTSTREAM_H

#include "base/buf.h"
#include "base/text.h"

#include <stddef.h>
#include <stdint.h>

/* Largest message the encoder writes (AWS's limit on one message: 16 MiB). */
#define EVENTSTREAM_MAX_MESSAGE (16u << 20)
/* Header names are at most 255 bytes, string values at most 32767. */
#define EVENTSTREAM_MAX_NAME 255u
#define EVENTSTREAM_MAX_VALUE 32767u

/* Appends one message with the string headers h[0..nh) and the payload
 * p[0..n) to out. Returns 0, ERR_INVALID for a name or value past its
 * limit or a message past EVENTSTREAM_MAX_MESSAGE, or buf_append's error
 * when out is full (out is then left as it was). */
int eventstream_message(buf *out, const str_pair *h, size_t nh, const void *p, size_t n);

/* An event: :message-type event, :event-type type and, when content_type
 * is not NULL, :content-type content_type. */
int eventstream_event(buf *out, const char *type, const char *content_type, const void *p,
                      size_t n);

/* An error message: :message-type error, :error-code code, :error-message
 * message (cut at EVENTSTREAM_MAX_VALUE bytes), no payload. */
int eventstream_error(buf *out, const char *code, const char *message);

#endif
