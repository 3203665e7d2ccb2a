-- tests/e2e/sql/corpus.sql -- queries checked against sqlite3 on the same data.
--
-- Each case starts with "-- name:" and ends with ";". {t} names a table:
-- tarn reads the objects ('s3://bucket/...'), sqlite the table loaded from
-- the same files (see TABLES in test_sql.py). Directives:
--   -- ordered              compare rows in order (the query has ORDER BY)
--   -- sqlite: <sql>         the reference query, when sqlite spells it differently
--   -- expect: a,b|c,d      the expected rows (CSV, rows split by '|'), no sqlite
--   -- error: <text>        tarn must fail with a message containing <text>
--   -- at: L:C              ... at that line and column

-- name: select_all
SELECT * FROM {people};

-- name: projection_filter
SELECT name, age FROM {people} WHERE age > 30;

-- name: filter_strings
SELECT id FROM {people} WHERE city = 'Amsterdam' AND name <> 'Cy';

-- name: arithmetic
SELECT id, age * 2 + 1, score / 2, age % 5, -age FROM {people} WHERE age IS NOT NULL;

-- name: integer_division
SELECT id, age / 7 FROM {people} WHERE age IS NOT NULL;

-- name: order_by_nulls_last
-- ordered
SELECT name, score FROM {people} ORDER BY score DESC NULLS LAST, name;

-- name: order_by_nulls_first
-- ordered
SELECT name, age FROM {people} ORDER BY age NULLS FIRST, id;

-- name: limit_offset
-- ordered
SELECT id FROM {people} ORDER BY id LIMIT 3 OFFSET 2;

-- name: top_n_desc
-- ordered
SELECT id, score FROM {people} ORDER BY score DESC NULLS LAST, id LIMIT 3;

-- name: count_star_and_columns
SELECT count(*), count(age), count(score), count(joined) FROM {people};

-- name: sum_avg_min_max
SELECT sum(age), avg(score), min(name), max(name), min(joined), max(age) FROM {people};

-- name: group_by_name
SELECT city, count(*), avg(age) FROM {people} GROUP BY city;

-- name: group_by_ordinal
SELECT city, count(*) FROM {people} GROUP BY 1;

-- name: group_by_expression
SELECT age / 10, count(*) FROM {people} GROUP BY age / 10;

-- name: having
SELECT city, count(*) AS n FROM {people} GROUP BY city HAVING count(*) > 1;

-- name: count_distinct
SELECT count(DISTINCT city), count(DISTINCT age) FROM {people};

-- name: distinct_rows
SELECT DISTINCT city FROM {people};

-- name: distinct_multi
SELECT DISTINCT age, city FROM {people};

-- name: null_semantics_compare
SELECT id FROM {people} WHERE age = NULL OR age <> age;

-- name: null_semantics_not_in
SELECT oid FROM {orders} WHERE pid NOT IN (1, 2);

-- name: null_semantics_in_with_null
-- expect:
SELECT oid FROM {orders} WHERE 5 NOT IN (SELECT pid FROM {orders});

-- name: null_three_valued_logic
SELECT id, (age > 30) AND (score > 80), (age > 30) OR (score > 80), NOT (age > 30) FROM {people};

-- name: is_null
SELECT id FROM {people} WHERE city IS NULL OR score IS NULL;

-- name: coalesce_nullif
SELECT id, coalesce(city, 'none'), nullif(age, 34) FROM {people};

-- name: case_when
SELECT id, CASE WHEN age < 30 THEN 'young' WHEN age < 50 THEN 'mid' ELSE 'old' END FROM {people};

-- name: case_operand
SELECT id, CASE city WHEN 'Paris' THEN 1 WHEN 'Berlin' THEN 2 ELSE 0 END FROM {people};

-- name: case_guards_division
SELECT id, CASE WHEN age > 0 THEN 100 / age END FROM {people};

-- name: between
SELECT id FROM {people} WHERE age BETWEEN 27 AND 34;

-- name: not_between
SELECT id FROM {people} WHERE age NOT BETWEEN 27 AND 34;

-- name: in_list
SELECT id FROM {people} WHERE city IN ('Paris', 'Berlin');

-- name: like_patterns
SELECT id FROM {people} WHERE name LIKE 'B%' OR name LIKE '%y' OR name LIKE '_al';

-- name: like_case_sensitive
SELECT id FROM {people} WHERE name LIKE 'a%';

-- name: ilike
-- expect: 1
SELECT id FROM {people} WHERE name ILIKE 'a%';

-- name: concat_and_functions
-- sqlite: SELECT id, name || '-' || city, replace(lower(name), 'É', 'é'), upper(city), length(name) FROM people
SELECT id, name || '-' || city, lower(name), upper(city), length(name) FROM {people};

