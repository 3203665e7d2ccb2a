/* tests/unit/sql/test_sql.c -- the SQL engine through its API over a
 * temporary folder: lexer and parser errors with their line and column,
 * binder errors (unknown column with the nearest name, type mismatch, the
 * seed talk's GROUP BY mistake), and results of each feature. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/buf.h"
#include "sql/exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

static void put(const char *key, const char *text)
{
  char path[512];
  snprintf(path, sizeof path, "%s/b/%s", root, key);
  char *slash = strrchr(path, '/');
  *slash = '\0';
  char cmd[600];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
  assert_int_equal(system(cmd), 0);
  *slash = '/';
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fwrite(text, 1, strlen(text), f);
  fclose(f);
}

static int setup(void **state)
{
  (void)state;
  snprintf(root, sizeof root, "/tmp/tarn-sql-test-%d", (int)getpid());
  mkdir(root, 0755);
  put("emp.csv", "id,name,dept,salary,hired\n"
                 "1,ann,10,100.5,2019-01-05\n"
                 "2,bob,20,200,2020-03-01\n"
                 "3,cy,,50,2018-07-30\n"
                 "4,\"d, \"\"q\"\"\",10,75.25,2021-12-31\n");
  put("dept.csv", "dept;dname\n10;eng\n20;ops\n30;hr\n");
  put("logs/2024/a.jsonl", "{\"u\":\"x\",\"n\":1,\"t\":\"2024-01-01 10:00:00\"}\n"
                           "{\"u\":\"y\",\"n\":2,\"extra\":{\"k\":[1]}}\n");
  put("logs/2024/b.jsonl", "{\"u\":\"x\",\"n\":3}\n");
  put("logs/_SUCCESS", "");
  put("sales.csv", "custid,year,gram,count\n157231,2019,a,3\n157231,2018,b,4\n9,2019,a,5\n");
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  return system(cmd) == 0 ? 0 : -1;
}

typedef struct res {
  buf b;
} res;

static int on_cols(void *ctx, const sql_column *cols, size_t n, err *e)
{
  res *r = ctx;
  (void)e;
  for (size_t i = 0; i < n; i++) {
    if (i)
      buf_puts(&r->b, ",");
    buf_puts(&r->b, cols[i].name);
  }
  buf_puts(&r->b, "\n");
  return 0;
}

static int on_rows(void *ctx, const sql_batch *b, err *e)
{
  res *r = ctx;
  (void)e;
  for (size_t i = 0; i < sql_batch_rows(b); i++) {
    for (size_t c = 0; c < sql_batch_columns(b); c++) {
      if (c)
        buf_puts(&r->b, ",");
      sql_cell_csv(b, c, i, &r->b);
    }
    buf_puts(&r->b, "\n");
  }
  return 0;
}

/* runs sql; returns the CSV (caller frees) or NULL with e/stats set */
static char *run_opt(const char *sql, sql_options *opt, int *code, err *e, sql_stats *st)
{
  sql_objsrc src;
  sql__objsrc_dir(&src, root);
  res r;
  buf_init(&r.b, 1 << 26);
  sql_sink sink = {&r, on_cols, on_rows};
  int rc = sql__run_src(&src, sql, opt, &sink, st, e);
  if (code != NULL)
    *code = rc;
  sql__objsrc_dir_free(&src);
  if (rc < 0) {
    buf_release(&r.b);
    return NULL;
  }
  char *out = strdup(r.b.data != NULL ? r.b.data : "");
  buf_release(&r.b);
  return out;
}

static char *run(const char *sql, err *e, sql_stats *st)
{
  sql_options opt;
  memset(&opt, 0, sizeof opt);
  opt.threads = 2;
  return run_opt(sql, &opt, NULL, e, st);
}

static void expect(const char *sql, const char *want)
{
  err e;
  sql_stats st;
  char *got = run(sql, &e, &st);
  if (got == NULL)
    fail_msg("query failed: %s\n%s", e.msg, sql);
  if (strcmp(got, want) != 0)
    fail_msg("query: %s\nwant:\n%s\ngot:\n%s", sql, want, got);
  free(got);
}

static void expect_error(const char *sql, const char *msg_part, int line, int col)
{
  err e;
  sql_stats st;
  char *got = run(sql, &e, &st);
  if (got != NULL)
    fail_msg("query should fail: %s\ngot:\n%s", sql, got);
  if (strstr(e.msg, msg_part) == NULL)
    fail_msg("query: %s\nwant message with: %s\ngot: %s", sql, msg_part, e.msg);
  if (line > 0) {
    if (st.error_line != line || st.error_column != col)
      fail_msg("query: %s\nwant %d:%d, got %d:%d (%s)", sql, line, col, st.error_line,
               st.error_column, e.msg);
  }
}

