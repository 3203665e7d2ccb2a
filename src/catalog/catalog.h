/* catalog/catalog.h -- the lake's table catalog (the AWS Glue Data Catalog's
 * model): databases, their tables (columns, partition keys, storage
 * descriptor with location, formats and SerDe), and the tables' partitions.
 *
 * Documents. Every database, table and partition is kept and returned as
 * its Glue JSON document (jansson), in Glue's member names, so the Glue API
 * (api/glue.c) answers with them unchanged and the SQL side reads them
 * through the typed accessors at the end of this header:
 *
 *   database  {Name, Description, LocationUri, Parameters{}, CreateTime,
 *              CatalogId}
 *   table     {Name, DatabaseName, Description, Owner, CreateTime,
 *              UpdateTime, LastAccessTime, Retention, TableType,
 *              Parameters{}, PartitionKeys[{Name, Type, Comment,
 *              Parameters}], StorageDescriptor, ViewOriginalText,
 *              ViewExpandedText, CreatedBy, IsRegisteredWithLakeFormation,
 *              CatalogId, VersionId}
 *   partition {Values[], DatabaseName, TableName, CreationTime,
 *              LastAccessTime, StorageDescriptor, Parameters{}, CatalogId}
 *   StorageDescriptor {Columns[{Name, Type, Comment, Parameters}], Location,
 *              InputFormat, OutputFormat, Compressed, NumberOfBuckets,
 *              SerdeInfo{Name, SerializationLibrary, Parameters{}},
 *              BucketColumns[], SortColumns[{Column, SortOrder}],
 *              Parameters{}, StoredAsSubDirectories, SkewedInfo,
 *              AdditionalLocations[]}
 *
 * Inputs are Glue's *Input shapes (DatabaseInput, TableInput,
 * PartitionInput): validated member by member against Glue's documented
 * types and limits (names 255 characters, descriptions 2048, ...); a bad
 * input is ERR_INVALID_INPUT with a message naming the member, and changes
 * nothing. Members outside the shape are dropped. Times are set by the
 * catalog (epoch seconds, numbers as Glue's JSON carries them).
 *
 * Names. Database and table names are folded to lower case when stored and
 * looked up (Glue does so for Hive compatibility): "Sales" and "sales" are
 * one table. A name is 1..255 bytes of printable text without '\0'. Column
 * names, types, values and parameters are kept exactly as given.
 * The database "default" (CATALOG_DEFAULT_DATABASE) is created on the first
 * open, as Athena finds it in an account; it may be deleted like any other.
 *
 * Errors (base/err.h): ERR_ENTITY_NOT_FOUND (database, table or partition
 * missing), ERR_ALREADY_EXISTS, ERR_INVALID_INPUT (bad input, bad paging
 * token, bad expression), ERR_RESOURCE_LIMIT (a quota below), ERR_IO /
 * ERR_NO_SPACE (storage). Messages read like Glue's:
 * "Database sales not found.", "Table clicks already exists.".
 *
 * Durability and threads: state is an LMDB environment in DATA/catalog
 * (catalog_open), or PostgreSQL tables shared by several nodes
 * (catalog_open_pg, `--metadata`; no cache: every call reads the database).
 * Every write returns only after its one commit (it survives kill -9);
 * a call that fails changed nothing (a batch call commits the entries that
 * succeeded, in one commit, and reports the others). Every function is safe
 * to call from many threads at once; writes are serialised through one
 * group committer; readers never wait for a commit.
 *
 * Ownership: every json_t ** result is a new reference (json_decref); every
 * char ** result is xmalloc'd (free). Inputs are borrowed and not changed.
 */
#ifndef TARN_CATALOG_CATALOG_H
#define TARN_CATALOG_CATALOG_H

#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CATALOG_ID "000000000000"             /* CatalogId: the account */
#define CATALOG_DEFAULT_DATABASE "default"

