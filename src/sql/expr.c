/* sql/expr.c -- vectorized evaluation of bound expressions.
 *
 * Why: an expression is evaluated over a batch (~2,048 rows) at a time, so
 * the interpretation overhead (the switch on the node kind) is paid once
 * per batch, and the inner loops over typed arrays are tight. The hot
 * shapes (column-vs-constant comparisons, arithmetic, AND/OR) have their
 * own loops; the many scalar functions run a row loop over values.
 *
 * Invariants:
 *   (1) Results are indexed like the input rows (b->sel picks the active
 *       ones); inactive rows of a result hold garbage.
 *   (2) Three-valued logic: comparisons with NULL are NULL; AND is FALSE
 *       if any side is FALSE, else NULL if any is NULL; OR dually.
 *   (3) CASE, COALESCE and the THEN branches are evaluated only on the
 *       rows that reach them (so 1/x under WHEN x <> 0 does not fail).
 *   (4) Scratch memory comes from the ectx and lives until sql__ectx_reset.
 *
 * Start reading at sql__expr_eval().
 */
#include "exec.h"
#include "value.h"

#include "base/mem.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---- context ---- */

void sql__ectx_init(ectx *x, qctx *q)
{
  memset(x, 0, sizeof *x);
  x->q = q;
  x->scratch_cap = 1 << 20;
  x->scratch = xmalloc(x->scratch_cap);
  x->fc.heap = &x->heap;
  x->fc.q = q;
  x->fc.now_us = q != NULL ? q->now_wall_us : 0;
}

void sql__ectx_release(ectx *x)
{
  free(x->scratch);
  x->scratch = NULL;
  strheap_release(&x->heap);
  sql__func_scratch_free(&x->fc);
}

typedef struct spill {
  struct spill *next;
} spill;

void sql__ectx_reset(ectx *x)
{
  x->scratch_used = 0;
  strheap_reset(&x->heap);
  sql__fn_ctx_reset(&x->fc);
}

void *sql__ectx_alloc(ectx *x, size_t n)
{
  n = (n + 15) & ~(size_t)15;
  if (x->scratch_used + n > x->scratch_cap) {
    /* rare: a deep expression; take it from the string heap (reset too) */
    return strheap_alloc(&x->heap, n + 16) + 0;
  }
  void *p = x->scratch + x->scratch_used;
  x->scratch_used += n;
  return p;
}

static void vec_make(ectx *x, vec *v, int phys, int n)
{
  v->phys = (uint8_t)phys;
  v->is_const = 0;
  v->nulls = NULL;
  v->p = sql__ectx_alloc(x, (size_t)(n > 0 ? n : 1) * (phys == PHYS_STR ? sizeof(str_ref) : 8));
}

static uint8_t *nulls_make(ectx *x, vec *v, int n)
{
  if (v->nulls == NULL) {
    v->nulls = sql__ectx_alloc(x, (size_t)(n > 0 ? n : 1));
    memset(v->nulls, 0, (size_t)(n > 0 ? n : 1));
  }
  return v->nulls;
}

static void vec_set(vec *v, int r, value val)
{
  if (v->phys == PHYS_STR)
    v->s[r] = val.s;
  else
    v->i[r] = val.i;
}

/* ---- hashing ---- */

static inline uint64_t mix64(uint64_t h)
{
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

uint64_t sql__hash_bytes(const void *p, size_t n)
{
  const unsigned char *s = p;
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0x100000001B3ULL);
  while (n >= 8) {
    uint64_t k;
    memcpy(&k, s, 8);
    h = (h ^ mix64(k)) * 0x9E3779B97F4A7C15ULL;
    h = (h << 29) | (h >> 35);
    s += 8;
    n -= 8;
  }
  uint64_t k = 0;
  for (size_t i = 0; i < n; i++)
    k |= (uint64_t)s[i] << (8 * i);
  h ^= mix64(k + n);
  return mix64(h);
}

uint64_t sql__hash_value(int phys, const vec *v, int r)
{
  int i = v->is_const ? 0 : r;
  if (v->nulls != NULL && v->nulls[i])
    return 0x5bd1e995u;
  if (phys == PHYS_STR)
    return sql__hash_bytes(v->s[i].ptr, v->s[i].len);
  if (phys == PHYS_F64) {
    double d = v->f[i];
    if (d == 0)
      d = 0;  /* -0.0 == 0.0 */
    if (isnan(d))
      return 0x7ff8;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    return mix64(bits);
  }
  return mix64((uint64_t)v->i[i]);
}

int sql__value_cmp(int phys, value a, value b)
{
  if (phys == PHYS_I64)
    return a.i < b.i ? -1 : a.i > b.i;
  if (phys == PHYS_F64) {
    /* NaN sorts last and equals itself (Presto) */
    bool an = isnan(a.f), bn = isnan(b.f);
    if (an || bn)
      return an && bn ? 0 : an ? 1 : -1;
    return a.f < b.f ? -1 : a.f > b.f;
  }
  size_t n = a.s.len < b.s.len ? a.s.len : b.s.len;
  int c = n ? memcmp(a.s.ptr, b.s.ptr, n) : 0;
  if (c != 0)
    return c < 0 ? -1 : 1;
  return a.s.len < b.s.len ? -1 : a.s.len > b.s.len;
}

bool sql__value_eq(int phys, value a, value b)
{
  if (phys == PHYS_I64)
    return a.i == b.i;
  if (phys == PHYS_F64)
    return a.f == b.f || (isnan(a.f) && isnan(b.f));
  return a.s.len == b.s.len && (a.s.len == 0 || memcmp(a.s.ptr, b.s.ptr, a.s.len) == 0);
}

