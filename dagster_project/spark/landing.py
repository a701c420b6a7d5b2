"""Ingestion on the Spark engine: the drops land as Spark tables ``raw.<entity>``, ``raw._ingest_log`` and
``raw._quarantine``, Parquet files registered in the metastore.

The files are read, checked, quarantined and reconciled by the same ingestion as on DuckDB
(``dagster_project.ingest``), into the working DuckDB file, which on this engine is ingestion's staging area (it also
remembers which files were loaded, so a re-run skips them). Each raw table is then written as one Parquet file into a
new version folder of the Spark storage and the Spark table is pointed at it (``dagster_project.spark.tables.push``;
older versions are deleted, so an erased person's raw rows leave the storage with the refresh that applies the
erasure): the encodings, delimiters, date orders, lineage columns and quarantine rules stay single-sourced, and
Spark receives exactly the rows DuckDB would model.

Parquet rather than Delta: Delta Lake's Spark jars come from Maven at session start, which this project may not
reach (no network but the package registries), while Parquet is built into Spark; the raw tables are rewritten whole
each refresh, so Delta's transactions would buy nothing here.
"""

from __future__ import annotations

import duckdb

from dagster_project.ingest.raw_schema import RAW_SCHEMA
from dagster_project.spark.catalog import Catalog
from dagster_project.spark.tables import push


def raw_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [name for (name,) in con.execute(
        "select table_name from duckdb_tables() where database_name = current_database() and schema_name = ? "
        "order by table_name", [RAW_SCHEMA]).fetchall()]


def land_raw_tables(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> dict[str, int]:
    """Write every raw table of the staging database to Spark as raw.<name>; returns the rows of each."""
    return {table: push(catalog, con, RAW_SCHEMA, table) for table in raw_tables(con)}