static void test_syntax_errors(void **state)
{
  (void)state;
  expect_error("SELECT FROM x", "syntax error at 'from'", 1, 8);
  expect_error("SELECT a,\n  b FROM", "expected a table", 2, 9);
  expect_error("SELECT 'abc", "unterminated string literal", 1, 8);
  expect_error("SELECT 1 +", "expected an expression", 1, 11);
  expect_error("DELETE FROM t", "only SELECT statements", 1, 1);
  expect_error("SELECT (1, 2)", "row constructors", 1, 10);
  expect_error("", "empty statement", 1, 1);
  expect_error("SELECT 1 x y", "expected end of statement", 1, 12);
}

static void test_binder_errors(void **state)
{
  (void)state;
  expect_error("SELECT custd FROM 's3://b/sales.csv'", "unknown column 'custd' (did you mean 'custid'?)",
               1, 8);
  /* the seed talk, slide 17 */
  expect_error("SELECT custid, year, sum(count) FROM 's3://b/sales.csv' WHERE custid = '157231' "
               "GROUP BY gram, year ORDER BY year ASC",
               "'custid' must be an aggregate expression or appear in GROUP BY clause", 1, 8);
  expect_error("SELECT name + 1 FROM 's3://b/emp.csv'", "type mismatch", 1, 13);
  expect_error("SELECT * FROM 's3://b/emp.csv' WHERE name = id", "cannot apply '=' to varchar and bigint",
               1, 43);
  expect_error("SELECT lenght(name) FROM 's3://b/emp.csv'", "did you mean 'length'", 1, 8);
  expect_error("SELECT dept FROM 's3://b/emp.csv' e JOIN 's3://b/dept.csv' d ON e.dept = d.dept",
               "column 'dept' is ambiguous", 1, 8);
  expect_error("SELECT * FROM 's3://b/emp.csv' WHERE sum(id) > 1", "not allowed in WHERE", 1, 38);
  expect_error("SELECT * FROM sales", "table 'sales' does not exist", 1, 15);
  expect_error("SELECT * FROM 's3://b/nothing*.csv'", "no objects match", 1, 15);
  expect_error("SELECT * FROM 's3://nob/x.csv'", "no bucket 'nob'", 1, 15);
  expect_error("SELECT id FROM 's3://b/emp.csv' UNION SELECT id, name FROM 's3://b/emp.csv'",
               "different number of fields", 1, 33);
  expect_error("SELECT CAST(name AS date) FROM 's3://b/emp.csv'", "cannot cast 'ann' to date", 0, 0);
  expect_error("SELECT 1/0", "division by zero", 0, 0);
}

static void test_basics(void **state)
{
  (void)state;
  expect("SELECT id, name FROM 's3://b/emp.csv' WHERE salary > 60 ORDER BY id",
         "id,name\n1,ann\n2,bob\n4,\"d, \"\"q\"\"\"\n");
  expect("SELECT count(*), count(dept), sum(salary), min(hired), max(name) FROM 's3://b/emp.csv'",
         "_col0,_col1,_col2,_col3,_col4\n4,3,425.75,2018-07-30,\"d, \"\"q\"\"\"\n");
  expect("SELECT dept, count(*) AS n FROM 's3://b/emp.csv' GROUP BY dept ORDER BY dept NULLS FIRST",
         "dept,n\n,1\n10,2\n20,1\n");
  expect("SELECT 1 + 2 * 3, 7 / 2, 7 % 3, -2.5, 'a' || 'b', 10 / 4.0",
         "_col0,_col1,_col2,_col3,_col4,_col5\n7,3,1,-2.5,ab,2.5\n");
  expect("SELECT NULL = NULL, NULL OR true, NULL AND false, 1 IN (2, NULL), 1 IN (1, NULL), "
         "NULL IS NULL, coalesce(NULL, 3), nullif(2, 2)",
         "_col0,_col1,_col2,_col3,_col4,_col5,_col6,_col7\n,true,false,,true,true,3,\n");
  expect("SELECT CASE WHEN salary > 90 THEN 'hi' WHEN salary > 60 THEN 'mid' ELSE 'lo' END c "
         "FROM 's3://b/emp.csv' ORDER BY id",
         "c\nhi\nhi\nlo\nmid\n");
  expect("SELECT name FROM 's3://b/emp.csv' WHERE name LIKE '_o%' OR name ILIKE 'A%' ORDER BY 1",
         "name\nann\nbob\n");
  expect("SELECT id FROM 's3://b/emp.csv' WHERE id BETWEEN 2 AND 3 AND dept IS NOT NULL", "id\n2\n");
  expect("SELECT DISTINCT dept FROM 's3://b/emp.csv' WHERE dept IS NOT NULL ORDER BY dept DESC",
         "dept\n20\n10\n");
  expect("SELECT id FROM 's3://b/emp.csv' ORDER BY id DESC LIMIT 2 OFFSET 1", "id\n3\n2\n");
}