/* ---- value sets (IN lists, IN subqueries, DISTINCT aggregates) ---- */

struct valset {
  int phys;
  size_t cap;        /* power of two */
  size_t n;
  uint64_t *hashes;  /* 0 = empty slot (hashes are forced non-zero) */
  value *vals;
  bool has_null;
  sbank *bank;       /* string copies */
};

valset *sql__valset_new(int phys)
{
  valset *s = xcalloc(1, sizeof *s);
  s->phys = phys;
  s->cap = 16;
  s->hashes = xcalloc(s->cap, 8);
  s->vals = xcalloc(s->cap, sizeof(value));
  return s;
}

valset *sql__valset_free(valset *s)
{
  if (s == NULL)
    return NULL;
  free(s->hashes);
  free(s->vals);
  sql__sbank_free(s->bank);
  free(s);
  return NULL;
}

size_t sql__valset_size(const valset *s)
{
  return s->n;
}

size_t sql__valset_bytes(const valset *s)
{
  return s->cap * (8 + sizeof(value)) + sql__sbank_bytes(s->bank);
}

static uint64_t val_hash(int phys, value v)
{
  vec t = {.phys = (uint8_t)phys, .is_const = 1};
  if (phys == PHYS_STR)
    t.s = &v.s;
  else
    t.i = &v.i;
  uint64_t h = sql__hash_value(phys, &t, 0);
  return h ? h : 1;
}

static void valset_grow(valset *s)
{
  size_t nc = s->cap * 2;
  uint64_t *nh = xcalloc(nc, 8);
  value *nv = xcalloc(nc, sizeof(value));
  for (size_t i = 0; i < s->cap; i++) {
    if (s->hashes[i] == 0)
      continue;
    size_t j = s->hashes[i] & (nc - 1);
    while (nh[j] != 0)
      j = (j + 1) & (nc - 1);
    nh[j] = s->hashes[i];
    nv[j] = s->vals[i];
  }
  free(s->hashes);
  free(s->vals);
  s->hashes = nh;
  s->vals = nv;
  s->cap = nc;
}

bool sql__valset_add(valset *s, value v)
{
  if (v.null) {
    bool was = s->has_null;
    s->has_null = true;
    return !was;
  }
  uint64_t h = val_hash(s->phys, v);
  size_t j = h & (s->cap - 1);
  while (s->hashes[j] != 0) {
    if (s->hashes[j] == h && sql__value_eq(s->phys, s->vals[j], v))
      return false;
    j = (j + 1) & (s->cap - 1);
  }
  if (s->phys == PHYS_STR && v.s.len > 0) {
    if (s->bank == NULL)
      s->bank = sql__sbank_new();
    v.s.ptr = sql__sbank_copy(s->bank, v.s.ptr, v.s.len);
  }
  s->hashes[j] = h;
  s->vals[j] = v;
  s->n++;
  if (s->n * 2 > s->cap)
    valset_grow(s);
  return true;
}

bool sql__valset_has(const valset *s, value v)
{
  uint64_t h = val_hash(s->phys, v);
  size_t j = h & (s->cap - 1);
  while (s->hashes[j] != 0) {
    if (s->hashes[j] == h && sql__value_eq(s->phys, s->vals[j], v))
      return true;
    j = (j + 1) & (s->cap - 1);
  }
  return false;
}

bool sql__valset_has_null(const valset *s)
{
  return s->has_null;
}

void sql__valset_each(const valset *s, void (*fn)(void *arg, value v), void *arg)
{
  for (size_t i = 0; i < s->cap; i++)
    if (s->hashes[i] != 0)
      fn(arg, s->vals[i]);
}

/* ---- LIKE ---- */

typedef struct like_pat {
  int kind;          /* 0 exact, 1 prefix, 2 suffix, 3 contains, 4 general, 5 match-all */
  char *lit;         /* literal part for kinds 0-3; the pattern for 4 */
  size_t litlen;
  char esc;          /* escape char, 0 none */
  bool ci;           /* ILIKE */
} like_pat;

static char lower_ascii(char c)
{
  return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

like_pat *sql__like_compile(const char *p, size_t n, char esc, bool ci)
{
  like_pat *lp = xcalloc(1, sizeof *lp);
  lp->esc = esc;
  lp->ci = ci;
  lp->lit = xmalloc(n + 1);
  /* literal-only analysis: count wildcards */
  bool lead = n > 0 && p[0] == '%';
  bool trail = n > 1 && p[n - 1] == '%' && !(esc && p[n - 2] == esc);
  size_t inner_start = lead ? 1 : 0;
  size_t inner_end = trail ? n - 1 : n;
  bool simple = true;
  size_t o = 0;
  for (size_t i = inner_start; i < inner_end; i++) {
    char c = p[i];
    if (esc && c == esc && i + 1 < inner_end) {
      lp->lit[o++] = ci ? lower_ascii(p[++i]) : p[++i];
      continue;
    }
    if (c == '%' || c == '_') {
      simple = false;
      break;
    }
    lp->lit[o++] = ci ? lower_ascii(c) : c;
  }
  if (simple && !(esc && inner_end > inner_start && p[inner_end - 1] == esc &&
                  (inner_end - inner_start == 1 || p[inner_end - 2] != esc))) {
    lp->litlen = o;
    if (lead && trail)
      lp->kind = o == 0 ? 5 : 3;
    else if (lead)
      lp->kind = 2;
    else if (trail)
      lp->kind = 1;
    else
      lp->kind = 0;
    if (lead && n == 1)
      lp->kind = 5;
    return lp;
  }
  memcpy(lp->lit, p, n);
  lp->litlen = n;
  lp->kind = 4;
  if (ci)
    for (size_t i = 0; i < n; i++)
      lp->lit[i] = lower_ascii(lp->lit[i]);
  return lp;
}

void sql__like_free(like_pat *lp)
{
  if (lp == NULL)
    return;
  free(lp->lit);
  free(lp);
}

static size_t utf8_len(unsigned char c)
{
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0)
    return 2;
  if ((c & 0xF0) == 0xE0)
    return 3;
  if ((c & 0xF8) == 0xF0)
    return 4;
  return 1;
}

