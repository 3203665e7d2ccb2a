/* base/text.c -- URI encoding, UTF-8 checks, small string predicates and
 * the time formats of the AWS wire protocols.
 *
 * Why: SigV4 canonicalisation, S3 keys and listings, and every XML and
 * header date need exactly AWS's rules, which are not the C library's
 * (strftime's %a and %b follow the locale; timegm is not C11).
 *
 * Invariants:
 *   (1) Nothing here depends on the locale or the TZ variable: dates are
 *       computed with days_from_civil / civil_from_days, names come from
 *       our own tables.
 *   (2) Parsers accept only the exact format they name and range-check every
 *       field (month 1-12, day within the month, hour < 24, ...).
 *   (3) Results that outlive the call are in the caller's arena.
 *
 * Start reading at uri_encode().
 */
#include "text.h"

#include "hash.h"

#include <string.h>
#include <stdlib.h>
#include <errno.h>

static const char upper_hex[] = "0123456789ABCDEF";

static bool unreserved(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
         || c == '.' || c == '_' || c == '~';
}

char *uri_encode(arena *a, const char *s, size_t n, bool keep_slash)
{
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    len += unreserved(c) || (keep_slash && c == '/') ? 1 : 3;
  }
  char *out = arena_alloc(a, len + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c) || (keep_slash && c == '/')) {
      out[o++] = (char)c;
    } else {
      out[o++] = '%';
      out[o++] = upper_hex[c >> 4];
      out[o++] = upper_hex[c & 0xf];
    }
  }
  out[o] = '\0';
  return out;
}

char *percent_decode(arena *a, const char *s, size_t n, size_t *outlen)
{
  char *out = arena_alloc(a, n + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      out[o++] = s[i];
      continue;
    }
    if (n - i < 3)
      return NULL;
    int hi = hex_value(s[i + 1]);
    int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0)
      return NULL;
    out[o++] = (char)(hi << 4 | lo);
    i += 2;
  }
  out[o] = '\0';
  if (outlen != NULL)
    *outlen = o;
  return out;
}

size_t utf8_encode(char out[4], uint32_t cp)
{
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

size_t utf8_chars(const char *s)
{
  size_t n = 0;
  for (; *s != '\0'; s++)
    if (((unsigned char)*s & 0xC0) != 0x80)
      n++;
  return n;
}

bool utf8_valid(const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    /* ASCII runs, eight bytes at a time */
    while (n - i >= 8) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull)
        break;
      i += 8;
    }
    if (i >= n)
      break;
    unsigned char c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    uint32_t cp;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
      cp = c & 0x1F;
      min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      cp = c & 0x0F;
      min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      return false; /* continuation byte, overlong lead C0/C1, or > F4 */
    }
    if (n - i - 1 < need)
      return false;
    for (size_t k = 1; k <= need; k++) {
      unsigned char cc = p[i + k];
      if ((cc & 0xC0) != 0x80)
        return false;
      cp = cp << 6 | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += need + 1;
  }
  return true;
}

