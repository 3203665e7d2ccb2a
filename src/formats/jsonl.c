/* formats/jsonl.c -- the JSON lines scanner (see jsonl.h).
 *
 * Why hand-written: a DOM parser (jansson) allocates every value of every
 * line; a scan needs a few keys of each line as spans into the mapped
 * bytes. The scanner validates the structure of the top-level object and
 * skips nested values by depth counting.
 *
 * Two paths over each line. The fast one (fast_line) parses the line in
 * one pass without finding its end first: strings, literals and the key
 * checks go 16 bytes at a time (SSE2: the next quote, backslash or
 * newline; the next , } ] or byte <= 0x20), a key of up to 30 bytes is
 * recognized by one or two 16-byte compares against the raw key seen at
 * the same position of the previous line (the per-position key cache;
 * longer keys by length and memcmp), and values are stored as
 * spans only for the keys the query uses; no allocation. Whatever it does
 * not handle (escaped keys, a newline inside a value, stray control bytes,
 * the last 16 bytes of the object, any error) sends the line to the
 * validating parser (parse_line), so errors and edge cases are exactly
 * those of the one parser; tests/unit/formats checks both paths agree.
 *
 * Invariants:
 *   (1) Every '\n' ends a record; blank lines are not records.
 *   (2) The scanner never reads outside [base, end): parse_line stops at
 *       the line end, the fast path's 16-byte loads only where 16 bytes
 *       remain before end (a load may cross the line end, never the object's).
 *   (3) The fast path accepts only lines parse_line accepts, with the same
 *       spans.
 *
 * Start reading at jsonl_tokenize().
 */
#include "jsonl.h"
#include "csv.h"

#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static const char *ws(const char *p, const char *e)
{
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
    p++;
  return p;
}

/* p at the opening quote; returns one past the closing quote or NULL;
 * *escaped tells whether a backslash was seen. 16 bytes at a time. */
static const char *skip_string(const char *p, const char *e, bool *escaped)
{
  p++;
  for (;;) {
#ifdef __SSE2__
    const __m128i vq = _mm_set1_epi8('"');
    const __m128i vb = _mm_set1_epi8('\\');
    while (e - p >= 16) {
      __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
      int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, vq), _mm_cmpeq_epi8(v, vb)));
      if (m != 0) {
        p += __builtin_ctz((unsigned)m);
        break;
      }
      p += 16;
    }
#endif
    while (p < e && *p != '"' && *p != '\\')
      p++;
    if (p >= e)
      return NULL;
    if (*p == '"')
      return p + 1;
    /* a backslash escapes the next byte */
    *escaped = true;
    p += 2;
    if (p > e)
      return NULL;
  }
}

/* any value; returns one past it or NULL */
static const char *skip_value(const char *p, const char *e, uint32_t *flags, bool *escaped)
{
  if (p >= e)
    return NULL;
  char c = *p;
  if (c == '"') {
    *flags = SPAN_JSON_STR;
    return skip_string(p, e, escaped);
  }
  if (c == '{' || c == '[') {
    *flags = SPAN_JSON_RAW;
    int depth = 0;
    while (p < e) {
      c = *p;
      if (c == '"') {
        bool esc = false;
        p = skip_string(p, e, &esc);
        if (p == NULL)
          return NULL;
        continue;
      }
      if (c == '{' || c == '[')
        depth++;
      else if (c == '}' || c == ']') {
        depth--;
        if (depth == 0)
          return p + 1;
      }
      p++;
    }
    return NULL;
  }
  *flags = SPAN_JSON_LIT;
  const char *s = p;
  while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\r')
    p++;
  if (p == s)
    return NULL;
  return p;
}

typedef struct key_ref {
  const char *p;
  size_t n;
} key_ref;

typedef void (*field_fn)(void *ctx, const char *key, size_t keylen, bool key_escaped,
                         const char *v, size_t vn, uint32_t flags);

