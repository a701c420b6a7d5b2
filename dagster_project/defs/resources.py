"""The warehouse as a Dagster resource: the working DuckDB file every Python step reads and writes and, on the Spark
engine, the Spark session beside it (dagster_project.spark)."""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import duckdb
import pandas as pd
from dagster import ConfigurableResource, Failure, InitResourceContext
from pydantic import PrivateAttr

from dagster_project.analytics.model_store import FORECAST_MODEL, ModelStore, Policy
from dagster_project.privacy.modes import (
    OWNER_ONLY_FILE,
    dir_mode,
    harden,
    make_dirs,
    private_dir,
)
from dagster_project.settings import DBT_PROJECT_DIR, parse_memory_limit
from dagster_project.sql import literal, replace_table
from dagster_project.warehouse_files import lock_path, parquet_dir, work_temp_dir


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
    # Money and calendars, resolved from Settings (dagster_project/settings.py) by build_definitions; the defaults
    # are those of a Settings with nothing set.
    # ISO code every amount is reported in, and the one assumed for amounts that carry no currency.
    reporting_currency: str = "CNY"
    default_currency: str = "CNY"
    # Whether a setting named the currency (Settings.currency_named): else amounts that name none stop the refresh.
    currency_named: bool = True
    # ISO country code of the forecast's public holidays, or "none" for no holidays.
    holiday_country: str = "CN"
    # How the report labels money ("¥", "$", or the code).
    currency_label: str = "¥"
    # Largest share (0-1) of an export's rows that may be quarantined.
    max_quarantine_share: float = 0.05
    # Column-mapping file (CRM_MAPPING, else <exports>/mapping.yml when it existed as the definitions loaded).
    mapping_file: str | None = None
    # Storage format of the published file: the oldest DuckDB release that must open it, or "latest".
    storage_version: str = "v1.0.0"
    # How long a refresh waits for a process that still holds the working database without holding the refresh lock.
    work_lock_wait_seconds: float = 600.0
    # What builds the marts: "duckdb", or "spark" (dbt on Spark; the working DuckDB file then stages ingestion and
    # holds Arrow copies of the marts the Python steps read, dagster_project.spark.tables).
    engine: str = "duckdb"
    # Who may read what, and for how long (dagster_project/settings.py, docs/security.md): the mode of what BI readers
    # get, the days personal values that no longer serve the warehouse are kept, previous export versions kept.
    published_mode: int = 0o644
    raw_retention_days: int = 90
    keep_previous_exports: int = 1
    # DuckDB's memory limit in this process (Settings.duckdb_memory_limit; dbt's profile reads the same setting).
    memory_limit: str = "5GB"

    _lock: IO | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Hold an exclusive lock on <warehouse>.lock for the whole run: DuckDB allows one writing process, and a
        second refresh (CLI, schedule, sensor) should be refused with a clear message, not fail halfway. The OS
        drops the lock when the process ends, even on SIGKILL, so a killed refresh needs no clean-up."""
        lock = lock_path(Path(self.path))
        # Readers need to enter the warehouse folder; the private files in it are owner-only.
        make_dirs(lock.parent, dir_mode(self.published_mode))
        self._lock = open(lock, "a+")
        os.fchmod(self._lock.fileno(), OWNER_ONLY_FILE)
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
        # What an earlier version of the tool (or another umask) left readable: the working database, the secret,
        # dbt's logs and target folder (compiled SQL, per-run folders: a failed build's error messages may quote
        # values), whoever created them.
        harden(Path(self.path), (DBT_PROJECT_DIR / "logs", DBT_PROJECT_DIR / "target"))
        private_dir(work_temp_dir(Path(self.path)))  # before dbt, whose profile spills there
        _release_dead_runs(context)
        self._wait_for_work_database(context)

    def _wait_for_work_database(self, context: InitResourceContext | None) -> None:
        """Every refresh holds the refresh lock, so a process that still holds DuckDB's lock on the working database
        now is not a refresh: typically the dbt child of a refresh that was killed with SIGKILL, which finishes or
        dies on its own within moments. Wait for it rather than fail halfway through the run."""
        deadline = time.monotonic() + self.work_lock_wait_seconds
        announced = False
        while True:
            try:
                duckdb.connect(self.work_path).close()
                return
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    self.teardown_after_execution(context)
                    raise WarehouseBusy(f"the working database {self.work_path} is held by another process: "
                                        f"{' '.join(str(error).split())}") from None
                if not announced and context is not None:
                    context.log.warning(f"waiting for another process to release {self.work_path}: {error}")
                announced = True
                time.sleep(0.5)

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
        return parquet_dir(Path(self.path))

    @property
    def on_spark(self) -> bool:
        return self.engine == "spark"

    def spark(self):
        """A context manager: this process's connection to Spark's catalog (the Spark engine only)."""
        from dagster_project.spark.catalog import open_catalog

        return open_catalog(Path(self.path))

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the working database, spilling into its owner-only temp folder."""
        make_dirs(Path(self.work_path).parent, dir_mode(self.published_mode))
        con = duckdb.connect(self.work_path, read_only=read_only)
        try:
            folder = private_dir(work_temp_dir(Path(self.path)))
            # Connections of one process to one file share a database instance, whose spill folder cannot change
            # once something spilled into it: set only where it is not this folder already (DuckDB's default is).
            current = con.execute("select current_setting('temp_directory')").fetchone()[0]
            if not current or Path(current).resolve() != folder.resolve():
                con.execute(f"set temp_directory = {literal(str(folder))}")
            con.execute(f"set memory_limit = {literal(parse_memory_limit(self.memory_limit))}")
            yield con
        finally:
            con.close()

    def write_table(self, con: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pd.DataFrame) -> int:
        """Replace schema.table with the frame's rows in one statement (readers never see it half-written)."""
        replace_table(con, schema, table, frame)
        return len(frame)


