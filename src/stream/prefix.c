/* stream/prefix.c -- Firehose's S3 prefix expressions and the jq subset
 * of dynamic partitioning: the two little languages a delivery stream's
 * configuration holds.
 *
 * Why a file of its own: both parse client text at every delivery, and are
 * fuzzed alone (tests/fuzz/fuzz_prefix.c), without the store or functions.
 *
 * Invariants:
 *   (1) An evaluated prefix is at most STORE_MAX_KEY - 100 bytes (room for
 *       the object's name); longer is an error, never a truncation.
 *   (2) Unknown namespaces, patterns and keys are errors: a prefix never
 *       silently drops a part of itself.
 *
 * Start reading at stream__prefix_eval().
 */
#include "internal.h"

#include "base/hash.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_KEYS 16        /* partition keys per record */
#define MAX_KEY_VALUE 512  /* bytes of one partition key's value */

/* ---- prefixes ---- */

/* Appends one Java DateTimeFormatter pattern evaluated at tm. */
static int format_time(buf *b, const char *fmt, size_t n, const struct tm *tm, err *e)
{
  size_t i = 0;
  while (i < n) {
    char c = fmt[i];
    if (c == '\'') {
      size_t j = i + 1;
      while (j < n && fmt[j] != '\'')
        j++;
      if (j == n)
        return err_set(e, STREAM_ERR_INVALID, "unterminated quote in timestamp format '%.*s'",
                       (int)n, fmt);
      buf_append(b, fmt + i + 1, j - i - 1);
      i = j + 1;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
      buf_append(b, &c, 1);
      i++;
      continue;
    }
    size_t run = 1;
    while (i + run < n && fmt[i + run] == c)
      run++;
    if (c == 'y' && run == 4)
      buf_printf(b, "%04d", tm->tm_year + 1900);
    else if (c == 'y' && run == 2)
      buf_printf(b, "%02d", (tm->tm_year + 1900) % 100);
    else if (c == 'M' && run == 2)
      buf_printf(b, "%02d", tm->tm_mon + 1);
    else if (c == 'd' && run == 2)
      buf_printf(b, "%02d", tm->tm_mday);
    else if (c == 'H' && run == 2)
      buf_printf(b, "%02d", tm->tm_hour);
    else if (c == 'm' && run == 2)
      buf_printf(b, "%02d", tm->tm_min);
    else if (c == 's' && run == 2)
      buf_printf(b, "%02d", tm->tm_sec);
    else
      return err_set(e, STREAM_ERR_INVALID, "timestamp pattern '%.*s' is not supported (yyyy, "
                     "yy, MM, dd, HH, mm, ss and quoted text are)", (int)run, fmt + i);
    i += run;
  }
  return 0;
}

static void random_string(char out[12])
{
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  uint8_t r[11];
  random_bytes(r, sizeof r);
  for (int i = 0; i < 11; i++)
    out[i] = alphabet[r[i] % 36];
  out[11] = '\0';
}

