/* api/s3_post_form.c -- S3 browser POST uploads without the server: the
 * multipart/form-data parser that streams the file part, and the POST
 * policy checker.
 *
 * Why apart from api/s3_post.c: both read what any client sends, so a fuzz
 * target (tests/fuzz/fuzz_s3_post.c) drives them alone.
 *
 * The parser: the body is seen through a window (f->win) of the bytes not
 * consumed yet. A virtual "\r\n" is fed first, so every delimiter, the first
 * included, is "\r\n--boundary". States:
 *   PREAMBLE -> AFTER_DELIM -> HEADERS -> FIELD -> AFTER_DELIM ... ->
 *   HEADERS -> FILE -> REST (the file ended: the rest is ignored)
 *   AFTER_DELIM -> END on "--" (the closing delimiter).
 * Invariants:
 *   (1) The window holds at most S3_POST_FIELDS_MAX bytes plus one feed
 *       before the file, and less than a delimiter in it (the carry):
 *       file bytes that cannot start a delimiter are handed on at once,
 *       from the feed itself when it is at least a delimiter long.
 *   (2) The fields before the file count against S3_POST_FIELDS_MAX,
 *       their part headers included.
 *   (3) A field name (compared without case) appears once: the value the
 *       policy approved is the value used.
 *
 * The policy (S3's "Creating a POST Policy"): {"expiration": ISO 8601,
 * "conditions": [...]} where a condition is {"field": "value"} (exact),
 * ["eq", "$field", "value"], ["starts-with", "$field", "prefix"] or
 * ["content-length-range", min, max]. Field names compare without case.
 *
 * Start reading at s3_form_feed() and s3_post_policy_check().
 */
#include "api/s3_post_form.h"

#include "base/buf.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum form_state { F_PREAMBLE, F_AFTER_DELIM, F_HEADERS, F_FIELD, F_FILE, F_REST, F_END };

struct s3_form {
  arena *a;
  char *delim;             /* "\r\n--" boundary */
  size_t dlen;
  buf win;                 /* bytes received and not consumed yet */
  enum form_state state;
  size_t pre_bytes;        /* bytes of fields and part headers so far (invariant 2) */
  str_pair *fields;        /* before the file, names lower case */
  size_t nfields;
  size_t cap;
  const char *part_name;   /* the current part's name */
  s3_form_cb cb;
  bool file_seen;          /* the file part began */
};

static int malformed(err *e)
{
  return err_set(e, ERR_MALFORMED_POST,
                 "The body of your POST request is not well-formed multipart/form-data.");
}

static int too_much(err *e)
{
  return err_set(e, ERR_MAX_POST_PRE_DATA,
                 "Your POST request fields preceeding the upload file was too large.");
}

/* A parameter of a header value ("form-data; name=\"key\""), or NULL. */
static const char *header_param(arena *a, const char *v, size_t vn, const char *param)
{
  size_t pl = strlen(param);
  const char *end = v + vn;
  const char *p = v;
  while (p < end) {
    const char *semi = memchr(p, ';', (size_t)(end - p));
    if (semi == NULL)
      return NULL;
    p = semi + 1;
    while (p < end && (*p == ' ' || *p == '\t'))
      p++;
    if ((size_t)(end - p) > pl && strncasecmp(p, param, pl) == 0 && p[pl] == '=') {
      p += pl + 1;
      if (p < end && *p == '"') {
        p++;
        char *out = arena_alloc(a, (size_t)(end - p) + 1);
        size_t k = 0;
        while (p < end && *p != '"') {
          if (*p == '\\' && p + 1 < end)
            p++;
          out[k++] = *p++;
        }
        if (p >= end)
          return NULL;  /* unterminated */
        out[k] = '\0';
        return out;
      }
      const char *q = p;
      while (q < end && *q != ';' && *q != ' ' && *q != '\t')
        q++;
      return arena_strndup(a, p, (size_t)(q - p));
    }
  }
  return NULL;
}

