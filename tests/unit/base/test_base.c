/* tests/unit/base/test_base.c -- unit tests of base/: hashes, codecs and
 * random ids (hash.c), JSON strings in buffers (buf.c), text and time
 * helpers (text.c) and the XML DOM (xml.c).
 *
 * Known values come from the standards: FIPS 180 / RFC 1321 / RFC 4231
 * digests, the "123456789" check values of CRC-32 and CRC-32C, RFC 4648
 * base64 vectors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/hash.h"
#include "base/lmdb_env.h"
#include "base/text.h"
#include "base/xml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *hex_of(const uint8_t *p, size_t n, char *out)
{
  hex_encode(p, n, out);
  return out;
}

/* ---- hash.c ------------------------------------------------------------ */

static void test_sha256_md5_sha1(void **state)
{
  (void)state;
  uint8_t d[SHA256_LEN];
  char hex[2 * SHA256_LEN + 1];
  sha256("", 0, d);
  assert_string_equal(hex_of(d, SHA256_LEN, hex),
                      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  sha256("abc", 3, d);
  assert_string_equal(hex_of(d, SHA256_LEN, hex),
                      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  md5("", 0, d);
  assert_string_equal(hex_of(d, MD5_LEN, hex), "d41d8cd98f00b204e9800998ecf8427e");
  md5("abc", 3, d);
  assert_string_equal(hex_of(d, MD5_LEN, hex), "900150983cd24fb0d6963f7d28e17f72");

  hasher h;
  hash_init(&h, HASH_SHA1);
  hash_update(&h, "a", 1);
  hash_update(&h, "bc", 2);
  assert_int_equal(hash_final(&h, d), SHA1_LEN);
  hash_release(&h);
  assert_string_equal(hex_of(d, SHA1_LEN, hex), "a9993e364706816aba3e25717850c26c9cd0d89d");

  /* streaming in odd pieces equals one shot */
  static char big[100000];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)(i * 7 + 3);
  uint8_t one[SHA256_LEN];
  sha256(big, sizeof big, one);
  hash_init(&h, HASH_SHA256);
  for (size_t off = 0; off < sizeof big;) {
    size_t step = off % 977 + 1;
    if (step > sizeof big - off)
      step = sizeof big - off;
    hash_update(&h, big + off, step);
    off += step;
  }
  assert_int_equal(hash_final(&h, d), SHA256_LEN);
  hash_release(&h);
  assert_memory_equal(d, one, SHA256_LEN);

  /* a zeroed, never-initialised hasher can be released */
  hasher z;
  memset(&z, 0, sizeof z);
  hash_release(&z);
  assert_int_equal(hash_len(HASH_MD5), 16);
  assert_int_equal(hash_len(HASH_CRC32C), 4);
}

static void test_hmac(void **state)
{
  (void)state;
  uint8_t d[SHA256_LEN];
  char hex[2 * SHA256_LEN + 1];
  /* RFC 4231 test case 2 */
  hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
  assert_string_equal(hex_of(d, SHA256_LEN, hex),
                      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  /* RFC 4231 test case 1 */
  uint8_t key[20];
  memset(key, 0x0b, sizeof key);
  hmac_sha256(key, sizeof key, "Hi There", 8, d);
  assert_string_equal(hex_of(d, SHA256_LEN, hex),
                      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static uint32_t crc32c_bitwise(const uint8_t *p, size_t n)
{
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

static void test_crc(void **state)
{
  (void)state;
  assert_int_equal(crc32_update(0, "123456789", 9), 0xCBF43926u);
  assert_int_equal(crc32c_update(0, "123456789", 9), 0xE3069283u);
  assert_int_equal(crc32c_update(0, "", 0), 0);
  /* incremental equals one shot */
  uint32_t c = crc32c_update(0, "1234", 4);
  assert_int_equal(crc32c_update(c, "56789", 5), 0xE3069283u);
  c = crc32_update(0, "12345", 5);
  assert_int_equal(crc32_update(c, "6789", 4), 0xCBF43926u);

  /* slice-by-8 agrees with the bitwise definition at every length and
   * alignment */
  static uint8_t bytes[300];
  for (size_t i = 0; i < sizeof bytes; i++)
    bytes[i] = (uint8_t)(i * 31 + 17);
  for (size_t start = 0; start < 9; start++)
    for (size_t n = 0; n + start <= sizeof bytes; n += 7)
      assert_int_equal(crc32c_update(0, bytes + start, n), crc32c_bitwise(bytes + start, n));

  /* hash_final writes CRCs big-endian; base64 of that is the S3 header */
  hasher h;
  uint8_t out[4];
  hash_init(&h, HASH_CRC32C);
  hash_update(&h, "123456789", 9);
  assert_int_equal(hash_final(&h, out), 4);
  hash_release(&h);
  assert_int_equal(out[0], 0xE3);
  assert_int_equal(out[3], 0x83);
  char b64[16];
  base64_encode(out, 4, b64);
  assert_string_equal(b64, "4waSgw==");
  hash_init(&h, HASH_CRC32);
  hash_update(&h, "123456789", 9);
  hash_final(&h, out);
  hash_release(&h);
  assert_int_equal(out[0], 0xCB);
  assert_int_equal(out[3], 0x26);
}

static void test_hex(void **state)
{
  (void)state;
  uint8_t b[4] = {0x00, 0xAB, 0x7f, 0xff};
  char hex[9];
  hex_encode(b, 4, hex);
  assert_string_equal(hex, "00ab7fff");
  uint8_t back[4];
  assert_true(hex_decode("00AB7fFF", 8, back, 4));
  assert_memory_equal(back, b, 4);
  assert_false(hex_decode("00ab7ff", 7, back, 4));
  assert_false(hex_decode("00ab7fgf", 8, back, 4));
  assert_false(hex_decode("00ab7fff00", 10, back, 4));
}

static void test_base64(void **state)
{
  (void)state;
  static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                      "Zm9vYmFy"};
  for (size_t i = 0; i < 7; i++) {
    size_t n = strlen(plain[i]);
    char out[16];
    assert_int_equal(base64_encoded_len(n), strlen(coded[i]) + 1);
    base64_encode((const uint8_t *)plain[i], n, out);
    assert_string_equal(out, coded[i]);
    uint8_t back[16];
    assert_int_equal(base64_decode(coded[i], strlen(coded[i]), back, sizeof back), (long)n);
    assert_memory_equal(back, plain[i], n);
  }
  /* round trips of every length over all byte values */
  uint8_t data[256];
  for (int i = 0; i < 256; i++)
    data[i] = (uint8_t)(255 - i);
  for (size_t n = 0; n <= 256; n++) {
    char enc[400];
    uint8_t dec[256];
    base64_encode(data, n, enc);
    assert_int_equal(strlen(enc) + 1, base64_encoded_len(n));
    assert_int_equal(base64_decode(enc, strlen(enc), dec, sizeof dec), (long)n);
    assert_memory_equal(dec, data, n);
  }
  uint8_t out[16];
  assert_int_equal(base64_decode("Zm9", 3, out, sizeof out), -1);      /* no padding */
  assert_int_equal(base64_decode("Zm9v!A==", 8, out, sizeof out), -1); /* bad char */
  assert_int_equal(base64_decode("\xffm9vYmFy", 8, out, sizeof out), -1); /* a high byte */
  assert_int_equal(base64_decode("Zg==Zg==", 8, out, sizeof out), -1); /* padding inside */
  assert_int_equal(base64_decode("Zh==", 4, out, sizeof out), -1);     /* stray bits */
  assert_int_equal(base64_decode("Z===", 4, out, sizeof out), -1);
  assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 5), -1);          /* does not fit */
}

static void test_mem_equal_ct(void **state)
{
  (void)state;
  assert_true(mem_equal_ct("abcd", "abcd", 4));
  assert_false(mem_equal_ct("abcd", "abce", 4));
  assert_false(mem_equal_ct("xbcd", "abcd", 4));
  assert_true(mem_equal_ct("", "", 0));
}

static void test_random_ids(void **state)
{
  (void)state;
  char a[37];
  char b[37];
  uuid_v4(a);
  uuid_v4(b);
  assert_int_equal(strlen(a), 36);
  assert_string_not_equal(a, b);
  for (size_t i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23)
      assert_int_equal(a[i], '-');
    else
      assert_true(hex_value(a[i]) >= 0 && !(a[i] >= 'A' && a[i] <= 'F'));
  }
  assert_int_equal(a[14], '4');                       /* version 4 */
  assert_true(strchr("89ab", a[19]) != NULL);         /* RFC 4122 variant */
  uint8_t r1[32] = {0};
  uint8_t r2[32] = {0};
  random_bytes(r1, sizeof r1);
  random_bytes(r2, sizeof r2);
  assert_false(mem_equal_ct(r1, r2, sizeof r1));
  assert_int_equal(hex_value('0'), 0);
  assert_int_equal(hex_value('f'), 15);
  assert_int_equal(hex_value('F'), 15);
  assert_int_equal(hex_value('g'), -1);
}

/* ---- buf.c ------------------------------------------------------------- */

static void test_buf_extend(void **state)
{
  (void)state;
  buf b;
  buf_init(&b, 8);
  assert_int_equal(buf_puts(&b, "ab"), 0);
  char *p = buf_extend(&b, 4);
  assert_non_null(p);
  memcpy(p, "cdef", 4);
  assert_int_equal(b.len, 6);
  assert_string_equal(b.data, "abcdef");
  assert_null(buf_extend(&b, 3)); /* past max: nothing changes */
  assert_int_equal(b.len, 6);
  assert_string_equal(b.data, "abcdef");
  buf_release(&b);
}

static void test_buf_json_string(void **state)
{
  (void)state;
  buf b;
  buf_init(&b, 64);
  static const char in[] = "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\xc3\xa9";
  assert_int_equal(buf_json_string(&b, in, sizeof in - 1), 0);
  assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i\\u001fj\xc3\xa9\"");
  /* an embedded NUL is data, not the end */
  buf_reset(&b);
  assert_int_equal(buf_json_string(&b, "x\0y", 3), 0);
  assert_string_equal(b.data, "\"x\\u0000y\"");
  /* past the limit nothing is appended */
  buf_reset(&b);
  assert_int_equal(buf_puts(&b, "[1,"), 0);
  char big[80];
  memset(big, 'z', sizeof big);
  assert_int_equal(buf_json_string(&b, big, sizeof big), ERR_ENTITY_TOO_LARGE);
  assert_int_equal(b.len, 3);
  assert_string_equal(b.data, "[1,");
  buf_release(&b);
}

