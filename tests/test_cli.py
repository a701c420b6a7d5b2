"""The `crm-warehouse` command-line contract and the Dagster way of running the same refresh, as a user runs
them: installed console scripts in subprocesses, from a working directory outside the repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
CLI = str(BIN / "crm-warehouse")


def run(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a command as a user would, with no CRM_* settings and no DAGSTER_HOME unless given."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k != "DAGSTER_HOME"}
    environment.update(env or {})
    return subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)


def orders_only_export(root: Path, missing: str | None = None) -> Path:
    drop = root / "exports" / "2026-05-31"
    drop.mkdir(parents=True)
    columns = [c for c in ("customer_id", "order_date", "amount", "currency") if c != missing]
    rows = [",".join(columns)]
    for i in range(60):
        values = {"customer_id": f"c{i % 25}", "order_date": f"2026-{1 + i % 5:02d}-{1 + i % 27:02d}",
                  "amount": f"{10 + i}.50", "currency": "CNY"}
        rows.append(",".join(values[c] for c in columns))
    (drop / "orders.csv").write_text("\n".join(rows) + "\n")
    return root / "exports"


def test_generate_then_refresh_from_another_directory_with_defaults(tmp_path):
    generated = run([CLI, "generate", "--out", "data/exports", "--customers", "300", "--days", "400", "--seed", "3"],
                    cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    assert "orders" in generated.stdout and (tmp_path / "data" / "exports_truth").is_dir()

    refreshed = run([CLI, "refresh"], cwd=tmp_path)  # defaults: data/exports -> warehouse/crm.duckdb
    assert refreshed.returncode == 0, refreshed.stderr
    out = refreshed.stdout
    assert "raw_exports: started" in out and "crm_dbt_models: done" in out  # progress lines
    # Each once: the run log is read on from where the last read ended.
    assert out.count("raw_exports: started") == 1 and out.count("crm_dbt_models: done") == 1, out
    assert "tables built" in out and "marts.fct_orders" in out and "quarantined" in out
    assert re.search(r"as of \S+ in [\d.]+ s ", out.split("tables built")[0])  # elapsed time
    # The ingest step's count and the closing summary agree: the summary splits the quarantine by stage.
    at_ingest = re.search(r"ingested \d+ new file\(s\): [\d,]+ rows read, [\d,]+ loaded, ([\d,]+) quarantined at ingest",
                          out)
    summary = re.search(r"quarantined ([\d,]+) \(([\d,]+) at ingest, ([\d,]+) by the models", out)
    assert at_ingest and summary, out
    assert at_ingest.group(1) == summary.group(2)
    assert int(summary.group(1).replace(",", "")) == sum(int(summary.group(i).replace(",", "")) for i in (2, 3))
    # Long steps show their progress: dbt's finished nodes out of its total, the forecast's series.
    dbt_progress = re.findall(r"crm_dbt_models: (\d+)/(\d+) models and tests done", out)
    assert dbt_progress and dbt_progress[-1][0] == dbt_progress[-1][1], out
    assert re.search(r"analytics__sales_forecast: \d+/\d+ series forecast", out), out
    # The publish step and the summary count the same tables.
    published = re.search(r"published (\d+) tables to", out)
    assert published and f"\n{published.group(1)} tables built and published" in out, out
    # What to do next, with a query that runs as printed.
    assert "warehouse/reports/crm_report.html" in out and "warehouse/quality/index.html" in out
    assert "make dev" in out
    (query,) = [line.split("query", 1)[1].strip() for line in out.splitlines() if line.startswith("  query ")]
    queried = subprocess.run(query, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert queried.returncode == 0 and "customer_key" in queried.stdout, queried.stderr
    with duckdb.connect(str(tmp_path / "warehouse" / "crm.duckdb"), read_only=True) as con:
        orders = con.execute("select count(*) from marts.fct_orders").fetchone()[0]
    assert orders > 0
    # The run is in the instance `make dev` shows (./.dagster_home), its events in the event log that keeps its
    # engines open: the run's own log and the cross-run asset index both hold them, as the UI reads them.
    from dagster import AssetKey, DagsterEventType, DagsterInstance

    from dagster_project.defs.event_log import SqliteEventLogKeepingEngines

    with DagsterInstance.from_config(str(tmp_path / ".dagster_home")) as instance:
        assert isinstance(instance.event_log_storage, SqliteEventLogKeepingEngines)
        (dagster_run,) = instance.get_runs()
        assert dagster_run.is_success
        materialised = {event.dagster_event.asset_key for event in instance.all_logs(
            dagster_run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)}
        assert {AssetKey(["marts", "fct_orders"]), AssetKey(["publish", "warehouse"])} <= materialised, materialised
        latest = instance.get_latest_materialization_event(AssetKey(["marts", "fct_orders"]))
        assert latest.run_id == dagster_run.run_id
        assert latest.asset_materialization.metadata["dagster/row_count"].value == orders
    # Run again with nothing new (`make demo` twice): the secret the first refresh generated was part of what it
    # recorded, so the second one finds nothing changed.
    again = run([CLI, "refresh"], cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.startswith("nothing changed since the refresh published"), again.stdout


# A console script's `main`, run the way dagster_project.entry_points runs ours: what its imports register at exit
# (here a handler and a temporary folder's clean-up) must still run, and its output and status reach the caller.
EXITING_SCRIPT = """
import atexit, sys, tempfile
from pathlib import Path
from dagster_project.process_environment import exit_skipping_teardown
folder, outcome = Path(sys.argv[1]), sys.argv[2]
open_until_exit = []

