/* tests/unit/catalog/test_catalog.c -- the partition predicate language
 * and table-name patterns (catalog/expr.c), the typed accessors
 * (catalog/accessors.c) and the store's round trip through LMDB
 * (catalog/store.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "catalog/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *keys(void)
{
  return json_loads("[{\"Name\":\"year\",\"Type\":\"int\"},{\"Name\":\"month\",\"Type\":"
                    "\"string\"},{\"Name\":\"region\",\"Type\":\"varchar(10)\"}]",
                    0, NULL);
}

/* Does text match the partition (year, month, region)? */
static bool match(const char *text, const char *y, const char *m, const char *r)
{
  json_t *k = keys();
  catalog_expr *x = NULL;
  err e = {0};
  int rc = catalog_expr_parse(text, k, &x, &e);
  if (rc != 0)
    fprintf(stderr, "parse '%s': %s\n", text, e.msg);
  assert_int_equal(rc, 0);
  json_t *values = json_pack("[sss]", y, m, r);
  bool ok = catalog_expr_match(x, values);
  json_decref(values);
  catalog_expr_free(x);
  json_decref(k);
  return ok;
}

static void bad(const char *text, const char *want)
{
  json_t *k = keys();
  catalog_expr *x = NULL;
  err e = {0};
  assert_int_equal(catalog_expr_parse(text, k, &x, &e), ERR_INVALID_INPUT);
  assert_null(x);
  if (strstr(e.msg, want) == NULL)
    fprintf(stderr, "message: %s\n", e.msg);
  assert_non_null(strstr(e.msg, want));
  json_decref(k);
}

static void test_comparisons(void **state)
{
  (void)state;
  assert_true(match("year = 2024", "2024", "01", "eu"));
  assert_true(match("year = '2024'", "2024", "01", "eu"));
  assert_false(match("year = 2023", "2024", "01", "eu"));
  assert_true(match("year <> 2023", "2024", "01", "eu"));
  assert_true(match("year != 2023", "2024", "01", "eu"));
  /* numeric keys compare as numbers, strings as text */
  assert_true(match("year > 999", "2024", "01", "eu"));
  assert_false(match("month > '1'", "01", "01", "eu") && false);
  assert_false(match("month > '1'", "2024", "01", "eu"));
  assert_true(match("month >= '01'", "2024", "01", "eu"));
  assert_true(match("month < '02'", "2024", "01", "eu"));
  assert_true(match("year <= 2024.0", "2024", "01", "eu"));
  assert_true(match("year = 2024", "02024", "01", "eu"));
  assert_false(match("month = '1'", "2024", "01", "eu"));
  /* a value that is not a number matches no comparison on a numeric key */
  assert_false(match("year = 1", "x", "01", "eu"));
  assert_false(match("year <> 1", "x", "01", "eu"));
}

static void test_logic(void **state)
{
  (void)state;
  assert_true(match("year = 2024 AND month = '01'", "2024", "01", "eu"));
  assert_false(match("year = 2024 and month = '02'", "2024", "01", "eu"));
  assert_true(match("year = 2023 OR month = '01'", "2024", "01", "eu"));
  assert_true(match("NOT year = 2023", "2024", "01", "eu"));
  assert_false(match("not (year = 2024 or region = 'us')", "2024", "01", "eu"));
  /* AND binds tighter than OR */
  assert_true(match("year = 1 AND month = 'x' OR region = 'eu'", "2024", "01", "eu"));
  assert_false(match("year = 1 AND (month = 'x' OR region = 'eu')", "2024", "01", "eu"));
  assert_true(match("((year = 2024))", "2024", "01", "eu"));
}

static void test_in_between_like(void **state)
{
  (void)state;
  assert_true(match("month IN ('01', '02')", "2024", "01", "eu"));
  assert_false(match("month NOT IN ('01', '02')", "2024", "01", "eu"));
  assert_true(match("year in (2023, 2024)", "2024", "01", "eu"));
  assert_true(match("year BETWEEN 2020 AND 2024", "2024", "01", "eu"));
  assert_false(match("year BETWEEN 2020 AND 2023", "2024", "01", "eu"));
  assert_true(match("year NOT BETWEEN 2020 AND 2023", "2024", "01", "eu"));
  assert_true(match("month BETWEEN '01' AND '03' AND year = 2024", "2024", "02", "eu"));
  assert_true(match("region LIKE 'e%'", "2024", "01", "eu-west"));
  assert_true(match("region LIKE 'e_'", "2024", "01", "eu"));
  assert_false(match("region LIKE 'e_'", "2024", "01", "eux"));
  assert_true(match("region NOT LIKE 'us%'", "2024", "01", "eu"));
  assert_true(match("region LIKE '%west%'", "2024", "01", "eu-west-1"));
  assert_true(match("region IS NOT NULL", "2024", "01", "eu"));
  assert_false(match("region IS NULL", "2024", "01", "eu"));
  /* names: case-insensitive, quoted */
  assert_true(match("YEAR = 2024 and \"month\" = '01' and `region` = 'eu'", "2024", "01",
                    "eu"));
  /* quotes in strings */
  assert_true(match("region = 'o''neil'", "2024", "01", "o'neil"));
}

