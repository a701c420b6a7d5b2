"""Shared fixtures: a generated sample export refreshed once per test session through the real Dagster job."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

from dagster_project.settings import Settings, work_database_path

# Tests never wait on the network.
for key, value in {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", "GX_ANALYTICS_ENABLED": "False",
                   "DAGSTER_DISABLE_TELEMETRY": "1"}.items():
    os.environ.setdefault(key, value)
# The pseudonym secret, as production sets it: keys then match across the copies tests make of a warehouse
# (tests/test_privacy.py covers the secret generated when it is unset).
os.environ.setdefault("CRM_PSEUDONYM_KEY", "tests-only-pseudonym-secret-0123456789abcdef")

SAMPLE_END = date(2026, 10, 31)
SAMPLE_CUSTOMERS = 1500
SAMPLE_DAYS = 730


@dataclass
class Refreshed:
    exports: Path
    truth: Path
    # The published warehouse (BI-facing schemas only); `work` beside it holds every schema the refresh built.
    warehouse: Path

    @property
    def work(self) -> Path:
        return work_database_path(self.warehouse)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """The working database: raw, staging, intermediate, restricted, marts and analytics."""
        return duckdb.connect(str(self.work), read_only=True)

    def connect_published(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.warehouse), read_only=True)

    def query(self, sql: str, params=None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params=None):
        return self.query(sql, params)[0][0]


# Ingestion and dbt only: for tests about loading and modelling, which need not pay for model fits.
CORE_GROUPS = ("ingest", "reference", "staging", "intermediate", "marts", "restricted")


def refresh(exports: Path, warehouse: Path, as_of: date | None = None, groups=None) -> None:
    """The real refresh (the Dagster job the CLI and the schedule run), in this process; all assets by default."""
    from dagster import DagsterInstance

    from dagster_project.refresh import run_refresh

    settings = Settings(exports_dir=exports, warehouse=warehouse, as_of=as_of, schedule_timezone="Asia/Shanghai")
    with DagsterInstance.ephemeral() as instance:
        run_refresh(settings, instance, groups=groups)


@pytest.fixture(scope="session")
def sample_export(tmp_path_factory) -> tuple[Path, Path]:
    from dagster_project.generator import generate

    root = tmp_path_factory.mktemp("sample")
    summary = generate(root / "exports", customers=SAMPLE_CUSTOMERS, days=SAMPLE_DAYS, seed=7, end_date=SAMPLE_END)
    return summary.out_dir, summary.truth_dir


@pytest.fixture(scope="session")
def refreshed(sample_export, tmp_path_factory) -> Refreshed:
    exports, truth = sample_export
    warehouse = tmp_path_factory.mktemp("warehouse") / "crm.duckdb"
    refresh(exports, warehouse)
    return Refreshed(exports, truth, warehouse)


def copy_of(refreshed: Refreshed, destination: Path) -> Refreshed:
    """An independent copy of a refreshed export and warehouse, for tests that change them."""
    shutil.copytree(refreshed.exports, destination / "exports")
    (destination / "warehouse").mkdir()
    copy = Refreshed(destination / "exports", refreshed.truth, destination / "warehouse" / "crm.duckdb")
    for source, target in ((refreshed.warehouse, copy.warehouse), (refreshed.work, copy.work)):
        if source.exists():
            shutil.copy2(source, target)
    return copy
