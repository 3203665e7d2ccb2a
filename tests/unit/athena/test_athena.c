/* tests/unit/athena/test_athena.c -- unit tests of athena/ over a real store
 * in a temporary directory: a query's life to SUCCEEDED, its result read
 * back in pages (quotes, NULL and the empty string kept apart), the
 * statement types, and the recovery of an execution left QUEUED by a
 * process that stopped. The API is covered end to end
 * (tests/e2e/test_athena.py).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "athena/athena.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
  snprintf(dir, sizeof dir, "/tmp/tarn-athena-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state)
{
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static json_t *J(const char *text)
{
  json_t *v = json_loads(text, 0, NULL);
  assert_non_null(v);
  return v;
}

static const char *state_of(json_t *q)
{
  return json_string_value(json_object_get(json_object_get(q, "Status"), "State"));
}

/* Polls until a final state; returns the QueryExecution. */
static json_t *wait_final(athena *a, const char *id)
{
  for (int i = 0; i < 60000; i++) {
    json_t *q;
    err e = {0};
    assert_int_equal(athena_query_get(a, id, &q, &e), 0);
    const char *s = state_of(q);
    if (strcmp(s, "SUCCEEDED") == 0 || strcmp(s, "FAILED") == 0 || strcmp(s, "CANCELLED") == 0)
      return q;
    json_decref(q);
    usleep(1000);
  }
  fail_msg("query %s never ended", id);
  return NULL;
}

static void test_query_and_pages(void **state)
{
  store *st;
  athena *a;
  err e = {0};
  assert_int_equal(store_open(dir, &st, &e), 0);
  assert_int_equal(store_bucket_create(st, "out", &e), 0);
  athena_options o = {.data_dir = dir, .st = st, .workers = 2};
  assert_int_equal(athena_open(&o, &a, &e), 0);
  assert_int_equal(athena_start(a, &e), 0);
  json_t *in = J("{\"QueryString\": \"SELECT * FROM (VALUES (1, 'x\\\"y', NULL), (2, '', 'a,b'))"
                 " t(n, s, m) ORDER BY n\", \"ResultConfiguration\": "
                 "{\"OutputLocation\": \"s3://out/r\"}}");
  char id[37];
  assert_int_equal(athena_query_start(a, in, NULL, id, &e), 0);
  json_t *q = wait_final(a, id);
  assert_string_equal(state_of(q), "SUCCEEDED");
  assert_string_equal(json_string_value(json_object_get(q, "StatementType")), "DML");
  char loc[96];
  snprintf(loc, sizeof loc, "s3://out/r/%s.csv", id);
  assert_string_equal(json_string_value(json_object_get(json_object_get(q,
                      "ResultConfiguration"), "OutputLocation")), loc);
  json_decref(q);

  /* page by page, two rows each: header + row 1, then row 2 */
  json_t *req = json_pack("{s:s, s:i}", "QueryExecutionId", id, "MaxResults", 2);
  json_t *page;
  assert_int_equal(athena_query_results(a, req, &page, &e), 0);
  json_t *rows = json_object_get(json_object_get(page, "ResultSet"), "Rows");
  assert_int_equal(json_array_size(rows), 2);
  json_t *want1 = J("[{\"Data\": [{\"VarCharValue\": \"n\"}, {\"VarCharValue\": \"s\"}, "
                    "{\"VarCharValue\": \"m\"}]}, {\"Data\": [{\"VarCharValue\": \"1\"}, "
                    "{\"VarCharValue\": \"x\\\"y\"}, {}]}]");
  assert_true(json_equal(rows, want1));
  json_t *token = json_object_get(page, "NextToken");
  assert_non_null(token);
  json_object_set(req, "NextToken", token);
  json_t *page2;
  assert_int_equal(athena_query_results(a, req, &page2, &e), 0);
  json_t *want2 = J("[{\"Data\": [{\"VarCharValue\": \"2\"}, {\"VarCharValue\": \"\"}, "
                    "{\"VarCharValue\": \"a,b\"}]}]");
  assert_true(json_equal(json_object_get(json_object_get(page2, "ResultSet"), "Rows"), want2));
  assert_null(json_object_get(page2, "NextToken"));
  json_t *cols = json_object_get(json_object_get(json_object_get(page2, "ResultSet"),
                                                 "ResultSetMetadata"), "ColumnInfo");
  assert_string_equal(json_string_value(json_object_get(json_array_get(cols, 0), "Type")),
                      "integer");
  json_decref(want1);
  json_decref(want2);
  json_decref(page);
  json_decref(page2);
  json_decref(req);
  json_decref(in);

  /* statement types */
  in = J("{\"QueryString\": \"/* c */ SHOW TABLES\", \"ResultConfiguration\": "
         "{\"OutputLocation\": \"s3://out/r/\"}}");
  assert_int_equal(athena_query_start(a, in, NULL, id, &e), 0);
  q = wait_final(a, id);
  assert_string_equal(json_string_value(json_object_get(q, "StatementType")), "UTILITY");
  json_decref(q);
  json_decref(in);
  a = athena_close(a);
  st = store_close(st);
}

static void test_recovery(void **state)
{
  store *st;
  athena *a;
  err e = {0};
  assert_int_equal(store_open(dir, &st, &e), 0);
  athena_options o = {.data_dir = dir, .st = st, .workers = 1};
  assert_int_equal(athena_open(&o, &a, &e), 0);
  /* never started: the execution is committed QUEUED and stays so */
  json_t *in = J("{\"QueryString\": \"SELECT 1\", \"ResultConfiguration\": "
                 "{\"OutputLocation\": \"s3://out/r/\"}}");
  char id[37];
  assert_int_equal(athena_query_start(a, in, NULL, id, &e), 0);
  json_decref(in);
  a = athena_close(a);
  assert_int_equal(athena_open(&o, &a, &e), 0);
  json_t *q;
  assert_int_equal(athena_query_get(a, id, &q, &e), 0);
  assert_string_equal(state_of(q), "FAILED");
  assert_non_null(strstr(json_string_value(json_object_get(json_object_get(q, "Status"),
                                                           "StateChangeReason")),
                         "did not finish"));
  json_decref(q);
  /* unknown ids and a missing output location */
  assert_int_equal(athena_query_get(a, "nope", &q, &e), ERR_NOT_FOUND);
  in = J("{\"QueryString\": \"SELECT 1\"}");
  assert_int_equal(athena_query_start(a, in, NULL, id, &e), ERR_INVALID);
  assert_non_null(strstr(e.msg, "No output location provided"));
  json_decref(in);
  a = athena_close(a);
  st = store_close(st);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_query_and_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
