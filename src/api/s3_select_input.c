/* api/s3_select_input.c -- S3 Select's statement check and input cuts:
 * what a request's SQL and object bytes become before the engine reads
 * them (see s3_select.c for the whole operation).
 *
 * Why apart: these are parsers of client input (the statement, CSV and
 * JSON bytes) with no HTTP, store or engine in them, so the fuzz target
 * tests/fuzz/fuzz_s3_select.c drives them directly.
 *
 * Invariants:
 *   (1) Nothing here reads past the bytes it is given; every record it
 *       writes is at most SELECT_RECORD_MAX bytes (else OverMaxRecordSize).
 *   (2) Strings and quoted names of the statement are copied as they are:
 *       rewrites apply only to the text outside them.
 */
#include "api/s3_select.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int s3_select_fail(sel_err *se, const char *code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  se->code = code;
  vsnprintf(se->msg, sizeof se->msg, fmt, ap);
  va_end(ap);
  return ERR_INVALID;
}

/* ---- the SQL subset ---- */

/* Walks the statement outside strings and quoted names: refuses what S3
 * Select does not run, rewrites S3Object[*] and (JSON) s.a.b paths into
 * what the engine reads. The result is in a. */
int s3_select_check_sql(arena *a, const sel_req *r, const char **out, sel_err *se)
{
  static const struct {
    const char *word;
    const char *what;
  } refused[] = {
      {"join", "JOIN"},       {"group", "GROUP BY"},     {"order", "ORDER BY"},
      {"having", "HAVING"},   {"union", "UNION"},        {"intersect", "INTERSECT"},
      {"except", "EXCEPT"},   {"over", "window functions"}, {"with", "WITH"},
      {"offset", "OFFSET"},   {"copy", "COPY"},          {"insert", "INSERT"},
      {"create", "CREATE"},   {"distinct", "DISTINCT"},
  };
  const char *s = r->expr;
  size_t n = strlen(s);
  buf b;
  buf_init(&b, SELECT_EXPR_MAX * 4);
  size_t i = 0;
  int rc = 0;
  bool saw_from = false;
  while (i < n && rc == 0) {
    char c = s[i];
    if (c == '\'' || c == '"') { /* a string or a quoted name, '' / "" doubled */
      size_t j = i + 1;
      while (j < n) {
        if (s[j] == c && j + 1 < n && s[j + 1] == c) {
          j += 2;
          continue;
        }
        if (s[j] == c)
          break;
        j++;
      }
      if (j >= n) {
        rc = s3_select_fail(se, "ParseUnexpectedToken", "the string starting at character %zu is "
                                                  "not closed", i + 1);
        break;
      }
      buf_append(&b, s + i, j + 1 - i);
      i = j + 1;
      continue;
    }
    if (c == '-' && i + 1 < n && s[i + 1] == '-') { /* a comment to the line's end */
      while (i < n && s[i] != '\n')
        i++;
      continue;
    }
    if (isalpha((unsigned char)c) || c == '_') {
      size_t j = i;
      while (j < n && (isalnum((unsigned char)s[j]) || s[j] == '_'))
        j++;
      size_t wl = j - i;
      bool after_dot = i > 0 && s[i - 1] == '.';
      if (!after_dot) {
        for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
          if (strlen(refused[k].word) == wl && strncasecmp(s + i, refused[k].word, wl) == 0) {
            rc = s3_select_fail(se, "UnsupportedSqlOperation",
                          "%s is not supported by S3 Select (at character %zu)",
                          refused[k].what, i + 1);
            break;
          }
        }
        if (wl == 4 && strncasecmp(s + i, "from", 4) == 0)
          saw_from = true;
      }
      if (rc != 0)
        break;
      /* S3 Select's spellings of functions the engine has under other names */
      size_t paren = j;
      while (paren < n && (s[paren] == ' ' || s[paren] == '\t' || s[paren] == '\n'))
        paren++;
      if (!after_dot && paren < n && s[paren] == '(') {
        if (wl == 6 && strncasecmp(s + i, "utcnow", 6) == 0) {
          buf_puts(&b, "now");
          i = j;
          continue;
        }
        if (wl == 16 && strncasecmp(s + i, "character_length", 16) == 0) {
          buf_puts(&b, "char_length");
          i = j;
          continue;
        }
        /* DATE_ADD(day, 1, ts), DATE_DIFF(year, a, b): the part is a keyword */
        if ((wl == 8 && strncasecmp(s + i, "date_add", 8) == 0) ||
            (wl == 9 && strncasecmp(s + i, "date_diff", 9) == 0)) {
          static const char *const parts[] = {"year", "month", "day", "hour", "minute",
                                              "second"};
          size_t a0 = paren + 1;
          while (a0 < n && (s[a0] == ' ' || s[a0] == '\t' || s[a0] == '\n'))
            a0++;
          size_t a1 = a0;
          while (a1 < n && isalpha((unsigned char)s[a1]))
            a1++;
          for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
            if (a1 - a0 == strlen(parts[k]) && strncasecmp(s + a0, parts[k], a1 - a0) == 0) {
              buf_append(&b, s + i, a0 - i);
              buf_printf(&b, "'%s'", parts[k]);
              i = a1;
              break;
            }
          }
          if (i == a1)
            continue;
        }
      }
      /* S3Object[*] -> S3Object */
      if (wl == 8 && strncasecmp(s + i, "s3object", 8) == 0 && j + 2 < n && s[j] == '[' &&
          s[j + 1] == '*' && s[j + 2] == ']') {
        buf_append(&b, s + i, wl);
        i = j + 3;
        if (i < n && s[i] == '.')
          rc = s3_select_fail(se, "UnsupportedSyntax",
                        "a path after S3Object[*] is not supported; name the fields in SELECT");
        continue;
      }
      /* JSON: alias.a.b[.c...] and alias.a[0] -> json_extract_scalar(alias.a, '$.b.c') */
      if (r->in == SQL_OBJECT_JSON && !after_dot && j + 1 < n && s[j] == '.' &&
          (isalpha((unsigned char)s[j + 1]) || s[j + 1] == '_')) {
        size_t col_end = j + 1;
        while (col_end < n && (isalnum((unsigned char)s[col_end]) || s[col_end] == '_'))
          col_end++;
        size_t k = col_end;
        for (;;) {
          if (k + 1 < n && s[k] == '.' && (isalpha((unsigned char)s[k + 1]) || s[k + 1] == '_')) {
            k++;
            while (k < n && (isalnum((unsigned char)s[k]) || s[k] == '_'))
              k++;
            continue;
          }
          if (k < n && s[k] == '[') {
            size_t d = k + 1;
            while (d < n && isdigit((unsigned char)s[d]))
              d++;
            if (d > k + 1 && d < n && s[d] == ']') {
              k = d + 1;
              continue;
            }
          }
          break;
        }
        if (k > col_end) {
          buf_puts(&b, "json_extract_scalar(");
          buf_append(&b, s + i, col_end - i);
          buf_puts(&b, ", '$");
          buf_append(&b, s + col_end, k - col_end);
          buf_puts(&b, "')");
          i = k;
          continue;
        }
      }
      buf_append(&b, s + i, wl);
      i = j;
      continue;
    }
    if (c == '[' && i > 0) {
      rc = s3_select_fail(se, "UnsupportedSyntax",
                    "array subscripts are not supported here (at character %zu)", i + 1);
      break;
    }
    buf_append(&b, s + i, 1);
    i++;
  }
  if (rc == 0 && !saw_from)
    rc = s3_select_fail(se, "ParseSelectMissingFrom",
                  "the statement must read FROM S3Object, as SELECT ... FROM S3Object s");
  if (rc == 0)
    *out = arena_strndup(a, b.data != NULL ? b.data : "", b.len);
  buf_release(&b);
  return rc;
}

