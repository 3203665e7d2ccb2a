/* kv/query.c -- Query and Scan over a table or one of its indexes, with
 * key conditions, filters, projections, Select COUNT, Limit, paging by
 * ExclusiveStartKey and parallel scan segments.
 *
 * Why: both walk one LMDB key range (kv/internal.h's layout): a Scan the
 * whole index [id][no], a Query one partition [id][no][hash key], forwards
 * or backwards, so results come in sort-key order (kv/value.c).
 *
 * Invariants:
 *   (1) Limit counts the items read that match the key condition (what
 *       DynamoDB calls ScannedCount), before the filter; a page also ends
 *       after KV_PAGE_BYTES of items read. A page that ended early carries
 *       LastEvaluatedKey: the last item read's table key (and index key).
 *   (2) Paging resumes strictly after ExclusiveStartKey's entry.
 *   (3) One read transaction per page: a page is a consistent snapshot.
 *
 * Start reading at run().
 */
#include "internal.h"

#include "base/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct qreq {
  bool query;
  const char *table;
  const char *index;
  json_int_t limit;          /* 0: none */
  json_t *esk;
  const char *select;
  bool forward;
  bool consistent;           /* ConsistentRead */
  const char *capacity_mode; /* ReturnConsumedCapacity; NULL: none */
  long segment, total;       /* total 0: no segments */
  kx_ctx cx;
  kx_node *filter, *proj;
  kx_keycond kc;
  bool has_kc;
} qreq;

#define bad(e, ...) err_set((e), KV_ERR_VALIDATION, __VA_ARGS__)

static int parse(qreq *q, json_t *in, bool query, arena *a, err *e)
{
  memset(q, 0, sizeof *q);
  q->query = query;
  q->forward = true;
  int rc = kv__need_table_name(in, &q->table, e);
  if (rc != 0)
    return rc;
  q->index = kv__in_str(in, "IndexName");
  json_t *lim = json_object_get(in, "Limit");
  if (lim != NULL) {
    q->limit = json_integer_value(lim);
    if (!json_is_integer(lim) || q->limit < 1)
      return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%lld' at 'limit' "
                     "failed to satisfy constraint: Member must have value greater than or equal "
                     "to 1", (long long)q->limit);
  }
  q->esk = json_object_get(in, "ExclusiveStartKey");
  q->select = kv__in_str(in, "Select");
  const char *proj = kv__in_str(in, "ProjectionExpression");
  const char *filter = kv__in_str(in, "FilterExpression");
  const char *kce = kv__in_str(in, "KeyConditionExpression");
  if (q->select != NULL && strcmp(q->select, "ALL_ATTRIBUTES") != 0 &&
      strcmp(q->select, "ALL_PROJECTED_ATTRIBUTES") != 0 && strcmp(q->select, "COUNT") != 0 &&
      strcmp(q->select, "SPECIFIC_ATTRIBUTES") != 0)
    return bad(e, "1 validation error detected: Value '%s' at 'select' failed to satisfy "
               "constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, "
               "ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]", q->select);
  if (q->select != NULL && proj != NULL && strcmp(q->select, "SPECIFIC_ATTRIBUTES") != 0)
    return bad(e, "Cannot specify the ProjectionExpression when choosing to get %s",
               q->select);
  if (q->select != NULL && strcmp(q->select, "ALL_PROJECTED_ATTRIBUTES") == 0 && q->index == NULL)
    return bad(e, "%s", "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an "
               "IndexName");
  q->consistent = json_is_true(json_object_get(in, "ConsistentRead"));
  if ((rc = kv__capacity_mode(in, &q->capacity_mode, e)) != 0)
    return rc;
  if (json_is_false(json_object_get(in, "ScanIndexForward")))
    q->forward = false;
  json_t *seg = json_object_get(in, "Segment");
  json_t *tot = json_object_get(in, "TotalSegments");
  if (!query && (seg != NULL || tot != NULL)) {
    if (tot == NULL)
      return bad(e, "%s", "The TotalSegments parameter is required but was not present in the "
                 "request when Segment parameter is present");
    if (seg == NULL)
      return bad(e, "%s", "The Segment parameter is required but was not present in the request "
                 "when parameter TotalSegments is present");
    q->segment = (long)json_integer_value(seg);
    q->total = (long)json_integer_value(tot);
    if (q->total < 1 || q->total > 1000000)
      return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%ld' at "
                     "'totalSegments' failed to satisfy constraint: Member must have value less "
                     "than or equal to 1000000", q->total);
    if (q->segment < 0 || q->segment >= q->total)
      return err_set(e, KV_ERR_VALIDATION, "The Segment parameter is zero-based and must be less "
                     "than parameter TotalSegments: Segment: %ld is not less than TotalSegments: "
                     "%ld", q->segment, q->total);
  }
  rc = kv__expr_begin(&q->cx, in, a, proj != NULL || filter != NULL || kce != NULL, e);
  if (rc != 0)
    return rc;
  if (query) {
    if (kce == NULL)
      return bad(e, "%s", "Either the KeyConditions or KeyConditionExpression parameter must be "
                 "specified in the request.");
    rc = kv__parse_keycond(&q->cx, kce, &q->kc, e);
    if (rc != 0)
      return rc;
    q->has_kc = true;
  }
  if (filter != NULL && (rc = kv__parse_condition(&q->cx, filter, "FilterExpression", &q->filter, e)) != 0)
    return rc;
  if (proj != NULL && (rc = kv__parse_projection(&q->cx, proj, &q->proj, e)) != 0)
    return rc;
  return kv__ctx_check_unused(&q->cx, e);
}