int s3_form_new(arena *a, const char *content_type, const s3_form_cb *cb, s3_form **out, err *e)
{
  *out = NULL;
  static const char mt[] = "multipart/form-data";
  if (content_type == NULL || strncasecmp(content_type, mt, sizeof mt - 1) != 0)
    return err_set(e, ERR_MALFORMED_POST,
                   "POST requires a multipart/form-data body (Content-Type '%.64s')",
                   content_type != NULL ? content_type : "");
  const char *b = header_param(a, content_type, strlen(content_type), "boundary");
  size_t bl = b != NULL ? strlen(b) : 0;
  if (bl == 0 || bl > S3_POST_BOUNDARY_MAX)
    return err_set(e, ERR_MALFORMED_POST, "the multipart/form-data Content-Type has no valid boundary");
  s3_form *f = arena_alloc(a, sizeof *f);
  memset(f, 0, sizeof *f);
  f->a = a;
  f->delim = arena_sprintf(a, "\r\n--%s", b);
  f->dlen = bl + 4;
  f->cb = *cb;
  buf_init(&f->win, SIZE_MAX);
  if (buf_append(&f->win, "\r\n", 2) != 0)
    return malformed(e);
  *out = f;
  return 0;
}

s3_form *s3_form_free(s3_form *f)
{
  if (f != NULL)
    buf_release(&f->win);
  return NULL;
}

static int field_add(s3_form *f, const char *name, const char *v, size_t n, err *e)
{
  if (memchr(v, '\0', n) != NULL)
    return err_set(e, ERR_INVALID, "the form field '%s' holds a NUL character", name);
  /* one value per field: the policy checks the value that is used */
  for (size_t i = 0; i < f->nfields; i++)
    if (strcmp(f->fields[i].name, name) == 0)
      return err_set(e, ERR_INVALID, "the form field '%.64s' appears more than once", name);
  if (f->nfields == f->cap) {
    size_t cap = f->cap == 0 ? 16 : 2 * f->cap;
    str_pair *p = arena_alloc(f->a, cap * sizeof *p);
    if (f->nfields > 0)
      memcpy(p, f->fields, f->nfields * sizeof *p);
    f->fields = p;
    f->cap = cap;
  }
  f->fields[f->nfields].name = name;
  f->fields[f->nfields].value = arena_strndup(f->a, v, n);
  f->nfields++;
  return 0;
}

/* A part's headers (without the blank line): its name and filename. */
static int part_headers(s3_form *f, const char *h, size_t n, const char **filename, err *e)
{
  const char *name = NULL;
  *filename = "";
  const char *end = h + n;
  const char *p = h;
  while (p < end) {
    const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    const char *le = eol != NULL ? eol : end;
    const char *colon = memchr(p, ':', (size_t)(le - p));
    if (colon == NULL)
      return malformed(e);
    static const char cd[] = "content-disposition";
    if ((size_t)(colon - p) == sizeof cd - 1 && strncasecmp(p, cd, sizeof cd - 1) == 0) {
      const char *v = colon + 1;
      while (v < le && (*v == ' ' || *v == '\t'))
        v++;
      if ((size_t)(le - v) < 9 || strncasecmp(v, "form-data", 9) != 0)
        return malformed(e);
      name = header_param(f->a, v, (size_t)(le - v), "name");
      const char *fn = header_param(f->a, v, (size_t)(le - v), "filename");
      if (fn != NULL)
        *filename = fn;
    }
    p = eol != NULL ? eol + 2 : end;
  }
  if (name == NULL || name[0] == '\0')
    return malformed(e);
  char *lname = arena_strdup(f->a, name);
  for (char *q = lname; *q != '\0'; q++)
    if (*q >= 'A' && *q <= 'Z')
      *q = (char)(*q - 'A' + 'a');
  f->part_name = lname;
  return 0;
}

