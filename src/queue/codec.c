/* queue/codec.c -- keys, the message records, receipt handles, random
 * tokens, and the checks and digests of message attributes.
 *
 * Why: every other file reads and writes messages through these, so the
 * byte layout lives in one place.
 *
 * Keys (all integers big-endian, so LMDB's byte order is numeric order):
 *   db_msgs, db_bodies   qid(8) seq(8)
 *   db_vis               qid(8) visible_at_ms(8) seq(8) -> state byte
 * Message header (db_msgs), version 1:
 *   u8 version, u8 state, u8 has_attrs, u8 pad, u32 recv_count,
 *   i64 sent, i64 first_recv, i64 visible_at, u64 token,
 *   md5_body[16], md5_attrs[16],
 *   then id, sender, group, dedup, trace: u16 length (0xffff: absent) + bytes.
 * Body record (db_bodies):
 *   u16 nattrs, per attribute: u16 name, u16 type, u8 kind (1 string,
 *   2 binary), u32 value; then the body: u32 length + bytes.
 *
 * Invariants:
 *   (1) A decoder never reads past the value it was given (records come
 *       from disk: a damaged one is ERR_INTERNAL, not a crash).
 *   (2) MD5OfMessageAttributes follows SQS: attributes sorted by name, each
 *       as length-prefixed name, length-prefixed type, transport byte (1
 *       string, 2 binary), length-prefixed value; lengths 4 bytes big-endian.
 */
#include "internal.h"

#include "base/hash.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_VERSION 1
#define HDR_FIXED 72
#define ABSENT 0xffffu

void queue__be64_put(uint8_t *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
}

