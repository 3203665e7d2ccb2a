/* kv/item.c -- items: PutItem, GetItem, UpdateItem, DeleteItem, and the one
 * write path every item change takes (kv__item_write), which keeps the
 * table's indexes and its stream in the same transaction as the change.
 *
 * Why one write path: batch writes, transactions and TTL deletions change
 * items too; if each maintained indexes and streams itself they would
 * drift. Here an item change is (old, new), and every index entry and the
 * stream record follow from that pair.
 *
 * Invariants:
 *   (1) Index entries exist exactly for the items that carry all of the
 *       index's key attributes (sparse indexes), and hold the projection.
 *   (2) A stream record is written in the transaction of its change, with a
 *       sequence number that grows per table.
 *   (3) A write request checks its condition against the item as it is in
 *       the write transaction (on the committer thread), never a stale read.
 *
 * Start reading at kv__write_req_apply().
 */
#include "internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table's shape ---- */

static void index_from(kv_index *ix, json_t *schema, json_t *defs)
{
  size_t i;
  json_t *k;
  json_array_foreach(schema, i, k) {
    const char *name = kv__in_str(k, "AttributeName");
    const char *type = NULL;
    size_t j;
    json_t *d;
    json_array_foreach(defs, j, d) if (strcmp(kv__in_str(d, "AttributeName"), name) == 0) type =
        kv__in_str(d, "AttributeType");
    if (strcmp(kv__in_str(k, "KeyType"), "HASH") == 0) {
      ix->hash = name;
      ix->hash_type = type;
    } else {
      ix->range = name;
      ix->range_type = type;
    }
  }
}

int kv__table_from_desc(json_t *desc, kv_table *t, err *e)
{
  memset(t, 0, sizeof *t);
  t->desc = json_incref(desc);
  t->name = kv__in_str(desc, "TableName");
  t->id = (uint32_t)json_integer_value(json_object_get(desc, "TarnId"));
  json_t *defs = json_object_get(desc, "AttributeDefinitions");
  index_from(&t->base, json_object_get(desc, "KeySchema"), defs);
  t->base.projection = "ALL";
  const char *lists[] = {"GlobalSecondaryIndexes", "LocalSecondaryIndexes"};
  for (int l = 0; l < 2; l++) {
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(desc, lists[l]), i, x) {
      if (t->nidx == KV_GSI_MAX + KV_LSI_MAX)
        break;
      kv_index *ix = &t->idx[t->nidx++];
      ix->name = kv__in_str(x, "IndexName");
      ix->no = (uint8_t)json_integer_value(json_object_get(x, "TarnIndex"));
      ix->global = l == 0;
      index_from(ix, json_object_get(x, "KeySchema"), defs);
      json_t *p = json_object_get(x, "Projection");
      ix->projection = kv__in_str(p, "ProjectionType");
      ix->include = json_object_get(p, "NonKeyAttributes");
    }
  }
  json_t *spec = json_object_get(desc, "StreamSpecification");
  if (json_is_true(json_object_get(spec, "StreamEnabled")))
    t->stream_view = kv__in_str(spec, "StreamViewType");
  return 0;
}

int kv__table_open(kv *k, MDB_txn *txn, const char *name, kv_table *t, err *e)
{
  json_t *desc;
  memset(t, 0, sizeof *t);
  int rc = kv__table_load(k, txn, name, &desc, e);
  if (rc != 0)
    return rc;
  rc = kv__table_from_desc(desc, t, e);
  json_decref(desc);
  return rc;
}

void kv__table_release(kv_table *t)
{
  json_decref(t->desc);
  t->desc = NULL;
}

const kv_index *kv__table_index(const kv_table *t, const char *name, err *e)
{
  for (size_t i = 0; i < t->nidx; i++)
    if (strcmp(t->idx[i].name, name) == 0)
      return &t->idx[i];
  err_set(e, KV_ERR_VALIDATION,
          "The table does not have the specified index: %s", name);
  return NULL;
}

