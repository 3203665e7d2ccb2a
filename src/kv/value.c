/* kv/value.c -- AttributeValues: checking client input, the storage codec
 * of items, the order-preserving key encoding, equality and order.
 *
 * Why: an item is a typed tree (S, N, B, BOOL, NULL, L, M, SS, NS, BS).
 * In memory it is the wire's jansson tree ({"S": "x"}); on disk it is a
 * compact binary encoding of that tree (a type byte, lengths as varints,
 * binary values as raw bytes, numbers as their canonical text).
 *
 * Invariants:
 *   (1) Every value that reaches storage passed kv__av_check(): one type,
 *       numbers canonical (kv/num.c), sets non-empty and without
 *       duplicates, binary valid base64, nesting at most KV_DEPTH_MAX.
 *   (2) Key encodings sort as DynamoDB sorts sort keys: numbers by value,
 *       strings and binary by their bytes; each encoding is prefix-free, so
 *       a partition's entries are one contiguous range. Partition keys of
 *       more than KV_HASH_PLAIN encoded bytes are replaced by their SHA-256
 *       (partitions have no order); sort keys longer than KV_RANGE_PLAIN
 *       keep a prefix and a digest, so only such long keys that share the
 *       prefix may sort by digest (LMDB keys are at most 511 bytes).
 *
 * Start reading at kv__av_check().
 */
#include "internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_HASH_PLAIN 64
#define KV_RANGE_PLAIN 120
#define KV_RANGE_PREFIX 96

static const char *const types[] = {"S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"};
enum { T_S, T_N, T_B, T_BOOL, T_NULL, T_L, T_M, T_SS, T_NS, T_BS };

static int type_no(const char *t)
{
  for (int i = 0; i < 10; i++)
    if (strcmp(types[i], t) == 0)
      return i;
  return -1;
}

const char *kv__av_type(const json_t *av)
{
  if (!json_is_object(av) || json_object_size(av) != 1)
    return NULL;
  const char *t = json_object_iter_key(json_object_iter((json_t *)av));
  int no = type_no(t);
  return no < 0 ? NULL : types[no];
}

json_t *kv__av_num(const kv_num *n)
{
  char text[KV_NUM_TEXT];
  kv__num_format(n, text);
  return json_pack("{ss}", "N", text);
}

long kv__av_bytes(const json_t *av, arena *a, uint8_t **out)
{
  const char *s = json_string_value(json_object_get(av, "B"));
  if (s == NULL)
    return -1;
  size_t n = strlen(s);
  uint8_t *p = arena_alloc(a, n + 1);
  long len = base64_decode(s, n, p, n + 1);
  *out = p;
  return len;
}

static int norm_number(json_t *str, err *e)
{
  if (!json_is_string(str))
    return err_set(e, KV_ERR_SERIALIZATION, "NUMBER_VALUE cannot be converted to String");
  kv_num n;
  int rc = kv__num_parse(json_string_value(str), &n, e);
  if (rc != 0)
    return rc;
  char text[KV_NUM_TEXT];
  kv__num_format(&n, text);
  json_string_set(str, text);
  return 0;
}

static bool valid_b64(const char *s)
{
  size_t n = strlen(s);
  if (n % 4 != 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || (c == '=' && i >= n - 2);
    if (!ok)
      return false;
  }
  return true;
}

