/* tests/unit/formats/test_formats.c -- the readers: CSV dialect, header
 * and type sniffing, tokenizing (quotes, embedded newlines, CRLF, BOM, no
 * trailing newline, malformed rows), byte-range splitting, JSON lines,
 * value parsing and the codecs (snappy blocks against libsnappy). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "formats/codec.h"
#include "formats/csv.h"
#include "formats/jsonl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <bzlib.h>
#include <zstd.h>
#include <snappy-c.h>

static csv_options defaults(void)
{
  csv_options o;
  memset(&o, 0, sizeof o);
  o.header = -1;
  return o;
}

static void sniff(const char *text, csv_schema *s, arena *a)
{
  csv_options o = defaults();
  err e;
  assert_int_equal(csv_sniff(text, strlen(text), true, &o, a, s, &e), 0);
}

static void test_sniff_dialects(void **state)
{
  (void)state;
  arena *a = arena_new();
  csv_schema s;
  sniff("a,b,c\n1,2,3\n4,5,6\n", &s, a);
  assert_int_equal(s.delim, ',');
  assert_true(s.header);
  assert_int_equal(s.ncols, 3);
  assert_string_equal(s.names[1], "b");
  assert_int_equal(s.types[0], FT_BIGINT);
  sniff("x;y\n1.5;hello\n2;world\n", &s, a);
  assert_int_equal(s.delim, ';');
  assert_int_equal(s.types[0], FT_DOUBLE);
  assert_int_equal(s.types[1], FT_VARCHAR);
  sniff("x|y|z\n1|2|3\n", &s, a);
  assert_int_equal(s.delim, '|');
  sniff("x\ty\n2020-01-02\t2020-01-02 10:11:12\n", &s, a);
  assert_int_equal(s.delim, '\t');
  assert_int_equal(s.types[0], FT_DATE);
  assert_int_equal(s.types[1], FT_TIMESTAMP);
  /* no header: the first row has numbers like the rest */
  sniff("1,2\n3,4\n", &s, a);
  assert_false(s.header);
  assert_string_equal(s.names[0], "column0");
  /* booleans, empty fields as NULL */
  sniff("flag,n\ntrue,\nfalse,3\n", &s, a);
  assert_int_equal(s.types[0], FT_BOOLEAN);
  assert_int_equal(s.types[1], FT_BIGINT);
  arena_free(a);
}

/* tokenizes all of text with every column; returns rows */
static int read_all(const char *text, const csv_schema *s, fspan spans[][16], int max, err *e)
{
  csv_cursor c;
  size_t n = strlen(text);
  if (csv_cursor_init(&c, s, text, n, 0, n, "s3://b/t.csv", false, e) < 0)
    return -1;
  int cols[16];
  fspan *sp[16];
  for (size_t i = 0; i < s->ncols; i++) {
    cols[i] = (int)i;
    sp[i] = malloc(sizeof(fspan) * 64);
  }
  const char *rec[64];
  int total = 0;
  for (;;) {
    int r = csv_tokenize(&c, cols, (int)s->ncols, sp, rec, 64, e);
    if (r < 0) {
      total = -1;
      break;
    }
    if (r == 0)
      break;
    for (int k = 0; k < r && total + k < max; k++)
      for (size_t i = 0; i < s->ncols; i++)
        spans[total + k][i] = sp[i][k];
    total += r;
  }
  for (size_t i = 0; i < s->ncols; i++)
    free(sp[i]);
  return total;
}

static void span_is(const fspan *f, const char *want)
{
  assert_int_equal(f->n, strlen(want));
  assert_memory_equal(f->p, want, f->n);
}

static void test_quotes_newlines_crlf(void **state)
{
  (void)state;
  arena *a = arena_new();
  csv_schema s;
  const char *t = "\xEF\xBB\xBFid,text\r\n1,\"a, b\"\r\n2,\"say \"\"hi\"\"\"\r\n3,\"two\nlines\"\r\n4,last";
  sniff(t, &s, a);
  assert_true(s.header);
  assert_string_equal(s.names[0], "id");
  fspan rows[8][16];
  err e;
  int n = read_all(t, &s, rows, 8, &e);
  assert_int_equal(n, 4);
  span_is(&rows[0][1], "a, b");
  assert_true(rows[1][1].flags & SPAN_ESCAPED);
  span_is(&rows[2][1], "two\nlines");
  span_is(&rows[3][1], "last");
  /* unescaping through fmt_convert */
  vec v = {.phys = PHYS_STR};
  str_ref out[8];
  uint8_t nulls[COL_BATCH];
  v.s = out;
  strheap h = {0};
  fspan col[4] = {rows[0][1], rows[1][1], rows[2][1], rows[3][1]};
  assert_int_equal(fmt_convert(col, NULL, 4, FT_VARCHAR, '"', '"', NULL, &v, nulls, &h, NULL), 0);
  assert_int_equal(out[1].len, strlen("say \"hi\""));
  assert_memory_equal(out[1].ptr, "say \"hi\"", out[1].len);
  strheap_release(&h);
  arena_free(a);
}

