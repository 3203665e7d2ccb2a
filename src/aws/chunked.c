/* aws/chunked.c -- the aws-chunked body decoder (streaming SigV4 uploads).
 *
 * Why: the SDKs upload large or checksummed bodies as aws-chunked frames,
 * each chunk signed with a chain that starts at the request's (seed)
 * signature, optionally followed by checksum trailers. The server must strip
 * the framing and verify the chain while streaming, without holding a chunk.
 *
 * States (one byte stream, any split across feed calls):
 *
 *   SIZE_LINE --size>0--> DATA --all bytes--> DATA_CRLF --"\r\n"--> SIZE_LINE
 *       |
 *       +--size 0--> END_LINE (signed) --"\r\n"--> DONE
 *       +--size 0--> TRAILER_LINE (trailer modes) --empty line--> DONE
 *   any error --> FAILED (sticky: every later call returns the same error)
 *
 * Invariants:
 *   (1) A line (chunk header or trailer) is at most CHUNK_LINE_MAX bytes with
 *       its CRLF; trailers total at most TRAILERS_MAX bytes. Chunk data is
 *       never buffered: it is hashed and emitted as it arrives.
 *   (2) In the signed modes every chunk carries chunk-signature=<64 hex>; its
 *       signature is checked as soon as the chunk's last byte arrives (a
 *       zero-size chunk: as soon as its header line ends), and becomes the
 *       previous signature of the next chunk (and of the trailers).
 *   (3) In the signed-trailer mode the trailers must end with
 *       x-amz-trailer-signature, checked over "name:value\n" of each trailer
 *       (lower-case name, trimmed value) in arrival order.
 *   (4) Tolerated, because some clients send them: one empty line between
 *       the final chunk and the trailers, and a body that ends right after
 *       the final chunk or the last trailer without the closing empty line.
 *       Nothing else after the final chunk is accepted.
 *
 * Start reading at aws_chunked_feed().
 */
#include "chunked.h"

#include "base/hash.h"
#include "base/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_LINE_MAX 4096
#define TRAILERS_MAX 16384
#define TRAILER_COUNT_MAX 64
#define TRAILER_SIG_NAME "x-amz-trailer-signature"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

enum state { ST_SIZE_LINE, ST_DATA, ST_DATA_CRLF, ST_END_LINE, ST_TRAILER_LINE, ST_DONE, ST_FAILED };

typedef struct trailer {
  const char *name;  /* lower-case, in pool */
  const char *value; /* trimmed, in pool */
} trailer;

struct aws_chunked {
  chunked_mode mode;
  enum state state;
  err failure;                     /* the sticky error of ST_FAILED */

  uint8_t signing_key[SHA256_LEN]; /* signed modes: from the seed request */
  char amz_date[17];
  char scope[160];
  char prev_sig[65];               /* seed, then each verified chunk's */

  char line[CHUNK_LINE_MAX + 1];   /* the line being read, NUL-terminated when whole */
  size_t line_len;

  uint64_t remaining;              /* data bytes of the current chunk still to come */
  uint8_t chunk_sig[SHA256_LEN];   /* claimed signature of the current chunk */
  hasher data_hash;                /* SHA-256 of the current chunk's data */
  int crlf_seen;                   /* bytes of the CRLF after data: 0 or 1 */
  uint64_t decoded;                /* data bytes emitted */

  trailer trailers[TRAILER_COUNT_MAX];
  size_t ntrailers;
  size_t trailer_bytes;            /* raw bytes of trailer lines so far */
  char pool[TRAILERS_MAX];         /* trailer names and values, NUL-separated */
  size_t pool_len;
  hasher trailer_hash;             /* SHA-256 of the canonical trailer lines */
  uint8_t trailer_sig[SHA256_LEN];
  bool have_trailer_sig;
  bool blank_seen;                 /* the one tolerated empty line, see (4) */
};

