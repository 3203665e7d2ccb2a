/* catalog/store.c -- databases, tables and partitions over the store's
 * ordered key-value spaces, kept by one of two sides (catalog/internal.h):
 * DATA/catalog (LMDB, lmdb_store.c) or PostgreSQL shared by several nodes
 * (`--metadata`, pg_store.c). The logic here is the same for both.
 *
 * Why one write per call: a Glue call is one atomic step (a database goes
 * with its tables and their partitions, a batch of partitions goes in
 * together); each call is one write of the side (a change of LMDB's group
 * committer, or one PostgreSQL transaction under the catalog's write lock),
 * checked and
 * applied inside it, so a failing call leaves nothing behind and a
 * returning one is durable.
 *
 * Layout (spaces, enum catalog_space):
 *   "databases"   NAME                       -> database document (JSON)
 *   "tables"      DB \0 NAME                 -> u64 id (big-endian) + table document
 *   "partitions"  ID VALUE\0 VALUE\0 ...     -> partition document
 *                 (when longer than LMDB's 511-byte keys:
 *                  ID 0xff SHA-256(VALUE\0 ...); 0xff never occurs in UTF-8)
 *   "meta"        "next_id" -> u64; "t" DB -> tables in DB (u64);
 *                 "p" ID -> partitions of table ID (u64); "seeded" -> ""
 *   "crawlers"    NAME                       -> crawler document (JSON)
 *   "functions"   DB \0 NAME                 -> user-defined function document
 *   "stats"       ID 0x00 COLUMN             -> a table column's statistics (JSON)
 *                 ID 0x01 SHA-256(VALUE\0 ...) COLUMN
 *                                            -> a partition column's statistics
 *
 * Invariants:
 *   (1) Names in keys are folded (catalog__name); names are at most 255
 *       bytes, so DB \0 NAME fits LMDB's 511-byte keys.
 *   (2) A table's partitions are keyed by the table's id, never by its
 *       names: deleting a table deletes the id's range; an id is never
 *       reused ("next_id" only grows).
 *   (3) Every check (exists, not found, quota, input) runs inside the
 *       change, before its first write: a failing change wrote nothing.
 *   (4) The counters in "meta" equal the records they count.
 *   (5) Statistics live under their table's id: they go with the table
 *       (the id's range), and with a partition (its hash's range) when it
 *       is deleted or renamed.
 *
 * Start reading at catalog_open(), then the op_* functions (one per write).
 */
#include "catalog/internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 511
#define ID_LEN 8
#define PAGE_BYTES_MAX (16u << 20) /* a page ends early past this many bytes of documents */

struct catalog {
  const catalog_side *side;
  void *impl;
};

/* One write: fn runs inside one write of the side. */
typedef struct op op;
struct op {
  catalog *c;
  int (*fn)(catalog *c, catalog_tx *txn, op *o, err *e);
  const char *db;         /* folded database name */
  const char *table;      /* folded table name */
  const json_t *input;    /* the call's input */
  const json_t *values;   /* a partition's values, a list of them, or names */
  const char *version;    /* UpdateTable's VersionId, or a column name */
  json_t *result;         /* a new document or errors array (the caller's) */
  int mode;               /* enum catalog_put */
};

/* ---- keys, records, counters ---- */

typedef struct key {
  size_t n;
  unsigned char b[KEY_MAX];
} key;

static void key_table(key *k, const char *db, const char *name)
{
  size_t a = strlen(db);
  size_t b = strlen(name);
  memcpy(k->b, db, a);
  k->b[a] = '\0';
  memcpy(k->b + a + 1, name, b);
  k->n = a + 1 + b;
}

static void id_put(unsigned char *p, uint64_t id)
{
  for (int i = 7; i >= 0; i--) {
    p[i] = (unsigned char)(id & 0xff);
    id >>= 8;
  }
}

static uint64_t id_get(const unsigned char *p)
{
  uint64_t id = 0;
  for (int i = 0; i < 8; i++)
    id = id << 8 | p[i];
  return id;
}

/* ID VALUE\0... or ID 0xff SHA-256 (values were checked: strings without NUL). */
static void key_partition(key *k, uint64_t id, const json_t *values)
{
  id_put(k->b, id);
  size_t n = ID_LEN;
  size_t total = ID_LEN;
  size_t i;
  json_t *v;
  json_array_foreach(values, i, v) total += json_string_length(v) + 1;
  if (total <= KEY_MAX) {
    json_array_foreach(values, i, v)
    {
      memcpy(k->b + n, json_string_value(v), json_string_length(v));
      n += json_string_length(v);
      k->b[n++] = '\0';
    }
    k->n = n;
    return;
  }
  hasher h;
  hash_init(&h, HASH_SHA256);
  json_array_foreach(values, i, v) hash_update(&h, json_string_value(v), json_string_length(v) + 1);
  k->b[n++] = 0xff;
  hash_final(&h, k->b + n);
  hash_release(&h);
  k->n = n + SHA256_LEN;
}

/* The statistics of a table's column (values NULL) or a partition's. With
 * column NULL: the prefix of all of them. */
static void key_stats(key *k, uint64_t id, const json_t *values, const char *column)
{
  id_put(k->b, id);
  size_t n = ID_LEN;
  if (values == NULL) {
    k->b[n++] = 0x00;
  } else {
    k->b[n++] = 0x01;
    hasher h;
    hash_init(&h, HASH_SHA256);
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v) hash_update(&h, json_string_value(v),
                                                 json_string_length(v) + 1);
    hash_final(&h, k->b + n);
    hash_release(&h);
    n += SHA256_LEN;
  }
  if (column != NULL) {
    size_t c = strlen(column); /* at most CATALOG_MAX_NAME: checked by the caller */
    memcpy(k->b + n, column, c);
    n += c;
  }
  k->n = n;
}

/* The JSON at k (after skip bytes); ERR_ENTITY_NOT_FOUND without a message
 * when absent. */
static int rec_get(catalog_tx *txn, int space, const key *k, size_t skip, uint64_t *id,
                   json_t **out, err *e)
{
  const unsigned char *v;
  size_t vn;
  *out = NULL;
  int rc = txn->side->get(txn, space, k->b, k->n, &v, &vn, e);
  if (rc != 0)
    return rc;
  if (vn < skip)
    return err_set(e, ERR_INTERNAL, "a catalog record is damaged");
  if (id != NULL)
    *id = id_get(v);
  json_error_t je;
  *out = json_loadb((const char *)v + skip, vn - skip, 0, &je);
  if (*out == NULL)
    return err_set(e, ERR_INTERNAL, "a catalog record is damaged: %s", je.text);
  return 0;
}

static int rec_put(catalog_tx *txn, int space, const key *k, const uint64_t *id,
                   const json_t *doc, err *e)
{
  char *text = json_dumps(doc, JSON_COMPACT);
  size_t n = strlen(text);
  if (n > CATALOG_MAX_DOCUMENT) {
    free(text);
    return err_set(e, ERR_INVALID_INPUT, "the definition is larger than %u bytes",
                   CATALOG_MAX_DOCUMENT);
  }
  int rc;
  if (id != NULL) {
    unsigned char *v = xmalloc(n + ID_LEN);
    id_put(v, *id);
    memcpy(v + ID_LEN, text, n);
    rc = txn->side->put(txn, space, k->b, k->n, v, n + ID_LEN, e);
    free(v);
  } else {
    rc = txn->side->put(txn, space, k->b, k->n, text, n, e);
  }
  free(text);
  return rc;
}

/* Deletes k; a missing record is no error. */
static int rec_del(catalog_tx *txn, int space, const key *k, err *e)
{
  int rc = txn->side->del(txn, space, k->b, k->n, e);
  return rc == ERR_ENTITY_NOT_FOUND ? 0 : rc;
}

/* meta counters: "t" DB and "p" ID */
static void key_count(key *k, char kind, const void *p, size_t n)
{
  k->b[0] = (unsigned char)kind;
  memcpy(k->b + 1, p, n);
  k->n = n + 1;
}

static uint64_t count_get(catalog *c, catalog_tx *txn, const key *k)
{
  (void)c;
  const unsigned char *v;
  size_t vn;
  err ignored = {0};
  if (txn->side->get(txn, CS_META, k->b, k->n, &v, &vn, &ignored) != 0 || vn != 8)
    return 0;
  return id_get(v);
}

static int count_set(catalog *c, catalog_tx *txn, const key *k, uint64_t n, err *e)
{
  if (n == 0)
    return rec_del(txn, CS_META, k, e);
  (void)c;
  unsigned char b[8];
  id_put(b, n);
  return txn->side->put(txn, CS_META, k->b, k->n, b, 8, e);
}

static int count_add(catalog *c, catalog_tx *txn, const key *k, long delta, err *e)
{
  uint64_t n = count_get(c, txn, k);
  if (delta < 0 && n < (uint64_t)-delta)
    n = 0;
  else
    n = (uint64_t)((long)n + delta);
  return count_set(c, txn, k, n, e);
}

