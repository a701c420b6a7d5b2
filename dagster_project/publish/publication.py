"""Publishing: the BI-facing warehouse and its Parquet exports are replaced as a whole, never changed in place.

The refresh builds everything in the working database. Publishing copies the BI-facing schemas into a new DuckDB file
beside the published one and renames it over the published file: on POSIX a rename is atomic, so a reader opens
either yesterday's complete file or today's, never a mix, and a reader that already has the old file open keeps
reading it undisturbed (nobody writes the published file, so readers never meet DuckDB's writer lock). Parquet
and CSV exports are written into a new version folder and switched in by replacing a symlink. A refresh
killed at any point leaves the published file as it was; the leftovers (a half-written `.publishing` file, an
unfinished Parquet version) are removed by the next publish.

Only what changed is copied: the new file starts as a file copy of the published one, in which the tables whose
content changed are replaced (dagster_project.publish.changes compares checksums), and the new export versions
hard-link the files of unchanged tables. Of the large facts (`changes.PARTITIONED_BY`), only the months whose checksum
changed are replaced in the copy: a daily refresh adds to the current month and corrects a few older ones. The new
file still replaces the old one as a whole, so readers see the same two states as before. When the rows to write
outnumber the rows kept (a full rebuild, a change reaching most months), the file is written anew instead: a copy
would only add the replaced rows' free blocks.

The new file and the two export versions are written side by side (DuckDB runs each on its own connection), and only
once all three are complete are they switched in, one after the other: a failure in any of them switches in none.

The published file is written in the storage format of an older DuckDB release (`storage_version`, default v1.0.0):
BI tools bundle their own DuckDB, often 1.x, which cannot open a file in DuckDB 2.0's own format.

Everything published gets the published mode (`CRM_PUBLISHED_MODE`, default 0644; folders the matching search bits)
before it is renamed into place, whatever the umask (the refresh's is owner-only). Previous export versions beyond
`keep_previous` are removed; `keep_previous=0` after an erasure, so no older version still holds the person.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from dagster_project.warehouse_files import csv_dir, parquet_dir, publishing_path
from dagster_project.publish import changes, exports
from dagster_project.files import sync_path
from dagster_project.privacy.modes import dir_mode, make_dirs
from dagster_project.settings import (
    CURRENCY_LABELS, DEFAULT_KEEP_PREVIOUS_EXPORTS, DEFAULT_PUBLISHED_MODE, DEFAULT_REPORTING_CURRENCY,
    DEFAULT_STORAGE_VERSION,
)
from dagster_project.sql import identifier, literal, qualified, table_exists

# What BI tools may read. Raw, staging, intermediate and restricted (personal data) stay in the working database.
PUBLISHED_SCHEMAS = ("marts", "analytics", "quality")
# In the working database: the currencies its marts were last built with (written by the dbt asset after each
# successful `dbt build`), so what is published and reported names the currency the amounts are really in.
BUILD_SETTINGS = ("meta", "build_settings")


class PublishError(Exception):
    """Publishing failed; the published warehouse is unchanged."""


@dataclass
class Publication:
    warehouse: Path
    parquet_dir: Path
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # The oldest DuckDB release that opens the published file ("v1.0.0").
    storage_version: str = ""
    # The tables whose content this publication changed ("marts.fct_orders"); the others were kept as they were.
    changed: list[str] = field(default_factory=list)
    # The changed tables of which only some months were replaced: table -> (months replaced, months it has).
    months_replaced: dict[str, tuple[int, int]] = field(default_factory=dict)


def published_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(schema, table) of the working database's BI-facing tables, in a stable order."""
    placeholders = ", ".join("?" for _ in PUBLISHED_SCHEMAS)
    return con.execute(
        f"select schema_name, table_name from duckdb_tables() "
        f"where database_name = current_database() and schema_name in ({placeholders}) "
        f"order by schema_name, table_name",
        list(PUBLISHED_SCHEMAS),
    ).fetchall()


