/* tests/unit/events/test_events.c -- unit tests of events/: the rule
 * matcher and S3's configuration checks, the payloads (S3 event message,
 * test message, SQS event, batch failures, key encoding), and the store's
 * change feed that the dispatcher reads (written in the object change's
 * own commit, only for buckets with a configuration).
 *
 * Payloads are checked field by field after parsing them back, as a
 * function reading event['Records'][0] would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "events/events.h"

#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the matcher ---- */

static events_rule rule(const char **evs, size_t n, const char *prefix, const char *suffix)
{
  events_rule r = { .id = "r", .target = EVENTS_QUEUE, .arn = "arn:aws:sqs:us-east-1:0:q",
                    .events = evs, .nevents = n, .prefix = prefix, .suffix = suffix };
  return r;
}

static void test_match(void **state)
{
  (void)state;
  const char *created[] = { "s3:ObjectCreated:*" };
  events_rule r = rule(created, 1, "raw/", ".csv");
  assert_true(events_rule_match(&r, "ObjectCreated:Put", "raw/a.csv"));
  assert_true(events_rule_match(&r, "ObjectCreated:Copy", "raw/a.csv"));
  assert_true(events_rule_match(&r, "ObjectCreated:CompleteMultipartUpload", "raw/x/y.csv"));
  assert_false(events_rule_match(&r, "ObjectRemoved:Delete", "raw/a.csv"));
  assert_false(events_rule_match(&r, "ObjectCreated:Put", "clean/a.csv"));
  assert_false(events_rule_match(&r, "ObjectCreated:Put", "raw/a.json"));
  assert_false(events_rule_match(&r, "ObjectCreated:Put", "Raw/a.csv"));  /* byte-wise */

  const char *put_only[] = { "s3:ObjectCreated:Put", "s3:ObjectRemoved:Delete" };
  events_rule p = rule(put_only, 2, NULL, NULL);
  assert_true(events_rule_match(&p, "ObjectCreated:Put", "k"));
  assert_false(events_rule_match(&p, "ObjectCreated:Post", "k"));
  assert_false(events_rule_match(&p, "ObjectCreated:Copy", "k"));
  assert_true(events_rule_match(&p, "ObjectRemoved:Delete", "k"));
  assert_false(events_rule_match(&p, "ObjectRemoved:DeleteMarkerCreated", "k"));

  /* a prefix that is the whole key, an empty suffix */
  events_rule q = rule(put_only, 2, "k", "");
  assert_true(events_rule_match(&q, "ObjectCreated:Put", "k"));
}

static int check(events_rule *rules, size_t n, err *e)
{
  events_config c = { rules, n, false };
  return events_config_check(&c, e);
}

static void test_config_check(void **state)
{
  (void)state;
  err e = { 0 };
  const char *created[] = { "s3:ObjectCreated:*" };
  const char *put[] = { "s3:ObjectCreated:Put" };
  const char *removed[] = { "s3:ObjectRemoved:*" };
  const char *bogus[] = { "s3:ObjectCreated:Nope" };

  events_rule one[] = { rule(created, 1, "raw/", NULL) };
  assert_int_equal(check(one, 1, &e), 0);

  events_rule bad[] = { rule(bogus, 1, NULL, NULL) };
  assert_int_equal(check(bad, 1, &e), ERR_INVALID);
  assert_string_equal(e.msg, "The event is not supported for notifications");

  /* same family, overlapping prefixes */
  events_rule o1[] = { rule(created, 1, "raw/", NULL), rule(put, 1, "raw/2024/", NULL) };
  o1[1].id = "other";
  assert_int_equal(check(o1, 2, &e), ERR_INVALID);
  assert_true(strstr(e.msg, "Configurations overlap") != NULL);

  /* disjoint prefixes: fine */
  events_rule o2[] = { rule(created, 1, "raw/", NULL), rule(put, 1, "clean/", NULL) };
  o2[1].id = "other";
  assert_int_equal(check(o2, 2, &e), 0);

  /* same prefix, disjoint suffixes: fine */
  events_rule o3[] = { rule(created, 1, "raw/", ".csv"), rule(created, 1, "raw/", ".json") };
  o3[1].id = "other";
  assert_int_equal(check(o3, 2, &e), 0);

  /* no filter on one side overlaps everything */
  events_rule o4[] = { rule(created, 1, NULL, NULL), rule(put, 1, "x/", ".csv") };
  o4[1].id = "other";
  assert_int_equal(check(o4, 2, &e), ERR_INVALID);

  /* different event families never overlap */
  events_rule o5[] = { rule(created, 1, NULL, NULL), rule(removed, 1, NULL, NULL) };
  o5[1].id = "other";
  assert_int_equal(check(o5, 2, &e), 0);

  /* no events, no destination: malformed */
  events_rule empty[] = { rule(created, 0, NULL, NULL) };
  assert_int_equal(check(empty, 1, &e), ERR_MALFORMED_XML);
  events_rule noarn[] = { rule(created, 1, NULL, NULL) };
  noarn[0].arn = NULL;
  assert_int_equal(check(noarn, 1, &e), ERR_MALFORMED_XML);
}