/* ---- text.c ------------------------------------------------------------ */

static void test_uri_encode(void **state)
{
  (void)state;
  arena *a = arena_new();
  assert_string_equal(uri_encode(a, "a b/c~", 6, false), "a%20b%2Fc~");
  assert_string_equal(uri_encode(a, "a b/c~", 6, true), "a%20b/c~");
  assert_string_equal(uri_encode(a, "A-z_0.9~", 8, false), "A-z_0.9~");
  assert_string_equal(uri_encode(a, "a+b=c&d%", 8, false), "a%2Bb%3Dc%26d%25");
  assert_string_equal(uri_encode(a, "\xc3\xa9*", 3, false), "%C3%A9%2A");
  assert_string_equal(uri_encode(a, "", 0, false), "");
  arena_free(a);
}

static void test_percent_decode(void **state)
{
  (void)state;
  arena *a = arena_new();
  size_t n = 0;
  assert_string_equal(percent_decode(a, "a%20b+c%2f", 10, &n), "a b+c/");
  assert_int_equal(n, 6);
  char *z = percent_decode(a, "x%00y", 5, &n);
  assert_int_equal(n, 3);
  assert_int_equal(z[1], '\0');
  assert_int_equal(z[2], 'y');
  assert_null(percent_decode(a, "a%2", 3, &n));
  assert_null(percent_decode(a, "a%", 2, &n));
  assert_null(percent_decode(a, "%zz", 3, &n));
  arena_free(a);
}

