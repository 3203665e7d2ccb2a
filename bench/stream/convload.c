/* bench/stream/convload.c -- Firehose's record format conversion alone:
 * N JSON records (10 columns: strings, ints, a decimal, a double, a
 * boolean, a timestamp, an array) converted into one Parquet file by
 * stream__conv_write, as one delivery of a 64 MiB buffer does. Prints the
 * input MiB, records, seconds, MiB/s and records/s, and writes the
 * records as NDJSON (for the DuckDB comparison of bench/conv_bench.sh)
 * when a path is given.
 *
 * Usage: convload [RECORDS] [NDJSON-OUT]
 */
#include "stream/convert.h"

#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 300000;
  const char *nd = argc > 2 ? argv[2] : NULL;
  json_t *d = json_loads(
      "{\"DataFormatConversionConfiguration\": {"
      "\"InputFormatConfiguration\": {\"Deserializer\": {\"OpenXJsonSerDe\": {}}},"
      "\"OutputFormatConfiguration\": {\"Serializer\": {\"ParquetSerDe\": {}}},"
      "\"SchemaConfiguration\": {\"DatabaseName\": \"d\", \"TableName\": \"t\", "
      "\"RoleARN\": \"r\"}}}", 0, NULL);
  conv_config *cfg = NULL;
  err e = {0};
  if (stream__conv_parse(d, "x", &cfg, &e) != 0) {
    fprintf(stderr, "convload: %s\n", e.msg);
    return 1;
  }
  json_t *cols = json_loads(
      "[{\"Name\": \"id\", \"Type\": \"string\"}, {\"Name\": \"customer\", \"Type\": \"string\"},"
      " {\"Name\": \"qty\", \"Type\": \"int\"}, {\"Name\": \"seq\", \"Type\": \"bigint\"},"
      " {\"Name\": \"price\", \"Type\": \"decimal(12,2)\"}, {\"Name\": \"score\", \"Type\": "
      "\"double\"}, {\"Name\": \"paid\", \"Type\": \"boolean\"}, {\"Name\": \"ts\", \"Type\": "
      "\"timestamp\"}, {\"Name\": \"tags\", \"Type\": \"array<string>\"}, {\"Name\": \"note\", "
      "\"Type\": \"string\"}]", 0, NULL);
  conv_schema *s = NULL;
  if (stream__conv_schema_new(cfg, cols, &s, &e) != 0) {
    fprintf(stderr, "convload: %s\n", e.msg);
    return 1;
  }
  conv_rec *recs = xcalloc(n, sizeof *recs);
  size_t total = 0;
  FILE *f = nd != NULL ? fopen(nd, "w") : NULL;
  srand(42);
  for (size_t i = 0; i < n; i++) {
    char *r = xmalloc(512);
    int len = snprintf(r, 512,
                       "{\"id\":\"%08zu\",\"customer\":\"c-%d\",\"qty\":%d,\"seq\":%zu,"
                       "\"price\":%d.%02d,\"score\":%d.%d,\"paid\":%s,"
                       "\"ts\":\"2024-03-05T07:%02d:%02d.%03dZ\",\"tags\":[\"t%d\",\"u\"],"
                       "\"note\":\"order note with some words %d\"}",
                       i, rand() % 5000, rand() % 100, i * 7, rand() % 100000, rand() % 100,
                       rand() % 1000, rand() % 1000, rand() % 2 ? "true" : "false",
                       rand() % 60, rand() % 60, rand() % 1000, rand() % 20, rand());
    recs[i] = (conv_rec){(const uint8_t *)r, (size_t)len, NULL, NULL};
    total += (size_t)len;
    if (f != NULL)
      fprintf(f, "%s\n", r);
  }
  if (f != NULL)
    fclose(f);
  buf out;
  buf_init(&out, 1u << 30);
  arena *a = arena_new();
  double t0 = now();
  int rc = stream__conv_write(cfg, s, recs, n, &out, a, &e);
  double secs = now() - t0;
  if (rc != 0) {
    fprintf(stderr, "convload: %s\n", e.msg);
    return 1;
  }
  printf("input_mib %.1f records %zu parquet_mib %.1f seconds %.3f mib_per_s %.1f "
         "records_per_s %.0f\n",
         (double)total / 1048576, n, (double)out.len / 1048576, secs,
         (double)total / 1048576 / secs, (double)n / secs);
  return 0;
}