void kv__prefix(const kv_table *t, uint8_t no, buf *out)
{
  uint8_t p[5] = {(uint8_t)(t->id >> 24), (uint8_t)(t->id >> 16), (uint8_t)(t->id >> 8),
                  (uint8_t)t->id, no};
  buf_append(out, p, 5);
}

static bool empty_value(const json_t *av)
{
  json_t *s = json_object_get(av, "S");
  json_t *b = json_object_get(av, "B");
  return (s != NULL && json_string_length(s) == 0) || (b != NULL && json_string_length(b) == 0);
}

int kv__key_check(const kv_table *t, json_t *key, err *e)
{
  if (!json_is_object(key))
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value null at 'key' "
                   "failed to satisfy constraint: Member must not be null");
  size_t want = t->base.range != NULL ? 2 : 1;
  const char *names[2] = {t->base.hash, t->base.range};
  const char *types[2] = {t->base.hash_type, t->base.range_type};
  if (json_object_size(key) != want)
    return err_set(e, KV_ERR_VALIDATION, "The provided key element does not match the schema");
  for (size_t i = 0; i < want; i++) {
    json_t *v = json_object_get(key, names[i]);
    if (v == NULL)
      return err_set(e, KV_ERR_VALIDATION, "The provided key element does not match the schema");
    int rc = kv__av_check(v, 1, e);
    if (rc != 0)
      return rc;
    const char *at = kv__av_type(v);
    if (strcmp(at, types[i]) != 0)
      return err_set(e, KV_ERR_VALIDATION, "The provided key element does not match the schema");
    if (empty_value(v))
      return err_set(e, KV_ERR_VALIDATION, "One or more parameter values are not valid. The "
                     "AttributeValue for a key attribute cannot contain an empty %s value. Key: %s",
                     at[0] == 'S' ? "string" : "binary", names[i]);
  }
  return 0;
}

/* Checks the key attributes of a whole item against the table and its
 * indexes. */
static int item_keys_check(const kv_table *t, const json_t *item, err *e)
{
  const char *names[2] = {t->base.hash, t->base.range};
  const char *types[2] = {t->base.hash_type, t->base.range_type};
  for (int i = 0; i < 2; i++) {
    if (names[i] == NULL)
      continue;
    json_t *v = json_object_get(item, names[i]);
    if (v == NULL)
      return err_set(e, KV_ERR_VALIDATION, "One or more parameter values were invalid: Missing "
                     "the key %s in the item", names[i]);
    const char *at = kv__av_type(v);
    if (strcmp(at, types[i]) != 0)
      return err_set(e, KV_ERR_VALIDATION, "One or more parameter values were invalid: Type "
                     "mismatch for key %s expected: %s actual: %s", names[i], types[i], at);
    if (empty_value(v))
      return err_set(e, KV_ERR_VALIDATION, "One or more parameter values are not valid. The "
                     "AttributeValue for a key attribute cannot contain an empty %s value. Key: %s",
                     at[0] == 'S' ? "string" : "binary", names[i]);
    size_t size = strcmp(at, "S") == 0 ? json_string_length(json_object_get(v, "S")) : 0;
    if (i == 0 && size > KV_HASH_KEY_MAX)
      return err_set(e, KV_ERR_VALIDATION, "One or more parameter values were invalid: Size of "
                     "hashkey has exceeded the maximum size limit of2048 bytes");
    if (i == 1 && size > KV_RANGE_KEY_MAX)
      return err_set(e, KV_ERR_VALIDATION, "One or more parameter values were invalid: "
                     "Aggregated size of all range keys has exceeded the size limit of 1024 bytes");
  }
  for (size_t x = 0; x < t->nidx; x++) {
    const kv_index *ix = &t->idx[x];
    const char *in[2] = {ix->hash, ix->range};
    const char *it[2] = {ix->hash_type, ix->range_type};
    for (int i = 0; i < 2; i++) {
      json_t *v = in[i] != NULL ? json_object_get(item, in[i]) : NULL;
      if (v == NULL)
        continue;
      const char *at = kv__av_type(v);
      if (strcmp(at, it[i]) != 0)
        return err_set(e, KV_ERR_VALIDATION, "One or more parameter values were invalid: Type "
                       "mismatch for Index Key %s Expected: %s Actual: %s IndexName: %s", in[i],
                       it[i], at, ix->name);
      if (empty_value(v))
        return err_set(e, KV_ERR_VALIDATION, "One or more parameter values are not valid. A "
                       "value specified for a secondary index key is not supported. The "
                       "AttributeValue for a key attribute cannot contain an empty string value. "
                       "IndexName: %s, IndexKey: %s", ix->name, in[i]);
    }
  }
  return 0;
}

