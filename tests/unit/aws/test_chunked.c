/* tests/unit/aws/test_chunked.c -- unit tests of aws/chunked.c, the
 * aws-chunked decoder; run by test_sigv4.c's main.
 *
 * Known values: AWS's streaming upload example (sigv4-streaming: seed
 * 4f232c43..., 64 KiB + 1 KiB of 'a') and its signed-trailer example
 * (sigv4-streaming-trailers: seed 106e2a8a..., trailer
 * x-amz-checksum-crc32c:sOO8/Q==). Everything else is signed here with the
 * primitives the decoder exposes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/chunked.h"
#include "unit_aws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T20130524 ((time_t)1369353600)

/* ---- helpers ----------------------------------------------------------- */

/* A growable byte string, for bodies and decoded output. */
typedef struct bytes {
  char *p;
  size_t len;
  size_t cap;
} bytes;

static void bytes_put(bytes *b, const void *p, size_t n)
{
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
  }
  if (n > 0)
    memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void bytes_puts(bytes *b, const char *s)
{
  bytes_put(b, s, strlen(s));
}

static void bytes_fill(bytes *b, char ch, size_t n)
{
  for (size_t i = 0; i < n; i++)
    bytes_put(b, &ch, 1);
}

static void bytes_release(bytes *b)
{
  free(b->p);
  memset(b, 0, sizeof *b);
}

static int sink(void *ctx, const void *p, size_t n, err *e)
{
  (void)e;
  bytes_put(ctx, p, n);
  return 0;
}

/* The auth of a seed request, as sigv4_verify would return it. */
static sigv4_result seed_auth(const char *seed_sig)
{
  sigv4_result r;
  memset(&r, 0, sizeof r);
  strcpy(r.access_key, AK);
  strcpy(r.date, "20130524");
  strcpy(r.region, "us-east-1");
  strcpy(r.service, "s3");
  strcpy(r.amz_date, "20130524T000000Z");
  strcpy(r.scope, "20130524/us-east-1/s3/aws4_request");
  strcpy(r.signature, seed_sig);
  sigv4_signing_key(SECRET, "20130524", "us-east-1", "s3", r.signing_key);
  return r;
}

/* A client-side signer of chunks and trailers, built from the primitives. */
typedef struct signer {
  sigv4_result auth;
  char prev[65];
} signer;

static void sign_sts(const signer *s, const char *sts, char out[65])
{
  uint8_t mac[SHA256_LEN];
  hmac_sha256(s->auth.signing_key, SHA256_LEN, sts, strlen(sts), mac);
  hex_encode(mac, SHA256_LEN, out);
}

static void sign_chunk(signer *s, const void *data, size_t n, char out[65])
{
  uint8_t d[SHA256_LEN];
  char hex[65];
  sha256(data, n, d);
  hex_encode(d, SHA256_LEN, hex);
  char sts[512];
  aws_chunked_string_to_sign(s->auth.amz_date, s->auth.scope, s->prev, hex, sts, sizeof sts);
  sign_sts(s, sts, out);
  memcpy(s->prev, out, 65);
}

static void sign_trailers(signer *s, const char *canonical, char out[65])
{
  uint8_t d[SHA256_LEN];
  char hex[65];
  sha256(canonical, strlen(canonical), d);
  hex_encode(d, SHA256_LEN, hex);
  char sts[512];
  aws_chunked_trailer_string_to_sign(s->auth.amz_date, s->auth.scope, s->prev, hex, sts,
                                     sizeof sts);
  sign_sts(s, sts, out);
  memcpy(s->prev, out, 65);
}

/* Appends one chunk; signed when s is not NULL. */
static void put_chunk(bytes *body, signer *s, const char *data, size_t n)
{
  char head[128];
  if (s != NULL) {
    char sig[65];
    sign_chunk(s, data, n, sig);
    snprintf(head, sizeof head, "%zx;chunk-signature=%s\r\n", n, sig);
  } else {
    snprintf(head, sizeof head, "%zx\r\n", n);
  }
  bytes_puts(body, head);
  bytes_put(body, data, n);
  if (n > 0)
    bytes_puts(body, "\r\n");
}