static void test_utf8(void **state)
{
  (void)state;
  assert_true(utf8_valid("plain", 5));
  assert_true(utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9)); /* é € 😀 */
  assert_false(utf8_valid("\xc0\xaf", 2));                            /* overlong '/' */
  /* utf8_encode: each width, and what it writes is valid UTF-8 */
  char u[4];
  assert_int_equal(utf8_encode(u, 'A'), 1);
  assert_memory_equal(u, "A", 1);
  assert_int_equal(utf8_encode(u, 0xE9), 2);
  assert_memory_equal(u, "\xc3\xa9", 2);
  assert_int_equal(utf8_encode(u, 0x20AC), 3);
  assert_memory_equal(u, "\xe2\x82\xac", 3);
  assert_int_equal(utf8_encode(u, 0x1F600), 4);
  assert_memory_equal(u, "\xf0\x9f\x98\x80", 4);
  assert_true(utf8_valid(u, utf8_encode(u, 0x10FFFF)));
  assert_true(utf8_valid("abcdefghijklmnop\xc3\xa9xyz", 21));          /* after a long ASCII run */
  assert_false(utf8_valid("abcdefghijklmnop\xc0\xafxyz", 21));
  assert_false(utf8_valid("abcdefghijklmno\xe2\x82", 17));             /* cut short at the end */
  assert_false(utf8_valid("\xe0\x80\xaf", 3));                        /* overlong */
  assert_false(utf8_valid("\xed\xa0\x80", 3));                        /* surrogate */
  assert_false(utf8_valid("\xf4\x90\x80\x80", 4));                    /* > U+10FFFF */
  assert_false(utf8_valid("\xe2\x82", 2));                            /* truncated */
  assert_false(utf8_valid("\x80", 1));                                /* lone continuation */
  assert_int_equal(utf8_chars("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80x"), 4);
  assert_int_equal(utf8_chars(""), 0);
}

