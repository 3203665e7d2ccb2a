/* formats/value.c -- text <-> value conversions shared by the readers and
 * the SQL engine's casts, and the string heap.
 *
 * Why hand-written: parsing numbers and dates is the inner loop of a CSV
 * scan; strtoll/strtod need NUL-terminated copies and a locale.
 *
 * Invariants:
 *   (1) Every parser accepts exactly the whole span or returns false; no
 *       parser reads past p[n-1].
 *   (2) fmt_parse_f64 gives the correctly rounded double (it falls back to
 *       strtod whenever its fast path could round differently).
 */
#include "column.h"

#include "base/mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fmt_type_name(fmt_type t)
{
  switch (t) {
  case FT_NULL: return "null";
  case FT_BOOLEAN: return "boolean";
  case FT_BIGINT: return "bigint";
  case FT_DOUBLE: return "double";
  case FT_DATE: return "date";
  case FT_TIMESTAMP: return "timestamp";
  case FT_VARCHAR: return "varchar";
  }
  return "?";
}

/* ---- string heap ---- */

struct strheap_chunk {
  strheap_chunk *next;
  size_t size;
  size_t used;
  char data[];
};

#define STRHEAP_CHUNK (64 * 1024)

char *strheap_alloc(strheap *h, size_t n)
{
  strheap_chunk *c = h->head;
  if (c == NULL || c->size - c->used < n) {
    strheap_chunk *nc = NULL;
    if (n <= STRHEAP_CHUNK && h->free != NULL) {
      nc = h->free;
      h->free = nc->next;
    } else {
      size_t size = n > STRHEAP_CHUNK ? n : STRHEAP_CHUNK;
      nc = xmalloc(sizeof *nc + size);
      nc->size = size;
    }
    nc->used = 0;
    nc->next = h->head;
    h->head = nc;
    c = nc;
  }
  char *p = c->data + c->used;
  c->used += n;
  h->used += n;
  return p;
}

void strheap_reset(strheap *h)
{
  strheap_chunk *c = h->head;
  while (c != NULL) {
    strheap_chunk *next = c->next;
    if (c->size == STRHEAP_CHUNK) {
      c->next = h->free;
      h->free = c;
    } else {
      free(c);
    }
    c = next;
  }
  h->head = NULL;
  h->used = 0;
}

void strheap_release(strheap *h)
{
  strheap_reset(h);
  strheap_chunk *c = h->free;
  while (c != NULL) {
    strheap_chunk *next = c->next;
    free(c);
    c = next;
  }
  h->free = NULL;
}

/* ---- numbers ---- */

bool fmt_parse_i64(const char *p, size_t n, int64_t *out)
{
  size_t i = 0;
  bool neg = false;
  if (n == 0)
    return false;
  if (p[0] == '-' || p[0] == '+') {
    neg = p[0] == '-';
    i = 1;
    if (n == 1)
      return false;
  }
  uint64_t v = 0;
  if (n - i > 19) {
    /* may still fit with leading zeros */
    while (i < n - 1 && p[i] == '0')
      i++;
    if (n - i > 19)
      return false;
  }
  for (; i < n; i++) {
    unsigned d = (unsigned)(p[i] - '0');
    if (d > 9)
      return false;
    v = v * 10 + d;
  }
  if (neg) {
    if (v > (uint64_t)INT64_MAX + 1)
      return false;
    *out = (int64_t)(0 - v);
  } else {
    if (v > (uint64_t)INT64_MAX)
      return false;
    *out = (int64_t)v;
  }
  return true;
}

static const double pow10_tab[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static bool ieq(const char *p, size_t n, const char *lit)
{
  size_t m = strlen(lit);
  if (n != m)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c + 32);
    if (c != lit[i])
      return false;
  }
  return true;
}

