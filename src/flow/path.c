/* flow/path.c -- the States Language's data paths: JSONPath reading
 * (InputPath, OutputPath, "x.$" values, Choice Variables), reference paths
 * (ResultPath), payload templates (Parameters, ResultSelector) and the
 * intrinsic functions.
 *
 * The JSONPath subset: "$" (the input), "$$" (the context object) or
 * "$name" (a workflow variable, flow/query.c),
 * followed by any number of ".name", "['name']" / ["name"], "[N]" (N < 0
 * counts from the end), "[*]" and ".*". A path with a wildcard is
 * indefinite: it gives the array of what matched (maybe empty); a definite
 * path that matches nothing is States.Runtime. Reference paths allow only
 * names and indexes. Filters ("[?(...)]"), slices and ".." are refused by
 * the definition check.
 *
 * Invariants:
 *   (1) Nothing here changes its inputs: results are new references (or
 *       new references to shared parts of the input, which nobody mutates).
 *   (2) Every error names the path or function that failed.
 *
 * Start reading at flow_path_get().
 */
#include "flow/internal.h"
#include "flow/query.h"

#include "base/hash.h"
#include "base/text.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing ---- */

enum seg_kind { SEG_NAME, SEG_INDEX, SEG_ALL };

typedef struct seg {
  enum seg_kind kind;
  char *name;      /* SEG_NAME, malloc'd */
  long index;      /* SEG_INDEX */
} seg;

typedef struct jpath {
  bool context;    /* "$$" */
  char *var;       /* "$name": a variable, malloc'd */
  seg *segs;
  size_t n;
  bool definite;
} jpath;

static void jpath_release(jpath *p)
{
  for (size_t i = 0; i < p->n; i++)
    free(p->segs[i].name);
  free(p->segs);
  free(p->var);
  p->var = NULL;
  p->segs = NULL;
  p->n = 0;
}

static void push(jpath *p, seg s)
{
  p->segs = xrealloc(p->segs, (p->n + 1) * sizeof *p->segs);
  p->segs[p->n++] = s;
}

/* 0, or -1 when text is not a path of the subset (reference: names and
 * indexes only). */
static int jpath_parse(const char *text, bool reference, jpath *p)
{
  memset(p, 0, sizeof *p);
  p->definite = true;
  const char *s = text;
  if (s[0] != '$')
    return -1;
  s++;
  if (*s == '$') {
    if (reference)
      return -1;
    p->context = true;
    s++;
  } else if (*s != '.' && *s != '[' && *s != '\0') {
    size_t n = strcspn(s, ".[");
    if (reference || !flow__var_name_valid(s, n))
      return -1;
    p->var = xstrndup(s, n);
    s += n;
  }
  while (*s) {
    if (*s == '.') {
      s++;
      if (*s == '*') {
        if (reference)
          goto bad;
        push(p, (seg){SEG_ALL, NULL, 0});
        p->definite = false;
        s++;
        continue;
      }
      size_t n = strcspn(s, ".[");
      if (n == 0)
        goto bad;
      for (size_t i = 0; i < n; i++)
        if (s[i] == ' ' || s[i] == '(' || s[i] == ')' || s[i] == '?' || s[i] == '@' ||
            s[i] == ']' || s[i] == '\'' || s[i] == '"' || s[i] == ',' || s[i] == '*')
          goto bad;
      push(p, (seg){SEG_NAME, xstrndup(s, n), 0});
      s += n;
    } else if (*s == '[') {
      s++;
      if (*s == '\'' || *s == '"') {
        char q = *s++;
        const char *end = strchr(s, q);
        if (end == NULL || end[1] != ']')
          goto bad;
        push(p, (seg){SEG_NAME, xstrndup(s, (size_t)(end - s)), 0});
        s = end + 2;
      } else if (*s == '*') {
        if (reference || s[1] != ']')
          goto bad;
        push(p, (seg){SEG_ALL, NULL, 0});
        p->definite = false;
        s += 2;
      } else {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || *end != ']' || (reference && v < 0))
          goto bad;
        push(p, (seg){SEG_INDEX, NULL, v});
        s = end + 1;
      }
    } else {
      goto bad;
    }
  }
  return 0;