static void test_config_json(void **state)
{
  (void)state;
  arena *a = arena_new();
  const char *evs[] = { "s3:ObjectCreated:*", "s3:ObjectRemoved:Delete" };
  events_rule rules[] = { rule(evs, 2, "raw/", ".csv"), rule(evs, 1, NULL, NULL) };
  rules[1].target = EVENTS_FUNCTION;
  rules[1].arn = "arn:aws:lambda:us-east-1:000000000000:function:f";
  rules[1].id = "fn";
  rules[1].prefix = "other/";
  events_config c = { rules, 2, true };
  char *json = events_config_to_json(&c, a);
  events_config back;
  err e = { 0 };
  assert_int_equal(events_config_from_json(json, a, &back, &e), 0);
  assert_int_equal(back.nrules, 2);
  assert_true(back.eventbridge);
  assert_string_equal(back.rules[0].prefix, "raw/");
  assert_string_equal(back.rules[0].suffix, ".csv");
  assert_int_equal(back.rules[0].nevents, 2);
  assert_string_equal(back.rules[0].events[1], "s3:ObjectRemoved:Delete");
  assert_int_equal(back.rules[1].target, EVENTS_FUNCTION);
  assert_null(back.rules[1].suffix);
  assert_string_equal(back.rules[1].arn, "arn:aws:lambda:us-east-1:000000000000:function:f");
  assert_int_equal(events_config_from_json("{\"nope\":1}", a, &back, &e), ERR_INTERNAL);
  arena_free(a);
}

/* ---- payloads ---- */

static void test_key_encode(void **state)
{
  (void)state;
  arena *a = arena_new();
  assert_string_equal(events_key_encode(a, "raw/2024/sales 1.csv"), "raw/2024/sales+1.csv");
  assert_string_equal(events_key_encode(a, "a(1)=b&c"), "a%281%29%3Db%26c");
  assert_string_equal(events_key_encode(a, "x+y"), "x%2By");
  assert_string_equal(events_key_encode(a, "caf\xc3\xa9"), "caf%C3%A9");
  assert_string_equal(events_key_encode(a, "A-z_0.9*"), "A-z_0.9*");
  arena_free(a);
}