/* Consumes what it can of the window; the rest waits for more bytes. */
static int process(s3_form *f, err *e)
{
  size_t pos = 0;
  int rc = 0;
  for (;;) {
    const char *d = f->win.data + pos;
    size_t avail = f->win.len - pos;
    if (f->state == F_REST || f->state == F_END) {
      pos = f->win.len;
      break;
    }
    if (f->state == F_PREAMBLE) {
      const char *hit = memmem(d, avail, f->delim, f->dlen);
      if (hit == NULL) {
        size_t drop = avail >= f->dlen ? avail - (f->dlen - 1) : 0;
        f->pre_bytes += drop;
        pos += drop;
        if (f->pre_bytes > S3_POST_FIELDS_MAX)
          return too_much(e);
        break;
      }
      f->pre_bytes += (size_t)(hit - d);
      pos += (size_t)(hit - d) + f->dlen;
      f->state = F_AFTER_DELIM;
    } else if (f->state == F_AFTER_DELIM) {
      if (avail < 2)
        break;
      if (d[0] == '-' && d[1] == '-') {
        f->state = F_END;
      } else if (d[0] == '\r' && d[1] == '\n') {
        f->state = F_HEADERS;
      } else {
        return malformed(e);
      }
      pos += 2;
    } else if (f->state == F_HEADERS) {
      size_t hlen;
      size_t skip;
      if (avail >= 2 && d[0] == '\r' && d[1] == '\n') {
        hlen = 0;  /* no headers at all: a part without a name */
        skip = 2;
      } else {
        const char *hit = memmem(d, avail, "\r\n\r\n", 4);
        if (hit == NULL) {  /* the headers take at least avail - 3 bytes */
          if (f->pre_bytes + avail > S3_POST_FIELDS_MAX + 3)
            return too_much(e);
          break;
        }
        hlen = (size_t)(hit - d);
        skip = hlen + 4;
      }
      f->pre_bytes += skip;
      if (f->pre_bytes > S3_POST_FIELDS_MAX)
        return too_much(e);
      const char *filename;
      if ((rc = part_headers(f, d, hlen, &filename, e)) != 0)
        return rc;
      pos += skip;
      if (strcmp(f->part_name, "file") == 0) {
        f->state = F_FILE;
        f->file_seen = true;
        if ((rc = f->cb.file_begin(f->cb.ctx, filename, e)) != 0)
          return rc;
      } else {
        f->state = F_FIELD;
      }
    } else if (f->state == F_FIELD) {
      const char *hit = memmem(d, avail, f->delim, f->dlen);
      if (hit == NULL) {  /* the value takes at least avail - (dlen - 1) bytes */
        if (f->pre_bytes + avail > S3_POST_FIELDS_MAX + f->dlen - 1)
          return too_much(e);
        break;
      }
      size_t vlen = (size_t)(hit - d);
      f->pre_bytes += vlen;
      if (f->pre_bytes > S3_POST_FIELDS_MAX)
        return too_much(e);
      if ((rc = field_add(f, f->part_name, d, vlen, e)) != 0)
        return rc;
      pos += vlen + f->dlen;
      f->state = F_AFTER_DELIM;
    } else { /* F_FILE */
      const char *hit = memmem(d, avail, f->delim, f->dlen);
      size_t out = hit != NULL ? (size_t)(hit - d) : avail >= f->dlen ? avail - (f->dlen - 1) : 0;
      if (out > 0 && (rc = f->cb.file_data(f->cb.ctx, d, out, e)) != 0)
        return rc;
      pos += out;
      if (hit == NULL)
        break;
      pos += f->dlen;
      f->state = F_REST;
    }
  }
  if (pos > 0) {
    memmove(f->win.data, f->win.data + pos, f->win.len - pos);
    f->win.len -= pos;
  }
  return 0;
}

/* The file's bytes straight from the feed (no copy through the window):
 * the carry (less than a delimiter) is looked at joined to the feed's
 * first bytes, then the feed alone. n is at least a delimiter. */
static int feed_file(s3_form *f, const char *p, size_t n, err *e)
{
  int rc;
  size_t cl = f->win.len;
  if (cl > 0) {
    char tmp[2 * (S3_POST_BOUNDARY_MAX + 4)];
    memcpy(tmp, f->win.data, cl);
    memcpy(tmp + cl, p, f->dlen - 1);
    const char *hit = memmem(tmp, cl + f->dlen - 1, f->delim, f->dlen);
    if (hit != NULL && (size_t)(hit - tmp) < cl) {  /* the first one starts in the carry */
      size_t i = (size_t)(hit - tmp);
      rc = i > 0 ? f->cb.file_data(f->cb.ctx, f->win.data, i, e) : 0;
      f->win.len = 0;
      f->state = F_REST;
      return rc;
    }
    if ((rc = f->cb.file_data(f->cb.ctx, f->win.data, cl, e)) != 0)
      return rc;
    f->win.len = 0;
  }
  const char *hit = memmem(p, n, f->delim, f->dlen);
  if (hit != NULL) {
    size_t i = (size_t)(hit - p);
    f->state = F_REST;
    return i > 0 ? f->cb.file_data(f->cb.ctx, p, i, e) : 0;
  }
  size_t out = n - (f->dlen - 1);
  if ((rc = f->cb.file_data(f->cb.ctx, p, out, e)) != 0)
    return rc;
  return buf_append(&f->win, p + out, f->dlen - 1) != 0 ? malformed(e) : 0;
}

