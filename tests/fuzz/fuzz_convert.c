/* fuzz_convert.c -- libFuzzer target for Firehose's record format
 * conversion (stream/convert.c): its JSON reader, the value conversions of
 * every column type and the timestamp forms. The first byte picks the
 * SerDe (OpenX, or Hive with TimestampFormats); the rest are records
 * separated by NUL bytes, converted over one table of every type. */
#include "stream/convert.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const confs[2] = {
    "{\"DataFormatConversionConfiguration\": {"
    "\"InputFormatConfiguration\": {\"Deserializer\": {\"OpenXJsonSerDe\": {"
    "\"ConvertDotsInJsonKeysToUnderscores\": true, \"ColumnToJsonKeyMappings\": {\"s\": \"S.x\"}}}},"
    "\"OutputFormatConfiguration\": {\"Serializer\": {\"ParquetSerDe\": {}}},"
    "\"SchemaConfiguration\": {\"DatabaseName\": \"d\", \"TableName\": \"t\", \"RoleARN\": \"r\"}}}",
    "{\"DataFormatConversionConfiguration\": {"
    "\"InputFormatConfiguration\": {\"Deserializer\": {\"HiveJsonSerDe\": {"
    "\"TimestampFormats\": [\"yyyyMMdd'T'HHmmss.SSSZ\", \"dd/MM/yy H:m:s\", \"millis\"]}}},"
    "\"OutputFormatConfiguration\": {\"Serializer\": {\"ParquetSerDe\": "
    "{\"Compression\": \"UNCOMPRESSED\"}}},"
    "\"SchemaConfiguration\": {\"DatabaseName\": \"d\", \"TableName\": \"t\", \"RoleARN\": \"r\"}}}",
};

static const char *const columns =
    "[{\"Name\": \"s\", \"Type\": \"string\"}, {\"Name\": \"b\", \"Type\": \"boolean\"},"
    " {\"Name\": \"t\", \"Type\": \"tinyint\"}, {\"Name\": \"sm\", \"Type\": \"smallint\"},"
    " {\"Name\": \"i\", \"Type\": \"int\"}, {\"Name\": \"bi\", \"Type\": \"bigint\"},"
    " {\"Name\": \"f\", \"Type\": \"float\"}, {\"Name\": \"d\", \"Type\": \"double\"},"
    " {\"Name\": \"dec\", \"Type\": \"decimal(10,3)\"}, {\"Name\": \"wide\", \"Type\": "
    "\"decimal(38,6)\"}, {\"Name\": \"dt\", \"Type\": \"date\"}, {\"Name\": \"ts\", \"Type\": "
    "\"timestamp\"}, {\"Name\": \"a\", \"Type\": \"array<int>\"}, {\"Name\": \"m\", \"Type\": "
    "\"map<string,int>\"}, {\"Name\": \"st\", \"Type\": \"struct<x:string,"
    "y:array<struct<z:decimal(30,2),w:map<int,array<boolean>>>>>\"}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  json_t *d = json_loads(confs[data[0] & 1], 0, NULL);
  json_t *cols = json_loads(columns, 0, NULL);
  conv_config *cfg = NULL;
  conv_schema *s = NULL;
  err e = {0};
  if (stream__conv_parse(d, "x", &cfg, &e) != 0 || stream__conv_schema_new(cfg, cols, &s, &e) != 0)
    abort();
  size_t n = 1;
  for (size_t i = 1; i < size; i++)
    n += data[i] == 0;
  conv_rec *recs = calloc(n, sizeof *recs);
  size_t k = 0;
  size_t start = 1;
  for (size_t i = 1; i <= size; i++)
    if (i == size || data[i] == 0) {
      recs[k++] = (conv_rec){data + start, i - start, NULL, NULL};
      start = i + 1;
    }
  buf out;
  buf_init(&out, 64u << 20);
  arena *a = arena_new();
  if (stream__conv_write(cfg, s, recs, k, &out, a, &e) != 0)
    abort();
  if (out.len > 0 && (out.len < 12 || memcmp(out.data, "PAR1", 4) != 0))
    abort();
  for (size_t i = 0; i < k; i++)
    if ((recs[i].err_code == NULL) != (recs[i].err_msg == NULL))
      abort();
  buf_release(&out);
  arena_free(a);
  free(recs);
  stream__conv_schema_free(s);
  stream__conv_free(cfg);
  json_decref(cols);
  json_decref(d);
  return 0;
}