static void test_errors(void **state)
{
  (void)state;
  bad("day = '01'", "'day' is not a partition key");
  bad("year = 'abc'", "a number was expected");
  bad("year =", "a literal was expected");
  bad("year = 1 AND", "a partition key was expected");
  bad("year = 1)", "unexpected text");
  bad("(year = 1", "')' was expected");
  bad("month = 'x", "unterminated string");
  bad("year IN (1, 2", "')' was expected");
  bad("year BETWEEN 1 2", "AND was expected");
  bad("year NOT 1", "IN, BETWEEN or LIKE");
  bad("year ~ 1", "a comparison was expected");
  char deep[400];
  size_t n = 0;
  for (int i = 0; i < 100; i++)
    deep[n++] = '(';
  strcpy(deep + n, "year = 1");
  bad(deep, "nested too deeply");
  char *longer = malloc(CATALOG_MAX_EXPRESSION + 10);
  memset(longer, ' ', CATALOG_MAX_EXPRESSION + 9);
  longer[CATALOG_MAX_EXPRESSION + 9] = '\0';
  bad(longer, "less than or equal to 2048");
  free(longer);
}

static void test_types(void **state)
{
  (void)state;
  assert_true(catalog_type_numeric("bigint"));
  assert_true(catalog_type_numeric("decimal(10,2)"));
  assert_true(catalog_type_numeric("INT"));
  assert_true(catalog_type_numeric("long"));
  assert_false(catalog_type_numeric("string"));
  assert_false(catalog_type_numeric("date"));
  assert_false(catalog_type_numeric("interval"));
  assert_false(catalog_type_numeric(NULL));
}

static void test_accessors(void **state)
{
  (void)state;
  json_t *t = json_loads(
      "{\"Name\":\"t\",\"Parameters\":{\"classification\":\"csv\",\"skip.header.line.count\":"
      "\"1\"},\"PartitionKeys\":[{\"Name\":\"dt\",\"Type\":\"string\"}],"
      "\"StorageDescriptor\":{\"Location\":\"s3://b/t/\",\"Columns\":[{\"Name\":\"id\","
      "\"Type\":\"bigint\",\"Comment\":\"key\"},{\"Name\":\"v\",\"Type\":\"decimal(10,2)\"}],"
      "\"InputFormat\":\"org.apache.hadoop.mapred.TextInputFormat\",\"SerdeInfo\":{"
      "\"SerializationLibrary\":\"org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe\","
      "\"Parameters\":{\"field.delim\":\"|\"}}}}",
      0, NULL);
  assert_non_null(t);
  catalog_storage s = {0};
  catalog_storage_of(t, &s);
  assert_string_equal(s.location, "s3://b/t/");
  assert_int_equal(s.format, CATALOG_FORMAT_CSV);
  assert_string_equal(s.field_delim, "|");
  assert_int_equal(s.skip_header_lines, 1);
  catalog_column cols[4];
  assert_int_equal(catalog_columns(t, cols, 4), 2);
  assert_string_equal(cols[1].type, "decimal(10,2)");
  assert_string_equal(cols[0].comment, "key");
  assert_null(cols[1].comment);
  assert_int_equal(catalog_partition_keys(t, cols, 4), 1);
  assert_string_equal(cols[0].name, "dt");
  /* a partition names only its location: the table's format stays */
  json_t *p = json_loads("{\"Values\":[\"2024\"],\"StorageDescriptor\":{\"Location\":"
                         "\"s3://b/t/dt=2024/\"}}",
                         0, NULL);
  catalog_storage_of(p, &s);
  assert_string_equal(s.location, "s3://b/t/dt=2024/");
  assert_int_equal(s.format, CATALOG_FORMAT_CSV);
  const char *vals[2];
  assert_int_equal(catalog_partition_values(p, vals, 2), 1);
  assert_string_equal(vals[0], "2024");
  json_t *pq = json_loads("{\"StorageDescriptor\":{\"SerdeInfo\":{\"SerializationLibrary\":"
                          "\"org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe\"}}}",
                          0, NULL);
  catalog_storage s2 = {0};
  catalog_storage_of(pq, &s2);
  assert_int_equal(s2.format, CATALOG_FORMAT_PARQUET);
  json_t *js = json_loads("{\"StorageDescriptor\":{\"SerdeInfo\":{\"SerializationLibrary\":"
                          "\"org.openx.data.jsonserde.JsonSerDe\"}}}",
                          0, NULL);
  catalog_storage s3 = {0};
  catalog_storage_of(js, &s3);
  assert_int_equal(s3.format, CATALOG_FORMAT_JSON);
  json_decref(t);
  json_decref(p);
  json_decref(pq);
  json_decref(js);
}

