"""CSV files that are safe to open in a spreadsheet: no cell runs as a formula.

A CSV cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel, LibreOffice
and Google Sheets (``=HYPERLINK(...)``, ``-2+3+cmd|' /C calc'!A0``). CRM exports carry such text in names and notes,
and the warehouse keeps it exactly as delivered; only CSV outputs neutralise it, by the OWASP rule: prefix the cell
with a single quote, which spreadsheets show as text and do not evaluate.

Numbers are left alone: numeric values (int, float, Decimal) are not text, and text that is a plain number
(``-12.5``, ``+8613800138000``) is read by a spreadsheet as that number, which cannot run anything.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dagster_project.files import atomic_write

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def neutralise_cell(value: Any) -> Any:
    """The value a CSV cell should hold: text a spreadsheet would evaluate gets a leading single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralised_sql(column: str) -> str:
    """The SQL expression for `neutralise_cell` applied to a text column (`column` is already quoted): DuckDB
    applies the rule while it writes, so a million-row table needs no trip through Python."""
    prefixes = ", ".join(f"chr({ord(prefix)})" for prefix in FORMULA_PREFIXES)
    return (f"case when left({column}, 1) in ({prefixes}) and not regexp_full_match({column}, "
            f"'{_PLAIN_NUMBER.pattern}') then chr(39) || {column} else {column} end")


def write_csv(data: pd.DataFrame | duckdb.DuckDBPyRelation, path: str | os.PathLike[str], *,
              encoding: str = "utf-8-sig") -> int:
    """Write a data frame or a DuckDB relation as CSV with neutralised text cells (header included); returns the
    number of data rows.

    Written to a temporary file beside the target and moved over it, so a reader sees the old file or the new one,
    never a half-written one, and a failure leaves the old file as it was. Missing values are empty cells. The
    default encoding writes a byte order mark: without it Excel reads UTF-8 (Chinese names) as the local code page.
    """
    if encoding not in ("utf-8", "utf-8-sig"):
        raise ValueError(f"CSV outputs are UTF-8, with or without a byte order mark, not {encoding}")
    relation = _relation(data)
    columns = [
        f"{neutralised_sql(_quoted(name)) if str(kind) == 'VARCHAR' else _quoted(name)} as {_quoted(neutralise_cell(name))}"
        for name, kind in zip(relation.columns, relation.types)
    ]
    neutral = relation.select(", ".join(columns))
    target = Path(path)
    body = target.with_name(f".{target.name}.{uuid.uuid4().hex}.body")
    try:
        neutral.write_csv(str(body), header=True)
        with atomic_write(target) as out:
            if encoding == "utf-8-sig":
                out.write(codecs.BOM_UTF8)
            with open(body, "rb") as written:
                shutil.copyfileobj(written, out, 1 << 20)
    finally:
        body.unlink(missing_ok=True)
    return neutral.aggregate("count(*)").fetchall()[0][0]


def _relation(data: pd.DataFrame | duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    if isinstance(data, duckdb.DuckDBPyRelation):
        return data
    if isinstance(data, pd.DataFrame):
        return duckdb.connect().from_df(data)
    raise TypeError(f"write_csv needs a pandas DataFrame or a DuckDB relation, not {type(data).__name__}")


def _quoted(name) -> str:
    return '"' + str(name).replace('"', '""') + '"'