static double now_seconds(void)
{
  return (double)time_now_ms() / 1000.0;
}

/* ---- loading with Glue's messages ---- */

static int db_load(catalog *c, catalog_tx *txn, const char *db, json_t **out, err *e)
{
  key k;
  k.n = strlen(db);
  memcpy(k.b, db, k.n);
  int rc = rec_get(txn, CS_DATABASES, &k, 0, NULL, out, e);
  if (rc == ERR_ENTITY_NOT_FOUND)
    return err_set(e, rc, "Database %s not found.", db);
  return rc;
}

static int table_load(catalog *c, catalog_tx *txn, const char *db, const char *name,
                      uint64_t *id, json_t **out, err *e)
{
  key k;
  key_table(&k, db, name);
  int rc = rec_get(txn, CS_TABLES, &k, ID_LEN, id, out, e);
  if (rc != ERR_ENTITY_NOT_FOUND)
    return rc;
  json_t *d;
  if (db_load(c, txn, db, &d, e) != 0)
    return e->code;
  json_decref(d);
  return err_set(e, rc, "Table %s not found.", name);
}

/* ---- writes ---- */

static int apply(catalog_tx *txn, void *arg, err *e)
{
  op *o = arg;
  o->result = (json_decref(o->result), NULL); /* a retried write starts afresh */
  return o->fn(o->c, txn, o, e);
}

/* Runs o as one write; on failure its result is released. */
static int run(catalog *c, op *o, err *e)
{
  o->c = c;
  int rc = c->side->write(c->impl, apply, o, e);
  if (rc != 0)
    o->result = (json_decref(o->result), NULL);
  return rc;
}

/* Deletes every record of space whose key starts with prefix. */
static int drop_range(catalog_tx *txn, int space, const unsigned char *prefix, size_t plen,
                      err *e)
{
  return txn->side->drop_prefix(txn, space, prefix, plen, e);
}

/* Deletes the statistics of a partition of table id. */
static int drop_partition_stats(catalog *c, catalog_tx *txn, uint64_t id, const json_t *values,
                                err *e)
{
  key k;
  key_stats(&k, id, values, NULL);
  return drop_range(txn, CS_STATS, k.b, k.n, e);
}

/* Deletes every record of the partitions of table id, and every statistic
 * of the table and its partitions. */
static int drop_partitions(catalog *c, catalog_tx *txn, uint64_t id, err *e)
{
  unsigned char prefix[ID_LEN];
  id_put(prefix, id);
  if (drop_range(txn, CS_PARTITIONS, prefix, ID_LEN, e) != 0 ||
      drop_range(txn, CS_STATS, prefix, ID_LEN, e) != 0)
    return e->code;
  key ck;
  key_count(&ck, 'p', prefix, ID_LEN);
  return rec_del(txn, CS_META, &ck, e);
}

/* ---- databases ---- */

static int op_db_create(catalog *c, catalog_tx *txn, op *o, err *e)
{
  json_t *doc;
  if (catalog__input(SHAPE_DATABASE, o->input, "databaseInput", &doc, e) != 0)
    return e->code;
  o->result = doc;
  char name[CATALOG_MAX_NAME + 1];
  if (catalog__name(json_string_value(json_object_get(doc, "Name")), "databaseInput.name", name,
                    e) != 0)
    return e->code;
  key k;
  k.n = strlen(name);
  memcpy(k.b, name, k.n);
  json_t *old;
  int rc = rec_get(txn, CS_DATABASES, &k, 0, NULL, &old, e);
  json_decref(old);
  if (rc == 0)
    return err_set(e, ERR_ALREADY_EXISTS, "Database already exists.");
  if (rc != ERR_ENTITY_NOT_FOUND)
    return rc;
  uint64_t ndb;
  if ((rc = txn->side->count(txn, CS_DATABASES, &ndb, e)) != 0)
    return rc;
  if (ndb >= CATALOG_MAX_DATABASES)
    return err_set(e, ERR_RESOURCE_LIMIT, "Number of databases exceeds the limit of %d",
                   CATALOG_MAX_DATABASES);
  json_object_set_new(doc, "Name", json_string(name));
  if (json_object_get(doc, "Parameters") == NULL)
    json_object_set_new(doc, "Parameters", json_object());
  json_object_set_new(doc, "CreateTime", json_real(now_seconds()));
  json_object_set_new(doc, "CatalogId", json_string(CATALOG_ID));
  return rec_put(txn, CS_DATABASES, &k, NULL, doc, e);
}

int catalog_database_create(catalog *c, const json_t *input, json_t **out, err *e)
{
  op o = {.fn = op_db_create, .input = input};
  int rc = run(c, &o, e);
  if (out != NULL)
    *out = o.result;
  else
    json_decref(o.result);
  return rc;
}

int catalog_database_get(catalog *c, const char *name, json_t **out, err *e)
{
  *out = NULL;
  char db[CATALOG_MAX_NAME + 1];
  if (catalog__name(name, "name", db, e) != 0)
    return e->code;
  catalog_tx *txn;
  if (c->side->read_begin(c->impl, &txn, e) != 0)
    return e->code;
  int rc = db_load(c, txn, db, out, e);
  c->side->read_end(c->impl, txn);
  return rc;
}

static int op_db_update(catalog *c, catalog_tx *txn, op *o, err *e)
{
  json_t *old;
  if (db_load(c, txn, o->db, &old, e) != 0)
    return e->code;
  json_t *doc;
  int rc = catalog__input(SHAPE_DATABASE, o->input, "databaseInput", &doc, e);
  if (rc == 0) {
    char name[CATALOG_MAX_NAME + 1];
    rc = catalog__name(json_string_value(json_object_get(doc, "Name")), "databaseInput.name",
                       name, e);
    if (rc == 0 && strcmp(name, o->db) != 0)
      rc = err_set(e, ERR_INVALID_INPUT, "Database name cannot be changed: %s", name);
    if (rc == 0) {
      json_object_set_new(doc, "Name", json_string(name));
      if (json_object_get(doc, "Parameters") == NULL)
        json_object_set_new(doc, "Parameters", json_object());
      json_object_set(doc, "CreateTime", json_object_get(old, "CreateTime"));
      json_object_set_new(doc, "CatalogId", json_string(CATALOG_ID));
      key k;
      k.n = strlen(name);
      memcpy(k.b, name, k.n);
      rc = rec_put(txn, CS_DATABASES, &k, NULL, doc, e);
    }
    json_decref(doc);
  }
  json_decref(old);
  return rc;
}

int catalog_database_update(catalog *c, const char *name, const json_t *input, err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  if (catalog__name(name, "name", db, e) != 0)
    return e->code;
  op o = {.fn = op_db_update, .db = db, .input = input};
  return run(c, &o, e);
}

typedef struct ids {
  uint64_t *v;
  size_t n, cap;
} ids;

