"""tests/e2e/test_partitions.py -- Hive-style partitions in SQL over buckets.

Objects put with boto3 under key=value folders
(s3://b/sales/year=2024/month=01/part-0.csv); queries POSTed to /_tarn/sql
as JSON, which carries the column types and the stats (bytes and objects
scanned). Pruning is proven the way Athena's bill proves it: a filter on
partition columns scans exactly the bytes of the matching objects.
"""
import json

import pytest

CSV = {
    "sales/year=2023/month=12/part-0.csv": "id,amt\n000042,10\n7,20\n",
    "sales/year=2024/month=01/part-0.csv": "id,amt\n1,5\n2,6\n",
    "sales/year=2024/month=01/part-1.csv": "id,amt\n8,1\n",
    "sales/year=2024/month=02/part-0.csv": "id,amt\n3,7\n",
}
JSONL = {
    "events/dt=2024-01-05/region=eu%2Fwest/a.jsonl": '{"u":"x","n":1}\n{"u":"y","n":2}\n',
    "events/dt=2024-01-06/region=us/a.jsonl": '{"u":"x","n":4}\n',
    "events/dt=2024-01-06/region=__HIVE_DEFAULT_PARTITION__/a.jsonl": '{"u":"z","n":8}\n',
}


@pytest.fixture(scope="module")
def lake(tarn, s3):
    b = "partitions-e2e"
    s3.create_bucket(Bucket=b)
    for key, body in list(CSV.items()) + list(JSONL.items()):
        s3.put_object(Bucket=b, Key=key, Body=body.encode())
    return b


def sql(tarn, query):
    r = tarn.request("POST", "/_tarn/sql", headers={"Accept": "application/json"},
                     body=query.encode(), timeout=60)
    doc = json.loads(r.text)
    assert r.status_code == 200, doc
    assert "error" not in doc, doc
    return doc


def size(*keys):
    return sum(len((CSV.get(k) or JSONL[k]).encode()) for k in keys)


def test_partition_columns_and_types(tarn, lake):
    doc = sql(tarn, "SELECT * FROM 's3://%s/sales/**/*.csv' ORDER BY amt" % lake)
    assert [c["name"] for c in doc["columns"]] == ["id", "amt", "year", "month"]
    types = {c["name"]: c["type"].lower() for c in doc["columns"]}
    # year is a number; month=01 keeps its leading zero, so it stays text
    assert types["year"] == "bigint" and types["month"] == "varchar"
    assert types["id"] == "varchar"  # 000042
    assert doc["rows"][0] == ["8", 1, 2024, "01"]
    assert ["000042", 10, 2023, "12"] in doc["rows"]
    assert doc["stats"]["objects_scanned"] == 4


def test_filter_prunes_objects(tarn, lake):
    doc = sql(tarn, "SELECT sum(amt), count(*) FROM 's3://%s/sales/**/*.csv' "
                    "WHERE year = 2024 AND month = '01'" % lake)
    assert doc["rows"] == [[12, 3]]
    assert doc["stats"]["objects_scanned"] == 2
    assert doc["stats"]["bytes_scanned"] == size("sales/year=2024/month=01/part-0.csv",
                                                 "sales/year=2024/month=01/part-1.csv")
    # the same filter without pruning would read every object
    full = sql(tarn, "SELECT count(*) FROM 's3://%s/sales/**/*.csv'" % lake)
    assert full["stats"]["bytes_scanned"] == size(*CSV)


def test_mixed_prefixes(tarn, lake):
    # an OR across partitions, IN, and a condition mixing partition and file columns
    doc = sql(tarn, "SELECT id FROM 's3://%s/sales/**/*.csv' "
                    "WHERE (year = 2023 OR month IN ('02')) ORDER BY id" % lake)
    assert doc["rows"] == [["000042"], ["3"], ["7"]]
    assert doc["stats"]["bytes_scanned"] == size("sales/year=2023/month=12/part-0.csv",
                                                 "sales/year=2024/month=02/part-0.csv")
    doc = sql(tarn, "SELECT id FROM 's3://%s/sales/**/*.csv' "
                    "WHERE year = 2024 OR amt > 15" % lake)
    assert sorted(r[0] for r in doc["rows"]) == ["1", "2", "3", "7", "8"]
    assert doc["stats"]["objects_scanned"] == 4  # amt is in the files: nothing pruned
    # a filter pushed through a subquery and a join still prunes
    doc = sql(tarn, "SELECT count(*) FROM (SELECT * FROM 's3://%s/sales/**/*.csv') s "
                    "JOIN (SELECT 2023 AS y) t ON s.year = t.y WHERE s.month = '12'" % lake)
    assert doc["rows"] == [[2]]
    assert doc["stats"]["objects_scanned"] == 1


def test_filter_that_prunes_everything(tarn, lake):
    doc = sql(tarn, "SELECT count(*), sum(amt) FROM 's3://%s/sales/**/*.csv' "
                    "WHERE year > 2030" % lake)
    assert doc["rows"] == [[0, None]]
    assert doc["stats"]["bytes_scanned"] == 0
    assert doc["stats"]["objects_scanned"] == 0


def test_json_lines_partitions(tarn, lake):
    doc = sql(tarn, "SELECT u, n, dt, region FROM 's3://%s/events/**/*.jsonl' ORDER BY n" % lake)
    types = {c["name"]: c["type"].lower() for c in doc["columns"]}
    assert types["dt"] == "date" and types["region"] == "varchar"
    # %2F decodes to '/'; __HIVE_DEFAULT_PARTITION__ is NULL
    assert doc["rows"] == [["x", 1, "2024-01-05", "eu/west"], ["y", 2, "2024-01-05", "eu/west"],
                           ["x", 4, "2024-01-06", "us"], ["z", 8, "2024-01-06", None]]
    doc = sql(tarn, "SELECT sum(n) FROM 's3://%s/events/**/*.jsonl' "
                    "WHERE dt = DATE '2024-01-06' AND region IS NULL" % lake)
    assert doc["rows"] == [[8]]
    assert doc["stats"]["bytes_scanned"] == size(
        "events/dt=2024-01-06/region=__HIVE_DEFAULT_PARTITION__/a.jsonl")


def test_hive_partitioning_off(tarn, lake):
    doc = sql(tarn, "SELECT * FROM read_csv('s3://%s/sales/**/*.csv', hive_partitioning=false) "
                    "LIMIT 1" % lake)
    assert [c["name"] for c in doc["columns"]] == ["id", "amt"]


def test_pruned_objects_are_not_even_sampled(tarn, lake, s3):
    # the schema comes from the objects the filter keeps: text ids in another
    # partition neither make the column text nor get read
    s3.put_object(Bucket=lake, Key="mixed/k=a/p.csv", Body=b"id\nabc\n")
    s3.put_object(Bucket=lake, Key="mixed/k=b/p.csv", Body=b"id\n5\n")
    doc = sql(tarn, "SELECT id + 1 FROM 's3://%s/mixed/*/*.csv' WHERE k = 'b'" % lake)
    assert doc["rows"] == [[6]]
    assert doc["stats"]["bytes_scanned"] == len(b"id\n5\n")
    doc = sql(tarn, "SELECT id FROM 's3://%s/mixed/*/*.csv' ORDER BY id" % lake)
    assert doc["columns"][0]["type"].lower() == "varchar" and doc["rows"] == [["5"], ["abc"]]
