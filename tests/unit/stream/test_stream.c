/* tests/unit/stream/test_stream.c -- the stream part without HTTP: prefix
 * expressions, the jq subset, Kinesis hashing, sequence numbers and
 * iterators, and durable Firehose buffers across a reopen. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "stream/internal.h"

#include "base/hash.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
  return remove(p);
}

static char *temp_dir(void)
{
  char *d = strdup("/tmp/tarn-stream-XXXXXX");
  assert_non_null(mkdtemp(d));
  return d;
}

static void remove_dir(char *d)
{
  nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(d);
}

/* 2024-03-05T07:08:09Z */
#define TS 1709622489000LL

static void test_prefix_timestamp(void **state)
{
  arena *a = arena_new();
  err e = {0};
  assert_string_equal(stream__prefix_eval("logs/", TS, NULL, NULL, a, &e),
                      "logs/2024/03/05/07/");
  assert_string_equal(stream__prefix_eval("", TS, NULL, NULL, a, &e), "2024/03/05/07/");
  assert_string_equal(
      stream__prefix_eval("d=!{timestamp:yyyy'-'MM'-'dd}/t=!{timestamp:HH:mm:ss}/", TS, NULL,
                          NULL, a, &e),
      "d=2024-03-05/t=07:08:09/");
  assert_string_equal(stream__prefix_eval("e/!{firehose:error-output-type}/", TS,
                                          "processing-failed", NULL, a, &e),
                      "e/processing-failed/");
  const char *r = stream__prefix_eval("r/!{firehose:random-string}/", TS, NULL, NULL, a, &e);
  assert_int_equal(strlen(r), strlen("r/") + 11 + 1);
  assert_null(stream__prefix_eval("x/!{timestamp:QQQ}/", TS, NULL, NULL, a, &e));
  assert_int_equal(e.code, STREAM_ERR_INVALID);
  assert_null(stream__prefix_eval("x/!{nope:1}/", TS, NULL, NULL, a, &e));
  assert_null(stream__prefix_eval("x/!{timestamp:yyyy", TS, NULL, NULL, a, &e));
  assert_null(stream__prefix_eval("x/!{firehose:error-output-type}/", TS, NULL, NULL, a, &e));
  arena_free(a);
}

static void test_prefix_partition_keys(void **state)
{
  arena *a = arena_new();
  err e = {0};
  json_t *keys = json_pack("{s:s, s:s}", "c", "acme", "k", "x");
  assert_string_equal(stream__prefix_eval("c=!{partitionKeyFromQuery:c}/k=!{partitionKeyFromLambda:k}/",
                                          TS, NULL, keys, a, &e),
                      "c=acme/k=x/");
  assert_null(stream__prefix_eval("!{partitionKeyFromQuery:missing}/", TS, NULL, keys, a, &e));
  json_decref(keys);
  arena_free(a);
}

static void test_query(void **state)
{
  err e = {0};
  json_t *rec = json_loads("{\"a\": {\"b\": \"x\"}, \"n\": 7, \"f\": true}", 0, NULL);
  json_t *k = stream__query_eval("{ one: .a.b, two: .n,three:.f }", rec, &e);
  assert_non_null(k);
  assert_string_equal(json_string_value(json_object_get(k, "one")), "x");
  assert_string_equal(json_string_value(json_object_get(k, "two")), "7");
  assert_string_equal(json_string_value(json_object_get(k, "three")), "true");
  json_decref(k);
  assert_null(stream__query_eval("{one: .missing}", rec, &e));
  assert_null(stream__query_eval(".a.b", rec, &e));
  assert_null(stream__query_eval("{one .a}", rec, &e));
  json_decref(rec);
}

static stream_system *open_system(const char *dir)
{
  stream_options o = {.data_dir = dir};
  stream_system *s = NULL;
  err e = {0};
  assert_int_equal(stream_system_open(&o, &s, &e), 0);
  return s;
}

