"""The Parquet and CSV exports beside the published warehouse: one file per table in a version folder, which a
symlink (`parquet`, `csv`) points at. A new version is written beside the current one and switched in by replacing
the symlink (dagster_project.publish.publication decides when); older versions beyond the setting are removed."""

from __future__ import annotations

import glob
import os
import shutil
import time
import uuid
from pathlib import Path

import duckdb

from dagster_project import csv_safe
from dagster_project.files import sync_path
from dagster_project.privacy.modes import publish_tree
from dagster_project.publish import changes
from dagster_project.sql import literal, qualified

# Rows a spreadsheet sheet holds (Excel); larger tables are exported as Parquet only.
SPREADSHEET_MAX_ROWS = 1_048_575


def new_version(folder: Path, run_id: str) -> Path:
    """A version folder name no other publication has (two may share a run id and a second), sorting by time."""
    return folder.with_name(f".{folder.name}-{time.strftime('%Y%m%dT%H%M%S')}-{run_id[:8]}-{uuid.uuid4().hex[:8]}")


def build_version(con: duckdb.DuckDBPyConnection, folder: Path, version: Path, write_one,
                  tables: list[tuple[str, str]], current: dict, reuse: bool, published_mode: int) -> Path | None:
    """One file per table in the new `version` folder (`point` points `folder` at it later); returns the version
    `folder` points at now. With `reuse`, a table whose file in that version holds the same content is hard-linked
    from there. Every file gets `published_mode`."""
    version.mkdir(parents=True)
    previous = folder.resolve() if folder.is_symlink() else None
    reusable = changes.reusable_files(previous) if reuse else {}
    for schema, table in tables:
        stem = f"{schema}.{table}"
        if reusable.get(stem) == current[(schema, table)]:
            kept = [changes.link_or_none(old, version / old.name) for old in previous.glob(f"{glob.escape(stem)}.*")]
            if all(kept):  # no file (a table too large for a sheet) is also what writing it would give
                continue
            for partial in version.glob(f"{glob.escape(stem)}.*"):
                partial.unlink()
        write_one(con, schema, table, version)
    changes.write_manifest(version, current)
    publish_tree(version, published_mode)
    sync_path(version)
    return previous


def point(folder: Path, version: Path) -> None:
    """Point the symlink `folder` at `version` atomically."""
    if folder.exists() and not folder.is_symlink():
        shutil.rmtree(folder)
    switch = folder.with_name(f".{folder.name}.switch")
    switch.unlink(missing_ok=True)
    switch.symlink_to(version.name)
    os.replace(switch, folder)


def remove_old_versions(folder: Path, current: Path, previous: Path | None, keep_previous: int) -> list[Path]:
    """Remove the export versions of `folder` but `current` and the `keep_previous` newest before it (`previous`, the
    one just replaced, first: a reader in the middle of a scan is not pulled out from under); the rest are older
    versions or the remains of a killed publish. Returns what was removed."""
    others = [old for old in folder.parent.glob(f".{folder.name}-*") if old.is_dir() and old.resolve() != current.resolve()]
    # Version names start with their time, so the newest sort last; the one just replaced goes first of all.
    others.sort(key=lambda old: (previous is not None and old.resolve() == previous, old.name), reverse=True)
    removed = others[keep_previous:]
    for old in removed:
        shutil.rmtree(old, ignore_errors=True)
    changes.forget_manifests(folder.parent, folder.name)
    return removed


def parquet_file(con: duckdb.DuckDBPyConnection, schema: str, table: str, version: Path) -> None:
    """zstd at level 1 rather than DuckDB's default 3: on L's fact tables 15-25% less time, files no larger
    (docs/benchmarks.md); readers decode any level alike."""
    target = version / f"{schema}.{table}.parquet"
    con.execute(f"copy (select * from {qualified(schema, table)}) to {literal(str(target))} "
                "(format parquet, compression zstd, compression_level 1)")


def csv_file(con: duckdb.DuckDBPyConnection, schema: str, table: str, version: Path) -> None:
    """Spreadsheet users get CSV (formula-neutralised), for the tables a spreadsheet can hold."""
    relation = con.table(f"{qualified(schema, table)}")
    if relation.aggregate("count(*)").fetchall()[0][0] <= SPREADSHEET_MAX_ROWS:
        csv_safe.write_csv(relation, version / f"{schema}.{table}.csv")
