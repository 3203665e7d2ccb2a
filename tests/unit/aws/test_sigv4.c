/* tests/unit/aws/test_sigv4.c -- unit tests of aws/sigv4.c, and the main
 * of the unit-aws program (it also runs test_chunked.c's group).
 *
 * The known signatures are AWS's published examples: the S3 header-auth
 * examples (GET Object, PUT Object, GET Bucket Lifecycle, List Objects), the
 * S3 presigned URL example, and vectors of the SigV4 test suite
 * (get-vanilla, get-relative-relative, get-vanilla-query-order-key-case,
 * post-vanilla) for a service other than s3.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/sigv4.h"
#include "unit_aws.h"

#include <string.h>

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define T20130524 ((time_t)1369353600) /* 20130524T000000Z */

/* A request under construction. */
typedef struct treq {
  sigv4_request r;
  str_pair h[16];
  str_pair q[16];
} treq;

static void treq_init(treq *t, const char *method, const char *path)
{
  memset(t, 0, sizeof *t);
  t->r.method = method;
  t->r.raw_path = path;
  t->r.headers = t->h;
  t->r.query = t->q;
}

static void hdr(treq *t, const char *name, const char *value)
{
  t->h[t->r.nheaders].name = name;
  t->h[t->r.nheaders].value = value;
  t->r.nheaders++;
}

static void qry(treq *t, const char *name, const char *value)
{
  t->q[t->r.nquery].name = name;
  t->q[t->r.nquery].value = value;
  t->r.nquery++;
}

/* Replaces the value of the first header called name. */
static void hdr_set(treq *t, const char *name, const char *value)
{
  for (size_t i = 0; i < t->r.nheaders; i++)
    if (strcmp(t->h[i].name, name) == 0) {
      t->h[i].value = value;
      return;
    }
  hdr(t, name, value);
}

static void qry_set(treq *t, const char *name, const char *value)
{
  for (size_t i = 0; i < t->r.nquery; i++)
    if (strcmp(t->q[i].name, name) == 0) {
      t->q[i].value = value;
      return;
    }
  qry(t, name, value);
}

static const char *lookup(void *ctx, const char *access_key)
{
  const char *const *keys = ctx; /* {access key, secret} */
  return strcmp(access_key, keys[0]) == 0 ? keys[1] : NULL;
}

static const char *const example_keys[] = {AK, SECRET};

/* Results of verify_at live in this arena until the group ends. */
static arena *group_arena;

static int group_setup(void **state)
{
  (void)state;
  group_arena = arena_new();
  return 0;
}

static int group_teardown(void **state)
{
  (void)state;
  group_arena = arena_free(group_arena);
  return 0;
}

static int verify_at(const treq *t, time_t now, sigv4_result *out, err *e)
{
  err_clear(e);
  return sigv4_verify(&t->r, lookup, (void *)example_keys, now, group_arena, out, e);
}

/* ---- the S3 header-auth examples --------------------------------------- */

static void get_object_request(treq *t, const char *auth)
{
  treq_init(t, "GET", "/test.txt");
  hdr(t, "host", "examplebucket.s3.amazonaws.com");
  hdr(t, "range", "bytes=0-9");
  hdr(t, "x-amz-content-sha256", EMPTY_SHA256);
  hdr(t, "x-amz-date", "20130524T000000Z");
  if (auth != NULL)
    hdr(t, "authorization", auth);
}

#define GET_OBJECT_AUTH                                                                   \
  "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," \
  "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"                            \
  "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"

