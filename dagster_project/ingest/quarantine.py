"""Rows of a file's load set aside in ``raw._quarantine`` with a reason: lines DuckDB's reader rejected (the loaded
rows renumbered around them), repeated header rows, rows of a person erased on request, and rows a later step cannot
read; a file none of whose rows can be read is refused instead."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from dagster_project.ingest.export_file import IngestError
from dagster_project.ingest.raw_schema import QUARANTINE_INSERT, raw_table
from dagster_project.privacy import tombstones
from dagster_project.sql import identifier

if TYPE_CHECKING:
    from dagster_project.ingest.file_load import FileLoad
    from dagster_project.privacy.tombstones import Screen

# DuckDB's reject error types, as a reader of the quarantine would put them.
REJECT_REASONS = {
    "MISSING COLUMNS": "wrong field count",
    "TOO MANY COLUMNS": "wrong field count",
    "UNQUOTED VALUE": "unterminated or stray quote",
    "INVALID ENCODING": "encoding error",
    "LINE SIZE OVER MAXIMUM": "line too long",
}
ENCODING_HINT = (" (the line is not UTF-8: save the file as UTF-8, or name its encoding in its section of mapping.yml, "
                 "e.g. encoding: windows-1252)")


def quarantine_where(load: FileLoad, condition: str, reason: str, detail_sql: str) -> int:
    """Move the file's rows matching `condition` to the quarantine with `reason`; returns how many."""
    columns = [c for c in load.entity.column_names if c in set(load.layout.mapping.values())]
    record = "json_object(" + ", ".join(f"'{c}', {identifier(c)}" for c in columns) + ")"
    where = f"WHERE _source_file = $source_file AND {condition}"
    (moved,) = load.con.execute(
        f"INSERT INTO {raw_table('_quarantine')} {QUARANTINE_INSERT} SELECT $entity, _source_file, _drop_date, "
        f"_row_number, $reason, CAST({record} AS VARCHAR), $loaded_at, {detail_sql} FROM {load.table} {where}",
        {"entity": load.entity.name, "reason": reason, "loaded_at": load.loaded_at,
         "source_file": load.file.source_file},
    ).fetchone()
    if moved:
        load.con.execute(f"DELETE FROM {load.table} {where}", {"source_file": load.file.source_file})
    return moved


def quarantine_rejects(load: FileLoad, inserted: int) -> int:
    """Move the lines DuckDB rejected to the quarantine and renumber the loaded rows around them.

    ``_ord`` counts loaded rows only; a rejected record's DuckDB ``line`` counts every record with the header
    as line 1. So a loaded row's row number is its ordinal plus the number of rejected rows before it, which
    are those with fewer loaded rows ahead of them (``loaded_before``) than that ordinal.
    """
    rejects = load.source.rejects_table
    if rejects is None:  # parquet: no parser rejects
        return 0
    bad = f"_ingest_bad_{uuid.uuid4().hex}"
    # The reason is a category to count by; DuckDB's own words are the detail (they name no cell's value).
    reason = "CASE error_type " + " ".join(
        f"WHEN '{kind}' THEN '{text}'" for kind, text in REJECT_REASONS.items()
    ) + " ELSE lower(error_type) END"
    # One row per rejected record (DuckDB may report several errors for one). Created inside the load's
    # transaction, so a rollback removes it too.
    load.con.execute(
        f"CREATE TEMP TABLE {identifier(bad)} AS "
        "SELECT row_number, reason, detail, raw_record, "
        "       row_number - row_number() OVER (ORDER BY row_number) AS loaded_before "
        f"FROM (SELECT line - {1 if load.source.header_line is not None else 0} AS row_number, "
        f"             arg_min({reason}, coalesce(column_idx, 0)) AS reason, "
        "              arg_min(error_message, coalesce(column_idx, 0)) "
        f"                 || CASE WHEN bool_or(error_type = 'INVALID ENCODING') THEN '{ENCODING_HINT}' ELSE '' END "
        "                 AS detail, "
        "              trim(arg_min(csv_line, coalesce(column_idx, 0)), chr(13) || chr(10)) AS raw_record "
        f"      FROM temp.main.{identifier(rejects)} GROUP BY line)"
    )
    (rejected,) = load.con.execute(f"SELECT count(*) FROM temp.main.{identifier(bad)}").fetchone()
    if rejected:
        if not load.source.ends_with_line_break:
            # A transfer cut off mid-record: the last line is broken and rows that should follow are missing.
            load.con.execute(
                f"UPDATE temp.main.{identifier(bad)} SET detail = detail || ' (the file ends inside this row: it "
                "was cut off, rows after it may be missing)' WHERE row_number = $last",
                {"last": inserted + rejected},
            )
        _renumber_around(load, bad)
        load.con.execute(
            f"INSERT INTO {raw_table('_quarantine')} {QUARANTINE_INSERT} SELECT $entity, $source_file, $drop_date, "
            f"row_number, reason, raw_record, $loaded_at, detail FROM temp.main.{identifier(bad)}",
            {**load.lineage(), "entity": load.entity.name},
        )
    load.con.execute(f"DROP TABLE temp.main.{identifier(bad)}")
    return rejected