static bool ceq(char a, char b, bool ci)
{
  return ci ? lower_ascii(a) == b : a == b;
}

/* general matcher: backtracking over the last '%' (linear in practice) */
static bool like_general(const like_pat *lp, const char *s, size_t n)
{
  const char *p = lp->lit;
  size_t pn = lp->litlen;
  size_t si = 0, pi = 0;
  size_t star_p = (size_t)-1, star_s = 0;
  while (si < n) {
    if (pi < pn && p[pi] == '%') {
      star_p = ++pi;
      star_s = si;
      continue;
    }
    if (pi < pn) {
      char c = p[pi];
      if (c == '_') {
        si += utf8_len((unsigned char)s[si]);
        pi++;
        continue;
      }
      size_t plen = 1;
      if (lp->esc && c == lp->esc && pi + 1 < pn) {
        c = p[pi + 1];
        plen = 2;
      }
      if (ceq(s[si], c, lp->ci)) {
        si++;
        pi += plen;
        continue;
      }
    }
    if (star_p != (size_t)-1) {
      star_s += utf8_len((unsigned char)s[star_s]);
      si = star_s;
      pi = star_p;
      continue;
    }
    return false;
  }
  while (pi < pn && p[pi] == '%')
    pi++;
  return pi == pn;
}

static bool mem_ieq(const char *a, const char *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (lower_ascii(a[i]) != b[i])
      return false;
  return true;
}

/* does s[0..n) hold lit[0..m) (LIKE '%lit%')? Candidates are the places
   where both the first and the last byte of lit match, 16 at a time
   (glibc's memmem sets up its two-way search on every call, which is
   most of the work on short strings such as URLs) */
static bool has_lit(const char *s, size_t n, const char *lit, size_t m)
{
  if (m == 0)
    return true;
  if (n < m)
    return false;
  if (m == 1)
    return memchr(s, lit[0], n) != NULL;
  size_t last = n - m;   /* the last start */
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i f = _mm_set1_epi8(lit[0]), l = _mm_set1_epi8(lit[m - 1]);
  for (; i + 16 <= last + 1; i += 16) {
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + i + m - 1));
    unsigned mask =
        (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, f), _mm_cmpeq_epi8(b, l)));
    while (mask != 0) {
      unsigned bit = (unsigned)__builtin_ctz(mask);
      if (memcmp(s + i + bit + 1, lit + 1, m - 2) == 0)
        return true;
      mask &= mask - 1;
    }
  }
#endif
  for (; i <= last; i++)
    if (s[i] == lit[0] && s[i + m - 1] == lit[m - 1] && memcmp(s + i + 1, lit + 1, m - 2) == 0)
      return true;
  return false;
}

bool sql__like_match(const like_pat *lp, const char *s, size_t n)
{
  switch (lp->kind) {
  case 0:
    return n == lp->litlen && (lp->ci ? mem_ieq(s, lp->lit, n) : memcmp(s, lp->lit, n) == 0);
  case 1:
    return n >= lp->litlen &&
           (lp->ci ? mem_ieq(s, lp->lit, lp->litlen) : memcmp(s, lp->lit, lp->litlen) == 0);
  case 2:
    return n >= lp->litlen && (lp->ci ? mem_ieq(s + n - lp->litlen, lp->lit, lp->litlen)
                                      : memcmp(s + n - lp->litlen, lp->lit, lp->litlen) == 0);
  case 3:
    if (lp->ci) {
      if (n < lp->litlen)
        return false;
      for (size_t i = 0; i + lp->litlen <= n; i++)
        if (mem_ieq(s + i, lp->lit, lp->litlen))
          return true;
      return false;
    }
    return has_lit(s, n, lp->lit, lp->litlen);
  case 5:
    return true;
  default:
    return like_general(lp, s, n);
  }
}

/* ---- evaluation ---- */

