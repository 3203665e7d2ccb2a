/* kv/batch.c -- BatchGetItem, BatchWriteItem, TransactWriteItems and
 * TransactGetItems.
 *
 * Why: a batch is many item requests in one call; a transaction is many
 * that succeed or fail together. Both reuse item.c's write requests: a
 * batch's entries become PutItem/DeleteItem requests, a transaction's
 * entries Put/Update/Delete/ConditionCheck requests, applied in one
 * closure on the committer (one write transaction).
 *
 * Invariants:
 *   (1) A batch or transaction is checked whole before anything is
 *       written: a bad entry fails the call and changes nothing.
 *   (2) A transaction first checks every condition without writing; if any
 *       fails, it is cancelled with one reason per entry and nothing is
 *       written. Then every entry applies in the same write transaction.
 *   (3) A ClientRequestToken seen in the last 10 minutes with the same
 *       request is answered again without applying; with a different
 *       request it is an IdempotentParameterMismatchException.
 *   (4) Every entry of BatchWriteItem is applied: UnprocessedItems is
 *       always empty (nothing here throttles); BatchGetItem moves the keys
 *       past 16 MB of response into UnprocessedKeys.
 *
 * Start reading at kv__transact_write().
 */
#include "internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_GET_MAX 100
#define BATCH_WRITE_MAX 25
#define TRANSACT_MAX 100
#define TRANSACT_BYTES (4u << 20)  /* the aggregate size of a transaction's items */
#define BATCH_GET_BYTES (16u << 20)
#define TOKEN_TTL_MS (10 * 60 * 1000)

static int too_few(err *e, const char *what)
{
  return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '{}' at '%s' failed "
                 "to satisfy constraint: Member must have length greater than or equal to 1",
                 what);
}

/* RequestItems: a non-empty object whose every entry has a non-empty list
 * (the entry's member, or the entry itself when member is NULL; what names
 * it in the error), at most max entries in all (call names the call). */
static int request_items(json_t *in, const char *member, const char *what, size_t max,
                         const char *call, json_t **req, size_t *total, err *e)
{
  *req = json_object_get(in, "RequestItems");
  if (!json_is_object(*req) || json_object_size(*req) == 0)
    return too_few(e, "requestItems");
  *total = 0;
  const char *tname;
  json_t *spec;
  json_object_foreach(*req, tname, spec) {
    json_t *list = member != NULL ? json_object_get(spec, member) : spec;
    if (!json_is_array(list) || json_array_size(list) == 0)
      return too_few(e, what);
    *total += json_array_size(list);
  }
  if (*total > max)
    return err_set(e, KV_ERR_VALIDATION, "Too many items requested for the %s call", call);
  return 0;
}

/* TransactItems: 1 to TRANSACT_MAX entries. */
static int transact_items(json_t *in, json_t **items, err *e)
{
  *items = json_object_get(in, "TransactItems");
  if (!json_is_array(*items) || json_array_size(*items) == 0)
    return too_few(e, "transactItems");
  if (json_array_size(*items) > TRANSACT_MAX)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '[...]' at "
                   "'transactItems' failed to satisfy constraint: Member must have length less "
                   "than or equal to 100");
  return 0;
}

/* A read's expression context and its ProjectionExpression (*pn stays
 * NULL without one); cx is to be released whatever this returns. */
static int projection_begin(kx_ctx *cx, json_t *spec, arena *a, kx_node **pn, err *e)
{
  const char *proj = kv__in_str(spec, "ProjectionExpression");
  int rc = kv__expr_begin(cx, spec, a, proj != NULL, e);
  if (rc == 0 && proj != NULL)
    rc = kv__parse_projection(cx, proj, pn, e);
  if (rc == 0)
    rc = kv__ctx_check_unused(cx, e);
  return rc;
}

/* Same-key detection within one call: "table\0encoded key". */
static bool seen_key(json_t *seen, const char *table, json_t *key)
{
  char *k = json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS);
  char *id = xmalloc(strlen(table) + strlen(k) + 2);
  sprintf(id, "%s/%s", table, k);
  bool dup = json_object_get(seen, id) != NULL;
  json_object_set_new(seen, id, json_true());
  free(id);
  free(k);
  return dup;
}

/* ReturnConsumedCapacity for many requests: one kv_capacity per table,
 * each request charging its table's. */
