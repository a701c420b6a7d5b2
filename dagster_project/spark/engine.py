"""The refresh's steps on the Spark engine, as the Dagster assets call them (dagster_project/defs/assets/).

- around dbt (``keys_for_build``, ``dbt_process_environment``, ``prepare_dbt``): land the pseudonym keys for the
  build (dagster_project.spark.pseudonyms; their files are deleted when dbt is done), with the local session stop
  this process's JVM (the local metastore admits one) and hand dbt's process the Spark settings, and name the target
  (``CRM_SPARK_DBT_TARGET``: ``spark``, the local session, by default; ``spark_thrift`` or ``databricks`` on a
  cluster);
- after dbt (``mirror_marts``): the marts, and the as-of date dbt resolved, read from their Parquet files as Arrow
  into the working DuckDB database, where the expectation suites, the publication gate, the analytics and the report read them
  with the same code as on DuckDB;
- then (``install_customer_measures``): the DuckDB table macros of the per-customer measures
  (dbt/macros/customer_measures.sql), which a post-hook of customer_360 creates on DuckDB, rendered by dbt for the
  DuckDB target and created over the mirrored marts, for the churn, health and campaign analytics;
- publishing (``publish_to_spark``): the analytics and quality tables the Python steps computed written back as
  Spark tables, and the metastore's BI-facing tables pointed at the Parquet exports (dagster_project.spark.publication).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from dagster_project.spark.catalog import SESSION_TARGET, spark_name, spark_target
from dagster_project.spark.pseudonyms import forget_keys_table, keys_removed_after, land_keys
from dagster_project.spark.session import dbt_environment, stop_session
from dagster_project.spark.tables import pull
from dagster_project.sql import identifier, row_counts_query
# What the Python steps after dbt read besides the marts: the as-of date dbt resolved (dagster_project.as_of), and
# what the privacy steps of the next refresh read from the last build (dagster_project.privacy): the identity
# resolution an erasure closes over (and checks is rebuilt before it publishes), and the audit of every raw row whose
# superseded and set-aside customer versions the retention blanks.
MIRRORED = (("intermediate", "int_as_of"), ("restricted", "customer_ids"), ("audit", "audit_raw_rows_classified"))


def prepare_dbt(warehouse) -> list[str]:
    """The target arguments of `dbt build`."""
    return ["--target", spark_target()]


@contextmanager
def keys_for_build(warehouse) -> Iterator[None]:
    """Around the whole dbt build, until its last event: the pseudonym keys landed for it, and their files deleted
    when it is done, whether it succeeded or not; with the local session, this process's JVM stopped before dbt starts
    its own (the local metastore admits one)."""
    path = Path(warehouse.path)
    with keys_removed_after(path):
        with warehouse.spark() as catalog:
            land_keys(catalog, path)
        if spark_target() == SESSION_TARGET:
            stop_session()
        yield


@contextmanager
def dbt_process_environment(warehouse) -> Iterator[None]:
    """With the local session, its Spark settings in this process's environment while dbt's process starts
    (dagster-dbt copies the environment then), and gone again afterwards, as they would otherwise configure a later
    refresh of another warehouse in this process."""
    added = dbt_environment(Path(warehouse.path)) if spark_target() == SESSION_TARGET else {}
    before = {name: os.environ.get(name) for name in added}
    os.environ.update(added)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def mirror_marts(warehouse) -> int:
    """Replace the working database's marts (and MIRRORED) with the Spark build's; returns the rows copied."""
    rows = 0
    with warehouse.spark() as catalog, warehouse.connect() as con:
        forget_keys_table(catalog)
        con.execute(f"drop schema if exists {identifier('marts')} cascade")
        for table in catalog.tables("marts"):
            rows += pull(catalog, con, "marts", table)
        for schema, table in MIRRORED:
            rows += pull(catalog, con, schema, table)
    return rows


def row_counts(warehouse, tables: Sequence[tuple[str, str]]) -> list[int]:
    """Rows of each Spark table (schema, name), in one query."""
    with warehouse.spark() as catalog:
        return [count for _, count in catalog.rows(row_counts_query(tables, spark_name))]


def customer_measures_ddl(dbt_vars: Mapping[str, str]) -> str:
    """The DDL of the customer-measure table macros as dbt renders it for the DuckDB target (the same text the
    post-hook of customer_360 runs on DuckDB)."""
    from dagster_project.defs.assets.dbt import DBT_EXECUTABLE
    from dagster_project.settings import DBT_PROJECT_DIR, WORK_DATABASE_VARIABLE

    with tempfile.TemporaryDirectory(prefix="crm-measures-") as folder:
        # Rendering opens no database, but the DuckDB profile needs a path: one of our own, and dbt's target apart.
        done = subprocess.run(
            [DBT_EXECUTABLE, "compile", "--quiet", "--inline", "{{ crm.customer_measures_macros() }}",
             "--target", "duckdb", "--vars", json.dumps(dict(dbt_vars), sort_keys=True),
             "--target-path", str(Path(folder, "target")), "--log-path", str(Path(folder, "logs")),
             "--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir", str(DBT_PROJECT_DIR)],
            env={**os.environ, WORK_DATABASE_VARIABLE: str(Path(folder, "unused.duckdb"))},
            capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"dbt could not render the customer-measure macros: {(done.stdout + done.stderr)[-2000:]}")
    return done.stdout


def install_customer_measures(warehouse, dbt_vars: Mapping[str, str]) -> None:
    """Create intermediate.customer_measures_as_of / customer_orders_as_of in the working database."""
    ddl = customer_measures_ddl(dbt_vars)
    with warehouse.connect() as con:
        con.execute(ddl)
