"""Faults: refreshes killed with SIGKILL (alone or with their dbt child), readers beside a running refresh, a second
refresh, a full disk.

The promise: a refresh either publishes a complete, checked warehouse or leaves the published one untouched, and the
next refresh completes without manual clean-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import refreshed_with_last_drop_held_back
from dagster_project.analytics.campaigns import CAMPAIGN_COLUMNS, campaign_effectiveness
from dagster_project.as_of import resolved_as_of
from dagster_project.publish.publication import PublishError, publish
from dagster_project.warehouse_files import work_database_path
from test_incremental import dbt_build, differences

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
CLI = str(BIN / "crm-warehouse")

# A reader as a BI tool is one: another process that opens the published file read-only, again and again, and checks
# that everything it reads in one connection belongs to one publication.
READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import duckdb
    warehouse, stop, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    reads, errors, runs = 0, [], []
    while not stop.exists():
        try:
            with duckdb.connect(warehouse, read_only=True) as con:
                run_id, total = con.execute("select run_id, total_rows from meta.publication").fetchone()
                tables = con.execute("select schema_name, table_name from duckdb_tables() "
                                     "where schema_name <> 'meta'").fetchall()
                counted = sum(con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables)
            if counted != total:
                errors.append(f"run {run_id}: {counted} rows in its tables, {total} published")
            if not runs or runs[-1] != run_id:
                runs.append(run_id)
            reads += 1
        except Exception as error:
            errors.append(repr(error))
        time.sleep(0.25)  # a few reads a second: each reads every table, and the refresh beside it needs the cores
    Path(out).write_text(json.dumps({"reads": reads, "errors": errors, "runs": runs}))
""")


@dataclass
class Small:
    exports: Path
    held_back: Path
    warehouse: Path


