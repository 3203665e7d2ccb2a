/* tests/unit/store/test_store.c -- unit tests of store/: buckets, objects,
 * inline (small) objects, listings (long keys included), multipart uploads,
 * copies, group commit, reopening, the sweep, abandoned writers,
 * lifecycle rules and server-side encryption.
 *
 * Each test opens a store in a fresh temporary directory and checks what a
 * user would: bytes read back (through the descriptor, or the inline copy),
 * errors and their messages, files left in DIR/blobs. Expected ETags are
 * computed here with OpenSSL, independently of the store. Tests of blob
 * behaviour (descriptors across overwrites, hard-link copies, the sweep)
 * use objects of BIG bytes, over STORE_INLINE_MAX.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fixture {
  char dir[64];   /* the data directory */
  store *s;       /* open on dir */
  arena *a;       /* for results */
} fixture;

static int setup(void **state)
{
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/tarn-store-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  err e = { 0 };
  if (store_open(f->dir, &f->s, &e) != 0) {
    fprintf(stderr, "store_open: %s\n", e.msg);
    return -1;
  }
  f->a = arena_new();
  *state = f;
  return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int teardown(void **state)
{
  fixture *f = *state;
  f->s = store_close(f->s);
  arena_free(f->a);
  nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void reopen(fixture *f)
{
  f->s = store_close(f->s);
  err e = { 0 };
  assert_int_equal(store_open(f->dir, &f->s, &e), 0);
}

/* ---- helpers ---- */

static void md5_hex(const void *p, size_t n, char out[33])
{
  uint8_t d[16];
  unsigned len = 0;
  assert_int_equal(EVP_Digest(p, n, d, &len, EVP_md5(), NULL), 1);
  for (int i = 0; i < 16; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int put_meta(fixture *f, const char *bucket, const char *key, const void *p, size_t n,
                    const str_pair *meta, size_t nmeta, const str_pair *tags, size_t ntags,
                    err *e)
{
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, e), 0);
  assert_int_equal(store_writer_write(w, p, n, e), 0);
  char etag[33];
  md5_hex(p, n, etag);
  int rc = store_object_commit(w, bucket, key, etag, meta, nmeta, tags, ntags, NULL, NULL, e);
  store_writer_free(w);
  return rc;
}

static int put(fixture *f, const char *bucket, const char *key, const char *text)
{
  err e = { 0 };
  return put_meta(f, bucket, key, text, strlen(text), NULL, 0, NULL, 0, &e);
}

static int put_bytes(fixture *f, const char *bucket, const char *key, const void *p, size_t n)
{
  err e = { 0 };
  return put_meta(f, bucket, key, p, n, NULL, 0, NULL, 0, &e);
}

/* Objects of BIG bytes have a blob; small ones are inline. */
#define BIG (STORE_INLINE_MAX + 1000)

/* n bytes that differ with seed (free them). */
static uint8_t *pattern(size_t n, unsigned seed)
{
  uint8_t *p = malloc(n > 0 ? n : 1);
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 31 + seed * 7 + i / 251);
  return p;
}

/* Reads bucket/key as a caller of store_object_get would (descriptor or
 * inline copy, through store_object_read, in uneven pieces) and compares
 * with want. Returns whether the object was inline. */
static bool check_bytes(fixture *f, const char *bucket, const char *key, const void *want,
                        size_t n)
{
  err e = { 0 };
  store_object o;
  int fd = -2;
  assert_int_equal(store_object_get(f->s, bucket, key, f->a, &o, &fd, &e), 0);
  bool inlined = fd < 0;
  if (inlined) {
    assert_int_equal(fd, -1);
    assert_non_null(o.data);
  } else {
    assert_null(o.data);
  }
  assert_int_equal(o.size, n);
  char *got = malloc(n + 1);
  size_t have = 0;
  size_t r = 0;
  do {
    assert_int_equal(store_object_read(&o, fd, have, got + have, 4001, &r, &e), 0);
    have += r;
    assert_true(have <= n);
  } while (r > 0);
  if (fd >= 0)
    close(fd);
  assert_int_equal(have, n);
  assert_memory_equal(got, want, n);
  free(got);
  return inlined;
}

static void check_text(fixture *f, const char *bucket, const char *key, const char *text)
{
  check_bytes(f, bucket, key, text, strlen(text));
}

/* Files under DIR/blobs. */
static size_t count_blobs(const fixture *f)
{
  size_t n = 0;
  for (unsigned i = 0; i < 256; i++) {
    char path[128];
    snprintf(path, sizeof path, "%s/blobs/%02x", f->dir, i);
    DIR *d = opendir(path);
    if (d == NULL)
      continue;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
      if (de->d_name[0] != '.')
        n++;
    closedir(d);
  }
  return n;
}

/* ---- buckets ---- */

static void test_buckets(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "beta", &e), 0);
  assert_int_equal(store_bucket_create(f->s, "alpha", &e), 0);
  assert_int_equal(store_bucket_create(f->s, "alpha", &e), ERR_BUCKET_EXISTS);
  assert_string_equal(e.msg, "bucket 'alpha' already exists");

  const char *bad[] = { "ab", "Abc", "a..b", "-abc", "abc-", "192.168.1.1", "xn--abc",
                        "foo-s3alias", "a_b", "" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_false(store_bucket_name_valid(bad[i]));
    assert_int_equal(store_bucket_create(f->s, bad[i], &e), ERR_INVALID_BUCKET_NAME);
  }
  assert_true(store_bucket_name_valid("my.bucket-1"));
  assert_true(store_bucket_name_valid("192.168.1.1a"));

  store_bucket *list = NULL;
  size_t n = 0;
  assert_int_equal(store_bucket_list(f->s, f->a, &list, &n, &e), 0);
  assert_int_equal(n, 2);
  assert_string_equal(list[0].name, "alpha");
  assert_string_equal(list[1].name, "beta");
  assert_true(list[0].created_ms > 1600000000000);

  store_bucket b;
  assert_int_equal(store_bucket_get(f->s, "beta", f->a, &b, &e), 0);
  assert_string_equal(b.name, "beta");
  assert_int_equal(store_bucket_get(f->s, "gamma", f->a, &b, &e), ERR_NO_SUCH_BUCKET);
  assert_string_equal(e.msg, "no bucket named 'gamma'");

  /* not empty: an object, then an upload in progress */
  assert_int_equal(put(f, "alpha", "k", "v"), 0);
  assert_int_equal(store_bucket_delete(f->s, "alpha", &e), ERR_BUCKET_NOT_EMPTY);
  assert_string_equal(e.msg, "bucket 'alpha' is not empty");
  assert_int_equal(store_object_delete(f->s, "alpha", "k", NULL, &e), 0);
  const char *id = NULL;
  assert_int_equal(store_upload_create(f->s, "alpha", "u", NULL, 0, NULL, 0, f->a, &id, &e), 0);
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_writer_write(w, "part", 4, &e), 0);
  assert_int_equal(store_part_commit(w, "alpha", "u", id, 1, NULL, NULL, f->a, NULL, &e), 0);
  store_writer_free(w);
  assert_int_equal(count_blobs(f), 1);
  /* an upload in progress does not block the delete: it is aborted with it */
  assert_int_equal(store_bucket_delete(f->s, "alpha", &e), 0);
  assert_int_equal(count_blobs(f), 0);
  assert_int_equal(store_bucket_create(f->s, "alpha", &e), 0);
  store_upload up;
  assert_int_equal(store_upload_get(f->s, "alpha", "u", id, f->a, &up, &e), ERR_NO_SUCH_UPLOAD);

  /* bucket tags: none, set (order kept), replaced, removed */
  str_pair *bt = NULL;
  size_t nbt = 9;
  assert_int_equal(store_bucket_tags_get(f->s, "alpha", f->a, &bt, &nbt, &e), 0);
  assert_int_equal(nbt, 0);
  str_pair two[] = { { "z", "1" }, { "a", "" } };
  assert_int_equal(store_bucket_tags_set(f->s, "alpha", two, 2, &e), 0);
  assert_int_equal(store_bucket_tags_get(f->s, "alpha", f->a, &bt, &nbt, &e), 0);
  assert_int_equal(nbt, 2);
  assert_string_equal(bt[0].name, "z");
  assert_string_equal(bt[1].value, "");
  assert_int_equal(store_bucket_get(f->s, "alpha", f->a, &b, &e), 0);
  assert_int_equal(store_bucket_tags_set(f->s, "nope", two, 2, &e), ERR_NO_SUCH_BUCKET);
  /* configuration documents: kept apart from the tags and from each other */
  const char *doc = "x";
  assert_int_equal(store_bucket_conf_get(f->s, "alpha", "website", f->a, &doc, &e), 0);
  assert_null(doc);
  assert_int_equal(store_bucket_conf_set(f->s, "alpha", "website", "<w/>", &e), 0);
  assert_int_equal(store_bucket_conf_set(f->s, "alpha", "policy", "{}", &e), 0);
  assert_int_equal(store_bucket_conf_set(f->s, "alpha", "website", "<w2/>", &e), 0);
  assert_int_equal(store_bucket_conf_get(f->s, "alpha", "website", f->a, &doc, &e), 0);
  assert_string_equal(doc, "<w2/>");
  assert_int_equal(store_bucket_tags_get(f->s, "alpha", f->a, &bt, &nbt, &e), 0);
  assert_int_equal(nbt, 2);
  assert_int_equal(store_bucket_conf_set(f->s, "nope", "policy", "{}", &e), ERR_NO_SUCH_BUCKET);
  assert_int_equal(store_bucket_tags_set(f->s, "alpha", NULL, 0, &e), 0);
  assert_int_equal(store_bucket_tags_get(f->s, "alpha", f->a, &bt, &nbt, &e), 0);
  assert_int_equal(nbt, 0);
  assert_int_equal(store_bucket_conf_get(f->s, "alpha", "policy", f->a, &doc, &e), 0);
  assert_string_equal(doc, "{}");
  assert_int_equal(store_bucket_conf_set(f->s, "alpha", "policy", NULL, &e), 0);
  assert_int_equal(store_bucket_conf_get(f->s, "alpha", "policy", f->a, &doc, &e), 0);
  assert_null(doc);
  assert_int_equal(store_bucket_conf_get(f->s, "alpha", "website", f->a, &doc, &e), 0);
  assert_string_equal(doc, "<w2/>");
  assert_int_equal(store_bucket_delete(f->s, "alpha", &e), 0);
  assert_int_equal(store_bucket_delete(f->s, "alpha", &e), ERR_NO_SUCH_BUCKET);

  store_stats st;
  store_stats_get(f->s, &st);
  assert_int_equal(st.buckets, 1);
}