typedef struct decoded {
  int feed_rc;
  int finish_rc;
  bytes out;
  err e;
} decoded;

/* Feeds body in pieces cut at the given offsets (sorted, may be empty). */
static decoded decode_cuts(aws_chunked *c, const bytes *body, const size_t *cuts, size_t ncuts)
{
  decoded d;
  memset(&d, 0, sizeof d);
  size_t off = 0;
  for (size_t i = 0; i <= ncuts && d.feed_rc == 0; i++) {
    size_t end = i < ncuts ? cuts[i] : body->len;
    d.feed_rc = aws_chunked_feed(c, body->p + off, end - off, sink, &d.out, &d.e);
    off = end;
  }
  if (d.feed_rc == 0)
    d.finish_rc = aws_chunked_finish(c, &d.e);
  return d;
}

static decoded decode_whole(chunked_mode mode, const sigv4_result *auth, const bytes *body)
{
  aws_chunked *c = aws_chunked_new(mode, auth);
  decoded d = decode_cuts(c, body, NULL, 0);
  aws_chunked_free(c);
  return d;
}

static decoded decode_bytewise(chunked_mode mode, const sigv4_result *auth, const bytes *body)
{
  aws_chunked *c = aws_chunked_new(mode, auth);
  decoded d;
  memset(&d, 0, sizeof d);
  for (size_t i = 0; i < body->len && d.feed_rc == 0; i++)
    d.feed_rc = aws_chunked_feed(c, body->p + i, 1, sink, &d.out, &d.e);
  if (d.feed_rc == 0)
    d.finish_rc = aws_chunked_finish(c, &d.e);
  aws_chunked_free(c);
  return d;
}

/* ---- AWS's streaming example ------------------------------------------- */

#define SEED_SIG "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define CHUNK1_SIG "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define CHUNK2_SIG "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
#define FINAL_SIG "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"

static void aws_example_body(bytes *body)
{
  bytes_puts(body, "10000;chunk-signature=" CHUNK1_SIG "\r\n");
  bytes_fill(body, 'a', 65536);
  bytes_puts(body, "\r\n400;chunk-signature=" CHUNK2_SIG "\r\n");
  bytes_fill(body, 'a', 1024);
  bytes_puts(body, "\r\n0;chunk-signature=" FINAL_SIG "\r\n\r\n");
}

static const char *lookup(void *ctx, const char *access_key)
{
  (void)ctx;
  return strcmp(access_key, AK) == 0 ? SECRET : NULL;
}