def dbt_run_folders(include_parses: bool = True, of_runs: Collection[str] | None = None) -> list[Path]:
    """dagster-dbt's per-invocation folders under dbt/target (`<op>-<run id>-<id>`: compiled SQL and dbt.log of one
    invocation, kept after a failed build), of the runs `of_runs` only if given, and the parse folders of
    dagster_project.defs.assets.dbt.ensure_manifest."""
    target = DBT_PROJECT_DIR / "target"
    if not target.is_dir():
        return []
    runs = None if of_runs is None else {run_id[:7] for run_id in of_runs}
    return [p for p in target.iterdir() if p.is_dir() and (
        (re.fullmatch(r"\w+-[0-9a-f]{7}-[0-9a-f]{7}", p.name) and (runs is None or p.name.rsplit("-", 2)[1] in runs))
        or (include_parses and p.name.startswith(".parse-")))]


def _release_dead_runs(context: InitResourceContext | None) -> None:
    """A run killed with SIGKILL keeps its `duckdb_writer` pool slot in the Dagster instance, and the next run would
    wait for it forever. Holding the refresh lock proves no other run is executing (a run claims slots only after
    its resources, this lock included, are set up), so any other run that holds or waits for a slot is dead:
    record it as failed and free its slots."""
    instance = context.instance if context is not None else None
    if instance is None:
        return
    storage = instance.event_log_storage
    own_run_id = context.run.run_id if context.run is not None else None
    for run_id in storage.get_concurrency_run_ids() - {own_run_id}:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, "the run's process ended without finishing (killed?); the next refresh "
                                            "released its pool slots")
        storage.free_concurrency_slots_for_run(run_id)


class SavedModels(ConfigurableResource):
    """Where the models saved between refits live (``models/`` beside the warehouse) and when they are refitted:
    churn and the health weights every ``retrain_days`` as-of days, forecasts every ``forecast_refit_days``, all at
    once on ``retrain`` (``--retrain``), and churn and health also when their monitored ROC-AUC fell more than
    ``retrain_metric_drop`` below the figure they were saved with (dagster_project/analytics/model_store.py)."""

    path: str
    retrain: bool = False
    retrain_days: int = 7
    forecast_refit_days: int = 7
    retrain_metric_drop: float = 0.05

    @property
    def store(self) -> ModelStore:
        return ModelStore(Path(self.path))

    def forecast_fits_every_series(self) -> bool:
        """Whether the next forecast will surely refit every series rather than reuse saved models: nothing saved yet,
        --retrain, or a refit at every refresh. (A refit on the cadence is decided by the forecast itself.)"""
        return self.retrain or self.forecast_refit_days == 0 or self.store.current(FORECAST_MODEL) is None

    def policy(self, cadence_days: int | None = None) -> Policy:
        """The refit policy of churn and health, or of a model refitted every ``cadence_days``."""
        days = self.retrain_days if cadence_days is None else cadence_days
        return Policy(days, self.retrain, self.retrain_metric_drop)
