/* kv/internal.h -- what the files of the kv part share.
 *
 *   num.c     exact decimals: parse, format, compare, add, key encoding
 *   value.c   AttributeValues: checking and normalising input, the storage
 *             codec of an item, key encoding, comparison, item size
 *   expr.c    the expression language: condition, update, projection and
 *             key-condition expressions, parsed and evaluated
 *   system.c  the LMDB environment, the committer, table records
 *   table.c   the table operations
 *   item.c    PutItem, GetItem, UpdateItem, DeleteItem and the one write
 *             path that keeps indexes and streams in the same transaction
 *   query.c   Query and Scan
 *   batch.c   BatchGetItem, BatchWriteItem, TransactWriteItems, TransactGetItems
 *   stream.c  the DynamoDB Streams API over the "streams" database
 *   ttl.c     the time-to-live sweeper
 *   partiql.c ExecuteStatement and BatchExecuteStatement (PartiQL)
 *   legacy.c  the legacy parameters (Expected, KeyConditions, ...) rewritten
 *
 * LMDB layout (DATA/kv):
 *   "tables"  table name -> the table's description (JSON text, DescribeTable's
 *             shape plus TarnId and per-index TarnIndex numbers)
 *   "items"   [table id u32 BE][index u8: 0 base][hash key][range key]
 *             [base primary key, in index entries] -> encoded item (index
 *             entries hold the projected item)
 *   "meta"    "next_table" -> u32 BE
 *   "tokens"  ClientRequestToken -> [expiry ms u64][request digest]
 *   "streams" [table id u32 BE][sequence u64 BE] -> a stream record (JSON)
 */
#ifndef TARN_KV_INTERNAL_H
#define TARN_KV_INTERNAL_H

#include "kv/kv.h"

#include "base/arena.h"
#include "base/buf.h"
#include "base/lmdb_env.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_NUM_DIGITS 38
#define KV_NUM_TEXT 64
#define KV_NUM_KEY (KV_NUM_DIGITS + 3)
#define KV_ITEM_MAX (400 * 1024)        /* bytes of an item */
#define KV_HASH_KEY_MAX 2048            /* bytes of a partition key value */
#define KV_RANGE_KEY_MAX 1024           /* bytes of a sort key value */
#define KV_KEY_MAX 4096                 /* an encoded LMDB key (below LMDB's 511? see system.c) */
#define KV_PAGE_BYTES (1024 * 1024)     /* Query/Scan page */
#define KV_EXPR_MAX 4096                /* bytes of one expression */
#define KV_DEPTH_MAX 32                 /* nesting of L and M */
#define KV_TABLES_MAX 2500
#define KV_GSI_MAX 20
#define KV_LSI_MAX 5

/* ---- num.c ---- */
typedef struct kv_num {
  bool neg;                  /* sign; false for zero */
  int exp;                   /* value = 0.d x 10^exp */
  int nd;                    /* digits used; 0 is zero */
  uint8_t d[KV_NUM_DIGITS];  /* 0..9, d[0] and d[nd-1] nonzero */
} kv_num;

int kv__num_parse(const char *s, kv_num *out, err *e);
void kv__num_format(const kv_num *n, char out[KV_NUM_TEXT]);
int kv__num_cmp(const kv_num *a, const kv_num *b);
int kv__num_add(const kv_num *a, const kv_num *b, bool subtract, kv_num *out, err *e);
size_t kv__num_key(const kv_num *n, uint8_t out[KV_NUM_KEY]);

/* ---- value.c ---- */
/* The type of an AttributeValue ("S", "N", ...), or NULL when av is not one. */
const char *kv__av_type(const json_t *av);
/* Checks an AttributeValue from a client and normalises it in place (numbers
 * to their canonical text). what names it in messages. */
int kv__av_check(json_t *av, int depth, err *e);
/* Checks every attribute of an item map. */
int kv__item_check(json_t *item, err *e);
/* Deep equality (sets as sets). */
bool kv__av_eq(const json_t *a, const json_t *b);
/* Orders two S, N or B values; false when they are not of one such type. */
bool kv__av_cmp(const json_t *a, const json_t *b, int *out);
/* Whether name[0..len) is one of DynamoDB's reserved words (any case). */
bool kv__reserved_word(const char *name, size_t len);