uint64_t queue__be64_get(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

static void be32_put(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t be32_get(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void be16_put(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static uint16_t be16_get(const uint8_t *p)
{
  return (uint16_t)(p[0] << 8 | p[1]);
}

void queue__msg_key(uint8_t out[MSG_KEY_LEN], uint64_t qid, uint64_t seq)
{
  queue__be64_put(out, qid);
  queue__be64_put(out + 8, seq);
}

void queue__vis_key(uint8_t out[VIS_KEY_LEN], uint64_t qid, int64_t visible_at, uint64_t seq)
{
  queue__be64_put(out, qid);
  queue__be64_put(out + 8, visible_at < 0 ? 0 : (uint64_t)visible_at);
  queue__be64_put(out + 16, seq);
}

/* ---- a bounded reader and a writer ---- */

typedef struct rd {
  const uint8_t *p;
  size_t left;
  bool bad;
} rd;

static const uint8_t *rd_take(rd *r, size_t n)
{
  if (r->bad || r->left < n) {
    r->bad = true;
    return NULL;
  }
  const uint8_t *p = r->p;
  r->p += n;
  r->left -= n;
  return p;
}

static const char *rd_str16(rd *r, arena *a)
{
  const uint8_t *lp = rd_take(r, 2);
  if (lp == NULL)
    return NULL;
  uint16_t n = be16_get(lp);
  if (n == ABSENT)
    return NULL;
  const uint8_t *s = rd_take(r, n);
  return s != NULL ? arena_strndup(a, (const char *)s, n) : NULL;
}

static size_t str16_size(const char *s)
{
  return 2 + (s != NULL ? strlen(s) : 0);
}

static uint8_t *put_str16(uint8_t *p, const char *s)
{
  if (s == NULL) {
    be16_put(p, ABSENT);
    return p + 2;
  }
  size_t n = strlen(s);
  if (n >= ABSENT)
    n = ABSENT - 1;
  be16_put(p, (uint16_t)n);
  memcpy(p + 2, s, n);
  return p + 2 + n;
}

MDB_val queue__msg_encode(const qmsg *m, arena *a)
{
  size_t size = HDR_FIXED + str16_size(m->id) + str16_size(m->sender) + str16_size(m->group) +
                str16_size(m->dedup) + str16_size(m->trace);
  uint8_t *b = arena_alloc(a, size);
  b[0] = MSG_VERSION;
  b[1] = m->state;
  b[2] = m->has_attrs ? 1 : 0;
  b[3] = 0;
  be32_put(b + 4, m->recv_count);
  queue__be64_put(b + 8, (uint64_t)m->sent_ms);
  queue__be64_put(b + 16, (uint64_t)m->first_recv_ms);
  queue__be64_put(b + 24, (uint64_t)m->visible_at);
  queue__be64_put(b + 32, m->token);
  memcpy(b + 40, m->md5_body, 16);
  memcpy(b + 56, m->md5_attrs, 16);
  uint8_t *p = b + HDR_FIXED;
  p = put_str16(p, m->id);
  p = put_str16(p, m->sender);
  p = put_str16(p, m->group);
  p = put_str16(p, m->dedup);
  p = put_str16(p, m->trace);
  return (MDB_val){(size_t)(p - b), b};
}

int queue__msg_decode(const MDB_val *v, arena *a, qmsg *m, err *e)
{
  memset(m, 0, sizeof *m);
  rd r = {v->mv_data, v->mv_size, false};
  const uint8_t *b = rd_take(&r, HDR_FIXED);
  if (b == NULL || b[0] != MSG_VERSION)
    return err_set(e, ERR_INTERNAL, "damaged message record");
  m->state = b[1];
  m->has_attrs = b[2] != 0;
  m->recv_count = be32_get(b + 4);
  m->sent_ms = (int64_t)queue__be64_get(b + 8);
  m->first_recv_ms = (int64_t)queue__be64_get(b + 16);
  m->visible_at = (int64_t)queue__be64_get(b + 24);
  m->token = queue__be64_get(b + 32);
  memcpy(m->md5_body, b + 40, 16);
  memcpy(m->md5_attrs, b + 56, 16);
  m->id = rd_str16(&r, a);
  m->sender = rd_str16(&r, a);
  m->group = rd_str16(&r, a);
  m->dedup = rd_str16(&r, a);
  m->trace = rd_str16(&r, a);
  if (r.bad || m->id == NULL)
    return err_set(e, ERR_INTERNAL, "damaged message record");
  return 0;
}

MDB_val queue__body_encode(const queue_attr *attrs, size_t nattrs, const char *body,
                           size_t len, arena *a)
{
  size_t size = 2 + 4 + len;
  for (size_t i = 0; i < nattrs; i++) {
    size_t vlen = attrs[i].bin != NULL ? attrs[i].bin_len
                                       : (attrs[i].value ? strlen(attrs[i].value) : 0);
    size += str16_size(attrs[i].name) + str16_size(attrs[i].type) + 1 + 4 + vlen;
  }
  uint8_t *b = arena_alloc(a, size);
  be16_put(b, (uint16_t)nattrs);
  uint8_t *p = b + 2;
  for (size_t i = 0; i < nattrs; i++) {
    p = put_str16(p, attrs[i].name);
    p = put_str16(p, attrs[i].type);
    bool bin = attrs[i].bin != NULL;
    const void *val = bin ? (const void *)attrs[i].bin : attrs[i].value;
    size_t vlen = bin ? attrs[i].bin_len : (attrs[i].value ? strlen(attrs[i].value) : 0);
    *p++ = bin ? 2 : 1;
    be32_put(p, (uint32_t)vlen);
    if (vlen > 0)
      memcpy(p + 4, val, vlen);
    p += 4 + vlen;
  }
  be32_put(p, (uint32_t)len);
  if (len > 0)
    memcpy(p + 4, body, len);
  p += 4 + len;
  return (MDB_val){(size_t)(p - b), b};
}

int queue__body_decode(const MDB_val *v, arena *a, queue_attr **attrs, size_t *nattrs,
                       const char **body, size_t *len, err *e)
{
  rd r = {v->mv_data, v->mv_size, false};
  const uint8_t *np = rd_take(&r, 2);
  if (np == NULL)
    return err_set(e, ERR_INTERNAL, "damaged message body record");
  size_t n = be16_get(np);
  queue_attr *at = n ? arena_alloc(a, n * sizeof *at) : NULL;
  for (size_t i = 0; i < n && !r.bad; i++) {
    at[i].name = rd_str16(&r, a);
    at[i].type = rd_str16(&r, a);
    const uint8_t *kp = rd_take(&r, 1);
    const uint8_t *lp = rd_take(&r, 4);
    if (kp == NULL || lp == NULL)
      break;
    uint32_t vlen = be32_get(lp);
    const uint8_t *vp = rd_take(&r, vlen);
    if (vp == NULL)
      break;
    if (*kp == 2) {
      at[i].bin = arena_memdup(a, vp, vlen ? vlen : 1);
      at[i].bin_len = vlen;
    } else {
      at[i].value = arena_strndup(a, (const char *)vp, vlen);
    }
    if (at[i].name == NULL || at[i].type == NULL)
      r.bad = true;
  }
  const uint8_t *lp = rd_take(&r, 4);
  uint32_t blen = lp != NULL ? be32_get(lp) : 0;
  const uint8_t *bp = rd_take(&r, blen);
  if (r.bad || bp == NULL)
    return err_set(e, ERR_INTERNAL, "damaged message body record");
  *attrs = at;
  *nattrs = n;
  *body = arena_strndup(a, (const char *)bp, blen);
  *len = blen;
  return 0;
}

/* ---- handles and ids ---- */

char *queue__handle_make(arena *a, uint64_t qid, uint64_t seq, uint64_t token)
{
  uint8_t raw[24];
  queue__be64_put(raw, qid);
  queue__be64_put(raw + 8, seq);
  queue__be64_put(raw + 16, token);
  char *out = arena_alloc(a, 49);
  hex_encode(raw, sizeof raw, out);
  return out;
}

bool queue__handle_parse(const char *h, uint64_t *qid, uint64_t *seq, uint64_t *token)
{
  uint8_t raw[24];
  if (h == NULL || strlen(h) != 48 || !hex_decode(h, 48, raw, sizeof raw))
    return false;
  *qid = queue__be64_get(raw);
  *seq = queue__be64_get(raw + 8);
  *token = queue__be64_get(raw + 16);
  return true;
}

uint64_t queue__rand64(void)
{
  uint8_t b[8];
  random_bytes(b, sizeof b);
  return queue__be64_get(b);
}

void queue__seqnum(uint64_t seq, char out[24])
{
  /* 20 digits, as SQS's (which are longer but opaque): strictly increasing */
  snprintf(out, 24, "%020llu", (unsigned long long)seq);
}

/* ---- attribute checks and digests ---- */

static bool name_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-' || c == '.';
}

static bool number_valid(const char *s)
{
  /* SQS: up to 38 significant digits, -10^128..10^126; we check the form */
  const char *p = s;
  if (*p == '-' || *p == '+')
    p++;
  bool digits = false;
  while (*p >= '0' && *p <= '9') {
    p++;
    digits = true;
  }
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9') {
      p++;
      digits = true;
    }
  }
  if (!digits)
    return false;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '-' || *p == '+')
      p++;
    if (!(*p >= '0' && *p <= '9'))
      return false;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  return *p == '\0';
}

