/* kv/num.c -- DynamoDB's number type: an exact decimal of up to 38
 * significant digits, never a double.
 *
 * Why: DynamoDB stores numbers as decimals (1E-130 .. 9.99..9E+125, 38
 * significant digits) and compares, adds and sorts them exactly; a double
 * would round 12345678901234567890 and break range-key order.
 *
 * A value is 0.d1 d2 .. dn x 10^exp with d1 != 0 and dn != 0 (n == 0 is
 * zero), plus a sign.
 *
 * Invariants:
 *   (1) Every kv_num is normalised (no leading or trailing zero digits), so
 *       equal values have equal representations and one text form.
 *   (2) kv__num_key() is order-preserving and prefix-free: memcmp of two keys
 *       orders them as the numbers, and no key is a prefix of another.
 *
 * Start reading at kv__num_parse().
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define EXP_MIN (-129)  /* 1E-130 = 0.1 x 10^-129 */
#define EXP_MAX 126     /* 9.99..E+125 = 0.999.. x 10^126 */

static int range_check(const kv_num *n, err *e)
{
  if (n->nd == 0)
    return 0;
  if (n->nd > KV_NUM_DIGITS)
    return err_set(e, KV_ERR_VALIDATION,
                   "Attempting to store more than 38 significant digits in a Number");
  if (n->exp > EXP_MAX)
    return err_set(e, KV_ERR_VALIDATION,
                   "Number overflow. Attempting to store a number with magnitude larger than "
                   "supported range");
  if (n->exp < EXP_MIN)
    return err_set(e, KV_ERR_VALIDATION,
                   "Number underflow. Attempting to store a number with magnitude smaller than "
                   "supported range");
  return 0;
}

/* Builds a normalised number from raw digits dig[0..len) meaning
 * 0.dig x 10^exp; digits past KV_NUM_DIGITS significant ones are an error. */
static int from_digits(bool neg, const uint8_t *dig, int len, int exp, kv_num *out, err *e)
{
  int lead = 0;
  while (lead < len && dig[lead] == 0)
    lead++;
  int end = len;
  while (end > lead && dig[end - 1] == 0)
    end--;
  memset(out, 0, sizeof *out);
  if (lead == end)
    return 0;  /* zero: no sign */
  if (end - lead > KV_NUM_DIGITS)
    return err_set(e, KV_ERR_VALIDATION,
                   "Attempting to store more than 38 significant digits in a Number");
  out->neg = neg;
  out->exp = exp - lead;
  out->nd = end - lead;
  memcpy(out->d, dig + lead, (size_t)out->nd);
  return range_check(out, e);
}

int kv__num_parse(const char *s, kv_num *out, err *e)
{
  const char *p = s;
  bool neg = false;
  if (*p == '+' || *p == '-')
    neg = *p++ == '-';
  uint8_t dig[400];
  int len = 0;
  int point = -1;  /* digits before the decimal point; -1: no point seen */
  bool any = false;
  for (; *p != '\0'; p++) {
    if (*p >= '0' && *p <= '9') {
      any = true;
      if (len == 0 && *p == '0' && point < 0)
        continue;  /* leading zeros of the integer part */
      if (len >= (int)sizeof dig)
        return err_set(e, KV_ERR_VALIDATION,
                       "Attempting to store more than 38 significant digits in a Number");
      dig[len++] = (uint8_t)(*p - '0');
    } else if (*p == '.' && point < 0) {
      point = len;
    } else {
      break;
    }
  }
  long ex = 0;
  if (any && (*p == 'e' || *p == 'E')) {
    p++;
    bool eneg = false;
    if (*p == '+' || *p == '-')
      eneg = *p++ == '-';
    if (*p < '0' || *p > '9')
      return err_set(e, KV_ERR_VALIDATION, "A value provided cannot be converted into a number");
    for (; *p >= '0' && *p <= '9'; p++)
      if (ex < 100000)
        ex = ex * 10 + (*p - '0');
    if (eneg)
      ex = -ex;
  }
  if (!any || *p != '\0')
    return err_set(e, KV_ERR_VALIDATION, "A value provided cannot be converted into a number");
  long exp = (point < 0 ? len : point) + ex;
  if (exp > 100000 || exp < -100000)
    exp = exp > 0 ? 100000 : -100000;
  return from_digits(neg, dig, len, (int)exp, out, e);
}