static void test_joins_sets_subqueries(void **state)
{
  (void)state;
  expect("SELECT e.id, d.dname FROM 's3://b/emp.csv' e JOIN 's3://b/dept.csv' d ON e.dept = d.dept "
         "ORDER BY e.id",
         "id,dname\n1,eng\n2,ops\n4,eng\n");
  expect("SELECT e.id, d.dname FROM 's3://b/emp.csv' e LEFT JOIN 's3://b/dept.csv' d USING (dept) "
         "ORDER BY e.id",
         "id,dname\n1,eng\n2,ops\n3,\n4,eng\n");
  expect("SELECT d.dname, count(e.id) FROM 's3://b/emp.csv' e RIGHT JOIN 's3://b/dept.csv' d "
         "ON e.dept = d.dept GROUP BY d.dname ORDER BY 1",
         "dname,_col1\neng,2\nhr,0\nops,1\n");
  expect("SELECT coalesce(e.name, '-'), coalesce(d.dname, '-') FROM 's3://b/emp.csv' e "
         "FULL JOIN 's3://b/dept.csv' d ON e.dept = d.dept ORDER BY 1, 2",
         "_col0,_col1\n-,hr\nann,eng\nbob,ops\ncy,-\n\"d, \"\"q\"\"\",eng\n");
  expect("SELECT count(*) FROM 's3://b/emp.csv', 's3://b/dept.csv'", "_col0\n12\n");
  expect("SELECT dept FROM 's3://b/emp.csv' INTERSECT SELECT dept FROM 's3://b/dept.csv' ORDER BY 1",
         "dept\n10\n20\n");
  expect("SELECT dept FROM 's3://b/dept.csv' EXCEPT SELECT dept FROM 's3://b/emp.csv'",
         "dept\n30\n");
  expect("SELECT count(*) FROM (SELECT dept FROM 's3://b/emp.csv' UNION ALL "
         "SELECT dept FROM 's3://b/dept.csv')",
         "_col0\n7\n");
  expect("SELECT name FROM 's3://b/emp.csv' WHERE dept IN (SELECT dept FROM 's3://b/dept.csv' "
         "WHERE dname = 'ops')",
         "name\nbob\n");
  expect("SELECT name FROM 's3://b/emp.csv' WHERE salary = (SELECT max(salary) FROM "
         "'s3://b/emp.csv')",
         "name\nbob\n");
  expect("WITH t AS (SELECT dept, avg(salary) a FROM 's3://b/emp.csv' GROUP BY dept) "
         "SELECT dept, a FROM t WHERE a > 80 ORDER BY dept",
         "dept,a\n10,87.875\n20,200.0\n");
  expect("SELECT n FROM (VALUES (1), (2), (3)) AS v(n) WHERE n > 1 ORDER BY n", "n\n2\n3\n");
  expect("SELECT e.name FROM 's3://b/emp.csv' e WHERE NOT EXISTS (SELECT 1 FROM 's3://b/dept.csv' d "
         "WHERE d.dept = e.dept)",
         "name\ncy\n");
  expect("SELECT e.name FROM 's3://b/emp.csv' e WHERE EXISTS (SELECT 1 FROM 's3://b/dept.csv' d "
         "WHERE d.dept > e.dept) ORDER BY 1",
         "name\nann\nbob\n\"d, \"\"q\"\"\"\n");
  expect_error("SELECT e.name FROM 's3://b/emp.csv' e WHERE e.id > (SELECT max(d.dept) FROM "
               "'s3://b/dept.csv' d WHERE d.dept > e.dept)",
               "may refer to the outer query only in equalities", 1, 110);
  expect("SELECT e.id, (SELECT count(*) FROM 's3://b/emp.csv' x WHERE x.dept = e.dept) FROM "
         "'s3://b/emp.csv' e ORDER BY 1",
         "id,_col1\n1,2\n2,1\n3,0\n4,2\n");
}

static void test_windows(void **state)
{
  (void)state;
  expect("SELECT id, row_number() OVER (PARTITION BY dept ORDER BY id DESC) rn, "
         "rank() OVER (ORDER BY dept) r, sum(salary) OVER (PARTITION BY dept) s, "
         "lag(id) OVER (ORDER BY id) p, lead(id, 1, 0) OVER (ORDER BY id) nx "
         "FROM 's3://b/emp.csv' ORDER BY id",
         "id,rn,r,s,p,nx\n1,2,1,175.75,,2\n2,1,3,200.0,1,3\n3,1,4,50.0,2,4\n4,1,1,175.75,3,0\n");
  expect("SELECT id, sum(id) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) s, "
         "dense_rank() OVER (ORDER BY dept NULLS FIRST) d FROM 's3://b/emp.csv' ORDER BY id",
         "id,s,d\n1,1,2\n2,3,3\n3,5,1\n4,7,2\n");
}

