"""Publishing on the Spark engine: where BI tools that read Spark's metastore find the warehouse.

The publish step first publishes exactly as on DuckDB (dagster_project.publish.publication): the Parquet exports
under ``<warehouse folder>/parquet/`` (one file per table, ``<schema>.<table>.parquet``, in a version folder switched
in by one atomic symlink replace), the CSV exports, the published DuckDB file and the report, all written from the
working database, which on this engine holds the marts as Spark built them. One writer of the exports keeps their
layout and types identical on both engines by construction: a reader cannot tell which engine built them.

Then, in Spark:
- the analytics and quality tables the Python steps computed are written back as Spark tables (``analytics.*``,
  ``quality.*``, beside dbt's ``marts.*``);
- the metastore's BI-facing tables, ``published_<schema>.<table>``, read the Parquet exports through the symlinked
  folder, so every one of them switches to the new refresh at the same moment (Spark lists a table's files when a
  query plans; a long-running server caches the listing until ``REFRESH TABLE``, which this step runs for its own
  session). A table's definition is replaced only when its columns change.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from dagster_project.spark.tables import push, spark_name
from dagster_project.sql import literal
from dagster_project.warehouse_files import parquet_dir

PUBLISHED_PREFIX = "published_"


def published_database(schema: str) -> str:
    return f"{PUBLISHED_PREFIX}{schema}"


def publish_to_spark(con: duckdb.DuckDBPyConnection, warehouse: Path, session,
                     tables: list[tuple[str, str]]) -> dict[str, int]:
    """Write the non-mart tables back to Spark and point published_<schema>.<table> at each table's Parquet export;
    returns the rows written back per table."""
    written = {f"{schema}.{table}": push(session, con, schema, table) for schema, table in tables if schema != "marts"}
    exports = parquet_dir(warehouse)
    for schema, table in tables:
        database, name = published_database(schema), spark_name(published_database(schema), table)
        session.sql(f"create database if not exists {spark_name(database)}")
        location = (exports / f"{schema}.{table}.parquet").as_uri()
        current = session.read.parquet(location).schema
        if session.catalog.tableExists(table, database):
            if session.table(name).schema == current:
                session.sql(f"refresh table {name}")
                continue
            session.sql(f"drop table {name}")
        session.sql(f"create table {name} using parquet location {literal(location)}")
    return written
