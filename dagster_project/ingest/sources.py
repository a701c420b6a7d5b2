"""A delivered file as DuckDB reads it: a FROM clause over its rows as positional text columns, for CSV (and .txt,
.tsv) or Parquet, with the header, encoding and delimiter it was read with.

Paths are data, never SQL or patterns: DuckDB reads each file through a link with a plain name in a scratch folder,
because its readers expand glob characters (``*``, ``?``, ``[``) in a path and a folder named ``exports[1]`` would
otherwise read ``exports1``. Files DuckDB's CSV reader cannot take as they are (columns aligned with spaces, mixed
LF / CR LF line ends) are rewritten line by line into a scratch copy first."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.ingest.encodings import Fingerprint, utf8_file
from dagster_project.ingest.export_file import ExportFile, IngestError
from dagster_project.ingest.layout import MAX_HEADER_BYTES, SNIFF_LINES, WHITESPACE, detect_delimiter, split_header
from dagster_project.ingest.mapping import EntityMapping
from dagster_project.sql import identifier


@dataclass
class Source:
    """A file as DuckDB reads it: a FROM clause yielding positional columns c0..cN-1 and ``_ord`` (1-based)."""

    header: list[str]
    encoding: str | None
    delimiter: str | None
    relation: str
    params: dict[str, object]
    header_line: str | None = None  # CSV with a header row only
    rejects_table: str | None = None  # CSV only
    ends_with_line_break: bool = True
    # Lines above what looks like the real header (an Excel report's title), for the message if columns are missing.
    title_lines: int = 0


@contextmanager
def csv_source(con: duckdb.DuckDBPyConnection, file: ExportFile, fp: Fingerprint,
               mapping: EntityMapping) -> Iterator[Source]:
    with tempfile.TemporaryDirectory(prefix="crm-ingest-") as scratch:
        path, encoding = utf8_file(file, fp, Path(scratch), mapping.encoding)
        if mapping.skip_rows:
            path = _without_first_lines(path, Path(scratch) / "below_title.csv", mapping.skip_rows)
        if mapping.skip_footer:
            path = _without_last_lines(path, Path(scratch) / "above_footer.csv", mapping.skip_footer)
        ends_with_line_break = _ends_with_line_break(path)
        lines = _first_lines(path, SNIFF_LINES)
        has_header = mapping.header is None
        if has_header and not (lines and lines[0].strip()):
            below = next((i for i, line in enumerate(lines) if line.strip()), None)
            hint = (f" (the first line that is not blank is line {below + 1}: if it is the header, set skip_rows: "
                    f"{below} for {(file.named.name if file.named else 'the entity')} in mapping.yml)"
                    if below is not None else "")
            raise IngestError(f"{file.display}: empty header line{hint}")
        if not lines:
            raise IngestError(f"{file.display}: no rows")
        delimiter = mapping.delimiter or detect_delimiter(lines[0], lines[1:])
        read_delimiter = "\t" if delimiter == WHITESPACE else delimiter
        if delimiter == WHITESPACE or fp.mixed_line_ends:
            path = _rewrite_lines(path, Path(scratch) / "normalised.csv", whitespace=delimiter == WHITESPACE)
        elif path == file.path:
            path = _plain_link(path, Path(scratch))
        header_line = lines[0] if has_header else None
        header = split_header(lines[0], delimiter) if has_header else list(mapping.header)
        suffix = uuid.uuid4().hex
        rejects, scan = f"_ingest_rejects_{suffix}", f"_ingest_scan_{suffix}"
        columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))
        relation = (
            f"read_csv($path, columns={{{columns}}}, header={str(has_header).lower()}, auto_detect=false, "
            f"delim=$delim, quote='\"', escape='\"', store_rejects=true, rejects_table='{rejects}', "
            f"rejects_scan='{scan}') WITH ORDINALITY AS src({_positional(len(header))}, _ord)"
        )
        try:
            yield Source(header, encoding, delimiter, relation, {"path": str(path), "delim": read_delimiter},
                         header_line, rejects, ends_with_line_break,
                         title_lines(lines) if has_header and not mapping.delimiter else 0)
        finally:
            # DuckDB creates these outside the load's transaction: they outlive a rollback.
            for table in (rejects, scan):
                con.execute(f"DROP TABLE IF EXISTS temp.main.{identifier(table)}")


@contextmanager
def parquet_source(con: duckdb.DuckDBPyConnection, file: ExportFile) -> Iterator[Source]:
    with tempfile.TemporaryDirectory(prefix="crm-ingest-") as scratch:
        params = {"path": str(_plain_link(file.path, Path(scratch)))}
        header = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet($path)", params).fetchall()]
        relation = f"read_parquet($path) WITH ORDINALITY AS src({_positional(len(header))}, _ord)"
        yield Source(header, None, None, relation, params)


def _plain_link(path: Path, scratch: Path) -> Path:
    """A link to the (already confined) file under a name free of glob characters, for DuckDB's readers."""
    link = scratch / f"export{path.suffix.lower()}"
    link.symlink_to(path)
    return link


def _positional(n: int) -> str:
    return ", ".join(f"c{i}" for i in range(n))


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


def title_lines(lines: list[str]) -> int:
    """How many first lines sit above a header the lines below it agree with (a title, its date, a blank line, padded
    with delimiters to the table's width as Excel saves them): the first line from which on most sniffed lines split
    into the same number (two or more) of fields, when it names most of them and every line above names fewer."""
    for start in range(1, min(len(lines) - 1, 6)):
        delimiter = detect_delimiter(lines[start], lines[start + 1:])
        header = _filled(lines[start], delimiter)
        if not header:
            continue
        widths = [len(split_header(line, delimiter)) for line in lines[start:] if line.strip()]
        width, agreeing = Counter(widths).most_common(1)[0]
        if width >= 2 and widths[0] == width and header * 5 >= width * 4 and agreeing * 2 > len(widths) and all(
                _filled(line, delimiter) < header for line in lines[:start]):
            return start
    return 0


def _filled(line: str, delimiter: str) -> int:
    """How many of the line's fields hold something."""
    return sum(1 for cell in split_header(line, delimiter) if cell) if line.strip() else 0


def _without_first_lines(src: Path, dst: Path, count: int) -> Path:
    """A copy without the file's first `count` lines (the mapping's skip_rows), line ends as they were."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        for number, line in enumerate(fin):
            if number >= count:
                fout.write(line)
    return dst


def _without_last_lines(src: Path, dst: Path, count: int) -> Path:
    """A copy without the file's last `count` lines that are not blank (the mapping's skip_footer: Salesforce's
    Copyright, Confidential and Generated By lines below a blank one), line ends as they were."""
    with src.open("rb") as fin:
        kept = sum(1 for line in fin if line.strip()) - count
    with src.open("rb") as fin, dst.open("wb") as fout:
        for line in fin:
            if kept <= 0:
                break
            fout.write(line)
            kept -= bool(line.strip())
    return dst


def _rewrite_lines(src: Path, dst: Path, whitespace: bool) -> Path:
    """A copy with every line ending in LF and, for columns aligned with spaces, fields separated by one tab.

    Bytes that are not UTF-8 pass through unchanged (for the reader to reject their lines)."""
    with src.open(encoding="utf-8", errors="surrogateescape", newline=None) as fin, \
            dst.open("w", encoding="utf-8", errors="surrogateescape", newline="\n") as fout:
        for line in fin:
            fout.write("\t".join(line.split()) + "\n" if whitespace else line)
    return dst