static bool signed_mode(const aws_chunked *c)
{
  return c->mode == CHUNKED_SIGNED || c->mode == CHUNKED_SIGNED_TRAILER;
}

aws_chunked *aws_chunked_new(chunked_mode mode, const sigv4_result *auth)
{
  aws_chunked *c = xcalloc(1, sizeof *c);
  c->mode = mode;
  c->state = ST_SIZE_LINE;
  if (signed_mode(c)) {
    if (auth == NULL)
      abort(); /* a caller bug: signed modes need the seed request's auth */
  }
  if (auth != NULL) {
    memcpy(c->signing_key, auth->signing_key, sizeof c->signing_key);
    memcpy(c->amz_date, auth->amz_date, sizeof c->amz_date);
    memcpy(c->scope, auth->scope, sizeof c->scope);
    memcpy(c->prev_sig, auth->signature, sizeof c->prev_sig);
  }
  return c;
}

aws_chunked *aws_chunked_free(aws_chunked *c)
{
  if (c == NULL)
    return NULL;
  hash_release(&c->data_hash);
  hash_release(&c->trailer_hash);
  memset(c->signing_key, 0, sizeof c->signing_key);
  free(c);
  return NULL;
}

void aws_chunked_string_to_sign(const char *amz_date, const char *scope, const char *prev_sig,
                                const char *data_sha256_hex, char *out, size_t outcap)
{
  snprintf(out, outcap, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n" EMPTY_SHA256 "\n%s", amz_date,
           scope, prev_sig, data_sha256_hex);
}

void aws_chunked_trailer_string_to_sign(const char *amz_date, const char *scope,
                                        const char *prev_sig, const char *trailers_sha256_hex,
                                        char *out, size_t outcap)
{
  snprintf(out, outcap, "AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s", amz_date, scope, prev_sig,
           trailers_sha256_hex);
}

/* Enters ST_FAILED with this error, copies it to *e, returns code. */
static int fail(aws_chunked *c, err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(aws_chunked *c, err *e, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->failure.msg, sizeof c->failure.msg, fmt, ap);
  va_end(ap);
  c->failure.code = code;
  c->state = ST_FAILED;
  if (e != NULL)
    *e = c->failure;
  return code;
}

/* HMAC of a string to sign with the request's signing key, compared in
 * constant time with the claimed signature; on success the computed one
 * becomes prev_sig. */
static bool check_and_chain(aws_chunked *c, const char *sts, const uint8_t claimed[SHA256_LEN])
{
  uint8_t mac[SHA256_LEN];
  hmac_sha256(c->signing_key, SHA256_LEN, sts, strlen(sts), mac);
  if (!mem_equal_ct(mac, claimed, SHA256_LEN))
    return false;
  hex_encode(mac, SHA256_LEN, c->prev_sig);
  return true;
}

static int chunk_verify(aws_chunked *c, err *e)
{
  uint8_t digest[SHA256_LEN];
  char hex[2 * SHA256_LEN + 1];
  hash_final(&c->data_hash, digest);
  hash_release(&c->data_hash);
  hex_encode(digest, sizeof digest, hex);
  char sts[512];
  aws_chunked_string_to_sign(c->amz_date, c->scope, c->prev_sig, hex, sts, sizeof sts);
  if (!check_and_chain(c, sts, c->chunk_sig)) {
    char claimed[2 * SHA256_LEN + 1];
    hex_encode(c->chunk_sig, SHA256_LEN, claimed);
    return fail(c, e, ERR_SIGNATURE,
                "chunk signature '%s' does not match (chunk ending at byte %llu)",
                claimed, (unsigned long long)c->decoded);
  }
  return 0;
}

