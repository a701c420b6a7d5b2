"""CSV files that are safe to open in a spreadsheet: no cell runs as a formula.

A CSV cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel, LibreOffice
and Google Sheets (``=HYPERLINK(...)``, ``-2+3+cmd|' /C calc'!A0``). CRM exports carry such text in names and notes,
and the warehouse keeps it exactly as delivered; only CSV outputs neutralise it, by the OWASP rule: prefix the cell
with a single quote, which spreadsheets show as text and do not evaluate.

Numbers are left alone: numeric values (int, float, Decimal) are not text, and text that is a plain number
(``-12.5``, ``+8613800138000``) is read by a spreadsheet as that number, which cannot run anything.
"""

from __future__ import annotations

import csv
import math
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
ROWS_PER_BATCH = 10_000


def neutralise_cell(value: Any) -> Any:
    """The value a CSV cell should hold: text a spreadsheet would evaluate gets a leading single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def write_csv(data: pd.DataFrame | duckdb.DuckDBPyRelation, path: str | os.PathLike[str], *,
              encoding: str = "utf-8-sig") -> int:
    """Write a data frame or a DuckDB relation as CSV with neutralised text cells (header included); returns the
    number of data rows.

    Written to a temporary file beside the target and moved over it, so a reader sees the old file or the new one,
    never a half-written one, and a failure leaves the old file as it was. Missing values are empty cells. The
    default encoding writes a byte order mark: without it Excel reads UTF-8 (Chinese names) as the local code page.
    """
    target = Path(path)
    columns, rows = _columns_and_rows(data)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    count = 0
    try:
        # "x": a new file with the default permissions (umask), unlike mkstemp's owner-only ones.
        with open(temporary, "x", encoding=encoding, newline="") as out:
            writer = csv.writer(out)
            writer.writerow([neutralise_cell(str(name)) for name in columns])
            for row in rows:
                writer.writerow([_cell(value) for value in row])
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_directory(target.parent)
    return count


def _columns_and_rows(data: pd.DataFrame | duckdb.DuckDBPyRelation) -> tuple[Sequence[Any], Iterable[tuple]]:
    if isinstance(data, pd.DataFrame):
        return list(data.columns), data.itertuples(index=False, name=None)
    if isinstance(data, duckdb.DuckDBPyRelation):
        # One run of the relation, a batch at a time: a mart need not fit in Python's memory.
        return list(data.columns), data.iter_rows(batch_size=ROWS_PER_BATCH)
    raise TypeError(f"write_csv needs a pandas DataFrame or a DuckDB relation, not {type(data).__name__}")


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    return neutralise_cell(value)


def _sync_directory(folder: Path) -> None:
    """Make the rename itself durable (POSIX: a directory's entries are flushed through the directory)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