def record_build_settings(con: duckdb.DuckDBPyConnection, reporting_currency: str, default_currency: str,
                          currency_label: str) -> None:
    """Record in the working database which currencies its marts were just built with."""
    schema, table = BUILD_SETTINGS
    con.execute(f"create schema if not exists {identifier(schema)}")
    con.execute(
        f"create or replace table {qualified(schema, table)} as select ?::varchar as reporting_currency, "
        "?::varchar as default_currency, ?::varchar as currency_label",
        [reporting_currency, default_currency, currency_label],
    )


def built_currency(con: duckdb.DuckDBPyConnection) -> tuple[str, str] | None:
    """(reporting currency, label) the working database's marts were built with; None if not recorded."""
    schema, table = BUILD_SETTINGS
    if not table_exists(con, schema, table):
        return None
    row = con.execute(f"select reporting_currency, currency_label from {qualified(schema, table)}").fetchone()
    return (row[0], row[1]) if row and row[0] else None


def publish(con: duckdb.DuckDBPyConnection, warehouse: Path, run_id: str,
            as_of: date | None, reporting_currency: str = DEFAULT_REPORTING_CURRENCY,
            currency_label: str | None = None, storage_version: str = DEFAULT_STORAGE_VERSION,
            published_mode: int = DEFAULT_PUBLISHED_MODE, keep_previous: int = DEFAULT_KEEP_PREVIOUS_EXPORTS,
            reuse: bool = True) -> Publication:
    """Copy the BI-facing tables of `con`'s database into a new file that replaces `warehouse`, and export them as
    Parquet and CSV into new versions of the folders beside it (dagster_project/warehouse_files.py): all three are
    written side by side and switched in only when all are complete. The file is
    written in the storage format of DuckDB release `storage_version` ("v1.0.0", or "latest": the running DuckDB's own), so clients
    of that release and newer open it. `meta.publication` records the run, the as-of date, the reporting currency with
    its label (default: the currency's usual symbol) and the oldest DuckDB release that reads the file;
    `meta.published_tables` each table's rows, content checksum and the run that last changed it.

    With `reuse`, only the tables whose content changed are copied: the new file starts as a copy of the published
    one (a file copy, no re-encoding) and the export versions hard-link the unchanged tables' files of the previous
    version (dagster_project.publish.changes). Without it everything is written anew; so is the file when the
    published one cannot serve as a base (none, another storage format, mostly free space) or most rows changed.
    Every file gets `published_mode`; `keep_previous` older export versions are kept beside the new one.
    Raises PublishError on failure: the published state is unchanged, unless the error says what was switched in."""
    currency = (reporting_currency, currency_label or CURRENCY_LABELS.get(reporting_currency, reporting_currency))
    con.execute("set enable_progress_bar = false")
    started = time.perf_counter()
    tables = published_tables(con)
    if not tables:
        raise PublishError("the working database has no marts or analytics tables to publish; run the full refresh")
    try:
        current, parts = changes.checksums(con, tables)
        previous = changes.previous_publication(warehouse) if reuse else None
        if previous is not None and previous.storage_version != storage_version:
            previous = None
        before = previous.tables if previous is not None else {}
        changed = [t for t in tables if before.get(t, ("",))[0] != current[t]]
        changed_by = {t: run_id if t in changed else before[t][1] for t in tables}
        months = _months_to_replace(changed, parts, previous)
        from_published = previous is not None and _mostly_kept(con, tables, changed, months, parts)
        if not from_published:
            months = {}
        # Before the writers start, so that the folder gets the published mode whichever of them would create it.
        make_dirs(warehouse.parent, dir_mode(published_mode))
        targets = [_Export(folder, exports.new_version(folder, run_id), write_one) for folder, write_one in
                   ((parquet_dir(warehouse), exports.parquet_file), (csv_dir(warehouse), exports.csv_file))]
        rows, readable_from, replaced = _build_side_by_side(
            con, warehouse, targets,
            (tables, changed, months, from_published, run_id, as_of, currency, storage_version, current, parts,
             changed_by, published_mode),
            (tables, current, reuse, published_mode))
    except (OSError, duckdb.Error) as error:
        raise PublishError(f"publishing {warehouse} failed, the published warehouse is unchanged: "
                           f"{' '.join(str(error).split())}") from error
    _switch_in(warehouse, targets, replaced, published_mode, keep_previous)
    return Publication(warehouse, parquet_dir(warehouse), rows, time.perf_counter() - started, readable_from,
                       changed=[f"{s}.{t}" for s, t in changed],
                       months_replaced={f"{s}.{t}": (len(replaced), len(parts[(s, t)]))
                                        for (s, t), replaced in months.items()})


