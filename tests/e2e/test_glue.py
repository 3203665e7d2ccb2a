"""tests/e2e/test_glue.py -- the Glue Data Catalog API with boto3 and the
AWS CLI: databases, tables, partitions, their filters and paging, the
errors Glue returns (bad input changes nothing). Durability under kill -9
is in test_glue_crash.py.
"""
import json

import pytest
from botocore.exceptions import ClientError

from queue_util import client, unique


@pytest.fixture(scope="module")
def glue(tarn):
    return client(tarn, "glue")


@pytest.fixture(scope="module")
def raw(tarn):
    """A client that sends what boto3 would refuse, so the server judges it."""
    return client(tarn, "glue", parameter_validation=False)


def err_of(exc):
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def name(prefix):
    return unique(prefix).replace("-", "_")


CSV_SD = {
    "Columns": [
        {"Name": "id", "Type": "bigint", "Comment": "the key"},
        {"Name": "amount", "Type": "decimal(10,2)"},
        {"Name": "tags", "Type": "array<string>"},
        {"Name": "Note", "Type": "string"},
    ],
    "Location": "s3://lake/sales/",
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "Compressed": False,
    "NumberOfBuckets": -1,  # as Athena writes it
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
        "Parameters": {"field.delim": ",", "serialization.format": ","},
    },
    "StoredAsSubDirectories": False,
}


def table_input(tname, keys=(("year", "int"), ("month", "string")), **extra):
    t = {
        "Name": tname,
        "Description": "sales by day",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "csv", "skip.header.line.count": "1"},
        "PartitionKeys": [{"Name": k, "Type": t} for k, t in keys],
        "StorageDescriptor": CSV_SD,
    }
    t.update(extra)
    return t


@pytest.fixture
def db(glue):
    n = name("db")
    glue.create_database(DatabaseInput={"Name": n})
    return n


@pytest.fixture
def table(glue, db):
    t = name("t")
    glue.create_table(DatabaseName=db, TableInput=table_input(t))
    return db, t


# ---- databases ----

def test_database_lifecycle(glue):
    n = name("Sales")
    glue.create_database(DatabaseInput={"Name": n, "Description": "the sales",
                                        "LocationUri": "s3://lake/sales/",
                                        "Parameters": {"owner": "finance", "000042": "000042"}})
    d = glue.get_database(Name=n)["Database"]
    assert d["Name"] == n.lower()  # folded, as Glue does for Hive
    assert d["Description"] == "the sales"
    assert d["LocationUri"] == "s3://lake/sales/"
    assert d["Parameters"] == {"owner": "finance", "000042": "000042"}
    assert d["CreateTime"].year >= 2024
    assert d["CatalogId"] == "000000000000"
    # lookups are case-insensitive
    assert glue.get_database(Name=n.upper())["Database"]["Name"] == n.lower()
    glue.update_database(Name=n, DatabaseInput={"Name": n, "Description": "renamed desc"})
    d2 = glue.get_database(Name=n)["Database"]
    assert d2["Description"] == "renamed desc"
    assert "LocationUri" not in d2
    assert d2["CreateTime"] == d["CreateTime"]
    glue.delete_database(Name=n)
    with pytest.raises(ClientError) as e:
        glue.get_database(Name=n)
    assert err_of(e) == ("EntityNotFoundException", "Database %s not found." % n.lower())


def test_default_database_exists(glue):
    assert glue.get_database(Name="default")["Database"]["Name"] == "default"


def test_database_errors_change_nothing(glue, raw, db):
    with pytest.raises(ClientError) as e:
        glue.create_database(DatabaseInput={"Name": db, "Description": "other"})
    assert err_of(e)[0] == "AlreadyExistsException"
    assert "Description" not in glue.get_database(Name=db)["Database"]
    with pytest.raises(ClientError) as e:
        raw.create_database(DatabaseInput={"Name": "x" * 256})
    code, msg = err_of(e)
    assert code == "InvalidInputException" and "255" in msg
    with pytest.raises(ClientError) as e:
        raw.create_database(DatabaseInput={"Name": "ok_" + db, "Description": "d" * 2049})
    assert err_of(e)[0] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        glue.get_database(Name="ok_" + db)
    assert err_of(e)[0] == "EntityNotFoundException"
    with pytest.raises(ClientError) as e:
        raw.create_database(DatabaseInput={"Description": "no name"})
    assert err_of(e)[0] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        raw.create_database(DatabaseInput={"Name": "p_" + db, "Parameters": {"k": 5}})
    assert err_of(e)[0] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        glue.update_database(Name="missing_" + db, DatabaseInput={"Name": "missing_" + db})
    assert err_of(e)[0] == "EntityNotFoundException"
    with pytest.raises(ClientError) as e:
        glue.update_database(Name=db, DatabaseInput={"Name": "other_" + db})
    assert err_of(e)[0] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        glue.delete_database(Name="missing_" + db)
    assert err_of(e)[0] == "EntityNotFoundException"