static void test_kinesis_durable_and_ordered(void **state)
{
  char *dir = temp_dir();
  stream_system *s = open_system(dir);
  err e = {0};
  assert_int_equal(stream_kinesis_create(s, "st", 2, false, &e), 0);
  assert_int_equal(stream_kinesis_create(s, "st", 2, false, &e), STREAM_ERR_IN_USE);
  stream_record_in in[3] = {{"alpha", NULL, "1", 1}, {"alpha", NULL, "2", 1},
                            {"z", "340282366920938463463374607431768211455", "3", 1}};
  stream_record_out out[3];
  assert_int_equal(stream_kinesis_put(s, "st", in, 3, out, &e), 0);
  /* MD5("alpha") = 2c1743a391305fbf367df8e4f069f9f9: below 2^127, shard 0 */
  assert_string_equal(out[0].shard_id, "shardId-000000000000");
  assert_string_equal(out[1].shard_id, "shardId-000000000000");
  assert_string_equal(out[2].shard_id, "shardId-000000000001");
  assert_true(strcmp(out[0].sequence, out[1].sequence) < 0);
  /* a bad explicit hash key changes nothing */
  stream_record_in bad = {"k", "340282366920938463463374607431768211456", "x", 1};
  assert_int_equal(stream_kinesis_put(s, "st", &bad, 1, out, &e), STREAM_ERR_INVALID);
  s = stream_system_close(s);

  s = open_system(dir);
  arena *a = arena_new();
  const char *it;
  assert_int_equal(stream_kinesis_iterator(s, "st", "shardId-000000000000", STREAM_TRIM_HORIZON,
                                           NULL, 0, a, &it, &e), 0);
  json_t *got;
  assert_int_equal(stream_kinesis_get(s, it, 10, &got, &e), 0);
  json_t *recs = json_object_get(got, "Records");
  assert_int_equal(json_array_size(recs), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 0), "Data")), "MQ==");
  assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 1), "PartitionKey")),
                      "alpha");
  json_decref(got);
  assert_int_equal(stream_kinesis_iterator(s, "st", "shardId-000000000001", STREAM_AT_SEQUENCE,
                                           "49000", 0, a, &it, &e), STREAM_ERR_INVALID);
  assert_int_equal(stream_kinesis_get(s, "garbage", 10, &got, &e), STREAM_ERR_INVALID);
  arena_free(a);
  s = stream_system_close(s);
  remove_dir(dir);
}

static void test_firehose_buffer_survives_reopen(void **state)
{
  char *dir = temp_dir();
  stream_system *s = open_system(dir);
  err e = {0};
  json_t *in = json_loads("{\"DeliveryStreamName\": \"d\", \"ExtendedS3DestinationConfiguration\":"
                          " {\"BucketARN\": \"arn:aws:s3:::b\", \"BufferingHints\": "
                          "{\"SizeInMBs\": 1, \"IntervalInSeconds\": 60}}}", 0, NULL);
  assert_int_equal(stream_delivery_create(s, in, &e), 0);
  json_decref(in);
  arena *a = arena_new();
  stream_blob b[2] = {{"hello", 5}, {"world!", 6}};
  const char *ids[2];
  assert_int_equal(stream_delivery_put(s, "d", b, 2, a, ids, &e), 0);
  assert_string_not_equal(ids[0], ids[1]);
  assert_int_equal(stream_delivery_put(s, "nope", b, 1, a, ids, &e), STREAM_ERR_NOT_FOUND);
  s = stream_system_close(s);

  s = open_system(dir);
  dstream *d = stream__dstream_find(s, "d");
  assert_non_null(d);
  assert_int_equal(d->count, 2);
  assert_int_equal(d->bytes, 11);
  assert_true(d->oldest_ms > 0);
  assert_int_equal(d->cfg->size_bytes, 1u << 20);
  assert_int_equal(d->cfg->interval_ms, 60000);
  assert_int_equal(stream_delivery_delete(s, "d", &e), 0);
  assert_null(stream__dstream_find(s, "d"));
  arena_free(a);
  s = stream_system_close(s);
  remove_dir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prefix_timestamp),
      cmocka_unit_test(test_prefix_partition_keys),
      cmocka_unit_test(test_query),
      cmocka_unit_test(test_kinesis_durable_and_ordered),
      cmocka_unit_test(test_firehose_buffer_survives_reopen),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
