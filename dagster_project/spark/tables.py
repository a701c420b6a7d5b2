"""Moving tables between Spark and the refresh's working DuckDB database, always as Arrow (never row by row).

On the Spark engine the Python steps after dbt (expectation suites, the publication gate, the analytics, the
report, the Parquet exports) run unchanged on the working DuckDB database: ``pull`` copies the marts they read
from Spark into it (``DataFrame.toArrow()``), and ``push`` writes what they compute back as Spark tables
(``createDataFrame`` of an Arrow table, saved as Parquet). Every figure is thus computed by the same code on both
engines; only SQL that dbt runs differs, and tests/test_spark_engine.py holds the two to the same rows.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from dagster_project.sql import qualified, replace_table


def spark_name(*parts: str) -> str:
    """A backquoted Spark identifier path; embedded backquotes are doubled."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


def spark_tables(session, schema: str) -> list[str]:
    """The tables of a Spark database (none when it does not exist)."""
    if not session.catalog.databaseExists(schema):
        return []
    return sorted(t.name for t in session.catalog.listTables(schema) if not t.isTemporary)


def pull(session, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
    """Replace schema.table of the DuckDB database with the Spark table's rows; returns the row count."""
    arrow = session.table(spark_name(schema, table)).toArrow()
    replace_table(con, schema, table, arrow)
    return arrow.num_rows


def push(session, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
    """Replace the Spark table schema.table with the DuckDB table's rows (Parquet); returns the row count."""
    arrow: pa.Table = con.execute(f"select * from {qualified(schema, table)}").to_arrow_table()
    session.sql(f"create database if not exists {spark_name(schema)}")
    frame = session.createDataFrame(_spark_compatible(arrow)) if arrow.num_rows else \
        session.createDataFrame([], _spark_schema(session, arrow.schema))
    frame.write.mode("overwrite").format("parquet").saveAsTable(spark_name(schema, table))
    return arrow.num_rows


def _spark_compatible(arrow: pa.Table) -> pa.Table:
    """Arrow types Spark reads: DuckDB's JSON and other extension types arrive as their storage (text)."""
    fields = []
    for field in arrow.schema:
        kind = field.type
        if isinstance(kind, pa.ExtensionType):
            kind = kind.storage_type
        if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            kind = pa.string()
        fields.append(pa.field(field.name, kind, field.nullable))
    return arrow.cast(pa.schema(fields))


def _spark_schema(session, schema: pa.Schema):
    """The Spark schema of an Arrow schema (for an empty table, which carries no rows to infer from)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(_spark_compatible(schema.empty_table()).schema)