bool fmt_parse_f64(const char *p, size_t n, double *out)
{
  if (n == 0)
    return false;
  size_t i = 0;
  bool neg = false;
  if (p[0] == '-' || p[0] == '+') {
    neg = p[0] == '-';
    i = 1;
  }
  /* fast path: up to 15 significant digits, optional fraction, no exponent */
  uint64_t mant = 0;
  int digits = 0;
  int frac = 0;
  bool seen_dot = false;
  bool any = false;
  size_t j = i;
  for (; j < n; j++) {
    char c = p[j];
    if (c >= '0' && c <= '9') {
      any = true;
      if (digits == 0 && c == '0') {
        if (seen_dot)
          frac++;
        continue;
      }
      mant = mant * 10 + (uint64_t)(c - '0');
      digits++;
      if (seen_dot)
        frac++;
      if (digits > 15)
        break;
    } else if (c == '.' && !seen_dot) {
      seen_dot = true;
    } else {
      break;
    }
  }
  if (j == n && any && frac <= 22) {
    double d = (double)mant / pow10_tab[frac];
    *out = neg ? -d : d;
    return true;
  }
  /* slow path: validate the grammar, then strtod on a copy */
  j = i;
  any = false;
  while (j < n && p[j] >= '0' && p[j] <= '9') {
    j++;
    any = true;
  }
  if (j < n && p[j] == '.') {
    j++;
    while (j < n && p[j] >= '0' && p[j] <= '9') {
      j++;
      any = true;
    }
  }
  if (!any) {
    const char *r = p + i;
    size_t rn = n - i;
    if (ieq(r, rn, "infinity") || ieq(r, rn, "inf")) {
      *out = neg ? -INFINITY : INFINITY;
      return true;
    }
    if (ieq(r, rn, "nan")) {
      *out = NAN;
      return true;
    }
    return false;
  }
  if (j < n && (p[j] == 'e' || p[j] == 'E')) {
    j++;
    if (j < n && (p[j] == '+' || p[j] == '-'))
      j++;
    bool ed = false;
    while (j < n && p[j] >= '0' && p[j] <= '9') {
      j++;
      ed = true;
    }
    if (!ed)
      return false;
  }
  if (j != n)
    return false;
  char tmp[128];
  char *t = tmp;
  if (n >= sizeof tmp) {
    t = xmalloc(n + 1);
  }
  memcpy(t, p, n);
  t[n] = '\0';
  *out = strtod(t, NULL);
  if (t != tmp)
    free(t);
  return true;
}

bool fmt_parse_bool(const char *p, size_t n, int64_t *out)
{
  if (ieq(p, n, "true")) {
    *out = 1;
    return true;
  }
  if (ieq(p, n, "false")) {
    *out = 0;
    return true;
  }
  return false;
}

/* ---- dates (Howard Hinnant's civil algorithms) ---- */

int64_t fmt_days_from_civil(int64_t y, unsigned m, unsigned d)
{
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

void fmt_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = (int64_t)yoe + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yy + (*m <= 2);
}

static int digits_at(const char *p, size_t n, size_t at, int count)
{
  if (at + (size_t)count > n)
    return -1;
  int v = 0;
  for (int i = 0; i < count; i++) {
    unsigned c = (unsigned)(p[at + (size_t)i] - '0');
    if (c > 9)
      return -1;
    v = v * 10 + (int)c;
  }
  return v;
}

static bool leap(int64_t y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool valid_ymd(int64_t y, int m, int d)
{
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1)
    return false;
  int md = mdays[m - 1] + (m == 2 && leap(y));
  return d <= md;
}

/* YYYY-M?M-D?D at p; returns the characters used, 0 when not a date */
static size_t parse_ymd(const char *p, size_t n, int64_t *days)
{
  int y = digits_at(p, n, 0, 4);
  if (y < 0 || n < 8 || p[4] != '-')
    return 0;
  size_t i = 5;
  int m = digits_at(p, n, i, 2);
  if (m >= 0 && i + 2 < n && p[i + 2] == '-') {
    i += 3;
  } else {
    m = digits_at(p, n, i, 1);
    if (m < 0 || i + 1 >= n || p[i + 1] != '-')
      return 0;
    i += 2;
  }
  int d = digits_at(p, n, i, 2);
  if (d >= 0) {
    i += 2;
  } else {
    d = digits_at(p, n, i, 1);
    if (d < 0)
      return 0;
    i += 1;
  }
  if (!valid_ymd(y, m, d))
    return 0;
  *days = fmt_days_from_civil(y, (unsigned)m, (unsigned)d);
  return i;
}

bool fmt_parse_date(const char *p, size_t n, int64_t *days)
{
  size_t used = parse_ymd(p, n, days);
  return used != 0 && used == n;
}