static void test_nulls_and_empty(void **state)
{
  (void)state;
  arena *a = arena_new();
  csv_schema s;
  const char *t = "a,b\n,\"\"\nx,y\n";
  sniff(t, &s, a);
  fspan rows[4][16];
  err e;
  assert_int_equal(read_all(t, &s, rows, 4, &e), 2);
  vec v = {.phys = PHYS_STR};
  str_ref out[4];
  uint8_t nulls[COL_BATCH];
  v.s = out;
  strheap h = {0};
  fspan c0[2] = {rows[0][0], rows[1][0]};
  fspan c1[2] = {rows[0][1], rows[1][1]};
  fmt_convert(c0, NULL, 2, FT_VARCHAR, '"', '"', NULL, &v, nulls, &h, NULL);
  assert_non_null(v.nulls);
  assert_int_equal(v.nulls[0], 1); /* empty unquoted: NULL */
  fmt_convert(c1, NULL, 2, FT_VARCHAR, '"', '"', NULL, &v, nulls, &h, NULL);
  assert_true(v.nulls == NULL || v.nulls[0] == 0); /* "" is an empty string */
  assert_int_equal(out[0].len, 0);
  /* an empty object */
  csv_schema s2;
  sniff("", &s2, a);
  assert_int_equal(read_all("", &s2, rows, 4, &e), 0);
  strheap_release(&h);
  arena_free(a);
}

static void test_malformed(void **state)
{
  (void)state;
  arena *a = arena_new();
  csv_schema s;
  const char *t = "a,b,c\n1,2,3\n4,5\n6,7,8\n";
  sniff(t, &s, a);
  fspan rows[8][16];
  err e;
  err_clear(&e);
  assert_int_equal(read_all(t, &s, rows, 8, &e), -1);
  assert_non_null(strstr(e.msg, "line 3"));
  assert_non_null(strstr(e.msg, "expected 3 fields, found 2"));
  assert_non_null(strstr(e.msg, "s3://b/t.csv"));
  /* the skip option drops it */
  csv_cursor c;
  size_t n = strlen(t);
  csv_cursor_init(&c, &s, t, n, 0, n, "x", true, &e);
  int cols[1] = {0};
  fspan sp[8];
  fspan *spp[1] = {sp};
  const char *rec[8];
  assert_int_equal(csv_tokenize(&c, cols, 1, spp, rec, 8, &e), 2);
  assert_int_equal(c.skipped, 1);
  /* unterminated quote */
  const char *u = "a,b\n1,\"open\n";
  csv_schema s3;
  csv_options o = defaults();
  o.header = 1;
  csv_sniff(u, strlen(u), true, &o, a, &s3, &e);
  assert_int_equal(read_all(u, &s3, rows, 8, &e), -1);
  assert_non_null(strstr(e.msg, "unterminated"));
  arena_free(a);
}

/* byte ranges: every record read exactly once, whatever the split */
static void test_ranges(void **state)
{
  (void)state;
  arena *a = arena_new();
  char text[4096];
  size_t n = 0;
  n += (size_t)sprintf(text + n, "k,v\n");
  for (int i = 0; i < 100; i++)
    n += (size_t)sprintf(text + n, "%d,%s\n", i, i % 7 == 0 ? "\"q,uo\"\"ted\"" : "plain");
  csv_schema s;
  csv_options o = defaults();
  err e;
  assert_int_equal(csv_sniff(text, n, true, &o, a, &s, &e), 0);
  for (size_t split = 1; split < n; split += 37) {
    int seen[100] = {0};
    size_t bounds[3] = {0, split, n};
    size_t prev_end = 0;
    for (int r = 0; r < 2; r++) {
      csv_cursor c;
      assert_int_equal(csv_cursor_init(&c, &s, text, n, bounds[r], bounds[r + 1], "x", false, &e), 0);
      if (r == 1)
        assert_int_equal((size_t)(c.first - text), prev_end);
      int cols[1] = {0};
      fspan sp[128];
      fspan *spp[1] = {sp};
      const char *rec[128];
      int got = csv_tokenize(&c, cols, 1, spp, rec, 128, &e);
      assert_true(got >= 0);
      for (int k = 0; k < got; k++)
        seen[atoi(sp[k].p)]++;
      prev_end = (size_t)(c.pos - text);
    }
    for (int i = 0; i < 100; i++)
      assert_int_equal(seen[i], 1);
  }
  arena_free(a);
}