/* parses one line [p, e) as an object, calling fn for each member; returns
 * NULL on success or the position of the error */
static const char *parse_line(const char *p, const char *e, field_fn fn, void *ctx,
                              const char **why)
{
  p = ws(p, e);
  if (p >= e || *p != '{') {
    *why = "expected '{'";
    return p;
  }
  p = ws(p + 1, e);
  if (p < e && *p == '}') {
    p = ws(p + 1, e);
    if (p != e) {
      *why = "unexpected text after the object";
      return p;
    }
    return NULL;
  }
  for (;;) {
    if (p >= e || *p != '"') {
      *why = "expected a key";
      return p;
    }
    bool kesc = false;
    const char *ke = skip_string(p, e, &kesc);
    if (ke == NULL) {
      *why = "unterminated string";
      return p;
    }
    const char *key = p + 1;
    size_t keylen = (size_t)(ke - 1 - key);
    p = ws(ke, e);
    if (p >= e || *p != ':') {
      *why = "expected ':'";
      return p;
    }
    p = ws(p + 1, e);
    uint32_t flags = 0;
    bool vesc = false;
    const char *ve = skip_value(p, e, &flags, &vesc);
    if (ve == NULL) {
      *why = "bad value";
      return p;
    }
    if (flags == SPAN_JSON_STR) {
      fn(ctx, key, keylen, kesc, p + 1, (size_t)(ve - p - 2), flags | (vesc ? SPAN_ESCAPED : 0));
    } else if (flags == SPAN_JSON_LIT && ve - p == 4 && memcmp(p, "null", 4) == 0) {
      fn(ctx, key, keylen, kesc, NULL, 0, 0);
    } else {
      fn(ctx, key, keylen, kesc, p, (size_t)(ve - p), flags);
    }
    p = ws(ve, e);
    if (p < e && *p == ',') {
      p = ws(p + 1, e);
      continue;
    }
    if (p < e && *p == '}') {
      p = ws(p + 1, e);
      if (p != e) {
        *why = "unexpected text after the object";
        return p;
      }
      return NULL;
    }
    *why = "expected ',' or '}'";
    return p;
  }
}

/* ---- sniffing ---- */

typedef struct sniff_ctx {
  arena *a;
  size_t n;
  size_t cap;
  char **names;
  fmt_type *types;
  bool overflow;
  bool frozen;   /* sampling more types only: unknown keys are ignored */
} sniff_ctx;

static const char *strpbrk_n(const char *v, size_t vn, const char *set)
{
  for (size_t i = 0; i < vn; i++)
    if (strchr(set, v[i]) != NULL)
      return v + i;
  return NULL;
}

static fmt_type value_type(const char *v, size_t vn, uint32_t flags)
{
  if (v == NULL)
    return FT_NULL;
  if (flags & SPAN_JSON_RAW)
    return FT_VARCHAR;
  if (flags & SPAN_JSON_STR) {
    if (flags & SPAN_ESCAPED)
      return FT_VARCHAR;
    fmt_type t = fmt_guess_type(v, vn);
    return t == FT_DATE || t == FT_TIMESTAMP ? t : FT_VARCHAR;
  }
  int64_t i;
  if (fmt_parse_bool(v, vn, &i))
    return FT_BOOLEAN;
  if (fmt_parse_i64(v, vn, &i))
    return FT_BIGINT;
  /* an integer past BIGINT stays text: as a DOUBLE it would lose digits */
  if (fmt_guess_type(v, vn) == FT_VARCHAR && strpbrk_n(v, vn, ".eE") == NULL)
    return FT_VARCHAR;
  double d;
  if (fmt_parse_f64(v, vn, &d))
    return FT_DOUBLE;
  return FT_VARCHAR;
}