static void test_get_object_example(void **state)
{
  (void)state;
  treq t;
  get_object_request(&t, GET_OBJECT_AUTH);
  arena *a = arena_new();

  /* the documented canonical request and string to sign */
  char *creq = sigv4_canonical_request(&t.r, "s3", "host;range;x-amz-content-sha256;x-amz-date",
                                       EMPTY_SHA256, false, a);
  assert_string_equal(creq, "GET\n/test.txt\n\n"
                            "host:examplebucket.s3.amazonaws.com\n"
                            "range:bytes=0-9\n"
                            "x-amz-content-sha256:" EMPTY_SHA256 "\n"
                            "x-amz-date:20130524T000000Z\n\n"
                            "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
  char *sts = sigv4_string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", creq, a);
  assert_string_equal(sts, "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                           "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");

  sigv4_result out;
  err e;
  assert_int_equal(sigv4_verify(&t.r, lookup, (void *)example_keys, T20130524, a, &out, &e), 0);
  assert_string_equal(out.access_key, AK);
  assert_string_equal(out.date, "20130524");
  assert_string_equal(out.region, "us-east-1");
  assert_string_equal(out.service, "s3");
  assert_string_equal(out.amz_date, "20130524T000000Z");
  assert_string_equal(out.scope, "20130524/us-east-1/s3/aws4_request");
  assert_string_equal(out.signature,
                      "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  assert_string_equal(out.payload_hash, EMPTY_SHA256);
  assert_false(out.presigned);
  uint8_t key[SHA256_LEN];
  sigv4_signing_key(SECRET, "20130524", "us-east-1", "s3", key);
  assert_memory_equal(key, out.signing_key, SHA256_LEN);

  /* the client signer produces the same header (with ", " separators) */
  treq u;
  get_object_request(&u, NULL);
  char *auth = sigv4_sign_header(&u.r, AK, SECRET, "us-east-1", "s3", "20130524T000000Z",
                                 "host;range;x-amz-content-sha256;x-amz-date", EMPTY_SHA256, a);
  assert_string_equal(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
                            "s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;"
                            "x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba"
                            "48dd91039c6036bdb41");
  /* and, with signed_headers NULL, signs every header: the same set here */
  assert_string_equal(sigv4_sign_header(&u.r, AK, SECRET, "us-east-1", "s3", "20130524T000000Z",
                                        NULL, EMPTY_SHA256, a),
                      auth);
  char service[32];
  assert_true(sigv4_scope_service(&t.r, service));
  assert_string_equal(service, "s3");
  assert_false(sigv4_scope_service(&u.r, service));
  arena_free(a);
}

static void test_put_object_example(void **state)
{
  (void)state;
  /* "test$file.text": the raw path carries %24 and s3 signs it as is; the
   * Date header is signed alongside x-amz-date */
  treq t;
  treq_init(&t, "PUT", "/test%24file.text");
  hdr(&t, "host", "examplebucket.s3.amazonaws.com");
  hdr(&t, "date", "Fri, 24 May 2013 00:00:00 GMT");
  hdr(&t, "x-amz-date", "20130524T000000Z");
  hdr(&t, "x-amz-storage-class", "REDUCED_REDUNDANCY");
  hdr(&t, "x-amz-content-sha256",
      "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  hdr(&t, "authorization",
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
      "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
      "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  sigv4_result out;
  err e;
  assert_int_equal(verify_at(&t, T20130524, &out, &e), 0);
  assert_string_equal(out.payload_hash,
                      "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  uint8_t d[SHA256_LEN];
  char hex[65];
  sha256("Welcome to Amazon S3.", 21, d);
  hex_encode(d, SHA256_LEN, hex);
  assert_string_equal(hex, out.payload_hash);
}

static void test_bucket_examples(void **state)
{
  (void)state;
  treq t;
  sigv4_result out;
  err e;
  /* GET ?lifecycle: a bare flag canonicalises as "lifecycle=" */
  treq_init(&t, "GET", "/");
  qry(&t, "lifecycle", "");
  hdr(&t, "host", "examplebucket.s3.amazonaws.com");
  hdr(&t, "x-amz-date", "20130524T000000Z");
  hdr(&t, "x-amz-content-sha256", EMPTY_SHA256);
  hdr(&t, "authorization",
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
      "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
      "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  assert_int_equal(verify_at(&t, T20130524, &out, &e), 0);

  /* GET ?max-keys=2&prefix=J, parameters given out of order */
  treq_init(&t, "GET", "/");
  qry(&t, "prefix", "J");
  qry(&t, "max-keys", "2");
  hdr(&t, "host", "examplebucket.s3.amazonaws.com");
  hdr(&t, "x-amz-date", "20130524T000000Z");
  hdr(&t, "x-amz-content-sha256", EMPTY_SHA256);
  hdr(&t, "authorization",
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
      "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
      "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  assert_int_equal(verify_at(&t, T20130524, &out, &e), 0);
}

/* ---- failures of header auth ------------------------------------------- */

static void test_header_failures(void **state)
{
  (void)state;
  treq t;
  sigv4_result out;
  err e;

  /* wrong secret */
  get_object_request(&t, GET_OBJECT_AUTH);
  static const char *const wrong[] = {AK, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ"};
  arena *a = arena_new();
  assert_int_equal(sigv4_verify(&t.r, lookup, (void *)wrong, T20130524, a, &out, &e),
                   ERR_SIGNATURE);
  assert_non_null(strstr(e.msg, "'" AK "'"));
  arena_free(a);

  /* a signed header changed in flight */
  get_object_request(&t, GET_OBJECT_AUTH);
  hdr_set(&t, "range", "bytes=0-99");
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_SIGNATURE);
  /* an unsigned header may change */
  get_object_request(&t, GET_OBJECT_AUTH);
  hdr(&t, "user-agent", "anything");
  assert_int_equal(verify_at(&t, T20130524, &out, &e), 0);

  /* skew: 15 minutes either way is fine, one second more is not */
  get_object_request(&t, GET_OBJECT_AUTH);
  assert_int_equal(verify_at(&t, T20130524 + 900, &out, &e), 0);
  assert_int_equal(verify_at(&t, T20130524 - 900, &out, &e), 0);
  assert_int_equal(verify_at(&t, T20130524 + 901, &out, &e), ERR_TIME_SKEWED);
  assert_int_equal(verify_at(&t, T20130524 - 901, &out, &e), ERR_TIME_SKEWED);

  /* no signature at all */
  get_object_request(&t, NULL);
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_DENIED);

  /* unknown access key */
  get_object_request(&t, "AWS4-HMAC-SHA256 Credential=NOBODY/20130524/us-east-1/s3/aws4_request,"
                         "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                         "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_UNKNOWN_ACCESS_KEY);
  assert_non_null(strstr(e.msg, "'NOBODY'"));

  /* malformed headers */
  static const char *const malformed[] = {
    "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,"
    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date",
    "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,"
    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    "AWS4-HMAC-SHA256 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws5_request,"
    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    "AWS4-HMAC-SHA256 Credential=" AK "/2013052/us-east-1/s3/aws4_request,"
    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    "AWS4-HMAC-SHA256 Credential=" AK "/20130525/us-east-1/s3/aws4_request," /* not the date */
    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request," /* no host */
    "SignedHeaders=range;x-amz-content-sha256;x-amz-date,"
    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,"
    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8",
    "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,"
    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Bogus=1,"
    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
    "AWS4-HMAC-SHA256",
  };
  for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
    get_object_request(&t, malformed[i]);
    assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_AUTH_MALFORMED);
    assert_true(e.msg[0] != '\0');
  }

  /* s3 needs x-amz-content-sha256 with header auth, and a valid one */
  treq_init(&t, "GET", "/test.txt");
  hdr(&t, "host", "examplebucket.s3.amazonaws.com");
  hdr(&t, "x-amz-date", "20130524T000000Z");
  hdr(&t, "authorization", GET_OBJECT_AUTH);
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_INVALID_REQUEST);
  hdr(&t, "x-amz-content-sha256", "abc");
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_INVALID);

  /* no date at all */
  treq_init(&t, "GET", "/test.txt");
  hdr(&t, "host", "examplebucket.s3.amazonaws.com");
  hdr(&t, "x-amz-content-sha256", EMPTY_SHA256);
  hdr(&t, "authorization", GET_OBJECT_AUTH);
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_AUTH_MALFORMED);
}

static void test_header_tolerance(void **state)
{
  (void)state;
  treq t;
  sigv4_result out;
  err e;
  /* spaces after commas (what botocore sends) and around them */
  get_object_request(&t, "AWS4-HMAC-SHA256  Credential=" AK "/20130524/us-east-1/s3/aws4_request,"
                         "   SignedHeaders=host;range;x-amz-content-sha256;x-amz-date ,  "
                         "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  assert_int_equal(verify_at(&t, T20130524, &out, &e), 0);
  /* components in another order */
  get_object_request(&t, "AWS4-HMAC-SHA256 "
                         "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41, "
                         "Credential=" AK "/20130524/us-east-1/s3/aws4_request, "
                         "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date");
  assert_int_equal(verify_at(&t, T20130524, &out, &e), 0);
  /* header values are trimmed and inner spaces collapsed; repeats joined */
  arena *a = arena_new();
  treq u;
  treq_init(&u, "GET", "/k");
  hdr(&u, "host", "h");
  hdr(&u, "x-amz-meta-a", "  one   two  ");
  hdr(&u, "x-amz-meta-a", "three");
  char *creq = sigv4_canonical_request(&u.r, "s3", "host;x-amz-meta-a", "UNSIGNED-PAYLOAD", false, a);
  assert_string_equal(creq, "GET\n/k\n\nhost:h\nx-amz-meta-a:one two,three\n\n"
                            "host;x-amz-meta-a\nUNSIGNED-PAYLOAD");
  /* the Date header stands in for x-amz-date */
  treq_init(&u, "GET", "/test.txt");
  hdr(&u, "host", "examplebucket.s3.amazonaws.com");
  hdr(&u, "date", "Fri, 24 May 2013 00:00:00 GMT");
  hdr(&u, "x-amz-content-sha256", EMPTY_SHA256);
  char *auth = sigv4_sign_header(&u.r, AK, SECRET, "us-east-1", "s3", "20130524T000000Z", NULL,
                                 EMPTY_SHA256, a);
  hdr(&u, "authorization", auth);
  assert_int_equal(verify_at(&u, T20130524, &out, &e), 0);
  assert_string_equal(out.amz_date, "20130524T000000Z");
  arena_free(a);
}

/* ---- presigned URLs ---------------------------------------------------- */

static void presigned_request(treq *t)
{
  treq_init(t, "GET", "/test.txt");
  qry(t, "X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  qry(t, "X-Amz-Credential", AK "/20130524/us-east-1/s3/aws4_request");
  qry(t, "X-Amz-Date", "20130524T000000Z");
  qry(t, "X-Amz-Expires", "86400");
  qry(t, "X-Amz-SignedHeaders", "host");
  qry(t, "X-Amz-Signature", "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  hdr(t, "host", "examplebucket.s3.amazonaws.com");
}

static void test_presigned_example(void **state)
{
  (void)state;
  treq t;
  presigned_request(&t);
  arena *a = arena_new();
  char *creq = sigv4_canonical_request(&t.r, "s3", "host", SIGV4_UNSIGNED_PAYLOAD, true, a);
  assert_string_equal(creq, "GET\n/test.txt\n"
                            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
                            "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                            "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
                            "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD");
  arena_free(a);

  sigv4_result out;
  err e;
  assert_int_equal(verify_at(&t, T20130524, &out, &e), 0);
  assert_true(out.presigned);
  assert_string_equal(out.payload_hash, SIGV4_UNSIGNED_PAYLOAD);
  assert_string_equal(out.signature,
                      "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  char service[32];
  assert_true(sigv4_scope_service(&t.r, service));
  assert_string_equal(service, "s3");

  /* valid until date + expires, expired one second later */
  assert_int_equal(verify_at(&t, T20130524 + 86400, &out, &e), 0);
  assert_int_equal(verify_at(&t, T20130524 + 86401, &out, &e), ERR_EXPIRED);
  assert_string_equal(e.msg, "request has expired");
  /* a date in the future by more than 15 minutes */
  assert_int_equal(verify_at(&t, T20130524 - 900, &out, &e), 0);
  assert_int_equal(verify_at(&t, T20130524 - 901, &out, &e), ERR_TIME_SKEWED);

  /* a query parameter added after signing */
  presigned_request(&t);
  qry(&t, "response-content-type", "text/html");
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_SIGNATURE);
  /* a wrong signature */
  presigned_request(&t);
  qry_set(&t, "X-Amz-Signature", "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d405");
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_SIGNATURE);
  /* x-amz-content-sha256, when sent, is what was signed */
  presigned_request(&t);
  hdr(&t, "x-amz-content-sha256", EMPTY_SHA256);
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_SIGNATURE);
  assert_string_equal(out.payload_hash, EMPTY_SHA256);
}

static void test_presigned_failures(void **state)
{
  (void)state;
  treq t;
  sigv4_result out;
  err e;
  static const char *const bad_expires[] = {"0", "604801", "-1", "", "1e3", "99999999"};
  for (size_t i = 0; i < sizeof bad_expires / sizeof bad_expires[0]; i++) {
    presigned_request(&t);
    qry_set(&t, "X-Amz-Expires", bad_expires[i]);
    assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_AUTH_MALFORMED);
  }
  presigned_request(&t);
  qry_set(&t, "X-Amz-Expires", "604800"); /* the maximum is allowed (and signed: mismatch) */
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_SIGNATURE);

  static const char *const required[] = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                                         "X-Amz-Expires", "X-Amz-SignedHeaders"};
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
    presigned_request(&t);
    for (size_t k = 0; k < t.r.nquery; k++)
      if (strcmp(t.q[k].name, required[i]) == 0)
        t.q[k].name = "X-Ignored";
    assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_AUTH_MALFORMED);
    assert_non_null(strstr(e.msg, required[i]));
  }
  presigned_request(&t);
  qry_set(&t, "X-Amz-Algorithm", "AWS4-HMAC-SHA1");
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_AUTH_MALFORMED);
  presigned_request(&t);
  qry_set(&t, "X-Amz-Date", "20130525T000000Z");
  assert_int_equal(verify_at(&t, T20130524 + 86400, &out, &e), ERR_AUTH_MALFORMED);

  /* both forms at once */
  presigned_request(&t);
  hdr(&t, "authorization", GET_OBJECT_AUTH);
  assert_int_equal(verify_at(&t, T20130524, &out, &e), ERR_INVALID);
}

