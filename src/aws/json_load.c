/* aws/json_load.c -- the JSON protocols' request bodies parsed into jansson
 * values, several times faster than jansson's own loader.
 *
 * Why: jansson reads its input one character at a time through a stream
 * with a UTF-8 check per character. A PutRecordBatch of 500 records of
 * 1 KiB is 700 KB of base64 strings, and that loop was over half of the
 * server's time in the streams bench. Here a string is scanned for its end
 * a word at a time and copied once.
 *
 * Invariants:
 *   (1) It accepts exactly what json_loadb(p, n, JSON_DECODE_ANY, ...)
 *       accepts and builds an equal value (json_equal): RFC 8259 values,
 *       strings of valid UTF-8 with no control characters, escapes
 *       including surrogate pairs (a lone surrogate or \u0000 is an error,
 *       as jansson rejects them without JSON_ALLOW_NUL), integers that fit
 *       a json_int_t (json_integer) and other numbers as doubles
 *       (json_real; one past the double range is an error), a repeated
 *       object key keeps its last value, nothing but whitespace after the
 *       value. The one difference: a NUL byte anywhere is an error here
 *       (jansson skips one after a token that needed a look-ahead and
 *       refuses the rest; no client sends one). tests/fuzz/fuzz_json_load.c checks this against jansson.
 *   (2) Nesting deeper than AWS_JSON_MAX_DEPTH is an error, never a deep
 *       recursion.
 */
#include "json_load.h"

#include "base/mem.h"
#include "base/text.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jl {
  const char *p;
  const char *e;
  const char *start;
  char *scratch;               /* unescaped strings and object keys */
  size_t scap;
  err *err;
} jl;

static json_t *fail(jl *j, const char *what)
{
  if (j->err != NULL && j->err->code == 0)
    err_set(j->err, ERR_INVALID, "%s at byte %zu", what, (size_t)(j->p - j->start));
  return NULL;
}

static void ws(jl *j)
{
  while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static void scratch_need(jl *j, size_t n)
{
  if (n > j->scap) {
    j->scap = n > 2 * j->scap ? n : 2 * j->scap;
    j->scratch = xrealloc(j->scratch, j->scap);
  }
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static long hex4(const char *p)
{
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(p[i]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

/* Whether [p, p + n) has a byte that ends a plain run: '"', '\\' or a
   control character (below 0x20). Word at a time. */
static size_t plain_run(const char *p, size_t n)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t high = 0x8080808080808080ull;
    uint64_t quote = w ^ (ones * '"');
    uint64_t slash = w ^ (ones * '\\');
    /* a zero byte in quote or slash, or a byte below 0x20 in w */
    uint64_t hit = ((quote - ones) & ~quote) | ((slash - ones) & ~slash) | ((w - ones * 0x20) & ~w);
    if (hit & high)
      break;
  }
  for (; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '"' || c == '\\' || c < 0x20)
      break;
  }
  return i;
}

/* A string at j->p (the opening quote): its bytes (in place when it has no
   escape, else in j->scratch) and length. */
static bool string_at(jl *j, const char **out, size_t *len)
{
  const char *s = ++j->p;
  size_t run = plain_run(s, (size_t)(j->e - s));
  j->p = s + run;
  if (j->p < j->e && *j->p == '"') {
    if (!utf8_valid(s, run))
      return fail(j, "invalid UTF-8 in a string"), false;
    j->p++;
    *out = s;
    *len = run;
    return true;
  }
  /* escapes: build the string in scratch */
  size_t n = run;
  scratch_need(j, run + 64);
  memcpy(j->scratch, s, run);
  while (j->p < j->e) {
    unsigned char c = (unsigned char)*j->p;
    if (c == '"') {
      j->p++;
      if (!utf8_valid(j->scratch, n))
        return fail(j, "invalid UTF-8 in a string"), false;
      *out = j->scratch;
      *len = n;
      return true;
    }
    if (c < 0x20)
      return fail(j, "a control character in a string"), false;
    scratch_need(j, n + 8);
    if (c != '\\') {
      size_t k = plain_run(j->p, (size_t)(j->e - j->p));
      if (k == 0)
        k = 1;
      scratch_need(j, n + k + 8);
      memcpy(j->scratch + n, j->p, k);
      n += k;
      j->p += k;
      continue;
    }
    if (j->p + 1 >= j->e)
      break;
    char x = j->p[1];
    j->p += 2;
    switch (x) {
    case '"': j->scratch[n++] = '"'; continue;
    case '\\': j->scratch[n++] = '\\'; continue;
    case '/': j->scratch[n++] = '/'; continue;
    case 'b': j->scratch[n++] = '\b'; continue;
    case 'f': j->scratch[n++] = '\f'; continue;
    case 'n': j->scratch[n++] = '\n'; continue;
    case 'r': j->scratch[n++] = '\r'; continue;
    case 't': j->scratch[n++] = '\t'; continue;
    case 'u': break;
    default:
      return fail(j, "an invalid escape in a string"), false;
    }
    if (j->e - j->p < 4)
      break;
    long cp = hex4(j->p);
    if (cp < 0)
      return fail(j, "an invalid \\u escape"), false;
    j->p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      long lo = j->e - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u' ? hex4(j->p + 2) : -1;
      if (lo < 0xDC00 || lo > 0xDFFF)
        return fail(j, "an invalid Unicode escape (a lone surrogate)"), false;
      j->p += 6;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return fail(j, "an invalid Unicode escape (a lone surrogate)"), false;
    } else if (cp == 0) {
      return fail(j, "\\u0000 is not allowed in a string"), false;
    }
    n += utf8_encode(j->scratch + n, (uint32_t)cp);
  }
  return fail(j, "an unterminated string"), false;
}