int kv__av_check(json_t *av, int depth, err *e)
{
  if (depth > KV_DEPTH_MAX)
    return err_set(e, KV_ERR_VALIDATION, "Nesting Levels have exceeded supported limits");
  if (!json_is_object(av))
    return err_set(e, KV_ERR_SERIALIZATION, "Start of structure or map found where not expected");
  if (json_object_size(av) == 0)
    return err_set(e, KV_ERR_VALIDATION,
                   "Supplied AttributeValue is empty, must contain exactly one of the supported "
                   "datatypes");
  if (json_object_size(av) > 1)
    return err_set(e, KV_ERR_VALIDATION,
                   "Supplied AttributeValue has more than one datatypes set, must contain exactly "
                   "one of the supported datatypes");
  const char *t = json_object_iter_key(json_object_iter(av));
  json_t *v = json_object_iter_value(json_object_iter(av));
  int rc;
  switch (type_no(t)) {
  case T_S:
    if (!json_is_string(v))
      return err_set(e, KV_ERR_SERIALIZATION, "STRING_VALUE can not be converted to a String");
    return 0;
  case T_N:
    return norm_number(v, e);
  case T_B:
    if (!json_is_string(v) || !valid_b64(json_string_value(v)))
      return err_set(e, KV_ERR_SERIALIZATION, "Base64 encoded length is expected a multiple of 4 "
                     "bytes but found: %zu", json_is_string(v) ? json_string_length(v) : 0);
    return 0;
  case T_BOOL:
    if (!json_is_boolean(v))
      return err_set(e, KV_ERR_SERIALIZATION, "BOOLEAN_VALUE cannot be converted to Boolean");
    return 0;
  case T_NULL:
    if (!json_is_true(v))
      return err_set(e, KV_ERR_VALIDATION,
                     "One or more parameter values were invalid: Null attribute value types must "
                     "have the value of true");
    return 0;
  case T_L: {
    if (!json_is_array(v))
      return err_set(e, KV_ERR_SERIALIZATION, "Unrecognized collection type class java.util.List");
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if ((rc = kv__av_check(x, depth + 1, e)) != 0) return rc;
    return 0;
  }
  case T_M: {
    if (!json_is_object(v))
      return err_set(e, KV_ERR_SERIALIZATION, "Unrecognized collection type class java.util.Map");
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) if ((rc = kv__av_check(x, depth + 1, e)) != 0) return rc;
    return 0;
  }
  case T_SS:
  case T_NS:
  case T_BS: {
    int no = type_no(t);
    if (!json_is_array(v))
      return err_set(e, KV_ERR_SERIALIZATION, "Unrecognized collection type class java.util.Set");
    if (json_array_size(v) == 0)
      return err_set(e, KV_ERR_VALIDATION,
                     "One or more parameter values were invalid: An %s set  may not be empty",
                     no == T_SS ? "string" : no == T_NS ? "number" : "binary");
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      if (!json_is_string(x))
        return err_set(e, KV_ERR_SERIALIZATION, "set members must be strings");
      if (no == T_NS && (rc = norm_number(x, e)) != 0)
        return rc;
      if (no == T_BS && !valid_b64(json_string_value(x)))
        return err_set(e, KV_ERR_SERIALIZATION, "Base64 encoded length is expected a multiple "
                       "of 4 bytes");
      for (size_t j = 0; j < i; j++)
        if (json_equal(json_array_get(v, j), x))
          return err_set(e, KV_ERR_VALIDATION, "One or more parameter values were invalid: "
                         "Input collection contains duplicates");
    }
    return 0;
  }
  default:
    return err_set(e, KV_ERR_SERIALIZATION, "Supplied AttributeValue has an unknown data type "
                   "'%s'", t);
  }
}