static void test_store(void **state)
{
  (void)state;
  char dir[] = "/tmp/tarn-catalog-XXXXXX";
  assert_non_null(mkdtemp(dir));
  catalog *c = NULL;
  err e = {0};
  assert_int_equal(catalog_open(dir, &c, &e), 0);
  json_t *d = NULL;
  assert_int_equal(catalog_database_get(c, "default", &d, &e), 0);
  json_decref(d);
  json_t *in = json_pack("{s:s, s:s, s:{s:s}}", "Name", "Sales", "Description", "d",
                         "Parameters", "k", "v");
  assert_int_equal(catalog_database_create(c, in, NULL, &e), 0);
  assert_int_equal(catalog_database_create(c, in, NULL, &e), ERR_ALREADY_EXISTS);
  json_decref(in);
  json_t *tin = json_loads(
      "{\"Name\":\"Clicks\",\"TableType\":\"EXTERNAL_TABLE\",\"PartitionKeys\":[{\"Name\":"
      "\"year\",\"Type\":\"int\"}],\"StorageDescriptor\":{\"Columns\":[{\"Name\":\"id\","
      "\"Type\":\"bigint\"}],\"Location\":\"s3://b/clicks/\"}}",
      0, NULL);
  assert_int_equal(catalog_table_create(c, "SALES", tin, NULL, &e), 0);
  assert_int_equal(catalog_table_create(c, "nope", tin, NULL, &e), ERR_ENTITY_NOT_FOUND);
  assert_string_equal(e.msg, "Database nope not found.");
  json_decref(tin);
  for (int y = 2020; y < 2025; y++) {
    char ys[8];
    snprintf(ys, sizeof ys, "%d", y);
    json_t *pin = json_pack("{s:[s]}", "Values", ys);
    assert_int_equal(catalog_partition_create(c, "sales", "clicks", pin, &e), 0);
    json_decref(pin);
  }
  json_t *list = NULL;
  char *next = NULL;
  assert_int_equal(catalog_partition_list(c, "sales", "clicks", "year >= 2023", NULL, 0, &list,
                                          &next, &e),
                   0);
  assert_int_equal(json_array_size(list), 2);
  assert_null(next);
  json_decref(list);
  assert_int_equal(catalog_partition_list(c, "sales", "clicks", NULL, NULL, 2, &list, &next, &e),
                   0);
  assert_int_equal(json_array_size(list), 2);
  assert_non_null(next);
  json_decref(list);
  char *next2 = NULL;
  assert_int_equal(catalog_partition_list(c, "sales", "clicks", NULL, next, 10, &list, &next2,
                                          &e),
                   0);
  assert_int_equal(json_array_size(list), 3);
  assert_null(next2);
  free(next);
  json_decref(list);
  catalog_close(c);

  /* reopened: still there; deleting the database takes its tables */
  assert_int_equal(catalog_open(dir, &c, &e), 0);
  json_t *t = NULL;
  assert_int_equal(catalog_table_get(c, "sales", "clicks", &t, &e), 0);
  assert_string_equal(json_string_value(json_object_get(t, "Name")), "clicks");
  json_decref(t);
  assert_int_equal(catalog_database_delete(c, "sales", &e), 0);
  assert_int_equal(catalog_table_get(c, "sales", "clicks", &t, &e), ERR_ENTITY_NOT_FOUND);
  assert_false(catalog_shared(c));

  /* crawler records: CLAIM replaces only a READY one */
  json_t *cr = json_pack("{s:s, s:s}", "Name", "c1", "State", "READY");
  assert_int_equal(catalog_crawler_put(c, "c1", cr, CATALOG_PUT_CLAIM, &e), ERR_ENTITY_NOT_FOUND);
  assert_int_equal(catalog_crawler_put(c, "c1", cr, CATALOG_PUT_CREATE, &e), 0);
  json_object_set_new(cr, "State", json_string("RUNNING"));
  assert_int_equal(catalog_crawler_put(c, "c1", cr, CATALOG_PUT_CLAIM, &e), 0);
  assert_int_equal(catalog_crawler_put(c, "c1", cr, CATALOG_PUT_CLAIM, &e), ERR_CONFLICT);
  json_t *got = NULL;
  assert_int_equal(catalog_crawler_get(c, "c1", &got, &e), 0);
  assert_string_equal(json_string_value(json_object_get(got, "State")), "RUNNING");
  json_decref(got);
  json_decref(cr);
  catalog_close(c);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_comparisons), cmocka_unit_test(test_logic),
      cmocka_unit_test(test_in_between_like), cmocka_unit_test(test_errors),
      cmocka_unit_test(test_types), cmocka_unit_test(test_accessors),
      cmocka_unit_test(test_store),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