def test_get_databases_pages(glue):
    made = sorted(name("pg%d" % i) for i in range(5))
    for n in made:
        glue.create_database(DatabaseInput={"Name": n})
    seen = []
    token = None
    while True:
        kw = {"MaxResults": 2}
        if token:
            kw["NextToken"] = token
        r = glue.get_databases(**kw)
        assert len(r["DatabaseList"]) <= 2
        seen += [d["Name"] for d in r["DatabaseList"]]
        token = r.get("NextToken")
        if not token:
            break
    assert seen == sorted(seen)
    assert set(made) <= set(seen)
    assert len(seen) == len(set(seen))
    # the paginator sees the same
    pages = glue.get_paginator("get_databases").paginate(PaginationConfig={"PageSize": 3})
    assert [d["Name"] for p in pages for d in p["DatabaseList"]] == seen
    with pytest.raises(ClientError) as e:
        glue.get_databases(NextToken="not-a-token")
    assert err_of(e)[0] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        glue.get_databases(MaxResults=101)
    assert err_of(e)[0] == "InvalidInputException"


# ---- tables ----

def test_table_lifecycle(glue, db):
    t = name("Clicks")
    glue.create_table(DatabaseName=db, TableInput=table_input(t))
    got = glue.get_table(DatabaseName=db, Name=t)["Table"]
    assert got["Name"] == t.lower()
    assert got["DatabaseName"] == db
    assert got["TableType"] == "EXTERNAL_TABLE"
    assert got["Parameters"] == {"classification": "csv", "skip.header.line.count": "1"}
    assert got["PartitionKeys"] == [{"Name": "year", "Type": "int"},
                                    {"Name": "month", "Type": "string"}]
    sd = got["StorageDescriptor"]
    assert sd["Columns"] == CSV_SD["Columns"]  # names and types exactly as given
    assert sd["Location"] == "s3://lake/sales/"
    assert sd["SerdeInfo"] == CSV_SD["SerdeInfo"]
    assert sd["InputFormat"] == CSV_SD["InputFormat"]
    assert got["CreateTime"] == got["UpdateTime"]
    # update replaces the definition; CreateTime stays
    new = table_input(t, Description="v2")
    new["StorageDescriptor"] = dict(CSV_SD, Location="s3://lake/sales-v2/")
    glue.update_table(DatabaseName=db, TableInput=new)
    got2 = glue.get_table(DatabaseName=db, Name=t)["Table"]
    assert got2["Description"] == "v2"
    assert got2["StorageDescriptor"]["Location"] == "s3://lake/sales-v2/"
    assert got2["CreateTime"] == got["CreateTime"]
    assert got2["UpdateTime"] >= got["UpdateTime"]
    glue.delete_table(DatabaseName=db, Name=t)
    with pytest.raises(ClientError) as e:
        glue.get_table(DatabaseName=db, Name=t)
    assert err_of(e) == ("EntityNotFoundException", "Table %s not found." % t.lower())


def test_table_errors_change_nothing(glue, raw, table):
    db, t = table
    with pytest.raises(ClientError) as e:
        glue.create_table(DatabaseName=db, TableInput=table_input(t, Description="other"))
    assert err_of(e)[0] == "AlreadyExistsException"
    assert glue.get_table(DatabaseName=db, Name=t)["Table"]["Description"] == "sales by day"
    with pytest.raises(ClientError) as e:
        glue.create_table(DatabaseName="missing_" + db, TableInput=table_input("x"))
    assert err_of(e) == ("EntityNotFoundException", "Database missing_%s not found." % db)
    bad_col = table_input("bad_" + t)
    bad_col["StorageDescriptor"] = dict(CSV_SD, Columns=[{"Name": "c" * 256, "Type": "string"}])
    with pytest.raises(ClientError) as e:
        raw.create_table(DatabaseName=db, TableInput=bad_col)
    code, msg = err_of(e)
    assert code == "InvalidInputException" and "columns.1.member.name" in msg
    bad_loc = table_input("bad_" + t)
    bad_loc["StorageDescriptor"] = dict(CSV_SD, Location="s3://" + "l" * 2100)
    with pytest.raises(ClientError) as e:
        raw.create_table(DatabaseName=db, TableInput=bad_loc)
    assert err_of(e)[0] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        raw.create_table(DatabaseName=db, TableInput=dict(table_input("bad_" + t),
                                                          Parameters={"k": "v" * 512001}))
    assert err_of(e)[0] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        glue.get_table(DatabaseName=db, Name="bad_" + t)
    assert err_of(e)[0] == "EntityNotFoundException"
    with pytest.raises(ClientError) as e:
        glue.update_table(DatabaseName=db, TableInput=table_input("missing_" + t))
    assert err_of(e)[0] == "EntityNotFoundException"
    with pytest.raises(ClientError) as e:
        glue.delete_table(DatabaseName=db, Name="missing_" + t)
    assert err_of(e)[0] == "EntityNotFoundException"
    with pytest.raises(ClientError) as e:
        glue.get_tables(DatabaseName="missing_" + db)
    assert err_of(e)[0] == "EntityNotFoundException"