def refuse_unreadable(load: FileLoad, rejected: int) -> None:
    """Not one row could be read: the file is malformed (typically rows split by another delimiter than the
    header), so stop rather than quarantine all of it; the rollback leaves earlier loads as they were."""
    (reason,) = load.con.execute(
        f"SELECT reason || ': ' || detail FROM {raw_table('_quarantine')} WHERE source_file = $source_file "
        "ORDER BY row_number LIMIT 1",
        {"source_file": load.file.source_file},
    ).fetchone()
    columns = len(load.layout.header)
    raise IngestError(
        f"{load.file.display}: none of its {rejected} row(s) could be read (row 1: {reason}); the header has "
        f"{columns} column(s) separated by {load.source.delimiter!r}"
    )


def _renumber_around(load: FileLoad, bad: str) -> None:
    """Shift each loaded row by the number of rejected rows before it.

    Between the j-th and the (j+1)-th rejected row lie the ordinals (loaded_before_j, loaded_before_j+1]: one
    range join over those intervals, linear in rows whatever the number of rejects (a correlated count is not).
    """
    load.con.execute(
        f"UPDATE {load.table} AS d SET _row_number = d._row_number + i.shift "
        "FROM (SELECT loaded_before AS lo, "
        "             lead(loaded_before, 1, 9223372036854775807) OVER (ORDER BY row_number) AS hi, "
        "             row_number() OVER (ORDER BY row_number) AS shift "
        f"      FROM temp.main.{identifier(bad)}) AS i "
        "WHERE d._source_file = $source_file AND d._row_number > i.lo AND d._row_number <= i.hi",
        {"source_file": load.file.source_file},
    )


def quarantine_repeated_headers(load: FileLoad) -> int:
    """Rows that repeat the header (files concatenated with their headers) are not data."""
    if load.source.header_line is None:  # parquet has no header line to repeat
        return 0
    mapped = sorted(load.layout.mapping.items())
    # A file concatenated with its BOM repeats the BOM before the header too.
    match = " AND ".join(f"replace({identifier(col)}, $bom, '') = $h{pos}" for pos, col in mapped)
    params = {f"h{pos}": load.layout.header[pos] for pos, _ in mapped}
    params.update(source_file=load.file.source_file, bom="\ufeff")
    where = f"WHERE _source_file = $source_file AND {match}"
    (repeated,) = load.con.execute(
        f"INSERT INTO {raw_table('_quarantine')} {QUARANTINE_INSERT} SELECT $entity, _source_file, _drop_date, "
        f"_row_number, 'repeated header row', $header_line, $loaded_at, NULL FROM {load.table} {where}",
        {**params, "entity": load.entity.name, "loaded_at": load.loaded_at,
         "header_line": load.source.header_line},
    ).fetchone()
    if repeated:
        load.con.execute(f"DELETE FROM {load.table} {where}", params)
    return repeated


def quarantine_erased(load: FileLoad, screen: Screen | None) -> int:
    """Move the file's rows that carry an erased person's identifier to the quarantine as "erased", without their
    values (no raw record, no detail), and blank the raw lines the reader rejected that hold one; returns how many
    rows were moved. dagster_project.privacy.tombstones says what matches."""
    if screen is None:
        return 0
    condition, tested = tombstones.erased_rows_condition(load.entity.column_names, screen.kinds)
    rows = [] if not tested else [row for (row,) in load.con.execute(
        f"SELECT _row_number FROM {load.table} WHERE _source_file = $source_file AND {condition}",
        {**screen.params(tested), "source_file": load.file.source_file}).fetchall()]
    if rows:
        where = "WHERE _source_file = $source_file AND list_contains($rows, _row_number)"
        load.con.execute(
            f"INSERT INTO {raw_table('_quarantine')} {QUARANTINE_INSERT} SELECT $entity, _source_file, _drop_date, "
            f"_row_number, $reason, NULL, $loaded_at, NULL FROM {load.table} {where}",
            {"entity": load.entity.name, "reason": tombstones.ERASED, "loaded_at": load.loaded_at,
             "source_file": load.file.source_file, "rows": rows})
        load.con.execute(f"DELETE FROM {load.table} {where}", {"source_file": load.file.source_file, "rows": rows})
    load.con.execute(
        f"UPDATE {raw_table('_quarantine')} SET raw_record = NULL, detail = NULL WHERE source_file = $source_file "
        f"AND raw_record IS NOT NULL AND {tombstones.erased_line_condition(screen.kinds)}",
        {**screen.params(), "source_file": load.file.source_file})
    return len(rows)