int kv__entry_key(const kv_table *t, const kv_index *ix, const json_t *item, buf *out, bool *has,
                 err *e)
{
  *has = false;
  json_t *h = json_object_get(item, ix->hash);
  json_t *r = ix->range != NULL ? json_object_get(item, ix->range) : NULL;
  if (h == NULL || (ix->range != NULL && r == NULL))
    return 0;
  const char *ht = kv__av_type(h);
  if (ht == NULL || strcmp(ht, ix->hash_type) != 0 ||
      (r != NULL && strcmp(kv__av_type(r), ix->range_type) != 0))
    return 0;
  kv__prefix(t, ix->no, out);
  int rc = kv__key_append_mode(out, ix->hash_type, h, true, e);
  if (rc == 0 && r != NULL)
    rc = kv__key_append(out, ix->range_type, r, e);
  if (rc == 0 && ix->no != 0) {
    /* the base key makes index entries unique */
    rc = kv__key_append_mode(out, t->base.hash_type, json_object_get(item, t->base.hash), true, e);
    if (rc == 0 && t->base.range != NULL)
      rc = kv__key_append(out, t->base.range_type, json_object_get(item, t->base.range), e);
  }
  *has = rc == 0;
  return rc;
}

json_t *kv__item_key(const kv_table *t, const kv_index *ix, const json_t *item)
{
  json_t *k = json_object();
  const char *names[4] = {t->base.hash, t->base.range, ix != NULL ? ix->hash : NULL,
                          ix != NULL ? ix->range : NULL};
  for (int i = 0; i < 4; i++) {
    json_t *v = names[i] != NULL ? json_object_get(item, names[i]) : NULL;
    if (v != NULL)
      json_object_set(k, names[i], v);
  }
  return k;
}

static json_t *projection(const kv_table *t, const kv_index *ix, const json_t *item)
{
  if (strcmp(ix->projection, "ALL") == 0)
    return json_incref((json_t *)item);
  json_t *p = kv__item_key(t, ix, item);
  size_t i;
  json_t *n;
  json_array_foreach(ix->include, i, n) {
    json_t *v = json_is_string(n) ? json_object_get(item, json_string_value(n)) : NULL;
    if (v != NULL)
      json_object_set(p, json_string_value(n), v);
  }
  return p;
}

json_t *kv__index_entry(const kv_table *t, const kv_index *ix, const json_t *item)
{
  buf key;
  buf_init(&key, 1 << 16);
  bool has = false;
  err e = {0};
  int rc = kv__entry_key(t, ix, item, &key, &has, &e);
  buf_release(&key);
  return rc == 0 && has ? projection(t, ix, item) : NULL;
}

int kv__item_read(kv *k, MDB_txn *txn, const kv_table *t, const json_t *key, json_t **out, err *e)
{
  buf kb;
  buf_init(&kb, 1 << 16);
  bool has;
  *out = NULL;
  int rc = kv__entry_key(t, &t->base, key, &kb, &has, e);
  if (rc == 0 && has) {
    MDB_val mk = {kb.len, kb.data}, val;
    int mrc = mdb_get(txn, k->items, &mk, &val);
    if (mrc == 0) {
      *out = kv__item_decode(val.mv_data, val.mv_size);
      if (*out == NULL)
        rc = err_set(e, ERR_INTERNAL, "an item of table '%s' is damaged", t->name);
    } else if (mrc != MDB_NOTFOUND) {
      rc = lmdb_error(e, mrc, "read an item");
    }
  }
  buf_release(&kb);
  return rc;
}