void kv__num_format(const kv_num *n, char out[KV_NUM_TEXT])
{
  char *o = out;
  if (n->nd == 0) {
    strcpy(out, "0");
    return;
  }
  if (n->neg)
    *o++ = '-';
  if (n->exp > 40 || n->exp < -40) {
    /* d1.d2..dnE(exp-1) */
    *o++ = (char)('0' + n->d[0]);
    if (n->nd > 1) {
      *o++ = '.';
      for (int i = 1; i < n->nd; i++)
        *o++ = (char)('0' + n->d[i]);
    }
    sprintf(o, "E%+d", n->exp - 1);
    return;
  }
  if (n->exp <= 0) {
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -n->exp; i++)
      *o++ = '0';
    for (int i = 0; i < n->nd; i++)
      *o++ = (char)('0' + n->d[i]);
  } else {
    for (int i = 0; i < n->exp || i < n->nd; i++) {
      if (i == n->exp)
        *o++ = '.';
      *o++ = (char)('0' + (i < n->nd ? n->d[i] : 0));
    }
  }
  *o = '\0';
}

static int cmp_mag(const kv_num *a, const kv_num *b)
{
  if (a->exp != b->exp)
    return a->exp < b->exp ? -1 : 1;
  for (int i = 0; i < a->nd || i < b->nd; i++) {
    int x = i < a->nd ? a->d[i] : -1;
    int y = i < b->nd ? b->d[i] : -1;
    if (x != y)
      return x < y ? -1 : 1;
  }
  return 0;
}

int kv__num_cmp(const kv_num *a, const kv_num *b)
{
  int sa = a->nd == 0 ? 0 : a->neg ? -1 : 1;
  int sb = b->nd == 0 ? 0 : b->neg ? -1 : 1;
  if (sa != sb)
    return sa < sb ? -1 : 1;
  if (sa == 0)
    return 0;
  int m = cmp_mag(a, b);
  return sa > 0 ? m : -m;
}

int kv__num_add(const kv_num *a, const kv_num *b, bool subtract, kv_num *out, err *e)
{
  kv_num bb = *b;
  if (subtract && bb.nd > 0)
    bb.neg = !bb.neg;
  if (a->nd == 0) {
    *out = bb;
    return 0;
  }
  if (bb.nd == 0) {
    *out = *a;
    return 0;
  }
  /* digit at power p (value d x 10^p) lives at index hi - p */
  int hi = (a->exp > bb.exp ? a->exp : bb.exp);          /* room for a carry */
  int lo_a = a->exp - a->nd;
  int lo_b = bb.exp - bb.nd;
  int lo = lo_a < lo_b ? lo_a : lo_b;
  int width = hi - lo + 1;
  if (width > 400)
    return err_set(e, KV_ERR_VALIDATION,
                   "Attempting to store more than 38 significant digits in a Number");
  int x[401] = {0};
  int y[401] = {0};
  for (int i = 0; i < a->nd; i++)
    x[hi - (a->exp - 1 - i)] = a->d[i];
  for (int i = 0; i < bb.nd; i++)
    y[hi - (bb.exp - 1 - i)] = bb.d[i];
  int r[401] = {0};
  bool neg;
  if (a->neg == bb.neg) {
    int carry = 0;
    for (int i = width - 1; i >= 0; i--) {
      int s = x[i] + y[i] + carry;
      r[i] = s % 10;
      carry = s / 10;
    }
    neg = a->neg;
  } else {
    int m = cmp_mag(a, &bb);
    if (m == 0) {
      memset(out, 0, sizeof *out);
      return 0;
    }
    int *big = m > 0 ? x : y;
    int *small = m > 0 ? y : x;
    neg = m > 0 ? a->neg : bb.neg;
    int borrow = 0;
    for (int i = width - 1; i >= 0; i--) {
      int s = big[i] - small[i] - borrow;
      borrow = s < 0;
      r[i] = s < 0 ? s + 10 : s;
    }
  }
  uint8_t dig[401];
  for (int i = 0; i < width; i++)
    dig[i] = (uint8_t)r[i];
  /* index 0 holds power hi, so 0.dig x 10^(hi+1) */
  return from_digits(neg, dig, width, hi + 1, out, e);
}

size_t kv__num_key(const kv_num *n, uint8_t out[KV_NUM_KEY])
{
  size_t k = 0;
  if (n->nd == 0) {
    out[k++] = 0x02;
    return k;
  }
  out[k++] = n->neg ? 0x01 : 0x03;
  uint8_t ex = (uint8_t)(n->exp - EXP_MIN);
  out[k++] = n->neg ? (uint8_t)(0xff - ex) : ex;
  for (int i = 0; i < n->nd; i++)
    out[k++] = n->neg ? (uint8_t)(0xfe - n->d[i]) : (uint8_t)(n->d[i] + 1);
  out[k++] = n->neg ? 0xff : 0x00;
  return k;
}