bad:
  jpath_release(p);
  return -1;
}

bool flow__path_valid(const char *text, bool reference)
{
  jpath p;
  if (jpath_parse(text, reference, &p) != 0)
    return false;
  jpath_release(&p);
  return true;
}

/* ---- reading ---- */

static void collect(json_t *v, const seg *segs, size_t n, json_t *out)
{
  if (n == 0) {
    json_array_append(out, v);
    return;
  }
  const seg *g = &segs[0];
  if (g->kind == SEG_NAME) {
    json_t *c = json_is_object(v) ? json_object_get(v, g->name) : NULL;
    if (c != NULL)
      collect(c, segs + 1, n - 1, out);
  } else if (g->kind == SEG_INDEX) {
    if (!json_is_array(v))
      return;
    long len = (long)json_array_size(v);
    long i = g->index < 0 ? len + g->index : g->index;
    if (i >= 0 && i < len)
      collect(json_array_get(v, (size_t)i), segs + 1, n - 1, out);
  } else if (json_is_array(v)) {
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c) {
      collect(c, segs + 1, n - 1, out);
    }
  } else if (json_is_object(v)) {
    const char *k;
    json_t *c;
    json_object_foreach(v, k, c) {
      collect(c, segs + 1, n - 1, out);
    }
  }
}

int flow_path_get(const char *path, json_t *input, json_t *ctx, json_t **out, err *e)
{
  *out = NULL;
  jpath p;
  if (path == NULL || jpath_parse(path, false, &p) != 0)
    return err_set(e, FLOW_ERR_RUNTIME, "the path '%s' is not a valid JSONPath",
                   path ? path : "");
  json_t *root = p.var != NULL ? json_object_get(flow__vars_now, p.var) : p.context ? ctx : input;
  if (p.var != NULL && root == NULL) {
    int rc = err_set(e, FLOW_ERR_RUNTIME, "The variable '$%s' in the path '%s' is not defined",
                     p.var, path);
    jpath_release(&p);
    return rc;
  }
  json_t *all = json_array();
  if (root != NULL)
    collect(root, p.segs, p.n, all);
  int rc = 0;
  if (!p.definite) {
    *out = all;
    all = NULL;
  } else if (json_array_size(all) == 1) {
    *out = json_incref(json_array_get(all, 0));
  } else {
    char *dump = input != NULL ? json_dumps(p.context ? ctx : input, JSON_COMPACT | JSON_ENCODE_ANY)
                               : NULL;
    rc = err_set(e, FLOW_ERR_RUNTIME,
                 "The JSONPath '%s' could not be found in the input '%.200s'", path,
                 dump ? dump : "null");
    free(dump);
  }
  json_decref(all);
  jpath_release(&p);
  return rc;
}

/* ---- ResultPath ---- */

