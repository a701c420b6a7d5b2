"""Loading drops: every drop of the selected entities, several entities at once, each file in its own transaction
and skipped when its content is already loaded under the same mapping; what each file's load did (`FileResult`)."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.contract import ENTITIES_BY_NAME, Entity, entity_for_file
from dagster_project.ingest.discovery import discover_drops
from dagster_project.files import file_identity
from dagster_project.ingest.encodings import fingerprint
from dagster_project.ingest.export_file import ExportFile, IngestError
from dagster_project.ingest.file_load import FileLoad
from dagster_project.ingest.layout import Layout
from dagster_project.ingest.mapping import EntityMapping, Mapping
from dagster_project.ingest.raw_schema import ensure_raw_schema, raw_table
from dagster_project.ingest.sources import csv_source, parquet_source
from dagster_project.privacy.tombstones import Screen

# Entities loaded at once: one per core of the 2-core machines this targets (a file's load uses one).
INGEST_WORKERS = 2


@dataclass
class FileResult:
    """What one call did with one file; a skipped file (already loaded, same content) reports zero rows."""

    entity: str
    source_file: str
    drop_date: date
    encoding: str | None
    delimiter: str | None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    extra_columns: list[str] = field(default_factory=list)
    skipped: bool = False
    notes: list[str] = field(default_factory=list)  # how dates and decimals were read, grain, doubts
    dropped_as: str | None = None  # the entity the file's name says, when its rows went to another (by grain)


Progress = Callable[[FileResult], None]


def ingest_entities(
    con: duckdb.DuckDBPyConnection, exports_dir: Path, entity_names: Iterable[str], progress: Progress | None = None,
    workers: int = INGEST_WORKERS, mapping: Mapping | None = None, erased: Screen | None = None,
) -> Iterator[tuple[str, list[FileResult]]]:
    """Load every drop of the given entities, several entities at once, each on its own connection; yields each
    entity's results when it has finished.

    A file's scan runs on one core (numbering rows in file order keeps DuckDB's CSV reader single-threaded), so
    entities load side by side, largest first. Each entity's drops still load oldest first, each file in its own
    transaction; progress is reported from the calling thread. `erased`: the tombstones rows of erased people are
    quarantined by. After a failure no new entity starts, the running
    ones finish (and are yielded), then the first error is raised: what was committed stays, as one at a time.
    """
    names = list(entity_names)
    unknown = [name for name in names if name not in ENTITIES_BY_NAME]
    if unknown:
        raise ValueError(f"unknown entities {unknown!r}")
    ensure_raw_schema(con)
    mapping = mapping or Mapping()
    drops = discover_drops(exports_dir, mapping)
    files = {name: [drop for drop in drops if drop[2].name == name] for name in names}
    finished: queue.SimpleQueue[FileResult] = queue.SimpleQueue()
    failures: list[BaseException] = []  # in the order they happened
    stopping = threading.Event()  # the caller stopped iterating: start no new entity

    def load(name: str) -> list[FileResult] | None:
        if failures or stopping.is_set():
            return None
        results = []
        with con.cursor() as own:
            for drop_date, path, entity in files[name]:
                try:
                    result = ingest_file(own, exports_dir, drop_date, path, entity, mapping, erased)
                except BaseException as exc:
                    failures.append(exc)
                    return None
                finished.put(result)
                results.append(result)
        return results

    with ThreadPoolExecutor(max(1, workers)) as pool:
        largest_first = sorted(names, key=lambda name: -sum(path.stat().st_size for _, path, _ in files[name]))
        entity_of = {pool.submit(load, name): name for name in largest_first}
        running = set(entity_of)
        try:
            while running:
                done, running = wait(running, timeout=0.2)
                while progress is not None and not finished.empty():
                    progress(finished.get())
                for future in done:
                    if (results := future.result()) is not None:
                        yield entity_of[future], results
        finally:
            stopping.set()
    if failures:
        raise failures[0]


def ingest_file(
    con: duckdb.DuckDBPyConnection, exports_dir: Path, drop_date: date, path: Path, entity: Entity,
    mapping: Mapping | None = None, erased: Screen | None = None,
) -> FileResult:
    """Load one file of a drop into raw.<entity> in one transaction; skip it if this content is already loaded under
    the same mapping (the section of the entity the file is named after: its rows may go to another, by grain)."""
    mapping = mapping or Mapping()
    named = mapping.entity_of_file(path.name) or entity_for_file(path.stem)
    file = ExportFile.locate(exports_dir, path, named)
    section = mapping.for_entity(named) if named is not None else EntityMapping()
    try:
        return _ingest(con, file, drop_date, entity, section, erased)
    except IngestError:
        raise
    except (duckdb.Error, OSError) as exc:
        raise IngestError(f"{file.display}: {' '.join(str(exc).split())}") from exc


def _ingest(con: duckdb.DuckDBPyConnection, file: ExportFile, drop_date: date, entity: Entity,
            mapping: EntityMapping, erased: Screen | None = None) -> FileResult:
    is_csv = file.path.suffix.lower() != ".parquet"
    prior = con.execute(
        f"SELECT content_sha256, encoding, delimiter, extra_columns, mapping_sha256, entity, file_identity "
        f"FROM {raw_table('_ingest_log')} WHERE source_file = $source_file",
        {"source_file": file.source_file},
    ).fetchone()
    loaded = prior is not None and prior[4] == mapping.fingerprint
    # Hashing reads the whole file: every past drop, every refresh, unless the file is as it was when last hashed.
    if loaded and prior[6] == file_identity(file.path.stat()):
        return _skipped(file, drop_date, entity, prior)
    fp = fingerprint(file.path, text=is_csv)
    if fp.size == 0:
        raise IngestError(f"{file.display}: empty file, no header")
    if loaded and prior[0] == fp.sha256:
        # The same content in a copied, moved or touched file: remember the file as it is now.
        con.execute(f"UPDATE {raw_table('_ingest_log')} SET file_identity = $identity WHERE source_file = $source_file",
                    {"identity": fp.identity, "source_file": file.source_file})
        return _skipped(file, drop_date, entity, prior)
    with csv_source(con, file, fp, mapping) if is_csv else parquet_source(con, file) as source:
        layout = Layout.of(file, entity, source.header, mapping, source.title_lines)
        load = FileLoad(con, file, drop_date, entity, source, layout, fp, mapping, erased)
        replaces = None if prior is None else ENTITIES_BY_NAME.get(prior[5], entity)
        counts = _in_transaction(con, lambda: load.run(replaces))
    return FileResult(entity.name, file.source_file, drop_date, source.encoding, source.delimiter,
                      *counts, extra_columns=load.layout.extras, notes=load.notes,
                      dropped_as=load.entity_named.name if load.entity_named.name != entity.name else None)


def _skipped(file: ExportFile, drop_date: date, entity: Entity, prior: tuple) -> FileResult:
    return FileResult(entity.name, file.source_file, drop_date, prior[1], prior[2],
                      extra_columns=json.loads(prior[3]), skipped=True)


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], tuple[int, int, int]]) -> tuple[int, int, int]:
    con.begin()
    try:
        out = work()
    except BaseException:
        con.rollback()
        raise
    con.commit()
    return out
