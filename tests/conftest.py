"""Shared fixtures: a generated sample export refreshed once per test session through the real Dagster job."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import pickle
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pytest

from dagster_project import ingest
from dagster_project.process_environment import prepare_process
from dagster_project.settings import Settings
from dagster_project.warehouse_files import work_database_path

# The test session is an entry point like the CLI: no usage tracking, sleeping OpenMP threads.
prepare_process()
# The pseudonym secret, as production sets it: keys then match across the copies tests make of a warehouse
# (tests/test_privacy.py covers the secret generated when it is unset).
os.environ.setdefault("CRM_PSEUDONYM_KEY", "tests-only-pseudonym-secret-0123456789abcdef")

# The modules that take longest, longest first (per-module seconds of a CI run, --durations=0). `make test` hands
# whole modules to its two workers in collection order (--dist loadfile --no-loadscope-reorder): started first, the
# long ones no longer finish alone at the end while the other worker idles. A module missing here only runs later.
LONGEST_MODULES_FIRST = (
    "test_spark_engine", "test_erasure", "test_faults", "test_cli", "test_incremental", "test_daily_refresh",
    "test_real_exports", "test_security", "test_report", "test_privacy", "test_quality", "test_campaigns",
    "test_pipeline", "test_churn_real", "test_model_cadence", "test_bad_input", "test_bi_clients", "test_definitions",
    "test_settings", "test_churn", "test_clv", "test_cohorts_health", "test_forecast", "test_dbt_unit_tests",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(LONGEST_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: a module's own order is kept


SAMPLE_END = date(2026, 10, 31)
SAMPLE_CUSTOMERS = 1500
SAMPLE_DAYS = 730


@dataclass
class Refreshed:
    exports: Path
    truth: Path
    # The published warehouse (BI-facing schemas only); `work` beside it holds every schema the refresh built.
    warehouse: Path
    # Metadata of every asset the refresh materialised, by asset key ("marts/fct_orders"): what the Dagster UI shows.
    metadata: dict[str, dict] = field(default_factory=dict)

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


# Every setting the refresh reads from the environment (all but the pseudonym secret, which tests keep set).
def settings_variables() -> set[str]:
    return {key for key in os.environ if key.startswith("CRM_") and key != "CRM_PSEUDONYM_KEY"}


@pytest.fixture
def env(monkeypatch):
    """No CRM_* setting in the environment; whatever a test (or the CLI it runs) sets is undone afterwards."""
    for key in settings_variables():
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def settings_at(tmp_path: Path, **fields) -> Settings:
    """Settings for an exports folder and warehouse under tmp_path, with the given fields."""
    return Settings(**{"exports_dir": tmp_path, "warehouse": tmp_path / "w.duckdb", "as_of": None,
                       "schedule_timezone": "UTC", **fields})


# Ingestion and dbt only: for tests about loading and modelling, which need not pay for model fits.
CORE_GROUPS = ("ingest", "reference", "staging", "intermediate", "marts", "audit", "restricted")


def stop_group(process: subprocess.Popen, timeout: float = 60, dagster_home: Path | None = None) -> None:
    """Stop a process started with start_new_session=True and every process it started: SIGTERM to the group, then
    SIGKILL if it outwaits the timeout (dagster dev and dagster-daemon can outwait SIGTERM on their children).

    With `dagster_home`, also the code servers Dagster started for that instance: they run in sessions of their own,
    outside the group, and would load the definitions on until their heartbeat gives up, on the suite's cores."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    except ProcessLookupError:
        pass  # the whole group is gone already (it may have failed to start): the caller's assertion says why
    finally:
        for pid in processes_naming(dagster_home) if dagster_home is not None else []:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def processes_naming(folder: Path) -> list[int]:
    """The processes whose command line names `folder` (Dagster's instance reference holds its storage folders)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:  # gone meanwhile
                continue
            if str(folder) in command:
                found.append(int(entry.name))
    return found


def refresh(exports: Path, warehouse: Path, as_of: date | None = None, groups=None,
            settings_overrides: dict | None = None, full_refresh: bool = False) -> dict[str, dict]:
    """The real refresh (the Dagster job the CLI and the schedule run), in this process; all assets by default.
    `settings_overrides` replaces Settings fields (e.g. {"reporting_currency": "USD"}); `full_refresh` rebuilds
    everything even when nothing changed (`crm-warehouse refresh --full-refresh`).
    Returns the metadata of every asset it materialised."""
    from dataclasses import replace

    from dagster import DagsterInstance

    from dagster_project.defs.refresh import run_refresh

    settings = Settings(exports_dir=exports, warehouse=warehouse, as_of=as_of, schedule_timezone="Asia/Shanghai")
    settings = replace(settings, **(settings_overrides or {}))
    with DagsterInstance.ephemeral() as instance:
        run_id = run_refresh(settings, instance, groups=groups, full_refresh=full_refresh).run_id
        return materialisation_metadata(instance, run_id)


def materialisation_metadata(instance, run_id: str) -> dict[str, dict]:
    from dagster import DagsterEventType

    events = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    return {event.dagster_event.asset_key.to_user_string(): dict(event.dagster_event.materialization.metadata)
            for event in events}


def built_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> tuple[Path, object]:
    """A folder `build(folder)` filled, and what it returned, built once per test session: under `make test`'s
    workers the first to ask builds it in their shared temporary folder while the others wait; every caller gets a
    copy of its own (so no test reads a file another one writes). Tests that share a full refresh pay for it once."""
    # Under xdist each worker's temporary folder is a subfolder of the session's.
    session_temp = tmp_path_factory.getbasetemp()
    shared = (session_temp.parent if "PYTEST_XDIST_WORKER" in os.environ else session_temp) / f"built-{name}"
    with open(f"{shared}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, however the build ends
        done = shared / ".built.pickle"
        if not done.exists():
            shutil.rmtree(shared, ignore_errors=True)  # what a failed build left
            shared.mkdir()
            result = build(shared)
            done.write_bytes(pickle.dumps(result))
    copy = tmp_path_factory.mktemp(name)
    shutil.copytree(shared, copy, symlinks=True, dirs_exist_ok=True)
    return copy, pickle.loads(done.read_bytes())


def _sample(root: Path) -> None:
    from dagster_project.sample_data import generate

    generate(root / "exports", customers=SAMPLE_CUSTOMERS, days=SAMPLE_DAYS, seed=7, end_date=SAMPLE_END)


@pytest.fixture(scope="session")
def sample_export(tmp_path_factory) -> tuple[Path, Path]:
    root, _ = built_once(tmp_path_factory, "sample", _sample)
    return root / "exports", root / "exports_truth"


def _refreshed_sample(root: Path) -> dict[str, dict]:
    _sample(root)
    return refresh(root / "exports", root / "warehouse" / "crm.duckdb")


@pytest.fixture(scope="session")
def refreshed(tmp_path_factory) -> Refreshed:
    """The sample export refreshed through the whole job (once per test session)."""
    root, metadata = built_once(tmp_path_factory, "refreshed", _refreshed_sample)
    return Refreshed(root / "exports", root / "exports_truth", root / "warehouse" / "crm.duckdb", metadata)


def copy_of(refreshed: Refreshed, destination: Path) -> Refreshed:
    """An independent copy of a refreshed export and warehouse, for tests that change them."""
    shutil.copytree(refreshed.exports, destination / "exports")
    (destination / "warehouse").mkdir()
    copy = Refreshed(destination / "exports", refreshed.truth, destination / "warehouse" / "crm.duckdb")
    for source, target in ((refreshed.warehouse, copy.warehouse), (refreshed.work, copy.work)):
        if source.exists():
            shutil.copy2(source, target)
    return copy



def export_with_last_drop_held_back(root: Path) -> tuple[Path, Path]:
    """A small full export under `root` (200 customers, 400 days) and, moved out of it, its last daily drop: the
    next day's delivery. Returns the exports folder and the held-back drop."""
    from dagster_project.sample_data import generate

    summary = generate(root / "exports", customers=200, days=400, seed=11, end_date=date(2026, 10, 31))
    last_drop = sorted(p for p in summary.out_dir.iterdir() if p.is_dir())[-1]
    held_back = root / "held_back" / last_drop.name
    held_back.parent.mkdir()
    shutil.move(last_drop, held_back)
    return summary.out_dir, held_back