def main():
    atexit.register(lambda: (folder / "handler ran").touch())
    # A folder left to its finaliser, which removes it at exit, as cmdstan's are.
    open_until_exit.append(tempfile.TemporaryDirectory(dir=folder))
    (Path(open_until_exit[0].name) / "partial").touch()
    print("unfinished line", end="")
    if outcome == "raise":
        raise ValueError("a bug")
    if outcome == "message":
        sys.exit("stopped: why")
    return 3

exit_skipping_teardown(main)
"""


@pytest.mark.parametrize("outcome, status", [("return", 3), ("message", 1), ("raise", 1)])
def test_the_console_scripts_exit_with_their_status_after_every_exit_handler(tmp_path, outcome, status):
    done = subprocess.run([sys.executable, "-c", EXITING_SCRIPT, str(tmp_path), outcome], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == status and done.stdout == "unfinished line", (done.stdout, done.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handler ran"]
    assert {"return": "", "message": "stopped: why\n"}.get(outcome, done.stderr) == done.stderr
    assert outcome != "raise" or done.stderr.rstrip().endswith("ValueError: a bug")


def test_output_that_cannot_be_written_at_exit_makes_the_status_120_as_python_does(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # the output waits for the exit
    with open("/dev/full", "w") as full:  # a disk with no space left
        done = subprocess.run([sys.executable, "-c", EXITING_SCRIPT, str(tmp_path), "return"], stdout=full,
                              stderr=subprocess.PIPE, env=environment, text=True, timeout=120)
    assert done.returncode == 120 and "No space left on device" in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handler ran"]


def test_refresh_failures_are_one_line_and_non_zero(tmp_path):
    missing = run([CLI, "refresh", "--exports", "nowhere"], cwd=tmp_path)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1
    assert "nowhere" in missing.stderr and "does not exist" in missing.stderr
    # The user's exports come from their CRM: the message points to the README's section on them, and offers
    # `generate` only to try the sample, into the sample's folder, never into the user's path.
    assert '"Use it with your own exports"' in missing.stderr
    assert "generate --out data/exports" in missing.stderr and "generate --out nowhere" not in missing.stderr
    assert f"--out {tmp_path / 'nowhere'}" not in missing.stderr

    bad_date = run([CLI, "refresh", "--exports", ".", "--as-of", "2026-13-01"], cwd=tmp_path)
    assert bad_date.returncode != 0 and bad_date.stderr.strip().splitlines() == [
        "crm-warehouse: error: as-of date '2026-13-01' is not a date in YYYY-MM-DD form"]


def test_a_second_refresh_is_refused_at_once_and_leaves_no_dagster_run(tmp_path):
    """While a refresh holds the warehouse's lock, another is refused before Dagster even loads."""
    import fcntl
    import time

    from dagster import DagsterInstance

    from dagster_project.defs.instance import instance_yaml

    exports = orders_only_export(tmp_path)
    warehouse = (tmp_path / "wh.duckdb").resolve()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml(home))
    with open(f"{warehouse}.lock", "a+") as held:  # as the Warehouse resource holds it for a whole run
        held.write("pid 12345")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        started = time.perf_counter()
        refused = run([CLI, "refresh", "--exports", str(exports), "--warehouse", str(warehouse)], cwd=tmp_path,
                      env={"DAGSTER_HOME": str(home)})
        elapsed = time.perf_counter() - started
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        f"crm-warehouse: error: another refresh (pid 12345) is already writing {warehouse}; "
        "try again when it has finished"]
    assert elapsed < 3, elapsed
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs() == []
    assert not warehouse.exists()


