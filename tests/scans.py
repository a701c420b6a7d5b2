"""Looking for personal values wherever a refresh leaves something: file bytes (as UTF-8 and as JSON writes
non-ASCII text, escaped), every text value of every table of a DuckDB file, every column of Parquet and CSV exports.
Shared by tests/test_privacy.py (logs and artefacts) and tests/test_erasure.py (an erased person)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import duckdb


def forms(value: str) -> set[bytes]:
    """The bytes a value is written as: UTF-8, and escaped as json.dumps writes it by default (Dagster's storage)."""
    return {value.encode(), json.dumps(value)[1:-1].encode()}


def found_in_bytes(data: bytes, values: Iterable[str]) -> set[str]:
    return {value for value in values if any(form in data for form in forms(value))}


def found_in_files(paths: Iterable[Path], values: Iterable[str]) -> dict[str, set[str]]:
    """Per file (links and folders skipped): the values its bytes hold."""
    values = sorted(set(values))
    found = {}
    for path in paths:
        if path.is_file() and not path.is_symlink():
            try:
                hits = found_in_bytes(path.read_bytes(), values)
            except FileNotFoundError:  # see files_under
                continue
            if hits:
                found[str(path)] = hits
    return found


def paths_under(*folders: Path, since: float | None = None, folders_too: bool = False) -> list[Path]:
    """The files (and with `folders_too` the folders) under `folders`, written since `since` if given. dbt/target and
    dbt/logs are shared by the suite's workers, and a build removes its own target folder when it ends: what vanishes
    while listing is skipped (os.walk skips a removed folder, where rglob fails)."""
    found = []
    for root, dirs, names in (walked for folder in folders for walked in os.walk(folder)):
        for path in (Path(root) / name for name in [*(dirs if folders_too else ()), *names]):
            try:
                written = path.lstat().st_mtime
            except FileNotFoundError:
                continue
            if since is None or written >= since:
                found.append(path)
    return found


def files_under(*folders: Path, since: float | None = None) -> list[Path]:
    return [path for path in paths_under(*folders, since=since) if path.is_file()]


def contents_written_since(*folders: Path, since: float) -> dict[Path, bytes]:
    """The bytes of each file under `folders` written since `since` (those removed meanwhile skipped)."""
    contents = {}
    for path in files_under(*folders, since=since):
        try:
            contents[path] = path.read_bytes()
        except FileNotFoundError:
            continue
    return contents


def found_in_relation(con: duckdb.DuckDBPyConnection, relation: str, values: list[str]) -> dict[str, set[str]]:
    """Per column of `relation` (cast to text): the values some row holds, whole or within a longer text. One query
    for the whole relation: every column as text, unpivoted to (column, text) pairs (nulls dropped)."""
    rows = con.execute(
        f"with texts as (unpivot (select columns(*)::varchar from {relation}) on columns(*) into name col value t) "
        "select col, list(distinct v) from (select distinct col, t from texts) "
        "join unnest($values::varchar[]) as u(v) on contains(t, v) group by col", {"values": values}).fetchall()
    return {column: set(hits) for column, hits in rows}


def found_in_database(path: Path, values: Iterable[str]) -> dict[str, set[str]]:
    """Per schema.table.column of the DuckDB file: the values it holds."""
    values = sorted(set(values))
    found = {}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("select schema_name, table_name from duckdb_tables() "
                             "where database_name = current_database()").fetchall()
        for schema, table in tables:
            for column, hits in found_in_relation(con, f'"{schema}"."{table}"', values).items():
                found[f"{schema}.{table}.{column}"] = hits
    return found


def found_in_exports(folder: Path, values: Iterable[str]) -> dict[str, set[str]]:
    """Per file.column of the Parquet and CSV files under `folder` (every version folder): the values it holds."""
    values = sorted(set(values))
    found = {}
    with duckdb.connect() as con:
        for path in sorted(folder.rglob("*")):
            if path.suffix not in (".parquet", ".csv") or not path.is_file():
                continue
            reader = "read_parquet" if path.suffix == ".parquet" else "read_csv_auto"
            relation = f"{reader}('{str(path).replace(chr(39), chr(39) * 2)}')"
            for column, hits in found_in_relation(con, relation, values).items():
                found[f"{path.relative_to(folder)}.{column}"] = hits
    return found