int kv__item_check(json_t *item, err *e)
{
  if (!json_is_object(item))
    return err_set(e, KV_ERR_SERIALIZATION, "an item must be a map of attribute values");
  const char *k;
  json_t *v;
  json_object_foreach(item, k, v) {
    if (*k == '\0')
      return err_set(e, KV_ERR_VALIDATION,
                     "One or more parameter values are not valid. A value specified for a "
                     "secondary index key is not supported. The AttributeValue for a key "
                     "attribute cannot contain an empty string value.");
    int rc = kv__av_check(v, 1, e);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- equality and order ---- */

static bool set_eq(const json_t *a, const json_t *b)
{
  if (json_array_size(a) != json_array_size(b))
    return false;
  size_t i;
  json_t *x;
  json_array_foreach(a, i, x) {
    bool found = false;
    for (size_t j = 0; j < json_array_size(b) && !found; j++)
      found = json_equal(x, json_array_get(b, j));
    if (!found)
      return false;
  }
  return true;
}

bool kv__av_eq(const json_t *a, const json_t *b)
{
  const char *ta = kv__av_type(a);
  const char *tb = kv__av_type(b);
  if (ta == NULL || tb == NULL || strcmp(ta, tb) != 0)
    return false;
  json_t *va = json_object_get(a, ta);
  json_t *vb = json_object_get(b, tb);
  switch (type_no(ta)) {
  case T_SS:
  case T_NS:
  case T_BS:
    return set_eq(va, vb);
  case T_L: {
    if (json_array_size(va) != json_array_size(vb))
      return false;
    for (size_t i = 0; i < json_array_size(va); i++)
      if (!kv__av_eq(json_array_get(va, i), json_array_get(vb, i)))
        return false;
    return true;
  }
  case T_M: {
    if (json_object_size(va) != json_object_size(vb))
      return false;
    const char *k;
    json_t *x;
    json_object_foreach(va, k, x) if (!kv__av_eq(x, json_object_get(vb, k))) return false;
    return true;
  }
  default:
    return json_equal(va, vb);
  }
}

static int bytes_cmp(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
  int c = memcmp(a, b, na < nb ? na : nb);
  if (c != 0)
    return c < 0 ? -1 : 1;
  return na == nb ? 0 : na < nb ? -1 : 1;
}

bool kv__av_cmp(const json_t *a, const json_t *b, int *out)
{
  const char *ta = kv__av_type(a);
  const char *tb = kv__av_type(b);
  if (ta == NULL || tb == NULL || strcmp(ta, tb) != 0)
    return false;
  json_t *va = json_object_get(a, ta);
  json_t *vb = json_object_get(b, tb);
  switch (type_no(ta)) {
  case T_S:
    *out = bytes_cmp((const uint8_t *)json_string_value(va), json_string_length(va),
                     (const uint8_t *)json_string_value(vb), json_string_length(vb));
    return true;
  case T_N: {
    kv_num x, y;
    err e;
    if (kv__num_parse(json_string_value(va), &x, &e) != 0 ||
        kv__num_parse(json_string_value(vb), &y, &e) != 0)
      return false;
    *out = kv__num_cmp(&x, &y);
    return true;
  }
  case T_B: {
    arena *ar = arena_new();
    uint8_t *x, *y;
    long nx = kv__av_bytes(a, ar, &x);
    long ny = kv__av_bytes(b, ar, &y);
    bool ok = nx >= 0 && ny >= 0;
    if (ok)
      *out = bytes_cmp(x, (size_t)nx, y, (size_t)ny);
    arena_free(ar);
    return ok;
  }
  default:
    return false;
  }
}

/* ---- size ---- */

static size_t num_size(const char *s)
{
  size_t digits = 0;
  for (; *s != '\0' && *s != 'E'; s++)
    digits += *s >= '0' && *s <= '9';
  return (digits + 1) / 2 + 1;
}

static size_t b64_size(const char *s)
{
  size_t n = strlen(s);
  size_t pad = (n > 0 && s[n - 1] == '=') + (n > 1 && s[n - 2] == '=');
  return n / 4 * 3 - pad;
}

static size_t av_size(const json_t *av)
{
  const char *t = kv__av_type(av);
  if (t == NULL)
    return 0;
  json_t *v = json_object_get(av, t);
  size_t n = 0;
  size_t i;
  json_t *x;
  switch (type_no(t)) {
  case T_S:
    return json_string_length(v);
  case T_N:
    return num_size(json_string_value(v));
  case T_B:
    return b64_size(json_string_value(v));
  case T_BOOL:
  case T_NULL:
    return 1;
  case T_L:
    n = 3;
    json_array_foreach(v, i, x) n += 1 + av_size(x);
    return n;
  case T_M: {
    n = 3;
    const char *k;
    json_object_foreach(v, k, x) n += 1 + strlen(k) + av_size(x);
    return n;
  }
  case T_SS:
    json_array_foreach(v, i, x) n += json_string_length(x);
    return n;
  case T_NS:
    json_array_foreach(v, i, x) n += num_size(json_string_value(x));
    return n;
  case T_BS:
    json_array_foreach(v, i, x) n += b64_size(json_string_value(x));
    return n;
  }
  return 0;
}

size_t kv__item_size(const json_t *item)
{
  size_t n = 0;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)item, k, v) n += strlen(k) + av_size(v);
  return n;
}

/* ---- the storage codec ---- */

static int put_varint(buf *b, uint64_t v)
{
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v != 0)
      tmp[n] |= 0x80;
    n++;
  } while (v != 0);
  return buf_append(b, tmp, n);
}