/* Every record of text from its first (after the header) as "fields\n",
 * a field as its flags ('q' quoted, 'e' escaped), its bytes as written and
 * '|' ("~|" when missing); "ERR" at a malformed row. piece 0: all of it at
 * once; else in pieces the way sql/scan_win.c reads a range: each piece a
 * copy of its own (so ASan sees a read past it) from a record start, cut
 * at any byte (partial); a record cut short is read again from the next
 * piece, and a piece that holds none is doubled. Batches of max rows (a
 * malformed row fails its batch). */
static char *dump_read(const char *text, size_t n, const csv_schema *s, size_t piece, bool skip,
                       int max)
{
  size_t cap = 64 * n + 256, len = 0;
  char *out = malloc(cap);
  out[0] = 0;
  csv_cursor c;
  err e;
  if (csv_cursor_init(&c, s, text, n, 0, n, "x", skip, &e) < 0) {
    strcpy(out, "ERR");
    return out;
  }
  size_t at = (size_t)(c.pos - text);
  size_t size = piece;
  int cols[16];
  fspan *sp[16];
  for (size_t i = 0; i < s->ncols; i++) {
    cols[i] = (int)i;
    sp[i] = malloc(sizeof(fspan) * 4);
  }
  const char *rec[4];
  for (;;) {
    size_t len_p = piece == 0 || size > n - at ? n - at : size;
    char *copy = malloc(len_p + 1);
    memcpy(copy, text + at, len_p);
    csv_cursor_resume(&c, s, copy, len_p, n - at, "x", skip);
    c.partial = at + len_p < n;
    int r = csv_tokenize(&c, cols, (int)s->ncols, sp, rec, max, &e);
    while (r > 0) {
      for (int k = 0; k < r; k++) {
        for (size_t i = 0; i < s->ncols; i++) {
          const fspan *f = &sp[i][k];
          if (f->p == NULL) {
            len += (size_t)snprintf(out + len, cap - len, "~|");
            continue;
          }
          len += (size_t)snprintf(out + len, cap - len, "%s%s%.*s|",
                                  f->flags & SPAN_QUOTED ? "q" : "",
                                  f->flags & SPAN_ESCAPED ? "e" : "", (int)f->n, f->p);
        }
        len += (size_t)snprintf(out + len, cap - len, "\n");
      }
      r = csv_tokenize(&c, cols, (int)s->ncols, sp, rec, max, &e);
    }
    size_t next = at + (size_t)(c.pos - copy);
    bool partial = c.partial;
    free(copy);
    if (r < 0) {
      len += (size_t)snprintf(out + len, cap - len, "ERR");
      break;
    }
    if (!partial || next >= n)
      break;
    size = next == at ? size * 2 : piece;
    at = next;
  }
  for (size_t i = 0; i < s->ncols; i++)
    free(sp[i]);
  return out;
}

/* pieces cut at every byte: quotes, escaped quotes, line breaks inside
   quotes and CRLF at a piece's end read as from the whole object */
static void test_pieces(void **state)
{
  (void)state;
  arena *a = arena_new();
  csv_options o = defaults();
  o.header = 1;
  csv_schema s;
  err e;
  const char *t = "id,a,b\r\n1,\"a, b\",x\r\n2,\"say \"\"hi\"\"\",\r\n3,\"two\nlines\",\"\"\r\n"
                  "\r\n4,\"\"\"\",000042\n5,last,\"end\"";
  size_t n = strlen(t);
  assert_int_equal(csv_sniff(t, n, true, &o, a, &s, &e), 0);
  char *whole = dump_read(t, n, &s, 0, false, 4);
  assert_string_equal(whole, "1|qa, b|x|\n"
                             "2|qesay \"\"hi\"\"||\n"
                             "3|qtwo\nlines|q|\n"
                             "4|qe\"\"|000042|\n"
                             "5|last|qend|\n");
  for (size_t piece = 1; piece <= n + 1; piece++) {
    char *got = dump_read(t, n, &s, piece, false, 4);
    assert_string_equal(got, whole);
    free(got);
  }
  free(whole);
  /* a quoted field (with an escaped quote and a line break) at every offset
     of a line, so its quotes fall on every byte of a 64-byte block and of
     a piece */
  char *big = malloc(64 * 1024);
  size_t m = (size_t)sprintf(big, "pad,q,t\n");
  char *want = malloc(64 * 1024);
  size_t wl = 0;
  for (int i = 0; i < 140; i++) {
    char pad[160];
    memset(pad, 'x', (size_t)i);
    pad[i] = 0;
    m += (size_t)sprintf(big + m, "%s,\"q\"\"z\n\",%s\n", pad, i % 3 == 0 ? "\"\"" : "t");
    wl += (size_t)sprintf(want + wl, "%s|qeq\"\"z\n|%s|\n", pad, i % 3 == 0 ? "q" : "t");
  }
  assert_int_equal(csv_sniff(big, m, true, &o, a, &s, &e), 0);
  whole = dump_read(big, m, &s, 0, false, 4);
  assert_string_equal(whole, want);
  static const size_t pieces[] = {1, 2, 3, 5, 7, 13, 31, 63, 64, 65, 127, 128, 129, 200, 1000};
  for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
    char *got = dump_read(big, m, &s, pieces[k], false, 4);
    assert_string_equal(got, want);
    free(got);
  }
  free(whole);
  /* a malformed row is found (or skipped) the same way in pieces */
  const char *bad = "a,b\n1,2\n3,\"x\"y\n4,5\n6\n7,8";
  n = strlen(bad);
  assert_int_equal(csv_sniff(bad, n, true, &o, a, &s, &e), 0);
  for (int skip = 0; skip < 2; skip++) {
    whole = dump_read(bad, n, &s, 0, skip, 1);
    assert_string_equal(whole, skip ? "1|2|\n4|5|\n7|8|\n" : "1|2|\nERR");
    for (size_t piece = 1; piece <= n + 1; piece++) {
      char *got = dump_read(bad, n, &s, piece, skip, 1);
      assert_string_equal(got, whole);
      free(got);
    }
    free(whole);
  }
  free(big);
  free(want);
  arena_free(a);
}