int flow_path_set(json_t *doc, const char *path, json_t *value, json_t **out, err *e)
{
  *out = NULL;
  jpath p;
  if (path == NULL || jpath_parse(path, true, &p) != 0)
    return err_set(e, FLOW_ERR_RUNTIME, "the ResultPath '%s' is not a valid reference path",
                   path ? path : "");
  if (p.n == 0) {
    jpath_release(&p);
    *out = json_incref(value);
    return 0;
  }
  json_t *root = json_deep_copy(doc);
  if (!json_is_object(root) && p.segs[0].kind == SEG_NAME) {
    json_decref(root);
    jpath_release(&p);
    return err_set(e, FLOW_ERR_RUNTIME, "Unable to apply ResultPath \"%s\" to input: the "
                   "input is not an object", path);
  }
  json_t *cur = root;
  int rc = 0;
  for (size_t i = 0; i < p.n && rc == 0; i++) {
    bool last = i + 1 == p.n;
    seg *g = &p.segs[i];
    if (g->kind == SEG_NAME) {
      if (!json_is_object(cur)) {
        rc = err_set(e, FLOW_ERR_RUNTIME, "Unable to apply ResultPath \"%s\": '%s' is not in "
                     "an object", path, g->name);
        break;
      }
      if (last) {
        if (json_object_set(cur, g->name, value) != 0)
          rc = err_set(e, FLOW_ERR_RUNTIME, "Unable to apply ResultPath \"%s\"", path);
      } else {
        json_t *next = json_object_get(cur, g->name);
        if (!json_is_object(next) && !json_is_array(next)) {
          next = json_object();
          if (json_object_set_new(cur, g->name, next) != 0) {
            rc = err_set(e, FLOW_ERR_RUNTIME, "Unable to apply ResultPath \"%s\"", path);
            break;
          }
        }
        cur = next;
      }
    } else {
      if (!json_is_array(cur) || g->index >= (long)json_array_size(cur)) {
        rc = err_set(e, FLOW_ERR_RUNTIME, "Unable to apply ResultPath \"%s\": index %ld is "
                     "out of range", path, g->index);
        break;
      }
      if (last)
        json_array_set(cur, (size_t)g->index, value);
      else
        cur = json_array_get(cur, (size_t)g->index);
    }
  }
  jpath_release(&p);
  if (rc != 0) {
    json_decref(root);
    return rc;
  }
  *out = root;
  return 0;
}

/* ---- templates ---- */

int flow_template_eval(json_t *tmpl, json_t *input, json_t *ctx, json_t **out, err *e)
{
  *out = NULL;
  if (json_is_array(tmpl)) {
    json_t *arr = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(tmpl, i, v) {
      json_t *r;
      int rc = flow_template_eval(v, input, ctx, &r, e);
      if (rc != 0) {
        json_decref(arr);
        return rc;
      }
      json_array_append_new(arr, r);
    }
    *out = arr;
    return 0;
  }
  if (!json_is_object(tmpl)) {
    *out = json_incref(tmpl);
    return 0;
  }
  json_t *obj = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(tmpl, k, v) {
    size_t kl = strlen(k);
    json_t *r = NULL;
    int rc;
    if (kl > 2 && strcmp(k + kl - 2, ".$") == 0 && json_is_string(v)) {
      const char *expr = json_string_value(v);
      if (expr[0] == '$')
        rc = flow_path_get(expr, input, ctx, &r, e);
      else
        rc = flow_intrinsic_eval(expr, input, ctx, &r, e);
      if (rc == 0)
        json_object_setn_new(obj, k, kl - 2, r);
    } else {
      rc = flow_template_eval(v, input, ctx, &r, e);
      if (rc == 0)
        json_object_set_new(obj, k, r);
    }
    if (rc != 0) {
      json_decref(obj);
      return rc;
    }
  }
  *out = obj;
  return 0;
}

/* ---- intrinsic functions ---- */

typedef struct iparser {
  const char *s;      /* where we are */
  json_t *input;
  json_t *ctx;
  err *e;
  int depth;
} iparser;

static void skip_ws(iparser *p)
{
  while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n')
    p->s++;
}

static int ifail(iparser *p, const char *fn, const char *fmt, const char *detail)
{
  return err_set(p->e, FLOW_ERR_INTRINSIC, "Invalid arguments in %s: %s%s", fn, fmt,
                 detail ? detail : "");
}

static int call(iparser *p, json_t **out);