/* A scan's visit over "tables": collects the tables' ids. */
static int collect_id(void *ctx, const unsigned char *k, size_t kn, const unsigned char *v,
                      size_t vn, err *e)
{
  (void)k;
  (void)kn;
  (void)kn;
  ids *l = ctx;
  if (vn < ID_LEN)
    return err_set(e, ERR_INTERNAL, "a catalog record is damaged");
  if (l->n == l->cap) {
    l->cap = l->cap != 0 ? l->cap * 2 : 16;
    l->v = xrealloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = id_get(v);
  return 0;
}

static int op_db_delete(catalog *c, catalog_tx *txn, op *o, err *e)
{
  json_t *old;
  if (db_load(c, txn, o->db, &old, e) != 0)
    return e->code;
  json_decref(old);
  /* the ids of its tables, then their partitions, then the tables */
  ids list = {0};
  size_t plen = strlen(o->db) + 1; /* "DB\0": the string with its NUL */
  int rc = txn->side->scan(txn, CS_TABLES, o->db, plen, o->db, plen, false, collect_id, &list,
                           e);
  for (size_t i = 0; rc == 0 && i < list.n; i++)
    rc = drop_partitions(c, txn, list.v[i], e);
  free(list.v);
  if (rc == 0)
    rc = drop_range(txn, CS_TABLES, (const unsigned char *)o->db, plen, e);
  if (rc != 0)
    return rc;
  if (drop_range(txn, CS_FUNCTIONS, (const unsigned char *)o->db, strlen(o->db) + 1, e) != 0)
    return e->code;
  key ck;
  key_count(&ck, 't', o->db, strlen(o->db));
  if (rec_del(txn, CS_META, &ck, e) != 0)
    return e->code;
  key dk;
  dk.n = strlen(o->db);
  memcpy(dk.b, o->db, dk.n);
  return rec_del(txn, CS_DATABASES, &dk, e);
}

int catalog_database_delete(catalog *c, const char *name, err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  if (catalog__name(name, "name", db, e) != 0)
    return e->code;
  op o = {.fn = op_db_delete, .db = db};
  return run(c, &o, e);
}

/* ---- paging ---- */

/* A token is the hex of the last key returned, after the scan's prefix. */
static char *token_of(const void *p, size_t n)
{
  char *t = xmalloc(n * 2 + 1);
  hex_encode(p, n, t);
  t[n * 2] = '\0';
  return t;
}

static int token_parse(const char *token, unsigned char *out, size_t cap, size_t *n, err *e)
{
  *n = 0;
  if (token == NULL || token[0] == '\0')
    return 0;
  size_t len = strlen(token);
  if (len % 2 != 0 || len / 2 > cap || !hex_decode(token, len, out, len / 2))
    return err_set(e, ERR_INVALID_INPUT, "Invalid continuation token");
  *n = len / 2;
  return 0;
}

/* A filter on one record; NULL accepts all. It is called twice: first
 * with doc NULL, on the key alone (false skips the record unparsed; true
 * when the key cannot tell), then with the parsed document. */
typedef bool (*scan_filter)(const void *ctx, const json_t *doc, const unsigned char *k,
                            size_t kn);

typedef struct page {
  const void *prefix;
  size_t plen, skip, max;
  scan_filter filter;
  const void *fctx;
  json_t *list;
  char *next;
  unsigned char last[KEY_MAX];
  size_t lastn;
  size_t bytes; /* of the documents in the page */
} page;

static int page_visit(void *ctx, const unsigned char *k, size_t kn, const unsigned char *v,
                      size_t vn, err *e)
{
  (void)e;
  page *pg = ctx;
  if (json_array_size(pg->list) == pg->max || pg->bytes >= PAGE_BYTES_MAX) {
    pg->next = token_of(pg->last + pg->plen, pg->lastn - pg->plen);
    return 1;
  }
  if (pg->filter != NULL && !pg->filter(pg->fctx, NULL, k, kn))
    return 0;
  json_error_t je;
  json_t *doc = vn >= pg->skip ? json_loadb((const char *)v + pg->skip, vn - pg->skip, 0, &je)
                               : NULL;
  if (doc == NULL)
    return 0;
  if (pg->filter == NULL || pg->filter(pg->fctx, doc, k, kn)) {
    json_array_append_new(pg->list, doc);
    pg->bytes += vn;
    memcpy(pg->last, k, kn);
    pg->lastn = kn;
  } else {
    json_decref(doc);
  }
  return 0;
}

/* Appends up to max documents of space whose keys start with prefix, from
 * after the token on (a page also ends once it holds PAGE_BYTES_MAX bytes
 * of documents); *next when more records with the prefix follow. */
static int scan(catalog *c, int space, const void *prefix, size_t plen, size_t skip,
                const char *token, size_t max, scan_filter filter, const void *fctx,
                json_t **out, char **next, err *e)
{
  *out = NULL;
  *next = NULL;
  unsigned char start[KEY_MAX];
  size_t tlen;
  if (token_parse(token, start + plen, KEY_MAX - plen, &tlen, e) != 0)
    return e->code;
  memcpy(start, prefix, plen);
  catalog_tx *txn;
  if (c->side->read_begin(c->impl, &txn, e) != 0)
    return e->code;
  page pg = {.prefix = prefix, .plen = plen, .skip = skip, .max = max, .filter = filter,
             .fctx = fctx, .list = json_array()};
  int rc = txn->side->scan(txn, space, prefix, plen, start, plen + tlen, tlen > 0, page_visit,
                           &pg, e);
  c->side->read_end(c->impl, txn);
  if (rc != 0) {
    json_decref(pg.list);
    free(pg.next);
    return rc;
  }
  *out = pg.list;
  *next = pg.next;
  return 0;
}

int catalog_database_list(catalog *c, const char *token, size_t max, json_t **out, char **next,
                          err *e)
{
  if (max == 0 || max > CATALOG_MAX_PAGE_DATABASES)
    max = CATALOG_MAX_PAGE_DATABASES;
  return scan(c, CS_DATABASES, "", 0, 0, token, max, NULL, NULL, out, next, e);
}

/* ---- tables ---- */

/* The stored table document from a validated input. */
static void table_doc(json_t *doc, const char *db, const char *name)
{
  json_object_set_new(doc, "Name", json_string(name));
  json_object_set_new(doc, "DatabaseName", json_string(db));
  if (json_object_get(doc, "Parameters") == NULL)
    json_object_set_new(doc, "Parameters", json_object());
  if (json_object_get(doc, "PartitionKeys") == NULL)
    json_object_set_new(doc, "PartitionKeys", json_array());
  json_object_set_new(doc, "CatalogId", json_string(CATALOG_ID));
  json_object_set_new(doc, "IsRegisteredWithLakeFormation", json_false());
}

static int table_input(const json_t *input, json_t **doc, char name[CATALOG_MAX_NAME + 1],
                       err *e)
{
  if (catalog__input(SHAPE_TABLE, input, "tableInput", doc, e) != 0)
    return e->code;
  if (catalog__name(json_string_value(json_object_get(*doc, "Name")), "tableInput.name", name,
                    e) != 0) {
    *doc = (json_decref(*doc), NULL);
    return e->code;
  }
  return 0;
}

static int op_table_create(catalog *c, catalog_tx *txn, op *o, err *e)
{
  json_t *doc;
  char name[CATALOG_MAX_NAME + 1];
  if (table_input(o->input, &doc, name, e) != 0)
    return e->code;
  o->result = doc;
  json_t *d;
  if (db_load(c, txn, o->db, &d, e) != 0)
    return e->code;
  json_decref(d);
  key k;
  key_table(&k, o->db, name);
  json_t *old;
  int rc = rec_get(txn, CS_TABLES, &k, ID_LEN, NULL, &old, e);
  json_decref(old);
  if (rc == 0)
    return err_set(e, ERR_ALREADY_EXISTS, "Table already exists.");
  if (rc != ERR_ENTITY_NOT_FOUND)
    return rc;
  key ck;
  key_count(&ck, 't', o->db, strlen(o->db));
  uint64_t n = count_get(c, txn, &ck);
  if (n >= CATALOG_MAX_TABLES)
    return err_set(e, ERR_RESOURCE_LIMIT, "Number of tables in database %s exceeds the limit "
                   "of %d", o->db, CATALOG_MAX_TABLES);
  key ik;
  ik.n = 7;
  memcpy(ik.b, "next_id", 7);
  uint64_t id = count_get(c, txn, &ik) + 1;
  if (count_set(c, txn, &ik, id, e) != 0 || count_set(c, txn, &ck, n + 1, e) != 0)
    return e->code;
  table_doc(doc, o->db, name);
  double t = now_seconds();
  json_object_set_new(doc, "CreateTime", json_real(t));
  json_object_set_new(doc, "UpdateTime", json_real(t));
  json_object_set_new(doc, "VersionId", json_string("0"));
  return rec_put(txn, CS_TABLES, &k, &id, doc, e);
}

int catalog_table_create(catalog *c, const char *database, const json_t *input, json_t **out,
                         err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  if (out != NULL)
    *out = NULL;
  if (catalog__name(database, "databaseName", db, e) != 0)
    return e->code;
  op o = {.fn = op_table_create, .db = db, .input = input};
  int rc = run(c, &o, e);
  if (out != NULL)
    *out = o.result;
  else
    json_decref(o.result);
  return rc;
}

int catalog_table_get(catalog *c, const char *database, const char *name, json_t **out, err *e)
{
  *out = NULL;
  char db[CATALOG_MAX_NAME + 1];
  char t[CATALOG_MAX_NAME + 1];
  if (catalog__name(database, "databaseName", db, e) != 0 || catalog__name(name, "name", t, e) != 0)
    return e->code;
  catalog_tx *txn;
  if (c->side->read_begin(c->impl, &txn, e) != 0)
    return e->code;
  int rc = table_load(c, txn, db, t, NULL, out, e);
  c->side->read_end(c->impl, txn);
  return rc;
}

static bool table_filter(const void *ctx, const json_t *doc, const unsigned char *k, size_t kn)
{
  (void)k;
  (void)kn;
  return doc == NULL ||
         catalog__pattern_match(ctx, json_string_value(json_object_get(doc, "Name")));
}

int catalog_table_list(catalog *c, const char *database, const char *pattern, const char *token,
                       size_t max, json_t **out, char **next, err *e)
{
  *out = NULL;
  *next = NULL;
  char db[CATALOG_MAX_NAME + 1];
  if (catalog__name(database, "databaseName", db, e) != 0)
    return e->code;
  json_t *d;
  if (catalog_database_get(c, db, &d, e) != 0)
    return e->code;
  json_decref(d);
  catalog_pattern *p = NULL;
  if (pattern != NULL && pattern[0] != '\0' && catalog__pattern_compile(pattern, &p, e) != 0)
    return e->code;
  if (max == 0 || max > CATALOG_MAX_PAGE_TABLES)
    max = CATALOG_MAX_PAGE_TABLES;
  int rc = scan(c, CS_TABLES, db, strlen(db) + 1, ID_LEN, token, max,
                p != NULL ? table_filter : NULL, p, out, next, e);
  catalog__pattern_free(p);
  return rc;
}

static int op_table_update(catalog *c, catalog_tx *txn, op *o, err *e)
{
  json_t *doc;
  char name[CATALOG_MAX_NAME + 1];
  if (table_input(o->input, &doc, name, e) != 0)
    return e->code;
  o->result = doc;
  json_t *old;
  uint64_t id;
  if (table_load(c, txn, o->db, name, &id, &old, e) != 0)
    return e->code;
  const char *vid = json_string_value(json_object_get(old, "VersionId"));
  if (o->version != NULL && (vid == NULL || strcmp(vid, o->version) != 0)) {
    err_set(e, ERR_CONFLICT, "Update table failed due to concurrent modifications: the "
            "table's version is %s, not %s.", vid != NULL ? vid : "0", o->version);
    json_decref(old);
    return e->code;
  }
  table_doc(doc, o->db, name);
  json_object_set(doc, "CreateTime", json_object_get(old, "CreateTime"));
  json_object_set_new(doc, "UpdateTime", json_real(now_seconds()));
  long version = vid != NULL ? atol(vid) : 0;
  char vs[32];
  snprintf(vs, sizeof vs, "%ld", version + 1);
  json_object_set_new(doc, "VersionId", json_string(vs));
  json_decref(old);
  key k;
  key_table(&k, o->db, name);
  return rec_put(txn, CS_TABLES, &k, &id, doc, e);
}

int catalog_table_update(catalog *c, const char *database, const json_t *input, err *e)
{
  return catalog_table_update_at(c, database, input, NULL, e);
}

int catalog_table_update_at(catalog *c, const char *database, const json_t *input,
                            const char *version, err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  if (catalog__name(database, "databaseName", db, e) != 0)
    return e->code;
  op o = {.fn = op_table_update, .db = db, .input = input, .version = version};
  int rc = run(c, &o, e);
  json_decref(o.result);
  return rc;
}

static int table_drop(catalog *c, catalog_tx *txn, const char *db, const char *name, err *e)
{
  json_t *old;
  uint64_t id;
  if (table_load(c, txn, db, name, &id, &old, e) != 0)
    return e->code;
  json_decref(old);
  if (drop_partitions(c, txn, id, e) != 0)
    return e->code;
  key k;
  key_table(&k, db, name);
  if (rec_del(txn, CS_TABLES, &k, e) != 0)
    return e->code;
  key ck;
  key_count(&ck, 't', db, strlen(db));
  return count_add(c, txn, &ck, -1, e);
}

static int op_table_delete(catalog *c, catalog_tx *txn, op *o, err *e)
{
  return table_drop(c, txn, o->db, o->table, e);
}

int catalog_table_delete(catalog *c, const char *database, const char *name, err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  char t[CATALOG_MAX_NAME + 1];
  if (catalog__name(database, "databaseName", db, e) != 0 || catalog__name(name, "name", t, e) != 0)
    return e->code;
  op o = {.fn = op_table_delete, .db = db, .table = t};
  return run(c, &o, e);
}

static json_t *error_entry(const char *member, json_t *id, const err *e)
{
  return json_pack("{s:O, s:{s:s, s:s}}", member, id, "ErrorDetail", "ErrorCode",
                   err_aws_code(e->code), "ErrorMessage", e->msg);
}

static int op_table_batch_delete(catalog *c, catalog_tx *txn, op *o, err *e)
{
  json_t *d;
  if (db_load(c, txn, o->db, &d, e) != 0)
    return e->code;
  json_decref(d);
  o->result = json_array();
  size_t i;
  json_t *n;
  json_array_foreach(o->values, i, n)
  {
    err one = {0};
    char t[CATALOG_MAX_NAME + 1];
    int rc = catalog__name(json_string_value(n), "tablesToDelete", t, &one);
    if (rc == 0)
      rc = table_drop(c, txn, o->db, t, &one);
    if (rc == ERR_IO || rc == ERR_NO_SPACE || rc == ERR_INTERNAL) {
      *e = one;
      return rc;
    }
    if (rc != 0)
      json_array_append_new(o->result, error_entry("TableName", n, &one));
  }
  return 0;
}

int catalog_table_batch_delete(catalog *c, const char *database, const json_t *names,
                               json_t **errors, err *e)
{
  *errors = NULL;
  char db[CATALOG_MAX_NAME + 1];
  if (catalog__name(database, "databaseName", db, e) != 0)
    return e->code;
  if (!json_is_array(names) || json_array_size(names) > CATALOG_MAX_BATCH_TABLES)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at "
                   "'tablesToDelete' failed to satisfy constraint: Member must have length "
                   "less than or equal to %d", CATALOG_MAX_BATCH_TABLES);
  op o = {.fn = op_table_batch_delete, .db = db, .values = names};
  int rc = run(c, &o, e);
  *errors = o.result;
  return rc;
}