static void test_jsonl(void **state)
{
  (void)state;
  arena *a = arena_new();
  const char *t = "{\"a\":1,\"b\":\"x\\\"y\",\"n\":{\"z\":[1,2]}}\n\n{\"a\":2.5,\"c\":true,\"b\":null}\n";
  jsonl_schema s;
  err e;
  assert_int_equal(jsonl_sniff(t, strlen(t), true, a, &s, &e), 0);
  assert_int_equal(s.ncols, 4);
  assert_string_equal(s.names[0], "a");
  assert_int_equal(s.types[0], FT_DOUBLE);
  assert_int_equal(s.types[1], FT_VARCHAR);
  assert_int_equal(s.types[2], FT_VARCHAR);
  assert_int_equal(s.types[3], FT_BOOLEAN);
  jsonl_cursor c;
  jsonl_cursor_init(&c, &s, t, strlen(t), 0, strlen(t), "j", false);
  int cols[3] = {1, 2, 3};
  fspan b[4], n[4], cc[4];
  fspan *spp[3] = {b, n, cc};
  const char *rec[4];
  assert_int_equal(jsonl_tokenize(&c, cols, 3, spp, rec, 4, &e), 2);
  jsonl_cursor_release(&c);
  assert_true(b[0].flags & SPAN_ESCAPED);
  span_is(&n[0], "{\"z\":[1,2]}");
  assert_null(b[1].p);
  assert_null(cc[0].p);
  span_is(&cc[1], "true");
  /* malformed */
  const char *bad = "{\"a\":1}\n{\"a\":}\n";
  jsonl_cursor_init(&c, &s, bad, strlen(bad), 0, strlen(bad), "s3://b/j.jsonl", false);
  int c0[1] = {0};
  fspan x[4];
  fspan *xp[1] = {x};
  assert_true(jsonl_tokenize(&c, c0, 1, xp, rec, 4, &e) < 0);
  assert_non_null(strstr(e.msg, "line 2"));
  jsonl_cursor_release(&c);
  /* an empty key is no column's (it once matched an empty key cache slot) */
  const char *ek = "{\"\":5}\n{\"\":6,\"a\":7}\n";
  for (int careful = 0; careful < 2; careful++) {
    jsonl_cursor_init(&c, &s, ek, strlen(ek), 0, strlen(ek), "j", false);
    c.careful = careful;
    assert_int_equal(jsonl_tokenize(&c, c0, 1, xp, rec, 4, &e), 2);
    assert_null(x[0].p);
    span_is(&x[1], "7");
    jsonl_cursor_release(&c);
  }
  arena_free(a);
}

/* reads text with the fast path and with the validating parser alone
 * (careful) and checks both give the same rows, spans and errors */