/* One argument: 'string', number, true/false/null, a path, or a call. */
static int argument(iparser *p, json_t **out)
{
  skip_ws(p);
  const char *s = p->s;
  if (*s == '\'') {
    buf b;
    buf_init(&b, FLOW_MAX_PAYLOAD);
    s++;
    while (*s && *s != '\'') {
      /* \' and \\ are unescaped here; \{ and \} stay for States.Format */
      if (*s == '\\' && s[1] != '\0' && s[1] != '{' && s[1] != '}')
        s++;
      buf_append(&b, s, 1);
      s++;
    }
    if (*s != '\'') {
      buf_release(&b);
      return err_set(p->e, FLOW_ERR_INTRINSIC, "unterminated string in intrinsic function");
    }
    *out = json_stringn(b.data ? b.data : "", b.len);
    buf_release(&b);
    p->s = s + 1;
    return 0;
  }
  if (*s == '$') {
    size_t n = 0;
    int depth = 0;
    char quote = 0;
    while (s[n]) {
      char c = s[n];
      if (quote) {
        if (c == quote)
          quote = 0;
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == '[') {
        depth++;
      } else if (c == ']') {
        depth--;
      } else if ((c == ',' || c == ')' || c == ' ') && depth == 0) {
        break;
      }
      n++;
    }
    char *path = xstrndup(s, n);
    int rc = flow_path_get(path, p->input, p->ctx, out, p->e);
    free(path);
    p->s = s + n;
    return rc;
  }
  if (str_starts(s, "States.")) {
    return call(p, out);
  }
  if (str_starts(s, "true") || str_starts(s, "false") || str_starts(s, "null")) {
    *out = s[0] == 't' ? json_true() : s[0] == 'f' ? json_false() : json_null();
    p->s += s[0] == 'f' ? 5 : 4;
    return 0;
  }
  char *end;
  double d = strtod(s, &end);
  if (end == s)
    return err_set(p->e, FLOW_ERR_INTRINSIC, "cannot read the intrinsic argument '%.40s'", s);
  bool integral = true;
  for (const char *c = s; c < end; c++)
    if (*c == '.' || *c == 'e' || *c == 'E')
      integral = false;
  *out = integral ? json_integer((json_int_t)strtoll(s, NULL, 10)) : json_real(d);
  p->s = end;
  return 0;
}

static void format_value(buf *b, json_t *v)
{
  if (json_is_string(v)) {
    buf_puts(b, json_string_value(v));
  } else {
    char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    buf_puts(b, d ? d : "null");
    free(d);
  }
}

static bool num(json_t *v, double *d)
{
  if (!json_is_number(v))
    return false;
  *d = json_number_value(v);
  return true;
}

static json_t *number_json(double d)
{
  if (d == floor(d) && fabs(d) < 9e15)
    return json_integer((json_int_t)d);
  return json_real(d);
}