static void test_functions(void **state)
{
  (void)state;
  expect("SELECT lower('AbC'), upper('x'), length('héllo'), substr('hello', 2, 3), "
         "trim('  a '), replace('aXbX', 'X', '-'), split_part('a,b,c', ',', 2), "
         "strpos('hello', 'l'), starts_with('abc', 'ab'), reverse('abc')",
         "_col0,_col1,_col2,_col3,_col4,_col5,_col6,_col7,_col8,_col9\n"
         "abc,X,5,ell,a,a-b-,b,3,true,cba\n");
  expect("SELECT regexp_like('abc123', '[0-9]+'), regexp_extract('abc123', '([a-z]+)([0-9]+)', 2), "
         "regexp_replace('a1b2', '[0-9]', '#')",
         "_col0,_col1,_col2\ntrue,123,a#b#\n");
  expect("SELECT year(DATE '2020-03-04'), month(TIMESTAMP '2020-03-04 05:06:07'), "
         "hour(TIMESTAMP '2020-03-04 05:06:07'), date_trunc('month', DATE '2020-03-04'), "
         "date_add('day', 30, DATE '2020-02-01'), date_diff('day', DATE '2020-01-01', DATE '2020-03-01'), "
         "extract(dow FROM DATE '2024-01-01'), from_unixtime(0), to_unixtime(TIMESTAMP '1970-01-02 00:00:00')",
         "_col0,_col1,_col2,_col3,_col4,_col5,_col6,_col7,_col8\n"
         "2020,3,5,2020-03-01,2020-03-02,60,1,1970-01-01 00:00:00,86400.0\n");
  expect("SELECT abs(-3), round(2.345, 2), floor(2.7), ceil(2.1), sqrt(16), power(2, 10), "
         "mod(7, 3), ln(1), log10(100)",
         "_col0,_col1,_col2,_col3,_col4,_col5,_col6,_col7,_col8\n3,2.350,2.0,3.0,4.0,1024.0,1,0.0,2.0\n");
  expect("SELECT CAST('12' AS integer) + 1, TRY_CAST('x' AS integer), CAST(1.5 AS varchar), "
         "CAST('2020-01-02' AS date), CAST(2.5 AS bigint), CAST(true AS integer)",
         "_col0,_col1,_col2,_col3,_col4,_col5\n13,,1.5,2020-01-02,3,1\n");
  expect("SELECT stddev(x), approx_distinct(x), arbitrary(x) IS NOT NULL, bool_and(x > 0), "
         "bool_or(x > 2), count(DISTINCT x) FROM (VALUES 1, 2, 2, 3) t(x)",
         "_col0,_col1,_col2,_col3,_col4,_col5\n0.816496580927726,3,true,true,true,3\n");
}

static void test_json_and_globs(void **state)
{
  (void)state;
  expect("SELECT u, sum(n) FROM 's3://b/logs/**/*.jsonl' GROUP BY u ORDER BY u",
         "u,_col1\nx,4\ny,2\n");
  expect("SELECT count(*) FROM read_json('s3://b/logs/2024/')", "_col0\n3\n");
  expect("SELECT extra, json_extract_scalar(extra, '$.k[0]') FROM 's3://b/logs/2024/a.jsonl' "
         "WHERE extra IS NOT NULL",
         "extra,_col1\n\"{\"\"k\"\":[1]}\",1\n");
  expect("SELECT dname FROM read_csv('s3://b/dept.csv', delim=';', header=true) WHERE dept = 30",
         "dname\nhr\n");
  expect("SELECT column1 FROM read_csv('s3://b/dept.csv', header=false) WHERE column0 = '10'",
         "column1\neng\n");
}

static void test_stats(void **state)
{
  (void)state;
  err e;
  sql_stats st;
  char *got = run("SELECT * FROM 's3://b/emp.csv'", &e, &st);
  assert_non_null(got);
  free(got);
  assert_int_equal(st.rows, 4);
  assert_int_equal(st.objects_scanned, 1);
  assert_true(st.bytes_scanned > 100);
  assert_true(st.cost_usd > 0.0000499 && st.cost_usd < 0.0000501); /* 10 MB minimum */
}

/* Hive partitions: columns from key=value folders; filters on them leave
 * objects unopened (bytes and objects scanned) */