static int put_bytes(buf *b, const void *p, size_t n)
{
  int rc = put_varint(b, n);
  return rc != 0 ? rc : buf_append(b, p, n);
}

static int put_b64(buf *b, const char *s)
{
  size_t n = strlen(s);
  uint8_t *p = xmalloc(n + 1);
  long len = base64_decode(s, n, p, n + 1);
  int rc = put_bytes(b, p, len < 0 ? 0 : (size_t)len);
  free(p);
  return rc;
}

static int encode_av(const json_t *av, buf *b);

static int encode_map(const json_t *m, buf *b)
{
  int rc = put_varint(b, json_object_size(m));
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)m, k, v) {
    if (rc == 0)
      rc = put_bytes(b, k, strlen(k));
    if (rc == 0)
      rc = encode_av(v, b);
  }
  return rc;
}

static int encode_av(const json_t *av, buf *b)
{
  const char *t = kv__av_type(av);
  int no = t == NULL ? T_NULL : type_no(t);
  json_t *v = json_object_get(av, types[no]);
  uint8_t tag = (uint8_t)no;
  int rc = buf_append(b, &tag, 1);
  size_t i;
  json_t *x;
  switch (no) {
  case T_S:
  case T_N:
    return rc != 0 ? rc : put_bytes(b, json_string_value(v), json_string_length(v));
  case T_B:
    return rc != 0 ? rc : put_b64(b, json_string_value(v));
  case T_BOOL: {
    uint8_t flag = json_is_true(v);
    return rc != 0 ? rc : buf_append(b, &flag, 1);
  }
  case T_NULL:
    return rc;
  case T_L:
    if (rc == 0)
      rc = put_varint(b, json_array_size(v));
    json_array_foreach(v, i, x) if (rc == 0) rc = encode_av(x, b);
    return rc;
  case T_M:
    return rc != 0 ? rc : encode_map(v, b);
  default: /* sets */
    if (rc == 0)
      rc = put_varint(b, json_array_size(v));
    json_array_foreach(v, i, x) {
      if (rc == 0)
        rc = no == T_BS ? put_b64(b, json_string_value(x))
                        : put_bytes(b, json_string_value(x), json_string_length(x));
    }
    return rc;
  }
}

int kv__item_encode(const json_t *item, buf *out)
{
  return encode_map(item, out);
}

typedef struct rd {
  const uint8_t *p, *end;
  bool bad;
} rd;

static uint64_t get_varint(rd *r)
{
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) {
      r->bad = true;
      return 0;
    }
    uint8_t c = *r->p++;
    v |= (uint64_t)(c & 0x7f) << shift;
    if ((c & 0x80) == 0)
      return v;
  }
  r->bad = true;
  return 0;
}

static const uint8_t *get_bytes(rd *r, size_t *n)
{
  *n = get_varint(r);
  if (r->bad || (size_t)(r->end - r->p) < *n) {
    r->bad = true;
    return NULL;
  }
  const uint8_t *p = r->p;
  r->p += *n;
  return p;
}

static json_t *b64_json(const uint8_t *p, size_t n)
{
  char *s = xmalloc(base64_encoded_len(n) + 1);
  base64_encode(p, n, s);
  json_t *j = json_string(s);
  free(s);
  return j;
}

static json_t *decode_av(rd *r, int depth);

static json_t *decode_map(rd *r, int depth)
{
  json_t *m = json_object();
  uint64_t n = get_varint(r);
  for (uint64_t i = 0; i < n && !r->bad; i++) {
    size_t kl;
    const uint8_t *k = get_bytes(r, &kl);
    if (k == NULL)
      break;
    char *name = xstrndup((const char *)k, kl);
    json_t *v = decode_av(r, depth + 1);
    if (v != NULL)
      json_object_set_new(m, name, v);
    free(name);
  }
  return m;
}