static void jsonl_same(const jsonl_schema *s, const char *text, size_t n, bool skip)
{
  int cols[5] = {0, 1, 2, 3, 4};
  enum { MAXR = 8 };
  fspan sp[2][5][MAXR];
  fspan *spp[2][5];
  const char *rec[2][MAXR];
  jsonl_cursor c[2];
  for (int w = 0; w < 2; w++) {
    for (int k = 0; k < 5; k++)
      spp[w][k] = sp[w][k];
    jsonl_cursor_init(&c[w], s, text, n, 0, n, "t", skip);
    c[w].careful = w == 1;
  }
  for (int round = 0; round < 64; round++) {
    err e[2];
    int got[2];
    memset(sp, 0x5a, sizeof sp);
    for (int w = 0; w < 2; w++) {
      err_clear(&e[w]);
      got[w] = jsonl_tokenize(&c[w], cols, 5, spp[w], rec[w], MAXR, &e[w]);
    }
    assert_int_equal(got[0], got[1]);
    assert_true(c[0].pos == c[1].pos);
    assert_int_equal(c[0].skipped, c[1].skipped);
    if (got[0] < 0) {
      assert_string_equal(e[0].msg, e[1].msg);
      break;
    }
    for (int r = 0; r < got[0]; r++) {
      assert_true(rec[0][r] == rec[1][r]);
      for (int k = 0; k < 5; k++) {
        const fspan *a = &sp[0][k][r], *b = &sp[1][k][r];
        assert_true(a->p == b->p);
        if (a->p != NULL) {
          assert_int_equal(a->n, b->n);
          assert_int_equal(a->flags, b->flags);
        }
      }
    }
    if (got[0] == 0)
      break;
  }
  jsonl_cursor_release(&c[0]);
  jsonl_cursor_release(&c[1]);
}

static int rnd(uint64_t *x, int m)
{
  *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
  return (int)((*x >> 33) % (uint64_t)m);
}

/* the fast JSON lines path against the validating parser over generated
 * and mutated lines: spacing, escapes, nesting, null, duplicate and
 * reordered keys, long keys, control bytes, truncation at the object's
 * end, and random damage */
static void test_jsonl_fast_path(void **state)
{
  (void)state;
  char *names[5] = {"a", "bb", "a_key_longer_than_16", "c d", "a_key_of_30_bytes_of_text_xyz"};
  fmt_type types[5] = {FT_VARCHAR, FT_VARCHAR, FT_VARCHAR, FT_VARCHAR, FT_VARCHAR};
  jsonl_schema s = {.ncols = 5, .names = names, .types = types};
  static const char *keys[] = {"\"a\"", "\"bb\"", "\"a_key_longer_than_16\"", "\"c d\"",
                               "\"a_key_of_30_bytes_of_text_xyz\"", "\"e\"", "\"zz\"",
                               "\"a\\u0062\"", "\"b\\\"\"", "\"\"", "\"a_key_longer_than_1\"",
                               "\"a_key_of_more_than_32_bytes_of_text\"",
                               "\"a_key_of_30_bytes_of_text_xyy\"", "\"a_key_of_29_bytes_of_text_xy\""};
  const int nkeys = (int)(sizeof keys / sizeof keys[0]);
  static const char *vals[] = {"1", "-2.5e3", "true", "null", "nul", "\"x\"", "\"\"", "\"q\\\"r\"",
                               "\"a\\\\\"", "{\"k\":[1,{\"x\":\"}\"}]}", "[]", "[1,2", "\"tab\there\"",
                               "12\x01" "3", "\"\x01\"", "abc", "\"long string value over sixteen\"",
                               "{}", "1e", "\"\\u00e9\"", "\"bs\\\nx\"", "\"nl\nx\"",
                               "[\"\\\n\"]", "7\n"};
  const int nvals = (int)(sizeof vals / sizeof vals[0]);
  static const char *gaps[] = {"", "", "", " ", "\t", "\r", "  "};
  static const char mut[] = "\"{}[],: \t\r\n\\a1n\x01";
  uint64_t x = 0x9E3779B97F4A7C15ULL;
#define RND(m) rnd(&x, (m))
  char buf[4096];
  for (int iter = 0; iter < 4000; iter++) {
    size_t n = 0;
    int lines = 1 + RND(6);
    for (int l = 0; l < lines && n < 3000; l++) {
      if (RND(10) == 0) {
        buf[n++] = '\n';   /* blank line */
        continue;
      }
      n += (size_t)snprintf(buf + n, sizeof buf - n, "%s{%s", gaps[RND(7)], gaps[RND(7)]);
      int members = RND(7);
      int order = RND(4);
      for (int m = 0; m < members; m++) {
        /* in order, shuffled, any key, or keys alike in their first bytes */
        static const int alike[] = {2, 4, 10, 12, 13};
        int ki = order == 0 ? m % 5 : order == 3 ? alike[RND(5)] : RND(order == 1 ? 5 : nkeys);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s%s:%s%s%s", m ? "," : "", gaps[RND(7)],
                              keys[ki], gaps[RND(7)], vals[RND(nvals)], gaps[RND(7)]);
      }
      n += (size_t)snprintf(buf + n, sizeof buf - n, "}%s", gaps[RND(7)]);
      if (l + 1 < lines || RND(2))
        buf[n++] = '\n';
    }
    int damage = RND(4) == 0 ? RND(3) + 1 : 0;
    for (int d = 0; d < damage && n > 0; d++) {
      size_t at = (size_t)RND((int)n);
      int how = RND(3);
      if (how == 0)
        buf[at] = mut[RND((int)sizeof mut - 1)];
      else if (how == 1) {
        memmove(buf + at, buf + at + 1, n - at - 1);
        n--;
      } else if (n + 1 < sizeof buf) {
        memmove(buf + at + 1, buf + at, n - at);
        buf[at] = mut[RND((int)sizeof mut - 1)];
        n++;
      }
    }
    /* the text alone in an exact allocation, so reading past it is caught */
    char *t = malloc(n + 1);
    memcpy(t, buf, n);
    jsonl_same(&s, t, n, false);
    jsonl_same(&s, t, n, true);
    free(t);
  }
