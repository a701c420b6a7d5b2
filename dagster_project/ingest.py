"""Load CRM export drops (``EXPORTS/<YYYY-MM-DD>/<entity>.csv|.parquet``) into the ``raw`` schema of DuckDB.

Raw tables keep every value as text exactly as delivered (only trimmed, empty → NULL) plus lineage columns; typing
happens in dbt. Rows the CSV parser cannot read go to ``raw._quarantine``; every file load is logged in
``raw._ingest_log`` so that re-running is idempotent and a corrected re-delivery replaces its earlier rows.

DuckDB does the parsing and loading (streaming, parallel); Python only hashes the file, checks its encoding and line
ends in the same pass, reads the header line and, for GB18030 or UTF-16 files, transcodes to UTF-8 in chunks (line by
line for a file mixing UTF-8 and GB18030 lines). Files DuckDB's reader cannot take as they are (columns aligned with
spaces, mixed LF / CR LF line ends) are rewritten line by line into a scratch copy first. Each file load is one
transaction, so the connection must not already be inside one.

What detection cannot know comes from the mapping file (dagster_project.mapping): column names, a header for a file
without one, the delimiter, decimal mark, date format, currency and grain. An orders or order-lines file whose rows
are order lines (an order id and a product on each row, and the order's customer or date) is loaded as order lines
whichever name it was dropped under; dbt derives its orders. Dates and decimal commas are interpreted per column of
each file after loading (dagster_project.ingest_values), and the choice is logged in ``raw._ingest_log``.

Paths are data, never SQL or patterns: every value reaches DuckDB as a bound parameter, and DuckDB reads each file
through a link with a plain name in a scratch folder, because its readers expand glob characters (``*``, ``?``,
``[``) in a path and a folder named ``exports[1]`` would otherwise read ``exports1``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import queue
import re
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from dagster_project import ingest_values
from dagster_project.contract import (
    ENTITIES,
    ENTITIES_BY_NAME,
    LINEAGE_COLUMNS,
    Entity,
    entity_for_file,
    match_columns,
    normalise_header,
)
from dagster_project.mapping import MAPPING_FILE_NAME, Mapping, EntityMapping

RAW_SCHEMA = "raw"
DELIMITERS = (",", ";", "\t", "|")
WHITESPACE = "whitespace"
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
SUFFIXES = (*TEXT_SUFFIXES, ".parquet")
# Lines looked at to recognise columns aligned with spaces.
SNIFF_LINES = 20
CHUNK_BYTES = 8 << 20
# Entities loaded at once: one per core of the 2-core machines this targets (a file's load uses one).
INGEST_WORKERS = 2
MAX_HEADER_BYTES = 1 << 20
# A file with only this many lines that are neither UTF-8 nor GB18030 (or one per this many lines, if more) is read
# and those lines are quarantined instead of rejecting the whole file.
STRAY_BAD_BYTES = 10
LINES_PER_STRAY_BAD_BYTE = 1000
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
MIXED_ENCODINGS = ("utf-8", "gb18030")

Drop = tuple[date, Path, Entity]
Progress = Callable[["FileResult"], None]

LINEAGE_TYPES = {
    "_source_file": "VARCHAR",
    "_drop_date": "DATE",
    "_row_number": "BIGINT",
    "_loaded_at": "TIMESTAMP",
    "_extra_columns": "VARCHAR",
}
INGEST_LOG_COLUMNS = (
    ("source_file", "VARCHAR"),
    ("entity", "VARCHAR"),
    ("drop_date", "DATE"),
    ("content_sha256", "VARCHAR"),
    ("size_bytes", "BIGINT"),
    ("encoding", "VARCHAR"),
    ("delimiter", "VARCHAR"),
    ("header", "VARCHAR"),
    ("column_map", "VARCHAR"),
    ("extra_columns", "VARCHAR"),
    ("rows_read", "BIGINT"),
    ("rows_loaded", "BIGINT"),
    ("rows_quarantined", "BIGINT"),
    ("loaded_at", "TIMESTAMP"),
    ("dropped_as", "VARCHAR"),  # the entity the file's name says; `entity` is where its rows went (by grain)
    ("date_formats", "VARCHAR"),  # JSON: date column -> how it was read and the value that decided it
    ("decimal_mark", "VARCHAR"),
    ("mapping_sha256", "VARCHAR"),  # the mapping file's section for this file when it was loaded
)
QUARANTINE_COLUMNS = (
    ("entity", "VARCHAR"),
    ("source_file", "VARCHAR"),
    ("drop_date", "DATE"),
    ("row_number", "BIGINT"),
    ("reason", "VARCHAR"),
    ("raw_record", "VARCHAR"),
    ("quarantined_at", "TIMESTAMP"),
    ("detail", "VARCHAR"),  # the column and, for a non-personal column, the value: safe to show
)
# The quarantine's columns, as an insert of rejected lines fills them.
QUARANTINE_INSERT = "(entity, source_file, drop_date, row_number, reason, raw_record, quarantined_at, detail)"
# DuckDB's reject error types, as a reader of the quarantine would put them.
REJECT_REASONS = {
    "MISSING COLUMNS": "wrong field count",
    "TOO MANY COLUMNS": "wrong field count",
    "UNQUOTED VALUE": "unterminated or stray quote",
    "INVALID ENCODING": "encoding error",
    "LINE SIZE OVER MAXIMUM": "line too long",
}


class IngestError(Exception):
    """A file that cannot be loaded; the message names the file and the problem on one line."""


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


@dataclass
class IngestResult:
    files: list[FileResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def totals_by_entity(self) -> dict[str, dict[str, int]]:
        totals: dict[str, dict[str, int]] = {}
        for f in self.files:
            t = totals.setdefault(
                f.entity,
                dict.fromkeys(("files_loaded", "files_skipped", "rows_read", "rows_loaded", "rows_quarantined"), 0),
            )
            t["files_skipped" if f.skipped else "files_loaded"] += 1
            t["rows_read"] += f.rows_read
            t["rows_loaded"] += f.rows_loaded
            t["rows_quarantined"] += f.rows_quarantined
        return totals


# ---------------------------------------------------------------------------------------------------- discovery


def find_drops(exports_dir: Path, mapping: Mapping | None = None) -> tuple[list[Drop], list[str]]:
    """All entity files of all drop folders, sorted by drop date then entity, and warnings for what was skipped
    (for the caller to report: the ingest asset logs them once per run).

    The entity of a drop is where its rows go: an orders file of order lines is a drop of order_items."""
    if not exports_dir.is_dir():
        raise IngestError(f"{exports_dir}: exports folder not found")
    mapping = mapping or Mapping()
    drops: list[Drop] = []
    warnings: list[str] = []
    for folder in _visible(exports_dir):
        if folder.name == MAPPING_FILE_NAME and folder.is_file():
            continue
        drop_date = _drop_date(folder.name) if folder.is_dir() else None
        if drop_date is None:
            warnings.append(f"{_display(exports_dir, folder)}: not a drop folder named YYYY-MM-DD, skipped")
            continue
        for path in _visible(folder):
            entity = entity_for_file(path.stem) if path.suffix.lower() in SUFFIXES else None
            if entity is not None and path.is_file():
                drops.append((drop_date, path, _target_entity(exports_dir, path, entity, mapping.for_entity(entity))))
            elif entity is not None and path.is_symlink():
                warnings.append(f"{_display(exports_dir, path)}: link whose target is missing or not a file, skipped")
            else:
                warnings.append(
                    f"{_display(exports_dir, path)}: not a .csv/.txt/.tsv/.parquet file named after an entity, skipped"
                )
    drops.sort(key=lambda d: (d[0], d[2].name, d[1].name))
    return drops, warnings


def discover_drops(exports_dir: Path, mapping: Mapping | None = None) -> list[Drop]:
    return find_drops(exports_dir, mapping)[0]


def _target_entity(exports_dir: Path, path: Path, entity: Entity, mapping: EntityMapping) -> Entity:
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
    mapped = set(match_columns(lines, header, _explicit_columns(lines, mapping))[0].values())
    is_lines = {"order_id", "product_id"} <= mapped and bool(mapped & {"customer_id", "order_date"})
    return lines if is_lines else entity


def _explicit_columns(entity: Entity, mapping: EntityMapping) -> dict[str, str]:
    """The mapping's columns for a file whose rows go to `entity`: an order amount, in a file of order lines, is the
    line's amount."""
    if entity.name != "order_items":
        return mapping.columns
    return {name: "line_amount" if column == "amount" else column for name, column in mapping.columns.items()}


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
    delimiter = mapping.delimiter or _detect_delimiter(lines[0], lines[1:SNIFF_LINES])
    return _split_header(lines[0], delimiter)


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