/* ---- partitions ---- */

/* Loads the table (id, document) and checks values against its keys. */
static int part_target(catalog *c, catalog_tx *txn, const char *db, const char *table,
                       const json_t *values, uint64_t *id, key *k, err *e)
{
  json_t *t;
  if (table_load(c, txn, db, table, id, &t, e) != 0)
    return e->code;
  int rc = catalog__values(values, t, "partitionValues", e);
  json_decref(t);
  if (rc == 0 && k != NULL)
    key_partition(k, *id, values);
  return rc;
}

/* Checks and writes one new partition. */
static int part_create(catalog *c, catalog_tx *txn, const char *db, const char *table,
                       const json_t *input, err *e)
{
  json_t *doc;
  if (catalog__input(SHAPE_PARTITION, input, "partitionInput", &doc, e) != 0)
    return e->code;
  uint64_t id;
  key k;
  json_t *values = json_object_get(doc, "Values");
  int rc = values == NULL
               ? err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value null at "
                         "'partitionInput.values' failed to satisfy constraint: Member must "
                         "not be null")
               : part_target(c, txn, db, table, values, &id, &k, e);
  json_t *old = NULL;
  if (rc == 0) {
    rc = rec_get(txn, CS_PARTITIONS, &k, 0, NULL, &old, e);
    if (rc == 0)
      rc = err_set(e, ERR_ALREADY_EXISTS, "Partition already exists.");
    else if (rc == ERR_ENTITY_NOT_FOUND)
      rc = 0;
  }
  key ck;
  if (rc == 0) {
    unsigned char b[ID_LEN];
    id_put(b, id);
    key_count(&ck, 'p', b, ID_LEN);
    if (count_get(c, txn, &ck) >= CATALOG_MAX_PARTITIONS)
      rc = err_set(e, ERR_RESOURCE_LIMIT, "Number of partitions in table %s exceeds the limit "
                   "of %d", table, CATALOG_MAX_PARTITIONS);
  }
  if (rc == 0) {
    json_object_set_new(doc, "DatabaseName", json_string(db));
    json_object_set_new(doc, "TableName", json_string(table));
    json_object_set_new(doc, "CreationTime", json_real(now_seconds()));
    json_object_set_new(doc, "CatalogId", json_string(CATALOG_ID));
    if (json_object_get(doc, "Parameters") == NULL)
      json_object_set_new(doc, "Parameters", json_object());
    rc = rec_put(txn, CS_PARTITIONS, &k, NULL, doc, e);
    if (rc == 0)
      rc = count_add(c, txn, &ck, 1, e);
  }
  json_decref(old);
  json_decref(doc);
  return rc;
}

static int op_part_create(catalog *c, catalog_tx *txn, op *o, err *e)
{
  return part_create(c, txn, o->db, o->table, o->input, e);
}

/* Folds both names. */
static int names2(const char *database, const char *table, char db[CATALOG_MAX_NAME + 1],
                  char t[CATALOG_MAX_NAME + 1], err *e)
{
  if (catalog__name(database, "databaseName", db, e) != 0 ||
      catalog__name(table, "tableName", t, e) != 0)
    return e->code;
  return 0;
}

int catalog_partition_create(catalog *c, const char *database, const char *table,
                             const json_t *input, err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  char t[CATALOG_MAX_NAME + 1];
  if (names2(database, table, db, t, e) != 0)
    return e->code;
  op o = {.fn = op_part_create, .db = db, .table = t, .input = input};
  return run(c, &o, e);
}

static bool fatal(int rc)
{
  return rc == ERR_IO || rc == ERR_NO_SPACE || rc == ERR_INTERNAL;
}

static int part_update(catalog *c, catalog_tx *txn, const char *db, const char *table,
                       const json_t *values, const json_t *input, err *e);

/* BatchCreatePartition (update false: each entry a PartitionInput) and
 * BatchUpdatePartition (each {PartitionValueList, PartitionInput}): every
 * entry on its own, its refusal in o->result; an I/O failure ends the batch. */