static int put_entry(kv *k, MDB_txn *txn, buf *key, const json_t *item, err *e)
{
  buf v;
  buf_init(&v, (size_t)KV_ITEM_MAX * 4);
  int rc = kv__item_encode(item, &v);
  if (rc == 0) {
    MDB_val mk = {key->len, key->data}, mv = {v.len, v.data};
    int mrc = mdb_put(txn, k->items, &mk, &mv, 0);
    if (mrc != 0)
      rc = lmdb_error(e, mrc, "write an item");
  } else {
    rc = err_set(e, KV_ERR_VALIDATION, "Item size has exceeded the maximum allowed size");
  }
  buf_release(&v);
  return rc;
}

static int del_entry(kv *k, MDB_txn *txn, buf *key, err *e)
{
  MDB_val mk = {key->len, key->data};
  int mrc = mdb_del(txn, k->items, &mk, NULL);
  return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : lmdb_error(e, mrc, "delete an item");
}

/* One index (or the base table): old entry out, new entry in. */
static int write_index(kv *k, MDB_txn *txn, const kv_table *t, const kv_index *ix,
                       const json_t *old, const json_t *nw, err *e)
{
  buf ok, nk;
  buf_init(&ok, 1 << 16);
  buf_init(&nk, 1 << 16);
  bool has_old = false, has_new = false;
  int rc = 0;
  if (old != NULL)
    rc = kv__entry_key(t, ix, old, &ok, &has_old, e);
  if (rc == 0 && nw != NULL)
    rc = kv__entry_key(t, ix, nw, &nk, &has_new, e);
  if (rc == 0 && has_old && !(has_new && ok.len == nk.len && memcmp(ok.data, nk.data, ok.len) == 0))
    rc = del_entry(k, txn, &ok, e);
  if (rc == 0 && has_new) {
    json_t *p = projection(t, ix, nw);
    rc = put_entry(k, txn, &nk, p, e);
    json_decref(p);
  }
  buf_release(&ok);
  buf_release(&nk);
  return rc;
}

static int stream_append(kv *k, MDB_txn *txn, const kv_table *t, const json_t *old,
                         const json_t *nw, bool by_service, err *e)
{
  uint8_t pre[4] = {(uint8_t)(t->id >> 24), (uint8_t)(t->id >> 16), (uint8_t)(t->id >> 8),
                    (uint8_t)t->id};
  uint8_t next[4];
  uint32_t nid = t->id + 1;
  next[0] = (uint8_t)(nid >> 24);
  next[1] = (uint8_t)(nid >> 16);
  next[2] = (uint8_t)(nid >> 8);
  next[3] = (uint8_t)nid;
  MDB_cursor *cur;
  int mrc = mdb_cursor_open(txn, k->streams, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "append a stream record");
  MDB_val key = {4, next}, val;
  uint64_t seq = 1;
  mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
  mrc = mrc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_PREV)
                 : mdb_cursor_get(cur, &key, &val, MDB_LAST);
  if (mrc == 0 && key.mv_size == 12 && memcmp(key.mv_data, pre, 4) == 0) {
    const uint8_t *p = (const uint8_t *)key.mv_data + 4;
    seq = 0;
    for (int i = 0; i < 8; i++)
      seq = seq << 8 | p[i];
    seq++;
  }
  mdb_cursor_close(cur);
  const json_t *any = nw != NULL ? nw : old;
  json_t *keys = kv__item_key(t, NULL, any);
  char seqtext[32];
  snprintf(seqtext, sizeof seqtext, "%020llu", (unsigned long long)seq);
  json_t *ddb = json_pack("{sIsossss}", "ApproximateCreationDateTime",
                          (json_int_t)(time_now_ms() / 1000), "Keys", keys, "SequenceNumber",
                          seqtext, "StreamViewType", t->stream_view);
  bool new_img = strcmp(t->stream_view, "NEW_IMAGE") == 0 ||
                 strcmp(t->stream_view, "NEW_AND_OLD_IMAGES") == 0;
  bool old_img = strcmp(t->stream_view, "OLD_IMAGE") == 0 ||
                 strcmp(t->stream_view, "NEW_AND_OLD_IMAGES") == 0;
  if (new_img && nw != NULL)
    json_object_set(ddb, "NewImage", (json_t *)nw);
  if (old_img && old != NULL)
    json_object_set(ddb, "OldImage", (json_t *)old);
  json_object_set_new(ddb, "SizeBytes", json_integer((json_int_t)kv__item_size(any)));
  char id[37];
  uuid_v4(id);
  json_t *rec = json_pack("{ssssssssssso}", "eventID", id, "eventName",
                          old == NULL ? "INSERT" : nw == NULL ? "REMOVE" : "MODIFY",
                          "eventVersion", "1.1", "eventSource", "aws:dynamodb", "awsRegion",
                          "us-east-1", "dynamodb", ddb);
  if (by_service)
    json_object_set_new(rec, "userIdentity", json_pack("{ssss}", "Type", "Service",
                                                       "PrincipalId", "dynamodb.amazonaws.com"));
  char *text = json_dumps(rec, JSON_COMPACT);
  json_decref(rec);
  uint8_t sk[12];
  memcpy(sk, pre, 4);
  for (int i = 0; i < 8; i++)
    sk[4 + i] = (uint8_t)(seq >> (56 - 8 * i));
  key = (MDB_val){12, sk};
  val = (MDB_val){strlen(text), text};
  mrc = mdb_put(txn, k->streams, &key, &val, 0);
  free(text);
  return mrc == 0 ? 0 : lmdb_error(e, mrc, "append a stream record");
}

