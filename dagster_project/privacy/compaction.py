"""The working database rebuilt into a fresh file, so values deleted from it are gone from the disk file too.

DuckDB does not overwrite what it deletes: a deleted row, a replaced table or an updated value stays in the file's
blocks (marked free, reused some day) even after CHECKPOINT and VACUUM, where anyone who can read the file finds it
with `strings`. After an erasure or a retention purge the refresh therefore copies every schema into a new file
(`COPY FROM DATABASE`: tables, views, macros, sequences) and renames it over the working database: the new file
holds only live data and has no free blocks. `finish` runs on the copy before the rename, so what it records (the
erasure requests completed) is true of the file that replaces the old one; a rebuild killed halfway leaves the old
file, and the next publish rebuilds again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.files import sync_path
from dagster_project.sql import identifier, literal
from dagster_project.warehouse_files import (
    compacting_path,
    work_database_path,
    work_temp_dir,
)

COPY = "compacting"


@dataclass(frozen=True)
class Rebuilt:
    bytes_before: int
    bytes_after: int
    seconds: float


def rebuild(warehouse: Path, finish: Callable[[duckdb.DuckDBPyConnection, str], None] | None = None) -> Rebuilt:
    """Rebuild the working database of `warehouse` (nobody may have it open). `finish(con, database)` may change the
    copy, attached to `con` as `database`, before it replaces the original."""
    started = time.perf_counter()
    work, target = work_database_path(warehouse), compacting_path(warehouse)
    for leftover in (target, Path(f"{target}.wal")):
        leftover.unlink(missing_ok=True)
    before = work.stat().st_size
    with duckdb.connect() as con:
        con.execute(f"set temp_directory = {literal(str(work_temp_dir(warehouse)))}")
        # Checkpointed first: the copy then holds everything, and no write-ahead log of the old file is left to be
        # replayed into the new one.
        con.execute(f"attach {literal(str(work))} as original")
        con.execute("checkpoint original")
        con.execute(f"attach {literal(str(target))} as {COPY}")
        con.execute(f"copy from database original to {COPY}")
        if finish is not None:
            finish(con, COPY)
        con.execute("detach original")
        con.execute(f"checkpoint {identifier(COPY)}")
        con.execute(f"detach {COPY}")
    sync_path(target)
    os.replace(target, work)
    Path(f"{work}.wal").unlink(missing_ok=True)  # the old file's log, if any, would be replayed into the new one
    sync_path(work.parent)
    return Rebuilt(before, work.stat().st_size, time.perf_counter() - started)


def free_blocks(database: Path) -> int:
    """Blocks of the file DuckDB counts as free: where deleted values may linger."""
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute("select free_blocks from pragma_database_size()").fetchone()[0]