static int part_batch(catalog *c, catalog_tx *txn, op *o, bool update, err *e)
{
  uint64_t id;
  json_t *t;
  if (table_load(c, txn, o->db, o->table, &id, &t, e) != 0)
    return e->code;
  json_decref(t);
  o->result = json_array();
  size_t i;
  json_t *entry;
  json_array_foreach(o->input, i, entry)
  {
    err one = {0};
    json_t *values = json_object_get(entry, update ? "PartitionValueList" : "Values");
    int rc = update ? part_update(c, txn, o->db, o->table, values,
                                  json_object_get(entry, "PartitionInput"), &one)
                    : part_create(c, txn, o->db, o->table, entry, &one);
    if (fatal(rc)) {
      *e = one;
      return rc;
    }
    if (rc == 0)
      continue;
    if (update) {
      json_array_append_new(o->result, error_entry("PartitionValueList", values, &one));
    } else {
      json_t *id_values = json_is_array(values) ? values : json_array();
      json_array_append_new(o->result, error_entry("PartitionValues", id_values, &one));
      if (id_values != values)
        json_decref(id_values);
    }
  }
  return 0;
}

static int op_part_batch_create(catalog *c, catalog_tx *txn, op *o, err *e)
{
  return part_batch(c, txn, o, false, e);
}

/* The shared entry of the partition batches: names checked, the list's
 * length checked against max (member: its name in AWS's message), one
 * commit running fn over it, its per-entry errors handed back. */
static int partition_batch(catalog *c, const char *database, const char *table,
                           const json_t *list, size_t max, const char *member,
                           int (*fn)(catalog *c, catalog_tx *txn, op *o, err *e), json_t **errors,
                           err *e)
{
  *errors = NULL;
  char db[CATALOG_MAX_NAME + 1];
  char t[CATALOG_MAX_NAME + 1];
  if (names2(database, table, db, t, e) != 0)
    return e->code;
  if (!json_is_array(list) || json_array_size(list) > max)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at '%s' failed to "
                   "satisfy constraint: Member must have length less than or equal to %zu",
                   member, max);
  op o = {.fn = fn, .db = db, .table = t, .input = list, .values = list};
  int rc = run(c, &o, e);
  *errors = o.result;
  return rc;
}

int catalog_partition_batch_create(catalog *c, const char *database, const char *table,
                                   const json_t *inputs, json_t **errors, err *e)
{
  return partition_batch(c, database, table, inputs, CATALOG_MAX_BATCH_CREATE,
                         "partitionInputList", op_part_batch_create, errors, e);
}

int catalog_partition_get(catalog *c, const char *database, const char *table,
                          const json_t *values, json_t **out, err *e)
{
  *out = NULL;
  char db[CATALOG_MAX_NAME + 1];
  char t[CATALOG_MAX_NAME + 1];
  if (names2(database, table, db, t, e) != 0)
    return e->code;
  catalog_tx *txn;
  if (c->side->read_begin(c->impl, &txn, e) != 0)
    return e->code;
  uint64_t id;
  key k;
  int rc = part_target(c, txn, db, t, values, &id, &k, e);
  if (rc == 0) {
    rc = rec_get(txn, CS_PARTITIONS, &k, 0, NULL, out, e);
    if (rc == ERR_ENTITY_NOT_FOUND)
      rc = err_set(e, rc, "Cannot find partition.");
  }
  c->side->read_end(c->impl, txn);
  return rc;
}

/* Replaces the partition named by values with input (renaming it when
 * input's Values differ: its statistics are dropped then). */
static int part_update(catalog *c, catalog_tx *txn, const char *db, const char *table,
                       const json_t *values, const json_t *input, err *e)
{
  uint64_t id;
  key k;
  json_t *old;
  if (part_target(c, txn, db, table, values, &id, &k, e) != 0)
    return e->code;
  int rc = rec_get(txn, CS_PARTITIONS, &k, 0, NULL, &old, e);
  if (rc == ERR_ENTITY_NOT_FOUND)
    return err_set(e, rc, "Cannot find partition.");
  if (rc != 0)
    return rc;
  json_t *doc = NULL;
  rc = catalog__input(SHAPE_PARTITION, input, "partitionInput", &doc, e);
  if (rc == 0 && json_object_get(doc, "Values") == NULL)
    json_object_set(doc, "Values", json_object_get(old, "Values"));
  key nk;
  if (rc == 0)
    rc = part_target(c, txn, db, table, json_object_get(doc, "Values"), &id, &nk, e);
  if (rc == 0 && (nk.n != k.n || memcmp(nk.b, k.b, k.n) != 0)) {
    json_t *other;
    rc = rec_get(txn, CS_PARTITIONS, &nk, 0, NULL, &other, e);
    json_decref(other);
    if (rc == 0)
      rc = err_set(e, ERR_ALREADY_EXISTS, "Partition already exists.");
    else if (rc == ERR_ENTITY_NOT_FOUND && (rc = rec_del(txn, CS_PARTITIONS, &k, e)) == 0)
      rc = drop_partition_stats(c, txn, id, values, e);
  }
  if (rc == 0) {
    json_object_set_new(doc, "DatabaseName", json_string(db));
    json_object_set_new(doc, "TableName", json_string(table));
    json_object_set(doc, "CreationTime", json_object_get(old, "CreationTime"));
    json_object_set_new(doc, "CatalogId", json_string(CATALOG_ID));
    if (json_object_get(doc, "Parameters") == NULL)
      json_object_set_new(doc, "Parameters", json_object());
    rc = rec_put(txn, CS_PARTITIONS, &nk, NULL, doc, e);
  }
  json_decref(doc);
  json_decref(old);
  return rc;
}

static int op_part_update(catalog *c, catalog_tx *txn, op *o, err *e)
{
  return part_update(c, txn, o->db, o->table, o->values, o->input, e);
}

int catalog_partition_update(catalog *c, const char *database, const char *table,
                             const json_t *values, const json_t *input, err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  char t[CATALOG_MAX_NAME + 1];
  if (names2(database, table, db, t, e) != 0)
    return e->code;
  op o = {.fn = op_part_update, .db = db, .table = t, .values = values, .input = input};
  return run(c, &o, e);
}

static int op_part_batch_update(catalog *c, catalog_tx *txn, op *o, err *e)
{
  return part_batch(c, txn, o, true, e);
}

int catalog_partition_batch_update(catalog *c, const char *database, const char *table,
                                   const json_t *entries, json_t **errors, err *e)
{
  *errors = NULL;
  if (!json_is_array(entries) || json_array_size(entries) == 0)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at 'entries' "
                   "failed to satisfy constraint: Member must have length greater than or "
                   "equal to 1");
  size_t i;
  json_t *entry;
  json_array_foreach(entries, i, entry)
  {
    if (!json_is_array(json_object_get(entry, "PartitionValueList")))
      return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value null at "
                     "'entries.%zu.member.partitionValueList' failed to satisfy constraint: "
                     "Member must not be null", i + 1);
    if (!json_is_object(json_object_get(entry, "PartitionInput")))
      return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value null at "
                     "'entries.%zu.member.partitionInput' failed to satisfy constraint: "
                     "Member must not be null", i + 1);
  }
  return partition_batch(c, database, table, entries, CATALOG_MAX_BATCH_UPDATE, "entries",
                         op_part_batch_update, errors, e);
}

/* GetPartitions' filters: an expression, one segment of total. */
typedef struct part_query {
  catalog_expr *x;
  unsigned segment;
  unsigned total;
} part_query;

/* FNV-1a over the values part of a partition key: stable for a partition,
 * spread over the segments. */
static unsigned segment_of(const unsigned char *k, size_t kn, unsigned total)
{
  uint64_t h = 1469598103934665603ull;
  for (size_t i = ID_LEN; i < kn; i++) {
    h ^= k[i];
    h *= 1099511628211ull;
  }
  return (unsigned)(h % total);
}

static bool part_filter(const void *ctx, const json_t *doc, const unsigned char *k, size_t kn)
{
  const part_query *q = ctx;
  if (doc == NULL)
    return q->total <= 1 || segment_of(k, kn, q->total) == q->segment;
  return q->x == NULL || catalog_expr_match(q->x, json_object_get(doc, "Values"));
}

int catalog_partition_list(catalog *c, const char *database, const char *table,
                           const char *expression, const char *token, size_t max, json_t **out,
                           char **next, err *e)
{
  return catalog_partition_list_segment(c, database, table, expression, 0, 0, token, max, out,
                                        next, e);
}

