"""The DuckDB warehouse as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
from dagster import ConfigurableResource


class Warehouse(ConfigurableResource):
    """The DuckDB file every asset reads and writes, plus the exports folder ingestion reads."""

    path: str
    exports_dir: str
    # YYYY-MM-DD, or None for "the latest order date in the data".
    as_of: str | None = None

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(self.path, read_only=read_only)
        try:
            yield con
        finally:
            con.close()

    def resolved_as_of(self, con: duckdb.DuckDBPyConnection) -> date:
        """The as-of date the dbt run resolved (the CRM_AS_OF override or the latest order date)."""
        return con.execute("select as_of_date from intermediate.int_as_of").fetchone()[0]

    def write_table(self, con: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pd.DataFrame) -> int:
        """Replace schema.table with the frame's rows in one statement (readers never see it half-written)."""
        con.execute(f'create schema if not exists "{schema}"')
        con.register("_frame", frame)
        try:
            con.execute(f'create or replace table "{schema}"."{table}" as select * from _frame')
        finally:
            con.unregister("_frame")
        return len(frame)