def test_get_tables_expression_and_pages(glue, db):
    for t in ("sales_2023", "sales_2024", "clicks", "Sales_eu"):
        glue.create_table(DatabaseName=db, TableInput=table_input(t))

    def names(**kw):
        out = []
        for p in glue.get_paginator("get_tables").paginate(DatabaseName=db, **kw):
            out += [t["Name"] for t in p["TableList"]]
        return out

    assert names() == ["clicks", "sales_2023", "sales_2024", "sales_eu"]
    assert names(Expression="sales*") == ["sales_2023", "sales_2024", "sales_eu"]
    assert names(Expression="sales_20.*") == ["sales_2023", "sales_2024"]
    assert names(Expression="clicks|sales_eu") == ["clicks", "sales_eu"]
    assert names(Expression="SALES_EU") == ["sales_eu"]
    assert names(Expression="nothing") == []
    assert names(PaginationConfig={"PageSize": 1}) == names()
    r = glue.get_tables(DatabaseName=db, MaxResults=3)
    assert len(r["TableList"]) == 3 and r["NextToken"]
    r2 = glue.get_tables(DatabaseName=db, MaxResults=3, NextToken=r["NextToken"])
    assert [t["Name"] for t in r2["TableList"]] == ["sales_eu"]
    assert "NextToken" not in r2
    for bad in ("sales(", "a" + "+" * 2000):  # the second once took gigabytes to compile
        with pytest.raises(ClientError) as e:
            glue.get_tables(DatabaseName=db, Expression=bad)
        assert err_of(e)[0] == "InvalidInputException"
    assert names(Expression="(a|s)" * 300 + "x") == []


def test_batch_delete_table(glue, db):
    for t in ("a", "b", "c"):
        glue.create_table(DatabaseName=db, TableInput=table_input(t))
    glue.create_partition(DatabaseName=db, TableName="a",
                          PartitionInput={"Values": ["2024", "01"]})
    r = glue.batch_delete_table(DatabaseName=db, TablesToDelete=["a", "b", "missing"])
    assert [(x["TableName"], x["ErrorDetail"]["ErrorCode"]) for x in r["Errors"]] == [
        ("missing", "EntityNotFoundException")]
    left = [t["Name"] for t in glue.get_tables(DatabaseName=db)["TableList"]]
    assert left == ["c"]
    # a table made again under a deleted name has no partitions of the old one
    glue.create_table(DatabaseName=db, TableInput=table_input("a"))
    assert glue.get_partitions(DatabaseName=db, TableName="a")["Partitions"] == []


def test_delete_database_takes_tables_and_partitions(glue):
    db = name("gone")
    glue.create_database(DatabaseInput={"Name": db})
    glue.create_table(DatabaseName=db, TableInput=table_input("t"))
    glue.create_partition(DatabaseName=db, TableName="t",
                          PartitionInput={"Values": ["2024", "01"]})
    glue.delete_database(Name=db)
    glue.create_database(DatabaseInput={"Name": db})
    assert glue.get_tables(DatabaseName=db)["TableList"] == []
    glue.create_table(DatabaseName=db, TableInput=table_input("t"))
    assert glue.get_partitions(DatabaseName=db, TableName="t")["Partitions"] == []


# ---- partitions ----

def part(year, month, location=None):
    p = {"Values": [str(year), month],
         "StorageDescriptor": dict(CSV_SD, Location=location or
                                   "s3://lake/sales/year=%s/month=%s/" % (year, month)),
         "Parameters": {"rows": "10"}}
    return p