#undef RND
}

static void test_values(void **state)
{
  (void)state;
  int64_t i;
  double d;
  assert_true(fmt_parse_i64("-9223372036854775808", 20, &i));
  assert_true(i == INT64_MIN);
  assert_false(fmt_parse_i64("9223372036854775808", 19, &i));
  assert_false(fmt_parse_i64("12a", 3, &i));
  assert_true(fmt_parse_f64("3.25", 4, &d));
  assert_true(d == 3.25);
  assert_true(fmt_parse_f64("1e-3", 4, &d));
  assert_true(d == 0.001);
  assert_true(fmt_parse_f64("0.1", 3, &d));
  assert_true(d == 0.1);
  assert_true(fmt_parse_date("2020-02-29", 10, &i));
  assert_false(fmt_parse_date("2019-02-29", 10, &i));
  assert_true(fmt_parse_timestamp("2020-01-01T00:00:01.5Z", 22, &i));
  assert_true(i == fmt_days_from_civil(2020, 1, 1) * 86400000000LL + 1500000);
  char out[48];
  fmt_timestamp(i, out);
  assert_string_equal(out, "2020-01-01 00:00:01.500000");
  fmt_double(1.5, out);
  assert_string_equal(out, "1.5");
  fmt_double(2.0, out);
  assert_string_equal(out, "2.0");
  fmt_double(1e20, out);
  assert_string_equal(out, "1.0E20");
  fmt_double(12345678.5, out); /* Java's Double.toString, as Presto prints */
  assert_string_equal(out, "1.23456785E7");
  fmt_double(0.00025, out);
  assert_string_equal(out, "2.5E-4");
  fmt_double(70.91, out);
  assert_string_equal(out, "70.91");
  /* a type never changes what a value says: these stay text */
  const char *text_kept[] = {"007", "000042", "-007", "00.5", "+5", "1e3", "0x1F", "  7",
                             "7 ", "1,000", "99999999999999999999", "-99999999999999999999",
                             "2024-1-5", "2024-01-5", "2024-1-05", "1.5e3", "inf", "NaN",
                             "1.0E07", "2024-1-5 10:00:00", "-", ".", "-.", "1.2.3"};
  for (size_t k = 0; k < sizeof text_kept / sizeof *text_kept; k++)
    assert_int_equal(fmt_guess_type(text_kept[k], strlen(text_kept[k])), FT_VARCHAR);
  assert_int_equal(fmt_guess_type("0", 1), FT_BIGINT);
  assert_int_equal(fmt_guess_type("-0", 2), FT_BIGINT);
  assert_int_equal(fmt_guess_type("42", 2), FT_BIGINT);
  assert_int_equal(fmt_guess_type("-42", 3), FT_BIGINT);
  assert_int_equal(fmt_guess_type("9223372036854775807", 19), FT_BIGINT);
  assert_int_equal(fmt_guess_type("9223372036854775808", 19), FT_VARCHAR);
  assert_int_equal(fmt_guess_type("1.50", 4), FT_DOUBLE);   /* as DuckDB: 1.5 */
  assert_int_equal(fmt_guess_type("0.5", 3), FT_DOUBLE);
  assert_int_equal(fmt_guess_type(".5", 2), FT_DOUBLE);
  assert_int_equal(fmt_guess_type("-0.25", 5), FT_DOUBLE);
  assert_int_equal(fmt_guess_type("1.0E7", 5), FT_DOUBLE);   /* prints back as written */
  assert_int_equal(fmt_guess_type("2.5E-4", 6), FT_DOUBLE);
  assert_int_equal(fmt_guess_type("2024-01-05", 10), FT_DATE);
  assert_int_equal(fmt_guess_type("2024-02-30", 10), FT_VARCHAR);
  assert_int_equal(fmt_guess_type("2024-01-05 10:00:00", 19), FT_TIMESTAMP);
  assert_int_equal(fmt_guess_type("2024-01-05T10:00:00Z", 20), FT_TIMESTAMP);
  assert_int_equal(fmt_guess_type("1.", 2), FT_DOUBLE);
  assert_int_equal(fmt_guess_type("abc", 3), FT_VARCHAR);
  assert_int_equal(fmt_guess_type("TRUE", 4), FT_BOOLEAN);
}

