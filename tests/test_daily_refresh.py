"""The daily refresh: nothing new, nothing done; the schedule firing in a real `dagster-daemon` and publishing an
incremental refresh. (A new drop's refresh killed halfway, then completed as if never killed: tests/test_faults.py.)

One small export is refreshed once with its last drop held back; each test works on its own copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import duckdb
import pytest

from conftest import refreshed_with_last_drop_held_back, stop_group
from dagster_project import refresh_state
from dagster_project.defs.instance import instance_yaml
from dagster_project.settings import Settings
from dagster_project.warehouse_files import work_database_path

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLI = str(BIN / "crm-warehouse")


@dataclass
class Daily:
    exports: Path
    held_back: Path  # the next day's drop, not yet delivered
    warehouse: Path

    @property
    def work(self) -> Path:
        return work_database_path(self.warehouse)

    def settings(self, **fields) -> Settings:
        return replace(Settings(exports_dir=self.exports, warehouse=self.warehouse, as_of=None,
                                schedule_timezone="UTC"), **fields)

    def copy(self, destination: Path) -> Daily:
        shutil.copytree(self.exports, destination / "exports")
        shutil.copytree(self.warehouse.parent, destination / "warehouse", symlinks=True)
        return Daily(destination / "exports", self.held_back, destination / "warehouse" / self.warehouse.name)

    def deliver_next_drop(self) -> None:
        shutil.copytree(self.held_back, self.exports / self.held_back.name)

    def environment(self, **extra: str) -> dict[str, str]:
        # No setting but the pseudonym secret, which a production deployment sets once for good.
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") or k == "CRM_PSEUDONYM_KEY"}
        environment.update(CRM_EXPORTS_DIR=str(self.exports), CRM_WAREHOUSE=str(self.warehouse),
                           DAGSTER_HOME=str(self.warehouse.parent.parent / "dagster_home"), **extra)
        return environment


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def published_run(warehouse: Path) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select run_id from meta.publication").fetchone()[0]


def dbt_mode(work: Path) -> str:
    with duckdb.connect(str(work), read_only=True) as con:
        return con.execute("select mode from meta.dbt_state").fetchone()[0]


@pytest.fixture(scope="module")
def daily(tmp_path_factory) -> Daily:
    return Daily(*refreshed_with_last_drop_held_back(tmp_path_factory))


def test_a_refresh_with_nothing_new_says_so_and_leaves_the_publication_as_it_was(daily, tmp_path):
    copy = daily.copy(tmp_path)
    published, run = sha256(copy.warehouse), published_run(copy.warehouse)

    started = time.monotonic()
    done = subprocess.run([CLI, "refresh"], env=copy.environment(), capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("nothing changed since the refresh published") and run in done.stdout, done.stdout
    # Decided before Dagster loads: no run, not even an instance.
    assert not (tmp_path / "dagster_home").exists() and seconds < 30, seconds
    assert sha256(copy.warehouse) == published and published_run(copy.warehouse) == run

    # The Dagster way (the schedule, the UI): the ingest step finds nothing to do and every later step is skipped.
    from dagster import DagsterEventType, DagsterInstance

    from dagster_project.defs.refresh import run_refresh

    with DagsterInstance.ephemeral() as instance:
        result = run_refresh(copy.settings(), instance)
        skipped = {event.step_key for event in instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_SKIPPED)}
    assert not result.published and {"crm_dbt_models", "publish__warehouse"} <= skipped
    assert sha256(copy.warehouse) == published

    # A drop file copied again with the same content is no change; another setting, or other content, is: also of
    # the same size with the modification time set back (`touch -d`, `cp -p`).
    drop_file = next(copy.exports.glob("*/orders.csv"))
    published_stat = drop_file.stat()
    os.utime(drop_file, ns=(time.time_ns(), time.time_ns()))
    assert refresh_state.nothing_changed(copy.settings()).run_id == run
    assert refresh_state.nothing_changed(copy.settings(max_quarantine_share=0.2)) is None
    assert refresh_state.nothing_changed(copy.settings(as_of=date(2026, 9, 30))) is None
    drop_file.write_bytes(drop_file.read_bytes().replace(b"paid", b"PAID", 1))
    os.utime(drop_file, ns=(published_stat.st_atime_ns, published_stat.st_mtime_ns))
    assert (drop_file.stat().st_size, drop_file.stat().st_mtime_ns) == (published_stat.st_size,
                                                                        published_stat.st_mtime_ns)
    assert refresh_state.nothing_changed(copy.settings()) is None


def test_the_daily_schedule_fires_in_dagster_daemon_and_publishes_an_incremental_refresh(daily, tmp_path):
    copy = daily.copy(tmp_path)
    copy.deliver_next_drop()
    run = published_run(copy.warehouse)
    home = tmp_path / "dagster_home"
    home.mkdir()
    # One run at a time, as in production (deploy/dagster.yaml): the runs of later ticks wait for the first.
    (home / "dagster.yaml").write_text(instance_yaml(home) + "  runs:\n    max_concurrent_runs: 1\n")
    # The instance's SQLite storage created here, before the daemon starts: created by the daemon and by this test's
    # first poll at the same moment, its schedule database once got two alembic revisions and the daemon could not open
    # it (as `dagster dev` creates it once before it starts the webserver and the daemon).
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)):
        pass
    # Every minute: however long the daemon takes to start, the next minute fires.
    python_path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    environment = copy.environment(CRM_SCHEDULE_CRON="* * * * *", CRM_SCHEDULE_TIMEZONE="UTC", PYTHONPATH=python_path)
    # Its log (and that of the runs it starts) goes to a file: a pipe nobody reads would fill up and stall them.
    log = tmp_path / "daemon.log"
    with log.open("w") as log_file:
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")], cwd=ROOT,
                                  env=environment, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        finished, failures = _wait_for_scheduled_run(home, deadline=time.monotonic() + 900)
    finally:
        stop_group(daemon, dagster_home=home)
    assert finished is not None, f"no scheduled run finished; daemon said: {log.read_text()[-3000:]}"
    assert finished.is_success, failures
    assert finished.tags.get("dagster/schedule_name") == "daily_refresh"
    assert published_run(copy.warehouse) == finished.run_id != run
    assert dbt_mode(copy.work) == "incremental"


def _wait_for_scheduled_run(home: Path, deadline: float):
    """The first run the daily schedule started, once it has finished, and the messages of its failures; (None, [])
    if none did by the deadline."""
    from dagster import DagsterInstance, RunsFilter

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.get() as instance:
            while time.monotonic() < deadline:
                runs = instance.get_runs(RunsFilter(tags={"dagster/schedule_name": "daily_refresh"}))
                if runs and runs[-1].is_finished:
                    failures = [entry.message for entry in instance.all_logs(runs[-1].run_id)
                                if entry.dagster_event is not None and entry.dagster_event.is_failure]
                    return runs[-1], failures
                time.sleep(5)
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = previous
    return None, []