static void sniff_field(void *ctx, const char *key, size_t keylen, bool kesc, const char *v,
                        size_t vn, uint32_t flags)
{
  sniff_ctx *s = ctx;
  char tmp[256];
  if (kesc && keylen < sizeof tmp) {
    keylen = fmt_json_unescape(key, keylen, tmp);
    key = tmp;
  }
  fmt_type t = value_type(v, vn, flags);
  for (size_t i = 0; i < s->n; i++) {
    if (strlen(s->names[i]) == keylen && memcmp(s->names[i], key, keylen) == 0) {
      s->types[i] = fmt_type_merge(s->types[i], t);
      return;
    }
  }
  if (s->frozen)
    return;
  if (s->n == s->cap) {
    if (s->cap >= JSONL_MAX_COLUMNS) {
      s->overflow = true;
      return;
    }
    size_t nc = s->cap ? s->cap * 2 : 16;
    char **nn = arena_alloc(s->a, sizeof(char *) * nc);
    fmt_type *nt = arena_alloc(s->a, sizeof(fmt_type) * nc);
    if (s->n) {
      memcpy(nn, s->names, sizeof(char *) * s->n);
      memcpy(nt, s->types, sizeof(fmt_type) * s->n);
    }
    s->names = nn;
    s->types = nt;
    s->cap = nc;
  }
  s->names[s->n] = arena_strndup(s->a, key, keylen);
  s->types[s->n] = t;
  s->n++;
}

int jsonl_sniff(const char *p, size_t n, bool whole, arena *a, jsonl_schema *out, err *e)
{
  sniff_ctx s = {.a = a};
  const char *end = p + n;
  if (!whole) {
    const char *nl = memrchr(p, '\n', n);
    end = nl == NULL ? p : nl;
  }
  size_t lines = 0;
  size_t lineno = 0;
  while (p < end && lines < 20000) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl == NULL ? end : nl;
    lineno++;
    const char *q = ws(p, le);
    if (q < le) {
      const char *why = NULL;
      const char *bad = parse_line(q, le, sniff_field, &s, &why);
      if (bad != NULL)
        return err_set(e, ERR_INVALID, "malformed JSON at line %zu column %zu: %s", lineno,
                       (size_t)(bad - p) + 1, why);
      lines++;
    }
    p = nl == NULL ? end : nl + 1;
  }
  if (s.overflow)
    return err_set(e, ERR_INVALID, "JSON lines have more than %d distinct keys",
                   JSONL_MAX_COLUMNS);
  if (s.n == 0) {
    s.names = arena_alloc(a, sizeof(char *));
    s.types = arena_alloc(a, sizeof(fmt_type));
    s.names[0] = arena_strdup(a, "json");
    s.types[0] = FT_VARCHAR;
    s.n = 1;
  }
  for (size_t i = 0; i < s.n; i++)
    if (s.types[i] == FT_NULL)
      s.types[i] = FT_VARCHAR;
  out->ncols = s.n;
  out->names = s.names;
  out->types = s.types;
  return 0;
}

void jsonl_sample_types(const jsonl_schema *sc, const char *p, size_t n, bool mid,
                        fmt_type *types)
{
  const char *end = p + n;
  if (mid) {
    const char *nl = memchr(p, '\n', n);
    if (nl == NULL)
      return;
    p = nl + 1;
  }
  const char *nl = memrchr(p, '\n', (size_t)(end - p));
  if (nl == NULL)
    return;
  end = nl;
  sniff_ctx ctx = {.n = sc->ncols, .cap = sc->ncols, .names = sc->names, .types = types,
                   .frozen = true};
  size_t lines = 0;
  while (p < end && lines < 2000) {
    const char *q = memchr(p, '\n', (size_t)(end - p));
    const char *le = q == NULL ? end : q;
    const char *ls = ws(p, le);
    if (ls < le) {
      const char *why;
      parse_line(ls, le, sniff_field, &ctx, &why);
      lines++;
    }
    p = q == NULL ? end : q + 1;
  }
}

/* ---- tokenizing ---- */