/* The size AWS charges for an item (names plus values). */
size_t kv__item_size(const json_t *item);
/* The storage codec of an item (a map of AttributeValues). */
int kv__item_encode(const json_t *item, buf *out);
json_t *kv__item_decode(const void *p, size_t n);
/* Appends the order-preserving, prefix-free encoding of a key value of
 * type t ("S", "N", "B") to out. */
int kv__key_append(buf *out, const char *t, const json_t *av, err *e);
/* The same; partition keys (partition == true) may be replaced by a digest. */
int kv__key_append_mode(buf *out, const char *t, const json_t *av, bool partition, err *e);
/* A number AttributeValue from a kv_num. */
json_t *kv__av_num(const kv_num *n);
/* The bytes of a B value (decoded), in a; -1 on bad base64. */
long kv__av_bytes(const json_t *av, arena *a, uint8_t **out);

/* ---- expr.c ---- */
typedef struct kx_node kx_node;
typedef struct kx_ctx {
  arena *a;
  json_t *names;             /* ExpressionAttributeNames or NULL */
  json_t *values;            /* ExpressionAttributeValues or NULL */
  json_t *used_names;        /* set of placeholders used (object) */
  json_t *used_values;
} kx_ctx;

void kv__ctx_init(kx_ctx *c, arena *a, json_t *names, json_t *values);
void kv__ctx_release(kx_ctx *c);
/* After every expression of a request was parsed: unused placeholders are
 * AWS errors. */
int kv__ctx_check_unused(kx_ctx *c, err *e);
/* Parse one expression; what is "ConditionExpression", "UpdateExpression", ... */
int kv__parse_condition(kx_ctx *c, const char *text, const char *what, kx_node **out, err *e);
int kv__parse_update(kx_ctx *c, const char *text, kx_node **out, err *e);
int kv__parse_projection(kx_ctx *c, const char *text, kx_node **out, err *e);
/* Evaluates a condition over item (NULL: no item). */
int kv__eval_condition(const kx_node *n, const json_t *item, bool *out, err *e);
/* Applies an update to a copy of item: *out is the new item; touched (an
 * object) gets the top-level names the update wrote or removed. */
int kv__apply_update(const kx_node *n, const json_t *item, json_t **out, json_t *touched,
                    err *e);
/* The projection of item. */
json_t *kv__project(const kx_node *n, const json_t *item);
/* True when a path of n starts at the top-level attribute name. */
bool kv__names(const kx_node *n, const char *name);
/* The top-level attribute names of an update's paths (for key checks). */
void kv__update_names(const kx_node *n, json_t *names);
/* A key condition: the partition key's name and value, and optionally a
 * condition on the sort key (op: "=", "<", "<=", ">", ">=", "BETWEEN",
 * "begins_with"). */
typedef struct kx_keycond {
  const char *hash_name;
  json_t *hash_value;
  const char *range_name;    /* NULL: none */
  const char *op;
  json_t *v1, *v2;
} kx_keycond;
int kv__parse_keycond(kx_ctx *c, const char *text, kx_keycond *out, err *e);
/* True when a sort-key value v satisfies the condition. */
bool kv__keycond_match(const kx_keycond *k, const json_t *v);

/* ---- system.c ---- */
typedef struct kv_change kv_change;
typedef int (*kv_apply_fn)(kv *k, void *arg, MDB_txn *txn, arena *a, err *e);

struct kv {
  MDB_env *env;
  MDB_dbi tables, items, meta, tokens, streams;
  lmdb_committer committer;
  pthread_t ttl_thread;      /* the time-to-live sweeper (ttl.c) */
  pthread_mutex_t ttl_mu;    /* guards ttl_stop */
  pthread_cond_t ttl_cv;     /* wakes the sweeper to stop */
  bool ttl_stop;
  bool ttl_running;
  json_t *ttl_resume;        /* the sweeper's: table -> the key to go on from */
};

