/* formats/parquet.c -- the Parquet footer: Thrift's compact protocol, the
 * FileMetaData (schema tree, row groups, column chunks, statistics), and
 * the mapping of Parquet types onto the engine's (see parquet.h).
 *
 * Why by hand: the footer decoder is small, and it is the one place where
 * a hostile object steers allocations; here every count is checked against
 * the bytes left before anything is allocated.
 *
 * Invariants:
 *   (1) Nothing is read outside the footer bytes handed in; every count is
 *       at most the bytes left (each element takes at least one byte).
 *   (2) A parsed file is consistent: every row group has one chunk per
 *       leaf, each chunk's type is its leaf's, and every chunk range lies
 *       inside the object (checked again by pq_chunk_range).
 *   (3) Nesting (Thrift structs and schema groups) is bounded by
 *       THRIFT_DEPTH_MAX, so no input can exhaust the stack.
 *
 * Start reading at pq_file_parse(). Pages are in parquet_page.c.
 */
#include "parquet_internal.h"

#include "base/mem.h"
#include "base/arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Thrift compact protocol ---- */

void formats__thrift_init(thrift *t, const uint8_t *p, size_t n)
{
  t->p = p;
  t->end = p + n;
  t->depth = 0;
  t->bad = false;
  t->why = NULL;
}

void formats__thrift_fail(thrift *t, const char *why)
{
  if (!t->bad)
    t->why = why;
  t->bad = true;
  t->p = t->end;
}

uint64_t formats__thrift_varint(thrift *t)
{
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (t->p >= t->end) {
      formats__thrift_fail(t, "truncated");
      return 0;
    }
    uint8_t b = *t->p++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80))
      return v;
  }
  formats__thrift_fail(t, "varint too long");
  return 0;
}