int kv__item_write(kv *k, MDB_txn *txn, const kv_table *t, const json_t *old, const json_t *nw,
                  bool by_service, err *e)
{
  if (old == NULL && nw == NULL)
    return 0;
  int rc = write_index(k, txn, t, &t->base, old, nw, e);
  for (size_t i = 0; i < t->nidx && rc == 0; i++)
    rc = write_index(k, txn, t, &t->idx[i], old, nw, e);
  if (rc == 0 && t->stream_view != NULL)
    rc = stream_append(k, txn, t, old, nw, by_service, e);
  return rc;
}

int kv__index_fill(kv *k, MDB_txn *txn, const kv_table *t, uint8_t no, err *e)
{
  const kv_index *ix = NULL;
  for (size_t i = 0; i < t->nidx; i++)
    if (t->idx[i].no == no)
      ix = &t->idx[i];
  if (ix == NULL)
    return 0;
  buf pre;
  buf_init(&pre, 16);
  kv__prefix(t, 0, &pre);
  MDB_cursor *cur;
  int mrc = mdb_cursor_open(txn, k->items, &cur);
  MDB_val key = {pre.len, pre.data}, val;
  int rc = 0;
  if (mrc == 0)
    mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
  while (rc == 0 && mrc == 0 && key.mv_size >= 5 && memcmp(key.mv_data, pre.data, 5) == 0) {
    json_t *item = kv__item_decode(val.mv_data, val.mv_size);
    if (item != NULL) {
      /* writing into the same database moves the cursor: copy the key */
      buf at;
      buf_init(&at, 1 << 16);
      buf_append(&at, key.mv_data, key.mv_size);
      rc = write_index(k, txn, t, ix, NULL, item, e);
      json_decref(item);
      key = (MDB_val){at.len, at.data};
      mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
      if (mrc == 0)
        mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
      buf_release(&at);
    } else {
      mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
  }
  mdb_cursor_close(cur);
  buf_release(&pre);
  return rc;
}

/* ---- write requests ---- */

static int check_values(json_t *in, err *e)
{
  json_t *names = json_object_get(in, "ExpressionAttributeNames");
  json_t *values = json_object_get(in, "ExpressionAttributeValues");
  if (names != NULL) {
    if (!json_is_object(names))
      return err_set(e, KV_ERR_SERIALIZATION, "ExpressionAttributeNames must be a map");
    if (json_object_size(names) == 0)
      return err_set(e, KV_ERR_VALIDATION, "ExpressionAttributeNames must not be empty");
    const char *k;
    json_t *v;
    json_object_foreach(names, k, v) {
      if (k[0] != '#')
        return err_set(e, KV_ERR_VALIDATION, "ExpressionAttributeNames contains invalid key: "
                       "Syntax error; key: \"%s\"", k);
      if (!json_is_string(v))
        return err_set(e, KV_ERR_SERIALIZATION, "ExpressionAttributeNames values must be strings");
    }
  }
  if (values != NULL) {
    if (!json_is_object(values))
      return err_set(e, KV_ERR_SERIALIZATION, "ExpressionAttributeValues must be a map");
    if (json_object_size(values) == 0)
      return err_set(e, KV_ERR_VALIDATION, "ExpressionAttributeValues must not be empty");
    const char *k;
    json_t *v;
    json_object_foreach(values, k, v) {
      if (k[0] != ':')
        return err_set(e, KV_ERR_VALIDATION, "ExpressionAttributeValues contains invalid key: "
                       "Syntax error; key: \"%s\"", k);
      int rc = kv__av_check(v, 1, e);
      if (rc != 0) {
        if (e->code == KV_ERR_VALIDATION && strstr(e->msg, "ExpressionAttributeValues") == NULL)
          err_wrap(e, "ExpressionAttributeValues contains invalid value");
        return rc;
      }
    }
  }
  return 0;
}

int kv__expr_begin(kx_ctx *cx, json_t *in, arena *a, bool has_expr, err *e)
{
  kv__ctx_init(cx, a, json_object_get(in, "ExpressionAttributeNames"),
              json_object_get(in, "ExpressionAttributeValues"));
  int rc = check_values(in, e);
  if (rc != 0)
    return rc;
  if (!has_expr && cx->values != NULL)
    return err_set(e, KV_ERR_VALIDATION, "ExpressionAttributeValues can only be specified when "
                   "using expressions");
  if (!has_expr && cx->names != NULL)
    return err_set(e, KV_ERR_VALIDATION, "ExpressionAttributeNames can only be specified when "
                   "using expressions");
  return kv_legacy_rewrite(in, e); /* batches and transactions: per entry */
}

int kv__write_req_parse(kv_write_req *w, const char *kind, json_t *in, arena *a, err *e)
{
  memset(w, 0, sizeof *w);
  w->kind = kind;
  w->in = in;
  int rc = kv__need_table_name(in, &w->table, e);
  if (rc != 0)
    return rc;
  const char *cond = kv__in_str(in, "ConditionExpression");
  const char *upd = kv__in_str(in, "UpdateExpression");
  rc = kv__expr_begin(&w->cx, in, a, cond != NULL || upd != NULL, e);
  if (rc != 0)
    return rc;
  if (strcmp(kind, "Put") == 0) {
    w->item = json_object_get(in, "Item");
    if (w->item == NULL)
      return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value null at 'item' "
                     "failed to satisfy constraint: Member must not be null");
    if ((rc = kv__item_check(w->item, e)) != 0)
      return rc;
    if (kv__item_size(w->item) > KV_ITEM_MAX)
      return err_set(e, KV_ERR_VALIDATION, "Item size has exceeded the maximum allowed size");
  } else {
    w->key = json_object_get(in, "Key");
    if (w->key == NULL)
      return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value null at 'key' "
                     "failed to satisfy constraint: Member must not be null");
  }
  if (strcmp(kind, "Update") == 0 && upd != NULL &&
      (rc = kv__parse_update(&w->cx, upd, &w->update, e)) != 0)
    return rc;
  if (strcmp(kind, "ConditionCheck") == 0 && cond == NULL)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value null at "
                   "'conditionExpression' failed to satisfy constraint: Member must not be null");
  if (cond != NULL && (rc = kv__parse_condition(&w->cx, cond, "ConditionExpression", &w->cond, e)) != 0)
    return rc;
  if ((rc = kv__ctx_check_unused(&w->cx, e)) != 0)
    return rc;
  const char *rv = kv__in_str(in, "ReturnValues");
  w->return_values = rv != NULL ? rv : "NONE";
  bool ok = strcmp(w->return_values, "NONE") == 0 || strcmp(w->return_values, "ALL_OLD") == 0;
  if (strcmp(kind, "Update") == 0)
    ok = ok || strcmp(w->return_values, "ALL_NEW") == 0 ||
         strcmp(w->return_values, "UPDATED_OLD") == 0 ||
         strcmp(w->return_values, "UPDATED_NEW") == 0;
  if (!ok)
    return err_set(e, KV_ERR_VALIDATION, "Return values set to invalid value");
  const char *rvf = kv__in_str(in, "ReturnValuesOnConditionCheckFailure");
  w->return_old_on_fail = rvf != NULL && strcmp(rvf, "ALL_OLD") == 0;
  return 0;
}