/* ---- canonical forms, and services other than s3 ----------------------- */

static void test_canonical_query_and_uri(void **state)
{
  (void)state;
  arena *a = arena_new();
  treq t;
  treq_init(&t, "GET", "");
  qry(&t, "uploads", "");
  qry(&t, "b", "x y/z");
  qry(&t, "a", "2");
  qry(&t, "a", "10");
  qry(&t, "A", "+");
  hdr(&t, "host", "h");
  char *creq = sigv4_canonical_request(&t.r, "s3", "host", "UNSIGNED-PAYLOAD", false, a);
  assert_string_equal(creq, "GET\n/\nA=%2B&a=10&a=2&b=x%20y%2Fz&uploads=\nhost:h\n\nhost\n"
                            "UNSIGNED-PAYLOAD");

  /* s3: the raw path exactly; others: normalised and encoded once more */
  treq_init(&t, "GET", "/a/./b/../c//my%20key");
  hdr(&t, "host", "h");
  creq = sigv4_canonical_request(&t.r, "s3", "host", "UNSIGNED-PAYLOAD", false, a);
  assert_true(strncmp(creq, "GET\n/a/./b/../c//my%20key\n", 26) == 0);
  creq = sigv4_canonical_request(&t.r, "lambda", "host", "UNSIGNED-PAYLOAD", false, a);
  assert_true(strncmp(creq, "GET\n/a/c/my%2520key\n", 20) == 0);
  treq_init(&t, "GET", "/2015-03-31/functions/fn:1/invocations/");
  hdr(&t, "host", "h");
  creq = sigv4_canonical_request(&t.r, "lambda", "host", "UNSIGNED-PAYLOAD", false, a);
  assert_true(strncmp(creq, "GET\n/2015-03-31/functions/fn%3A1/invocations/\n", 46) == 0);
  treq_init(&t, "GET", "/../..");
  hdr(&t, "host", "h");
  creq = sigv4_canonical_request(&t.r, "sqs", "host", "UNSIGNED-PAYLOAD", false, a);
  assert_true(strncmp(creq, "GET\n/\n", 6) == 0);
  arena_free(a);
}

