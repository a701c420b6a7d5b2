"""The Spark engine against a Spark server, as on a cluster: a Spark Thrift server (HiveThriftServer2, from PySpark's
own jars) in a process of its own, with its own metastore and warehouse folder, which the refresh reaches only over
the Thrift protocol and through the storage folder (CRM_SPARK_STORAGE) both can read, as a cluster's object store.
Nothing but the settings changes: dbt runs with its `spark_thrift` target and the refresh's own catalog connection is
PyHive.

The same export as tests/test_spark_engine.py is refreshed on DuckDB and on the server, and every mart and analytics
table must hold the same rows. The pseudonym keys reach the server as session variables: no log, plan or file of the
server, of the storage or of dbt may hold them.

Opt-in (`make test-cluster`, or `pytest -m cluster`): a third Spark build would add minutes to every CI run, and the
local session test (tests/test_spark_engine.py) already runs every model on Spark there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from conftest import SAMPLE_END, refresh, stop_group
from scans import contents_written_since
from test_spark_engine import SPARK_SAMPLE_CUSTOMERS, assert_same_tables, secret_forms

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


@dataclass
class Server:
    port: int
    folder: Path  # its metastore, its warehouse folder and its log
    log: Path


@dataclass
class ClusterBuilds:
    duckdb: Path
    spark: Path
    storage: Path
    server: Server
    started: float


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from pyspark.find_spark_home import _find_spark_home

    home = Path(_find_spark_home())
    folder = tmp_path_factory.mktemp("thrift_server")
    port, log = _free_port(), folder / "server.log"
    (folder / "events").mkdir()
    command = [str(home / "bin" / "spark-submit"), "--class",
               "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2", "--master", "local[2]",
               "--conf", f"spark.sql.warehouse.dir={folder / 'warehouse'}", "--conf", "spark.ui.enabled=false",
               "--conf", "spark.sql.shuffle.partitions=2", "--conf", f"spark.driver.extraJavaOptions=-Dderby.system.home={folder}",
               "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
               # The event log, uncompressed so the key scan reads it: a cluster's History Server reads this log.
               "--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir={folder / 'events'}",
               "--conf", "spark.eventLog.compress=false",
               "--hiveconf", f"hive.server2.thrift.port={port}", "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1",
               "spark-internal"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "SPARK_HOME": str(home)})
    try:
        deadline = time.monotonic() + 300
        while "HiveThriftServer2 started" not in log.read_text(errors="replace"):
            assert process.poll() is None, f"the Thrift server stopped: {log.read_text(errors='replace')[-3000:]}"
            assert time.monotonic() < deadline, "the Thrift server did not start in 5 minutes"
            time.sleep(1)
        yield Server(port, folder, log)
    finally:
        stop_group(process)


@pytest.fixture(scope="module")
def builds(tmp_path_factory, server) -> ClusterBuilds:
    from dagster_project.sample_data import generate

    root = tmp_path_factory.mktemp("spark_cluster")
    exports = generate(root / "exports", customers=SPARK_SAMPLE_CUSTOMERS, days=730, seed=11,
                       end_date=SAMPLE_END).out_dir
    duck, spark, storage = root / "duckdb" / "crm.duckdb", root / "spark" / "crm.duckdb", root / "lake"
    refresh(exports, duck)
    settings = {"CRM_SPARK_DBT_TARGET": "spark_thrift", "CRM_SPARK_THRIFT_HOST": "127.0.0.1",
                "CRM_SPARK_THRIFT_PORT": str(server.port), "CRM_SPARK_STORAGE": str(storage)}
    started = time.time()
    with pytest.MonkeyPatch.context() as environment:
        for name, value in settings.items():
            environment.setenv(name, value)
        took = time.perf_counter()
        refresh(exports, spark, settings_overrides={"engine": "spark"})
        print(f"refresh of {SPARK_SAMPLE_CUSTOMERS} customers on the Thrift server: {time.perf_counter() - took:.1f} s")
        yield ClusterBuilds(duck, spark, storage, server, started)


@pytest.fixture(scope="module")
def catalog(builds):
    from dagster_project.spark.catalog import ServerCatalog, server_session_settings
    from dagster_project.spark.session import SESSION_SQL_CONF

    catalog = ServerCatalog(builds.spark, "spark_thrift", server_session_settings(SESSION_SQL_CONF),
                            environ={"CRM_SPARK_THRIFT_HOST": "127.0.0.1", "CRM_SPARK_THRIFT_PORT": str(builds.server.port),
                                     "CRM_SPARK_STORAGE": str(builds.storage)})
    yield catalog
    catalog.close()


def test_every_mart_and_analytics_table_on_the_server_is_the_duckdb_one(builds, catalog):
    compared = assert_same_tables(builds.duckdb, catalog.tables, catalog.read)
    assert len(compared) > 30 and compared["marts.fct_orders"] > 1000, compared


def test_the_server_keeps_its_tables_in_its_warehouse_and_the_refresh_lands_in_the_storage(builds, catalog):
    """dbt's tables are the server's own (its warehouse folder); what the refresh wrote (raw, analytics, the published
    copies) is in the storage, never in the warehouse folder beside CRM_WAREHOUSE."""
    _, marts_location = catalog.describe("marts", "fct_orders")
    assert marts_location.startswith(f"file:{builds.server.folder / 'warehouse'}/"), marts_location
    for schema, table, folder in (("raw", "orders", "raw"), ("analytics", "customer_clv", "analytics"),
                                  ("published_marts", "fct_orders", "published")):
        _, location = catalog.describe(schema, table)
        assert location.startswith(f"file:{builds.storage}/{folder}/"), location
    assert not (builds.spark.parent / "spark").exists()
    (published,) = catalog.rows("select count(*) from published_marts.fct_orders")
    assert published == catalog.rows("select count(*) from marts.fct_orders")[0] and published[0] > 1000
    with duckdb.connect(str(builds.spark), read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_orders").fetchone() == published


def test_the_pseudonym_keys_reach_the_server_in_no_log_plan_or_file(builds):
    """The keys reach the server as data of the build, not in a statement or a session setting: its statement log and
    its event log (settings, plans), the storage and dbt's files hold neither them nor the secret afterwards."""
    from dagster_project.settings import DBT_PROJECT_DIR
    from dagster_project.spark.pseudonyms import KEYS_SCHEMA, KEYS_TABLE, pseudonym_keys

    secrets = secret_forms(os.environ["CRM_PSEUDONYM_KEY"], pseudonym_keys(builds.spark))
    server_log = builds.server.log.read_text(errors="replace")
    assert any("Submitting query" in line and "int_customer_keys_pseudonymised" in line
               for line in server_log.splitlines())
    assert not (builds.storage / KEYS_SCHEMA / KEYS_TABLE).exists()
    written = contents_written_since(DBT_PROJECT_DIR / "target", DBT_PROJECT_DIR / "logs", builds.storage,
                                     builds.server.folder, since=builds.started)
    events = [content for path, content in written.items() if "events" in path.parts]
    assert builds.server.log in written and any(b"int_customer_keys_pseudonymised" in c for c in events)
    assert any(p.suffix == ".parquet" for p in written)
    for path, content in written.items():
        assert not any(secret in content for secret in secrets), path


def test_the_customer_keys_on_the_server_are_the_duckdb_keys(builds, catalog):
    from dagster_project.warehouse_files import work_database_path

    with duckdb.connect(str(work_database_path(builds.duckdb)), read_only=True) as con:
        expected = set(con.execute("select source_customer_id, customer_key from restricted.customer_ids").fetchall())
    assert set(catalog.rows("select source_customer_id, customer_key from restricted.customer_ids")) == expected