/* ttl.c: the sweeper thread */
int kv__ttl_start(kv *k, err *e);
void kv__ttl_stop(kv *k);

/* Runs fn on the committer thread inside the batch's write transaction;
 * returns once it committed (or failed and was rolled back). */
int kv__write(kv *k, kv_apply_fn fn, void *arg, err *e);
/* The description of table name (ERR via KV_ERR_NO_TABLE). */
int kv__table_load(kv *k, MDB_txn *txn, const char *name, json_t **out, err *e);
int kv__table_store(kv *k, MDB_txn *txn, const char *name, json_t *desc, err *e);

/* ---- item.c: one table's shape, resolved from its description ---- */
typedef struct kv_index {
  const char *name;          /* NULL for the base table */
  uint8_t no;                /* LMDB key byte; 0 base */
  bool global;
  const char *hash, *hash_type;
  const char *range, *range_type;  /* NULL: no sort key */
  const char *projection;    /* "ALL", "KEYS_ONLY", "INCLUDE" */
  json_t *include;           /* NonKeyAttributes (borrowed) */
} kv_index;

typedef struct kv_table {
  json_t *desc;              /* owned */
  const char *name;
  uint32_t id;
  kv_index base;
  kv_index idx[KV_GSI_MAX + KV_LSI_MAX];
  size_t nidx;
  const char *stream_view;   /* NULL: no stream */
} kv_table;

int kv__table_open(kv *k, MDB_txn *txn, const char *name, kv_table *t, err *e);
/* The same from a description (t takes a reference to desc). */
int kv__table_from_desc(json_t *desc, kv_table *t, err *e);
/* Fills index no of t from the table's items (UpdateTable's Create). */
int kv__index_fill(kv *k, MDB_txn *txn, const kv_table *t, uint8_t no, err *e);
void kv__table_release(kv_table *t);
/* The index of t named name, or NULL (sets e). */
const kv_index *kv__table_index(const kv_table *t, const char *name, err *e);
/* Checks that key holds exactly t's key attributes with their types. */
int kv__key_check(const kv_table *t, json_t *key, err *e);
/* The LMDB key of an item in index ix (for the base table: its key). false
 * when the item has no entry there (a sparse index). */
int kv__entry_key(const kv_table *t, const kv_index *ix, const json_t *item, buf *out, bool *has,
                 err *e);
/* The primary key attributes of item (and those of ix). */
json_t *kv__item_key(const kv_table *t, const kv_index *ix, const json_t *item);
/* Reads the item with key (a map of key attributes); *out NULL when none. */
int kv__item_read(kv *k, MDB_txn *txn, const kv_table *t, const json_t *key, json_t **out,
                 err *e);
/* The one write path: replaces old by new (either may be NULL) in the
 * table and every index, and appends the stream record, in txn. */
int kv__item_write(kv *k, MDB_txn *txn, const kv_table *t, const json_t *old, const json_t *nw,
                  bool by_service, err *e);
/* Key prefix of a table's index: [id][no]. */
void kv__prefix(const kv_table *t, uint8_t no, buf *out);