int s3_form_feed(s3_form *f, const void *p, size_t n, err *e)
{
  if (f->state == F_REST || f->state == F_END)
    return 0;
  if (n == 0)
    return 0;
  if (f->state == F_FILE && n >= f->dlen && f->win.len < f->dlen)
    return feed_file(f, p, n, e);
  if (buf_append(&f->win, p, n) != 0)
    return malformed(e);
  return process(f, e);
}

int s3_form_finish(s3_form *f, err *e)
{
  if (f->state == F_REST)
    return 0;
  if (!f->file_seen)
    return err_set(e, ERR_INVALID, "POST requires exactly one file upload per request.");
  return malformed(e);
}

const str_pair *s3_form_fields(const s3_form *f, size_t *n)
{
  *n = f->nfields;
  return f->fields;
}

const char *s3_form_field(const s3_form *f, const char *lname)
{
  for (size_t i = 0; i < f->nfields; i++)
    if (strcmp(f->fields[i].name, lname) == 0)
      return f->fields[i].value;
  return NULL;
}

/* ---- the policy ---- */

static const char *field_value(const str_pair *fields, size_t n, const char *bucket,
                               const char *lname)
{
  if (strcmp(lname, "bucket") == 0)
    return bucket;
  for (size_t i = 0; i < n; i++)
    if (strcmp(fields[i].name, lname) == 0)
      return fields[i].value;
  return NULL;
}

/* "$Content-Type" -> "content-type" in a; NULL without the '$'. */
static char *cond_field(arena *a, const char *s)
{
  if (s == NULL || s[0] != '$' || s[1] == '\0')
    return NULL;
  char *l = arena_strdup(a, s + 1);
  for (char *q = l; *q != '\0'; q++)
    if (*q >= 'A' && *q <= 'Z')
      *q = (char)(*q - 'A' + 'a');
  return l;
}

static int cond_failed(arena *a, json_t *cond, err *e)
{
  char *txt = json_dumps(cond, JSON_COMPACT | JSON_ENCODE_ANY);
  const char *t = txt != NULL ? arena_strdup(a, txt) : "?";
  free(txt);
  return err_set(e, ERR_DENIED, "Invalid according to Policy: Policy Condition failed: %.400s", t);
}

static bool json_u64(json_t *v, uint64_t *out)
{
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i < 0)
      return false;
    *out = (uint64_t)i;
    return true;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    if (*s == '\0' || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
      return false;
    *out = strtoull(s, NULL, 10);
    return true;
  }
  return false;
}

/* Marks every field the condition names as covered. */
static void cover(const str_pair *fields, size_t n, bool *covered, const char *lname)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(fields[i].name, lname) == 0)
      covered[i] = true;
}