/* Glue's documented limits on one member. */
#define CATALOG_MAX_NAME 255          /* database, table, column, partition key names */
#define CATALOG_MAX_DESCRIPTION 2048
#define CATALOG_MAX_LOCATION_URI 1024 /* DatabaseInput.LocationUri */
#define CATALOG_MAX_LOCATION 2056     /* StorageDescriptor.Location */
#define CATALOG_MAX_FORMAT 128        /* InputFormat, OutputFormat */
#define CATALOG_MAX_TYPE 131072       /* a column's Type */
#define CATALOG_MAX_COMMENT 255       /* a column's Comment */
#define CATALOG_MAX_PARAM_KEY 255     /* a Parameters key */
#define CATALOG_MAX_PARAM_VALUE 512000 /* a Parameters value */
#define CATALOG_MAX_VALUE 1024        /* one partition value */
#define CATALOG_MAX_VIEW_TEXT 409600  /* ViewOriginalText, ViewExpandedText */
#define CATALOG_MAX_EXPRESSION 2048   /* GetPartitions Expression */
/* Sizes of one document and of its arrays (tarn's; Glue has none lower). */
#define CATALOG_MAX_DOCUMENT (4u << 20) /* bytes of one stored JSON document */
#define CATALOG_MAX_COLUMNS 10000     /* Columns, PartitionKeys */
#define CATALOG_MAX_PARAMS 1000       /* entries of one Parameters map */
/* Batches (Glue's). */
#define CATALOG_MAX_BATCH_CREATE 100  /* BatchCreatePartition */
#define CATALOG_MAX_BATCH_DELETE 25   /* BatchDeletePartition */
#define CATALOG_MAX_BATCH_GET 1000    /* BatchGetPartition */
#define CATALOG_MAX_BATCH_TABLES 100  /* BatchDeleteTable */
#define CATALOG_MAX_BATCH_UPDATE 100  /* BatchUpdatePartition */
#define CATALOG_MAX_STATS_GET 100     /* GetColumnStatisticsFor*: ColumnNames */
#define CATALOG_MAX_STATS_UPDATE 25   /* UpdateColumnStatisticsFor*: ColumnStatisticsList */
/* Pages (Glue's MaxResults). 0 as max means the largest. A page also ends
 * early, with a next token, once it holds 16 MiB of documents. */
#define CATALOG_MAX_PAGE_DATABASES 100
#define CATALOG_MAX_PAGE_TABLES 100
#define CATALOG_MAX_PAGE_PARTITIONS 1000
/* Quotas (Glue's defaults): ERR_RESOURCE_LIMIT beyond them. */
#define CATALOG_MAX_DATABASES 10000
#define CATALOG_MAX_TABLES 200000     /* per database */
#define CATALOG_MAX_PARTITIONS 10000000 /* per table */

typedef struct catalog catalog;
struct pg_pool;

/* Opens (creating) DATA/catalog, and the database "default" on first open. */
int catalog_open(const char *data_dir, catalog **out, err *e);
/* The same in PostgreSQL (base/pg.h; the pool outlives the catalog): the
 * tables catalog_* are created when missing; every node opened over the
 * same database sees the same catalog. */
int catalog_open_pg(struct pg_pool *pool, catalog **out, err *e);
/* True when other nodes share this catalog (catalog_open_pg). */
bool catalog_shared(const catalog *c);
/* Waits for writes in flight. Accepts NULL; returns NULL. */
catalog *catalog_close(catalog *c);

/* ---- databases ---- */

/* input: a DatabaseInput {Name, Description, LocationUri, Parameters, ...}.
 * ERR_ALREADY_EXISTS when the name is taken. *out (may be NULL): the new
 * database document. */
int catalog_database_create(catalog *c, const json_t *input, json_t **out, err *e);
int catalog_database_get(catalog *c, const char *name, json_t **out, err *e);
/* One page of databases in name order: *out a new array of at most max
 * (0: CATALOG_MAX_PAGE_DATABASES) documents; *next the token of the next
 * page, NULL after the last. token NULL or "" starts at the first. */
int catalog_database_list(catalog *c, const char *token, size_t max, json_t **out, char **next,
                          err *e);
/* Replaces the definition (Description, LocationUri, Parameters) of
 * database name with input; CreateTime stays. input's Name must fold to
 * name (a database cannot be renamed): ERR_INVALID_INPUT otherwise. */