static int fail(ectx *x, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(ectx *x, int code, const char *fmt, ...)
{
  err e;
  char msg[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  err_set(&e, code, "%s", msg);
  return sql__qctx_fail(x->q, code, &e);
}

__extension__ typedef __int128 i128;

static int eval_sub(ectx *x, const bexpr *e, const batch *b, const uint16_t *sel, int nsel,
                    vec *out)
{
  batch sb = *b;
  sb.sel = (uint16_t *)sel;
  sb.nsel = nsel;
  return sql__expr_eval(x, e, &sb, out);
}

static int eval_const(ectx *x, const bexpr *e, vec *out)
{
  int phys = sql__phys(e->type.t);
  out->phys = (uint8_t)phys;
  out->is_const = 1;
  out->p = sql__ectx_alloc(x, 16);
  out->nulls = NULL;
  if (e->v.null) {
    out->nulls = sql__ectx_alloc(x, 1);
    out->nulls[0] = 1;
    out->i[0] = 0;
    if (phys == PHYS_STR) {
      out->s[0].ptr = "";
      out->s[0].len = 0;
    }
  } else if (phys == PHYS_STR) {
    out->s[0] = e->v.s;
  } else {
    out->i[0] = e->v.i;
  }
  return 0;
}

/* result nulls: union of the inputs' nulls over the active rows */
static void merge_nulls(ectx *x, vec *out, const batch *b, const vec *a, const vec *c)
{
  if (a->nulls == NULL && (c == NULL || c->nulls == NULL))
    return;
  uint8_t *nl = nulls_make(x, out, b->n);
  for (int j = 0; j < b->nsel; j++) {
    int r = ROW(b, j);
    nl[r] = vec_is_null(a, r) || (c != NULL && vec_is_null(c, r));
  }
}

static int64_t pow10i(int k)
{
  int64_t p = 1;
  while (k-- > 0)
    p *= 10;
  return p;
}

static int eval_arith(ectx *x, const bexpr *e, const batch *b, vec *out)
{
  vec l, r;
  int rc = sql__expr_eval(x, e->args[0], b, &l);
  if (rc < 0)
    return rc;
  if ((rc = sql__expr_eval(x, e->args[1], b, &r)) < 0)
    return rc;
  int phys = sql__phys(e->type.t);
  vec_make(x, out, phys, b->n);
  merge_nulls(x, out, b, &l, &r);
  const uint8_t *nl = out->nulls;
  int op = e->op;
  if (phys == PHYS_F64) {
    /* operands may be ints (binder casts them, but be safe) */
    for (int j = 0; j < b->nsel; j++) {
      int i = ROW(b, j);
      if (nl != NULL && nl[i])
        continue;
      double a = l.f[l.is_const ? 0 : i];
      double c = r.f[r.is_const ? 0 : i];
      double v;
      switch (op) {
      case '+': v = a + c; break;
      case '-': v = a - c; break;
      case '*': v = a * c; break;
      case '/': v = a / c; break;
      default: v = fmod(a, c); break;
      }
      out->f[i] = v;
    }
    return 0;
  }
  bool dec = e->type.t == SQL_DECIMAL;
  int ls = e->args[0]->type.t == SQL_DECIMAL ? e->args[0]->type.scale : 0;
  int rs = e->args[1]->type.t == SQL_DECIMAL ? e->args[1]->type.scale : 0;
  for (int j = 0; j < b->nsel; j++) {
    int i = ROW(b, j);
    if (nl != NULL && nl[i])
      continue;
    int64_t a = l.i[l.is_const ? 0 : i];
    int64_t c = r.i[r.is_const ? 0 : i];
    int64_t v = 0;
    bool of = false;
    switch (op) {
    case '+': of = __builtin_add_overflow(a, c, &v); break;
    case '-': of = __builtin_sub_overflow(a, c, &v); break;
    case '*': of = __builtin_mul_overflow(a, c, &v); break;
    case '/':
      if (c == 0)
        return fail(x, ERR_INVALID, "division by zero%s", "");
      if (dec) {
        /* result scale e->type.scale: a*10^(s - ls + rs) / c, rounded */
        int k = e->type.scale - ls + rs;
        i128 num = (i128)a * pow10i(k);
        i128 q = num / c;
        i128 rem = num % c;
        if ((rem < 0 ? -rem : rem) * 2 >= (c < 0 ? -(i128)c : (i128)c))
          q += ((num < 0) != (c < 0)) ? -1 : 1;
        if (q > INT64_MAX || q < INT64_MIN)
          of = true;
        v = (int64_t)q;
      } else {
        if (a == INT64_MIN && c == -1)
          of = true;
        else
          v = a / c;
      }
      break;
    default:
      if (c == 0)
        return fail(x, ERR_INVALID, "division by zero%s", "");
      v = (c == -1) ? 0 : a % c;
      break;
    }
    if (of)
      return fail(x, ERR_INVALID, "numeric overflow in arithmetic%s", "");
    out->i[i] = v;
  }
  return 0;
}

static inline bool cmp_res(int op, int c)
{
  switch (op) {
  case CMP_EQ: return c == 0;
  case CMP_NE: return c != 0;
  case CMP_LT: return c < 0;
  case CMP_LE: return c <= 0;
  case CMP_GT: return c > 0;
  default: return c >= 0;
  }
}

#define CMP_LOOP(T, FIELD, EXPR_CMP)                                                     \
  do {                                                                                   \
    if (r.is_const) {                                                                    \
      T cv = r.FIELD[0];                                                                 \
      for (int j = 0; j < b->nsel; j++) {                                                \
        int i = ROW(b, j);                                                               \
        T av = l.FIELD[l.is_const ? 0 : i];                                              \
        T bv = cv;                                                                       \
        out->i[i] = EXPR_CMP;                                                            \
      }                                                                                  \
    } else {                                                                             \
      for (int j = 0; j < b->nsel; j++) {                                                \
        int i = ROW(b, j);                                                               \
        T av = l.FIELD[l.is_const ? 0 : i];                                              \
        T bv = r.FIELD[i];                                                               \
        out->i[i] = EXPR_CMP;                                                            \
      }                                                                                  \
    }                                                                                    \
  } while (0)

static int eval_cmp(ectx *x, const bexpr *e, const batch *b, vec *out)
{
  vec l, r;
  int rc = sql__expr_eval(x, e->args[0], b, &l);
  if (rc < 0)
    return rc;
  if ((rc = sql__expr_eval(x, e->args[1], b, &r)) < 0)
    return rc;
  vec_make(x, out, PHYS_I64, b->n);
  merge_nulls(x, out, b, &l, &r);
  int phys = l.phys;
  int op = e->op;
  if (phys == PHYS_I64) {
    switch (op) {
    case CMP_EQ: CMP_LOOP(int64_t, i, av == bv); break;
    case CMP_NE: CMP_LOOP(int64_t, i, av != bv); break;
    case CMP_LT: CMP_LOOP(int64_t, i, av < bv); break;
    case CMP_LE: CMP_LOOP(int64_t, i, av <= bv); break;
    case CMP_GT: CMP_LOOP(int64_t, i, av > bv); break;
    default: CMP_LOOP(int64_t, i, av >= bv); break;
    }
  } else if (phys == PHYS_F64) {
    switch (op) {
    case CMP_EQ: CMP_LOOP(double, f, av == bv); break;
    case CMP_NE: CMP_LOOP(double, f, av != bv); break;
    case CMP_LT: CMP_LOOP(double, f, av < bv); break;
    case CMP_LE: CMP_LOOP(double, f, av <= bv); break;
    case CMP_GT: CMP_LOOP(double, f, av > bv); break;
    default: CMP_LOOP(double, f, av >= bv); break;
    }
  } else {
    if (op == CMP_EQ || op == CMP_NE) {
      bool want = op == CMP_EQ;
      CMP_LOOP(str_ref, s,
               (av.len == bv.len && (av.len == 0 || memcmp(av.ptr, bv.ptr, av.len) == 0)) ==
                   want);
    } else {
      for (int j = 0; j < b->nsel; j++) {
        int i = ROW(b, j);
        value a = vec_get(&l, i), c = vec_get(&r, i);
        out->i[i] = cmp_res(op, sql__value_cmp(PHYS_STR, a, c));
      }
    }
  }
  return 0;
}

static int eval_logic(ectx *x, const bexpr *e, const batch *b, vec *out)
{
  bool is_and = e->kind == BX_AND;
  vec_make(x, out, PHYS_I64, b->n);
  uint8_t *nl = nulls_make(x, out, b->n);
  for (int j = 0; j < b->nsel; j++) {
    int i = ROW(b, j);
    out->i[i] = is_and;
    nl[i] = 0;
  }
  /* short-circuit per row: only rows still undecided evaluate the next arg */
  uint16_t *sel = sql__ectx_alloc(x, sizeof(uint16_t) * (size_t)(b->n > 0 ? b->n : 1));
  int nsel = 0;
  for (int j = 0; j < b->nsel; j++)
    sel[nsel++] = (uint16_t)ROW(b, j);
  for (int k = 0; k < e->nargs && nsel > 0; k++) {
    vec a;
    int rc = eval_sub(x, e->args[k], b, sel, nsel, &a);
    if (rc < 0)
      return rc;
    int m = 0;
    for (int j = 0; j < nsel; j++) {
      int i = sel[j];
      bool an = vec_is_null(&a, i);
      int64_t av = a.i[a.is_const ? 0 : i];
      if (an) {
        nl[i] = 1;
        sel[m++] = (uint16_t)i;
      } else if (is_and ? av == 0 : av != 0) {
        out->i[i] = !is_and;
        nl[i] = 0;
        /* decided */
      } else {
        sel[m++] = (uint16_t)i;
      }
    }
    nsel = m;
  }
  return 0;
}

static int eval_in(ectx *x, const bexpr *e, const batch *b, vec *out)
{
  vec a;
  int rc = sql__expr_eval(x, e->args[0], b, &a);
  if (rc < 0)
    return rc;
  vec_make(x, out, PHYS_I64, b->n);
  uint8_t *nl = nulls_make(x, out, b->n);
  int phys = a.phys;
  if (e->set != NULL) {
    const valset *s = e->set;
    bool set_null = sql__valset_has_null(s);
    for (int j = 0; j < b->nsel; j++) {
      int i = ROW(b, j);
      value v = vec_get(&a, i);
      nl[i] = 0;
      if (v.null) {
        /* NULL IN (empty) is FALSE */
        if (sql__valset_size(s) == 0 && !set_null) {
          out->i[i] = e->neg;
        } else {
          nl[i] = 1;
          out->i[i] = 0;
        }
        continue;
      }
      bool hit = sql__valset_has(s, v);
      if (hit) {
        out->i[i] = !e->neg;
      } else if (set_null) {
        nl[i] = 1;
        out->i[i] = 0;
      } else {
        out->i[i] = e->neg;
      }
    }
    return 0;
  }
  /* non-constant list: compare one by one */
  vec *items = sql__ectx_alloc(x, sizeof(vec) * (size_t)e->nargs);
  for (int k = 1; k < e->nargs; k++)
    if ((rc = sql__expr_eval(x, e->args[k], b, &items[k])) < 0)
      return rc;
  for (int j = 0; j < b->nsel; j++) {
    int i = ROW(b, j);
    value v = vec_get(&a, i);
    nl[i] = 0;
    if (v.null) {
      nl[i] = 1;
      continue;
    }
    bool hit = false, sawnull = false;
    for (int k = 1; k < e->nargs && !hit; k++) {
      value w = vec_get(&items[k], i);
      if (w.null)
        sawnull = true;
      else if (sql__value_eq(phys, v, w))
        hit = true;
    }
    if (hit)
      out->i[i] = !e->neg;
    else if (sawnull)
      nl[i] = 1;
    else
      out->i[i] = e->neg;
  }
  return 0;
}

static int eval_like(ectx *x, const bexpr *e, const batch *b, vec *out)
{
  vec a;
  int rc = sql__expr_eval(x, e->args[0], b, &a);
  if (rc < 0)
    return rc;
  vec_make(x, out, PHYS_I64, b->n);
  if (e->like != NULL) {
    merge_nulls(x, out, b, &a, NULL);
    const like_pat *lp = e->like;
    for (int j = 0; j < b->nsel; j++) {
      int i = ROW(b, j);
      str_ref s = a.s[a.is_const ? 0 : i];
      out->i[i] = sql__like_match(lp, s.ptr, s.len) != e->neg;
    }
    return 0;
  }
  vec p, esc = {0};
  if ((rc = sql__expr_eval(x, e->args[1], b, &p)) < 0)
    return rc;
  if (e->nargs > 2 && (rc = sql__expr_eval(x, e->args[2], b, &esc)) < 0)
    return rc;
  merge_nulls(x, out, b, &a, &p);
  for (int j = 0; j < b->nsel; j++) {
    int i = ROW(b, j);
    if (out->nulls != NULL && out->nulls[i])
      continue;
    str_ref s = a.s[a.is_const ? 0 : i];
    str_ref ps = p.s[p.is_const ? 0 : i];
    char ec = 0;
    if (e->nargs > 2 && !vec_is_null(&esc, i)) {
      str_ref es = esc.s[esc.is_const ? 0 : i];
      ec = es.len > 0 ? es.ptr[0] : 0;
    }
    like_pat *lp = sql__like_compile(ps.ptr, ps.len, ec, e->ilike);
    out->i[i] = sql__like_match(lp, s.ptr, s.len) != e->neg;
    sql__like_free(lp);
  }
  return 0;
}

static int eval_case(ectx *x, const bexpr *e, const batch *b, vec *out)
{
  int phys = sql__phys(e->type.t);
  vec_make(x, out, phys, b->n);
  uint8_t *nl = nulls_make(x, out, b->n);
  uint16_t *rem = sql__ectx_alloc(x, sizeof(uint16_t) * (size_t)(b->n > 0 ? b->n : 1));
  uint16_t *hit = sql__ectx_alloc(x, sizeof(uint16_t) * (size_t)(b->n > 0 ? b->n : 1));
  int nrem = 0;
  for (int j = 0; j < b->nsel; j++) {
    int i = ROW(b, j);
    rem[nrem++] = (uint16_t)i;
    nl[i] = 1;
    if (phys == PHYS_STR) {
      out->s[i].ptr = "";
      out->s[i].len = 0;
    } else {
      out->i[i] = 0;
    }
  }
  int npairs = (e->nargs - (e->has_else ? 1 : 0)) / 2;
  for (int k = 0; k < npairs && nrem > 0; k++) {
    vec c;
    int rc = eval_sub(x, e->args[2 * k], b, rem, nrem, &c);
    if (rc < 0)
      return rc;
    int nhit = 0, m = 0;
    for (int j = 0; j < nrem; j++) {
      int i = rem[j];
      if (!vec_is_null(&c, i) && c.i[c.is_const ? 0 : i] != 0)
        hit[nhit++] = (uint16_t)i;
      else
        rem[m++] = (uint16_t)i;
    }
    nrem = m;
    if (nhit > 0) {
      vec t;
      if ((rc = eval_sub(x, e->args[2 * k + 1], b, hit, nhit, &t)) < 0)
        return rc;
      for (int j = 0; j < nhit; j++) {
        int i = hit[j];
        value v = vec_get(&t, i);
        nl[i] = v.null;
        vec_set(out, i, v);
      }
    }
  }
  if (e->has_else && nrem > 0) {
    vec t;
    int rc = eval_sub(x, e->args[e->nargs - 1], b, rem, nrem, &t);
    if (rc < 0)
      return rc;
    for (int j = 0; j < nrem; j++) {
      int i = rem[j];
      value v = vec_get(&t, i);
      nl[i] = v.null;
      vec_set(out, i, v);
    }
  }
  return 0;
}

static int eval_coalesce(ectx *x, const bexpr *e, const batch *b, vec *out)
{
  int phys = sql__phys(e->type.t);
  vec_make(x, out, phys, b->n);
  uint8_t *nl = nulls_make(x, out, b->n);
  uint16_t *rem = sql__ectx_alloc(x, sizeof(uint16_t) * (size_t)(b->n > 0 ? b->n : 1));
  int nrem = 0;
  for (int j = 0; j < b->nsel; j++) {
    int i = ROW(b, j);
    rem[nrem++] = (uint16_t)i;
    nl[i] = 1;
    if (phys == PHYS_STR) {
      out->s[i].ptr = "";
      out->s[i].len = 0;
    } else {
      out->i[i] = 0;
    }
  }
  for (int k = 0; k < e->nargs && nrem > 0; k++) {
    vec t;
    int rc = eval_sub(x, e->args[k], b, rem, nrem, &t);
    if (rc < 0)
      return rc;
    int m = 0;
    for (int j = 0; j < nrem; j++) {
      int i = rem[j];
      value v = vec_get(&t, i);
      if (v.null) {
        rem[m++] = (uint16_t)i;
        continue;
      }
      nl[i] = 0;
      vec_set(out, i, v);
    }
    nrem = m;
  }
  return 0;
}

static int eval_cast(ectx *x, const bexpr *e, const batch *b, vec *out)
{
  vec a;
  int rc = sql__expr_eval(x, e->args[0], b, &a);
  if (rc < 0)
    return rc;
  stype from = e->args[0]->type;
  stype to = e->type;
  int phys = sql__phys(to.t);
  /* same representation: reuse */
  if (from.t == to.t && (to.t != SQL_DECIMAL || from.scale == to.scale) &&
      to.t != SQL_SMALLINT && to.t != SQL_INTEGER) {
    *out = a;
    return 0;
  }
  if (a.is_const) {
    /* cast the one value */
    value v = vec_get(&a, 0);
    value r;
    char msg[160];
    bool ok = v.null || sql__cast_value(from, to, v, &r, &x->heap, msg, sizeof msg);
    out->phys = (uint8_t)phys;
    out->is_const = 1;
    out->p = sql__ectx_alloc(x, 16);
    out->nulls = NULL;
    if (!ok && !e->try_cast)
      return fail(x, ERR_INVALID, "%s", msg);
    if (v.null || !ok) {
      out->nulls = sql__ectx_alloc(x, 1);
      out->nulls[0] = 1;
      out->i[0] = 0;
      if (phys == PHYS_STR)
        out->s[0] = (str_ref){"", 0};
    } else {
      vec_set(out, 0, r);
    }
    return 0;
  }
  vec_make(x, out, phys, b->n);
  if (a.nulls != NULL || e->try_cast)
    nulls_make(x, out, b->n);
  /* fast paths */
  if (phys == PHYS_F64 && a.phys == PHYS_I64 && sql__stype_integer(from.t)) {
    for (int j = 0; j < b->nsel; j++) {
      int i = ROW(b, j);
      out->f[i] = (double)a.i[i];
      if (out->nulls)
        out->nulls[i] = vec_is_null(&a, i);
    }
    return 0;
  }
  char msg[160];
  for (int j = 0; j < b->nsel; j++) {
    int i = ROW(b, j);
    value v = vec_get(&a, i);
    if (v.null) {
      out->nulls[i] = 1;
      /* not out->i[i] for strings: i and s share the storage, and an
         8-byte index would hit the pointer of row i / 2 */
      if (phys == PHYS_STR)
        out->s[i] = (str_ref){"", 0};
      else
        out->i[i] = 0;
      continue;
    }
    value r;
    if (!sql__cast_value(from, to, v, &r, &x->heap, msg, sizeof msg)) {
      if (!e->try_cast)
        return fail(x, ERR_INVALID, "%s", msg);
      out->nulls[i] = 1;
      if (phys == PHYS_STR)
        out->s[i] = (str_ref){"", 0};
      else
        out->i[i] = 0;
      continue;
    }
    if (out->nulls)
      out->nulls[i] = 0;
    vec_set(out, i, r);
  }
  return 0;
}

#define FUNC_CHECK_BYTES (1u << 20)

static int eval_func(ectx *x, const bexpr *e, const batch *b, vec *out)
{
  int n = e->nargs;
  vec *av = sql__ectx_alloc(x, sizeof(vec) * (size_t)(n > 0 ? n : 1));
  bool all_const = true;
  for (int k = 0; k < n; k++) {
    int rc = sql__expr_eval(x, e->args[k], b, &av[k]);
    if (rc < 0)
      return rc;
    all_const = all_const && av[k].is_const;
  }
  int phys = sql__phys(e->type.t);
  value args[16];
  if (n > 16)
    n = 16;
  /* functions of constants only (and deterministic): one call */
  if (all_const && n > 0) {
    out->phys = (uint8_t)phys;
    out->is_const = 1;
    out->p = sql__ectx_alloc(x, 16);
    out->nulls = sql__ectx_alloc(x, 1);
    bool anynull = false;
    for (int k = 0; k < n; k++) {
      args[k] = vec_get(&av[k], 0);
      anynull = anynull || args[k].null;
    }
    value r = {0};
    bool ok = false;
    if (!anynull || e->fn->takes_nulls)
      ok = e->fn->row(&x->fc, e, args, &r);
    if (atomic_load(&x->q->failed))
      return sql__qctx_check(x->q);
    out->nulls[0] = !ok;
    if (ok)
      vec_set(out, 0, r);
    else if (phys == PHYS_STR)
      out->s[0] = (str_ref){"", 0};
    else
      out->i[0] = 0;
    return 0;
  }
  vec_make(x, out, phys, b->n);
  uint8_t *nl = nulls_make(x, out, b->n);
  /* a row over a 32 MiB string may take a while (regexp_count of ''):
     past every FUNC_CHECK_BYTES of string arguments, look at the cancel
     flag and the time limit (not per row: most rows are cheap) */
  size_t work = 0;
  for (int j = 0; j < b->nsel; j++) {
    int i = ROW(b, j);
    bool anynull = false;
    for (int k = 0; k < n; k++) {
      args[k] = vec_get(&av[k], i);
      anynull = anynull || args[k].null;
      if (av[k].phys == PHYS_STR && !args[k].null)
        work += args[k].s.len;
    }
    if (work > FUNC_CHECK_BYTES) {
      work = 0;
      if (sql__qctx_check(x->q) < 0)
        return sql__qctx_check(x->q);
    }
    value r = {0};
    bool ok = false;
    if (!anynull || e->fn->takes_nulls)
      ok = e->fn->row(&x->fc, e, args, &r);
    if (!ok && atomic_load(&x->q->failed))
      return sql__qctx_check(x->q); /* the rest of the batch would fail too */
    nl[i] = !ok;
    if (ok)
      vec_set(out, i, r);
    else if (phys == PHYS_STR)
      out->s[i] = (str_ref){"", 0};
    else
      out->i[i] = 0;
  }
  if (atomic_load(&x->q->failed))
    return sql__qctx_check(x->q);
  return 0;
}

static int eval_concat(ectx *x, const bexpr *e, const batch *b, vec *out)
{
  int n = e->nargs;
  vec *av = sql__ectx_alloc(x, sizeof(vec) * (size_t)n);
  for (int k = 0; k < n; k++) {
    int rc = sql__expr_eval(x, e->args[k], b, &av[k]);
    if (rc < 0)
      return rc;
  }
  vec_make(x, out, PHYS_STR, b->n);
  uint8_t *nl = nulls_make(x, out, b->n);
  for (int j = 0; j < b->nsel; j++) {
    int i = ROW(b, j);
    uint64_t total = 0;
    bool isnull = false;
    for (int k = 0; k < n; k++) {
      if (vec_is_null(&av[k], i)) {
        isnull = true;
        break;
      }
      total += av[k].s[av[k].is_const ? 0 : i].len;
    }
    nl[i] = isnull;
    if (isnull) {
      out->s[i] = (str_ref){"", 0};
      continue;
    }
    char *d = sql__fn_out_alloc(&x->fc, "concat", total);
    if (d == NULL)
      return sql__qctx_check(x->q);
    size_t o = 0;
    for (int k = 0; k < n; k++) {
      str_ref s = av[k].s[av[k].is_const ? 0 : i];
      if (s.len)
        memcpy(d + o, s.ptr, s.len);
      o += s.len;
    }
    out->s[i] = (str_ref){d, o};
  }
  return 0;
}

int sql__expr_eval(ectx *x, const bexpr *e, const batch *b, vec *out)
{
  switch (e->kind) {
  case BX_COL:
    *out = b->cols[e->colno];
    return 0;
  case BX_CONST:
    return eval_const(x, e, out);
  case BX_CAST:
    return eval_cast(x, e, b, out);
  case BX_ARITH:
    return eval_arith(x, e, b, out);
  case BX_NEG: {
    vec a;
    int rc = sql__expr_eval(x, e->args[0], b, &a);
    if (rc < 0)
      return rc;
    vec_make(x, out, a.phys, b->n);
    merge_nulls(x, out, b, &a, NULL);
    for (int j = 0; j < b->nsel; j++) {
      int i = ROW(b, j);
      if (a.phys == PHYS_F64) {
        out->f[i] = -a.f[a.is_const ? 0 : i];
      } else {
        int64_t v = a.i[a.is_const ? 0 : i];
        if (v == INT64_MIN)
          return fail(x, ERR_INVALID, "numeric overflow in negation%s", "");
        out->i[i] = -v;
      }
    }
    return 0;
  }
  case BX_CMP:
    return eval_cmp(x, e, b, out);
  case BX_AND:
  case BX_OR:
    return eval_logic(x, e, b, out);
  case BX_NOT: {
    vec a;
    int rc = sql__expr_eval(x, e->args[0], b, &a);
    if (rc < 0)
      return rc;
    vec_make(x, out, PHYS_I64, b->n);
    merge_nulls(x, out, b, &a, NULL);
    for (int j = 0; j < b->nsel; j++) {
      int i = ROW(b, j);
      out->i[i] = a.i[a.is_const ? 0 : i] == 0;
    }
    return 0;
  }
  case BX_ISNULL: {
    vec a;
    int rc = sql__expr_eval(x, e->args[0], b, &a);
    if (rc < 0)
      return rc;
    vec_make(x, out, PHYS_I64, b->n);
    for (int j = 0; j < b->nsel; j++) {
      int i = ROW(b, j);
      out->i[i] = vec_is_null(&a, i) != e->neg;
    }
    return 0;
  }
  case BX_DISTINCT: {
    vec a, c;
    int rc = sql__expr_eval(x, e->args[0], b, &a);
    if (rc < 0)
      return rc;
    if ((rc = sql__expr_eval(x, e->args[1], b, &c)) < 0)
      return rc;
    vec_make(x, out, PHYS_I64, b->n);
    for (int j = 0; j < b->nsel; j++) {
      int i = ROW(b, j);
      value va = vec_get(&a, i), vc = vec_get(&c, i);
      bool distinct;
      if (va.null || vc.null)
        distinct = va.null != vc.null;
      else
        distinct = !sql__value_eq(a.phys, va, vc);
      out->i[i] = distinct != e->neg;
    }
    return 0;
  }
  case BX_IN:
  case BX_IN_SET:
    return eval_in(x, e, b, out);
  case BX_LIKE:
    return eval_like(x, e, b, out);
  case BX_CASE:
    return eval_case(x, e, b, out);
  case BX_COALESCE:
    return eval_coalesce(x, e, b, out);
  case BX_FUNC:
    return eval_func(x, e, b, out);
  case BX_CONCAT:
    return eval_concat(x, e, b, out);
  default:
    return fail(x, ERR_INTERNAL, "cannot evaluate expression kind%s", "");
  }
}

int sql__expr_filter(ectx *x, const bexpr *e, batch *b)
{
  if (b->nsel == 0)
    return 0;
  /* conjunctions narrow step by step */
  if (e->kind == BX_AND) {
    for (int k = 0; k < e->nargs && b->nsel > 0; k++) {
      int rc = sql__expr_filter(x, e->args[k], b);
      if (rc < 0)
        return rc;
    }
    return 0;
  }
  vec v;
  int rc = sql__expr_eval(x, e, b, &v);
  if (rc < 0)
    return rc;
  uint16_t *sel = sql__ectx_alloc(x, sizeof(uint16_t) * (size_t)(b->n > 0 ? b->n : 1));
  int m = 0;
  if (v.is_const) {
    bool keep = !vec_is_null(&v, 0) && v.i[0] != 0;
    if (keep)
      return 0;
    b->nsel = 0;
    b->sel = sel;
    return 0;
  }
  if (v.nulls == NULL) {
    if (b->sel == NULL) {
      for (int i = 0; i < b->nsel; i++) {
        sel[m] = (uint16_t)i;
        m += v.i[i] != 0;
      }
    } else {
      for (int j = 0; j < b->nsel; j++) {
        int i = b->sel[j];
        sel[m] = (uint16_t)i;
        m += v.i[i] != 0;
      }
    }
  } else {
    for (int j = 0; j < b->nsel; j++) {
      int i = ROW(b, j);
      sel[m] = (uint16_t)i;
      m += v.i[i] != 0 && !v.nulls[i];
    }
  }
  b->sel = sel;
  b->nsel = m;
  return 0;
}