void kv__write_req_release(kv_write_req *w)
{
  kv__ctx_release(&w->cx);
  json_decref(w->result);
  json_decref(w->fail_item);
  w->result = w->fail_item = NULL;
}

static json_t *pick(const json_t *item, json_t *names)
{
  json_t *o = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(names, k, v) {
    json_t *x = json_object_get(item, k);
    if (x != NULL)
      json_object_set(o, k, x);
  }
  return o;
}

int kv__write_req_apply(kv *k, kv_write_req *w, MDB_txn *txn, err *e)
{
  kv_table t;
  int rc = kv__table_open(k, txn, w->table, &t, e);
  if (rc != 0)
    return rc;
  json_t *key = NULL;
  if (w->item != NULL) {
    rc = item_keys_check(&t, w->item, e);
    if (rc == 0)
      key = kv__item_key(&t, NULL, w->item);
  } else {
    rc = kv__key_check(&t, w->key, e);
    if (rc == 0)
      key = json_incref(w->key);
  }
  json_t *old = NULL, *nw = NULL, *touched = json_object();
  if (rc == 0 && w->update != NULL) {
    json_t *names = json_object();
    kv__update_names(w->update, names);
    const char *keys[2] = {t.base.hash, t.base.range};
    for (int i = 0; i < 2 && rc == 0; i++)
      if (keys[i] != NULL && json_object_get(names, keys[i]) != NULL)
        rc = err_set(e, KV_ERR_VALIDATION, "One or more parameter values were invalid: Cannot "
                     "update attribute %s. This attribute is part of the key", keys[i]);
    json_decref(names);
  }
  if (rc == 0)
    rc = kv__item_read(k, txn, &t, key, &old, e);
  if (rc == 0 && w->cond != NULL) {
    bool ok;
    rc = kv__eval_condition(w->cond, old, &ok, e);
    if (rc == 0 && !ok) {
      if (w->return_old_on_fail && old != NULL)
        w->fail_item = json_incref(old);
      rc = err_set(e, KV_ERR_CONDITION, "The conditional request failed");
    }
  }
  if (rc == 0) {
    if (strcmp(w->kind, "Put") == 0) {
      nw = json_incref(w->item);
    } else if (strcmp(w->kind, "Update") == 0) {
      json_t *base = old != NULL ? json_incref(old) : json_deep_copy(key);
      if (w->update != NULL)
        rc = kv__apply_update(w->update, base, &nw, touched, e);
      else
        nw = json_incref(base);
      json_decref(base);
      if (rc == 0 && kv__item_size(nw) > KV_ITEM_MAX)
        rc = err_set(e, KV_ERR_VALIDATION, "Item size to update has exceeded the maximum "
                     "allowed size");
      if (rc == 0)
        rc = item_keys_check(&t, nw, e);
    }
  }
  if (rc == 0 && strcmp(w->kind, "ConditionCheck") != 0 && !w->check_only)
    rc = kv__item_write(k, txn, &t, old, nw, false, e);
  if (w->cap != NULL && !w->check_only) /* a ConditionCheck costs a write of the item as is */
    kv__capacity_write(w->cap, &t, old, rc == 0 && nw != NULL ? nw : old);
  if (rc == 0) {
    const char *rv = w->return_values;
    if (strcmp(rv, "ALL_OLD") == 0 && old != NULL)
      w->result = json_incref(old);
    else if (strcmp(rv, "ALL_NEW") == 0 && nw != NULL)
      w->result = json_incref(nw);
    else if (strcmp(rv, "UPDATED_OLD") == 0 && old != NULL)
      w->result = pick(old, touched);
    else if (strcmp(rv, "UPDATED_NEW") == 0 && nw != NULL)
      w->result = pick(nw, touched);
  }
  json_decref(touched);
  json_decref(old);
  json_decref(nw);
  json_decref(key);
  kv__table_release(&t);
  return rc;
}