/* ---- objects ---- */

static void test_put_get_delete(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  assert_int_equal(put(f, "bkt", "a/b.txt", "hello"), 0);
  check_text(f, "bkt", "a/b.txt", "hello");

  store_object o;
  assert_int_equal(store_object_get(f->s, "bkt", "a/b.txt", f->a, &o, NULL, &e), 0);
  char want[33];
  md5_hex("hello", 5, want);
  assert_string_equal(o.etag, want);
  assert_string_equal(o.bucket, "bkt");
  assert_string_equal(o.key, "a/b.txt");
  assert_true(o.mtime_ms > 1600000000000);

  /* a reader keeps the old bytes across an overwrite; the old blob goes */
  uint8_t *b1 = pattern(BIG, 1);
  uint8_t *b2 = pattern(BIG, 2);
  assert_int_equal(put_bytes(f, "bkt", "a/b.txt", b1, BIG), 0);
  int old = -1;
  assert_int_equal(store_object_get(f->s, "bkt", "a/b.txt", f->a, &o, &old, &e), 0);
  assert_true(old >= 0);
  assert_int_equal(put_bytes(f, "bkt", "a/b.txt", b2, BIG), 0);
  uint8_t *buf = malloc(BIG + 1);
  assert_int_equal(pread(old, buf, BIG + 1, 0), BIG);
  assert_memory_equal(buf, b1, BIG);
  free(buf);
  close(old);
  check_bytes(f, "bkt", "a/b.txt", b2, BIG);
  assert_int_equal(count_blobs(f), 1);

  store_stats st;
  store_stats_get(f->s, &st);
  assert_int_equal(st.objects, 1);
  assert_int_equal(st.bytes, BIG);

  bool existed = false;
  assert_int_equal(store_object_delete(f->s, "bkt", "a/b.txt", &existed, &e), 0);
  assert_true(existed);
  assert_int_equal(store_object_delete(f->s, "bkt", "a/b.txt", &existed, &e), 0);
  assert_false(existed);
  assert_int_equal(count_blobs(f), 0);
  int fd = -1;
  assert_int_equal(store_object_get(f->s, "bkt", "a/b.txt", f->a, &o, &fd, &e), ERR_NO_SUCH_KEY);
  assert_string_equal(e.msg, "no key 'a/b.txt' in bucket 'bkt'");
  assert_int_equal(fd, -1);
  assert_int_equal(store_object_delete(f->s, "nope", "k", NULL, &e), ERR_NO_SUCH_BUCKET);

  store_stats_get(f->s, &st);
  assert_int_equal(st.objects, 0);
  assert_int_equal(st.bytes, 0);

  /* argument errors; a failed commit leaves no file behind */
  assert_int_equal(put(f, "nope", "k", "x"), ERR_NO_SUCH_BUCKET);
  assert_int_equal(put(f, "bkt", "", "x"), ERR_INVALID);
  char longkey[STORE_MAX_KEY + 2];
  memset(longkey, 'k', sizeof longkey - 1);
  longkey[sizeof longkey - 1] = '\0';
  assert_int_equal(put(f, "bkt", longkey, "x"), ERR_KEY_TOO_LONG);
  longkey[STORE_MAX_KEY] = '\0';
  assert_int_equal(put(f, "bkt", longkey, "x"), 0);
  check_text(f, "bkt", longkey, "x");
  assert_int_equal(count_blobs(f), 0);  /* inline */

  /* empty object */
  assert_int_equal(put(f, "bkt", "empty", ""), 0);
  check_text(f, "bkt", "empty", "");

  /* bytes lost behind the store's back: an error, not a loop */
  assert_int_equal(put_bytes(f, "bkt", "lost", b1, BIG), 0);
  for (unsigned i = 0; i < 256; i++) {
    char path[128];
    snprintf(path, sizeof path, "%s/blobs/%02x", f->dir, i);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL)
      if (de->d_name[0] != '.')
        unlinkat(dirfd(d), de->d_name, 0);
    if (d != NULL)
      closedir(d);
  }
  assert_int_equal(store_object_get(f->s, "bkt", "lost", f->a, &o, &fd, &e), ERR_IO);
  assert_int_equal(store_object_get(f->s, "bkt", "lost", f->a, &o, NULL, &e), 0);
  free(b1);
  free(b2);
}

static void test_meta_tags(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  str_pair meta[] = { { "content-type", "text/plain" }, { "x-amz-meta-color", "blue" },
                      { "x-amz-meta-empty", "" } };
  str_pair tags[] = { { "team", "data" }, { "env", "prod" } };
  assert_int_equal(put_meta(f, "bkt", "k", "abc", 3, meta, 3, tags, 2, &e), 0);
  store_object o;
  assert_int_equal(store_object_get(f->s, "bkt", "k", f->a, &o, NULL, &e), 0);
  assert_int_equal(o.nmeta, 3);
  for (size_t i = 0; i < 3; i++) {
    assert_string_equal(o.meta[i].name, meta[i].name);
    assert_string_equal(o.meta[i].value, meta[i].value);
  }
  assert_int_equal(o.ntags, 2);
  assert_string_equal(o.tags[0].name, "team");
  assert_string_equal(o.tags[1].value, "prod");

  str_pair tags2[] = { { "only", "one" } };
  assert_int_equal(store_object_tags_set(f->s, "bkt", "k", tags2, 1, &e), 0);
  assert_int_equal(store_object_get(f->s, "bkt", "k", f->a, &o, NULL, &e), 0);
  assert_int_equal(o.ntags, 1);
  assert_string_equal(o.tags[0].name, "only");
  assert_int_equal(o.nmeta, 3);  /* metadata untouched */
  check_text(f, "bkt", "k", "abc");
  assert_int_equal(store_object_tags_set(f->s, "bkt", "k", NULL, 0, &e), 0);
  assert_int_equal(store_object_get(f->s, "bkt", "k", f->a, &o, NULL, &e), 0);
  assert_int_equal(o.ntags, 0);
  assert_int_equal(store_object_tags_set(f->s, "bkt", "zz", tags2, 1, &e), ERR_NO_SUCH_KEY);

  str_pair many[STORE_MAX_TAGS + 1];
  for (size_t i = 0; i < STORE_MAX_TAGS + 1; i++)
    many[i] = (str_pair){ "t", "v" };
  assert_int_equal(store_object_tags_set(f->s, "bkt", "k", many, STORE_MAX_TAGS + 1, &e),
                   ERR_INVALID_TAG);

  char *big = malloc(STORE_MAX_META_BYTES + 1);
  memset(big, 'x', STORE_MAX_META_BYTES);
  big[STORE_MAX_META_BYTES] = '\0';
  str_pair huge[] = { { "x-amz-meta-big", big } };
  assert_int_equal(put_meta(f, "bkt", "big", "a", 1, huge, 1, NULL, 0, &e),
                   ERR_METADATA_TOO_LARGE);
  free(big);
  assert_int_equal(count_blobs(f), 0);
  check_text(f, "bkt", "k", "abc");  /* inline bytes survive the tag updates */
}

/* ---- listings ---- */

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Lists everything (no delimiter) page by page; returns the keys. */
static size_t list_all(fixture *f, const char *bucket, const char *prefix, size_t page,
                       const char **out, size_t cap)
{
  size_t n = 0;
  const char *after = NULL;
  for (;;) {
    err e = { 0 };
    store_list_params p = { .prefix = prefix, .after = after, .max_keys = page };
    store_list_result r;
    assert_int_equal(store_object_list(f->s, bucket, &p, f->a, &r, &e), 0);
    assert_int_equal(r.nprefixes, 0);
    for (size_t i = 0; i < r.nobjects; i++) {
      assert_true(n < cap);
      out[n++] = r.objects[i].key;
    }
    if (!r.truncated)
      return n;
    assert_int_equal(r.nobjects, page);
    assert_string_equal(r.next_after, r.objects[r.nobjects - 1].key);
    after = r.next_after;
  }
}

static void test_list(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  const char *keys[] = { "e", "b/2", "a", "d/x/1", "b/1", "c", "d/y", "b/3", "d/x/2" };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    assert_int_equal(put(f, "bkt", keys[i], keys[i]), 0);

  const char *got[16];
  size_t n = list_all(f, "bkt", NULL, 1000, got, 16);
  const char *sorted[] = { "a", "b/1", "b/2", "b/3", "c", "d/x/1", "d/x/2", "d/y", "e" };
  assert_int_equal(n, 9);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(got[i], sorted[i]);
  n = list_all(f, "bkt", NULL, 2, got, 16);
  assert_int_equal(n, 9);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(got[i], sorted[i]);
  n = list_all(f, "bkt", "b/", 1, got, 16);
  assert_int_equal(n, 3);
  assert_string_equal(got[2], "b/3");
  n = list_all(f, "bkt", "zz", 10, got, 16);
  assert_int_equal(n, 0);

  store_list_params p = { .delimiter = "/", .max_keys = 1000 };
  store_list_result r;
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nobjects, 3);
  assert_string_equal(r.objects[0].key, "a");
  assert_string_equal(r.objects[1].key, "c");
  assert_string_equal(r.objects[2].key, "e");
  assert_int_equal(r.objects[1].size, 1);
  assert_int_equal(r.nprefixes, 2);
  assert_string_equal(r.prefixes[0], "b/");
  assert_string_equal(r.prefixes[1], "d/");
  assert_false(r.truncated);

  /* roll-ups count once; pages continue across common prefixes */
  p.max_keys = 2;
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nobjects, 1);
  assert_int_equal(r.nprefixes, 1);
  assert_true(r.truncated);
  assert_string_equal(r.next_after, "b/");
  p.after = r.next_after;
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nobjects, 1);
  assert_string_equal(r.objects[0].key, "c");
  assert_int_equal(r.nprefixes, 1);
  assert_string_equal(r.prefixes[0], "d/");
  assert_true(r.truncated);
  assert_string_equal(r.next_after, "d/");
  p.after = r.next_after;
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nobjects, 1);
  assert_string_equal(r.objects[0].key, "e");
  assert_int_equal(r.nprefixes, 0);
  assert_false(r.truncated);

  /* exactly max entries: not truncated */
  p = (store_list_params){ .delimiter = "/", .max_keys = 5 };
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nobjects + r.nprefixes, 5);
  assert_false(r.truncated);
  p.max_keys = 4;
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_true(r.truncated);
  assert_string_equal(r.next_after, "d/");

  /* prefix with delimiter */
  p = (store_list_params){ .prefix = "d/", .delimiter = "/", .max_keys = 1000 };
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nprefixes, 1);
  assert_string_equal(r.prefixes[0], "d/x/");
  assert_int_equal(r.nobjects, 1);
  assert_string_equal(r.objects[0].key, "d/y");

  /* after a key, and after a key below the prefix */
  p = (store_list_params){ .after = "b/2", .max_keys = 2 };
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nobjects, 2);
  assert_string_equal(r.objects[0].key, "b/3");
  assert_string_equal(r.objects[1].key, "c");
  assert_true(r.truncated);
  p = (store_list_params){ .prefix = "d/", .after = "a", .max_keys = 10 };
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nobjects, 3);
  assert_string_equal(r.objects[0].key, "d/x/1");

  /* a multi-character delimiter */
  p = (store_list_params){ .delimiter = "x/", .max_keys = 10 };
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nprefixes, 1);
  assert_string_equal(r.prefixes[0], "d/x/");
  assert_int_equal(r.nobjects, 7);

  /* max_keys 0, missing bucket */
  p = (store_list_params){ .max_keys = 0 };
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nobjects + r.nprefixes, 0);
  assert_false(r.truncated);
  assert_int_equal(store_object_list(f->s, "nope", &p, f->a, &r, &e), ERR_NO_SUCH_BUCKET);
}