int64_t formats__thrift_zigzag(thrift *t)
{
  uint64_t v = formats__thrift_varint(t);
  return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

const uint8_t *formats__thrift_binary(thrift *t, uint32_t *n)
{
  uint64_t len = formats__thrift_varint(t);
  if (len > (uint64_t)(t->end - t->p)) {
    formats__thrift_fail(t, "string past the end");
    *n = 0;
    return (const uint8_t *)"";
  }
  const uint8_t *p = t->p;
  t->p += len;
  *n = (uint32_t)len;
  return p;
}

bool formats__thrift_field(thrift *t, int16_t *last, int16_t *id, int *type, bool *bval)
{
  if (t->p >= t->end) {
    formats__thrift_fail(t, "truncated struct");
    return false;
  }
  uint8_t b = *t->p++;
  if (b == THRIFT_STOP)
    return false;
  int ty = b & 0x0f;
  int delta = b >> 4;
  if (delta != 0)
    *id = (int16_t)(*last + delta);
  else
    *id = (int16_t)formats__thrift_zigzag(t);
  *last = *id;
  if (ty == THRIFT_TRUE || ty == THRIFT_FALSE) {
    *bval = ty == THRIFT_TRUE;
  } else if (ty < THRIFT_I8 || ty > THRIFT_STRUCT) {
    formats__thrift_fail(t, "bad field type");
    return false;
  }
  *type = ty;
  return !t->bad;
}

uint32_t formats__thrift_list(thrift *t, int *etype)
{
  if (t->p >= t->end) {
    formats__thrift_fail(t, "truncated list");
    return 0;
  }
  uint8_t b = *t->p++;
  uint64_t n = b >> 4;
  if (n == 15)
    n = formats__thrift_varint(t);
  *etype = b & 0x0f;
  if (n > (uint64_t)(t->end - t->p)) {
    formats__thrift_fail(t, "list longer than its bytes");
    return 0;
  }
  return (uint32_t)n;
}

bool formats__thrift_enter(thrift *t)
{
  if (++t->depth > THRIFT_DEPTH_MAX) {
    formats__thrift_fail(t, "nested too deeply");
    return false;
  }
  return true;
}

void formats__thrift_leave(thrift *t)
{
  t->depth--;
}

void formats__thrift_skip(thrift *t, int type)
{
  switch (type) {
  case THRIFT_TRUE:
  case THRIFT_FALSE:
    return;
  case THRIFT_I8:
    if (t->p >= t->end)
      formats__thrift_fail(t, "truncated");
    else
      t->p++;
    return;
  case THRIFT_I16:
  case THRIFT_I32:
  case THRIFT_I64:
    formats__thrift_varint(t);
    return;
  case THRIFT_DOUBLE:
    if (t->end - t->p < 8)
      formats__thrift_fail(t, "truncated");
    else
      t->p += 8;
    return;
  case THRIFT_BINARY: {
    uint32_t n;
    formats__thrift_binary(t, &n);
    return;
  }
  case THRIFT_LIST:
  case THRIFT_SET: {
    int et;
    uint32_t n = formats__thrift_list(t, &et);
    if (!formats__thrift_enter(t))
      return;
    for (uint32_t i = 0; i < n && !t->bad; i++) {
      if (et == THRIFT_TRUE || et == THRIFT_FALSE)
        formats__thrift_skip(t, THRIFT_I8);   /* list booleans take a byte */
      else
        formats__thrift_skip(t, et);
    }
    formats__thrift_leave(t);
    return;
  }
  case THRIFT_MAP: {
    uint64_t n = formats__thrift_varint(t);
    if (n == 0)
      return;
    if (t->p >= t->end || n > (uint64_t)(t->end - t->p)) {
      formats__thrift_fail(t, "map longer than its bytes");
      return;
    }
    uint8_t kv = *t->p++;
    if (!formats__thrift_enter(t))
      return;
    for (uint64_t i = 0; i < n && !t->bad; i++) {
      formats__thrift_skip(t, kv >> 4);
      formats__thrift_skip(t, kv & 0x0f);
    }
    formats__thrift_leave(t);
    return;
  }
  case THRIFT_STRUCT: {
    if (!formats__thrift_enter(t))
      return;
    int16_t last = 0, id;
    int ty;
    bool bv;
    while (formats__thrift_field(t, &last, &id, &ty, &bv))
      formats__thrift_skip(t, ty);
    formats__thrift_leave(t);
    return;
  }
  default:
    formats__thrift_fail(t, "bad type");
  }
}

int64_t formats__thrift_int(thrift *t, int type)
{
  if (type == THRIFT_I8) {
    if (t->p >= t->end) {
      formats__thrift_fail(t, "truncated");
      return 0;
    }
    return (int8_t)*t->p++;
  }
  if (type == THRIFT_I16 || type == THRIFT_I32 || type == THRIFT_I64)
    return formats__thrift_zigzag(t);
  formats__thrift_skip(t, type);
  formats__thrift_fail(t, "a number expected");
  return 0;
}

/* ---- FileMetaData ---- */

typedef struct selem {
  const char *name;
  int type;
  int type_len;
  int rep;
  int nchildren;
  int converted;
  int scale, prec;
  int logical;
  int unit;
  bool utc;
  bool is_signed;
  int bits;
} selem;

static void read_unit(thrift *t, int *unit)
{
  /* TimeUnit union: the field id is the unit */
  if (!formats__thrift_enter(t))
    return;
  int16_t last = 0, id;
  int ty;
  bool bv;
  while (formats__thrift_field(t, &last, &id, &ty, &bv)) {
    *unit = id;
    formats__thrift_skip(t, ty);
  }
  formats__thrift_leave(t);
}

static void read_logical(thrift *t, selem *s)
{
  if (!formats__thrift_enter(t))
    return;
  int16_t last = 0, id;
  int ty;
  bool bv;
  while (formats__thrift_field(t, &last, &id, &ty, &bv)) {
    s->logical = id;
    if (ty != THRIFT_STRUCT) {
      formats__thrift_skip(t, ty);
      continue;
    }
    if (!formats__thrift_enter(t))
      break;
    int16_t l2 = 0, i2;
    int t2;
    bool b2 = false;
    while (formats__thrift_field(t, &l2, &i2, &t2, &b2)) {
      if (id == PQ_LT_DECIMAL && i2 == 1 && t2 == THRIFT_I32)
        s->scale = (int)formats__thrift_zigzag(t);
      else if (id == PQ_LT_DECIMAL && i2 == 2 && t2 == THRIFT_I32)
        s->prec = (int)formats__thrift_zigzag(t);
      else if ((id == PQ_LT_TIMESTAMP || id == PQ_LT_TIME) && i2 == 1 &&
               (t2 == THRIFT_TRUE || t2 == THRIFT_FALSE))
        s->utc = b2;
      else if ((id == PQ_LT_TIMESTAMP || id == PQ_LT_TIME) && i2 == 2 && t2 == THRIFT_STRUCT)
        read_unit(t, &s->unit);
      else if (id == PQ_LT_INTEGER && i2 == 1 && t2 == THRIFT_I8)
        s->bits = (int)formats__thrift_int(t, t2);
      else if (id == PQ_LT_INTEGER && i2 == 2 && (t2 == THRIFT_TRUE || t2 == THRIFT_FALSE))
        s->is_signed = b2;
      else
        formats__thrift_skip(t, t2);
    }
    formats__thrift_leave(t);
  }
  formats__thrift_leave(t);
}

static void read_selem(thrift *t, arena *a, selem *s)
{
  memset(s, 0, sizeof *s);
  s->type = -1;
  s->converted = -1;
  s->is_signed = true;
  if (!formats__thrift_enter(t))
    return;
  int16_t last = 0, id;
  int ty;
  bool bv;
  while (formats__thrift_field(t, &last, &id, &ty, &bv)) {
    if (ty == THRIFT_I32 && id >= 1 && id <= 8 && id != 4) {
      int64_t v = formats__thrift_zigzag(t);
      if (v < INT32_MIN || v > INT32_MAX)
        formats__thrift_fail(t, "schema number out of range");
      int iv = (int)v;
      switch (id) {
      case 1: s->type = iv; break;
      case 2: s->type_len = iv; break;
      case 3: s->rep = iv; break;
      case 5: s->nchildren = iv; break;
      case 6: s->converted = iv; break;
      case 7: s->scale = iv; break;
      case 8: s->prec = iv; break;
      }
    } else if (id == 4 && ty == THRIFT_BINARY) {
      uint32_t n;
      const uint8_t *p = formats__thrift_binary(t, &n);
      s->name = arena_strndup(a, (const char *)p, n);
    } else if (id == 10 && ty == THRIFT_STRUCT) {
      read_logical(t, s);
    } else {
      formats__thrift_skip(t, ty);
    }
  }
  formats__thrift_leave(t);
}

static void read_stats(thrift *t, pq_stats *st)
{
  const uint8_t *omin = NULL, *omax = NULL;
  uint32_t ominl = 0, omaxl = 0;
  st->null_count = -1;
  if (!formats__thrift_enter(t))
    return;
  int16_t last = 0, id;
  int ty;
  bool bv;
  while (formats__thrift_field(t, &last, &id, &ty, &bv)) {
    if (ty == THRIFT_BINARY && (id == 1 || id == 2 || id == 5 || id == 6)) {
      uint32_t n;
      const uint8_t *p = formats__thrift_binary(t, &n);
      if (id == 1) {
        omax = p;
        omaxl = n;
      } else if (id == 2) {
        omin = p;
        ominl = n;
      } else if (id == 5) {
        st->max = p;
        st->max_len = n;
      } else {
        st->min = p;
        st->min_len = n;
      }
    } else if (id == 3 && ty == THRIFT_I64) {
      st->null_count = formats__thrift_zigzag(t);
    } else {
      formats__thrift_skip(t, ty);
    }
  }
  formats__thrift_leave(t);
  /* the old min/max (signed order) stand in only when the new ones are
     absent; pq_stat_value refuses them where the orders differ */
  if (st->min == NULL && st->max == NULL && omin != NULL && omax != NULL) {
    st->min = omin;
    st->min_len = ominl;
    st->max = omax;
    st->max_len = omaxl;
    st->null_count = st->null_count >= 0 ? st->null_count : -1;
    st->min_len |= 0x80000000u;   /* marks legacy bounds */
  }
}

/* encoding_stats: whether every data page is dictionary-encoded */
static void read_enc_stats(thrift *t, pq_chunk *c)
{
  int et;
  uint32_t n = formats__thrift_list(t, &et);
  bool all = n > 0 && et == THRIFT_STRUCT;
  for (uint32_t i = 0; i < n && !t->bad; i++) {
    if (et != THRIFT_STRUCT) {
      formats__thrift_skip(t, et);
      continue;
    }
    if (!formats__thrift_enter(t))
      return;
    int16_t last = 0, id;
    int ty;
    bool bv;
    int ptype = -1, enc = -1;
    int64_t count = 1;
    while (formats__thrift_field(t, &last, &id, &ty, &bv)) {
      if (id == 1 && ty == THRIFT_I32)
        ptype = (int)formats__thrift_zigzag(t);
      else if (id == 2 && ty == THRIFT_I32)
        enc = (int)formats__thrift_zigzag(t);
      else if (id == 3 && ty == THRIFT_I32)
        count = formats__thrift_zigzag(t);
      else
        formats__thrift_skip(t, ty);
    }
    formats__thrift_leave(t);
    if ((ptype == PQ_PAGE_DATA || ptype == PQ_PAGE_DATA_V2) && count > 0 &&
        enc != PQ_ENC_PLAIN_DICTIONARY && enc != PQ_ENC_RLE_DICTIONARY)
      all = false;
  }
  c->all_dict = all ? 1 : 0;
}

/* encodings: without encoding_stats, only a list without any value
   encoding but the dictionary ones says every data page uses the dictionary */
static void read_encodings(thrift *t, pq_chunk *c)
{
  int et;
  uint32_t n = formats__thrift_list(t, &et);
  bool dict = false, other = false;
  for (uint32_t i = 0; i < n && !t->bad; i++) {
    if (et != THRIFT_I32) {
      formats__thrift_skip(t, et);
      other = true;
      continue;
    }
    int64_t enc = formats__thrift_zigzag(t);
    if (enc == PQ_ENC_PLAIN_DICTIONARY || enc == PQ_ENC_RLE_DICTIONARY)
      dict = true;
    else if (enc != PQ_ENC_RLE && enc != PQ_ENC_BIT_PACKED)
      other = true;
  }
  if (c->all_dict < 0)
    c->all_dict = dict && !other ? 1 : 0;
}

static void read_colmeta(thrift *t, pq_chunk *c)
{
  if (!formats__thrift_enter(t))
    return;
  int16_t last = 0, id;
  int ty;
  bool bv;
  int from_stats = -1;
  while (formats__thrift_field(t, &last, &id, &ty, &bv)) {
    if (id == 2 && ty == THRIFT_LIST)
      read_encodings(t, c);
    else if (id == 13 && ty == THRIFT_LIST) {
      int keep = c->all_dict;
      read_enc_stats(t, c);
      from_stats = c->all_dict;
      c->all_dict = keep;
    } else if (id == 1 && ty == THRIFT_I32)
      c->ptype = (int)formats__thrift_zigzag(t);
    else if (id == 4 && ty == THRIFT_I32)
      c->codec = (int)formats__thrift_zigzag(t);
    else if (id == 5 && ty == THRIFT_I64)
      c->num_values = formats__thrift_zigzag(t);
    else if (id == 7 && ty == THRIFT_I64)
      c->total = formats__thrift_zigzag(t);
    else if (id == 9 && ty == THRIFT_I64)
      c->data_off = formats__thrift_zigzag(t);
    else if (id == 11 && ty == THRIFT_I64)
      c->dict_off = formats__thrift_zigzag(t);
    else if (id == 12 && ty == THRIFT_STRUCT)
      read_stats(t, &c->st);
    else
      formats__thrift_skip(t, ty);
  }
  formats__thrift_leave(t);
  if (from_stats >= 0)
    c->all_dict = from_stats;
  if (c->all_dict < 0)
    c->all_dict = 0;
}

static void read_chunk(thrift *t, pq_chunk *c, bool *external)
{
  memset(c, 0, sizeof *c);
  c->dict_off = -1;
  c->data_off = -1;
  c->ptype = -1;
  c->all_dict = -1;
  c->st.null_count = -1;
  c->oi_off = -1;
  c->ci_off = -1;
  if (!formats__thrift_enter(t))
    return;
  int16_t last = 0, id;
  int ty;
  bool bv;
  while (formats__thrift_field(t, &last, &id, &ty, &bv)) {
    if (id == 1 && ty == THRIFT_BINARY) {
      uint32_t n;
      formats__thrift_binary(t, &n);
      if (n > 0)
        *external = true;
    } else if (id == 3 && ty == THRIFT_STRUCT) {
      read_colmeta(t, c);
    } else if ((id == 4 || id == 6) && ty == THRIFT_I64) {
      int64_t v = formats__thrift_zigzag(t);
      if (id == 4)
        c->oi_off = v;
      else
        c->ci_off = v;
    } else if ((id == 5 || id == 7) && ty == THRIFT_I32) {
      int64_t v = formats__thrift_zigzag(t);
      int32_t l = v > 0 && v <= INT32_MAX ? (int32_t)v : 0;
      if (id == 5)
        c->oi_len = l;
      else
        c->ci_len = l;
    } else {
      formats__thrift_skip(t, ty);
    }
  }
  formats__thrift_leave(t);
}

/* ---- schema tree ---- */

typedef struct builder {
  arena *a;
  selem *el;
  uint32_t nel;
  uint32_t next;
  pq_leaf *leaves;
  int nleaves;
  int field;
  const char *why;
} builder;

static pq_node *build_node(builder *b, int def, int rep, int depth)
{
  if (b->next >= b->nel) {
    b->why = "the schema has fewer elements than its groups claim";
    return NULL;
  }
  if (depth > THRIFT_DEPTH_MAX) {
    b->why = "the schema is nested too deeply";
    return NULL;
  }
  selem *s = &b->el[b->next++];
  pq_node *n = arena_alloc(b->a, sizeof *n);
  memset(n, 0, sizeof *n);
  n->name = s->name != NULL ? s->name : "";
  n->ptype = s->nchildren > 0 ? -1 : s->type;
  n->type_len = s->type_len;
  n->rep = depth == 0 ? PQ_REQUIRED : s->rep;
  n->converted = s->converted;
  n->logical = s->logical;
  n->scale = s->scale;
  n->prec = s->prec;
  n->unit = s->unit;
  n->is_signed = s->is_signed;
  n->bits = s->bits;
  n->leaf = -1;
  if (n->rep == PQ_OPTIONAL)
    def++;
  else if (n->rep == PQ_REPEATED) {
    def++;
    rep++;
  } else if (n->rep != PQ_REQUIRED) {
    b->why = "bad repetition type";
    return NULL;
  }
  n->max_def = def;
  n->max_rep = rep;
  if (s->nchildren < 0 || (uint32_t)s->nchildren > b->nel - b->next) {
    b->why = "a group has more children than the schema has elements";
    return NULL;
  }
  if (s->nchildren == 0) {
    if (depth == 0) {
      b->why = "the schema has no columns";
      return NULL;
    }
    if (n->ptype < PQ_BOOLEAN || n->ptype > PQ_FIXED_LEN_BYTE_ARRAY) {
      b->why = "a column has no valid physical type";
      return NULL;
    }
    if (n->ptype == PQ_FIXED_LEN_BYTE_ARRAY && (n->type_len <= 0 || n->type_len > (1 << 20))) {
      b->why = "a FIXED_LEN_BYTE_ARRAY column has a bad length";
      return NULL;
    }
    n->leaf = b->nleaves;
    b->leaves[b->nleaves].node = n;
    b->leaves[b->nleaves].field = b->field;
    b->nleaves++;
    return n;
  }
  n->nchildren = s->nchildren;
  n->children = arena_alloc(b->a, sizeof(pq_node *) * (size_t)s->nchildren);
  for (int i = 0; i < s->nchildren; i++) {
    if (depth == 0)
      b->field = i;
    n->children[i] = build_node(b, def, rep, depth + 1);
    if (n->children[i] == NULL)
      return NULL;
  }
  return n;
}

/* the engine type of a leaf's values */
static pq_out leaf_out(const pq_node *n, int *prec, int *scale)
{
  bool dec = n->logical == PQ_LT_DECIMAL || n->converted == PQ_CT_DECIMAL;
  if (dec) {
    *prec = n->prec;
    *scale = n->scale;
    if (n->prec >= 1 && n->prec <= 18 && n->scale >= 0 && n->scale <= n->prec)
      return PQO_DECIMAL;
    return PQO_VARCHAR;
  }
  switch (n->ptype) {
  case PQ_BOOLEAN: return PQO_BOOLEAN;
  case PQ_INT32:
    if (n->logical == PQ_LT_DATE || n->converted == PQ_CT_DATE)
      return PQO_DATE;
    if (n->logical == PQ_LT_TIME || n->converted == PQ_CT_TIME_MILLIS)
      return PQO_VARCHAR;
    return PQO_BIGINT;
  case PQ_INT64:
    if (n->logical == PQ_LT_TIMESTAMP || n->converted == PQ_CT_TIMESTAMP_MILLIS ||
        n->converted == PQ_CT_TIMESTAMP_MICROS)
      return PQO_TIMESTAMP;
    if (n->logical == PQ_LT_TIME || n->converted == PQ_CT_TIME_MICROS)
      return PQO_VARCHAR;
    return PQO_BIGINT;
  case PQ_INT96: return PQO_TIMESTAMP;
  case PQ_FLOAT:
  case PQ_DOUBLE: return PQO_DOUBLE;
  case PQ_FIXED_LEN_BYTE_ARRAY:
    if (n->logical == PQ_LT_FLOAT16 && n->type_len == 2)
      return PQO_DOUBLE;
    return PQO_VARCHAR;
  default: return PQO_VARCHAR;
  }
}

/* ---- the footer ---- */

int pq_footer_len(const char *name, uint64_t size, const uint8_t *tail, size_t n,
                  uint32_t *len, err *e)
{
  if (size < PARQUET_MAGIC_LEN + PARQUET_FOOTER_TAIL || n < PARQUET_FOOTER_TAIL)
    return err_set(e, ERR_INVALID, "'%s' is not a Parquet file: only %llu bytes", name,
                   (unsigned long long)size);
  const uint8_t *t = tail + n - PARQUET_FOOTER_TAIL;
  if (memcmp(t + 4, PARQUET_MAGIC, PARQUET_MAGIC_LEN) != 0)
    return err_set(e, ERR_INVALID,
                   "'%s' is not a Parquet file: it does not end with the magic 'PAR1' "
                   "(truncated, encrypted or another format)", name);
  uint32_t l = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
               (uint32_t)t[3] << 24;
  if ((uint64_t)l + PARQUET_FOOTER_TAIL + PARQUET_MAGIC_LEN > size)
    return err_set(e, ERR_INVALID,
                   "corrupt Parquet file '%s': its footer of %u bytes is longer than the "
                   "object (%llu bytes)", name, l, (unsigned long long)size);
  if (l > PQ_FOOTER_MAX)
    return err_set(e, ERR_INVALID, "Parquet file '%s' has a footer of %u bytes (at most %u)",
                   name, l, PQ_FOOTER_MAX);
  if (l == 0)
    return err_set(e, ERR_INVALID, "corrupt Parquet file '%s': empty footer", name);
  *len = l;
  return 0;
}

static int bad(pq_file *f, err *e, const char *what)
{
  return err_set(e, ERR_INVALID, "corrupt Parquet footer in '%s': %s", f->name, what);
}

int pq_file_parse(const char *name, uint64_t size, const uint8_t *footer, size_t n,
                  pq_file **out, err *e)
{
  *out = NULL;
  arena *a = arena_new();
  pq_file *f = arena_alloc(a, sizeof *f);
  memset(f, 0, sizeof *f);
  f->a = a;
  f->name = arena_strdup(a, name);
  f->size = size;
  /* keep the footer: statistics point into it */
  const uint8_t *fb = arena_memdup(a, footer, n > 0 ? n : 1);
  thrift t;
  formats__thrift_init(&t, fb, n);
  selem *els = NULL;
  uint32_t nel = 0;
  pq_rowgroup *rgs = NULL;
  uint32_t nrg = 0;
  uint32_t *rg_nchunks = NULL;
  bool external = false;
  int16_t last = 0, id;
  int ty;
  bool bv;
  int rc = 0;
  formats__thrift_enter(&t);
  while (formats__thrift_field(&t, &last, &id, &ty, &bv)) {
    if (id == 2 && ty == THRIFT_LIST && els == NULL) {
      int et;
      nel = formats__thrift_list(&t, &et);
      if (et != THRIFT_STRUCT && nel > 0) {
        formats__thrift_fail(&t, "schema is not a list of structs");
        break;
      }
      els = arena_alloc(a, sizeof(selem) * (nel ? nel : 1));
      for (uint32_t i = 0; i < nel && !t.bad; i++)
        read_selem(&t, a, &els[i]);
    } else if (id == 3 && ty == THRIFT_I64) {
      f->num_rows = formats__thrift_zigzag(&t);
    } else if (id == 4 && ty == THRIFT_LIST && rgs == NULL) {
      int et;
      nrg = formats__thrift_list(&t, &et);
      if (et != THRIFT_STRUCT && nrg > 0) {
        formats__thrift_fail(&t, "row groups are not structs");
        break;
      }
      rgs = arena_alloc(a, sizeof(pq_rowgroup) * (nrg ? nrg : 1));
      rg_nchunks = arena_alloc(a, sizeof(uint32_t) * (nrg ? nrg : 1));
      for (uint32_t i = 0; i < nrg && !t.bad; i++) {
        pq_rowgroup *g = &rgs[i];
        memset(g, 0, sizeof *g);
        rg_nchunks[i] = 0;
        if (!formats__thrift_enter(&t))
          break;
        int16_t l2 = 0, i2;
        int t2;
        bool b2;
        bool seen_cols = false;
        while (formats__thrift_field(&t, &l2, &i2, &t2, &b2)) {
          if (i2 == 1 && t2 == THRIFT_LIST && !seen_cols) {
            seen_cols = true;
            int e2;
            uint32_t nc = formats__thrift_list(&t, &e2);
            if (e2 != THRIFT_STRUCT && nc > 0) {
              formats__thrift_fail(&t, "column chunks are not structs");
              break;
            }
            g->chunks = arena_alloc(a, sizeof(pq_chunk) * (nc ? nc : 1));
            for (uint32_t k = 0; k < nc && !t.bad; k++)
              read_chunk(&t, &g->chunks[k], &external);
            rg_nchunks[i] = nc;
          } else if (i2 == 3 && t2 == THRIFT_I64) {
            g->num_rows = formats__thrift_zigzag(&t);
          } else {
            formats__thrift_skip(&t, t2);
          }
        }
        formats__thrift_leave(&t);
      }
    } else {
      formats__thrift_skip(&t, ty);
    }
  }
  if (t.bad) {
    rc = bad(f, e, t.why ? t.why : "unreadable");
    goto fail;
  }
  if (els == NULL || nel < 2) {
    rc = bad(f, e, "no schema");
    goto fail;
  }
  /* the schema tree */
  builder b = {.a = a, .el = els, .nel = nel};
  b.leaves = arena_alloc(a, sizeof(pq_leaf) * nel);
  f->root = build_node(&b, 0, 0, 0);
  if (f->root == NULL) {
    rc = bad(f, e, b.why);
    goto fail;
  }
  if (b.next != nel) {
    rc = bad(f, e, "the schema has elements outside its tree");
    goto fail;
  }
  f->leaves = b.leaves;
  f->nleaves = b.nleaves;
  f->nfields = f->root->nchildren;
  f->fields = arena_alloc(a, sizeof(pq_field) * (size_t)f->nfields);
  for (int i = 0; i < f->nfields; i++) {
    pq_field *fd = &f->fields[i];
    memset(fd, 0, sizeof *fd);
    fd->node = f->root->children[i];
    fd->name = fd->node->name;
    fd->first_leaf = -1;
  }
  for (int l = 0; l < f->nleaves; l++) {
    pq_field *fd = &f->fields[f->leaves[l].field];
    if (fd->first_leaf < 0)
      fd->first_leaf = l;
    fd->nleaves++;
    int p = 0, s = 0;
    f->leaves[l].out = leaf_out(f->leaves[l].node, &p, &s);
  }
  for (int i = 0; i < f->nfields; i++) {
    pq_field *fd = &f->fields[i];
    fd->nested = fd->node->ptype < 0 || fd->node->rep == PQ_REPEATED;
    if (fd->first_leaf < 0) {
      rc = bad(f, e, "a group without columns");
      goto fail;
    }
    if (fd->nested) {
      fd->out = PQO_VARCHAR;
    } else {
      fd->out = leaf_out(fd->node, &fd->prec, &fd->scale);
    }
  }
  /* row groups */
  if (external) {
    rc = err_set(e, ERR_NOT_IMPLEMENTED,
                 "Parquet file '%s' keeps column chunks in other files (not supported)", name);
    goto fail;
  }
  f->rgs = rgs;
  f->nrgs = (int)nrg;
  int64_t total = 0;
  for (uint32_t i = 0; i < nrg; i++) {
    pq_rowgroup *g = &rgs[i];
    if (rg_nchunks[i] != (uint32_t)f->nleaves) {
      rc = bad(f, e, "a row group's column count differs from the schema's");
      goto fail;
    }
    if (g->num_rows < 0) {
      rc = bad(f, e, "a row group has a negative row count");
      goto fail;
    }
    total += g->num_rows;
    for (int k = 0; k < f->nleaves; k++) {
      pq_chunk *c = &g->chunks[k];
      if (c->ptype != f->leaves[k].node->ptype) {
        rc = bad(f, e, "a column chunk's type differs from the schema's");
        goto fail;
      }
      uint64_t off, len;
      if ((rc = pq_chunk_range(f, (int)i, k, &off, &len, e)) < 0)
        goto fail;
    }
  }
  (void)total;
  *out = f;
  return 0;
fail:
  arena_free(a);
  return rc;
}

pq_file *pq_file_free(pq_file *f)
{
  if (f != NULL)
    arena_free(f->a);
  return NULL;
}

int pq_chunk_range(const pq_file *f, int rg, int leaf, uint64_t *off, uint64_t *len, err *e)
{
  const pq_chunk *c = &f->rgs[rg].chunks[leaf];
  int64_t start = c->data_off;
  if (c->dict_off > 0 && c->dict_off < start)
    start = c->dict_off;
  uint64_t limit = f->size - PARQUET_FOOTER_TAIL;
  if (start < PARQUET_MAGIC_LEN || c->total <= 0 || (uint64_t)start > limit ||
      (uint64_t)c->total > limit - (uint64_t)start)
    return err_set(e, ERR_INVALID,
                   "corrupt Parquet file '%s': column '%s' of row group %d lies outside the "
                   "object", f->name, f->leaves[leaf].node->name, rg);
  *off = (uint64_t)start;
  *len = (uint64_t)c->total;
  return 0;
}

/* ---- statistics ---- */

static uint32_t le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
  return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

bool pq_stat_value(const pq_file *f, int leaf, const uint8_t *p, uint32_t n, int64_t *i,
                   double *d, str_ref *s)
{
  const pq_node *nd = f->leaves[leaf].node;
  bool legacy = (n & 0x80000000u) != 0;
  n &= 0x7fffffffu;
  if (p == NULL)
    return false;
  pq_out o = f->leaves[leaf].out;
  bool uns = nd->converted == PQ_CT_UINT_8 || nd->converted == PQ_CT_UINT_16 ||
             nd->converted == PQ_CT_UINT_32 || nd->converted == PQ_CT_UINT_64 ||
             (nd->logical == PQ_LT_INTEGER && !nd->is_signed);
  if (uns)
    return false;
  switch (o) {
  case PQO_BOOLEAN:
    if (n != 1)
      return false;
    *i = p[0] != 0;
    return true;
  case PQO_BIGINT:
  case PQO_DATE:
    if (nd->ptype == PQ_INT32 && n == 4) {
      *i = (int32_t)le32(p);
      return true;
    }
    if (nd->ptype == PQ_INT64 && n == 8) {
      *i = (int64_t)le64(p);
      return true;
    }
    return false;
  case PQO_TIMESTAMP:
    if (nd->ptype != PQ_INT64 || n != 8)
      return false;
    {
      int64_t v = (int64_t)le64(p);
      int unit = nd->unit ? nd->unit
                          : nd->converted == PQ_CT_TIMESTAMP_MILLIS ? PQ_UNIT_MILLIS
                                                                    : PQ_UNIT_MICROS;
      if (unit == PQ_UNIT_MILLIS) {
        if (v > INT64_MAX / 1000 || v < INT64_MIN / 1000)
          return false;
        v *= 1000;
      } else if (unit == PQ_UNIT_NANOS) {
        v = v >= 0 ? v / 1000 : -((-(v + 1)) / 1000) - 1;
      }
      *i = v;
    }
    return true;
  case PQO_DOUBLE:
    if (nd->ptype == PQ_FLOAT && n == 4) {
      uint32_t u = le32(p);
      float x;
      memcpy(&x, &u, 4);
      *d = x;
    } else if (nd->ptype == PQ_DOUBLE && n == 8) {
      uint64_t u = le64(p);
      memcpy(d, &u, 8);
    } else {
      return false;
    }
    return *d == *d;   /* NaN bounds say nothing */
  case PQO_DECIMAL:
    if (nd->ptype == PQ_INT32 && n == 4) {
      *i = (int32_t)le32(p);
      return true;
    }
    if (nd->ptype == PQ_INT64 && n == 8) {
      *i = (int64_t)le64(p);
      return true;
    }
    if (legacy || n == 0 || n > 8)
      return false;
    {
      /* big-endian two's complement */
      int64_t v = (int8_t)p[0];
      for (uint32_t k = 1; k < n; k++)
        v = (int64_t)((uint64_t)v << 8 | p[k]);
      *i = v;
    }
    return true;
  case PQO_VARCHAR:
    /* byte order = the engine's string order; legacy bounds used signed bytes */
    if (legacy || nd->ptype != PQ_BYTE_ARRAY || nd->logical == PQ_LT_DECIMAL ||
        nd->converted == PQ_CT_DECIMAL)
      return false;
    s->ptr = (const char *)p;
    s->len = n;
    return true;
  }
  return false;
}

/* ---- page indexes ---- */

void pq_page_index_ranges(const pq_file *f, int rg, int leaf, uint64_t *oi_off,
                          uint64_t *oi_len, uint64_t *ci_off, uint64_t *ci_len)
{
  const pq_chunk *c = &f->rgs[rg].chunks[leaf];
  uint64_t limit = f->size - PARQUET_FOOTER_TAIL;
  *oi_off = *oi_len = *ci_off = *ci_len = 0;
  if (c->oi_off >= PARQUET_MAGIC_LEN && c->oi_len > 0 && (uint64_t)c->oi_off <= limit &&
      (uint64_t)c->oi_len <= limit - (uint64_t)c->oi_off) {
    *oi_off = (uint64_t)c->oi_off;
    *oi_len = (uint64_t)c->oi_len;
  }
  if (c->ci_off >= PARQUET_MAGIC_LEN && c->ci_len > 0 && (uint64_t)c->ci_off <= limit &&
      (uint64_t)c->ci_len <= limit - (uint64_t)c->ci_off) {
    *ci_off = (uint64_t)c->ci_off;
    *ci_len = (uint64_t)c->ci_len;
  }
}

void pq_page_index_free(pq_pageidx *p)
{
  free(p->offset);
  free(p->size);
  free(p->first_row);
  free(p->null_page);
  free(p->st);
  memset(p, 0, sizeof *p);
}

/* a list<i64> (or list<bool>) of exactly n entries into out; false otherwise */
static bool read_list_n(thrift *t, int n, int64_t *i64, uint8_t *bools, pq_stats *st,
                        bool max)
{
  int et;
  uint32_t m = formats__thrift_list(t, &et);
  if (t->bad || m != (uint32_t)n) {
    for (uint32_t k = 0; k < m && !t->bad; k++)
      formats__thrift_skip(t, et);
    return false;
  }
  for (int k = 0; k < n && !t->bad; k++) {
    if (bools != NULL) {
      /* compact protocol: booleans in lists are one byte, 1 true */
      if (t->p >= t->end) {
        formats__thrift_fail(t, "truncated list");
        break;
      }
      bools[k] = *t->p++ == 1;
    } else if (i64 != NULL) {
      i64[k] = formats__thrift_zigzag(t);
    } else {
      uint32_t len;
      const uint8_t *b = formats__thrift_binary(t, &len);
      if (max) {
        st[k].max = b;
        st[k].max_len = len & 0x7fffffffu;
      } else {
        st[k].min = b;
        st[k].min_len = len & 0x7fffffffu;
      }
    }
  }
  return !t->bad;
}

static int pidx_bad(const pq_file *f, int leaf, const char *what, err *e)
{
  return err_set(e, ERR_INVALID, "corrupt Parquet file '%s': the page index of column '%s' %s",
                 f->name, f->leaves[leaf].node->name, what);
}

int pq_page_index_parse(const pq_file *f, int rg, int leaf, const uint8_t *oi, size_t oin,
                        const uint8_t *ci, size_t cin, pq_pageidx *out, err *e)
{
  memset(out, 0, sizeof *out);
  const pq_chunk *c = &f->rgs[rg].chunks[leaf];
  int64_t rows = f->rgs[rg].num_rows;
  thrift t;
  formats__thrift_init(&t, oi, oin);
  if (!formats__thrift_enter(&t))
    return pidx_bad(f, leaf, "is unreadable", e);
  int16_t last = 0, id;
  int ty;
  bool bv;
  int cap = 0;
  while (formats__thrift_field(&t, &last, &id, &ty, &bv)) {
    if (id != 1 || ty != THRIFT_LIST || out->n > 0) {
      formats__thrift_skip(&t, ty);
      continue;
    }
    int et;
    uint32_t m = formats__thrift_list(&t, &et);
    if (t.bad || et != THRIFT_STRUCT || m == 0 || m > (1u << 24))
      break;
    cap = (int)m;
    out->offset = xcalloc(m, sizeof(int64_t));
    out->size = xcalloc(m, sizeof(int32_t));
    out->first_row = xcalloc(m + 1, sizeof(int64_t));
    for (uint32_t k = 0; k < m && !t.bad; k++) {
      if (!formats__thrift_enter(&t))
        break;
      int16_t l2 = 0;
      while (formats__thrift_field(&t, &l2, &id, &ty, &bv)) {
        if (id == 1 && ty == THRIFT_I64)
          out->offset[k] = formats__thrift_zigzag(&t);
        else if (id == 2 && ty == THRIFT_I32)
          out->size[k] = (int32_t)formats__thrift_zigzag(&t);
        else if (id == 3 && ty == THRIFT_I64)
          out->first_row[k] = formats__thrift_zigzag(&t);
        else
          formats__thrift_skip(&t, ty);
      }
      formats__thrift_leave(&t);
    }
    out->n = (int)m;
  }
  formats__thrift_leave(&t);
  if (t.bad || out->n == 0 || out->n != cap) {
    pq_page_index_free(out);
    return pidx_bad(f, leaf, "is unreadable", e);
  }
  out->first_row[out->n] = rows;
  /* the pages must lie inside the chunk, in order, rows increasing */
  uint64_t start, len;
  err e2;
  if (pq_chunk_range(f, rg, leaf, &start, &len, &e2) < 0) {
    pq_page_index_free(out);
    return err_set(e, ERR_INVALID, "%s", e2.msg);
  }
  int64_t prev_end = (int64_t)start;
  for (int k = 0; k < out->n; k++) {
    if (out->offset[k] < prev_end || out->size[k] <= 0 ||
        (uint64_t)out->offset[k] + (uint64_t)out->size[k] > start + len ||
        out->first_row[k] < 0 || out->first_row[k] >= out->first_row[k + 1] ||
        (k == 0 && out->first_row[0] != 0)) {
      pq_page_index_free(out);
      return pidx_bad(f, leaf, "does not match its column chunk", e);
    }
    prev_end = out->offset[k] + out->size[k];
  }
  (void)c;
  if (ci == NULL || cin == 0)
    return 0;
  /* the ColumnIndex: unusable (not an error) when it does not match */
  formats__thrift_init(&t, ci, cin);
  if (!formats__thrift_enter(&t))
    return 0;
  out->null_page = xcalloc((size_t)out->n, 1);
  out->st = xcalloc((size_t)out->n, sizeof(pq_stats));
  int64_t *nc = xcalloc((size_t)out->n, sizeof(int64_t));
  bool have_np = false, have_min = false, have_max = false, have_nc = false;
  last = 0;
  while (!t.bad && formats__thrift_field(&t, &last, &id, &ty, &bv)) {
    if (ty != THRIFT_LIST) {
      formats__thrift_skip(&t, ty);
      continue;
    }
    if (id == 1)
      have_np = read_list_n(&t, out->n, NULL, out->null_page, NULL, false);
    else if (id == 2)
      have_min = read_list_n(&t, out->n, NULL, NULL, out->st, false);
    else if (id == 3)
      have_max = read_list_n(&t, out->n, NULL, NULL, out->st, true);
    else if (id == 5)
      have_nc = read_list_n(&t, out->n, nc, NULL, NULL, false);
    else
      formats__thrift_skip(&t, ty);
  }
  for (int k = 0; k < out->n; k++) {
    out->st[k].null_count = have_nc ? nc[k] : -1;
    if (out->null_page[k])
      out->st[k].null_count = out->first_row[k + 1] - out->first_row[k];
    if (out->null_page[k] || !have_min || !have_max) {
      out->st[k].min = out->st[k].max = NULL;
      out->st[k].min_len = out->st[k].max_len = 0;
    }
  }
  free(nc);
  out->has_ci = !t.bad && have_np && have_min && have_max;
  if (!out->has_ci) {
    free(out->null_page);
    free(out->st);
    out->null_page = NULL;
    out->st = NULL;
  }
  return 0;
}