/* ---- the four item operations ---- */

static int write_apply(kv *k, void *arg, MDB_txn *txn, arena *a, err *e)
{
  return kv__write_req_apply(k, arg, txn, e);
}

static int one_write(kv *k, const char *kind, json_t *in, json_t **out, err *e)
{
  arena *a = arena_new();
  kv_write_req w;
  const char *mode = NULL;
  kv_capacity cap = {0};
  int rc = kv__write_req_parse(&w, kind, in, a, e);
  if (rc == 0)
    rc = kv__capacity_mode(in, &mode, e);
  if (rc == 0 && mode != NULL) {
    kv__capacity_init(&cap, w.table, false);
    w.cap = &cap;
  }
  if (rc == 0)
    rc = kv__write(k, write_apply, &w, e);
  if (rc == 0) {
    *out = json_object();
    if (w.result != NULL && json_object_size(w.result) > 0)
      json_object_set(*out, "Attributes", w.result);
    if (mode != NULL)
      json_object_set_new(*out, "ConsumedCapacity", kv__capacity_json(&cap, mode, 1));
  } else if (rc == KV_ERR_CONDITION && w.fail_item != NULL) {
    *out = json_pack("{sO}", "Item", w.fail_item);
  }
  if (mode != NULL && cap.table != NULL)
    kv__capacity_release(&cap);
  kv__write_req_release(&w);
  arena_free(a);
  return rc;
}