/* The shared change list: puts and deletes land together in one group
 * commit, in order; deleting a missing key is no error. */
static void test_lmdb_ops(void **state)
{
  (void)state;
  char dir[] = "/tmp/tarn-unit-lmdb-XXXXXX";
  assert_non_null(mkdtemp(dir));
  MDB_env *env;
  err e = {0};
  lmdb_env_options o = {.map_size = 1 << 20, .max_dbs = 1};
  assert_int_equal(lmdb_env_open(&env, dir, &o, "the test state", &e), 0);
  MDB_txn *txn;
  MDB_dbi dbi;
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "t", MDB_CREATE, &dbi), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  lmdb_committer c = {0};
  assert_int_equal(lmdb_committer_start(&c, env, &(lmdb_committer_hooks){0}, "the test", &e), 0);
  lmdb_ops ops = {0};
  lmdb_ops_put(&ops, dbi, "a", 1, "1", 1);
  lmdb_ops_put(&ops, dbi, "b", 1, "2", 1);
  lmdb_ops_put_owned(&ops, dbi, "a", 1, strdup("3"), 1); /* later wins */
  lmdb_ops_del(&ops, dbi, "b", 1);
  lmdb_ops_del(&ops, dbi, "missing", 7);
  assert_int_equal(lmdb_ops_commit(&c, &ops, &e), 0);
  assert_int_equal(ops.n, 0);
  assert_int_equal(lmdb_read_begin(env, &txn, &e), 0);
  MDB_val k = {1, "a"}, v;
  assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
  assert_memory_equal(v.mv_data, "3", 1);
  k = (MDB_val){1, "b"};
  assert_int_equal(mdb_get(txn, dbi, &k, &v), MDB_NOTFOUND);
  mdb_txn_abort(txn);
  lmdb_committer_stop(&c);
  mdb_env_close(env);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* One error mapping for every part: a full map or disk is ERR_NO_SPACE,
 * anything else ERR_IO, and a change that fills the map through the group
 * committer fails with ERR_NO_SPACE while the ones before it stay. */