static void test_partitions(void **state)
{
  (void)state;
  put("hive/year=2023/month=12/p.csv", "id,amt\n000042,10\n7,20\n");
  put("hive/year=2024/month=01/p.csv", "id,amt\n1,5\n2,6\n");
  put("hive/year=2024/month=02/p.csv", "id,amt\n3,7\n");
  put("hive/year=__HIVE_DEFAULT_PARTITION__/month=02/p.csv", "id,amt\n4,1\n");
  expect("SELECT id, amt, year, month, typeof(year), typeof(month) FROM 's3://b/hive/**/*.csv' "
         "ORDER BY id",
         "id,amt,year,month,_col4,_col5\n000042,10,2023,12,bigint,varchar\n"
         "1,5,2024,01,bigint,varchar\n2,6,2024,01,bigint,varchar\n3,7,2024,02,bigint,varchar\n"
         "4,1,,02,bigint,varchar\n7,20,2023,12,bigint,varchar\n");
  err e;
  sql_stats st;
  char *got = run("SELECT sum(amt) FROM 's3://b/hive/**/*.csv' WHERE year = 2024 AND month = '02'",
                  &e, &st);
  assert_non_null(got);
  assert_string_equal(got, "_col0\n7\n");
  free(got);
  assert_int_equal(st.objects_scanned, 1);
  assert_int_equal(st.bytes_scanned, strlen("id,amt\n3,7\n"));
  got = run("SELECT count(*) FROM 's3://b/hive/**/*.csv' WHERE year > 2030", &e, &st);
  assert_non_null(got);
  assert_string_equal(got, "_col0\n0\n");
  free(got);
  assert_int_equal(st.objects_scanned, 0);
  assert_int_equal(st.bytes_scanned, 0);
  /* through a subquery, and with a condition that also reads a file column */
  got = run("SELECT count(*) FROM (SELECT * FROM 's3://b/hive/**/*.csv') t "
            "WHERE year IS NULL OR (year = 2023 AND amt > 15)", &e, &st);
  assert_non_null(got);
  assert_string_equal(got, "_col0\n2\n");
  free(got);
  assert_int_equal(st.objects_scanned, 4);
  got = run("SELECT count(*) FROM 's3://b/hive/**/*.csv' WHERE year IS NULL", &e, &st);
  assert_non_null(got);
  assert_string_equal(got, "_col0\n1\n");
  free(got);
  assert_int_equal(st.objects_scanned, 1);
  /* a partition column's type comes from the whole listing, not from what
     the filter keeps (month = '12' alone would look like a number) */
  expect("SELECT count(*), max(typeof(month)) FROM 's3://b/hive/**/*.csv' "
         "WHERE regexp_like(month, '^1')", "_col0,_col1\n2,varchar\n");
  /* the objects of other partitions are not even sampled: their text ids
     do not make the column VARCHAR */
  put("hive2/k=a/p.csv", "id\nabc\n");
  put("hive2/k=b/p.csv", "id\n5\n");
  expect("SELECT id + 1, typeof(id) FROM 's3://b/hive2/*/*.csv' WHERE k = 'b'",
         "_col0,_col1\n6,bigint\n");
  expect("SELECT count(*) FROM 's3://b/hive2/*/*.csv' WHERE k = 'zz'", "_col0\n0\n");
  expect("SELECT max(typeof(id)) FROM 's3://b/hive2/*/*.csv'", "_col0\nvarchar\n");
  /* a file column of the key's name wins, and is what the filter means */
  put("hive3/year=2024/p.csv", "year,v\n2020,1\n");
  put("hive3/year=2021/p.csv", "year,v\n2024,2\n");
  expect("SELECT v FROM 's3://b/hive3/*/*.csv' WHERE year = 2024", "v\n2\n");
  expect("SELECT count(*) FROM read_csv('s3://b/hive/**/*.csv', hive_partitioning=false) "
         "WHERE id = '000042'", "_col0\n1\n");
  expect_error("SELECT year FROM read_csv('s3://b/hive/**/*.csv', hive_partitioning=false)",
               "year", 1, 8);
}

/* type detection keeps values whose meaning a type would change as text */
static void test_type_detection(void **state)
{
  (void)state;
  put("ids.csv", "id,n,x\n000042,1,1.50\n7,2,2.0\n");
  expect("SELECT id, typeof(id), typeof(n), x FROM 's3://b/ids.csv' WHERE id = '000042'",
         "id,_col1,_col2,x\n000042,varchar,bigint,1.5\n");
  put("cases.csv", "a,b,c,d,e\n+5,1e3,99999999999999999999,2024-1-5,0x1F\n");
  expect("SELECT * FROM 's3://b/cases.csv' WHERE typeof(a) = 'varchar' AND typeof(b) = 'varchar' "
         "AND typeof(c) = 'varchar' AND typeof(d) = 'varchar' AND typeof(e) = 'varchar'",
         "a,b,c,d,e\n+5,1e3,99999999999999999999,2024-1-5,0x1F\n");
  put("big.jsonl", "{\"n\":99999999999999999999,\"d\":\"2024-1-5\",\"s\":\"000042\"}\n");
  expect("SELECT n, typeof(n), d, typeof(d), s FROM 's3://b/big.jsonl'",
         "n,_col1,d,_col3,s\n99999999999999999999,varchar,2024-1-5,varchar,000042\n");
  expect("SELECT upper('café'), lower('ÀÉÎ'), upper('ß'), lower('ΣΑΣ'), upper('ǆ')",
         "_col0,_col1,_col2,_col3,_col4\nCAFÉ,àéî,ß,σασ,Ǆ\n");
}

