/* stream/convert.h -- Firehose's record format conversion (JSON records to
 * Parquet against a catalog table's columns), as the delivery thread and
 * the configuration code of this part use it. Private to src/stream.
 */
#ifndef TARN_STREAM_CONVERT_H
#define TARN_STREAM_CONVERT_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "formats/parquet_write.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A destination's DataFormatConversionConfiguration, parsed (when Enabled). */
typedef struct conv_config {
  bool openx;                  /* OpenXJsonSerDe, else HiveJsonSerDe */
  bool case_insensitive;       /* OpenX CaseInsensitive (default true); Hive: true */
  bool dots_to_underscores;    /* OpenX ConvertDotsInJsonKeysToUnderscores */
  size_t nmap;                 /* OpenX ColumnToJsonKeyMappings */
  char **map_cols;
  char **map_keys;
  size_t nts;                  /* Hive TimestampFormats (Joda patterns, or "millis") */
  char **ts_formats;
  pqw_codec codec;             /* ParquetSerDe Compression (SNAPPY by default) */
  uint64_t block_bytes;        /* ParquetSerDe BlockSizeBytes: a row group's size */
  uint64_t page_bytes;         /* PageSizeBytes (0: the writer's 1 MiB) */
  bool no_dictionary;          /* EnableDictionaryCompression false */
  bool page_v2;                /* WriterVersion V2 */
  /* SchemaConfiguration */
  char *catalog_id;
  char *database;
  char *table;
  char *region;
  char *version_id;
  char *role_arn;
} conv_config;

/* Validates the destination's DataFormatConversionConfiguration as Firehose
 * does: member constraints first (STREAM_ERR_VALIDATION, "N validation
 * errors detected: Value at 'SHAPE.dataFormatConversionConfiguration...'"),
 * even when it is disabled; then, when it is enabled (Enabled omitted counts
 * as enabled), the rules of a converting destination (STREAM_ERR_INVALID):
 * CompressionFormat UNCOMPRESSED, an explicit SizeInMBs of at least 64, one
 * deserializer, one serializer (ParquetSerDe: tarn has no ORC writer), and a
 * schema with RoleARN, DatabaseName and TableName. *out is NULL when the
 * conversion is absent or disabled. */
int stream__conv_parse(json_t *dst, const char *shape, conv_config **out, err *e);
/* Accepts NULL; returns NULL. */
conv_config *stream__conv_free(conv_config *c);
/* The conversion is present and not disabled (no validation). */
bool stream__conv_enabled(json_t *dst);

/* A table's columns, typed for conversion. */
typedef struct conv_schema conv_schema;

/* Types the columns (a JSON array of {"Name", "Type"} with Hive type names,
 * as Glue's StorageDescriptor.Columns): string, char(n), varchar(n),
 * boolean, tinyint, smallint, int, bigint, float, double, decimal(p,s) with
 * p <= 38, date, timestamp, and array<t>, map<k,v>, struct<name:t,...> of
 * them, nested up to PQW_MAX_DEPTH levels (written as Parquet LIST, MAP and
 * STRUCT). Other types: ERR_INVALID naming the column. */
int stream__conv_schema_new(const conv_config *cfg, json_t *columns, conv_schema **out,
                            err *e);
conv_schema *stream__conv_schema_free(conv_schema *s);

/* One record to convert. A record that fails comes back with err_code and
 * err_msg set (allocated in the arena given), and gives no row. */
typedef struct conv_rec {
  const uint8_t *data;
  size_t len;
  const char *err_code;        /* "DataFormatConversion.ParseError", ... */
  const char *err_msg;
} conv_rec;

/* Converts recs[0..n) into one Parquet file appended to out (nothing when
 * no record gives a row). A record may hold several JSON objects one after
 * another ({"a":1}{"a":2}): each is a row. Returns 0 or an error of the
 * writer (out is then undefined). */
int stream__conv_write(const conv_config *cfg, const conv_schema *s, conv_rec *recs, size_t n,
                       buf *out, arena *a, err *e);

#endif