-- name: substr_replace_trim
SELECT id, substr(name, 2, 2), replace(city, 'a', 'A'), trim('  x  ') FROM {people};

-- name: strpos
-- sqlite: SELECT id, instr(name, 'a') FROM people
SELECT id, strpos(name, 'a') FROM {people};

-- name: abs_round
SELECT id, abs(score - 80), round(score) FROM {people};

-- name: cast_varchar_to_int
SELECT CAST('42' AS integer) + 1, CAST(7 AS varchar) || 'x';

-- name: join_inner
SELECT p.name, o.amount FROM {people} p JOIN {orders} o ON p.id = o.pid;

-- name: join_left
SELECT p.name, o.oid FROM {people} p LEFT JOIN {orders} o ON p.id = o.pid;

-- name: join_right
SELECT p.name, o.oid FROM {people} p RIGHT JOIN {orders} o ON p.id = o.pid;

-- name: join_full
SELECT p.id, o.oid FROM {people} p FULL JOIN {orders} o ON p.id = o.pid;

-- name: join_cross
SELECT count(*) FROM {people} CROSS JOIN {orders};

-- name: join_using
-- sqlite: SELECT count(*) FROM people p JOIN (SELECT pid AS id, amount FROM orders) o USING (id)
SELECT count(*) FROM {people} p JOIN (SELECT pid AS id, amount FROM {orders}) o USING (id);

-- name: join_non_equi
SELECT p.id, o.oid FROM {people} p JOIN {orders} o ON o.amount > p.score;

-- name: join_residual_left
SELECT p.id, o.oid FROM {people} p LEFT JOIN {orders} o ON p.id = o.pid AND o.status = 'paid';

-- name: join_group
SELECT p.city, sum(o.amount), count(*) FROM {people} p JOIN {orders} o ON p.id = o.pid GROUP BY p.city;

-- name: join_three_way
SELECT a.id, b.oid, c.name FROM {people} a JOIN {orders} b ON a.id = b.pid JOIN {people} c ON c.age = a.age;

-- name: subquery_in
SELECT name FROM {people} WHERE id IN (SELECT pid FROM {orders} WHERE status = 'paid');

-- name: subquery_not_in_nonnull
SELECT name FROM {people} WHERE id NOT IN (SELECT pid FROM {orders} WHERE pid IS NOT NULL);

-- name: subquery_scalar
SELECT name FROM {people} WHERE score > (SELECT avg(score) FROM {people});

-- name: subquery_exists
SELECT count(*) FROM {people} WHERE EXISTS (SELECT 1 FROM {orders} WHERE amount > 200);

-- name: correlated_exists
SELECT p.name FROM {people} p WHERE EXISTS (SELECT 1 FROM {orders} o WHERE o.pid = p.id AND o.status = 'paid');

-- name: correlated_not_exists
SELECT p.name FROM {people} p WHERE NOT EXISTS (SELECT 1 FROM {orders} o WHERE o.pid = p.id);

-- name: correlated_in
SELECT p.id FROM {people} p WHERE p.age IN (SELECT q.age FROM {people} q WHERE q.city = p.city AND q.id <> p.id);

-- name: correlated_scalar_select
SELECT p.name, (SELECT count(*) FROM {orders} o WHERE o.pid = p.id), (SELECT sum(o.amount) FROM {orders} o WHERE o.pid = p.id) FROM {people} p;

-- name: correlated_scalar_where
SELECT o.oid FROM {orders} o WHERE o.amount > (SELECT avg(o2.amount) FROM {orders} o2 WHERE o2.status = o.status);

-- name: subquery_from
SELECT c, n FROM (SELECT city AS c, count(*) AS n FROM {people} GROUP BY city) t WHERE n >= 2;

-- name: cte
WITH big AS (SELECT pid, sum(amount) AS total FROM {orders} GROUP BY pid)
SELECT p.name, big.total FROM big JOIN {people} p ON p.id = big.pid WHERE big.total > 10;

-- name: union_distinct
SELECT city FROM {people} UNION SELECT status FROM {orders};

-- name: union_all
SELECT age FROM {people} UNION ALL SELECT pid FROM {orders};

-- name: intersect
SELECT id FROM {people} INTERSECT SELECT pid FROM {orders};

-- name: except
SELECT id FROM {people} EXCEPT SELECT pid FROM {orders};

-- name: union_order_limit
-- ordered
SELECT id FROM {people} UNION SELECT oid FROM {orders} ORDER BY 1 DESC LIMIT 4;

-- name: window_row_number
SELECT id, row_number() OVER (PARTITION BY city ORDER BY id) FROM {people};

-- name: window_rank_dense
SELECT id, rank() OVER (ORDER BY age), dense_rank() OVER (ORDER BY age) FROM {people} WHERE age IS NOT NULL;

-- name: window_lag_lead
SELECT id, lag(age) OVER (ORDER BY id), lead(age, 2) OVER (ORDER BY id) FROM {people};