static void test_aws_streaming_example(void **state)
{
  (void)state;
  /* the seed request, verified as the server would */
  static const str_pair headers[] = {
    {"host", "s3.amazonaws.com"},
    {"x-amz-date", "20130524T000000Z"},
    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
    {"authorization",
     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
     "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
     "x-amz-decoded-content-length;x-amz-storage-class,Signature=" SEED_SIG},
    {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
    {"content-encoding", "aws-chunked"},
    {"x-amz-decoded-content-length", "66560"},
    {"content-length", "66824"},
  };
  sigv4_request req = {
    .method = "PUT",
    .raw_path = "/examplebucket/chunkObject.txt",
    .headers = headers,
    .nheaders = sizeof headers / sizeof headers[0],
  };
  arena *a = arena_new();
  sigv4_result auth;
  err e;
  assert_int_equal(sigv4_verify(&req, lookup, NULL, T20130524, a, &auth, &e), 0);
  assert_string_equal(auth.signature, SEED_SIG);
  assert_string_equal(auth.payload_hash, SIGV4_STREAMING_SIGNED);
  arena_free(a);

  /* the first chunk's string to sign and signature, as documented */
  char sts[512];
  aws_chunked_string_to_sign(auth.amz_date, auth.scope, auth.signature,
                             "bf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a",
                             sts, sizeof sts);
  assert_string_equal(sts, "AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n"
                           "20130524/us-east-1/s3/aws4_request\n" SEED_SIG "\n"
                           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                           "bf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a");
  uint8_t mac[SHA256_LEN];
  char hex[65];
  hmac_sha256(auth.signing_key, SHA256_LEN, sts, strlen(sts), mac);
  hex_encode(mac, SHA256_LEN, hex);
  assert_string_equal(hex, CHUNK1_SIG);

  /* the whole body: in one piece and one byte at a time */
  bytes body = {0};
  aws_example_body(&body);
  assert_int_equal(body.len, 66824); /* the example's Content-Length */
  decoded d = decode_whole(CHUNKED_SIGNED, &auth, &body);
  assert_int_equal(d.feed_rc, 0);
  assert_int_equal(d.finish_rc, 0);
  assert_int_equal(d.out.len, 66560);
  for (size_t i = 0; i < d.out.len; i++)
    assert_int_equal(d.out.p[i], 'a');
  bytes_release(&d.out);
  d = decode_bytewise(CHUNKED_SIGNED, &auth, &body);
  assert_int_equal(d.feed_rc, 0);
  assert_int_equal(d.finish_rc, 0);
  assert_int_equal(d.out.len, 66560);
  bytes_release(&d.out);

  aws_chunked *c = aws_chunked_new(CHUNKED_SIGNED, &auth);
  assert_int_equal(aws_chunked_feed(c, body.p, body.len, sink, &d.out, &e), 0);
  assert_int_equal(aws_chunked_finish(c, &e), 0);
  assert_int_equal(aws_chunked_decoded_len(c), 66560);
  aws_chunked_free(c);
  bytes_release(&d.out);

  /* a tampered data byte fails that chunk's signature */
  body.p[1000] = 'b';
  d = decode_whole(CHUNKED_SIGNED, &auth, &body);
  assert_int_equal(d.feed_rc, ERR_SIGNATURE);
  assert_non_null(strstr(d.e.msg, CHUNK1_SIG));
  bytes_release(&d.out);
  body.p[1000] = 'a';
  /* and so does a tampered signature of the final chunk */
  body.p[body.len - 5] ^= 1;
  d = decode_whole(CHUNKED_SIGNED, &auth, &body);
  assert_int_equal(d.feed_rc, ERR_SIGNATURE);
  bytes_release(&d.out);
  body.p[body.len - 5] ^= 1;
  /* chunks of another upload (another seed) fail at once */
  sigv4_result other = auth;
  other.signature[0] = '5';
  d = decode_whole(CHUNKED_SIGNED, &other, &body);
  assert_int_equal(d.feed_rc, ERR_SIGNATURE);
  bytes_release(&d.out);

  /* truncated bodies */
  size_t cuts[] = {0, 50, 100, 65536, 66000, body.len - 90, body.len - 3};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    bytes part = {0};
    bytes_put(&part, body.p, cuts[i]);
    d = decode_whole(CHUNKED_SIGNED, &auth, &part);
    assert_int_equal(d.feed_rc, 0);
    assert_int_equal(d.finish_rc, ERR_INCOMPLETE_BODY);
    bytes_release(&d.out);
    bytes_release(&part);
  }
  bytes_release(&body);
}