static char ascii_lower(char c)
{
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool str_ieq(const char *a, const char *b)
{
  for (; *a != '\0' && *b != '\0'; a++, b++)
    if (ascii_lower(*a) != ascii_lower(*b))
      return false;
  return *a == *b;
}

bool str_istarts(const char *s, const char *prefix)
{
  for (; *prefix != '\0'; s++, prefix++)
    if (*s == '\0' || ascii_lower(*s) != ascii_lower(*prefix))
      return false;
  return true;
}

bool str_starts(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_ends(const char *s, const char *suffix)
{
  size_t n = strlen(s);
  size_t m = strlen(suffix);
  return m <= n && memcmp(s + n - m, suffix, m) == 0;
}

static bool blank(char c)
{
  return c == ' ' || c == '\t';
}

char *str_trim_collapse(arena *a, const char *s)
{
  while (blank(*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && blank(s[n - 1]))
    n--;
  char *out = arena_alloc(a, n + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (blank(s[i])) {
      if (o > 0 && out[o - 1] == ' ')
        continue;
      out[o++] = ' ';
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return out;
}

int64_t time_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec time_deadline(clockid_t clock, int64_t ms)
{
  struct timespec ts;
  clock_gettime(clock, &ts);
  ts.tv_sec += (time_t)(ms / 1000);
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

int64_t time_mono_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Howard Hinnant's algorithms: days since 1970-01-01 of a proleptic
 * Gregorian date, and back. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

typedef struct civil {
  int64_t year;
  int month; /* 1-12 */
  int day;   /* 1-31 */
  int hour;
  int min;
  int sec;
  int wday;  /* 0 = Sunday */
} civil;

static int64_t floor_div(int64_t a, int64_t b)
{
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}

static civil civil_from_seconds(int64_t t)
{
  civil c;
  int64_t days = floor_div(t, 86400);
  int64_t secs = t - days * 86400;
  c.hour = (int)(secs / 3600);
  c.min = (int)(secs / 60 % 60);
  c.sec = (int)(secs % 60);
  c.wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  c.day = (int)(doy - (153 * mp + 2) / 5 + 1);
  c.month = (int)(mp < 10 ? mp + 3 : mp - 9);
  c.year = yoe + era * 400 + (c.month <= 2);
  return c;
}

static bool leap(int64_t y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : days[m - 1];
}

/* Seconds since the epoch of a range-checked civil time; false when a field
 * is out of range. */
static bool civil_to_seconds(int64_t y, int mo, int d, int h, int mi, int s, int64_t *out)
{
  if (y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0
      || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59)
    return false;
  *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
  return true;
}

/* Reads exactly n decimal digits at s; -1 when one is not a digit. */
static int digits(const char *s, int n)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

bool time_parse_iso8601_basic(const char *s, time_t *out)
{
  if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
    return false;
  int y = digits(s, 4);
  int mo = digits(s + 4, 2);
  int d = digits(s + 6, 2);
  int h = digits(s + 9, 2);
  int mi = digits(s + 11, 2);
  int sec = digits(s + 13, 2);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0)
    return false;
  int64_t t;
  if (!civil_to_seconds(y, mo, d, h, mi, sec, &t))
    return false;
  *out = (time_t)t;
  return true;
}

/* Writes v (0 <= v < 10^width) as exactly width zero-padded digits. */
static char *put_num(char *out, int64_t v, int width)
{
  for (int i = width - 1; i >= 0; i--) {
    out[i] = (char)('0' + v % 10);
    v /= 10;
  }
  return out + width;
}

static char *put_str(char *out, const char *s)
{
  size_t n = strlen(s);
  memcpy(out, s, n);
  return out + n;
}

/* Years outside 0..9999 cannot be written in four digits: clamp. */
static civil civil_clamped(int64_t t)
{
  civil c = civil_from_seconds(t);
  if (c.year < 0) {
    c = civil_from_seconds(days_from_civil(0, 1, 1) * 86400);
  } else if (c.year > 9999) {
    c = civil_from_seconds(days_from_civil(9999, 12, 31) * 86400 + 86399);
  }
  return c;
}

void time_format_iso8601_basic(time_t t, char out[17])
{
  civil c = civil_clamped((int64_t)t);
  char *p = out;
  p = put_num(p, c.year, 4);
  p = put_num(p, c.month, 2);
  p = put_num(p, c.day, 2);
  *p++ = 'T';
  p = put_num(p, c.hour, 2);
  p = put_num(p, c.min, 2);
  p = put_num(p, c.sec, 2);
  *p++ = 'Z';
  *p = '\0';
}

void time_format_iso8601_ms(int64_t ms, char out[25])
{
  int64_t secs = floor_div(ms, 1000);
  int frac = (int)(ms - secs * 1000);
  civil c = civil_clamped(secs);
  char *p = out;
  p = put_num(p, c.year, 4);
  *p++ = '-';
  p = put_num(p, c.month, 2);
  *p++ = '-';
  p = put_num(p, c.day, 2);
  *p++ = 'T';
  p = put_num(p, c.hour, 2);
  *p++ = ':';
  p = put_num(p, c.min, 2);
  *p++ = ':';
  p = put_num(p, c.sec, 2);
  *p++ = '.';
  p = put_num(p, frac, 3);
  *p++ = 'Z';
  *p = '\0';
}

bool time_parse_iso8601(const char *s, int64_t *ms_out)
{
  size_t n = strlen(s);
  if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':'
      || s[16] != ':')
    return false;
  int y = digits(s, 4);
  int mo = digits(s + 5, 2);
  int d = digits(s + 8, 2);
  int h = digits(s + 11, 2);
  int mi = digits(s + 14, 2);
  int sec = digits(s + 17, 2);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0)
    return false;
  int64_t t;
  if (!civil_to_seconds(y, mo, d, h, mi, sec, &t))
    return false;
  const char *p = s + 19;
  int ms = 0;
  if (*p == '.') {
    p++;
    int nd = 0;
    while (*p >= '0' && *p <= '9') {
      if (nd < 3)
        ms = ms * 10 + (*p - '0');
      nd++;
      p++;
    }
    if (nd == 0 || nd > 9)
      return false;
    for (; nd < 3; nd++)
      ms *= 10;
  }
  if ((*p != 'Z' && *p != 'z') || p[1] != '\0')
    return false;
  *ms_out = t * 1000 + ms;
  return true;
}

static const char wday_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const wday_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void time_format_rfc1123(time_t t, char out[30])
{
  civil c = civil_clamped((int64_t)t);
  char *p = out;
  p = put_str(p, wday_names[c.wday]);
  p = put_str(p, ", ");
  p = put_num(p, c.day, 2);
  *p++ = ' ';
  p = put_str(p, month_names[c.month - 1]);
  *p++ = ' ';
  p = put_num(p, c.year, 4);
  *p++ = ' ';
  p = put_num(p, c.hour, 2);
  *p++ = ':';
  p = put_num(p, c.min, 2);
  *p++ = ':';
  p = put_num(p, c.sec, 2);
  p = put_str(p, " GMT");
  *p = '\0';
}

static int month_from_name(const char *s)
{
  for (int i = 0; i < 12; i++)
    if (memcmp(s, month_names[i], 3) == 0)
      return i + 1;
  return -1;
}

static bool parse_hms(const char *s, int *h, int *mi, int *sec)
{
  if (s[2] != ':' || s[5] != ':')
    return false;
  *h = digits(s, 2);
  *mi = digits(s + 3, 2);
  *sec = digits(s + 6, 2);
  return *h >= 0 && *mi >= 0 && *sec >= 0;
}

static bool wday_short_ok(const char *s)
{
  for (int i = 0; i < 7; i++)
    if (memcmp(s, wday_names[i], 3) == 0)
      return true;
  return false;
}

bool time_parse_http(const char *s, time_t *out)
{
  size_t n = strlen(s);
  int y;
  int mo;
  int d;
  int h;
  int mi;
  int sec;
  if (n == 29 && s[3] == ',') {
    /* RFC 1123: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (!wday_short_ok(s) || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' '
        || strcmp(s + 25, " GMT") != 0)
      return false;
    d = digits(s + 5, 2);
    mo = month_from_name(s + 8);
    y = digits(s + 12, 4);
    if (!parse_hms(s + 17, &h, &mi, &sec))
      return false;
  } else if (n == 24 && s[3] == ' ') {
    /* asctime: "Sun Nov  6 08:49:37 1994" */
    if (!wday_short_ok(s) || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
      return false;
    mo = month_from_name(s + 4);
    d = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2);
    if (!parse_hms(s + 11, &h, &mi, &sec))
      return false;
    y = digits(s + 20, 4);
  } else {
    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
    const char *comma = strchr(s, ',');
    if (comma == NULL)
      return false;
    size_t wl = (size_t)(comma - s);
    bool ok = false;
    for (int i = 0; i < 7; i++)
      if (strlen(wday_long[i]) == wl && memcmp(s, wday_long[i], wl) == 0)
        ok = true;
    const char *p = comma + 1;
    if (!ok || strlen(p) != 23 || p[0] != ' ' || p[3] != '-' || p[7] != '-' || p[10] != ' '
        || strcmp(p + 19, " GMT") != 0)
      return false;
    d = digits(p + 1, 2);
    mo = month_from_name(p + 4);
    y = digits(p + 8, 2);
    if (y < 0 || !parse_hms(p + 11, &h, &mi, &sec))
      return false;
    y += y < 70 ? 2000 : 1900; /* two-digit years: 70-99 are 19xx, the rest 20xx */
  }
  if (y < 0 || mo < 0 || d < 0)
    return false;
  int64_t t;
  if (!civil_to_seconds(y, mo, d, h, mi, sec, &t))
    return false;
  *out = (time_t)t;
  return true;
}

uint64_t env_u64(const char *name, uint64_t def)
{
  const char *v = getenv(name);
  if (v == NULL || *v == '\0')
    return def;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno != 0 || *end != '\0' || x == 0)
    return def;
  return x;
}