# ---------------------------------------------------------------------------------------------------- schema


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table(name: str) -> str:
    return f"{_ident(RAW_SCHEMA)}.{_ident(name)}"


def _raw_columns(entity: Entity) -> list[tuple[str, str]]:
    return [(c, "VARCHAR") for c in entity.column_names] + [(c, LINEAGE_TYPES[c]) for c in LINEAGE_COLUMNS]


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema raw, one table per entity, the ingest log and the quarantine; add columns the contract gained.

    Only missing objects are created, so calling it again issues no DDL (and so no catalog conflicts).
    """
    existing: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = $schema",
        {"schema": RAW_SCHEMA},
    ).fetchall():
        existing.setdefault(table, set()).add(column)
    if not existing:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(RAW_SCHEMA)}")
    wanted = {e.name: _raw_columns(e) for e in ENTITIES}
    wanted["_ingest_log"] = list(INGEST_LOG_COLUMNS)
    wanted["_quarantine"] = list(QUARANTINE_COLUMNS)
    for table, columns in wanted.items():
        if table not in existing:
            con.execute(f"CREATE TABLE {_table(table)} ({', '.join(f'{_ident(c)} {t}' for c, t in columns)})")
            continue
        for column, sql_type in columns:
            if column not in existing[table]:
                con.execute(f"ALTER TABLE {_table(table)} ADD COLUMN {_ident(column)} {sql_type}")


# ---------------------------------------------------------------------------------------------------- entry points


def ingest_all(con: duckdb.DuckDBPyConnection, exports_dir: Path, progress: Progress | None = None,
               mapping: Mapping | None = None) -> IngestResult:
    mapping = mapping or Mapping()
    drops, warnings = find_drops(exports_dir, mapping)
    ensure_raw_schema(con)
    result = IngestResult(warnings=warnings)
    for drop_date, path, entity in drops:
        result.files.append(_ingest_reported(con, exports_dir, drop_date, path, entity, progress, mapping))
    return result


def ingest_entity(
    con: duckdb.DuckDBPyConnection, exports_dir: Path, entity_name: str, progress: Progress | None = None,
    mapping: Mapping | None = None,
) -> list[FileResult]:
    """Load every drop of one entity, oldest first, each file in its own transaction."""
    ((_, results),) = ingest_entities(con, exports_dir, [entity_name], progress, workers=1, mapping=mapping)
    return results


def ingest_entities(
    con: duckdb.DuckDBPyConnection, exports_dir: Path, entity_names: Iterable[str], progress: Progress | None = None,
    workers: int = INGEST_WORKERS, mapping: Mapping | None = None,
) -> Iterator[tuple[str, list[FileResult]]]:
    """Load every drop of the given entities, several entities at once, each on its own connection; yields each
    entity's results when it has finished.

    A file's scan runs on one core (numbering rows in file order keeps DuckDB's CSV reader single-threaded), so
    entities load side by side, largest first. Each entity's drops still load oldest first, each file in its own
    transaction; progress is reported from the calling thread. After a failure no new entity starts, the running
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
                    result = ingest_file(own, exports_dir, drop_date, path, entity, _section(mapping, path))
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


def _section(mapping: Mapping, path: Path) -> EntityMapping:
    """The mapping section of the entity a file is named after (its rows may go to another by grain)."""
    named = entity_for_file(path.stem)
    return mapping.for_entity(named) if named is not None else EntityMapping()


def _ingest_reported(
    con: duckdb.DuckDBPyConnection, exports_dir: Path, drop_date: date, path: Path, entity: Entity,
    progress: Progress | None, mapping: Mapping,
) -> FileResult:
    result = ingest_file(con, exports_dir, drop_date, path, entity, _section(mapping, path))
    if progress is not None:
        progress(result)
    return result