static void test_s3_message(void **state)
{
  (void)state;
  arena *a = arena_new();
  store_change ch = { .seq = 42, .event = STORE_EVENT_PUT, .bucket = "sales",
                      .key = "raw/jan 1.csv", .size = 1234,
                      .etag = "0123456789abcdef0123456789abcdef", .time_ms = 1700000000123,
                      .request_id = "ABCDEF0123456789", .principal = "AKID", .source_ip = "" };
  json_t *j = json_loads(events_s3_message(a, &ch, "cfg-1"), 0, NULL);
  assert_non_null(j);
  json_t *r = json_array_get(json_object_get(j, "Records"), 0);
  assert_int_equal(json_array_size(json_object_get(j, "Records")), 1);
  assert_string_equal(json_string_value(json_object_get(r, "eventVersion")), "2.1");
  assert_string_equal(json_string_value(json_object_get(r, "eventSource")), "aws:s3");
  assert_string_equal(json_string_value(json_object_get(r, "awsRegion")), "us-east-1");
  assert_string_equal(json_string_value(json_object_get(r, "eventTime")),
                      "2023-11-14T22:13:20.123Z");
  assert_string_equal(json_string_value(json_object_get(r, "eventName")), "ObjectCreated:Put");
  assert_string_equal(json_string_value(json_object_get(json_object_get(r, "userIdentity"),
                                                        "principalId")), "AWS:AKID");
  assert_string_equal(json_string_value(json_object_get(json_object_get(r, "requestParameters"),
                                                        "sourceIPAddress")), "127.0.0.1");
  json_t *resp = json_object_get(r, "responseElements");
  assert_string_equal(json_string_value(json_object_get(resp, "x-amz-request-id")),
                      "ABCDEF0123456789");
  assert_non_null(json_string_value(json_object_get(resp, "x-amz-id-2")));
  json_t *s3 = json_object_get(r, "s3");
  assert_string_equal(json_string_value(json_object_get(s3, "s3SchemaVersion")), "1.0");
  assert_string_equal(json_string_value(json_object_get(s3, "configurationId")), "cfg-1");
  json_t *b = json_object_get(s3, "bucket");
  assert_string_equal(json_string_value(json_object_get(b, "name")), "sales");
  assert_string_equal(json_string_value(json_object_get(b, "arn")), "arn:aws:s3:::sales");
  assert_non_null(json_object_get(json_object_get(b, "ownerIdentity"), "principalId"));
  json_t *o = json_object_get(s3, "object");
  assert_string_equal(json_string_value(json_object_get(o, "key")), "raw/jan+1.csv");
  assert_int_equal(json_integer_value(json_object_get(o, "size")), 1234);
  assert_string_equal(json_string_value(json_object_get(o, "eTag")),
                      "0123456789abcdef0123456789abcdef");
  assert_string_equal(json_string_value(json_object_get(o, "sequencer")), "000000000000002A");
  json_decref(j);

  /* a removal has no size nor eTag */
  ch.event = STORE_EVENT_DELETE;
  j = json_loads(events_s3_message(a, &ch, "cfg-1"), 0, NULL);
  r = json_array_get(json_object_get(j, "Records"), 0);
  assert_string_equal(json_string_value(json_object_get(r, "eventName")),
                      "ObjectRemoved:Delete");
  o = json_object_get(json_object_get(r, "s3"), "object");
  assert_null(json_object_get(o, "size"));
  assert_null(json_object_get(o, "eTag"));
  assert_non_null(json_object_get(o, "sequencer"));
  json_decref(j);

  /* sequencers of later changes sort after earlier ones */
  store_change c2 = ch;
  c2.seq = 43;
  char *m1 = events_s3_message(a, &ch, "x");
  char *m2 = events_s3_message(a, &c2, "x");
  assert_true(strcmp(strstr(m1, "sequencer"), strstr(m2, "sequencer")) < 0);

  j = json_loads(events_test_message(a, "sales", "RID", 0), 0, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "Service")), "Amazon S3");
  assert_string_equal(json_string_value(json_object_get(j, "Event")), "s3:TestEvent");
  assert_string_equal(json_string_value(json_object_get(j, "Bucket")), "sales");
  assert_string_equal(json_string_value(json_object_get(j, "Time")), "1970-01-01T00:00:00.000Z");
  json_decref(j);
  arena_free(a);
}