int queue__attr_check(const queue_attr *at, err *e)
{
  const char *n = at->name;
  if (n == NULL || *n == '\0')
    return err_set(e, ERR_INVALID, "The request must contain non-empty message attribute name.");
  size_t len = strlen(n);
  if (len > 256)
    return err_set(e, ERR_INVALID, "Message attribute name '%s' must be at most 256 characters",
                   n);
  bool ok = n[0] != '.' && n[len - 1] != '.' && strstr(n, "..") == NULL &&
            !str_istarts(n, "AWS.") && !str_istarts(n, "Amazon.");
  for (size_t i = 0; ok && i < len; i++)
    ok = name_char(n[i]);
  if (!ok)
    return err_set(e, ERR_INVALID, "Message attribute name '%s' is invalid", n);
  const char *t = at->type;
  if (t == NULL || *t == '\0')
    return err_set(e, ERR_INVALID,
                   "The message attribute '%s' must contain non-empty message attribute type.",
                   n);
  bool is_string = str_starts(t, "String") && (t[6] == '\0' || t[6] == '.');
  bool is_number = str_starts(t, "Number") && (t[6] == '\0' || t[6] == '.');
  bool is_binary = str_starts(t, "Binary") && (t[6] == '\0' || t[6] == '.');
  if ((!is_string && !is_number && !is_binary) || strlen(t) > 256 ||
      (t[6] == '.' && t[7] == '\0'))
    return err_set(e, ERR_INVALID,
                   "The message attribute '%s' has an invalid message attribute type, the set "
                   "of supported type prefixes is Binary, Number, and String.",
                   n);
  if (is_binary) {
    if (at->bin == NULL || at->value != NULL)
      return err_set(e, ERR_INVALID,
                     "The message attribute '%s' with type 'Binary' must use field 'Binary'.",
                     n);
    if (at->bin_len == 0)
      return err_set(e, ERR_INVALID, "The message attribute '%s' must contain a non-empty value "
                     "of message attribute type 'Binary'.", n);
    return 0;
  }
  if (at->value == NULL || at->bin != NULL)
    return err_set(e, ERR_INVALID,
                   "The message attribute '%s' with type '%s' must use field 'String'.", n,
                   is_number ? "Number" : "String");
  if (at->value[0] == '\0')
    return err_set(e, ERR_INVALID, "The message attribute '%s' must contain a non-empty value "
                   "of message attribute type '%s'.", n, is_number ? "Number" : "String");
  if (is_number && !number_valid(at->value))
    return err_set(e, ERR_INVALID, "Can't cast the value of message (user) attribute '%s' to a "
                   "number.", n);
  if (!queue__chars_valid(at->value, strlen(at->value)))
    return err_set(e, ERR_INVALID, "Value of message attribute '%s' contains invalid characters",
                   n);
  return 0;
}