int catalog_database_update(catalog *c, const char *name, const json_t *input, err *e);
/* Deletes the database with all its tables and their partitions, in one
 * commit. */
int catalog_database_delete(catalog *c, const char *name, err *e);

/* ---- tables ---- */

/* input: a TableInput {Name, Description, Owner, Retention, TableType,
 * Parameters, PartitionKeys, StorageDescriptor, ViewOriginalText, ...}.
 * ERR_ENTITY_NOT_FOUND for a missing database. */
int catalog_table_create(catalog *c, const char *database, const json_t *input, json_t **out,
                         err *e);
int catalog_table_get(catalog *c, const char *database, const char *name, json_t **out, err *e);
/* One page of the database's tables in name order (same paging as
 * databases, max 0: CATALOG_MAX_PAGE_TABLES). pattern (NULL or "": all) is
 * Glue's table-name Expression: a regular expression (PCRE) matched against
 * the whole name, case-insensitively, where '*' not after '.' means any run
 * ("sales*", "sales_.*|clicks"). ERR_INVALID_INPUT for a bad pattern. */
int catalog_table_list(catalog *c, const char *database, const char *pattern, const char *token,
                       size_t max, json_t **out, char **next, err *e);
/* Replaces the table named by input's Name with input (CreateTime stays,
 * UpdateTime moves, VersionId grows); its partitions stay. */
int catalog_table_update(catalog *c, const char *database, const json_t *input, err *e);
/* The same, only while the table's VersionId is version (NULL: any): else
 * ERR_CONFLICT (Glue's ConcurrentModificationException), and nothing
 * changes. Optimistic writers (Iceberg's GlueCatalog) read the table, then
 * update it at the version they read. */
int catalog_table_update_at(catalog *c, const char *database, const json_t *input,
                            const char *version, err *e);
/* Deletes the table and its partitions, in one commit. */
int catalog_table_delete(catalog *c, const char *database, const char *name, err *e);
/* names: an array of table names (at most CATALOG_MAX_BATCH_TABLES). Deletes
 * those that exist, in one commit; *errors a new array of
 * {TableName, ErrorDetail{ErrorCode, ErrorMessage}} for the others. */
int catalog_table_batch_delete(catalog *c, const char *database, const json_t *names,
                               json_t **errors, err *e);

/* ---- partitions ----
 * A partition is named by its values: a JSON array of strings, one per
 * partition key of its table, in the keys' order (["2024", "01"]). */

/* input: a PartitionInput {Values, StorageDescriptor, Parameters,
 * LastAccessTime}. ERR_INVALID_INPUT when the values' count differs from
 * the table's partition keys. */
int catalog_partition_create(catalog *c, const char *database, const char *table,
                             const json_t *input, err *e);
/* inputs: an array of PartitionInput (at most CATALOG_MAX_BATCH_CREATE).
 * Creates the valid new ones in one commit; *errors a new array of
 * {PartitionValues, ErrorDetail{ErrorCode, ErrorMessage}} for the others
 * (AlreadyExistsException, InvalidInputException). The call itself fails
 * only for a missing database or table or a bad array. */
int catalog_partition_batch_create(catalog *c, const char *database, const char *table,
                                   const json_t *inputs, json_t **errors, err *e);
int catalog_partition_get(catalog *c, const char *database, const char *table,
                          const json_t *values, json_t **out, err *e);
/* Replaces the partition named by values with input (whose Values may name
 * it anew, when free). */
int catalog_partition_update(catalog *c, const char *database, const char *table,
                             const json_t *values, const json_t *input, err *e);
/* One page of the table's partitions in values order (max 0:
 * CATALOG_MAX_PAGE_PARTITIONS), those matching expression (NULL or "": all;
 * the grammar of catalog_expr_parse). */
int catalog_partition_list(catalog *c, const char *database, const char *table,
                           const char *expression, const char *token, size_t max, json_t **out,
                           char **next, err *e);
/* The same over one segment of the partitions (Glue's Segment: readers
 * page through segment 0..total-1 in parallel): a partition is in exactly
 * one segment of total, chosen by a hash of its values, so the segments'
 * union is every partition, each once. total 0 or 1: all; total at most
 * CATALOG_MAX_SEGMENTS, segment below total (ERR_INVALID_INPUT otherwise).
 * A page token belongs to its segment. */