static void test_lmdb_errors(void **state)
{
  (void)state;
  err e = {0};
  assert_int_equal(lmdb_error(&e, MDB_MAP_FULL, "write the state"), ERR_NO_SPACE);
  assert_non_null(strstr(e.msg, "cannot write the state: "));
  assert_int_equal(lmdb_error(&e, ENOSPC, "write"), ERR_NO_SPACE);
  assert_int_equal(lmdb_error(&e, EIO, "write"), ERR_IO);
  assert_int_equal(lmdb_error(&e, MDB_CORRUPTED, "read"), ERR_IO);

  char dir[] = "/tmp/tarn-unit-lmdb-full-XXXXXX";
  assert_non_null(mkdtemp(dir));
  MDB_env *env;
  lmdb_env_options o = {.map_size = 64 << 10, .max_dbs = 1};
  assert_int_equal(lmdb_env_open(&env, dir, &o, "the test state", &e), 0);
  MDB_txn *txn;
  MDB_dbi dbi;
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "t", MDB_CREATE, &dbi), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  lmdb_committer c = {0};
  assert_int_equal(lmdb_committer_start(&c, env, &(lmdb_committer_hooks){0}, "the test", &e), 0);
  static char big[16 << 10];
  memset(big, 'x', sizeof big);
  int rc = 0;
  int written = 0;
  for (int i = 0; i < 64 && rc == 0; i++) {
    char key[16];
    int kl = snprintf(key, sizeof key, "k%d", i);
    lmdb_ops ops = {.what = "write the test state"};
    lmdb_ops_put(&ops, dbi, key, (size_t)kl, big, sizeof big);
    rc = lmdb_ops_commit(&c, &ops, &e);
    if (rc == 0)
      written++;
  }
  assert_int_equal(rc, ERR_NO_SPACE);
  assert_non_null(strstr(e.msg, "cannot write the test state"));
  assert_true(written > 0);
  assert_int_equal(lmdb_read_begin(env, &txn, &e), 0);
  MDB_stat st;
  assert_int_equal(mdb_stat(txn, dbi, &st), 0);
  assert_int_equal((int)st.ms_entries, written);
  mdb_txn_abort(txn);
  lmdb_committer_stop(&c);
  mdb_env_close(env);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_str(void **state)
{
  (void)state;
  assert_true(str_ieq("Content-Type", "content-type"));
  assert_false(str_ieq("content-type", "content-typ"));
  assert_true(str_istarts("X-Amz-Meta-Foo", "x-amz-meta-"));
  assert_false(str_istarts("x-am", "x-amz-"));
  assert_true(str_starts("abc", "ab"));
  assert_false(str_starts("abc", "Ab"));
  assert_true(str_ends("file.txt", ".txt"));
  assert_false(str_ends("txt", ".txt"));
  arena *a = arena_new();
  assert_string_equal(str_trim_collapse(a, "  a   b \t c  "), "a b c");
  assert_string_equal(str_trim_collapse(a, "   "), "");
  assert_string_equal(str_trim_collapse(a, "x"), "x");
  arena_free(a);
}