def _refreshed_with_last_drop_held_back(root: Path) -> None:
    exports, _ = export_with_last_drop_held_back(root)
    refresh(exports, root / "warehouse" / "crm.duckdb", settings_overrides={"schedule_timezone": "UTC"})


def refreshed_with_last_drop_held_back(tmp_path_factory) -> tuple[Path, Path, Path]:
    """export_with_last_drop_held_back refreshed and published once per test session (a copy for each caller):
    the exports folder, the held-back drop and the published warehouse."""
    root, _ = built_once(tmp_path_factory, "held_back", _refreshed_with_last_drop_held_back)
    held_back, = (root / "held_back").iterdir()
    return root / "exports", held_back, root / "warehouse" / "crm.duckdb"


def write_orders_only_export(exports: Path) -> int:
    """One drop with nothing but orders (the minimal export contract): 120 customers with 1-5 orders each, slash
    dates and thousands separators. Returns the number of orders written."""
    drop = exports / "2026-06-30"
    drop.mkdir(parents=True)
    lines = ["customer_id,order_date,amount"]
    for customer in range(120):
        for k in range(1 + customer % 5):
            lines.append(f"C{customer},2025/{1 + (customer + 3 * k) % 12}/{1 + (customer * 7 + k) % 28},"
                         f"\"{(customer % 9 + 1) * 37.5 + k:,.2f}\"")
    (drop / "orders.csv").write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def _refreshed_orders_only(root: Path) -> dict[str, dict]:
    write_orders_only_export(root / "exports")
    return refresh(root / "exports", root / "warehouse" / "crm.duckdb")