def ingest_file(
    con: duckdb.DuckDBPyConnection, exports_dir: Path, drop_date: date, path: Path, entity: Entity,
    mapping: EntityMapping | None = None,
) -> FileResult:
    """Load one file into raw.<entity> in one transaction; skip it if this content is already loaded under the same
    mapping."""
    file = _ExportFile.locate(exports_dir, path)
    try:
        return _ingest(con, file, drop_date, entity, mapping or EntityMapping())
    except IngestError:
        raise
    except (duckdb.Error, OSError) as exc:
        raise IngestError(f"{file.display}: {' '.join(str(exc).split())}") from exc


# ---------------------------------------------------------------------------------------------------- one file


@dataclass(frozen=True)
class _ExportFile:
    path: Path  # resolved, inside the exports folder
    source_file: str  # as delivered, relative to the exports folder
    display: str  # for messages: exports folder name + source_file

    @classmethod
    def locate(cls, exports_dir: Path, path: Path) -> _ExportFile:
        root = exports_dir.resolve()
        resolved = path.resolve()  # follows symlinks too, so a link pointing outside is caught
        if not resolved.is_relative_to(root):
            raise IngestError(f"{path}: path is outside the exports folder {exports_dir}")
        # The delivered name is the lexical path ('..' collapsed), unless only the resolved one lies inside.
        lexical = Path(os.path.relpath(os.path.normpath(path.absolute()), os.path.normpath(exports_dir.absolute())))
        relative = resolved.relative_to(root) if lexical.parts[:1] == ("..",) else lexical
        return cls(resolved, relative.as_posix(), f"{exports_dir.name}/{relative.as_posix()}")


@dataclass(frozen=True)
class _Fingerprint:
    sha256: str
    size: int
    bom: bool  # UTF-8 byte order mark
    utf16: bool  # UTF-16 byte order mark (Excel's "Unicode text" export)
    bad_utf8: int  # invalid UTF-8 sequences (0 for parquet, which is not checked)
    line_ends: tuple[int, int, int] = (0, 0, 0)  # CR LF, lone LF, lone CR (text only)

    @property
    def mixed_line_ends(self) -> bool:
        """More than one kind of line end (a header ending in LF above rows ending in CR LF), or old Mac CR ends:
        DuckDB's reader stops on these."""
        return sum(1 for n in self.line_ends if n) > 1 or self.line_ends[2] > 0


def _fingerprint(path: Path, text: bool) -> _Fingerprint:
    """Hash the file and, for text, count invalid UTF-8 sequences, in one streaming pass.

    Hashing runs in a second thread beside the decoding (hashlib releases the GIL), so the two overlap.
    """
    sha = hashlib.sha256()
    errors = _Utf8Errors()
    size = crlf = lf = cr = 0
    bom = utf16 = previous_cr = False
    with path.open("rb") as f, ThreadPoolExecutor(1) as hasher:
        while chunk := f.read(CHUNK_BYTES):
            if size == 0:
                bom, utf16 = chunk.startswith(codecs.BOM_UTF8), chunk.startswith(UTF16_BOMS)
            size += len(chunk)
            hashed = hasher.submit(sha.update, chunk)
            if text:
                errors.feed(chunk)
                joined = previous_cr and chunk.startswith(b"\n")  # a CR LF split across two chunks
                pairs = chunk.count(b"\r\n") + joined
                crlf += pairs
                lf += chunk.count(b"\n") - pairs
                cr += chunk.count(b"\r") - pairs + joined
                previous_cr = chunk.endswith(b"\r")
            hashed.result()
    if text:
        errors.feed(b"", final=True)
    return _Fingerprint(sha.hexdigest(), size, bom, utf16, errors.count, (crlf, lf, cr))


class _Utf8Errors:
    """Counts invalid UTF-8 sequences in a stream of chunks.

    Strict decoding until the first error (a valid file, the usual case, costs a third of decoding with replacement
    and counting the replacement characters), then with replacement from the state before the failing chunk.
    """

    def __init__(self) -> None:
        self._strict = codecs.getincrementaldecoder("utf-8")("strict")
        self._replacing: codecs.IncrementalDecoder | None = None
        self.count = 0

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if self._replacing is None:
            state = self._strict.getstate()
            try:
                self._strict.decode(chunk, final)
                return
            except UnicodeDecodeError:
                self._replacing = codecs.getincrementaldecoder("utf-8")("replace")
                self._replacing.setstate(state)
        self.count += self._replacing.decode(chunk, final).count("\ufffd")


def _ingest(con: duckdb.DuckDBPyConnection, file: _ExportFile, drop_date: date, entity: Entity,
            mapping: EntityMapping) -> FileResult:
    is_csv = file.path.suffix.lower() != ".parquet"
    fp = _fingerprint(file.path, text=is_csv)
    if fp.size == 0:
        raise IngestError(f"{file.display}: empty file, no header")
    prior = con.execute(
        f"SELECT content_sha256, encoding, delimiter, extra_columns, mapping_sha256, entity "
        f"FROM {_table('_ingest_log')} WHERE source_file = $source_file",
        {"source_file": file.source_file},
    ).fetchone()
    if prior is not None and prior[0] == fp.sha256 and prior[4] == mapping.fingerprint:
        return FileResult(entity.name, file.source_file, drop_date, prior[1], prior[2],
                          extra_columns=json.loads(prior[3]), skipped=True)
    with _csv_source(con, file, fp, mapping) if is_csv else _parquet_source(con, file) as source:
        layout = _Layout.of(file, entity, source.header, mapping)
        load = _Load(con, file, drop_date, entity, source, layout, fp, mapping)
        replaces = None if prior is None else ENTITIES_BY_NAME.get(prior[5], entity)
        counts = _in_transaction(con, lambda: load.run(replaces))
    return FileResult(entity.name, file.source_file, drop_date, source.encoding, source.delimiter,
                      *counts, extra_columns=load.layout.extras, notes=load.notes,
                      dropped_as=load.entity_named.name if load.entity_named.name != entity.name else None)


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], tuple[int, int, int]]) -> tuple[int, int, int]:
    con.begin()
    try:
        out = work()
    except BaseException:
        con.rollback()
        raise
    con.commit()
    return out


# ---------------------------------------------------------------------------------------------------- sources