static void test_time(void **state)
{
  (void)state;
  time_t t = 0;
  assert_true(time_parse_iso8601_basic("20130524T000000Z", &t));
  assert_int_equal(t, 1369353600);
  char b[30];
  time_format_iso8601_basic(t, b);
  assert_string_equal(b, "20130524T000000Z");
  assert_true(time_parse_iso8601_basic("20240229T235959Z", &t)); /* leap day */
  time_format_iso8601_basic(t, b);
  assert_string_equal(b, "20240229T235959Z");
  assert_false(time_parse_iso8601_basic("20230229T000000Z", &t));
  assert_false(time_parse_iso8601_basic("20130524T240000Z", &t));
  assert_false(time_parse_iso8601_basic("20130524T000000", &t));
  assert_false(time_parse_iso8601_basic("2013-05-24T00:00:00Z", &t));
  assert_false(time_parse_iso8601_basic("20130524T000000Z ", &t));

  time_format_iso8601_ms(1255369830123, b);
  assert_string_equal(b, "2009-10-12T17:50:30.123Z");
  int64_t ms = 0;
  assert_true(time_parse_iso8601("2009-10-12T17:50:30.123Z", &ms));
  assert_int_equal(ms, 1255369830123);
  assert_true(time_parse_iso8601("2009-10-12T17:50:30Z", &ms));
  assert_int_equal(ms, 1255369830000);
  assert_true(time_parse_iso8601("2009-10-12T17:50:30.5Z", &ms));
  assert_int_equal(ms, 1255369830500);
  assert_false(time_parse_iso8601("2009-10-12T17:50:30.Z", &ms));
  assert_false(time_parse_iso8601("2009-13-12T17:50:30Z", &ms));

  time_format_rfc1123(1255369830, b);
  assert_string_equal(b, "Mon, 12 Oct 2009 17:50:30 GMT");
  assert_true(time_parse_http("Fri, 24 May 2013 00:00:00 GMT", &t));
  assert_int_equal(t, 1369353600);
  assert_true(time_parse_http("Sunday, 06-Nov-94 08:49:37 GMT", &t));
  assert_int_equal(t, 784111777);
  assert_true(time_parse_http("Sun Nov  6 08:49:37 1994", &t));
  assert_int_equal(t, 784111777);
  assert_false(time_parse_http("Fri, 24 May 2013 00:00:00 UTC", &t));
  assert_false(time_parse_http("Fri, 32 May 2013 00:00:00 GMT", &t));
  assert_false(time_parse_http("yesterday", &t));

  assert_true(time_now_ms() > 1600000000000);
  int64_t m1 = time_mono_us();
  assert_true(time_mono_us() >= m1);
  assert_true(time_mono_ms() >= 0);
}

/* ---- xml.c ------------------------------------------------------------- */

static void check_complete(const char *doc)
{
  arena *a = arena_new();
  xml_node *root = NULL;
  err e = {0};
  assert_int_equal(xml_parse(doc, strlen(doc), a, &root, &e), 0);
  assert_non_null(root);
  assert_string_equal(root->name, "CompleteMultipartUpload");
  xml_node *part = xml_child(root, "Part");
  assert_non_null(part);
  assert_string_equal(xml_child_text(part, "PartNumber"), "1");
  assert_string_equal(xml_child_text(part, "ETag"), "\"a54357aff0632cce46d942af68356b38\"");
  assert_ptr_equal(part->parent, root);
  part = xml_next_same(part);
  assert_non_null(part);
  assert_string_equal(xml_child_text(part, "PartNumber"), "2");
  assert_string_equal(xml_child_text(part, "ETag"), "\"0c78aef83f66abc1fa1e8477f296d394\"");
  assert_null(xml_next_same(part));
  assert_null(xml_child_text(part, "Missing"));
  xml_node *pn = xml_child(part, "PartNumber");
  assert_int_equal(pn->text_len, 1);
  assert_non_null(root->text); /* whitespace between elements, never NULL */
  arena_free(a);
}