static int check_condition(arena *a, json_t *c, const str_pair *fields, size_t n,
                           const char *bucket, bool *covered, uint64_t *len_min,
                           uint64_t *len_max, err *e)
{
  if (json_is_object(c)) {
    if (json_object_size(c) != 1)
      return err_set(e, ERR_INVALID_POLICY_DOCUMENT,
                     "Invalid Policy: Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.");
    const char *k = json_object_iter_key(json_object_iter(c));
    json_t *v = json_object_iter_value(json_object_iter(c));
    if (!json_is_string(v))
      return err_set(e, ERR_INVALID_POLICY_DOCUMENT,
                     "Invalid Policy: Invalid Simple-Condition: value must be a string.");
    char *lname = cond_field(a, arena_sprintf(a, "$%s", k));
    cover(fields, n, covered, lname);
    const char *got = field_value(fields, n, bucket, lname);
    if (got == NULL || strcmp(got, json_string_value(v)) != 0)
      return cond_failed(a, c, e);
    return 0;
  }
  if (!json_is_array(c) || json_array_size(c) != 3 || !json_is_string(json_array_get(c, 0)))
    return err_set(e, ERR_INVALID_POLICY_DOCUMENT,
                   "Invalid Policy: Invalid Condition: a condition must be an object or an array of three");
  const char *op = json_string_value(json_array_get(c, 0));
  if (strcasecmp(op, "content-length-range") == 0) {
    uint64_t lo;
    uint64_t hi;
    if (!json_u64(json_array_get(c, 1), &lo) || !json_u64(json_array_get(c, 2), &hi))
      return err_set(e, ERR_INVALID_POLICY_DOCUMENT,
                     "Invalid Policy: Invalid 'content-length-range' condition: bounds must be non-negative integers");
    if (lo > *len_min)
      *len_min = lo;
    if (hi < *len_max)
      *len_max = hi;
    return 0;
  }
  bool eq = strcasecmp(op, "eq") == 0;
  if (!eq && strcasecmp(op, "starts-with") != 0)
    return err_set(e, ERR_INVALID_POLICY_DOCUMENT,
                   "Invalid Policy: Invalid Condition: unknown operation '%.64s'", op);
  json_t *fv = json_array_get(c, 1);
  json_t *want = json_array_get(c, 2);
  char *lname = json_is_string(fv) ? cond_field(a, json_string_value(fv)) : NULL;
  if (lname == NULL || !json_is_string(want))
    return err_set(e, ERR_INVALID_POLICY_DOCUMENT,
                   "Invalid Policy: Invalid Condition: the field must be a string starting with '$' and the value a string");
  cover(fields, n, covered, lname);
  const char *got = field_value(fields, n, bucket, lname);
  if (got == NULL)
    got = "";
  const char *w = json_string_value(want);
  bool ok;
  if (eq) {
    ok = strcmp(got, w) == 0;
  } else if (strcmp(lname, "content-type") == 0 && strchr(got, ',') != NULL) {
    /* S3: each of a comma-separated Content-Type's values must match */
    ok = true;
    for (const char *p = got; ok;) {
      while (*p == ' ')
        p++;
      ok = strncmp(p, w, strlen(w)) == 0;
      const char *comma = strchr(p, ',');
      if (comma == NULL)
        break;
      p = comma + 1;
    }
  } else {
    ok = strncmp(got, w, strlen(w)) == 0;
  }
  return ok ? 0 : cond_failed(a, c, e);
}

/* Fields that need no condition. */
static bool exempt(const char *lname)
{
  return strcmp(lname, "x-amz-signature") == 0 || strcmp(lname, "file") == 0 ||
         strcmp(lname, "policy") == 0 || strncmp(lname, "x-ignore-", 9) == 0;
}

int s3_post_policy_check(arena *a, const char *policy, size_t len, const str_pair *fields,
                         size_t nfields, const char *bucket, int64_t now_ms, uint64_t *len_min,
                         uint64_t *len_max, err *e)
{
  *len_min = 0;
  *len_max = UINT64_MAX;
  json_error_t je;
  json_t *doc = json_loadb(policy, len, JSON_REJECT_DUPLICATES, &je);
  int rc = 0;
  if (!json_is_object(doc)) {
    rc = err_set(e, ERR_INVALID_POLICY_DOCUMENT, "Invalid Policy: Invalid JSON.");
    goto out;
  }
  const char *exp = json_string_value(json_object_get(doc, "expiration"));
  int64_t exp_ms;
  if (exp == NULL || !time_parse_iso8601(exp, &exp_ms)) {
    rc = err_set(e, ERR_INVALID_POLICY_DOCUMENT, "Invalid Policy: Invalid 'expiration' value: '%.64s'",
                 exp != NULL ? exp : "");
    goto out;
  }
  json_t *conds = json_object_get(doc, "conditions");
  if (!json_is_array(conds)) {
    rc = err_set(e, ERR_INVALID_POLICY_DOCUMENT, "Invalid Policy: Invalid 'conditions' value: must be a list");
    goto out;
  }
  if (exp_ms < now_ms) {
    rc = err_set(e, ERR_DENIED, "Invalid according to Policy: Policy expired.");
    goto out;
  }
  bool *covered = arena_alloc(a, nfields + 1);
  memset(covered, 0, nfields + 1);
  for (size_t i = 0; i < json_array_size(conds); i++)
    if ((rc = check_condition(a, json_array_get(conds, i), fields, nfields, bucket, covered,
                              len_min, len_max, e)) != 0)
      goto out;
  for (size_t i = 0; i < nfields; i++)
    if (!covered[i] && !exempt(fields[i].name)) {
      rc = err_set(e, ERR_DENIED, "Invalid according to Policy: Extra input fields: %.200s",
                   fields[i].name);
      goto out;
    }
out:
  json_decref(doc);
  return rc;
}