/* ---- the input ---- */

/* Bytes written to a memfd through a buffer. */

void sel_writer_flush(sel_writer *w)
{
  size_t off = 0;
  while (w->rc == 0 && off < w->b.len) {
    ssize_t k = write(w->fd, w->b.data + off, w->b.len - off);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      w->rc = ERR_NO_SPACE;
    else
      off += (size_t)k;
  }
  buf_reset(&w->b);
}

void sel_writer_put(sel_writer *w, const void *p, size_t n)
{
  if (w->rc != 0)
    return;
  w->total += n;
  if (w->b.len + n > (4u << 20))
    sel_writer_flush(w);
  if (n > (4u << 20)) {
    while (w->rc == 0 && n > 0) {
      ssize_t k = write(w->fd, p, n);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0) {
        w->rc = ERR_NO_SPACE;
        break;
      }
      p = (const char *)p + k;
      n -= (size_t)k;
    }
    return;
  }
  buf_append(&w->b, p, n);
}

static const char *find_delim(const char *p, const char *end, const char *d, size_t dl)
{
  if (dl == 1)
    return memchr(p, d[0], (size_t)(end - p));
  return memmem(p, (size_t)(end - p), d, dl);
}

/* CSV / JSON lines: the records that start in [lo, hi] (the header row first
 * when one is wanted and lies before lo), each ended by '\n', comment rows
 * dropped. Errors: OverMaxRecordSize. */