typedef struct many_caps {
  const char *mode;          /* NULL: none asked */
  kv_capacity *c;
  size_t n;
} many_caps;

/* The kv_capacity of table in mc (room: the most tables mc will see). */
static kv_capacity *caps_for(many_caps *mc, const char *table, bool read, size_t room)
{
  if (mc->c == NULL)
    mc->c = xcalloc(room ? room : 1, sizeof *mc->c);
  size_t j = 0;
  while (j < mc->n && strcmp(mc->c[j].table, table) != 0)
    j++;
  if (j == mc->n)
    kv__capacity_init(&mc->c[mc->n++], table, read);
  return &mc->c[j];
}

/* Sets out's ConsumedCapacity (a list, one per table) and releases mc. */
static void many_caps_finish(many_caps *mc, json_t *out, double factor)
{
  if (mc->mode == NULL)
    return;
  json_t *list = json_array();
  for (size_t i = 0; i < mc->n; i++) {
    if (out != NULL)
      json_array_append_new(list, kv__capacity_json(&mc->c[i], mc->mode, factor));
    kv__capacity_release(&mc->c[i]);
  }
  if (out != NULL)
    json_object_set(out, "ConsumedCapacity", list);
  json_decref(list);
  free(mc->c);
}

/* ---- BatchGetItem ---- */

int kv__batch_get(kv *k, json_t *in, json_t **out, err *e)
{
  json_t *req;
  size_t total;
  int rc = request_items(in, "Keys", "requestItems.keys", BATCH_GET_MAX, "BatchGetItem", &req,
                         &total, e);
  if (rc != 0)
    return rc;
  const char *tname;
  json_t *spec;
  MDB_txn *txn;
  rc = lmdb_read_begin(k->env, &txn, e);
  if (rc != 0)
    return rc;
  arena *a = arena_new();
  json_t *responses = json_object();
  json_t *unprocessed = json_object();
  json_t *seen = json_object();
  size_t bytes = 0;
  many_caps mc = {0};
  rc = kv__capacity_mode(in, &mc.mode, e);
  json_object_foreach(req, tname, spec) {
    if (rc != 0)
      break;
    json_t *tin = json_pack("{ss}", "TableName", tname);
    const char *name;
    rc = kv__need_table_name(tin, &name, e);
    json_decref(tin);
    if (rc != 0)
      break;
    kv_table t;
    if ((rc = kv__table_open(k, txn, tname, &t, e)) != 0)
      break;
    kx_ctx cx;
    kx_node *pn = NULL;
    rc = projection_begin(&cx, spec, a, &pn, e);
    json_t *list = json_array();
    size_t i;
    json_t *key;
    json_array_foreach(json_object_get(spec, "Keys"), i, key) {
      if (rc != 0)
        break;
      if ((rc = kv__key_check(&t, key, e)) != 0)
        break;
      if (seen_key(seen, tname, key)) {
        rc = err_set(e, KV_ERR_VALIDATION, "Provided list of item keys contains duplicates");
        break;
      }
      if (bytes >= BATCH_GET_BYTES) {
        json_t *u = json_object_get(unprocessed, tname);
        if (u == NULL) {
          u = json_deep_copy(spec);
          json_object_set_new(u, "Keys", json_array());
          json_object_set_new(unprocessed, tname, u);
        }
        json_array_append(json_object_get(u, "Keys"), key);
        continue;
      }
      json_t *item = NULL;
      rc = kv__item_read(k, txn, &t, key, &item, e);
      if (mc.mode != NULL)
        kv__capacity_read(caps_for(&mc, tname, true, json_object_size(req)), NULL,
                         item != NULL ? kv__item_size(item) : 0,
                         json_is_true(json_object_get(spec, "ConsistentRead")));
      if (item != NULL) {
        bytes += kv__item_size(item);
        json_array_append_new(list, pn != NULL ? kv__project(pn, item) : json_incref(item));
        json_decref(item);
      }
    }
    json_object_set_new(responses, tname, list);
    kv__ctx_release(&cx);
    kv__table_release(&t);
    if (rc != 0)
      break;
  }
  mdb_txn_abort(txn);
  json_decref(seen);
  arena_free(a);
  if (rc != 0) {
    many_caps_finish(&mc, NULL, 1);
    json_decref(responses);
    json_decref(unprocessed);
    return rc;
  }
  *out = json_pack("{soso}", "Responses", responses, "UnprocessedKeys", unprocessed);
  many_caps_finish(&mc, *out, 1);
  return 0;
}

