"""The DuckDB warehouse as a Dagster resource."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import IO

import duckdb
import pandas as pd
from dagster import ConfigurableResource, Failure, InitResourceContext
from pydantic import PrivateAttr


class WarehouseBusy(Failure):
    """Another run is already writing the warehouse."""


class Warehouse(ConfigurableResource):
    """The working DuckDB file every asset reads and writes, the published file BI reads, and the exports folder."""

    # The published warehouse: replaced as a whole by the publish asset, never written in place.
    path: str
    # The refresh's working database (raw, staging, intermediate, restricted, marts, analytics): what dbt builds.
    work_path: str
    exports_dir: str
    # YYYY-MM-DD, or None for "the latest order date in the data".
    as_of: str | None = None

    _lock: IO | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Hold an exclusive lock on <warehouse>.lock for the whole run: DuckDB allows one writing process, and a
        second refresh (CLI, schedule, sensor) should be refused with a clear message, not fail halfway. The OS
        drops the lock when the process ends, even on SIGKILL, so a killed refresh needs no clean-up."""
        lock_path = Path(f"{self.path}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(lock_path, "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "another process"
            self._lock.close()
            self._lock = None
            raise WarehouseBusy(f"another refresh ({holder}) is already writing {self.path}; "
                                "try again when it has finished") from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"pid {os.getpid()}")
        self._lock.flush()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @property
    def published_path(self) -> Path:
        return Path(self.path)

    @property
    def parquet_dir(self) -> Path:
        """Parquet exports of the published tables, beside the published warehouse."""
        return Path(self.path).parent / "parquet"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the working database."""
        Path(self.work_path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(self.work_path, read_only=read_only)
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