#define SUITE_AK "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define T20150830 ((time_t)1440938160) /* 20150830T123600Z */

static int suite_verify(const char *method, const char *path, const char *sig, bool query)
{
  static const char *const keys[] = {SUITE_AK, SUITE_SECRET};
  treq t;
  treq_init(&t, method, path);
  if (query) {
    qry(&t, "Param2", "value2");
    qry(&t, "Param1", "value1");
  }
  hdr(&t, "host", "example.amazonaws.com");
  hdr(&t, "x-amz-date", "20150830T123600Z");
  arena *a = arena_new();
  char *auth = arena_sprintf(a,
                             "AWS4-HMAC-SHA256 Credential=" SUITE_AK
                             "/20150830/us-east-1/service/aws4_request, "
                             "SignedHeaders=host;x-amz-date, Signature=%s",
                             sig);
  hdr(&t, "authorization", auth);
  sigv4_result out;
  err e;
  int rc = sigv4_verify(&t.r, lookup, (void *)keys, T20150830, a, &out, &e);
  if (rc == 0)
    assert_string_equal(out.service, "service");
  arena_free(a);
  return rc;
}

static void test_other_services(void **state)
{
  (void)state;
  /* the SigV4 test suite: no x-amz-content-sha256, empty bodies */
  static const char vanilla[] = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
  assert_int_equal(suite_verify("GET", "/", vanilla, false), 0);
  assert_int_equal(suite_verify("GET", "/example1/example2/../..", vanilla, false), 0);
  assert_int_equal(suite_verify("GET", "/./", vanilla, false), 0);
  assert_int_equal(suite_verify("GET", "/other", vanilla, false), ERR_SIGNATURE);
  assert_int_equal(
      suite_verify("GET", "/", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
                   true),
      0);
  assert_int_equal(
      suite_verify("POST", "/", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
                   false),
      0);

  /* a body the SDK signed by hash without sending the hash */
  static const char *const keys[] = {AK, SECRET};
  const char *body = "{\"FunctionName\":\"f\"}";
  uint8_t d[SHA256_LEN];
  char body_hex[65];
  sha256(body, strlen(body), d);
  hex_encode(d, SHA256_LEN, body_hex);
  arena *a = arena_new();
  treq t;
  treq_init(&t, "POST", "/2015-03-31/functions/f/invocations");
  hdr(&t, "host", "localhost:9000");
  hdr(&t, "x-amz-date", "20130524T000000Z");
  hdr(&t, "content-type", "application/json");
  char *auth = sigv4_sign_header(&t.r, AK, SECRET, "us-east-1", "lambda", "20130524T000000Z", NULL,
                                 body_hex, a);
  assert_non_null(strstr(auth, "SignedHeaders=content-type;host;x-amz-date, "));
  hdr(&t, "authorization", auth);
  char service[32];
  assert_true(sigv4_scope_service(&t.r, service));
  assert_string_equal(service, "lambda");
  sigv4_result out;
  err e;
  t.r.body_sha256_hex = body_hex;
  assert_int_equal(sigv4_verify(&t.r, lookup, (void *)keys, T20130524, a, &out, &e), 0);
  assert_string_equal(out.payload_hash, body_hex);
  t.r.body_sha256_hex = NULL; /* read as the empty body */
  assert_int_equal(sigv4_verify(&t.r, lookup, (void *)keys, T20130524, a, &out, &e), ERR_SIGNATURE);
  arena_free(a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_get_object_example),
    cmocka_unit_test(test_put_object_example),
    cmocka_unit_test(test_bucket_examples),
    cmocka_unit_test(test_header_failures),
    cmocka_unit_test(test_header_tolerance),
    cmocka_unit_test(test_presigned_example),
    cmocka_unit_test(test_presigned_failures),
    cmocka_unit_test(test_canonical_query_and_uri),
    cmocka_unit_test(test_other_services),
  };
  int failed = cmocka_run_group_tests_name("sigv4", tests, group_setup, group_teardown);
  failed += unit_aws_chunked_run();
  failed += unit_aws_eventstream_run();
  failed += unit_aws_json_load_run();
  return failed;
}
