"""Who can read what on disk (docs/security.md): every file a refresh writes has the mode of the access table
(dagster_project/warehouse_files.py), whatever the umask it was started with; another local account reads what is
published and nothing else; the Dagster UI listens on this machine only; what outlived the retention is gone."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from conftest import refresh, stop_group
from scans import paths_under
from dagster_project import refresh_state
from dagster_project.privacy import compaction, modes, retention
from dagster_project.quality import check_suites
from dagster_project.quality.suites import load_suites
from dagster_project.publish.exports import remove_old_versions
from dagster_project.publish.publication import publish
from dagster_project.settings import (
    DBT_PROJECT_DIR,
    SettingsError,
    parse_published_mode,
)
from dagster_project.warehouse_files import (
    PRIVATE,
    PUBLISHED,
    access_of,
    lock_path,
    pseudonym_key_path,
    work_database_path,
    work_temp_dir,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "crm-warehouse")
SITE_PACKAGES = Path(duckdb.__file__).resolve().parent.parent
VERSIONS_DROP = "2026-11-03"
LATE_EMAIL = "late.row@example.org"


@dataclass
class Refreshed:
    root: Path
    exports: Path
    warehouse: Path
    dagster_home: Path
    started: float

    @property
    def work(self) -> Path:
        return work_database_path(self.warehouse)


def cli_env(exports: Path, warehouse: Path, dagster_home: Path, **settings: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") or k == "CRM_PSEUDONYM_KEY"}
    environment.update(CRM_EXPORTS_DIR=str(exports), CRM_WAREHOUSE=str(warehouse), DAGSTER_HOME=str(dagster_home),
                       **settings)
    return environment


@pytest.fixture(scope="module")
def shared_root():
    """A folder other accounts may enter (pytest's own temporary folders are owner-only)."""
    root = Path(tempfile.mkdtemp(prefix="crm-security-", dir="/tmp"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def refreshed(shared_root) -> Refreshed:
    """A small export refreshed by the CLI started with umask 000, without a configured pseudonym secret (so the
    generated .pseudonym_key is among the files written). A last drop brings new versions of three customers (their
    old versions are replaced) and a record dated after its drop (set aside), for the retention to age out."""
    from dagster_project.sample_data import generate

    summary = generate(shared_root / "exports", customers=150, days=300, seed=5, end_date=date(2026, 10, 31))
    first = min(summary.out_dir.glob("*/customers.csv"))
    with first.open(encoding="utf-8-sig", newline="") as delivered:
        ids = [row["customer_id"] for row in csv.DictReader(delivered)][:3]
    (summary.out_dir / VERSIONS_DROP).mkdir()
    (summary.out_dir / VERSIONS_DROP / "customers.csv").write_text(
        "customer_id,name,email,updated_at\n"
        + "".join(f"{i},New Version {n},new.version.{n}@example.org,{VERSIONS_DROP}\n" for n, i in enumerate(ids))
        + f"C99999901,Late Row,{LATE_EMAIL},2027-01-01\n")
    done = Refreshed(shared_root, summary.out_dir, shared_root / "warehouse" / "crm.duckdb", shared_root / "dagster",
                     time.time())
    environment = cli_env(done.exports, done.warehouse, done.dagster_home, CRM_MAX_QUARANTINE_SHARE="0.5")
    environment.pop("CRM_PSEUDONYM_KEY", None)
    result = subprocess.run([CLI, "refresh"], env=environment, capture_output=True, text=True, timeout=1800,
                            preexec_fn=lambda: os.umask(0))
    assert result.returncode == 0, result.stderr[-3000:]
    return done


def lstat_if_there(path: Path) -> os.stat_result | None:
    """dbt/target and dbt/logs are shared by the suite's workers: another test's dbt may remove a file meanwhile."""
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def written_since(folder: Path, started: float) -> list[Path]:
    """What under `folder` was written since `started` (the folder itself only if the refresh created it)."""
    below = paths_under(folder, since=started - 1, folders_too=True)
    created = folder.is_dir() and folder.stat().st_ctime >= started - 1 and started > 0
    return [folder] * created + below


def test_every_file_a_refresh_writes_has_the_mode_the_access_table_gives_it_whatever_the_umask(refreshed):
    published_file, published_dir = 0o644, 0o755
    files = [p for p in [refreshed.warehouse.parent, *refreshed.warehouse.parent.rglob("*")]]
    elsewhere = [refreshed.dagster_home, *written_since(refreshed.dagster_home, 0),
                 *written_since(DBT_PROJECT_DIR / "target", refreshed.started),
                 *written_since(DBT_PROJECT_DIR / "logs", refreshed.started)]
    assert {p.name for p in files} >= {"crm.duckdb", "crm.work.duckdb", ".pseudonym_key", "crm.duckdb.lock",
                                       "crm.work.duckdb.tmp", "index.html", "crm_report.html"}
    assert any(p.suffix == ".db" for p in elsewhere)  # Dagster's run storage
    wrong = {}
    for path in [*files, *elsewhere]:
        if (found := lstat_if_there(path)) is None or stat.S_ISLNK(found.st_mode):
            continue
        mode = stat.S_IMODE(found.st_mode)
        if path == refreshed.warehouse.parent:
            access = PUBLISHED  # the refresh created it: readers must enter it
        elif path.is_relative_to(refreshed.warehouse.parent):
            access = access_of(refreshed.warehouse, path)
        else:
            access = PRIVATE  # Dagster's instance, dbt's compiled SQL and logs
        if access is None:
            wrong[str(path)] = f"{mode:o}: not in the access table (dagster_project/warehouse_files.py)"
        elif access == PRIVATE and mode & 0o077:
            wrong[str(path)] = f"{mode:o}: holds personal data or secrets, must be owner-only"
        elif access == PUBLISHED and mode != (
                expected := published_dir if stat.S_ISDIR(found.st_mode) else published_file):
            wrong[str(path)] = f"{mode:o}: published, must be {expected:o}"
    assert wrong == {}


def test_the_published_mode_is_configurable_and_checked(tmp_path):
    work, warehouse = tmp_path / "crm.work.duckdb", tmp_path / "w" / "crm.duckdb"
    with duckdb.connect(str(work)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.t as select 1 as x")
        publish(con, warehouse, "run", None, published_mode=0o640)
    assert stat.S_IMODE(warehouse.stat().st_mode) == 0o640
    assert stat.S_IMODE(warehouse.parent.stat().st_mode) == 0o750
    version = (warehouse.parent / "parquet").resolve()
    assert stat.S_IMODE(version.stat().st_mode) == 0o750
    assert {stat.S_IMODE(p.stat().st_mode) for p in version.iterdir()} == {0o640}
    assert parse_published_mode("0640") == parse_published_mode(0o640) == 0o640
    for bad in ("0755", "0400", "644x", "04644", "0o777"):
        with pytest.raises(SettingsError, match="CRM_PUBLISHED_MODE"):
            parse_published_mode(bad)


def test_files_an_earlier_version_left_readable_are_made_owner_only_when_a_refresh_starts(tmp_path):
    from dagster_project.defs.resources import Warehouse

    warehouse = tmp_path / "crm.duckdb"
    duckdb.connect(str(work_database_path(warehouse))).close()
    for path in (warehouse, work_database_path(warehouse), pseudonym_key_path(warehouse), lock_path(warehouse)):
        path.touch()
        os.chmod(path, 0o644)
    resource = Warehouse(path=str(warehouse), work_path=str(work_database_path(warehouse)), exports_dir=str(tmp_path))
    resource.setup_for_execution(None)
    resource.teardown_after_execution(None)
    modes_now = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes_now == {"crm.duckdb": 0o644, "crm.work.duckdb": 0o600, ".pseudonym_key": 0o600,
                         "crm.duckdb.lock": 0o600, "crm.work.duckdb.tmp": 0o700}


def test_connections_after_a_spill_keep_the_owner_only_spill_folder(tmp_path):
    """A large refresh spills; connections opened after that in the same process (ingestion's parallel loads, the
    analytics) share the database instance, whose spill folder DuckDB will not set again once used."""
    from dagster_project.defs.resources import Warehouse

    warehouse = tmp_path / "crm.duckdb"
    resource = Warehouse(path=str(warehouse), work_path=str(work_database_path(warehouse)), exports_dir=str(tmp_path))
    spill = work_temp_dir(warehouse)
    with resource.connect() as first:
        first.execute("set memory_limit = '40MB'; set threads = 1; set preserve_insertion_order = false")
        first.execute("create table t as select i, md5(i::varchar) as s from range(1500000) r(i)")
        # Sorting more than the memory limit spills into the folder; the spill files are gone once it is done.
        spilled = first.execute("select max(peak) from (select max(i) over (order by s) as peak from t)").fetchone()
        assert spilled[0] == 1499999
        assert first.execute("select current_setting('temp_directory')").fetchone()[0] == str(spill)
        with resource.connect() as second:
            assert second.execute("select count(*) from t").fetchone()[0] == 1500000
    assert stat.S_IMODE(spill.stat().st_mode) == 0o700


# ------------------------------------------------------------------------------------------ another local account


READ_AS_OTHER = textwrap.dedent("""
    import json, sys
    sys.path.append(sys.argv[1])
    import duckdb
    warehouse, work, private = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    out = {}
    con = duckdb.connect(warehouse, read_only=True)
    out["orders"] = con.execute("select count(*) from marts.fct_orders").fetchone()[0]
    out["parquet"] = duckdb.connect().execute("select count(*) from read_parquet(?)", [sys.argv[5]]).fetchone()[0]
    out["pages"] = [len(open(p, encoding="utf-8").read()) for p in json.loads(sys.argv[6])]
    try:
        duckdb.connect(work, read_only=True).close()
        out["work"] = "opened"
    except duckdb.Error as error:
        out["work"] = str(error)
    out["private"] = {}
    for path in private:
        try:
            open(path, "rb").read(1) if not path.endswith("/") else __import__("os").listdir(path)
            out["private"][path] = "read"
        except PermissionError:
            out["private"][path] = "denied"
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def other_account():
    """A second local account created for the test (root only); removed afterwards."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"):
        pytest.skip("needs root with useradd and runuser to act as another local account")
    name = f"crmtest{uuid.uuid4().hex[:8]}"
    created = subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                             capture_output=True, text=True)
    if created.returncode != 0:
        pytest.skip(f"cannot create a second user: {created.stderr.strip()}")
    yield name
    subprocess.run(["userdel", name], capture_output=True)


def as_user(user: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("runuser"), "-u", user, "--", "/usr/bin/python3", "-c", READ_AS_OTHER, *args],
                          capture_output=True, text=True, timeout=300, env={"HOME": "/tmp", "PATH": "/usr/bin:/bin"},
                          cwd="/tmp")


def test_another_account_reads_the_published_files_and_none_of_the_private_ones(refreshed, other_account):
    folder = refreshed.warehouse.parent
    private = [str(refreshed.work), str(pseudonym_key_path(refreshed.warehouse)), str(lock_path(refreshed.warehouse)),
               str(work_temp_dir(refreshed.warehouse)) + "/", str(refreshed.dagster_home) + "/"]
    pages = [str(folder / "reports" / "crm_report.html"), str(folder / "quality" / "index.html")]
    done = as_user(other_account, str(SITE_PACKAGES), str(refreshed.warehouse), str(refreshed.work),
                   json.dumps(private), str(folder / "parquet" / "marts.fct_orders.parquet"), json.dumps(pages))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    with duckdb.connect(str(refreshed.warehouse), read_only=True) as con:
        orders = con.execute("select count(*) from marts.fct_orders").fetchone()[0]
    assert seen["orders"] == seen["parquet"] == orders > 0 and all(seen["pages"])
    assert "Permission denied" in seen["work"]
    assert seen["private"] == dict.fromkeys(private, "denied")


def test_a_group_of_readers_gets_mode_0640_in_a_setgid_folder_and_nobody_else(shared_root, other_account):
    """docs/security.md's recipe for limiting readers to a group: the readers' group owns the warehouse folder,
    setgid, and CRM_PUBLISHED_MODE=0640."""
    group, outsider = f"crmbi{uuid.uuid4().hex[:6]}", f"crmout{uuid.uuid4().hex[:6]}"
    for command in (["groupadd", group], ["usermod", "-aG", group, other_account],
                    ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", outsider]):
        assert subprocess.run(command, capture_output=True).returncode == 0, command
    try:
        folder = shared_root / "group_warehouse"
        folder.mkdir()
        shutil.chown(folder, group=group)
        os.chmod(folder, 0o2750)
        work, warehouse = shared_root / "group.work.duckdb", folder / "crm.duckdb"
        with duckdb.connect(str(work)) as con:
            con.execute("create schema marts")
            con.execute("create table marts.fct_orders as select range as id from range(3)")
            publish(con, warehouse, "run", None, published_mode=0o640)
        arguments = (str(SITE_PACKAGES), str(warehouse), str(work), "[]",
                     str(folder / "parquet" / "marts.fct_orders.parquet"), "[]")
        member, other = as_user(other_account, *arguments), as_user(outsider, *arguments)
        assert member.returncode == 0 and json.loads(member.stdout)["orders"] == 3, member.stderr[-2000:]
        assert other.returncode != 0 and "Permission denied" in other.stderr
    finally:
        subprocess.run(["userdel", outsider], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)


# ------------------------------------------------------------------------------------------------- the Dagster UI


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def test_make_dev_serves_the_dagster_ui_on_this_machine_only(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dry = subprocess.run(["make", "-n", "dev", f"BIN={Path(sys.executable).parent}", f"DAGSTER_PORT={port}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    (command,) = [line for line in dry.stdout.splitlines() if " dev -w " in line]
    assert "--host 127.0.0.1" in command and command.startswith("umask 077 && ")
    environment = cli_env(tmp_path / "exports", tmp_path / "crm.duckdb", tmp_path / "dagster")
    (tmp_path / "exports").mkdir()
    (tmp_path / "dagster").mkdir()
    server = subprocess.Popen(["sh", "-c", command], cwd=ROOT, env=environment, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, addresses = time.monotonic() + 300, set()
        while time.monotonic() < deadline and not addresses and server.poll() is None:
            time.sleep(1)
            addresses = listening_addresses(port)
        assert addresses == {"0100007F"}, addresses  # 127.0.0.1 only: not 0.0.0.0, not an IPv6 wildcard
    finally:
        # (dagster dev can outwait SIGTERM on its children; the address was checked)
        stop_group(server, timeout=30, dagster_home=tmp_path / "dagster")


# ------------------------------------------------------------------------------------------------------ retention


def content(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, frozenset]:
    """Every table's rows, whatever their order."""
    tables = con.execute("select table_name from duckdb_tables() where schema_name = ?", [schema]).fetchall()
    return {t: frozenset(map(repr, con.execute(f'select * from {schema}."{t}"').fetchall())) for (t,) in tables}


def test_retention_blanks_what_no_longer_serves_the_warehouse_and_keeps_the_marts(refreshed, tmp_path, monkeypatch):
    """A refresh with CRM_RAW_RETENTION_DAYS 0 blanks every replaced customer version and quarantined raw line
    loaded before it, and keeps no previous export version with CRM_KEEP_PREVIOUS_EXPORTS 0; the marts stay the same,
    and the blanked values are gone from the file's bytes too."""
    exports, warehouse = tmp_path / "exports", tmp_path / "warehouse" / "crm.duckdb"
    shutil.copytree(refreshed.exports, exports)
    shutil.copytree(refreshed.warehouse.parent, warehouse.parent, symlinks=True)
    with duckdb.connect(str(work_database_path(warehouse))) as con:
        # A quarantined raw line as ingestion keeps it, loaded long ago.
        con.execute("insert into raw._quarantine (entity, source_file, drop_date, row_number, reason, raw_record, "
                    "quarantined_at) values ('customers', 'x.csv', '2026-01-01', 1, 'wrong field count', "
                    "'C0,Retained Person,retained.person@example.com', ?)", [datetime(2026, 1, 1)])
        # Replaced or set-aside customer versions whose drop holds no other version of the id.
        aged = con.execute("""
            select r._source_file, r._row_number from raw.customers r join audit.audit_raw_rows_classified a
              on a.entity = 'customers' and a._source_file = r._source_file and a._row_number = r._row_number
            where a.outcome in ('superseded', 'quarantined') and (r.email is not null or r.name is not null)
              and (r.customer_id, r._drop_date) not in (
                  select (customer_id, _drop_date) from raw.customers group by all having count(*) > 1)
            """).fetchall()
        marts_before = content(con, "marts")
    assert aged, "the sample has no replaced customer versions to age out"
    before = work_database_path(warehouse).read_bytes()
    assert b"retained.person@example.com" in before  # the byte scan finds a value the file holds

    monkeypatch.delenv("CRM_PSEUDONYM_KEY")  # the copied warehouse's keys come from its .pseudonym_key
    refresh(exports, warehouse, settings_overrides={"raw_retention_days": 0, "keep_previous_exports": 0,
                                                    "max_quarantine_share": 0.5})

    with duckdb.connect(str(work_database_path(warehouse)), read_only=True) as con:
        assert con.execute("select count(*) from raw._quarantine where raw_record is not null").fetchone()[0] == 0
        still = con.execute("select count(*) from raw.customers where list_contains(?, _source_file || '#' || "
                            "_row_number) and coalesce(name, email, phone, birth_date, person_id) is not null",
                            [[f"{f}#{r}" for f, r in aged]]).fetchone()[0]
        logged = con.execute("select quarantined_lines, customer_versions, compacted_at from privacy.retention_log"
                             ).fetchall()
        marts_after = content(con, "marts")
    assert still == 0 and len(aged) >= 4  # the three replaced versions and the record set aside, at least
    assert len(logged) == 1 and logged[0][0] >= 1 and logged[0][1] >= len(aged) and logged[0][2] is not None
    # (fct_quarantined_rows gained the line inserted above.)
    changed = {t: (sorted(marts_before[t] - rows)[:3], sorted(rows - marts_before[t])[:3])
               for t, rows in marts_after.items() if rows != marts_before.get(t) and t != "fct_quarantined_rows"}
    assert changed == {}
    after = work_database_path(warehouse).read_bytes()
    assert b"retained.person@example.com" not in after and LATE_EMAIL.encode() not in after
    assert compaction.free_blocks(work_database_path(warehouse)) == 0
    assert [p.name.split("-")[0] for p in sorted(warehouse.parent.glob(".*-*")) if p.is_dir()] == [".csv", ".parquet"]

    # The raw customers suite checking every row again, as after --full-refresh or a change to the rules, leaves the
    # blanked versions out: the e-mail and phone null rates count what was delivered, not what the retention removed.
    work = work_database_path(warehouse)
    (suite,) = [s for s in load_suites() if s.name == "raw_customers"]
    (validation,), _ = check_suites(lambda: duckdb.connect(str(work)), [suite], "full-check", tmp_path / "q.html",
                                    built_marts=False, code_version=refresh_state.code_version(), every_row=True)
    checked = {e.column: (e.element_count, e.unexpected_count) for e in validation.expectations
               if e.expectation_type == "expect_column_values_to_not_be_null" and e.column in ("email", "phone")}
    with duckdb.connect(str(work), read_only=True) as con:
        blanked = set(con.execute("select _source_file, _row_number from privacy.retention_blanked").fetchall())
        rows = con.execute("select count(*), count(*) filter (where email is null), "
                           "count(*) filter (where phone is null) from raw.customers where not list_contains(?, "
                           "_source_file || '#' || _row_number)", [[f"{f}#{r}" for f, r in aged]]).fetchone()
    assert blanked == set(aged)
    assert checked == {"email": (rows[0], rows[1]), "phone": (rows[0], rows[2])}, (checked, rows)


def test_previous_export_versions_beyond_the_setting_are_removed_the_replaced_one_first_kept(tmp_path):
    folder = tmp_path / "parquet"
    names = [f".parquet-2026120{day}T060000-run{day}" for day in range(1, 6)]
    for name in names:
        (tmp_path / name).mkdir()
    current, previous = tmp_path / names[-1], tmp_path / names[1]  # an older one was the one replaced
    removed = remove_old_versions(folder, current, previous.resolve(), 2)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([names[-1], names[1], names[3]]) and len(removed) == 2
    remove_old_versions(folder, current, None, 0)
    assert [p.name for p in tmp_path.iterdir()] == [names[-1]]


def test_retention_days_and_versions_are_settings_with_flags(env, tmp_path):
    from dagster_project.cli import build_parser, refresh_settings
    from dagster_project.settings import Settings

    env.setenv("CRM_RAW_RETENTION_DAYS", "30")
    env.setenv("CRM_KEEP_PREVIOUS_EXPORTS", "0")
    env.setenv("CRM_PUBLISHED_MODE", "0640")
    read = Settings.load()
    assert (read.raw_retention_days, read.keep_previous_exports, read.published_mode) == (30, 0, 0o640)
    flagged = refresh_settings(build_parser().parse_args(
        ["refresh", "--raw-retention-days", "7", "--keep-previous-exports", "2", "--published-mode", "644"]))
    assert (flagged.raw_retention_days, flagged.keep_previous_exports, flagged.published_mode) == (7, 2, 0o644)
    env.setenv("CRM_RAW_RETENTION_DAYS", "-1")
    with pytest.raises(SettingsError, match="CRM_RAW_RETENTION_DAYS / --raw-retention-days"):
        Settings.load()


def test_the_purge_counts_from_loading_not_from_the_drop_date(tmp_path):
    now = datetime(2026, 12, 5, 12)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create schema raw")
        con.execute("create table raw._quarantine (entity varchar, source_file varchar, drop_date date, "
                    "row_number bigint, reason varchar, raw_record varchar, quarantined_at timestamp, detail varchar)")
        con.execute("insert into raw._quarantine values ('orders', 'a', '2020-01-01', 1, 'r', 'old drop, new load', ?, "
                    "null), ('orders', 'b', '2026-12-01', 1, 'r', 'new drop, old load', ?, null)",
                    [now - timedelta(days=1), now - timedelta(days=40)])
        done = retention.purge(con, 30, "run", now)
        kept = con.execute("select raw_record from raw._quarantine where raw_record is not null").fetchall()
    assert (done.quarantined_lines, kept) == (1, [("old drop, new load",)])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", str(done.cutoff.date()))
    assert modes.dir_mode(0o644) == 0o755 and modes.dir_mode(0o640) == 0o750 and modes.dir_mode(0o600) == 0o700


def test_versions_blanked_before_the_record_existed_are_found_once_and_new_ones_recorded(tmp_path):
    """A working database purged by a version that logged counts only: its blanked customer versions are those no
    longer counting, loaded before the last purge's cutoff, with none of the blanked values left."""
    earlier_cutoff, now = datetime(2026, 10, 1), datetime(2026, 12, 5, 12)
    personal = ", ".join(f"{c} varchar" for c in retention.BLANKED_CUSTOMER_COLUMNS)
    rows = [  # id, drop, row, loaded, outcome, e-mail
        ("C1", "2026-09-01", 1, datetime(2026, 9, 1), "superseded", None),  # blanked by the earlier purge
        ("C2", "2026-09-01", 2, datetime(2026, 9, 1), "superseded", "c2@example.org"),  # its drop has another one
        ("C2", "2026-09-01", 3, datetime(2026, 9, 1), "landed", "c2.new@example.org"),
        ("C3", "2026-09-01", 4, datetime(2026, 9, 1), "landed", None),  # counts, delivered without values
        ("C4", "2026-11-20", 1, datetime(2026, 11, 20), "superseded", None),  # loaded after both cutoffs
        ("C5", "2026-10-20", 1, datetime(2026, 10, 20), "superseded", "c5@example.org"),  # blanked now
    ]
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        for schema in ("raw", "audit", "privacy"):
            con.execute(f"create schema {schema}")
        con.execute(f"create table raw.customers (customer_id varchar, {personal}, _source_file varchar, "
                    "_row_number bigint, _loaded_at timestamp, _drop_date date)")
        con.execute("create table audit.audit_raw_rows_classified (entity varchar, _source_file varchar, "
                    "_row_number bigint, outcome varchar)")
        for customer_id, drop, row, loaded, outcome, email in rows:
            con.execute("insert into raw.customers (customer_id, email, _source_file, _row_number, _loaded_at, "
                        "_drop_date) values (?, ?, ?, ?, ?, ?)", [customer_id, email, f"{drop}/customers.csv", row,
                                                                   loaded, drop])
            con.execute("insert into audit.audit_raw_rows_classified values ('customers', ?, ?, ?)",
                        [f"{drop}/customers.csv", row, outcome])
        con.execute("create table privacy.retention_log (run_id varchar, purged_at timestamp, retention_days integer, "
                    "loaded_before timestamp, quarantined_lines bigint, customer_versions bigint, "
                    "compacted_at timestamp)")
        con.execute("insert into privacy.retention_log values ('old', ?, 30, ?, 0, 1, ?)",
                    [earlier_cutoff, earlier_cutoff, earlier_cutoff])
        assert retention.blanked_versions_condition(con) is None  # no record yet
        done = retention.purge(con, 30, "run", now)
        recorded = con.execute("select customer_id, run_id from privacy.retention_blanked join raw.customers "
                               "using (_source_file, _row_number, _loaded_at) order by 1").fetchall()
        selected = con.execute(f"select customer_id from raw.customers "
                               f"where {retention.blanked_versions_condition(con)} order by 1").fetchall()
        emails = dict(con.execute("select customer_id || '#' || _row_number, email from raw.customers").fetchall())
    assert done.customer_versions == 1 and emails["C5#1"] is None and emails["C2#2"] == "c2@example.org"
    assert recorded == [("C1", None), ("C5", "run")] and selected == [("C1",), ("C5",)]


def test_a_transcoded_copy_of_a_drop_is_owner_only_and_removed(tmp_path):
    """A GB18030 drop is read through a UTF-8 copy: in a folder only the owner may enter, gone after the load, and
    never beside the drop."""
    from dagster_project.ingest.encodings import fingerprint
    from dagster_project.ingest.export_file import ExportFile
    from dagster_project.ingest.mapping import EntityMapping
    from dagster_project.ingest.sources import csv_source

    drop = tmp_path / "exports" / "2026-06-30"
    drop.mkdir(parents=True)
    path = drop / "customers.csv"
    path.write_bytes("customer_id,name\nC1,张三丰\n".encode("gb18030"))
    file = ExportFile.locate(tmp_path / "exports", path)
    with duckdb.connect() as con, csv_source(con, file, fingerprint(path, text=True), EntityMapping()) as source:
        copy = Path(source.params["path"])
        assert source.encoding == "gb18030" and copy.read_text(encoding="utf-8").endswith("张三丰\n")
        assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700 and not copy.is_relative_to(tmp_path)
        assert stat.S_IMODE(copy.stat().st_mode) & 0o077 == 0
    assert not copy.parent.exists()
    assert sorted(p.name for p in drop.iterdir()) == ["customers.csv"]