/* ---- the write side: many requests, one closure ---- */

typedef struct many {
  kv_write_req *reqs;
  size_t n;
  bool transact;
  const char *token;
  uint8_t digest[32];
  bool replay;               /* the token was seen with this request */
  json_t *reasons;           /* a cancelled transaction's reasons */
} many;

static int token_check(kv *k, many *m, MDB_txn *txn, err *e)
{
  if (m->token == NULL)
    return 0;
  MDB_val key = {strlen(m->token), (void *)m->token}, val;
  int64_t now = time_now_ms();
  if (mdb_get(txn, k->tokens, &key, &val) == 0 && val.mv_size == 40) {
    const uint8_t *p = val.mv_data;
    int64_t exp = 0;
    for (int i = 0; i < 8; i++)
      exp = exp << 8 | p[i];
    if (exp > now) {
      if (memcmp(p + 8, m->digest, 32) != 0)
        return err_set(e, KV_ERR_IDEMPOTENT, "The request uses the same client token as a "
                       "previous, but non-identical request.");
      m->replay = true;
    }
  }
  return 0;
}

static int token_store(kv *k, many *m, MDB_txn *txn, err *e)
{
  if (m->token == NULL)
    return 0;
  uint8_t v[40];
  int64_t exp = time_now_ms() + TOKEN_TTL_MS;
  for (int i = 0; i < 8; i++)
    v[i] = (uint8_t)((uint64_t)exp >> (56 - 8 * i));
  memcpy(v + 8, m->digest, 32);
  MDB_val key = {strlen(m->token), (void *)m->token}, val = {40, v};
  int mrc = mdb_put(txn, k->tokens, &key, &val, 0);
  return mrc == 0 ? 0 : lmdb_error(e, mrc, "record a client request token");
}

static int many_apply(kv *k, void *arg, MDB_txn *txn, arena *a, err *e)
{
  many *m = arg;
  int rc = token_check(k, m, txn, e);
  if (rc != 0 || m->replay)
    return rc;
  if (m->transact) {
    /* (2): every condition first */
    bool failed = false;
    json_t *reasons = json_array();
    for (size_t i = 0; i < m->n; i++) {
      kv_write_req *w = &m->reqs[i];
      w->check_only = true;
      err ee = {0};
      int r = kv__write_req_apply(k, w, txn, &ee);
      w->check_only = false;
      if (r == KV_ERR_CONDITION) {
        failed = true;
        json_t *reason = json_pack("{ssss}", "Code", "ConditionalCheckFailed", "Message",
                                   "The conditional request failed");
        if (w->fail_item != NULL)
          json_object_set(reason, "Item", w->fail_item);
        json_array_append_new(reasons, reason);
      } else if (r == KV_ERR_VALIDATION) {
        /* found while applying (an item grown past 400 KB, an index key of
           the wrong type): the transaction is cancelled with the reason */
        failed = true;
        json_array_append_new(reasons, json_pack("{ssss}", "Code", "ValidationError", "Message",
                                                 ee.msg));
      } else if (r != 0) {
        json_decref(reasons);
        *e = ee;
        return r;
      } else {
        json_array_append_new(reasons, json_pack("{ss}", "Code", "None"));
      }
      json_decref(w->result);
      w->result = NULL;
    }
    if (failed) {
      m->reasons = reasons;
      char list[1024] = "";
      size_t l = 0;
      size_t i;
      json_t *r;
      json_array_foreach(reasons, i, r) l += (size_t)snprintf(list + l, l < sizeof list ?
                                                              sizeof list - l : 0, "%s%s",
                                                              i ? ", " : "", kv__in_str(r, "Code"));
      return err_set(e, KV_ERR_TX_CANCELED, "Transaction cancelled, please refer cancellation "
                     "reasons for specific reasons [%s]", list);
    }
    json_decref(reasons);
  }
  for (size_t i = 0; i < m->n && rc == 0; i++)
    rc = kv__write_req_apply(k, &m->reqs[i], txn, e);
  if (rc == 0)
    rc = token_store(k, m, txn, e);
  return rc;
}

/* Room for total requests; returns their inputs' array (many_release). */
static json_t **many_init(many *m, size_t total)
{
  m->reqs = xcalloc(total, sizeof *m->reqs);
  return xcalloc(total, sizeof(json_t *));
}

