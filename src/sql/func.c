/* sql/func.c -- scalar functions with Athena / Presto names.
 *
 * Each function has a binder (types its arguments, inserting casts, and
 * sets the result type) and a row function over values. Most binders are
 * the generic one driven by a signature string:
 *   argument letters  S varchar  I bigint  D double  B boolean  T timestamp
 *                     (a date is widened)  X any (kept)
 *   result after '>'  S I D B T, A date, '0' the type of argument 0
 * NULL in, NULL out, unless takes_nulls.
 *
 * Invariants:
 *   (1) Strings are UTF-8: length, substr, strpos, lpad, reverse count
 *       characters, not bytes.
 *   (2) Row functions never fail silently: a runtime error (a bad regexp
 *       given as a column) fails the query through sql__qctx_fail.
 *
 * Start reading at the table `funcs` at the end.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "exec.h"

#include "base/mem.h"
#include "base/text.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US_PER_DAY 86400000000LL

/* ---- helpers ---- */

static bool rt_fail(fn_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool rt_fail(fn_ctx *c, const char *fmt, ...)
{
  err e;
  char msg[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  err_set(&e, ERR_INVALID, "%s", msg);
  sql__qctx_fail(c->q, ERR_INVALID, &e);
  return false;
}

/* ---- the room for built values ----
 * Every string a function builds comes from sql__fn_out_alloc, which checks the
 * two limits where the size is known, before a byte is written: the value
 * limit (SQL_VALUE_MAX) and the query's memory budget. Small values go to
 * the batch's string heap; the first FN_HEAP_FREE bytes a batch builds are
 * not charged (no atomic operation on the common path), the rest is, until
 * sql__fn_ctx_reset. Values of FN_BIG_VALUE bytes or more are malloc'd on their
 * own, so that a failed allocation is a query error, not an abort. */

#define FN_HEAP_FREE (4u << 20)
#define FN_BIG_VALUE (1u << 20)
#define FN_CHECK_VALUE (64u << 10)  /* results this large first check for cancellation */
#define FN_CHARGE_STEP (1u << 20)

typedef struct fn_block {
  struct fn_block *next;
  char data[];
} fn_block;

/* a + b and a * b, saturating (sizes computed from client input) */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static bool size_fail(fn_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool size_fail(fn_ctx *c, int code, const char *fmt, ...)
{
  err e;
  char msg[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  err_set(&e, code, "%s", msg);
  if (c->q != NULL)
    sql__qctx_fail(c->q, code, &e);
  return false;
}

char *sql__fn_out_alloc(fn_ctx *c, const char *fname, uint64_t n)
{
  if (n > SQL_VALUE_MAX) {
    size_fail(c, ERR_INVALID, "%s: result of %llu bytes exceeds the %u MiB value limit", fname,
              (unsigned long long)n, SQL_VALUE_MAX >> 20);
    return NULL;
  }
  qctx *q = c->q;
  /* a large value takes milliseconds to fill: a query that was cancelled
     (its client went away) or is past its time limit stops at the next
     one, not at the end of a batch of them */
  if (n >= FN_CHECK_VALUE && q != NULL && sql__qctx_check(q) != 0)
    return NULL;
  uint64_t after = c->heap->used + c->big_bytes + n + 1;
  if (after > FN_HEAP_FREE + (uint64_t)c->charged && q != NULL) {
    uint64_t want = (after - FN_HEAP_FREE + FN_CHARGE_STEP - 1) / FN_CHARGE_STEP * FN_CHARGE_STEP;
    int64_t delta = (int64_t)want - c->charged;
    int64_t now = atomic_fetch_add(&q->mem_used, delta) + delta;
    if (q->mem_limit > 0 && now > (int64_t)q->mem_limit) {
      atomic_fetch_sub(&q->mem_used, delta);
      size_fail(c, ERR_ENTITY_TOO_LARGE,
                "%s: a result of %llu bytes passes the query's memory limit of %llu MB", fname,
                (unsigned long long)n, (unsigned long long)(q->mem_limit >> 20));
      return NULL;
    }
    c->charged = (int64_t)want;
  }
  if (n + 1 < FN_BIG_VALUE)
    return strheap_alloc(c->heap, n + 1);
  fn_block *b = malloc(sizeof *b + n + 1);
  if (b == NULL) {
    size_fail(c, ERR_ENTITY_TOO_LARGE, "%s: cannot allocate a result of %llu bytes", fname,
              (unsigned long long)n);
    return NULL;
  }
  b->next = c->big;
  c->big = b;
  c->big_bytes += n + 1;
  return b->data;
}

void sql__fn_ctx_reset(fn_ctx *c)
{
  while (c->big != NULL) {
    fn_block *n = c->big->next;
    free(c->big);
    c->big = n;
  }
  c->big_bytes = 0;
  if (c->charged > 0 && c->q != NULL)
    atomic_fetch_sub(&c->q->mem_used, c->charged);
  c->charged = 0;
}

/* a copy of p[0..n) as a built value; false (the query failed) past a limit */
static bool out_copy(fn_ctx *c, const char *fname, const char *p, size_t n, str_ref *out)
{
  char *d = sql__fn_out_alloc(c, fname, n);
  if (d == NULL)
    return false;
  if (n)
    memcpy(d, p, n);
  *out = (str_ref){d, n};
  return true;
}

static size_t u8len(unsigned char ch)
{
  if (ch < 0x80)
    return 1;
  if ((ch & 0xE0) == 0xC0)
    return 2;
  if ((ch & 0xF0) == 0xE0)
    return 3;
  if ((ch & 0xF8) == 0xF0)
    return 4;
  return 1;
}

static int64_t u8count(const char *s, size_t n)
{
  int64_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += ((unsigned char)s[i] & 0xC0) != 0x80;
  return c;
}

/* byte offset of character k (0-based), or n */
static size_t u8off(const char *s, size_t n, int64_t k)
{
  size_t i = 0;
  while (k > 0 && i < n) {
    i += u8len((unsigned char)s[i]);
    k--;
  }
  return i > n ? n : i;
}

static int64_t ts_of(const bexpr *call, int arg, value v)
{
  return call->args[arg]->type.t == SQL_DATE ? v.i * US_PER_DAY : v.i;
}

static int64_t floordiv(int64_t a, int64_t b)
{
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}

static void civil(int64_t us, int64_t *y, unsigned *m, unsigned *d, int64_t *tod)
{
  int64_t days = floordiv(us, US_PER_DAY);
  *tod = us - days * US_PER_DAY;
  fmt_civil_from_days(days, y, m, d);
}

/* ---- generic binder ---- */

static int bind_sig(qctx *q, bexpr *call, const char *sig, err *e, sql_pos *pos)
{
  const char *p = sig;
  char what[96];
  snprintf(what, sizeof what, "function '%s'", call->fn->name);
  int i = 0;
  for (; *p && *p != '>'; p++) {
    if (*p == ',')
      continue;
    if (i >= call->nargs) {
      /* optional arguments not given */
      while (*p && *p != '>')
        p++;
      break;
    }
    bexpr **a = &call->args[i];
    int rc = 0;
    switch (*p) {
    case 'S':
      if ((*a)->type.t != SQL_VARCHAR && (*a)->type.t != SQL_NULL) {
        char t[48];
        return sql__error_at(e, pos, (*a)->line, (*a)->col, "%s expects varchar, got %s", what,
                            sql__stype_name((*a)->type, t, sizeof t));
      }
      *a = sql__bind_cast(q, *a, sql__st(SQL_VARCHAR));
      break;
    case 'I':
      rc = sql__bind_coerce(q, a, sql__st(SQL_BIGINT), what, e, pos);
      break;
    case 'D':
      if (sql__stype_numeric((*a)->type.t) || (*a)->type.t == SQL_NULL)
        *a = sql__bind_cast(q, *a, sql__st(SQL_DOUBLE));
      else
        rc = sql__bind_coerce(q, a, sql__st(SQL_DOUBLE), what, e, pos);
      break;
    case 'B':
      rc = sql__bind_coerce(q, a, sql__st(SQL_BOOLEAN), what, e, pos);
      break;
    case 'T':
      if ((*a)->type.t == SQL_DATE || (*a)->type.t == SQL_TIMESTAMP)
        break;
      if ((*a)->type.t == SQL_VARCHAR && (*a)->kind == BX_CONST) {
        *a = sql__bind_cast(q, *a, sql__st(SQL_TIMESTAMP));
        break;
      }
      if ((*a)->type.t == SQL_NULL) {
        *a = sql__bind_cast(q, *a, sql__st(SQL_TIMESTAMP));
        break;
      }
      {
        char t[48];
        return sql__error_at(e, pos, (*a)->line, (*a)->col,
                            "%s expects a date or timestamp, got %s", what,
                            sql__stype_name((*a)->type, t, sizeof t));
      }
    case 'X':
      break;
    }
    if (rc < 0)
      return rc;
    i++;
  }
  if (*p == '>')
    p++;
  switch (*p) {
  case 'S': call->type = sql__st(SQL_VARCHAR); break;
  case 'I': call->type = sql__st(SQL_BIGINT); break;
  case 'D': call->type = sql__st(SQL_DOUBLE); break;
  case 'B': call->type = sql__st(SQL_BOOLEAN); break;
  case 'T': call->type = sql__st(SQL_TIMESTAMP); break;
  case 'A': call->type = sql__st(SQL_DATE); break;
  case '0':
    call->type = call->args[0]->type;
    if (call->type.t == SQL_NULL)
      call->type = sql__st(SQL_VARCHAR);
    break;
  default: call->type = sql__st(SQL_VARCHAR); break;
  }
  return 0;
}

#define SIG(fname, sig)                                                          \
  static int fname(qctx *q, bexpr *call, err *e, sql_pos *pos)                   \
  {                                                                              \
    return bind_sig(q, call, sig, e, pos);                                       \
  }

SIG(b_s_s, "S>S")
SIG(b_s_i, "S>I")
SIG(b_ss_s, "S,S>S")
SIG(b_ss_i, "S,S>I")
SIG(b_ss_b, "S,S>B")
SIG(b_sss_s, "S,S,S>S")
SIG(b_ssi_s, "S,S,I>S")
SIG(b_sii_s, "S,I,I>S")
SIG(b_sis_s, "S,I,S>S")
SIG(b_t_i, "T>I")
SIG(b_d_d, "D>D")
SIG(b_dd_d, "D,D>D")
SIG(b_d_t, "D>T")
SIG(b_t_d, "T>D")
SIG(b__a, ">A")
SIG(b__t, ">T")
SIG(b__d, ">D")
SIG(b_i_s, "I>S")
SIG(b_d_b, "D>B")
SIG(b_ts_s, "T,S>S")
SIG(b_ss_a, "S,S>T")

/* ---- strings ---- */

/* Unicode case mapping (casemap.c: simple mappings, one code point to
 * one, as Presto's upper/lower). Bytes that are not valid UTF-8 pass
 * through unchanged. */
extern const uint32_t sql_case_upper[][2];
extern const size_t sql_case_upper_len;
extern const uint32_t sql_case_lower[][2];
extern const size_t sql_case_lower_len;

static uint32_t case_map(const uint32_t (*tab)[2], size_t n, uint32_t cp)
{
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (tab[mid][0] < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && tab[lo][0] == cp ? tab[lo][1] : cp;
}

/* one UTF-8 character at p (n > 0 bytes left): its length, 0 when invalid */
static int utf8_char(const unsigned char *p, size_t n, uint32_t *cp)
{
  unsigned char c = p[0];
  int len = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
  if (len == 0 || (size_t)len > n)
    return 0;
  uint32_t v = c & (0x7F >> len);
  for (int i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    v = v << 6 | (p[i] & 0x3F);
  }
  if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
      (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return len;
}

static int utf8_len(uint32_t cp)
{
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static void utf8_put(char *d, uint32_t cp, int len)
{
  if (len == 1) {
    d[0] = (char)cp;
  } else if (len == 2) {
    d[0] = (char)(0xC0 | cp >> 6);
    d[1] = (char)(0x80 | (cp & 0x3F));
  } else if (len == 3) {
    d[0] = (char)(0xE0 | cp >> 12);
    d[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    d[2] = (char)(0x80 | (cp & 0x3F));
  } else {
    d[0] = (char)(0xF0 | cp >> 18);
    d[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    d[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
  }
}

/* Maps s through tab into d (NULL: only counts); returns the bytes. */
static size_t case_convert(const uint32_t (*tab)[2], size_t ntab, bool up, str_ref s, char *d)
{
  const unsigned char *p = (const unsigned char *)s.ptr;
  size_t out = 0;
  for (size_t i = 0; i < s.len;) {
    unsigned char ch = p[i];
    if (ch < 0x80) {
      if (d != NULL)
        d[out] = up ? (ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : (char)ch)
                    : (ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : (char)ch);
      out++;
      i++;
      continue;
    }
    uint32_t cp;
    int len = utf8_char(p + i, s.len - i, &cp);
    if (len == 0) {
      if (d != NULL)
        d[out] = (char)ch;
      out++;
      i++;
      continue;
    }
    uint32_t m = case_map(tab, ntab, cp);
    int ml = utf8_len(m);
    if (d != NULL)
      utf8_put(d + out, m, ml);
    out += (size_t)ml;
    i += (size_t)len;
  }
  return out;
}

static bool case_fn(fn_ctx *c, const char *name, bool up, const value *a, value *o)
{
  const uint32_t(*tab)[2] = up ? sql_case_upper : sql_case_lower;
  size_t ntab = up ? sql_case_upper_len : sql_case_lower_len;
  size_t n = case_convert(tab, ntab, up, a[0].s, NULL);
  char *d = sql__fn_out_alloc(c, name, n);
  if (d == NULL)
    return false;
  case_convert(tab, ntab, up, a[0].s, d);
  o->s = (str_ref){d, n};
  return true;
}

static bool f_lower(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  return case_fn(c, "lower", false, a, o);
}

static bool f_upper(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  return case_fn(c, "upper", true, a, o);
}

static bool f_length(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->i = u8count(a[0].s.ptr, a[0].s.len);
  return true;
}

static bool f_substr(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  str_ref s = a[0].s;
  int64_t n = u8count(s.ptr, s.len);
  int64_t start = a[1].i;
  if (start == 0) {
    o->s = (str_ref){"", 0};
    return true;
  }
  if (start < 0)
    start = n + start + 1;
  if (start < 1 || start > n) {
    o->s = (str_ref){"", 0};
    return true;
  }
  int64_t len = call->nargs > 2 ? a[2].i : n;
  if (len < 0) {
    o->s = (str_ref){"", 0};
    return true;
  }
  size_t b = u8off(s.ptr, s.len, start - 1);
  size_t e = len >= n ? s.len : u8off(s.ptr, s.len, start - 1 + len);
  o->s = (str_ref){s.ptr + b, e - b};
  return true;
}

static bool is_space(char ch)
{
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static bool trim_impl(const value *a, value *o, bool l, bool r)
{
  const char *p = a[0].s.ptr;
  size_t n = a[0].s.len;
  while (l && n > 0 && is_space(*p)) {
    p++;
    n--;
  }
  while (r && n > 0 && is_space(p[n - 1]))
    n--;
  o->s = (str_ref){p, n};
  return true;
}

static bool f_trim(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  return trim_impl(a, o, true, true);
}

static bool f_ltrim(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  return trim_impl(a, o, true, false);
}

static bool f_rtrim(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  return trim_impl(a, o, false, true);
}

static bool f_replace(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  str_ref s = a[0].s, f = a[1].s;
  str_ref r = call->nargs > 2 ? a[2].s : (str_ref){"", 0};
  if (f.len == 0) {
    o->s = s;
    return true;
  }
  size_t count = 0;
  const char *p = s.ptr;
  const char *end = s.ptr + s.len;
  /* counting stops once the result is known to pass the value limit */
  size_t grow = r.len > f.len ? r.len - f.len : 0;
  while ((p = memmem(p, (size_t)(end - p), f.ptr, f.len)) != NULL) {
    count++;
    p += f.len;
    if (grow > 0 && sat_add(s.len, sat_mul(count, grow)) > SQL_VALUE_MAX)
      return size_fail(c, ERR_INVALID,
                       "replace: result of more than %llu bytes exceeds the %u MiB value limit",
                       (unsigned long long)sat_add(s.len, sat_mul(count, grow)),
                       SQL_VALUE_MAX >> 20);
  }
  if (count == 0) {
    o->s = s;
    return true;
  }
  uint64_t n = sat_add(s.len - count * f.len, sat_mul(count, r.len));
  char *d = sql__fn_out_alloc(c, "replace", n);
  if (d == NULL)
    return false;
  size_t w = 0;
  p = s.ptr;
  const char *q;
  while ((q = memmem(p, (size_t)(end - p), f.ptr, f.len)) != NULL) {
    memcpy(d + w, p, (size_t)(q - p));
    w += (size_t)(q - p);
    if (r.len)
      memcpy(d + w, r.ptr, r.len);
    w += r.len;
    p = q + f.len;
  }
  memcpy(d + w, p, (size_t)(end - p));
  w += (size_t)(end - p);
  o->s = (str_ref){d, w};
  return true;
}

static bool f_split_part(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  str_ref s = a[0].s, d = a[1].s;
  int64_t idx = a[2].i;
  if (idx < 1)
    return rt_fail(c, "split_part index must be positive%s", "");
  if (d.len == 0) {
    if (idx == 1) {
      o->s = s;
      return true;
    }
    return false;
  }
  const char *p = s.ptr;
  const char *end = s.ptr + s.len;
  for (int64_t k = 1;; k++) {
    const char *q = memmem(p, (size_t)(end - p), d.ptr, d.len);
    if (k == idx) {
      o->s = (str_ref){p, q == NULL ? (size_t)(end - p) : (size_t)(q - p)};
      return true;
    }
    if (q == NULL)
      return false;
    p = q + d.len;
  }
}

static bool f_strpos(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  if (a[1].s.len == 0) {
    o->i = 1;
    return true;
  }
  const char *q = memmem(a[0].s.ptr, a[0].s.len, a[1].s.ptr, a[1].s.len);
  o->i = q == NULL ? 0 : u8count(a[0].s.ptr, (size_t)(q - a[0].s.ptr)) + 1;
  return true;
}

static bool f_starts_with(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->i = a[0].s.len >= a[1].s.len && memcmp(a[0].s.ptr, a[1].s.ptr, a[1].s.len) == 0;
  return true;
}

static bool f_ends_with(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->i = a[0].s.len >= a[1].s.len &&
         memcmp(a[0].s.ptr + a[0].s.len - a[1].s.len, a[1].s.ptr, a[1].s.len) == 0;
  return true;
}

static bool f_reverse(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  str_ref s = a[0].s;
  char *d = sql__fn_out_alloc(c, "reverse", s.len);
  if (d == NULL)
    return false;
  size_t i = 0;
  while (i < s.len) {
    size_t l = u8len((unsigned char)s.ptr[i]);
    if (i + l > s.len)
      l = s.len - i;
    memcpy(d + s.len - i - l, s.ptr + i, l);
    i += l;
  }
  o->s = (str_ref){d, s.len};
  return true;
}

static bool pad(fn_ctx *c, const value *a, value *o, bool left)
{
  const char *fname = left ? "lpad" : "rpad";
  str_ref s = a[0].s, p = a[2].s;
  int64_t n = a[1].i;
  if (n < 0)
    return rt_fail(c, "%s: length must not be negative", fname);
  int64_t have = u8count(s.ptr, s.len);
  if (have >= n) {
    o->s = (str_ref){s.ptr, u8off(s.ptr, s.len, n)};
    return true;
  }
  if (p.len == 0)
    return rt_fail(c, "%s: padding string must not be empty", fname);
  int64_t need = n - have;
  int64_t pc = u8count(p.ptr, p.len);
  if (pc == 0)
    return rt_fail(c, "%s: padding string is not valid UTF-8", fname);
  /* the exact size: whole copies of p, then the first characters of one */
  uint64_t size = sat_add(s.len, sat_mul((uint64_t)(need / pc), u8off(p.ptr, p.len, pc)));
  size = sat_add(size, u8off(p.ptr, p.len, need % pc));
  char *d = sql__fn_out_alloc(c, fname, size);
  if (d == NULL)
    return false;
  size_t w = 0;
  if (!left) {
    memcpy(d, s.ptr, s.len);
    w = s.len;
  }
  int64_t k = 0;
  while (k < need) {
    int64_t take = need - k < pc ? need - k : pc;
    size_t bytes = u8off(p.ptr, p.len, take);
    memcpy(d + w, p.ptr, bytes);
    w += bytes;
    k += take;
  }
  if (left) {
    memcpy(d + w, s.ptr, s.len);
    w += s.len;
  }
  o->s = (str_ref){d, w};
  return true;
}

static bool f_lpad(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  return pad(c, a, o, true);
}

static bool f_rpad(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  return pad(c, a, o, false);
}

static bool f_chr(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  int64_t cp = a[0].i;
  char b[4];
  if (cp < 0 || cp > 0x10FFFF)
    return rt_fail(c, "not a valid Unicode code point%s", "");
  size_t n = utf8_encode(b, (uint32_t)cp);
  if (!out_copy(c, "chr", b, n, &o->s))
    return false;
  return true;
}

static bool f_codepoint(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  const unsigned char *s = (const unsigned char *)a[0].s.ptr;
  if (u8count(a[0].s.ptr, a[0].s.len) != 1)
    return rt_fail(c, "codepoint takes a string of one character%s", "");
  size_t l = u8len(s[0]);
  int64_t cp = l == 1 ? s[0] : s[0] & (0xFF >> (l + 1));
  for (size_t i = 1; i < l && i < a[0].s.len; i++)
    cp = (cp << 6) | (s[i] & 0x3F);
  o->i = cp;
  return true;
}

static bool f_typeof(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)a;
  char t[48];
  sql__stype_name(call->args[0]->type, t, sizeof t);
  return out_copy(c, "typeof", t, strlen(t), &o->s);
}

static int b_typeof(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  (void)q;
  (void)e;
  (void)pos;
  call->type = sql__st(SQL_VARCHAR);
  return 0;
}

/* ---- regular expressions (PCRE2) ---- */

typedef struct rx {
  pcre2_code *code;
} rx;

static void rx_free(void *p)
{
  rx *r = p;
  if (r == NULL)
    return;
  pcre2_code_free(r->code);
  free(r);
}

static rx *rx_compile(const char *p, size_t n, char *msg, size_t msgn)
{
  int ec;
  PCRE2_SIZE eo;
  pcre2_code *code = pcre2_compile((PCRE2_SPTR)p, n, PCRE2_UTF, &ec, &eo, NULL);
  if (code == NULL) {
    PCRE2_UCHAR tb[160];
    pcre2_get_error_message(ec, tb, sizeof tb);
    snprintf(msg, msgn, "invalid regular expression '%.*s': %s at offset %zu",
             (int)(n > 60 ? 60 : n), p, (char *)tb, (size_t)eo);
    return NULL;
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  rx *r = xcalloc(1, sizeof *r);
  r->code = code;
  return r;
}

/* The limits of one match (PCRE2's own defaults, but a heap of 64 MiB
 * instead of 20 GB, and a JIT stack of 1 MiB instead of 32 KiB). A match
 * that hits one fails the query (never a silent "no match"). */
#define RX_MATCH_LIMIT 10000000u
#define RX_DEPTH_LIMIT 10000000u
#define RX_HEAP_LIMIT_KIB (64u << 10)
#define RX_JIT_STACK_MAX (1u << 20)

typedef struct rx_scratch {
  pcre2_match_data *md;
  pcre2_match_context *mctx;
  pcre2_jit_stack *jit;
} rx_scratch;

void sql__func_scratch_free(fn_ctx *c)
{
  rx_scratch *x = c->scratch;
  if (x != NULL) {
    pcre2_match_data_free(x->md);
    pcre2_match_context_free(x->mctx);
    pcre2_jit_stack_free(x->jit);
    free(x);
    c->scratch = NULL;
  }
  sql__fn_ctx_reset(c);
}

static rx_scratch *rxs(fn_ctx *c)
{
  if (c->scratch == NULL) {
    rx_scratch *x = xcalloc(1, sizeof *x);
    x->md = pcre2_match_data_create(64, NULL);
    x->mctx = pcre2_match_context_create(NULL);
    if (x->md == NULL || x->mctx == NULL)
      mem_out_of_memory();
    pcre2_set_match_limit(x->mctx, RX_MATCH_LIMIT);
    pcre2_set_depth_limit(x->mctx, RX_DEPTH_LIMIT);
    pcre2_set_heap_limit(x->mctx, RX_HEAP_LIMIT_KIB);
    x->jit = pcre2_jit_stack_create(32 * 1024, RX_JIT_STACK_MAX, NULL);
    if (x->jit != NULL)
      pcre2_jit_stack_assign(x->mctx, NULL, x->jit);
    c->scratch = x;
  }
  return c->scratch;
}

static pcre2_match_data *md(fn_ctx *c)
{
  return rxs(c)->md;
}

/* pcre2_match under the limits: >= 0 a match, PCRE2_ERROR_NOMATCH, or
 * another negative code after failing the query with a message naming
 * the function (a limit hit, a subject that is not UTF-8) */
static int rx_match(fn_ctx *c, const char *fname, const pcre2_code *code, str_ref s, size_t off,
                    uint32_t opts)
{
  rx_scratch *x = rxs(c);
  int rc = pcre2_match(code, (PCRE2_SPTR)s.ptr, s.len, off, opts, x->md, x->mctx);
  if (rc >= 0 || rc == PCRE2_ERROR_NOMATCH)
    return rc;
  PCRE2_UCHAR msg[160];
  pcre2_get_error_message(rc, msg, sizeof msg);
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
      rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
    rt_fail(c, "%s: the pattern needs too much backtracking on a value of %zu bytes (%s); "
               "simplify the pattern", fname, s.len, (char *)msg);
  else
    rt_fail(c, "%s: %s", fname, (char *)msg);
  return rc == PCRE2_ERROR_NOMATCH ? PCRE2_ERROR_INTERNAL : rc;
}

/* the compiled pattern of argument 1: constant (compiled at bind) or per row */
static rx *rx_get(fn_ctx *c, const bexpr *call, const value *a, bool *tmp)
{
  *tmp = false;
  if (call->fstate != NULL)
    return call->fstate;
  char msg[256];
  rx *r = rx_compile(a[1].s.ptr, a[1].s.len, msg, sizeof msg);
  if (r == NULL) {
    rt_fail(c, "%s", msg);
    return NULL;
  }
  *tmp = true;
  return r;
}

static int b_regex(qctx *q, bexpr *call, err *e, sql_pos *pos, const char *sig)
{
  int rc = bind_sig(q, call, sig, e, pos);
  if (rc < 0)
    return rc;
  bexpr *p = call->args[1];
  if (p->kind == BX_CONST && !p->v.null) {
    char msg[256];
    rx *r = rx_compile(p->v.s.ptr, p->v.s.len, msg, sizeof msg);
    if (r == NULL)
      return sql__error_at(e, pos, p->line, p->col, "%s", msg);
    call->fstate = r;
    sql__exec_defer(q, rx_free, r);
  }
  return 0;
}

static int b_regexp_like(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  return b_regex(q, call, e, pos, "S,S>B");
}

static int b_regexp_extract(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  return b_regex(q, call, e, pos, "S,S,I>S");
}

static int b_regexp_replace(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  return b_regex(q, call, e, pos, "S,S,S>S");
}

static int b_regexp_count(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  return b_regex(q, call, e, pos, "S,S>I");
}

static bool f_regexp_like(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  bool tmp;
  rx *r = rx_get(c, call, a, &tmp);
  if (r == NULL)
    return false;
  int rc = rx_match(c, "regexp_like", r->code, a[0].s, 0, 0);
  o->i = rc >= 0;
  if (tmp)
    rx_free(r);
  return rc >= 0 || rc == PCRE2_ERROR_NOMATCH;
}

static bool f_regexp_count(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  bool tmp;
  rx *r = rx_get(c, call, a, &tmp);
  if (r == NULL)
    return false;
  int64_t n = 0;
  size_t off = 0;
  int rc = 0;
  while (off <= a[0].s.len) {
    /* the subject's UTF-8 is checked by the first call only: checking it
       again at every match would make the count quadratic */
    rc = rx_match(c, "regexp_count", r->code, a[0].s, off, n > 0 ? PCRE2_NO_UTF_CHECK : 0);
    if (rc < 0)
      break;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md(c));
    n++;
    /* after an empty match, on by one character (not into its middle) */
    off = ov[1] > ov[0] ? ov[1]
          : ov[1] < a[0].s.len ? ov[1] + u8len((unsigned char)a[0].s.ptr[ov[1]])
                               : ov[1] + 1;
  }
  o->i = n;
  if (tmp)
    rx_free(r);
  return rc >= 0 || rc == PCRE2_ERROR_NOMATCH;
}

static bool f_regexp_extract(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  bool tmp;
  rx *r = rx_get(c, call, a, &tmp);
  if (r == NULL)
    return false;
  int64_t g = call->nargs > 2 ? a[2].i : 0;
  uint32_t ngroups = 0;
  pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &ngroups);
  if (g < 0 || g > (int64_t)ngroups) {
    if (tmp)
      rx_free(r);
    return rt_fail(c, "regexp_extract: pattern has no group %s", "of that number");
  }
  int rc = rx_match(c, "regexp_extract", r->code, a[0].s, 0, 0);
  bool ok = false;
  if (rc >= 0) {
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md(c));
    if (ov[2 * g] != PCRE2_UNSET) {
      o->s = (str_ref){a[0].s.ptr + ov[2 * g], ov[2 * g + 1] - ov[2 * g]};
      ok = true;
    }
  }
  if (tmp)
    rx_free(r);
  return ok;
}

static bool f_regexp_replace(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  bool tmp;
  rx *r = rx_get(c, call, a, &tmp);
  if (r == NULL)
    return false;
  str_ref rep = call->nargs > 2 ? a[2].s : (str_ref){"", 0};
  /* a first guess; PCRE2 tells the size when it is too small. Past
     SQL_VALUE_MAX, sql__fn_out_alloc fails the query. */
  uint64_t outlen = sat_add(sat_add(sat_mul(a[0].s.len, 2), sat_mul(rep.len, 4)), 64);
  if (outlen > SQL_VALUE_MAX)
    outlen = SQL_VALUE_MAX;
  rx_scratch *x = rxs(c);
  for (int attempt = 0; attempt < 4; attempt++) {
    char *tb = sql__fn_out_alloc(c, "regexp_replace", outlen);
    if (tb == NULL)
      break;
    PCRE2_SIZE len = outlen + 1;
    int rc = pcre2_substitute(r->code, (PCRE2_SPTR)a[0].s.ptr, a[0].s.len, 0,
                              PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, x->md,
                              x->mctx, (PCRE2_SPTR)rep.ptr, rep.len, (PCRE2_UCHAR *)tb, &len);
    if (rc >= 0) {
      o->s = (str_ref){tb, len};
      if (tmp)
        rx_free(r);
      return true;
    }
    if (rc == PCRE2_ERROR_NOMEMORY) {
      outlen = len > 0 ? len - 1 : 0; /* len: the size needed, with the terminator */
      continue;
    }
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(rc, msg, sizeof msg);
    if (tmp)
      rx_free(r);
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
      return rt_fail(c, "regexp_replace: the pattern needs too much backtracking on a value "
                        "of %zu bytes (%s); simplify the pattern", a[0].s.len, (char *)msg);
    return rt_fail(c, "regexp_replace: %s", (char *)msg);
  }
  if (tmp)
    rx_free(r);
  if (c->q != NULL && atomic_load(&c->q->failed))
    return false;
  return rt_fail(c, "regexp_replace: result too large%s", "");
}

/* ---- URLs and JSON ---- */

static bool url_parts(str_ref u, str_ref *proto, str_ref *host, str_ref *path, str_ref *query)
{
  const char *p = u.ptr;
  const char *end = u.ptr + u.len;
  const char *sep = memmem(p, u.len, "://", 3);
  *proto = (str_ref){"", 0};
  *host = (str_ref){"", 0};
  if (sep != NULL) {
    *proto = (str_ref){p, (size_t)(sep - p)};
    p = sep + 3;
    const char *h = p;
    while (p < end && *p != '/' && *p != '?' && *p != '#')
      p++;
    const char *hs = h;
    const char *at = memchr(h, '@', (size_t)(p - h));
    if (at != NULL)
      hs = at + 1;
    const char *he = p;
    const char *colon = memrchr(hs, ':', (size_t)(he - hs));
    if (colon != NULL)
      he = colon;
    *host = (str_ref){hs, (size_t)(he - hs)};
  }
  const char *ps = p;
  while (p < end && *p != '?' && *p != '#')
    p++;
  *path = (str_ref){ps, (size_t)(p - ps)};
  *query = (str_ref){"", 0};
  if (p < end && *p == '?') {
    const char *qs = ++p;
    while (p < end && *p != '#')
      p++;
    *query = (str_ref){qs, (size_t)(p - qs)};
  }
  return true;
}

static bool f_url_host(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  str_ref pr, h, pa, q;
  url_parts(a[0].s, &pr, &h, &pa, &q);
  o->s = h;
  return true;
}

static bool f_url_path(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  str_ref pr, h, pa, q;
  url_parts(a[0].s, &pr, &h, &pa, &q);
  o->s = pa;
  return true;
}

static bool f_url_protocol(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  str_ref pr, h, pa, q;
  url_parts(a[0].s, &pr, &h, &pa, &q);
  o->s = pr;
  return true;
}

static bool f_url_query(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  str_ref pr, h, pa, q;
  url_parts(a[0].s, &pr, &h, &pa, &q);
  o->s = q;
  return true;
}

static bool f_url_param(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  str_ref pr, h, pa, q;
  url_parts(a[0].s, &pr, &h, &pa, &q);
  const char *p = q.ptr;
  const char *end = q.ptr + q.len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *pe = amp != NULL ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(pe - p));
    const char *ke = eq != NULL ? eq : pe;
    if ((size_t)(ke - p) == a[1].s.len && memcmp(p, a[1].s.ptr, a[1].s.len) == 0) {
      o->s = eq != NULL ? (str_ref){eq + 1, (size_t)(pe - eq - 1)} : (str_ref){"", 0};
      return true;
    }
    p = pe + 1;
  }
  return false;
}

/* $.a.b[0] / $["a"] */
static json_t *json_path(json_t *root, const char *p, size_t n)
{
  size_t i = 0;
  if (i < n && p[i] == '$')
    i++;
  json_t *cur = root;
  while (i < n && cur != NULL) {
    if (p[i] == '.') {
      i++;
      size_t s = i;
      while (i < n && p[i] != '.' && p[i] != '[')
        i++;
      char key[256];
      size_t kl = i - s < sizeof key - 1 ? i - s : sizeof key - 1;
      memcpy(key, p + s, kl);
      key[kl] = '\0';
      cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
    } else if (p[i] == '[') {
      i++;
      if (i < n && (p[i] == '"' || p[i] == '\'')) {
        char q = p[i++];
        size_t s = i;
        while (i < n && p[i] != q)
          i++;
        char key[256];
        size_t kl = i - s < sizeof key - 1 ? i - s : sizeof key - 1;
        memcpy(key, p + s, kl);
        key[kl] = '\0';
        i++;
        cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
      } else {
        long idx = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9')
          idx = idx * 10 + (p[i++] - '0');
        cur = json_is_array(cur) ? json_array_get(cur, (size_t)idx) : NULL;
      }
      if (i < n && p[i] == ']')
        i++;
      else
        return NULL;
    } else {
      return NULL;
    }
  }
  return cur;
}

static bool json_common(fn_ctx *c, const value *a, value *o, bool scalar)
{
  json_error_t je;
  json_t *root = json_loadb(a[0].s.ptr, a[0].s.len, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK,
                            &je);
  if (root == NULL)
    return false;
  json_t *v = json_path(root, a[1].s.ptr, a[1].s.len);
  bool ok = false;
  if (v != NULL) {
    if (scalar) {
      if (json_is_string(v)) {
        ok = out_copy(c, scalar ? "json_extract_scalar" : "json_extract",
                      json_string_value(v), json_string_length(v), &o->s);
      } else if (json_is_integer(v) || json_is_real(v) || json_is_boolean(v)) {
        char *t = json_dumps(v, JSON_ENCODE_ANY);
        if (t != NULL) {
          ok = out_copy(c, "json_extract_scalar", t, strlen(t), &o->s);
          free(t);
        }
      }
    } else {
      char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
      if (t != NULL) {
        ok = out_copy(c, "json_extract", t, strlen(t), &o->s);
        free(t);
      }
    }
  }
  json_decref(root);
  return ok;
}

static bool f_json_extract_scalar(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  return json_common(c, a, o, true);
}

static bool f_json_extract(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  return json_common(c, a, o, false);
}

static bool f_json_array_length(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  json_error_t je;
  json_t *root = json_loadb(a[0].s.ptr, a[0].s.len, JSON_DECODE_ANY, &je);
  if (root == NULL)
    return false;
  bool ok = json_is_array(root);
  if (ok)
    o->i = (int64_t)json_array_size(root);
  json_decref(root);
  return ok;
}

/* ---- math ---- */

static int b_numeric_same(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  (void)q;
  bexpr *a = call->args[0];
  if (a->type.t == SQL_NULL)
    call->args[0] = a = sql__bind_cast(q, a, sql__st(SQL_DOUBLE));
  if (!sql__stype_numeric(a->type.t)) {
    char t[48];
    return sql__error_at(e, pos, a->line, a->col, "function '%s' expects a number, got %s",
                        call->fn->name, sql__stype_name(a->type, t, sizeof t));
  }
  call->type = a->type;
  if (call->nargs > 1) {
    int rc = sql__bind_coerce(q, &call->args[1], sql__st(SQL_BIGINT), "round", e, pos);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int64_t ipow10(int k)
{
  int64_t p = 1;
  while (k-- > 0)
    p *= 10;
  return p;
}

static bool f_abs(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  if (call->type.t == SQL_DOUBLE) {
    o->f = fabs(a[0].f);
    return true;
  }
  if (a[0].i == INT64_MIN)
    return rt_fail(c, "numeric overflow in abs%s", "");
  o->i = a[0].i < 0 ? -a[0].i : a[0].i;
  return true;
}

static double round_half_away(double x)
{
  return x < 0 ? -floor(-x + 0.5) : floor(x + 0.5);
}

static bool f_round(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  int64_t d = call->nargs > 1 ? a[1].i : 0;
  if (call->type.t == SQL_DOUBLE) {
    if (isnan(a[0].f) || isinf(a[0].f)) {
      o->f = a[0].f;
      return true;
    }
    if (d > 15) {
      o->f = a[0].f;
      return true;
    }
    double m = pow(10.0, (double)d);
    double r = round_half_away(a[0].f * m) / m;
    /* guard against x.5 artifacts from the multiplication */
    o->f = isfinite(r) ? r : a[0].f;
    return true;
  }
  int scale = call->type.t == SQL_DECIMAL ? call->type.scale : 0;
  int64_t v = a[0].i;
  int drop = scale - (int)d;
  if (drop <= 0) {
    o->i = v;
    return true;
  }
  if (drop > 18) {
    o->i = 0;
    return true;
  }
  int64_t p = ipow10(drop);
  int64_t q = v / p;
  int64_t rem = v % p;
  if ((rem < 0 ? -rem : rem) * 2 >= p)
    q += v < 0 ? -1 : 1;
  o->i = q * p;
  return true;
}

static bool f_floor(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  if (call->type.t == SQL_DOUBLE) {
    o->f = floor(a[0].f);
    return true;
  }
  if (call->type.t == SQL_DECIMAL) {
    int64_t p = ipow10(call->type.scale);
    o->i = floordiv(a[0].i, p) * p;
    return true;
  }
  o->i = a[0].i;
  return true;
}

static bool f_ceil(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  if (call->type.t == SQL_DOUBLE) {
    o->f = ceil(a[0].f);
    return true;
  }
  if (call->type.t == SQL_DECIMAL) {
    int64_t p = ipow10(call->type.scale);
    o->i = -floordiv(-a[0].i, p) * p;
    return true;
  }
  o->i = a[0].i;
  return true;
}

static bool f_sign(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  if (call->type.t == SQL_DOUBLE) {
    o->f = a[0].f > 0 ? 1.0 : a[0].f < 0 ? -1.0 : a[0].f;
    return true;
  }
  int64_t one = call->type.t == SQL_DECIMAL ? ipow10(call->type.scale) : 1;
  o->i = a[0].i > 0 ? one : a[0].i < 0 ? -one : 0;
  return true;
}

static bool f_sqrt(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->f = sqrt(a[0].f);
  return true;
}

static bool f_ln(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->f = log(a[0].f);
  return true;
}

static bool f_log10(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->f = log10(a[0].f);
  return true;
}

static bool f_log2(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->f = log2(a[0].f);
  return true;
}

static bool f_exp(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->f = exp(a[0].f);
  return true;
}

static bool f_power(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->f = pow(a[0].f, a[1].f);
  return true;
}

static bool f_pi(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  (void)a;
  o->f = M_PI;
  return true;
}

static bool f_is_nan(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->i = isnan(a[0].f);
  return true;
}

static bool f_is_finite(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->i = isfinite(a[0].f);
  return true;
}

static int b_mod(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  bexpr *a = call->args[0], *b = call->args[1];
  if (!sql__stype_numeric(a->type.t) || !sql__stype_numeric(b->type.t)) {
    char t[48];
    bexpr *bad = sql__stype_numeric(a->type.t) ? b : a;
    return sql__error_at(e, pos, bad->line, bad->col, "function 'mod' expects numbers, got %s",
                        sql__stype_name(bad->type, t, sizeof t));
  }
  if (a->type.t == SQL_DOUBLE || b->type.t == SQL_DOUBLE || a->type.t == SQL_DECIMAL ||
      b->type.t == SQL_DECIMAL) {
    call->args[0] = sql__bind_cast(q, a, sql__st(SQL_DOUBLE));
    call->args[1] = sql__bind_cast(q, b, sql__st(SQL_DOUBLE));
    call->type = sql__st(SQL_DOUBLE);
  } else {
    call->args[0] = sql__bind_cast(q, a, sql__st(SQL_BIGINT));
    call->args[1] = sql__bind_cast(q, b, sql__st(SQL_BIGINT));
    call->type = sql__st(SQL_BIGINT);
  }
  return 0;
}

static bool f_mod(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  if (call->type.t == SQL_DOUBLE) {
    o->f = fmod(a[0].f, a[1].f);
    return true;
  }
  if (a[1].i == 0)
    return rt_fail(c, "division by zero%s", "");
  o->i = a[1].i == -1 ? 0 : a[0].i % a[1].i;
  return true;
}

static int b_greatest(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  stype t = call->args[0]->type;
  for (int i = 1; i < call->nargs; i++) {
    stype u = call->args[i]->type;
    if (t.t == SQL_NULL) {
      t = u;
      continue;
    }
    if (u.t == SQL_NULL || (u.t == t.t && u.scale == t.scale))
      continue;
    if (sql__stype_numeric(t.t) && sql__stype_numeric(u.t)) {
      if (t.t == SQL_DOUBLE || u.t == SQL_DOUBLE || t.t == SQL_DECIMAL || u.t == SQL_DECIMAL)
        t = sql__st(SQL_DOUBLE);
      else
        t = sql__st(SQL_BIGINT);
      continue;
    }
    if ((t.t == SQL_DATE || t.t == SQL_TIMESTAMP) && (u.t == SQL_DATE || u.t == SQL_TIMESTAMP)) {
      t = sql__st(SQL_TIMESTAMP);
      continue;
    }
    char t1[48], t2[48];
    return sql__error_at(e, pos, call->args[i]->line, call->args[i]->col,
                        "function '%s' arguments have different types: %s and %s",
                        call->fn->name, sql__stype_name(t, t1, sizeof t1), sql__stype_name(u, t2, sizeof t2));
  }
  if (t.t == SQL_NULL)
    t = sql__st(SQL_VARCHAR);
  for (int i = 0; i < call->nargs; i++)
    call->args[i] = sql__bind_cast(q, call->args[i], t);
  call->type = t;
  return 0;
}

static bool greatest_impl(const bexpr *call, const value *a, value *o, int sign)
{
  int phys = sql__phys(call->type.t);
  value best = a[0];
  for (int i = 0; i < call->nargs; i++) {
    if (a[i].null)
      return false; /* Presto: any NULL gives NULL */
    if (i > 0 && sql__value_cmp(phys, a[i], best) * sign > 0)
      best = a[i];
  }
  *o = best;
  return true;
}

static bool f_greatest(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  return greatest_impl(call, a, o, 1);
}

static bool f_least(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  return greatest_impl(call, a, o, -1);
}

/* ---- dates and times ---- */

static int64_t iso_dow(int64_t days)
{
  /* 1970-01-01 was a Thursday (ISO 4) */
  int64_t w = (days + 3) % 7;
  if (w < 0)
    w += 7;
  return w + 1;
}

static bool f_datepart(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  int64_t us = ts_of(call, 0, a[0]);
  int64_t y, tod;
  unsigned m, d;
  civil(us, &y, &m, &d, &tod);
  const char *n = call->fn->name;
  int64_t days = floordiv(us, US_PER_DAY);
  if (!strcmp(n, "year"))
    o->i = y;
  else if (!strcmp(n, "month"))
    o->i = m;
  else if (!strcmp(n, "day") || !strcmp(n, "day_of_month"))
    o->i = d;
  else if (!strcmp(n, "hour"))
    o->i = tod / 3600000000LL;
  else if (!strcmp(n, "minute"))
    o->i = tod / 60000000LL % 60;
  else if (!strcmp(n, "second"))
    o->i = tod / 1000000 % 60;
  else if (!strcmp(n, "millisecond"))
    o->i = tod / 1000 % 1000;
  else if (!strcmp(n, "quarter"))
    o->i = (m - 1) / 3 + 1;
  else if (!strcmp(n, "day_of_week") || !strcmp(n, "dow"))
    o->i = iso_dow(days);
  else if (!strcmp(n, "day_of_year") || !strcmp(n, "doy"))
    o->i = days - fmt_days_from_civil(y, 1, 1) + 1;
  else if (!strcmp(n, "week") || !strcmp(n, "week_of_year")) {
    /* ISO week: the week with the year's first Thursday is week 1 */
    int64_t thursday = days - iso_dow(days) + 4;
    int64_t ty;
    unsigned tm, td;
    fmt_civil_from_days(thursday, &ty, &tm, &td);
    o->i = (thursday - fmt_days_from_civil(ty, 1, 1)) / 7 + 1;
  } else if (!strcmp(n, "year_of_week")) {
    int64_t thursday = days - iso_dow(days) + 4;
    int64_t ty;
    unsigned tm, td;
    fmt_civil_from_days(thursday, &ty, &tm, &td);
    o->i = ty;
  } else
    return false;
  return true;
}

static int b_unit_first(qctx *q, bexpr *call, err *e, sql_pos *pos, const char *sig)
{
  int rc = bind_sig(q, call, sig, e, pos);
  if (rc < 0)
    return rc;
  bexpr *u = call->args[0];
  if (u->kind == BX_CONST && !u->v.null) {
    static const char *const units[] = {"millisecond", "second", "minute", "hour", "day",
                                        "week", "month", "quarter", "year", NULL};
    bool ok = false;
    for (int k = 0; units[k]; k++)
      if (u->v.s.len == strlen(units[k]) && strncasecmp(u->v.s.ptr, units[k], u->v.s.len) == 0)
        ok = true;
    if (!ok)
      return sql__error_at(e, pos, u->line, u->col, "'%.*s' is not a valid time unit",
                          (int)u->v.s.len, u->v.s.ptr);
  }
  return 0;
}

static int unit_of(str_ref s)
{
  static const char *const units[] = {"millisecond", "second", "minute", "hour", "day",
                                      "week", "month", "quarter", "year", NULL};
  for (int k = 0; units[k]; k++)
    if (s.len == strlen(units[k]) && strncasecmp(s.ptr, units[k], s.len) == 0)
      return k;
  return -1;
}

enum { U_MS, U_SEC, U_MIN, U_HOUR, U_DAY, U_WEEK, U_MONTH, U_QUARTER, U_YEAR };

static int b_date_trunc(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  int rc = b_unit_first(q, call, e, pos, "S,T>T");
  if (rc < 0)
    return rc;
  call->type = call->args[1]->type;
  return 0;
}

static bool f_date_trunc(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  int u = unit_of(a[0].s);
  if (u < 0)
    return rt_fail(c, "'%s' is not a valid time unit", "?");
  bool is_date = call->args[1]->type.t == SQL_DATE;
  int64_t us = ts_of(call, 1, a[1]);
  int64_t y, tod;
  unsigned m, d;
  civil(us, &y, &m, &d, &tod);
  int64_t days = floordiv(us, US_PER_DAY);
  int64_t r;
  switch (u) {
  case U_MS: r = floordiv(us, 1000) * 1000; break;
  case U_SEC: r = floordiv(us, 1000000) * 1000000; break;
  case U_MIN: r = floordiv(us, 60000000) * 60000000; break;
  case U_HOUR: r = floordiv(us, 3600000000LL) * 3600000000LL; break;
  case U_DAY: r = days * US_PER_DAY; break;
  case U_WEEK: r = (days - (iso_dow(days) - 1)) * US_PER_DAY; break;
  case U_MONTH: r = fmt_days_from_civil(y, m, 1) * US_PER_DAY; break;
  case U_QUARTER: r = fmt_days_from_civil(y, (m - 1) / 3 * 3 + 1, 1) * US_PER_DAY; break;
  default: r = fmt_days_from_civil(y, 1, 1) * US_PER_DAY; break;
  }
  o->i = is_date ? floordiv(r, US_PER_DAY) : r;
  return true;
}

/* Years a timestamp (int64 microseconds) can hold, with a margin. */
#define YEARS_MAX 290000

/* us plus a number of months (the day clamped to the new month's last);
 * false when the result is past YEARS_MAX. */
static bool add_months(int64_t us, int64_t months, int64_t *out)
{
  int64_t y, tod;
  unsigned m, d;
  civil(us, &y, &m, &d, &tod);
  if (months > 12 * (int64_t)YEARS_MAX * 2 || months < -12 * (int64_t)YEARS_MAX * 2)
    return false;
  int64_t total = y * 12 + (m - 1) + months;
  int64_t ny = floordiv(total, 12);
  if (ny > YEARS_MAX || ny < -YEARS_MAX)
    return false;
  unsigned nm = (unsigned)(total - ny * 12) + 1;
  static const unsigned md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  unsigned maxd = md[nm - 1] + (nm == 2 && ((ny % 4 == 0 && ny % 100 != 0) || ny % 400 == 0));
  if (d > maxd)
    d = maxd;
  *out = fmt_days_from_civil(ny, nm, d) * US_PER_DAY + tod;
  return true;
}

static int b_date_add(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  int rc = b_unit_first(q, call, e, pos, "S,I,T>T");
  if (rc < 0)
    return rc;
  call->type = call->args[2]->type;
  return 0;
}

static bool f_date_add(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  int u = unit_of(a[0].s);
  if (u < 0)
    return rt_fail(c, "not a valid time unit%s", "");
  bool is_date = call->args[2]->type.t == SQL_DATE;
  int64_t us = ts_of(call, 2, a[2]);
  int64_t n = a[1].i;
  static const int64_t mul[] = {1000, 1000000, 60000000, 3600000000LL, US_PER_DAY,
                                7 * US_PER_DAY};
  int64_t r, step;
  bool ok;
  if (u <= U_WEEK)
    ok = !__builtin_mul_overflow(n, mul[u], &step) && !__builtin_add_overflow(us, step, &r);
  else
    ok = !__builtin_mul_overflow(n, u == U_MONTH ? 1 : u == U_QUARTER ? 3 : 12, &step) &&
         add_months(us, step, &r);
  if (!ok)
    return rt_fail(c, "date_add: the result is out of range%s", "");
  o->i = is_date ? floordiv(r, US_PER_DAY) : r;
  return true;
}

static int b_date_diff(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  int rc = b_unit_first(q, call, e, pos, "S,T,T>I");
  if (rc < 0)
    return rc;
  return 0;
}

static bool f_date_diff(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  int u = unit_of(a[0].s);
  if (u < 0)
    return rt_fail(c, "not a valid time unit%s", "");
  int64_t x = ts_of(call, 1, a[1]);
  int64_t y = ts_of(call, 2, a[2]);
  static const int64_t mul[] = {1000, 1000000, 60000000, 3600000000LL, US_PER_DAY,
                                7 * US_PER_DAY};
  if (u <= U_WEEK) {
    int64_t diff;
    if (__builtin_sub_overflow(y, x, &diff))
      return rt_fail(c, "date_diff: the difference is out of range%s", "");
    o->i = diff / mul[u];
    return true;
  }
  int64_t y1, t1, y2, t2;
  unsigned m1, d1, m2, d2;
  civil(x, &y1, &m1, &d1, &t1);
  civil(y, &y2, &m2, &d2, &t2);
  int64_t months = (y2 - y1) * 12 + ((int64_t)m2 - (int64_t)m1);
  /* complete months only */
  if (months > 0 && (d2 < d1 || (d2 == d1 && t2 < t1)))
    months--;
  else if (months < 0 && (d2 > d1 || (d2 == d1 && t2 > t1)))
    months++;
  o->i = u == U_MONTH ? months : u == U_QUARTER ? months / 3 : months / 12;
  return true;
}

static bool f_current_date(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  (void)a;
  o->i = floordiv(c->now_us, US_PER_DAY);
  return true;
}

static bool f_now(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  (void)a;
  o->i = c->now_us;
  return true;
}

static bool f_from_unixtime(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  if (isnan(a[0].f) || fabs(a[0].f) > 9.2e12)
    return false;
  o->i = (int64_t)llround(a[0].f * 1e6);
  return true;
}

static bool f_to_unixtime(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  o->f = (double)ts_of(call, 0, a[0]) / 1e6;
  return true;
}

static int b_date(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  bexpr *a = call->args[0];
  if (a->type.t != SQL_VARCHAR && a->type.t != SQL_TIMESTAMP && a->type.t != SQL_DATE &&
      a->type.t != SQL_NULL) {
    char t[48];
    return sql__error_at(e, pos, a->line, a->col, "function 'date' expects varchar or "
                        "timestamp, got %s", sql__stype_name(a->type, t, sizeof t));
  }
  call->args[0] = sql__bind_cast(q, a, sql__st(SQL_DATE));
  call->type = sql__st(SQL_DATE);
  return 0;
}

static bool f_identity(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  *o = a[0];
  return true;
}

/* MySQL-style format (Presto's date_format) */
static bool f_date_format(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  int64_t us = ts_of(call, 0, a[0]);
  int64_t y, tod;
  unsigned m, d;
  civil(us, &y, &m, &d, &tod);
  static const char *const mon[] = {"January", "February", "March", "April", "May", "June",
                                    "July", "August", "September", "October", "November",
                                    "December"};
  static const char *const wd[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                   "Saturday", "Sunday"};
  str_ref f = a[1].s;
  /* a specifier (two bytes of f) writes at most 24 bytes */
  char *tb = sql__fn_out_alloc(c, "date_format", sat_add(sat_mul(f.len, 12), 32));
  if (tb == NULL)
    return false;
  size_t w = 0;
  int64_t days = floordiv(us, US_PER_DAY);
  for (size_t i = 0; i < f.len; i++) {
    if (f.ptr[i] != '%' || i + 1 >= f.len) {
      tb[w++] = f.ptr[i];
      continue;
    }
    char s = f.ptr[++i];
    int hh = (int)(tod / 3600000000LL);
    switch (s) {
    case 'Y': w += (size_t)sprintf(tb + w, "%04lld", (long long)y); break;
    case 'y': w += (size_t)sprintf(tb + w, "%02lld", (long long)(y % 100)); break;
    case 'm': w += (size_t)sprintf(tb + w, "%02u", m); break;
    case 'c': w += (size_t)sprintf(tb + w, "%u", m); break;
    case 'd': w += (size_t)sprintf(tb + w, "%02u", d); break;
    case 'e': w += (size_t)sprintf(tb + w, "%u", d); break;
    case 'H': w += (size_t)sprintf(tb + w, "%02d", hh); break;
    case 'k': w += (size_t)sprintf(tb + w, "%d", hh); break;
    case 'h':
    case 'I': w += (size_t)sprintf(tb + w, "%02d", hh % 12 == 0 ? 12 : hh % 12); break;
    case 'l': w += (size_t)sprintf(tb + w, "%d", hh % 12 == 0 ? 12 : hh % 12); break;
    case 'i': w += (size_t)sprintf(tb + w, "%02d", (int)(tod / 60000000 % 60)); break;
    case 's':
    case 'S': w += (size_t)sprintf(tb + w, "%02d", (int)(tod / 1000000 % 60)); break;
    case 'f': w += (size_t)sprintf(tb + w, "%06d", (int)(tod % 1000000)); break;
    case 'p': w += (size_t)sprintf(tb + w, "%s", hh < 12 ? "AM" : "PM"); break;
    case 'M': w += (size_t)sprintf(tb + w, "%s", mon[m - 1]); break;
    case 'b': w += (size_t)sprintf(tb + w, "%.3s", mon[m - 1]); break;
    case 'W': w += (size_t)sprintf(tb + w, "%s", wd[iso_dow(days) - 1]); break;
    case 'a': w += (size_t)sprintf(tb + w, "%.3s", wd[iso_dow(days) - 1]); break;
    case 'j':
      w += (size_t)sprintf(tb + w, "%03lld",
                           (long long)(days - fmt_days_from_civil(y, 1, 1) + 1));
      break;
    case 'T':
      w += (size_t)sprintf(tb + w, "%02d:%02d:%02d", hh, (int)(tod / 60000000 % 60),
                           (int)(tod / 1000000 % 60));
      break;
    case '%': tb[w++] = '%'; break;
    default: tb[w++] = s; break;
    }
  }
  o->s = (str_ref){tb, w};
  return true;
}

/* date_parse(string, format): the same specifiers */
static bool f_date_parse(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  str_ref s = a[0].s, f = a[1].s;
  int64_t y = 1970;
  int mo = 1, d = 1, hh = 0, mi = 0, ss = 0, frac = 0;
  bool pm = false, has_p = false;
  size_t i = 0;
  for (size_t k = 0; k < f.len; k++) {
    if (f.ptr[k] != '%' || k + 1 >= f.len) {
      if (i >= s.len || s.ptr[i] != f.ptr[k])
        return rt_fail(c, "date_parse: the value does not match the format%s", "");
      i++;
      continue;
    }
    char spec = f.ptr[++k];
    int maxd = spec == 'Y' ? 4 : spec == 'f' ? 6 : 2;
    if (spec == 'p') {
      if (i + 2 > s.len)
        return rt_fail(c, "date_parse: the value does not match the format%s", "");
      pm = (s.ptr[i] == 'P' || s.ptr[i] == 'p');
      has_p = true;
      i += 2;
      continue;
    }
    int64_t v = 0;
    int nd = 0;
    while (i < s.len && nd < maxd && s.ptr[i] >= '0' && s.ptr[i] <= '9') {
      v = v * 10 + (s.ptr[i++] - '0');
      nd++;
    }
    if (nd == 0)
      return rt_fail(c, "date_parse: the value does not match the format%s", "");
    switch (spec) {
    case 'Y': y = v; break;
    case 'y': y = 2000 + v; break;
    case 'm':
    case 'c': mo = (int)v; break;
    case 'd':
    case 'e': d = (int)v; break;
    case 'H':
    case 'k':
    case 'h':
    case 'I':
    case 'l': hh = (int)v; break;
    case 'i': mi = (int)v; break;
    case 's':
    case 'S': ss = (int)v; break;
    case 'f':
      frac = (int)v;
      for (int z = nd; z < 6; z++)
        frac *= 10;
      break;
    default: return rt_fail(c, "date_parse: unsupported format specifier%s", "");
    }
  }
  if (i != s.len)
    return rt_fail(c, "date_parse: the value does not match the format%s", "");
  if (has_p && pm && hh < 12)
    hh += 12;
  if (has_p && !pm && hh == 12)
    hh = 0;
  if (mo < 1 || mo > 12 || d < 1 || d > 31)
    return rt_fail(c, "date_parse: date out of range%s", "");
  o->i = fmt_days_from_civil(y, (unsigned)mo, (unsigned)d) * US_PER_DAY +
         ((int64_t)hh * 3600 + mi * 60 + ss) * 1000000 + frac;
  return true;
}

/* internal: time +/- interval, timestamp - timestamp, interval * number */
static int b_internal(qctx *q, bexpr *call, err *e, sql_pos *pos)
{
  (void)q;
  (void)call;
  (void)e;
  (void)pos;
  return 0;
}

/* false when the result is out of range */
static bool time_add(const bexpr *call, const value *a, value *o, int sign)
{
  bool is_date = call->args[0]->type.t == SQL_DATE;
  int64_t us = ts_of(call, 0, a[0]);
  int64_t r, step;
  if (__builtin_mul_overflow(a[1].i, (int64_t)sign, &step))
    return false;
  if (call->args[1]->type.t == SQL_INTERVAL_YM) {
    if (!add_months(us, step, &r))
      return false;
  } else if (__builtin_add_overflow(us, step, &r)) {
    return false;
  }
  o->i = is_date && call->type.t == SQL_DATE ? floordiv(r, US_PER_DAY) : r;
  return true;
}

static bool f_time_plus(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  if (!time_add(call, a, o, 1))
    return rt_fail(c, "%s: the result is out of range", "+");
  return true;
}

static bool f_time_minus(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  if (!time_add(call, a, o, -1))
    return rt_fail(c, "%s: the result is out of range", "-");
  return true;
}

static bool f_time_diff(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  if (__builtin_sub_overflow(a[0].i, a[1].i, &o->i))
    return rt_fail(c, "-: the difference is out of range%s", "");
  return true;
}

static bool f_interval_mul(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)c;
  (void)call;
  o->i = (int64_t)llround((double)a[0].i * a[1].f);
  return true;
}

static bool f_interval_div(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  if (a[1].f == 0)
    return rt_fail(c, "division by zero%s", "");
  (void)call;
  o->i = (int64_t)llround((double)a[0].i / a[1].f);
  return true;
}

static bool f_to_hex(fn_ctx *c, const bexpr *call, const value *a, value *o)
{
  (void)call;
  char tb[32];
  int n = snprintf(tb, sizeof tb, "%llX", (unsigned long long)a[0].i);
  if (!out_copy(c, "to_hex", tb, (size_t)n, &o->s))
    return false;
  return true;
}

/* ---- the table ---- */

static const func_def funcs[] = {
  {"lower", 1, 1, b_s_s, f_lower, false},
  {"upper", 1, 1, b_s_s, f_upper, false},
  {"length", 1, 1, b_s_i, f_length, false},
  {"char_length", 1, 1, b_s_i, f_length, false},
  {"substr", 2, 3, b_sii_s, f_substr, false},
  {"substring", 2, 3, b_sii_s, f_substr, false},
  {"trim", 1, 1, b_s_s, f_trim, false},
  {"ltrim", 1, 1, b_s_s, f_ltrim, false},
  {"rtrim", 1, 1, b_s_s, f_rtrim, false},
  {"replace", 2, 3, b_sss_s, f_replace, false},
  {"split_part", 3, 3, b_ssi_s, f_split_part, false},
  {"strpos", 2, 2, b_ss_i, f_strpos, false},
  {"starts_with", 2, 2, b_ss_b, f_starts_with, false},
  {"ends_with", 2, 2, b_ss_b, f_ends_with, false},
  {"reverse", 1, 1, b_s_s, f_reverse, false},
  {"lpad", 3, 3, b_sis_s, f_lpad, false},
  {"rpad", 3, 3, b_sis_s, f_rpad, false},
  {"chr", 1, 1, b_i_s, f_chr, false},
  {"codepoint", 1, 1, b_s_i, f_codepoint, false},
  {"regexp_like", 2, 2, b_regexp_like, f_regexp_like, false},
  {"regexp_extract", 2, 3, b_regexp_extract, f_regexp_extract, false},
  {"regexp_replace", 2, 3, b_regexp_replace, f_regexp_replace, false},
  {"regexp_count", 2, 2, b_regexp_count, f_regexp_count, false},
  {"url_extract_host", 1, 1, b_s_s, f_url_host, false},
  {"url_extract_path", 1, 1, b_s_s, f_url_path, false},
  {"url_extract_protocol", 1, 1, b_s_s, f_url_protocol, false},
  {"url_extract_query", 1, 1, b_s_s, f_url_query, false},
  {"url_extract_parameter", 2, 2, b_ss_s, f_url_param, false},
  {"json_extract_scalar", 2, 2, b_ss_s, f_json_extract_scalar, false},
  {"json_extract", 2, 2, b_ss_s, f_json_extract, false},
  {"json_array_length", 1, 1, b_s_i, f_json_array_length, false},
  {"typeof", 1, 1, b_typeof, f_typeof, true},
  {"to_hex", 1, 1, b_i_s, f_to_hex, false},
  {"abs", 1, 1, b_numeric_same, f_abs, false},
  {"round", 1, 2, b_numeric_same, f_round, false},
  {"floor", 1, 1, b_numeric_same, f_floor, false},
  {"ceil", 1, 1, b_numeric_same, f_ceil, false},
  {"ceiling", 1, 1, b_numeric_same, f_ceil, false},
  {"sign", 1, 1, b_numeric_same, f_sign, false},
  {"sqrt", 1, 1, b_d_d, f_sqrt, false},
  {"ln", 1, 1, b_d_d, f_ln, false},
  {"log10", 1, 1, b_d_d, f_log10, false},
  {"log2", 1, 1, b_d_d, f_log2, false},
  {"exp", 1, 1, b_d_d, f_exp, false},
  {"power", 2, 2, b_dd_d, f_power, false},
  {"pow", 2, 2, b_dd_d, f_power, false},
  {"pi", 0, 0, b__d, f_pi, false},
  {"is_nan", 1, 1, b_d_b, f_is_nan, false},
  {"is_finite", 1, 1, b_d_b, f_is_finite, false},
  {"mod", 2, 2, b_mod, f_mod, false},
  {"greatest", 1, 32, b_greatest, f_greatest, true},
  {"least", 1, 32, b_greatest, f_least, true},
  {"year", 1, 1, b_t_i, f_datepart, false},
  {"quarter", 1, 1, b_t_i, f_datepart, false},
  {"month", 1, 1, b_t_i, f_datepart, false},
  {"week", 1, 1, b_t_i, f_datepart, false},
  {"week_of_year", 1, 1, b_t_i, f_datepart, false},
  {"year_of_week", 1, 1, b_t_i, f_datepart, false},
  {"day", 1, 1, b_t_i, f_datepart, false},
  {"day_of_month", 1, 1, b_t_i, f_datepart, false},
  {"day_of_week", 1, 1, b_t_i, f_datepart, false},
  {"dow", 1, 1, b_t_i, f_datepart, false},
  {"day_of_year", 1, 1, b_t_i, f_datepart, false},
  {"doy", 1, 1, b_t_i, f_datepart, false},
  {"hour", 1, 1, b_t_i, f_datepart, false},
  {"minute", 1, 1, b_t_i, f_datepart, false},
  {"second", 1, 1, b_t_i, f_datepart, false},
  {"millisecond", 1, 1, b_t_i, f_datepart, false},
  {"date_trunc", 2, 2, b_date_trunc, f_date_trunc, false},
  {"date_add", 3, 3, b_date_add, f_date_add, false},
  {"date_diff", 3, 3, b_date_diff, f_date_diff, false},
  {"date_format", 2, 2, b_ts_s, f_date_format, false},
  {"date_parse", 2, 2, b_ss_a, f_date_parse, false},
  {"date", 1, 1, b_date, f_identity, false},
  {"current_date", 0, 0, b__a, f_current_date, false},
  {"current_timestamp", 0, 0, b__t, f_now, false},
  {"localtimestamp", 0, 0, b__t, f_now, false},
  {"now", 0, 0, b__t, f_now, false},
  {"from_unixtime", 1, 1, b_d_t, f_from_unixtime, false},
  {"to_unixtime", 1, 1, b_t_d, f_to_unixtime, false},
  {"$time_plus", 2, 2, b_internal, f_time_plus, false},
  {"$time_minus", 2, 2, b_internal, f_time_minus, false},
  {"$time_diff", 2, 2, b_internal, f_time_diff, false},
  {"$interval_mul", 2, 2, b_internal, f_interval_mul, false},
  {"$interval_div", 2, 2, b_internal, f_interval_div, false},
  {NULL, 0, 0, NULL, NULL, false},
};

const func_def *sql__func_find(const char *name)
{
  for (int i = 0; funcs[i].name; i++)
    if (!strcmp(funcs[i].name, name))
      return &funcs[i];
  return NULL;
}

const char *sql__func_nearest(const char *name)
{
  const char *best = NULL;
  int bd = 99;
  for (int i = 0; funcs[i].name; i++) {
    if (funcs[i].name[0] == '$')
      continue;
    int d = sql__levenshtein(name, funcs[i].name);
    if (d < bd) {
      bd = d;
      best = funcs[i].name;
    }
  }
  static const char *const extra[] = {"count", "sum", "avg", "min", "max", "coalesce",
                                      "nullif", "concat", "stddev", "approx_distinct",
                                      "row_number", "rank", "dense_rank", "lag", "lead",
                                      "bool_and", "bool_or", "arbitrary", "variance", NULL};
  for (int i = 0; extra[i]; i++) {
    int d = sql__levenshtein(name, extra[i]);
    if (d < bd) {
      bd = d;
      best = extra[i];
    }
  }
  int limit = (int)strlen(name) / 3 + 1;
  if (limit < 2)
    limit = 2;
  return bd <= limit ? best : NULL;
}