/* Keys of 1,024 bytes that differ only at the end, and keys around the
 * length where the index switches to its long form. */
static void test_long_keys(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  enum { NKEYS = 40 };
  char *keys[NKEYS];
  size_t nk = 0;
  const char tails[] = "zyx0a9Mb!~";
  for (size_t i = 0; i < sizeof tails - 1; i++) {  /* 1,024 bytes, last differs */
    keys[nk] = malloc(STORE_MAX_KEY + 1);
    memset(keys[nk], 'a', STORE_MAX_KEY - 1);
    keys[nk][STORE_MAX_KEY - 1] = tails[i];
    keys[nk][STORE_MAX_KEY] = '\0';
    nk++;
  }
  for (size_t len = 440; len < 500; len += 4) {  /* across the short/long boundary */
    keys[nk] = malloc(len + 1);
    memset(keys[nk], 'a', len);
    keys[nk][len] = '\0';
    nk++;
  }
  for (size_t i = 0; i < 4; i++) {  /* same 600 bytes, then a delimiter */
    keys[nk] = malloc(700);
    memset(keys[nk], 'a', 600);
    snprintf(keys[nk] + 600, 100, "/%zu", 3 - i);
    nk++;
  }
  keys[nk++] = strdup("b");
  keys[nk++] = strdup("aab");
  assert_true(nk <= NKEYS);
  for (size_t i = 0; i < nk; i++)
    assert_int_equal(put(f, "bkt", keys[i], keys[i] + strlen(keys[i]) - 1), 0);

  const char *want[NKEYS];
  memcpy(want, keys, nk * sizeof *want);
  qsort(want, nk, sizeof *want, cmp_str);
  const char *got[NKEYS];
  for (size_t page = 1; page <= 7; page += 3) {
    size_t n = list_all(f, "bkt", NULL, page, got, NKEYS);
    assert_int_equal(n, nk);
    for (size_t i = 0; i < n; i++)
      assert_string_equal(got[i], want[i]);
  }

  /* a prefix longer than the index keeps of a key */
  char prefix[STORE_MAX_KEY];
  memset(prefix, 'a', STORE_MAX_KEY - 1);
  prefix[STORE_MAX_KEY - 1] = '\0';
  size_t n = list_all(f, "bkt", prefix, 3, got, NKEYS);
  assert_int_equal(n, sizeof tails - 1);
  for (size_t i = 1; i < n; i++)
    assert_true(strcmp(got[i - 1], got[i]) < 0);
  prefix[600] = '\0';
  n = list_all(f, "bkt", prefix, 2, got, NKEYS);
  assert_int_equal(n, sizeof tails - 1 + 4);

  /* a common prefix among long keys, then continuing after it */
  store_list_params p = { .prefix = prefix, .delimiter = "/", .max_keys = 1 };
  store_list_result r;
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nprefixes, 1);
  assert_int_equal(strlen(r.prefixes[0]), 601);
  assert_true(r.truncated);
  p.after = r.next_after;
  p.max_keys = 1000;
  assert_int_equal(store_object_list(f->s, "bkt", &p, f->a, &r, &e), 0);
  assert_int_equal(r.nprefixes, 0);
  assert_int_equal(r.nobjects, sizeof tails - 1);

  /* exact lookups, and a delete among siblings */
  for (size_t i = 0; i < nk; i++)
    check_text(f, "bkt", keys[i], keys[i] + strlen(keys[i]) - 1);
  assert_int_equal(store_object_delete(f->s, "bkt", keys[3], NULL, &e), 0);
  store_object o;
  assert_int_equal(store_object_get(f->s, "bkt", keys[3], f->a, &o, NULL, &e), ERR_NO_SUCH_KEY);
  assert_int_equal(store_object_get(f->s, "bkt", keys[4], f->a, &o, NULL, &e), 0);
  assert_string_equal(o.key, keys[4]);
  n = list_all(f, "bkt", NULL, 5, got, NKEYS);
  assert_int_equal(n, nk - 1);
  for (size_t i = 0; i < nk; i++)
    free(keys[i]);
}

/* ---- multipart ---- */

static const char *upload_part(fixture *f, const char *key, const char *id, int number,
                               const void *p, size_t n, uint8_t md5[16])
{
  err e = { 0 };
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_writer_write(w, p, n, &e), 0);
  store_writer_md5(w, md5);
  store_part part;
  int rc = store_part_commit(w, "bkt", key, id, number, NULL, NULL, f->a, &part, &e);
  store_writer_free(w);
  assert_int_equal(rc, 0);
  assert_int_equal(part.number, number);
  assert_int_equal(part.size, n);
  return part.etag;
}

static void test_multipart(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  str_pair meta[] = { { "content-type", "video/mp4" } };
  str_pair tags[] = { { "kind", "big" } };
  const char *id = NULL;
  assert_int_equal(store_upload_create(f->s, "bkt", "movie", meta, 1, tags, 1, f->a, &id, &e),
                   0);
  assert_int_equal(strlen(id), 32);
  store_upload up;
  assert_int_equal(store_upload_get(f->s, "bkt", "movie", id, f->a, &up, &e), 0);
  assert_string_equal(up.key, "movie");
  assert_string_equal(up.upload_id, id);
  assert_int_equal(up.nmeta, 1);

  size_t big = STORE_MIN_PART_SIZE;
  uint8_t *p1 = malloc(big);
  for (size_t i = 0; i < big; i++)
    p1[i] = (uint8_t)(i * 7 + i / 4096);
  const char *p2 = "a small part in the middle";
  const char *p3 = "the end";
  uint8_t m1[16], m2[16], m3[16];
  const char *e1 = upload_part(f, "movie", id, 1, p1, big, m1);
  const char *e2 = upload_part(f, "movie", id, 2, "first try", 9, m2);
  e2 = upload_part(f, "movie", id, 2, p2, strlen(p2), m2);  /* replaces the first */
  const char *e3 = upload_part(f, "movie", id, 3, p3, strlen(p3), m3);
  assert_int_equal(count_blobs(f), 3);

  store_part *parts = NULL;
  size_t n = 0;
  bool trunc = false;
  assert_int_equal(store_part_list(f->s, "bkt", "movie", id, 0, 2, f->a, &parts, &n, &trunc, &e),
                   0);
  assert_int_equal(n, 2);
  assert_true(trunc);
  assert_int_equal(parts[1].number, 2);
  assert_int_equal(parts[1].size, strlen(p2));
  assert_int_equal(store_part_list(f->s, "bkt", "movie", id, 2, 10, f->a, &parts, &n, &trunc, &e),
                   0);
  assert_int_equal(n, 1);
  assert_false(trunc);
  assert_string_equal(parts[0].etag, e3);

  /* validation */
  store_part_ref wrong_order[] = { { 2, e2 }, { 1, e1 } };
  store_object o;
  assert_int_equal(store_upload_complete(f->s, "bkt", "movie", id, wrong_order, 2, NULL, 0, f->a,
                                         &o, &e), ERR_INVALID_PART_ORDER);
  store_part_ref missing[] = { { 1, e1 }, { 4, e3 } };
  assert_int_equal(store_upload_complete(f->s, "bkt", "movie", id, missing, 2, NULL, 0, f->a, &o,
                                         &e), ERR_INVALID_PART);
  store_part_ref bad_etag[] = { { 1, e1 }, { 3, "\"00000000000000000000000000000000\"" } };
  assert_int_equal(store_upload_complete(f->s, "bkt", "movie", id, bad_etag, 2, NULL, 0, f->a,
                                         &o, &e), ERR_INVALID_PART);
  store_part_ref small[] = { { 1, e1 }, { 2, e2 }, { 3, e3 } };
  assert_int_equal(store_upload_complete(f->s, "bkt", "movie", id, small, 3, NULL, 0, f->a, &o,
                                         &e), ERR_ENTITY_TOO_SMALL);
  assert_int_equal(store_upload_complete(f->s, "bkt", "movie", "not-an-id", small, 3, NULL, 0,
                                         f->a, &o, &e), ERR_NO_SUCH_UPLOAD);
  assert_int_equal(count_blobs(f), 3);

  /* complete with parts 1 and 3 (quoted etag); part 2 is discarded */
  char quoted[40];
  snprintf(quoted, sizeof quoted, "\"%s\"", e3);
  store_part_ref ok[] = { { 1, e1 }, { 3, quoted } };
  str_pair extra[] = { { "x-amz-checksum-crc32", "AAAAAA==-2" } };
  assert_int_equal(store_upload_complete(f->s, "bkt", "movie", id, ok, 2, extra, 1, f->a, &o, &e),
                   0);
  uint8_t cat[32];
  memcpy(cat, m1, 16);
  memcpy(cat + 16, m3, 16);
  char want[40];
  md5_hex(cat, sizeof cat, want);
  strcat(want, "-2");
  assert_string_equal(o.etag, want);
  assert_int_equal(o.size, big + strlen(p3));
  assert_int_equal(o.nmeta, 2);
  assert_string_equal(o.meta[0].value, "video/mp4");
  assert_string_equal(o.meta[1].name, "x-amz-checksum-crc32");
  assert_int_equal(o.ntags, 1);
  uint8_t *whole = malloc(big + strlen(p3));
  memcpy(whole, p1, big);
  memcpy(whole + big, p3, strlen(p3));
  check_bytes(f, "bkt", "movie", whole, big + strlen(p3));
  free(whole);
  assert_int_equal(count_blobs(f), 1);  /* every part blob unlinked */
  assert_int_equal(store_upload_get(f->s, "bkt", "movie", id, f->a, &up, &e), ERR_NO_SUCH_UPLOAD);
  /* a repeated complete (a client's retry) answers the same object */
  store_object again;
  assert_int_equal(store_upload_complete(f->s, "bkt", "movie", id, ok, 2, NULL, 0, f->a, &again,
                                         &e), 0);
  assert_string_equal(again.etag, want);
  assert_int_equal(count_blobs(f), 1);
  /* the record keeps the part boundaries */
  assert_int_equal(store_object_get(f->s, "bkt", "movie", f->a, &again, NULL, &e), 0);
  assert_string_equal(again.upload_id, id);
  assert_int_equal(again.nparts, 2);
  assert_int_equal(again.part_sizes[0], big);
  assert_int_equal(again.part_sizes[1], strlen(p3));
  /* tags rewrite the record without losing them */
  assert_int_equal(store_object_tags_set(f->s, "bkt", "movie", NULL, 0, &e), 0);
  assert_int_equal(store_object_get(f->s, "bkt", "movie", f->a, &again, NULL, &e), 0);
  assert_int_equal(again.nparts, 2);
  assert_int_equal(again.part_sizes[1], strlen(p3));

  /* abort removes the parts' blobs */
  assert_int_equal(store_upload_create(f->s, "bkt", "gone", NULL, 0, NULL, 0, f->a, &id, &e), 0);
  upload_part(f, "gone", id, 1, p1, 1000, m1);
  upload_part(f, "gone", id, 2, p1, 2000, m2);
  assert_int_equal(count_blobs(f), 3);
  assert_int_equal(store_upload_abort(f->s, "bkt", "gone", id, &e), 0);
  assert_int_equal(count_blobs(f), 1);
  assert_int_equal(store_upload_abort(f->s, "bkt", "gone", id, &e), ERR_NO_SUCH_UPLOAD);
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_part_commit(w, "bkt", "gone", id, 1, NULL, NULL, f->a, NULL, &e),
                   ERR_NO_SUCH_UPLOAD);
  store_writer_free(w);
  assert_int_equal(count_blobs(f), 1);
  free(p1);

  store_stats st;
  store_stats_get(f->s, &st);
  assert_int_equal(st.objects, 1);
  assert_int_equal(st.bytes, big + strlen(p3));

  /* an overwrite forgets the upload */
  const char *done_id = again.upload_id;
  assert_int_equal(put(f, "bkt", "movie", "plain"), 0);
  assert_int_equal(store_object_get(f->s, "bkt", "movie", f->a, &again, NULL, &e), 0);
  assert_string_equal(again.upload_id, "");
  assert_int_equal(again.nparts, 0);
  assert_int_equal(store_upload_complete(f->s, "bkt", "movie", done_id, ok, 2, NULL, 0, f->a, &o,
                                         &e), ERR_NO_SUCH_UPLOAD);
}