-- name: window_running_sum
SELECT oid, sum(amount) OVER (ORDER BY oid) FROM {orders};

-- name: window_partition_agg
SELECT id, city, avg(score) OVER (PARTITION BY city), count(*) OVER (PARTITION BY city) FROM {people};

-- name: window_rows_frame
SELECT oid, sum(amount) OVER (ORDER BY oid ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM {orders};

-- name: window_after_group
SELECT city, count(*), rank() OVER (ORDER BY count(*) DESC) FROM {people} GROUP BY city;

-- name: select_without_from
SELECT 1 + 1, 'x' || 'y', 10 / 3, 10 % 3;

-- name: timestamps
-- sqlite: SELECT oid, ts FROM orders WHERE ts >= '2021-03-01 00:00:00'
SELECT oid, ts FROM {orders} WHERE ts >= TIMESTAMP '2021-03-01 00:00:00';

-- name: date_functions
-- expect: 2021,1,1,10|2021,1,2,11|2021,2,3,9
SELECT year(ts), month(ts), day(ts), hour(ts) FROM {orders} WHERE oid < 103;

-- name: date_trunc_group
-- expect: 2021-01-01 00:00:00,2|2021-02-01 00:00:00,2|2021-03-01 00:00:00,2|2021-04-01 00:00:00,3
SELECT date_trunc('month', ts) m, count(*) FROM {orders} GROUP BY 1;

-- name: glob_sales
SELECT custid, year, sum(count) FROM {sales} WHERE custid = 157231 GROUP BY custid, year;

-- name: slide17_fixed
SELECT gram, year, sum(count) FROM {sales} WHERE custid = 157231 GROUP BY gram, year;

-- name: gzip_objects
SELECT gram, sum(count), sum(price) FROM {sales_gz} GROUP BY gram;

-- name: zstd_objects
SELECT gram, sum(count), sum(price) FROM {sales_zst} GROUP BY gram;

-- name: gzip_single
SELECT * FROM {people_gz};

-- name: csv_quotes_newlines_crlf_utf8
SELECT id, text, note FROM {quotes};

-- name: csv_utf8_length
SELECT id, length(text) FROM {quotes} WHERE id = 4;

-- name: csv_semicolon_bool
SELECT k, v, flag FROM {semi};

-- name: csv_noheader
SELECT column0 + column1 FROM {noheader};

-- name: csv_empty_object
-- expect: 0
SELECT count(*) FROM {empty};

-- name: json_lines
SELECT user, kind, n, at FROM {events};

-- name: json_group
SELECT user, sum(n), count(*) FROM {events} GROUP BY user;

-- name: json_nested_as_text
-- expect: ann,/a
SELECT user, json_extract_scalar(meta, '$.page') FROM {events} WHERE meta IS NOT NULL;

-- name: json_escapes
-- expect: "tab	here ""quoted"" é"
SELECT note FROM {events} WHERE note IS NOT NULL;

-- name: json_bool
SELECT user FROM {events} WHERE ok;

-- name: read_csv_options
-- expect: 1,x|2,y
SELECT a, b FROM read_csv('s3://{bucket}/edge/pipes.psv', delim='|', header=true);

-- name: read_csv_columns
-- expect: 40
SELECT x + 10 FROM read_csv('s3://{bucket}/edge/noheader.csv', columns='x BIGINT, y BIGINT') WHERE y = 40;

-- name: ragged_skip
-- expect: 1,2|6,7
SELECT a, b FROM read_csv('s3://{bucket}/edge/ragged.csv', ignore_errors=true);

-- name: error_ragged
-- error: malformed CSV in 's3://{bucket}/edge/ragged.csv' line 3
SELECT * FROM 's3://{bucket}/edge/ragged.csv';

-- name: error_unknown_column
-- error: unknown column 'custd' (did you mean 'custid'?)
-- at: 1:8
SELECT custd FROM {sales};

-- name: error_slide17
-- error: 'custid' must be an aggregate expression or appear in GROUP BY clause
-- at: 1:8
SELECT custid, year, sum(count) FROM {sales} WHERE custid = 157231 GROUP BY gram, year ORDER BY year ASC;

-- name: error_type_mismatch
-- error: type mismatch
-- at: 3:12
SELECT id
FROM {people}
WHERE name > 5;

-- name: error_syntax
-- error: syntax error
-- at: 2:6
SELECT id FROM {people}
WHERE;

-- name: error_no_objects
-- error: no objects match
SELECT * FROM 's3://{bucket}/nothing/*.csv';

-- name: error_bad_cast
-- error: cannot cast 'Ann' to integer
SELECT CAST(name AS integer) FROM {people};

-- name: error_division_by_zero
-- error: division by zero
SELECT age / (id - id) FROM {people};
