/* sql/value.c -- string banks, casts between the SQL types, and the text
 * form of values (what CAST(x AS VARCHAR) and the result writers show).
 *
 * Invariants:
 *   (1) A cast that cannot represent the value fails (no silent wrap):
 *       out-of-range integers, unparseable text, NaN to integers.
 *   (2) Doubles and decimals round half away from zero when they lose
 *       digits (Presto).
 */
#include "value.h"

#include "base/mem.h"

#include <math.h>

__extension__ typedef __int128 i128;
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- sbank ---- */

typedef struct sb_block {
  struct sb_block *next;
  size_t size;
  size_t used;
  char data[];
} sb_block;

struct sbank {
  sb_block *head;
  size_t bytes;
};

sbank *sql__sbank_new(void)
{
  sbank *b = xcalloc(1, sizeof *b);
  return b;
}

sbank *sql__sbank_free(sbank *b)
{
  if (b == NULL)
    return NULL;
  sb_block *k = b->head;
  while (k != NULL) {
    sb_block *n = k->next;
    free(k);
    k = n;
  }
  free(b);
  return NULL;
}

const char *sql__sbank_copy(sbank *b, const char *p, size_t n)
{
  if (n == 0)
    return "";
  sb_block *k = b->head;
  if (k == NULL || k->size - k->used < n) {
    size_t size = 256 * 1024;
    if (b->bytes > 64 * 1024 * 1024)
      size = 4 * 1024 * 1024;
    if (n > size / 4) {
      sb_block *big = xmalloc(sizeof *big + n);
      big->size = n;
      big->used = n;
      if (k != NULL) {
        big->next = k->next;
        k->next = big;
      } else {
        big->next = NULL;
        b->head = big;
      }
      memcpy(big->data, p, n);
      b->bytes += n + sizeof *big;
      return big->data;
    }
    sb_block *nk = xmalloc(sizeof *nk + size);
    nk->size = size;
    nk->used = 0;
    nk->next = k;
    b->head = nk;
    b->bytes += size + sizeof *nk;
    k = nk;
  }
  char *d = k->data + k->used;
  memcpy(d, p, n);
  k->used += n;
  return d;
}

size_t sql__sbank_bytes(const sbank *b)
{
  return b == NULL ? 0 : b->bytes;
}

/* ---- text ---- */

static int fmt_decimal(int64_t v, int scale, char *out)
{
  if (scale == 0)
    return sprintf(out, "%lld", (long long)v);
  bool neg = v < 0;
  uint64_t u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  uint64_t p = 1;
  for (int k = 0; k < scale; k++)
    p *= 10;
  return sprintf(out, "%s%llu.%0*llu", neg ? "-" : "", (unsigned long long)(u / p), scale,
                 (unsigned long long)(u % p));
}

str_ref sql__value_text(stype t, value v, char *tmp)
{
  str_ref r = {tmp, 0};
  switch (t.t) {
  case SQL_VARCHAR:
    return v.s;
  case SQL_BOOLEAN:
    r.ptr = v.i ? "true" : "false";
    r.len = v.i ? 4 : 5;
    return r;
  case SQL_SMALLINT:
  case SQL_INTEGER:
  case SQL_BIGINT: {
    /* digits from the end */
    char b[24];
    int k = 24;
    uint64_t u = v.i < 0 ? (uint64_t)0 - (uint64_t)v.i : (uint64_t)v.i;
    do {
      b[--k] = (char)('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (v.i < 0)
      b[--k] = '-';
    r.len = (size_t)(24 - k);
    memcpy(tmp, b + k, r.len);
    tmp[r.len] = '\0';
    return r;
  }
  case SQL_DOUBLE:
    r.len = (size_t)fmt_double(v.f, tmp);
    return r;
  case SQL_DECIMAL:
    r.len = (size_t)fmt_decimal(v.i, t.scale, tmp);
    return r;
  case SQL_DATE:
    r.len = (size_t)fmt_date(v.i, tmp);
    return r;
  case SQL_TIMESTAMP:
    r.len = (size_t)fmt_timestamp(v.i, tmp);
    return r;
  case SQL_INTERVAL_DS: {
    int64_t us = v.i;
    bool neg = us < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)us : (uint64_t)us;
    uint64_t ms = u / 1000;
    r.len = (size_t)sprintf(tmp, "%s%llu %02llu:%02llu:%02llu.%03llu", neg ? "-" : "",
                            (unsigned long long)(ms / 86400000),
                            (unsigned long long)(ms / 3600000 % 24),
                            (unsigned long long)(ms / 60000 % 60),
                            (unsigned long long)(ms / 1000 % 60),
                            (unsigned long long)(ms % 1000));
    return r;
  }
  case SQL_INTERVAL_YM: {
    int64_t m = v.i;
    bool neg = m < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)m : (uint64_t)m;
    r.len = (size_t)sprintf(tmp, "%s%llu-%llu", neg ? "-" : "", (unsigned long long)(u / 12),
                            (unsigned long long)(u % 12));
    return r;
  }
  case SQL_NULL:
    r.ptr = "";
    return r;
  }
  return r;
}

