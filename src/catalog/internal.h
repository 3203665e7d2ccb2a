/* catalog/internal.h -- what the catalog's files share; not for other parts. */
#ifndef TARN_CATALOG_INTERNAL_H
#define TARN_CATALOG_INTERNAL_H

#include "catalog/catalog.h"

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

#endif