char *stream__prefix_eval(const char *prefix, int64_t ts_ms, const char *error_type,
                          json_t *keys, arena *a, err *e)
{
  time_t t = (time_t)(ts_ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  buf b;
  buf_init(&b, 4096);
  int rc = 0;
  const char *p = prefix;
  while (*p && rc == 0) {
    if (p[0] != '!' || p[1] != '{') {
      buf_append(&b, p, 1);
      p++;
      continue;
    }
    const char *end = strchr(p, '}');
    const char *colon = strchr(p, ':');
    if (end == NULL || colon == NULL || colon > end) {
      rc = err_set(e, STREAM_ERR_INVALID, "malformed expression at '%s'", p);
      break;
    }
    size_t nslen = (size_t)(colon - p - 2);
    const char *val = colon + 1;
    size_t vlen = (size_t)(end - val);
    if (nslen == 9 && memcmp(p + 2, "timestamp", 9) == 0) {
      rc = format_time(&b, val, vlen, &tm, e);
    } else if (nslen == 8 && memcmp(p + 2, "firehose", 8) == 0) {
      if (vlen == 13 && memcmp(val, "random-string", 13) == 0) {
        char r[12];
        random_string(r);
        buf_puts(&b, r);
      } else if (vlen == 17 && memcmp(val, "error-output-type", 17) == 0) {
        if (error_type == NULL)
          rc = err_set(e, STREAM_ERR_INVALID, "!{firehose:error-output-type} belongs in "
                       "ErrorOutputPrefix only");
        else
          buf_puts(&b, error_type);
      } else {
        rc = err_set(e, STREAM_ERR_INVALID, "unknown expression '!{firehose:%.*s}'", (int)vlen,
                     val);
      }
    } else if ((nslen == 21 && memcmp(p + 2, "partitionKeyFromQuery", 21) == 0) ||
               (nslen == 22 && memcmp(p + 2, "partitionKeyFromLambda", 22) == 0)) {
      char key[128];
      snprintf(key, sizeof key, "%.*s", (int)(vlen < 127 ? vlen : 127), val);
      const char *v = json_string_value(json_object_get(keys, key));
      if (v == NULL)
        rc = err_set(e, STREAM_ERR_INVALID, "no partition key '%s' for this record", key);
      else
        buf_puts(&b, v);
    } else {
      rc = err_set(e, STREAM_ERR_INVALID, "unknown namespace in '%.*s'", (int)(end - p + 1), p);
    }
    p = end + 1;
  }
  char *out = NULL;
  if (rc == 0) {
    /* a prefix with no expressions at all gets Firehose's default time prefix */
    if (strstr(prefix, "!{") == NULL && error_type == NULL)
      buf_printf(&b, "%04d/%02d/%02d/%02d/", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour);
    if (b.len > STORE_MAX_KEY - 100)
      err_set(e, STREAM_ERR_INVALID, "the evaluated prefix is longer than %d bytes",
              STORE_MAX_KEY - 100);
    else
      out = arena_strndup(a, b.data != NULL ? b.data : "", b.len);
  }
  buf_release(&b);
  return out;
}

/* ---- the jq subset: {name: .a.b, other: .c} ---- */

static const char *skip_ws(const char *p)
{
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

json_t *stream__query_eval(const char *query, json_t *record, err *e)
{
  json_t *out = json_object();
  const char *p = skip_ws(query);
  if (*p != '{')
    goto bad;
  p = skip_ws(p + 1);
  while (*p != '}') {
    const char *name = p;
    while (*p && *p != ':' && *p != ' ')
      p++;
    size_t nlen = (size_t)(p - name);
    p = skip_ws(p);
    if (*p != ':' || nlen == 0 || nlen > 64)
      goto bad;
    p = skip_ws(p + 1);
    if (*p != '.')
      goto bad;
    json_t *v = record;
    while (*p == '.') {
      p++;
      const char *f = p;
      while (*p && *p != '.' && *p != ',' && *p != '}' && *p != ' ')
        p++;
      if (p == f)
        goto bad;
      char field[128];
      snprintf(field, sizeof field, "%.*s", (int)(p - f < 127 ? p - f : 127), f);
      v = json_object_get(v, field);
    }
    char key[72];
    snprintf(key, sizeof key, "%.*s", (int)nlen, name);
    char text[MAX_KEY_VALUE];
    if (json_is_string(v))
      snprintf(text, sizeof text, "%s", json_string_value(v));
    else if (json_is_integer(v))
      snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
      snprintf(text, sizeof text, "%g", json_real_value(v));
    else if (json_is_boolean(v))
      snprintf(text, sizeof text, "%s", json_is_true(v) ? "true" : "false");
    else {
      json_decref(out);
      err_set(e, STREAM_ERR_INVALID, "the record has no value for partition key '%s'", key);
      return NULL;
    }
    json_object_set_new(out, key, json_string(text));
    if (json_object_size(out) > MAX_KEYS)
      goto bad;
    p = skip_ws(p);
    if (*p == ',')
      p = skip_ws(p + 1);
    else if (*p != '}')
      goto bad;
  }
  return out;
bad:
  json_decref(out);
  err_set(e, STREAM_ERR_INVALID, "MetadataExtractionQuery '%s' is not of the form "
          "{key: .field.path, ...} (the jq subset tarn evaluates)", query);
  return NULL;
}