static void test_upload_list(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  const char *keys[] = { "b", "a", "a", "c/1", "ab" };
  const char *ids[5];
  for (size_t i = 0; i < 5; i++)
    assert_int_equal(store_upload_create(f->s, "bkt", keys[i], NULL, 0, NULL, 0, f->a, &ids[i],
                                         &e), 0);
  store_upload *list = NULL;
  size_t n = 0;
  bool trunc = false;
  assert_int_equal(store_upload_list(f->s, "bkt", NULL, NULL, NULL, 1000, f->a, &list, &n,
                                     &trunc, &e), 0);
  assert_int_equal(n, 5);
  assert_false(trunc);
  assert_string_equal(list[0].key, "a");
  assert_string_equal(list[1].key, "a");
  assert_true(strcmp(list[0].upload_id, list[1].upload_id) < 0);
  assert_string_equal(list[2].key, "ab");
  assert_string_equal(list[3].key, "b");
  assert_string_equal(list[4].key, "c/1");

  const char *first_a = list[0].upload_id;
  assert_int_equal(store_upload_list(f->s, "bkt", NULL, "a", first_a, 2, f->a, &list, &n, &trunc,
                                     &e), 0);
  assert_int_equal(n, 2);
  assert_true(trunc);
  assert_string_equal(list[0].key, "a");
  assert_string_equal(list[1].key, "ab");
  assert_int_equal(store_upload_list(f->s, "bkt", NULL, "a", NULL, 10, f->a, &list, &n, &trunc,
                                     &e), 0);
  assert_int_equal(n, 3);
  assert_string_equal(list[0].key, "ab");
  assert_int_equal(store_upload_list(f->s, "bkt", "c/", NULL, NULL, 10, f->a, &list, &n, &trunc,
                                     &e), 0);
  assert_int_equal(n, 1);
  assert_string_equal(list[0].key, "c/1");

  /* uploads of 1,024-byte keys that differ only at the end */
  char k1[STORE_MAX_KEY + 1];
  char k2[STORE_MAX_KEY + 1];
  memset(k1, 'z', STORE_MAX_KEY);
  k1[STORE_MAX_KEY] = '\0';
  memcpy(k2, k1, sizeof k1);
  k1[STORE_MAX_KEY - 1] = '2';
  k2[STORE_MAX_KEY - 1] = '1';
  const char *id1 = NULL;
  const char *id2 = NULL;
  assert_int_equal(store_upload_create(f->s, "bkt", k1, NULL, 0, NULL, 0, f->a, &id1, &e), 0);
  assert_int_equal(store_upload_create(f->s, "bkt", k2, NULL, 0, NULL, 0, f->a, &id2, &e), 0);
  assert_int_equal(store_upload_list(f->s, "bkt", "zzz", NULL, NULL, 10, f->a, &list, &n, &trunc,
                                     &e), 0);
  assert_int_equal(n, 2);
  assert_string_equal(list[0].key, k2);
  assert_string_equal(list[1].key, k1);
  assert_int_equal(store_upload_list(f->s, "bkt", NULL, k2, NULL, 10, f->a, &list, &n, &trunc,
                                     &e), 0);
  assert_int_equal(n, 1);
  assert_string_equal(list[0].upload_id, id1);
  uint8_t md5[16];
  const char *etag = upload_part(f, k1, id1, 1, "long", 4, md5);
  store_part_ref ref[] = { { 1, etag } };
  store_object o;
  assert_int_equal(store_upload_complete(f->s, "bkt", k1, id1, ref, 1, NULL, 0, f->a, &o, &e), 0);
  assert_false(check_bytes(f, "bkt", k1, "long", 4));  /* a multipart result is never inline */
  store_upload up;
  assert_int_equal(store_upload_get(f->s, "bkt", k2, id2, f->a, &up, &e), 0);
  assert_string_equal(up.key, k2);
  assert_int_equal(store_upload_get(f->s, "bkt", k1, id1, f->a, &up, &e), ERR_NO_SUCH_UPLOAD);
}

/* ---- copy ---- */

static void test_copy(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "src", &e), 0);
  assert_int_equal(store_bucket_create(f->s, "dst", &e), 0);
  str_pair meta[] = { { "content-type", "text/plain" } };
  str_pair tags[] = { { "a", "1" } };
  uint8_t *payload = pattern(BIG, 3);
  assert_int_equal(put_meta(f, "src", "k", payload, BIG, meta, 1, tags, 1, &e), 0);

  store_object o;
  assert_int_equal(store_object_copy(f->s, "src", "k", "dst", "k2", NULL, 0, NULL, 0, f->a, &o,
                                     &e), 0);
  char want[33];
  md5_hex(payload, BIG, want);
  assert_string_equal(o.etag, want);
  assert_string_equal(o.key, "k2");
  assert_int_equal(o.nmeta, 1);
  assert_int_equal(o.ntags, 1);
  assert_false(check_bytes(f, "dst", "k2", payload, BIG));
  assert_int_equal(count_blobs(f), 2);  /* a hard link of its own */

  /* same key, metadata replaced */
  str_pair meta2[] = { { "content-type", "application/json" }, { "x-amz-meta-v", "2" } };
  assert_int_equal(store_object_copy(f->s, "src", "k", "src", "k", meta2, 2, NULL, 0, f->a, &o,
                                     &e), 0);
  assert_int_equal(store_object_get(f->s, "src", "k", f->a, &o, NULL, &e), 0);
  assert_int_equal(o.nmeta, 2);
  assert_string_equal(o.meta[0].value, "application/json");
  assert_int_equal(o.ntags, 1);
  assert_string_equal(o.etag, want);
  check_bytes(f, "src", "k", payload, BIG);
  assert_int_equal(count_blobs(f), 2);

  /* the source can go; the copy stays */
  assert_int_equal(store_object_delete(f->s, "src", "k", NULL, &e), 0);
  check_bytes(f, "dst", "k2", payload, BIG);

  assert_int_equal(store_object_copy(f->s, "src", "k", "dst", "k3", NULL, 0, NULL, 0, f->a, &o,
                                     &e), ERR_NO_SUCH_KEY);
  assert_int_equal(store_object_copy(f->s, "dst", "k2", "nope", "k3", NULL, 0, NULL, 0, f->a, &o,
                                     &e), ERR_NO_SUCH_BUCKET);
  assert_int_equal(count_blobs(f), 1);
  store_stats st;
  store_stats_get(f->s, &st);
  assert_int_equal(st.objects, 1);
  free(payload);
}

/* ---- inline objects ---- */

static void check_stats(fixture *f, uint64_t objects, uint64_t bytes)
{
  store_stats st;
  store_stats_get(f->s, &st);
  assert_int_equal(st.objects, objects);
  assert_int_equal(st.bytes, bytes);
}