/* ---- casts ---- */

static void trim(const char **p, size_t *n)
{
  while (*n > 0 && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) {
    (*p)++;
    (*n)--;
  }
  while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\n' ||
                    (*p)[*n - 1] == '\r'))
    (*n)--;
}

static int64_t p10(int k)
{
  int64_t p = 1;
  while (k-- > 0)
    p *= 10;
  return p;
}

static bool parse_decimal(const char *p, size_t n, int prec, int scale, int64_t *out)
{
  size_t i = 0;
  bool neg = false;
  if (n > 0 && (p[0] == '-' || p[0] == '+')) {
    neg = p[0] == '-';
    i++;
  }
  i128 v = 0;
  int intdigits = 0, frac = 0;
  bool any = false, dot = false;
  bool round_up = false;
  for (; i < n; i++) {
    char c = p[i];
    if (c == '.' && !dot) {
      dot = true;
      continue;
    }
    if (c < '0' || c > '9') {
      if ((c == 'e' || c == 'E') && any) {
        /* exponent form: through double */
        double d;
        if (!fmt_parse_f64(p, n, &d))
          return false;
        double sc = d * (double)p10(scale);
        sc = sc < 0 ? -floor(-sc + 0.5) : floor(sc + 0.5);
        if (fabs(sc) >= (double)p10(prec))
          return false;
        *out = (int64_t)sc;
        return true;
      }
      return false;
    }
    any = true;
    if (dot) {
      if (frac < scale) {
        v = v * 10 + (c - '0');
        frac++;
      } else if (frac == scale) {
        round_up = c >= '5';
        frac++;
      }
    } else {
      v = v * 10 + (c - '0');
      if (v != 0)
        intdigits++;
      if (intdigits > 38)
        return false;
    }
  }
  if (!any)
    return false;
  while (frac < scale) {
    v *= 10;
    frac++;
  }
  if (round_up)
    v += 1;
  if (v >= p10(prec))
    return false;
  *out = (int64_t)(neg ? -v : v);
  return true;
}

static bool int_fits(sql_type t, int64_t v)
{
  if (t == SQL_SMALLINT)
    return v >= -32768 && v <= 32767;
  if (t == SQL_INTEGER)
    return v >= INT32_MIN && v <= INT32_MAX;
  return true;
}

static bool round_double_to_int(double d, int64_t *out)
{
  if (isnan(d) || isinf(d))
    return false;
  double r = d < 0 ? -floor(-d + 0.5) : floor(d + 0.5);
  if (r >= 9223372036854775808.0 || r < -9223372036854775808.0)
    return false;
  *out = (int64_t)r;
  return true;
}

static bool rescale(int64_t v, int from, int to, int prec, int64_t *out)
{
  if (to >= from) {
    i128 r = (i128)v * p10(to - from);
    i128 lim = prec < 19 ? (i128)p10(prec) : (i128)INT64_MAX;
    if (r >= lim || r <= -lim)
      return false;
    *out = (int64_t)r;
    return true;
  }
  int64_t d = p10(from - to);
  int64_t q = v / d;
  int64_t rem = v % d;
  if ((rem < 0 ? -rem : rem) * 2 >= d)
    q += v < 0 ? -1 : 1;
  if (prec < 19 && (q >= p10(prec) || q <= -p10(prec)))
    return false;
  *out = q;
  return true;
}