int s3_select_cut_records(const sel_req *r, const char *data, size_t len, uint64_t lo, uint64_t hi,
                       sel_writer *w, sel_err *se)
{
  const char *rd = r->rdelim;
  size_t dl = strlen(rd);
  const char *end = data + len;
  const char *p = data;
  bool want_header = r->in == SQL_OBJECT_CSV && r->header != HDR_NONE;
  /* skip to the first record starting at or after lo, keeping the header */
  if (lo > 0) {
    if (want_header) {
      const char *he = find_delim(data, end, rd, dl);
      size_t hl = he != NULL ? (size_t)(he - data) : len;
      if (hl > SELECT_RECORD_MAX)
        return s3_select_fail(se, "OverMaxRecordSize", "the header row is longer than 1 MB");
      sel_writer_put(w, data, hl);
      sel_writer_put(w, "\n", 1);
      want_header = false;
    }
    if (lo >= len)
      return 0;
    const char *from = data + (lo >= dl ? lo - dl : 0);
    const char *d = find_delim(from, end, rd, dl);
    while (d != NULL && (size_t)(d + dl - data) < lo)
      d = find_delim(d + 1, end, rd, dl);
    if (d == NULL)
      return 0;
    p = d + dl;
  }
  while (p < end && (uint64_t)(p - data) <= hi) {
    const char *d = find_delim(p, end, rd, dl);
    const char *re = d != NULL ? d : end;
    size_t rl = (size_t)(re - p);
    if (rl > SELECT_RECORD_MAX)
      return s3_select_fail(se, "OverMaxRecordSize",
                      "the length of a record in the input is greater than the limit of 1 MB "
                      "(the record at byte %zu)", (size_t)(p - data));
    if (!(r->comments != 0 && rl > 0 && p[0] == r->comments))
      sel_writer_put(w, p, rl), sel_writer_put(w, "\n", 1);
    if (d == NULL)
      break;
    p = d + dl;
  }
  return w->rc != 0 ? s3_select_fail(se, "InternalError", "cannot hold the object's records") : 0;
}

/* JSON DOCUMENT: each top-level value (or each element of a top-level
 * array) as one compact line. Errors: JSONParsingError, OverMaxRecordSize. */
int s3_select_json_lines(const char *p, size_t n, sel_writer *w, sel_err *se)
{
  int depth = 0;
  bool in_str = false, esc = false;
  bool array_top = false;       /* the current top-level value is an array of records */
  size_t rec_start = w->total;  /* output offset of the record under way */
  char chunk[4096];
  size_t cl = 0;
#define EMIT(ch)                                                                              \
  do {                                                                                        \
    chunk[cl++] = (ch);                                                                       \
    if (cl == sizeof chunk) {                                                                 \
      sel_writer_put(w, chunk, cl);                                                                  \
      cl = 0;                                                                                 \
    }                                                                                         \
  } while (0)
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (in_str) {
      EMIT(c);
      if (esc)
        esc = false;
      else if (c == '\\')
        esc = true;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
      continue;
    if (depth == 0 && c == '[' && !array_top) {
      array_top = true;
      depth = 1;
      continue;
    }
    if (array_top && depth == 1 && (c == ',' || c == ']')) {
      if (c == ']') {
        array_top = false;
        depth = 0;
      }
      continue;
    }
    if (c == '"')
      in_str = true;
    if (c == '{' || c == '[')
      depth++;
    if (c == '}' || c == ']') {
      if (depth == 0 || (array_top && depth == 1))
        return s3_select_fail(se, "JSONParsingError", "unbalanced '%c' at byte %zu of the document",
                        c, i);
      depth--;
    }
    EMIT(c);
    if (depth == (array_top ? 1 : 0) && (c == '}' || c == ']')) {
      EMIT('\n');
      sel_writer_put(w, chunk, cl);
      cl = 0;
      if (w->total - rec_start > SELECT_RECORD_MAX)
        return s3_select_fail(se, "OverMaxRecordSize",
                        "the length of a record in the input is greater than the limit of 1 MB");
      rec_start = w->total;
    } else if (w->total + cl - rec_start > SELECT_RECORD_MAX + 1) {
      return s3_select_fail(se, "OverMaxRecordSize",
                      "the length of a record in the input is greater than the limit of 1 MB");
    }
  }
#undef EMIT
  if (cl > 0)
    sel_writer_put(w, chunk, cl);
  if (in_str || depth != 0)
    return s3_select_fail(se, "JSONParsingError", "the JSON document ends inside a value");
  return w->rc != 0 ? s3_select_fail(se, "InternalError", "cannot hold the object's records") : 0;
}

/* Whether CSV / JSON lines bytes can be read in place: no comment rows and
 * no record past the limit, records ended by '\n' (or CRLF). */
bool s3_select_in_place(const sel_req *r, const char *p, size_t n)
{
  if (strcmp(r->rdelim, "\n") != 0 && strcmp(r->rdelim, "\r\n") != 0)
    return false;
  const char *end = p + n;
  const char *q = p;
  while (q < end) {
    if (r->comments != 0 && *q == r->comments)
      return false;
    const char *nl = memchr(q, '\n', (size_t)(end - q));
    const char *re = nl != NULL ? nl : end;
    if ((size_t)(re - q) > SELECT_RECORD_MAX)
      return false;
    if (nl == NULL)
      break;
    q = nl + 1;
  }
  return true;
}