#define KEY_CACHE 64
#define KEY_CACHE_LEN 48

/* what the key at a position of a line meant last time: lines of JSON
 * usually repeat their keys in the same order, so one compare decides */
typedef struct key_slot {
  uint32_t len;          /* UINT32_MAX: empty */
  int k;                 /* needed column, or -1 */
  uint32_t pmask;        /* fast path: the bytes of pat to compare (0: none) */
  char pat[32];          /* fast path: '"' key '"' as it appears raw */
  char text[KEY_CACHE_LEN];
} key_slot;

typedef struct tok_ctx {
  const jsonl_schema *s;
  const int *cols;
  int ncols;
  fspan **spans;
  int row;
  int fi;                /* field index within the line */
  const uint32_t *lens;  /* name lengths of the needed columns */
  key_slot *cache;
} tok_ctx;

static int find_col(tok_ctx *t, const char *key, size_t keylen)
{
  for (int k = 0; k < t->ncols; k++) {
    if (t->lens[k] == keylen && memcmp(t->s->names[t->cols[k]], key, keylen) == 0)
      return k;
  }
  return -1;
}

/* remembers that key (unescaped) at field position ks means column k */
static void slot_set(key_slot *ks, const char *key, size_t keylen, int k)
{
  ks->len = (uint32_t)keylen;
  ks->k = k;
  memcpy(ks->text, key, keylen);
  /* the raw pattern is exact only for keys a JSON text spells as they are */
  ks->pmask = 0;
  if (keylen + 2 <= sizeof ks->pat && memchr(key, '\\', keylen) == NULL &&
      memchr(key, '"', keylen) == NULL && memchr(key, '\n', keylen) == NULL) {
    memset(ks->pat, 0, sizeof ks->pat);
    ks->pat[0] = '"';
    memcpy(ks->pat + 1, key, keylen);
    ks->pat[keylen + 1] = '"';
    ks->pmask = (uint32_t)((1ull << (keylen + 2)) - 1);
  }
}

static void tok_field(void *ctx, const char *key, size_t keylen, bool kesc, const char *v,
                      size_t vn, uint32_t flags)
{
  tok_ctx *t = ctx;
  char tmp[256];
  if (kesc && keylen < sizeof tmp) {
    keylen = fmt_json_unescape(key, keylen, tmp);
    key = tmp;
  }
  int fi = t->fi++;
  int k;
  if (fi < KEY_CACHE && keylen < KEY_CACHE_LEN) {
    key_slot *ks = &t->cache[fi];
    if (ks->len == keylen && memcmp(ks->text, key, keylen) == 0) {
      k = ks->k;
    } else {
      k = find_col(t, key, keylen);
      slot_set(ks, key, keylen, k);
    }
  } else {
    k = find_col(t, key, keylen);
  }
  if (k < 0)
    return;
  fspan *sp = &t->spans[k][t->row];
  sp->p = v;
  sp->n = (uint32_t)vn;
  sp->flags = flags;
}

static void ignore_field(void *ctx, const char *key, size_t keylen, bool kesc, const char *v,
                         size_t vn, uint32_t flags)
{
  (void)ctx;
  (void)key;
  (void)keylen;
  (void)kesc;
  (void)v;
  (void)vn;
  (void)flags;
}

/* ---- the fast path ----
 *
 * One line at a time without looking for its end first: the parse finds
 * it. Bounded by the object's end (e), not the line's, so every scan also
 * stops at '\n'; anything unusual (a newline inside a value, an escaped
 * key, a control byte where a literal could end, the last 16 bytes of the
 * object) returns NULL and the line is read again by parse_line, which
 * then accepts it or reports the error exactly as before. So the fast path
 * only ever accepts lines parse_line accepts, with the same spans. */

static inline bool is_ws(char c)
{
  return c == ' ' || c == '\t' || c == '\r';
}

