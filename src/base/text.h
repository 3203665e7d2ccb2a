/* base/text.h -- text helpers the wire formats need: URI encoding as AWS
 * defines it, percent-decoding, UTF-8 validation, and time in the formats
 * AWS uses (ISO 8601 basic for SigV4, ISO 8601 with milliseconds for XML
 * bodies, RFC 1123 for HTTP headers).
 */
#ifndef TARN_BASE_TEXT_H
#define TARN_BASE_TEXT_H

#include "arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* A name and a value: headers, query parameters, metadata, tags. */
typedef struct str_pair {
  const char *name;
  const char *value;
} str_pair;

/* AWS's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ becomes %XY (upper
 * hex); '/' is kept when keep_slash is true. Result in the arena. */
char *uri_encode(arena *a, const char *s, size_t n, bool keep_slash);

/* Percent-decodes s (a '+' stays a '+'). Returns NULL when an escape is
 * malformed (a '%' not followed by two hex digits). *outlen gets the length
 * (the result may contain NUL bytes; it is also NUL-terminated). */
char *percent_decode(arena *a, const char *s, size_t n, size_t *outlen);

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
bool utf8_valid(const char *s, size_t n);
/* Writes the UTF-8 of code point cp (at most U+10FFFF) into out; returns
 * its length, 1 to 4. */
size_t utf8_encode(char out[4], uint32_t cp);
/* Characters (code points) of valid UTF-8 s: the lengths S3 counts. */
size_t utf8_chars(const char *s);

/* Case-insensitive ASCII comparisons. */
bool str_ieq(const char *a, const char *b);
bool str_istarts(const char *s, const char *prefix);
bool str_starts(const char *s, const char *prefix);
bool str_ends(const char *s, const char *suffix);
/* Trims ASCII spaces and tabs at both ends and collapses inner runs of
 * spaces to one (SigV4 canonical header values). Result in the arena. */
char *str_trim_collapse(arena *a, const char *s);

/* A positive integer from the environment (a limit such as
 * TARN_SQL_QUEUE), or def when unset, empty, zero or not a number. */
uint64_t env_u64(const char *name, uint64_t def);

/* Milliseconds since the epoch, wall clock and monotonic. */
int64_t time_now_ms(void);
int64_t time_mono_ms(void);
/* The time ms milliseconds (>= 0) from now on clock, as
 * pthread_cond_timedwait takes it (CLOCK_REALTIME unless the condition
 * variable was made for CLOCK_MONOTONIC). */
struct timespec time_deadline(clockid_t clock, int64_t ms);
int64_t time_mono_us(void);

/* "20130524T000000Z" <-> seconds since the epoch (UTC). parse returns false
 * on any deviation from the exact format. out needs 17 bytes. */
bool time_parse_iso8601_basic(const char *s, time_t *out);
void time_format_iso8601_basic(time_t t, char out[17]);
/* "2009-10-12T17:50:30.000Z" from milliseconds; out needs 25 bytes. */
void time_format_iso8601_ms(int64_t ms, char out[25]);
/* Parses "2009-10-12T17:50:30Z" or with ".sss" fraction; false on error. */
bool time_parse_iso8601(const char *s, int64_t *ms_out);
/* "Wed, 12 Oct 2009 17:50:30 GMT"; out needs 30 bytes. */
void time_format_rfc1123(time_t t, char out[30]);
/* Parses RFC 1123 (and the RFC 850 / asctime forms HTTP allows). */
bool time_parse_http(const char *s, time_t *out);

#endif