/* ops, by file */
int kv__create_table(kv *k, json_t *in, json_t **out, err *e);
int kv__describe_table(kv *k, json_t *in, json_t **out, err *e);
int kv__list_tables(kv *k, json_t *in, json_t **out, err *e);
int kv__update_table(kv *k, json_t *in, json_t **out, err *e);
int kv__delete_table(kv *k, json_t *in, json_t **out, err *e);
int kv__update_ttl(kv *k, json_t *in, json_t **out, err *e);
int kv__describe_ttl(kv *k, json_t *in, json_t **out, err *e);
int kv__tag_resource(kv *k, json_t *in, json_t **out, err *e);
int kv__untag_resource(kv *k, json_t *in, json_t **out, err *e);
int kv__list_tags(kv *k, json_t *in, json_t **out, err *e);
int kv__put_item(kv *k, json_t *in, json_t **out, err *e);
int kv__get_item(kv *k, json_t *in, json_t **out, err *e);
int kv__update_item(kv *k, json_t *in, json_t **out, err *e);
int kv__delete_item(kv *k, json_t *in, json_t **out, err *e);
int kv__query(kv *k, json_t *in, json_t **out, err *e);
int kv__scan(kv *k, json_t *in, json_t **out, err *e);
int kv__batch_get(kv *k, json_t *in, json_t **out, err *e);
int kv__batch_write(kv *k, json_t *in, json_t **out, err *e);
int kv__transact_write(kv *k, json_t *in, json_t **out, err *e);
int kv__transact_get(kv *k, json_t *in, json_t **out, err *e);
int kv__describe_limits(kv *k, json_t *in, json_t **out, err *e);
int kv__describe_endpoints(kv *k, json_t *in, json_t **out, err *e);
int kv__describe_backups(kv *k, json_t *in, json_t **out, err *e);
int kv__execute_statement(kv *k, json_t *in, json_t **out, err *e);
int kv__batch_execute_statement(kv *k, json_t *in, json_t **out, err *e);
int kv__list_streams(kv *k, json_t *in, json_t **out, err *e);
int kv__describe_stream(kv *k, json_t *in, json_t **out, err *e);
int kv__get_shard_iterator(kv *k, json_t *in, json_t **out, err *e);
int kv__get_records(kv *k, json_t *in, json_t **out, err *e);

/* Shared by item.c and batch.c: one write request, parsed and checked. */
typedef struct kv_write_req {
  const char *kind;          /* "Put", "Delete", "Update", "ConditionCheck" */
  json_t *in;                /* borrowed request object */
  const char *table;
  json_t *item;              /* Put: the new item (normalised) */
  json_t *key;               /* others: the key */
  kx_ctx cx;
  kx_node *cond, *update;
  const char *return_values;
  bool return_old_on_fail;   /* ReturnValuesOnConditionCheckFailure ALL_OLD */
  json_t *result;            /* ReturnValues' Attributes, after apply */
  json_t *fail_item;         /* the item when the condition failed */
  bool check_only;           /* check the condition, write nothing */
  struct kv_capacity *cap;   /* optional: charged with the write */
} kv_write_req;

/* ---- ReturnConsumedCapacity (capacity.c) ---- */

typedef struct kv_capacity {
  char *table;               /* owned */
  bool read;                 /* read units, else write units */
  double table_units;
  json_t *gsi, *lsi;         /* index name -> units (owned) */
} kv_capacity;

/* The request's ReturnConsumedCapacity: NULL for none (absent or NONE),
 * "TOTAL" or "INDEXES"; another value is a ValidationException. */
int kv__capacity_mode(json_t *in, const char **mode, err *e);
void kv__capacity_init(kv_capacity *c, const char *table, bool read);
void kv__capacity_release(kv_capacity *c);
/* Charges a write of old -> nw (either may be NULL) to the table and the
 * indexes whose entries it changes. */
void kv__capacity_write(kv_capacity *c, const kv_table *t, const json_t *old, const json_t *nw);
/* Charges a read of bytes (summed item sizes) to ix (NULL: the table). */
void kv__capacity_read(kv_capacity *c, const kv_index *ix, size_t bytes, bool consistent);
/* The ConsumedCapacity object for mode, every figure times factor (2 for
 * transactions). */
json_t *kv__capacity_json(const kv_capacity *c, const char *mode, double factor);
/* The projected entry an item has in ix, or NULL when it has none. */
json_t *kv__index_entry(const kv_table *t, const kv_index *ix, const json_t *item);

int kv__write_req_parse(kv_write_req *w, const char *kind, json_t *in, arena *a, err *e);
void kv__write_req_release(kv_write_req *w);
/* Runs w in txn: reads the old item, checks the condition, writes. */
int kv__write_req_apply(kv *k, kv_write_req *w, MDB_txn *txn, err *e);
/* Starts a request's expressions: checks ExpressionAttributeNames/Values and
 * rejects the legacy parameters. has_expr: the request has an expression. */
int kv__expr_begin(kx_ctx *cx, json_t *in, arena *a, bool has_expr, err *e);
/* Common input helpers */
const char *kv__in_str(json_t *in, const char *key);
int kv__need_table_name(json_t *in, const char **out, err *e);

#endif