static void test_codecs(void **state)
{
  (void)state;
  const char *text = "a,b\n1,2\n3,4\n";
  size_t n = strlen(text);
  /* gzip */
  unsigned char gz[256];
  z_stream z;
  memset(&z, 0, sizeof z);
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  z.next_in = (unsigned char *)(uintptr_t)text;
  z.avail_in = (unsigned)n;
  z.next_out = gz;
  z.avail_out = sizeof gz;
  deflate(&z, Z_FINISH);
  size_t gzn = sizeof gz - z.avail_out;
  deflateEnd(&z);
  assert_int_equal(codec_sniff(gz, gzn), CODEC_GZIP);
  char *out;
  size_t outn;
  err e;
  assert_int_equal(codec_decompress(CODEC_GZIP, gz, gzn, 1 << 20, &out, &outn, &e), 0);
  assert_int_equal(outn, n);
  assert_memory_equal(out, text, n);
  free(out);
  /* truncated */
  assert_true(codec_decompress(CODEC_GZIP, gz, gzn / 2, 1 << 20, &out, &outn, &e) < 0);
  /* the limit */
  assert_int_equal(codec_decompress(CODEC_GZIP, gz, gzn, 4, &out, &outn, &e), ERR_ENTITY_TOO_LARGE);
  /* zstd */
  char zs[256];
  size_t zn = ZSTD_compress(zs, sizeof zs, text, n, 3);
  assert_int_equal(codec_sniff(zs, zn), CODEC_ZSTD);
  assert_int_equal(codec_decompress(CODEC_ZSTD, zs, zn, 1 << 20, &out, &outn, &e), 0);
  assert_int_equal(outn, n);
  assert_memory_equal(out, text, n);
  free(out);
  assert_int_equal(codec_from_name("x/y.csv.zst"), CODEC_ZSTD);
  assert_int_equal(codec_from_name("x/y.csv.gz"), CODEC_GZIP);
  /* bzip2: one stream, two streams back to back, truncated, corrupt */
  char bz[512];
  unsigned bzn = sizeof bz / 2;
  assert_int_equal(BZ2_bzBuffToBuffCompress(bz, &bzn, (char *)(uintptr_t)text, (unsigned)n, 9,
                                            0, 0), BZ_OK);
  assert_int_equal(codec_sniff(bz, bzn), CODEC_BZIP2);
  assert_int_equal(codec_sniff("BZh9 is text", 12), CODEC_NONE);
  assert_int_equal(codec_from_name("x/y.csv.bz2"), CODEC_BZIP2);
  assert_int_equal(codec_decompress(CODEC_BZIP2, bz, bzn, 1 << 20, &out, &outn, &e), 0);
  assert_int_equal(outn, n);
  assert_memory_equal(out, text, n);
  free(out);
  memcpy(bz + bzn, bz, bzn);
  assert_int_equal(codec_decompress(CODEC_BZIP2, bz, 2 * bzn, 1 << 20, &out, &outn, &e), 0);
  assert_int_equal(outn, 2 * n);
  assert_memory_equal(out + n, text, n);
  free(out);
  assert_int_equal(codec_decompress(CODEC_BZIP2, bz, bzn - 5, 1 << 20, &out, &outn, &e),
                   ERR_INVALID);
  assert_int_equal(codec_decompress(CODEC_BZIP2, gz, gzn, 1 << 20, &out, &outn, &e), ERR_INVALID);
  assert_int_equal(codec_decompress(CODEC_BZIP2, bz, bzn, 4, &out, &outn, &e),
                   ERR_ENTITY_TOO_LARGE);
  /* gzip members back to back */
  unsigned char gz2[512];
  memcpy(gz2, gz, gzn);
  memcpy(gz2 + gzn, gz, gzn);
  assert_int_equal(codec_decompress(CODEC_GZIP, gz2, 2 * gzn, 1 << 20, &out, &outn, &e), 0);
  assert_int_equal(outn, 2 * n);
  free(out);
}

/* snappy blocks (Parquet pages): our decoder against libsnappy's output of
   literals of every length class, overlapping copies of every short
   period, URL-like text, and against libsnappy's own decoder on mutated
   blocks (both accept the same blocks, with the same bytes) */