bool fmt_parse_timestamp(const char *p, size_t n, int64_t *micros)
{
  int64_t days;
  size_t i = parse_ymd(p, n, &days);
  if (i == 0)
    return false;
  int64_t us = 0;
  if (i < n) {
    if (p[i] != ' ' && p[i] != 'T')
      return false;
    i++;
    int hh = digits_at(p, n, i, 2);
    if (hh < 0 || hh > 23 || i + 2 >= n || p[i + 2] != ':')
      return false;
    int mi = digits_at(p, n, i + 3, 2);
    if (mi < 0 || mi > 59)
      return false;
    i += 5;
    int ss = 0;
    if (i < n && p[i] == ':') {
      ss = digits_at(p, n, i + 1, 2);
      if (ss < 0 || ss > 60)
        return false;
      i += 3;
    }
    int64_t frac = 0;
    if (i < n && p[i] == '.') {
      i++;
      int nd = 0;
      while (i < n && p[i] >= '0' && p[i] <= '9') {
        if (nd < 6)
          frac = frac * 10 + (p[i] - '0');
        nd++;
        i++;
      }
      if (nd == 0 || nd > 9)
        return false;
      for (int k = nd; k < 6; k++)
        frac *= 10;
    }
    us = ((int64_t)hh * 3600 + mi * 60 + ss) * 1000000 + frac;
    if (i < n) {
      if (p[i] == 'Z' && i + 1 == n) {
        i++;
      } else if (p[i] == '+' || p[i] == '-') {
        int sign = p[i] == '-' ? -1 : 1;
        int zh = digits_at(p, n, i + 1, 2);
        if (zh < 0)
          return false;
        i += 3;
        int zm = 0;
        if (i < n && p[i] == ':')
          i++;
        if (i < n) {
          zm = digits_at(p, n, i, 2);
          if (zm < 0)
            return false;
          i += 2;
        }
        us -= sign * ((int64_t)zh * 3600 + zm * 60) * 1000000;
      }
    }
  }
  if (i != n)
    return false;
  *micros = days * 86400LL * 1000000 + us;
  return true;
}

static void two(char *o, unsigned v)
{
  o[0] = (char)('0' + v / 10);
  o[1] = (char)('0' + v % 10);
}

int fmt_date(int64_t days, char out[32])
{
  int64_t y;
  unsigned m, d;
  fmt_civil_from_days(days, &y, &m, &d);
  if (y < 0 || y > 9999)
    return snprintf(out, 32, "%04lld-%02u-%02u", (long long)y, m, d);
  two(out, (unsigned)(y / 100));
  two(out + 2, (unsigned)(y % 100));
  out[4] = '-';
  two(out + 5, m);
  out[7] = '-';
  two(out + 8, d);
  out[10] = '\0';
  return 10;
}

int fmt_timestamp(int64_t micros, char out[48])
{
  int64_t days = micros / 86400000000LL;
  int64_t rem = micros % 86400000000LL;
  if (rem < 0) {
    rem += 86400000000LL;
    days--;
  }
  int len = fmt_date(days, out);
  int64_t secs = rem / 1000000;
  int64_t frac = rem % 1000000;
  char *o = out + len;
  o[0] = ' ';
  two(o + 1, (unsigned)(secs / 3600));
  o[3] = ':';
  two(o + 4, (unsigned)(secs / 60 % 60));
  o[6] = ':';
  two(o + 7, (unsigned)(secs % 60));
  len += 9;
  if (frac != 0) {
    out[len++] = '.';
    for (int k = 5; k >= 0; k--) {
      out[len + k] = (char)('0' + frac % 10);
      frac /= 10;
    }
    len += 6;
  }
  out[len] = '\0';
  return len;
}

int fmt_double(double d, char out[40])
{
  if (isnan(d))
    return snprintf(out, 40, "NaN");
  if (isinf(d))
    return snprintf(out, 40, d > 0 ? "Infinity" : "-Infinity");
  if (d == 0)
    return snprintf(out, 40, signbit(d) ? "-0.0" : "0.0");
  /* fast path: a value with few decimals (prices, measurements) is an
     integer over a small power of ten that divides back exactly */
  double ad = fabs(d);
  if (ad >= 1e-3 && ad < 1e7) {
    static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    for (int k = 0; k <= 8; k++) {
      double m = ad * p10[k];
      if (m >= 9007199254740992.0)
        break;
      long long mi = llround(m);
      if ((double)mi / p10[k] != ad)
        continue;
      char digits[24];
      int nd = 0;
      do {
        digits[nd++] = (char)('0' + mi % 10);
        mi /= 10;
      } while (mi != 0);
      while (nd <= k)
        digits[nd++] = '0';
      int len = 0;
      if (d < 0)
        out[len++] = '-';
      for (int i = nd - 1; i >= k; i--)
        out[len++] = digits[i];
      out[len++] = '.';
      if (k == 0)
        out[len++] = '0';
      for (int i = k - 1; i >= 0; i--)
        out[len++] = digits[i];
      out[len] = '\0';
      return len;
    }
  }
  char tmp[40];
  int prec;
  /* 15 significant digits round-trip for almost every double, and then
     (trailing zeros dropped) they are the shortest form too */
  for (prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
    if (prec == 17 || strtod(tmp, NULL) == d)
      break;
  }
  /* tmp is d.ddde[+-]XX with prec significant digits */
  char mant[24];
  int nm = 0;
  const char *s = tmp;
  bool neg = false;
  if (*s == '-') {
    neg = true;
    s++;
  }
  while (*s && *s != 'e') {
    if (*s != '.')
      mant[nm++] = *s;
    s++;
  }
  int exp = atoi(s + 1);
  while (nm > 1 && mant[nm - 1] == '0')
    nm--;
  mant[nm] = '\0';
  int len = 0;
  if (neg)
    out[len++] = '-';
  if (exp >= -3 && exp < 7) {
    if (exp < 0) {
      out[len++] = '0';
      out[len++] = '.';
      for (int k = -1; k > exp; k--)
        out[len++] = '0';
      for (int k = 0; k < nm; k++)
        out[len++] = mant[k];
    } else {
      for (int k = 0; k <= exp; k++)
        out[len++] = k < nm ? mant[k] : '0';
      out[len++] = '.';
      if (nm > exp + 1) {
        for (int k = exp + 1; k < nm; k++)
          out[len++] = mant[k];
      } else {
        out[len++] = '0';
      }
    }
    out[len] = '\0';
    return len;
  }
  out[len++] = mant[0];
  out[len++] = '.';
  if (nm > 1) {
    for (int k = 1; k < nm; k++)
      out[len++] = mant[k];
  } else {
    out[len++] = '0';
  }
  len += snprintf(out + len, (size_t)(40 - len), "E%d", exp);
  return len;
}

