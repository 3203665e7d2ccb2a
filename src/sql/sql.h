/* sql/sql.h -- the SQL engine's one public API: run a statement over the
 * objects in the store and stream its result to a sink (DESIGN.md §7).
 *
 * The engine has no HTTP in it. POST /_tarn/sql and `tarn sql` call
 * sql_run() and write the rows they receive in CSV, JSON lines or JSON with
 * the formatting helpers below, so they never see the engine's internals.
 *
 * Tables are globs of objects:
 *   SELECT ... FROM 's3://bucket/prefix/' '*.csv'     (a glob: * ** ? [abc])
 *   SELECT ... FROM read_csv('s3://b/x/' '*.csv.gz', header=true, delim=';')
 *   SELECT ... FROM read_json('s3://b/logs/' '**' '.jsonl')
 * (written here with the glob apart, as one string in SQL)
 *
 * Threads: sql_run is reentrant (many queries may run at once). The sink is
 * called only from the thread that called sql_run, never concurrently.
 * Cancellation: the caller sets *opt->cancel (from any thread) when the
 * client goes away; the query then ends within milliseconds with
 * ERR_REQUEST_TIMEOUT and the message "query cancelled".
 */
#ifndef TARN_SQL_SQL_H
#define TARN_SQL_SQL_H

#include "base/buf.h"
#include "base/err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct catalog catalog;

/* The largest value (a string) a query may build: 32 MiB, as Athena's
 * limit on a row's field. A function or operator whose result would be
 * larger (rpad, replace, ||, regexp_replace, ...) fails the query with
 * ERR_INVALID and a message naming it; so does one whose values would pass
 * the query's memory budget (ERR_ENTITY_TOO_LARGE). */
#define SQL_VALUE_MAX (32u << 20)

/* The SQL types a result column can have (Athena / Presto names). */
typedef enum sql_type {
  SQL_NULL = 0,      /* the type of a bare NULL literal */
  SQL_BOOLEAN,
  SQL_SMALLINT,
  SQL_INTEGER,
  SQL_BIGINT,
  SQL_DOUBLE,
  SQL_DECIMAL,       /* DECIMAL(precision, scale), precision <= 18 */
  SQL_VARCHAR,
  SQL_DATE,
  SQL_TIMESTAMP,
  SQL_INTERVAL_DS,   /* INTERVAL DAY TO SECOND */
  SQL_INTERVAL_YM,   /* INTERVAL YEAR TO MONTH */
} sql_type;

/* "boolean", "bigint", "decimal", "varchar", ... (lower case, as Presto). */
const char *sql_type_name(sql_type t);

typedef struct sql_column {
  const char *name;  /* as the query names it (alias or column name) */
  sql_type type;
  int precision;     /* DECIMAL only */
  int scale;         /* DECIMAL only */
} sql_column;

/* A batch of result rows, column-major. Opaque: read it with the helpers
 * below. Valid only during the sink call that receives it. */
typedef struct sql_batch sql_batch;

size_t sql_batch_rows(const sql_batch *b);
size_t sql_batch_columns(const sql_batch *b);
bool sql_cell_is_null(const sql_batch *b, size_t col, size_t row);

/* Appends a cell as text: integers, doubles (shortest round-trip form, as
 * 1.5, 2.0E10, Infinity, NaN), decimals with their scale, true/false, dates
 * YYYY-MM-DD, timestamps YYYY-MM-DD HH:MM:SS[.ffffff], intervals as Presto
 * prints them, strings as they are (UTF-8). A NULL appends nothing and
 * returns 1 (so a CSV writer leaves the field empty and unquoted); otherwise
 * returns 0, or ERR_ENTITY_TOO_LARGE when out is full. */
int sql_cell_text(const sql_batch *b, size_t col, size_t row, buf *out);
/* Appends a cell as a JSON value: null, true/false, numbers (NaN and the
 * infinities as strings), everything else as a JSON string. */
int sql_cell_json(const sql_batch *b, size_t col, size_t row, buf *out);
/* Appends a cell as one RFC 4180 CSV field: NULL as nothing, a value
 * quoted when it holds the delimiter ',', a quote, CR or LF, or is empty
 * (so an empty string and a NULL differ). */
int sql_cell_csv(const sql_batch *b, size_t col, size_t row, buf *out);

/* Where the rows go. Both callbacks return 0 to go on, or a negative ERR_*
 * code (with e filled) to end the query; that code is then sql_run's. */
typedef struct sql_sink {
  void *ctx;
  /* Once, before any rows (also when the result is empty). */
  int (*columns)(void *ctx, const sql_column *cols, size_t ncols, err *e);
  /* Zero or more times, each with 1..~2048 rows, in result order. */
  int (*rows)(void *ctx, const sql_batch *b, err *e);
} sql_sink;