/* a CSV of about 3 MB whose quoted fields hold line breaks, so the byte
 * ranges read in parallel start inside quotes */
static void test_parallel_quoted_newlines(void **state)
{
  (void)state;
  size_t cap = 4u << 20;
  char *text = malloc(cap);
  size_t n = (size_t)sprintf(text, "id,body,n\n");
  long total = 0;
  int rows = 0;
  for (int i = 0; n < 3u << 20; i++) {
    int v = i % 97;
    total += v;
    rows++;
    if (i % 3 == 0)
      n += (size_t)sprintf(text + n, "%d,\"multi\nline, with \"\"quotes\"\"\nand more\",%d\n", i, v);
    else
      n += (size_t)sprintf(text + n, "%d,plain,%d\n", i, v);
  }
  put("multi.csv", text);
  free(text);
  char want[128];
  snprintf(want, sizeof want, "_col0,_col1,_col2\n%d,%ld,%d\n", rows, total, rows);
  expect("SELECT count(*), sum(n), count(DISTINCT id) FROM 's3://b/multi.csv'", want);
  /* streamed (no breaker): every row once, bodies intact */
  snprintf(want, sizeof want, "_col0\n%d\n", rows);
  expect("SELECT count(*) FROM (SELECT id FROM 's3://b/multi.csv' WHERE body LIKE 'multi%and more' "
         "OR body = 'plain')", want);
}

/* A range of 1 MiB whose byte before it is the opening quote of a field
 * holding lines "8,oops,8,x": guessing its first record at the first line
 * break reads those as records, whose CAST fails (not a malformed row, so
 * no resplit); the query runs again without guessing and reads the
 * object's own records. */
static void put_guess_csv(const char *key, int *nrows, long *nsum)
{
  size_t cap = 4u << 20;
  char *text = malloc(cap);
  size_t n = (size_t)sprintf(text, "id,body,n,pad\n1,\"a\",1,x\n");
  char xs[128];
  memset(xs, 'x', sizeof xs);
  long sum = 0;
  int rows = 0, id = 0;
  for (int b = 1; b <= 3; b++) {
    size_t at = ((size_t)b << 20) - 3; /* the special record's first byte */
    while (n < at) {
      int body = rows % 100;
      char head[64];
      int hl = sprintf(head, "%d,\"%d\",1,", id += 2, body);
      /* the last record before it is padded to end right there */
      size_t pad = at - n > 100 ? 20 : at - n - (size_t)hl - 1;
      n += (size_t)sprintf(text + n, "%s%.*s\n", head, (int)pad, xs);
      sum += body;
      rows++;
    }
    /* more lines than a batch, so that the batch read from the guess is
       all of them (not cut short by a malformed row) */
    n += (size_t)sprintf(text + n, "1,\"\n");
    for (int k = 0; k < COL_BATCH + 10; k++)
      n += (size_t)sprintf(text + n, "8,oops,8,x\n");
    n += (size_t)sprintf(text + n, "\",1,x\n");
  }
  n += (size_t)sprintf(text + n, "%d,\"5\",1,x\n", id += 2);
  sum += 5;
  rows++;
  put(key, text);
  free(text);
  *nrows = rows;
  *nsum = sum;
}

static void test_guess_inside_quotes(void **state)
{
  (void)state;
  int rows;
  long sum;
  put_guess_csv("guess.csv", &rows, &sum);
  char want[128];
  snprintf(want, sizeof want, "_col0,_col1\n%d,%ld\n", rows, sum);
  expect("SELECT count(*), sum(CAST(body AS BIGINT)) FROM 's3://b/guess.csv' WHERE id % 2 = 0",
         want);
}

/* A folder source whose listing takes LIST_DELAY_MS: every attempt of a
 * query lists its table once, so each costs at least that much. */
#define LIST_DELAY_MS 1500
static sql_objsrc slow_inner;

static int slow_list(void *ctx, const char *bucket, const char *prefix, objsrc_list_fn fn,
                     void *arg, err *e)
{
  usleep(LIST_DELAY_MS * 1000);
  return slow_inner.list(ctx, bucket, prefix, fn, arg, e);
}

/* The query's time limit covers its retries: the guess of test_guess_inside_quotes
 * fails, the query runs again without guessing, and that second attempt
 * runs within what the first left of the limit (not a limit of its own).
 * Two listings alone take longer than the limit, one does not. */