/* A number in plain notation whose text the typed value keeps: an optional
 * '-', digits without a leading zero (a lone "0" before the point is fine),
 * an optional fraction. "000042", "-007", "+5", "00.5" are not: they are
 * identifiers or formatted text, and reading them as numbers would change
 * them. Returns 1 integer, 2 decimal, 0 neither. */
static int plain_number(const char *p, size_t n)
{
  size_t i = 0;
  if (i < n && p[i] == '-')
    i++;
  size_t d0 = i;
  while (i < n && p[i] >= '0' && p[i] <= '9')
    i++;
  size_t nint = i - d0;
  if (nint > 1 && p[d0] == '0')
    return 0;
  if (i == n)
    return nint > 0 ? 1 : 0;
  if (p[i] != '.')
    return 0;
  i++;
  size_t f0 = i;
  while (i < n && p[i] >= '0' && p[i] <= '9')
    i++;
  if (i != n || (nint == 0 && i == f0))
    return 0;
  return 2;
}

/* a date written YYYY-MM-DD (two-digit month and day) */
static bool canonical_date(const char *p, size_t n)
{
  return n >= 10 && p[4] == '-' && p[7] == '-' && p[5] >= '0' && p[5] <= '9' &&
         p[6] >= '0' && p[6] <= '9' && p[8] >= '0' && p[8] <= '9' && p[9] >= '0' &&
         p[9] <= '9' && (n == 10 || p[10] == ' ' || p[10] == 'T');
}

fmt_type fmt_guess_type(const char *p, size_t n)
{
  int64_t i;
  double d;
  if (n == 0)
    return FT_NULL;
  char c = p[0];
  if ((c >= '0' && c <= '9') || c == '-' || c == '.') {
    int num = plain_number(p, n);
    if (num == 1)
      return fmt_parse_i64(p, n, &i) ? FT_BIGINT : FT_VARCHAR;  /* past int64: text */
    if (num == 2)
      return fmt_parse_f64(p, n, &d) ? FT_DOUBLE : FT_VARCHAR;
    if (canonical_date(p, n)) {
      if (n == 10 && fmt_parse_date(p, n, &i))
        return FT_DATE;
      if (fmt_parse_timestamp(p, n, &i))
        return FT_TIMESTAMP;
      return FT_VARCHAR;
    }
    /* exponent notation only when the value prints back as written
       (1.0E7 does, 1e3 would become 1000.0) */
    if (memchr(p, 'E', n) != NULL && n < 40 && fmt_parse_f64(p, n, &d) && isfinite(d)) {
      char out[40];
      int len = fmt_double(d, out);
      if ((size_t)len == n && memcmp(out, p, n) == 0)
        return FT_DOUBLE;
    }
    return FT_VARCHAR;
  }
  if (fmt_parse_bool(p, n, &i))
    return FT_BOOLEAN;
  return FT_VARCHAR;
}

fmt_type fmt_type_merge(fmt_type a, fmt_type b)
{
  if (a == b)
    return a;
  if (a == FT_NULL)
    return b;
  if (b == FT_NULL)
    return a;
  if ((a == FT_BIGINT && b == FT_DOUBLE) || (a == FT_DOUBLE && b == FT_BIGINT))
    return FT_DOUBLE;
  if ((a == FT_DATE && b == FT_TIMESTAMP) || (a == FT_TIMESTAMP && b == FT_DATE))
    return FT_TIMESTAMP;
  return FT_VARCHAR;
}

size_t fmt_count_lines(const char *p, size_t n)
{
  size_t count = 0;
  const char *end = p + n;
  while (p < end) {
    const char *q = memchr(p, '\n', (size_t)(end - p));
    if (q == NULL)
      break;
    count++;
    p = q + 1;
  }
  return count;
}