@pytest.fixture(scope="session")
def orders_only(tmp_path_factory) -> Refreshed:
    """An orders-only export through the full refresh, for the tests of what such an export supports."""
    root, metadata = built_once(tmp_path_factory, "orders_only", _refreshed_orders_only)
    return Refreshed(root / "exports", Path(), root / "warehouse" / "crm.duckdb", metadata)


def run_dbt(work: Path, target: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """The project's dbt (`dbt <args>`) with the default settings' vars, on the working database `work`, its target
    folder and logs under `target` (apart from dbt/target); fails the test with dbt's output if dbt fails."""
    from dagster_project.defs.assets.dbt import DBT_EXECUTABLE, DEFAULT_VARS
    from dagster_project.settings import DBT_PROJECT_DIR

    done = subprocess.run(
        [DBT_EXECUTABLE, *args, "--vars", json.dumps(DEFAULT_VARS, sort_keys=True), "--target-path", str(target),
         "--log-path", str(target / "logs"), "--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir",
         str(DBT_PROJECT_DIR)],
        env={**os.environ, "CRM_WORK_DATABASE": str(work)}, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


@functools.cache
def customer_measures_ddl() -> str:
    """The DDL of the customer-measure table macros (dbt/macros/customer_measures.sql) as dbt renders it; once per
    test process."""
    with tempfile.TemporaryDirectory() as folder:
        # Rendering opens no database, but the profile needs a path; a folder of our own keeps dbt's target apart.
        return run_dbt(Path(folder) / "unused.duckdb", Path(folder) / "target", "compile", "--quiet", "--inline",
                       "{{ crm.customer_measures_macros() }}").stdout


def install_customer_measures(con: duckdb.DuckDBPyConnection) -> None:
    """The customer-measure table macros in a database whose marts a test made by hand (a refresh's post-hook of
    customer_360 creates them): churn, health and campaigns read their features through them."""
    con.execute(customer_measures_ddl())


# Ingestion, one file at a time in discovery order (the ingest asset loads entities side by side): for tests of what
# happens to a file, through the package's public API.


@dataclass
class Ingested:
    files: list[ingest.FileResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # discovery's, for what was skipped

    def totals_by_entity(self) -> dict[str, dict[str, int]]:
        totals: dict[str, dict[str, int]] = {}
        for f in self.files:
            t = totals.setdefault(
                f.entity,
                dict.fromkeys(("files_loaded", "files_skipped", "rows_read", "rows_loaded", "rows_quarantined"), 0),
            )
            t["files_skipped" if f.skipped else "files_loaded"] += 1
            t["rows_read"] += f.rows_read
            t["rows_loaded"] += f.rows_loaded
            t["rows_quarantined"] += f.rows_quarantined
        return totals


def ingest_all(con: duckdb.DuckDBPyConnection, exports: Path, progress=None,
               mapping: ingest.Mapping | None = None) -> Ingested:
    """Every drop, oldest first, each file in its own transaction; stops at the first file that fails."""
    drops, warnings = ingest.find_drops(exports, mapping)
    ingest.ensure_raw_schema(con)
    result = Ingested(warnings=warnings)
    for drop_date, path, entity in drops:
        result.files.append(ingest.ingest_file(con, exports, drop_date, path, entity, mapping))
        if progress is not None:
            progress(result.files[-1])
    return result