size_t queue__attrs_size(const queue_attr *attrs, size_t n)
{
  size_t size = 0;
  for (size_t i = 0; i < n; i++) {
    size += strlen(attrs[i].name) + strlen(attrs[i].type);
    size += attrs[i].bin != NULL ? attrs[i].bin_len
                                 : (attrs[i].value != NULL ? strlen(attrs[i].value) : 0);
  }
  return size;
}

bool queue__chars_valid(const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    uint32_t cp;
    size_t len;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if ((c & 0xe0) == 0xc0) {
      cp = c & 0x1f;
      len = 2;
    } else if ((c & 0xf0) == 0xe0) {
      cp = c & 0x0f;
      len = 3;
    } else if ((c & 0xf8) == 0xf0) {
      cp = c & 0x07;
      len = 4;
    } else {
      return false;
    }
    if (i + len > n)
      return false;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
      return false;
    bool ok = cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
              (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
    if (!ok)
      return false;
    i += len;
  }
  return true;
}

static void md5_len_bytes(hasher *h, const void *p, size_t n)
{
  uint8_t l[4];
  be32_put(l, (uint32_t)n);
  hash_update(h, l, 4);
  if (n > 0)
    hash_update(h, p, n);
}

static int attr_cmp(const void *x, const void *y)
{
  const queue_attr *const *a = x;
  const queue_attr *const *b = y;
  return strcmp((*a)->name, (*b)->name);
}

void queue_md5_attrs(const queue_attr *attrs, size_t n, char out[33])
{
  out[0] = '\0';
  if (n == 0)
    return;
  const queue_attr **sorted = xmalloc(n * sizeof *sorted);
  for (size_t i = 0; i < n; i++)
    sorted[i] = &attrs[i];
  qsort(sorted, n, sizeof *sorted, attr_cmp);
  hasher h = {0};
  hash_init(&h, HASH_MD5);
  for (size_t i = 0; i < n; i++) {
    const queue_attr *at = sorted[i];
    md5_len_bytes(&h, at->name, strlen(at->name));
    md5_len_bytes(&h, at->type, strlen(at->type));
    if (at->bin != NULL) {
      uint8_t t = 2;
      hash_update(&h, &t, 1);
      md5_len_bytes(&h, at->bin, at->bin_len);
    } else {
      uint8_t t = 1;
      hash_update(&h, &t, 1);
      md5_len_bytes(&h, at->value, at->value ? strlen(at->value) : 0);
    }
  }
  uint8_t d[MD5_LEN];
  hash_final(&h, d);
  hash_release(&h);
  hex_encode(d, MD5_LEN, out);
  free(sorted);
}

void queue_md5_trace_header(const char *value, char out[33])
{
  queue_attr at = {.name = "AWSTraceHeader", .type = "String", .value = value};
  queue_md5_attrs(&at, 1, out);
}

/* ---- small helpers ---- */

char *queue__strdup(const char *s)
{
  char *p = xstrdup(s != NULL ? s : "");
  return p;
}

int64_t queue__now_ms(void)
{
  return time_now_ms();
}
