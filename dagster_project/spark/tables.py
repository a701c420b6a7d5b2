"""Moving tables between Spark and the refresh's working DuckDB database, as Parquet files (never row by row).

On the Spark engine the Python steps after dbt (expectation suites, the publication gate, the analytics, the
report, the Parquet exports) run unchanged on the working DuckDB database: ``pull`` copies the tables they read
from Spark into it (Arrow batches streamed from the table's Parquet files, so memory holds a batch, not the table),
and ``push`` writes a DuckDB table as a Parquet file
in a new version folder of the storage (``<root>/<schema>/<table>/<version>/``) and points the Spark table at it;
the older versions are deleted. Every figure is thus computed by the same code on both engines; only SQL that dbt
runs differs, and tests/test_spark_engine.py holds the two to the same rows.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from dagster_project.spark.catalog import Catalog, spark_name
from dagster_project.spark.storage import new_version
from dagster_project.sql import literal, qualified, replace_table

_ROWS_PER_BATCH = 256_000


def pull(catalog: Catalog, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
    """Replace schema.table of the DuckDB database with the Spark table's rows, streamed; returns the row count."""
    replace_table(con, schema, table, catalog.read(schema, table))
    return con.execute(f"select count(*) from {qualified(schema, table)}").fetchone()[0]


def push(catalog: Catalog, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
    """Replace the Spark table schema.table with the DuckDB table's rows; returns the row count."""
    # Streamed in batches, on a cursor of its own: the caller's connection may hold an unfinished result.
    with con.cursor() as reader:
        batches = reader.sql(f"select * from {qualified(schema, table)}").to_arrow_reader(_ROWS_PER_BATCH)
        write_table(catalog, schema, table, _spark_compatible(batches))
        return reader.execute(f"select count(*) from {qualified(schema, table)}").fetchone()[0]


def write_table(catalog: Catalog, schema: str, table: str, batches: pa.RecordBatchReader) -> None:
    """Replace the Spark table schema.table with `batches`: one Parquet file in a new version folder of the storage,
    the table defined over it, the older versions deleted."""
    version = new_version()
    catalog.storage.make_private()
    catalog.storage.write_parquet(f"{schema}/{table}/{version}/part-0.parquet", batches)
    catalog.execute(f"create database if not exists {spark_name(schema)}")
    name = spark_name(schema, table)
    catalog.execute(f"drop table if exists {name}")
    catalog.execute(f"create table {name} using parquet location {literal(catalog.storage.uri(schema, table, version))}")
    for old in catalog.storage.folders(f"{schema}/{table}"):
        if old != version:
            catalog.storage.delete(f"{schema}/{table}/{old}")


def _spark_compatible(batches: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """Arrow types Spark reads: DuckDB's JSON and other extension types arrive as their storage (text), large and
    view strings as strings."""
    fields = []
    for field in batches.schema:
        kind = field.type
        if isinstance(kind, pa.ExtensionType):
            kind = kind.storage_type
        if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            kind = pa.string()
        fields.append(pa.field(field.name, kind, field.nullable))
    target = pa.schema(fields)
    if target == batches.schema:
        return batches
    return pa.RecordBatchReader.from_batches(target, (batch.cast(target) for batch in batches))
