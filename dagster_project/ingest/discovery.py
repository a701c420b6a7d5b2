"""Which delivered files are drops, and where their rows go: the drop-folder rules (``EXPORTS/<YYYY-MM-DD>/<entity>``
with a .csv, .txt, .tsv or .parquet suffix; dot files, other folders and other names skipped with a warning), the
routing of an orders file of order lines to order_items, and the fingerprint of the files a sensor compares.

One definition of what a drop is, for ingestion and for the sensor that starts a refresh when drops change."""

from __future__ import annotations

import csv
import hashlib
import re
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.contract import ENTITIES_BY_NAME, Entity, entity_for_file, match_columns
from dagster_project.ingest.encodings import UTF16_BOMS
from dagster_project.ingest.export_file import IngestError
from dagster_project.ingest.layout import (
    MAX_HEADER_BYTES,
    SNIFF_LINES,
    detect_delimiter,
    explicit_columns,
    split_header,
)
from dagster_project.ingest.mapping import MAPPING_FILE_NAME, EntityMapping, Mapping

TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
SUFFIXES = (*TEXT_SUFFIXES, ".parquet")

# (drop date, path, entity): the entity is where the file's rows go, which its grain may decide.
Drop = tuple[date, Path, Entity]


def find_drops(exports_dir: Path, mapping: Mapping | None = None) -> tuple[list[Drop], list[str]]:
    """All entity files of all drop folders, sorted by drop date then entity, and warnings for what was skipped
    (for the caller to report: the ingest asset logs them once per run).

    The entity of a drop is where its rows go: an orders file of order lines is a drop of order_items."""
    mapping = mapping or Mapping()
    delivered, warnings = _drop_files(exports_dir, mapping)
    drops = [(drop_date, path, _target_entity(path, entity, mapping.for_entity(entity)))
             for drop_date, path, entity in delivered]
    drops.sort(key=lambda d: (d[0], d[2].name, d[1].name))
    return drops, warnings


def discover_drops(exports_dir: Path, mapping: Mapping | None = None) -> list[Drop]:
    return find_drops(exports_dir, mapping)[0]


def unread_files(exports_dir: Path, mapping: Mapping | None = None) -> list[str]:
    """find_drops' warnings alone: what the exports folder holds that no refresh reads (no file's header is read to
    route it by grain)."""
    return _drop_files(exports_dir, mapping or Mapping())[1]


def exports_fingerprint(exports_dir: Path) -> str:
    """A hash of every drop file's path, size and modification time: changes when a drop arrives or changes, or
    the mapping file changes.

    For a sensor, which must not open the warehouse (a refresh may hold DuckDB's write lock): it compares files only.
    """
    digest = hashlib.sha256()
    if exports_dir.is_dir():
        # The drop files ingestion reads, and the mapping file that says how to read them.
        # Every data file of a drop, named after an entity or not: the mapping file may route any to one.
        data = [path for folder in _visible(exports_dir) if _drop_date(folder.name) and folder.is_dir()
                for path in _visible(folder) if path.suffix.lower() in SUFFIXES]
        for path in sorted([*data, exports_dir / MAPPING_FILE_NAME]):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(exports_dir)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _drop_files(exports_dir: Path, mapping: Mapping) -> tuple[list[Drop], list[str]]:
    """Every file of a drop folder named after an entity (the entity its name says) or matching a mapping section's
    `files`, and warnings for the rest."""
    if not exports_dir.is_dir():
        raise IngestError(f"{exports_dir}: exports folder not found")
    files: list[Drop] = []
    warnings: list[str] = []
    for folder in _visible(exports_dir):
        if folder.name == MAPPING_FILE_NAME and folder.is_file():
            continue
        drop_date = _drop_date(folder.name) if folder.is_dir() else None
        if drop_date is None:
            warnings.append(f"{_display(exports_dir, folder)}: not a drop folder named YYYY-MM-DD, skipped")
            continue
        for path in _visible(folder):
            data = path.suffix.lower() in SUFFIXES
            entity = (mapping.entity_of_file(path.name) or entity_for_file(path.stem)) if data else None
            if entity is not None and path.is_file():
                files.append((drop_date, path, entity))
            elif entity is not None and path.is_symlink():
                warnings.append(f"{_display(exports_dir, path)}: link whose target is missing or not a file, skipped")
            else:
                warnings.append(
                    f"{_display(exports_dir, path)}: not a .csv/.txt/.tsv/.parquet file named after an entity, skipped"
                    + (f" (to read it, list it under its entity in mapping.yml, e.g. orders: files: [\"{path.name}\"])"
                       if data else ""))
    return files, warnings


def _target_entity(path: Path, entity: Entity, mapping: EntityMapping) -> Entity:
    """order_items for an orders file of order lines (the mapping's grain, else its header: an order id and a product
    on each row, and the order's customer or date), else the entity the file is named after."""
    lines, orders = ENTITIES_BY_NAME["order_items"], ENTITIES_BY_NAME["orders"]
    if entity.name != "orders":
        return entity
    if mapping.grain:
        return lines if mapping.grain == "line" else orders
    try:
        header = _routing_header(path, mapping)
    except (OSError, ValueError, csv.Error, duckdb.Error):
        return entity  # the load reports what is wrong with the file
    mapped = set(match_columns(lines, header, explicit_columns(lines, mapping))[0].values())
    is_lines = {"order_id", "product_id"} <= mapped and bool(mapped & {"customer_id", "order_date"})
    return lines if is_lines else entity


def _routing_header(path: Path, mapping: EntityMapping) -> list[str]:
    """A file's column names, read cheaply (no transcoding) to decide its grain."""
    if mapping.header:
        return list(mapping.header)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet

        return list(pyarrow.parquet.read_schema(path).names)
    with path.open("rb") as f:
        head = f.read(MAX_HEADER_BYTES)
    if head.startswith(UTF16_BOMS):
        text = head.decode("utf-16", "replace")
    else:
        text = head.decode("utf-8", "replace")
        if text.count("\ufffd") > 1:  # not UTF-8: a Chinese export in GB18030
            text = head.decode("gb18030", "replace")
    lines = text.removeprefix("\ufeff").splitlines() or [""]
    delimiter = mapping.delimiter or detect_delimiter(lines[0], lines[1:SNIFF_LINES])
    return split_header(lines[0], delimiter)


def _visible(folder: Path) -> list[Path]:
    # Dot files (.DS_Store, editor swap files) are OS noise, not deliveries.
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _drop_date(name: str) -> date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", name):
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def _display(exports_dir: Path, path: Path) -> str:
    return f"{exports_dir.name}/{path.relative_to(exports_dir).as_posix()}"