static int trailers_verify(aws_chunked *c, err *e)
{
  if (!c->have_trailer_sig)
    return fail(c, e, ERR_INCOMPLETE_BODY,
                "aws-chunked body ended without '" TRAILER_SIG_NAME "'");
  uint8_t digest[SHA256_LEN];
  char hex[2 * SHA256_LEN + 1];
  hash_final(&c->trailer_hash, digest);
  hash_release(&c->trailer_hash);
  hex_encode(digest, sizeof digest, hex);
  char sts[512];
  aws_chunked_trailer_string_to_sign(c->amz_date, c->scope, c->prev_sig, hex, sts, sizeof sts);
  if (!check_and_chain(c, sts, c->trailer_sig))
    return fail(c, e, ERR_SIGNATURE, "'" TRAILER_SIG_NAME "' does not match");
  return 0;
}

/* "<hex-size>[;chunk-signature=<64 hex>]" (other extensions ignored in the
 * unsigned mode). */
static int size_line(aws_chunked *c, err *e)
{
  const char *s = c->line;
  uint64_t size = 0;
  int ndigits = 0;
  int d;
  while ((d = hex_value(*s)) >= 0) {
    if (++ndigits > 15)
      return fail(c, e, ERR_INVALID, "aws-chunked chunk size '%.40s' is too large",
                  c->line);
    size = size << 4 | (uint64_t)d;
    s++;
  }
  if (ndigits == 0)
    return fail(c, e, ERR_INVALID, "malformed aws-chunked chunk header '%.80s'",
                c->line);
  while (*s == ' ' || *s == '\t')
    s++;
  bool have_sig = false;
  while (*s == ';') {
    s++;
    const char *ext = s;
    size_t len = strcspn(s, ";");
    static const char key[] = "chunk-signature=";
    if (len >= sizeof key - 1 && memcmp(ext, key, sizeof key - 1) == 0) {
      const char *hex = ext + sizeof key - 1;
      if (have_sig || !hex_decode(hex, len - (sizeof key - 1), c->chunk_sig, SHA256_LEN))
        return fail(c, e, ERR_INVALID, "malformed aws-chunked chunk header '%.120s'",
                    c->line);
      have_sig = true;
    } else if (signed_mode(c)) {
      return fail(c, e, ERR_INVALID, "unexpected aws-chunked chunk extension '%.80s'",
                  ext);
    }
    s += len;
  }
  if (*s != '\0')
    return fail(c, e, ERR_INVALID, "malformed aws-chunked chunk header '%.80s'",
                c->line);
  if (signed_mode(c) && !have_sig)
    return fail(c, e, ERR_INVALID,
                "aws-chunked chunk header '%.80s' has no chunk-signature", c->line);

  if (signed_mode(c))
    hash_init(&c->data_hash, HASH_SHA256);
  if (size > 0) {
    c->remaining = size;
    c->state = ST_DATA;
    return 0;
  }
  if (signed_mode(c)) {
    int rc = chunk_verify(c, e);
    if (rc != 0)
      return rc;
  }
  if (c->mode == CHUNKED_SIGNED) {
    c->state = ST_END_LINE;
  } else {
    c->state = ST_TRAILER_LINE;
    hash_init(&c->trailer_hash, HASH_SHA256);
  }
  return 0;
}

static bool token_char(char ch)
{
  return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'
         || ch == '.';
}

static const char *pool_add(aws_chunked *c, const char *s, size_t n)
{
  char *p = c->pool + c->pool_len; /* fits: see TRAILERS_MAX accounting in trailer_line */
  memcpy(p, s, n);
  p[n] = '\0';
  c->pool_len += n + 1;
  return p;
}

