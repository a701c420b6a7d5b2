"""Which published tables changed: a checksum of each table's content, the checksums the published file and each
export folder version were written with, and what of the last publication a new one can reuse.

A table's checksum is its column names and types, its row count and the sum of its rows' hashes: it does not depend
on row order, and any changed, added or removed row changes it (floating-point values count to 7 significant digits:
their last bits differ from run to run where DuckDB sums in parallel). The published file records the checksums of its
tables in `meta.published_tables` (with the run that last changed each), and every Parquet / CSV version folder in
a hidden file beside it (`manifest_path`), so a publication reuses a file of the previous one only when that very file holds the same
content (a publish killed between writing the database and the exports leaves them of different runs).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.sql import identifier, literal, qualified

PUBLISHED_TABLES = ("meta", "published_tables")
# A reused published file is rewritten from scratch once more than this share of its blocks is free space left by
# replaced tables (DuckDB reuses free blocks but never shrinks a file).
MAX_FREE_SHARE = 0.5

Table = tuple[str, str]
# Compared to 7 significant digits (as 32-bit floats): a sum of doubles computed in parallel differs from run to run
# in its last bits, which is no change of content worth republishing a table for.
APPROXIMATE_TYPES = {"DOUBLE", "FLOAT", "REAL"}


def checksums(con: duckdb.DuckDBPyConnection, tables: list[Table], database: str | None = None) -> dict[Table, str]:
    """schema.table -> checksum of its content, in `database` (default: the connection's own)."""
    catalog = database or con.execute("select current_database()").fetchone()[0]
    found = {}
    for schema, table in tables:
        columns = con.execute(
            "select column_name, data_type from duckdb_columns() where database_name = ? and schema_name = ? "
            "and table_name = ? order by column_index", [catalog, schema, table]).fetchall()
        values = ", ".join(f"cast({identifier(name)} as float)" if kind in APPROXIMATE_TYPES else identifier(name)
                           for name, kind in columns)
        rows, total = con.execute(
            f"select count(*), coalesce(sum(hash({values})::hugeint), 0) "
            f"from {identifier(catalog)}.{qualified(schema, table)}").fetchone()
        found[(schema, table)] = hashlib.sha256(json.dumps([columns, rows, str(total)]).encode()).hexdigest()[:32]
    return found


@dataclass(frozen=True)
class Previous:
    """What the published file holds: each table's checksum and the run that last changed it."""

    tables: dict[Table, tuple[str, str]]  # (schema, table) -> (checksum, run that wrote that content)
    storage_version: str


def previous_publication(warehouse: Path) -> Previous | None:
    """The checksums recorded in the published file, when it can be reused as the base of the next one: it exists,
    records them, and is not mostly free space. None otherwise (the next one is written from scratch)."""
    if not warehouse.is_file():
        return None
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            recorded = con.execute(
                "select count(*) from duckdb_tables() where database_name = current_database() and schema_name = ? "
                "and table_name = ?", list(PUBLISHED_TABLES)).fetchone()[0]
            if not recorded:
                return None
            rows = con.execute(f"select schema_name, table_name, content_checksum, changed_by_run "
                               f"from {qualified(*PUBLISHED_TABLES)}").fetchall()
            storage = con.execute("select storage_version from meta.publication").fetchone()[0]
            total, free = con.execute("select total_blocks, free_blocks from pragma_database_size() "
                                      "where database_name = current_database()").fetchone()
    except duckdb.Error:
        return None
    if total and free / total > MAX_FREE_SHARE:
        return None
    return Previous({(s, t): (c, r) for s, t, c, r in rows}, storage)


def record(con: duckdb.DuckDBPyConnection, database: str, current: dict[Table, str], changed_by: dict[Table, str],
           rows: dict[str, int]) -> None:
    """Write meta.published_tables into the attached `database`."""
    table = f"{identifier(database)}.{qualified(*PUBLISHED_TABLES)}"
    con.execute(f"drop table if exists {table}")
    con.execute(f"create table {table} (schema_name varchar, table_name varchar, row_count bigint, "
                "content_checksum varchar, changed_by_run varchar)")
    con.executemany(f"insert into {table} values (?, ?, ?, ?, ?)",
                    [[s, t, rows[f"{s}.{t}"], checksum, changed_by[(s, t)]]
                     for (s, t), checksum in sorted(current.items())])


def manifest_path(version: Path) -> Path:
    """The checksums of an export version folder (".parquet-<when>-<run>"): a hidden file beside it, not in it, so the
    folder holds only the tables' files."""
    return version.parent / f".checksums-{version.name.lstrip('.')}.json"


def write_manifest(version: Path, current: dict[Table, str]) -> None:
    """Owner-only (dagster_project.warehouse_files): readers have no use for it."""
    text = json.dumps({f"{s}.{t}": c for (s, t), c in sorted(current.items())}, indent=1)
    path = manifest_path(version)
    path.unlink(missing_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as manifest:
        manifest.write(text)


def reusable_files(previous_version: Path | None) -> dict[str, str]:
    """file stem ("marts.fct_orders") -> checksum of the table its files in the previous export version hold."""
    if previous_version is None or not manifest_path(previous_version).is_file():
        return {}
    try:
        return json.loads(manifest_path(previous_version).read_text())
    except (OSError, ValueError):
        return {}


def forget_manifests(parent: Path, folder_name: str) -> None:
    """Remove the checksums of export versions that are gone."""
    for manifest in parent.glob(f".checksums-{folder_name}-*.json"):
        if not (parent / f".{manifest.name.removeprefix('.checksums-').removesuffix('.json')}").is_dir():
            manifest.unlink(missing_ok=True)


def link_or_none(source: Path, target: Path) -> bool:
    """Hard-link a file of the previous version into the new one (same content, no copy); False if it cannot be."""
    try:
        os.link(source, target)
    except OSError:
        return False
    return True


def attach_copy(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> None:
    con.execute(f"attach {literal(str(path))} as {identifier(alias)}")