@dataclass(frozen=True)
class _Export:
    folder: Path  # the symlink readers open ("parquet")
    version: Path  # the new version folder it will point at
    write_one: Callable[[duckdb.DuckDBPyConnection, str, str, Path], None]


def _build_side_by_side(con: duckdb.DuckDBPyConnection, warehouse: Path, targets: list[_Export],
                        database_args: tuple, export_args: tuple) -> tuple[dict[str, int], str, list[Path | None]]:
    """The new file (`_build_database`) and the export versions (`exports.build_version`), each written on a
    connection of its own, side by side: (rows, readable_from) of the file, and the version each export folder
    points at now.

    A writer's error stops the others and is raised once every writer has stopped; then, and on an interruption,
    nothing is switched in and everything written is removed. The database writer's query is interrupted; the export
    writers stop before their next file instead: a `COPY ... TO` Parquet interrupted midway can wait forever for
    tasks of DuckDB's own that never finish (seen under load, about one interruption in twenty)."""
    cursors = [con.cursor() for _ in range(1 + len(targets))]
    stop = threading.Event()

    def stop_writers() -> None:
        stop.set()
        _interrupt(cursors[0])

    futures = []
    try:
        with ThreadPoolExecutor(max_workers=len(cursors), thread_name_prefix="publish") as pool:
            futures.append(pool.submit(_on_own_connection, cursors[0], _build_database, warehouse, *database_args))
            futures += [pool.submit(_on_own_connection, cursor, exports.build_version, export.folder, export.version,
                                    _unless_stopped(export.write_one, stop), *export_args)
                        for cursor, export in zip(cursors[1:], targets)]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:  # Ctrl-C or the run terminated while waiting
                stop_writers()
                raise
            failed = next((future.exception() for future in done if future.exception() is not None), None)
            if failed is not None:  # the others' work would be thrown away
                stop_writers()
        if failed is not None:
            raise failed
    except BaseException:
        # Every writer has stopped (the pool waited for them): nothing of theirs is switched in or read by anyone.
        publishing_path(warehouse).unlink(missing_ok=True)
        for export in targets:
            if export.version.resolve() != export.folder.resolve():  # never what readers are pointed at
                shutil.rmtree(export.version, ignore_errors=True)
                changes.manifest_path(export.version).unlink(missing_ok=True)
        raise
    rows, readable_from = futures[0].result()
    return rows, readable_from, [future.result() for future in futures[1:]]


class _Stopped(Exception):
    """An export writer stopped before its next file: another writer failed or the publish was interrupted."""


def _unless_stopped(write_one: Callable[[duckdb.DuckDBPyConnection, str, str, Path], None], stop: threading.Event):
    def write_unless_stopped(con: duckdb.DuckDBPyConnection, schema: str, table: str, version: Path) -> None:
        if stop.is_set():
            raise _Stopped(f"stopped before {schema}.{table}")
        write_one(con, schema, table, version)
    return write_unless_stopped


def _interrupt(cursor: duckdb.DuckDBPyConnection) -> None:
    try:
        cursor.interrupt()
    except duckdb.Error:  # already closed: its writer is done
        pass