@dataclass
class _Source:
    """A file as DuckDB reads it: a FROM clause yielding positional columns c0..cN-1 and ``_ord`` (1-based)."""

    header: list[str]
    encoding: str | None
    delimiter: str | None
    relation: str
    params: dict[str, object]
    header_line: str | None = None  # CSV with a header row only
    rejects_table: str | None = None  # CSV only
    ends_with_line_break: bool = True


@contextmanager
def _csv_source(con: duckdb.DuckDBPyConnection, file: _ExportFile, fp: _Fingerprint,
                mapping: EntityMapping) -> Iterator[_Source]:
    with tempfile.TemporaryDirectory(prefix="crm-ingest-") as scratch:
        path, encoding = _utf8_file(file, fp, Path(scratch))
        ends_with_line_break = _ends_with_line_break(path)
        lines = _first_lines(path, SNIFF_LINES)
        has_header = mapping.header is None
        if has_header and not (lines and lines[0].strip()):
            raise IngestError(f"{file.display}: empty header line")
        if not lines:
            raise IngestError(f"{file.display}: no rows")
        delimiter = mapping.delimiter or _detect_delimiter(lines[0], lines[1:])
        read_delimiter = "\t" if delimiter == WHITESPACE else delimiter
        if delimiter == WHITESPACE or fp.mixed_line_ends:
            path = _rewrite_lines(path, Path(scratch) / "normalised.csv", whitespace=delimiter == WHITESPACE)
        elif path == file.path:
            path = _plain_link(path, Path(scratch))
        header_line = lines[0] if has_header else None
        header = _split_header(lines[0], delimiter) if has_header else list(mapping.header)
        suffix = uuid.uuid4().hex
        rejects, scan = f"_ingest_rejects_{suffix}", f"_ingest_scan_{suffix}"
        columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))
        relation = (
            f"read_csv($path, columns={{{columns}}}, header={str(has_header).lower()}, auto_detect=false, "
            f"delim=$delim, quote='\"', escape='\"', store_rejects=true, rejects_table='{rejects}', "
            f"rejects_scan='{scan}') WITH ORDINALITY AS src({_positional(len(header))}, _ord)"
        )
        try:
            yield _Source(header, encoding, delimiter, relation, {"path": str(path), "delim": read_delimiter},
                          header_line, rejects, ends_with_line_break)
        finally:
            # DuckDB creates these outside the load's transaction: they outlive a rollback.
            for table in (rejects, scan):
                con.execute(f"DROP TABLE IF EXISTS temp.main.{_ident(table)}")


@contextmanager
def _parquet_source(con: duckdb.DuckDBPyConnection, file: _ExportFile) -> Iterator[_Source]:
    with tempfile.TemporaryDirectory(prefix="crm-ingest-") as scratch:
        params = {"path": str(_plain_link(file.path, Path(scratch)))}
        header = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet($path)", params).fetchall()]
        relation = f"read_parquet($path) WITH ORDINALITY AS src({_positional(len(header))}, _ord)"
        yield _Source(header, None, None, relation, params)


def _plain_link(path: Path, scratch: Path) -> Path:
    """A link to the (already confined) file under a name free of glob characters, for DuckDB's readers."""
    link = scratch / f"export{path.suffix.lower()}"
    link.symlink_to(path)
    return link


def _positional(n: int) -> str:
    return ", ".join(f"c{i}" for i in range(n))


def _utf8_file(file: _ExportFile, fp: _Fingerprint, scratch: Path) -> tuple[Path, str]:
    """The file as UTF-8 DuckDB can read, and the encoding it was delivered in.

    Lines left undecodable (at most a few) stay as they are: DuckDB rejects them and they are quarantined.
    """
    copy = scratch / "transcoded.csv"
    if fp.utf16:
        try:
            _transcode(file.path, copy, "utf-16")
            return copy, "utf-16"
        except UnicodeDecodeError:
            raise IngestError(f"{file.display}: starts with a UTF-16 byte order mark but is not UTF-16 text") from None
    if fp.bad_utf8 == 0:
        return file.path, "utf-8-sig" if fp.bom else "utf-8"
    if fp.bom:  # a UTF-8 BOM settles the encoding: don't read its bad bytes as Chinese
        if fp.bad_utf8 <= _stray_allowance(file.path):
            return file.path, "utf-8-sig"
    else:
        try:
            _transcode(file.path, copy, "gb18030")
            return copy, "gb18030"
        except UnicodeDecodeError:
            pass
        encoding, undecodable = _transcode_mixed(file.path, copy)
        if undecodable <= _stray_allowance(file.path):
            return copy, encoding
    raise IngestError(f"{file.display}: file is neither UTF-8 nor GB18030 text")


