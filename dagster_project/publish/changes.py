"""Which published tables changed: a checksum of each table's content, the checksums the published file and each
export folder version were written with, and what of the last publication a new one can reuse.

A table's checksum is its column names and types, its row count and the sum of its rows' hashes: it does not depend
on row order, and any changed, added or removed row changes it (floating-point values count to 7 significant digits:
their last bits differ from run to run where DuckDB sums in parallel). The published file records the checksums of its
tables in `meta.published_tables` (with the run that last changed each), and every Parquet / CSV version folder in
a hidden file beside it (`manifest_path`), so a publication reuses a file of the previous one only when that very file holds the same
content (a publish killed between writing the database and the exports leaves them of different runs).

The large facts that grow by date (`PARTITIONED_BY`) also get a checksum per month of their date, recorded in
`meta.published_partitions`: a daily refresh appends to the current month and corrects a few older ones, so only the
months whose checksum changed need replacing in a copy of the published file (`changed_months`). A table's checksum
is the same whether it was computed per month or at once.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.sql import identifier, literal, qualified, table_exists

PUBLISHED_TABLES = ("meta", "published_tables")
PUBLISHED_PARTITIONS = ("meta", "published_partitions")
# The facts that grow by date, by the date column whose month partitions them; the other tables are small next to
# them or change as a whole every day (every customer's scores move with the as-of date).
PARTITIONED_BY = {("marts", "fct_orders"): "order_date", ("marts", "fct_order_items"): "order_date",
                  ("marts", "fct_interactions"): "occurred_date"}
# A reused published file is rewritten from scratch once more than this share of its blocks is free space left by
# replaced tables (DuckDB reuses free blocks but never shrinks a file).
MAX_FREE_SHARE = 0.5

Table = tuple[str, str]
Month = date | None  # the first day of a month of the partitioning date; None for rows without a date
# Compared to 7 significant digits (as 32-bit floats): a sum of doubles computed in parallel differs from run to run
# in its last bits, which is no change of content worth republishing a table for.
APPROXIMATE_TYPES = {"DOUBLE", "FLOAT", "REAL"}


@dataclass(frozen=True)
class Part:
    """One month of a partitioned table: its rows and the checksum of their content."""

    rows: int
    checksum: str


def checksums(con: duckdb.DuckDBPyConnection,
              tables: list[Table]) -> tuple[dict[Table, str], dict[Table, dict[Month, Part]]]:
    """schema.table -> checksum of its content, in the connection's database; and, for the tables `PARTITIONED_BY`
    names, month -> its rows and checksum, computed in the same pass."""
    catalog = con.execute("select current_database()").fetchone()[0]
    found, parts = {}, {}
    for schema, table in tables:
        columns = con.execute(
            "select column_name, data_type from duckdb_columns() where database_name = ? and schema_name = ? "
            "and table_name = ? order by column_index", [catalog, schema, table]).fetchall()
        values = ", ".join(f"cast({identifier(name)} as float)" if kind in APPROXIMATE_TYPES else identifier(name)
                           for name, kind in columns)
        content = f"count(*), coalesce(sum(hash({values})::hugeint), 0) from {qualified(schema, table)}"
        column = PARTITIONED_BY.get((schema, table))
        if column not in {name for name, _ in columns}:
            rows, total = con.execute(f"select {content}").fetchone()
        else:
            by_month = con.execute(f"select {_month(column)} as month, {content} group by month").fetchall()
            parts[(schema, table)] = {month: Part(n, _digest(columns, n, subtotal)) for month, n, subtotal in by_month}
            rows, total = sum(n for _, n, _ in by_month), sum(subtotal for _, _, subtotal in by_month)
        found[(schema, table)] = _digest(columns, rows, total)
    return found, parts


def _digest(columns: list[tuple[str, str]], rows: int, total: int) -> str:
    return hashlib.sha256(json.dumps([columns, rows, str(total)]).encode()).hexdigest()[:32]


def _month(column: str) -> str:
    return f"cast(date_trunc('month', {identifier(column)}) as date)"


def months_condition(column: str, months: list[Month]) -> str:
    """SQL true for the rows of `months` (None: the rows without a date)."""
    dated = ", ".join(literal(month.isoformat()) for month in months if month is not None)
    conditions = [f"{_month(column)} in (select cast(unnest([{dated}]) as date))"] if dated else []
    if None in months:
        conditions.append(f"{identifier(column)} is null")
    return " or ".join(conditions) or "false"


def changed_months(now: dict[Month, Part], before: dict[Month, str]) -> list[Month]:
    """The months whose content differs between the working table (`now`) and the published one (`before`): changed,
    new or gone."""
    months = [month for month in now.keys() | before.keys()
              if (now[month].checksum if month in now else None) != before.get(month)]
    return sorted(months, key=_month_order)


def _month_order(month: Month) -> tuple[bool, date]:
    return month is None, month or date.min


@dataclass(frozen=True)
class Previous:
    """What the published file holds: each table's checksum and the run that last changed it, and the large facts'
    checksums by month."""

    tables: dict[Table, tuple[str, str]]  # (schema, table) -> (checksum, run that wrote that content)
    storage_version: str
    # Partitioned tables -> month -> checksum (none recorded by a publication older than the partitioning).
    partitions: dict[Table, dict[Month, str]] = field(default_factory=dict)


def previous_publication(warehouse: Path) -> Previous | None:
    """The checksums recorded in the published file, when it can be reused as the base of the next one: it exists,
    records them, and is not mostly free space. None otherwise (the next one is written from scratch)."""
    if not warehouse.is_file():
        return None
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            if not table_exists(con, *PUBLISHED_TABLES):
                return None
            rows = con.execute(f"select schema_name, table_name, content_checksum, changed_by_run "
                               f"from {qualified(*PUBLISHED_TABLES)}").fetchall()
            storage = con.execute("select storage_version from meta.publication").fetchone()[0]
            months = con.execute(f"select schema_name, table_name, partition_month, content_checksum "
                                 f"from {qualified(*PUBLISHED_PARTITIONS)}").fetchall() \
                if table_exists(con, *PUBLISHED_PARTITIONS) else []
            total, free = con.execute("select total_blocks, free_blocks from pragma_database_size() "
                                      "where database_name = current_database()").fetchone()
    except duckdb.Error:
        return None
    if total and free / total > MAX_FREE_SHARE:
        return None
    partitions: dict[Table, dict[Month, str]] = {}
    for schema, table, month, checksum in months:
        partitions.setdefault((schema, table), {})[month] = checksum
    return Previous({(s, t): (c, r) for s, t, c, r in rows}, storage, partitions)


def record(con: duckdb.DuckDBPyConnection, database: str, current: dict[Table, str], changed_by: dict[Table, str],
           rows: dict[str, int], parts: dict[Table, dict[Month, Part]]) -> None:
    """Write meta.published_tables and meta.published_partitions into the attached `database`."""
    table = f"{identifier(database)}.{qualified(*PUBLISHED_TABLES)}"
    con.execute(f"drop table if exists {table}")
    con.execute(f"create table {table} (schema_name varchar, table_name varchar, row_count bigint, "
                "content_checksum varchar, changed_by_run varchar)")
    con.executemany(f"insert into {table} values (?, ?, ?, ?, ?)",
                    [[s, t, rows[f"{s}.{t}"], checksum, changed_by[(s, t)]]
                     for (s, t), checksum in sorted(current.items())])
    months = f"{identifier(database)}.{qualified(*PUBLISHED_PARTITIONS)}"
    con.execute(f"drop table if exists {months}")
    con.execute(f"create table {months} (schema_name varchar, table_name varchar, partition_column varchar, "
                "partition_month date, row_count bigint, content_checksum varchar)")
    recorded = [[s, t, PARTITIONED_BY.get((s, t)), month, part.rows, part.checksum]
                for (s, t), by_month in sorted(parts.items())
                for month, part in sorted(by_month.items(), key=lambda item: _month_order(item[0]))]
    if recorded:
        con.executemany(f"insert into {months} values (?, ?, ?, ?, ?, ?)", recorded)


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