def test_a_file_missing_a_required_column_stops_naming_file_and_column_and_keeps_earlier_data(tmp_path):
    exports = orders_only_export(tmp_path)
    good = run([CLI, "refresh", "--exports", str(exports), "--warehouse", "wh.duckdb"], cwd=tmp_path)
    assert good.returncode == 0, good.stderr

    bad_drop = exports / "2026-06-01"
    bad_drop.mkdir()
    (bad_drop / "orders.csv").write_text("customer_id,amount\nc1,10\n")
    bad = run([CLI, "refresh", "--exports", str(exports), "--warehouse", "wh.duckdb"], cwd=tmp_path)
    assert bad.returncode != 0
    (line,) = bad.stderr.strip().splitlines()
    assert "2026-06-01/orders.csv" in line and "'order_date'" in line and "mapping.yml" in line
    with duckdb.connect(str(tmp_path / "wh.work.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from raw.orders").fetchone()[0] == 60
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:  # the published warehouse is untouched
        assert con.execute("select count(*) from marts.fct_orders").fetchone()[0] == 60


def test_dagster_asset_materialize_runs_the_same_refresh(tmp_path):
    exports = orders_only_export(tmp_path)
    result = run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "dagster_project.defs.definitions", "--select", "*"],
        cwd=tmp_path, env={"CRM_EXPORTS_DIR": str(exports), "CRM_WAREHOUSE": str(tmp_path / "dg.duckdb")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with duckdb.connect(str(tmp_path / "dg.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_orders").fetchone()[0] == 60
        assert con.execute("select sum(unaccounted_rows) from marts.fct_reconciliation").fetchone()[0] == 0


def test_the_command_prepares_the_dbt_manifest_itself_when_missing(tmp_path):
    """A fresh checkout has no dbt/target: the first command must parse the project itself."""
    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).resolve().parent.parent / "dbt", repo / "dbt",
                    ignore=shutil.ignore_patterns("target", "logs"))
    from dagster_dbt import DbtProject

    from dagster_project.defs.assets.dbt import ensure_manifest

    project = DbtProject(project_dir=repo / "dbt", profiles_dir=repo / "dbt")
    manifest = ensure_manifest(project)
    assert manifest.exists() and '"model.crm.customer_360"' in manifest.read_text()


def test_processes_preparing_the_manifest_at_once_never_leave_a_broken_one(tmp_path):
    """After an edit, every process that imports the definitions parses; each must leave a whole manifest.json."""
    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).resolve().parent.parent / "dbt", repo / "dbt",
                    ignore=shutil.ignore_patterns("target", "logs"))
    from concurrent.futures import ThreadPoolExecutor

    from dagster_dbt import DbtProject

    from dagster_project.defs.assets.dbt import ensure_manifest

    project = DbtProject(project_dir=repo / "dbt", profiles_dir=repo / "dbt")
    with ThreadPoolExecutor(3) as pool:
        manifests = list(pool.map(lambda _: ensure_manifest(project), range(3)))
    assert len(set(manifests)) == 1
    assert "model.crm.customer_360" in json.loads(manifests[0].read_text())["nodes"]
    assert [p.name for p in manifests[0].parent.iterdir() if p.name.startswith(".")] == []