static bool key_type_ok(const json_t *v, const char *t)
{
  const char *vt = kv__av_type(v);
  return vt != NULL && t != NULL && strcmp(vt, t) == 0;
}

static int check_keycond(const qreq *q, const kv_index *ix, err *e)
{
  const kx_keycond *k = &q->kc;
  if (strcmp(k->hash_name, ix->hash) != 0) {
    if (ix->range != NULL && strcmp(k->hash_name, ix->range) == 0 && k->range_name != NULL &&
        strcmp(k->range_name, ix->hash) == 0 && strcmp(k->op, "=") == 0)
      return 0; /* both equalities, written the other way round: fixed by the caller */
    return bad(e, "Query condition missed key schema element: %s", ix->hash);
  }
  if (k->range_name != NULL && (ix->range == NULL || strcmp(k->range_name, ix->range) != 0))
    return bad(e, "Query condition missed key schema element: %s",
               ix->range != NULL ? ix->range : k->range_name);
  if (!key_type_ok(k->hash_value, ix->hash_type) ||
      (k->v1 != NULL && !key_type_ok(k->v1, ix->range_type)) ||
      (k->v2 != NULL && !key_type_ok(k->v2, ix->range_type)))
    return bad(e, "%s", "One or more parameter values were invalid: Condition parameter type does "
               "not match schema type");
  if (k->op != NULL && strcmp(k->op, "begins_with") == 0 && strcmp(ix->range_type, "N") == 0)
    return bad(e, "%s", "Invalid KeyConditionExpression: Incorrect operand type for operator or "
               "function; operator or function: begins_with, operand type: N");
  if (k->op != NULL && strcmp(k->op, "BETWEEN") == 0) {
    int c;
    if (kv__av_cmp(k->v1, k->v2, &c) && c > 0)
      return bad(e, "%s", "Invalid KeyConditionExpression: The BETWEEN operator requires upper "
                 "bound to be greater than or equal to lower bound");
  }
  return 0;
}

/* The smallest key greater than every key that starts with p. */
static void successor(buf *p)
{
  while (p->len > 0 && (uint8_t)p->data[p->len - 1] == 0xff)
    p->len--;
  if (p->len > 0)
    p->data[p->len - 1]++;
}

static bool in_segment(const qreq *q, const kv_index *base, const json_t *item, err *e)
{
  if (q->total == 0)
    return true;
  buf k;
  buf_init(&k, 1 << 16);
  kv__key_append_mode(&k, base->hash_type, json_object_get(item, base->hash), true, e);
  uint8_t d[32];
  sha256(k.data, k.len, d);
  buf_release(&k);
  uint32_t h = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
  return (long)(h % (uint32_t)q->total) == q->segment;
}

