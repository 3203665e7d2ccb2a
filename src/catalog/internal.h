/* catalog/internal.h -- what the catalog's files share; not for other parts. */
#ifndef TARN_CATALOG_INTERNAL_H
#define TARN_CATALOG_INTERNAL_H

#include "catalog/catalog.h"

#include <stdint.h>

/* The shapes of Glue's inputs (input.c). */
enum catalog_shape { SHAPE_DATABASE, SHAPE_TABLE, SHAPE_PARTITION, SHAPE_COLUMN_STATS,
                   SHAPE_FUNCTION };

/* Validates input against shape and returns a new document holding only
 * the shape's members (*out), or ERR_INVALID_INPUT naming the member
 * (where: "databaseInput", "tableInput", "partitionInput", or a column
 * statistic's path "columnStatisticsList.1.member"). */
int catalog__input(enum catalog_shape shape, const json_t *input, const char *where,
                   json_t **out, err *e);

/* Checks a database or table name (1..255 bytes, printable) and writes its
 * folded (lower-case) form to out. what names it in messages. */
int catalog__name(const char *name, const char *what, char out[CATALOG_MAX_NAME + 1], err *e);

/* Checks a partition's values against the table's partition keys. */
int catalog__values(const json_t *values, const json_t *table, const char *what, err *e);

/* Glue's table-name Expression as a compiled regular expression. */
typedef struct catalog_pattern catalog_pattern;
int catalog__pattern_compile(const char *text, catalog_pattern **out, err *e);
bool catalog__pattern_match(const catalog_pattern *p, const char *name);
catalog_pattern *catalog__pattern_free(catalog_pattern *p);

/* ---- the store's two sides ----
 * store.c keeps the catalog's logic (checks, key folding, ids, counters,
 * paging) over ordered key-value spaces; a side keeps the spaces:
 * lmdb_store.c in DATA/catalog (named databases of one LMDB environment),
 * pg_store.c in PostgreSQL (one table per space, shared by several nodes).
 * Keys compare as bytes (memcmp, then the shorter first) on both sides, so
 * listings and their tokens are the same on both.
 *
 * A write runs fn inside one transaction of the side (LMDB: one change of
 * the group committer; PostgreSQL: one transaction under the catalog's
 * write lock, run again when the connection is lost before COMMIT, so fn
 * must only depend on what it reads through tx). fn's failure rolls everything back. A read sees one
 * snapshot between read_begin and read_end. */
enum catalog_space { CS_DATABASES, CS_TABLES, CS_PARTITIONS, CS_META, CS_CRAWLERS, CS_STATS,
                     CS_FUNCTIONS, CS_COUNT };

typedef struct catalog_side catalog_side;
/* One transaction of a side; each side's own struct starts with this. */
typedef struct catalog_tx {
  const catalog_side *side;
} catalog_tx;

/* A record met by scan (borrowed during the call): 0 goes on, 1 stops,
 * a negative code stops and is returned. */
typedef int (*catalog_visit)(void *ctx, const unsigned char *k, size_t kn,
                             const unsigned char *v, size_t vn, err *e);

struct catalog_side {
  /* *v borrowed until the next call on tx; ERR_ENTITY_NOT_FOUND (no
   * message) when absent. */
  int (*get)(catalog_tx *tx, int space, const void *k, size_t kn, const unsigned char **v,
             size_t *vn, err *e);
  int (*put)(catalog_tx *tx, int space, const void *k, size_t kn, const void *v, size_t vn,
             err *e);
  /* ERR_ENTITY_NOT_FOUND (no message) when absent. */
  int (*del)(catalog_tx *tx, int space, const void *k, size_t kn, err *e);
  /* Deletes every record whose key starts with prefix. */
  int (*drop_prefix)(catalog_tx *tx, int space, const void *prefix, size_t plen, err *e);
  int (*count)(catalog_tx *tx, int space, uint64_t *n, err *e);
  /* Visits in key order the records whose keys start with prefix, from
   * from (from after it when after) on. */
  int (*scan)(catalog_tx *tx, int space, const void *prefix, size_t plen, const void *from,
              size_t fn, bool after, catalog_visit visit, void *ctx, err *e);
  int (*read_begin)(void *impl, catalog_tx **tx, err *e);
  void (*read_end)(void *impl, catalog_tx *tx);
  int (*write)(void *impl, int (*fn)(catalog_tx *tx, void *arg, err *e), void *arg, err *e);
  void (*close)(void *impl);
  bool shared; /* other nodes share the spaces */
};

int catalog__lmdb_open(const char *data_dir, const catalog_side **side, void **impl, err *e);
struct pg_pool;
int catalog__pg_open(struct pg_pool *pool, const catalog_side **side, void **impl, err *e);

#endif