int catalog_partition_list_segment(catalog *c, const char *database, const char *table,
                                   const char *expression, int segment, int total,
                                   const char *token, size_t max, json_t **out, char **next,
                                   err *e)
{
  *out = NULL;
  *next = NULL;
  if (total < 0 || total > CATALOG_MAX_SEGMENTS)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value '%d' at "
                   "'segment.totalSegments' failed to satisfy constraint: Member must have "
                   "value between 1 and %d", total, CATALOG_MAX_SEGMENTS);
  if (segment < 0 || (total > 0 && segment >= total) || (total == 0 && segment != 0))
    return err_set(e, ERR_INVALID_INPUT, "The segment number %d is not below the total "
                   "number of segments %d", segment, total);
  json_t *t;
  if (catalog_table_get(c, database, table, &t, e) != 0)
    return e->code;
  catalog_expr *x = NULL;
  int rc = 0;
  if (expression != NULL && expression[0] != '\0')
    rc = catalog_expr_parse(expression, json_object_get(t, "PartitionKeys"), &x, e);
  json_decref(t);
  if (rc != 0)
    return rc;
  /* the id, read again: the table might have been replaced meanwhile */
  char db[CATALOG_MAX_NAME + 1];
  char tn[CATALOG_MAX_NAME + 1];
  names2(database, table, db, tn, e);
  catalog_tx *txn;
  uint64_t id = 0;
  if ((rc = c->side->read_begin(c->impl, &txn, e)) == 0) {
    rc = table_load(c, txn, db, tn, &id, &t, e);
    json_decref(t);
    c->side->read_end(c->impl, txn);
  }
  if (rc == 0) {
    if (max == 0 || max > CATALOG_MAX_PAGE_PARTITIONS)
      max = CATALOG_MAX_PAGE_PARTITIONS;
    unsigned char prefix[ID_LEN];
    id_put(prefix, id);
    part_query q = {.x = x, .segment = (unsigned)segment, .total = (unsigned)total};
    rc = scan(c, CS_PARTITIONS, prefix, ID_LEN, 0, token, max,
              x != NULL || total > 1 ? part_filter : NULL, &q, out, next, e);
  }
  catalog_expr_free(x);
  return rc;
}

int catalog_partition_batch_get(catalog *c, const char *database, const char *table,
                                const json_t *values_list, json_t **out, json_t **unprocessed,
                                err *e)
{
  *out = NULL;
  *unprocessed = NULL;
  char db[CATALOG_MAX_NAME + 1];
  char t[CATALOG_MAX_NAME + 1];
  if (names2(database, table, db, t, e) != 0)
    return e->code;
  if (!json_is_array(values_list) || json_array_size(values_list) > CATALOG_MAX_BATCH_GET)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at "
                   "'partitionsToGet' failed to satisfy constraint: Member must have length "
                   "less than or equal to %d", CATALOG_MAX_BATCH_GET);
  catalog_tx *txn;
  if (c->side->read_begin(c->impl, &txn, e) != 0)
    return e->code;
  json_t *found = json_array();
  int rc = 0;
  size_t i;
  json_t *values;
  json_array_foreach(values_list, i, values)
  {
    uint64_t id;
    key k;
    if ((rc = part_target(c, txn, db, t, values, &id, &k, e)) != 0)
      break;
    json_t *doc;
    rc = rec_get(txn, CS_PARTITIONS, &k, 0, NULL, &doc, e);
    if (rc == 0)
      json_array_append_new(found, doc);
    else if (rc != ERR_ENTITY_NOT_FOUND)
      break;
    rc = 0;
  }
  c->side->read_end(c->impl, txn);
  if (rc != 0) {
    json_decref(found);
    return rc;
  }
  *out = found;
  *unprocessed = json_array();
  return 0;
}

static int part_drop(catalog *c, catalog_tx *txn, const char *db, const char *table,
                     const json_t *values, err *e)
{
  uint64_t id;
  key k;
  if (part_target(c, txn, db, table, values, &id, &k, e) != 0)
    return e->code;
  json_t *old;
  int rc = rec_get(txn, CS_PARTITIONS, &k, 0, NULL, &old, e);
  json_decref(old);
  if (rc == ERR_ENTITY_NOT_FOUND)
    return err_set(e, rc, "Cannot find partition.");
  if (rc != 0)
    return rc;
  if (rec_del(txn, CS_PARTITIONS, &k, e) != 0 || drop_partition_stats(c, txn, id, values, e) != 0)
    return e->code;
  unsigned char b[ID_LEN];
  id_put(b, id);
  key ck;
  key_count(&ck, 'p', b, ID_LEN);
  return count_add(c, txn, &ck, -1, e);
}

static int op_part_delete(catalog *c, catalog_tx *txn, op *o, err *e)
{
  return part_drop(c, txn, o->db, o->table, o->values, e);
}

int catalog_partition_delete(catalog *c, const char *database, const char *table,
                             const json_t *values, err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  char t[CATALOG_MAX_NAME + 1];
  if (names2(database, table, db, t, e) != 0)
    return e->code;
  op o = {.fn = op_part_delete, .db = db, .table = t, .values = values};
  return run(c, &o, e);
}

static int op_part_batch_delete(catalog *c, catalog_tx *txn, op *o, err *e)
{
  uint64_t id;
  json_t *t;
  if (table_load(c, txn, o->db, o->table, &id, &t, e) != 0)
    return e->code;
  json_decref(t);
  o->result = json_array();
  size_t i;
  json_t *values;
  json_array_foreach(o->values, i, values)
  {
    err one = {0};
    int rc = part_drop(c, txn, o->db, o->table, values, &one);
    if (fatal(rc)) {
      *e = one;
      return rc;
    }
    if (rc != 0)
      json_array_append_new(o->result, error_entry("PartitionValues", values, &one));
  }
  return 0;
}

int catalog_partition_batch_delete(catalog *c, const char *database, const char *table,
                                   const json_t *values_list, json_t **errors, err *e)
{
  return partition_batch(c, database, table, values_list, CATALOG_MAX_BATCH_DELETE,
                         "partitionsToDelete", op_part_batch_delete, errors, e);
}

/* ---- column statistics ---- */

/* True when the table (or the partition, when not NULL) has the column. */
static bool has_column(const json_t *table, const json_t *part, const char *name)
{
  const json_t *doc = table;
  json_t *own = json_object_get(json_object_get(part, "StorageDescriptor"), "Columns");
  if (part != NULL && json_array_size(own) > 0)
    doc = part;
  json_t *lists[2] = {json_object_get(json_object_get(doc, "StorageDescriptor"), "Columns"),
                      part == NULL ? json_object_get(table, "PartitionKeys") : NULL};
  for (int l = 0; l < 2; l++) {
    size_t i;
    json_t *col;
    json_array_foreach(lists[l], i, col)
    {
      const char *n = json_string_value(json_object_get(col, "Name"));
      if (n != NULL && strcmp(n, name) == 0)
        return true;
    }
  }
  return false;
}

/* Loads the table (its id and document) and, when values, its partition. */
static int stats_target(catalog *c, catalog_tx *txn, const char *db, const char *table,
                        const json_t *values, uint64_t *id, json_t **t, json_t **p, err *e)
{
  *t = NULL;
  *p = NULL;
  if (table_load(c, txn, db, table, id, t, e) != 0)
    return e->code;
  if (values == NULL)
    return 0;
  key k;
  int rc = part_target(c, txn, db, table, values, id, &k, e);
  if (rc == 0) {
    rc = rec_get(txn, CS_PARTITIONS, &k, 0, NULL, p, e);
    if (rc == ERR_ENTITY_NOT_FOUND)
      rc = err_set(e, rc, "Cannot find partition.");
  }
  if (rc != 0)
    *t = (json_decref(*t), NULL);
  return rc;
}

static json_t *stats_error(const char *member, json_t *id, int code, const char *msg)
{
  return json_pack("{s:O, s:{s:s, s:s}}", member, id, "Error", "ErrorCode", err_aws_code(code),
                   "ErrorMessage", msg);
}

static int op_stats_update(catalog *c, catalog_tx *txn, op *o, err *e)
{
  uint64_t id;
  json_t *t;
  json_t *p;
  if (stats_target(c, txn, o->db, o->table, o->values, &id, &t, &p, e) != 0)
    return e->code;
  /* every entry checked before the first write */
  json_t *docs = json_array();
  int rc = 0;
  size_t i;
  json_t *in;
  json_array_foreach(o->input, i, in)
  {
    char where[64];
    snprintf(where, sizeof where, "columnStatisticsList.%zu.member", i + 1);
    json_t *doc;
    if ((rc = catalog__input(SHAPE_COLUMN_STATS, in, where, &doc, e)) != 0)
      break;
    json_array_append_new(docs, doc);
  }
  o->result = json_array();
  json_t *doc;
  json_array_foreach(docs, i, doc)
  {
    if (rc != 0)
      break;
    const char *name = json_string_value(json_object_get(doc, "ColumnName"));
    if (!has_column(t, p, name)) {
      char msg[CATALOG_MAX_NAME + 64];
      snprintf(msg, sizeof msg, "Column %s not found in the %s.", name,
               p != NULL ? "partition" : "table");
      json_array_append_new(o->result, stats_error("ColumnStatistics",
                                                   json_array_get(o->input, i),
                                                   ERR_ENTITY_NOT_FOUND, msg));
      continue;
    }
    key k;
    key_stats(&k, id, o->values, name);
    rc = rec_put(txn, CS_STATS, &k, NULL, doc, e);
  }
  json_decref(docs);
  json_decref(t);
  json_decref(p);
  return rc;
}