#define CATALOG_MAX_SEGMENTS 10
int catalog_partition_list_segment(catalog *c, const char *database, const char *table,
                                   const char *expression, int segment, int total,
                                   const char *token, size_t max, json_t **out, char **next,
                                   err *e);
/* values_list: an array of values arrays (at most CATALOG_MAX_BATCH_GET).
 * *out a new array of the partitions found (missing ones are left out);
 * *unprocessed a new array of {Values} not read (empty: tarn reads all). */
int catalog_partition_batch_get(catalog *c, const char *database, const char *table,
                                const json_t *values_list, json_t **out, json_t **unprocessed,
                                err *e);
/* entries: an array of {PartitionValueList, PartitionInput} (1 to
 * CATALOG_MAX_BATCH_UPDATE), each as catalog_partition_update. Applies the
 * valid ones in one commit; *errors a new array of {PartitionValueList,
 * ErrorDetail{ErrorCode, ErrorMessage}} for the others. */
int catalog_partition_batch_update(catalog *c, const char *database, const char *table,
                                   const json_t *entries, json_t **errors, err *e);
int catalog_partition_delete(catalog *c, const char *database, const char *table,
                             const json_t *values, err *e);
/* values_list: at most CATALOG_MAX_BATCH_DELETE values arrays. Deletes those
 * that exist in one commit; *errors as for batch_create
 * (EntityNotFoundException for a missing one). */
int catalog_partition_batch_delete(catalog *c, const char *database, const char *table,
                                   const json_t *values_list, json_t **errors, err *e);

/* ---- column statistics ----
 * A table's, or one partition's (values not NULL), statistics per column,
 * as Glue's ColumnStatistics documents {ColumnName, ColumnType,
 * AnalyzedTime, StatisticsData{Type, <Type>ColumnStatisticsData}} kept as
 * given. A table's columns are its data columns and partition keys; a
 * partition's, its own data columns (the table's when it has none).
 * Statistics go with their table or partition (deleted, or renamed by an
 * update of its values). ERR_ENTITY_NOT_FOUND for a missing table or
 * partition. */

/* list: 1 to CATALOG_MAX_STATS_UPDATE ColumnStatistics. A bad member fails
 * the call (ERR_INVALID_INPUT, nothing written); a column the table or
 * partition lacks is left out and reported in *errors, a new array of
 * {ColumnStatistics, Error{ErrorCode, ErrorMessage}}; the others are
 * written, replacing earlier ones, in one commit. */
int catalog_column_stats_update(catalog *c, const char *database, const char *table,
                                const json_t *values, const json_t *list, json_t **errors,
                                err *e);
/* names: 1 to CATALOG_MAX_STATS_GET column names. *out a new array of the
 * statistics found, *errors a new array of {ColumnName, Error{ErrorCode,
 * ErrorMessage}} for the names without (EntityNotFoundException). */
int catalog_column_stats_get(catalog *c, const char *database, const char *table,
                             const json_t *values, const json_t *names, json_t **out,
                             json_t **errors, err *e);
/* ERR_ENTITY_NOT_FOUND when the column has no statistics. */
int catalog_column_stats_delete(catalog *c, const char *database, const char *table,
                                const json_t *values, const char *column, err *e);

/* ---- user-defined functions ----
 * Glue's UserDefinedFunction documents {FunctionName, DatabaseName,
 * ClassName, OwnerName, OwnerType, CreateTime, ResourceUris[{ResourceType,
 * Uri}], CatalogId}, per database, from a UserDefinedFunctionInput
 * {FunctionName, ClassName, OwnerName, OwnerType (USER, ROLE, GROUP),
 * ResourceUris (at most 1000 of {ResourceType (JAR, FILE, ARCHIVE), Uri})}.
 * Function names are kept exactly (case-sensitive); a database's functions
 * go with it. ERR_ENTITY_NOT_FOUND for a missing database or function. */
#define CATALOG_MAX_FUNCTIONS 100000    /* in the catalog (tarn's) */
#define CATALOG_MAX_PAGE_FUNCTIONS 100