#ifdef __SSE2__
static inline unsigned load_mask(__m128i v, __m128i a, __m128i b, __m128i c)
{
  return (unsigned)_mm_movemask_epi8(_mm_or_si128(
      _mm_or_si128(_mm_cmpeq_epi8(v, a), _mm_cmpeq_epi8(v, b)), _mm_cmpeq_epi8(v, c)));
}
#endif

/* p just past an opening quote: one past the closing quote, or NULL (a
 * newline or the end first); *flags gets SPAN_ESCAPED for a backslash */
static inline const char *fast_string(const char *p, const char *e, uint32_t *flags)
{
  for (;;) {
#ifdef __SSE2__
    const __m128i vq = _mm_set1_epi8('"');
    const __m128i vb = _mm_set1_epi8('\\');
    const __m128i vn = _mm_set1_epi8('\n');
    for (;;) {
      if (e - p < 16)
        goto tail;
      unsigned m = load_mask(_mm_loadu_si128((const __m128i *)(const void *)p), vq, vb, vn);
      if (m != 0) {
        p += __builtin_ctz(m);
        break;
      }
      p += 16;
    }
#else
    goto tail;
#endif
    if (*p == '"')
      return p + 1;
    if (*p == '\n')
      return NULL;
    /* a backslash escapes the next byte (not a newline: parse_line's error) */
    *flags |= SPAN_ESCAPED;
    if (e - p < 2 || p[1] == '\n')
      return NULL;
    p += 2;
    continue;
  tail:
    while (p < e && *p != '"' && *p != '\\' && *p != '\n')
      p++;
    if (p >= e || *p == '\n')
      return NULL;
    if (*p == '"')
      return p + 1;
    *flags |= SPAN_ESCAPED;
    if (e - p < 2 || p[1] == '\n')
      return NULL;
    p += 2;
  }
}

/* p at a literal's first byte (not '"', '{', '['): one past it, or NULL
 * (empty, or it ends at a byte parse_line would read differently) */
static inline const char *fast_literal(const char *p, const char *e)
{
  const char *s = p;
#ifdef __SSE2__
  const __m128i vc = _mm_set1_epi8(',');
  const __m128i vr = _mm_set1_epi8('}');
  const __m128i vk = _mm_set1_epi8(']');
  const __m128i v20 = _mm_set1_epi8(0x20);
  while (e - p >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    /* , } ] and every byte <= 0x20 (space, tab, CR, LF, other controls) */
    unsigned m = load_mask(v, vc, vr, vk) |
                 (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, v20), v));
    if (m != 0) {
      p += __builtin_ctz(m);
      goto found;
    }
    p += 16;
  }
#endif
  while (p < e && *p != ',' && *p != '}' && *p != ']' && (unsigned char)*p > 0x20)
    p++;
  if (p >= e)
    return NULL;
#ifdef __SSE2__
found:
#endif
  if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\r' && *p != '\n')
    return NULL;   /* another control byte: parse_line keeps it in the literal */
  return p == s ? NULL : p;
}

/* p at '{' or '[': one past the matching close, or NULL */
static const char *fast_nested(const char *p, const char *e)
{
  int depth = 0;
  while (p < e) {
    char c = *p;
    if (c == '"') {
      uint32_t f = 0;
      p = fast_string(p + 1, e, &f);
      if (p == NULL)
        return NULL;
      continue;
    }
    if (c == '\n')
      return NULL;
    if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (--depth == 0)
        return p + 1;
    }
    p++;
  }
  return NULL;
}

static inline const char *fast_ws(const char *p, const char *e)
{
  while (p < e && is_ws(*p))
    p++;
  return p;
}

/* p at the '{' of a line: the line's end ('\n' or e) once every member of
 * the object has been stored into row t->row's spans, or NULL */