bool sql__cast_value(stype from, stype to, value v, value *out, strheap *heap, char *msg,
                    size_t msgn)
{
  char tmp[64];
  char tn[48];
  out->null = false;
  out->i = 0;
  if (to.t == SQL_VARCHAR) {
    str_ref s = sql__value_text(from, v, tmp);
    if (s.ptr == tmp) {
      char *d = strheap_alloc(heap, s.len + 1);
      memcpy(d, tmp, s.len);
      s.ptr = d;
    }
    out->s = s;
    return true;
  }
  if (from.t == SQL_VARCHAR) {
    const char *p = v.s.ptr;
    size_t n = v.s.len;
    trim(&p, &n);
    bool ok = false;
    switch (to.t) {
    case SQL_BOOLEAN:
      if (fmt_parse_bool(p, n, &out->i)) {
        ok = true;
      } else if (n == 1 && (p[0] == '1' || p[0] == '0' || p[0] == 't' || p[0] == 'f')) {
        out->i = p[0] == '1' || p[0] == 't';
        ok = true;
      }
      break;
    case SQL_SMALLINT:
    case SQL_INTEGER:
    case SQL_BIGINT:
      ok = fmt_parse_i64(p, n, &out->i) && int_fits(to.t, out->i);
      break;
    case SQL_DOUBLE:
      ok = fmt_parse_f64(p, n, &out->f);
      break;
    case SQL_DECIMAL:
      ok = parse_decimal(p, n, to.prec, to.scale, &out->i);
      break;
    case SQL_DATE:
      ok = fmt_parse_date(p, n, &out->i);
      if (!ok) {
        int64_t ts;
        if (fmt_parse_timestamp(p, n, &ts)) {
          out->i = ts >= 0 ? ts / 86400000000LL : -((-ts + 86400000000LL - 1) / 86400000000LL);
          ok = true;
        }
      }
      break;
    case SQL_TIMESTAMP:
      ok = fmt_parse_timestamp(p, n, &out->i);
      break;
    default:
      break;
    }
    if (!ok)
      snprintf(msg, msgn, "cannot cast '%.*s' to %s", (int)(v.s.len > 60 ? 60 : v.s.len),
               v.s.ptr, sql__stype_name(to, tn, sizeof tn));
    return ok;
  }
  bool ok = true;
  switch (to.t) {
  case SQL_BOOLEAN:
    if (from.t == SQL_DOUBLE)
      out->i = v.f != 0;
    else if (sql__stype_integer(from.t) || from.t == SQL_BOOLEAN || from.t == SQL_DECIMAL)
      out->i = v.i != 0;
    else
      ok = false;
    break;
  case SQL_SMALLINT:
  case SQL_INTEGER:
  case SQL_BIGINT:
    if (from.t == SQL_DOUBLE)
      ok = round_double_to_int(v.f, &out->i);
    else if (from.t == SQL_DECIMAL)
      ok = rescale(v.i, from.scale, 0, 19, &out->i);
    else if (sql__stype_integer(from.t) || from.t == SQL_BOOLEAN)
      out->i = v.i;
    else
      ok = false;
    if (ok)
      ok = int_fits(to.t, out->i);
    break;
  case SQL_DOUBLE:
    if (from.t == SQL_DECIMAL)
      out->f = (double)v.i / (double)p10(from.scale);
    else if (sql__stype_integer(from.t) || from.t == SQL_BOOLEAN)
      out->f = (double)v.i;
    else if (from.t == SQL_DOUBLE)
      out->f = v.f;
    else
      ok = false;
    break;
  case SQL_DECIMAL:
    if (from.t == SQL_DECIMAL) {
      ok = rescale(v.i, from.scale, to.scale, to.prec, &out->i);
    } else if (sql__stype_integer(from.t)) {
      ok = rescale(v.i, 0, to.scale, to.prec, &out->i);
    } else if (from.t == SQL_DOUBLE) {
      double sc = v.f * (double)p10(to.scale);
      int64_t r = 0;
      ok = round_double_to_int(sc, &r) && r < p10(to.prec) && r > -p10(to.prec);
      out->i = r;
    } else {
      ok = false;
    }
    break;
  case SQL_DATE:
    if (from.t == SQL_TIMESTAMP)
      out->i = v.i >= 0 ? v.i / 86400000000LL
                        : -((-v.i + 86400000000LL - 1) / 86400000000LL);
    else if (from.t == SQL_DATE)
      out->i = v.i;
    else
      ok = false;
    break;
  case SQL_TIMESTAMP:
    if (from.t == SQL_DATE)
      out->i = v.i * 86400000000LL;
    else if (from.t == SQL_TIMESTAMP)
      out->i = v.i;
    else
      ok = false;
    break;
  case SQL_INTERVAL_DS:
  case SQL_INTERVAL_YM:
    ok = from.t == to.t;
    out->i = v.i;
    break;
  default:
    ok = false;
  }
  if (!ok) {
    char fn[48];
    str_ref s = sql__value_text(from, v, tmp);
    snprintf(msg, msgn, "cannot cast %s '%.*s' to %s", sql__stype_name(from, fn, sizeof fn),
             (int)(s.len > 60 ? 60 : s.len), s.ptr, sql__stype_name(to, tn, sizeof tn));
  }
  return ok;
}