static void snappy_round(const char *src, size_t n)
{
  char *z = NULL;
  size_t zl = 0;
  err e;
  assert_int_equal(codec_snappy_compress(src, n, &z, &zl, &e), 0);
  char *out = malloc(n + 1);
  assert_int_equal(codec_block_snappy(z, zl, out, n, &e), 0);
  assert_memory_equal(out, src, n);
  if (n > 0)
    assert_int_equal(codec_block_snappy(z, zl, out, n - 1, &e), ERR_INVALID);
  assert_true(codec_block_snappy(z, zl - 1, out, n, &e) < 0 || zl == 1);
  /* prefixes: at least need bytes (or all), the same as the whole */
  size_t needs[] = {0, 1, 17, n / 3, n / 2, n - (n > 0), n, n + 5};
  for (size_t k = 0; k < sizeof needs / sizeof needs[0]; k++) {
    size_t got = SIZE_MAX;
    memset(out, 0, n + 1);
    assert_int_equal(codec_block_snappy_prefix(z, zl, out, n, needs[k], &got, &e), 0);
    assert_true(got >= (needs[k] < n ? needs[k] : n) && got <= n);
    assert_memory_equal(out, src, got);
  }
  free(out);
  free(z);
}

static void test_snappy_blocks(void **state)
{
  (void)state;
  size_t cap = 300000;
  char *b = malloc(cap);
  uint32_t x = 12345;
  for (size_t i = 0; i < cap; i++) {
    x = x * 1103515245u + 12345u;
    b[i] = (char)(x >> 16);
  }
  size_t sizes[] = {0, 1, 15, 16, 17, 60, 61, 64, 255, 256, 70000, 300000};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
    snappy_round(b, sizes[k]);
  /* periods 1..40: copies that overlap their own output */
  for (size_t per = 1; per <= 40; per++) {
    char *r = malloc(5000);
    for (size_t i = 0; i < 5000; i++)
      r[i] = b[i % per];
    for (size_t len = 1; len < 5000; len = len * 3 + 1)
      snappy_round(r, len);
    snappy_round(r, 5000);
    free(r);
  }
  /* URL-like strings with their lengths, as a Parquet page of them */
  size_t un = 0;
  char *u = malloc(200000);
  for (int i = 0; un < 199000; i++) {
    char s[80];
    int l = snprintf(s, sizeof s, "https://example%d.com/%s%d", i % 50,
                     i % 3 ? "checkout" : "product/", (int)((unsigned)i * 2654435761u % 60000));
    memcpy(u + un, &l, 4);
    memcpy(u + un + 4, s, (size_t)l);
    un += 4 + (size_t)l;
  }
  snappy_round(u, un);
  /* mutated blocks: accepted by both decoders or by neither */
  char *z = NULL;
  size_t zl = 0;
  err e;
  assert_int_equal(codec_snappy_compress(u, 3000, &z, &zl, &e), 0);
  char *m = malloc(zl), *o1 = malloc(3000), *o2 = malloc(3000);
  for (int t = 0; t < 3000; t++) {
    memcpy(m, z, zl);
    for (int f = 0; f < 1 + t % 3; f++) {
      x = x * 1103515245u + 12345u;
      m[(x >> 8) % zl] ^= (char)(1u << ((x >> 4) & 7));
    }
    size_t got = 3000;
    bool theirs = snappy_uncompress(m, zl, o2, &got) == SNAPPY_OK && got == 3000;
    bool ours = codec_block_snappy(m, zl, o1, 3000, &e) == 0;
    assert_int_equal(ours, theirs);
    if (ours)
      assert_memory_equal(o1, o2, 3000);
  }
  /* hand-made: a copy before any output, offset 0, a literal past the end */
  uint8_t bad1[] = {4, 0x01 | (0 << 2), 1};             /* copy off 1 at start */
  uint8_t bad2[] = {5, 0x00, 'a', 0x01 | (0 << 2), 0};  /* 'a', copy off 0 */
  uint8_t bad3[] = {3, 0x08, 'a', 'b'};                 /* literal of 3, 2 there */
  uint8_t good[] = {6, 0x00, 'a', 0x05, 1};             /* 'a' + copy(5, off 1) */
  char o[8];
  assert_int_equal(codec_block_snappy(bad1, sizeof bad1, o, 4, &e), ERR_INVALID);
  assert_int_equal(codec_block_snappy(bad2, sizeof bad2, o, 5, &e), ERR_INVALID);
  assert_int_equal(codec_block_snappy(bad3, sizeof bad3, o, 3, &e), ERR_INVALID);
  assert_int_equal(codec_block_snappy(good, sizeof good, o, 6, &e), 0);
  assert_memory_equal(o, "aaaaaa", 6);
  free(m);
  free(o1);
  free(o2);
  free(z);
  free(u);
  free(b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sniff_dialects),
    cmocka_unit_test(test_quotes_newlines_crlf),
    cmocka_unit_test(test_nulls_and_empty),
    cmocka_unit_test(test_malformed),
    cmocka_unit_test(test_ranges),
    cmocka_unit_test(test_pieces),
    cmocka_unit_test(test_jsonl),
    cmocka_unit_test(test_jsonl_fast_path),
    cmocka_unit_test(test_values),
    cmocka_unit_test(test_codecs),
    cmocka_unit_test(test_snappy_blocks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