static void test_inline(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);

  /* a small object: no file, the bytes come back with the record */
  str_pair meta[] = { { "content-type", "text/plain" } };
  assert_int_equal(put_meta(f, "bkt", "small", "tiny text", 9, meta, 1, NULL, 0, &e), 0);
  assert_int_equal(count_blobs(f), 0);
  store_object o;
  int fd = -2;
  assert_int_equal(store_object_get(f->s, "bkt", "small", f->a, &o, &fd, &e), 0);
  assert_int_equal(fd, -1);
  assert_int_equal(o.size, 9);
  assert_memory_equal(o.data, "tiny text", 9);
  char want[33];
  md5_hex("tiny text", 9, want);
  assert_string_equal(o.etag, want);
  assert_string_equal(o.meta[0].value, "text/plain");
  char part[8];
  size_t got = 0;
  assert_int_equal(store_object_read(&o, fd, 5, part, sizeof part, &got, &e), 0);
  assert_int_equal(got, 4);
  assert_memory_equal(part, "text", 4);
  assert_int_equal(store_object_read(&o, fd, 9, part, sizeof part, &got, &e), 0);
  assert_int_equal(got, 0);
  assert_int_equal(store_object_get(f->s, "bkt", "small", f->a, &o, NULL, &e), 0);
  assert_null(o.data);  /* bytes only when asked for */
  check_stats(f, 1, 9);

  /* the boundary: STORE_INLINE_MAX bytes are inline, one more is a blob */
  uint8_t *edge = pattern(STORE_INLINE_MAX + 1, 7);
  assert_int_equal(put_bytes(f, "bkt", "edge", edge, STORE_INLINE_MAX), 0);
  assert_true(check_bytes(f, "bkt", "edge", edge, STORE_INLINE_MAX));
  assert_int_equal(count_blobs(f), 0);
  assert_int_equal(put_bytes(f, "bkt", "over", edge, STORE_INLINE_MAX + 1), 0);
  assert_false(check_bytes(f, "bkt", "over", edge, STORE_INLINE_MAX + 1));
  assert_int_equal(count_blobs(f), 1);
  assert_int_equal(put(f, "bkt", "empty", ""), 0);
  assert_true(check_bytes(f, "bkt", "empty", "", 0));
  check_stats(f, 4, 9 + 2 * STORE_INLINE_MAX + 1);

  /* overwrite inline -> blob, then blob -> inline: the blob goes after the commit */
  uint8_t *big = pattern(BIG, 8);
  assert_int_equal(put_bytes(f, "bkt", "small", big, BIG), 0);
  assert_false(check_bytes(f, "bkt", "small", big, BIG));
  assert_int_equal(count_blobs(f), 2);
  check_stats(f, 4, BIG + 2 * STORE_INLINE_MAX + 1);
  int old = -1;
  assert_int_equal(store_object_get(f->s, "bkt", "small", f->a, &o, &old, &e), 0);
  assert_int_equal(put(f, "bkt", "small", "small again"), 0);
  assert_true(check_bytes(f, "bkt", "small", "small again", 11));
  assert_int_equal(count_blobs(f), 1);
  uint8_t *buf = malloc(BIG);
  assert_int_equal(pread(old, buf, BIG, 0), BIG);  /* an open reader keeps its bytes */
  assert_memory_equal(buf, big, BIG);
  free(buf);
  close(old);
  check_stats(f, 4, 11 + 2 * STORE_INLINE_MAX + 1);
  /* inline -> inline */
  assert_int_equal(put(f, "bkt", "small", "v3"), 0);
  assert_true(check_bytes(f, "bkt", "small", "v3", 2));
  check_stats(f, 4, 2 + 2 * STORE_INLINE_MAX + 1);

  /* a listing shows inline objects like the others */
  store_list_params lp = { .max_keys = 100 };
  store_list_result res;
  assert_int_equal(store_object_list(f->s, "bkt", &lp, f->a, &res, &e), 0);
  assert_int_equal(res.nobjects, 4);
  assert_string_equal(res.objects[0].key, "edge");
  assert_int_equal(res.objects[0].size, STORE_INLINE_MAX);
  assert_string_equal(res.objects[2].key, "over");
  assert_int_equal(res.objects[2].size, STORE_INLINE_MAX + 1);
  assert_string_equal(res.objects[3].key, "small");
  assert_int_equal(res.objects[3].size, 2);
  md5_hex("v3", 2, want);
  assert_string_equal(res.objects[3].etag, want);
  for (size_t i = 0; i < res.nobjects; i++)
    assert_null(res.objects[i].data);

  /* delete */
  bool existed = false;
  assert_int_equal(store_object_delete(f->s, "bkt", "small", &existed, &e), 0);
  assert_true(existed);
  assert_int_equal(store_object_get(f->s, "bkt", "small", f->a, &o, &fd, &e), ERR_NO_SUCH_KEY);
  assert_int_equal(store_object_delete(f->s, "bkt", "edge", &existed, &e), 0);
  assert_int_equal(store_object_delete(f->s, "bkt", "empty", &existed, &e), 0);
  assert_int_equal(count_blobs(f), 1);
  check_stats(f, 1, STORE_INLINE_MAX + 1);
  assert_int_equal(store_object_delete(f->s, "bkt", "over", &existed, &e), 0);
  assert_int_equal(count_blobs(f), 0);
  check_stats(f, 0, 0);
  free(edge);
  free(big);
}

/* A writer keeps the head in memory and makes its blob only when the bytes
 * outgrow it, writing the head first. */
static void test_inline_threshold(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  uint8_t *p = pattern(3 * STORE_INLINE_MAX, 9);

  /* many small writes up to exactly the limit: inline */
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  for (size_t off = 0; off < STORE_INLINE_MAX; off += 1000) {
    size_t n = STORE_INLINE_MAX - off < 1000 ? STORE_INLINE_MAX - off : 1000;
    assert_int_equal(store_writer_write(w, p + off, n, &e), 0);
  }
  assert_int_equal(count_blobs(f), 0);
  assert_int_equal(store_object_commit(w, "bkt", "at", NULL, NULL, 0, NULL, 0, NULL, NULL, &e), 0);
  w = store_writer_free(w);
  assert_true(check_bytes(f, "bkt", "at", p, STORE_INLINE_MAX));

  /* crossing the limit mid-stream: 10,000 bytes in memory, then a write
     that does not fit makes the blob with the whole prefix */
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_writer_write(w, p, 10000, &e), 0);
  assert_int_equal(count_blobs(f), 0);
  assert_int_equal(store_writer_write(w, p + 10000, 10000, &e), 0);
  assert_int_equal(count_blobs(f), 1);
  assert_int_equal(store_writer_write(w, p + 20000, 3 * STORE_INLINE_MAX - 20000, &e), 0);
  uint8_t md5[16];
  store_writer_md5(w, md5);
  char hex[33];
  for (int i = 0; i < 16; i++)
    snprintf(hex + 2 * i, 3, "%02x", md5[i]);
  char want[33];
  md5_hex(p, 3 * STORE_INLINE_MAX, want);
  assert_string_equal(hex, want);
  store_object o;
  assert_int_equal(store_object_commit(w, "bkt", "crossed", NULL, NULL, 0, NULL, 0, f->a, &o,
                                       &e), 0);
  w = store_writer_free(w);
  assert_string_equal(o.etag, want);
  assert_false(check_bytes(f, "bkt", "crossed", p, 3 * STORE_INLINE_MAX));
  assert_int_equal(count_blobs(f), 1);

  /* the limit plus one byte, the extra byte alone */
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_writer_write(w, p, STORE_INLINE_MAX, &e), 0);
  assert_int_equal(store_writer_write(w, p + STORE_INLINE_MAX, 1, &e), 0);
  assert_int_equal(store_object_commit(w, "bkt", "plus1", NULL, NULL, 0, NULL, 0, NULL, NULL, &e),
                   0);
  w = store_writer_free(w);
  assert_false(check_bytes(f, "bkt", "plus1", p, STORE_INLINE_MAX + 1));
  assert_int_equal(count_blobs(f), 2);

  /* abandoned writers leave nothing, with or without a blob */
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_writer_write(w, p, 100, &e), 0);
  w = store_writer_free(w);
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_writer_write(w, p, BIG, &e), 0);
  assert_int_equal(count_blobs(f), 3);
  w = store_writer_free(w);
  assert_int_equal(count_blobs(f), 2);
  free(p);
}

static void test_inline_copy(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "src", &e), 0);
  assert_int_equal(store_bucket_create(f->s, "dst", &e), 0);
  str_pair meta[] = { { "content-type", "text/plain" } };
  str_pair tags[] = { { "a", "1" } };
  assert_int_equal(put_meta(f, "src", "k", "payload", 7, meta, 1, tags, 1, &e), 0);

  store_object o;
  assert_int_equal(store_object_copy(f->s, "src", "k", "dst", "k2", NULL, 0, NULL, 0, f->a, &o,
                                     &e), 0);
  char want[33];
  md5_hex("payload", 7, want);
  assert_string_equal(o.etag, want);
  assert_int_equal(o.size, 7);
  assert_int_equal(o.nmeta, 1);
  assert_int_equal(o.ntags, 1);
  assert_true(check_bytes(f, "dst", "k2", "payload", 7));
  assert_int_equal(count_blobs(f), 0);
  check_stats(f, 2, 14);

  /* onto itself with new metadata; then new tags: the bytes stay */
  str_pair meta2[] = { { "content-type", "application/json" } };
  assert_int_equal(store_object_copy(f->s, "src", "k", "src", "k", meta2, 1, NULL, 0, f->a, &o,
                                     &e), 0);
  str_pair tags2[] = { { "b", "2" } };
  assert_int_equal(store_object_tags_set(f->s, "src", "k", tags2, 1, &e), 0);
  assert_int_equal(store_object_get(f->s, "src", "k", f->a, &o, NULL, &e), 0);
  assert_string_equal(o.meta[0].value, "application/json");
  assert_string_equal(o.tags[0].name, "b");
  assert_true(check_bytes(f, "src", "k", "payload", 7));
  check_stats(f, 2, 14);

  /* the source goes, the copy stays; a copy over a blob drops the blob */
  assert_int_equal(store_object_delete(f->s, "src", "k", NULL, &e), 0);
  assert_true(check_bytes(f, "dst", "k2", "payload", 7));
  uint8_t *big = pattern(BIG, 10);
  assert_int_equal(put_bytes(f, "dst", "k3", big, BIG), 0);
  assert_int_equal(count_blobs(f), 1);
  assert_int_equal(store_object_copy(f->s, "dst", "k2", "dst", "k3", NULL, 0, NULL, 0, f->a, &o,
                                     &e), 0);
  assert_true(check_bytes(f, "dst", "k3", "payload", 7));
  assert_int_equal(count_blobs(f), 0);
  check_stats(f, 2, 14);
  free(big);

  reopen(f);
  assert_true(check_bytes(f, "dst", "k2", "payload", 7));
  assert_true(check_bytes(f, "dst", "k3", "payload", 7));
  check_stats(f, 2, 14);
}

/* A data directory written before inline objects existed: its object
 * records are version 1 (version byte, key, size, mtime, blob id, etag,
 * meta, tags; index.c) and still read after an upgrade. The record is
 * written here with LMDB directly, as the old store wrote it. */
