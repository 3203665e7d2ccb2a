"""tests/e2e/test_rds_snapshots.py -- cluster snapshots and TCP access.

boto3 rds / rds-data / secretsmanager, the AWS CLI and psql: a cluster
created with a Port also listens on 127.0.0.1:<Port> (master password, as
any libpq client connects), one without listens on its Unix socket only;
CreateDBClusterSnapshot / DescribeDBClusterSnapshots /
RestoreDBClusterFromSnapshot / DeleteDBClusterSnapshot copy a cluster's data
as it was, and snapshots survive a restart.
"""
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

import tarnlib
from test_rds_data import clients, create, manage_secret, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/lib/postgresql/15/bin/postgres"),
                                reason="Debian's postgresql is not installed")


def postmaster_cmdline(srv, name):
    pid = int(open(os.path.join(srv.data, "rdb", name, "pg", "postmaster.pid")).read().split()[0])
    return open("/proc/%d/cmdline" % pid).read().split("\0")


def test_tcp_when_asked(tarn):
    rds, sm, data = clients(tarn)
    port = tarnlib.free_port()
    pw = "tcp-password-1"
    rds.create_db_cluster(DBClusterIdentifier="tcp", Engine="aurora-postgresql",
                          MasterUsername="master", MasterUserPassword=pw, DatabaseName="app",
                          EnableHttpEndpoint=True, Port=port)
    c = rds.describe_db_clusters(DBClusterIdentifier="tcp")["DBClusters"][0]
    assert (c["Endpoint"], c["Port"]) == ("127.0.0.1", port)
    assert "listen_addresses=127.0.0.1" in postmaster_cmdline(tarn, "tcp")
    r = tarn.aws_ok("rds", "describe-db-clusters", "--db-cluster-identifier", "tcp",
                    "--region", tarnlib.REGION)
    c_cli = json.loads(r.stdout)["DBClusters"][0]
    assert (c_cli["Endpoint"], c_cli["Port"]) == ("127.0.0.1", port)
    secret = sm.create_secret(Name="tcp", SecretString=json.dumps(
        {"username": "master", "password": pw}))["ARN"]
    arn = c["DBClusterArn"]
    data.execute_statement(resourceArn=arn, secretArn=secret, database="app",
                           sql="CREATE TABLE t AS SELECT 'via the Data API' AS s")
    env = dict(os.environ, PGPASSWORD=pw, PGCONNECT_TIMEOUT="30")
    psql = ["psql", "-X", "-A", "-t", "-h", c["Endpoint"], "-p", str(c["Port"]), "-U", "master",
            "-d", "app"]
    r = subprocess.run(psql + ["-c", "SELECT s FROM t"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "via the Data API"
    bad = subprocess.run(psql + ["-c", "SELECT 1"], env=dict(env, PGPASSWORD="wrong-one"),
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "password authentication failed" in bad.stderr
    # off by default: the Unix socket only, and the port is checked
    arn2, _ = create(rds, "notcp", min_cap=0.5)
    c2 = rds.describe_db_clusters(DBClusterIdentifier="notcp")["DBClusters"][0]
    assert c2["Port"] == 5432 and c2["Endpoint"] != "127.0.0.1"
    assert "listen_addresses=" in postmaster_cmdline(tarn, "notcp")
    for bad_port in (80, port):  # out of range; taken by another cluster
        with pytest.raises(ClientError) as ei:
            rds.create_db_cluster(DBClusterIdentifier="tcp2", Engine="aurora-postgresql",
                                  MasterUsername="master", MasterUserPassword=pw, Port=bad_port)
        assert ei.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_snapshots(tarn_factory):
    srv = tarn_factory()
    rds, sm, data = clients(srv)
    arn, secret = create(rds, "src", pause=300, min_cap=0.5)
    ex = lambda a, s, sql: data.execute_statement(resourceArn=a, secretArn=s, database="app",
                                                  sql=sql)
    ex(arn, secret, "CREATE TABLE t (v text)")
    ex(arn, secret, "INSERT INTO t VALUES ('000042')")
    snap = rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="s1",
                                          DBClusterIdentifier="src")["DBClusterSnapshot"]
    assert snap["Status"] == "available" and snap["DBClusterIdentifier"] == "src"
    assert snap["DBClusterSnapshotArn"].endswith(":cluster-snapshot:s1")
    ex(arn, secret, "INSERT INTO t VALUES ('after')")  # the source resumes after its copy
    with pytest.raises(ClientError) as ei:
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="s1", DBClusterIdentifier="src")
    assert ei.value.response["Error"]["Code"] == "DBClusterSnapshotAlreadyExistsFault"
    with pytest.raises(ClientError) as ei:
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="s2", DBClusterIdentifier="nope")
    assert ei.value.response["Error"]["Code"] == "DBClusterNotFoundFault"
    # a transaction open on the source: refused, nothing made
    tx = data.begin_transaction(resourceArn=arn, secretArn=secret, database="app")["transactionId"]
    with pytest.raises(ClientError) as ei:
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="s2", DBClusterIdentifier="src")
    assert ei.value.response["Error"]["Code"] == "InvalidDBClusterStateFault"
    data.rollback_transaction(resourceArn=arn, secretArn=secret, transactionId=tx)

    srv.restart()  # snapshots are durable
    rds, sm, data = clients(srv)
    got = rds.describe_db_cluster_snapshots(DBClusterIdentifier="src")["DBClusterSnapshots"]
    assert [s["DBClusterSnapshotIdentifier"] for s in got] == ["s1"]
    r = srv.aws_ok("rds", "describe-db-cluster-snapshots", "--db-cluster-snapshot-identifier",
                   "s1", "--region", tarnlib.REGION)
    assert json.loads(r.stdout)["DBClusterSnapshots"][0]["Status"] == "available"

    # restored: the data as it was, the master secret's value carried over
    c = rds.restore_db_cluster_from_snapshot(DBClusterIdentifier="copy", SnapshotIdentifier="s1",
                                             Engine="aurora-postgresql")["DBCluster"]
    assert c["DBClusterIdentifier"] == "copy" and c["Status"] == "available"
    assert c["HttpEndpointEnabled"] is False  # as on AWS: turned on afterwards
    rds.modify_db_cluster(DBClusterIdentifier="copy", EnableHttpEndpoint=True)
    secret2 = manage_secret(rds, "copy")
    assert secret2 != secret
    assert (json.loads(sm.get_secret_value(SecretId=secret2)["SecretString"]) ==
            json.loads(sm.get_secret_value(SecretId=secret)["SecretString"]))
    assert ex(c["DBClusterArn"], secret2, "SELECT v FROM t")["records"] == [
        [{"stringValue": "000042"}]]
    assert ex(arn, secret, "SELECT count(*) FROM t")["records"] == [[{"longValue": 2}]]
    with pytest.raises(ClientError) as ei:
        rds.restore_db_cluster_from_snapshot(DBClusterIdentifier="copy2", SnapshotIdentifier="zz",
                                             Engine="aurora-postgresql")
    assert ei.value.response["Error"]["Code"] == "DBClusterSnapshotNotFoundFault"
    with pytest.raises(ClientError) as ei:
        rds.restore_db_cluster_from_snapshot(DBClusterIdentifier="copy", SnapshotIdentifier="s1",
                                             Engine="aurora-postgresql")
    assert ei.value.response["Error"]["Code"] == "DBClusterAlreadyExistsFault"

    # deleted: gone with its directory
    srv.aws_ok("rds", "delete-db-cluster-snapshot", "--db-cluster-snapshot-identifier", "s1",
               "--region", tarnlib.REGION)
    assert not os.path.exists(os.path.join(srv.data, "rdb", ".snapshots", "s1"))
    with pytest.raises(ClientError) as ei:
        rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="s1")
    assert ei.value.response["Error"]["Code"] == "DBClusterSnapshotNotFoundFault"
    with pytest.raises(ClientError) as ei:
        rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="s1")
    assert ei.value.response["Error"]["Code"] == "DBClusterSnapshotNotFoundFault"