static void test_sqs_message(void **state)
{
  (void)state;
  arena *a = arena_new();
  queue_attr attrs[] = { { .name = "color", .type = "String", .value = "blue" },
                         { .name = "blob", .type = "Binary", .bin = (const uint8_t *)"hi",
                           .bin_len = 2 } };
  queue_message m[2] = {
    { .message_id = "id-1", .receipt_handle = "rh-1", .body = "hello", .body_len = 5,
      .md5_body = "5d41402abc4b2a76b9719d911017c592", .attrs = attrs, .nattrs = 2,
      .sent_ms = 1000, .first_receive_ms = 2000, .receive_count = 1, .sender_id = "S" },
    { .message_id = "id-2", .receipt_handle = "rh-2", .body = "{\"a\":1}", .body_len = 7,
      .sent_ms = 3000, .first_receive_ms = 4000, .receive_count = 3 },
  };
  json_t *j = json_loads(events_sqs_message(a, "arn:aws:sqs:us-east-1:000000000000:q", m, 2), 0,
                         NULL);
  json_t *recs = json_object_get(j, "Records");
  assert_int_equal(json_array_size(recs), 2);
  json_t *r = json_array_get(recs, 0);
  assert_string_equal(json_string_value(json_object_get(r, "messageId")), "id-1");
  assert_string_equal(json_string_value(json_object_get(r, "receiptHandle")), "rh-1");
  assert_string_equal(json_string_value(json_object_get(r, "body")), "hello");
  assert_string_equal(json_string_value(json_object_get(r, "md5OfBody")),
                      "5d41402abc4b2a76b9719d911017c592");
  assert_string_equal(json_string_value(json_object_get(r, "eventSource")), "aws:sqs");
  assert_string_equal(json_string_value(json_object_get(r, "eventSourceARN")),
                      "arn:aws:sqs:us-east-1:000000000000:q");
  assert_string_equal(json_string_value(json_object_get(r, "awsRegion")), "us-east-1");
  json_t *at = json_object_get(r, "attributes");
  assert_string_equal(json_string_value(json_object_get(at, "ApproximateReceiveCount")), "1");
  assert_string_equal(json_string_value(json_object_get(at, "SentTimestamp")), "1000");
  assert_string_equal(json_string_value(json_object_get(at, "SenderId")), "S");
  assert_string_equal(json_string_value(json_object_get(at, "ApproximateFirstReceiveTimestamp")),
                      "2000");
  json_t *ma = json_object_get(r, "messageAttributes");
  json_t *color = json_object_get(ma, "color");
  assert_string_equal(json_string_value(json_object_get(color, "stringValue")), "blue");
  assert_string_equal(json_string_value(json_object_get(color, "dataType")), "String");
  assert_true(json_is_array(json_object_get(color, "stringListValues")));
  assert_string_equal(json_string_value(json_object_get(json_object_get(ma, "blob"),
                                                        "binaryValue")), "aGk=");
  r = json_array_get(recs, 1);
  assert_string_equal(json_string_value(json_object_get(r, "body")), "{\"a\":1}");
  assert_string_equal(json_string_value(json_object_get(json_object_get(r, "attributes"),
                                                        "ApproximateReceiveCount")), "3");
  assert_int_equal(json_object_size(json_object_get(r, "messageAttributes")), 0);
  json_decref(j);

  /* batchItemFailures */
  const char **ids = NULL;
  size_t n = 0;
  err e = { 0 };
  const char *ans = "{\"batchItemFailures\":[{\"itemIdentifier\":\"id-2\"}]}";
  assert_int_equal(events_batch_failures(ans, strlen(ans), m, 2, a, &ids, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_string_equal(ids[0], "id-2");
  ans = "{\"batchItemFailures\":[]}";
  assert_int_equal(events_batch_failures(ans, strlen(ans), m, 2, a, &ids, &n, &e), 0);
  assert_int_equal(n, 0);
  ans = "null";
  assert_int_equal(events_batch_failures(ans, strlen(ans), m, 2, a, &ids, &n, &e), 0);
  assert_int_equal(n, 0);
  ans = "{\"batchItemFailures\":[{\"itemIdentifier\":\"nope\"}]}";
  assert_int_equal(events_batch_failures(ans, strlen(ans), m, 2, a, &ids, &n, &e), ERR_INVALID);
  ans = "{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}";
  assert_int_equal(events_batch_failures(ans, strlen(ans), m, 2, a, &ids, &n, &e), ERR_INVALID);
  ans = "{\"batchItemFailures\":\"x\"}";
  assert_int_equal(events_batch_failures(ans, strlen(ans), m, 2, a, &ids, &n, &e), ERR_INVALID);
  arena_free(a);
}

/* ---- the store's change feed ---- */

typedef struct fixture {
  char dir[64];
  store *s;
  arena *a;
} fixture;

static int setup(void **state)
{
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/tarn-events-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  err e = { 0 };
  if (store_open(f->dir, &f->s, &e) != 0)
    return -1;
  f->a = arena_new();
  *state = f;
  return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int teardown(void **state)
{
  fixture *f = *state;
  f->s = store_close(f->s);
  arena_free(f->a);
  nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void put(fixture *f, const char *bucket, const char *key, const char *text)
{
  err e = { 0 };
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_writer_write(w, text, strlen(text), &e), 0);
  assert_int_equal(store_object_commit(w, bucket, key, NULL, NULL, 0, NULL, 0, NULL, NULL, &e),
                   0);
  store_writer_free(w);
}

static int kicks;
static void kick(void *ctx)
{
  (void)ctx;
  __atomic_add_fetch(&kicks, 1, __ATOMIC_SEQ_CST);
}

static void test_feed(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "quiet", &e), 0);
  assert_int_equal(store_bucket_create(f->s, "loud", &e), 0);
  assert_int_equal(store_bucket_notification_set(f->s, "nope", "{}", &e), ERR_NO_SUCH_BUCKET);
  assert_int_equal(store_bucket_notification_set(f->s, "loud", "{\"v\":1}", &e), 0);
  const char *cfg = NULL;
  assert_int_equal(store_bucket_notification_get(f->s, "loud", f->a, &cfg, &e), 0);
  assert_string_equal(cfg, "{\"v\":1}");
  assert_int_equal(store_bucket_notification_get(f->s, "quiet", f->a, &cfg, &e), 0);
  assert_null(cfg);
  store_feed_watch(f->s, kick, NULL);

  put(f, "quiet", "a", "not recorded");
  store_origin o = { .request_id = "REQ1", .principal = "AK" };
  store_origin_set(&o);
  put(f, "loud", "k1", "hello");
  store_origin_set(NULL);
  assert_true(__atomic_load_n(&kicks, __ATOMIC_SEQ_CST) >= 1);
  store_object out;
  assert_int_equal(store_object_copy(f->s, "loud", "k1", "loud", "k2", NULL, 0, NULL, 0, f->a,
                                     &out, &e), 0);
  bool existed = false;
  assert_int_equal(store_object_delete(f->s, "loud", "k1", &existed, &e), 0);
  assert_true(existed);
  assert_int_equal(store_object_delete(f->s, "loud", "never", &existed, &e), 0);
  store_origin post = { .event = STORE_EVENT_POST };
  store_origin_set(&post);
  put(f, "loud", "k3", "posted");
  store_origin_set(NULL);

  store_change *ch = NULL;
  size_t n = 0;
  assert_int_equal(store_feed_read(f->s, 0, 100, f->a, &ch, &n, &e), 0);
  assert_int_equal(n, 4);
  assert_int_equal(ch[0].event, STORE_EVENT_PUT);
  assert_string_equal(ch[0].bucket, "loud");
  assert_string_equal(ch[0].key, "k1");
  assert_int_equal(ch[0].size, 5);
  assert_string_equal(ch[0].etag, "5d41402abc4b2a76b9719d911017c592");
  assert_string_equal(ch[0].request_id, "REQ1");
  assert_string_equal(ch[0].principal, "AK");
  assert_true(ch[0].time_ms > 0);
  assert_int_equal(ch[1].event, STORE_EVENT_COPY);
  assert_string_equal(ch[1].key, "k2");
  assert_string_equal(ch[1].request_id, "");
  assert_int_equal(ch[2].event, STORE_EVENT_DELETE);
  assert_string_equal(ch[2].key, "k1");
  assert_int_equal(ch[3].event, STORE_EVENT_POST);
  assert_string_equal(store_event_name(ch[3].event), "ObjectCreated:Post");
  for (size_t i = 1; i < n; i++)
    assert_true(ch[i].seq > ch[i - 1].seq);
  assert_int_equal(store_feed_backlog(f->s), 4);

  /* reading after a seq, trimming, and seqs never reused */
  uint64_t second = ch[1].seq;
  uint64_t last = ch[3].seq;
  assert_int_equal(store_feed_read(f->s, second, 100, f->a, &ch, &n, &e), 0);
  assert_int_equal(n, 2);
  assert_int_equal(store_feed_trim(f->s, last, &e), 0);
  assert_int_equal(store_feed_read(f->s, 0, 100, f->a, &ch, &n, &e), 0);
  assert_int_equal(n, 0);
  put(f, "loud", "k4", "after trim");
  assert_int_equal(store_feed_read(f->s, 0, 100, f->a, &ch, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_true(ch[0].seq > last);

  /* the feed survives a reopen; removing the configuration stops it */
  f->s = store_close(f->s);
  assert_int_equal(store_open(f->dir, &f->s, &e), 0);
  assert_int_equal(store_feed_read(f->s, 0, 100, f->a, &ch, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_int_equal(store_bucket_notification_set(f->s, "loud", NULL, &e), 0);
  put(f, "loud", "k5", "unwatched");
  assert_int_equal(store_feed_read(f->s, 0, 100, f->a, &ch, &n, &e), 0);
  assert_int_equal(n, 1);

  /* deleting the bucket drops its configuration */
  assert_int_equal(store_bucket_create(f->s, "gone", &e), 0);
  assert_int_equal(store_bucket_notification_set(f->s, "gone", "{}", &e), 0);
  assert_int_equal(store_bucket_delete(f->s, "gone", &e), 0);
  assert_int_equal(store_bucket_create(f->s, "gone", &e), 0);
  assert_int_equal(store_bucket_notification_get(f->s, "gone", f->a, &cfg, &e), 0);
  assert_null(cfg);
}

static void test_multipart_feed(void **state)
{
  fixture *f = *state;
  err e = { 0 };
  assert_int_equal(store_bucket_create(f->s, "mpbucket", &e), 0);
  assert_int_equal(store_bucket_notification_set(f->s, "mpbucket", "{}", &e), 0);
  const char *id = NULL;
  assert_int_equal(store_upload_create(f->s, "mpbucket", "big", NULL, 0, NULL, 0, f->a, &id, &e), 0);
  store_writer *w = NULL;
  assert_int_equal(store_writer_new(f->s, &w, &e), 0);
  assert_int_equal(store_writer_write(w, "only part", 9, &e), 0);
  store_part part;
  assert_int_equal(store_part_commit(w, "mpbucket", "big", id, 1, "e1", NULL, f->a, &part, &e), 0);
  store_writer_free(w);
  store_part_ref ref = { 1, part.etag };
  store_object out;
  assert_int_equal(store_upload_complete(f->s, "mpbucket", "big", id, &ref, 1, NULL, 0, f->a, &out,
                                         &e), 0);
  store_change *ch = NULL;
  size_t n = 0;
  assert_int_equal(store_feed_read(f->s, 0, 100, f->a, &ch, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_int_equal(ch[0].event, STORE_EVENT_COMPLETE);
  assert_string_equal(store_event_name(ch[0].event), "ObjectCreated:CompleteMultipartUpload");
  assert_int_equal(ch[0].size, 9);
  assert_string_equal(ch[0].etag, out.etag);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_match),
    cmocka_unit_test(test_config_check),
    cmocka_unit_test(test_config_json),
    cmocka_unit_test(test_key_encode),
    cmocka_unit_test(test_s3_message),
    cmocka_unit_test(test_sqs_message),
    cmocka_unit_test_setup_teardown(test_feed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_multipart_feed, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