int catalog_column_stats_update(catalog *c, const char *database, const char *table,
                                const json_t *values, const json_t *list, json_t **errors,
                                err *e)
{
  *errors = NULL;
  char db[CATALOG_MAX_NAME + 1];
  char t[CATALOG_MAX_NAME + 1];
  if (names2(database, table, db, t, e) != 0)
    return e->code;
  if (!json_is_array(list) || json_array_size(list) == 0 ||
      json_array_size(list) > CATALOG_MAX_STATS_UPDATE)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at "
                   "'columnStatisticsList' failed to satisfy constraint: Member must have "
                   "length between 1 and %d", CATALOG_MAX_STATS_UPDATE);
  op o = {.fn = op_stats_update, .db = db, .table = t, .values = values, .input = list};
  int rc = run(c, &o, e);
  *errors = o.result;
  return rc;
}

int catalog_column_stats_get(catalog *c, const char *database, const char *table,
                             const json_t *values, const json_t *names, json_t **out,
                             json_t **errors, err *e)
{
  *out = NULL;
  *errors = NULL;
  char db[CATALOG_MAX_NAME + 1];
  char t[CATALOG_MAX_NAME + 1];
  if (names2(database, table, db, t, e) != 0)
    return e->code;
  if (!json_is_array(names) || json_array_size(names) == 0 ||
      json_array_size(names) > CATALOG_MAX_STATS_GET)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at 'columnNames' "
                   "failed to satisfy constraint: Member must have length between 1 and %d",
                   CATALOG_MAX_STATS_GET);
  size_t i;
  json_t *n;
  json_array_foreach(names, i, n)
  {
    char folded[CATALOG_MAX_NAME + 1];
    if (catalog__name(json_string_value(n), "columnNames", folded, e) != 0)
      return e->code;
  }
  catalog_tx *txn;
  if (c->side->read_begin(c->impl, &txn, e) != 0)
    return e->code;
  uint64_t id;
  json_t *td;
  json_t *pd;
  int rc = stats_target(c, txn, db, t, values, &id, &td, &pd, e);
  json_decref(td);
  json_decref(pd);
  json_t *found = json_array();
  json_t *missing = json_array();
  json_array_foreach(names, i, n)
  {
    if (rc != 0)
      break;
    key k;
    key_stats(&k, id, values, json_string_value(n));
    json_t *doc;
    rc = rec_get(txn, CS_STATS, &k, 0, NULL, &doc, e);
    if (rc == 0) {
      json_array_append_new(found, doc);
    } else if (rc == ERR_ENTITY_NOT_FOUND) {
      char msg[CATALOG_MAX_NAME + 64];
      snprintf(msg, sizeof msg, "Column statistics for %s not found.", json_string_value(n));
      json_array_append_new(missing, stats_error("ColumnName", n, rc, msg));
      rc = 0;
    }
  }
  c->side->read_end(c->impl, txn);
  if (rc != 0) {
    json_decref(found);
    json_decref(missing);
    return rc;
  }
  *out = found;
  *errors = missing;
  return 0;
}

static int op_stats_delete(catalog *c, catalog_tx *txn, op *o, err *e)
{
  uint64_t id;
  json_t *t;
  json_t *p;
  if (stats_target(c, txn, o->db, o->table, o->values, &id, &t, &p, e) != 0)
    return e->code;
  json_decref(t);
  json_decref(p);
  key k;
  key_stats(&k, id, o->values, o->version);
  json_t *old;
  int rc = rec_get(txn, CS_STATS, &k, 0, NULL, &old, e);
  json_decref(old);
  if (rc == ERR_ENTITY_NOT_FOUND)
    return err_set(e, rc, "Column statistics for %s not found.", o->version);
  if (rc != 0)
    return rc;
  return rec_del(txn, CS_STATS, &k, e);
}

int catalog_column_stats_delete(catalog *c, const char *database, const char *table,
                                const json_t *values, const char *column, err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  char t[CATALOG_MAX_NAME + 1];
  char folded[CATALOG_MAX_NAME + 1];
  if (names2(database, table, db, t, e) != 0 ||
      catalog__name(column, "columnName", folded, e) != 0)
    return e->code;
  op o = {.fn = op_stats_delete, .db = db, .table = t, .values = values, .version = column};
  return run(c, &o, e);
}

/* ---- user-defined functions ---- */

/* A function name from a request: 1..255 bytes of one line. */
static int function_name(const char *name, const char *what, err *e)
{
  char scratch[CATALOG_MAX_NAME + 1];
  return catalog__name(name, what, scratch, e);
}

static int function_load(catalog *c, catalog_tx *txn, const char *db, const char *name,
                         json_t **out, err *e)
{
  key k;
  key_table(&k, db, name);
  int rc = rec_get(txn, CS_FUNCTIONS, &k, 0, NULL, out, e);
  if (rc == ERR_ENTITY_NOT_FOUND)
    return err_set(e, rc, "Function %s not found.", name);
  return rc;
}

/* Writes the function document of a validated input; old: the document it
 * replaces (its CreateTime stays), NULL for a new one. */
static int function_put(catalog *c, catalog_tx *txn, const char *db, json_t *doc, const json_t *old,
                        err *e)
{
  json_object_set_new(doc, "DatabaseName", json_string(db));
  if (old != NULL)
    json_object_set(doc, "CreateTime", json_object_get(old, "CreateTime"));
  else
    json_object_set_new(doc, "CreateTime", json_real(now_seconds()));
  json_object_set_new(doc, "CatalogId", json_string(CATALOG_ID));
  key k;
  key_table(&k, db, json_string_value(json_object_get(doc, "FunctionName")));
  return rec_put(txn, CS_FUNCTIONS, &k, NULL, doc, e);
}

/* Fails when a function of that name is in db. */
static int function_free(catalog *c, catalog_tx *txn, const char *db, const char *name, err *e)
{
  key k;
  key_table(&k, db, name);
  json_t *other;
  int rc = rec_get(txn, CS_FUNCTIONS, &k, 0, NULL, &other, e);
  json_decref(other);
  if (rc == 0)
    return err_set(e, ERR_ALREADY_EXISTS, "Function already exists.");
  return rc == ERR_ENTITY_NOT_FOUND ? 0 : rc;
}

static int op_fn_create(catalog *c, catalog_tx *txn, op *o, err *e)
{
  json_t *d;
  if (db_load(c, txn, o->db, &d, e) != 0)
    return e->code;
  json_decref(d);
  json_t *doc;
  if (catalog__input(SHAPE_FUNCTION, o->input, "functionInput", &doc, e) != 0)
    return e->code;
  int rc = function_free(c, txn, o->db, json_string_value(json_object_get(doc, "FunctionName")),
                         e);
  uint64_t nfn = 0;
  if (rc == 0)
    rc = txn->side->count(txn, CS_FUNCTIONS, &nfn, e);
  if (rc == 0 && nfn >= CATALOG_MAX_FUNCTIONS)
    rc = err_set(e, ERR_RESOURCE_LIMIT, "Number of functions exceeds the limit of %d",
                 CATALOG_MAX_FUNCTIONS);
  if (rc == 0)
    rc = function_put(c, txn, o->db, doc, NULL, e);
  json_decref(doc);
  return rc;
}

int catalog_function_create(catalog *c, const char *database, const json_t *input, err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  if (catalog__name(database, "databaseName", db, e) != 0)
    return e->code;
  op o = {.fn = op_fn_create, .db = db, .input = input};
  return run(c, &o, e);
}

int catalog_function_get(catalog *c, const char *database, const char *name, json_t **out,
                         err *e)
{
  *out = NULL;
  char db[CATALOG_MAX_NAME + 1];
  if (catalog__name(database, "databaseName", db, e) != 0 ||
      function_name(name, "functionName", e) != 0)
    return e->code;
  catalog_tx *txn;
  if (c->side->read_begin(c->impl, &txn, e) != 0)
    return e->code;
  json_t *d;
  int rc = db_load(c, txn, db, &d, e);
  json_decref(d);
  if (rc == 0)
    rc = function_load(c, txn, db, name, out, e);
  c->side->read_end(c->impl, txn);
  return rc;
}