def test_partition_lifecycle(glue, table):
    db, t = table
    glue.create_partition(DatabaseName=db, TableName=t, PartitionInput=part(2024, "01"))
    p = glue.get_partition(DatabaseName=db, TableName=t,
                           PartitionValues=["2024", "01"])["Partition"]
    assert p["Values"] == ["2024", "01"]
    assert p["DatabaseName"] == db and p["TableName"] == t
    assert p["StorageDescriptor"]["Location"] == "s3://lake/sales/year=2024/month=01/"
    assert p["Parameters"] == {"rows": "10"}
    assert p["CreationTime"].year >= 2024
    glue.update_partition(DatabaseName=db, TableName=t, PartitionValueList=["2024", "01"],
                          PartitionInput=part(2024, "01", "s3://lake/moved/"))
    p = glue.get_partition(DatabaseName=db, TableName=t,
                           PartitionValues=["2024", "01"])["Partition"]
    assert p["StorageDescriptor"]["Location"] == "s3://lake/moved/"
    glue.delete_partition(DatabaseName=db, TableName=t, PartitionValues=["2024", "01"])
    with pytest.raises(ClientError) as e:
        glue.get_partition(DatabaseName=db, TableName=t, PartitionValues=["2024", "01"])
    assert err_of(e)[0] == "EntityNotFoundException"


def test_partition_errors_change_nothing(glue, raw, table):
    db, t = table
    glue.create_partition(DatabaseName=db, TableName=t, PartitionInput=part(2024, "01"))
    with pytest.raises(ClientError) as e:
        glue.create_partition(DatabaseName=db, TableName=t,
                              PartitionInput=part(2024, "01", "s3://other/"))
    assert err_of(e)[0] == "AlreadyExistsException"
    p = glue.get_partition(DatabaseName=db, TableName=t, PartitionValues=["2024", "01"])
    assert p["Partition"]["StorageDescriptor"]["Location"].startswith("s3://lake/sales/")
    with pytest.raises(ClientError) as e:
        glue.create_partition(DatabaseName=db, TableName=t, PartitionInput={"Values": ["2024"]})
    assert err_of(e)[0] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        raw.create_partition(DatabaseName=db, TableName=t,
                             PartitionInput={"Values": ["2024", "x" * 1025]})
    assert err_of(e)[0] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        raw.create_partition(DatabaseName=db, TableName=t, PartitionInput={"Values": ["2024", ""]})
    assert err_of(e)[0] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        glue.create_partition(DatabaseName=db, TableName="missing_" + t,
                              PartitionInput=part(2024, "02"))
    assert err_of(e) == ("EntityNotFoundException", "Table missing_%s not found." % t)
    with pytest.raises(ClientError) as e:
        glue.delete_partition(DatabaseName=db, TableName=t, PartitionValues=["1999", "01"])
    assert err_of(e)[0] == "EntityNotFoundException"
    parts = glue.get_partitions(DatabaseName=db, TableName=t)["Partitions"]
    assert [p["Values"] for p in parts] == [["2024", "01"]]


def test_batch_create_get_delete_partitions(glue, raw, table):
    db, t = table
    glue.create_partition(DatabaseName=db, TableName=t, PartitionInput=part(2023, "12"))
    r = glue.batch_create_partition(
        DatabaseName=db, TableName=t,
        PartitionInputList=[part(2024, "%02d" % m) for m in range(1, 4)] +
        [part(2023, "12"), {"Values": ["only-one"]}])
    errs = [(x["PartitionValues"], x["ErrorDetail"]["ErrorCode"]) for x in r["Errors"]]
    assert errs == [(["2023", "12"], "AlreadyExistsException"),
                    (["only-one"], "InvalidInputException")]
    r = glue.batch_get_partition(DatabaseName=db, TableName=t, PartitionsToGet=[
        {"Values": ["2024", "01"]}, {"Values": ["2024", "03"]}, {"Values": ["1999", "01"]}])
    assert sorted(p["Values"][1] for p in r["Partitions"]) == ["01", "03"]
    assert r["UnprocessedKeys"] == []
    r = glue.batch_delete_partition(DatabaseName=db, TableName=t, PartitionsToDelete=[
        {"Values": ["2024", "01"]}, {"Values": ["1999", "01"]}])
    assert [(x["PartitionValues"], x["ErrorDetail"]["ErrorCode"]) for x in r["Errors"]] == [
        (["1999", "01"], "EntityNotFoundException")]
    left = [p["Values"] for p in glue.get_partitions(DatabaseName=db, TableName=t)["Partitions"]]
    assert left == [["2023", "12"], ["2024", "02"], ["2024", "03"]]
    # over Glue's batch limits: refused whole, nothing changes
    with pytest.raises(ClientError) as e:
        raw.batch_create_partition(DatabaseName=db, TableName=t,
                                   PartitionInputList=[part(2030, str(i)) for i in range(101)])
    assert err_of(e)[0] == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        raw.batch_delete_partition(DatabaseName=db, TableName=t, PartitionsToDelete=[
            {"Values": ["2023", "12"]}] * 26)
    assert err_of(e)[0] == "InvalidInputException"
    left2 = [p["Values"] for p in glue.get_partitions(DatabaseName=db, TableName=t)["Partitions"]]
    assert left2 == left


