/* tests/unit/queue/test_queue.c -- unit tests of queue/: the MD5 digests of
 * message attributes, SNS filter policies, and the queue system itself
 * (send, receive, visibility, delete, redrive, FIFO groups and
 * deduplication, long polls woken by a send, reopening).
 *
 * Expected digests are computed here from the bytes AWS specifies (with
 * OpenSSL, independently of the part) and also checked against constants
 * computed by a separate Python implementation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "queue/queue.h"

#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- MD5 of message attributes ---- */

static void put_len(EVP_MD_CTX *c, const void *p, size_t n)
{
  uint8_t l[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
  EVP_DigestUpdate(c, l, 4);
  EVP_DigestUpdate(c, p, n);
}

/* AWS's algorithm, for attributes given already sorted by name. */
static void expected_md5(const queue_attr *sorted, size_t n, char out[33])
{
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  EVP_DigestInit_ex(c, EVP_md5(), NULL);
  for (size_t i = 0; i < n; i++) {
    put_len(c, sorted[i].name, strlen(sorted[i].name));
    put_len(c, sorted[i].type, strlen(sorted[i].type));
    uint8_t t = sorted[i].bin != NULL ? 2 : 1;
    EVP_DigestUpdate(c, &t, 1);
    if (sorted[i].bin != NULL)
      put_len(c, sorted[i].bin, sorted[i].bin_len);
    else
      put_len(c, sorted[i].value, strlen(sorted[i].value));
  }
  uint8_t d[16];
  unsigned len = 0;
  EVP_DigestFinal_ex(c, d, &len);
  EVP_MD_CTX_free(c);
  for (int i = 0; i < 16; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_md5_single(void **state)
{
  queue_attr a = {.name = "color", .type = "String", .value = "blue"};
  char got[33], want[33];
  queue_md5_attrs(&a, 1, got);
  expected_md5(&a, 1, want);
  assert_string_equal(got, want);
  assert_string_equal(got, "da1b33cc3cbfe8b1630921e78e6b9880");
}

static void test_md5_sorted_and_binary(void **state)
{
  static const uint8_t bin[] = {0x00, 0x01, 0xff};
  /* given out of order: the digest sorts by name */
  queue_attr given[] = {
      {.name = "b", .type = "Number", .value = "42"},
      {.name = "c", .type = "Binary", .bin = bin, .bin_len = sizeof bin},
      {.name = "a", .type = "String", .value = "x"},
  };
  queue_attr sorted[] = {given[2], given[0], given[1]};
  char got[33], want[33];
  queue_md5_attrs(given, 3, got);
  expected_md5(sorted, 3, want);
  assert_string_equal(got, want);
  assert_string_equal(got, "75a1ab19d8188d38dc01ee258bf7a67f");
}

static void test_md5_trace_header(void **state)
{
  char got[33];
  queue_md5_trace_header("Root=1-5759e988-bd862e3fe1be46a994272793", got);
  assert_string_equal(got, "62a56dd927315f2b2e12832b84617ea5");
}

static void test_md5_none(void **state)
{
  char got[33] = "x";
  queue_md5_attrs(NULL, 0, got);
  assert_string_equal(got, "");
}

/* ---- filter policies ---- */

static bool match_attrs(const char *policy, const queue_attr *attrs, size_t n)
{
  queue_filter *f = NULL;
  err e = {0};
  if (queue_filter_new(policy, &f, &e) != 0)
    fail_msg("policy %s rejected: %s", policy, e.msg);
  bool m = queue_filter_match(f, false, attrs, n, NULL, 0);
  queue_filter_free(f);
  return m;
}

static bool match_body(const char *policy, const char *body)
{
  queue_filter *f = NULL;
  err e = {0};
  if (queue_filter_new(policy, &f, &e) != 0)
    fail_msg("policy %s rejected: %s", policy, e.msg);
  bool m = queue_filter_match(f, true, NULL, 0, body, strlen(body));
  queue_filter_free(f);
  return m;
}

static const queue_attr order[] = {
    {.name = "store", .type = "String", .value = "example_corp"},
    {.name = "event", .type = "String", .value = "order_placed"},
    {.name = "price_usd", .type = "Number", .value = "210.75"},
    {.name = "customer_interests", .type = "String.Array",
     .value = "[\"soccer\", \"rugby\", \"hockey\"]"},
    {.name = "encrypted", .type = "Binary", .bin = (const uint8_t *)"\x01", .bin_len = 1},
};
#define NORDER (sizeof order / sizeof order[0])

static void test_filter_exact_and_numbers(void **state)
{
  assert_true(match_attrs("{\"store\":[\"example_corp\"]}", order, NORDER));
  assert_false(match_attrs("{\"store\":[\"other\"]}", order, NORDER));
  assert_true(match_attrs("{\"store\":[\"other\",\"example_corp\"]}", order, NORDER));
  /* AND across keys */
  assert_true(match_attrs("{\"store\":[\"example_corp\"],\"event\":[\"order_placed\"]}", order,
                          NORDER));
  assert_false(match_attrs("{\"store\":[\"example_corp\"],\"event\":[\"order_cancelled\"]}",
                           order, NORDER));
  /* numbers match Number attributes numerically, not as strings */
  assert_true(match_attrs("{\"price_usd\":[210.75]}", order, NORDER));
  assert_false(match_attrs("{\"price_usd\":[\"210.75\"]}", order, NORDER));
  assert_false(match_attrs("{\"store\":[1]}", order, NORDER));
  /* String.Array: any element */
  assert_true(match_attrs("{\"customer_interests\":[\"rugby\"]}", order, NORDER));
  assert_false(match_attrs("{\"customer_interests\":[\"golf\"]}", order, NORDER));
  /* a missing key does not match */
  assert_false(match_attrs("{\"missing\":[\"x\"]}", order, NORDER));
}

static void test_filter_prefix_anything_but(void **state)
{
  assert_true(match_attrs("{\"event\":[{\"prefix\":\"order_\"}]}", order, NORDER));
  assert_false(match_attrs("{\"event\":[{\"prefix\":\"refund\"}]}", order, NORDER));
  assert_true(match_attrs("{\"event\":[{\"suffix\":\"_placed\"}]}", order, NORDER));
  assert_true(match_attrs("{\"store\":[{\"equals-ignore-case\":\"EXAMPLE_CORP\"}]}", order,
                          NORDER));
  assert_true(match_attrs("{\"event\":[{\"anything-but\":\"order_cancelled\"}]}", order, NORDER));
  assert_false(match_attrs("{\"event\":[{\"anything-but\":\"order_placed\"}]}", order, NORDER));
  assert_false(match_attrs("{\"event\":[{\"anything-but\":[\"a\",\"order_placed\"]}]}", order,
                           NORDER));
  assert_true(match_attrs("{\"event\":[{\"anything-but\":[\"a\",\"b\"]}]}", order, NORDER));
  assert_false(match_attrs("{\"event\":[{\"anything-but\":{\"prefix\":\"order\"}}]}", order,
                           NORDER));
  assert_true(match_attrs("{\"event\":[{\"anything-but\":{\"prefix\":\"refund\"}}]}", order,
                          NORDER));
  assert_true(match_attrs("{\"price_usd\":[{\"anything-but\":[100, 200]}]}", order, NORDER));
  assert_false(match_attrs("{\"price_usd\":[{\"anything-but\":210.75}]}", order, NORDER));
  /* anything-but needs the attribute to be there */
  assert_false(match_attrs("{\"missing\":[{\"anything-but\":\"x\"}]}", order, NORDER));
}

static void test_filter_numeric_and_exists(void **state)
{
  assert_true(match_attrs("{\"price_usd\":[{\"numeric\":[\">\",100]}]}", order, NORDER));
  assert_false(match_attrs("{\"price_usd\":[{\"numeric\":[\"<\",100]}]}", order, NORDER));
  assert_true(match_attrs("{\"price_usd\":[{\"numeric\":[\">=\",210.75,\"<=\",211]}]}", order,
                          NORDER));
  assert_true(match_attrs("{\"price_usd\":[{\"numeric\":[\">\",0,\"<\",300]}]}", order, NORDER));
  assert_false(match_attrs("{\"price_usd\":[{\"numeric\":[\">\",0,\"<\",150]}]}", order, NORDER));
  assert_true(match_attrs("{\"price_usd\":[{\"numeric\":[\"=\",210.75]}]}", order, NORDER));
  /* numeric never matches a String attribute */
  assert_false(match_attrs("{\"store\":[{\"numeric\":[\">\",0]}]}", order, NORDER));
  assert_true(match_attrs("{\"store\":[{\"exists\":true}]}", order, NORDER));
  assert_false(match_attrs("{\"store\":[{\"exists\":false}]}", order, NORDER));
  assert_true(match_attrs("{\"missing\":[{\"exists\":false}]}", order, NORDER));
  assert_false(match_attrs("{\"missing\":[{\"exists\":true}]}", order, NORDER));
  assert_true(match_attrs("{\"encrypted\":[{\"exists\":true}]}", order, NORDER));
  /* $or */
  assert_true(match_attrs("{\"$or\":[{\"store\":[\"x\"]},{\"event\":[\"order_placed\"]}]}", order,
                          NORDER));
  assert_false(match_attrs("{\"$or\":[{\"store\":[\"x\"]},{\"event\":[\"y\"]}]}", order, NORDER));
}

static void test_filter_body(void **state)
{
  const char *body = "{\"store\":\"example_corp\",\"order\":{\"total\":42,\"items\":["
                     "{\"sku\":\"a1\"},{\"sku\":\"b2\"}]},\"tags\":[\"x\",\"y\"],\"gift\":false}";
  assert_true(match_body("{\"store\":[\"example_corp\"]}", body));
  assert_true(match_body("{\"order\":{\"total\":[{\"numeric\":[\">\",40]}]}}", body));
  assert_false(match_body("{\"order\":{\"total\":[{\"numeric\":[\">\",50]}]}}", body));
  assert_true(match_body("{\"order\":{\"items\":{\"sku\":[\"b2\"]}}}", body));
  assert_false(match_body("{\"order\":{\"items\":{\"sku\":[\"c3\"]}}}", body));
  assert_true(match_body("{\"tags\":[\"y\"]}", body));
  assert_true(match_body("{\"gift\":[false]}", body));
  assert_true(match_body("{\"order\":{\"missing\":[{\"exists\":false}]}}", body));
  assert_false(match_body("{\"store\":[\"example_corp\"]}", "not json"));
}

static void test_filter_invalid(void **state)
{
  const char *bad[] = {
      "", "[]", "{}", "{\"a\":\"x\"}", "{\"a\":[]}", "{\"a\":[{\"prefx\":\"x\"}]}",
      "{\"a\":[{\"numeric\":[\">\"]}]}", "{\"a\":[{\"numeric\":[\"<\",5,\">\",1]}]}",
      "{\"a\":[{\"numeric\":[\">\",10,\"<\",5]}]}", "{\"a\":[{\"exists\":\"yes\"}]}",
      "{\"a\":[{\"anything-but\":[]}]}", "{\"$or\":[{\"a\":[\"x\"]}]}", "{\"a\":[\"x\"],",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    queue_filter *f = NULL;
    err e = {0};
    int rc = queue_filter_new(bad[i], &f, &e);
    if (rc != QUEUE_ERR_FILTER)
      fail_msg("policy '%s' was accepted (rc %d)", bad[i], rc);
    assert_null(f);
    assert_true(e.msg[0] != '\0');
  }
  /* too many combinations: 11 * 14 values */
  char big[4096] = "{\"a\":[";
  for (int i = 0; i < 11; i++)
    snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"v%d\"", i ? "," : "", i);
  strcat(big, "],\"b\":[");
  for (int i = 0; i < 14; i++)
    snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"v%d\"", i ? "," : "", i);
  strcat(big, "]}");
  queue_filter *f = NULL;
  err e = {0};
  assert_int_equal(queue_filter_new(big, &f, &e), QUEUE_ERR_FILTER);
}

/* ---- the queue system ---- */

typedef struct fixture {
  char dir[64];
  queue_system *q;
  arena *a;
} fixture;

static int open_q(fixture *f)
{
  queue_options o = {.data_dir = f->dir, .access_key = "AK", .secret_key = "SK"};
  err e = {0};
  int rc = queue_system_open(&o, &f->q, &e);
  if (rc != 0)
    fprintf(stderr, "open: %s\n", e.msg);
  return rc;
}

static int setup(void **state)
{
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/tarn-queue-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  f->a = arena_new();
  *state = f;
  return open_q(f);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
  return remove(p);
}

static int teardown(void **state)
{
  fixture *f = *state;
  queue_system_close(f->q);
  arena_free(f->a);
  nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void make_queue(fixture *f, const char *name, const str_pair *attrs, size_t n)
{
  queue_info info;
  err e = {0};
  if (queue_create(f->q, name, attrs, n, NULL, 0, f->a, &info, &e) != 0)
    fail_msg("create '%s': %s", name, e.msg);
}

static void send_one(fixture *f, const char *q, const char *body, const char *group,
                     const char *dedup, queue_sent *out)
{
  queue_send m = {.body = body, .body_len = strlen(body), .delay_seconds = -1,
                  .group_id = group, .dedup_id = dedup};
  queue_sent sent;
  err e = {0};
  if (queue_message_send(f->q, q, &m, out != NULL ? out : &sent, &e) != 0)
    fail_msg("send to '%s': %s", q, e.msg);
}

static size_t receive(fixture *f, const char *q, uint32_t max, int vt, queue_message **msgs)
{
  queue_receive r = {.max = max, .visibility_timeout = vt, .wait_seconds = 0};
  size_t n = 0;
  err e = {0};
  if (queue_message_receive(f->q, q, &r, f->a, msgs, &n, &e) != 0)
    fail_msg("receive from '%s': %s", q, e.msg);
  return n;
}

static void test_send_receive_delete(void **state)
{
  fixture *f = *state;
  make_queue(f, "q1", NULL, 0);
  queue_sent sent;
  send_one(f, "q1", "hello", NULL, NULL, &sent);
  assert_string_equal(sent.md5_body, "5d41402abc4b2a76b9719d911017c592");
  queue_message *m;
  assert_int_equal(receive(f, "q1", 10, 30, &m), 1);
  assert_string_equal(m[0].body, "hello");
  assert_string_equal(m[0].message_id, sent.message_id);
  assert_int_equal(m[0].receive_count, 1);
  /* in flight: nothing more */
  queue_message *none;
  assert_int_equal(receive(f, "q1", 10, 30, &none), 0);
  uint64_t vis, fl, del;
  err e = {0};
  assert_int_equal(queue_counts(f->q, "q1", &vis, &fl, &del, &e), 0);
  assert_int_equal(vis, 0);
  assert_int_equal(fl, 1);
  /* a malformed handle is ReceiptHandleIsInvalid */
  assert_int_equal(queue_message_delete(f->q, "q1", "nonsense", &e), QUEUE_ERR_RECEIPT);
  assert_int_equal(queue_message_delete(f->q, "q1", m[0].receipt_handle, &e), 0);
  assert_int_equal(queue_counts(f->q, "q1", &vis, &fl, &del, &e), 0);
  assert_int_equal(vis + fl + del, 0);
  /* deleting again is accepted */
  assert_int_equal(queue_message_delete(f->q, "q1", m[0].receipt_handle, &e), 0);
  /* by ARN and URL too */
  send_one(f, "arn:aws:sqs:us-east-1:000000000000:q1", "x", NULL, NULL, NULL);
  send_one(f, "http://127.0.0.1:1/000000000000/q1", "y", NULL, NULL, NULL);
  assert_int_equal(receive(f, "q1", 10, 30, &m), 2);
  assert_int_equal(queue_message_send(f->q, "nope", &(queue_send){.body = "z", .body_len = 1,
                                                                  .delay_seconds = -1},
                                      &sent, &e),
                   QUEUE_ERR_NO_QUEUE);
}

static void test_visibility_and_redrive(void **state)
{
  fixture *f = *state;
  make_queue(f, "dlq", NULL, 0);
  str_pair attrs[] = {{"RedrivePolicy", "{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:"
                                        "000000000000:dlq\",\"maxReceiveCount\":\"2\"}"}};
  make_queue(f, "src", attrs, 1);
  send_one(f, "src", "poison", NULL, NULL, NULL);
  for (int i = 1; i <= 2; i++) {
    queue_message *m;
    assert_int_equal(receive(f, "src", 1, 30, &m), 1);
    assert_int_equal(m[0].receive_count, i);
    err e = {0};
    /* back to visible at once */
    assert_int_equal(queue_message_visibility(f->q, "src", m[0].receipt_handle, 0, &e), 0);
    /* the old handle cannot change visibility any more once visible */
    assert_int_equal(queue_message_visibility(f->q, "src", m[0].receipt_handle, 10, &e),
                     QUEUE_ERR_NOT_INFLIGHT);
  }
  queue_message *m;
  assert_int_equal(receive(f, "src", 1, 30, &m), 0);  /* moved */
  assert_int_equal(receive(f, "dlq", 1, 30, &m), 1);
  assert_string_equal(m[0].body, "poison");
  const char **names;
  size_t n;
  err e = {0};
  assert_int_equal(queue_dlq_sources(f->q, "dlq", f->a, &names, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_string_equal(names[0], "src");
}

static void test_fifo(void **state)
{
  fixture *f = *state;
  str_pair attrs[] = {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}};
  make_queue(f, "f.fifo", attrs, 2);
  queue_sent s1, s2;
  send_one(f, "f.fifo", "a1", "A", NULL, &s1);
  send_one(f, "f.fifo", "a1", "A", NULL, &s2);  /* duplicate (content) */
  assert_string_equal(s1.message_id, s2.message_id);
  assert_string_equal(s1.sequence_number, s2.sequence_number);
  send_one(f, "f.fifo", "a2", "A", NULL, NULL);
  send_one(f, "f.fifo", "b1", "B", NULL, NULL);
  queue_message *m;
  assert_int_equal(receive(f, "f.fifo", 1, 30, &m), 1);
  assert_string_equal(m[0].body, "a1");
  assert_string_equal(m[0].group_id, "A");
  /* group A is blocked while a1 is in flight: b1 comes next */
  queue_message *m2;
  assert_int_equal(receive(f, "f.fifo", 10, 30, &m2), 1);
  assert_string_equal(m2[0].body, "b1");
  err e = {0};
  assert_int_equal(queue_message_delete(f->q, "f.fifo", m[0].receipt_handle, &e), 0);
  assert_int_equal(receive(f, "f.fifo", 10, 30, &m), 1);
  assert_string_equal(m[0].body, "a2");
  /* a FIFO queue needs a group */
  queue_send bad = {.body = "x", .body_len = 1, .delay_seconds = -1};
  queue_sent out;
  assert_int_equal(queue_message_send(f->q, "f.fifo", &bad, &out, &e), QUEUE_ERR_MISSING);
}

typedef struct later {
  queue_system *q;
} later;

static void *send_later(void *arg)
{
  later *l = arg;
  struct timespec ts = {0, 200 * 1000000L};
  nanosleep(&ts, NULL);
  queue_send m = {.body = "late", .body_len = 4, .delay_seconds = -1};
  queue_sent out;
  err e = {0};
  queue_message_send(l->q, "lp", &m, &out, &e);
  return NULL;
}

static void test_long_poll_wakes(void **state)
{
  fixture *f = *state;
  make_queue(f, "lp", NULL, 0);
  later l = {f->q};
  pthread_t t;
  pthread_create(&t, NULL, send_later, &l);
  queue_receive r = {.max = 1, .visibility_timeout = -1, .wait_seconds = 20};
  queue_message *m = NULL;
  size_t n = 0;
  err e = {0};
  assert_int_equal(queue_message_receive(f->q, "lp", &r, f->a, &m, &n, &e), 0);
  pthread_join(t, NULL);
  assert_int_equal(n, 1);
  assert_string_equal(m[0].body, "late");
}

static void test_reopen_keeps_messages(void **state)
{
  fixture *f = *state;
  make_queue(f, "keep", NULL, 0);
  send_one(f, "keep", "one", NULL, NULL, NULL);
  send_one(f, "keep", "two", NULL, NULL, NULL);
  queue_message *m;
  assert_int_equal(receive(f, "keep", 1, 1, &m), 1);  /* in flight for 1 s */
  f->q = queue_system_close(f->q);
  assert_int_equal(open_q(f), 0);
  /* the in-flight one comes back after its deadline; poll until it does */
  size_t seen = 0;
  for (int i = 0; i < 100 && seen < 2; i++) {
    seen += receive(f, "keep", 10, 30, &m);
    if (seen < 2) {
      struct timespec ts = {0, 50 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  assert_int_equal(seen, 2);
}

/* ---- the lambda deliverer hook ---- */

typedef struct captured {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int calls;
  int fail_first;           /* answer an error to this many calls first */
  char arn[256];
  char *event;
} captured;

static int capture(void *ctx, const char *function_arn, const char *event, size_t len, err *e)
{
  captured *c = ctx;
  pthread_mutex_lock(&c->mu);
  c->calls++;
  if (c->fail_first > 0) {
    c->fail_first--;
    pthread_mutex_unlock(&c->mu);
    return err_set(e, ERR_UNAVAILABLE, "not now");
  }
  snprintf(c->arn, sizeof c->arn, "%s", function_arn);
  free(c->event);
  c->event = strndup(event, len);
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

static void test_lambda_deliverer(void **state)
{
  fixture *f = *state;
  f->q = queue_system_close(f->q);
  queue_options o = {.data_dir = f->dir, .access_key = "AK", .secret_key = "SK",
                     .retry_base_ms = 10};
  err e = {0};
  assert_int_equal(queue_system_open(&o, &f->q, &e), 0);
  assert_int_equal(queue_system_start(f->q, "http://127.0.0.1:1", &e), 0);
  captured c = {.fail_first = 1};
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.cv, NULL);
  queue_set_lambda_deliverer(f->q, capture, &c);
  queue_topic_info t;
  assert_int_equal(queue_topic_create(f->q, "events", NULL, 0, NULL, 0, f->a, &t, &e), 0);
  const char *fn = "arn:aws:lambda:us-east-1:000000000000:function:f";
  queue_sub_info sub;
  assert_int_equal(queue_sub_create(f->q, t.arn, "lambda", fn, NULL, 0, f->a, &sub, &e), 0);
  assert_true(sub.confirmed);
  queue_attr at = {.name = "k", .type = "String", .value = "v"};
  queue_publish p = {.message = "hello", .len = 5, .subject = "s", .attrs = &at, .nattrs = 1};
  char id[QUEUE_ID_MAX];
  assert_int_equal(queue_topic_publish(f->q, t.arn, &p, id, NULL, &e), 0);
  pthread_mutex_lock(&c.mu);
  while (c.event == NULL)
    pthread_cond_wait(&c.cv, &c.mu);
  pthread_mutex_unlock(&c.mu);
  assert_int_equal(c.calls, 2);  /* the failed first attempt was retried */
  assert_string_equal(c.arn, fn);
  assert_non_null(strstr(c.event, "\"EventSource\":\"aws:sns\""));
  assert_non_null(strstr(c.event, "\"EventSubscriptionArn\":\""));
  assert_non_null(strstr(c.event, id));
  assert_non_null(strstr(c.event, "\"Message\":\"hello\""));
  assert_non_null(strstr(c.event, "\"MessageAttributes\":{\"k\":{\"Type\":\"String\",\"Value\":\"v\"}}"));
  assert_non_null(strstr(c.event, "\"UnsubscribeUrl\":\"http://127.0.0.1:1/?Action=Unsubscribe"));
  f->q = queue_system_close(f->q);
  free(c.event);
  pthread_mutex_destroy(&c.mu);
  pthread_cond_destroy(&c.cv);
  assert_int_equal(open_q(f), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_md5_single),
      cmocka_unit_test(test_md5_sorted_and_binary),
      cmocka_unit_test(test_md5_trace_header),
      cmocka_unit_test(test_md5_none),
      cmocka_unit_test(test_filter_exact_and_numbers),
      cmocka_unit_test(test_filter_prefix_anything_but),
      cmocka_unit_test(test_filter_numeric_and_exists),
      cmocka_unit_test(test_filter_body),
      cmocka_unit_test(test_filter_invalid),
      cmocka_unit_test_setup_teardown(test_send_receive_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_visibility_and_redrive, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_long_poll_wakes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_keeps_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lambda_deliverer, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