static json_t *decode_av(rd *r, int depth)
{
  if (r->p >= r->end || depth > KV_DEPTH_MAX + 2) {
    r->bad = true;
    return NULL;
  }
  int no = *r->p++;
  size_t n;
  const uint8_t *p;
  json_t *v = NULL;
  switch (no) {
  case T_S:
  case T_N:
    p = get_bytes(r, &n);
    v = p == NULL ? NULL : json_stringn((const char *)p, n);
    break;
  case T_B:
    p = get_bytes(r, &n);
    v = p == NULL ? NULL : b64_json(p, n);
    break;
  case T_BOOL:
    if (r->p >= r->end) {
      r->bad = true;
      return NULL;
    }
    v = json_boolean(*r->p++);
    break;
  case T_NULL:
    v = json_true();
    break;
  case T_L: {
    v = json_array();
    uint64_t cnt = get_varint(r);
    for (uint64_t i = 0; i < cnt && !r->bad; i++) {
      json_t *x = decode_av(r, depth + 1);
      if (x != NULL)
        json_array_append_new(v, x);
    }
    break;
  }
  case T_M:
    v = decode_map(r, depth);
    break;
  case T_SS:
  case T_NS:
  case T_BS: {
    v = json_array();
    uint64_t cnt = get_varint(r);
    for (uint64_t i = 0; i < cnt && !r->bad; i++) {
      p = get_bytes(r, &n);
      if (p == NULL)
        break;
      json_array_append_new(v, no == T_BS ? b64_json(p, n) : json_stringn((const char *)p, n));
    }
    break;
  }
  default:
    r->bad = true;
    return NULL;
  }
  if (v == NULL)
    return NULL;
  json_t *av = json_object();
  json_object_set_new(av, types[no], v);
  return av;
}

json_t *kv__item_decode(const void *p, size_t n)
{
  rd r = {p, (const uint8_t *)p + n, false};
  json_t *m = decode_map(&r, 0);
  if (r.bad) {
    json_decref(m);
    return NULL;
  }
  return m;
}

/* ---- keys ---- */

/* Escaped bytes: 0x00 -> 00 FF, then 00 00. */
static void escape_bytes(buf *o, const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    buf_append(o, &p[i], 1);
    if (p[i] == 0)
      buf_append(o, "\xff", 1);
  }
  buf_append(o, "\0\0", 2);
}

int kv__key_append(buf *out, const char *t, const json_t *av, err *e)
{
  return kv__key_append_mode(out, t, av, false, e);
}

int kv__key_append_mode(buf *out, const char *t, const json_t *av, bool partition, err *e)
{
  buf k;
  buf_init(&k, 1 << 20);
  const char *at = kv__av_type(av);
  if (at == NULL || strcmp(at, t) != 0) {
    buf_release(&k);
    return err_set(e, KV_ERR_VALIDATION, "The provided key element does not match the schema");
  }
  json_t *v = json_object_get(av, t);
  if (strcmp(t, "N") == 0) {
    kv_num n;
    int rc = kv__num_parse(json_string_value(v), &n, e);
    if (rc != 0) {
      buf_release(&k);
      return rc;
    }
    uint8_t nk[KV_NUM_KEY];
    buf_append(&k, nk, kv__num_key(&n, nk));
  } else if (strcmp(t, "S") == 0) {
    escape_bytes(&k, (const uint8_t *)json_string_value(v), json_string_length(v));
  } else {
    arena *a = arena_new();
    uint8_t *p;
    long n = kv__av_bytes(av, a, &p);
    escape_bytes(&k, p, n < 0 ? 0 : (size_t)n);
    arena_free(a);
  }
  uint8_t digest[32];
  if (partition) {
    if (k.len <= KV_HASH_PLAIN) {
      buf_append(out, "\x01", 1);
      buf_append(out, k.data, k.len);
    } else {
      sha256(k.data, k.len, digest);
      buf_append(out, "\x02", 1);
      buf_append(out, digest, 32);
    }
  } else if (k.len <= KV_RANGE_PLAIN) {
    buf_append(out, k.data, k.len);
  } else {
    size_t cut = KV_RANGE_PREFIX;
    if (k.data[cut - 1] == 0)
      cut++; /* keep an escaped zero whole */
    sha256(k.data, k.len, digest);
    buf_append(out, k.data, cut);
    buf_append(out, "\0\x01", 2);
    buf_append(out, digest, 32);
  }
  buf_release(&k);
  return 0;
}