static void test_time_limit_covers_retries(void **state)
{
  (void)state;
  int rows;
  long sum;
  put_guess_csv("slow/guess.csv", &rows, &sum);
  sql__objsrc_dir(&slow_inner, root);
  sql_objsrc src = slow_inner;
  src.list = slow_list;
  sql_options opt;
  memset(&opt, 0, sizeof opt);
  opt.threads = 2;
  opt.time_limit_ms = 2 * LIST_DELAY_MS - 200;
  res r;
  buf_init(&r.b, 1 << 20);
  sql_sink sink = {&r, on_cols, on_rows};
  err e;
  sql_stats st;
  int rc = sql__run_src(&src, "SELECT count(*), sum(CAST(body AS BIGINT)) FROM "
                        "'s3://b/slow/guess.csv' WHERE id % 2 = 0", &opt, &sink, &st, &e);
  if (rc != ERR_REQUEST_TIMEOUT)
    fail_msg("want a time-out, got %d (%s) after %llu ms: %s", rc, e.msg,
             (unsigned long long)st.elapsed_ms, r.b.data != NULL ? r.b.data : "");
  char want[64];
  snprintf(want, sizeof want, "of %llu ms", (unsigned long long)opt.time_limit_ms);
  assert_non_null(strstr(e.msg, want));
  assert_true(st.elapsed_ms >= opt.time_limit_ms);
  buf_release(&r.b);
  sql__objsrc_dir_free(&slow_inner);
}

static void test_limits(void **state)
{
  (void)state;
  sql_options opt;
  memset(&opt, 0, sizeof opt);
  opt.threads = 2;
  err e;
  sql_stats st;
  int code = 0;
  /* memory: a join of a table with itself four times over a 1 MB budget */
  opt.memory_limit = 1u << 20;
  char *got = run_opt("SELECT a.id, b.id FROM 's3://b/multi.csv' a JOIN 's3://b/multi.csv' b "
                      "ON a.n = b.n", &opt, &code, &e, &st);
  assert_null(got);
  assert_int_equal(code, ERR_ENTITY_TOO_LARGE);
  assert_non_null(strstr(e.msg, "memory limit"));
  /* time: a cross join that would run for hours */
  opt.memory_limit = 0;
  opt.time_limit_ms = 50;
  got = run_opt("SELECT count(*) FROM 's3://b/emp.csv' a, 's3://b/multi.csv' b, "
                "'s3://b/multi.csv' c", &opt, &code, &e, &st);
  assert_null(got);
  assert_int_equal(code, ERR_REQUEST_TIMEOUT);
  assert_non_null(strstr(e.msg, "time limit"));
  /* cancellation */
  atomic_bool cancel = true;
  opt.time_limit_ms = 0;
  opt.cancel = &cancel;
  got = run_opt("SELECT count(*) FROM 's3://b/multi.csv'", &opt, &code, &e, &st);
  assert_null(got);
  assert_int_equal(code, ERR_REQUEST_TIMEOUT);
  assert_string_equal(e.msg, "query cancelled");
}

/* every size a query sets is checked before it is allocated: the 32 MiB
 * value limit (naming the function), then the memory budget */
static void test_value_limits(void **state)
{
  (void)state;
  /* exact sizes: only 16 MiB of the 100,000-byte pad string is used */
  expect("SELECT length(rpad('', 16777216, rpad('', 100000, 'xy'))) AS n", "n\n16777216\n");
  expect("SELECT rpad('ab', 5, 'é€') AS r, lpad('ab', 5, 'xy') AS l", "r,l\nabé€é,xyxab\n");
  expect("SELECT length(rpad('', 33554432, 'a')) AS n", "n\n33554432\n"); /* at the limit */
  expect_error("SELECT rpad('', 33554433, 'a')",
               "rpad: result of 33554433 bytes exceeds the 32 MiB value limit", 0, 0);
  expect_error("SELECT rpad('', 20000000, 'é')",
               "rpad: result of 40000000 bytes exceeds the 32 MiB value limit", 0, 0);
  expect_error("SELECT lpad('x', 9223372036854775807, 'ab')",
               "lpad: result of 9223372036854775807 bytes", 0, 0);
  expect_error("SELECT lpad('x', -1, 'ab')", "lpad: length must not be negative", 0, 0);
  expect_error("SELECT length(replace(rpad('',16777216,'a'),'a',rpad('',16777216,'b')))",
               "replace: result of more than", 0, 0);
  expect("SELECT length(replace(rpad('', 1000, 'a'), 'a', 'bc')) AS n", "n\n2000\n");
  expect_error("SELECT rpad('', 20000000, 'a') || rpad('', 20000000, 'b')",
               "concat: result of 40000000 bytes exceeds the 32 MiB value limit", 0, 0);
  expect_error("SELECT upper(rpad('', 20000000, 'a') || rpad('', 20000000, 'b'))",
               "concat: result of 40000000 bytes", 0, 0);
  expect_error("SELECT regexp_replace(rpad('', 20000000, 'a'), 'a', 'bb')",
               "regexp_replace:", 0, 0);
  expect("SELECT length(regexp_replace(rpad('', 1000, 'a'), 'a', 'bbb')) AS n", "n\n3000\n");
  /* a long format is not cut short */
  expect("SELECT length(date_format(TIMESTAMP '2024-01-02 03:04:05', "
         "rpad('', 2000, '%Y-'))) AS n", "n\n3334\n"); /* 667 x 2024, 666 x - */
  /* regex limits: an error, not false / 0 / NULL */
  expect_error("SELECT regexp_like(rpad('', 40, 'a') || 'b', '(a+)+$')",
               "regexp_like: the pattern needs too much backtracking", 0, 0);
  expect_error("SELECT regexp_count(rpad('', 40, 'a') || 'b', '(a|aa)+$')",
               "regexp_count: the pattern needs too much backtracking", 0, 0);
  expect_error("SELECT regexp_extract(rpad('', 40, 'a') || 'b', '(a+)+$')",
               "regexp_extract: the pattern needs too much backtracking", 0, 0);
  expect("SELECT regexp_count('héllo', '') AS n", "n\n6\n");
  /* found by fuzz_sql_funcs: a NULL cast to varchar cleared row i / 2's pointer */
  expect("SELECT CAST(dept AS VARCHAR) AS d FROM 's3://b/emp.csv' ORDER BY id",
         "d\n10\n20\n\n10\n");
  /* the memory budget: 20 MB per row passes 64 MB within a batch */
  sql_options opt;
  memset(&opt, 0, sizeof opt);
  opt.threads = 2;
  opt.memory_limit = 64u << 20;
  err e;
  sql_stats st;
  int code = 0;
  char *got = run_opt("SELECT max(length(rpad(body, 20000000, 'z'))) FROM 's3://b/multi.csv'",
                      &opt, &code, &e, &st);
  assert_null(got);
  assert_int_equal(code, ERR_ENTITY_TOO_LARGE);
  assert_non_null(strstr(e.msg, "rpad: a result of 20000000 bytes passes the query's memory "
                                "limit of 64 MB"));
  /* under the budget the same query runs */
  opt.memory_limit = 0;
  got = run_opt("SELECT max(length(rpad(name, 2000000, 'z'))) AS m FROM 's3://b/emp.csv'", &opt,
                &code, &e, &st);
  assert_non_null(got);
  assert_string_equal(got, "m\n2000000\n");
  free(got);
}