static void test_old_records(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  f->s = store_close(f->s);

  const char *id = "5a0123456789abcdef0123456789abcd";
  char path[160];
  snprintf(path, sizeof path, "%s/blobs/%.2s/%s", f->dir, id, id);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "old bytes", 9), 9);
  close(fd);
  uint8_t blob[16];
  for (int i = 0; i < 16; i++)
    assert_int_equal(sscanf(id + 2 * i, "%2hhx", &blob[i]), 1);

  uint8_t rec[64];
  size_t n = 0;
  rec[n++] = 1;        /* version */
  rec[n++] = 0;        /* short-form key: none in the record */
  rec[n++] = 9;        /* size */
  rec[n++] = 0;        /* mtime 0 */
  memcpy(rec + n, blob, 16);
  n += 16;
  rec[n++] = 3;        /* etag */
  memcpy(rec + n, "abc", 3);
  n += 3;
  rec[n++] = 0;        /* no meta */
  rec[n++] = 0;        /* no tags */

  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  MDB_dbi objects;
  MDB_dbi blobs;
  MDB_dbi counters;
  char meta[128];
  snprintf(meta, sizeof meta, "%s/meta", f->dir);
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
  assert_int_equal(mdb_env_set_mapsize(env, 64ull << 30), 0);
  assert_int_equal(mdb_env_open(env, meta, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "objects", 0, &objects), 0);
  assert_int_equal(mdb_dbi_open(txn, "blobs", 0, &blobs), 0);
  MDB_val k = { 7, "bkt\0old" };
  MDB_val v = { n, rec };
  assert_int_equal(mdb_put(txn, objects, &k, &v, 0), 0);
  MDB_val bk = { 16, blob };
  MDB_val bv = { 1, "o" };
  assert_int_equal(mdb_put(txn, blobs, &bk, &bv, 0), 0);
  assert_int_equal(mdb_dbi_open(txn, "counters", 0, &counters), 0);
  uint8_t one[8] = { 1 };   /* 8 bytes little-endian */
  uint8_t nine[8] = { 9 };
  MDB_val ck = { 7, "objects" };
  MDB_val cv = { 8, one };
  assert_int_equal(mdb_put(txn, counters, &ck, &cv, 0), 0);
  ck = (MDB_val){ 5, "bytes" };
  cv = (MDB_val){ 8, nine };
  assert_int_equal(mdb_put(txn, counters, &ck, &cv, 0), 0);

  /* a version 2 record (inline form, no upload fields) */
  uint8_t rec2[] = { 2, 0, 2, 0, 1, 2, 'h', 'i', 1, 'e', 0, 0 };
  k = (MDB_val){ 8, "bkt\0old2" };
  v = (MDB_val){ sizeof rec2, rec2 };
  assert_int_equal(mdb_put(txn, objects, &k, &v, 0), 0);
  /* a version 1 bucket record (no tags) */
  MDB_dbi buckets;
  assert_int_equal(mdb_dbi_open(txn, "buckets", 0, &buckets), 0);
  uint8_t brec[] = { 1, 5 };
  k = (MDB_val){ 4, "oldb" };
  v = (MDB_val){ sizeof brec, brec };
  assert_int_equal(mdb_put(txn, buckets, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  reopen(f);
  assert_true(check_bytes(f, "bkt", "old2", "hi", 2));
  store_object o2;
  assert_int_equal(store_object_get(f->s, "bkt", "old2", f->a, &o2, NULL, &e), 0);
  assert_string_equal(o2.etag, "e");
  assert_string_equal(o2.upload_id, "");
  assert_int_equal(o2.nparts, 0);
  store_bucket ob;
  assert_int_equal(store_bucket_get(f->s, "oldb", f->a, &ob, &e), 0);
  assert_int_equal(ob.created_ms, 5);
  str_pair *bt = NULL;
  size_t nbt = 1;
  assert_int_equal(store_bucket_tags_get(f->s, "oldb", f->a, &bt, &nbt, &e), 0);
  assert_int_equal(nbt, 0);
  assert_int_equal(store_bucket_delete(f->s, "oldb", &e), 0);
  assert_false(check_bytes(f, "bkt", "old", "old bytes", 9));
  store_object o;
  assert_int_equal(store_object_get(f->s, "bkt", "old", f->a, &o, NULL, &e), 0);
  assert_string_equal(o.etag, "abc");
  /* tags rewrite the record in the new form; an inline overwrite drops the blob */
  str_pair tags[] = { { "t", "1" } };
  assert_int_equal(store_object_tags_set(f->s, "bkt", "old", tags, 1, &e), 0);
  assert_false(check_bytes(f, "bkt", "old", "old bytes", 9));
  assert_int_equal(count_blobs(f), 1);
  assert_int_equal(put(f, "bkt", "old", "new"), 0);
  assert_true(check_bytes(f, "bkt", "old", "new", 3));
  assert_int_equal(count_blobs(f), 0);
  check_stats(f, 1, 3);
  /* versioning on: a record written before it is the null version, kept
     as a noncurrent version when overwritten */
  assert_int_equal(store_bucket_versioning_set(f->s, "bkt", STORE_VERSIONING_ENABLED, &e), 0);
  store_object o3;
  assert_int_equal(store_object_get(f->s, "bkt", "old2", f->a, &o3, NULL, &e), 0);
  assert_string_equal(o3.version_id, "null");
  assert_int_equal(put(f, "bkt", "old2", "v"), 0);
  fd = 0;
  assert_int_equal(store_object_get_version(f->s, "bkt", "old2", "null", f->a, &o3, &fd, &e), 0);
  assert_int_equal(fd, -1);
  assert_int_equal(o3.size, 2);
  assert_memory_equal(o3.data, "hi", 2);
  assert_true(check_bytes(f, "bkt", "old2", "v", 1));
}

/* ---- group commit ---- */

typedef struct worker {
  fixture *f;
  const char *pad;         /* BIG bytes of 'x' */
  int index;
  int failures;            /* unexpected results */
  pthread_barrier_t *go;
} worker;

enum { THREADS = 8, PUTS = 25 };

static void *worker_main(void *arg)
{
  worker *w = arg;
  pthread_barrier_wait(w->go);
  for (int i = 0; i < PUTS; i++) {
    char key[32];
    snprintf(key, sizeof key, "t%d/k%d", w->index, i);
    err e = { 0 };
    /* even threads write inline objects (the key), odd ones blobs (the
       key, then BIG - strlen(key) bytes of 'x') */
    store_writer *wr = NULL;
    if (store_writer_new(w->f->s, &wr, &e) != 0 || store_writer_write(wr, key, strlen(key), &e))
      w->failures++;
    if (w->index % 2 == 1 && store_writer_write(wr, w->pad, BIG - strlen(key), &e) != 0)
      w->failures++;
    /* odd threads also aim at a missing bucket: that change fails alone */
    if (w->index % 2 == 1 && i % 5 == 0) {
      store_writer *bad = NULL;
      store_writer_new(w->f->s, &bad, &e);
      if (store_object_commit(bad, "missing", key, NULL, NULL, 0, NULL, 0, NULL, NULL, &e) !=
          ERR_NO_SUCH_BUCKET)
        w->failures++;
      store_writer_free(bad);
    }
    if (store_object_commit(wr, "bkt", key, NULL, NULL, 0, NULL, 0, NULL, NULL, &e) != 0)
      w->failures++;
    store_writer_free(wr);
  }
  return NULL;
}

static void test_concurrent(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  store_stats before;
  store_stats_get(f->s, &before);
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, THREADS);
  pthread_t th[THREADS];
  worker ws[THREADS];
  char *pad = malloc(BIG);
  memset(pad, 'x', BIG);
  for (int i = 0; i < THREADS; i++) {
    ws[i] = (worker){ .f = f, .pad = pad, .index = i, .go = &go };
    assert_int_equal(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(ws[i].failures, 0);
  }
  pthread_barrier_destroy(&go);

  store_stats st;
  store_stats_get(f->s, &st);
  assert_int_equal(st.objects, THREADS * PUTS);
  uint64_t changes = st.changes - before.changes;
  uint64_t commits = st.commits - before.commits;
  assert_int_equal(changes, THREADS * PUTS);
  assert_true(commits < changes);
  assert_int_equal(count_blobs(f), THREADS / 2 * PUTS);
  assert_int_equal(st.bytes, THREADS / 2 * PUTS * (uint64_t)BIG + 4 * (10 * 5 + 15 * 6));
  assert_true(check_bytes(f, "bkt", "t6/k24", "t6/k24", 6));
  memcpy(pad, "t7/k24", 6);
  assert_false(check_bytes(f, "bkt", "t7/k24", pad, BIG));
  free(pad);
}

/* ---- durability across close, sweep, abandoned writers ---- */

static void test_reopen(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  str_pair meta[] = { { "content-type", "text/html" } };
  assert_int_equal(put_meta(f, "bkt", "index.html", "<p>hi</p>", 9, meta, 1, NULL, 0, &e), 0);
  assert_int_equal(put(f, "bkt", "other", "1234"), 0);
  uint8_t *big = pattern(BIG, 4);
  assert_int_equal(put_bytes(f, "bkt", "big", big, BIG), 0);
  const char *id = NULL;
  assert_int_equal(store_upload_create(f->s, "bkt", "up", NULL, 0, NULL, 0, f->a, &id, &e), 0);
  uint8_t md5[16];
  upload_part(f, "up", id, 1, "part", 4, md5);

  reopen(f);
  assert_true(check_bytes(f, "bkt", "index.html", "<p>hi</p>", 9));  /* inline bytes kept */
  assert_true(check_bytes(f, "bkt", "other", "1234", 4));
  assert_false(check_bytes(f, "bkt", "big", big, BIG));
  free(big);
  store_object o;
  assert_int_equal(store_object_get(f->s, "bkt", "index.html", f->a, &o, NULL, &e), 0);
  assert_string_equal(o.meta[0].value, "text/html");
  store_upload up;
  assert_int_equal(store_upload_get(f->s, "bkt", "up", id, f->a, &up, &e), 0);
  store_part *parts = NULL;
  size_t n = 0;
  bool trunc = false;
  assert_int_equal(store_part_list(f->s, "bkt", "up", id, 0, 10, f->a, &parts, &n, &trunc, &e),
                   0);
  assert_int_equal(n, 1);
  store_stats st;
  store_stats_get(f->s, &st);
  assert_int_equal(st.buckets, 1);
  assert_int_equal(st.objects, 3);
  assert_int_equal(st.bytes, 13 + BIG);
  assert_int_equal(st.swept_blobs, 0);  /* nothing was garbage */
  assert_int_equal(count_blobs(f), 2);  /* "big" and the part */
}

/* Reads version vid of key and compares its bytes. */
static bool version_is(fixture *f, const char *key, const char *vid, const void *want, size_t n)
{
  err e = { 0 };
  store_object o;
  int fd = -1;
  if (store_object_get_version(f->s, "vbk", key, vid, f->a, &o, &fd, &e) != 0 || o.size != n)
    return false;
  uint8_t *got = malloc(n + 1);
  size_t have = 0;
  bool ok = store_object_read(&o, fd, 0, got, n, &have, &e) == 0 && have == n &&
            memcmp(got, want, n) == 0;
  free(got);
  if (fd >= 0)
    close(fd);
  return ok;
}

static const char *put_version(fixture *f, const char *key, const void *p, size_t n)
{
  err e = { 0 };
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_writer_write(w, p, n, &e), 0);
  store_object o;
  assert_int_equal(store_object_commit(w, "vbk", key, NULL, NULL, 0, NULL, 0, f->a, &o, &e), 0);
  store_writer_free(w);
  assert_non_null(o.version_id);
  return o.version_id;
}