static void many_release(many *m, json_t **ins)
{
  for (size_t i = 0; i < m->n; i++) {
    kv__write_req_release(&m->reqs[i]);
    json_decref(ins[i]);
  }
  free(m->reqs);
  free(ins);
  json_decref(m->reasons);
}

static void many_caps_attach(many_caps *mc, many *m)
{
  for (size_t i = 0; mc->mode != NULL && i < m->n; i++)
    m->reqs[i].cap = caps_for(mc, m->reqs[i].table, false, m->n);
}

/* (1): no two requests of m name one item (message: the error's). */
static int distinct(kv *k, many *m, const char *message, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(k->env, &txn, e);
  if (rc != 0)
    return rc;
  json_t *seen = json_object();
  for (size_t i = 0; i < m->n && rc == 0; i++) {
    kv_table t;
    rc = kv__table_open(k, txn, m->reqs[i].table, &t, e);
    if (rc != 0)
      break;
    json_t *key = m->reqs[i].item != NULL ? kv__item_key(&t, NULL, m->reqs[i].item)
                                          : json_incref(m->reqs[i].key);
    if (m->reqs[i].item == NULL)
      rc = kv__key_check(&t, key, e);
    if (rc == 0 && seen_key(seen, m->reqs[i].table, key))
      rc = err_set(e, KV_ERR_VALIDATION, "%s", message);
    json_decref(key);
    kv__table_release(&t);
  }
  json_decref(seen);
  mdb_txn_abort(txn);
  return rc;
}

/* (1) then the closure: the parsed requests of m, distinct (message: the
 * error's otherwise), applied in one write transaction. */
static int many_run(kv *k, many *m, const char *message, err *e)
{
  int rc = distinct(k, m, message, e);
  if (rc == 0)
    rc = kv__write(k, many_apply, m, e);
  return rc;
}

int kv__batch_write(kv *k, json_t *in, json_t **out, err *e)
{
  json_t *req;
  size_t total;
  int rc = request_items(in, NULL, "requestItems", BATCH_WRITE_MAX, "BatchWriteItem", &req,
                         &total, e);
  if (rc != 0)
    return rc;
  const char *tname;
  json_t *list;
  arena *a = arena_new();
  many m = {0};
  json_t **ins = many_init(&m, total);
  json_object_foreach(req, tname, list) {
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) {
      if (rc != 0)
        break;
      json_t *put = json_object_get(json_object_get(x, "PutRequest"), "Item");
      json_t *del = json_object_get(json_object_get(x, "DeleteRequest"), "Key");
      if ((put == NULL) == (del == NULL)) {
        rc = err_set(e, KV_ERR_VALIDATION, "Supplied AttributeValue has more than one datatypes "
                     "set, must contain exactly one of the supported datatypes");
        break;
      }
      ins[m.n] = json_pack("{sssO}", "TableName", tname, put != NULL ? "Item" : "Key",
                           put != NULL ? put : del);
      rc = kv__write_req_parse(&m.reqs[m.n], put != NULL ? "Put" : "Delete", ins[m.n], a, e);
      m.n++;
    }
    if (rc != 0)
      break;
  }
  many_caps mc = {0};
  if (rc == 0)
    rc = kv__capacity_mode(in, &mc.mode, e);
  if (rc == 0)
    many_caps_attach(&mc, &m);
  /* duplicates: keys are known only with the table's schema */
  if (rc == 0)
    rc = many_run(k, &m, "Provided list of item keys contains duplicates", e);
  if (rc == 0)
    *out = json_pack("{so}", "UnprocessedItems", json_object());
  many_caps_finish(&mc, rc == 0 ? *out : NULL, 1);
  many_release(&m, ins);
  arena_free(a);
  return rc;
}