static void test_aws_trailer_example(void **state)
{
  (void)state;
  /* the seed request (content-length is not signed in this example) */
  static const str_pair headers[] = {
    {"host", "s3.amazonaws.com"},
    {"x-amz-date", "20130524T000000Z"},
    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
    {"authorization",
     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
     "SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;"
     "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,"
     "Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"},
    {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"},
    {"content-encoding", "aws-chunked"},
    {"x-amz-decoded-content-length", "66560"},
    {"x-amz-trailer", "x-amz-checksum-crc32c"},
  };
  sigv4_request req = {
    .method = "PUT",
    .raw_path = "/examplebucket/chunkObject.txt",
    .headers = headers,
    .nheaders = sizeof headers / sizeof headers[0],
  };
  arena *a = arena_new();
  sigv4_result auth;
  err e;
  assert_int_equal(sigv4_verify(&req, lookup, NULL, T20130524, a, &auth, &e), 0);
  assert_string_equal(auth.payload_hash, SIGV4_STREAMING_SIGNED_TRAILER);
  arena_free(a);
  bytes body = {0};
  bytes_puts(&body, "10000;chunk-signature="
                    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n");
  bytes_fill(&body, 'a', 65536);
  bytes_puts(&body, "\r\n400;chunk-signature="
                    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n");
  bytes_fill(&body, 'a', 1024);
  bytes_puts(&body, "\r\n0;chunk-signature="
                    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n"
                    "x-amz-checksum-crc32c:sOO8/Q==\r\n"
                    "x-amz-trailer-signature:"
                    "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n");
  aws_chunked *c = aws_chunked_new(CHUNKED_SIGNED_TRAILER, &auth);
  decoded d = decode_cuts(c, &body, NULL, 0);
  assert_int_equal(d.feed_rc, 0);
  assert_int_equal(d.finish_rc, 0);
  assert_int_equal(d.out.len, 66560);
  assert_string_equal(aws_chunked_trailer(c, "x-amz-checksum-crc32c"), "sOO8/Q==");
  assert_null(aws_chunked_trailer(c, "x-amz-trailer-signature"));
  aws_chunked_free(c);

  /* the trailer is the CRC32C of the decoded data, base64 of big-endian */
  uint32_t crc = crc32c_update(0, d.out.p, d.out.len);
  uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
  char b64[9];
  base64_encode(be, 4, b64);
  assert_string_equal(b64, "sOO8/Q==");
  bytes_release(&d.out);

  /* a changed trailer value breaks the trailer signature */
  char *v = strstr(body.p + 66000, "sOO8");
  v[0] = 'X';
  d = decode_whole(CHUNKED_SIGNED_TRAILER, &auth, &body);
  assert_int_equal(d.feed_rc, ERR_SIGNATURE);
  bytes_release(&d.out);
  bytes_release(&body);
}

/* ---- our own bodies ---------------------------------------------------- */

static const char payload[] = "The quick brown fox jumps over the lazy dog, twice over: "
                              "the quick brown fox jumps over the lazy dog.";

/* A signed-trailer body: chunks of 16 bytes, a CRC32 trailer, signed. */
static void signed_trailer_body(const sigv4_result *auth, bytes *body, const char *trailer_override)
{
  signer s = {.auth = *auth};
  memcpy(s.prev, auth->signature, 65);
  size_t n = sizeof payload - 1;
  for (size_t off = 0; off < n; off += 16)
    put_chunk(body, &s, payload + off, n - off < 16 ? n - off : 16);
  put_chunk(body, &s, "", 0);
  uint32_t crc = crc32_update(0, payload, n);
  uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
  char b64[9];
  base64_encode(be, 4, b64);
  char canonical[128];
  snprintf(canonical, sizeof canonical, "x-amz-checksum-crc32:%s\n", b64);
  char sig[65];
  sign_trailers(&s, canonical, sig);
  char line[256];
  snprintf(line, sizeof line, "x-amz-checksum-crc32:%s\r\n",
           trailer_override != NULL ? trailer_override : b64);
  bytes_puts(body, line);
  snprintf(line, sizeof line, "x-amz-trailer-signature:%s\r\n\r\n", sig);
  bytes_puts(body, line);
}

static void test_split_everywhere(void **state)
{
  (void)state;
  sigv4_result auth = seed_auth("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  bytes body = {0};
  signed_trailer_body(&auth, &body, NULL);
  decoded whole = decode_whole(CHUNKED_SIGNED_TRAILER, &auth, &body);
  assert_int_equal(whole.feed_rc, 0);
  assert_int_equal(whole.finish_rc, 0);
  assert_int_equal(whole.out.len, sizeof payload - 1);
  assert_memory_equal(whole.out.p, payload, sizeof payload - 1);

  /* two pieces, cut at every byte boundary; and three pieces around it */
  for (size_t k = 0; k <= body.len; k++) {
    size_t cuts3[2] = {k / 2, k};
    for (int variant = 0; variant < 2; variant++) {
      aws_chunked *c = aws_chunked_new(CHUNKED_SIGNED_TRAILER, &auth);
      decoded d = variant == 0 ? decode_cuts(c, &body, &k, 1) : decode_cuts(c, &body, cuts3, 2);
      assert_int_equal(d.feed_rc, 0);
      assert_int_equal(d.finish_rc, 0);
      assert_int_equal(d.out.len, whole.out.len);
      assert_memory_equal(d.out.p, whole.out.p, whole.out.len);
      assert_non_null(aws_chunked_trailer(c, "x-amz-checksum-crc32"));
      aws_chunked_free(c);
      bytes_release(&d.out);
    }
  }
  decoded d = decode_bytewise(CHUNKED_SIGNED_TRAILER, &auth, &body);
  assert_int_equal(d.finish_rc, 0);
  assert_int_equal(d.out.len, whole.out.len);
  bytes_release(&d.out);
  bytes_release(&whole.out);

  /* a tampered trailer */
  bytes bad = {0};
  signed_trailer_body(&auth, &bad, "AAAAAA==");
  d = decode_whole(CHUNKED_SIGNED_TRAILER, &auth, &bad);
  assert_int_equal(d.feed_rc, ERR_SIGNATURE);
  bytes_release(&d.out);
  /* and a missing trailer signature */
  char *sigline = strstr(bad.p, "x-amz-trailer-signature:");
  bad.len = (size_t)(sigline - bad.p);
  d = decode_whole(CHUNKED_SIGNED_TRAILER, &auth, &bad);
  assert_int_equal(d.feed_rc, 0);
  assert_int_equal(d.finish_rc, ERR_INCOMPLETE_BODY);
  bytes_release(&d.out);
  bytes_release(&bad);
  bytes_release(&body);
}

static void test_unsigned_trailer(void **state)
{
  (void)state;
  uint32_t crc = crc32_update(0, payload, sizeof payload - 1);
  uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
  char b64[9];
  base64_encode(be, 4, b64);

  bytes body = {0};
  put_chunk(&body, NULL, payload, 40);
  put_chunk(&body, NULL, payload + 40, sizeof payload - 1 - 40);
  put_chunk(&body, NULL, "", 0);
  bytes_puts(&body, "x-amz-checksum-crc32:");
  bytes_puts(&body, b64);
  bytes_puts(&body, "\r\nX-Amz-Meta-Note:  spaced out  \r\n\r\n");
  for (size_t k = 0; k <= body.len; k++) {
    aws_chunked *c = aws_chunked_new(CHUNKED_UNSIGNED_TRAILER, NULL);
    decoded d = decode_cuts(c, &body, &k, 1);
    assert_int_equal(d.feed_rc, 0);
    assert_int_equal(d.finish_rc, 0);
    assert_int_equal(d.out.len, sizeof payload - 1);
    assert_memory_equal(d.out.p, payload, sizeof payload - 1);
    assert_string_equal(aws_chunked_trailer(c, "x-amz-checksum-crc32"), b64);
    assert_string_equal(aws_chunked_trailer(c, "x-amz-meta-note"), "spaced out");
    assert_null(aws_chunked_trailer(c, "x-amz-checksum-crc32c"));
    assert_int_equal(aws_chunked_decoded_len(c), sizeof payload - 1);
    aws_chunked_free(c);
    bytes_release(&d.out);
  }
  bytes_release(&body);

  /* no trailers at all, with or without the closing empty line */
  bytes empty = {0};
  bytes_puts(&empty, "3\r\nabc\r\n0\r\n\r\n");
  decoded d = decode_whole(CHUNKED_UNSIGNED_TRAILER, NULL, &empty);
  assert_int_equal(d.finish_rc, 0);
  assert_int_equal(d.out.len, 3);
  bytes_release(&d.out);
  empty.len -= 2;
  d = decode_whole(CHUNKED_UNSIGNED_TRAILER, NULL, &empty);
  assert_int_equal(d.finish_rc, 0);
  bytes_release(&d.out);
  /* truncated: inside a chunk, and inside a trailer line */
  empty.len = 6;
  d = decode_whole(CHUNKED_UNSIGNED_TRAILER, NULL, &empty);
  assert_int_equal(d.finish_rc, ERR_INCOMPLETE_BODY);
  bytes_release(&d.out);
  bytes_release(&empty);
  bytes part = {0};
  bytes_puts(&part, "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NhCm");
  d = decode_whole(CHUNKED_UNSIGNED_TRAILER, NULL, &part);
  assert_int_equal(d.finish_rc, ERR_INCOMPLETE_BODY);
  bytes_release(&d.out);
  bytes_release(&part);
}

static int refuse(void *ctx, const void *p, size_t n, err *e)
{
  (void)ctx;
  (void)p;
  (void)n;
  return err_set(e, ERR_NO_SPACE, "no space left for 'bucket/key'");
}

static void test_bad_framing(void **state)
{
  (void)state;
  static const char *const bad[] = {
    "zz\r\nabc\r\n0\r\n\r\n",                  /* size not hex */
    "3\r\nabcd\r\n0\r\n\r\n",                  /* data longer than declared */
    "3\nabc\r\n0\r\n\r\n",                     /* bare LF */
    "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\njunk", /* junk after the end */
    "3\r\nabc\r\n0\r\nno-colon-here\r\n\r\n",  /* malformed trailer */
    "1000000000000000\r\n",                    /* size too large */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    bytes body = {0};
    bytes_puts(&body, bad[i]);
    decoded d = decode_whole(CHUNKED_UNSIGNED_TRAILER, NULL, &body);
    assert_int_equal(d.feed_rc, ERR_INVALID);
    assert_true(d.e.msg[0] != '\0');
    bytes_release(&d.out);
    bytes_release(&body);
  }

  /* signed modes insist on a chunk signature */
  sigv4_result auth = seed_auth("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  bytes body = {0};
  bytes_puts(&body, "3\r\nabc\r\n0\r\n\r\n");
  decoded d = decode_whole(CHUNKED_SIGNED, &auth, &body);
  assert_int_equal(d.feed_rc, ERR_INVALID);
  bytes_release(&body);
  bytes_release(&d.out);

  /* an over-long chunk header line */
  bytes_puts(&body, "3;");
  bytes_fill(&body, 'x', 5000);
  d = decode_whole(CHUNKED_UNSIGNED_TRAILER, NULL, &body);
  assert_int_equal(d.feed_rc, ERR_INVALID);
  assert_non_null(strstr(d.e.msg, "4096"));
  bytes_release(&body);
  bytes_release(&d.out);

  /* too many trailer bytes */
  bytes_puts(&body, "0\r\n");
  for (int i = 0; i < 40; i++) {
    bytes_puts(&body, "x-amz-meta-pad:");
    bytes_fill(&body, 'p', 1000);
    bytes_puts(&body, "\r\n");
  }
  d = decode_whole(CHUNKED_UNSIGNED_TRAILER, NULL, &body);
  assert_int_equal(d.feed_rc, ERR_INVALID);
  bytes_release(&body);
  bytes_release(&d.out);

  /* an emit failure stops the decoder with that code, and sticks */
  bytes_puts(&body, "3\r\nabc\r\n0\r\n\r\n");
  aws_chunked *c = aws_chunked_new(CHUNKED_UNSIGNED_TRAILER, NULL);
  err e = {0};
  assert_int_equal(aws_chunked_feed(c, body.p, body.len, refuse, NULL, &e), ERR_NO_SPACE);
  assert_string_equal(e.msg, "no space left for 'bucket/key'");
  err_clear(&e);
  assert_int_equal(aws_chunked_feed(c, "x", 1, refuse, NULL, &e), ERR_NO_SPACE);
  assert_string_equal(e.msg, "no space left for 'bucket/key'");
  assert_int_equal(aws_chunked_finish(c, &e), ERR_NO_SPACE);
  aws_chunked_free(c);
  bytes_release(&body);
  assert_null(aws_chunked_free(NULL));
}

int unit_aws_chunked_run(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_aws_streaming_example),
    cmocka_unit_test(test_aws_trailer_example),
    cmocka_unit_test(test_split_everywhere),
    cmocka_unit_test(test_unsigned_trailer),
    cmocka_unit_test(test_bad_framing),
  };
  return cmocka_run_group_tests_name("chunked", tests, NULL, NULL);
}