def _switch_in(warehouse: Path, targets: list[_Export], replaced: list[Path | None], published_mode: int,
               keep_previous: int) -> None:
    """Switch in the new file, then each export version, each atomically; then remove the export versions beyond
    `keep_previous`. A failure after the file was switched says what was."""
    switched: list[str] = []
    try:
        _switch_database(warehouse, published_mode, lambda: switched.append(warehouse.name))
        for export in targets:
            exports.point(export.folder, export.version)
            switched.append(export.folder.name)
        sync_path(warehouse.parent)
        for export, previous in zip(targets, replaced):
            exports.remove_old_versions(export.folder, export.version, previous, keep_previous)
    except OSError as error:
        reason = " ".join(str(error).split())
        if not switched:
            raise PublishError(f"publishing {warehouse} failed, the published warehouse is unchanged: {reason}") \
                from error
        if len(switched) < 1 + len(targets):
            raise PublishError(f"publishing {warehouse} switched in only {', '.join(switched)} of this publication; "
                               f"the rest is the previous one's until the next refresh publishes again: {reason}") \
                from error
        raise PublishError(f"publishing {warehouse} switched everything in, but removing older export versions "
                           f"failed (the next publication removes them): {reason}") from error


def _on_own_connection(own: duckdb.DuckDBPyConnection, write, *args):
    """`write(own, *args)`, then close `own`: a connection of its own (`con.cursor()`, made by the calling thread) to
    the working database, as a DuckDB connection serves one thread at a time."""
    with own:
        own.execute("set enable_progress_bar = false")
        return write(own, *args)


def _months_to_replace(changed: list[tuple[str, str]], parts: dict[tuple[str, str], dict[changes.Month, changes.Part]],
                       previous: changes.Previous | None) -> dict[tuple[str, str], list[changes.Month]]:
    """The changed partitioned tables that the published file recorded by month, each with the months to replace in
    it, when those hold at most half of its rows (more is cheaper written whole). A change of columns changes every
    month's checksum."""
    months = {}
    for table in changed:
        if previous is None or table not in parts or table not in previous.partitions:
            continue
        replaced = changes.changed_months(parts[table], previous.partitions[table])
        total = _rows_in(parts[table])
        if total and 2 * _rows_in(parts[table], replaced) <= total:
            months[table] = replaced
    return months


def _rows_in(by_month: dict[changes.Month, changes.Part], months: list[changes.Month] | None = None) -> int:
    """The working table's rows in `months` (default: all of them); a month gone from it has none."""
    return sum(part.rows for month, part in by_month.items() if months is None or month in months)


def _mostly_kept(con: duckdb.DuckDBPyConnection, tables: list[tuple[str, str]], changed: list[tuple[str, str]],
                 months: dict[tuple[str, str], list[changes.Month]],
                 parts: dict[tuple[str, str], dict[changes.Month, changes.Part]]) -> bool:
    """Whether the rows kept as they were are at least as many as the rows to write (the changed tables, or their
    changed months): only then is a copy of the published file worth starting from."""
    counts = {table: con.execute(f"select count(*) from {qualified(*table)}").fetchone()[0] for table in tables}
    changed_rows = sum(_rows_in(parts[table], months[table]) if table in months else counts[table]
                       for table in changed)
    return sum(counts.values()) - changed_rows >= changed_rows