int kv__put_item(kv *k, json_t *in, json_t **out, err *e)
{
  return one_write(k, "Put", in, out, e);
}

int kv__update_item(kv *k, json_t *in, json_t **out, err *e)
{
  return one_write(k, "Update", in, out, e);
}

int kv__delete_item(kv *k, json_t *in, json_t **out, err *e)
{
  return one_write(k, "Delete", in, out, e);
}

int kv__get_item(kv *k, json_t *in, json_t **out, err *e)
{
  const char *name;
  int rc = kv__need_table_name(in, &name, e);
  if (rc != 0)
    return rc;
  arena *a = arena_new();
  kx_ctx cx;
  const char *proj = kv__in_str(in, "ProjectionExpression");
  kx_node *pn = NULL;
  const char *mode;
  rc = kv__capacity_mode(in, &mode, e);
  if (rc == 0)
    rc = kv__expr_begin(&cx, in, a, proj != NULL, e);
  if (rc == 0 && proj != NULL)
    rc = kv__parse_projection(&cx, proj, &pn, e);
  if (rc == 0)
    rc = kv__ctx_check_unused(&cx, e);
  MDB_txn *txn = NULL;
  if (rc == 0)
    rc = lmdb_read_begin(k->env, &txn, e);
  kv_table t;
  memset(&t, 0, sizeof t);
  if (rc == 0)
    rc = kv__table_open(k, txn, name, &t, e);
  json_t *key = json_object_get(in, "Key");
  if (rc == 0)
    rc = kv__key_check(&t, key, e);
  json_t *item = NULL;
  if (rc == 0)
    rc = kv__item_read(k, txn, &t, key, &item, e);
  if (txn != NULL)
    mdb_txn_abort(txn);
  if (rc == 0) {
    *out = json_object();
    if (item != NULL)
      json_object_set_new(*out, "Item", pn != NULL ? kv__project(pn, item) : json_incref(item));
    if (mode != NULL) {
      kv_capacity cap;
      kv__capacity_init(&cap, name, true);
      kv__capacity_read(&cap, NULL, item != NULL ? kv__item_size(item) : 0,
                       json_is_true(json_object_get(in, "ConsistentRead")));
      json_object_set_new(*out, "ConsumedCapacity", kv__capacity_json(&cap, mode, 1));
      kv__capacity_release(&cap);
    }
  }
  json_decref(item);
  kv__table_release(&t);
  kv__ctx_release(&cx);
  arena_free(a);
  return rc;
}