/* Runs function fn over args[n]. */
static int apply(iparser *p, const char *fn, json_t **a, size_t n, json_t **out)
{
#define NARGS(lo, hi)                                                              \
  do {                                                                             \
    if (n + 1 < (lo) + 1u || n > (hi))                                             \
      return ifail(p, fn, "wrong number of arguments", NULL);                      \
  } while (0)
  if (strcmp(fn, "States.Format") == 0) {
    if (n < 1 || !json_is_string(a[0]))
      return ifail(p, fn, "the first argument must be a string", NULL);
    const char *f = json_string_value(a[0]);
    buf b;
    buf_init(&b, FLOW_MAX_PAYLOAD);
    size_t next = 1;
    for (const char *c = f; *c; c++) {
      if (*c == '\\' && c[1]) {
        c++;
        buf_append(&b, c, 1);
      } else if (c[0] == '{' && c[1] == '}') {
        if (next >= n) {
          buf_release(&b);
          return ifail(p, fn, "more {} than arguments", NULL);
        }
        format_value(&b, a[next++]);
        c++;
      } else {
        buf_append(&b, c, 1);
      }
    }
    if (next != n) {
      buf_release(&b);
      return ifail(p, fn, "more arguments than {}", NULL);
    }
    *out = json_stringn(b.data ? b.data : "", b.len);
    buf_release(&b);
    return 0;
  }
  if (strcmp(fn, "States.StringToJson") == 0) {
    NARGS(1, 1);
    if (!json_is_string(a[0]))
      return ifail(p, fn, "the argument must be a string", NULL);
    json_error_t je;
    *out = json_loads(json_string_value(a[0]), JSON_DECODE_ANY, &je);
    if (*out == NULL)
      return ifail(p, fn, "the string is not JSON: ", je.text);
    return 0;
  }
  if (strcmp(fn, "States.JsonToString") == 0) {
    NARGS(1, 1);
    char *d = json_dumps(a[0], JSON_COMPACT | JSON_ENCODE_ANY);
    *out = json_string(d ? d : "null");
    free(d);
    return 0;
  }
  if (strcmp(fn, "States.Array") == 0) {
    *out = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append(*out, a[i]);
    return 0;
  }
  if (strcmp(fn, "States.ArrayPartition") == 0) {
    NARGS(2, 2);
    if (!json_is_array(a[0]) || !json_is_integer(a[1]) || json_integer_value(a[1]) < 1)
      return ifail(p, fn, "expected an array and a positive chunk size", NULL);
    size_t chunk = (size_t)json_integer_value(a[1]);
    *out = json_array();
    json_t *cur = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(a[0], i, v) {
      if (i % chunk == 0) {
        cur = json_array();
        json_array_append_new(*out, cur);
      }
      json_array_append(cur, v);
    }
    return 0;
  }
  if (strcmp(fn, "States.ArrayContains") == 0) {
    NARGS(2, 2);
    if (!json_is_array(a[0]))
      return ifail(p, fn, "the first argument must be an array", NULL);
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(a[0], i, v) {
      found = found || json_equal(v, a[1]);
    }
    *out = json_boolean(found);
    return 0;
  }
  if (strcmp(fn, "States.ArrayRange") == 0) {
    NARGS(3, 3);
    double lo, hi, step;
    if (!num(a[0], &lo) || !num(a[1], &hi) || !num(a[2], &step) || step == 0)
      return ifail(p, fn, "expected three numbers, the step not 0", NULL);
    if (fabs((hi - lo) / step) > 1000)
      return ifail(p, fn, "the range has more than 1000 items", NULL);
    *out = json_array();
    for (double x = lo; step > 0 ? x <= hi : x >= hi; x += step)
      json_array_append_new(*out, number_json(x));
    return 0;
  }
  if (strcmp(fn, "States.ArrayGetItem") == 0) {
    NARGS(2, 2);
    if (!json_is_array(a[0]) || !json_is_integer(a[1]))
      return ifail(p, fn, "expected an array and an index", NULL);
    json_t *v = json_array_get(a[0], (size_t)json_integer_value(a[1]));
    if (v == NULL || json_integer_value(a[1]) < 0)
      return ifail(p, fn, "the index is out of range", NULL);
    *out = json_incref(v);
    return 0;
  }
  if (strcmp(fn, "States.ArrayLength") == 0) {
    NARGS(1, 1);
    if (!json_is_array(a[0]))
      return ifail(p, fn, "the argument must be an array", NULL);
    *out = json_integer((json_int_t)json_array_size(a[0]));
    return 0;
  }
  if (strcmp(fn, "States.ArrayUnique") == 0) {
    NARGS(1, 1);
    if (!json_is_array(a[0]))
      return ifail(p, fn, "the argument must be an array", NULL);
    *out = json_array();
    size_t i, j;
    json_t *v, *w;
    json_array_foreach(a[0], i, v) {
      bool dup = false;
      json_array_foreach(*out, j, w) {
        dup = dup || json_equal(v, w);
      }
      if (!dup)
        json_array_append(*out, v);
    }
    return 0;
  }
  if (strcmp(fn, "States.Base64Encode") == 0) {
    NARGS(1, 1);
    if (!json_is_string(a[0]))
      return ifail(p, fn, "the argument must be a string", NULL);
    size_t len = json_string_length(a[0]);
    char *o = xmalloc(base64_encoded_len(len) + 1);
    base64_encode((const uint8_t *)json_string_value(a[0]), len, o);
    *out = json_string(o);
    free(o);
    return 0;
  }
  if (strcmp(fn, "States.Base64Decode") == 0) {
    NARGS(1, 1);
    if (!json_is_string(a[0]))
      return ifail(p, fn, "the argument must be a string", NULL);
    size_t len = json_string_length(a[0]);
    uint8_t *o = xmalloc(len + 1);
    long got = base64_decode(json_string_value(a[0]), len, o, len + 1);
    if (got < 0) {
      free(o);
      return ifail(p, fn, "the argument is not base64", NULL);
    }
    *out = json_stringn((const char *)o, (size_t)got);
    free(o);
    if (*out == NULL)
      return ifail(p, fn, "the decoded bytes are not UTF-8", NULL);
    return 0;
  }
  if (strcmp(fn, "States.Hash") == 0) {
    NARGS(2, 2);
    if (!json_is_string(a[1]))
      return ifail(p, fn, "the algorithm must be a string", NULL);
    const char *alg = json_string_value(a[1]);
    char *d = json_is_string(a[0]) ? strdup(json_string_value(a[0]))
                                   : json_dumps(a[0], JSON_COMPACT | JSON_ENCODE_ANY);
    uint8_t h[64];
    size_t hl = 0;
    if (strcmp(alg, "SHA-256") == 0) {
      sha256(d, strlen(d), h);
      hl = SHA256_LEN;
    } else if (strcmp(alg, "MD5") == 0) {
      md5(d, strlen(d), h);
      hl = MD5_LEN;
    } else if (strcmp(alg, "SHA-1") == 0) {
      hasher hs;
      hash_init(&hs, HASH_SHA1);
      hash_update(&hs, d, strlen(d));
      hl = hash_final(&hs, h);
      hash_release(&hs);
    } else if (strcmp(alg, "SHA-384") == 0 || strcmp(alg, "SHA-512") == 0) {
      unsigned int ol = 0;
      EVP_Digest(d, strlen(d), h, &ol, alg[4] == '3' ? EVP_sha384() : EVP_sha512(), NULL);
      hl = ol;
    } else {
      free(d);
      return ifail(p, fn, "unknown algorithm ", alg);
    }
    free(d);
    char hex[129];
    hex_encode(h, hl, hex);
    hex[2 * hl] = '\0';
    *out = json_string(hex);
    return 0;
  }
  if (strcmp(fn, "States.JsonMerge") == 0) {
    NARGS(3, 3);
    if (!json_is_object(a[0]) || !json_is_object(a[1]))
      return ifail(p, fn, "expected two objects", NULL);
    if (json_is_true(a[2]))
      return ifail(p, fn, "deep merging is not supported: pass false", NULL);
    *out = json_deep_copy(a[0]);
    json_object_update(*out, a[1]);
    return 0;
  }
  if (strcmp(fn, "States.MathRandom") == 0) {
    NARGS(2, 3);
    if (!json_is_integer(a[0]) || !json_is_integer(a[1]) ||
        json_integer_value(a[1]) <= json_integer_value(a[0]))
      return ifail(p, fn, "expected a start below an end", NULL);
    uint64_t r;
    random_bytes(&r, sizeof r);
    json_int_t lo = json_integer_value(a[0]);
    json_int_t span = json_integer_value(a[1]) - lo;
    *out = json_integer(lo + (json_int_t)(r % (uint64_t)span));
    return 0;
  }
  if (strcmp(fn, "States.MathAdd") == 0) {
    NARGS(2, 2);
    double x, y;
    if (!num(a[0], &x) || !num(a[1], &y))
      return ifail(p, fn, "expected two numbers", NULL);
    *out = number_json(x + y);
    return 0;
  }
  if (strcmp(fn, "States.StringSplit") == 0) {
    NARGS(2, 2);
    if (!json_is_string(a[0]) || !json_is_string(a[1]))
      return ifail(p, fn, "expected two strings", NULL);
    const char *s = json_string_value(a[0]);
    const char *d = json_string_value(a[1]);
    *out = json_array();
    while (*s) {
      size_t k = *d ? strcspn(s, d) : 1;
      if (k > 0)
        json_array_append_new(*out, json_stringn(s, k));
      s += k;
      if (*s)
        s += *d ? 1 : 0;
    }
    return 0;
  }
  if (strcmp(fn, "States.UUID") == 0) {
    NARGS(0, 0);
    char u[37];
    uuid_v4(u);
    *out = json_string(u);
    return 0;
  }
#undef NARGS
  return err_set(p->e, FLOW_ERR_INTRINSIC, "unknown intrinsic function '%s'", fn);
}

