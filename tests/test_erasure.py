"""Erasure on request (docs/security.md): `crm-warehouse forget` and the Dagster job `forget_customer` take a request;
the next refresh removes the person, every CRM id merged into them, from every layer; a later drop re-delivering them
is quarantined as "erased"; the audit table holds no personal data; and the person's values are found nowhere
afterwards: not in the working database (its bytes included), the published file, any export version kept for
readers, the reports, dbt's folders or Dagster's storage."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from conftest import refresh
from scans import files_under, found_in_bytes, found_in_database, found_in_exports, found_in_files
from dagster_project.privacy import compaction, erasure
from dagster_project.privacy.secret import keyed_hash
from dagster_project.publish.publication import publish
from dagster_project.settings import DBT_PROJECT_DIR, Settings
from dagster_project.warehouse_files import tombstones_path, work_database_path

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "crm-warehouse")
REASON = "GDPR art. 17, ticket 4711"
EARLIER_DROP = "2026-11-04"  # refreshed incrementally, before the erasure is asked for
NEW_DROP = "2026-11-05"
LATER_DROP = "2026-11-06"  # refreshed incrementally, after the erasure is complete


@dataclass
class Person:
    customer_key: str
    ids: list[str]
    # Name, e-mail and phone as delivered and as standardised, and the CRM ids.
    values: set[str] = field(default_factory=set)


@dataclass
class Erasure:
    root: Path
    exports: Path
    warehouse: Path
    dagster_home: Path
    started: float
    by_cli: Person
    by_job: Person
    before: dict[str, dict]  # where the values were found before the erasure (the positive control)
    forget_output: str
    free_blocks_after_erasure: int
    export_versions_after_erasure: list[str]  # ".csv", ".parquet": the version folders left by the erasure's refresh
    # Whether a dbt build folder of this instance's first run, and one of a run of no run of it, are left after it.
    dbt_folders_after_erasure: dict[str, bool] = field(default_factory=dict)

    @property
    def work(self) -> Path:
        return work_database_path(self.warehouse)


def env(root: Path, exports: Path, warehouse: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") or k == "CRM_PSEUDONYM_KEY"}
    return environment | {"CRM_EXPORTS_DIR": str(exports), "CRM_WAREHOUSE": str(warehouse),
                          "DAGSTER_HOME": str(root / "dagster")}


def cli(args: list[str], environment: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env=environment, capture_output=True, text=True, timeout=1800, input=stdin)


def merged_people(work: Path, count: int) -> list[Person]:
    """`count` people with several CRM ids merged into one golden record, orders, and a name, e-mail and phone that
    nobody else has (so finding them anywhere means finding them)."""
    with duckdb.connect(str(work), read_only=True) as con:
        rows = con.execute("""
            with members as (select customer_key, list(source_customer_id order by source_customer_id) as ids
                             from restricted.customer_ids group by customer_key having count(*) > 1),
                 unique_values as (
                     select p.customer_key from restricted.customer_pii p
                     where p.customer_name is not null and p.email is not null and p.phone is not null
                       and (select count(*) from restricted.customer_pii o
                            where contains(o.customer_name, p.customer_name) or contains(o.email, p.email)
                               or contains(o.phone, p.phone)) = 1
                       and not exists (select 1 from marts.dim_sales_reps r
                                       where contains(r.rep_name, p.customer_name)))
            select m.customer_key, m.ids from members m join unique_values using (customer_key)
            where (select count(*) from marts.fct_orders o where o.customer_key = m.customer_key) > 0
            order by m.customer_key limit ?""", [count]).fetchall()
        people = []
        for key, ids in rows:
            values = set(ids)
            for row in con.execute("select customer_name, email, phone from restricted.customer_pii "
                                   "where customer_key = ?", [key]).fetchall():
                values |= {v for v in row if v}
            for row in con.execute("select name, email, phone from raw.customers where list_contains(?, customer_id)",
                                   [ids]).fetchall():
                values |= {v.strip() for v in row if v and len(v.strip()) >= 4}
            people.append(Person(key, ids, values))
    assert len(people) == count, "the sample has too few merged customers with values of their own"
    return people


def everywhere(done_root: Path, warehouse: Path, dagster_home: Path, started: float, values: set[str],
               customer_keys: set[str]) -> dict[str, dict]:
    """Where the values (and, in the warehouse folder, the pseudonyms) are found."""
    work = work_database_path(warehouse)
    folder = warehouse.parent
    dbt_written = files_under(DBT_PROJECT_DIR / "target", DBT_PROJECT_DIR / "logs", since=started)
    return {
        "working database (tables)": found_in_database(work, values | customer_keys),
        "working database (file bytes)": found_in_files([work, Path(f"{work}.wal")], values),
        "published warehouse (tables)": found_in_database(warehouse, values | customer_keys),
        "exports, every version kept": found_in_exports(folder, values | customer_keys),
        "other files of the warehouse folder (bytes)": found_in_files(
            [p for p in files_under(folder) if p != work], values | customer_keys),
        "Dagster storage (bytes)": found_in_files(files_under(dagster_home), values),
        "dbt target and logs written meanwhile": found_in_files(dbt_written, values),
    }


@pytest.fixture(scope="module")
def erased(tmp_path_factory) -> Erasure:
    from dagster_project.defs.definitions import build_definitions
    from dagster_project.sample_data import generate

    root = tmp_path_factory.mktemp("erasure")
    started = time.time()
    summary = generate(root / "exports", customers=200, days=400, seed=11, end_date=date(2026, 10, 31))
    exports, warehouse = summary.out_dir, root / "warehouse" / "crm.duckdb"
    environment = env(root, exports, warehouse)
    first = cli(["refresh"], environment)
    assert first.returncode == 0, first.stderr[-3000:]
    by_cli, by_job = merged_people(work_database_path(warehouse), 2)
    # A daily drop with an order of each, refreshed incrementally: the per-customer models recompute both and log
    # their CRM ids among the customers each build recomputed (dbt/macros/customer_incremental.sql).
    (exports / EARLIER_DROP).mkdir()
    (exports / EARLIER_DROP / "orders.csv").write_text(
        "order_id,customer_id,order_date,status,amount,currency\n"
        f"PRE-1,{by_cli.ids[0]},{EARLIER_DROP},paid,30,CNY\nPRE-2,{by_job.ids[0]},{EARLIER_DROP},paid,40,CNY\n")
    daily = cli(["refresh"], environment)
    assert daily.returncode == 0, daily.stderr[-3000:]
    with duckdb.connect(str(work_database_path(warehouse)), read_only=True) as con:
        logged = {key for (key,) in con.execute(
            "select customer_key from intermediate.int_orders_deduplicated__changes").fetchall()}
    assert {by_cli.ids[0], by_job.ids[0]} <= logged

    # Another publication, as the next day's refresh makes: the previous export version is kept for readers.
    with duckdb.connect(str(work_database_path(warehouse))) as con:
        publish(con, warehouse, "second-publication", None)
    assert len(list(warehouse.parent.glob(".parquet-*"))) == 2
    before = everywhere(root, warehouse, root / "dagster", started, by_cli.values | by_job.values,
                        {by_cli.customer_key, by_job.customer_key})

    # One person by a CRM id that is not their golden one, from the command line; the other by customer_key,
    # through the Dagster job.
    forget = cli(["forget", "--customer", by_cli.ids[-1], "--reason", REASON], environment)
    assert forget.returncode == 0, forget.stderr
    settings = Settings(exports_dir=exports, warehouse=warehouse, as_of=None, schedule_timezone="UTC")
    with DagsterInstance.ephemeral() as instance:
        job = build_definitions(settings).resolve_job_def("forget_customer")
        result = job.execute_in_process(instance=instance, run_config={"ops": {"record_erasure_request": {
            "config": {"customer_key": by_job.customer_key, "reason": REASON}}}})
    assert result.success

    # A later drop re-delivers both: the first under one of its ids, the second's e-mail under a new id; and a
    # customer nobody asked to erase.
    drop = exports / NEW_DROP
    drop.mkdir()
    job_email = next(v for v in by_job.values if "@" in v)
    (drop / "customers.csv").write_text(
        "customer_id,name,email,phone,updated_at\n"
        f"{by_cli.ids[0]},{next(v for v in by_cli.values if '@' in v)},,,{NEW_DROP}\n"
        f"C77777777,Someone,{job_email.upper()},,{NEW_DROP}\n"
        f"C88888888,Kept Customer,kept.customer@example.org,,{NEW_DROP}\n")
    (drop / "orders.csv").write_text(
        "order_id,customer_id,order_date,status,amount,currency\n"
        f"RE-1,{by_cli.ids[-1]},2026-11-01,paid,50,CNY\nRE-2,C88888888,2026-11-01,paid,60,CNY\n")
    # A build folder dbt kept of this warehouse's first run (as after a failed build, its dbt.log quoting values), and
    # one of a run of another instance (another warehouse, or a test running beside this one) that is building now.
    with DagsterInstance.from_config(str(root / "dagster")) as instance:
        first_run = instance.get_run_ids()[-1]  # (newest first)
    planted = {"own": DBT_PROJECT_DIR / "target" / f"crm_dbt_models-{first_run[:7]}-{uuid.uuid4().hex[:7]}",
               "another instance's": DBT_PROJECT_DIR / "target" / f"crm_dbt_models-{'0' * 7}-{uuid.uuid4().hex[:7]}"}
    for folder in planted.values():
        folder.mkdir(parents=True)
        (folder / "dbt.log").write_text("a build's log\n")
    last = cli(["refresh"], environment)
    assert last.returncode == 0, last.stderr[-3000:]
    dbt_folders_after_erasure = {name: folder.exists() for name, folder in planted.items()}
    for folder in planted.values():
        shutil.rmtree(folder, ignore_errors=True)
    # No free block of the working database keeps a deleted value (a later refresh frees blocks of its own).
    free_blocks_after_erasure = compaction.free_blocks(work_database_path(warehouse))
    versions_after_erasure = sorted(p.name.split("-")[0] for p in warehouse.parent.glob(".*-*") if p.is_dir())

    # The day after, an incremental refresh: the person erased through Dagster re-delivered under another of
    # their ids, with an order, beside a new order of a kept customer.
    later = exports / LATER_DROP
    later.mkdir()
    (later / "customers.csv").write_text(
        f"customer_id,name,email,phone,updated_at\n{by_job.ids[0]},,{job_email},,{LATER_DROP}\n")
    (later / "orders.csv").write_text(
        "order_id,customer_id,order_date,status,amount,currency\n"
        f"RE-3,{by_job.ids[0]},2026-11-02,paid,70,CNY\nRE-4,C88888888,2026-11-02,paid,80,CNY\n")
    incremental = cli(["refresh"], environment)
    assert incremental.returncode == 0, incremental.stderr[-3000:]
    return Erasure(root, exports, warehouse, root / "dagster", started, by_cli, by_job, before, forget.stdout,
                   free_blocks_after_erasure, versions_after_erasure, dbt_folders_after_erasure)


def test_before_the_erasure_the_scans_find_the_people(erased):
    """The positive control: the same scans find both people in the working database (its bytes too), and their
    pseudonyms in the published file and in both export versions."""
    found = erased.before
    for person in (erased.by_cli, erased.by_job):
        in_tables = set().union(*found["working database (tables)"].values())
        assert person.values | {person.customer_key} <= in_tables
        assert set().union(*found["working database (file bytes)"].values()) & person.values
        assert person.customer_key in set().union(*found["published warehouse (tables)"].values())
        versions = {name.split("/")[0] for name, hits in found["exports, every version kept"].items()
                    if person.customer_key in hits}
        assert len(versions) == 4  # .parquet-* and .csv-*, current and previous


def test_afterwards_the_people_are_found_nowhere(erased):
    after = everywhere(erased.root, erased.warehouse, erased.dagster_home, erased.started,
                       erased.by_cli.values | erased.by_job.values,
                       {erased.by_cli.customer_key, erased.by_job.customer_key})
    assert after == {where: {} for where in after}
    # The erasure's refresh left no free block of the working database (where a deleted value could linger); one
    # export version is left, the new one.
    assert erased.free_blocks_after_erasure == 0
    assert erased.export_versions_after_erasure == [".csv", ".parquet"]
    # The scan of Dagster's storage reads what the refresh logged there.
    assert found_in_bytes(b"".join(p.read_bytes() for p in files_under(erased.dagster_home)),
                          [f"{NEW_DROP}/customers.csv"])


def test_a_working_database_deleted_and_rebuilt_from_the_drops_keeps_the_people_erased(erased, tmp_path):
    """operations.md's rebuild from the export files (delete the working database, refresh): the drops still hold the
    erased people, and the tombstones kept beside the warehouse quarantine them again."""
    root = tmp_path / "copy"
    shutil.copytree(erased.root, root, symlinks=True, ignore=shutil.ignore_patterns("dagster"))
    warehouse, exports = (root / p.relative_to(erased.root) for p in (erased.warehouse, erased.exports))
    kept = tombstones_path(warehouse)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and erased.by_cli.customer_key not in kept.read_text()
    work_database_path(warehouse).unlink()
    refresh(exports, warehouse)
    with duckdb.connect(str(work_database_path(warehouse)), read_only=True) as con:
        restored = con.execute("select count(*) from privacy.erasure_tombstones").fetchone()[0]
    assert restored == len(json.loads(kept.read_text())) > 0
    values = erased.by_cli.values | erased.by_job.values
    keys = {erased.by_cli.customer_key, erased.by_job.customer_key}
    assert found_in_database(work_database_path(warehouse), values | keys) == {}
    assert found_in_database(warehouse, values | keys) == {}


def test_the_erasure_removes_the_build_folders_of_its_own_runs_only(erased):
    """dbt's folders of this warehouse's finished runs go (a failed build's dbt.log may quote the person); a folder of
    a run this Dagster instance does not know is another refresh's, possibly building right now, and stays."""
    assert erased.dbt_folders_after_erasure == {"own": False, "another instance's": True}


def test_every_id_merged_into_the_person_is_erased_and_others_are_kept(erased):
    with duckdb.connect(str(erased.work), read_only=True) as con:
        ids = {i for (i,) in con.execute("select source_customer_id from restricted.customer_ids").fetchall()}
        orders = {o for (o,) in con.execute("select order_id from marts.fct_orders").fetchall()}
        unaccounted = con.execute("select sum(unaccounted_rows) from marts.fct_reconciliation").fetchone()[0]
    assert not ids & set(erased.by_cli.ids + erased.by_job.ids)
    assert "C88888888" in ids and "RE-2" in orders and "RE-1" not in orders
    assert unaccounted == 0


def test_a_drop_re_delivering_an_erased_person_is_quarantined_as_erased_without_values(erased):
    with duckdb.connect(str(erased.warehouse), read_only=True) as con:
        quarantined = con.execute(
            "select source_file, row_number, reason, detail from marts.fct_quarantined_rows "
            "where drop_date = ? order by all", [date.fromisoformat(NEW_DROP)]).fetchall()
    assert quarantined == [(f"{NEW_DROP}/customers.csv", 1, "erased", None),
                           (f"{NEW_DROP}/customers.csv", 2, "erased", None),
                           (f"{NEW_DROP}/orders.csv", 1, "erased", None)]
    with duckdb.connect(str(erased.work), read_only=True) as con:
        assert con.execute("select count(*) from raw._quarantine where reason = 'erased' and raw_record is not null"
                           ).fetchone()[0] == 0


def test_an_incremental_refresh_after_the_erasure_quarantines_a_re_delivery_as_erased(erased):
    """The refresh after the erasure's is incremental (the base models parse only the new load), and the tombstones
    still stop the person at ingestion; the kept customer's new order arrives."""
    with duckdb.connect(str(erased.work), read_only=True) as con:
        assert con.execute("select mode from meta.dbt_state").fetchone()[0] == "incremental"
        orders = {o for (o,) in con.execute("select order_id from marts.fct_orders").fetchall()}
    with duckdb.connect(str(erased.warehouse), read_only=True) as con:
        quarantined = con.execute(
            "select source_file, row_number, reason, detail from marts.fct_quarantined_rows "
            "where drop_date = ? order by all", [date.fromisoformat(LATER_DROP)]).fetchall()
    assert quarantined == [(f"{LATER_DROP}/customers.csv", 1, "erased", None),
                           (f"{LATER_DROP}/orders.csv", 1, "erased", None)]
    assert "RE-4" in orders and "RE-3" not in orders


def test_tombstones_are_keyed_hashes_and_the_audit_holds_no_personal_data(erased):
    keys = keyed_hash(erased.warehouse)
    with duckdb.connect(str(erased.work), read_only=True) as con:
        tombstones = {(kind, t) for kind, t in con.execute(
            "select kind, tombstone from privacy.erasure_tombstones").fetchall()}
        audit = con.execute("select requested_via, reason, status, pending_source_id, pending_customer_key, "
                            "erased_customer_keys, source_ids_erased, rows_erased, completed_at "
                            "from privacy.erasure_requests order by requested_via").fetchall()
    assert all(re.fullmatch(r"[0-9a-f]{64}", t) for _, t in tombstones)
    for customer_id in erased.by_cli.ids + erased.by_job.ids:
        assert ("customer_id", keys.of(f"erasure|customer_id|{customer_id}")) in tombstones
    assert [(via, reason, status, pending_id, pending_key, keys_left) for via, reason, status, pending_id,
            pending_key, keys_left, *_ in audit] == [("cli", REASON, "completed", None, None, None),
                                                      ("dagster", REASON, "completed", None, None, None)]
    assert all(ids >= 2 and rows > 0 and completed is not None for *_, ids, rows, completed in audit)
    assert "2 CRM customer id(s)" in erased.forget_output and erased.by_cli.ids[-1] not in erased.forget_output


def test_a_request_is_refused_when_it_cannot_be_kept_without_personal_data(tmp_path):
    warehouse = tmp_path / "crm.duckdb"
    environment = env(tmp_path, tmp_path, warehouse)
    missing = cli(["forget", "--customer", "C1"], environment)
    assert missing.returncode == 1 and "nothing to erase yet" in missing.stderr
    duckdb.connect(str(work_database_path(warehouse))).close()
    for reason in ("customer C1 asked", "write to ann@example.com", "call +86 138 0013 8000"):
        refused = cli(["forget", "--customer", "C1", "--reason", reason], environment)
        assert refused.returncode == 1 and "no personal data" in refused.stderr, reason
        assert len(refused.stderr.strip().splitlines()) == 1
    unknown_key = cli(["forget", "--customer-key", "0123456789abcdef"], environment)
    assert unknown_key.returncode == 1 and "customer_key" in unknown_key.stderr
    from_stdin = cli(["forget", "--customer", "-", "--reason", REASON], environment, stdin="C1\n")
    assert from_stdin.returncode == 0 and "not in the warehouse yet" in from_stdin.stdout
    with duckdb.connect(str(work_database_path(warehouse)), read_only=True) as con:
        assert erasure.pending(con)[0][1:] == ("C1", None)


def test_tombstones_made_with_another_secret_stop_the_refresh(tmp_path, monkeypatch):
    warehouse = tmp_path / "crm.duckdb"
    with duckdb.connect(str(work_database_path(warehouse))) as con:
        erasure.request(con, source_id="C1")
        erasure.apply_pending(con, lambda: keyed_hash(warehouse), "run")
        monkeypatch.setenv("CRM_PSEUDONYM_KEY", "another-secret-of-at-least-32-characters")
        with pytest.raises(Exception, match="another pseudonym secret"):
            from dagster_project.privacy import tombstones

            tombstones.screen(con, lambda: keyed_hash(warehouse))


def test_the_tombstone_sql_is_the_hmac_of_the_normalised_identifier(tmp_path):
    from dagster_project.privacy import tombstones

    keys = keyed_hash(tmp_path / "crm.duckdb", {"CRM_PSEUDONYM_KEY": "k" * 40})
    with duckdb.connect() as con:
        rows = con.execute(
            f"select {tombstones.tombstone_sql('customer_id', 'v')}, {tombstones.tombstone_sql('email', 'v')} "
            "from (values ('17850.0'), ('Ann@Example.COM '), (''), (null), (' C1 ')) as t(v)", keys.params).fetchall()
    assert rows[0][0] == keys.of("erasure|customer_id|17850") and rows[4][0] == keys.of("erasure|customer_id|C1")
    assert rows[1][1] == keys.of("erasure|email|ann@example.com") and rows[0][1] is None
    assert rows[2] == (None, None) and rows[3] == (None, None)