def _stray_allowance(path: Path) -> int:
    with path.open("rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(CHUNK_BYTES), b""))
    return max(STRAY_BAD_BYTES, lines // LINES_PER_STRAY_BAD_BYTE)


def _decoded(line: bytes, encodings: Iterable[str]) -> tuple[str, str] | None:
    """The line's text in the first of the encodings it is valid in, and that encoding; None if in none."""
    for encoding in encodings:
        try:
            return line.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return None


def _transcode_mixed(src: Path, dst: Path) -> tuple[str, int]:
    """Re-encode a file mixing UTF-8 and GB18030 lines (exports concatenated from two systems) line by line.

    A line valid in only one of the two is read in that one; a line valid in both (short Chinese text can be) in
    the one most unambiguous lines use, UTF-8 on a tie. Returns the encoding(s) used and the number of lines valid
    in neither, which are copied unchanged for DuckDB to reject.
    """
    unambiguous = dict.fromkeys(MIXED_ENCODINGS, 0)
    with src.open("rb") as f:
        for line in f:
            valid = [encoding for encoding in MIXED_ENCODINGS if _decoded(line, [encoding])]
            if len(valid) == 1:
                unambiguous[valid[0]] += 1
    preference = sorted(MIXED_ENCODINGS, key=lambda encoding: -unambiguous[encoding])
    used: set[str] = set()
    undecodable = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        for line in fin:
            decoded = _decoded(line, preference)
            if decoded is None:
                undecodable += 1
                fout.write(line)
                continue
            text, encoding = decoded
            if not line.isascii():
                used.add(encoding)
            fout.write(text.encode("utf-8"))
    return "+".join(e for e in MIXED_ENCODINGS if e in used) or "utf-8", undecodable


def _transcode(src: Path, dst: Path, encoding: str) -> None:
    """Re-encode to UTF-8 chunk by chunk (files may be gigabytes); raises UnicodeDecodeError on invalid input."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with src.open("rb") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        while chunk := fin.read(CHUNK_BYTES):
            fout.write(decoder.decode(chunk))
        fout.write(decoder.decode(b"", final=True))


def _ends_with_line_break(path: Path) -> bool:
    with path.open("rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) in (b"\n", b"\r")


def _first_lines(path: Path, n: int) -> list[str]:
    """The first n lines of a UTF-8 file, without BOM and line ends (any of LF, CR LF, CR)."""
    with path.open("rb") as f:
        head = f.read(MAX_HEADER_BYTES * 2)
    lines = head.decode("utf-8", "replace").removeprefix("\ufeff").splitlines()
    if len(head) == MAX_HEADER_BYTES * 2 and len(lines) > 1:
        lines.pop()  # cut off mid-line
    return lines[:n]


def _detect_delimiter(header_line: str, following: Iterable[str] = ()) -> str:
    """The candidate occurring most often outside quotes; ties (and a one-column file) prefer the comma. A header
    with none of them whose lines all split on runs of spaces into the same number (two or more) of fields is
    aligned with spaces (an old transaction log)."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    best = max(DELIMITERS, key=unquoted.count)
    if unquoted.count(best):
        return best
    width = len(header_line.split())
    if width >= 2 and all(len(line.split()) == width for line in following if line.strip()):
        return WHITESPACE
    return best


def _split_header(line: str, delimiter: str) -> list[str]:
    if delimiter == WHITESPACE:
        return line.split()
    return [cell.strip() for cell in next(csv.reader([line], delimiter=delimiter, quotechar='"'))]


def _rewrite_lines(src: Path, dst: Path, whitespace: bool) -> Path:
    """A copy with every line ending in LF and, for columns aligned with spaces, fields separated by one tab.

    Bytes that are not UTF-8 pass through unchanged (for the reader to reject their lines)."""
    with src.open(encoding="utf-8", errors="surrogateescape", newline=None) as fin, \
            dst.open("w", encoding="utf-8", errors="surrogateescape", newline="\n") as fout:
        for line in fin:
            fout.write("\t".join(line.split()) + "\n" if whitespace else line)
    return dst


# ---------------------------------------------------------------------------------------------------- header


@dataclass(frozen=True)
class _Layout:
    """How a file's columns map onto its raw table."""

    header: list[str]  # cells as delivered (trimmed)
    names: list[str]  # the same, blank cells named column_<n>
    mapping: dict[int, str]  # position -> canonical column
    extras: list[str]  # names of unmapped columns, in file order
    extra_positions: list[int]

    @classmethod
    def of(cls, file: _ExportFile, entity: Entity, header: list[str], mapping: EntityMapping) -> _Layout:
        names = [cell or f"column_{i + 1}" for i, cell in enumerate(header)]
        seen: set[str] = set()
        for name in names:
            key = normalise_header(name)
            if key in seen:
                raise IngestError(f"{file.display}: duplicated header column '{name}'")
            seen.add(key)
        folded = {normalise_header(name) for name in names}
        unmatched = [name for name in mapping.columns if name not in folded]
        if unmatched:
            raise IngestError(
                f"{file.display}: mapping.yml maps {', '.join(repr(n) for n in unmatched)}, which the file does not "
                f"have (columns: {', '.join(names)})")
        positions, extras = match_columns(entity, names, _explicit_columns(entity, mapping))
        named = entity_for_file(file.path.stem) or entity
        # A file named as orders needs an order's columns whatever its grain.
        required = [*entity.required, *(c for c in named.required if c not in entity.required)]
        missing = [c for c in required if c not in positions.values()]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            hint = ("; only one column: is the delimiter one of , ; tab | or whitespace? (set delimiter in mapping.yml)"
                    if len(names) == 1 else
                    f"; if the file calls it otherwise, say so in mapping.yml, e.g. {named.name}: columns: "
                    f"{{<name in the file>: {missing[0]}}}")
            raise IngestError(
                f"{file.display}: missing required column{plural} {', '.join(repr(c) for c in missing)} "
                f"(found: {', '.join(names)}{hint})"
            )
        mapped = set(positions.values())
        if entity.name == "order_items" and mapped & {"customer_id", "order_date"} and not mapped & {
                "unit_price", "line_amount"}:
            raise IngestError(f"{file.display}: a file of order lines with no unit price and no line amount cannot "
                              f"price its lines (found: {', '.join(names)}); map one in mapping.yml")
        extra_positions = [i for i in range(len(names)) if i not in positions]
        return cls(header, names, positions, extras, extra_positions)

    @property
    def column_map(self) -> dict[str, str]:
        return {self.names[pos]: col for pos, col in sorted(self.mapping.items())}

    def without(self, column: str) -> _Layout:
        """The same layout with `column`'s file column kept as an extra column instead."""
        (position,) = [pos for pos, col in self.mapping.items() if col == column]
        mapping = {pos: col for pos, col in self.mapping.items() if pos != position}
        extra_positions = sorted([*self.extra_positions, position])
        return _Layout(self.header, self.names, mapping, [self.names[p] for p in extra_positions], extra_positions)


# ---------------------------------------------------------------------------------------------------- loading


def _value(pos: int) -> str:
    return f"nullif(trim(CAST(c{pos} AS VARCHAR)), '')"


@dataclass
class _Load:
    con: duckdb.DuckDBPyConnection
    file: _ExportFile
    drop_date: date
    entity: Entity
    source: _Source
    layout: _Layout
    fp: _Fingerprint
    mapping: EntityMapping
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    notes: list[str] = field(default_factory=list)
    interpretation: ingest_values.Interpretation = field(default_factory=ingest_values.Interpretation)

    @property
    def table(self) -> str:
        return _table(self.entity.name)

    @property
    def entity_named(self) -> Entity:
        """The entity the file's name says (its mapping section's), which its rows may have left by grain."""
        return entity_for_file(self.file.path.stem) or self.entity

    def run(self, replaces: Entity | None) -> tuple[int, int, int]:
        """Load and log the file (replacing what an earlier version of it loaded into `replaces`); returns (rows
        read, rows loaded, rows quarantined)."""
        if replaces is not None:
            self._forget_earlier_load(replaces)
        inserted = self._insert_rows()
        rejected = self._quarantine_rejects(inserted)
        if rejected and not inserted:
            self._refuse_unreadable(rejected)
        repeated = self._quarantine_repeated_headers()
        ambiguous = self._interpret_values()
        counts = (inserted + rejected, inserted - repeated - ambiguous, rejected + repeated + ambiguous)
        self._log(*counts)
        return counts

    def _forget_earlier_load(self, replaces: Entity) -> None:
        params = {"source_file": self.file.source_file}
        for table in {self.table, _table(replaces.name)}:
            self.con.execute(f"DELETE FROM {table} WHERE _source_file = $source_file", params)
        for table in ("_quarantine", "_ingest_log"):
            self.con.execute(f"DELETE FROM {_table(table)} WHERE source_file = $source_file", params)

    def _insert_rows(self) -> int:
        mapped = sorted(self.layout.mapping.items())
        targets = [col for _, col in mapped] + list(LINEAGE_COLUMNS)
        extras_sql, extras_params = self._extra_columns_sql()
        select = [_value(pos) for pos, _ in mapped] + [
            "$source_file", "$drop_date", "_ord", "$loaded_at", extras_sql,
        ]
        params: dict[str, object] = {}
        # What the file leaves out: lines without a quantity column are one unit each; amounts that name no
        # currency are in the mapping's currency.
        if self.entity.name == "order_items" and "quantity" not in targets:
            targets.append("quantity")
            select.append("'1'")
            self.notes.append("no quantity column: each line is one unit")
        if self.mapping.currency and "currency" in self.entity.column_names:
            params["currency"] = self.mapping.currency
            if "currency" in targets:
                select[targets.index("currency")] = f"coalesce({select[targets.index('currency')]}, $currency)"
            else:
                targets.append("currency")
                select.append("$currency")
        (inserted,) = self.con.execute(
            f"INSERT INTO {self.table} ({', '.join(map(_ident, targets))}) "
            f"SELECT {', '.join(select)} FROM {self.source.relation}",
            {**self.source.params, **self._lineage(), **extras_params, **params},
        ).fetchone()
        return inserted

    def _interpret_values(self) -> int:
        """Read the file's date columns and decimal mark from all their values, rewrite what dbt would misread, and
        quarantine rows whose date order cannot be decided; returns the number quarantined."""
        delivered = set(self.layout.mapping.values())
        columns = {c.name: c for c in self.entity.columns if c.name in delivered}
        params = {"source_file": self.file.source_file}
        numbers = [name for name, c in columns.items() if c.kind in ("amount", "number")]
        try:
            decimal = ingest_values.decimal_mark(self.con, self.table, self.file.source_file, numbers,
                                                 self.source.delimiter, self.mapping)
        except ingest_values.AmbiguousDecimal as doubt:
            raise IngestError(f"{self.file.display}: cannot tell its decimal mark: {doubt}; set decimal (\".\" or "
                              f"\",\") for {self.entity_named.name} in mapping.yml") from None
        readings = ingest_values.read_dates(
            self.con, self.table, self.file.source_file,
            [(name, c.personal) for name, c in columns.items() if c.kind == "date"], self.mapping, self.drop_date)
        self.interpretation = ingest_values.Interpretation(readings, decimal)
        self.notes += [reading.describe() for reading in readings if reading.format != "ISO"]
        if decimal == ",":
            self.notes.append("decimal comma")
        quarantined = 0
        for reading in readings:
            value = ("'(personal column: value withheld)'" if columns[reading.column].personal
                     else _ident(reading.column))
            if reading.ambiguous is not None:
                quarantined += self._quarantine_where(
                    reading.ambiguous, "ambiguous date order",
                    f"'{reading.column} = ' || {value} || ': no value of the column decides day/month order; set "
                    f"date_format in mapping.yml'")
            if reading.unfit is not None:
                quarantined += self._quarantine_where(
                    f"{_ident(reading.column)} is not null and {reading.unfit}", "date does not fit date_format",
                    f"'{reading.column} = ' || {value} || ' is not {reading.format.removeprefix('mapping ')}; fix "
                    f"date_format in mapping.yml (it may name a format per column)'")
        assignments = [f"{_ident(r.column)} = coalesce({r.expression}, {_ident(r.column)})"
                       for r in readings if r.expression]
        if decimal == ",":
            assignments += [f"{_ident(c)} = {ingest_values.comma_decimal_expression(c)}" for c in numbers]
        if assignments:
            self.con.execute(f"UPDATE {self.table} SET {', '.join(assignments)} WHERE _source_file = $source_file",
                             params)
        self._demote_order_values()
        return quarantined

    def _demote_order_values(self) -> None:
        """An order's total or discount written on its lines (a shop system's Subtotal or Discount Amount column) is
        not a line's: counted per line, it would count the order once per line.

        - A line amount that holds one value per order (on every line, or on the first and blank on the others) and
          is not the lines' quantity x unit price is the order's: kept as an extra column, the lines priced at
          quantity x unit price.
        - A discount written with the same value on every line of an order is one discount of the order: kept on
          the order's first line only. (Written on one line, it counts once either way.)"""
        delivered = set(self.layout.mapping.values())
        if self.entity.name != "order_items" or not delivered & {"customer_id", "order_date"}:
            return
        totals_per_order = "line_amount" in delivered and self._line_amount_is_the_orders()
        if totals_per_order:
            name = self._file_column("line_amount")
            if not {"quantity", "unit_price"} <= delivered:
                raise IngestError(
                    f"{self.file.display}: {name!r} holds one value per order, not per line, and the file has no "
                    "quantity and unit price to price its lines; map a per-line amount in mapping.yml")
            self.con.execute(
                f"UPDATE {self.table} SET _extra_columns = CAST(json_merge_patch(coalesce(_extra_columns, '{{}}'), "
                "json_object($name, line_amount)) AS VARCHAR), line_amount = NULL "
                "WHERE _source_file = $source_file", {"name": name, "source_file": self.file.source_file})
            self.layout = self.layout.without("line_amount")
            self.notes.append(f"{name!r} holds one value per order: kept as the order's, not the line's; lines priced "
                              "at quantity x unit price")
        # A file that writes the order's total on its lines writes its discount so too: one such order is evidence.
        if "discount" in delivered and (orders := self._orders_repeating_their_discount(1 if totals_per_order else 2)):
            (kept,) = self.con.execute(
                f"UPDATE {self.table} AS t SET discount = NULL FROM ("
                f"  SELECT order_id, min(_row_number) AS first_row FROM {self.table} "
                "   WHERE _source_file = $source_file GROUP BY order_id) AS o "
                "WHERE t._source_file = $source_file AND t.order_id = o.order_id AND t._row_number <> o.first_row "
                "AND t.order_id IN (SELECT unnest($orders))",
                {"source_file": self.file.source_file, "orders": orders}).fetchone()
            self.notes.append(f"{self._file_column('discount')!r} repeats one discount on every line of {len(orders)} "
                              f"order(s): counted once per order ({kept} line values set aside)")

    def _file_column(self, column: str) -> str:
        return next(self.layout.names[p] for p, c in self.layout.mapping.items() if c == column)

    def _order_shapes(self, column: str, nonzero: bool = False) -> tuple[int, int, int]:
        """Of the file's orders of several lines that have a value in `column` (a value other than zero, when
        `nonzero`): how many, how many carry one value on every line, and how many carry one on some lines only."""
        value = f"try_cast({_ident(column)} AS DOUBLE)"
        present = f"{value} <> 0" if nonzero else f"{_ident(column)} IS NOT NULL"
        return self.con.execute(
            "SELECT count(*), count(*) FILTER (WHERE values_ = 1 AND filled = lines), "
            "count(*) FILTER (WHERE values_ = 1 AND filled < lines) FROM ("
            f"  SELECT count(*) AS lines, count(*) FILTER (WHERE {present}) AS filled, "
            f"         count(DISTINCT {_ident(column)}) FILTER (WHERE {present}) AS values_ "
            f"  FROM {self.table} WHERE _source_file = $source_file GROUP BY order_id "
            "   HAVING count(*) > 1 AND filled > 0)",
            {"source_file": self.file.source_file}).fetchone()

    def _line_amount_is_the_orders(self) -> bool:
        """Most orders of several lines (80%) carry one line amount on all their lines that have one (on some lines
        only: one such order is evidence; on all lines: two), and it is not the lines' quantity x unit price."""
        orders, on_every_line, on_some_lines = self._order_shapes("line_amount")
        if not orders or on_every_line + on_some_lines < 0.8 * orders or (on_some_lines == 0 and orders < 2):
            return False
        if "unit_price" not in set(self.layout.mapping.values()):
            return True
        # Priced lines decide against it: compared on the lines of orders of several lines only (a single line's
        # amount is its order's either way).
        priced, lines = self.con.execute(
            "SELECT count(*) FILTER (WHERE abs(try_cast(line_amount AS DOUBLE) - try_cast(quantity AS DOUBLE) * "
            "try_cast(unit_price AS DOUBLE)) < 0.01), count(try_cast(line_amount AS DOUBLE)) "
            f"FROM {self.table} WHERE _source_file = $source_file AND order_id IN ("
            f"  SELECT order_id FROM {self.table} WHERE _source_file = $source_file GROUP BY order_id "
            "   HAVING count(*) > 1)", {"source_file": self.file.source_file}).fetchone()
        return not (lines and priced >= 0.8 * lines)

    def _orders_repeating_their_discount(self, evidence: int) -> list[str]:
        """The orders carrying one non-zero discount on every line, when they are most (80%, and at least
        `evidence`) of the orders of several lines with a discount; else none."""
        orders, on_every_line, _ = self._order_shapes("discount", nonzero=True)
        if orders < evidence or on_every_line < 0.8 * orders:
            return []
        return [row[0] for row in self.con.execute(
            f"SELECT order_id FROM {self.table} WHERE _source_file = $source_file GROUP BY order_id "
            "HAVING count(*) > 1 AND count(DISTINCT discount) = 1 AND count(discount) = count(*) "
            "AND bool_and(try_cast(discount AS DOUBLE) <> 0)", {"source_file": self.file.source_file}).fetchall()]

    def _quarantine_where(self, condition: str, reason: str, detail_sql: str) -> int:
        """Move the file's rows matching `condition` to the quarantine with `reason`; returns how many."""
        columns = [c for c in self.entity.column_names if c in set(self.layout.mapping.values())]
        record = "json_object(" + ", ".join(f"'{c}', {_ident(c)}" for c in columns) + ")"
        where = f"WHERE _source_file = $source_file AND {condition}"
        (moved,) = self.con.execute(
            f"INSERT INTO {_table('_quarantine')} (entity, source_file, drop_date, row_number, reason, raw_record, "
            f"quarantined_at, detail) SELECT $entity, _source_file, _drop_date, _row_number, $reason, "
            f"CAST({record} AS VARCHAR), $loaded_at, {detail_sql} FROM {self.table} {where}",
            {"entity": self.entity.name, "reason": reason, "loaded_at": self.loaded_at,
             "source_file": self.file.source_file},
        ).fetchone()
        if moved:
            self.con.execute(f"DELETE FROM {self.table} {where}", {"source_file": self.file.source_file})
        return moved

    def _lineage(self) -> dict[str, object]:
        return {"source_file": self.file.source_file, "drop_date": self.drop_date, "loaded_at": self.loaded_at}

    def _extra_columns_sql(self) -> tuple[str, dict[str, str]]:
        """A JSON object of the row's unknown columns, NULL when all of them are empty."""
        positions = self.layout.extra_positions
        if not positions:
            return "NULL", {}
        pairs = ", ".join(f"$extra{i}, {_value(pos)}" for i, pos in enumerate(positions))
        all_empty = " AND ".join(f"{_value(pos)} IS NULL" for pos in positions)
        params = {f"extra{i}": self.layout.names[pos] for i, pos in enumerate(positions)}
        return f"CASE WHEN {all_empty} THEN NULL ELSE CAST(json_object({pairs}) AS VARCHAR) END", params

    def _quarantine_rejects(self, inserted: int) -> int:
        """Move the lines DuckDB rejected to the quarantine and renumber the loaded rows around them.

        ``_ord`` counts loaded rows only; a rejected record's DuckDB ``line`` counts every record with the header
        as line 1. So a loaded row's row number is its ordinal plus the number of rejected rows before it, which
        are those with fewer loaded rows ahead of them (``loaded_before``) than that ordinal.
        """
        rejects = self.source.rejects_table
        if rejects is None:  # parquet: no parser rejects
            return 0
        bad = f"_ingest_bad_{uuid.uuid4().hex}"
        # The reason is a category to count by; DuckDB's own words are the detail (they name no cell's value).
        reason = "CASE error_type " + " ".join(
            f"WHEN '{kind}' THEN '{text}'" for kind, text in REJECT_REASONS.items()
        ) + " ELSE lower(error_type) END"
        # One row per rejected record (DuckDB may report several errors for one). Created inside the load's
        # transaction, so a rollback removes it too.
        self.con.execute(
            f"CREATE TEMP TABLE {_ident(bad)} AS "
            "SELECT row_number, reason, detail, raw_record, "
            "       row_number - row_number() OVER (ORDER BY row_number) AS loaded_before "
            f"FROM (SELECT line - {1 if self.source.header_line is not None else 0} AS row_number, "
            f"             arg_min({reason}, coalesce(column_idx, 0)) AS reason, "
            "              arg_min(error_message, coalesce(column_idx, 0)) AS detail, "
            "              trim(arg_min(csv_line, coalesce(column_idx, 0)), chr(13) || chr(10)) AS raw_record "
            f"      FROM temp.main.{_ident(rejects)} GROUP BY line)"
        )
        (rejected,) = self.con.execute(f"SELECT count(*) FROM temp.main.{_ident(bad)}").fetchone()
        if rejected:
            if not self.source.ends_with_line_break:
                # A transfer cut off mid-record: the last line is broken and rows that should follow are missing.
                self.con.execute(
                    f"UPDATE temp.main.{_ident(bad)} SET detail = detail || ' (the file ends inside this row: it "
                    "was cut off, rows after it may be missing)' WHERE row_number = $last",
                    {"last": inserted + rejected},
                )
            self._renumber_around(bad)
            self.con.execute(
                f"INSERT INTO {_table('_quarantine')} {QUARANTINE_INSERT} SELECT $entity, $source_file, $drop_date, "
                f"row_number, reason, raw_record, $loaded_at, detail FROM temp.main.{_ident(bad)}",
                {**self._lineage(), "entity": self.entity.name},
            )
        self.con.execute(f"DROP TABLE temp.main.{_ident(bad)}")
        return rejected

    def _refuse_unreadable(self, rejected: int) -> None:
        """Not one row could be read: the file is malformed (typically rows split by another delimiter than the
        header), so stop rather than quarantine all of it; the rollback leaves earlier loads as they were."""
        (reason,) = self.con.execute(
            f"SELECT reason || ': ' || detail FROM {_table('_quarantine')} WHERE source_file = $source_file "
            "ORDER BY row_number LIMIT 1",
            {"source_file": self.file.source_file},
        ).fetchone()
        columns = len(self.layout.header)
        raise IngestError(
            f"{self.file.display}: none of its {rejected} row(s) could be read (row 1: {reason}); the header has "
            f"{columns} column(s) separated by {self.source.delimiter!r}"
        )

    def _renumber_around(self, bad: str) -> None:
        """Shift each loaded row by the number of rejected rows before it.

        Between the j-th and the (j+1)-th rejected row lie the ordinals (loaded_before_j, loaded_before_j+1]: one
        range join over those intervals, linear in rows whatever the number of rejects (a correlated count is not).
        """
        self.con.execute(
            f"UPDATE {self.table} AS d SET _row_number = d._row_number + i.shift "
            "FROM (SELECT loaded_before AS lo, "
            "             lead(loaded_before, 1, 9223372036854775807) OVER (ORDER BY row_number) AS hi, "
            "             row_number() OVER (ORDER BY row_number) AS shift "
            f"      FROM temp.main.{_ident(bad)}) AS i "
            "WHERE d._source_file = $source_file AND d._row_number > i.lo AND d._row_number <= i.hi",
            {"source_file": self.file.source_file},
        )

    def _quarantine_repeated_headers(self) -> int:
        """Rows that repeat the header (files concatenated with their headers) are not data."""
        if self.source.header_line is None:  # parquet has no header line to repeat
            return 0
        mapped = sorted(self.layout.mapping.items())
        # A file concatenated with its BOM repeats the BOM before the header too.
        match = " AND ".join(f"replace({_ident(col)}, $bom, '') = $h{pos}" for pos, col in mapped)
        params = {f"h{pos}": self.layout.header[pos] for pos, _ in mapped}
        params.update(source_file=self.file.source_file, bom="\ufeff")
        where = f"WHERE _source_file = $source_file AND {match}"
        (repeated,) = self.con.execute(
            f"INSERT INTO {_table('_quarantine')} {QUARANTINE_INSERT} SELECT $entity, _source_file, _drop_date, _row_number, "
            f"'repeated header row', $header_line, $loaded_at, NULL FROM {self.table} {where}",
            {**params, "entity": self.entity.name, "loaded_at": self.loaded_at,
             "header_line": self.source.header_line},
        ).fetchone()
        if repeated:
            self.con.execute(f"DELETE FROM {self.table} {where}", params)
        return repeated

    def _log(self, rows_read: int, rows_loaded: int, rows_quarantined: int) -> None:
        self.con.execute(
            f"INSERT INTO {_table('_ingest_log')} ({', '.join(_ident(c) for c, _ in INGEST_LOG_COLUMNS)}) "
            f"VALUES ({', '.join('$' + c for c, _ in INGEST_LOG_COLUMNS)})",
            {
                "source_file": self.file.source_file,
                "entity": self.entity.name,
                "drop_date": self.drop_date,
                "content_sha256": self.fp.sha256,
                "size_bytes": self.fp.size,
                "encoding": self.source.encoding,
                "delimiter": self.source.delimiter,
                "header": json.dumps(self.layout.header, ensure_ascii=False),
                "column_map": json.dumps(self.layout.column_map, ensure_ascii=False),
                "extra_columns": json.dumps(self.layout.extras, ensure_ascii=False),
                "rows_read": rows_read,
                "rows_loaded": rows_loaded,
                "rows_quarantined": rows_quarantined,
                "loaded_at": self.loaded_at,
                "dropped_as": self.entity_named.name,
                "date_formats": self.interpretation.log_json(),
                "decimal_mark": self.interpretation.decimal,
                "mapping_sha256": self.mapping.fingerprint,
            },
        )