static const char *fast_line(tok_ctx *t, const char *p, const char *e)
{
  fspan **spans = t->spans;
  int row = t->row;
  p = fast_ws(p + 1, e);
  if (p < e && *p == '}')
    goto close;
  for (int fi = 0;; fi++) {
    if (p >= e || *p != '"')
      return NULL;
    int k;
    const char *q = NULL;
    key_slot *ks = fi < KEY_CACHE ? &t->cache[fi] : NULL;
#ifdef __SSE2__
    if (ks != NULL && ks->pmask != 0 && e - p >= 32) {
      /* '"' key '"' compared in one or two 16-byte steps */
      __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
      __m128i w = _mm_loadu_si128((const __m128i *)(const void *)ks->pat);
      unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, w));
      if (ks->pmask > 0xFFFF) {
        v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
        w = _mm_loadu_si128((const __m128i *)(const void *)(ks->pat + 16));
        m |= (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, w)) << 16;
      }
      if ((m & ks->pmask) == ks->pmask) {
        k = ks->k;
        q = p + ks->len + 2;
      }
    }
#endif
    if (q == NULL) {
      uint32_t f = 0;
      q = fast_string(p + 1, e, &f);
      if (q == NULL || f != 0)
        return NULL;   /* escaped keys: parse_line unescapes them */
      const char *key = p + 1;
      size_t keylen = (size_t)(q - 1 - key);
      if (ks != NULL && ks->len == keylen && memcmp(ks->text, key, keylen) == 0) {
        k = ks->k;   /* a long key seen here before */
      } else {
        k = find_col(t, key, keylen);
        if (ks != NULL && keylen < KEY_CACHE_LEN)
          slot_set(ks, key, keylen, k);
      }
    }
    p = q;
    if (p < e && *p != ':')
      p = fast_ws(p, e);
    if (p >= e || *p != ':')
      return NULL;
    p++;
    if (p < e && is_ws(*p))
      p = fast_ws(p, e);
    if (p >= e)
      return NULL;
    const char *v = p;
    char c = *p;
    if (c == '"') {
      uint32_t f = SPAN_JSON_STR;
      p = fast_string(p + 1, e, &f);
      if (p == NULL)
        return NULL;
      if (k >= 0) {
        fspan *sp = &spans[k][row];
        sp->p = v + 1;
        sp->n = (uint32_t)(p - v - 2);
        sp->flags = f;
      }
    } else if (c == '{' || c == '[') {
      p = fast_nested(p, e);
      if (p == NULL)
        return NULL;
      if (k >= 0) {
        fspan *sp = &spans[k][row];
        sp->p = v;
        sp->n = (uint32_t)(p - v);
        sp->flags = SPAN_JSON_RAW;
      }
    } else {
      p = fast_literal(p, e);
      if (p == NULL)
        return NULL;
      if (k >= 0) {
        fspan *sp = &spans[k][row];
        if (p - v == 4 && memcmp(v, "null", 4) == 0) {
          sp->p = NULL;
          sp->n = 0;
          sp->flags = 0;
        } else {
          sp->p = v;
          sp->n = (uint32_t)(p - v);
          sp->flags = SPAN_JSON_LIT;
        }
      }
    }
    if (p < e && is_ws(*p))
      p = fast_ws(p, e);
    if (p >= e)
      return NULL;
    if (*p == ',') {
      p++;
      if (p < e && is_ws(*p))
        p = fast_ws(p, e);
      continue;
    }
    if (*p == '}')
      break;
    return NULL;
  }
close:
  p = fast_ws(p + 1, e);
  if (p < e && *p != '\n')
    return NULL;
  return p;
}

void jsonl_cursor_init(jsonl_cursor *c, const jsonl_schema *s, const char *base, size_t size,
                       size_t start, size_t stop, const char *object, bool skip_malformed)
{
  memset(c, 0, sizeof *c);
  c->s = s;
  c->base = base;
  c->end = base + size;
  c->stop = base + stop;
  c->object = object;
  c->skip_malformed = skip_malformed;
  if (start == 0) {
    c->pos = base;
    if (size >= 3 && (unsigned char)base[0] == 0xEF && (unsigned char)base[1] == 0xBB &&
        (unsigned char)base[2] == 0xBF)
      c->pos += 3;
  } else {
    const char *nl = memchr(base + start - 1, '\n', size - (start - 1));
    c->pos = nl == NULL ? c->end : nl + 1;
  }
  c->first = c->pos;
  c->cache = NULL;
}