int catalog_function_create(catalog *c, const char *database, const json_t *input, err *e);
int catalog_function_get(catalog *c, const char *database, const char *name, json_t **out,
                         err *e);
/* Replaces function name with input; input's FunctionName may name it anew
 * (ERR_ALREADY_EXISTS when taken). CreateTime stays. */
int catalog_function_update(catalog *c, const char *database, const char *name,
                            const json_t *input, err *e);
int catalog_function_delete(catalog *c, const char *database, const char *name, err *e);
/* One page of functions in (database, name) order: database's, or every
 * database's when NULL; pattern (NULL or "": all) as catalog_table_list's. */
int catalog_function_list(catalog *c, const char *database, const char *pattern,
                          const char *token, size_t max, json_t **out, char **next, err *e);

/* ---- partition predicates (expr.c) ----
 * The Expression of GetPartitions, as Glue and Athena accept it: comparisons
 * of a partition key with a literal (=, <>, !=, <, >, <=, >=), IN (...),
 * NOT IN, BETWEEN a AND b, LIKE 'pat%' ('%' any run, '_' one character),
 * IS [NOT] NULL, combined with AND, OR, NOT and parentheses. Literals:
 * 'single-quoted' strings ('' for a quote) and numbers. Keys compare by
 * their declared type: numeric types (tinyint, smallint, int, integer,
 * bigint, long, float, double, decimal) as numbers, everything else (string,
 * varchar, char, date, timestamp) as text. Key names are case-insensitive;
 * an unknown key, a non-numeric literal against a numeric key, or a syntax
 * error is ERR_INVALID_INPUT naming the offending text. */
typedef struct catalog_expr catalog_expr;

/* keys: the table's PartitionKeys array (borrowed during the call only). */
int catalog_expr_parse(const char *text, const json_t *keys, catalog_expr **out, err *e);
/* values: a partition's Values array. A value that does not parse as a
 * number under a numeric key matches no comparison on that key. */
bool catalog_expr_match(const catalog_expr *x, const json_t *values);
/* Accepts NULL; returns NULL. */
catalog_expr *catalog_expr_free(catalog_expr *x);

/* ---- typed accessors for readers of documents (accessors.c) ----
 * All results are borrowed from the document (valid while it lives);
 * missing members read as NULL / 0 / false. */

typedef struct catalog_column {
  const char *name;     /* Name */
  const char *type;     /* Type: a Hive type string ("string", "bigint",
                           "decimal(10,2)", "array<string>"), NULL if none */
  const char *comment;  /* Comment, NULL if none */
} catalog_column;

typedef enum catalog_format {
  CATALOG_FORMAT_UNKNOWN = 0,
  CATALOG_FORMAT_CSV,     /* LazySimpleSerDe, OpenCSVSerde, TextInputFormat, "csv" */
  CATALOG_FORMAT_JSON,    /* JsonSerDe (hive or openx), "json" */
  CATALOG_FORMAT_PARQUET, /* ParquetHiveSerDe, MapredParquetInputFormat, "parquet" */
  CATALOG_FORMAT_ORC,
  CATALOG_FORMAT_AVRO
} catalog_format;

typedef struct catalog_storage {
  const char *location;       /* StorageDescriptor.Location */
  const char *input_format;   /* InputFormat */
  const char *output_format;  /* OutputFormat */
  const char *serde;          /* SerdeInfo.SerializationLibrary */
  catalog_format format;      /* from serde, then input format, then the
                                 table's "classification" parameter */
  const char *field_delim;    /* SerDe field.delim, else separatorChar
                                 (OpenCSVSerde); NULL: the format's default */
  const char *quote_char;     /* SerDe quoteChar (OpenCSVSerde) */
  const char *escape_char;    /* SerDe escape.delim or escapeChar */
  const char *null_format;    /* SerDe serialization.null.format */
  long skip_header_lines;     /* Parameters skip.header.line.count */
  bool compressed;            /* Compressed */
} catalog_storage;