typedef struct sql_stats sql_stats;

/* One object given to a query as a table of its own: S3 Select's
 * `FROM S3Object s`. The caller has the object's bytes (already
 * decompressed and cut to its scan range) and the reader's options from
 * the request; the table named `name` (any case) reads them. A query with
 * an object source reads nothing else: any other table is an error, and
 * COPY cannot write. */
typedef enum sql_object_format {
  SQL_OBJECT_CSV,
  SQL_OBJECT_JSON,          /* JSON lines: one object per line */
  SQL_OBJECT_PARQUET,
} sql_object_format;

typedef struct sql_object_source {
  const char *name;         /* the table name that resolves to it ("S3Object") */
  int fd;                   /* its bytes from offset 0 (borrowed; the engine dups it) */
  uint64_t size;            /* bytes at fd */
  sql_object_format format;
  /* CSV only */
  char delim;               /* 0: ',' */
  char quote;               /* 0: '"' */
  char escape;              /* 0: the quote doubled */
  bool header;              /* the first row is a header (not a record) */
  bool positional;          /* columns are named _1, _2, ... (not by the header) */
  bool text;                /* every column is VARCHAR: values exactly as written,
                               an empty field '' (not NULL) */
} sql_object_source;

typedef struct sql_options {
  int threads;             /* 0: one per core */
  uint64_t memory_limit;   /* bytes the query may hold; 0: a quarter of RAM */
  uint64_t time_limit_ms;  /* 0: none; past it the query ends (ERR_REQUEST_TIMEOUT) */
  const atomic_bool *cancel; /* optional; set it to end the query (ERR_REQUEST_TIMEOUT,
                                message "query cancelled") */
  /* Optional: called from sql_run's thread about every 500 ms while the
     query runs (a terminal's progress line). */
  void (*progress)(void *ctx, const sql_stats *s);
  void *progress_ctx;
  /* Optional: the one object `FROM <object->name>` reads (see above). */
  const sql_object_source *object;
  /* Optional: the table catalog (catalog/catalog.h). With it, FROM db.table
     and FROM table read the catalog's tables (their location, format,
     declared columns and partitions), and DDL statements (CREATE DATABASE,
     CREATE EXTERNAL TABLE, SHOW ..., MSCK REPAIR TABLE, ...), CREATE TABLE
     AS and INSERT INTO run against it. */
  catalog *catalog;
  const char *database;    /* the default database; NULL: "default" */
  /* Optional: asked before the query lists a bucket ("s3:ListBucket",
     "arn:aws:s3:::BUCKET"), reads an object ("s3:GetObject",
     "arn:aws:s3:::BUCKET/KEY") or makes one visible ("s3:PutObject", same
     form): 0 lets it, anything else (with e set) fails the query with that
     code. A caller that is not the account's root runs its queries with
     it, so SQL never reaches an object its caller could not. */
  int (*access)(void *ctx, const char *action, const char *resource, err *e);
  void *access_ctx;
} sql_options;

/* What a query did, filled on success and on failure. */
struct sql_stats {
  uint64_t rows;            /* result rows sent to the sink */
  uint64_t bytes_scanned;   /* bytes of objects read (compressed size) */
  uint64_t objects_scanned; /* objects opened */
  uint64_t elapsed_ms;
  double cost_usd;          /* Athena's price: $5 per TB scanned, with a
                               10 MB minimum per query */
  /* On an error in the statement itself (syntax, unknown column, type
     mismatch, ...): where it is, 1-based; 0 when the error has no place
     (e.g. a malformed object, the memory limit). */
  int error_line;
  int error_column;
};

/* Runs one SQL statement over the objects of st. Returns 0, or:
 *   ERR_INVALID          the statement is wrong (error_line/column say where),
 *                        or a value cannot be read (the message names the
 *                        object, line and column)
 *   ERR_NO_SUCH_BUCKET   a table names a bucket that does not exist
 *   ERR_ENTITY_TOO_LARGE the query passed its memory limit
 *   ERR_REQUEST_TIMEOUT  the time limit passed, or *opt->cancel was set
 *   ERR_NOT_IMPLEMENTED  a feature the engine does not have yet
 *   ERR_IO               an object could not be read
 * or the sink's own code. opt may be NULL (defaults); stats may be NULL. */
int sql_run(store *st, const char *sql, const sql_options *opt, sql_sink *sink,
            sql_stats *stats, err *e);

/* Athena's price of a scan: $5 per TB (10^12 bytes), at least 10 MB. */
double sql_cost_usd(uint64_t bytes_scanned);

#endif