static int call(iparser *p, json_t **out)
{
  *out = NULL;
  if (++p->depth > 10)
    return err_set(p->e, FLOW_ERR_INTRINSIC, "intrinsic functions nest deeper than 10");
  skip_ws(p);
  size_t nl = strspn(p->s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.");
  char name[64];
  if (nl == 0 || nl >= sizeof name || p->s[nl] != '(')
    return err_set(p->e, FLOW_ERR_INTRINSIC, "'%.60s' is not an intrinsic function call", p->s);
  memcpy(name, p->s, nl);
  name[nl] = '\0';
  p->s += nl + 1;
  json_t *args[32];
  size_t n = 0;
  int rc = 0;
  skip_ws(p);
  if (*p->s == ')') {
    p->s++;
  } else {
    for (;;) {
      if (n == 32) {
        rc = err_set(p->e, FLOW_ERR_INTRINSIC, "%s: too many arguments", name);
        break;
      }
      if ((rc = argument(p, &args[n])) != 0)
        break;
      n++;
      skip_ws(p);
      if (*p->s == ',') {
        p->s++;
        continue;
      }
      if (*p->s == ')') {
        p->s++;
        break;
      }
      rc = err_set(p->e, FLOW_ERR_INTRINSIC, "%s: expected ',' or ')' at '%.20s'", name, p->s);
      break;
    }
  }
  if (rc == 0)
    rc = apply(p, name, args, n, out);
  for (size_t i = 0; i < n; i++)
    json_decref(args[i]);
  p->depth--;
  return rc;
}

int flow_intrinsic_eval(const char *expr, json_t *input, json_t *ctx, json_t **out, err *e)
{
  iparser p = {.s = expr, .input = input, .ctx = ctx, .e = e};
  int rc = call(&p, out);
  if (rc == 0) {
    skip_ws(&p);
    if (*p.s != '\0') {
      json_decref(*out);
      *out = NULL;
      rc = err_set(e, FLOW_ERR_INTRINSIC, "unexpected '%.20s' after the intrinsic function",
                   p.s);
    }
  }
  return rc;
}

/* Syntax only: known names, balanced arguments (no evaluation). */
bool flow__intrinsic_valid(const char *expr)
{
  static const char *names[] = {
      "States.Format", "States.StringToJson", "States.JsonToString", "States.Array",
      "States.ArrayPartition", "States.ArrayContains", "States.ArrayRange",
      "States.ArrayGetItem", "States.ArrayLength", "States.ArrayUnique",
      "States.Base64Encode", "States.Base64Decode", "States.Hash", "States.JsonMerge",
      "States.MathRandom", "States.MathAdd", "States.StringSplit", "States.UUID"};
  const char *s = expr;
  int depth = 0;
  bool in_str = false;
  bool any = false;
  while (*s) {
    if (in_str) {
      if (*s == '\\' && s[1])
        s++;
      else if (*s == '\'')
        in_str = false;
      s++;
      continue;
    }
    if (*s == '\'') {
      in_str = true;
    } else if (str_starts(s, "States.")) {
      size_t nl = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.");
      bool known = false;
      for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        known = known || (strlen(names[i]) == nl && strncmp(names[i], s, nl) == 0);
      if (!known || s[nl] != '(')
        return false;
      any = true;
      s += nl;
      continue;
    } else if (*s == '(') {
      depth++;
    } else if (*s == ')') {
      if (--depth < 0)
        return false;
    }
    s++;
  }
  return any && depth == 0 && !in_str && str_starts(expr, "States.");
}
