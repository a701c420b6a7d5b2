"""The Spark session of a refresh on the Spark engine (``CRM_ENGINE=spark``), and the one configuration that dbt's
``spark`` target and this process share.

Locally the catalog is a Hive metastore in an embedded Derby database and the tables are Parquet folders, both beside
the published warehouse (``warehouse_files.spark_dir``). Embedded Derby admits one JVM at a time, and dbt-spark's
``session`` method runs Spark inside dbt's own process: so this process stops its JVM (``stop_session``) before dbt
runs and starts a new one (``spark_session``) when a later step needs Spark again. ``CRM_SPARK_MASTER`` and
``CRM_SPARK_CONF`` adjust this session (and dbt's); on a Spark server the refresh opens no session of its own
(dagster_project.spark.catalog).

``spark_conf`` is the single source: ``dbt_environment`` hands it to dbt's profile through environment variables.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from dagster_project.privacy.modes import private_dir
from dagster_project.warehouse_files import spark_dir

# Extra Spark configuration as a JSON object (e.g. a remote metastore's URIs, S3 credentials provider), applied last.
EXTRA_CONF_VARIABLE = "CRM_SPARK_CONF"
MASTER_VARIABLE = "CRM_SPARK_MASTER"
DEFAULT_MASTER = "local[2]"
SHUFFLE_PARTITIONS_VARIABLE = "CRM_SPARK_SHUFFLE_PARTITIONS"
# A refresh's tables are small next to what Spark's default of 200 shuffle partitions is sized for: each shuffle
# would run 200 tasks of a few rows. On a cluster adaptive execution coalesces further, and the cluster sets its own.
DEFAULT_SHUFFLE_PARTITIONS = "2"
# The one variable dbt's profile (dbt/profiles.yml, target `spark`) reads its whole Spark configuration from, as a
# JSON object. It holds no secret (the pseudonym keys arrive as data: dagster_project.spark.pseudonyms).
DBT_CONF_VARIABLE = "CRM_DBT_SPARK_CONF"

# The SQL settings the models assume, on every target: a server session takes them when it opens
# (dagster_project.spark.catalog.server_session_settings).
SESSION_SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # TIMESTAMP without a time zone, as DuckDB's: Parquet and Arrow then carry the same naive timestamps.
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.ansi.enabled": "false",
    # crm.content_hash selects the data columns by a regular expression (dbt/macros/versions.sql).
    "spark.sql.parser.quotedRegexColumnNames": "true",
}

_lock = threading.Lock()


def warehouse_dir(warehouse: Path) -> Path:
    """Where the Spark tables' Parquet folders live (spark.sql.warehouse.dir)."""
    return spark_dir(warehouse) / "tables"


def metastore_dir(warehouse: Path) -> Path:
    return spark_dir(warehouse) / "metastore"


# A local session's JVMs live for one step of one refresh and run a few hundred small queries: most of their CPU went
# to the JIT's optimising compiler and to garbage-collector threads competing with the work for two cores, and adaptive
# execution re-plans every one of those queries to coalesce partitions they do not have. The client compiler only, the
# serial collector and no adaptive execution cut a local refresh's CPU by about a third (docs/scale_out.md). Not on
# another master: a cluster's long-lived driver and large shuffles want the defaults.
LOCAL_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
LOCAL_SQL_CONF = {"spark.sql.adaptive.enabled": "false"}


def spark_conf(warehouse: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Everything both this process's session and dbt's set: where tables and catalog live, UTC (so TIMESTAMP is
    wall-clock time as in DuckDB), ANSI mode off (dbt-spark forces it off, so this process matches), no UI."""
    environ = os.environ if environ is None else environ
    folder = spark_dir(warehouse)
    master = environ.get(MASTER_VARIABLE) or DEFAULT_MASTER
    local = master == "local" or master.startswith("local[")  # not local-cluster[...]: its executors are JVMs apart
    conf = {
        "spark.master": master,
        "spark.sql.warehouse.dir": str(warehouse_dir(warehouse)),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={metastore_dir(warehouse)};create=true",
        # derby.log beside the metastore rather than in whatever folder the process runs in.
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder}" + (f" {LOCAL_JVM_OPTIONS}" if local else ""),
        **(LOCAL_SQL_CONF if local else {}),
        **SESSION_SQL_CONF,
        "spark.sql.shuffle.partitions": environ.get(SHUFFLE_PARTITIONS_VARIABLE) or DEFAULT_SHUFFLE_PARTITIONS,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    }
    extra = environ.get(EXTRA_CONF_VARIABLE, "").strip()
    if extra:
        conf.update({str(k): str(v) for k, v in json.loads(extra).items()})
    return conf


def dbt_environment(warehouse: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment dbt's `spark` target builds the same session from."""
    return {DBT_CONF_VARIABLE: json.dumps(spark_conf(warehouse, environ), sort_keys=True)}


def spark_session(warehouse: Path):
    """This process's Spark session for the warehouse (started on first use)."""
    from pyspark.sql import SparkSession

    with _lock:
        # Owner-only, whatever the umask: it holds the raw rows and the restricted personal data (docs/security.md).
        private_dir(spark_dir(warehouse))
        builder = SparkSession.builder.appName("crm-warehouse").enableHiveSupport()
        for key, value in spark_conf(warehouse).items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        return session


def stop_session() -> None:
    """Stop this process's Spark session and its JVM, releasing the embedded metastore for another process (dbt).
    The next spark_session() starts a new JVM."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    with _lock:
        session = SparkSession.getActiveSession() or SparkSession._instantiatedSession
        if session is not None:
            session.stop()
        gateway = SparkContext._gateway
        if gateway is not None:
            gateway.shutdown()
            process = getattr(gateway, "proc", None)
            if process is not None:
                process.stdin.close()
                process.wait(timeout=60)
        SparkContext._gateway = None
        SparkContext._jvm = None
        SparkSession._instantiatedSession = None
        SparkSession._activeSession = None