static void test_xml_complete_upload(void **state)
{
  (void)state;
  check_complete("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                 "<Part><PartNumber>1</PartNumber>"
                 "<ETag>\"a54357aff0632cce46d942af68356b38\"</ETag></Part>"
                 "<Part><PartNumber>2</PartNumber>"
                 "<ETag>&quot;0c78aef83f66abc1fa1e8477f296d394&quot;</ETag></Part>"
                 "</CompleteMultipartUpload>");
  check_complete("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<CompleteMultipartUpload>\n"
                 "  <Part>\n    <PartNumber>1</PartNumber>\n"
                 "    <ETag>\"a54357aff0632cce46d942af68356b38\"</ETag>\n  </Part>\n"
                 "  <!-- a comment -->\n"
                 "  <Part><ETag>\"0c78aef83f66abc1fa1e8477f296d394\"</ETag>"
                 "<PartNumber>2</PartNumber></Part>\n"
                 "</CompleteMultipartUpload>\n");
  check_complete("<s3:CompleteMultipartUpload xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                 "<s3:Part><s3:PartNumber>1</s3:PartNumber>"
                 "<s3:ETag>\"a54357aff0632cce46d942af68356b38\"</s3:ETag></s3:Part>"
                 "<s3:Part><s3:PartNumber>2</s3:PartNumber>"
                 "<s3:ETag>\"0c78aef83f66abc1fa1e8477f296d394\"</s3:ETag></s3:Part>"
                 "</s3:CompleteMultipartUpload>");
}

static int parse_code(const char *doc, err *e)
{
  arena *a = arena_new();
  xml_node *root = NULL;
  int rc = xml_parse(doc, strlen(doc), a, &root, e);
  if (rc != 0)
    assert_null(root);
  arena_free(a);
  return rc;
}

static void test_xml_rejects(void **state)
{
  (void)state;
  err e = {0};
  assert_int_equal(parse_code("<a><b></a>", &e), ERR_MALFORMED_XML);
  assert_non_null(strstr(e.msg, "malformed xml"));
  assert_int_equal(parse_code("", &e), ERR_MALFORMED_XML);
  assert_int_equal(parse_code("<a>", &e), ERR_MALFORMED_XML);
  assert_int_equal(parse_code("<a/><b/>", &e), ERR_MALFORMED_XML);
  assert_int_equal(parse_code("<a>&bogus;</a>", &e), ERR_MALFORMED_XML);

  /* any DTD is refused, and with it entity expansion */
  err_clear(&e);
  assert_int_equal(parse_code("<!DOCTYPE a><a/>", &e), ERR_MALFORMED_XML);
  assert_non_null(strstr(e.msg, "document type"));
  const char *laughs = "<?xml version=\"1.0\"?>"
                       "<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
                       "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>"
                       "<lolz>&lol2;</lolz>";
  assert_int_equal(parse_code(laughs, &e), ERR_MALFORMED_XML);
  const char *xxe = "<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>";
  assert_int_equal(parse_code(xxe, &e), ERR_MALFORMED_XML);

  /* depth limit: 32 levels pass, 33 do not */
  char deep[1024] = "";
  for (int i = 0; i < 32; i++)
    strcat(deep, "<d>");
  for (int i = 0; i < 32; i++)
    strcat(deep, "</d>");
  assert_int_equal(parse_code(deep, &e), 0);
  char deeper[1024] = "";
  for (int i = 0; i < 33; i++)
    strcat(deeper, "<d>");
  for (int i = 0; i < 33; i++)
    strcat(deeper, "</d>");
  err_clear(&e);
  assert_int_equal(parse_code(deeper, &e), ERR_MALFORMED_XML);
  assert_non_null(strstr(e.msg, "'d'"));
}