def cli_env(small: Small) -> dict[str, str]:
    # No setting but the pseudonym secret, which a production deployment sets once for good (the shared refresh was
    # made with it, so the next refreshes are incremental, and the reference build below keys customers alike).
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") or k == "CRM_PSEUDONYM_KEY"}
    environment.update(CRM_EXPORTS_DIR=str(small.exports), CRM_WAREHOUSE=str(small.warehouse),
                       DAGSTER_HOME=str(small.warehouse.parent / "dagster_home"))
    return environment


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def publication(warehouse: Path) -> tuple[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select run_id, total_rows from meta.publication").fetchone()


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Small:
    """A small full export refreshed and published once; its last drop is held back to arrive later."""
    return Small(*refreshed_with_last_drop_held_back(tmp_path_factory))


def start_refresh(small: Small) -> subprocess.Popen:
    return subprocess.Popen([CLI, "refresh"], env=cli_env(small), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def kill_when(process: subprocess.Popen, marker: str, delay: float, whole_group: bool) -> list[str]:
    """SIGKILL the refresh `delay` seconds after its progress shows `marker`: only the refresh process (its dbt child
    is orphaned and goes on, as with a real `kill -9`), or with its dbt child (a power cut)."""
    seen = []
    for line in process.stdout:
        seen.append(line.rstrip())
        if marker in line:
            time.sleep(delay)
            if whole_group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.send_signal(signal.SIGKILL)
            assert process.wait() == -signal.SIGKILL, f"the refresh ended before the kill at {marker!r}: {seen[-5:]}"
            return seen
    raise AssertionError(f"the refresh ended before {marker!r}: {process.wait()} {process.stderr.read()[-2000:]}")


def test_killed_refreshes_leave_the_published_warehouse_intact_and_the_next_one_completes(small, tmp_path):
    published_bytes, (first_run, _) = sha256(small.warehouse), publication(small.warehouse)
    orders_before = duckdb.connect(str(small.warehouse), read_only=True).execute(
        "select count(*) from marts.fct_orders").fetchone()[0]
    shutil.copytree(small.held_back, small.exports / small.held_back.name)  # a new drop arrives

    # Killed in ingestion; in dbt with its dbt child (a power cut), once dbt has finished its first nodes: the
    # incremental base models commit one by one, so some have taken the new drop and some not; in dbt again, the dbt
    # child going on alone; in the analytics.
    for marker, delay, whole_group in (("raw_exports: started", 0.5, False), ("models and tests done", 0.0, True),
                                       ("crm_dbt_models: started", 4.0, False),
                                       ("analytics__customer_clv: started", 0.5, False)):
        kill_when(start_refresh(small), marker, delay, whole_group)
        assert sha256(small.warehouse) == published_bytes, f"published file changed by a refresh killed at {marker}"
        assert publication(small.warehouse)[0] == first_run

    # The next refresh completes with no clean-up, while a BI reader hammers the published file and a second
    # refresh is refused.
    stop, report = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(small.warehouse), str(stop), str(report)])
    completing = start_refresh(small)
    said = []
    for line in completing.stdout:
        said.append(line)
        if "crm_dbt_models: started" in line:
            break
    second = subprocess.run([CLI, "refresh"], env=cli_env(small), capture_output=True, text=True, timeout=300)
    assert second.returncode != 0
    assert "already writing" in second.stderr and len(second.stderr.strip().splitlines()) == 1, second.stderr
    rest, errors = completing.communicate(timeout=900)
    assert completing.returncode == 0, errors[-3000:]
    time.sleep(0.5)  # the reader sees the new publication on its next open
    stop.touch()
    reader.wait(timeout=60)

    seen = json.loads(report.read_text())
    new_run, _ = publication(small.warehouse)
    assert seen["errors"] == [] and seen["reads"] > 10
    assert seen["runs"][0] == first_run and seen["runs"][-1] == new_run != first_run
    with duckdb.connect(str(small.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_orders").fetchone()[0] > orders_before
        assert con.execute("select sum(unaccounted_rows) from marts.fct_reconciliation").fetchone()[0] == 0
        schemas = {row[0] for row in con.execute("select distinct schema_name from duckdb_tables()").fetchall()}
    assert schemas <= {"marts", "analytics", "quality", "meta"}  # raw, staging and personal data stay behind
    assert not list(small.warehouse.parent.glob(".*publishing*"))

    # As if never killed: the completing refresh's dbt went on incrementally from what the killed ones left; the
    # campaigns whose windows ended before the new day kept their saved lift, and the table is what estimating every
    # campaign from scratch gives.
    work = work_database_path(small.warehouse)
    with duckdb.connect(str(work), read_only=True) as con:
        assert con.execute("select mode from meta.dbt_state").fetchone()[0] == "incremental"
        written = con.execute("select * from analytics.campaign_effectiveness order by campaign_id").df()
        from_scratch = campaign_effectiveness(con, resolved_as_of(con)).table
    (reused,) = re.findall(r"campaign lift: \d+ campaigns estimated, (\d+) unchanged", "".join(said) + rest)
    assert int(reused) > 5, rest[-3000:]
    pd.testing.assert_frame_equal(written[list(CAMPAIGN_COLUMNS)],
                                  from_scratch.sort_values("campaign_id", ignore_index=True), check_dtype=False)
    # And the models are what a full build of the same raw data gives (which an uninterrupted incremental refresh
    # gives too: tests/test_incremental.py).
    reference = tmp_path / "reference.work.duckdb"
    shutil.copyfile(work, reference)
    dbt_build(reference, tmp_path / "target", full_refresh=True)
    assert differences(work, reference) == {}


def work_database_with_big_mart(path: Path, rows: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(f"create table marts.big as select range as id, md5(range::varchar) as payload from range({rows})")
        con.execute("create schema intermediate")
        con.execute("create table intermediate.secret as select 'not for BI' as note")


PUBLISH_IN_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    import duckdb
    from dagster_project.publish.publication import publish
    work, warehouse, parquet = sys.argv[1:4]
    with duckdb.connect(work) as con:
        publish(con, Path(warehouse), "child-run", None)
""")


def publish_in_child_once_writing(work: Path, warehouse: Path, **popen) -> subprocess.Popen:
    """A publish of `work` in a child process, returned once it is writing the new file (a fixed sleep would let a
    fast machine finish the publish first). The big mart changes first, so the child writes it anew: a publication
    with nothing changed starts from a file copy and is over a moment after that copy."""
    with duckdb.connect(str(work)) as con:
        con.execute("update marts.big set payload = upper(payload)")
    child = subprocess.Popen([sys.executable, "-c", PUBLISH_IN_CHILD, str(work), str(warehouse), ""], **popen)
    building = warehouse.with_name(f".{warehouse.name}.publishing")
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline and not (
            building.exists() and building.stat().st_size > 1_000_000):
        time.sleep(0.002)
    assert child.poll() is None, "the publish ended before it could be stopped midway"
    return child


def test_a_publish_killed_midway_or_out_of_space_leaves_the_published_files_as_they_were(tmp_path):
    work, warehouse, parquet = tmp_path / "crm.work.duckdb", tmp_path / "crm.duckdb", tmp_path / "parquet"
    work_database_with_big_mart(work, 3_000_000)
    with duckdb.connect(str(work)) as con:
        first = publish(con, warehouse, "first-run", None)
    assert first.rows == {"marts.big": 3_000_000}
    before = sha256(warehouse), sorted(p.name for p in parquet.iterdir())
    csv_before = (tmp_path / "csv").resolve().name
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from duckdb_tables() where schema_name = 'intermediate'").fetchone()[0] == 0

    child = publish_in_child_once_writing(work, warehouse)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert (sha256(warehouse), sorted(p.name for p in parquet.iterdir())) == before
    assert publication(warehouse)[0] == "first-run"

    # A full disk: writes beyond the current file sizes fail (RLIMIT_FSIZE, as for root a full disk cannot be faked).
    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    full = subprocess.run([sys.executable, "-c", PUBLISH_IN_CHILD, str(work), str(warehouse), str(parquet)],
                          preexec_fn=small_disk, capture_output=True, text=True, timeout=300)
    assert full.returncode != 0
    message = full.stderr.strip().splitlines()[-1]
    assert "PublishError" in message and "published warehouse is unchanged" in message and "too large" in message.lower()
    assert (sha256(warehouse), sorted(p.name for p in parquet.iterdir())) == before
    # The new file and export versions are written side by side; a failure removes what was written and switches in
    # nothing (the killed publish's leftovers wait for the next one that completes).
    assert not warehouse.with_name(f".{warehouse.name}.publishing").exists()
    assert (tmp_path / "csv").resolve().name == csv_before

    with duckdb.connect(str(work)) as con:  # and the next publish completes, clearing what the failures left
        publish(con, warehouse, "next-run", None)
    assert publication(warehouse)[0] == "next-run"
    assert not list(tmp_path.glob(".*publishing*"))
    assert len([p for p in tmp_path.glob(".parquet-*")]) == 2  # the current version and the previous one
    assert (parquet / "marts.big.parquet").exists()
    # 3M rows: too big for a sheet (the version's checksum manifest is the only file)
    assert (tmp_path / "csv").is_symlink() and not list((tmp_path / "csv").glob("*.csv"))


def test_a_writer_failing_while_the_others_complete_switches_nothing_in_and_leaves_nothing_behind(tmp_path):
    """The file and the Parquet and CSV versions are written side by side. A table name too long for the CSV writer's
    temporary file (".marts.<name>.csv.<32 hex>.body" passes the 255 bytes a file name may have; "marts.<name>.parquet"
    and the database do not) fails the CSV version alone, after the others completed: none may be switched in."""
    work, warehouse = tmp_path / "crm.work.duckdb", tmp_path / "crm.duckdb"
    with duckdb.connect(str(work)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.orders as select range as id from range(1000)")
        publish(con, warehouse, "first-run", None)
        before = sha256(warehouse), (tmp_path / "parquet").resolve(), (tmp_path / "csv").resolve()
        entries = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(work.name))
        con.execute(f'create table marts."{"t" * 214}" as select 1 as x')
        with pytest.raises(PublishError, match="published warehouse is unchanged.*File name too long"):
            publish(con, warehouse, "second-run", None)
    assert (sha256(warehouse), (tmp_path / "parquet").resolve(), (tmp_path / "csv").resolve()) == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(work.name)) == entries


def test_an_interrupted_publish_stops_its_writers_and_leaves_nothing_behind(tmp_path):
    """Ctrl-C (or Dagster terminating the run) while the three writers run: the published files stay as they were and
    nothing written is left, since an interrupted process never gets to a next publish's clean-up."""
    work, warehouse = tmp_path / "crm.work.duckdb", tmp_path / "crm.duckdb"
    work_database_with_big_mart(work, 3_000_000)
    with duckdb.connect(str(work)) as con:
        publish(con, warehouse, "first-run", None)
    before = sha256(warehouse), (tmp_path / "parquet").resolve(), (tmp_path / "csv").resolve()
    entries = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(work.name))

    # SIGINT as in a terminal: a shell's background jobs (CI started in one) ignore it, and a child inherits that.
    child = publish_in_child_once_writing(work, warehouse, stderr=subprocess.PIPE, text=True,
                                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=300)
    assert child.returncode != 0 and "KeyboardInterrupt" in stderr, stderr[-2000:]
    assert (sha256(warehouse), (tmp_path / "parquet").resolve(), (tmp_path / "csv").resolve()) == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(work.name)) == entries


def test_publish_refuses_an_empty_working_database(tmp_path):
    with duckdb.connect(str(tmp_path / "empty.work.duckdb")) as con, pytest.raises(PublishError, match="no marts"):
        publish(con, tmp_path / "crm.duckdb", "run", None)
    assert not (tmp_path / "crm.duckdb").exists()