static json_t *number(jl *j)
{
  const char *s = j->p;
  const char *p = s;
  bool real = false;
  if (p < j->e && *p == '-')
    p++;
  if (p >= j->e || *p < '0' || *p > '9')
    return fail(j, "an invalid token");
  if (*p == '0') {
    p++;
    if (p < j->e && *p >= '0' && *p <= '9')
      return fail(j, "a number with a leading zero");
  } else {
    while (p < j->e && *p >= '0' && *p <= '9')
      p++;
  }
  if (p < j->e && *p == '.') {
    real = true;
    p++;
    if (p >= j->e || *p < '0' || *p > '9')
      return fail(j, "an invalid number");
    while (p < j->e && *p >= '0' && *p <= '9')
      p++;
  }
  if (p < j->e && (*p == 'e' || *p == 'E')) {
    real = true;
    p++;
    if (p < j->e && (*p == '+' || *p == '-'))
      p++;
    if (p >= j->e || *p < '0' || *p > '9')
      return fail(j, "an invalid number");
    while (p < j->e && *p >= '0' && *p <= '9')
      p++;
  }
  char buf[512];
  size_t n = (size_t)(p - s);
  char *text = n < sizeof buf ? buf : xmalloc(n + 1);
  memcpy(text, s, n);
  text[n] = '\0';
  json_t *v = NULL;
  errno = 0;
  char *end;
  if (!real) {
    json_int_t i = strtoll(text, &end, 10);
    if (errno == ERANGE)
      v = fail(j, "too big an integer");
    else
      v = json_integer(i);
  } else {
    double d = strtod(text, &end);
    if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
      v = fail(j, "a real number overflow");
    else
      v = json_real(d);
  }
  if (text != buf)
    free(text);
  if (v != NULL)
    j->p = p;
  return v;
}

static bool word(jl *j, const char *w, size_t n)
{
  if ((size_t)(j->e - j->p) < n || memcmp(j->p, w, n) != 0)
    return false;
  j->p += n;
  return true;
}

static json_t *value(jl *j, int depth);

static json_t *object(jl *j, int depth)
{
  json_t *o = json_object();
  j->p++;
  ws(j);
  if (j->p < j->e && *j->p == '}') {
    j->p++;
    return o;
  }
  for (;;) {
    if (j->p >= j->e || *j->p != '"') {
      json_decref(o);
      return fail(j, "a string or '}' expected");
    }
    const char *k;
    size_t kn;
    if (!string_at(j, &k, &kn)) {
      json_decref(o);
      return NULL;
    }
    char kbuf[256];
    char *key = kn < sizeof kbuf ? kbuf : xmalloc(kn + 1);
    memcpy(key, k, kn);
    key[kn] = '\0';
    ws(j);
    json_t *v = NULL;
    if (j->p >= j->e || *j->p != ':') {
      fail(j, "':' expected");
    } else {
      j->p++;
      ws(j);
      v = value(j, depth + 1);
    }
    if (v != NULL)
      json_object_set_new_nocheck(o, key, v);
    if (key != kbuf)
      free(key);
    if (v == NULL) {
      json_decref(o);
      return NULL;
    }
    ws(j);
    if (j->p < j->e && *j->p == ',') {
      j->p++;
      ws(j);
      continue;
    }
    if (j->p < j->e && *j->p == '}') {
      j->p++;
      return o;
    }
    json_decref(o);
    return fail(j, "',' or '}' expected");
  }
}

static json_t *array(jl *j, int depth)
{
  json_t *a = json_array();
  j->p++;
  ws(j);
  if (j->p < j->e && *j->p == ']') {
    j->p++;
    return a;
  }
  for (;;) {
    json_t *v = value(j, depth + 1);
    if (v == NULL) {
      json_decref(a);
      return NULL;
    }
    json_array_append_new(a, v);
    ws(j);
    if (j->p < j->e && *j->p == ',') {
      j->p++;
      ws(j);
      continue;
    }
    if (j->p < j->e && *j->p == ']') {
      j->p++;
      return a;
    }
    json_decref(a);
    return fail(j, "',' or ']' expected");
  }
}

static json_t *value(jl *j, int depth)
{
  if (depth > AWS_JSON_MAX_DEPTH)
    return fail(j, "nesting too deep");
  if (j->p >= j->e)
    return fail(j, "unexpected end of input");
  switch (*j->p) {
  case '{':
    return object(j, depth);
  case '[':
    return array(j, depth);
  case '"': {
    const char *s;
    size_t n;
    return string_at(j, &s, &n) ? json_stringn_nocheck(s, n) : NULL;
  }
  case 't':
    return word(j, "true", 4) ? json_true() : fail(j, "an invalid token");
  case 'f':
    return word(j, "false", 5) ? json_false() : fail(j, "an invalid token");
  case 'n':
    return word(j, "null", 4) ? json_null() : fail(j, "an invalid token");
  default:
    return number(j);
  }
}

json_t *aws_json_load(const char *p, size_t n, err *e)
{
  jl j = {p, p + n, p, NULL, 0, e};
  const char *nul = memchr(p, '\0', n);
  if (nul != NULL) {
    j.p = nul;
    return fail(&j, "a NUL byte");
  }
  ws(&j);
  json_t *v = value(&j, 0);
  if (v != NULL) {
    ws(&j);
    if (j.p != j.e) {
      json_decref(v);
      v = fail(&j, "end of input expected");
    }
  }
  free(j.scratch);
  return v;
}