static void test_xml_node_limit(void **state)
{
  (void)state;
  size_t n = 100001;
  size_t len = 3 + n * 4 + 4;
  char *doc = malloc(len + 1);
  assert_non_null(doc);
  char *p = doc;
  memcpy(p, "<r>", 3);
  p += 3;
  for (size_t i = 0; i < n - 2; i++) { /* root + 99999 children */
    memcpy(p, "<x/>", 4);
    p += 4;
  }
  memcpy(p, "</r>", 4);
  p += 4;
  *p = '\0';
  err e = {0};
  assert_int_equal(parse_code(doc, &e), 0); /* exactly 100000 elements */
  memmove(doc + 3 + 4, doc + 3, strlen(doc + 3) + 1);
  memcpy(doc + 3, "<x/>", 4);
  assert_int_equal(parse_code(doc, &e), ERR_MALFORMED_XML);
  free(doc);
}

static uint64_t crc64nvme_bitwise(const uint8_t *p, size_t n)
{
  uint64_t c = ~0ull;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? (c >> 1) ^ 0x9A6C9329AC4BC9B5ull : c >> 1;
  }
  return ~c;
}

/* CRC-64/NVME: the catalogue's check value, slice-by-8 against the bitwise
 * definition, the 8-byte big-endian digest, and crc_combine for all three
 * CRCs (the full-object checksum of a multipart upload). */
static void test_crc64nvme_combine(void **state)
{
  (void)state;
  assert_true(crc64nvme_update(0, "123456789", 9) == 0xAE8B14860A799888ull);
  assert_true(crc64nvme_update(crc64nvme_update(0, "1234", 4), "56789", 5) ==
              0xAE8B14860A799888ull);
  static uint8_t bytes[300];
  for (size_t i = 0; i < sizeof bytes; i++)
    bytes[i] = (uint8_t)(i * 29 + 3);
  for (size_t start = 0; start < 9; start++)
    for (size_t n = 0; n + start <= sizeof bytes; n += 7)
      assert_true(crc64nvme_update(0, bytes + start, n) == crc64nvme_bitwise(bytes + start, n));
  hasher h;
  uint8_t out[8];
  hash_init(&h, HASH_CRC64NVME);
  hash_update(&h, "123456789", 9);
  assert_int_equal(hash_final(&h, out), 8);
  hash_release(&h);
  assert_int_equal(out[0], 0xAE);
  assert_int_equal(out[7], 0x88);
  for (size_t cut = 0; cut <= sizeof bytes; cut += 37) {
    size_t rest = sizeof bytes - cut;
    assert_true(crc_combine(HASH_CRC64NVME, crc64nvme_update(0, bytes, cut),
                            crc64nvme_update(0, bytes + cut, rest), rest) ==
                crc64nvme_update(0, bytes, sizeof bytes));
    assert_true(crc_combine(HASH_CRC32, crc32_update(0, bytes, cut),
                            crc32_update(0, bytes + cut, rest), rest) ==
                crc32_update(0, bytes, sizeof bytes));
    assert_true(crc_combine(HASH_CRC32C, crc32c_update(0, bytes, cut),
                            crc32c_update(0, bytes + cut, rest), rest) ==
                crc32c_update(0, bytes, sizeof bytes));
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_crc64nvme_combine),
    cmocka_unit_test(test_sha256_md5_sha1),
    cmocka_unit_test(test_hmac),
    cmocka_unit_test(test_crc),
    cmocka_unit_test(test_hex),
    cmocka_unit_test(test_base64),
    cmocka_unit_test(test_mem_equal_ct),
    cmocka_unit_test(test_random_ids),
    cmocka_unit_test(test_buf_extend),
    cmocka_unit_test(test_buf_json_string),
    cmocka_unit_test(test_uri_encode),
    cmocka_unit_test(test_percent_decode),
    cmocka_unit_test(test_utf8),
    cmocka_unit_test(test_lmdb_ops),
    cmocka_unit_test(test_lmdb_errors),
    cmocka_unit_test(test_str),
    cmocka_unit_test(test_time),
    cmocka_unit_test(test_xml_complete_upload),
    cmocka_unit_test(test_xml_rejects),
    cmocka_unit_test(test_xml_node_limit),
  };
  return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
