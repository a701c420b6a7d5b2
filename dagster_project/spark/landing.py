"""Ingestion on the Spark engine: the drops land as Spark tables ``raw.<entity>``, ``raw._ingest_log`` and
``raw._quarantine``, Parquet files registered in the metastore.

The files are read, checked, quarantined and reconciled by the same ingestion as on DuckDB
(``dagster_project.ingest``), into the working DuckDB file, which on this engine is ingestion's staging area (it also
remembers which files were loaded, so a re-run skips them). Each raw table is then written as one Parquet file
(DuckDB's COPY, no rows through Python) into a new version folder and the Spark table is pointed at it: the
encodings, delimiters, date orders, lineage columns and quarantine rules stay single-sourced, and Spark receives
exactly the rows DuckDB would model.

Parquet rather than Delta: Delta Lake's Spark jars come from Maven at session start, which this project may not
reach (no network but the package registries), while Parquet is built into Spark; the raw tables are rewritten whole
each refresh, so Delta's transactions would buy nothing here.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import duckdb

from dagster_project.ingest.raw_schema import RAW_SCHEMA
from dagster_project.sql import literal, qualified
from dagster_project.warehouse_files import spark_dir


def staged_dir(warehouse: Path) -> Path:
    """Where the raw tables' Parquet versions are kept for Spark."""
    return spark_dir(warehouse) / "raw"


def raw_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [name for (name,) in con.execute(
        "select table_name from duckdb_tables() where database_name = current_database() and schema_name = ? "
        "order by table_name", [RAW_SCHEMA]).fetchall()]


def land_raw_tables(con: duckdb.DuckDBPyConnection, warehouse: Path, session) -> dict[str, int]:
    """Write every raw table of the staging database to Parquet and (re)register it as the Spark table raw.<name>;
    returns the rows of each."""
    from dagster_project.spark.tables import spark_name

    folder = staged_dir(warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    session.sql(f"create database if not exists {spark_name(RAW_SCHEMA)}")
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    rows = {}
    for table in raw_tables(con):
        version = folder / table / stamp
        version.mkdir(parents=True)
        con.execute(f"copy (select * from {qualified(RAW_SCHEMA, table)}) to "
                    f"{literal(str(version / 'part-0.parquet'))} (format parquet, compression zstd)")
        name = spark_name(RAW_SCHEMA, table)
        session.sql(f"drop table if exists {name}")
        session.sql(f"create table {name} using parquet location {literal(version.as_uri())}")
        rows[table] = con.execute(f"select count(*) from {qualified(RAW_SCHEMA, table)}").fetchone()[0]
        for old in (folder / table).iterdir():
            if old != version:
                shutil.rmtree(old, ignore_errors=True)
    return rows
