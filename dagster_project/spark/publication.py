"""Publishing on the Spark engine: where BI tools that read Spark's metastore find the warehouse.

The publish step first publishes exactly as on DuckDB (dagster_project.publish.publication): the Parquet exports
under ``<warehouse folder>/parquet/`` (one file per table, ``<schema>.<table>.parquet``, in a version folder switched
in by one atomic symlink replace), the CSV exports, the published DuckDB file and the report, all written from the
working database, which on this engine holds the marts as Spark built them. One writer of the exports keeps their
layout and types identical on both engines by construction: a reader cannot tell which engine built them.

Then, in Spark:
- the analytics and quality tables the Python steps computed are written back as Spark tables (``analytics.*``,
  ``quality.*``, beside dbt's ``marts.*``);
- the metastore's BI-facing tables, ``published_<schema>.<table>``, read the Parquet exports. With the local session
  they read ``<warehouse folder>/parquet/`` through its symlink, so every one of them switches to the new refresh at
  the same moment. A Spark server may not see the warehouse folder: its tables read a copy of the exports in the
  Spark storage (``published/<version>/``), switched table by table (``ALTER TABLE … SET LOCATION``, atomic for
  each table); earlier copies stay for queries still reading them, as many as the exports keep
  (CRM_KEEP_PREVIOUS_EXPORTS; none after an erasure), older ones are deleted. Spark lists a table's files when a
  query plans; a long-running server caches the listing until ``REFRESH TABLE``, which this step runs. A table's
  definition is replaced only when its columns change.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from dagster_project.spark.catalog import Catalog, CatalogError, SessionCatalog, arrow_type, spark_name
from dagster_project.spark.storage import local_location, new_version
from dagster_project.spark.tables import push
from dagster_project.sql import literal
from dagster_project.warehouse_files import parquet_dir

PUBLISHED_PREFIX = "published_"
PUBLISHED_FOLDER = "published"


def published_database(schema: str) -> str:
    return f"{PUBLISHED_PREFIX}{schema}"


def publish_to_spark(con: duckdb.DuckDBPyConnection, warehouse: Path, catalog: Catalog,
                     tables: list[tuple[str, str]], keep_previous: int) -> dict[str, int]:
    """Write the non-mart tables back to Spark and point published_<schema>.<table> at each table's Parquet export;
    returns the rows written back per table. On a server, `keep_previous` earlier copies of the exports stay for the
    queries still reading them (CRM_KEEP_PREVIOUS_EXPORTS; none after an erasure, as on DuckDB)."""
    written = {f"{schema}.{table}": push(catalog, con, schema, table) for schema, table in tables if schema != "marts"}
    exports = parquet_dir(warehouse)
    on_server = not isinstance(catalog, SessionCatalog)
    version = new_version()
    existing: dict[str, set[str]] = {}
    for schema, table in tables:
        file = f"{schema}.{table}.parquet"
        if on_server:
            catalog.storage.copy_file(exports / file, f"{PUBLISHED_FOLDER}/{version}/{file}")
            location = catalog.storage.uri(PUBLISHED_FOLDER, version, file)
        else:
            location = local_location(exports / file)
        database, name = published_database(schema), spark_name(published_database(schema), table)
        if database not in existing:
            catalog.execute(f"create database if not exists {spark_name(database)}")
            existing[database] = {t.lower() for t in catalog.tables(database)}
        if table.lower() in existing[database]:
            if _columns(catalog, database, table) == _export_columns(exports / file):
                if on_server:
                    catalog.execute(f"alter table {name} set location {literal(location)}")
                catalog.execute(f"refresh table {name}")
                continue
            catalog.execute(f"drop table {name}")
        catalog.execute(f"create table {name} using parquet location {literal(location)}")
    if on_server:
        earlier = [folder for folder in catalog.storage.folders(PUBLISHED_FOLDER) if folder != version]
        for old in earlier[:max(len(earlier) - keep_previous, 0)]:
            catalog.storage.delete(f"{PUBLISHED_FOLDER}/{old}")
    return written


def _columns(catalog: Catalog, database: str, table: str) -> list[tuple[str, object]] | None:
    """A Spark table's columns as (name, Arrow type); None when a type has no Arrow equivalent here."""
    columns, _ = catalog.describe(database, table)
    try:
        return [(name, arrow_type(kind)) for name, kind in columns]
    except CatalogError:
        return None


def _export_columns(path: Path) -> list[tuple[str, object]]:
    return [(field.name, field.type) for field in pq.read_schema(path)]