int kv__transact_write(kv *k, json_t *in, json_t **out, err *e)
{
  json_t *items;
  int rc = transact_items(in, &items, e);
  if (rc != 0)
    return rc;
  size_t total = json_array_size(items);
  arena *a = arena_new();
  many m = {0};
  m.transact = true;
  m.token = kv__in_str(in, "ClientRequestToken");
  char *body = json_dumps(items, JSON_COMPACT | JSON_SORT_KEYS);
  sha256(body, strlen(body), m.digest);
  free(body);
  json_t **ins = many_init(&m, total);
  static const char *const kinds[] = {"ConditionCheck", "Put", "Delete", "Update"};
  size_t i;
  json_t *x;
  json_array_foreach(items, i, x) {
    const char *kind = NULL;
    json_t *op = NULL;
    for (int j = 0; j < 4; j++) {
      json_t *o = json_object_get(x, kinds[j]);
      if (o != NULL && op != NULL) {
        op = NULL;
        kind = NULL;
        break;
      }
      if (o != NULL) {
        op = o;
        kind = kinds[j];
      }
    }
    if (op == NULL) {
      rc = err_set(e, KV_ERR_VALIDATION, "TransactItems can only contain one of Check, Put, "
                   "Update or Delete");
      break;
    }
    ins[m.n] = json_incref(op);
    rc = kv__write_req_parse(&m.reqs[m.n], kind, op, a, e);
    m.n++;
    if (rc != 0)
      break;
  }
  size_t aggregate = 0; /* Put items whole, the others by their key */
  for (size_t j = 0; rc == 0 && j < m.n; j++)
    aggregate += kv__item_size(m.reqs[j].item != NULL ? m.reqs[j].item : m.reqs[j].key);
  if (rc == 0 && aggregate > TRANSACT_BYTES)
    rc = err_set(e, KV_ERR_VALIDATION, "Transaction request is too large: the aggregate size of "
                 "the items in the transaction cannot exceed 4 MB");
  many_caps mc = {0};
  if (rc == 0)
    rc = kv__capacity_mode(in, &mc.mode, e);
  if (rc == 0)
    many_caps_attach(&mc, &m);
  if (rc == 0)
    rc = many_run(k, &m, "Transaction request cannot include multiple operations on one item",
                  e);
  if (rc == 0)
    *out = json_object();
  else if (rc == KV_ERR_TX_CANCELED && m.reasons != NULL)
    *out = json_pack("{sO}", "CancellationReasons", m.reasons);
  many_caps_finish(&mc, rc == 0 ? *out : NULL, 2);
  many_release(&m, ins);
  arena_free(a);
  return rc;
}

int kv__transact_get(kv *k, json_t *in, json_t **out, err *e)
{
  json_t *items;
  int rc = transact_items(in, &items, e);
  if (rc != 0)
    return rc;
  MDB_txn *txn;
  rc = lmdb_read_begin(k->env, &txn, e);
  if (rc != 0)
    return rc;
  arena *a = arena_new();
  json_t *res = json_array();
  many_caps mc = {0};
  rc = kv__capacity_mode(in, &mc.mode, e);
  size_t i;
  json_t *x;
  json_array_foreach(items, i, x) {
    if (rc != 0)
      break;
    json_t *get = json_object_get(x, "Get");
    const char *name;
    if (get == NULL) {
      rc = err_set(e, KV_ERR_VALIDATION, "TransactGetItems can only contain Get");
      break;
    }
    if ((rc = kv__need_table_name(get, &name, e)) != 0)
      break;
    kv_table t;
    if ((rc = kv__table_open(k, txn, name, &t, e)) != 0)
      break;
    kx_ctx cx;
    kx_node *pn = NULL;
    rc = projection_begin(&cx, get, a, &pn, e);
    json_t *key = json_object_get(get, "Key");
    if (rc == 0)
      rc = kv__key_check(&t, key, e);
    json_t *item = NULL;
    if (rc == 0)
      rc = kv__item_read(k, txn, &t, key, &item, e);
    if (rc == 0 && mc.mode != NULL)
      kv__capacity_read(caps_for(&mc, name, true, json_array_size(items)), NULL,
                       item != NULL ? kv__item_size(item) : 0, true);
    json_t *r = json_object();
    if (item != NULL)
      json_object_set_new(r, "Item", pn != NULL ? kv__project(pn, item) : json_incref(item));
    json_array_append_new(res, r);
    json_decref(item);
    kv__ctx_release(&cx);
    kv__table_release(&t);
    if (rc != 0)
      break;
  }
  mdb_txn_abort(txn);
  arena_free(a);
  if (rc != 0) {
    many_caps_finish(&mc, NULL, 2);
    json_decref(res);
    return rc;
  }
  *out = json_pack("{so}", "Responses", res);
  many_caps_finish(&mc, *out, 2);
  return 0;
}