/* sql_options.object (S3 Select's FROM S3Object): one given object, read
 * with the given options, and nothing else */
static void test_object_source(void **state)
{
  (void)state;
  const char *csv = "a,b\n1,007\nx,1.50\n";
  int fd = memfd_create("object", MFD_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, csv, strlen(csv)), (ssize_t)strlen(csv));
  sql_object_source o = {.name = "S3Object", .fd = fd, .size = strlen(csv),
                         .format = SQL_OBJECT_CSV, .header = true, .text = true};
  sql_options opt;
  memset(&opt, 0, sizeof opt);
  opt.threads = 2;
  opt.object = &o;
  err e;
  sql_stats st;
  int code;
  /* header names, every value as text (000-padded and decimal values kept) */
  char *got = run_opt("SELECT s.b, s.a FROM s3object s", &opt, &code, &e, &st);
  assert_non_null(got);
  assert_string_equal(got, "b,a\n007,1\n1.50,x\n");
  free(got);
  /* positional names: the header row is a record */
  o.header = false;
  o.positional = true;
  got = run_opt("SELECT s._2 FROM S3Object s WHERE s._1 <> 'x'", &opt, &code, &e, &st);
  assert_non_null(got);
  assert_string_equal(got, "_2\nb\n007\n");
  free(got);
  /* nothing else can be read or written */
  got = run_opt("SELECT * FROM 's3://data/nums.csv'", &opt, &code, &e, &st);
  assert_null(got);
  assert_int_equal(code, ERR_INVALID);
  assert_non_null(strstr(e.msg, "only the table 'S3Object'"));
  got = run_opt("COPY (SELECT * FROM S3Object) TO 's3://data/out.csv' (FORMAT csv)", &opt, &code,
                &e, &st);
  assert_null(got);
  /* without the option the name means nothing */
  opt.object = NULL;
  got = run_opt("SELECT * FROM S3Object", &opt, &code, &e, &st);
  assert_null(got);
  close(fd);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_syntax_errors),
    cmocka_unit_test(test_binder_errors),
    cmocka_unit_test(test_basics),
    cmocka_unit_test(test_joins_sets_subqueries),
    cmocka_unit_test(test_windows),
    cmocka_unit_test(test_functions),
    cmocka_unit_test(test_json_and_globs),
    cmocka_unit_test(test_stats),
    cmocka_unit_test(test_partitions),
    cmocka_unit_test(test_type_detection),
    cmocka_unit_test(test_parallel_quoted_newlines),
      cmocka_unit_test(test_guess_inside_quotes),
    cmocka_unit_test(test_time_limit_covers_retries),
    cmocka_unit_test(test_limits),
    cmocka_unit_test(test_value_limits),
    cmocka_unit_test(test_object_source),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
