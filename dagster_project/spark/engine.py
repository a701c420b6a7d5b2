"""The refresh's steps on the Spark engine, as the Dagster assets call them (dagster_project/defs/assets/).

- before dbt (``prepare_dbt``): stop this process's JVM (the local metastore admits one), hand dbt the Spark settings
  and the pseudonym keys, and name the dbt target (``CRM_SPARK_DBT_TARGET``: ``spark``, the local session, by
  default; ``spark_thrift`` or ``databricks`` on a cluster);
- after dbt (``mirror_marts``): the marts, and the as-of date dbt resolved, read from Spark as Arrow into the working
  DuckDB database, where the expectation suites, the publication gate, the analytics and the report read them
  with the same code as on DuckDB;
- publishing (``publish_to_spark``): the analytics and quality tables the Python steps computed written back as
  Spark tables, and the metastore's BI-facing tables pointed at the Parquet exports (dagster_project.spark.publication).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dagster_project.spark.pseudonyms import pseudonym_environment
from dagster_project.spark.session import dbt_environment, stop_session
from dagster_project.spark.tables import pull, spark_name, spark_tables
from dagster_project.sql import identifier

DBT_TARGET_VARIABLE = "CRM_SPARK_DBT_TARGET"
DEFAULT_DBT_TARGET = "spark"
# What the Python steps after dbt read besides the marts: the as-of date dbt resolved (dagster_project.as_of).
MIRRORED = (("intermediate", "int_as_of"),)


def prepare_dbt(warehouse) -> list[str]:
    """Release Spark for dbt's process and set its environment; returns the target arguments of `dbt build`."""
    stop_session()
    path = Path(warehouse.path)
    os.environ.update(dbt_environment(path))
    os.environ.update(pseudonym_environment(path)[0])
    return ["--target", os.environ.get(DBT_TARGET_VARIABLE) or DEFAULT_DBT_TARGET]


def mirror_marts(warehouse) -> int:
    """Replace the working database's marts (and MIRRORED) with the Spark build's; returns the rows copied."""
    session = warehouse.spark()
    rows = 0
    with warehouse.connect() as con:
        con.execute(f"drop schema if exists {identifier('marts')} cascade")
        for table in spark_tables(session, "marts"):
            rows += pull(session, con, "marts", table)
        for schema, table in MIRRORED:
            rows += pull(session, con, schema, table)
    return rows


def row_counts(warehouse, tables: Sequence[tuple[str, str]]) -> list[int]:
    """Rows of each Spark table (schema, name), in one query."""
    union = " union all ".join(f"select {i} as n, count(*) as c from {spark_name(schema, name)}"
                               for i, (schema, name) in enumerate(tables))
    counts = {row["n"]: row["c"] for row in warehouse.spark().sql(union).collect()}
    return [counts[i] for i in range(len(tables))]