static void test_versions(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "vbk", &e), 0);
  assert_int_equal(put(f, "vbk", "k", "before"), 0);  /* the null version */
  assert_int_equal(store_bucket_versioning_set(f->s, "vbk", STORE_VERSIONING_ENABLED, &e), 0);
  uint8_t *big = pattern(BIG, 7);
  const char *v1 = put_version(f, "k", big, BIG);
  const char *v2 = put_version(f, "k", "two", 3);
  char lkey[1001];
  memset(lkey, 'x', 1000);
  lkey[1000] = '\0';
  const char *l1 = put_version(f, lkey, "long1", 5);
  const char *l2 = put_version(f, lkey, big, BIG);
  store_delete_result dr;
  assert_int_equal(store_object_delete_version(f->s, "vbk", lkey, NULL, false, &dr, &e), 0);
  assert_true(dr.delete_marker);

  reopen(f);
  assert_int_equal(store_sweep(f->s, 0, &e), 0);  /* noncurrent blobs are referenced */
  assert_int_equal(count_blobs(f), 2);
  assert_true(version_is(f, "k", "null", "before", 6));
  assert_true(version_is(f, "k", v1, big, BIG));
  assert_true(version_is(f, "k", v2, "two", 3));
  assert_true(version_is(f, lkey, l1, "long1", 5));
  assert_true(version_is(f, lkey, l2, big, BIG));
  store_object o;
  assert_int_equal(store_object_get(f->s, "vbk", lkey, f->a, &o, NULL, &e), ERR_NO_SUCH_KEY);
  const char *mid = NULL;
  assert_true(store_object_latest_marker(f->s, "vbk", lkey, f->a, &mid));
  assert_string_equal(mid, dr.version_id);

  store_version_params p = { .max_keys = 1000 };
  store_version_list l;
  assert_int_equal(store_object_versions(f->s, "vbk", &p, f->a, &l, &e), 0);
  assert_int_equal(l.nversions, 6);
  assert_string_equal(l.versions[0].version_id, v2);
  assert_true(l.versions[0].is_latest);
  assert_string_equal(l.versions[2].version_id, "null");
  assert_true(l.versions[3].delete_marker && l.versions[3].is_latest);
  assert_string_equal(l.versions[3].key, lkey);
  assert_string_equal(l.versions[5].version_id, l1);

  /* removing versions gives their blobs back; the bucket empties */
  assert_int_equal(store_object_delete_version(f->s, "vbk", "k", v1, false, &dr, &e), 0);
  assert_int_equal(store_object_delete_version(f->s, "vbk", lkey, l2, false, &dr, &e), 0);
  assert_int_equal(count_blobs(f), 0);
  assert_int_equal(store_bucket_delete(f->s, "vbk", &e), ERR_BUCKET_NOT_EMPTY);
  const char *rest[][2] = { { "k", v2 }, { "k", "null" }, { lkey, l1 }, { lkey, mid } };
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(store_object_delete_version(f->s, "vbk", rest[i][0], rest[i][1], false, &dr,
                                                 &e), 0);
  assert_int_equal(store_object_versions(f->s, "vbk", &p, f->a, &l, &e), 0);
  assert_int_equal(l.nversions, 0);
  assert_int_equal(store_bucket_delete(f->s, "vbk", &e), 0);
  free(big);
}

static void make_orphan(const fixture *f, const char *name)
{
  char path[160];
  snprintf(path, sizeof path, "%s/blobs/%.2s/%s", f->dir, name, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "junk", 4), 4);
  close(fd);
}

static void test_sweep(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  uint8_t *kept = pattern(BIG, 5);
  assert_int_equal(put_bytes(f, "bkt", "keep", kept, BIG), 0);
  assert_int_equal(put(f, "bkt", "small", "inline"), 0);  /* no file: nothing to sweep */
  const char *id = NULL;
  assert_int_equal(store_upload_create(f->s, "bkt", "up", NULL, 0, NULL, 0, f->a, &id, &e), 0);
  uint8_t md5[16];
  upload_part(f, "up", id, 1, "part", 4, md5);
  make_orphan(f, "ab0123456789abcdef0123456789abcd");
  assert_int_equal(count_blobs(f), 3);

  assert_int_equal(store_sweep(f->s, 3600, &e), 0);  /* too young */
  assert_int_equal(count_blobs(f), 3);
  assert_int_equal(store_sweep(f->s, 0, &e), 1);
  assert_int_equal(count_blobs(f), 2);
  check_bytes(f, "bkt", "keep", kept, BIG);
  check_text(f, "bkt", "small", "inline");
  store_stats st;
  store_stats_get(f->s, &st);
  assert_int_equal(st.swept_blobs, 1);

  /* at open, too */
  f->s = store_close(f->s);
  make_orphan(f, "cd0123456789abcdef0123456789abcd");
  reopen(f);
  assert_int_equal(count_blobs(f), 2);
  store_stats_get(f->s, &st);
  assert_int_equal(st.swept_blobs, 1);
  check_bytes(f, "bkt", "keep", kept, BIG);
  check_text(f, "bkt", "small", "inline");
  free(kept);
  store_part *parts = NULL;
  size_t n = 0;
  bool trunc = false;
  assert_int_equal(store_part_list(f->s, "bkt", "up", id, 0, 10, f->a, &parts, &n, &trunc, &e),
                   0);
  assert_int_equal(n, 1);
}

static void test_writer_free(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_writer_write(w, "abandoned", 9, &e), 0);
  assert_int_equal(store_writer_size(w), 9);
  assert_int_equal(count_blobs(f), 0);  /* still in memory */
  uint8_t *more = pattern(BIG, 6);
  assert_int_equal(store_writer_write(w, more, BIG, &e), 0);
  free(more);
  assert_int_equal(store_writer_size(w), 9 + BIG);
  uint8_t md5[16];
  store_writer_md5(w, md5);
  assert_int_equal(count_blobs(f), 1);
  /* a live writer's blob is in flight: even a sweep with age 0 keeps it */
  assert_int_equal(store_sweep(f->s, 0, &e), 0);
  assert_int_equal(count_blobs(f), 1);
  assert_null(store_writer_free(w));
  assert_int_equal(count_blobs(f), 0);
  assert_null(store_writer_free(NULL));
  assert_null(store_close(NULL));
}

/* Lifecycle rules: the checks, which rule expires what and when (a real day
 * rounds up to midnight UTC), and a sweep applying an Expiration Date. */
/* Conditional writes: the expectation is checked in the committing
 * transaction; a refused write changes nothing. */
static int put_if(fixture *f, const char *key, const char *text, const store_expect *x, err *e)
{
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, e), 0);
  assert_int_equal(store_writer_write(w, text, strlen(text), e), 0);
  int rc = store_object_commit_if(w, "bkt", key, NULL, NULL, 0, NULL, 0, x, NULL, NULL, e);
  store_writer_free(w);
  return rc;
}

static void test_expect(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "bkt", &e), 0);
  store_expect absent = { .absent = true };
  assert_int_equal(put_if(f, "k", "one", &absent, &e), 0);
  assert_int_equal(put_if(f, "k", "two", &absent, &e), ERR_PRECONDITION);
  check_text(f, "bkt", "k", "one");
  char one[33];
  md5_hex("one", 3, one);
  char quoted[40];
  snprintf(quoted, sizeof quoted, "\"%s\"", one);
  store_expect match = { .etag = quoted };
  assert_int_equal(put_if(f, "k", "two", &match, &e), 0);
  check_text(f, "bkt", "k", "two");
  assert_int_equal(put_if(f, "k", "three", &match, &e), ERR_PRECONDITION);
  assert_int_equal(put_if(f, "none", "x", &match, &e), ERR_NO_SUCH_KEY);
  store_object o;
  assert_int_equal(store_object_get(f->s, "bkt", "none", f->a, &o, NULL, &e), ERR_NO_SUCH_KEY);
  check_text(f, "bkt", "k", "two");

  bool existed = true;
  assert_int_equal(store_object_delete_if_match(f->s, "bkt", "k", quoted, &existed, &e),
                   ERR_PRECONDITION);
  check_text(f, "bkt", "k", "two");
  char two[33];
  md5_hex("two", 3, two);
  assert_int_equal(store_object_delete_if_match(f->s, "bkt", "k", two, &existed, &e), 0);
  assert_true(existed);
  assert_int_equal(store_object_delete_if_match(f->s, "bkt", "k", two, &existed, &e),
                   ERR_NO_SUCH_KEY);
}