/* One whole trailer line without its CRLF; the empty line ends the trailers. */
static int trailer_line(aws_chunked *c, err *e)
{
  if (c->line_len == 0) {
    if (c->ntrailers == 0 && !c->have_trailer_sig && !c->blank_seen) {
      c->blank_seen = true; /* see (4) */
      return 0;
    }
    if (c->mode == CHUNKED_SIGNED_TRAILER) {
      int rc = trailers_verify(c, e);
      if (rc != 0)
        return rc;
    }
    c->state = ST_DONE;
    return 0;
  }
  if (c->have_trailer_sig)
    return fail(c, e, ERR_INVALID, "aws-chunked trailer '%.80s' follows '"
                TRAILER_SIG_NAME "'", c->line);
  char *colon = strchr(c->line, ':');
  if (colon == NULL || colon == c->line)
    return fail(c, e, ERR_INVALID, "malformed aws-chunked trailer '%.80s'", c->line);
  size_t nlen = (size_t)(colon - c->line);
  for (size_t i = 0; i < nlen; i++) {
    char ch = c->line[i];
    if (ch >= 'A' && ch <= 'Z')
      c->line[i] = ch = (char)(ch - 'A' + 'a');
    if (!token_char(ch))
      return fail(c, e, ERR_INVALID, "malformed aws-chunked trailer name '%.*s'",
                  (int)nlen, c->line);
  }
  const char *v = colon + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  size_t vlen = strlen(v);
  while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
    vlen--;

  if (nlen == strlen(TRAILER_SIG_NAME) && memcmp(c->line, TRAILER_SIG_NAME, nlen) == 0) {
    if (c->mode == CHUNKED_SIGNED_TRAILER) {
      if (!hex_decode(v, vlen, c->trailer_sig, SHA256_LEN))
        return fail(c, e, ERR_INVALID, "malformed '" TRAILER_SIG_NAME "' '%.80s'", v);
    }
    c->have_trailer_sig = true; /* unsigned mode: nothing to check it with */
    return 0;
  }
  if (c->ntrailers == TRAILER_COUNT_MAX)
    return fail(c, e, ERR_INVALID, "aws-chunked body has more than %d trailers",
                TRAILER_COUNT_MAX);
  trailer *t = &c->trailers[c->ntrailers++];
  t->name = pool_add(c, c->line, nlen);
  t->value = pool_add(c, v, vlen);
  hash_update(&c->trailer_hash, t->name, nlen);
  hash_update(&c->trailer_hash, ":", 1);
  hash_update(&c->trailer_hash, t->value, vlen);
  hash_update(&c->trailer_hash, "\n", 1);
  return 0;
}

/* Collects bytes of a CRLF-terminated line; returns bytes used, or a
 * negative code. *whole is set when the line ended (then line holds it
 * without CRLF, NUL-terminated). */
static long line_take(aws_chunked *c, const uint8_t *p, size_t n, bool *whole, err *e)
{
  *whole = false;
  const uint8_t *lf = memchr(p, '\n', n);
  size_t take = lf != NULL ? (size_t)(lf - p) + 1 : n;
  bool in_trailer = c->state == ST_TRAILER_LINE;
  if (c->line_len + take > CHUNK_LINE_MAX)
    return fail(c, e, ERR_INVALID, "aws-chunked %s line is longer than %d bytes",
                in_trailer ? "trailer" : "chunk header", CHUNK_LINE_MAX);
  if (in_trailer) {
    c->trailer_bytes += take;
    if (c->trailer_bytes > TRAILERS_MAX)
      return fail(c, e, ERR_INVALID, "aws-chunked trailers are longer than %d bytes",
                  TRAILERS_MAX);
  }
  memcpy(c->line + c->line_len, p, take);
  c->line_len += take;
  if (lf == NULL)
    return (long)take;
  if (c->line_len < 2 || c->line[c->line_len - 2] != '\r')
    return fail(c, e, ERR_INVALID, "aws-chunked line does not end with CRLF");
  c->line_len -= 2;
  c->line[c->line_len] = '\0';
  if (memchr(c->line, '\0', c->line_len) != NULL)
    return fail(c, e, ERR_INVALID, "aws-chunked line contains a NUL byte");
  *whole = true;
  return (long)take;
}