def _build_database(con: duckdb.DuckDBPyConnection, warehouse: Path, tables: list[tuple[str, str]],
                    changed: list[tuple[str, str]], months: dict[tuple[str, str], list[changes.Month]],
                    from_published: bool, run_id: str, as_of: date | None, currency: tuple[str, str],
                    storage_version: str, current: dict, parts: dict, changed_by: dict,
                    published_mode: int) -> tuple[dict[str, int], str]:
    """Write the new file beside `warehouse` (`_switch_database` moves it in): rows per table, and the oldest DuckDB
    release that opens the file. `from_published`: start from a copy of the published file and write only the
    `changed` tables (and drop the ones no longer published); of a table in `months`, only those months."""
    building = publishing_path(warehouse)
    for leftover in (building, Path(f"{building}.wal")):
        leftover.unlink(missing_ok=True)
    if from_published:
        # Nobody writes the published file (it is only ever replaced), so this copy is of one whole publication.
        shutil.copyfile(warehouse, building)
        # A copy keeps the storage format it was created with; everything written into it keeps to it.
        con.execute(f"attach {literal(str(building))} as publishing")
    else:
        # The format is fixed when the file is created; everything written into it afterwards keeps to it.
        con.execute(f"attach {literal(str(building))} as publishing (storage_version {literal(storage_version)})")
    rows: dict[str, int] = {}
    try:
        existing = set(con.execute("select schema_name, table_name from duckdb_tables() "
                                   "where database_name = 'publishing' and schema_name <> 'meta'").fetchall())
        for schema, table in existing - set(tables):
            con.execute(f"drop table publishing.{qualified(schema, table)}")
        for schema in {schema for schema, _ in existing} - {schema for schema, _ in tables}:
            con.execute(f"drop schema publishing.{identifier(schema)}")
        for schema in sorted({schema for schema, _ in tables}):
            con.execute(f"create schema if not exists publishing.{identifier(schema)}")
        for schema, table in tables:
            if (schema, table) in months and (schema, table) in existing:
                _replace_months(con, schema, table, months[(schema, table)])
            elif (schema, table) in changed or (schema, table) not in existing:
                # The working database's row order is deterministic, and copying keeps it: two refreshes of the
                # same drops publish identical tables.
                con.execute(f"create or replace table publishing.{qualified(schema, table)} as "
                            f"select * from {qualified(schema, table)}")
            rows[f"{schema}.{table}"] = con.execute(
                f"select count(*) from publishing.{qualified(schema, table)}").fetchone()[0]
        readable_from = _readable_from(con, storage_version)
        con.execute("create schema if not exists publishing.meta")
        con.execute(
            "create or replace table publishing.meta.publication as select ?::varchar as run_id, "
            "?::timestamptz as published_at, ?::date as as_of_date, ?::integer as tables, ?::bigint as total_rows, "
            "?::varchar as reporting_currency, ?::varchar as currency_label, ?::varchar as storage_version",
            [run_id, datetime.now(timezone.utc), as_of, len(tables), sum(rows.values()), *currency, readable_from],
        )
        changes.record(con, "publishing", current, changed_by, rows, parts)
    finally:
        con.execute("detach publishing")
    return rows, readable_from


def _replace_months(con: duckdb.DuckDBPyConnection, schema: str, table: str, months: list[changes.Month]) -> None:
    """Replace the rows of `months` in the copied table by the working table's (the other months' rows are the
    published ones, which their checksums say are the same). The replaced months' rows come after the kept ones:
    the same rows as a whole copy, in another physical order."""
    condition = changes.months_condition(changes.PARTITIONED_BY[(schema, table)], months)
    con.execute(f"delete from publishing.{qualified(schema, table)} where {condition}")
    con.execute(f"insert into publishing.{qualified(schema, table)} "
                f"select * from {qualified(schema, table)} where {condition}")


def _switch_database(warehouse: Path, published_mode: int, replaced: Callable[[], None]) -> None:
    """Rename the new file over `warehouse`; `replaced()` is called once it is."""
    building = publishing_path(warehouse)
    os.chmod(building, published_mode)  # created owner-only (the umask); readable as it is renamed into place
    sync_path(building)
    # A write-ahead log beside the published file would belong to the old file; DuckDB would replay it into the new one.
    Path(f"{warehouse}.wal").unlink(missing_ok=True)
    os.replace(building, warehouse)
    replaced()


def _readable_from(con: duckdb.DuckDBPyConnection, storage_version: str) -> str:
    """The oldest DuckDB release that opens the file being published, as DuckDB tags it ("v1.0.0+" -> "v1.0.0"):
    several releases share a format, and "latest" names none."""
    tags = con.execute("select tags from duckdb_databases() where database_name = 'publishing'").fetchone()[0] or {}
    return str(tags.get("storage_version") or storage_version).rstrip("+")