static void test_lifecycle(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  const char *doc =
      "<LifecycleConfiguration><Rule><ID>logs</ID><Status>Enabled</Status>"
      "<Filter><Prefix>logs/</Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule>"
      "<Rule><ID>big</ID><Status>Enabled</Status><Filter><And><Prefix></Prefix>"
      "<Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
      "</And></Filter><Expiration><Days>3</Days></Expiration></Rule>"
      "<Rule><ID>off</ID><Status>Disabled</Status><Prefix>x</Prefix>"
      "<Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>";
  store_lifecycle lc;
  assert_int_equal(store_lifecycle_parse(doc, strlen(doc), f->a, &lc, &e), 0);
  assert_int_equal(lc.nrules, 3);

  int64_t t = 1765062000000;  /* 2025-12-06T23:00:00Z */
  str_pair tag = { "k", "v" };
  store_object o = { .bucket = "b", .key = "logs/a", .size = 5, .mtime_ms = t };
  int64_t when;
  const char *id;
  assert_true(store_lifecycle_expiry(&lc, &o, &when, &id));
  assert_string_equal(id, "logs");
  assert_int_equal(when, 1765152000000);  /* 2025-12-08T00:00:00Z */
  o.key = "data/a";
  assert_false(store_lifecycle_expiry(&lc, &o, &when, &id));  /* untagged */
  o.tags = &tag;
  o.ntags = 1;
  assert_false(store_lifecycle_expiry(&lc, &o, &when, &id));  /* too small */
  o.size = 11;
  assert_true(store_lifecycle_expiry(&lc, &o, &when, &id));
  assert_string_equal(id, "big");
  o.key = "xyz";
  o.tags = NULL;
  o.ntags = 0;
  assert_false(store_lifecycle_expiry(&lc, &o, &when, &id));  /* disabled */

  static const struct { const char *doc; int code; } bad[] = {
    {"<LifecycleConfiguration/>", ERR_MALFORMED_XML},
    {"<LifecycleConfiguration><Rule><Status>Enabled</Status><Filter/></Rule>"
     "</LifecycleConfiguration>", ERR_INVALID_REQUEST},
    {"<LifecycleConfiguration><Rule><Status>Enabled</Status><Filter/><Expiration><Days>0"
     "</Days></Expiration></Rule></LifecycleConfiguration>", ERR_INVALID},
    {"<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration><Days>1"
     "</Days></Expiration></Rule></LifecycleConfiguration>", ERR_MALFORMED_XML},
    {"<LifecycleConfiguration><Rule><Status>Enabled</Status><Filter><Prefix>a</Prefix>"
     "<Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration><Days>1</Days>"
     "</Expiration></Rule></LifecycleConfiguration>", ERR_MALFORMED_XML},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err be = { 0 };
    assert_int_equal(store_lifecycle_parse(bad[i].doc, strlen(bad[i].doc), f->a, &lc, &be),
                     bad[i].code);
  }

  assert_int_equal(store_bucket_create(f->s, "lcb", &e), 0);
  assert_int_equal(put(f, "lcb", "old/a", "x"), 0);
  assert_int_equal(put(f, "lcb", "new/a", "x"), 0);
  const char *past = "<LifecycleConfiguration><Rule><Status>Enabled</Status><Filter>"
                     "<Prefix>old/</Prefix></Filter><Expiration><Date>2020-01-01T00:00:00Z"
                     "</Date></Expiration></Rule></LifecycleConfiguration>";
  assert_int_equal(store_bucket_conf_set(f->s, "lcb", "lifecycle", past, &e), 0);
  assert_int_equal(store_lifecycle_sweep(f->s, &e), 1);
  store_object got;
  assert_int_equal(store_object_get(f->s, "lcb", "old/a", f->a, &got, NULL, &e), ERR_NO_SUCH_KEY);
  assert_int_equal(store_object_get(f->s, "lcb", "new/a", f->a, &got, NULL, &e), 0);
}

/* ---- server-side encryption (crypt.c) ---- */

/* Writes p as bucket/key encrypted with sealed (key: SSE-C), in pieces of
 * 1000 bytes. */
static int put_sealed(fixture *f, const char *bucket, const char *key, const void *p, size_t n,
                      const char *sealed, const uint8_t *ckey, store_object *out, err *e)
{
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, e), 0);
  int rc = store_writer_encrypt(w, sealed, ckey, e);
  for (size_t off = 0; rc == 0 && off < n; off += 1000)
    rc = store_writer_write(w, (const uint8_t *)p + off, n - off < 1000 ? n - off : 1000, e);
  str_pair meta[] = { { "content-type", "text/plain" } };
  if (rc == 0)
    rc = store_object_commit(w, bucket, key, NULL, meta, 1, NULL, 0, f->a, out, e);
  store_writer_free(w);
  return rc;
}

static void test_encrypted(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "enc", &e), 0);
  const char *sealed;
  static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 200000 };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    uint8_t *p = pattern(n, (unsigned)i);
    char key[32];
    snprintf(key, sizeof key, "s3-%zu", n);
    store_object o;
    assert_int_equal(store_sse_new(f->s, STORE_SSE_S3, NULL, f->a, &sealed, &e), 0);
    assert_int_equal(put_sealed(f, "enc", key, p, n, sealed, NULL, &o, &e), 0);
    char want[33];
    md5_hex(p, n, want);
    assert_string_equal(o.etag, want);  /* SSE-S3: the MD5 of the data */
    assert_int_equal(o.sse, STORE_SSE_S3);
    assert_int_equal(o.nmeta, 1);       /* the sealed key is not shown */
    assert_false(check_bytes(f, "enc", key, p, n));  /* never inline */
    /* the blob: header, chunks, one tag per chunk */
    int fd = -1;
    assert_int_equal(store_object_get(f->s, "enc", key, f->a, &o, &fd, &e), 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal((uint64_t)st.st_size, 16 + n + (n + 65535) / 65536 * 16);
    assert_int_equal(store_object_plain_fd(&o, &fd, &e), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal((uint64_t)st.st_size, n);
    close(fd);
    free(p);
  }

  /* SSE-C: nothing reads without the key; a wrong key is refused */
  uint8_t ckey[32];
  uint8_t wrong[32];
  memset(ckey, 7, sizeof ckey);
  memset(wrong, 8, sizeof wrong);
  uint8_t *p = pattern(100000, 9);
  store_object o;
  assert_int_equal(store_sse_new(f->s, STORE_SSE_C, ckey, f->a, &sealed, &e), 0);
  assert_int_equal(put_sealed(f, "enc", "c", p, 100000, sealed, ckey, &o, &e), 0);
  char plain_md5[33];
  md5_hex(p, 100000, plain_md5);
  assert_string_not_equal(o.etag, plain_md5);
  int fd = -1;
  assert_int_equal(store_object_get(f->s, "enc", "c", f->a, &o, &fd, &e), 0);
  assert_int_equal(o.sse, STORE_SSE_C);
  assert_null(o.crypt);
  uint8_t buf[100];
  size_t got = 0;
  assert_int_equal(store_object_read(&o, fd, 0, buf, sizeof buf, &got, &e), ERR_INVALID_REQUEST);
  assert_int_equal(store_object_unlock(f->s, &o, wrong, f->a, &e), ERR_DENIED);
  assert_int_equal(store_object_unlock(f->s, &o, ckey, f->a, &e), 0);
  assert_int_equal(store_object_read(&o, fd, 70000, buf, sizeof buf, &got, &e), 0);
  assert_int_equal(got, sizeof buf);
  assert_memory_equal(buf, p + 70000, sizeof buf);
  close(fd);
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_writer_encrypt(w, sealed, wrong, &e), ERR_DENIED);
  store_writer_free(w);

  /* a copy with its metadata replaced keeps the bytes' key */
  assert_int_equal(store_sse_new(f->s, STORE_SSE_S3, NULL, f->a, &sealed, &e), 0);
  assert_int_equal(put_sealed(f, "enc", "src", p, 100000, sealed, NULL, &o, &e), 0);
  str_pair meta2[] = { { "content-type", "application/json" } };
  assert_int_equal(store_object_copy(f->s, "enc", "src", "enc", "dst", meta2, 1, NULL, 0, f->a, &o,
                                     &e), 0);
  check_bytes(f, "enc", "dst", p, 100000);

  /* an encrypted multipart upload: parts are segments of the object */
  str_pair um[] = { { STORE_SSE_META, sealed } };
  const char *id;
  assert_int_equal(store_upload_create(f->s, "enc", "mp", um, 1, NULL, 0, f->a, &id, &e), 0);
  store_upload u;
  assert_int_equal(store_upload_get(f->s, "enc", "mp", id, f->a, &u, &e), 0);
  assert_int_equal(u.sse, STORE_SSE_S3);
  assert_int_equal(u.nmeta, 0);
  size_t n1 = STORE_MIN_PART_SIZE + 1;
  uint8_t *whole = pattern(n1 + 100000, 11);
  store_part_ref refs[2];
  for (int part = 1; part <= 2; part++) {
    assert_int_equal(store_writer_new(f->s, &w, &e), 0);
    assert_int_equal(store_writer_encrypt(w, u.sse_sealed, NULL, &e), 0);
    const uint8_t *from = part == 1 ? whole : whole + n1;
    assert_int_equal(store_writer_write(w, from, part == 1 ? n1 : 100000, &e), 0);
    store_part sp;
    assert_int_equal(store_part_commit(w, "enc", "mp", id, part, NULL, NULL, f->a, &sp, &e), 0);
    refs[part - 1].number = part;
    refs[part - 1].etag = sp.etag;
    store_writer_free(w);
  }
  assert_int_equal(store_upload_complete(f->s, "enc", "mp", id, refs, 2, NULL, 0, f->a, &o, &e), 0);
  assert_int_equal(o.sse, STORE_SSE_S3);
  check_bytes(f, "enc", "mp", whole, n1 + 100000);
  free(whole);
  free(p);

  /* the master key: 32 bytes, mode 0600, the same after a reopen */
  char path[128];
  snprintf(path, sizeof path, "%s/sse-master.key", f->dir);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(st.st_size, 32);
  f->s = store_close(f->s);
  assert_int_equal(store_open(f->dir, &f->s, &e), 0);
  p = pattern(100000, 9);
  check_bytes(f, "enc", "dst", p, 100000);
  free(p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_buckets, setup, teardown),
    cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
    cmocka_unit_test_setup_teardown(test_meta_tags, setup, teardown),
    cmocka_unit_test_setup_teardown(test_list, setup, teardown),
    cmocka_unit_test_setup_teardown(test_long_keys, setup, teardown),
    cmocka_unit_test_setup_teardown(test_multipart, setup, teardown),
    cmocka_unit_test_setup_teardown(test_upload_list, setup, teardown),
    cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
    cmocka_unit_test_setup_teardown(test_inline, setup, teardown),
    cmocka_unit_test_setup_teardown(test_inline_threshold, setup, teardown),
    cmocka_unit_test_setup_teardown(test_inline_copy, setup, teardown),
    cmocka_unit_test_setup_teardown(test_old_records, setup, teardown),
    cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
    cmocka_unit_test_setup_teardown(test_writer_free, setup, teardown),
    cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
    cmocka_unit_test_setup_teardown(test_expect, setup, teardown),
    cmocka_unit_test_setup_teardown(test_encrypted, setup, teardown),
    cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