void jsonl_cursor_resume(jsonl_cursor *c, const char *base, size_t size, size_t stop)
{
  c->base = base;
  c->end = base + size;
  c->stop = base + (stop < size ? stop : size);
  c->pos = base;
  c->first = base;
}

void jsonl_cursor_release(jsonl_cursor *c)
{
  free(c->cache);
  c->cache = NULL;
}

int jsonl_tokenize(jsonl_cursor *c, const int *cols, int ncols, fspan **spans, const char **rec,
                   int max, err *e)
{
  const char *pos = c->pos;
  const char *end = c->end;
  const char *stop = c->stop < end ? c->stop : end;
  uint32_t lens[JSONL_MAX_COLUMNS < 256 ? JSONL_MAX_COLUMNS : 256];
  if (ncols > 256)
    ncols = 256;
  for (int k = 0; k < ncols; k++)
    lens[k] = (uint32_t)strlen(c->s->names[cols[k]]);
  if (c->cache == NULL) {
    c->cache = xcalloc(KEY_CACHE, sizeof(key_slot));
    for (int i = 0; i < KEY_CACHE; i++)
      c->cache[i].len = UINT32_MAX;   /* empty: matches no key, not even "" */
  }
  tok_ctx t = {.s = c->s, .cols = cols, .ncols = ncols, .spans = spans, .lens = lens,
               .cache = c->cache};
  if (ncols == 0) {
    /* counting rows: every non-blank line is one (not validated) */
    int row = 0;
    while (row < max && pos < stop) {
      const char *nl = memchr(pos, '\n', (size_t)(end - pos));
      const char *le = nl == NULL ? end : nl;
      if (ws(pos, le) < le)
        rec[row++] = pos;
      pos = nl == NULL ? end : nl + 1;
    }
    c->pos = pos;
    return row;
  }
  int row = 0;
  while (row < max && pos < stop) {
    for (int k = 0; k < ncols; k++)
      spans[k][row].p = NULL;
    t.row = row;
    if (!c->careful) {
      const char *p = pos;
      if (p < end && is_ws(*p))
        p = fast_ws(p, end);
      if (p < end && *p == '{') {
        const char *le = fast_line(&t, p, end);
        if (le != NULL) {
          rec[row++] = pos;
          pos = le == end ? end : le + 1;
          continue;
        }
        for (int k = 0; k < ncols; k++)
          spans[k][row].p = NULL;
      }
    }
    if (pos >= end)
      break;   /* not reached (stop <= end); tells the compiler so */
    const char *nl = memchr(pos, '\n', (size_t)(end - pos));
    const char *le = nl == NULL ? end : nl;
    const char *next = nl == NULL ? end : nl + 1;
    const char *p = ws(pos, le);
    if (p == le) {
      pos = next;
      continue;
    }
    t.fi = 0;
    const char *why = NULL;
    const char *bad = parse_line(p, le, ncols > 0 ? tok_field : ignore_field, &t, &why);
    if (bad != NULL) {
      if (c->skip_malformed) {
        c->skipped++;
        pos = next;
        continue;
      }
      c->pos = pos;
      size_t line = fmt_count_lines(c->base, (size_t)(pos - c->base)) + 1;
      return err_set(e, ERR_INVALID, "malformed JSON in '%s' line %zu column %zu: %s", c->object,
                     line, (size_t)(bad - pos) + 1, why);
    }
    rec[row++] = pos;
    pos = next;
  }
  c->pos = pos;
  return row;
}