def test_get_partitions_expression(glue, table):
    db, t = table
    inputs = [part(y, "%02d" % m) for y in (2022, 2023, 2024) for m in (1, 2, 11)]
    glue.batch_create_partition(DatabaseName=db, TableName=t, PartitionInputList=inputs)

    def vals(expr, **kw):
        out = []
        for p in glue.get_paginator("get_partitions").paginate(
                DatabaseName=db, TableName=t, Expression=expr, **kw):
            out += [tuple(x["Values"]) for x in p["Partitions"]]
        return sorted(out)

    assert vals("year = 2024") == [("2024", "01"), ("2024", "02"), ("2024", "11")]
    assert vals("year = '2024' AND month = '02'") == [("2024", "02")]
    assert vals("year > 2022 AND month IN ('01', '11')") == [
        ("2023", "01"), ("2023", "11"), ("2024", "01"), ("2024", "11")]
    assert vals("year BETWEEN 2022 AND 2023 AND NOT month = '01'") == [
        ("2022", "02"), ("2022", "11"), ("2023", "02"), ("2023", "11")]
    assert vals("month LIKE '1%'") == [("2022", "11"), ("2023", "11"), ("2024", "11")]
    assert vals("year <> 2023 AND (month = '01' OR month = '02')") == [
        ("2022", "01"), ("2022", "02"), ("2024", "01"), ("2024", "02")]
    assert vals("year <= 2022 and month >= '02'") == [("2022", "02"), ("2022", "11")]
    assert len(vals("", PaginationConfig={"PageSize": 2})) == 9
    assert vals("year >= 2023", PaginationConfig={"PageSize": 2}) == vals("year >= 2023")
    r = glue.get_partitions(DatabaseName=db, TableName=t, ExcludeColumnSchema=True,
                            MaxResults=1)
    assert "Columns" not in r["Partitions"][0]["StorageDescriptor"]
    for bad in ("day = '01'", "year = 'abc'", "year =", "year = 1 AND", "month LIKE 5"):
        with pytest.raises(ClientError) as e:
            glue.get_partitions(DatabaseName=db, TableName=t, Expression=bad)
        assert err_of(e)[0] == "InvalidInputException", bad


def test_unsigned_request_is_refused(tarn):
    import requests
    r = requests.post(tarn.endpoint + "/", data="{}", headers={
        "X-Amz-Target": "AWSGlue.GetDatabases",
        "Content-Type": "application/x-amz-json-1.1"})
    assert r.status_code in (400, 403)
    assert "DatabaseList" not in r.text


# ---- the AWS CLI ----

def test_awscli(tarn, glue):
    """Five calls only: each start of the CLI loads Glue's whole model."""
    db = name("cli")
    tarn.aws_ok("glue", "create-database", "--database-input",
                json.dumps({"Name": db, "Description": "from the cli"}))
    assert glue.get_database(Name=db)["Database"]["Description"] == "from the cli"
    tarn.aws_ok("glue", "create-table", "--database-name", db, "--table-input",
                json.dumps(table_input("events")))
    assert glue.get_table(DatabaseName=db, Name="events")["Table"]["StorageDescriptor"][
        "Columns"] == CSV_SD["Columns"]
    tarn.aws_ok("glue", "batch-create-partition", "--database-name", db, "--table-name",
                "events", "--partition-input-list",
                json.dumps([part(2024, "01"), part(2024, "02")]))
    out = json.loads(tarn.aws_ok("glue", "get-partitions", "--database-name", db,
                                 "--table-name", "events", "--expression",
                                 "month = '02'").stdout)
    assert [p["Values"] for p in out["Partitions"]] == [["2024", "02"]]
    r = tarn.aws("glue", "create-database", "--database-input", json.dumps({"Name": db}))
    assert r.returncode != 0 and "AlreadyExistsException" in r.stderr