static int op_fn_update(catalog *c, catalog_tx *txn, op *o, err *e)
{
  json_t *old;
  if (function_load(c, txn, o->db, o->table, &old, e) != 0)
    return e->code;
  json_t *doc = NULL;
  int rc = catalog__input(SHAPE_FUNCTION, o->input, "functionInput", &doc, e);
  const char *name = json_string_value(json_object_get(doc, "FunctionName"));
  if (rc == 0 && strcmp(name, o->table) != 0) {
    if ((rc = function_free(c, txn, o->db, name, e)) == 0) {
      key k;
      key_table(&k, o->db, o->table);
      rc = rec_del(txn, CS_FUNCTIONS, &k, e);
    }
  }
  if (rc == 0)
    rc = function_put(c, txn, o->db, doc, old, e);
  json_decref(doc);
  json_decref(old);
  return rc;
}

int catalog_function_update(catalog *c, const char *database, const char *name,
                            const json_t *input, err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  if (catalog__name(database, "databaseName", db, e) != 0 ||
      function_name(name, "functionName", e) != 0)
    return e->code;
  op o = {.fn = op_fn_update, .db = db, .table = name, .input = input};
  return run(c, &o, e);
}

static int op_fn_delete(catalog *c, catalog_tx *txn, op *o, err *e)
{
  json_t *old;
  if (function_load(c, txn, o->db, o->table, &old, e) != 0)
    return e->code;
  json_decref(old);
  key k;
  key_table(&k, o->db, o->table);
  return rec_del(txn, CS_FUNCTIONS, &k, e);
}

int catalog_function_delete(catalog *c, const char *database, const char *name, err *e)
{
  char db[CATALOG_MAX_NAME + 1];
  if (catalog__name(database, "databaseName", db, e) != 0 ||
      function_name(name, "functionName", e) != 0)
    return e->code;
  op o = {.fn = op_fn_delete, .db = db, .table = name};
  return run(c, &o, e);
}

static bool function_filter(const void *ctx, const json_t *doc, const unsigned char *k, size_t kn)
{
  (void)k;
  (void)kn;
  return doc == NULL ||
         catalog__pattern_match(ctx, json_string_value(json_object_get(doc, "FunctionName")));
}

int catalog_function_list(catalog *c, const char *database, const char *pattern,
                          const char *token, size_t max, json_t **out, char **next, err *e)
{
  *out = NULL;
  *next = NULL;
  char db[CATALOG_MAX_NAME + 1] = "";
  size_t plen = 0;
  if (database != NULL) {
    json_t *d;
    if (catalog__name(database, "databaseName", db, e) != 0 ||
        catalog_database_get(c, db, &d, e) != 0)
      return e->code;
    json_decref(d);
    plen = strlen(db) + 1;
  }
  catalog_pattern *p = NULL;
  if (pattern != NULL && pattern[0] != '\0' && catalog__pattern_compile(pattern, &p, e) != 0)
    return e->code;
  if (max == 0 || max > CATALOG_MAX_PAGE_FUNCTIONS)
    max = CATALOG_MAX_PAGE_FUNCTIONS;
  int rc = scan(c, CS_FUNCTIONS, db, plen, 0, token, max, p != NULL ? function_filter : NULL, p,
                out, next, e);
  catalog__pattern_free(p);
  return rc;
}

/* ---- open, close ---- */

/* ---- crawler records ---- */

static int crawler_key(const char *name, key *k, err *e)
{
  size_t n = strlen(name);
  if (n == 0 || n > CATALOG_MAX_NAME)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at 'name' failed "
                   "to satisfy constraint: Member must have length between 1 and %d",
                   CATALOG_MAX_NAME);
  memcpy(k->b, name, n);
  k->n = n;
  return 0;
}

static int op_crawler_put(catalog *c, catalog_tx *txn, op *o, err *e)
{
  key k;
  if (crawler_key(o->db, &k, e) != 0)
    return e->code;
  json_t *old = NULL;
  int rc = rec_get(txn, CS_CRAWLERS, &k, 0, NULL, &old, e);
  const char *state = json_string_value(json_object_get(old, "State"));
  bool ready = state == NULL || strcmp(state, "READY") == 0;
  const char *node = json_string_value(json_object_get(old, "_node"));
  const char *mine = json_string_value(json_object_get(o->input, "_node"));
  bool owned = !ready && node != NULL && mine != NULL && strcmp(node, mine) == 0;
  json_int_t lease = json_integer_value(json_object_get(old, "_lease_ms"));
  if (rc != 0 && rc != ERR_ENTITY_NOT_FOUND) {
    json_decref(old);
    return rc;
  }
  if (rc == 0 && o->mode == CATALOG_PUT_CREATE)
    rc = err_set(e, ERR_ALREADY_EXISTS, "%s already exists", o->db);
  else if (rc == ERR_ENTITY_NOT_FOUND && o->mode != CATALOG_PUT_CREATE)
    rc = ERR_ENTITY_NOT_FOUND;
  else if ((o->mode == CATALOG_PUT_CLAIM && !ready) ||
           ((o->mode == CATALOG_PUT_RENEW || o->mode == CATALOG_PUT_OWNED) && !owned) ||
           (o->mode == CATALOG_PUT_EXPIRE && (ready || lease >= time_now_ms())))
    rc = ERR_CONFLICT;
  else if (o->mode == CATALOG_PUT_RENEW) { /* the stored document, its lease extended */
    json_object_set(old, "_lease_ms", json_object_get(o->input, "_lease_ms"));
    rc = rec_put(txn, CS_CRAWLERS, &k, NULL, old, e);
  } else
    rc = rec_put(txn, CS_CRAWLERS, &k, NULL, o->input, e);
  json_decref(old);
  return rc;
}

int catalog_crawler_put(catalog *c, const char *name, const json_t *doc, enum catalog_put mode,
                        err *e)
{
  op o = {.fn = op_crawler_put, .db = name, .input = doc, .mode = (int)mode};
  return run(c, &o, e);
}

int catalog_crawler_get(catalog *c, const char *name, json_t **out, err *e)
{
  key k;
  *out = NULL;
  if (crawler_key(name, &k, e) != 0)
    return e->code;
  catalog_tx *txn;
  if (c->side->read_begin(c->impl, &txn, e) != 0)
    return e->code;
  int rc = rec_get(txn, CS_CRAWLERS, &k, 0, NULL, out, e);
  c->side->read_end(c->impl, txn);
  return rc;
}

int catalog_crawler_list(catalog *c, const char *token, size_t max, json_t **out, char **next,
                         err *e)
{
  if (max == 0 || max > 1000)
    max = 1000;
  return scan(c, CS_CRAWLERS, "", 0, 0, token, max, NULL, NULL, out, next, e);
}

static int op_crawler_delete(catalog *c, catalog_tx *txn, op *o, err *e)
{
  key k;
  if (crawler_key(o->db, &k, e) != 0)
    return e->code;
  return txn->side->del(txn, CS_CRAWLERS, k.b, k.n, e);
}

int catalog_crawler_delete(catalog *c, const char *name, err *e)
{
  op o = {.fn = op_crawler_delete, .db = name};
  return run(c, &o, e);
}

static int op_seed(catalog *c, catalog_tx *txn, op *o, err *e)
{
  (void)o;
  key k;
  k.n = 6;
  memcpy(k.b, "seeded", 6);
  const unsigned char *v;
  size_t vn;
  int rc = txn->side->get(txn, CS_META, k.b, k.n, &v, &vn, e);
  if (rc == 0)
    return 0;
  if (rc != ERR_ENTITY_NOT_FOUND)
    return rc;
  if ((rc = txn->side->put(txn, CS_META, k.b, k.n, "", 0, e)) != 0)
    return rc;
  json_t *in = json_pack("{s:s, s:s}", "Name", CATALOG_DEFAULT_DATABASE, "Description",
                         "Default Hive database");
  op create = {.input = in};
  rc = op_db_create(c, txn, &create, e);
  json_decref(create.result);
  json_decref(in);
  return rc == ERR_ALREADY_EXISTS ? 0 : rc;
}

/* Seeds the database "default" once over a side just opened. */
static int open_side(const catalog_side *side, void *impl, catalog **out, err *e)
{
  catalog *c = xcalloc(1, sizeof *c);
  c->side = side;
  c->impl = impl;
  op o = {.fn = op_seed};
  int rc = run(c, &o, e);
  if (rc != 0) {
    catalog_close(c);
    return rc;
  }
  *out = c;
  return 0;
}

int catalog_open(const char *data_dir, catalog **out, err *e)
{
  *out = NULL;
  const catalog_side *side;
  void *impl;
  if (catalog__lmdb_open(data_dir, &side, &impl, e) != 0)
    return e->code;
  return open_side(side, impl, out, e);
}

int catalog_open_pg(struct pg_pool *pool, catalog **out, err *e)
{
  *out = NULL;
  const catalog_side *side;
  void *impl;
  if (catalog__pg_open(pool, &side, &impl, e) != 0)
    return e->code;
  return open_side(side, impl, out, e);
}

bool catalog_shared(const catalog *c)
{
  return c->side != NULL && c->side->shared;
}

catalog *catalog_close(catalog *c)
{
  if (c == NULL)
    return NULL;
  c->side->close(c->impl);
  free(c);
  return NULL;
}