static int line_done(aws_chunked *c, err *e)
{
  int rc = 0;
  switch (c->state) {
  case ST_SIZE_LINE:
    rc = size_line(c, e);
    break;
  case ST_END_LINE:
    if (c->line_len != 0)
      rc = fail(c, e, ERR_INVALID, "unexpected data '%.40s' after the final chunk",
                c->line);
    else
      c->state = ST_DONE;
    break;
  case ST_TRAILER_LINE:
    rc = trailer_line(c, e);
    break;
  case ST_DATA:
  case ST_DATA_CRLF:
  case ST_DONE:
  case ST_FAILED:
    break;
  }
  c->line_len = 0;
  return rc;
}

int aws_chunked_feed(aws_chunked *c, const void *data, size_t n, chunked_emit_fn emit, void *ctx,
                     err *e)
{
  const uint8_t *p = data;
  while (n > 0) {
    switch (c->state) {
    case ST_FAILED:
      if (e != NULL)
        *e = c->failure;
      return c->failure.code;
    case ST_DONE:
      return fail(c, e, ERR_INVALID, "unexpected data after the final aws-chunked chunk");
    case ST_DATA: {
      size_t take = c->remaining < n ? (size_t)c->remaining : n;
      if (signed_mode(c))
        hash_update(&c->data_hash, p, take);
      int rc = emit(ctx, p, take, e);
      if (rc != 0) {
        if (e != NULL && e->code == rc)
          return fail(c, e, rc, "%s", e->msg);
        return fail(c, e, rc, "cannot take the decoded aws-chunked data");
      }
      c->decoded += take;
      c->remaining -= take;
      p += take;
      n -= take;
      if (c->remaining == 0) {
        c->state = ST_DATA_CRLF;
        c->crlf_seen = 0;
        if (signed_mode(c)) {
          rc = chunk_verify(c, e);
          if (rc != 0)
            return rc;
        }
      }
      break;
    }
    case ST_DATA_CRLF: {
      char want = c->crlf_seen == 0 ? '\r' : '\n';
      if (*p != want)
        return fail(c, e, ERR_INVALID,
                    "aws-chunked chunk data is not followed by CRLF (at byte %llu)",
                    (unsigned long long)c->decoded);
      p++;
      n--;
      if (++c->crlf_seen == 2)
        c->state = ST_SIZE_LINE;
      break;
    }
    case ST_SIZE_LINE:
    case ST_END_LINE:
    case ST_TRAILER_LINE: {
      bool whole;
      long used = line_take(c, p, n, &whole, e);
      if (used < 0)
        return (int)used;
      p += used;
      n -= (size_t)used;
      if (whole) {
        int rc = line_done(c, e);
        if (rc != 0)
          return rc;
      }
      break;
    }
    }
  }
  if (c->state == ST_FAILED) {
    if (e != NULL)
      *e = c->failure;
    return c->failure.code;
  }
  return 0;
}

int aws_chunked_finish(aws_chunked *c, err *e)
{
  switch (c->state) {
  case ST_DONE:
    return 0;
  case ST_FAILED:
    if (e != NULL)
      *e = c->failure;
    return c->failure.code;
  case ST_END_LINE:
    if (c->line_len == 0) { /* see (4) */
      c->state = ST_DONE;
      return 0;
    }
    break;
  case ST_TRAILER_LINE:
    if (c->line_len == 0) { /* see (4) */
      if (c->mode == CHUNKED_SIGNED_TRAILER) {
        int rc = trailers_verify(c, e);
        if (rc != 0)
          return rc;
      }
      c->state = ST_DONE;
      return 0;
    }
    break;
  case ST_SIZE_LINE:
  case ST_DATA:
  case ST_DATA_CRLF:
    break;
  }
  return fail(c, e, ERR_INCOMPLETE_BODY,
              "aws-chunked body ended early, after %llu decoded bytes",
              (unsigned long long)c->decoded);
}

const char *aws_chunked_trailer(const aws_chunked *c, const char *name)
{
  for (size_t i = 0; i < c->ntrailers; i++)
    if (strcmp(c->trailers[i].name, name) == 0)
      return c->trailers[i].value;
  return NULL;
}

uint64_t aws_chunked_decoded_len(const aws_chunked *c)
{
  return c->decoded;
}