static int run(kv *k, qreq *q, json_t **out, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(k->env, &txn, e);
  if (rc != 0)
    return rc;
  kv_table t;
  rc = kv__table_open(k, txn, q->table, &t, e);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return rc;
  }
  const kv_index *ix = &t.base;
  if (q->index != NULL && (ix = kv__table_index(&t, q->index, e)) == NULL)
    rc = e->code;
  if (rc == 0 && q->index == NULL && q->select != NULL &&
      strcmp(q->select, "ALL_PROJECTED_ATTRIBUTES") == 0)
    rc = bad(e, "%s", "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName");
  if (rc == 0 && ix->global && q->select != NULL && strcmp(q->select, "ALL_ATTRIBUTES") == 0 &&
      strcmp(ix->projection, "ALL") != 0)
    rc = err_set(e, KV_ERR_VALIDATION, "One or more parameter values were invalid: Select type "
                 "ALL_ATTRIBUTES is not supported for global secondary index %s because its "
                 "projection type is not ALL", ix->name);
  if (rc == 0 && ix->global && q->consistent)
    rc = bad(e, "%s", "Consistent reads are not supported on global secondary indexes");
  if (rc == 0 && q->has_kc)
    rc = check_keycond(q, ix, e);
  if (rc == 0 && q->query && q->filter != NULL) {
    /* a Query's filter may not name the key attributes of what it reads */
    const char *keys[2] = {ix->hash, ix->range};
    for (int i = 0; i < 2 && rc == 0; i++)
      if (keys[i] != NULL && kv__names(q->filter, keys[i]))
        rc = bad(e, "Filter Expression can only contain non-primary key attributes: Primary key "
                 "attribute: %s", keys[i]);
  }
  if (rc == 0 && q->has_kc && strcmp(q->kc.hash_name, ix->hash) != 0) {
    /* pk written second: swap the two equalities */
    kx_keycond s = q->kc;
    q->kc.hash_name = s.range_name;
    q->kc.hash_value = s.v1;
    q->kc.range_name = s.hash_name;
    q->kc.v1 = s.hash_value;
  }
  buf lo, hi, at;
  buf_init(&lo, 1 << 16);
  buf_init(&hi, 1 << 16);
  buf_init(&at, 1 << 16);
  if (rc == 0) {
    kv__prefix(&t, ix->no, &lo);
    if (q->has_kc) {
      json_t *hk = json_pack("{sO}", ix->hash, q->kc.hash_value);
      rc = kv__key_append_mode(&lo, ix->hash_type, q->kc.hash_value, true, e);
      json_decref(hk);
    }
    buf_append(&hi, lo.data, lo.len);
    successor(&hi);
  }
  if (rc == 0 && q->esk != NULL) {
    bool has = false;
    rc = kv__item_check(q->esk, e);
    if (rc == 0)
      rc = kv__entry_key(&t, ix, q->esk, &at, &has, e);
    if (rc == 0 && (!has || json_object_size(q->esk) > 4))
      rc = err_set(e, KV_ERR_VALIDATION, "The provided starting key is invalid: The provided key "
                   "element does not match the schema");
    else if (rc != 0) {
      err_wrap(e, "The provided starting key is invalid");
      rc = e->code = KV_ERR_VALIDATION;
    }
    if (rc == 0 && q->has_kc &&
        (!kv__av_eq(json_object_get(q->esk, ix->hash), q->kc.hash_value) ||
         (ix->range != NULL &&
          !kv__keycond_match(&q->kc, json_object_get(q->esk, ix->range)))))
      rc = err_set(e, KV_ERR_VALIDATION, "The provided starting key is outside query boundaries "
                   "based on provided conditions");
  }
  json_t *items = json_array();
  json_t *lek = NULL;
  json_int_t count = 0, scanned = 0;
  size_t bytes = 0, charged = 0; /* encoded bytes (paging), item sizes (capacity) */
  bool count_only = q->select != NULL && strcmp(q->select, "COUNT") == 0;
  MDB_cursor *cur = NULL;
  if (rc == 0 && mdb_cursor_open(txn, k->items, &cur) != 0)
    rc = err_set(e, ERR_IO, "cannot open a cursor");
  if (rc == 0) {
    MDB_val key, val;
    int mrc;
    if (q->forward) {
      key = q->esk != NULL ? (MDB_val){at.len, at.data} : (MDB_val){lo.len, lo.data};
      mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
      if (mrc == 0 && q->esk != NULL && key.mv_size == at.len &&
          memcmp(key.mv_data, at.data, at.len) == 0)
        mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    } else {
      key = q->esk != NULL ? (MDB_val){at.len, at.data} : (MDB_val){hi.len, hi.data};
      mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
      mrc = mrc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_PREV)
                     : mdb_cursor_get(cur, &key, &val, MDB_LAST);
    }
    while (mrc == 0) {
      bool inside = key.mv_size >= lo.len && memcmp(key.mv_data, lo.data, lo.len) == 0;
      if (!inside)
        break;
      json_t *item = kv__item_decode(val.mv_data, val.mv_size);
      bool take = item != NULL;
      if (take && q->has_kc)
        take = kv__av_eq(json_object_get(item, ix->hash), q->kc.hash_value) &&
               kv__keycond_match(&q->kc, ix->range != NULL ? json_object_get(item, ix->range) : NULL);
      if (take)
        take = in_segment(q, &t.base, item, e);
      if (take) {
        scanned++;
        bytes += val.mv_size;
        charged += kv__item_size(item);
        bool pass = true;
        if (!ix->global && ix->no != 0 && strcmp(ix->projection, "ALL") != 0 &&
            (q->select == NULL || strcmp(q->select, "ALL_ATTRIBUTES") == 0 || q->proj != NULL)) {
          /* a local index fetches what it does not project from the table */
          json_t *full = NULL;
          json_t *bk = kv__item_key(&t, NULL, item);
          kv__item_read(k, txn, &t, bk, &full, e);
          json_decref(bk);
          if (full != NULL) {
            json_decref(item);
            item = full;
          }
        }
        if (q->filter != NULL)
          kv__eval_condition(q->filter, item, &pass, e);
        if (pass) {
          count++;
          if (!count_only)
            json_array_append_new(items, q->proj != NULL ? kv__project(q->proj, item)
                                                         : json_incref(item));
        }
        if ((q->limit > 0 && scanned == q->limit) || bytes >= KV_PAGE_BYTES) {
          lek = kv__item_key(&t, ix->no != 0 ? ix : NULL, item);
          json_decref(item);
          break;
        }
      }
      json_decref(item);
      mrc = mdb_cursor_get(cur, &key, &val, q->forward ? MDB_NEXT : MDB_PREV);
    }
    mdb_cursor_close(cur);
  }
  mdb_txn_abort(txn);
  buf_release(&lo);
  buf_release(&hi);
  buf_release(&at);
  json_t *capacity = NULL;
  if (rc == 0 && q->capacity_mode != NULL) {
    kv_capacity cap;
    kv__capacity_init(&cap, q->table, true);
    kv__capacity_read(&cap, ix, charged, q->consistent);
    capacity = kv__capacity_json(&cap, q->capacity_mode, 1);
    kv__capacity_release(&cap);
  }
  kv__table_release(&t);
  if (rc != 0) {
    json_decref(items);
    json_decref(lek);
    return rc;
  }
  json_t *res = json_pack("{sIsI}", "Count", count, "ScannedCount", scanned);
  if (!count_only)
    json_object_set_new(res, "Items", items);
  else
    json_decref(items);
  if (lek != NULL)
    json_object_set_new(res, "LastEvaluatedKey", lek);
  if (capacity != NULL)
    json_object_set_new(res, "ConsumedCapacity", capacity);
  *out = res;
  return 0;
}

static int query_or_scan(kv *k, json_t *in, bool query, json_t **out, err *e)
{
  arena *a = arena_new();
  qreq q;
  int rc = parse(&q, in, query, a, e);
  if (rc == 0)
    rc = run(k, &q, out, e);
  kv__ctx_release(&q.cx);
  arena_free(a);
  return rc;
}

int kv__query(kv *k, json_t *in, json_t **out, err *e)
{
  return query_or_scan(k, in, true, out, e);
}

int kv__scan(kv *k, json_t *in, json_t **out, err *e)
{
  return query_or_scan(k, in, false, out, e);
}