/* The storage of a table or a partition document. A partition's storage
 * often names only its Location: fill from the table first, then call with
 * the partition and keep the table's members where the partition's are
 * NULL (catalog_storage_of overwrites only members the document has). */
void catalog_storage_of(const json_t *doc, catalog_storage *out);
/* The data columns (StorageDescriptor.Columns) of a table or partition:
 * fills at most max of out, returns how many there are. */
size_t catalog_columns(const json_t *doc, catalog_column *out, size_t max);
/* The table's PartitionKeys, the same way. */
size_t catalog_partition_keys(const json_t *table, catalog_column *out, size_t max);
/* A member of the document's Parameters (table, database or partition). */
const char *catalog_param(const json_t *doc, const char *key);
/* A partition's values: fills at most max, returns how many. */
size_t catalog_partition_values(const json_t *partition, const char **out, size_t max);
/* True when the Hive type compares as a number (see catalog_expr_parse). */
bool catalog_type_numeric(const char *hive_type);

/* ---- documents for writers (docs.c) ---- */

#define CATALOG_HIVE_NULL "__HIVE_DEFAULT_PARTITION__" /* a NULL partition value */

/* A StorageDescriptor (new reference) for format "parquet", "json" or
 * "csv" (LazySimpleSerDe with field_delim, NULL: ",") over columns
 * (stolen), as Athena and Glue's crawlers write them. */
json_t *catalog_storage_new(const char *format, const char *location, json_t *columns,
                            const char *field_delim);
/* A Values array (new reference); a NULL value is CATALOG_HIVE_NULL. */
json_t *catalog_values_new(const char **vals, size_t n);
/* A PartitionInput (new reference): values (NULL = Hive's default
 * partition), its location, the table's StorageDescriptor copied. */
json_t *catalog_partition_input(const char **vals, size_t n, const char *location,
                                const json_t *table_sd);
/* Creates the partitions of inputs in batches of CATALOG_MAX_BATCH_CREATE;
 * existing ones are skipped when skip_existing, else ERR_ALREADY_EXISTS.
 * *added: how many were new. */
int catalog_partitions_add(catalog *c, const char *db, const char *table, json_t *inputs,
                           bool skip_existing, size_t *added, err *e);
/* A Hive folder name's value p[0..n) with %XX escapes decoded (xmalloc'd). */
char *catalog_hive_unescape(const char *p, size_t n);

/* ---- crawler records (store.c) ----
 * The crawlers' definitions and state (catalog/crawler.h keeps them), one
 * JSON document per crawler name (case-sensitive, 1..255 bytes), in the
 * same environment and with the same durability as the rest. */
enum catalog_put { CATALOG_PUT_CREATE, CATALOG_PUT_REPLACE, CATALOG_PUT_CLAIM,
                   CATALOG_PUT_RENEW, CATALOG_PUT_OWNED, CATALOG_PUT_EXPIRE };
/* CREATE: ERR_ALREADY_EXISTS when the name is taken; REPLACE:
 * ERR_ENTITY_NOT_FOUND when it is not; CLAIM: as REPLACE, and ERR_CONFLICT
 * (without a message) unless the stored document's State is READY (or
 * absent): one caller, of all nodes sharing the catalog, wins a crawl.
 * The modes of a claimed crawl's lease (ERR_CONFLICT, no message, when
 * they do not apply): RENEW sets only "_lease_ms" (epoch ms) of the stored
 * document from doc's, OWNED replaces it; both only while it is not READY
 * and its "_node" is doc's. EXPIRE replaces it only while it is not READY
 * and its "_lease_ms" (absent: 0) is in the past. */
int catalog_crawler_put(catalog *c, const char *name, const json_t *doc, enum catalog_put mode,
                        err *e);
/* ERR_ENTITY_NOT_FOUND (without a message) when missing. */
int catalog_crawler_get(catalog *c, const char *name, json_t **out, err *e);
/* One page of crawler documents in name order (max 0: 1000). */
int catalog_crawler_list(catalog *c, const char *token, size_t max, json_t **out, char **next,
                         err *e);
/* ERR_ENTITY_NOT_FOUND (without a message) when missing. */
int catalog_crawler_delete(catalog *c, const char *name, err *e);

#endif
